/* events.c: `gitops events` — the nodes' journal records as kubectl-like events
 * (LAST SEEN, NODE, TYPE, REASON, OBJECT, MESSAGE) — and describe's Events section. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "runtime/runtime.h"
#include "store/store.h"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *jget(const json_t *o, const char *a, const char *b)
{
	return json_object_get(json_object_get(o, a), b);
}

/* ---- the nodes' journal records ---- */

static int cmp_record(const void *x, const void *y)
{
	const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
	json_int_t ta = json_integer_value(json_object_get(a, "timeNs")), tb = json_integer_value(json_object_get(b, "timeNs"));
	if (ta != tb)
		return ta < tb ? -1 : 1;
	int c = strcmp(jstr(a, "node") ?: "", jstr(b, "node") ?: "");
	if (c)
		return c;
	json_int_t sa = json_integer_value(json_object_get(a, "seq")), sb = json_integer_value(json_object_get(b, "seq"));
	return sa < sb ? -1 : sa > sb;
}

static void take_records(const struct ssh_job *j, json_t *out)
{
	json_t *st = j->status == 0 ? json_loadb(j->out.buf, j->out.len, 0, NULL) : NULL;
	size_t i;
	json_t *r;
	if (!st)
		fprintf(stderr, "gitops: node %s: cannot read its journal: %s\n", j->name,
			j->error ? j->error : "the answer is not JSON");
	json_array_foreach(jget(st, "journal", "records"), i, r) {
		if (json_is_true(json_object_get(r, "snapshot")))
			continue;
		json_t *e = json_pack("{s:s, s:O?, s:O?, s:O?, s:O?}", "node", j->name, "seq", json_object_get(r, "seq"),
				      "timeNs", json_object_get(r, "timeNs"), "type", json_object_get(r, "type"),
				      "body", json_object_get(r, "body"));
		if (e)
			json_array_append_new(out, e);
	}
	json_decref(st);
}

int live_records(struct live *l, int64_t since, json_t **ret)
{
	size_t n = json_array_size(l->res.nodes), nj = 0, i;
	struct ssh_job *jobs = xcalloc(n + 1, sizeof(*jobs));
	char *seq = xasprintf("%lld", (long long)since);
	const char *const remote[] = { "gitops", "node", "status", "-o", "json", "--since", seq, NULL };
	json_t *node;
	json_array_foreach(l->res.nodes, i, node)
		if (json_is_true(json_object_get(node, "ok")))
			jobs[nj++] = (struct ssh_job){ .name = jstr(node, "name"), .dest = live_dest(l, jstr(node, "name")),
						       .remote = remote };
	char *control = xasprintf("%s/ssh", l->ctl.state);
	struct ssh_opts so = { .ssh_config = l->ctl.o.ssh_config, .control_dir = control,
			       .parallel = l->ctl.o.parallel, .timeout_ms = l->ctl.o.timeout_ms,
			       .accept_new = l->ctl.o.accept_new };
	struct gerr *err = NULL;
	int r = ssh_run_all(&so, jobs, nj, &err) < 0 ? cli_fail(err) : 0;
	*ret = json_array();
	for (size_t k = 0; k < nj; k++) {
		if (r == 0)
			take_records(&jobs[k], *ret);
		ssh_job_release(&jobs[k]);
	}
	live_sort(*ret, cmp_record);
	free(jobs);
	free(control);
	free(seq);
	return r;
}

/* ---- records → events ---- */

static void add_uid(json_t *map, const json_t *uid, const char *ns, const char *name, const char *owner)
{
	if (json_is_string(uid) && !json_object_get(map, json_string_value(uid)))
		json_object_set_new(map, json_string_value(uid), json_pack("{s:s, s:s, s:s?}", "namespace", ns ? ns : "",
									  "name", name ? name : "", "owner", owner));
}

/* uid → {namespace, name, owner} from the pods the nodes report, the pod lists of
 * the cluster state (unreachable nodes) and pod.created/pod.deleted records (pods gone). */
static json_t *uid_map(const struct live *l, const json_t *records)
{
	json_t *map = json_object(), *p, *v;
	const char *key;
	size_t i;
	json_array_foreach(l->pods, i, p) {
		const json_t *m = json_object_get(p, "metadata");
		add_uid(map, json_object_get(m, "uid"), jstr(m, "namespace"), jstr(m, "name"),
			jstr(json_object_get(m, "annotations"), "gitops.io/owner"));
	}
	json_object_foreach(l->res.cluster, key, v)
		if (str_has_prefix(key, "pods/"))
			json_array_foreach((json_t *)cluster_get(l->res.cluster, key), i, p)
				add_uid(map, json_object_get(p, "uid"), jstr(p, "namespace"), jstr(p, "name"),
					jstr(json_object_get(p, "annotations"), "gitops.io/owner"));
	json_array_foreach(records, i, p) {
		const json_t *b = json_object_get(p, "body");
		if (!strcmp(jstr(p, "type") ?: "", "pod.created") || !strcmp(jstr(p, "type") ?: "", "pod.deleted"))
			add_uid(map, json_object_get(b, "uid"), jstr(b, "namespace"), jstr(b, "name"), NULL);
	}
	return map;
}

static const char *probe_name(const char *p)
{
	return !strcmp(p, "liveness") ? "Liveness" : !strcmp(p, "startup") ? "Startup" : "Readiness";
}

static bool container_event(const char *type, const json_t *b, const char **ret_type, const char **ret_reason,
			    struct sbuf *msg)
{
	const char *c = jstr(b, "container") ?: "";
	json_int_t code = json_integer_value(json_object_get(b, "exitCode"));
	if (!strcmp(type, "container.started")) {
		*ret_reason = "Started";
		sb_addf(msg, "Started container %s", c);
	} else if (!strcmp(type, "container.exited") && !strcmp(jstr(b, "reason") ?: "", "OOMKilled")) {
		*ret_type = "Warning";
		*ret_reason = "OOMKilled";
		sb_addf(msg, "Container %s ran out of memory and was killed (exit code %lld)", c, (long long)code);
	} else if (!strcmp(type, "container.exited")) {
		*ret_type = code ? "Warning" : "Normal";
		*ret_reason = code ? "Exited" : "Completed";
		sb_addf(msg, "Container %s exited with code %lld%s%s%s", c, (long long)code, code ? " (" : "",
			code ? jstr(b, "reason") ?: "Error" : "", code ? ")" : "");
	} else if (!strcmp(type, "container.backoff")) {
		*ret_type = "Warning";
		*ret_reason = "BackOff";
		sb_addf(msg, "Back-off %llds restarting failed container %s",
			(long long)json_integer_value(json_object_get(b, "seconds")), c);
	} else if (!strcmp(type, "probe.changed") && !strcmp(jstr(b, "result") ?: "", "failure")) {
		*ret_type = "Warning";
		*ret_reason = "Unhealthy";
		sb_addf(msg, "%s probe failed: %s", probe_name(jstr(b, "probe") ?: ""), jstr(b, "message") ?: "");
	} else {
		return false;
	}
	return true;
}

/* Type, reason and message of a record; false for records that are no event. */
static bool event_text(const char *type, const json_t *b, const char *node, const json_t *who,
		       const char **ret_type, const char **ret_reason, struct sbuf *msg)
{
	*ret_type = "Normal";
	if (!strcmp(type, "pod.created")) {
		*ret_reason = "Scheduled";
		sb_addf(msg, "Successfully assigned %s/%s to %s", jstr(who, "namespace"), jstr(who, "name"), node);
	} else if (!strcmp(type, "pod.deleted")) {
		*ret_reason = "Killing";
		sb_addf(msg, "Stopped the pod and removed it from %s", node);
	} else if (!strcmp(type, "image.pulled")) {
		*ret_reason = "Pulled";
		sb_addf(msg, "Successfully pulled image \"%s\"", jstr(b, "image") ?: "");
	} else if (!strcmp(type, "image.failed")) {
		*ret_type = "Warning";
		*ret_reason = "Failed";
		sb_addf(msg, "Failed to pull image \"%s\": %s", jstr(b, "image") ?: "", jstr(b, "message") ?: "");
	} else if (!strcmp(type, "plan.applied")) {
		*ret_reason = "PlanApplied";
		sb_addf(msg, "Applied a plan of %lld pods", (long long)json_integer_value(json_object_get(b, "pods")));
	} else {
		return container_event(type, b, ret_type, ret_reason, msg);
	}
	return true;
}

json_t *events_of(const struct live *l, const json_t *records)
{
	json_t *uids = uid_map(l, records), *out = json_array(), *r;
	struct sbuf msg = SBUF_INIT, obj = SBUF_INIT;
	size_t i;
	json_array_foreach(records, i, r) {
		const json_t *b = json_object_get(r, "body");
		const char *uid = jstr(b, "uid"), *node = jstr(r, "node"), *type, *reason;
		const json_t *who = uid ? json_object_get(uids, uid) : NULL;
		sb_reset(&msg);
		sb_reset(&obj);
		if (!event_text(jstr(r, "type") ?: "", b, node, who, &type, &reason, &msg))
			continue;
		const char *ns = uid ? jstr(who, "namespace") ?: "" : "default";
		const char *name = uid ? jstr(who, "name") ?: uid : node;
		sb_addf(&obj, "%s/%s", uid ? "pod" : "node", name);
		json_array_append_new(out, json_pack("{s:O, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}", "timeNs",
						     json_object_get(r, "timeNs"), "node", node, "namespace", ns,
						     "object", obj.buf, "name", name, "uid", uid, "owner",
						     jstr(who, "owner"), "type", type, "reason", reason, "message", msg.buf));
	}
	sb_release(&msg);
	sb_release(&obj);
	json_decref(uids);
	return out;
}

static void event_age(const struct live *l, const json_t *e, struct sbuf *out)
{
	live_age(l->now - json_integer_value(json_object_get(e, "timeNs")) / 1000000000, out);
}

void events_describe(const struct live *l, const json_t *events, events_keep_fn keep, const void *arg)
{
	struct live_table t;
	struct sbuf age = SBUF_INIT;
	size_t i;
	json_t *e;
	live_table_init(&t, 5);
	live_cell(&t, "Type");
	live_cell(&t, "Reason");
	live_cell(&t, "Age");
	live_cell(&t, "From");
	live_cell(&t, "Message");
	for (i = 0; i < 5; i++)
		live_cell(&t, "%s", (const char *[]){ "----", "------", "----", "----", "-------" }[i]);
	json_array_foreach(events, i, e) {
		if (keep && !keep(l, e, arg))
			continue;
		sb_reset(&age);
		event_age(l, e, &age);
		live_cell(&t, "%s", jstr(e, "type"));
		live_cell(&t, "%s", jstr(e, "reason"));
		live_cell(&t, "%s", age.buf);
		live_cell(&t, "%s", jstr(e, "node"));
		live_cell(&t, "%s", jstr(e, "message"));
	}
	if (t.cells.n == 10) {
		printf("Events:  <none>\n");
		strvec_clear(&t.cells);
	} else {
		printf("Events:\n");
		live_table_print(&t, "  ", 2);
	}
	sb_release(&age);
}

/* ---- gitops events ---- */

static void print_events(const struct live *l, const json_t *events, const char *ns)
{
	struct live_table t;
	struct sbuf age = SBUF_INIT;
	size_t i, n = 0;
	json_t *e;
	live_table_init(&t, ns ? 6 : 7);
	if (!ns)
		live_cell(&t, "NAMESPACE");
	for (i = 0; i < 6; i++)
		live_cell(&t, "%s", (const char *[]){ "LAST SEEN", "NODE", "TYPE", "REASON", "OBJECT", "MESSAGE" }[i]);
	json_array_foreach(events, i, e) {
		if (ns && strcmp(ns, jstr(e, "namespace")))
			continue;
		n++;
		sb_reset(&age);
		event_age(l, e, &age);
		if (!ns)
			live_cell(&t, "%s", jstr(e, "namespace"));
		live_cell(&t, "%s", age.buf);
		live_cell(&t, "%s", jstr(e, "node"));
		live_cell(&t, "%s", jstr(e, "type"));
		live_cell(&t, "%s", jstr(e, "reason"));
		live_cell(&t, "%s", jstr(e, "object"));
		live_cell(&t, "%s", jstr(e, "message"));
	}
	if (n)
		live_table_print(&t, "", 3);
	else
		strvec_clear(&t.cells);
	if (!n && ns)
		fprintf(stderr, "No events found in %s namespace.\n", ns);
	else if (!n)
		fprintf(stderr, "No events found.\n");
	sb_release(&age);
}

int cmd_events(struct cli_args *a)
{
	int64_t since = 0;
	if (a->argc)
		return cli_usage_error(a, "events takes no arguments");
	if (cli_str(a, "since") && parse_i64(cli_str(a, "since"), 0, INT64_MAX, &since) < 0)
		return cli_usage_error(a, "--since takes a sequence number");
	const char *ns = cli_flag(a, "all-namespaces") ? NULL : cli_str(a, "namespace") ? cli_str(a, "namespace") : "default";
	struct api_set set;
	struct live l;
	json_t *records = NULL;
	memset(&l, 0, sizeof(l));
	int r = live_load(a, &set);
	if (r == 0)
		r = live_open(a, &set, &l);
	if (r == 0)
		r = live_records(&l, since, &records);
	if (r == 0) {
		json_t *events = events_of(&l, records);
		print_events(&l, events, ns);
		json_decref(events);
	}
	json_decref(records);
	live_close(&l);
	api_set_release(&set);
	return r;
}
