/* network_fill.c: what only this node knows, filled into network.json before the
 * rules are compiled (network.c): the node's own addresses, its pods' IPs and
 * readiness. */
#include "runtime/internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool pod_ready(const char *dir, const json_t *pod)
{
	const json_t *cs = json_object_get(json_object_get(pod, "spec"), "containers");
	bool ready = json_array_size(cs) > 0;
	size_t i;
	json_t *c;
	json_array_foreach(cs, i, c) {
		char *path = xasprintf("%s/containers/%s/state.json", dir, jstr(c, "name") ?: "");
		json_t *st = access(path, F_OK) == 0 ? json_load_path(path, 1 << 20, NULL) : NULL;
		ready &= json_is_true(json_object_get(st, "ready"));
		json_decref(st);
		free(path);
	}
	return ready;
}

/* uid → {"ip", "ready", "hostNetwork"} of every pod this node has. */
json_t *net_local_pods(const struct node_paths *p)
{
	json_t *out = json_object();
	DIR *d = opendir(p->pods);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *dir = xasprintf("%s/%s", p->pods, e->d_name), *path = xasprintf("%s/pod.json", dir);
		json_t *pod = json_load_path(path, RUNTIME_MAX_PLAN, NULL);
		const char *uid = jstr(pod, "uid");
		if (uid)
			json_object_set_new(out, uid, json_pack("{s:O?, s:b, s:b}", "ip", json_object_get(pod, "podIP"),
								"ready", pod_ready(dir, pod), "hostNetwork",
								json_is_true(json_object_get(json_object_get(pod, "spec"),
											     "hostNetwork"))));
		json_decref(pod);
		free(path);
		free(dir);
	}
	if (d)
		closedir(d);
	return out;
}

static bool parse_cidr(const char *s, uint32_t *ret_net, uint32_t *ret_mask)
{
	char buf[32];
	const char *slash = s ? strchr(s, '/') : NULL;
	int64_t bits;
	if (!slash || (size_t)(slash - s) >= sizeof(buf) || parse_i64(slash + 1, 0, 32, &bits) < 0)
		return false;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*ret_mask = bits ? ~0u << (32 - bits) : 0;
	*ret_net = ntohl(a.s_addr) & *ret_mask;
	return true;
}

/* The node's own IPv4 addresses that can serve NodePorts: not loopback, not
 * link-local (the DNS address lives there), not in the pods' range. */
static json_t *node_ips(const json_t *net)
{
	uint32_t cnet = 0, cmask = 0;
	bool have = parse_cidr(jstr(net, "clusterCIDR"), &cnet, &cmask) ||
		    parse_cidr(jstr(net, "podCIDR"), &cnet, &cmask);
	json_t *out = json_array();
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) < 0)
		return out;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		uint32_t h = ntohl(a.s_addr);
		if ((h >> 24) == 127 || (h >> 16) == 0xa9fe || (have && (h & cmask) == cnet))
			continue;
		char text[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, text, sizeof(text));
		bool dup = false;
		size_t k;
		json_t *v;
		json_array_foreach(out, k, v)
			dup |= !strcmp(json_string_value(v), text);
		if (!dup)
			json_array_append_new(out, json_string(text));
	}
	freeifaddrs(ifs);
	return out;
}

static void fill_pods(json_t *net, const json_t *local)
{
	size_t i;
	json_t *pod;
	json_array_foreach(json_object_get(net, "pods"), i, pod) {
		const json_t *lp = json_object_get(local, jstr(pod, "uid") ?: "");
		if (!json_is_true(json_object_get(pod, "local")) || !jstr(pod, "uid"))
			continue;
		if (!lp || !jstr(lp, "ip")) {
			json_object_del(pod, "ip"); /* not (or no longer) here: no rules */
			continue;
		}
		bool hostnet = json_is_true(json_object_get(lp, "hostNetwork"));
		if (hostnet)
			json_object_set_new(pod, "hostNetwork", json_true());
		if (!hostnet || !jstr(pod, "ip"))
			json_object_set(pod, "ip", json_object_get(lp, "ip"));
	}
}

static void fill_endpoints(json_t *net, const json_t *local)
{
	size_t i;
	json_t *svc;
	json_array_foreach(json_object_get(net, "services"), i, svc) {
		json_t *eps = json_object_get(svc, "endpoints");
		for (size_t k = 0; k < json_array_size(eps);) {
			json_t *ep = json_array_get(eps, k);
			const json_t *lp = json_object_get(local, jstr(ep, "uid") ?: "");
			if (!json_is_true(json_object_get(ep, "local")) || !jstr(ep, "uid")) {
				k++;
				continue;
			}
			if (!lp || !jstr(lp, "ip")) {
				json_array_remove(eps, k); /* the pod is gone from this node */
				continue;
			}
			if (!json_is_true(json_object_get(lp, "hostNetwork")) || !jstr(ep, "ip"))
				json_object_set(ep, "ip", json_object_get(lp, "ip"));
			json_object_set(ep, "ready", json_object_get(lp, "ready"));
			k++;
		}
	}
}

/* network.json (loaded afresh, changed in place) with the node's addresses, its
 * pods' IPs and readiness; returns net_local_pods(). */
json_t *network_fill(const struct node_paths *p, json_t *net)
{
	if (!json_is_array(json_object_get(net, "nodeIPs")))
		json_object_set_new(net, "nodeIPs", node_ips(net));
	json_t *local = net_local_pods(p);
	fill_pods(net, local);
	fill_endpoints(net, local);
	return local;
}
