#!/usr/bin/env bats
# The build: licensing boundaries, help on every command, the version.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "gitops never links libnftables; gitops-nft never links OpenSSL" {
	nft="$(dirname "$GITOPS")/gitops-nft"
	run ldd "$GITOPS"
	[ "$status" -eq 0 ]
	[[ "$output" != *libnftables* ]]
	# OpenSSL is in gitops (linked statically where libcrypto.a is installed)
	run "$GITOPS" version
	[[ "$output" == *OpenSSL\ 3* ]]
	run ldd "$nft"
	[ "$status" -eq 0 ]
	[[ "$output" == *libnftables* ]]
	[[ "$output" != *libcrypto* && "$output" != *libssl* ]]
}

@test "gitops does not link libcurl: httpGet probes dlopen it at first use" {
	# every linked library costs every start of gitops (docs/architecture.md)
	run ldd "$GITOPS"
	[ "$status" -eq 0 ]
	[[ "$output" != *libcurl* ]]
	# the library the probes load is installed (make deps)
	run ldconfig -p
	[[ "$output" == *"libcurl.so.4 "* ]]
}

@test "every command has --help, and help COMMAND says the same" {
	for c in $("$GITOPS" --help | awk '/^  [a-z]/ {print $1}'); do
		run "$GITOPS" "$c" --help
		[ "$status" -eq 0 ]
		[[ "${lines[0]}" == "Usage: gitops $c"* ]]
		help_out=$("$GITOPS" help "$c")
		[ "$help_out" = "$output" ]
	done
}

@test "the nftables applier dry-runs a transaction and reports errors on stdout" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	nft="$(dirname "$GITOPS")/gitops-nft"
	run "$nft" --check <<<$'table ip gitops_buildtest {\n chain c {\n  type filter hook forward priority 0;\n }\n}'
	[ "$status" -eq 0 ]
	run "$nft" --check <<<$'table ip gitops_buildtest {\n chain c {\n  nonsense\n }\n}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"Error"* ]]
	run "$nft" --bogus
	[ "$status" -eq 2 ]
}
