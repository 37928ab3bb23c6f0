/* test_journal.c: unit tests of the node journal (store/journal*.c): CRC32C, the
 * on-disk format, append and read back, bounds, recovery from corruption injected
 * by hand, compaction, several handles and several processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

/* ---- helpers ---------------------------------------------------------------- */

struct got {
	size_t n;
	uint64_t seq[4096];
	bool snap[4096];
	char *body[4096];
	char *type[4096];
	size_t len[4096];
	int64_t time_ns[4096];
	int stop_after; /* > 0: return 7 after this many */
};

static int collect(const struct journal_rec *r, void *arg, struct gerr **err)
{
	struct got *g = arg;
	assert_true(g->n < ARRAY_SIZE(g->seq));
	assert_int_equal(r->body[r->body_len], '\0');
	g->seq[g->n] = r->seq;
	g->snap[g->n] = r->snapshot;
	g->body[g->n] = xstrndup(r->body, r->body_len);
	g->type[g->n] = xstrdup(r->type);
	g->len[g->n] = r->body_len;
	g->time_ns[g->n] = r->time_ns;
	g->n++;
	return g->stop_after && (int)g->n >= g->stop_after ? 7 : 0;
}

static void got_clear(struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->body[i]);
		free(g->type[i]);
	}
	g->n = 0;
	g->stop_after = 0;
}

struct fixture {
	char *dir;
	char *path;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/test_journal.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl))
		return -1;
	f->dir = tmpl;
	f->path = xasprintf("%s/journal", tmpl);
	*state = f;
	return 0;
}

static struct got g_got; /* what since() read last; freed by teardown */

static int teardown(void **state)
{
	struct fixture *f = *state;
	got_clear(&g_got);
	const char *names[] = { "", ".state", ".compact", ".copy" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char *p = xasprintf("%s%s", f->path, names[i]);
		unlink(p);
		free(p);
	}
	rmdir(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static struct got *since(struct journal *j, uint64_t after)
{
	struct got *g = &g_got;
	struct gerr *err = NULL;
	got_clear(g);
	int r = journal_since(j, after, collect, g, &err);
	if (r < 0)
		fail_msg("journal_since: %s", err->msg);
	return g;
}

static struct journal *jopen(const char *path, struct journal_recovery *rec)
{
	struct journal *j = NULL;
	struct gerr *err = NULL;
	if (journal_open(path, JOURNAL_CREATE, &j, rec, &err) < 0)
		fail_msg("journal_open: %s", err->msg);
	return j;
}

static uint64_t append(struct journal *j, const char *type, const char *body)
{
	uint64_t seq = 0;
	struct gerr *err = NULL;
	if (journal_append(j, type, body, strlen(body), &seq, &err) < 0)
		fail_msg("journal_append: %s", err->msg);
	return seq;
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* n records "pod.updated" with bodies {"i":I,"pad":"xxx..."} (100 bytes); returns
 * in off[] the offset of each record (off[n] = end of file). */
static void fill(const char *path, int n, off_t *off)
{
	struct journal *j = jopen(path, NULL);
	for (int i = 1; i <= n; i++) {
		if (off)
			off[i - 1] = file_size(path);
		char body[101];
		int k = snprintf(body, sizeof(body), "{\"i\":%d,\"pad\":\"", i);
		memset(body + k, 'x', 100 - (size_t)k - 2);
		memcpy(body + 98, "\"}", 3);
		assert_int_equal(append(j, "pod.updated", body), (uint64_t)i);
	}
	if (off)
		off[n] = file_size(path);
	journal_close(j);
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Encode a record by hand, following the format documented in store.h. */
static size_t mkrec(unsigned char *buf, uint64_t seq, int64_t t, uint16_t flags,
		    const char *type, const char *body)
{
	size_t tl = strlen(type), bl = strlen(body), len = 24 + tl + bl;
	put_le(buf, len, 4);
	put_le(buf + 8, seq, 8);
	put_le(buf + 16, (uint64_t)t, 8);
	put_le(buf + 24, tl, 2);
	put_le(buf + 26, flags, 2);
	put_le(buf + 28, bl, 4);
	memcpy(buf + 32, type, tl);
	memcpy(buf + 32 + tl, body, bl);
	put_le(buf + 4, journal_crc32c(journal_crc32c(0, buf, 4), buf + 8, len), 4);
	return 8 + len;
}

static void append_raw(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static void flip(const char *path, off_t off)
{
	unsigned char c;
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* ---- CRC32C ----------------------------------------------------------------- */

static void test_crc32c_vectors(void **state)
{
	unsigned char buf[32];
	assert_int_equal(journal_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(journal_crc32c_sw(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(journal_crc32c(0, "", 0), 0);
	memset(buf, 0, sizeof(buf)); /* RFC 3720 B.4 */
	assert_int_equal(journal_crc32c(0, buf, 32), 0x8A9136AAu);
	assert_int_equal(journal_crc32c_sw(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(journal_crc32c(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	assert_int_equal(journal_crc32c(0, buf, 32), 0x46DD794Eu);
	assert_int_equal(journal_crc32c_sw(0, buf, 32), 0x46DD794Eu);
}

static void test_crc32c_hw_matches_sw(void **state)
{
	unsigned char buf[2100];
	srand(42);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)rand();
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n < 2048; n += 1 + n / 8) {
			uint32_t hw = journal_crc32c(0, buf + off, n);
			assert_int_equal(hw, journal_crc32c_sw(0, buf + off, n));
			/* chaining equals one pass */
			size_t k = n / 3;
			assert_int_equal(journal_crc32c(journal_crc32c(0, buf + off, k), buf + off + k,
							n - k),
					 hw);
		}
}

/* ---- append, read, reopen --------------------------------------------------- */

static void test_append_and_read(void **state)
{
	struct fixture *f = *state;
	struct journal *j = jopen(f->path, NULL);
	struct gerr *err = NULL;
	uint64_t seq;
	assert_int_equal(journal_last_seq(j), 0);
	assert_int_equal(since(j, 0)->n, 0);
	assert_int_equal(append(j, "pod.created", "{\"name\":\"web-1\"}"), 1);
	assert_int_equal(append(j, "pod.started", "{\"name\":\"web-1\",\"pid\":42}"), 2);
	/* a body is bytes, not a C string */
	assert_int_equal(journal_append(j, "blob", "a\0b", 3, &seq, &err), 0);
	assert_int_equal(seq, 3);
	assert_int_equal(journal_append(j, "empty", "", 0, NULL, &err), 0);
	assert_int_equal(journal_last_seq(j), 4);

	struct got *g = since(j, 0);
	assert_int_equal(g->n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(g->seq[i], i + 1);
		assert_false(g->snap[i]);
	}
	assert_string_equal(g->type[0], "pod.created");
	assert_string_equal(g->body[0], "{\"name\":\"web-1\"}");
	assert_string_equal(g->type[1], "pod.started");
	assert_int_equal(g->len[2], 3);
	assert_memory_equal(g->body[2], "a\0b", 3);
	assert_int_equal(g->len[3], 0);

	g = since(j, 2);
	assert_int_equal(g->n, 2);
	assert_int_equal(g->seq[0], 3);
	assert_int_equal(since(j, 4)->n, 0);
	assert_int_equal(since(j, 99)->n, 0);
	/* resuming where the last read stopped, then from further back */
	append(j, "pod.deleted", "{}");
	g = since(j, 4);
	assert_int_equal(g->n, 1);
	assert_int_equal(g->seq[0], 5);
	assert_int_equal(since(j, 1)->n, 4);
	journal_close(j);
}

static void test_time_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct journal_recovery rec;
	struct timespec t0, t1;
	clock_gettime(CLOCK_REALTIME, &t0);
	fill(f->path, 3, NULL);
	clock_gettime(CLOCK_REALTIME, &t1);
	struct journal *j = jopen(f->path, &rec);
	assert_int_equal(rec.records, 3);
	assert_int_equal(rec.last_seq, 3);
	assert_int_equal(rec.dropped_bytes, 0);
	assert_int_equal(rec.dropped_records, 0);
	assert_null(rec.reason);
	struct got *g = since(j, 0);
	assert_int_equal(g->n, 3);
	int64_t lo = (int64_t)t0.tv_sec * 1000000000 + t0.tv_nsec;
	int64_t hi = (int64_t)t1.tv_sec * 1000000000 + t1.tv_nsec;
	for (size_t i = 0; i < 3; i++)
		assert_true(g->time_ns[i] >= lo && g->time_ns[i] <= hi);
	assert_int_equal(append(j, "pod.updated", "{}"), 4);
	journal_close(j);
}

static int cb_fail(const struct journal_rec *r, void *arg, struct gerr **err)
{
	if (r->seq == 2 && arg)
		return gerr_set(err, GERR_FAIL, "bad pod in record %llu", (unsigned long long)r->seq);
	return r->seq == 2 ? -1 : 0;
}

static void test_callback_stop_and_error(void **state)
{
	struct fixture *f = *state;
	struct gerr *err = NULL;
	fill(f->path, 5, NULL);
	struct journal *j = jopen(f->path, NULL);
	got_clear(&g_got);
	g_got.stop_after = 2;
	assert_int_equal(journal_since(j, 0, collect, &g_got, &err), 7);
	assert_int_equal(g_got.n, 2);
	got_clear(&g_got);
	assert_int_equal(journal_since(j, 0, cb_fail, "set", &err), -1);
	assert_string_equal(err->msg, "bad pod in record 2");
	gerr_clear(&err);
	assert_int_equal(journal_since(j, 0, cb_fail, NULL, &err), -1);
	assert_non_null(strstr(err->msg, "record 2"));
	gerr_clear(&err);
	journal_close(j);
}

static void test_bounds(void **state)
{
	struct fixture *f = *state;
	struct journal *j = jopen(f->path, NULL);
	struct gerr *err = NULL;
	const char *bad[] = { "", "Pod.created", "1pod", "pod created", "pod/x", "journal.snapshot",
			      "journal.x",
			      "a23456789012345678901234567890123456789012345678901234567890abcde" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(journal_append(j, bad[i], "{}", 2, NULL, &err), -1);
		assert_int_equal(err->code, GERR_FAIL);
		assert_non_null(strstr(err->msg, "invalid journal record type"));
		gerr_clear(&err);
	}
	/* 64 bytes is the limit */
	assert_int_equal(append(j, "a234567890123456789012345678901234567890123456789012345678901234",
				"{}"), 1);
	char *big = xmalloc(JOURNAL_BODY_MAX + 1);
	memset(big, ' ', JOURNAL_BODY_MAX + 1);
	assert_int_equal(journal_append(j, "big", big, JOURNAL_BODY_MAX + 1, NULL, &err), -1);
	assert_int_equal(err->code, GERR_FAIL);
	assert_non_null(strstr(err->msg, "over the limit"));
	gerr_clear(&err);
	assert_int_equal(journal_append(j, "big", big, JOURNAL_BODY_MAX, NULL, &err), 0);
	assert_int_equal(append(j, "small", "{}"), 3);
	journal_close(j);
	free(big);

	struct journal_recovery rec;
	j = jopen(f->path, &rec);
	assert_int_equal(rec.records, 3);
	struct got *g = since(j, 1);
	assert_int_equal(g->n, 2);
	assert_int_equal(g->len[0], JOURNAL_BODY_MAX);
	assert_string_equal(g->body[1], "{}");
	journal_close(j);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct gerr *err = NULL;
	assert_int_equal(journal_open(f->path, 0, &j, NULL, &err), -1);
	assert_int_equal(err->code, GERR_IO);
	assert_int_equal(err->errnum, ENOENT);
	assert_null(j);
	gerr_clear(&err);
	assert_int_equal(access(f->path, F_OK), -1);

	/* not a journal: an error, and the file is left alone */
	append_raw(f->path, "hello, world\n", 13);
	assert_int_equal(journal_open(f->path, JOURNAL_CREATE, &j, NULL, &err), -1);
	assert_non_null(strstr(err->msg, "not a journal"));
	gerr_clear(&err);
	assert_int_equal(file_size(f->path), 13);
	unlink(f->path);
	append_raw(f->path, "GOJ", 3);
	assert_int_equal(journal_open(f->path, 0, &j, NULL, &err), -1);
	assert_non_null(strstr(err->msg, "not a journal"));
	gerr_clear(&err);
}

/* The documented format, written by hand, reads back. */
static void test_format_by_hand(void **state)
{
	struct fixture *f = *state;
	unsigned char buf[512];
	append_raw(f->path, "GOJRNL\0\1", 8);
	size_t n = mkrec(buf, 1, 1700000000123456789, 0, "pod.created", "{\"a\":1}");
	assert_int_equal(n, 8 + 24 + 11 + 7);
	append_raw(f->path, buf, n);
	n = mkrec(buf, 2, 1700000000223456789, 0, "pod.deleted", "{}");
	append_raw(f->path, buf, n);
	struct journal_recovery rec;
	struct journal *j = jopen(f->path, &rec);
	assert_int_equal(rec.records, 2);
	assert_null(rec.reason);
	struct got *g = since(j, 0);
	assert_int_equal(g->n, 2);
	assert_string_equal(g->type[0], "pod.created");
	assert_string_equal(g->body[0], "{\"a\":1}");
	assert_int_equal(g->time_ns[0], 1700000000123456789);
	assert_int_equal(append(j, "x", "{}"), 3);
	journal_close(j);
}

/* ---- recovery from corruption injected by hand ------------------------------- */

static void check_recovered(const char *path, const struct journal_recovery *rec, uint64_t kept,
			    off_t end)
{
	assert_int_equal(rec->records, kept);
	assert_int_equal(rec->last_seq, kept);
	assert_int_equal(file_size(path), end);
	struct journal *j = jopen(path, NULL);
	struct got *g = since(j, 0);
	assert_int_equal(g->n, kept);
	for (size_t i = 0; i < kept; i++) {
		char want[32];
		snprintf(want, sizeof(want), "{\"i\":%zu,", i + 1);
		assert_int_equal(g->seq[i], i + 1);
		assert_true(str_has_prefix(g->body[i], want));
	}
	assert_int_equal(append(j, "after", "{}"), kept + 1);
	journal_close(j);
	struct journal_recovery again;
	journal_close(jopen(path, &again));
	assert_null(again.reason);
	assert_int_equal(again.records, kept + 1);
}

static void test_corrupt_flip_middle(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	struct journal_recovery rec;
	fill(f->path, 10, off);
	flip(f->path, off[4] + 60); /* inside record 5's body */
	journal_close(jopen(f->path, &rec));
	assert_string_equal(rec.reason, "CRC mismatch");
	assert_int_equal(rec.bad_offset, off[4]);
	assert_int_equal(rec.dropped_bytes, off[10] - off[4]);
	assert_int_equal(rec.dropped_records, 6); /* the bad one and 5 whole ones after it */
	check_recovered(f->path, &rec, 4, off[4]);
}

static void test_corrupt_flip_length(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	struct journal_recovery rec;
	fill(f->path, 10, off);
	flip(f->path, off[7] + 3); /* high byte of record 8's length: absurd */
	journal_close(jopen(f->path, &rec));
	assert_string_equal(rec.reason, "bad record length");
	assert_int_equal(rec.dropped_bytes, off[10] - off[7]);
	assert_int_equal(rec.dropped_records, 1);
	check_recovered(f->path, &rec, 7, off[7]);
}

static void test_corrupt_flip_seq(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	struct journal_recovery rec;
	fill(f->path, 10, off);
	flip(f->path, off[2] + 8); /* record 3's seq: covered by the CRC */
	journal_close(jopen(f->path, &rec));
	assert_string_equal(rec.reason, "CRC mismatch");
	check_recovered(f->path, &rec, 2, off[2]);
}

static void test_truncated_mid_record(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	struct journal_recovery rec;
	fill(f->path, 10, off);
	assert_int_equal(truncate(f->path, off[10] - 10), 0);
	journal_close(jopen(f->path, &rec));
	assert_string_equal(rec.reason, "torn record");
	assert_int_equal(rec.dropped_records, 1);
	assert_int_equal(rec.dropped_bytes, off[10] - 10 - off[9]);
	check_recovered(f->path, &rec, 9, off[9]);
}

static void test_truncated_mid_header(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	struct journal_recovery rec;
	fill(f->path, 10, off);
	assert_int_equal(truncate(f->path, off[9] + 5), 0);
	journal_close(jopen(f->path, &rec));
	assert_string_equal(rec.reason, "torn record");
	assert_int_equal(rec.dropped_bytes, 5);
	check_recovered(f->path, &rec, 9, off[9]);
}

static void test_garbage_appended(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	struct journal_recovery rec;
	unsigned char junk[100];
	fill(f->path, 10, off);
	srand(7);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rand();
	append_raw(f->path, junk, sizeof(junk));
	journal_close(jopen(f->path, &rec));
	assert_non_null(rec.reason);
	assert_int_equal(rec.dropped_bytes, 100);
	assert_int_equal(rec.bad_offset, off[10]);
	check_recovered(f->path, &rec, 10, off[10]);
}

static void test_zeros_appended(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	struct journal_recovery rec;
	char zeros[4096] = { 0 };
	fill(f->path, 10, off);
	append_raw(f->path, zeros, sizeof(zeros)); /* what ext4 can show after a crash */
	journal_close(jopen(f->path, &rec));
	assert_string_equal(rec.reason, "bad record length");
	assert_int_equal(rec.dropped_bytes, 4096);
	check_recovered(f->path, &rec, 10, off[10]);
}

static void test_sequence_gap(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	struct journal_recovery rec;
	unsigned char buf[256];
	fill(f->path, 10, off);
	append_raw(f->path, buf, mkrec(buf, 12, 0, 0, "pod.updated", "{}"));
	journal_close(jopen(f->path, &rec));
	assert_string_equal(rec.reason, "sequence gap");
	check_recovered(f->path, &rec, 10, off[10]);
	/* a snapshot anywhere but first is corrupt too */
	off_t end = file_size(f->path);
	append_raw(f->path, buf, mkrec(buf, 12, 0, JOURNAL_F_SNAPSHOT, "journal.snapshot", "{}"));
	journal_close(jopen(f->path, &rec));
	assert_string_equal(rec.reason, "snapshot after the first record");
	assert_int_equal(file_size(f->path), end);
}

/* A writer that died inside write() left a torn tail, or a whole record it never
 * published: the next append, through a handle opened before, repairs it. */
static void test_dead_writer_tail(void **state)
{
	struct fixture *f = *state;
	unsigned char buf[256];
	struct journal *j = jopen(f->path, NULL);
	append(j, "a", "{}");
	append(j, "b", "{}");
	size_t n = mkrec(buf, 3, 0, 0, "torn", "{\"x\":1}");
	append_raw(f->path, buf, n - 4);
	assert_int_equal(append(j, "c", "{}"), 3);
	n = mkrec(buf, 4, 0, 0, "orphan", "{}");
	append_raw(f->path, buf, n);
	assert_int_equal(append(j, "d", "{}"), 5);
	struct got *g = since(j, 0);
	assert_int_equal(g->n, 5);
	assert_string_equal(g->type[2], "c");
	assert_string_equal(g->type[3], "orphan");
	assert_string_equal(g->type[4], "d");
	journal_close(j);
	struct journal_recovery rec;
	journal_close(jopen(f->path, &rec));
	assert_null(rec.reason);
	assert_int_equal(rec.records, 5);
}

/* Another process's recovery dropped records this handle had seen. */
static void test_truncated_by_other_open(void **state)
{
	struct fixture *f = *state;
	off_t off[11];
	fill(f->path, 10, off);
	struct journal *a = jopen(f->path, NULL);
	assert_int_equal(since(a, 0)->n, 10);
	flip(f->path, off[6] + 50);
	struct journal_recovery rec;
	struct journal *b = jopen(f->path, &rec);
	assert_int_equal(rec.records, 6);
	assert_int_equal(journal_last_seq(a), 6);
	assert_int_equal(since(a, 0)->n, 6);
	assert_int_equal(append(a, "after", "{}"), 7);
	assert_int_equal(since(b, 6)->n, 1);
	journal_close(a);
	journal_close(b);
}

/* PATH replaced without the shared state knowing (a compaction that died after
 * its rename): appends must go to the new file. */
static void test_file_replaced(void **state)
{
	struct fixture *f = *state;
	struct journal *j = jopen(f->path, NULL);
	struct sbuf sb = SBUF_INIT;
	struct gerr *err = NULL;
	for (int i = 0; i < 5; i++)
		append(j, "a", "{}");
	assert_int_equal(sb_read_file(&sb, f->path, 1 << 20, &err), 0);
	char *copy = xasprintf("%s.copy", f->path);
	append_raw(copy, sb.buf, sb.len);
	assert_int_equal(rename(copy, f->path), 0);
	assert_int_equal(append(j, "b", "{}"), 6);
	journal_close(j);
	struct journal_recovery rec;
	j = jopen(f->path, &rec);
	assert_int_equal(rec.records, 6);
	assert_string_equal(since(j, 5)->type[0], "b");
	journal_close(j);
	sb_release(&sb);
	free(copy);
}

/* ---- compaction ------------------------------------------------------------- */

static void test_compaction(void **state)
{
	struct fixture *f = *state;
	struct gerr *err = NULL;
	bool done = true;
	fill(f->path, 100, NULL);
	struct journal *j = jopen(f->path, NULL);
	off_t before = file_size(f->path);
	const char *snap = "{\"pods\":60}";

	assert_int_equal(journal_compact(j, 60, snap, strlen(snap), (uint64_t)before + 1, &done,
					 &err), 0);
	assert_false(done);
	assert_int_equal(file_size(f->path), before);
	assert_int_equal(journal_compact(j, 60, snap, strlen(snap), 0, &done, &err), 0);
	assert_true(done);
	assert_true(file_size(f->path) < before);
	assert_int_equal(access(f->path, F_OK), 0);

	struct journal_info info;
	assert_int_equal(journal_info(j, &info, &err), 0);
	assert_true(info.has_snapshot);
	assert_int_equal(info.first_seq, 60);
	assert_int_equal(info.last_seq, 100);
	assert_int_equal(info.size, file_size(f->path));

	struct got *g = since(j, 0);
	assert_int_equal(g->n, 41);
	assert_true(g->snap[0]);
	assert_int_equal(g->seq[0], 60);
	assert_string_equal(g->type[0], JOURNAL_SNAPSHOT_TYPE);
	assert_string_equal(g->body[0], snap);
	for (size_t i = 1; i < 41; i++) {
		assert_false(g->snap[i]);
		assert_int_equal(g->seq[i], 60 + i);
	}
	g = since(j, 59);
	assert_int_equal(g->n, 41);
	assert_true(g->snap[0]);
	g = since(j, 60);
	assert_int_equal(g->n, 40);
	assert_false(g->snap[0]);
	assert_int_equal(g->seq[0], 61);
	assert_int_equal(since(j, 80)->n, 20);

	assert_int_equal(append(j, "after", "{}"), 101);
	/* bad ranges */
	assert_int_equal(journal_compact(j, 50, "{}", 2, 0, &done, &err), -1);
	assert_int_equal(err->code, GERR_FAIL);
	assert_false(done);
	gerr_clear(&err);
	assert_int_equal(journal_compact(j, 102, "{}", 2, 0, &done, &err), -1);
	gerr_clear(&err);
	assert_int_equal(journal_compact(j, 0, "{}", 2, 0, &done, &err), -1);
	gerr_clear(&err);
	assert_int_equal(journal_compact(j, 60, "{}", JOURNAL_SNAPSHOT_MAX + 1, 0, &done, &err), -1);
	assert_non_null(strstr(err->msg, "over the limit"));
	gerr_clear(&err);
	/* the same point again replaces the snapshot; then everything */
	assert_int_equal(journal_compact(j, 60, "{\"v\":2}", 7, 0, &done, &err), 0);
	assert_string_equal(since(j, 0)->body[0], "{\"v\":2}");
	assert_int_equal(journal_compact(j, 101, "{\"all\":1}", 9, 0, &done, &err), 0);
	g = since(j, 0);
	assert_int_equal(g->n, 1);
	assert_int_equal(g->seq[0], 101);
	assert_int_equal(since(j, 101)->n, 0);
	assert_int_equal(append(j, "later", "{}"), 102);
	journal_close(j);

	struct journal_recovery rec;
	j = jopen(f->path, &rec);
	assert_null(rec.reason);
	assert_int_equal(rec.records, 2);
	assert_int_equal(rec.last_seq, 102);
	assert_int_equal(access(f->path, F_OK), 0);
	journal_close(j);
	char *tmp = xasprintf("%s.compact", f->path);
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);
}

/* ---- several handles, several processes ------------------------------------- */

static void test_two_handles(void **state)
{
	struct fixture *f = *state;
	struct gerr *err = NULL;
	struct journal *a = jopen(f->path, NULL), *b = jopen(f->path, NULL);
	for (uint64_t i = 1; i <= 20; i++)
		assert_int_equal(append(i % 2 ? a : b, "x", "{}"), i);
	assert_int_equal(since(b, 0)->n, 20);
	bool done;
	assert_int_equal(journal_compact(a, 10, "{}", 2, 0, &done, &err), 0);
	assert_true(done);
	/* b resumes its read in the new file (its offsets in the old one are void) */
	assert_int_equal(append(a, "z", "{}"), 21);
	struct got *g = since(b, 20);
	assert_int_equal(g->n, 1);
	assert_string_equal(g->type[0], "z");
	/* b still has the old file open: it must notice and reopen */
	assert_int_equal(append(b, "y", "{}"), 22);
	g = since(a, 0);
	assert_int_equal(g->n, 13);
	assert_string_equal(g->type[12], "y");
	g = since(b, 0);
	assert_int_equal(g->n, 13);
	assert_true(g->snap[0]);
	journal_close(a);
	journal_close(b);
}

static void test_processes(void **state)
{
	struct fixture *f = *state;
	enum { P = 4, N = 50 };
	pid_t pid[P];
	for (int p = 0; p < P; p++) {
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0) {
			struct journal *j = NULL;
			struct gerr *err = NULL;
			if (journal_open(f->path, JOURNAL_CREATE, &j, NULL, &err) < 0)
				_exit(1);
			for (int i = 0; i < N; i++) {
				char body[64];
				int k = snprintf(body, sizeof(body), "{\"w\":%d,\"i\":%d}", p, i);
				if (journal_append(j, "w", body, (size_t)k, NULL, &err) < 0)
					_exit(2);
			}
			journal_close(j);
			_exit(0);
		}
	}
	for (int p = 0; p < P; p++) {
		int st;
		assert_int_equal(waitpid(pid[p], &st, 0), pid[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	struct journal *j = jopen(f->path, NULL);
	struct got *g = since(j, 0);
	assert_int_equal(g->n, P * N);
	int next[P] = { 0 };
	for (size_t i = 0; i < g->n; i++) {
		int w, k;
		assert_int_equal(g->seq[i], i + 1);
		assert_int_equal(sscanf(g->body[i], "{\"w\":%d,\"i\":%d}", &w, &k), 2);
		assert_true(w >= 0 && w < P);
		assert_int_equal(k, next[w]);
		next[w]++;
	}
	struct journal_info info;
	struct gerr *err = NULL;
	assert_int_equal(journal_info(j, &info, &err), 0);
	assert_true(info.syncs <= P * N);
	journal_close(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_hw_matches_sw),
		cmocka_unit_test_setup_teardown(test_append_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_stop_and_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_by_hand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_flip_middle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_flip_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_flip_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_mid_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_mid_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_appended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zeros_appended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sequence_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_writer_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_by_other_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
