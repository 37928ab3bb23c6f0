/* scheduler_spread.c: topologySpreadConstraints and default owner spreading (PodTopologySpread). */
#include "reconcile/scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

/* A topology domain (one value of the topology key) and its matching pods. */
struct domain {
	const char *value;
	int64_t count;
};

struct spread {
	const json_t *obj;          /* the constraint; NULL for a system default */
	const char *key;
	int64_t max_skew, min_domains;
	bool honor_affinity, honor_taints; /* nodeAffinityPolicy, nodeTaintsPolicy */
	struct domain *dom;
	size_t ndom, adom;
	int64_t min;                /* the global minimum, for the filter */
};

struct sched_spread_state {
	struct spread *c;
	size_t n;
};

static const char *nsq(const char *s)
{
	return s ? s : "";
}

static bool policy_is(const json_t *o, const char *key, const char *want, bool dflt)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? !strcmp(v, want) : dflt;
}

/* The pod's constraints whose whenUnsatisfiable is when. */
static size_t spread_parse(const json_t *spec, const char *when, struct spread **ret)
{
	const json_t *arr = json_object_get(spec, "topologySpreadConstraints");
	size_t n = 0, i;
	json_t *o;
	*ret = xcalloc(json_array_size(arr) + 1, sizeof(**ret));
	json_array_foreach((json_t *)arr, i, o) {
		const char *w = json_string_value(json_object_get(o, "whenUnsatisfiable"));
		const char *key = json_string_value(json_object_get(o, "topologyKey"));
		if (!w || strcmp(w, when) || !key)
			continue;
		struct spread *sp = &(*ret)[n++];
		sp->obj = o;
		sp->key = key;
		sp->max_skew = sched_int_field(o, "maxSkew", 1, 1, INT32_MAX);
		sp->min_domains = sched_int_field(o, "minDomains", 1, 1, INT32_MAX);
		sp->honor_affinity = policy_is(o, "nodeAffinityPolicy", "Honor", true);
		sp->honor_taints = policy_is(o, "nodeTaintsPolicy", "Honor", false);
	}
	return n;
}

/* The system defaults (ScheduleAnyway), the owner standing for the selector
 * upstream derives from the pod's Services and controllers. */
static size_t spread_defaults(const struct sched_ctx *c, struct spread **ret)
{
	*ret = xcalloc(2, sizeof(**ret));
	if (!c->req->owner)
		return 0;
	(*ret)[0] = (struct spread){ .key = LABEL_HOSTNAME, .max_skew = 3, .min_domains = 1,
				     .honor_affinity = true };
	(*ret)[1] = (struct spread){ .key = LABEL_ZONE, .max_skew = 5, .min_domains = 1,
				     .honor_affinity = true };
	return 2;
}

static void spread_free(struct spread *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		free(s[i].dom);
	free(s);
}

/* countPodsMatchSelector: same namespace; an empty selector counts nothing. */
static bool spread_counts_pod(const struct sched_ctx *c, const struct spread *s,
			      const struct sched_pod *p)
{
	if (strcmp(nsq(p->ns), nsq(c->req->ns)))
		return false;
	if (!s->obj)
		return p->owner && !strcmp(p->owner, c->req->owner);
	const json_t *sel = json_object_get(s->obj, "labelSelector");
	bool keys = false;
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(s->obj, "matchLabelKeys"), i, k)
		keys |= sched_json_label(c->req->labels, json_string_value(k)) != NULL;
	if (sched_selector_is_empty(sel) && !keys)
		return false;
	return sched_selector_matches(sel, sched_json_label, p->labels) &&
	       sched_label_keys_match(s->obj, c->req->labels, sched_json_label, p->labels);
}

/* Matching pods on each of nodes[]. */
static int64_t *node_counts(const struct sched_ctx *c, const struct spread *s)
{
	int64_t *cnt = xcalloc(c->nnodes + 1, sizeof(*cnt));
	for (size_t i = 0; i < c->npods; i++)
		if (c->pod_node[i] >= 0 && spread_counts_pod(c, s, &c->pods[i]))
			cnt[c->pod_node[i]]++;
	return cnt;
}

static bool has_all_keys(const struct spread *s, size_t n, const struct sched_node *node)
{
	for (size_t i = 0; i < n; i++)
		if (!sched_node_label(node, s[i].key))
			return false;
	return true;
}

static bool node_included(const struct sched_ctx *c, const struct spread *s,
			  const struct sched_node *n)
{
	struct sched_taint t;
	if (s->honor_affinity && !sched_node_affinity_matches(c->spec, n))
		return false;
	return !(s->honor_taints && sched_untolerated(c->tolerations, n, &t));
}

static struct domain *domain_find(struct spread *s, const char *value)
{
	for (size_t i = 0; i < s->ndom; i++)
		if (!strcmp(s->dom[i].value, value))
			return &s->dom[i];
	return NULL;
}

static struct domain *domain_get(struct spread *s, const char *value)
{
	struct domain *d = domain_find(s, value);
	if (d)
		return d;
	GROW(s->dom, s->adom, s->ndom + 1);
	s->dom[s->ndom] = (struct domain){ value, 0 };
	return &s->dom[s->ndom++];
}

/* ---- filter ------------------------------------------------------------- */

/* calPreFilterState: every node with all the keys that the constraint includes
 * is a domain; fewer domains than minDomains make the global minimum 0. */
static void spread_domains(const struct sched_ctx *c, struct sched_spread_state *st,
			   struct spread *s)
{
	int64_t *cnt = node_counts(c, s);
	for (size_t m = 0; m < c->nnodes; m++) {
		const struct sched_node *n = &c->nodes[m];
		if (!has_all_keys(st->c, st->n, n) || !node_included(c, s, n))
			continue;
		domain_get(s, sched_node_label(n, s->key))->count += cnt[m];
	}
	free(cnt);
	s->min = INT32_MAX;
	for (size_t i = 0; i < s->ndom; i++)
		if (s->dom[i].count < s->min)
			s->min = s->dom[i].count;
	if ((int64_t)s->ndom < s->min_domains)
		s->min = 0;
}

void sched_spread_prepare(struct sched_ctx *c)
{
	struct sched_spread_state *st = xcalloc(1, sizeof(*st));
	st->n = spread_parse(c->spec, "DoNotSchedule", &st->c);
	for (size_t i = 0; i < st->n; i++)
		spread_domains(c, st, &st->c[i]);
	c->spread = st;
}

void sched_spread_release(struct sched_spread_state *st)
{
	if (!st)
		return;
	spread_free(st->c, st->n);
	free(st);
}

/* matchNum + selfMatch - globalMin must not pass maxSkew. */
void sched_filter_spread(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	for (size_t i = 0; i < c->spread->n; i++) {
		struct spread *s = &c->spread->c[i];
		const char *v = sched_node_label(&c->nodes[node], s->key);
		if (!v) {
			strvec_push(why, REASON_SPREAD_LABEL);
			return;
		}
		const struct domain *d = domain_find(s, v);
		int64_t self = sched_selector_matches(json_object_get(s->obj, "labelSelector"),
						      sched_json_label, c->req->labels);
		if ((d ? d->count : 0) + self - s->min > s->max_skew) {
			strvec_push(why, REASON_SPREAD);
			return;
		}
	}
}

/* ---- score -------------------------------------------------------------- */

/* ln(x) for x >= 1 without libm (not linked): halve into [1, 2), then the
 * atanh series 2(y + y^3/3 + ...), y = (m-1)/(m+1) <= 1/3. */
static double ln(double x)
{
	const double ln2 = 0.69314718055994530942;
	int k = 0;
	while (x >= 2) {
		x /= 2;
		k++;
	}
	double y = (x - 1) / (x + 1), y2 = y * y, term = y, sum = 0;
	for (int i = 1; i < 60; i += 2) {
		sum += term / i;
		term *= y2;
	}
	return k * ln2 + 2 * sum;
}

struct spread_score {
	struct spread *s;
	size_t n;
	bool explicit;        /* the pod's own constraints: nodes need every key */
	bool *ignored;
	size_t nignored;
	double *weight;       /* topologyNormalizingWeight per constraint */
	int64_t **per_node;   /* hostname constraints: matching pods per node */
};

/* initPreScoreState and PreScore's count over all nodes for one constraint. */
static void spread_score_domains(const struct sched_ctx *c, struct spread_score *ss, size_t k,
				 const size_t *cand, size_t n)
{
	struct spread *s = &ss->s[k];
	int64_t *cnt = node_counts(c, s);
	if (!strcmp(s->key, LABEL_HOSTNAME)) {
		ss->weight[k] = ln((double)(n - ss->nignored + 2));
		ss->per_node[k] = cnt;
		return;
	}
	for (size_t j = 0; j < n; j++)
		if (!ss->ignored[j])
			domain_get(s, nsq(sched_node_label(&c->nodes[cand[j]], s->key)));
	ss->weight[k] = ln((double)(s->ndom + 2));
	for (size_t m = 0; m < c->nnodes; m++) {
		const struct sched_node *nd = &c->nodes[m];
		struct domain *d = domain_find(s, nsq(sched_node_label(nd, s->key)));
		if (d && node_included(c, s, nd) && (!ss->explicit || has_all_keys(ss->s, ss->n, nd)))
			d->count += cnt[m];
	}
	free(cnt);
}

/* Score: each constraint adds count * weight + maxSkew - 1, rounded. */
static int64_t spread_raw(const struct sched_ctx *c, struct spread_score *ss, size_t node)
{
	double score = 0;
	for (size_t k = 0; k < ss->n; k++) {
		struct spread *s = &ss->s[k];
		const char *v = sched_node_label(&c->nodes[node], s->key);
		if (!v)
			continue;
		const struct domain *d = ss->per_node[k] ? NULL : domain_find(s, v);
		int64_t cnt = ss->per_node[k] ? ss->per_node[k][node] : d ? d->count : 0;
		score += (double)cnt * ss->weight[k] + (double)(s->max_skew - 1);
	}
	return (int64_t)(score + 0.5);
}

/* NormalizeScore: fewer matching pods is better; ignored nodes get 0. */
static void spread_normalize(int64_t *out, const bool *ignored, size_t n)
{
	int64_t min = INT64_MAX, max = 0;
	for (size_t j = 0; j < n; j++) {
		if (ignored[j])
			continue;
		if (out[j] < min)
			min = out[j];
		if (out[j] > max)
			max = out[j];
	}
	for (size_t j = 0; j < n; j++) {
		if (ignored[j])
			out[j] = 0;
		else if (!max)
			out[j] = SCHED_MAX_SCORE;
		else
			out[j] = SCHED_MAX_SCORE * (max + min - out[j]) / max;
	}
}

/* ScheduleAnyway constraints; a pod with none at all gets the system defaults,
 * under which nodes missing a key are still scored (requireAllTopologies). */
void sched_score_spread(const struct sched_ctx *c, const size_t *cand, size_t n, int64_t *out)
{
	struct spread_score ss = { 0 };
	ss.explicit = json_array_size(json_object_get(c->spec, "topologySpreadConstraints")) > 0;
	ss.n = ss.explicit ? spread_parse(c->spec, "ScheduleAnyway", &ss.s) : spread_defaults(c, &ss.s);
	memset(out, 0, n * sizeof(*out));
	if (ss.n) {
		ss.ignored = xcalloc(n, sizeof(*ss.ignored));
		ss.weight = xcalloc(ss.n, sizeof(*ss.weight));
		ss.per_node = xcalloc(ss.n, sizeof(*ss.per_node));
		for (size_t j = 0; j < n; j++) {
			ss.ignored[j] = ss.explicit && !has_all_keys(ss.s, ss.n, &c->nodes[cand[j]]);
			ss.nignored += ss.ignored[j];
		}
		for (size_t k = 0; k < ss.n; k++)
			spread_score_domains(c, &ss, k, cand, n);
		for (size_t j = 0; j < n; j++)
			out[j] = ss.ignored[j] ? 0 : spread_raw(c, &ss, cand[j]);
		spread_normalize(out, ss.ignored, n);
		for (size_t k = 0; k < ss.n; k++)
			free(ss.per_node[k]);
	}
	free(ss.per_node);
	free(ss.weight);
	free(ss.ignored);
	spread_free(ss.s, ss.n);
}
