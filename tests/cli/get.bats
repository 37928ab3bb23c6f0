#!/usr/bin/env bats
# gitops get: desired objects with Kubernetes' defaults, in kubectl's formats.

load helpers

setup() {
	common_setup
	new_repo "$T/r"
	write "$T/r/apps.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80, name: http}]
        readinessProbe:
          httpGet: {port: http}
        resources:
          limits: {memory: 64Mi}
      - name: side
        image: registry.example.org:5000/tools/side:1.2
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {app: web}}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data, labels: {app: db}}
spec:
  selector: {app: db}
  sessionAffinity: ClientIP
  ports: [{port: 5432, targetPort: 5432, name: pg}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-front, namespace: data}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {tier: front}}}]}]
  egress: [{}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: "busybox:latest"}]
YAML
	commit "$T/r" init
}
teardown() { common_teardown; }

@test "-o yaml fills in Kubernetes' defaults" {
	run gitops get deployment web -o yaml --repo "$T/r"
	[ "$status" -eq 0 ]
	echo "$output"
	[[ "$output" == *"  namespace: default"* ]]
	[[ "$output" == *"  replicas: 1"* ]]
	[[ "$output" == *"  revisionHistoryLimit: 10"* ]]
	[[ "$output" == *"  progressDeadlineSeconds: 600"* ]]
	[[ "$output" == *"      maxUnavailable: 25%"* ]]
	[[ "$output" == *"      maxSurge: 25%"* ]]
	[[ "$output" == *"      restartPolicy: Always"* ]]
	[[ "$output" == *"      terminationGracePeriodSeconds: 30"* ]]
	[[ "$output" == *"        imagePullPolicy: Always"* ]]        # no tag
	[[ "$output" == *"        imagePullPolicy: IfNotPresent"* ]]  # :1.2 behind a registry port
	[[ "$output" == *"          periodSeconds: 10"* ]]
	[[ "$output" == *"          timeoutSeconds: 1"* ]]
	[[ "$output" == *"          failureThreshold: 3"* ]]
	[[ "$output" == *"          successThreshold: 1"* ]]
	[[ "$output" == *"          protocol: TCP"* ]]
	[[ "$output" == *"          requests:"*"            memory: 64Mi"* ]]
}

@test "Service, NetworkPolicy and CronJob defaults" {
	run gitops get svc web -o yaml --repo "$T/r"
	[[ "$output" == *"  type: ClusterIP"* ]]
	[[ "$output" == *"    targetPort: 80"* ]]
	[[ "$output" == *"  sessionAffinity: None"* ]]
	run gitops get svc db -n data -o yaml --repo "$T/r"
	[[ "$output" == *"      timeoutSeconds: 10800"* ]]
	run gitops get netpol only-front -n data -o json --repo "$T/r"
	echo "$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["spec"]["policyTypes"]==["Ingress","Egress"], d'
	run gitops get cj nightly -o json --repo "$T/r"
	echo "$output" | python3 -c '
import json,sys; d=json.load(sys.stdin)["spec"]
assert d["concurrencyPolicy"]=="Allow" and d["successfulJobsHistoryLimit"]==3 and d["failedJobsHistoryLimit"]==1, d
j=d["jobTemplate"]["spec"]; assert j["backoffLimit"]==6 and j["completions"]==1 and j["parallelism"]==1, j'
}

@test "yaml output validates again and reads back unchanged" {
	gitops get deploy,svc,netpol,cj -A -o yaml --repo "$T/r" >"$T/all.yaml"
	run gitops validate "$T/all.yaml"
	[ "$status" -eq 0 ]
	gitops get deploy,svc,netpol,cj -A -o yaml -f "$T/all.yaml" >"$T/again.yaml"
	diff -u "$T/all.yaml" "$T/again.yaml"
}

@test "table, wide, name; namespaces and label selectors" {
	run gitops get svc --repo "$T/r"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)" ]
	[ "${lines[1]}" = "web    ClusterIP   <auto>       <none>        80/TCP" ]
	[ "${#lines[@]}" -eq 2 ]
	run gitops get svc -A --repo "$T/r"
	[[ "${lines[0]}" == "NAMESPACE   NAME   TYPE"* ]]
	[ "${#lines[@]}" -eq 3 ]
	run gitops get deployments -o wide --repo "$T/r"
	[[ "${lines[0]}" == "NAME   REPLICAS   STRATEGY        CONTAINERS   IMAGES"*"SELECTOR   SOURCE" ]]
	[[ "${lines[1]}" == *"web,side"*"app=web"*"apps.yaml:1" ]]
	run gitops get services,deploy -A -l app=db -o name --repo "$T/r"
	[ "$output" = "service/db" ]
	run gitops get svc/web -o name --repo "$T/r"
	[ "$output" = "service/web" ]
	run gitops get networkpolicies.networking.k8s.io -n data -o name --repo "$T/r"
	[ "$output" = "networkpolicy.networking.k8s.io/only-front" ]
}

@test "not found, no resources, unknown kinds and formats" {
	run gitops get deploy nope --repo "$T/r"
	[ "$status" -eq 1 ]
	[ "$output" = 'gitops: deployments.apps "nope" not found in namespace "default"' ]
	run gitops get pods --repo "$T/r"
	[ "$status" -eq 0 ]
	[ "$output" = "No resources found in default namespace." ]
	run gitops get frobs --repo "$T/r"
	[ "$status" -eq 2 ]
	[[ "$output" == *'the server doesn'"'"'t have a resource type "frobs"'* ]]
	run gitops get svc -o xml --repo "$T/r"
	[ "$status" -eq 2 ]
}

@test "help, version and completions come from one command table" {
	run gitops get --help
	[ "$status" -eq 0 ]
	[[ "$output" == "Usage: gitops get "* ]]
	[[ "$output" == *"-n, --namespace NS"* ]]
	run gitops help validate
	[[ "$output" == "Usage: gitops validate "* ]]
	run gitops version
	[ "$status" -eq 0 ]
	[[ "$output" == "gitops "* ]]
	run gitops frobnicate
	[ "$status" -eq 2 ]
	for sh in bash zsh fish; do
		gitops completion $sh >"$T/c.$sh"
		diff -u "$top/completions/gitops.$sh" "$T/c.$sh"
	done
	# every command and every option of the table is in each script
	for c in validate get completion help version; do
		grep -q "$c" "$T/c.bash"; grep -q "$c" "$T/c.zsh"; grep -q "$c" "$T/c.fish"
	done
	grep -q -- "--all-namespaces" "$T/c.bash"
	bash -n "$T/c.bash"
}

@test "bash completion works in bash" {
	run bash -c "source '$top/completions/gitops.bash'; COMP_WORDS=(gitops get dep); COMP_CWORD=2; _gitops; echo \"\${COMPREPLY[@]}\""
	[ "$output" = "deployments deploy" ]
	run bash -c "source '$top/completions/gitops.bash'; COMP_WORDS=(gitops v); COMP_CWORD=1; _gitops; echo \"\${COMPREPLY[@]}\""
	[ "$output" = "validate version" ]
	run bash -c "source '$top/completions/gitops.bash'; COMP_WORDS=(gitops get svc -o y); COMP_CWORD=4; _gitops; echo \"\${COMPREPLY[@]}\""
	[ "$output" = "yaml" ]
}
