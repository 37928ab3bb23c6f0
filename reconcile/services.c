/* services.c: ClusterIPs from serviceCIDR and NodePorts from nodePortRange, kept
 * stable in the replicated cluster state (reconcile.h documents the record). */
#include "reconcile/reconcile.h"
#include "api/api.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* ---- a map of uint32 → owner (index of a Service), open addressing ---- */

struct u32map {
	uint32_t *key;
	size_t *owner;     /* SIZE_MAX: empty slot */
	size_t cap;        /* power of two, at least twice the entries */
};

static void u32map_init(struct u32map *m, size_t entries)
{
	m->cap = 16;
	while (m->cap < 2 * entries + 2)
		m->cap *= 2;
	m->key = xcalloc(m->cap, sizeof(*m->key));
	m->owner = xcalloc(m->cap, sizeof(*m->owner));
	for (size_t i = 0; i < m->cap; i++)
		m->owner[i] = SIZE_MAX;
}

/* The slot of k: where it is, or the empty slot where it would go. */
static size_t u32map_slot(const struct u32map *m, uint32_t k)
{
	size_t i = (k * 2654435761u) & (m->cap - 1);
	while (m->owner[i] != SIZE_MAX && m->key[i] != k)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* The owner of k, or SIZE_MAX. */
static size_t u32map_get(const struct u32map *m, uint32_t k)
{
	return m->owner[u32map_slot(m, k)];
}

static void u32map_put(struct u32map *m, uint32_t k, size_t owner)
{
	size_t i = u32map_slot(m, k);
	m->key[i] = k;
	m->owner[i] = owner;
}

static void u32map_release(struct u32map *m)
{
	free(m->key);
	free(m->owner);
}

/* ---- ranges ---- */

static bool parse_ip(const char *s, uint32_t *ret)
{
	struct in_addr a;
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return false;
	*ret = ntohl(a.s_addr);
	return true;
}

static char *format_ip(uint32_t ip)
{
	struct in_addr a = { htonl(ip) };
	char buf[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	return xstrdup(buf);
}

/* The addresses a Service may be given: the CIDR without its network, first and
 * broadcast addresses. Explicit addresses may also be the first one. */
static int ip_range(const char *cidr, uint32_t *ret_lo, uint32_t *ret_hi, struct gerr **err)
{
	const char *slash = cidr ? strchr(cidr, '/') : NULL;
	int64_t bits;
	uint32_t a;
	char *ip = slash ? xstrndup(cidr, (size_t)(slash - cidr)) : NULL;
	bool ok = ip && parse_ip(ip, &a) && parse_i64(slash + 1, 0, 30, &bits) == 0;
	free(ip);
	if (!ok)
		return gerr_set(err, GERR_FAIL, "serviceCIDR \"%s\" is not an IPv4 CIDR of at most /30",
				cidr ? cidr : "");
	uint32_t mask = bits ? ~0u << (32 - bits) : 0;
	*ret_lo = (a & mask) + 2;
	*ret_hi = ((a & mask) | ~mask) - 1;
	return 0;
}

static int port_range(const char *range, uint32_t *ret_lo, uint32_t *ret_hi, struct gerr **err)
{
	const char *dash = range ? strchr(range, '-') : NULL;
	int64_t lo = 0, hi = 0;
	char *a = dash ? xstrndup(range, (size_t)(dash - range)) : NULL;
	bool ok = a && parse_i64(a, 1, 65535, &lo) == 0 && parse_i64(dash + 1, 1, 65535, &hi) == 0 && lo <= hi;
	free(a);
	if (!ok)
		return gerr_set(err, GERR_FAIL, "nodePortRange \"%s\" is not a port range FROM-TO",
				range ? range : "");
	*ret_lo = (uint32_t)lo;
	*ret_hi = (uint32_t)hi;
	return 0;
}

/* FNV-1a: where the search for a free value starts, so that a Service gets the
 * same value from any controller (and usually even from an empty state). */
static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The first free value from hash(seed) on, wrapping; false when all are taken. */
static bool pick(struct u32map *taken, uint32_t lo, uint32_t hi, const char *seed, size_t owner, uint32_t *ret)
{
	uint64_t size = (uint64_t)hi - lo + 1, start = fnv1a(seed) % size;
	for (uint64_t i = 0; i < size; i++) {
		uint32_t v = lo + (uint32_t)((start + i) % size);
		if (u32map_get(taken, v) == SIZE_MAX) {
			u32map_put(taken, v, owner);
			*ret = v;
			return true;
		}
	}
	return false;
}

/* ---- the Services of the desired set ---- */

struct svc_port {
	int64_t port;
	int64_t requested;    /* explicit nodePort (shared by the ports of one number), or 0 */
	uint32_t node_port;   /* result; 0: none */
};

struct svc {
	const struct api_object *o;
	char *key;            /* "service/NS/NAME" */
	const char *type;
	const char *cluster_ip;   /* spec.clusterIP: NULL/"" auto, "None" headless */
	bool wants_ip;            /* not headless, not ExternalName */
	bool auto_ports;          /* NodePorts are allocated for ports without one */
	uint32_t ip;
	bool have_ip;
	struct svc_port *ports;   /* one per distinct port number */
	size_t nports;
	json_t *spec;             /* owned */
};

static int cmp_svc(const void *x, const void *y)
{
	const struct svc *a = x, *b = y;
	int c = strcmp(a->o->ns, b->o->ns);
	return c ? c : strcmp(a->o->name, b->o->name);
}

static void svc_ports(struct svc *s)
{
	size_t i;
	json_t *p;
	const json_t *ports = json_object_get(s->spec, "ports");
	s->ports = xcalloc(json_array_size(ports) + 1, sizeof(*s->ports));
	json_array_foreach(ports, i, p) {
		int64_t port = json_integer_value(json_object_get(p, "port"));
		int64_t np = json_integer_value(json_object_get(p, "nodePort"));
		struct svc_port *sp = NULL;
		for (size_t k = 0; k < s->nports && !sp; k++)
			if (s->ports[k].port == port)
				sp = &s->ports[k];
		if (!sp) {
			sp = &s->ports[s->nports++];
			sp->port = port;
		}
		if (np > 0 && !sp->requested)
			sp->requested = np;
	}
}

static struct svc *collect(const struct api_set *desired, size_t *ret_n)
{
	struct svc *v = xcalloc(desired->nobjs + 1, sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < desired->nobjs; i++) {
		const struct api_object *o = &desired->objs[i];
		if (o->invalid || strcmp(o->kind->kind, "Service"))
			continue;
		struct svc *s = &v[n++];
		s->o = o;
		s->key = xasprintf(SVC_KEY_PREFIX "%s/%s", o->ns, o->name);
		s->spec = api_to_json(yn_get(o->root, "spec"));
		s->type = json_string_value(json_object_get(s->spec, "type")) ?: "ClusterIP";
		s->cluster_ip = json_string_value(json_object_get(s->spec, "clusterIP"));
		bool headless = s->cluster_ip && !strcmp(s->cluster_ip, "None");
		s->wants_ip = !headless && strcmp(s->type, "ExternalName");
		bool lb = !strcmp(s->type, "LoadBalancer");
		s->auto_ports = !strcmp(s->type, "NodePort") ||
				(lb && !json_is_false(json_object_get(s->spec, "allocateLoadBalancerNodePorts")));
		if (!strcmp(s->type, "NodePort") || lb)
			svc_ports(s);
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_svc);
	*ret_n = n;
	return v;
}

static void svcs_release(struct svc *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].ports);
		json_decref(v[i].spec);
	}
	free(v);
}

/* Records of Services that left git are dropped: their values are free again. */
static void forget_gone(json_t *cluster, const struct svc *v, size_t n)
{
	struct strvec gone = STRVEC_INIT;
	const char *key;
	json_t *e;
	json_object_foreach(cluster, key, e) {
		if (!str_has_prefix(key, SVC_KEY_PREFIX) || !cluster_get(cluster, key))
			continue;
		bool have = false;
		for (size_t i = 0; i < n && !have; i++)
			have = !strcmp(v[i].key, key);
		if (!have)
			strvec_push(&gone, key);
	}
	for (size_t i = 0; i < gone.n; i++)
		cluster_set(cluster, gone.v[i], NULL);
	strvec_clear(&gone);
}

/* ---- ClusterIPs: explicit ones first, then the recorded ones still free and in
 * range, then new ones ---- */

static int cluster_ips(struct svc *v, size_t n, const json_t *cluster, const char *cidr, struct gerr **err)
{
	uint32_t lo = 0, hi = 0;
	if (ip_range(cidr, &lo, &hi, err) < 0)
		return -1;
	struct u32map taken;
	u32map_init(&taken, n);
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct svc *s = &v[i];
		if (!s->wants_ip || !s->cluster_ip || !*s->cluster_ip)
			continue;
		if (!parse_ip(s->cluster_ip, &s->ip) || s->ip < lo - 1 || s->ip > hi) {
			r = gerr_set(err, GERR_FAIL, "Service %s/%s: clusterIP %s is not in serviceCIDR %s", s->o->ns,
				     s->o->name, s->cluster_ip, cidr);
		} else if (u32map_get(&taken, s->ip) != SIZE_MAX) {
			const struct svc *f = &v[u32map_get(&taken, s->ip)];
			r = gerr_set(err, GERR_FAIL, "Service %s/%s: clusterIP %s is already allocated to Service %s/%s",
				     s->o->ns, s->o->name, s->cluster_ip, f->o->ns, f->o->name);
		} else {
			u32map_put(&taken, s->ip, i);
			s->have_ip = true;
		}
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		struct svc *s = &v[i];
		const json_t *rec = cluster_get(cluster, s->key);
		uint32_t ip;
		if (!s->wants_ip || s->have_ip ||
		    !parse_ip(json_string_value(json_object_get(rec, "clusterIP")), &ip) || ip < lo || ip > hi ||
		    u32map_get(&taken, ip) != SIZE_MAX)
			continue;
		u32map_put(&taken, ip, i);
		s->ip = ip;
		s->have_ip = true;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		struct svc *s = &v[i];
		if (!s->wants_ip || s->have_ip)
			continue;
		char *seed = xasprintf("%s/%s", s->o->ns, s->o->name);
		s->have_ip = pick(&taken, lo, hi, seed, i, &s->ip);
		free(seed);
		if (!s->have_ip)
			r = gerr_set(err, GERR_FAIL, "Service %s/%s: no free ClusterIP left in serviceCIDR %s (%lu addresses, "
				     "all allocated)", s->o->ns, s->o->name, cidr, (unsigned long)(hi - lo + 1));
	}
	u32map_release(&taken);
	return r;
}

/* ---- NodePorts, by port number (a TCP and a UDP port of one number share one,
 * as in Kubernetes) ---- */

static uint32_t recorded_port(const json_t *cluster, const struct svc *s, int64_t port)
{
	char num[24];
	snprintf(num, sizeof(num), "%lld", (long long)port);
	return (uint32_t)json_integer_value(json_object_get(json_object_get(cluster_get(cluster, s->key), "nodePorts"), num));
}

static int node_ports(struct svc *v, size_t n, const json_t *cluster, const char *range, struct gerr **err)
{
	uint32_t lo = 0, hi = 0;
	size_t total = 0;
	if (port_range(range, &lo, &hi, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		total += v[i].nports;
	struct u32map taken;
	u32map_init(&taken, total);
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		for (size_t k = 0; k < v[i].nports && r == 0; k++) {
			struct svc_port *p = &v[i].ports[k];
			size_t owner = p->requested ? u32map_get(&taken, (uint32_t)p->requested) : SIZE_MAX;
			if (!p->requested)
				continue;
			if (p->requested < lo || p->requested > hi)
				r = gerr_set(err, GERR_FAIL, "Service %s/%s: nodePort %lld is not in nodePortRange %s",
					     v[i].o->ns, v[i].o->name, (long long)p->requested, range);
			else if (owner != SIZE_MAX && owner != i)
				r = gerr_set(err, GERR_FAIL, "Service %s/%s: nodePort %lld is already allocated to Service %s/%s",
					     v[i].o->ns, v[i].o->name, (long long)p->requested, v[owner].o->ns, v[owner].o->name);
			u32map_put(&taken, (uint32_t)p->requested, i);
			p->node_port = (uint32_t)p->requested;
		}
	for (size_t i = 0; i < n && r == 0; i++)
		for (size_t k = 0; k < v[i].nports; k++) {
			struct svc_port *p = &v[i].ports[k];
			uint32_t have = recorded_port(cluster, &v[i], p->port);
			if (p->node_port || !v[i].auto_ports || have < lo || have > hi ||
			    u32map_get(&taken, have) != SIZE_MAX)
				continue;
			u32map_put(&taken, have, i);
			p->node_port = have;
		}
	for (size_t i = 0; i < n && r == 0; i++)
		for (size_t k = 0; k < v[i].nports && r == 0; k++) {
			struct svc_port *p = &v[i].ports[k];
			if (p->node_port || !v[i].auto_ports)
				continue;
			char *seed = xasprintf("%s/%s/%lld", v[i].o->ns, v[i].o->name, (long long)p->port);
			if (!pick(&taken, lo, hi, seed, i, &p->node_port))
				r = gerr_set(err, GERR_FAIL, "Service %s/%s: port %lld: no free NodePort left in "
					     "nodePortRange %s", v[i].o->ns, v[i].o->name, (long long)p->port, range);
			free(seed);
		}
	u32map_release(&taken);
	return r;
}

/* ---- records ---- */

static void record(json_t *cluster, const struct svc *s, int64_t now)
{
	const json_t *old = cluster_get(cluster, s->key);
	json_t *rec = json_object(), *ports = json_object();
	char *ip = s->have_ip ? format_ip(s->ip) : NULL;
	json_object_set_new(rec, "clusterIP", json_string(ip ? ip : !strcmp(s->type, "ExternalName") ? "" : "None"));
	for (size_t k = 0; k < s->nports; k++)
		if (s->ports[k].node_port) {
			char num[24];
			snprintf(num, sizeof(num), "%lld", (long long)s->ports[k].port);
			json_object_set_new(ports, num, json_integer(s->ports[k].node_port));
		}
	if (json_object_size(ports))
		json_object_set(rec, "nodePorts", ports);
	json_t *t = json_object_get(old, "time");
	json_object_set_new(rec, "time", json_is_integer(t) ? json_incref(t) : json_integer(now));
	cluster_set(cluster, s->key, rec);
	json_decref(ports);
	free(ip);
}

int svc_allocate(const struct api_set *desired, json_t *cluster, int64_t now, struct gerr **err)
{
	size_t n;
	struct svc *v = collect(desired, &n);
	int r = cluster_ips(v, n, cluster, api_config_get(desired, "serviceCIDR"), err);
	if (r == 0)
		r = node_ports(v, n, cluster, api_config_get(desired, "nodePortRange"), err);
	if (r == 0) {
		forget_gone(cluster, v, n);
		for (size_t i = 0; i < n; i++)
			record(cluster, &v[i], now);
	}
	svcs_release(v, n);
	return r;
}

const json_t *svc_allocation(const json_t *cluster, const char *ns, const char *name)
{
	char *key = xasprintf(SVC_KEY_PREFIX "%s/%s", ns, name);
	const json_t *rec = cluster_get(cluster, key);
	free(key);
	return rec;
}
