/* network_splice.c: a plan's networkDelta applied to STATE/network.json as text
 * (network.c; docs/node-protocol.md "networkDelta"). network.json is the dump of the
 * controller's network with JSON_COMPACT | JSON_SORT_KEYS, 3.2 MB at 10,000
 * Services: parsing, changing and dumping it whole costs ~100 ms, while the delta
 * names a few Services. So a string-aware scan finds the top level's "services"
 * array and each element's extent and namespace/name (keys sorted: "name" comes
 * before "namespace" at depth 1 of each object), and the changed elements' text is
 * replaced, inserted or deleted, each new one dumped with the same flags. The bytes
 * are then those json_dumps() gives for the whole new network, so the sha256 the
 * node reports is the one the controller computes (tests/unit/test_network_splice.c
 * checks it against the parse-modify-dump of the whole).
 *
 * Order: the controller sends Services sorted by namespace, then name (strcmp,
 * reconcile/network.c); the file must be so (strictly: no two alike), and a new
 * Service goes where that order puts it. Anything the scan does not expect (not
 * compact sorted JSON, an escaped namespace or name, an unsorted array) is an
 * error: the caller refuses the delta. Pure: no I/O. */
#include "runtime/internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the scan ---- */

struct scan {
	const char *p, *end;
};

static bool at(const struct scan *s, char c)
{
	return s->p < s->end && *s->p == c;
}

/* A string at s->p, opening quote included; *ret_* its raw content. */
static bool scan_string(struct scan *s, const char **ret_s, size_t *ret_n)
{
	if (!at(s, '"'))
		return false;
	/* memchr, not a loop per byte (the scan's main cost at 3 MB): a quote ends the
	 * string unless an odd number of backslashes escapes it */
	const char *q = ++s->p;
	for (;;) {
		q = memchr(q, '"', (size_t)(s->end - q));
		if (!q)
			return false;
		const char *b = q;
		while (b > s->p && b[-1] == '\\')
			b--;
		if ((q - b) % 2 == 0)
			break;
		q++;
	}
	if (ret_s) {
		*ret_s = s->p;
		*ret_n = (size_t)(q - s->p);
	}
	s->p = q + 1;
	return true;
}

/* Any value: a string, a scalar, or an object or array with what it holds (depth
 * counted, strings skipped whole, so a '}' in a string is not the end). */
static bool scan_value(struct scan *s)
{
	if (at(s, '"'))
		return scan_string(s, NULL, NULL);
	if (!at(s, '{') && !at(s, '[')) {
		const char *q = s->p;
		while (q < s->end && *q != ',' && *q != '}' && *q != ']')
			q++;
		bool some = q > s->p;
		s->p = q;
		return some;
	}
	size_t depth = 0;
	while (s->p < s->end) {
		char c = *s->p;
		if (c == '"') {
			if (!scan_string(s, NULL, NULL))
				return false;
			continue;
		}
		s->p++;
		if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			return true;
	}
	return false;
}

/* An object member at s->p: "key":value; *ret_v the value's start. */
static bool scan_member(struct scan *s, const char **ret_k, size_t *ret_kn, const char **ret_v)
{
	if (!scan_string(s, ret_k, ret_kn) || !at(s, ':'))
		return false;
	*ret_v = ++s->p;
	return scan_value(s);
}

static bool key_is(const char *k, size_t n, const char *want)
{
	return n == strlen(want) && !memcmp(k, want, n);
}

/* One element of "services": an object, its extent and its namespace and name (raw:
 * no escapes, so the raw bytes compare as the strings do). */
struct elem {
	size_t start, end;
	const char *ns, *name;
	size_t ns_n, name_n;
};

static bool scan_service(struct scan *s, const char *base, struct elem *e)
{
	*e = (struct elem){ .start = (size_t)(s->p - base) };
	if (!at(s, '{'))
		return false;
	s->p++;
	while (!at(s, '}')) {
		const char *k, *v;
		size_t kn;
		if (!scan_member(s, &k, &kn, &v))
			return false;
		struct scan vs = { v, s->p };
		if (key_is(k, kn, "name") && !scan_string(&vs, &e->name, &e->name_n))
			return false;
		if (key_is(k, kn, "namespace") && !scan_string(&vs, &e->ns, &e->ns_n))
			return false;
		if (at(s, ','))
			s->p++;
		else if (!at(s, '}'))
			return false;
	}
	s->p++;
	e->end = (size_t)(s->p - base);
	return e->ns && e->name && !memchr(e->ns, '\\', e->ns_n) && !memchr(e->name, '\\', e->name_n);
}

static int cmp_raw(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

static int cmp_elem(const struct elem *a, const struct elem *b)
{
	int c = cmp_raw(a->ns, a->ns_n, b->ns, b->ns_n);
	return c ? c : cmp_raw(a->name, a->name_n, b->name, b->name_n);
}

/* The "services" array of the top-level object: its '[' and ']' offsets, and its
 * elements, strictly sorted. */
static int scan_services(const char *text, size_t len, size_t *ret_open, size_t *ret_close,
			 struct elem **ret, size_t *ret_n, struct gerr **err)
{
	struct scan s = { text, text + len };
	struct elem *v = NULL;
	size_t n = 0, cap = 0;
	bool found = false;
	if (!at(&s, '{'))
		goto bad;
	s.p++;
	while (!at(&s, '}') && !found) {
		const char *k, *val;
		size_t kn;
		if (!scan_string(&s, &k, &kn) || !at(&s, ':'))
			goto bad;
		val = ++s.p;
		if (!key_is(k, kn, "services")) {
			if (!scan_value(&s) || (!at(&s, ',') && !at(&s, '}')))
				goto bad;
			s.p += at(&s, ',');
			continue;
		}
		found = true;
		if (!at(&s, '['))
			goto bad;
		*ret_open = (size_t)(val - text);
		s.p++;
		while (!at(&s, ']')) {
			if (n == cap)
				v = xreallocarray(v, cap = cap ? 2 * cap : 256, sizeof(*v));
			if (!scan_service(&s, text, &v[n]) || (n && cmp_elem(&v[n - 1], &v[n]) >= 0))
				goto bad;
			n++;
			if (at(&s, ','))
				s.p++;
			else if (!at(&s, ']'))
				goto bad;
		}
		*ret_close = (size_t)(s.p - text);
	}
	if (!found)
		goto bad;
	*ret = v;
	*ret_n = n;
	return 0;
bad:
	free(v);
	return gerr_set(err, GERR_FAIL, "network.json: not compact sorted JSON with sorted services (at byte %zu)",
			(size_t)(s.p - text));
}

/* ---- the splice ---- */

/* The delta's Services as elements (namespace/name from the key), sorted. */
static int delta_keys(const json_t *services, struct elem **ret, size_t *ret_n, struct gerr **err)
{
	size_t n = 0;
	struct elem *v = xcalloc(json_object_size(services) + 1, sizeof(*v));
	const char *key;
	json_t *obj;
	json_object_foreach((json_t *)services, key, obj) {
		const char *slash = strchr(key, '/');
		const char *ns = json_string_value(json_object_get(obj, "namespace"));
		const char *name = json_string_value(json_object_get(obj, "name"));
		if (!slash || slash == key || !slash[1] || strchr(slash + 1, '/') ||
		    (!json_is_null(obj) && (!json_is_object(obj) || !ns || !name ||
					    strncmp(ns, key, (size_t)(slash - key)) || ns[slash - key] ||
					    strcmp(name, slash + 1)))) {
			free(v);
			return gerr_set(err, GERR_FAIL, "networkDelta: services[\"%s\"]: a key NAMESPACE/NAME and an object "
					"of that namespace and name, or null", key);
		}
		v[n++] = (struct elem){ .ns = key, .ns_n = (size_t)(slash - key), .name = slash + 1,
					.name_n = strlen(slash + 1) };
	}
	for (size_t i = 1; i < n; i++)   /* a few: insertion sort */
		for (size_t k = i; k > 0 && cmp_elem(&v[k - 1], &v[k]) > 0; k--) {
			struct elem t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The output, with a comma between elements; unchanged elements are copied as runs
 * of the old text (commas included), not one by one. */
struct emit {
	struct sbuf *out;
	const char *text;
	size_t run, run_end;   /* pending run of old elements; run == run_end: none */
	bool first;
};

static void emit_flush(struct emit *e)
{
	if (e->run == e->run_end)
		return;
	if (!e->first)
		sb_addc(e->out, ',');
	sb_add(e->out, e->text + e->run, e->run_end - e->run);
	e->first = false;
	e->run = e->run_end = 0;
}

static void emit_old(struct emit *e, const struct elem *x)
{
	if (e->run == e->run_end)
		e->run = x->start;
	e->run_end = x->end;
}

static void emit_new(struct emit *e, const char *dump)
{
	emit_flush(e);
	if (!e->first)
		sb_addc(e->out, ',');
	sb_adds(e->out, dump);
	e->first = false;
}

static void change_at(struct net_change *c, const char *key, const json_t *now, const struct elem *old)
{
	c->key = key;
	c->now = json_is_object(now) ? now : NULL;
	c->old_start = old ? old->start : 0;
	c->old_end = old ? old->end : 0;
}

int net_splice_services(const char *text, size_t len, const json_t *services, struct sbuf *out,
			struct net_change **ret, size_t *ret_n, struct gerr **err)
{
	struct elem *have = NULL, *want = NULL;
	size_t nh = 0, nw = 0, open = 0, close = 0;
	if (!json_is_object(services))
		return gerr_set(err, GERR_FAIL, "networkDelta: \"services\" must be an object");
	if (scan_services(text, len, &open, &close, &have, &nh, err) < 0)
		return -1;
	if (delta_keys(services, &want, &nw, err) < 0) {
		free(have);
		return -1;
	}
	struct net_change *ch = xcalloc(nw + 1, sizeof(*ch));
	struct emit e = { out, text, 0, 0, true };
	sb_grow(out, len + 4096);   /* once: 3 MB grown by doubling is copied and faulted in again */
	sb_add(out, text, open + 1);
	size_t i = 0, j = 0;
	while (i < nh || j < nw) {
		int c = i == nh ? 1 : j == nw ? -1 : cmp_elem(&have[i], &want[j]);
		if (c < 0) {
			emit_old(&e, &have[i++]);
			continue;
		}
		/* the key again, NUL-terminated: want[j].ns is the delta's key */
		const json_t *now = json_object_get(services, want[j].ns);
		change_at(&ch[j], want[j].ns, now, c == 0 ? &have[i] : NULL);
		if (json_is_object(now)) {
			char *dump = json_dumps(now, JSON_COMPACT | JSON_SORT_KEYS);
			emit_new(&e, dump);
			free(dump);
		} else {
			emit_flush(&e);
		}
		i += c == 0;
		j++;
	}
	emit_flush(&e);
	sb_add(out, text + close, len - close);
	free(have);
	free(want);
	*ret = ch;
	*ret_n = nw;
	return 0;
}
