#!/bin/sh
# bench-journal: durable appends per second of the node journal (store/journal*.c)
# against a bare write+fdatasync loop and SQLite (WAL, synchronous=FULL), with one
# writer and with 16 writer processes. Targets: one writer within 1.2x of the bare
# loop, 16 writers at least 10x SQLite; the exit status is 1 when one is missed.
#
#   JOURNAL_BENCH_DIR   where to write (default /var/tmp); must be a real disk
#   JOURNAL_BENCH_ARGS  "ONE_WRITER_RECORDS PER_PROCESS_RECORDS" (default 2400 600)
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
make -s build/bench/journal_bench || exit 2
base=${JOURNAL_BENCH_DIR:-/var/tmp}
fs=$(stat -f -c %T "$base" 2>/dev/null) || { echo "bench-journal: no directory $base" >&2; exit 2; }
case $fs in
tmpfs|ramfs)
	echo "bench-journal: $base is $fs, where fdatasync costs nothing; set JOURNAL_BENCH_DIR" >&2
	exit 2 ;;
esac
dir=$(mktemp -d "$base/gitops-journal-bench.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT
trap 'exit 2' INT TERM
echo "writing in $dir ($fs)"
# shellcheck disable=SC2086 # JOURNAL_BENCH_ARGS is a list of numbers
./build/bench/journal_bench "$dir" ${JOURNAL_BENCH_ARGS:-}
rc=$?
[ $rc = 0 ] || exit 1
