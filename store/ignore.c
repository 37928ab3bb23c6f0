/* ignore.c: the .gitopsignore matcher (gitignore syntax), a pure function of the
 * patterns and a path; it knows nothing of git and reads no files.
 *
 * Ownership: a store_ignore owns copies of its patterns (malloc'ed, freed by
 * store_ignore_free / store_ignore_truncate).
 */
#include "store/store.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* A line longer than this is not a pattern (it would only bound the glob's
 * recursion, which is one frame per '*'). */
#define IGNORE_MAX_LINE 4096

struct ignore_pat {
	char *glob;     /* leading '/', trailing '/' and '!' removed */
	char *base;     /* directory of the .gitopsignore: "" or "a/b" */
	size_t base_len;
	bool negate;    /* "!pat": re-include */
	bool dir_only;  /* "pat/": directories only */
	bool anchored;  /* had a '/' before its end: matched against the path under base */
};

struct store_ignore {
	struct ignore_pat *v;
	size_t n, alloc;
};

/* ---- the glob: *, ?, [...], ** and \x, never letting * ? [] cross a '/' ---- */

enum { WM_MATCH = 0, WM_NOMATCH = 1, WM_ABORT_ALL = -1, WM_ABORT_TO_STARSTAR = -2 };

static bool class_named(const char *name, size_t len, unsigned char c)
{
	static const struct {
		const char *name;
		int (*fn)(int);
	} classes[] = {
		{ "alnum", isalnum }, { "alpha", isalpha }, { "blank", isblank },
		{ "cntrl", iscntrl }, { "digit", isdigit }, { "graph", isgraph },
		{ "lower", islower }, { "print", isprint }, { "punct", ispunct },
		{ "space", isspace }, { "upper", isupper }, { "xdigit", isxdigit },
	};
	for (size_t i = 0; i < ARRAY_SIZE(classes); i++)
		if (strlen(classes[i].name) == len && memcmp(classes[i].name, name, len) == 0)
			return classes[i].fn(c) != 0;
	return false;
}

/* Match the bracket expression at p ('[') against c; *ret_end gets the ']'.
 * Returns -1 for an unterminated expression (which matches nothing). */
static int match_class(const char *p, unsigned char c, const char **ret_end)
{
	const char *q = p + 1;
	bool negate = false, hit = false;
	if (*q == '!' || *q == '^') {
		negate = true;
		q++;
	}
	for (bool first = true; *q && (first || *q != ']'); first = false) {
		if (q[0] == '[' && q[1] == ':') {
			const char *end = strstr(q + 2, ":]");
			if (end) {
				hit |= class_named(q + 2, (size_t)(end - q - 2), c);
				q = end + 2;
				continue;
			}
		}
		if (*q == '\\' && q[1])
			q++;
		unsigned char lo = (unsigned char)*q++, hi = lo;
		if (q[0] == '-' && q[1] && q[1] != ']') {
			q++;
			if (*q == '\\' && q[1])
				q++;
			hi = (unsigned char)*q++;
		}
		if (lo <= c && c <= hi)
			hit = true;
	}
	if (*q != ']')
		return -1;
	*ret_end = q;
	return hit != negate && c != '/';
}

/* "**" is special only as a whole segment: at the start or after '/', and at
 * the end or before '/'. Otherwise it is an ordinary '*'. */
static int wild(const char *pat, const char *p, const char *t);

static int wild_starstar(const char *pat, const char *last_star, const char *t)
{
	if (last_star[1] == '\0')
		return WM_MATCH; /* a trailing slash-star-star: everything below */
	const char *rest = last_star + 2; /* after "**" and its '/' */
	for (const char *s = t;;) {
		int r = wild(pat, rest, s); /* zero or more leading directories */
		if (r != WM_NOMATCH && r != WM_ABORT_TO_STARSTAR)
			return r;
		s = strchr(s, '/');
		if (!s)
			return WM_ABORT_ALL;
		s++;
	}
}

static int wild_star(const char *pat, const char *p, const char *t)
{
	const char *first = p;
	while (p[1] == '*')
		p++;
	if (p != first && (first == pat || first[-1] == '/') && (p[1] == '\0' || p[1] == '/'))
		return wild_starstar(pat, p, t);
	if (p[1] == '\0')
		return strchr(t, '/') ? WM_ABORT_TO_STARSTAR : WM_MATCH;
	for (;; t++) {
		int r = wild(pat, p + 1, t);
		if (r != WM_NOMATCH)
			return r;
		if (*t == '\0')
			return WM_ABORT_ALL;
		if (*t == '/')
			return WM_ABORT_TO_STARSTAR;
	}
}

static int wild(const char *pat, const char *p, const char *t)
{
	for (; *p; p++, t++) {
		if (*p == '*')
			return wild_star(pat, p, t);
		if (*t == '\0')
			return WM_ABORT_ALL;
		switch (*p) {
		case '?':
			if (*t == '/')
				return WM_NOMATCH;
			break;
		case '[': {
			const char *end;
			int r = match_class(p, (unsigned char)*t, &end);
			if (r < 0)
				return WM_ABORT_ALL;
			if (!r)
				return WM_NOMATCH;
			p = end;
			break;
		}
		default:
			if (*p == '\\' && p[1]) /* escaped; a trailing one is literal */
				p++;
			if (*p != *t)
				return WM_NOMATCH;
		}
	}
	return *t ? WM_NOMATCH : WM_MATCH;
}

static bool glob_match(const char *glob, const char *text)
{
	return wild(glob, glob, text) == WM_MATCH;
}

/* ---- patterns -------------------------------------------------------------- */

struct store_ignore *store_ignore_new(void)
{
	return xcalloc(1, sizeof(struct store_ignore));
}

static void pat_clear(struct ignore_pat *p)
{
	free(p->glob);
	free(p->base);
}

void store_ignore_free(struct store_ignore *ig)
{
	if (!ig)
		return;
	store_ignore_truncate(ig, 0);
	free(ig->v);
	free(ig);
}

size_t store_ignore_count(const struct store_ignore *ig)
{
	return ig->n;
}

void store_ignore_truncate(struct store_ignore *ig, size_t n)
{
	while (ig->n > n)
		pat_clear(&ig->v[--ig->n]);
}

/* Trailing spaces go unless escaped with a backslash; a CR (CRLF files) too. */
static size_t trim_line(const char *s, size_t len)
{
	if (len && s[len - 1] == '\r')
		len--;
	while (len && s[len - 1] == ' ') {
		size_t bs = 0;
		while (bs < len - 1 && s[len - 2 - bs] == '\\')
			bs++;
		if (bs % 2)
			break;
		len--;
	}
	return len;
}

static void add_line(struct store_ignore *ig, const char *dir, const char *s, size_t len)
{
	len = trim_line(s, len);
	if (len == 0 || len > IGNORE_MAX_LINE || s[0] == '#')
		return;
	struct ignore_pat p = { 0 };
	if (s[0] == '!') {
		p.negate = true;
		s++;
		len--;
	}
	while (len && s[len - 1] == '/') {
		p.dir_only = true;
		len--;
	}
	p.anchored = memchr(s, '/', len) != NULL;
	while (len && s[0] == '/') {
		s++;
		len--;
	}
	if (len == 0)
		return;
	p.glob = xstrndup(s, len);
	p.base = xstrdup(dir);
	p.base_len = strlen(dir);
	GROW(ig->v, ig->alloc, ig->n + 1);
	ig->v[ig->n++] = p;
}

void store_ignore_add(struct store_ignore *ig, const char *dir, const char *text, size_t len)
{
	while (dir[0] == '/')
		dir++;
	size_t dlen = strlen(dir);
	while (dlen && dir[dlen - 1] == '/')
		dlen--;
	char *d = xstrndup(dir, dlen);
	const char *end = text + len;
	while (text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		size_t n = nl ? (size_t)(nl - text) : (size_t)(end - text);
		add_line(ig, d, text, n);
		text += n + (nl ? 1 : 0);
	}
	free(d);
}

/* Does p match path itself (not considering its parents)? */
static bool pat_match(const struct ignore_pat *p, const char *path, bool is_dir)
{
	if (p->dir_only && !is_dir)
		return false;
	const char *rel = path;
	if (p->base_len) {
		if (strncmp(path, p->base, p->base_len) != 0 || path[p->base_len] != '/')
			return false;
		rel = path + p->base_len + 1;
	}
	if (p->anchored)
		return glob_match(p->glob, rel);
	const char *slash = strrchr(rel, '/');
	return glob_match(p->glob, slash ? slash + 1 : rel);
}

/* The last pattern that matches decides. */
static bool excluded_self(const struct store_ignore *ig, const char *path, bool is_dir)
{
	for (size_t i = ig->n; i-- > 0;)
		if (pat_match(&ig->v[i], path, is_dir))
			return !ig->v[i].negate;
	return false;
}

bool store_ignore_excluded(const struct store_ignore *ig, const char *path, bool is_dir)
{
	if (!ig || ig->n == 0)
		return false;
	/* A file under an excluded directory cannot be re-included (as git). */
	char *buf = xstrdup(path);
	bool out = false;
	for (char *s = strchr(buf, '/'); s && !out; s = strchr(s + 1, '/')) {
		*s = '\0';
		out = excluded_self(ig, buf, true);
		*s = '/';
	}
	if (!out)
		out = excluded_self(ig, buf, is_dir);
	free(buf);
	return out;
}
