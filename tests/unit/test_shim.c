/* test_shim.c: the container shim (runtime/shim*.c, probe.c) with real parts — runc,
 * skopeo and umoci pulling busybox from the test bed's registry, a network namespace
 * per pod — and real processes: shim_start double-forks this very binary, whose
 * main() runs shim_main when called as `TEST shim --state-dir ...` (git's test-tool
 * idea), so the shim runs under the same sanitizers as the test.
 *
 * Needs root, runc, skopeo, umoci and the test bed (tests/testbed/up); skipped
 * otherwise. Short back-offs and probe periods through GITOPS_BACKOFF_BASE_MS and
 * GITOPS_PROBE_SECOND_MS keep each case to a few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/shim.h"

#define WAIT_MS 30000

static struct {
	char *tb;       /* test bed directory */
	char *registry; /* host:port */
	char *image;    /* REGISTRY/busybox:test */
	char *state, *run;
	struct node_paths paths;
	int pods;
	bool had_gitops_cgroup;
	struct tpod *live[8]; /* pods a failed test left: its teardown removes them */
} G;

struct tpod {
	char *uid, *dir, *ns, *nspath;
	json_t *spec;
	int pidfds[8]; /* of the shims: their exit (and sanitizer report) is awaited */
	size_t npidfds;
};

/* ---- helpers ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int run(const char *const *argv, struct sbuf *out)
{
	struct sbuf errb = SBUF_INIT;
	struct child c = { .argv = argv, .out = out, .errb = &errb, .timeout_ms = 60000 };
	int st = child_run(&c, NULL);
	if (st != 0)
		fprintf(stderr, "# %s %s: exit %d: %s\n", argv[0], argv[1] ? argv[1] : "", st, errb.buf);
	sb_release(&errb);
	return st;
}

static char *slurp(const char *path)
{
	struct sbuf sb = SBUF_INIT;
	if (sb_read_file(&sb, path, 1 << 24, NULL) < 0) {
		sb_release(&sb);
		return xstrdup("");
	}
	return sb_detach(&sb, NULL);
}

static char *env_value(const char *env, const char *key)
{
	char *pat = xasprintf("\n%s=", key);
	const char *p = strstr(env, pat);
	char *v = p ? xstrndup(p + strlen(pat), strcspn(p + strlen(pat), "\n")) : NULL;
	free(pat);
	return v;
}

static bool have(const char *prog)
{
	char *p = which(prog);
	free(p);
	return p != NULL;
}

/* rmdir /sys/fs/cgroup/ * /gitops[/sub] (empty ones only, as rmdir does) */
static void rm_cgroups(const char *sub)
{
	DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char *p = xasprintf("/sys/fs/cgroup/%s/gitops%s%s", e->d_name, *sub ? "/" : "", sub);
		rmdir(p);
		free(p);
	}
	if (d)
		closedir(d);
}

/* ---- the test bed ---- */

static int group_setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	G.tb = xasprintf("%s/test_shim_tb.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	G.state = xasprintf("%s/test_shim.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(G.tb) || !mkdtemp(G.state))
		return -1;
	G.run = xasprintf("%s/run", G.state);
	const char *up[] = { "tests/testbed/up", "1", "--dir", G.tb, NULL };
	struct sbuf out = SBUF_INIT;
	if (run(up, &out) != 0)
		return -1;
	sb_release(&out);
	char *envf = xasprintf("%s/env", G.tb);
	char *env = slurp(envf);
	free(envf);
	G.registry = env_value(env, "REGISTRY");
	free(env);
	if (!G.registry)
		return -1;
	G.image = xasprintf("%s/busybox:test", G.registry);
	setenv("GITOPS_INSECURE_REGISTRIES", G.registry, 1);
	G.had_gitops_cgroup = access("/sys/fs/cgroup/memory/gitops", F_OK) == 0;
	struct node_opts o = { .state_dir = G.state, .run_dir = G.run };
	return node_paths_init(&G.paths, &o, NULL);
}

static int group_teardown(void **state)
{
	(void)state;
	const char *down[] = { "tests/testbed/down", "--dir", G.tb, NULL };
	run(down, NULL);
	const char *rm[] = { "rm", "-rf", G.tb, G.state, NULL };
	run(rm, NULL);
	if (!G.had_gitops_cgroup)
		rm_cgroups(""); /* only when empty: another user's stays */
	node_paths_release(&G.paths);
	free(G.tb);
	free(G.registry);
	free(G.image);
	free(G.state);
	free(G.run);
	return 0;
}

/* ---- pods ---- */

static void write_text(const char *path, const char *text)
{
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
}

static void write_spec(const struct tpod *t, const json_t *c, bool init, size_t index)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	char *cdir = xasprintf("%s/containers/%s", t->dir, name);
	assert_int_equal(mkdir_p(cdir, 0755, NULL), 0);
	json_t *spec = json_pack("{s:O, s:s, s:b, s:i, s:{}}", "container", c, "hash", "test", "init", init,
				 "index", (int)index, "env");
	char *path = xasprintf("%s/spec.json", cdir);
	assert_int_equal(json_save_atomic(path, spec, 0644, NULL), 0);
	json_decref(spec);
	free(path);
	free(cdir);
}

static void each_container(const struct tpod *t, void (*fn)(const struct tpod *, const json_t *, bool, size_t))
{
	const char *lists[] = { "initContainers", "containers" };
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(t->spec, lists[l]), i, c)
			fn(t, c, l == 0, i);
	}
}

static void start_one(const struct tpod *t, const json_t *c, bool init, size_t index)
{
	(void)init;
	(void)index;
	struct gerr *e = NULL;
	const char *name = json_string_value(json_object_get(c, "name"));
	int r = shim_start(&G.paths, t->dir, name, &e);
	if (r < 0)
		fail_msg("shim_start: %s", e->msg);
	char *path = xasprintf("%s/containers/%s/shim.pid", t->dir, name);
	char *text = slurp(path);
	int64_t pid = 0;
	text[strcspn(text, " ")] = '\0';
	struct tpod *w = (struct tpod *)t;
	if (parse_i64(text, 1, INT32_MAX, &pid) == 0 && w->npidfds < ARRAY_SIZE(w->pidfds))
		w->pidfds[w->npidfds++] = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	free(text);
	free(path);
}

/* A pod from PodSpec JSON (IMAGE is replaced by the test image), with its own
 * network namespace (lo up, pod IP 127.0.0.1), its etc files and its shims. */
static struct tpod *pod_new(const char *spec_json)
{
	struct tpod *t = xcalloc(1, sizeof(*t));
	t->uid = xasprintf("%08x%08x", (unsigned)getpid(), (unsigned)++G.pods);
	t->dir = xasprintf("%s/pods/%s", G.state, t->uid);
	t->ns = xasprintf("gtshim-%s", t->uid + 8);
	t->nspath = xasprintf("/run/netns/%s", t->ns);
	struct sbuf js = SBUF_INIT;
	for (const char *p = spec_json; *p;) {
		const char *hit = strstr(p, "IMAGE");
		size_t n = hit ? (size_t)(hit - p) : strlen(p);
		sb_add(&js, p, n);
		if (hit)
			sb_adds(&js, G.image);
		p += n + (hit ? 5 : 0);
	}
	json_error_t je;
	t->spec = json_loads(js.buf, 0, &je);
	if (!t->spec)
		fail_msg("spec: %s: %s", je.text, js.buf);
	sb_release(&js);
	const char *add[] = { "ip", "netns", "add", t->ns, NULL };
	const char *lo[] = { "ip", "-n", t->ns, "link", "set", "lo", "up", NULL };
	assert_int_equal(run(add, NULL), 0);
	assert_int_equal(run(lo, NULL), 0);
	char *p = xasprintf("%s/etc", t->dir);
	assert_int_equal(mkdir_p(p, 0755, NULL), 0);
	free(p);
	const char *etc[][2] = { { "hosts", "127.0.0.1 localhost\n" }, { "resolv.conf", "nameserver 127.0.0.1\n" },
				 { "hostname", "testpod\n" } };
	for (size_t i = 0; i < ARRAY_SIZE(etc); i++) {
		p = xasprintf("%s/etc/%s", t->dir, etc[i][0]);
		write_text(p, etc[i][1]);
		free(p);
	}
	/* credentials for another registry: merged into skopeo's auth file, unused */
	json_t *pod = json_pack("{s:s, s:s, s:s, s:O, s:s, s:s, s:s, s:s, s:{}, s:{s:s}}", "uid", t->uid,
				"namespace", "default", "name", t->uid, "spec", t->spec, "podIP", "127.0.0.1",
				"netns", t->nspath, "node", "test", "podDir", t->dir, "labels",
				"imagePullSecrets", "cred", "{\"auths\":{\"registry.invalid\":{\"auth\":\"dTpw\"}}}");
	p = xasprintf("%s/pod.json", t->dir);
	assert_int_equal(json_save_atomic(p, pod, 0644, NULL), 0);
	free(p);
	json_decref(pod);
	for (size_t i = 0; i < ARRAY_SIZE(G.live); i++)
		if (!G.live[i]) {
			G.live[i] = t;
			break;
		}
	each_container(t, write_spec);
	each_container(t, start_one);
	return t;
}

static bool sanitizer_clean(const char *dir, const char *name)
{
	char *path = xasprintf("%s/containers/%s/shim.log", dir, name);
	char *log = slurp(path);
	bool ok = !strstr(log, "Sanitizer") && !strstr(log, "runtime error");
	if (!ok)
		fprintf(stderr, "# %s:\n%s\n", path, log);
	free(log);
	free(path);
	return ok;
}

static void stop_one(const struct tpod *t, const json_t *c, bool init, size_t index)
{
	(void)init;
	(void)index;
	const char *name = json_string_value(json_object_get(c, "name"));
	struct gerr *e = NULL;
	if (shim_stop(&G.paths, t->dir, name, 10000, &e) < 0) {
		fprintf(stderr, "# shim_stop %s: %s\n", name, e->msg);
		gerr_free(e);
	}
}

static bool pod_release(struct tpod *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(G.live); i++)
		if (G.live[i] == t)
			G.live[i] = NULL;
	each_container(t, stop_one);
	for (size_t i = 0; i < t->npidfds; i++) {
		struct pollfd p = { t->pidfds[i], POLLIN, 0 };
		if (p.fd >= 0) {
			poll(&p, 1, 10000);
			close(p.fd);
		}
	}
	bool clean = true;
	size_t i;
	json_t *c;
	const char *lists[] = { "initContainers", "containers" };
	for (int l = 0; l < 2; l++)
		json_array_foreach(json_object_get(t->spec, lists[l]), i, c)
			clean &= sanitizer_clean(t->dir, json_string_value(json_object_get(c, "name")));
	const char *del[] = { "ip", "netns", "del", t->ns, NULL };
	run(del, NULL);
	rm_cgroups(t->uid);
	json_decref(t->spec);
	free(t->uid);
	free(t->dir);
	free(t->ns);
	free(t->nspath);
	free(t);
	return clean;
}

static void pod_free(struct tpod *t)
{
	assert_true(pod_release(t));
}

static int test_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(G.live); i++)
		if (G.live[i])
			pod_release(G.live[i]);
	return 0;
}

/* ---- observing ---- */

static json_t *state_of(const struct tpod *t, const char *c)
{
	char *path = xasprintf("%s/containers/%s/state.json", t->dir, c);
	json_t *st = json_load_path(path, 1 << 20, NULL);
	free(path);
	return st;
}

static const char *kind(const json_t *st)
{
	const json_t *s = json_object_get(st, "state");
	return json_object_get(s, "running") ? "running" : json_object_get(s, "terminated") ? "terminated"
											    : "waiting";
}

static const char *reason(const json_t *st)
{
	const json_t *s = json_object_get(st, "state");
	const json_t *x = json_object_get(s, kind(st));
	return json_string_value(json_object_get(x, "reason")) ?: "";
}

static json_int_t exit_code(const json_t *st)
{
	return json_integer_value(json_object_get(json_object_get(json_object_get(st, "state"), "terminated"),
						  "exitCode"));
}

typedef bool pred_fn(const json_t *st, const void *arg);

/* Poll state.json until pred holds; fails the test after ms. Returns the state. */
static json_t *wait_for(const struct tpod *t, const char *c, pred_fn *pred, const void *arg, int ms)
{
	int64_t until = now_ms() + ms;
	json_t *st = NULL;
	for (;;) {
		json_decref(st);
		st = state_of(t, c);
		if (st && pred(st, arg))
			return st;
		if (now_ms() > until)
			break;
		sleep_ms(20);
	}
	char *text = st ? json_dumps(st, JSON_COMPACT) : xstrdup("(no state)");
	char *path = xasprintf("%s/containers/%s/shim.log", t->dir, c);
	char *log = slurp(path);
	fprintf(stderr, "# waited %d ms; %s state: %s\n# shim.log:\n%s\n", ms, c, text, log);
	free(log);
	free(path);
	free(text);
	json_decref(st);
	fail_msg("condition on container %s not met", c);
	return NULL;
}

static bool is_kind(const json_t *st, const void *k)
{
	return !strcmp(kind(st), k);
}

static bool has_reason(const json_t *st, const void *r)
{
	return !strcmp(reason(st), r);
}

static bool is_ready(const json_t *st, const void *arg)
{
	(void)arg;
	return json_is_true(json_object_get(st, "ready"));
}

static bool restarts_at_least(const json_t *st, const void *n)
{
	return json_integer_value(json_object_get(st, "restartCount")) >= *(const int *)n;
}

struct rec_filter {
	const char *type, *uid, *container;
	size_t n;
	int64_t times[64];
	json_t *last;
};

static int rec_cb(const struct journal_rec *r, void *arg, struct gerr **err)
{
	(void)err;
	struct rec_filter *f = arg;
	if (strcmp(r->type, f->type))
		return 0;
	json_t *b = json_loadb(r->body, r->body_len, 0, NULL);
	if (!strcmp(json_string_value(json_object_get(b, "uid")) ?: "", f->uid) &&
	    (!f->container || !strcmp(json_string_value(json_object_get(b, "container")) ?: "", f->container))) {
		if (f->n < ARRAY_SIZE(f->times))
			f->times[f->n] = r->time_ns;
		f->n++;
		json_decref(f->last);
		f->last = json_incref(b);
	}
	json_decref(b);
	return 0;
}

/* Journal records of a type for one container (times in f->times); caller frees f->last. */
static struct rec_filter records(const struct tpod *t, const char *c, const char *type)
{
	struct rec_filter f = { .type = type, .uid = t->uid, .container = c };
	struct journal *j = NULL;
	if (journal_open(G.paths.journal, 0, &j, NULL, NULL) == 0)
		journal_since(j, 0, rec_cb, &f, NULL);
	journal_close(j);
	return f;
}

static size_t count(const struct tpod *t, const char *c, const char *type)
{
	struct rec_filter f = records(t, c, type);
	json_decref(f.last);
	return f.n;
}

static char *logs_of(const struct tpod *t, const char *c, long tail)
{
	char *path = xasprintf("%s/logs/%s.log", t->dir, c);
	char *out = xasprintf("%s/%s.out", t->dir, c);
	int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(log_print(path, tail, false, fd, NULL), 0);
	close(fd);
	char *text = slurp(out);
	free(path);
	free(out);
	return text;
}

static bool logs_contain(const struct tpod *t, const char *c, const char *what, int ms)
{
	int64_t until = now_ms() + ms;
	do {
		char *text = logs_of(t, c, -1);
		bool ok = strstr(text, what) != NULL;
		free(text);
		if (ok)
			return true;
		sleep_ms(20);
	} while (now_ms() < until);
	return false;
}

static bool shim_gone(const struct tpod *t, const char *c)
{
	for (int i = 0; i < 200 && shim_alive(t->dir, c); i++)
		sleep_ms(10);
	return !shim_alive(t->dir, c);
}

static bool runc_has(const struct tpod *t, const char *c)
{
	char *id = xasprintf("%s-%s", t->uid, c);
	const char *argv[] = { "runc", "--root", G.paths.runc_root, "state", id, NULL };
	struct sbuf out = SBUF_INIT, errb = SBUF_INIT;
	struct child ch = { .argv = argv, .out = &out, .errb = &errb };
	int st = child_run(&ch, NULL);
	sb_release(&out);
	sb_release(&errb);
	free(id);
	return st == 0;
}

/* main() runs none of these unless root, runc and the test bed are there. */
#define SHIM_TEST(name) \
	static void name##_body(void); \
	static void name(void **state) \
	{ \
		(void)state; \
		name##_body(); \
	} \
	static void name##_body(void)

/* ---- tests ---- */

SHIM_TEST(test_completed)
{
	struct tpod *t = pod_new("{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\","
				 "\"image\":\"IMAGE\",\"command\":[\"sh\",\"-c\",\"echo hello; echo oops >&2\"]}]}");
	json_t *st = wait_for(t, "main", is_kind, "terminated", WAIT_MS);
	assert_int_equal(exit_code(st), 0);
	assert_string_equal(reason(st), "Completed");
	assert_true(json_is_true(json_object_get(st, "final")));
	assert_int_equal(json_integer_value(json_object_get(st, "restartCount")), 0);
	assert_non_null(strstr(json_string_value(json_object_get(st, "imageID")), "@sha256:"));
	char *cid = xasprintf("runc://%s-main", t->uid);
	assert_string_equal(json_string_value(json_object_get(st, "containerID")), cid);
	free(cid);
	json_decref(st);
	assert_true(shim_gone(t, "main")); /* done for good: the shim is gone */
	assert_false(runc_has(t, "main"));
	char *path = xasprintf("%s/logs/main.log", t->dir);
	char *raw = slurp(path);
	assert_non_null(strstr(raw, " stdout F hello\n"));
	assert_non_null(strstr(raw, " stderr F oops\n"));
	free(raw);
	free(path);
	char *text = logs_of(t, "main", -1);
	assert_true(!strcmp(text, "hello\noops\n") || !strcmp(text, "oops\nhello\n"));
	free(text);
	assert_int_equal(count(t, "main", "container.started"), 1);
	assert_int_equal(count(t, "main", "container.exited"), 1);
	assert_true(count(t, "main", "image.pulled") >= 1);
	pod_free(t);
}

SHIM_TEST(test_crashloop)
{
	setenv("GITOPS_BACKOFF_BASE_MS", "300", 1);
	struct tpod *t = pod_new("{\"restartPolicy\":\"Always\",\"containers\":[{\"name\":\"crash\","
				 "\"image\":\"IMAGE\",\"command\":[\"sh\",\"-c\",\"echo boom; exit 3\"]}]}");
	unsetenv("GITOPS_BACKOFF_BASE_MS");
	int two = 2;
	json_t *st = wait_for(t, "crash", restarts_at_least, &two, WAIT_MS);
	json_decref(st);
	st = wait_for(t, "crash", has_reason, "CrashLoopBackOff", WAIT_MS);
	const json_t *last = json_object_get(json_object_get(st, "lastState"), "terminated");
	assert_int_equal(json_integer_value(json_object_get(last, "exitCode")), 3);
	assert_string_equal(json_string_value(json_object_get(last, "reason")), "Error");
	assert_non_null(strstr(json_string_value(json_object_get(
				       json_object_get(json_object_get(st, "state"), "waiting"), "message")),
			       "back-off"));
	assert_false(json_is_true(json_object_get(st, "ready")));
	json_decref(st);
	/* the back-off doubles: 300 ms, then 600 ms between exit and the next start */
	struct rec_filter started = records(t, "crash", "container.started");
	struct rec_filter exited = records(t, "crash", "container.exited");
	assert_true(started.n >= 3 && exited.n >= 2);
	int64_t gap1 = (started.times[1] - exited.times[0]) / 1000000;
	int64_t gap2 = (started.times[2] - exited.times[1]) / 1000000;
	assert_true(gap1 >= 290);
	assert_true(gap2 >= 590);
	json_decref(started.last);
	json_decref(exited.last);
	assert_true(count(t, "crash", "container.backoff") >= 2);
	char *text = logs_of(t, "crash", -1);
	assert_non_null(strstr(text, "boom\nboom\n"));
	free(text);
	pod_free(t);
}

SHIM_TEST(test_readiness_http)
{
	setenv("GITOPS_PROBE_SECOND_MS", "200", 1);
	struct tpod *t = pod_new(
		"{\"terminationGracePeriodSeconds\":1,\"containers\":["
		"{\"name\":\"web\",\"image\":\"IMAGE\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080}],"
		" \"command\":[\"sh\",\"-c\",\"mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www\"],"
		" \"readinessProbe\":{\"httpGet\":{\"path\":\"/index.html\",\"port\":\"http\"},\"periodSeconds\":1},"
		" \"livenessProbe\":{\"tcpSocket\":{\"port\":8080},\"periodSeconds\":1,\"failureThreshold\":5}},"
		"{\"name\":\"side\",\"image\":\"IMAGE\",\"command\":[\"sleep\",\"600\"],"
		" \"readinessProbe\":{\"httpGet\":{\"path\":\"/missing\",\"port\":8080},\"periodSeconds\":1,\"failureThreshold\":1}}"
		"]}");
	unsetenv("GITOPS_PROBE_SECOND_MS");
	json_t *st = wait_for(t, "web", is_ready, NULL, WAIT_MS);
	assert_true(json_is_true(json_object_get(st, "started")));
	assert_string_equal(kind(st), "running");
	assert_true(json_integer_value(json_object_get(st, "pid")) > 0);
	json_decref(st);
	assert_true(count(t, "web", "ready.changed") >= 1);
	/* the sidecar's probe gets a 404 from the web container: running, not ready */
	int64_t until = now_ms() + WAIT_MS;
	struct rec_filter f = { 0 };
	while (now_ms() < until) {
		f = records(t, "side", "probe.changed");
		if (f.n)
			break;
		sleep_ms(50);
	}
	assert_true(f.n >= 1);
	assert_string_equal(json_string_value(json_object_get(f.last, "result")), "failure");
	assert_string_equal(json_string_value(json_object_get(f.last, "message")),
			    "HTTP probe failed with statuscode: 404");
	json_decref(f.last);
	st = state_of(t, "side");
	assert_string_equal(kind(st), "running");
	assert_false(json_is_true(json_object_get(st, "ready")));
	json_decref(st);
	st = state_of(t, "web");
	assert_int_equal(json_integer_value(json_object_get(st, "restartCount")), 0); /* liveness held */
	json_decref(st);
	pod_free(t);
}

SHIM_TEST(test_liveness_exec)
{
	setenv("GITOPS_PROBE_SECOND_MS", "200", 1);
	setenv("GITOPS_BACKOFF_BASE_MS", "200", 1);
	struct tpod *t = pod_new(
		"{\"terminationGracePeriodSeconds\":5,\"containers\":[{\"name\":\"live\",\"image\":\"IMAGE\","
		" \"command\":[\"sh\",\"-c\",\"trap 'exit 0' TERM; touch /tmp/healthy; sleep 1; rm /tmp/healthy;"
		" while true; do sleep 0.1; done\"],"
		" \"livenessProbe\":{\"exec\":{\"command\":[\"cat\",\"/tmp/healthy\"]},\"periodSeconds\":1,"
		" \"failureThreshold\":2}}]}");
	unsetenv("GITOPS_PROBE_SECOND_MS");
	unsetenv("GITOPS_BACKOFF_BASE_MS");
	int one = 1;
	json_t *st = wait_for(t, "live", restarts_at_least, &one, WAIT_MS);
	json_decref(st);
	struct rec_filter f = records(t, "live", "probe.changed");
	assert_true(f.n >= 2); /* success first, then failure */
	json_decref(f.last);
	f = records(t, "live", "container.exited");
	assert_true(f.n >= 1);
	json_decref(f.last);
	/* the exec probe's failure message names the command's exit */
	char *path = xasprintf("%s/containers/live/shim.log", t->dir);
	char *log = slurp(path);
	assert_non_null(strstr(log, "liveness probe failed: command exited with 1"));
	free(log);
	free(path);
	pod_free(t);
}

SHIM_TEST(test_startup_probe)
{
	setenv("GITOPS_PROBE_SECOND_MS", "200", 1);
	setenv("GITOPS_BACKOFF_BASE_MS", "200", 1);
	struct tpod *t = pod_new(
		"{\"terminationGracePeriodSeconds\":0,\"containers\":["
		"{\"name\":\"slow\",\"image\":\"IMAGE\",\"command\":[\"sh\",\"-c\",\"sleep 0.6; touch /tmp/up; exec sleep 600\"],"
		" \"startupProbe\":{\"exec\":{\"command\":[\"test\",\"-f\",\"/tmp/up\"]},\"periodSeconds\":1,\"failureThreshold\":30},"
		" \"readinessProbe\":{\"exec\":{\"command\":[\"true\"]},\"periodSeconds\":1}},"
		"{\"name\":\"never\",\"image\":\"IMAGE\",\"command\":[\"sleep\",\"600\"],"
		" \"startupProbe\":{\"tcpSocket\":{\"port\":9},\"periodSeconds\":1,\"failureThreshold\":2}}]}");
	unsetenv("GITOPS_PROBE_SECOND_MS");
	unsetenv("GITOPS_BACKOFF_BASE_MS");
	json_t *st = wait_for(t, "slow", is_kind, "running", WAIT_MS);
	assert_false(json_is_true(json_object_get(st, "started"))); /* not before the probe passed */
	assert_false(json_is_true(json_object_get(st, "ready")));
	json_decref(st);
	st = wait_for(t, "slow", is_ready, NULL, WAIT_MS);
	assert_true(json_is_true(json_object_get(st, "started")));
	assert_int_equal(json_integer_value(json_object_get(st, "restartCount")), 0);
	json_decref(st);
	int one = 1;
	st = wait_for(t, "never", restarts_at_least, &one, WAIT_MS);
	assert_false(json_is_true(json_object_get(st, "started")));
	json_decref(st);
	struct rec_filter f = records(t, "never", "probe.changed");
	assert_true(f.n >= 1);
	assert_string_equal(json_string_value(json_object_get(f.last, "probe")), "startup");
	assert_non_null(strstr(json_string_value(json_object_get(f.last, "message")), "connection refused"));
	json_decref(f.last);
	pod_free(t);
}

/* shim_stop C; returns how long it took, checks that shim and container are gone. */
static int64_t stop_timed(const struct tpod *t, const char *c)
{
	int64_t t0 = now_ms();
	assert_int_equal(shim_stop(&G.paths, t->dir, c, 10000, NULL), 0);
	int64_t took = now_ms() - t0;
	assert_false(shim_alive(t->dir, c));
	assert_false(runc_has(t, c));
	char *pidf = xasprintf("%s/containers/%s/shim.pid", t->dir, c);
	assert_int_equal(access(pidf, F_OK), -1);
	free(pidf);
	json_t *st = state_of(t, c);
	assert_string_equal(kind(st), "terminated");
	assert_true(json_is_true(json_object_get(st, "final")));
	json_decref(st);
	return took;
}

SHIM_TEST(test_stop)
{
	/* svc: postStart and preStop write to the container's stdout, TERM ends it at once;
	 * stubborn: sleep as its pid namespace's init ignores TERM: SIGKILL after the grace */
	struct tpod *t = pod_new(
		"{\"terminationGracePeriodSeconds\":1,\"containers\":[{\"name\":\"svc\",\"image\":\"IMAGE\","
		" \"command\":[\"sh\",\"-c\",\"trap 'echo term; exit 0' TERM; echo up; while true; do sleep 0.1; done\"],"
		" \"lifecycle\":{\"postStart\":{\"exec\":{\"command\":[\"sh\",\"-c\",\"echo poststart > /proc/1/fd/1\"]}},"
		"  \"preStop\":{\"exec\":{\"command\":[\"sh\",\"-c\",\"echo prestop > /proc/1/fd/1\"]}}}},"
		" {\"name\":\"stubborn\",\"image\":\"IMAGE\",\"command\":[\"sleep\",\"600\"]}]}");
	json_decref(wait_for(t, "svc", is_kind, "running", WAIT_MS));
	json_decref(wait_for(t, "stubborn", is_kind, "running", WAIT_MS));
	assert_true(logs_contain(t, "svc", "poststart\n", 5000));
	assert_true(stop_timed(t, "svc") < 900);
	json_t *st = state_of(t, "svc");
	assert_string_equal(reason(st), "Completed");
	json_decref(st);
	char *text = logs_of(t, "svc", -1);
	const char *pre = strstr(text, "prestop\n"), *term = strstr(text, "term\n");
	assert_true(pre && term && pre < term);
	free(text);
	int64_t took = stop_timed(t, "stubborn");
	assert_true(took >= 1000 && took < 4000);
	st = state_of(t, "stubborn");
	assert_int_equal(exit_code(st), 137);
	assert_string_equal(reason(st), "Error");
	json_decref(st);
	pod_free(t);
}

SHIM_TEST(test_oom)
{
	struct tpod *t = pod_new("{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"hog\",\"image\":\"IMAGE\","
				 "\"resources\":{\"limits\":{\"memory\":\"32Mi\"}},"
				 "\"command\":[\"sh\",\"-c\",\"x=a; while true; do x=$x$x; done\"]}]}");
	json_t *st = wait_for(t, "hog", is_kind, "terminated", WAIT_MS);
	assert_string_equal(reason(st), "OOMKilled");
	assert_int_equal(exit_code(st), 137);
	json_decref(st);
	pod_free(t);
}

SHIM_TEST(test_init_chain)
{
	struct tpod *ok = pod_new("{\"restartPolicy\":\"Never\",\"initContainers\":["
				  "{\"name\":\"one\",\"image\":\"IMAGE\",\"command\":[\"sh\",\"-c\",\"sleep 0.3; echo one\"]},"
				  "{\"name\":\"two\",\"image\":\"IMAGE\",\"command\":[\"echo\",\"two\"]}],"
				  "\"containers\":[{\"name\":\"app\",\"image\":\"IMAGE\",\"command\":[\"echo\",\"app\"]}]}");
	json_t *st = wait_for(ok, "app", is_kind, "terminated", WAIT_MS);
	json_decref(st);
	/* each started only after the one before it had succeeded */
	struct rec_filter a = records(ok, "one", "container.exited");
	struct rec_filter b = records(ok, "two", "container.started");
	struct rec_filter c = records(ok, "two", "container.exited");
	struct rec_filter d = records(ok, "app", "container.started");
	assert_true(a.n == 1 && b.n == 1 && c.n == 1 && d.n == 1);
	assert_true(a.times[0] < b.times[0] && c.times[0] < d.times[0]);
	json_decref(a.last);
	json_decref(b.last);
	json_decref(c.last);
	json_decref(d.last);
	pod_free(ok);

	struct tpod *bad = pod_new("{\"restartPolicy\":\"Never\",\"initContainers\":["
				   "{\"name\":\"fails\",\"image\":\"IMAGE\",\"command\":[\"sh\",\"-c\",\"exit 2\"]}],"
				   "\"containers\":[{\"name\":\"app\",\"image\":\"IMAGE\",\"command\":[\"echo\",\"app\"]}]}");
	st = wait_for(bad, "fails", is_kind, "terminated", WAIT_MS);
	assert_string_equal(reason(st), "Error");
	json_decref(st);
	sleep_ms(500);
	st = state_of(bad, "app");
	assert_string_equal(reason(st), "PodInitializing");
	json_decref(st);
	assert_true(shim_alive(bad->dir, "app")); /* waits until asked to stop */
	assert_int_equal(count(bad, "app", "container.started"), 0);
	pod_free(bad);
}

SHIM_TEST(test_image_pull_error)
{
	setenv("GITOPS_BACKOFF_BASE_MS", "300", 1);
	char *spec = xasprintf("{\"containers\":[{\"name\":\"c\",\"image\":\"%s/nope:missing\","
			       "\"imagePullPolicy\":\"Always\"}]}", G.registry);
	struct tpod *t = pod_new(spec);
	free(spec);
	unsetenv("GITOPS_BACKOFF_BASE_MS");
	json_t *st = wait_for(t, "c", has_reason, "ErrImagePull", WAIT_MS);
	json_decref(st);
	st = wait_for(t, "c", has_reason, "ImagePullBackOff", WAIT_MS);
	json_decref(st);
	int64_t until = now_ms() + WAIT_MS;
	while (count(t, "c", "image.failed") < 2 && now_ms() < until)
		sleep_ms(50);
	struct rec_filter f = records(t, "c", "image.failed");
	assert_true(f.n >= 2);
	assert_string_equal(json_string_value(json_object_get(f.last, "reason")), "ErrImagePull");
	json_decref(f.last);
	pod_free(t);
}

SHIM_TEST(test_start_error)
{
	struct tpod *t = pod_new("{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"c\",\"image\":\"IMAGE\","
				 "\"command\":[\"/no/such/program\"]}]}");
	json_t *st = wait_for(t, "c", is_kind, "terminated", WAIT_MS);
	assert_string_equal(reason(st), "StartError");
	assert_int_equal(exit_code(st), 128);
	const char *msg = json_string_value(json_object_get(json_object_get(json_object_get(st, "state"),
									    "terminated"), "message"));
	assert_non_null(msg);
	assert_non_null(strstr(msg, "/no/such/program"));
	json_decref(st);
	pod_free(t);
}

SHIM_TEST(test_orphan_adopted)
{
	struct tpod *t = pod_new("{\"containers\":[{\"name\":\"orphan\",\"image\":\"IMAGE\",\"command\":[\"sleep\",\"600\"]}]}");
	json_t *st = wait_for(t, "orphan", is_kind, "running", WAIT_MS);
	json_decref(st);
	char *pidf = xasprintf("%s/containers/orphan/shim.pid", t->dir);
	char *text = slurp(pidf);
	int64_t pid = 0;
	text[strcspn(text, " ")] = '\0';
	assert_int_equal(parse_i64(text, 1, INT32_MAX, &pid), 0);
	free(text);
	free(pidf);
	kill((pid_t)pid, SIGKILL);
	assert_true(shim_gone(t, "orphan"));
	assert_true(runc_has(t, "orphan")); /* the container outlived its shim */
	assert_int_equal(shim_stop(&G.paths, t->dir, "orphan", 1000, NULL), 0);
	assert_false(runc_has(t, "orphan"));
	pod_free(t);
}

SHIM_TEST(test_log_rotation)
{
	setenv("GITOPS_LOG_MAX_BYTES", "4096", 1);
	struct tpod *t = pod_new("{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"chatty\","
				 "\"image\":\"IMAGE\",\"command\":[\"seq\",\"1\",\"400\"]}]}");
	unsetenv("GITOPS_LOG_MAX_BYTES");
	json_t *st = wait_for(t, "chatty", is_kind, "terminated", WAIT_MS);
	json_decref(st);
	char *p1 = xasprintf("%s/logs/chatty.log.1", t->dir);
	struct stat sb;
	assert_int_equal(stat(p1, &sb), 0);
	assert_true(sb.st_size <= 4096);
	free(p1);
	char *text = logs_of(t, "chatty", 5);
	assert_string_equal(text, "396\n397\n398\n399\n400\n");
	free(text);
	pod_free(t);
}

/* ---- `TEST shim ...`: this binary as the shim ---- */

static int shim_cmd(int argc, char **argv)
{
	struct node_opts o = { 0 };
	const char *pod = NULL, *c = NULL;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--state-dir"))
			o.state_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--run-dir"))
			o.run_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--pod-dir"))
			pod = argv[i + 1];
		else if (!strcmp(argv[i], "--container"))
			c = argv[i + 1];
	}
	struct gerr *e = NULL;
	if (!pod || !c || shim_main(&o, pod, c, &e) < 0) {
		fprintf(stderr, "shim: %s\n", e ? e->msg : "usage: shim --pod-dir D --container C");
		gerr_free(e);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "shim"))
		return shim_cmd(argc, argv);
	if (getuid() != 0 || !have("runc") || !have("skopeo") || !have("umoci") ||
	    access("tests/testbed/up", X_OK) != 0) {
		/* TAP's whole-plan skip: nothing counts as passed or failed */
		printf("1..0 # SKIP needs root, runc, skopeo, umoci and tests/testbed (run from the top)\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_completed, test_teardown),
		cmocka_unit_test_teardown(test_crashloop, test_teardown),
		cmocka_unit_test_teardown(test_readiness_http, test_teardown),
		cmocka_unit_test_teardown(test_liveness_exec, test_teardown),
		cmocka_unit_test_teardown(test_startup_probe, test_teardown),
		cmocka_unit_test_teardown(test_stop, test_teardown),
		cmocka_unit_test_teardown(test_oom, test_teardown),
		cmocka_unit_test_teardown(test_init_chain, test_teardown),
		cmocka_unit_test_teardown(test_image_pull_error, test_teardown),
		cmocka_unit_test_teardown(test_start_error, test_teardown),
		cmocka_unit_test_teardown(test_orphan_adopted, test_teardown),
		cmocka_unit_test_teardown(test_log_rotation, test_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
