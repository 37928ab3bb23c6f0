/* reconcile/internal.h: the controller's model of one pass, shared by the files of
 * reconcile/ only.
 *
 * A pass: read every node's status (ssh) → a world of nodes and observed pods →
 * the workload controllers decide which pods each node must run (kept ones with
 * their uids, new ones scheduled) → one plan per node → apply them (ssh).
 * Ownership: a world owns everything in it (rc_world_release); json_t members are
 * owned references unless marked borrowed.
 */
#ifndef GITOPS_RECONCILE_INTERNAL_H
#define GITOPS_RECONCILE_INTERNAL_H

#include "api/api.h"
#include "reconcile/reconcile.h"
#include "store/store.h"

#define ANN_OWNER "gitops.io/owner"           /* "Deployment/NS/NAME" */
#define ANN_REPLICASET "gitops.io/replicaset" /* "NAME-HASH" */
#define LABEL_HASH "pod-template-hash"

struct rc_node {
	char *name;
	char *ssh;                 /* SSH destination */
	const struct api_object *obj; /* its Node manifest (borrowed) */
	json_t *labels, *taints;
	char *pod_cidr;
	bool reachable;            /* its status was read this pass */
	bool not_ready;            /* unreachable past the grace period */
	bool evicted;              /* unreachable past the eviction timeout */
	char *error;               /* why it is unreachable */
	json_t *status;            /* its status (NULL when unreachable) */
	bool cluster_cached;       /* its cluster state is the cached one (its status said so) */
	int64_t alloc_cpu, alloc_mem, alloc_pods;
	json_t *plan_pods;         /* the pods of its plan, built by the pass */
	/* what the apply did, for printing */
	int started, stopped, restarted;
	json_t *changes;           /* ["+ ns/name", "- ns/name", "~ ns/name"] */
	bool applied;
	char *apply_error;
};

struct rc_pod {
	char *uid, *ns, *name;
	struct rc_node *node;
	json_t *labels, *annotations;   /* owned */
	json_t *status;                 /* the node's pod status (borrowed), NULL if unknown */
	bool ready, available;
	bool unknown;                   /* on an unreachable node */
	char *last_ip;                  /* unknown: its IP and readiness when the node */
	bool last_ready;                /* was last reached (cluster state pods/NODE) */
	bool keep;                      /* stays in the plans */
};

struct rc_world {
	struct api_set *desired;   /* borrowed */
	const char *commit, *subject;
	json_t *cluster;           /* merged cluster state (owned) */
	struct rc_node *nodes;
	size_t nnodes;
	struct rc_pod *pods;       /* observed */
	size_t npods, apods;
	json_t *new_pods;          /* array of {node index, pod entry} made this pass */
	struct rc_net *net;        /* the network of the plans (network.c), after rc_services */
	struct rc_net *prev_net;   /* the last pass's, as cached (rc_network_cache_load), or NULL */
	json_t *cluster_delta;     /* {"base", "set", "was"}: the cluster state from the cached
				    * one, for the nodes that have that (NULL: send it whole) */
	int64_t now;               /* seconds since the epoch */
	bool prune;
	struct sbuf log;           /* what the pass decided, for --dry-run and diff */
};

/* model.c */
int rc_world_nodes(struct rc_world *w, struct gerr **err);
void rc_world_observe(struct rc_world *w);
void rc_world_release(struct rc_world *w);
struct rc_node *rc_node_by_name(struct rc_world *w, const char *name);
const char *rc_setting(const struct rc_world *w, const char *key);
int64_t rc_duration_s(const struct rc_world *w, const char *key);

/* workloads.c: decide every pod (keeps observed pods, adds new ones, schedules
 * them) and fill each node's plan_pods; *ret_rollouts gets one object per
 * Deployment: {namespace, name, revision, desired, replicas, updated, ready, available,
 * complete, deadlineExceeded, since}. */
int rc_workloads(struct rc_world *w, json_t **ret_rollouts, struct gerr **err);

/* network.c: allocate ClusterIPs and NodePorts (svc_allocate), then build the
 * network every plan carries from the plans' pods (call after rc_workloads);
 * records its hash in the cluster state, adding "~ network" to the changes of
 * every reachable node when it differs. *ret_network (may be NULL) gets a new
 * reference to the shared view (reconcile.h, rc_result.network). */
int rc_services(struct rc_world *w, json_t **ret_network, struct gerr **err);
/* Node n's network object for its plan (new reference), NULL before rc_services. */
json_t *rc_network_for(const struct rc_world *w, const struct rc_node *n);
/* The network of the last pass (STATE/network-cache.json, written by
 * rc_network_cache_save after the plans went out; unchanged: not rewritten), or NULL:
 * what a node that reports its digest has, for rc_network_plan's deltas. */
struct rc_net *rc_network_cache_load(const char *state_dir);
void rc_network_cache_save(const struct rc_world *w, const struct rc_net *prev, const char *state_dir);
void rc_network_cache_free(struct rc_net *net);
/* The network part of node n's plan: nothing when the node reports the digest of its
 * view (networkDigest), a "networkDelta" when it reports prev's and only Services
 * changed (docs/node-protocol.md), else the whole "network". */
void rc_network_plan(const struct rc_world *w, const struct rc_node *n, struct rc_net *prev, json_t *plan);
/* The uids of the pods that are an endpoint of some Service, as an object uid → true
 * (new reference; empty before rc_services). */
json_t *rc_network_endpoint_uids(const struct rc_world *w);
void rc_world_network_release(struct rc_world *w);

/* plan.c */
json_t *rc_plan_for(const struct rc_world *w, const struct rc_node *n);
/* A pod entry for a plan from a template (metadata + spec), with its owner. */
json_t *rc_pod_entry(const struct rc_world *w, const char *uid, const char *ns, const char *name,
		     const json_t *template_meta, const json_t *spec, const char *owner,
		     const char *rs, const char *hash);
char *rc_new_uid(void);

#endif
