/* status.c: `gitops status` — the cluster at a glance: last synced commit, nodes,
 * workloads and their rollouts, pins and paused rollouts, from the nodes' state. */
#include "cli/cli.h"

#include <string.h>

#include "api/api.h"
#include "store/store.h"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long jint(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static void last_sync(const struct live *l)
{
	const json_t *s = cluster_get(l->res.cluster, "sync");
	if (jstr(s, "commit") && *jstr(s, "commit"))
		printf("Last sync:  %.7s %s\n", jstr(s, "commit"), jstr(s, "subject") ?: "");
	else
		printf("Last sync:  <none>\n");
}

/* Ready, NotReady (unreachable past the grace period) or Unknown; false unless Ready. */
static bool nodes(const struct live *l)
{
	struct live_table t;
	struct sbuf err = SBUF_INIT;
	size_t i;
	json_t *n;
	bool ok = true;
	live_table_init(&t, 5);
	for (i = 0; i < 5; i++)
		live_cell(&t, "%s", (const char *[]){ "NAME", "STATUS", "PODS", "VERSION", "LAST ERROR" }[i]);
	json_array_foreach(l->res.nodes, i, n) {
		const char *name = jstr(n, "name");
		const json_t *st;
		bool ready = json_is_true(json_object_get(n, "ok"));
		size_t k, pods = 0;
		json_t *p;
		live_node(l, name, &st);
		json_array_foreach(l->pods, k, p)
			pods += !strcmp(jstr(json_object_get(p, "spec"), "nodeName") ?: "", name);
		char *key = xasprintf("unreachable/%s", name);
		const json_t *since = cluster_get(l->res.cluster, key);
		free(key);
		sb_reset(&err);
		if (!ready && json_is_integer(since)) {
			sb_adds(&err, "unreachable for ");
			live_age(l->now - json_integer_value(since), &err);
			sb_adds(&err, ": ");
		}
		sb_adds(&err, ready ? "<none>" : jstr(n, "error") ?: "unreachable");
		ok &= ready;
		live_cell(&t, "%s", name);
		live_cell(&t, "%s", ready ? "Ready" : json_is_true(json_object_get(n, "notReady")) ? "NotReady" : "Unknown");
		live_cell(&t, "%zu", pods);
		live_cell(&t, "%s", jstr(st, "version") ?: "<unknown>");
		live_cell(&t, "%s", err.buf);
	}
	printf("Nodes:\n");
	live_table_print(&t, "  ", 3);
	sb_release(&err);
	return ok;
}

static const json_t *state(const struct live *l, const char *prefix, const char *ns, const char *name)
{
	char *key = xasprintf("%s/%s/%s", prefix, ns, name);
	const json_t *v = cluster_get(l->res.cluster, key);
	free(key);
	return v;
}

/* Every Deployment: READY, UP-TO-DATE, AVAILABLE, REVISION, ROLLOUT; false when a
 * rollout failed. */
static bool workloads(const struct live *l)
{
	json_t *ds = live_deployments(l), *d;
	struct live_table t;
	size_t i;
	bool ok = true;
	live_table_init(&t, 7);
	for (i = 0; i < 7; i++)
		live_cell(&t, "%s", (const char *[]){ "NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION",
						      "ROLLOUT" }[i]);
	json_array_foreach(ds, i, d) {
		const json_t *m = json_object_get(d, "metadata"), *st = json_object_get(d, "status");
		const char *ns = jstr(m, "namespace"), *name = jstr(m, "name");
		const json_t *ro = live_rollout(l, ns, name);
		bool failed = json_is_true(json_object_get(ro, "deadlineExceeded"));
		ok &= !failed;
		live_cell(&t, "%s", ns);
		live_cell(&t, "%s", name);
		live_cell(&t, "%lld/%lld", jint(st, "readyReplicas"), jint(json_object_get(d, "spec"), "replicas"));
		live_cell(&t, "%lld", jint(st, "updatedReplicas"));
		live_cell(&t, "%lld", jint(st, "availableReplicas"));
		live_cell(&t, "%lld", jint(ro, "revision"));
		live_cell(&t, "%s%s", failed ? "failed (ProgressDeadlineExceeded)"
				      : json_is_true(json_object_get(ro, "complete")) ? "complete" : "progressing",
			  json_is_true(state(l, "paused", ns, name)) ? ", paused" : "");
	}
	if (json_array_size(ds)) {
		printf("Workloads:\n");
		live_table_print(&t, "  ", 3);
	} else {
		printf("Workloads:  <none>\n");
		strvec_clear(&t.cells);
	}
	json_decref(ds);
	return ok;
}

/* "pin/NS/NAME" ({revision, ...}) and "paused/NS/NAME" keys of the cluster state. */
static void pins(const struct live *l, const char *prefix, const char *title)
{
	const char *key;
	json_t *e;
	size_t n = 0;
	json_object_foreach(l->res.cluster, key, e) {
		const json_t *v = cluster_get(l->res.cluster, key);
		if (!v || !str_has_prefix(key, prefix) || json_is_false(v))
			continue;
		if (!n++)
			printf("%s:\n", title);
		if (json_is_object(v))
			printf("  %s   revision %lld (rollout undo; released when git changes the template)\n",
			       key + strlen(prefix), jint(v, "revision"));
		else
			printf("  %s\n", key + strlen(prefix));
	}
	if (!n)
		printf("%s:%*s<none>\n", title, (int)(11 - strlen(title)), "");
}

int cmd_status(struct cli_args *a)
{
	if (a->argc)
		return cli_usage_error(a, "status takes no arguments");
	struct api_set set;
	struct live l;
	memset(&l, 0, sizeof(l));
	int r = live_load(a, &set);
	if (r == 0)
		r = live_open(a, &set, &l);
	if (r == 0) {
		last_sync(&l);
		bool ok = nodes(&l);
		ok &= workloads(&l);
		pins(&l, "pin/", "Pins");
		pins(&l, "paused/", "Paused");
		r = ok ? 0 : 1;
	}
	live_close(&l);
	api_set_release(&set);
	return r;
}
