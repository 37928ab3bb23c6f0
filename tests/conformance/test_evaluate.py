#!/usr/bin/python3
"""Self-check of evaluate.py against truth tables computed by hand.

Four pods x/a x/b y/a y/b and a non-pod client ext; namespace y is labelled team=blue.
x/a, x/b and y/b serve the conformance ports (serve-80-tcp, serve-81-tcp, serve-80-udp,
serve-81-udp); y/a has a single port named "web" (81/TCP). Tables: rows are sources
(x/a x/b y/a y/b ext), columns destinations (x/a x/b y/a y/b), `.` allowed, `X`
blocked, `-` a pod and itself. Run: python3 tests/conformance/test_evaluate.py
"""
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate  # noqa: E402

IPS = {"x/a": "10.0.1.1", "x/b": "10.0.2.1", "y/a": "10.0.1.2", "y/b": "10.0.2.2"}
EXT = "192.168.0.1"
ROWS = ["x/a", "x/b", "y/a", "y/b", "ext"]
COLS = ["x/a", "x/b", "y/a", "y/b"]
STD_PORTS = [{"name": "serve-%d-%s" % (p, pr.lower()), "containerPort": p, "protocol": pr}
             for pr in ("TCP", "UDP") for p in (80, 81)]


def pod(key, labels, ports):
    ns, name = key.split("/")
    return {"kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": ports}]}}


BASE = [
    {"kind": "Namespace", "metadata": {"name": "x"}},
    {"kind": "Namespace", "metadata": {"name": "y", "labels": {"team": "blue"}}},
    pod("x/a", {"pod": "a"}, STD_PORTS),
    pod("x/b", {"pod": "b"}, STD_PORTS),
    pod("y/a", {"pod": "a"}, [{"name": "web", "containerPort": 81}]),
    pod("y/b", {"pod": "b"}, STD_PORTS),
]


def netpol(ns, name, spec):
    return {"kind": "NetworkPolicy", "metadata": {"namespace": ns, "name": name}, "spec": spec}


def model(*objs, services=None):
    live = {"pods": {k: {"ip": ip} for k, ip in IPS.items()}, "ext": EXT,
            "services": services or {}}
    return evaluate.Model(BASE + list(objs), live)


def table(m, port, proto):
    lines = []
    for r in ROWS:
        cells = []
        for c in COLS:
            if r == c:
                cells.append("-")
            else:
                cells.append("." if m.allowed(m.node(r), m.node(c), port, proto) else "X")
        lines.append(" ".join(cells))
    return "\n".join(lines)


def t(text):
    """A hand-written table: one row per line, the row label first."""
    return "\n".join(" ".join(line.split()[1:]) for line in text.strip().splitlines())


class TruthTables(unittest.TestCase):
    def check(self, m, port, proto, want):
        self.assertEqual(table(m, port, proto), t(want), "%s/%d" % (proto, port))

    def test_no_policies_allow_everything(self):
        for proto in ("TCP", "UDP"):
            self.check(model(), 80, proto, """
                x/a - . . .
                x/b . - . .
                y/a . . - .
                y/b . . . -
                ext . . . .""")

    def test_default_deny_ingress(self):
        m = model(netpol("x", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]}))
        self.check(m, 81, "UDP", """
            x/a - X . .
            x/b X - . .
            y/a X X - .
            y/b X X . -
            ext X X . .""")

    def test_named_ports_resolve_on_the_destination_with_the_protocol(self):
        m = model(netpol("x", "n", {"podSelector": {}, "ingress": [{"ports": [{"port": "serve-80-tcp"}]}]}),
                  netpol("y", "n", {"podSelector": {}, "ingress": [{"ports": [{"port": "web"}]}]}))
        self.check(m, 80, "TCP", """
            x/a - . X X
            x/b . - X X
            y/a . . - X
            y/b . . X -
            ext . . X X""")
        self.check(m, 81, "TCP", """
            x/a - X . X
            x/b X - . X
            y/a X X - X
            y/b X X . -
            ext X X . X""")
        self.check(m, 80, "UDP", """
            x/a - X X X
            x/b X - X X
            y/a X X - X
            y/b X X X -
            ext X X X X""")
        # a UDP port's name under the default protocol (TCP) matches nothing
        m = model(netpol("x", "n", {"podSelector": {}, "ingress": [{"ports": [{"port": "serve-80-udp"}]}]}))
        for proto in ("TCP", "UDP"):
            self.assertFalse(m.allowed(m.node("y/b"), m.node("x/a"), 80, proto))

    def test_policy_types_inferred_from_egress_rules(self):
        m = model(netpol("x", "p", {"podSelector": {"matchLabels": {"pod": "a"}},
                                    "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}))
        self.check(m, 80, "TCP", """
            x/a - X . .
            x/b X - . .
            y/a X . - .
            y/b X . . -
            ext X . . .""")

    def test_ipblock_except_only_within_its_peer(self):
        block = {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}}
        m = model(netpol("y", "in", {"podSelector": {}, "ingress": [{"from": [
                      block, {"podSelector": {"matchLabels": {"pod": "a"}}, "namespaceSelector": {}}]}]}),
                  netpol("x", "out", {"podSelector": {"matchLabels": {"pod": "b"}}, "policyTypes": ["Egress"],
                                      "egress": [{"to": [block]}]}))
        self.check(m, 80, "TCP", """
            x/a - . . .
            x/b X - X .
            y/a . . - .
            y/b . . . -
            ext . . X X""")

    def test_sctp_is_not_tcp_and_endport_is_a_range(self):
        m = model(netpol("x", "sctp", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "SCTP", "port": 80}]}]}),
                  netpol("y", "range", {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": 81}]}]}))
        for port in (80, 81):
            self.check(m, port, "TCP", """
                x/a - X . .
                x/b X - . .
                y/a X X - .
                y/b X X . -
                ext X X . .""")
        self.check(m, 80, "UDP", """
            x/a - X X X
            x/b X - X X
            y/a X X - X
            y/b X X X -
            ext X X X X""")
        self.assertFalse(m.allowed(m.node("x/a"), m.node("y/b"), 82, "TCP"))

    def test_egress_of_the_source_and_ingress_of_the_destination_must_both_allow(self):
        m = model(netpol("x", "out", {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
                                      "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "a"}},
                                                          "namespaceSelector": {"matchLabels": {"team": "blue"}}}],
                                                  "ports": [{"port": 81}]}]}),
                  netpol("y", "in", {"podSelector": {}, "ingress": [{
                      "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "x"}}}],
                      "ports": [{"port": 80}, {"port": 81, "protocol": "TCP"}]}]}))
        self.check(m, 80, "TCP", """
            x/a - X X X
            x/b . - . .
            y/a . . - X
            y/b . . X -
            ext . . X X""")
        self.check(m, 81, "TCP", """
            x/a - X . X
            x/b . - . .
            y/a . . - X
            y/b . . X -
            ext . . X X""")

    def test_one_peer_with_both_selectors_is_not_two_peers(self):
        one = model(netpol("x", "p", {"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [{"from": [
            {"podSelector": {"matchLabels": {"pod": "a"}},
             "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}]}))
        two = model(netpol("x", "p", {"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [{"from": [
            {"podSelector": {"matchLabels": {"pod": "a"}}},
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}]}))
        self.check(one, 80, "TCP", """
            x/a - X . .
            x/b . - . .
            y/a . . - .
            y/b . X . -
            ext . X . .""")
        self.check(two, 80, "TCP", """
            x/a - . . .
            x/b . - . .
            y/a . . - .
            y/b . . . -
            ext . X . .""")

    def test_a_pod_selector_alone_selects_in_the_policy_namespace(self):
        m = model(netpol("x", "p", {"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [{"from": [
            {"podSelector": {"matchLabels": {"pod": "a"}}}]}]}))
        self.check(m, 81, "UDP", """
            x/a - . . .
            x/b . - . .
            y/a . X - .
            y/b . X . -
            ext . X . .""")

    def test_match_expressions(self):
        m = model(netpol("x", "p", {"podSelector": {"matchExpressions": [{"key": "pod", "operator": "NotIn",
                                                                          "values": ["a"]}]},
                                    "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                                        {"key": "team", "operator": "DoesNotExist"}]}}]}]}))
        self.check(m, 80, "TCP", """
            x/a - . . .
            x/b . - . .
            y/a . X - .
            y/b . X . -
            ext . X . .""")


class Services(unittest.TestCase):
    SVCS = [
        {"kind": "Service", "metadata": {"namespace": "x", "name": "s"},
         "spec": {"selector": {"pod": "b"}, "ports": [
             {"name": "t", "port": 8080, "targetPort": "serve-81-tcp"},
             {"name": "u", "port": 8080, "protocol": "UDP", "targetPort": "serve-81-tcp"}]}},
        {"kind": "Service", "metadata": {"namespace": "x", "name": "none"},
         "spec": {"selector": {"pod": "nobody"}, "ports": [{"port": 9090, "targetPort": 80}]}},
    ]

    def setUp(self):
        self.m = model(netpol("x", "p", {"podSelector": {"matchLabels": {"pod": "b"}},
                                         "ingress": [{"ports": [{"port": 81}]}]}),
                       *self.SVCS, services={"x/s": "10.96.0.1", "x/none": "10.96.0.2"})

    def test_the_target_port_is_judged_on_the_endpoint(self):
        c = evaluate.judge(self.m, "y/a", "10.96.0.1:8080/tcp")
        self.assertEqual((c.expect, c.dst, c.port, c.answers), (True, "x/b", 8080, {"x/b"}))
        # the UDP port names a TCP container port: no endpoint, blocked
        self.assertFalse(evaluate.judge(self.m, "y/a", "10.96.0.1:8080/udp").expect)
        self.assertFalse(evaluate.judge(self.m, "y/a", "10.96.0.2:9090/tcp").expect)
        # its own Service: not judged
        self.assertIsNone(evaluate.judge(self.m, "x/b", "10.96.0.1:8080/tcp").expect)
        # a pod reaching its own IP: not judged
        self.assertIsNone(evaluate.judge(self.m, "x/b", "10.0.2.1:80/tcp").expect)

    def test_compare_flags_wrong_verdicts_and_wrong_answers(self):
        cells = evaluate.compare(self.m, [
            "y/a 10.96.0.1:8080/tcp ok x/b",
            "y/a 10.0.2.1:80/tcp ok x/b",          # port 80 is not allowed
            "ext 10.0.2.1:81/tcp ok x/a",          # answered by the wrong pod
            "ext 10.0.1.1:81/udp fail timeout",    # x/a is not isolated
            "x/b 10.0.2.1:80/tcp fail refused",    # itself: not judged
        ])
        self.assertEqual([c.wrong for c in cells], [False, True, True, True, False])
        out = io.StringIO()
        self.assertEqual(evaluate.report(self.m, cells, "t", out), 3)
        text = out.getvalue()
        self.assertIn("t: 4 cells judged, 3 wrong", text)
        self.assertIn("TCP/80 via pod IP: expected | observed | wrong", text)
        self.assertIn("y/a -> x/b (10.0.2.1:80/tcp TCP/80 via pod): expected blocked, got connected", text)
        self.assertIn("ext -> x/b (10.0.2.1:81/tcp TCP/81 via pod): expected connect, got connected, "
                      "answered by x/a", text)


if __name__ == "__main__":
    unittest.main(verbosity=1)
