/* netpol: Services and NetworkPolicy for one node, compiled into one nftables
 * transaction (text). A pure function: no I/O, no clock, no randomness; the
 * same input gives the same bytes. Loading the text into the kernel is the job of
 * the separate GPL-2.0 applier `gitops-nft` (netpol/applier/, docs/licensing.md),
 * which reads it on stdin and runs it as ONE libnftables transaction.
 *
 * Calling sequence:
 *
 *     struct sbuf out = SBUF_INIT;
 *     struct gerr *err = NULL;
 *     if (netpol_compile(input, &out, &err) < 0) { report err->msg; gerr_free(err); }
 *     else feed out.buf to `gitops-nft [--check]`;
 *     sb_release(&out);
 *
 * Ownership: `input` is borrowed and never modified. The text is appended to
 * `out` (the caller's buffer). Internally one arena per call holds every working
 * allocation and is released before return (success or failure).
 *
 * ---- input: one JSON object -------------------------------------------------
 *
 *   "family"      "ip" (default; IPv4 only for now)
 *   "table"       our table's name (default "gitops"): [A-Za-z][A-Za-z0-9_-]*, <= 64
 *   "nodeIPs"     [IPv4]: THIS node's addresses. NodePorts are served on the
 *                 non-loopback ones; traffic from them to local pods is always
 *                 allowed by NetworkPolicy
 *   "podCIDR"     this node's pod range (optional; checked, not used yet)
 *   "clusterCIDR" every pod's range (optional): a connection to a ClusterIP from
 *                 outside it is masqueraded, and pods reaching an
 *                 externalTrafficPolicy=Local service from outside in keep the
 *                 cluster-wide endpoints (kube-proxy's local-traffic detector);
 *                 pod traffic leaving it is masqueraded (ip-masq-agent's default;
 *                 the CNI plugin does not masquerade, so pods see pods' addresses)
 *   "services"    [ {
 *       "namespace", "name"             [A-Za-z0-9_.-]+ (they end up in chain names)
 *       "type"                          ClusterIP (default) | NodePort | LoadBalancer
 *                                       (NodePorts + loadBalancerIPs) | ExternalName
 *                                       (no rules)
 *       "clusterIP"                     IPv4; "None", "" or absent: headless, no rules
 *       "ports": [ { "name", "protocol" (TCP default | UDP | SCTP), "port",
 *                    "targetPort" (number or name; default port), "nodePort" } ]
 *       "externalIPs": [IPv4]
 *       "loadBalancerIPs": [IPv4]        (status.loadBalancer.ingress): like externalIPs
 *       "sessionAffinity"               None (default) | ClientIP
 *       "timeoutSeconds"                sessionAffinityConfig.clientIP's (default 10800)
 *       "externalTrafficPolicy"         Cluster (default) | Local
 *       "internalTrafficPolicy"         Cluster (default) | Local
 *       "publishNotReadyAddresses"      bool: not-ready endpoints are used too
 *       "endpoints": [ { "ip", "node", "local": bool (on this node),
 *                        "ready": bool (default true),
 *                        "ports": { service port name, or its number as a
 *                                   string when unnamed : target port number } } ]
 *     } ]
 *     An endpoint's target port for a service port: its "ports" entry when the
 *     endpoint has a "ports" object (no entry: the endpoint does not serve that
 *     port); else a numeric targetPort; else the named targetPort resolved on the
 *     pod with the endpoint's IP (not found: not served).
 *   "pods"        [ { "namespace", "name", "ip" (none: ignored), "labels": {},
 *                     "local": bool (runs on this node), "hostNetwork": bool,
 *                     "ports": [ { "name", "containerPort", "protocol" } ] } ]
 *                 every pod of the cluster: peers are selected among them;
 *                 local pods not on the host network are the policy targets
 *   "namespaces"  [ { "name", "labels": {} } ]; the label
 *                 kubernetes.io/metadata.name=NAME is always present
 *   "policies"    [ NetworkPolicy: { "namespace", "name", "podSelector",
 *                   "policyTypes" (required: already defaulted), "ingress",
 *                   "egress" } ] — or a whole object with metadata and spec
 *
 * ---- output: one transaction ------------------------------------------------
 *
 *   add table ip T / delete table ip T / table ip T { ... }: the table is
 *   replaced whole, atomically (nft -f is one transaction; the "add" makes the
 *   "delete" valid on the first load). No other table is touched. ClientIP
 *   affinity entries start afresh on every load.
 *
 * Services (kube-proxy's nftables mode):
 *   nat prerouting (dstnat) and output (-100, dstnat) jump `services`:
 *   `ip daddr . meta l4proto . th dport vmap @service-ips` (ClusterIPs and
 *   externalIPs) and `ip daddr @node-ips meta l4proto . th dport vmap
 *   @service-nodeports`: one lookup whatever the number of Services.
 *   A ClusterIP port without affinity is an element `IP . proto . port : goto
 *   lb-PROTO-N` (N: its endpoints), and its endpoints are elements of one map per
 *   protocol, `endpoints-PROTO`: `IP . port . SLOT : endpoint-IP . port`, slots
 *   0..N-1; the chain lb-PROTO-N, shared by every Service with N endpoints, is the
 *   one rule `dnat ip to ip daddr . PROTO dport . numgen random mod N map
 *   @endpoints-PROTO` (uniform). So an endpoint added or removed changes elements
 *   only: no rule, and the kernel does not re-validate the table's chains (the
 *   rules of ~10,000 chains cost ~20 ms per transaction).
 *   With affinity, and for NodePort/externalIP traffic, a chain per service port
 *   `svc-…` picks an endpoint with a cascade
 *   `numgen random mod (N-i) 0 … dnat to IP:PORT` (uniform). No anonymous
 *   `numgen … vmap { … }` (10,000 of them take ~30 s to load) and no chain per
 *   endpoint (30,000 chains load in ~1.5 s, the cascade in ~0.8 s); the
 *   per-endpoint work kube-proxy does there is a set lookup (hairpin) or an
 *   inline `update @aff-…` (affinity). `local-…` does the same over local endpoints
 *   (traffic policy Local); `ext-…` handles NodePort/externalIP traffic (mark
 *   for masquerade with policy Cluster; with Local: pods and the node itself
 *   take the cluster chain, others only local endpoints, none: drop).
 *   ClientIP affinity: one timeout set per endpoint (`aff-…`), checked first,
 *   refreshed on every new connection.
 *   Masquerade at postrouting (srcnat) of packets marked NETPOL_MASQ_MARK and of
 *   hairpin connections (client is the endpoint: `@hairpin-endpoints`, this node's
 *   endpoints only: a remote endpoint never hairpins here). New connections skip
 *   `endpoints-check` once DNATed (`ct status dnat return`).
 *   filter input/forward/output (priority filter) jump `endpoints-check` for new
 *   connections: services with no endpoints `reject` (ICMP port unreachable,
 *   as kube-proxy), Local policy with no local endpoint: drop, any other port of
 *   a ClusterIP: reject.
 *
 * NetworkPolicy (networking.k8s.io/v1, all of it), enforced for LOCAL pods:
 *   filter forward (after DNAT, so policies see endpoint addresses):
 *   `ct state established,related accept`, then `ip saddr vmap @pod-egress`
 *   (jump: returns when allowed) and `ip daddr vmap @pod-ingress` (goto).
 *   Local pods selected by the same policies (and resolving named ports alike)
 *   share one chain `ingress-HASH`/`egress-HASH` with two interval sets:
 *   `…-ports` of `peer . proto . port-range` and `…-all` of peers allowed on
 *   every protocol. Elements are normalized to disjoint intervals (the kernel
 *   refuses overlaps). ipBlock matches any address, pods' included; `except`
 *   only carves out of its own peer. Named ports: ingress resolves on the
 *   selected pod, egress on each destination pod (non-pod destinations have
 *   no named ports). Traffic between a pod and its own node never crosses the
 *   forward hook (and the node's addresses are accepted anyway).
 *
 * Names: chains and sets are "PREFIX-HASH-readable" (HASH: 8 base32 characters
 * of FNV-1a 64 over the readable part), bounded to NETPOL_NAME_MAX; policy
 * groups are "ingress-HASH"/"egress-HASH" with 13 characters (a collision is an
 * error, never a silent merge). Everything is sorted: equal inputs in any order
 * give equal text; among duplicate map keys (two Services claiming one IP and
 * port) the Service first by namespace/name wins.
 */
#ifndef GITOPS_NETPOL_H
#define GITOPS_NETPOL_H

#include <jansson.h>

#include "lib/lib.h"

#define NETPOL_MASQ_MARK    0x4000u   /* kube-proxy's default masquerade bit */
#define NETPOL_NAME_MAX     127       /* chain/set names (kernel: 255) */
#define NETPOL_MAX_ITEMS    1000000   /* any one array of the input */
#define NETPOL_AFFINITY_MAX 86400     /* timeoutSeconds upper bound (Kubernetes) */

/* Compile `input` (shape above) into nft script text appended to `out`.
 * Returns 0, or -1 with *err set ("services[2] (ns/web): ports[0]: …") and `out`
 * untouched. */
int netpol_compile(const json_t *input, struct sbuf *out, struct gerr **err);

/* The change from the table netpol_compile(old_input) loads to the one
 * netpol_compile(new_input) loads, as one transaction appended to `out`
 * (netpol/delta.c): new sets and chains, changed chains flushed and refilled,
 * elements deleted and added, removed chains and sets deleted. Unchanged objects
 * are not touched (ClientIP affinity entries of unchanged endpoints survive).
 * Returns 0: `out` holds the delta (nothing at all when the tables are equal;
 * it applies only to a kernel table that is exactly old's: on a failed load,
 * load the whole table); 1: `out` holds the whole table of new_input, because no
 * delta expresses the change (the table name, a base chain or a set's declaration
 * changed; old_input does not compile) or the delta would be larger; -1: new_input
 * does not compile, *err set and `out` untouched. Both inputs are compiled in full:
 * netpol_compile() of each, then netpol_script_delta() of the two texts. */
int netpol_compile_delta(const json_t *old_input, const json_t *new_input,
			 struct sbuf *out, struct gerr **err);

/* The same from two texts netpol_compile() wrote (NUL-terminated, borrowed): the
 * table old_script loads to the one new_script loads. A caller that kept the text it
 * loaded last compiles only the new input (what the node does, runtime/network.c).
 * Returns 0 (the delta, or nothing, appended to `out`) or 1 (new_script appended
 * whole: old_script is not netpol_compile() output, the change has no delta, or the
 * delta would be larger); never fails. With 0 and ret_touched non-NULL, it gets what
 * the delta changes, in the order of the table (sets and maps by name, then chains):
 * "chain NAME" (created, deleted or its rules changed), "set NAME" (a set or map
 * created or deleted, or more than 64 of its elements changed), else "element NAME
 * KEY" for each key whose element was added, deleted or given another value (KEY as
 * the script writes it, e.g. "10.96.0.1 . tcp . 80"). */
int netpol_script_delta(const char *old_script, const char *new_script, struct sbuf *out,
			struct strvec *ret_touched);

/* The change of a few Services, without compiling the others (netpol/partial.c):
 * `loaded` is the whole script the table has (netpol_compile()'s, or this function's
 * ret_loaded since); old_part and new_part are inputs with the same settings as the
 * whole one and only these Services (the same ones in both: as loaded, and as they are
 * now), and the pods their named targetPorts need; no policies (a partial input
 * changes Services only). The caller promises that every Service of the whole input
 * that has an endpoint at any pod IP whose endpoints changed is in both (a pod shared
 * by Services gets one hairpin element), and that nothing else changed.
 * Returns 0: the delta appended to `out` (nothing when the tables are equal), the
 * loaded text with it applied to ret_loaded (the base of the next delta: the table
 * a whole compile of the new input gives, in another order), and what it
 * touches to ret_touched (as netpol_script_delta); 1: nothing appended, the change
 * needs the whole input compiled (loaded is not a compiled table, a shared object
 * differs, a key is claimed by another Service…); -1: new_part does not compile. */
int netpol_partial_delta(const char *loaded, const json_t *old_part, const json_t *new_part,
			 struct sbuf *out, struct sbuf *ret_loaded, struct strvec *ret_touched,
			 struct gerr **err);

#ifdef NETPOL_INTERNAL
/* ---- internal to the netpol sources, not part of the public surface ------------------ */
#include <stdint.h>

enum { NP_TCP = 6, NP_UDP = 17, NP_SCTP = 132 };

struct np_range { uint32_t lo, hi; };                 /* addresses, inclusive */
struct np_box {                                      /* addresses x proto x ports */
	uint32_t alo, ahi;
	uint16_t plo, phi;
	uint8_t proto;
};

/* A verdict-map element: key (ip . proto . port, or proto . port) : verdict. */
struct np_velem {
	uint32_t ip;
	uint16_t port;
	uint8_t proto;
	size_t seq;           /* insertion order: first wins among duplicate keys */
	const char *verdict;  /* "goto svc-…" (arena) */
};

/* An endpoints-PROTO element: ClusterIP . port . slot : endpoint . port. */
struct np_lbelem {
	uint32_t ip, eip, slot;
	uint16_t port, eport;
	uint8_t proto;
	size_t seq;           /* the service port's: the first claiming a key wins */
};

/* Arena-backed growable array: v[0..n). */
#define NP_VEC(type) struct { type *v; size_t n, cap; }
void *np_vec_push(struct arena *a, void *vec_v, size_t *n, size_t *cap, size_t sz);
#define NP_PUSH(ar, vec) np_vec_push((ar), &(vec).v, &(vec).n, &(vec).cap, sizeof(*(vec).v))

struct np_pod {
	const char *ns, *name;
	uint32_t ip;
	bool local;
	bool host_network;        /* never a policy target */
	const json_t *labels;     /* object or NULL */
	const json_t *ports;      /* array or NULL */
	const json_t *ns_labels;  /* its namespace's labels, or NULL */
};

struct np_selection;

struct np_ctx {
	struct arena arena;
	struct gerr **err;
	const char *table;
	NP_VEC(uint32_t) node_ips;        /* sorted, unique, no loopback */
	bool have_cluster_cidr;
	struct np_range cluster_cidr;
	const char *cluster_cidr_text;    /* canonical "a.b.c.d/n" */
	/* pods (with an IP) sorted by namespace/name, namespaces */
	NP_VEC(struct np_pod) pods;
	NP_VEC(const json_t *) nss;
	/* service results */
	NP_VEC(struct np_velem) svc_ips, svc_nodeports, noep_ips, noep_nodeports;
	NP_VEC(struct np_velem) pod_ingress, pod_egress;
	NP_VEC(uint32_t) cluster_ips, hairpin;
	NP_VEC(struct np_lbelem) lb_elems;  /* endpoints-PROTO elements */
	NP_VEC(uint32_t) lb_used;           /* proto << 24 | N: the lb-PROTO-N chains */
	struct sbuf sets;      /* affinity and policy set declarations */
	struct sbuf chains;    /* service chains */
	struct sbuf pchains;   /* policy chains */
	struct np_selection **selections;  /* policy.c: pods per peer, remembered */
	size_t seq;
};

/* delta.c: a compiled table read back (the layout emit() writes), and a delta written */
enum np_kind { NP_K_SET, NP_K_MAP, NP_K_CHAIN };
extern const char *const np_kind_word[];   /* "set", "map", "chain" */
struct np_obj {
	enum np_kind kind;
	const char *name;
	const char *head_text;       /* "type …; flags …;", a base chain's hook line, or "" */
	NP_VEC(const char *) items;  /* elements (sets, maps: sorted by key) or rules (in order) */
};
struct np_table {
	const char *name;
	NP_VEC(struct np_obj) objs;  /* sorted: sets and maps by name, then chains by name */
};
/* Parses `text` (modified in place, items point into it); -1: not emit()'s layout. */
int np_read_table(struct arena *ar, char *text, struct np_table *t);
const char *np_map_key_end(const char *e);           /* the end of an element's key */
int np_cmp_key(const char *a, const char *b);        /* elements by key */
int np_cmp_obj(const void *a, const void *b);        /* the order of np_table.objs */
bool np_same_rules(const struct np_obj *a, const struct np_obj *b);
/* The transaction's parts, written in this order by np_dout_write. */
struct np_dout {
	const char *table;
	struct sbuf decl, chains, rules, del_elems, add_elems, del_chains, del_sets;
};
void np_dout_init(struct np_dout *d, const char *table);
size_t np_dout_len(struct np_dout *d);
void np_dout_write(struct np_dout *d, struct sbuf *out);
void np_dout_release(struct np_dout *d);
/* "VERB element ip TABLE NAME { … }" of items[0..n) (their keys only when keys_only) */
void np_elements_cmd(struct sbuf *o, const char *verb, const char *table, const struct np_obj *s,
		     const char *const *items, size_t n, bool keys_only);
void np_chain_rules(struct np_dout *d, const struct np_obj *c);   /* "add rule" of each */
void np_new_obj(struct np_dout *d, const struct np_obj *o);       /* declared and filled */
/* Names o as touched (netpol.h): "chain N"; "set N"; or with keys (n of them, the
 * elements that change), "element N KEY" each when n <= NP_TOUCH_ELEMENTS. */
#define NP_TOUCH_ELEMENTS 64
void np_touch(struct strvec *t, const struct np_obj *o, const char *const *keys, size_t n);

/* compile.c: shared helpers */
int np_fail(struct np_ctx *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
char *np_name(struct np_ctx *c, const char *prefix, const char *readable);
char *np_hash_name(struct np_ctx *c, const char *prefix, const char *key, size_t chars);
bool np_ident_ok(const char *s);
int np_parse_ip(const char *s, uint32_t *ret);
int np_parse_cidr(const char *s, struct np_range *ret);
void np_fmt_ip(struct sbuf *sb, uint32_t ip);
void np_fmt_range(struct sbuf *sb, uint32_t lo, uint32_t hi);
const char *np_proto_name(uint8_t proto);
int np_proto_parse(const json_t *v, uint8_t *ret);   /* NULL = TCP */
/* Members of an object: absent (or of another type, for np_str/np_bool) → def. */
const char *np_str(const json_t *o, const char *key, const char *def);
int np_int(const json_t *o, const char *key, long long min, long long max,
	   long long def, long long *ret);
bool np_bool(const json_t *o, const char *key, bool def);
void np_sort_u32(uint32_t *v, size_t *n);   /* sort + unique */
char *np_afmt(struct np_ctx *c, const char *fmt, ...) PRINTF_LIKE(2, 3); /* in the arena */
/* input[key]: an array (at most NETPOL_MAX_ITEMS), or *ret = NULL when absent. */
int np_array(struct np_ctx *c, const json_t *input, const char *key, const json_t **ret);
/* The pod's containerPort named `name` with protocol `proto`, or 0. */
int np_pod_named_port(const struct np_pod *pod, const char *name, uint8_t proto);
int np_inputs(struct np_ctx *c, const json_t *input);

/* intervals.c */
size_t np_ranges_normalize(struct np_range *v, size_t n);  /* sort + merge; new n */
void np_boxes_normalize(struct arena *a, const struct np_box *in, size_t n,
			struct np_box **ret, size_t *ret_n);
/* [net] minus each except (all within the same family): disjoint ranges. */
void np_range_minus(struct arena *a, struct np_range net, const struct np_range *ex,
		    size_t nex, struct np_range **ret, size_t *ret_n);
void np_fmt_port_range(struct sbuf *sb, uint16_t lo, uint16_t hi);

/* services.c, policy.c */
int np_services(struct np_ctx *c, const json_t *input);
int np_policies(struct np_ctx *c, const json_t *input);
/* selector.c: LabelSelector (matchLabels, matchExpressions) against labels.
 * `synth_name` (namespaces): kubernetes.io/metadata.name's value. 1/0, -1: bad. */
int np_selector_match(const json_t *sel, const json_t *labels, const char *synth_name);
int np_selector_check(const json_t *sel);
#endif

#endif
