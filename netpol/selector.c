/* netpol/selector.c: LabelSelector (matchLabels, matchExpressions) matched against JSON labels. */
#define NETPOL_INTERNAL
#include "netpol/netpol.h"

#include <string.h>

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

static const char *label(const json_t *labels, const char *synth, const char *key)
{
	if (synth && !strcmp(key, NS_NAME_LABEL))
		return synth;
	return json_string_value(json_object_get(labels, key));
}

static bool in_values(const json_t *values, const char *v)
{
	const json_t *x;
	size_t i;
	json_array_foreach(values, i, x)
		if (json_is_string(x) && !strcmp(json_string_value(x), v))
			return true;
	return false;
}

/* 1 holds, 0 does not, -1 malformed. */
static int requirement(const json_t *req, const json_t *labels, const char *synth)
{
	const char *key = np_str(req, "key", NULL), *op = np_str(req, "operator", NULL);
	const json_t *values = json_object_get(req, "values");
	size_t nv = json_is_array(values) ? json_array_size(values) : 0;
	if (!key || !op || (values && !json_is_null(values) && !json_is_array(values)))
		return -1;
	const char *v = label(labels, synth, key);
	if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
		if (!nv)
			return -1;
		bool in = v && in_values(values, v);
		return op[0] == 'I' ? in : !in;
	}
	if (nv)
		return -1;
	if (!strcmp(op, "Exists"))
		return v != NULL;
	if (!strcmp(op, "DoesNotExist"))
		return v == NULL;
	return -1;
}

/* A null or empty selector matches everything; callers give null its meaning. */
int np_selector_match(const json_t *sel, const json_t *labels, const char *synth_name)
{
	if (!sel || json_is_null(sel))
		return 1;
	if (!json_is_object(sel))
		return -1;
	const json_t *ml = json_object_get(sel, "matchLabels"), *me = json_object_get(sel, "matchExpressions");
	const char *k;
	const json_t *x;
	size_t i;
	if ((ml && !json_is_null(ml) && !json_is_object(ml)) ||
	    (me && !json_is_null(me) && !json_is_array(me)))
		return -1;
	int r = 1;
	json_object_foreach((json_t *)ml, k, x) {
		const char *v = label(labels, synth_name, k);
		if (!json_is_string(x))
			return -1;
		if (!v || strcmp(v, json_string_value(x)))
			r = 0;
	}
	json_array_foreach(me, i, x) {
		int q = requirement(x, labels, synth_name);
		if (q < 0)
			return -1;
		if (!q)
			r = 0;
	}
	return r;
}

/* Shape only: evaluates against no labels (every part is visited). */
int np_selector_check(const json_t *sel)
{
	return np_selector_match(sel, NULL, NULL) < 0 ? -1 : 0;
}
