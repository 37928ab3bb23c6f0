/* validate_rules.c: Kubernetes' semantic validation, one hook per schema type
 * (names, labels, ports, probes, selectors, rollout parameters, schedules...),
 * worded as the API server words it. Types and required fields are checked by
 * the walk in validate.c before a hook runs. */
#include "api/validate.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

static const char *str_of(const struct ynode *n)
{
	return n && n->type == YN_SCALAR && n->tag == YS_STR ? n->str : NULL;
}

static bool int_of(const struct ynode *n, int64_t *ret)
{
	return n && n->type == YN_SCALAR && n->tag == YS_INT && yn_int(n, ret);
}

static void check_name(struct vctx *v, const struct ynode *n, const char *sub,
		       const char *(*check)(const char *))
{
	const char *s = str_of(n);
	const char *why = s ? check(s) : NULL;
	if (why)
		vc_err(v, n, sub, "Invalid value: \"%s\": %s", s, why);
}

static void check_range(struct vctx *v, const struct ynode *map, const char *key, int64_t min,
			int64_t max, const char *what)
{
	const struct ynode *n = yn_get(map, key);
	int64_t i;
	if (int_of(n, &i) && (i < min || i > max))
		vc_err(v, n, key, "Invalid value: %lld: %s", (long long)i, what);
}

static void nonneg(struct vctx *v, const struct ynode *map, const char *key)
{
	check_range(v, map, key, 0, INT64_MAX, "must be greater than or equal to 0");
}

/* A port by number (1-65535) or IANA service name. */
static void check_port_ref(struct vctx *v, const struct ynode *n, const char *sub)
{
	int64_t i;
	if (int_of(n, &i)) {
		if (i < 1 || i > 65535)
			vc_err(v, n, sub, "Invalid value: %lld: must be between 1 and 65535, inclusive",
			     (long long)i);
		return;
	}
	check_name(v, n, sub, check_port_name);
}

/* Count the non-null keys of map among names. */
static int count_present(const struct ynode *map, const char *const *names, const char **ret_second)
{
	int c = 0;
	for (; *names; names++)
		if (!is_null(yn_get(map, *names))) {
			if (++c == 2 && ret_second)
				*ret_second = *names;
		}
	return c;
}

static bool is_root_meta(const struct vctx *v)
{
	return vpath_is(v, "metadata");
}

static const char *owner_kind(const struct vctx *v)
{
	return v->o->kind->kind;
}

/* ---- metadata ---- */

static void meta_hook(struct vctx *v, const struct ynode *n)
{
	const struct ynode *labels = yn_get(n, "labels"), *ann = yn_get(n, "annotations");
	for (size_t i = 0; labels && labels->type == YN_MAP && i < labels->n; i++) {
		const struct ynode *k = labels->items[2 * i], *val = labels->items[2 * i + 1];
		size_t keep = vpush_key(v, "labels");
		const char *why = check_label_key(k->str);
		if (why)
			vc_err(v, k, NULL, "Invalid value: \"%s\": %s", k->str, why);
		why = str_of(val) ? check_label_value(val->str) : NULL;
		if (why)
			vc_err(v, val, NULL, "Invalid value: \"%s\": %s", val->str, why);
		vpop(v, keep);
	}
	for (size_t i = 0; ann && ann->type == YN_MAP && i < ann->n; i++) {
		const struct ynode *k = ann->items[2 * i];
		const char *why = check_label_key(k->str);
		if (why) {
			size_t keep = vpush_key(v, "annotations");
			vc_err(v, k, NULL, "Invalid value: \"%s\": %s", k->str, why);
			vpop(v, keep);
		}
	}
	if (!is_root_meta(v))
		return;
	const char *kind = owner_kind(v);
	const struct ynode *name = yn_get(n, "name");
	if (!strcmp(kind, "Service"))
		check_name(v, name, "name", check_dns1035_label);
	else if (!strcmp(kind, "Namespace"))
		check_name(v, name, "name", check_dns1123_label);
	else
		check_name(v, name, "name", check_dns1123_subdomain);
	const struct ynode *ns = yn_get(n, "namespace");
	if (str_of(ns) && !v->o->kind->namespaced)
		vc_warn(v, ns, "namespace", "%s is cluster-scoped; the namespace is ignored", kind);
	else
		check_name(v, ns, "namespace", check_dns1123_label);
}

/* ---- pods and containers ---- */

static void dup_names(struct vctx *v, const struct ynode *seq, const char *sub, const char *key,
		      const char **seen, size_t *nseen)
{
	for (size_t i = 0; seq && seq->type == YN_SEQ && i < seq->n; i++) {
		const struct ynode *nm = yn_get(seq->items[i], key);
		const char *s = str_of(nm);
		if (!s)
			continue;
		bool dup = false;
		for (size_t j = 0; j < *nseen && !dup; j++)
			dup = strcmp(seen[j], s) == 0;
		if (dup) {
			size_t keep = vpush_key(v, sub);
			size_t k2 = vpush_index(v, i);
			vc_err(v, nm, key, "Duplicate value: \"%s\"", s);
			vpop(v, k2);
			vpop(v, keep);
		} else {
			seen[(*nseen)++] = s;
		}
	}
}

static bool has_name(const struct ynode *seq, const char *path, const char *name)
{
	for (size_t k = 0; seq && seq->type == YN_SEQ && k < seq->n; k++) {
		const char *s = yn_str(yn_path(seq->items[k], path));
		if (s && !strcmp(s, name))
			return true;
	}
	return false;
}

/* volumeMounts name volumes of the pod, or a StatefulSet's volumeClaimTemplates. */
static void check_mounts(struct vctx *v, const struct ynode *containers, const char *sub,
			 const struct ynode *volumes)
{
	const struct ynode *claims = !strcmp(owner_kind(v), "StatefulSet")
		? yn_path(v->o->root, "spec.volumeClaimTemplates") : NULL;
	for (size_t i = 0; containers && containers->type == YN_SEQ && i < containers->n; i++) {
		const struct ynode *mounts = yn_get(containers->items[i], "volumeMounts");
		for (size_t j = 0; mounts && mounts->type == YN_SEQ && j < mounts->n; j++) {
			const struct ynode *nm = yn_get(mounts->items[j], "name");
			const char *s = str_of(nm);
			if (s && !has_name(volumes, "name", s) && !has_name(claims, "metadata.name", s)) {
				size_t keep = vpush_key(v, sub);
				size_t k1 = vpush_index(v, i);
				size_t k2 = vpush_key(v, "volumeMounts");
				size_t k3 = vpush_index(v, j);
				vc_err(v, nm, "name", "Not found: \"%s\"", s);
				vpop(v, k3);
				vpop(v, k2);
				vpop(v, k1);
				vpop(v, keep);
			}
		}
	}
}

static void podspec_hook(struct vctx *v, const struct ynode *n)
{
	const struct ynode *containers = yn_get(n, "containers"), *init = yn_get(n, "initContainers");
	const struct ynode *volumes = yn_get(n, "volumes");
	size_t cap = yn_len(containers) + yn_len(init) + yn_len(volumes) + 1, nseen = 0;
	const char **seen = xcalloc(cap, sizeof(*seen));
	dup_names(v, init, "initContainers", "name", seen, &nseen);
	dup_names(v, containers, "containers", "name", seen, &nseen);
	nseen = 0;
	dup_names(v, volumes, "volumes", "name", seen, &nseen);
	free(seen);
	if (containers && containers->type == YN_SEQ && containers->n == 0)
		vc_err(v, containers, "containers", "Required value");
	check_mounts(v, containers, "containers", volumes);
	check_mounts(v, init, "initContainers", volumes);

	const char *kind = owner_kind(v);
	const struct ynode *rp = yn_get(n, "restartPolicy");
	const char *policy = str_of(rp);
	bool workload = !strcmp(kind, "Deployment") || !strcmp(kind, "ReplicaSet") ||
			!strcmp(kind, "DaemonSet") || !strcmp(kind, "StatefulSet");
	bool job = !strcmp(kind, "Job") || !strcmp(kind, "CronJob");
	if (workload && policy && strcmp(policy, "Always"))
		vc_err(v, rp, "restartPolicy", "Unsupported value: \"%s\": supported values: \"Always\"",
		     policy);
	if (job && !policy)
		vc_err(v, n, "restartPolicy", "Required value: valid values: \"OnFailure\", \"Never\"");
	else if (job && strcmp(policy, "OnFailure") && strcmp(policy, "Never"))
		vc_err(v, rp, "restartPolicy",
		     "Unsupported value: \"%s\": supported values: \"OnFailure\", \"Never\"", policy);
	nonneg(v, n, "terminationGracePeriodSeconds");
	check_range(v, n, "activeDeadlineSeconds", 1, INT64_MAX, "must be greater than or equal to 1");
}

static void container_hook(struct vctx *v, const struct ynode *n)
{
	check_name(v, yn_get(n, "name"), "name", check_dns1123_label);
	if (is_null(yn_get(n, "image")) && !vpath_has(v, "ephemeralContainers"))
		vc_err(v, n, "image", "Required value");
	const struct ynode *ports = yn_get(n, "ports");
	const char **seen = xcalloc(yn_len(ports) + 1, sizeof(*seen));
	size_t nseen = 0;
	dup_names(v, ports, "ports", "name", seen, &nseen);
	free(seen);
}

static void container_port_hook(struct vctx *v, const struct ynode *n)
{
	check_range(v, n, "containerPort", 1, 65535, "must be between 1 and 65535, inclusive");
	check_range(v, n, "hostPort", 0, 65535, "must be between 1 and 65535, inclusive");
	check_name(v, yn_get(n, "name"), "name", check_port_name);
}

static void env_hook(struct vctx *v, const struct ynode *n)
{
	check_name(v, yn_get(n, "name"), "name", check_env_name);
	if (!is_null(yn_get(n, "value")) && !is_null(yn_get(n, "valueFrom")))
		vc_err(v, yn_get(n, "valueFrom"), "valueFrom",
		     "Invalid value: may not be specified when `value` is not empty");
}

static void env_source_hook(struct vctx *v, const struct ynode *n)
{
	static const char *const kinds[] = { "fieldRef", "resourceFieldRef", "configMapKeyRef",
					     "secretKeyRef", NULL };
	const char *second = NULL;
	int c = count_present(n, kinds, &second);
	if (c == 0)
		vc_err(v, n, NULL, "Invalid value: must specify one of: `fieldRef`, `resourceFieldRef`, "
				 "`configMapKeyRef` or `secretKeyRef`");
	else if (c > 1)
		vc_err(v, yn_get(n, second), second,
		     "Invalid value: may not have more than one field specified at a time");
}

static void probe_hook(struct vctx *v, const struct ynode *n)
{
	static const char *const handlers[] = { "exec", "httpGet", "tcpSocket", "grpc", NULL };
	const char *second = NULL;
	int c = count_present(n, handlers, &second);
	if (c == 0)
		vc_err(v, n, NULL, "Required value: must specify a handler type");
	else if (c > 1)
		vc_err(v, yn_get(n, second), second, "Forbidden: may not specify more than 1 handler type");
	nonneg(v, n, "initialDelaySeconds");
	nonneg(v, n, "timeoutSeconds");
	nonneg(v, n, "periodSeconds");
	nonneg(v, n, "successThreshold");
	nonneg(v, n, "failureThreshold");
	int64_t st;
	bool not_readiness = vpath_has(v, "livenessProbe") || vpath_has(v, "startupProbe");
	if (not_readiness && int_of(yn_get(n, "successThreshold"), &st) && st != 1)
		vc_err(v, yn_get(n, "successThreshold"), "successThreshold", "Invalid value: %lld: must be 1",
		     (long long)st);
}

static void handler_hook(struct vctx *v, const struct ynode *n)
{
	static const char *const handlers[] = { "exec", "httpGet", "tcpSocket", "sleep", NULL };
	const char *second = NULL;
	int c = count_present(n, handlers, &second);
	if (c == 0)
		vc_err(v, n, NULL, "Required value: must specify a handler type");
	else if (c > 1)
		vc_err(v, yn_get(n, second), second, "Forbidden: may not specify more than 1 handler type");
}

static void port_ref_hook(struct vctx *v, const struct ynode *n)
{
	const struct ynode *p = yn_get(n, "port");
	if (!is_null(p))
		check_port_ref(v, p, "port");
}

static void grpc_hook(struct vctx *v, const struct ynode *n)
{
	check_range(v, n, "port", 1, 65535, "must be between 1 and 65535, inclusive");
}

static void resources_hook(struct vctx *v, const struct ynode *n)
{
	const struct ynode *lim = yn_get(n, "limits"), *req = yn_get(n, "requests");
	for (size_t i = 0; req && req->type == YN_MAP && i < req->n; i++) {
		const char *res = req->items[2 * i]->str;
		const struct ynode *l = yn_get(lim, res), *r = req->items[2 * i + 1];
		int64_t lm, rm;
		if (!l || l->type != YN_SCALAR || l->tag == YS_NULL || r->type != YN_SCALAR || r->tag == YS_NULL)
			continue;
		if (api_quantity_parse(l->str, &lm, NULL) < 0 || api_quantity_parse(r->str, &rm, NULL) < 0)
			continue;
		if (rm > lm) {
			size_t keep = vpush_key(v, "requests");
			vc_err(v, r, NULL, "Invalid value: \"%s\": must be less than or equal to %s limit of %s",
			     r->str, res, l->str);
			vpop(v, keep);
		}
	}
}

static void volume_hook(struct vctx *v, const struct ynode *n)
{
	check_name(v, yn_get(n, "name"), "name", check_dns1123_label);
	int sources = 0;
	for (size_t i = 0; n->type == YN_MAP && i < n->n; i++)
		if (strcmp(n->items[2 * i]->str, "name") && !is_null(n->items[2 * i + 1]))
			sources++;
	if (sources == 0)
		vc_err(v, n, NULL, "Required value: must specify a volume type");
	else if (sources > 1)
		vc_err(v, n, NULL, "Forbidden: may not specify more than 1 volume type");
}

/* ---- selectors and workloads ---- */

static void selector_hook(struct vctx *v, const struct ynode *n)
{
	const struct ynode *ml = yn_get(n, "matchLabels");
	for (size_t i = 0; ml && ml->type == YN_MAP && i < ml->n; i++) {
		const struct ynode *k = ml->items[2 * i], *val = ml->items[2 * i + 1];
		size_t keep = vpush_key(v, "matchLabels");
		const char *why = check_label_key(k->str);
		if (why)
			vc_err(v, k, NULL, "Invalid value: \"%s\": %s", k->str, why);
		why = str_of(val) ? check_label_value(val->str) : NULL;
		if (why)
			vc_err(v, val, NULL, "Invalid value: \"%s\": %s", val->str, why);
		vpop(v, keep);
	}
	const struct ynode *me = yn_get(n, "matchExpressions");
	for (size_t i = 0; me && me->type == YN_SEQ && i < me->n; i++) {
		const struct ynode *e = me->items[i];
		const char *op = str_of(yn_get(e, "operator"));
		size_t nv = yn_len(yn_get(e, "values"));
		size_t keep = vpush_key(v, "matchExpressions");
		size_t k2 = vpush_index(v, i);
		check_name(v, yn_get(e, "key"), "key", check_label_key);
		if (op && (!strcmp(op, "In") || !strcmp(op, "NotIn")) && nv == 0)
			vc_err(v, e, "values", "Required value: must be specified when `operator` is 'In' or 'NotIn'");
		if (op && (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) && nv > 0)
			vc_err(v, yn_get(e, "values"), "values",
			     "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
		vpop(v, k2);
		vpop(v, keep);
	}
}

static void workload_selector(struct vctx *v, const struct ynode *spec, bool required)
{
	const struct ynode *sel = yn_get(spec, "selector");
	const struct ynode *labels = yn_path(spec, "template.metadata.labels");
	if (is_null(sel)) {
		if (required)
			vc_err(v, spec, "selector", "Required value");
		return;
	}
	if (yn_len(yn_get(sel, "matchLabels")) + yn_len(yn_get(sel, "matchExpressions")) == 0) {
		vc_err(v, sel, "selector", "Invalid value: empty selector is invalid for %s", owner_kind(v));
		return;
	}
	struct api_selector s;
	if (api_selector_from_node(sel, &s, NULL) < 0)
		return; /* the selector hook reported why */
	if (!api_selector_matches_node(&s, labels))
		vc_err(v, labels ? labels : spec, labels ? "template.metadata.labels" : "template.metadata",
		     "Invalid value: `selector` does not match template `labels`");
	api_selector_release(&s);
}

static void deployment_spec_hook(struct vctx *v, const struct ynode *n)
{
	workload_selector(v, n, true);
	nonneg(v, n, "replicas");
	nonneg(v, n, "minReadySeconds");
	nonneg(v, n, "revisionHistoryLimit");
	int64_t pd, mr = 0;
	yn_int(yn_get(n, "minReadySeconds"), &mr);
	if (int_of(yn_get(n, "progressDeadlineSeconds"), &pd) && pd <= mr)
		vc_err(v, yn_get(n, "progressDeadlineSeconds"), "progressDeadlineSeconds",
		     "Invalid value: %lld: must be greater than minReadySeconds", (long long)pd);
	const struct ynode *st = yn_get(n, "strategy");
	const char *type = str_of(yn_get(st, "type"));
	if (type && !strcmp(type, "Recreate") && !is_null(yn_get(st, "rollingUpdate")))
		vc_err(v, yn_get(st, "rollingUpdate"), "strategy.rollingUpdate",
		     "Forbidden: may not be specified when strategy `type` is 'Recreate'");
}

static void simple_workload_hook(struct vctx *v, const struct ynode *n)
{
	workload_selector(v, n, true);
	nonneg(v, n, "replicas");
	nonneg(v, n, "minReadySeconds");
	nonneg(v, n, "revisionHistoryLimit");
}

/* maxSurge / maxUnavailable: a non-negative integer or a percentage. */
static bool intstr_zero(struct vctx *v, const struct ynode *n, const char *key, bool cap100)
{
	const struct ynode *x = yn_get(n, key);
	if (is_null(x))
		return false;
	int64_t i;
	if (int_of(x, &i)) {
		if (i < 0)
			vc_err(v, x, key, "Invalid value: %lld: must be greater than or equal to 0", (long long)i);
		return i == 0;
	}
	const char *s = str_of(x);
	size_t len = s ? strlen(s) : 0;
	char *num = s && len > 1 && s[len - 1] == '%' ? xstrndup(s, len - 1) : NULL;
	int64_t pct = -1;
	if (!num || parse_i64(num, 0, 1000000, &pct) < 0) {
		vc_err(v, x, key, "Invalid value: \"%s\": a valid percent string must be a numeric string "
				"followed by an ending '%%' (e.g. '1%%',  or '93%%', regex used for "
				"validation is '[0-9]+%%')", s ? s : "");
		free(num);
		return false;
	}
	free(num);
	if (cap100 && pct > 100)
		vc_err(v, x, key, "Invalid value: \"%s\": must not be greater than 100%%", s);
	return pct == 0;
}

static void rolling_update_hook(struct vctx *v, const struct ynode *n)
{
	bool surge0 = intstr_zero(v, n, "maxSurge", false);
	bool unavail0 = intstr_zero(v, n, "maxUnavailable", true);
	if (surge0 && unavail0)
		vc_err(v, yn_get(n, "maxUnavailable"), "maxUnavailable",
		     "Invalid value: 0: may not be 0 when `maxSurge` is 0");
}

static void job_spec_hook(struct vctx *v, const struct ynode *n)
{
	nonneg(v, n, "parallelism");
	nonneg(v, n, "completions");
	nonneg(v, n, "backoffLimit");
	check_range(v, n, "activeDeadlineSeconds", 1, INT64_MAX, "must be greater than or equal to 1");
	const char *mode = str_of(yn_get(n, "completionMode"));
	if (mode && !strcmp(mode, "Indexed") && is_null(yn_get(n, "completions")))
		vc_err(v, n, "completions", "Required value: when completion mode is Indexed");
	if (!is_null(yn_get(n, "selector")) && !is_null(yn_get(n, "manualSelector")))
		workload_selector(v, n, false);
}

static void cronjob_spec_hook(struct vctx *v, const struct ynode *n)
{
	const struct ynode *sch = yn_get(n, "schedule");
	struct api_cron c;
	struct gerr *e = NULL;
	if (str_of(sch) && api_cron_parse(sch->str, &c, &e) < 0) {
		vc_err(v, sch, "schedule", "Invalid value: \"%s\": %s", sch->str, e ? e->msg : "invalid schedule");
		gerr_free(e);
	}
	nonneg(v, n, "startingDeadlineSeconds");
	nonneg(v, n, "successfulJobsHistoryLimit");
	nonneg(v, n, "failedJobsHistoryLimit");
}

/* ---- services ---- */

static bool valid_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static void service_port_hook(struct vctx *v, const struct ynode *n)
{
	check_range(v, n, "port", 1, 65535, "must be between 1 and 65535, inclusive");
	check_range(v, n, "nodePort", 0, 65535, "must be between 1 and 65535, inclusive");
	const struct ynode *tp = yn_get(n, "targetPort");
	if (!is_null(tp))
		check_port_ref(v, tp, "targetPort");
	check_name(v, yn_get(n, "name"), "name", check_dns1123_label);
}

static void service_spec_hook(struct vctx *v, const struct ynode *n)
{
	const char *type = str_of(yn_get(n, "type"));
	const struct ynode *ports = yn_get(n, "ports"), *cip = yn_get(n, "clusterIP");
	const char *ip = str_of(cip);
	bool headless = ip && !strcmp(ip, "None");
	if (type && !strcmp(type, "ExternalName")) {
		if (!str_of(yn_get(n, "externalName")))
			vc_err(v, n, "externalName", "Required value");
	} else if (yn_len(ports) == 0 && !headless) {
		vc_err(v, n, "ports", "Required value");
	}
	if (ip && *ip && !headless && !valid_ip(ip))
		vc_err(v, cip, "clusterIP", "Invalid value: \"%s\": must be empty, 'None', or a valid IP address", ip);
	if (headless && type && !strcmp(type, "NodePort"))
		vc_err(v, cip, "clusterIP", "Invalid value: \"None\": may not be set to 'None' for NodePort services");
	const struct ynode *eips = yn_get(n, "externalIPs");
	for (size_t i = 0; eips && eips->type == YN_SEQ && i < eips->n; i++)
		if (str_of(eips->items[i]) && !valid_ip(eips->items[i]->str)) {
			size_t keep = vpush_key(v, "externalIPs");
			size_t k2 = vpush_index(v, i);
			vc_err(v, eips->items[i], NULL, "Invalid value: \"%s\": must be a valid IP address",
			     eips->items[i]->str);
			vpop(v, k2);
			vpop(v, keep);
		}
	size_t np = yn_len(ports);
	for (size_t i = 0; ports && ports->type == YN_SEQ && i < np; i++) {
		const struct ynode *p = ports->items[i];
		size_t keep = vpush_key(v, "ports");
		size_t k2 = vpush_index(v, i);
		const char *name = str_of(yn_get(p, "name"));
		if (np > 1 && !name)
			vc_err(v, p, "name", "Required value");
		for (size_t j = 0; j < i; j++) {
			const struct ynode *q = ports->items[j];
			const char *qn = str_of(yn_get(q, "name"));
			if (name && qn && !strcmp(name, qn))
				vc_err(v, yn_get(p, "name"), "name", "Duplicate value: \"%s\"", name);
			int64_t a, b;
			const char *pa = str_of(yn_get(p, "protocol")), *pb = str_of(yn_get(q, "protocol"));
			if (int_of(yn_get(p, "port"), &a) && int_of(yn_get(q, "port"), &b) && a == b &&
			    !strcmp(pa ? pa : "TCP", pb ? pb : "TCP"))
				vc_err(v, yn_get(p, "port"), "port",
				     "Duplicate value: {port %lld, protocol %s}", (long long)a, pa ? pa : "TCP");
			if (int_of(yn_get(p, "nodePort"), &a) && int_of(yn_get(q, "nodePort"), &b) && a == b &&
			    a != 0 && !strcmp(pa ? pa : "TCP", pb ? pb : "TCP"))
				vc_err(v, yn_get(p, "nodePort"), "nodePort", "Duplicate value: %lld", (long long)a);
		}
		int64_t node_port;
		if ((!type || !strcmp(type, "ClusterIP")) && int_of(yn_get(p, "nodePort"), &node_port) &&
		    node_port != 0)
			vc_err(v, yn_get(p, "nodePort"), "nodePort",
			     "Forbidden: may not be used when `type` is 'ClusterIP'");
		vpop(v, k2);
		vpop(v, keep);
	}
	const struct ynode *sel = yn_get(n, "selector");
	for (size_t i = 0; sel && sel->type == YN_MAP && i < sel->n; i++) {
		size_t keep = vpush_key(v, "selector");
		check_name(v, sel->items[2 * i], NULL, check_label_key);
		check_name(v, sel->items[2 * i + 1], NULL, check_label_value);
		vpop(v, keep);
	}
	const struct ynode *t = yn_path(n, "sessionAffinityConfig.clientIP");
	check_range(v, t, "timeoutSeconds", 1, 86400, "must be greater than 0 and less than 86400");
}

/* ---- network policy ---- */

static int parse_cidr(const char *s, unsigned char addr[16], int *ret_family, int *ret_bits)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return -1;
	char *ip = xstrndup(s, (size_t)(slash - s));
	int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
	int ok = inet_pton(fam, ip, addr) == 1;
	free(ip);
	int64_t bits;
	if (!ok || parse_i64(slash + 1, 0, fam == AF_INET ? 32 : 128, &bits) < 0)
		return -1;
	*ret_family = fam;
	*ret_bits = (int)bits;
	return 0;
}

static bool cidr_contains(const unsigned char *net, int bits, const unsigned char *addr)
{
	for (int i = 0; i < bits; i++) {
		int byte = i / 8, bit = 7 - i % 8;
		if (((net[byte] >> bit) & 1) != ((addr[byte] >> bit) & 1))
			return false;
	}
	return true;
}

static void ipblock_hook(struct vctx *v, const struct ynode *n)
{
	const struct ynode *c = yn_get(n, "cidr");
	unsigned char net[16] = { 0 }, ex[16] = { 0 };
	int fam, bits, efam, ebits;
	if (!str_of(c))
		return;
	if (parse_cidr(c->str, net, &fam, &bits) < 0) {
		vc_err(v, c, "cidr", "Invalid value: \"%s\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
		     c->str);
		return;
	}
	const struct ynode *except = yn_get(n, "except");
	for (size_t i = 0; except && except->type == YN_SEQ && i < except->n; i++) {
		const char *s = str_of(except->items[i]);
		size_t keep = vpush_key(v, "except");
		size_t k2 = vpush_index(v, i);
		if (s && parse_cidr(s, ex, &efam, &ebits) < 0)
			vc_err(v, except->items[i], NULL, "Invalid value: \"%s\": must be a valid CIDR value", s);
		else if (s && (efam != fam || ebits < bits || !cidr_contains(net, bits, ex)))
			vc_err(v, except->items[i], NULL, "Invalid value: \"%s\": must be a strict subset of `cidr`", s);
		vpop(v, k2);
		vpop(v, keep);
	}
}

static void netpol_port_hook(struct vctx *v, const struct ynode *n)
{
	const struct ynode *p = yn_get(n, "port"), *e = yn_get(n, "endPort");
	if (!is_null(p))
		check_port_ref(v, p, "port");
	int64_t port, end;
	if (!is_null(e)) {
		if (!int_of(p, &port))
			vc_err(v, e, "endPort", "Required value: may not be specified when `port` is not a number");
		else if (int_of(e, &end) && end < port)
			vc_err(v, e, "endPort", "Invalid value: %lld: must be greater than or equal to `port`",
			     (long long)end);
	}
}

/* ---- scheduling ---- */

static void toleration_hook(struct vctx *v, const struct ynode *n)
{
	const char *op = str_of(yn_get(n, "operator"));
	const char *key = str_of(yn_get(n, "key"));
	const char *value = str_of(yn_get(n, "value"));
	if (op && !strcmp(op, "Exists") && value && *value)
		vc_err(v, yn_get(n, "value"), "value", "Invalid value: \"%s\": value must be empty when `operator` is 'Exists'",
		     value);
	if ((!key || !*key) && !(op && !strcmp(op, "Exists")))
		vc_err(v, n, "operator", "Invalid value: operator must be Exists when `key` is empty, "
				       "which means \"match all values and all keys\"");
	if (key && *key)
		check_name(v, yn_get(n, "key"), "key", check_label_key);
}

static void node_selector_req_hook(struct vctx *v, const struct ynode *n)
{
	const char *op = str_of(yn_get(n, "operator"));
	const struct ynode *vals = yn_get(n, "values");
	size_t nv = yn_len(vals);
	if (!op)
		return;
	if ((!strcmp(op, "In") || !strcmp(op, "NotIn")) && nv == 0)
		vc_err(v, n, "values", "Required value: must be specified when `operator` is 'In' or 'NotIn'");
	else if ((!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) && nv > 0)
		vc_err(v, vals, "values", "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
	else if (!strcmp(op, "Gt") || !strcmp(op, "Lt")) {
		int64_t x;
		if (nv != 1 || !str_of(yn_at(vals, 0)) || parse_i64(yn_at(vals, 0)->str, INT64_MIN, INT64_MAX, &x) < 0)
			vc_err(v, vals ? vals : n, "values",
			     "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'");
	}
}

/* ---- config ---- */

static const char *check_config_key(const char *s)
{
	if (!*s || strlen(s) > 253)
		return "must be no more than 253 characters";
	for (const char *p = s; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
			       "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
			       "is '[-._a-zA-Z0-9]+')";
	return NULL;
}

static void config_keys(struct vctx *v, const struct ynode *n, const char *a, const char *b)
{
	const struct ynode *da = yn_get(n, a), *db = yn_get(n, b);
	for (size_t i = 0; da && da->type == YN_MAP && i < da->n; i++) {
		const struct ynode *k = da->items[2 * i];
		size_t keep = vpush_key(v, a);
		const char *why = check_config_key(k->str);
		if (why)
			vc_err(v, k, NULL, "Invalid value: \"%s\": %s", k->str, why);
		if (db && yn_get(db, k->str) && strcmp(b, "stringData"))
			vc_err(v, k, NULL, "Invalid value: \"%s\": duplicate of key present in %s", k->str, b);
		vpop(v, keep);
	}
}

static void configmap_hook(struct vctx *v, const struct ynode *n)
{
	config_keys(v, n, "data", "binaryData");
	config_keys(v, n, "binaryData", "data");
}

static void secret_hook(struct vctx *v, const struct ynode *n)
{
	config_keys(v, n, "data", "stringData");
	config_keys(v, n, "stringData", "data");
}

const struct hook validate_hooks[] = {
	{ "V1ObjectMeta", meta_hook },
	{ "V1PodSpec", podspec_hook },
	{ "V1Container", container_hook },
	{ "V1ContainerPort", container_port_hook },
	{ "V1EnvVar", env_hook },
	{ "V1EnvVarSource", env_source_hook },
	{ "V1Probe", probe_hook },
	{ "V1Handler", handler_hook },
	{ "V1LifecycleHandler", handler_hook },
	{ "V1HTTPGetAction", port_ref_hook },
	{ "V1TCPSocketAction", port_ref_hook },
	{ "V1GRPCAction", grpc_hook },
	{ "V1ResourceRequirements", resources_hook },
	{ "V1Volume", volume_hook },
	{ "V1LabelSelector", selector_hook },
	{ "V1DeploymentSpec", deployment_spec_hook },
	{ "V1ReplicaSetSpec", simple_workload_hook },
	{ "V1DaemonSetSpec", simple_workload_hook },
	{ "V1StatefulSetSpec", simple_workload_hook },
	{ "V1RollingUpdateDeployment", rolling_update_hook },
	{ "V1RollingUpdateDaemonSet", rolling_update_hook },
	{ "V1JobSpec", job_spec_hook },
	{ "V1CronJobSpec", cronjob_spec_hook },
	{ "V1ServiceSpec", service_spec_hook },
	{ "V1ServicePort", service_port_hook },
	{ "V1IPBlock", ipblock_hook },
	{ "V1NetworkPolicyPort", netpol_port_hook },
	{ "V1Toleration", toleration_hook },
	{ "V1NodeSelectorRequirement", node_selector_req_hook },
	{ "V1ConfigMap", configmap_hook },
	{ "V1Secret", secret_hook },
	{ NULL, NULL },
};
