/* journal.c: the node journal — crash-safe append-only records, group commit
 * across processes, recovery, queries and compaction. Format and API: store.h.
 * Here: opening and closing a handle, and appending. The rest, by idea:
 *   journal_format.c   the file on disk: header, records, CRC32C, the scanner
 *   journal_state.c    the shared state: locks, recovery, group commit, crash safety
 *   journal_read.c     queries (journal_since, journal_info)
 *   journal_compact.c  compaction
 * What they share is in internal.h.
 *
 * Memory: plain malloc/free with goto-cleanup; no arena (long-lived handle).
 */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_SIZE 4096

int jr_write_all(int fd, const void *data, size_t len)
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

/* ---- open / close ------------------------------------------------------------- */

static int create_file(struct journal *j, struct gerr **err)
{
	struct stat st;
	if (stat(j->path, &st) == 0)
		return 0;
	if (errno != ENOENT)
		return gerr_sys(err, "stat %s", j->path);
	return write_file_atomic(j->path, jr_magic, HDR_SIZE, 0644, err);
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
	if (jr_lock(j, LOCK_APPEND, err) < 0)
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
				r = jr_reconcile_locked(j, &rec, err);
		}
	}
	jr_unlock(j, LOCK_APPEND);
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
	if (!jr_type_ok(type, tlen) || str_has_prefix(type, "journal."))
		return gerr_set(err, GERR_FAIL,
				"invalid journal record type '%.*s': want 1-%d of [a-z0-9._-], "
				"starting with a letter, not journal.*",
				JOURNAL_TYPE_MAX, type, JOURNAL_TYPE_MAX);
	if (body_len > JOURNAL_BODY_MAX)
		return gerr_set(err, GERR_FAIL, "journal record body is %zu bytes, over the limit of %u",
				body_len, JOURNAL_BODY_MAX);
	if (jr_lock(j, LOCK_APPEND, err) < 0)
		return -1;
	if (jr_refresh_locked(j, err) < 0) {
		jr_unlock(j, LOCK_APPEND);
		return gerr_wrap(err, "append to journal %s", j->path);
	}
	uint64_t seq = atomic_load(&m->last_seq) + 1;
	jr_encode(&j->wbuf, seq, 0, type, body, body_len);
	if (jr_crash_due(JOURNAL_CRASH_MID_WRITE) && jr_write_all(j->fd, j->wbuf.buf, j->wbuf.len / 2) == 0)
		raise(SIGKILL);
	if (jr_write_all(j->fd, j->wbuf.buf, j->wbuf.len) < 0) {
		int e = errno;
		if (ftruncate(j->fd, (off_t)atomic_load(&m->end)) < 0) {
			/* the next append's refresh truncates the torn tail */
		}
		jr_unlock(j, LOCK_APPEND);
		errno = e;
		return gerr_sys(err, "append to journal %s", j->path);
	}
	jr_crash_point(JOURNAL_CRASH_AFTER_WRITE);
	atomic_store(&m->last_seq, seq); /* publish only whole records */
	jr_crash_point(JOURNAL_CRASH_MID_PUBLISH);
	atomic_store(&m->end, atomic_load(&m->end) + j->wbuf.len);
	uint64_t hist = atomic_load(&m->hist);
	jr_unlock(j, LOCK_APPEND);
	if (jr_sync_upto(j, seq, hist, err) < 0)
		return -1;
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}
