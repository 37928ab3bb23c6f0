/* scheduler_podaffinity.c: required and preferred inter-pod (anti-)affinity (InterPodAffinity). */
#include "reconcile/scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

/* Only the incoming pod's terms apply: a struct sched_pod carries labels, not a
 * spec, so upstream's symmetric checks (existing pods' own anti-affinity, their
 * affinity toward the new pod in scoring) are out of reach. */
struct sched_podaff_state {
	const json_t *aff, *anti;  /* the required terms */
	int64_t *aff_all;          /* per node: pods matching every affinity term */
	bool aff_none;             /* no such pod sits on a node with a term's key */
	bool self_all;             /* the pod matches its own affinity terms */
	int64_t **anti_cnt;        /* per anti-affinity term, per node: matching pods */
};

static const char *nsq(const char *s)
{
	return s ? s : "";
}

/* A namespace's labels, as far as the scheduler knows them. */
static const char *ns_label(const void *ns, const char *key)
{
	return !strcmp(key, LABEL_NS_NAME) ? ns : NULL;
}

/* namespaces ∪ namespaceSelector; neither set means the pod's own namespace. */
static bool term_ns(const struct sched_ctx *c, const json_t *term, const char *ns)
{
	const json_t *names = json_object_get(term, "namespaces");
	const json_t *sel = json_object_get(term, "namespaceSelector");
	if (!json_array_size(names) && (!sel || json_is_null(sel)))
		return !strcmp(nsq(ns), nsq(c->req->ns));
	return sched_strings_contain(names, nsq(ns)) || sched_selector_matches(sel, ns_label, nsq(ns));
}

static bool term_matches(const struct sched_ctx *c, const json_t *term, const char *ns,
			 const json_t *labels)
{
	return term_ns(c, term, ns) &&
	       sched_selector_matches(json_object_get(term, "labelSelector"), sched_json_label, labels) &&
	       sched_label_keys_match(term, c->req->labels, sched_json_label, labels);
}

static const char *term_key(const json_t *term)
{
	return nsq(json_string_value(json_object_get(term, "topologyKey")));
}

/* Pods matching term on each of nodes[]. */
static int64_t *term_counts(const struct sched_ctx *c, const json_t *term)
{
	int64_t *cnt = xcalloc(c->nnodes + 1, sizeof(*cnt));
	for (size_t i = 0; i < c->npods; i++)
		if (c->pod_node[i] >= 0 && term_matches(c, term, c->pods[i].ns, c->pods[i].labels))
			cnt[c->pod_node[i]]++;
	return cnt;
}

/* Pods counted in the topology domain key=value. */
static int64_t pair_count(const struct sched_ctx *c, const int64_t *cnt, const char *key,
			  const char *value)
{
	int64_t sum = 0;
	for (size_t m = 0; m < c->nnodes; m++) {
		const char *v = cnt[m] ? sched_node_label(&c->nodes[m], key) : NULL;
		if (v && !strcmp(v, value))
			sum += cnt[m];
	}
	return sum;
}

static bool matches_all(const struct sched_ctx *c, const json_t *terms, const char *ns,
			const json_t *labels)
{
	size_t i;
	json_t *t;
	json_array_foreach((json_t *)terms, i, t)
		if (!term_matches(c, t, ns, labels))
			return false;
	return json_array_size(terms) > 0;
}

static void prepare_affinity(const struct sched_ctx *c, struct sched_podaff_state *st)
{
	size_t i;
	json_t *t;
	st->aff_all = xcalloc(c->nnodes + 1, sizeof(*st->aff_all));
	for (size_t p = 0; p < c->npods; p++)
		if (c->pod_node[p] >= 0 && matches_all(c, st->aff, c->pods[p].ns, c->pods[p].labels))
			st->aff_all[c->pod_node[p]]++;
	st->aff_none = true;
	for (size_t m = 0; m < c->nnodes; m++)
		json_array_foreach((json_t *)st->aff, i, t)
			if (st->aff_all[m] && sched_node_label(&c->nodes[m], term_key(t)))
				st->aff_none = false;
	st->self_all = matches_all(c, st->aff, c->req->ns, c->req->labels);
}

void sched_podaff_prepare(struct sched_ctx *c)
{
	struct sched_podaff_state *st = xcalloc(1, sizeof(*st));
	const json_t *aff = json_object_get(c->spec, "affinity");
	const char *req = "requiredDuringSchedulingIgnoredDuringExecution";
	st->aff = json_object_get(json_object_get(aff, "podAffinity"), req);
	st->anti = json_object_get(json_object_get(aff, "podAntiAffinity"), req);
	if (json_array_size(st->aff))
		prepare_affinity(c, st);
	st->anti_cnt = xcalloc(json_array_size(st->anti) + 1, sizeof(*st->anti_cnt));
	for (size_t i = 0; i < json_array_size(st->anti); i++)
		st->anti_cnt[i] = term_counts(c, json_array_get(st->anti, i));
	c->podaff = st;
}

void sched_podaff_release(struct sched_podaff_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < json_array_size(st->anti); i++)
		free(st->anti_cnt[i]);
	free(st->anti_cnt);
	free(st->aff_all);
	free(st);
}

/* satisfyPodAffinity: every term's domain holds a pod matching all the terms;
 * the first pod of a group that selects itself may go anywhere the keys are. */
static bool affinity_ok(const struct sched_ctx *c, const struct sched_node *n)
{
	const struct sched_podaff_state *st = c->podaff;
	bool exist = true;
	size_t i;
	json_t *t;
	json_array_foreach((json_t *)st->aff, i, t) {
		const char *v = sched_node_label(n, term_key(t));
		if (!v)
			return false;
		if (pair_count(c, st->aff_all, term_key(t), v) <= 0)
			exist = false;
	}
	return exist || (st->aff_none && st->self_all);
}

/* satisfyPodAntiAffinity: no term's domain holds a pod matching it. */
static bool anti_affinity_ok(const struct sched_ctx *c, const struct sched_node *n)
{
	const struct sched_podaff_state *st = c->podaff;
	for (size_t i = 0; i < json_array_size(st->anti); i++) {
		const char *key = term_key(json_array_get(st->anti, i));
		const char *v = sched_node_label(n, key);
		if (v && pair_count(c, st->anti_cnt[i], key, v) > 0)
			return false;
	}
	return true;
}

void sched_filter_pod_affinity(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	if (!affinity_ok(c, &c->nodes[node]))
		strvec_push(why, REASON_POD_AFFINITY);
	else if (!anti_affinity_ok(c, &c->nodes[node]))
		strvec_push(why, REASON_POD_ANTI_AFFINITY);
}

/* Each weighted term adds sign * weight for every matching pod in the node's
 * domain; *any tells whether some pod counted at all (topologyScore non-empty). */
static void add_weighted(const struct sched_ctx *c, const json_t *terms, int64_t sign,
			 const size_t *cand, size_t n, int64_t *out, bool *any)
{
	size_t i;
	json_t *wt;
	json_array_foreach((json_t *)terms, i, wt) {
		const json_t *term = json_object_get(wt, "podAffinityTerm");
		int64_t w = sched_int_field(wt, "weight", 0, 0, SCHED_MAX_SCORE);
		const char *key = term_key(term);
		int64_t *cnt = term_counts(c, term);
		for (size_t m = 0; m < c->nnodes; m++)
			*any |= cnt[m] && sched_node_label(&c->nodes[m], key);
		for (size_t j = 0; j < n; j++) {
			const char *v = sched_node_label(&c->nodes[cand[j]], key);
			if (v)
				out[j] += sign * w * pair_count(c, cnt, key, v);
		}
		free(cnt);
	}
}

/* Min-max normalized to 0..100 (InterPodAffinity's NormalizeScore). */
void sched_score_pod_affinity(const struct sched_ctx *c, const size_t *cand, size_t n,
			      int64_t *out)
{
	const json_t *aff = json_object_get(c->spec, "affinity");
	const char *pref = "preferredDuringSchedulingIgnoredDuringExecution";
	bool any = false;
	int64_t min = INT64_MAX, max = INT64_MIN;
	memset(out, 0, n * sizeof(*out));
	add_weighted(c, json_object_get(json_object_get(aff, "podAffinity"), pref), 1, cand, n, out,
		     &any);
	add_weighted(c, json_object_get(json_object_get(aff, "podAntiAffinity"), pref), -1, cand, n,
		     out, &any);
	if (!any)
		return;
	for (size_t j = 0; j < n; j++) {
		if (out[j] < min)
			min = out[j];
		if (out[j] > max)
			max = out[j];
	}
	for (size_t j = 0; j < n; j++)
		out[j] = max > min ? (int64_t)((double)SCHED_MAX_SCORE *
					       ((double)(out[j] - min) / (double)(max - min)))
				   : 0;
}
