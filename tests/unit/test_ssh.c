/* test_ssh.c: ssh_run_all (runtime/ssh.c) against real sshds of a 3-node testbed:
 * jobs run by ssh (cold) and through a running ControlMaster's socket (warm). */
/*
 * The group setup starts `tests/testbed/up 3` (needs root; every test that needs it
 * is skipped otherwise) in a short /tmp/gssh.XXXXXX directory, whose c<N>/
 * subdirectories are the tests' ControlPath directories. The group teardown ends
 * every ControlMaster started here (`ssh -O exit`, then SIGTERM to any left), runs
 * `tests/testbed/down` and removes the directory. Timings go to stdout as "# " lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"

#define NNODES 3

static struct {
	bool up;
	char *root;        /* /tmp/gssh.XXXXXX */
	char *tbdir;       /* ROOT/tb */
	char *ssh_config;
	char *id;          /* TESTBED_ID */
	char *addr[NNODES];
	char *name[NNODES];
	int ncdirs;
} tb;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run argv quietly; returns its status. */
static int run_quiet(const char *const *argv, struct sbuf *out)
{
	struct sbuf eb = SBUF_INIT, ob = SBUF_INIT;
	struct gerr *e = NULL;
	struct child c = { .argv = argv, .out = out ? out : &ob, .errb = &eb };
	int rc = child_run(&c, &e);
	if (rc != 0)
		fprintf(stderr, "# %s: exit %d: %s%s\n", argv[0], rc, e ? e->msg : "", eb.buf);
	gerr_free(e);
	sb_release(&eb);
	sb_release(&ob);
	return rc;
}

/* A fresh ControlPath directory for one test (not created: ssh_run_all does). */
static char *new_cdir(void)
{
	return xasprintf("%s/c%d", tb.root, ++tb.ncdirs);
}

/* ---- the testbed ---------------------------------------------------------------- */

static char *env_value(const char *env, const char *key)
{
	size_t kl = strlen(key);
	for (const char *l = env; *l; l = strchrnul(l, '\n') + (l[strcspn(l, "\n")] ? 1 : 0)) {
		if (strncmp(l, key, kl) || l[kl] != '=')
			continue;
		const char *v = l + kl + 1;
		size_t n = strcspn(v, "\n");
		if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
			return xstrndup(v + 1, n - 2);
		return xstrndup(v, n);
	}
	return NULL;
}

static int read_env(void)
{
	struct sbuf env = SBUF_INIT;
	char *path = xasprintf("%s/env", tb.tbdir);
	int rc = sb_read_file(&env, path, 1 << 20, NULL);
	free(path);
	if (rc < 0)
		return -1;
	tb.ssh_config = env_value(env.buf, "SSH_CONFIG");
	tb.id = env_value(env.buf, "TESTBED_ID");
	for (int i = 0; i < NNODES; i++) {
		char *key = xasprintf("NODE%d_ADDR", i + 1);
		tb.addr[i] = env_value(env.buf, key);
		tb.name[i] = xasprintf("node%d", i + 1);
		free(key);
		if (!tb.addr[i])
			rc = -1;
	}
	sb_release(&env);
	return tb.ssh_config && tb.id ? rc : -1;
}

static int group_setup(void **state)
{
	tb.root = xstrdup("/tmp/gssh.XXXXXX");
	if (!mkdtemp(tb.root))
		return -1;
	tb.tbdir = xasprintf("%s/tb", tb.root);
	if (geteuid() != 0 || access("tests/testbed/up", X_OK) != 0) {
		printf("# no testbed (needs root and tests/testbed/up): tests skipped\n");
		return 0;
	}
	int64_t t0 = now_ms();
	if (run_quiet((const char *const[]){ "tests/testbed/up", "3", "--dir", tb.tbdir, NULL },
		      NULL) != 0)
		return -1;
	tb.up = true;
	printf("# testbed up in %lld ms\n", (long long)(now_ms() - t0));
	return read_env();
}

/* Every pid whose command line starts with "ssh: ROOT/" (our masters' titles);
 * sig: send it to them (0: only count). */
static int masters_signal(const char *prefix, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int count = 0;
	char *want = xasprintf("ssh: %s/", prefix);
	while (d && (de = readdir(d))) {
		int64_t pid;
		struct sbuf cmd = SBUF_INIT;
		char *path = xasprintf("/proc/%s/cmdline", de->d_name);
		if (parse_i64(de->d_name, 1, INT32_MAX, &pid) == 0 &&
		    sb_read_file(&cmd, path, 1 << 16, NULL) == 0 && str_has_prefix(cmd.buf, want)) {
			count++;
			if (sig)
				kill((pid_t)pid, sig);
		}
		free(path);
		sb_release(&cmd);
	}
	if (d)
		closedir(d);
	free(want);
	return count;
}

static int masters(const char *prefix, bool kill_them)
{
	return masters_signal(prefix, kill_them ? SIGTERM : 0);
}

/* `ssh -O exit` on every socket of every control directory we used. */
static void exit_masters(void)
{
	for (int k = 1; k <= tb.ncdirs; k++) {
		char *dir = xasprintf("%s/c%d", tb.root, k);
		DIR *d = opendir(dir);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char *cp = xasprintf("ControlPath=%s/%s", dir, de->d_name);
			run_quiet((const char *const[]){ "ssh", "-F", "/dev/null", "-o", cp, "-O",
							 "exit", "gitops-test", NULL }, NULL);
			free(cp);
		}
		if (d)
			closedir(d);
		free(dir);
	}
}

static int group_teardown(void **state)
{
	exit_masters();
	for (int i = 0; i < 50 && masters(tb.root, false) > 0; i++)
		usleep(20000);
	int left = masters(tb.root, true);
	if (left)
		printf("# %d ControlMaster(s) did not exit on -O exit; sent SIGTERM\n", left);
	if (tb.up)
		run_quiet((const char *const[]){ "tests/testbed/down", "--dir", tb.tbdir, NULL },
			  NULL);
	run_quiet((const char *const[]){ "rm", "-rf", "--one-file-system", tb.root, NULL }, NULL);
	free(tb.root);
	free(tb.tbdir);
	free(tb.ssh_config);
	free(tb.id);
	for (int i = 0; i < NNODES; i++) {
		free(tb.addr[i]);
		free(tb.name[i]);
	}
	return left ? -1 : 0;
}

#define NEED_TESTBED()               \
	do {                         \
		if (!tb.up)          \
			skip();      \
	} while (0)

/* ---- helpers ---------------------------------------------------------------------- */

static struct ssh_opts opts(const char *cdir, int parallel, int timeout_ms)
{
	return (struct ssh_opts){ .ssh_config = tb.ssh_config, .control_dir = cdir,
				  .parallel = parallel, .timeout_ms = timeout_ms };
}

/* n jobs round-robin over the nodes (by Host alias), all running remote. */
static void fill(struct ssh_job *jobs, size_t n, const char *const *remote)
{
	for (size_t i = 0; i < n; i++)
		jobs[i] = (struct ssh_job){ .name = tb.name[i % NNODES],
					    .dest = tb.name[i % NNODES], .remote = remote };
}

static void release(struct ssh_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ssh_job_release(&jobs[i]);
}

/* Run jobs; assert the call itself succeeded; returns the wall time in ms. */
static int64_t run(const struct ssh_opts *o, struct ssh_job *jobs, size_t n)
{
	struct gerr *e = NULL;
	int64_t t0 = now_ms();
	int rc = ssh_run_all(o, jobs, n, &e);
	if (rc < 0)
		fail_msg("ssh_run_all: %s", e->msg);
	gerr_free(e);
	return now_ms() - t0;
}

static void assert_ok(const struct ssh_job *j, const char *out)
{
	if (j->status != 0 || j->error)
		fail_msg("%s: status %d, error %s, stderr %s", j->name, j->status,
			 j->error ? j->error : "(none)", j->err.buf);
	if (out)
		assert_string_equal(j->out.buf, out);
}

static double avg_ms(const struct ssh_job *jobs, size_t n)
{
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += jobs[i].elapsed_ms;
	return n ? (double)sum / (double)n : 0;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_echo_three_nodes(void **state)
{
	NEED_TESTBED();
	static const char *const remote[] = { "echo", "hello", "it's", "a b", "$HOME", "*", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job jobs[NNODES];
	fill(jobs, NNODES, remote);
	int64_t wall = run(&o, jobs, NNODES);
	for (int i = 0; i < NNODES; i++)
		assert_ok(&jobs[i], "hello it's a b $HOME *\n");
	printf("# echo on 3 nodes (cold): %lld ms wall\n", (long long)wall);
	release(jobs, NNODES);
	free(cdir);
}

static void test_quoting_empty_and_odd_words(void **state)
{
	NEED_TESTBED();
	static const char *const remote[] = { "printf", "%s|", "a'b", "", "x  y", "~", "A=b",
					      "$(id)", "`id`", "a\nb", ";", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job j[1];
	fill(j, 1, remote);
	run(&o, j, 1);
	assert_ok(&j[0], "a'b||x  y|~|A=b|$(id)|`id`|a\nb|;|");
	release(j, 1);
	free(cdir);
}

static void test_cat_1mib_round_trip(void **state)
{
	NEED_TESTBED();
	static const char *const remote[] = { "cat", NULL };
	size_t len = 1u << 20;
	char *data = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)((i * 131 + i / 4096) & 0xff);
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 20000);
	struct ssh_job jobs[NNODES];
	fill(jobs, NNODES, remote);
	for (int i = 0; i < NNODES; i++) {
		jobs[i].in = data;
		jobs[i].in_len = len;
	}
	int64_t wall = run(&o, jobs, NNODES);
	for (int i = 0; i < NNODES; i++) {
		assert_ok(&jobs[i], NULL);
		assert_int_equal(jobs[i].out.len, len);
		assert_memory_equal(jobs[i].out.buf, data, len);
	}
	printf("# cat 1 MiB x 3 nodes: %lld ms wall\n", (long long)wall);
	release(jobs, NNODES);
	free(data);
	free(cdir);
}

/* stdin the remote never reads: EPIPE here, not SIGPIPE; empty stdin is EOF at once. */
static void test_stdin_unread_and_empty(void **state)
{
	NEED_TESTBED();
	static const char *const t[] = { "true", NULL }, *const wc[] = { "wc", "-c", NULL };
	size_t len = 4u << 20;
	char *data = xcalloc(1, len);
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job jobs[2];
	fill(jobs, 1, t);
	fill(jobs + 1, 1, wc);
	jobs[0].in = data;
	jobs[0].in_len = len;
	jobs[1].in = "";
	run(&o, jobs, 2);
	assert_ok(&jobs[0], "");
	assert_ok(&jobs[1], "0\n");
	release(jobs, 2);
	free(data);
	free(cdir);
}

/* Cold, several ssh to one node at once: one becomes the master, the others print
 * "ControlSocket ... already exists, disabling multiplexing" and connect on their
 * own. That note must not reach err or error. */
static void test_cold_race_same_node(void **state)
{
	NEED_TESTBED();
	static const char *const echo[] = { "echo", "ok", NULL };
	enum { N = 8 };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, N, 10000);
	struct ssh_job jobs[N];
	fill(jobs, N, echo);
	for (int i = 0; i < N; i++)
		jobs[i].dest = tb.name[0];
	run(&o, jobs, N);
	for (int i = 0; i < N; i++) {
		assert_ok(&jobs[i], "ok\n");
		assert_int_equal(jobs[i].err.len, 0);
	}
	assert_int_equal(masters(cdir, false), 1);
	release(jobs, N);
	free(cdir);
}

static void test_exit_status_passthrough(void **state)
{
	NEED_TESTBED();
	static const char *const f[] = { "false", NULL }, *const t[] = { "true", NULL },
				 *const ls[] = { "ls", "/nonexistent-gitops-test", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job jobs[3];
	fill(jobs, 1, f);
	fill(jobs + 1, 1, t);
	fill(jobs + 2, 1, ls);
	run(&o, jobs, 3);
	assert_int_equal(jobs[0].status, 1);
	assert_string_equal(jobs[0].error, "exit status 1");
	assert_ok(&jobs[1], "");
	assert_int_equal(jobs[2].status, 2);
	assert_non_null(strstr(jobs[2].error, "exit status 2: ls: cannot access"));
	assert_non_null(strstr(jobs[2].error, "No such file or directory"));
	release(jobs, 3);
	free(cdir);
}

static void test_unreachable_with_reason(void **state)
{
	NEED_TESTBED();
	static const char *const echo[] = { "echo", "ok", NULL };
	char *cdir = new_cdir(), *nohost = xasprintf("root@10.213.%s.99", tb.id);
	char *refused = xasprintf("root@%s:2222", tb.addr[0]);
	struct ssh_opts o = opts(cdir, 0, 15000);
	struct ssh_job jobs[4];
	fill(jobs, 4, echo);
	jobs[2].dest = nohost;
	jobs[3].dest = refused;
	int64_t wall = run(&o, jobs, 4);
	assert_ok(&jobs[0], "ok\n");
	assert_ok(&jobs[1], "ok\n");
	assert_true(jobs[0].elapsed_ms < 2000 && jobs[1].elapsed_ms < 2000);
	for (int i = 2; i < 4; i++) {
		assert_int_equal(jobs[i].status, 255);
		assert_non_null(jobs[i].error);
		assert_true(str_has_prefix(jobs[i].error, "ssh: connect to host 10.213."));
		printf("# %s: %s (%lld ms)\n", jobs[i].dest, jobs[i].error,
		       (long long)jobs[i].elapsed_ms);
	}
	assert_non_null(strstr(jobs[3].error, "port 2222: Connection refused"));
	printf("# good nodes: %lld, %lld ms; wall %lld ms\n", (long long)jobs[0].elapsed_ms,
	       (long long)jobs[1].elapsed_ms, (long long)wall);
	release(jobs, 4);
	free(nohost);
	free(refused);
	free(cdir);
}

static void test_timeout_does_not_delay_others(void **state)
{
	NEED_TESTBED();
	static const char *const slp[] = { "sleep", "10", NULL }, *const echo[] = { "echo", "ok", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 1000);
	struct ssh_job jobs[NNODES];
	fill(jobs, NNODES, echo);
	jobs[0].remote = slp;
	int64_t wall = run(&o, jobs, NNODES);
	assert_int_equal(jobs[0].status, -1);
	assert_string_equal(jobs[0].error, "timed out after 1s");
	assert_true(jobs[0].elapsed_ms >= 1000 && jobs[0].elapsed_ms < 2000);
	for (int i = 1; i < NNODES; i++) {
		assert_ok(&jobs[i], "ok\n");
		assert_true(jobs[i].elapsed_ms < 1000);
	}
	assert_true(wall < 2500);
	printf("# timeout: sleeper %lld ms, others %lld/%lld ms, wall %lld ms\n",
	       (long long)jobs[0].elapsed_ms, (long long)jobs[1].elapsed_ms,
	       (long long)jobs[2].elapsed_ms, (long long)wall);
	release(jobs, NNODES);
	free(cdir);
}

static void test_parallel_limit(void **state)
{
	NEED_TESTBED();
	static const char *const t[] = { "true", NULL }, *const slp[] = { "sleep", "0.5", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job jobs[NNODES];
	fill(jobs, NNODES, t); /* warm the masters, so handshakes do not blur the numbers */
	run(&o, jobs, NNODES);
	release(jobs, NNODES);
	fill(jobs, NNODES, slp);
	o.parallel = 1;
	int64_t one = run(&o, jobs, NNODES);
	for (int i = 0; i < NNODES; i++)
		assert_ok(&jobs[i], "");
	o.parallel = 3;
	int64_t three = run(&o, jobs, NNODES);
	for (int i = 0; i < NNODES; i++)
		assert_ok(&jobs[i], "");
	printf("# 3 x sleep 0.5: parallel 1 %lld ms, parallel 3 %lld ms\n", (long long)one,
	       (long long)three);
	assert_true(one >= 1500);
	assert_true(three < 1200);
	release(jobs, NNODES);
	free(cdir);
}

/* An ssh_config like the testbed's but with known_hosts file kh. */
static char *config_with_known_hosts(const char *kh)
{
	char *path = xasprintf("%s/config-%d", tb.root, tb.ncdirs);
	char *text = xasprintf("Host *\n  User root\n  IdentityFile %s/id_ed25519\n"
			       "  IdentitiesOnly yes\n  UserKnownHostsFile %s\n"
			       "  GlobalKnownHostsFile /dev/null\n  CheckHostIP no\n"
			       "  UpdateHostKeys no\n  AddressFamily inet\n"
			       "  KexAlgorithms curve25519-sha256\n",
			       tb.tbdir, kh);
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0600, NULL), 0);
	free(text);
	return path;
}

static void write_text(const char *path, const char *text)
{
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0600, NULL), 0);
}

static void test_host_key_mismatch(void **state)
{
	NEED_TESTBED();
	static const char *const t[] = { "true", NULL };
	struct sbuf key = SBUF_INIT;
	char *pub = xasprintf("%s/nodes/node2/ssh_host_ed25519_key.pub", tb.tbdir);
	char *kh = xasprintf("%s/kh-wrong", tb.root), *cdir = new_cdir();
	assert_int_equal(sb_read_file(&key, pub, 1 << 16, NULL), 0);
	size_t type_len = strcspn(key.buf, " "); /* "ssh-ed25519 BASE64 comment" */
	size_t key_len = type_len + 1 + strcspn(key.buf + type_len + 1, " \n");
	char *line = xasprintf("%s %.*s\n", tb.addr[0], (int)key_len, key.buf);
	write_text(kh, line); /* node1's address with node2's key */
	char *cfg = config_with_known_hosts(kh), *dest = xasprintf("root@%s", tb.addr[0]);
	struct ssh_opts o = { .ssh_config = cfg, .control_dir = cdir, .timeout_ms = 10000 };
	struct ssh_job j[1] = { { .name = "node1", .dest = dest, .remote = t } };
	run(&o, j, 1);
	assert_int_equal(j[0].status, 255);
	assert_string_equal(j[0].error, "Host key verification failed");
	assert_non_null(strstr(j[0].err.buf, "REMOTE HOST IDENTIFICATION HAS CHANGED"));
	o.accept_new = true; /* accept-new never accepts a changed key */
	run(&o, j, 1);
	assert_int_equal(j[0].status, 255);
	assert_string_equal(j[0].error, "Host key verification failed");
	printf("# wrong known_hosts entry: %s\n", j[0].error);
	release(j, 1);
	sb_release(&key);
	free(pub);
	free(kh);
	free(cdir);
	free(line);
	free(cfg);
	free(dest);
}

static void test_host_key_unknown_strict_vs_accept_new(void **state)
{
	NEED_TESTBED();
	static const char *const t[] = { "true", NULL };
	char *kh = xasprintf("%s/kh-empty", tb.root), *cdir = new_cdir();
	write_text(kh, "");
	char *cfg = config_with_known_hosts(kh), *dest = xasprintf("root@%s", tb.addr[1]);
	struct ssh_opts o = { .ssh_config = cfg, .control_dir = cdir, .timeout_ms = 10000 };
	struct ssh_job j[1] = { { .name = "node2", .dest = dest, .remote = t } };
	run(&o, j, 1);
	assert_int_equal(j[0].status, 255);
	assert_string_equal(j[0].error, "Host key verification failed");
	assert_non_null(strstr(j[0].err.buf, "host key is known for"));
	o.accept_new = true;
	run(&o, j, 1);
	assert_ok(&j[0], "");
	struct sbuf got = SBUF_INIT;
	assert_int_equal(sb_read_file(&got, kh, 1 << 16, NULL), 0);
	assert_true(str_has_prefix(got.buf, tb.addr[1]));
	assert_non_null(strstr(got.buf, "ssh-ed25519 "));
	free(cdir);
	cdir = new_cdir(); /* no master: a real handshake, strict, with the recorded key */
	o.control_dir = cdir;
	o.accept_new = false;
	run(&o, j, 1);
	assert_ok(&j[0], "");
	release(j, 1);
	sb_release(&got);
	free(kh);
	free(cdir);
	free(cfg);
	free(dest);
}

static int sockets_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	int n = 0;
	while (d && (de = readdir(d))) {
		char *p = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISSOCK(st.st_mode))
			n++;
		free(p);
	}
	if (d)
		closedir(d);
	return n;
}

static void test_warm_control_master(void **state)
{
	NEED_TESTBED();
	static const char *const t[] = { "true", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 20000);
	struct ssh_job jobs[NNODES];
	struct stat st;
	fill(jobs, NNODES, t);
	int64_t cold_wall = run(&o, jobs, NNODES);
	double cold = avg_ms(jobs, NNODES);
	for (int i = 0; i < NNODES; i++) {
		assert_ok(&jobs[i], "");
		assert_false(jobs[i].via_master);
	}
	assert_int_equal(lstat(cdir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(sockets_in(cdir), NNODES);
	assert_int_equal(masters(cdir, false), NNODES);
	/* The background masters must not hold our pipes: a cold run ends when its last
	 * ssh exits, not SSH_GRACE_MS (1 s) later, let alone when ControlPersist ends. */
	int64_t last_exit = 0;
	for (int i = 0; i < NNODES; i++)
		if (jobs[i].elapsed_ms > last_exit)
			last_exit = jobs[i].elapsed_ms;
	printf("# cold run: last ssh exited after %lld ms, run over after %lld ms\n",
	       (long long)last_exit, (long long)cold_wall);
	assert_true(cold_wall - last_exit < 300);
	int64_t warm_wall = run(&o, jobs, NNODES);
	double warm = avg_ms(jobs, NNODES);
	for (int i = 0; i < NNODES; i++) {
		assert_ok(&jobs[i], "");
		assert_true(jobs[i].via_master);
	}
	assert_int_equal(masters(cdir, false), NNODES); /* reused, not new ones */
	printf("# ControlMaster: cold %.1f ms/job (wall %lld), warm %.1f ms/job (wall %lld)\n",
	       cold, (long long)cold_wall, warm, (long long)warm_wall);
	assert_true(warm * 2 < cold);
	release(jobs, NNODES);
	free(cdir);
}

/* The path of the one socket in dir (a control directory used for one node). */
static char *only_socket(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	char *found = NULL;
	while (d && (de = readdir(d))) {
		char *p = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISSOCK(st.st_mode)) {
			assert_null(found);
			found = p;
		} else {
			free(p);
		}
	}
	if (d)
		closedir(d);
	assert_non_null(found);
	return found;
}

/* SIGKILL the masters of cdir (their sockets stay behind) and wait until they are gone. */
static void kill_masters(const char *cdir)
{
	masters_signal(cdir, SIGKILL);
	for (int i = 0; i < 100 && masters(cdir, false) > 0; i++)
		usleep(20000);
	assert_int_equal(masters(cdir, false), 0);
}

/* Warm: every job goes to its master's socket (no ssh started, no new master) and
 * behaves as through ssh: quoting, stdin (1 MiB round trip, 4 MiB never read, empty),
 * exit statuses with the stderr line. */
static void test_through_master(void **state)
{
	NEED_TESTBED();
	static const char *const t[] = { "true", NULL }, *const cat[] = { "cat", NULL },
				 *const wc[] = { "wc", "-c", NULL }, *const f[] = { "false", NULL },
				 *const ls[] = { "ls", "/nonexistent-gitops-test", NULL },
				 *const odd[] = { "printf", "%s|", "a'b", "", "x  y", "~", "A=b",
						  "$(id)", "`id`", "a\nb", ";", NULL };
	size_t len = 1u << 20, big = 4u << 20;
	char *data = xmalloc(len), *zeros = xcalloc(1, big);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)((i * 131 + i / 4096) & 0xff);
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 20000);
	struct ssh_job jobs[6];
	fill(jobs, NNODES, t);
	run(&o, jobs, NNODES); /* start the masters */
	for (int i = 0; i < NNODES; i++)
		assert_ok(&jobs[i], "");
	release(jobs, NNODES);
	fill(jobs, 6, odd);
	jobs[1].remote = cat;
	jobs[1].in = data;
	jobs[1].in_len = len;
	jobs[2].remote = t;
	jobs[2].in = zeros;
	jobs[2].in_len = big;
	jobs[3].remote = wc;
	jobs[3].in = "";
	jobs[4].remote = f;
	jobs[5].remote = ls;
	int64_t wall = run(&o, jobs, 6);
	for (int i = 0; i < 6; i++)
		assert_true(jobs[i].via_master);
	assert_ok(&jobs[0], "a'b||x  y|~|A=b|$(id)|`id`|a\nb|;|");
	assert_ok(&jobs[1], NULL);
	assert_int_equal(jobs[1].out.len, len);
	assert_memory_equal(jobs[1].out.buf, data, len);
	assert_ok(&jobs[2], "");
	assert_ok(&jobs[3], "0\n");
	assert_int_equal(jobs[4].status, 1);
	assert_string_equal(jobs[4].error, "exit status 1");
	assert_int_equal(jobs[5].status, 2);
	assert_non_null(strstr(jobs[5].error, "exit status 2: ls: cannot access"));
	assert_int_equal(masters(cdir, false), NNODES);
	printf("# 6 jobs through the masters (1 MiB in and out): %lld ms\n", (long long)wall);
	release(jobs, 6);
	free(data);
	free(zeros);
	free(cdir);
}

/* A job through a master hangs up at its timeout; the others and the master go on. */
static void test_timeout_through_master(void **state)
{
	NEED_TESTBED();
	static const char *const slp[] = { "sleep", "10", NULL }, *const echo[] = { "echo", "ok", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job jobs[NNODES];
	fill(jobs, NNODES, echo);
	run(&o, jobs, NNODES); /* start the masters */
	o.timeout_ms = 1000;
	jobs[0].remote = slp;
	int64_t wall = run(&o, jobs, NNODES);
	assert_true(jobs[0].via_master);
	assert_int_equal(jobs[0].status, -1);
	assert_string_equal(jobs[0].error, "timed out after 1s");
	assert_true(jobs[0].elapsed_ms >= 1000 && jobs[0].elapsed_ms < 2000);
	for (int i = 1; i < NNODES; i++) {
		assert_ok(&jobs[i], "ok\n");
		assert_true(jobs[i].via_master);
	}
	assert_true(wall < 2500);
	jobs[0].remote = echo;
	run(&o, jobs, NNODES);
	for (int i = 0; i < NNODES; i++) {
		assert_ok(&jobs[i], "ok\n");
		assert_true(jobs[i].via_master);
	}
	assert_int_equal(masters(cdir, false), NNODES);
	release(jobs, NNODES);
	free(cdir);
}

/* A master that died left its socket: connecting is refused, the job starts ssh, which
 * replaces the socket with its own master; the next job goes through that. */
static void test_stale_socket(void **state)
{
	NEED_TESTBED();
	static const char *const echo[] = { "echo", "ok", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job j[1];
	struct stat st;
	fill(j, 1, echo);
	run(&o, j, 1);
	assert_ok(&j[0], "ok\n");
	char *sock = only_socket(cdir);
	kill_masters(cdir);
	assert_int_equal(lstat(sock, &st), 0);
	run(&o, j, 1);
	assert_ok(&j[0], "ok\n");
	assert_false(j[0].via_master);
	assert_int_equal(j[0].err.len, 0);
	run(&o, j, 1);
	assert_ok(&j[0], "ok\n");
	assert_true(j[0].via_master);
	release(j, 1);
	free(sock);
	free(cdir);
}

static void put_u32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

/* A stand-in master on the socket lfd: to the first client it says hello and refuses
 * the session (MUX_S_FAILURE), then waits for it to hang up; the second (ssh's own
 * try) it hangs up on at once. Exits 0 after both. */
static void refusing_master(int lfd)
{
	char msg[12 + 18];
	put_u32(msg, 8);
	put_u32(msg + 4, 0x00000001); /* MUX_MSG_HELLO */
	put_u32(msg + 8, 4);
	put_u32(msg + 12, 14);
	put_u32(msg + 16, 0x80000003); /* MUX_S_FAILURE */
	put_u32(msg + 20, 1);          /* request id */
	put_u32(msg + 24, 2);
	memcpy(msg + 28, "no", 2);
	alarm(20);
	for (int k = 0; k < 2; k++) {
		char buf[4096];
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(1);
		if (k == 0 && write(c, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			_exit(2);
		while (k == 0 && read(c, buf, sizeof(buf)) > 0)
			;
		close(c);
	}
	_exit(0);
}

/* A master that refuses the session (as one does past sshd's MaxSessions): nothing
 * ran, so the job starts ssh instead and succeeds. */
static void test_master_refuses(void **state)
{
	NEED_TESTBED();
	static const char *const echo[] = { "echo", "ok", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job j[1];
	fill(j, 1, echo);
	run(&o, j, 1);
	char *sock = only_socket(cdir);
	kill_masters(cdir);
	assert_int_equal(unlink(sock), 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		refusing_master(lfd);
	close(lfd);
	run(&o, j, 1);
	int st = -1;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_ok(&j[0], "ok\n");
	assert_false(j[0].via_master);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unlink(sock);
	release(j, 1);
	free(sock);
	free(cdir);
}

/* ssh_batch_*: jobs are handed out as they finish; freeing a batch stops what still
 * runs, through a master (hang up) and as an ssh process (killed). */
static void test_batch(void **state)
{
	NEED_TESTBED();
	static const char *const slow[] = { "sleep", "0.6", NULL }, *const mid[] = { "sleep", "0.2", NULL },
				 *const t[] = { "true", NULL }, *const long_[] = { "sleep", "10", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000), plain = opts(NULL, 0, 10000);
	struct ssh_job jobs[NNODES];
	struct ssh_batch *b = NULL;
	struct gerr *e = NULL;
	size_t k, order[NNODES];
	fill(jobs, NNODES, t);
	run(&o, jobs, NNODES); /* start the masters */
	jobs[0].remote = slow;
	jobs[1].remote = mid;
	assert_int_equal(ssh_batch_start(&o, jobs, NNODES, &b, &e), 0);
	for (int i = 0; i < NNODES; i++) {
		assert_int_equal(ssh_batch_next(b, &order[i], &e), 1);
		assert_ok(&jobs[order[i]], "");
	}
	assert_int_equal(ssh_batch_next(b, &k, &e), 0);
	ssh_batch_free(b);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[1], 1);
	assert_int_equal(order[2], 0);
	const struct ssh_opts *both[2] = { &o, &plain };
	for (int i = 0; i < 2; i++) {
		jobs[0].remote = long_;
		int64_t t0 = now_ms();
		assert_int_equal(ssh_batch_start(both[i], jobs, 1, &b, &e), 0);
		usleep(200000);
		ssh_batch_free(b);
		assert_int_equal(jobs[0].status, -1);
		assert_string_equal(jobs[0].error, "stopped: no longer needed");
		assert_true(now_ms() - t0 < 2000);
		assert_true(jobs[0].via_master == (i == 0));
	}
	assert_int_equal(ssh_batch_start(&o, jobs, 0, &b, &e), 0);
	assert_int_equal(ssh_batch_next(b, &k, &e), 0);
	ssh_batch_free(b);
	ssh_batch_free(NULL);
	assert_null(e);
	release(jobs, NNODES);
	free(cdir);
}

static void test_twenty_jobs_sequential_vs_parallel(void **state)
{
	NEED_TESTBED();
	static const char *const echo[] = { "echo", "x", NULL };
	enum { N = 20 };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 20000), plain = opts(NULL, 1, 20000);
	struct ssh_job jobs[N];
	fill(jobs, NNODES, echo);
	run(&o, jobs, NNODES); /* warm */
	release(jobs, NNODES);
	fill(jobs, N, echo);
	int64_t walls[4];
	const char *what[4] = { "no ControlMaster, parallel 1", "warm, parallel 1",
				"warm, parallel 16", "no ControlMaster, parallel 16" };
	walls[0] = run(&plain, jobs, N);
	plain.parallel = 16;
	walls[3] = run(&plain, jobs, N);
	for (int i = 0; i < N; i++)
		assert_ok(&jobs[i], "x\n");
	o.parallel = 1;
	walls[1] = run(&o, jobs, N);
	o.parallel = 16;
	walls[2] = run(&o, jobs, N);
	for (int i = 0; i < N; i++)
		assert_ok(&jobs[i], "x\n");
	for (int k = 0; k < 4; k++)
		printf("# 20 x echo, %s: %lld ms (%.1f ms/job)\n", what[k], (long long)walls[k],
		       (double)walls[k] / N);
	/* big margins only: warm parallel vs warm sequential is printed, not asserted */
	assert_true(walls[1] * 2 < walls[0]);
	assert_true(walls[3] * 2 < walls[0]);
	release(jobs, N);
	free(cdir);
}

static void test_destination_forms(void **state)
{
	NEED_TESTBED();
	static const char *const echo[] = { "echo", "ok", NULL };
	char *good[3] = { xasprintf("root@%s:22", tb.addr[0]), xasprintf("root@[%s]:22", tb.addr[1]),
			  xasprintf("[%s]", tb.addr[2]) };
	const char *bad[] = { "-oProxyCommand=touch /tmp/x", "node1:0", "node1:99999",
			      "node1:22x", "a b", "", "root@", "@node1", "[node1", "[]:22",
			      "root@-x", "node1;id", "node1\n" };
	enum { NB = ARRAY_SIZE(bad) };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 10000);
	struct ssh_job jobs[3 + NB];
	fill(jobs, 3 + NB, echo);
	for (int i = 0; i < 3; i++)
		jobs[i].dest = good[i];
	for (size_t i = 0; i < NB; i++)
		jobs[3 + i].dest = bad[i];
	run(&o, jobs, 3 + NB);
	for (int i = 0; i < 3; i++)
		assert_ok(&jobs[i], "ok\n");
	for (size_t i = 3; i < 3 + NB; i++) {
		assert_int_equal(jobs[i].status, -1);
		assert_non_null(jobs[i].error);
		assert_true(str_has_prefix(jobs[i].error, "invalid destination"));
		assert_int_equal(jobs[i].elapsed_ms, 0);
	}
	release(jobs, 3 + NB);
	for (int i = 0; i < 3; i++)
		free(good[i]);
	free(cdir);
}

static void test_output_cap(void **state)
{
	NEED_TESTBED();
	static const char *const big[] = { "head", "-c", "73400320", "/dev/zero", NULL };
	char *cdir = new_cdir();
	struct ssh_opts o = opts(cdir, 0, 20000);
	struct ssh_job j[1];
	fill(j, 1, big);
	int64_t wall = run(&o, j, 1);
	assert_int_equal(j[0].status, 0);
	assert_int_equal(j[0].out.len, 64u << 20);
	assert_string_equal(j[0].error, "output larger than 64 MiB, cut there");
	printf("# 70 MiB of output (64 kept): %lld ms\n", (long long)wall);
	release(j, 1);
	free(cdir);
}

/* No testbed needed: options that stop the run before any ssh starts. */
static void test_bad_options(void **state)
{
	static const char *const t[] = { "true", NULL };
	struct ssh_job j[1] = { { .name = "x", .dest = "x", .remote = t } };
	struct gerr *e = NULL;
	char long_dir[80];
	memset(long_dir, 'a', sizeof(long_dir) - 1);
	long_dir[0] = '/';
	long_dir[sizeof(long_dir) - 1] = '\0';
	struct ssh_opts o = { .control_dir = long_dir };
	assert_int_equal(ssh_run_all(&o, j, 1, &e), -1);
	assert_non_null(strstr(e->msg, "too long for socket paths"));
	assert_int_equal(j[0].status, -1);
	gerr_clear(&e);
	o.control_dir = "/tmp/has space";
	assert_int_equal(ssh_run_all(&o, j, 1, &e), -1);
	assert_true(str_has_prefix(e->msg, "control directory '/tmp/has space'"));
	gerr_clear(&e);
	o = (struct ssh_opts){ .ssh = "/nonexistent/ssh" };
	assert_int_equal(ssh_run_all(&o, j, 1, &e), -1);
	assert_string_equal(e->msg, "/nonexistent/ssh: command not found");
	gerr_clear(&e);
	assert_int_equal(ssh_run_all(&o, j, 0, &e), 0);
	assert_null(e);
	j[0].remote = NULL;
	o.ssh = NULL;
	assert_int_equal(ssh_run_all(&o, j, 1, &e), 0);
	assert_string_equal(j[0].error, "no remote command");
	ssh_job_release(&j[0]);
	ssh_job_release(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_echo_three_nodes),
		cmocka_unit_test(test_quoting_empty_and_odd_words),
		cmocka_unit_test(test_cat_1mib_round_trip),
		cmocka_unit_test(test_stdin_unread_and_empty),
		cmocka_unit_test(test_cold_race_same_node),
		cmocka_unit_test(test_exit_status_passthrough),
		cmocka_unit_test(test_unreachable_with_reason),
		cmocka_unit_test(test_timeout_does_not_delay_others),
		cmocka_unit_test(test_parallel_limit),
		cmocka_unit_test(test_host_key_mismatch),
		cmocka_unit_test(test_host_key_unknown_strict_vs_accept_new),
		cmocka_unit_test(test_warm_control_master),
		cmocka_unit_test(test_through_master),
		cmocka_unit_test(test_timeout_through_master),
		cmocka_unit_test(test_stale_socket),
		cmocka_unit_test(test_master_refuses),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_twenty_jobs_sequential_vs_parallel),
		cmocka_unit_test(test_destination_forms),
		cmocka_unit_test(test_output_cap),
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
