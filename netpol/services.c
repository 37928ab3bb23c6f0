/* netpol/services.c: Services → dispatch map elements and per-service-port chains. */
#define NETPOL_INTERNAL
#include "netpol/netpol.h"

#include <stdlib.h>
#include <string.h>

struct svc {
	const char *ns, *name;
	uint32_t cluster_ip;
	bool node_ports, etp_local, itp_local, affinity, not_ready;
	long long timeout;
	NP_VEC(uint32_t) ext_ips;
	const json_t *ports, *endpoints;
};

struct sport {
	const char *pname;   /* name, or the port number when unnamed */
	const char *key;     /* endpoints' "ports" key */
	const json_t *target;
	uint8_t proto;
	uint16_t port, node_port;
	const char *readable; /* ns/name/proto/pname */
};

struct ep {
	uint32_t ip;
	uint16_t port;
	bool local;
	const char *aff;     /* affinity set name, or NULL */
};

struct svcs {
	struct np_ctx *c;
	struct np_pod **by_ip;  /* pods sorted by IP (named targetPorts) */
	size_t nby;
	const char *where;      /* "services[3] (ns/name)" for errors */
};

/* ---- reading one service ------------------------------------------------- */

static int svc_fail(struct svcs *s, const char *what, const char *detail)
{
	return np_fail(s->c, "%s: %s%s", s->where, what, detail ? detail : "");
}

/* externalIPs and loadBalancerIPs: both are "external" destinations. */
static int ext_ips(struct svcs *s, struct svc *v, const json_t *o)
{
	static const char *const keys[] = { "externalIPs", "loadBalancerIPs" };
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		const json_t *arr = json_object_get(o, keys[k]), *x;
		size_t i;
		if (arr && !json_is_null(arr) && !json_is_array(arr))
			return np_fail(s->c, "%s: %s: must be an array", s->where, keys[k]);
		json_array_foreach(arr, i, x) {
			uint32_t ip;
			if (np_parse_ip(json_string_value(x), &ip) < 0)
				return np_fail(s->c, "%s: %s[%zu]: not an IPv4 address", s->where, keys[k], i);
			*(uint32_t *)NP_PUSH(&s->c->arena, v->ext_ips) = ip;
		}
	}
	np_sort_u32(v->ext_ips.v, &v->ext_ips.n);
	return 0;
}

static bool is_local(const json_t *o, const char *key)
{
	const char *p = np_str(o, key, "Cluster");
	return !strcmp(p, "Local");
}

/* Returns 1 when the service gets rules, 0 when it gets none, -1 on error. */
static int read_svc(struct svcs *s, const json_t *o, struct svc *v)
{
	const char *type = np_str(o, "type", "ClusterIP");
	const char *cip = np_str(o, "clusterIP", "");
	if (strcmp(type, "ClusterIP") && strcmp(type, "NodePort") &&
	    strcmp(type, "LoadBalancer") && strcmp(type, "ExternalName"))
		return svc_fail(s, "type: unknown type ", type);
	if (!strcmp(type, "ExternalName") || !*cip || !strcmp(cip, "None"))
		return 0;
	if (np_parse_ip(cip, &v->cluster_ip) < 0)
		return svc_fail(s, "clusterIP: not an IPv4 address: ", cip);
	v->node_ports = strcmp(type, "ClusterIP") != 0;
	v->etp_local = is_local(o, "externalTrafficPolicy");
	v->itp_local = is_local(o, "internalTrafficPolicy");
	v->affinity = !strcmp(np_str(o, "sessionAffinity", "None"), "ClientIP");
	v->not_ready = np_bool(o, "publishNotReadyAddresses", false);
	if (np_int(o, "timeoutSeconds", 1, NETPOL_AFFINITY_MAX, 10800, &v->timeout) < 0)
		return svc_fail(s, "timeoutSeconds: must be an integer in 1..86400", NULL);
	v->ports = json_object_get(o, "ports");
	v->endpoints = json_object_get(o, "endpoints");
	if (!json_is_array(v->ports) || (v->endpoints && !json_is_null(v->endpoints) &&
					 !json_is_array(v->endpoints)))
		return svc_fail(s, "ports and endpoints: must be arrays", NULL);
	return ext_ips(s, v, o) < 0 ? -1 : 1;
}

static int read_port(struct svcs *s, const struct svc *v, size_t i, struct sport *p)
{
	struct np_ctx *c = s->c;
	const json_t *o = json_array_get(v->ports, i);
	long long port, np;
	const char *name = np_str(o, "name", "");
	if (np_int(o, "port", 1, 65535, 0, &port) < 0 || port == 0)
		return np_fail(c, "%s: ports[%zu]: port: must be an integer in 1..65535", s->where, i);
	if (np_int(o, "nodePort", 0, 65535, 0, &np) < 0)
		return np_fail(c, "%s: ports[%zu]: nodePort: must be an integer in 0..65535", s->where, i);
	if (np_proto_parse(json_object_get(o, "protocol"), &p->proto) < 0)
		return np_fail(c, "%s: ports[%zu]: protocol: must be TCP, UDP or SCTP", s->where, i);
	if (*name && !np_ident_ok(name))
		return np_fail(c, "%s: ports[%zu]: name: invalid", s->where, i);
	p->target = json_object_get(o, "targetPort");
	const char *tname = json_string_value(p->target);
	if (p->target && !json_is_null(p->target) && !(tname && np_ident_ok(tname)) &&
	    !(json_is_integer(p->target) && json_integer_value(p->target) >= 1 &&
	      json_integer_value(p->target) <= 65535))
		return np_fail(c, "%s: ports[%zu]: targetPort: must be a port number or name", s->where, i);
	p->port = (uint16_t)port;
	p->node_port = v->node_ports ? (uint16_t)np : 0;
	p->key = *name ? name : np_afmt(c, "%u", p->port);
	p->pname = p->key;
	p->readable = np_afmt(c, "%s/%s/%s/%s", v->ns, v->name, np_proto_name(p->proto), p->pname);
	return 0;
}

static int cmp_sport(const void *a, const void *b)
{
	const struct sport *x = a, *y = b;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->proto < y->proto ? -1 : x->proto > y->proto;
}

/* ---- endpoints of one service port ---------------------------------------- */

static int cmp_pod_ip(const void *a, const void *b)
{
	const struct np_pod *x = *(struct np_pod *const *)a, *y = *(struct np_pod *const *)b;
	return x->ip < y->ip ? -1 : x->ip > y->ip;
}

static const struct np_pod *pod_by_ip(struct svcs *s, uint32_t ip)
{
	size_t lo = 0, hi = s->nby;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->by_ip[mid]->ip == ip)
			return s->by_ip[mid];
		if (s->by_ip[mid]->ip < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The endpoint's port for p: 0 when it does not serve p, -1 on bad input. */
static int ep_port(struct svcs *s, const json_t *e, uint32_t ip, const struct sport *p)
{
	const json_t *ports = json_object_get(e, "ports");
	if (json_is_object(ports)) {
		const json_t *v = json_object_get(ports, p->key);
		if (!v)
			return 0;
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
			return -1;
		return (int)json_integer_value(v);
	}
	if (!p->target || json_is_null(p->target))
		return p->port;
	if (json_is_integer(p->target))
		return (int)json_integer_value(p->target);
	const struct np_pod *pod = pod_by_ip(s, ip);
	return pod ? np_pod_named_port(pod, json_string_value(p->target), p->proto) : 0;
}

static int cmp_ep(const void *a, const void *b)
{
	const struct ep *x = a, *y = b;
	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

static size_t unique_eps(struct ep *v, size_t n)
{
	if (n)
		qsort(v, n, sizeof(*v), cmp_ep);
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (w && !cmp_ep(&v[w - 1], &v[i]))
			v[w - 1].local |= v[i].local;
		else
			v[w++] = v[i];
	}
	return w;
}

static int endpoints(struct svcs *s, const struct svc *v, const struct sport *p,
		     struct ep **ret, size_t *ret_n)
{
	NP_VEC(struct ep) eps = { NULL, 0, 0 };
	const json_t *e;
	size_t i;
	json_array_foreach(v->endpoints, i, e) {
		uint32_t ip;
		if (np_parse_ip(np_str(e, "ip", NULL), &ip) < 0)
			return np_fail(s->c, "%s: endpoints[%zu]: ip: not an IPv4 address", s->where, i);
		if (!np_bool(e, "ready", true) && !v->not_ready)
			continue;
		int port = ep_port(s, e, ip, p);
		if (port < 0)
			return np_fail(s->c, "%s: endpoints[%zu]: ports: \"%s\" must be a port number",
				       s->where, i, p->key);
		if (port == 0)
			continue;
		struct ep *x = NP_PUSH(&s->c->arena, eps);
		x->ip = ip;
		x->port = (uint16_t)port;
		x->local = np_bool(e, "local", false);
	}
	*ret = eps.v;
	*ret_n = unique_eps(eps.v, eps.n);
	return 0;
}

/* ---- writing one service port ----------------------------------------------- */

static void velem(struct np_ctx *c, void *vec_v, size_t *n, size_t *cap, uint32_t ip,
		  uint8_t proto, uint16_t port, const char *verdict)
{
	struct np_velem *e = np_vec_push(&c->arena, vec_v, n, cap, sizeof(*e));
	e->ip = ip;
	e->proto = proto;
	e->port = port;
	e->seq = c->seq++;
	e->verdict = verdict;
}
#define VELEM(c, vec, ip, proto, port, verdict) \
	velem((c), &(vec).v, &(vec).n, &(vec).cap, (ip), (proto), (port), (verdict))

static void dnat(struct sbuf *o, const struct sport *p, const struct ep *e)
{
	sb_addf(o, "meta l4proto %s ", np_proto_name(p->proto));
	if (e->aff)
		sb_addf(o, "update @%s { ip saddr } ", e->aff);
	sb_adds(o, "dnat to ");
	np_fmt_ip(o, e->ip);
	sb_addf(o, ":%u\n", e->port);
}

/* Sticky endpoints first, then a uniform cascade: rule i wins with 1/(n-i). */
static void lb_chain(struct np_ctx *c, const char *name, const struct sport *p,
		     const struct ep *eps, size_t n)
{
	struct sbuf *o = &c->chains;
	sb_addf(o, "\tchain %s {\n", name);
	for (size_t i = 0; i < n; i++) {
		if (!eps[i].aff)
			continue;
		sb_addf(o, "\t\tip saddr @%s ", eps[i].aff);
		dnat(o, p, &eps[i]);
	}
	for (size_t i = 0; i < n; i++) {
		sb_adds(o, "\t\t");
		if (i + 1 < n)
			sb_addf(o, "numgen random mod %zu 0 ", n - i);
		dnat(o, p, &eps[i]);
		if (eps[i].local) /* only a pod of this node can reach itself through it */
			*(uint32_t *)NP_PUSH(&c->arena, c->hairpin) = eps[i].ip;
	}
	sb_adds(o, "\t}\n\n");
}

/* The ClusterIP path without affinity: eps[0..n) as slots of endpoints-PROTO, the
 * verdict the shared chain lb-PROTO-n (netpol.h). */
static const char *lb_shared(struct np_ctx *c, const struct svc *v, const struct sport *p,
			     const struct ep *eps, size_t n)
{
	size_t seq = c->seq++;
	for (size_t i = 0; i < n; i++) {
		struct np_lbelem *e = NP_PUSH(&c->arena, c->lb_elems);
		*e = (struct np_lbelem){ v->cluster_ip, eps[i].ip, (uint32_t)i, p->port, eps[i].port,
					 p->proto, seq };
		if (eps[i].local)
			*(uint32_t *)NP_PUSH(&c->arena, c->hairpin) = eps[i].ip;
	}
	*(uint32_t *)NP_PUSH(&c->arena, c->lb_used) = (uint32_t)p->proto << 24 | (uint32_t)n;
	return np_afmt(c, "goto lb-%s-%zu", np_proto_name(p->proto), n);
}

static void ext_chain(struct np_ctx *c, const struct svc *v, const char *name,
		      const char *svc_chain, const char *local_chain)
{
	struct sbuf *o = &c->chains;
	sb_addf(o, "\tchain %s {\n", name);
	if (!v->etp_local) {
		sb_addf(o, "\t\tjump mark-for-masquerade\n\t\tgoto %s\n\t}\n\n", svc_chain);
		return;
	}
	if (c->have_cluster_cidr)
		sb_addf(o, "\t\tip saddr %s goto %s\n", c->cluster_cidr_text, svc_chain);
	sb_addf(o, "\t\tfib saddr type local jump mark-for-masquerade\n"
		   "\t\tfib saddr type local goto %s\n", svc_chain);
	if (local_chain)
		sb_addf(o, "\t\tgoto %s\n", local_chain);
	sb_adds(o, "\t}\n\n");
}

static void affinity_sets(struct np_ctx *c, const struct svc *v, const struct sport *p,
			  struct ep *eps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sbuf r = SBUF_INIT;
		sb_addf(&r, "%s/", p->readable);
		np_fmt_ip(&r, eps[i].ip);
		sb_addf(&r, "/%u", eps[i].port);
		eps[i].aff = np_name(c, "aff", r.buf);
		sb_release(&r);
		sb_addf(&c->sets, "\tset %s {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n"
				  "\t\ttimeout %llds\n\t}\n\n", eps[i].aff, v->timeout);
	}
}

static void comment(struct np_ctx *c, const struct svc *v, const struct sport *p,
		    size_t n, size_t nlocal)
{
	struct sbuf *o = &c->chains;
	sb_addf(o, "\t# %s: ", p->readable);
	np_fmt_ip(o, v->cluster_ip);
	sb_addf(o, ":%u", p->port);
	for (size_t i = 0; i < v->ext_ips.n; i++) {
		sb_adds(o, ", ");
		np_fmt_ip(o, v->ext_ips.v[i]);
		sb_addf(o, ":%u", p->port);
	}
	if (p->node_port)
		sb_addf(o, ", nodePort %u", p->node_port);
	sb_addf(o, "; endpoints: %zu, local: %zu\n", n, nlocal);
}

struct plan {
	const char *svc, *local, *ext;  /* chain names, NULL when not used */
	const char *shared;             /* the ClusterIP's verdict without affinity */
	bool internal_ok, external_ok, has_eps;
};

static void elements(struct np_ctx *c, const struct svc *v, const struct sport *p,
		     const struct plan *pl)
{
	const char *reject = pl->has_eps ? "drop" : "goto reject-chain";
	if (pl->internal_ok)
		VELEM(c, c->svc_ips, v->cluster_ip, p->proto, p->port,
		      pl->shared ? pl->shared : np_afmt(c, "goto %s", v->itp_local ? pl->local : pl->svc));
	else
		VELEM(c, c->noep_ips, v->cluster_ip, p->proto, p->port, reject);
	for (size_t i = 0; i < v->ext_ips.n; i++) {
		if (pl->ext)
			VELEM(c, c->svc_ips, v->ext_ips.v[i], p->proto, p->port,
			      np_afmt(c, "goto %s", pl->ext));
		if (!pl->external_ok)
			VELEM(c, c->noep_ips, v->ext_ips.v[i], p->proto, p->port, reject);
	}
	if (!p->node_port)
		return;
	if (pl->ext)
		VELEM(c, c->svc_nodeports, 0, p->proto, p->node_port, np_afmt(c, "goto %s", pl->ext));
	if (!pl->external_ok)
		VELEM(c, c->noep_nodeports, 0, p->proto, p->node_port, reject);
}

static int one_port(struct svcs *s, const struct svc *v, const struct sport *p)
{
	struct np_ctx *c = s->c;
	struct ep *eps = NULL;
	size_t n = 0, nl = 0;
	if (endpoints(s, v, p, &eps, &n) < 0)
		return -1;
	struct ep *local = arena_alloc(&c->arena, (n ? n : 1) * sizeof(*local));
	bool external = p->node_port || v->ext_ips.n;
	struct plan pl = { NULL, NULL, NULL, NULL, false, false, n > 0 };
	if (v->affinity && n)
		affinity_sets(c, v, p, eps, n);
	for (size_t i = 0; i < n; i++)
		if (eps[i].local)
			local[nl++] = eps[i];
	pl.internal_ok = v->itp_local ? nl > 0 : n > 0;
	pl.external_ok = v->etp_local ? nl > 0 : n > 0;
	if (!v->affinity && pl.internal_ok)
		pl.shared = v->itp_local ? lb_shared(c, v, p, local, nl) : lb_shared(c, v, p, eps, n);
	if (n && (external || (v->affinity && !v->itp_local)))
		pl.svc = np_name(c, "svc", p->readable);
	if (nl && ((v->affinity && v->itp_local) || (v->etp_local && external)))
		pl.local = np_name(c, "local", p->readable);
	if (n && external)
		pl.ext = np_name(c, "ext", p->readable);
	if (pl.svc || pl.local || pl.ext)
		comment(c, v, p, n, nl);
	if (pl.svc)
		lb_chain(c, pl.svc, p, eps, n);
	if (pl.local)
		lb_chain(c, pl.local, p, local, nl);
	if (pl.ext)
		ext_chain(c, v, pl.ext, pl.svc, pl.local);
	elements(c, v, p, &pl);
	return 0;
}

static int one_service(struct svcs *s, const json_t *o)
{
	struct np_ctx *c = s->c;
	struct svc v;
	memset(&v, 0, sizeof(v));
	v.ns = np_str(o, "namespace", "");
	v.name = np_str(o, "name", "");
	int r = read_svc(s, o, &v);
	if (r <= 0)
		return r;
	*(uint32_t *)NP_PUSH(&c->arena, c->cluster_ips) = v.cluster_ip;
	size_t n = json_array_size(v.ports);
	struct sport *ps = arena_alloc(&c->arena, (n ? n : 1) * sizeof(*ps));
	for (size_t i = 0; i < n; i++)
		if (read_port(s, &v, i, &ps[i]) < 0)
			return -1;
	if (n)
		qsort(ps, n, sizeof(*ps), cmp_sport);
	for (size_t i = 0; i < n; i++) {
		if (i && !cmp_sport(&ps[i - 1], &ps[i]))
			return np_fail(c, "%s: ports: %u/%s is listed twice", s->where, ps[i].port,
				       np_proto_name(ps[i].proto));
		if (one_port(s, &v, &ps[i]) < 0)
			return -1;
	}
	return 0;
}

/* ---- all services ----------------------------------------------------------- */

struct sref {
	const char *ns, *name;
	size_t index;
	const json_t *o;
};

static int cmp_sref(const void *a, const void *b)
{
	const struct sref *x = a, *y = b;
	int r = strcmp(x->ns, y->ns);
	return r ? r : strcmp(x->name, y->name);
}

static void index_pods(struct svcs *s)
{
	struct np_ctx *c = s->c;
	s->nby = c->pods.n;
	s->by_ip = arena_alloc(&c->arena, (s->nby ? s->nby : 1) * sizeof(*s->by_ip));
	for (size_t i = 0; i < s->nby; i++)
		s->by_ip[i] = &c->pods.v[i];
	if (s->nby)
		qsort(s->by_ip, s->nby, sizeof(*s->by_ip), cmp_pod_ip);
}

int np_services(struct np_ctx *c, const json_t *input)
{
	const json_t *arr, *o;
	size_t i, n = 0;
	if (np_array(c, input, "services", &arr) < 0)
		return -1;
	struct svcs s = { c, NULL, 0, NULL };
	struct sref *refs = arena_alloc(&c->arena, (json_array_size(arr) + 1) * sizeof(*refs));
	json_array_foreach(arr, i, o) {
		const char *ns = np_str(o, "namespace", NULL), *name = np_str(o, "name", NULL);
		if (!ns || !name || !np_ident_ok(ns) || !np_ident_ok(name))
			return np_fail(c, "services[%zu]: namespace and name: missing or invalid", i);
		refs[n++] = (struct sref){ ns, name, i, o };
	}
	if (n)
		qsort(refs, n, sizeof(*refs), cmp_sref);
	for (i = 1; i < n; i++)
		if (!cmp_sref(&refs[i - 1], &refs[i]))
			return np_fail(c, "services: %s/%s is listed twice", refs[i].ns, refs[i].name);
	index_pods(&s);
	for (i = 0; i < n; i++) {
		s.where = np_afmt(c, "services[%zu] (%s/%s)", refs[i].index, refs[i].ns, refs[i].name);
		if (one_service(&s, refs[i].o) < 0)
			return -1;
	}
	return 0;
}
