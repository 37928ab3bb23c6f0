# Shared set-up for the bats tests. GITOPS is the binary under test (run-all sets it;
# it defaults to ./gitops). Each test gets a fresh temp dir in $T.
top=$(cd "$(dirname "${BATS_TEST_FILENAME}")/../.." && pwd)
GITOPS=${GITOPS:-$top/gitops}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

common_setup() {
	T=$(mktemp -d)
	export XDG_STATE_HOME=$T/state HOME=$T/home
	mkdir -p "$HOME"
	git config --global user.email test@example.org
	git config --global user.name Test
	git config --global init.defaultBranch main
}

common_teardown() {
	rm -rf "$T"
}

# new_repo DIR: an empty git repository.
new_repo() {
	git init -q "$1"
}

# commit DIR MESSAGE: commit everything in DIR.
commit() {
	git -C "$1" add -A && git -C "$1" commit -q -m "$2"
}

# write FILE <<EOF ... : write stdin to FILE, creating directories.
write() {
	mkdir -p "$(dirname "$1")"
	cat >"$1"
}

gitops() {
	"$GITOPS" "$@"
}

# ---- a test bed (for setup_file) -----------------------------------------------------
# bed_up N: a test bed of N nodes in $TB, driven by hand-written plans or by a cluster.
bed_up() {
	TB=$(mktemp -d)
	export TB
	"$top/tests/testbed/up" "$1" --dir "$TB" --gitops "$GITOPS" >"$TB/up.log" 2>&1 || {
		cat "$TB/up.log" >&3; return 1; }
}

bed_down() {
	"$top/tests/testbed/down" --dir "$TB" >/dev/null 2>&1 || true
	rm -rf "$TB"
}

# bed_env: the test bed's variables in a test (setup); containers restart quickly.
bed_env() {
	. "$TB/env"
	export GITOPS_BACKOFF_BASE_MS=500
}

# on NODE CMD...: run a command on a test bed node, passing GITOPS_* variables.
on() {
	local n=$1
	shift
	ssh -F "$SSH_CONFIG" -o SendEnv='GITOPS_*' "$n" "$@"
}

# ---- a cluster on a test bed (for setup_file) --------------------------------------
# cluster_up N [KEY=VALUE...]: a test bed of N nodes in $TB, a git repo $R holding
# the Node objects and the cluster settings (cluster/, plus the KEY=VALUE settings;
# not committed yet), and the controller's state directory $ST.
cluster_up() {
	bed_up "$1" || return 1
	shift
	cluster_env
	git init -q -b main "$R"
	git -C "$R" config user.email t@example.org
	git -C "$R" config user.name T
	mkdir -p "$R/cluster" "$R/apps"
	cp "$TB/nodes.yaml" "$R/cluster/nodes.yaml"
	{
		printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: gitops, namespace: gitops-system}\ndata:\n'
		printf '  insecureRegistries: "%s"\n  clusterCIDR: "%s"\n' "$REGISTRY" "$CLUSTER_CIDR"
		for kv in "$@"; do printf '  %s: "%s"\n' "${kv%%=*}" "${kv#*=}"; done
	} >"$R/cluster/gitops.yaml"
}

# cluster_env: the test bed's variables in a test (setup).
cluster_env() {
	. "$TB/env"
	export R=$TB/repo ST=$TB/ctl
}

cluster_down() {
	bed_down
}

# gc SUBCOMMAND ARGS...: gitops against the cluster (controller options first, so
# `gc exec POD -- CMD` works).
gc() {
	local sub=$1
	shift
	"$GITOPS" "$sub" --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" "$@"
}

# cluster_sync MESSAGE: commit the repo and sync until every rollout is done.
cluster_sync() {
	git -C "$R" add -A
	git -C "$R" commit -q -m "$1" || true
	gc sync --wait --timeout 120s
}
