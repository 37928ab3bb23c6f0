#!/usr/bin/python3
"""Time `gitops validate` on a generated repository against PyYAML's C loader and
a bare libyaml event loop over the same files, in the same run; print the ratios
and gitops' peak memory. Usage: validate_bench.py REPO_DIR GITOPS EVENTS_BIN"""
import glob
import os
import resource
import subprocess
import sys
import time

repo, gitops, events = sys.argv[1:4]
files = sorted(glob.glob(os.path.join(repo, "**", "*.yaml"), recursive=True))
size = sum(os.path.getsize(f) for f in files)
pyyaml = ["/usr/bin/python3", "-c",
          "import sys,yaml\nfor f in sys.argv[1:]:\n  list(yaml.load_all(open(f), Loader=yaml.CLoader))"] + files

def best_of(argv, runs=5, ok=(0,)):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t)
        if r.returncode not in ok:
            sys.exit(f"{argv[0]} failed ({r.returncode}): {r.stderr.decode()[:500]}")
    return min(times)

g_argv = [gitops, "validate", "-q", "--repo", repo, "--state-dir", "/tmp/gitops-bench-state"]
# a warning-free repository: ConfigMaps are all defined, so exit 0 is required
t_gitops = best_of(g_argv)
t_events = best_of([events] + files)
t_pyyaml = best_of(pyyaml, runs=3)
before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
subprocess.run(g_argv, stdout=subprocess.DEVNULL)
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"validate: {len(files)} files, {size / 1e6:.1f} MB")
print(f"  gitops validate (git read + decode + validate + defaults): {t_gitops:.3f} s, peak {peak_mb:.0f} MB")
print(f"  PyYAML C loader, parse only:                               {t_pyyaml:.3f} s")
print(f"  bare libyaml events:                                       {t_events:.3f} s")
print(f"  ratio PyYAML/gitops: {t_pyyaml / t_gitops:.1f}x faster (target >= 5x)")
print(f"  ratio gitops/events: {t_gitops / t_events:.2f}x the floor (target <= 3x)")
print(f"  peak memory: {peak_mb:.0f} MB (target < 200 MB)")
ok = t_pyyaml / t_gitops >= 5 and t_gitops / t_events <= 3 and peak_mb < 200
sys.exit(0 if ok else 1)
