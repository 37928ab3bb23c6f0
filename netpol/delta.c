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

const char *const np_kind_word[] = { "set", "map", "chain" };

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

const char *np_map_key_end(const char *e)
{
	const char *c = strstr(e, " : ");
	return c ? c : e + strlen(e);
}

/* Elements compare by key: the whole element of a set, the part before " : " of a map's. */
int np_cmp_key(const char *a, const char *b)
{
	size_t la = (size_t)(np_map_key_end(a) - a), lb = (size_t)(np_map_key_end(b) - b);
	int r = memcmp(a, b, la < lb ? la : lb);
	return r ? r : (la > lb) - (la < lb);
}

static int cmp_elem(const void *a, const void *b)
{
	return np_cmp_key(*(const char *const *)a, *(const char *const *)b);
}

int np_cmp_obj(const void *a, const void *b)
{
	const struct np_obj *x = a, *y = b;
	int cx = x->kind == NP_K_CHAIN, cy = y->kind == NP_K_CHAIN;
	if (cx != cy)
		return cx - cy;
	return strcmp(x->name, y->name);
}

/* "elements = { a, b," … "}" starting in `rest`, continued on the following lines. */
static int read_elements(struct arena *ar, struct np_obj *o, char *rest, char **p)
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
static int read_obj(struct arena *ar, struct np_obj *o, char **p)
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
		if (o->kind != NP_K_CHAIN) {
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
	if (o->kind != NP_K_CHAIN && o->items.n)
		qsort(o->items.v, o->items.n, sizeof(*o->items.v), cmp_elem);
	return r;
}

/* Parses `text` (modified in place) into t; -1 when it is not what emit() writes. */
int np_read_table(struct arena *ar, char *text, struct np_table *t)
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
		enum np_kind k;
		if (!strncmp(line, "\tset ", 5))
			k = NP_K_SET;
		else if (!strncmp(line, "\tmap ", 5))
			k = NP_K_MAP;
		else if (!strncmp(line, "\tchain ", 7))
			k = NP_K_CHAIN;
		else
			return -1;
		char *name = line + strlen(np_kind_word[k]) + 2;
		n = strlen(name);
		if (n < 3 || strcmp(name + n - 2, " {"))
			return -1;
		name[n - 2] = '\0';
		struct np_obj *o = NP_PUSH(ar, t->objs);
		o->kind = k;
		o->name = name;
		if (read_obj(ar, o, &p) < 0)
			return -1;
	}
	if (!line)
		return -1;
	if (t->objs.n)
		qsort(t->objs.v, t->objs.n, sizeof(*t->objs.v), np_cmp_obj);
	for (size_t i = 1; i < t->objs.n; i++)
		if (!np_cmp_obj(&t->objs.v[i - 1], &t->objs.v[i]))
			return -1;
	return 0;
}

/* ---- writing the delta ------------------------------------------------------------ */


/* "VERB element ip T NAME { e1, e2 }" for items[0..n) (keys only when keys_only). */
void np_elements_cmd(struct sbuf *o, const char *verb, const char *table, const struct np_obj *s,
			 const char *const *items, size_t n, bool keys_only)
{
	if (!n)
		return;
	sb_addf(o, "%s element ip %s %s {", verb, table, s->name);
	for (size_t i = 0; i < n; i++) {
		const char *e = items[i];
		size_t len = keys_only ? (size_t)(np_map_key_end(e) - e) : strlen(e);
		sb_adds(o, i ? ",\n\t" : " ");
		sb_add(o, e, len);
	}
	sb_adds(o, " }\n");
}

void np_chain_rules(struct np_dout *d, const struct np_obj *c)
{
	for (size_t i = 0; i < c->items.n; i++)
		sb_addf(&d->rules, "add rule ip %s %s %s\n", d->table, c->name, c->items.v[i]);
}

void np_new_obj(struct np_dout *d, const struct np_obj *o)
{
	if (o->kind == NP_K_CHAIN) {
		sb_addf(&d->chains, "add chain ip %s %s\n", d->table, o->name);
		np_chain_rules(d, o);
		return;
	}
	sb_addf(&d->decl, "add %s ip %s %s { %s }\n", np_kind_word[o->kind], d->table, o->name, o->head_text);
	np_elements_cmd(&d->add_elems, "add", d->table, o, o->items.v, o->items.n, false);
}

static void removed_obj(struct np_dout *d, const struct np_obj *o)
{
	if (o->kind == NP_K_CHAIN)
		sb_addf(&d->del_chains, "flush chain ip %s %s\ndelete chain ip %s %s\n",
			d->table, o->name, d->table, o->name);
	else
		sb_addf(&d->del_sets, "delete %s ip %s %s\n", np_kind_word[o->kind], d->table, o->name);
}

bool np_same_rules(const struct np_obj *a, const struct np_obj *b)
{
	if (a->items.n != b->items.n)
		return false;
	for (size_t i = 0; i < a->items.n; i++)
		if (strcmp(a->items.v[i], b->items.v[i]))
			return false;
	return true;
}

/* Elements of a (old) and b (new), both sorted by key. */
static void diff_elements(struct arena *ar, struct np_dout *d, const struct np_obj *a, const struct np_obj *b)
{
	NP_VEC(const char *) del = { NULL, 0, 0 }, add = { NULL, 0, 0 };
	size_t i = 0, j = 0;
	while (i < a->items.n || j < b->items.n) {
		int r = i == a->items.n ? 1 : j == b->items.n ? -1 : np_cmp_key(a->items.v[i], b->items.v[j]);
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
	np_elements_cmd(&d->del_elems, "delete", d->table, a, del.v, del.n, a->kind == NP_K_MAP);
	np_elements_cmd(&d->add_elems, "add", d->table, b, add.v, add.n, false);
}

/* 0: the delta is in d; 1: it cannot be expressed (the caller uses the whole table). */
static int diff(struct arena *ar, struct np_dout *d, const struct np_table *a, const struct np_table *b)
{
	size_t i = 0, j = 0;
	if (strcmp(a->name, b->name))
		return 1;
	while (i < a->objs.n || j < b->objs.n) {
		const struct np_obj *x = i < a->objs.n ? &a->objs.v[i] : NULL;
		const struct np_obj *y = j < b->objs.n ? &b->objs.v[j] : NULL;
		int r = !x ? 1 : !y ? -1 : np_cmp_obj(x, y);
		if (r < 0) {
			if (x->kind == NP_K_CHAIN && *x->head_text)
				return 1;        /* a base chain */
			removed_obj(d, x);
			i++;
			continue;
		}
		if (r > 0) {
			if (y->kind == NP_K_CHAIN && *y->head_text)
				return 1;
			np_new_obj(d, y);
			j++;
			continue;
		}
		if (x->kind != y->kind || strcmp(x->head_text, y->head_text))
			return 1;        /* a set became a map, a declaration or hook changed */
		if (x->kind != NP_K_CHAIN)
			diff_elements(ar, d, x, y);
		else if (!np_same_rules(x, y)) {
			sb_addf(&d->rules, "flush chain ip %s %s\n", d->table, y->name);
			np_chain_rules(d, y);
		}
		i++;
		j++;
	}
	return 0;
}

/* The keys whose elements differ between a (old) and b (new), both sorted by key
 * (a verdict or value changed: the key once); stops past `max`. */
static size_t changed_keys(const struct np_obj *a, const struct np_obj *b, const char **keys, size_t max)
{
	size_t i = 0, j = 0, n = 0;
	while (n <= max && (i < a->items.n || j < b->items.n)) {
		int r = i == a->items.n ? 1 : j == b->items.n ? -1 : np_cmp_key(a->items.v[i], b->items.v[j]);
		const char *e = r <= 0 ? a->items.v[i] : b->items.v[j];
		if (r || strcmp(a->items.v[i], b->items.v[j])) {
			if (n < max)
				keys[n] = e;
			n++;
		}
		i += r <= 0;
		j += r >= 0;
	}
	return n;
}

void np_touch(struct strvec *t, const struct np_obj *o, const char *const *keys, size_t n)
{
	if (o->kind == NP_K_CHAIN)
		strvec_pushf(t, "chain %s", o->name);
	else if (!keys || n > NP_TOUCH_ELEMENTS)
		strvec_pushf(t, "set %s", o->name);
	for (size_t k = 0; keys && n <= NP_TOUCH_ELEMENTS && k < n; k++)
		strvec_pushf(t, "element %s %.*s", o->name, (int)(np_map_key_end(keys[k]) - keys[k]), keys[k]);
}

/* Records what the delta touches (netpol.h): objects, or a few elements of a set. */
static void touched(struct strvec *t, const struct np_table *a, const struct np_table *b)
{
	const char *keys[NP_TOUCH_ELEMENTS];
	size_t i = 0, j = 0;
	while (t && (i < a->objs.n || j < b->objs.n)) {
		const struct np_obj *x = i < a->objs.n ? &a->objs.v[i] : NULL;
		const struct np_obj *y = j < b->objs.n ? &b->objs.v[j] : NULL;
		int r = !x ? 1 : !y ? -1 : np_cmp_obj(x, y);
		if (r)
			np_touch(t, r < 0 ? x : y, NULL, 0);
		else if (x->kind == NP_K_CHAIN) {
			if (!np_same_rules(x, y))
				np_touch(t, x, NULL, 0);
		} else {
			size_t n = changed_keys(x, y, keys, NP_TOUCH_ELEMENTS);
			if (n)
				np_touch(t, x, keys, n);
		}
		i += r <= 0;
		j += r >= 0;
	}
}

#define DOUT_PARTS(d) { &(d)->decl, &(d)->chains, &(d)->rules, &(d)->del_elems, &(d)->add_elems, \
			&(d)->del_chains, &(d)->del_sets }

void np_dout_init(struct np_dout *d, const char *table)
{
	memset(d, 0, sizeof(*d));
	d->table = table;
	struct sbuf *parts[] = DOUT_PARTS(d);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		sb_init(parts[i]);
}

size_t np_dout_len(struct np_dout *d)
{
	struct sbuf *parts[] = DOUT_PARTS(d);
	size_t len = 0;
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		len += parts[i]->len;
	return len;
}

void np_dout_write(struct np_dout *d, struct sbuf *out)
{
	struct sbuf *parts[] = DOUT_PARTS(d);
	sb_addf(out, "# gitops: the change to table ip %s, one transaction\n", d->table);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		sb_add(out, parts[i]->buf, parts[i]->len);
}

void np_dout_release(struct np_dout *d)
{
	struct sbuf *parts[] = DOUT_PARTS(d);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		sb_release(parts[i]);
}

int netpol_script_delta(const char *old_script, const char *new_script, struct sbuf *out,
			struct strvec *ret_touched)
{
	struct arena ar;
	arena_init(&ar, 0);
	char *ta = arena_strdup(&ar, old_script), *tb = arena_strdup(&ar, new_script);
	struct np_table told, tnew;
	struct np_dout d;
	np_dout_init(&d, NULL);
	int r = 1;
	if (ta && tb && np_read_table(&ar, ta, &told) == 0 && np_read_table(&ar, tb, &tnew) == 0) {
		d.table = tnew.name;
		r = diff(&ar, &d, &told, &tnew);
	}
	size_t len = np_dout_len(&d), new_len = strlen(new_script);
	if (r == 0 && len > new_len)
		r = 1;                       /* a delta larger than the table: load the table */
	if (r == 0 && len) {
		np_dout_write(&d, out);
		touched(ret_touched, &told, &tnew);
	} else if (r == 1)
		sb_add(out, new_script, new_len);
	np_dout_release(&d);
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
