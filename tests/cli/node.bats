#!/usr/bin/env bats
# gitops node: plans applied over SSH to a test bed node, checked from outside.

load helpers

setup_file() {
	bed_up 1
}

teardown_file() {
	bed_down
}

setup() {
	bed_env
}

# pod NAME UID CONTAINERS_JSON [RESTART_POLICY]: one pod entry of a plan
pod() {
	printf '{"uid":"%s","namespace":"default","name":"%s","labels":{"app":"%s"},"spec":{"restartPolicy":"%s","terminationGracePeriodSeconds":2,"containers":%s}}' \
		"$2" "$1" "$1" "${4:-Always}" "$3"
}

# plan POD...: a plan for node1 with these pods
plan() {
	local IFS=,
	printf '{"protocol":1,"node":"node1","podCIDR":"%s","insecureRegistries":["%s"],"pods":[%s]}' \
		"$NODE1_POD_CIDR" "$REGISTRY" "$*"
}

apply() { # apply PLAN_JSON: on node1, JSON status out
	echo "$1" | on node1 gitops node apply -o json
}

# wait_for SECONDS JQ_LIKE_PYTHON_EXPR: poll node1's status until the expression holds
wait_for() {
	local deadline=$(( $(date +%s) + $1 )) expr=$2
	while [ "$(date +%s)" -lt "$deadline" ]; do
		if on node1 gitops node status -o json | /usr/bin/python3 -c "
import json,sys
s=json.load(sys.stdin)
pods={p['name']:p for p in s['pods']}
def c(pod, name=None):
    cs=pods[pod]['containerStatuses']
    return [x for x in cs if name is None or x['name']==name][0]
sys.exit(0 if ($expr) else 1)" 2>/dev/null; then
			return 0
		fi
		sleep 0.5
	done
	echo "timed out waiting for: $expr" >&2
	on node1 gitops node status -o json >&2
	return 1
}

# webc: a busybox httpd container answering "hello-from-POD" on its named port http
webc() {
	printf '[{"name":"web","image":"%s/busybox:test","imagePullPolicy":"IfNotPresent","command":["sh","-c","echo hello-from-$(POD_NAME) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"],"env":[{"name":"POD_NAME","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],"ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],"readinessProbe":{"httpGet":{"path":"/index.html","port":"http","scheme":"HTTP"},"periodSeconds":1,"timeoutSeconds":1,"successThreshold":1,"failureThreshold":3}}]' "$REGISTRY"
}

@test "node check: the parts, their versions, and the cgroup controllers enforced" {
	run on node1 gitops node check
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok   runtime"*"runc version"* ]]
	[[ "$output" == *"ok   cni-plugins"* ]]
	[[ "$output" == *"ok   dnsmasq"*"Dnsmasq version"* ]]
	[[ "$output" == *"cgroup "*"enforced: memory cpu pids"* ]]
	run on node1 gitops node check -o json
	echo "$output" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] and d["cgroup"]["version"] in ("v1","v2","hybrid")'
}

@test "a pod serves from its IP; applying the same plan again changes nothing" {
	p=$(plan "$(pod web1 00000000000000a1 "$(webc)")")
	apply "$p" >/dev/null
	wait_for 60 "pods['web1']['phase']=='Running' and c('web1')['ready']"
	ip=$(on node1 gitops node status -o json | /usr/bin/python3 -c 'import json,sys; print([p for p in json.load(sys.stdin)["pods"] if p["name"]=="web1"][0]["podIP"])')
	run curl -s --max-time 5 "http://$ip:8080/index.html"
	[ "$output" = "hello-from-web1" ]
	before=$(on node1 gitops node status -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["journal"]["lastSeq"])')
	apply "$p" >/dev/null
	after=$(on node1 gitops node status -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["journal"]["lastSeq"])')
	[ "$before" = "$after" ]
	on node1 gitops node status -o json | /usr/bin/python3 -c 'import json,sys; p=[p for p in json.load(sys.stdin)["pods"] if p["name"]=="web1"][0]; assert p["containerStatuses"][0]["restartCount"]==0, p'
	run on node1 gitops node logs web1 --tail 5
	[ "$status" -eq 0 ]
}

@test "a crashing container backs off; a failing readiness probe leaves it unready" {
	crash='[{"name":"crash","image":"'"$REGISTRY"'/busybox:test","imagePullPolicy":"IfNotPresent","command":["sh","-c","echo dying; exit 3"]}]'
	unready='[{"name":"u","image":"'"$REGISTRY"'/busybox:test","imagePullPolicy":"IfNotPresent","command":["sleep","3600"],"readinessProbe":{"exec":{"command":["false"]},"periodSeconds":1,"timeoutSeconds":1,"successThreshold":1,"failureThreshold":1}}]'
	apply "$(plan "$(pod crash1 00000000000000b1 "$crash")" "$(pod unready1 00000000000000b2 "$unready")")" >/dev/null
	wait_for 60 "c('crash1')['restartCount']>=2 and c('crash1')['state'].get('waiting',{}).get('reason')=='CrashLoopBackOff' and c('crash1')['lastState']['terminated']['exitCode']==3"
	wait_for 30 "c('unready1')['state'].get('running') and not c('unready1')['ready'] and pods['unready1']['conditions'][3]['status']=='False'"
	run on node1 gitops node logs crash1
	[[ "$output" == *dying* ]]
}

@test "an OOM-killed container says OOMKilled" {
	oom='[{"name":"hog","image":"'"$REGISTRY"'/busybox:test","imagePullPolicy":"IfNotPresent","command":["sh","-c","x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"],"resources":{"limits":{"memory":"16Mi"}}}]'
	apply "$(plan "$(pod oom1 00000000000000c1 "$oom" Never)")" >/dev/null
	wait_for 60 "c('oom1')['state'].get('terminated',{}).get('reason')=='OOMKilled' and pods['oom1']['phase']=='Failed'"
}

@test "removing a pod leaves nothing behind: netns, veth, IP, bundle, cgroup" {
	p=$(plan "$(pod gone1 00000000000000d1 "$(webc)")")
	apply "$p" >/dev/null
	wait_for 60 "pods['gone1']['phase']=='Running'"
	on node1 test -d /var/lib/gitops/pods/00000000000000d1
	on node1 ip netns list | grep -q gitops-00000000000000d1
	apply "$(plan)" >/dev/null
	run on node1 ls /var/lib/gitops/pods
	[ -z "$output" ]
	run on node1 ip netns list
	[[ "$output" != *gitops-* ]]
	run on node1 'ip -o link show | grep veth || true'
	echo "left: $output"
	[ -z "$output" ]
	run on node1 'ls /var/lib/gitops/cni/networks/gitops/ 2>/dev/null | grep -c "^10\." || true'
	[ "$output" = 0 ]
	run on node1 'find /sys/fs/cgroup -maxdepth 3 -path "*gitops/00000000000000d1*" | wc -l'
	[ "$output" = 0 ]
	run on node1 runc --root /run/gitops/runc list -q
	[ -z "$output" ]
}

@test "a changed container spec restarts that container only" {
	two() { # two VALUE: containers a (env V=VALUE) and b (unchanged)
		printf '[{"name":"a","image":"%s/busybox:test","imagePullPolicy":"IfNotPresent","command":["sleep","3600"],"env":[{"name":"V","value":"%s"}]},{"name":"b","image":"%s/busybox:test","imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]' "$REGISTRY" "$1" "$REGISTRY"
	}
	apply "$(plan "$(pod two1 00000000000000e1 "$(two one)")")" >/dev/null
	wait_for 60 "c('two1','a')['state'].get('running') and c('two1','b')['state'].get('running')"
	pids() { on node1 gitops node status -o json | /usr/bin/python3 -c '
import json,sys
p=[p for p in json.load(sys.stdin)["pods"] if p["name"]=="two1"][0]
print(" ".join("%s=%s" % (c["name"], c.get("pid")) for c in p["containerStatuses"]))'; }
	before=$(pids)
	apply "$(plan "$(pod two1 00000000000000e1 "$(two two)")")" >/dev/null
	wait_for 60 "c('two1','a')['state'].get('running') and c('two1','a')['restartCount']>=1"
	after=$(pids)
	echo "before: $before, after: $after"
	[ "${before#* }" = "${after#* }" ]      # b: same process
	[ "${before%% *}" != "${after%% *}" ]   # a: a new one
}

@test "a bad plan is refused whole, with a reason" {
	run sh -c "echo '{\"protocol\": 9, \"pods\": []}' | ssh -F '$SSH_CONFIG' node1 gitops node apply"
	[ "$status" -ne 0 ]
	[[ "$output" == *"protocol 9 not supported; this node speaks 1"* ]]
	run sh -c "echo 'not json' | ssh -F '$SSH_CONFIG' node1 gitops node apply"
	[ "$status" -ne 0 ]
	[[ "$output" == *"plan: line 1"* ]]
}

# cplan CLUSTER_KEY JSON: a plan without pods carrying "cluster" or "clusterDelta"
cplan() {
	printf '{"protocol":1,"node":"node1","podCIDR":"%s","pods":[],"%s":%s}' "$NODE1_POD_CIDR" "$1" "$2"
}

# entries FROM TO V: cluster state entries kFROM..kTO at version V, as one JSON object
entries() {
	/usr/bin/python3 -c "import json,sys; a,b,v=map(int,sys.argv[1:]); print(json.dumps({'k%d'%i: {'v': v, 'value': {'n': i, 'v': v}} for i in range(a,b)}))" "$@"
}

@test "a clusterDelta is kept aside onto the hash the node reports, and equals the whole state merged" {
	other=$(on node1 mktemp -d)
	h() { on node1 gitops node status -o json "$@" | jq -r .clusterHash; }
	whole() {   # whole STATE_JSON: its clusterHash, from a fresh state directory
		on node1 rm -rf "$other/s" "$other/r"
		cplan cluster "$1" | on node1 gitops node apply --state-dir "$other/s" --run-dir "$other/r" -o json |
			jq -r .clusterHash
	}
	# journalled STATUS_SEQ: the keys of each cluster.changed since
	journalled() {
		on node1 gitops node status --since "$1" -o json |
			jq -c '[.journal.records[] | select(.type == "cluster.changed") | .body | keys]'
	}
	c0=$(entries 0 400 1)
	apply "$(cplan cluster "$c0")" >/dev/null
	h0=$(h)
	[ "$h0" = "$(whole "$c0")" ]
	# the status leaves the state out for a caller that has it
	[ "$(on node1 gitops node status -o json --cluster-hash "$h0" | jq 'has("cluster")')" = false ]
	# another base: refused, naming both
	run on node1 gitops node apply -o json <<<"$(cplan clusterDelta '{"base":"'"$(printf '0%.0s' $(seq 64))"'","set":{},"was":{}}')"
	[ "$status" -ne 0 ]
	[[ "$output" == *"clusterDelta: base 0000"*"is not this node's cluster state (clusterHash $h0)"* ]]
	# one entry changed and one added: set aside, journalled, and the same hash and
	# state as the whole merged
	c1=$(echo "$c0" | jq -c '.k7 = {"v":8,"value":"x"} | .new = {"v":9,"value":[1]}')
	seq0=$(on node1 gitops node status -o json | jq .journal.lastSeq)
	apply "$(cplan clusterDelta "$(jq -cn --arg b "$h0" --argjson c0 "$c0" '{base: $b,
		set: {k7: {v: 8, value: "x"}, new: {v: 9, value: [1]}}, was: {k7: $c0.k7, new: null}}')")" >/dev/null
	h1=$(h)
	[ "$h1" = "$(whole "$c1")" ]
	[ "$(on node1 gitops node status -o json | jq -c ".cluster == $c1")" = true ]
	[ "$(journalled "$seq0")" = '[["k7","new"]]' ]
	# a "was" that is not what the node set aside: refused, nothing changes
	run on node1 gitops node apply -o json <<<"$(cplan clusterDelta "$(jq -cn --arg b "$h1" --argjson c0 "$c0" \
		'{base: $b, set: {k7: {v: 10, value: "y"}}, was: {k7: $c0.k7}}')")"
	[ "$status" -ne 0 ]
	[[ "$output" == *'clusterDelta: k7: "was" and "set" do not make a change'* ]]
	[ "$(h)" = "$h1" ]
	# 300 changed at once: more than are kept aside, so written into cluster.json
	c2=$(echo "$c1" | jq -c 'with_entries(if (.key | test("^k[0-9]+$")) and (.key[1:] | tonumber) < 300
		then .value = {v: 20, value: {n: (.key[1:] | tonumber)}} else . end)')
	d=$(jq -cn --arg b "$h1" --argjson c1 "$c1" --argjson c2 "$c2" '{base: $b,
		set: ($c2 | with_entries(select(.value != $c1[.key]))), was: ($c1 | with_entries(select(.value != $c2[.key])))}')
	[ "$(echo "$d" | jq '.set | length')" = 300 ]
	apply "$(cplan clusterDelta "$d")" >/dev/null
	h2=$(h)
	[ "$h2" = "$(whole "$c2")" ]
	[ "$(on node1 gitops node status -o json | jq -c ".cluster == $c2")" = true ]
	# the same state whole: nothing changes, nothing journalled
	seq0=$(on node1 gitops node status -o json | jq .journal.lastSeq)
	apply "$(cplan cluster "$c2")" >/dev/null
	[ "$(h)" = "$h2" ]
	[ "$(journalled "$seq0")" = '[]' ]
	on node1 rm -rf "$other"
}

@test "the journal is compacted past its limit: the newest records stay, a snapshot says up to where" {
	export GITOPS_JOURNAL_MAX_BYTES=8192   # 4 MiB unless set; the node reads it over SSH
	pad=$(printf 'x%.0s' $(seq 300))
	for i in $(seq 40); do
		apply "$(cplan cluster "{\"j$i\":{\"v\":$((100000 + i)),\"value\":\"$pad\"}}")" >/dev/null
	done
	run on node1 gitops node status --since 0 -o json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -c '.journal.records[0] | [.type, .snapshot, (.body.compacted.toSeq > 0)]')" = \
	  '["journal.snapshot",true,true]' ]
	# the newest records are all there, up to the last, without a gap
	[ "$(echo "$output" | jq '[.journal.records[1:][] | .seq] | . == [range(.[0]; .[0] + length)]')" = true ]
	[ "$(echo "$output" | jq '.journal.records[-1].seq == .journal.lastSeq')" = true ]
	[ "$(echo "$output" | jq '.journal.records[0].body.compacted.toSeq + 1 == .journal.records[1].seq')" = true ]
	[ "$(echo "$output" | jq '[.journal.records[] | select(.type == "cluster.changed")] | length > 0')" = true ]
	[ "$(on node1 stat -c %s /var/lib/gitops/journal)" -lt 8192 ]
}
