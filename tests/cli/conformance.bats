#!/usr/bin/env bats
# NetworkPolicy conformance on a 2-node test bed, in the manner of upstream's netpol e2e
# suite: namespaces x, y, z with pods a, b, c each (spread over both nodes), every pod
# serving TCP and UDP on 80 and 81 (named ports serve-80-tcp ...) and reachable through
# its own Service. Each case (tests/conformance/cases.py) is a commit and one
# `gitops sync --wait`; then every pod probes every other pod by pod IP and by Service IP
# on both ports and protocols (one `gitops exec POD -- /agnhost probe ...` each, all at
# once), the test host probes every pod as a client outside the cluster, and
# tests/conformance/evaluate.py, written only for the tests, says which cells are wrong
# (a truth-table diff like upstream's). Details: tests/conformance/driver.py.
#
# The matrix runs in the normal build only: under the ASan build (tests/run-all sets
# GITOPS to build/asan/gitops) its tests are skipped, saying so.

load helpers

asan() { [[ $GITOPS == */build/asan/* ]]; }

setup_file() {
	asan && return 0
	cluster_up 2 || return 1
	export WORK=$top/build/conformance/run.$TESTBED_ID
	rm -rf "$WORK" && mkdir -p "$WORK"
	AGNHOST=$("$top/tests/conformance/image" "$REGISTRY" 2>"$TB/image.log") || {
		cat "$TB/image.log" >&3; return 1; }
	export AGNHOST
	GITOPS=$GITOPS /usr/bin/python3 "$top/tests/conformance/driver.py" setup >"$TB/setup.log" 2>&1 || {
		cat "$TB/setup.log" >&3; return 1; }
}

teardown_file() {
	asan && return 0
	cluster_down
	# a failed case's files stay for a look (WORK/CASE: manifests, live.json, results,
	# report, rules)
	[ -e "$WORK/FAILED" ] || rm -rf "$WORK"
}

# conformance GROUP|CASE...: run the cases; a case right only at its second probe is
# reported as a note on the TAP stream
conformance() {
	asan && skip "the NetworkPolicy matrix runs in the normal build only (GITOPS is the ASan build)"
	GITOPS=$GITOPS run /usr/bin/python3 "$top/tests/conformance/driver.py" run "$@"
	echo "$output"
	grep '^flaky ' <<<"$output" | sed 's/^/# note: /' >&3 || true
	[ "$status" -eq 0 ]
	[[ "$output" != *FAIL* ]]
}

@test "evaluate.py agrees with truth tables computed by hand" {
	run /usr/bin/python3 "$top/tests/conformance/test_evaluate.py"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "agnhost probe: one line per target, connected or not, all at once" {
	asan && skip "needs the test bed (normal build only)"
	# on the test host: one of our pods answers, a closed port refuses
	ip=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pods"]["x/a"]["ip"])' "$WORK/live.json")
	run "$AGNHOST" probe --timeout 500 "$ip:80/tcp" "$ip:81/udp" "$ip:82/tcp" "$ip:82/udp"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$ip:80/tcp ok x/a" ]
	[ "${lines[1]}" = "$ip:81/udp ok x/a" ]
	[ "${lines[2]}" = "$ip:82/tcp fail refused" ]
	[ "${lines[3]}" = "$ip:82/udp fail refused" ]
	run "$AGNHOST" probe nonsense
	[ "$status" -eq 2 ]
}

@test "upstream e2e: network_policy.go, every test and step (TCP, UDP, SCTP rules)" {
	conformance upstream
}

@test "every single peer form, ingress and egress; ipBlock except within its peer" {
	conformance peers
}

@test "port forms: numbers, names, endPort, protocols" {
	conformance ports
}

@test "rules: policyTypes inference, ORed rules, ANDed peers and ports, conflicts" {
	conformance rules
}

@test "changes: namespace and pod labels, policy updates and deletes" {
	conformance changes
}
