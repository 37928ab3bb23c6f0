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

static const struct cli_opt get_opts[] = {
	CLI_SOURCE_OPTS,
	{ "filename", 'f', "FILE", "read manifests from this file or directory instead of git "
	  "(repeatable; - for stdin)", CC_FILE, NULL, true },
	{ "namespace", 'n', "NS", "the namespace (default: default)", CC_NONE, NULL, false },
	{ "all-namespaces", 'A', NULL, "list objects of every namespace", CC_NONE, NULL, false },
	{ "selector", 'l', "SELECTOR", "label selector, e.g. app=web,tier!=db,env in (a,b)", CC_NONE, NULL, false },
	{ "output", 'o', "FORMAT", "wide, yaml, json or name", CC_WORDS, "wide yaml json name", false },
	{ .name = NULL },
};

static const struct cli_opt no_opts[] = { { .name = NULL } };

const struct cli_cmd cli_commands[] = {
	{ "validate", cmd_validate, "[FILE|DIR...] [--repo REPO] [--ref REF] [--path PATH]",
	  "check manifests against Kubernetes' schema and rules",
	  "Reads every *.yaml, *.yml and *.json file of the git tree at REF (or the files and\n"
	  "directories given) and reports every problem as\n"
	  "  FILE:LINE:COL: KIND NS/NAME: field.path: message\n"
	  "Exit status: 0 valid (warnings allowed), 1 invalid, 2 could not read.",
	  validate_opts, CC_FILE, NULL, "Desired state" },
	{ "get", cmd_get, "KIND[,KIND...] [NAME] [options]  |  KIND/NAME [options]",
	  "print desired objects with Kubernetes' defaults filled in",
	  "KIND is a kind, its plural or short name (deployments, deploy, svc, netpol, cm...).\n"
	  "-o yaml prints a multi-document stream that validates again unchanged;\n"
	  "-o json prints one object, or a List of several.",
	  get_opts, CC_KIND, NULL, "Desired state" },
	{ "completion", cmd_completion, "bash|zsh|fish", "print a shell completion script",
	  "Example: gitops completion bash > /etc/bash_completion.d/gitops", no_opts, CC_WORDS,
	  "bash zsh fish", "Other" },
	{ "help", cmd_help, "[COMMAND]", "show help for gitops or one command", NULL, no_opts,
	  CC_COMMAND, NULL, "Other" },
	{ "version", cmd_version, "", "print the version of gitops and its libraries", NULL, no_opts,
	  CC_NONE, NULL, "Other" },
};

const size_t cli_ncommands = ARRAY_SIZE(cli_commands);
