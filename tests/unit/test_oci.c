/* test_oci.c: golden tests of runtime/oci.c — a container's env, args and runc config.json from sample pod.json/spec.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/internal.h"

/* ---- helpers ---------------------------------------------------------------- */

/* JSON written with ' for " (and ` for ') to keep samples readable. */
static json_t *J(const char *text)
{
	char *s = xstrdup(text);
	for (char *p = s; *p; p++)
		*p = *p == '\'' ? '"' : *p == '`' ? '\'' : *p;
	json_error_t je;
	json_t *v = json_loads(s, 0, &je);
	if (!v)
		fail_msg("bad sample JSON at %d:%d: %s", je.line, je.column, je.text);
	free(s);
	return v;
}

/* Compare a JSON value with a sample written for J(). */
static void assert_json(const json_t *got, const char *want_text)
{
	json_t *want = J(want_text);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
		char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
		print_error("got:  %s\nwant: %s\n", g, w);
		free(g);
		free(w);
		json_decref(want);
		fail();
	}
	json_decref(want);
}

static const char *POD =
	"{'uid': '3f2a9c4e1b7d6a08', 'namespace': 'shop', 'name': 'web-5d8f7-abcde',"
	" 'labels': {'app': 'web', 'tier': 'front'}, 'annotations': {'note': 'hello'},"
	" 'node': 'node1', 'podIP': '10.244.1.7', 'hostIP': '10.213.1.2',"
	" 'netns': '/run/netns/gitops-3f2a9c4e1b7d6a08',"
	" 'spec': {'serviceAccountName': 'web-sa',"
	"   'securityContext': {'fsGroup': 2000, 'supplementalGroups': [3000],"
	"     'sysctls': [{'name': 'net.ipv4.ip_unprivileged_port_start', 'value': '0'}]},"
	"   'volumes': [{'name': 'data', 'emptyDir': {}}, {'name': 'cfg', 'configMap': {'name': 'web-config'}}],"
	"   'containers': [{'name': 'web'}, {'name': 'sidecar', 'resources': {'limits': {'memory': '64Mi'}}}]},"
	" 'configMaps': {'web-config': {'data': {'mode': 'prod', 'color': 'blue', 'bad key': 'x', '1st': 'y'}}},"
	" 'secrets': {'db': {'data': {'password': 'czNjcjN0', 'user': 'YWRtaW4='}}}}";

static const char *CONTAINER =
	"{'name': 'web', 'image': '10.213.1.1:5000/busybox:test',"
	" 'envFrom': [{'configMapRef': {'name': 'web-config'}, 'prefix': 'CFG_'},"
	"   {'secretRef': {'name': 'db'}}, {'configMapRef': {'name': 'absent', 'optional': true}}],"
	" 'env': ["
	"   {'name': 'GREETING', 'value': 'hi $(CFG_mode)'},"
	"   {'name': 'FOO', 'value': 'from-pod'},"
	"   {'name': 'REF', 'value': '$(GREETING)/$$(GREETING)/$(NOPE)/$(PATH)/$(SVC_HOST)/a$b/$(unclosed'},"
	"   {'name': 'POD_NAME', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}},"
	"   {'name': 'POD_NS', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.namespace'}}},"
	"   {'name': 'POD_UID', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.uid'}}},"
	"   {'name': 'APP', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.labels[`app`]'}}},"
	"   {'name': 'NOTE', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.annotations[`note`]'}}},"
	"   {'name': 'NO_LABEL', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.labels[`gone`]'}}},"
	"   {'name': 'NODE', 'valueFrom': {'fieldRef': {'fieldPath': 'spec.nodeName'}}},"
	"   {'name': 'SA', 'valueFrom': {'fieldRef': {'fieldPath': 'spec.serviceAccountName'}}},"
	"   {'name': 'POD_IP', 'valueFrom': {'fieldRef': {'fieldPath': 'status.podIP'}}},"
	"   {'name': 'HOST_IP', 'valueFrom': {'fieldRef': {'fieldPath': 'status.hostIP'}}},"
	"   {'name': 'CPU_LIMIT', 'valueFrom': {'resourceFieldRef': {'resource': 'limits.cpu', 'divisor': '1m'}}},"
	"   {'name': 'MEM_LIMIT', 'valueFrom': {'resourceFieldRef': {'resource': 'limits.memory', 'divisor': '1Mi'}}},"
	"   {'name': 'CPU_REQ', 'valueFrom': {'resourceFieldRef': {'resource': 'requests.cpu'}}},"
	"   {'name': 'SIDE_MEM', 'valueFrom': {'resourceFieldRef': {'containerName': 'sidecar', 'resource': 'limits.memory'}}},"
	"   {'name': 'MODE', 'valueFrom': {'configMapKeyRef': {'name': 'web-config', 'key': 'mode'}}},"
	"   {'name': 'OPT', 'valueFrom': {'configMapKeyRef': {'name': 'web-config', 'key': 'nope', 'optional': true}}},"
	"   {'name': 'OPT2', 'valueFrom': {'secretKeyRef': {'name': 'gone', 'key': 'k', 'optional': true}}},"
	"   {'name': 'PASSWORD', 'valueFrom': {'secretKeyRef': {'name': 'db', 'key': 'password'}}},"
	"   {'name': 'EMPTY', 'value': ''},"
	"   {'name': 'FOO', 'value': 'second $(FOO)'}],"
	" 'resources': {'limits': {'cpu': '1500m', 'memory': '128Mi'}, 'requests': {'cpu': '250m', 'memory': '64Mi'}},"
	" 'volumeMounts': [{'name': 'cfg', 'mountPath': '/etc/web', 'readOnly': true},"
	"   {'name': 'data', 'mountPath': '/data/cache/x', 'subPath': 'cache/$(NOT_EXPANDED)'},"
	"   {'name': 'data', 'mountPath': '/data'},"
	"   {'name': 'data', 'mountPath': '/srv/$(POD_NAME)', 'subPathExpr': 'pods/$(POD_NAME)'}],"
	" 'workingDir': '/data',"
	" 'securityContext': {'runAsUser': 1000, 'runAsGroup': 1001, 'allowPrivilegeEscalation': false,"
	"   'capabilities': {'add': ['NET_ADMIN'], 'drop': ['MKNOD', 'CAP_NET_RAW']}}}";

static const char *IMAGE = "{'Env': ['PATH=/bin', 'FOO=img', 'IMAGE_VERSION=v1'], 'Cmd': ['sh'], 'WorkingDir': '/img'}";

struct fx {
	json_t *pod, *spec, *image;
	char *dir;     /* temp dir: pod_dir = dir/pod, rootfs = dir/rootfs */
	char *pod_dir, *rootfs;
};

static json_t *spec_of(const char *container)
{
	json_t *spec = J("{'env': {'SVC_HOST': '10.96.0.12', 'FOO': 'ctl', 'GREETING': 'ctl'}, 'hash': 'h', 'init': false, 'index': 0}");
	json_object_set_new(spec, "container", J(container));
	return spec;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test_oci.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	f->dir = realpath(tmpl, NULL);
	f->pod_dir = xasprintf("%s/pod", f->dir);
	f->rootfs = xasprintf("%s/rootfs", f->dir);
	char *data = xasprintf("%s/volumes/data", f->pod_dir);
	assert_int_equal(mkdir_p(data, 0755, NULL), 0);
	free(data);
	f->pod = J(POD);
	json_object_set_new(f->pod, "podDir", json_string(f->pod_dir));
	f->spec = spec_of(CONTAINER);
	f->image = J(IMAGE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	const char *argv[] = { "rm", "-rf", f->dir, NULL };
	struct child c = { .argv = argv };
	child_run(&c, NULL);
	json_decref(f->pod);
	json_decref(f->spec);
	json_decref(f->image);
	free(f->dir);
	free(f->pod_dir);
	free(f->rootfs);
	free(f);
	return 0;
}

static json_t *container_of(struct fx *f)
{
	return json_object_get(f->spec, "container");
}

static json_t *config_ok(struct fx *f, int cgroup_version)
{
	struct oci_input in = { f->pod, f->spec, f->image, f->rootfs, f->pod_dir, cgroup_version };
	json_t *cfg = NULL;
	struct gerr *e = NULL;
	int r = oci_config(&in, &cfg, &e);
	if (r < 0)
		fail_msg("oci_config: %s", e->msg);
	return cfg;
}

static void config_fails(struct fx *f, const char *want_msg)
{
	struct oci_input in = { f->pod, f->spec, f->image, f->rootfs, f->pod_dir, 1 };
	json_t *cfg = NULL;
	struct gerr *e = NULL;
	assert_int_equal(oci_config(&in, &cfg, &e), -1);
	assert_null(cfg);
	assert_non_null(e);
	assert_string_equal(e->msg, want_msg);
	gerr_free(e);
}

static json_t *env_ok(struct fx *f)
{
	json_t *env = NULL;
	struct gerr *e = NULL;
	if (oci_env(f->pod, f->spec, f->image, &env, &e) < 0)
		fail_msg("oci_env: %s", e->msg);
	return env;
}

static void env_fails(struct fx *f, const char *want_msg)
{
	json_t *env = NULL;
	struct gerr *e = NULL;
	assert_int_equal(oci_env(f->pod, f->spec, f->image, &env, &e), -1);
	assert_null(env);
	assert_string_equal(e->msg, want_msg);
	gerr_free(e);
}

/* Replace the container's env list by one entry. */
static void set_env(struct fx *f, const char *entry)
{
	json_t *c = container_of(f);
	json_object_del(c, "envFrom");
	json_object_set_new(c, "env", J(entry));
}

static void write_file(const char *dir, const char *rel, const char *text)
{
	char *path = xasprintf("%s/%s", dir, rel);
	char *parent = xstrdup(path);
	*strrchr(parent, '/') = '\0';
	assert_int_equal(mkdir_p(parent, 0755, NULL), 0);
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
	free(parent);
	free(path);
}

/* ---- env -------------------------------------------------------------------- */

static void test_env_order_and_sources(void **state)
{
	struct fx *f = *state;
	json_t *env = env_ok(f);
	assert_json(env, "["
		"'PATH=/bin', 'HOSTNAME=web-5d8f7-abcde', 'FOO=second from-pod', 'IMAGE_VERSION=v1',"
		"'CFG_mode=prod', 'CFG_color=blue', 'CFG_1st=y', 'password=s3cr3t', 'user=admin',"
		"'GREETING=hi prod',"
		"'REF=hi prod/$(GREETING)/$(NOPE)/$(PATH)/10.96.0.12/a$b/$(unclosed',"
		"'POD_NAME=web-5d8f7-abcde', 'POD_NS=shop', 'POD_UID=3f2a9c4e1b7d6a08', 'APP=web',"
		"'NOTE=hello', 'NO_LABEL=', 'NODE=node1', 'SA=web-sa', 'POD_IP=10.244.1.7',"
		"'HOST_IP=10.213.1.2', 'CPU_LIMIT=1500', 'MEM_LIMIT=128', 'CPU_REQ=1',"
		"'SIDE_MEM=67108864', 'MODE=prod', 'PASSWORD=s3cr3t', 'EMPTY=', 'SVC_HOST=10.96.0.12']");
	json_decref(env);
}

static void test_env_expansion_rules(void **state)
{
	struct fx *f = *state;
	set_env(f, "[{'name': 'A', 'value': 'x'}, {'name': 'B', 'value': '$(A)$(A)-$$-$$$(A)-$-$(-$()-$(B)-$'},"
		   "{'name': 'C', 'value': '$(D)'}, {'name': 'D', 'value': 'd'}, {'name': 'A', 'value': '$(A)y'}]");
	json_object_del(f->spec, "env");
	json_object_del(f->image, "Env");
	json_t *env = env_ok(f);
	/* C sees no D (declared later); B's self-reference is unresolved; A=$(A)y sees the earlier A */
	assert_json(env, "['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',"
			 " 'HOSTNAME=web-5d8f7-abcde', 'A=xy', 'B=xx-$-$x-$-$(-$()-$(B)-$', 'C=$(D)', 'D=d']");
	json_decref(env);
}

static void test_env_resources_default_to_node(void **state)
{
	struct fx *f = *state;
	set_env(f, "[{'name': 'CPU', 'valueFrom': {'resourceFieldRef': {'resource': 'limits.cpu'}}},"
		   "{'name': 'MEM', 'valueFrom': {'resourceFieldRef': {'resource': 'limits.memory', 'divisor': '1'}}},"
		   "{'name': 'REQ', 'valueFrom': {'resourceFieldRef': {'resource': 'requests.memory'}}}]");
	json_object_del(container_of(f), "resources");
	json_object_del(f->spec, "env");
	json_t *env = env_ok(f);
	char *cpu = xasprintf("CPU=%ld", sysconf(_SC_NPROCESSORS_ONLN));
	char *mem = xasprintf("MEM=%lld", (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE));
	assert_string_equal(json_string_value(json_array_get(env, 4)), cpu);
	assert_string_equal(json_string_value(json_array_get(env, 5)), mem);
	assert_string_equal(json_string_value(json_array_get(env, 6)), "REQ=0");
	free(cpu);
	free(mem);
	json_decref(env);
}

static void test_env_errors(void **state)
{
	struct fx *f = *state;
	set_env(f, "[{'name': 'X', 'valueFrom': {'configMapKeyRef': {'name': 'web-config', 'key': 'nope'}}}]");
	env_fails(f, "couldn't find key nope in ConfigMap shop/web-config");
	set_env(f, "[{'name': 'X', 'valueFrom': {'configMapKeyRef': {'name': 'gone', 'key': 'k'}}}]");
	env_fails(f, "configmap \"gone\" not found");
	set_env(f, "[{'name': 'X', 'valueFrom': {'secretKeyRef': {'name': 'db', 'key': 'k'}}}]");
	env_fails(f, "couldn't find key k in Secret shop/db");
	set_env(f, "[{'name': 'X', 'valueFrom': {'fieldRef': {'fieldPath': 'status.phase'}}}]");
	env_fails(f, "unsupported fieldRef fieldPath status.phase");
	json_object_set_new(container_of(f), "envFrom", J("[{'secretRef': {'name': 'gone'}}]"));
	env_fails(f, "secret \"gone\" not found");
	json_object_set_new(json_object_get(json_object_get(f->pod, "secrets"), "db"), "data",
			    J("{'bad': '!!!'}"));
	json_object_set_new(container_of(f), "envFrom", J("[{'secretRef': {'name': 'db'}}]"));
	env_fails(f, "secret shop/db key bad: illegal base64 data");
}

/* ---- args ------------------------------------------------------------------- */

static void args_case(const char *container, const char *image, const char *want)
{
	json_t *spec = spec_of(container), *img = J(image), *env = J("['X=x', 'PATH=/bin']"), *args = NULL;
	struct gerr *e = NULL;
	if (oci_args(spec, img, env, &args, &e) < 0)
		fail_msg("oci_args: %s", e->msg);
	assert_json(args, want);
	json_decref(args);
	json_decref(spec);
	json_decref(img);
	json_decref(env);
}

static void test_args_rules(void **state)
{
	const char *ic = "{'Entrypoint': ['/ep', '-v'], 'Cmd': ['c1', 'c2']}";
	args_case("{'name': 'a'}", ic, "['/ep', '-v', 'c1', 'c2']");
	args_case("{'name': 'a', 'args': ['$(X)', '$(PATH)', '$$(X)', '$(Y)']}", ic,
		  "['/ep', '-v', 'x', '/bin', '$(X)', '$(Y)']");
	args_case("{'name': 'a', 'command': ['/run', '$(X)']}", ic, "['/run', 'x']");
	args_case("{'name': 'a', 'command': ['/run'], 'args': ['a', '$(X)']}", ic, "['/run', 'a', 'x']");
	args_case("{'name': 'a', 'command': [], 'args': ['a']}", ic, "['/ep', '-v', 'a']");
	args_case("{'name': 'a', 'args': ['a']}", "{'Entrypoint': [''], 'Cmd': ['c']}", "['a']");
	args_case("{'name': 'a'}", "{'Cmd': ['sh']}", "['sh']");

	json_t *spec = spec_of("{'name': 'a'}"), *img = J("{}"), *env = J("[]"), *args = NULL;
	struct gerr *e = NULL;
	assert_int_equal(oci_args(spec, img, env, &args, &e), -1);
	assert_string_equal(e->msg, "no command specified");
	gerr_free(e);
	json_decref(spec);
	json_decref(img);
	json_decref(env);
}

/* ---- config ----------------------------------------------------------------- */

static size_t node_caps(void)
{
	size_t n = 0;
	for (unsigned long i = 0; i <= 40; i++)
		n += prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1;
	return n;
}

static void test_config_full(void **state)
{
	struct fx *f = *state;
	json_t *cfg = config_ok(f, 1);
	json_t *proc = json_object_get(cfg, "process");
	assert_string_equal(json_string_value(json_object_get(cfg, "ociVersion")), "1.0.2");
	assert_json(json_object_get(proc, "user"), "{'uid': 1000, 'gid': 1001, 'additionalGids': [2000, 3000]}");
	assert_json(json_object_get(proc, "args"), "['sh']");
	assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/data");
	assert_true(json_is_false(json_object_get(proc, "terminal")));
	assert_true(json_is_true(json_object_get(proc, "noNewPrivileges")));
	const char *caps = "['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',"
			   " 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN',"
			   " 'CAP_SYS_CHROOT', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP']";
	json_t *c = json_object_get(proc, "capabilities");
	assert_json(json_object_get(c, "bounding"), caps);
	assert_json(json_object_get(c, "effective"), caps);
	assert_json(json_object_get(c, "permitted"), caps);
	assert_null(json_object_get(c, "inheritable"));
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	json_int_t nofile = rl.rlim_max < 1048576 ? (json_int_t)rl.rlim_max : 1048576;
	json_t *want_rl = json_pack("[{s:s,s:I,s:I}]", "type", "RLIMIT_NOFILE", "hard", nofile, "soft", nofile);
	assert_true(json_equal(json_object_get(proc, "rlimits"), want_rl));
	json_decref(want_rl);
	assert_string_equal(json_string_value(json_object_get(cfg, "hostname")), "web-5d8f7-abcde");
	json_t *root = json_object_get(cfg, "root");
	assert_string_equal(json_string_value(json_object_get(root, "path")), f->rootfs);
	assert_true(json_is_false(json_object_get(root, "readonly")));

	json_t *linux = json_object_get(cfg, "linux");
	assert_string_equal(json_string_value(json_object_get(linux, "cgroupsPath")), "/gitops/3f2a9c4e1b7d6a08/web");
	assert_json(json_object_get(linux, "namespaces"), "[{'type': 'pid'}, {'type': 'ipc'}, {'type': 'uts'},"
		    " {'type': 'mount'}, {'type': 'network', 'path': '/run/netns/gitops-3f2a9c4e1b7d6a08'}]");
	assert_json(json_object_get(linux, "resources"),
		    "{'devices': [{'allow': false, 'access': 'rwm'}], 'memory': {'limit': 134217728},"
		    " 'cpu': {'shares': 256, 'quota': 150000, 'period': 100000}, 'pids': {'limit': 4096}}");
	assert_json(json_object_get(linux, "sysctl"), "{'net.ipv4.ip_unprivileged_port_start': '0'}");
	assert_json(json_object_get(linux, "readonlyPaths"),
		    "['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']");
	assert_int_equal(json_array_size(json_object_get(linux, "maskedPaths")), 11);
	assert_null(json_object_get(linux, "seccomp"));
	json_decref(cfg);
}

static void test_config_mounts(void **state)
{
	struct fx *f = *state;
	json_t *cfg = config_ok(f, 1);
	struct sbuf want = SBUF_INIT;
	const char *P = f->pod_dir;
	sb_addf(&want, "["
		"{'destination': '/proc', 'type': 'proc', 'source': 'proc', 'options': ['nosuid', 'noexec', 'nodev']},"
		"{'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},"
		"{'destination': '/dev/pts', 'type': 'devpts', 'source': 'devpts', 'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']},"
		"{'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm', 'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},"
		"{'destination': '/dev/mqueue', 'type': 'mqueue', 'source': 'mqueue', 'options': ['nosuid', 'noexec', 'nodev']},"
		"{'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs', 'options': ['nosuid', 'noexec', 'nodev', 'ro']},"
		"{'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup', 'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']},"
		"{'destination': '/etc/hosts', 'type': 'bind', 'source': '%s/etc/hosts', 'options': ['rbind', 'rprivate', 'rw']},"
		"{'destination': '/etc/resolv.conf', 'type': 'bind', 'source': '%s/etc/resolv.conf', 'options': ['rbind', 'rprivate', 'rw']},"
		"{'destination': '/etc/hostname', 'type': 'bind', 'source': '%s/etc/hostname', 'options': ['rbind', 'rprivate', 'ro']},"
		"{'destination': '/data', 'type': 'bind', 'source': '%s/volumes/data', 'options': ['rbind', 'rprivate', 'rw']},"
		"{'destination': '/etc/web', 'type': 'bind', 'source': '%s/volumes/cfg', 'options': ['rbind', 'rprivate', 'ro']},"
		"{'destination': '/srv/$(POD_NAME)', 'type': 'bind', 'source': '%s/volumes/data/pods/web-5d8f7-abcde', 'options': ['rbind', 'rprivate', 'rw']},"
		"{'destination': '/data/cache/x', 'type': 'bind', 'source': '%s/volumes/data/cache/$(NOT_EXPANDED)', 'options': ['rbind', 'rprivate', 'rw']}]",
		P, P, P, P, P, P, P);
	assert_json(json_object_get(cfg, "mounts"), want.buf);
	sb_release(&want);
	/* subPath directories were made, as the kubelet does */
	char *made = xasprintf("%s/volumes/data/pods/web-5d8f7-abcde", P);
	struct stat st;
	assert_int_equal(stat(made, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(made);
	json_decref(cfg);
}

static void test_config_mount_overrides_and_errors(void **state)
{
	struct fx *f = *state;
	json_t *c = container_of(f);
	json_object_set_new(c, "volumeMounts", J("[{'name': 'data', 'mountPath': '/dev/shm'}]"));
	json_t *cfg = config_ok(f, 1), *m;
	size_t i, shm = 0;
	json_array_foreach(json_object_get(cfg, "mounts"), i, m)
		if (!strcmp(json_string_value(json_object_get(m, "destination")), "/dev/shm")) {
			shm++;
			assert_string_equal(json_string_value(json_object_get(m, "type")), "bind");
		}
	assert_int_equal(shm, 1);
	json_decref(cfg);

	json_object_set_new(c, "volumeMounts", J("[{'name': 'nope', 'mountPath': '/x'}]"));
	config_fails(f, "cannot find volume \"nope\" to mount into container \"web\"");
	json_object_set_new(c, "volumeMounts", J("[{'name': 'data', 'mountPath': '/x', 'subPath': 'a/../../etc'}]"));
	config_fails(f, "subPath a/../../etc must be a relative path without '..'");
	/* a symlink planted in the volume must not lead out of it */
	char *link = xasprintf("%s/volumes/data/evil", f->pod_dir);
	assert_int_equal(symlink("/etc", link), 0);
	free(link);
	json_object_set_new(c, "volumeMounts", J("[{'name': 'data', 'mountPath': '/x', 'subPath': 'evil'}]"));
	struct oci_input in = { f->pod, f->spec, f->image, f->rootfs, f->pod_dir, 1 };
	struct gerr *e = NULL;
	cfg = NULL;
	assert_int_equal(oci_config(&in, &cfg, &e), -1);
	assert_non_null(strstr(e->msg, "subPath evil of volume"));
	gerr_free(e);
}

static void test_config_privileged(void **state)
{
	struct fx *f = *state;
	json_t *c = container_of(f);
	json_object_set_new(c, "securityContext", J("{'privileged': true, 'capabilities': {'drop': ['ALL']}}"));
	json_t *cfg = config_ok(f, 1);
	json_t *proc = json_object_get(cfg, "process"), *linux = json_object_get(cfg, "linux");
	json_t *bounding = json_object_get(json_object_get(proc, "capabilities"), "bounding");
	assert_int_equal(json_array_size(bounding), node_caps());
	assert_string_equal(json_string_value(json_array_get(bounding, 21)), "CAP_SYS_ADMIN");
	assert_true(json_is_false(json_object_get(proc, "noNewPrivileges")));
	assert_null(json_object_get(linux, "maskedPaths"));
	assert_null(json_object_get(linux, "readonlyPaths"));
	assert_json(json_object_get(json_object_get(linux, "resources"), "devices"), "[{'allow': true, 'access': 'rwm'}]");
	json_t *sys = json_array_get(json_object_get(cfg, "mounts"), 5);
	assert_json(json_object_get(sys, "options"), "['nosuid', 'noexec', 'nodev']");
	json_decref(cfg);
}

static void test_config_caps(void **state)
{
	struct fx *f = *state;
	json_t *c = container_of(f);
	json_object_set_new(c, "securityContext", J("{'capabilities': {'drop': ['all'], 'add': ['net_bind_service']}}"));
	json_t *cfg = config_ok(f, 1);
	assert_json(json_object_get(json_object_get(json_object_get(cfg, "process"), "capabilities"), "permitted"),
		    "['CAP_NET_BIND_SERVICE']");
	assert_true(json_is_false(json_object_get(json_object_get(cfg, "process"), "noNewPrivileges")));
	json_decref(cfg);
	json_object_set_new(c, "securityContext", J("{'capabilities': {'add': ['SYS_WIZARDRY']}}"));
	config_fails(f, "unknown capability SYS_WIZARDRY");
}

static void test_config_host_network(void **state)
{
	struct fx *f = *state;
	json_t *spec = json_object_get(f->pod, "spec");
	json_object_set_new(spec, "hostNetwork", json_true());
	json_object_set_new(spec, "hostPID", json_true());
	json_object_set_new(spec, "securityContext", J("{}"));
	json_object_set_new(f->pod, "netns", json_null());
	json_object_set_new(container_of(f), "securityContext", J("{'readOnlyRootFilesystem': true}"));
	json_t *cfg = config_ok(f, 2);
	assert_null(json_object_get(cfg, "hostname"));
	assert_json(json_object_get(json_object_get(cfg, "linux"), "namespaces"),
		    "[{'type': 'ipc'}, {'type': 'mount'}, {'type': 'cgroup'}]");
	assert_true(json_is_true(json_object_get(json_object_get(cfg, "root"), "readonly")));
	assert_json(json_object_get(json_object_get(cfg, "process"), "user"), "{'uid': 0, 'gid': 0}");
	json_decref(cfg);

	json_object_set_new(spec, "hostNetwork", json_false());
	config_fails(f, "pod has no network namespace");
	json_object_set_new(spec, "hostNetwork", json_true());
	json_object_set_new(spec, "securityContext", J("{'sysctls': [{'name': 'net.core.somaxconn', 'value': '1024'}]}"));
	config_fails(f, "sysctl net.core.somaxconn is not allowed with hostNetwork");
}

static void user_case(struct fx *f, const char *image_user, const char *want)
{
	json_object_set_new(f->image, "User", json_string(image_user));
	json_t *cfg = config_ok(f, 1);
	assert_json(json_object_get(json_object_get(cfg, "process"), "user"), want);
	json_decref(cfg);
}

static void test_config_image_user(void **state)
{
	struct fx *f = *state;
	json_object_set_new(container_of(f), "securityContext", J("{}"));
	json_object_set_new(json_object_get(f->pod, "spec"), "securityContext", J("{}"));
	write_file(f->rootfs, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1234:5678::/home/app:/bin/sh\n");
	write_file(f->rootfs, "etc/group", "root:x:0:\nstaff:x:50:app\n");
	user_case(f, "", "{'uid': 0, 'gid': 0}");
	user_case(f, "app", "{'uid': 1234, 'gid': 5678}");
	user_case(f, "app:staff", "{'uid': 1234, 'gid': 50}");
	user_case(f, "1234", "{'uid': 1234, 'gid': 5678}");
	user_case(f, "42:7", "{'uid': 42, 'gid': 7}");
	user_case(f, "42", "{'uid': 42, 'gid': 0}");
	json_object_set_new(f->image, "User", json_string("ghost"));
	config_fails(f, "unable to find user ghost: no matching entries in passwd file");
	json_object_set_new(f->image, "User", json_string("app:nogroup"));
	config_fails(f, "unable to find group nogroup: no matching entries in group file");
	/* runAsUser wins over the image's user, its gid from the image's passwd */
	json_object_set_new(container_of(f), "securityContext", J("{'runAsUser': 1234}"));
	user_case(f, "root", "{'uid': 1234, 'gid': 5678}");
	json_object_set_new(container_of(f), "securityContext", J("{'runAsNonRoot': true}"));
	json_object_set_new(f->image, "User", json_string("root"));
	config_fails(f, "container has runAsNonRoot and image will run as root");
	/* an absolute symlink in the image resolves inside the rootfs, not on the host */
	json_object_set_new(container_of(f), "securityContext", J("{}"));
	char *passwd = xasprintf("%s/etc/passwd", f->rootfs);
	unlink(passwd);
	assert_int_equal(symlink("/etc/passwd", passwd), 0);
	free(passwd);
	json_object_set_new(f->image, "User", json_string("daemon"));
	config_fails(f, "unable to find user daemon: no matching entries in passwd file");
}

static void test_config_no_limits(void **state)
{
	struct fx *f = *state;
	json_t *c = container_of(f);
	json_object_del(c, "resources");
	json_object_set_new(c, "env", J("[]"));
	json_object_del(c, "envFrom");
	json_t *cfg = config_ok(f, 1);
	assert_json(json_object_get(json_object_get(cfg, "linux"), "resources"),
		    "{'devices': [{'allow': false, 'access': 'rwm'}], 'cpu': {'shares': 2}, 'pids': {'limit': 4096}}");
	json_decref(cfg);
	json_object_del(c, "workingDir");
	json_object_set_new(c, "resources", J("{'limits': {'cpu': '1m'}}"));
	cfg = config_ok(f, 1);
	assert_json(json_object_get(json_object_get(json_object_get(cfg, "linux"), "resources"), "cpu"),
		    "{'shares': 2, 'quota': 1000, 'period': 100000}");
	assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "process"), "cwd")), "/img");
	json_decref(cfg);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_env_order_and_sources),
		T(test_env_expansion_rules),
		T(test_env_resources_default_to_node),
		T(test_env_errors),
		cmocka_unit_test(test_args_rules),
		T(test_config_full),
		T(test_config_mounts),
		T(test_config_mount_overrides_and_errors),
		T(test_config_privileged),
		T(test_config_caps),
		T(test_config_host_network),
		T(test_config_image_user),
		T(test_config_no_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
