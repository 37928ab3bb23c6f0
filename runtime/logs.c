/* logs.c: container logs — the shim's writer (CRI log format, rotation to .1), the
 * reader that prints plain text (--tail across .1 and the current file, --follow
 * across rotations until the container's shim is gone), and `node logs`. */
#include "runtime/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_DEFAULT_MAX (10u << 20)
#define LOG_READ_MAX (1ull << 30) /* a log file bigger than this is not read whole */
#define FOLLOW_POLL_MS 100
#define POD_JSON_MAX (16u << 20)

struct log_writer {
	char *path, *path1;
	int fd;
	size_t size, max;
	bool warned;
};

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int open_append(struct log_writer *w, struct gerr **err)
{
	w->fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (w->fd < 0)
		return gerr_sys(err, "open %s", w->path);
	struct stat st;
	w->size = fstat(w->fd, &st) == 0 ? (size_t)st.st_size : 0;
	return 0;
}

struct log_writer *log_open(const char *path, size_t max_bytes, struct gerr **err)
{
	struct log_writer *w = xcalloc(1, sizeof(*w));
	w->path = xstrdup(path);
	w->path1 = xasprintf("%s.1", path);
	w->max = max_bytes ? max_bytes : LOG_DEFAULT_MAX;
	if (open_append(w, err) < 0) {
		log_close(w);
		return NULL;
	}
	return w;
}

void log_close(struct log_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	free(w->path1);
	free(w);
}

static void warn_once(struct log_writer *w, const char *what)
{
	if (w->warned)
		return;
	w->warned = true;
	fprintf(stderr, "gitops: log %s: %s: %s\n", w->path, what, strerror(errno));
}

static void rotate(struct log_writer *w)
{
	if (rename(w->path, w->path1) < 0) {
		warn_once(w, "rotate");
		return;
	}
	close(w->fd);
	struct gerr *e = NULL;
	if (open_append(w, &e) < 0) {
		warn_once(w, "reopen");
		gerr_free(e);
	}
}

static void flush(struct log_writer *w, struct sbuf *batch)
{
	if (!batch->len)
		return;
	if (w->fd >= 0 && write_all(w->fd, batch->buf, batch->len) < 0)
		warn_once(w, "write");
	w->size += batch->len;
	sb_reset(batch);
}

static void timestamp(char *buf, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%09ldZ", ts.tv_nsec);
}

void log_write(struct log_writer *w, const char *stream, const char *data, size_t len)
{
	if (!w || !len)
		return;
	char ts[64];
	timestamp(ts, sizeof(ts));
	struct sbuf batch = SBUF_INIT, rec = SBUF_INIT;
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(data + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : len - off;
		sb_reset(&rec);
		sb_addf(&rec, "%s %s %c ", ts, stream, nl ? 'F' : 'P');
		sb_add(&rec, data + off, n);
		sb_addc(&rec, '\n');
		off += n + (nl ? 1 : 0);
		if (w->size + batch.len + rec.len > w->max && w->size + batch.len > 0) {
			flush(w, &batch);
			rotate(w);
		}
		sb_add(&batch, rec.buf, rec.len);
	}
	flush(w, &batch);
	sb_release(&batch);
	sb_release(&rec);
}

/* ---- reading ---- */

/* Plain text of complete CRI records in [p, p+n); returns the bytes consumed
 * (a trailing record without its newline is left for later). */
static size_t convert(const char *p, size_t n, struct sbuf *out)
{
	size_t used = 0;
	while (used < n) {
		const char *line = p + used;
		const char *nl = memchr(line, '\n', n - used);
		if (!nl)
			break;
		size_t len = (size_t)(nl - line);
		/* TIMESTAMP SP STREAM SP TAG SP TEXT */
		const char *q = line, *end = nl;
		int spaces = 0;
		while (q < end && spaces < 3)
			if (*q++ == ' ')
				spaces++;
		if (spaces == 3) {
			bool partial = q >= line + 2 && q[-2] == 'P';
			sb_add(out, q, (size_t)(end - q));
			if (!partial)
				sb_addc(out, '\n');
		} else {
			sb_add(out, line, len); /* not a CRI line: pass it through */
			sb_addc(out, '\n');
		}
		used += len + 1;
	}
	return used;
}

/* Start of the last `tail` lines of text (a final line without newline counts). */
static size_t tail_start(const struct sbuf *text, long tail)
{
	if (tail < 0)
		return 0;
	size_t i = text->len;
	if (i && text->buf[i - 1] == '\n')
		i--;
	long lines = 0;
	while (i > 0) {
		if (text->buf[i - 1] == '\n' && ++lines == tail)
			return i;
		i--;
	}
	return tail == 0 ? text->len : 0;
}

static int read_whole(const char *path, struct sbuf *sb, struct gerr **err)
{
	if (access(path, F_OK) < 0)
		return 0;
	return sb_read_file(sb, path, LOG_READ_MAX, err);
}

/* The shim that writes this log: POD/logs/NAME.log → POD, NAME. */
static bool writer_alive(const char *path)
{
	char *copy = xstrdup(path);
	char *base = strrchr(copy, '/');
	bool alive = false;
	if (base && str_has_suffix(base + 1, ".log")) {
		*base = '\0';
		char *name = xstrndup(base + 1, strlen(base + 1) - 4);
		char *logs = strrchr(copy, '/');
		if (logs && !strcmp(logs + 1, "logs")) {
			*logs = '\0';
			alive = shim_alive(copy, name);
		}
		free(name);
	}
	free(copy);
	return alive;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };
	nanosleep(&ts, NULL);
}

/* Read what fd has beyond the pending partial record and print it. */
static int follow_read(int fd, struct sbuf *pending, int out, bool *ret_got, struct gerr **err)
{
	char buf[65536];
	ssize_t n;
	*ret_got = false;
	struct sbuf text = SBUF_INIT;
	int r = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
		if (n < 0)
			continue;
		*ret_got = true;
		sb_add(pending, buf, (size_t)n);
		size_t used = convert(pending->buf, pending->len, &text);
		memmove(pending->buf, pending->buf + used, pending->len - used);
		sb_setlen(pending, pending->len - used);
		if (write_all(out, text.buf, text.len) < 0) {
			r = gerr_sys(err, "write");
			break;
		}
		sb_reset(&text);
	}
	sb_release(&text);
	return r;
}

static bool rotated(int fd, const char *path)
{
	struct stat a, b;
	if (fstat(fd, &a) < 0 || stat(path, &b) < 0)
		return false;
	return a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

static int follow(const char *path, int fd, int out, struct gerr **err)
{
	struct sbuf pending = SBUF_INIT;
	int r = 0;
	bool last = false; /* the writer is gone: one more pass over what it left */
	for (;;) {
		bool got;
		if ((r = follow_read(fd, &pending, out, &got, err)) < 0)
			break;
		if (got)
			continue;
		if (rotated(fd, path)) {
			/* the writer moved to a new file: finish the old one, then switch */
			if ((r = follow_read(fd, &pending, out, &got, err)) < 0)
				break;
			int nfd = open(path, O_RDONLY | O_CLOEXEC);
			if (nfd >= 0) {
				close(fd);
				fd = nfd;
				sb_reset(&pending);
			}
			continue;
		}
		if (last)
			break;
		if (!writer_alive(path)) {
			last = true;
			continue;
		}
		sleep_ms(FOLLOW_POLL_MS);
	}
	close(fd);
	sb_release(&pending);
	return r;
}

/* Following a log its writer has not created yet: wait for it while the writer lives. */
static int wait_created(const char *path)
{
	for (;;) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT || !writer_alive(path))
			return fd;
		sleep_ms(FOLLOW_POLL_MS);
	}
}

int log_print(const char *path, long tail, bool follow_flag, int out, struct gerr **err)
{
	char *path1 = xasprintf("%s.1", path);
	struct sbuf raw = SBUF_INIT, text = SBUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int open_errno = errno;
	int r = read_whole(path1, &raw, err);
	free(path1);
	size_t before = raw.len;
	if (r == 0 && fd >= 0)
		r = sb_read_fd(&raw, fd, LOG_READ_MAX, err);
	size_t from_fd = raw.len - before;
	if (r == 0 && fd < 0 && open_errno != ENOENT) {
		errno = open_errno;
		r = gerr_sys(err, "open %s", path);
	}
	size_t used = r == 0 ? convert(raw.buf, raw.len, &text) : 0;
	size_t start = tail_start(&text, tail);
	if (r == 0 && write_all(out, text.buf + start, text.len - start) < 0)
		r = gerr_sys(err, "write");
	if (r == 0 && follow_flag && fd < 0)
		fd = wait_created(path);
	else if (r == 0 && follow_flag && raw.len - used <= from_fd)
		lseek(fd, -(off_t)(raw.len - used), SEEK_CUR); /* a torn last record: again */
	if (r == 0 && follow_flag && fd >= 0) {
		r = follow(path, fd, out, err);
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	sb_release(&raw);
	sb_release(&text);
	return r;
}

/* ---- `node logs` ---- */

/* How well pod directory `dir` (its pod.json) matches POD: 3 its uid, 2 NAMESPACE/NAME
 * or NAME in "default", 1 NAME in another namespace, 0 not at all. */
static int match_rank(const char *dir, const json_t *pod, const char *want)
{
	if (!strcmp(dir, want))
		return 3;
	const char *ns = json_string_value(json_object_get(pod, "namespace"));
	const char *name = json_string_value(json_object_get(pod, "name"));
	const char *slash = strchr(want, '/');
	if (!ns || !name)
		return 0;
	if (slash)
		return strlen(ns) == (size_t)(slash - want) && !strncmp(ns, want, strlen(ns)) &&
			       !strcmp(name, slash + 1) ? 2 : 0;
	if (strcmp(name, want))
		return 0;
	return !strcmp(ns, "default") ? 2 : 1;
}

/* POD is a uid, NAMESPACE/NAME, or a NAME (in "default" when several namespaces
 * have it); returns the pod directory and its pod.json. */
int pod_find(const struct node_paths *p, const char *want, char **ret_dir, json_t **ret_pod,
		    struct gerr **err)
{
	DIR *d = opendir(p->pods);
	struct dirent *e;
	int best = 0, ties = 0;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *dir = xasprintf("%s/%s", p->pods, e->d_name);
		char *pj = xasprintf("%s/pod.json", dir);
		json_t *pod = json_load_path(pj, POD_JSON_MAX, NULL);
		free(pj);
		int rank = pod ? match_rank(e->d_name, pod, want) : 0;
		ties += rank && rank == best;
		if (rank > best) {
			best = rank;
			ties = 0;
			free(*ret_dir);
			json_decref(*ret_pod);
			*ret_dir = dir;
			*ret_pod = json_incref(pod);
			dir = NULL;
		}
		json_decref(pod);
		free(dir);
	}
	if (d)
		closedir(d);
	if (!best)
		return gerr_set(err, GERR_FAIL, "pods \"%s\" not found", want);
	if (best == 1 && ties)
		return gerr_set(err, GERR_FAIL, "pod name %s is in several namespaces: name one as NAMESPACE/%s",
				want, want);
	return 0;
}

static void container_names(const json_t *spec, const char *key, struct sbuf *sb)
{
	size_t i;
	const json_t *c;
	json_array_foreach(json_object_get(spec, key), i, c)
		sb_addf(sb, "%s%s", sb->len ? " " : "", json_string_value(json_object_get(c, "name")));
}

static bool has_container(const json_t *spec, const char *name)
{
	const char *keys[] = { "containers", "initContainers" };
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		size_t i;
		const json_t *c;
		json_array_foreach(json_object_get(spec, keys[k]), i, c)
			if (!strcmp(json_string_value(json_object_get(c, "name")) ?: "", name))
				return true;
	}
	return false;
}

static int pick_container(const json_t *pod, const char *want, const char **ret, struct gerr **err)
{
	const json_t *spec = json_object_get(pod, "spec");
	const char *pname = json_string_value(json_object_get(pod, "name"));
	if (want) {
		if (!has_container(spec, want))
			return gerr_set(err, GERR_FAIL, "container %s is not valid for pod %s", want, pname);
		*ret = want;
		return 0;
	}
	const json_t *cs = json_object_get(spec, "containers");
	if (json_array_size(cs) == 1) {
		*ret = json_string_value(json_object_get(json_array_get(cs, 0), "name"));
		return *ret ? 0 : gerr_set(err, GERR_FAIL, "pod %s: container without a name", pname);
	}
	struct sbuf a = SBUF_INIT, b = SBUF_INIT;
	container_names(spec, "containers", &a);
	container_names(spec, "initContainers", &b);
	gerr_set(err, GERR_USAGE, "a container name must be specified for pod %s, choose one of: [%s]%s%s%s",
		 pname, a.buf, b.len ? " or one of the init containers: [" : "", b.buf, b.len ? "]" : "");
	sb_release(&a);
	sb_release(&b);
	return -1;
}

static int not_started(const char *dir, const char *c, const char *pname, struct gerr **err)
{
	char *path = xasprintf("%s/containers/%s/state.json", dir, c);
	json_t *st = json_load_path(path, 1u << 20, NULL);
	free(path);
	const char *reason = json_string_value(json_object_get(
		json_object_get(json_object_get(st, "state"), "waiting"), "reason"));
	gerr_set(err, GERR_FAIL, "container \"%s\" in pod \"%s\" is waiting to start: %s", c, pname,
		 reason ? reason : "ContainerCreating");
	json_decref(st);
	return -1;
}

int node_logs(const struct node_opts *o, const struct log_opts *l, int out, struct gerr **err)
{
	struct node_paths p;
	if (node_paths_init(&p, o, err) < 0)
		return -1;
	char *dir = NULL;
	json_t *pod = NULL;
	const char *c = NULL;
	int r = pod_find(&p, l->pod, &dir, &pod, err);
	if (r == 0)
		r = pick_container(pod, l->container, &c, err);
	if (r == 0) {
		char *path = xasprintf("%s/logs/%s.log", dir, c);
		char *path1 = xasprintf("%s.1", path);
		if (access(path, F_OK) < 0 && access(path1, F_OK) < 0)
			r = not_started(dir, c, json_string_value(json_object_get(pod, "name")), err);
		else
			r = log_print(path, l->tail, l->follow, out, err);
		free(path);
		free(path1);
	}
	free(dir);
	json_decref(pod);
	node_paths_release(&p);
	return r;
}
