/* shim.c: starting, stopping and checking a container's shim from `node apply` —
 * the double fork that detaches it, its pid file guarded by the start time, and
 * cleaning up after a shim that died. */
#include "runtime/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHIM_START_TIMEOUT_MS 10000
#define SHIM_KILL_WAIT_MS 2000

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Start time (clock ticks since boot, /proc/PID/stat field 22) and state letter. */
static int proc_starttime(pid_t pid, unsigned long long *ret, char *ret_state)
{
	char *path = xasprintf("/proc/%ld/stat", (long)pid);
	struct sbuf sb = SBUF_INIT;
	int r = sb_read_file(&sb, path, 4096, NULL);
	free(path);
	const char *p = r == 0 ? strrchr(sb.buf, ')') : NULL;
	r = -1;
	if (p && p[1] == ' ') {
		char state = p[2];
		p += 2;
		/* field 3 (state) is the first after ") "; field 22 is 19 fields later */
		for (int field = 3; field < 22 && p; field++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		char *end;
		errno = 0;
		unsigned long long v = p ? strtoull(p, &end, 10) : 0;
		if (p && errno == 0 && end != p) {
			*ret = v;
			if (ret_state)
				*ret_state = state;
			r = 0;
		}
	}
	sb_release(&sb);
	return r;
}

static char *pid_path(const char *pod_dir, const char *container)
{
	return xasprintf("%s/containers/%s/shim.pid", pod_dir, container);
}

/* Write "PID STARTTIME\n" of the calling process, atomically. */
int shim_write_pidfile(const char *path, struct gerr **err)
{
	unsigned long long st;
	if (proc_starttime(getpid(), &st, NULL) < 0)
		return gerr_set(err, GERR_IO, "cannot read the start time of process %ld", (long)getpid());
	char *text = xasprintf("%ld %llu\n", (long)getpid(), st);
	int r = write_file_atomic(path, text, strlen(text), 0644, err);
	free(text);
	return r;
}

static bool same_process(pid_t pid, unsigned long long starttime)
{
	unsigned long long have;
	char state = 0;
	return proc_starttime(pid, &have, &state) == 0 && have == starttime && state != 'Z' && state != 'X';
}

/* The shim's pid (and start time) if its pid file names a live process with the
 * same start time. */
static pid_t shim_pid2(const char *pod_dir, const char *container, unsigned long long *ret_start)
{
	char *path = pid_path(pod_dir, container);
	struct sbuf sb = SBUF_INIT;
	pid_t pid = 0;
	if (sb_read_file(&sb, path, 128, NULL) == 0) {
		char *sp = strchr(sb.buf, ' ');
		char *nl = strchr(sb.buf, '\n');
		if (nl)
			*nl = '\0';
		int64_t p = 0, t = 0;
		if (sp) {
			*sp = '\0';
			if (parse_i64(sb.buf, 1, INT32_MAX, &p) == 0 && parse_i64(sp + 1, 0, INT64_MAX, &t) == 0 &&
			    same_process((pid_t)p, (unsigned long long)t)) {
				pid = (pid_t)p;
				if (ret_start)
					*ret_start = (unsigned long long)t;
			}
		}
	}
	sb_release(&sb);
	free(path);
	return pid;
}

static pid_t shim_pid(const char *pod_dir, const char *container)
{
	return shim_pid2(pod_dir, container, NULL);
}

bool shim_alive(const char *pod_dir, const char *container)
{
	return shim_pid(pod_dir, container) > 0;
}

static void detach_and_exec(const char *const *argv, int logfd)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (chdir("/") < 0)
		_exit(127);
	int devnull = open("/dev/null", O_RDWR);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd >= 0 ? logfd : devnull, 1) < 0 ||
	    dup2(logfd >= 0 ? logfd : devnull, 2) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	execv(argv[0], (char *const *)argv);
	fprintf(stderr, "gitops shim: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* fork, setsid, fork: the grandchild is the shim; its pid comes back on a pipe. */
static pid_t double_fork(const char *const *argv, int logfd, struct gerr **err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return gerr_sys(err, "pipe");
	pid_t mid = fork();
	if (mid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return gerr_sys(err, "fork");
	}
	if (mid == 0) {
		setsid();
		pid_t pid = fork();
		if (pid == 0)
			detach_and_exec(argv, logfd);
		int32_t v = pid;
		_exit(write(pfd[1], &v, sizeof(v)) == sizeof(v) && pid > 0 ? 0 : 1);
	}
	close(pfd[1]);
	int32_t v = -1;
	ssize_t n;
	while ((n = read(pfd[0], &v, sizeof(v))) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	int status;
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(v) || v <= 0)
		return gerr_set(err, GERR_IO, "cannot start the shim (fork failed)");
	return (pid_t)v;
}

static int wait_pidfile(const char *pod_dir, const char *container, pid_t pid, struct gerr **err)
{
	for (int waited = 0; waited < SHIM_START_TIMEOUT_MS; waited += 10) {
		if (shim_pid(pod_dir, container) == pid)
			return 0;
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return gerr_set(err, GERR_IO, "the shim of container %s exited at once (see %s/containers/%s/shim.log)",
					container, pod_dir, container);
		sleep_ms(10);
	}
	return gerr_set(err, GERR_IO, "the shim of container %s did not start within %d s", container,
			SHIM_START_TIMEOUT_MS / 1000);
}

int shim_start(const struct node_paths *p, const char *pod_dir, const char *container,
	       struct gerr **err)
{
	if (shim_alive(pod_dir, container))
		return 0;
	char *cdir = xasprintf("%s/containers/%s", pod_dir, container);
	char *pidf = pid_path(pod_dir, container);
	char *stopf = xasprintf("%s/stop", cdir);
	char *logf = xasprintf("%s/shim.log", cdir);
	unlink(pidf);
	unlink(stopf);
	int r = mkdir_p(cdir, 0755, err);
	char *self = r == 0 ? which(p->self) : NULL;
	if (r == 0 && !self)
		r = gerr_set(err, GERR_IO, "%s: cannot find the gitops binary", p->self);
	if (r == 0) {
		struct strvec argv = STRVEC_INIT;
		strvec_push(&argv, self);
		strvec_push(&argv, "shim");
		strvec_push(&argv, "--state-dir");
		strvec_push(&argv, p->state);
		strvec_push(&argv, "--run-dir");
		strvec_push(&argv, p->run);
		strvec_push(&argv, "--pod-dir");
		strvec_push(&argv, pod_dir);
		strvec_push(&argv, "--container");
		strvec_push(&argv, container);
		int logfd = open(logf, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		pid_t pid = double_fork(strvec_argv(&argv), logfd, err);
		if (logfd >= 0)
			close(logfd);
		r = pid > 0 ? wait_pidfile(pod_dir, container, pid, err) : -1;
		strvec_clear(&argv);
	}
	if (r < 0)
		gerr_wrap(err, "starting the shim of container %s", container);
	free(self);
	free(cdir);
	free(pidf);
	free(stopf);
	free(logf);
	return r;
}

/* runc kill + delete --force of a container whose shim is gone; absent is fine. */
static int force_delete(const struct node_paths *p, const char *pod_dir, const char *container,
			struct gerr **err)
{
	char *podjson = xasprintf("%s/pod.json", pod_dir);
	json_t *pod = json_load_path(podjson, 1u << 24, NULL);
	free(podjson);
	const char *uid = json_string_value(json_object_get(pod, "uid"));
	if (!uid) {
		/* the pod directory is named after the uid */
		const char *slash = strrchr(pod_dir, '/');
		uid = slash ? slash + 1 : pod_dir;
	}
	char *cid = xasprintf("%s-%s", uid, container);
	json_decref(pod);
	const char *argv[] = { p->runtime, "--root", p->runc_root, "delete", "--force", cid, NULL };
	struct sbuf errb = SBUF_INIT;
	struct child c = { .argv = argv, .errb = &errb, .timeout_ms = 30000 };
	int st = child_run(&c, err);
	int r = 0;
	if (st > 0 && !strstr(errb.buf, "does not exist") && !strstr(errb.buf, "not exist"))
		r = gerr_set(err, GERR_IO, "runc delete %s: %.*s", cid, (int)strcspn(errb.buf, "\n"), errb.buf);
	else if (st < 0)
		r = -1;
	sb_release(&errb);
	free(cid);
	return r;
}

/* A pidfd for pid if it is still the process that started at starttime: signals
 * sent through it cannot reach a process that reused the pid. -1 if gone. */
static int pidfd_of(pid_t pid, unsigned long long starttime)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0 && !same_process(pid, starttime)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Until the process itself is gone (it removes its pid file a little before). */
static bool wait_gone(int pidfd, int timeout_ms)
{
	struct pollfd p = { pidfd, POLLIN, 0 };
	int64_t until = shim_now() + timeout_ms;
	for (;;) {
		int64_t left = until - shim_now();
		int n = poll(&p, 1, left > 0 ? (int)left : 0);
		if (n > 0)
			return true;
		if (n == 0 || errno != EINTR)
			return false;
	}
}

static void pidfd_kill(int pidfd, int sig)
{
	syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int shim_stop(const struct node_paths *p, const char *pod_dir, const char *container,
	      int timeout_ms, struct gerr **err)
{
	char *cdir = xasprintf("%s/containers/%s", pod_dir, container);
	char *stopf = xasprintf("%s/stop", cdir);
	char *pidf = pid_path(pod_dir, container);
	struct stat sb;
	if (stat(cdir, &sb) == 0) {
		int fd = open(stopf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	unsigned long long start = 0;
	pid_t pid = shim_pid2(pod_dir, container, &start);
	int pidfd = pid > 0 ? pidfd_of(pid, start) : -1;
	bool clean = true;
	if (pidfd >= 0) {
		pidfd_kill(pidfd, SIGTERM);
		if (!wait_gone(pidfd, timeout_ms > 0 ? timeout_ms : 0)) {
			pidfd_kill(pidfd, SIGKILL);
			wait_gone(pidfd, SHIM_KILL_WAIT_MS);
			clean = false;
		}
		close(pidfd);
	}
	int r = 0;
	if (pidfd < 0 || !clean) {
		/* the shim died (or had to be killed): its container may still run */
		r = force_delete(p, pod_dir, container, err);
		unlink(pidf);
	}
	if (r < 0)
		gerr_wrap(err, "stopping container %s", container);
	free(cdir);
	free(stopf);
	free(pidf);
	return r;
}
