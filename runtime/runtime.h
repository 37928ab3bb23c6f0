/* runtime: the node side — the node agent (`gitops node ...`), the per-container
 * shim, images, OCI bundles and runc, CNI, volumes, probes, logs — and, on the
 * controller side, reaching nodes over SSH (issue 4).
 *
 * Node state (see docs/node-protocol.md and docs/operations.md):
 *   STATE (default /var/lib/gitops)   journal, images/, pods/<uid>/, cni/
 *   RUN   (default /run/gitops)       locks, runc state (runc --root RUN/runc)
 *
 * Ownership: json_t* results are new references owned by the caller.
 */
#ifndef GITOPS_RUNTIME_H
#define GITOPS_RUNTIME_H

#include <jansson.h>

#include "lib/lib.h"

#define RUNTIME_PROTOCOL 1
#define RUNTIME_MAX_PLAN (64u << 20)

struct node_opts {
	const char *state_dir;  /* NULL: /var/lib/gitops */
	const char *run_dir;    /* NULL: /run/gitops */
	const char *runtime;    /* OCI runtime binary; NULL: $GITOPS_RUNTIME or "runc" */
	const char *cni_bin;    /* CNI plugin dir; NULL: /usr/lib/cni:/opt/cni/bin */
	const char *self;       /* path of the gitops binary (for starting shims) */
	const char *cluster_hash; /* status: the caller has this cluster state; omit it */
};

/* Converge this node to the plan (JSON text of plan_len bytes), then return its
 * status. Fails only when the plan is unusable (bad JSON, other protocol) or the
 * node cannot be worked on (lock, state dir); a pod that cannot start is status. */
int node_apply(const struct node_opts *o, const char *plan, size_t plan_len,
	       json_t **ret_status, struct gerr **err);
/* Status with the journal records after `since` (UINT64_MAX = none, 0 = all). */
int node_status(const struct node_opts *o, uint64_t since, json_t **ret_status,
		struct gerr **err);
/* What this machine has and lacks; *ret_ok false when a required part is missing. */
int node_check(const struct node_opts *o, json_t **ret_report, bool *ret_ok, struct gerr **err);

/* Container logs of pod (NAME or NAMESPACE/NAME or uid): write to fd out. */
struct log_opts {
	const char *pod;
	const char *container; /* NULL: the only one, else an error listing them */
	long tail;             /* -1: all */
	bool follow;
};
int node_logs(const struct node_opts *o, const struct log_opts *l, int out, struct gerr **err);

/* `gitops node exec`: run argv in a running container of pod (NAME, NAMESPACE/NAME
 * or uid) with `runc exec` (-t: a terminal), this process's stdin, stdout and stderr
 * inherited. container NULL: the first (noted on stderr when there are several).
 * On success *ret_status is the command's exit status (128+signal when killed). */
struct exec_opts {
	const char *pod;
	const char *container;
	bool tty;
	const char *const *argv;   /* NULL-terminated, at least one word */
};
int node_exec(const struct node_opts *o, const struct exec_opts *e, int *ret_status, struct gerr **err);

/* `gitops node rules`: the node's nftables table as loaded now and whether it is
 * what the node loaded last: {"network": the node has a network.json, "table":
 * "ip gitops", "listing": gitops-nft's listing ("" when absent), "listingDigest",
 * "loaded": STATE/rules.json (digest, listing digest, services, policies, time) or
 * null, "matches": bool}. Read only; fails when gitops-nft cannot list. */
int node_rules(const struct node_opts *o, json_t **ret_report, struct gerr **err);
/* gitops node refresh: load the rules again from this node's state, as a shim does
 * when a container's readiness changes (only what changed; a readiness change of
 * local pods compiles only their Services). *ret_state (optional): STATE/rules.json
 * after it ({} when nothing was ever loaded). No network: nothing to do, 0. */
int node_refresh(const struct node_opts *o, json_t **ret_state, struct gerr **err);

/* `gitops shim`: supervise one container of a pod (never returns while it runs;
 * detaches from the caller). */
int shim_main(const struct node_opts *o, const char *pod_dir, const char *container,
	      struct gerr **err);

/* ---- reaching nodes (ssh.c; the controller side) ---- */
/* Runs `ssh [options] DEST -- REMOTE...` for many nodes at once with the system
 * OpenSSH client: BatchMode, ControlMaster=auto with ControlPersist under
 * control_dir (one socket per destination and ssh_config, short paths), host keys
 * checked (StrictHostKeyChecking yes, or accept-new when asked), ConnectTimeout, and
 * a hard per-node timeout. When a destination's master is already running, the job
 * goes to it directly over its socket (OpenSSH's multiplexing protocol, what a warm
 * `ssh` does) without starting ssh. The remote command is fixed words from our code
 * (never a manifest value); data goes on stdin, results come on stdout. A node that
 * fails or times out never holds up the others. */
struct ssh_opts {
	const char *ssh_config;   /* -F FILE, or NULL */
	const char *control_dir;  /* for ControlPath sockets; created 0700 */
	int parallel;             /* at most this many ssh processes at once (default 16) */
	int timeout_ms;           /* per node, whole command (default 30 s) */
	bool accept_new;          /* StrictHostKeyChecking=accept-new */
	const char *ssh;          /* the ssh binary (default "ssh") */
};

struct ssh_job {
	/* in */
	const char *name;           /* for messages: the node's name */
	const char *dest;           /* [user@]host[:port] or an ssh_config Host alias */
	const char *const *remote;  /* remote argv, e.g. {"gitops","node","status","-o","json",NULL} */
	const char *in;             /* stdin bytes, or NULL */
	size_t in_len;
	/* out */
	int status;                 /* remote exit status; 255 ssh failure; -1 timeout/not run */
	struct sbuf out, err;       /* captured (bounded); caller releases */
	char *error;                /* one line saying what went wrong, or NULL; caller frees */
	int64_t elapsed_ms;
	bool via_master;            /* ran through a running ControlMaster, no ssh started */
};

/* Run every job; returns 0 when all ran (each job's status says how it went). */
int ssh_run_all(const struct ssh_opts *o, struct ssh_job *jobs, size_t n, struct gerr **err);

/* The same, a job at a time, for callers with work to do meanwhile:
 *   ssh_batch_start()  starts the jobs (up to `parallel`; the rest as slots free up
 *                      while the caller waits); fails as ssh_run_all, running nothing
 *   ssh_batch_next()   waits until one more job is over: 1 and its index; 0 when every
 *                      job was handed out; -1 when waiting failed (every job is then
 *                      over, with an error, and still handed out by later calls)
 *   ssh_batch_free()   stops what still runs (its jobs get an error) and frees.
 * Between the calls nothing is read or written: a node's output waits in its pipe
 * (64 KiB; a command with more waits too) and queued jobs wait to start. The jobs
 * array and o's strings must outlive the batch; o itself is copied. */
struct ssh_batch;
int ssh_batch_start(const struct ssh_opts *o, struct ssh_job *jobs, size_t n,
		    struct ssh_batch **ret, struct gerr **err);
int ssh_batch_next(struct ssh_batch *b, size_t *ret_index, struct gerr **err);
void ssh_batch_free(struct ssh_batch *b);
void ssh_job_release(struct ssh_job *j);
/* Append word w to sb quoted for the remote POSIX shell exactly as ssh_run_all
 * quotes every remote word (bare when plainly safe, else in single quotes with '
 * as '\''), for callers that run ssh themselves (`gitops logs`, `gitops exec`). */
void ssh_quote_word(struct sbuf *sb, const char *w);

#endif
