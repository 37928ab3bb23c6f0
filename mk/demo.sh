#!/bin/sh
# make demo: the README's tour on a local 2-node test bed (tests/testbed/up): sync
# examples/hello, fetch its answer through the Service's ClusterIP and its DNS name
# from a pod, show `gitops status`. `make demo-down` removes the test bed again.
#
# The test bed's registry stands in for Docker Hub: the cluster setting
# registryMirrors sends docker.io pulls (busybox:test) to it, so examples/hello stays
# exactly what you would commit for a real cluster.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dir=${DEMO_DIR:-$top/build/demo}   # DEMO_DIR: elsewhere (tests/cli/demo.bats)
if [ "${1:-}" = down ]; then
	if [ -f "$dir/state" ]; then tests/testbed/down --dir "$dir"; fi
	rm -rf "$dir"
	echo "demo removed"
	exit 0
fi

step() { printf '\n== %s\n' "$*"; }

if [ ! -f "$dir/state" ]; then
	step "tests/testbed/up 2 --dir $dir   (2 nodes: network namespaces with sshd)"
	rm -rf "$dir"
	log=$(mktemp)
	tests/testbed/up 2 --dir "$dir" >"$log" 2>&1 || { tail -20 "$log"; rm -f "$log"; exit 1; }
	mv "$log" "$dir/up.log"
fi
. "$dir/env"
repo=$dir/repo
rm -rf "$repo"
mkdir -p "$repo/cluster"
cp -r examples/hello "$repo/hello"
cp "$dir/nodes.yaml" "$repo/cluster/nodes.yaml"
cat >"$repo/cluster/gitops.yaml" <<EOF
# Cluster settings (docs/operations.md): the test bed's addresses and its registry.
apiVersion: v1
kind: ConfigMap
metadata: {name: gitops, namespace: gitops-system}
data:
  clusterCIDR: "$CLUSTER_CIDR"
  insecureRegistries: "$REGISTRY"
  registryMirrors: "docker.io=$REGISTRY"
EOF
git init -q "$repo"
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@localhost commit -q -m "hello: the demo"

# g SUBCOMMAND ARGS...: gitops against the demo (options before a `--`)
g() { sub=$1; shift; ./gitops "$sub" --repo "$repo" --state-dir "$dir/ctl" --ssh-config "$SSH_CONFIG" "$@"; }

step "gitops sync --wait   (examples/hello: a Deployment over both nodes, a Service, a NetworkPolicy)"
g sync --wait --timeout 120s
step "gitops get pods,svc,endpoints -n hello -o wide"
g get pods -n hello -o wide
g get svc -n hello -o wide
g get endpoints -n hello
pod=$(g get pods -n hello -o name | head -1 | sed 's,^pod/,,')
ip=$(g get svc hello -n hello -o json | sed -n 's/.*"clusterIP": *"\([^"]*\)".*/\1/p' | head -1)
step "from pod $pod: wget http://$ip/   (the Service's ClusterIP)"
g exec -n hello "$pod" -- timeout 3 wget -qO- "http://$ip/"
step "from pod $pod: wget http://hello.hello.svc.cluster.local/   (cluster DNS)"
g exec -n hello "$pod" -- timeout 3 wget -qO- http://hello.hello.svc.cluster.local/
step "gitops status"
g status
cat <<EOF

The test bed keeps running. Try, for example:
  ./gitops get pods -n hello -o wide --repo $repo --state-dir $dir/ctl --ssh-config $SSH_CONFIG
Tear it down with: make demo-down
EOF
