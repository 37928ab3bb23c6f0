#!/usr/bin/env bats
# gitops get (live), describe, logs, exec, events, status: kubectl's habits on the
# state the nodes report, on a 2-node test bed.

load helpers

setup_file() {
	cluster_up 2
	web v1 >"$R/apps/web.yaml"
	git -C "$R" add -A
	git -C "$R" commit -q -m "web: first version"
	"$GITOPS" sync --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" --wait --timeout 90s >"$TB/sync1.log" 2>&1 || {
		cat "$TB/sync1.log" >&3; return 1; }
	crash >"$R/apps/crash.yaml"
	git -C "$R" add -A
	git -C "$R" commit -q -m "crash: a pod that fails"
	"$GITOPS" sync --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" >"$TB/sync2.log" 2>&1 || {
		cat "$TB/sync2.log" >&3; return 1; }
	for _ in $(seq 60); do   # until the crashing pod was restarted after a back-off
		"$GITOPS" get pods -l app=crash --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" 2>/dev/null |
			grep -qE ' 0/1 +[A-Za-z]+ +[1-9]' && break
		sleep 1
	done
}

teardown_file() {
	cluster_down
}

setup() {
	cluster_env
}

# web VERSION: 2 replicas of busybox httpd that print line1..line5 first
web() {
	cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web}}
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
        command: [sh, -c, 'for i in 1 2 3 4 5; do echo line\$i; done; echo $1 > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /index.html, port: http}, periodSeconds: 1}
YAML
}

# crash: a pod that prints "boom" and exits 3, again and again
crash() {
	cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: crash, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: crash}}
  template:
    metadata: {labels: {app: crash}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: crash
        image: $REGISTRY/busybox:test
        command: [sh, -c, 'echo boom; exit 3']
YAML
}

g() { gitops "$@" --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"; }
gx() { gitops exec --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" "$@"; }   # options before --

AGE='[0-9]+[smhdy][0-9smhdy]*'   # kubectl's HumanDuration

# table: a kubectl table on stdin as tab-separated cells, checking that every
# cell starts exactly under its header (columns 3 spaces apart at least).
table() {
	/usr/bin/python3 -c '
import re, sys
rows = sys.stdin.read().rstrip("\n").split("\n")
head = rows[0]
starts = [i for i, ch in enumerate(head) if ch != " " and (i == 0 or head[max(0, i - 3):i] == "   ")]
for r in rows:
    cells = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(r)
        assert s == 0 or r[s - 1] == " ", (r, s)
        assert s >= len(r) or r[s] != " ", ("misaligned", r, head)
        cells.append(r[s:end].rstrip())
    print("\t".join(cells))'
}

# status FIELD... of every pod on the nodes: lines "NODE NAME IP HASH"
node_pods() {
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" "$n" gitops node status -o json | /usr/bin/python3 -c '
import json,sys
for p in json.load(sys.stdin)["pods"]:
    print(sys.argv[1], p["name"], p.get("podIP"), p.get("labels",{}).get("pod-template-hash"))' "$n"
	done
}

webpod() { node_pods | awk '$2 ~ /^web-/ {print $2; exit}'; }
crashpod() { node_pods | awk '$2 ~ /^crash-/ {print $2; exit}'; }

@test "get pods: READY, STATUS, RESTARTS, AGE as kubectl computes them" {
	run g get pods
	echo "$output"
	[ "$status" -eq 0 ]
	run table <<<"$output"
	echo "$output"
	[ "${lines[0]}" = "$(printf 'NAME\tREADY\tSTATUS\tRESTARTS\tAGE')" ]
	[ "${#lines[@]}" -eq 4 ]
	[[ "${lines[1]}" =~ ^crash-[a-z0-9]+-[a-z0-9]{5}$'\t'0/1$'\t'(CrashLoopBackOff|Error)$'\t'[1-9][0-9]*' ('$AGE' ago)'$'\t'$AGE$ ]]
	[[ "${lines[2]}" =~ ^web-[a-z0-9]+-[a-z0-9]{5}$'\t'1/1$'\t'Running$'\t'0$'\t'$AGE$ ]]
	[[ "${lines[3]}" =~ ^web-[a-z0-9]+-[a-z0-9]{5}$'\t'1/1$'\t'Running$'\t'0$'\t'$AGE$ ]]
}

@test "get pods -o wide adds IP and NODE; -A adds NAMESPACE; -l selects" {
	run g get pods -o wide -l app=web
	echo "$output"
	[ "$status" -eq 0 ]
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'NAME\tREADY\tSTATUS\tRESTARTS\tAGE\tIP\tNODE')" ]
	[ "${#lines[@]}" -eq 3 ]
	got=$(printf '%s\n' "${lines[@]:1}" | awk -F'\t' '{print $7, $1, $6}' | sort)
	want=$(node_pods | awk '$2 ~ /^web-/ {print $1, $2, $3}' | sort)
	[ "$got" = "$want" ]
	run g get pods -A -l app=crash
	echo "$output"
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'NAMESPACE\tNAME\tREADY\tSTATUS\tRESTARTS\tAGE')" ]
	[[ "${lines[1]}" == "default"$'\t'"$(crashpod)"$'\t'"0/1"$'\t'* ]]
	[ "${#lines[@]}" -eq 2 ]
	run g get pods -n other
	[ "$status" -eq 0 ]
	[ "$output" = "No resources found in other namespace." ]
	run g get pod nope
	[ "$status" -eq 1 ]
	[ "$output" = 'gitops: pods "nope" not found in namespace "default"' ]
}

@test "get pod -o json|yaml|name: the node's pod status as a v1 Pod" {
	p=$(webpod)
	run g get pod "$p" -o json
	[ "$status" -eq 0 ]
	echo "$output" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["apiVersion"] == "v1" and d["kind"] == "Pod", d
m = d["metadata"]
assert m["name"] == sys.argv[1] and m["namespace"] == "default" and len(m["uid"]) == 16, m
assert m["labels"]["app"] == "web" and m["annotations"]["gitops.io/owner"] == "Deployment/default/web", m
assert d["spec"]["nodeName"] in ("node1", "node2"), d["spec"]
s = d["status"]
assert s["phase"] == "Running" and s["podIP"] and s["containerStatuses"][0]["ready"] is True, s
assert "uid" not in s and "planHash" not in s, s' "$p"
	run g get "pod/$p" -o yaml
	[ "${lines[0]}" = "apiVersion: v1" ]
	[ "${lines[1]}" = "kind: Pod" ]
	[ "${lines[2]}" = "metadata:" ]
	[ "${lines[3]}" = "  name: $p" ]
	[[ "$output" == *$'\nstatus:\n'*$'\n  phase: Running\n'* ]]
	run g get pods -l app=web -o name
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == pod/web-* ]]
	run g get pods -l app=web -o json
	echo "$output" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["kind"]=="List" and len(d["items"])==2'
}

@test "get deployments and replicasets: kubectl's columns from the rollouts" {
	run g get deployments
	echo "$output"
	[ "$status" -eq 0 ]
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'NAME\tREADY\tUP-TO-DATE\tAVAILABLE\tAGE')" ]
	[[ "${lines[1]}" =~ ^crash$'\t'0/1$'\t'1$'\t'0$'\t'$AGE$ ]]
	[[ "${lines[2]}" =~ ^web$'\t'2/2$'\t'2$'\t'2$'\t'$AGE$ ]]
	run g get deploy web -o wide
	run table <<<"$output"
	[[ "${lines[1]}" == "web"$'\t'"2/2"$'\t'"2"$'\t'"2"$'\t'*$'\t'"web"$'\t'"$REGISTRY/busybox:test"$'\t'"app=web" ]]
	hash=$(node_pods | awk '$2 ~ /^web-/ {print $4; exit}')
	chash=$(node_pods | awk '$2 ~ /^crash-/ {print $4; exit}')
	run g get rs
	echo "$output"
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'NAME\tDESIRED\tCURRENT\tREADY\tAGE')" ]
	[[ "${lines[1]}" == "crash-$chash"$'\t'"1"$'\t'"1"$'\t'"0"$'\t'* ]]
	[[ "${lines[2]}" == "web-$hash"$'\t'"2"$'\t'"2"$'\t'"2"$'\t'* ]]
	run g get rs -o wide
	[[ "$output" == *"app=web,pod-template-hash=$hash"* ]]
	run g get deploy web -o json
	echo "$output" | /usr/bin/python3 -c '
import json,sys; d=json.load(sys.stdin); s=d["status"]
assert d["spec"]["replicas"]==2 and s["readyReplicas"]==2 and s["updatedReplicas"]==2 and s["availableReplicas"]==2, s
assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]=="1", d["metadata"]
assert [c["type"] for c in s["conditions"]]==["Available","Progressing"], s'
	# mixed kinds: kubectl's kind/name prefixes, one table per kind
	run g get deploy,rs -l app=web
	[[ "${lines[1]}" == "deployment.apps/web "* ]]
	[[ "$output" == *$'\n\nNAME '* ]]   # a blank line between the tables
	[[ "${lines[3]}" == "replicaset.apps/web-$hash "* ]]
	[ "${#lines[@]}" -eq 4 ]
	# --desired: today's view of git
	run g get deploy web --desired
	[[ "${lines[0]}" == "NAME   REPLICAS   STRATEGY" ]]
}

@test "get nodes: STATUS from reachability, VERSION, wide INTERNAL-IP POD-CIDR PODS" {
	version=$(ssh -F "$SSH_CONFIG" node1 gitops node status -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
	run g get nodes
	echo "$output"
	[ "$status" -eq 0 ]
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'NAME\tSTATUS\tROLES\tAGE\tVERSION')" ]
	[ "${lines[1]}" = "$(printf 'node1\tReady\t<none>\t<unknown>\t%s' "$version")" ]
	[ "${lines[2]}" = "$(printf 'node2\tReady\t<none>\t<unknown>\t%s' "$version")" ]
	run g get nodes -o wide
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'NAME\tSTATUS\tROLES\tAGE\tVERSION\tINTERNAL-IP\tPOD-CIDR\tPODS')" ]
	n1=$(node_pods | awk '$1 == "node1"' | wc -l)
	n2=$(node_pods | awk '$1 == "node2"' | wc -l)
	[ "${lines[1]}" = "$(printf 'node1\tReady\t<none>\t<unknown>\t%s\t%s\t%s\t%s' "$version" "$NODE1_ADDR" "$NODE1_POD_CIDR" "$n1")" ]
	[ "${lines[2]}" = "$(printf 'node2\tReady\t<none>\t<unknown>\t%s\t%s\t%s\t%s' "$version" "$NODE2_ADDR" "$NODE2_POD_CIDR" "$n2")" ]
}

@test "exec runs a command in the container; its exit status passes through" {
	p=$(webpod)
	run gx "$p" -- cat /etc/hostname
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$p" ]
	run gx "$p" -- sh -c 'exit 7'
	[ "$status" -eq 7 ]
	# every word arrives as it was given: spaces, quotes, $ are not the node shell's
	run gx "$p" -c web -- sh -c 'echo "$0|$1"' 'a b' "c'd \$HOME"
	[ "$output" = "a b|c'd \$HOME" ]
	run bash -c "echo piped | $(printf '%q ' "$GITOPS") exec -i $p --repo $R --state-dir $ST --ssh-config $SSH_CONFIG -- cat"
	[ "$output" = piped ]
	run bash -c "echo piped | $(printf '%q ' "$GITOPS") exec $p --repo $R --state-dir $ST --ssh-config $SSH_CONFIG -- cat"
	[ "$status" -eq 0 ]
	[ -z "$output" ]   # without -i the command gets no input
	run gx "$(crashpod)" -- true
	[ "$status" -eq 1 ]
	[[ "$output" == "gitops: container crash in pod $(crashpod) is not running"* ]]
	run gx nope -- true
	[ "$status" -eq 1 ]
	[ "$output" = 'gitops: pods "nope" not found in namespace "default"' ]
	run gx "$p"
	[ "$status" -eq 2 ]
	# the node side on its own
	node=$(node_pods | awk -v p="$p" '$2 == p {print $1}')
	run ssh -F "$SSH_CONFIG" "$node" gitops node exec "default/$p" -- sh -c "'exit 3'"
	[ "$status" -eq 3 ]
}

@test "logs prints the container's output; --tail, -c, -f" {
	p=$(webpod)
	run g logs "$p"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'line1\nline2\nline3\nline4\nline5')" ]
	run g logs "$p" --tail 2
	[ "$output" = "$(printf 'line4\nline5')" ]
	run g logs "pod/$p" -c web --tail=1
	[ "$output" = line5 ]
	run g logs "$p" -c nope
	[ "$status" -eq 1 ]
	[ "$output" = "gitops: container nope is not valid for pod $p" ]
	run g logs "$(crashpod)" --tail 1
	[ "$output" = boom ]
	run timeout 5 "$GITOPS" logs -f --tail 1 "$p" --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"
	[ "$status" -eq 124 ]   # still following when the time ran out
	[ "$output" = line5 ]
}

@test "events: the journals merged by time, Started and BackOff" {
	run g events
	echo "$output"
	[ "$status" -eq 0 ]
	run table <<<"$output"
	[ "${lines[0]}" = "$(printf 'LAST SEEN\tNODE\tTYPE\tREASON\tOBJECT\tMESSAGE')" ]
	p=$(webpod) c=$(crashpod)
	printf '%s\n' "${lines[@]}" | grep -qP "^\d+\w*\tnode\d\tNormal\tScheduled\tpod/$p\tSuccessfully assigned default/$p to node\d$"
	printf '%s\n' "${lines[@]}" | grep -qP "^\d+\w*\tnode\d\tNormal\tPulled\tpod/$p\tSuccessfully pulled image \"$REGISTRY/busybox:test\"$"
	printf '%s\n' "${lines[@]}" | grep -qP "^\d+\w*\tnode\d\tNormal\tStarted\tpod/$p\tStarted container web$"
	printf '%s\n' "${lines[@]}" | grep -qP "^\d+\w*\tnode\d\tWarning\tExited\tpod/$c\tContainer crash exited with code 3 \(Error\)$"
	printf '%s\n' "${lines[@]}" | grep -qP "^\d+\w*\tnode\d\tWarning\tBackOff\tpod/$c\tBack-off \d+s restarting failed container crash$"
	# oldest first: the web pods started before the crash pod existed
	first_web=$(printf '%s\n' "${lines[@]}" | grep -n "Started container web" | head -1 | cut -d: -f1)
	first_crash=$(printf '%s\n' "${lines[@]}" | grep -n "Started container crash" | head -1 | cut -d: -f1)
	[ "$first_web" -lt "$first_crash" ]
	run g events -A
	[[ "${lines[0]}" == "NAMESPACE   LAST SEEN   NODE"* ]]
	run g events -n other
	[ "$status" -eq 0 ]
	[ "$output" = "No events found in other namespace." ]
	# --since: only what a node journaled after SEQ (the node without the crashing pod is quiet)
	quiet=$(node_pods | awk '$2 ~ /^crash-/ {print ($1 == "node1") ? "node2" : "node1"}')
	last=$(ssh -F "$SSH_CONFIG" "$quiet" gitops node status -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["journal"]["lastSeq"])')
	run g events -A --since "$last"
	[[ "$output" != *"   $quiet   "* ]]
}

@test "describe deployment: replicas, strategy, conditions, revision, ReplicaSets, events" {
	hash=$(node_pods | awk '$2 ~ /^web-/ {print $4; exit}')
	commit=$(git -C "$R" rev-parse --short=7 HEAD~1)
	echo "HEAD~1 is $commit"
	run g describe deployment web
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "Name:                   web" ]
	[ "${lines[1]}" = "Namespace:              default" ]
	[[ "$output" == *$'\nReplicas:               2 desired | 2 updated | 2 total | 2 available | 0 unavailable\n'* ]]
	[[ "$output" == *$'\nStrategyType:           RollingUpdate\n'* ]]
	[[ "$output" == *$'\nRollingUpdateStrategy:  0 max unavailable, 1 max surge\n'* ]]
	[[ "$output" == *$'\nRevision:               1 (commit '"$commit"$': web: first version)\n'* ]]
	[[ "$output" == *$'\n    Readiness:      http-get http://:http/index.html delay=0s timeout=1s period=1s #success=1 #failure=3\n'* ]]
	[[ "$output" == *$'\n  Available    True    MinimumReplicasAvailable\n  Progressing  True    NewReplicaSetAvailable\n'* ]]
	[[ "$output" == *$'\nOldReplicaSets:  <none>\nNewReplicaSet:   web-'"$hash"$' (2/2 replicas created)\nEvents:\n'* ]]
	grep -qE '^  Type +Reason +Age +From +Message$' <<<"$output"
	grep -qE '^  ---- +------ +---- +---- +-------$' <<<"$output"
	[ "$(grep -c '  Normal  Started .* Started container web$' <<<"$output")" -eq 2 ]
	[[ "$output" != *crash* ]]
	run g describe deploy/crash
	echo "$output"
	[[ "$output" == *$'\n  Available    False   MinimumReplicasUnavailable\n'* ]]
	grep -qE '^  Warning  BackOff +[0-9]+\w* +node[12] +Back-off [0-9]+s restarting failed container crash$' <<<"$output"
	run g describe deployment nope
	[ "$status" -eq 1 ]
	[ "$output" = 'gitops: deployments.apps "nope" not found in namespace "default"' ]
}

@test "describe pod and node" {
	p=$(webpod)
	read -r node name ip hash < <(node_pods | awk -v p="$p" '$2 == p')
	addr=$(awk -F= -v n="${node^^}_ADDR" '$1 == n {print $2}' "$TB/env")
	run g describe pod "$p"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "Name:             $p" ]
	[[ "$output" == *$'\nNode:             '"$node/$addr"$'\n'* ]]
	[[ "$output" == *$'\nStatus:           Running\nIP:               '"$ip"$'\nControlled By:    ReplicaSet/web-'"$hash"$'\n'* ]]
	[[ "$output" == *$'\nContainers:\n  web:\n'* ]]
	[[ "$output" == *$'\n    State:          Running\n'* ]]
	[[ "$output" == *$'\n    Ready:          True\n    Restart Count:  0\n    Readiness:      http-get'* ]]
	grep -qE "^  Normal  Scheduled +[0-9]+\w* +$node +Successfully assigned default/$p to $node$" <<<"$output"
	run g describe pod "$(crashpod)"
	[[ "$output" == *$'\n    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    3\n'* ]]
	run g describe node node1
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "Name:               node1" ]
	[[ "$output" == *$'\n  Ready  True    NodeReachable  gitops node status answered\n'* ]]
	[[ "$output" == *$'\n  InternalIP:  '"$NODE1_ADDR"$'\n'* ]]
	[[ "$output" == *$'\nPodCIDR:            '"$NODE1_POD_CIDR"$'\n'* ]]
	[[ "$output" == *"Non-terminated Pods:          ($(node_pods | awk '$1 == "node1"' | wc -l) in total)"* ]]
	run g describe svc web
	[ "$status" -eq 2 ]
}

@test "status: last synced commit, nodes, workloads, pins and paused rollouts" {
	commit=$(git -C "$R" rev-parse --short=7 HEAD)
	version=$(ssh -F "$SSH_CONFIG" node1 gitops node status -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
	run g status
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "Last sync:  $commit crash: a pod that fails" ]
	[ "${lines[1]}" = "Nodes:" ]
	run table <<<"$(printf '%s\n' "${lines[@]:2:3}" | sed 's/^  //')"
	[ "${lines[0]}" = "$(printf 'NAME\tSTATUS\tPODS\tVERSION\tLAST ERROR')" ]
	[ "${lines[1]}" = "$(printf 'node1\tReady\t%s\t%s\t<none>' "$(node_pods | awk '$1 == "node1"' | wc -l)" "$version")" ]
	run g status
	run table <<<"$(printf '%s\n' "${lines[@]:6:3}" | sed 's/^  //')"
	[ "${lines[0]}" = "$(printf 'NAMESPACE\tNAME\tREADY\tUP-TO-DATE\tAVAILABLE\tREVISION\tROLLOUT')" ]
	[ "${lines[1]}" = "$(printf 'default\tcrash\t0/1\t1\t0\t1\tprogressing')" ]
	[ "${lines[2]}" = "$(printf 'default\tweb\t2/2\t2\t2\t1\tcomplete')" ]
	run g status
	[ "${lines[9]}" = "Pins:       <none>" ]
	[ "${lines[10]}" = "Paused:     <none>" ]
}

@test "status and describe show a paused rollout and a pin (gitops rollout)" {
	gitops help rollout >/dev/null 2>&1 || skip "no gitops rollout in this build"
	run g rollout pause deployment/crash
	[ "$status" -eq 0 ]
	run g status
	echo "$output"
	[[ "$output" == *$'\nPaused:\n  default/crash' ]]
	[[ "$output" == *"progressing, paused"* ]]
	web v2 >"$R/apps/web.yaml"; git -C "$R" commit -qam "web: v2"
	# not sync --wait, which waits for the paused crash too (until its timeout):
	# passes until web alone is rolled out
	done=
	for _ in $(seq 60); do
		g sync >/dev/null 2>&1 || true
		g get deploy web | grep -qE '^web +2/2 +2 +2 ' && done=1 && break
		sleep 1
	done
	[ -n "$done" ]
	run g rollout undo deployment/web
	[ "$status" -eq 0 ]
	run g status
	echo "$output"
	[[ "$output" == *$'\nPins:\n  default/web   revision 1 (rollout undo; released when git changes the template)\n'* ]]
	run g describe deployment web
	[[ "$output" == *$'\nPinned:                 revision 1 (rollout undo; until git changes the template)\n'* ]]
	run g rollout resume deployment/crash
	[ "$status" -eq 0 ]
}
