/* cni.c: pod network namespaces (`ip netns`) and the CNI protocol — each plugin of
 * the node's conflist run in order with CNI_* environment variables and its
 * network config (plus prevResult) on stdin. */
#include "runtime/internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CNI_TIMEOUT_MS 30000
#define GENERATED_MARK "gitops-generated"

int netns_create(const char *name, char **ret_path, struct gerr **err)
{
	char *path = xasprintf("/run/netns/%s", name);
	if (access(path, F_OK) != 0) {
		const char *argv[] = { "ip", "netns", "add", name, NULL };
		struct sbuf errb = SBUF_INIT;
		struct child c = { .argv = argv, .errb = &errb, .timeout_ms = 10000 };
		int st = child_run(&c, err);
		if (st != 0) {
			if (st > 0)
				gerr_set(err, GERR_IO, "ip netns add %s: %s", name, errb.buf);
			sb_release(&errb);
			free(path);
			return -1;
		}
		sb_release(&errb);
		/* a pod reaches itself on 127.0.0.1 and its own IP through lo */
		const char *up[] = { "ip", "-n", name, "link", "set", "lo", "up", NULL };
		struct child c2 = { .argv = up, .timeout_ms = 10000 };
		if (child_run(&c2, err) != 0) {
			free(path);
			return gerr_set(err, GERR_IO, "ip -n %s link set lo up failed", name);
		}
	}
	*ret_path = path;
	return 0;
}

int netns_delete(const char *name, struct gerr **err)
{
	char *path = xasprintf("/run/netns/%s", name);
	bool exists = access(path, F_OK) == 0;
	free(path);
	if (!exists)
		return 0;
	const char *argv[] = { "ip", "netns", "delete", name, NULL };
	struct sbuf errb = SBUF_INIT;
	struct child c = { .argv = argv, .errb = &errb, .timeout_ms = 10000 };
	int st = child_run(&c, err);
	if (st > 0)
		gerr_set(err, GERR_IO, "ip netns delete %s: %s", name, errb.buf);
	sb_release(&errb);
	return st == 0 ? 0 : -1;
}

/* ptp + host-local over the pod CIDR: every pod gets a veth with a /32 route on
 * the node, so pod-to-pod traffic crosses the node's forward hook (NetworkPolicy).
 * No ipMasq: the plugin's rule would masquerade pod traffic to other nodes' pods,
 * and NetworkPolicy there would see the node's address instead of the pod's. Our
 * nftables table masquerades only what leaves the cluster CIDR (netpol/netpol.h). */
static json_t *default_conflist(const struct node_paths *p, const char *pod_cidr)
{
	return json_pack("{s:s, s:s, s:b, s:[{s:s, s:b, s:i, s:{s:s, s:[[{s:s}]], s:[{s:s}], s:s}}]}",
			 "cniVersion", "1.0.0", "name", "gitops", GENERATED_MARK, 1, "plugins",
			 "type", "ptp", "ipMasq", 0, "mtu", 1500, "ipam", "type", "host-local",
			 "ranges", "subnet", pod_cidr, "routes", "dst", "0.0.0.0/0", "dataDir",
			 p->cni_data);
}

/* The node's conflist: the user's file as it is, or ours (rewritten when the pod
 * CIDR or our recipe changed). */
static json_t *load_conflist(const struct node_paths *p, const char *pod_cidr, struct gerr **err)
{
	json_t *conf = NULL;
	if (access(p->cni_conf, F_OK) == 0) {
		conf = json_load_path(p->cni_conf, 1 << 20, err);
		if (!conf)
			return NULL;
		if (!json_is_true(json_object_get(conf, GENERATED_MARK)))
			return conf;
		json_t *want = default_conflist(p, pod_cidr);
		bool same = json_equal(conf, want);
		json_decref(want);
		if (same)
			return conf;
		json_decref(conf);   /* ours, of another pod CIDR or an older recipe */
	}
	conf = default_conflist(p, pod_cidr);
	char *dir = xstrdup(p->cni_conf);
	*strrchr(dir, '/') = '\0';
	int r = mkdir_p(dir, 0700, err);
	free(dir);
	if (r < 0 || json_save_atomic(p->cni_conf, conf, 0644, err) < 0) {
		json_decref(conf);
		return NULL;
	}
	return conf;
}

static char *plugin_path(const struct node_paths *p, const char *type)
{
	char *dirs = xstrdup(p->cni_bin);
	char *found = NULL;
	for (char *d = strtok(dirs, ":"); d && !found; d = strtok(NULL, ":")) {
		char *path = xasprintf("%s/%s", d, type);
		if (access(path, X_OK) == 0)
			found = path;
		else
			free(path);
	}
	free(dirs);
	return found;
}

/* Run one plugin; on ADD, *ret_result gets its result. */
static int run_plugin(const struct node_paths *p, const char *command, json_t *netconf,
		      const char *uid, const char *netns, json_t **ret_result, struct gerr **err)
{
	const char *type = json_string_value(json_object_get(netconf, "type"));
	if (!type)
		return gerr_set(err, GERR_FAIL, "CNI: a plugin without a type in %s", p->cni_conf);
	char *bin = plugin_path(p, type);
	if (!bin)
		return gerr_set(err, GERR_IO, "CNI plugin %s not found in %s (Debian package "
					      "containernetworking-plugins)", type, p->cni_bin);
	char *in = json_dumps(netconf, JSON_COMPACT);
	struct strvec env = STRVEC_INIT;
	strvec_pushf(&env, "CNI_COMMAND=%s", command);
	strvec_pushf(&env, "CNI_CONTAINERID=%s", uid);
	strvec_pushf(&env, "CNI_NETNS=%s", netns);
	strvec_push(&env, "CNI_IFNAME=eth0");
	strvec_pushf(&env, "CNI_PATH=%s", p->cni_bin);
	strvec_push(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	const char *argv[] = { bin, NULL };
	struct sbuf out = SBUF_INIT, errb = SBUF_INIT;
	struct child c = { .argv = argv, .env = strvec_argv(&env), .in = in, .in_len = strlen(in),
			   .out = &out, .errb = &errb, .timeout_ms = CNI_TIMEOUT_MS };
	int st = child_run(&c, err);
	int r = 0;
	if (st != 0) {
		json_t *e = json_loads(out.buf, 0, NULL);
		const char *msg = json_string_value(json_object_get(e, "msg"));
		if (st > 0)
			gerr_set(err, GERR_IO, "CNI %s %s: %s", type, command,
				 msg ? msg : errb.len ? errb.buf : out.buf);
		json_decref(e);
		r = -1;
	} else if (ret_result) {
		*ret_result = json_loads(out.buf, 0, NULL);
		if (!*ret_result)
			r = gerr_set(err, GERR_IO, "CNI %s %s: result is not JSON", type, command);
	}
	strvec_clear(&env);
	sb_release(&out);
	sb_release(&errb);
	free(in);
	free(bin);
	return r;
}

static json_t *netconf_for(const json_t *conf, const json_t *plugin, json_t *prev)
{
	json_t *nc = json_deep_copy(plugin);
	json_object_set(nc, "cniVersion", json_object_get(conf, "cniVersion"));
	json_object_set(nc, "name", json_object_get(conf, "name"));
	if (prev)
		json_object_set(nc, "prevResult", prev);
	return nc;
}

static char *first_ip(const json_t *result)
{
	const char *addr = json_string_value(json_object_get(json_array_get(json_object_get(result, "ips"), 0), "address"));
	if (!addr)
		return NULL;
	const char *slash = strchr(addr, '/');
	return slash ? xstrndup(addr, (size_t)(slash - addr)) : xstrdup(addr);
}

int cni_add(const struct node_paths *p, const char *pod_cidr, const char *uid,
	    const char *netns_path, char **ret_ip, struct gerr **err)
{
	json_t *conf = load_conflist(p, pod_cidr, err);
	if (!conf)
		return -1;
	json_t *plugins = json_object_get(conf, "plugins"), *prev = NULL;
	size_t i;
	json_t *plugin;
	int r = 0;
	json_array_foreach(plugins, i, plugin) {
		json_t *nc = netconf_for(conf, plugin, prev), *result = NULL;
		r = run_plugin(p, "ADD", nc, uid, netns_path, &result, err);
		json_decref(nc);
		if (r < 0)
			break;
		json_decref(prev);
		prev = result;
	}
	if (r == 0) {
		*ret_ip = prev ? first_ip(prev) : NULL;
		if (!*ret_ip)
			r = gerr_set(err, GERR_IO, "CNI: the result has no IP address");
	}
	json_decref(prev);
	json_decref(conf);
	return r;
}

int cni_del(const struct node_paths *p, const char *pod_cidr, const char *uid,
	    const char *netns_path, struct gerr **err)
{
	json_t *conf = load_conflist(p, pod_cidr, err);
	if (!conf)
		return -1;
	json_t *plugins = json_object_get(conf, "plugins");
	int r = 0;
	for (size_t i = json_array_size(plugins); i-- > 0;) {
		json_t *nc = netconf_for(conf, json_array_get(plugins, i), NULL);
		struct gerr *e = NULL;
		if (run_plugin(p, "DEL", nc, uid, netns_path, NULL, &e) < 0) {
			/* DEL goes on through every plugin; report the first failure */
			if (err && !*err)
				*err = e;
			else
				gerr_free(e);
			r = -1;
		}
		json_decref(nc);
	}
	json_decref(conf);
	return r;
}
