/* store/internal.h: what git.c and writeback.c share, and what the journal's files
 * share; private to store/. */
#ifndef GITOPS_STORE_INTERNAL_H
#define GITOPS_STORE_INTERNAL_H

#include <git2.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "store/store.h"

#define CRED_MAX_TRIES 3            /* libgit2 asks again after a rejected credential */

struct store_source {
	git_repository *repo;
	git_commit *commit;
	git_tree *tree;     /* the tree at path */
	char *name;         /* --repo as given, password redacted: for messages */
	char *path;         /* subtree, normalized: "" (root) or "a/b" */
	char *subject;
	int64_t time;
	char commit_hex[GIT_OID_HEXSZ + 1];
	char short_hex[8];
	char *branch_ref;   /* "refs/heads/main" when the ref named a branch, else NULL */
	char *url;          /* a URL source: the URL as given (credentials stay in memory) */
	char *lock_path;    /* a URL source: the cache's lock file */
	int lock_fd;        /* held from a commit into the cache until close; else -1 */
};

struct cred_state {   /* store_cred_cb's payload */
	int tries;
};

/* git.c */
const char *store_git_msg(void);          /* libgit2's last error message */
int store_lock_cache(const char *lock_path, bool shared, struct gerr **err);
int store_cred_cb(git_credential **out, const char *url, const char *user, unsigned int allowed, void *payload);
char *store_insteadof(git_repository *repo, const char *url);
void store_take_commit(struct store_source *s, git_commit *c);
int store_open_tree(struct store_source *s, struct gerr **err);

/* ---- the journal's files among themselves (journal*.c; nothing else uses these) ---- */
/* Record layout: store.h. */
#define HDR_SIZE 8u
#define REC_PREFIX 8u  /* len + crc */
#define REC_FIXED 24u  /* seq, time, type_len, flags, body_len */
#define REC_HDR (REC_PREFIX + REC_FIXED)

#define LOCK_APPEND 0  /* the byte of PATH.state each lock is on */
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

/* journal_format.c */
extern const char jr_magic[8];  /* the file's header, HDR_SIZE bytes */
/* Little-endian fields of an encoded record. */
uint16_t jr_get16(const unsigned char *p);
uint64_t jr_get64(const unsigned char *p);
/* A valid record type of n bytes (store.h). */
bool jr_type_ok(const char *t, size_t n);
/* Replace sb's contents with one encoded record, stamped now. */
void jr_encode(struct sbuf *sb, uint64_t seq, uint16_t flags, const char *type,
	       const void *body, size_t body_len);
/* A scan over [start, limit) of fd borrows j's read buffer until jr_scan_done. */
void jr_scan_init(struct scan *s, struct journal *j, int fd, uint64_t start, uint64_t limit);
void jr_scan_done(struct scan *s, struct journal *j);
uint64_t jr_scan_off(const struct scan *s);  /* the file offset of pos */
/* The record at pos, checked alone: SCAN_REC, SCAN_BAD (*reason), SCAN_END or -1. */
int jr_scan_next(struct scan *s, struct raw *r, const char **reason, struct gerr **err);
/* fd starts with jr_magic, else an error naming path. */
int jr_check_header(int fd, const char *path, struct gerr **err);

/* journal_state.c */
/* A point of journal_debug_crash_at reached: jr_crash_point dies if it is due;
 * jr_crash_due only says so (the caller does something first). */
bool jr_crash_due(int point);
void jr_crash_point(int point);
/* Take (waiting) and release LOCK_APPEND or LOCK_SYNC. */
int jr_lock(struct journal *j, off_t which, struct gerr **err);
void jr_unlock(struct journal *j, off_t which);
/* Under the sync lock: publish durable_seq, wake whoever waits for it. */
void jr_publish_durable(struct jshm *m, uint64_t seq);
/* Under the append lock: rebuild the shared state from PATH (recovery). */
int jr_reconcile_locked(struct journal *j, struct journal_recovery *ret_rec,
			struct gerr **err);
/* Under the append lock: bring j->fd and the shared state in line with PATH;
 * jr_refresh takes the lock for it. */
int jr_refresh_locked(struct journal *j, struct gerr **err);
int jr_refresh(struct journal *j, struct gerr **err);
/* Return once seq is durable (group commit); hist: shm->hist when it was published. */
int jr_sync_upto(struct journal *j, uint64_t seq, uint64_t hist, struct gerr **err);

/* journal.c */
int jr_write_all(int fd, const void *data, size_t len);  /* -1 with errno */

#endif
