/* decode.c: libyaml events → a document tree (struct ynode) with line:column on
 * every node, YAML 1.1 scalar resolution (as Kubernetes' YAML reader does), merge
 * keys, duplicate-key detection, and bounds on depth, string length, document
 * size and alias expansion (a billion-laughs document fails fast). */
#include "api/internal.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct frame {
	struct ynode *node;
	size_t start;          /* its children are dec.kids[start..nkids) while open */
	const char *anchor;
	uint64_t weight;       /* nodes below, counting alias expansions */
};

struct anchor {
	char *name;
	struct ynode *node;
	uint64_t weight;
};

struct dec {
	struct api_set *set;
	const char *file;
	yaml_parser_t parser;
	struct frame *stack;
	size_t depth, astack;
	struct ynode **kids;   /* children of every open collection, innermost last */
	size_t nkids, akids;
	struct anchor *anchors;
	size_t nanchors, aanchors;
	uint64_t alias_weight; /* per document */
	struct ynode *root;
	uint64_t root_weight;
	bool failed;
};

/* ---- scalar resolution (YAML 1.1 core, as go-yaml v2) ---- */

static bool is_one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static bool digits(const char *s, const char *set)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(set, *s) && *s != '_')
			return false;
	return true;
}

static bool is_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return digits(s + 2, "0123456789abcdefABCDEF");
	if (s[0] == '0' && (s[1] == 'b'))
		return digits(s + 2, "01");
	if (s[0] == '0' && (s[1] == 'o'))
		return digits(s + 2, "01234567");
	return *s != '_' && digits(s, "0123456789");
}

static bool is_float(const char *s)
{
	static const char *const special[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
		"-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL };
	if (is_one_of(s, special))
		return true;
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	bool mant = false, dot = false;
	for (; *p && (strchr("0123456789_", *p) || (*p == '.' && !dot)); p++) {
		if (*p == '.')
			dot = true;
		else
			mant = true;
	}
	if (!mant)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!*p)
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	} else if (!dot) {
		return false;
	}
	return *p == '\0';
}

uint8_t api_resolve_plain(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const bools[] = { "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No",
		"NO", "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off",
		"Off", "OFF", NULL };
	char c = s[0];
	if ((c == '\0' || c == '~' || c == 'n' || c == 'N') && is_one_of(s, nulls))
		return YS_NULL;
	if ((c == 'y' || c == 'Y' || c == 'n' || c == 'N' || c == 't' || c == 'T' || c == 'f' ||
	     c == 'F' || c == 'o' || c == 'O') && strlen(s) <= 5 && is_one_of(s, bools))
		return YS_BOOL;
	if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
		if (is_int(s))
			return YS_INT;
		if (is_float(s))
			return YS_FLOAT;
	}
	return YS_STR;
}

/* ---- diagnostics ---- */

static void dec_error(struct dec *d, uint32_t line, uint32_t col, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
static void dec_error(struct dec *d, uint32_t line, uint32_t col, const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	api_diag_add(d->set, API_ERROR, d->file, line, col, "", "", sb.buf);
	sb_release(&sb);
	d->failed = true;
}

/* ---- tree building ---- */

static struct ynode *new_node(struct dec *d, uint8_t type, const yaml_mark_t *m)
{
	struct ynode *n = arena_alloc(&d->set->arena, sizeof(*n));
	if (!n) {
		dec_error(d, (uint32_t)m->line + 1, (uint32_t)m->column + 1,
			  "manifests exceed the memory limit of %u MiB", API_MAX_SET_BYTES >> 20);
		return NULL;
	}
	n->type = type;
	n->line = (uint32_t)m->line + 1;
	n->col = (uint32_t)m->column + 1;
	return n;
}

static void remember_anchor(struct dec *d, const char *name, struct ynode *n, uint64_t w)
{
	GROW(d->anchors, d->aanchors, d->nanchors + 1);
	d->anchors[d->nanchors++] = (struct anchor){ xstrdup(name), n, w };
}

static void forget_anchors(struct dec *d)
{
	for (size_t i = 0; i < d->nanchors; i++)
		free(d->anchors[i].name);
	d->nanchors = 0;
}

static int add_child(struct dec *d, struct ynode *n, uint64_t weight)
{
	if (d->depth == 0) {
		d->root = n;
		d->root_weight = weight;
		return 0;
	}
	GROW(d->kids, d->akids, d->nkids + 1);
	d->kids[d->nkids++] = n;
	d->stack[d->depth - 1].weight += weight;
	return 0;
}

static void push_frame(struct dec *d, struct ynode *n, const char *anchor)
{
	GROW(d->stack, d->astack, d->depth + 1);
	d->stack[d->depth++] = (struct frame){ .node = n, .start = d->nkids, .anchor = anchor, .weight = 1 };
}

static const char *key_text(const struct ynode *k)
{
	return k->type == YN_SCALAR ? k->str : NULL;
}

static bool is_merge_key(const struct ynode *k)
{
	return k->type == YN_SCALAR && !k->quoted && strcmp(k->str, "<<") == 0;
}

/* "<<: *base" and "<<: [*a, *b]": merge keys not already present (go-yaml v2).
 * Returns a malloc'ed replacement for kids[0..*n), or NULL when there is no merge. */
static struct ynode **expand_merges(struct dec *d, struct ynode **kids, size_t *ret_n)
{
	bool any = false;
	for (size_t i = 0; i + 1 < *ret_n; i += 2)
		any |= is_merge_key(kids[i]);
	if (!any)
		return NULL;
	struct ynode **out = NULL;
	size_t n = 0, alloc = 0;
	for (size_t i = 0; i + 1 < *ret_n; i += 2) {
		if (is_merge_key(kids[i]))
			continue;
		GROW(out, alloc, n + 2);
		out[n++] = kids[i];
		out[n++] = kids[i + 1];
	}
	for (size_t i = 0; i + 1 < *ret_n; i += 2) {
		if (!is_merge_key(kids[i]))
			continue;
		struct ynode *v = kids[i + 1];
		struct ynode *one[1] = { v };
		struct ynode **srcs = v->type == YN_SEQ ? v->items : one;
		size_t nsrc = v->type == YN_SEQ ? v->n : 1;
		for (size_t s = 0; s < nsrc; s++) {
			if (srcs[s]->type != YN_MAP) {
				dec_error(d, srcs[s]->line, srcs[s]->col,
					  "map merge requires map or sequence of maps as the value");
				continue;
			}
			for (size_t j = 0; j < srcs[s]->n; j++) {
				struct ynode *mk = srcs[s]->items[2 * j];
				bool present = false;
				for (size_t x = 0; x < n && !present; x += 2)
					present = key_text(out[x]) && key_text(mk) &&
						  strcmp(key_text(out[x]), key_text(mk)) == 0;
				if (present)
					continue;
				GROW(out, alloc, n + 2);
				out[n++] = mk;
				out[n++] = srcs[s]->items[2 * j + 1];
			}
		}
	}
	*ret_n = n;
	return out ? out : xcalloc(1, sizeof(*out));
}

static void check_duplicate_keys(struct dec *d, struct ynode *const *kids, size_t n)
{
	size_t pairs = n / 2;
	if (pairs < 2)
		return;
	for (size_t i = 1; i < pairs; i++) {
		const struct ynode *k = kids[2 * i];
		if (k->type != YN_SCALAR)
			continue;
		for (size_t j = 0; j < i; j++) {
			const struct ynode *o = kids[2 * j];
			if (o->type == YN_SCALAR && o->len == k->len && memcmp(o->str, k->str, k->len) == 0) {
				dec_error(d, k->line, k->col, "mapping key \"%s\" already defined at line %u",
					  k->str, o->line);
				break;
			}
		}
	}
}

static int pop_frame(struct dec *d)
{
	struct frame *f = &d->stack[--d->depth];
	struct ynode *n = f->node;
	struct ynode **kids = d->kids ? d->kids + f->start : NULL, **merged = NULL;
	size_t nk = d->nkids - f->start;
	d->nkids = f->start;
	if (n->type == YN_MAP) {
		merged = expand_merges(d, kids, &nk);
		if (merged)
			kids = merged;
		check_duplicate_keys(d, kids, nk);
		for (size_t i = 0; i < nk; i += 2)
			if (kids[i]->type != YN_SCALAR)
				dec_error(d, kids[i]->line, kids[i]->col, "mapping keys must be scalars");
	}
	n->n = (uint32_t)(n->type == YN_MAP ? nk / 2 : nk);
	if (nk) {
		n->items = arena_alloc(&d->set->arena, nk * sizeof(*n->items));
		if (n->items)
			memcpy(n->items, kids, nk * sizeof(*n->items));
		else
			n->n = 0;
	}
	free(merged);
	uint64_t w = f->weight;
	if (f->anchor)
		remember_anchor(d, f->anchor, n, w);
	free((char *)f->anchor);
	return add_child(d, n, w);
}

static void on_scalar(struct dec *d, yaml_event_t *e)
{
	size_t len = e->data.scalar.length;
	if (len > API_MAX_SCALAR) {
		dec_error(d, (uint32_t)e->start_mark.line + 1, (uint32_t)e->start_mark.column + 1,
			  "string of %zu bytes is longer than the limit of %u", len, API_MAX_SCALAR);
		return;
	}
	struct ynode *n = new_node(d, YN_SCALAR, &e->start_mark);
	if (!n)
		return;
	n->str = arena_strndup(&d->set->arena, (const char *)e->data.scalar.value, len);
	if (!n->str) {
		d->failed = true;
		return;
	}
	n->len = len;
	const char *tag = (const char *)e->data.scalar.tag;
	if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		n->tag = YS_STR;
		n->quoted = 1;
	} else if (tag && strcmp(tag, YAML_STR_TAG) == 0) {
		n->tag = YS_STR;
		n->quoted = 1;
	} else {
		n->tag = strlen(n->str) == len ? api_resolve_plain(n->str) : YS_STR;
	}
	if (e->data.scalar.anchor)
		remember_anchor(d, (const char *)e->data.scalar.anchor, n, 1);
	add_child(d, n, 1);
}

static void on_alias(struct dec *d, yaml_event_t *e)
{
	const char *name = (const char *)e->data.alias.anchor;
	for (size_t i = d->nanchors; i-- > 0;) {
		if (strcmp(d->anchors[i].name, name))
			continue;
		uint64_t w = d->anchors[i].weight;
		d->alias_weight += w;
		if (w > API_MAX_ALIAS_NODES || d->alias_weight > API_MAX_ALIAS_NODES) {
			dec_error(d, (uint32_t)e->start_mark.line + 1, (uint32_t)e->start_mark.column + 1,
				  "aliases expand to more than %d nodes (an alias bomb?)",
				  API_MAX_ALIAS_NODES);
			return;
		}
		add_child(d, d->anchors[i].node, w);
		return;
	}
	dec_error(d, (uint32_t)e->start_mark.line + 1, (uint32_t)e->start_mark.column + 1,
		  "unknown anchor '%s' referenced", name);
}

static void on_start(struct dec *d, yaml_event_t *e, uint8_t type, const yaml_char_t *anchor)
{
	if (d->depth >= API_MAX_DEPTH) {
		dec_error(d, (uint32_t)e->start_mark.line + 1, (uint32_t)e->start_mark.column + 1,
			  "nesting deeper than %d levels", API_MAX_DEPTH);
		return;
	}
	struct ynode *n = new_node(d, type, &e->start_mark);
	if (n)
		push_frame(d, n, anchor ? xstrdup((const char *)anchor) : NULL);
}

static void reset_doc(struct dec *d)
{
	while (d->depth)
		free((char *)d->stack[--d->depth].anchor);
	d->nkids = 0;
	forget_anchors(d);
	d->alias_weight = 0;
	d->root = NULL;
	d->failed = false;
}

void api_decode_file(struct api_set *s, const char *path, const char *data, size_t len,
		     api_doc_fn on_doc, void *ctx)
{
	struct dec d = { .set = s, .file = path };
	if (len > API_MAX_FILE_BYTES) {
		api_diag_add(s, API_ERROR, path, 1, 1, "", "", "file is larger than the limit of 16 MiB");
		return;
	}
	yaml_parser_initialize(&d.parser);
	yaml_parser_set_input_string(&d.parser, (const unsigned char *)data, len);
	unsigned doc_index = 0;
	uint32_t doc_line = 1, doc_col = 1;
	for (bool done = false; !done;) {
		yaml_event_t e;
		if (!yaml_parser_parse(&d.parser, &e)) {
			const yaml_mark_t *m = &d.parser.problem_mark;
			dec_error(&d, (uint32_t)m->line + 1, (uint32_t)m->column + 1, "%s%s%s",
				  d.parser.problem ? d.parser.problem : "YAML syntax error",
				  d.parser.context ? " " : "", d.parser.context ? d.parser.context : "");
			break;
		}
		bool stop = d.failed && e.type != YAML_DOCUMENT_END_EVENT;
		switch (e.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			reset_doc(&d);
			doc_line = (uint32_t)e.start_mark.line + 1;
			doc_col = (uint32_t)e.start_mark.column + 1;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (!d.failed)
				on_doc(ctx, path, doc_index, d.root, doc_line, doc_col);
			doc_index++;
			reset_doc(&d);
			break;
		case YAML_SCALAR_EVENT:
			if (!stop)
				on_scalar(&d, &e);
			break;
		case YAML_ALIAS_EVENT:
			if (!stop)
				on_alias(&d, &e);
			break;
		case YAML_SEQUENCE_START_EVENT:
			if (!stop)
				on_start(&d, &e, YN_SEQ, e.data.sequence_start.anchor);
			break;
		case YAML_MAPPING_START_EVENT:
			if (!stop)
				on_start(&d, &e, YN_MAP, e.data.mapping_start.anchor);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (!stop && d.depth)
				pop_frame(&d);
			break;
		default:
			break;
		}
		yaml_event_delete(&e);
	}
	reset_doc(&d);
	free(d.stack);
	free(d.kids);
	free(d.anchors);
	yaml_parser_delete(&d.parser);
}
