/* tests/unit/test_services.c: reconcile/services.c (ClusterIP and NodePort
 * allocation), the validation of explicit values (api/refs.c), and the network
 * object of the plans (reconcile/network.c) on a hand-made world. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "netpol/netpol.h"
#include "reconcile/internal.h"

/* ---- fixtures ---- */

/* A finished (validated, defaulted) set from one YAML text, file "svc.yaml". */
static void load(struct api_set *s, const char *yaml)
{
	api_set_init(s);
	api_add_file(s, "svc.yaml", yaml, strlen(yaml));
	api_finish(s);
}

/* Service NAME (namespace default): TYPE, EXTRA spec lines (indented 2), one port. */
static char *svc(const char *name, const char *type, const char *extra)
{
	return xasprintf("---\napiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n  type: %s\n"
			 "  selector: {app: %s}\n  ports: [{port: 80}]\n%s",
			 name, type, name, extra ? extra : "");
}

static const char *setting(const char *key, const char *value)
{
	static char buf[256];
	snprintf(buf, sizeof(buf), "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: gitops, namespace: gitops-system}\n"
		 "data: {%s: \"%s\"}\n", key, value);
	return buf;
}

static const char *ip_of(const json_t *cluster, const char *name)
{
	return json_string_value(json_object_get(svc_allocation(cluster, "default", name), "clusterIP"));
}

static json_int_t node_port_of(const json_t *cluster, const char *name, const char *port)
{
	return json_integer_value(json_object_get(json_object_get(svc_allocation(cluster, "default", name), "nodePorts"), port));
}

static uint32_t ip4(const char *s)
{
	unsigned a, b, c, d;
	assert_non_null(s);
	assert_int_equal(sscanf(s, "%u.%u.%u.%u", &a, &b, &c, &d), 4);
	return a << 24 | b << 16 | c << 8 | d;
}

/* Allocate for yaml into cluster; returns svc_allocate's result (err freed). */
static int allocate(const char *yaml, json_t *cluster, char **ret_err)
{
	struct api_set s;
	struct gerr *err = NULL;
	load(&s, yaml);
	assert_int_equal(s.nerrors, 0);
	int r = svc_allocate(&s, cluster, 1000, &err);
	if (ret_err)
		*ret_err = err ? xstrdup(err->msg) : NULL;
	gerr_free(err);
	api_set_release(&s);
	return r;
}

/* ---- ClusterIPs ---- */

static void test_stable(void **state)
{
	char *a = svc("a", "ClusterIP", NULL), *b = svc("b", "ClusterIP", NULL);
	char *yaml = xasprintf("%s%s", a, b);
	json_t *cs = json_object();
	assert_int_equal(allocate(yaml, cs, NULL), 0);
	const char *ia = ip_of(cs, "a"), *ib = ip_of(cs, "b");
	assert_non_null(ia);
	assert_non_null(ib);
	assert_string_not_equal(ia, ib);
	uint32_t x = ip4(ia);
	assert_true(x >= ip4("10.96.0.2") && x <= ip4("10.111.255.254"));
	/* a second pass changes nothing: not even a version */
	json_t *before = json_deep_copy(cs);
	assert_int_equal(allocate(yaml, cs, NULL), 0);
	assert_true(json_equal(before, cs));
	assert_int_equal(json_integer_value(json_object_get(svc_allocation(cs, "default", "a"), "time")), 1000);
	json_decref(before);
	json_decref(cs);
	free(a);
	free(b);
	free(yaml);
}

static void test_explicit_honoured(void **state)
{
	char *a = svc("a", "NodePort", "  clusterIP: 10.96.0.50\n");
	char *yaml = xasprintf("%s---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec:\n  type: NodePort\n"
			       "  ports: [{port: 80, nodePort: 30080, name: web}, {port: 53, protocol: UDP, name: dns}, "
			       "{port: 53, protocol: TCP, name: dns-tcp}]\n", a);
	json_t *cs = json_object();
	assert_int_equal(allocate(yaml, cs, NULL), 0);
	assert_string_equal(ip_of(cs, "a"), "10.96.0.50");
	assert_int_equal(node_port_of(cs, "b", "80"), 30080);
	/* the TCP and UDP port 53 share one NodePort, in the range */
	json_int_t np = node_port_of(cs, "b", "53");
	assert_true(np >= 30000 && np <= 32767 && np != 30080);
	assert_int_equal(json_object_size(json_object_get(svc_allocation(cs, "default", "b"), "nodePorts")), 2);
	json_decref(cs);
	free(a);
	free(yaml);
}

/* a /29 has 8 addresses: network .0, first .1 (kubernetes') and broadcast .7 are
 * never handed out, so 5 Services fit and the 6th fails */
static void test_reserved_and_exhaustion(void **state)
{
	struct sbuf y = SBUF_INIT;
	sb_adds(&y, setting("serviceCIDR", "10.0.0.0/29"));
	for (int i = 0; i < 5; i++) {
		char name[8];
		snprintf(name, sizeof(name), "s%d", i);
		char *s = svc(name, "ClusterIP", NULL);
		sb_adds(&y, s);
		free(s);
	}
	json_t *cs = json_object();
	assert_int_equal(allocate(y.buf, cs, NULL), 0);
	bool seen[8] = { 0 };
	for (int i = 0; i < 5; i++) {
		char name[8];
		snprintf(name, sizeof(name), "s%d", i);
		uint32_t x = ip4(ip_of(cs, name)) - ip4("10.0.0.0");
		assert_true(x >= 2 && x <= 6);
		assert_false(seen[x]);
		seen[x] = true;
	}
	char *s = svc("s5", "ClusterIP", NULL), *err = NULL;
	sb_adds(&y, s);
	json_t *before = json_deep_copy(cs);
	assert_int_equal(allocate(y.buf, cs, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "Service default/s5: no free ClusterIP left in serviceCIDR 10.0.0.0/29"));
	assert_true(json_equal(before, cs)); /* nothing recorded on failure */
	json_decref(before);
	json_decref(cs);
	free(err);
	free(s);
	sb_release(&y);
}

/* b takes, explicitly, the address a was given: a moves, b has it */
static void test_explicit_takes_allocated(void **state)
{
	char *a = svc("a", "ClusterIP", NULL), *b = svc("b", "ClusterIP", NULL);
	char *yaml = xasprintf("%s%s", a, b);
	json_t *cs = json_object();
	assert_int_equal(allocate(yaml, cs, NULL), 0);
	char *was = xstrdup(ip_of(cs, "a"));
	char *extra = xasprintf("  clusterIP: %s\n", was);
	char *b2 = svc("b", "ClusterIP", extra);
	char *yaml2 = xasprintf("%s%s", a, b2);
	assert_int_equal(allocate(yaml2, cs, NULL), 0);
	assert_string_equal(ip_of(cs, "b"), was);
	assert_string_not_equal(ip_of(cs, "a"), was);
	/* and it stays where it moved */
	char *moved = xstrdup(ip_of(cs, "a"));
	assert_int_equal(allocate(yaml2, cs, NULL), 0);
	assert_string_equal(ip_of(cs, "a"), moved);
	json_decref(cs);
	free(a);
	free(b);
	free(b2);
	free(was);
	free(moved);
	free(extra);
	free(yaml);
	free(yaml2);
}

/* A controller with an empty state directory reads the cluster state from the
 * nodes: merged, it gives every Service the value it had, whatever the order of
 * the manifests. Without any state, the hash placement gives the same too. */
static void test_fresh_state_rebuilds(void **state)
{
	struct sbuf fwd = SBUF_INIT, rev = SBUF_INIT;
	const char *names[] = { "web", "db", "cache", "api", "queue", "auth" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char *s = svc(names[i], "NodePort", NULL), *t = svc(names[ARRAY_SIZE(names) - 1 - i], "NodePort", NULL);
		sb_adds(&fwd, s);
		sb_adds(&rev, t);
		free(s);
		free(t);
	}
	json_t *cs = json_object();
	assert_int_equal(allocate(fwd.buf, cs, NULL), 0);
	/* what a node keeps, and returns in its status */
	char *text = json_dumps(cs, JSON_COMPACT);
	json_t *node = json_loads(text, 0, NULL), *fresh = json_object();
	cluster_merge(fresh, node);
	assert_int_equal(allocate(rev.buf, fresh, NULL), 0);
	assert_true(json_equal(cs, fresh));
	json_t *empty = json_object();
	assert_int_equal(allocate(rev.buf, empty, NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		assert_string_equal(ip_of(cs, names[i]), ip_of(empty, names[i]));
		assert_int_equal(node_port_of(cs, names[i], "80"), node_port_of(empty, names[i], "80"));
	}
	free(text);
	json_decref(node);
	json_decref(fresh);
	json_decref(empty);
	json_decref(cs);
	sb_release(&fwd);
	sb_release(&rev);
}

/* headless and ExternalName get no address; a Service that leaves git frees its
 * record; a type change back to ClusterIP drops the NodePorts; a new serviceCIDR
 * moves the addresses into it */
static void test_kinds_and_changes(void **state)
{
	char *a = svc("a", "NodePort", NULL), *h = svc("h", "ClusterIP", "  clusterIP: None\n");
	char *x = xstrdup("---\napiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ExternalName, externalName: db.example.org}\n");
	char *lb = svc("lb", "LoadBalancer", "  allocateLoadBalancerNodePorts: false\n");
	char *yaml = xasprintf("%s%s%s%s", a, h, x, lb);
	json_t *cs = json_object();
	assert_int_equal(allocate(yaml, cs, NULL), 0);
	assert_string_equal(ip_of(cs, "h"), "None");
	assert_string_equal(ip_of(cs, "x"), "");
	assert_null(json_object_get(svc_allocation(cs, "default", "lb"), "nodePorts"));
	assert_true(node_port_of(cs, "a", "80") >= 30000);
	char *a2 = svc("a", "ClusterIP", NULL);
	char *yaml2 = xasprintf("%s%s", setting("serviceCIDR", "172.16.0.0/16"), a2);
	assert_int_equal(allocate(yaml2, cs, NULL), 0);
	assert_null(svc_allocation(cs, "default", "h"));
	assert_null(svc_allocation(cs, "default", "x"));
	assert_null(json_object_get(svc_allocation(cs, "default", "a"), "nodePorts"));
	assert_int_equal(ip4(ip_of(cs, "a")) >> 16, ip4("172.16.0.0") >> 16);
	json_decref(cs);
	free(a);
	free(a2);
	free(h);
	free(x);
	free(lb);
	free(yaml);
	free(yaml2);
}

/* ---- validation of explicit values (api/refs.c) ---- */

static bool has_diag(const struct api_set *s, const char *text)
{
	for (size_t i = 0; i < s->ndiags; i++) {
		struct sbuf line = SBUF_INIT;
		api_diag_format(&s->diags[i], &line);
		bool hit = strstr(line.buf, text) != NULL;
		if (hit)
			print_message("%s\n", line.buf);
		sb_release(&line);
		if (hit)
			return true;
	}
	return false;
}

static void test_clash_is_a_validation_error(void **state)
{
	/* written by hand where the port list differs from svc()'s */
	char *a = xstrdup("---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  type: NodePort\n"
			  "  clusterIP: 10.96.0.10\n  ports: [{port: 80, nodePort: 30080}]\n");
	char *b = svc("b", "NodePort", "  clusterIP: 10.96.0.10\n");
	char *c = xstrdup("---\napiVersion: v1\nkind: Service\nmetadata: {name: c}\nspec:\n  type: NodePort\n"
			  "  ports: [{port: 81, nodePort: 30080}]\n");
	char *d = svc("d", "ClusterIP", "  clusterIP: 10.0.0.1\n");
	char *e = xstrdup("---\napiVersion: v1\nkind: Service\nmetadata: {name: e}\nspec:\n  type: NodePort\n"
			  "  ports: [{port: 80, nodePort: 80}]\n");
	char *yaml = xasprintf("%s%s%s%s%s", a, b, c, d, e);
	struct api_set s;
	load(&s, yaml);
	/* a is at line 2; its clusterIP at 7:14, its nodePort at 8:32 */
	assert_true(has_diag(&s, "svc.yaml:17:14: Service default/b: spec.clusterIP: Invalid value: \"10.96.0.10\": "
				 "provided IP is already allocated to Service default/a (svc.yaml:7:14)"));
	assert_true(has_diag(&s, "Service default/c: spec.ports[0].nodePort: Invalid value: 30080: provided port is "
				 "already allocated to Service default/a (svc.yaml:8:32)"));
	assert_true(has_diag(&s, "Service default/d: spec.clusterIP: Invalid value: \"10.0.0.1\": provided IP is not "
				 "in the valid range. The range of valid IPs is 10.96.0.0/12"));
	assert_true(has_diag(&s, "Service default/e: spec.ports[0].nodePort: Invalid value: 80: provided port is not "
				 "in the valid range. The range of valid ports is 30000-32767"));
	assert_int_equal(s.nerrors, 4);
	/* the allocator leaves the invalid ones out: a keeps its address */
	json_t *cs = json_object();
	struct gerr *err = NULL;
	assert_int_equal(svc_allocate(&s, cs, 1, &err), 0);
	assert_string_equal(ip_of(cs, "a"), "10.96.0.10");
	assert_null(svc_allocation(cs, "default", "b"));
	json_decref(cs);
	api_set_release(&s);
	/* the network and broadcast addresses are outside the range; the first is not */
	char *n = svc("net", "ClusterIP", "  clusterIP: 10.96.0.0\n"), *f = svc("first", "ClusterIP", "  clusterIP: 10.96.0.1\n");
	char *z = svc("bcast", "ClusterIP", "  clusterIP: 10.111.255.255\n");
	char *yaml2 = xasprintf("%s%s%s", n, f, z);
	load(&s, yaml2);
	assert_int_equal(s.nerrors, 2);
	assert_true(has_diag(&s, "Service default/net: spec.clusterIP: Invalid value: \"10.96.0.0\""));
	assert_true(has_diag(&s, "Service default/bcast: spec.clusterIP: Invalid value: \"10.111.255.255\""));
	api_set_release(&s);
	free(yaml2);
	free(n);
	free(f);
	free(z);
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
	free(yaml);
}

/* ---- the network of the plans ---- */

static void add_node(struct rc_world *w, const char *name, const char *cidr)
{
	struct rc_node *n = &w->nodes[w->nnodes++];
	memset(n, 0, sizeof(*n));
	n->name = xstrdup(name);
	n->ssh = xstrdup(name);
	n->pod_cidr = xstrdup(cidr);
	n->reachable = true;
	n->plan_pods = json_array();
	n->changes = json_array();
	n->status = json_pack("{s:[]}", "pods");
}

/* A pod of node n: in its plan, and (ip != NULL) reported by it with readiness. */
static void add_pod(struct rc_world *w, struct rc_node *n, const char *uid, const char *name, const char *app,
		    const char *ip, bool ready)
{
	json_array_append_new(n->plan_pods, json_pack("{s:s, s:s, s:s, s:{s:s}, s:{s:[{s:s, s:[{s:s, s:i, s:s}]}]}}",
		"uid", uid, "namespace", "default", "name", name, "labels", "app", app, "spec", "containers",
		"name", "c", "ports", "name", "http", "containerPort", 8080, "protocol", "TCP"));
	if (!ip)
		return;
	GROW(w->pods, w->apods, w->npods + 1);
	struct rc_pod *p = &w->pods[w->npods++];
	memset(p, 0, sizeof(*p));
	p->uid = xstrdup(uid);
	p->ns = xstrdup("default");
	p->name = xstrdup(name);
	p->node = n;
	p->labels = json_pack("{s:s}", "app", app);
	p->annotations = json_object();
	p->ready = ready;
	json_t *st = json_pack("{s:s, s:s, s:s}", "uid", uid, "podIP", ip, "phase", "Running");
	json_array_append_new(json_object_get(n->status, "pods"), st);
	p->status = st;
}

static const json_t *find(const json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *x;
	json_array_foreach((json_t *)arr, i, x)
		if (!strcmp(json_string_value(json_object_get(x, key)) ?: "", value))
			return x;
	return NULL;
}

/* A world of s (which must be valid) at t=5 with node1 and node2, no pods yet. */
static void two_nodes(struct rc_world *w, struct api_set *s)
{
	assert_int_equal(s->nerrors, 0);
	*w = (struct rc_world){ .desired = s, .cluster = json_object(), .new_pods = json_array(), .now = 5 };
	w->nodes = xcalloc(3, sizeof(*w->nodes));
	add_node(w, "node1", "10.244.1.0/24");
	add_node(w, "node2", "10.244.2.0/24");
}

static void test_network(void **state)
{
	struct api_set s;
	load(&s, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
		 "  ports: [{port: 80, targetPort: http, name: http}]\n---\n"
		 "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {team: a}}\n---\n"
		 "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: other}\n"
		 "spec: {podSelector: {}}\n");
	struct rc_world w;
	two_nodes(&w, &s);
	add_pod(&w, &w.nodes[0], "u1", "web-1", "web", "10.244.1.5", true);
	add_pod(&w, &w.nodes[1], "u2", "web-2", "web", "10.244.2.5", false);
	add_pod(&w, &w.nodes[1], "u3", "web-3", "web", NULL, false); /* created this pass */
	add_pod(&w, &w.nodes[0], "u4", "db-1", "db", "10.244.1.6", true);
	struct gerr *err = NULL;
	json_t *shared = NULL;
	assert_int_equal(rc_services(&w, &shared, &err), 0);
	assert_int_equal(json_array_size(w.nodes[0].changes), 1); /* "~ network": new */
	const char *cip = ip_of(w.cluster, "web");
	assert_non_null(cip);

	json_t *n1 = rc_network_for(&w, &w.nodes[0]), *n2 = rc_network_for(&w, &w.nodes[1]);
	char *t1 = json_dumps(n1, JSON_COMPACT);
	/* what the nodes feed the nftables compiler, once node2 filled in the IP of
	 * its new pod (docs/node-protocol.md) */
	json_t *filled = json_deep_copy(n2);
	json_object_set_new((json_t *)find(json_object_get(filled, "pods"), "uid", "u3"), "ip", json_string("10.244.2.9"));
	json_object_set_new((json_t *)find(json_object_get(json_array_get(json_object_get(filled, "services"), 0), "endpoints"),
					   "uid", "u3"), "ip", json_string("10.244.2.9"));
	json_t *views[] = { n1, filled };
	for (size_t i = 0; i < ARRAY_SIZE(views); i++) {
		struct sbuf nft = SBUF_INIT;
		int rc = netpol_compile(views[i], &nft, &err);
		if (rc < 0)
			print_message("netpol_compile: %s\n", err->msg);
		assert_int_equal(rc, 0);
		assert_non_null(strstr(nft.buf, cip));
		sb_release(&nft);
	}
	json_decref(filled);
	assert_string_equal(json_string_value(json_object_get(n1, "podCIDR")), "10.244.1.0/24");
	assert_string_equal(json_string_value(json_object_get(n1, "dnsServer")), "169.254.20.10");
	assert_string_equal(json_string_value(json_object_get(n1, "serviceCIDR")), "10.96.0.0/12");
	/* namespaces: default with its labels, other from the policy */
	const json_t *nss = json_object_get(n1, "namespaces");
	assert_int_equal(json_array_size(nss), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(find(nss, "name", "default"), "labels"), "team")), "a");
	/* pods: sorted; node1 sees u3 (no IP, not its own) not at all */
	const json_t *p1 = json_object_get(n1, "pods");
	assert_int_equal(json_array_size(p1), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(p1, 0), "name")), "db-1");
	assert_true(json_is_true(json_object_get(find(p1, "uid", "u1"), "local")));
	assert_true(json_is_false(json_object_get(find(p1, "uid", "u2"), "local")));
	assert_null(find(p1, "uid", "u3"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(find(p1, "uid", "u1"), "ports"), 0), "name")), "http");
	/* node2 has its new pod, local, without an IP */
	const json_t *u3 = find(json_object_get(n2, "pods"), "uid", "u3");
	assert_non_null(u3);
	assert_true(json_is_true(json_object_get(u3, "local")));
	assert_null(json_object_get(u3, "ip"));
	/* the Service: its ClusterIP and endpoints, readiness as reported */
	const json_t *sv = find(json_object_get(n1, "services"), "name", "web");
	assert_string_equal(json_string_value(json_object_get(sv, "clusterIP")), cip);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(sv, "ports"), 0), "targetPort")), "http");
	const json_t *eps = json_object_get(sv, "endpoints");
	assert_int_equal(json_array_size(eps), 2);
	assert_true(json_is_true(json_object_get(find(eps, "uid", "u1"), "ready")));
	assert_true(json_is_true(json_object_get(find(eps, "uid", "u1"), "local")));
	assert_true(json_is_false(json_object_get(find(eps, "uid", "u2"), "ready")));
	assert_string_equal(json_string_value(json_object_get(find(eps, "uid", "u2"), "node")), "node2");
	const json_t *eps2 = json_object_get(find(json_object_get(n2, "services"), "name", "web"), "endpoints");
	assert_int_equal(json_array_size(eps2), 3);
	assert_true(json_is_true(json_object_get(find(eps2, "uid", "u3"), "local")));
	assert_true(json_is_false(json_object_get(find(eps2, "uid", "u1"), "local")));
	/* the policy, defaulted */
	const json_t *pol = json_array_get(json_object_get(n1, "policies"), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(pol, "policyTypes"), 0)), "Ingress");
	/* the same inputs again: the same bytes, and no change recorded */
	json_decref(shared);
	json_array_clear(w.nodes[0].changes);
	assert_int_equal(rc_services(&w, &shared, &err), 0);
	assert_int_equal(json_array_size(w.nodes[0].changes), 0);
	json_t *again = rc_network_for(&w, &w.nodes[0]);
	char *t2 = json_dumps(again, JSON_COMPACT);
	assert_string_equal(t1, t2);
	/* a readiness change is a network change */
	w.pods[1].ready = true;
	json_decref(shared);
	assert_int_equal(rc_services(&w, &shared, &err), 0);
	assert_int_equal(json_array_size(w.nodes[0].changes), 1);
	json_decref(shared);
	json_decref(n1);
	json_decref(n2);
	json_decref(again);
	free(t1);
	free(t2);
	rc_world_release(&w);
	api_set_release(&s);
}

static char *digest_of(const json_t *view)
{
	struct api_netsum sum;
	api_netsum_of(view, &sum);
	return api_netsum_digest(&sum);
}

/* The network part of node i's plan when it reports `have` (NULL: nothing). */
static json_t *plan_net(struct rc_world *w, size_t i, const char *have)
{
	if (have)   /* in its status, whose pods the world's pods point into */
		json_object_set_new(w->nodes[i].status, "networkDigest", json_string(have));
	else
		json_object_del(w->nodes[i].status, "networkDigest");
	json_t *plan = json_object();
	rc_network_plan(w, &w->nodes[i], w->prev_net, plan);
	return plan;
}

/* What the controller sends each node: nothing when it reports the digest of its view
 * (which the controller makes from hashes its views share: it must equal the whole
 * view's), a networkDelta onto the last pass's view when only Services changed there,
 * else the whole network. The delta makes the old view's digest the new one's. */
static void test_network_plans(void **state)
{
	struct api_set s;
	load(&s, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
		 "  ports: [{port: 80, targetPort: http, name: http}]\n---\n"
		 "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  selector: {app: db}\n"
		 "  ports: [{port: 5432}]\n");
	struct rc_world w;
	two_nodes(&w, &s);
	add_pod(&w, &w.nodes[0], "u1", "web-1", "web", "10.244.1.5", true);
	add_pod(&w, &w.nodes[1], "u2", "web-2", "web", "10.244.2.5", true);
	add_pod(&w, &w.nodes[1], "u4", "db-1", "db", "10.244.2.6", true);
	struct gerr *err = NULL;
	json_t *shared = NULL;
	assert_int_equal(rc_services(&w, &shared, &err), 0);
	json_decref(shared);
	char dir[] = "/tmp/test_services.XXXXXX";
	assert_non_null(mkdtemp(dir));
	json_t *old[2];
	char *dold[2];
	for (size_t i = 0; i < 2; i++) {
		old[i] = rc_network_for(&w, &w.nodes[i]);
		dold[i] = digest_of(old[i]);
		json_t *p = plan_net(&w, i, dold[i]);      /* it has it: nothing */
		assert_int_equal(json_object_size(p), 0);
		json_decref(p);
		p = plan_net(&w, i, NULL);                 /* it has none: all of it */
		assert_true(json_equal(json_object_get(p, "network"), old[i]));
		json_decref(p);
	}
	rc_network_cache_save(&w, NULL, dir);
	w.prev_net = rc_network_cache_load(dir);
	assert_non_null(w.prev_net);
	/* web-2 (node2) fails readiness: web's endpoints change, nothing else */
	w.pods[1].ready = false;
	assert_int_equal(rc_services(&w, &shared, &err), 0);
	json_decref(shared);
	for (size_t i = 0; i < 2; i++) {
		json_t *now = rc_network_for(&w, &w.nodes[i]), *p = plan_net(&w, i, dold[i]);
		const json_t *d = json_object_get(p, "networkDelta");
		assert_non_null(d);
		assert_null(json_object_get(p, "network"));
		assert_string_equal(json_string_value(json_object_get(d, "base")), dold[i]);
		const json_t *svcs = json_object_get(d, "services"), *was = json_object_get(d, "was");
		assert_int_equal(json_object_size(svcs), 1);
		assert_true(json_equal(json_object_get(svcs, "default/web"), find(json_object_get(now, "services"), "name", "web")));
		assert_true(json_equal(json_object_get(was, "default/web"), find(json_object_get(old[i], "services"), "name", "web")));
		/* targetPort http: the pods at web's endpoints, as this node sees them */
		assert_int_equal(json_array_size(json_object_get(d, "pods")), 2);
		/* the old digest with the delta made in it is the new view's */
		struct api_netsum sum;
		api_netsum_of(old[i], &sum);
		api_netsum_service(&sum, json_object_get(was, "default/web"), -1);
		api_netsum_service(&sum, json_object_get(svcs, "default/web"), 1);
		char *made = api_netsum_digest(&sum), *want = digest_of(now);
		assert_string_equal(made, want);
		/* another base: the whole network */
		json_decref(p);
		p = plan_net(&w, i, "0000");
		assert_true(json_equal(json_object_get(p, "network"), now));
		free(made);
		free(want);
		json_decref(p);
		json_decref(now);
	}
	/* a pod more on node1 (not a Service's only change): the whole network */
	add_pod(&w, &w.nodes[0], "u5", "db-2", "db", "10.244.1.7", true);
	assert_int_equal(rc_services(&w, &shared, &err), 0);
	json_decref(shared);
	json_t *p = plan_net(&w, 0, dold[0]);
	assert_non_null(json_object_get(p, "network"));
	assert_null(json_object_get(p, "networkDelta"));
	json_decref(p);
	for (size_t i = 0; i < 2; i++) {
		json_decref(old[i]);
		free(dold[i]);
	}
	rc_network_cache_free(w.prev_net);
	w.prev_net = NULL;
	char *f = xasprintf("%s/network-cache.json", dir);
	unlink(f);
	free(f);
	rmdir(dir);
	rc_world_release(&w);
	api_set_release(&s);
}

/* node2 unreachable since t=990, seen at `now`: node1's view of web's one endpoint,
 * the pod node2 recorded as 10.244.2.5 and ready, keeps that IP; *ret_ready: its
 * readiness there. Returns whether node2 is NotReady. */
static bool unreachable_endpoint(struct api_set *s, int64_t now, bool *ret_ready)
{
	struct rc_world w = { .desired = s, .cluster = json_object(), .new_pods = json_array(), .now = now };
	w.nodes = xcalloc(2, sizeof(*w.nodes));
	add_node(&w, "node1", "10.244.1.0/24");
	add_node(&w, "node2", "10.244.2.0/24");
	add_pod(&w, &w.nodes[1], "u2", "web-2", "web", NULL, false); /* its plan entry only */
	w.nodes[1].reachable = false;
	cluster_set(w.cluster, "unreachable/node2", json_integer(990));
	cluster_set(w.cluster, "pods/node2", json_pack("[{s:s, s:s, s:s, s:{s:s}, s:s, s:b}]", "uid", "u2",
		    "namespace", "default", "name", "web-2", "labels", "app", "web", "ip", "10.244.2.5", "ready", 1));
	rc_world_observe(&w);
	bool not_ready = w.nodes[1].not_ready;
	struct gerr *err = NULL;
	json_t *shared = NULL;
	assert_int_equal(rc_services(&w, &shared, &err), 0);
	json_t *n1 = rc_network_for(&w, &w.nodes[0]);
	const json_t *eps = json_object_get(find(json_object_get(n1, "services"), "name", "web"), "endpoints");
	assert_int_equal(json_array_size(eps), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(eps, 0), "ip")), "10.244.2.5");
	*ret_ready = json_is_true(json_object_get(json_array_get(eps, 0), "ready"));
	json_decref(n1);
	json_decref(shared);
	rc_world_release(&w);
	return not_ready;
}

/* Pods of an unreachable node keep the IP and readiness recorded when it was last
 * reached: endpoints until the node is NotReady (nodeGracePeriod, 40 s by default),
 * then not ready with their IP, as Kubernetes' node lifecycle controller marks them. */
static void test_unreachable_node_endpoints(void **state)
{
	struct api_set s;
	load(&s, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
		 "  ports: [{port: 80, targetPort: 8080}]\n");
	assert_int_equal(s.nerrors, 0);
	bool ready = false;
	assert_false(unreachable_endpoint(&s, 1000, &ready)); /* 10 s: within the grace */
	assert_true(ready);
	assert_true(unreachable_endpoint(&s, 1040, &ready));  /* 50 s: NotReady */
	assert_false(ready);
	api_set_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stable),
		cmocka_unit_test(test_explicit_honoured),
		cmocka_unit_test(test_reserved_and_exhaustion),
		cmocka_unit_test(test_explicit_takes_allocated),
		cmocka_unit_test(test_fresh_state_rebuilds),
		cmocka_unit_test(test_kinds_and_changes),
		cmocka_unit_test(test_clash_is_a_validation_error),
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_network_plans),
		cmocka_unit_test(test_unreachable_node_endpoints),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
