/* netpol/delta.c: netpol_compile_delta and netpol_script_delta — the change between
 * the tables two inputs (or the two texts they compiled to) load, as one nft
 * transaction of element and chain changes.
 *
 * The texts come from netpol_compile (the one source of truth for what the table
 * is; the node keeps the one it loaded last and compiles only the new input), and
 * are read back as objects — sets, maps (header lines + elements) and chains
 * (header + rules; comments dropped) — and compared by name. emit() in compile.c
 * wrote them, so the layout read here is known: "\tset|map|chain NAME {" … "\t}"
 * inside "table ip T {" … "}", one rule per line, elements in "elements = { a, b }"
 * separated by commas.
 * Anything else (or a change the delta cannot express: another table name, a
 * base chain or a set's declaration changed) falls back to the whole table.
 *
 * The delta, in an order where every reference exists when it is made and is
 * gone before what it names is deleted:
 *   add set/map (new, declaration only) · add chain (new) ·
 *   flush chain + add rule (changed chains; the rules of new ones) ·
 *   delete element (removed keys, map keys whose verdict changed) ·
 *   add element (new keys, changed verdicts, every element of a new set) ·
 *   flush + delete chain (removed) · delete set/map (removed).
 * What it touches (netpol_script_delta's ret_touched) lets the node read back only
 * those objects to keep its digest of the table (runtime/network.c).
 */
#define NETPOL_INTERNAL
#include "netpol/netpol.h"

#include <stdlib.h>
#include <string.h>

enum kind { K_SET, K_MAP, K_CHAIN };
static const char *const kind_word[] = { "set", "map", "chain" };

struct obj {
	enum kind kind;
	const char *name;
	const char *head_text;       /* "type …; flags …;", a base chain's hook line, or "" */
	NP_VEC(const char *) items;  /* elements (sets, maps: sorted by key) or rules (in order) */
};

struct table {
	const char *name;
	NP_VEC(struct obj) objs;     /* sorted: sets and maps by name, then chains by name */
};

/* ---- reading a compiled table back ------------------------------------------- */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == ','))
		s[--n] = '\0';
	return s;
}

/* The next line of *p (NUL-terminated in place), or NULL at the end. */
static char *next_line(char **p)
{
	char *s = *p;
	if (!*s)
		return NULL;
	char *nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else
		*p = s + strlen(s);
	return s;
}

static const char *map_key_end(const char *e)
{
	const char *c = strstr(e, " : ");
	return c ? c : e + strlen(e);
}

/* Elements compare by key: the whole element of a set, the part before " : " of a map's. */
static int cmp_key(const char *a, const char *b)
{
	size_t la = (size_t)(map_key_end(a) - a), lb = (size_t)(map_key_end(b) - b);
	int r = memcmp(a, b, la < lb ? la : lb);
	return r ? r : (la > lb) - (la < lb);
}

static int cmp_elem(const void *a, const void *b)
{
	return cmp_key(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_obj(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;
	int cx = x->kind == K_CHAIN, cy = y->kind == K_CHAIN;
	if (cx != cy)
		return cx - cy;
	return strcmp(x->name, y->name);
}

/* "elements = { a, b," … "}" starting in `rest`, continued on the following lines. */
static int read_elements(struct arena *ar, struct obj *o, char *rest, char **p)
{
	for (;;) {
		char *close = strchr(rest, '}');
		if (close)
			*close = '\0';
		char *save = NULL;
		for (char *tok = strtok_r(rest, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *e = trim(tok);
			if (*e)
				*(const char **)NP_PUSH(ar, o->items) = e;
		}
		if (close)
			return 0;
		if (!(rest = next_line(p)))
			return -1;
	}
}

/* One object's body, after its "\tKIND NAME {" line, through "\t}". */
static int read_obj(struct arena *ar, struct obj *o, char **p)
{
	struct sbuf head = SBUF_INIT;
	char *line;
	int r = -1;
	while ((line = next_line(p))) {
		if (!strcmp(line, "\t}")) {
			r = 0;
			break;
		}
		if (strncmp(line, "\t\t", 2))
			break;
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		if (o->kind != K_CHAIN) {
			if (!strncmp(s, "elements = {", 12)) {
				if (read_elements(ar, o, s + 12, p) < 0)
					break;
			} else
				sb_addf(&head, "%s%s;", head.len ? " " : "", s);
			continue;
		}
		if (!o->items.n && !head.len && !strncmp(s, "type ", 5))
			sb_adds(&head, s);
		else
			*(const char **)NP_PUSH(ar, o->items) = s;
	}
	o->head_text = arena_strdup(ar, head.buf);
	sb_release(&head);
	if (o->kind != K_CHAIN && o->items.n)
		qsort(o->items.v, o->items.n, sizeof(*o->items.v), cmp_elem);
	return r;
}

/* Parses `text` (modified in place) into t; -1 when it is not what emit() writes. */
static int read_table(struct arena *ar, char *text, struct table *t)
{
	char *p = text, *line;
	memset(t, 0, sizeof(*t));
	while ((line = next_line(&p)))
		if (!strncmp(line, "table ip ", 9))
			break;
	if (!line)
		return -1;
	size_t n = strlen(line);
	if (n < 12 || strcmp(line + n - 2, " {"))
		return -1;
	line[n - 2] = '\0';
	t->name = line + 9;
	while ((line = next_line(&p))) {
		if (!strcmp(line, "}"))
			break;
		if (!*line || !strncmp(line, "\t#", 2))
			continue;
		enum kind k;
		if (!strncmp(line, "\tset ", 5))
			k = K_SET;
		else if (!strncmp(line, "\tmap ", 5))
			k = K_MAP;
		else if (!strncmp(line, "\tchain ", 7))
			k = K_CHAIN;
		else
			return -1;
		char *name = line + strlen(kind_word[k]) + 2;
		n = strlen(name);
		if (n < 3 || strcmp(name + n - 2, " {"))
			return -1;
		name[n - 2] = '\0';
		struct obj *o = NP_PUSH(ar, t->objs);
		o->kind = k;
		o->name = name;
		if (read_obj(ar, o, &p) < 0)
			return -1;
	}
	if (!line)
		return -1;
	if (t->objs.n)
		qsort(t->objs.v, t->objs.n, sizeof(*t->objs.v), cmp_obj);
	for (size_t i = 1; i < t->objs.n; i++)
		if (!cmp_obj(&t->objs.v[i - 1], &t->objs.v[i]))
			return -1;
	return 0;
}

/* ---- writing the delta ------------------------------------------------------------ */

struct out {
	const char *table;
	struct sbuf decl, chains, rules, del_elems, add_elems, del_chains, del_sets;
};

/* "VERB element ip T NAME { e1, e2 }" for items[0..n) (keys only when keys_only). */
static void elements_cmd(struct sbuf *o, const char *verb, const char *table, const struct obj *s,
			 const char *const *items, size_t n, bool keys_only)
{
	if (!n)
		return;
	sb_addf(o, "%s element ip %s %s {", verb, table, s->name);
	for (size_t i = 0; i < n; i++) {
		const char *e = items[i];
		size_t len = keys_only ? (size_t)(map_key_end(e) - e) : strlen(e);
		sb_adds(o, i ? ",\n\t" : " ");
		sb_add(o, e, len);
	}
	sb_adds(o, " }\n");
}

static void chain_rules(struct out *d, const struct obj *c)
{
	for (size_t i = 0; i < c->items.n; i++)
		sb_addf(&d->rules, "add rule ip %s %s %s\n", d->table, c->name, c->items.v[i]);
}

static void new_obj(struct out *d, const struct obj *o)
{
	if (o->kind == K_CHAIN) {
		sb_addf(&d->chains, "add chain ip %s %s\n", d->table, o->name);
		chain_rules(d, o);
		return;
	}
	sb_addf(&d->decl, "add %s ip %s %s { %s }\n", kind_word[o->kind], d->table, o->name, o->head_text);
	elements_cmd(&d->add_elems, "add", d->table, o, o->items.v, o->items.n, false);
}

static void removed_obj(struct out *d, const struct obj *o)
{
	if (o->kind == K_CHAIN)
		sb_addf(&d->del_chains, "flush chain ip %s %s\ndelete chain ip %s %s\n",
			d->table, o->name, d->table, o->name);
	else
		sb_addf(&d->del_sets, "delete %s ip %s %s\n", kind_word[o->kind], d->table, o->name);
}

static bool same_rules(const struct obj *a, const struct obj *b)
{
	if (a->items.n != b->items.n)
		return false;
	for (size_t i = 0; i < a->items.n; i++)
		if (strcmp(a->items.v[i], b->items.v[i]))
			return false;
	return true;
}

/* Elements of a (old) and b (new), both sorted by key. */
static void diff_elements(struct arena *ar, struct out *d, const struct obj *a, const struct obj *b)
{
	NP_VEC(const char *) del = { NULL, 0, 0 }, add = { NULL, 0, 0 };
	size_t i = 0, j = 0;
	while (i < a->items.n || j < b->items.n) {
		int r = i == a->items.n ? 1 : j == b->items.n ? -1 : cmp_key(a->items.v[i], b->items.v[j]);
		if (r < 0)
			*(const char **)NP_PUSH(ar, del) = a->items.v[i++];
		else if (r > 0)
			*(const char **)NP_PUSH(ar, add) = b->items.v[j++];
		else {
			if (strcmp(a->items.v[i], b->items.v[j])) {   /* a map element's verdict */
				*(const char **)NP_PUSH(ar, del) = a->items.v[i];
				*(const char **)NP_PUSH(ar, add) = b->items.v[j];
			}
			i++;
			j++;
		}
	}
	elements_cmd(&d->del_elems, "delete", d->table, a, del.v, del.n, a->kind == K_MAP);
	elements_cmd(&d->add_elems, "add", d->table, b, add.v, add.n, false);
}

/* 0: the delta is in d; 1: it cannot be expressed (the caller uses the whole table). */
static int diff(struct arena *ar, struct out *d, const struct table *a, const struct table *b)
{
	size_t i = 0, j = 0;
	if (strcmp(a->name, b->name))
		return 1;
	while (i < a->objs.n || j < b->objs.n) {
		const struct obj *x = i < a->objs.n ? &a->objs.v[i] : NULL;
		const struct obj *y = j < b->objs.n ? &b->objs.v[j] : NULL;
		int r = !x ? 1 : !y ? -1 : cmp_obj(x, y);
		if (r < 0) {
			if (x->kind == K_CHAIN && *x->head_text)
				return 1;        /* a base chain */
			removed_obj(d, x);
			i++;
			continue;
		}
		if (r > 0) {
			if (y->kind == K_CHAIN && *y->head_text)
				return 1;
			new_obj(d, y);
			j++;
			continue;
		}
		if (x->kind != y->kind || strcmp(x->head_text, y->head_text))
			return 1;        /* a set became a map, a declaration or hook changed */
		if (x->kind != K_CHAIN)
			diff_elements(ar, d, x, y);
		else if (!same_rules(x, y)) {
			sb_addf(&d->rules, "flush chain ip %s %s\n", d->table, y->name);
			chain_rules(d, y);
		}
		i++;
		j++;
	}
	return 0;
}

/* Records the objects the delta touches: "chain NAME" or "set NAME" (maps too). */
static void touched(struct strvec *t, const struct table *a, const struct table *b)
{
	size_t i = 0, j = 0;
	while (t && (i < a->objs.n || j < b->objs.n)) {
		const struct obj *x = i < a->objs.n ? &a->objs.v[i] : NULL;
		const struct obj *y = j < b->objs.n ? &b->objs.v[j] : NULL;
		int r = !x ? 1 : !y ? -1 : cmp_obj(x, y);
		const struct obj *o = r <= 0 ? x : y;
		bool changed = r != 0;
		if (!r && o->kind == K_CHAIN)
			changed = !same_rules(x, y);
		else if (!r) {
			changed = x->items.n != y->items.n;
			for (size_t k = 0; !changed && k < x->items.n; k++)
				changed = strcmp(x->items.v[k], y->items.v[k]) != 0;
		}
		if (changed)
			strvec_pushf(t, "%s %s", o->kind == K_CHAIN ? "chain" : "set", o->name);
		i += r <= 0;
		j += r >= 0;
	}
}

int netpol_script_delta(const char *old_script, const char *new_script, struct sbuf *out,
			struct strvec *ret_touched)
{
	struct arena ar;
	arena_init(&ar, 0);
	char *ta = arena_strdup(&ar, old_script), *tb = arena_strdup(&ar, new_script);
	struct table told, tnew;
	struct out d;
	memset(&d, 0, sizeof(d));
	struct sbuf *parts[] = { &d.decl, &d.chains, &d.rules, &d.del_elems, &d.add_elems,
				 &d.del_chains, &d.del_sets };
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		sb_init(parts[i]);
	int r = 1;
	if (ta && tb && read_table(&ar, ta, &told) == 0 && read_table(&ar, tb, &tnew) == 0) {
		d.table = tnew.name;
		r = diff(&ar, &d, &told, &tnew);
	}
	size_t len = 0, new_len = strlen(new_script);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		len += parts[i]->len;
	if (r == 0 && len > new_len)
		r = 1;                       /* a delta larger than the table: load the table */
	if (r == 0 && len) {
		sb_addf(out, "# gitops: the change to table ip %s, one transaction\n", d.table);
		for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
			sb_add(out, parts[i]->buf, parts[i]->len);
		touched(ret_touched, &told, &tnew);
	} else if (r == 1)
		sb_add(out, new_script, new_len);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		sb_release(parts[i]);
	arena_release(&ar);
	return r;
}

int netpol_compile_delta(const json_t *old_input, const json_t *new_input,
			 struct sbuf *out, struct gerr **err)
{
	struct sbuf a = SBUF_INIT, b = SBUF_INIT;
	if (netpol_compile(new_input, &b, err) < 0)
		return -1;
	struct gerr *old_err = NULL;
	int r;
	if (netpol_compile(old_input, &a, &old_err) < 0) {
		gerr_free(old_err);          /* nothing of it can be loaded: the whole table */
		sb_add(out, b.buf, b.len);
		r = 1;
	} else
		r = netpol_script_delta(a.buf, b.buf, out, NULL);
	sb_release(&a);
	sb_release(&b);
	return r;
}
