/* scheduler_filter.c: the filter chain in kube-scheduler's order and its node-local filters. */
#include "reconcile/scheduler_internal.h"

#include <string.h>

/* A node stops at its first failing filter, as RunFilterPlugins does. */
static sched_filter_fn *const chain[] = {
	sched_filter_unschedulable, sched_filter_node_name, sched_filter_taints,
	sched_filter_node_affinity, sched_filter_ports,     sched_filter_resources,
	sched_filter_spread,        sched_filter_pod_affinity,
};

void sched_filter(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	for (size_t k = 0; k < ARRAY_SIZE(chain) && !why->n; k++)
		chain[k](c, node, why);
}

/* spec.unschedulable, unless the pod tolerates node.kubernetes.io/unschedulable. */
void sched_filter_unschedulable(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	const struct sched_taint t = { TAINT_UNSCHEDULABLE, "", "NoSchedule" };
	if (c->nodes[node].unschedulable && !sched_tolerates(c->tolerations, &t))
		strvec_push(why, REASON_UNSCHEDULABLE);
}

void sched_filter_node_name(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	const char *want = json_string_value(json_object_get(c->spec, "nodeName"));
	if (want && *want && strcmp(want, c->nodes[node].name))
		strvec_push(why, REASON_NODE_NAME);
}

/* The first NoSchedule/NoExecute taint not tolerated is named in the reason. */
void sched_filter_taints(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	struct sched_taint t;
	if (sched_untolerated(c->tolerations, &c->nodes[node], &t))
		strvec_pushf(why, REASON_TAINT_FMT, t.key, t.value);
}

void sched_filter_node_affinity(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	if (!sched_node_affinity_matches(c->spec, &c->nodes[node]))
		strvec_push(why, REASON_NODE_AFFINITY);
}

void sched_filter_ports(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	for (size_t i = 0; i < c->nports; i++)
		if (sched_port_conflict(c->nodes[node].host_ports, &c->ports[i])) {
			strvec_push(why, REASON_PORTS);
			return;
		}
}

/* fitsRequest: the pod count first; a pod requesting nothing fits otherwise;
 * then every resource short on the node, each a reason of its own. */
void sched_filter_resources(const struct sched_ctx *c, size_t node, struct strvec *why)
{
	const struct sched_node *n = &c->nodes[node];
	if (n->used_pods >= n->alloc_pods)
		strvec_push(why, REASON_PODS);
	if (c->cpu > 0 && c->cpu > n->alloc_cpu - n->used_cpu)
		strvec_push(why, REASON_CPU);
	if (c->mem > 0 && c->mem > n->alloc_mem - n->used_mem)
		strvec_push(why, REASON_MEMORY);
}
