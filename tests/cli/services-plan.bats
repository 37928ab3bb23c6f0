#!/usr/bin/env bats
# Services on the controller side (issue 5): ClusterIPs and NodePorts allocated and
# kept in the replicated cluster state, endpoints from the pods' readiness, the
# validation of explicit values — seen through get svc/ep, diff and the nodes'
# cluster state on a 2-node test bed. Nothing here depends on the node loading
# the rules.

load helpers

setup_file() {
	cluster_up 2
	web >"$R/apps/web.yaml"
	services >"$R/apps/services.yaml"
	git -C "$R" add -A
	git -C "$R" commit -q -m "web and its services"
	"$GITOPS" sync --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" --wait --timeout 90s >"$TB/sync1.log" 2>&1 || {
		cat "$TB/sync1.log" >&3; return 1; }
}

teardown_file() {
	cluster_down
}

setup() {
	cluster_env
}

# web: 2 replicas of busybox httpd, ready while /tmp/ready exists
web() {
	cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $REGISTRY/busybox:test
        command: [sh, -c, 'echo ok > /tmp/ready; exec httpd -f -p 8080 -h /tmp']
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 1, failureThreshold: 1}
YAML
}

services() {
	cat <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: fixed, namespace: default}
spec:
  clusterIP: 10.96.0.100
  selector: {app: none}
  ports: [{port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless, namespace: default}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080}]
YAML
}

g() { gitops "$@" --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"; }
gsync() { gitops sync --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" "$@"; }

AGE='[0-9]+[smhdy][0-9smhdy]*'

# table: a kubectl table on stdin as tab-separated cells (see live.bats)
table() {
	/usr/bin/python3 -c '
import sys
rows = sys.stdin.read().rstrip("\n").split("\n")
head = rows[0]
starts = [i for i, ch in enumerate(head) if ch != " " and (i == 0 or head[max(0, i - 3):i] == "   ")]
for r in rows:
    cells = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(r)
        assert s == 0 or r[s - 1] == " ", (r, s)
        cells.append(r[s:end].rstrip())
    print("\t".join(cells))'
}

# "NAME CLUSTER-IP NODEPORTS" of every Service, from get svc -o json
allocations() {
	g get svc -o json | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin)["items"]:
    print(s["metadata"]["name"], s["spec"].get("clusterIP"), ",".join(str(p.get("nodePort", 0)) for p in s["spec"]["ports"]))'
}

# pod IPs of app=web, sorted as text (kubectl sorts endpoint addresses so)
web_ips() {
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" "$n" gitops node status -o json | /usr/bin/python3 -c '
import json, sys
for p in json.load(sys.stdin)["pods"]:
    if p.get("labels", {}).get("app") == "web": print(p["name"], p["podIP"])'
	done | sort -k2
}

# the cluster-state entry KEY as every node holds it (one line per node)
cluster_entry() {
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" "$n" gitops node status -o json | /usr/bin/python3 -c '
import json, sys
print(json.dumps(json.load(sys.stdin)["cluster"].get(sys.argv[1], {}).get("value"), sort_keys=True))' "$1"
	done
}

in_service_cidr() { # IP: inside 10.96.0.0/12, not its network, first or broadcast address
	/usr/bin/python3 -c '
import ipaddress, sys
ip, net = ipaddress.ip_address(sys.argv[1]), ipaddress.ip_network("10.96.0.0/12")
assert ip in net and ip not in (net.network_address, net.network_address + 1, net.broadcast_address), ip' "$1"
}

@test "get svc: kubectl's columns with the allocated ClusterIPs and NodePorts" {
	run g get svc
	echo "$output"
	[ "$status" -eq 0 ]
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'NAME\tTYPE\tCLUSTER-IP\tEXTERNAL-IP\tPORT(S)\tAGE')" ]
	[ "${#lines[@]}" -eq 5 ]
	[[ "${lines[1]}" =~ ^fixed$'\t'ClusterIP$'\t'10.96.0.100$'\t''<none>'$'\t'53/UDP$'\t'$AGE$ ]]
	[[ "${lines[2]}" =~ ^web$'\t'ClusterIP$'\t'(10\.[0-9.]+)$'\t''<none>'$'\t'80/TCP$'\t'$AGE$ ]]
	in_service_cidr "${BASH_REMATCH[1]}"
	[[ "${lines[3]}" =~ ^web-headless$'\t'ClusterIP$'\t'None$'\t''<none>'$'\t'8080/TCP$'\t'$AGE$ ]]
	[[ "${lines[4]}" =~ ^web-np$'\t'NodePort$'\t'(10\.[0-9.]+)$'\t''<none>'$'\t'80:(3[0-9]{4})/TCP$'\t'$AGE$ ]]
	in_service_cidr "${BASH_REMATCH[1]}"
	[ "${BASH_REMATCH[2]}" -ge 30000 ] && [ "${BASH_REMATCH[2]}" -le 32767 ]
	run g get svc web -o wide
	run table <<<"$output"
	[[ "${lines[1]}" == *$'\t'"app=web" ]]
	run g get service web-np -o json
	echo "$output" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["kind"] == "Service" and d["spec"]["clusterIPs"] == [d["spec"]["clusterIP"]], d["spec"]
assert 30000 <= d["spec"]["ports"][0]["nodePort"] <= 32767, d["spec"]["ports"]
assert d["metadata"]["creationTimestamp"].endswith("Z"), d["metadata"]'
	run g get svc -l app=web -o name
	[ "$output" = "service/web" ]
	run g get svc -A
	[[ "${lines[0]}" == "NAMESPACE   NAME "* ]]
	run g get svc -n other
	[ "$status" -eq 0 ]
	[ "$output" = "No resources found in other namespace." ]
}

@test "the allocations are in the cluster state every node keeps" {
	ip=$(allocations | awk '$1 == "web" {print $2}')
	run cluster_entry service/default/web
	echo "$output"
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = "${lines[1]}" ]
	[[ "${lines[0]}" == '{"clusterIP": "'"$ip"'", "time": '* ]]
	run cluster_entry service/default/web-np
	[[ "${lines[0]}" == '{"clusterIP": "'*'", "nodePorts": {"80": 3'* ]]
	run cluster_entry networkHash
	[ "${lines[0]}" = "${lines[1]}" ]
	[[ "${lines[0]}" =~ ^\"[0-9a-f]{64}\"$ ]]
	# each node's pods, kept for when it is unreachable: the web pods (endpoints) with
	# their IP and readiness, which keep them endpoints until the node is NotReady
	ips=$(web_ips | awk '{print $2}' | sort | tr '\n' ' ')
	recorded=
	for n in $NODES; do
		run cluster_entry "pods/$n"
		[ "${lines[0]}" = "${lines[1]}" ]
		recorded+=$(echo "${lines[0]}" | /usr/bin/python3 -c '
import json, sys
for r in json.load(sys.stdin) or []:
    if r["name"].startswith("web-") and r.get("ready") is True: print(r["ip"])')$'\n'
	done
	[ "$(echo "$recorded" | grep . | sort | tr '\n' ' ')" = "$ips" ]
}

@test "get ep: the ready pods' IP:targetPort, named ports resolved" {
	run g get ep
	echo "$output"
	[ "$status" -eq 0 ]
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'NAME\tENDPOINTS\tAGE')" ]
	ips=($(web_ips | awk '{print $2}'))
	[ "${#ips[@]}" -eq 2 ]
	[[ "${lines[1]}" =~ ^fixed$'\t''<none>'$'\t'$AGE$ ]]
	[[ "${lines[2]}" =~ ^web$'\t'"${ips[0]}:8080,${ips[1]}:8080"$'\t'$AGE$ ]]
	[[ "${lines[3]}" =~ ^web-headless$'\t'"${ips[0]}:8080,${ips[1]}:8080"$'\t'$AGE$ ]]
	[[ "${lines[4]}" =~ ^web-np$'\t'"${ips[0]}:8080,${ips[1]}:8080"$'\t'$AGE$ ]]
	run g get endpoints web -o json
	echo "$output" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["kind"] == "Endpoints" and d["metadata"]["labels"] == {"app": "web"}, d
[s] = d["subsets"]
assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}], s
assert [a["targetRef"]["kind"] for a in s["addresses"]] == ["Pod", "Pod"], s
assert "notReadyAddresses" not in s, s'
	run g get ep web -o yaml
	[ "${lines[0]}" = "apiVersion: v1" ]
	[ "${lines[1]}" = "kind: Endpoints" ]
	run g get ep -o name -l app=web
	[ "$output" = "endpoints/web" ]
}

@test "endpoints follow readiness; the change reaches the plans" {
	read -r pod ip < <(web_ips | head -1)
	other=$(web_ips | awk -v p="$pod" '$1 != p {print $2}')
	gitops exec --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" "$pod" -- rm /tmp/ready
	for _ in $(seq 30); do
		g get ep web 2>/dev/null | grep -q "^web  *$other:8080  " && break
		sleep 1
	done
	run g get ep web
	echo "$output"
	[[ "${lines[1]}" =~ ^web\ +$other:8080\ +$AGE$ ]]
	run g get ep web -o json
	echo "$output" | /usr/bin/python3 -c '
import json, sys
[s] = json.load(sys.stdin)["subsets"]
assert [a["ip"] for a in s["addresses"]] == [sys.argv[2]], s
assert [a["ip"] for a in s["notReadyAddresses"]] == [sys.argv[1]], s' "$ip" "$other"
	# the next sync sends every node its new network (no pod changes)
	run g diff
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"node1: ~ network"* && "$output" == *"node2: ~ network"* ]]
	[[ "$output" != *": + "* && "$output" != *": - "* ]]
	run gsync
	[ "$status" -eq 0 ]
	run g diff
	[ "$status" -eq 0 ]
	gitops exec --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" "$pod" -- sh -c 'echo ok > /tmp/ready'
	for _ in $(seq 30); do
		g get ep web 2>/dev/null | grep -q "^web  *[0-9.]*:8080,[0-9.]*:8080 " && break
		sleep 1
	done
	run g get ep web
	[[ "${lines[1]}" =~ ^web\ +[0-9.]+:8080,[0-9.]+:8080\ +$AGE$ ]]
	run gsync
	[ "$status" -eq 0 ]
}

@test "stable across syncs and across a fresh state directory" {
	before=$(allocations)
	echo "$before"
	run gsync
	[ "$status" -eq 0 ]
	run g diff
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(allocations)" = "$before" ]
	rm -rf "$ST"
	[ "$(allocations)" = "$before" ]
	run gsync
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *started* && "$output" != *stopped* ]]
	run g diff
	[ "$status" -eq 0 ]
	[ "$(allocations)" = "$before" ]
}

@test "a clash of explicit ClusterIPs or NodePorts is a validation error naming both" {
	cat >"$R/apps/x-clash.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: again, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.100
  ports: [{port: 80, nodePort: 30999}]
---
apiVersion: v1
kind: Service
metadata: {name: np, namespace: default}
spec:
  type: NodePort
  ports: [{port: 81, nodePort: 30999}]
---
apiVersion: v1
kind: Service
metadata: {name: outside, namespace: default}
spec:
  clusterIP: 192.168.0.1
  ports: [{port: 80}]
YAML
	git -C "$R" add -A; git -C "$R" commit -qm "clashing services"
	run gitops validate --repo "$R"
	echo "$output"
	[ "$status" -eq 1 ]
	# the later one (in file order) is the error, naming where the first is
	[[ "$output" == *'apps/x-clash.yaml:6:14: Service default/again: spec.clusterIP: Invalid value: "10.96.0.100": provided IP is already allocated to Service default/fixed (apps/services.yaml:20:14)'* ]]
	[[ "$output" == *'apps/x-clash.yaml:14:32: Service default/np: spec.ports[0].nodePort: Invalid value: 30999: provided port is already allocated to Service default/again (apps/x-clash.yaml:7:32)'* ]]
	[[ "$output" == *'apps/x-clash.yaml:20:14: Service default/outside: spec.clusterIP: Invalid value: "192.168.0.1": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12'* ]]
	run gsync
	[ "$status" -eq 1 ]
	[[ "$output" == *"nothing was applied"* ]]
	git -C "$R" rm -q apps/x-clash.yaml; git -C "$R" commit -qm "no clash"
}

@test "an explicit ClusterIP that takes an allocated one: the other Service moves" {
	if [ -e "$R/apps/x-clash.yaml" ]; then   # the test before failed half-way
		git -C "$R" rm -q apps/x-clash.yaml; git -C "$R" commit -qm "no clash"
	fi
	was=$(allocations | awk '$1 == "web" {print $2}')
	cat >"$R/apps/taker.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: taker, namespace: default}
spec:
  clusterIP: $was
  selector: {app: web}
  ports: [{port: 81, targetPort: 8080}]
YAML
	git -C "$R" add -A; git -C "$R" commit -qm "taker takes web's address"
	run gsync
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *started* && "$output" != *stopped* ]]   # no pod restarts for it
	run allocations
	echo "$output"
	[[ "$output" == *"taker $was 0"* ]]
	now=$(allocations | awk '$1 == "web" {print $2}')
	[ "$now" != "$was" ]
	in_service_cidr "$now"
	run gsync
	[ "$(allocations | awk '$1 == "web" {print $2}')" = "$now" ]
	# a Service that leaves git frees its address: taker's record is gone everywhere
	git -C "$R" rm -q apps/taker.yaml; git -C "$R" commit -qm "no taker"
	run gsync
	[ "$status" -eq 0 ]
	run cluster_entry service/default/taker
	[ "${lines[0]}" = null ]
	[ "${lines[1]}" = null ]
}
