#!/bin/sh
# Issue benchmark: a no-op `gitops reconcile` on a 20-node test bed running 10 pods per
# node (200 pods), against, in the same run and over the same test bed:
#   (a) Ansible: Debian's ansible-core, forks 20, ControlPersist and pipelining on,
#       gather_facts off, one task that only `stat`s /etc/hostname on every node;
#   (b) the floor: 20 plain `ssh nodeK true` in parallel over warm ControlMasters.
# For information it also times 20 `ssh nodeK gitops node status -o json` the same way:
# the nodes' share of gitops' time, with no controller work (no target).
# Every contender runs once to warm up (so its ControlMasters exist), then
# RECONCILE_BENCH_RUNS times (default 5); the median is compared. Targets: gitops at
# least 8x faster than Ansible and within 1.5x of the floor; exit 1 when one is missed,
# 2 when the bench could not run.
#
#   RECONCILE_BENCH_NODES     nodes (default 20)
#   RECONCILE_BENCH_PODS      pods per node (default 10)
#   RECONCILE_BENCH_RUNS      timed runs per contender (default 5)
#   RECONCILE_BENCH_TIMEOUT   sync --wait timeout for bringing the pods up (default 900s)
#   RECONCILE_BENCH_KEEP=1    leave the test bed up and print its directory (debugging)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
nodes=${RECONCILE_BENCH_NODES:-20}
per_node=${RECONCILE_BENCH_PODS:-10}
runs=${RECONCILE_BENCH_RUNS:-5}
timeout=${RECONCILE_BENCH_TIMEOUT:-900s}
pods=$((nodes * per_node))

die() { echo "bench-reconcile: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (the test bed does)"
command -v ansible-playbook >/dev/null 2>&1 || die "no ansible-playbook (make deps installs ansible-core)"
ansible_version=$(ansible-playbook --version 2>/dev/null | sed -n '1s/^ansible-playbook \[core \(.*\)\]$/\1/p')
[ -n "$ansible_version" ] || die "ansible-playbook --version failed"
make -s all || die "make all failed"

tb=$(mktemp -d /tmp/gitops-bench-reconcile.XXXXXX) || die "mktemp failed"
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	# every ControlMaster this bench started: gitops' (STATE/ssh), the floor's, Ansible's
	for s in "$tb"/ctl/ssh/* "$tb"/cm/* "$tb"/ansible/cp/*; do
		[ -S "$s" ] || continue
		ssh -o ControlPath="$s" -O exit bench-reconcile >/dev/null 2>&1 || true
	done
	if [ "${RECONCILE_BENCH_KEEP:-}" = 1 ]; then
		echo "bench-reconcile: kept the test bed in $tb (tests/testbed/down --dir $tb)" >&2
	else
		tests/testbed/down --dir "$tb" >/dev/null 2>&1 || echo "bench-reconcile: tests/testbed/down --dir $tb failed" >&2
		rm -rf "$tb"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# (info) one start of gitops, which every node pays on every reconcile: 200 runs of
# `gitops version` against 200 of /bin/true, and the shared libraries it loads
# (docs/architecture.md, "Start-up cost")
starts() { t0=$(now); i=0; while [ $i -lt 200 ]; do "$@" >/dev/null; i=$((i + 1)); done; t1=$(now); }
starts ./gitops version; start_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 200 / 1e6 }')
starts /bin/true; true_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 200 / 1e6 }')
shared_libs=$(ldd ./gitops | grep -c '=>')

# --- the test bed
t0=$(now)
tests/testbed/up "$nodes" --dir "$tb" --gitops "$top/gitops" >"$tb/up.log" 2>&1 || {
	cat "$tb/up.log" >&2; die "tests/testbed/up $nodes failed"; }
echo "test bed: $nodes nodes up in $(secs "$t0" "$(now)") s"
# shellcheck disable=SC1091 # SSH_CONFIG, NODES, REGISTRY, CLUSTER_CIDR, NODEk_ADDR ...
. "$tb/env"
: "${SSH_CONFIG:?}" "${NODES:?}" "${REGISTRY:?}" "${CLUSTER_CIDR:?}"
st=$tb/ctl   # not $tb/state: that is the test bed's
mkdir -p "$tb/cm" "$tb/home" "$tb/ansible/cp" "$tb/ansible/tmp" "$tb/ansible/rtmp"

# --- the repository: the nodes, the cluster ConfigMap, and one Deployment of PER_NODE
# replicas per node, pinned there by a nodeSelector (left to itself the scheduler puts
# anywhere from 0 to 20 pods on a node; the benchmark wants 10 on each)
repo=$tb/repo
git init -q "$repo"
git -C "$repo" config user.email bench@example.org
git -C "$repo" config user.name bench
mkdir -p "$repo/cluster" "$repo/apps"
cp "$tb/nodes.yaml" "$repo/cluster/nodes.yaml"
cat >"$repo/cluster/gitops.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: gitops, namespace: gitops-system}
data:
  insecureRegistries: "$REGISTRY"
  clusterCIDR: "$CLUSTER_CIDR"
YAML
i=1
for n in $NODES; do
	cat >"$repo/apps/sleep$i.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep$i, namespace: default}
spec:
  replicas: $per_node
  selector: {matchLabels: {app: sleep$i}}
  template:
    metadata: {labels: {app: sleep$i}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {kubernetes.io/hostname: $n}
      containers:
      - name: sleep
        image: $REGISTRY/busybox:test
        command: [sleep, "3600"]
        resources: {requests: {cpu: 1m, memory: 4Mi}}
YAML
	i=$((i + 1))
done
git -C "$repo" add -A
git -C "$repo" commit -q -m "bench: $nodes Deployments x $per_node replicas"

flags="--repo $repo --state-dir $st --ssh-config $SSH_CONFIG"

# --- bring the pods up
t0=$(now)
# shellcheck disable=SC2086 # flags holds paths without blanks (mktemp under /tmp)
./gitops sync --wait --timeout "$timeout" $flags >"$tb/sync.log" 2>&1 || {
	tail -n 40 "$tb/sync.log" >&2; die "gitops sync --wait did not bring $pods pods up (see above)"; }
up_s=$(secs "$t0" "$(now)")

# count the running containers on every node (one ssh each, in parallel)
for n in $NODES; do
	ssh -F "$SSH_CONFIG" "$n" gitops node status -o json >"$tb/status.$n.json" &
done
wait
# shellcheck disable=SC2086 # NODES is a list of names
dist=$(/usr/bin/python3 - "$tb" $NODES <<'PY'
import json, sys
tb, names = sys.argv[1], sys.argv[2:]
per = []
for n in names:
    with open("%s/status.%s.json" % (tb, n)) as f:
        s = json.load(f)
    per.append(sum(1 for p in s["pods"] for c in p["containerStatuses"] if "running" in c["state"]))
print(sum(per), min(per), max(per))
PY
) || die "could not read the nodes' status"
# shellcheck disable=SC2086 # three numbers
set -- $dist
[ "$1" -eq "$pods" ] || die "$1 containers running after sync --wait, expected $pods"
echo "sync --wait: $pods pods on $nodes nodes running after $up_s s (per node: $2..$3)"

# --- (gitops) a no-op reconcile; the first run also starts the ControlMasters
rc_once() {
	# shellcheck disable=SC2086
	./gitops reconcile $flags >"$tb/reconcile.out" 2>&1 || {
		cat "$tb/reconcile.out" >&2; die "gitops reconcile failed"; }
	if grep -Eq 'started|stopped|applied' "$tb/reconcile.out"; then
		cat "$tb/reconcile.out" >&2; die "gitops reconcile was not a no-op"
	fi
}

# --- (a) Ansible, kept inside $tb: config, inventory, HOME, local and remote temp
ab=$tb/ansible
{
	echo "[nodes]"
	k=1
	for n in $NODES; do
		addr=''
		eval "addr=\${NODE${k}_ADDR:?}"
		echo "$n ansible_host=$addr"
		k=$((k + 1))
	done
	echo "[nodes:vars]"
	echo "ansible_user=root"
	echo "ansible_ssh_common_args='-F $SSH_CONFIG'"
} >"$ab/hosts"
cat >"$ab/ansible.cfg" <<CFG
[defaults]
inventory = $ab/hosts
forks = $nodes
gathering = explicit
host_key_checking = True
interpreter_python = /usr/bin/python3
local_tmp = $ab/tmp
remote_tmp = $ab/rtmp
retry_files_enabled = False
nocolor = True

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s
control_path_dir = $ab/cp
CFG
cat >"$ab/stat.yml" <<'YML'
- hosts: nodes
  gather_facts: false
  tasks:
  - stat: {path: /etc/hostname}
YML
ansible_once() {
	HOME=$tb/home ANSIBLE_CONFIG=$ab/ansible.cfg ANSIBLE_LOCAL_TEMP=$ab/tmp \
	ANSIBLE_REMOTE_TEMP=$ab/rtmp ANSIBLE_HOST_KEY_CHECKING=True \
	ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 \
		ansible-playbook "$ab/stat.yml" >"$ab/out" 2>&1 || {
		cat "$ab/out" >&2; die "ansible-playbook failed"; }
	ok=$(grep -Ec ' ok=1 .*unreachable=0 +failed=0' "$ab/out" || true)
	[ "$ok" -eq "$nodes" ] || { cat "$ab/out" >&2; die "ansible-playbook: $ok of $nodes hosts ok"; }
}

# --- (b) the floor: plain ssh in parallel over warm ControlMasters
floor_once() {
	pids=""
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" -o ControlMaster=auto -o ControlPath="$tb/cm/%C" \
			-o ControlPersist=60s "$n" true &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p" || die "ssh true failed"
	done
}

# (info) what the nodes' side costs: the same command gitops runs on each node, by
# plain ssh in parallel, its output thrown away; no controller work at all
# shellcheck disable=SC2317 # called through interleaved's list
status_once() {
	pids=""
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" -o ControlMaster=auto -o ControlPath="$tb/cm/%C" \
			-o ControlPersist=60s "$n" gitops node status -o json >/dev/null &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p" || die "ssh gitops node status failed"
	done
}

# The contenders alternate run by run, so a noisy second hurts each of them alike.
interleaved() {
	rc_once; ansible_once; floor_once; status_once   # warm-up: ControlMasters for all
	: >"$tb/times.gitops"; : >"$tb/times.ansible"; : >"$tb/times.floor"; : >"$tb/times.status"
	r=1
	while [ "$r" -le "$runs" ]; do
		for c in gitops:rc_once ansible:ansible_once floor:floor_once status:status_once; do
			t0=$(now)
			"${c#*:}"
			t1=$(now)
			secs "$t0" "$t1" >>"$tb/times.${c%%:*}"
			echo >>"$tb/times.${c%%:*}"
		done
		r=$((r + 1))
	done
}
interleaved
g=$(median <"$tb/times.gitops")
a=$(median <"$tb/times.ansible")
f=$(median <"$tb/times.floor")
sn=$(median <"$tb/times.status")
list() { tr '\n' ' ' <"$tb/times.$1" | sed 's/ $//'; }

# the nodes' home directories must still hold nothing but .ssh
dirty=$(find "$tb"/nodes/node*/root -mindepth 1 -maxdepth 1 ! -name .ssh 2>/dev/null | head -n 5)
[ -z "$dirty" ] || echo "bench-reconcile: warning: node home directories were written: $dirty" >&2

echo "no-op reconcile, $nodes nodes x $per_node pods, median of $runs warm runs ($(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  gitops reconcile          %6.3f s   (%s)\n' "$g" "$(list gitops)"
printf '  (a) ansible stat, forks %-2s %6.3f s   (%s; ansible-core %s)\n' "$nodes" "$a" "$(list ansible)" "$ansible_version"
printf '  (b) floor: %-2s x ssh true  %6.3f s   (%s)\n' "$nodes" "$f" "$(list floor)"
printf '  (info) %-2s x ssh gitops node status, no controller  %6.3f s   (%s)\n' "$nodes" "$sn" "$(list status)"
printf '  (info) one start of gitops: %s ms (/bin/true %s ms), %s shared libraries\n' "$start_ms" "$true_ms" "$shared_libs"
echo "  (info) warm, gitops sends each node's command to that node's ControlMaster socket itself: no ssh process per node (the floor starts $nodes)"
vs_a=$(awk -v a="$a" -v g="$g" 'BEGIN { printf "%.1f", a / g }')
vs_f=$(awk -v f="$f" -v g="$g" 'BEGIN { printf "%.2f", g / f }')
echo "gitops vs ansible: ${vs_a}x faster (target >= 8x)"
echo "gitops vs floor: ${vs_f}x the floor (target <= 1.5x)"
miss=0
awk -v x="$vs_a" 'BEGIN { exit !(x >= 8) }' || { echo "bench-reconcile: MISSED: gitops is only ${vs_a}x faster than Ansible" >&2; miss=1; }
awk -v x="$vs_f" 'BEGIN { exit !(x <= 1.5) }' || { echo "bench-reconcile: MISSED: gitops takes ${vs_f}x the floor" >&2; miss=1; }
exit "$miss"
