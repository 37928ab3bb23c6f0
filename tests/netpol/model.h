/* tests/netpol/model.h: included by tests/unit/test_netpol.c — a NetworkPolicy
 * truth-table check in the manner of sig-network's cyclonus: generate policies at
 * random over pods x/y/z × a/b/c (plus two non-pod addresses), compute every
 * (source, destination, protocol, port) verdict with a direct reading of the
 * Kubernetes semantics, and compare with what the compiled ruleset decides
 * (pod-ingress/pod-egress maps → chain → its -ports/-all interval sets). */

#define M_CASES 400

static uint32_t m_seed = 20240601;

static uint32_t m_rand(uint32_t n)
{
	m_seed = m_seed * 1103515245u + 12345u;
	return (m_seed >> 8) % n;
}

static const char *const m_names[] = { "a", "b", "c" };
static const char *const m_nss[] = { "x", "y", "z" };

/* ---- reading the compiled text ------------------------------------------------ */

struct m_elem {
	struct np_range a;
	uint8_t proto;    /* 0 in -all sets */
	uint16_t plo, phi;
};

/* The text between "elements = {" and "}" after `header`, or NULL. */
static char *m_elements(const char *text, const char *header)
{
	const char *p = strstr(text, header), *e, *end;
	if (!p)
		return NULL;
	end = strstr(p, "\n\t}\n");
	e = strstr(p, "elements = {");
	if (!e || (end && e > end))
		return xstrdup("");
	e += strlen("elements = {");
	return xstrndup(e, strcspn(e, "}"));
}

static void m_addr(const char *s, struct np_range *r)
{
	char *dash = strchr(s, '-');
	if (dash) {
		char *lo = xstrndup(s, (size_t)(dash - s));
		assert_int_equal(np_parse_ip(lo, &r->lo), 0);
		assert_int_equal(np_parse_ip(dash + 1, &r->hi), 0);
		free(lo);
	} else
		assert_int_equal(np_parse_cidr(s, r), 0);
}

static uint8_t m_proto(const char *s)
{
	return !strcmp(s, "udp") ? NP_UDP : !strcmp(s, "sctp") ? NP_SCTP : NP_TCP;
}

/* Elements of set NAME: "addr" or "addr . proto . ports". */
static struct m_elem *m_set(const char *text, const char *name, size_t *ret_n)
{
	char *hdr = xasprintf("\tset %s {\n", name), *body = m_elements(text, hdr), *save = NULL;
	struct m_elem *v = NULL;
	size_t n = 0, alloc = 0;
	free(hdr);
	for (char *tok = body ? strtok_r(body, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
		char a[64], pr[8], pt[16];
		int k = sscanf(tok, " %63s . %7s . %15s", a, pr, pt);
		GROW(v, alloc, n + 1);
		memset(&v[n], 0, sizeof(v[n]));
		m_addr(a, &v[n].a);
		if (k == 3) {
			unsigned lo, hi;
			v[n].proto = m_proto(pr);
			if (sscanf(pt, "%u-%u", &lo, &hi) != 2)
				hi = lo = (unsigned)strtoul(pt, NULL, 10);
			v[n].plo = (uint16_t)lo;
			v[n].phi = (uint16_t)hi;
		}
		n++;
	}
	free(body);
	*ret_n = n;
	return v;
}

/* The chain a pod-ingress/pod-egress element sends `ip` to, or NULL. */
static char *m_chain(const char *text, const char *map, uint32_t ip)
{
	char *hdr = xasprintf("\tmap %s {\n", map), *body = m_elements(text, hdr), *save = NULL, *r = NULL;
	free(hdr);
	for (char *tok = body ? strtok_r(body, ",", &save) : NULL; tok && !r; tok = strtok_r(NULL, ",", &save)) {
		char a[32], verdict[8], chain[128];
		uint32_t x;
		if (sscanf(tok, " %31s : %7s %127s", a, verdict, chain) == 3 && np_parse_ip(a, &x) == 0 && x == ip)
			r = xstrdup(chain);
	}
	free(body);
	return r;
}

/* What the ruleset decides at one pod: its chain's sets, parsed once per case. */
struct m_view {
	bool isolated[2];
	struct m_elem *set[2][2];  /* [dir][0: -ports, 1: -all] */
	size_t n[2][2];
};

static void m_view_build(const char *text, uint32_t ip, struct m_view *v)
{
	memset(v, 0, sizeof(*v));
	for (int dir = 0; dir < 2; dir++) {
		char *chain = m_chain(text, dir ? "pod-egress" : "pod-ingress", ip);
		if (!chain)
			continue;
		v->isolated[dir] = true;
		for (int k = 0; k < 2; k++) {
			char *name = xasprintf("%s-%s", chain, k ? "all" : "ports");
			v->set[dir][k] = m_set(text, name, &v->n[dir][k]);
			free(name);
		}
		free(chain);
	}
}

static void m_view_free(struct m_view *v)
{
	for (int dir = 0; dir < 2; dir++)
		for (int k = 0; k < 2; k++)
			free(v->set[dir][k]);
}

static bool m_compiled(const struct m_view *v, int dir, uint32_t peer_ip, uint8_t proto, uint16_t port)
{
	if (!v->isolated[dir])
		return true;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < v->n[dir][k]; i++) {
			const struct m_elem *e = &v->set[dir][k][i];
			if (peer_ip >= e->a.lo && peer_ip <= e->a.hi &&
			    (!e->proto || (e->proto == proto && port >= e->plo && port <= e->phi)))
				return true;
		}
	return false;
}

/* ---- the reference: Kubernetes' reading, rule by rule ------------------------- */

struct m_ep {
	uint32_t ip;
	const json_t *pod;  /* NULL: not a pod */
};

static int m_named(const json_t *pod, const char *name, uint8_t proto)
{
	const json_t *x;
	size_t i;
	json_array_foreach(json_object_get(pod, "ports"), i, x) {
		uint8_t p;
		np_proto_parse(json_object_get(x, "protocol"), &p);
		if (!strcmp(json_string_value(json_object_get(x, "name")), name) && p == proto)
			return (int)json_integer_value(json_object_get(x, "containerPort"));
	}
	return -1;
}

static bool m_peer(const json_t *pol, const json_t *peer, const struct m_ep *e)
{
	const json_t *ib = json_object_get(peer, "ipBlock"), *x;
	size_t i;
	if (ib) {
		struct np_range r;
		np_parse_cidr(json_string_value(json_object_get(ib, "cidr")), &r);
		if (e->ip < r.lo || e->ip > r.hi)
			return false;
		json_array_foreach(json_object_get(ib, "except"), i, x) {
			np_parse_cidr(json_string_value(x), &r);
			if (e->ip >= r.lo && e->ip <= r.hi)
				return false;
		}
		return true;
	}
	if (!e->pod)
		return false;
	const char *pns = json_string_value(json_object_get(e->pod, "namespace"));
	const json_t *nsel = json_object_get(peer, "namespaceSelector");
	json_t *nsl = json_pack("{s:s}", "ns", pns);
	bool ns_ok = nsel ? np_selector_match(nsel, nsl, pns) == 1 :
		     !strcmp(pns, json_string_value(json_object_get(pol, "namespace")));
	json_decref(nsl);
	return ns_ok && np_selector_match(json_object_get(peer, "podSelector"),
					  json_object_get(e->pod, "labels"), NULL) == 1;
}

static bool m_port(const json_t *p, int dir, const json_t *self, const struct m_ep *peer,
		   uint8_t proto, uint16_t port)
{
	uint8_t want;
	const json_t *v = json_object_get(p, "port"), *end = json_object_get(p, "endPort");
	np_proto_parse(json_object_get(p, "protocol"), &want);
	if (want != proto)
		return false;
	if (!v)
		return true;
	if (json_is_integer(v))
		return end ? port >= json_integer_value(v) && port <= json_integer_value(end) :
			     port == json_integer_value(v);
	const json_t *owner = dir ? (peer->pod) : self;
	return owner && m_named(owner, json_string_value(v), proto) == port;
}

static bool m_rule(const json_t *pol, const json_t *rule, int dir, const json_t *self,
		   const struct m_ep *peer, uint8_t proto, uint16_t port)
{
	const json_t *peers = json_object_get(rule, dir ? "to" : "from"), *ports = json_object_get(rule, "ports"), *x;
	size_t i;
	bool peer_ok = json_array_size(peers) == 0, port_ok = json_array_size(ports) == 0;
	json_array_foreach(peers, i, x)
		peer_ok |= m_peer(pol, x, peer);
	json_array_foreach(ports, i, x)
		port_ok |= m_port(x, dir, self, peer, proto, port);
	return peer_ok && port_ok;
}

static bool m_reference(const json_t *pols, int dir, const struct m_ep *self, const struct m_ep *peer,
			uint8_t proto, uint16_t port)
{
	const json_t *pol, *t, *rule;
	size_t i, j;
	bool isolated = false, allowed = false;
	if (!self->pod || !json_is_true(json_object_get(self->pod, "local")))
		return true;
	json_array_foreach(pols, i, pol) {
		bool typed = false;
		json_array_foreach(json_object_get(pol, "policyTypes"), j, t)
			typed |= !strcmp(json_string_value(t), dir ? "Egress" : "Ingress");
		if (!typed || strcmp(json_string_value(json_object_get(pol, "namespace")),
				     json_string_value(json_object_get(self->pod, "namespace"))) ||
		    np_selector_match(json_object_get(pol, "podSelector"),
				      json_object_get(self->pod, "labels"), NULL) != 1)
			continue;
		isolated = true;
		json_array_foreach(json_object_get(pol, dir ? "egress" : "ingress"), j, rule)
			allowed |= m_rule(pol, rule, dir, self->pod, peer, proto, port);
	}
	return !isolated || allowed;
}

/* ---- generating policies -------------------------------------------------------- */

static const char *m_pod_ip(uint32_t ns, uint32_t p)
{
	static const char *const ips[3][3] = {
		{ "10.244.1.10", "10.244.1.11", "10.244.2.12" },
		{ "10.244.1.20", "10.244.2.21", "10.244.2.22" },
		{ "10.244.2.30", "10.244.1.31", "10.244.2.32" },
	};
	return ips[ns][p];
}

static json_t *m_selector(const char *key, const char *const *vals)
{
	switch (m_rand(4)) {
	case 0:
		return json_object();
	case 1:
		return json_pack("{s:{s:s}}", "matchLabels", key, vals[m_rand(3)]);
	case 2:
		return json_pack("{s:[{s:s, s:s, s:[s, s]}]}", "matchExpressions", "key", key,
				 "operator", m_rand(2) ? "In" : "NotIn", "values", vals[m_rand(3)], vals[m_rand(3)]);
	default:
		return json_pack("{s:[{s:s, s:s}]}", "matchExpressions", "key", key,
				 "operator", m_rand(3) ? "Exists" : "DoesNotExist");
	}
}

static json_t *m_ipblock(void)
{
	static const char *const cidrs[] = { "0.0.0.0/0", "10.244.0.0/16", "10.244.1.0/24", "10.244.2.0/25" };
	json_t *ex = json_array();
	for (uint32_t k = m_rand(3); k > 0; k--)
		json_array_append_new(ex, json_string(m_pod_ip(m_rand(3), m_rand(3))));
	if (m_rand(4) == 0)
		json_array_append_new(ex, json_string("10.244.2.0/26"));
	return json_pack("{s:{s:s, s:o}}", "ipBlock", "cidr", cidrs[m_rand(4)], "except", ex);
}

static json_t *m_peer_gen(void)
{
	switch (m_rand(4)) {
	case 0:
		return json_pack("{s:o}", "podSelector", m_selector("pod", m_names));
	case 1:
		return json_pack("{s:o}", "namespaceSelector", m_selector("ns", m_nss));
	case 2:
		return json_pack("{s:o, s:o}", "podSelector", m_selector("pod", m_names),
				 "namespaceSelector", m_selector("ns", m_nss));
	default:
		return m_ipblock();
	}
}

static json_t *m_port_gen(void)
{
	static const char *const protos[] = { "TCP", "UDP", "SCTP" };
	static const char *const named[] = { "serve-80-tcp", "serve-81-udp", "serve-82-sctp" };
	uint32_t k = m_rand(3);
	json_t *p = json_pack("{s:s}", "protocol", protos[k]);
	switch (m_rand(4)) {
	case 0:
		break;
	case 1:
		json_object_set_new(p, "port", json_string(named[m_rand(3) ? k : m_rand(3)]));
		break;
	case 2:
		json_object_set_new(p, "port", json_integer(80 + m_rand(3)));
		break;
	default:
		json_object_set_new(p, "port", json_integer(79 + m_rand(3)));
		json_object_set_new(p, "endPort", json_integer(81 + m_rand(8000)));
	}
	return p;
}

static json_t *m_rules(void)
{
	json_t *rules = json_array();
	for (uint32_t r = m_rand(3); r > 0; r--) {
		json_t *peers = json_array(), *ports = json_array();
		for (uint32_t k = m_rand(3); k > 0; k--)
			json_array_append_new(peers, m_peer_gen());
		for (uint32_t k = m_rand(3); k > 0; k--)
			json_array_append_new(ports, m_port_gen());
		json_array_append_new(rules, json_pack("{s:o, s:o}", "peers", peers, "ports", ports));
	}
	return rules;
}

static json_t *m_policy(uint32_t i)
{
	char *name = xasprintf("p%u", i);
	uint32_t types = 1 + m_rand(3);
	json_t *pt = json_array(), *in = m_rules(), *eg = m_rules(), *r;
	size_t k;
	if (types & 1)
		json_array_append_new(pt, json_string("Ingress"));
	if (types & 2)
		json_array_append_new(pt, json_string("Egress"));
	json_array_foreach(in, k, r) {
		json_object_set(r, "from", json_object_get(r, "peers"));
		json_object_del(r, "peers");
	}
	json_array_foreach(eg, k, r) {
		json_object_set(r, "to", json_object_get(r, "peers"));
		json_object_del(r, "peers");
	}
	json_t *p = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "namespace", m_nss[m_rand(3)], "name", name,
			      "podSelector", m_selector("pod", m_names), "policyTypes", pt, "ingress", in,
			      "egress", eg);
	free(name);
	return p;
}

static json_t *m_case(bool all_local)
{
	json_t *pods = json_array(), *nss = json_array(), *pols = json_array();
	for (uint32_t n = 0; n < 3; n++) {
		json_array_append_new(nss, json_pack("{s:s, s:{s:s}}", "name", m_nss[n], "labels", "ns", m_nss[n]));
		for (uint32_t p = 0; p < 3; p++)
			json_array_append_new(pods, json_pack(
				"{s:s, s:s, s:s, s:b, s:{s:s}, s:[{s:s, s:i, s:s}, {s:s, s:i, s:s}, {s:s, s:i, s:s}]}",
				"namespace", m_nss[n], "name", m_names[p], "ip", m_pod_ip(n, p),
				"local", all_local || m_rand(2), "labels", "pod", m_names[p], "ports",
				"name", "serve-80-tcp", "containerPort", n == 0 && p == 1 ? 8080 : 80, "protocol", "TCP",
				"name", "serve-81-udp", "containerPort", 81, "protocol", "UDP",
				"name", "serve-82-sctp", "containerPort", 82, "protocol", "SCTP"));
	}
	for (uint32_t i = 1 + m_rand(4); i > 0; i--)
		json_array_append_new(pols, m_policy(i));
	return json_pack("{s:[s], s:o, s:o, s:o}", "nodeIPs", "192.168.1.10", "namespaces", nss,
			 "pods", pods, "policies", pols);
}

/* ---- the check ------------------------------------------------------------------------ */

static size_t m_endpoints(const json_t *in, struct m_ep *eps)
{
	const json_t *pod;
	size_t i, n = 0;
	memset(eps, 0, 16 * sizeof(*eps));
	json_array_foreach(json_object_get(in, "pods"), i, pod) {
		np_parse_ip(json_string_value(json_object_get(pod, "ip")), &eps[n].ip);
		eps[n++].pod = pod;
	}
	np_parse_ip("10.244.2.99", &eps[n++].ip);   /* in the pod range, no pod */
	np_parse_ip("198.51.100.7", &eps[n++].ip);  /* outside the cluster */
	return n;
}

static const struct { uint8_t proto; uint16_t port; } m_probes[] = {
	{ NP_TCP, 80 }, { NP_TCP, 81 }, { NP_UDP, 81 }, { NP_SCTP, 82 }, { NP_TCP, 8080 }, { NP_TCP, 9000 },
};

static size_t m_check_case(const json_t *in, const char *text)
{
	struct m_ep eps[16];
	struct m_view views[16];
	size_t n = m_endpoints(in, eps), checked = 0;
	for (size_t i = 0; i < n; i++)
		m_view_build(text, eps[i].ip, &views[i]);
	const json_t *pols = json_object_get(in, "policies");
	for (size_t s = 0; s < n; s++)
		for (size_t d = 0; d < n; d++)
			for (size_t k = 0; k < ARRAY_SIZE(m_probes); k++) {
				uint8_t pr = m_probes[k].proto;
				uint16_t pt = m_probes[k].port;
				for (int dir = 0; dir < 2; dir++) {
					size_t si = dir ? s : d;
					const struct m_ep *self = &eps[si], *peer = dir ? &eps[d] : &eps[s];
					bool want = m_reference(pols, dir, self, peer, pr, pt);
					bool got = m_compiled(&views[si], dir, peer->ip, pr, pt);
					if (want != got) {
						char *dump = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
						fail_msg("%s %s: %s . %s . %u: reference %s, compiled %s\ninput: %s\n%s",
							 dir ? "egress of" : "ingress to", json_string_value(
								 json_object_get(self->pod, "name")),
							 dir ? "to" : "from", np_proto_name(pr), pt,
							 want ? "allows" : "denies", got ? "allows" : "denies", dump, text);
						free(dump);
					}
					checked++;
				}
			}
	for (size_t i = 0; i < n; i++)
		m_view_free(&views[i]);
	return checked;
}

static void test_model(void **state)
{
	size_t checked = 0;
	for (int i = 0; i < M_CASES; i++) {
		json_t *in = m_case(i % 2 == 0);
		char *text = compile_ok(in);
		checked += m_check_case(in, text);
		free(text);
		json_decref(in);
	}
	printf("# netpol model: %d generated cases, %zu verdicts agree\n", M_CASES, checked);
}
