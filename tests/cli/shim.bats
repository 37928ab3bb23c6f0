#!/usr/bin/env bats
# shim.bats: the hidden `gitops shim` (one container's supervisor, normally started by
# `gitops node apply`) run by hand on a pod directory made here, and `gitops node logs`
# reading what it wrote. Real runc, skopeo and umoci; busybox from the test bed's
# registry; host-network pods, so no CNI is involved. Needs root; skipped otherwise.

load helpers

setup_file() {
	export TB_DIR=
	if [ "$(id -u)" != 0 ] || ! command -v runc >/dev/null || ! command -v skopeo >/dev/null; then
		return 0
	fi
	TB_DIR=$(mktemp -d)
	"$top/tests/testbed/up" 1 --dir "$TB_DIR/tb" >/dev/null
	REGISTRY=$(sed -n 's/^REGISTRY=//p' "$TB_DIR/tb/env")
	export REGISTRY GITOPS_INSECURE_REGISTRIES=$REGISTRY
}

teardown_file() {
	[ -n "$TB_DIR" ] || return 0
	"$top/tests/testbed/down" --dir "$TB_DIR/tb" >/dev/null 2>&1 || true
	rm -rf "$TB_DIR"
}

setup() {
	[ -n "$TB_DIR" ] || skip "needs root, runc, skopeo and the test bed"
	S=$(mktemp -d) R=$S/run
	UID_=$(printf 'bb%014x' "$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ^ $$ ))")
	D=$S/pods/$UID_
	mkdir -p "$D/etc" "$R"
	echo "127.0.0.1 localhost" >"$D/etc/hosts"
	echo "nameserver 127.0.0.1" >"$D/etc/resolv.conf"
	echo "shimtest" >"$D/etc/hostname"
}

teardown() {
	[ -n "$TB_DIR" ] || return 0
	local f c
	for f in "$D"/containers/*/shim.pid; do
		[ -f "$f" ] && kill -KILL "$(cut -d' ' -f1 "$f")" 2>/dev/null || true
	done
	for c in "$D"/containers/*; do
		runc --root "$R/runc" delete --force "$UID_-${c##*/}" >/dev/null 2>&1 || true
	done
	for c in /sys/fs/cgroup/*/gitops/"$UID_"; do rmdir "$c" 2>/dev/null || true; done
	# an ASan build of the shim reports into its shim.log
	local bad
	bad=$(grep -l -e Sanitizer -e 'runtime error' "$D"/containers/*/shim.log 2>/dev/null || true)
	[ -z "$bad" ] || cat $bad
	rm -rf "$S"
	[ -z "$bad" ]
}

# pod NAME SPEC_JSON: pod.json and one spec.json per container of SPEC_JSON's
# "containers" (given as NAME=CONTAINER_JSON arguments after the spec).
pod() {
	local name=$1 spec=$2
	shift 2
	printf '{"uid":"%s","namespace":"default","name":"%s","podIP":"127.0.0.1","netns":null,"spec":%s}\n' \
		"$UID_" "$name" "$spec" >"$D/pod.json"
	local kv i=0
	for kv in "$@"; do
		mkdir -p "$D/containers/${kv%%=*}"
		printf '{"container":%s,"hash":"h","init":false,"index":%d,"env":{}}\n' "${kv#*=}" "$i" \
			>"$D/containers/${kv%%=*}/spec.json"
		i=$((i + 1))
	done
}

# shim C: start the shim of container C, detached as node apply would.
shim() {
	setsid "$GITOPS" shim --state-dir "$S" --run-dir "$R" --pod-dir "$D" --container "$1" \
		</dev/null >>"$D/containers/$1/shim.log" 2>&1 3>&- &
}

# wait_state C PATTERN: until C's state.json matches PATTERN (grep -E), 30 s at most.
wait_state() {
	local i
	for i in $(seq 600); do
		grep -Eq "$2" "$D/containers/$1/state.json" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "state of $1: $(cat "$D/containers/$1/state.json" 2>&1)"
	cat "$D/containers/$1/shim.log"
	return 1
}

logs() {
	gitops node logs --state-dir "$S" --run-dir "$R" "$@"
}

@test "shim runs a container to completion; node logs prints its output" {
	local c='{"name":"c","image":"'$REGISTRY'/busybox:test","command":["sh","-c","echo one; echo two >&2; echo three"]}'
	pod done '{"restartPolicy":"Never","hostNetwork":true,"containers":['"$c"']}' "c=$c"
	shim c
	wait_state c '"reason": "Completed"'
	grep -q '"exitCode": 0' "$D/containers/c/state.json"
	grep -q '"final": true' "$D/containers/c/state.json"
	for _ in $(seq 100); do [ -e "$D/containers/c/shim.pid" ] || break; sleep 0.05; done
	[ ! -e "$D/containers/c/shim.pid" ]
	run logs done
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | sort | tr '\n' ' ')" = "one three two " ]
	run logs "default/done" --tail 1 -c c
	[ "$status" -eq 0 ]
	[ "$output" = "three" ] || [ "$output" = "two" ]
	run logs "$UID_" --tail 0
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	grep -Eq '^[0-9T:.-]+Z stdout F one$' "$D/logs/c.log"
}

@test "node logs names the choices when a pod has several containers" {
	pod two '{"containers":[{"name":"a"},{"name":"b"}]}'
	run logs two
	[ "$status" -ne 0 ]
	[[ $output == *"a container name must be specified for pod two, choose one of: [a b]"* ]]
	run logs nope
	[ "$status" -ne 0 ]
	[[ $output == *'pods "nope" not found'* ]]
	run logs two -c a
	[ "$status" -ne 0 ]
	[[ $output == *'container "a" in pod "two" is waiting to start: ContainerCreating'* ]]
}

@test "SIGTERM to the shim stops its container after the grace period" {
	local c='{"name":"c","image":"'$REGISTRY'/busybox:test","command":["sleep","600"]}'
	pod sleeper '{"terminationGracePeriodSeconds":1,"hostNetwork":true,"containers":['"$c"']}' "c=$c"
	shim c
	wait_state c '"running"'
	runc --root "$R/runc" state "$UID_-c" >/dev/null
	kill -TERM "$(cut -d' ' -f1 "$D/containers/c/shim.pid")"
	wait_state c '"exitCode": 137'
	for _ in $(seq 100); do [ -e "$D/containers/c/shim.pid" ] || break; sleep 0.05; done
	[ ! -e "$D/containers/c/shim.pid" ]
	run runc --root "$R/runc" state "$UID_-c"
	[ "$status" -ne 0 ]
}

@test "node logs --follow prints lines as they come and ends with the shim" {
	local c='{"name":"c","image":"'$REGISTRY'/busybox:test","command":["sh","-c","for i in 1 2 3; do echo $i; sleep 0.3; done"]}'
	pod talker '{"restartPolicy":"Never","hostNetwork":true,"containers":['"$c"']}' "c=$c"
	shim c
	wait_state c '"running"'
	run timeout 20 "$GITOPS" node logs --state-dir "$S" --run-dir "$R" talker -f
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '1\n2\n3')" ]
}
