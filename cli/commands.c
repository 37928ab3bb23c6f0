/* commands.c: the command table. One row per command feeds the parser, `gitops
 * help`, and the bash/zsh/fish completions (see cli.h for the checklist). */
#include "cli/cli.h"

static const struct cli_opt validate_opts[] = {
	CLI_SOURCE_OPTS,
	{ "filename", 'f', "FILE", "also read this file or directory (repeatable; - for stdin)",
	  CC_FILE, NULL, true },
	{ "output", 'o', "FORMAT", "text (default) or json", CC_WORDS, "text json", false },
	{ "quiet", 'q', NULL, "print errors only, and the summary only when there are errors", CC_NONE, NULL, false },
	{ .name = NULL },
};

/* Reading the nodes' live state: the SSH options of sync (see CONTROLLER_OPTS). */
#define LIVE_SSH_OPTS                                                                      \
	{ "ssh-config", 0, "FILE", "ssh client configuration (ssh -F)", CC_FILE, NULL, false }, \
	{ "parallel", 0, "N", "nodes reached at once (default 32)", CC_NONE, NULL, false },  \
	{ "ssh-timeout", 0, "DURATION", "time allowed per node and command (default 30s)", CC_NONE, NULL, false }, \
	{ "accept-new-host-keys", 0, NULL, "trust a node's host key the first time (accept-new)", CC_NONE, NULL, false }
#define LIVE_OPTS CLI_SOURCE_OPTS, LIVE_SSH_OPTS
#define NAMESPACE_OPT { "namespace", 'n', "NS", "the namespace (default: default)", CC_NONE, NULL, false }

static const struct cli_opt get_opts[] = {
	CLI_SOURCE_OPTS,
	LIVE_SSH_OPTS,
	{ "desired", 0, NULL, "pods, deployments, replicasets, nodes, services, endpoints: print them from git, not from the nodes",
	  CC_NONE, NULL, false },
	{ "filename", 'f', "FILE", "read manifests from this file or directory instead of git "
	  "(repeatable; - for stdin)", CC_FILE, NULL, true },
	{ "namespace", 'n', "NS", "the namespace (default: default)", CC_NONE, NULL, false },
	{ "all-namespaces", 'A', NULL, "list objects of every namespace", CC_NONE, NULL, false },
	{ "selector", 'l', "SELECTOR", "label selector, e.g. app=web,tier!=db,env in (a,b)", CC_NONE, NULL, false },
	{ "output", 'o', "FORMAT", "wide, yaml, json or name", CC_WORDS, "wide yaml json name", false },
	{ .name = NULL },
};

#define NODE_DIRS                                                                          \
	{ "state-dir", 0, "DIR", "node state directory (default: /var/lib/gitops)", CC_DIR, NULL, false }, \
	{ "run-dir", 0, "DIR", "node runtime directory (default: /run/gitops)", CC_DIR, NULL, false },     \
	{ "runtime", 0, "PATH", "OCI runtime (default: $GITOPS_RUNTIME or runc)", CC_FILE, NULL, false }

static const struct cli_opt node_opts[] = {
	NODE_DIRS,
	{ "output", 'o', "FORMAT", "json (the protocol) or a table (default)", CC_WORDS, "json", false },
	{ "since", 0, "SEQ", "status: include the journal records after SEQ", CC_NONE, NULL, false },
	{ "cluster-hash", 0, "HASH", "status: leave out the cluster state when its hash is HASH", CC_NONE, NULL, false },
	{ "container", 'c', "NAME", "logs: the container", CC_NONE, NULL, false },
	{ "tail", 0, "N", "logs: the last N lines", CC_NONE, NULL, false },
	{ "follow", 'f', NULL, "logs: keep printing new lines", CC_NONE, NULL, false },
	{ "tty", 't', NULL, "exec: allocate a terminal (runc exec -t)", CC_NONE, NULL, false },
	{ .name = NULL },
};

static const struct cli_opt shim_opts[] = {
	NODE_DIRS,
	{ "pod-dir", 0, "DIR", "the pod's directory", CC_DIR, NULL, false },
	{ "container", 0, "NAME", "the container", CC_NONE, NULL, false },
	{ .name = NULL },
};

#define CONTROLLER_OPTS                                                                    \
	CLI_SOURCE_OPTS,                                                                   \
	{ "ssh-config", 0, "FILE", "ssh client configuration (ssh -F)", CC_FILE, NULL, false }, \
	{ "parallel", 0, "N", "nodes reached at once (default 32)", CC_NONE, NULL, false },  \
	{ "ssh-timeout", 0, "DURATION", "time allowed per node and command (default 30s)", CC_NONE, NULL, false }, \
	{ "accept-new-host-keys", 0, NULL, "trust a node's host key the first time (accept-new)", CC_NONE, NULL, false }, \
	{ "prune", 0, "BOOL", "remove what git no longer has (default true)", CC_WORDS, "true false", false }, \
	{ "allow-empty", 0, NULL, "let a tree without manifests remove everything", CC_NONE, NULL, false }

static const struct cli_opt sync_opts[] = {
	CONTROLLER_OPTS,
	{ "dry-run", 0, NULL, "decide and print, send nothing to the nodes", CC_NONE, NULL, false },
	{ "wait", 0, NULL, "keep passing until every rollout completes or fails", CC_NONE, NULL, false },
	{ "timeout", 0, "DURATION", "with --wait: give up after this long (default 10m)", CC_NONE, NULL, false },
	{ .name = NULL },
};

static const struct cli_opt diff_opts[] = {
	CONTROLLER_OPTS,
	{ .name = NULL },
};

static const struct cli_opt reconcile_opts[] = {
	CONTROLLER_OPTS,
	{ "wait-lock", 0, NULL, "wait for a concurrent reconcile instead of exiting 0", CC_NONE, NULL, false },
	{ "log-format", 0, "FORMAT", "text (default) or json (one line per pass that changed something)",
	  CC_WORDS, "text json", false },
	{ "watch", 0, NULL, "loop forever, one pass every --interval", CC_NONE, NULL, false },
	{ "interval", 0, "DURATION", "with --watch: time between passes (default 1m)", CC_NONE, NULL, false },
	{ .name = NULL },
};

static const struct cli_opt rollout_opts[] = {
	CONTROLLER_OPTS,
	{ "namespace", 'n', "NS", "the namespace (default: default)", CC_NONE, NULL, false },
	{ "revision", 0, "N", "history: show the template of revision N", CC_NONE, NULL, false },
	{ "to-revision", 0, "N", "undo: the revision to go back to (default: the previous one)", CC_NONE, NULL, false },
	{ "commit", 0, NULL, "undo: also commit the revert to the branch read (libgit2)", CC_NONE, NULL, false },
	{ "push", 0, NULL, "undo: commit and push the branch to its remote (origin, or the URL)", CC_NONE, NULL, false },
	{ "timeout", 0, "DURATION", "status: give up after this long (default 10m)", CC_NONE, NULL, false },
	{ .name = NULL },
};

static const struct cli_opt cron_opts[] = {
	{ "repo", 0, "URL", "the repository the reconcile reads", CC_NONE, NULL, false },
	{ "every", 0, "MINUTES", "how often (default 1)", CC_NONE, NULL, false },
	{ .name = NULL },
};

static const struct cli_opt logs_opts[] = {
	LIVE_OPTS,
	NAMESPACE_OPT,
	{ "container", 'c', "NAME", "the container (default: the only one)", CC_NONE, NULL, false },
	{ "follow", 'f', NULL, "keep printing new lines until the container ends (^C stops)", CC_NONE, NULL, false },
	{ "tail", 0, "N", "only the last N lines", CC_NONE, NULL, false },
	{ .name = NULL },
};

static const struct cli_opt exec_opts[] = {
	LIVE_OPTS,
	NAMESPACE_OPT,
	{ "container", 'c', "NAME", "the container (default: the first)", CC_NONE, NULL, false },
	{ "stdin", 'i', NULL, "pass stdin to the command", CC_NONE, NULL, false },
	{ "tty", 't', NULL, "give the command a terminal (when stdin is one)", CC_NONE, NULL, false },
	{ .name = NULL },
};

static const struct cli_opt events_opts[] = {
	LIVE_OPTS,
	NAMESPACE_OPT,
	{ "all-namespaces", 'A', NULL, "events of every namespace", CC_NONE, NULL, false },
	{ "since", 0, "SEQ", "only the journal records after sequence number SEQ of each node", CC_NONE, NULL, false },
	{ .name = NULL },
};

static const struct cli_opt describe_opts[] = {
	LIVE_OPTS,
	NAMESPACE_OPT,
	{ .name = NULL },
};

static const struct cli_opt status_opts[] = {
	LIVE_OPTS,
	{ .name = NULL },
};

static const struct cli_opt no_opts[] = { { .name = NULL } };

const struct cli_cmd cli_commands[] = {
	{
		.name = "validate", .fn = cmd_validate, .group = "Desired state",
		.usage = "[FILE|DIR...] [--repo REPO] [--ref REF] [--path PATH]",
		.summary = "check manifests against Kubernetes' schema and rules",
		.help = "Reads every *.yaml, *.yml and *.json file of the git tree at REF (or the files and\n"
			"directories given) and reports every problem as\n"
			"  FILE:LINE:COL: KIND NS/NAME: field.path: message\n"
			"Exit status: 0 valid (warnings allowed), 1 invalid, 2 could not read.",
		.opts = validate_opts, .pos = CC_FILE,
	},
	{
		.name = "get", .fn = cmd_get, .group = "Desired state",
		.usage = "KIND[,KIND...] [NAME] [options]  |  KIND/NAME [options]",
		.summary = "print objects: desired ones from git; pods, deployments, rs, nodes, svc, ep live",
		.help = "KIND is a kind, its plural or short name (deployments, deploy, svc, netpol, cm...).\n"
			"Pods, Deployments, ReplicaSets, Nodes, Services and Endpoints are read from the\n"
			"nodes over SSH when the repository declares Nodes (kubectl's columns: READY,\n"
			"STATUS, RESTARTS, AGE, CLUSTER-IP, ENDPOINTS...);\n"
			"--desired, -f, or a repository without Nodes print them from git instead.\n"
			"-o yaml prints a multi-document stream (desired objects validate again unchanged);\n"
			"-o json prints one object, or a List of several.",
		.opts = get_opts, .pos = CC_KIND,
	},
	{
		.name = "sync", .fn = cmd_sync, .group = "Desired state",
		.usage = "[--repo REPO] [--ref REF] [--path PATH] [--wait] [--dry-run]",
		.summary = "apply the repository to the nodes now, printing what changed",
		.help = "Reads and validates the desired state (nothing is applied when anything is\n"
			"invalid), reads every node's status over SSH, runs the controllers and sends each\n"
			"node whose pods differ its plan. Exit 0 when every node was reached and no rollout\n"
			"failed, 1 otherwise, 2 when the repository could not be read.",
		.opts = sync_opts,
	},
	{
		.name = "diff", .fn = cmd_diff, .group = "Desired state",
		.usage = "[--repo REPO] [--ref REF] [--path PATH]",
		.summary = "print what a sync would change on each node",
		.help = "Lines are NODE: + ns/pod (start), - ns/pod (stop), ~ ns/pod (update).\n"
			"Exit 0 no change, 1 changes, 2 error.",
		.opts = diff_opts,
	},
	{
		.name = "reconcile", .fn = cmd_reconcile, .group = "Desired state",
		.usage = "[--repo URL] [--watch [--interval D]] [--log-format json]",
		.summary = "sync for cron: locked, quiet when nothing changed",
		.help = "A second concurrent run exits 0 saying who holds the lock (or waits, with\n"
			"--wait-lock). Non-zero exit when a node failed or a rollout failed.\n"
			"See 'gitops cron' for a crontab line and a systemd timer.",
		.opts = reconcile_opts,
	},
	{
		.name = "rollout", .fn = cmd_rollout, .group = "Desired state",
		.usage = "status|history|undo|pause|resume deployment/NAME [options]",
		.summary = "follow, list, undo, pause or resume a Deployment's rollouts",
		.help = "  status   follow the rollout until it completes (exit 0) or fails (exit 1);\n"
			"           rollouts progress when sync or reconcile runs\n"
			"  history  revisions with their commit, age and CHANGE-CAUSE (the commit subject)\n"
			"  undo     pin the previous revision (or --to-revision N) until git changes the\n"
			"           Deployment's template; the pin is recorded on every node.\n"
			"           --commit also commits the revert to the branch read: the revision's\n"
			"           template replaces spec.template in the Deployment's file (validated\n"
			"           first; comments inside the template are lost); a checked-out work\n"
			"           tree is updated too, a file with uncommitted changes is refused.\n"
			"           --push (implies --commit) pushes the branch; a rejected push exits 1\n"
			"           and the commit stays. A URL --repo needs --push\n"
			"  pause    stop template changes from rolling out (scaling still works)\n"
			"  resume   let them roll out again",
		.opts = rollout_opts, .pos = CC_WORDS, .pos_words = "status history undo pause resume",
	},
	{
		.name = "cron", .fn = cmd_cron, .group = "Desired state",
		.usage = "[--repo URL] [--every MINUTES]",
		.summary = "print a crontab line and a systemd timer that run reconcile",
		.opts = cron_opts,
	},
	{
		.name = "status", .fn = cmd_status, .group = "Live state",
		.usage = "[--repo REPO] [--ssh-config FILE]",
		.summary = "nodes, workloads, pins, paused rollouts and the last synced commit",
		.help = "Reads every node's status over SSH (nothing is changed). Exit 0 when every node\n"
			"answered and no rollout failed, 1 otherwise.",
		.opts = status_opts,
	},
	{
		.name = "describe", .fn = cmd_describe, .group = "Live state",
		.usage = "KIND NAME | KIND/NAME [-n NS]",
		.summary = "show a pod, deployment or node in detail, with its recent events",
		.help = "Events come from the nodes' journals: a pod's own, a Deployment's pods' (the\n"
			"ones gone included), a node's own records.",
		.opts = describe_opts, .pos = CC_WORDS, .pos_words = "pods deployments nodes",
	},
	{
		.name = "events", .fn = cmd_events, .group = "Live state",
		.usage = "[-n NS | -A] [--since SEQ]",
		.summary = "the nodes' journal records as events, oldest first",
		.help = "TYPE is Warning for failed pulls, non-zero exits, back-offs and probe failures.\n"
			"--since SEQ counts per node: only records after sequence number SEQ.",
		.opts = events_opts,
	},
	{
		.name = "logs", .fn = cmd_logs, .group = "Live state",
		.usage = "POD [-c CONTAINER] [-f] [--tail N] [-n NS]",
		.summary = "print a container's output (from the node that runs the pod)",
		.opts = logs_opts,
	},
	{
		.name = "exec", .fn = cmd_exec, .group = "Live state",
		.usage = "POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]",
		.summary = "run a command in a container (runc exec on its node)",
		.help = "Exit status: the command's (255 when ssh failed). Each word is quoted for the\n"
			"node's shell: it runs as given, never through a shell unless you name one.",
		.opts = exec_opts,
	},
	{
		.name = "node", .fn = cmd_node, .group = "Nodes",
		.usage = "apply|status|check|logs|exec|rules|refresh [options]",
		.summary = "the node agent: converge this machine to a plan, report its state",
		.help = "  apply   read a plan (JSON, docs/node-protocol.md) on stdin, converge, print the status\n"
			"  status  every pod, its phase and containers; -o json adds capacity, the cluster\n"
			"          state, the versions of it and of the network a plan's deltas name\n"
			"          (clusterHash, networkDigest) and, with --since SEQ, the journal records\n"
			"          after SEQ\n"
			"  check   the parts this node needs (runc, CNI plugins, skopeo, umoci, nft) and which\n"
			"          cgroup controllers are enforced; exit 1 when a required part is missing\n"
			"  logs    POD [-c CONTAINER] [--tail N] [-f]: a container's output\n"
			"  exec    POD [-c CONTAINER] [-t] -- COMMAND [ARG...]: run a command in a running\n"
			"          container (runc exec), exiting with its status\n"
			"  rules   the nftables table of Services and NetworkPolicy as loaded now (stdout),\n"
			"          and whether it is what this node loaded last (stderr; exit 1 when not)\n"
			"  refresh load the rules again from this node's state, as a shim does when a\n"
			"          container's readiness changes: only what changed (silent; -o json:\n"
			"          STATE/rules.json after it)",
		.opts = node_opts, .pos = CC_WORDS, .pos_words = "apply status check logs exec rules refresh",
	},
	{
		.name = "shim", .fn = cmd_shim, .group = "Nodes", .hidden = true,
		.usage = "--pod-dir DIR --container NAME",
		.summary = "supervise one container (started by node apply)",
		.opts = shim_opts,
	},
	{
		.name = "completion", .fn = cmd_completion, .group = "Other",
		.usage = "bash|zsh|fish", .summary = "print a shell completion script",
		.help = "Example: gitops completion bash > /etc/bash_completion.d/gitops",
		.opts = no_opts, .pos = CC_WORDS, .pos_words = "bash zsh fish",
	},
	{
		.name = "help", .fn = cmd_help, .group = "Other", .usage = "[COMMAND]",
		.summary = "show help for gitops or one command", .opts = no_opts, .pos = CC_COMMAND,
	},
	{
		.name = "version", .fn = cmd_version, .group = "Other", .usage = "",
		.summary = "print the version of gitops and its libraries", .opts = no_opts,
	},
};

const size_t cli_ncommands = ARRAY_SIZE(cli_commands);
