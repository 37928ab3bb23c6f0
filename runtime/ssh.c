/* ssh.c: run fixed commands on many nodes at once through the system OpenSSH client. */
/*
 * One poll loop, no threads. At most `parallel` jobs run at once. A job runs one of two
 * ways:
 *
 * - Through the node's running ControlMaster directly: we connect to its socket and
 *   ask it for a session with our pipes, as `ssh` itself does when it finds a master
 *   (ssh_mux.c speaks the protocol). This is what a warm `ssh NODE CMD` does, minus
 *   starting ssh (5-6 ms of CPU each, most of a warm run: docs/architecture.md,
 *   "Start-up cost"). The master was started by our own ssh, so host keys, BatchMode
 *   and the rest were settled when it connected.
 * - Otherwise (no socket yet, a stale one, a master that refuses or speaks another
 *   version) by starting `ssh`, with ControlMaster=auto and ControlPersist, which
 *   becomes the master for the next runs. The job falls back to ssh only when the
 *   master answered nothing but refusals: the session was not opened, nothing ran.
 *
 * Each job has non-blocking pipes for stdin (fed from job->in, then closed; through a
 * master, only once it opened the session), stdout and stderr, plus either a pidfd
 * that turns readable when its ssh exits or the master's socket.
 *
 * When is a job done? When its ssh exited (or the master closed our socket) and both
 * output pipes reached EOF. With ControlMaster=auto + ControlPersist the first ssh to a
 * destination forks the background master and goes on as its first mux client. OpenSSH
 * points the master's stdio at /dev/null right after that fork (control_persist_detach),
 * and the master lets go of a client's passed stdio when that session ends, so EOF comes
 * with the exit (test_ssh measures it). Should anything still hold our pipes after the
 * exit, we read what is there and stop waiting SSH_GRACE_MS later — never until
 * ControlPersist runs out.
 *
 * Options not in runtime.h:
 *   control_dir NULL   no connection sharing (ControlMaster=no, ControlPath=none)
 *   the ConnectTimeout is half the job timeout, between 1 and 10 s
 *   ControlPath is DIR/<40 hex digits of sha256(ssh_config, DEST)>: a name we know
 *   without asking ssh (OpenSSH's %C hashes the host and user it resolved)
 * ssh_run_all() returns -1 only when nothing can run (no ssh binary, unusable
 * control_dir); a job that cannot start (bad destination, no fds) has status -1 and
 * an error, and the others still run.
 *
 * A job killed at its timeout may leave its remote command running on the node.
 */
#include "runtime/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SSH_PARALLEL 16
#define SSH_TIMEOUT_MS 30000
#define SSH_OUT_MAX (64u << 20)   /* stdout kept per job */
#define SSH_ERR_MAX (64u << 10)   /* stderr kept per job (its tail) */
#define SSH_GRACE_MS 1000         /* after exit, how long to wait for EOF */
#define SSH_TICK_MS 20            /* without pidfds: how often to look for exits */
#define SSH_CHUNK (64u << 10)
#define SSH_LINE_MAX 400          /* of the error line taken from stderr */
/* ControlPath DIR/NAME: NAME is 40 hex digits, and while a master sets up its socket
 * ssh binds "PATH.<16 random characters>": 1 + 40 + 17 bytes after DIR. */
#define CONTROL_NAME_LEN (1 + 40 + 17)
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* One running job: an ssh process, or a session of a master. */
struct run {
	struct ssh_job *job; /* NULL: free slot */
	pid_t pid;
	int pidfd, fd_in, fd_out, fd_err;
	struct mux_session mux; /* state MUX_NONE: an ssh process */
	size_t in_off;
	int64_t start, deadline, exited_at;
	int wstatus;
	bool exited, lost, timed_out, truncated;
};

struct ctx {
	const struct ssh_opts *o;
	int timeout_ms;
	char *ssh;            /* absolute path of the ssh binary */
	struct strvec base;   /* ssh and its options, up to DEST */
	struct run *runs;     /* nslots slots */
	struct pollfd *pfd;   /* 4 per slot: stdin, stdout, stderr, pidfd */
	size_t nslots, active;
	struct ssh_job *jobs; /* the batch's */
	size_t *done, ndone;  /* indices of finished jobs, in the order they finished */
};

/* Job j is over: queue it for ssh_batch_next. */
static void job_done(struct ctx *c, const struct ssh_job *j)
{
	c->done[c->ndone++] = (size_t)(j - c->jobs);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static bool in_set(char c, const char *extra)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr(extra, c));
}

static bool all_in_set(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!in_set(*s, extra))
			return false;
	return true;
}

/* ---- the command line ----------------------------------------------------- */

/* Append word w quoted for a POSIX shell: bare when plainly safe, else in single
 * quotes with ' written as '\''. ('=' and '~' are not "safe": FOO=x and ~ expand.) */
static void sh_quote(struct sbuf *sb, const char *w)
{
	if (*w && all_in_set(w, "_-./:,+@%")) {
		sb_adds(sb, w);
		return;
	}
	sb_addc(sb, '\'');
	for (; *w; w++) {
		if (*w == '\'')
			sb_adds(sb, "'\\''");
		else
			sb_addc(sb, *w);
	}
	sb_addc(sb, '\'');
}

void ssh_quote_word(struct sbuf *sb, const char *w)
{
	sh_quote(sb, w);
}

/* Split the host part of a destination into host and optional port text. */
static int split_host_port(const char *h, const char **ret_host, size_t *ret_len,
			   const char **ret_port)
{
	*ret_port = NULL;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close || (close[1] && close[1] != ':'))
			return -1;
		*ret_host = h + 1;
		*ret_len = (size_t)(close - h - 1);
		if (close[1] == ':')
			*ret_port = close + 2;
		return 0;
	}
	const char *colon = strchr(h, ':');
	*ret_host = h;
	*ret_len = strlen(h);
	if (colon && !strchr(colon + 1, ':')) { /* one colon: host:port; more: IPv6 */
		*ret_len = (size_t)(colon - h);
		*ret_port = colon + 1;
	}
	return 0;
}

/* DEST ([user@]host, [user@]host:port, [user@][v6]:port, Host alias) → the host
 * argument of ssh (user@host) in *host and the port (0: the config's) in *ret_port. */
static int parse_dest(const char *dest, struct sbuf *host, int *ret_port, char **ret_error)
{
	*ret_port = 0;
	if (!dest || !*dest || *dest == '-' || !all_in_set(dest, "._-@:[]%+")) {
		*ret_error = xstrdup("invalid destination: expected [user@]host[:port] or an "
				     "ssh_config Host alias");
		return -1;
	}
	const char *at = strrchr(dest, '@');
	const char *h = at ? at + 1 : dest, *hp, *port;
	size_t hlen;
	int64_t p = 0;
	if (at == dest || split_host_port(h, &hp, &hlen, &port) < 0 || hlen == 0 ||
	    *hp == '-' || (port && parse_i64(port, 1, 65535, &p) < 0)) {
		*ret_error = xasprintf("invalid destination '%s': expected [user@]host[:port]",
				       dest);
		return -1;
	}
	if (at)
		sb_add(host, dest, (size_t)(h - dest));
	sb_add(host, hp, hlen);
	*ret_port = (int)p;
	return 0;
}

/* The remote command line: the quoted words joined by spaces, as ssh joins them. */
static int remote_command(const struct ssh_job *j, struct sbuf *cmd, char **ret_error)
{
	if (!j->remote || !j->remote[0]) {
		*ret_error = xstrdup("no remote command");
		return -1;
	}
	for (const char *const *w = j->remote; *w; w++) {
		if (w != j->remote)
			sb_addc(cmd, ' ');
		sh_quote(cmd, *w);
	}
	return 0;
}

/* The ControlPath of dest: DIR/<40 hex digits of sha256(ssh_config, dest)>. */
static char *control_path(const struct ctx *c, const char *dest)
{
	const char *cfg = c->o->ssh_config ? c->o->ssh_config : "";
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char name[41];
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	if (!h || !EVP_DigestInit_ex(h, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(h, cfg, strlen(cfg) + 1) || !EVP_DigestUpdate(h, dest, strlen(dest)) ||
	    !EVP_DigestFinal_ex(h, md, &n) || n < 20)
		abort(); /* sha256 is always there: like an allocation failure */
	EVP_MD_CTX_free(h);
	for (int i = 0; i < 20; i++) {
		name[2 * i] = hex[md[i] >> 4];
		name[2 * i + 1] = hex[md[i] & 15];
	}
	name[40] = '\0';
	return xasprintf("%s/%s", c->o->control_dir, name);
}

/* The argv of one job: base options, [-p PORT], the ControlPath, DEST, --, the
 * command line (ssh joins the words after -- with spaces: one word is the same). */
static int job_argv(struct ctx *c, const struct ssh_job *j, const char *cmd,
		    struct strvec *argv, char **ret_error)
{
	struct sbuf host = SBUF_INIT;
	int port;
	if (parse_dest(j->dest, &host, &port, ret_error) < 0)
		return -1;
	strvec_pushv(argv, strvec_argv(&c->base));
	if (port)
		strvec_pushf(argv, "-p%d", port);
	if (c->o->control_dir) {
		char *cp = control_path(c, j->dest);
		strvec_pushf(argv, "-oControlPath=%s", cp);
		free(cp);
	}
	strvec_push(argv, host.buf);
	strvec_push(argv, "--");
	strvec_push(argv, cmd);
	sb_release(&host);
	return 0;
}

/* Make control_dir (0700, ours) and check that its sockets fit in sun_path. */
static int control_dir_ready(const char *dir, struct gerr **err)
{
	struct stat st;
	if (!*dir || !all_in_set(dir, "/._-+@,:="))
		return gerr_set(err, GERR_FAIL, "control directory '%s': only letters, digits "
				"and /._-+@,:= are allowed", dir);
	if (strlen(dir) + CONTROL_NAME_LEN > SOCKET_PATH_MAX)
		return gerr_set(err, GERR_FAIL, "control directory %s is too long for socket "
				"paths (at most %zu bytes)", dir,
				SOCKET_PATH_MAX - CONTROL_NAME_LEN);
	if (mkdir_p(dir, 0700, err) < 0)
		return gerr_wrap(err, "control directory");
	if (lstat(dir, &st) < 0)
		return gerr_sys(err, "control directory %s", dir);
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return gerr_set(err, GERR_FAIL, "control directory %s is not a directory of "
				"this user", dir);
	if ((st.st_mode & 077) && chmod(dir, 0700) < 0)
		return gerr_sys(err, "chmod 0700 %s", dir);
	return 0;
}

static void base_argv(struct ctx *c)
{
	const struct ssh_opts *o = c->o;
	int connect_s = c->timeout_ms / 2000;
	strvec_push(&c->base, c->ssh);
	if (o->ssh_config) {
		strvec_push(&c->base, "-F");
		strvec_push(&c->base, o->ssh_config);
	}
	strvec_pushv(&c->base, (const char *const[]){ "-o", "BatchMode=yes", NULL });
	if (o->control_dir) {
		/* the ControlPath comes per job (job_argv) */
		strvec_pushv(&c->base, (const char *const[]){ "-o", "ControlMaster=auto", "-o",
							      "ControlPersist=60s", NULL });
	} else {
		strvec_pushv(&c->base, (const char *const[]){ "-o", "ControlMaster=no", "-o",
							      "ControlPath=none", NULL });
	}
	strvec_pushf(&c->base, "-oConnectTimeout=%d",
		     connect_s < 1 ? 1 : connect_s > 10 ? 10 : connect_s);
	strvec_pushf(&c->base, "-oStrictHostKeyChecking=%s", o->accept_new ? "accept-new" : "yes");
	strvec_pushv(&c->base, (const char *const[]){ "-o", "ServerAliveInterval=5", "-o",
						      "ServerAliveCountMax=2", "-o",
						      "LogLevel=ERROR", NULL });
}

/* ---- starting a child --------------------------------------------------------- */

/* A pollable fd for pid's exit, or -1 (kernels before 5.3: we tick instead). */
static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by itself */
#else
	(void)pid;
	return -1;
#endif
}

/* The child's side: pipes on 0/1/2 (or /dev/null on 0), every other fd closed,
 * no blocked signals, SIGPIPE back to default. These calls fail only for lack of
 * memory, which aborts here as everywhere (lib.h). */
static void spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at,
			const int in[2], const int out[2], const int errp[2])
{
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	if (posix_spawn_file_actions_init(fa) ||
	    (in[0] >= 0 ? posix_spawn_file_actions_adddup2(fa, in[0], 0)
			: posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0)) ||
	    posix_spawn_file_actions_adddup2(fa, out[1], 1) ||
	    posix_spawn_file_actions_adddup2(fa, errp[1], 2) ||
	    posix_spawn_file_actions_addclosefrom_np(fa, 3) || posix_spawnattr_init(at) ||
	    posix_spawnattr_setsigmask(at, &none) || posix_spawnattr_setsigdefault(at, &dfl) ||
	    posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
		abort();
}

/* Start argv with pipes: stdin only when with_in (else /dev/null). */
static int spawn(struct ctx *c, struct strvec *argv, bool with_in, struct run *r,
		 struct gerr **err)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, e = -1;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	if ((with_in && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(errp, O_CLOEXEC) < 0) {
		gerr_sys(err, "pipe");
	} else {
		spawn_setup(&fa, &at, in, out, errp);
		e = posix_spawn(&r->pid, c->ssh, &fa, &at, (char *const *)argv->v, environ);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
		if (e) {
			errno = e;
			gerr_sys(err, "starting %s", c->ssh);
		}
	}
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	if (e) {
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&errp[0]);
		return -1;
	}
	r->fd_in = in[1];
	r->fd_out = out[0];
	r->fd_err = errp[0];
	if (r->fd_in >= 0)
		fcntl(r->fd_in, F_SETFL, O_NONBLOCK);
	fcntl(r->fd_out, F_SETFL, O_NONBLOCK);
	fcntl(r->fd_err, F_SETFL, O_NONBLOCK);
	r->pidfd = pidfd_of(r->pid);
	return 0;
}

/* Start j's ssh in slot r (fresh, or back from a refusing master); on failure the
 * job is done at once (status -1, error) and the slot free. */
static bool run_ssh(struct ctx *c, struct run *r, const char *cmd)
{
	struct ssh_job *j = r->job;
	struct strvec argv = STRVEC_INIT;
	struct gerr *e = NULL;
	bool ok = false;
	if (job_argv(c, j, cmd, &argv, &j->error) == 0) {
		ok = spawn(c, &argv, j->in != NULL, r, &e) == 0;
		if (!ok)
			j->error = xstrdup(e->msg);
	}
	gerr_free(e);
	strvec_clear(&argv);
	if (!ok) {
		mux_session_close(&r->mux);
		r->job = NULL;
	}
	return ok;
}

/* Start j's command in slot r through the master of its destination (ssh_mux.c).
 * false when no master takes it: nothing reached the node, ssh is next. */
static bool run_master(struct ctx *c, struct run *r, const char *cmd)
{
	char *path = control_path(c, r->job->dest);
	bool ok = mux_session_start(&r->mux, path, cmd, r->job->in != NULL, &r->fd_in,
				    &r->fd_out, &r->fd_err) == 0;
	if (ok)
		r->job->via_master = true;
	free(path);
	return ok;
}

/* Start job j in slot r: through its master when one listens, else with ssh. On
 * failure the job is done at once (status -1, error). */
static bool run_start(struct ctx *c, struct run *r, struct ssh_job *j)
{
	struct sbuf cmd = SBUF_INIT, host = SBUF_INIT;
	int port;
	bool ok = false;
	*r = (struct run){ .job = j, .pid = -1, .pidfd = -1, .fd_in = -1, .fd_out = -1,
			   .fd_err = -1, .mux = MUX_SESSION_INIT };
	if (remote_command(j, &cmd, &j->error) == 0 &&
	    parse_dest(j->dest, &host, &port, &j->error) == 0) {
		r->start = now_ms();
		r->deadline = r->start + c->timeout_ms;
		ok = (c->o->control_dir && run_master(c, r, cmd.buf)) || run_ssh(c, r, cmd.buf);
	} else {
		r->job = NULL;
	}
	sb_release(&cmd);
	sb_release(&host);
	return ok;
}

/* The master refused the session (nothing ran): start ssh for the job instead. */
static void run_refused(struct ctx *c, struct run *r)
{
	struct sbuf cmd = SBUF_INIT;
	char *error = NULL;
	mux_session_close(&r->mux);
	close_fd(&r->fd_in);
	close_fd(&r->fd_out);
	close_fd(&r->fd_err);
	r->mux.state = MUX_NONE;
	sb_reset(&r->job->out); /* nothing ran: nothing came */
	sb_reset(&r->job->err);
	r->job->via_master = false;
	remote_command(r->job, &cmd, &error); /* it worked in run_start */
	struct ssh_job *j = r->job;
	if (!run_ssh(c, r, cmd.buf)) {
		c->active--;
		job_done(c, j);
	}
	free(error);
	sb_release(&cmd);
}

/* ---- pumping ----------------------------------------------------------------- */

/* Keep the last max bytes of what was read (the useful end of stderr). */
static void add_tail(struct sbuf *sb, const char *p, size_t n, size_t max)
{
	if (n >= max) {
		sb_reset(sb);
		sb_add(sb, p + n - max, max);
		return;
	}
	if (sb->len + n > max) {
		size_t drop = sb->len + n - max;
		memmove(sb->buf, sb->buf + drop, sb->len - drop);
		sb_setlen(sb, sb->len - drop);
	}
	sb_add(sb, p, n);
}

/* Read a burst from fd (64 KiB, fair to the others; after the exit up to 1 MiB,
 * more than a pipe holds), stopping at EAGAIN or EOF. */
static void run_read(struct run *r, int *fd, bool is_err, bool after_exit)
{
	char buf[16384];
	struct sbuf *sb = is_err ? &r->job->err : &r->job->out;
	for (int i = 0; *fd >= 0 && i < (after_exit ? 64 : 4); i++) {
		ssize_t n = read(*fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close_fd(fd);
			return;
		}
		if (is_err) {
			add_tail(sb, buf, (size_t)n, SSH_ERR_MAX);
		} else {
			size_t room = SSH_OUT_MAX - sb->len;
			if ((size_t)n > room)
				r->truncated = true;
			sb_add(sb, buf, (size_t)n > room ? room : (size_t)n);
		}
	}
}

static void run_write(struct run *r)
{
	const struct ssh_job *j = r->job;
	while (r->in_off < j->in_len) {
		size_t left = j->in_len - r->in_off;
		ssize_t w = write(r->fd_in, j->in + r->in_off, left > SSH_CHUNK ? SSH_CHUNK : left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0)
			break; /* EPIPE: ssh reads no more; it will tell why */
		r->in_off += (size_t)w;
	}
	close_fd(&r->fd_in);
}

/* After the exit: no more stdin; take in what is left in the pipes. */
static void run_after_exit(struct run *r)
{
	close_fd(&r->fd_in);
	run_read(r, &r->fd_out, false, true);
	run_read(r, &r->fd_err, true, true);
}

/* Reap r if it exited; then take in what it left in the pipes. */
static void run_reap(struct run *r)
{
	int st = 0;
	pid_t p = waitpid(r->pid, &st, WNOHANG);
	if (p == 0 || (p < 0 && errno == EINTR))
		return;
	r->exited = true;
	r->lost = p < 0; /* ECHILD: reaped by someone else (SIGCHLD ignored) */
	r->wstatus = st;
	r->exited_at = now_ms();
	close_fd(&r->pidfd);
	run_after_exit(r);
}

static void run_kill(struct run *r)
{
	if (r->mux.state != MUX_NONE) { /* hanging up ends the session */
		mux_session_close(&r->mux);
		r->exited = true;
		r->exited_at = now_ms();
	} else {
		kill(r->pid, SIGKILL);
	}
	r->timed_out = true;
	close_fd(&r->fd_in);
	close_fd(&r->fd_out);
	close_fd(&r->fd_err);
}

/* The last non-blank line of stderr: no CR, no full stop, control bytes as '?'. */
static char *last_line(const struct sbuf *sb)
{
	size_t end = sb->len, start;
	while (end > 0 && (unsigned char)sb->buf[end - 1] <= ' ')
		end--;
	if (end > 0 && sb->buf[end - 1] == '.')
		end--;
	for (start = end; start > 0 && sb->buf[start - 1] != '\n';)
		start--;
	while (start < end && (unsigned char)sb->buf[start] <= ' ')
		start++;
	if (start == end)
		return NULL;
	if (end - start > SSH_LINE_MAX)
		start = end - SSH_LINE_MAX;
	char *line = xstrndup(sb->buf + start, end - start);
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	return line;
}

/* Whether line l (len bytes) is ssh's note that it did without multiplexing. */
static bool mux_noise(const char *l, size_t len, const char *head)
{
	static const char tail[] = " already exists, disabling multiplexing",
			  refused[] = "mux_client_request_session: session request failed: ";
	size_t tl = strlen(tail);
	if (len > strlen(refused) && str_has_prefix(l, refused))
		return true;
	return len > tl && str_has_prefix(l, head) && memcmp(l + len - tl, tail, tl) == 0;
}

/* Remove the lines ssh prints when it could not share a connection and opened its
 * own instead: another cold ssh became the master first ("ControlSocket DIR/... already
 * exists, disabling multiplexing"), or the master's sshd refused one more session
 * (MaxSessions, "mux_client_request_session: session request failed: ..."). The
 * command still runs; these lines are not the node's words. */
static void drop_mux_noise(struct sbuf *err, const char *control_dir)
{
	char *head = control_dir ? xasprintf("ControlSocket %s/", control_dir) : NULL;
	size_t w = 0;
	for (size_t r = 0; head && r < err->len;) {
		const char *l = err->buf + r;
		size_t n = strcspn(l, "\n"), len = n;
		if (len && l[len - 1] == '\r')
			len--;
		bool drop = mux_noise(l, len, head);
		n += r + n < err->len; /* the newline */
		if (!drop) {
			memmove(err->buf + w, l, n);
			w += n;
		}
		r += n;
	}
	if (head)
		sb_setlen(err, w);
	free(head);
}

static char *duration(int ms)
{
	return ms % 1000 ? xasprintf("%dms", ms) : xasprintf("%ds", ms / 1000);
}

/* Fill in the job from how its ssh ended. */
static void run_result(struct ctx *c, struct run *r)
{
	struct ssh_job *j = r->job;
	char *line, *d;
	drop_mux_noise(&j->err, c->o->control_dir);
	line = last_line(&j->err);
	j->elapsed_ms = r->exited_at - r->start;
	if (r->timed_out) {
		d = duration(c->timeout_ms);
		j->error = xasprintf("timed out after %s", d);
		free(d);
	} else if (r->lost) {
		j->error = xstrdup("lost track of the ssh process (SIGCHLD ignored?)");
	} else if (r->mux.state == MUX_NONE && WIFSIGNALED(r->wstatus)) {
		j->error = xasprintf("ssh was killed by signal %d", WTERMSIG(r->wstatus));
	} else if (r->mux.state != MUX_NONE && !r->mux.exit_seen) { /* as ssh: 255 */
		j->status = 255;
		j->error = line ? xstrdup(line) : xstrdup("the session ended without an exit status "
							  "(connection to the node lost?)");
	} else if ((j->status = r->mux.state != MUX_NONE ?
					(int)(r->mux.exit_status > 255 ? 255 : r->mux.exit_status) :
					WEXITSTATUS(r->wstatus)) == 255) {
		j->error = line ? xstrdup(line) : xstrdup("ssh failed with exit status 255");
	} else if (j->status != 0) {
		j->error = line ? xasprintf("exit status %d: %s", j->status, line)
				: xasprintf("exit status %d", j->status);
	}
	if (r->truncated && !j->error)
		j->error = xasprintf("output larger than %u MiB, cut there", SSH_OUT_MAX >> 20);
	free(line);
}

static void run_finish(struct ctx *c, struct run *r)
{
	close_fd(&r->fd_in);
	close_fd(&r->fd_out);
	close_fd(&r->fd_err);
	close_fd(&r->pidfd);
	mux_session_close(&r->mux);
	run_result(c, r);
	job_done(c, r->job);
	r->job = NULL;
	c->active--;
}

/* What the clock says about r: kill at its deadline, finish after exit + EOF/grace. */
static void run_tick(struct ctx *c, struct run *r, int64_t now)
{
	if (!r->exited && r->pidfd < 0 && r->mux.state == MUX_NONE)
		run_reap(r);
	if (!r->exited && !r->timed_out && now >= r->deadline)
		run_kill(r);
	if (r->exited && ((r->fd_out < 0 && r->fd_err < 0) || now >= r->exited_at + SSH_GRACE_MS))
		run_finish(c, r);
}

/* Milliseconds until the next thing the clock must do, for poll(). */
static int next_wait(const struct ctx *c, int64_t now)
{
	int64_t next = INT64_MAX;
	for (size_t i = 0; i < c->nslots; i++) {
		const struct run *r = &c->runs[i];
		int64_t t = INT64_MAX;
		if (!r->job)
			continue;
		if (r->exited)
			t = r->exited_at + SSH_GRACE_MS;
		else if (!r->timed_out)
			t = r->deadline;
		if (!r->exited && r->pidfd < 0 && r->mux.state == MUX_NONE && now + SSH_TICK_MS < t)
			t = now + SSH_TICK_MS;
		if (t < next)
			next = t;
	}
	if (next == INT64_MAX)
		return -1;
	return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

static void fill_pollfds(struct ctx *c)
{
	for (size_t i = 0; i < c->nslots; i++) {
		const struct run *r = &c->runs[i];
		struct pollfd *p = &c->pfd[4 * i];
		bool on = r->job != NULL;
		/* through a master, stdin waits until the session is open */
		bool feed = on && (r->mux.state == MUX_NONE || r->mux.state == MUX_RUNNING);
		p[0] = (struct pollfd){ feed ? r->fd_in : -1, POLLOUT, 0 };
		p[1] = (struct pollfd){ on ? r->fd_out : -1, POLLIN, 0 };
		p[2] = (struct pollfd){ on ? r->fd_err : -1, POLLIN, 0 };
		p[3] = (struct pollfd){ !on ? -1 : r->mux.state != MUX_NONE ? r->mux.fd : r->pidfd,
					POLLIN, 0 };
	}
}

/* One round: wait for any fd or deadline, then serve every slot. */
static int pump(struct ctx *c, struct gerr **err)
{
	fill_pollfds(c);
	int n = poll(c->pfd, 4 * c->nslots, next_wait(c, now_ms()));
	if (n < 0 && errno != EINTR)
		return gerr_sys(err, "poll");
	for (size_t i = 0; n > 0 && i < c->nslots; i++) {
		struct run *r = &c->runs[i];
		struct pollfd *p = &c->pfd[4 * i];
		if (!r->job)
			continue;
		if (p[0].revents && r->fd_in >= 0)
			run_write(r);
		if (p[1].revents && r->fd_out >= 0)
			run_read(r, &r->fd_out, false, false);
		if (p[2].revents && r->fd_err >= 0)
			run_read(r, &r->fd_err, true, false);
		if (p[3].revents && r->mux.state != MUX_NONE && r->mux.fd >= 0) {
			if (mux_session_read(&r->mux)) { /* the master hung up: over */
				r->exited = true;
				r->exited_at = now_ms();
			}
			if (r->mux.state == MUX_REFUSED)
				run_refused(c, r);
			else if (r->exited) /* take in what the session left in the pipes */
				run_after_exit(r);
		} else if (p[3].revents && r->pidfd >= 0) {
			run_reap(r);
		}
	}
	int64_t now = now_ms();
	for (size_t i = 0; i < c->nslots; i++)
		if (c->runs[i].job)
			run_tick(c, &c->runs[i], now);
	return 0;
}

/* ---- the entry points ---------------------------------------------------------- */

static void job_reset(struct ssh_job *j)
{
	if (j->out.alloc)
		sb_reset(&j->out);
	else
		sb_init(&j->out);
	if (j->err.alloc)
		sb_reset(&j->err);
	else
		sb_init(&j->err);
	free(j->error);
	j->error = NULL;
	j->status = -1;
	j->elapsed_ms = 0;
	j->via_master = false;
}

/* How many ssh children fit: the option, capped by jobs and by open-file limits
 * (each running job holds up to 4 fds here). */
static size_t slots_for(const struct ssh_opts *o, size_t n)
{
	size_t want = o->parallel > 0 ? (size_t)o->parallel : SSH_PARALLEL;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		size_t fit = rl.rlim_cur > 64 ? (size_t)(rl.rlim_cur - 64) / 4 : 1;
		if (want > fit)
			want = fit;
	}
	return want > n ? n : want < 1 ? 1 : want;
}

static int ctx_init(struct ctx *c, const struct ssh_opts *o, struct ssh_job *jobs, size_t n,
		    struct gerr **err)
{
	const char *prog = o->ssh ? o->ssh : "ssh";
	*c = (struct ctx){ .o = o, .base = STRVEC_INIT, .jobs = jobs };
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : SSH_TIMEOUT_MS;
	c->ssh = which(prog);
	if (!c->ssh)
		return gerr_set(err, GERR_IO, "%s: command not found", prog);
	if (o->control_dir && control_dir_ready(o->control_dir, err) < 0)
		return -1;
	base_argv(c);
	c->nslots = slots_for(o, n);
	c->runs = xcalloc(c->nslots, sizeof(*c->runs));
	c->pfd = xcalloc(c->nslots, 4 * sizeof(*c->pfd));
	c->done = xcalloc(n, sizeof(*c->done));
	return 0;
}

static void ctx_release(struct ctx *c)
{
	free(c->ssh);
	strvec_clear(&c->base);
	free(c->runs);
	free(c->pfd);
	free(c->done);
}

/* Start queued jobs while slots are free; returns the index of the next queued job. */
static size_t fill_slots(struct ctx *c, struct ssh_job *jobs, size_t next, size_t n)
{
	for (size_t i = 0; i < c->nslots && next < n; i++) {
		if (c->runs[i].job)
			continue;
		if (run_start(c, &c->runs[i], &jobs[next]))
			c->active++;
		else
			job_done(c, &jobs[next]);
		next++;
	}
	return next;
}

/* Stop what runs (kill and reap an ssh, hang up on a master) and mark what waits:
 * after poll failed, or when the caller stops waiting. */
static void abandon(struct ctx *c, struct ssh_job *jobs, size_t next, size_t n, const char *why)
{
	for (size_t i = 0; i < c->nslots; i++) {
		struct run *r = &c->runs[i];
		struct ssh_job *j = r->job;
		if (!j)
			continue;
		if (!r->exited && r->mux.state == MUX_NONE) {
			kill(r->pid, SIGKILL);
			while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		r->exited = true;
		r->exited_at = now_ms();
		run_finish(c, r);
		j->status = -1;
		free(j->error);
		j->error = xasprintf("stopped: %s", why);
	}
	for (; next < n; next++) {
		jobs[next].error = xasprintf("not run: %s", why);
		job_done(c, &jobs[next]);
	}
}

struct ssh_batch {
	struct ssh_opts o;    /* a copy (the strings are the caller's) */
	struct ctx c;
	struct ssh_job *jobs;
	size_t n, next;       /* jobs; the next to start */
	size_t taken;         /* finished jobs handed out */
};

int ssh_batch_start(const struct ssh_opts *o, struct ssh_job *jobs, size_t n,
		    struct ssh_batch **ret, struct gerr **err)
{
	struct ssh_batch *b = xcalloc(1, sizeof(*b));
	b->o = o ? *o : (struct ssh_opts){ 0 };
	b->jobs = jobs;
	b->n = n;
	for (size_t i = 0; i < n; i++)
		job_reset(&jobs[i]);
	if (n && ctx_init(&b->c, &b->o, jobs, n, err) < 0) {
		ctx_release(&b->c);
		free(b);
		return -1;
	}
	if (n)
		b->next = fill_slots(&b->c, jobs, 0, n);
	*ret = b;
	return 0;
}

int ssh_batch_next(struct ssh_batch *b, size_t *ret_index, struct gerr **err)
{
	struct ctx *c = &b->c;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	int rc = 0;
	if (b->taken == b->n)
		return 0;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, &old); /* a closed stdin pipe is EPIPE, not death */
	while (rc == 0 && c->ndone == b->taken && (c->active || b->next < b->n)) {
		b->next = fill_slots(c, b->jobs, b->next, b->n);
		if (c->ndone == b->taken && c->active)
			rc = pump(c, err);
	}
	if (rc < 0)
		abandon(c, b->jobs, b->next, b->n, "waiting for ssh failed");
	sigaction(SIGPIPE, &old, NULL);
	if (rc < 0) {
		b->next = b->n;
		return -1;
	}
	*ret_index = c->done[b->taken++];
	return 1;
}

void ssh_batch_free(struct ssh_batch *b)
{
	if (!b)
		return;
	if (b->n) {
		abandon(&b->c, b->jobs, b->next, b->n, "no longer needed");
		ctx_release(&b->c);
	}
	free(b);
}

int ssh_run_all(const struct ssh_opts *o, struct ssh_job *jobs, size_t n, struct gerr **err)
{
	struct ssh_batch *b;
	size_t k;
	int rc;
	if (ssh_batch_start(o, jobs, n, &b, err) < 0)
		return -1;
	while ((rc = ssh_batch_next(b, &k, err)) > 0)
		;
	ssh_batch_free(b);
	return rc;
}

void ssh_job_release(struct ssh_job *j)
{
	if (!j)
		return;
	sb_release(&j->out);
	sb_release(&j->err);
	free(j->error);
	j->error = NULL;
}
