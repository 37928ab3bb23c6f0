/* alloc.c: checked allocation, the error type, string vectors, the arena. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
	fprintf(stderr, "gitops: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	if (size && nmemb > SIZE_MAX / size)
		oom(SIZE_MAX);
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

void *xreallocarray(void *p, size_t nmemb, size_t size)
{
	if (size && nmemb > SIZE_MAX / size)
		oom(SIZE_MAX);
	return xrealloc(p, nmemb * size);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return sb_detach(&sb, NULL);
}

void *xgrow(void *arr, size_t *alloc, size_t n, size_t sz)
{
	if (n <= *alloc)
		return arr;
	size_t want = *alloc < 8 ? 8 : *alloc;
	while (want < n) {
		if (want > SIZE_MAX / 2)
			oom(SIZE_MAX);
		want *= 2;
	}
	arr = xreallocarray(arr, want, sz);
	*alloc = want;
	return arr;
}

void freezero(void *p, size_t n)
{
	if (!p)
		return;
	explicit_bzero(p, n);
	free(p);
}

/* ---- errors ---- */

static int gerr_vset(struct gerr **err, int code, int errnum, const char *fmt, va_list ap)
{
	if (!err || *err)
		return -1;
	struct gerr *e = xcalloc(1, sizeof(*e));
	struct sbuf sb = SBUF_INIT;
	sb_vaddf(&sb, fmt, ap);
	if (errnum)
		sb_addf(&sb, ": %s", strerror(errnum));
	e->code = code;
	e->errnum = errnum;
	e->msg = sb_detach(&sb, NULL);
	*err = e;
	return -1;
}

int gerr_set(struct gerr **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	gerr_vset(err, code, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int gerr_sys(struct gerr **err, const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;
	va_start(ap, fmt);
	gerr_vset(err, GERR_IO, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int gerr_wrap(struct gerr **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -1;
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	sb_addf(&sb, ": %s", (*err)->msg);
	free((*err)->msg);
	(*err)->msg = sb_detach(&sb, NULL);
	return -1;
}

void gerr_free(struct gerr *e)
{
	if (!e)
		return;
	free(e->msg);
	free(e);
}

void gerr_clear(struct gerr **err)
{
	if (err) {
		gerr_free(*err);
		*err = NULL;
	}
}

/* ---- strvec ---- */

void strvec_push(struct strvec *sv, const char *s)
{
	GROW(sv->v, sv->alloc, sv->n + 2);
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

void strvec_pushf(struct strvec *sv, const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	GROW(sv->v, sv->alloc, sv->n + 2);
	sv->v[sv->n++] = sb_detach(&sb, NULL);
	sv->v[sv->n] = NULL;
}

void strvec_pushv(struct strvec *sv, const char *const *v)
{
	for (; v && *v; v++)
		strvec_push(sv, *v);
}

void strvec_clear(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->alloc = 0;
}

const char *const *strvec_argv(struct strvec *sv)
{
	static const char *const none[] = { NULL };
	return sv->v ? (const char *const *)sv->v : none;
}

/* ---- arena ---- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t size, used;
	max_align_t data[];
};

#define ARENA_CHUNK (256 * 1024)

void arena_init(struct arena *a, size_t limit)
{
	a->head = NULL;
	a->used_total = 0;
	a->limit = limit;
}

static void *arena_take(struct arena *a, size_t n, size_t align)
{
	n = (n + align - 1) & ~(align - 1);
	if (a->limit && (n > a->limit || a->used_total > a->limit - n))
		return NULL;
	struct arena_chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t size = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
		c = xmalloc(sizeof(*c) + size);
		c->size = size;
		c->used = 0;
		if (n > ARENA_CHUNK / 4 && a->head) {
			/* big block: keep the current chunk at the head for small ones */
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	a->used_total += n;
	return p;
}

void *arena_alloc(struct arena *a, size_t n)
{
	/* keep the chunk's fill aligned for the next aligned allocation */
	struct arena_chunk *c = a->head;
	const size_t align = sizeof(max_align_t);
	if (c && (c->used & (align - 1))) {
		size_t pad = align - (c->used & (align - 1));
		if (c->size - c->used >= pad) {
			c->used += pad;
			a->used_total += pad;
		}
	}
	void *p = arena_take(a, n, align);
	if (p)
		memset(p, 0, n);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_take(a, n + 1, 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

void arena_release(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used_total = 0;
}

/* ---- parsing ---- */

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

size_t edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return cap;
	if ((la > lb ? la - lb : lb - la) >= cap)
		return cap;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		size_t best = row[0];
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t v = prev + cost;
			if (row[j] + 1 < v)
				v = row[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			prev = cur;
			if (v < best)
				best = v;
		}
		if (best >= cap)
			return cap;
	}
	return row[lb] < cap ? row[lb] : cap;
}
