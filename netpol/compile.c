/* netpol/compile.c: netpol_compile — reads the input, then writes the whole table. */
#define NETPOL_INTERNAL
#include "netpol/netpol.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* ---- small shared helpers ------------------------------------------------- */

void *np_vec_push(struct arena *a, void *vec_v, size_t *n, size_t *cap, size_t sz)
{
	void *v;
	memcpy(&v, vec_v, sizeof(v));
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		void *nv = arena_alloc(a, ncap * sz);
		if (!nv)
			abort(); /* unlimited arena: only on overflow */
		if (*n)
			memcpy(nv, v, *n * sz);
		v = nv;
		*cap = ncap;
		memcpy(vec_v, &v, sizeof(v));
	}
	void *slot = (char *)v + (*n)++ * sz;
	memset(slot, 0, sz);
	return slot;
}

int np_fail(struct np_ctx *c, const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	gerr_set(c->err, GERR_FAIL, "%s", sb.buf);
	sb_release(&sb);
	return -1;
}

static uint64_t fnv1a64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void base32(uint64_t h, size_t chars, char *out)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	for (size_t i = 0; i < chars; i++) {
		out[i] = alpha[h >> 59];
		h <<= 5;
	}
	out[chars] = '\0';
}

/* "prefix-HASH8-readable", cut at NETPOL_NAME_MAX (the hash keeps it unique). */
char *np_name(struct np_ctx *c, const char *prefix, const char *readable)
{
	char h[16];
	base32(fnv1a64(readable), 8, h);
	size_t pl = strlen(prefix), rl = strlen(readable), len = pl + 1 + 8 + 1 + rl;
	if (len > NETPOL_NAME_MAX)
		len = NETPOL_NAME_MAX;
	char *s = arena_alloc(&c->arena, len + 1);
	if (!s)
		abort();
	snprintf(s, len + 1, "%s-%s-%s", prefix, h, readable);
	return s;
}

char *np_hash_name(struct np_ctx *c, const char *prefix, const char *key, size_t chars)
{
	char h[16];
	base32(fnv1a64(key), chars > 13 ? 13 : chars, h);
	char *s = xasprintf("%s-%s", prefix, h);
	char *r = arena_strdup(&c->arena, s);
	free(s);
	return r;
}

/* Names and namespaces embedded in identifiers and comments: [A-Za-z0-9_.-]. */
bool np_ident_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char ch = s[n];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_'))
			return false;
	}
	return n > 0 && n <= 253;
}

int np_parse_ip(const char *s, uint32_t *ret)
{
	struct in_addr a;
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*ret = ntohl(a.s_addr);
	return 0;
}

/* "a.b.c.d/n" (host bits are masked off) or a bare address (/32). */
int np_parse_cidr(const char *s, struct np_range *ret)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	int64_t bits = 32;
	char *ip = slash ? xstrndup(s, (size_t)(slash - s)) : xstrdup(s ? s : "");
	uint32_t a;
	int r = np_parse_ip(ip, &a);
	free(ip);
	if (r < 0 || (slash && parse_i64(slash + 1, 0, 32, &bits) < 0))
		return -1;
	uint32_t mask = bits ? ~0u << (32 - bits) : 0;
	ret->lo = a & mask;
	ret->hi = ret->lo | ~mask;
	return 0;
}

void np_fmt_ip(struct sbuf *sb, uint32_t ip)
{
	sb_addf(sb, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

/* One address, a prefix when [lo, hi] is exactly one, else "lo-hi". */
void np_fmt_range(struct sbuf *sb, uint32_t lo, uint32_t hi)
{
	np_fmt_ip(sb, lo);
	if (lo == hi)
		return;
	uint32_t size = hi - lo; /* size + 1 addresses */
	if ((size & (size + 1)) == 0 && (lo & size) == 0) {
		int bits = 32;
		for (uint32_t s = size; s; s >>= 1)
			bits--;
		sb_addf(sb, "/%d", bits);
		return;
	}
	sb_addc(sb, '-');
	np_fmt_ip(sb, hi);
}

const char *np_proto_name(uint8_t proto)
{
	return proto == NP_UDP ? "udp" : proto == NP_SCTP ? "sctp" : "tcp";
}

int np_proto_parse(const json_t *v, uint8_t *ret)
{
	const char *s = v && !json_is_null(v) ? json_string_value(v) : "TCP";
	if (s && !strcmp(s, "TCP"))
		*ret = NP_TCP;
	else if (s && !strcmp(s, "UDP"))
		*ret = NP_UDP;
	else if (s && !strcmp(s, "SCTP"))
		*ret = NP_SCTP;
	else
		return -1;
	return 0;
}

char *np_afmt(struct np_ctx *c, const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	char *s = arena_strndup(&c->arena, sb.buf, sb.len);
	sb_release(&sb);
	if (!s)
		abort();
	return s;
}

int np_pod_named_port(const struct np_pod *pod, const char *name, uint8_t proto)
{
	const json_t *x;
	size_t i;
	json_array_foreach(pod->ports, i, x) {
		uint8_t p;
		long long port;
		if (!strcmp(np_str(x, "name", ""), name) &&
		    np_proto_parse(json_object_get(x, "protocol"), &p) == 0 && p == proto &&
		    np_int(x, "containerPort", 1, 65535, 0, &port) == 0 && port > 0)
			return (int)port;
	}
	return 0;
}

/* ---- JSON members ------------------------------------------------------------ */

const char *np_str(const json_t *o, const char *key, const char *def)
{
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : def;
}

/* Absent or null → def; present but not an integer in [min, max] → -1. */
int np_int(const json_t *o, const char *key, long long min, long long max,
	   long long def, long long *ret)
{
	const json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		*ret = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -1;
	*ret = json_integer_value(v);
	return 0;
}

bool np_bool(const json_t *o, const char *key, bool def)
{
	const json_t *v = json_object_get(o, key);
	return json_is_boolean(v) ? json_is_true(v) : def;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void np_sort_u32(uint32_t *v, size_t *n)
{
	if (!*n)
		return;
	qsort(v, *n, sizeof(*v), cmp_u32);
	size_t w = 1;
	for (size_t i = 1; i < *n; i++)
		if (v[i] != v[w - 1])
			v[w++] = v[i];
	*n = w;
}

/* ---- the input's top level, namespaces and pods ---------------------------- */

int np_array(struct np_ctx *c, const json_t *input, const char *key, const json_t **ret)
{
	const json_t *v = json_object_get(input, key);
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return np_fail(c, "%s: must be an array", key);
	if (json_array_size(v) > NETPOL_MAX_ITEMS)
		return np_fail(c, "%s: more than %d items", key, NETPOL_MAX_ITEMS);
	*ret = v;
	return 0;
}

static int node_ips(struct np_ctx *c, const json_t *input)
{
	const json_t *arr, *v;
	size_t i;
	if (np_array(c, input, "nodeIPs", &arr) < 0)
		return -1;
	json_array_foreach(arr, i, v) {
		uint32_t ip;
		if (np_parse_ip(json_string_value(v), &ip) < 0)
			return np_fail(c, "nodeIPs[%zu]: not an IPv4 address", i);
		if ((ip >> 24) != 127)
			*(uint32_t *)NP_PUSH(&c->arena, c->node_ips) = ip;
	}
	np_sort_u32(c->node_ips.v, &c->node_ips.n);
	return 0;
}

static int cidrs(struct np_ctx *c, const json_t *input)
{
	struct np_range r;
	const char *pod = np_str(input, "podCIDR", NULL);
	if (pod && *pod && np_parse_cidr(pod, &r) < 0)
		return np_fail(c, "podCIDR: \"%s\" is not an IPv4 CIDR", pod);
	const char *cl = np_str(input, "clusterCIDR", NULL);
	if (!cl || !*cl)
		return 0;
	if (np_parse_cidr(cl, &c->cluster_cidr) < 0)
		return np_fail(c, "clusterCIDR: \"%s\" is not an IPv4 CIDR", cl);
	struct sbuf sb = SBUF_INIT;
	np_fmt_range(&sb, c->cluster_cidr.lo, c->cluster_cidr.hi);
	if (c->cluster_cidr.lo == c->cluster_cidr.hi)
		sb_adds(&sb, "/32");
	c->cluster_cidr_text = arena_strdup(&c->arena, sb.buf);
	sb_release(&sb);
	c->have_cluster_cidr = true;
	return 0;
}

static int cmp_ns(const void *a, const void *b)
{
	return strcmp(np_str(*(const json_t *const *)a, "name", ""),
		      np_str(*(const json_t *const *)b, "name", ""));
}

static int namespaces(struct np_ctx *c, const json_t *input)
{
	const json_t *arr, *v;
	size_t i;
	if (np_array(c, input, "namespaces", &arr) < 0)
		return -1;
	json_array_foreach(arr, i, v) {
		const char *name = np_str(v, "name", NULL);
		const json_t *labels = json_object_get(v, "labels");
		if (!name || !np_ident_ok(name))
			return np_fail(c, "namespaces[%zu]: name: missing or invalid", i);
		if (labels && !json_is_null(labels) && !json_is_object(labels))
			return np_fail(c, "namespaces[%zu] (%s): labels: must be an object", i, name);
		*(const json_t **)NP_PUSH(&c->arena, c->nss) = v;
	}
	if (c->nss.n)
		qsort(c->nss.v, c->nss.n, sizeof(*c->nss.v), cmp_ns);
	return 0;
}

static const json_t *ns_labels(struct np_ctx *c, const char *ns)
{
	size_t lo = 0, hi = c->nss.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(ns, np_str(c->nss.v[mid], "name", ""));
		if (!r)
			return json_object_get(c->nss.v[mid], "labels");
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int cmp_pod(const void *a, const void *b)
{
	const struct np_pod *x = a, *y = b;
	int r = strcmp(x->ns, y->ns);
	return r ? r : strcmp(x->name, y->name);
}

static int one_pod(struct np_ctx *c, size_t i, const json_t *v)
{
	const char *ns = np_str(v, "namespace", NULL), *name = np_str(v, "name", NULL);
	const char *ip = np_str(v, "ip", NULL);
	if (!ns || !name || !np_ident_ok(ns) || !np_ident_ok(name))
		return np_fail(c, "pods[%zu]: namespace and name: missing or invalid", i);
	if (!ip || !*ip)
		return 0;
	struct np_pod *p = NP_PUSH(&c->arena, c->pods);
	if (np_parse_ip(ip, &p->ip) < 0)
		return np_fail(c, "pods[%zu] (%s/%s): ip: \"%s\" is not an IPv4 address", i, ns, name, ip);
	p->ns = ns;
	p->name = name;
	p->local = np_bool(v, "local", false);
	p->host_network = np_bool(v, "hostNetwork", false);
	p->labels = json_object_get(v, "labels");
	p->ports = json_object_get(v, "ports");
	if (p->labels && !json_is_object(p->labels) && !json_is_null(p->labels))
		return np_fail(c, "pods[%zu] (%s/%s): labels: must be an object", i, ns, name);
	if (p->ports && !json_is_array(p->ports) && !json_is_null(p->ports))
		return np_fail(c, "pods[%zu] (%s/%s): ports: must be an array", i, ns, name);
	p->ns_labels = ns_labels(c, ns);
	return 0;
}

static int pods(struct np_ctx *c, const json_t *input)
{
	const json_t *arr, *v;
	size_t i;
	if (np_array(c, input, "pods", &arr) < 0)
		return -1;
	json_array_foreach(arr, i, v)
		if (one_pod(c, i, v) < 0)
			return -1;
	if (c->pods.n)
		qsort(c->pods.v, c->pods.n, sizeof(*c->pods.v), cmp_pod);
	for (i = 1; i < c->pods.n; i++)
		if (!cmp_pod(&c->pods.v[i - 1], &c->pods.v[i]))
			return np_fail(c, "pods: %s/%s is listed twice", c->pods.v[i].ns, c->pods.v[i].name);
	return 0;
}

int np_inputs(struct np_ctx *c, const json_t *input)
{
	if (!json_is_object(input))
		return np_fail(c, "the input must be a JSON object");
	const char *family = np_str(input, "family", "ip");
	if (strcmp(family, "ip"))
		return np_fail(c, "family: \"%s\" is not supported (only \"ip\")", family);
	c->table = np_str(input, "table", "gitops");
	if (!np_ident_ok(c->table) || strlen(c->table) > 64 || c->table[0] == '-' ||
	    (c->table[0] >= '0' && c->table[0] <= '9') || strchr(c->table, '.'))
		return np_fail(c, "table: \"%s\" is not a valid table name", c->table);
	if (node_ips(c, input) < 0 || cidrs(c, input) < 0 || namespaces(c, input) < 0)
		return -1;
	return pods(c, input);
}

/* ---- writing the table ------------------------------------------------------- */

static void u32_set(struct sbuf *o, const char *name, const char *comment,
		    const uint32_t *v, size_t n, bool pair)
{
	sb_addf(o, "\t# %s\n\tset %s {\n\t\ttype ipv4_addr%s\n", comment, name,
		pair ? " . ipv4_addr" : "");
	if (n) {
		sb_adds(o, "\t\telements = {");
		for (size_t i = 0; i < n; i++) {
			sb_adds(o, i ? ",\n\t\t\t     " : " ");
			np_fmt_ip(o, v[i]);
			if (pair) {
				sb_adds(o, " . ");
				np_fmt_ip(o, v[i]);
			}
		}
		sb_adds(o, " }\n");
	}
	sb_adds(o, "\t}\n\n");
}

static int cmp_velem(const void *a, const void *b)
{
	const struct np_velem *x = a, *y = b;
	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

enum vkey { VK_IP_PROTO_PORT, VK_PROTO_PORT, VK_IP };

static void velem_key(struct sbuf *o, const struct np_velem *e, enum vkey k)
{
	if (k != VK_PROTO_PORT)
		np_fmt_ip(o, e->ip);
	if (k == VK_IP_PROTO_PORT)
		sb_adds(o, " . ");
	if (k != VK_IP)
		sb_addf(o, "%s . %u", np_proto_name(e->proto), e->port);
}

/* A verdict map, sorted; among equal keys the first inserted wins. */
static void vmap(struct sbuf *o, const char *name, const char *comment,
		 struct np_velem *v, size_t n, enum vkey k)
{
	static const char *const types[] = {
		"ipv4_addr . inet_proto . inet_service", "inet_proto . inet_service", "ipv4_addr",
	};
	sb_addf(o, "\t# %s\n\tmap %s {\n\t\ttype %s : verdict\n", comment, name, types[k]);
	if (n) {
		qsort(v, n, sizeof(*v), cmp_velem);
		sb_adds(o, "\t\telements = {\n");
		for (size_t i = 0; i < n; i++) {
			if (i && v[i].ip == v[i - 1].ip && v[i].proto == v[i - 1].proto &&
			    v[i].port == v[i - 1].port)
				continue;
			sb_adds(o, i ? ",\n\t\t\t" : "\t\t\t");
			velem_key(o, &v[i], k);
			sb_addf(o, " : %s", v[i].verdict);
		}
		sb_adds(o, "\n\t\t}\n");
	}
	sb_adds(o, "\t}\n\n");
}

static int cmp_lbelem(const void *a, const void *b)
{
	const struct np_lbelem *x = a, *y = b;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* endpoints-PROTO: ClusterIP . port . slot : endpoint . port (netpol.h). The first
 * Service (by namespace/name) claiming a ClusterIP and port wins, as in service-ips. */
static void lb_maps(struct np_ctx *c, struct sbuf *o)
{
	static const uint8_t protos[] = { NP_TCP, NP_UDP, NP_SCTP };
	struct np_lbelem *v = c->lb_elems.v;
	size_t n = c->lb_elems.n;
	if (n)
		qsort(v, n, sizeof(*v), cmp_lbelem);
	for (size_t k = 0; k < ARRAY_SIZE(protos); k++) {
		const char *p = np_proto_name(protos[k]);
		size_t i0 = 0;
		while (i0 < n && v[i0].proto != protos[k])
			i0++;
		if (i0 == n)
			continue;  /* no such map: a protocol's first one is added by a delta */
		sb_addf(o, "\t# the endpoints of ClusterIP %s ports without affinity, slot by slot\n"
			   "\tmap endpoints-%s {\n\t\ttypeof ip daddr . %s dport . numgen random mod 2 :"
			   " ip daddr . %s dport\n", p, p, p, p);
		size_t w = 0, first = 0;  /* first: the element that claimed this key */
		for (size_t i = i0; i < n && v[i].proto == protos[k]; i++) {
			if (!w || v[first].ip != v[i].ip || v[first].port != v[i].port)
				first = i;
			else if (v[first].seq != v[i].seq)
				continue;
			sb_adds(o, w++ ? ",\n\t\t\t" : "\t\telements = {\n\t\t\t");
			np_fmt_ip(o, v[i].ip);
			sb_addf(o, " . %u . %u : ", v[i].port, v[i].slot);
			np_fmt_ip(o, v[i].eip);
			sb_addf(o, " . %u", v[i].eport);
		}
		sb_adds(o, "\n\t\t}\n\t}\n\n");
	}
}

/* lb-PROTO-N for every N in use: the one rule that picks slot 0..N-1. */
static void lb_chains(struct np_ctx *c, struct sbuf *o)
{
	np_sort_u32(c->lb_used.v, &c->lb_used.n);
	for (size_t i = 0; i < c->lb_used.n; i++) {
		const char *p = np_proto_name((uint8_t)(c->lb_used.v[i] >> 24));
		uint32_t n = c->lb_used.v[i] & 0xffffffu;
		sb_addf(o, "\tchain lb-%s-%u {\n\t\tdnat ip to ip daddr . %s dport . numgen random mod %u"
			   " map @endpoints-%s\n\t}\n\n", p, n, p, n, p);
	}
}

static void maps(struct np_ctx *c, struct sbuf *o)
{
	u32_set(o, "node-ips", "this node's addresses: NodePorts, and always allowed to local pods",
		c->node_ips.v, c->node_ips.n, false);
	np_sort_u32(c->cluster_ips.v, &c->cluster_ips.n);
	u32_set(o, "cluster-ips", "every ClusterIP: ports no Service defines are rejected",
		c->cluster_ips.v, c->cluster_ips.n, false);
	np_sort_u32(c->hairpin.v, &c->hairpin.n);
	u32_set(o, "hairpin-endpoints", "endpoint . endpoint: a client reaching itself is masqueraded",
		c->hairpin.v, c->hairpin.n, true);
	vmap(o, "service-ips", "ClusterIP and externalIP traffic",
	     c->svc_ips.v, c->svc_ips.n, VK_IP_PROTO_PORT);
	vmap(o, "service-nodeports", "NodePort traffic to node-ips",
	     c->svc_nodeports.v, c->svc_nodeports.n, VK_PROTO_PORT);
	vmap(o, "no-endpoint-services", "service IPs without usable endpoints",
	     c->noep_ips.v, c->noep_ips.n, VK_IP_PROTO_PORT);
	vmap(o, "no-endpoint-nodeports", "NodePorts without usable endpoints",
	     c->noep_nodeports.v, c->noep_nodeports.n, VK_PROTO_PORT);
	vmap(o, "pod-ingress", "local pods isolated for ingress",
	     c->pod_ingress.v, c->pod_ingress.n, VK_IP);
	vmap(o, "pod-egress", "local pods isolated for egress",
	     c->pod_egress.v, c->pod_egress.n, VK_IP);
	lb_maps(c, o);
}

static void base_chain(struct sbuf *o, const char *name, const char *type, const char *hook,
		       const char *prio, const char *rules)
{
	sb_addf(o, "\tchain %s {\n\t\ttype %s hook %s priority %s; policy accept;\n%s\t}\n\n",
		name, type, hook, prio, rules);
}

static void base_chains(struct sbuf *o)
{
	base_chain(o, "nat-prerouting", "nat", "prerouting", "dstnat", "\t\tjump services\n");
	/* -100 is dstnat: nft before 1.0.7 only names it for prerouting */
	base_chain(o, "nat-output", "nat", "output", "-100", "\t\tjump services\n");
	base_chain(o, "nat-postrouting", "nat", "postrouting", "srcnat", "\t\tjump masquerading\n");
	base_chain(o, "filter-input", "filter", "input", "filter",
		   "\t\tct state new jump endpoints-check\n");
	base_chain(o, "filter-forward", "filter", "forward", "filter",
		   "\t\tct state established,related accept\n"
		   "\t\tct state new jump endpoints-check\n"
		   "\t\tip saddr vmap @pod-egress\n"
		   "\t\tip daddr vmap @pod-ingress\n");
	base_chain(o, "filter-output", "filter", "output", "filter",
		   "\t\tct state new jump endpoints-check\n");
}

static void helper_chains(struct np_ctx *c, struct sbuf *o)
{
	sb_adds(o, "\tchain services {\n");
	if (c->have_cluster_cidr)
		sb_addf(o, "\t\tip saddr != %s ip daddr @cluster-ips jump mark-for-masquerade\n",
			c->cluster_cidr_text);
	sb_adds(o, "\t\tip daddr . meta l4proto . th dport vmap @service-ips\n"
		   "\t\tip daddr @node-ips meta l4proto . th dport vmap @service-nodeports\n\t}\n\n");
	sb_addf(o, "\tchain masquerading {\n"
		   "\t\tct status dnat ip saddr . ip daddr @hairpin-endpoints jump mark-for-masquerade\n");
	if (c->have_cluster_cidr) /* pods reaching out of the cluster (ip-masq-agent's default) */
		sb_addf(o, "\t\tip saddr %s ip daddr != %s jump mark-for-masquerade\n", c->cluster_cidr_text,
			c->cluster_cidr_text);
	sb_addf(o, "\t\tmeta mark & 0x%08x == 0 return\n"
		   "\t\tmeta mark set meta mark xor 0x%08x\n"
		   "\t\tmasquerade fully-random\n\t}\n\n"
		   "\tchain mark-for-masquerade {\n\t\tmeta mark set meta mark or 0x%08x\n\t}\n\n",
		NETPOL_MASQ_MARK, NETPOL_MASQ_MARK, NETPOL_MASQ_MARK);
	sb_adds(o, "\tchain endpoints-check {\n"
		   "\t\tct status dnat return\n"
		   "\t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services\n"
		   "\t\tip daddr @node-ips meta l4proto . th dport vmap @no-endpoint-nodeports\n"
		   "\t\tip daddr @cluster-ips reject\n\t}\n\n"
		   "\tchain reject-chain {\n\t\treject\n\t}\n\n");
}

static void emit(struct np_ctx *c, struct sbuf *o)
{
	sb_addf(o, "# gitops: Services and NetworkPolicy of this node, one transaction\n"
		   "add table ip %s\ndelete table ip %s\ntable ip %s {\n", c->table, c->table, c->table);
	maps(c, o);
	sb_add(o, c->sets.buf, c->sets.len);
	base_chains(o);
	helper_chains(c, o);
	lb_chains(c, o);
	sb_add(o, c->chains.buf, c->chains.len);
	sb_add(o, c->pchains.buf, c->pchains.len);
	if (o->len >= 2 && o->buf[o->len - 1] == '\n' && o->buf[o->len - 2] == '\n')
		sb_setlen(o, o->len - 1);
	sb_adds(o, "}\n");
}

int netpol_compile(const json_t *input, struct sbuf *out, struct gerr **err)
{
	struct np_ctx c;
	memset(&c, 0, sizeof(c));
	arena_init(&c.arena, 0);
	c.err = err;
	sb_init(&c.sets);
	sb_init(&c.chains);
	sb_init(&c.pchains);
	int r = np_inputs(&c, input);
	if (r == 0)
		r = np_services(&c, input);
	if (r == 0)
		r = np_policies(&c, input);
	if (r == 0)
		emit(&c, out);
	sb_release(&c.sets);
	sb_release(&c.chains);
	sb_release(&c.pchains);
	arena_release(&c.arena);
	return r < 0 ? -1 : 0;
}
