/* describe.c: `gitops describe` — a pod, deployment or node as kubectl describes it,
 * from the nodes' live state, with the events of the nodes' journals. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "store/store.h"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *jget(const json_t *o, const char *a, const char *b)
{
	return json_object_get(json_object_get(o, a), b);
}

/* "Key:" padded to width after indent spaces, then the value. */
static void kv(int indent, int width, const char *key, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void kv(int indent, int width, const char *key, const char *fmt, ...)
{
	struct sbuf k = SBUF_INIT;
	va_list ap;
	sb_addf(&k, "%s:", key);
	printf("%*s%-*s", indent, "", width, k.buf);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	sb_release(&k);
}

/* kubectl's time: "Mon, 02 Jan 2006 15:04:05 +0000". */
static void when(const char *rfc3339, struct sbuf *out)
{
	int64_t t = live_time(rfc3339);
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[64];
	if (t < 0 || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm))
		sb_adds(out, "<unknown>");
	else
		sb_adds(out, buf);
}

/* A map as "k=v" (labels) or "k: v" (annotations) lines aligned under the first. */
static void kv_map(int indent, int width, const char *key, const json_t *m, const char *sep)
{
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach((json_t *)m, k, v) {
		if (first)
			kv(indent, width, key, "%s%s%s", k, sep, json_string_value(v) ?: "");
		else
			printf("%*s%s%s%s\n", indent + width, "", k, sep, json_string_value(v) ?: "");
		first = false;
	}
	if (first)
		kv(indent, width, key, "<none>");
}

/* ---- containers ---- */

static void port_text(const json_t *v, struct sbuf *out)
{
	if (json_is_integer(v))
		sb_addf(out, "%lld", (long long)json_integer_value(v));
	else
		sb_adds(out, json_string_value(v) ?: "");
}

/* kubectl's DescribeProbe */
static void probe_text(const json_t *p, struct sbuf *out)
{
	const json_t *h = json_object_get(p, "httpGet"), *t = json_object_get(p, "tcpSocket");
	const json_t *e = json_object_get(p, "exec"), *g = json_object_get(p, "grpc");
	size_t i;
	json_t *w;
	if (h) {
		sb_adds(out, "http-get ");
		for (const char *s = jstr(h, "scheme") ?: "HTTP"; *s; s++)
			sb_addc(out, (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s));
		sb_addf(out, "://%s:", jstr(h, "host") ?: "");
		port_text(json_object_get(h, "port"), out);
		sb_addf(out, "%s", jstr(h, "path") ?: "");
	} else if (t) {
		sb_addf(out, "tcp-socket %s:", jstr(t, "host") ?: "");
		port_text(json_object_get(t, "port"), out);
	} else if (e) {
		sb_adds(out, "exec [");
		json_array_foreach(json_object_get(e, "command"), i, w)
			sb_addf(out, "%s%s", i ? " " : "", json_string_value(w) ?: "");
		sb_addc(out, ']');
	} else if (g) {
		sb_addf(out, "grpc <pod>:%lld %s", (long long)json_integer_value(json_object_get(g, "port")),
			jstr(g, "service") ?: "");
	} else {
		sb_adds(out, "unknown");
	}
	sb_addf(out, " delay=%llds timeout=%llds period=%llds #success=%lld #failure=%lld",
		(long long)json_integer_value(json_object_get(p, "initialDelaySeconds")),
		(long long)json_integer_value(json_object_get(p, "timeoutSeconds")),
		(long long)json_integer_value(json_object_get(p, "periodSeconds")),
		(long long)json_integer_value(json_object_get(p, "successThreshold")),
		(long long)json_integer_value(json_object_get(p, "failureThreshold")));
}

static void ports(const json_t *c, int indent)
{
	struct sbuf s = SBUF_INIT;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(c, "ports"), i, p)
		sb_addf(&s, "%s%lld/%s", i ? ", " : "", (long long)json_integer_value(json_object_get(p, "containerPort")),
			jstr(p, "protocol") ?: "TCP");
	kv(indent, 16, json_array_size(json_object_get(c, "ports")) > 1 ? "Ports" : "Port", "%s", s.len ? s.buf : "<none>");
	sb_release(&s);
}

static void probes(const json_t *c, int indent)
{
	static const char *const names[][2] = { { "livenessProbe", "Liveness" }, { "readinessProbe", "Readiness" },
						 { "startupProbe", "Startup" } };
	struct sbuf s = SBUF_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!json_object_get(c, names[i][0]))
			continue;
		sb_reset(&s);
		probe_text(json_object_get(c, names[i][0]), &s);
		kv(indent, 16, names[i][1], "%s", s.buf);
	}
	sb_release(&s);
}

static void state_lines(const char *title, const json_t *st, int indent)
{
	static const char *const kinds[][2] = { { "running", "Running" }, { "waiting", "Waiting" },
						 { "terminated", "Terminated" } };
	struct sbuf t = SBUF_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const json_t *s = json_object_get(st, kinds[i][0]);
		if (!s)
			continue;
		kv(indent, 16, title, "%s", kinds[i][1]);
		if (jstr(s, "reason"))
			kv(indent + 2, 14, "Reason", "%s", jstr(s, "reason"));
		if (jstr(s, "message"))
			kv(indent + 2, 14, "Message", "%s", jstr(s, "message"));
		if (json_object_get(s, "exitCode"))
			kv(indent + 2, 14, "Exit Code", "%lld", (long long)json_integer_value(json_object_get(s, "exitCode")));
		static const char *const times[][2] = { { "startedAt", "Started" }, { "finishedAt", "Finished" } };
		for (size_t k = 0; k < ARRAY_SIZE(times); k++) {
			if (!jstr(s, times[k][0]))
				continue;
			sb_reset(&t);
			when(jstr(s, times[k][0]), &t);
			kv(indent + 2, 14, times[k][1], "%s", t.buf);
		}
		sb_release(&t);
		return;
	}
	kv(indent, 16, title, "%s", !strcmp(title, "State") ? "Waiting" : "<none>");
	sb_release(&t);
}

static const json_t *spec_of(const json_t *spec, const char *key, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(spec, key), i, c)
		if (!strcmp(jstr(c, "name") ?: "", name))
			return c;
	return NULL;
}

static void containers(const char *title, const json_t *statuses, const json_t *spec, const char *key)
{
	size_t i;
	json_t *cs;
	if (!json_array_size(statuses))
		return;
	printf("%s:\n", title);
	json_array_foreach(statuses, i, cs) {
		const json_t *c = spec_of(spec, key, jstr(cs, "name") ?: "");
		printf("  %s:\n", jstr(cs, "name") ?: "");
		if (jstr(cs, "containerID"))
			kv(4, 16, "Container ID", "%s", jstr(cs, "containerID"));
		kv(4, 16, "Image", "%s", jstr(cs, "image") ?: jstr(c, "image") ?: "");
		if (jstr(cs, "imageID"))
			kv(4, 16, "Image ID", "%s", jstr(cs, "imageID"));
		ports(c, 4);
		state_lines("State", json_object_get(cs, "state"), 4);
		state_lines("Last State", json_object_get(cs, "lastState"), 4);
		kv(4, 16, "Ready", "%s", json_is_true(json_object_get(cs, "ready")) ? "True" : "False");
		kv(4, 16, "Restart Count", "%lld", (long long)json_integer_value(json_object_get(cs, "restartCount")));
		probes(c, 4);
	}
}

/* ---- pods ---- */

/* The pod's spec: its revision's template (Deployments), else its desired object's. */
static json_t *pod_spec(const struct live *l, const json_t *pod)
{
	const json_t *m = json_object_get(pod, "metadata");
	const char *owner = jstr(json_object_get(m, "annotations"), "gitops.io/owner");
	const char *hash = jstr(json_object_get(m, "labels"), "pod-template-hash");
	if (owner && hash && str_has_prefix(owner, "Deployment/")) {
		char *key = xasprintf("revision/%s/%s", owner + strlen("Deployment/"), hash);
		const json_t *rec = cluster_get(l->res.cluster, key);
		free(key);
		if (rec)
			return json_incref(jget(rec, "template", "spec"));
	}
	for (size_t i = 0; i < l->set->nobjs; i++) {
		const struct api_object *o = &l->set->objs[i];
		char *me = xasprintf("%s/%s/%s", o->kind->kind, o->ns, o->name);
		bool mine = !o->invalid && (owner ? !strcmp(owner, me)
					      : !strcmp(o->kind->kind, "Pod") && !strcmp(o->ns, jstr(m, "namespace") ?: "") &&
							!strcmp(o->name, jstr(m, "name") ?: ""));
		free(me);
		if (mine)
			return api_to_json(yn_path(o->root, strcmp(o->kind->kind, "Pod") ? "spec.template.spec" : "spec"));
	}
	return NULL;
}

static bool keep_pod(const struct live *l, const json_t *e, const void *arg)
{
	const json_t *m = json_object_get(arg, "metadata");
	(void)l;
	if (jstr(e, "uid") && jstr(m, "uid"))
		return !strcmp(jstr(e, "uid"), jstr(m, "uid"));
	return !strcmp(jstr(e, "namespace") ?: "", jstr(m, "namespace") ?: "") &&
	       str_has_prefix(jstr(e, "object") ?: "", "pod/") && !strcmp(jstr(e, "name") ?: "", jstr(m, "name") ?: "");
}

static void describe_pod(const struct live *l, const json_t *pod, const json_t *events)
{
	const json_t *m = json_object_get(pod, "metadata"), *st = json_object_get(pod, "status");
	json_t *spec = pod_spec(l, pod);
	struct sbuf t = SBUF_INIT;
	struct live_podsum sum;
	live_pod_summary(pod, &sum);
	when(jstr(st, "startTime"), &t);
	kv(0, 18, "Name", "%s", jstr(m, "name"));
	kv(0, 18, "Namespace", "%s", jstr(m, "namespace"));
	kv(0, 18, "Node", "%s/%s", jstr(json_object_get(pod, "spec"), "nodeName") ?: "", jstr(st, "hostIP") ?: "<unknown>");
	kv(0, 18, "Start Time", "%s", t.buf);
	kv_map(0, 18, "Labels", json_object_get(m, "labels"), "=");
	kv_map(0, 18, "Annotations", json_object_get(m, "annotations"), ": ");
	kv(0, 18, "Status", "%s", sum.status.buf);
	if (jstr(st, "message"))
		kv(0, 18, "Message", "%s", jstr(st, "message"));
	kv(0, 18, "IP", "%s", jstr(st, "podIP") ?: "<none>");
	if (jstr(jget(pod, "metadata", "annotations"), "gitops.io/replicaset"))
		kv(0, 18, "Controlled By", "ReplicaSet/%s", jstr(jget(pod, "metadata", "annotations"), "gitops.io/replicaset"));
	containers("Init Containers", json_object_get(st, "initContainerStatuses"), spec, "initContainers");
	containers("Containers", json_object_get(st, "containerStatuses"), spec, "containers");
	struct live_table c;
	size_t i;
	json_t *cond;
	live_table_init(&c, 2);
	live_cell(&c, "Type");
	live_cell(&c, "Status");
	json_array_foreach(json_object_get(st, "conditions"), i, cond) {
		live_cell(&c, "%s", jstr(cond, "type") ?: "");
		live_cell(&c, "%s", jstr(cond, "status") ?: "");
	}
	printf("Conditions:\n");
	live_table_print(&c, "  ", 2);
	events_describe(l, events, keep_pod, pod);
	sb_release(&sum.status);
	sb_release(&t);
	json_decref(spec);
}

/* ---- deployments ---- */

struct owner {
	const char *ns, *name;
};

static bool keep_deploy(const struct live *l, const json_t *e, const void *arg)
{
	const struct owner *o = arg;
	return jstr(e, "uid") && live_owned(l, jstr(e, "namespace") ?: "", jstr(e, "name") ?: "", jstr(e, "owner"), o->ns, o->name);
}

static const char *revision_of(const json_t *o)
{
	return jstr(jget(o, "metadata", "annotations"), "deployment.kubernetes.io/revision");
}

/* NewReplicaSet and OldReplicaSets lines: "NAME (CURRENT/DESIRED replicas created)". */
static void replicasets(const struct live *l, const json_t *d)
{
	json_t *all = live_replicasets(l), *rs;
	struct sbuf old = SBUF_INIT, cur = SBUF_INIT;
	const char *ns = jstr(json_object_get(d, "metadata"), "namespace"), *name = jstr(json_object_get(d, "metadata"), "name");
	size_t i;
	json_array_foreach(all, i, rs) {
		const json_t *m = json_object_get(rs, "metadata");
		const json_t *ref = json_array_get(json_object_get(m, "ownerReferences"), 0);
		if (strcmp(jstr(m, "namespace") ?: "", ns) || strcmp(jstr(ref, "name") ?: "", name))
			continue;
		bool is_new = revision_of(rs) && revision_of(d) && !strcmp(revision_of(rs), revision_of(d));
		long long have = (long long)json_integer_value(jget(rs, "status", "replicas"));
		long long want = (long long)json_integer_value(jget(rs, "spec", "replicas"));
		if (!is_new && !have && !want)
			continue; /* kubectl lists only old ReplicaSets with pods */
		struct sbuf *to = is_new ? &cur : &old;
		sb_addf(to, "%s%s (%lld/%lld replicas created)", to->len ? ", " : "", jstr(m, "name"), have, want);
	}
	kv(0, 17, "OldReplicaSets", "%s", old.len ? old.buf : "<none>");
	kv(0, 17, "NewReplicaSet", "%s", cur.len ? cur.buf : "<none>");
	sb_release(&old);
	sb_release(&cur);
	json_decref(all);
}

/* Our additions: the revision's commit, a pin (rollout undo) and a pause. */
static void history(const struct live *l, const char *ns, const char *name, const char *rev)
{
	char *prefix = xasprintf("revision/%s/%s/", ns, name), *pin = xasprintf("pin/%s/%s", ns, name);
	char *paused = xasprintf("paused/%s/%s", ns, name);
	const char *key;
	json_t *e;
	int64_t want = -1;
	if (rev && parse_i64(rev, 1, INT64_MAX, &want) < 0)
		want = -1;
	json_object_foreach(l->res.cluster, key, e) {
		const json_t *v = cluster_get(l->res.cluster, key);
		if (v && str_has_prefix(key, prefix) && json_integer_value(json_object_get(v, "revision")) == want)
			kv(0, 24, "Revision", "%s (commit %.7s: %s)", rev, jstr(v, "commit") ?: "", jstr(v, "subject") ?: "");
	}
	if (cluster_get(l->res.cluster, pin))
		kv(0, 24, "Pinned", "revision %lld (rollout undo; until git changes the template)",
		   (long long)json_integer_value(json_object_get(cluster_get(l->res.cluster, pin), "revision")));
	if (json_is_true(cluster_get(l->res.cluster, paused)))
		kv(0, 24, "Paused", "true (rollout pause)");
	free(prefix);
	free(pin);
	free(paused);
}

static void strategy(const json_t *spec)
{
	const json_t *s = json_object_get(spec, "strategy"), *ru = json_object_get(s, "rollingUpdate");
	struct sbuf a = SBUF_INIT, b = SBUF_INIT;
	kv(0, 24, "StrategyType", "%s", jstr(s, "type") ?: "RollingUpdate");
	kv(0, 24, "MinReadySeconds", "%lld", (long long)json_integer_value(json_object_get(spec, "minReadySeconds")));
	if (ru) {
		port_text(json_object_get(ru, "maxUnavailable"), &a);
		port_text(json_object_get(ru, "maxSurge"), &b);
		kv(0, 24, "RollingUpdateStrategy", "%s max unavailable, %s max surge", a.buf, b.buf);
	}
	sb_release(&a);
	sb_release(&b);
}

static void pod_template(const json_t *tmpl)
{
	size_t i;
	json_t *c;
	printf("Pod Template:\n");
	kv_map(2, 9, "Labels", jget(tmpl, "metadata", "labels"), "=");
	printf("  Containers:\n");
	json_array_foreach(jget(tmpl, "spec", "containers"), i, c) {
		printf("   %s:\n", jstr(c, "name") ?: "");
		kv(4, 16, "Image", "%s", jstr(c, "image") ?: "");
		ports(c, 4);
		probes(c, 4);
	}
}

static void describe_deployment(const struct live *l, const json_t *d, const json_t *events)
{
	const json_t *m = json_object_get(d, "metadata"), *spec = json_object_get(d, "spec");
	const json_t *st = json_object_get(d, "status");
	struct sbuf t = SBUF_INIT, sel = SBUF_INIT;
	struct owner o = { jstr(m, "namespace"), jstr(m, "name") };
	const char *k;
	json_t *v;
	when(jstr(m, "creationTimestamp"), &t);
	json_object_foreach(jget(d, "spec", "selector"), k, v)
		if (!strcmp(k, "matchLabels"))
			json_object_foreach(v, k, v)
				sb_addf(&sel, "%s%s=%s", sel.len ? "," : "", k, json_string_value(v) ?: "");
	kv(0, 24, "Name", "%s", o.name);
	kv(0, 24, "Namespace", "%s", o.ns);
	kv(0, 24, "CreationTimestamp", "%s", t.buf);
	kv_map(0, 24, "Labels", json_object_get(m, "labels"), "=");
	kv_map(0, 24, "Annotations", json_object_get(m, "annotations"), ": ");
	kv(0, 24, "Selector", "%s", sel.len ? sel.buf : "<none>");
	long long total = (long long)json_integer_value(json_object_get(st, "replicas"));
	kv(0, 24, "Replicas", "%lld desired | %lld updated | %lld total | %lld available | %lld unavailable",
	   (long long)json_integer_value(json_object_get(spec, "replicas")),
	   (long long)json_integer_value(json_object_get(st, "updatedReplicas")), total,
	   (long long)json_integer_value(json_object_get(st, "availableReplicas")),
	   (long long)json_integer_value(json_object_get(st, "unavailableReplicas")));
	strategy(spec);
	history(l, o.ns, o.name, revision_of(d));
	pod_template(json_object_get(spec, "template"));
	struct live_table c;
	size_t i;
	json_t *cond;
	live_table_init(&c, 3);
	for (i = 0; i < 6; i++)
		live_cell(&c, "%s", (const char *[]){ "Type", "Status", "Reason", "----", "------", "------" }[i]);
	json_array_foreach(json_object_get(st, "conditions"), i, cond) {
		live_cell(&c, "%s", jstr(cond, "type") ?: "");
		live_cell(&c, "%s", jstr(cond, "status") ?: "");
		live_cell(&c, "%s", jstr(cond, "reason") ?: "");
	}
	printf("Conditions:\n");
	live_table_print(&c, "  ", 2);
	replicasets(l, d);
	events_describe(l, events, keep_deploy, &o);
	sb_release(&t);
	sb_release(&sel);
}

/* ---- nodes ---- */

static bool keep_node(const struct live *l, const json_t *e, const void *arg)
{
	(void)l;
	return str_has_prefix(jstr(e, "object") ?: "", "node/") && !strcmp(jstr(e, "name") ?: "", arg);
}

static void resources(const char *title, const json_t *m)
{
	const char *k;
	json_t *v;
	printf("%s:\n", title);
	json_object_foreach((json_t *)m, k, v)
		kv(2, 10, k, "%s", json_string_value(v) ?: "");
}

static void node_pods(const struct live *l, const char *name)
{
	struct live_table t;
	struct sbuf age = SBUF_INIT;
	size_t i, n = 0;
	json_t *p;
	live_table_init(&t, 4);
	for (i = 0; i < 8; i++)
		live_cell(&t, "%s", (const char *[]){ "Namespace", "Name", "Status", "Age", "---------", "----", "------",
						      "---" }[i]);
	json_array_foreach(l->pods, i, p) {
		const json_t *m = json_object_get(p, "metadata");
		struct live_podsum s;
		if (strcmp(jstr(json_object_get(p, "spec"), "nodeName") ?: "", name))
			continue;
		n++;
		live_pod_summary(p, &s);
		sb_reset(&age);
		live_age_of(l, jstr(m, "creationTimestamp"), &age);
		live_cell(&t, "%s", jstr(m, "namespace") ?: "");
		live_cell(&t, "%s", jstr(m, "name") ?: "");
		live_cell(&t, "%s", s.status.buf);
		live_cell(&t, "%s", age.buf);
		sb_release(&s.status);
	}
	printf("Non-terminated Pods:          (%zu in total)\n", n);
	live_table_print(&t, "  ", 2);
	sb_release(&age);
}

static void describe_node(const struct live *l, const json_t *node, const json_t *events)
{
	const json_t *m = json_object_get(node, "metadata"), *st = json_object_get(node, "status");
	const json_t *cg = json_object_get(st, "cgroup");
	const char *name = jstr(m, "name");
	struct sbuf roles = SBUF_INIT, s = SBUF_INIT;
	const char *k;
	json_t *v, *c;
	size_t i;
	json_object_foreach(json_object_get(m, "labels"), k, v)
		if (str_has_prefix(k, "node-role.kubernetes.io/") && k[24])
			sb_addf(&roles, "%s%s", roles.len ? "," : "", k + 24);
	kv(0, 20, "Name", "%s", name);
	kv(0, 20, "Roles", "%s", roles.len ? roles.buf : "<none>");
	kv_map(0, 20, "Labels", json_object_get(m, "labels"), "=");
	kv_map(0, 20, "Annotations", json_object_get(m, "annotations"), ": ");
	kv(0, 20, "Unschedulable", "%s", json_is_true(jget(node, "spec", "unschedulable")) ? "true" : "false");
	struct live_table t;
	live_table_init(&t, 4);
	for (i = 0; i < 8; i++)
		live_cell(&t, "%s", (const char *[]){ "Type", "Status", "Reason", "Message", "----", "------", "------",
						      "-------" }[i]);
	json_array_foreach(json_object_get(st, "conditions"), i, c)
		for (int f = 0; f < 4; f++)
			live_cell(&t, "%s", jstr(c, (const char *[]){ "type", "status", "reason", "message" }[f]) ?: "");
	if (!json_array_size(json_object_get(st, "conditions"))) {
		kv(0, 20, "Conditions", "<unknown: not answering, within the grace period>");
		strvec_clear(&t.cells);
	} else {
		printf("Conditions:\n");
		live_table_print(&t, "  ", 2);
	}
	printf("Addresses:\n");
	json_array_foreach(json_object_get(st, "addresses"), i, c)
		kv(2, 13, jstr(c, "type") ?: "", "%s", jstr(c, "address") ?: "");
	if (json_object_get(st, "capacity"))
		resources("Capacity", json_object_get(st, "capacity"));
	if (json_object_get(st, "allocatable"))
		resources("Allocatable", json_object_get(st, "allocatable"));
	printf("System Info:\n");
	kv(2, 18, "gitops Version", "%s", jstr(json_object_get(st, "nodeInfo"), "kubeletVersion") ?: "<unknown>");
	json_array_foreach(json_object_get(cg, "enforced"), i, c)
		sb_addf(&s, "%s%s", i ? ", " : "", json_string_value(c) ?: "");
	if (cg)
		kv(2, 18, "Cgroup", "%s (enforced: %s)", jstr(cg, "version") ?: "", s.buf);
	kv(0, 20, "PodCIDR", "%s", jstr(json_object_get(node, "spec"), "podCIDR") ?: "<none>");
	node_pods(l, name);
	events_describe(l, events, keep_node, name);
	sb_release(&roles);
	sb_release(&s);
}

/* ---- the command ---- */

static json_t *find(json_t *items, const char *ns, const char *name)
{
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o) {
		const json_t *m = json_object_get(o, "metadata");
		if ((!ns || !strcmp(jstr(m, "namespace") ?: "", ns)) && !strcmp(jstr(m, "name") ?: "", name))
			return o;
	}
	return NULL;
}

static int describe(struct live *l, const struct api_kind *k, const char *ns, const char *name)
{
	json_t *records = NULL, *events, *items;
	int r = live_records(l, 1, &records);
	if (r)
		return r;
	events = events_of(l, records);
	items = !strcmp(k->kind, "Pod") ? json_incref(l->pods) : !strcmp(k->kind, "Node") ? live_nodes(l)
											    : live_deployments(l);
	const json_t *o = find(items, k->namespaced ? ns : NULL, name);
	if (!o) {
		fprintf(stderr, "gitops: %s%s%s \"%s\" not found", k->plural, *k->group ? "." : "", k->group, name);
		if (k->namespaced)
			fprintf(stderr, " in namespace \"%s\"", ns);
		fputc('\n', stderr);
		r = 1;
	} else if (!strcmp(k->kind, "Pod")) {
		describe_pod(l, o, events);
	} else if (!strcmp(k->kind, "Node")) {
		describe_node(l, o, events);
	} else {
		describe_deployment(l, o, events);
	}
	json_decref(items);
	json_decref(events);
	json_decref(records);
	return r;
}

int cmd_describe(struct cli_args *a)
{
	const char *slash = a->argc ? strchr(a->argv[0], '/') : NULL;
	if (a->argc != (slash ? 1 : 2))
		return cli_usage_error(a, "name one object: gitops describe KIND NAME (or KIND/NAME)");
	char *kind = slash ? xstrndup(a->argv[0], (size_t)(slash - a->argv[0])) : xstrdup(a->argv[0]);
	const char *name = slash ? slash + 1 : a->argv[1];
	const struct api_kind *k = api_kind_lookup(kind);
	free(kind);
	if (!k || (strcmp(k->kind, "Pod") && strcmp(k->kind, "Deployment") && strcmp(k->kind, "Node")))
		return cli_usage_error(a, "describe knows pods, deployments and nodes");
	struct api_set set;
	struct live l;
	memset(&l, 0, sizeof(l));
	int r = live_load(a, &set);
	if (r == 0)
		r = live_open(a, &set, &l);
	if (r == 0)
		r = describe(&l, k, cli_str(a, "namespace") ? cli_str(a, "namespace") : "default", name);
	live_close(&l);
	api_set_release(&set);
	return r;
}
