/* pass.c: one reconcile pass — read every node's status over SSH, rebuild the
 * cluster state from them, run the controllers, and send each node whose pods or
 * state differ its plan: its pods whole, the cluster state and the network as what
 * changed since the versions it reported, when the cache has those. */
#include "reconcile/internal.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const apply_cmd[] = { "gitops", "node", "apply", "-o", "json", NULL };

static struct ssh_opts ssh_of(const struct rc_opts *o, char **ret_control)
{
	*ret_control = xasprintf("%s/ssh", o->state_dir);
	struct ssh_opts s = {
		.ssh_config = o->ssh_config, .control_dir = *ret_control,
		.parallel = o->parallel > 0 ? o->parallel : 32,
		.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000,
		.accept_new = o->accept_new,
	};
	return s;
}

static char *job_error(const struct ssh_job *j)
{
	if (j->error)
		return xstrdup(j->error);
	const char *e = j->err.len ? j->err.buf : j->out.buf;
	size_t len = strcspn(e, "\n");
	return len ? xstrndup(e, len) : xasprintf("exit status %d", j->status);
}

/* The cluster state as of the last pass, cached under the controller's state
 * directory: nodes holding the same version leave it out of their status. Only a
 * cache — without it (or when it is stale) nodes send the state itself. */
static json_t *load_cache(const char *state, char **ret_hash)
{
	char *path = xasprintf("%s/cluster-cache.json", state);
	json_t *c = json_load_file(path, 0, NULL);
	free(path);
	*ret_hash = json_is_object(c) ? api_cluster_digest(c) : NULL;
	return c;
}

static void save_cache(const char *state, const json_t *cluster)
{
	char *path = xasprintf("%s/cluster-cache.json", state);
	char *text = json_dumps(cluster, JSON_COMPACT);
	if (text)
		write_file_atomic(path, text, strlen(text), 0600, NULL);
	free(text);
	free(path);
}

/* The cluster state from the cached one, for the plans of the nodes that have that:
 * {"base": its hash, "set": the entries that differ, "was": the cache's (or null)};
 * NULL when more than 256 and more than a quarter differ (the whole is cheaper then). */
static json_t *cluster_delta(const json_t *cache, const char *hash, const json_t *cluster)
{
	if (!cache || !hash)
		return NULL;
	json_t *set = json_object(), *was = json_object(), *entry;
	const char *key;
	json_object_foreach((json_t *)cluster, key, entry) {
		const json_t *had = json_object_get(cache, key);
		if (!had || !json_equal(had, entry)) {
			json_object_set(set, key, entry);
			json_object_set(was, key, had ? (json_t *)had : json_null());
		}
	}
	if (json_object_size(set) > 256 && json_object_size(set) > json_object_size(cluster) / 4) {
		json_decref(set);
		json_decref(was);
		return NULL;
	}
	return json_pack("{s:s, s:o, s:o}", "base", hash, "set", set, "was", was);
}

/* The status a job brought: parsed, or NULL with *ret_error. */
static json_t *status_of(const struct ssh_job *j, char **ret_error)
{
	json_t *st = j->status == 0 ? json_loadb(j->out.buf, j->out.len, 0, NULL) : NULL;
	if (!st) {
		*ret_error = j->status == 0 ? xstrdup("node status is not JSON") : job_error(j);
		return NULL;
	}
	json_int_t proto = json_integer_value(json_object_get(st, "protocol"));
	if (proto != 1) {
		*ret_error = xasprintf("node speaks protocol %lld; this controller speaks 1 (%s)", (long long)proto,
				       json_string_value(json_object_get(st, "version")) ?: "unknown version");
		json_decref(st);
		return NULL;
	}
	return st;
}

/* Read every node's status, parsing each as it arrives (while the others are still
 * on their way); then merge the cluster state they carry, in node order (a node that
 * has the cached version leaves it out: it gets the cache). */
static int read_statuses(struct rc_world *w, const struct ssh_opts *so, json_t *cache, const char *hash,
			 struct gerr **err)
{
	const char *cmd[] = { "gitops", "node", "status", "-o", "json", hash ? "--cluster-hash" : NULL, hash, NULL };
	struct ssh_job *jobs = xcalloc(w->nnodes + 1, sizeof(*jobs));
	json_t **st = xcalloc(w->nnodes + 1, sizeof(*st));
	char **why = xcalloc(w->nnodes + 1, sizeof(*why));
	struct ssh_batch *b = NULL;
	size_t k;
	for (size_t i = 0; i < w->nnodes; i++)
		jobs[i] = (struct ssh_job){ .name = w->nodes[i].name, .dest = w->nodes[i].ssh, .remote = cmd };
	int r = ssh_batch_start(so, jobs, w->nnodes, &b, err);
	while (r == 0 && (r = ssh_batch_next(b, &k, err)) > 0) {
		st[k] = status_of(&jobs[k], &why[k]);
		ssh_job_release(&jobs[k]); /* its output, now parsed */
		r = 0;
	}
	ssh_batch_free(b);
	bool cache_merged = false;
	for (size_t i = 0; i < w->nnodes; i++) {
		struct rc_node *n = &w->nodes[i];
		ssh_job_release(&jobs[i]);
		if (r < 0 || !st[i]) {
			n->error = why[i] ? why[i] : xstrdup("its status was not read");
			json_decref(st[i]);
			continue;
		}
		n->status = st[i];
		n->reachable = true;
		bool cached = !json_object_get(st[i], "cluster") && cache;
		n->cluster_cached = cached;
		if (cached)
			json_object_set(st[i], "cluster", cache); /* it has what we cached */
		/* merging is idempotent: the cache once is enough (66 KB at 20 nodes) */
		if (!cached || !cache_merged)
			cluster_merge(w->cluster, json_object_get(st[i], "cluster"));
		cache_merged |= cached;
	}
	free(jobs);
	free(st);
	free(why);
	return r;
}

/* The pods each node runs, kept in the cluster state for when it is unreachable:
 * with the IP and readiness the node reported, which its pods keep as endpoints
 * until it is NotReady (rc_world_observe). Readiness only for the pods that are
 * endpoints: another pod's flapping probe changes no plan. */
static void record_pod_lists(struct rc_world *w)
{
	json_t *seen = json_object(); /* uid → the node's status of it */
	json_t *served = rc_network_endpoint_uids(w);
	for (size_t i = 0; i < w->npods; i++)
		if (w->pods[i].status)
			json_object_set_new(seen, w->pods[i].uid, json_pack("{s:O?, s:b}", "ip",
					    json_object_get(w->pods[i].status, "podIP"), "ready",
					    w->pods[i].ready && json_object_get(served, w->pods[i].uid)));
	json_decref(served);
	for (size_t i = 0; i < w->nnodes; i++) {
		struct rc_node *n = &w->nodes[i];
		if (!n->reachable)
			continue;
		json_t *list = json_array();
		size_t k;
		json_t *p;
		json_array_foreach(n->plan_pods, k, p) {
			const json_t *st = json_object_get(seen, json_string_value(json_object_get(p, "uid")) ?: "");
			json_t *ip = json_object_get(st, "ip");
			json_array_append_new(list, json_pack("{s:O, s:O?, s:O?, s:O?, s:O?, s:O?, s:b}", "uid",
							      json_object_get(p, "uid"), "namespace", json_object_get(p, "namespace"),
							      "name", json_object_get(p, "name"), "labels", json_object_get(p, "labels"),
							      "annotations", json_object_get(p, "annotations"),
							      "ip", json_is_string(ip) ? ip : NULL,
							      "ready", json_is_true(json_object_get(st, "ready"))));
		}
		char *key = xasprintf("pods/%s", n->name);
		cluster_set(w->cluster, key, list);
		free(key);
	}
	json_decref(seen);
}

/* Count what the plan changes on a node: pods started and stopped, and whether
 * anything differs at all (pods, their plan hashes, the cluster state). */
static void change(struct rc_node *n, char sign, const json_t *pod)
{
	json_array_append_new(n->changes, json_sprintf("%c %s/%s", sign,
		json_string_value(json_object_get(pod, "namespace")) ?: "",
		json_string_value(json_object_get(pod, "name")) ?: ""));
}

/* cache_same: whether the cached cluster state (which the nodes that had it got in
 * read_statuses) equals the new one; compared once, not once per node. */
static bool node_changes(struct rc_world *w, struct rc_node *n, const json_t *cache, bool cache_same)
{
	const json_t *have = json_object_get(n->status, "pods");
	const json_t *cs = json_object_get(n->status, "cluster");
	size_t i, k;
	json_t *p, *q;
	bool differ = cs && cs == cache ? !cache_same : !json_equal(cs, w->cluster);
	json_array_foreach(n->plan_pods, i, p) {
		const json_t *match = NULL;
		json_array_foreach((json_t *)have, k, q)
			if (json_equal(json_object_get(p, "uid"), json_object_get(q, "uid")))
				match = q;
		if (!match) {
			n->started++;
			change(n, '+', p);
			differ = true;
		} else if (!json_is_true(json_object_get(p, "keep"))) {
			char *h = api_json_sha256(p);
			if (strcmp(h, json_string_value(json_object_get(match, "planHash")) ?: "")) {
				n->restarted++;
				change(n, '~', p);
				differ = true;
			}
			free(h);
		}
	}
	json_array_foreach((json_t *)have, k, q) {
		bool kept = false;
		json_array_foreach(n->plan_pods, i, p)
			kept |= json_equal(json_object_get(p, "uid"), json_object_get(q, "uid"));
		if (!kept) {
			n->stopped++;
			change(n, '-', q);
			differ = true;
		}
	}
	return differ;
}

static void apply_plans(struct rc_world *w, const struct ssh_opts *so, bool *dirty, struct gerr **err)
{
	struct ssh_job *jobs = xcalloc(w->nnodes + 1, sizeof(*jobs));
	char **texts = xcalloc(w->nnodes + 1, sizeof(*texts));
	size_t nj = 0;
	size_t *which = xcalloc(w->nnodes + 1, sizeof(*which));
	for (size_t i = 0; i < w->nnodes; i++) {
		if (!dirty[i])
			continue;
		json_t *plan = rc_plan_for(w, &w->nodes[i]);
		char *text = json_dumps(plan, JSON_COMPACT);
		json_decref(plan);
		if (!text) {
			w->nodes[i].apply_error = xstrdup("internal error: the plan cannot be encoded");
			continue;
		}
		texts[nj] = text;
		jobs[nj] = (struct ssh_job){ .name = w->nodes[i].name, .dest = w->nodes[i].ssh, .remote = apply_cmd,
					     .in = texts[nj], .in_len = strlen(texts[nj]) };
		which[nj++] = i;
	}
	/* an apply waits out the grace periods of the pods it stops: allow it more
	 * than a status read */
	struct ssh_opts ao = *so;
	ao.timeout_ms = so->timeout_ms + 60000;
	if (nj && ssh_run_all(&ao, jobs, nj, err) == 0) {
		for (size_t k = 0; k < nj; k++) {
			struct rc_node *n = &w->nodes[which[k]];
			json_t *st = jobs[k].status == 0 ? json_loadb(jobs[k].out.buf, jobs[k].out.len, 0, NULL) : NULL;
			if (st) {
				json_decref(n->status);
				n->status = st;
				n->applied = true;
			} else {
				n->apply_error = job_error(&jobs[k]);
			}
		}
	}
	for (size_t k = 0; k < nj; k++) {
		ssh_job_release(&jobs[k]);
		free(texts[k]);
	}
	free(jobs);
	free(texts);
	free(which);
}

static json_t *node_results(const struct rc_world *w)
{
	json_t *out = json_array();
	for (size_t i = 0; i < w->nnodes; i++) {
		const struct rc_node *n = &w->nodes[i];
		const char *err = n->error ? n->error : n->apply_error;
		json_array_append_new(out, json_pack("{s:s, s:b, s:s?, s:i, s:i, s:i, s:i, s:b, s:b, s:O}", "name", n->name,
						     "ok", !err, "error", err, "pods",
						     (int)json_array_size(n->plan_pods), "started", n->started,
						     "stopped", n->stopped, "restarted", n->restarted, "applied",
						     n->applied, "notReady", n->not_ready, "changes", n->changes));
	}
	return out;
}

int rc_pass(const struct rc_opts *o, struct api_set *desired, const char *commit, const char *subject,
	    struct rc_result *ret, struct gerr **err)
{
	memset(ret, 0, sizeof(*ret));
	struct rc_world w = {
		.desired = desired, .commit = commit, .subject = subject, .cluster = json_object(),
		.new_pods = json_array(), .now = (int64_t)time(NULL), .prune = o->prune,
	};
	char *control = NULL;
	struct ssh_opts so = ssh_of(o, &control);
	char *hash = NULL;
	json_t *cache = load_cache(o->state_dir, &hash);
	w.prev_net = rc_network_cache_load(o->state_dir);
	int r = rc_world_nodes(&w, err);
	if (r == 0)
		r = read_statuses(&w, &so, cache, hash, err);
	if (r == 0) {
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)o->set, key, v)
			cluster_set(w.cluster, key, json_is_null(v) ? NULL : json_incref(v));
		rc_world_observe(&w);
		r = rc_workloads(&w, &ret->rollouts, err);
	}
	if (r == 0)
		r = rc_services(&w, &ret->network, err); /* ClusterIPs, NodePorts, the plans' network */
	if (r == 0) {
		record_pod_lists(&w);
		if (!o->dry_run)
			cluster_set(w.cluster, "sync", json_pack("{s:s?, s:s?}", "commit", commit, "subject", subject));
		bool *dirty = xcalloc(w.nnodes + 1, sizeof(*dirty));
		bool cache_same = json_equal(cache, w.cluster);
		for (size_t i = 0; i < w.nnodes; i++) {
			dirty[i] = w.nodes[i].reachable && node_changes(&w, &w.nodes[i], cache, cache_same);
			ret->changed |= dirty[i];
		}
		if (!o->dry_run) {
			w.cluster_delta = cluster_delta(cache, hash, w.cluster);
			apply_plans(&w, &so, dirty, err);
			if (!cache_same) /* a no-op pass writes nothing */
				save_cache(o->state_dir, w.cluster);
			rc_network_cache_save(&w, w.prev_net, o->state_dir);
		}
		free(dirty);
		ret->nodes = node_results(&w);
		ret->pending = json_incref(w.new_pods);
		ret->cluster = json_incref(w.cluster);
		ret->statuses = json_array();
		for (size_t i = 0; i < w.nnodes; i++)
			json_array_append(ret->statuses, w.nodes[i].status ? w.nodes[i].status : json_null());
	}
	rc_network_cache_free(w.prev_net);
	json_decref(w.cluster_delta);
	rc_world_release(&w);
	json_decref(cache);
	free(hash);
	free(control);
	return r;
}

void rc_result_release(struct rc_result *r)
{
	json_decref(r->nodes);
	json_decref(r->rollouts);
	json_decref(r->pending);
	json_decref(r->cluster);
	json_decref(r->statuses);
	json_decref(r->network);
	memset(r, 0, sizeof(*r));
}
