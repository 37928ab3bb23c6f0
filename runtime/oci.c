/* oci.c: a container's OCI runtime config (runc's config.json) — user, caps, mounts, cgroups, and the env and args env.c makes — as Kubernetes and containerd build it. */
#include "runtime/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api/api.h"

/* Decisions (see also docs/architecture.md):
 *  - env and args: env.c (the order and the Services' variables are described there).
 *  - seccomp: none, which is Kubernetes' default (Unconfined unless a profile is
 *    asked for); no RuntimeDefault profile is shipped yet.
 *  - caps: Docker's default set, +add −drop, all for privileged; only those the node
 *    itself holds in its bounding set (runc fails on the others).
 *  - pids.limit 4096 per container (Kubernetes has none by default; a fork bomb in one
 *    pod should not take the node). No oom_score_adj (lowering it needs
 *    CAP_SYS_RESOURCE) and no swap limit (memsw is often absent).
 *  - Each container has its own IPC namespace and /dev/shm (no pause container). */

#define OCI_PIDS_LIMIT 4096
#define OCI_NOFILE 1048576
#define CPU_PERIOD 100000

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool jtrue(const json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

/* ---- user ------------------------------------------------------------------ */

/* Open a file of the rootfs, resolving symlinks inside it (never onto the host). */
static int rootfs_open(const char *rootfs, const char *rel)
{
	int root = rootfs ? open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (root < 0)
		return -1;
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
	close(root);
	return fd;
}

/* Find a passwd/group entry by name (or by id when name is NULL): fields 0 and 2
 * (name, id) and 3 (gid of a passwd line). Returns 1 found, 0 not. */
static int db_find(const char *rootfs, const char *file, const char *name, int64_t id,
		   int64_t *ret_id, int64_t *ret_gid)
{
	struct sbuf sb = SBUF_INIT;
	int fd = rootfs_open(rootfs, file), found = 0;
	if (fd >= 0 && sb_read_fd(&sb, fd, 4 << 20, NULL) < 0)
		sb_reset(&sb);
	if (fd >= 0)
		close(fd);
	for (char *save = NULL, *line = strtok_r(sb.buf, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = { 0 }, *s2 = NULL;
		f[0] = strtok_r(line, ":", &s2);
		for (int i = 1; i < 4 && f[i - 1]; i++)
			f[i] = strsep(&s2, ":");
		int64_t uid, gid = 0;
		if (!f[2] || parse_i64(f[2], 0, UINT32_MAX, &uid) < 0 ||
		    (name ? strcmp(f[0], name) != 0 : uid != id))
			continue;
		if (f[3])
			parse_i64(f[3], 0, UINT32_MAX, &gid);
		*ret_id = uid;
		*ret_gid = gid;
		found = 1;
	}
	sb_release(&sb);
	return found;
}

/* The image's User: "uid", "name", "uid:gid", "name:group". */
static int image_user(const char *rootfs, const char *user, int64_t *uid, int64_t *gid,
		      struct gerr **err)
{
	char *u = xstrdup(user), *g = strchr(u, ':');
	int64_t dummy;
	int r = 0;
	if (g)
		*g++ = '\0';
	if (parse_i64(u, 0, UINT32_MAX, uid) < 0) {
		if (!db_find(rootfs, "etc/passwd", u, 0, uid, gid))
			r = gerr_set(err, GERR_FAIL, "unable to find user %s: no matching entries in passwd file", u);
	} else if (!db_find(rootfs, "etc/passwd", NULL, *uid, &dummy, gid)) {
		*gid = 0;
	}
	if (r == 0 && g && parse_i64(g, 0, UINT32_MAX, gid) < 0 &&
	    !db_find(rootfs, "etc/group", g, 0, gid, &dummy))
		r = gerr_set(err, GERR_FAIL, "unable to find group %s: no matching entries in group file", g);
	free(u);
	return r;
}

/* securityContext field: the container's, else the pod's. */
static const json_t *sc_get(const json_t *c, const json_t *pod, const char *key)
{
	const json_t *v = json_object_get(json_object_get(c, "securityContext"), key);
	return v ? v : json_object_get(json_object_get(json_object_get(pod, "spec"), "securityContext"), key);
}

static int oci_user(const struct oci_input *in, const json_t *c, json_t **ret, struct gerr **err)
{
	int64_t uid = 0, gid = 0, dummy;
	const json_t *ru = sc_get(c, in->pod, "runAsUser"), *rg = sc_get(c, in->pod, "runAsGroup");
	const char *iu = jstr(in->image_config, "User");
	if (json_is_integer(ru)) {
		uid = json_integer_value(ru);
		if (!db_find(in->rootfs, "etc/passwd", NULL, uid, &dummy, &gid))
			gid = 0;
	} else if (iu && *iu && image_user(in->rootfs, iu, &uid, &gid, err) < 0) {
		return -1;
	}
	if (json_is_integer(rg))
		gid = json_integer_value(rg);
	if (json_is_true(sc_get(c, in->pod, "runAsNonRoot")) && uid == 0)
		return gerr_set(err, GERR_FAIL, "container has runAsNonRoot and image will run as root");
	json_t *extra = json_array();
	const json_t *psc = json_object_get(json_object_get(in->pod, "spec"), "securityContext");
	if (json_is_integer(json_object_get(psc, "fsGroup")))
		json_array_append(extra, json_object_get(psc, "fsGroup"));
	json_array_extend(extra, json_object_get(psc, "supplementalGroups"));
	*ret = json_pack("{s:I,s:I}", "uid", (json_int_t)uid, "gid", (json_int_t)gid);
	if (json_array_size(extra))
		json_object_set(*ret, "additionalGids", extra);
	json_decref(extra);
	return 0;
}

/* ---- capabilities ---------------------------------------------------------- */

static const char *const cap_names[] = {
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
	"SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
	"SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
	"AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};
static const char *const cap_default[] = {
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
};
#define CAP_ALL ((UINT64_C(1) << ARRAY_SIZE(cap_names)) - 1)

/* "NET_ADMIN" or "CAP_NET_ADMIN" (any case) → bit, or -1. */
static int cap_bit(const char *name)
{
	if (!strncasecmp(name, "CAP_", 4))
		name += 4;
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (!strcasecmp(name, cap_names[i]))
			return (int)i;
	return -1;
}

static int cap_apply(uint64_t *set, const json_t *list, bool add, struct gerr **err)
{
	size_t i;
	const json_t *s;
	json_array_foreach(list, i, s) {
		const char *name = json_string_value(s) ? json_string_value(s) : "";
		int b = cap_bit(name);
		if (!strcasecmp(name, "ALL"))
			continue;
		if (b < 0)
			return gerr_set(err, GERR_FAIL, "unknown capability %s", name);
		*set = add ? *set | (UINT64_C(1) << b) : *set & ~(UINT64_C(1) << b);
	}
	return 0;
}

static bool list_has_all(const json_t *list)
{
	size_t i;
	const json_t *s;
	json_array_foreach(list, i, s)
		if (json_string_value(s) && !strcasecmp(json_string_value(s), "ALL"))
			return true;
	return false;
}

/* containerd's order: add ALL, drop ALL, then each add, then each drop. */
static int oci_caps(const json_t *c, bool privileged, json_t **ret, struct gerr **err)
{
	const json_t *caps = json_object_get(json_object_get(c, "securityContext"), "capabilities");
	const json_t *add = json_object_get(caps, "add"), *drop = json_object_get(caps, "drop");
	uint64_t set = 0;
	for (size_t i = 0; i < ARRAY_SIZE(cap_default); i++)
		set |= UINT64_C(1) << cap_bit(cap_default[i]);
	if (privileged || list_has_all(add))
		set = CAP_ALL;
	if (!privileged && list_has_all(drop))
		set = 0;
	if (!privileged && (cap_apply(&set, add, true, err) < 0 || cap_apply(&set, drop, false, err) < 0))
		return -1;
	json_t *names = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if ((set & (UINT64_C(1) << i)) && prctl(PR_CAPBSET_READ, (unsigned long)i, 0, 0, 0) == 1)
			json_array_append_new(names, json_sprintf("CAP_%s", cap_names[i]));
	*ret = json_pack("{s:O,s:O,s:O}", "bounding", names, "effective", names, "permitted", names);
	json_decref(names);
	return 0;
}

/* ---- mounts ---------------------------------------------------------------- */

static void add_mount(json_t *mounts, const char *dst, const char *type, const char *src,
		      const char *opts)
{
	json_t *o = json_array();
	char *copy = xstrdup(opts), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(o, json_string(t));
	free(copy);
	json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:o}", "destination", dst, "type", type,
						"source", src, "options", o));
}

static bool mount_taken(const json_t *c, const char *dst)
{
	size_t i;
	const json_t *vm;
	json_array_foreach(json_object_get(c, "volumeMounts"), i, vm)
		if (jstr(vm, "mountPath") && !strcmp(jstr(vm, "mountPath"), dst))
			return true;
	return false;
}

static void default_mounts(const struct oci_input *in, const json_t *c, bool priv, json_t *m)
{
	static const char *const def[][4] = {
		{ "/proc", "proc", "proc", "nosuid,noexec,nodev" },
		{ "/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k" },
		{ "/dev/pts", "devpts", "devpts", "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5" },
		{ "/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k" },
		{ "/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev" },
		{ "/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro" },
		{ "/sys/fs/cgroup", "cgroup", "cgroup", "nosuid,noexec,nodev,relatime,ro" },
		{ "/etc/hosts", "bind", "etc/hosts", "rbind,rprivate,rw" },
		{ "/etc/resolv.conf", "bind", "etc/resolv.conf", "rbind,rprivate,rw" },
		{ "/etc/hostname", "bind", "etc/hostname", "rbind,rprivate,ro" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(def); i++) {
		if (mount_taken(c, def[i][0]))
			continue;
		bool bind = !strcmp(def[i][1], "bind");
		char *src = bind ? xasprintf("%s/%s", in->pod_dir, def[i][2]) : xstrdup(def[i][2]);
		char *opts = xstrdup(def[i][3]);
		if (priv && str_has_suffix(opts, ",ro") && !bind)
			opts[strlen(opts) - 3] = '\0'; /* sysfs and cgroup writable when privileged */
		add_mount(m, def[i][0], def[i][1], src, opts);
		free(src);
		free(opts);
	}
}

static int open_beneath(int dirfd, const char *path)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* mkdir -p beneath dirfd, each component opened beneath its parent; an fd or -1. */
static int mkdir_beneath(int dirfd, const char *sub)
{
	char *p = xstrdup(sub), *save = NULL;
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	for (char *t = strtok_r(p, "/", &save); t && fd >= 0; t = strtok_r(NULL, "/", &save)) {
		mkdirat(fd, t, 0755);
		int next = open_beneath(fd, t);
		close(fd);
		fd = next;
	}
	free(p);
	return fd;
}

/* Resolve (and create when absent, as the kubelet does) subPath inside the volume
 * at base, refusing symlinks that lead out of it; returns the real path. The check
 * is made here, runc mounts later: a container racing to swap in a symlink between
 * the two is not prevented (the kubelet's bind-from-fd dance is not reproduced). */
static char *subpath_resolve(const char *base, const char *sub, struct gerr **err)
{
	char *real = NULL;
	if (sub[0] == '/' || !strcmp(sub, "..") || str_has_prefix(sub, "../") ||
	    strstr(sub, "/../") || str_has_suffix(sub, "/..")) {
		gerr_set(err, GERR_FAIL, "subPath %s must be a relative path without '..'", sub);
		return NULL;
	}
	int root = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fd = root < 0 ? -1 : open_beneath(root, sub);
	if (root >= 0 && fd < 0 && errno == ENOENT)
		fd = mkdir_beneath(root, sub);
	char *self = xasprintf("/proc/self/fd/%d", fd);
	if (fd < 0 || !(real = realpath(self, NULL)))
		gerr_sys(err, "subPath %s of volume %s", sub, base);
	free(self);
	if (fd >= 0)
		close(fd);
	if (root >= 0)
		close(root);
	return real;
}

static int path_depth(const char *p)
{
	int n = 0;
	for (; *p; p++)
		n += *p == '/' && p[1] && p[1] != '/';
	return n;
}

static int volume_mount(const struct oci_input *in, const json_t *c, const json_t *vars,
			const json_t *vm, json_t *mounts, struct gerr **err)
{
	const char *name = jstr(vm, "name"), *dst = jstr(vm, "mountPath");
	const char *sub = jstr(vm, "subPath"), *subx = jstr(vm, "subPathExpr");
	char *src = name ? volume_host_path(in->pod, in->pod_dir, name) : NULL;
	char *expanded = subx && *subx ? env_expand(subx, &vars, 1) : NULL;
	if (expanded)
		sub = expanded;
	if (!src || !dst) {
		gerr_set(err, GERR_FAIL, "cannot find volume \"%s\" to mount into container \"%s\"",
			 name ? name : "", jstr(c, "name"));
	} else if (sub && *sub) {
		char *real = subpath_resolve(src, sub, err);
		free(src);
		src = real;
	}
	if (src && dst)
		add_mount(mounts, dst, "bind", src, jtrue(vm, "readOnly") ? "rbind,rprivate,ro" : "rbind,rprivate,rw");
	int r = src && dst ? 0 : -1;
	free(src);
	free(expanded);
	return r;
}

/* volumeMounts, shallow destinations first (containerd sorts them so). */
static int volume_mounts(const struct oci_input *in, const json_t *c, const json_t *env,
			 json_t *mounts, struct gerr **err)
{
	const json_t *vms = json_object_get(c, "volumeMounts");
	json_t *vars = env_object(env);
	int r = 0, maxd = 0;
	size_t i;
	const json_t *vm;
	json_array_foreach(vms, i, vm)
		if (jstr(vm, "mountPath") && path_depth(jstr(vm, "mountPath")) > maxd)
			maxd = path_depth(jstr(vm, "mountPath"));
	for (int d = 0; d <= maxd && r == 0; d++)
		json_array_foreach(vms, i, vm)
			if (r == 0 && path_depth(jstr(vm, "mountPath") ? jstr(vm, "mountPath") : "") == d)
				r = volume_mount(in, c, vars, vm, mounts, err);
	json_decref(vars);
	return r;
}

/* ---- linux: namespaces, cgroups, paths ------------------------------------- */

static int oci_namespaces(const struct oci_input *in, json_t *linux, struct gerr **err)
{
	const json_t *spec = json_object_get(in->pod, "spec");
	bool hostnet = jtrue(spec, "hostNetwork");
	json_t *ns = json_array();
	const char *netns = jstr(in->pod, "netns");
	json_object_set_new(linux, "namespaces", ns);
	if (!jtrue(spec, "hostPID"))
		json_array_append_new(ns, json_pack("{s:s}", "type", "pid"));
	if (!jtrue(spec, "hostIPC"))
		json_array_append_new(ns, json_pack("{s:s}", "type", "ipc"));
	if (!hostnet)
		json_array_append_new(ns, json_pack("{s:s}", "type", "uts"));
	json_array_append_new(ns, json_pack("{s:s}", "type", "mount"));
	if (in->cgroup_version == 2)
		json_array_append_new(ns, json_pack("{s:s}", "type", "cgroup"));
	if (hostnet)
		return 0;
	if (!netns || !*netns)
		return gerr_set(err, GERR_FAIL, "pod has no network namespace");
	json_array_append_new(ns, json_pack("{s:s,s:s}", "type", "network", "path", netns));
	return 0;
}

static int oci_resources(const json_t *c, bool privileged, json_t **ret, struct gerr **err)
{
	int64_t mem, cpu_lim, cpu_req;
	if (resource_milli(c, "limits", "memory", &mem, err) < 0 ||
	    resource_milli(c, "limits", "cpu", &cpu_lim, err) < 0 ||
	    resource_milli(c, "requests", "cpu", &cpu_req, err) < 0)
		return -1;
	int64_t shares = cpu_req * 1024 / 1000;
	json_t *cpu = json_pack("{s:I}", "shares", (json_int_t)(shares < 2 ? 2 : shares));
	if (cpu_lim > 0) {
		int64_t quota = cpu_lim * CPU_PERIOD / 1000;
		json_object_set_new(cpu, "quota", json_integer(quota < 1000 ? 1000 : quota));
		json_object_set_new(cpu, "period", json_integer(CPU_PERIOD));
	}
	*ret = json_pack("{s:[{s:b,s:s}],s:o,s:{s:i}}", "devices", "allow", privileged, "access",
			 "rwm", "cpu", cpu, "pids", "limit", OCI_PIDS_LIMIT);
	if (mem > 0)
		json_object_set_new(*ret, "memory", json_pack("{s:I}", "limit", (json_int_t)((mem + 999) / 1000)));
	return 0;
}

static int oci_sysctls(const json_t *pod, json_t *linux, struct gerr **err)
{
	const json_t *spec = json_object_get(pod, "spec");
	const json_t *list = json_object_get(json_object_get(spec, "securityContext"), "sysctls");
	json_t *out = json_object();
	json_object_set_new(linux, "sysctl", out);
	size_t i;
	const json_t *s;
	json_array_foreach(list, i, s) {
		const char *name = jstr(s, "name"), *value = jstr(s, "value");
		if (!name || !value)
			continue;
		if (jtrue(spec, "hostNetwork") && str_has_prefix(name, "net."))
			return gerr_set(err, GERR_FAIL, "sysctl %s is not allowed with hostNetwork", name);
		json_object_set_new(out, name, json_string(value));
	}
	return 0;
}

static json_t *strings(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static int oci_linux(const struct oci_input *in, const json_t *c, bool priv, json_t **ret,
		     struct gerr **err)
{
	static const char *const masked[] = {
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	};
	static const char *const readonly[] = {
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	};
	json_t *linux = json_object(), *res = NULL;
	const char *uid = jstr(in->pod, "uid"), *name = jstr(c, "name");
	json_object_set_new(linux, "cgroupsPath", json_sprintf("/gitops/%s/%s", uid ? uid : "", name ? name : ""));
	int r = oci_namespaces(in, linux, err);
	if (r == 0 && (r = oci_resources(c, priv, &res, err)) == 0)
		json_object_set_new(linux, "resources", res);
	if (r == 0)
		r = oci_sysctls(in->pod, linux, err);
	if (!priv) {
		json_object_set_new(linux, "maskedPaths", strings(masked, ARRAY_SIZE(masked)));
		json_object_set_new(linux, "readonlyPaths", strings(readonly, ARRAY_SIZE(readonly)));
	}
	if (r < 0)
		json_decref(linux);
	else
		*ret = linux;
	return r;
}

/* ---- the whole config ------------------------------------------------------ */

static json_t *oci_rlimits(void)
{
	struct rlimit rl = { OCI_NOFILE, OCI_NOFILE };
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < OCI_NOFILE)
		rl.rlim_cur = rl.rlim_max;
	else
		rl.rlim_cur = OCI_NOFILE;
	return json_pack("[{s:s,s:I,s:I}]", "type", "RLIMIT_NOFILE", "hard", (json_int_t)rl.rlim_cur,
			 "soft", (json_int_t)rl.rlim_cur);
}

static int oci_process(const struct oci_input *in, const json_t *c, bool priv, json_t **ret,
		       struct gerr **err)
{
	json_t *env = NULL, *args = NULL, *user = NULL, *caps = NULL;
	const char *cwd = jstr(c, "workingDir");
	if (!cwd || !*cwd)
		cwd = jstr(in->image_config, "WorkingDir");
	const json_t *ape = sc_get(c, NULL, "allowPrivilegeEscalation");
	json_t *network = NULL;
	int r = env_network_load(in->pod_dir, &network, err);
	if (r == 0)
		r = env_container(in->pod, in->spec, in->image_config, network, &env, err);
	json_decref(network);
	if (r < 0 || oci_args(in->spec, in->image_config, env, &args, err) < 0 ||
	    oci_user(in, c, &user, err) < 0 || oci_caps(c, priv, &caps, err) < 0) {
		json_decref(env);
		json_decref(args);
		json_decref(user);
		return -1;
	}
	*ret = json_pack("{s:b,s:o,s:o,s:o,s:s,s:o,s:o,s:b}", "terminal", 0, "user", user, "args", args,
			 "env", env, "cwd", cwd && *cwd ? cwd : "/", "capabilities", caps,
			 "rlimits", oci_rlimits(), "noNewPrivileges", json_is_false(ape) && !priv);
	return 0;
}

int oci_config(const struct oci_input *in, json_t **ret_config, struct gerr **err)
{
	const json_t *c = json_object_get(in->spec, "container");
	bool priv = json_is_true(sc_get(c, NULL, "privileged"));
	json_t *proc = NULL, *linux = NULL, *mounts = json_array();
	if (oci_process(in, c, priv, &proc, err) < 0)
		goto fail;
	default_mounts(in, c, priv, mounts);
	if (volume_mounts(in, c, json_object_get(proc, "env"), mounts, err) < 0 ||
	    oci_linux(in, c, priv, &linux, err) < 0)
		goto fail;
	bool ro = json_is_true(sc_get(c, NULL, "readOnlyRootFilesystem"));
	json_t *cfg = json_pack("{s:s,s:o,s:{s:s,s:b},s:o,s:o}", "ociVersion", "1.0.2", "process", proc,
				"root", "path", in->rootfs ? in->rootfs : "rootfs", "readonly", ro,
				"mounts", mounts, "linux", linux);
	if (!jtrue(json_object_get(in->pod, "spec"), "hostNetwork")) {
		char *host = pod_hostname(in->pod);
		json_object_set_new(cfg, "hostname", json_string(host));
		free(host);
	}
	*ret_config = cfg;
	return 0;
fail:
	json_decref(proc);
	json_decref(mounts);
	return -1;
}
