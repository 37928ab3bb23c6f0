/* logs.c: `gitops logs` — a container's output, read by `gitops node logs` on the
 * node that runs the pod, passed straight through (-f streams until ^C) — and the
 * pod command over ssh it shares with `gitops exec` (live_pod_command). */
#include "cli/cli.h"

#include <string.h>
#include <unistd.h>

#include "api/api.h"

static int pod_node(const struct live *l, const char *ns, const char *arg, const char **ret_name,
		    const char **ret_node)
{
	const char *name = str_has_prefix(arg, "pod/") ? arg + 4 : str_has_prefix(arg, "pods/") ? arg + 5 : arg;
	const json_t *p = live_pod(l, ns, name);
	if (!p) {
		fprintf(stderr, "gitops: pods \"%s\" not found in namespace \"%s\"\n", name, ns);
		return 1;
	}
	*ret_name = name;
	*ret_node = json_string_value(json_object_get(json_object_get(p, "spec"), "nodeName"));
	return 0;
}

int live_pod_command(struct cli_args *a, const char *sub, const struct strvec *args, bool tty, bool with_stdin)
{
	const char *ns = cli_str(a, "namespace") ? cli_str(a, "namespace") : "default", *node = NULL, *name = NULL;
	struct api_set set;
	struct live l;
	memset(&l, 0, sizeof(l));
	int r = live_load(a, &set);
	if (r == 0)
		r = live_open(a, &set, &l);
	if (r == 0)
		r = pod_node(&l, ns, a->argv[0], &name, &node);
	if (r == 0) {
		struct strvec remote = STRVEC_INIT;
		strvec_pushv(&remote, (const char *const[]){ "gitops", "node", sub, NULL });
		strvec_pushf(&remote, "%s/%s", ns, name);
		if (cli_str(a, "container"))
			strvec_pushv(&remote, (const char *const[]){ "-c", cli_str(a, "container"), NULL });
		for (size_t i = 0; i < args->n; i++)
			strvec_push(&remote, args->v[i]);
		r = live_ssh(&l, node, strvec_argv(&remote), tty, with_stdin);
		strvec_clear(&remote);
	}
	live_close(&l);
	api_set_release(&set);
	return r;
}

int cmd_logs(struct cli_args *a)
{
	if (a->argc != 1)
		return cli_usage_error(a, "name one pod: gitops logs POD [-c CONTAINER] [-f] [--tail N]");
	int64_t tail = -1;
	if (cli_str(a, "tail") && parse_i64(cli_str(a, "tail"), -1, INT64_MAX, &tail) < 0)
		return cli_usage_error(a, "--tail takes a number of lines");
	struct strvec args = STRVEC_INIT;
	if (tail >= 0)
		strvec_pushf(&args, "--tail=%lld", (long long)tail);
	if (cli_flag(a, "follow"))
		strvec_push(&args, "-f");
	/* -f at a terminal: a remote terminal too, so that ^C reaches `node logs` there
	 * (without one it would keep polling until the container ends) */
	bool tty = cli_flag(a, "follow") && isatty(0) && isatty(1);
	int r = live_pod_command(a, "logs", &args, tty, tty);
	strvec_clear(&args);
	return r;
}
