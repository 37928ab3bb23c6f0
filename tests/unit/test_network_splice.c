/* tests/unit/test_network_splice.c: a networkDelta spliced into network.json's text
 * (runtime/network_splice.c) gives the bytes json_dumps(JSON_COMPACT |
 * JSON_SORT_KEYS) gives for the whole network parsed, changed and dumped again: the
 * digest a node reports after a delta is the one the controller computes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/internal.h"

#define FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/* Service NS/NAME with n endpoints; strings with what a naive scan would trip on. */
static json_t *service(const char *ns, const char *name, int n)
{
	json_t *eps = json_array();
	for (int i = 0; i < n; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.244.%d.%d", i / 200, i % 200 + 2);
		json_array_append_new(eps, json_pack("{s:s, s:s, s:b, s:b, s:s, s:s}", "ip", ip, "node", "node2",
						     "local", 0, "ready", 1, "hostname", "", "name", "p\"}],{x\\"));
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:i, s:i, s:s}], s:o, s:{s:s}}", "namespace", ns, "name", name,
			 "type", "ClusterIP", "clusterIP", "10.96.0.17", "ports", "name", "http", "port", 80,
			 "targetPort", 8080, "protocol", "TCP", "endpoints", eps, "annotations", "note",
			 "\"services\":[{]");
}

/* A network of the Services NS-i/svc-j, i < nns, j < per, sorted as the controller
 * sorts them, with settings before and after "services" in key order. */
static json_t *network(int nns, int per)
{
	json_t *svcs = json_array();
	for (int i = 0; i < nns; i++)
		for (int j = 0; j < per; j++) {
			char ns[16], name[16];
			snprintf(ns, sizeof(ns), "ns-%d", i);
			snprintf(name, sizeof(name), "svc-%d", j);
			json_array_append_new(svcs, service(ns, name, j % 3));
		}
	/* strcmp order: svc-10 before svc-2 */
	json_t *sorted = json_array();
	size_t n = json_array_size(svcs);
	json_t **v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(svcs, i);
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0; k--) {
			const char *a = json_string_value(json_object_get(v[k - 1], "namespace"));
			const char *b = json_string_value(json_object_get(v[k], "namespace"));
			int c = strcmp(a, b);
			if (!c)
				c = strcmp(json_string_value(json_object_get(v[k - 1], "name")),
					   json_string_value(json_object_get(v[k], "name")));
			if (c <= 0)
				break;
			json_t *t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	free(v);
	json_decref(svcs);
	return json_pack("{s:s, s:s, s:[], s:[{s:s}], s:o, s:[], s:s, s:[]}", "clusterCIDR", "10.244.0.0/16",
			 "dnsServer", "169.254.20.10", "namespaces", "pods", "name", "]}\"services\"", "services", sorted,
			 "policies", "serviceCIDR", "10.96.0.0/12", "zzz");
}

static int cmp_key(const json_t *s, const char *ns, const char *name)
{
	int c = strcmp(json_string_value(json_object_get(s, "namespace")), ns);
	return c ? c : strcmp(json_string_value(json_object_get(s, "name")), name);
}

/* The oracle: the whole network parsed, changed by the delta, dumped. */
static char *whole(const char *text, const json_t *delta)
{
	json_t *net = json_loads(text, 0, NULL), *svcs = json_object_get(net, "services"), *now;
	const char *key;
	json_object_foreach((json_t *)delta, key, now) {
		char *ns = strdup(key), *name = strchr(ns, '/');
		*name++ = '\0';
		size_t i = 0;
		while (i < json_array_size(svcs) && cmp_key(json_array_get(svcs, i), ns, name) < 0)
			i++;
		if (i < json_array_size(svcs) && cmp_key(json_array_get(svcs, i), ns, name) == 0)
			json_array_remove(svcs, i);
		if (json_is_object(now))
			json_array_insert(svcs, i, now);
		free(ns);
	}
	char *out = json_dumps(net, FLAGS);
	json_decref(net);
	return out;
}

/* The splice equals the oracle, and each change's old text is the old Service. */
static void check(const json_t *net, const json_t *delta)
{
	char *text = json_dumps(net, FLAGS), *want = whole(text, delta);
	struct sbuf out = SBUF_INIT;
	struct net_change *ch = NULL;
	size_t n = 0;
	struct gerr *err = NULL;
	assert_int_equal(net_splice_services(text, strlen(text), delta, &out, &ch, &n, &err), 0);
	assert_string_equal(out.buf, want);
	assert_int_equal(n, json_object_size(delta));
	for (size_t i = 0; i < n; i++) {
		const char *slash = strchr(ch[i].key, '/');
		assert_non_null(slash);
		assert_true(ch[i].now == json_object_get(delta, ch[i].key) || !ch[i].now);
		if (!ch[i].old_end)
			continue;
		json_t *old = json_loadb(text + ch[i].old_start, ch[i].old_end - ch[i].old_start, 0, NULL);
		assert_non_null(old);
		char *k = xasprintf("%s/%s", json_string_value(json_object_get(old, "namespace")),
				    json_string_value(json_object_get(old, "name")));
		assert_string_equal(k, ch[i].key);
		free(k);
		json_decref(old);
	}
	free(ch);
	sb_release(&out);
	/* the same change made in the parsed network (network-delta.json read back) */
	json_t *parsed = json_loads(text, 0, NULL), *after = json_loads(want, 0, NULL);
	net_overlay_apply(parsed, delta);
	char *made = json_dumps(parsed, FLAGS);
	assert_string_equal(made, want);
	free(made);
	/* the digest of the whole changed network, made from the changed Services alone */
	struct api_netsum sum, all;
	api_netsum_of(net, &sum);
	const char *key;
	json_t *now, *s;
	size_t i;
	json_object_foreach((json_t *)delta, key, now) {
		json_array_foreach(json_object_get(net, "services"), i, s) {
			char *k = xasprintf("%s/%s", json_string_value(json_object_get(s, "namespace")),
					    json_string_value(json_object_get(s, "name")));
			if (!strcmp(k, key))
				api_netsum_service(&sum, s, -1);
			free(k);
		}
		api_netsum_service(&sum, now, 1);
	}
	api_netsum_of(after, &all);
	char *d1 = api_netsum_digest(&sum), *d2 = api_netsum_digest(&all), *f = api_netsum_format(&sum);
	assert_string_equal(d1, d2);
	struct api_netsum back;
	assert_int_equal(api_netsum_parse(f, &back), 0);
	assert_memory_equal(&back, &sum, sizeof(sum));
	free(f);
	free(d2);
	free(d1);
	json_decref(after);
	json_decref(parsed);
	free(want);
	free(text);
}

static void test_replace_insert_delete(void **state)
{
	(void)state;
	json_t *net = network(4, 12);
	json_t *d = json_object();
	/* one endpoint more, in the middle */
	json_object_set_new(d, "ns-1/svc-5", service("ns-1", "svc-5", 3));
	check(net, d);
	/* the first and the last replaced, one deleted, new ones before all, between two,
	 * after all, and in a namespace of their own */
	json_object_set_new(d, "ns-0/svc-0", service("ns-0", "svc-0", 7));
	json_object_set_new(d, "ns-3/svc-9", service("ns-3", "svc-9", 0));
	json_object_set_new(d, "ns-2/svc-3", json_null());
	json_object_set_new(d, "a/first", service("a", "first", 1));
	json_object_set_new(d, "ns-2/svc-11a", service("ns-2", "svc-11a", 2));
	json_object_set_new(d, "zz/last", service("zz", "last", 1));
	json_object_set_new(d, "ns-10/x", service("ns-10", "x", 1));
	check(net, d);
	/* deleting what is not there changes nothing */
	json_t *d2 = json_pack("{s:n}", "nope/nothing");
	check(net, d2);
	json_decref(d2);
	json_decref(d);
	json_decref(net);
}

static void test_delete_all_and_insert_into_empty(void **state)
{
	(void)state;
	json_t *net = network(1, 3), *d = json_object();
	json_object_set_new(d, "ns-0/svc-0", json_null());
	json_object_set_new(d, "ns-0/svc-1", json_null());
	json_object_set_new(d, "ns-0/svc-2", json_null());
	check(net, d);
	json_t *empty = network(0, 0), *d2 = json_object();
	json_object_set_new(d2, "b/two", service("b", "two", 2));
	json_object_set_new(d2, "a/one", service("a", "one", 1));
	check(empty, d2);
	json_decref(d2);
	json_decref(empty);
	json_decref(d);
	json_decref(net);
}

static void test_delete_runs(void **state)
{
	(void)state;
	json_t *net = network(2, 5);
	for (int mask = 0; mask < 1 << 6; mask++) {   /* every subset of six Services */
		json_t *d = json_object();
		for (int b = 0; b < 6; b++)
			if (mask & 1 << b) {
				char key[32], name[16];
				snprintf(name, sizeof(name), "svc-%d", b % 5);
				snprintf(key, sizeof(key), "ns-%d/%s", b / 5, name);
				char ns[8];
				snprintf(ns, sizeof(ns), "ns-%d", b / 5);
				json_object_set_new(d, key, b % 2 ? json_null() : service(ns, name, 4));
			}
		check(net, d);
		json_decref(d);
	}
	json_decref(net);
}

static void refused(const char *text, const json_t *delta)
{
	struct sbuf out = SBUF_INIT;
	struct net_change *ch = NULL;
	size_t n = 0;
	struct gerr *err = NULL;
	assert_int_equal(net_splice_services(text, strlen(text), delta, &out, &ch, &n, &err), -1);
	assert_non_null(err);
	assert_null(ch);
	gerr_free(err);
	sb_release(&out);
}

static void test_refused(void **state)
{
	(void)state;
	json_t *ok = json_pack("{s:n}", "a/b");
	refused("{\"services\":[{\"name\":\"b\",\"namespace\":\"a\"},{\"name\":\"a\",\"namespace\":\"a\"}]}", ok);
	refused("{\"services\":[{\"name\":\"a\",\"namespace\":\"a\"},{\"name\":\"a\",\"namespace\":\"a\"}]}", ok);
	refused("{\"services\":[{\"name\":\"a\\u0041\",\"namespace\":\"a\"}]}", ok);
	refused("{\"services\":[{\"name\":\"a\"}]}", ok);
	refused("{\"pods\":[]}", ok);
	refused("{\"services\":[{\"name\":\"a\",\"namespace\":\"a\"}", ok);
	refused("[]", ok);
	const char *fine = "{\"services\":[]}";
	json_t *bad[] = { json_pack("{s:n}", "nokey"), json_pack("{s:n}", "a/b/c"), json_pack("{s:n}", "/b"),
			  json_pack("{s:i}", "a/b", 1), json_pack("{s:{s:s, s:s}}", "a/b", "namespace", "a", "name", "c"),
			  json_pack("{s:{s:s}}", "a/b", "name", "b") };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		refused(fine, bad[i]);
		json_decref(bad[i]);
	}
	json_decref(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replace_insert_delete),
		cmocka_unit_test(test_delete_all_and_insert_into_empty),
		cmocka_unit_test(test_delete_runs),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
