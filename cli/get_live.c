/* get_live.c: `gitops get` of the kinds a cluster runs — pods, deployments,
 * replicasets, nodes, services and endpoints — from the live state its nodes
 * report (cli/live.c), in kubectl's columns and formats. The desired side, the
 * selection and the not-found messages are cli/get.c's. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"

typedef void (*live_cell_fn)(const struct live *l, const json_t *o, struct sbuf *out);
struct live_column {
	const char *header;
	live_cell_fn cell;     /* NULL: the value at path (an integer, or a string else dflt) */
	const char *path;      /* "status.readyReplicas" */
	const char *dflt;
	bool wide;
};

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *jat(const json_t *o, const char *a, const char *b)
{
	return json_object_get(json_object_get(o, a), b);
}

static void path_cell(const json_t *o, const char *path, const char *dflt, struct sbuf *out)
{
	const json_t *v = o;
	for (const char *p = path; v && *p;) {
		size_t n = strcspn(p, ".");
		char *key = xstrndup(p, n);
		v = json_object_get(v, key);
		free(key);
		p += n + (p[n] == '.');
	}
	if (json_is_string(v))
		sb_adds(out, json_string_value(v));
	else if (!dflt || json_is_integer(v))
		sb_addf(out, "%lld", (long long)json_integer_value(v));
	else
		sb_adds(out, dflt);
}

static void l_age(const struct live *l, const json_t *o, struct sbuf *out)
{
	live_age_of(l, jstr(json_object_get(o, "metadata"), "creationTimestamp"), out);
}

/* READY, STATUS, RESTARTS ("3 (45s ago)" when a container restarted) */
static void p_summary(const struct live *l, const json_t *o, struct sbuf *out, int what)
{
	struct live_podsum s;
	live_pod_summary(o, &s);
	if (what == 0) {
		sb_addf(out, "%d/%d", s.ready, s.total);
	} else if (what == 1) {
		sb_adds(out, s.status.buf);
	} else {
		sb_addf(out, "%lld", (long long)s.restarts);
		if (s.restarts && s.last_restart >= 0) {
			sb_adds(out, " (");
			live_age(l->now - s.last_restart, out);
			sb_adds(out, " ago)");
		}
	}
	sb_release(&s.status);
}

static void p_ready(const struct live *l, const json_t *o, struct sbuf *out) { p_summary(l, o, out, 0); }
static void p_status(const struct live *l, const json_t *o, struct sbuf *out) { p_summary(l, o, out, 1); }
static void p_restarts(const struct live *l, const json_t *o, struct sbuf *out) { p_summary(l, o, out, 2); }

static void d_ready(const struct live *l, const json_t *o, struct sbuf *out)
{
	(void)l;
	sb_addf(out, "%lld/%lld", (long long)json_integer_value(jat(o, "status", "readyReplicas")),
		(long long)json_integer_value(jat(o, "spec", "replicas")));
}

static void l_containers(const json_t *o, const char *key, struct sbuf *out)
{
	size_t i;
	json_t *c;
	json_array_foreach(jat(jat(o, "spec", "template"), "spec", "containers"), i, c)
		sb_addf(out, "%s%s", i ? "," : "", jstr(c, key) ?: "");
}

static void l_names(const struct live *l, const json_t *o, struct sbuf *out) { (void)l; l_containers(o, "name", out); }
static void l_images(const struct live *l, const json_t *o, struct sbuf *out) { (void)l; l_containers(o, "image", out); }

static void l_selector(const struct live *l, const json_t *o, struct sbuf *out)
{
	const char *k;
	json_t *v;
	(void)l;
	json_object_foreach(json_object_get(jat(o, "spec", "selector"), "matchLabels"), k, v)
		sb_addf(out, "%s%s=%s", out->len ? "," : "", k, json_string_value(v) ?: "");
	if (!out->len)
		sb_adds(out, "<none>");
}

/* Ready, NotReady (Ready condition not True) or Unknown (none), as kubectl */
static void n_status(const struct live *l, const json_t *o, struct sbuf *out)
{
	size_t i;
	json_t *c;
	(void)l;
	json_array_foreach(jat(o, "status", "conditions"), i, c)
		if (!strcmp(jstr(c, "type") ?: "", "Ready"))
			sb_adds(out, !strcmp(jstr(c, "status") ?: "", "True") ? "Ready" : "NotReady");
	if (!out->len)
		sb_adds(out, "Unknown");
	if (json_is_true(jat(o, "spec", "unschedulable")))
		sb_adds(out, ",SchedulingDisabled");
}

static void n_roles(const struct live *l, const json_t *o, struct sbuf *out)
{
	const char *k;
	json_t *v;
	(void)l;
	json_object_foreach(jat(o, "metadata", "labels"), k, v)
		if (str_has_prefix(k, "node-role.kubernetes.io/") && k[24])
			sb_addf(out, "%s%s", out->len ? "," : "", k + 24);
	if (!out->len)
		sb_adds(out, "<none>");
}

static void n_ip(const struct live *l, const json_t *o, struct sbuf *out)
{
	size_t i;
	json_t *a;
	(void)l;
	json_array_foreach(jat(o, "status", "addresses"), i, a)
		if (!out->len && !strcmp(jstr(a, "type") ?: "", "InternalIP"))
			sb_adds(out, jstr(a, "address") ?: "");
	if (!out->len)
		sb_adds(out, "<none>");
}

static void n_pods(const struct live *l, const json_t *o, struct sbuf *out)
{
	size_t i, n = 0;
	json_t *p;
	json_array_foreach(l->pods, i, p)
		n += !strcmp(jstr(json_object_get(p, "spec"), "nodeName") ?: "", jstr(json_object_get(o, "metadata"), "name") ?: "");
	sb_addf(out, "%zu", n);
}

/* Services: kubectl's CLUSTER-IP, EXTERNAL-IP and PORT(S) */
static void s_cluster_ip(const struct live *l, const json_t *o, struct sbuf *out)
{
	(void)l;
	const char *ip = jstr(json_object_get(o, "spec"), "clusterIP");
	sb_adds(out, ip && *ip ? ip : "<none>");
}

static void join_strings(const json_t *arr, struct sbuf *out)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		sb_addf(out, "%s%s", out->len ? "," : "", json_string_value(v) ?: "");
}

static void s_external_ip(const struct live *l, const json_t *o, struct sbuf *out)
{
	(void)l;
	const json_t *spec = json_object_get(o, "spec");
	const char *type = jstr(spec, "type") ?: "ClusterIP";
	size_t i;
	json_t *in;
	if (!strcmp(type, "ExternalName")) {
		sb_adds(out, jstr(spec, "externalName") ?: "");
		return;
	}
	if (!strcmp(type, "LoadBalancer"))
		json_array_foreach(json_object_get(jat(o, "status", "loadBalancer"), "ingress"), i, in)
			sb_addf(out, "%s%s", out->len ? "," : "", jstr(in, "ip") ?: jstr(in, "hostname") ?: "");
	join_strings(json_object_get(spec, "externalIPs"), out);
	if (!out->len)
		sb_adds(out, !strcmp(type, "LoadBalancer") ? "<pending>" : "<none>");
}

static void s_ports(const struct live *l, const json_t *o, struct sbuf *out)
{
	size_t i;
	json_t *p;
	(void)l;
	json_array_foreach(jat(o, "spec", "ports"), i, p) {
		json_int_t np = json_integer_value(json_object_get(p, "nodePort"));
		sb_addf(out, "%s%lld", i ? "," : "", (long long)json_integer_value(json_object_get(p, "port")));
		if (np > 0)
			sb_addf(out, ":%lld", (long long)np);
		sb_addf(out, "/%s", jstr(p, "protocol") ?: "TCP");
	}
	if (!out->len)
		sb_adds(out, "<none>");
}

static void s_selector(const struct live *l, const json_t *o, struct sbuf *out)
{
	const char *k;
	json_t *v;
	(void)l;
	json_object_foreach(jat(o, "spec", "selector"), k, v)
		sb_addf(out, "%s%s=%s", out->len ? "," : "", k, json_string_value(v) ?: "");
	if (!out->len)
		sb_adds(out, "<none>");
}

/* kubectl's formatEndpoints: the ready addresses, IP:PORT per port, the first
 * three and "+ N more..." */
static void e_endpoints(const struct live *l, const json_t *o, struct sbuf *out)
{
	size_t i, k, j, count = 0, shown = 0;
	json_t *ss, *p, *a;
	(void)l;
	json_array_foreach(json_object_get(o, "subsets"), i, ss) {
		const json_t *addrs = json_object_get(ss, "addresses"), *ports = json_object_get(ss, "ports");
		size_t nports = json_array_size(ports) ? json_array_size(ports) : 1;
		for (k = 0; k < nports; k++) {
			p = json_array_get(ports, k);
			count += json_array_size(addrs);
			json_array_foreach(addrs, j, a) {
				if (shown == 3)
					break;
				sb_addf(out, "%s%s", shown++ ? "," : "", jstr(a, "ip") ?: "");
				if (p)
					sb_addf(out, ":%lld", (long long)json_integer_value(json_object_get(p, "port")));
			}
		}
	}
	if (count > shown)
		sb_addf(out, " + %zu more...", count - shown);
	if (!out->len)
		sb_adds(out, "<none>");
}

static json_t *pod_items(const struct live *l)
{
	return json_incref(l->pods);
}

struct live_kind {
	const char *kind;
	const char *prefix; /* -o name and multi-kind tables: kubectl's "deployment.apps" */
	json_t *(*items)(const struct live *l);
	struct live_column cols[8];
};

#define AGE { "AGE", l_age, NULL, NULL, false }
#define WORKLOAD_LIVE_WIDE { "CONTAINERS", l_names, NULL, NULL, true }, { "IMAGES", l_images, NULL, NULL, true }, \
	{ "SELECTOR", l_selector, NULL, NULL, true }
static const struct live_kind live_kinds[] = {
	{ "Pod", "pod", pod_items, { { "READY", p_ready, NULL, NULL, false }, { "STATUS", p_status, NULL, NULL, false },
		{ "RESTARTS", p_restarts, NULL, NULL, false }, AGE, { "IP", NULL, "status.podIP", "<none>", true },
		{ "NODE", NULL, "spec.nodeName", "<none>", true } } },
	{ "Deployment", "deployment.apps", live_deployments, { { "READY", d_ready, NULL, NULL, false },
		{ "UP-TO-DATE", NULL, "status.updatedReplicas", NULL, false },
		{ "AVAILABLE", NULL, "status.availableReplicas", NULL, false }, AGE, WORKLOAD_LIVE_WIDE } },
	{ "ReplicaSet", "replicaset.apps", live_replicasets, { { "DESIRED", NULL, "spec.replicas", NULL, false },
		{ "CURRENT", NULL, "status.replicas", NULL, false }, { "READY", NULL, "status.readyReplicas", NULL, false },
		AGE, WORKLOAD_LIVE_WIDE } },
	{ "Node", "node", live_nodes, { { "STATUS", n_status, NULL, NULL, false }, { "ROLES", n_roles, NULL, NULL, false },
		AGE, { "VERSION", NULL, "status.nodeInfo.kubeletVersion", "", false }, { "INTERNAL-IP", n_ip, NULL, NULL, true },
		{ "POD-CIDR", NULL, "spec.podCIDR", "<none>", true }, { "PODS", n_pods, NULL, NULL, true } } },
	{ "Service", "service", live_services, { { "TYPE", NULL, "spec.type", "ClusterIP", false },
		{ "CLUSTER-IP", s_cluster_ip, NULL, NULL, false }, { "EXTERNAL-IP", s_external_ip, NULL, NULL, false },
		{ "PORT(S)", s_ports, NULL, NULL, false }, AGE, { "SELECTOR", s_selector, NULL, NULL, true } } },
	{ "Endpoints", "endpoints", live_endpoints, { { "ENDPOINTS", e_endpoints, NULL, NULL, false }, AGE } },
};

const struct live_kind *live_kind(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(live_kinds); i++)
		if (!strcmp(live_kinds[i].kind, kind))
			return &live_kinds[i];
	return NULL;
}

static const char *json_label(void *ctx, const char *key)
{
	return json_string_value(json_object_get(ctx, key));
}

static bool live_selected(const struct query *q, const struct api_kind *k, const json_t *o)
{
	const json_t *m = json_object_get(o, "metadata");
	if (q->name && strcmp(q->name, jstr(m, "name") ?: ""))
		return false;
	if (q->ns && k->namespaced && strcmp(q->ns, jstr(m, "namespace") ?: ""))
		return false;
	return api_selector_matches(&q->sel, json_label, json_object_get(m, "labels"));
}

static void live_table(const struct live *l, const struct live_kind *k, const json_t *items, bool wide,
		       bool show_ns, bool multi)
{
	size_t ncols = 1 + show_ns, i;
	for (size_t c = 0; c < 8 && k->cols[c].header; c++)
		ncols += !k->cols[c].wide || wide;
	struct live_table t;
	live_table_init(&t, ncols);
	if (show_ns)
		live_cell(&t, "NAMESPACE");
	live_cell(&t, "NAME");
	for (size_t c = 0; c < 8 && k->cols[c].header; c++)
		if (!k->cols[c].wide || wide)
			live_cell(&t, "%s", k->cols[c].header);
	json_t *o;
	struct sbuf cell = SBUF_INIT;
	json_array_foreach(items, i, o) {
		const json_t *m = json_object_get(o, "metadata");
		if (show_ns)
			live_cell(&t, "%s", jstr(m, "namespace") ?: "");
		live_cell(&t, "%s%s%s", multi ? k->prefix : "", multi ? "/" : "", jstr(m, "name") ?: "");
		for (size_t c = 0; c < 8 && k->cols[c].header; c++) {
			if (k->cols[c].wide && !wide)
				continue;
			sb_reset(&cell);
			if (k->cols[c].cell)
				k->cols[c].cell(l, o, &cell);
			else
				path_cell(o, k->cols[c].path, k->cols[c].dflt, &cell);
			live_cell(&t, "%s", cell.buf);
		}
	}
	sb_release(&cell);
	live_table_print(&t, "", 3);
}

static void live_print(const json_t *items, const char *fmt)
{
	size_t i, n = json_array_size(items);
	json_t *o;
	if (!strcmp(fmt, "name")) {
		json_array_foreach(items, i, o)
			printf("%s/%s\n", live_kind(jstr(o, "kind") ?: "")->prefix, jstr(json_object_get(o, "metadata"), "name"));
	} else if (!strcmp(fmt, "yaml")) {
		struct sbuf s = SBUF_INIT;
		json_array_foreach(items, i, o) {
			if (i)
				sb_adds(&s, "---\n");
			live_yaml(o, &s);
		}
		fputs(s.buf, stdout);
		sb_release(&s);
	} else {
		json_t *doc = n == 1 ? json_incref(json_array_get(items, 0))
				     : json_pack("{s:s, s:s, s:O}", "apiVersion", "v1", "kind", "List", "items", items);
		char *s = json_dumps(doc, JSON_INDENT(4));
		puts(s);
		free(s);
		json_decref(doc);
	}
}

/* Print the live kinds of q; *found counts what matched (a table was printed). */
int get_live(struct cli_args *a, struct api_set *set, struct query *q, const char *fmt, bool all_ns,
	     bool multi, size_t *found)
{
	struct live l;
	int r = live_open(a, set, &l);
	bool tabular = !*fmt || !strcmp(fmt, "wide");
	json_t *all = json_array();
	for (size_t i = 0; r == 0 && i < q->nkinds; i++) {
		const struct live_kind *k = live_kind(q->kinds[i]->kind);
		json_t *items = k->items(&l), *sel = json_array(), *o;
		size_t j;
		json_array_foreach(items, j, o)
			if (live_selected(q, q->kinds[i], o))
				json_array_append(sel, o);
		if (tabular && json_array_size(sel)) {
			if (*found)
				putchar('\n');
			live_table(&l, k, sel, !strcmp(fmt, "wide"), all_ns && q->kinds[i]->namespaced, multi);
		}
		*found += json_array_size(sel);
		json_array_extend(all, sel);
		json_decref(items);
		json_decref(sel);
	}
	if (r == 0 && !tabular && json_array_size(all))
		live_print(all, fmt);
	json_decref(all);
	live_close(&l);
	return r;
}
