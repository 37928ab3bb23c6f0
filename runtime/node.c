/* node.c: `gitops node apply` — converge this node to a plan: remove pods the plan no
 * longer lists, restart containers whose hash changed, create new pods' sandboxes
 * (netns, CNI, volumes), load the network rules (network.c) with them in, then start
 * the new pods' containers (one shim each) — and the pod bookkeeping it needs. */
#include "runtime/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define APPLY_LOCK_TIMEOUT_S 120
#define STOP_EXTRA_MS 10000

static char *pod_path(const struct node_paths *p, const char *uid)
{
	return xasprintf("%s/%s", p->pods, uid);
}

static bool valid_uid(const char *uid)
{
	if (!uid || strlen(uid) < 8 || strlen(uid) > 64)
		return false;
	for (const char *c = uid; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || *c == '-'))
			return false;
	return true;
}

json_t *pod_load(const char *pod_dir, struct gerr **err)
{
	char *path = xasprintf("%s/pod.json", pod_dir);
	json_t *pod = json_load_path(path, RUNTIME_MAX_PLAN, err);
	free(path);
	if (!pod)
		return NULL;
	path = xasprintf("%s/secrets/secrets.json", pod_dir);
	json_t *sec = access(path, F_OK) == 0 ? json_load_path(path, RUNTIME_MAX_PLAN, NULL) : NULL;
	free(path);
	if (sec)
		json_object_update(pod, sec);
	json_decref(sec);
	return pod;
}

/* ---- hashes ---- */

/* Names of the ConfigMaps and Secrets a container reads through env/envFrom. */
static void env_refs(const json_t *c, json_t *cms, json_t *secs)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(c, "env"), i, e) {
		const json_t *from = json_object_get(e, "valueFrom");
		const char *cm = json_string_value(json_object_get(json_object_get(from, "configMapKeyRef"), "name"));
		const char *s = json_string_value(json_object_get(json_object_get(from, "secretKeyRef"), "name"));
		if (cm)
			json_object_set_new(cms, cm, json_true());
		if (s)
			json_object_set_new(secs, s, json_true());
	}
	json_array_foreach(json_object_get(c, "envFrom"), i, e) {
		const char *cm = json_string_value(json_object_get(json_object_get(e, "configMapRef"), "name"));
		const char *s = json_string_value(json_object_get(json_object_get(e, "secretRef"), "name"));
		if (cm)
			json_object_set_new(cms, cm, json_true());
		if (s)
			json_object_set_new(secs, s, json_true());
	}
}

static char *container_hash(const json_t *pod, const json_t *c)
{
	json_t *cms = json_object(), *secs = json_object();
	env_refs(c, cms, secs);
	json_t *data = json_pack("{s:O, s:{}, s:{}, s:O?}", "container", c, "configMaps", "secrets",
				 "env", json_object_get(pod, "env"));
	const char *k;
	json_t *v;
	json_object_foreach(cms, k, v)
		json_object_set(json_object_get(data, "configMaps"), k,
				json_object_get(json_object_get(pod, "configMaps"), k));
	json_object_foreach(secs, k, v)
		json_object_set(json_object_get(data, "secrets"), k,
				json_object_get(json_object_get(pod, "secrets"), k));
	char *h = api_json_sha256(data);
	json_decref(data);
	json_decref(cms);
	json_decref(secs);
	return h;
}

/* What forces a new pod: the spec without its containers (volumes, hostNetwork,
 * security context...). */
static char *pod_hash(const json_t *pod)
{
	json_t *spec = json_deep_copy(json_object_get(pod, "spec"));
	json_object_del(spec, "containers");
	json_object_del(spec, "initContainers");
	char *h = api_json_sha256(spec);
	json_decref(spec);
	return h;
}

/* ---- creating and removing pods ---- */

static int write_etc(const struct node_paths *p, const json_t *pod, const json_t *plan, const char *dir,
		     struct gerr **err)
{
	char *etc = xasprintf("%s/etc", dir);
	int r = mkdir_p(etc, 0755, err);
	const char *name = json_string_value(json_object_get(pod, "name"));
	const char *ip = json_string_value(json_object_get(pod, "podIP"));
	struct sbuf hosts = SBUF_INIT, resolv = SBUF_INIT;
	sb_addf(&hosts, "# Kubernetes-managed hosts file (gitops).\n127.0.0.1\tlocalhost\n"
			"::1\tlocalhost ip6-localhost ip6-loopback\n");
	if (ip)
		sb_addf(&hosts, "%s\t%s\n", ip, name);
	const char *dns = json_string_value(json_object_get(plan, "dnsServer"));
	const char *domain = json_string_value(json_object_get(plan, "clusterDomain"));
	const char *ns = json_string_value(json_object_get(pod, "namespace"));
	const json_t *net = json_object_get(plan, "network");
	/* the node's own resolver (dns.c) when it has a network: this plan's, or the one
	 * it keeps (a plan leaves it out when the node has it, or sends a networkDelta;
	 * its dnsServer and clusterDomain are the plan's own then) */
	if (json_is_object(net) || json_object_get(plan, "networkDelta") || network_present(p)) {
		if (!json_is_object(net))
			net = plan;
		dns = json_string_value(json_object_get(net, "dnsServer"));
		if (!dns || !*dns)
			dns = DNS_DEFAULT_SERVER;
		if (json_string_value(json_object_get(net, "clusterDomain")))
			domain = json_string_value(json_object_get(net, "clusterDomain"));
	}
	if (!domain)
		domain = "cluster.local";
	if (dns)
		sb_addf(&resolv, "search %s.svc.%s svc.%s %s\nnameserver %s\noptions ndots:5\n", ns, domain,
			domain, domain, dns);
	else
		sb_read_file(&resolv, "/etc/resolv.conf", 1 << 16, NULL);
	char *p1 = xasprintf("%s/hosts", etc), *p2 = xasprintf("%s/resolv.conf", etc);
	char *p3 = xasprintf("%s/hostname", etc), *hn = xasprintf("%s\n", name);
	if (r == 0)
		r = write_file_atomic(p1, hosts.buf, hosts.len, 0644, err);
	if (r == 0)
		r = write_file_atomic(p2, resolv.buf, resolv.len, 0644, err);
	if (r == 0)
		r = write_file_atomic(p3, hn, strlen(hn), 0644, err);
	free(p1);
	free(p2);
	free(p3);
	free(hn);
	free(etc);
	sb_release(&hosts);
	sb_release(&resolv);
	return r;
}

/* The secrets live on a small tmpfs: never on disk in clear. */
static int write_secrets(const json_t *pod, const char *dir, struct gerr **err)
{
	char *sdir = xasprintf("%s/secrets", dir);
	int r = mkdir_p(sdir, 0700, err);
	struct stat a, b;
	char *parent = xasprintf("%s/..", sdir);
	if (r == 0 && !(stat(sdir, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev) &&
	    mount("tmpfs", sdir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=64m") < 0)
		r = gerr_sys(err, "mount tmpfs on %s", sdir);
	free(parent);
	json_t *sec = json_pack("{s:O?, s:O?}", "secrets", json_object_get(pod, "secrets"),
				"imagePullSecrets", json_object_get(pod, "imagePullSecrets"));
	char *path = xasprintf("%s/secrets.json", sdir);
	if (r == 0)
		r = json_save_atomic(path, sec, 0600, err);
	free(path);
	json_decref(sec);
	free(sdir);
	return r;
}

static int write_pod_json(const json_t *pod, const char *dir, struct gerr **err)
{
	json_t *copy = json_deep_copy(pod);
	json_object_del(copy, "secrets");
	json_object_del(copy, "imagePullSecrets");
	char *path = xasprintf("%s/pod.json", dir);
	int r = json_save_atomic(path, copy, 0600, err);
	free(path);
	json_decref(copy);
	return r;
}

static int write_spec(const json_t *pod, const json_t *c, bool init, size_t index, const char *dir,
		      struct gerr **err)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	char *cdir = xasprintf("%s/containers/%s", dir, name);
	int r = mkdir_p(cdir, 0755, err);
	char *hash = container_hash(pod, c);
	json_t *spec = json_pack("{s:O, s:s, s:b, s:i, s:O?}", "container", c, "hash", hash, "init",
				 init, "index", (int)index, "env", json_object_get(pod, "env"));
	char *path = xasprintf("%s/spec.json", cdir);
	if (r == 0)
		r = json_save_atomic(path, spec, 0644, err);
	free(path);
	json_decref(spec);
	free(hash);
	free(cdir);
	return r;
}

typedef int (*container_fn)(const struct node_paths *p, const char *dir, const json_t *c, bool init,
			    size_t index, void *arg, struct gerr **err);

static int each_container(const struct node_paths *p, const char *dir, const json_t *pod,
			  container_fn fn, void *arg, struct gerr **err)
{
	const json_t *spec = json_object_get(pod, "spec");
	const char *lists[] = { "initContainers", "containers" };
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(spec, lists[l]), i, c)
			if (fn(p, dir, c, l == 0, i, arg, err) < 0)
				return -1;
	}
	return 0;
}

static int start_container(const struct node_paths *p, const char *dir, const json_t *c, bool init,
			   size_t index, void *arg, struct gerr **err)
{
	const json_t *pod = arg;
	if (write_spec(pod, c, init, index, dir, err) < 0)
		return -1;
	return shim_start(p, dir, json_string_value(json_object_get(c, "name")), err);
}

static int grace_ms(const json_t *pod)
{
	json_int_t g = json_integer_value(json_object_get(json_object_get(pod, "spec"),
							  "terminationGracePeriodSeconds"));
	return (int)((g > 0 ? g : 30) * 1000) + STOP_EXTRA_MS;
}

static int stop_container(const struct node_paths *p, const char *dir, const json_t *c, bool init,
			  size_t index, void *arg, struct gerr **err)
{
	(void)init;
	(void)index;
	struct gerr *e = NULL;
	if (shim_stop(p, dir, json_string_value(json_object_get(c, "name")), grace_ms(arg), &e) < 0) {
		fprintf(stderr, "gitops: %s\n", e ? e->msg : "stopping a container failed");
		gerr_free(e);
	}
	return 0;
}

static char *netns_name(const char *uid)
{
	return xasprintf("gitops-%s", uid);
}

static bool host_network(const json_t *pod)
{
	return json_is_true(json_object_get(json_object_get(pod, "spec"), "hostNetwork"));
}

static int remove_pod(const struct node_paths *p, struct journal *j, const char *uid, const char *pod_cidr)
{
	char *dir = pod_path(p, uid);
	struct gerr *e = NULL;
	json_t *pod = pod_load(dir, &e);
	gerr_clear(&e);
	if (pod)
		each_container(p, dir, pod, stop_container, pod, NULL);
	char *ns = netns_name(uid), *nspath = xasprintf("/run/netns/%s", ns);
	if (pod && !host_network(pod) && access(nspath, F_OK) == 0) {
		if (cni_del(p, pod_cidr, uid, nspath, &e) < 0) {
			fprintf(stderr, "gitops: pod %s: %s\n", uid, e->msg);
			gerr_clear(&e);
		}
	}
	netns_delete(ns, NULL);
	volumes_teardown(dir);
	char *sdir = xasprintf("%s/secrets", dir);
	umount2(sdir, MNT_DETACH);
	free(sdir);
	rm_rf(dir);
	if (pod) {
		json_t *body = json_pack("{s:s, s:O?, s:O?}", "uid", uid, "namespace",
					 json_object_get(pod, "namespace"), "name", json_object_get(pod, "name"));
		char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		journal_append(j, "pod.deleted", text, strlen(text), NULL, NULL);
		free(text);
		json_decref(body);
	}
	json_decref(pod);
	free(ns);
	free(nspath);
	free(dir);
	return 0;
}

/* Leave a record of why a pod failed; the next apply removes it and tries again. */
static void pod_failed(const json_t *pod, const char *dir, const char *reason, struct gerr **err)
{
	gerr_wrap(err, "pod %s/%s", json_string_value(json_object_get(pod, "namespace")),
		  json_string_value(json_object_get(pod, "name")));
	json_t *why = json_pack("{s:s, s:s}", "reason", reason, "message", err && *err ? (*err)->msg : "failed");
	char *path = xasprintf("%s/error.json", dir);
	mkdir_p(dir, 0700, NULL);
	json_save_atomic(path, why, 0644, NULL);
	write_pod_json(pod, dir, NULL);
	free(path);
	json_decref(why);
}

/* The first half of creating a pod: its sandbox (netns and IP, volumes, pod.json). */
static int create_pod(const struct node_paths *p, struct journal *j, const json_t *plan, json_t *pod,
		      struct gerr **err)
{
	const char *uid = json_string_value(json_object_get(pod, "uid"));
	char *ph = api_json_sha256(pod);
	json_object_set_new(pod, "planHash", json_string(ph));
	free(ph);
	const char *cidr = json_string_value(json_object_get(plan, "podCIDR"));
	char *dir = pod_path(p, uid);
	int r = mkdir_p(dir, 0700, err);
	json_object_set_new(pod, "node", json_string(json_string_value(json_object_get(plan, "node"))));
	json_object_set_new(pod, "podDir", json_string(dir));
	char *hash = pod_hash(pod);
	json_object_set_new(pod, "podHash", json_string(hash));
	free(hash);
	char *now = rfc3339_now();
	json_object_set_new(pod, "startTime", json_string(now));
	free(now);
	if (r == 0 && !host_network(pod)) {
		char *ns = netns_name(uid), *path = NULL, *ip = NULL;
		r = netns_create(ns, &path, err);
		if (r == 0)
			r = cni_add(p, cidr ? cidr : "10.244.0.0/24", uid, path, &ip, err);
		if (r == 0) {
			json_object_set_new(pod, "netns", json_string(path));
			json_object_set_new(pod, "podIP", json_string(ip));
		}
		free(ns);
		free(path);
		free(ip);
	} else if (r == 0) {
		json_object_set_new(pod, "netns", json_null());
		const char *hip = json_string_value(json_object_get(plan, "hostIP"));
		json_object_set_new(pod, "podIP", json_string(hip ? hip : "127.0.0.1"));
	}
	if (r == 0)
		r = write_secrets(pod, dir, err);
	if (r == 0)
		r = write_etc(p, pod, plan, dir, err);
	if (r == 0)
		r = volumes_setup(pod, dir, err);
	if (r == 0)
		r = write_pod_json(pod, dir, err);
	if (r == 0) {
		json_t *body = json_pack("{s:s, s:O, s:O, s:O}", "uid", uid, "namespace",
					 json_object_get(pod, "namespace"), "name", json_object_get(pod, "name"),
					 "podIP", json_object_get(pod, "podIP"));
		char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		journal_append(j, "pod.created", text, strlen(text), NULL, NULL);
		free(text);
		json_decref(body);
	}
	if (r < 0)
		pod_failed(pod, dir, "CreatePodSandboxError", err);
	free(dir);
	return r;
}

/* The second half of creating a pod: its containers, once its rules are loaded. */
static int start_pod(const struct node_paths *p, json_t *pod, struct gerr **err)
{
	char *dir = pod_path(p, json_string_value(json_object_get(pod, "uid")));
	int r = each_container(p, dir, pod, start_container, pod, err);
	if (r < 0)
		pod_failed(pod, dir, "CreatePodSandboxError", err);
	free(dir);
	return r;
}

/* ---- updating a running pod ---- */

struct update_ctx {
	json_t *pod;
};

static int update_container(const struct node_paths *p, const char *dir, const json_t *c, bool init,
			    size_t index, void *arg, struct gerr **err)
{
	struct update_ctx *u = arg;
	const char *name = json_string_value(json_object_get(c, "name"));
	char *want = container_hash(u->pod, c);
	char *path = xasprintf("%s/containers/%s/spec.json", dir, name);
	json_t *have = json_load_path(path, 1 << 24, NULL);
	bool same = have && !strcmp(json_string_value(json_object_get(have, "hash")) ?: "", want);
	int r = 0;
	if (!same) {
		shim_stop(p, dir, name, grace_ms(u->pod), NULL);
		r = start_container(p, dir, c, init, index, u->pod, err);
	} else if (!shim_alive(dir, name)) {
		/* the shim died: replace it unless its container is done for good */
		char *spath = xasprintf("%s/containers/%s/state.json", dir, name);
		json_t *st = json_load_path(spath, 1 << 20, NULL);
		if (!json_is_true(json_object_get(st, "final"))) {
			shim_stop(p, dir, name, 1000, NULL);
			r = shim_start(p, dir, name, err);
		}
		json_decref(st);
		free(spath);
	}
	json_decref(have);
	free(path);
	free(want);
	return r;
}

static int update_pod(const struct node_paths *p, json_t *have, json_t *pod, struct gerr **err)
{
	const char *uid = json_string_value(json_object_get(pod, "uid"));
	char *dir = pod_path(p, uid);
	char *ph = api_json_sha256(pod);
	json_object_set_new(pod, "planHash", json_string(ph));
	free(ph);
	/* carry over what the node decided at creation */
	const char *keys[] = { "node", "podDir", "podHash", "netns", "podIP", "startTime" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		json_object_set(pod, keys[i], json_object_get(have, keys[i]));
	int r = write_secrets(pod, dir, err);
	if (r == 0)
		r = volumes_setup(pod, dir, err);
	if (r == 0)
		r = write_pod_json(pod, dir, err);
	struct update_ctx u = { pod };
	if (r == 0)
		r = each_container(p, dir, pod, update_container, &u, err);
	free(dir);
	return r;
}

static bool needs_new_pod(const json_t *have, const json_t *pod, const char *dir)
{
	char *path = xasprintf("%s/error.json", dir);
	bool failed = access(path, F_OK) == 0;
	free(path);
	if (failed)
		return true;
	char *h = pod_hash(pod);
	bool changed = strcmp(json_string_value(json_object_get(have, "podHash")) ?: "", h) != 0;
	free(h);
	if (changed)
		return true;
	/* containers added or removed also mean a new pod */
	const char *lists[] = { "initContainers", "containers" };
	for (int l = 0; l < 2; l++) {
		const json_t *a = json_object_get(json_object_get(have, "spec"), lists[l]);
		const json_t *b = json_object_get(json_object_get(pod, "spec"), lists[l]);
		if (json_array_size(a) != json_array_size(b))
			return true;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!json_equal(json_object_get(json_array_get(a, i), "name"),
					json_object_get(json_array_get(b, i), "name")))
				return true;
	}
	return false;
}

/* ---- apply ---- */

static int lock_apply(const struct node_paths *p, int *ret_fd, struct gerr **err)
{
	if (mkdir_p(p->run, 0700, err) < 0)
		return -1;
	char *path = xasprintf("%s/apply.lock", p->run);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0)
		return gerr_sys(err, "open %s/apply.lock", p->run);
	for (int i = 0; i < APPLY_LOCK_TIMEOUT_S * 10; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*ret_fd = fd;
			return 0;
		}
		usleep(100000);
	}
	close(fd);
	return gerr_set(err, GERR_IO, "another node apply is still running on this node");
}

static json_t *parse_plan(const char *plan, size_t len, struct gerr **err)
{
	if (len > RUNTIME_MAX_PLAN)
		return gerr_set(err, GERR_FAIL, "plan larger than %u bytes", RUNTIME_MAX_PLAN), NULL;
	json_error_t je;
	json_t *v = json_loadb(plan, len, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		return gerr_set(err, GERR_FAIL, "plan: line %d column %d: %s", je.line, je.column, je.text), NULL;
	json_int_t proto = json_integer_value(json_object_get(v, "protocol"));
	if (proto != RUNTIME_PROTOCOL) {
		json_decref(v);
		return gerr_set(err, GERR_FAIL, "protocol %lld not supported; this node speaks %d",
				(long long)proto, RUNTIME_PROTOCOL), NULL;
	}
	size_t i;
	json_t *pod;
	json_array_foreach(json_object_get(v, "pods"), i, pod) {
		const char *uid = json_string_value(json_object_get(pod, "uid"));
		bool keep = json_is_true(json_object_get(pod, "keep"));
		if (!valid_uid(uid) || (!keep && !json_is_object(json_object_get(pod, "spec")))) {
			json_decref(v);
			return gerr_set(err, GERR_FAIL, "plan: pods[%zu]: a uid of 8-64 [a-z0-9-] and a spec are required", i), NULL;
		}
	}
	return v;
}

/* Journal "plan.applied" only when the plan's digest differs from the last one: the
 * sha256 of its bytes as they came (the controller writes equal plans alike; 10,000
 * Services dumped again to hash them cost ~40 ms). */
static void record_plan(const struct node_paths *p, struct journal *j, const json_t *plan, const char *bytes,
			size_t len)
{
	char *digest = rt_sha256_hex(bytes, len);
	char *path = xasprintf("%s/plan.digest", p->state);
	struct sbuf last = SBUF_INIT;
	sb_read_file(&last, path, 256, NULL);
	if (strcmp(last.buf, digest)) {
		/* how the network and the cluster state came: whole, as a delta, or not at
		 * all (the node has them) */
		const json_t *nd = json_object_get(plan, "networkDelta");
		const char *net = nd ? "delta" : json_object_get(plan, "network") ? "whole" : "none";
		const char *cs = json_object_get(plan, "clusterDelta") ? "delta" : json_object_get(plan, "cluster") ? "whole" : "none";
		json_t *body = json_pack("{s:s, s:i, s:s, s:s}", "digest", digest, "pods",
					 (int)json_array_size(json_object_get(plan, "pods")), "network", net, "cluster", cs);
		if (nd)
			json_object_set_new(body, "services", json_integer((json_int_t)json_object_size(
								       json_object_get(nd, "services"))));
		char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		if (journal_append(j, "plan.applied", text, strlen(text), NULL, NULL) == 0)
			write_file_atomic(path, digest, strlen(digest), 0644, NULL);
		free(text);
		json_decref(body);
	}
	sb_release(&last);
	free(path);
	free(digest);
}

/* uids of the pods this node has. */
static void existing_pods(const struct node_paths *p, struct strvec *ret)
{
	DIR *d = opendir(p->pods);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && valid_uid(e->d_name))
			strvec_push(ret, e->d_name);
	if (d)
		closedir(d);
}

static const json_t *find_pod(const json_t *plan, const char *uid)
{
	size_t i;
	json_t *pod;
	json_array_foreach(json_object_get(plan, "pods"), i, pod)
		if (!strcmp(json_string_value(json_object_get(pod, "uid")), uid))
			return pod;
	return NULL;
}

/* One pod failing never stops the others; its status says why. */
static void pod_error(struct gerr **e)
{
	if (*e)
		fprintf(stderr, "gitops: %s\n", (*e)->msg);
	gerr_clear(e);
}

/* Remove the pods the plan does not list, update the others, create the sandboxes
 * of new ones (listed in fresh: their containers start after the rules). */
static void converge_pods(const struct node_paths *p, struct journal *j, json_t *plan, json_t *fresh)
{
	const char *cidr = json_string_value(json_object_get(plan, "podCIDR"));
	struct strvec have = STRVEC_INIT;
	existing_pods(p, &have);
	for (size_t i = 0; i < have.n; i++)
		if (!find_pod(plan, have.v[i]))
			remove_pod(p, j, have.v[i], cidr ? cidr : "10.244.0.0/24");
	size_t i;
	json_t *pod;
	json_array_foreach(json_object_get(plan, "pods"), i, pod) {
		const char *uid = json_string_value(json_object_get(pod, "uid"));
		if (json_is_true(json_object_get(pod, "keep")))
			continue; /* the controller does not know its spec: leave it as it is */
		char *dir = pod_path(p, uid);
		struct gerr *e = NULL;
		json_t *cur = access(dir, F_OK) == 0 ? pod_load(dir, &e) : NULL;
		gerr_clear(&e);
		int r;
		if (cur && needs_new_pod(cur, pod, dir)) {
			remove_pod(p, j, uid, cidr ? cidr : "10.244.0.0/24");
			json_decref(cur);
			cur = NULL;
		}
		r = cur ? update_pod(p, cur, pod, &e) : create_pod(p, j, plan, pod, &e);
		if (r == 0 && !cur)
			json_array_append(fresh, pod);
		pod_error(&e);
		json_decref(cur);
		free(dir);
	}
	strvec_clear(&have);
}

/* The network rules with every new pod in them, then the new pods' containers: a
 * new pod is isolated from its first packet. When the rules cannot be loaded, the
 * new pods wait (NetworkRulesError) and the next apply tries again. */
static void converge_network(const struct node_paths *p, struct journal *j, const json_t *plan,
			     const json_t *fresh)
{
	struct gerr *e = NULL, *ne = NULL;
	json_t *net = json_object_get(plan, "network");   /* filled in by the refresh */
	const json_t *delta = json_object_get(plan, "networkDelta");
	int nr = delta ? network_apply_delta(p, j, delta, &ne) : network_save(p, net, &ne);
	if (nr == 0 && !delta)
		nr = network_refresh(p, j, "plan", json_is_object(net) ? net : NULL, &ne);
	if (nr < 0)
		fprintf(stderr, "gitops: %s\n", ne ? ne->msg : "network rules failed");
	size_t i;
	json_t *pod;
	json_array_foreach(fresh, i, pod) {
		if (nr < 0) {
			char *dir = pod_path(p, json_string_value(json_object_get(pod, "uid")));
			gerr_set(&e, GERR_FAIL, "%s", ne ? ne->msg : "network rules failed");
			pod_failed(pod, dir, "NetworkRulesError", &e);
			free(dir);
		} else {
			start_pod(p, pod, &e);
		}
		pod_error(&e);
	}
	gerr_free(ne);
}

static int converge(const struct node_paths *p, struct journal *j, json_t *plan, struct gerr **err)
{
	json_t *fresh = json_array();
	converge_pods(p, j, plan, fresh);
	converge_network(p, j, plan, fresh);
	json_decref(fresh);
	(void)err;
	return 0;
}

/* Registries the plan says are plain HTTP, and registry mirrors, reach the shims
 * (and image.c) through the environment the shims inherit. */
static void export_registries(const json_t *plan)
{
	struct sbuf list = SBUF_INIT;
	const char *have = getenv("GITOPS_INSECURE_REGISTRIES");
	if (have && *have)
		sb_adds(&list, have);
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(plan, "insecureRegistries"), i, r)
		if (json_string_value(r))
			sb_addf(&list, "%s%s", list.len ? "," : "", json_string_value(r));
	if (list.len)
		setenv("GITOPS_INSECURE_REGISTRIES", list.buf, 1);
	sb_reset(&list);
	const char *key;
	json_t *m;
	json_object_foreach(json_object_get(plan, "registryMirrors"), key, m)
		if (json_string_value(m))
			sb_addf(&list, "%s%s=%s", list.len ? "," : "", key, json_string_value(m));
	if (list.len)
		setenv("GITOPS_REGISTRY_MIRRORS", list.buf, 1);
	sb_release(&list);
}

int node_apply(const struct node_opts *o, const char *plan_text, size_t plan_len,
	       json_t **ret_status, struct gerr **err)
{
	rt_crypto_init();
	json_t *plan = parse_plan(plan_text, plan_len, err);
	if (!plan)
		return -1;
	export_registries(plan);
	struct node_paths p;
	int fd = -1;
	struct journal *j = NULL;
	int r = node_paths_init(&p, o, err);
	if (r == 0)
		r = lock_apply(&p, &fd, err);
	if (r == 0)
		r = journal_open(p.journal, JOURNAL_CREATE, &j, NULL, err);
	const char *name = json_string_value(json_object_get(plan, "node"));
	if (r == 0 && name) {
		char *path = xasprintf("%s/node-name", p.state);
		struct sbuf have = SBUF_INIT;
		sb_read_file(&have, path, 256, NULL);
		if (strcmp(have.buf, name))
			write_file_atomic(path, name, strlen(name), 0644, NULL);
		sb_release(&have);
		free(path);
	}
	/* a delta onto another network or cluster state than ours: refused whole,
	 * before anything */
	if (r == 0 && json_object_get(plan, "networkDelta"))
		r = json_object_get(plan, "network") ? gerr_set(err, GERR_FAIL, "plan: network and networkDelta both given")
						     : network_delta_check(&p, json_object_get(plan, "networkDelta"), err);
	if (r == 0 && json_object_get(plan, "clusterDelta"))
		r = json_object_get(plan, "cluster") ? gerr_set(err, GERR_FAIL, "plan: cluster and clusterDelta both given")
						     : cluster_delta_check(&p, json_object_get(plan, "clusterDelta"), err);
	if (r == 0) {
		record_plan(&p, j, plan, plan_text, plan_len);
		r = cluster_record(&p, j, plan, err);
	}
	if (r == 0)
		r = converge(&p, j, plan, err);
	rt_journal_trim(j);
	journal_close(j);
	if (fd >= 0)
		close(fd);
	/* the status without the cluster state: the controller has just sent it */
	char *own = r == 0 ? cluster_state_hash(p.state) : NULL;
	struct node_opts so = *o;
	if (own)
		so.cluster_hash = own;
	if (r == 0)
		r = node_status(&so, UINT64_MAX, ret_status, err);
	free(own);
	if (p.state)
		node_paths_release(&p);
	json_decref(plan);
	return r;
}
