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
