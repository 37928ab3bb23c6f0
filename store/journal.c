/* journal.c: the node journal — crash-safe append-only records, group commit
 * across processes, recovery, queries and compaction. Format and API: store.h.
 *
 * Locking: appends (and anything that changes the file: recovery, tail repair,
 * compaction) hold the append lock; the sync lock serialises fdatasync and the
 * publication of durable_seq. Order: append, then sync; never the reverse.
 * Group commit: an appender that finds the sync lock taken sleeps on a futex in
 * the shared page until durable_seq moves, instead of queueing for the lock.
 * Readers take no lock: they read records up to durable_seq, which are whole.
 *
 * Crash safety: every change to the shared state is ordered so that a process
 * killed between any two steps leaves something the next lock holder detects and
 * repairs (see struct jshm); tests/unit/test_journal_crash.c kills processes at
 * each such point (journal_debug_crash_at) and at random.
 *
 * Memory: plain malloc/free with goto-cleanup; no arena (long-lived handle).
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

static const char MAGIC[8] = { 'G', 'O', 'J', 'R', 'N', 'L', '\0', '\1' };
#define HDR_SIZE 8u
#define REC_PREFIX 8u  /* len + crc */
#define REC_FIXED 24u  /* seq, time, type_len, flags, body_len */
#define REC_HDR (REC_PREFIX + REC_FIXED)
#define REC_LEN_MAX (REC_FIXED + JOURNAL_TYPE_MAX + JOURNAL_SNAPSHOT_MAX)
#define READ_CHUNK (256u << 10)

#define SHM_MAGIC 0x31534a4f54494721ull /* "!GITOJS1" */
#define SHM_SIZE 4096
#define LOCK_APPEND 0
#define LOCK_SYNC 1

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "shared state needs lock-free 64-bit atomics");

/* The page shared by every process through PATH.state. end and last_seq change
 * under the append lock (last_seq first: a writer that dies in between leaves the
 * record at end with seq == last_seq, which repair accepts); durable_seq and
 * syncs under the sync lock; the others under both, inside a window marked by
 * dirty, so a process killed half-way leaves a state that says so. */
struct jshm {
	_Atomic uint64_t magic;       /* set once, when first initialised */
	_Atomic uint64_t dirty;
	_Atomic uint64_t gen;         /* bumped when PATH is replaced: handles reopen */
	_Atomic uint64_t hist;        /* bumped when published records were dropped */
	_Atomic uint64_t dev, ino;    /* of the current PATH */
	_Atomic uint64_t end;         /* offset after the last whole record */
	_Atomic uint64_t last_seq;    /* seq of that record */
	_Atomic uint64_t durable_seq; /* everything up to it is fdatasync'ed */
	_Atomic uint64_t syncs;
	_Atomic uint64_t repairs;
	_Atomic uint32_t epoch;       /* futex: bumped whenever durable_seq is published */
};

/* A buffered forward reader over [start, limit) of a file. buf[len] is always
 * inside the allocation, so a record's body can be NUL-terminated in place. */
struct scan {
	int fd;
	uint64_t base;   /* file offset of buf[0] */
	char *buf;
	size_t alloc, len, pos;
	uint64_t limit;  /* UINT64_MAX: to end of file */
	bool eof;
};

struct raw {
	uint64_t off;
	size_t size;     /* whole record, prefix included */
	uint64_t seq;
	int64_t time_ns;
	uint16_t flags;
	const char *type, *body;
	size_t type_len, body_len;
};

enum { SCAN_END = 0, SCAN_REC = 1, SCAN_BAD = 2 };

struct journal {
	char *path, *state_path, *tmp_path, *dir;
	int fd;                /* PATH, O_APPEND */
	int sfd;               /* PATH.state */
	struct jshm *shm;
	uint64_t gen;          /* shm->gen that fd belongs to */
	struct sbuf wbuf;      /* encoding */
	char *rbuf;            /* scan buffer, kept between calls */
	size_t rbuf_alloc;
	bool hint_ok;          /* since(): record after hint_seq starts at hint_off */
	uint64_t hint_gen, hint_hist, hint_seq, hint_off;
	char type[JOURNAL_TYPE_MAX + 1];
};

/* Tests only: SIGKILL ourselves the nth time a named point is reached. */
static int crash_at;
static unsigned crash_nth;

void journal_debug_crash_at(int point, unsigned nth)
{
	crash_at = point;
	crash_nth = nth;
}

static bool crash_due(int point)
{
	return crash_at == point && crash_nth-- <= 1;
}

static void crash_point(int point)
{
	if (crash_due(point))
		raise(SIGKILL);
}

/* ---- CRC32C ---------------------------------------------------------------- */

static uint32_t crc_tab[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw_raw(uint32_t c, const unsigned char *p, size_t n)
{
	while (n >= 8) { /* slicing-by-8, byte order independent */
		uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				   (uint32_t)p[3] << 24);
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^ crc_tab[3][p[4]] ^
		    crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^ crc_tab[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw_raw(uint32_t c, const unsigned char *p,
							     size_t n)
{
	uint64_t c64 = c;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c64 = _mm_crc32_u64(c64, w);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}
#endif

uint32_t journal_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw_raw(~crc, data, n);
}

uint32_t journal_crc32c(uint32_t crc, const void *data, size_t n)
{
	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_hw_raw(~crc, data, n);
#endif
	return ~crc_sw_raw(~crc, data, n);
}

/* ---- encoding --------------------------------------------------------------- */

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static bool type_ok(const char *t, size_t n)
{
	if (n < 1 || n > JOURNAL_TYPE_MAX || t[0] < 'a' || t[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '.' ||
		      t[i] == '_' || t[i] == '-'))
			return false;
	return true;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Replace sb's contents with one encoded record. */
static void encode(struct sbuf *sb, uint64_t seq, uint16_t flags, const char *type,
		   const void *body, size_t body_len)
{
	size_t tlen = strlen(type);
	uint32_t len = (uint32_t)(REC_FIXED + tlen + body_len);
	sb_reset(sb);
	sb_grow(sb, REC_PREFIX + len);
	unsigned char *p = (unsigned char *)sb->buf;
	put32(p, len);
	put64(p + 8, seq);
	put64(p + 16, (uint64_t)now_ns());
	put16(p + 24, (uint16_t)tlen);
	put16(p + 26, flags);
	put32(p + 28, (uint32_t)body_len);
	memcpy(p + REC_HDR, type, tlen);
	if (body_len)
		memcpy(p + REC_HDR + tlen, body, body_len);
	put32(p + 4, journal_crc32c(journal_crc32c(0, p, 4), p + REC_PREFIX, len));
	sb_setlen(sb, REC_PREFIX + len);
}

/* ---- scanning --------------------------------------------------------------- */

static void scan_init(struct scan *s, struct journal *j, int fd, uint64_t start, uint64_t limit)
{
	*s = (struct scan){ .fd = fd, .base = start, .buf = j->rbuf, .alloc = j->rbuf_alloc,
			    .limit = limit };
}

static void scan_done(struct scan *s, struct journal *j)
{
	j->rbuf = s->buf; /* keep the (possibly grown) buffer for the next scan */
	j->rbuf_alloc = s->alloc;
}

static uint64_t scan_off(const struct scan *s)
{
	return s->base + s->pos;
}

/* Make at least n bytes available at pos unless the file or limit ends first.
 * Returns the bytes available, or -1 on a read error. */
static ssize_t scan_fill(struct scan *s, size_t n, struct gerr **err)
{
	if (s->len - s->pos >= n)
		return (ssize_t)(s->len - s->pos);
	if (s->pos)
		memmove(s->buf, s->buf + s->pos, s->len - s->pos);
	s->base += s->pos;
	s->len -= s->pos;
	s->pos = 0;
	size_t want = n < READ_CHUNK ? READ_CHUNK : n;
	if (want + 1 > s->alloc) {
		s->buf = xrealloc(s->buf, want + 1);
		s->alloc = want + 1;
	}
	while (s->len < n && !s->eof) {
		uint64_t off = s->base + s->len;
		size_t room = s->alloc - 1 - s->len;
		if (s->limit != UINT64_MAX)
			room = off >= s->limit ? 0 : (s->limit - off < room ? s->limit - off : room);
		ssize_t r = room ? pread(s->fd, s->buf + s->len, room, (off_t)off) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return gerr_sys(err, "read journal at offset %llu", (unsigned long long)off);
		if (r == 0)
			s->eof = true;
		s->len += (size_t)r;
	}
	return (ssize_t)(s->len - s->pos);
}

/* Decode the record at pos. SCAN_REC: r filled, pos moved past it. SCAN_BAD:
 * *reason set, pos unchanged, r->size is the record's size when it was whole
 * (so a caller can look past it), else 0. SCAN_END: no bytes left. -1: I/O. */
static int scan_next(struct scan *s, struct raw *r, const char **reason, struct gerr **err)
{
	r->size = 0;
	ssize_t have = scan_fill(s, REC_HDR, err);
	if (have <= 0)
		return have < 0 ? -1 : SCAN_END;
	const unsigned char *p = (const unsigned char *)s->buf + s->pos;
	uint32_t len = get32(p);
	if (len < REC_FIXED + 1 || len > REC_LEN_MAX) {
		*reason = have < (ssize_t)REC_HDR ? "torn record" : "bad record length";
		return SCAN_BAD;
	}
	size_t size = REC_PREFIX + len;
	have = scan_fill(s, size, err);
	if (have < 0)
		return -1;
	if ((size_t)have < size) {
		*reason = "torn record";
		return SCAN_BAD;
	}
	p = (const unsigned char *)s->buf + s->pos;
	r->size = size;
	if (journal_crc32c(journal_crc32c(0, p, 4), p + REC_PREFIX, len) != get32(p + 4)) {
		*reason = "CRC mismatch";
		return SCAN_BAD;
	}
	r->seq = get64(p + 8);
	r->time_ns = (int64_t)get64(p + 16);
	r->type_len = get16(p + 24);
	r->flags = get16(p + 26);
	r->body_len = get32(p + 28);
	r->type = (const char *)p + REC_HDR;
	r->body = r->type + r->type_len;
	if (r->seq == 0 || (r->flags & ~JOURNAL_F_SNAPSHOT) ||
	    r->type_len + r->body_len + REC_FIXED != len || !type_ok(r->type, r->type_len) ||
	    (!(r->flags & JOURNAL_F_SNAPSHOT) && r->body_len > JOURNAL_BODY_MAX)) {
		*reason = "bad record header";
		return SCAN_BAD;
	}
	r->off = scan_off(s);
	s->pos += size;
	return SCAN_REC;
}

struct scan_result {
	uint64_t valid_end, first_seq, last_seq, records;
	bool snapshot;
};

/* After a bad record of known size: count the whole records that follow it. */
static uint64_t count_after_bad(struct scan *s, size_t bad_size)
{
	uint64_t n = 0;
	struct raw r;
	const char *why;
	s->pos += bad_size;
	while (scan_next(s, &r, &why, NULL) == SCAN_REC)
		n++;
	return n;
}

/* Validate records in [start, limit). expect: the first record's seq, or 0 at
 * the start of the file (any seq, a snapshot allowed). With publish (repairing a
 * tail after a dead writer), the first record may also be expect - 1 (its writer
 * published last_seq but died before end) and each record is published as it is
 * validated, last_seq before end as appends do. Reports in *rec what would
 * have to be dropped after res->valid_end; the caller truncates. */
static int scan_range(struct journal *j, int fd, uint64_t start, uint64_t limit, uint64_t expect,
		      struct jshm *publish, struct scan_result *res, struct journal_recovery *rec,
		      struct gerr **err)
{
	struct scan s;
	struct raw r;
	const char *why = NULL;
	int rc;
	scan_init(&s, j, fd, start, limit);
	*res = (struct scan_result){ .valid_end = start };
	while ((rc = scan_next(&s, &r, &why, err)) == SCAN_REC) {
		bool first = res->records == 0;
		bool snap = r.flags & JOURNAL_F_SNAPSHOT;
		if (snap && !(first && expect == 0)) {
			why = "snapshot after the first record";
			rc = SCAN_BAD;
		} else if (first ? (expect && r.seq != expect && !(publish && r.seq + 1 == expect))
				 : r.seq != res->last_seq + 1) {
			why = "sequence gap";
			rc = SCAN_BAD;
		}
		if (rc == SCAN_BAD) {
			s.pos -= r.size; /* report the record itself as the bad one */
			break;
		}
		if (first) {
			res->first_seq = r.seq;
			res->snapshot = snap;
		}
		res->last_seq = r.seq;
		res->records++;
		res->valid_end = scan_off(&s);
		if (publish) {
			atomic_store(&publish->last_seq, r.seq);
			crash_point(JOURNAL_CRASH_REPAIR);
			atomic_store(&publish->end, res->valid_end);
		}
	}
	if (rc < 0) {
		scan_done(&s, j);
		return -1;
	}
	*rec = (struct journal_recovery){ .records = res->records, .last_seq = res->last_seq };
	if (rc == SCAN_BAD) {
		rec->reason = why;
		rec->bad_offset = res->valid_end;
		rec->dropped_records = 1 + (r.size ? count_after_bad(&s, r.size) : 0);
		rec->dropped_bytes = limit - res->valid_end;
	}
	scan_done(&s, j);
	return 0;
}

/* ---- locks and shared state --------------------------------------------------- */

static int lock_op(struct journal *j, short type, off_t which, struct gerr **err)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = which, .l_len = 1 };
	while (fcntl(j->sfd, F_OFD_SETLKW, &fl) < 0)
		if (errno != EINTR)
			return gerr_sys(err, "lock %s", j->state_path);
	return 0;
}

static int lock(struct journal *j, off_t which, struct gerr **err)
{
	return lock_op(j, F_WRLCK, which, err);
}

/* 1: locked, 0: someone else holds it, -1: error. */
static int trylock(struct journal *j, off_t which, struct gerr **err)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = which, .l_len = 1 };
	while (fcntl(j->sfd, F_OFD_SETLK, &fl) < 0) {
		if (errno == EAGAIN || errno == EACCES)
			return 0;
		if (errno != EINTR)
			return gerr_sys(err, "lock %s", j->state_path);
	}
	return 1;
}

/* Under the sync lock: publish durable_seq and wake the writers waiting for it. */
static void publish_durable(struct jshm *m, uint64_t seq)
{
	atomic_store(&m->durable_seq, seq);
	atomic_fetch_add(&m->epoch, 1);
	syscall(SYS_futex, (uint32_t *)&m->epoch, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Sleep until epoch moves from seen (or a timeout: a syncer that died wakes no one). */
static void wait_durable(struct jshm *m, uint32_t seen)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	syscall(SYS_futex, (uint32_t *)&m->epoch, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void unlock(struct journal *j, off_t which)
{
	lock_op(j, F_UNLCK, which, NULL); /* cannot fail for a lock we hold */
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(struct journal *j, struct gerr **err)
{
	int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		gerr_sys(err, "fsync %s", j->dir);
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
}

static int check_header(int fd, const char *path, struct gerr **err)
{
	char h[HDR_SIZE];
	ssize_t n;
	while ((n = pread(fd, h, sizeof(h), 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return gerr_sys(err, "read %s", path);
	if (n != (ssize_t)HDR_SIZE || memcmp(h, MAGIC, HDR_SIZE) != 0)
		return gerr_set(err, GERR_IO, "%s is not a journal (bad header)", path);
	return 0;
}

/* Under the append lock: rebuild the shared state from PATH. Opens PATH afresh,
 * validates every record, truncates at the first bad one, fdatasyncs and
 * publishes. Bumps gen when PATH is another file than the state said, hist when
 * records the state had published are gone. */
static int reconcile_locked(struct journal *j, struct journal_recovery *ret_rec,
			    struct gerr **err)
{
	struct jshm *m = j->shm;
	struct journal_recovery rec;
	struct scan_result res;
	struct stat st;
	int fd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return gerr_sys(err, "open %s", j->path);
	if (fstat(fd, &st) < 0) {
		gerr_sys(err, "stat %s", j->path);
		goto fail;
	}
	if (check_header(fd, j->path, err) < 0 ||
	    scan_range(j, fd, HDR_SIZE, (uint64_t)st.st_size, 0, NULL, &res, &rec, err) < 0)
		goto fail;
	if (rec.dropped_bytes && ftruncate(fd, (off_t)res.valid_end) < 0) {
		gerr_sys(err, "truncate %s", j->path);
		goto fail;
	}
	if (fdatasync(fd) < 0) {
		gerr_sys(err, "fdatasync %s", j->path);
		goto fail;
	}
	if (lock(j, LOCK_SYNC, err) < 0)
		goto fail;
	if (atomic_load(&m->magic) != SHM_MAGIC) {
		atomic_store(&m->gen, 1);
		atomic_store(&m->hist, 1);
		atomic_store(&m->syncs, 0);
		atomic_store(&m->repairs, 0);
	} else {
		bool was_dirty = atomic_exchange(&m->dirty, 1);
		/* another file, or a dead updater that may have half-switched to one */
		if (was_dirty || atomic_load(&m->ino) != (uint64_t)st.st_ino ||
		    atomic_load(&m->dev) != (uint64_t)st.st_dev)
			atomic_fetch_add(&m->gen, 1);
		if (res.last_seq < atomic_load(&m->last_seq))
			atomic_fetch_add(&m->hist, 1);
	}
	atomic_store(&m->dev, (uint64_t)st.st_dev);
	atomic_store(&m->ino, (uint64_t)st.st_ino);
	atomic_store(&m->end, res.valid_end);
	crash_point(JOURNAL_CRASH_RECONCILE);
	atomic_store(&m->last_seq, res.last_seq);
	publish_durable(m, res.last_seq);
	atomic_store(&m->magic, SHM_MAGIC);
	atomic_store(&m->dirty, 0);
	unlock(j, LOCK_SYNC);
	if (j->fd >= 0)
		close(j->fd);
	j->fd = fd;
	j->gen = atomic_load(&m->gen);
	if (ret_rec)
		*ret_rec = rec;
	return 0;
fail:
	close(fd);
	return -1;
}

/* Under the append lock, after a writer died between write() and publishing:
 * adopt the whole records past end, truncate a torn one. */
static int repair_tail_locked(struct journal *j, uint64_t size, struct gerr **err)
{
	struct jshm *m = j->shm;
	struct journal_recovery rec;
	struct scan_result res;
	uint64_t last = atomic_load(&m->last_seq);
	if (scan_range(j, j->fd, atomic_load(&m->end), size, last + 1, m, &res, &rec, err) < 0)
		return -1;
	if (rec.dropped_bytes && ftruncate(j->fd, (off_t)res.valid_end) < 0)
		return gerr_sys(err, "truncate %s", j->path);
	atomic_fetch_add(&m->repairs, 1);
	return 0;
}

/* Under the append lock: make j->fd the current PATH and the state agree with it.
 * Cheap when nothing happened: one stat(). */
static int refresh_locked(struct journal *j, struct gerr **err)
{
	struct jshm *m = j->shm;
	struct stat st;
	if (atomic_load(&m->magic) != SHM_MAGIC || atomic_load(&m->dirty))
		return reconcile_locked(j, NULL, err);
	if (stat(j->path, &st) < 0)
		return gerr_sys(err, "stat %s", j->path);
	/* PATH replaced without the state saying so: a compaction died after rename */
	if ((uint64_t)st.st_ino != atomic_load(&m->ino) || (uint64_t)st.st_dev != atomic_load(&m->dev))
		return reconcile_locked(j, NULL, err);
	if (j->gen != atomic_load(&m->gen)) { /* compacted: reopen */
		struct stat fst;
		int fd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
		if (fd < 0)
			return gerr_sys(err, "open %s", j->path);
		if (fstat(fd, &fst) < 0 || fst.st_ino != st.st_ino || fst.st_dev != st.st_dev) {
			close(fd);
			return reconcile_locked(j, NULL, err);
		}
		close(j->fd);
		j->fd = fd;
		j->gen = atomic_load(&m->gen);
	}
	uint64_t end = atomic_load(&m->end);
	if ((uint64_t)st.st_size == end)
		return 0;
	if ((uint64_t)st.st_size < end) /* truncated behind our back */
		return reconcile_locked(j, NULL, err);
	return repair_tail_locked(j, (uint64_t)st.st_size, err);
}

static int refresh(struct journal *j, struct gerr **err)
{
	if (lock(j, LOCK_APPEND, err) < 0)
		return -1;
	int r = refresh_locked(j, err);
	unlock(j, LOCK_APPEND);
	return r;
}

/* Wait until seq is durable: group commit. Whoever gets the sync lock leads: it
 * fdatasyncs everything written so far and publishes durable_seq; the others
 * (followers) sleep until durable_seq moves, and return if it covers them.
 * hist: shm->hist when the record was published. */
static int sync_upto(struct journal *j, uint64_t seq, uint64_t hist, struct gerr **err)
{
	struct jshm *m = j->shm;
	for (;;) {
		uint32_t epoch = atomic_load(&m->epoch);
		uint64_t d = atomic_load(&m->durable_seq);
		if (atomic_load(&m->hist) != hist)
			return gerr_set(err, GERR_IO,
					"journal %s was truncated by recovery: record %llu may be lost",
					j->path, (unsigned long long)seq);
		if (d >= seq)
			return 0;
		int got = trylock(j, LOCK_SYNC, err);
		if (got < 0)
			return -1;
		if (got == 0) {
			wait_durable(m, epoch);
			continue;
		}
		if (atomic_load(&m->dirty) || j->gen != atomic_load(&m->gen)) {
			/* an updater died inside its window, or PATH was replaced (which
			 * would have covered us): let refresh sort it out, then retry */
			unlock(j, LOCK_SYNC);
			if (refresh(j, err) < 0)
				return -1;
			continue;
		}
		int r = 0;
		if (atomic_load(&m->hist) == hist && atomic_load(&m->durable_seq) < seq) {
			uint64_t upto = atomic_load(&m->last_seq);
			if (fdatasync(j->fd) < 0) {
				r = gerr_sys(err, "fdatasync %s", j->path);
			} else {
				crash_point(JOURNAL_CRASH_SYNCED);
				atomic_fetch_add(&m->syncs, 1);
				publish_durable(m, upto);
			}
		}
		unlock(j, LOCK_SYNC);
		if (r < 0)
			return r;
	}
}

/* ---- open / close ------------------------------------------------------------- */

static int create_file(struct journal *j, struct gerr **err)
{
	struct stat st;
	if (stat(j->path, &st) == 0)
		return 0;
	if (errno != ENOENT)
		return gerr_sys(err, "stat %s", j->path);
	return write_file_atomic(j->path, MAGIC, HDR_SIZE, 0644, err);
}

int journal_open(const char *path, unsigned flags, struct journal **ret,
		 struct journal_recovery *ret_recovery, struct gerr **err)
{
	struct stat st;
	struct journal_recovery rec;
	if (!(flags & JOURNAL_CREATE) && stat(path, &st) < 0)
		return gerr_sys(err, "open journal %s", path);
	struct journal *j = xcalloc(1, sizeof(*j));
	j->fd = -1;
	j->path = xstrdup(path);
	j->state_path = xasprintf("%s.state", path);
	j->tmp_path = xasprintf("%s.compact", path);
	const char *slash = strrchr(path, '/');
	j->dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
	sb_init(&j->wbuf);
	j->sfd = open(j->state_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->sfd < 0) {
		gerr_sys(err, "open %s", j->state_path);
		goto fail;
	}
	if (lock(j, LOCK_APPEND, err) < 0)
		goto fail;
	int r = -1;
	if (fstat(j->sfd, &st) < 0) {
		gerr_sys(err, "stat %s", j->state_path);
	} else if (st.st_size < SHM_SIZE && ftruncate(j->sfd, SHM_SIZE) < 0) {
		gerr_sys(err, "resize %s", j->state_path);
	} else {
		void *p = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, j->sfd, 0);
		if (p == MAP_FAILED) {
			gerr_sys(err, "mmap %s", j->state_path);
		} else {
			j->shm = p;
			unlink(j->tmp_path); /* a dead compaction's leftovers */
			if (!(flags & JOURNAL_CREATE) || create_file(j, err) == 0)
				r = reconcile_locked(j, &rec, err);
		}
	}
	unlock(j, LOCK_APPEND);
	if (r < 0)
		goto fail;
	if (ret_recovery)
		*ret_recovery = rec;
	*ret = j;
	return 0;
fail:
	gerr_wrap(err, "open journal %s", path);
	journal_close(j);
	return -1;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->shm)
		munmap(j->shm, SHM_SIZE);
	if (j->fd >= 0)
		close(j->fd);
	if (j->sfd >= 0)
		close(j->sfd);
	sb_release(&j->wbuf);
	free(j->rbuf);
	free(j->path);
	free(j->state_path);
	free(j->tmp_path);
	free(j->dir);
	free(j);
}

/* ---- append ------------------------------------------------------------------- */

int journal_append(struct journal *j, const char *type, const void *body, size_t body_len,
		   uint64_t *ret_seq, struct gerr **err)
{
	struct jshm *m = j->shm;
	size_t tlen = strnlen(type, JOURNAL_TYPE_MAX + 1);
	if (!type_ok(type, tlen) || str_has_prefix(type, "journal."))
		return gerr_set(err, GERR_FAIL,
				"invalid journal record type '%.*s': want 1-%d of [a-z0-9._-], "
				"starting with a letter, not journal.*",
				JOURNAL_TYPE_MAX, type, JOURNAL_TYPE_MAX);
	if (body_len > JOURNAL_BODY_MAX)
		return gerr_set(err, GERR_FAIL, "journal record body is %zu bytes, over the limit of %u",
				body_len, JOURNAL_BODY_MAX);
	if (lock(j, LOCK_APPEND, err) < 0)
		return -1;
	if (refresh_locked(j, err) < 0) {
		unlock(j, LOCK_APPEND);
		return gerr_wrap(err, "append to journal %s", j->path);
	}
	uint64_t seq = atomic_load(&m->last_seq) + 1;
	encode(&j->wbuf, seq, 0, type, body, body_len);
	if (crash_due(JOURNAL_CRASH_MID_WRITE) && write_all(j->fd, j->wbuf.buf, j->wbuf.len / 2) == 0)
		raise(SIGKILL);
	if (write_all(j->fd, j->wbuf.buf, j->wbuf.len) < 0) {
		int e = errno;
		if (ftruncate(j->fd, (off_t)atomic_load(&m->end)) < 0) {
			/* the next append's refresh truncates the torn tail */
		}
		unlock(j, LOCK_APPEND);
		errno = e;
		return gerr_sys(err, "append to journal %s", j->path);
	}
	crash_point(JOURNAL_CRASH_AFTER_WRITE);
	atomic_store(&m->last_seq, seq); /* publish only whole records */
	crash_point(JOURNAL_CRASH_MID_PUBLISH);
	atomic_store(&m->end, atomic_load(&m->end) + j->wbuf.len);
	uint64_t hist = atomic_load(&m->hist);
	unlock(j, LOCK_APPEND);
	if (sync_upto(j, seq, hist, err) < 0)
		return -1;
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

/* ---- queries ------------------------------------------------------------------ */

/* A consistent (fd, durable_seq, hist) without the append lock, unless PATH was
 * replaced (reopen) or an updater died half-way (reconcile). */
static int view(struct journal *j, uint64_t *ret_durable, uint64_t *ret_hist, struct gerr **err)
{
	struct jshm *m = j->shm;
	for (;;) {
		uint64_t g = atomic_load(&m->gen), h = atomic_load(&m->hist);
		uint64_t d = atomic_load(&m->durable_seq);
		bool dirty = atomic_load(&m->dirty);
		if (!dirty && g == j->gen && atomic_load(&m->gen) == g && atomic_load(&m->hist) == h) {
			*ret_durable = d;
			*ret_hist = h;
			return 0;
		}
		if ((dirty || g != j->gen) && refresh(j, err) < 0)
			return -1;
	}
}

uint64_t journal_last_seq(struct journal *j)
{
	return atomic_load(&j->shm->durable_seq);
}

static int deliver(struct journal *j, const struct raw *r, journal_fn *fn, void *arg,
		   struct gerr **err)
{
	struct journal_rec jr = {
		.seq = r->seq, .time_ns = r->time_ns, .snapshot = r->flags & JOURNAL_F_SNAPSHOT,
		.type = j->type, .body = r->body, .body_len = r->body_len,
	};
	memcpy(j->type, r->type, r->type_len);
	j->type[r->type_len] = '\0';
	/* The body ends inside the buffer (buf[len] is allocated): terminate it in
	 * place and restore the next record's first byte afterwards. */
	char *end = (char *)r->body + r->body_len;
	char saved = *end;
	*end = '\0';
	int rc = fn(&jr, arg, err);
	*end = saved;
	if (rc < 0)
		return gerr_set(err, GERR_FAIL, "journal reader failed at record %llu",
				(unsigned long long)r->seq);
	return rc;
}

int journal_since(struct journal *j, uint64_t after, journal_fn *fn, void *arg,
		  struct gerr **err)
{
	uint64_t durable, hist, expect = 0, start = HDR_SIZE;
	if (view(j, &durable, &hist, err) < 0)
		return -1;
	if (after >= durable)
		return 0;
	if (j->hint_ok && j->hint_gen == j->gen && j->hint_hist == hist && after >= j->hint_seq &&
	    j->hint_seq < durable) {
		start = j->hint_off;
		expect = j->hint_seq + 1;
	}
	struct scan s;
	struct raw r;
	const char *why = "end of file";
	uint64_t seen = expect ? expect - 1 : 0;
	int rc = 0, sr;
	scan_init(&s, j, j->fd, start, UINT64_MAX);
	while (seen < durable) {
		sr = scan_next(&s, &r, &why, err);
		if (sr < 0) {
			rc = -1;
			break;
		}
		if (sr == SCAN_REC && ((expect && r.seq != expect) || (seen && r.seq != seen + 1)))
			why = "sequence gap", sr = SCAN_BAD;
		if (sr != SCAN_REC && atomic_load(&j->shm->hist) != hist) {
			rc = gerr_set(err, GERR_IO,
				      "journal %s was truncated by recovery while being read; read "
				      "it again", j->path);
			break;
		}
		if (sr != SCAN_REC) {
			rc = gerr_set(err, GERR_IO, "journal %s: %s at offset %llu before record %llu",
				      j->path, why, (unsigned long long)scan_off(&s),
				      (unsigned long long)durable);
			break;
		}
		expect = 0;
		seen = r.seq;
		j->hint_ok = true;
		j->hint_gen = j->gen;
		j->hint_hist = hist;
		j->hint_seq = r.seq;
		j->hint_off = scan_off(&s);
		if (r.seq <= after)
			continue;
		rc = deliver(j, &r, fn, arg, err);
		if (rc != 0)
			break;
	}
	scan_done(&s, j);
	return rc;
}

int journal_info(struct journal *j, struct journal_info *ret, struct gerr **err)
{
	uint64_t durable, hist;
	struct stat st;
	unsigned char h[REC_HDR];
	if (view(j, &durable, &hist, err) < 0)
		return -1;
	if (fstat(j->fd, &st) < 0)
		return gerr_sys(err, "stat %s", j->path);
	*ret = (struct journal_info){ .size = (uint64_t)st.st_size, .last_seq = durable,
				      .syncs = atomic_load(&j->shm->syncs),
				      .repairs = atomic_load(&j->shm->repairs) };
	if (durable && pread(j->fd, h, sizeof(h), HDR_SIZE) == (ssize_t)sizeof(h)) {
		ret->first_seq = get64(h + 8);
		ret->has_snapshot = get16(h + 26) & JOURNAL_F_SNAPSHOT;
	}
	return 0;
}

/* ---- compaction --------------------------------------------------------------- */

/* Under the append lock: write PATH.compact = header + snapshot + records after
 * covers, copied through the validating scanner. Returns the new file's fd. */
static int write_compacted(struct journal *j, uint64_t covers, const void *snap, size_t snap_len,
			   struct gerr **err)
{
	struct scan s;
	struct raw r;
	const char *why = "end of file";
	uint64_t end = atomic_load(&j->shm->end), last = atomic_load(&j->shm->last_seq);
	uint64_t seen = 0;
	int sr = 0, fd = open(j->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return gerr_sys(err, "create %s", j->tmp_path);
	encode(&j->wbuf, covers, JOURNAL_F_SNAPSHOT, JOURNAL_SNAPSHOT_TYPE, snap, snap_len);
	if (write_all(fd, MAGIC, HDR_SIZE) < 0 || write_all(fd, j->wbuf.buf, j->wbuf.len) < 0) {
		gerr_sys(err, "write %s", j->tmp_path);
		goto fail;
	}
	scan_init(&s, j, j->fd, HDR_SIZE, end);
	while (seen < last && (sr = scan_next(&s, &r, &why, err)) == SCAN_REC) {
		bool snapshot = r.flags & JOURNAL_F_SNAPSHOT;
		if (seen == 0 && (snapshot ? covers < r.seq : covers + 1 < r.seq)) {
			scan_done(&s, j);
			gerr_set(err, GERR_FAIL, "cannot compact to sequence %llu: the journal starts at %llu",
				 (unsigned long long)covers, (unsigned long long)r.seq);
			goto fail;
		}
		seen = r.seq;
		if (r.seq > covers && write_all(fd, s.buf + s.pos - r.size, r.size) < 0) {
			scan_done(&s, j);
			gerr_sys(err, "write %s", j->tmp_path);
			goto fail;
		}
	}
	scan_done(&s, j);
	if (seen < last) {
		if (sr >= 0)
			gerr_set(err, GERR_IO, "%s at offset %llu; reopen the journal to recover", why,
				 (unsigned long long)scan_off(&s));
		goto fail;
	}
	if (fsync(fd) < 0) {
		gerr_sys(err, "fsync %s", j->tmp_path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	unlink(j->tmp_path);
	return -1;
}

static int compact_locked(struct journal *j, uint64_t covers, const void *snap, size_t snap_len,
			  uint64_t min_bytes, bool *ret_done, struct gerr **err)
{
	struct jshm *m = j->shm;
	struct stat st;
	if (refresh_locked(j, err) < 0)
		return -1;
	if (atomic_load(&m->end) < min_bytes)
		return 0;
	if (covers > atomic_load(&m->last_seq))
		return gerr_set(err, GERR_FAIL, "cannot compact to sequence %llu: the last is %llu",
				(unsigned long long)covers,
				(unsigned long long)atomic_load(&m->last_seq));
	int fd = write_compacted(j, covers, snap, snap_len, err);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || rename(j->tmp_path, j->path) < 0) {
		gerr_sys(err, "replace %s", j->path);
		close(fd);
		unlink(j->tmp_path);
		return -1;
	}
	/* From here PATH is the new file; if we die before publishing, the next
	 * append lock holder sees the inode change and reconciles. */
	crash_point(JOURNAL_CRASH_COMPACT_RENAMED);
	int r = fsync_dir(j, err);
	if (lock(j, LOCK_SYNC, r < 0 ? NULL : err) < 0) {
		close(fd);
		return -1;
	}
	atomic_store(&m->dirty, 1);
	atomic_fetch_add(&m->gen, 1);
	atomic_store(&m->dev, (uint64_t)st.st_dev);
	atomic_store(&m->ino, (uint64_t)st.st_ino);
	crash_point(JOURNAL_CRASH_COMPACT_WINDOW);
	atomic_store(&m->end, (uint64_t)st.st_size);
	if (r == 0) /* everything in the new file is durable */
		publish_durable(m, atomic_load(&m->last_seq));
	atomic_store(&m->dirty, 0);
	unlock(j, LOCK_SYNC);
	close(j->fd);
	j->fd = fd;
	j->gen = atomic_load(&m->gen);
	j->hint_ok = false;
	if (ret_done)
		*ret_done = true;
	return r;
}

int journal_compact(struct journal *j, uint64_t covers_seq, const void *snapshot,
		    size_t snapshot_len, uint64_t min_bytes, bool *ret_done, struct gerr **err)
{
	if (ret_done)
		*ret_done = false;
	if (covers_seq == 0)
		return gerr_set(err, GERR_FAIL, "cannot compact to sequence 0");
	if (snapshot_len > JOURNAL_SNAPSHOT_MAX)
		return gerr_set(err, GERR_FAIL, "journal snapshot is %zu bytes, over the limit of %u",
				snapshot_len, JOURNAL_SNAPSHOT_MAX);
	if (lock(j, LOCK_APPEND, err) < 0)
		return -1;
	int r = compact_locked(j, covers_seq, snapshot, snapshot_len, min_bytes, ret_done, err);
	unlock(j, LOCK_APPEND);
	if (r < 0)
		gerr_wrap(err, "compact journal %s", j->path);
	return r;
}
