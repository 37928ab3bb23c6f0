/* lib: the bottom layer — strings, vectors, an arena, errors, child processes.
 *
 * Depends on nothing of ours and only on libc. Every other module may use it.
 *
 * Memory: allocation failure aborts (x* wrappers); nothing here returns NULL
 * for lack of memory. Destructors accept NULL. Out-parameters are named ret_*.
 *
 * Error contract (crun's): a function that can fail takes `struct gerr **err`
 * last, returns a negative value on failure and sets *err (if err is non-NULL
 * and *err is NULL), and leaves *err untouched on success. Callers add context
 * on the way up with gerr_wrap(). Messages say what is wrong first and carry
 * no full stop.
 */
#ifndef GITOPS_LIB_H
#define GITOPS_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define UNUSED __attribute__((unused))

/* ---- allocation ---------------------------------------------------------- */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size); /* checks nmemb * size overflow */
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Grow *arr (of *alloc elements of size sz) to hold at least n elements. */
void *xgrow(void *arr, size_t *alloc, size_t n, size_t sz);
#define GROW(arr, alloc, n) ((arr) = xgrow((arr), &(alloc), (n), sizeof(*(arr))))
/* Wipe then free (secrets). */
void freezero(void *p, size_t n);

/* ---- errors -------------------------------------------------------------- */
enum {
	GERR_FAIL = 1,    /* the operation failed (e.g. invalid input) */
	GERR_IO = 2,      /* could not read / reach something */
	GERR_USAGE = 2,   /* bad command line */
};

struct gerr {
	int code;  /* GERR_* class; cli maps it to an exit status */
	int errnum; /* errno when the cause was a system call, else 0 */
	char *msg;
};

/* Set *err (unless err is NULL or *err already set); always returns -1. */
int gerr_set(struct gerr **err, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Like gerr_set, appending ": strerror(errno)". */
int gerr_sys(struct gerr **err, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Prefix context to an existing error: "CONTEXT: old message"; returns -1. */
int gerr_wrap(struct gerr **err, const char *fmt, ...) PRINTF_LIKE(2, 3);
void gerr_free(struct gerr *e);
void gerr_clear(struct gerr **err);

/* ---- growable string ----------------------------------------------------- */
/* Invariant: buf is never NULL and always NUL-terminated at buf[len]. */
struct sbuf {
	char *buf;
	size_t len;
	size_t alloc;
};
extern char sbuf_empty[];
#define SBUF_INIT { sbuf_empty, 0, 0 }

void sb_init(struct sbuf *sb);
void sb_grow(struct sbuf *sb, size_t extra);
void sb_add(struct sbuf *sb, const void *data, size_t n);
void sb_adds(struct sbuf *sb, const char *s);
void sb_addc(struct sbuf *sb, char c);
void sb_addf(struct sbuf *sb, const char *fmt, ...) PRINTF_LIKE(2, 3);
void sb_vaddf(struct sbuf *sb, const char *fmt, va_list ap);
void sb_reset(struct sbuf *sb);       /* len = 0, keep memory */
void sb_setlen(struct sbuf *sb, size_t len);
void sb_release(struct sbuf *sb);     /* free memory, back to empty */
char *sb_detach(struct sbuf *sb, size_t *ret_len); /* caller owns result */
/* Append the contents of fd until EOF; fails past max bytes. */
int sb_read_fd(struct sbuf *sb, int fd, size_t max, struct gerr **err);
int sb_read_file(struct sbuf *sb, const char *path, size_t max, struct gerr **err);

/* ---- vector of strings (argv) -------------------------------------------- */
/* Invariant: v is NULL-terminated (v[n] == NULL) once anything was pushed. */
struct strvec {
	char **v;
	size_t n;
	size_t alloc;
};
#define STRVEC_INIT { NULL, 0, 0 }
void strvec_push(struct strvec *sv, const char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...) PRINTF_LIKE(2, 3);
void strvec_pushv(struct strvec *sv, const char *const *v);
void strvec_clear(struct strvec *sv);
const char *const *strvec_argv(struct strvec *sv); /* never NULL */

/* ---- arena: many small allocations freed at once -------------------------- */
struct arena_chunk;
struct arena {
	struct arena_chunk *head;
	size_t used_total;  /* bytes handed out */
	size_t limit;       /* 0 = unlimited; past it arena_alloc returns NULL */
};
void arena_init(struct arena *a, size_t limit);
/* Returns zeroed memory aligned for any type, or NULL past the limit. */
void *arena_alloc(struct arena *a, size_t n);
/* Strings are packed with no alignment; NULL past the limit. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
void arena_release(struct arena *a);

/* ---- parsing helpers: bounded, no atoi ------------------------------------ */
/* Whole string must be a base-10 integer within [min, max]. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret);
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* Levenshtein distance, capped at cap (returns cap when >= cap). */
size_t edit_distance(const char *a, const char *b, size_t cap);

/* ---- child processes ------------------------------------------------------ */
/* Start argv[0] (absolute path, or looked up in PATH when it has no '/'),
 * never through a shell. Every fd other than 0/1/2 is closed in the child.
 *
 * Calling sequence: fill a struct child (argv required; the rest optional),
 * call child_run() to run to completion, or child_start()/child_finish().
 *
 *   in      bytes written to the child's stdin (then closed); NULL: /dev/null,
 *           or the caller's own stdin when inherit_in is set (interactive
 *           commands: `gitops exec -i`, a tty)
 *   out,errb when non-NULL, stdout/stderr are captured into them (bounded by
 *           out_max/err_max, default 16 MiB; excess is drained and dropped);
 *           when NULL, they are inherited
 *   env     when non-NULL, the complete environment (NULL-terminated)
 *   timeout_ms  0 = none; on expiry the child gets SIGKILL and status is 128+9
 *
 * The status returned is the exit code, or 128+signal, or -1 on failure to
 * start (err set).
 */
struct child {
	const char *const *argv;
	const char *const *env;
	const char *dir;          /* chdir in the child */
	const char *in;
	size_t in_len;
	bool inherit_in;          /* in == NULL: share the caller's stdin, not /dev/null */
	struct sbuf *out;
	struct sbuf *errb;
	size_t out_max;
	int timeout_ms;
	/* private */
	pid_t pid;
	int fd_in, fd_out, fd_err;
};
int child_run(struct child *c, struct gerr **err);
/* Resolve a program name in PATH; returns malloc'ed absolute path or NULL. */
char *which(const char *prog);

/* ---- base64 (RFC 4648, padded): lenient on \r\n, strict on the alphabet ---- */
void base64_encode(const void *data, size_t n, struct sbuf *out);
bool base64_decode(const char *in, size_t len, struct sbuf *out);

/* The version of gitops (git describe at build time). */
const char *gitops_version(void);

/* ---- files ---------------------------------------------------------------- */
/* tmp → fsync → rename → fsync(dir). */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct gerr **err);
int mkdir_p(const char *path, mode_t mode, struct gerr **err);

#endif
