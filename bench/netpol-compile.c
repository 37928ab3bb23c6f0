/* netpol-compile: what `gitops node apply` does for the network, alone — read the
 * compiler input (JSON), run netpol_compile (or netpol_compile_delta against the
 * previous input), write the nft script. For bench/bench-netpol.sh, which times it
 * and measures its peak memory (/usr/bin/time -v).
 *
 *   netpol-compile NEW.json OUT.nft                   the whole table
 *   netpol-compile --delta OLD.json NEW.json OUT.nft  both inputs compiled
 *   netpol-compile --script OLD.nft NEW.json OUT.nft  what the node does: the new
 *       input compiled, its text compared with the one loaded last (netpol_script_delta)
 *
 * Prints one line on stdout: "parse S compile S parse_cpu S compile_cpu S bytes N"
 * (parse: reading the JSON, and OLD.nft; compile: netpol_compile, then
 * netpol_compile_delta or netpol_script_delta; wall clock, then CPU time of the
 * process). Exit 0, or 2 on error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netpol/netpol.h"

static double now(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *load(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j) {
		fprintf(stderr, "netpol-compile: %s:%d: %s\n", path, je.line, je.text);
		exit(2);
	}
	return j;
}

int main(int argc, char **argv)
{
	const char *old_path = NULL, *script_path = NULL, *new_path, *out_path;
	if (argc == 5 && !strcmp(argv[1], "--script")) {
		script_path = argv[2];
		new_path = argv[3];
		out_path = argv[4];
	} else if (argc == 5 && !strcmp(argv[1], "--delta")) {
		old_path = argv[2];
		new_path = argv[3];
		out_path = argv[4];
	} else if (argc == 3) {
		new_path = argv[1];
		out_path = argv[2];
	} else {
		fprintf(stderr, "usage: netpol-compile [--delta OLD.json | --script OLD.nft] NEW.json OUT.nft\n");
		return 2;
	}
	double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	json_t *old = old_path ? load(old_path) : NULL;
	json_t *in = load(new_path);
	struct sbuf old_script = SBUF_INIT, script = SBUF_INIT, out = SBUF_INIT;
	struct gerr *err = NULL;
	if (script_path && sb_read_file(&old_script, script_path, 1u << 30, &err) < 0) {
		fprintf(stderr, "netpol-compile: %s\n", err->msg);
		return 2;
	}
	double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
	int r;
	if (old)
		r = netpol_compile_delta(old, in, &out, &err);
	else if (script_path) {
		r = netpol_compile(in, &script, &err);
		if (r == 0)
			netpol_script_delta(old_script.buf, script.buf, &out, NULL);
	} else
		r = netpol_compile(in, &out, &err);
	double t2 = now(CLOCK_MONOTONIC), c2 = now(CLOCK_PROCESS_CPUTIME_ID);
	if (r < 0) {
		fprintf(stderr, "netpol-compile: %s\n", err->msg);
		return 2;
	}
	FILE *f = fopen(out_path, "w");
	if (!f || fwrite(out.buf, 1, out.len, f) != out.len || fclose(f) != 0) {
		fprintf(stderr, "netpol-compile: cannot write %s\n", out_path);
		return 2;
	}
	printf("parse %.4f compile %.4f parse_cpu %.4f compile_cpu %.4f bytes %zu\n", t1 - t0, t2 - t1,
	       c1 - c0, c2 - c1, out.len);
	sb_release(&out);
	sb_release(&script);
	sb_release(&old_script);
	json_decref(in);
	json_decref(old);
	return 0;
}
