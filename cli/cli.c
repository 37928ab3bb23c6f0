/* cli.c: option parsing over the command table, dispatch, error reporting. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct cli_cmd *cli_command(const char *name)
{
	for (size_t i = 0; i < cli_ncommands; i++)
		if (strcmp(cli_commands[i].name, name) == 0)
			return &cli_commands[i];
	return NULL;
}

static int opt_index(const struct cli_cmd *c, const char *name, size_t len)
{
	for (int i = 0; c->opts && c->opts[i].name; i++)
		if (strlen(c->opts[i].name) == len && strncmp(c->opts[i].name, name, len) == 0)
			return i;
	return -1;
}

static int opt_short(const struct cli_cmd *c, char ch)
{
	for (int i = 0; c->opts && c->opts[i].name; i++)
		if (c->opts[i].short_name == ch)
			return i;
	return -1;
}

const char *cli_str(const struct cli_args *a, const char *name)
{
	int i = opt_index(a->cmd, name, strlen(name));
	return i < 0 ? NULL : a->val[i];
}

const char *const *cli_list(const struct cli_args *a, const char *name)
{
	static const char *const none[] = { NULL };
	int i = opt_index(a->cmd, name, strlen(name));
	return i >= 0 && a->list[i] ? a->list[i] : none;
}

bool cli_flag(const struct cli_args *a, const char *name)
{
	int i = opt_index(a->cmd, name, strlen(name));
	return i >= 0 && a->count[i] > 0;
}

int cli_usage_error(const struct cli_args *a, const char *fmt, ...)
{
	va_list ap;
	fputs("gitops: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (a && a->cmd)
		fprintf(stderr, "Usage: gitops %s %s\nSee 'gitops %s --help'.\n", a->cmd->name,
			a->cmd->usage, a->cmd->name);
	return 2;
}

int cli_fail(struct gerr *err)
{
	int code = err && err->code == GERR_FAIL ? 1 : 2;
	fprintf(stderr, "gitops: %s\n", err ? err->msg : "failed");
	gerr_free(err);
	return code;
}

static int set_opt(struct cli_args *a, int i, const char *value)
{
	const struct cli_opt *o = &a->cmd->opts[i];
	if (a->count[i] && !o->repeat && o->arg && strcmp(a->val[i], value ? value : ""))
		return cli_usage_error(a, "option --%s given twice", o->name);
	a->count[i]++;
	a->val[i] = value ? value : "true";
	if (o->repeat) {
		a->list[i] = xreallocarray(a->list[i], (size_t)a->count[i] + 1, sizeof(char *));
		a->list[i][a->count[i] - 1] = a->val[i];
		a->list[i][a->count[i]] = NULL;
	}
	return 0;
}

/* Parse argv (after the command name). Options may follow positionals (kubectl). */
static int parse(struct cli_args *a, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof(char *));
	a->argv = pos;
	for (int k = 0; k < argc; k++) {
		char *s = argv[k];
		if (strcmp(s, "--") == 0) {
			a->rest = argv + k + 1;
			a->nrest = argc - k - 1;
			break;
		}
		if (s[0] == '-' && s[1] == '-') {
			const char *name = s + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			if (len == 4 && strncmp(name, "help", 4) == 0)
				return 3;
			int i = opt_index(a->cmd, name, len);
			if (i < 0)
				return cli_usage_error(a, "unknown option --%.*s", (int)len, name);
			const char *v = NULL;
			if (a->cmd->opts[i].arg) {
				if (eq)
					v = eq + 1;
				else if (k + 1 < argc)
					v = argv[++k];
				else
					return cli_usage_error(a, "option --%s needs a value (%s)",
							       a->cmd->opts[i].name, a->cmd->opts[i].arg);
			} else if (eq) {
				if (strcmp(eq + 1, "true") && strcmp(eq + 1, "false"))
					return cli_usage_error(a, "option --%s takes true or false", a->cmd->opts[i].name);
				if (strcmp(eq + 1, "false") == 0) {
					a->count[i] = 0;
					a->val[i] = "false";
					continue;
				}
			}
			if (set_opt(a, i, v))
				return 2;
		} else if (s[0] == '-' && s[1]) {
			for (const char *p = s + 1; *p; p++) {
				if (*p == 'h')
					return 3;
				int i = opt_short(a->cmd, *p);
				if (i < 0)
					return cli_usage_error(a, "unknown option -%c", *p);
				const char *v = NULL;
				if (a->cmd->opts[i].arg) {
					if (p[1])
						v = p + 1;
					else if (k + 1 < argc)
						v = argv[++k];
					else
						return cli_usage_error(a, "option -%c needs a value (%s)", *p,
								       a->cmd->opts[i].arg);
					if (set_opt(a, i, v))
						return 2;
					break;
				}
				if (set_opt(a, i, NULL))
					return 2;
			}
		} else {
			pos[a->argc++] = s;
		}
	}
	return 0;
}

int cli_main(int argc, char **argv)
{
	if (argc < 2) {
		cli_print_overview(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		cli_print_overview(stdout);
		return 0;
	}
	if (strcmp(name, "--version") == 0)
		name = "version";
	const struct cli_cmd *c = cli_command(name);
	if (!c) {
		fprintf(stderr, "gitops: '%s' is not a gitops command. See 'gitops --help'.\n", name);
		return 2;
	}
	struct cli_args a = { .cmd = c };
	int r = parse(&a, argc - 2, argv + 2);
	if (r == 3) {
		cli_print_command_help(c, stdout);
		r = 0;
	} else if (r == 0) {
		r = c->fn(&a);
	}
	free(a.argv);
	for (int i = 0; i < CLI_MAX_VALUES; i++)
		free(a.list[i]);
	if (fflush(stdout) != 0 && r == 0)
		r = 2;
	return r;
}
