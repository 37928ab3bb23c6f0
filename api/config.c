/* config.c: cluster settings — the ConfigMap "gitops" in namespace "gitops-system"
 * (a ConfigMap, so the repository stays valid on a real cluster) — validated
 * strictly, with defaults for every key. */
#include "api/internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

enum ckind { C_CIDR, C_CIDR4, C_IP4, C_RANGE, C_DOMAIN, C_DURATION, C_INT, C_HOSTS, C_MIRRORS };

struct ckey {
	const char *name;
	enum ckind kind;
	const char *dflt;
};

static const struct ckey keys[] = {
	{ "clusterCIDR", C_CIDR, "10.244.0.0/16" },
	{ "clusterDomain", C_DOMAIN, "cluster.local" },
	{ "dnsServer", C_IP4, "169.254.20.10" },
	{ "evictionTimeout", C_DURATION, "5m" },
	{ "insecureRegistries", C_HOSTS, "" },
	{ "registryMirrors", C_MIRRORS, "" },
	{ "nodeGracePeriod", C_DURATION, "40s" },
	{ "nodePortRange", C_RANGE, "30000-32767" },
	{ "podCIDRMask", C_INT, "24" },
	{ "serviceCIDR", C_CIDR4, "10.96.0.0/12" },
	{ "sshParallel", C_INT, "16" },
	{ "sshTimeout", C_DURATION, "30s" },
	{ "syncTimeout", C_DURATION, "10m" },
};

static const char *check_cidr(const char *s)
{
	const char *slash = strchr(s, '/');
	int64_t bits;
	unsigned char buf[16];
	if (!slash)
		return "must be a CIDR (e.g. 10.244.0.0/16)";
	char *ip = xstrndup(s, (size_t)(slash - s));
	bool v6 = strchr(ip, ':') != NULL;
	int ok = inet_pton(v6 ? AF_INET6 : AF_INET, ip, buf);
	free(ip);
	if (ok != 1 || parse_i64(slash + 1, 0, v6 ? 128 : 32, &bits) < 0)
		return "must be a CIDR (e.g. 10.244.0.0/16)";
	return NULL;
}

/* Services are IPv4 (the nftables compiler is): a range with room for the
 * reserved network, first and broadcast addresses and at least one more. */
static const char *check_cidr4(const char *s)
{
	const char *slash = strchr(s, '/');
	int64_t bits;
	struct in_addr a;
	char *ip = slash ? xstrndup(s, (size_t)(slash - s)) : NULL;
	int ok = ip ? inet_pton(AF_INET, ip, &a) : 0;
	free(ip);
	if (ok != 1 || parse_i64(slash + 1, 0, 30, &bits) < 0)
		return "must be a CIDR of IPv4 addresses, at most /30 (e.g. 10.96.0.0/12)";
	return NULL;
}

static const char *check_range(const char *s, int64_t *lo, int64_t *hi)
{
	const char *dash = strchr(s, '-');
	if (!dash)
		return "must be a port range FROM-TO (e.g. 30000-32767)";
	char *a = xstrndup(s, (size_t)(dash - s));
	int r = parse_i64(a, 1, 65535, lo) | parse_i64(dash + 1, 1, 65535, hi);
	free(a);
	if (r < 0 || *lo > *hi)
		return "must be a port range FROM-TO with 1 <= FROM <= TO <= 65535";
	return NULL;
}

static const char *check_value(const struct ckey *k, const char *v, struct sbuf *why)
{
	int64_t a, b, ms;
	struct gerr *e = NULL;
	switch (k->kind) {
	case C_CIDR:
		return check_cidr(v);
	case C_CIDR4:
		return check_cidr4(v);
	case C_IP4: {
		struct in_addr addr;
		return inet_pton(AF_INET, v, &addr) == 1 ? NULL : "must be an IPv4 address (e.g. 169.254.20.10)";
	}
	case C_RANGE:
		return check_range(v, &a, &b);
	case C_DOMAIN:
		return check_dns1123_subdomain(v);
	case C_INT:
		return parse_i64(v, 1, 1000000, &a) < 0 ? "must be a positive integer" : NULL;
	case C_HOSTS:
		for (const char *p = v; *p; p++)
			if (!(*p == ',' || *p == ' ' || *p == ':' || *p == '.' || *p == '-' || *p == '[' ||
			      *p == ']' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')))
				return "must be a comma-separated list of registry host:port";
		return NULL;
	case C_MIRRORS: /* "docker.io=10.0.0.5:5000,quay.io=mirror.local" */
		for (const char *p = v; *p;) {
			p += strspn(p, ", ");
			size_t len = strcspn(p, ", ");
			const char *eq = memchr(p, '=', len);
			if (len && (!eq || eq == p || eq + 1 == p + len || memchr(eq + 1, '=', (size_t)(p + len - eq - 1))))
				return "must be a comma-separated list of REGISTRY=MIRROR (e.g. docker.io=10.0.0.5:5000)";
			for (const char *c = p; c < p + len; c++)
				if (!(*c == '=' || *c == ':' || *c == '.' || *c == '-' || *c == '[' || *c == ']' ||
				      (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z')))
					return "must be a comma-separated list of REGISTRY=MIRROR (e.g. docker.io=10.0.0.5:5000)";
			p += len;
		}
		return NULL;
	case C_DURATION:
		if (api_duration_parse(v, &ms, &e) < 0) {
			sb_addf(why, "must be a duration like 40s, 5m or 1h30m: %s", e ? e->msg : "");
			gerr_free(e);
			return why->buf;
		}
		if (ms <= 0)
			return "must be a positive duration";
		return NULL;
	}
	return NULL;
}

static const struct ckey *find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

bool api_is_config(const struct api_object *o)
{
	return !strcmp(o->kind->kind, "ConfigMap") && !strcmp(o->ns, API_CONFIG_NAMESPACE) &&
	       !strcmp(o->name, API_CONFIG_NAME);
}

void api_check_config(struct api_set *s, struct api_object *o)
{
	const struct ynode *data = yn_get(o->root, "data");
	struct sbuf label = SBUF_INIT;
	api_object_label(o, &label);
	for (size_t i = 0; data && data->type == YN_MAP && i < data->n; i++) {
		const struct ynode *k = data->items[2 * i], *v = data->items[2 * i + 1];
		struct sbuf path = SBUF_INIT, msg = SBUF_INIT, why = SBUF_INIT;
		sb_addf(&path, "data[%s]", k->str);
		const struct ckey *ck = find_key(k->str);
		const char *bad = NULL;
		if (!ck) {
			const char *best = NULL;
			size_t bestd = 4;
			for (size_t j = 0; j < ARRAY_SIZE(keys); j++) {
				size_t d = edit_distance(k->str, keys[j].name, bestd);
				if (d < bestd) {
					bestd = d;
					best = keys[j].name;
				}
			}
			if (best)
				sb_addf(&msg, "unknown setting (did you mean \"%s\"?)", best);
			else
				sb_adds(&msg, "unknown setting");
			api_diag_add(s, API_ERROR, o->file, k->line, k->col, label.buf, path.buf, msg.buf);
			o->invalid = true;
		} else if (v->type == YN_SCALAR && v->tag == YS_STR && (bad = check_value(ck, v->str, &why))) {
			sb_addf(&msg, "Invalid value: \"%s\": %s", v->str, bad);
			api_diag_add(s, API_ERROR, o->file, v->line, v->col, label.buf, path.buf, msg.buf);
			o->invalid = true;
		}
		sb_release(&path);
		sb_release(&msg);
		sb_release(&why);
	}
	sb_release(&label);
}

const char *api_config_get(const struct api_set *s, const char *key)
{
	const struct ckey *ck = find_key(key);
	for (size_t i = 0; i < s->nobjs; i++) {
		const struct api_object *o = &s->objs[i];
		if (!o->invalid && api_is_config(o)) {
			const char *v = yn_str(yn_get(yn_get(o->root, "data"), key));
			if (v)
				return v;
		}
	}
	return ck ? ck->dflt : NULL;
}
