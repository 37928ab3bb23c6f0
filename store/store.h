/* store: the git source (open, clone, fetch, resolve a ref, read a tree, commit
 * one file back and push it) and the node journal (append-only records, fsync, recovery, compaction).
 *
 * Ownership: a store_source owns its libgit2 handles; store_file arrays returned
 * to the caller are the caller's to free with store_files_free().
 */
#ifndef GITOPS_STORE_H
#define GITOPS_STORE_H

#include <jansson.h>

#include "lib/lib.h"

/* ---- git source ----------------------------------------------------------- */
struct store_source_opts {
	const char *repo;      /* local path (worktree or bare) or URL (https, ssh, file) */
	const char *ref;       /* branch, tag or commit (full or abbreviated); NULL = HEAD */
	const char *path;      /* subtree to read; NULL or "" = whole tree */
	const char *state_dir; /* URL clones are cached under STATE_DIR/repos/<hash> */
	bool no_fetch;         /* for a cached URL clone: do not fetch */
};

struct store_source;

struct store_file {
	char *path;  /* relative to the repository root, e.g. "clusters/prod/web.yaml" */
	char *data;  /* file bytes, NUL-terminated (len excludes the NUL) */
	size_t len;
};

/* Open (cloning or fetching a URL into the cache) and resolve the ref to a commit.
 * A missing repository, ref or path is an error of code GERR_IO with a one-line
 * reason ("ref 'nope' not found in /x/repo"). */
int store_source_open(const struct store_source_opts *o, struct store_source **ret,
		      struct gerr **err);
void store_source_close(struct store_source *s);
const char *store_source_commit(const struct store_source *s);      /* 40 hex */
const char *store_source_short_commit(const struct store_source *s); /* 7 hex */
/* The commit's subject line and author time; subject is owned by the source. */
const char *store_source_subject(const struct store_source *s);
int64_t store_source_time(const struct store_source *s);

/* Every *.yaml, *.yml and *.json blob under the path (recursively), read from the
 * object database (never checked out), minus those a `.gitopsignore` (gitignore
 * syntax; at the repository root and in any directory, as .gitignore) excludes,
 * in byte order of their paths. Files over max_bytes (0: no limit) are an error
 * naming the file. Symlinks and submodules are skipped. */
int store_source_files(struct store_source *s, size_t max_bytes, struct store_file **ret,
		       size_t *ret_n, struct gerr **err);
void store_files_free(struct store_file *f, size_t n);

/* The branch the source was read from ("main"; HEAD: the branch checked out),
 * when its ref named one; NULL for a tag, a commit, an expression or a detached
 * HEAD. Owned by the source. */
const char *store_source_branch(const struct store_source *s);
/* The source is a URL's cache (the controller's clone), not a local repository. */
bool store_source_is_url(const struct store_source *s);
/* One file (path relative to the repository root) at the source's commit, any
 * name; NUL-terminated, caller frees. Missing or over max_bytes (0: no limit): an error. */
int store_source_read(struct store_source *s, const char *path, size_t max_bytes, char **ret,
		      size_t *ret_len, struct gerr **err);

/* ---- writing back (`rollout undo --commit --push`) ---------------------------
 * store_commit_file() commits new contents of one existing file onto the source's
 * branch, the source's commit its only parent; the source then stands for the new
 * commit (store_source_commit() and the files read after it). Author and committer
 * are user.name/user.email of the repository's configuration, else
 * "gitops <gitops@localhost>". Nothing is changed when it fails before the branch
 * moved; errors of code GERR_FAIL are refusals:
 *   - the source was not read from a branch;
 *   - the branch no longer points at the source's commit (someone committed since);
 *   - the branch is checked out in the repository's work tree and the file has
 *     staged or unstaged changes there;
 *   - the contents are those of the commit already.
 * A checked-out branch gets its working file (mode kept, written atomically) and
 * index entry updated after the commit; a bare repository or another branch only
 * the ref. For a URL source the commit goes onto the branch of the cache under the
 * cache's exclusive lock, which the source holds until store_source_close(); the
 * cache mirrors the remote, so the next fetch drops the commit unless it was pushed.
 *
 * store_push() pushes the branch to the same branch of the remote: a URL source's
 * URL, else branch.B.pushRemote, remote.pushDefault, branch.B.remote or "origin"
 * (its pushurl or url; insteadOf applied), then moves that remote's tracking ref.
 * A push the remote does not take (non-fast-forward, or refused by the remote) is
 * GERR_FAIL and leaves the local branch as it is; an unreachable remote GERR_IO.
 * *ret_remote (may be NULL) gets the remote's name or the redacted URL, caller frees. */
struct store_commit {
	const char *path;    /* relative to the repository root; must exist at the source's commit */
	const char *data;    /* the new contents, len bytes */
	size_t len;
	const char *message; /* subject line, blank line, body */
};
int store_commit_file(struct store_source *s, const struct store_commit *c, struct gerr **err);
int store_push(struct store_source *s, char **ret_remote, struct gerr **err);

/* /var/lib/gitops for root, else $XDG_STATE_HOME/gitops (~/.local/state/gitops).
 * Caller frees. */
char *store_default_state_dir(void);

/* .gitopsignore matching (gitignore syntax: *, ?, [...], **, leading '/' anchors,
 * trailing '/' directories only, '!' negates, '#' comments, later patterns win).
 * Pure: no git, no files; store_source_files() drives it, and so can a test.
 *
 * Calling sequence: store_ignore_new(); store_ignore_add() once per .gitopsignore,
 * a directory's before its subdirectories'; store_ignore_excluded() per path;
 * store_ignore_free(). count/truncate drop the patterns of a subtree once walked.
 * Paths are relative to the repository root, '/'-separated, no leading '/'. */
struct store_ignore;
struct store_ignore *store_ignore_new(void);
void store_ignore_free(struct store_ignore *ig);
/* Add the patterns of the .gitopsignore in directory dir ("" = root, else "a/b");
 * they apply beneath dir only. text need not be NUL-terminated. */
void store_ignore_add(struct store_ignore *ig, const char *dir, const char *text, size_t len);
size_t store_ignore_count(const struct store_ignore *ig);
void store_ignore_truncate(struct store_ignore *ig, size_t n);
/* True when path, or a directory above it, is excluded (as in git, a file under
 * an excluded directory cannot be re-included). is_dir: path is a directory. */
bool store_ignore_excluded(const struct store_ignore *ig, const char *path, bool is_dir);

/* ---- journal -------------------------------------------------------------- */
/* The node journal: one append-only file of records shared by every process of
 * the node (one `gitops shim` per container, the controller, the CLI). Appends are
 * durable when journal_append() returns; concurrent appends from many processes
 * share one fdatasync (group commit). Opening recovers from a crash by truncating
 * at the first torn or corrupt record.
 *
 * Files, next to each other:
 *   PATH          the records
 *   PATH.state    locks (OFD byte-range locks: byte 0 appends, byte 1 syncs) and a
 *                 page of shared state (mmap'ed): end offset, last and durable
 *                 sequence, generation. Never authoritative — rebuilt from PATH on
 *                 open and whenever it disagrees with PATH. Do not delete it while
 *                 the journal is in use (processes would stop excluding each other).
 *   PATH.compact  a compaction's temporary file (stale ones are removed)
 *
 * On-disk format, integers little-endian:
 *   header  8 bytes "GOJRNL\0\1"
 *   record  u32 len       bytes after the crc field: 24 + type_len + body_len
 *           u32 crc       CRC32C (Castagnoli) of the len field and of the len bytes
 *                         after the crc field
 *           u64 seq
 *           i64 time_ns   CLOCK_REALTIME at append
 *           u16 type_len  1..JOURNAL_TYPE_MAX
 *           u16 flags     JOURNAL_F_SNAPSHOT or 0
 *           u32 body_len  <= JOURNAL_BODY_MAX (JOURNAL_SNAPSHOT_MAX for a snapshot)
 *           type bytes ([a-z0-9._-], starting with a letter), body bytes
 * Invariants: sequence numbers increase by exactly one from record to record; only
 * the first record may be a snapshot, and its seq is the last sequence it covers
 * (records up to it were compacted away; the next record is seq + 1).
 *
 * Limits: types up to 64 bytes; bodies up to 1 MiB (snapshots 64 MiB). The journal
 * treats bodies as bytes (callers put JSON there).
 *
 * Handles: a struct journal owns its fds, its mapping and its buffers; it is not
 * thread-safe (open one per thread) and must not be used across fork() (open a
 * new one in the child: locks belong to the open file description). Every pointer
 * in a struct journal_rec is valid only during the callback.
 */
#define JOURNAL_TYPE_MAX 64
#define JOURNAL_BODY_MAX (1u << 20)
#define JOURNAL_SNAPSHOT_MAX (64u << 20)
#define JOURNAL_F_SNAPSHOT 1u
#define JOURNAL_SNAPSHOT_TYPE "journal.snapshot" /* types "journal.*" are reserved */

enum { JOURNAL_CREATE = 1 }; /* journal_open flags: create PATH if missing */

struct journal;

/* What opening found and dropped. reason is a static string, NULL when nothing
 * was dropped. dropped_records counts the bad record plus any whole records found
 * after it (they cannot be kept: history must stay a gapless prefix). */
struct journal_recovery {
	uint64_t records;         /* records kept (a snapshot counts as one) */
	uint64_t last_seq;        /* 0 for an empty journal */
	uint64_t dropped_bytes;
	uint64_t dropped_records;
	uint64_t bad_offset;      /* file offset of the first bad record */
	const char *reason;       /* "torn record", "CRC mismatch", "bad record length", ... */
};

/* Open (and with JOURNAL_CREATE, create) the journal at path, recovering it: scan
 * every record, truncate at the first torn or corrupt one and report in
 * *ret_recovery (may be NULL). A file that is not a journal (bad header) is an
 * error and is left untouched. Costs one read of the file (CRC-checked) and one
 * fdatasync, holding the append lock meanwhile. Errors: GERR_IO. */
int journal_open(const char *path, unsigned flags, struct journal **ret,
		 struct journal_recovery *ret_recovery, struct gerr **err);
void journal_close(struct journal *j); /* accepts NULL */

/* Append one record and return once it is durable (fdatasync'ed, possibly by
 * another process's group commit), with its sequence number in *ret_seq (may be
 * NULL). type: see the format above, "journal.*" is reserved; body: body_len
 * bytes, at most JOURNAL_BODY_MAX. Bad input is GERR_FAIL, I/O errors GERR_IO
 * (after an I/O error the record may or may not be in the journal). */
int journal_append(struct journal *j, const char *type, const void *body, size_t body_len,
		   uint64_t *ret_seq, struct gerr **err);

struct journal_rec {
	uint64_t seq;       /* for a snapshot: the last sequence it covers */
	int64_t time_ns;
	bool snapshot;      /* body is the state as of seq, not a transition */
	const char *type;   /* NUL-terminated */
	const char *body;   /* NUL-terminated for convenience; body_len excludes it */
	size_t body_len;
};

/* A callback returns 0 to go on, > 0 to stop (journal_since returns that value),
 * < 0 to fail (setting *err; a generic error is set if it did not). */
typedef int journal_fn(const struct journal_rec *r, void *arg, struct gerr **err);

/* Call fn for every durable record with seq > after, in order. When records after
 * `after` were compacted away, the snapshot comes first (r->snapshot set, r->seq
 * the last sequence it covers), then the records after it; after = 0 therefore
 * reads the whole current state. Takes no lock (except to reopen PATH after a
 * compaction): readers do not block writers.
 * Repeated calls with after = the last seq seen resume where the previous call
 * stopped (no rescan). Returns 0 (or the callback's positive value) or -1. */
int journal_since(struct journal *j, uint64_t after, journal_fn *fn, void *arg,
		  struct gerr **err);

/* The last durable sequence number (0 for an empty journal). */
uint64_t journal_last_seq(struct journal *j);

struct journal_info {
	uint64_t size;         /* bytes in PATH */
	uint64_t first_seq;    /* seq of the first record (a snapshot's covered seq); 0 if none */
	bool has_snapshot;     /* the first record is a snapshot */
	uint64_t last_seq;     /* last durable sequence */
	uint64_t syncs;        /* fdatasyncs done by appends since the state was created */
	uint64_t repairs;      /* tails fixed up after a writer died mid-append, ditto */
};
int journal_info(struct journal *j, struct journal_info *ret, struct gerr **err);

/* Compaction: when PATH holds at least min_bytes, rewrite it as a snapshot record
 * (body: the caller's JSON of the state as of covers_seq) followed by every record
 * after covers_seq, via PATH.compact → fsync → rename → fsync(dir), holding the
 * append lock so no concurrent append is lost (appends wait meanwhile; other
 * handles reopen the new file afterwards). covers_seq must be between the current first record's seq (the existing
 * snapshot's, or first_seq - 1) and the last sequence. *ret_done (may be NULL)
 * says whether it rewrote. */
int journal_compact(struct journal *j, uint64_t covers_seq, const void *snapshot,
		    size_t snapshot_len, uint64_t min_bytes, bool *ret_done, struct gerr **err);

/* Tests only (git's test-tool idea): make this process SIGKILL itself the nth time
 * (from 1) it reaches a point of the protocol, to hit windows that random kills
 * rarely do. JOURNAL_CRASH_NONE disarms. */
enum journal_crash_point {
	JOURNAL_CRASH_NONE,
	JOURNAL_CRASH_MID_WRITE,       /* half the record written */
	JOURNAL_CRASH_AFTER_WRITE,     /* whole record written, nothing published */
	JOURNAL_CRASH_MID_PUBLISH,     /* last_seq published, end not */
	JOURNAL_CRASH_SYNCED,          /* fdatasync done, durable_seq not published */
	JOURNAL_CRASH_RECONCILE,       /* inside recovery's update of the shared state */
	JOURNAL_CRASH_REPAIR,          /* repairing a dead writer's tail, mid-publish */
	JOURNAL_CRASH_COMPACT_RENAMED, /* compacted file renamed over PATH, unpublished */
	JOURNAL_CRASH_COMPACT_WINDOW,  /* inside compaction's update of the shared state */
};
void journal_debug_crash_at(int point, unsigned nth);

/* CRC32C (Castagnoli, as iSCSI and ext4): crc = 0 to start, chain by passing the
 * previous result. Uses SSE4.2 when the CPU has it; journal_crc32c_sw is the
 * table-driven fallback (exposed for tests). */
uint32_t journal_crc32c(uint32_t crc, const void *data, size_t n);
uint32_t journal_crc32c_sw(uint32_t crc, const void *data, size_t n);

/* ---- cluster state (cluster.c) ----------------------------------------------- */
/* What the controller decided (allocations, revisions, pins, the last synced
 * commit), replicated to every node: an object of key → {"v": version, "value": V}.
 * Merges keep the higher version per key (ties: the larger canonical JSON), so
 * merging in any order converges. A deleted key holds "value": null. */
/* Merge other into into; returns how many keys changed. */
size_t cluster_merge(json_t *into, const json_t *other);
/* A key's value, or NULL when absent or deleted. Borrowed reference. */
const json_t *cluster_get(const json_t *cs, const char *key);
/* Set (value steals a reference; NULL deletes) with a version above every other
 * key's; returns whether anything changed. */
bool cluster_set(json_t *cs, const char *key, json_t *value);

#endif
