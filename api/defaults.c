/* defaults.c: Kubernetes' own defaults (SetDefaults_* of k8s.io/kubernetes
 * pkg/apis/.../v1/defaults.go), applied to valid objects' trees in place; every
 * default is listed in docs/manifests.md. A field the user set is never changed. */
#include "api/internal.h"

#include <string.h>

/* ---- tree editing ---- */

static struct ynode *new_node(struct api_set *s, uint8_t type)
{
	struct ynode *n = arena_alloc(&s->arena, sizeof(*n));
	if (!n)
		return NULL;
	n->type = type;
	n->flags = YNF_DEFAULTED;
	return n;
}

/* Scalars are never changed once made, so defaulting shares one node per
 * (text, tag) across the whole set: 10,000 objects get a few hundred nodes. */
struct ynode *yn_new_scalar(struct api_set *s, const char *text, uint8_t tag)
{
	uint32_t h = 2166136261u ^ tag;
	for (const char *p = text; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	size_t slots = ARRAY_SIZE(s->interned);
	for (size_t i = 0; i < slots; i++) {
		struct ynode **slot = &s->interned[(h + i) % slots];
		if (*slot && (*slot)->tag == tag && !strcmp((*slot)->str, text))
			return *slot;
		if (*slot)
			continue;
		struct ynode *n = new_node(s, YN_SCALAR);
		if (!n || !(n->str = arena_strdup(&s->arena, text)))
			return NULL;
		n->len = (uint32_t)strlen(text);
		n->tag = tag;
		*slot = n;
		return n;
	}
	struct ynode *n = new_node(s, YN_SCALAR); /* table full: unshared */
	if (!n || !(n->str = arena_strdup(&s->arena, text)))
		return NULL;
	n->len = (uint32_t)strlen(text);
	n->tag = tag;
	return n;
}

struct ynode *yn_new_map(struct api_set *s)
{
	return new_node(s, YN_MAP);
}

struct ynode *yn_new_seq(struct api_set *s)
{
	return new_node(s, YN_SEQ);
}

static size_t pow2_at_least(size_t n)
{
	size_t c = 4;
	while (c < n)
		c *= 2;
	return c;
}

/* Append one item (seq) or one pair (map). The decoder sizes items exactly; the
 * first append moves them to a power-of-two array (YNF_GROWN), so a map given k
 * defaults is copied O(log k) times, not k. */
static bool append(struct api_set *s, struct ynode *n, struct ynode *a, struct ynode *b)
{
	size_t have = n->type == YN_MAP ? 2 * (size_t)n->n : n->n;
	size_t add = b ? 2 : 1;
	size_t cap = (n->flags & YNF_GROWN) ? pow2_at_least(have) : have;
	if (have + add > cap) {
		struct ynode **items = arena_alloc(&s->arena, pow2_at_least(have + add) * sizeof(*items));
		if (!items)
			return false;
		if (have)
			memcpy(items, n->items, have * sizeof(*items));
		n->items = items;
		n->flags |= YNF_GROWN;
	}
	n->items[have] = a;
	if (b)
		n->items[have + 1] = b;
	n->n++;
	return true;
}

void yn_map_set(struct api_set *s, struct ynode *map, const char *key, struct ynode *value)
{
	if (!map || map->type != YN_MAP || !value)
		return;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->items[2 * i]->str, key) == 0) {
			map->items[2 * i + 1] = value;
			return;
		}
	struct ynode *k = yn_new_scalar(s, key, YS_STR);
	if (k)
		append(s, map, k, value);
}

void yn_seq_push(struct api_set *s, struct ynode *seq, struct ynode *item)
{
	if (seq && seq->type == YN_SEQ && item)
		append(s, seq, item, NULL);
}

/* ---- defaulting helpers ---- */

static bool absent(const struct ynode *map, const char *key)
{
	const struct ynode *v = yn_get(map, key);
	return !v || (v->type == YN_SCALAR && v->tag == YS_NULL);
}

static void def_str(struct api_set *s, struct ynode *map, const char *key, const char *val)
{
	if (map && map->type == YN_MAP && absent(map, key))
		yn_map_set(s, map, key, yn_new_scalar(s, val, YS_STR));
}

static void def_int(struct api_set *s, struct ynode *map, const char *key, const char *val)
{
	if (map && map->type == YN_MAP && absent(map, key))
		yn_map_set(s, map, key, yn_new_scalar(s, val, YS_INT));
}

static void def_bool(struct api_set *s, struct ynode *map, const char *key, bool val)
{
	if (map && map->type == YN_MAP && absent(map, key))
		yn_map_set(s, map, key, yn_new_scalar(s, val ? "true" : "false", YS_BOOL));
}

/* The child map at key, created when absent. */
static struct ynode *child_map(struct api_set *s, struct ynode *map, const char *key)
{
	if (!map || map->type != YN_MAP)
		return NULL;
	struct ynode *c = (struct ynode *)yn_get(map, key);
	if (c && c->type == YN_MAP)
		return c;
	if (c && !(c->type == YN_SCALAR && c->tag == YS_NULL))
		return NULL;
	c = yn_new_map(s);
	yn_map_set(s, map, key, c);
	return c;
}

static struct ynode *mget(struct ynode *map, const char *key)
{
	struct ynode *c = (struct ynode *)yn_get(map, key);
	return c && c->type == YN_MAP ? c : NULL;
}

#define EACH(seq, it)                                                                      \
	for (size_t _i = 0, _n = (seq) && (seq)->type == YN_SEQ ? (seq)->n : 0; _i < _n; _i++) \
		for (struct ynode *it = (seq)->items[_i]; it; it = NULL)

/* ---- pods ---- */

/* Always for ":latest" or no tag (and no digest), else IfNotPresent. */
static const char *pull_policy(const char *image)
{
	if (strchr(image, '@'))
		return "IfNotPresent";
	const char *slash = strrchr(image, '/');
	const char *colon = strrchr(slash ? slash : image, ':');
	if (!colon || strcmp(colon + 1, "latest") == 0)
		return "Always";
	return "IfNotPresent";
}

static void def_probe(struct api_set *s, struct ynode *p)
{
	if (!p || p->type != YN_MAP)
		return;
	def_int(s, p, "timeoutSeconds", "1");
	def_int(s, p, "periodSeconds", "10");
	def_int(s, p, "successThreshold", "1");
	def_int(s, p, "failureThreshold", "3");
	struct ynode *http = mget(p, "httpGet");
	def_str(s, http, "path", "/");
	def_str(s, http, "scheme", "HTTP");
}

static void def_handler(struct api_set *s, struct ynode *h)
{
	struct ynode *http = mget(h, "httpGet");
	def_str(s, http, "path", "/");
	def_str(s, http, "scheme", "HTTP");
}

static void def_container(struct api_set *s, struct ynode *c)
{
	if (!c || c->type != YN_MAP)
		return;
	const char *image = yn_str(yn_get(c, "image"));
	if (image)
		def_str(s, c, "imagePullPolicy", pull_policy(image));
	def_str(s, c, "terminationMessagePath", "/dev/termination-log");
	def_str(s, c, "terminationMessagePolicy", "File");
	EACH((struct ynode *)yn_get(c, "ports"), p)
		def_str(s, p, "protocol", "TCP");
	def_probe(s, mget(c, "livenessProbe"));
	def_probe(s, mget(c, "readinessProbe"));
	def_probe(s, mget(c, "startupProbe"));
	struct ynode *lc = mget(c, "lifecycle");
	def_handler(s, mget(lc, "postStart"));
	def_handler(s, mget(lc, "preStop"));
	EACH((struct ynode *)yn_get(c, "env"), e) {
		struct ynode *fr = mget(mget(e, "valueFrom"), "fieldRef");
		def_str(s, fr, "apiVersion", "v1");
	}
	/* requests default to limits where only limits are given */
	struct ynode *res = mget(c, "resources"), *lim = mget(res, "limits");
	if (lim && lim->n) {
		struct ynode *req = child_map(s, res, "requests");
		for (size_t i = 0; req && i < lim->n; i++)
			if (absent(req, lim->items[2 * i]->str))
				yn_map_set(s, req, lim->items[2 * i]->str, lim->items[2 * i + 1]);
	}
}

static void def_volume(struct api_set *s, struct ynode *v)
{
	def_int(s, mget(v, "configMap"), "defaultMode", "420");
	def_int(s, mget(v, "secret"), "defaultMode", "420");
	def_int(s, mget(v, "downwardAPI"), "defaultMode", "420");
	def_int(s, mget(v, "projected"), "defaultMode", "420");
	def_str(s, mget(v, "hostPath"), "type", "");
	EACH((struct ynode *)yn_path(v, "downwardAPI.items"), it) {
		struct ynode *fr = mget(it, "fieldRef");
		def_str(s, fr, "apiVersion", "v1");
	}
}

static void def_podspec(struct api_set *s, struct ynode *spec, bool job)
{
	if (!spec || spec->type != YN_MAP)
		return;
	if (!job)
		def_str(s, spec, "restartPolicy", "Always");
	def_int(s, spec, "terminationGracePeriodSeconds", "30");
	def_str(s, spec, "dnsPolicy", "ClusterFirst");
	def_str(s, spec, "schedulerName", "default-scheduler");
	def_bool(s, spec, "enableServiceLinks", true);
	child_map(s, spec, "securityContext");
	EACH((struct ynode *)yn_get(spec, "containers"), c)
		def_container(s, c);
	EACH((struct ynode *)yn_get(spec, "initContainers"), c)
		def_container(s, c);
	EACH((struct ynode *)yn_get(spec, "volumes"), v)
		def_volume(s, v);
}

static void def_template(struct api_set *s, struct ynode *spec, bool job)
{
	def_podspec(s, mget(mget(spec, "template"), "spec"), job);
}

/* ---- workloads ---- */

static void def_deployment(struct api_set *s, struct ynode *spec)
{
	def_int(s, spec, "replicas", "1");
	def_int(s, spec, "revisionHistoryLimit", "10");
	def_int(s, spec, "progressDeadlineSeconds", "600");
	struct ynode *st = child_map(s, spec, "strategy");
	def_str(s, st, "type", "RollingUpdate");
	if (st && !strcmp(yn_str(yn_get(st, "type")), "RollingUpdate")) {
		struct ynode *ru = child_map(s, st, "rollingUpdate");
		def_str(s, ru, "maxUnavailable", "25%");
		def_str(s, ru, "maxSurge", "25%");
	}
	def_template(s, spec, false);
}

static void def_daemonset(struct api_set *s, struct ynode *spec)
{
	def_int(s, spec, "revisionHistoryLimit", "10");
	struct ynode *st = child_map(s, spec, "updateStrategy");
	def_str(s, st, "type", "RollingUpdate");
	if (st && !strcmp(yn_str(yn_get(st, "type")), "RollingUpdate")) {
		struct ynode *ru = child_map(s, st, "rollingUpdate");
		def_int(s, ru, "maxUnavailable", "1");
		def_int(s, ru, "maxSurge", "0");
	}
	def_template(s, spec, false);
}

static void def_statefulset(struct api_set *s, struct ynode *spec)
{
	def_int(s, spec, "replicas", "1");
	def_int(s, spec, "revisionHistoryLimit", "10");
	def_str(s, spec, "podManagementPolicy", "OrderedReady");
	struct ynode *st = child_map(s, spec, "updateStrategy");
	def_str(s, st, "type", "RollingUpdate");
	if (st && !strcmp(yn_str(yn_get(st, "type")), "RollingUpdate"))
		def_int(s, child_map(s, st, "rollingUpdate"), "partition", "0");
	EACH((struct ynode *)yn_get(spec, "volumeClaimTemplates"), t)
		def_str(s, mget(t, "spec"), "volumeMode", "Filesystem");
	def_template(s, spec, false);
}

static void def_job(struct api_set *s, struct ynode *spec)
{
	if (!spec)
		return;
	bool no_completions = absent(spec, "completions"), no_parallelism = absent(spec, "parallelism");
	if (no_completions && no_parallelism)
		def_int(s, spec, "completions", "1");
	def_int(s, spec, "parallelism", "1");
	def_int(s, spec, "backoffLimit", "6");
	def_str(s, spec, "completionMode", "NonIndexed");
	def_bool(s, spec, "suspend", false);
	def_template(s, spec, true);
}

static void def_cronjob(struct api_set *s, struct ynode *spec)
{
	def_str(s, spec, "concurrencyPolicy", "Allow");
	def_bool(s, spec, "suspend", false);
	def_int(s, spec, "successfulJobsHistoryLimit", "3");
	def_int(s, spec, "failedJobsHistoryLimit", "1");
	def_job(s, mget(mget(spec, "jobTemplate"), "spec"));
}

/* ---- networking ---- */

static void def_service(struct api_set *s, struct ynode *spec)
{
	def_str(s, spec, "type", "ClusterIP");
	def_str(s, spec, "sessionAffinity", "None");
	const char *type = yn_str(yn_get(spec, "type"));
	if (type && !strcmp(type, "ExternalName"))
		return;
	EACH((struct ynode *)yn_get(spec, "ports"), p) {
		def_str(s, p, "protocol", "TCP");
		const struct ynode *port = yn_get(p, "port");
		if (absent(p, "targetPort") && port && port->type == YN_SCALAR)
			yn_map_set(s, p, "targetPort", (struct ynode *)port);
	}
	if (type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer")))
		def_str(s, spec, "externalTrafficPolicy", "Cluster");
	def_str(s, spec, "internalTrafficPolicy", "Cluster");
	const char *aff = yn_str(yn_get(spec, "sessionAffinity"));
	if (aff && !strcmp(aff, "ClientIP")) {
		struct ynode *cfg = child_map(s, child_map(s, spec, "sessionAffinityConfig"), "clientIP");
		def_int(s, cfg, "timeoutSeconds", "10800");
	}
}

static void def_ports_protocol(struct api_set *s, struct ynode *ports)
{
	EACH(ports, p)
		def_str(s, p, "protocol", "TCP");
}

static void def_netpol_ports(struct api_set *s, struct ynode *rules)
{
	EACH(rules, r)
		def_ports_protocol(s, (struct ynode *)yn_get(r, "ports"));
}

/* policyTypes: Ingress always; Egress when egress rules are present (Kubernetes). */
static void def_netpol(struct api_set *s, struct ynode *spec)
{
	if (!spec)
		return;
	def_netpol_ports(s, (struct ynode *)yn_get(spec, "ingress"));
	def_netpol_ports(s, (struct ynode *)yn_get(spec, "egress"));
	if (yn_len(yn_get(spec, "policyTypes")))
		return;
	struct ynode *types = yn_new_seq(s);
	yn_seq_push(s, types, yn_new_scalar(s, "Ingress", YS_STR));
	if (yn_len(yn_get(spec, "egress")))
		yn_seq_push(s, types, yn_new_scalar(s, "Egress", YS_STR));
	yn_map_set(s, spec, "policyTypes", types);
}

void api_default_object(struct api_set *s, struct api_object *o)
{
	struct ynode *root = o->root, *spec = mget(root, "spec");
	const char *kind = o->kind->kind;
	if (o->kind->namespaced)
		def_str(s, child_map(s, root, "metadata"), "namespace", o->ns);
	if (!strcmp(kind, "Pod"))
		def_podspec(s, spec, false);
	else if (!strcmp(kind, "Deployment"))
		def_deployment(s, spec);
	else if (!strcmp(kind, "ReplicaSet")) {
		def_int(s, spec, "replicas", "1");
		def_template(s, spec, false);
	} else if (!strcmp(kind, "DaemonSet"))
		def_daemonset(s, spec);
	else if (!strcmp(kind, "StatefulSet"))
		def_statefulset(s, spec);
	else if (!strcmp(kind, "Job"))
		def_job(s, spec);
	else if (!strcmp(kind, "CronJob"))
		def_cronjob(s, spec);
	else if (!strcmp(kind, "Service"))
		def_service(s, spec);
	else if (!strcmp(kind, "NetworkPolicy"))
		def_netpol(s, spec);
	else if (!strcmp(kind, "Secret"))
		def_str(s, root, "type", "Opaque");
	else if (!strcmp(kind, "PersistentVolumeClaim"))
		def_str(s, spec, "volumeMode", "Filesystem");
	else if (!strcmp(kind, "HorizontalPodAutoscaler"))
		def_int(s, spec, "minReplicas", "1");
	else if (!strcmp(kind, "PriorityClass"))
		def_str(s, root, "preemptionPolicy", "PreemptLowerPriority");
}
