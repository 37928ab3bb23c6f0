/* shim_probe.c: probes and lifecycle hooks under the shim — each run in a forked
 * helper process that joins the pod's network namespace, scheduled per Kubernetes
 * (initialDelaySeconds, periodSeconds, thresholds, startup before liveness and
 * readiness), with results turned into started/ready and kills. */
#include "runtime/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HELPER_OUT_MAX 8192
#define HELPER_SLACK_MS 1000 /* a probe helper gets timeoutSeconds plus this */

static const char *const probe_keys[PROBE_N] = { "startupProbe", "livenessProbe", "readinessProbe" };
static const char *const probe_names[PROBE_N] = { "startup", "liveness", "readiness" };

void helper_init(struct shim_helper *h)
{
	memset(h, 0, sizeof(*h));
	h->fd = -1;
	sb_init(&h->out);
}

void helper_cancel(struct shim_helper *h)
{
	if (h->pid > 0) {
		kill(-h->pid, SIGKILL); /* its process group: runc exec and all */
		kill(h->pid, SIGKILL);
	}
	h->pid = 0; /* the zombie is reaped by the loop like any orphan */
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->deadline = 0;
	sb_reset(&h->out);
}

static int join_netns(const struct shim *s, char **ret_msg)
{
	const char *ns = json_string_value(json_object_get(s->pod, "netns"));
	if (!ns || !*ns)
		return 0; /* hostNetwork */
	int fd = open(ns, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		*ret_msg = xasprintf("joining the pod network namespace %s: %s", ns, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* In the forked child: run the action, write "1 message" or "0 message", exit. */
static void helper_child(struct shim *s, int wfd, const json_t *action, bool hook)
{
	setpgid(0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	char *msg = NULL;
	int r = 0;
	if (join_netns(s, &msg) == 0) {
		struct probe_target t = { &s->paths, s->cid, s->pod_ip, s->ctr };
		struct gerr *e = NULL;
		r = hook ? hook_run(action, &t, &msg, &e) : probe_run(action, &t, &msg, &e);
		if (r < 0) {
			free(msg);
			msg = xstrdup(e ? e->msg : "probe error");
			r = 0;
		}
		gerr_free(e);
	}
	char *line = xasprintf("%d %s", r > 0, msg ? msg : "");
	write_all(wfd, line, strlen(line));
	_exit(0);
}

int helper_spawn(struct shim *s, struct shim_helper *h, const json_t *action, bool hook,
		 int64_t timeout_ms)
{
	helper_cancel(h);
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		shim_logf(s, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		shim_logf(s, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		helper_child(s, pfd[1], action, hook);
	}
	setpgid(pid, pid); /* also in the child: whichever runs first */
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	h->pid = pid;
	h->fd = pfd[0];
	h->started = shim_now();
	h->deadline = timeout_ms > 0 ? h->started + timeout_ms : 0;
	return 0;
}

bool helper_read(struct shim_helper *h, int *ret_ok, char **ret_msg)
{
	char buf[1024];
	ssize_t n = read(h->fd, buf, sizeof(buf));
	if (n > 0) {
		if (h->out.len < HELPER_OUT_MAX)
			sb_add(&h->out, buf, (size_t)n);
		return false;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	close(h->fd);
	h->fd = -1;
	h->deadline = 0;
	if (h->out.len >= 2 && (h->out.buf[0] == '0' || h->out.buf[0] == '1')) {
		*ret_ok = h->out.buf[0] == '1';
		*ret_msg = xstrdup(h->out.buf + 2);
	} else {
		*ret_ok = 0;
		*ret_msg = xasprintf("timed out after %.1fs", (double)(shim_now() - h->started) / 1000);
	}
	sb_reset(&h->out);
	return true;
}

/* ---- probes ---- */

static int64_t probe_ms(const struct shim *s, const json_t *spec, const char *key, json_int_t def)
{
	json_int_t v = shim_jint(spec, key, def);
	return (v < 0 ? 0 : v) * s->second_ms;
}

static void schedule(struct shim *s, struct shim_probe *pr, int64_t now)
{
	if (!pr->spec)
		return;
	int64_t at = s->started_mono + probe_ms(s, pr->spec, "initialDelaySeconds", 0);
	pr->next = at > now ? at : now;
}

void shim_update_ready(struct shim *s)
{
	bool alive = s->phase == PH_RUNNING && !s->exited && s->kill == KILL_NONE && s->probes_on;
	const struct shim_probe *rp = &s->probes[PROBE_READINESS];
	bool ready = alive && s->started && (rp->spec ? rp->result == 1 : true);
	if (ready == s->ready)
		return;
	s->ready = ready;
	shim_journal(s, "ready.changed", json_pack("{s:b}", "ready", ready));
	shim_write_state(s);
	/* the node's Service endpoints follow at once, in a child (network.c) */
	network_refresh_spawn(&s->paths);
}

void probes_setup(struct shim *s)
{
	int64_t now = shim_now();
	for (int i = 0; i < PROBE_N; i++) {
		struct shim_probe *pr = &s->probes[i];
		helper_cancel(&pr->h);
		const json_t *spec = json_object_get(s->ctr, probe_keys[i]);
		pr->spec = json_is_object(spec) ? spec : NULL;
		pr->name = probe_names[i];
		pr->next = 0;
		pr->successes = pr->failures = 0;
		pr->result = -1;
	}
	s->probes_on = true;
	s->started = !s->probes[PROBE_STARTUP].spec;
	if (s->started) {
		schedule(s, &s->probes[PROBE_LIVENESS], now);
		schedule(s, &s->probes[PROBE_READINESS], now);
	} else {
		schedule(s, &s->probes[PROBE_STARTUP], now);
	}
	shim_write_state(s);
	shim_update_ready(s);
}

void probes_cancel(struct shim *s)
{
	for (int i = 0; i < PROBE_N; i++) {
		helper_cancel(&s->probes[i].h);
		s->probes[i].next = 0;
	}
}

void probes_tick(struct shim *s, int64_t now)
{
	for (int i = 0; i < PROBE_N; i++) {
		struct shim_probe *pr = &s->probes[i];
		if (pr->h.fd >= 0) {
			if (pr->h.deadline && now >= pr->h.deadline && pr->h.pid > 0) {
				kill(-pr->h.pid, SIGKILL); /* its verdict (EOF: timed out) follows */
				kill(pr->h.pid, SIGKILL);
				pr->h.deadline = 0;
			}
			continue;
		}
		if (!pr->next || now < pr->next)
			continue;
		int64_t timeout = shim_jint(pr->spec, "timeoutSeconds", 1);
		if (helper_spawn(s, &pr->h, pr->spec, false, (timeout < 1 ? 1 : timeout) * 1000 + HELPER_SLACK_MS) < 0)
			continue;
		int64_t period = probe_ms(s, pr->spec, "periodSeconds", 10);
		pr->next = now + (period > 0 ? period : s->second_ms);
	}
}

int64_t probes_next(const struct shim *s)
{
	int64_t at = 0;
	for (int i = 0; i < PROBE_N && s->probes_on && s->kill == KILL_NONE; i++) {
		const struct shim_probe *pr = &s->probes[i];
		int64_t t = pr->h.fd >= 0 ? pr->h.deadline : pr->next;
		if (t && (!at || t < at))
			at = t;
	}
	return at;
}

static void started_now(struct shim *s)
{
	int64_t now = shim_now();
	s->started = true;
	s->probes[PROBE_STARTUP].next = 0;
	schedule(s, &s->probes[PROBE_LIVENESS], now);
	schedule(s, &s->probes[PROBE_READINESS], now);
	shim_write_state(s);
}

void probe_done(struct shim *s, struct shim_probe *pr, int ok, const char *msg)
{
	if (!s->probes_on || s->kill != KILL_NONE || s->exited)
		return;
	if (ok) {
		pr->successes++;
		pr->failures = 0;
	} else {
		pr->failures++;
		pr->successes = 0;
	}
	int result = pr->result;
	if (ok && pr->successes >= shim_jint(pr->spec, "successThreshold", 1))
		result = 1;
	if (!ok && pr->failures >= shim_jint(pr->spec, "failureThreshold", 3))
		result = 0;
	if (result == pr->result)
		return;
	pr->result = result;
	if (!ok)
		shim_logf(s, "%s probe failed: %s", pr->name, msg ? msg : "");
	shim_journal(s, "probe.changed", json_pack("{s:s, s:s, s:s}", "probe", pr->name, "result",
						   ok ? "success" : "failure", "message", ok || !msg ? "" : msg));
	int kind = (int)(pr - s->probes);
	if (kind == PROBE_STARTUP && ok)
		started_now(s);
	else if ((kind == PROBE_STARTUP || kind == PROBE_LIVENESS) && !ok) {
		char *why = xasprintf("%s probe failed: %s", pr->name, msg ? msg : "");
		/* a probe may shorten the pod's grace period for the kills it causes */
		json_int_t g = shim_jint(pr->spec, "terminationGracePeriodSeconds", -1);
		shim_begin_kill(s, why, g >= 0 ? g * 1000 : -1);
		free(why);
		return;
	}
	shim_update_ready(s);
}
