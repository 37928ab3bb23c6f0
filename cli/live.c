/* live.c: live state for get, describe, events, logs, exec and status — a dry-run
 * controller pass over SSH, pods/Deployments/ReplicaSets/Nodes as kubectl's objects,
 * and kubectl's formatting (ages, STATUS, tables, YAML). */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "store/store.h"

#define ANN_OWNER "gitops.io/owner"
#define ANN_RS "gitops.io/replicaset"
#define ANN_SSH "gitops.io/ssh"
#define ANN_REVISION "deployment.kubernetes.io/revision"
#define LABEL_HASH "pod-template-hash"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *jget(const json_t *o, const char *a, const char *b)
{
	return json_object_get(json_object_get(o, a), b);
}

/* An object member, created as {} when absent. */
static json_t *jobj(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_object(v)) {
		v = json_object();
		json_object_set_new(o, key, v);
	}
	return v;
}

static char *rfc3339(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	return xasprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- sorting arrays of objects by metadata.namespace, metadata.name ---- */

int live_cmp_meta(const void *x, const void *y)
{
	const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
	int c = strcmp(jstr(json_object_get(a, "metadata"), "namespace") ?: "",
		       jstr(json_object_get(b, "metadata"), "namespace") ?: "");
	return c ? c : strcmp(jstr(json_object_get(a, "metadata"), "name") ?: "",
			      jstr(json_object_get(b, "metadata"), "name") ?: "");
}

void live_sort(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(arr);
	json_t **v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	if (n)
		qsort(v, n, sizeof(*v), cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

/* ---- opening: options, the dry-run pass, the pods ---- */

int live_load(struct cli_args *a, struct api_set *set)
{
	api_set_init(set);
	int r = cli_load(a, a->argc, set, NULL);
	if (r == 0 && set->nerrors)
		fprintf(stderr, "gitops: %zu error%s in the manifests (see 'gitops validate'); invalid objects are left out\n",
			set->nerrors, set->nerrors == 1 ? "" : "s");
	return r;
}

/* A pod status of node as a v1 Pod object (unknown: only its identity is known). */
static void add_pod(json_t *pods, const json_t *ps, const char *node, const char *host, bool unknown)
{
	static const char *const keys[] = { "name", "namespace", "uid", "labels", "annotations" };
	json_t *meta = json_object();
	json_t *status = unknown ? json_pack("{s:s}", "phase", "Unknown") : json_deep_copy(ps);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (json_object_get(ps, keys[i]))
			json_object_set(meta, keys[i], json_object_get(ps, keys[i]));
		json_object_del(status, keys[i]);
	}
	json_object_del(status, "planHash");
	if (jstr(ps, "startTime"))
		json_object_set(meta, "creationTimestamp", json_object_get(ps, "startTime"));
	if (host && !unknown)
		json_object_set_new(status, "hostIP", json_string(host));
	json_array_append_new(pods, json_pack("{s:s, s:s, s:o, s:{s:s}, s:o}", "apiVersion", "v1", "kind", "Pod",
					      "metadata", meta, "spec", "nodeName", node, "status", status));
}

static void build_pods(struct live *l)
{
	size_t i, k;
	json_t *n, *p;
	l->pods = json_array();
	json_array_foreach(l->res.nodes, i, n) {
		const char *name = jstr(n, "name");
		const json_t *st = json_array_get(l->res.statuses, i);
		char *host = live_dest_host(live_dest(l, name));
		if (json_is_object(st)) {
			json_array_foreach(json_object_get(st, "pods"), k, p)
				add_pod(l->pods, p, name, host, false);
		} else {
			char *key = xasprintf("pods/%s", name);
			json_array_foreach((json_t *)cluster_get(l->res.cluster, key), k, p)
				add_pod(l->pods, p, name, host, true);
			free(key);
		}
		free(host);
	}
	live_sort(l->pods, live_cmp_meta);
}

int live_open(struct cli_args *a, struct api_set *set, struct live *l)
{
	memset(l, 0, sizeof(*l));
	l->set = set;
	int r = ctl_setup(a, &l->ctl);
	if (r)
		return r;
	l->ctl.o.dry_run = true;
	l->now = (int64_t)time(NULL);
	struct gerr *err = NULL;
	if (rc_pass(&l->ctl.o, set, "", "", &l->res, &err) < 0)
		return cli_fail(err);
	size_t i;
	json_t *n;
	json_array_foreach(l->res.nodes, i, n)
		if (!json_is_true(json_object_get(n, "ok")))
			fprintf(stderr, "gitops: node %s is unreachable: %s\n", jstr(n, "name"), jstr(n, "error") ?: "");
	build_pods(l);
	return 0;
}

void live_close(struct live *l)
{
	rc_result_release(&l->res);
	json_decref(l->pods);
	free(l->ctl.state);
	memset(l, 0, sizeof(*l));
}

/* ---- lookups ---- */

const json_t *live_pod(const struct live *l, const char *ns, const char *name)
{
	size_t i;
	json_t *p;
	json_array_foreach(l->pods, i, p) {
		const json_t *m = json_object_get(p, "metadata");
		if (!strcmp(jstr(m, "namespace") ?: "", ns) && !strcmp(jstr(m, "name") ?: "", name))
			return p;
	}
	return NULL;
}

const json_t *live_node(const struct live *l, const char *node, const json_t **ret_status)
{
	size_t i;
	json_t *n;
	json_array_foreach(l->res.nodes, i, n)
		if (!strcmp(jstr(n, "name") ?: "", node)) {
			const json_t *st = json_array_get(l->res.statuses, i);
			if (ret_status)
				*ret_status = json_is_object(st) ? st : NULL;
			return n;
		}
	if (ret_status)
		*ret_status = NULL;
	return NULL;
}

static const struct api_object *desired(const struct live *l, const char *kind, const char *ns, const char *name)
{
	for (size_t i = 0; i < l->set->nobjs; i++) {
		const struct api_object *o = &l->set->objs[i];
		if (!o->invalid && !strcmp(o->kind->kind, kind) && !strcmp(o->ns, ns) && !strcmp(o->name, name))
			return o;
	}
	return NULL;
}

const char *live_dest(const struct live *l, const char *node)
{
	const struct api_object *o = desired(l, "Node", "", node);
	const char *ssh = o ? yn_str(yn_get(yn_path(o->root, "metadata.annotations"), ANN_SSH)) : NULL;
	return ssh ? ssh : node;
}

char *live_dest_host(const char *dest)
{
	const char *at = strrchr(dest, '@');
	const char *h = at ? at + 1 : dest;
	const char *end = h[0] == '[' ? strchr(h, ']') : strchr(h, ':');
	if (h[0] == '[')
		return end ? xstrndup(h + 1, (size_t)(end - h - 1)) : xstrdup(h);
	if (end && !strchr(end + 1, ':'))
		return xstrndup(h, (size_t)(end - h));
	return xstrdup(h);
}

const json_t *live_rollout(const struct live *l, const char *ns, const char *name)
{
	size_t i;
	json_t *d;
	json_array_foreach(l->res.rollouts, i, d)
		if (!strcmp(jstr(d, "namespace") ?: "", ns) && !strcmp(jstr(d, "name") ?: "", name))
			return d;
	return NULL;
}

/* The hash of Deployment ns/name's revision rev, and the oldest revision's time. */
static const char *revision_hash(const struct live *l, const char *ns, const char *name, json_int_t rev,
				 int64_t *ret_oldest)
{
	char *prefix = xasprintf("revision/%s/%s/", ns, name);
	const char *key, *hash = NULL;
	json_t *e;
	*ret_oldest = -1;
	json_object_foreach(l->res.cluster, key, e) {
		const json_t *v = cluster_get(l->res.cluster, key);
		if (!v || !str_has_prefix(key, prefix))
			continue;
		int64_t t = json_integer_value(json_object_get(v, "time"));
		if (*ret_oldest < 0 || t < *ret_oldest)
			*ret_oldest = t;
		if (json_integer_value(json_object_get(v, "revision")) == rev)
			hash = key + strlen(prefix);
	}
	free(prefix);
	return hash;
}

bool live_owned(const struct live *l, const char *pod_ns, const char *pod_name, const char *owner,
		const char *ns, const char *deploy)
{
	if (strcmp(pod_ns, ns))
		return false;
	if (owner) {
		char *want = xasprintf("Deployment/%s/%s", ns, deploy);
		bool r = !strcmp(owner, want);
		free(want);
		return r;
	}
	size_t dl = strlen(deploy);
	if (strncmp(pod_name, deploy, dl) || pod_name[dl] != '-')
		return false;
	const char *hash = pod_name + dl + 1, *dash = strrchr(hash, '-');
	if (!dash)
		return false;
	char *key = xasprintf("revision/%s/%s/%.*s", ns, deploy, (int)(dash - hash), hash);
	bool r = cluster_get(l->res.cluster, key) != NULL;
	free(key);
	return r;
}

/* ---- Deployments ---- */

static void set_time(json_t *meta, int64_t t)
{
	if (t < 0)
		return;
	char *s = rfc3339(t);
	json_object_set_new(meta, "creationTimestamp", json_string(s));
	free(s);
}

static void set_count(json_t *o, const char *key, json_int_t v)
{
	if (v) /* Kubernetes omits zero counts */
		json_object_set_new(o, key, json_integer(v));
}

static json_t *condition(const char *type, const char *status, const char *reason, const char *msg)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "type", type, "status", status, "reason", reason, "message", msg);
}

static json_t *deploy_conditions(const struct api_object *o, const json_t *ro, const char *hash)
{
	int64_t replicas = 1, unavail = 0;
	yn_int(yn_path(o->root, "spec.replicas"), &replicas);
	const struct ynode *mu = yn_path(o->root, "spec.strategy.rollingUpdate.maxUnavailable");
	if (mu && api_scaled_value(mu, replicas, false, &unavail, NULL) < 0)
		unavail = 0;
	static const char *const progress[][3] = { { "True", "NewReplicaSetAvailable", "has successfully progressed" },
						    { "False", "ProgressDeadlineExceeded", "has timed out progressing" },
						    { "True", "ReplicaSetUpdated", "is progressing" } };
	bool avail = json_integer_value(json_object_get(ro, "available")) >= replicas - unavail;
	int k = json_is_true(json_object_get(ro, "complete")) ? 0 : json_is_true(json_object_get(ro, "deadlineExceeded")) ? 1 : 2;
	char *msg = xasprintf("ReplicaSet \"%s-%s\" %s.", o->name, hash ? hash : "", progress[k][2]);
	json_t *c = json_pack("[o, o]", condition("Available", avail ? "True" : "False",
						  avail ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
						  avail ? "Deployment has minimum availability."
							: "Deployment does not have minimum availability."),
			      condition("Progressing", progress[k][0], progress[k][1], msg));
	free(msg);
	return c;
}

static json_t *deployment(const struct live *l, const struct api_object *o)
{
	json_t *d = api_to_json(o->root), *meta = jobj(d, "metadata"), *st = json_object();
	const json_t *ro = live_rollout(l, o->ns, o->name);
	json_int_t rev = json_integer_value(json_object_get(ro, "revision"));
	int64_t oldest;
	const char *hash = revision_hash(l, o->ns, o->name, rev, &oldest);
	set_time(meta, oldest);
	if (rev)
		json_object_set_new(jobj(meta, "annotations"), ANN_REVISION, json_sprintf("%lld", (long long)rev));
	set_count(st, "replicas", json_integer_value(json_object_get(ro, "replicas")));
	set_count(st, "updatedReplicas", json_integer_value(json_object_get(ro, "updated")));
	set_count(st, "readyReplicas", json_integer_value(json_object_get(ro, "ready")));
	set_count(st, "availableReplicas", json_integer_value(json_object_get(ro, "available")));
	set_count(st, "unavailableReplicas", json_integer_value(json_object_get(ro, "replicas")) -
						      json_integer_value(json_object_get(ro, "available")));
	json_object_set_new(st, "conditions", deploy_conditions(o, ro, hash));
	json_object_set_new(d, "status", st);
	return d;
}

json_t *live_of_kind(const struct live *l, const char *kind,
		     json_t *(*fn)(const struct live *l, const struct api_object *o))
{
	json_t *out = json_array();
	for (size_t i = 0; i < l->set->nobjs; i++) {
		const struct api_object *o = &l->set->objs[i];
		if (!o->invalid && !strcmp(o->kind->kind, kind))
			json_array_append_new(out, fn(l, o));
	}
	live_sort(out, live_cmp_meta);
	return out;
}

json_t *live_deployments(const struct live *l)
{
	return live_of_kind(l, "Deployment", deployment);
}

/* ---- ReplicaSets: gathered in a map "NS/NAME" → {namespace, name, deploy, hash,
 * record, pods, ready, added, removed} ---- */

static json_t *rs_entry(json_t *map, const char *ns, const char *name, const char *deploy, const char *hash)
{
	char *key = xasprintf("%s/%s", ns, name);
	json_t *e = json_object_get(map, key);
	if (!e) {
		e = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "namespace", ns, "name", name, "pods", 0, "ready", 0,
			      "added", 0, "removed", 0);
		json_object_set_new(map, key, e);
	}
	if (deploy && !json_object_get(e, "deploy"))
		json_object_set_new(e, "deploy", json_string(deploy));
	if (hash && !json_object_get(e, "hash"))
		json_object_set_new(e, "hash", json_string(hash));
	free(key);
	return e;
}

static void bump(json_t *e, const char *key)
{
	json_object_set_new(e, key, json_integer(json_integer_value(json_object_get(e, key)) + 1));
}

/* Every revision "revision/NS/DEPLOY/HASH" of the history is ReplicaSet DEPLOY-HASH. */
static void rs_from_revisions(const struct live *l, json_t *map)
{
	const char *key;
	json_t *v;
	json_object_foreach(l->res.cluster, key, v) {
		const json_t *rec = cluster_get(l->res.cluster, key);
		const char *ns = key + strlen("revision/"), *s1, *s2;
		if (!rec || !str_has_prefix(key, "revision/") || !(s1 = strchr(ns, '/')) || !(s2 = strchr(s1 + 1, '/')))
			continue;
		char *nsv = xstrndup(ns, (size_t)(s1 - ns)), *dep = xstrndup(s1 + 1, (size_t)(s2 - s1 - 1));
		char *name = xasprintf("%s-%s", dep, s2 + 1);
		json_object_set(rs_entry(map, nsv, name, dep, s2 + 1), "record", (json_t *)rec);
		free(nsv);
		free(dep);
		free(name);
	}
}

static bool pod_ready(const json_t *pod)
{
	size_t i;
	json_t *c;
	json_array_foreach(jget(pod, "status", "conditions"), i, c)
		if (!strcmp(jstr(c, "type") ?: "", "Ready"))
			return !strcmp(jstr(c, "status") ?: "", "True");
	return false;
}

static void rs_from_pods(const struct live *l, json_t *map)
{
	size_t i;
	json_t *p;
	json_array_foreach(l->pods, i, p) {
		const json_t *m = json_object_get(p, "metadata");
		const char *rs = jstr(json_object_get(m, "annotations"), ANN_RS);
		const char *owner = jstr(json_object_get(m, "annotations"), ANN_OWNER);
		if (!rs)
			continue;
		const char *dep = owner && strrchr(owner, '/') ? strrchr(owner, '/') + 1 : NULL;
		json_t *e = rs_entry(map, jstr(m, "namespace") ?: "", rs, dep,
				     jstr(json_object_get(m, "labels"), LABEL_HASH));
		bump(e, "pods");
		if (pod_ready(p))
			bump(e, "ready");
	}
}

/* A pod "NS/RSNAME-xxxxx" the next pass would add or remove counts for its RS. */
static void rs_change(json_t *map, const char *ns_name, const char *what)
{
	const char *dash = strrchr(ns_name, '-');
	if (!dash)
		return;
	char *key = xstrndup(ns_name, (size_t)(dash - ns_name));
	json_t *e = json_object_get(map, key);
	if (e)
		bump(e, what);
	free(key);
}

static void rs_from_plans(const struct live *l, json_t *map)
{
	size_t i, k;
	json_t *n, *c;
	json_array_foreach(l->res.nodes, i, n)
		json_array_foreach(json_object_get(n, "changes"), k, c) {
			const char *s = json_string_value(c);
			if (s && (s[0] == '+' || s[0] == '-') && s[1] == ' ')
				rs_change(map, s + 2, s[0] == '+' ? "added" : "removed");
		}
	json_array_foreach(l->res.pending, i, n) {
		char *key = xasprintf("%s/%s", jstr(n, "namespace") ?: "", jstr(n, "name") ?: "");
		rs_change(map, key, "added");
		free(key);
	}
}

static json_t *rs_selector(const struct live *l, const char *ns, const char *dep, const char *hash)
{
	const struct api_object *o = dep ? desired(l, "Deployment", ns, dep) : NULL;
	json_t *ml = o ? api_to_json(yn_path(o->root, "spec.selector.matchLabels")) : NULL;
	if (!json_is_object(ml)) {
		json_decref(ml);
		ml = json_object();
	}
	if (hash)
		json_object_set_new(ml, LABEL_HASH, json_string(hash));
	return json_pack("{s:o}", "matchLabels", ml);
}

static json_t *replicaset(const struct live *l, const json_t *e)
{
	const json_t *rec = json_object_get(e, "record");
	const char *ns = jstr(e, "namespace"), *dep = jstr(e, "deploy"), *hash = jstr(e, "hash");
	json_t *labels = json_deep_copy(jget(json_object_get(rec, "template"), "metadata", "labels"));
	if (!labels)
		labels = json_object();
	if (hash)
		json_object_set_new(labels, LABEL_HASH, json_string(hash));
	json_t *meta = json_pack("{s:s, s:s, s:o}", "name", jstr(e, "name"), "namespace", ns, "labels", labels);
	if (rec) {
		set_time(meta, json_integer_value(json_object_get(rec, "time")));
		json_object_set_new(meta, "annotations", json_pack("{s:o}", ANN_REVISION, json_sprintf("%lld",
				    (long long)json_integer_value(json_object_get(rec, "revision")))));
	}
	if (dep)
		json_object_set_new(meta, "ownerReferences", json_pack("[{s:s, s:s, s:s, s:b}]", "apiVersion", "apps/v1",
								       "kind", "Deployment", "name", dep, "controller", 1));
	json_int_t pods = json_integer_value(json_object_get(e, "pods"));
	json_int_t want = pods - json_integer_value(json_object_get(e, "removed")) +
			  json_integer_value(json_object_get(e, "added"));
	json_t *spec = json_pack("{s:I, s:o}", "replicas", want > 0 ? want : (json_int_t)0, "selector",
				 rs_selector(l, ns, dep, hash));
	if (json_object_get(rec, "template"))
		json_object_set(spec, "template", json_object_get(rec, "template"));
	json_t *st = json_pack("{s:I}", "replicas", pods);
	set_count(st, "readyReplicas", json_integer_value(json_object_get(e, "ready")));
	set_count(st, "availableReplicas", json_integer_value(json_object_get(e, "ready")));
	return json_pack("{s:s, s:s, s:o, s:o, s:o}", "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", meta,
			 "spec", spec, "status", st);
}

json_t *live_replicasets(const struct live *l)
{
	json_t *map = json_object(), *out = json_array(), *e;
	const char *key;
	rs_from_revisions(l, map);
	rs_from_pods(l, map);
	rs_from_plans(l, map);
	json_object_foreach(map, key, e)
		json_array_append_new(out, replicaset(l, e));
	json_decref(map);
	live_sort(out, live_cmp_meta);
	return out;
}

/* ---- Nodes ---- */

static json_t *live_node_status(const struct live *l, const char *name, const json_t *n, const json_t *st)
{
	json_t *out = json_object(), *conds = json_array();
	if (json_is_true(json_object_get(n, "ok")))
		json_array_append_new(conds, condition("Ready", "True", "NodeReachable", "gitops node status answered"));
	else if (json_is_true(json_object_get(n, "notReady")))
		json_array_append_new(conds, condition("Ready", "Unknown", "NodeStatusUnknown",
						       jstr(n, "error") ?: "unreachable"));
	json_object_set_new(out, "conditions", conds);
	char *host = live_dest_host(live_dest(l, name));
	json_object_set_new(out, "addresses", json_pack("[{s:s, s:s}, {s:s, s:s}]", "type", "InternalIP", "address",
							host, "type", "Hostname", "address", name));
	free(host);
	static const char *const keys[] = { "capacity", "allocatable", "cgroup" };
	for (size_t i = 0; st && i < ARRAY_SIZE(keys); i++)
		if (json_object_get(st, keys[i]))
			json_object_set(out, keys[i], json_object_get(st, keys[i]));
	if (jstr(st, "version"))
		json_object_set_new(out, "nodeInfo", json_pack("{s:s}", "kubeletVersion", jstr(st, "version")));
	return out;
}

json_t *live_nodes(const struct live *l)
{
	json_t *out = json_array();
	for (size_t i = 0; i < l->set->nobjs; i++) {
		const struct api_object *o = &l->set->objs[i];
		if (o->invalid || strcmp(o->kind->kind, "Node"))
			continue;
		json_t *d = api_to_json(o->root), *spec = jobj(d, "spec");
		const json_t *st, *n = live_node(l, o->name, &st);
		char *key = xasprintf("podCIDR/%s", o->name);
		if (!jstr(spec, "podCIDR") && json_is_string(cluster_get(l->res.cluster, key)))
			json_object_set(spec, "podCIDR", (json_t *)cluster_get(l->res.cluster, key));
		free(key);
		json_object_set_new(d, "status", live_node_status(l, o->name, n, st));
		json_array_append_new(out, d);
	}
	live_sort(out, live_cmp_meta);
	return out;
}

/* ---- kubectl's formatting ---- */

int64_t live_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return -1;
	return (int64_t)timegm(&tm);
}

/* k8s.io/apimachinery/pkg/util/duration.HumanDuration */
void live_age(int64_t s, struct sbuf *out)
{
	int64_t m = s / 60, h = s / 3600, d = h / 24;
	if (s < -1)
		sb_adds(out, "<invalid>");
	else if (s < 0)
		sb_adds(out, "0s");
	else if (s < 120)
		sb_addf(out, "%llds", (long long)s);
	else if (m < 10)
		s % 60 ? sb_addf(out, "%lldm%llds", (long long)m, (long long)(s % 60)) : sb_addf(out, "%lldm", (long long)m);
	else if (m < 180)
		sb_addf(out, "%lldm", (long long)m);
	else if (h < 8)
		m % 60 ? sb_addf(out, "%lldh%lldm", (long long)h, (long long)(m % 60)) : sb_addf(out, "%lldh", (long long)h);
	else if (h < 48)
		sb_addf(out, "%lldh", (long long)h);
	else if (h < 24 * 8)
		h % 24 ? sb_addf(out, "%lldd%lldh", (long long)d, (long long)(h % 24)) : sb_addf(out, "%lldd", (long long)d);
	else if (h < 24 * 365 * 2)
		sb_addf(out, "%lldd", (long long)d);
	else if (h < 24 * 365 * 8)
		d % 365 ? sb_addf(out, "%lldy%lldd", (long long)(d / 365), (long long)(d % 365))
			: sb_addf(out, "%lldy", (long long)(d / 365));
	else
		sb_addf(out, "%lldy", (long long)(d / 365));
}

void live_age_of(const struct live *l, const char *rfc3339_time, struct sbuf *out)
{
	int64_t t = live_time(rfc3339_time);
	if (t < 0)
		sb_adds(out, "<unknown>");
	else
		live_age(l->now - t, out);
}

/* The reason an init container holds the pod in, or NULL when it is done. */
static bool init_reason(const json_t *cs, size_t i, size_t n, struct sbuf *out)
{
	const json_t *t = jget(cs, "state", "terminated"), *w = jget(cs, "state", "waiting");
	sb_reset(out);
	if (t && json_integer_value(json_object_get(t, "exitCode")) == 0)
		return false;
	if (t && jstr(t, "reason") && *jstr(t, "reason"))
		sb_addf(out, "Init:%s", jstr(t, "reason"));
	else if (t)
		sb_addf(out, "Init:ExitCode:%lld", (long long)json_integer_value(json_object_get(t, "exitCode")));
	else if (w && jstr(w, "reason") && *jstr(w, "reason") && strcmp(jstr(w, "reason"), "PodInitializing"))
		sb_addf(out, "Init:%s", jstr(w, "reason"));
	else
		sb_addf(out, "Init:%zu/%zu", i, n);
	return true;
}

static void note_restart(const json_t *cs, struct live_podsum *r)
{
	r->restarts += json_integer_value(json_object_get(cs, "restartCount"));
	int64_t t = live_time(jstr(jget(cs, "lastState", "terminated"), "finishedAt"));
	if (t > r->last_restart)
		r->last_restart = t;
}

/* kubectl's printPod: READY, STATUS, RESTARTS. */
void live_pod_summary(const json_t *pod, struct live_podsum *r)
{
	const json_t *st = json_object_get(pod, "status");
	const json_t *inits = json_object_get(st, "initContainerStatuses"), *apps = json_object_get(st, "containerStatuses");
	size_t i;
	json_t *cs;
	bool initializing = false, running = false;
	r->ready = 0;
	r->total = (int)json_array_size(apps);
	r->restarts = 0;
	r->last_restart = -1;
	sb_init(&r->status);
	json_array_foreach(inits, i, cs) {
		note_restart(cs, r);
		if ((initializing = init_reason(cs, i, json_array_size(inits), &r->status)))
			break;
	}
	if (!initializing) {
		sb_reset(&r->status);
		sb_adds(&r->status, jstr(st, "reason") ?: jstr(st, "phase") ?: "Unknown");
		r->restarts = 0;
		r->last_restart = -1;
		for (i = json_array_size(apps); i-- > 0;) {
			cs = json_array_get(apps, i);
			note_restart(cs, r);
			const json_t *w = jget(cs, "state", "waiting"), *t = jget(cs, "state", "terminated");
			const char *why = w ? jstr(w, "reason") : t ? jstr(t, "reason") : NULL;
			if ((w && why && *why) || (t && why && *why)) {
				sb_reset(&r->status);
				sb_adds(&r->status, why);
			} else if (t) {
				sb_reset(&r->status);
				sb_addf(&r->status, "ExitCode:%lld", (long long)json_integer_value(json_object_get(t, "exitCode")));
			} else if (json_is_true(json_object_get(cs, "ready")) && jget(cs, "state", "running")) {
				running = true;
				r->ready++;
			}
		}
		if (!strcmp(r->status.buf, "Completed") && running) {
			sb_reset(&r->status);
			sb_adds(&r->status, pod_ready(pod) ? "Running" : "NotReady");
		}
	}
}

/* ---- JSON as block YAML ---- */

static bool yaml_plain(const char *s)
{
	static const char *const words[] = { "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~" };
	size_t n = strlen(s);
	char *end;
	if (!n || strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) || s[n - 1] == ' ' || s[n - 1] == ':' ||
	    strstr(s, ": ") || strstr(s, " #"))
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return false;
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (!strcasecmp(s, words[i]))
			return false;
	strtod(s, &end);
	if (!*end || ((s[0] >= '0' && s[0] <= '9') && (strchr(s, ':') || strchr(s, '-'))))
		return false; /* numbers, times, dates */
	return true;
}

static void yaml_scalar(const json_t *v, struct sbuf *out)
{
	if (json_is_string(v) && yaml_plain(json_string_value(v))) {
		sb_adds(out, json_string_value(v));
		return;
	}
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	sb_adds(out, s ? s : "null");
	free(s);
}

static void yaml_map(const json_t *m, int ind, bool inline_first, struct sbuf *out);

static void yaml_seq(const json_t *a, int ind, struct sbuf *out)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		sb_addf(out, "%*s-", ind, "");
		if (json_is_object(v) && json_object_size(v)) {
			sb_addc(out, ' ');
			yaml_map(v, ind + 2, true, out);
		} else if (json_is_array(v) && json_array_size(v)) {
			sb_addc(out, '\n');
			yaml_seq(v, ind + 2, out);
		} else {
			sb_addc(out, ' ');
			yaml_scalar(v, out);
			sb_addc(out, '\n');
		}
	}
}

static void yaml_map(const json_t *m, int ind, bool inline_first, struct sbuf *out)
{
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach((json_t *)m, k, v) {
		json_t *key = json_string(k);
		if (!first || !inline_first)
			sb_addf(out, "%*s", ind, "");
		first = false;
		yaml_scalar(key, out);
		json_decref(key);
		sb_addc(out, ':');
		if (json_is_object(v) && json_object_size(v)) {
			sb_addc(out, '\n');
			yaml_map(v, ind + 2, false, out);
		} else if (json_is_array(v) && json_array_size(v)) {
			sb_addc(out, '\n');
			yaml_seq(v, ind, out);
		} else {
			sb_addc(out, ' ');
			yaml_scalar(v, out);
			sb_addc(out, '\n');
		}
	}
}

void live_yaml(const json_t *v, struct sbuf *out)
{
	yaml_map(v, 0, false, out);
}

/* ---- tables ---- */

void live_table_init(struct live_table *t, size_t ncols)
{
	t->ncols = ncols;
	t->cells = (struct strvec)STRVEC_INIT;
}

void live_cell(struct live_table *t, const char *fmt, ...)
{
	struct sbuf s = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&s, fmt, ap);
	va_end(ap);
	strvec_push(&t->cells, s.buf);
	sb_release(&s);
}

void live_table_print(struct live_table *t, const char *indent, int gap)
{
	size_t *w = xcalloc(t->ncols + 1, sizeof(*w));
	for (size_t i = 0; i < t->cells.n; i++)
		if (strlen(t->cells.v[i]) > w[i % t->ncols])
			w[i % t->ncols] = strlen(t->cells.v[i]);
	for (size_t i = 0; i < t->cells.n; i++) {
		size_t col = i % t->ncols;
		if (col == 0)
			fputs(indent, stdout);
		if (col + 1 == t->ncols || i + 1 == t->cells.n)
			printf("%s\n", t->cells.v[i]);
		else
			printf("%-*s%*s", (int)w[col], t->cells.v[i], gap, "");
	}
	strvec_clear(&t->cells);
	free(w);
}
