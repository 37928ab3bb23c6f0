/* test_journal_crash.c: SIGKILL crash test of the node journal.
 *
 * Each trial forks writer processes that append to one shared journal (big and
 * small records; one of them sometimes compacts) and report every acknowledged
 * sequence number over a pipe; the parent kills them all with SIGKILL at a random
 * moment, then reopens the journal and checks that its history is prefix-
 * consistent: every record acknowledged in any trial so far is present and intact
 * (or covered by the snapshot), sequence numbers run without gaps, and the only
 * thing recovery may drop is a torn record at the very end.
 *
 * The journal lives on across trials, so later trials also start from state left
 * by killed processes (torn tails, half-published appends, dead compactions).
 * Killing processes does not lose the page cache, so this checks the protocol,
 * not the disk; fsync ordering is argued in store/journal_state.c.
 *
 * JOURNAL_CRASH_TRIALS overrides the number of trials (default 250).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

enum { WRITERS = 3, PER_TRIAL_MAX = 400, BIG = 256 << 10 };

struct ack { /* one pipe write each: atomic (< PIPE_BUF) */
	uint64_t seq;
	uint32_t trial, w, i, len, crc, pad;
};

struct seen { /* what a reader saw */
	uint64_t seq;
	uint32_t len, crc;
};

struct rec_seen {
	uint32_t len, crc;
	uint32_t trial, w, i;
};

struct state {
	char *dir, *path;
	struct ack *acks; /* every acknowledgement of every trial */
	size_t nacks, aacks;
	uint64_t max_acked;
	/* the journal as read back */
	uint64_t first, next;
	bool snapshot;
	struct rec_seen *recs;
	size_t arecs;
	/* statistics */
	unsigned torn;
	size_t nseen;
};

/* ---- the writer ---------------------------------------------------------------- */

static size_t make_body(char *buf, unsigned trial, unsigned w, unsigned i, unsigned *seed)
{
	size_t len = rand_r(seed) % 10 == 0 ? (64u << 10) + (size_t)rand_r(seed) % (BIG - (64u << 10))
					     : 50 + (size_t)rand_r(seed) % 250;
	int k = snprintf(buf, 64, "{\"t\":%u,\"w\":%u,\"i\":%u,\"pad\":\"", trial, w, i);
	memset(buf + k, 'a' + (char)(i % 26), len - (size_t)k - 2);
	memcpy(buf + len - 2, "\"}", 2);
	return len;
}

/* crash: a point writer 0 arms (then it compacts after every append when the
 * point is in compaction); 0 for none. */
static void writer(const char *path, int out, unsigned trial, unsigned w, int crash,
		   unsigned nth)
{
	struct journal *j = NULL;
	struct gerr *err = NULL;
	unsigned seed = trial * 16 + w;
	bool compacts = w == 0 && (crash == JOURNAL_CRASH_COMPACT_RENAMED ||
				   crash == JOURNAL_CRASH_COMPACT_WINDOW);
	char *body = malloc(BIG);
	if (w == 0 && crash)
		journal_debug_crash_at(crash, nth);
	if (!body || journal_open(path, JOURNAL_CREATE, &j, NULL, &err) < 0)
		_exit(3);
	for (unsigned i = 0; i < PER_TRIAL_MAX; i++) {
		struct ack a = { .trial = trial, .w = w, .i = i };
		size_t len = make_body(body, trial, w, i, &seed);
		if (journal_append(j, "crash.rec", body, len, &a.seq, &err) < 0)
			_exit(4);
		a.len = (uint32_t)len;
		a.crc = journal_crc32c(0, body, len);
		if (write(out, &a, sizeof(a)) != (ssize_t)sizeof(a))
			_exit(5);
		if (w == 0 && (i % 2 == 1 || compacts)) {
			char snap[64];
			uint64_t covers = journal_last_seq(j);
			int n = snprintf(snap, sizeof(snap), "{\"covers\":%llu}",
					 (unsigned long long)covers);
			if (journal_compact(j, covers, snap, (size_t)n, compacts ? 0 : 1 << 20, NULL,
					    &err) < 0)
				_exit(6);
		}
	}
	_exit(0);
}

/* ---- the reader: follows the journal, logs what it saw ---------------------------- */

struct follow {
	int out;
	uint64_t last;
};

static int follow_one(const struct journal_rec *r, void *arg, struct gerr **err)
{
	struct follow *f = arg;
	if (r->snapshot) { /* only when what we wanted next was compacted away */
		if (r->seq <= f->last)
			_exit(8);
		f->last = r->seq;
		return 0;
	}
	if (r->seq != f->last + 1)
		_exit(7);
	struct seen e = { .seq = r->seq, .len = (uint32_t)r->body_len,
			  .crc = journal_crc32c(0, r->body, r->body_len) };
	if (write(f->out, &e, sizeof(e)) != (ssize_t)sizeof(e))
		_exit(6);
	f->last = r->seq;
	return 0;
}

static void reader(const char *path, const char *log)
{
	struct journal *j = NULL;
	struct gerr *err = NULL;
	struct follow f = { .out = open(log, O_WRONLY | O_APPEND) };
	if (f.out < 0 || journal_open(path, JOURNAL_CREATE, &j, NULL, &err) < 0)
		_exit(3);
	for (;;) {
		if (journal_since(j, f.last, follow_one, &f, &err) < 0)
			_exit(9);
		usleep(100);
	}
}

/* ---- the check ------------------------------------------------------------------ */

static int collect(const struct journal_rec *r, void *arg, struct gerr **err)
{
	struct state *s = arg;
	if (s->next == 0) { /* first record */
		s->first = r->seq;
		s->snapshot = r->snapshot;
		s->next = r->seq + 1;
		if (r->snapshot)
			return 0;
	} else {
		assert_false(r->snapshot);
		assert_int_equal(r->seq, s->next);
		s->next++;
	}
	size_t k = (size_t)(r->seq - s->first);
	if (k >= s->arecs)
		GROW(s->recs, s->arecs, k + 1);
	struct rec_seen *rs = &s->recs[k];
	assert_int_equal(sscanf(r->body, "{\"t\":%u,\"w\":%u,\"i\":%u,", &rs->trial, &rs->w, &rs->i),
			 3);
	assert_string_equal(r->type, "crash.rec");
	rs->len = (uint32_t)r->body_len;
	rs->crc = journal_crc32c(0, r->body, r->body_len);
	return 0;
}

/* Everything the reader saw (durable by then) is still there, unchanged. */
static void check_seen(struct state *s, const char *log, uint64_t last)
{
	struct sbuf sb = SBUF_INIT;
	struct gerr *err = NULL;
	assert_int_equal(sb_read_file(&sb, log, 64 << 20, &err), 0);
	for (size_t off = 0; off + sizeof(struct seen) <= sb.len; off += sizeof(struct seen)) {
		struct seen e;
		memcpy(&e, sb.buf + off, sizeof(e));
		s->nseen++;
		if (s->snapshot && e.seq <= s->first)
			continue;
		assert_true(e.seq >= s->first && e.seq <= last);
		const struct rec_seen *rs = &s->recs[e.seq - s->first];
		if (rs->len != e.len || rs->crc != e.crc)
			fail_msg("record %llu changed after a reader saw it", (unsigned long long)e.seq);
	}
	sb_release(&sb);
}

static void check(struct state *s, const char *log)
{
	struct journal *j = NULL;
	struct journal_recovery rec;
	struct gerr *err = NULL;
	if (journal_open(s->path, JOURNAL_CREATE, &j, &rec, &err) < 0)
		fail_msg("reopen: %s", err->msg);
	if (rec.reason) { /* only a torn last record may be dropped */
		assert_string_equal(rec.reason, "torn record");
		assert_int_equal(rec.dropped_records, 1);
		s->torn++;
	}
	assert_true(rec.last_seq >= s->max_acked);
	assert_int_equal(journal_last_seq(j), rec.last_seq);

	s->next = 0;
	if (journal_since(j, 0, collect, s, &err) < 0)
		fail_msg("read back: %s", err->msg);
	journal_close(j);
	uint64_t last = s->next ? s->next - 1 : 0;
	assert_int_equal(last, rec.last_seq);
	if (s->next && !s->snapshot)
		assert_int_equal(s->first, 1);
	for (size_t i = 0; i < s->nacks; i++) {
		const struct ack *a = &s->acks[i];
		if (s->snapshot && a->seq <= s->first)
			continue; /* compacted into the snapshot */
		assert_true(a->seq >= s->first && a->seq <= last);
		const struct rec_seen *rs = &s->recs[a->seq - s->first];
		if (rs->trial != a->trial || rs->w != a->w || rs->i != a->i || rs->len != a->len ||
		    rs->crc != a->crc)
			fail_msg("record %llu is not what trial %u writer %u acknowledged as #%u",
				 (unsigned long long)a->seq, a->trial, a->w, a->i);
	}
	if (log)
		check_seen(s, log, last);
}

static void add_ack(struct state *s, const struct ack *a)
{
	if (s->nacks == s->aacks)
		GROW(s->acks, s->aacks, s->nacks + 1);
	s->acks[s->nacks++] = *a;
	if (a->seq > s->max_acked)
		s->max_acked = a->seq;
}

static void wait_killed(pid_t pid)
{
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("process %d did not die at its crash point (status %d)", (int)pid, st);
}

/* Writers append until killed: all of them by the parent at a random moment, or
 * (crash != 0) writer 0 by itself at a crash point, the others some time later.
 * A reader follows the journal meanwhile, and is killed with them. */
static void trial(struct state *s, unsigned t, unsigned *seed, int crash, unsigned nth)
{
	int p[2];
	pid_t pid[WRITERS + 1];
	char *log = xasprintf("%s.reader", s->path);
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); /* the reader may die first */
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	for (unsigned w = 0; w <= WRITERS; w++) {
		pid[w] = fork();
		assert_true(pid[w] >= 0);
		if (pid[w] == 0) {
			close(p[0]);
			if (w == WRITERS)
				reader(s->path, log);
			writer(s->path, p[1], t, w, crash, nth);
		}
	}
	close(p[1]);
	if (crash)
		wait_killed(pid[0]);
	usleep((useconds_t)(rand_r(seed) % (crash ? 3000 : 12000)));
	for (unsigned w = crash ? 1 : 0; w <= WRITERS; w++) {
		kill(pid[w], SIGKILL);
		if (rand_r(seed) % 2)
			usleep((useconds_t)(rand_r(seed) % 400));
	}
	for (unsigned w = crash ? 1 : 0; w <= WRITERS; w++) {
		int st;
		assert_int_equal(waitpid(pid[w], &st, 0), pid[w]);
		if (WIFEXITED(st) && (w == WRITERS || WEXITSTATUS(st) != 0)) /* a writer may finish */
			fail_msg("%s %u exited %d", w == WRITERS ? "reader" : "writer", w,
				 WEXITSTATUS(st));
	}
	struct ack a;
	ssize_t n;
	uint64_t prev[WRITERS] = { 0 };
	while ((n = read(p[0], &a, sizeof(a))) == (ssize_t)sizeof(a)) {
		assert_true(a.trial == t && a.w < WRITERS);
		assert_true(a.seq > prev[a.w]); /* a writer's acks come in order */
		prev[a.w] = a.seq;
		add_ack(s, &a);
	}
	assert_int_equal(n, 0);
	close(p[0]);
	check(s, log);
	free(log);
}

/* A writer died after writing a whole record; another died repairing that tail
 * half-way (last_seq published, end not); a third process's append must adopt the
 * record and continue after it. */
static void repair_trial(struct state *s, unsigned t)
{
	struct journal *h = NULL, *hz = NULL;
	struct gerr *err = NULL;
	struct journal_info before, after;
	char *body = xmalloc(BIG);
	unsigned seed = t;
	assert_int_equal(journal_open(s->path, JOURNAL_CREATE, &h, NULL, &err), 0);
	assert_int_equal(journal_open(s->path, JOURNAL_CREATE, &hz, NULL, &err), 0);
	assert_int_equal(journal_info(h, &before, &err), 0);
	pid_t x = fork();
	assert_true(x >= 0);
	if (x == 0) {
		struct journal *jx = NULL;
		journal_debug_crash_at(JOURNAL_CRASH_AFTER_WRITE, 1);
		size_t len = make_body(body, t, WRITERS, 0, &seed);
		if (journal_open(s->path, 0, &jx, NULL, &err) == 0)
			journal_append(jx, "crash.rec", body, len, NULL, &err);
		_exit(0);
	}
	wait_killed(x);
	pid_t z = fork();
	assert_true(z >= 0);
	if (z == 0) { /* uses the handle opened before the fork; the parent drops it */
		journal_debug_crash_at(JOURNAL_CRASH_REPAIR, 1);
		size_t len = make_body(body, t, WRITERS + 1, 0, &seed);
		journal_append(hz, "crash.rec", body, len, NULL, &err);
		_exit(0);
	}
	journal_close(hz); /* else the dead child's lock would outlive it */
	wait_killed(z);
	struct ack a = { .trial = t, .w = WRITERS + 2 };
	size_t len = make_body(body, t, a.w, 0, &seed);
	if (journal_append(h, "crash.rec", body, len, &a.seq, &err) < 0)
		fail_msg("append after the dead repair: %s", err->msg);
	assert_int_equal(a.seq, before.last_seq + 2); /* after x's orphan */
	a.len = (uint32_t)len;
	a.crc = journal_crc32c(0, body, len);
	add_ack(s, &a);
	assert_int_equal(journal_info(h, &after, &err), 0);
	assert_true(after.repairs > before.repairs); /* z died before counting its own */
	journal_close(h);
	free(body);
	check(s, NULL);
}

static void setup_state(struct state *s)
{
	const char *tmp = getenv("TMPDIR");
	*s = (struct state){ 0 };
	s->dir = xasprintf("%s/test_journal_crash.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(s->dir));
	s->path = xasprintf("%s/journal", s->dir);
}

static void report_and_free(struct state *s, const char *what, const struct timespec *t0)
{
	struct journal *j = NULL;
	struct journal_info info;
	struct gerr *err = NULL;
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(journal_open(s->path, 0, &j, NULL, &err), 0);
	assert_int_equal(journal_info(j, &info, &err), 0);
	journal_close(j);
	print_message("# %s: %zu acknowledged records, %zu seen by readers, last seq %llu, %u torn "
		      "tails recovered at open, %llu tails repaired by writers, %llu syncs, "
		      "snapshot %s, %.1f s\n",
		      what, s->nacks, s->nseen, (unsigned long long)info.last_seq, s->torn,
		      (unsigned long long)info.repairs, (unsigned long long)info.syncs,
		      info.has_snapshot ? "present" : "absent",
		      (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9);
	assert_true(s->nacks > 0);
	const char *names[] = { "", ".state", ".compact", ".reader" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char *p = xasprintf("%s%s", s->path, names[i]);
		unlink(p);
		free(p);
	}
	rmdir(s->dir);
	free(s->dir);
	free(s->path);
	free(s->acks);
	free(s->recs);
}

static void test_sigkill_writers(void **state)
{
	struct state s;
	struct timespec t0;
	const char *env = getenv("JOURNAL_CRASH_TRIALS");
	int64_t trials = 250;
	if (env)
		assert_int_equal(parse_i64(env, 1, 1000000, &trials), 0);
	unsigned seed = (unsigned)time(NULL);
	print_message("# seed %u, %lld trials\n", seed, (long long)trials);
	setup_state(&s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned t = 0; t < (unsigned)trials; t++)
		trial(&s, t, &seed, 0, 0);
	report_and_free(&s, "random kills", &t0);
}

static void test_crash_points(void **state)
{
	static const int points[] = {
		JOURNAL_CRASH_MID_WRITE, JOURNAL_CRASH_AFTER_WRITE, JOURNAL_CRASH_MID_PUBLISH,
		JOURNAL_CRASH_SYNCED, JOURNAL_CRASH_RECONCILE, JOURNAL_CRASH_COMPACT_RENAMED,
		JOURNAL_CRASH_COMPACT_WINDOW,
	};
	struct state s;
	struct timespec t0;
	unsigned seed = (unsigned)time(NULL) ^ 0x5a5a;
	setup_state(&s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned t = 0;
	for (int round = 0; round < 8; round++) {
		for (size_t p = 0; p < ARRAY_SIZE(points); p++) {
			unsigned nth = points[p] == JOURNAL_CRASH_RECONCILE ? 1 : 1 + rand_r(&seed) % 5;
			trial(&s, t++, &seed, points[p], nth);
		}
		repair_trial(&s, t++);
	}
	report_and_free(&s, "crash points", &t0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill_writers),
		cmocka_unit_test(test_crash_points),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
