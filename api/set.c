/* set.c: a set of decoded objects and their diagnostics — adding files,
 * identifying each document's kind/namespace/name, cross-object checks. */
#include "api/internal.h"

#include <stdlib.h>
#include <string.h>

void api_set_init(struct api_set *s)
{
	memset(s, 0, sizeof(*s));
	arena_init(&s->arena, API_MAX_SET_BYTES);
}

void api_set_release(struct api_set *s)
{
	arena_release(&s->arena);
	free(s->objs);
	free(s->diags);
	memset(s, 0, sizeof(*s));
}

static const char *adup(struct api_set *s, const char *str)
{
	const char *p = arena_strdup(&s->arena, str ? str : "");
	return p ? p : "";
}

void api_diag_add(struct api_set *s, enum api_severity sev, const char *file, uint32_t line,
		  uint32_t col, const char *object, const char *path, const char *msg)
{
	GROW(s->diags, s->adiags, s->ndiags + 1);
	s->diags[s->ndiags++] = (struct api_diag){
		.sev = sev, .file = adup(s, file), .line = line, .col = col,
		.object = adup(s, object), .path = adup(s, path), .msg = adup(s, msg),
	};
	if (sev == API_ERROR)
		s->nerrors++;
	else
		s->nwarnings++;
}

void api_diag_format(const struct api_diag *d, struct sbuf *out)
{
	sb_addf(out, "%s:%u:%u: ", d->file, d->line, d->col);
	if (*d->object)
		sb_addf(out, "%s: ", d->object);
	if (*d->path)
		sb_addf(out, "%s: ", d->path);
	if (d->sev == API_WARNING)
		sb_adds(out, "warning: ");
	sb_adds(out, d->msg);
}

/* ---- identifying a document ---- */

struct add_ctx {
	struct api_set *set;
};

static void doc_error(struct api_set *s, const char *file, const struct ynode *at,
		      const char *object, const char *path, const char *msg)
{
	api_diag_add(s, API_ERROR, file, at->line, at->col, object, path, msg);
}

static const char *scalar_field(struct api_set *s, const char *file, const struct ynode *root,
				const char *key, const char *object, bool *ok)
{
	const struct ynode *v = yn_get(root, key);
	if (!v || (v->type == YN_SCALAR && v->tag == YS_NULL)) {
		doc_error(s, file, root, object, key, "required field is missing");
		*ok = false;
		return NULL;
	}
	if (v->type != YN_SCALAR || v->tag != YS_STR) {
		doc_error(s, file, v, object, key, "must be a string");
		*ok = false;
		return NULL;
	}
	return v->str;
}

static void on_doc(void *ctx, const char *file, unsigned doc_index, struct ynode *root,
		   uint32_t line, uint32_t col)
{
	struct api_set *s = ((struct add_ctx *)ctx)->set;
	(void)doc_index;
	if (!root || (root->type == YN_SCALAR && root->tag == YS_NULL))
		return; /* an empty document, e.g. a trailing "---" */
	if (root->type != YN_MAP) {
		doc_error(s, file, root, "", "", "a manifest must be a mapping (apiVersion, kind, metadata...)");
		return;
	}
	bool ok = true;
	const char *api_version = scalar_field(s, file, root, "apiVersion", "", &ok);
	const char *kind = scalar_field(s, file, root, "kind", "", &ok);
	if (!ok)
		return;
	struct sbuf why = SBUF_INIT;
	const struct api_kind *k = api_kind_for(api_version, kind, &why);
	if (!k) {
		const struct ynode *at = yn_get(root, "apiVersion");
		if (strstr(why.buf, "is not supported"))
			at = yn_get(root, "kind");
		doc_error(s, file, at, kind, strstr(why.buf, "is not supported") ? "kind" : "apiVersion",
			  why.buf);
		sb_release(&why);
		return;
	}
	sb_release(&why);
	const struct ynode *meta = yn_get(root, "metadata");
	const char *name = yn_str(yn_get(meta, "name"));
	const char *ns = yn_str(yn_get(meta, "namespace"));
	GROW(s->objs, s->aobjs, s->nobjs + 1);
	struct api_object *o = &s->objs[s->nobjs++];
	*o = (struct api_object){
		.kind = k, .api_version = adup(s, api_version), .file = adup(s, file),
		.line = line, .col = col, .root = root,
		.name = name ? name : "",
		.ns = k->namespaced ? (ns && *ns ? ns : "default") : "",
	};
	api_validate_object(s, o);
	if (api_is_config(o))
		api_check_config(s, o);
}

void api_add_file(struct api_set *s, const char *path, const char *data, size_t len)
{
	struct add_ctx ctx = { s };
	s->nfiles++;
	api_decode_file(s, path, data, len, on_doc, &ctx);
}

/* ---- cross-object checks ---- */

static int cmp_obj_key(const struct api_object *a, const struct api_object *b)
{
	int c = strcmp(a->kind->kind, b->kind->kind);
	if (!c)
		c = strcmp(a->ns, b->ns);
	if (!c)
		c = strcmp(a->name, b->name);
	return c;
}

static int cmp_obj_ptr(const void *x, const void *y)
{
	const struct api_object *a = *(const struct api_object *const *)x;
	const struct api_object *b = *(const struct api_object *const *)y;
	int c = cmp_obj_key(a, b);
	return c ? c : (a < b ? -1 : a > b);
}

void api_object_label(const struct api_object *o, struct sbuf *out)
{
	sb_addf(out, "%s %s%s%s", o->kind->kind, o->ns, *o->ns ? "/" : "", o->name);
}

static void check_duplicates(struct api_set *s, struct api_object **sorted)
{
	for (size_t i = 1; i < s->nobjs; i++) {
		struct api_object *a = sorted[i - 1], *b = sorted[i];
		if (!*a->name || cmp_obj_key(a, b))
			continue;
		struct sbuf label = SBUF_INIT, msg = SBUF_INIT;
		api_object_label(b, &label);
		/* report on the later one, naming where the first is */
		struct api_object *first = a, *dup = b;
		if (strcmp(a->file, b->file) > 0 || (!strcmp(a->file, b->file) && a->line > b->line)) {
			first = b;
			dup = a;
		}
		sb_addf(&msg, "duplicate of %s in %s:%u:%u", label.buf, first->file, first->line,
			first->col);
		api_diag_add(s, API_ERROR, dup->file, dup->line, dup->col, label.buf, "", msg.buf);
		dup->invalid = true;
		sb_release(&label);
		sb_release(&msg);
	}
}

static int cmp_diag(const void *x, const void *y)
{
	const struct api_diag *a = x, *b = y;
	int c = strcmp(a->file, b->file);
	if (c)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	c = strcmp(a->path, b->path);
	return c ? c : strcmp(a->msg, b->msg);
}

void api_finish(struct api_set *s)
{
	if (s->finished)
		return;
	s->finished = true;
	struct api_object **sorted = xcalloc(s->nobjs + 1, sizeof(*sorted));
	for (size_t i = 0; i < s->nobjs; i++)
		sorted[i] = &s->objs[i];
	qsort(sorted, s->nobjs, sizeof(*sorted), cmp_obj_ptr);
	check_duplicates(s, sorted);
	api_check_references(s, sorted, s->nobjs);
	free(sorted);
	for (size_t i = 0; i < s->nobjs; i++)
		if (!s->objs[i].invalid)
			api_default_object(s, &s->objs[i]);
	if (s->ndiags)
		qsort(s->diags, s->ndiags, sizeof(*s->diags), cmp_diag);
}
