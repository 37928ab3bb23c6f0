/* shim_main.c: `gitops shim` — load a container's pod and spec, become a subreaper
 * with signals on a signalfd, write the pid file, then run the event loop until the
 * container is done for good or the shim is asked to stop. */
#include "runtime/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPEC_MAX (16u << 20)
#define IDLE_WAKE_MS 1000    /* the stop file is looked at least this often */
#define INIT_POLL_MS 250     /* earlier init containers' state files, this often */
#define ERR_IMAGE_PULL_MS 1000

int64_t shim_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void shim_logf(const struct shim *s, const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	char *now = rfc3339_now();
	sb_addf(&sb, "%s shim %s/%s: ", now, s->uid ? s->uid : "?", s->name ? s->name : "?");
	free(now);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	sb_addc(&sb, '\n');
	if (write(2, sb.buf, sb.len) < 0) {
		/* nowhere left to report it */
	}
	sb_release(&sb);
}

static int64_t env_ms(const char *name, int64_t def, int64_t min, int64_t max)
{
	const char *v = getenv(name);
	int64_t n;
	return v && *v && parse_i64(v, min, max, &n) == 0 ? n : def;
}


static void set_paths(struct shim *s)
{
	s->cdir = xasprintf("%s/containers/%s", s->pod_dir, s->name);
	s->state_path = xasprintf("%s/state.json", s->cdir);
	s->pid_path = xasprintf("%s/shim.pid", s->cdir);
	s->stop_path = xasprintf("%s/stop", s->cdir);
	s->bundle = xasprintf("%s/bundle", s->cdir);
	s->runc_log = xasprintf("%s/runc.log", s->cdir);
	s->runc_pid = xasprintf("%s/container.pid", s->cdir);
	s->log_path = xasprintf("%s/logs/%s.log", s->pod_dir, s->name);
}

static void set_knobs(struct shim *s)
{
	s->bo_base = env_ms("GITOPS_BACKOFF_BASE_MS", 10000, 1, 3600000);
	s->bo_max = s->bo_base * 30;
	s->bo_reset = s->bo_base * 60;
	s->second_ms = env_ms("GITOPS_PROBE_SECOND_MS", 1000, 1, 60000);
	s->log_max = (size_t)env_ms("GITOPS_LOG_MAX_BYTES", 10 << 20, 4096, (int64_t)1 << 40);
}

static int load_spec(struct shim *s, struct gerr **err)
{
	const json_t *pspec = json_object_get(s->pod, "spec");
	s->uid = xstrdup(shim_jstr(s->pod, "uid", ""));
	s->ctr = json_object_get(s->spec, "container");
	s->image = shim_jstr(s->ctr, "image", NULL);
	if (!*s->uid || !json_is_object(s->ctr) || !s->image)
		return gerr_set(err, GERR_FAIL, "%s: pod.json needs \"uid\", spec.json a container with an image",
				s->cdir);
	s->cid = xasprintf("%s-%s", s->uid, s->name);
	s->is_init = json_is_true(json_object_get(s->spec, "init"));
	s->index = (int)shim_jint(s->spec, "index", 0);
	s->policy = shim_jstr(pspec, "restartPolicy", "Always");
	if (s->is_init && !strcmp(s->policy, "Always"))
		s->policy = "OnFailure"; /* Kubernetes: init containers never restart on success */
	s->grace_ms = shim_jint(pspec, "terminationGracePeriodSeconds", 30) * 1000;
	if (s->grace_ms < 0)
		s->grace_ms = 0;
	s->pod_ip = shim_jstr(s->pod, "podIP", "127.0.0.1");
	return 0;
}

static int shim_load(struct shim *s, const struct node_opts *o, const char *pod_dir,
		     const char *container, struct gerr **err)
{
	if (node_paths_init(&s->paths, o, err) < 0)
		return -1;
	s->pod_dir = xstrdup(pod_dir);
	s->name = xstrdup(container);
	set_paths(s);
	set_knobs(s);
	s->pod = pod_load(pod_dir, err); /* with the secrets kept on tmpfs merged in */
	char *path = xasprintf("%s/spec.json", s->cdir);
	s->spec = s->pod ? json_load_path(path, SPEC_MAX, err) : NULL;
	free(path);
	if (!s->spec || load_spec(s, err) < 0)
		return -1;
	char *logs = xasprintf("%s/logs", pod_dir);
	int r = mkdir_p(logs, 0755, err);
	free(logs);
	if (r == 0)
		s->log = log_open(s->log_path, s->log_max, err);
	return s->log ? 0 : -1;
}

static void shim_init(struct shim *s)
{
	memset(s, 0, sizeof(*s));
	s->sigfd = s->out_fd = s->err_fd = -1;
	for (int i = 0; i < PROBE_N; i++)
		helper_init(&s->probes[i].h);
	helper_init(&s->hook);
	s->cur = json_pack("{s:{s:s}}", "waiting", "reason", "ContainerCreating");
	s->last = json_object();
}

static void shim_release(struct shim *s)
{
	for (int i = 0; i < PROBE_N; i++) {
		helper_cancel(&s->probes[i].h);
		sb_release(&s->probes[i].h.out);
	}
	helper_cancel(&s->hook);
	sb_release(&s->hook.out);
	if (s->sigfd >= 0)
		close(s->sigfd);
	if (s->out_fd >= 0)
		close(s->out_fd);
	if (s->err_fd >= 0)
		close(s->err_fd);
	log_close(s->log);
	journal_close(s->journal);
	json_decref(s->pod);
	json_decref(s->spec);
	json_decref(s->cur);
	json_decref(s->last);
	char *strs[] = { s->pod_dir, s->name, s->cdir, s->uid, s->cid, s->state_path, s->pid_path,
			 s->stop_path, s->log_path, s->bundle, s->runc_log, s->runc_pid, s->digest,
			 s->image_id, s->started_at };
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		free(strs[i]);
	node_paths_release(&s->paths);
	memset(s, 0, sizeof(*s));
}

static int setup_process(struct shim *s, struct gerr **err)
{
	if (getsid(0) != getpid())
		setsid(); /* fails harmlessly when shim_start already made us a session leader */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would reap children behind our back */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return gerr_sys(err, "prctl(PR_SET_CHILD_SUBREAPER)");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return gerr_sys(err, "sigprocmask");
	s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sigfd < 0)
		return gerr_sys(err, "signalfd");
	return 0;
}

static void reaped(struct shim *s, pid_t pid, int status)
{
	if (pid == s->pid && !s->exited) {
		s->exited = true;
		s->exit_status = status;
		return;
	}
	for (int i = 0; i < PROBE_N; i++)
		if (s->probes[i].h.pid == pid)
			s->probes[i].h.pid = 0;
	if (s->hook.pid == pid)
		s->hook.pid = 0;
	/* anything else: an orphan re-parented to us (subreaper); reaping it is all */
}

static void reap(struct shim *s)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			reaped(s, pid, status);
			continue;
		}
		if (pid < 0 && errno == EINTR)
			continue;
		return; /* 0: none left to reap now; ECHILD: no children at all */
	}
}

static void read_signals(struct shim *s)
{
	struct signalfd_siginfo si;
	ssize_t n;
	while ((n = read(s->sigfd, &si, sizeof(si))) == sizeof(si) || (n < 0 && errno == EINTR)) {
		if (n < 0)
			continue;
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			s->stop_requested = true;
	}
	reap(s); /* SIGCHLD coalesces: always reap everything */
}

static void finish_stop(struct shim *s)
{
	s->final = true;
	shim_write_state(s);
	s->phase = PH_DONE;
}

/* ErrImagePull shows for a while after a failed pull, then ImagePullBackOff. */
static int64_t image_backoff_shown(const struct shim *s)
{
	int64_t half = (s->deadline - s->bo_since) / 2;
	return s->bo_since + (half < ERR_IMAGE_PULL_MS ? half : ERR_IMAGE_PULL_MS);
}

static void step(struct shim *s)
{
	int64_t now = shim_now();
	if (s->stop_requested && s->phase != PH_RUNNING && s->phase != PH_DONE)
		finish_stop(s);
	if (s->stop_requested && s->phase == PH_RUNNING && !s->exited)
		shim_begin_kill(s, "stop", -1);
	switch (s->phase) {
	case PH_INIT_WAIT:
		shim_check_init(s);
		break;
	case PH_BACKOFF:
		if (now < s->deadline) {
			if (s->bo_kind == BO_IMAGE && now >= image_backoff_shown(s))
				shim_set_waiting(s, "ImagePullBackOff",
						 json_string_value(json_object_get(json_object_get(s->cur, "waiting"), "message")));
			break;
		}
		s->phase = PH_PREPARE;
		/* fall through */
	case PH_PREPARE:
		shim_prepare_and_start(s);
		break;
	case PH_RUNNING:
		if (s->exited) {
			shim_handle_exit(s);
			break;
		}
		shim_kill_step(s, now);
		if (s->kill == KILL_NONE && s->probes_on)
			probes_tick(s, now);
		break;
	case PH_BLOCKED:
	case PH_DONE:
		break;
	}
}

static int wake_in(const struct shim *s)
{
	int64_t now = shim_now(), at = now + (s->phase == PH_INIT_WAIT ? INIT_POLL_MS : IDLE_WAKE_MS);
	if (s->phase == PH_PREPARE || (s->phase == PH_RUNNING && s->exited) ||
	    (s->stop_requested && s->kill == KILL_NONE && s->phase != PH_DONE))
		return 0;
	if (s->phase == PH_BACKOFF) {
		int64_t shown = image_backoff_shown(s);
		int64_t t = s->bo_kind == BO_IMAGE && shown > now ? shown : s->deadline;
		at = t < at ? t : at;
	}
	if (s->phase == PH_RUNNING && (s->kill == KILL_PRESTOP || s->kill == KILL_TERM) && s->kill_deadline < at)
		at = s->kill_deadline;
	int64_t p = probes_next(s);
	if (p && p < at)
		at = p;
	return at > now ? (int)(at - now) : 0;
}

static void add_fd(struct pollfd *pfd, int *n, int fd)
{
	pfd[*n].fd = fd;
	pfd[*n].events = POLLIN;
	pfd[*n].revents = 0;
	(*n)++;
}

static void dispatch_helper(struct shim *s, int fd)
{
	int ok;
	char *msg = NULL;
	for (int i = 0; i < PROBE_N; i++) {
		struct shim_probe *pr = &s->probes[i];
		if (pr->h.fd == fd && helper_read(&pr->h, &ok, &msg))
			probe_done(s, pr, ok, msg);
	}
	if (s->hook.fd == fd && helper_read(&s->hook, &ok, &msg))
		hook_done(s, ok, msg);
	free(msg);
}

static void wait_events(struct shim *s)
{
	struct pollfd pfd[4 + PROBE_N];
	int n = 0;
	add_fd(pfd, &n, s->sigfd);
	if (s->out_fd >= 0)
		add_fd(pfd, &n, s->out_fd);
	if (s->err_fd >= 0)
		add_fd(pfd, &n, s->err_fd);
	for (int i = 0; i < PROBE_N; i++)
		if (s->probes[i].h.fd >= 0)
			add_fd(pfd, &n, s->probes[i].h.fd);
	if (s->hook.fd >= 0)
		add_fd(pfd, &n, s->hook.fd);
	int r = poll(pfd, (nfds_t)n, wake_in(s));
	if (r < 0 && errno != EINTR)
		shim_logf(s, "poll: %s", strerror(errno));
	for (int i = 0; r > 0 && i < n; i++) {
		if (!pfd[i].revents)
			continue;
		int fd = pfd[i].fd;
		if (fd == s->sigfd)
			read_signals(s);
		else if (fd == s->out_fd)
			shim_pump(s, fd, "stdout");
		else if (fd == s->err_fd)
			shim_pump(s, fd, "stderr");
		else
			dispatch_helper(s, fd);
	}
}

static void run_loop(struct shim *s)
{
	s->phase = PH_INIT_WAIT;
	while (s->phase != PH_DONE) {
		if (!s->stop_requested && access(s->stop_path, F_OK) == 0)
			s->stop_requested = true;
		step(s);
		if (s->phase != PH_DONE)
			wait_events(s);
	}
}

static void shim_exit(struct shim *s)
{
	if (s->instances)
		shim_runc_delete(s);
	if (s->stop_requested)
		shim_cgroup_cleanup(s);
	unlink(s->pid_path);
	unlink(s->runc_pid);
}

int shim_main(const struct node_opts *o, const char *pod_dir, const char *container,
	      struct gerr **err)
{
	struct shim s;
	shim_init(&s);
	int r = shim_load(&s, o, pod_dir, container, err);
	if (r == 0)
		r = setup_process(&s, err);
	if (r == 0)
		r = shim_write_pidfile(s.pid_path, err);
	if (r < 0) {
		gerr_wrap(err, "shim %s/containers/%s", pod_dir, container);
		shim_release(&s);
		return -1;
	}
	shim_load_previous(&s);
	shim_logf(&s, "supervising container %s (pid %ld)", s.cid, (long)getpid());
	run_loop(&s);
	shim_exit(&s);
	shim_logf(&s, "done");
	shim_release(&s);
	return 0;
}
