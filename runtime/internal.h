/* runtime/internal.h: the seams between the files of runtime/; no other module
 * includes it.
 *
 * A pod on a node is a directory POD = STATE/pods/<uid>:
 *   POD/pod.json                      the plan's pod entry + "podIP", "netns" (path, or
 *                                     null for hostNetwork), "node", "podDir" — minus
 *                                     "secrets" and "imagePullSecrets", which live only in
 *   POD/secrets/secrets.json          on a tmpfs (never on disk in clear): {"secrets":
 *                                     {...}, "imagePullSecrets": {...}}; load a pod with
 *                                     pod_load(), which merges both"
 *   POD/containers/<name>/spec.json   {"container": <Container>, "hash": "...",
 *                                     "init": true|false, "index": i, "env": {...}}
 *   POD/containers/<name>/bundle/     OCI bundle: config.json + rootfs/ (made by the shim)
 *   POD/containers/<name>/state.json  the container's status, kept by its shim
 *                                     (Kubernetes ContainerStatus JSON + "pid", "ready")
 *   POD/containers/<name>/shim.pid    "PID STARTTIME" of the shim (start time from
 *                                     /proc/PID/stat field 22, to guard against reuse)
 *   POD/containers/<name>/stop        created by `node apply` to ask the shim to stop
 *   POD/volumes/<volume>/             emptyDir, configMap, secret (tmpfs), downwardAPI,
 *                                     projected contents
 *   POD/etc/hosts, POD/etc/resolv.conf, POD/etc/hostname
 *   POD/logs/<container>.log (+ .1)   stdout and stderr, CRI log format lines
 *
 * The runc container id of a container is "<uid>-<name>"; its cgroup path is
 * "/gitops/<uid>/<name>" (unique across nodes sharing a host: uids are unique).
 */
#ifndef GITOPS_RUNTIME_INTERNAL_H
#define GITOPS_RUNTIME_INTERNAL_H

#include "api/api.h"
#include "runtime/runtime.h"
#include "store/store.h"

/* ---- paths (node.c) ---- */
struct node_paths {
	char *state;      /* /var/lib/gitops */
	char *run;        /* /run/gitops */
	char *journal;    /* STATE/journal */
	char *pods;       /* STATE/pods */
	char *images;     /* STATE/images: OCI layouts, one per image repository */
	char *cni_conf;   /* STATE/cni/net.conflist (user-replaceable; made when absent) */
	char *cni_data;   /* STATE/cni/networks (host-local IPAM) */
	char *runc_root;  /* RUN/runc */
	const char *runtime;  /* OCI runtime binary (runc) */
	const char *cni_bin;  /* CNI plugin search path */
	const char *self;     /* the gitops binary */
};
int node_paths_init(struct node_paths *p, const struct node_opts *o, struct gerr **err);
void node_paths_release(struct node_paths *p);

/* Append one record to the node journal (opened and closed per call is fine for
 * shims; node.c keeps one open). body is consumed (json_decref'd). */
int rt_journal(const struct node_paths *p, const char *type, json_t *body, struct gerr **err);

/* ---- images (image.c) ---- */
/* skopeo copies an image into an OCI layout under STATE/images; umoci unpacks it.
 * pull_policy: "Always", "IfNotPresent" or "Never". auth_json: a dockerconfigjson
 * document (written to a 0600 temp file for skopeo's --authfile) or NULL. Registries
 * named "localhost:*" or listed in $GITOPS_INSECURE_REGISTRIES (comma-separated
 * host:port) are reached over plain HTTP. A failed pull is GERR_FAIL with skopeo's
 * reason as the message. */
struct image_ref {
	char *layout;  /* OCI layout directory */
	char *tag;     /* reference name within the layout */
	char *digest;  /* manifest digest, "sha256:..." */
};
int image_ensure(const struct node_paths *p, const char *image, const char *pull_policy,
		 const char *auth_json, struct image_ref *ret, struct gerr **err);
/* Unpack into bundle_dir (its rootfs/ is replaced); ret_config gets the image's
 * config: {"Entrypoint":[...], "Cmd":[...], "Env":["K=V"...], "WorkingDir":"",
 * "User":""} (missing keys absent). */
int image_unpack(const struct node_paths *p, const struct image_ref *img, const char *bundle_dir,
		 json_t **ret_config, struct gerr **err);
void image_ref_release(struct image_ref *r);

/* ---- OCI runtime config (oci.c) ---- */
struct oci_input {
	const json_t *pod;          /* pod.json */
	const json_t *spec;         /* spec.json of the container */
	const json_t *image_config; /* from image_unpack */
	const char *rootfs;         /* absolute path of the bundle's rootfs */
	const char *pod_dir;
	int cgroup_version;         /* 1 or 2 (hybrid: 1 for resource controllers) */
};
/* The complete config.json for runc (process, root, mounts, hostname, namespaces
 * joining the pod's netns, cgroupsPath, resources, security context, rlimits). */
int oci_config(const struct oci_input *in, json_t **ret_config, struct gerr **err);

/* ---- environment and command line (env.c) ---- */
/* The container's environment as "K=V" strings, in Kubernetes' order: image env,
 * then envFrom, then env (later wins), then the Services' variables and the
 * controller's env (spec.json "env", applied over the Services') for names the
 * container did not set, with $(VAR) expansion of env values,
 * configMapKeyRef/secretKeyRef/fieldRef/resourceFieldRef resolved from pod.json. A
 * missing non-optional key is an error (CreateContainerConfigError).
 * network: the node's network.json (borrowed; NULL: no Services): for every Service
 * of the pod's namespace with a ClusterIP (unless spec.enableServiceLinks is false),
 * and default/kubernetes always, the kubelet's {SVC}_SERVICE_HOST,
 * {SVC}_SERVICE_PORT[_{PORT_NAME}] and Docker link variables {SVC}_PORT[_{N}_{PROTO}
 * [_PROTO|_PORT|_ADDR]]. */
int env_container(const json_t *pod, const json_t *spec, const json_t *image_config,
		  const json_t *network, json_t **ret_env, struct gerr **err);
/* env_container without Services. */
int oci_env(const json_t *pod, const json_t *spec, const json_t *image_config,
	    json_t **ret_env, struct gerr **err);
/* The node's STATE/network.json for a pod directory STATE/pods/UID: *ret is a new
 * reference, or NULL when the node has none (or pod_dir is not under a pods/). */
int env_network_load(const char *pod_dir, json_t **ret, struct gerr **err);
/* command/args with $(VAR) expansion against env, and the image's Entrypoint/Cmd,
 * as Kubernetes combines them. */
int oci_args(const json_t *spec, const json_t *image_config, const json_t *env,
	     json_t **ret_args, struct gerr **err);
/* Kubernetes' $(VAR) expansion: "$$" is "$", "$(NAME)" the first of maps that has
 * NAME (else kept as written). Caller frees. */
char *env_expand(const char *in, const json_t *const *maps, size_t nmaps);
/* "K=V" strings → an object K → V (first position, last value). New reference. */
json_t *env_object(const json_t *env);
/* The pod's hostname (spec.hostname or its name, at most 63 characters; the node's
 * for hostNetwork). Caller frees. */
char *pod_hostname(const json_t *pod);
/* resources.<kind>.<name> of container c in milli-units (0 when absent); requests
 * default to limits. */
int resource_milli(const json_t *c, const char *kind, const char *name, int64_t *ret,
		   struct gerr **err);

/* ---- volumes (volume.c) ---- */
/* Create every volume of the pod under POD/volumes (tmpfs for secrets and
 * emptyDir medium Memory), writing configMap/secret/downwardAPI/projected files
 * atomically (..data symlink swap, as the kubelet does). Idempotent: rewrites
 * contents that changed. */
int volumes_setup(const json_t *pod, const char *pod_dir, struct gerr **err);
/* Unmount the pod's tmpfs volumes (the caller then removes POD with rm_rf). */
void volumes_teardown(const char *pod_dir);
/* Remove a tree without following symlinks or crossing mounts. */
int rm_rf(const char *path);
/* Host path of a volume (for bind mounts), or NULL if the pod has no such volume. */
char *volume_host_path(const json_t *pod, const char *pod_dir, const char *volume);

/* ---- network (cni.c) ---- */
int netns_create(const char *name, char **ret_path, struct gerr **err);
int netns_delete(const char *name, struct gerr **err);
/* CNI ADD/DEL with the node's conflist (made from the pod CIDR when absent). */
int cni_add(const struct node_paths *p, const char *pod_cidr, const char *uid,
	    const char *netns_path, char **ret_ip, struct gerr **err);
int cni_del(const struct node_paths *p, const char *pod_cidr, const char *uid,
	    const char *netns_path, struct gerr **err);

/* ---- probes (probe.c) ---- */
struct probe_target {
	const struct node_paths *paths;
	const char *container_id; /* runc id */
	const char *pod_ip;       /* connect address; the shim runs in the pod's netns */
	const json_t *container;  /* for named ports */
};
/* Run one probe action (exec, httpGet, tcpSocket or grpc) with its timeoutSeconds.
 * Returns 1 success, 0 failure (ret_msg says why), -1 on internal errors. */
int probe_run(const json_t *probe, const struct probe_target *t, char **ret_msg, struct gerr **err);
/* Run a lifecycle handler (exec or httpGet, or sleep); same returns. */
int hook_run(const json_t *handler, const struct probe_target *t, char **ret_msg, struct gerr **err);

/* ---- logs (logs.c) ---- */
/* CRI log format: "2026-11-22T05:01:02.123456789Z stdout F text\n". A file rotates to
 * .1 when it passes max_bytes (default 10 MiB). */
struct log_writer;
struct log_writer *log_open(const char *path, size_t max_bytes, struct gerr **err);
void log_write(struct log_writer *w, const char *stream, const char *data, size_t len);
void log_close(struct log_writer *w);
/* Print a log file (and its rotated predecessor) as plain text, last `tail` lines
 * (-1 all), following new lines when follow (until the container's shim is gone). */
int log_print(const char *path, long tail, bool follow, int out, struct gerr **err);

/* ---- shims (shim.c) ---- */
/* Start a detached shim for one container (double fork, new session); returns when
 * the shim has written its pid file. */
int shim_start(const struct node_paths *p, const char *pod_dir, const char *container,
	       struct gerr **err);
/* Ask a container's shim to stop (create POD/containers/NAME/stop and signal it);
 * wait up to timeout_ms for it to exit. A shim that is gone counts as stopped, and
 * its container (if runc still has it) is killed and deleted. */
int shim_stop(const struct node_paths *p, const char *pod_dir, const char *container,
	      int timeout_ms, struct gerr **err);
/* Whether the shim of a container is alive (pid file, same start time). */
bool shim_alive(const char *pod_dir, const char *container);

/* ---- pods (node.c) ---- */
/* logs.c: find a pod by uid, NAMESPACE/NAME, or NAME (in "default" when several
 * namespaces have it): its directory and pod.json (caller frees both). */
int pod_find(const struct node_paths *p, const char *want, char **ret_dir, json_t **ret_pod,
	     struct gerr **err);
/* POD/pod.json with the secrets merged back in; NULL with err on failure. */
json_t *pod_load(const char *pod_dir, struct gerr **err);

/* ---- cluster DNS (dns.c) ---- */
/* Make this node's cluster DNS answer for network (the node's network.json with its
 * own pod IPs and readiness filled in, borrowed): one dnsmasq listening only on
 * network.dnsServer (default DNS_DEFAULT_SERVER) port 53, UDP and TCP, an address
 * of the dummy link DNS_LINK, answering from STATE/dns/hosts (Services, headless
 * endpoints, pods' hostname.subdomain names under network.clusterDomain) and
 * forwarding every other name outside the cluster domain to the nameservers of the
 * node's /etc/resolv.conf. Cheap when nothing changed (no restart, no signal): a
 * changed hosts or servers file (names, domain, upstreams) is re-read on SIGHUP; a
 * changed address restarts it; a dead one is started again. The pid file is
 * STATE/dns/dnsmasq.pid. The address is the one pods' resolv.conf names (node.c). */
#define DNS_DEFAULT_SERVER "169.254.20.10"
#define DNS_LINK "gitops-dns"
int dns_update(const json_t *network_filled, const char *state_dir, struct gerr **err);
/* Start the cluster DNS again if it died, with what the last dns_update left (no
 * network needed: a pid file and /proc read when it runs; a no-op on a node that
 * never had one). For `node status`. */
int dns_ensure(const char *state_dir, struct gerr **err);

/* ---- the cluster state a plan brings (cluster_state.c) ---- */
/* STATE/cluster.json with the entries of clusterDeltas since (a new object; empty
 * when the node has none). state: the state directory. */
json_t *cluster_state_read(const char *state);
/* The clusterHash (api_cluster_digest of cluster_state_read(), from the sum kept with
 * the entries aside), or NULL when the node has none. */
char *cluster_state_hash(const char *state);
/* A plan's clusterDelta ({"base": HASH, "set": {KEY: entry}, "was": {KEY: entry or
 * null}}): -1 with err naming both hashes unless base is this node's. */
int cluster_delta_check(const struct node_paths *p, const json_t *delta, struct gerr **err);
/* The plan's `cluster` merged in, or its clusterDelta kept; the entries that changed
 * journalled as one "cluster.changed". -1 with err: the delta does not apply. */
int cluster_record(const struct node_paths *p, struct journal *j, const json_t *plan, struct gerr **err);

/* ---- Services and NetworkPolicy rules (network.c) ---- */
/* STATE/network.json is the last plan's `network`; the rules are compiled from it
 * with the node's own addresses, pod IPs and readiness filled in and loaded by the
 * gitops-nft child process (never linked). Every refresh then calls dns_update().
 * Journal: rules.loaded, rules.drift, rules.failed (docs/node-protocol.md). */
/* Save the plan's network (an object; anything else: nothing) when it changed. */
int network_save(const struct node_paths *p, const json_t *network, struct gerr **err);
/* Whether the node has a network.json (without it, nothing here does anything). */
bool network_present(const struct node_paths *p);
/* The node's network: STATE/network.json (the last whole `network` of a plan) with the
 * Services changed since by networkDeltas (STATE/network-delta.json) made in it; *ret
 * NULL when the node has none. state: the state directory. */
int network_read(const char *state, json_t **ret, struct gerr **err);
/* The networkDigest (api_netsum_digest() of what network_read() gives, from the sum
 * kept in network-delta.json: `node status` hashes no Service); NULL when none.
 * Caller frees. */
char *network_digest(const struct node_paths *p);
/* What names the network's files as they are now (both files' identities; caller
 * frees): the rules index is valid for it. NULL: no network. */
char *network_identity(const struct node_paths *p);
/* A plan's networkDelta ({"base", "services": {"NS/NAME": object or null}, "was": the
 * same keys, as the base has them}): refused
 * (-1, err naming both digests) unless base is network_digest(). */
int network_delta_check(const struct node_paths *p, const json_t *delta, struct gerr **err);
/* The delta kept in network-delta.json (spliced into network.json as text once there
 * are more than 64 Services in it: network_splice.c), then the rules: the
 * changed Services alone (netpol_partial_delta) when they changed only remote
 * endpoints, else the whole compile. -1 with err as network_refresh(), or when the
 * delta cannot be applied (the network untouched then). */
int network_apply_delta(const struct node_paths *p, struct journal *j, const json_t *delta,
			struct gerr **err);
/* Compile and load the rules if they or the table changed, after any refresh
 * running now (requests that wait together are served by one). reason: "plan" or
 * "readiness" ("drift" when the table was found changed). j: the open journal, or
 * NULL. saved: what network_save() just saved (borrowed, and filled in where it is:
 * the caller has no more use for it; spares reading it back), or NULL. -1 with err when compiling or loading failed (journalled as rules.failed,
 * once per distinct message). No network.json: 0. */
int network_refresh(const struct node_paths *p, struct journal *j, const char *reason,
		    json_t *saved, struct gerr **err);
/* node status: has someone changed our table? One netlink round trip when not;
 * when the nftables generation moved, list and compare, reload on drift. Never
 * fails and never waits (a running refresh checks for itself). */
void network_check_drift(const struct node_paths *p);

/* nft_table.c: nf_tables over netlink, read only. The ruleset generation id of this
 * network namespace; a digest (4 x 64-bit lanes, an order-free sum of per-object
 * hashes) of table FAMILY TABLE, or of only the objects named in `touched` that
 * exist, each counted once: "chain NAME" (with its rules), "set NAME" (a set or map,
 * with its elements), "element SET KEY" (one element of set or map SET, KEY as
 * netpol_compile writes it, the text before " : " in a map: "10.96.0.20 . tcp . 80",
 * "10.96.0.20 . 80 . 1"; read alone, or within its whole set when SET is an interval
 * set or a key does not fit its type, and not again when "set SET" is named too).
 * When touched names every object a change made, created or deleted, digest(before)
 * - digest(before, touched) + digest(after, touched) == digest(after). And the lanes
 * as 64 hex digits and back. */
int nft_genid(uint32_t *ret);
int nft_table_digest(const char *family, const char *table, const struct strvec *touched,
		     uint64_t ret_lane[4], bool *ret_present, struct gerr **err);
int nft_table_digest_hex(const char *family, const char *table, char **ret, bool *ret_present,
			 struct gerr **err);
char *nft_lanes_hex(const uint64_t lane[4]);
bool nft_hex_lanes(const char *hex, uint64_t lane[4]);
/* A shim's container changed readiness: refresh in a forked child (reaped by the
 * caller's wait loop) that never takes the caller down. */
void network_refresh_spawn(const struct node_paths *p);

/* ---- the rules' files among themselves (network*.c; nothing else calls these) ---- */
/* network.c: STATE/NAME. Caller frees. */
char *net_state_file(const struct node_paths *p, const char *name);
/* network_fill.c: uid → {"ip", "ready", "hostNetwork"} of every pod this node has;
 * network.json (changed in place) with the node's addresses, its pods' IPs and
 * readiness, returning net_local_pods(). New references. */
json_t *net_local_pods(const struct node_paths *p);
json_t *network_fill(const struct node_paths *p, json_t *net);
/* network_load.c: one refresh under the lock, and one change to load. */
struct rules_refresh {
	const struct node_paths *p;
	struct journal *j;  /* NULL: open the journal per record */
	json_t *st;         /* rules.json */
};
struct rules_load {
	const json_t *net;          /* the filled network */
	const struct sbuf *script;  /* its whole table */
	const char *digest;         /* sha256 of the script */
	const char *reason;         /* plan | readiness | drift */
	bool partial;               /* made by rules_refresh_partial */
};
/* The network's nftables family and table ("ip gitops" unless it names others). */
const char *net_family(const json_t *net);
const char *net_table(const json_t *net);
/* gitops-nft --list of the network's table. */
int rules_nft_list(const json_t *net, struct sbuf *out, struct gerr **err);
/* STATE/rules.json (an empty object when none), and saving it. */
json_t *rules_state(const struct node_paths *p);
void rules_save(const struct node_paths *p, const json_t *st);
/* lastError and rules.failed, once per distinct message. */
void rules_record_failure(struct rules_refresh *r, const char *reason, const struct gerr *e);
/* tmp → rename without fsync, for files used only while a recorded digest matches. */
void rules_save_nosync(const char *path, const char *buf, size_t len);
/* STATE/rules.nft into old when it is what rules.json recorded: NULL, else why not. */
const char *rules_script_last(struct rules_refresh *r, struct sbuf *old);
/* 0: the table is what was loaded, 1: it drifted (*ret_found: its digest now), -1. */
int rules_check_table(struct rules_refresh *r, const json_t *net, char **ret_found, struct gerr **err);
/* Load delta onto the table loaded last, touching `touched`; -1: load it whole. */
int rules_load_delta(struct rules_refresh *r, const struct rules_load *l, const struct sbuf *delta,
		     const struct strvec *touched, struct gerr **err);
/* Load what changed: nothing, the delta from rules.nft, or the whole table. */
int rules_load_changes(struct rules_refresh *r, struct rules_load *l, struct gerr **err);
/* network_index.c: after a whole compile, the index of what was loaded; a readiness
 * change from it: 0 done (loaded, or nothing to), 1 the whole compile must do it. */
void rules_index_save(const struct node_paths *p, const json_t *filled, const json_t *local, const char *script);
int rules_refresh_partial(struct rules_refresh *r);
/* A networkDelta's Services, as they were (old_svcs, in the network whose identity
 * was old_id) and are (new_svcs, in the same order): when they changed only remote
 * endpoints (not headless; a named targetPort only with `pods`, the pods at their
 * endpoints, NULL: none sent), their change made onto the table loaded last, the
 * index then naming the network as it is now. 0: done; 1: the whole compile must do
 * it. */
int rules_refresh_services(struct rules_refresh *r, const char *old_id, const json_t *old_svcs,
			   const json_t *new_svcs, const json_t *pods);
/* network_index.c: dev:ino:size:mtime of a file, the index's identity of network.json. */
char *rules_file_id(const char *path);
/* network_splice.c: one Service of a networkDelta, as spliced into network.json's text.
 * key: the delta's "NS/NAME" (borrowed); now: the new object (borrowed) or NULL
 * (deleted); [old_start, old_end): its text in the old file (both 0: it was not
 * there). */
struct net_change {
	const char *key;
	const json_t *now;
	size_t old_start, old_end;
};
/* `text` (network.json: compact, keys sorted, services sorted by namespace/name) with
 * the Services of `services` replaced, inserted or deleted, appended to `out`: the
 * bytes json_dumps(JSON_COMPACT | JSON_SORT_KEYS) gives for the whole network so
 * changed. *ret (caller frees) the changes, sorted by namespace/name. -1 with err:
 * the text is not of that layout, or a key or object is malformed. */
int net_splice_services(const char *text, size_t len, const json_t *services, struct sbuf *out,
			struct net_change **ret, size_t *ret_n, struct gerr **err);
/* The same change made in a parsed network (network.c: the Services of a networkDelta
 * kept aside, made in network.json's content as it is read): `changes` is {"NS/NAME":
 * object or null}; a new Service goes where namespace, then name, sorts it. */
void net_overlay_apply(json_t *network, const json_t *changes);

/* ---- misc (util.c) ---- */
/* A file kept aside of a whole one: STATE/ASIDE, {"base": STATE/WHOLE's identity
 * (rules_file_id) when it was written, "sum": the digest's sum (api_netsum_format), KEY:
 * the members changed since}, written after WHOLE. Read back only while WHOLE is that
 * file (a node stopped between writing the two has none): else NULL. *ret_sum (may be
 * NULL) gets the sum. */
json_t *rt_aside_read(const char *state, const char *whole, const char *aside, const char *key,
		      struct api_netsum *ret_sum);
int rt_aside_write(const char *state, const char *whole, const char *aside, const char *key, json_t *members,
		   const struct api_netsum *sum, struct gerr **err);
/* The node's journal kept short (status.c): past 4 MiB (GITOPS_JOURNAL_MAX_BYTES), the
 * records but the newest quarter of that become one snapshot record {"compacted":
 * {"toSeq": the last record dropped}} (journal_compact): every command reads the
 * journal whole when it opens it. j may be NULL. */
void rt_journal_trim(struct journal *j);
/* For the node's own commands (apply, refresh, status), before any other use of
 * OpenSSL: they only hash, so its configuration file is not read (parsing it is ~1 ms
 * of every call). */
void rt_crypto_init(void);
/* The sha256 of data as 64 hex digits. Caller frees. */
char *rt_sha256_hex(const void *data, size_t len);
/* Now as RFC 3339 UTC with seconds ("2026-11-22T05:01:02Z"). Caller frees. */
char *rfc3339_now(void);
/* Read a JSON file (bounded); NULL with err on failure. */
json_t *json_load_path(const char *path, size_t max, struct gerr **err);
int json_save_atomic(const char *path, const json_t *v, mode_t mode, struct gerr **err);

/* ---- one session through a running OpenSSH ControlMaster (ssh_mux.c) ---- */
/* ssh.c's jobs that run through a master: the socket, the protocol state and the exit
 * status. Deciding what a refusal or a hang-up means for the job stays in ssh.c. */
enum mux_state {
	MUX_NONE,       /* not through a master: an ssh process */
	MUX_HELLO_WAIT, /* sent hello, request and fds; the master's hello comes first */
	MUX_OPEN_WAIT,  /* waiting for "session opened" (or a refusal: back to ssh) */
	MUX_RUNNING,    /* opened: the exit status, then EOF */
	MUX_REFUSED,    /* the master refused; start ssh instead */
};
struct mux_session {
	int fd;               /* the master's socket; -1 once closed */
	enum mux_state state;
	struct sbuf in;       /* bytes from the master not yet taken apart */
	bool exit_seen;
	uint32_t exit_status; /* as the master sent it (not capped at 255) */
};
#define MUX_SESSION_INIT { .fd = -1, .state = MUX_NONE, .in = SBUF_INIT }
/* Connect to the master listening on socket path and ask it for a session running
 * cmd with fresh pipes (stdin from a pipe when with_in, else /dev/null). m is
 * MUX_SESSION_INIT. On success 0, m in MUX_HELLO_WAIT, and our ends of the pipes,
 * non-blocking, in *ret_in (-1 without with_in), *ret_out and *ret_err. -1 when no
 * master takes it: nothing reached the node, nothing left open, m untouched. */
int mux_session_start(struct mux_session *m, const char *path, const char *cmd, bool with_in,
		      int *ret_in, int *ret_out, int *ret_err);
/* Read what the master sent (when m->fd polls readable) and move the state on.
 * Returns 1 when the session is over (the master closed the socket after the session
 * opened; m->fd is then closed), else 0; a refusal shows as state MUX_REFUSED. */
int mux_session_read(struct mux_session *m);
/* Close the socket and free the buffer, keeping state and exit status; idempotent. */
void mux_session_close(struct mux_session *m);

#endif
