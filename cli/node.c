/* node.c: `gitops node apply|status|check|logs|exec|rules|refresh` (the node agent, run over SSH by
 * the controller or by hand) and the hidden `gitops shim`. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"

static struct node_opts opts_of(struct cli_args *a)
{
	struct node_opts o = {
		.state_dir = cli_str(a, "state-dir"),
		.run_dir = cli_str(a, "run-dir"),
		.runtime = cli_str(a, "runtime"),
		.cluster_hash = cli_str(a, "cluster-hash"),
	};
	return o;
}

/* Indented for a terminal, compact on the wire. */
static int print_json(json_t *v)
{
	char *s = json_dumps(v, isatty(1) ? JSON_INDENT(2) | JSON_PRESERVE_ORDER : JSON_COMPACT);
	puts(s ? s : "null");
	free(s);
	return 0;
}

static const char *container_state(const json_t *cs, char *buf, size_t n)
{
	const json_t *st = json_object_get(cs, "state");
	const json_t *w = json_object_get(st, "waiting"), *t = json_object_get(st, "terminated");
	if (w)
		return json_string_value(json_object_get(w, "reason")) ?: "Waiting";
	if (t) {
		const char *r = json_string_value(json_object_get(t, "reason"));
		snprintf(buf, n, "%s", r ? r : "Terminated");
		return buf;
	}
	return "Running";
}

/* kubectl's STATUS column: the first container that is not running, else the phase. */
static void print_table(const json_t *status)
{
	printf("%-12s %-36s %-6s %-18s %-9s %s\n", "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "IP");
	size_t i;
	json_t *pod;
	json_array_foreach(json_object_get(status, "pods"), i, pod) {
		size_t j, ready = 0, total = 0;
		json_int_t restarts = 0;
		json_t *cs;
		char buf[64];
		const char *st = json_string_value(json_object_get(pod, "phase"));
		const char *why = json_string_value(json_object_get(pod, "reason"));
		json_array_foreach(json_object_get(pod, "containerStatuses"), j, cs) {
			total++;
			ready += json_is_true(json_object_get(cs, "ready"));
			restarts += json_integer_value(json_object_get(cs, "restartCount"));
			const char *s = container_state(cs, buf, sizeof(buf));
			if (strcmp(s, "Running") && strcmp(st, "Succeeded") && strcmp(st, "Failed"))
				st = s;
		}
		if (why)
			st = why;
		char rd[32];
		snprintf(rd, sizeof(rd), "%zu/%zu", ready, total);
		printf("%-12s %-36s %-6s %-18s %-9lld %s\n", json_string_value(json_object_get(pod, "namespace")),
		       json_string_value(json_object_get(pod, "name")), rd, st, (long long)restarts,
		       json_string_value(json_object_get(pod, "podIP")) ?: "<none>");
	}
}

static int output_status(struct cli_args *a, json_t *status)
{
	const char *fmt = cli_str(a, "output");
	if (fmt && !strcmp(fmt, "json"))
		print_json(status);
	else
		print_table(status);
	return 0;
}

static int node_apply_cmd(struct cli_args *a)
{
	struct sbuf plan = SBUF_INIT;
	struct gerr *err = NULL;
	json_t *status = NULL;
	struct node_opts o = opts_of(a);
	if (sb_read_fd(&plan, 0, RUNTIME_MAX_PLAN, &err) < 0 ||
	    node_apply(&o, plan.buf, plan.len, &status, &err) < 0) {
		sb_release(&plan);
		return cli_fail(err);
	}
	sb_release(&plan);
	output_status(a, status);
	json_decref(status);
	return 0;
}

static int node_status_cmd(struct cli_args *a)
{
	int64_t since = -1; /* no --since: no records; --since 0: all of them */
	if (cli_str(a, "since") && parse_i64(cli_str(a, "since"), 0, INT64_MAX, &since) < 0)
		return cli_usage_error(a, "--since takes a sequence number");
	struct gerr *err = NULL;
	json_t *status = NULL;
	struct node_opts o = opts_of(a);
	if (node_status(&o, since < 0 ? UINT64_MAX : (uint64_t)since, &status, &err) < 0)
		return cli_fail(err);
	output_status(a, status);
	json_decref(status);
	return 0;
}

static int node_check_cmd(struct cli_args *a)
{
	struct gerr *err = NULL;
	json_t *report = NULL;
	bool ok = false;
	struct node_opts o = opts_of(a);
	if (node_check(&o, &report, &ok, &err) < 0)
		return cli_fail(err);
	const char *fmt = cli_str(a, "output");
	if (fmt && !strcmp(fmt, "json")) {
		print_json(report);
	} else {
		printf("gitops %s\n", json_string_value(json_object_get(report, "version")));
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(report, "parts"), i, p) {
			bool found = json_is_true(json_object_get(p, "found"));
			const char *v = json_string_value(json_object_get(p, "version"));
			const char *path = json_string_value(json_object_get(p, "path"));
			printf("%s %-12s %s", found ? "ok  " : "MISS", json_string_value(json_object_get(p, "name")),
			       found ? (v ? v : path ? path : "") : "");
			if (!found)
				printf("missing: apt-get install %s%s", json_string_value(json_object_get(p, "package")),
				       json_is_true(json_object_get(p, "required")) ? "" : " (optional)");
			putchar('\n');
		}
		const json_t *cg = json_object_get(report, "cgroup");
		printf("cgroup %s: enforced:", json_string_value(json_object_get(cg, "version")));
		json_array_foreach(json_object_get(cg, "enforced"), i, p)
			printf(" %s", json_string_value(p));
		if (json_array_size(json_object_get(cg, "notEnforced"))) {
			printf("; not enforced:");
			json_array_foreach(json_object_get(cg, "notEnforced"), i, p)
				printf(" %s", json_string_value(p));
		}
		putchar('\n');
	}
	json_decref(report);
	return ok ? 0 : 1;
}

static int node_logs_cmd(struct cli_args *a)
{
	if (a->argc != 2)
		return cli_usage_error(a, "name one pod: gitops node logs POD [-c CONTAINER]");
	int64_t tail = -1;
	if (cli_str(a, "tail") && parse_i64(cli_str(a, "tail"), -1, INT64_MAX, &tail) < 0)
		return cli_usage_error(a, "--tail takes a number of lines");
	struct log_opts l = { .pod = a->argv[1], .container = cli_str(a, "container"), .tail = tail,
			      .follow = cli_flag(a, "follow") };
	struct gerr *err = NULL;
	struct node_opts o = opts_of(a);
	if (node_logs(&o, &l, 1, &err) < 0)
		return cli_fail(err);
	return 0;
}

static int node_exec_cmd(struct cli_args *a)
{
	if (a->argc != 2 || !a->rest || a->nrest < 1)
		return cli_usage_error(a, "name one pod and a command: gitops node exec POD [-c CONTAINER] [-t] -- COMMAND [ARG...]");
	struct exec_opts e = { .pod = a->argv[1], .container = cli_str(a, "container"), .tty = cli_flag(a, "tty"),
			       .argv = (const char *const *)a->rest };
	struct gerr *err = NULL;
	struct node_opts o = opts_of(a);
	int status = 0;
	if (node_exec(&o, &e, &status, &err) < 0)
		return cli_fail(err);
	return status;
}

/* The table as nft lists it on stdout; whether it is what the node loaded on stderr. */
static int node_rules_cmd(struct cli_args *a)
{
	if (a->argc != 1)
		return cli_usage_error(a, "gitops node rules takes no arguments");
	struct gerr *err = NULL;
	json_t *report = NULL;
	struct node_opts o = opts_of(a);
	if (node_rules(&o, &report, &err) < 0)
		return cli_fail(err);
	bool matches = json_is_true(json_object_get(report, "matches"));
	const char *fmt = cli_str(a, "output");
	if (fmt && !strcmp(fmt, "json")) {
		print_json(report);
	} else {
		const json_t *loaded = json_object_get(report, "loaded");
		const char *table = json_string_value(json_object_get(report, "table"));
		fputs(json_string_value(json_object_get(report, "listing")), stdout);
		fflush(stdout);
		if (!json_is_true(json_object_get(report, "network")))
			fprintf(stderr, "# no network: no plan has given this node Services or policies\n");
		else if (!json_is_string(json_object_get(loaded, "listing")))
			fprintf(stderr, "# table %s: nothing loaded yet%s\n", table,
				json_object_get(loaded, "lastError") ? " (see rules.failed in the journal)" : "");
		else
			fprintf(stderr, "# table %s %s what this node loaded at %s (%lld services, %lld policies, "
				"script sha256 %.12s)\n", table, matches ? "matches" : "DIFFERS from",
				json_string_value(json_object_get(loaded, "time")),
				(long long)json_integer_value(json_object_get(loaded, "services")),
				(long long)json_integer_value(json_object_get(loaded, "policies")),
				json_string_value(json_object_get(loaded, "digest")));
	}
	json_decref(report);
	return matches ? 0 : 1;
}

/* Silent when it worked; -o json: rules.json after it. */
static int node_refresh_cmd(struct cli_args *a)
{
	if (a->argc != 1)
		return cli_usage_error(a, "gitops node refresh takes no arguments");
	struct gerr *err = NULL;
	json_t *st = NULL;
	struct node_opts o = opts_of(a);
	if (node_refresh(&o, &st, &err) < 0)
		return cli_fail(err);
	const char *fmt = cli_str(a, "output");
	if (fmt && !strcmp(fmt, "json"))
		print_json(st);
	json_decref(st);
	return 0;
}

int cmd_node(struct cli_args *a)
{
	if (a->argc < 1)
		return cli_usage_error(a, "name a subcommand: apply, status, check, logs, exec, rules or refresh");
	const char *sub = a->argv[0];
	if (!strcmp(sub, "apply"))
		return node_apply_cmd(a);
	if (!strcmp(sub, "status"))
		return node_status_cmd(a);
	if (!strcmp(sub, "check"))
		return node_check_cmd(a);
	if (!strcmp(sub, "logs"))
		return node_logs_cmd(a);
	if (!strcmp(sub, "exec"))
		return node_exec_cmd(a);
	if (!strcmp(sub, "rules"))
		return node_rules_cmd(a);
	if (!strcmp(sub, "refresh"))
		return node_refresh_cmd(a);
	return cli_usage_error(a, "unknown subcommand \"%s\": apply, status, check, logs, exec, rules or refresh",
			       sub);
}

int cmd_shim(struct cli_args *a)
{
	const char *pod = cli_str(a, "pod-dir"), *c = cli_str(a, "container");
	if (!pod || !c)
		return cli_usage_error(a, "--pod-dir and --container are required");
	struct gerr *err = NULL;
	struct node_opts o = opts_of(a);
	if (shim_main(&o, pod, c, &err) < 0)
		return cli_fail(err);
	return 0;
}
