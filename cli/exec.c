/* exec.c: `gitops exec` — run a command in a container over ssh (`gitops node exec`
 * on its node) — and the ssh with the user's stdio it shares with `gitops logs`. */
#include "cli/cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "runtime/runtime.h"

#define DEST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@:[]%+"

/* [user@]host[:port], [user@][v6]:port, a bare IPv6 address or a Host alias → ssh's
 * host argument and port (0: the configuration's); what ssh_run_all accepts. */
static int split_dest(const char *dest, struct sbuf *host, int64_t *ret_port)
{
	*ret_port = 0;
	if (!*dest || *dest == '-' || strspn(dest, DEST_CHARS) != strlen(dest))
		return -1;
	const char *at = strrchr(dest, '@'), *h = at ? at + 1 : dest, *colon = strchr(h, ':'), *port = NULL;
	if (h[0] == '[')
		port = strstr(h, "]:") ? strstr(h, "]:") + 2 : NULL;
	else if (colon && !strchr(colon + 1, ':'))
		port = colon + 1;
	if (at == dest || !*h || *h == '-' || (port && parse_i64(port, 1, 65535, ret_port) < 0))
		return -1;
	char *bare = live_dest_host(dest);
	if (at)
		sb_add(host, dest, (size_t)(h - dest));
	sb_adds(host, bare);
	free(bare);
	return 0;
}

/* ssh and its options, as ssh_run_all sets them, but a connection of its own: a
 * shared master would keep the session (and our stdout) open after ssh is killed,
 * for as long as the remote command runs. */
static void ssh_base(const struct live *l, struct strvec *argv)
{
	int connect_s = l->ctl.o.timeout_ms / 2000;
	strvec_push(argv, "ssh");
	if (l->ctl.o.ssh_config)
		strvec_pushv(argv, (const char *const[]){ "-F", l->ctl.o.ssh_config, NULL });
	strvec_pushv(argv, (const char *const[]){ "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o",
						  "ControlPath=none", NULL });
	strvec_pushf(argv, "-oConnectTimeout=%d", connect_s < 1 ? 1 : connect_s > 10 ? 10 : connect_s);
	strvec_pushf(argv, "-oStrictHostKeyChecking=%s", l->ctl.o.accept_new ? "accept-new" : "yes");
	strvec_pushv(argv, (const char *const[]){ "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2",
						  "-o", "LogLevel=ERROR", NULL });
}

static struct child *running; /* the ssh of live_ssh, for on_signal */

/* Pass the signal on to ssh (^C from a terminal reaches it anyway), then wait for
 * it and pass its status on: killing us never leaves an ssh behind. */
static void on_signal(int sig)
{
	if (running && running->pid > 0)
		kill(running->pid, sig);
}

int live_ssh(const struct live *l, const char *node, const char *const *remote, bool tty, bool with_stdin)
{
	const char *dest = live_dest(l, node);
	struct sbuf host = SBUF_INIT, word = SBUF_INIT;
	int64_t port = 0;
	if (split_dest(dest, &host, &port) < 0) {
		sb_release(&host);
		fprintf(stderr, "gitops: node %s: invalid destination '%s': expected [user@]host[:port]\n", node, dest);
		return 2;
	}
	struct strvec argv = STRVEC_INIT;
	ssh_base(l, &argv);
	strvec_push(&argv, tty ? "-t" : "-T");
	if (port)
		strvec_pushf(&argv, "-p%lld", (long long)port);
	strvec_pushv(&argv, (const char *const[]){ host.buf, "--", NULL });
	for (const char *const *w = remote; *w; w++) {
		sb_reset(&word);
		ssh_quote_word(&word, *w);
		strvec_push(&argv, word.buf);
	}
	static const int sigs[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP };
	struct child c = { .argv = strvec_argv(&argv), .inherit_in = with_stdin };
	struct sigaction sa = { .sa_handler = on_signal }, old[ARRAY_SIZE(sigs)];
	sigemptyset(&sa.sa_mask);
	running = &c;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, &old[i]);
	fflush(stdout);
	struct gerr *err = NULL;
	int st = child_run(&c, &err);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &old[i], NULL);
	running = NULL;
	if (st < 0)
		st = cli_fail(err);
	strvec_clear(&argv);
	sb_release(&host);
	sb_release(&word);
	return st;
}

int cmd_exec(struct cli_args *a)
{
	if (a->argc != 1 || !a->rest || a->nrest < 1)
		return cli_usage_error(a, "name one pod and a command: gitops exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]");
	bool tty = cli_flag(a, "tty");
	if (tty && !isatty(0)) {
		fprintf(stderr, "Unable to use a TTY - input is not a terminal or the right kind of file\n");
		tty = false;
	}
	struct strvec args = STRVEC_INIT;
	if (tty)
		strvec_push(&args, "-t");
	strvec_push(&args, "--");
	strvec_pushv(&args, (const char *const *)a->rest);
	int r = live_pod_command(a, "exec", &args, tty, tty || cli_flag(a, "stdin"));
	strvec_clear(&args);
	return r;
}
