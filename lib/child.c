/* child.c: start programs with an argv (never a shell), feed and capture them. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_OUT_MAX (16u << 20)

char *which(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? xstrdup(prog) : NULL;
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	struct sbuf sb = SBUF_INIT;
	for (const char *p = path; *p;) {
		const char *colon = strchrnul(p, ':');
		sb_reset(&sb);
		if (colon == p)
			sb_adds(&sb, ".");
		else
			sb_add(&sb, p, (size_t)(colon - p));
		sb_addf(&sb, "/%s", prog);
		if (access(sb.buf, X_OK) == 0)
			return sb_detach(&sb, NULL);
		p = *colon ? colon + 1 : colon;
	}
	sb_release(&sb);
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void child_exec(struct child *c, const char *path, int in, int out, int errfd)
{
	int devnull = open("/dev/null", O_RDWR);
	if (in >= 0 || !c->inherit_in)
		dup2(in >= 0 ? in : devnull, 0);
	dup2(out >= 0 ? out : (c->out ? devnull : 1), 1);
	dup2(errfd >= 0 ? errfd : (c->errb ? devnull : 2), 2);
	close_range(3, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
	if (c->dir && chdir(c->dir) < 0) {
		fprintf(stderr, "chdir %s: %s\n", c->dir, strerror(errno));
		_exit(127);
	}
	if (c->env)
		execve(path, (char *const *)c->argv, (char *const *)c->env);
	else
		execv(path, (char *const *)c->argv);
	fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

static void drain(int *fd, struct sbuf *sb, size_t max)
{
	char buf[8192];
	ssize_t n = read(*fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	if (sb && sb->len < max)
		sb_add(sb, buf, (size_t)n > max - sb->len ? max - sb->len : (size_t)n);
}

static void pump(struct child *c, size_t max)
{
	size_t off = 0;
	int64_t deadline = c->timeout_ms ? now_ms() + c->timeout_ms : 0;
	while (c->fd_in >= 0 || c->fd_out >= 0 || c->fd_err >= 0) {
		struct pollfd p[3] = {
			{ c->fd_in, POLLOUT, 0 }, { c->fd_out, POLLIN, 0 }, { c->fd_err, POLLIN, 0 },
		};
		int wait = -1;
		if (deadline) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				kill(c->pid, SIGKILL);
				deadline = 0;
				continue;
			}
			wait = (int)left;
		}
		int n = poll(p, 3, wait);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (p[0].revents) {
			ssize_t w = c->in_len > off ? write(c->fd_in, c->in + off, c->in_len - off) : 0;
			if (w > 0)
				off += (size_t)w;
			if ((w < 0 && errno != EINTR && errno != EAGAIN) || off >= c->in_len) {
				close(c->fd_in);
				c->fd_in = -1;
			}
		}
		if (p[1].revents)
			drain(&c->fd_out, c->out, max);
		if (p[2].revents)
			drain(&c->fd_err, c->errb, max);
	}
}

int child_run(struct child *c, struct gerr **err)
{
	char *path = which(c->argv[0]);
	if (!path)
		return gerr_set(err, GERR_IO, "%s: command not found", c->argv[0]);
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	if ((c->in && pipe2(pin, O_CLOEXEC) < 0) || (c->out && pipe2(pout, O_CLOEXEC) < 0) ||
	    (c->errb && pipe2(perr, O_CLOEXEC) < 0)) {
		free(path);
		return gerr_sys(err, "pipe");
	}
	c->pid = fork();
	if (c->pid < 0) {
		free(path);
		return gerr_sys(err, "fork");
	}
	if (c->pid == 0)
		child_exec(c, path, pin[0], pout[1], perr[1]);
	free(path);
	if (pin[0] >= 0)
		close(pin[0]);
	if (pout[1] >= 0)
		close(pout[1]);
	if (perr[1] >= 0)
		close(perr[1]);
	c->fd_in = pin[1];
	c->fd_out = pout[0];
	c->fd_err = perr[0];
	if (c->fd_in >= 0)
		fcntl(c->fd_in, F_SETFL, O_NONBLOCK);
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	pump(c, c->out_max ? c->out_max : CHILD_OUT_MAX);
	signal(SIGPIPE, old);
	int status;
	while (waitpid(c->pid, &status, 0) < 0) {
		if (errno != EINTR)
			return gerr_sys(err, "waitpid");
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
