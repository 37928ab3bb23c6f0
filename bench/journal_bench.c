/* journal_bench: durable appends per second of the node journal, against a bare
 * write+fdatasync loop and SQLite (WAL, synchronous=FULL, one transaction per
 * record), with one writer and with 16 writer processes.
 *
 *   journal_bench DIR [ONE_WRITER_RECORDS [PER_PROCESS_RECORDS]]
 *
 * DIR must be on a real disk (not tmpfs): fdatasync is what is measured. Exits 3
 * when a target is missed: one writer within 1.2x of the bare loop, 16 writers at
 * least 10x SQLite.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

enum { PROCS = 16, ROUNDS = 3 };

static const char *dir;
static char body[200];
static size_t body_len;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "journal_bench: %s: %s\n", what, why);
	exit(2);
}

static void make_body(void)
{
	int k = snprintf(body, sizeof(body),
			 "{\"pod\":\"web-7d4b9c8f6-x2k9p\",\"namespace\":\"prod\",\"phase\":"
			 "\"Running\",\"container\":\"app\",\"pid\":48213,\"restarts\":0,\"pad\":\"");
	memset(body + k, 'x', sizeof(body) - (size_t)k - 2);
	memcpy(body + sizeof(body) - 2, "\"}", 2);
	body_len = sizeof(body);
}

static char *path_of(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* ---- the three contenders, each appending n records to its own store --------- */

static struct journal *jopen(const char *name)
{
	struct journal *j = NULL;
	struct gerr *err = NULL;
	char *p = path_of(name);
	if (journal_open(p, JOURNAL_CREATE, &j, NULL, &err) < 0)
		die("journal_open", err->msg);
	free(p);
	return j;
}

static void run_journal(struct journal *j, int n)
{
	struct gerr *err = NULL;
	for (int i = 0; i < n; i++)
		if (journal_append(j, "pod.updated", body, body_len, NULL, &err) < 0)
			die("journal_append", err->msg);
}

static int bare_open(void)
{
	char *p = path_of("bare");
	int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		die(p, strerror(errno));
	free(p);
	return fd;
}

static void run_bare(int fd, int n)
{
	/* the same bytes the journal writes: 32-byte header, type, body */
	size_t len = 32 + strlen("pod.updated") + body_len;
	char *rec = xcalloc(1, len);
	memcpy(rec + len - body_len, body, body_len);
	for (int i = 0; i < n; i++)
		if (write(fd, rec, len) != (ssize_t)len || fdatasync(fd) < 0)
			die("bare write", strerror(errno));
	free(rec);
}

struct sq {
	sqlite3 *db;
	sqlite3_stmt *ins;
};

static void sq_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(sql, msg ? msg : "failed");
}

static struct sq sq_open(void)
{
	struct sq s;
	char *p = path_of("sqlite.db");
	if (sqlite3_open(p, &s.db) != SQLITE_OK)
		die(p, sqlite3_errmsg(s.db));
	free(p);
	sqlite3_busy_timeout(s.db, 60000);
	sq_exec(s.db, "PRAGMA journal_mode=WAL");
	sq_exec(s.db, "PRAGMA synchronous=FULL");
	sq_exec(s.db, "CREATE TABLE IF NOT EXISTS ev (seq INTEGER PRIMARY KEY, t INTEGER, "
		      "type TEXT, body TEXT)");
	if (sqlite3_prepare_v2(s.db, "INSERT INTO ev (t, type, body) VALUES (?, 'pod.updated', ?)",
			       -1, &s.ins, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(s.db));
	return s;
}

static void run_sqlite(struct sq *s, int n)
{
	for (int i = 0; i < n; i++) { /* autocommit: one transaction per record */
		sqlite3_bind_int64(s->ins, 1, (sqlite3_int64)time(NULL));
		sqlite3_bind_text(s->ins, 2, body, (int)body_len, SQLITE_STATIC);
		int rc;
		while ((rc = sqlite3_step(s->ins)) == SQLITE_BUSY)
			sqlite3_reset(s->ins);
		if (rc != SQLITE_DONE)
			die("insert", sqlite3_errmsg(s->db));
		sqlite3_reset(s->ins);
	}
}

static void sq_close(struct sq *s)
{
	sqlite3_finalize(s->ins);
	sqlite3_close(s->db);
}

/* ---- 16 processes ---------------------------------------------------------------- */

enum contender { JOURNAL, SQLITE };

/* Fork PROCS children that open their store, say so, wait for the start, append
 * n records each. Returns the seconds from start to the last child's exit. */
static double run_procs(enum contender c, int n)
{
	int ready[2], go[2];
	pid_t pid[PROCS];
	if (pipe(ready) < 0 || pipe(go) < 0)
		die("pipe", strerror(errno));
	for (int p = 0; p < PROCS; p++) {
		pid[p] = fork();
		if (pid[p] < 0)
			die("fork", strerror(errno));
		if (pid[p] > 0)
			continue;
		close(ready[0]);
		close(go[1]);
		struct journal *j = c == JOURNAL ? jopen("journal16") : NULL;
		struct sq s = { 0 };
		if (c == SQLITE)
			s = sq_open();
		char b = 1, x;
		if (write(ready[1], &b, 1) != 1 || read(go[0], &x, 1) != 0)
			_exit(2);
		if (c == JOURNAL)
			run_journal(j, n);
		else
			run_sqlite(&s, n);
		journal_close(j);
		if (c == SQLITE)
			sq_close(&s);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	for (int p = 0; p < PROCS; p++) {
		char b;
		if (read(ready[0], &b, 1) != 1)
			die("child", "failed to start");
	}
	double t0 = now();
	close(go[1]);
	int bad = 0;
	for (int p = 0; p < PROCS; p++) {
		int st;
		if (waitpid(pid[p], &st, 0) != pid[p] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad++;
	}
	double t = now() - t0;
	close(ready[0]);
	if (bad)
		die("child", "failed");
	return t;
}

static int check(const char *what, double ratio, double target)
{
	bool ok = ratio >= target;
	printf("  %-34s %8.2f   (target >= %.2f) %s\n", what, ratio, target,
	       ok ? "ok" : "MISSED");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	int64_t n1 = 2400, n16 = 600, nsq16 = 100;
	if (argc < 2 || argc > 4 || (argc > 2 && parse_i64(argv[2], ROUNDS, 10000000, &n1) < 0) ||
	    (argc > 3 && parse_i64(argv[3], 1, 10000000, &n16) < 0)) {
		fprintf(stderr, "usage: journal_bench DIR [ONE_WRITER_RECORDS [PER_PROCESS_RECORDS]]\n");
		return 2;
	}
	dir = argv[1];
	make_body();
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* one writer: the three contenders in alternating rounds, against drift */
	struct journal *j = jopen("journal1");
	int bare = bare_open();
	struct sq s = sq_open();
	run_journal(j, 20); /* warm up: files exist, first syncs done */
	run_bare(bare, 20);
	run_sqlite(&s, 20);
	double tj = 0, tb = 0, ts = 0;
	int per = (int)n1 / ROUNDS;
	for (int r = 0; r < ROUNDS; r++) {
		double t = now();
		run_journal(j, per);
		tj += now() - t;
		t = now();
		run_bare(bare, per);
		tb += now() - t;
		t = now();
		run_sqlite(&s, per);
		ts += now() - t;
	}
	journal_close(j);
	close(bare);
	sq_close(&s);
	double rj = per * ROUNDS / tj, rb = per * ROUNDS / tb, rs = per * ROUNDS / ts;
	printf("one writer, %d durable appends of a %zu-byte body each:\n", per * ROUNDS, body_len);
	printf("  %-34s %8.0f /s\n", "journal", rj);
	printf("  %-34s %8.0f /s\n", "bare write+fdatasync", rb);
	printf("  %-34s %8.0f /s\n", "sqlite WAL synchronous=FULL", rs);
	int missed = check("journal / bare", rj / rb, 1 / 1.2);
	printf("  %-34s %8.2f\n", "journal / sqlite", rj / rs);

	/* 16 processes, each waiting for its own record to be durable */
	struct journal_info info;
	struct gerr *err = NULL;
	double t16 = run_procs(JOURNAL, (int)n16);
	j = jopen("journal16");
	if (journal_info(j, &info, &err) < 0)
		die("journal_info", err->msg);
	journal_close(j);
	double tsq = run_procs(SQLITE, (int)nsq16);
	double r16 = PROCS * n16 / t16, rsq = PROCS * nsq16 / tsq;
	printf("%d writer processes, each waiting for its record to be durable:\n", PROCS);
	printf("  %-34s %8.0f /s   (%d x %lld; %.1f records per fdatasync)\n", "journal", r16,
	       PROCS, (long long)n16, info.syncs ? (double)info.last_seq / (double)info.syncs : 0);
	printf("  %-34s %8.0f /s   (%d x %lld)\n", "sqlite WAL synchronous=FULL", rsq, PROCS,
	       (long long)nsq16);
	missed += check("journal / sqlite", r16 / rsq, 10);
	printf("  %-34s %8.2f\n", "journal 16 / journal 1", r16 / rj);
	return missed ? 3 : 0;
}
