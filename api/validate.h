/* api/validate.h: shared by validate.c and validate_rules.c only. */
#ifndef GITOPS_API_VALIDATE_H
#define GITOPS_API_VALIDATE_H

#include "api/internal.h"

/* One step of a field path: a struct field, a sequence index, or a map key. */
struct vseg {
	const char *key;  /* field or map key; NULL for an index */
	size_t index;
	bool mapkey;
};

/* The state of one object's validation. The field path of the node being checked
 * ("spec.template.spec.containers[0]") is a stack of segments that push/pop keep
 * in step; it is rendered to text only when a diagnostic needs it. */
struct vctx {
	struct api_set *s;
	struct api_object *o;
	struct vseg *segs;
	size_t depth, alloc;
	struct sbuf label; /* "Deployment default/web" */
};

/* Render the current path (+ "." sub) into out. */
void vpath(const struct vctx *v, const char *sub, struct sbuf *out);
/* Whether the path is exactly the one field `key` (e.g. "metadata"). */
bool vpath_is(const struct vctx *v, const char *key);
/* Whether any field segment of the path equals key. */
bool vpath_has(const struct vctx *v, const char *key);

typedef void (*hook_fn)(struct vctx *v, const struct ynode *n);
struct hook {
	const char *type; /* schema type name */
	hook_fn fn;
};
extern const struct hook validate_hooks[]; /* terminated by { NULL } */

/* Error/warning at node `at` (its position), at path + "." + sub (sub may be NULL). */
void vc_err(struct vctx *v, const struct ynode *at, const char *sub, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
void vc_warn(struct vctx *v, const struct ynode *at, const char *sub, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
size_t vpush_key(struct vctx *v, const char *key);
size_t vpush_index(struct vctx *v, size_t i);
size_t vpush_mapkey(struct vctx *v, const char *key);
void vpop(struct vctx *v, size_t keep);
bool is_null(const struct ynode *n);
void vcheck_object(struct vctx *v, const struct ynode *n, int16_t type_index);
void vcheck_value(struct vctx *v, const struct ynode *n, uint8_t type, uint8_t elem, int16_t ref,
		  const char *const *enumv);

#endif
