#!/usr/bin/env bats
# gitops node rules: the node's nftables table of Services and NetworkPolicy, on a
# 1-node test bed driven by hand-written plans with a `network`
# (docs/node-protocol.md): loaded with the node's own pod IPs and readiness, checked
# with `node rules` and with real connections, unchanged by the same plan, repaired
# after a flush, following a readiness probe at once (no controller) with a delta
# that leaves the table as a whole load would, enforcing a deny-all NetworkPolicy,
# and emptied with the network.

load helpers

CIP=10.96.0.50 RIP=10.96.0.51
U1=00000000000000a1 U2=00000000000000a2 UC=00000000000000c1

setup_file() {
	bed_up 1
}

teardown_file() {
	bed_down
}

setup() {
	bed_env
}

# web NAME UID: busybox httpd answering "hello-from-NAME" on its port http (8080),
# ready while /tmp/index.html is there
web() {
	printf '{"uid":"%s","namespace":"default","name":"%s","labels":{"app":"web"},"spec":{"restartPolicy":"Always","terminationGracePeriodSeconds":1,"containers":[{"name":"web","image":"%s/busybox:test","imagePullPolicy":"IfNotPresent","command":["sh","-c","echo hello-from-%s > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"],"ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],"readinessProbe":{"httpGet":{"path":"/index.html","port":"http","scheme":"HTTP"},"periodSeconds":1,"timeoutSeconds":1,"successThreshold":1,"failureThreshold":1}}]}}' \
		"$2" "$1" "$REGISTRY" "$1"
}

client() {
	printf '{"uid":"%s","namespace":"default","name":"client","labels":{"app":"client"},"spec":{"restartPolicy":"Always","terminationGracePeriodSeconds":1,"containers":[{"name":"sh","image":"%s/busybox:test","imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}' \
		"$UC" "$REGISTRY"
}

# netpod NAME UID APP: an entry of network.pods, on this node (its IP left to it)
netpod() {
	printf '{"uid":"%s","namespace":"default","name":"%s","local":true,"labels":{"app":"%s"},"ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}]}' "$2" "$1" "$3"
}

# endpoint NAME UID: a local endpoint; the node fills in its IP and readiness
endpoint() {
	printf '{"uid":"%s","name":"%s","node":"node1","local":true}' "$2" "$1"
}

# remote IP...: the Service remote on $RIP:80 (numeric targetPort), its endpoints
# pods of another node at these IPs
remote() {
	local eps='' ip
	for ip in "$@"; do
		eps="$eps${eps:+,}"'{"ip":"'$ip'","node":"node2","local":false,"ready":true,"uid":"r-'$ip'","hostname":"","name":"r-'$ip'"}'
	done
	echo '{"namespace":"default","name":"remote","type":"ClusterIP","clusterIP":"'$RIP'","ports":[{"name":"http","port":80,"targetPort":8080,"protocol":"TCP","nodePort":0}],"endpoints":['"$eps"']}'
}

# full [POLICIES_JSON [SERVICE_JSON [PODS]]]: the plan with web1, web2, client, the
# Service web on $CIP:80 (and SERVICE, which sorts before web, and more network.pods)
full() {
	local svc
	svc='{"namespace":"default","name":"web","type":"ClusterIP","clusterIP":"'$CIP'","ports":[{"name":"http","port":80,"targetPort":"http","protocol":"TCP","nodePort":0}],"endpoints":['$(endpoint web1 $U1),$(endpoint web2 $U2)']}'
	cat <<-EOF
	{"protocol":1,"node":"node1","podCIDR":"$NODE1_POD_CIDR","insecureRegistries":["$REGISTRY"],
	 "pods":[$(web web1 $U1),$(web web2 $U2),$(client)],
	 "network":{"clusterCIDR":"$CLUSTER_CIDR","podCIDR":"$NODE1_POD_CIDR","serviceCIDR":"10.96.0.0/12",
	   "clusterDomain":"cluster.local","namespaces":[{"name":"default","labels":{}}],
	   "pods":[$(netpod web1 $U1 web),$(netpod web2 $U2 web),$(netpod client $UC client)${3:+,$3}],
	   "services":[${2:+$2,}$svc],"policies":${1:-[]}}}
	EOF
}

apply() {
	echo "$1" | on node1 gitops node apply -o json >/dev/null
}

# status_py EXPR: evaluate a Python expression over node1's status (s; pods by name;
# records: the journal's records)
status_py() {
	on node1 gitops node status --since 0 -o json | /usr/bin/python3 -c "
import json,sys
s=json.load(sys.stdin)
pods={p['name']:p for p in s['pods']}
records=s['journal']['records']
def loads(reason=None):
    return [r for r in records if r['type']=='rules.loaded' and reason in (None, r['body']['reason'])]
print($1)"
}

ip_of() { status_py "pods['$1']['podIP']"; }

# until_ok SECONDS CMD...: retry CMD until it succeeds
until_ok() {
	local deadline=$(( $(date +%s) + $1 )); shift
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || { echo "timed out: $*" >&2; return 1; }
		sleep 0.5
	done
}

ready() { # ready NAME...: every container of these pods is ready
	local n
	for n in "$@"; do
		[ "$(status_py "all(c['ready'] for c in pods['$n']['containerStatuses'])")" = True ] || return 1
	done
}

listing() { on node1 gitops node rules 2>/dev/null; }
# canon: `node rules -o json` on stdin → its listing's chains, sets and maps, sorted, each
# set's elements sorted (hash sets list in no fixed order)
canon() {
	/usr/bin/python3 -c '
import json, re, sys
text = json.load(sys.stdin)["listing"]
text = re.sub(r"elements = \{([^}]*)\}", lambda m: "elements = { " + ", ".join(
    sorted(e.strip() for e in m.group(1).split(",") if e.strip())) + " }", text)
print("\n".join(sorted(re.findall(r"\n\t(?:chain|set|map) .*?\n\t\}", text, re.S))))'
}
# loaded_listing: `node rules -o json` on stdin → the digest recorded when it was loaded
loaded_listing() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["loaded"]["listing"])'; }
# an endpoint is a slot of the ClusterIP's port in endpoints-tcp (netpol/netpol.h)
has_endpoint() { listing | grep -Eq " \. 80 \. [0-9]+ : $1 \. 8080( ?[,}]|$)"; }
no_endpoint() { ! has_endpoint "$1"; }

# fetch FROM URL: the page, from node1's own netns (FROM=node) or the client pod
fetch() {
	if [ "$1" = node ]; then
		on node1 curl -s --max-time 3 "$2"
	else
		on node1 gitops node exec client -- timeout 3 wget -q -O - "$2"
	fi
}

@test "a Service's ClusterIP is loaded with the node's pod IPs, and answers" {
	apply "$(full)"
	until_ok 90 ready web1 web2 client
	ip1=$(ip_of web1) ip2=$(ip_of web2)
	# the shims' readiness reached the rules without another apply
	until_ok 10 has_endpoint "$ip1"
	until_ok 10 has_endpoint "$ip2"
	run on node1 gitops node rules
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"table ip gitops {"* ]]
	[[ "$output" == *"$CIP . tcp . 80 : goto lb-tcp-"* ]]
	[[ "$output" == *"# table ip gitops matches what this node loaded"*"1 services, 0 policies"* ]]
	run on node1 gitops node rules -o json
	echo "$output" | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["matches"] and r["network"] and r["table"]=="ip gitops" and r["loaded"]["services"]==1, r'
	# real connections: from the node itself and from another pod
	run fetch node "http://$CIP/index.html"
	[[ "$output" == hello-from-web[12] ]]
	run fetch client "http://$CIP/index.html"
	[[ "$output" == hello-from-web[12] ]]
	# both endpoints serve
	seen=''
	for i in $(seq 20); do seen="$seen $(fetch node "http://$CIP/index.html")"; done
	[[ "$seen" == *hello-from-web1* && "$seen" == *hello-from-web2* ]]
	[ "$(status_py "len(loads('plan'))")" -ge 1 ]
	[ "$(status_py "len(loads('readiness'))")" -ge 1 ]
	# a new pod is in the rules before its containers start: pod.created (its IP),
	# then rules.loaded, then container.started
	[ "$(status_py "[r['type'] for r in records if r['type'] in ('rules.loaded', 'container.started') or (r['type']=='pod.created' and r['body']['uid']=='$U1')][:3]")" = \
	  "['pod.created', 'rules.loaded', 'container.started']" ]
}

@test "the same plan again loads nothing" {
	apply "$(full)"
	until_ok 60 ready web1 web2
	before=$(status_py "len(loads())")
	apply "$(full)"
	on node1 gitops node status >/dev/null
	# and neither does a refresh by hand, which says what is loaded
	run on node1 gitops node refresh
	[ "$status" -eq 0 ] && [ -z "$output" ]
	run on node1 gitops node refresh -o json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["services"])')" = 1 ]
	after=$(status_py "len(loads())")
	[ "$before" = "$after" ]
	run on node1 gitops node rules
	[ "$status" -eq 0 ]
}

@test "a table flushed by hand is reloaded by the next node status" {
	apply "$(full)"
	until_ok 60 ready web1 web2
	on node1 nft flush table ip gitops
	run on node1 gitops node rules
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"DIFFERS from what this node loaded"* ]]
	drifts=$(status_py "len([r for r in records if r['type']=='rules.drift'])")
	[ "$drifts" -ge 1 ]   # that status call repaired it already
	run on node1 gitops node rules
	[ "$status" -eq 0 ]
	[ "$(status_py "loads()[-1]['body']['reason']")" = drift ]
	run fetch node "http://$CIP/index.html"
	[[ "$output" == hello-from-web[12] ]]
	# a rule added to one of our chains is drift too
	on node1 nft add rule ip gitops services counter
	on node1 gitops node status >/dev/null
	run on node1 gitops node rules
	[ "$status" -eq 0 ]
	[ "$(status_py "len([r for r in records if r['type']=='rules.drift'])")" -gt "$drifts" ]
}

@test "a pod whose readiness probe fails leaves the endpoints at once, and comes back" {
	apply "$(full)"
	until_ok 60 ready web1 web2
	ip1=$(ip_of web1) ip2=$(ip_of web2)
	until_ok 10 has_endpoint "$ip1"
	plans=$(status_py "len([r for r in records if r['type']=='plan.applied'])")
	on node1 gitops node exec web1 -- rm /tmp/index.html
	until_ok 15 no_endpoint "$ip1"
	has_endpoint "$ip2"
	for i in $(seq 8); do
		run fetch node "http://$CIP/index.html"
		[ "$output" = hello-from-web2 ]
	done
	[ "$(status_py "loads()[-1]['body']['reason']")" = readiness ]
	on node1 "gitops node exec web1 -- sh -c 'echo hello-from-web1 > /tmp/index.html'"
	until_ok 15 has_endpoint "$ip1"
	# no plan was involved
	[ "$(status_py "len([r for r in records if r['type']=='plan.applied'])")" = "$plans" ]
}

@test "a readiness change loads a delta; a flushed table is loaded whole, and lists the same" {
	apply "$(full)"
	until_ok 60 ready web1 web2
	ip1=$(ip_of web1)
	until_ok 10 has_endpoint "$ip1"
	on node1 gitops node exec web1 -- rm /tmp/index.html
	until_ok 15 no_endpoint "$ip1"
	# the change went in as a delta, of web's rules alone (the index of the last whole
	# compile: STATE/rules-index*)
	[ "$(status_py "[loads()[-1]['body'].get(k) for k in ('reason', 'delta', 'partial')]")" = \
	  "['readiness', True, True]" ]
	[ "$(status_py "'fallback' in loads()[-1]['body']")" = False ]
	run on node1 gitops node rules -o json
	[ "$status" -eq 0 ]
	delta_listing=$(echo "$output" | canon)
	delta_digest=$(echo "$output" | loaded_listing)
	[[ "$delta_listing" == *"map endpoints-tcp"* ]]
	[[ "$delta_listing" == *"chain lb-tcp-1"* ]]
	# drift: the whole table, which lists as the delta left it, with the same digest
	on node1 nft flush table ip gitops
	on node1 gitops node status >/dev/null
	[ "$(status_py "[loads()[-1]['body'][k] for k in ('reason', 'delta', 'fallback')]")" = \
	  "['drift', False, 'the table drifted']" ]
	run on node1 gitops node rules -o json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | loaded_listing)" = "$delta_digest" ]
	[ "$(echo "$output" | canon)" = "$delta_listing" ]
	# and back, as a delta again, and it serves
	on node1 "gitops node exec web1 -- sh -c 'echo hello-from-web1 > /tmp/index.html'"
	until_ok 15 has_endpoint "$ip1"
	[ "$(status_py "[loads()[-1]['body'].get(k) for k in ('delta', 'partial')]")" = "[True, True]" ]
	run on node1 gitops node rules
	[ "$status" -eq 0 ]
	seen=''
	for i in $(seq 20); do seen="$seen $(fetch node "http://$CIP/index.html")"; done
	[[ "$seen" == *hello-from-web1* && "$seen" == *hello-from-web2* ]]
}

# delta BASE SERVICES WAS [PODS]: the plan's pods with a networkDelta instead of network
# (SERVICES: the changed Services, WAS: the same keys as the base has them, PODS: the
# pods their named targetPorts are resolved on)
delta() {
	cat <<-EOF
	{"protocol":1,"node":"node1","podCIDR":"$NODE1_POD_CIDR","insecureRegistries":["$REGISTRY"],
	 "pods":[$(web web1 $U1),$(web web2 $U2),$(client)],
	 "networkDelta":{"base":"$1","services":$2,"was":$3${4:+,\"pods\":$4}}}
	EOF
}

@test "a networkDelta of a remote endpoint loads that Service alone, and equals the whole network" {
	apply "$(full '[]' "$(remote 10.244.9.7)")"
	until_ok 60 ready web1 web2
	on node1 gitops node refresh   # readiness settled: the next load is the delta's
	d0=$(status_py "s['networkDigest']")
	[ "${#d0}" -eq 64 ]
	# another base: refused, naming both, and nothing changes
	run on node1 gitops node apply -o json <<<"$(delta "$(printf '0%.0s' $(seq 64))" '{}' '{}')"
	[ "$status" -ne 0 ]
	[[ "$output" == *"base 0000"*"is not this node's network (networkDigest $d0)"* ]]
	[ "$(status_py "s['networkDigest']")" = "$d0" ]
	# one endpoint more: the Service alone, made onto the table loaded last
	loads=$(status_py "len(loads())")
	apply "$(delta "$d0" '{"default/remote":'"$(remote 10.244.9.7 10.244.9.8)"'}' \
		'{"default/remote":'"$(remote 10.244.9.7)"'}')"
	[ "$(status_py "len(loads())")" = $((loads + 1)) ]
	[ "$(status_py "[loads()[-1]['body'].get(k) for k in ('reason', 'delta', 'partial')]")" = \
	  "['plan', True, True]" ]
	listing | grep -Eq "$RIP \. 80 \. [0-9]+ : 10\.244\.9\.8 \. 8080"
	run on node1 gitops node rules -o json
	[ "$status" -eq 0 ]
	delta_listing=$(echo "$output" | canon)
	d1=$(status_py "s['networkDigest']")
	[ "$d1" != "$d0" ]
	# the same network sent whole: the same bytes (digest), the same table, nothing to load
	apply "$(full '[]' "$(remote 10.244.9.7 10.244.9.8)")"
	[ "$(status_py "s['networkDigest']")" = "$d1" ]
	[ "$(status_py "len(loads())")" = $((loads + 1)) ]
	run on node1 gitops node rules -o json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | canon)" = "$delta_listing" ]
	# a Service removed: not endpoints alone, the whole compile's
	apply "$(delta "$d1" '{"default/remote":null}' '{"default/remote":'"$(remote 10.244.9.7 10.244.9.8)"'}')"
	[ "$(status_py "[loads()[-1]['body'].get(k) for k in ('reason', 'delta', 'partial')]")" = \
	  "['plan', True, None]" ]
	run listing
	[[ "$output" != *"$RIP"* ]]
	d2=$(status_py "s['networkDigest']")
	apply "$(full)"
	[ "$(status_py "s['networkDigest']")" = "$d2" ]
	run on node1 gitops node rules
	[ "$status" -eq 0 ]
}

# rpod IP: a pod of node2 in network.pods, serving "web" on 9090; named IP...: the
# Service remote with targetPort "web"
rpod() {
	printf '{"uid":"r-%s","namespace":"default","name":"r-%s","local":false,"ip":"%s","labels":{"app":"r"},"ports":[{"name":"web","containerPort":9090,"protocol":"TCP"}]}' \
		"$1" "$1" "$1"
}
named() { remote "$@" | sed 's/"targetPort":8080/"targetPort":"web"/'; }

@test "a networkDelta of a Service with a named targetPort loads it alone when the pods come with it" {
	pods="$(rpod 10.244.9.7),$(rpod 10.244.9.8)"
	apply "$(full '[]' "$(named 10.244.9.7)" "$pods")"
	until_ok 60 ready web1 web2
	on node1 gitops node refresh
	d0=$(status_py "s['networkDigest']")
	apply "$(delta "$d0" '{"default/remote":'"$(named 10.244.9.7 10.244.9.8)"'}' \
		'{"default/remote":'"$(named 10.244.9.7)"'}' "[$pods]")"
	[ "$(status_py "[loads()[-1]['body'].get(k) for k in ('reason', 'delta', 'partial')]")" = \
	  "['plan', True, True]" ]
	listing | grep -Eq "$RIP \. 80 \. [0-9]+ : 10\.244\.9\.8 \. 9090"
	run on node1 gitops node rules
	[ "$status" -eq 0 ]
	# without them: the whole compile's, to the same table
	d1=$(status_py "s['networkDigest']")
	apply "$(delta "$d1" '{"default/remote":'"$(named 10.244.9.7)"'}' '{"default/remote":'"$(named 10.244.9.7 10.244.9.8)"'}')"
	[ "$(status_py "[loads()[-1]['body'].get(k) for k in ('reason', 'delta', 'partial')]")" = \
	  "['plan', True, None]" ]
	run listing
	[[ "$output" != *"10.244.9.8 . 9090"* ]]
	[[ "$output" == *"10.244.9.7 . 9090"* ]]
	[ "$(status_py "s['networkDigest']")" = "$d0" ]
}

@test "a deny-all NetworkPolicy blocks pod to pod; removing it allows again" {
	apply "$(full)"
	until_ok 60 ready web1 web2 client
	ip1=$(ip_of web1)
	run fetch client "http://$ip1:8080/index.html"
	[ "$output" = hello-from-web1 ]
	apply "$(full '[{"namespace":"default","name":"deny-all","podSelector":{},"policyTypes":["Ingress"]}]')"
	[ "$(status_py "[loads()[-1]['body'][k] for k in ('reason', 'delta')]")" = "['plan', True]" ]
	run on node1 gitops node rules
	[[ "$output" == *"$ip1 : goto ingress-"* ]]
	[[ "$output" == *"1 services, 1 policies"* ]]
	run fetch client "http://$ip1:8080/index.html"
	[ "$status" -ne 0 ]
	[ "$output" != hello-from-web1 ]
	run fetch client "http://$CIP/index.html"
	[ "$status" -ne 0 ]
	# the node itself still reaches its pods (probes, NodePorts)
	run fetch node "http://$ip1:8080/index.html"
	[ "$output" = hello-from-web1 ]
	apply "$(full)"
	run fetch client "http://$ip1:8080/index.html"
	[ "$output" = hello-from-web1 ]
}

@test "a plan without pods and services leaves an empty table" {
	apply "$(full)"
	apply '{"protocol":1,"node":"node1","podCIDR":"'"$NODE1_POD_CIDR"'","pods":[],"network":{"clusterCIDR":"'"$CLUSTER_CIDR"'","podCIDR":"'"$NODE1_POD_CIDR"'","namespaces":[],"pods":[],"services":[],"policies":[]}}'
	run on node1 gitops node rules
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"table ip gitops {"* ]]
	[[ "$output" != *"$CIP"* ]]
	[[ "$output" != *"dnat to"* ]]
	[[ "$output" != *"dnat ip to"* ]]
	[[ "$output" != *"goto svc-"* ]]
	[[ "$output" != *"goto lb-"* ]]
	[[ "$output" != *"endpoints-tcp"* ]]
	[[ "$output" == *"0 services, 0 policies"* ]]
	run fetch node "http://$CIP/index.html"
	[ -z "$output" ]
	# a plan without a network leaves the rules as they are
	loads=$(status_py "len(loads())")
	apply '{"protocol":1,"node":"node1","podCIDR":"'"$NODE1_POD_CIDR"'","pods":[]}'
	[ "$(status_py "len(loads())")" = "$loads" ]
	run on node1 gitops node rules
	[ "$status" -eq 0 ]
}
