#!/usr/bin/env bats
# Discovery on a 1-node test bed, driven by hand-written plans with a `network`
# (docs/node-protocol.md): the node's cluster DNS (dnsmasq at network.dnsServer)
# answers Service, headless and per-pod names from inside a pod, through the pod's
# search list; the Service environment variables are made when a container starts,
# restart nothing, and follow enableServiceLinks.

load helpers

setup_file() {
	bed_up 1
}

teardown_file() {
	bed_down
}

setup() {
	bed_env
	NET=${NODE1_POD_CIDR%.0/24} # fake endpoints of other nodes: $NET.200 and up
}

# client NAME UID GEN [LINKS]: a pod in namespace web that sleeps; GEN changes its
# container (a restart); LINKS false sets enableServiceLinks: false.
client() {
	local links=''
	[ -z "${4:-}" ] || links=',"enableServiceLinks":'$4
	printf '{"uid":"%s","namespace":"web","name":"%s","labels":{"app":"%s"},"spec":{"restartPolicy":"Always","terminationGracePeriodSeconds":1%s,"containers":[{"name":"sh","image":"%s/busybox:test","imagePullPolicy":"IfNotPresent","command":["sleep","3600"],"env":[{"name":"GEN","value":"%s"},{"name":"WEB_SERVICE_PORT","value":"mine"},{"name":"OWN","value":"$(WEB_SERVICE_HOST)"}]}]}}' \
		"$2" "$1" "$1" "$links" "$REGISTRY" "$3"
}

# service NAME CLUSTER_IP PORTS_JSON ENDPOINTS_JSON [EXTRA]
service() {
	printf '{"namespace":"web","name":"%s","type":"ClusterIP","clusterIP":"%s","ports":%s,"endpoints":%s%s}' \
		"$1" "$2" "$3" "$4" "${5:-}"
}

# plan GEN EXTRA_SERVICE...: node1's plan: pods client (links) and nolinks, the
# Services web (two ports), db (headless, with a pod db-0.db), ext (ExternalName).
plan() {
	local gen=$1; shift
	local web db ext extra='' s
	web=$(service web 10.96.0.17 '[{"name":"http","port":80,"targetPort":8080,"protocol":"TCP","nodePort":0},{"name":"stats","port":9090,"targetPort":9090,"protocol":"UDP","nodePort":0}]' '[]')
	db=$(service db None '[{"name":"pg","port":5432,"targetPort":5432,"protocol":"TCP","nodePort":0}]' \
		"[{\"ip\":\"$NET.200\",\"node\":\"node2\",\"local\":false,\"ready\":true},
		  {\"ip\":\"$NET.201\",\"node\":\"node2\",\"local\":false,\"ready\":true},
		  {\"ip\":\"$NET.202\",\"node\":\"node2\",\"local\":false,\"ready\":false},
		  {\"ip\":\"$NET.210\",\"node\":\"node2\",\"local\":false,\"ready\":true,\"uid\":\"00000000000000d0\"}]")
	ext='{"namespace":"web","name":"ext","type":"ExternalName","externalName":"example.org","ports":[]}'
	for s in "$@"; do extra="$extra,$s"; done
	cat <<-EOF
	{"protocol":1,"node":"node1","podCIDR":"$NODE1_POD_CIDR","insecureRegistries":["$REGISTRY"],
	 "pods":[$(client client 00000000000000c1 "$gen"),$(client nolinks 00000000000000c2 1 false)],
	 "network":{"clusterCIDR":"$CLUSTER_CIDR","podCIDR":"$NODE1_POD_CIDR","serviceCIDR":"10.96.0.0/12",
	   "clusterDomain":"cluster.local","dnsServer":"169.254.20.10",
	   "namespaces":[{"name":"web","labels":{}}],
	   "pods":[{"uid":"00000000000000c1","namespace":"web","name":"client","local":true,"labels":{"app":"client"}},
	           {"uid":"00000000000000c2","namespace":"web","name":"nolinks","local":true,"labels":{"app":"nolinks"}},
	           {"uid":"00000000000000d0","namespace":"web","name":"db-0","ip":"$NET.210","local":false,
	            "labels":{"app":"db"},"hostname":"db-0","subdomain":"db"}],
	   "services":[$web,$db,$ext$extra],
	   "policies":${POLICIES:-[]}}}
	EOF
}

apply() {
	echo "$1" | on node1 gitops node apply -o json >/dev/null
}

# running: both pods' containers run
running() {
	local deadline=$(( $(date +%s) + 60 ))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		on node1 gitops node status -o json | /usr/bin/python3 -c '
import json,sys
pods={p["name"]:p for p in json.load(sys.stdin)["pods"]}
ok=all(pods.get(n) and pods[n]["containerStatuses"] and "running" in pods[n]["containerStatuses"][0]["state"] for n in ("client","nolinks"))
sys.exit(0 if ok else 1)' && return 0
		sleep 0.5
	done
	on node1 gitops node status -o json >&2
	return 1
}

restarts() { # restarts POD: the restartCount of its container
	on node1 gitops node status -o json | /usr/bin/python3 -c '
import json,sys
print([p for p in json.load(sys.stdin)["pods"] if p["name"]==sys.argv[1]][0]["containerStatuses"][0]["restartCount"])' "$1"
}

dnsmasq_pid() {
	on node1 cat /var/lib/gitops/dns/dnsmasq.pid
}

# resolve NAME: the addresses nslookup finds from inside the client pod, sorted.
# busybox's nslookup applies the search list to dotless names only (no ndots).
resolve() {
	on node1 gitops node exec web/client -- nslookup -type=a "$1" | awk '/^Address: /{print $2}' | sort | tr '\n' ' '
}

# lookup NAME: the address the pod's C library resolves NAME to (search list and
# ndots:5 as applications see them), through ping's "PING NAME (IP)" line
lookup() {
	on node1 gitops node exec web/client -- ping -c1 -W1 "$1" 2>&1 | sed -n 's/^PING [^ ]* (\([0-9.]*\)).*/\1/p'
}

@test "the node runs one dnsmasq on the DNS address only; pods are told to use it" {
	# strict reverse-path filtering on the node: a pod's queries still arrive
	on node1 sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1
	apply "$(plan 1)"
	running
	run on node1 cat /var/lib/gitops/pods/00000000000000c1/etc/resolv.conf
	echo "$output"
	[ "${lines[0]}" = "search web.svc.cluster.local svc.cluster.local cluster.local" ]
	[ "${lines[1]}" = "nameserver 169.254.20.10" ]
	[ "${lines[2]}" = "options ndots:5" ]
	pid=$(dnsmasq_pid)
	run on node1 cat "/proc/$pid/comm"
	[ "$output" = dnsmasq ]
	run on node1 ss -Hlnup
	echo "$output"
	[[ "$output" == *"169.254.20.10:53 "* ]]
	run on node1 ss -Hlntp
	[[ "$output" == *"169.254.20.10:53 "* ]]
	run on node1 "ss -Hlnup; ss -Hlntp"
	[ "$(echo "$output" | grep -c ':53 ')" = 2 ] # UDP and TCP, nothing else
	run on node1 ip -o -4 addr show to 169.254.20.10/32
	echo "$output"
	[[ "$output" == *"gitops-dns"* ]]
	on node1 cat /var/lib/gitops/dns/hosts
}

@test "Service names resolve from a pod: short, namespaced and full names" {
	apply "$(plan 1)"
	running
	run resolve web
	echo "web: $output"
	[ "$output" = "10.96.0.17 " ]
	run resolve web.web.svc.cluster.local
	[ "$output" = "10.96.0.17 " ]
	for name in web web.web web.web.svc web.web.svc.cluster.local; do
		run lookup "$name"
		echo "$name: $output"
		[ "$output" = 10.96.0.17 ]
	done
	run on node1 gitops node exec web/client -- nslookup -type=a nosuch.web.svc.cluster.local
	[ "$status" -ne 0 ]
	[[ "$output" == *NXDOMAIN* ]]
	run on node1 gitops node exec web/client -- nslookup -type=a ext.web.svc.cluster.local
	[ "$status" -ne 0 ]
}

@test "a headless Service answers its ready endpoints; a pod's hostname.subdomain and A-B-C-D.NS.pod names its IP" {
	apply "$(plan 1)"
	running
	run resolve db
	echo "db: $output"
	[ "$output" = "$NET.200 $NET.201 $NET.210 " ]
	run resolve db.web.svc.cluster.local
	[ "$output" = "$NET.200 $NET.201 $NET.210 " ]
	run lookup db-0.db
	echo "db-0.db: $output"
	[ "$output" = "$NET.210" ]
	run resolve db-0.db.web.svc.cluster.local
	[ "$output" = "$NET.210 " ]
	# a pod's A-B-C-D.NS.pod name, in its own namespace only
	dashed=$(echo "$NET.210" | tr . -)
	run resolve "$dashed.web.pod.cluster.local"
	[ "$output" = "$NET.210 " ]
	run on node1 gitops node exec web/client -- nslookup -type=a "$dashed.other.pod.cluster.local"
	[[ "$output" == *NXDOMAIN* ]]
	# publishNotReadyAddresses: the not-ready one too
	nr=$(service db None '[{"name":"pg","port":5432,"targetPort":5432,"protocol":"TCP","nodePort":0}]' \
		"[{\"ip\":\"$NET.220\",\"node\":\"node2\",\"local\":false,\"ready\":false}]" ',"publishNotReadyAddresses":true')
	apply "$(plan 1 "${nr/\"db\"/\"dbnr\"}")"
	run resolve dbnr
	[ "$output" = "$NET.220 " ]
}

@test "Service variables: made at container start, the pod's own win, no restart for a new Service" {
	apply "$(plan 1)"
	running
	run on node1 gitops node exec web/client -- env
	echo "$output"
	[[ "$output" == *"WEB_SERVICE_HOST=10.96.0.17"* ]]
	[[ "$output" == *"WEB_SERVICE_PORT=mine"* ]]          # the container's own env wins
	[[ "$output" == *"WEB_SERVICE_PORT_HTTP=80"* ]]
	[[ "$output" == *"WEB_SERVICE_PORT_STATS=9090"* ]]
	[[ "$output" == *"WEB_PORT=tcp://10.96.0.17:80"* ]]
	[[ "$output" == *"WEB_PORT_80_TCP=tcp://10.96.0.17:80"* ]]
	[[ "$output" == *"WEB_PORT_80_TCP_PROTO=tcp"* ]]
	[[ "$output" == *"WEB_PORT_80_TCP_PORT=80"* ]]
	[[ "$output" == *"WEB_PORT_80_TCP_ADDR=10.96.0.17"* ]]
	[[ "$output" == *"WEB_PORT_9090_UDP=udp://10.96.0.17:9090"* ]]
	[[ "$output" == *"WEB_PORT_9090_UDP_PROTO=udp"* ]]
	[[ "$output" == *"OWN=10.96.0.17"* ]]                 # $(VAR) sees them
	[[ "$output" != *"DB_SERVICE_HOST"* ]]                # headless: none
	[[ "$output" != *"EXT_SERVICE_HOST"* ]]               # ExternalName: none
	run on node1 gitops node exec web/nolinks -- env
	echo "$output"
	[[ "$output" != *"WEB_SERVICE_HOST="* ]]
	[[ "$output" != *"WEB_PORT"* ]]
	[[ "$output" == *"OWN=\$(WEB_SERVICE_HOST)"* ]]            # nothing to expand
	# a new Service: in DNS at once (a reload, not a restart), in no running container
	pid=$(dnsmasq_pid)
	before=$(restarts client)
	late=$(service late 10.96.0.18 '[{"name":"","port":8080,"targetPort":8080,"protocol":"TCP","nodePort":0}]' '[]')
	apply "$(plan 1 "$late")"
	run resolve late
	[ "$output" = "10.96.0.18 " ]
	[ "$(dnsmasq_pid)" = "$pid" ]
	[ "$(restarts client)" = "$before" ]
	run on node1 gitops node exec web/client -- env
	[[ "$output" != *"LATE_SERVICE_HOST"* ]]
	# until the container restarts (its spec changed)
	apply "$(plan 2 "$late")"
	local deadline=$(( $(date +%s) + 60 ))
	until [ "$(restarts client)" -gt "$before" ] && running; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.5
	done
	run on node1 gitops node exec web/client -- env
	echo "$output"
	[[ "$output" == *"LATE_SERVICE_HOST=10.96.0.18"* ]]
	[[ "$output" == *"LATE_SERVICE_PORT=8080"* ]]
	[[ "$output" == *"LATE_PORT=tcp://10.96.0.18:8080"* ]]
	[[ "$output" != *"LATE_SERVICE_PORT_"* ]]             # its port has no name
	run on node1 gitops node exec web/nolinks -- env
	[[ "$output" != *"LATE_"* ]]
}

@test "an unchanged network leaves dnsmasq alone; a dead one is started again" {
	apply "$(plan 1)"
	running
	pid=$(dnsmasq_pid)
	stamp=$(on node1 stat -c %Y.%i /var/lib/gitops/dns/hosts)
	apply "$(plan 1)"
	[ "$(dnsmasq_pid)" = "$pid" ]
	[ "$(on node1 stat -c %Y.%i /var/lib/gitops/dns/hosts)" = "$stamp" ]
	on node1 kill "$pid"
	for _ in $(seq 50); do on node1 test -d "/proc/$pid" || break; sleep 0.1; done
	apply "$(plan 1)"
	new=$(dnsmasq_pid)
	[ -n "$new" ] && [ "$new" != "$pid" ]
	run resolve web
	[ "$output" = "10.96.0.17 " ]
	# between plans, the status read of every pass starts it again too
	on node1 kill "$new"
	for _ in $(seq 50); do on node1 test -d "/proc/$new" || break; sleep 0.1; done
	on node1 gitops node status >/dev/null
	again=$(dnsmasq_pid)
	[ -n "$again" ] && [ "$again" != "$new" ]
	[ "$(on node1 stat -c %Y.%i /var/lib/gitops/dns/hosts)" = "$stamp" ]
	run resolve web
	[ "$output" = "10.96.0.17 " ]
}

@test "NetworkPolicy egress does not reach the node-local resolver" {
	POLICIES='[{"namespace":"web","name":"deny-egress","podSelector":{"matchLabels":{"app":"client"}},"policyTypes":["Egress"]}]'
	apply "$(plan 1)"
	running
	# the policy holds: the registry (another host) is out of reach for client only
	run on node1 gitops node exec web/client -- nc -w 2 "${REGISTRY%:*}" 5000 </dev/null
	[ "$status" -ne 0 ]
	on node1 gitops node exec web/nolinks -- nc -w 2 "${REGISTRY%:*}" 5000 </dev/null
	run lookup web.web
	[ "$output" = 10.96.0.17 ]
	run resolve db
	[ "$output" = "$NET.200 $NET.201 $NET.210 " ]
}
