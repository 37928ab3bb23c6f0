/* tests/unit/test_netpol.c: the Services/NetworkPolicy compiler — golden files
 * (GOLDEN_UPDATE=1 rewrites them), intervals, selectors, input errors, order
 * independence, a NetworkPolicy model check on generated policies, and as root:
 * every golden output checked and loaded by ./gitops-nft, 10,000 services x 2
 * endpoints timed. GITOPS_NFT overrides the applier's path. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define NETPOL_INTERNAL
#include "netpol/netpol.h"

#define GOLDEN_DIR "tests/netpol/golden"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *load(const char *name)
{
	char *path = xasprintf("%s/%s.json", GOLDEN_DIR, name);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		fail_msg("%s:%d: %s", path, je.line, je.text);
	free(path);
	return j;
}

static char *compile_ok(const json_t *in)
{
	struct sbuf out = SBUF_INIT;
	struct gerr *err = NULL;
	if (netpol_compile(in, &out, &err) < 0) {
		fprintf(stderr, "netpol_compile: %s\n", err->msg);
		gerr_free(err);
		fail();
	}
	return sb_detach(&out, NULL);
}

static char *compile_err(const char *json)
{
	json_error_t je;
	json_t *in = json_loads(json, 0, &je);
	assert_non_null(in);
	struct sbuf out = SBUF_INIT;
	struct gerr *err = NULL;
	assert_int_equal(netpol_compile(in, &out, &err), -1);
	assert_non_null(err);
	char *msg = xstrdup(err->msg);
	gerr_free(err);
	sb_release(&out);
	json_decref(in);
	return msg;
}

/* ---- golden files ------------------------------------------------------------ */

static void report_diff(const char *name, const char *want, const char *got)
{
	size_t line = 1;
	const char *w = want, *g = got;
	while (*w && *w == *g) {
		if (*w == '\n') {
			line++;
			want = w + 1;
			got = g + 1;
		}
		w++;
		g++;
	}
	fprintf(stderr, "%s.nft differs at line %zu (GOLDEN_UPDATE=1 rewrites it)\n"
			"  want: %.*s\n  got:  %.*s\n", name, line,
		(int)strcspn(want, "\n"), want, (int)strcspn(got, "\n"), got);
}

static void test_golden(void **state)
{
	const char *name = *state;
	json_t *in = load(name);
	char *got = compile_ok(in);
	char *path = xasprintf("%s/%s.nft", GOLDEN_DIR, name);
	const char *upd = getenv("GOLDEN_UPDATE");
	struct sbuf want = SBUF_INIT;
	if (upd && !strcmp(upd, "1")) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(got, f);
		assert_int_equal(fclose(f), 0);
	} else {
		struct gerr *err = NULL;
		if (sb_read_file(&want, path, 64u << 20, &err) < 0) {
			fprintf(stderr, "%s (GOLDEN_UPDATE=1 creates it)\n", err->msg);
			gerr_free(err);
			fail();
		}
		if (strcmp(want.buf, got)) {
			report_diff(name, want.buf, got);
			fail();
		}
	}
	sb_release(&want);
	free(path);
	free(got);
	json_decref(in);
}

/* ---- applying with ./gitops-nft (root) ------------------------------------------ */

static const char *applier(void)
{
	const char *p = getenv("GITOPS_NFT");
	return p && *p ? p : "./gitops-nft";
}

static bool can_apply(void)
{
	return geteuid() == 0 && access(applier(), X_OK) == 0;
}

/* Runs the applier on text: --check in this namespace (a dry run commits
 * nothing), or a real load inside a private network namespace. */
static int run_applier(const char *text, bool check, double *ret_secs, struct sbuf *out)
{
	struct strvec argv = STRVEC_INIT;
	char *unshare = check ? NULL : which("unshare");
	if (!check && !unshare)
		return -2;
	if (unshare) {
		strvec_push(&argv, unshare);
		strvec_push(&argv, "--net");
	}
	strvec_push(&argv, applier());
	if (check)
		strvec_push(&argv, "--check");
	struct child c = { .argv = strvec_argv(&argv), .in = text, .in_len = strlen(text),
			   .out = out, .timeout_ms = 120000 };
	struct gerr *err = NULL;
	double t0 = now();
	int st = child_run(&c, &err);
	*ret_secs = now() - t0;
	if (st < 0) {
		fprintf(stderr, "%s\n", err->msg);
		gerr_free(err);
	}
	strvec_clear(&argv);
	free(unshare);
	return st;
}

/* The table renamed, so a check never names a live table of this machine. */
static char *compile_renamed(json_t *in)
{
	char *t = xasprintf("gitops_test_%ld", (long)getpid());
	json_object_set_new(in, "table", json_string(t));
	free(t);
	return compile_ok(in);
}

static void test_golden_nft(void **state)
{
	const char *name = *state;
	if (!can_apply())
		skip();
	json_t *in = load(name);
	char *text = compile_renamed(in);
	for (int check = 1; check >= 0; check--) {
		struct sbuf out = SBUF_INIT;
		double secs;
		int st = run_applier(text, check, &secs, &out);
		if (st != 0 && st != -2)
			fprintf(stderr, "%s: gitops-nft%s exited %d:\n%s", name,
				check ? " --check" : " (netns)", st, out.buf);
		assert_true(st == 0 || st == -2);
		sb_release(&out);
	}
	free(text);
	json_decref(in);
}

#include "../netpol/model.h"
#include "../netpol/scale.h"

/* ---- unit tests ------------------------------------------------------------------ */

static void test_ranges(void **state)
{
	struct np_range v[] = { { 10, 20 }, { 5, 9 }, { 30, 40 }, { 15, 35 }, { 50, 50 },
				{ UINT32_MAX - 1, UINT32_MAX }, { UINT32_MAX, UINT32_MAX } };
	size_t n = np_ranges_normalize(v, ARRAY_SIZE(v));
	assert_int_equal(n, 3);
	assert_true(v[0].lo == 5 && v[0].hi == 40);
	assert_true(v[1].lo == 50 && v[1].hi == 50);
	assert_true(v[2].lo == UINT32_MAX - 1 && v[2].hi == UINT32_MAX);

	struct arena a;
	arena_init(&a, 0);
	struct np_range ex[] = { { 0, 9 }, { 20, 29 }, { 25, 120 } }, *out;
	size_t nout;
	np_range_minus(&a, (struct np_range){ 10, 100 }, ex, 3, &out, &nout);
	assert_int_equal(nout, 1);
	assert_true(out[0].lo == 10 && out[0].hi == 19);
	np_range_minus(&a, (struct np_range){ 0, UINT32_MAX }, ex, 1, &out, &nout);
	assert_int_equal(nout, 1);
	assert_true(out[0].lo == 10 && out[0].hi == UINT32_MAX);
	arena_release(&a);

	struct sbuf sb = SBUF_INIT;
	np_fmt_range(&sb, 0x0a000000, 0x0affffff);
	sb_addc(&sb, ' ');
	np_fmt_range(&sb, 0, UINT32_MAX);
	sb_addc(&sb, ' ');
	np_fmt_range(&sb, 0x0a000001, 0x0a000009);
	sb_addc(&sb, ' ');
	np_fmt_range(&sb, 0x0a000004, 0x0a000007);
	assert_string_equal(sb.buf, "10.0.0.0/8 0.0.0.0/0 10.0.0.1-10.0.0.9 10.0.0.4/30");
	sb_release(&sb);
}

static bool in_boxes(const struct np_box *b, size_t n, uint32_t a, uint8_t proto, uint16_t p)
{
	for (size_t i = 0; i < n; i++)
		if (a >= b[i].alo && a <= b[i].ahi && proto == b[i].proto && p >= b[i].plo && p <= b[i].phi)
			return true;
	return false;
}

/* Random boxes on a small grid: the union is kept, the result is disjoint. */
static void test_boxes(void **state)
{
	uint32_t seed = 12345;
	for (int round = 0; round < 200; round++) {
		struct arena a;
		arena_init(&a, 0);
		struct np_box in[12], *out;
		size_t n = 1 + round % 12, nout;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			uint32_t lo = (seed >> 8) % 40, hi = lo + (seed >> 20) % 10;
			uint16_t plo = (uint16_t)((seed >> 4) % 20), phi = (uint16_t)(plo + (seed >> 16) % 6);
			in[i] = (struct np_box){ lo, hi, plo, phi, (seed >> 28) % 2 ? NP_TCP : NP_UDP };
		}
		np_boxes_normalize(&a, in, n, &out, &nout);
		for (uint32_t x = 0; x < 52; x++)
			for (uint16_t p = 0; p < 28; p++)
				for (int k = 0; k < 2; k++) {
					uint8_t proto = k ? NP_TCP : NP_UDP;
					assert_int_equal(in_boxes(in, n, x, proto, p), in_boxes(out, nout, x, proto, p));
				}
		for (size_t i = 0; i < nout; i++)
			for (size_t j = i + 1; j < nout; j++)
				assert_false(out[i].proto == out[j].proto && out[i].alo <= out[j].ahi &&
					     out[j].alo <= out[i].ahi && out[i].plo <= out[j].phi &&
					     out[j].plo <= out[i].phi);
		arena_release(&a);
	}
}

static void test_selectors(void **state)
{
	json_t *labels = json_pack("{s:s, s:s}", "app", "web", "tier", "front");
	json_t *sel = json_pack("{s:{s:s}, s:[{s:s, s:s, s:[s, s]}, {s:s, s:s}]}",
				"matchLabels", "app", "web", "matchExpressions",
				"key", "tier", "operator", "In", "values", "front", "back",
				"key", "canary", "operator", "DoesNotExist");
	assert_int_equal(np_selector_match(sel, labels, NULL), 1);
	json_object_set_new(labels, "canary", json_string("1"));
	assert_int_equal(np_selector_match(sel, labels, NULL), 0);
	json_t *empty = json_object();
	assert_int_equal(np_selector_match(empty, labels, NULL), 1);
	json_decref(empty);
	json_t *ns = json_pack("{s:{s:s}}", "matchLabels", "kubernetes.io/metadata.name", "prod");
	assert_int_equal(np_selector_match(ns, NULL, "prod"), 1);
	assert_int_equal(np_selector_match(ns, labels, "dev"), 0);
	json_t *bad = json_pack("{s:[{s:s, s:s}]}", "matchExpressions", "key", "a", "operator", "Near");
	assert_int_equal(np_selector_check(bad), -1);
	json_t *bad2 = json_pack("{s:[{s:s, s:s}]}", "matchExpressions", "key", "a", "operator", "In");
	assert_int_equal(np_selector_check(bad2), -1);
	json_decref(labels);
	json_decref(sel);
	json_decref(ns);
	json_decref(bad);
	json_decref(bad2);
}

static void expect_err(const char *json, const char *needle)
{
	char *msg = compile_err(json);
	if (!strstr(msg, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", msg, needle);
	free(msg);
}

static void test_errors(void **state)
{
	expect_err("[]", "must be a JSON object");
	expect_err("{\"family\":\"ip6\"}", "family");
	expect_err("{\"table\":\"a b\"}", "table");
	expect_err("{\"nodeIPs\":[\"1.2.3\"]}", "nodeIPs[0]");
	expect_err("{\"clusterCIDR\":\"10.0.0.0/33\"}", "clusterCIDR");
	expect_err("{\"services\":[{\"namespace\":\"a;b\",\"name\":\"x\"}]}", "services[0]");
	expect_err("{\"services\":[{\"namespace\":\"a\",\"name\":\"x\",\"clusterIP\":\"10.0.0.1\","
		   "\"ports\":[{\"port\":80,\"protocol\":\"ICMP\"}]}]}", "protocol");
	expect_err("{\"services\":[{\"namespace\":\"a\",\"name\":\"x\",\"clusterIP\":\"10.0.0.1\","
		   "\"ports\":[{\"port\":80},{\"port\":80,\"name\":\"b\"}]}]}", "listed twice");
	expect_err("{\"services\":[{\"namespace\":\"a\",\"name\":\"x\",\"clusterIP\":\"10.0.0.1\","
		   "\"ports\":[{\"port\":70000}]}]}", "ports[0]: port");
	expect_err("{\"services\":[{\"namespace\":\"a\",\"name\":\"x\",\"clusterIP\":\"10.0.0.1\","
		   "\"ports\":[{\"port\":80,\"name\":\"a}b\"}]}]}", "name");
	expect_err("{\"services\":[{\"namespace\":\"a\",\"name\":\"x\",\"clusterIP\":\"10.0.0.1\","
		   "\"ports\":[{\"port\":80}],\"endpoints\":[{\"ip\":\"x\"}]}]}", "endpoints[0]");
	expect_err("{\"pods\":[{\"namespace\":\"a\",\"name\":\"p\",\"ip\":\"::1\"}]}", "pods[0]");
	expect_err("{\"pods\":[{\"namespace\":\"a\",\"name\":\"p\",\"ip\":\"10.0.0.1\"},"
		   "{\"namespace\":\"a\",\"name\":\"p\",\"ip\":\"10.0.0.2\"}]}", "listed twice");
	expect_err("{\"services\":[{\"namespace\":\"a\",\"name\":\"x\"},{\"namespace\":\"a\",\"name\":\"x\"}]}",
		   "listed twice");
	expect_err("{\"policies\":[{\"namespace\":\"a\",\"name\":\"p\",\"podSelector\":{},\"policyTypes\":[]},"
		   "{\"namespace\":\"a\",\"name\":\"p\",\"podSelector\":{},\"policyTypes\":[]}]}", "listed twice");
	expect_err("{\"policies\":[{\"namespace\":\"a\",\"name\":\"p\",\"podSelector\":{}}]}", "policyTypes");
	expect_err("{\"policies\":[{\"namespace\":\"a\",\"name\":\"p\",\"podSelector\":{},"
		   "\"policyTypes\":[\"Ingress\"],\"ingress\":[{\"from\":[{}]}]}]}", "invalid peer");
	expect_err("{\"policies\":[{\"namespace\":\"a\",\"name\":\"p\",\"podSelector\":{},"
		   "\"policyTypes\":[\"Ingress\"],\"ingress\":[{\"ports\":[{\"port\":\"x\",\"endPort\":9}]}]}]}",
		   "invalid port");
	expect_err("{\"policies\":[{\"namespace\":\"a\",\"name\":\"p\",\"podSelector\":{},"
		   "\"policyTypes\":[\"Ingress\"],\"ingress\":[{\"from\":[{\"ipBlock\":{\"cidr\":\"10/8\"}}]}]}]}",
		   "invalid peer");
}

/* The same input in another order compiles to the same bytes. */
static void test_order_independent(void **state)
{
	json_t *in = load("egress-deny-allow-dns");
	char *a = compile_ok(in);
	const char *keys[] = { "pods", "namespaces", "policies", "services" };
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		json_t *arr = json_object_get(in, keys[k]), *rev = json_array();
		for (size_t i = json_array_size(arr); i-- > 0;)
			json_array_append(rev, json_array_get(arr, i));
		json_object_set_new(in, keys[k], rev);
	}
	char *b = compile_ok(in);
	assert_string_equal(a, b);
	free(a);
	free(b);
	json_decref(in);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every tests/netpol/golden/NAME.json, sorted. */
static char **golden_names(size_t *ret_n)
{
	DIR *d = opendir(GOLDEN_DIR);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0, alloc = 0;
	while (d && (e = readdir(d))) {
		if (!str_has_suffix(e->d_name, ".json"))
			continue;
		GROW(v, alloc, n + 1);
		v[n++] = xstrndup(e->d_name, strlen(e->d_name) - 5);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_name);
	*ret_n = n;
	return v;
}

int main(void)
{
	size_t ng, n = 0;
	char **names = golden_names(&ng);
	struct CMUnitTest *t = xcalloc(2 * ng + 16, sizeof(*t));
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_boxes),
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_scale_policies),
	};
	if (ng < 16) {
		fprintf(stderr, "run from the top of the tree: %s holds %zu inputs\n", GOLDEN_DIR, ng);
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		t[n++] = fixed[i];
	for (size_t i = 0; i < ng; i++) {
		t[n++] = (struct CMUnitTest){ xasprintf("golden %s", names[i]), test_golden,
					      NULL, NULL, names[i] };
		t[n++] = (struct CMUnitTest){ xasprintf("gitops-nft %s", names[i]), test_golden_nft,
					      NULL, NULL, names[i] };
	}
	int r = _cmocka_run_group_tests("netpol", t, n, NULL, NULL);
	for (size_t i = ARRAY_SIZE(fixed); i < n; i++)
		free((char *)t[i].name);
	for (size_t i = 0; i < ng; i++)
		free(names[i]);
	free(names);
	free(t);
	return r;
}
