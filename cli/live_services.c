/* live_services.c: Services and Endpoints as kubectl shows them — the desired
 * Services with the ClusterIP and NodePorts the controller allocated
 * (reconcile/services.c), and Endpoints packed from the network its plans carry
 * (reconcile/network.c, rc_result.network). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* An object member, created as {} when absent. */
static json_t *jobj(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_object(v)) {
		v = json_object();
		json_object_set_new(o, key, v);
	}
	return v;
}

static void set_time(json_t *meta, const json_t *rec)
{
	const json_t *t = json_object_get(rec, "time");
	if (!json_is_integer(t))
		return;
	time_t tt = (time_t)json_integer_value(t);
	struct tm tm;
	gmtime_r(&tt, &tm);
	json_object_set_new(meta, "creationTimestamp",
			    json_sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
					 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec));
}

static const struct api_object *desired(const struct live *l, const char *kind, const char *ns, const char *name)
{
	for (size_t i = 0; i < l->set->nobjs; i++) {
		const struct api_object *o = &l->set->objs[i];
		if (!o->invalid && !strcmp(o->kind->kind, kind) && !strcmp(o->ns, ns) && !strcmp(o->name, name))
			return o;
	}
	return NULL;
}

static const json_t *network_service(const struct live *l, const char *ns, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(l->res.network, "services"), i, s)
		if (!strcmp(jstr(s, "namespace") ?: "", ns) && !strcmp(jstr(s, "name") ?: "", name))
			return s;
	return NULL;
}

static json_t *service(const struct live *l, const struct api_object *o)
{
	json_t *d = api_to_json(o->root), *meta = jobj(d, "metadata"), *spec = jobj(d, "spec"), *p;
	const json_t *rec = svc_allocation(l->res.cluster, o->ns, o->name);
	const char *ip = jstr(rec, "clusterIP");
	set_time(meta, rec);
	if (ip && *ip) {
		json_object_set_new(spec, "clusterIP", json_string(ip));
		json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
	}
	size_t i;
	json_array_foreach(json_object_get(spec, "ports"), i, p) {
		char *num = xasprintf("%lld", (long long)json_integer_value(json_object_get(p, "port")));
		const json_t *np = json_object_get(json_object_get(rec, "nodePorts"), num);
		if (np)
			json_object_set(p, "nodePort", (json_t *)np);
		free(num);
	}
	if (!json_object_get(d, "status"))
		json_object_set_new(d, "status", json_pack("{s:{}}", "loadBalancer"));
	return d;
}

json_t *live_services(const struct live *l)
{
	return live_of_kind(l, "Service", service);
}

/* The container port named name (protocol proto) of the pod with uid, or 0. */
static json_int_t named_port(const struct live *l, const char *uid, const char *name, const char *proto)
{
	size_t i, k;
	json_t *p, *cp;
	json_array_foreach(json_object_get(l->res.network, "pods"), i, p) {
		if (strcmp(jstr(p, "uid") ?: "", uid ?: ""))
			continue;
		json_array_foreach(json_object_get(p, "ports"), k, cp)
			if (!strcmp(jstr(cp, "name") ?: "", name) && !strcmp(jstr(cp, "protocol") ?: "TCP", proto))
				return json_integer_value(json_object_get(cp, "containerPort"));
	}
	return 0;
}

/* The ports an endpoint serves, as an EndpointPort list: each service port's
 * target, numeric or resolved by name on the pod (not found: not served). */
static json_t *endpoint_ports(const struct live *l, const json_t *svc, const json_t *ep)
{
	json_t *out = json_array(), *sp;
	size_t i;
	json_array_foreach(json_object_get(svc, "ports"), i, sp) {
		const json_t *t = json_object_get(sp, "targetPort");
		const char *proto = jstr(sp, "protocol") ?: "TCP", *name = jstr(sp, "name") ?: "";
		json_int_t port = json_is_integer(t) ? json_integer_value(t)
						     : named_port(l, jstr(ep, "uid"), json_string_value(t) ?: "", proto);
		if (port <= 0)
			continue;
		json_t *e = json_pack("{s:I, s:s}", "port", port, "protocol", proto);
		if (*name)
			json_object_set_new(e, "name", json_string(name));
		json_array_append_new(out, e);
	}
	return out;
}

static int cmp_address(const void *x, const void *y)
{
	return strcmp(jstr(*(json_t *const *)x, "ip") ?: "", jstr(*(json_t *const *)y, "ip") ?: "");
}

/* Subsets as Kubernetes' endpoints controller packs them: the addresses serving
 * the same ports together, ready ones in addresses, the others in
 * notReadyAddresses (unless publishNotReadyAddresses), sorted by IP. */
static json_t *subsets(const struct live *l, const json_t *svc)
{
	json_t *groups = json_object(), *order = json_array(), *ep;
	bool publish = json_is_true(json_object_get(svc, "publishNotReadyAddresses"));
	size_t i;
	json_array_foreach(json_object_get(svc, "endpoints"), i, ep) {
		if (!jstr(ep, "ip"))
			continue;
		json_t *ports = endpoint_ports(l, svc, ep);
		if (!json_array_size(ports) && json_array_size(json_object_get(svc, "ports"))) {
			json_decref(ports);
			continue;
		}
		char *key = json_dumps(ports, JSON_COMPACT);
		json_t *g = json_object_get(groups, key);
		if (!g) {
			g = json_pack("{s:[], s:[], s:O}", "addresses", "notReadyAddresses", "ports", ports);
			json_object_set_new(groups, key, g);
			json_array_append_new(order, json_string(key));
		}
		json_t *a = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}}", "ip", jstr(ep, "ip"), "nodeName",
				      jstr(ep, "node") ?: "", "targetRef", "kind", "Pod", "namespace",
				      jstr(svc, "namespace") ?: "", "name", jstr(ep, "name") ?: "", "uid", jstr(ep, "uid") ?: "");
		if (jstr(ep, "hostname") && *jstr(ep, "hostname"))
			json_object_set_new(a, "hostname", json_string(jstr(ep, "hostname")));
		bool ready = publish || !json_is_false(json_object_get(ep, "ready"));
		json_array_append_new(json_object_get(g, ready ? "addresses" : "notReadyAddresses"), a);
		json_decref(ports);
		free(key);
	}
	json_t *out = json_array(), *k;
	json_array_foreach(order, i, k) {
		json_t *g = json_object_get(groups, json_string_value(k));
		static const char *const lists[] = { "addresses", "notReadyAddresses" };
		for (int j = 0; j < 2; j++) {
			live_sort(json_object_get(g, lists[j]), cmp_address);
			if (!json_array_size(json_object_get(g, lists[j])))
				json_object_del(g, lists[j]);
		}
		if (!json_array_size(json_object_get(g, "ports")))
			json_object_del(g, "ports");
		json_array_append(out, g);
	}
	json_decref(groups);
	json_decref(order);
	return out;
}

/* Endpoints of every Service with a selector (computed), and the Endpoints
 * objects git holds for Services without one. */
json_t *live_endpoints(const struct live *l)
{
	json_t *out = json_array();
	for (size_t i = 0; i < l->set->nobjs; i++) {
		const struct api_object *o = &l->set->objs[i];
		if (o->invalid)
			continue;
		if (!strcmp(o->kind->kind, "Endpoints")) {
			const struct api_object *s = desired(l, "Service", o->ns, o->name);
			if (!s || !yn_len(yn_path(s->root, "spec.selector")))
				json_array_append_new(out, api_to_json(o->root));
			continue;
		}
		const json_t *svc = strcmp(o->kind->kind, "Service") || !yn_len(yn_path(o->root, "spec.selector"))
					    ? NULL : network_service(l, o->ns, o->name);
		if (!svc)
			continue;
		json_t *labels = api_to_json(yn_path(o->root, "metadata.labels"));
		json_t *meta = json_pack("{s:s, s:s}", "name", o->name, "namespace", o->ns);
		if (json_is_object(labels))
			json_object_set(meta, "labels", labels);
		json_decref(labels);
		const json_t *rec = svc_allocation(l->res.cluster, o->ns, o->name);
		set_time(meta, rec);
		json_array_append_new(out, json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Endpoints",
						     "metadata", meta, "subsets", subsets(l, svc)));
	}
	live_sort(out, live_cmp_meta);
	return out;
}
