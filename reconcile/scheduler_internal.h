/* reconcile/scheduler_internal.h: what the scheduler's files (scheduler*.c) share,
 * and what tests/unit/test_scheduler.c reaches into. No other module includes it.
 *
 * The scheduler follows kube-scheduler's default profile: filters run in its order
 * (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
 * NodeResourcesFit, PodTopologySpread, InterPodAffinity) and stop at a node's
 * first failing one; scores (0..SCHED_MAX_SCORE each, normalized per plugin as
 * upstream does) are summed with upstream's default weights.
 *
 * Ownership: everything here borrows from the caller's sched_request, sched_node
 * and sched_pod arrays. A struct sched_ctx owns only the arrays it allocates,
 * freed by sched_ctx_release(). Reason strings pushed into a strvec are copies.
 */
#ifndef GITOPS_RECONCILE_SCHEDULER_INTERNAL_H
#define GITOPS_RECONCILE_SCHEDULER_INTERNAL_H

#include "reconcile/reconcile.h"

#define SCHED_MAX_SCORE 100
#define LABEL_HOSTNAME "kubernetes.io/hostname"
#define LABEL_ZONE "topology.kubernetes.io/zone"
#define LABEL_NS_NAME "kubernetes.io/metadata.name"
#define TAINT_NOT_READY "node.kubernetes.io/not-ready"
#define TAINT_UNSCHEDULABLE "node.kubernetes.io/unschedulable"

/* Kubernetes' filter reasons, word for word. */
#define REASON_UNSCHEDULABLE "node(s) were unschedulable"
#define REASON_NODE_NAME "node(s) didn't match the requested node name"
#define REASON_TAINT_FMT "node(s) had untolerated taint {%s: %s}"
#define REASON_NODE_AFFINITY "node(s) didn't match Pod's node affinity/selector"
#define REASON_PORTS "node(s) didn't have free ports for the requested pod ports"
#define REASON_PODS "Too many pods"
#define REASON_CPU "Insufficient cpu"
#define REASON_MEMORY "Insufficient memory"
#define REASON_SPREAD "node(s) didn't match pod topology spread constraints"
#define REASON_SPREAD_LABEL REASON_SPREAD " (missing required label)"
#define REASON_POD_AFFINITY "node(s) didn't match pod affinity rules"
#define REASON_POD_ANTI_AFFINITY "node(s) didn't match pod anti-affinity rules"
#define REASON_NO_NODES "no nodes available to schedule pods"

/* ---- labels, selectors, taints, quantities, ports (scheduler_match.c) ----- */

/* A label lookup: the value of key, or NULL when the label is absent. */
typedef const char *(*sched_label_fn)(const void *ctx, const char *key);
/* ctx: a JSON object of string → string (or NULL: no labels). */
const char *sched_json_label(const void *labels, const char *key);
/* ctx: a struct sched_node. kubernetes.io/hostname defaults to the node's name,
 * as the kubelet labels every node. */
const char *sched_node_label(const void *node, const char *key);

/* A LabelSelector (matchLabels + matchExpressions In/NotIn/Exists/DoesNotExist):
 * NULL or JSON null selects nothing, {} everything, a malformed one nothing. */
bool sched_selector_matches(const json_t *sel, sched_label_fn get, const void *ctx);
/* The selector is an object with no requirement at all. */
bool sched_selector_is_empty(const json_t *sel);
/* obj's matchLabelKeys (the label must equal own's value) and mismatchLabelKeys
 * (must differ); keys own does not have are ignored. */
bool sched_label_keys_match(const json_t *obj, const json_t *own, sched_label_fn get,
			    const void *ctx);
/* The strings array holds s. */
bool sched_strings_contain(const json_t *arr, const char *s);

/* A NodeSelectorTerm: matchExpressions (also Gt and Lt, comparing integers) and
 * matchFields (metadata.name) ANDed; an empty or malformed term matches nothing. */
bool sched_node_term_matches(const json_t *term, const struct sched_node *n);
/* The pod's nodeSelector and required node affinity (terms ORed) accept n. */
bool sched_node_affinity_matches(const json_t *spec, const struct sched_node *n);

struct sched_taint {
	const char *key, *value, *effect; /* never NULL ("" when absent) */
};
/* The i-th taint of n, the not-ready one after the node's own; false past the end. */
bool sched_node_taint(const struct sched_node *n, size_t i, struct sched_taint *ret);
/* Some toleration of the array tolerates t (Equal/Exists, empty key, effects). */
bool sched_tolerates(const json_t *tolerations, const struct sched_taint *t);
/* The first NoSchedule/NoExecute taint of n not tolerated, into *ret. */
bool sched_untolerated(const json_t *tolerations, const struct sched_node *n,
		       struct sched_taint *ret);

/* An integer field clamped to [min, max] (the API's own bounds, so arithmetic on
 * it cannot overflow); dflt when absent or not an integer. */
int64_t sched_int_field(const json_t *o, const char *key, int64_t dflt, int64_t min, int64_t max);

/* A Quantity (string "250m", or a JSON number) in milli-units; 0 when absent,
 * negative or invalid. */
int64_t sched_quantity_milli(const json_t *q);

/* A host port the pod wants: hostIP "0.0.0.0" when unset, protocol "TCP". */
struct sched_port {
	int64_t port;
	const char *protocol, *ip;
};
/* The pod's host ports (containers and sidecar init containers; with
 * hostNetwork, containerPort when hostPort is unset); *ret is malloc'ed. */
size_t sched_pod_ports(const json_t *spec, struct sched_port **ret);
/* A port of the used array ({"port","protocol","hostIP"}) conflicts with p. */
bool sched_port_conflict(const json_t *used, const struct sched_port *p);

/* ---- one placement (scheduler.c) ----------------------------------------- */

struct sched_spread_state;
struct sched_podaff_state;

struct sched_ctx {
	const struct sched_request *req;
	const json_t *spec, *tolerations;
	const struct sched_node *nodes;
	size_t nnodes;
	const struct sched_pod *pods;
	size_t npods;
	ssize_t *pod_node;            /* nodes[] index of pods[i]'s node, -1 if none */
	int64_t cpu, mem;             /* effective requests (fit, balanced allocation) */
	int64_t nz_cpu, nz_mem;       /* with 100m / 200Mi for missing ones (least allocated) */
	struct sched_port *ports;     /* host ports wanted */
	size_t nports;
	struct sched_spread_state *spread; /* DoNotSchedule constraints' domains */
	struct sched_podaff_state *podaff; /* required pod (anti-)affinity counts */
};

void sched_ctx_init(struct sched_ctx *c, const struct sched_request *req,
		    const struct sched_node *nodes, size_t nnodes,
		    const struct sched_pod *pods, size_t npods);
void sched_ctx_release(struct sched_ctx *c);
/* The pod's requests with (nonzero) or without the scoring defaults. */
void sched_pod_requests(const json_t *spec, bool nonzero, int64_t *ret_cpu, int64_t *ret_mem);
/* Kubernetes' message from every node's reasons: "0/N nodes are available: ...". */
char *sched_fit_message(const struct strvec *why, size_t nnodes);

/* ---- filters: push the node's reasons into why (none: it passes) --------- */

typedef void sched_filter_fn(const struct sched_ctx *c, size_t node, struct strvec *why);
/* scheduler_filter.c: the whole chain, stopping at the first failing filter. */
sched_filter_fn sched_filter;
sched_filter_fn sched_filter_unschedulable, sched_filter_node_name, sched_filter_taints,
	sched_filter_node_affinity, sched_filter_ports, sched_filter_resources;
/* scheduler_spread.c */
void sched_spread_prepare(struct sched_ctx *c);
void sched_spread_release(struct sched_spread_state *s);
sched_filter_fn sched_filter_spread;
/* scheduler_podaffinity.c */
void sched_podaff_prepare(struct sched_ctx *c);
void sched_podaff_release(struct sched_podaff_state *s);
sched_filter_fn sched_filter_pod_affinity;

/* ---- scores: out[j] (0..100) for the feasible nodes cand[0..n) ------------- */

typedef void sched_score_fn(const struct sched_ctx *c, const size_t *cand, size_t n,
			    int64_t *out);
/* scheduler_score.c */
sched_score_fn sched_score_taints, sched_score_node_affinity, sched_score_least_allocated,
	sched_score_balanced;
/* scheduler_spread.c, scheduler_podaffinity.c */
sched_score_fn sched_score_spread, sched_score_pod_affinity;
/* helper.DefaultNormalizeScore: scale to 0..100 by the maximum (reversed: 100 - x). */
void sched_normalize(int64_t *s, size_t n, bool reverse);
/* The weighted sum of every score for each of cand[] into total[] (scheduler.c). */
void sched_scores(const struct sched_ctx *c, const size_t *cand, size_t n, int64_t *total);

#endif
