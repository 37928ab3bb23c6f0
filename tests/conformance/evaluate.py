#!/usr/bin/python3
"""The expected truth table of NetworkPolicy, written only for the tests.

An independent reading of networking.k8s.io/v1 NetworkPolicy (it shares nothing with
the C compiler in netpol/): given the manifests (Namespaces with labels, Pods with
labels and named container ports, Services, NetworkPolicies), the pods' live IPs and
the probe results, it says for every (source, destination, port, protocol) whether a
connection must succeed, compares with what the probes saw, and prints every wrong cell
as upstream's netpol e2e framework does: a grid of `.` (connected) and `X` (blocked)
per port and protocol, expected beside observed beside the wrong cells.

Semantics implemented (Kubernetes API reference and the e2e suite's expectations):
  - a pod is isolated for a direction when a policy of its namespace selects it and has
    that direction in policyTypes; policyTypes absent: Ingress, plus Egress when the
    policy has egress rules
  - a connection needs the destination's ingress AND the source's egress to allow it;
    policies are additive (any rule of any selecting policy allows)
  - in a rule, the peers are ORed, the ports are ORed, peers AND ports; an empty or
    absent from/to means every peer, empty or absent ports every port and protocol
  - a peer: podSelector alone (pods of the policy's namespace), namespaceSelector alone
    (every pod of the matching namespaces), both (matching pods in matching
    namespaces), or ipBlock (any address in cidr, pods' too, minus that peer's except)
  - namespaces carry kubernetes.io/metadata.name=NAME
  - a port: protocol (default TCP; SCTP is not TCP), port absent = every port of the
    protocol, a number with optional endPort (a range), or a name resolved on the
    destination pod (a containerPort with that name and that protocol)
  - a Service target: the destination is its endpoint (a ready pod matching the
    selector in the Service's namespace) at the target port (a name resolved on the pod
    by name and protocol); no endpoint: blocked
  - a pod reaching itself (by pod IP or through its own Service) is not judged (the
    upstream suite ignores loopback too)

Command line:
  evaluate.py --manifests DIR --live LIVE.json --results RESULTS [--case NAME]
LIVE.json: {"pods": {"x/a": {"ip": "10.1.2.3", "ready": true}, ...},
            "services": {"x/s-x-a": "10.96.0.20", ...}, "ext": "10.213.1.1"}
            (a Service missing from "services" uses its spec.clusterIP)
RESULTS: lines "SOURCE IP:PORT/PROTO ok REPLY" or "SOURCE IP:PORT/PROTO fail REASON",
         SOURCE a pod "ns/name" or "ext"; REPLY is the answering pod's "ns/name".
Exit 0 when no cell is wrong, 1 otherwise, 2 on bad input.
"""
import argparse
import ipaddress
import json
import os
import sys

import yaml

NS_NAME_LABEL = "kubernetes.io/metadata.name"
PROTOCOLS = ("TCP", "UDP")


# ---- reading the manifests ------------------------------------------------------------

def load_manifests(path):
    """Every object of every *.yaml/*.yml/*.json under path (files or a directory)."""
    files = []
    if os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [os.path.join(root, n) for n in sorted(names)
                      if n.endswith((".yaml", ".yml", ".json")) and not n.startswith(".")]
    else:
        files = [path]
    objs = []
    for f in files:
        with open(f) as fh:
            objs += [o for o in yaml.safe_load_all(fh) if isinstance(o, dict)]
    return objs


class Pod:
    def __init__(self, obj):
        md = obj.get("metadata") or {}
        self.ns = md.get("namespace") or "default"
        self.name = md["name"]
        self.key = "%s/%s" % (self.ns, self.name)
        self.labels = md.get("labels") or {}
        self.ports = []  # (name, containerPort, protocol)
        for c in (obj.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                self.ports.append((p.get("name"), p["containerPort"], p.get("protocol") or "TCP"))
        self.ip = None
        self.ready = True

    def named_port(self, name, proto):
        for n, port, pr in self.ports:
            if n == name and pr == proto:
                return port
        return None


class Ext:
    """A source or destination that is not a pod: only ipBlock peers select it."""

    def __init__(self, ip):
        self.key = "ext"
        self.ip = ip


class Model:
    def __init__(self, objs, live):
        self.ns_labels = {}
        self.pods = {}
        self.services = {}
        self.policies = []
        for o in objs:
            kind, md = o.get("kind"), o.get("metadata") or {}
            if kind == "Namespace":
                labels = dict(md.get("labels") or {})
                labels[NS_NAME_LABEL] = md["name"]
                self.ns_labels[md["name"]] = labels
            elif kind == "Pod":
                p = Pod(o)
                self.pods[p.key] = p
            elif kind == "Service":
                self.services["%s/%s" % (md.get("namespace") or "default", md["name"])] = o
            elif kind == "NetworkPolicy":
                self.policies.append(o)
        for p in self.pods.values():
            # a namespace without a Namespace object still has its name label
            self.ns_labels.setdefault(p.ns, {NS_NAME_LABEL: p.ns})
            lp = (live.get("pods") or {}).get(p.key) or {}
            p.ip = lp.get("ip")
            p.ready = lp.get("ready", True)
        self.by_ip = {p.ip: p for p in self.pods.values() if p.ip}
        self.ext = Ext(live["ext"]) if live.get("ext") else None
        self.svc_ip = {}
        for key, s in self.services.items():
            ip = (live.get("services") or {}).get(key) or (s.get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                self.svc_ip[ip] = key

    # ---- selectors ----------------------------------------------------------------------

    @staticmethod
    def selector_matches(sel, labels):
        """A LabelSelector against labels; {} matches everything."""
        for k, v in (sel.get("matchLabels") or {}).items():
            if labels.get(k) != v:
                return False
        for e in sel.get("matchExpressions") or []:
            k, op, vals = e["key"], e["operator"], e.get("values") or []
            if op == "In" and labels.get(k) not in vals:
                return False
            if op == "NotIn" and k in labels and labels[k] in vals:
                return False
            if op == "Exists" and k not in labels:
                return False
            if op == "DoesNotExist" and k in labels:
                return False
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise ValueError("unknown selector operator %r" % op)
        return True

    @staticmethod
    def policy_types(pol):
        spec = pol.get("spec") or {}
        if spec.get("policyTypes"):
            return spec["policyTypes"]
        return ["Ingress"] + (["Egress"] if spec.get("egress") else [])

    def peer_matches(self, peer, pol_ns, other):
        if peer.get("ipBlock") is not None:
            if not other.ip:
                return False
            ip = ipaddress.ip_address(other.ip)
            blk = peer["ipBlock"]
            if ip not in ipaddress.ip_network(blk["cidr"], strict=False):
                return False
            return not any(ip in ipaddress.ip_network(e, strict=False) for e in blk.get("except") or [])
        pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
        if pod_sel is None and ns_sel is None:
            return False  # not a valid peer; the API refuses it
        if not isinstance(other, Pod):
            return False
        if ns_sel is not None:
            if not self.selector_matches(ns_sel, self.ns_labels[other.ns]):
                return False
        elif other.ns != pol_ns:
            return False
        return pod_sel is None or self.selector_matches(pod_sel, other.labels)

    @staticmethod
    def port_matches(ports, dst, port, proto):
        """ports of a rule against a connection to dst (a Pod or Ext) at port/proto."""
        if not ports:
            return True
        for p in ports:
            if (p.get("protocol") or "TCP") != proto:
                continue
            want = p.get("port")
            if want is None:
                return True
            if isinstance(want, int):
                if want <= port <= (p.get("endPort") or want):
                    return True
            elif isinstance(dst, Pod) and dst.named_port(want, proto) == port:
                return True
        return False

    def _allowed(self, target, other, port, proto, direction):
        """Whether target's policies of `direction` let it talk to other."""
        if not isinstance(target, Pod):
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        isolated = False
        for pol in self.policies:
            md, spec = pol.get("metadata") or {}, pol.get("spec") or {}
            pol_ns = md.get("namespace") or "default"
            if pol_ns != target.ns or direction not in self.policy_types(pol):
                continue
            if not self.selector_matches(spec.get("podSelector") or {}, target.labels):
                continue
            isolated = True
            for rule in spec.get(rules_key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self.peer_matches(pr, pol_ns, other) for pr in peers):
                    continue
                dst = target if direction == "Ingress" else other
                if self.port_matches(rule.get("ports"), dst, port, proto):
                    return True
        return not isolated

    def allowed(self, src, dst, port, proto):
        """src and dst are Pods or Ext."""
        return (self._allowed(dst, src, port, proto, "Ingress") and
                self._allowed(src, dst, port, proto, "Egress"))

    # ---- services -----------------------------------------------------------------------

    def endpoints(self, svc_key, port, proto):
        """[(pod, targetPort)] behind Service svc_key's port/proto."""
        s = self.services[svc_key]
        spec = s.get("spec") or {}
        sel = spec.get("selector")
        sp = next((p for p in spec.get("ports") or []
                   if p["port"] == port and (p.get("protocol") or "TCP") == proto), None)
        if not sel or sp is None:
            return []
        tp = sp.get("targetPort", sp["port"])
        out = []
        for pod in self.pods.values():
            if pod.ns != svc_key.split("/")[0] or not pod.ready or not pod.ip:
                continue
            if not all(pod.labels.get(k) == v for k, v in sel.items()):
                continue
            t = tp if isinstance(tp, int) else pod.named_port(tp, proto)
            if t is not None:
                out.append((pod, t))
        return out

    def sources(self):
        out = sorted(self.pods)
        return out + (["ext"] if self.ext else [])

    def node(self, key):
        return self.ext if key == "ext" else self.pods[key]


# ---- expectations and comparison ------------------------------------------------------

class Cell:
    """One probe: source → target, what was expected and what was seen."""

    def __init__(self, src, target, mode, dst, port, proto):
        self.src, self.target, self.mode, self.dst = src, target, mode, dst
        self.port, self.proto = port, proto
        self.expect = None      # True, False, or None: not judged
        self.answers = set()    # pods that may answer
        self.got = None
        self.detail = ""
        self.wrong = False


def judge(model, src_key, target):
    """The Cell for a probe of target ("IP:PORT/proto") from src_key."""
    addr, proto = target.rsplit("/", 1)
    ip, port = addr.rsplit(":", 1)
    port, proto = int(port), proto.upper()
    src = model.node(src_key)
    if ip in model.by_ip:
        dst = model.by_ip[ip]
        cell = Cell(src_key, target, "pod", dst.key, port, proto)
        if dst.key == src_key:
            return cell
        cell.expect = model.allowed(src, dst, port, proto)
        cell.answers = {dst.key}
        return cell
    if ip in model.svc_ip:
        svc = model.svc_ip[ip]
        eps = model.endpoints(svc, port, proto)
        cell = Cell(src_key, target, "service", eps[0][0].key if len(eps) == 1 else svc,
                    port, proto)
        if any(pod.key == src_key for pod, _ in eps):
            return cell
        verdicts = {pod.key: model.allowed(src, pod, tport, proto) for pod, tport in eps}
        if len(set(verdicts.values())) > 1:
            return cell  # depends on the endpoint picked
        cell.expect = bool(verdicts) and all(verdicts.values())
        cell.answers = set(verdicts)
        return cell
    if model.ext and ip == model.ext.ip:
        cell = Cell(src_key, target, "pod", "ext", port, proto)
        cell.expect = model.allowed(src, model.ext, port, proto)
        return cell
    raise ValueError("probe target %s is neither a pod nor a Service" % target)


def compare(model, results):
    """Cells for every result line, with .wrong set; results: iterable of lines."""
    cells = []
    for line in results:
        parts = line.split(None, 3)
        if not parts:
            continue
        if len(parts) < 3 or parts[2] not in ("ok", "fail"):
            raise ValueError("bad result line: %r" % line)
        cell = judge(model, parts[0], parts[1])
        cell.got = parts[2] == "ok"
        cell.detail = parts[3].strip() if len(parts) > 3 else ""
        if cell.expect is not None:
            if cell.got != cell.expect:
                cell.wrong = True
            elif cell.got and cell.answers and cell.detail not in cell.answers:
                cell.wrong = True  # connected, but to the wrong pod
        cells.append(cell)
    return cells


def short(key):
    return key if len(key) <= 4 else key[:4]


def grid(rows, cols, cellmap, pick):
    lines = ["%-5s" % "" + "".join("%-4s" % short(c) for c in cols)]
    for r in rows:
        lines.append("%-5s" % short(r) + "".join("%-4s" % pick(cellmap.get((r, c))) for c in cols))
    return lines


def report(model, cells, case="", out=sys.stdout):
    """Print the grids of every (mode, proto, port) with a wrong cell; return #wrong."""
    wrong = [c for c in cells if c.wrong]
    judged = sum(1 for c in cells if c.expect is not None)
    name = case + ": " if case else ""
    out.write("%s%d cells judged, %d wrong\n" % (name, judged, len(wrong)))
    if not wrong:
        return 0
    rows = model.sources()
    cols = sorted(model.pods)
    keys = sorted({(c.mode, c.proto, c.port) for c in wrong})
    mark = lambda b: "." if b else "X"
    for mode, proto, port in keys:
        sel = {(c.src, c.dst): c for c in cells
               if (c.mode, c.proto, c.port) == (mode, proto, port)}
        via = "pod IP" if mode == "pod" else "Service IP (port of the pod)"
        out.write("\n%s/%d via %s: expected | observed | wrong (. connected, X blocked, "
                  "- not judged)\n" % (proto, port, via))
        e = grid(rows, cols, sel, lambda c: "-" if not c or c.expect is None else mark(c.expect))
        g = grid(rows, cols, sel, lambda c: "-" if not c or c.got is None else mark(c.got))
        w = grid(rows, cols, sel, lambda c: "-" if not c or c.expect is None else
                 ("X" if c.wrong else "."))
        for a, b, d in zip(e, g, w):
            out.write("%s | %s | %s\n" % (a.rstrip().ljust(len(e[0])), b.rstrip().ljust(len(g[0])),
                                          d.rstrip()))
    out.write("\nwrong cells:\n")
    for c in wrong:
        want = "connect" if c.expect else "blocked"
        got = ("connected, answered by %s" % c.detail) if c.got else ("blocked (%s)" % c.detail)
        out.write("  %s -> %s (%s %s/%d via %s): expected %s, got %s\n" % (
            c.src, c.dst, c.target, c.proto, c.port, c.mode, want, got))
    return len(wrong)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifests", required=True)
    ap.add_argument("--live", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--case", default="")
    a = ap.parse_args(argv)
    try:
        with open(a.live) as f:
            live = json.load(f)
        model = Model(load_manifests(a.manifests), live)
        with open(a.results) as f:
            cells = compare(model, f.read().splitlines())
    except (OSError, ValueError, KeyError, yaml.YAMLError) as e:
        print("evaluate: %s" % e, file=sys.stderr)
        return 2
    return 1 if report(model, cells, a.case) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
