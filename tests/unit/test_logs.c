/* test_logs.c: unit tests of container logs (runtime/logs.c): the CRI line format
 * with partial lines, rotation to .1, plain-text printing with --tail across both
 * files, --follow across a rotation until the writer (a real process with a shim
 * pid file) is gone, and `node logs` finding pods and containers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/shim.h"

struct fx {
	char *dir;
	char *log;
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	f->dir = xasprintf("%s/test_logs.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	f->log = xasprintf("%s/c.log", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	const char *argv[] = { "rm", "-rf", f->dir, NULL };
	struct child c = { .argv = argv };
	child_run(&c, NULL);
	free(f->dir);
	free(f->log);
	free(f);
	return 0;
}

static char *slurp(const char *path)
{
	struct sbuf sb = SBUF_INIT;
	assert_int_equal(sb_read_file(&sb, path, 1 << 24, NULL), 0);
	return sb_detach(&sb, NULL);
}

/* What log_print writes, through a temp file. */
static char *printed(const struct fx *f, long tail)
{
	char *out = xasprintf("%s/out", f->dir);
	int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	struct gerr *e = NULL;
	assert_int_equal(log_print(f->log, tail, false, fd, &e), 0);
	close(fd);
	char *text = slurp(out);
	free(out);
	return text;
}

static void write_str(struct log_writer *w, const char *stream, const char *s)
{
	log_write(w, stream, s, strlen(s));
}

static void test_format(void **state)
{
	struct fx *f = *state;
	struct log_writer *w = log_open(f->log, 0, NULL);
	assert_non_null(w);
	write_str(w, "stdout", "a\nb\npart");
	write_str(w, "stderr", "oops\n");
	log_close(w);
	char *text = slurp(f->log);
	regex_t re;
	assert_int_equal(regcomp(&re,
				 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z stdout F a\n"
				 "[^ ]+ stdout F b\n[^ ]+ stdout P part\n[^ ]+ stderr F oops\n$",
				 REG_EXTENDED),
			 0);
	assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
	regfree(&re);
	free(text);
}

static void test_print_partial(void **state)
{
	struct fx *f = *state;
	struct log_writer *w = log_open(f->log, 0, NULL);
	write_str(w, "stdout", "one\ntw");
	write_str(w, "stdout", "o\nthree");
	log_close(w);
	char *text = printed(f, -1);
	assert_string_equal(text, "one\ntwo\nthree");
	free(text);
	text = printed(f, 2);
	assert_string_equal(text, "two\nthree");
	free(text);
	text = printed(f, 0);
	assert_string_equal(text, "");
	free(text);
}

static void test_rotation_tail(void **state)
{
	struct fx *f = *state;
	struct log_writer *w = log_open(f->log, 400, NULL);
	for (int i = 0; i < 40; i++) {
		char *line = xasprintf("line %02d\n", i);
		write_str(w, i % 2 ? "stderr" : "stdout", line);
		free(line);
	}
	log_close(w);
	char *p1 = xasprintf("%s.1", f->log);
	struct stat a, b;
	assert_int_equal(stat(p1, &a), 0);
	assert_int_equal(stat(f->log, &b), 0);
	assert_true(a.st_size <= 400 && b.st_size <= 400);
	free(p1);
	/* the last lines survive, in order, across .1 and the current file */
	char *all = printed(f, -1);
	assert_non_null(strstr(all, "line 38\nline 39\n"));
	assert_true(str_has_suffix(all, "line 39\n"));
	size_t lines = 0;
	for (const char *p = all; *p; p++)
		lines += *p == '\n';
	assert_true(lines > 8 && lines < 40);
	free(all);
	char *t = printed(f, 12);
	struct sbuf want = SBUF_INIT;
	for (int i = 28; i < 40; i++)
		sb_addf(&want, "line %02d\n", i);
	assert_string_equal(t, want.buf);
	sb_release(&want);
	free(t);
}

static void test_missing_file(void **state)
{
	struct fx *f = *state;
	char *text = printed(f, -1);
	assert_string_equal(text, "");
	free(text);
}

/* A writer process: its own shim.pid, lines with a rotation in between, then exit. */
static void writer(const char *pod, const char *log)
{
	char *pidf = xasprintf("%s/containers/c/shim.pid", pod);
	if (shim_write_pidfile(pidf, NULL) < 0)
		_exit(1);
	struct log_writer *w = log_open(log, 300, NULL);
	struct timespec ts = { 0, 20 * 1000000L };
	for (int i = 0; i < 30; i++) {
		char *line = xasprintf("follow %02d\n", i);
		log_write(w, "stdout", line, strlen(line));
		free(line);
		nanosleep(&ts, NULL);
	}
	log_close(w);
	free(pidf);
	_exit(0);
}

static void test_follow(void **state)
{
	struct fx *f = *state;
	char *pod = xasprintf("%s/pod", f->dir);
	char *cdir = xasprintf("%s/containers/c", pod);
	char *logs = xasprintf("%s/logs", pod);
	char *log = xasprintf("%s/c.log", logs);
	assert_int_equal(mkdir_p(cdir, 0755, NULL), 0);
	assert_int_equal(mkdir_p(logs, 0755, NULL), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		writer(pod, log);
	while (!shim_alive(pod, "c")) {
		struct timespec ts = { 0, 1000000L };
		nanosleep(&ts, NULL);
	}
	char *out = xasprintf("%s/out", f->dir);
	int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct gerr *e = NULL;
	assert_int_equal(log_print(log, -1, true, fd, &e), 0); /* returns once the writer is gone */
	close(fd);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char *text = slurp(out);
	struct sbuf want = SBUF_INIT;
	for (int i = 0; i < 30; i++)
		sb_addf(&want, "follow %02d\n", i);
	assert_string_equal(text, want.buf);
	sb_release(&want);
	free(text);
	free(out);
	free(pod);
	free(cdir);
	free(logs);
	free(log);
}

/* ---- node logs ---- */

static void make_pod(const char *state, const char *uid, const char *ns, const char *name,
		     const char *containers_json)
{
	char *dir = xasprintf("%s/pods/%s", state, uid);
	char *logs = xasprintf("%s/logs", dir);
	assert_int_equal(mkdir_p(logs, 0755, NULL), 0);
	json_t *pod = json_pack("{s:s, s:s, s:s, s:{s:o}}", "uid", uid, "namespace", ns, "name", name,
				"spec", "containers", json_loads(containers_json, 0, NULL));
	char *pj = xasprintf("%s/pod.json", dir);
	assert_int_equal(json_save_atomic(pj, pod, 0644, NULL), 0);
	json_decref(pod);
	free(pj);
	free(logs);
	free(dir);
}

static void put_log(const char *state, const char *uid, const char *c, const char *text)
{
	char *path = xasprintf("%s/pods/%s/logs/%s.log", state, uid, c);
	struct log_writer *w = log_open(path, 0, NULL);
	log_write(w, "stdout", text, strlen(text));
	log_close(w);
	free(path);
}

static char *node_logs_text(const struct fx *f, const char *state, const char *pod, const char *c,
			    struct gerr **e)
{
	struct node_opts o = { .state_dir = state, .run_dir = state };
	struct log_opts l = { .pod = pod, .container = c, .tail = -1 };
	char *out = xasprintf("%s/out", f->dir);
	int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int r = node_logs(&o, &l, fd, e);
	close(fd);
	char *text = r == 0 ? slurp(out) : NULL;
	free(out);
	return text;
}

static void test_node_logs(void **state)
{
	struct fx *f = *state;
	char *st = xasprintf("%s/state", f->dir);
	make_pod(st, "00000000000000a1", "default", "web", "[{\"name\":\"a\"},{\"name\":\"b\"}]");
	make_pod(st, "00000000000000b2", "other", "web", "[{\"name\":\"only\"}]");
	make_pod(st, "00000000000000c3", "other", "solo", "[{\"name\":\"only\"}]");
	put_log(st, "00000000000000a1", "a", "from a\n");
	put_log(st, "00000000000000b2", "only", "from other/web\n");
	struct gerr *e = NULL;
	char *t = node_logs_text(f, st, "web", NULL, &e);
	assert_null(t);
	assert_string_equal(e->msg, "a container name must be specified for pod web, choose one of: [a b]");
	gerr_clear(&e);
	t = node_logs_text(f, st, "web", "a", &e);
	assert_string_equal(t, "from a\n");
	free(t);
	t = node_logs_text(f, st, "other/web", NULL, &e);
	assert_string_equal(t, "from other/web\n");
	free(t);
	t = node_logs_text(f, st, "00000000000000a1", "a", &e);
	assert_string_equal(t, "from a\n");
	free(t);
	assert_null(node_logs_text(f, st, "nope", NULL, &e));
	assert_string_equal(e->msg, "pods \"nope\" not found");
	gerr_clear(&e);
	assert_null(node_logs_text(f, st, "web", "zzz", &e));
	assert_string_equal(e->msg, "container zzz is not valid for pod web");
	gerr_clear(&e);
	make_pod(st, "00000000000000d4", "x", "twice", "[{\"name\":\"c\"}]");
	make_pod(st, "00000000000000e5", "y", "twice", "[{\"name\":\"c\"}]");
	assert_null(node_logs_text(f, st, "twice", NULL, &e));
	assert_string_equal(e->msg, "pod name twice is in several namespaces: name one as NAMESPACE/twice");
	gerr_clear(&e);
	assert_null(node_logs_text(f, st, "solo", NULL, &e));
	assert_string_equal(e->msg, "container \"only\" in pod \"solo\" is waiting to start: ContainerCreating");
	gerr_clear(&e);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_partial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_logs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
