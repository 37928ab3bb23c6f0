#!/usr/bin/env bats
# tests/testbed: `up` makes nodes reachable over SSH with their own state, a registry with
# the test images, and `down` takes it all away again. Needs root.

bats_require_minimum_version 1.5.0

setup_file() {
	TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd -P)
	TBDIR=$BATS_FILE_TMPDIR/tb
	export TOP TBDIR
	local t0 t1
	t0=$(date +%s%N)
	"$TOP/tests/testbed/up" 2 --dir "$TBDIR" >"$BATS_FILE_TMPDIR/up.out" 2>&1 ||
		{ cat "$BATS_FILE_TMPDIR/up.out" >&2; return 1; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000)) >"$BATS_FILE_TMPDIR/up.ms"
}

teardown_file() {
	local d rc=0
	for d in "$TBDIR" "$BATS_FILE_TMPDIR"/tb-*; do
		[ -e "$d" ] || continue
		"$TOP/tests/testbed/down" --dir "$d" || rc=1
	done
	return $rc
}

setup() {
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
	# shellcheck source=/dev/null
	. "$TBDIR/env"
}

on() { # on NODE CMD...: run CMD on NODE over the testbed's SSH config
	ssh -F "$TBDIR/ssh_config" "$@"
}

alive() { # alive PID: running, not a zombie
	local s
	s=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$s" ] && [ "$s" != Z ]
}

# nothing_left DIR ID: no trace of testbed ID (which lived in DIR) remains on this host.
nothing_left() {
	local dir=$1 id=$2
	run ip netns list
	[[ $output != *"gtb$id-"* ]] || { echo "netns left: $output"; return 1; }
	[ ! -e "/sys/class/net/gtb$id" ] || { echo "bridge gtb$id left"; return 1; }
	run -0 ip -br link
	[[ $output != *"gtb$id-"* ]] || { echo "veth left: $output"; return 1; }
	run -0 ip -4 route show table all
	[[ $output != *"10.213.$id."* ]] || { echo "route left: $output"; return 1; }
	[ ! -e "/run/gitops-testbed/$id" ] || { echo "claim $id left"; return 1; }
	[ ! -e "$dir/state" ] || { echo "$dir/state left"; return 1; }
	run pgrep -f -- "$dir/"
	[ "$status" = 1 ] || { echo "processes left: $output"; return 1; }
}

@test "up: fast, with a short summary" {
	run -0 cat "$BATS_FILE_TMPDIR/up.out"
	[ "${#lines[@]}" -le 3 ]
	[[ ${lines[0]} == "testbed $TESTBED_ID: 2 node(s) on gtb$TESTBED_ID "* ]]
	ms=$(cat "$BATS_FILE_TMPDIR/up.ms")
	echo "up took $ms ms"
	[ "$ms" -lt 15000 ]
}

@test "up: nodes.yaml, ssh_config and env describe the nodes" {
	[ "$NODES" = "node1 node2" ]
	[ "$REGISTRY" = "$TESTBED_HOST_ADDR:5000" ]
	[ "$NODE1_ADDR" != "$NODE2_ADDR" ]
	run -0 python3 -c '
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
for i, d in enumerate(docs, 1):
    m = d["metadata"]
    print(d["apiVersion"], d["kind"], m["name"], m["labels"]["kubernetes.io/hostname"],
          m["annotations"]["gitops.io/ssh"], d["spec"]["podCIDR"])
' "$TBDIR/nodes.yaml"
	[ "${lines[0]}" = "v1 Node node1 node1 root@$NODE1_ADDR $NODE1_POD_CIDR" ]
	[ "${lines[1]}" = "v1 Node node2 node2 root@$NODE2_ADDR $NODE2_POD_CIDR" ]
	[ "${#lines[@]}" = 2 ]
	grep -qx "Host node1" "$TBDIR/ssh_config"
	grep -qx "  HostName $NODE1_ADDR" "$TBDIR/ssh_config"
	grep -qx "  StrictHostKeyChecking yes" "$TBDIR/ssh_config"
	[ "$(wc -l <"$TBDIR/known_hosts")" = 2 ]
}

@test "ssh: every node answers, by name and by its gitops.io/ssh address, quickly" {
	on node1 true
	on node2 true
	on "root@$NODE2_ADDR" true
	[ "$(on node1 hostname)" = node1 ]
	[ "$(on node2 hostname)" = node2 ]
	# No shell start-up files: /root holds only .ssh, so a command costs one handshake.
	[ "$(on node1 'ls -A /root')" = .ssh ]
	best=999999
	for _ in 1 2 3 4 5; do
		t0=$(date +%s%N)
		on node1 true
		t=$((($(date +%s%N) - t0) / 1000000))
		[ "$t" -ge "$best" ] || best=$t
	done
	echo "ssh node1 true: best of 5 took $best ms"
	[ "$best" -lt 400 ]
}

@test "ssh: the node's PATH has the system directories and the gitops under test" {
	run -0 on node1 'echo $PATH'
	[[ :$output: == *:/usr/sbin:* && :$output: == *:/usr/bin:* ]]
	[[ :$output: == *:/sbin:* && :$output: == *:/bin:* && :$output: == *:/usr/local/bin:* ]]
	run -0 on node1 'command -v runc skopeo umoci nft ip'
	[ "${#lines[@]}" = 5 ]
	want=${GITOPS:-$TOP/gitops}
	[[ $want == /* ]] || want=$PWD/$want
	[ "$(on node1 readlink /usr/local/bin/gitops)" = "$want" ]
	[ "$(on node1 readlink /usr/local/bin/gitops-nft)" = "$(dirname "$want")/gitops-nft" ]
}

@test "node: /var/lib/gitops, /root, /run/gitops and /run/netns are the node's own" {
	probe=probe-$$-$RANDOM
	on node1 "echo 1 >/var/lib/gitops/$probe && echo 1 >/root/$probe && echo 1 >/run/gitops/$probe"
	on node1 "ip netns add $probe"
	on node1 "test -f /var/lib/gitops/$probe && test -f /root/$probe && test -f /run/gitops/$probe"
	run -0 on node1 "ip netns list"
	[[ $output == *"$probe"* ]]
	# ... and nobody else's: not the host's ...
	[ ! -e "/var/lib/gitops/$probe" ]
	[ ! -e "/root/$probe" ]
	[ ! -e "/run/gitops/$probe" ]
	[ ! -e "/run/netns/$probe" ]
	# ... not node2's ...
	on node2 "! test -e /var/lib/gitops/$probe && ! test -e /root/$probe && ! test -e /run/gitops/$probe"
	run -0 on node2 "ip netns list"
	[[ $output != *"$probe"* ]]
	# ... and seen from the host under DIR/nodes/node1.
	[ -f "$TBDIR/nodes/node1/var-lib-gitops/$probe" ]
	on node1 "ip netns delete $probe && rm /var/lib/gitops/$probe /root/$probe /run/gitops/$probe"
}

@test "network: nodes reach each other and the registry; pod CIDRs are routed via their node" {
	on node1 "busybox ping -c 1 -W 2 $NODE2_ADDR >/dev/null"
	on node2 "busybox ping -c 1 -W 2 $NODE1_ADDR >/dev/null"
	on node1 "timeout 5 bash -c '</dev/tcp/$NODE2_ADDR/22'"
	on node2 "curl -sf --max-time 5 http://$REGISTRY/v2/ >/dev/null"
	run -0 on node1 "ip -4 route show $NODE2_POD_CIDR"
	[[ $output == *"via $NODE2_ADDR "* ]]
	run -0 ip -4 route show "$NODE1_POD_CIDR"
	[[ $output == *"via $NODE1_ADDR dev $TESTBED_BRIDGE"* ]]
	[ "$(on node1 cat /proc/sys/net/ipv4/ip_forward)" = 1 ]
}

@test "registry: busybox:test has sh, httpd, wget, nc and sleep on its PATH" {
	run -0 skopeo inspect --tls-verify=false "docker://$REGISTRY/busybox:test"
	[[ $output == *'"Name": "'"$REGISTRY"'/busybox"'* ]]
	run -0 skopeo inspect --tls-verify=false --config "docker://$REGISTRY/busybox:test"
	[[ $output == *'"PATH=/bin"'* ]]
	python3 -c 'import json,sys; c=json.load(sys.stdin)["config"]; assert c["Cmd"] == ["sh"], c' <<<"$output"
	oci=$BATS_TEST_TMPDIR/oci
	skopeo copy -q --src-tls-verify=false "docker://$REGISTRY/busybox:test" "oci:$oci:test"
	umoci unpack --image "$oci:test" "$BATS_TEST_TMPDIR/bundle" >/dev/null
	root=$BATS_TEST_TMPDIR/bundle/rootfs
	for app in sh httpd wget nc sleep; do
		[ -x "$root/bin/$app" ]
	done
	[ "$("$root/bin/sh" -c 'echo ok')" = ok ]
	# v1 and v2: the same files, different digests (for rollouts)
	d1=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REGISTRY/busybox:v1")
	d2=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REGISTRY/busybox:v2")
	[ -n "$d1" ]
	[ -n "$d2" ]
	[ "$d1" != "$d2" ]
}

@test "up: fails clearly when a required tool is missing, leaving nothing" {
	run -1 env PATH=/nonexistent /bin/bash "$TOP/tests/testbed/up" 1 --dir "$BATS_FILE_TMPDIR/tb-missing"
	[[ $output == *"missing required tools:"*" skopeo "* ]]
	[ ! -e "$BATS_FILE_TMPDIR/tb-missing" ]
}

@test "up: two more testbeds at the same time get their own names and addresses" {
	a=$BATS_FILE_TMPDIR/tb-a b=$BATS_FILE_TMPDIR/tb-b
	"$TOP/tests/testbed/up" 1 --dir "$a" >"$BATS_TEST_TMPDIR/a.out" 2>&1 &
	pa=$!
	"$TOP/tests/testbed/up" 1 --dir "$b" >"$BATS_TEST_TMPDIR/b.out" 2>&1 &
	pb=$!
	wait "$pa" || { cat "$BATS_TEST_TMPDIR/a.out"; false; }
	wait "$pb" || { cat "$BATS_TEST_TMPDIR/b.out"; false; }
	ida=$(. "$a/env" && echo "$TESTBED_ID")
	idb=$(. "$b/env" && echo "$TESTBED_ID")
	[ "$ida" != "$idb" ]
	[ "$ida" != "$TESTBED_ID" ]
	[ "$idb" != "$TESTBED_ID" ]
	[ "$(ssh -F "$a/ssh_config" node1 hostname)" = node1 ]
	[ "$(ssh -F "$b/ssh_config" node1 hostname)" = node1 ]
	"$TOP/tests/testbed/down" --dir "$a"
	"$TOP/tests/testbed/down" --dir "$b"
	nothing_left "$a" "$ida"
	nothing_left "$b" "$idb"
	on node1 true # the first testbed is untouched
	on node2 true
}

@test "down: cleans up after a partial up, and again without complaint" {
	d=$BATS_FILE_TMPDIR/tb-partial
	run -1 env TESTBED_FAIL_AT=ssh TESTBED_KEEP=1 "$TOP/tests/testbed/up" 1 --dir "$d"
	[[ $output == *"failing at step 'ssh'"* ]]
	id=$(sed -n 's/^TB_ID=//p' "$d/state")
	[ -n "$id" ]
	ip netns list | grep -q "^gtb$id-node1"
	pids=$(ip netns pids "gtb$id-node1")
	[ -n "$pids" ]
	"$TOP/tests/testbed/down" --dir "$d"
	nothing_left "$d" "$id"
	for p in $pids; do run -1 alive "$p"; done
	"$TOP/tests/testbed/down" --dir "$d"
	# A failed up without TESTBED_KEEP cleans up by itself.
	run -1 env TESTBED_FAIL_AT=registry "$TOP/tests/testbed/up" 1 --dir "$d"
	[[ $output == *"cleaning up"* ]]
	nothing_left "$d" "$id"
}

@test "down: no namespace, bridge, route or process of the testbed is left" {
	pids="$NODE1_PID $NODE2_PID $REGISTRY_PID $(ip netns pids "$NODE1_NETNS") $(ip netns pids "$NODE2_NETNS")"
	for p in $NODE1_PID $NODE2_PID $REGISTRY_PID; do alive "$p"; done
	"$TOP/tests/testbed/down" --dir "$TBDIR"
	nothing_left "$TBDIR" "$TESTBED_ID"
	for p in $pids; do run -1 alive "$p"; done
	run -0 "$TOP/tests/testbed/down" --dir "$TBDIR"
	[ -z "$output" ]
}
