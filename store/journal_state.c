/* journal_state.c: the state every process shares through PATH.state (struct jshm
 * in internal.h), its locks, and keeping it true to PATH: recovery after a crash and
 * group commit.
 *
 * Locking: appends (and anything that changes the file: recovery, tail repair,
 * compaction) hold the append lock; the sync lock serialises fdatasync and the
 * publication of durable_seq. Order: append, then sync; never the reverse.
 * Group commit: an appender that finds the sync lock taken sleeps on a futex in
 * the shared page until durable_seq moves, instead of queueing for the lock.
 *
 * Crash safety: every change to the shared state is ordered so that a process
 * killed between any two steps leaves something the next lock holder detects and
 * repairs (see struct jshm); tests/unit/test_journal_crash.c kills processes at
 * each such point (journal_debug_crash_at) and at random.
 */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAGIC 0x31534a4f54494721ull /* "!GITOJS1" */

/* Tests only: SIGKILL ourselves the nth time a named point is reached. */
static int crash_at;
static unsigned crash_nth;

void journal_debug_crash_at(int point, unsigned nth)
{
	crash_at = point;
	crash_nth = nth;
}

bool jr_crash_due(int point)
{
	return crash_at == point && crash_nth-- <= 1;
}

void jr_crash_point(int point)
{
	if (jr_crash_due(point))
		raise(SIGKILL);
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

int jr_lock(struct journal *j, off_t which, struct gerr **err)
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
void jr_publish_durable(struct jshm *m, uint64_t seq)
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

void jr_unlock(struct journal *j, off_t which)
{
	lock_op(j, F_UNLCK, which, NULL); /* cannot fail for a lock we hold */
}

/* ---- recovery ----------------------------------------------------------------- */

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
	while (jr_scan_next(s, &r, &why, NULL) == SCAN_REC)
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
	jr_scan_init(&s, j, fd, start, limit);
	*res = (struct scan_result){ .valid_end = start };
	while ((rc = jr_scan_next(&s, &r, &why, err)) == SCAN_REC) {
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
		res->valid_end = jr_scan_off(&s);
		if (publish) {
			atomic_store(&publish->last_seq, r.seq);
			jr_crash_point(JOURNAL_CRASH_REPAIR);
			atomic_store(&publish->end, res->valid_end);
		}
	}
	if (rc < 0) {
		jr_scan_done(&s, j);
		return -1;
	}
	*rec = (struct journal_recovery){ .records = res->records, .last_seq = res->last_seq };
	if (rc == SCAN_BAD) {
		rec->reason = why;
		rec->bad_offset = res->valid_end;
		rec->dropped_records = 1 + (r.size ? count_after_bad(&s, r.size) : 0);
		rec->dropped_bytes = limit - res->valid_end;
	}
	jr_scan_done(&s, j);
	return 0;
}

/* Under the append lock: rebuild the shared state from PATH. Opens PATH afresh,
 * validates every record, truncates at the first bad one, fdatasyncs and
 * publishes. Bumps gen when PATH is another file than the state said, hist when
 * records the state had published are gone. */
int jr_reconcile_locked(struct journal *j, struct journal_recovery *ret_rec,
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
	if (jr_check_header(fd, j->path, err) < 0 ||
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
	if (jr_lock(j, LOCK_SYNC, err) < 0)
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
	jr_crash_point(JOURNAL_CRASH_RECONCILE);
	atomic_store(&m->last_seq, res.last_seq);
	jr_publish_durable(m, res.last_seq);
	atomic_store(&m->magic, SHM_MAGIC);
	atomic_store(&m->dirty, 0);
	jr_unlock(j, LOCK_SYNC);
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
int jr_refresh_locked(struct journal *j, struct gerr **err)
{
	struct jshm *m = j->shm;
	struct stat st;
	if (atomic_load(&m->magic) != SHM_MAGIC || atomic_load(&m->dirty))
		return jr_reconcile_locked(j, NULL, err);
	if (stat(j->path, &st) < 0)
		return gerr_sys(err, "stat %s", j->path);
	/* PATH replaced without the state saying so: a compaction died after rename */
	if ((uint64_t)st.st_ino != atomic_load(&m->ino) || (uint64_t)st.st_dev != atomic_load(&m->dev))
		return jr_reconcile_locked(j, NULL, err);
	if (j->gen != atomic_load(&m->gen)) { /* compacted: reopen */
		struct stat fst;
		int fd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
		if (fd < 0)
			return gerr_sys(err, "open %s", j->path);
		if (fstat(fd, &fst) < 0 || fst.st_ino != st.st_ino || fst.st_dev != st.st_dev) {
			close(fd);
			return jr_reconcile_locked(j, NULL, err);
		}
		close(j->fd);
		j->fd = fd;
		j->gen = atomic_load(&m->gen);
	}
	uint64_t end = atomic_load(&m->end);
	if ((uint64_t)st.st_size == end)
		return 0;
	if ((uint64_t)st.st_size < end) /* truncated behind our back */
		return jr_reconcile_locked(j, NULL, err);
	return repair_tail_locked(j, (uint64_t)st.st_size, err);
}

int jr_refresh(struct journal *j, struct gerr **err)
{
	if (jr_lock(j, LOCK_APPEND, err) < 0)
		return -1;
	int r = jr_refresh_locked(j, err);
	jr_unlock(j, LOCK_APPEND);
	return r;
}

/* ---- group commit ------------------------------------------------------------- */

/* Wait until seq is durable: group commit. Whoever gets the sync lock leads: it
 * fdatasyncs everything written so far and publishes durable_seq; the others
 * (followers) sleep until durable_seq moves, and return if it covers them.
 * hist: shm->hist when the record was published. */
int jr_sync_upto(struct journal *j, uint64_t seq, uint64_t hist, struct gerr **err)
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
			jr_unlock(j, LOCK_SYNC);
			if (jr_refresh(j, err) < 0)
				return -1;
			continue;
		}
		int r = 0;
		if (atomic_load(&m->hist) == hist && atomic_load(&m->durable_seq) < seq) {
			uint64_t upto = atomic_load(&m->last_seq);
			if (fdatasync(j->fd) < 0) {
				r = gerr_sys(err, "fdatasync %s", j->path);
			} else {
				jr_crash_point(JOURNAL_CRASH_SYNCED);
				atomic_fetch_add(&m->syncs, 1);
				jr_publish_durable(m, upto);
			}
		}
		jr_unlock(j, LOCK_SYNC);
		if (r < 0)
			return r;
	}
}
