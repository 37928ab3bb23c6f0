/* scheduler_score.c: node-local scores: taints, node affinity, least and balanced allocation. */
#include "reconcile/scheduler_internal.h"

#include <string.h>

void sched_normalize(int64_t *s, size_t n, bool reverse)
{
	int64_t max = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] > max)
			max = s[i];
	for (size_t i = 0; i < n; i++) {
		int64_t v = max ? SCHED_MAX_SCORE * s[i] / max : 0;
		s[i] = reverse ? SCHED_MAX_SCORE - v : v;
	}
}

/* PreferNoSchedule taints the pod does not tolerate: fewer is better. */
void sched_score_taints(const struct sched_ctx *c, const size_t *cand, size_t n, int64_t *out)
{
	struct sched_taint t;
	for (size_t j = 0; j < n; j++) {
		out[j] = 0;
		for (size_t i = 0; sched_node_taint(&c->nodes[cand[j]], i, &t); i++)
			if (!strcmp(t.effect, "PreferNoSchedule") && !sched_tolerates(c->tolerations, &t))
				out[j]++;
	}
	sched_normalize(out, n, true);
}

/* The weights of the preferred node affinity terms a node matches. */
void sched_score_node_affinity(const struct sched_ctx *c, const size_t *cand, size_t n,
			       int64_t *out)
{
	const json_t *na = json_object_get(json_object_get(c->spec, "affinity"), "nodeAffinity");
	const json_t *pref = json_object_get(na, "preferredDuringSchedulingIgnoredDuringExecution");
	size_t i;
	json_t *wt;
	memset(out, 0, n * sizeof(*out));
	json_array_foreach((json_t *)pref, i, wt) {
		int64_t w = sched_int_field(wt, "weight", 0, 0, SCHED_MAX_SCORE);
		if (w <= 0)
			continue;
		for (size_t j = 0; j < n; j++)
			if (sched_node_term_matches(json_object_get(wt, "preference"), &c->nodes[cand[j]]))
				out[j] += w;
	}
	sched_normalize(out, n, false);
}

static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* leastRequestedScore: the share left free after placing, 0..100 (in long
 * double only where the exact product would overflow). */
static int64_t least_requested(int64_t requested, int64_t capacity)
{
	if (capacity <= 0 || requested > capacity)
		return 0;
	int64_t left = capacity - requested;
	if (left <= INT64_MAX / SCHED_MAX_SCORE)
		return left * SCHED_MAX_SCORE / capacity;
	return (int64_t)((long double)left * SCHED_MAX_SCORE / (long double)capacity);
}

/* CPU and memory weighted 1:1, requests counted with the non-zero defaults; a
 * resource the node has none of is left out. The nodes' used_* are the placed
 * pods' real requests (sched_node has no non-zero tally of them). */
void sched_score_least_allocated(const struct sched_ctx *c, const size_t *cand, size_t n,
				 int64_t *out)
{
	for (size_t j = 0; j < n; j++) {
		const struct sched_node *nd = &c->nodes[cand[j]];
		int64_t sum = 0, weights = 0;
		if (nd->alloc_cpu > 0) {
			sum += least_requested(sat_add(nd->used_cpu, c->nz_cpu), nd->alloc_cpu);
			weights++;
		}
		if (nd->alloc_mem > 0) {
			sum += least_requested(sat_add(nd->used_mem, c->nz_mem), nd->alloc_mem);
			weights++;
		}
		out[j] = weights ? sum / weights : 0;
	}
}

static double fraction(int64_t requested, int64_t capacity)
{
	double f = (double)requested / (double)capacity;
	return f > 1 ? 1 : f;
}

/* (1 - std) * 100 of the CPU and memory fractions after placing, with the real
 * requests; skipped for a pod that requests nothing (upstream #129138). */
void sched_score_balanced(const struct sched_ctx *c, const size_t *cand, size_t n, int64_t *out)
{
	memset(out, 0, n * sizeof(*out));
	if (!c->cpu && !c->mem)
		return;
	for (size_t j = 0; j < n; j++) {
		const struct sched_node *nd = &c->nodes[cand[j]];
		double std = 0;
		if (nd->alloc_cpu > 0 && nd->alloc_mem > 0) {
			std = (fraction(sat_add(nd->used_cpu, c->cpu), nd->alloc_cpu) -
			       fraction(sat_add(nd->used_mem, c->mem), nd->alloc_mem)) / 2;
			if (std < 0)
				std = -std;
		}
		out[j] = (int64_t)((1 - std) * SCHED_MAX_SCORE);
	}
}
