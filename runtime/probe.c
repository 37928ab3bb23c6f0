/* probe.c: one probe or lifecycle handler action — exec through `runc exec` (an argv
 * straight from the manifest, never a shell), tcpSocket with a non-blocking
 * connect, httpGet with libcurl, sleep; grpc is reported as unsupported.
 *
 * libcurl is not linked: it is dlopen()ed at the first httpGet (in the shim's
 * short-lived probe helper, see shim_probe.c). Linking it cost every `gitops` start
 * its 32 libraries — about 4 ms of every `gitops node status` (docs/architecture.md,
 * "Start-up cost"). Its headers still give the types and constants. */
#include "runtime/internal.h"

#include <curl/curl.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EXEC_OUT_MAX 10240
#define PROBE_USER_AGENT "kube-probe/1.31"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void trim(struct sbuf *sb)
{
	while (sb->len && (sb->buf[sb->len - 1] == '\n' || sb->buf[sb->len - 1] == ' '))
		sb_setlen(sb, sb->len - 1);
}

/* A port number, or the name of one of the container's ports. */
static int resolve_port(const json_t *port, const json_t *container, int *ret, char **ret_msg)
{
	int64_t n = 0;
	if (json_is_integer(port))
		n = json_integer_value(port);
	else if (json_is_string(port) && parse_i64(json_string_value(port), 1, 65535, &n) < 0) {
		size_t i;
		const json_t *p;
		n = 0;
		json_array_foreach(json_object_get(container, "ports"), i, p)
			if (json_equal(json_object_get(p, "name"), port))
				n = json_integer_value(json_object_get(p, "containerPort"));
		if (!n) {
			*ret_msg = xasprintf("port %s not found in the container's ports", json_string_value(port));
			return -1;
		}
	}
	if (n < 1 || n > 65535) {
		*ret_msg = xstrdup("invalid port");
		return -1;
	}
	*ret = (int)n;
	return 0;
}

/* ---- exec ---- */

static int run_exec(const json_t *exec, const struct probe_target *t, int64_t timeout_ms,
		    char **ret_msg, struct gerr **err)
{
	const json_t *cmd = json_object_get(exec, "command");
	if (!json_is_array(cmd) || !json_array_size(cmd))
		return gerr_set(err, GERR_FAIL, "exec handler has no command");
	struct strvec argv = STRVEC_INIT;
	strvec_push(&argv, t->paths->runtime);
	strvec_push(&argv, "--root");
	strvec_push(&argv, t->paths->runc_root);
	strvec_push(&argv, "exec");
	strvec_push(&argv, t->container_id);
	size_t i;
	const json_t *a;
	json_array_foreach(cmd, i, a)
		strvec_push(&argv, json_is_string(a) ? json_string_value(a) : "");
	struct sbuf out = SBUF_INIT;
	struct child c = { .argv = strvec_argv(&argv), .out = &out, .errb = &out,
			   .out_max = EXEC_OUT_MAX, .timeout_ms = (int)timeout_ms };
	int64_t t0 = mono_ms();
	int st = child_run(&c, err);
	int r = st == 0;
	trim(&out);
	if (st < 0)
		r = -1;
	else if (st == 128 + 9 && timeout_ms && mono_ms() - t0 >= timeout_ms)
		*ret_msg = xasprintf("command timed out after %llds", (long long)(timeout_ms / 1000));
	else if (st != 0)
		*ret_msg = xasprintf("command exited with %d%s%s", st, out.len ? ": " : "", out.buf);
	sb_release(&out);
	strvec_clear(&argv);
	return r;
}

/* ---- tcpSocket ---- */

static int connect_one(const struct addrinfo *ai, int64_t timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return errno;
	int e = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		e = errno;
		if (e == EINPROGRESS) {
			struct pollfd p = { fd, POLLOUT, 0 };
			int n;
			while ((n = poll(&p, 1, (int)timeout_ms)) < 0 && errno == EINTR)
				;
			socklen_t len = sizeof(e);
			if (n == 0)
				e = ETIMEDOUT;
			else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
				e = errno;
		}
	}
	close(fd);
	return e;
}

static int run_tcp(const json_t *tcp, const struct probe_target *t, int64_t timeout_ms,
		   char **ret_msg)
{
	const char *host = json_string_value(json_object_get(tcp, "host"));
	if (!host || !*host)
		host = t->pod_ip ? t->pod_ip : "127.0.0.1";
	int port;
	if (resolve_port(json_object_get(tcp, "port"), t->container, &port, ret_msg) < 0)
		return 0;
	char *ps = xasprintf("%d", port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int g = getaddrinfo(host, ps, &hints, &res);
	free(ps);
	if (g != 0) {
		*ret_msg = xasprintf("dial tcp %s:%d: lookup %s: %s", host, port, host, gai_strerror(g));
		return 0;
	}
	int e = ECONNREFUSED;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
		if ((e = connect_one(ai, timeout_ms)) == 0)
			break;
	freeaddrinfo(res);
	if (e == 0)
		return 1;
	if (e == ETIMEDOUT) {
		*ret_msg = xasprintf("dial tcp %s:%d: i/o timeout", host, port);
	} else {
		/* Go's words, as the kubelet reports them: "connect: connection refused" */
		*ret_msg = xasprintf("dial tcp %s:%d: connect: %s", host, port, strerror(e));
		char *m = strstr(*ret_msg, "connect: ") + strlen("connect: ");
		*m = (char)tolower((unsigned char)*m);
	}
	return 0;
}

/* ---- libcurl, loaded at first use ---- */

#define LIBCURL_SONAME "libcurl.so.4"

/* The few libcurl functions we call; all set once curl_load() returned 0. */
static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *c);
	CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *c);
	const char *(*easy_strerror)(CURLcode rc);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
} curl;

/* POSIX: a dlsym() result converts to the function pointer type of the symbol */
#define CURL_SYM(h, field) (curl.field = (__typeof__(curl.field))dlsym(h, "curl_" #field))

/* Load libcurl and run curl_global_init once per process; the library stays loaded. */
static int curl_load(struct gerr **err)
{
	static bool loaded;
	if (loaded)
		return 0;
	void *h = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return gerr_set(err, GERR_IO, "httpGet needs libcurl: %s", dlerror());
	if (!CURL_SYM(h, global_init) || !CURL_SYM(h, easy_init) || !CURL_SYM(h, easy_setopt) ||
	    !CURL_SYM(h, easy_perform) || !CURL_SYM(h, easy_getinfo) ||
	    !CURL_SYM(h, easy_cleanup) || !CURL_SYM(h, easy_strerror) ||
	    !CURL_SYM(h, slist_append) || !CURL_SYM(h, slist_free_all)) {
		gerr_set(err, GERR_IO, "httpGet needs libcurl: %s", dlerror());
		dlclose(h);
		return -1;
	}
	CURLcode rc = curl.global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		return gerr_set(err, GERR_IO, "curl_global_init: %s", curl.easy_strerror(rc));
	loaded = true;
	return 0;
}

/* ---- httpGet ---- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static bool header_ok(const char *name, const char *value)
{
	if (!*name || strpbrk(name, " \t\r\n:") || strpbrk(value, "\r\n"))
		return false;
	return true;
}

static struct curl_slist *http_headers(const json_t *http, char **ret_msg)
{
	struct curl_slist *h = NULL;
	bool ua = false, accept = false;
	size_t i;
	const json_t *hd;
	json_array_foreach(json_object_get(http, "httpHeaders"), i, hd) {
		const char *n = json_string_value(json_object_get(hd, "name"));
		const char *v = json_string_value(json_object_get(hd, "value"));
		if (!n || !v || !header_ok(n, v)) {
			*ret_msg = xstrdup("invalid httpHeaders entry");
			curl.slist_free_all(h);
			return NULL;
		}
		ua |= !strcasecmp(n, "User-Agent");
		accept |= !strcasecmp(n, "Accept");
		char *line = xasprintf("%s: %s", n, v);
		h = curl.slist_append(h, line);
		free(line);
	}
	if (!ua)
		h = curl.slist_append(h, "User-Agent: " PROBE_USER_AGENT);
	if (!accept)
		h = curl.slist_append(h, "Accept: */*");
	return h;
}

static char *http_url(const json_t *http, const struct probe_target *t, char **ret_msg)
{
	const char *scheme = json_string_value(json_object_get(http, "scheme"));
	const char *host = json_string_value(json_object_get(http, "host"));
	const char *path = json_string_value(json_object_get(http, "path"));
	int port;
	if (resolve_port(json_object_get(http, "port"), t->container, &port, ret_msg) < 0)
		return NULL;
	if (!scheme || !strcasecmp(scheme, "HTTP"))
		scheme = "http";
	else if (!strcasecmp(scheme, "HTTPS"))
		scheme = "https";
	else {
		*ret_msg = xasprintf("unsupported scheme %s", scheme);
		return NULL;
	}
	if (!host || !*host)
		host = t->pod_ip ? t->pod_ip : "127.0.0.1";
	if (!path)
		path = "";
	if (strpbrk(host, "/?#@ \r\n") || strpbrk(path, " \r\n")) {
		*ret_msg = xstrdup("invalid host or path");
		return NULL;
	}
	bool v6 = strchr(host, ':') != NULL;
	return xasprintf("%s://%s%s%s:%d%s%s", scheme, v6 ? "[" : "", host, v6 ? "]" : "", port,
			 path[0] == '/' ? "" : "/", path);
}

static int run_http(const json_t *http, const struct probe_target *t, int64_t timeout_ms,
		    char **ret_msg, struct gerr **err)
{
	if (curl_load(err) < 0)
		return -1;
	char *url = http_url(http, t, ret_msg);
	struct curl_slist *hdrs = url ? http_headers(http, ret_msg) : NULL;
	if (!url || !hdrs) {
		free(url);
		return 0;
	}
	CURL *c = curl.easy_init();
	if (!c) {
		free(url);
		curl.slist_free_all(hdrs);
		return gerr_set(err, GERR_IO, "curl_easy_init failed");
	}
	/* no type checking through the pointer: longs are written as such */
	curl.easy_setopt(c, CURLOPT_URL, url);
	curl.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl.easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L); /* as the kubelet: no verification */
	curl.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	if (timeout_ms > 0)
		curl.easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	CURLcode rc = curl.easy_perform(c);
	long code = 0;
	int r = 0;
	if (rc != CURLE_OK) {
		*ret_msg = xasprintf("Get \"%s\": %s", url, rc == CURLE_OPERATION_TIMEDOUT
								  ? "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
								  : curl.easy_strerror(rc));
	} else {
		curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		r = code >= 200 && code < 400;
		if (!r)
			*ret_msg = xasprintf("HTTP probe failed with statuscode: %ld", code);
	}
	curl.easy_cleanup(c);
	curl.slist_free_all(hdrs);
	free(url);
	return r;
}

/* ---- entry points ---- */

static int64_t timeout_of(const json_t *probe)
{
	json_int_t s = json_integer_value(json_object_get(probe, "timeoutSeconds"));
	return (s >= 1 ? s : 1) * 1000;
}

int probe_run(const json_t *probe, const struct probe_target *t, char **ret_msg, struct gerr **err)
{
	*ret_msg = NULL;
	int64_t timeout = timeout_of(probe);
	const json_t *a;
	if ((a = json_object_get(probe, "exec")))
		return run_exec(a, t, timeout, ret_msg, err);
	if ((a = json_object_get(probe, "httpGet")))
		return run_http(a, t, timeout, ret_msg, err);
	if ((a = json_object_get(probe, "tcpSocket")))
		return run_tcp(a, t, timeout, ret_msg);
	if (json_object_get(probe, "grpc")) {
		*ret_msg = xstrdup("grpc probes are not supported yet");
		return 0;
	}
	return gerr_set(err, GERR_FAIL, "probe has no exec, httpGet, tcpSocket or grpc action");
}

static void sleep_s(json_int_t secs)
{
	struct timespec ts = { (time_t)(secs > 0 ? secs : 0), 0 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Lifecycle handlers have no timeout of their own: the shim bounds them (preStop by
 * the grace period) by killing the helper process that runs them. */
int hook_run(const json_t *handler, const struct probe_target *t, char **ret_msg, struct gerr **err)
{
	*ret_msg = NULL;
	const json_t *a;
	if ((a = json_object_get(handler, "exec")))
		return run_exec(a, t, 0, ret_msg, err);
	if ((a = json_object_get(handler, "httpGet")))
		return run_http(a, t, 0, ret_msg, err);
	if ((a = json_object_get(handler, "sleep"))) {
		sleep_s(json_integer_value(json_object_get(a, "seconds")));
		return 1;
	}
	if (json_object_get(handler, "tcpSocket")) {
		*ret_msg = xstrdup("tcpSocket lifecycle handlers are deprecated and not run");
		return 1;
	}
	return gerr_set(err, GERR_FAIL, "lifecycle handler has no exec, httpGet or sleep action");
}
