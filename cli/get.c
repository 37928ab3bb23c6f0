/* get.c: `gitops get` — the desired objects, with defaults applied, as kubectl
 * prints them (table, wide, name, yaml, json); pods, deployments, replicasets,
 * nodes, services and endpoints of a cluster live from its nodes (cli/get_live.c). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"

typedef void (*cell_fn)(const struct ynode *root, struct sbuf *out);
struct column {
	const char *header;
	cell_fn cell;
	bool wide;
};

/* ---- cells ---- */

static void scalar_at(const struct ynode *root, const char *path, const char *dflt, struct sbuf *out)
{
	const struct ynode *n = yn_path(root, path);
	sb_adds(out, n && n->type == YN_SCALAR && n->tag != YS_NULL ? n->str : dflt);
}

static void join_map(const struct ynode *m, struct sbuf *out)
{
	for (size_t i = 0; m && m->type == YN_MAP && i < m->n; i++)
		sb_addf(out, "%s%s=%s", i ? "," : "", m->items[2 * i]->str,
			yn_str(m->items[2 * i + 1]) ? m->items[2 * i + 1]->str : "");
}

static const struct ynode *podspec(const struct ynode *root)
{
	const char *kind = yn_str(yn_get(root, "kind"));
	if (kind && !strcmp(kind, "Pod"))
		return yn_get(root, "spec");
	if (kind && !strcmp(kind, "CronJob"))
		return yn_path(root, "spec.jobTemplate.spec.template.spec");
	return yn_path(root, "spec.template.spec");
}

static void containers_field(const struct ynode *root, const char *key, struct sbuf *out)
{
	const struct ynode *cs = yn_get(podspec(root), "containers");
	for (size_t i = 0; i < yn_len(cs); i++)
		sb_addf(out, "%s%s", i ? "," : "", yn_str(yn_get(yn_at(cs, i), key)) ? yn_str(yn_get(yn_at(cs, i), key)) : "");
}

static void c_containers(const struct ynode *r, struct sbuf *o) { containers_field(r, "name", o); }
static void c_images(const struct ynode *r, struct sbuf *o) { containers_field(r, "image", o); }
static void c_replicas(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.replicas", "1", o); }
static void c_strategy(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.strategy.type", "", o); }
static void c_completions(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.completions", "<none>", o); }
static void c_parallelism(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.parallelism", "1", o); }
static void c_schedule(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.schedule", "", o); }
static void c_suspend(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.suspend", "false", o); }
static void c_svctype(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.type", "ClusterIP", o); }
static void c_clusterip(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.clusterIP", "<auto>", o); }
static void c_sectype(const struct ynode *r, struct sbuf *o) { scalar_at(r, "type", "Opaque", o); }
static void c_podcidr(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.podCIDR", "<auto>", o); }
static void c_pcvalue(const struct ynode *r, struct sbuf *o) { scalar_at(r, "value", "0", o); }
static void c_globaldefault(const struct ynode *r, struct sbuf *o) { scalar_at(r, "globalDefault", "false", o); }
static void c_minpods(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.minReplicas", "1", o); }
static void c_maxpods(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.maxReplicas", "", o); }
static void c_node(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.nodeName", "<none>", o); }

static void c_selector(const struct ynode *r, struct sbuf *o)
{
	const struct ynode *sel = yn_path(r, "spec.selector");
	if (yn_get(sel, "matchLabels") || yn_get(sel, "matchExpressions"))
		sel = yn_get(sel, "matchLabels");
	if (!yn_len(sel))
		sb_adds(o, "<none>");
	join_map(sel, o);
}

static void c_nodeselector(const struct ynode *r, struct sbuf *o)
{
	const struct ynode *ns = yn_get(podspec(r), "nodeSelector");
	if (!yn_len(ns))
		sb_adds(o, "<none>");
	join_map(ns, o);
}

static void c_externalip(const struct ynode *r, struct sbuf *o)
{
	const struct ynode *e = yn_path(r, "spec.externalIPs");
	if (!yn_len(e))
		sb_adds(o, yn_str(yn_path(r, "spec.externalName")) ? yn_str(yn_path(r, "spec.externalName")) : "<none>");
	for (size_t i = 0; i < yn_len(e); i++)
		sb_addf(o, "%s%s", i ? "," : "", yn_str(yn_at(e, i)) ? yn_str(yn_at(e, i)) : "");
}

static void c_ports(const struct ynode *r, struct sbuf *o)
{
	const struct ynode *ps = yn_path(r, "spec.ports");
	if (!yn_len(ps))
		sb_adds(o, "<none>");
	for (size_t i = 0; i < yn_len(ps); i++) {
		const struct ynode *p = yn_at(ps, i);
		const char *port = yn_str(yn_get(p, "port")), *np = yn_str(yn_get(p, "nodePort"));
		const char *proto = yn_str(yn_get(p, "protocol"));
		sb_addf(o, "%s%s%s%s/%s", i ? "," : "", port ? port : "", np ? ":" : "", np ? np : "",
			proto ? proto : "TCP");
	}
}

static void c_data(const struct ynode *r, struct sbuf *o)
{
	sb_addf(o, "%zu", yn_len(yn_get(r, "data")) + yn_len(yn_get(r, "binaryData")) +
				  yn_len(yn_get(r, "stringData")));
}

static void c_podselector(const struct ynode *r, struct sbuf *o)
{
	const struct ynode *sel = yn_path(r, "spec.podSelector.matchLabels");
	if (!yn_len(sel))
		sb_adds(o, "<none>");
	join_map(sel, o);
}

static void c_policytypes(const struct ynode *r, struct sbuf *o)
{
	const struct ynode *t = yn_path(r, "spec.policyTypes");
	for (size_t i = 0; i < yn_len(t); i++)
		sb_addf(o, "%s%s", i ? "," : "", yn_str(yn_at(t, i)) ? yn_str(yn_at(t, i)) : "");
}

static void c_address(const struct ynode *r, struct sbuf *o)
{
	const char *a = yn_str(yn_get(yn_path(r, "metadata.annotations"), "gitops.io/ssh"));
	sb_adds(o, a ? a : "<none>");
}

static void c_reference(const struct ynode *r, struct sbuf *o)
{
	const char *k = yn_str(yn_path(r, "spec.scaleTargetRef.kind"));
	const char *n = yn_str(yn_path(r, "spec.scaleTargetRef.name"));
	sb_addf(o, "%s/%s", k ? k : "", n ? n : "");
}

static void c_access(const struct ynode *r, struct sbuf *o)
{
	const struct ynode *m = yn_path(r, "spec.accessModes");
	static const char *const abbrev[][2] = { { "ReadWriteOnce", "RWO" }, { "ReadOnlyMany", "ROX" },
		{ "ReadWriteMany", "RWX" }, { "ReadWriteOncePod", "RWOP" } };
	for (size_t i = 0; i < yn_len(m); i++) {
		const char *s = yn_str(yn_at(m, i)) ? yn_str(yn_at(m, i)) : "";
		for (size_t j = 0; j < ARRAY_SIZE(abbrev); j++)
			if (!strcmp(s, abbrev[j][0]))
				s = abbrev[j][1];
		sb_addf(o, "%s%s", i ? "," : "", s);
	}
}

static void c_capacity(const struct ynode *r, struct sbuf *o) { scalar_at(r, "spec.resources.requests.storage", "", o); }

#define WORKLOAD_WIDE { "CONTAINERS", c_containers, true }, { "IMAGES", c_images, true }, \
	{ "SELECTOR", c_selector, true }

struct kind_columns {
	const char *kind;
	struct column cols[8];
};

static const struct kind_columns table[] = {
	{ "Deployment", { { "REPLICAS", c_replicas, false }, { "STRATEGY", c_strategy, false }, WORKLOAD_WIDE } },
	{ "ReplicaSet", { { "REPLICAS", c_replicas, false }, WORKLOAD_WIDE } },
	{ "StatefulSet", { { "REPLICAS", c_replicas, false }, WORKLOAD_WIDE } },
	{ "DaemonSet", { { "NODE SELECTOR", c_nodeselector, false }, WORKLOAD_WIDE } },
	{ "Job", { { "COMPLETIONS", c_completions, false }, { "PARALLELISM", c_parallelism, false },
		   { "CONTAINERS", c_containers, true }, { "IMAGES", c_images, true } } },
	{ "CronJob", { { "SCHEDULE", c_schedule, false }, { "SUSPEND", c_suspend, false },
		       { "CONTAINERS", c_containers, true }, { "IMAGES", c_images, true } } },
	{ "Pod", { { "CONTAINERS", c_containers, false }, { "IMAGES", c_images, true }, { "NODE", c_node, true } } },
	{ "Service", { { "TYPE", c_svctype, false }, { "CLUSTER-IP", c_clusterip, false },
		       { "EXTERNAL-IP", c_externalip, false }, { "PORT(S)", c_ports, false },
		       { "SELECTOR", c_selector, true } } },
	{ "ConfigMap", { { "DATA", c_data, false } } },
	{ "Secret", { { "TYPE", c_sectype, false }, { "DATA", c_data, false } } },
	{ "NetworkPolicy", { { "POD-SELECTOR", c_podselector, false }, { "POLICY-TYPES", c_policytypes, true } } },
	{ "Node", { { "SSH", c_address, false }, { "POD-CIDR", c_podcidr, true } } },
	{ "HorizontalPodAutoscaler", { { "REFERENCE", c_reference, false }, { "MINPODS", c_minpods, false },
				       { "MAXPODS", c_maxpods, false } } },
	{ "PriorityClass", { { "VALUE", c_pcvalue, false }, { "GLOBAL-DEFAULT", c_globaldefault, false } } },
	{ "PersistentVolumeClaim", { { "ACCESS MODES", c_access, false }, { "CAPACITY", c_capacity, false } } },
};

static const struct column *columns_for(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (!strcmp(table[i].kind, kind))
			return table[i].cols;
	static const struct column none[1];
	return none;
}

/* ---- selection ---- */

static int parse_kinds(struct cli_args *a, struct query *q)
{
	char *spec = xstrdup(a->argv[0]);
	char *slash = strchr(spec, '/');
	if (slash) {
		*slash = '\0';
		if (a->argc > 1) {
			free(spec);
			return cli_usage_error(a, "there is no need to specify a resource type as a separate "
						  "argument when passing arguments in resource/name form");
		}
		q->name = a->argv[0] + (slash - spec) + 1;
	}
	int r = 0;
	for (char *tok = strtok(spec, ","); tok && !r; tok = strtok(NULL, ",")) {
		const struct api_kind *k = api_kind_lookup(tok);
		if (!k)
			r = cli_usage_error(a, "the server doesn't have a resource type \"%s\"", tok);
		else if (q->nkinds < ARRAY_SIZE(q->kinds))
			q->kinds[q->nkinds++] = k;
	}
	free(spec);
	return r;
}

static bool label_lookup_ok(const struct query *q, const struct api_object *o)
{
	return api_selector_matches_node(&q->sel, yn_path(o->root, "metadata.labels"));
}

static bool selected(const struct query *q, const struct api_object *o)
{
	if (o->invalid)
		return false;
	bool kind_ok = false;
	for (size_t i = 0; i < q->nkinds; i++)
		kind_ok |= !strcmp(q->kinds[i]->kind, o->kind->kind);
	if (!kind_ok)
		return false;
	if (q->name && strcmp(q->name, o->name))
		return false;
	if (q->ns && o->kind->namespaced && strcmp(q->ns, o->ns))
		return false;
	return label_lookup_ok(q, o);
}

static int cmp_obj(const void *x, const void *y)
{
	const struct api_object *a = *(const struct api_object *const *)x;
	const struct api_object *b = *(const struct api_object *const *)y;
	int c = strcmp(a->kind->kind, b->kind->kind);
	if (!c)
		c = strcmp(a->ns, b->ns);
	return c ? c : strcmp(a->name, b->name);
}

/* ---- printing ---- */

static void lower_plural(const struct api_kind *k, struct sbuf *out)
{
	sb_adds(out, k->plural);
	if (*k->group)
		sb_addf(out, ".%s", k->group);
}

static void print_table(struct api_object **objs, size_t n, bool wide, bool all_ns, bool multi_kind)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && objs[j]->kind == objs[i]->kind)
			j++;
		const struct column *cols = columns_for(objs[i]->kind->kind);
		size_t ncols = 0;
		while (ncols < 8 && cols[ncols].header)
			ncols++;
		size_t total = 2 + ncols + (wide ? 1 : 0), rows = j - i + 1;
		struct sbuf *cells = xcalloc(total * rows, sizeof(*cells));
		size_t c = 0;
		if (all_ns)
			sb_adds(&cells[c++], "NAMESPACE");
		sb_adds(&cells[c++], "NAME");
		for (size_t k = 0; k < ncols; k++)
			if (!cols[k].wide || wide)
				sb_adds(&cells[c++], cols[k].header);
		if (wide)
			sb_adds(&cells[c++], "SOURCE");
		size_t width = c;
		for (size_t r = i; r < j; r++) {
			struct sbuf *row = &cells[(r - i + 1) * total];
			const struct api_object *o = objs[r];
			c = 0;
			if (all_ns)
				sb_adds(&row[c++], *o->ns ? o->ns : "");
			if (multi_kind) {
				lower_plural(o->kind, &row[c]);
				sb_addc(&row[c], '/');
			}
			sb_adds(&row[c++], o->name);
			for (size_t k = 0; k < ncols; k++)
				if (!cols[k].wide || wide)
					cols[k].cell(o->root, &row[c++]);
			if (wide)
				sb_addf(&row[c++], "%s:%u", o->file, o->line);
		}
		size_t *w = xcalloc(width, sizeof(*w));
		for (size_t r = 0; r < rows; r++)
			for (size_t k = 0; k < width; k++)
				if (cells[r * total + k].len > w[k])
					w[k] = cells[r * total + k].len;
		for (size_t r = 0; r < rows; r++) {
			for (size_t k = 0; k < width; k++) {
				const struct sbuf *s = &cells[r * total + k];
				if (k + 1 < width)
					printf("%-*s   ", (int)w[k], s->buf);
				else
					printf("%s", s->buf);
			}
			putchar('\n');
		}
		for (size_t r = 0; r < total * rows; r++)
			sb_release(&cells[r]);
		free(cells);
		free(w);
		if (j < n)
			putchar('\n');
		i = j;
	}
}

static void print_objects(struct api_object **objs, size_t n, const char *fmt)
{
	if (!strcmp(fmt, "name")) {
		struct sbuf s = SBUF_INIT;
		for (size_t i = 0; i < n; i++) {
			sb_reset(&s);
			sb_adds(&s, objs[i]->kind->kind);
			for (char *p = s.buf; *p; p++)
				*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			if (*objs[i]->kind->group)
				sb_addf(&s, ".%s", objs[i]->kind->group);
			printf("%s/%s\n", s.buf, objs[i]->name);
		}
		sb_release(&s);
	} else if (!strcmp(fmt, "yaml")) {
		struct sbuf s = SBUF_INIT;
		for (size_t i = 0; i < n; i++) {
			if (i)
				sb_adds(&s, "---\n");
			api_emit_yaml(objs[i]->root, &s);
		}
		fputs(s.buf, stdout);
		sb_release(&s);
	} else {
		json_t *doc;
		if (n == 1) {
			doc = api_to_json(objs[0]->root);
		} else {
			json_t *items = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(items, api_to_json(objs[i]->root));
			doc = json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "List", "items", items);
		}
		char *s = json_dumps(doc, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		puts(s);
		free(s);
		json_decref(doc);
	}
}

static int not_found(struct query *q, bool all_ns)
{
	if (q->name) {
		struct sbuf s = SBUF_INIT;
		lower_plural(q->kinds[0], &s);
		fprintf(stderr, "gitops: %s \"%s\" not found", s.buf, q->name);
		if (q->kinds[0]->namespaced && !all_ns)
			fprintf(stderr, " in namespace \"%s\"", q->ns);
		fputc('\n', stderr);
		sb_release(&s);
		return 1;
	}
	if (all_ns || !q->kinds[0]->namespaced)
		fprintf(stderr, "No resources found\n");
	else
		fprintf(stderr, "No resources found in %s namespace.\n", q->ns);
	return 0;
}

static bool has_nodes(const struct api_set *set)
{
	for (size_t i = 0; i < set->nobjs; i++)
		if (!set->objs[i].invalid && !strcmp(set->objs[i].kind->kind, "Node"))
			return true;
	return false;
}

/* The desired kinds of q (today's `get`); *found counts what matched. */
static void get_desired(struct query *q, struct api_set *set, const char *fmt, bool all_ns, bool multi, size_t *found)
{
	struct api_object **sel = xcalloc(set->nobjs + 1, sizeof(*sel));
	size_t n = 0;
	for (size_t i = 0; i < set->nobjs; i++)
		if (selected(q, &set->objs[i]))
			sel[n++] = &set->objs[i];
	qsort(sel, n, sizeof(*sel), cmp_obj);
	if (n && (!*fmt || !strcmp(fmt, "wide")))
		print_table(sel, n, !strcmp(fmt, "wide"), all_ns, multi);
	else if (n)
		print_objects(sel, n, fmt);
	*found = n;
	free(sel);
}

int cmd_get(struct cli_args *a)
{
	if (a->argc < 1)
		return cli_usage_error(a, "you must specify the type of resource to get");
	const char *fmt = cli_str(a, "output") ? cli_str(a, "output") : "";
	if (*fmt && strcmp(fmt, "wide") && strcmp(fmt, "yaml") && strcmp(fmt, "json") && strcmp(fmt, "name"))
		return cli_usage_error(a, "unable to match a printer suitable for the output format \"%s\", "
					  "allowed formats are: json,name,wide,yaml", fmt);
	struct query q = { .ns = cli_str(a, "namespace") ? cli_str(a, "namespace") : "default" };
	bool all_ns = cli_flag(a, "all-namespaces");
	if (all_ns)
		q.ns = NULL;
	int r = parse_kinds(a, &q);
	if (r)
		return r;
	if (!q.name && a->argc > 1)
		q.name = a->argv[1];
	struct gerr *err = NULL;
	if (api_selector_parse(cli_str(a, "selector") ? cli_str(a, "selector") : "", &q.sel, &err) < 0)
		return cli_fail(err);
	struct api_set set;
	api_set_init(&set);
	if (a->argc > (q.name && !strchr(a->argv[0], '/') ? 2 : 1)) {
		api_selector_release(&q.sel);
		api_set_release(&set);
		return cli_usage_error(a, "too many arguments (files are read with -f FILE)");
	}
	r = cli_load(a, a->argc, &set, NULL);
	if (r == 0 && set.nerrors) {
		fprintf(stderr, "gitops: %zu error%s in the manifests (see 'gitops validate'); invalid objects are not shown\n",
			set.nerrors, set.nerrors == 1 ? "" : "s");
	}
	if (r == 0) {
		/* pods, deployments, replicasets, nodes, services and endpoints of a cluster
		 * come from its nodes */
		bool live = !cli_flag(a, "desired") && !*cli_list(a, "filename") && has_nodes(&set);
		size_t found = 0;
		struct query dq = q, lq = q;
		dq.nkinds = lq.nkinds = 0;
		for (size_t i = 0; i < q.nkinds; i++) {
			if (live && live_kind(q.kinds[i]->kind))
				lq.kinds[lq.nkinds++] = q.kinds[i];
			else
				dq.kinds[dq.nkinds++] = q.kinds[i];
		}
		if (dq.nkinds)
			get_desired(&dq, &set, fmt, all_ns, q.nkinds > 1, &found);
		if (lq.nkinds)
			r = get_live(a, &set, &lq, fmt, all_ns, q.nkinds > 1, &found);
		if (r == 0 && found == 0)
			r = not_found(&q, all_ns);
		if (set.nerrors && r == 0)
			r = 1;
	}
	api_selector_release(&q.sel);
	api_set_release(&set);
	return r;
}
