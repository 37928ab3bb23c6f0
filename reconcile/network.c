/* network.c: the `network` object of every plan (docs/node-protocol.md, "The
 * network"): settings, namespaces, every pod of the cluster, the Services with
 * their allocated ClusterIPs and NodePorts and their endpoints, and the
 * NetworkPolicies — the input of the nftables compiler (netpol/netpol.h).
 *
 * It is built once per pass, seen from no node (every pod "local": false); a
 * node's own view differs only in its pods and endpoints being "local": true
 * (with their uid, even before they have an IP). A hash of the shared object is
 * kept in the cluster state ("networkHash"): when it changes every node gets a new
 * plan, and a pass that changes nothing sends nothing. */
#include "reconcile/internal.h"

#include <stdlib.h>
#include <string.h>

/* Bumped when the shape of the network object changes, so that nodes get it anew. */
#define NETWORK_FORMAT 1
#define NETWORK_HASH_KEY "networkHash"

struct npod {
	json_t *entry;          /* its pods[] entry (owned) */
	const char *ns, *name, *uid;
	const char *node;       /* borrowed from the world's nodes */
	const char *hostname, *subdomain;
	bool ready, terminal, has_ip;
};

struct rc_net {
	json_t *doc;            /* the shared object (pods without an IP included) */
	const char **pod_node;  /* node of doc.pods[i] */
	json_t *remote;         /* doc.services with only the endpoints that have an IP */
	json_t *cache;          /* read back from network-cache.json: what pod_node points
				 * into, and "podCIDRs" (node → its pod CIDR then) */
	/* computed once, when a node's digest is first needed (net_hashes): */
	unsigned char (*pod_h)[32];  /* H of doc.pods[i] */
	unsigned char (*svc_h)[32];  /* H of remote[i] */
	json_t *changed;        /* on the last pass's: [[its index or -1, now's or -1]] of
				 * the Services that differ from now's (changed_services) */
};

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *str_or_empty(const char *s)
{
	return json_string(s ? s : "");
}

/* ---- pods ---- */

static json_t *container_ports(const json_t *spec)
{
	json_t *out = json_array(), *c, *p;
	size_t i, k;
	json_array_foreach(json_object_get(spec, "containers"), i, c)
		json_array_foreach(json_object_get(c, "ports"), k, p)
			json_array_append_new(out, json_pack("{s:o, s:O, s:s}", "name", str_or_empty(jstr(p, "name")),
							     "containerPort", json_object_get(p, "containerPort"),
							     "protocol", jstr(p, "protocol") ?: "TCP"));
	return out;
}

static int cmp_npod(const void *x, const void *y)
{
	const struct npod *a = x, *b = y;
	int c = strcmp(a->ns, b->ns);
	if (!c)
		c = strcmp(a->name, b->name);
	return c ? c : strcmp(a->uid, b->uid);
}

/* Every pod the plans list (kept, new, and kept as they are), with what the nodes
 * report of it: its IP, readiness and phase. */
static struct npod *collect_pods(const struct rc_world *w, size_t *ret_n)
{
	json_t *observed = json_object(); /* uid → index in w->pods */
	for (size_t i = 0; i < w->npods; i++)
		json_object_set_new(observed, w->pods[i].uid, json_integer((json_int_t)i));
	size_t n = 0;
	for (size_t i = 0; i < w->nnodes; i++)
		n += json_array_size(w->nodes[i].plan_pods);
	struct npod *v = xcalloc(n + 1, sizeof(*v));
	n = 0;
	for (size_t i = 0; i < w->nnodes; i++) {
		size_t k;
		json_t *e;
		json_array_foreach(w->nodes[i].plan_pods, k, e) {
			const char *uid = jstr(e, "uid");
			if (!uid)
				continue;
			const json_t *idx = json_object_get(observed, uid);
			const struct rc_pod *p = idx ? &w->pods[json_integer_value(idx)] : NULL;
			const json_t *spec = json_object_get(e, "spec");
			const json_t *labels = json_object_get(e, "labels") ?: (p ? p->labels : NULL);
			const char *ip = p && p->status ? jstr(p->status, "podIP") : NULL;
			const char *phase = p && p->status ? jstr(p->status, "phase") : NULL;
			bool ready = p && p->ready;
			if (p && p->unknown) { /* its node is unreachable: what it said last, until
						* NotReady, when Kubernetes marks its pods not ready */
				ip = p->last_ip;
				ready = p->last_ready && !w->nodes[i].not_ready;
			}
			json_t *entry = json_pack("{s:s, s:s, s:s}", "uid", uid, "namespace", jstr(e, "namespace") ?: "default",
						  "name", jstr(e, "name") ?: uid);
			if (ip && *ip)
				json_object_set_new(entry, "ip", json_string(ip));
			json_object_set_new(entry, "local", json_false());
			json_object_set_new(entry, "labels", labels ? json_deep_copy(labels) : json_object());
			json_object_set_new(entry, "hostname", str_or_empty(jstr(spec, "hostname")));
			json_object_set_new(entry, "subdomain", str_or_empty(jstr(spec, "subdomain")));
			json_object_set_new(entry, "hostNetwork", json_boolean(json_is_true(json_object_get(spec, "hostNetwork"))));
			json_object_set_new(entry, "ports", container_ports(spec));
			v[n++] = (struct npod){
				.entry = entry, .ns = jstr(entry, "namespace"), .name = jstr(entry, "name"), .uid = jstr(entry, "uid"),
				.node = w->nodes[i].name, .hostname = jstr(entry, "hostname"), .subdomain = jstr(entry, "subdomain"),
				.ready = ready, .has_ip = ip && *ip,
				.terminal = phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")),
			};
		}
	}
	json_decref(observed);
	if (n)
		qsort(v, n, sizeof(*v), cmp_npod);
	*ret_n = n;
	return v;
}

/* ---- endpoints ---- */

static bool labels_match(const json_t *selector, const json_t *labels)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)selector, k, v)
		if (!json_equal(v, json_object_get(labels, k)))
			return false;
	return true;
}

/* The pods of namespace ns whose labels match the Service's selector, as
 * Kubernetes' endpoints controller picks them (not finished, not being removed). */
static json_t *selected_endpoints(const struct npod *pods, size_t n, const char *ns, const char *svc,
				  const json_t *selector)
{
	json_t *out = json_array();
	size_t lo = 0, hi = n;
	while (lo < hi) { /* the first pod of ns */
		size_t mid = (lo + hi) / 2;
		if (strcmp(pods[mid].ns, ns) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < n && !strcmp(pods[i].ns, ns); i++) {
		const struct npod *p = &pods[i];
		if (p->terminal || !labels_match(selector, json_object_get(p->entry, "labels")))
			continue;
		bool named = *p->hostname && !strcmp(p->subdomain, svc);
		json_t *ep = json_object();
		if (p->has_ip)
			json_object_set(ep, "ip", json_object_get(p->entry, "ip"));
		json_object_set_new(ep, "node", json_string(p->node));
		json_object_set_new(ep, "local", json_false());
		json_object_set_new(ep, "ready", json_boolean(p->ready));
		json_object_set_new(ep, "uid", json_string(p->uid));
		json_object_set_new(ep, "hostname", json_string(named ? p->hostname : ""));
		json_object_set_new(ep, "name", json_string(p->name));
		json_array_append_new(out, ep);
	}
	return out;
}

/* The target port of service port sp among an Endpoints subset's ports (matched
 * by name; an unnamed service port takes a subset's only port), or 0. */
static json_int_t subset_port(const json_t *ports, const json_t *sp)
{
	const char *name = jstr(sp, "name") ?: "";
	size_t i;
	json_t *p;
	json_array_foreach((json_t *)ports, i, p)
		if (!strcmp(jstr(p, "name") ?: "", name) || (!*name && json_array_size(ports) == 1))
			return json_integer_value(json_object_get(p, "port"));
	return 0;
}

/* A Service without a selector: the addresses of the Endpoints object of the same
 * name in git (written by hand, e.g. for a database outside the cluster). */
static json_t *manual_endpoints(const struct api_set *desired, const char *ns, const char *name,
				const json_t *svc_ports)
{
	json_t *out = json_array();
	const struct api_object *o = NULL;
	for (size_t i = 0; i < desired->nobjs && !o; i++)
		if (!desired->objs[i].invalid && !strcmp(desired->objs[i].kind->kind, "Endpoints") &&
		    !strcmp(desired->objs[i].ns, ns) && !strcmp(desired->objs[i].name, name))
			o = &desired->objs[i];
	json_t *subsets = o ? api_to_json(yn_get(o->root, "subsets")) : NULL, *ss, *a, *sp;
	size_t i, k, j;
	json_array_foreach(subsets, i, ss) {
		json_t *map = json_object();
		json_array_foreach((json_t *)svc_ports, j, sp) {
			json_int_t port = subset_port(json_object_get(ss, "ports"), sp);
			const char *pname = jstr(sp, "name");
			char *key = pname && *pname ? xstrdup(pname)
						    : xasprintf("%lld", (long long)json_integer_value(json_object_get(sp, "port")));
			if (port > 0)
				json_object_set_new(map, key, json_integer(port));
			free(key);
		}
		static const char *const lists[] = { "addresses", "notReadyAddresses" };
		for (int l = 0; l < 2; l++)
			json_array_foreach(json_object_get(ss, lists[l]), k, a)
				if (jstr(a, "ip"))
					json_array_append_new(out, json_pack("{s:s, s:o, s:b, s:b, s:o, s:o, s:O}", "ip", jstr(a, "ip"),
									     "node", str_or_empty(jstr(a, "nodeName")), "local", 0,
									     "ready", l == 0, "hostname", str_or_empty(jstr(a, "hostname")),
									     "name", str_or_empty(jstr(json_object_get(a, "targetRef"), "name")),
									     "ports", map));
		json_decref(map);
	}
	json_decref(subsets);
	return out;
}

/* ---- Services ---- */

static json_t *service_ports(const json_t *spec, const json_t *alloc)
{
	json_t *out = json_array(), *p;
	size_t i;
	json_array_foreach(json_object_get(spec, "ports"), i, p) {
		json_t *port = json_object_get(p, "port"), *target = json_object_get(p, "targetPort");
		char num[24];
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(port));
		json_t *np = json_object_get(json_object_get(alloc, "nodePorts"), num);
		json_array_append_new(out, json_pack("{s:o, s:O, s:O, s:s, s:I}", "name", str_or_empty(jstr(p, "name")),
						     "port", port, "targetPort", target ? target : port, "protocol",
						     jstr(p, "protocol") ?: "TCP", "nodePort",
						     np ? json_integer_value(np) : json_integer_value(json_object_get(p, "nodePort"))));
	}
	return out;
}

static json_t *load_balancer_ips(const json_t *svc)
{
	json_t *out = json_array(), *in;
	size_t i;
	json_array_foreach(json_object_get(json_object_get(json_object_get(svc, "status"), "loadBalancer"), "ingress"), i, in)
		if (jstr(in, "ip"))
			json_array_append_new(out, json_string(jstr(in, "ip")));
	return out;
}

static json_t *service_entry(const struct rc_world *w, const struct api_object *o, const struct npod *pods,
			     size_t npods)
{
	json_t *svc = api_to_json(o->root), *spec = json_object_get(svc, "spec");
	const json_t *alloc = svc_allocation(w->cluster, o->ns, o->name);
	const char *type = jstr(spec, "type") ?: "ClusterIP";
	json_t *e = json_pack("{s:s, s:s, s:s}", "namespace", o->ns, "name", o->name, "type", type);
	json_object_set_new(e, "clusterIP", str_or_empty(jstr(alloc, "clusterIP") ?: jstr(spec, "clusterIP")));
	json_object_set_new(e, "ports", service_ports(spec, alloc));
	json_t *eips = json_object_get(spec, "externalIPs");
	json_object_set_new(e, "externalIPs", json_is_array(eips) ? json_deep_copy(eips) : json_array());
	json_t *lb = load_balancer_ips(svc);
	if (json_array_size(lb))
		json_object_set(e, "loadBalancerIPs", lb);
	json_decref(lb);
	const char *aff = jstr(spec, "sessionAffinity") ?: "None";
	json_object_set_new(e, "sessionAffinity", json_string(aff));
	if (!strcmp(aff, "ClientIP")) {
		json_t *t = json_object_get(json_object_get(json_object_get(spec, "sessionAffinityConfig"), "clientIP"),
					    "timeoutSeconds");
		json_object_set_new(e, "timeoutSeconds", json_integer(json_is_integer(t) ? json_integer_value(t) : 10800));
	}
	json_object_set_new(e, "externalTrafficPolicy", json_string(jstr(spec, "externalTrafficPolicy") ?: "Cluster"));
	json_object_set_new(e, "internalTrafficPolicy", json_string(jstr(spec, "internalTrafficPolicy") ?: "Cluster"));
	json_object_set_new(e, "publishNotReadyAddresses",
			    json_boolean(json_is_true(json_object_get(spec, "publishNotReadyAddresses"))));
	if (!strcmp(type, "ExternalName"))
		json_object_set_new(e, "externalName", str_or_empty(jstr(spec, "externalName")));
	const json_t *sel = json_object_get(spec, "selector");
	if (!strcmp(type, "ExternalName"))
		json_object_set_new(e, "endpoints", json_array());
	else if (json_object_size(sel))
		json_object_set_new(e, "endpoints", selected_endpoints(pods, npods, o->ns, o->name, sel));
	else
		json_object_set_new(e, "endpoints", manual_endpoints(w->desired, o->ns, o->name, json_object_get(e, "ports")));
	json_decref(svc);
	return e;
}

/* The Service without the endpoints that have no IP: what nodes other than the
 * endpoints' own see. */
static json_t *remote_service(json_t *svc)
{
	json_t *eps = json_object_get(svc, "endpoints"), *ep;
	size_t i;
	bool all = true;
	json_array_foreach(eps, i, ep)
		all &= json_object_get(ep, "ip") != NULL;
	if (all)
		return json_incref(svc);
	json_t *out = json_copy(svc), *keep = json_array();
	json_array_foreach(eps, i, ep)
		if (json_object_get(ep, "ip"))
			json_array_append(keep, ep);
	json_object_set_new(out, "endpoints", keep);
	return out;
}

/* ---- the desired objects: by kind, sorted by namespace and name ---- */

static int cmp_obj(const void *x, const void *y)
{
	const struct api_object *a = *(const struct api_object *const *)x, *b = *(const struct api_object *const *)y;
	int c = strcmp(a->ns, b->ns);
	return c ? c : strcmp(a->name, b->name);
}

static const struct api_object **objects_of(const struct api_set *s, const char *kind, size_t *ret_n)
{
	const struct api_object **v = xcalloc(s->nobjs + 1, sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < s->nobjs; i++)
		if (!s->objs[i].invalid && !strcmp(s->objs[i].kind->kind, kind))
			v[n++] = &s->objs[i];
	if (n)
		qsort(v, n, sizeof(*v), cmp_obj);
	*ret_n = n;
	return v;
}

static json_t *policies(const struct api_set *s)
{
	size_t n;
	const struct api_object **v = objects_of(s, "NetworkPolicy", &n);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *spec = api_to_json(yn_get(v[i]->root, "spec"));
		json_t *p = json_pack("{s:s, s:s}", "namespace", v[i]->ns, "name", v[i]->name);
		static const char *const keys[] = { "podSelector", "policyTypes", "ingress", "egress" };
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
			if (json_object_get(spec, keys[k]))
				json_object_set(p, keys[k], json_object_get(spec, keys[k]));
		if (!json_object_get(p, "podSelector"))
			json_object_set_new(p, "podSelector", json_object());
		json_array_append_new(out, p);
		json_decref(spec);
	}
	free(v);
	return out;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Namespace objects (with their labels) and every namespace something uses. */
static json_t *namespaces(const struct api_set *s, const json_t *pods, const json_t *services, const json_t *pols)
{
	json_t *labels = json_object();
	const json_t *lists[] = { pods, services, pols };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i;
		json_t *x;
		json_array_foreach((json_t *)lists[l], i, x)
			if (jstr(x, "namespace") && !json_object_get(labels, jstr(x, "namespace")))
				json_object_set_new(labels, jstr(x, "namespace"), json_object());
	}
	size_t n;
	const struct api_object **v = objects_of(s, "Namespace", &n);
	for (size_t i = 0; i < n; i++) {
		json_t *l = api_to_json(yn_path(v[i]->root, "metadata.labels"));
		json_object_set_new(labels, v[i]->name, json_is_object(l) ? l : json_object());
		if (!json_is_object(l))
			json_decref(l);
	}
	free(v);
	const char **names = xcalloc(json_object_size(labels) + 1, sizeof(*names));
	const char *k;
	json_t *x;
	n = 0;
	json_object_foreach(labels, k, x)
		names[n++] = k;
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(out, json_pack("{s:s, s:O}", "name", names[i], "labels", json_object_get(labels, names[i])));
	free(names);
	json_decref(labels);
	return out;
}

/* ---- the pass ---- */

static void net_free(struct rc_net *net)
{
	if (!net)
		return;
	json_decref(net->doc);
	json_decref(net->remote);
	json_decref(net->cache);
	json_decref(net->changed);
	free(net->pod_h);
	free(net->svc_h);
	free(net->pod_node);
	free(net);
}

void rc_world_network_release(struct rc_world *w)
{
	net_free(w->net);
	w->net = NULL;
}

static struct rc_net *build(const struct rc_world *w)
{
	struct rc_net *net = xcalloc(1, sizeof(*net));
	size_t npods, nsvc;
	struct npod *pods = collect_pods(w, &npods);
	json_t *jpods = json_array(), *jsvcs = json_array();
	net->pod_node = xcalloc(npods + 1, sizeof(*net->pod_node));
	for (size_t i = 0; i < npods; i++) {
		json_array_append(jpods, pods[i].entry);
		net->pod_node[i] = pods[i].node;
	}
	const struct api_object **svcs = objects_of(w->desired, "Service", &nsvc);
	net->remote = json_array();
	for (size_t i = 0; i < nsvc; i++) {
		json_t *e = service_entry(w, svcs[i], pods, npods);
		json_array_append_new(net->remote, remote_service(e));
		json_array_append_new(jsvcs, e);
	}
	free(svcs);
	json_t *pols = policies(w->desired);
	json_t *nss = namespaces(w->desired, jpods, jsvcs, pols);
	net->doc = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "clusterCIDR", rc_setting(w, "clusterCIDR"),
			     "serviceCIDR", rc_setting(w, "serviceCIDR"), "clusterDomain", rc_setting(w, "clusterDomain"),
			     "dnsServer", rc_setting(w, "dnsServer"), "namespaces", nss, "pods", jpods, "services", jsvcs,
			     "policies", pols);
	for (size_t i = 0; i < npods; i++)
		json_decref(pods[i].entry);
	free(pods);
	return net;
}

/* Everything the nodes' network objects are made of (new reference). */
static json_t *network_all(const struct rc_world *w, const struct rc_net *net)
{
	json_t *nodes = json_array(), *cidrs = json_object();
	size_t n = json_array_size(json_object_get(net->doc, "pods"));
	for (size_t i = 0; i < n; i++)
		json_array_append_new(nodes, json_string(net->pod_node[i]));
	for (size_t i = 0; i < w->nnodes; i++)
		json_object_set_new(cidrs, w->nodes[i].name, w->nodes[i].pod_cidr ? json_string(w->nodes[i].pod_cidr) : json_null());
	return json_pack("{s:i, s:O, s:o, s:o}", "format", NETWORK_FORMAT, "network", net->doc, "podNodes", nodes,
			 "podCIDRs", cidrs);
}

static char *network_hash(const struct rc_world *w, const struct rc_net *net)
{
	json_t *all = network_all(w, net);
	char *h = api_json_sha256(all);
	json_decref(all);
	return h;
}

int rc_services(struct rc_world *w, json_t **ret_network, struct gerr **err)
{
	if (svc_allocate(w->desired, w->cluster, w->now, err) < 0)
		return -1;
	rc_world_network_release(w);
	w->net = build(w);
	char *h = network_hash(w, w->net);
	if (cluster_set(w->cluster, NETWORK_HASH_KEY, json_string(h)))
		for (size_t i = 0; i < w->nnodes; i++)
			if (w->nodes[i].reachable)
				json_array_append_new(w->nodes[i].changes, json_string("~ network"));
	free(h);
	if (ret_network)
		*ret_network = json_incref(w->net->doc);
	return 0;
}

json_t *rc_network_endpoint_uids(const struct rc_world *w)
{
	json_t *out = json_object(), *svc, *ep;
	size_t i, k;
	json_array_foreach(json_object_get(w->net ? w->net->doc : NULL, "services"), i, svc)
		json_array_foreach(json_object_get(svc, "endpoints"), k, ep)
			if (jstr(ep, "uid"))
				json_object_set_new(out, jstr(ep, "uid"), json_true());
	return out;
}

/* ---- one node's view ---- */

static json_t *local_copy(const json_t *entry)
{
	json_t *c = json_copy((json_t *)entry);
	json_object_set_new(c, "local", json_true());
	return c;
}

static bool ours(const json_t *ep, const char *node)
{
	return jstr(ep, "uid") && !strcmp(jstr(ep, "node") ?: "", node);
}

static json_t *node_service(const json_t *svc, const json_t *remote, const char *node)
{
	json_t *eps = json_object_get(svc, "endpoints"), *ep;
	size_t i;
	bool any = false;
	json_array_foreach(eps, i, ep)
		any |= ours(ep, node);
	if (!any)
		return json_incref((json_t *)remote);
	json_t *out = json_copy((json_t *)svc), *list = json_array();
	json_array_foreach(eps, i, ep) {
		if (ours(ep, node))
			json_array_append_new(list, local_copy(ep));
		else if (json_object_get(ep, "ip"))
			json_array_append(list, ep);
	}
	json_object_set_new(out, "endpoints", list);
	return out;
}

/* What a node's view has besides its pods and Services (new reference). */
static json_t *view_settings(const struct rc_net *net, const char *pod_cidr)
{
	const json_t *doc = net->doc;
	json_t *out = json_object();
	json_object_set(out, "clusterCIDR", json_object_get(doc, "clusterCIDR"));
	if (pod_cidr)
		json_object_set_new(out, "podCIDR", json_string(pod_cidr));
	static const char *const keys[] = { "serviceCIDR", "clusterDomain", "dnsServer", "namespaces", "policies" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		json_object_set(out, keys[i], json_object_get(doc, keys[i]));
	return out;
}

/* Pod i as node `node` sees it (new reference), or NULL: another node's without an IP. */
static json_t *view_pod(const struct rc_net *net, size_t i, const char *node)
{
	json_t *x = json_array_get(json_object_get(net->doc, "pods"), i);
	if (net->pod_node[i] && !strcmp(net->pod_node[i], node))
		return local_copy(x);
	return json_object_get(x, "ip") ? json_incref(x) : NULL;
}

/* Service i as node `node` sees it (new reference). */
static json_t *view_service(const struct rc_net *net, size_t i, const char *node)
{
	return node_service(json_array_get(json_object_get(net->doc, "services"), i), json_array_get(net->remote, i),
			    node);
}

/* The network node `node` is sent (new reference): its own pods and endpoints
 * "local", the others' only when they have an IP. */
static json_t *view_of(const struct rc_net *net, const char *node, const char *pod_cidr)
{
	json_t *out = view_settings(net, pod_cidr), *pods = json_array(), *svcs = json_array(), *x;
	size_t n = json_array_size(json_object_get(net->doc, "pods"));
	for (size_t i = 0; i < n; i++)
		if ((x = view_pod(net, i, node)))
			json_array_append_new(pods, x);
	json_object_set_new(out, "pods", pods);
	n = json_array_size(json_object_get(net->doc, "services"));
	for (size_t i = 0; i < n; i++)
		json_array_append_new(svcs, view_service(net, i, node));
	json_object_set_new(out, "services", svcs);
	return out;
}

/* The hashes of the pods and Services every view shares, once. */
static void net_hashes(struct rc_net *net)
{
	if (net->pod_h)
		return;
	size_t np = json_array_size(json_object_get(net->doc, "pods")), ns = json_array_size(net->remote), i;
	json_t *x;
	net->pod_h = xcalloc(np + 1, sizeof(*net->pod_h));
	net->svc_h = xcalloc(ns + 1, sizeof(*net->svc_h));
	json_array_foreach(json_object_get(net->doc, "pods"), i, x)
		api_hash_json(x, net->pod_h[i]);
	json_array_foreach(net->remote, i, x)
		api_hash_json(x, net->svc_h[i]);
}

/* api_netsum_of(view_of(net, node, pod_cidr)), from the shared hashes: only this
 * node's own pods and the Services it has endpoints of are hashed. */
static void view_sum(struct rc_net *net, const char *node, const char *pod_cidr, struct api_netsum *out)
{
	net_hashes(net);
	json_t *set = view_settings(net, pod_cidr), *x;
	api_hash_json(set, out->rest);
	json_decref(set);
	memset(out->sum, 0, sizeof(out->sum));
	unsigned char h[32];
	size_t n = json_array_size(json_object_get(net->doc, "pods"));
	for (size_t i = 0; i < n; i++) {
		if (net->pod_node[i] && !strcmp(net->pod_node[i], node)) {
			x = view_pod(net, i, node);
			api_hash_json(x, h);
			api_sum_add(out->rest, h, 1);
			json_decref(x);
		} else if (json_object_get(json_array_get(json_object_get(net->doc, "pods"), i), "ip")) {
			api_sum_add(out->rest, net->pod_h[i], 1);
		}
	}
	n = json_array_size(net->remote);
	for (size_t i = 0; i < n; i++) {
		x = view_service(net, i, node);
		if (x == json_array_get(net->remote, i)) {
			api_sum_add(out->sum, net->svc_h[i], 1);
		} else {
			api_hash_json(x, h);
			api_sum_add(out->sum, h, 1);
		}
		json_decref(x);
	}
}

json_t *rc_network_for(const struct rc_world *w, const struct rc_node *n)
{
	return w->net ? view_of(w->net, n->name, n->pod_cidr) : NULL;
}

/* ---- what the nodes have: the network of the last pass, and deltas from it ---- */

#define CACHE_FILE "network-cache.json"

struct rc_net *rc_network_cache_load(const char *state_dir)
{
	char *path = xasprintf("%s/" CACHE_FILE, state_dir);
	json_t *c = json_load_file(path, 0, NULL);
	free(path);
	json_t *doc = json_object_get(c, "network"), *nodes = json_object_get(c, "podNodes");
	if (json_integer_value(json_object_get(c, "format")) != NETWORK_FORMAT || !json_is_object(doc) ||
	    json_array_size(nodes) != json_array_size(json_object_get(doc, "pods"))) {
		json_decref(c);
		return NULL;
	}
	struct rc_net *net = xcalloc(1, sizeof(*net));
	net->cache = c;
	net->doc = json_incref(doc);
	net->pod_node = xcalloc(json_array_size(nodes) + 1, sizeof(*net->pod_node));
	size_t i;
	json_t *x;
	json_array_foreach(nodes, i, x)
		net->pod_node[i] = json_string_value(x);
	net->remote = json_array();
	json_array_foreach(json_object_get(doc, "services"), i, x)
		json_array_append_new(net->remote, remote_service(x));
	return net;
}

void rc_network_cache_free(struct rc_net *net)
{
	net_free(net);
}

void rc_network_cache_save(const struct rc_world *w, const struct rc_net *prev, const char *state_dir)
{
	if (!w->net)
		return;
	json_t *all = network_all(w, w->net);
	if (!prev || !json_equal(all, prev->cache)) {
		char *path = xasprintf("%s/" CACHE_FILE, state_dir), *text = json_dumps(all, JSON_COMPACT);
		if (text)
			write_file_atomic(path, text, strlen(text), 0600, NULL);
		free(text);
		free(path);
	}
	json_decref(all);
}

static char *service_key(const json_t *svc)
{
	return xasprintf("%s/%s", jstr(svc, "namespace") ?: "", jstr(svc, "name") ?: "");
}

/* prev->changed: the Services of the last pass's document and now's that differ, as
 * index pairs (-1: not there), once per pass. A Service equal in both is equal in
 * every node's view of them. */
static const json_t *changed_services(struct rc_net *prev, const struct rc_net *now)
{
	if (prev->changed)
		return prev->changed;
	json_t *had = json_object(), *s;
	prev->changed = json_array();
	size_t i;
	json_array_foreach(json_object_get(prev->doc, "services"), i, s) {
		char *k = service_key(s);
		json_object_set_new(had, k, json_integer((json_int_t)i));
		free(k);
	}
	json_array_foreach(json_object_get(now->doc, "services"), i, s) {
		char *k = service_key(s);
		json_t *at = json_object_get(had, k);
		json_int_t pi = at ? json_integer_value(at) : -1;
		if (pi < 0 || !json_equal(json_array_get(json_object_get(prev->doc, "services"), (size_t)pi), s))
			json_array_append_new(prev->changed, json_pack("[I, I]", pi, (json_int_t)i));
		json_object_del(had, k);
		free(k);
	}
	const char *k;
	json_t *v;
	json_object_foreach(had, k, v)
		json_array_append_new(prev->changed, json_pack("[I, i]", json_integer_value(v), -1));
	json_decref(had);
	return prev->changed;
}

/* The pods of the view at the endpoints of the Services (either version) with a named
 * targetPort, which the node resolves it on; NULL when there are none. */
static json_t *named_pods(const struct rc_net *net, const char *node, const json_t *svcs, const json_t *was)
{
	json_t *ips = json_object(), *s, *out = NULL, *x;
	const char *key;
	json_object_foreach((json_t *)svcs, key, s)
		api_net_named_ips(s, ips);
	json_object_foreach((json_t *)was, key, s)
		api_net_named_ips(s, ips);
	size_t n = json_object_size(ips) ? json_array_size(json_object_get(net->doc, "pods")) : 0;
	for (size_t i = 0; i < n; i++)
		if ((x = view_pod(net, i, node))) {
			if (jstr(x, "ip") && json_object_get(ips, jstr(x, "ip"))) {
				if (!out)
					out = json_array();
				json_array_append(out, x);
			}
			json_decref(x);
		}
	json_decref(ips);
	return out;
}

/* {"base", "services": {"NS/NAME": object or null}, "was": {the same keys: as the
 * base has them}, "pods": those a named targetPort of theirs is resolved on} of node
 * `node` from prev to now, or NULL when more than 64 and more than a quarter of the
 * Services changed (the whole is cheaper then). */
static json_t *services_delta(struct rc_net *prev, const struct rc_net *now, const char *node, const char *base)
{
	json_t *svcs = json_object(), *was = json_object(), *pair;
	size_t i;
	json_array_foreach((json_t *)changed_services(prev, now), i, pair) {
		json_int_t pi = json_integer_value(json_array_get(pair, 0)), ni = json_integer_value(json_array_get(pair, 1));
		json_t *a = pi >= 0 ? view_service(prev, (size_t)pi, node) : NULL;
		json_t *b = ni >= 0 ? view_service(now, (size_t)ni, node) : NULL;
		if (!a || !b || !json_equal(a, b)) {   /* else: a change this node does not see */
			char *k = service_key(b ? b : a);
			json_object_set(svcs, k, b ? b : json_null());
			json_object_set(was, k, a ? a : json_null());
			free(k);
		}
		json_decref(a);
		json_decref(b);
	}
	size_t nsvc = json_array_size(json_object_get(prev->doc, "services"));
	if (json_object_size(svcs) > 64 && json_object_size(svcs) > nsvc / 4) {
		json_decref(svcs);
		json_decref(was);
		return NULL;
	}
	json_t *pods = named_pods(now, node, svcs, was);
	json_t *delta = json_pack("{s:s, s:o, s:o}", "base", base, "services", svcs, "was", was);
	if (pods)
		json_object_set_new(delta, "pods", pods);
	return delta;
}

void rc_network_plan(const struct rc_world *w, const struct rc_node *n, struct rc_net *prev, json_t *plan)
{
	if (!w->net)
		return;
	const char *have = jstr(n->status, "networkDigest");
	struct api_netsum sum_now, sum_old;
	view_sum(w->net, n->name, n->pod_cidr, &sum_now);
	char *d_now = api_netsum_digest(&sum_now), *d_old = NULL;
	json_t *delta = NULL;
	if (have && !strcmp(have, d_now)) {   /* it has this one: nothing to send */
		free(d_now);
		return;
	}
	if (have && prev) {
		view_sum(prev, n->name, jstr(json_object_get(prev->cache, "podCIDRs"), n->name), &sum_old);
		d_old = api_netsum_digest(&sum_old);
		if (!strcmp(have, d_old) && !memcmp(sum_old.rest, sum_now.rest, sizeof(sum_now.rest)))
			delta = services_delta(prev, w->net, n->name, have);
	}
	if (delta)
		json_object_set_new(plan, "networkDelta", delta);
	else
		json_object_set_new(plan, "network", rc_network_for(w, n));
	free(d_old);
	free(d_now);
}
