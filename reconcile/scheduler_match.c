/* scheduler_match.c: selectors, node selector terms, taints, quantities, host ports (JSON). */
#include "reconcile/scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"

enum { REQ_NO, REQ_YES, REQ_BAD };

/* jansson's iteration macros take non-const values; we only read through them. */
static json_t *ro(const json_t *j)
{
	return (json_t *)j;
}

static const char *str_field(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

const char *sched_json_label(const void *labels, const char *key)
{
	return json_string_value(json_object_get(labels, key));
}

const char *sched_node_label(const void *node, const char *key)
{
	const struct sched_node *n = node;
	const char *v = sched_json_label(n->labels, key);
	if (!v && !strcmp(key, LABEL_HOSTNAME))
		v = n->name;
	return v;
}

bool sched_strings_contain(const json_t *arr, const char *s)
{
	size_t i;
	json_t *x;
	json_array_foreach(ro(arr), i, x)
		if (s && json_is_string(x) && !strcmp(json_string_value(x), s))
			return true;
	return false;
}

/* Gt/Lt: the label and the single value are integers (labels.Requirement). */
static int req_compare(bool gt, const json_t *values, const char *label)
{
	int64_t want, have;
	if (json_array_size(values) != 1 ||
	    parse_i64(or_empty(json_string_value(json_array_get(values, 0))), INT64_MIN, INT64_MAX,
		      &want) < 0)
		return REQ_BAD;
	if (!label || parse_i64(label, INT64_MIN, INT64_MAX, &have) < 0)
		return REQ_NO;
	return (gt ? have > want : have < want) ? REQ_YES : REQ_NO;
}

/* One {key, operator, values} requirement; numeric allows Gt and Lt. */
static int req_eval(const json_t *r, bool numeric, sched_label_fn get, const void *ctx)
{
	const char *key = str_field(r, "key"), *op = str_field(r, "operator");
	const json_t *values = json_object_get(r, "values");
	size_t nv = json_array_size(values);
	if (!key || !op)
		return REQ_BAD;
	const char *v = get(ctx, key);
	bool in = !strcmp(op, "In");
	if (in || !strcmp(op, "NotIn")) {
		if (!nv)
			return REQ_BAD;
		return sched_strings_contain(values, v) == in ? REQ_YES : REQ_NO;
	}
	bool exists = !strcmp(op, "Exists");
	if (exists || !strcmp(op, "DoesNotExist")) {
		if (nv)
			return REQ_BAD;
		return (v != NULL) == exists ? REQ_YES : REQ_NO;
	}
	if (numeric && (!strcmp(op, "Gt") || !strcmp(op, "Lt")))
		return req_compare(op[0] == 'G', values, v);
	return REQ_BAD;
}

bool sched_selector_matches(const json_t *sel, sched_label_fn get, const void *ctx)
{
	const char *key;
	json_t *v, *r;
	size_t i;
	if (!json_is_object(sel))
		return false;
	json_object_foreach(ro(json_object_get(sel, "matchLabels")), key, v) {
		const char *have = get(ctx, key);
		if (!json_is_string(v) || !have || strcmp(have, json_string_value(v)))
			return false;
	}
	json_array_foreach(json_object_get(sel, "matchExpressions"), i, r)
		if (req_eval(r, false, get, ctx) != REQ_YES)
			return false;
	return true;
}

bool sched_selector_is_empty(const json_t *sel)
{
	return json_is_object(sel) && !json_object_size(json_object_get(sel, "matchLabels")) &&
	       !json_array_size(json_object_get(sel, "matchExpressions"));
}

bool sched_label_keys_match(const json_t *obj, const json_t *own, sched_label_fn get,
			    const void *ctx)
{
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(obj, "matchLabelKeys"), i, k) {
		const char *want = sched_json_label(own, or_empty(json_string_value(k)));
		const char *have = want ? get(ctx, json_string_value(k)) : NULL;
		if (want && (!have || strcmp(want, have)))
			return false;
	}
	json_array_foreach(json_object_get(obj, "mismatchLabelKeys"), i, k) {
		const char *want = sched_json_label(own, or_empty(json_string_value(k)));
		const char *have = want ? get(ctx, json_string_value(k)) : NULL;
		if (want && have && !strcmp(want, have))
			return false;
	}
	return true;
}

/* matchFields: only metadata.name, In or NotIn with exactly one value. */
static const char *node_field(const void *node, const char *key)
{
	return !strcmp(key, "metadata.name") ? ((const struct sched_node *)node)->name : NULL;
}

static int field_eval(const json_t *r, const struct sched_node *n)
{
	const char *key = str_field(r, "key"), *op = or_empty(str_field(r, "operator"));
	if (!key || strcmp(key, "metadata.name") || json_array_size(json_object_get(r, "values")) != 1 ||
	    (strcmp(op, "In") && strcmp(op, "NotIn")))
		return REQ_BAD;
	return req_eval(r, false, node_field, n);
}

bool sched_node_term_matches(const json_t *term, const struct sched_node *n)
{
	const json_t *exprs = json_object_get(term, "matchExpressions");
	const json_t *fields = json_object_get(term, "matchFields");
	size_t i;
	json_t *r;
	if (!json_array_size(exprs) && !json_array_size(fields))
		return false;
	json_array_foreach(ro(exprs), i, r)
		if (req_eval(r, true, sched_node_label, n) != REQ_YES)
			return false;
	json_array_foreach(ro(fields), i, r)
		if (field_eval(r, n) != REQ_YES)
			return false;
	return true;
}

bool sched_node_affinity_matches(const json_t *spec, const struct sched_node *n)
{
	const char *key;
	json_t *v, *term;
	size_t i;
	json_object_foreach(ro(json_object_get(spec, "nodeSelector")), key, v) {
		const char *have = sched_node_label(n, key);
		if (!have || strcmp(have, or_empty(json_string_value(v))))
			return false;
	}
	const json_t *na = json_object_get(json_object_get(spec, "affinity"), "nodeAffinity");
	const json_t *req = json_object_get(na, "requiredDuringSchedulingIgnoredDuringExecution");
	if (!json_is_object(req))
		return true;
	json_array_foreach(json_object_get(req, "nodeSelectorTerms"), i, term)
		if (sched_node_term_matches(term, n))
			return true;
	return false;
}

bool sched_node_taint(const struct sched_node *n, size_t i, struct sched_taint *ret)
{
	size_t own = json_array_size(n->taints);
	if (i < own) {
		const json_t *t = json_array_get(n->taints, i);
		ret->key = or_empty(str_field(t, "key"));
		ret->value = or_empty(str_field(t, "value"));
		ret->effect = or_empty(str_field(t, "effect"));
		return true;
	}
	if (i == own && n->not_ready) {
		*ret = (struct sched_taint){ TAINT_NOT_READY, "", "NoSchedule" };
		return true;
	}
	return false;
}

/* v1.Toleration.ToleratesTaint: an empty effect or key matches any; the empty
 * operator means Equal. */
static bool tolerates_one(const json_t *tol, const struct sched_taint *t)
{
	const char *effect = or_empty(str_field(tol, "effect"));
	const char *key = or_empty(str_field(tol, "key"));
	const char *op = or_empty(str_field(tol, "operator"));
	if (*effect && strcmp(effect, t->effect))
		return false;
	if (*key && strcmp(key, t->key))
		return false;
	if (!*op || !strcmp(op, "Equal"))
		return !strcmp(or_empty(str_field(tol, "value")), t->value);
	return !strcmp(op, "Exists");
}

bool sched_tolerates(const json_t *tolerations, const struct sched_taint *t)
{
	size_t i;
	json_t *tol;
	json_array_foreach(ro(tolerations), i, tol)
		if (tolerates_one(tol, t))
			return true;
	return false;
}

bool sched_untolerated(const json_t *tolerations, const struct sched_node *n,
		       struct sched_taint *ret)
{
	for (size_t i = 0; sched_node_taint(n, i, ret); i++) {
		if (strcmp(ret->effect, "NoSchedule") && strcmp(ret->effect, "NoExecute"))
			continue;
		if (!sched_tolerates(tolerations, ret))
			return true;
	}
	return false;
}

int64_t sched_int_field(const json_t *o, const char *key, int64_t dflt, int64_t min, int64_t max)
{
	const json_t *v = json_object_get(o, key);
	int64_t i = json_is_integer(v) ? json_integer_value(v) : dflt;
	return i < min ? min : i > max ? max : i;
}

int64_t sched_quantity_milli(const json_t *q)
{
	int64_t m = 0;
	if (json_is_string(q)) {
		if (api_quantity_parse(json_string_value(q), &m, NULL) < 0)
			return 0;
	} else if (json_is_integer(q)) {
		json_int_t v = json_integer_value(q);
		if (v < 0 || v > INT64_MAX / 1000)
			return 0;
		m = (int64_t)v * 1000;
	} else if (json_is_real(q)) {
		char *s = xasprintf("%.17g", json_real_value(q));
		int rc = api_quantity_parse(s, &m, NULL);
		free(s);
		if (rc < 0)
			return 0;
	}
	return m < 0 ? 0 : m;
}

static void add_ports(const json_t *container, bool host_network, struct sched_port **arr,
		      size_t *n, size_t *alloc)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(container, "ports"), i, p) {
		const json_t *hp = json_object_get(p, "hostPort");
		if (!hp && host_network)
			hp = json_object_get(p, "containerPort");
		if (!json_is_integer(hp) || json_integer_value(hp) <= 0)
			continue;
		const char *ip = or_empty(str_field(p, "hostIP"));
		const char *proto = or_empty(str_field(p, "protocol"));
		GROW(*arr, *alloc, *n + 1);
		(*arr)[(*n)++] = (struct sched_port){ json_integer_value(hp), *proto ? proto : "TCP",
						      *ip ? ip : "0.0.0.0" };
	}
}

size_t sched_pod_ports(const json_t *spec, struct sched_port **ret)
{
	bool host_network = json_is_true(json_object_get(spec, "hostNetwork"));
	size_t n = 0, alloc = 0, i;
	json_t *c;
	*ret = NULL;
	json_array_foreach(json_object_get(spec, "containers"), i, c)
		add_ports(c, host_network, ret, &n, &alloc);
	json_array_foreach(json_object_get(spec, "initContainers"), i, c)
		if (!strcmp(or_empty(str_field(c, "restartPolicy")), "Always"))
			add_ports(c, host_network, ret, &n, &alloc);
	return n;
}

/* HostPortInfo.CheckConflict: 0.0.0.0 on either side overlaps every address. */
bool sched_port_conflict(const json_t *used, const struct sched_port *p)
{
	size_t i;
	json_t *u;
	json_array_foreach(ro(used), i, u) {
		const char *proto = or_empty(str_field(u, "protocol"));
		const char *ip = or_empty(str_field(u, "hostIP"));
		if (json_integer_value(json_object_get(u, "port")) != p->port ||
		    strcmp(*proto ? proto : "TCP", p->protocol))
			continue;
		if (!*ip || !strcmp(ip, "0.0.0.0") || !strcmp(p->ip, "0.0.0.0") || !strcmp(ip, p->ip))
			return true;
	}
	return false;
}
