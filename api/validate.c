/* validate.c: the schema-driven walk over one object's tree — types, enums,
 * required and unknown fields (with the nearest known name) — calling the per-type
 * hooks of validate_rules.c for Kubernetes' semantic rules. */
#include "api/validate.h"

#include <stdlib.h>
#include <string.h>

static hook_fn *hooks; /* by schema type index; built once */

static const char *tag_name(const struct ynode *n)
{
	if (n->type == YN_MAP)
		return "object";
	if (n->type == YN_SEQ)
		return "array";
	switch (n->tag) {
	case YS_NULL: return "null";
	case YS_BOOL: return "boolean";
	case YS_INT: return "integer";
	case YS_FLOAT: return "number";
	default: return "string";
	}
}

static const char *type_name(uint8_t t)
{
	switch (t) {
	case FT_STRING: case FT_TIME: case FT_BYTES: return "string";
	case FT_INT: return "integer";
	case FT_BOOL: return "boolean";
	case FT_FLOAT: return "number";
	case FT_OBJECT: case FT_MAP: return "object";
	case FT_ARRAY: return "array";
	case FT_INT_OR_STRING: return "integer or string";
	case FT_QUANTITY: return "quantity (string or number)";
	default: return "any";
	}
}

void vpath(const struct vctx *v, const char *sub, struct sbuf *out)
{
	for (size_t i = 0; i < v->depth; i++) {
		const struct vseg *g = &v->segs[i];
		if (!g->key)
			sb_addf(out, "[%zu]", g->index);
		else if (g->mapkey)
			sb_addf(out, "[%s]", g->key);
		else
			sb_addf(out, "%s%s", out->len ? "." : "", g->key);
	}
	if (sub && *sub)
		sb_addf(out, "%s%s", out->len && sub[0] != '[' ? "." : "", sub);
}

bool vpath_is(const struct vctx *v, const char *key)
{
	return v->depth == 1 && v->segs[0].key && !v->segs[0].mapkey && !strcmp(v->segs[0].key, key);
}

bool vpath_has(const struct vctx *v, const char *key)
{
	for (size_t i = 0; i < v->depth; i++)
		if (v->segs[i].key && !v->segs[i].mapkey && !strcmp(v->segs[i].key, key))
			return true;
	return false;
}

static void vdiag(struct vctx *v, enum api_severity sev, const struct ynode *at, const char *sub,
		  const char *fmt, va_list ap)
{
	struct sbuf msg = SBUF_INIT, path = SBUF_INIT;
	sb_vaddf(&msg, fmt, ap);
	vpath(v, sub, &path);
	const struct ynode *pos = at && at->line ? at : NULL;
	api_diag_add(v->s, sev, v->o->file, pos ? pos->line : v->o->line, pos ? pos->col : v->o->col,
		     v->label.buf, path.buf, msg.buf);
	sb_release(&path);
	sb_release(&msg);
	if (sev == API_ERROR)
		v->o->invalid = true;
}

void vc_err(struct vctx *v, const struct ynode *at, const char *sub, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(v, API_ERROR, at, sub, fmt, ap);
	va_end(ap);
}

void vc_warn(struct vctx *v, const struct ynode *at, const char *sub, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(v, API_WARNING, at, sub, fmt, ap);
	va_end(ap);
}

static size_t vpush(struct vctx *v, struct vseg seg)
{
	GROW(v->segs, v->alloc, v->depth + 1);
	v->segs[v->depth] = seg;
	return v->depth++;
}

size_t vpush_key(struct vctx *v, const char *key)
{
	return vpush(v, (struct vseg){ .key = key });
}

size_t vpush_index(struct vctx *v, size_t i)
{
	return vpush(v, (struct vseg){ .index = i });
}

size_t vpush_mapkey(struct vctx *v, const char *key)
{
	return vpush(v, (struct vseg){ .key = key, .mapkey = true });
}

void vpop(struct vctx *v, size_t keep)
{
	v->depth = keep;
}

bool is_null(const struct ynode *n)
{
	return !n || (n->type == YN_SCALAR && n->tag == YS_NULL);
}

static void suggest(struct vctx *v, const struct ynode *key, const struct schema_type *t)
{
	const char *best = NULL;
	size_t cap = strlen(key->str) / 3 + 2, bestd = cap;
	for (size_t i = 0; i < t->nfields; i++) {
		size_t d = edit_distance(key->str, t->fields[i].name, bestd);
		if (d < bestd) {
			bestd = d;
			best = t->fields[i].name;
		}
	}
	size_t keep = vpush_key(v, key->str);
	if (best)
		vc_err(v, key, NULL, "unknown field (did you mean \"%s\"?)", best);
	else
		vc_err(v, key, NULL, "unknown field");
	vpop(v, keep);
}

static void check_enum(struct vctx *v, const struct ynode *n, const char *const *enumv)
{
	if (n->type != YN_SCALAR || is_null(n))
		return;
	for (const char *const *e = enumv; *e; e++)
		if (strcmp(n->str, *e) == 0)
			return;
	struct sbuf list = SBUF_INIT;
	for (const char *const *e = enumv; *e; e++)
		sb_addf(&list, "%s\"%s\"", e == enumv ? "" : ", ", *e);
	vc_err(v, n, NULL, "Unsupported value: \"%s\": supported values: %s", n->str, list.buf);
	sb_release(&list);
}

static bool want_scalar(struct vctx *v, const struct ynode *n, uint8_t type)
{
	if (n->type == YN_SCALAR)
		return true;
	vc_err(v, n, NULL, "wrong type: expected %s, got %s", type_name(type), tag_name(n));
	return false;
}

static void check_scalar(struct vctx *v, const struct ynode *n, uint8_t type)
{
	if (!want_scalar(v, n, type))
		return;
	bool ok;
	switch (type) {
	case FT_STRING:
	case FT_TIME:
		ok = n->tag == YS_STR;
		if (!ok) {
			vc_err(v, n, NULL, "wrong type: expected string, got %s (quote it: \"%s\")",
			     tag_name(n), n->str);
			return;
		}
		break;
	case FT_INT:
		ok = n->tag == YS_INT;
		if (ok) {
			int64_t i;
			if (!yn_int(n, &i)) {
				vc_err(v, n, NULL, "integer %s is out of range", n->str);
				return;
			}
		}
		break;
	case FT_BOOL:
		ok = n->tag == YS_BOOL;
		break;
	case FT_FLOAT:
		ok = n->tag == YS_INT || n->tag == YS_FLOAT;
		break;
	case FT_INT_OR_STRING:
		ok = n->tag == YS_INT || n->tag == YS_STR;
		break;
	case FT_QUANTITY: {
		ok = n->tag == YS_INT || n->tag == YS_FLOAT || n->tag == YS_STR;
		int64_t milli;
		struct gerr *e = NULL;
		if (ok && api_quantity_parse(n->str, &milli, &e) < 0) {
			vc_err(v, n, NULL, "Invalid value: \"%s\": %s", n->str, e ? e->msg : "invalid quantity");
			gerr_free(e);
		}
		break;
	}
	case FT_BYTES: {
		ok = n->tag == YS_STR;
		const char *why = ok ? check_base64(n->str, n->len) : NULL;
		if (why)
			vc_err(v, n, NULL, "Invalid value: %s", why);
		break;
	}
	default:
		ok = true;
	}
	if (!ok)
		vc_err(v, n, NULL, "wrong type: expected %s, got %s", type_name(type), tag_name(n));
}

void vcheck_value(struct vctx *v, const struct ynode *n, uint8_t type, uint8_t elem, int16_t ref,
		  const char *const *enumv)
{
	if (is_null(n))
		return; /* null is the same as absent */
	switch (type) {
	case FT_OBJECT:
		vcheck_object(v, n, ref);
		return;
	case FT_ANY:
		return;
	case FT_ARRAY:
		if (n->type != YN_SEQ) {
			vc_err(v, n, NULL, "wrong type: expected array, got %s", tag_name(n));
			return;
		}
		for (size_t i = 0; i < n->n; i++) {
			size_t keep = vpush_index(v, i);
			vcheck_value(v, n->items[i], elem, 0, ref, enumv);
			vpop(v, keep);
		}
		return;
	case FT_MAP:
		if (n->type != YN_MAP) {
			vc_err(v, n, NULL, "wrong type: expected object, got %s", tag_name(n));
			return;
		}
		for (size_t i = 0; i < n->n; i++) {
			size_t keep = vpush_mapkey(v, n->items[2 * i]->str);
			if (elem == FT_STRING && !is_null(n->items[2 * i + 1]) &&
			    n->items[2 * i + 1]->type == YN_SCALAR && n->items[2 * i + 1]->tag != YS_STR)
				vc_err(v, n->items[2 * i + 1], NULL,
				     "wrong type: expected string, got %s (quote it: \"%s\")",
				     tag_name(n->items[2 * i + 1]), n->items[2 * i + 1]->str);
			else
				vcheck_value(v, n->items[2 * i + 1], elem, 0, ref, enumv);
			vpop(v, keep);
		}
		return;
	default:
		check_scalar(v, n, type);
		if (enumv && n->type == YN_SCALAR && n->tag == YS_STR)
			check_enum(v, n, enumv);
	}
}

void vcheck_object(struct vctx *v, const struct ynode *n, int16_t ti)
{
	if (ti < 0 || (size_t)ti >= schema_ntypes)
		return;
	if (n->type != YN_MAP) {
		vc_err(v, n, NULL, "wrong type: expected object, got %s", tag_name(n));
		return;
	}
	const struct schema_type *t = &schema_types[ti];
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *key = n->items[2 * i];
		const struct schema_field *f = schema_field(t, key->str);
		if (!f) {
			suggest(v, key, t);
			continue;
		}
		size_t keep = vpush_key(v, f->name);
		vcheck_value(v, n->items[2 * i + 1], f->type, f->elem, f->ref, f->enumv);
		vpop(v, keep);
	}
	for (size_t i = 0; i < t->nfields; i++) {
		const struct schema_field *f = &t->fields[i];
		if ((f->flags & FF_REQUIRED) && is_null(yn_get(n, f->name)))
			vc_err(v, n, f->name, "Required value");
	}
	if (hooks && hooks[ti])
		hooks[ti](v, n);
}

static void build_hooks(void)
{
	if (hooks)
		return;
	hooks = xcalloc(schema_ntypes, sizeof(*hooks));
	for (const struct hook *h = validate_hooks; h->type; h++) {
		int i = schema_type_index(h->type);
		if (i >= 0)
			hooks[i] = h->fn;
	}
}

void api_validate_object(struct api_set *s, struct api_object *o)
{
	build_hooks();
	struct vctx v = { .s = s, .o = o, .label = SBUF_INIT };
	api_object_label(o, &v.label);
	size_t nk;
	const struct api_kind *kinds = api_kinds(&nk);
	static int16_t type_of_kind[64];
	size_t ki = (size_t)(o->kind - kinds);
	if (!type_of_kind[ki])
		type_of_kind[ki] = (int16_t)(schema_type_index(o->kind->type) + 1);
	int ti = type_of_kind[ki] - 1;
	vcheck_object(&v, o->root, (int16_t)ti);
	if (!*o->name && is_null(yn_path(o->root, "metadata.generateName")))
		vc_err(&v, o->root, "metadata.name", "Required value: name or generateName is required");
	free(v.segs);
	sb_release(&v.label);
}
