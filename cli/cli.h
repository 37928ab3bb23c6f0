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
int cmd_shim(struct cli_args *a);

/* Loading manifests (cli/load.c): from the files/directories given as positional
 * arguments from first_pos on (pass a->argc for none) and -f/--filename, when
 * there are any, else from the git source options. On failure
 * prints the reason and returns the exit code (2); 0 on success. ret_desc gets a
 * description like "at 4f2c9e1" or "" (caller frees). */
struct api_set;
int cli_load(struct cli_args *a, int first_pos, struct api_set *set, char **ret_desc);

/* Help and completion output (cli/help.c). */
void cli_print_command_help(const struct cli_cmd *c, FILE *out);
void cli_print_overview(FILE *out);
int cli_print_completion(const char *shell, FILE *out);

#endif
