/* ssh_mux.c: one session through a running OpenSSH ControlMaster, for ssh.c. */
/*
 * We connect to the master's socket and speak OpenSSH's multiplexing protocol
 * (PROTOCOL.mux, version 4, unchanged since OpenSSH 5.6) as `ssh` itself does when it
 * finds a master: hello, a session request with the command, then our pipes for the
 * command's stdin, stdout and stderr passed as file descriptors — and read the exit
 * status from the socket. We send no environment (ssh would send its SendEnv
 * variables, LANG and LC_* on Debian).
 *
 * Messages are a big-endian uint32 length, then that many bytes, the type first. The
 * master answers our hello with its own, then "session opened" (or a refusal: nothing
 * ran, and ssh.c starts ssh instead), then the exit status; it closes the socket when
 * the session is over. What to do with that — the fallback, the job's timing and
 * status — is ssh.c's business; this file only keeps the socket and the state.
 */
#include "runtime/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* PROTOCOL.mux */
#define MUX_VERSION 4
#define MUX_HELLO 0x00000001u
#define MUX_NEW_SESSION 0x10000002u
#define MUX_EXIT 0x80000004u
#define MUX_OPENED 0x80000006u
#define MUX_MESSAGE_MAX (256u << 10) /* of one message from a master */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* SSH wire format: big-endian uint32; a string is its length, then its bytes. */
static void set_u32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

static void put_u32(struct sbuf *sb, uint32_t v)
{
	char b[4];
	set_u32(b, v);
	sb_add(sb, b, 4);
}

static void put_str(struct sbuf *sb, const char *s)
{
	put_u32(sb, (uint32_t)strlen(s));
	sb_adds(sb, s);
}

static uint32_t get_u32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Our hello and the session request for cmd, each after its length: no tty, X11,
 * agent or subsystem, no escape character, no terminal type, no environment. */
static void mux_request(struct sbuf *m, const char *cmd)
{
	put_u32(m, 8);
	put_u32(m, MUX_HELLO);
	put_u32(m, MUX_VERSION);
	size_t at = m->len;
	put_u32(m, 0); /* the length, below */
	put_u32(m, MUX_NEW_SESSION);
	put_u32(m, 1); /* request id */
	put_str(m, ""); /* reserved */
	for (int i = 0; i < 4; i++)
		put_u32(m, 0);
	put_u32(m, 0xffffffffu);
	put_str(m, "");
	put_str(m, cmd);
	set_u32(m->buf + at, (uint32_t)(m->len - at - 4));
}

/* Pass fd over the socket with one byte of data, as ssh's mm_send_fd does. */
static int send_fd(int sock, int fd)
{
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	ssize_t n;
	while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == 1 ? 0 : -1;
}

static int send_all(int sock, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(sock, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1; /* EAGAIN too: a fresh socket takes a few hundred bytes */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Hello, request and the three fds go out at once (the master reads one message at a
 * time, then the fds, as from ssh). -1 when no master takes it (no socket, a stale
 * one, a full backlog, path too long for sun_path). */
int mux_session_start(struct mux_session *m, const char *path, const char *cmd, bool with_in,
		      int *ret_in, int *ret_out, int *ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, rc = -1;
	struct sbuf req = SBUF_INIT;
	int s = strlen(path) < sizeof(sa.sun_path) ?
		socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) : -1;
	if (s >= 0) {
		memcpy(sa.sun_path, path, strlen(path) + 1);
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			close_fd(&s);
	}
	if (s >= 0 && pipe2(out, O_CLOEXEC) == 0 && pipe2(errp, O_CLOEXEC) == 0 &&
	    (with_in ? pipe2(in, O_CLOEXEC) == 0
		     : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)) {
		mux_request(&req, cmd);
		if (send_all(s, req.buf, req.len) == 0 && send_fd(s, in[0]) == 0 &&
		    send_fd(s, out[1]) == 0 && send_fd(s, errp[1]) == 0)
			rc = 0;
	}
	close_fd(&in[0]); /* the master has its own copies now */
	close_fd(&out[1]);
	close_fd(&errp[1]);
	if (rc < 0) {
		close_fd(&s);
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&errp[0]);
	} else {
		m->fd = s;
		m->state = MUX_HELLO_WAIT;
		if (in[1] >= 0)
			fcntl(in[1], F_SETFL, O_NONBLOCK);
		fcntl(out[0], F_SETFL, O_NONBLOCK);
		fcntl(errp[0], F_SETFL, O_NONBLOCK);
		*ret_in = in[1];
		*ret_out = out[0];
		*ret_err = errp[0];
	}
	sb_release(&req);
	return rc;
}

/* One message from the master (type first): the state moves on. Before the session
 * opened anything but hello and "opened" (MUX_S_FAILURE, MUX_S_PERMISSION_DENIED,
 * another version) is a refusal; after, the exit status is kept and anything else
 * ignored (MUX_S_TTY_ALLOC_FAIL: we asked for no tty). */
static void mux_message(struct mux_session *m, const char *p, size_t n)
{
	uint32_t type = n >= 4 ? get_u32(p) : 0;
	switch (m->state) {
	case MUX_HELLO_WAIT:
		m->state = type == MUX_HELLO && n >= 8 && get_u32(p + 4) == MUX_VERSION ?
				   MUX_OPEN_WAIT : MUX_REFUSED;
		break;
	case MUX_OPEN_WAIT:
		m->state = type == MUX_OPENED && n >= 12 && get_u32(p + 4) == 1 ? MUX_RUNNING :
										   MUX_REFUSED;
		break;
	case MUX_RUNNING:
		if (type == MUX_EXIT && n >= 12 && !m->exit_seen) {
			m->exit_seen = true;
			m->exit_status = get_u32(p + 8);
		}
		break;
	default:
		break;
	}
}

/* Take whole messages apart, then see to a hang-up (the exit status and the close
 * often come in one read): after the session opened it is the end of the session,
 * before, a refusal. */
int mux_session_read(struct mux_session *m)
{
	char buf[4096];
	bool eof = false;
	for (int i = 0; i < 16; i++) { /* a master sends a few dozen bytes: bounded all the same */
		ssize_t n = read(m->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			eof = true;
			break;
		}
		sb_add(&m->in, buf, (size_t)n);
	}
	size_t off = 0;
	while (m->in.len - off >= 4 && m->state != MUX_REFUSED) {
		uint32_t len = get_u32(m->in.buf + off);
		if (len > MUX_MESSAGE_MAX) { /* not a master we know: as if it hung up */
			eof = true;
			off = m->in.len;
			break;
		}
		if (m->in.len - off - 4 < len)
			break;
		mux_message(m, m->in.buf + off + 4, len);
		off += 4 + len;
	}
	memmove(m->in.buf, m->in.buf + off, m->in.len - off);
	sb_setlen(&m->in, m->in.len - off);
	if (!eof)
		return 0;
	close_fd(&m->fd);
	if (m->state != MUX_RUNNING) {
		m->state = MUX_REFUSED;
		return 0;
	}
	return 1;
}

/* The state stays: ssh.c still asks whether the job ran through a master. */
void mux_session_close(struct mux_session *m)
{
	close_fd(&m->fd);
	sb_release(&m->in);
}
