/* agnhost: the small subset of Kubernetes' agnhost test image that the NetworkPolicy
 * conformance suite (tests/cli/conformance.bats) needs, as one static binary that runs
 * in a busybox image and on the test host alike. Build: gcc -static -O2 -o agnhost agnhost.c
 *
 *   agnhost serve [--name TEXT] [--tcp PORT,...] [--udp PORT,...]
 *       Answers every TCP connection with "TEXT\n" (then closes it) and every UDP
 *       datagram with "TEXT\n". TEXT defaults to the hostname. SIGTERM exits at once
 *       (the server is pid 1 of its container, where the default action is ignored).
 *
 *   agnhost probe [--timeout MS] [--sport-base N] TARGET...
 *       TARGET is IPv4:PORT/tcp or IPv4:PORT/udp. Every target is tried at once (one
 *       poll loop, no threads) and given MS milliseconds (default 1000) to answer.
 *       TCP: connect, then read the server's line. UDP: a datagram every 250 ms until
 *       an answer comes. Prints one line per target, in the order given:
 *           TARGET ok REPLY          (the first line the server sent)
 *           TARGET fail REASON       (timeout, refused, unreachable, closed, ...)
 *       --sport-base N binds the socket of the K-th UDP target to source port N+K, so
 *       that no probe reuses the 5-tuple (and the conntrack entry) of an earlier one
 *       (a port in use by another program: an ephemeral port instead).
 *       Exit 0 when every target was tried, whatever the answers; 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS   16
#define MAX_TARGETS 1024
#define REPLY_MAX   128
#define UDP_RESEND_MS 250

static void die(const char *what)
{
	fprintf(stderr, "agnhost: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fputs("usage: agnhost serve [--name TEXT] [--tcp PORT,...] [--udp PORT,...]\n"
	      "       agnhost probe [--timeout MS] [--sport-base N] IP:PORT/tcp|udp...\n", stderr);
	exit(2);
}

/* A decimal number in [min, max], or -1. */
static long parse_num(const char *s, long min, long max)
{
	char *end;
	long v;
	if (!*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	return v;
}

static int parse_ports(const char *list, int *ports, int *n)
{
	char buf[256], *save = NULL;
	if (strlen(list) >= sizeof(buf))
		return -1;
	strcpy(buf, list);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long p = parse_num(tok, 1, 65535);
		if (p < 0 || *n >= MAX_PORTS)
			return -1;
		ports[(*n)++] = (int)p;
	}
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- serve ---------------------------------------------------------------------- */

static int listen_on(int type, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(type == SOCK_STREAM ? "bind tcp" : "bind udp");
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		die("listen");
	return fd;
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static _Noreturn void serve(int argc, char **argv)
{
	int tcp[MAX_PORTS], udp[MAX_PORTS], ntcp = 0, nudp = 0, n = 0;
	struct pollfd fds[2 * MAX_PORTS];
	char name[REPLY_MAX] = "", line[REPLY_MAX + 1];
	size_t len;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--name") && i + 1 < argc) {
			snprintf(name, sizeof(name), "%s", argv[++i]);
		} else if (!strcmp(argv[i], "--tcp") && i + 1 < argc) {
			if (parse_ports(argv[++i], tcp, &ntcp) < 0)
				usage();
		} else if (!strcmp(argv[i], "--udp") && i + 1 < argc) {
			if (parse_ports(argv[++i], udp, &nudp) < 0)
				usage();
		} else {
			usage();
		}
	}
	if (!ntcp && !nudp)
		usage();
	if (!*name && gethostname(name, sizeof(name) - 1) < 0)
		die("gethostname");
	len = (size_t)snprintf(line, sizeof(line), "%s\n", name);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < ntcp; i++)
		fds[n++] = (struct pollfd){ .fd = listen_on(SOCK_STREAM, tcp[i]), .events = POLLIN };
	for (int i = 0; i < nudp; i++)
		fds[n++] = (struct pollfd){ .fd = listen_on(SOCK_DGRAM, udp[i]), .events = POLLIN };
	for (;;) {
		if (poll(fds, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int i = 0; i < n; i++) {
			if (!(fds[i].revents & POLLIN))
				continue;
			if (i < ntcp) {
				int c = accept4(fds[i].fd, NULL, NULL, SOCK_CLOEXEC);
				if (c < 0)
					continue;
				/* a few bytes into a fresh socket buffer: the write cannot block,
				 * and a client gone already needs nothing more */
				ssize_t w = write(c, line, len);
				(void)w;
				close(c);
			} else {
				struct sockaddr_storage from;
				socklen_t flen = sizeof(from);
				char buf[512];
				if (recvfrom(fds[i].fd, buf, sizeof(buf), 0,
					     (struct sockaddr *)&from, &flen) < 0)
					continue;
				sendto(fds[i].fd, line, len, 0, (struct sockaddr *)&from, flen);
			}
		}
	}
}

/* ---- probe ---------------------------------------------------------------------- */

struct target {
	const char *text;
	struct sockaddr_in addr;
	bool udp;
	int fd;
	bool connected;          /* tcp: the connect completed */
	long long next_send;     /* udp */
	char reply[REPLY_MAX];
	size_t got;
	const char *result;      /* NULL while pending; "ok" or a failure reason */
};

static int parse_target(const char *s, struct target *t)
{
	char ip[32];
	const char *colon = strrchr(s, ':'), *slash = strrchr(s, '/');
	long port;
	char portbuf[8];
	if (!colon || !slash || slash < colon || (size_t)(colon - s) >= sizeof(ip) ||
	    (size_t)(slash - colon - 1) >= sizeof(portbuf))
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = 0;
	memcpy(portbuf, colon + 1, (size_t)(slash - colon - 1));
	portbuf[slash - colon - 1] = 0;
	port = parse_num(portbuf, 1, 65535);
	if (port < 0 || inet_pton(AF_INET, ip, &t->addr.sin_addr) != 1)
		return -1;
	if (!strcmp(slash + 1, "tcp"))
		t->udp = false;
	else if (!strcmp(slash + 1, "udp"))
		t->udp = true;
	else
		return -1;
	t->addr.sin_family = AF_INET;
	t->addr.sin_port = htons((uint16_t)port);
	t->text = s;
	t->fd = -1;
	return 0;
}

static const char *errno_reason(int e)
{
	switch (e) {
	case ECONNREFUSED: return "refused";
	case EHOSTUNREACH: return "host-unreachable";
	case ENETUNREACH: return "net-unreachable";
	case ETIMEDOUT: return "timeout";
	case EPERM: case EACCES: return "denied-locally";
	default: return "error";
	}
}

static void finish(struct target *t, const char *result)
{
	t->result = result;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static void start(struct target *t, int sport)
{
	t->fd = socket(AF_INET, (t->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		finish(t, errno_reason(errno));
		return;
	}
	if (sport > 0) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)sport) };
		if (bind(t->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EADDRINUSE) {
			finish(t, "bind-failed");
			return;
		}
		/* in use (on a shared host): an ephemeral port, as without --sport-base */
	}
	if (connect(t->fd, (struct sockaddr *)&t->addr, sizeof(t->addr)) == 0)
		t->connected = !t->udp;
	else if (errno != EINPROGRESS)
		finish(t, errno_reason(errno));
}

/* Read what is there; "ok" once a whole line (or EOF after some bytes) arrived. */
static void receive(struct target *t)
{
	for (;;) {
		ssize_t r;
		if (t->got >= sizeof(t->reply) - 1)
			break;
		r = recv(t->fd, t->reply + t->got, sizeof(t->reply) - 1 - t->got, 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			finish(t, errno_reason(errno));
			return;
		}
		if (r == 0) {
			if (!t->got) {
				finish(t, "closed");
				return;
			}
			break;
		}
		t->got += (size_t)r;
		if (t->udp || memchr(t->reply, '\n', t->got))
			break;
	}
	t->reply[t->got] = 0;
	t->reply[strcspn(t->reply, "\r\n")] = 0;
	finish(t, "ok");
}

static void udp_send(struct target *t, long long now)
{
	static const char msg[] = "probe\n";
	if (send(t->fd, msg, sizeof(msg) - 1, 0) < 0 && errno != EAGAIN) {
		finish(t, errno_reason(errno));
		return;
	}
	t->next_send = now + UDP_RESEND_MS;
}

static int probe(int argc, char **argv)
{
	static struct target tg[MAX_TARGETS];
	static struct pollfd fds[MAX_TARGETS];
	static int idx[MAX_TARGETS];
	long timeout = 1000, sport_base = 0;
	int n = 0, nudp = 0;
	long long t0, deadline;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if ((timeout = parse_num(argv[++i], 1, 60000)) < 0)
				usage();
		} else if (!strcmp(argv[i], "--sport-base") && i + 1 < argc) {
			if ((sport_base = parse_num(argv[++i], 1024, 65535 - MAX_TARGETS)) < 0)
				usage();
		} else if (n < MAX_TARGETS && parse_target(argv[i], &tg[n]) == 0) {
			n++;
		} else {
			fprintf(stderr, "agnhost: bad target '%s'\n", argv[i]);
			usage();
		}
	}
	if (!n)
		usage();
	signal(SIGPIPE, SIG_IGN);
	t0 = now_ms();
	deadline = t0 + timeout;
	for (int i = 0; i < n; i++) {
		start(&tg[i], tg[i].udp && sport_base ? (int)sport_base + nudp : 0);
		if (tg[i].udp) {
			nudp++;
			if (!tg[i].result)
				udp_send(&tg[i], t0);
		}
	}
	for (;;) {
		long long now = now_ms(), wake = deadline;
		int m = 0;
		for (int i = 0; i < n; i++) {
			struct target *t = &tg[i];
			if (t->result)
				continue;
			if (t->udp && now >= t->next_send)
				udp_send(t, now);
			if (t->result)
				continue;
			if (t->udp && t->next_send < wake)
				wake = t->next_send;
			fds[m] = (struct pollfd){ .fd = t->fd,
				.events = (short)(t->udp || t->connected ? POLLIN : POLLOUT) };
			idx[m++] = i;
		}
		if (!m || now >= deadline)
			break;
		if (poll(fds, (nfds_t)m, (int)(wake - now)) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int k = 0; k < m; k++) {
			struct target *t = &tg[idx[k]];
			if (!fds[k].revents)
				continue;
			if (!t->udp && !t->connected) {
				int e = 0;
				socklen_t el = sizeof(e);
				getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &e, &el);
				if (e)
					finish(t, errno_reason(e));
				else
					t->connected = true;
				continue;
			}
			receive(t);
		}
	}
	for (int i = 0; i < n; i++) {
		struct target *t = &tg[i];
		if (!t->result)
			finish(t, t->udp || !t->connected ? "timeout" : "no-reply");
		if (!strcmp(t->result, "ok"))
			printf("%s ok %s\n", t->text, t->reply[0] ? t->reply : "-");
		else
			printf("%s fail %s\n", t->text, t->result);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "serve"))
		serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "probe"))
		return probe(argc - 2, argv + 2);
	usage();
	return 2;
}
