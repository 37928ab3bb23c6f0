/* netpol/partial.c: netpol_partial_delta — the change a few Services make, made onto
 * the whole script loaded last without compiling the other Services (what the node
 * does when a local pod's readiness changes, runtime/network.c).
 *
 * The two partial inputs are compiled (a few Services: microseconds) and their tables
 * compared as netpol_script_delta does; the difference is what the whole tables
 * differ by, because every element of the Services' own (their ClusterIPs and ports,
 * their slots, their chains) is in both partial tables, and the one element a pod
 * shares between Services (hairpin-endpoints) is computed from every Service naming
 * that pod (the caller's promise, netpol.h). What the partial tables cannot know is
 * what other Services put in the shared objects, so against the loaded text:
 *   - an object new to the partial table that the loaded table has (the chain
 *     lb-tcp-3 another Service uses, a protocol's endpoints map) is not created again;
 *     a chain must be the same, a set or map declared alike, else the caller compiles
 *     everything;
 *   - an object the partial table no longer has loses these Services' elements, and
 *     goes when nothing in the loaded table names it any more (no "goto", "jump" or
 *     "@" of it, no element of another Service's left), as it would from a whole
 *     compile;
 *   - an element deleted must be in the loaded text exactly as the old partial table
 *     has it, an element added must not be there (another Service claiming the key).
 * The loaded text gets the same changes (ret_loaded), in emit()'s layout as far as
 * np_read_table needs it (an element's place in its set does not matter there), so it
 * stays the base of the next delta, partial or whole.
 */
#define NETPOL_INTERNAL
#include "netpol/netpol.h"

#include <stdlib.h>
#include <string.h>

/* ---- the loaded text ------------------------------------------------------------------ */

static void splice(struct sbuf *t, size_t at, size_t del, const char *ins, size_t n)
{
	sb_grow(t, n);
	memmove(t->buf + at + n, t->buf + at + del, t->len - at - del);
	memcpy(t->buf + at, ins, n);
	sb_setlen(t, t->len - del + n);
}

/* [*start, *end) of the block "\tKIND NAME {\n" … "\t}\n" in t. */
static bool find_block(const struct sbuf *t, enum np_kind k, const char *name, size_t *start, size_t *end)
{
	char head[NETPOL_NAME_MAX + 16];
	int n = snprintf(head, sizeof(head), "\n\t%s %s {\n", np_kind_word[k], name);
	const char *s = n > 0 && (size_t)n < sizeof(head) ? memmem(t->buf, t->len, head, (size_t)n) : NULL;
	const char *e = s ? memmem(s + n, t->len - (size_t)(s + n - t->buf), "\n\t}\n", 4) : NULL;
	if (!e)
		return false;
	*start = (size_t)(s + 1 - t->buf);
	*end = (size_t)(e + 4 - t->buf);
	return true;
}

/* The element with the key of `elem` in the block [bs, be): [*es, *ee) its text. */
static bool find_elem(const struct sbuf *t, size_t bs, size_t be, const char *elem, bool map,
		      size_t *es, size_t *ee)
{
	const char *end = t->buf + be;
	const char *p = memmem(t->buf + bs, be - bs, "elements = {", 12);
	size_t klen = (size_t)(np_map_key_end(elem) - elem);
	for (p = p ? p + 12 : NULL; p && (p = memmem(p, (size_t)(end - p), elem, klen)); p += klen) {
		const char *after = p + klen;
		bool starts = p[-1] == ' ' || p[-1] == '\t' || p[-1] == '{' || p[-1] == '\n';
		bool ends = map ? end - after >= 3 && !memcmp(after, " : ", 3)
				: *after == ',' || *after == '\n' || (*after == ' ' && after[1] == '}');
		if (!starts || !ends)
			continue;
		const char *q = after;
		while (q < end && *q != ',' && *q != '\n' && *q != '}')
			q++;
		while (q > after && q[-1] == ' ')
			q--;
		*es = (size_t)(p - t->buf);
		*ee = (size_t)(q - t->buf);
		return true;
	}
	return false;
}

/* Deletes elem (a whole element, as the old partial table has it) from object o's
 * block: false when the block does not have exactly it. */
static bool text_delete(struct sbuf *t, const struct np_obj *o, const char *elem)
{
	size_t bs, be, es, ee;
	if (!find_block(t, o->kind, o->name, &bs, &be) || !find_elem(t, bs, be, elem, o->kind == NP_K_MAP, &es, &ee) ||
	    ee - es != strlen(elem) || memcmp(t->buf + es, elem, ee - es))
		return false;
	if (t->buf[ee] == ',') {
		splice(t, es, ee + 1 - es, "", 0);
		return true;
	}
	size_t k = es;  /* the last one: the comma before it goes */
	while (k > bs && (t->buf[k - 1] == ' ' || t->buf[k - 1] == '\t' || t->buf[k - 1] == '\n'))
		k--;
	splice(t, es, ee - es, "", 0);
	if (t->buf[k - 1] == ',')
		splice(t, k - 1, 1, "", 0);
	return true;
}

/* Adds elem to object o's block: false when its key is there already. */
static bool text_add(struct sbuf *t, const struct np_obj *o, const char *elem)
{
	size_t bs, be, es, ee;
	if (!find_block(t, o->kind, o->name, &bs, &be) || find_elem(t, bs, be, elem, o->kind == NP_K_MAP, &es, &ee))
		return false;
	struct sbuf line = SBUF_INIT;
	const char *el = memmem(t->buf + bs, be - bs, "elements = {", 12);
	if (el) {
		sb_addf(&line, "\n\t\t\t%s,", elem);
		splice(t, (size_t)(el - t->buf) + 12, 0, line.buf, line.len);
	} else {
		sb_addf(&line, "\t\telements = {\n\t\t\t%s\n\t\t}\n", elem);
		splice(t, be - 3, 0, line.buf, line.len);
	}
	sb_release(&line);
	return true;
}

/* ---- the partial tables against it -------------------------------------------------- */

struct part {
	struct arena *ar;
	struct sbuf *t;           /* the loaded text, changed as we go */
	const struct sbuf *b;     /* the new partial table's text */
	struct np_dout *d;
	struct strvec *touched;
};

/* The elements of x (old, NULL: none) and y (new, NULL: none) of one set or map the
 * loaded table has: deleted and added in the text and the delta. */
static int elements(struct part *p, const struct np_obj *x, const struct np_obj *y)
{
	const struct np_obj *o = y ? y : x;
	size_t na = x ? x->items.n : 0, nb = y ? y->items.n : 0, i = 0, j = 0;
	NP_VEC(const char *) del = { NULL, 0, 0 }, add = { NULL, 0, 0 }, keys = { NULL, 0, 0 };
	while (i < na || j < nb) {
		int r = i == na ? 1 : j == nb ? -1 : np_cmp_key(x->items.v[i], y->items.v[j]);
		if (r < 0 || (r == 0 && strcmp(x->items.v[i], y->items.v[j])))
			*(const char **)NP_PUSH(p->ar, del) = x->items.v[i];
		if (r > 0 || (r == 0 && strcmp(x->items.v[i], y->items.v[j])))
			*(const char **)NP_PUSH(p->ar, add) = y->items.v[j];
		if (r || strcmp(x->items.v[i], y->items.v[j]))
			*(const char **)NP_PUSH(p->ar, keys) = r <= 0 ? x->items.v[i] : y->items.v[j];
		i += r <= 0;
		j += r >= 0;
	}
	for (size_t k = 0; k < del.n; k++)
		if (!text_delete(p->t, o, del.v[k]))
			return 1;
	for (size_t k = 0; k < add.n; k++)
		if (!text_add(p->t, o, add.v[k]))
			return 1;
	np_elements_cmd(&p->d->del_elems, "delete", p->d->table, o, del.v, del.n, o->kind == NP_K_MAP);
	np_elements_cmd(&p->d->add_elems, "add", p->d->table, o, add.v, add.n, false);
	if (keys.n)
		np_touch(p->touched, o, keys.v, keys.n);
	return 0;
}

/* The text of y's block in the new partial table, [*s, *e). */
static void new_block(const struct part *p, const struct np_obj *y, size_t *s, size_t *e)
{
	if (!find_block(p->b, y->kind, y->name, s, e))
		*s = *e = 0;   /* cannot be: y was read from it */
}

/* A set or map's declaration: its block up to its elements. */
static size_t head_len(const char *block, size_t len)
{
	const char *el = memmem(block, len, "\t\telements = {", 14);
	return el ? (size_t)(el - block) : len;
}

/* y is not in the old partial table. */
static int added(struct part *p, const struct np_obj *y)
{
	size_t ys, ye, ls, le;
	new_block(p, y, &ys, &ye);
	const char *yb = p->b->buf + ys;
	if (!find_block(p->t, y->kind, y->name, &ls, &le)) {
		np_new_obj(p->d, y);                   /* new to the table */
		np_touch(p->touched, y, NULL, 0);
		const char *close = p->t->len > 2 ? memmem(p->t->buf + p->t->len - 2, 2, "}\n", 2) : NULL;
		if (!close || ye == ys)
			return 1;
		splice(p->t, p->t->len - 2, 0, yb, ye - ys);
		return 0;
	}
	const char *lb = p->t->buf + ls;
	if (y->kind == NP_K_CHAIN)          /* another Service's: the same rules */
		return le - ls == ye - ys && !memcmp(lb, yb, le - ls) ? 0 : 1;
	size_t hy = head_len(yb, ye - ys), hl = head_len(lb, le - ls);
	if (hy != hl || memcmp(yb, lb, hy))
		return 1;
	return elements(p, NULL, y);
}

/* A chain both partial tables have, with other rules: this Service's own. */
static int changed_chain(struct part *p, const struct np_obj *y)
{
	size_t ys, ye, ls, le;
	new_block(p, y, &ys, &ye);
	if (*y->head_text || ye == ys || !find_block(p->t, y->kind, y->name, &ls, &le))
		return 1;
	splice(p->t, ls, le - ls, p->b->buf + ys, ye - ys);
	sb_addf(&p->d->rules, "flush chain ip %s %s\n", p->d->table, y->name);
	np_chain_rules(p->d, y);
	np_touch(p->touched, y, NULL, 0);
	return 0;
}

/* Whether anything in t but o's own block names o: "goto N", "jump N" or "@N". */
static bool referenced(const struct sbuf *t, const struct np_obj *o, size_t bs, size_t be)
{
	static const char *const how[] = { "goto ", "jump ", "@" };
	size_t n = strlen(o->name);
	for (size_t k = o->kind == NP_K_CHAIN ? 0 : 2; k < (o->kind == NP_K_CHAIN ? 2 : 3); k++) {
		size_t hl = strlen(how[k]);
		for (const char *q = t->buf; (q = memmem(q, t->len - (size_t)(q - t->buf), o->name, n)); q += n) {
			size_t at = (size_t)(q - t->buf);
			char after = q[n];
			if (at >= hl && !memcmp(q - hl, how[k], hl) && (at < bs || at >= be) &&
			    (after == '\n' || after == ' ' || after == ',' || after == '}' || after == '\0'))
				return true;
		}
	}
	return false;
}

/* x, gone from the partial table (its elements of these Services deleted), goes from
 * the table too when nothing names it any more: what the whole compile would leave. */
static bool unused(struct part *p, const struct np_obj *x)
{
	size_t bs, be;
	if (!find_block(p->t, x->kind, x->name, &bs, &be) || referenced(p->t, x, bs, be))
		return false;
	if (x->kind == NP_K_SET || x->kind == NP_K_MAP) {
		const char *el = memmem(p->t->buf + bs, be - bs, "elements = {", 12), *q = el ? el + 12 : NULL;
		while (q && (*q == ' ' || *q == '\n' || *q == '\t'))
			q++;
		if (q && *q != '}')
			return false;        /* another Service's elements */
	}
	splice(p->t, bs, be - bs, "", 0);
	if (x->kind == NP_K_CHAIN)
		sb_addf(&p->d->del_chains, "flush chain ip %s %s\ndelete chain ip %s %s\n", p->d->table, x->name,
			p->d->table, x->name);
	else
		sb_addf(&p->d->del_sets, "delete %s ip %s %s\n", np_kind_word[x->kind], p->d->table, x->name);
	np_touch(p->touched, x, NULL, 0);
	return true;
}

static int walk(struct part *p, const struct np_table *a, const struct np_table *b)
{
	size_t i = 0, j = 0;
	int r = 0;
	NP_VEC(const struct np_obj *) gone = { NULL, 0, 0 };
	while (!r && (i < a->objs.n || j < b->objs.n)) {
		const struct np_obj *x = i < a->objs.n ? &a->objs.v[i] : NULL;
		const struct np_obj *y = j < b->objs.n ? &b->objs.v[j] : NULL;
		int c = !x ? 1 : !y ? -1 : np_cmp_obj(x, y);
		if (c < 0) {
			r = x->kind == NP_K_CHAIN ? 0 : elements(p, x, NULL);
			*(const struct np_obj **)NP_PUSH(p->ar, gone) = x;
		} else if (c > 0)
			r = added(p, y);
		else if (x->kind != y->kind || strcmp(x->head_text, y->head_text))
			r = 1;
		else if (x->kind != NP_K_CHAIN)
			r = elements(p, x, y);
		else if (!np_same_rules(x, y))
			r = changed_chain(p, y);
		i += c <= 0;
		j += c >= 0;
	}
	for (bool again = !r; again;) {   /* until a pass frees nothing: chains name chains and sets */
		again = false;
		for (size_t k = 0; k < gone.n; k++)
			if (gone.v[k] && unused(p, gone.v[k])) {
				gone.v[k] = NULL;
				again = true;
			}
	}
	return r;
}

int netpol_partial_delta(const char *loaded, const json_t *old_part, const json_t *new_part,
			 struct sbuf *out, struct sbuf *ret_loaded, struct strvec *ret_touched,
			 struct gerr **err)
{
	struct sbuf a = SBUF_INIT, b = SBUF_INIT, t = SBUF_INIT;
	struct strvec touched = STRVEC_INIT;
	if (netpol_compile(new_part, &b, err) < 0)
		return -1;
	struct gerr *old_err = NULL;
	int r = 1;
	if (netpol_compile(old_part, &a, &old_err) < 0) {
		gerr_free(old_err);
		sb_release(&b);
		return 1;
	}
	struct arena ar;
	arena_init(&ar, 0);
	struct np_table ta, tb;
	struct np_dout d;
	np_dout_init(&d, NULL);
	char *ca = arena_strdup(&ar, a.buf), *cb = arena_strdup(&ar, b.buf);
	sb_adds(&t, loaded);
	if (np_read_table(&ar, ca, &ta) == 0 && np_read_table(&ar, cb, &tb) == 0 && !strcmp(ta.name, tb.name)) {
		char *head = arena_alloc(&ar, strlen(tb.name) + 16);
		sprintf(head, "\ntable ip %s {\n", tb.name);
		d.table = tb.name;
		struct part p = { &ar, &t, &b, &d, &touched };
		r = memmem(t.buf, t.len, head, strlen(head)) ? walk(&p, &ta, &tb) : 1;
	}
	if (r == 0) {
		if (np_dout_len(&d))
			np_dout_write(&d, out);
		if (!ret_loaded->len) {   /* the usual case: the patched text itself, not a copy */
			struct sbuf was = *ret_loaded;
			*ret_loaded = t;
			t = was;
		} else {
			sb_add(ret_loaded, t.buf, t.len);
		}
		for (size_t i = 0; ret_touched && i < touched.n; i++)
			strvec_push(ret_touched, touched.v[i]);
	}
	np_dout_release(&d);
	arena_release(&ar);
	strvec_clear(&touched);
	sb_release(&t);
	sb_release(&a);
	sb_release(&b);
	return r;
}
