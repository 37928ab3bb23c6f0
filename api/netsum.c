/* netsum.c: the network's digest, made so that a change of a few Services updates it
 * without the others (docs/node-protocol.md, "networkDigest").
 *
 *   H(v)    the sha256 of v's canonical JSON (sorted keys, compact), read as a
 *           256-bit big-endian number
 *   rest    H(the network object without "services" and "pods") plus the sum of
 *           H(p) over its pods, modulo 2^256
 *   sum     the sum of H(s) over its Services, modulo 2^256 (no order: a Service
 *           changed is its old H taken off and its new one added)
 *   digest  sha256 of "gitops-network/1 REST SUM\n", REST and SUM in hex
 *
 * The cluster state's digest (clusterHash) is made the same way: no rest (zero), the
 * sum of H([key, entry]) over its entries.
 *
 * The controller computes it of each node's view, the node of what it holds; equal
 * digests are equal networks (up to sha256 and the order of pods and Services), and
 * neither side hashes 10,000 Services to change one: the controller hashes each pod
 * and Service shared by its nodes' views once per pass. */
#include "api/api.h"

#include <openssl/evp.h>
#include <string.h>

void api_hash_json(const json_t *v, unsigned char out[32])
{
	char *text = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	unsigned int n = 0;
	EVP_Digest(text ? text : "", text ? strlen(text) : 0, out, &n, EVP_sha256(), NULL);
	free(text);
}

void api_sum_add(unsigned char a[32], const unsigned char b[32], int sign)
{
	int carry = 0;
	for (int i = 31; i >= 0; i--) {
		int v = sign > 0 ? a[i] + b[i] + carry : a[i] - b[i] - carry;
		carry = sign > 0 ? v > 255 : v < 0;
		a[i] = (unsigned char)(v & 0xff);
	}
}

void api_netsum_service(struct api_netsum *s, const json_t *service, int sign)
{
	if (!service || json_is_null(service))
		return;
	unsigned char h[32];
	api_hash_json(service, h);
	api_sum_add(s->sum, h, sign);
}

void api_netsum_entry(struct api_netsum *s, const char *key, const json_t *entry, int sign)
{
	if (!entry || json_is_null(entry))
		return;
	json_t *pair = json_pack("[s, O]", key, entry);
	api_netsum_service(s, pair, sign);
	json_decref(pair);
}

char *api_cluster_digest(const json_t *cs)
{
	struct api_netsum s;
	memset(&s, 0, sizeof(s));
	const char *key;
	json_t *entry;
	json_object_foreach((json_t *)cs, key, entry)
		api_netsum_entry(&s, key, entry, 1);
	return api_netsum_digest(&s);
}

void api_netsum_of(const json_t *network, struct api_netsum *out)
{
	memset(out, 0, sizeof(*out));
	json_t *rest = json_copy((json_t *)network), *x; /* shallow: the members are shared */
	json_object_del(rest, "services");
	json_object_del(rest, "pods");
	api_hash_json(rest, out->rest);
	json_decref(rest);
	unsigned char h[32];
	size_t i;
	json_array_foreach(json_object_get(network, "pods"), i, x) {
		api_hash_json(x, h);
		api_sum_add(out->rest, h, 1);
	}
	json_array_foreach(json_object_get(network, "services"), i, x)
		api_netsum_service(out, x, 1);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

char *api_netsum_format(const struct api_netsum *s)
{
	char *out = xmalloc(2 * 64 + 2);
	hex(s->rest, 32, out);
	out[64] = ' ';
	hex(s->sum, 32, out + 65);
	return out;
}

static int unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int api_netsum_parse(const char *text, struct api_netsum *out)
{
	if (!text || strlen(text) != 129 || text[64] != ' ')
		return -1;
	for (size_t i = 0; i < 64; i++) {
		const char *p = text + (i < 32 ? 2 * i : 65 + 2 * (i - 32));
		int hi = unhex(p[0]), lo = unhex(p[1]);
		if (hi < 0 || lo < 0)
			return -1;
		(i < 32 ? out->rest : out->sum)[i % 32] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

char *api_netsum_digest(const struct api_netsum *s)
{
	char *both = api_netsum_format(s), *line = xasprintf("gitops-network/1 %s\n", both);
	unsigned char md[32];
	unsigned int n = 0;
	EVP_Digest(line, strlen(line), md, &n, EVP_sha256(), NULL);
	free(line);
	free(both);
	char *out = xmalloc(65);
	hex(md, 32, out);
	return out;
}

/* ---- what a named targetPort needs ---- */

bool api_net_named_target(const json_t *svc)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(svc, "ports"), i, p)
		if (json_is_string(json_object_get(p, "targetPort")))
			return true;
	return false;
}

void api_net_named_ips(const json_t *svc, json_t *ips)
{
	size_t i;
	json_t *ep;
	if (api_net_named_target(svc))
		json_array_foreach(json_object_get(svc, "endpoints"), i, ep)
			if (json_string_value(json_object_get(ep, "ip")))
				json_object_set_new(ips, json_string_value(json_object_get(ep, "ip")), json_true());
}

json_t *api_net_pods_at(const json_t *pods, const json_t *ips)
{
	json_t *out = json_array(), *pod;
	size_t i;
	json_array_foreach(json_object_size(ips) ? (json_t *)pods : NULL, i, pod) {
		const char *ip = json_string_value(json_object_get(pod, "ip"));
		if (ip && json_object_get(ips, ip))
			json_array_append(out, pod);
	}
	return out;
}
