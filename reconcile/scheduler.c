/* scheduler.c: place one pod as kube-scheduler does (filter, score, ties by name), or say why. */
#include "reconcile/scheduler_internal.h"

#include <stdlib.h>
#include <string.h>

/* Upstream's defaults for a container without a request, in scoring only
 * (pkg/scheduler/util DefaultMilliCPURequest, DefaultMemoryRequest). */
#define NONZERO_CPU 100                        /* millicores */
#define NONZERO_MEM (200 * 1024 * 1024)        /* bytes */

struct res {
	int64_t cpu, mem;
};

static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static void res_add(struct res *a, struct res b)
{
	a->cpu = sat_add(a->cpu, b.cpu);
	a->mem = sat_add(a->mem, b.mem);
}

static void res_max(struct res *a, struct res b)
{
	if (b.cpu > a->cpu)
		a->cpu = b.cpu;
	if (b.mem > a->mem)
		a->mem = b.mem;
}

/* Milli-units of memory to bytes, rounding up as Quantity.Value() does. */
static int64_t milli_to_units(int64_t m)
{
	return m / 1000 + (m % 1000 != 0);
}

/* requests[name], else limits[name] (defaulting copies limits to requests). */
static const json_t *request_of(const json_t *resources, const char *name)
{
	const json_t *q = json_object_get(json_object_get(resources, "requests"), name);
	return q ? q : json_object_get(json_object_get(resources, "limits"), name);
}

static struct res container_requests(const json_t *container, bool nonzero)
{
	const json_t *resources = json_object_get(container, "resources");
	const json_t *cpu = request_of(resources, "cpu"), *mem = request_of(resources, "memory");
	struct res r = { sched_quantity_milli(cpu), milli_to_units(sched_quantity_milli(mem)) };
	if (nonzero && !cpu)
		r.cpu = NONZERO_CPU;
	if (nonzero && !mem)
		r.mem = NONZERO_MEM;
	return r;
}

/* resourcehelper.PodRequests: the containers' sum, raised to any init container's
 * request (plus the sidecars started before it); sidecars (restartPolicy Always)
 * also add to the sum; then the pod overhead. */
void sched_pod_requests(const json_t *spec, bool nonzero, int64_t *ret_cpu, int64_t *ret_mem)
{
	struct res sum = { 0, 0 }, sidecars = { 0, 0 }, init = { 0, 0 };
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(spec, "containers"), i, c)
		res_add(&sum, container_requests(c, nonzero));
	json_array_foreach(json_object_get(spec, "initContainers"), i, c) {
		struct res r = container_requests(c, nonzero);
		const char *policy = json_string_value(json_object_get(c, "restartPolicy"));
		if (policy && !strcmp(policy, "Always")) {
			res_add(&sum, r);
			res_add(&sidecars, r);
			r = sidecars;
		} else {
			res_add(&r, sidecars);
		}
		res_max(&init, r);
	}
	res_max(&sum, init);
	const json_t *overhead = json_object_get(spec, "overhead");
	res_add(&sum, (struct res){ sched_quantity_milli(json_object_get(overhead, "cpu")),
				    milli_to_units(sched_quantity_milli(
					    json_object_get(overhead, "memory"))) });
	*ret_cpu = sum.cpu;
	*ret_mem = sum.mem;
}

void sched_requests(const json_t *spec, int64_t *ret_cpu, int64_t *ret_mem)
{
	sched_pod_requests(spec, false, ret_cpu, ret_mem);
}

/* The node's host_ports array belongs to the caller: it is appended to in place,
 * or created when NULL; either way the caller json_decref()s it when done. The
 * entries added are new objects, so the pod's spec need not outlive them. */
void sched_account(struct sched_node *node, const json_t *spec)
{
	int64_t cpu, mem;
	struct sched_port *ports;
	sched_requests(spec, &cpu, &mem);
	node->used_cpu = sat_add(node->used_cpu, cpu);
	node->used_mem = sat_add(node->used_mem, mem);
	node->used_pods = sat_add(node->used_pods, 1);
	size_t n = sched_pod_ports(spec, &ports);
	if (n && !node->host_ports)
		node->host_ports = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new((json_t *)node->host_ports,
				      json_pack("{s:I,s:s,s:s}", "port", (json_int_t)ports[i].port,
						"protocol", ports[i].protocol, "hostIP", ports[i].ip));
	free(ports);
}

/* ---- the context of one placement ------------------------------------------ */

struct name_idx {
	const char *name;
	size_t idx;
};

static int name_idx_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name_idx *)a)->name, ((const struct name_idx *)b)->name);
}

/* Which node each pod is on, by a sorted index of the node names. */
static void map_pods(struct sched_ctx *c)
{
	struct name_idx *byname = xcalloc(c->nnodes ? c->nnodes : 1, sizeof(*byname));
	for (size_t i = 0; i < c->nnodes; i++)
		byname[i] = (struct name_idx){ c->nodes[i].name ? c->nodes[i].name : "", i };
	qsort(byname, c->nnodes, sizeof(*byname), name_idx_cmp);
	c->pod_node = xcalloc(c->npods ? c->npods : 1, sizeof(*c->pod_node));
	for (size_t i = 0; i < c->npods; i++) {
		struct name_idx key = { c->pods[i].node ? c->pods[i].node : "", 0 }, *hit;
		hit = c->pods[i].node ? bsearch(&key, byname, c->nnodes, sizeof(*byname), name_idx_cmp)
				      : NULL;
		c->pod_node[i] = hit ? (ssize_t)hit->idx : -1;
	}
	free(byname);
}

void sched_ctx_init(struct sched_ctx *c, const struct sched_request *req,
		    const struct sched_node *nodes, size_t nnodes,
		    const struct sched_pod *pods, size_t npods)
{
	*c = (struct sched_ctx){ .req = req, .spec = req->spec, .nodes = nodes, .nnodes = nnodes,
				 .pods = pods, .npods = npods };
	c->tolerations = json_object_get(req->spec, "tolerations");
	sched_pod_requests(req->spec, false, &c->cpu, &c->mem);
	sched_pod_requests(req->spec, true, &c->nz_cpu, &c->nz_mem);
	c->nports = sched_pod_ports(req->spec, &c->ports);
	map_pods(c);
	sched_spread_prepare(c);
	sched_podaff_prepare(c);
}

void sched_ctx_release(struct sched_ctx *c)
{
	sched_spread_release(c->spread);
	sched_podaff_release(c->podaff);
	free(c->ports);
	free(c->pod_node);
	*c = (struct sched_ctx){ 0 };
}

/* ---- the message ----------------------------------------------------------- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* FitError.Error(): each distinct reason with the number of nodes that gave it,
 * as "N reason", sorted as strings (Go's sort.Strings), joined by ", ". */
char *sched_fit_message(const struct strvec *why, size_t nnodes)
{
	struct strvec all = STRVEC_INIT, hist = STRVEC_INIT;
	struct sbuf sb = SBUF_INIT;
	for (size_t i = 0; i < nnodes; i++)
		for (size_t j = 0; j < why[i].n; j++)
			strvec_push(&all, why[i].v[j]);
	if (all.n)
		qsort(all.v, all.n, sizeof(*all.v), str_cmp);
	for (size_t i = 0, j; i < all.n; i = j) {
		for (j = i; j < all.n && !strcmp(all.v[i], all.v[j]); j++)
			;
		strvec_pushf(&hist, "%zu %s", j - i, all.v[i]);
	}
	if (hist.n)
		qsort(hist.v, hist.n, sizeof(*hist.v), str_cmp);
	sb_addf(&sb, "0/%zu nodes are available:", nnodes);
	for (size_t i = 0; i < hist.n; i++)
		sb_addf(&sb, "%s%s", i ? ", " : " ", hist.v[i]);
	sb_addc(&sb, '.');
	strvec_clear(&all);
	strvec_clear(&hist);
	return sb_detach(&sb, NULL);
}

/* ---- scores and the choice ------------------------------------------------- */

/* The default profile's score plugins and weights (apis/config/v1
 * default_plugins.go); ImageLocality is left out: nodes report no images. */
static const struct {
	sched_score_fn *fn;
	int64_t weight;
} scorers[] = {
	{ sched_score_taints, 3 },        /* TaintToleration */
	{ sched_score_node_affinity, 2 }, /* NodeAffinity */
	{ sched_score_least_allocated, 1 }, /* NodeResourcesFit, LeastAllocated */
	{ sched_score_spread, 2 },        /* PodTopologySpread */
	{ sched_score_pod_affinity, 2 },  /* InterPodAffinity */
	{ sched_score_balanced, 1 },      /* NodeResourcesBalancedAllocation */
};

void sched_scores(const struct sched_ctx *c, const size_t *cand, size_t n, int64_t *total)
{
	int64_t *s = xcalloc(n, sizeof(*s));
	memset(total, 0, n * sizeof(*total));
	for (size_t k = 0; k < ARRAY_SIZE(scorers); k++) {
		memset(s, 0, n * sizeof(*s));
		scorers[k].fn(c, cand, n, s);
		for (size_t j = 0; j < n; j++)
			total[j] += scorers[k].weight * s[j];
	}
	free(s);
}

static size_t pick(const struct sched_ctx *c, const size_t *cand, size_t n)
{
	if (n == 1)
		return cand[0];
	int64_t *total = xcalloc(n, sizeof(*total));
	size_t best = 0;
	sched_scores(c, cand, n, total);
	for (size_t j = 1; j < n; j++)
		if (total[j] > total[best] ||
		    (total[j] == total[best] &&
		     strcmp(c->nodes[cand[j]].name, c->nodes[cand[best]].name) < 0))
			best = j;
	free(total);
	return cand[best];
}

/* Filter every node, then pick among the feasible ones; -1 and *ret_reason
 * (Kubernetes' message) when none is. */
static int place(const struct sched_ctx *c, char **ret_reason)
{
	struct strvec *why = xcalloc(c->nnodes, sizeof(*why));
	size_t *cand = xcalloc(c->nnodes, sizeof(*cand)), ncand = 0;
	int chosen = -1;
	for (size_t i = 0; i < c->nnodes; i++) {
		sched_filter(c, i, &why[i]);
		if (!why[i].n)
			cand[ncand++] = i;
	}
	if (ncand)
		chosen = (int)pick(c, cand, ncand);
	else
		*ret_reason = sched_fit_message(why, c->nnodes);
	for (size_t i = 0; i < c->nnodes; i++)
		strvec_clear(&why[i]);
	free(why);
	free(cand);
	return chosen;
}

int sched_place(const struct sched_request *req, const struct sched_node *nodes, size_t nnodes,
		const struct sched_pod *pods, size_t npods, char **ret_reason)
{
	struct sched_ctx c;
	char *reason = NULL;
	int chosen = -1;
	if (nnodes) {
		sched_ctx_init(&c, req, nodes, nnodes, pods, npods);
		chosen = place(&c, &reason);
		sched_ctx_release(&c);
	} else {
		reason = xstrdup(REASON_NO_NODES);
	}
	if (ret_reason)
		*ret_reason = reason;
	else
		free(reason);
	return chosen;
}
