#!/bin/sh
# bench-netpol: the nftables compiler (netpol/) and its applier (gitops-nft) at scale,
# in network namespaces this bench creates and deletes, each figure against a
# baseline measured in the same run:
#   (a) the first packet of a new connection to a ClusterIP, at 10, 1,000, 10,000 and
#       30,000 Services (1 port, 2 endpoints): our table against an iptables-style linear
#       chain (one `ip daddr X udp dport 80 dnat to E:8080` rule per Service), each above
#       a floor of its size: the same datagrams through conntrack and NAT with no Service
#       rule. Target: ours above its floor at 30,000 at most 1 us above the same at 10,
#       while the linear chain grows.
#   (b) cold load of 10,000 Services x 2 endpoints (target 2 s) and x 10 (5 s):
#       compile (bench/netpol-compile.c: what `gitops node apply` runs) + gitops-nft
#   (c) one endpoint added, then removed, with 10,000 Services loaded (target 20 ms):
#       the whole table reloaded (what gitops did before) against the new input
#       compiled, its text compared with the script loaded last (netpol_script_delta),
#       the change loaded; then the node end to end: on the endpoint's own node, its
#       readiness flipping and `gitops node refresh` (what its shim runs: only that
#       pod's Services compiled, netpol_partial_delta); on the others, `gitops node
#       apply` of the next plan, as the controller sends it (a networkDelta and a
#       clusterDelta onto the digests the node reports) against the same plan carrying
#       the whole network and cluster state (what gitops sent before)
#   (d) 500 NetworkPolicy groups x 1,000 peers, cold (target 5 s)
#   (e) peak RSS at 10,000 Services x 2: the compile and gitops-nft, each (150 MB)
# Targets are judged on CPU time (user + system of the processes, rusage): every step
# is one single-threaded process whose kernel work (netlink, the nf_tables commit)
# runs in its own system calls, so on an idle machine the wall clock is the same, and
# on a shared one the CPU time is what does not depend on the neighbours. The wall
# clock is printed next to it. Exit 1 when a target is missed, 2 when the bench could
# not run.
#
#   NETPOL_BENCH_SIZES      Service counts of (a) (default "10 1000 10000 30000")
#   NETPOL_BENCH_ROUNDS     rounds of (a); each contender sends twice per round (default 9)
#   NETPOL_BENCH_PACKETS    timed datagrams per send at most (default 10000)
#   NETPOL_BENCH_BUDGET_MS  CPU time per send at most, in ms (default 100)
#   NETPOL_BENCH_RUNS       runs of each cold load (best kept) and whole reloads (default 2)
#   NETPOL_BENCH_DELTAS     delta add+remove pairs timed in (c) (default 5)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
sizes=${NETPOL_BENCH_SIZES:-10 1000 10000 30000}
rounds=${NETPOL_BENCH_ROUNDS:-9}
packets=${NETPOL_BENCH_PACKETS:-10000}
budget=${NETPOL_BENCH_BUDGET_MS:-100}
runs=${NETPOL_BENCH_RUNS:-2}
deltas=${NETPOL_BENCH_DELTAS:-5}

die() { echo "bench-netpol: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, nftables)"
command -v ip >/dev/null 2>&1 || die "no ip(8)"
[ $((rounds * (packets + 1000))) -le 240000 ] ||
	die "NETPOL_BENCH_ROUNDS x NETPOL_BENCH_PACKETS would overflow the conntrack table"
make -s all build/bench/netpol-gen build/bench/netpol-compile build/bench/netpol-pkt \
	build/bench/netpol-run || die "make failed"
gen=build/bench/netpol-gen
cc=build/bench/netpol-compile
run=build/bench/netpol-run
nft=$top/gitops-nft
table=gitops_bench    # only ever loaded inside this bench's namespaces

tmp=$(mktemp -d /tmp/gitops-bench-netpol.XXXXXX) || die "mktemp failed"
tag=npb$$
ns_del_all() {
	# the cluster DNS that `gitops node apply` started in (c)
	if [ -f "$tmp/state/dns/dnsmasq.pid" ]; then
		kill "$(cat "$tmp/state/dns/dnsmasq.pid")" 2>/dev/null
		rm -f "$tmp/state/dns/dnsmasq.pid"
	fi
	for x in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^$tag-"); do
		ip netns del "$x"
	done
}
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	ns_del_all
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

# field LINE KEY: the word after KEY in LINE
field() { echo "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'; }
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }   # calc FORMAT EXPRESSION
verdict() { # verdict OK(1|0); runs in $(...), so a miss is noted in a file
	if [ "$1" = 1 ]; then echo PASS; else : >"$tmp/missed"; echo MISS; fi
}
med() { sort -n | awk -v k="${1:-1}" '{ v[NR] = $k } END { print v[int((NR + 1) / 2)] }'; }
range() { sort -n | awk 'NR == 1 { a = $1 } { b = $1 } END { print a "-" b }'; }

echo "netpol at scale ($(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg);" \
	"$(nft --version 2>/dev/null || echo nftables); kernel $(uname -r))"

# --- (a) ---------------------------------------------------------------------------------
# Namespaces per contender K: K-pod --veth--> K-node (the rules) --veth--> K-sink (drops all).
ns_up() {
	ns_p=$1-pod ns_n=$1-node ns_s=$1-sink
	ip netns add "$ns_p" && ip netns add "$ns_n" && ip netns add "$ns_s" &&
	ip -n "$ns_p" link add v0 type veth peer name v1 netns "$ns_n" &&
	ip -n "$ns_n" link add s0 type veth peer name s1 netns "$ns_s" &&
	ip -n "$ns_p" addr add 10.254.0.2/16 dev v0 && ip -n "$ns_p" link set v0 up &&
	ip -n "$ns_p" route add default via 10.254.0.1 &&
	ip -n "$ns_n" addr add 10.254.0.1/16 dev v1 && ip -n "$ns_n" link set v1 up &&
	ip -n "$ns_n" addr add 10.253.0.1/30 dev s0 && ip -n "$ns_n" link set s0 up &&
	ip -n "$ns_n" route add 10.96.0.0/12 via 10.253.0.2 &&
	ip -n "$ns_n" route add 10.128.0.0/9 via 10.253.0.2 &&
	ip -n "$ns_s" addr add 10.253.0.2/30 dev s1 && ip -n "$ns_s" link set s1 up &&
	ip -n "$ns_s" route add blackhole default &&
	ip netns exec "$ns_n" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.v1.rp_filter=0 &&
	ip netns exec "$ns_s" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.s1.rp_filter=0
}

echo "(a) first packet of a new connection: CPU ns per UDP datagram, pod netns --veth--> node netns"
echo "    (the rules: conntrack, nat prerouting, DNAT, forward, nat postrouting) --veth--> sink,"
echo "    every datagram from a new source address:port to one of the N ClusterIPs, at random"
echo "    (bench/netpol-pkt.c). floor-N: the same datagrams (same ClusterIPs, same order) through"
echo "    conntrack + NAT with no Service rule, so the kernel's cost of the traffic itself is not"
echo "    counted as the rules'. $rounds rounds of two passes, one in order, one in reverse order:"
echo "    each contender sends once per pass (<= $packets datagrams or $budget ms; the sender pinned to"
echo "    one CPU; the node's conntrack table flushed before and after each send): median (min-max)"
echo "    of the $((2 * rounds)) sends; above floor-N: the median of the per-pass differences"
# K.svcs: the ClusterIPs K sends to; the floors load the same ruleset (one rule that matches
# nothing, so that conntrack and NAT run as with any ruleset) and see their size's traffic
contenders='' reverse=''
$gen linear 0 --udp --table "$table" >"$tmp/floor.nft"
for n in $sizes; do
	$gen services "$n" 2 --udp --table "$table" >"$tmp/svc.json"
	$cc "$tmp/svc.json" "$tmp/ours-$n.nft" >/dev/null || die "netpol-compile failed at $n Services"
	$gen linear "$n" --udp --table "$table" >"$tmp/linear-$n.nft"
	cp "$tmp/floor.nft" "$tmp/floor-$n.nft"
	for k in floor ours linear; do
		echo "$n" >"$tmp/$k-$n.svcs"
		contenders="$contenders $k-$n" reverse="$k-$n $reverse"
	done
done
rm -f "$tmp/svc.json" "$tmp/floor.nft"
for k in $contenders; do
	ns_up "$tag-$k" || die "cannot set up the namespaces of $k"
	$run --netns "$tag-$k-node" --in "$tmp/$k.nft" -- "$nft" >"$tmp/$k.load" ||
		die "$k: gitops-nft could not load the rules"
	rm -f "$tmp/$k.nft"
	: >"$tmp/$k.ns"
done
# the sender on the last CPU (no migration mid-send; its softirqs run there too)
pinned() {
	if command -v taskset >/dev/null 2>&1; then taskset -c $(($(nproc) - 1)) "$@"; else "$@"; fi
}
# pass p: every contender sends the same datagrams (sources and ClusterIPs from p)
p=0
while [ "$p" -lt $((2 * rounds)) ]; do
	order=$contenders
	[ $((p % 2)) = 0 ] || order=$reverse
	for k in $order; do
		out=$(pinned ip netns exec "$tag-$k-pod" build/bench/netpol-pkt "$(cat "$tmp/$k.svcs")" \
			"$packets" "$budget" $((p * (packets + 1000))) "$tag-$k-node") ||
			die "$k: netpol-pkt failed"
		field "$out" ns_per_packet >>"$tmp/$k.ns"
		field "$out" sent >>"$tmp/$k.sent"
	done
	p=$((p + 1))
done
for k in $contenders; do
	sent=$(awk '{ s += $1 } END { print s }' "$tmp/$k.sent")
	got=$(ip netns exec "$tag-$k-sink" cat /sys/class/net/s1/statistics/rx_packets)
	[ "$got" -ge $((sent * 99 / 100)) ] || die "$k: $got of $sent datagrams reached the sink"
done
ns_del_all
# Differences are taken pass by pass (each pair measured close in time), then the median.
# above A B: A - B per pass; grows K: (K - floor) at the last size - at the first, per pass
above() { paste "$tmp/$1.ns" "$tmp/$2.ns" | awk '{ print $1 - $2 }'; }
grows() {
	paste "$tmp/$1-$last.ns" "$tmp/floor-$last.ns" "$tmp/$1-$first.ns" "$tmp/floor-$first.ns" |
		awk '{ print ($1 - $2) - ($3 - $4) }'
}
first='' last=''
printf '    %-8s %-22s %-32s %-32s %s\n' Services "floor-N (no rule)" "ours: raw, above floor-N" \
	"linear: raw, above floor-N" "load: ours / linear"
for n in $sizes; do
	printf '    %-8s %-22s %-32s %-32s %.2f s / %.2f s\n' "$n" \
		"$(med <"$tmp/floor-$n.ns") ($(range <"$tmp/floor-$n.ns"))" \
		"$(med <"$tmp/ours-$n.ns") ($(range <"$tmp/ours-$n.ns")) $(above "ours-$n" "floor-$n" | med | xargs printf %+d)" \
		"$(med <"$tmp/linear-$n.ns") ($(range <"$tmp/linear-$n.ns")) $(above "linear-$n" "floor-$n" | med | xargs printf %+d)" \
		"$(field "$(cat "$tmp/ours-$n.load")" cpu)" "$(field "$(cat "$tmp/linear-$n.load")" cpu)"
	[ -n "$first" ] || first=$n
	last=$n
done
d_ours=$(grows ours | med) d_lin=$(grows linear | med)
d_raw=$(above "ours-$last" "ours-$first" | med) d_floor=$(above "floor-$last" "floor-$first" | med)
quarts() { sort -n | awk '{ v[NR] = $1 } END { print v[int(NR / 4) + 1] " to " v[NR - int(NR / 4)] }'; }
printf '  ours above its floor, %s vs %s Services: %+d ns (middle half of the passes: %s; target <= +1000 ns) %s\n' \
	"$last" "$first" "$d_ours" "$(grows ours | quarts)" \
	"$(verdict "$([ "$d_ours" -le 1000 ] && echo 1 || echo 0)")"
printf '  raw (the measure before the floors): ours at %s vs %s Services %+d ns, of which the traffic'"'"'s own (floor-%s vs floor-%s) %+d ns\n' \
	"$last" "$first" "$d_raw" "$last" "$first" "$d_floor"
o=$(above "ours-$last" "floor-$last" | med) l=$(above "linear-$last" "floor-$last" | med)
printf '  linear above its floor, %s vs %s Services: %+d ns; at %s: linear %s ns, ours %s ns above floor-%s (%s)\n' \
	"$last" "$first" "$d_lin" "$last" "$l" "$o" "$last" \
	"$(calc '%.0fx' "$l / ($o > 100 ? $o : 100)")"
spread() { sort -n "$tmp/$1.ns" | awk 'NR == 1 { a = $1 } { b = $1 } END { print b - a }'; }
printf '  noise: the sends of floor-%s spread over %s ns, of floor-%s over %s ns\n' \
	"$first" "$(spread "floor-$first")" "$last" "$(spread "floor-$last")"

# --- (b), (d), (e): cold loads -------------------------------------------------------------
# cold NAME INPUT: compile, then load into a fresh namespace, NETPOL_BENCH_RUNS times; the
# run with the least CPU in $tmp/NAME.best:
#   cpu wall ccpu cwall crss parse compile lcpu lwall lrss bytes
cold() {
	: >"$tmp/$1.runs"
	i=0
	while [ "$i" -lt "$runs" ]; do
		c=$($run --out "$tmp/cc.out" -- $cc "$2" "$tmp/cold.nft") || die "$1: netpol-compile failed"
		ip netns add "$tag-cold" || die "ip netns add failed"
		l=$($run --netns "$tag-cold" --in "$tmp/cold.nft" -- "$nft") || die "$1: gitops-nft failed"
		ip netns del "$tag-cold"
		co=$(cat "$tmp/cc.out")
		echo "$(calc %.3f "$(field "$c" cpu) + $(field "$l" cpu)")" \
			"$(calc %.3f "$(field "$c" wall) + $(field "$l" wall)")" \
			"$(field "$c" cpu) $(field "$c" wall) $(field "$c" maxrss_kb)" \
			"$(field "$co" parse_cpu) $(field "$co" compile_cpu)" \
			"$(field "$l" cpu) $(field "$l" wall) $(field "$l" maxrss_kb) $(field "$co" bytes)" >>"$tmp/$1.runs"
		i=$((i + 1))
	done
	sort -n "$tmp/$1.runs" | head -n 1 >"$tmp/$1.best"
	rm -f "$tmp/cold.nft"
}
# report NAME WHAT TARGET_S
report() {
	# shellcheck disable=SC2046 # eleven numbers
	set -- "$2" "$3" $(cat "$tmp/$1.best")
	printf '    %-25s %5.2f s = compile %.2f s (JSON %.2f + netpol_compile %.2f) + gitops-nft %.2f s; wall %.2f s; %.1f MB of nft (target %s s) %s\n' \
		"$1" "$3" "$5" "$8" "$9" "${10}" "$4" "$(calc %.1f "${13} / 1048576")" "$2" \
		"$(verdict "$(calc %d "$3 <= $2")")"
}
echo "(b) cold load, CPU time (best of $runs): compile + gitops-nft into an empty namespace"
$gen services 10000 2 --table "$table" >"$tmp/s2.json"
$gen services 10000 10 --table "$table" >"$tmp/s10.json"
cold s2 "$tmp/s2.json"
report s2 "10,000 Services x 2 eps" 2
cold s10 "$tmp/s10.json"
report s10 "10,000 Services x 10 eps" 5
rm -f "$tmp/s10.json"

echo "(d) NetworkPolicy cold, CPU time (best of $runs): 500 local pods, each selected by its own"
echo "    policy (500 groups), each allowing TCP 8080 from 1,000 of 10,000 peer pods"
$gen policies 500 1000 --table "$table" >"$tmp/pol.json"
cold pol "$tmp/pol.json"
report pol "500 groups x 1,000 peers" 5
rm -f "$tmp/pol.json"

echo "(e) peak RSS at 10,000 Services (the runs of (b))"
for x in s2 s10; do
	# shellcheck disable=SC2046 # eleven numbers
	set -- $(cat "$tmp/$x.best")
	if [ "$x" = s2 ]; then
		w="x 2 endpoints" v=$(verdict "$([ "$5" -le 153600 ] && [ "${10}" -le 153600 ] && echo 1 || echo 0)")
	else
		w="x 10 endpoints" v="(no target)"
	fi
	printf '    %-15s compile %5.1f MB, gitops-nft %5.1f MB (target 150 MB each) %s\n' "$w" \
		"$(calc %.1f "$5 / 1024")" "$(calc %.1f "${10} / 1024")" "$v"
done

# --- (c) ---------------------------------------------------------------------------------
echo "(c) one endpoint added to, then removed from, one of 10,000 loaded Services"
$gen services 10000 2 --table "$table" --add-endpoint 1234 >"$tmp/s2add.json"
ip netns add "$tag-delta" || die "ip netns add failed"
$cc "$tmp/s2.json" "$tmp/base.nft" >/dev/null || die "netpol-compile failed"
$cc "$tmp/s2add.json" "$tmp/add.nft" >/dev/null || die "netpol-compile failed"
$run --netns "$tag-delta" --in "$tmp/base.nft" -- "$nft" >/dev/null || die "gitops-nft failed"
# step OLD.nft NEW.json full|delta >>FILE: "cpu wall ccpu cwall compile lcpu lwall bytes";
# full: NEW compiled, the whole table loaded; delta: NEW compiled and its text compared
# with OLD, the script loaded last (netpol_script_delta), the change loaded
step() {
	if [ "$3" = full ]; then
		c=$($run --out "$tmp/cc.out" -- $cc "$2" "$tmp/step.nft")
	else
		c=$($run --out "$tmp/cc.out" -- $cc --script "$1" "$2" "$tmp/step.nft")
	fi || die "netpol-compile failed"
	l=$($run --netns "$tag-delta" --in "$tmp/step.nft" -- "$nft") || {
		head -c 2000 "$tmp/step.nft" >&2; die "gitops-nft could not load the $3 change"; }
	co=$(cat "$tmp/cc.out")
	echo "$(calc %.4f "$(field "$c" cpu) + $(field "$l" cpu)")" \
		"$(calc %.4f "$(field "$c" wall) + $(field "$l" wall)")" \
		"$(field "$c" cpu) $(field "$c" wall) $(field "$co" compile_cpu)" \
		"$(field "$l" cpu) $(field "$l" wall) $(field "$co" bytes)"
}
: >"$tmp/full.add"; : >"$tmp/full.del"; : >"$tmp/delta.add"; : >"$tmp/delta.del"
i=0
while [ "$i" -lt "$runs" ]; do
	step "$tmp/base.nft" "$tmp/s2add.json" full >>"$tmp/full.add"
	step "$tmp/add.nft" "$tmp/s2.json" full >>"$tmp/full.del"
	i=$((i + 1))
done
i=0
while [ "$i" -lt "$deltas" ]; do
	step "$tmp/base.nft" "$tmp/s2add.json" delta >>"$tmp/delta.add"
	step "$tmp/add.nft" "$tmp/s2.json" delta >>"$tmp/delta.del"
	i=$((i + 1))
done
# After the last removal the table must be the one loaded first (rules and elements as
# one sorted list here; tests/unit/test_netpol_delta.c does the exact check).
words() { ip netns exec "$tag-delta" "$nft" --list ip "$table" | sed 's/[,{}]/\n/g' |
	sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | grep -v '^$' | sort; }
words >"$tmp/after"
ip netns exec "$tag-delta" "$nft" <"$tmp/base.nft" || die "reload failed"
words >"$tmp/before"
cmp -s "$tmp/after" "$tmp/before" || die "(c): the table after the deltas differs from the whole table"
ip netns del "$tag-delta"
rm -f "$tmp/base.nft" "$tmp/add.nft" "$tmp/step.nft"

# The node: `gitops node apply` of a plan with this network, the cluster state such a
# cluster has and no pod, in a namespace and a state directory of its own: the first
# loads the whole table, each next one adds or removes the endpoint. The CPU time is the
# node's whole apply (the plan read and kept, the cluster state merged, the network
# filled in and compiled, the delta, gitops-nft, reading the touched objects back for
# the table's digest, the cluster DNS, the status it answers), gitops-nft included.
plan() { printf '{"protocol":1,"node":"bench","pods":[],"cluster":'; cat "$tmp/cluster.json"
	printf ',"network":'; cat "$1"; echo '}'; }
# sorted FILE: netpol-gen's Services (one a line) sorted by namespace, then name, as
# the controller sends them (a networkDelta is spliced into the node's copy in that
# order; LC_ALL=C: '"' sorts before any character of a name, as the end of a string)
sorted() {
	head -n 1 "$1"
	tail -n +2 "$1" | sed 's/,$//; $s/\]}$//' | LC_ALL=C sort | sed '$!s/$/,/; $s/$/]}/'
}
sorted "$tmp/s2.json" >"$tmp/s2sorted.json" && mv "$tmp/s2sorted.json" "$tmp/s2.json"
sorted "$tmp/s2add.json" >"$tmp/s2sorted.json" && mv "$tmp/s2sorted.json" "$tmp/s2add.json"
# the cluster state: each Service's ClusterIP record (store/cluster.c's versioned
# entries), and the two entries an endpoint's readiness changes (the network's hash, the
# pod list of the endpoint's node), as CLUSTER_B; CLUSTER_A has those two changed
centry() { printf '"%s":{"v":%s,"value":%s}' "$1" "$2" "$3"; }
ca_net=$(centry networkHash 20003 '"after"') ca_pods=$(centry pods/node-14 20004 '[{"ready":false}]')
cb_net=$(centry networkHash 20001 '"before"') cb_pods=$(centry pods/node-14 20002 '[{"ready":true}]')
awk -F'"' '$2 == "namespace" { printf "%s\"service/%s/%s\":{\"v\":%d,\"value\":{\"clusterIP\":\"%s\",\"time\":1795000000}}", sep, $4, $8, NR, $12; sep = "," }
	END { print "," }' "$tmp/s2.json" >"$tmp/cluster.json"
[ "$(grep -o '"service/' "$tmp/cluster.json" | wc -l)" -eq 10000 ] || die "(c): the cluster state has not 10,000 Services"
printf '{%s%s,%s}\n' "$(cat "$tmp/cluster.json")" "$cb_net" "$cb_pods" >"$tmp/cluster.json.new" &&
	mv "$tmp/cluster.json.new" "$tmp/cluster.json"
plan "$tmp/s2.json" >"$tmp/plan.json"
plan "$tmp/s2add.json" >"$tmp/plan-add.json"
# svc1234 FILE: that Service's object; dplan NOW WAS CNOW CWAS: the plan the controller
# sends for that change: a networkDelta of svc-1234 from FILE WAS to FILE NOW onto the
# network whose digest is NBASE, and a clusterDelta of the two entries onto the state
# whose hash is CBASE
svc1234() { grep '"name":"svc-1234"' "$1" | sed 's/,$//'; }
dkey=$(svc1234 "$tmp/s2.json" | sed 's/^{"namespace":"\([^"]*\)","name":"\([^"]*\)".*/\1\/\2/')
dplan() { printf '{"protocol":1,"node":"bench","pods":[],"networkDelta":{"base":"NBASE","services":{"%s":%s},"was":{"%s":%s}},"clusterDelta":{"base":"CBASE","set":{%s},"was":{%s}}}\n' \
	"$dkey" "$(svc1234 "$1")" "$dkey" "$(svc1234 "$2")" "$3" "$4"; }
dplan "$tmp/s2add.json" "$tmp/s2.json" "$ca_net,$ca_pods" "$cb_net,$cb_pods" >"$tmp/dplan-add.tmpl"
dplan "$tmp/s2.json" "$tmp/s2add.json" "$cb_net,$cb_pods" "$ca_net,$ca_pods" >"$tmp/dplan-del.tmpl"
# the same with one more endpoint of svc-4321 on this node: pod bench-local, whose
# readiness the node reads from its state (STATE/pods/UID, as a shim leaves it)
sed '/"name":"svc-4321"/s/}\]}\(,\{0,1\}\)$/},{"uid":"bench-local","node":"bench","local":true,"ports":{"http":8080}}]}\1/' \
	"$tmp/s2.json" >"$tmp/s2local.json"
grep -q bench-local "$tmp/s2local.json" || die "(c): no local endpoint in the input"
plan "$tmp/s2local.json" >"$tmp/plan-local.json"
rm -f "$tmp/s2.json" "$tmp/s2add.json" "$tmp/s2local.json"
ip netns add "$tag-node" || die "ip netns add failed"
gnode() { ip netns exec "$tag-node" "$top/gitops" node "$@" --state-dir "$tmp/state" --run-dir "$tmp/run"; }
napply() { $run --netns "$tag-node" --in "$1" -- "$top/gitops" node apply --state-dir "$tmp/state" \
	--run-dir "$tmp/run" -o json || die "gitops node apply failed"; }
# pairs ADD DEL NAME: $deltas applies of plan ADD, each followed by one of DEL, their
# CPU lines in NAME.add and NAME.del
pairs() {
	: >"$tmp/$3.add"; : >"$tmp/$3.del"
	i=0
	while [ "$i" -lt "$deltas" ]; do
		napply "$1" >>"$tmp/$3.add"
		napply "$2" >>"$tmp/$3.del"
		i=$((i + 1))
	done
}
napply "$tmp/plan.json" >"$tmp/node.cold"
pairs "$tmp/plan-add.json" "$tmp/plan.json" node
gnode rules >/dev/null 2>&1 || die "(c): the node's table differs from what it recorded"
nd=$(gnode status --since 0 -o json | grep -o '"delta": *true' | wc -l)
[ "$nd" -eq $((2 * deltas)) ] || die "(c): $nd of $((2 * deltas)) node loads were deltas"
# The same changes as the controller sends them: a networkDelta of svc-1234 alone onto
# the network the node reports (networkDigest) and a clusterDelta of the two entries
# onto its clusterHash, kept aside (network-delta.json, cluster-delta.json), only that
# Service compiled (netpol_partial_delta). A wrong digest shows as a refusal: each
# delta's base is the digest the whole plan gives.
ndigest() { gnode status -o json | sed -n 's/.*"networkDigest": *"\([0-9a-f]*\)".*/\1/p'; }
chash() { gnode status -o json | sed -n 's/.*"clusterHash": *"\([0-9a-f]*\)".*/\1/p'; }
d0=$(ndigest) c0=$(chash)
napply "$tmp/plan-add.json" >/dev/null
d1=$(ndigest)
napply "$tmp/plan.json" >/dev/null
[ -n "$d0" ] && [ -n "$d1" ] && [ -n "$c0" ] || die "(c): the node reports no networkDigest or clusterHash"
sed "s/NBASE/$d0/; s/CBASE/$c0/" "$tmp/dplan-add.tmpl" >"$tmp/dplan-add.json"
napply "$tmp/dplan-add.json" >/dev/null
[ "$(ndigest)" = "$d1" ] || die "(c): a networkDelta did not make the whole plan's network"
c1=$(chash)
sed "s/NBASE/$d1/; s/CBASE/$c1/" "$tmp/dplan-del.tmpl" >"$tmp/dplan-del.json"
napply "$tmp/dplan-del.json" >/dev/null
[ "$(chash)" = "$c0" ] || die "(c): the clusterDeltas did not come back to the whole plan's state"
pairs "$tmp/dplan-add.json" "$tmp/dplan-del.json" ndelta
[ "$(ndigest)" = "$d0" ] || die "(c): after the networkDeltas the node's network is not the whole plan's"
gnode rules >/dev/null 2>&1 || die "(c): the node's table differs from what it recorded"
npd=$(gnode status --since 0 -o json | grep -o '"partial": *true' | wc -l)
[ "$npd" -eq $((2 * deltas + 2)) ] || die "(c): $npd of $((2 * deltas + 2)) networkDelta loads compiled only their Service"
# The endpoint's own node: bench-local's readiness flips, `gitops node refresh` loads it
# (the first refresh finds a new pod: a whole compile, which indexes it).
napply "$tmp/plan-local.json" >/dev/null
pod=$tmp/state/pods/bench-local
mkdir -p "$pod/containers/c" || die "mkdir failed"
echo '{"uid":"bench-local","podIP":"10.250.0.5","spec":{"containers":[{"name":"c"}]}}' >"$pod/pod.json"
ready() { echo "{\"ready\":$1}" >"$pod/containers/c/state.json"; }
nrefresh() { $run --netns "$tag-node" -- "$top/gitops" node refresh --state-dir "$tmp/state" \
	--run-dir "$tmp/run" || die "gitops node refresh failed"; }
ready true
nrefresh >/dev/null
: >"$tmp/ready.del"; : >"$tmp/ready.add"
i=0
while [ "$i" -lt "$deltas" ]; do
	ready false
	nrefresh >>"$tmp/ready.del"
	ready true
	nrefresh >>"$tmp/ready.add"
	i=$((i + 1))
done
gnode rules >/dev/null 2>&1 || die "(c): the node's table differs from what it recorded"
np=$(gnode status --since 0 -o json | grep -o '"partial": *true' | wc -l)
[ "$np" -eq $((4 * deltas + 2)) ] || die "(c): $((np - 2 * deltas - 2)) of $((2 * deltas)) readiness loads compiled only their Services"
ns_del_all

ms() { calc %.1f "$(med "$1" <"$2") * 1000"; }
line() {
	printf '    %-24s %7s ms = compile %6s ms (%s %6s ms) + gitops-nft %6s ms; wall %7s ms; %s bytes\n' \
		"$1" "$(ms 1 "$2")" "$(ms 3 "$2")" "$3" "$(ms 5 "$2")" "$(ms 6 "$2")" "$(ms 2 "$2")" \
		"$(med 8 <"$2")"
}
echo "    the rules, CPU time, median of $runs whole-table reloads and of $deltas deltas each way"
echo "    (compile: the JSON read, then netpol_compile, and for a delta netpol_script_delta):"
line "add, whole table (before)" "$tmp/full.add" "netpol_compile      "
line "remove, whole table" "$tmp/full.del" "netpol_compile      "
line "add, delta (the node)" "$tmp/delta.add" "compile + text diff "
line "remove, delta" "$tmp/delta.del" "compile + text diff "
fa=$(med 6 <"$tmp/full.add") la=$(med 6 <"$tmp/delta.add") ld=$(med 6 <"$tmp/delta.del")
ta=$(med 1 <"$tmp/delta.add") td=$(med 1 <"$tmp/delta.del")
na=$(awk '{ print $4 }' "$tmp/node.add" | med) nr=$(awk '{ print $4 }' "$tmp/node.del" | med)
printf '  gitops-nft, the change alone: add %s ms, remove %s ms (whole table %s ms: %s) (target 20 ms) %s\n' \
	"$(calc %.1f "$la * 1000")" "$(calc %.1f "$ld * 1000")" "$(calc %.0f "$fa * 1000")" \
	"$(calc %.0fx "$fa / $la")" "$(verdict "$(calc %d "$la <= 0.020 && $ld <= 0.020")")"
printf '  the rules by a whole compile (JSON read + compile + text diff + gitops-nft, part of a plan'"'"'s apply): add %s ms, remove %s ms\n' \
	"$(calc %.1f "$ta * 1000")" "$(calc %.1f "$td * 1000")"
ra=$(awk '{ print $4 }' "$tmp/ready.add" | med) rr=$(awk '{ print $4 }' "$tmp/ready.del" | med)
printf '  the endpoint'"'"'s node, its readiness flipped + gitops node refresh, CPU (median of %s each way; all: %s ms): add %s ms, remove %s ms (target 20 ms) %s\n' \
	"$deltas" "$(cat "$tmp/ready.add" "$tmp/ready.del" | awk '{ printf "%.1f\n", $4 * 1000 }' | range)" \
	"$(calc %.1f "$ra * 1000")" "$(calc %.1f "$rr * 1000")" \
	"$(verdict "$(calc %d "$ra <= 0.020 && $rr <= 0.020")")"
printf '  the other nodes, before: gitops node apply of the next plan carrying the whole network and cluster state, CPU (median of %s each way): add %s ms, remove %s ms; the first, whole table: %s ms\n' \
	"$deltas" "$(calc %.0f "$na * 1000")" "$(calc %.0f "$nr * 1000")" \
	"$(calc %.0f "$(field "$(cat "$tmp/node.cold")" cpu) * 1000")"
da=$(awk '{ print $4 }' "$tmp/ndelta.add" | med) dr=$(awk '{ print $4 }' "$tmp/ndelta.del" | med)
printf '  the other nodes, now: gitops node apply of the next plan as the controller sends it (a networkDelta of svc-1234, a clusterDelta of 2 entries), CPU (median of %s each way; all: %s ms): add %s ms, remove %s ms, %sx less than before (target 20 ms) %s\n' \
	"$deltas" "$(cat "$tmp/ndelta.add" "$tmp/ndelta.del" | awk '{ printf "%.1f\n", $4 * 1000 }' | range)" \
	"$(calc %.1f "$da * 1000")" "$(calc %.1f "$dr * 1000")" "$(calc %.0f "($na + $nr) / ($da + $dr)")" \
	"$(verdict "$(calc %d "$da <= 0.020 && $dr <= 0.020")")"
[ ! -e "$tmp/missed" ]
