/* model.c: the world of one pass — nodes from the repository's Node objects (pod
 * CIDRs allocated from the cluster CIDR when absent, recorded in the cluster
 * state), their readiness, and the pods they report. */
#include "reconcile/internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

const char *rc_setting(const struct rc_world *w, const char *key)
{
	return api_config_get(w->desired, key);
}

int64_t rc_duration_s(const struct rc_world *w, const char *key)
{
	int64_t ms = 0;
	api_duration_parse(rc_setting(w, key), &ms, NULL);
	return ms / 1000;
}

struct rc_node *rc_node_by_name(struct rc_world *w, const char *name)
{
	for (size_t i = 0; name && i < w->nnodes; i++)
		if (!strcmp(w->nodes[i].name, name))
			return &w->nodes[i];
	return NULL;
}

/* The i-th subnet of size /mask in an IPv4 CIDR, or NULL past its end. */
static char *nth_subnet(const char *cidr, int64_t mask, size_t i)
{
	const char *slash = strchr(cidr, '/');
	int64_t bits;
	struct in_addr a;
	if (!slash || parse_i64(slash + 1, 0, 32, &bits) < 0 || mask < bits || mask > 30)
		return NULL;
	char *ip = xstrndup(cidr, (size_t)(slash - cidr));
	int ok = inet_pton(AF_INET, ip, &a);
	free(ip);
	if (ok != 1 || i >= (1ull << (mask - bits)))
		return NULL;
	uint32_t base = ntohl(a.s_addr) & (bits ? ~0u << (32 - bits) : 0);
	uint32_t net = base + ((uint32_t)i << (32 - mask));
	struct in_addr out = { htonl(net) };
	char buf[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &out, buf, sizeof(buf));
	return xasprintf("%s/%lld", buf, (long long)mask);
}

static bool cidr_taken(const struct rc_world *w, const char *cidr, size_t upto)
{
	for (size_t i = 0; i < upto; i++)
		if (w->nodes[i].pod_cidr && !strcmp(w->nodes[i].pod_cidr, cidr))
			return true;
	return false;
}

static void allocate_cidrs(struct rc_world *w)
{
	int64_t mask = 24;
	parse_i64(rc_setting(w, "podCIDRMask"), 1, 32, &mask);
	const char *cluster = rc_setting(w, "clusterCIDR");
	for (size_t i = 0; i < w->nnodes; i++) {
		struct rc_node *n = &w->nodes[i];
		if (n->pod_cidr)
			continue;
		char *key = xasprintf("podCIDR/%s", n->name);
		const char *have = json_string_value(cluster_get(w->cluster, key));
		if (have && !cidr_taken(w, have, w->nnodes)) {
			n->pod_cidr = xstrdup(have);
		} else {
			for (size_t k = 0; !n->pod_cidr; k++) {
				char *c = nth_subnet(cluster, mask, k);
				if (!c)
					break;
				if (!cidr_taken(w, c, w->nnodes))
					n->pod_cidr = c;
				else
					free(c);
			}
			if (n->pod_cidr)
				cluster_set(w->cluster, key, json_string(n->pod_cidr));
		}
		free(key);
	}
}

static int64_t quantity_units(const json_t *v, bool milli)
{
	int64_t m = 0;
	if (json_is_string(v) && api_quantity_parse(json_string_value(v), &m, NULL) == 0)
		return milli ? m : m / 1000;
	if (json_is_integer(v))
		return milli ? json_integer_value(v) * 1000 : json_integer_value(v);
	return -1;
}

int rc_world_nodes(struct rc_world *w, struct gerr **err)
{
	size_t n = 0;
	for (size_t i = 0; i < w->desired->nobjs; i++)
		n += !strcmp(w->desired->objs[i].kind->kind, "Node") && !w->desired->objs[i].invalid;
	w->nodes = xcalloc(n + 1, sizeof(*w->nodes));
	for (size_t i = 0; i < w->desired->nobjs; i++) {
		const struct api_object *o = &w->desired->objs[i];
		if (strcmp(o->kind->kind, "Node") || o->invalid)
			continue;
		json_t *j = api_to_json(o->root);
		struct rc_node *nd = &w->nodes[w->nnodes++];
		nd->obj = o;
		nd->name = xstrdup(o->name);
		const char *ssh = json_string_value(json_object_get(json_object_get(json_object_get(j, "metadata"), "annotations"), "gitops.io/ssh"));
		nd->ssh = xstrdup(ssh ? ssh : o->name);
		nd->labels = json_deep_copy(json_object_get(json_object_get(j, "metadata"), "labels"));
		if (!nd->labels)
			nd->labels = json_object();
		if (!json_object_get(nd->labels, "kubernetes.io/hostname"))
			json_object_set_new(nd->labels, "kubernetes.io/hostname", json_string(nd->name));
		nd->taints = json_deep_copy(json_object_get(json_object_get(j, "spec"), "taints"));
		const char *cidr = json_string_value(json_object_get(json_object_get(j, "spec"), "podCIDR"));
		nd->pod_cidr = cidr ? xstrdup(cidr) : NULL;
		/* capacity overrides: status.allocatable / status.capacity in the manifest */
		const json_t *st = json_object_get(j, "status");
		const json_t *alloc = json_object_get(st, "allocatable") ? json_object_get(st, "allocatable")
									: json_object_get(st, "capacity");
		nd->alloc_cpu = quantity_units(json_object_get(alloc, "cpu"), true);
		nd->alloc_mem = quantity_units(json_object_get(alloc, "memory"), false);
		nd->alloc_pods = quantity_units(json_object_get(alloc, "pods"), false);
		nd->plan_pods = json_array();
		nd->changes = json_array();
		json_decref(j);
	}
	if (w->nnodes == 0)
		return gerr_set(err, GERR_FAIL, "no Node objects in the repository: declare each machine as "
						"a kind: Node with the annotation gitops.io/ssh (see docs/operations.md)");
	allocate_cidrs(w);
	return 0;
}

/* ---- what the nodes reported ---- */

static bool pod_ready(const json_t *ps)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(ps, "conditions"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "type")) ?: "", "Ready"))
			return !strcmp(json_string_value(json_object_get(c, "status")) ?: "", "True");
	return false;
}

static void add_pod(struct rc_world *w, struct rc_node *n, const json_t *ps, bool unknown)
{
	const char *uid = json_string_value(json_object_get(ps, "uid"));
	if (!uid)
		return;
	GROW(w->pods, w->apods, w->npods + 1);
	struct rc_pod *p = &w->pods[w->npods++];
	memset(p, 0, sizeof(*p));
	p->uid = xstrdup(uid);
	p->ns = xstrdup(json_string_value(json_object_get(ps, "namespace")) ?: "default");
	p->name = xstrdup(json_string_value(json_object_get(ps, "name")) ?: uid);
	p->node = n;
	p->labels = json_deep_copy(json_object_get(ps, "labels"));
	p->annotations = json_deep_copy(json_object_get(ps, "annotations"));
	if (!p->labels)
		p->labels = json_object();
	if (!p->annotations)
		p->annotations = json_object();
	p->unknown = unknown;
	if (unknown && json_string_value(json_object_get(ps, "ip")))
		p->last_ip = xstrdup(json_string_value(json_object_get(ps, "ip")));
	p->last_ready = unknown && json_is_true(json_object_get(ps, "ready"));
	p->status = unknown ? NULL : (json_t *)ps;
	p->ready = !unknown && pod_ready(ps);
	p->available = p->ready; /* minReadySeconds: see workloads.c */
}

static bool uid_in(const json_t *list, const json_t *uid)
{
	size_t i;
	json_t *x;
	json_array_foreach((json_t *)list, i, x)
		if (json_equal(x, uid))
			return true;
	return false;
}

/* Readiness of each node from this pass's reachability and the time it was first
 * seen unreachable (cluster state "unreachable/NODE"); pods of unreachable nodes
 * come from the last list recorded ("pods/NODE"), with the IP and readiness they had
 * then: as in Kubernetes, they stay endpoints until their node is NotReady. */
void rc_world_observe(struct rc_world *w)
{
	int64_t grace = rc_duration_s(w, "nodeGracePeriod"), evict = rc_duration_s(w, "evictionTimeout");
	for (size_t i = 0; i < w->nnodes; i++) {
		struct rc_node *n = &w->nodes[i];
		char *key = xasprintf("unreachable/%s", n->name), *pkey = xasprintf("pods/%s", n->name);
		char *ekey = xasprintf("evicted/%s", n->name);
		const json_t *evicted = cluster_get(w->cluster, ekey);
		if (n->reachable) {
			/* back: the pods evicted while it was away are not its any more (the
			 * plan leaves them out, so the node stops them) */
			cluster_set(w->cluster, key, NULL);
			size_t k;
			json_t *ps;
			json_array_foreach(json_object_get(n->status, "pods"), k, ps)
				if (!uid_in(evicted, json_object_get(ps, "uid")))
					add_pod(w, n, ps, false);
			cluster_set(w->cluster, ekey, NULL);
		} else {
			const json_t *since = cluster_get(w->cluster, key);
			if (!since)
				cluster_set(w->cluster, key, json_integer(w->now));
			int64_t t0 = since ? json_integer_value(since) : w->now;
			n->not_ready = w->now - t0 >= grace;
			n->evicted = w->now - t0 >= evict;
			size_t k;
			json_t *ps;
			json_array_foreach((json_t *)cluster_get(w->cluster, pkey), k, ps)
				add_pod(w, n, ps, true);
			if (n->evicted) {
				json_t *uids = json_array();
				json_array_foreach((json_t *)cluster_get(w->cluster, pkey), k, ps)
					json_array_append(uids, json_object_get(ps, "uid"));
				cluster_set(w->cluster, ekey, uids);
			}
		}
		free(key);
		free(pkey);
		free(ekey);
	}
}

void rc_world_release(struct rc_world *w)
{
	for (size_t i = 0; i < w->nnodes; i++) {
		struct rc_node *n = &w->nodes[i];
		free(n->name);
		free(n->ssh);
		free(n->pod_cidr);
		free(n->error);
		free(n->apply_error);
		json_decref(n->labels);
		json_decref(n->taints);
		json_decref(n->status);
		json_decref(n->plan_pods);
		json_decref(n->changes);
	}
	free(w->nodes);
	for (size_t i = 0; i < w->npods; i++) {
		free(w->pods[i].uid);
		free(w->pods[i].ns);
		free(w->pods[i].name);
		free(w->pods[i].last_ip);
		json_decref(w->pods[i].labels);
		json_decref(w->pods[i].annotations);
	}
	free(w->pods);
	rc_world_network_release(w);
	json_decref(w->cluster);
	json_decref(w->new_pods);
	sb_release(&w->log);
	memset(w, 0, sizeof(*w));
}
