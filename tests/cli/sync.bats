#!/usr/bin/env bats
# gitops sync / diff / reconcile: a repository applied to a 3-node test bed.

load helpers

setup_file() {
	cluster_up 3
	web 3 v1 >"$R/apps/web.yaml"
	git -C "$R" add -A
	git -C "$R" commit -q -m "web: first version"
}

teardown_file() {
	cluster_down
}

setup() {
	cluster_env
}

# web REPLICAS VERSION: a Deployment of busybox httpd answering VERSION
web() {
	cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: $1
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $REGISTRY/busybox:test
        command: [sh, -c, 'echo \$(VERSION) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']
        env: [{name: VERSION, value: "$2"}]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /index.html, port: http}, periodSeconds: 1}
YAML
}

gsync() { gitops sync --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" "$@"; }

# pods on every node: lines "NODE NAME IP HASH READY"
pods() {
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" "$n" gitops node status -o json | /usr/bin/python3 -c '
import json,sys
for p in json.load(sys.stdin)["pods"]:
    ready = all(c["ready"] for c in p["containerStatuses"])
    print(sys.argv[1], p["name"], p.get("podIP"), p.get("labels",{}).get("pod-template-hash"), ready)' "$n"
	done
}

@test "sync deploys a Deployment spread over the nodes, and serves" {
	run gsync --wait --timeout 90s
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"node1"*"✓"* && "$output" == *"node3"*"✓"* ]]
	[[ "$output" == *"deployment.apps/web  rolled out revision 1 (3/3 updated, 3 ready)"* ]]
	run pods
	echo "$output"
	[ "${#lines[@]}" -eq 3 ]
	[ "$(echo "$output" | awk '{print $1}' | sort -u | wc -l)" -eq 3 ]   # one per node
	for ip in $(echo "$output" | awk '{print $3}'); do
		[ "$(curl -s --max-time 5 "http://$ip:8080/index.html")" = v1 ]
	done
}

@test "a second sync changes nothing; diff exits 0" {
	before=$(pods | sort)
	run gitops diff --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"
	echo "$output"
	[ "$status" -eq 0 ]
	run gsync
	[ "$status" -eq 0 ]
	[[ "$output" != *started* && "$output" != *stopped* ]]
	[ "$(pods | sort)" = "$before" ]
}

@test "scale up and down" {
	web 5 v1 >"$R/apps/web.yaml"; git -C "$R" commit -qam "web: 5 replicas"
	run gitops diff --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | grep -c ': + default/web-')" -eq 2 ]
	run gsync --wait --timeout 90s
	[ "$status" -eq 0 ]
	[ "$(pods | wc -l)" -eq 5 ]
	web 2 v1 >"$R/apps/web.yaml"; git -C "$R" commit -qam "web: 2 replicas"
	run gsync --wait --timeout 90s
	[ "$status" -eq 0 ]
	[ "$(pods | wc -l)" -eq 2 ]
}

@test "a rolling update replaces every pod and records revision 2" {
	web 3 v2 >"$R/apps/web.yaml"; git -C "$R" commit -qam "web: v2"
	run gsync --wait --timeout 120s
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"rolled out revision 2 (3/3 updated, 3 ready)"* ]]
	[ "$(pods | awk '{print $4}' | sort -u | wc -l)" -eq 1 ]
	for ip in $(pods | awk '{print $3}'); do
		[ "$(curl -s --max-time 5 "http://$ip:8080/index.html")" = v2 ]
	done
}

grollout() { gitops rollout "$@" --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"; }

# the page every pod serves, sorted and unique
served() {
	for ip in $(pods | awk '{print $3}'); do curl -s --max-time 5 "http://$ip:8080/index.html"; done | sort -u
}

@test "rollout history lists revisions with their commit subject" {
	run grollout history deployment/web
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "REVISION  COMMIT   AGE   CHANGE-CAUSE" ]
	[[ "${lines[2]}" == "1         "*"web: first version" ]]
	[[ "${lines[3]}" == "2         "*"web: v2" ]]
	[ "${#lines[@]}" -eq 4 ]
}

@test "rollout undo pins the previous revision; later syncs do not fight it" {
	run grollout undo deployment/web
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"rolled back to revision 1"* ]]
	[[ "$output" == *"rolling out revision 3"* ]]   # the old template becomes revision 3, as in Kubernetes
	run grollout status deployment/web --timeout 5s
	# undo ran one pass; let the rollout finish
	run gsync --wait --timeout 120s
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(served)" = v1 ]
	run grollout history deployment/web
	echo "$output"
	[[ "${lines[2]}" == "2 "*"web: v2" ]]
	[[ "${lines[3]}" == "3 "*"web: first version  (pinned by rollout undo)" ]]
	run gsync
	[ "$status" -eq 0 ]
	[[ "$output" != *started* ]]
	[ "$(served)" = v1 ]
	run grollout status deployment/web --timeout 30s
	[ "$status" -eq 0 ]
	[ "$output" = 'deployment "web" successfully rolled out' ]
}

@test "a git change to the template releases the pin; pause holds a rollout back" {
	run grollout pause deployment/web
	[ "$status" -eq 0 ]
	web 3 v3 >"$R/apps/web.yaml"; git -C "$R" commit -qam "web: v3"
	run gsync --wait --timeout 60s
	[ "$status" -eq 0 ]
	[ "$(served)" = v1 ]          # paused: nothing rolled
	run grollout resume deployment/web
	[ "$status" -eq 0 ]
	run gsync --wait --timeout 120s
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(served)" = v3 ]
	run grollout history deployment/web
	echo "$output"
	[[ "$output" != *pinned* ]]
	[[ "$output" == *"web: v3"* ]]
}

@test "an invalid commit changes nothing" {
	before=$(pods | sort)
	sed -i 's/replicas: 3/replicas: "three"/' "$R/apps/web.yaml"; git -C "$R" commit -qam "web: broken"
	run gsync
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"spec.replicas: wrong type: expected integer, got string"* ]]
	[[ "$output" == *"nothing was applied"* ]]
	[ "$(pods | sort)" = "$before" ]
	git -C "$R" revert --no-edit HEAD >/dev/null
}

@test "a controller with an empty state directory takes over without restarting anything" {
	before=$(pods | sort)
	rm -rf "$ST"
	run gsync
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *started* && "$output" != *stopped* ]]
	[ "$(pods | sort)" = "$before" ]
}

@test "two concurrent reconciles: one runs, the other exits 0 saying who holds the lock" {
	gitops reconcile --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" >"$TB/r1" 2>&1 &
	gitops reconcile --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" >"$TB/r2" 2>&1 &
	wait
	cat "$TB/r1" "$TB/r2"
	grep -q "another reconcile holds the lock" "$TB/r1" "$TB/r2" || {
		# the first may finish before the second starts: both quiet is fine too
		[ ! -s "$TB/r1" ] && [ ! -s "$TB/r2" ]
	}
	run gitops reconcile --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"
	[ "$status" -eq 0 ]
	[ -z "$output" ]   # nothing changed: silent
}

@test "manifest values never reach a shell on either side of SSH: they arrive verbatim" {
	rm -f /tmp/gitops-pwned-*   # the nodes share /tmp with this host
	sed "s|REGISTRY|$REGISTRY|" >"$R/apps/evil.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: evil, namespace: default}
data:
  v: '$(touch /tmp/gitops-pwned-1)`touch /tmp/gitops-pwned-2`; touch /tmp/gitops-pwned-3 '' " | touch /tmp/gitops-pwned-4 #'
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: evil
  namespace: default
  annotations: {note: '$(touch /tmp/gitops-pwned-5); touch /tmp/gitops-pwned-6'}
spec:
  replicas: 1
  selector: {matchLabels: {app: evil}}
  template:
    metadata:
      labels: {app: evil}
      annotations: {note: '`touch /tmp/gitops-pwned-7`'}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: REGISTRY/busybox:test
        command: [sleep, '100000']
        env:
        - {name: EVIL, value: '$(touch /tmp/gitops-pwned-8); touch /tmp/gitops-pwned-9 && echo "x" > /tmp/gitops-pwned-10'}
        - name: FROM_CM
          valueFrom: {configMapKeyRef: {name: evil, key: v}}
YAML
	git -C "$R" add -A
	git -C "$R" commit -q -m 'evil: shell metacharacters everywhere'
	run gsync --wait --timeout 90s
	echo "$output"
	[ "$status" -eq 0 ]
	p=$(gitops get pods -l app=evil -o name --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" | sed 's,^pod/,,')
	run gitops exec "$p" --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" -- env
	printf '%s\n' "$p" "${lines[@]}"
	[ "$status" -eq 0 ]
	printf '%s\n' "${lines[@]}" | grep -qxF 'EVIL=$(touch /tmp/gitops-pwned-8); touch /tmp/gitops-pwned-9 && echo "x" > /tmp/gitops-pwned-10'
	printf '%s\n' "${lines[@]}" | grep -qxF "FROM_CM=\$(touch /tmp/gitops-pwned-1)\`touch /tmp/gitops-pwned-2\`; touch /tmp/gitops-pwned-3 ' \" | touch /tmp/gitops-pwned-4 #"
	run ls /tmp/gitops-pwned-*
	[ "$status" -ne 0 ]   # not one of them was created
	git -C "$R" rm -q "$R/apps/evil.yaml"
	git -C "$R" commit -q -m 'evil: gone'
	gsync >/dev/null
}
