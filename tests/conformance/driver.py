#!/usr/bin/python3
"""Run the NetworkPolicy conformance cases (cases.py) on a test bed.

  driver.py setup              write the base repository (Nodes, settings, namespaces,
                               pods, Services), commit, `gitops sync --wait`, and check
                               that every pod serves (the no-policy case)
  driver.py run NAME...        run the cases named, or every case of a group named; for
                               each: write its state, commit, `gitops sync --wait`, read
                               the pods' and Services' IPs (`gitops get -o json`), probe
                               (one `gitops exec POD -- /agnhost probe ...` per pod, all
                               at once, plus agnhost on the test host as a non-pod
                               client), and judge with evaluate.py
  driver.py list               groups and cases

A case with wrong cells is probed once more (as upstream's framework does) before it
counts as failed; a case right only the second time is reported as "flaky". Output:
one line per case ("ok NAME", "flaky NAME", "FAIL NAME") and the truth-table diff of
each failure with every node's `gitops node rules`. Exit 1 when a case failed.

Environment: GITOPS (the binary under test), TB (the test bed's directory), R (the
test repository), ST (the controller's state directory), AGNHOST (agnhost built for
the host), WORK (a directory for each case's files: live.json, results.txt, report).
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import evaluate  # noqa: E402
import yaml  # noqa: E402

NAMESPACES = ["x", "y", "z"]
PODS = ["a", "b", "c"]
ALL = ["%s/%s" % (n, p) for n in NAMESPACES for p in PODS]
PORTS = [80, 81]
SVC_PORT = {80: 1080, 81: 1081}   # Service port → the pod's port it targets
PROBE_TIMEOUT_MS = 1000
SPORT_FIRST, SPORT_LAST, SPORT_STEP = 20000, 32000, 64


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit("driver: %s is not set" % name)
    return v


def testbed_env():
    out = {}
    with open(os.path.join(env("TB"), "env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v.strip('"')
    return out


TBENV, GITOPS, R, ST, WORK, SSH, COMMON, NODES = {}, "", "", "", "", "", [], []


def load_env():
    """The test bed and the paths, from the environment (setup and run need them)."""
    global TBENV, GITOPS, R, ST, WORK, SSH, COMMON, NODES
    TBENV = testbed_env()
    GITOPS, R, ST, WORK = env("GITOPS"), env("R"), env("ST"), env("WORK")
    SSH = TBENV["SSH_CONFIG"]
    COMMON = ["--repo", R, "--state-dir", ST, "--ssh-config", SSH]
    NODES = TBENV["NODES"].split()


def node_of(key):
    """x/a node1, x/b node2, x/c node1, y/a node2, ...: every namespace on both nodes."""
    return NODES[ALL.index(key) % len(NODES)]


# ---- the repository ---------------------------------------------------------------------

class Dumper(yaml.SafeDumper):
    """Quotes the strings YAML 1.1 (Kubernetes' reader, and gitops') takes for booleans:
    PyYAML leaves y, n, Y, N bare, and namespace y would arrive as true."""


YAML11_BOOLS = {"y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON",
                "off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE"}
Dumper.add_representer(str, lambda d, s: d.represent_scalar(
    "tag:yaml.org,2002:str", s, style='"' if s in YAML11_BOOLS else None))


def dump(path, objs):
    full = os.path.join(R, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        yaml.dump_all(objs, f, Dumper=Dumper, sort_keys=False, default_flow_style=None, width=120)


def base_objects(state):
    nss, pods, svcs = [], [], []
    for n in NAMESPACES:
        labels = {"ns": n}
        labels.update(state.ns_labels.get(n, {}))
        nss.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": n, "labels": labels}})
    for key in ALL:
        n, p = key.split("/")
        labels = {"pod": p, "svc": p}
        labels.update(state.pod_labels.get(key, {}))
        pods.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p, "namespace": n, "labels": labels},
            "spec": {
                "nodeName": node_of(key),
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "agnhost",
                    "image": TBENV["REGISTRY"] + "/conformance:test",
                    "command": ["/agnhost", "serve", "--name", key, "--tcp", "80,81", "--udp", "80,81"],
                    "ports": [{"name": "serve-%d-%s" % (port, proto.lower()), "containerPort": port,
                               "protocol": proto} for proto in ("TCP", "UDP") for port in PORTS],
                    "readinessProbe": {"tcpSocket": {"port": "serve-80-tcp"}, "periodSeconds": 1},
                }],
            },
        })
        svcs.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s-%s-%s" % (n, p), "namespace": n},
            "spec": {
                "selector": {"svc": p},
                # named and numbered target ports; Service ports differ from the pod's,
                # so a policy must see the connection after DNAT
                "ports": [{"name": "%s-%d" % (proto.lower(), port), "port": SVC_PORT[port],
                           "targetPort": ("serve-80-%s" % proto.lower()) if port == 80 else 81,
                           "protocol": proto} for proto in ("TCP", "UDP") for port in PORTS],
            },
        })
    return nss, pods, svcs


def write_state(state):
    """Write the state's manifests; True when the pods changed (their IPs may too)."""
    nss, pods, svcs = base_objects(state)
    pods_file = os.path.join(R, "conformance/pods.yaml")
    before = open(pods_file).read() if os.path.exists(pods_file) else None
    dump("conformance/namespaces.yaml", nss)
    dump("conformance/pods.yaml", pods)
    dump("conformance/services.yaml", svcs)
    pol = os.path.join(R, "conformance/policies.yaml")
    if state.policies:
        dump("conformance/policies.yaml", state.policies)
    elif os.path.exists(pol):
        os.unlink(pol)
    with open(pods_file) as f:
        return f.read() != before


def git(*args):
    subprocess.run(["git", "-C", R] + list(args), check=True, stdout=subprocess.DEVNULL)


def commit(message):
    git("add", "-A")
    git("commit", "-q", "--allow-empty", "-m", message)


def run(argv, timeout=180):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout)


def sync():
    p = run([GITOPS, "sync"] + COMMON + ["--wait", "--timeout", "120s"])
    if p.returncode != 0:
        raise CaseError("gitops sync --wait exited %d:\n%s" % (p.returncode, p.stdout))
    return p.stdout


class CaseError(Exception):
    pass


# ---- live state ---------------------------------------------------------------------------

def get_json(kind):
    p = run([GITOPS, "get", kind, "-A", "-o", "json"] + COMMON, timeout=60)
    if p.returncode != 0:
        raise CaseError("gitops get %s -A -o json exited %d:\n%s" % (kind, p.returncode, p.stdout))
    d = json.loads(p.stdout)
    return d.get("items", [d]) if d.get("kind") == "List" else [d]


def live_state(wait_s=60):
    """{"pods": {key: {ip, ready, node}}, "services": {ns/name: ip}, "ext": host}; waits
    (up to wait_s) until every pod is ready with an IP."""
    deadline = time.time() + wait_s
    while True:
        pods = {}
        for it in get_json("pods"):
            md, st = it.get("metadata", {}), it.get("status", {})
            key = "%s/%s" % (md.get("namespace"), md.get("name"))
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in st.get("conditions") or [])
            pods[key] = {"ip": st.get("podIP"), "ready": ready,
                         "node": (it.get("spec") or {}).get("nodeName")}
        missing = [k for k in ALL if not (pods.get(k) or {}).get("ip") or not pods[k]["ready"]]
        if not missing:
            break
        if time.time() > deadline:
            raise CaseError("pods not ready with an IP after sync: %s\n%s" % (
                ", ".join(missing), json.dumps(pods, indent=1)))
        time.sleep(0.5)
    svcs = {}
    for it in get_json("services"):
        md, spec = it.get("metadata", {}), it.get("spec") or {}
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            svcs["%s/%s" % (md.get("namespace"), md.get("name"))] = ip
    if not svcs:
        # `get svc` shows git's objects; the allocated ClusterIPs are in the network
        # object every node keeps (docs/node-protocol.md, STATE/network.json)
        p = run(["ssh", "-F", SSH, NODES[0], "cat", "/var/lib/gitops/network.json"], timeout=60)
        if p.returncode == 0:
            for s in json.loads(p.stdout).get("services") or []:
                ip = s.get("clusterIP")
                if ip and ip != "None":
                    svcs["%s/%s" % (s["namespace"], s["name"])] = ip
    return {"pods": {k: pods[k] for k in ALL}, "services": svcs, "ext": TBENV["TESTBED_HOST_ADDR"]}


class Ctx:
    """What a case may refer to: the IPs of the moment."""

    def __init__(self, live):
        self.live = live
        self.ext = live["ext"]
        self.cluster_cidr = TBENV["CLUSTER_CIDR"]

    def ip(self, key):
        return self.live["pods"][key]["ip"]

    def pod_cidr(self, k):
        return TBENV["NODE%d_POD_CIDR" % k]


# ---- probing ------------------------------------------------------------------------------

_sport = [SPORT_FIRST]


def next_sport():
    """A fresh block of UDP source ports per probe round: no 5-tuple (so no conntrack
    entry of an earlier round, allowed then) is ever reused while the test bed lives."""
    v = _sport[0]
    _sport[0] = v + SPORT_STEP if v + 2 * SPORT_STEP <= SPORT_LAST else SPORT_FIRST
    return v


def targets(live, src):
    out = []
    for dst in ALL:   # itself too: probed, not judged (upstream ignores loopback too)
        ip = live["pods"][dst]["ip"]
        out += ["%s:%d/%s" % (ip, port, proto) for proto in ("tcp", "udp") for port in PORTS]
        if src == "ext":
            continue   # the test host has no route to Service IPs
        n, p = dst.split("/")
        sip = live["services"].get("%s/s-%s-%s" % (n, n, p))
        if sip:
            out += ["%s:%d/%s" % (sip, SVC_PORT[port], proto) for proto in ("tcp", "udp") for port in PORTS]
    return out


def probe(live):
    """Result lines "SRC TARGET ok|fail DETAIL" from every pod and the test host."""
    base = next_sport()
    procs = {}
    for src in ALL + ["ext"]:
        args = ["probe", "--timeout", str(PROBE_TIMEOUT_MS), "--sport-base", str(base)] + targets(live, src)
        if src == "ext":
            argv = [env("AGNHOST")] + args
        else:
            n, p = src.split("/")
            argv = [GITOPS, "exec", "-n", n, p] + COMMON + ["--", "/agnhost"] + args
        procs[src] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      universal_newlines=True)
    lines, errors = [], []
    for src, pr in procs.items():
        try:
            out, err = pr.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pr.kill()
            out, err = pr.communicate()
            errors.append("%s: probe timed out" % src)
        if pr.returncode != 0:
            errors.append("%s: probe exited %s: %s" % (src, pr.returncode, err.strip()))
        lines += ["%s %s" % (src, l) for l in out.splitlines() if l.strip()]
    if errors:
        raise CaseError("probing failed:\n  " + "\n  ".join(errors))
    return lines


# ---- a case -------------------------------------------------------------------------------

def node_rules():
    out = []
    for n in NODES:
        p = run(["ssh", "-F", SSH, n, "gitops", "node", "rules"], timeout=60)
        out.append("---- %s: gitops node rules (exit %d)\n%s" % (n, p.returncode, p.stdout))
    return "\n".join(out)


def judge(live, lines, name, out):
    model = evaluate.Model(evaluate.load_manifests(os.path.join(R, "conformance")), live)
    return evaluate.report(model, evaluate.compare(model, lines), name, out)


def run_case(group, name, fn, live):
    """Run one case; returns (verdict, live) with verdict "ok", "flaky" or "FAIL"."""
    full = "%s/%s" % (group, name)
    d = os.path.join(WORK, full.replace("/", "--"))
    os.makedirs(d, exist_ok=True)
    t0 = time.time()
    times = []

    def lap(what, t=[t0]):
        now = time.time()
        times.append("%s %.1f" % (what, now - t[0]))
        t[0] = now
    try:
        state = fn(Ctx(live))
        pods_changed = write_state(state)
        commit("conformance: " + full)
        shutil.copytree(os.path.join(R, "conformance"), os.path.join(d, "manifests"), dirs_exist_ok=True)
        with open(os.path.join(d, "sync.txt"), "w") as f:
            f.write(sync())
        lap("sync")
        if pods_changed or not live.get("services"):
            live = live_state()
            lap("ips")
        with open(os.path.join(d, "live.json"), "w") as f:
            json.dump(live, f, indent=1, sort_keys=True)
        verdict, reports = "ok", []
        for attempt in (1, 2):
            if attempt == 2:
                time.sleep(1)
                live = live_state()  # in case a pod was replaced behind our back
            lines = probe(live)
            lap("probe")
            with open(os.path.join(d, "results-%d.txt" % attempt), "w") as f:
                f.write("\n".join(lines) + "\n")
            with open(os.path.join(d, "report-%d.txt" % attempt), "w") as f:
                wrong = judge(live, lines, full, f)
            with open(os.path.join(d, "report-%d.txt" % attempt)) as f:
                reports.append(f.read())
            if not wrong:
                break
            verdict = "FAIL" if attempt == 2 else "flaky"
    except (CaseError, subprocess.SubprocessError, OSError, KeyError, ValueError) as e:
        print("FAIL %s (%.1f s): %s" % (full, time.time() - t0, e))
        open(os.path.join(WORK, "FAILED"), "a").write(full + "\n")
        return "FAIL", live
    dt = time.time() - t0
    if verdict == "ok":
        print("ok %s (%.1f s: %s)" % (full, dt, ", ".join(times)))
    elif verdict == "flaky":
        print("flaky %s (%.1f s): wrong at the first probe, right at the second:\n%s" % (
            full, dt, reports[0]))
    else:
        rules = node_rules()
        with open(os.path.join(d, "rules.txt"), "w") as f:
            f.write(rules)
        print("FAIL %s (%.1f s)\n%s" % (full, dt, reports[1]))
        print("manifests: %s\nloaded rules: %s" % (os.path.join(d, "manifests"), os.path.join(d, "rules.txt")))
        if not _rules_shown[0]:   # the first failure's rules in full, the others in files
            print(rules)
            _rules_shown[0] = True
    if verdict == "FAIL":
        open(os.path.join(WORK, "FAILED"), "a").write(full + "\n")
    return verdict, live


_rules_shown = [False]


def select(names):
    out = []
    for n in names:
        picked = [c for c in cases.CASES if c[0] == n or c[1] == n or "%s/%s" % c[:2] == n]
        if not picked:
            sys.exit("driver: no case or group %r" % n)
        out += picked
    return out


def load_live():
    p = os.path.join(WORK, "live.json")
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return None


def save_live(live):
    with open(os.path.join(WORK, "live.json"), "w") as f:
        json.dump(live, f)


def cmd_setup():
    gitops_yaml = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "gitops", "namespace": "gitops-system"},
                   "data": {"insecureRegistries": TBENV["REGISTRY"],
                            "clusterCIDR": TBENV["CLUSTER_CIDR"]}}
    if not os.path.exists(os.path.join(R, "cluster/nodes.yaml")):   # else cluster_up's
        os.makedirs(os.path.join(R, "cluster"), exist_ok=True)
        with open(TBENV["NODES_YAML"]) as f, open(os.path.join(R, "cluster/nodes.yaml"), "w") as g:
            g.write(f.read())
        dump("cluster/gitops.yaml", [gitops_yaml])
    write_state(cases.State())
    commit("conformance: the cluster")
    try:
        sync()
        live = live_state()
    except (CaseError, subprocess.SubprocessError) as e:
        print("setup failed: %s" % e)
        return 1
    save_live(live)
    print("setup: 9 pods on %s, services: %d" % (" ".join(NODES), len(live["services"])))
    return 0


def cmd_run(names):
    live = load_live()
    if live is None:
        sys.exit("driver: run `driver.py setup` first")
    _sport[0] = live.get("sport", SPORT_FIRST)
    failed = 0
    for group, name, fn in select(names):
        verdict, live = run_case(group, name, fn, live)
        failed += verdict == "FAIL"
        live["sport"] = _sport[0]
        save_live(live)
    return 1 if failed else 0


def main(argv):
    if argv[:1] == ["setup"]:
        load_env()
        return cmd_setup()
    if argv[:1] == ["run"] and len(argv) > 1:
        load_env()
        return cmd_run(argv[1:])
    if argv[:1] == ["list"]:
        for g, n, _ in cases.CASES:
            print("%s/%s" % (g, n))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
