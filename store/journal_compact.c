/* journal_compact.c: compaction (store.h) — PATH rewritten as a snapshot and the
 * records after it, through PATH.compact, fsync and rename, under the append lock. */
#include "store/internal.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

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
	jr_encode(&j->wbuf, covers, JOURNAL_F_SNAPSHOT, JOURNAL_SNAPSHOT_TYPE, snap, snap_len);
	if (jr_write_all(fd, jr_magic, HDR_SIZE) < 0 || jr_write_all(fd, j->wbuf.buf, j->wbuf.len) < 0) {
		gerr_sys(err, "write %s", j->tmp_path);
		goto fail;
	}
	jr_scan_init(&s, j, j->fd, HDR_SIZE, end);
	while (seen < last && (sr = jr_scan_next(&s, &r, &why, err)) == SCAN_REC) {
		bool snapshot = r.flags & JOURNAL_F_SNAPSHOT;
		if (seen == 0 && (snapshot ? covers < r.seq : covers + 1 < r.seq)) {
			jr_scan_done(&s, j);
			gerr_set(err, GERR_FAIL, "cannot compact to sequence %llu: the journal starts at %llu",
				 (unsigned long long)covers, (unsigned long long)r.seq);
			goto fail;
		}
		seen = r.seq;
		if (r.seq > covers && jr_write_all(fd, s.buf + s.pos - r.size, r.size) < 0) {
			jr_scan_done(&s, j);
			gerr_sys(err, "write %s", j->tmp_path);
			goto fail;
		}
	}
	jr_scan_done(&s, j);
	if (seen < last) {
		if (sr >= 0)
			gerr_set(err, GERR_IO, "%s at offset %llu; reopen the journal to recover", why,
				 (unsigned long long)jr_scan_off(&s));
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
	if (jr_refresh_locked(j, err) < 0)
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
	jr_crash_point(JOURNAL_CRASH_COMPACT_RENAMED);
	int r = fsync_dir(j, err);
	if (jr_lock(j, LOCK_SYNC, r < 0 ? NULL : err) < 0) {
		close(fd);
		return -1;
	}
	atomic_store(&m->dirty, 1);
	atomic_fetch_add(&m->gen, 1);
	atomic_store(&m->dev, (uint64_t)st.st_dev);
	atomic_store(&m->ino, (uint64_t)st.st_ino);
	jr_crash_point(JOURNAL_CRASH_COMPACT_WINDOW);
	atomic_store(&m->end, (uint64_t)st.st_size);
	if (r == 0) /* everything in the new file is durable */
		jr_publish_durable(m, atomic_load(&m->last_seq));
	atomic_store(&m->dirty, 0);
	jr_unlock(j, LOCK_SYNC);
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
	if (jr_lock(j, LOCK_APPEND, err) < 0)
		return -1;
	int r = compact_locked(j, covers_seq, snapshot, snapshot_len, min_bytes, ret_done, err);
	jr_unlock(j, LOCK_APPEND);
	if (r < 0)
		gerr_wrap(err, "compact journal %s", j->path);
	return r;
}
