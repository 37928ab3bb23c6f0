#!/usr/bin/env bats
# gitops validate: reading manifests from git and reporting every problem.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

deployment() { # NAME [IMAGE_FIELD]
	cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      labels: {app: $1}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ${2:-imagePullPolicy}: IfNotPresent
YAML
}

@test "a valid repository: exit 0 and a summary naming the commit" {
	new_repo "$T/r"
	deployment web | write "$T/r/apps/web.yaml"
	commit "$T/r" init
	run gitops validate --repo "$T/r"
	[ "$status" -eq 0 ]
	sha=$(git -C "$T/r" rev-parse --short=7 HEAD)
	[ "$output" = "0 errors in 1 object from 1 file at $sha" ]
}

@test "an unknown field: file:line:col, object, path and the nearest name; exit 1" {
	new_repo "$T/r"
	deployment web imagePullPolcy | write "$T/r/clusters/prod/web.yaml"
	commit "$T/r" init
	run gitops validate --repo "$T/r" --path clusters/prod
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = 'clusters/prod/web.yaml:17:9: Deployment default/web: spec.template.spec.containers[0].imagePullPolcy: unknown field (did you mean "imagePullPolicy"?)' ]
	[[ "${lines[1]}" == "1 error in 1 object from 1 file at "* ]]
}

@test "a duplicate object names both places" {
	new_repo "$T/r"
	printf 'apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: data}\nspec:\n  ports: [{port: 5432}]\n' | write "$T/r/db-old.yaml"
	printf '# the new one\n\napiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: data}\nspec:\n  ports: [{port: 5432}]\n' | write "$T/r/db.yaml"
	commit "$T/r" init
	run gitops validate --repo "$T/r"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "db.yaml:3:1: Service data/db: duplicate of Service data/db in db-old.yaml:1:1" ]
}

@test "every problem is reported, not just the first" {
	new_repo "$T/r"
	write "$T/r/bad.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: Bad_Name
spec:
  replicas: "3"
  selector:
    matchLabels: {app: a}
  strategy:
    rollingUpdate: {maxSurge: 0, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: b}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 70000}]
        resources:
          limits: {memory: 64Mx}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "61 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Secret
metadata: {name: s}
data:
  password: "not base64!"
YAML
	commit "$T/r" init
	run gitops validate --repo "$T/r"
	[ "$status" -eq 1 ]
	echo "$output"
	[[ "$output" == *"bad.yaml:4:9: Deployment default/Bad_Name: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"* ]]
	[[ "$output" == *"bad.yaml:6:13: Deployment default/Bad_Name: spec.replicas: wrong type: expected integer, got string"* ]]
	[[ "$output" == *"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when \`maxSurge\` is 0"* ]]
	[[ "$output" == *"spec.template.metadata.labels: Invalid value: \`selector\` does not match template \`labels\`"* ]]
	[[ "$output" == *"spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"* ]]
	[[ "$output" == *"spec.template.spec.containers[0].resources.limits[memory]: Invalid value: \"64Mx\""* ]]
	[[ "$output" == *"CronJob default/c: spec.schedule: Invalid value: \"61 * * * *\""* ]]
	[[ "$output" == *"Secret default/s: data[password]: Invalid value: illegal base64 data at input byte"* ]]
	[[ "${lines[-1]}" == "8 errors in 3 objects from 1 file at "* ]]
}

@test "a reference to a ConfigMap no manifest defines is a warning, exit 0" {
	new_repo "$T/r"
	write "$T/r/pod.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: busybox
    envFrom: [{configMapRef: {name: settings}}]
YAML
	commit "$T/r" init
	run gitops validate --repo "$T/r"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == 'pod.yaml:8:37: Pod default/p: spec.containers[0].envFrom[0].configMapRef.name: warning: ConfigMap "settings" is not defined'* ]]
	[[ "${lines[1]}" == "0 errors, 1 warning in 1 object from 1 file at "* ]]
}

@test "refs: branch, tag and commit; the tree is read, not the worktree" {
	new_repo "$T/r"
	deployment web | write "$T/r/web.yaml"
	commit "$T/r" good
	git -C "$T/r" tag v1
	good=$(git -C "$T/r" rev-parse HEAD)
	deployment web imagePullPolcy | write "$T/r/web.yaml"
	commit "$T/r" bad
	echo 'garbage: [' >"$T/r/uncommitted.yaml"
	run gitops validate --repo "$T/r" --ref v1
	[ "$status" -eq 0 ]
	run gitops validate --repo "$T/r" --ref "${good:0:9}"
	[ "$status" -eq 0 ]
	run gitops validate --repo "$T/r" --ref main
	[ "$status" -eq 1 ]
}

@test "missing repository, ref or path: exit 2 with a one-line reason" {
	new_repo "$T/r"
	deployment web | write "$T/r/web.yaml"
	commit "$T/r" init
	run gitops validate --repo "$T/nope"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	run gitops validate --repo "$T/r" --ref nope
	[ "$status" -eq 2 ]
	[[ "$output" == *"nope"* ]]
	[ "${#lines[@]}" -eq 1 ]
	run gitops validate --repo "$T/r" --path clusters/x
	[ "$status" -eq 2 ]
	[[ "$output" == *"clusters/x"* ]]
	[ "${#lines[@]}" -eq 1 ]
}

@test "a URL is cloned into the state directory once, then fetched" {
	new_repo "$T/r"
	deployment web | write "$T/r/web.yaml"
	commit "$T/r" init
	run gitops validate --repo "file://$T/r" --state-dir "$T/st"
	[ "$status" -eq 0 ]
	[ -d "$T/st/repos" ]
	deployment web imagePullPolcy | write "$T/r/web.yaml"
	commit "$T/r" broken
	run gitops validate --repo "file://$T/r" --state-dir "$T/st" --no-fetch
	[ "$status" -eq 0 ]
	run gitops validate --repo "file://$T/r" --state-dir "$T/st"
	[ "$status" -eq 1 ]
}

@test ".gitopsignore excludes files; only yaml, yml and json load" {
	new_repo "$T/r"
	deployment web | write "$T/r/web.yaml"
	echo 'garbage: [' | write "$T/r/drafts/x.yaml"
	echo 'not yaml at all: [' | write "$T/r/notes.txt"
	printf 'drafts/\n' | write "$T/r/.gitopsignore"
	commit "$T/r" init
	run gitops validate --repo "$T/r"
	[ "$status" -eq 0 ]
	[[ "$output" == *"1 object from 1 file"* ]]
}

@test "YAML syntax errors have a position; other files are still checked" {
	new_repo "$T/r"
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\ndata: {}\n' | write "$T/r/a.yaml"
	deployment web imagePullPolcy | write "$T/r/b.yaml"
	commit "$T/r" init
	run gitops validate --repo "$T/r"
	[ "$status" -eq 1 ]
	[[ "${lines[0]}" == a.yaml:4:* ]]
	[[ "${lines[1]}" == b.yaml:17:9:* ]]
}

@test "a billion-laughs document fails fast with a clear error" {
	new_repo "$T/r"
	{
		echo 'apiVersion: v1'
		echo 'kind: ConfigMap'
		echo 'metadata: {name: lol}'
		echo 'data:'
		echo '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
		prev=a
		for x in b c d e f g h i; do
			echo "  $x: &$x [*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev]"
			prev=$x
		done
	} | write "$T/r/lol.yaml"
	commit "$T/r" init
	start=$(date +%s%N)
	run gitops validate --repo "$T/r"
	end=$(date +%s%N)
	[ "$status" -eq 1 ]
	[[ "$output" == *"aliases expand to more than"* ]]
	[ $(( (end - start) / 1000000 )) -lt 1000 ]
}

@test "files on the command line: the corpus minus what is wrong upstream" {
	corpus="$top/../shared/corpus"
	[ -d "$corpus" ] || skip "no shared corpus beside the checkout"
	for f in $(find "$corpus" -name '*.yaml' | sort); do
		run gitops validate -q "$f"
		case "$f" in
		*/unsupported/*)
			[ "$status" -eq 1 ]; [[ "$output" == *"is not supported by gitops"* ]] ;;
		*application__job__cronjob.yaml)
			[ "$status" -eq 1 ]; [[ "$output" == *'"batch/v1beta1" of CronJob was removed in Kubernetes v1.25; use "batch/v1"'* ]] ;;
		*serviceaccount__mysecretname.yaml)
			[ "$status" -eq 1 ]; [[ "$output" == *"metadata.annotations: wrong type: expected object, got array"* ]] ;;
		*)
			if [ "$status" -ne 0 ]; then echo "rejected: $f"; echo "$output"; false; fi ;;
		esac
	done
}

@test "-o json lists diagnostics for scripts" {
	new_repo "$T/r"
	deployment web imagePullPolcy | write "$T/r/web.yaml"
	commit "$T/r" init
	run gitops validate --repo "$T/r" -o json
	[ "$status" -eq 1 ]
	echo "$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["errors"]==1 and d["diagnostics"][0]["line"]==17, d'
}

@test "cluster settings: the gitops-system/gitops ConfigMap is checked key by key" {
	new_repo "$T/r"
	write "$T/r/gitops.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: gitops, namespace: gitops-system}
data:
  clusterCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/33
  nodePortRange: "32000-31000"
  nodeGracePeriod: 40s
  evictionTimeout: 5 minutes
  sshParalel: "8"
YAML
	commit "$T/r" init
	run gitops validate --repo "$T/r"
	[ "$status" -eq 1 ]
	echo "$output"
	[[ "$output" == *'gitops.yaml:6:16: ConfigMap gitops-system/gitops: data[serviceCIDR]: Invalid value: "10.96.0.0/33": must be a CIDR'* ]]
	[[ "$output" == *'data[nodePortRange]: Invalid value: "32000-31000": must be a port range'* ]]
	[[ "$output" == *'data[evictionTimeout]: Invalid value: "5 minutes": must be a duration like 40s, 5m or 1h30m'* ]]
	[[ "$output" == *'data[sshParalel]: unknown setting (did you mean "sshParallel"?)'* ]]
	[[ "${lines[-1]}" == "4 errors in 1 object from 1 file at "* ]]
}

# peak RSS in MB of a command (python3's resource module measures the child)
peak_mb() {
	/usr/bin/python3 -c 'import resource,subprocess,sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)' "$@"
}

@test "hostile input: alias bombs stay under 100 MB; depth, string and file size are bounded" {
	[[ "$GITOPS" != */asan/* ]] || skip "memory is measured on the normal build"
	new_repo "$T/r"
	{
		echo 'apiVersion: v1'; echo 'kind: ConfigMap'; echo 'metadata: {name: lol}'; echo 'data:'
		echo '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
		prev=a
		for x in b c d e f g h i j k l m n o p; do
			echo "  $x: &$x [*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev]"; prev=$x
		done
	} | write "$T/r/lol.yaml"
	commit "$T/r" bomb
	mb=$(peak_mb "$GITOPS" validate --repo "$T/r")
	echo "peak $mb MB"
	[ "$mb" -lt 100 ]
	# nesting
	/usr/bin/python3 -c 'print("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + "["*5000 + "]"*5000)' >"$T/deep.yaml"
	run gitops validate "$T/deep.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"nesting deeper than 64 levels"* ]]
	# one string over 1 MiB
	/usr/bin/python3 -c 'print("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  k: " + "x"*(2<<20))' >"$T/long.yaml"
	run gitops validate "$T/long.yaml"
	[ "$status" -eq 1 ]
	[[ "$output" == *"longer than the limit of 1048576"* ]]
	# one file over 16 MiB
	/usr/bin/python3 -c 'import sys; sys.stdout.write("# pad\n" * (3<<20))' >"$T/huge.yaml"
	run gitops validate "$T/huge.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"16 MiB"* || "$output" == *"larger than"* ]]
}
