#!/usr/bin/env bats
# Services end to end on a 2-node test bed: load spread over endpoints, ClientIP
# affinity, NodePort from outside the cluster network, externalTrafficPolicy Local
# keeping the client's address, reject without endpoints, hairpin, and endpoints
# following readiness (at once on the pod's own node, on the next pass elsewhere).
# Requests are real TCP connections made by busybox wget inside a client pod.

load helpers

# echo: 3 replicas of busybox httpd answering their pod name on /, the client's
# address on /cgi-bin/ip, and ready while /www/ready exists.
echo_app() {
	cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $REGISTRY/busybox:test
        command: [sh, -c]
        args:
        - |
          mkdir -p /www/cgi-bin && hostname >/www/index.html && touch /www/ready &&
          printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho \$REMOTE_ADDR\n' >/www/cgi-bin/ip &&
          chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {kubernetes.io/hostname: node1}
      containers:
      - {name: sh, image: $REGISTRY/busybox:test, command: [sleep, '100000']}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: web, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}
---
apiVersion: v1
kind: Service
metadata: {name: np, namespace: default}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: np-local, namespace: default}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: echo}
  ports: [{port: 80, targetPort: http, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: default}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
YAML
}

setup_file() {
	cluster_up 2
	echo_app >"$R/apps/echo.yaml"
	cluster_sync "echo, a client and their services" >"$TB/sync1.log" 2>&1 || {
		cat "$TB/sync1.log" >&3; return 1; }
}

teardown_file() {
	cluster_down
}

setup() {
	cluster_env
}

svc_ip() { gc get svc "$1" -o json | jq -r .spec.clusterIP; }
client() { gc get pods -l app=client -o name | sed 's,^pod/,,'; }
# in_client SCRIPT: run a shell script in the client pod
in_client() { gc exec "$(client)" -- sh -c "$1"; }
# pod_on NODE: an echo pod placed on NODE
pod_on() { gc get pods -l app=echo -o json | jq -r --arg n "$1" '.items[] | select(.spec.nodeName == $n) | .metadata.name' | head -1; }

@test "ClusterIP: 1,000 connections spread evenly over 3 endpoints (chi-square)" {
	ip=$(svc_ip echo)
	[[ "$ip" =~ ^10\.(9[6-9]|10[0-9]|11[01])\. ]]   # in the service CIDR 10.96.0.0/12
	run in_client "for i in \$(seq 1000); do timeout 3 wget -qO- http://$ip/; done"
	[ "$status" -eq 0 ]
	counts=$(printf '%s\n' "${lines[@]}" | sort | uniq -c | awk '{print $1}')
	[ "$(echo "$counts" | wc -l)" -eq 3 ]
	# chi-square with 2 degrees of freedom: p = 0.001 at 13.82
	chi=$(echo "$counts" | awk '{ d = $1 - 1000/3; s += d*d/(1000/3) } END { printf "%.2f", s }')
	echo "counts: $counts chi2: $chi"
	awk -v c="$chi" 'BEGIN { exit !(c < 13.82) }'
}

@test "an unused port of a ClusterIP and a Service without endpoints are rejected at once" {
	ip=$(svc_ip echo) none=$(svc_ip nobody)
	run in_client "timeout 3 wget -qO- http://$ip:81/ 2>&1; echo rc=\$?"
	[[ "$output" == *"refused"* ]]
	start=$(date +%s%N)
	run in_client "timeout 3 wget -qO- http://$none/ 2>&1; echo rc=\$?"
	[[ "$output" == *"refused"* ]]
	[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 4000 ]   # an ICMP reject, not a time-out
}

@test "sessionAffinity ClientIP sticks to one endpoint and expires after timeoutSeconds" {
	ip=$(svc_ip sticky)
	run in_client "for i in \$(seq 30); do timeout 3 wget -qO- http://$ip/; done"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 30 ]
	[ "$(printf '%s\n' "${lines[@]}" | sort -u | wc -l)" -eq 1 ]
	# with 3 s between requests every one may go anywhere: 12 of them on one pod
	# would happen with probability 3 x (1/3)^12
	run in_client "for i in \$(seq 12); do timeout 3 wget -qO- http://$ip/; sleep 3; done"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | sort -u | wc -l)" -ge 2 ]
}

@test "NodePort answers on node addresses from outside the cluster network, not on 127.0.0.1" {
	for a in "$NODE1_ADDR" "$NODE2_ADDR"; do
		run curl -s -m 5 "http://$a:30080/"
		[ "$status" -eq 0 ]
		[[ "$output" == echo-* ]]
	done
	run ip netns exec "$NODE1_NETNS" curl -s -m 3 http://127.0.0.1:30080/
	[ "$status" -ne 0 ]
}

# v4 ADDR: busybox httpd's REMOTE_ADDR "[::ffff:10.0.0.1]" as 10.0.0.1
v4() { local a=${1#"[::ffff:"}; echo "${a%"]"}"; }

@test "externalTrafficPolicy Local keeps the client's address; Cluster masquerades it" {
	run curl -s -m 5 "http://$NODE1_ADDR:30081/cgi-bin/ip"
	echo "Local: $output (client $TESTBED_HOST_ADDR)"
	[ "$status" -eq 0 ]
	[ "$(v4 "$output")" = "$TESTBED_HOST_ADDR" ]
	for _ in 1 2 3 4 5 6; do
		run curl -s -m 5 "http://$NODE1_ADDR:30080/cgi-bin/ip"
		[ "$status" -eq 0 ]
		[[ "$(v4 "$output")" =~ ^[0-9.]+$ ]]
		[ "$(v4 "$output")" != "$TESTBED_HOST_ADDR" ]
	done
}

@test "hairpin: a pod reaches itself through its own Service" {
	p=$(pod_on node1)
	ip=$(svc_ip echo)
	run gc exec "$p" -- sh -c "for i in \$(seq 30); do timeout 3 wget -qO- http://$ip/; done"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 30 ]
	printf '%s\n' "${lines[@]}" | grep -qx "$p"
}

@test "a pod failing readiness leaves its node's rules at once and the others' on the next pass" {
	p=$(pod_on node1)
	ip=$(svc_ip echo)
	gc exec "$p" -- rm /www/ready
	sleep 4   # failureThreshold 1, periodSeconds 1: the shim reloads node1's rules
	run in_client "for i in \$(seq 60); do timeout 3 wget -qO- http://$ip/; done"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 60 ]
	! printf '%s\n' "${lines[@]}" | grep -qx "$p"
	seq0=$(on node2 gitops node status -o json | jq .journal.lastSeq)
	gc sync >/dev/null
	# node2 was sent the four Services whose endpoints changed, not the whole network
	# (a networkDelta onto the digest it reported), and the cluster state's changes
	run on node2 gitops node status --since "$seq0" -o json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -c '[.journal.records[] | select(.type == "plan.applied")][-1].body |
		[.network, .services, .cluster]')" = '["delta",4,"delta"]' ]
	# what it holds is what the controller has: the next pass sends it nothing
	seq1=$(on node2 gitops node status -o json | jq .journal.lastSeq)
	gc sync >/dev/null
	[ "$(on node2 gitops node status --since "$seq1" -o json |
		jq '[.journal.records[] | select(.type == "plan.applied")] | length')" = 0 ]
	pip=$(gc get pods "$p" -o json | jq -r .status.podIP)
	run gc get endpoints echo
	[ "$status" -eq 0 ]
	[[ "$output" != *"$pip:"* ]]
	for _ in $(seq 20); do   # from node2, through NodePort 30080 (Cluster): never p
		run curl -s -m 3 "http://$NODE2_ADDR:30080/"
		[ "$output" != "$p" ]
	done
	gc exec "$p" -- touch /www/ready
	sleep 3
	gc sync >/dev/null
	run gc get endpoints echo
	[[ "$output" == *"$pip:8080"* ]]
}
