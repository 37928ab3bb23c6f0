/* test_image.c: runtime/image.c against the testbed's registry (pull policies, errors, unpack), then runc running a bundle made with oci_config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"

/* Needs root, skopeo, umoci, runc, ip and tests/testbed (run from the top of the tree,
 * as tests/run-all does); the tests that need them are skipped otherwise. */

struct fx {
	char *dir;          /* temp dir: state/, run/, tb/ (the testbed), pod/, runc/ */
	char *registry;     /* host:port, NULL when the testbed is not up */
	struct node_paths paths;
	bool tb_up;
};
static struct fx F;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *const *argv, struct sbuf *out)
{
	struct sbuf errb = SBUF_INIT, dropped = SBUF_INIT;
	struct child c = { .argv = argv, .out = out ? out : &dropped, .errb = &errb, .timeout_ms = 120000 };
	int st = child_run(&c, NULL);
	if (st != 0)
		print_message("# %s exited %d: %s\n", argv[0], st, errb.buf);
	sb_release(&errb);
	sb_release(&dropped);
	return st;
}

static bool have_tools(void)
{
	const char *tools[] = { "skopeo", "umoci", "runc", "ip" };
	for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
		char *p = which(tools[i]);
		if (!p)
			return false;
		free(p);
	}
	return getuid() == 0 && access("tests/testbed/up", X_OK) == 0;
}

/* REGISTRY=... from the testbed's env file. */
static char *env_value(const char *file, const char *key)
{
	struct sbuf sb = SBUF_INIT;
	char *v = NULL;
	if (sb_read_file(&sb, file, 1 << 16, NULL) == 0) {
		char *want = xasprintf("\n%s=", key), *at = strstr(sb.buf, want);
		if (at)
			v = xstrndup(at + strlen(want), strcspn(at + strlen(want), "\n"));
		free(want);
	}
	sb_release(&sb);
	return v;
}

static int group_setup(void **state)
{
	char tmpl[] = "/tmp/test_image.XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	F.dir = xstrdup(tmpl);
	char *state_dir = xasprintf("%s/state", F.dir), *run_dir = xasprintf("%s/run", F.dir);
	struct node_opts o = { .state_dir = state_dir, .run_dir = run_dir };
	int r = node_paths_init(&F.paths, &o, NULL);
	free(state_dir);
	free(run_dir);
	if (r < 0 || !have_tools())
		return r;
	char *tb = xasprintf("%s/tb", F.dir), *env = xasprintf("%s/tb/env", F.dir);
	const char *argv[] = { "tests/testbed/up", "1", "--dir", tb, NULL };
	F.tb_up = true; /* down is idempotent: run it even after a partial up */
	if (run(argv, NULL) == 0)
		F.registry = env_value(env, "REGISTRY");
	if (F.registry)
		setenv("GITOPS_INSECURE_REGISTRIES", F.registry, 1);
	free(tb);
	free(env);
	return 0;
}

static int group_teardown(void **state)
{
	if (F.tb_up) {
		char *tb = xasprintf("%s/tb", F.dir);
		const char *argv[] = { "tests/testbed/down", "--dir", tb, NULL };
		run(argv, NULL);
		free(tb);
	}
	rm_rf(F.dir);
	node_paths_release(&F.paths);
	free(F.dir);
	free(F.registry);
	return 0;
}

static void need_registry(void)
{
	if (!F.registry) {
		print_message("# skipped: needs root, skopeo, umoci, runc, ip and tests/testbed (run from the top)\n");
		skip();
	}
}

static char *img(const char *tag)
{
	return xasprintf("%s/busybox:%s", F.registry, tag);
}

static void ensure_ok(const char *image, const char *policy, struct image_ref *ref)
{
	struct gerr *e = NULL;
	if (image_ensure(&F.paths, image, policy, NULL, ref, &e) < 0)
		fail_msg("image_ensure %s %s: %s", image, policy, e->msg);
}

static struct gerr *ensure_fails(const char *image, const char *policy)
{
	struct image_ref ref;
	struct gerr *e = NULL;
	assert_int_equal(image_ensure(&F.paths, image, policy, NULL, &ref, &e), -1);
	assert_non_null(e);
	assert_null(ref.layout);
	return e;
}

/* ---- names (no registry needed: a hand-made index.json stands for the pull) ---- */

static void fake_layout(const char *rel, const char *ref)
{
	char *dir = xasprintf("%s/%s", F.paths.images, rel), *index = xasprintf("%s/index.json", dir);
	char *text = xasprintf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			       "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%064d\","
			       "\"size\":1,\"annotations\":{\"org.opencontainers.image.ref.name\":\"%s\"}}]}", 7, ref);
	assert_int_equal(mkdir_p(dir, 0700, NULL), 0);
	assert_int_equal(write_file_atomic(index, text, strlen(text), 0644, NULL), 0);
	free(dir);
	free(index);
	free(text);
}

static void name_case(const char *image, const char *rel, const char *ref)
{
	struct image_ref r;
	fake_layout(rel, ref);
	ensure_ok(image, "IfNotPresent", &r);
	char *layout = xasprintf("%s/%s", F.paths.images, rel);
	assert_string_equal(r.layout, layout);
	assert_string_equal(r.tag, ref);
	assert_string_equal(r.digest, "sha256:0000000000000000000000000000000000000000000000000000000000000007");
	free(layout);
	image_ref_release(&r);
}

static void test_names(void **state)
{
	const char *dg = "sha256:1b3f9b6a7c0d2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";
	char *by_digest = xasprintf("reg.example:5000/a/b:ignored@%s", dg);
	name_case("busybox", "docker.io/library/busybox", "latest");
	name_case("docker.io/busybox:1.36", "docker.io/library/busybox", "1.36");
	name_case("index.docker.io/library/busybox:1.36", "docker.io/library/busybox", "1.36");
	name_case("bitnami/redis:7", "docker.io/bitnami/redis", "7");
	name_case("quay.io/org/app:v1.2_3", "quay.io/org/app", "v1.2_3");
	name_case("localhost:5000/app", "localhost_5000/app", "latest");
	name_case("localhost/app:x", "localhost/app", "x");
	name_case(by_digest, "reg.example_5000/a/b", "sha256-1b3f9b6a7c0d2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f");
	free(by_digest);
	const char *bad[] = { "Busybox", "../x", "a//b", "a b", "busybox:", "x@sha256:abc", "reg:5000/../x",
			      "reg:5000/.x", "busybox:-t", "", "x@md5:00" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct gerr *e = ensure_fails(bad[i], "IfNotPresent");
		assert_non_null(strstr(e->msg, "invalid image"));
		gerr_free(e);
	}
	struct gerr *e = ensure_fails("busybox", "Sometimes");
	assert_string_equal(e->msg, "unknown imagePullPolicy Sometimes");
	gerr_free(e);
}

/* ---- pulls ------------------------------------------------------------------ */

static void test_pull(void **state)
{
	need_registry();
	struct image_ref r;
	char *image = img("test");
	double t0 = now_s();
	ensure_ok(image, "IfNotPresent", &r);
	print_message("# pull %s: %.3f s\n", image, now_s() - t0);
	assert_true(str_has_prefix(r.digest, "sha256:") && strlen(r.digest) == 71);
	assert_string_equal(r.tag, "test");
	char *index = xasprintf("%s/index.json", r.layout);
	assert_int_equal(access(index, F_OK), 0);
	free(index);

	/* IfNotPresent again copies nothing: with no skopeo in PATH it still succeeds */
	char *path = xstrdup(getenv("PATH"));
	setenv("PATH", "/nonexistent", 1);
	struct image_ref again;
	ensure_ok(image, "IfNotPresent", &again);
	assert_string_equal(again.digest, r.digest);
	image_ref_release(&again);
	ensure_ok(image, "Never", &again);
	assert_string_equal(again.digest, r.digest);
	image_ref_release(&again);
	struct gerr *e = ensure_fails(image, "Always"); /* Always does run skopeo */
	setenv("PATH", path, 1);
	gerr_free(e);
	free(path);

	/* Always when present: a fresh copy, same digest */
	ensure_ok(image, "Always", &again);
	assert_string_equal(again.digest, r.digest);
	image_ref_release(&again);
	image_ref_release(&r);
	free(image);
}

/* registryMirrors: "busybox:test" (docker.io) comes from the mirror, keeps its name */
static void test_mirror(void **state)
{
	need_registry();
	char *mirrors = xasprintf("quay.io=127.0.0.1:1,docker.io=%s", F.registry);
	setenv("GITOPS_REGISTRY_MIRRORS", mirrors, 1);
	struct image_ref r, direct;
	ensure_ok("busybox:test", "Always", &r);
	unsetenv("GITOPS_REGISTRY_MIRRORS");
	char *layout = xasprintf("%s/docker.io/library/busybox", F.paths.images);
	assert_string_equal(r.layout, layout);
	char *image = img("test");
	ensure_ok(image, "IfNotPresent", &direct);
	assert_string_equal(r.digest, direct.digest);
	/* without the mirror, docker.io is out of reach here: the pull fails */
	struct gerr *e = ensure_fails("busybox:nomirror", "Always");
	gerr_free(e);
	image_ref_release(&r);
	image_ref_release(&direct);
	free(image);
	free(layout);
	free(mirrors);
}

static void test_pull_errors(void **state)
{
	need_registry();
	char *v1 = img("v1"), *nope = img("nope");
	struct gerr *e = ensure_fails(v1, "Never");
	char *want = xasprintf("ErrImageNeverPull: container image \"%s\" is not present with pull policy of Never", v1);
	assert_string_equal(e->msg, want);
	free(want);
	gerr_free(e);

	e = ensure_fails(nope, NULL);
	assert_int_equal(e->code, GERR_FAIL);
	print_message("# missing tag: %s\n", e->msg);
	assert_non_null(strstr(e->msg, "manifest unknown"));
	assert_null(strchr(e->msg, '\n'));
	assert_false(str_has_prefix(e->msg, "time="));
	gerr_free(e);
	free(v1);
	free(nope);

	/* an unreachable registry fails with skopeo's reason, not a hang */
	e = ensure_fails("127.0.0.1:1/nothing:here", "Always");
	assert_non_null(strstr(e->msg, "connection refused"));
	gerr_free(e);
}

static size_t count_auth_files(void)
{
	DIR *d = opendir(F.paths.run);
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += str_has_prefix(de->d_name, "auth-");
	if (d)
		closedir(d);
	return n;
}

static void test_versions_and_auth(void **state)
{
	need_registry();
	char *v1 = img("v1"), *v2 = img("v2");
	struct image_ref r1, r2;
	struct gerr *e = NULL;
	const char *auth = "{\"auths\":{\"example.org\":{\"auth\":\"dXNlcjpwYXNz\"}}}";
	assert_int_equal(image_ensure(&F.paths, v1, "Always", auth, &r1, &e), 0);
	assert_int_equal(count_auth_files(), 0);
	ensure_ok(v2, "Always", &r2);
	assert_string_equal(r1.layout, r2.layout); /* one layout per repository */
	assert_string_not_equal(r1.digest, r2.digest);
	image_ref_release(&r1);
	image_ref_release(&r2);
	free(v1);
	free(v2);
}

/* Shims pulling into one layout at once: every pull succeeds and index.json keeps
 * every reference (without the lock, skopeo's read-modify-write of it loses some). */
static void test_concurrent_pulls(void **state)
{
	need_registry();
	struct image_ref r;
	char *v1 = img("v1");
	ensure_ok(v1, "IfNotPresent", &r);
	char *refs[4] = { img("test"), v1, img("v2"), xasprintf("%s/busybox@%s", F.registry, r.digest) };
	pid_t pids[8];
	for (int i = 0; i < 8; i++) {
		if ((pids[i] = fork()) == 0) {
			struct image_ref mine;
			_exit(image_ensure(&F.paths, refs[i % 4], "Always", NULL, &mine, NULL) == 0 ? 0 : 1);
		}
		assert_true(pids[i] > 0);
	}
	for (int i = 0; i < 8; i++) {
		int st = -1;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	char *digest_ref = xasprintf("sha256-%s", r.digest + 7);
	const char *want[] = { "test", "v1", "v2", digest_ref };
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		struct image_ref got;
		ensure_ok(refs[i], "Never", &got);
		assert_string_equal(got.tag, want[i]);
		image_ref_release(&got);
	}
	free(digest_ref);
	for (size_t i = 0; i < ARRAY_SIZE(refs); i++)
		free(refs[i]);
	image_ref_release(&r);
}

/* ---- unpack ----------------------------------------------------------------- */

static void test_unpack(void **state)
{
	need_registry();
	struct image_ref r;
	char *image = img("test"), *bundle = xasprintf("%s/bundle", F.dir);
	ensure_ok(image, "IfNotPresent", &r);
	json_t *cfg = NULL;
	struct gerr *e = NULL;
	double t0 = now_s();
	if (image_unpack(&F.paths, &r, bundle, &cfg, &e) < 0)
		fail_msg("image_unpack: %s", e->msg);
	print_message("# unpack %s: %.3f s\n", image, now_s() - t0);
	char *bb = xasprintf("%s/rootfs/bin/busybox", bundle), *marker = xasprintf("%s/rootfs/marker", bundle);
	assert_int_equal(access(bb, X_OK), 0);
	char *want = "{\"Cmd\": [\"sh\"], \"Env\": [\"PATH=/bin\"]}";
	json_t *w = json_loads(want, 0, NULL);
	json_object_del(cfg, "WorkingDir"); /* umoci's images may carry an empty one */
	if (!json_equal(cfg, w))
		fail_msg("image config: %s", json_dumps(cfg, JSON_COMPACT));
	json_decref(w);
	json_decref(cfg);

	/* unpacking again replaces the rootfs and leaves nothing else behind, not even
	 * what a crashed unpack left */
	assert_int_equal(write_file_atomic(marker, "x", 1, 0644, NULL), 0);
	char *stale = xasprintf("%s/.unpack-crashed/rootfs/bin", bundle);
	assert_int_equal(mkdir_p(stale, 0755, NULL), 0);
	free(stale);
	t0 = now_s();
	assert_int_equal(image_unpack(&F.paths, &r, bundle, NULL, NULL), 0);
	print_message("# unpack again: %.3f s\n", now_s() - t0);
	assert_int_equal(access(bb, X_OK), 0);
	assert_int_equal(access(marker, F_OK), -1);
	DIR *d = opendir(bundle);
	struct dirent *de;
	while ((de = readdir(d)))
		assert_true(de->d_name[0] == '.' ? !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")
						 : !strcmp(de->d_name, "rootfs"));
	closedir(d);
	free(bb);
	free(marker);
	free(bundle);
	free(image);
	image_ref_release(&r);
}

/* ---- runc ------------------------------------------------------------------- */

static const char *POD_JSON =
	"{\"uid\": \"0123456789abcdef\", \"namespace\": \"default\", \"name\": \"web-1\","
	" \"labels\": {\"app\": \"web\"}, \"node\": \"node1\", \"podIP\": \"10.244.1.7\","
	" \"spec\": {\"volumes\": [{\"name\": \"data\", \"emptyDir\": {}}],"
	"   \"containers\": [{\"name\": \"main\"}]},"
	" \"configMaps\": {\"cfg\": {\"data\": {\"greeting\": \"hello\"}}}}";

static const char *CONTAINER_JSON =
	"{\"name\": \"main\", \"command\": [\"sh\", \"-c\", \"echo hi; echo $GREETING $(POD); cat /etc/hostname /data/f; id -u\"],"
	" \"env\": [{\"name\": \"GREETING\", \"valueFrom\": {\"configMapKeyRef\": {\"name\": \"cfg\", \"key\": \"greeting\"}}},"
	"   {\"name\": \"POD\", \"valueFrom\": {\"fieldRef\": {\"fieldPath\": \"metadata.name\"}}}],"
	" \"resources\": {\"limits\": {\"memory\": \"64Mi\", \"cpu\": \"500m\"}},"
	" \"securityContext\": {\"runAsUser\": 1000},"
	" \"volumeMounts\": [{\"name\": \"data\", \"mountPath\": \"/data\", \"readOnly\": true}]}";

static void write_text(const char *dir, const char *rel, const char *text)
{
	char *path = xasprintf("%s/%s", dir, rel);
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
	free(path);
}

/* The pod's directory as node.c lays it out, with a bundle for container "main". */
static char *make_pod(const char *netns_path, json_t **ret_pod)
{
	char *pod_dir = xasprintf("%s/pods/web-1", F.dir);
	char *etc = xasprintf("%s/etc", pod_dir), *vol = xasprintf("%s/volumes/data", pod_dir);
	assert_int_equal(mkdir_p(etc, 0755, NULL), 0);
	assert_int_equal(mkdir_p(vol, 0755, NULL), 0);
	write_text(etc, "hosts", "127.0.0.1 localhost\n10.244.1.7 web-1\n");
	write_text(etc, "resolv.conf", "nameserver 10.96.0.10\n");
	write_text(etc, "hostname", "web-1\n");
	write_text(vol, "f", "from the volume\n");
	*ret_pod = json_loads(POD_JSON, 0, NULL);
	json_object_set_new(*ret_pod, "netns", json_string(netns_path));
	json_object_set_new(*ret_pod, "podDir", json_string(pod_dir));
	free(etc);
	free(vol);
	return pod_dir;
}

static void remove_cgroups(const char *uid)
{
	DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char *leaf = xasprintf("/sys/fs/cgroup/%s/gitops/%s", de->d_name, uid);
		char *top = xasprintf("/sys/fs/cgroup/%s/gitops", de->d_name);
		rmdir(leaf); /* runc removed .../main; the parents are ours to remove */
		rmdir(top);  /* only when empty: other pods may use it */
		free(leaf);
		free(top);
	}
	if (d)
		closedir(d);
}

/* Pull, unpack and write config.json for the pod's container "main". */
static int make_bundle(json_t *pod, const char *pod_dir, const char *bundle, struct gerr **err)
{
	json_t *spec = json_pack("{s:o,s:{}}", "container", json_loads(CONTAINER_JSON, 0, NULL), "env");
	json_t *image_cfg = NULL, *config = NULL;
	char *rootfs = xasprintf("%s/rootfs", bundle), *cfg_path = xasprintf("%s/config.json", bundle);
	char *image = img("test");
	struct image_ref r;
	bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
	struct oci_input in = { pod, spec, NULL, rootfs, pod_dir, v2 ? 2 : 1 };
	int ok = image_ensure(&F.paths, image, "IfNotPresent", NULL, &r, err);
	if (ok == 0)
		ok = image_unpack(&F.paths, &r, bundle, &image_cfg, err);
	in.image_config = image_cfg;
	if (ok == 0)
		ok = oci_config(&in, &config, err);
	if (ok == 0)
		ok = json_save_atomic(cfg_path, config, 0644, err);
	image_ref_release(&r);
	json_decref(spec);
	json_decref(image_cfg);
	json_decref(config);
	free(rootfs);
	free(cfg_path);
	free(image);
	return ok;
}

static void test_runc_run(void **state)
{
	need_registry();
	char *uid = xasprintf("7e57%012x", (unsigned)getpid()), *id = xasprintf("%s-main", uid);
	char *ns = xasprintf("gitops-test-%s", uid), *ns_path = xasprintf("/run/netns/%s", ns);
	char *runc_root = xasprintf("%s/runc", F.dir);
	json_t *pod;
	char *pod_dir = make_pod(ns_path, &pod), *bundle = xasprintf("%s/containers/main/bundle", pod_dir);
	json_object_set_new(pod, "uid", json_string(uid));
	struct gerr *e = NULL;
	int ok = make_bundle(pod, pod_dir, bundle, &e);

	const char *add[] = { "ip", "netns", "add", ns, NULL }, *del[] = { "ip", "netns", "delete", ns, NULL };
	const char *runc[] = { "runc", "--root", runc_root, "run", "--bundle", bundle, id, NULL };
	const char *rm[] = { "runc", "--root", runc_root, "delete", "--force", id, NULL };
	struct sbuf out = SBUF_INIT, quiet = SBUF_INIT;
	int st = -1;
	if (ok == 0 && run(add, NULL) == 0) {
		double t0 = now_s();
		st = run(runc, &out);
		print_message("# runc run: %.3f s, status %d\n", now_s() - t0, st);
		struct child c = { .argv = rm, .errb = &quiet }; /* nothing left after a clean run */
		child_run(&c, NULL);
		run(del, NULL);
		remove_cgroups(uid);
	}
	if (ok < 0)
		fail_msg("making the bundle: %s", e->msg);
	assert_int_equal(st, 0);
	assert_string_equal(out.buf, "hi\nhello web-1\nweb-1\nfrom the volume\n1000\n");
	sb_release(&out);
	sb_release(&quiet);
	json_decref(pod);
	free(uid);
	free(id);
	free(ns);
	free(ns_path);
	free(runc_root);
	free(pod_dir);
	free(bundle);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_pull),
		cmocka_unit_test(test_mirror),
		cmocka_unit_test(test_pull_errors),
		cmocka_unit_test(test_versions_and_auth),
		cmocka_unit_test(test_concurrent_pulls),
		cmocka_unit_test(test_unpack),
		cmocka_unit_test(test_runc_run),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
