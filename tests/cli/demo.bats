#!/usr/bin/env bats
# make demo's script (mk/demo.sh): examples/hello on a 2-node test bed, its answer
# through the Service's ClusterIP and its DNS name, then make demo-down's cleanup.

load helpers

setup_file() {
	export DEMO_DIR=$(mktemp -d)/demo
}

teardown_file() {
	sh "$top/mk/demo.sh" down >/dev/null 2>&1 || true
	rm -rf "$(dirname "$DEMO_DIR")"
}

@test "the demo syncs examples/hello and prints its answer by ClusterIP and by DNS name" {
	[[ "$GITOPS" == "$top/gitops" ]] || skip "the demo runs ./gitops (normal build only)"
	run sh "$top/mk/demo.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '^hello from hello-')" -eq 2 ]
	[[ "$output" == *"rolled out revision 1 (2/2 updated, 2 ready)"* ]]
	[[ "$output" == *"make demo-down"* ]]
	printf '%s\n' "${lines[@]}" | grep -qE '^  hello +hello +2/2 +2 +2 +1 +complete'
}

@test "make demo-down removes the test bed" {
	[[ "$GITOPS" == "$top/gitops" ]] || skip "the demo runs ./gitops (normal build only)"
	run sh "$top/mk/demo.sh" down
	[ "$status" -eq 0 ]
	[ ! -e "$DEMO_DIR" ]
}
