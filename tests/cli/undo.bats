#!/usr/bin/env bats
# gitops rollout undo --commit / --push: the revert written into git (libgit2), on a
# 2-node test bed. The tests run in order and share the repository and the nodes.

load helpers

setup_file() {
	cluster_up 2
	export BARE=$TB/remote.git
	web v1 >"$R/apps/web.yaml"
	git -C "$R" add -A
	git -C "$R" commit -q -m "web: v1"
	gsync --wait --timeout 120s >"$TB/first.log" 2>&1 || { cat "$TB/first.log" >&3; return 1; }
	pods | awk '{ sub(/-[^-]*$/, "", $3); print $3 }' | sort -u >"$TB/v1.rs"   # web-HASH
	web v2 >"$R/apps/web.yaml"
	git -C "$R" commit -qam "web: v2"
	gsync --wait --timeout 120s >"$TB/second.log" 2>&1 || { cat "$TB/second.log" >&3; return 1; }
	git init -q --bare -b main "$BARE"
	git -C "$R" remote add origin "$BARE"
	git -C "$R" push -q origin main
}

teardown_file() {
	cluster_down
}

setup() {
	. "$TB/env"
	export R=$TB/repo ST=$TB/ctl BARE=$TB/remote.git
}

# web VERSION: a file of three documents, the Deployment (image busybox:VERSION, which
# serves VERSION) between two others, in kubectl's layout with comments outside the
# template: `undo --commit` must leave all of that as it is
web() {
	cat <<YAML
# The web tier. Owned by the web team.
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-settings
data:
  greeting: hello   # kept
---
# the Deployment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2   # one per node
  selector:
    matchLabels:
      app: web
  strategy:
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $REGISTRY/busybox:$1
        command:
        - sh
        - -c
        - echo \$IMAGE_VERSION > /tmp/index.html; exec httpd -f -p 8080 -h /tmp
        ports:
        - name: http
          containerPort: 8080
        readinessProbe:
          httpGet:
            path: /index.html
            port: http
          periodSeconds: 1
# end of the Deployment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-extra
data:
  x: "1"
YAML
}

gsync() { gitops sync --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG" "$@"; }
grollout() { gitops rollout "$@" --state-dir "$ST" --ssh-config "$SSH_CONFIG"; }

# pods on every node: lines "NODE UID NAME IMAGE RESTARTS", sorted
pods() {
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" "$n" gitops node status -o json | /usr/bin/python3 -c '
import json,sys
for p in json.load(sys.stdin)["pods"]:
    cs = p["containerStatuses"]
    print(sys.argv[1], p["uid"], p["name"], cs[0].get("image"), sum(c.get("restartCount", 0) for c in cs))' "$n"
	done | sort
}

# the page every pod serves, sorted and unique
served() {
	for n in $NODES; do
		ssh -F "$SSH_CONFIG" "$n" gitops node status -o json | /usr/bin/python3 -c '
import json,sys
for p in json.load(sys.stdin)["pods"]: print(p["podIP"])'
	done | while read -r ip; do curl -s --max-time 5 "http://$ip:8080/index.html"; done | sort -u
}

# the added and removed lines of the last commit, without the file headers
changed_lines() {
	git -C "$1" show --format= -U0 HEAD | grep '^[-+]' | grep -v '^+++\|^---'
}

@test "undo --commit refuses a working file with uncommitted changes and changes nothing" {
	[ "$(served)" = v2 ]
	before=$(pods)
	head=$(git -C "$R" rev-parse HEAD)
	cp "$R/apps/web.yaml" "$TB/web.yaml.orig"
	echo "# a local edit" >>"$R/apps/web.yaml"
	run grollout undo deployment/web --commit --repo "$R"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"gitops: apps/web.yaml has uncommitted changes in $R/: commit or stash them first"* ]]
	[[ "$output" != *"rolled back"* ]]
	[ "$(git -C "$R" rev-parse HEAD)" = "$head" ]
	[ "$(tail -n 1 "$R/apps/web.yaml")" = "# a local edit" ]
	[ "$(git -C "$R" status --porcelain)" = " M apps/web.yaml" ]
	run grollout history deployment/web --repo "$R"
	[[ "$output" != *pinned* ]]
	[ "$(pods)" = "$before" ]
	cp "$TB/web.yaml.orig" "$R/apps/web.yaml"
	[ -z "$(git -C "$R" status --porcelain)" ]
}

@test "undo --commit commits the revert: only the template's image changes, the file validates" {
	v1=$(git -C "$R" rev-parse HEAD~1)
	head=$(git -C "$R" rev-parse HEAD)
	run grollout undo deployment/web --commit --repo "$R"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "committed "???????" on main: Revert deployment/web to revision 1" ]]
	[[ "$output" == *"deployment.apps/web rolled back to revision 1 (committed to git)"* ]]
	[ "$(git -C "$R" rev-parse HEAD~1)" = "$head" ]
	[ "$(git -C "$R" log -1 --format=%s)" = "Revert deployment/web to revision 1" ]
	git -C "$R" log -1 --format=%b | grep -q "introduced by commit $v1 (\"web: v1\")"
	[ "$(git -C "$R" log -1 --format='%an <%ae>')" = "T <t@example.org>" ]
	[ "$(git -C "$R" show --format= --name-only HEAD)" = apps/web.yaml ]
	run changed_lines "$R"
	echo "$output"
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = "-        image: $REGISTRY/busybox:v2" ]
	[ "${lines[1]}" = "+        image: $REGISTRY/busybox:v1" ]
	# work tree and index follow; the working file is the committed one and validates
	[ -z "$(git -C "$R" status --porcelain)" ]
	[ "$(git -C "$R" show HEAD:apps/web.yaml)" = "$(cat "$R/apps/web.yaml")" ]
	web v1 | cmp - "$R/apps/web.yaml"
	run gitops validate "$R/apps/web.yaml"
	echo "$output"
	[ "$status" -eq 0 ]
	run gitops validate --repo "$R"
	[ "$status" -eq 0 ]
}

@test "after undo --commit, sync restarts no pod and no pin is left" {
	run gsync --wait --timeout 120s
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(served)" = v1 ]
	before=$(pods)
	echo "$before"
	[ "$(echo "$before" | wc -l)" -eq 2 ]
	[[ "$before" == *"busybox:v1 0"* && "$before" != *"busybox:v2"* ]]
	# the pods are revision 1's own: the committed template hashes as the pinned one
	[ "$(echo "$before" | awk '{ sub(/-[^-]*$/, "", $3); print $3 }' | sort -u)" = "$(cat "$TB/v1.rs")" ]
	run gsync
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *started* && "$output" != *stopped* && "$output" != *restarted* ]]
	[ "$(pods)" = "$before" ]
	run grollout status deployment/web --repo "$R" --timeout 30s
	[ "$status" -eq 0 ]
	[ "$output" = 'deployment "web" successfully rolled out' ]
	run grollout history deployment/web --repo "$R"
	echo "$output"
	[[ "$output" != *pinned* ]]
	run gitops status --repo "$R" --state-dir "$ST" --ssh-config "$SSH_CONFIG"
	echo "$output"
	[[ "$output" =~ "Pins:"\ +"<none>" ]]
}

@test "undo --push commits and pushes the branch to origin (a local bare repository)" {
	[ "$(git -C "$BARE" rev-parse main)" != "$(git -C "$R" rev-parse main)" ]   # the revert is not pushed yet
	run grollout undo deployment/web --push --repo "$R"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"on main: Revert deployment/web to revision 2"* ]]
	[[ "$output" == *"pushed main to origin"* ]]
	[ "$(git -C "$BARE" rev-parse main)" = "$(git -C "$R" rev-parse main)" ]
	[ "$(git -C "$R" rev-parse origin/main)" = "$(git -C "$R" rev-parse main)" ]
	[ "$(git -C "$BARE" log -1 --format=%s main)" = "Revert deployment/web to revision 2" ]
	[ "$(git -C "$BARE" show main:apps/web.yaml)" = "$(web v2)" ]
	run gsync --wait --timeout 120s
	[ "$status" -eq 0 ]
	[ "$(served)" = v2 ]
}

@test "with a URL --repo: --commit alone is refused; --push commits in the controller's clone and pushes" {
	url=file://$BARE
	head=$(git -C "$BARE" rev-parse main)
	run grollout undo deployment/web --commit --repo "$url"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"with a URL --repo, --commit needs --push"* ]]
	[ "$(git -C "$BARE" rev-parse main)" = "$head" ]
	run grollout undo deployment/web --push --repo "$url"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"on main: Revert deployment/web to revision 3"* ]]
	[[ "$output" == *"pushed main to $url"* ]]
	[ "$(git -C "$BARE" rev-parse main~1)" = "$head" ]
	[ "$(git -C "$BARE" show main:apps/web.yaml)" = "$(web v1)" ]
	run gitops sync --repo "$url" --state-dir "$ST" --ssh-config "$SSH_CONFIG" --wait --timeout 120s
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(served)" = v1 ]
	git -C "$R" pull -q --ff-only origin main
}

@test "a rejected push (non-fast-forward) exits 1; the commit stays on the local branch" {
	other=$TB/other
	git clone -q "$BARE" "$other"
	git -C "$other" -c user.name=O -c user.email=o@example.org commit -q --allow-empty -m "someone else"
	git -C "$other" push -q origin main
	theirs=$(git -C "$BARE" rev-parse main)
	run grollout undo deployment/web --push --repo "$R"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"gitops: pushing main to origin: rejected (non-fast-forward: origin has commits main lacks)"* ]]
	[[ "$output" == *"gitops: the commit "???????" stays on main: pull, then push"* ]]
	[ "$(git -C "$BARE" rev-parse main)" = "$theirs" ]
	[ "$(git -C "$R" log -1 --format=%s)" = "Revert deployment/web to revision 4" ]
	[ -z "$(git -C "$R" status --porcelain)" ]
	# the local commit is in effect: the undo's pass rolled back from it
	run gsync --wait --timeout 120s
	[ "$status" -eq 0 ]
	[ "$(served)" = v2 ]
}
