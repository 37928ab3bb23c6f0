/* netpol/policy.c: NetworkPolicy → per-group chains and interval sets for local pods. */
#define NETPOL_INTERNAL
#include "netpol/netpol.h"

#include <stdlib.h>
#include <string.h>

enum { IN = 0, EG = 1 };
static const char *const dir_name[2] = { "ingress", "egress" };
static const char *const peers_key[2] = { "from", "to" };

struct pol {
	const char *ns, *name;
	const json_t *pod_sel;
	const json_t *rules[2];   /* ingress / egress arrays, or NULL */
	bool types[2];            /* listed in policyTypes */
	bool named[2];            /* some rule uses a named port */
	size_t index;
};

struct acc {                      /* what one group allows */
	NP_VEC(struct np_box) boxes;
	NP_VEC(struct np_range) all;
};

struct peers {
	bool all;
	NP_VEC(struct np_range) ranges;       /* ipBlocks, excepts carved out */
	NP_VEC(const struct np_pod *) pods;   /* selected pods */
};

/* ---- reading policies -------------------------------------------------------- */

static int pol_fail(struct np_ctx *c, const struct pol *p, const char *what)
{
	return np_fail(c, "policies[%zu] (%s/%s): %s", p->index, p->ns, p->name, what);
}

static int check_port(const json_t *port)
{
	uint8_t proto;
	const json_t *v = json_object_get(port, "port"), *e = json_object_get(port, "endPort");
	if (!json_is_object(port) || np_proto_parse(json_object_get(port, "protocol"), &proto) < 0)
		return -1;
	if (v && !json_is_null(v) && !(json_is_string(v) && np_ident_ok(json_string_value(v))) &&
	    !(json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 65535))
		return -1;
	if (!e || json_is_null(e))
		return 0;
	return json_is_integer(v) && json_is_integer(e) && json_integer_value(e) >= json_integer_value(v) &&
	       json_integer_value(e) <= 65535 ? 0 : -1;
}

static int check_peer(const json_t *peer)
{
	const json_t *ib = json_object_get(peer, "ipBlock"), *ex, *x;
	const json_t *ps = json_object_get(peer, "podSelector"), *ns = json_object_get(peer, "namespaceSelector");
	struct np_range r;
	size_t i;
	if (!json_is_object(peer))
		return -1;
	if (!ib || json_is_null(ib))
		return (ps && !json_is_null(ps)) || (ns && !json_is_null(ns)) ?
		       (np_selector_check(ps) | np_selector_check(ns)) : -1;
	if (np_parse_cidr(np_str(ib, "cidr", NULL), &r) < 0)
		return -1;
	ex = json_object_get(ib, "except");
	if (ex && !json_is_null(ex) && !json_is_array(ex))
		return -1;
	json_array_foreach(ex, i, x)
		if (np_parse_cidr(json_string_value(x), &r) < 0)
			return -1;
	return 0;
}

/* Checks one direction's rules; notes named ports. */
static int check_rules(struct np_ctx *c, struct pol *p, int d)
{
	const json_t *rule, *x;
	size_t i, j;
	if (p->rules[d] && !json_is_array(p->rules[d]))
		return pol_fail(c, p, d ? "egress: must be an array" : "ingress: must be an array");
	json_array_foreach(p->rules[d], i, rule) {
		const json_t *ports = json_object_get(rule, "ports"), *peers = json_object_get(rule, peers_key[d]);
		if (!json_is_object(rule) || (ports && !json_is_null(ports) && !json_is_array(ports)) ||
		    (peers && !json_is_null(peers) && !json_is_array(peers)))
			return np_fail(c, "policies[%zu] (%s/%s): %s[%zu]: malformed rule", p->index,
				       p->ns, p->name, dir_name[d], i);
		json_array_foreach(ports, j, x) {
			if (check_port(x) < 0)
				return np_fail(c, "policies[%zu] (%s/%s): %s[%zu].ports[%zu]: invalid port",
					       p->index, p->ns, p->name, dir_name[d], i, j);
			p->named[d] |= json_is_string(json_object_get(x, "port"));
		}
		json_array_foreach(peers, j, x)
			if (check_peer(x) < 0)
				return np_fail(c, "policies[%zu] (%s/%s): %s[%zu].%s[%zu]: invalid peer",
					       p->index, p->ns, p->name, dir_name[d], i, peers_key[d], j);
	}
	return 0;
}

static int read_types(struct np_ctx *c, struct pol *p, const json_t *spec)
{
	const json_t *types = json_object_get(spec, "policyTypes"), *t;
	size_t i;
	if (!json_is_array(types))
		return pol_fail(c, p, "policyTypes: required (the input is defaulted)");
	json_array_foreach(types, i, t) {
		const char *s = json_string_value(t);
		if (s && !strcmp(s, "Ingress"))
			p->types[IN] = true;
		else if (s && !strcmp(s, "Egress"))
			p->types[EG] = true;
		else
			return pol_fail(c, p, "policyTypes: only Ingress and Egress");
	}
	return 0;
}

static int read_pol(struct np_ctx *c, const json_t *o, size_t index, struct pol *p)
{
	const json_t *spec = json_object_get(o, "spec"), *meta = json_object_get(o, "metadata");
	if (!spec)
		spec = o;
	p->index = index;
	p->ns = np_str(meta ? meta : o, "namespace", NULL);
	p->name = np_str(meta ? meta : o, "name", NULL);
	if (!p->ns || !p->name || !np_ident_ok(p->ns) || !np_ident_ok(p->name))
		return np_fail(c, "policies[%zu]: namespace and name: missing or invalid", index);
	p->pod_sel = json_object_get(spec, "podSelector");
	if (np_selector_check(p->pod_sel) < 0)
		return pol_fail(c, p, "podSelector: malformed");
	p->rules[IN] = json_object_get(spec, "ingress");
	p->rules[EG] = json_object_get(spec, "egress");
	for (int d = IN; d <= EG; d++)
		if (json_is_null(p->rules[d]))
			p->rules[d] = NULL;
	if (read_types(c, p, spec) < 0 || check_rules(c, p, IN) < 0 || check_rules(c, p, EG) < 0)
		return -1;
	return 0;
}

static int cmp_pol(const void *a, const void *b)
{
	const struct pol *x = a, *y = b;
	int r = strcmp(x->ns, y->ns);
	return r ? r : strcmp(x->name, y->name);
}

/* ---- peers ------------------------------------------------------------------- */

static void ipblock(struct np_ctx *c, const json_t *ib, struct peers *pe)
{
	const json_t *ex = json_object_get(ib, "except"), *x;
	struct np_range net, *cut = arena_alloc(&c->arena, (json_array_size(ex) + 1) * sizeof(*cut)), *out;
	size_t i, nout;
	np_parse_cidr(np_str(ib, "cidr", NULL), &net); /* checked by check_peer */
	json_array_foreach(ex, i, x)
		np_parse_cidr(json_string_value(x), &cut[i]);
	np_range_minus(&c->arena, net, cut, json_array_size(ex), &out, &nout);
	for (i = 0; i < nout; i++)
		*(struct np_range *)NP_PUSH(&c->arena, pe->ranges) = out[i];
}

/* Pods a peer selects, remembered by (policy namespace, peer): policies often
 * repeat a peer ("namespaceSelector: {team: a}") and selecting walks every pod. */
struct np_selection {
	struct np_selection *next;
	const char *key;
	const struct np_pod **pods;
	size_t n;
};

#define SELECTION_BUCKETS 4096

static const struct np_selection *selection(struct np_ctx *c, const struct pol *p, const json_t *peer)
{
	char *text = json_dumps(peer, JSON_COMPACT | JSON_SORT_KEYS);
	struct sbuf key = SBUF_INIT;
	sb_addf(&key, "%s\n%s", p->ns, text ? text : "");
	free(text);
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
	for (size_t i = 0; i < key.len; i++)
		h = (h ^ (unsigned char)key.buf[i]) * 1099511628211ULL;
	if (!c->selections)
		c->selections = arena_alloc(&c->arena, SELECTION_BUCKETS * sizeof(*c->selections));
	struct np_selection **b = &c->selections[h % SELECTION_BUCKETS], *s;
	for (s = *b; s && strcmp(s->key, key.buf); s = s->next)
		;
	if (!s) {
		/* podSelector (in the policy's namespace unless namespaceSelector says) AND
		 * namespaceSelector (null: the policy's namespace; {}: every namespace) */
		const json_t *ps = json_object_get(peer, "podSelector"), *ns = json_object_get(peer, "namespaceSelector");
		NP_VEC(const struct np_pod *) v = { NULL, 0, 0 };
		for (size_t i = 0; i < c->pods.n; i++) {
			const struct np_pod *pod = &c->pods.v[i];
			bool ns_ok = !ns || json_is_null(ns) ? !strcmp(pod->ns, p->ns) :
				     np_selector_match(ns, pod->ns_labels, pod->ns) == 1;
			if (ns_ok && np_selector_match(ps, pod->labels, NULL) == 1)
				*(const struct np_pod **)NP_PUSH(&c->arena, v) = pod;
		}
		s = arena_alloc(&c->arena, sizeof(*s));
		*s = (struct np_selection){ *b, arena_strndup(&c->arena, key.buf, key.len), v.v, v.n };
		*b = s;
	}
	sb_release(&key);
	return s;
}

static void select_pods(struct np_ctx *c, const struct pol *p, const json_t *peer, struct peers *pe)
{
	const struct np_selection *s = selection(c, p, peer);
	for (size_t i = 0; i < s->n; i++)
		*(const struct np_pod **)NP_PUSH(&c->arena, pe->pods) = s->pods[i];
}

static void eval_peers(struct np_ctx *c, const struct pol *p, const json_t *list, struct peers *pe)
{
	const json_t *peer;
	size_t i;
	memset(pe, 0, sizeof(*pe));
	pe->all = json_array_size(list) == 0;
	json_array_foreach(list, i, peer) {
		const json_t *ib = json_object_get(peer, "ipBlock");
		if (ib && !json_is_null(ib))
			ipblock(c, ib, pe);
		else
			select_pods(c, p, peer, pe);
	}
}

/* ---- rules → boxes ------------------------------------------------------------- */

static void box(struct np_ctx *c, struct acc *a, uint32_t lo, uint32_t hi, uint8_t proto,
		uint16_t plo, uint16_t phi)
{
	*(struct np_box *)NP_PUSH(&c->arena, a->boxes) = (struct np_box){ lo, hi, plo, phi, proto };
}

static void peer_boxes(struct np_ctx *c, struct acc *a, const struct peers *pe, uint8_t proto,
		       uint16_t plo, uint16_t phi)
{
	if (pe->all)
		box(c, a, 0, UINT32_MAX, proto, plo, phi);
	for (size_t i = 0; i < pe->ranges.n; i++)
		box(c, a, pe->ranges.v[i].lo, pe->ranges.v[i].hi, proto, plo, phi);
	for (size_t i = 0; i < pe->pods.n; i++)
		box(c, a, pe->pods.v[i]->ip, pe->pods.v[i]->ip, proto, plo, phi);
}

static bool in_peers(const struct peers *pe, const struct np_pod *pod)
{
	if (pe->all)
		return true;
	for (size_t i = 0; i < pe->ranges.n; i++)
		if (pod->ip >= pe->ranges.v[i].lo && pod->ip <= pe->ranges.v[i].hi)
			return true;
	for (size_t i = 0; i < pe->pods.n; i++)
		if (pe->pods.v[i] == pod)
			return true;
	return false;
}

/* Egress to a named port: each destination pod resolves the name itself. */
static void named_egress(struct np_ctx *c, struct acc *a, const struct peers *pe,
			 const char *name, uint8_t proto)
{
	for (size_t i = 0; i < c->pods.n; i++) {
		const struct np_pod *pod = &c->pods.v[i];
		int port = in_peers(pe, pod) ? np_pod_named_port(pod, name, proto) : 0;
		if (port > 0)
			box(c, a, pod->ip, pod->ip, proto, (uint16_t)port, (uint16_t)port);
	}
}

static void one_port(struct np_ctx *c, struct acc *a, const struct peers *pe, const json_t *port,
		     int d, const struct np_pod *self)
{
	uint8_t proto;
	const json_t *v = json_object_get(port, "port"), *e = json_object_get(port, "endPort");
	np_proto_parse(json_object_get(port, "protocol"), &proto); /* checked */
	if (json_is_string(v)) {
		int num = d == IN ? np_pod_named_port(self, json_string_value(v), proto) : 0;
		if (d == EG)
			named_egress(c, a, pe, json_string_value(v), proto);
		else if (num > 0)
			peer_boxes(c, a, pe, proto, (uint16_t)num, (uint16_t)num);
		return;
	}
	uint16_t lo = json_is_integer(v) ? (uint16_t)json_integer_value(v) : 0;
	uint16_t hi = json_is_integer(e) ? (uint16_t)json_integer_value(e) : json_is_integer(v) ? lo : UINT16_MAX;
	peer_boxes(c, a, pe, proto, lo, hi);
}

static void one_rule(struct np_ctx *c, struct acc *a, const struct pol *p, const json_t *rule,
		     int d, const struct np_pod *self)
{
	const json_t *ports = json_object_get(rule, "ports"), *port;
	struct peers pe;
	size_t i;
	eval_peers(c, p, json_object_get(rule, peers_key[d]), &pe);
	if (json_array_size(ports) == 0) {
		if (pe.all)
			*(struct np_range *)NP_PUSH(&c->arena, a->all) = (struct np_range){ 0, UINT32_MAX };
		for (i = 0; i < pe.ranges.n; i++)
			*(struct np_range *)NP_PUSH(&c->arena, a->all) = pe.ranges.v[i];
		for (i = 0; i < pe.pods.n; i++)
			*(struct np_range *)NP_PUSH(&c->arena, a->all) =
				(struct np_range){ pe.pods.v[i]->ip, pe.pods.v[i]->ip };
		return;
	}
	json_array_foreach(ports, i, port)
		one_port(c, a, &pe, port, d, self);
}

/* ---- groups of local pods ------------------------------------------------------ */

struct member {
	const char *key;              /* direction, policies, named-port signature */
	const struct np_pod *pod;
	const struct pol **pols;
	size_t npols;
};

static int cmp_member(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int r = strcmp(x->key, y->key);
	return r ? r : (x->pod->ip < y->pod->ip ? -1 : x->pod->ip > y->pod->ip);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The pod's named ports, sorted: "name/proto/port,…". */
static void named_signature(struct np_ctx *c, const struct np_pod *pod, struct sbuf *sb)
{
	size_t n = json_array_size(pod->ports), m = 0, i;
	const char **v = arena_alloc(&c->arena, (n + 1) * sizeof(*v));
	const json_t *x;
	json_array_foreach(pod->ports, i, x) {
		const char *name = np_str(x, "name", "");
		long long port;
		uint8_t proto;
		if (*name && np_int(x, "containerPort", 1, 65535, 0, &port) == 0 &&
		    np_proto_parse(json_object_get(x, "protocol"), &proto) == 0)
			v[m++] = np_afmt(c, "%s/%s/%lld", name, np_proto_name(proto), port);
	}
	if (m)
		qsort(v, m, sizeof(*v), cmp_str);
	for (i = 0; i < m; i++)
		sb_addf(sb, "%s%s", i ? "," : "", v[i]);
}

static int member(struct np_ctx *c, const struct pol *pols, size_t np, int d,
		  const struct np_pod *pod, struct member *m)
{
	struct sbuf key = SBUF_INIT;
	bool named = false;
	m->pols = arena_alloc(&c->arena, (np + 1) * sizeof(*m->pols));
	m->npols = 0;
	m->pod = pod;
	sb_adds(&key, dir_name[d]);
	for (size_t i = 0; i < np; i++) {
		if (!pols[i].types[d] || strcmp(pols[i].ns, pod->ns))
			continue;
		int r = np_selector_match(pols[i].pod_sel, pod->labels, NULL);
		if (r < 0)
			return np_fail(c, "policies[%zu]: podSelector: malformed", pols[i].index);
		if (!r)
			continue;
		m->pols[m->npols++] = &pols[i];
		named |= pols[i].named[d];
		sb_addf(&key, " %s/%s", pols[i].ns, pols[i].name);
	}
	if (d == IN && named) {
		sb_adds(&key, " | ");
		named_signature(c, pod, &key);
	}
	m->key = arena_strdup(&c->arena, key.buf);
	sb_release(&key);
	return 0;
}

static void set_decl(struct np_ctx *c, const char *name, bool concat)
{
	sb_addf(&c->sets, "\tset %s {\n\t\ttype ipv4_addr%s\n\t\tflags interval\n\t\telements = {",
		name, concat ? " . inet_proto . inet_service" : "");
}

static void emit_sets(struct np_ctx *c, const char *chain, struct acc *a, bool *ret_ports, bool *ret_all)
{
	struct np_box *bx;
	size_t nb, nr = np_ranges_normalize(a->all.v, a->all.n);
	struct sbuf *o = &c->sets;
	np_boxes_normalize(&c->arena, a->boxes.v, a->boxes.n, &bx, &nb);
	if ((*ret_ports = nb > 0))
		set_decl(c, np_afmt(c, "%s-ports", chain), true);
	for (size_t i = 0; i < nb; i++) {
		sb_adds(o, i ? ",\n\t\t\t     " : " ");
		np_fmt_range(o, bx[i].alo, bx[i].ahi);
		sb_addf(o, " . %s . ", np_proto_name(bx[i].proto));
		np_fmt_port_range(o, bx[i].plo, bx[i].phi);
	}
	if (nb)
		sb_adds(o, " }\n\t}\n\n");
	if ((*ret_all = nr > 0))
		set_decl(c, np_afmt(c, "%s-all", chain), false);
	for (size_t i = 0; i < nr; i++) {
		sb_adds(o, i ? ",\n\t\t\t     " : " ");
		np_fmt_range(o, a->all.v[i].lo, a->all.v[i].hi);
	}
	if (nr)
		sb_adds(o, " }\n\t}\n\n");
}

static void group_comment(struct sbuf *o, const struct member *m, size_t n)
{
	sb_adds(o, "\t\t# policies:");
	for (size_t i = 0; i < m->npols; i++)
		sb_addf(o, " %s/%s", m->pols[i]->ns, m->pols[i]->name);
	sb_adds(o, "\n\t\t# pods:");
	for (size_t i = 0; i < n && i < 8; i++)
		sb_addf(o, " %s/%s", m[i].pod->ns, m[i].pod->name);
	if (n > 8)
		sb_addf(o, " and %zu more", n - 8);
	sb_adds(o, "\n");
}

/* One chain and its sets for the n members m[0..n) (same key). */
static void group(struct np_ctx *c, int d, const struct member *m, size_t n, const char *chain)
{
	struct acc a;
	bool ports, all;
	const char *addr = d == IN ? "ip saddr" : "ip daddr", *ok = d == IN ? "accept" : "return";
	memset(&a, 0, sizeof(a));
	for (size_t i = 0; i < m->npols; i++) {
		const json_t *rule;
		size_t j;
		json_array_foreach(m->pols[i]->rules[d], j, rule)
			one_rule(c, &a, m->pols[i], rule, d, m->pod);
	}
	emit_sets(c, chain, &a, &ports, &all);
	sb_addf(&c->pchains, "\tchain %s {\n", chain);
	group_comment(&c->pchains, m, n);
	if (d == IN)
		sb_adds(&c->pchains, "\t\tip saddr @node-ips accept\n");
	if (ports)
		sb_addf(&c->pchains, "\t\t%s . meta l4proto . th dport @%s-ports %s\n", addr, chain, ok);
	if (all)
		sb_addf(&c->pchains, "\t\t%s @%s-all %s\n", addr, chain, ok);
	sb_adds(&c->pchains, "\t\tdrop\n\t}\n\n");
	for (size_t i = 0; i < n; i++) {
		struct np_velem *e = d == IN ? NP_PUSH(&c->arena, c->pod_ingress) : NP_PUSH(&c->arena, c->pod_egress);
		e->ip = m[i].pod->ip;
		e->seq = c->seq++;
		e->verdict = np_afmt(c, "%s %s", d == IN ? "goto" : "jump", chain);
	}
}

static int direction(struct np_ctx *c, const struct pol *pols, size_t np, int d)
{
	NP_VEC(struct member) ms = { NULL, 0, 0 };
	for (size_t i = 0; i < c->pods.n; i++) {
		struct member m;
		if (!c->pods.v[i].local || c->pods.v[i].host_network)
			continue;
		if (member(c, pols, np, d, &c->pods.v[i], &m) < 0)
			return -1;
		if (m.npols)
			*(struct member *)NP_PUSH(&c->arena, ms) = m;
	}
	if (ms.n)
		qsort(ms.v, ms.n, sizeof(*ms.v), cmp_member);
	const char **names = arena_alloc(&c->arena, (ms.n + 1) * sizeof(*names));
	size_t ng = 0;
	for (size_t i = 0, j; i < ms.n; i = j) {
		for (j = i + 1; j < ms.n && !strcmp(ms.v[i].key, ms.v[j].key); j++)
			;
		names[ng] = np_hash_name(c, dir_name[d], ms.v[i].key, 13);
		group(c, d, &ms.v[i], j - i, names[ng++]);
	}
	if (ng)
		qsort(names, ng, sizeof(*names), cmp_str);
	for (size_t i = 1; i < ng; i++)
		if (!strcmp(names[i - 1], names[i]))
			return np_fail(c, "policy chain name collision on %s", names[i]);
	return 0;
}

int np_policies(struct np_ctx *c, const json_t *input)
{
	const json_t *arr, *o;
	size_t i;
	if (np_array(c, input, "policies", &arr) < 0)
		return -1;
	struct pol *pols = arena_alloc(&c->arena, (json_array_size(arr) + 1) * sizeof(*pols));
	json_array_foreach(arr, i, o) {
		if (!json_is_object(o))
			return np_fail(c, "policies[%zu]: must be an object", i);
		if (read_pol(c, o, i, &pols[i]) < 0)
			return -1;
	}
	size_t n = json_array_size(arr);
	if (n)
		qsort(pols, n, sizeof(*pols), cmp_pol);
	for (i = 1; i < n; i++)
		if (!cmp_pol(&pols[i - 1], &pols[i]))
			return np_fail(c, "policies: %s/%s is listed twice", pols[i].ns, pols[i].name);
	if (direction(c, pols, n, IN) < 0 || direction(c, pols, n, EG) < 0)
		return -1;
	return 0;
}
