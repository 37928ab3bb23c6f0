# shellcheck shell=bash
# tests/testbed/lib.sh — names, claims and teardown shared by `up` and `down` (sourced, bash).
#
# A testbed is identified by a small number ID (1..63), claimed under a lock so that
# several testbeds can run side by side. Every name and address derives from the ID:
#   bridge gtbID, host veth ends gtbID-nK, network namespaces gtbID-nodeK,
#   node subnet 10.213.ID.0/24, cluster (pod) CIDR 10.(128+ID).0.0/16.
# The claim /run/gitops-testbed/ID/dir names the testbed's directory; while it exists,
# every resource named after ID belongs to that testbed and nothing else.

TB_RUN=/run/gitops-testbed
TB_MAX_ID=63

tb_die() {
	echo "testbed: $*" >&2
	exit 1
}

tb_log() {
	[ -n "${TB_QUIET:-}" ] || echo "testbed: $*" >&2
}

# tb_names ID: the names and address prefixes of testbed ID.
tb_names() {
	TB_ID=$1
	TB_PREFIX=gtb$1
	TB_BRIDGE=gtb$1
	TB_NET=10.213.$1          # node subnet: .1 is the host (bridge, registry), .K+1 node K
	TB_PODNET=10.$((128 + $1)) # node K's pod CIDR: $TB_PODNET.K.0/24
}

tb_netns() { echo "$TB_PREFIX-node$1"; }
tb_veth() { echo "$TB_PREFIX-n$1"; }
tb_node_addr() { echo "$TB_NET.$(($1 + 1))"; }
tb_pod_cidr() { echo "$TB_PODNET.$1.0/24"; }

# tb_lock: hold the global testbed lock on fd 9 until tb_unlock (or exit).
tb_lock() {
	mkdir -p "$TB_RUN"
	exec 9>"$TB_RUN/lock"
	flock -w 30 9 || tb_die "timed out waiting for $TB_RUN/lock"
}

tb_unlock() {
	exec 9>&-
}

# tb_claim_owner ID: the directory that claimed ID, or nothing.
tb_claim_owner() {
	cat "$TB_RUN/$1/dir" 2>/dev/null || true
}

# tb_id_in_use ID: whether anything on this host already uses ID's names or addresses.
tb_id_in_use() {
	local id=$1 routes
	[ -e "/sys/class/net/gtb$id" ] && return 0
	grep -q "^gtb$id-" <<<"$(ip netns list 2>/dev/null)" && return 0
	routes=$(ip -4 route show table all 2>/dev/null; ip -4 addr show 2>/dev/null)
	grep -Eq "(^|[ /])10\.213\.$id\.|(^|[ /])10\.$((128 + id))\." <<<"$routes" && return 0
	return 1
}

# tb_claim DIR: pick a free ID, record DIR as its owner, print the ID. Caller holds the lock.
# A claim whose directory no longer records that ID (DIR deleted, state gone) and whose
# names are all unused is stale and may be taken over.
tb_claim() {
	local dir=$1 id owner
	for id in $(seq 1 "$TB_MAX_ID"); do
		if [ -d "$TB_RUN/$id" ]; then
			owner=$(tb_claim_owner "$id")
			[ -n "$owner" ] && tb_state_has_id "$owner" "$id" && continue
			tb_id_in_use "$id" && continue
			rm -rf "$TB_RUN/${id:?}"
		fi
		tb_id_in_use "$id" && continue
		mkdir "$TB_RUN/$id" || continue
		echo "$dir" >"$TB_RUN/$id/dir"
		echo "$id"
		return 0
	done
	tb_die "no free testbed id in 1..$TB_MAX_ID (see $TB_RUN)"
}

# tb_state_has_id DIR ID: DIR/state records testbed ID.
tb_state_has_id() {
	[ -f "$1/state" ] && grep -qx "TB_ID=$2" "$1/state"
}

# tb_find_id DIR: the ID of the testbed in DIR, from DIR/state or else from the claims.
tb_find_id() {
	local dir=$1 id c
	if [ -f "$dir/state" ]; then
		id=$(sed -n 's/^TB_ID=\([0-9][0-9]*\)$/\1/p' "$dir/state")
		[ -n "$id" ] && { echo "$id"; return 0; }
	fi
	for c in "$TB_RUN"/*/dir; do
		[ -f "$c" ] || continue
		if [ "$(cat "$c")" = "$dir" ]; then
			id=${c%/dir}
			echo "${id##*/}"
			return 0
		fi
	done
	return 1
}

# tb_our_netns: the network namespaces of the current testbed that exist.
tb_our_netns() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$TB_PREFIX-node[0-9]+\$" || true
}

# tb_ns_link NSFILE: "net:[inode]", the form /proc/PID/ns/net links take.
tb_ns_link() {
	echo "net:[$(stat -L -c %i "$1")]"
}

# tb_node_ns_links: the namespaces (as /proc/PID/ns link texts) of every node of the
# current testbed: its network namespace, and the mount and pid namespaces of its init.
# Namespaces shared with this script (the host's) are never listed.
tb_node_ns_links() {
	local ns link p self_mnt self_pid self_net mnt pidns depth
	self_net=$(readlink /proc/self/ns/net)
	self_mnt=$(readlink /proc/self/ns/mnt)
	self_pid=$(readlink /proc/self/ns/pid)
	depth=$(awk '/^NSpid:/ { print NF - 1 }' /proc/self/status)
	for ns in $(tb_our_netns); do
		link=$(tb_ns_link "/run/netns/$ns" 2>/dev/null) || continue
		[ "$link" = "$self_net" ] && continue
		echo "$link"
		# The node's init is pid 1 of a pid namespace one below ours: "NSpid: <our pid> 1".
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			awk -v d="$depth" '/^NSpid:/ { ok = (NF == d + 2 && $NF == 1) } END { exit !ok }' \
				"/proc/$p/status" 2>/dev/null || continue
			mnt=$(readlink "/proc/$p/ns/mnt" 2>/dev/null) || continue
			pidns=$(readlink "/proc/$p/ns/pid" 2>/dev/null) || continue
			[ "$mnt" = "$self_mnt" ] || echo "$mnt"
			[ "$pidns" = "$self_pid" ] || echo "$pidns"
		done
	done
}

# tb_pids_in LINK...: pids of live processes in any of the given namespaces.
tb_pids_in() {
	local args=() l
	[ $# -gt 0 ] || return 0
	for l in "$@"; do
		l=${l//[/\\[} # -lname takes a glob: "net:[123]" must match literally
		args+=(-lname "${l//]/\\]}" -o)
	done
	unset 'args[${#args[@]}-1]'
	find /proc/[0-9]*/ns -maxdepth 1 \( "${args[@]}" \) -printf '%h\n' 2>/dev/null |
		sed 's|^/proc/\([0-9]*\)/ns$|\1|' | grep -vx "$$" | sort -u || true
}

# tb_alive PID: the process exists and is not a zombie.
tb_alive() {
	local state
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# tb_kill_wait PID...: SIGKILL the processes and wait (up to 10 s) until they are gone.
tb_kill_wait() {
	local p
	[ $# -gt 0 ] || return 0
	kill -KILL "$@" 2>/dev/null || true
	for _ in $(seq 200); do
		for p in "$@"; do
			tb_alive "$p" && break
			p=
		done
		[ -z "$p" ] && return 0
		sleep 0.05
	done
	echo "testbed: processes still alive after SIGKILL: $*" >&2
	return 1
}

# tb_ere STRING: STRING quoted for an extended regular expression.
tb_ere() {
	# shellcheck disable=SC2001,SC2016 # a character class, no expansion wanted
	sed 's/[][\.*^$()+?{}|]/\\&/g' <<<"$1"
}

# tb_own_pids DIR: the host-visible processes `up` started for DIR, wherever their
# namespaces went: those in its pid files (if the command line still mentions DIR), and
# those whose command line is exactly what `up` runs (node init, node sshd, registry).
tb_own_pids() {
	local dir=$1 f p q c
	for f in "$dir"/nodes/node*/init.pid "$dir/registry/registry.pid"; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		[[ $p =~ ^[0-9]+$ ]] || continue
		c=$({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) || continue
		[[ $c == *" $dir/"* ]] && echo "$p"
	done
	q=$(tb_ere "$dir")
	pgrep -f -- "^unshare .* /bin/sh [^ ]*/node-init $q/nodes/node[0-9]+ " || true
	pgrep -f -- "^sshd: /usr/sbin/sshd -D -f $q/nodes/node[0-9]+/sshd_config " || true
	pgrep -x -f -- "/usr/bin/docker-registry serve $q/registry/config\\.yml" || true
}

# tb_teardown DIR: remove every resource of the testbed in DIR. Idempotent; works after a
# partial `up` and when DIR itself is gone (the claim remembers it). Touches only names
# derived from the testbed's own claimed ID and processes in its own namespaces or
# started by `up` for DIR.
# tb_pod_cgroups_rm DIR: the cgroups of the pods its nodes ran (the host's hierarchy,
# gitops/UID[/CONTAINER] in each): a node killed with its pods leaves them, and
# thousands of empty memory cgroups slow every later process on the host.
tb_pod_cgroups_rm() {
	local uid d
	for uid in "$1"/nodes/*/var-lib-gitops/pods/*; do
		[ -d "$uid" ] || continue
		uid=${uid##*/}
		for d in /sys/fs/cgroup/*/gitops/"$uid" /sys/fs/cgroup/gitops/"$uid"; do
			[ -d "$d" ] || continue
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		done
	done
}

tb_teardown() {
	local dir=$1 id owner links=() pids ns v rc=0
	id=$(tb_find_id "$dir") || id=
	if [ -n "$id" ]; then
		owner=$(tb_claim_owner "$id")
		if [ -n "$owner" ] && [ "$owner" != "$dir" ]; then
			echo "testbed: id $id is claimed by $owner, not $dir; leaving it alone" >&2
			return 1
		fi
		tb_names "$id"
	fi
	# Everything inside a node dies with its pid namespace's init; the namespace scan also
	# catches processes that entered a node's namespaces from outside.
	for _ in 1 2 3; do
		[ -z "$id" ] || mapfile -t links < <(tb_node_ns_links)
		mapfile -t pids < <({ tb_pids_in "${links[@]}"; tb_own_pids "$dir"; } | sort -u)
		[ ${#pids[@]} -gt 0 ] || break
		tb_kill_wait "${pids[@]}" || rc=1
	done
	tb_pod_cgroups_rm "$dir"
	if [ -z "$id" ]; then
		rm -f "$dir/state"
		return $rc
	fi
	for ns in $(tb_our_netns); do
		ip netns delete "$ns" || rc=1
	done
	for v in /sys/class/net/"$TB_PREFIX"-n*; do
		[ -e "$v" ] || continue
		ip link delete "${v##*/}" 2>/dev/null || true
	done
	# Deleting the bridge also drops the routes through it (pod CIDRs via node addresses).
	if [ -e "/sys/class/net/$TB_BRIDGE/bridge" ]; then
		ip link delete "$TB_BRIDGE" type bridge || rc=1
	fi
	if [ $rc = 0 ]; then
		tb_lock
		[ "$(tb_claim_owner "$id")" = "$dir" ] && rm -rf "${TB_RUN:?}/$id"
		tb_unlock
		rm -f "$dir/state"
	fi
	return $rc
}
