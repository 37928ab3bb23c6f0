/* cli: the command table, option parsing, help, completions and output.
 *
 * Adding a command (git's checklist): write cli/<verb>.c with
 * `int cmd_<verb>(struct cli_args *a)`, add one row to commands[] in
 * cli/commands.c (it feeds the parser, `gitops help`, and the shell completions),
 * a bats test tests/cli/<verb>.bats, and a line in docs/.
 *
 * Only cli/ prints to the user and chooses exit codes:
 *   0 success, 1 failure of the operation (invalid manifests, a diff exists...),
 *   2 usage errors and anything that could not be read or reached.
 */
#ifndef GITOPS_CLI_H
#define GITOPS_CLI_H

#include <stdio.h>

#include "lib/lib.h"

enum cli_complete { CC_NONE, CC_FILE, CC_DIR, CC_KIND, CC_WORDS, CC_COMMAND };

struct cli_opt {
	const char *name;      /* long name without "--" */
	char short_name;       /* 0 if none */
	const char *arg;       /* metavar ("REF"), or NULL for a flag */
	const char *help;
	enum cli_complete complete;
	const char *words;     /* CC_WORDS: space-separated choices */
	bool repeat;           /* may be given more than once */
};

struct cli_args;
struct cli_cmd {
	const char *name;
	int (*fn)(struct cli_args *a);
	const char *usage;     /* "KIND [NAME] [options]" */
	const char *summary;   /* one line */
	const char *help;      /* paragraphs after the usage; may be NULL */
	const struct cli_opt *opts; /* terminated by { NULL } */
	enum cli_complete pos; /* what positional arguments complete to */
	const char *pos_words;
	const char *group;     /* heading in `gitops help` */
	bool hidden;           /* internal (gitops shim): not in help or completions */
};

#define CLI_MAX_VALUES 64
struct cli_args {
	const struct cli_cmd *cmd;
	int argc;              /* positional arguments, after options */
	char **argv;
	char **rest;           /* after "--" (exec); NULL when absent */
	int nrest;
	/* option values, parallel to cmd->opts */
	const char *val[CLI_MAX_VALUES];
	int count[CLI_MAX_VALUES];
	const char **list[CLI_MAX_VALUES]; /* every value of a repeatable option */
};

int cli_main(int argc, char **argv);

/* Option value by long name: the last one given, or NULL. */
const char *cli_str(const struct cli_args *a, const char *name);
bool cli_flag(const struct cli_args *a, const char *name);
/* Every value of a repeatable option, NULL-terminated (never NULL). */
const char *const *cli_list(const struct cli_args *a, const char *name);
/* Print "gitops: MSG" and the hint to stderr; returns exit code 2. */
int cli_usage_error(const struct cli_args *a, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Print "gitops: MESSAGE" for err and return its exit code (1 or 2). */
int cli_fail(struct gerr *err);

extern const struct cli_cmd cli_commands[];
extern const size_t cli_ncommands;
const struct cli_cmd *cli_command(const char *name);

/* Shared option sets (terminated lists are spliced by the table). */
#define CLI_SOURCE_OPTS                                                                   \
	{ "repo", 0, "REPO", "git repository: a local path (worktree or bare) or a URL "  \
	  "(default: .)", CC_DIR, NULL, false },                                          \
	{ "ref", 0, "REF", "branch, tag or commit to read (default: HEAD)", CC_NONE, NULL, false }, \
	{ "path", 0, "PATH", "only read manifests under this directory of the repository", \
	  CC_NONE, NULL, false },                                                          \
	{ "state-dir", 0, "DIR", "state directory (default: /var/lib/gitops for root, "    \
	  "else $XDG_STATE_HOME/gitops)", CC_DIR, NULL, false },                            \
	{ "no-fetch", 0, NULL, "use the cached clone of a URL as it is", CC_NONE, NULL, false }

/* The commands. */
int cmd_validate(struct cli_args *a);
int cmd_get(struct cli_args *a);
int cmd_version(struct cli_args *a);
int cmd_help(struct cli_args *a);
int cmd_completion(struct cli_args *a);
int cmd_node(struct cli_args *a);
int cmd_sync(struct cli_args *a);
int cmd_diff(struct cli_args *a);
int cmd_reconcile(struct cli_args *a);
int cmd_cron(struct cli_args *a);
int cmd_rollout(struct cli_args *a);
int cmd_shim(struct cli_args *a);
int cmd_logs(struct cli_args *a);
int cmd_exec(struct cli_args *a);
int cmd_events(struct cli_args *a);
int cmd_describe(struct cli_args *a);
int cmd_status(struct cli_args *a);

/* Loading manifests (cli/load.c): from the files/directories given as positional
 * arguments from first_pos on (pass a->argc for none) and -f/--filename, when
 * there are any, else from the git source options. On failure
 * prints the reason and returns the exit code (2); 0 on success. ret_desc gets a
 * description like "at 4f2c9e1" or "" (caller frees). */
struct api_set;
struct api_object;
int cli_load(struct cli_args *a, int first_pos, struct api_set *set, char **ret_desc);

/* The controller's plumbing (cli/sync.c), shared by sync, diff, reconcile and
 * rollout: options → rc_opts, reading the desired state (nothing is applied when
 * it is invalid), and passes until rollouts finish. */
#include "reconcile/reconcile.h"
struct ctl {
	struct cli_args *a;
	struct rc_opts o;
	char *state;
	bool json_log;
	bool quiet;      /* print only what changed */
};
int ctl_setup(struct cli_args *a, struct ctl *c);
int ctl_load(struct ctl *c, struct api_set *set, char **ret_commit, char **ret_subject);
int ctl_passes(struct ctl *c, bool wait, int64_t timeout_ms);

/* Live state (cli/live.c), shared by get, describe, events, logs, exec and status.
 * live_open() runs one dry-run controller pass over the desired objects: every
 * node's status is read over SSH with the sync options (--ssh-config, --parallel,
 * --ssh-timeout, --accept-new-host-keys, --state-dir) and nothing is sent.
 * Ownership: l owns res, pods and ctl's strings until live_close(); the desired
 * set stays the caller's and must outlive l. Pointers returned by the lookups
 * below are borrowed from l. */
struct live {
	struct ctl ctl;            /* options; ctl.o.dry_run is always true */
	struct api_set *set;       /* the desired objects (borrowed) */
	struct rc_result res;      /* nodes, statuses, cluster, rollouts, pending */
	json_t *pods;              /* every pod as a v1 Pod object, spec.nodeName its
				    * node (pods of unreachable nodes: phase Unknown) */
	int64_t now;               /* seconds since the epoch, when the pass began */
};
/* Read the desired objects (cli_load: -f files or the git source), warning about
 * invalid ones (they are left out); returns 0 or the exit code. */
int live_load(struct cli_args *a, struct api_set *set);
/* Returns 0, or the exit code after printing why. */
int live_open(struct cli_args *a, struct api_set *set, struct live *l);
void live_close(struct live *l);
/* The pod NAME of namespace ns, or NULL. */
const json_t *live_pod(const struct live *l, const char *ns, const char *name);
/* `gitops node SUB NS/NAME [-c C] ARGS...` over ssh on the node of the pod named by
 * a->argv[0] (NAME or pod/NAME, in -n's namespace), with the user's stdio; its exit
 * code, or 1 after saying the pod is not there (cli/logs.c; gitops logs and exec). */
int live_pod_command(struct cli_args *a, const char *sub, const struct strvec *args, bool tty,
		     bool with_stdin);
/* A node's entry of res.nodes and its status (NULL when unknown/unreachable). */
const json_t *live_node(const struct live *l, const char *node, const json_t **ret_status);
/* The SSH destination of a node (annotation gitops.io/ssh, else its name), and its
 * host part without user and port (malloc'ed). */
const char *live_dest(const struct live *l, const char *node);
char *live_dest_host(const char *dest);
/* The rollout of Deployment ns/name in res.rollouts, or NULL. */
const json_t *live_rollout(const struct live *l, const char *ns, const char *name);
/* Live objects of kubectl's shape (new references): Deployments (desired object +
 * status and revision), ReplicaSets (from pods and the revision history), Nodes
 * (desired object + status), Services and Endpoints. Arrays sorted by namespace
 * and name. */
json_t *live_deployments(const struct live *l);
/* fn(l, o) of every valid object of kind `kind`, sorted by namespace and name. */
json_t *live_of_kind(const struct live *l, const char *kind,
		     json_t *(*fn)(const struct live *l, const struct api_object *o));
json_t *live_replicasets(const struct live *l);
json_t *live_nodes(const struct live *l);
/* Services (desired + the ClusterIP and NodePorts allocated) and Endpoints (of the
 * Services with a selector, from the network the plans carry; git's own for the
 * others), as v1 objects (cli/live_services.c). */
json_t *live_services(const struct live *l);
json_t *live_endpoints(const struct live *l);
/* Whether pod pod_ns/pod_name belongs to Deployment ns/deploy: by its owner
 * annotation (gitops.io/owner, may be NULL), else by a name DEPLOY-HASH-xxxxx with
 * HASH one of the Deployment's revisions (pods already gone). */
bool live_owned(const struct live *l, const char *pod_ns, const char *pod_name, const char *owner,
		const char *ns, const char *deploy);

/* Sort an array of JSON values in place with cmp (qsort's, on json_t * elements). */
void live_sort(json_t *arr, int (*cmp)(const void *, const void *));
/* qsort comparator of objects by metadata.namespace, then metadata.name */
int live_cmp_meta(const void *x, const void *y);

/* Journal records after `since` on every reachable node, merged by time: an array
 * of {node, seq, timeNs, type, body} (new reference; cli/events.c). Returns 0 or an
 * exit code. */
int live_records(struct live *l, int64_t since, json_t **ret);
/* Run `REMOTE...` on node over ssh with this process's stdout and stderr (and stdin
 * when with_stdin; a terminal when tty), each word quoted for the remote shell.
 * Returns ssh's exit status: the remote command's, 255 when ssh failed (cli/exec.c). */
int live_ssh(const struct live *l, const char *node, const char *const *remote, bool tty,
	     bool with_stdin);

/* kubectl's formatting (cli/live.c). */
int64_t live_time(const char *rfc3339);          /* epoch seconds, -1 if not a time */
void live_age(int64_t seconds, struct sbuf *out); /* kubectl's HumanDuration */
void live_age_of(const struct live *l, const char *rfc3339, struct sbuf *out); /* or <unknown> */
struct live_podsum {
	int ready, total;
	int64_t restarts;
	int64_t last_restart;      /* epoch seconds of the last container restart, or -1 */
	struct sbuf status;        /* kubectl's STATUS column; caller releases */
};
void live_pod_summary(const json_t *pod, struct live_podsum *ret);
/* JSON as block YAML in kubectl's layout: 2-space indent, sequences not indented
 * under their key, strings JSON-quoted where a plain scalar would read as another
 * type (numbers, booleans, times) or not at all. v is an object. */
void live_yaml(const json_t *v, struct sbuf *out);
/* A table printed as kubectl aligns it: columns padded to their widest cell. */
struct live_table {
	size_t ncols;
	struct strvec cells;       /* row-major */
};
void live_table_init(struct live_table *t, size_t ncols);
void live_cell(struct live_table *t, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Print with indent before each row and gap spaces between columns; releases t. */
void live_table_print(struct live_table *t, const char *indent, int gap);

/* Events (cli/events.c): records as kubectl shows events, an array of {timeNs,
 * node, namespace, object ("pod/NAME", "node/NAME"), name, uid and owner (pods'),
 * type (Normal|Warning), reason, message}, oldest first (new reference). */
json_t *events_of(const struct live *l, const json_t *records);
/* describe's "Events:" section for the events matching keep (all when NULL). */
typedef bool (*events_keep_fn)(const struct live *l, const json_t *event, const void *arg);
void events_describe(const struct live *l, const json_t *events, events_keep_fn keep, const void *arg);

/* ---- gitops get: shared by get.c and get_live.c ---- */
#include "api/api.h"
/* What `gitops get` asked for: kinds, an optional name, a namespace and -l. */
struct query {
	const struct api_kind *kinds[32];
	size_t nkinds;
	const char *name;
	const char *ns;       /* NULL = all namespaces */
	struct api_selector sel;
};
/* The kinds get reads live when the desired objects name nodes (cli/get_live.c):
 * the row of kind, or NULL for a kind only the desired state has. */
struct live_kind;
const struct live_kind *live_kind(const char *kind);
/* Print the live objects of q's kinds as fmt ("", wide, name, yaml, json); *found
 * counts what matched, and a table is set apart from one printed before it.
 * Returns 0 or the exit code of live_open(). */
int get_live(struct cli_args *a, struct api_set *set, struct query *q, const char *fmt, bool all_ns,
	     bool multi, size_t *found);

/* Help and completion output (cli/help.c). */
void cli_print_command_help(const struct cli_cmd *c, FILE *out);
void cli_print_overview(FILE *out);
int cli_print_completion(const char *shell, FILE *out);

#endif
