/* runtime/shim.h: the context of one `gitops shim` process, shared by
 * runtime/shim*.c only (shim.c: start/stop/pid files; shim_main.c: set-up and
 * event loop; shim_run.c: container lifecycle; shim_probe.c: probes and hooks;
 * shim_state.c: state.json and journal records).
 *
 * One shim supervises one container of a pod (conmon's role). It is single
 * threaded: every wait goes through one poll() loop over a signalfd (SIGCHLD,
 * SIGTERM, SIGINT), the container's stdout/stderr pipes and the result pipes of
 * its helper processes (a probe or hook runs in a forked helper that joins the
 * pod's network namespace, so slow probes never stall log copying). There are no
 * globals: everything lives in struct shim.
 *
 * The shim itself stays in the host's network namespace, so image pulls (skopeo)
 * reach registries the pod cannot; only the helpers join the pod's (pod.json
 * "netns"; none for hostNetwork). The container's init process is the shim's own
 * child (runc create exits, the subreaper inherits it), so its pid cannot be reused
 * before the shim reaps it: signals go to it directly.
 *
 * When the shim is done (container terminated for good, or asked to stop) it writes
 * state.json with "final": true, removes its pid file and exits 0; `node apply`
 * restarts a shim that died only while "final" is false.
 *
 * Ownership: struct shim owns every string and json_t it points to, except
 * `ctr`, which is borrowed from `spec`. shim_release() frees it all.
 *
 * Time: monotonic milliseconds (shim_now()) for deadlines; RFC 3339 strings for
 * the state file.
 *
 * Knobs, mainly for tests (environment of `node apply`, inherited by its shims):
 *   GITOPS_BACKOFF_BASE_MS   first back-off (default 10000); doubles up to 30x base
 *                            (5 min); reset after the container ran 60x base (10 min)
 *   GITOPS_PROBE_SECOND_MS   the length of a "second" of initialDelaySeconds and
 *                            periodSeconds (default 1000); timeouts are not scaled
 *   GITOPS_LOG_MAX_BYTES     log rotation size (default 10 MiB)
 */
#ifndef GITOPS_RUNTIME_SHIM_H
#define GITOPS_RUNTIME_SHIM_H

#include "runtime/internal.h"

#include <sys/types.h>

enum shim_phase {
	PH_INIT_WAIT, /* waiting for earlier init containers to succeed */
	PH_BLOCKED,   /* an init container failed under restartPolicy Never: wait for stop */
	PH_PREPARE,   /* pull, unpack, config, create and start at the next turn */
	PH_BACKOFF,   /* waiting until `deadline`, then PH_PREPARE */
	PH_RUNNING,   /* the container process is alive (or its exit not yet handled) */
	PH_DONE,      /* nothing more to do: the loop ends */
};

enum kill_step { KILL_NONE, KILL_PRESTOP, KILL_TERM, KILL_FORCE };
enum backoff_kind { BO_NONE, BO_IMAGE, BO_CONFIG, BO_CRASH };
enum probe_kind { PROBE_STARTUP, PROBE_LIVENESS, PROBE_READINESS, PROBE_N };
enum hook_kind { HOOK_NONE, HOOK_POSTSTART, HOOK_PRESTOP };

/* A forked helper process running one probe or hook; its verdict arrives on fd. */
struct shim_helper {
	pid_t pid;        /* 0: none running (or already reaped) */
	int fd;           /* read end of the result pipe, -1 when closed */
	int64_t deadline; /* kill the helper's process group past it (0: none) */
	int64_t started;
	struct sbuf out;
};

struct shim_probe {
	const json_t *spec; /* borrowed from ctr; NULL: no such probe */
	const char *name;   /* "startup", "liveness", "readiness" */
	int64_t next;       /* when to run next (0: not scheduled) */
	int successes, failures; /* consecutive */
	int result;         /* thresholded result: -1 unknown, 0 failure, 1 success */
	struct shim_helper h;
};

struct shim {
	struct node_paths paths;
	char *pod_dir, *name, *cdir, *uid, *cid;
	char *state_path, *pid_path, *stop_path, *log_path, *bundle, *runc_log, *runc_pid;
	json_t *pod;         /* pod.json (+ secrets.json's secrets and imagePullSecrets) */
	json_t *spec;        /* spec.json */
	const json_t *ctr;   /* spec.json "container" */
	const char *image;
	const char *policy;  /* restart policy as it applies to this container */
	const char *pod_ip;
	bool is_init;
	int index;
	int64_t grace_ms;
	int sigfd;
	struct journal *journal; /* opened on first use; never used by forked helpers */
	int64_t bo_base, bo_max, bo_reset, second_ms;
	size_t log_max;

	/* status (state.json) */
	enum shim_phase phase;
	int64_t deadline;
	enum backoff_kind bo_kind;
	int64_t bo_crash, bo_image; /* current delays; 0: none yet */
	int64_t bo_since;           /* when the current back-off began */
	json_t *cur, *last;         /* "state" and "lastState" objects */
	bool ready, started;
	int restarts, instances;
	char *digest, *image_id;
	bool stop_requested, final;

	/* the running instance */
	pid_t pid;
	int exit_status;     /* waitpid status once reaped */
	bool exited;
	int out_fd, err_fd;
	struct log_writer *log;
	int64_t started_mono;
	char *started_at;
	long long oom_before;
	enum kill_step kill;
	int64_t kill_deadline;
	bool probes_on;      /* postStart done: probes may run */
	struct shim_probe probes[PROBE_N];
	struct shim_helper hook;
	enum hook_kind hook_kind;
};

/* shim.c: write "PID STARTTIME\n" of the calling process to path, atomically. */
int shim_write_pidfile(const char *path, struct gerr **err);

/* shim_main.c: monotonic ms; a line to the shim's stderr (its shim.log). */
int64_t shim_now(void);
void shim_logf(const struct shim *s, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* shim_state.c */
void shim_set_waiting(struct shim *s, const char *reason, const char *msg);
void shim_set_running(struct shim *s);
/* Each setter rewrites state.json when the state changed. */
void shim_set_terminated(struct shim *s, int code, const char *reason, const char *msg);
void shim_write_state(struct shim *s);
void shim_load_previous(struct shim *s);
/* Append a record with "uid" and "container" added to body (consumed). */
void shim_journal(struct shim *s, const char *type, json_t *body);
json_int_t shim_jint(const json_t *o, const char *key, json_int_t def);
const char *shim_jstr(const json_t *o, const char *key, const char *def);

/* shim_run.c */
void shim_check_init(struct shim *s);
void shim_prepare_and_start(struct shim *s);
void shim_handle_exit(struct shim *s);
/* preStop, SIGTERM, SIGKILL after grace_ms (< 0: the pod's terminationGracePeriodSeconds). */
void shim_begin_kill(struct shim *s, const char *why, int64_t grace_ms);
void shim_kill_step(struct shim *s, int64_t now);
/* A helper's verdict on the postStart or preStop hook. */
void hook_done(struct shim *s, int ok, const char *msg);
void shim_pump(struct shim *s, int fd, const char *stream);
void shim_runc_delete(const struct shim *s);
void shim_cgroup_cleanup(const struct shim *s);

/* shim_probe.c */
void helper_init(struct shim_helper *h);
void helper_cancel(struct shim_helper *h);
/* Fork a helper running a probe (hook false) or lifecycle handler; timeout_ms 0: none. */
int helper_spawn(struct shim *s, struct shim_helper *h, const json_t *action, bool hook,
		 int64_t timeout_ms);
/* Read the helper's pipe; true once its verdict is complete (ok/msg set). */
bool helper_read(struct shim_helper *h, int *ret_ok, char **ret_msg);
void probes_setup(struct shim *s);
void probes_tick(struct shim *s, int64_t now);
void probes_cancel(struct shim *s);
void probe_done(struct shim *s, struct shim_probe *pr, int ok, const char *msg);
int64_t probes_next(const struct shim *s);
void shim_update_ready(struct shim *s);

#endif
