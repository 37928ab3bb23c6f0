/* workloads.c: the controllers of one pass — bare Pods, ReplicaSets and Deployments
 * (revisions, pins, rolling updates, history) — deciding which observed pods stay
 * and which new ones to make, then scheduling the new ones onto nodes. */
#include "reconcile/internal.h"

#include <stdlib.h>
#include <string.h>

/* A pod the pass wants: kept (node set, uid of the observed pod) or new. */
struct want {
	char *ns, *name, *uid;
	json_t *meta, *spec;   /* template metadata and pod spec (owned) */
	char *owner, *rs, *hash;
	struct rc_node *node;
	char *pending;         /* why it could not be scheduled */
};

struct pass {
	struct rc_world *w;
	struct want *wants;
	size_t n, alloc;
	json_t *rollouts;      /* per Deployment: status for printing */
	json_t *owners;        /* set of the owner keys git still has */
};

static struct want *add_want(struct pass *ps, const char *ns, const char *name, const char *uid,
			     const json_t *meta, const json_t *spec, const char *owner, const char *rs,
			     const char *hash, struct rc_node *node)
{
	GROW(ps->wants, ps->alloc, ps->n + 1);
	struct want *x = &ps->wants[ps->n++];
	memset(x, 0, sizeof(*x));
	x->ns = xstrdup(ns);
	x->name = xstrdup(name);
	x->uid = uid ? xstrdup(uid) : rc_new_uid();
	x->meta = json_deep_copy(meta);
	x->spec = json_deep_copy(spec);
	x->owner = owner ? xstrdup(owner) : NULL;
	x->rs = rs ? xstrdup(rs) : NULL;
	x->hash = hash ? xstrdup(hash) : NULL;
	x->node = node;
	return x;
}

static const char *ann(const struct rc_pod *p, const char *key)
{
	return json_string_value(json_object_get(p->annotations, key));
}

static bool name_taken(const struct pass *ps, const char *ns, const char *name)
{
	for (size_t i = 0; i < ps->w->npods; i++)
		if (!strcmp(ps->w->pods[i].ns, ns) && !strcmp(ps->w->pods[i].name, name))
			return true;
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->wants[i].ns, ns) && !strcmp(ps->wants[i].name, name))
			return true;
	return false;
}

static char *new_pod_name(const struct pass *ps, const char *ns, const char *rs)
{
	for (unsigned k = 0;; k++) {
		char *seed = xasprintf("%s/%s/%u/%lld", ns, rs, k, (long long)ps->w->now);
		char *suffix = name_suffix(seed);
		char *name = xasprintf("%s-%s", rs, suffix);
		free(seed);
		free(suffix);
		if (!name_taken(ps, ns, name))
			return name;
		free(name);
	}
}

/* ---- bare Pods ---- */

static void pod_workload(struct pass *ps, const struct api_object *o)
{
	json_t *j = api_to_json(o->root);
	struct rc_pod *have = NULL;
	for (size_t i = 0; i < ps->w->npods && !have; i++)
		if (!strcmp(ps->w->pods[i].ns, o->ns) && !strcmp(ps->w->pods[i].name, o->name))
			have = &ps->w->pods[i];
	if (have)
		have->keep = true;
	char *owner = xasprintf("Pod/%s/%s", o->ns, o->name);
	json_object_set_new(ps->owners, owner, json_true());
	add_want(ps, o->ns, o->name, have ? have->uid : NULL, json_object_get(j, "metadata"),
		 json_object_get(j, "spec"), owner, NULL, NULL, have ? have->node : NULL);
	free(owner);
	json_decref(j);
}

/* ---- ReplicaSets of a workload ---- */

struct rset {
	char *hash, *name;
	json_t *template;      /* {metadata, spec} (owned) */
	struct rc_pod **pods;
	size_t npods, apods;
	struct rs_view view;
};

struct rsets {
	struct rset *v;
	size_t n, alloc;
};

static struct rset *rset_get(struct rsets *r, const char *hash)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].hash, hash))
			return &r->v[i];
	GROW(r->v, r->alloc, r->n + 1);
	struct rset *x = &r->v[r->n++];
	memset(x, 0, sizeof(*x));
	x->hash = xstrdup(hash);
	x->view.hash = x->hash;
	return x;
}

static void rsets_release(struct rsets *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].hash);
		free(r->v[i].name);
		json_decref(r->v[i].template);
		free(r->v[i].pods);
	}
	free(r->v);
}

/* Pods of an owner, grouped by template hash; evicted nodes' pods are gone. */
static void collect(struct pass *ps, const char *owner, struct rsets *r)
{
	for (size_t i = 0; i < ps->w->npods; i++) {
		struct rc_pod *p = &ps->w->pods[i];
		const char *o = ann(p, ANN_OWNER);
		const char *h = json_string_value(json_object_get(p->labels, LABEL_HASH));
		if (!o || strcmp(o, owner) || !h || p->node->evicted)
			continue;
		struct rset *x = rset_get(r, h);
		GROW(x->pods, x->apods, x->npods + 1);
		x->pods[x->npods++] = p;
		x->view.pods++;
		x->view.ready += p->ready;
		x->view.available += p->available;
	}
}

/* Keepers first: ready, then known (reachable node), then by name. */
static int keeper_cmp(const void *a, const void *b)
{
	const struct rc_pod *x = *(struct rc_pod *const *)a, *y = *(struct rc_pod *const *)b;
	if (x->ready != y->ready)
		return x->ready ? -1 : 1;
	if (x->unknown != y->unknown)
		return x->unknown ? 1 : -1;
	return strcmp(x->name, y->name);
}

static void realize(struct pass *ps, const char *ns, const char *owner, struct rset *x, int64_t target)
{
	if (x->npods)
		qsort(x->pods, x->npods, sizeof(*x->pods), keeper_cmp);
	const json_t *meta = json_object_get(x->template, "metadata");
	const json_t *spec = json_object_get(x->template, "spec");
	int64_t have = 0;
	for (size_t i = 0; i < x->npods; i++) {
		if (have >= target)
			break; /* the rest are not kept: their nodes stop them */
		x->pods[i]->keep = true;
		if (!spec) { /* no template known: the node keeps it as it is */
			have++;
			continue;
		}
		add_want(ps, ns, x->pods[i]->name, x->pods[i]->uid, meta, spec, owner, x->name, x->hash,
			 x->pods[i]->node);
		have++;
	}
	for (; spec && have < target; have++) {
		char *name = new_pod_name(ps, ns, x->name);
		add_want(ps, ns, name, NULL, meta, spec, owner, x->name, x->hash, NULL);
		free(name);
	}
}

/* ---- Deployments ---- */

static json_int_t max_revision(const json_t *cs, const char *prefix, const char **ret_hash)
{
	json_int_t max = 0;
	const char *key;
	json_t *e;
	json_object_foreach((json_t *)cs, key, e) {
		const json_t *v = json_object_get(e, "value");
		if (!str_has_prefix(key, prefix) || !v || json_is_null(v))
			continue;
		json_int_t r = json_integer_value(json_object_get(v, "revision"));
		if (r > max) {
			max = r;
			if (ret_hash)
				*ret_hash = key + strlen(prefix);
		}
	}
	return max;
}

/* The revision record of hash: created for a new template (max + 1), and bumped to
 * max + 1 when an old template comes back (as Kubernetes does on rollback). */
static void ensure_revision(struct pass *ps, const char *prefix, const char *hash, const json_t *tmpl,
			    bool bump)
{
	json_t *cs = ps->w->cluster;
	char *key = xasprintf("%s%s", prefix, hash);
	const json_t *rec = cluster_get(cs, key);
	const char *top = NULL;
	json_int_t max = max_revision(cs, prefix, &top);
	if (!rec) {
		json_t *v = json_pack("{s:I, s:O, s:s?, s:s?, s:I}", "revision", (json_int_t)(max + 1),
				      "template", tmpl, "commit", ps->w->commit, "subject", ps->w->subject,
				      "time", (json_int_t)ps->w->now);
		cluster_set(cs, key, v);
	} else if (bump && top && strcmp(top, hash)) {
		/* an old template is back: it becomes the newest revision, keeping the
		 * commit and subject that introduced it (its CHANGE-CAUSE) */
		json_t *v = json_deep_copy(rec);
		json_object_set_new(v, "revision", json_integer(max + 1));
		json_object_set_new(v, "time", json_integer(ps->w->now));
		cluster_set(cs, key, v);
	}
	free(key);
}

static void load_templates(struct pass *ps, const char *prefix, struct rsets *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct rset *x = &r->v[i];
		if (x->template)
			continue;
		char *key = xasprintf("%s%s", prefix, x->hash);
		const json_t *rec = cluster_get(ps->w->cluster, key);
		x->template = json_deep_copy(json_object_get(rec, "template"));
		x->view.revision = json_integer_value(json_object_get(rec, "revision"));
		free(key);
	}
}

static json_t *pinned_template(struct pass *ps, const char *pin_key, const char *git_hash)
{
	const json_t *pin = cluster_get(ps->w->cluster, pin_key);
	if (!pin)
		return NULL;
	const char *at = json_string_value(json_object_get(pin, "gitHash"));
	if (at && !strcmp(at, git_hash))
		return json_deep_copy(json_object_get(pin, "template"));
	cluster_set(ps->w->cluster, pin_key, NULL); /* git changed the template: the pin is released */
	return NULL;
}

static void record_progress(struct pass *ps, const char *ns, const char *name, const json_t *spec,
			    const struct deploy_status *st, const char *hash, json_int_t revision)
{
	char *key = xasprintf("progress/%s/%s", ns, name);
	char *mark = xasprintf("%s/%lld/%lld/%lld", hash, (long long)st->updated, (long long)st->available,
			       (long long)st->ready);
	const json_t *have = cluster_get(ps->w->cluster, key);
	const char *had = json_string_value(json_object_get(have, "mark"));
	json_int_t since = json_integer_value(json_object_get(have, "since"));
	if (!had || strcmp(had, mark)) {
		since = ps->w->now;
		cluster_set(ps->w->cluster, key, json_pack("{s:s, s:I}", "mark", mark, "since", since));
	}
	json_int_t deadline = json_integer_value(json_object_get(spec, "progressDeadlineSeconds"));
	bool exceeded = !st->complete && deadline > 0 && ps->w->now - since > deadline;
	json_array_append_new(ps->rollouts,
			      json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:I}", "namespace", ns,
					"name", name, "revision", revision, "replicas", (json_int_t)st->replicas,
					"desired", (json_int_t)json_integer_value(json_object_get(spec, "replicas")),
					"updated", (json_int_t)st->updated, "ready", (json_int_t)st->ready,
					"available", (json_int_t)st->available, "complete", st->complete,
					"deadlineExceeded", exceeded, "since", since));
	free(key);
	free(mark);
}

static int deployment_workload(struct pass *ps, const struct api_object *o, struct gerr **err)
{
	json_t *j = api_to_json(o->root), *spec = json_object_get(j, "spec");
	json_t *tmpl = json_object_get(spec, "template");
	char *owner = xasprintf("Deployment/%s/%s", o->ns, o->name);
	json_object_set_new(ps->owners, owner, json_true());
	char *prefix = xasprintf("revision/%s/%s/", o->ns, o->name);
	char *pin_key = xasprintf("pin/%s/%s", o->ns, o->name);
	char *git_hash = pod_template_hash(tmpl);
	json_t *pinned = pinned_template(ps, pin_key, git_hash);
	json_t *use = pinned ? pinned : json_incref(tmpl);
	char *hash = pod_template_hash(use);
	char *pause_key = xasprintf("paused/%s/%s", o->ns, o->name);
	bool paused = json_is_true(json_object_get(spec, "paused")) ||
		      json_is_true(cluster_get(ps->w->cluster, pause_key));
	struct rsets r = { 0 };
	collect(ps, owner, &r);
	struct rset *cur = NULL;
	if (!paused || r.n == 0) {
		ensure_revision(ps, prefix, hash, use, true);
		cur = rset_get(&r, hash);
		cur->template = json_incref(use);
	}
	load_templates(ps, prefix, &r);
	for (size_t i = 0; i < r.n; i++) {
		r.v[i].name = xasprintf("%s-%s", o->name, r.v[i].hash);
		r.v[i].view.is_new = cur && &r.v[i] == cur;
	}
	if (!cur) { /* paused: the newest revision stands for "new" */
		size_t best = 0;
		for (size_t i = 1; i < r.n; i++)
			if (r.v[i].view.revision > r.v[best].view.revision)
				best = i;
		r.v[best].view.is_new = true;
	}
	struct rs_view *views = xcalloc(r.n + 1, sizeof(*views));
	int64_t *targets = xcalloc(r.n + 1, sizeof(*targets));
	for (size_t i = 0; i < r.n; i++)
		views[i] = r.v[i].view;
	struct deploy_view dv = {
		.replicas = json_integer_value(json_object_get(spec, "replicas")),
		.recreate = !strcmp(json_string_value(json_object_get(json_object_get(spec, "strategy"), "type")) ?: "", "Recreate"),
		.max_surge = json_object_get(json_object_get(json_object_get(spec, "strategy"), "rollingUpdate"), "maxSurge"),
		.max_unavailable = json_object_get(json_object_get(json_object_get(spec, "strategy"), "rollingUpdate"), "maxUnavailable"),
		.paused = paused,
		.revision_history_limit = json_integer_value(json_object_get(spec, "revisionHistoryLimit")),
	};
	int rc = deploy_targets(&dv, views, r.n, targets, err);
	if (rc == 0) {
		for (size_t i = 0; i < r.n; i++)
			realize(ps, o->ns, owner, &r.v[i], targets[i]);
		struct deploy_status st;
		deploy_status(&dv, views, r.n, &st);
		char *rkey = xasprintf("%s%s", prefix, hash);
		record_progress(ps, o->ns, o->name, spec, &st, hash,
				json_integer_value(json_object_get(cluster_get(ps->w->cluster, rkey), "revision")));
		free(rkey);
		bool *drop = xcalloc(r.n + 1, sizeof(*drop));
		deploy_history_prune(&dv, views, r.n, drop);
		for (size_t i = 0; i < r.n; i++)
			if (drop[i]) {
				char *key = xasprintf("%s%s", prefix, r.v[i].hash);
				cluster_set(ps->w->cluster, key, NULL);
				free(key);
			}
		free(drop);
	}
	free(views);
	free(targets);
	rsets_release(&r);
	json_decref(use); /* is pinned, when a pin applies */
	free(hash);
	free(git_hash);
	free(pin_key);
	free(pause_key);
	free(prefix);
	free(owner);
	json_decref(j);
	if (rc < 0)
		gerr_wrap(err, "Deployment %s/%s", o->ns, o->name);
	return rc;
}

static int replicaset_workload(struct pass *ps, const struct api_object *o)
{
	json_t *j = api_to_json(o->root), *spec = json_object_get(j, "spec");
	char *owner = xasprintf("ReplicaSet/%s/%s", o->ns, o->name);
	json_object_set_new(ps->owners, owner, json_true());
	char *hash = pod_template_hash(json_object_get(spec, "template"));
	struct rsets r = { 0 };
	collect(ps, owner, &r);
	struct rset *cur = rset_get(&r, hash);
	cur->template = json_incref(json_object_get(spec, "template"));
	cur->name = xstrdup(o->name);
	realize(ps, o->ns, owner, cur, json_integer_value(json_object_get(spec, "replicas")));
	/* pods of an older template of the same ReplicaSet are replaced, as kubectl
	 * users expect from a changed manifest (Kubernetes would keep them) */
	rsets_release(&r);
	free(hash);
	free(owner);
	json_decref(j);
	return 0;
}

/* ---- scheduling ---- */

static void node_views(struct pass *ps, struct sched_node *sn)
{
	for (size_t i = 0; i < ps->w->nnodes; i++) {
		struct rc_node *n = &ps->w->nodes[i];
		const json_t *alloc = json_object_get(n->status, "allocatable");
		int64_t cpu = n->alloc_cpu, mem = n->alloc_mem, pods = n->alloc_pods, m;
		if (cpu < 0 && api_quantity_parse(json_string_value(json_object_get(alloc, "cpu")) ?: "", &m, NULL) == 0)
			cpu = m;
		if (mem < 0 && api_quantity_parse(json_string_value(json_object_get(alloc, "memory")) ?: "", &m, NULL) == 0)
			mem = m / 1000;
		if (pods < 0 && api_quantity_parse(json_string_value(json_object_get(alloc, "pods")) ?: "", &m, NULL) == 0)
			pods = m / 1000;
		json_t *node_spec = n->obj ? api_to_json(yn_get(n->obj->root, "spec")) : NULL;
		bool cordoned = json_is_true(json_object_get(node_spec, "unschedulable"));
		json_decref(node_spec);
		sn[i] = (struct sched_node){
			.name = n->name, .labels = n->labels, .taints = n->taints, .unschedulable = cordoned,
			.not_ready = !n->reachable && (n->not_ready || !n->status),
			.alloc_cpu = cpu < 0 ? INT64_MAX / 4 : cpu, .alloc_mem = mem < 0 ? INT64_MAX / 4 : mem,
			.alloc_pods = pods < 0 ? 110 : pods,
		};
	}
}

static int owner_cmp(const void *a, const void *b)
{
	const struct want *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

static void schedule_all(struct pass *ps)
{
	size_t nn = ps->w->nnodes;
	struct sched_node *sn = xcalloc(nn + 1, sizeof(*sn));
	struct sched_pod *placed = xcalloc(ps->n + 1, sizeof(*placed));
	size_t np = 0;
	node_views(ps, sn);
	/* kept pods first: they hold their resources */
	for (size_t i = 0; i < ps->n; i++) {
		struct want *x = &ps->wants[i];
		if (!x->node)
			continue;
		sched_account(&sn[x->node - ps->w->nodes], x->spec);
		placed[np++] = (struct sched_pod){ x->ns, x->node->name, json_object_get(x->meta, "labels"), x->owner };
	}
	qsort(ps->wants, ps->n, sizeof(*ps->wants), owner_cmp);
	np = 0;
	for (size_t i = 0; i < ps->n; i++)
		if (ps->wants[i].node)
			placed[np++] = (struct sched_pod){ ps->wants[i].ns, ps->wants[i].node->name,
							   json_object_get(ps->wants[i].meta, "labels"), ps->wants[i].owner };
	for (size_t i = 0; i < ps->n; i++) {
		struct want *x = &ps->wants[i];
		if (x->node)
			continue;
		struct sched_request req = { x->ns, json_object_get(x->meta, "labels"), x->spec, x->owner };
		char *why = NULL;
		int k = sched_place(&req, sn, nn, placed, np, &why);
		if (k < 0) {
			x->pending = why ? why : xstrdup("no node");
			continue;
		}
		free(why);
		x->node = &ps->w->nodes[k];
		sched_account(&sn[k], x->spec);
		placed[np++] = (struct sched_pod){ x->ns, x->node->name, json_object_get(x->meta, "labels"), x->owner };
	}
	for (size_t i = 0; i < nn; i++)
		json_decref((json_t *)sn[i].host_ports); /* sched_account made them */
	free(placed);
	free(sn);
}

static void emit(struct pass *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		struct want *x = &ps->wants[i];
		if (x->pending) {
			sb_addf(&ps->w->log, "pod %s/%s: Pending: %s\n", x->ns, x->name, x->pending);
			json_array_append_new(ps->w->new_pods, json_pack("{s:s, s:s, s:s}", "namespace", x->ns,
									 "name", x->name, "pending", x->pending));
			continue;
		}
		json_t *spec = json_deep_copy(x->spec);
		json_object_set_new(spec, "nodeName", json_string(x->node->name));
		json_t *e = rc_pod_entry(ps->w, x->uid, x->ns, x->name, x->meta, spec, x->owner, x->rs, x->hash);
		json_decref(spec);
		json_array_append_new(x->node->plan_pods, e);
	}
	/* observed pods kept without a known template, and (with --prune=false)
	 * pods whose owner left git: the node keeps them as they are */
	for (size_t i = 0; i < ps->w->npods; i++) {
		struct rc_pod *p = &ps->w->pods[i];
		bool wanted = false;
		for (size_t k = 0; k < ps->n && !wanted; k++)
			wanted = !strcmp(ps->wants[k].uid, p->uid);
		const char *owner = ann(p, ANN_OWNER);
		bool orphan = !owner || !json_object_get(ps->owners, owner);
		if (wanted || p->node->evicted || (!p->keep && (!orphan || ps->w->prune)))
			continue;
		json_array_append_new(p->node->plan_pods, json_pack("{s:s, s:s, s:s, s:b}", "uid", p->uid,
								     "namespace", p->ns, "name", p->name, "keep", 1));
	}
}

static void wants_release(struct pass *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		struct want *x = &ps->wants[i];
		free(x->ns);
		free(x->name);
		free(x->uid);
		free(x->owner);
		free(x->rs);
		free(x->hash);
		free(x->pending);
		json_decref(x->meta);
		json_decref(x->spec);
	}
	free(ps->wants);
}

int rc_workloads(struct rc_world *w, json_t **ret_rollouts, struct gerr **err)
{
	struct pass ps = { .w = w, .rollouts = json_array(), .owners = json_object() };
	int r = 0;
	for (size_t i = 0; i < w->desired->nobjs && r == 0; i++) {
		const struct api_object *o = &w->desired->objs[i];
		if (o->invalid)
			continue;
		if (!strcmp(o->kind->kind, "Pod"))
			pod_workload(&ps, o);
		else if (!strcmp(o->kind->kind, "Deployment"))
			r = deployment_workload(&ps, o, err);
		else if (!strcmp(o->kind->kind, "ReplicaSet"))
			r = replicaset_workload(&ps, o);
	}
	if (r == 0) {
		schedule_all(&ps);
		emit(&ps);
	}
	wants_release(&ps);
	json_decref(ps.owners);
	if (r == 0 && ret_rollouts)
		*ret_rollouts = ps.rollouts;
	else
		json_decref(ps.rollouts);
	return r;
}
