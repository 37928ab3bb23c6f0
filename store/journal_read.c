/* journal_read.c: the queries (store.h): journal_since, journal_last_seq and
 * journal_info. Readers take no lock: they read records up to durable_seq, which
 * are whole. */
#include "store/internal.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
		if ((dirty || g != j->gen) && jr_refresh(j, err) < 0)
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
	jr_scan_init(&s, j, j->fd, start, UINT64_MAX);
	while (seen < durable) {
		sr = jr_scan_next(&s, &r, &why, err);
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
				      j->path, why, (unsigned long long)jr_scan_off(&s),
				      (unsigned long long)durable);
			break;
		}
		expect = 0;
		seen = r.seq;
		j->hint_ok = true;
		j->hint_gen = j->gen;
		j->hint_hist = hist;
		j->hint_seq = r.seq;
		j->hint_off = jr_scan_off(&s);
		if (r.seq <= after)
			continue;
		rc = deliver(j, &r, fn, arg, err);
		if (rc != 0)
			break;
	}
	jr_scan_done(&s, j);
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
		ret->first_seq = jr_get64(h + 8);
		ret->has_snapshot = jr_get16(h + 26) & JOURNAL_F_SNAPSHOT;
	}
	return 0;
}
