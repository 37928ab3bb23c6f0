/* reconcile: the controllers — scheduler, Deployment/ReplicaSet rollouts, and
 * (in the controller proper) the plan for each node from the desired objects and
 * what the nodes report.
 *
 * The scheduler and the rollout arithmetic are pure functions over the small
 * structs below (no I/O, deterministic), tested in tests/unit/. Ownership: the
 * caller owns every input; outputs are malloc'ed and documented per function.
 */
#ifndef GITOPS_RECONCILE_H
#define GITOPS_RECONCILE_H

#include <jansson.h>

#include "lib/lib.h"

/* ---- scheduler (scheduler.c) ------------------------------------------------ */

/* A node as the scheduler sees it. Quantities: CPU in millicores, memory in bytes. */
struct sched_node {
	const char *name;
	const json_t *labels;      /* object of string → string (may be NULL) */
	const json_t *taints;      /* array of Kubernetes Taint {key, value, effect} (may be NULL) */
	bool unschedulable;        /* spec.unschedulable, or NotReady (adds the not-ready taint) */
	bool not_ready;            /* treated as taint node.kubernetes.io/not-ready:NoSchedule */
	int64_t alloc_cpu, alloc_mem, alloc_pods;   /* allocatable */
	int64_t used_cpu, used_mem, used_pods;      /* requests of the pods placed so far */
	const json_t *host_ports;  /* array of {"port":N,"protocol":"TCP","hostIP":""} in use */
};

/* A pod already placed (running or just placed in this pass): for inter-pod
 * affinity, anti-affinity and spreading. */
struct sched_pod {
	const char *ns;
	const char *node;
	const json_t *labels;
	const char *owner;         /* "Deployment/ns/name" style key of its workload, or NULL */
};

struct sched_request {
	const char *ns;
	const json_t *labels;      /* the new pod's labels */
	const json_t *spec;        /* its PodSpec (defaulted): requests, nodeName, nodeSelector,
				    * affinity, tolerations, topologySpreadConstraints, ports */
	const char *owner;         /* its workload key: replicas of one workload are spread */
};

/* Choose a node for one pod, Kubernetes' way:
 *  filters  resources fit allocatable (CPU, memory, pod count; requests, init
 *           containers' max counted as Kubernetes does), nodeName, nodeSelector,
 *           nodeAffinity requiredDuringScheduling (In, NotIn, Exists,
 *           DoesNotExist, Gt, Lt; terms ORed, expressions ANDed), taints and
 *           tolerations (NoSchedule and NoExecute filter; Equal/Exists, empty key
 *           with Exists tolerates all), required podAffinity/podAntiAffinity with
 *           topologyKey and namespaces, host ports, unschedulable;
 *  scores   least requested, balanced allocation, preferred node affinity and
 *           inter-pod affinity weights, PreferNoSchedule taints, spreading pods of
 *           the same owner across nodes (and topologySpreadConstraints).
 * Ties break by node name, so the same inputs always give the same node.
 * Returns the index of the chosen node, or -1 with *ret_reason set (malloc'ed) to
 * Kubernetes' message, reasons sorted as text as upstream does, e.g. "0/3 nodes are
 * available: 1 node(s) had untolerated taint {dedicated: db}, 2 Insufficient memory." */
int sched_place(const struct sched_request *req, const struct sched_node *nodes, size_t nnodes,
		const struct sched_pod *pods, size_t npods, char **ret_reason);

/* Add a pod's requests and host ports to a node after placing it there. The
 * ports are appended to node->host_ports, which is created when NULL: the caller
 * owns that array and json_decref()s it. */
void sched_account(struct sched_node *node, const json_t *spec);

/* The pod's effective requests (max of the sum of containers and each init
 * container), in millicores and bytes. */
void sched_requests(const json_t *spec, int64_t *ret_cpu, int64_t *ret_mem);

/* ---- Deployment rollout arithmetic (rollout.c) ------------------------------ */

/* One ReplicaSet of a Deployment, as observed this pass. */
struct rs_view {
	const char *hash;      /* pod-template-hash */
	int64_t revision;
	bool is_new;           /* its template is the Deployment's current one */
	int64_t pods;          /* pods that exist and are not terminating */
	int64_t ready;         /* of them, ready */
	int64_t available;     /* of them, ready for at least minReadySeconds */
};

struct deploy_view {
	int64_t replicas;      /* spec.replicas */
	bool recreate;         /* strategy Recreate (else RollingUpdate) */
	const json_t *max_surge;       /* IntOrString node as JSON (integer or "25%") */
	const json_t *max_unavailable;
	bool paused;
	int64_t revision_history_limit;
};

/* Target pod counts for one pass: targets[i] for rs[i] (caller-allocated, n). The
 * caller must remove unavailable pods first when it shrinks a ReplicaSet: the
 * availability bound relies on it. More pods than replicas + maxSurge during a
 * rolling update is taken as a scale-down event (handled proportionally).
 * Moves the rollout as far as readiness allows and no further, as the Kubernetes
 * deployment controller does:
 *   RollingUpdate: maxSurge rounds up, maxUnavailable rounds down (both from
 *     percentages of replicas; if both end up 0, maxUnavailable is 1); the new RS
 *     grows while total pods <= replicas + maxSurge; old RSes shrink while
 *     available pods >= replicas - maxUnavailable, unhealthy old pods first;
 *   Recreate: old RSes go to 0 first; the new RS grows only when no old pod exists;
 *   paused: only scaling (proportional), no template change progresses;
 *   a Deployment without a new RS among rs[] is an error (the caller creates it).
 * Returns 0, or -1 with err on bad input (e.g. an unparsable percentage). */
int deploy_targets(const struct deploy_view *d, const struct rs_view *rs, size_t n,
		   int64_t *targets, struct gerr **err);

/* Deployment status from the views (after a pass): replicas, updatedReplicas,
 * readyReplicas, availableReplicas, unavailableReplicas, and whether the rollout
 * is complete (every pod updated and available, none old). */
struct deploy_status {
	int64_t replicas, updated, ready, available, unavailable;
	bool complete;
};
void deploy_status(const struct deploy_view *d, const struct rs_view *rs, size_t n,
		   struct deploy_status *ret);

/* Which old ReplicaSets to forget (revisionHistoryLimit): ret_drop[i] set for
 * rs[i] with no pods that falls beyond the limit (oldest revisions first). */
void deploy_history_prune(const struct deploy_view *d, const struct rs_view *rs, size_t n,
			  bool *ret_drop);

/* Pod names: Kubernetes' template hash (FNV-32a of the template's canonical JSON,
 * rendered with its "safe" alphabet, 10 chars at most) and a 5-character suffix
 * from the same alphabet, derived deterministically from seed. */
char *pod_template_hash(const json_t *template_spec);
char *name_suffix(const char *seed);

/* ---- Services: ClusterIPs and NodePorts (services.c) ------------------------- */
struct api_set;

/* Allocations live in the replicated cluster state, one key per Service, so that
 * a controller with an empty state directory gets the same values back:
 *   "service/NS/NAME" → {"clusterIP": "10.96.0.17" | "None" (headless) | "" (ExternalName),
 *                        "nodePorts": {"80": 30080}   (by service port number; only
 *                                                     NodePort and LoadBalancer),
 *                        "time": when the Service was first seen (epoch seconds)} */
#define SVC_KEY_PREFIX "service/"

/* Allocate for every valid Service of desired (validated, defaulted) and record
 * the results in cluster (store/cluster.c entries):
 *   ClusterIP  spec.clusterIP when given (inside serviceCIDR: api/ validates it and
 *              that no two Services claim one); else the recorded one while it is
 *              still inside serviceCIDR and no explicit one took it; else the first
 *              free address from a hash of NS/NAME on. Never the network, first or
 *              broadcast address of serviceCIDR. Headless ("None") and ExternalName
 *              Services get none.
 *   NodePort   for each port of a NodePort or LoadBalancer Service (unless
 *              allocateLoadBalancerNodePorts is false): spec.ports[].nodePort when
 *              given, else recorded, else the first free port of nodePortRange from a
 *              hash of NS/NAME/PORT on. Ports of one number share one NodePort.
 * Records of Services that left desired are removed. Returns 0, or -1 with err
 * (cluster untouched) when a range is exhausted, a setting is unusable, or an
 * explicit value is outside its range or claimed twice (only possible when
 * desired was not validated). */
int svc_allocate(const struct api_set *desired, json_t *cluster, int64_t now, struct gerr **err);
/* The record of Service ns/name in cluster (borrowed), or NULL. */
const json_t *svc_allocation(const json_t *cluster, const char *ns, const char *name);

/* ---- the controller (pass.c) ------------------------------------------------ */

struct rc_opts {
	const char *state_dir;     /* the controller's: SSH control sockets */
	const char *ssh_config;    /* ssh -F, or NULL */
	int parallel;              /* SSH processes at once (default 16) */
	int timeout_ms;            /* per node (default 30 s) */
	bool accept_new;           /* StrictHostKeyChecking=accept-new */
	bool dry_run;              /* decide, print, send nothing */
	bool prune;                /* remove pods whose owner left git (default true) */
	const json_t *set;         /* cluster-state keys to set this pass (key → value, null
				    * deletes): rollout undo pins, pause, resume */
};

struct rc_result {
	json_t *nodes;     /* [{name, ok, error, pods, started, stopped, restarted, applied, notReady}] */
	json_t *rollouts;  /* [{namespace, name, revision, desired, replicas, updated, ready, available,
			    *   complete, deadlineExceeded, since}] */
	json_t *pending;   /* [{namespace, name, pending}]: pods no node could take, and why */
	json_t *cluster;   /* the merged cluster state after the pass */
	json_t *statuses;  /* each node's status (null when unreachable), in node order */
	json_t *network;   /* the cluster's network as the plans carry it, seen from no node
			    * (network.c): settings, namespaces, pods (all "local": false,
			    * those without an IP too), services with every endpoint
			    * ("node", "ready"; "ip" when known), policies */
	bool changed;      /* some node got a new plan (or would, with dry_run) */
};

/* One pass over the desired objects (validated, defaulted; commit and subject of
 * the git commit they came from). Fails only when the pass cannot run at all (no
 * nodes, a controller error); unreachable nodes are results. */
int rc_pass(const struct rc_opts *o, struct api_set *desired, const char *commit, const char *subject,
	    struct rc_result *ret, struct gerr **err);
void rc_result_release(struct rc_result *r);

#endif
