#!/usr/bin/env bats
# Rollouts under watch: the bounds of a rolling update, a broken image, a node that
# goes away and comes back. 3-node test bed.

load helpers

setup_file() {
	cluster_up 3 nodeGracePeriod=2s evictionTimeout=6s
	web 4 v1 "$REGISTRY/busybox:test" >"$R/apps/web.yaml"
	git -C "$R" add -A
	git -C "$R" commit -q -m "web v1"
	gsync --wait --timeout 120s >"$TB/first.log" 2>&1 || { cat "$TB/first.log" >&3; return 1; }
}

teardown_file() {
	cluster_down
}

setup() {
	cluster_env
}

# web REPLICAS VERSION IMAGE: maxSurge 1, maxUnavailable 1, short progress deadline
web() {
	cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: $1
  progressDeadlineSeconds: 15
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $3
        command: [sh, -c, 'echo \$(VERSION) > /tmp/index.html; sleep 1; exec httpd -f -p 8080 -h /tmp']
        env: [{name: VERSION, value: "$2"}]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /index.html, port: http}, periodSeconds: 1}
YAML
}

gsync() { gitops sync --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" --ssh-timeout 3s "$@"; }

# one sample: "TOTAL READY" over every reachable node (pods not terminating)
sample() {
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" -o ConnectTimeout=2 "$n" gitops node status -o json 2>/dev/null
	done | /usr/bin/python3 -c '
import json,sys
total = ready = 0
for doc in sys.stdin.read().replace("}\n{", "}\x00{").split("\x00"):
    if not doc.strip(): continue
    for p in json.loads(doc)["pods"]:
        total += 1
        ready += all(c["ready"] for c in p["containerStatuses"])
print(total, ready)'
}

served() {
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" -o ConnectTimeout=2 "$n" gitops node status -o json 2>/dev/null
	done | /usr/bin/python3 -c '
import json,sys
for doc in sys.stdin.read().replace("}\n{", "}\x00{").split("\x00"):
    if doc.strip():
        for p in json.loads(doc)["pods"]: print(p["podIP"])' | while read -r ip; do
		curl -s --max-time 3 "http://$ip:8080/index.html"
	done | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' '
}

@test "a rolling update never exceeds replicas+maxSurge pods nor maxUnavailable unready" {
	web 4 v2 "$REGISTRY/busybox:test" >"$R/apps/web.yaml"; git -C "$R" commit -qam "web v2"
	: >"$TB/samples"
	( while [ ! -e "$TB/stop" ]; do sample >>"$TB/samples"; sleep 0.2; done ) &
	sampler=$!
	run gsync --wait --timeout 180s
	touch "$TB/stop"; wait "$sampler"; rm -f "$TB/stop"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"rolled out revision 2 (4/4 updated, 4 ready)"* ]]
	echo "samples: $(wc -l <"$TB/samples")"
	[ "$(wc -l <"$TB/samples")" -ge 5 ]
	# replicas 4, maxSurge 1, maxUnavailable 1: at most 5 pods, at least 3 ready
	awk '$1 > 5 || $2 < 3 { print "bad sample: " $0; bad = 1 } END { exit bad }' "$TB/samples"
	[ "$(served)" = "v2=4 " ]
}

@test "a broken image stops the rollout with ProgressDeadlineExceeded; the old pods keep serving" {
	web 4 v3 "$REGISTRY/busybox:does-not-exist" >"$R/apps/web.yaml"; git -C "$R" commit -qam "web v3 (broken)"
	run gsync --wait --timeout 120s
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"deployment.apps/web  revision 3 failed: ProgressDeadlineExceeded"* ]]
	# maxUnavailable 1: three of the v2 pods still serve
	[[ "$(served)" == *"v2=3"* || "$(served)" == *"v2=4"* ]]
	run gitops rollout status deployment/web --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"
	[ "$status" -eq 1 ]
	[[ "$output" == *'deployment "web" exceeded its progress deadline'* ]]
	run gitops rollout undo deployment/web --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"
	[ "$status" -eq 0 ]
	run gsync --wait --timeout 120s
	[ "$status" -eq 0 ]
	[ "$(served)" = "v2=4 " ]
}

@test "a node taken down: NotReady, its pods replaced; back: what it should not run is removed" {
	link="${TESTBED_BRIDGE}-n3"
	[ -n "$TESTBED_BRIDGE" ] && ip link show "$link" >/dev/null
	ip link set "$link" down
	run gsync
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"node3    ✗ unreachable"* ]]
	sleep 7     # past evictionTimeout (6s)
	run gsync --wait --timeout 120s
	echo "$output"
	[[ "$output" == *"rolled out revision"*"(4/4 updated, 4 ready)"* ]]
	# all four on node1 and node2 now
	[ "$(served)" = "v2=4 " ]
	ip link set "$link" up
	# the next passes reach node3 again once its SSH connection recovers (TCP
	# retransmission back-off); the first one that does removes its evicted pods
	for i in $(seq 20); do
		run gsync --wait --timeout 120s
		echo "$output"
		[ "$status" -eq 0 ] && break
		sleep 2
	done
	[ "$status" -eq 0 ]
	[ "$(served)" = "v2=4 " ]
	[ "$(sample)" = "4 4" ]
}
