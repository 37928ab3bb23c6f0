#!/bin/sh
# Issue 2 benchmark: gitops validate on a generated git repository of 10,000 objects.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
make -s build/bench/yaml_events gitops
n=${BENCH_OBJECTS:-10000}
dir=build/bench/repo-$n
if [ ! -d "$dir/.git" ]; then
	rm -rf "$dir"
	/usr/bin/python3 bench/gen_manifests.py "$dir" "$n"
	git -C "$dir" init -q
	git -C "$dir" add -A
	git -C "$dir" -c user.name=bench -c user.email=bench@example.org commit -q -m "$n objects"
fi
/usr/bin/python3 bench/validate_bench.py "$dir" ./gitops build/bench/yaml_events
