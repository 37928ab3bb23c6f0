"""The NetworkPolicy conformance cases, in the order they run.

Each case is a complete desired state on top of the fixed cluster (namespaces x, y, z
labelled ns=NAME; pods a, b, c in each labelled pod=NAME; a Service per pod): the
NetworkPolicies, and labels added to pods or namespaces. Running the cases in order
commits one state after another, so the step from one case to the next is itself a
policy update, a deletion, or a label change, as in upstream's multi-step tests.

Families:
  upstream  every test of kubernetes test/e2e/network/netpol/network_policy.go (TCP,
            UDP; the SCTP ones as "an SCTP rule must not open TCP or UDP"), each step
            of a multi-step test as its own case
  peers     every single peer form, ingress and egress (policy-assistant/cyclonus's
            peer generators), ipBlock from a non-pod address and over pod CIDRs
  ports     port, named port, endPort, protocol forms
  rules     policyTypes inference, multi-peer/multi-port rules, conflicting and
            additive policies across namespaces
  changes   label changes on pods and namespaces, policy updates and deletes

A case is a function of `ctx` (live IPs) returning a State. ctx.ip("y/b") is a pod's
IP, ctx.ext the test host's address (a non-pod client), ctx.pod_cidr(K) node K's
pod range, ctx.cluster_cidr the cluster's.
"""
import ipaddress


class State:
    def __init__(self, policies=(), pod_labels=None, ns_labels=None):
        self.policies = list(policies)
        self.pod_labels = pod_labels or {}   # {"x/a": {"k": "v"}} added to pod=a
        self.ns_labels = ns_labels or {}     # {"y": {"k": "v"}} added to ns=y


# ---- builders (upstream's GenNetworkPolicy* helpers, as dicts) ---------------------------

def sel(**labels):
    """A matchLabels selector; sel() is {} (everything)."""
    return {"matchLabels": labels} if labels else {}


def expr(key, op, *values):
    e = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


NS = "kubernetes.io/metadata.name"


def peer(pods=None, nss=None, cidr=None, except_=None):
    p = {}
    if pods is not None:
        p["podSelector"] = pods
    if nss is not None:
        p["namespaceSelector"] = nss
    if cidr is not None:
        p["ipBlock"] = {"cidr": cidr}
        if except_:
            p["ipBlock"]["except"] = list(except_)
    return p


def port(p=None, proto=None, end=None):
    d = {}
    if proto:
        d["protocol"] = proto
    if p is not None:
        d["port"] = p
    if end is not None:
        d["endPort"] = end
    return d


def rule(peers=None, ports=None, key="from"):
    r = {}
    if peers is not None:
        r[key] = list(peers)
    if ports is not None:
        r["ports"] = list(ports)
    return r


def to(peers=None, ports=None):
    return rule(peers, ports, key="to")


AUTO = object()


def policy(ns, name, target, ingress=None, egress=None, types=AUTO):
    """target: the podSelector. ingress/egress: None (absent) or a list of rules.
    types: AUTO sets policyTypes from which of ingress/egress is given (upstream's
    SetSpecIngressRules/SetSpecEgressRules do); None leaves policyTypes out (the API
    infers it); a list is used as it is."""
    spec = {"podSelector": target}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types is AUTO:
        types = (["Ingress"] if ingress is not None else []) + (["Egress"] if egress is not None else [])
    if types is not None:
        spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def deny_ingress(ns, name="deny-ingress", target=None):
    return policy(ns, name, target if target is not None else sel(), ingress=[])


def big_cidr(ip):
    """upstream's makeLargeCIDRForIP: the /4 around an IPv4 address."""
    return str(ipaddress.ip_network(ip + "/4", strict=False))


# ---- the cases ---------------------------------------------------------------------------

CASES = []   # (group, name, fn)


def case(group, name):
    def reg(fn):
        CASES.append((group, name, fn))
        return fn
    return reg


def simple(group, name, *policies, pod_labels=None, ns_labels=None):
    CASES.append((group, name, lambda ctx: State(policies, pod_labels, ns_labels)))


# upstream: network_policy.go, in its order
simple("upstream", "baseline-no-policies")
simple("upstream", "default-deny-ingress", deny_ingress("x"))
simple("upstream", "default-deny-all", policy("x", "deny-all", sel(), ingress=[], egress=[]))
simple("upstream", "allow-from-pod-in-namespace",
       policy("x", "x-a-allows-x-b", sel(pod="a"), ingress=[rule([peer(pods=sel(pod="b"))])]))
simple("upstream", "allow-ingress-for-a-target",
       policy("x", "deny-all", sel(), ingress=[]),
       policy("x", "allow-all-to-a", sel(pod="a"), ingress=[rule([peer(pods=sel(), nss=sel())])]))
simple("upstream", "allow-from-all-namespaces",
       policy("x", "allow-from-another-ns", sel(pod="a"), ingress=[rule([peer(nss=sel())])]))
simple("upstream", "allow-only-from-namespace-y",
       policy("x", "allow-client-a-via-ns-selector", sel(pod="a"), ingress=[rule([peer(nss=sel(ns="y"))])]))
simple("upstream", "podselector-matchexpressions",
       policy("x", "x-a-allows-x-b", sel(pod="a"), ingress=[rule([peer(pods=expr("pod", "In", "b"))])]))
simple("upstream", "namespaceselector-matchexpressions",
       policy("x", "allow-ns-y-match-selector", sel(pod="a"),
              ingress=[rule([peer(nss=expr(NS, "In", "y"))])]))
simple("upstream", "podselector-or-namespaceselector",
       policy("x", "allow-ns-y-match-selector", sel(pod="a"),
              ingress=[rule([peer(nss=expr(NS, "NotIn", "x")), peer(pods=sel(pod="b"))])]))
simple("upstream", "podselector-and-namespaceselector",
       policy("x", "allow-ns-y-podselector-and-nsselector", sel(pod="a"),
              ingress=[rule([peer(nss=expr(NS, "NotIn", "x"), pods=sel(pod="b"))])]))
simple("upstream", "multiple-podselectors-and-namespaceselectors",
       policy("x", "allow-ns-y-z-pod-b-c", sel(pod="a"),
              ingress=[rule([peer(nss=expr(NS, "NotIn", "x"), pods=expr("pod", "In", "b", "c"))])]))
simple("upstream", "any-podselectors",
       policy("x", "allow-ns-x-pod-b-c", sel(pod="a"),
              ingress=[rule([peer(pods=sel(pod="b")), peer(pods=sel(pod="c"))])]))
simple("upstream", "pod-in-another-namespace",
       policy("x", "allow-ns-y-pod-a-via-namespace-pod-selector", sel(pod="a"),
              ingress=[rule([peer(nss=sel(**{NS: "y"}), pods=sel(pod="a"))])]))
PORT81_FROM_Y = policy("x", "allow-client-a-via-ns-selector", sel(pod="a"),
                       ingress=[rule([peer(nss=sel(**{NS: "y"}))], [port(81, "TCP")])])
simple("upstream", "ports-81-from-namespace-y", PORT81_FROM_Y)
simple("upstream", "stacked-policies-add-port-80", PORT81_FROM_Y,
       policy("x", "allow-client-a-via-ns-selector-80", sel(pod="a"),
              ingress=[rule([peer(nss=sel(**{NS: "y"}))], [port(80, "TCP")])]))
simple("upstream", "allow-all", policy("x", "allow-all", sel(), ingress=[rule()]))
simple("upstream", "named-port-ingress",
       policy("x", "allow-all", sel(), ingress=[rule(ports=[port("serve-81-tcp")])]))
simple("upstream", "named-port-ingress-from-namespace",
       policy("x", "allow-client-a-via-ns-selector-80", sel(pod="a"),
              ingress=[rule([peer(nss=sel(**{NS: "y"}))], [port("serve-80-tcp", "TCP")])]))
simple("upstream", "named-port-egress",
       policy("x", "allow-egress", sel(), egress=[to(ports=[port("serve-80-tcp")])]))
simple("upstream", "update-policy-1-allow-all",
       policy("x", "allow-all-mutate-to-deny-all", sel(), ingress=[rule()]))
simple("upstream", "update-policy-2-deny-all",
       policy("x", "allow-all-mutate-to-deny-all", sel(), ingress=[]))
NS2 = policy("x", "allow-client-a-via-ns-selector", sel(pod="a"),
             ingress=[rule([peer(nss=sel(ns2="updated"))])])
simple("upstream", "updated-namespace-1-no-label", NS2)
simple("upstream", "updated-namespace-2-label-added", NS2, ns_labels={"y": {"ns2": "updated"}})
POD2 = policy("x", "allow-client-a-via-pod-selector", sel(pod="a"),
              ingress=[rule([peer(pods=sel(pod="b", pod2="updated"))])])
simple("upstream", "updated-pod-1-no-label", POD2)
simple("upstream", "updated-pod-2-label-added", POD2, pod_labels={"x/b": {"pod2": "updated"}})
simple("upstream", "deny-ingress-from-other-namespaces",
       policy("x", "deny-empty-policy", sel(), ingress=[rule([peer(pods=sel())])]))
ISOLATED = deny_ingress("x", "deny-ingress-via-label-selector", sel(target="isolated"))
simple("upstream", "deny-updated-pod-1-no-label", ISOLATED)
simple("upstream", "deny-updated-pod-2-label-added", ISOLATED,
       pod_labels={"x/a": {"target": "isolated"}})
simple("upstream", "deny-egress-podselector",
       policy("x", "deny-egress-pod-a", sel(pod="a"), egress=[]))
simple("upstream", "deny-egress-namespace", policy("x", "deny-egress-ns-x", sel(), egress=[]))
simple("upstream", "ingress-and-egress-together",
       policy("x", "allow-client-a-via-pod-selector", sel(pod="a"),
              ingress=[rule([peer(pods=sel(pod="b"))])], egress=[to(ports=[port(80)])],
              types=["Egress", "Ingress"]))
simple("upstream", "egress-denied-even-if-server-allows",
       policy("x", "allow-to-ns-y-pod-a", sel(pod="a"),
              egress=[to([peer(nss=sel(**{NS: "y"}), pods=sel(pod="a"))])]),
       policy("y", "allow-from-xa-on-ya-match-selector", sel(pod="a"),
              ingress=[rule([peer(nss=sel(**{NS: "x"}), pods=sel(pod="a"))])]),
       policy("y", "allow-from-xa-on-yb-match-selector", sel(pod="b"),
              ingress=[rule([peer(nss=sel(**{NS: "x"}), pods=sel(pod="a"))])]))
simple("upstream", "egress-to-pod-in-another-namespace",
       policy("x", "allow-to-ns-y-pod-a", sel(pod="a"),
              egress=[to([peer(nss=sel(**{NS: "y"}), pods=sel(pod="a"))])]))
simple("upstream", "ingress-any-port-on-tcp",
       policy("x", "allow-ingress-by-proto", sel(pod="a"), ingress=[rule(ports=[port(proto="TCP")])]))
PORT80 = policy("x", "allow-ingress-port-80", sel(), ingress=[rule(ports=[port(80)])])
simple("upstream", "ingress-allow-all-precedence-1-port-80", PORT80)
simple("upstream", "ingress-allow-all-precedence-2-allow-all", PORT80,
       policy("x", "allow-ingress", sel(), ingress=[rule()]))
EPORT80 = policy("x", "allow-egress-port-80", sel(), egress=[to(ports=[port(80)])])
simple("upstream", "egress-allow-all-precedence-1-port-80", EPORT80)
simple("upstream", "egress-allow-all-precedence-2-allow-all", EPORT80,
       policy("x", "allow-egress", sel(), egress=[to()]))
simple("upstream", "delete-policies-1-deny-all", policy("x", "deny-all", sel(), ingress=[], egress=[]))
simple("upstream", "delete-policies-2-deleted")


@case("upstream", "egress-to-cidr-of-a-pod")
def _(ctx):
    return State([policy("x", "allow-client-a-via-cidr-egress-rule", sel(pod="a"),
                         egress=[to([peer(cidr=ctx.ip("y/b") + "/32")])])])


@case("upstream", "egress-cidr-except-1-large-cidr")
def _(ctx):
    return State([policy("x", "allow-client-a-via-cidr-egress-rule", sel(pod="a"),
                         egress=[to([peer(cidr=big_cidr(ctx.ip("x/b")),
                                          except_=[ctx.ip("x/b") + "/32"])])])])


@case("upstream", "egress-cidr-except-2-updated-to-the-excepted-pod")
def _(ctx):
    return State([policy("x", "allow-client-a-via-cidr-egress-rule", sel(pod="a"),
                         egress=[to([peer(cidr=ctx.ip("x/b") + "/32")])])])


TARGET_A = sel(pod="a")
simple("upstream", "independent-1-allow-egress",
       policy("x", "allow-egress-for-target", TARGET_A, egress=[to()]))
simple("upstream", "independent-2-deny-ingress",
       policy("x", "allow-egress-for-target", TARGET_A, egress=[to()]),
       deny_ingress("x", "deny-ingress-via-label-selector", TARGET_A))
simple("upstream", "sctp-rule-does-not-allow-tcp",
       deny_ingress("x"),
       policy("x", "allow-only-sctp-ingress-on-port-81", sel(pod="a"),
              ingress=[rule(ports=[port(81, "SCTP")])]))
simple("upstream", "sctp-rule-isolates",
       policy("x", "allow-only-sctp-ingress-on-port-80", sel(pod="a"),
              ingress=[rule(ports=[port(80, "SCTP")])]))
simple("upstream", "udp-rule-does-not-allow-tcp",
       policy("x", "allow-only-udp-ingress-on-port-81", sel(pod="a"),
              ingress=[rule(ports=[port(81, "UDP")])]))
simple("upstream", "default-namespace-label-matchlabels",
       policy("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", sel(pod="a"),
              ingress=[rule([peer(nss=sel(**{NS: "y"}))])]))
simple("upstream", "default-namespace-label-matchexpressions-egress",
       policy("x", "allow-ns-y-match-selector-for-immutable-ns-label", sel(pod="a"),
              egress=[to([peer(nss=expr(NS, "NotIn", "y"))])]))
simple("upstream", "udp-ports-81-from-namespace-y",
       policy("x", "allow-ingress-on-port-81-ns-x", sel(pod="a"),
              ingress=[rule([peer(nss=sel(**{NS: "y"}))], [port(81, "UDP")])]))
simple("upstream", "udp-pod-in-another-namespace",
       policy("x", "allow-ns-y-pod-a-via-namespace-pod-selector", sel(pod="a"),
              ingress=[rule([peer(nss=sel(**{NS: "y"}), pods=sel(pod="a"))], [port(80, "UDP")])]))


# peers: every single peer form, each both as the ingress peer of one pod and as the
# egress peer of another; four forms share a case (a form's cells are its pods' column
# and row), so a wrong cell names its form by the policy on that pod
PEER_FORMS = [
    ("podsel-empty", lambda ctx: peer(pods=sel())),
    ("podsel-labels", lambda ctx: peer(pods=sel(pod="c"))),
    ("podsel-exists", lambda ctx: peer(pods=expr("pod", "Exists"))),
    ("podsel-doesnotexist", lambda ctx: peer(pods=expr("pod", "DoesNotExist"))),
    ("podsel-notin", lambda ctx: peer(pods=expr("pod", "NotIn", "a", "b"))),
    ("nssel-empty", lambda ctx: peer(nss=sel())),
    ("nssel-custom-label", lambda ctx: peer(nss=sel(ns="z"))),
    ("nssel-exists", lambda ctx: peer(nss=expr("ns", "Exists"))),
    ("nssel-doesnotexist", lambda ctx: peer(nss=expr("ns", "DoesNotExist"))),
    ("nssel-notin", lambda ctx: peer(nss=expr("ns", "NotIn", "x"))),
    ("both-empty", lambda ctx: peer(pods=sel(), nss=sel())),
    ("both", lambda ctx: peer(pods=sel(pod="a"), nss=expr(NS, "In", "x", "z"))),
    ("ipblock-test-host", lambda ctx: peer(cidr=ctx.ext + "/32")),
    ("ipblock-everything", lambda ctx: peer(cidr="0.0.0.0/0")),
    ("ipblock-except-node1-pods", lambda ctx: peer(cidr="0.0.0.0/0", except_=[ctx.pod_cidr(1)])),
    ("ipblock-cluster-except-a-pod", lambda ctx: peer(cidr=ctx.cluster_cidr,
                                                      except_=[ctx.ip("x/a") + "/32"])),
    ("ipblock-node2-pods", lambda ctx: peer(cidr=ctx.pod_cidr(2))),
    ("ipblock-a-pod", lambda ctx: peer(cidr=ctx.ip("z/b") + "/32")),
]
PEER_TARGETS = ["x/a", "y/b", "z/c", "y/a"]    # ingress form k on PEER_TARGETS[k]
PEER_SOURCES = ["x/b", "y/c", "z/a", "z/b"]    # egress form k from PEER_SOURCES[k]


def _peer_case(forms):
    def fn(ctx):
        pols = []
        for (name, mk), tgt, src in zip(forms, PEER_TARGETS, PEER_SOURCES):
            tns, tpod = tgt.split("/")
            sns, spod = src.split("/")
            pols.append(policy(tns, "in-" + name, sel(pod=tpod), ingress=[rule([mk(ctx)])]))
            pols.append(policy(sns, "out-" + name, sel(pod=spod), egress=[to([mk(ctx)])]))
        return State(pols)
    return fn


for _i in range(0, len(PEER_FORMS), len(PEER_TARGETS)):
    _forms = PEER_FORMS[_i:_i + len(PEER_TARGETS)]
    CASES.append(("peers", "+".join(n for n, _ in _forms), _peer_case(_forms)))


@case("peers", "ingress-ipblock-except-only-within-its-peer")
def _(ctx):
    # the except of one peer does not take away what another peer of the rule allows
    return State([policy("x", "two-peers", sel(), ingress=[rule([
        peer(cidr=ctx.cluster_cidr, except_=[ctx.pod_cidr(2)]),
        peer(nss=sel(ns="y"))])])])


@case("peers", "egress-ipblock-except-only-within-its-policy")
def _(ctx):
    return State([
        policy("y", "cidr-except", sel(), egress=[to([peer(cidr=ctx.cluster_cidr,
                                                            except_=[ctx.ip("z/b") + "/32"])])]),
        policy("y", "to-z", sel(pod="a"), egress=[to([peer(nss=sel(ns="z"))])])])


# ports: port, named port, endPort, protocol; each form on its own pod of y (ingress)
PORT_FORMS = [
    ("port-80", [port(80)]),
    ("port-81-udp", [port(81, "UDP")]),
    ("udp-any-port", [port(proto="UDP")]),
    ("two-ports", [port(80, "TCP"), port(81, "UDP")]),
    ("endport-80-81-tcp", [port(80, "TCP", end=81)]),
    ("endport-1-80-udp", [port(1, "UDP", end=80)]),
    ("endport-81-81", [port(81, end=81)]),
    ("endport-ranges-beside", [port(82, "TCP", end=65535), port(1, "UDP", end=79)]),
    ("named-udp", [port("serve-81-udp", "UDP")]),
    ("named-udp-port-as-tcp-matches-nothing", [port("serve-80-udp")]),
    ("named-unknown", [port("nope", "TCP")]),
    ("named-and-numbered", [port("serve-80-tcp"), port(81, "UDP"), port("serve-81-tcp", "TCP")]),
    ("sctp-any-port", [port(proto="SCTP")]),
]


def _port_case(forms):
    def fn(ctx):
        return State([policy("y", name, sel(pod=p), ingress=[rule(ports=ports)])
                      for (name, ports), p in zip(forms, "abc")])
    return fn


for _i in range(0, len(PORT_FORMS), 3):
    _forms = PORT_FORMS[_i:_i + 3]
    CASES.append(("ports", "ingress-" + "+".join(n for n, _ in _forms), _port_case(_forms)))
simple("ports", "egress-named-port-udp",
       policy("z", "ports", sel(pod="a"), egress=[to(ports=[port("serve-81-udp", "UDP")])]))
simple("ports", "egress-endport-udp-and-named-tcp",
       policy("z", "ports", sel(), egress=[to(ports=[port(79, "UDP", end=80), port("serve-81-tcp")])]))
simple("ports", "egress-named-port-to-a-namespace",
       policy("z", "ports", sel(pod="b"),
              egress=[to([peer(nss=sel(ns="x"))], [port("serve-80-tcp"), port("serve-80-udp", "UDP")])]))
simple("ports", "egress-port-and-ingress-named-port",
       policy("x", "in", sel(pod="c"), ingress=[rule(ports=[port("serve-81-udp", "UDP")])]),
       policy("y", "out", sel(pod="c"), egress=[to(ports=[port(81, "UDP")])]))


# rules: policyTypes, multiple rules and policies, conflicts
simple("rules", "policytypes-inferred-from-egress-rules-isolates-ingress-too",
       policy("x", "egress-only-rules", sel(pod="b"), egress=[to([peer(nss=sel(ns="y"))])], types=None))
simple("rules", "policytypes-inferred-ingress-only",
       policy("x", "ingress-only-rules", sel(pod="b"), ingress=[rule([peer(nss=sel(ns="y"))])],
              types=None))
simple("rules", "policytypes-inferred-empty-spec-isolates-ingress",
       policy("y", "empty", sel(pod="c"), types=None))
simple("rules", "policytypes-egress-ignores-ingress-rules",
       policy("x", "ignored-ingress", sel(pod="b"), ingress=[rule([peer(pods=sel(pod="c"))])],
              egress=[to([peer(nss=sel(ns="x"))])], types=["Egress"]))
simple("rules", "policytypes-ingress-ignores-egress-rules",
       policy("x", "ignored-egress", sel(pod="b"), ingress=[rule([peer(nss=sel(ns="z"))])],
              egress=[to([peer(nss=sel(ns="x"))])], types=["Ingress"]))
simple("rules", "empty-from-and-empty-ports-allow-everything",
       deny_ingress("y"), policy("y", "empty-lists", sel(pod="a"), ingress=[{"from": [], "ports": []}]))
simple("rules", "two-rules-are-ored",
       policy("z", "two-rules", sel(), ingress=[rule([peer(nss=sel(ns="x"))], [port(80, "TCP")]),
                                                 rule([peer(pods=sel(pod="b"))], [port(81, "UDP")])]))
simple("rules", "peers-and-ports-are-anded",
       policy("z", "and", sel(pod="a"), ingress=[rule([peer(pods=sel(pod="b"), nss=sel()),
                                                      peer(pods=sel(pod="c"))],
                                                     [port(80, "UDP"), port("serve-81-tcp")])]))
simple("rules", "deny-all-and-allow-all-conflict-allow-wins",
       deny_ingress("y"), policy("y", "allow-all", sel(), ingress=[rule()]),
       policy("y", "deny-egress", sel(), egress=[]), policy("y", "allow-egress", sel(pod="a"), egress=[to()]))
simple("rules", "policy-selecting-no-pod-changes-nothing",
       policy("x", "nobody", sel(pod="nobody"), ingress=[], egress=[]))
simple("rules", "policies-in-every-namespace",
       policy("x", "in-from-y", sel(), ingress=[rule([peer(nss=sel(ns="y"))])]),
       policy("y", "out-to-z", sel(), egress=[to([peer(nss=sel(ns="z"))], [port(80, "TCP"), port(80, "UDP")])]),
       policy("z", "in-from-x", sel(pod="a"), ingress=[rule([peer(nss=sel(ns="x"))])]))
simple("rules", "egress-and-ingress-must-both-allow",
       policy("x", "out", sel(pod="a"), egress=[to([peer(nss=sel(ns="y"))], [port(80, "TCP"), port(81, "TCP")])]),
       policy("y", "in", sel(), ingress=[rule([peer(nss=sel(ns="x"))], [port(81, "TCP"), port(81, "UDP")])]))


# changes: label changes on pods and namespaces, policy updates and deletes
TEAM = policy("x", "from-team-blue", sel(), ingress=[rule([peer(nss=sel(team="blue"))])])
simple("changes", "namespace-label-1-none", TEAM)
simple("changes", "namespace-label-2-on-z", TEAM, ns_labels={"z": {"team": "blue"}})
simple("changes", "namespace-label-3-moved-to-y", TEAM, ns_labels={"y": {"team": "blue"},
                                                                   "z": {"team": "red"}})
simple("changes", "namespace-label-4-removed", TEAM)
DB = policy("y", "db-ingress", sel(role="db"), ingress=[rule([peer(pods=sel(role="web"), nss=sel())])])
simple("changes", "pod-label-1-target-gets-label", DB, pod_labels={"y/c": {"role": "db"}})
simple("changes", "pod-label-2-peer-gets-label", DB, pod_labels={"y/c": {"role": "db"},
                                                                 "z/a": {"role": "web"}})
simple("changes", "pod-label-3-target-moves", DB, pod_labels={"y/a": {"role": "db"},
                                                              "z/a": {"role": "web"}})
simple("changes", "pod-label-4-peer-moves-and-egress", DB,
       policy("x", "web-egress", sel(role="web"), egress=[to([peer(pods=sel(role="db"), nss=sel())])]),
       pod_labels={"y/a": {"role": "db"}, "x/b": {"role": "web"}})
simple("changes", "pod-label-5-removed", DB,
       policy("x", "web-egress", sel(role="web"), egress=[to([peer(pods=sel(role="db"), nss=sel())])]))
simple("changes", "update-1-from-pod-b",
       policy("z", "update-me", sel(pod="a"), ingress=[rule([peer(pods=sel(pod="b"))])]))
simple("changes", "update-2-from-pod-c",
       policy("z", "update-me", sel(pod="a"), ingress=[rule([peer(pods=sel(pod="c"))])]))
simple("changes", "update-3-target-moves",
       policy("z", "update-me", sel(pod="b"), ingress=[rule([peer(pods=sel(pod="c"))])]))
simple("changes", "update-4-adds-egress",
       policy("z", "update-me", sel(pod="b"), ingress=[rule([peer(pods=sel(pod="c"))])],
              egress=[to([peer(nss=sel(ns="x"))])]))
simple("changes", "update-5-second-policy",
       policy("z", "update-me", sel(pod="b"), ingress=[rule([peer(pods=sel(pod="c"))])],
              egress=[to([peer(nss=sel(ns="x"))])]),
       policy("z", "deny-all", sel(), ingress=[], egress=[]))
simple("changes", "delete-1-first-policy", policy("z", "deny-all", sel(), ingress=[], egress=[]))
simple("changes", "delete-2-everything")

GROUPS = []
for _g, _n, _f in CASES:
    if _g not in GROUPS:
        GROUPS.append(_g)
