#!/bin/sh
# make demo: the README's tour. At this stage (the foundation) it validates
# examples/hello and prints it with Kubernetes' defaults; `make demo-down` removes
# whatever the demo brought up.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "${1:-}" = down ]; then
	[ -d build/demo ] && tests/testbed/down --dir build/demo || true
	exit 0
fi
echo "== gitops validate examples/hello"
./gitops validate examples/hello
echo
echo "== gitops get ns,deploy,svc,netpol -A -f examples/hello -o wide"
./gitops get ns,deploy,svc,netpol -A -f examples/hello -o wide
echo
echo "== gitops get deployment hello -n hello -o yaml -f examples/hello   (defaults filled in)"
./gitops get deployment hello -n hello -o yaml -f examples/hello
