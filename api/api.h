/* api: the object model — YAML decode with positions, schema-driven validation and
 * defaulting, kinds, label selectors, quantities, cron schedules, JSON/YAML encode.
 *
 * Ownership: an api_set owns everything decoded into it (one arena per set: every
 * ynode, string and diagnostic is freed by api_set_release). Pointers returned by
 * accessors point into the set and live as long as it does. Functions returning
 * json_t* give the caller a new reference.
 *
 * Limits (hostile input): see API_MAX_* below; breaching one is an error
 * diagnostic on that file, never a crash or unbounded memory.
 */
#ifndef GITOPS_API_H
#define GITOPS_API_H

#include <jansson.h>
#include <time.h>

#include "lib/lib.h"

#define API_MAX_FILE_BYTES   (16u << 20)  /* one manifest file */
#define API_MAX_DEPTH        64           /* nesting of mappings/sequences */
#define API_MAX_SCALAR       (1u << 20)   /* one string */
#define API_MAX_ALIAS_NODES  100000       /* nodes reached through aliases, per document */
#define API_MAX_SET_BYTES    (1u << 30)   /* arena of one set (all files) */

/* ---- the document tree ---------------------------------------------------- */
enum ynode_type { YN_SCALAR, YN_MAP, YN_SEQ };
enum yscalar_tag { YS_STR, YS_NULL, YS_BOOL, YS_INT, YS_FLOAT };

/* Invariant: scalars have str != NULL (NUL-terminated, len bytes); maps have
 * items[2*i] = key (a scalar), items[2*i+1] = value, for i < n; sequences have
 * items[i] for i < n. str and items share storage: read str only of a
 * YN_SCALAR, items only of a collection. line/col are 1-based; 0 for nodes
 * added by defaulting. 32 bytes: the tree of 10,000 objects is ~750,000 nodes. */
struct ynode {
	uint8_t type;      /* enum ynode_type */
	uint8_t tag;       /* enum yscalar_tag (scalars): resolved as YAML 1.1 plain */
	uint8_t quoted;    /* scalar was quoted or block: always a string */
	uint8_t flags;     /* YNF_* */
	uint32_t line, col;
	uint32_t n;        /* collections: items (seq) or pairs (map) */
	uint32_t len;      /* scalars: bytes of str */
	union {
		const char *str;
		struct ynode **items;
	};
};
#define YNF_DEFAULTED 0x1 /* added by defaulting */
#define YNF_GROWN     0x2 /* items has room for the next power of two >= 2n (or n) */

const struct ynode *yn_get(const struct ynode *map, const char *key);
/* Dotted path of map keys, e.g. "spec.template.metadata.labels"; NULL if absent. */
const struct ynode *yn_path(const struct ynode *n, const char *path);
const char *yn_str(const struct ynode *n); /* scalar text, else NULL */
bool yn_int(const struct ynode *n, int64_t *ret); /* scalar of tag YS_INT */
bool yn_bool(const struct ynode *n, bool *ret);
size_t yn_len(const struct ynode *n); /* items of a seq, pairs of a map */
const struct ynode *yn_at(const struct ynode *seq, size_t i);

/* ---- kinds ----------------------------------------------------------------- */
struct api_kind {
	const char *kind;          /* "Deployment" */
	const char *group;         /* "apps"; "" for core */
	const char *version;       /* "v1" */
	const char *plural;        /* "deployments" */
	const char *short_names;   /* "deploy" (comma-separated, may be "") */
	bool namespaced;
	const char *type;          /* schema type name, e.g. "V1Deployment" */
};
const struct api_kind *api_kinds(size_t *ret_n);
/* By kind, plural, singular or short name, case-insensitive, optionally
 * suffixed with ".group" (kubectl's "deployments.apps"). NULL if unknown. */
const struct api_kind *api_kind_lookup(const char *name);

/* ---- a set of decoded objects ---------------------------------------------- */
enum api_severity { API_ERROR, API_WARNING };

struct api_diag {
	enum api_severity sev;
	const char *file;
	uint32_t line, col;
	const char *object;  /* "Deployment default/web", or "" before kind/name are known */
	const char *path;    /* "spec.template.spec.containers[0].image", or "" */
	const char *msg;
};

struct api_object {
	const struct api_kind *kind;
	const char *api_version;
	const char *ns;        /* "" for cluster-scoped kinds */
	const char *name;
	const char *file;
	uint32_t line, col;    /* of the document's root node */
	bool invalid;          /* has at least one error diagnostic */
	struct ynode *root;
};

struct api_set {
	struct arena arena;
	struct api_object *objs;
	size_t nobjs, aobjs;
	struct api_diag *diags;
	size_t ndiags, adiags;
	size_t nerrors, nwarnings, nfiles;
	bool finished;
	struct ynode *interned[512]; /* defaulting's shared scalars (defaults.c) */
};

void api_set_init(struct api_set *s);
void api_set_release(struct api_set *s);
/* Decode every document of one file (data need not be NUL-terminated; it is not
 * kept), validate each object against its kind's schema, and add the valid and
 * invalid objects and every problem found to the set. Never fails: problems are
 * diagnostics. */
void api_add_file(struct api_set *s, const char *path, const char *data, size_t len);
/* Cross-object checks (duplicates, dangling references), then Kubernetes'
 * defaults on every valid object. Sorts diagnostics by file, line, column. */
void api_finish(struct api_set *s);
/* "FILE:LINE:COL: KIND NS/NAME: field.path: message" (+ "warning: " before msg). */
void api_diag_format(const struct api_diag *d, struct sbuf *out);

/* ---- cluster settings ------------------------------------------------------- */
/* The ConfigMap gitops-system/gitops holds cluster-wide settings (docs/operations.md):
 * clusterCIDR, serviceCIDR, nodePortRange, clusterDomain, dnsServer, podCIDRMask,
 * sshParallel, insecureRegistries, registryMirrors, and the durations nodeGracePeriod,
 * evictionTimeout, sshTimeout, syncTimeout. Its keys are validated like fields. */
#define API_CONFIG_NAMESPACE "gitops-system"
#define API_CONFIG_NAME "gitops"
/* A setting's value from the set's config object, else its default; NULL for an
 * unknown key. */
const char *api_config_get(const struct api_set *s, const char *key);

/* ---- encode ----------------------------------------------------------------- */
json_t *api_to_json(const struct ynode *n);
/* SHA-256 (hex, malloc'ed) of a JSON value's canonical form: sorted keys, compact. */
char *api_json_sha256(const json_t *v);
/* The network's digest (netsum.c; docs/node-protocol.md "networkDigest"): the hash of
 * everything but the pods and Services plus the sum of the pods' hashes, and the sum
 * of the Services' hashes (order-free, so a few Services changed update it: sign 1
 * adds one, -1 takes it off; NULL or null does nothing). */
struct api_netsum {
	unsigned char rest[32], sum[32];
};
void api_netsum_of(const json_t *network, struct api_netsum *out);
/* H(v) (sha256 of its canonical JSON), and acc += h (sign 1) or -= h (sign -1) modulo
 * 2^256: the parts, for a sum made of hashes computed once and shared. */
void api_hash_json(const json_t *v, unsigned char out[32]);
void api_sum_add(unsigned char acc[32], const unsigned char h[32], int sign);
void api_netsum_service(struct api_netsum *s, const json_t *service, int sign);
/* One cluster state entry (H of [key, entry]) added or taken off. */
void api_netsum_entry(struct api_netsum *s, const char *key, const json_t *entry, int sign);
/* The cluster state's clusterHash: the digest of the sum over its entries. */
char *api_cluster_digest(const json_t *cluster);
/* A named targetPort is resolved on the pods at the Service's endpoints (netpol): whether
 * a Service of the network has one; its endpoints' IPs added to ips (an object IP →
 * true) when it has; the pods of `pods` at those IPs (a new array). */
bool api_net_named_target(const json_t *svc);
void api_net_named_ips(const json_t *svc, json_t *ips);
json_t *api_net_pods_at(const json_t *pods, const json_t *ips);
/* The networkDigest (64 hex digits, malloc'ed). */
char *api_netsum_digest(const struct api_netsum *s);
/* "REST SUM" in hex (129 characters, malloc'ed), and back (-1: not that). */
char *api_netsum_format(const struct api_netsum *s);
int api_netsum_parse(const char *text, struct api_netsum *out);
/* Block YAML, kubectl's layout (2-space indent, sequences not indented under
 * their key), strings quoted where a plain scalar would change type. */
void api_emit_yaml(const struct ynode *n, struct sbuf *out);

/* ---- values ----------------------------------------------------------------- */
/* Quantity ("250m", "64Mi", "1.5Gi", "1e3"): value in milli-units. Fails on
 * syntax errors and on values past int64 milli-units. */
int api_quantity_parse(const char *s, int64_t *ret_milli, struct gerr **err);

/* Label selectors. */
enum api_sel_op { SEL_IN, SEL_NOT_IN, SEL_EXISTS, SEL_DOES_NOT_EXIST, SEL_GT, SEL_LT };
struct api_sel_req {
	char *key;
	enum api_sel_op op;
	char **values; /* SEL_IN/SEL_NOT_IN: the set; SEL_GT/SEL_LT: one integer */
	size_t nvalues;
};
struct api_selector {
	struct api_sel_req *reqs; /* ANDed; none = matches everything */
	size_t n;
	bool nothing;             /* a null selector: matches nothing */
};
typedef const char *(*api_label_fn)(void *ctx, const char *key);
/* kubectl -l syntax: "a=b,c!=d,e in (f,g),h notin (i),j,!k". */
int api_selector_parse(const char *s, struct api_selector *ret, struct gerr **err);
/* A LabelSelector node (matchLabels + matchExpressions). NULL node = nothing. */
int api_selector_from_node(const struct ynode *sel, struct api_selector *ret,
			   struct gerr **err);
bool api_selector_matches(const struct api_selector *sel, api_label_fn get, void *ctx);
/* Convenience: labels given as a YAML map node (NULL = no labels). */
bool api_selector_matches_node(const struct api_selector *sel, const struct ynode *labels);
void api_selector_release(struct api_selector *sel);

/* Cron schedules: 5 fields (minute hour day-of-month month day-of-week) with
 * ranges, steps, lists, names (jan, mon) and the @yearly/@annually/@monthly/
 * @weekly/@daily/@midnight/@hourly macros. */
struct api_cron {
	uint64_t minute;  /* bit i = minute i */
	uint32_t hour, dom;
	uint16_t month;   /* bit 1..12 */
	uint8_t dow;      /* bit 0..6, Sunday = 0 */
	bool dom_star, dow_star;
};
int api_cron_parse(const char *s, struct api_cron *ret, struct gerr **err);
/* First time strictly after `after` (UTC) that matches, or -1 if none in 5 years. */
time_t api_cron_next(const struct api_cron *c, time_t after);

/* Go durations ("300ms", "1.5h", "2h45m", "10s"). */
int api_duration_parse(const char *s, int64_t *ret_ms, struct gerr **err);

/* IntOrString scaled against total, as Kubernetes' GetScaledValueFromIntOrPercent:
 * "25%" of 10 is 3 rounding up, 2 rounding down; an integer is itself. */
int api_scaled_value(const struct ynode *v, int64_t total, bool round_up, int64_t *ret,
		     struct gerr **err);
/* The same for a percentage string s of len bytes ("25%"). */
int api_scaled_percent(const char *s, size_t len, int64_t total, bool round_up, int64_t *ret,
		       struct gerr **err);

#endif
