/* shim_run.c: one container's life under its shim — the init-container chain, image
 * and bundle, `runc create`/`start` with pipes the shim owns, exit and OOM detection,
 * restarts with back-off, and the kill sequence (preStop, SIGTERM, grace, SIGKILL). */
#include "runtime/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 1024          /* state messages are cut here */
#define PIPE_READ 65536
#define DRAIN_MS 500          /* after the container died, read its pipes this long */
#define AFTER_PRESTOP_MS 2000 /* Kubernetes' minimum time between preStop and SIGKILL */
#define RUNC_CREATE_TIMEOUT_MS 120000

/* ---- the init chain ---- */

static json_t *container_state(const struct shim *s, const char *name)
{
	char *path = xasprintf("%s/containers/%s/state.json", s->pod_dir, name);
	json_t *st = json_load_path(path, 1u << 20, NULL);
	free(path);
	return st;
}

/* 1: terminated with 0; 0: not yet; -1: failed and will not be retried. */
static int init_result(const struct shim *s, const char *name, bool never)
{
	json_t *st = container_state(s, name);
	json_t *t = json_object_get(json_object_get(st, "state"), "terminated");
	int r = 0;
	if (t && shim_jint(t, "exitCode", -1) == 0)
		r = 1;
	else if (t && never)
		r = -1;
	json_decref(st);
	return r;
}

void shim_check_init(struct shim *s)
{
	const json_t *pspec = json_object_get(s->pod, "spec");
	const json_t *inits = json_object_get(pspec, "initContainers");
	bool never = !strcmp(shim_jstr(pspec, "restartPolicy", "Always"), "Never");
	size_t upto = s->is_init ? (size_t)(s->index > 0 ? s->index : 0) : json_array_size(inits);
	for (size_t i = 0; i < upto && i < json_array_size(inits); i++) {
		const char *n = shim_jstr(json_array_get(inits, i), "name", "");
		int r = init_result(s, n, never);
		if (r == 0 || r < 0) {
			shim_set_waiting(s, "PodInitializing", NULL);
			if (r < 0) {
				shim_logf(s, "init container %s failed under restartPolicy Never: not starting", n);
				s->phase = PH_BLOCKED;
			}
			return;
		}
	}
	s->phase = PH_PREPARE;
}

/* ---- back-off ---- */

static void backoff(struct shim *s, enum backoff_kind kind, int64_t *delay)
{
	*delay = *delay ? *delay * 2 : s->bo_base;
	if (*delay > s->bo_max)
		*delay = s->bo_max;
	s->bo_kind = kind;
	s->bo_since = shim_now();
	s->deadline = s->bo_since + *delay;
	s->phase = PH_BACKOFF;
}

static char *cut(const char *msg)
{
	size_t n = strlen(msg ? msg : "");
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	return xstrndup(msg ? msg : "", n > MSG_MAX ? MSG_MAX : n);
}

static void image_failed(struct shim *s, const char *why)
{
	char *msg = cut(why);
	shim_logf(s, "pulling %s: %s", s->image, msg);
	shim_journal(s, "image.failed", json_pack("{s:s, s:s, s:s}", "image", s->image, "reason",
						  "ErrImagePull", "message", msg));
	shim_set_waiting(s, "ErrImagePull", msg);
	backoff(s, BO_IMAGE, &s->bo_image);
	free(msg);
}

static void config_failed(struct shim *s, const char *reason, const char *why)
{
	char *msg = cut(why);
	shim_logf(s, "%s: %s", reason, msg);
	shim_set_waiting(s, reason, msg);
	backoff(s, BO_CONFIG, &s->bo_image);
	free(msg);
}

/* ---- image and bundle ---- */

/* Every imagePullSecrets document's "auths" merged into one (NULL: none). */
static char *pull_auth(const struct shim *s)
{
	json_t *auths = json_object();
	const char *name;
	json_t *v;
	json_object_foreach(json_object_get(s->pod, "imagePullSecrets"), name, v) {
		const char *text = json_string_value(v);
		json_t *doc = text ? json_loads(text, 0, NULL) : json_incref(v);
		json_t *a = json_object_get(doc, "auths");
		if (json_is_object(a))
			json_object_update_missing(auths, a);
		json_decref(doc);
	}
	json_t *doc = json_pack("{s:o}", "auths", auths);
	char *out = json_object_size(auths) ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return out;
}

static void set_image_id(struct shim *s, const char *digest)
{
	if (s->digest && !strcmp(s->digest, digest))
		return;
	free(s->digest);
	free(s->image_id);
	s->digest = xstrdup(digest);
	/* repository without tag or digest, then @digest (containerd's imageID) */
	const char *slash = strrchr(s->image, '/'), *at = strchr(s->image, '@');
	const char *colon = strrchr(slash ? slash : s->image, ':');
	size_t n = at ? (size_t)(at - s->image) : colon ? (size_t)(colon - s->image) : strlen(s->image);
	s->image_id = xasprintf("%.*s@%s", (int)n, s->image, digest);
	shim_journal(s, "image.pulled", json_pack("{s:s, s:s}", "image", s->image, "digest", digest));
}

static int cgroup_version(void)
{
	return access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 ? 2 : 1;
}

static int write_config(struct shim *s, const json_t *img, struct gerr **err)
{
	char *rootfs = xasprintf("%s/rootfs", s->bundle);
	struct oci_input in = { .pod = s->pod, .spec = s->spec, .image_config = img, .rootfs = rootfs,
				.pod_dir = s->pod_dir, .cgroup_version = cgroup_version() };
	json_t *cfg = NULL;
	int r = oci_config(&in, &cfg, err);
	free(rootfs);
	if (r < 0)
		return -1;
	char *path = xasprintf("%s/config.json", s->bundle);
	r = json_save_atomic(path, cfg, 0644, err);
	free(path);
	json_decref(cfg);
	return r;
}

/* Pull, unpack and configure; on failure the back-off is set and -1 returned. */
static int prepare_bundle(struct shim *s)
{
	struct gerr *e = NULL;
	struct image_ref ref = { 0 };
	json_t *img = NULL;
	char *auth = pull_auth(s);
	int r = image_ensure(&s->paths, s->image, shim_jstr(s->ctr, "imagePullPolicy", "IfNotPresent"),
			     auth, &ref, &e);
	if (auth)
		freezero(auth, strlen(auth));
	if (r < 0) {
		image_failed(s, e ? e->msg : "pull failed");
		goto out;
	}
	set_image_id(s, ref.digest ? ref.digest : "");
	if ((r = image_unpack(&s->paths, &ref, s->bundle, &img, &e)) < 0) {
		config_failed(s, "CreateContainerError", e ? e->msg : "unpack failed");
		goto out;
	}
	if ((r = write_config(s, img, &e)) < 0) {
		config_failed(s, "CreateContainerConfigError", e ? e->msg : "config failed");
		goto out;
	}
	s->bo_image = 0;
out:
	json_decref(img);
	image_ref_release(&ref);
	gerr_free(e);
	return r;
}

/* ---- runc ---- */

static int runc(const struct shim *s, const char *const *args, struct sbuf *errb)
{
	struct strvec argv = STRVEC_INIT;
	strvec_push(&argv, s->paths.runtime);
	strvec_push(&argv, "--root");
	strvec_push(&argv, s->paths.runc_root);
	strvec_pushv(&argv, args);
	struct sbuf out = SBUF_INIT;
	struct child c = { .argv = strvec_argv(&argv), .out = &out, .errb = errb, .out_max = 65536,
			   .timeout_ms = 60000 };
	int st = child_run(&c, NULL);
	sb_release(&out);
	strvec_clear(&argv);
	return st;
}

void shim_runc_delete(const struct shim *s)
{
	const char *args[] = { "delete", "--force", s->cid, NULL };
	struct sbuf errb = SBUF_INIT;
	runc(s, args, &errb);
	sb_release(&errb);
}

/* The last error runc logged (--log-format json), or its stderr. */
static char *runc_error(const struct shim *s, const struct sbuf *errb)
{
	struct sbuf log = SBUF_INIT;
	char *msg = NULL;
	if (sb_read_file(&log, s->runc_log, 1u << 20, NULL) == 0) {
		for (char *line = log.buf; line && *line;) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			json_t *j = json_loads(line, 0, NULL);
			if (j && !strcmp(shim_jstr(j, "level", ""), "error")) {
				free(msg);
				msg = xstrdup(shim_jstr(j, "msg", ""));
			}
			json_decref(j);
			line = nl ? nl + 1 : NULL;
		}
	}
	sb_release(&log);
	if (!msg || !*msg) {
		free(msg);
		msg = errb && errb->len ? cut(errb->buf) : xstrdup("runc failed");
	}
	return msg;
}

/* fork/exec argv with stdout and stderr on the given fds (runc create passes them
 * through to the container) and every other fd closed; returns the exit status. */
static int run_with_fds(const char *const *argv, int out, int errfd)
{
	char *path = which(argv[0]);
	if (!path)
		return 127;
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL); /* ignored signals survive exec: the container's are default */
		signal(SIGHUP, SIG_DFL);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	free(path);
	if (pid < 0)
		return 127;
	int status;
	for (int64_t until = shim_now() + RUNC_CREATE_TIMEOUT_MS;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return 127;
		if (shim_now() > until)
			kill(pid, SIGKILL); /* reaped at the next turn */
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int read_pid(const char *path, pid_t *ret)
{
	struct sbuf sb = SBUF_INIT;
	int64_t v = 0;
	int r = sb_read_file(&sb, path, 64, NULL);
	if (r == 0) {
		sb.buf[strcspn(sb.buf, "\n ")] = '\0';
		r = parse_i64(sb.buf, 1, INT32_MAX, &v);
	}
	sb_release(&sb);
	*ret = (pid_t)v;
	return r;
}

/* runc create with fresh pipes as stdout/stderr; 0 and s->pid set, or -1 and *ret_msg. */
static int runc_create(struct shim *s, char **ret_msg)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0) {
		*ret_msg = xasprintf("pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(pe, O_CLOEXEC) < 0) {
		*ret_msg = xasprintf("pipe: %s", strerror(errno));
		close(po[0]);
		close(po[1]);
		return -1;
	}
	unlink(s->runc_log);
	unlink(s->runc_pid);
	const char *argv[] = { s->paths.runtime, "--root", s->paths.runc_root, "--log", s->runc_log,
			       "--log-format", "json", "create", "--bundle", s->bundle, "--pid-file",
			       s->runc_pid, s->cid, NULL };
	int st = run_with_fds(argv, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	s->out_fd = po[0];
	s->err_fd = pe[0];
	if (st != 0 || read_pid(s->runc_pid, &s->pid) < 0) {
		*ret_msg = st == 127 ? xasprintf("%s: cannot run", s->paths.runtime) : runc_error(s, NULL);
		s->pid = 0;
		return -1;
	}
	return 0;
}

/* ---- OOM: the kernel's count of OOM kills in the container's memory cgroup ---- */

static long long oom_kills(const struct shim *s)
{
	bool v1 = access("/sys/fs/cgroup/memory/memory.oom_control", F_OK) == 0;
	char *path = v1 ? xasprintf("/sys/fs/cgroup/memory/gitops/%s/%s/memory.oom_control", s->uid, s->name)
			: xasprintf("/sys/fs/cgroup/gitops/%s/%s/memory.events", s->uid, s->name);
	struct sbuf sb = SBUF_INIT;
	long long n = -1;
	if (sb_read_file(&sb, path, 65536, NULL) == 0) {
		const char *p = strstr(sb.buf, "oom_kill ");
		int64_t v;
		if (p) {
			p += strlen("oom_kill ");
			char *num = xstrndup(p, strcspn(p, "\n"));
			if (parse_i64(num, 0, INT64_MAX, &v) == 0)
				n = v;
			free(num);
		}
	}
	sb_release(&sb);
	free(path);
	return n;
}

/* The pod-level cgroups runc made implicitly (/gitops/<uid>); busy ones stay. */
void shim_cgroup_cleanup(const struct shim *s)
{
	DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = xasprintf("/sys/fs/cgroup/%s/gitops/%s", e->d_name, s->uid);
		rmdir(p);
		free(p);
	}
	if (d)
		closedir(d);
	char *p = xasprintf("/sys/fs/cgroup/gitops/%s", s->uid);
	rmdir(p);
	free(p);
}

/* ---- output ---- */

void shim_pump(struct shim *s, int fd, const char *stream)
{
	char *buf = xmalloc(PIPE_READ);
	ssize_t n = read(fd, buf, PIPE_READ);
	if (n > 0)
		log_write(s->log, stream, buf, (size_t)n);
	free(buf);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(fd);
		if (s->out_fd == fd)
			s->out_fd = -1;
		if (s->err_fd == fd)
			s->err_fd = -1;
	}
}

static void drain_pipes(struct shim *s)
{
	int64_t until = shim_now() + DRAIN_MS;
	while (s->out_fd >= 0 || s->err_fd >= 0) {
		int64_t left = until - shim_now();
		struct pollfd p[2] = { { s->out_fd, POLLIN, 0 }, { s->err_fd, POLLIN, 0 } };
		if (left <= 0 || poll(p, 2, (int)left) == 0)
			break;
		if (p[0].revents)
			shim_pump(s, p[0].fd, "stdout");
		if (p[1].revents)
			shim_pump(s, p[1].fd, "stderr");
	}
	for (int *fd = &s->out_fd; fd <= &s->err_fd; fd++)
		if (*fd >= 0) {
			close(*fd);
			*fd = -1;
		}
}

/* ---- start ---- */

static void finish_instance(struct shim *s, int code, const char *reason, const char *msg);

static void now_running(struct shim *s)
{
	shim_set_running(s);
	shim_journal(s, "container.started", json_pack("{s:i}", "restartCount", s->restarts));
	probes_setup(s);
}

static void start_instance(struct shim *s)
{
	char *msg = NULL;
	shim_runc_delete(s); /* a stale one of a shim that died */
	s->exited = false;
	s->kill = KILL_NONE;
	s->probes_on = false;
	int r = runc_create(s, &msg);
	if (s->instances++)
		s->restarts++;
	free(s->started_at);
	s->started_at = rfc3339_now();
	s->started_mono = shim_now();
	s->phase = PH_RUNNING;
	if (r == 0) {
		s->oom_before = oom_kills(s);
		const char *args[] = { "start", s->cid, NULL };
		struct sbuf errb = SBUF_INIT;
		if (runc(s, args, &errb) != 0) {
			msg = cut(errb.buf);
			r = -1;
		}
		sb_release(&errb);
	}
	if (r < 0) {
		shim_logf(s, "starting %s: %s", s->cid, msg);
		if (s->pid > 0)
			kill(s->pid, SIGKILL);
		shim_runc_delete(s);
		drain_pipes(s);
		finish_instance(s, 128, "StartError", msg);
		free(msg);
		return;
	}
	const json_t *post = json_object_get(json_object_get(s->ctr, "lifecycle"), "postStart");
	if (post && helper_spawn(s, &s->hook, post, true, 0) == 0)
		s->hook_kind = HOOK_POSTSTART; /* "running" once the hook succeeded */
	else
		now_running(s);
}

void shim_prepare_and_start(struct shim *s)
{
	shim_set_waiting(s, "ContainerCreating", NULL);
	if (prepare_bundle(s) == 0)
		start_instance(s);
}

/* ---- exit and restart ---- */

static bool wants_restart(const struct shim *s, int code)
{
	if (s->stop_requested)
		return false;
	if (!strcmp(s->policy, "Always"))
		return true;
	return !strcmp(s->policy, "OnFailure") && code != 0;
}

static void finish_instance(struct shim *s, int code, const char *reason, const char *msg)
{
	probes_cancel(s);
	helper_cancel(&s->hook);
	s->hook_kind = HOOK_NONE;
	s->pid = 0;
	s->exited = true;
	s->started = false;
	shim_update_ready(s);
	bool restart = wants_restart(s, code);
	s->final = !restart; /* in the same write as the terminated state */
	shim_set_terminated(s, code, reason, msg);
	shim_journal(s, "container.exited", json_pack("{s:i, s:s, s:i}", "exitCode", code, "reason", reason,
						      "restartCount", s->restarts));
	if (!restart) {
		s->phase = PH_DONE;
		return;
	}
	if (shim_now() - s->started_mono >= s->bo_reset)
		s->bo_crash = 0;
	json_decref(s->last);
	s->last = json_incref(s->cur);
	backoff(s, BO_CRASH, &s->bo_crash);
	int64_t secs = (s->bo_crash + 999) / 1000;
	char *m = xasprintf("back-off %llds restarting failed container=%s pod=%s_%s(%s)", (long long)secs,
			    s->name, shim_jstr(s->pod, "name", ""), shim_jstr(s->pod, "namespace", ""), s->uid);
	shim_set_waiting(s, "CrashLoopBackOff", m);
	free(m);
	shim_journal(s, "container.backoff", json_pack("{s:I}", "seconds", (json_int_t)secs));
}

void shim_handle_exit(struct shim *s)
{
	drain_pipes(s);
	int st = s->exit_status;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
	long long oom = oom_kills(s);
	const char *reason = code == 0 ? "Completed" : "Error";
	if (oom > 0 && oom > s->oom_before)
		reason = "OOMKilled";
	shim_logf(s, "container exited with %d (%s)", code, reason);
	shim_runc_delete(s);
	finish_instance(s, code, reason, NULL);
}

/* ---- the kill sequence ---- */

static void signal_container(struct shim *s, int sig)
{
	/* s->pid is our own unreaped child (subreaper): it cannot have been reused */
	if (s->pid > 0 && !s->exited)
		kill(s->pid, sig);
}

static void send_term(struct shim *s, int64_t deadline)
{
	signal_container(s, SIGTERM);
	s->kill = KILL_TERM;
	s->kill_deadline = deadline;
}

void shim_begin_kill(struct shim *s, const char *why, int64_t grace_ms)
{
	if (s->kill != KILL_NONE || s->exited)
		return;
	shim_logf(s, "killing the container: %s", why);
	probes_cancel(s);
	s->probes_on = false;
	if (s->hook_kind == HOOK_POSTSTART) {
		helper_cancel(&s->hook);
		s->hook_kind = HOOK_NONE;
	}
	shim_update_ready(s);
	int64_t now = shim_now(), grace = grace_ms < 0 ? s->grace_ms : grace_ms;
	const json_t *pre = json_object_get(json_object_get(s->ctr, "lifecycle"), "preStop");
	if (grace <= 0) {
		signal_container(s, SIGKILL);
		s->kill = KILL_FORCE;
	} else if (pre && helper_spawn(s, &s->hook, pre, true, grace) == 0) {
		s->hook_kind = HOOK_PRESTOP;
		s->kill = KILL_PRESTOP;
		s->kill_deadline = now + grace;
	} else {
		send_term(s, now + grace);
	}
}

void shim_kill_step(struct shim *s, int64_t now)
{
	if (s->kill == KILL_PRESTOP && now >= s->kill_deadline) {
		shim_logf(s, "preStop hook did not finish within the grace period");
		helper_cancel(&s->hook);
		s->hook_kind = HOOK_NONE;
		send_term(s, now + AFTER_PRESTOP_MS);
	} else if (s->kill == KILL_TERM && now >= s->kill_deadline) {
		signal_container(s, SIGKILL);
		s->kill = KILL_FORCE;
	}
}

void hook_done(struct shim *s, int ok, const char *msg)
{
	enum hook_kind kind = s->hook_kind;
	s->hook_kind = HOOK_NONE;
	if (kind == HOOK_PRESTOP) {
		if (!ok)
			shim_logf(s, "preStop hook failed: %s", msg ? msg : "");
		int64_t now = shim_now(), at = s->kill_deadline;
		send_term(s, at - now < AFTER_PRESTOP_MS ? now + AFTER_PRESTOP_MS : at);
	} else if (kind == HOOK_POSTSTART) {
		if (ok) {
			now_running(s);
			return;
		}
		char *m = xasprintf("FailedPostStartHook: %s", msg ? msg : "");
		shim_logf(s, "%s", m);
		free(m);
		shim_begin_kill(s, "FailedPostStartHook", -1);
	}
}
