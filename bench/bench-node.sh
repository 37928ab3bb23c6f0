#!/bin/sh
# Issue 3 benchmark: time from `gitops node apply` to every container running, for
# 1 and 20 pods on one test bed node, against the floor measured in the same run:
# `runc run --detach` of the same prepared bundle, as many times, with no pod
# network, no image handling and no supervision.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
make -s all
tb=$(mktemp -d /tmp/gitops-bench-node.XXXXXX)
trap 'tests/testbed/down --dir "$tb" >/dev/null 2>&1; rm -rf "$tb"' EXIT
tests/testbed/up 1 --dir "$tb" --gitops "$top/gitops" >/dev/null
. "$tb/env"
on() { ssh -F "$SSH_CONFIG" node1 "$@"; }

plan() { # plan N
	/usr/bin/python3 - "$1" "$NODE1_POD_CIDR" "$REGISTRY" <<'PY'
import json, sys
n, cidr, reg = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pods = [{"uid": "%016x" % (0xbe00 + i), "namespace": "default", "name": "p%d" % i,
         "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 1,
                  "containers": [{"name": "c", "image": reg + "/busybox:test",
                                  "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}}
        for i in range(n)]
print(json.dumps({"protocol": 1, "node": "node1", "podCIDR": cidr, "insecureRegistries": [reg], "pods": pods}))
PY
}

now() { date +%s.%N; }

running() { # running N: are N containers running?
	on gitops node status -o json | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
n = sum(1 for p in s["pods"] for c in p["containerStatuses"] if "running" in c["state"])
sys.exit(0 if n >= int(sys.argv[1]) else 1)' "$1"
}

measure() { # measure N → seconds from apply to N running
	plan "$1" >"$tb/plan.json"
	t0=$(now)
	on gitops node apply -o json <"$tb/plan.json" >/dev/null
	until running "$1"; do sleep 0.05; done
	t1=$(now)
	echo "$t1 - $t0" | bc -l
	# the floor below starts the same rootfs gitops unpacked
	[ -d "$tb/bb-made" ] || { on 'rm -rf /tmp/bb && mkdir -p /tmp/bb && cp -a /var/lib/gitops/pods/*/containers/c/bundle/rootfs /tmp/bb/ 2>/dev/null; cd /tmp/bb && runc spec && sed -i "s/\"sh\"/\"sleep\", \"3600\"/; s/\"terminal\": true/\"terminal\": false/" config.json' && mkdir "$tb/bb-made"; }
	plan 0 | on gitops node apply -o json >/dev/null
}

# warm the image cache once (pulls are not what this measures)
measure 1 >/dev/null
g1=$(measure 1)
g20=$(measure 20)

# the floor: the same rootfs, started with runc directly
floor() { # floor N
	t0=$(now)
	on "for i in \$(seq $1); do runc --root /tmp/bbroot run -d --bundle /tmp/bb b\$i >/dev/null 2>&1 </dev/null; done"
	t1=$(now)
	on "for i in \$(seq $1); do runc --root /tmp/bbroot kill b\$i KILL 2>/dev/null; done; sleep 0.5; for i in \$(seq $1); do runc --root /tmp/bbroot delete -f b\$i 2>/dev/null; done"
	echo "$t1 - $t0" | bc -l
}
f1=$(floor 1)
f20=$(floor 20)
printf 'node apply → all running: 1 pod %.2f s (floor %.2f s, %.1fx); 20 pods %.2f s (floor %.2f s, %.1fx)\n' \
	"$g1" "$f1" "$(echo "$g1 / $f1" | bc -l)" "$g20" "$f20" "$(echo "$g20 / $f20" | bc -l)"
