/* api/selector.c: label selectors — kubectl's -l syntax, LabelSelector nodes,
 * and matching, with Kubernetes' semantics and (mostly) its messages.
 *
 * Ownership: a struct api_selector owns its requirements, keys and value
 * arrays, all from xmalloc; api_selector_release frees them. On failure the
 * parse functions leave *ret empty (releasing it is harmless).
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

/* ---- building ---------------------------------------------------------------- */

struct selb {
	struct api_selector sel;
	size_t alloc;
};

static void req_free(struct api_sel_req *r)
{
	free(r->key);
	for (size_t i = 0; i < r->nvalues; i++)
		free(r->values[i]);
	free(r->values);
}

void api_selector_release(struct api_selector *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->n; i++)
		req_free(&sel->reqs[i]);
	free(sel->reqs);
	memset(sel, 0, sizeof(*sel));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Values are a set, as in Kubernetes: sorted, without duplicates. */
static void values_normalize(struct api_sel_req *r)
{
	if (r->nvalues < 2)
		return;
	qsort(r->values, r->nvalues, sizeof(*r->values), cmp_str);
	size_t k = 1;
	for (size_t i = 1; i < r->nvalues; i++) {
		if (strcmp(r->values[i], r->values[k - 1]) == 0)
			free(r->values[i]);
		else
			r->values[k++] = r->values[i];
	}
	r->nvalues = k;
}

/* Go's strconv.ParseInt(s, 10, 64). */
static bool go_int(const char *s, int64_t *ret)
{
	bool neg = false;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (!*s)
		return false;
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (limit - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*ret = neg ? (v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	return true;
}

/* The values as Go's %#v prints a []string: []string{"a", "b"} or []string(nil). */
static int bad_values(const struct api_sel_req *r, const char *why, struct gerr **err)
{
	struct sbuf sb = SBUF_INIT;
	if (r->nvalues == 0)
		sb_adds(&sb, "[]string(nil)");
	else
		sb_adds(&sb, "[]string{");
	for (size_t i = 0; i < r->nvalues; i++)
		sb_addf(&sb, "%s\"%s\"", i ? ", " : "", r->values[i]);
	if (r->nvalues)
		sb_addc(&sb, '}');
	gerr_set(err, GERR_FAIL, "values: Invalid value: %s: %s", sb.buf, why);
	sb_release(&sb);
	return -1;
}

/* Kubernetes' NewRequirement checks, first failure only. `exact` is true for
 * =, == and != (one value required). */
static int req_check(const struct api_sel_req *r, bool exact, struct gerr **err)
{
	const char *why = check_label_key(r->key);
	if (why)
		return gerr_set(err, GERR_FAIL, "key: Invalid value: \"%s\": %s", r->key, why);
	switch (r->op) {
	case SEL_IN:
	case SEL_NOT_IN:
		if (exact && r->nvalues != 1)
			return bad_values(r, "exact-match compatibility requires one single value",
					  err);
		if (r->nvalues == 0)
			return bad_values(r, "for 'in', 'notin' operators, values set can't be empty",
					  err);
		break;
	case SEL_EXISTS:
	case SEL_DOES_NOT_EXIST:
		if (r->nvalues != 0)
			return bad_values(r, "values set must be empty for exists and does not exist",
					  err);
		break;
	case SEL_GT:
	case SEL_LT: {
		int64_t v;
		if (r->nvalues != 1)
			return bad_values(r, "for 'Gt', 'Lt' operators, exactly one value is required",
					  err);
		if (!go_int(r->values[0], &v))
			return gerr_set(err, GERR_FAIL, "values[0]: Invalid value: \"%s\": for 'Gt', "
					"'Lt' operators, the value must be an integer", r->values[0]);
		break;
	}
	}
	for (size_t i = 0; i < r->nvalues; i++)
		if ((why = check_label_value(r->values[i])))
			return gerr_set(err, GERR_FAIL, "values[%zu][%s]: Invalid value: \"%s\": %s", i,
					r->key, r->values[i], why);
	return 0;
}

/* Check r and take it over (freed on failure). */
static int selb_add(struct selb *b, struct api_sel_req *r, bool exact, struct gerr **err)
{
	if (req_check(r, exact, err) < 0) {
		req_free(r);
		return -1;
	}
	values_normalize(r);
	GROW(b->sel.reqs, b->alloc, b->sel.n + 1);
	b->sel.reqs[b->sel.n++] = *r;
	return 0;
}

static void push_value(struct api_sel_req *r, size_t *alloc, const char *s, size_t n)
{
	GROW(r->values, *alloc, r->nvalues + 1);
	r->values[r->nvalues++] = xstrndup(s, n);
}

/* Requirements sorted by key (stable), as Kubernetes keeps them. */
static void selb_finish(struct selb *b, struct api_selector *ret)
{
	struct api_sel_req *a = b->sel.reqs;
	for (size_t i = 1; i < b->sel.n; i++) {
		struct api_sel_req t = a[i];
		size_t j = i;
		for (; j > 0 && strcmp(a[j - 1].key, t.key) > 0; j--)
			a[j] = a[j - 1];
		a[j] = t;
	}
	*ret = b->sel;
}

static int selb_fail(struct selb *b, struct api_selector *ret)
{
	api_selector_release(&b->sel);
	memset(ret, 0, sizeof(*ret));
	return -1;
}

/* ---- kubectl -l syntax --------------------------------------------------------- */

enum tok { T_EOS, T_CLOSE, T_COMMA, T_NOT, T_DEQ, T_EQ, T_GT, T_ID, T_IN, T_LT, T_NEQ, T_NOTIN,
	   T_OPEN };

struct token {
	enum tok t;
	const char *s;
	int n;
};

/* Tokens are read on demand, like Kubernetes' lexer but without its
 * up-front token list: only lookahead of one is needed. */
struct parser {
	const char *p;
	struct token cur; /* the lookahead */
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_special(char c)
{
	return c && strchr("=!(),><", c);
}

static struct token lex(const char **pp)
{
	const char *p = *pp;
	while (is_ws(*p))
		p++;
	struct token t = { T_EOS, p, 0 };
	if (!*p) {
		*pp = p;
		return t;
	}
	if (is_special(*p)) {
		static const struct { char s[3]; enum tok t; } ops[] = {
			{ "!=", T_NEQ }, { "==", T_DEQ }, { "=", T_EQ }, { "!", T_NOT }, { "(", T_OPEN },
			{ ")", T_CLOSE }, { ",", T_COMMA }, { ">", T_GT }, { "<", T_LT },
		};
		for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
			size_t n = strlen(ops[i].s);
			if (strncmp(p, ops[i].s, n) == 0) {
				t.t = ops[i].t;
				t.n = (int)n;
				break;
			}
		}
		*pp = p + t.n;
		return t;
	}
	const char *e = p;
	while (*e && !is_special(*e) && !is_ws(*e))
		e++;
	t.t = T_ID;
	t.n = (int)(e - p);
	if (t.n == 2 && memcmp(p, "in", 2) == 0)
		t.t = T_IN;
	else if (t.n == 5 && memcmp(p, "notin", 5) == 0)
		t.t = T_NOTIN;
	*pp = e;
	return t;
}

/* In a values context "in" and "notin" are plain identifiers. */
static enum tok as_value(enum tok t)
{
	return t == T_IN || t == T_NOTIN ? T_ID : t;
}

static struct token peek(struct parser *ps)
{
	return ps->cur;
}

static struct token next(struct parser *ps)
{
	struct token t = ps->cur;
	ps->cur = lex(&ps->p);
	return t;
}

static int found(struct gerr **err, struct token t, const char *expected)
{
	return gerr_set(err, GERR_FAIL, "found '%.*s', expected: %s", t.n, t.s, expected);
}

/* "( v1, v2 )": Kubernetes turns empty items into "" ("()" is {""}). */
static int parse_values(struct parser *ps, struct api_sel_req *r, struct gerr **err)
{
	size_t alloc = 0;
	struct token t = next(ps);
	if (t.t != T_OPEN)
		return gerr_set(err, GERR_FAIL, "found '%.*s' expected: '('", t.n, t.s);
	struct token la = peek(ps);
	if (la.t == T_CLOSE) {
		next(ps);
		push_value(r, &alloc, "", 0);
		return 0;
	}
	if (as_value(la.t) != T_ID && la.t != T_COMMA)
		return found(err, la, "',', ')' or identifier");
	for (;;) {
		t = next(ps);
		if (as_value(t.t) == T_ID) {
			push_value(r, &alloc, t.s, (size_t)t.n);
			struct token t2 = peek(ps);
			if (t2.t == T_CLOSE)
				break;
			if (t2.t != T_COMMA)
				return found(err, t2, "',' or ')'");
		} else if (t.t == T_COMMA) {
			if (r->nvalues == 0)
				push_value(r, &alloc, "", 0); /* "(," */
			struct token t2 = peek(ps);
			if (t2.t == T_CLOSE) {
				push_value(r, &alloc, "", 0); /* ",)" */
				break;
			}
			if (t2.t == T_COMMA) {
				next(ps);
				push_value(r, &alloc, "", 0); /* ",," */
			}
		} else {
			return found(err, t, "',', or identifier");
		}
	}
	next(ps); /* the ')' */
	return 0;
}

static int parse_exact_value(struct parser *ps, struct api_sel_req *r, struct gerr **err)
{
	size_t alloc = 0;
	struct token la = peek(ps);
	if (la.t == T_EOS || la.t == T_COMMA) {
		push_value(r, &alloc, "", 0);
		return 0;
	}
	struct token t = next(ps);
	if (as_value(t.t) != T_ID)
		return found(err, t, "identifier");
	push_value(r, &alloc, t.s, (size_t)t.n);
	return 0;
}

static int parse_operator(struct parser *ps, enum api_sel_op *op, bool *exact,
			  struct gerr **err)
{
	struct token t = next(ps);
	*exact = t.t == T_EQ || t.t == T_DEQ || t.t == T_NEQ;
	switch (t.t) {
	case T_IN: case T_EQ: case T_DEQ: *op = SEL_IN; return 0;
	case T_NOTIN: case T_NEQ: *op = SEL_NOT_IN; return 0;
	case T_GT: *op = SEL_GT; return 0;
	case T_LT: *op = SEL_LT; return 0;
	default: return found(err, t, "in, notin, =, ==, !=, gt, lt");
	}
}

static int parse_requirement(struct parser *ps, struct selb *b, struct gerr **err)
{
	struct api_sel_req r = { 0 };
	bool exact = false;
	struct token t = next(ps);
	bool not = t.t == T_NOT;
	if (not)
		t = next(ps);
	if (as_value(t.t) != T_ID)
		return found(err, t, "identifier");
	r.key = xstrndup(t.s, (size_t)t.n);
	const char *why = check_label_key(r.key);
	if (why) {
		gerr_set(err, GERR_FAIL, "key: Invalid value: \"%s\": %s", r.key, why);
		req_free(&r);
		return -1;
	}
	enum tok la = peek(ps).t;
	if (not || la == T_EOS || la == T_COMMA) {
		r.op = not ? SEL_DOES_NOT_EXIST : SEL_EXISTS;
	} else if (parse_operator(ps, &r.op, &exact, err) < 0 ||
		   ((r.op == SEL_IN || r.op == SEL_NOT_IN) && !exact ? parse_values(ps, &r, err)
								   : parse_exact_value(ps, &r, err)) < 0) {
		req_free(&r);
		return -1;
	}
	return selb_add(b, &r, exact, err);
}

static int parse_selector(struct parser *ps, struct selb *b, struct gerr **err)
{
	for (;;) {
		struct token la = peek(ps);
		if (la.t == T_EOS)
			return 0;
		if (as_value(la.t) != T_ID && la.t != T_NOT)
			return found(err, la, "!, identifier, or 'end of string'");
		if (parse_requirement(ps, b, err) < 0)
			return gerr_wrap(err, "unable to parse requirement");
		struct token t = next(ps);
		if (t.t == T_EOS)
			return 0;
		if (t.t != T_COMMA)
			return found(err, t, "',' or 'end of string'");
		la = peek(ps);
		if (as_value(la.t) != T_ID && la.t != T_NOT)
			return found(err, la, "identifier after ','");
	}
}

int api_selector_parse(const char *s, struct api_selector *ret, struct gerr **err)
{
	struct selb b = { { 0 }, 0 };
	struct parser ps = { s, { T_EOS, s, 0 } };
	next(&ps);
	if (parse_selector(&ps, &b, err) < 0)
		return selb_fail(&b, ret);
	selb_finish(&b, ret);
	return 0;
}

/* ---- LabelSelector nodes --------------------------------------------------------- */

static bool is_null(const struct ynode *n)
{
	return !n || (n->type == YN_SCALAR && n->tag == YS_NULL && !n->quoted);
}

/* Scalar text, "" for null (Go decodes JSON null into a string as ""). */
static const char *scalar_text(const struct ynode *n)
{
	return is_null(n) ? "" : yn_str(n);
}

static int add_match_labels(struct selb *b, const struct ynode *ml, struct gerr **err)
{
	if (is_null(ml))
		return 0;
	if (ml->type != YN_MAP)
		return gerr_set(err, GERR_FAIL, "must be a map of strings");
	for (size_t i = 0; i < yn_len(ml); i++) {
		const char *k = yn_str(ml->items[2 * i]), *v = scalar_text(ml->items[2 * i + 1]);
		if (!k || !v)
			return gerr_set(err, GERR_FAIL, "must be a map of strings");
		struct api_sel_req r = { .key = xstrdup(k), .op = SEL_IN };
		size_t alloc = 0;
		push_value(&r, &alloc, v, strlen(v));
		if (selb_add(b, &r, true, err) < 0)
			return -1;
	}
	return 0;
}

static int expr_operator(const char *s, enum api_sel_op *op, struct gerr **err)
{
	static const struct { const char *s; enum api_sel_op op; } ops[] = {
		{ "In", SEL_IN }, { "NotIn", SEL_NOT_IN }, { "Exists", SEL_EXISTS },
		{ "DoesNotExist", SEL_DOES_NOT_EXIST },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		if (strcmp(s, ops[i].s) == 0) {
			*op = ops[i].op;
			return 0;
		}
	}
	return gerr_set(err, GERR_FAIL, "\"%s\" is not a valid pod selector operator", s);
}

static int add_expression(struct selb *b, const struct ynode *e, struct gerr **err)
{
	if (!e || e->type != YN_MAP)
		return gerr_set(err, GERR_FAIL, "must be a map (key, operator, values)");
	const char *key = scalar_text(yn_get(e, "key"));
	const char *ops = scalar_text(yn_get(e, "operator"));
	const struct ynode *vals = yn_get(e, "values");
	if (!key)
		return gerr_set(err, GERR_FAIL, "key: must be a string");
	if (!ops)
		return gerr_set(err, GERR_FAIL, "operator: must be a string");
	if (!is_null(vals) && vals->type != YN_SEQ)
		return gerr_set(err, GERR_FAIL, "values: must be a list of strings");
	struct api_sel_req r = { 0 };
	if (expr_operator(ops, &r.op, err) < 0)
		return -1;
	size_t alloc = 0;
	for (size_t i = 0; i < yn_len(vals); i++) {
		const char *v = scalar_text(yn_at(vals, i));
		if (!v) {
			req_free(&r);
			return gerr_set(err, GERR_FAIL, "values[%zu]: must be a string", i);
		}
		push_value(&r, &alloc, v, strlen(v));
	}
	r.key = xstrdup(key);
	return selb_add(b, &r, false, err);
}

/* Kubernetes' LabelSelectorAsSelector: nil matches nothing, {} everything. */
int api_selector_from_node(const struct ynode *sel, struct api_selector *ret,
			   struct gerr **err)
{
	struct selb b = { { 0 }, 0 };
	if (is_null(sel)) {
		memset(ret, 0, sizeof(*ret));
		ret->nothing = true;
		return 0;
	}
	if (sel->type != YN_MAP) {
		gerr_set(err, GERR_FAIL, "label selector must be a map");
		return selb_fail(&b, ret);
	}
	if (add_match_labels(&b, yn_get(sel, "matchLabels"), err) < 0) {
		gerr_wrap(err, "matchLabels");
		return selb_fail(&b, ret);
	}
	const struct ynode *exprs = yn_get(sel, "matchExpressions");
	if (!is_null(exprs) && exprs->type != YN_SEQ) {
		gerr_set(err, GERR_FAIL, "matchExpressions: must be a list");
		return selb_fail(&b, ret);
	}
	for (size_t i = 0; i < yn_len(exprs); i++) {
		if (add_expression(&b, yn_at(exprs, i), err) < 0) {
			gerr_wrap(err, "matchExpressions[%zu]", i);
			return selb_fail(&b, ret);
		}
	}
	selb_finish(&b, ret);
	return 0;
}

/* ---- matching -------------------------------------------------------------------- */

static bool has_value(const struct api_sel_req *r, const char *v)
{
	for (size_t i = 0; i < r->nvalues; i++)
		if (strcmp(r->values[i], v) == 0)
			return true;
	return false;
}

static bool req_matches(const struct api_sel_req *r, const char *v)
{
	int64_t have, want;
	switch (r->op) {
	case SEL_IN:
		return v && has_value(r, v);
	case SEL_NOT_IN:
		return !v || !has_value(r, v);
	case SEL_EXISTS:
		return v != NULL;
	case SEL_DOES_NOT_EXIST:
		return v == NULL;
	case SEL_GT:
	case SEL_LT:
		if (!v || r->nvalues != 1 || !go_int(v, &have) || !go_int(r->values[0], &want))
			return false;
		return r->op == SEL_GT ? have > want : have < want;
	}
	return false;
}

bool api_selector_matches(const struct api_selector *sel, api_label_fn get, void *ctx)
{
	if (!sel || sel->nothing)
		return false;
	for (size_t i = 0; i < sel->n; i++)
		if (!req_matches(&sel->reqs[i], get(ctx, sel->reqs[i].key)))
			return false;
	return true;
}

static const char *node_label(void *ctx, const char *key)
{
	return yn_str(yn_get(ctx, key));
}

bool api_selector_matches_node(const struct api_selector *sel, const struct ynode *labels)
{
	return api_selector_matches(sel, node_label, (void *)labels);
}
