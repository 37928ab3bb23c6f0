/* tests/unit/test_formats.c: quantities, durations, IntOrString, name checks,
 * base64, label selectors, cron schedules and the ynode accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "api/internal.h"

/* ---- tree builder: every node lives in one arena per test ---- */

static struct arena A;

static int setup(void **state)
{
	arena_init(&A, 0);
	return 0;
}

static int teardown(void **state)
{
	arena_release(&A);
	return 0;
}

static struct ynode *node(uint8_t type)
{
	struct ynode *n = arena_alloc(&A, sizeof(*n));
	n->type = type;
	n->line = n->col = 1;
	return n;
}

static struct ynode *scal(uint8_t tag, const char *s)
{
	struct ynode *n = node(YN_SCALAR);
	n->tag = tag;
	n->str = arena_strdup(&A, s);
	n->len = strlen(s);
	return n;
}

#define STR(s) scal(YS_STR, s)
#define INT(s) scal(YS_INT, s)

static struct ynode *quoted(const char *s)
{
	struct ynode *n = STR(s);
	n->quoted = 1;
	return n;
}

/* map(n, "k1", v1, "k2", v2, ...) */
static struct ynode *map(unsigned n, ...)
{
	struct ynode *m = node(YN_MAP);
	m->n = n;
	m->items = arena_alloc(&A, sizeof(*m->items) * (2 * n + 1));
	va_list ap;
	va_start(ap, n);
	for (unsigned i = 0; i < n; i++) {
		m->items[2 * i] = STR(va_arg(ap, const char *));
		m->items[2 * i + 1] = va_arg(ap, struct ynode *);
	}
	va_end(ap);
	return m;
}

static struct ynode *seq(unsigned n, ...)
{
	struct ynode *s = node(YN_SEQ);
	s->n = n;
	s->items = arena_alloc(&A, sizeof(*s->items) * (n + 1));
	va_list ap;
	va_start(ap, n);
	for (unsigned i = 0; i < n; i++)
		s->items[i] = va_arg(ap, struct ynode *);
	va_end(ap);
	return s;
}

/* Asserts rc < 0 and that the error message is `want`; frees the error. */
static void expect_err(int rc, struct gerr *e, const char *want)
{
	assert_true(rc < 0);
	assert_non_null(e);
	assert_int_equal(e->code, GERR_FAIL);
	assert_string_equal(e->msg, want);
	gerr_free(e);
}

/* ---- ynode accessors ---- */

static void test_yn_access(void **state)
{
	struct ynode *labels = map(2, "app", STR("web"), "tier", STR("fe"));
	struct ynode *root = map(2, "kind", STR("Deployment"), "spec",
				 map(1, "template", map(1, "metadata", map(1, "labels", labels))));
	assert_ptr_equal(yn_path(root, "spec.template.metadata.labels"), labels);
	assert_string_equal(yn_str(yn_path(root, "spec.template.metadata.labels.app")), "web");
	assert_null(yn_path(root, "spec.template.nope"));
	assert_null(yn_path(root, "kind.x")); /* through a scalar */
	assert_null(yn_path(root, "spec."));
	assert_null(yn_path(NULL, "a"));
	assert_string_equal(yn_str(yn_get(root, "kind")), "Deployment");
	assert_null(yn_get(root, "kin"));
	assert_null(yn_get(root, "kindx"));
	assert_null(yn_get(labels, NULL));
	assert_null(yn_get(STR("x"), "x"));
	assert_null(yn_str(root));
	assert_null(yn_str(NULL));
	assert_int_equal(yn_len(root), 2);
	assert_int_equal(yn_len(STR("abc")), 0);
	assert_int_equal(yn_len(NULL), 0);

	struct ynode *s = seq(3, STR("a"), STR("b"), INT("3"));
	assert_int_equal(yn_len(s), 3);
	assert_string_equal(yn_str(yn_at(s, 1)), "b");
	assert_null(yn_at(s, 3));
	assert_null(yn_at(root, 0)); /* maps are not indexed */
	assert_null(yn_at(NULL, 0));
}

static void test_yn_int(void **state)
{
	static const struct { const char *s; int64_t v; } ok[] = {
		{ "0", 0 }, { "42", 42 }, { "-42", -42 }, { "+7", 7 }, { "0x1F", 31 }, { "0Xff", 255 },
		{ "0o17", 15 }, { "017", 15 }, { "09", 9 }, { "-010", -8 }, { "0b101", 5 },
		{ "1_000", 1000 }, { "0x_ff", 255 }, { "9223372036854775807", INT64_MAX },
		{ "-9223372036854775808", INT64_MIN }, { "0x7fffffffffffffff", INT64_MAX },
		{ "-0x8000000000000000", INT64_MIN },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		int64_t v = 12345;
		if (!yn_int(INT(ok[i].s), &v))
			fail_msg("yn_int(%s) failed", ok[i].s);
		assert_int_equal(v, ok[i].v);
	}
	static const char *const bad[] = { "9223372036854775808", "-9223372036854775809",
		"0x8000000000000000", "99999999999999999999999", "", "-", "+", "0x", "0b", "0b2",
		"0o8", "12a", "1.5", "0x1g", "_" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t v = 12345;
		if (yn_int(INT(bad[i]), &v))
			fail_msg("yn_int(%s) succeeded", bad[i]);
		assert_int_equal(v, 12345);
	}
	int64_t v = 0;
	assert_false(yn_int(STR("5"), &v));
	struct ynode *q = INT("5");
	q->quoted = 1;
	assert_false(yn_int(q, &v));
	assert_false(yn_int(map(0), &v));
	assert_false(yn_int(NULL, &v));
	assert_true(yn_int(INT("5"), NULL));
}

static void test_yn_bool(void **state)
{
	static const char *const t[] = { "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
					 "on", "On", "ON" };
	static const char *const f[] = { "n", "N", "no", "No", "NO", "false", "False", "FALSE",
					 "off", "Off", "OFF" };
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		bool v = false, w = true;
		assert_true(yn_bool(scal(YS_BOOL, t[i]), &v));
		assert_true(v);
		assert_true(yn_bool(scal(YS_BOOL, f[i]), &w));
		assert_false(w);
	}
	bool v = false;
	assert_false(yn_bool(scal(YS_BOOL, "tRUE"), &v));
	assert_false(yn_bool(scal(YS_BOOL, "maybe"), &v));
	assert_false(yn_bool(STR("true"), &v));
	assert_false(yn_bool(NULL, &v));
	assert_false(v);
}

/* ---- quantities ---- */

#define QREGEX "quantities must match the regular expression " \
	       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
#define QSUFFIX "unable to parse quantity's suffix"
#define QTOOBIG "quantity is too large (more than 9223372036854775807 milli-units)"

static void test_quantity_ok(void **state)
{
	static const struct { const char *s; int64_t milli; } cases[] = {
		{ "0", 0 }, { "1", 1000 }, { "250m", 250 }, { "1.5", 1500 }, { "0.5", 500 },
		{ ".5", 500 }, { "1.", 1000 }, { "+5", 5000 }, { "-1", -1000 }, { "00012", 12000 },
		{ "64Mi", 64LL * 1048576 * 1000 }, { "1Ki", 1024000 }, { "100Ki", 102400000 },
		{ "1.5Gi", 1610612736000LL }, { "0.5Ki", 512000 }, { "0.75Ki", 768000 },
		{ "1Ti", 1099511627776000LL }, { "1Pi", 1125899906842624000LL },
		{ "1k", 1000000 }, { "1M", 1000000000LL }, { "1G", 1000000000000LL },
		{ "1T", 1000000000000000LL }, { "5P", 5000000000000000000LL },
		{ "1e3", 1000000 }, { "1E3", 1000000 }, { "1e+3", 1000000 }, { "1.5e1", 15000 },
		{ "1e-3", 1 }, { "2E-3", 2 }, { "1e15", 1000000000000000000LL },
		{ "1n", 1 }, { "1u", 1 }, { "1000000n", 1 }, { "1000001n", 2 }, { "0.1m", 1 },
		{ "0.9m", 1 }, { "1.1m", 2 }, { "-0.1m", -1 }, { "-1.1m", -2 }, { "1e-100", 1 },
		{ "0e1000", 0 }, { "0.000", 0 }, { "0.0Ei", 0 }, { "-0", 0 }, { "0m", 0 },
		{ "0.0001Ki", 103 },              /* 102.4 rounds up */
		{ "1.0000000001Ki", 1024001 },    /* 1024000.0001024 */
		{ "0.001Ki", 1024 },
		{ "1.00000000000000000000000000001", 1001 }, /* digits far past int64 */
		{ " 1Gi ", 1073741824000LL },     /* Quantity.UnmarshalJSON trims */
		{ "9223372036854775807m", INT64_MAX }, { "-9223372036854775807m", -INT64_MAX },
		{ "9223372036854775.807", INT64_MAX }, { "8589934.591Gi", 9223372035781033984LL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t v = 42;
		struct gerr *e = NULL;
		if (api_quantity_parse(cases[i].s, &v, &e) < 0)
			fail_msg("\"%s\": %s", cases[i].s, e->msg);
		assert_null(e);
		if (v != cases[i].milli)
			fail_msg("\"%s\": got %lld, want %lld", cases[i].s, (long long)v,
				 (long long)cases[i].milli);
	}
	/* works without an error out-parameter */
	int64_t v;
	assert_int_equal(api_quantity_parse("2", &v, NULL), 0);
	assert_int_equal(v, 2000);
}

static void test_quantity_errors(void **state)
{
	static const struct { const char *s; const char *msg; } cases[] = {
		{ "", QREGEX }, { "   ", QREGEX }, { "abc", QREGEX }, { "1 Gi", QREGEX },
		{ "1.5.5", QREGEX }, { "Gi", QREGEX }, { "-", QREGEX }, { "+-1", QREGEX },
		{ "1Gi ", NULL }, /* trailing space is trimmed: valid */
		{ "12e1k", QREGEX }, { "1x", QREGEX }, { "0x10", QREGEX },
		{ ".", "unable to parse numeric part of quantity" },
		{ "1Gi3", QSUFFIX }, { "1K", QSUFFIX }, { "1kk", QSUFFIX }, { "1e", QSUFFIX },
		{ "1m-", QSUFFIX }, { "1ee3", QSUFFIX }, { "1e99999999999999999999", QSUFFIX },
		{ "1E", QTOOBIG }, { "7Ei", QTOOBIG }, { "1Ei", QTOOBIG }, { "1e16", QTOOBIG },
		{ "9223372036854775808m", QTOOBIG }, { "-9223372036854775808m", QTOOBIG },
		{ "10000000000000000000000", QTOOBIG }, { "1e9999999999999", QTOOBIG },
		{ "8388608Ti", QTOOBIG }, { "8589934.592Gi", QTOOBIG },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t v = 42;
		struct gerr *e = NULL;
		int rc = api_quantity_parse(cases[i].s, &v, &e);
		if (!cases[i].msg) {
			assert_int_equal(rc, 0);
			continue;
		}
		if (rc == 0)
			fail_msg("\"%s\" parsed as %lld", cases[i].s, (long long)v);
		assert_int_equal(v, 42); /* untouched on failure */
		expect_err(rc, e, cases[i].msg);
	}
	int64_t v;
	assert_true(api_quantity_parse("bad", &v, NULL) < 0);
	/* an error already set is kept */
	struct gerr *e = NULL;
	gerr_set(&e, GERR_IO, "first");
	assert_true(api_quantity_parse("bad", &v, &e) < 0);
	assert_string_equal(e->msg, "first");
	gerr_free(e);
}

/* A long mantissa: many fraction digits, then a binary suffix. */
static void test_quantity_long(void **state)
{
	struct sbuf sb = SBUF_INIT;
	sb_adds(&sb, "1.");
	for (int i = 0; i < 5000; i++)
		sb_addc(&sb, '0');
	sb_adds(&sb, "1Ei"); /* 1.000...1 * 2^60 units: overflows */
	int64_t v;
	struct gerr *e = NULL;
	int rc = api_quantity_parse(sb.buf, &v, &e);
	expect_err(rc, e, QTOOBIG);
	sb_reset(&sb);
	sb_adds(&sb, "0.");
	for (int i = 0; i < 5000; i++)
		sb_addc(&sb, '0');
	sb_adds(&sb, "1Mi");
	assert_int_equal(api_quantity_parse(sb.buf, &v, NULL), 0);
	assert_int_equal(v, 1); /* tiny but not zero: rounds up to 1m */
	sb_release(&sb);
}

/* ---- durations ---- */

static void test_duration_ok(void **state)
{
	static const struct { const char *s; int64_t ms; } cases[] = {
		{ "0", 0 }, { "-0", 0 }, { "+0", 0 }, { "300ms", 300 }, { "1.5h", 5400000 },
		{ "2h45m", 9900000 }, { "10s", 10000 }, { "1.5s", 1500 }, { "-1.5s", -1500 },
		{ "+2s", 2000 }, { "1us", 0 }, { "1500us", 1 }, { "1999999ns", 1 },
		{ "1500\xc2\xb5s", 1 }, { "2000\xce\xbcs", 2 }, { ".5s", 500 }, { "1.s", 1000 },
		{ "1h1m1s1ms", 3661001 }, { "0.1h", 360000 }, { "1.1s", 1100 }, { "0s", 0 },
		{ "1.0000009ms", 1 }, { "-1.9ms", -1 }, /* toward zero */
		{ "0.3333333333333333333333h", 1199999 },
		{ "1.000000000000000000000000001s", 1000 },
		{ "2562047h", 9223369200000LL }, { "9223372036854775807ns", 9223372036854LL },
		{ "-9223372036854775808ns", -9223372036854LL }, { "1m1m", 120000 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t v = 42;
		struct gerr *e = NULL;
		if (api_duration_parse(cases[i].s, &v, &e) < 0)
			fail_msg("\"%s\": %s", cases[i].s, e->msg);
		if (v != cases[i].ms)
			fail_msg("\"%s\": got %lld, want %lld", cases[i].s, (long long)v,
				 (long long)cases[i].ms);
	}
}

static void test_duration_errors(void **state)
{
	static const struct { const char *s; const char *msg; } cases[] = {
		{ "", "time: invalid duration \"\"" },
		{ "-", "time: invalid duration \"-\"" },
		{ "1", "time: missing unit in duration \"1\"" },
		{ "00", "time: missing unit in duration \"00\"" },
		{ "1.5.5s", "time: missing unit in duration \"1.5.5s\"" },
		{ "1x", "time: unknown unit \"x\" in duration \"1x\"" },
		{ "1h 2m", "time: unknown unit \"h \" in duration \"1h 2m\"" },
		{ "1H", "time: unknown unit \"H\" in duration \"1H\"" },
		{ "h", "time: invalid duration \"h\"" },
		{ ".s", "time: invalid duration \".s\"" },
		{ " 1s", "time: invalid duration \" 1s\"" },
		{ "2562048h", "time: invalid duration \"2562048h\"" },
		{ "9223372036854775808ns", "time: invalid duration \"9223372036854775808ns\"" },
		{ "99999999999999999999ns", "time: invalid duration \"99999999999999999999ns\"" },
		{ "2562047h48m", "time: invalid duration \"2562047h48m\"" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t v = 42;
		struct gerr *e = NULL;
		int rc = api_duration_parse(cases[i].s, &v, &e);
		if (rc == 0)
			fail_msg("\"%s\" parsed as %lld", cases[i].s, (long long)v);
		assert_int_equal(v, 42);
		expect_err(rc, e, cases[i].msg);
	}
}

/* ---- IntOrString ---- */

static void test_scaled_value(void **state)
{
	static const struct { const char *s; int64_t total; bool up; int64_t want; } cases[] = {
		{ "25%", 10, true, 3 }, { "25%", 10, false, 2 }, { "0%", 10, true, 0 },
		{ "100%", 7, false, 7 }, { "33%", 3, true, 1 }, { "33%", 3, false, 0 },
		{ "-10%", 15, true, -1 }, { "-10%", 15, false, -2 }, { "+50%", 4, true, 2 },
		{ "200%", 3, false, 6 }, { "50%", 0, true, 0 }, { "1%", 1, true, 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t v = 42;
		struct gerr *e = NULL;
		if (api_scaled_value(STR(cases[i].s), cases[i].total, cases[i].up, &v, &e) < 0)
			fail_msg("%s: %s", cases[i].s, e->msg);
		if (v != cases[i].want)
			fail_msg("%s of %lld: got %lld, want %lld", cases[i].s,
				 (long long)cases[i].total, (long long)v, (long long)cases[i].want);
	}
	int64_t v = 0;
	assert_int_equal(api_scaled_value(INT("5"), 100, true, &v, NULL), 0);
	assert_int_equal(v, 5);
	assert_int_equal(api_scaled_value(INT("-3"), 100, false, &v, NULL), 0);
	assert_int_equal(v, -3);
	assert_int_equal(api_scaled_value(quoted("25%"), 8, true, &v, NULL), 0);
	assert_int_equal(v, 2);
}

static void test_scaled_value_errors(void **state)
{
	struct {
		const struct ynode *n;
		const char *msg;
	} cases[] = {
		{ NULL, "nil value for IntOrString" },
		{ STR("abc"), "invalid value for IntOrString: invalid type: string is not a percentage" },
		{ quoted("5"), "invalid value for IntOrString: invalid type: string is not a percentage" },
		{ STR(""), "invalid value for IntOrString: invalid type: string is not a percentage" },
		{ STR("abc%"), "invalid value for IntOrString: invalid value \"abc%\": strconv.Atoi: "
			       "parsing \"abc\": invalid syntax" },
		{ STR("%"), "invalid value for IntOrString: invalid value \"%\": strconv.Atoi: "
			    "parsing \"\": invalid syntax" },
		{ STR("1.5%"), "invalid value for IntOrString: invalid value \"1.5%\": strconv.Atoi: "
			       "parsing \"1.5\": invalid syntax" },
		{ STR("99999999999999999999%"), "invalid value for IntOrString: invalid value "
			"\"99999999999999999999%\": strconv.Atoi: parsing \"99999999999999999999\": "
			"value out of range" },
		{ STR("9223372036854775807%"), "invalid value for IntOrString: "
			"9223372036854775807% of 100 is out of range" },
		{ scal(YS_BOOL, "true"),
		  "invalid value for IntOrString: invalid type: neither int nor percentage" },
		{ scal(YS_FLOAT, "1.5"),
		  "invalid value for IntOrString: invalid type: neither int nor percentage" },
		{ map(0), "invalid value for IntOrString: invalid type: neither int nor percentage" },
		{ INT("99999999999999999999"),
		  "invalid value for IntOrString: integer 99999999999999999999 is out of range" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t v = 42;
		struct gerr *e = NULL;
		int rc = api_scaled_value(cases[i].n, 100, true, &v, &e);
		assert_int_equal(v, 42);
		expect_err(rc, e, cases[i].msg);
	}
}

/* ---- name checks ---- */

#define DNS1123_LABEL_MSG \
	"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " \
	"and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', " \
	"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
#define SUBDOMAIN_MSG \
	"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' " \
	"or '.', and must start and end with an alphanumeric character (e.g. 'example.com', " \
	"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define QNAME_MSG \
	"must consist of alphanumeric characters, '-', '_' or '.', and must start and end with " \
	"an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for " \
	"validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

static char *repeat(char c, size_t n)
{
	char *s = arena_alloc(&A, n + 1);
	memset(s, c, n);
	return s;
}

static void test_check_dns(void **state)
{
	assert_null(check_dns1123_label("my-name"));
	assert_null(check_dns1123_label("123-abc"));
	assert_null(check_dns1123_label("a"));
	assert_null(check_dns1123_label(repeat('a', 63)));
	assert_string_equal(check_dns1123_label(repeat('a', 64)), "must be no more than 63 characters");
	static const char *const bad[] = { "", "-a", "a-", "A", "a.b", "a_b", "a b", "é" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *m = check_dns1123_label(bad[i]);
		if (!m || strcmp(m, DNS1123_LABEL_MSG) != 0)
			fail_msg("label \"%s\": %s", bad[i], m ? m : "(valid)");
	}

	assert_null(check_dns1123_subdomain("a.b-c"));
	assert_null(check_dns1123_subdomain("example.com"));
	assert_null(check_dns1123_subdomain(repeat('a', 100))); /* labels are not limited */
	char *s253 = repeat('a', 253), *s254 = repeat('a', 254);
	s253[100] = '.';
	assert_null(check_dns1123_subdomain(s253));
	assert_string_equal(check_dns1123_subdomain(s254), "must be no more than 253 characters");
	static const char *const badsub[] = { "", "a..b", ".a", "a.", "a.-b", "A.b", "a_b.c" };
	for (size_t i = 0; i < ARRAY_SIZE(badsub); i++) {
		const char *m = check_dns1123_subdomain(badsub[i]);
		if (!m || strcmp(m, SUBDOMAIN_MSG) != 0)
			fail_msg("subdomain \"%s\": %s", badsub[i], m ? m : "(valid)");
	}

	assert_null(check_dns1035_label("my-name"));
	assert_null(check_dns1035_label("abc-123"));
	assert_null(check_dns1035_label("a"));
	assert_string_equal(check_dns1035_label(repeat('a', 64)), "must be no more than 63 characters");
	const char *m = check_dns1035_label("123-abc");
	assert_non_null(m);
	assert_string_equal(m, "a DNS-1035 label must consist of lower case alphanumeric characters "
			    "or '-', start with an alphabetic character, and end with an "
			    "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
			    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
	assert_ptr_equal(check_dns1035_label(""), m);
	assert_ptr_equal(check_dns1035_label("a-"), m);
	assert_ptr_equal(check_dns1035_label("a.b"), m);
}

static void test_check_label_key(void **state)
{
	static const char *const ok[] = { "app", "MyName", "my.name", "123-abc", "a_b", "a",
		"example.com/MyName", "kubernetes.io/hostname", "app.kubernetes.io/name" };
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (check_label_key(ok[i]))
			fail_msg("\"%s\": %s", ok[i], check_label_key(ok[i]));
	assert_string_equal(check_label_key("a/b/c"),
			    "a qualified name " QNAME_MSG " with an optional DNS subdomain prefix "
			    "and '/' (e.g. 'example.com/MyName')");
	assert_string_equal(check_label_key("/a"), "prefix part must be non-empty");
	assert_string_equal(check_label_key("a/"), "name part must be non-empty");
	assert_string_equal(check_label_key(""), "name part must be non-empty");
	assert_string_equal(check_label_key("Example.com/x"), "prefix part " SUBDOMAIN_MSG);
	assert_string_equal(check_label_key("-a"), "name part " QNAME_MSG);
	assert_string_equal(check_label_key("a b"), "name part " QNAME_MSG);
	assert_string_equal(check_label_key("x/a-"), "name part " QNAME_MSG);
	assert_string_equal(check_label_key(repeat('a', 64)),
			    "name part must be no more than 63 characters");
	assert_null(check_label_key(repeat('a', 63)));
	char *longp = repeat('a', 256);
	longp[254] = '/';
	assert_string_equal(check_label_key(longp),
			    "prefix part must be no more than 253 characters");
}

static void test_check_label_value(void **state)
{
	assert_null(check_label_value(""));
	assert_null(check_label_value("v1.2_3-x"));
	assert_null(check_label_value("MyValue"));
	assert_null(check_label_value(repeat('z', 63)));
	assert_string_equal(check_label_value(repeat('z', 64)), "must be no more than 63 characters");
	static const char *const bad[] = { "-a", "a-", "_a", "a b", "a/b", "a:b" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *m = check_label_value(bad[i]);
		assert_non_null(m);
		assert_string_equal(m,
			"a valid label must be an empty string or consist of alphanumeric characters, "
			"'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
			"'MyValue',  or 'my_value',  or '12345', regex used for validation is "
			"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
	}
}

static void test_check_port_name(void **state)
{
	static const char *const ok[] = { "http", "h2c", "web-80", "a", "a-b-c", "a23456789012345" };
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (check_port_name(ok[i]))
			fail_msg("\"%s\": %s", ok[i], check_port_name(ok[i]));
	static const struct { const char *s, *msg; } bad[] = {
		{ "abcdefghijklmnop", "must be no more than 15 characters" },
		{ "", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)" },
		{ "HTTP", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)" },
		{ "a_b", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)" },
		{ "80", "must contain at least one letter (a-z)" },
		{ "8-0", "must contain at least one letter (a-z)" },
		{ "a--b", "must not contain consecutive hyphens" },
		{ "-http", "must not begin or end with a hyphen" },
		{ "http-", "must not begin or end with a hyphen" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *m = check_port_name(bad[i].s);
		if (!m || strcmp(m, bad[i].msg) != 0)
			fail_msg("\"%s\": %s", bad[i].s, m ? m : "(valid)");
	}
}

static void test_check_env_name(void **state)
{
	static const char *const ok[] = { "PATH", "my.env-name", "MY_ENV.NAME", "MyEnvName1", "_x",
					  "-x", ".a", "a..b" };
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (check_env_name(ok[i]))
			fail_msg("\"%s\": %s", ok[i], check_env_name(ok[i]));
	const char *msg = "a valid environment variable name must consist of alphabetic characters, "
			  "digits, '_', '-', or '.', and must not start with a digit (e.g. "
			  "'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
			  "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
	static const char *const bad[] = { "1A", "", "A=B", "A B", "é", "a$" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *m = check_env_name(bad[i]);
		assert_non_null(m);
		assert_string_equal(m, msg);
	}
	assert_string_equal(check_env_name("."), "must not be '.'");
	assert_string_equal(check_env_name(".."), "must not be '..'");
	assert_string_equal(check_env_name("..a"), "must not start with '..'");
}

static void test_check_base64(void **state)
{
	/* Go's own corruption table (encoding/base64 TestDecodeCorrupt), -1 = valid. */
	static const struct { const char *s; int off; } cases[] = {
		{ "", -1 }, { "\n", -1 }, { "AAA=\n", -1 }, { "AAAA\n", -1 }, { "!!!!", 0 },
		{ "====", 0 }, { "x===", 1 }, { "=AAA", 0 }, { "A=AA", 1 }, { "AA=A", 2 },
		{ "AA==A", 4 }, { "AAA=AAAA", 4 }, { "AAAAA", 4 }, { "AAAAAA", 4 }, { "A=", 1 },
		{ "A==", 1 }, { "AA=", 3 }, { "AA==", -1 }, { "AAA=", -1 }, { "AAAA", -1 },
		{ "AAAAAA=", 7 }, { "YWJjZA=====", 8 }, { "A!\n", 1 }, { "A=\n", 1 },
		/* and ours */
		{ "YWJjZA==", -1 }, { "aGVsbG8gd29ybGQ=", -1 }, { "YW\r\nJj", -1 },
		{ "YQ==\n", -1 }, { "Y", 0 }, { "YWJj!", 4 }, { "YW Jj", 2 }, { "YQ==YQ==", 4 },
		{ "YWJj-_==", 4 }, { "\n\nA", 2 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *m = check_base64(cases[i].s, strlen(cases[i].s));
		if (cases[i].off < 0) {
			if (m)
				fail_msg("\"%s\": %s", cases[i].s, m);
			continue;
		}
		char want[64];
		snprintf(want, sizeof(want), "illegal base64 data at input byte %d", cases[i].off);
		if (!m || strcmp(m, want) != 0)
			fail_msg("\"%s\": got %s, want %s", cases[i].s, m ? m : "(valid)", want);
	}
	/* len, not NUL, bounds the input */
	assert_null(check_base64("YQ==garbage", 4));
	assert_null(check_base64("YQ==\0AAA", 4));
	assert_string_equal(check_base64("YQ=\0", 4), "illegal base64 data at input byte 2");
	assert_string_equal(check_base64("YQ=", 3), "illegal base64 data at input byte 3");
}

/* ---- selectors ---- */

struct labels {
	const char *const *kv; /* key, value, ..., NULL */
	int calls;
};

static const char *get_label(void *ctx, const char *key)
{
	struct labels *l = ctx;
	l->calls++;
	for (size_t i = 0; l->kv[i]; i += 2)
		if (strcmp(l->kv[i], key) == 0)
			return l->kv[i + 1];
	return NULL;
}

static bool sel_matches(const struct api_selector *sel, const char *const *kv)
{
	struct labels l = { kv, 0 };
	return api_selector_matches(sel, get_label, &l);
}

static void parse_ok(const char *s, struct api_selector *sel)
{
	struct gerr *e = NULL;
	if (api_selector_parse(s, sel, &e) < 0)
		fail_msg("\"%s\": %s", s, e->msg);
}

static void expect_req(const struct api_selector *sel, size_t i, const char *key,
		       enum api_sel_op op, size_t nvalues, ...)
{
	assert_true(i < sel->n);
	const struct api_sel_req *r = &sel->reqs[i];
	assert_string_equal(r->key, key);
	assert_int_equal(r->op, op);
	assert_int_equal(r->nvalues, nvalues);
	va_list ap;
	va_start(ap, nvalues);
	for (size_t k = 0; k < nvalues; k++)
		assert_string_equal(r->values[k], va_arg(ap, const char *));
	va_end(ap);
}

static void test_selector_parse(void **state)
{
	struct api_selector sel;
	parse_ok("a=b,c!=d,e in (f,g),h notin (i),j,!k", &sel);
	assert_int_equal(sel.n, 6);
	assert_false(sel.nothing);
	expect_req(&sel, 0, "a", SEL_IN, 1, "b");
	expect_req(&sel, 1, "c", SEL_NOT_IN, 1, "d");
	expect_req(&sel, 2, "e", SEL_IN, 2, "f", "g");
	expect_req(&sel, 3, "h", SEL_NOT_IN, 1, "i");
	expect_req(&sel, 4, "j", SEL_EXISTS, 0);
	expect_req(&sel, 5, "k", SEL_DOES_NOT_EXIST, 0);
	api_selector_release(&sel);
	assert_int_equal(sel.n, 0);
	assert_null(sel.reqs);
	api_selector_release(&sel); /* twice is harmless */
	api_selector_release(NULL);

	/* sorted by key; values are a sorted set */
	parse_ok("  z == 1 ,\ty in (b, a, b),x>5,w<0 , example.com/v notin (in, notin) ", &sel);
	assert_int_equal(sel.n, 5);
	expect_req(&sel, 0, "example.com/v", SEL_NOT_IN, 2, "in", "notin");
	expect_req(&sel, 1, "w", SEL_LT, 1, "0");
	expect_req(&sel, 2, "x", SEL_GT, 1, "5");
	expect_req(&sel, 3, "y", SEL_IN, 2, "a", "b");
	expect_req(&sel, 4, "z", SEL_IN, 1, "1");
	api_selector_release(&sel);

	parse_ok("x>5,y<10", &sel);
	expect_req(&sel, 0, "x", SEL_GT, 1, "5");
	expect_req(&sel, 1, "y", SEL_LT, 1, "10");
	api_selector_release(&sel);

	parse_ok("x in (),y in (a,,b),z in (,),w=,v in (,a)", &sel);
	expect_req(&sel, 0, "v", SEL_IN, 2, "", "a");
	expect_req(&sel, 1, "w", SEL_IN, 1, "");
	expect_req(&sel, 2, "x", SEL_IN, 1, "");
	expect_req(&sel, 3, "y", SEL_IN, 3, "", "a", "b");
	expect_req(&sel, 4, "z", SEL_IN, 1, "");
	api_selector_release(&sel);

	parse_ok("in in (notin),notin=in", &sel); /* keywords as key and values */
	expect_req(&sel, 0, "in", SEL_IN, 1, "notin");
	expect_req(&sel, 1, "notin", SEL_IN, 1, "in");
	api_selector_release(&sel);

	parse_ok("a!=b,!c", &sel);
	expect_req(&sel, 0, "a", SEL_NOT_IN, 1, "b");
	expect_req(&sel, 1, "c", SEL_DOES_NOT_EXIST, 0);
	api_selector_release(&sel);

	parse_ok("", &sel);
	assert_int_equal(sel.n, 0);
	assert_false(sel.nothing);
	assert_true(sel_matches(&sel, (const char *const[]){ NULL }));
	api_selector_release(&sel);
	parse_ok(" \t\n", &sel);
	assert_int_equal(sel.n, 0);
	api_selector_release(&sel);
}

#define LV_MSG \
	"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' " \
	"or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or " \
	"'my_value',  or '12345', regex used for validation is " \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

static void test_selector_parse_errors(void **state)
{
	static const struct { const char *s, *msg; } cases[] = {
		{ "a=b c", "found 'c', expected: ',' or 'end of string'" },
		{ "a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt" },
		{ "a in b", "unable to parse requirement: found 'b' expected: '('" },
		{ "a in (b", "unable to parse requirement: found '', expected: ',' or ')'" },
		{ "a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'" },
		{ "a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier" },
		{ "a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier" },
		{ "a,", "found '', expected: identifier after ','" },
		{ "a,,b", "found ',', expected: identifier after ','" },
		{ ",a", "found ',', expected: !, identifier, or 'end of string'" },
		{ "=a", "found '=', expected: !, identifier, or 'end of string'" },
		{ "a=(b)", "unable to parse requirement: found '(', expected: identifier" },
		{ "!a=b", "found '=', expected: ',' or 'end of string'" },
		{ "!", "unable to parse requirement: found '', expected: identifier" },
		{ "!!a", "unable to parse requirement: found '!', expected: identifier" },
		{ "a>=5", "unable to parse requirement: found '=', expected: identifier" },
		{ "a gt 5", "unable to parse requirement: found 'gt', expected: in, notin, =, ==, !=, gt, lt" },
		{ "-bad=x", "unable to parse requirement: key: Invalid value: \"-bad\": name part " QNAME_MSG },
		{ "a/b/c", "unable to parse requirement: key: Invalid value: \"a/b/c\": a qualified "
			   "name " QNAME_MSG " with an optional DNS subdomain prefix and '/' (e.g. "
			   "'example.com/MyName')" },
		{ "a=-b", "unable to parse requirement: values[0][a]: Invalid value: \"-b\": " LV_MSG },
		{ "a in (ok,b-)", "unable to parse requirement: values[1][a]: Invalid value: \"b-\": " LV_MSG },
		{ "a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', "
			 "'Lt' operators, the value must be an integer" },
		{ "a>99999999999999999999", "unable to parse requirement: values[0]: Invalid value: "
			"\"99999999999999999999\": for 'Gt', 'Lt' operators, the value must be an integer" },
		{ "a>-5", "unable to parse requirement: values[0][a]: Invalid value: \"-5\": " LV_MSG },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct api_selector sel = { (void *)1, 7, true };
		struct gerr *e = NULL;
		int rc = api_selector_parse(cases[i].s, &sel, &e);
		if (rc == 0)
			fail_msg("\"%s\" parsed", cases[i].s);
		if (strcmp(e->msg, cases[i].msg) != 0)
			fail_msg("\"%s\":\n got  %s\n want %s", cases[i].s, e->msg, cases[i].msg);
		gerr_free(e);
		assert_null(sel.reqs); /* left empty */
		assert_int_equal(sel.n, 0);
		assert_false(sel.nothing);
	}
}

static void test_selector_match(void **state)
{
	struct api_selector sel;
	parse_ok("app=web,tier in (fe,be),env!=prod,!legacy,version", &sel);
	assert_true(sel_matches(&sel, (const char *const[]){ "app", "web", "tier", "fe", "version",
							      "1", NULL }));
	assert_true(sel_matches(&sel, (const char *const[]){ "app", "web", "tier", "be", "env",
							      "dev", "version", "", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "app", "web", "tier", "fe", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "app", "web", "tier", "db",
							       "version", "1", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "app", "web", "tier", "fe", "env",
							       "prod", "version", "1", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "app", "web", "tier", "fe", "legacy",
							       "", "version", "1", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "app", "Web", "tier", "fe",
							       "version", "1", NULL }));
	/* stops at the first failing requirement */
	struct labels l = { (const char *const[]){ NULL }, 0 };
	assert_false(api_selector_matches(&sel, get_label, &l));
	assert_int_equal(l.calls, 1);
	api_selector_release(&sel);

	parse_ok("n>5,m<3", &sel);
	assert_true(sel_matches(&sel, (const char *const[]){ "n", "6", "m", "2", NULL }));
	assert_true(sel_matches(&sel, (const char *const[]){ "n", "+9223372036854775807", "m",
							      "-9223372036854775808", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "n", "5", "m", "2", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "n", "6", "m", "3", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "n", "x", "m", "2", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "n", " 6", "m", "2", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "n", "99999999999999999999", "m",
							       "2", NULL }));
	assert_false(sel_matches(&sel, (const char *const[]){ "m", "2", NULL }));
	api_selector_release(&sel);

	/* matches_node */
	parse_ok("app=web,!legacy", &sel);
	assert_true(api_selector_matches_node(&sel, map(2, "app", STR("web"), "x", STR("y"))));
	assert_false(api_selector_matches_node(&sel, map(2, "app", STR("web"), "legacy", STR(""))));
	assert_false(api_selector_matches_node(&sel, NULL));
	assert_false(api_selector_matches_node(&sel, map(1, "app", map(0))));
	api_selector_release(&sel);
	parse_ok("!legacy", &sel);
	assert_true(api_selector_matches_node(&sel, NULL));
	assert_true(api_selector_matches_node(&sel, map(0)));
	api_selector_release(&sel);
	assert_false(api_selector_matches(NULL, get_label, NULL));
}

static void test_selector_from_node(void **state)
{
	struct api_selector sel;
	struct gerr *e = NULL;

	/* nil: nothing */
	assert_int_equal(api_selector_from_node(NULL, &sel, &e), 0);
	assert_true(sel.nothing);
	assert_false(api_selector_matches_node(&sel, NULL));
	assert_false(api_selector_matches_node(&sel, map(1, "a", STR("b"))));
	api_selector_release(&sel);
	assert_int_equal(api_selector_from_node(scal(YS_NULL, "null"), &sel, &e), 0);
	assert_true(sel.nothing);
	api_selector_release(&sel);

	/* empty: everything */
	assert_int_equal(api_selector_from_node(map(0), &sel, &e), 0);
	assert_false(sel.nothing);
	assert_int_equal(sel.n, 0);
	assert_true(api_selector_matches_node(&sel, NULL));
	api_selector_release(&sel);
	assert_int_equal(api_selector_from_node(map(2, "matchLabels", map(0), "matchExpressions",
						    seq(0)), &sel, &e), 0);
	assert_true(api_selector_matches_node(&sel, map(1, "a", STR("b"))));
	api_selector_release(&sel);

	struct ynode *n = map(2,
		"matchLabels", map(2, "app", STR("web"), "version", INT("2")),
		"matchExpressions", seq(4,
			map(3, "key", STR("tier"), "operator", STR("In"), "values",
			    seq(2, STR("fe"), STR("be"))),
			map(2, "key", STR("legacy"), "operator", STR("DoesNotExist")),
			map(3, "key", STR("env"), "operator", STR("NotIn"), "values",
			    seq(1, STR("prod"))),
			map(3, "key", STR("zone"), "operator", STR("Exists"), "values",
			    scal(YS_NULL, "~"))));
	if (api_selector_from_node(n, &sel, &e) < 0)
		fail_msg("%s", e->msg);
	assert_int_equal(sel.n, 6);
	expect_req(&sel, 0, "app", SEL_IN, 1, "web");
	expect_req(&sel, 1, "env", SEL_NOT_IN, 1, "prod");
	expect_req(&sel, 2, "legacy", SEL_DOES_NOT_EXIST, 0);
	expect_req(&sel, 3, "tier", SEL_IN, 2, "be", "fe");
	expect_req(&sel, 4, "version", SEL_IN, 1, "2");
	expect_req(&sel, 5, "zone", SEL_EXISTS, 0);
	struct ynode *good = map(4, "app", STR("web"), "version", STR("2"), "tier", STR("be"),
				 "zone", STR("a"));
	assert_true(api_selector_matches_node(&sel, good));
	assert_false(api_selector_matches_node(&sel, map(3, "app", STR("web"), "version", STR("2"),
							 "tier", STR("be"))));
	good->items[7] = STR("");
	assert_true(api_selector_matches_node(&sel, good)); /* Exists: any value */
	api_selector_release(&sel);
}

static void test_selector_from_node_errors(void **state)
{
	struct {
		struct ynode *n;
		const char *msg;
	} cases[] = {
		{ seq(0), "label selector must be a map" },
		{ STR("app=web"), "label selector must be a map" },
		{ map(1, "matchLabels", seq(0)), "matchLabels: must be a map of strings" },
		{ map(1, "matchLabels", map(1, "a", map(0))), "matchLabels: must be a map of strings" },
		{ map(1, "matchLabels", map(1, "a b", STR("x"))),
		  "matchLabels: key: Invalid value: \"a b\": name part " QNAME_MSG },
		{ map(1, "matchLabels", map(1, "a", STR("x y"))),
		  "matchLabels: values[0][a]: Invalid value: \"x y\": " LV_MSG },
		{ map(1, "matchExpressions", map(0)), "matchExpressions: must be a list" },
		{ map(1, "matchExpressions", seq(1, STR("x"))),
		  "matchExpressions[0]: must be a map (key, operator, values)" },
		{ map(1, "matchExpressions", seq(2, map(2, "key", STR("a"), "operator", STR("Exists")),
						 map(2, "key", STR("b"), "operator", STR("Foo")))),
		  "matchExpressions[1]: \"Foo\" is not a valid pod selector operator" },
		{ map(1, "matchExpressions", seq(1, map(1, "key", STR("a")))),
		  "matchExpressions[0]: \"\" is not a valid pod selector operator" },
		{ map(1, "matchExpressions", seq(1, map(1, "operator", STR("Exists")))),
		  "matchExpressions[0]: key: Invalid value: \"\": name part must be non-empty" },
		{ map(1, "matchExpressions", seq(1, map(2, "key", STR("a"), "operator", STR("In")))),
		  "matchExpressions[0]: values: Invalid value: []string(nil): for 'in', 'notin' "
		  "operators, values set can't be empty" },
		{ map(1, "matchExpressions", seq(1, map(3, "key", STR("a"), "operator", STR("NotIn"),
							"values", seq(0)))),
		  "matchExpressions[0]: values: Invalid value: []string(nil): for 'in', 'notin' "
		  "operators, values set can't be empty" },
		{ map(1, "matchExpressions", seq(1, map(3, "key", STR("a"), "operator", STR("Exists"),
							"values", seq(2, STR("x"), STR("y"))))),
		  "matchExpressions[0]: values: Invalid value: []string{\"x\", \"y\"}: values set "
		  "must be empty for exists and does not exist" },
		{ map(1, "matchExpressions", seq(1, map(3, "key", STR("a"), "operator", STR("In"),
							"values", STR("x")))),
		  "matchExpressions[0]: values: must be a list of strings" },
		{ map(1, "matchExpressions", seq(1, map(3, "key", STR("a"), "operator", STR("In"),
							"values", seq(1, seq(0))))),
		  "matchExpressions[0]: values[0]: must be a string" },
		{ map(1, "matchExpressions", seq(1, map(2, "key", map(0), "operator", STR("In")))),
		  "matchExpressions[0]: key: must be a string" },
		{ map(1, "matchExpressions", seq(1, map(3, "key", STR("a"), "operator", STR("in"),
							"values", seq(1, STR("x"))))),
		  "matchExpressions[0]: \"in\" is not a valid pod selector operator" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct api_selector sel = { (void *)1, 7, true };
		struct gerr *e = NULL;
		int rc = api_selector_from_node(cases[i].n, &sel, &e);
		if (rc == 0)
			fail_msg("case %zu parsed", i);
		if (strcmp(e->msg, cases[i].msg) != 0)
			fail_msg("case %zu:\n got  %s\n want %s", i, e->msg, cases[i].msg);
		gerr_free(e);
		assert_null(sel.reqs);
		assert_int_equal(sel.n, 0);
		assert_false(sel.nothing);
	}
}

/* ---- cron ---- */

static struct api_cron cron_ok(const char *s)
{
	struct api_cron c;
	struct gerr *e = NULL;
	memset(&c, 0xaa, sizeof(c));
	if (api_cron_parse(s, &c, &e) < 0)
		fail_msg("\"%s\": %s", s, e->msg);
	return c;
}

#define ALL_MIN 0x0fffffffffffffffULL
#define ALL_HOUR 0xffffffu
#define ALL_DOM 0xfffffffeu
#define ALL_MONTH 0x1ffeu
#define ALL_DOW 0x7fu

static void expect_cron(struct api_cron c, uint64_t min, uint32_t hour, uint32_t dom,
			uint16_t month, uint8_t dow, bool dom_star, bool dow_star)
{
	assert_int_equal(c.minute, min);
	assert_int_equal(c.hour, hour);
	assert_int_equal(c.dom, dom);
	assert_int_equal(c.month, month);
	assert_int_equal(c.dow, dow);
	assert_int_equal(c.dom_star, dom_star);
	assert_int_equal(c.dow_star, dow_star);
}

static void test_cron_parse(void **state)
{
	expect_cron(cron_ok("* * * * *"), ALL_MIN, ALL_HOUR, ALL_DOM, ALL_MONTH, ALL_DOW, true, true);
	expect_cron(cron_ok("  *\t* * *   *\n"), ALL_MIN, ALL_HOUR, ALL_DOM, ALL_MONTH, ALL_DOW,
		    true, true);
	expect_cron(cron_ok("*/15 0-6/2 1,15 jan-mar mon-fri"), 1ULL | 1ULL << 15 | 1ULL << 30 |
		    1ULL << 45, 0x55, 1u << 1 | 1u << 15, 0xe, 0x3e, false, false);
	expect_cron(cron_ok("5/20 23 31 12 6"), 1ULL << 5 | 1ULL << 25 | 1ULL << 45, 1u << 23,
		    1u << 31, 1u << 12, 1u << 6, false, false);
	expect_cron(cron_ok("0 0 * * 7"), 1, 1, ALL_DOM, ALL_MONTH, 1, true, false);
	expect_cron(cron_ok("0 0 * * 5-7"), 1, 1, ALL_DOM, ALL_MONTH, 0x61, true, false);
	expect_cron(cron_ok("0 0 * * 7/1"), 1, 1, ALL_DOM, ALL_MONTH, 1, true, false);
	expect_cron(cron_ok("0 0 1 JAN ?"), 1, 1, 2, 2, ALL_DOW, false, true);
	expect_cron(cron_ok("0 0 ? Dec SuN,sat"), 1, 1, ALL_DOM, 1u << 12, 0x41, true, false);
	expect_cron(cron_ok("0 0 */1 * *"), 1, 1, ALL_DOM, ALL_MONTH, ALL_DOW, true, true);
	expect_cron(cron_ok("0 0 */2 * */2"), 1, 1, 0xaaaaaaaau, ALL_MONTH, 0x55, false,
		    false);
	expect_cron(cron_ok("0 0 *,5 * *"), 1, 1, ALL_DOM, ALL_MONTH, ALL_DOW, true, true);
	expect_cron(cron_ok("59 0 1-1 2 0"), 1ULL << 59, 1, 2, 4, 1, false, false);
	expect_cron(cron_ok("007 * * * *"), 1ULL << 7, ALL_HOUR, ALL_DOM, ALL_MONTH, ALL_DOW, true,
		    true);
	expect_cron(cron_ok("0-59/30 * * * *"), 1ULL | 1ULL << 30, ALL_HOUR, ALL_DOM, ALL_MONTH,
		    ALL_DOW, true, true);
	expect_cron(cron_ok("0 0 * * 1/2"), 1, 1, ALL_DOM, ALL_MONTH, 0x2a, true, false);

	expect_cron(cron_ok("@yearly"), 1, 1, 2, 2, ALL_DOW, false, true);
	expect_cron(cron_ok("@annually"), 1, 1, 2, 2, ALL_DOW, false, true);
	expect_cron(cron_ok("@monthly"), 1, 1, 2, ALL_MONTH, ALL_DOW, false, true);
	expect_cron(cron_ok("@weekly"), 1, 1, ALL_DOM, ALL_MONTH, 1, true, false);
	expect_cron(cron_ok("@daily"), 1, 1, ALL_DOM, ALL_MONTH, ALL_DOW, true, true);
	expect_cron(cron_ok(" @midnight "), 1, 1, ALL_DOM, ALL_MONTH, ALL_DOW, true, true);
	expect_cron(cron_ok("@hourly"), 1, ALL_HOUR, ALL_DOM, ALL_MONTH, ALL_DOW, true, true);
}

static void test_cron_errors(void **state)
{
	static const struct { const char *s, *msg; } cases[] = {
		{ "61 * * * *", "minute field: value 61 out of range 0-59" },
		{ "99999999999 * * * *", "minute field: value 99999999999 out of range 0-59" },
		{ "* 24 * * *", "hour field: value 24 out of range 0-23" },
		{ "* * 0 * *", "day-of-month field: value 0 out of range 1-31" },
		{ "* * 32 * *", "day-of-month field: value 32 out of range 1-31" },
		{ "* * * 13 *", "month field: value 13 out of range 1-12" },
		{ "* * * 0 *", "month field: value 0 out of range 1-12" },
		{ "* * * * 8", "day-of-week field: value 8 out of range 0-7" },
		{ "* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4" },
		{ "* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 6" },
		{ "", "empty schedule" },
		{ "   ", "empty schedule" },
		{ "@every 1h", "@every is not supported" },
		{ "@foo", "unrecognized descriptor \"@foo\"" },
		{ "@daily 5", "unrecognized descriptor \"@daily 5\"" },
		{ "TZ=UTC * * * * *", "time zones (TZ=, CRON_TZ=) are not supported" },
		{ "CRON_TZ=UTC * * * * *", "time zones (TZ=, CRON_TZ=) are not supported" },
		{ "5-1 * * * *", "minute field: range start 5 is after range end 1 in \"5-1\"" },
		{ "*/0 * * * *", "minute field: step must be at least 1 in \"*/0\"" },
		{ "*/x * * * *", "minute field: invalid step \"x\"" },
		{ "*/ * * * *", "minute field: invalid step \"\"" },
		{ "*/2/3 * * * *", "minute field: too many slashes in \"*/2/3\"" },
		{ "1-2-3 * * * *", "minute field: too many hyphens in \"1-2-3\"" },
		{ "1,,2 * * * *", "minute field: empty item in list \"1,,2\"" },
		{ ",1 * * * *", "minute field: empty item in list \",1\"" },
		{ "1, * * * *", "minute field: empty item in list \"1,\"" },
		{ "a * * * *", "minute field: invalid value \"a\"" },
		{ "-5 * * * *", "minute field: missing value" },
		{ "5- * * * *", "minute field: missing value" },
		{ "*-5 * * * *", "minute field: invalid value \"*\"" },
		{ "* * * foo *", "month field: invalid value \"foo\"" },
		{ "* * * * mon-foo", "day-of-week field: invalid value \"foo\"" },
		{ "* * jan * *", "day-of-month field: invalid value \"jan\"" },
		{ "* * * sun *", "month field: invalid value \"sun\"" },
		{ "* * * * monday", "day-of-week field: invalid value \"monday\"" },
		{ "+5 * * * *", "minute field: invalid value \"+5\"" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct api_cron c;
		struct gerr *e = NULL;
		int rc = api_cron_parse(cases[i].s, &c, &e);
		if (rc == 0)
			fail_msg("\"%s\" parsed", cases[i].s);
		struct sbuf want = SBUF_INIT;
		sb_addf(&want, "invalid schedule \"%s\": %s", cases[i].s, cases[i].msg);
		if (strcmp(e->msg, want.buf) != 0)
			fail_msg("\n got  %s\n want %s", e->msg, want.buf);
		sb_release(&want);
		gerr_free(e);
	}
}

static time_t next_of(const char *spec, time_t after)
{
	struct api_cron c = cron_ok(spec);
	return api_cron_next(&c, after);
}

static void test_cron_next(void **state)
{
	const time_t jan1 = 1609459200; /* 2021-01-01T00:00:00Z, a Friday */
	assert_int_equal(next_of("* * * * *", jan1), jan1 + 60);
	assert_int_equal(next_of("* * * * *", jan1 + 30), jan1 + 60);
	assert_int_equal(next_of("* * * * *", jan1 + 59), jan1 + 60);
	assert_int_equal(next_of("* * * * *", jan1 - 1), jan1);
	assert_int_equal(next_of("0 0 * * *", jan1), 1609545600);
	assert_int_equal(next_of("@daily", jan1 - 60), jan1);
	assert_int_equal(next_of("30 8 * * mon-fri", 1609588800), 1609749000); /* Sat -> Mon */
	/* both restricted: day-of-month OR day-of-week */
	assert_int_equal(next_of("0 0 13 * 5", jan1), 1610064000);     /* Fri 8th */
	assert_int_equal(next_of("0 0 13 * 5", 1610064000), 1610496000); /* Wed 13th */
	/* one restricted: AND (the star matches every day) */
	assert_int_equal(next_of("0 0 13 * *", jan1), 1610496000);
	assert_int_equal(next_of("0 0 * * 5", jan1), 1610064000);
	assert_int_equal(next_of("0 0 13 * ?", jan1), 1610496000);
	/* "*" with a step is not a star: OR again ("every other day, or Fridays") */
	assert_int_equal(next_of("0 0 */2 * 5", jan1 + 86400), 1609632000); /* Jan 3 */
	assert_int_equal(next_of("0 0 */2 * *", jan1 + 86400), 1609632000);
	assert_int_equal(next_of("0 0 29 2 *", jan1), 1709164800);      /* 2024-02-29 */
	assert_int_equal(next_of("0 0 30 2 *", jan1), -1);
	assert_int_equal(next_of("0 0 31 4,6,9,11 *", jan1), -1);
	assert_int_equal(next_of("@yearly", 1622505600), 1640995200);
	assert_int_equal(next_of("0 12 1 6 *", 1625097600), 1654084800);
	assert_int_equal(next_of("59 23 31 12 *", 1640995140), 1672531140);
	assert_int_equal(next_of("59 23 31 12 *", 1640995140 - 1), 1640995140);
	assert_int_equal(next_of("* * * * *", -1), 0);
	assert_int_equal(next_of("0 0 * * *", -86400 - 1), -86400); /* 1969-12-31 */
	assert_int_equal(next_of("0 0 1 1 *", -1), 0);
	assert_int_equal(next_of("* * * * *", (time_t)INT64_MAX), -1);
	/* 2100 is not a leap year: after 2096's Feb 29 the next is 2104's, past the search
	 * (which runs through the end of the 5th year on, like robfig's) */
	assert_int_equal(next_of("0 0 29 2 *", 3981398400), -1);         /* 2096-03-01 */
	assert_int_equal(next_of("0 0 29 2 *", 4107542400), 4233686400); /* from 2100-03-01 */
}

/* Brute force with gmtime_r: minute by minute on matching days, skipping
 * whole days that do not match. */
static time_t naive_next(const struct api_cron *c, time_t after, long days)
{
	time_t t = after - ((after % 60) + 60) % 60 + 60, end = after + days * 86400;
	while (t < end) {
		struct tm tm;
		gmtime_r(&t, &tm);
		bool dom = c->dom >> tm.tm_mday & 1, dow = c->dow >> tm.tm_wday & 1;
		bool day = c->dom_star || c->dow_star ? dom && dow : dom || dow;
		if (!day || !(c->month >> (tm.tm_mon + 1) & 1)) {
			t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60);
			continue;
		}
		if ((c->minute >> tm.tm_min & 1) && (c->hour >> tm.tm_hour & 1))
			return t;
		t += 60;
	}
	return -1;
}

static void test_cron_next_brute(void **state)
{
	static const char *const specs[] = { "*/7 * * * *", "0 */5 * * *", "15 3 * * 1",
		"0 0 1,15 * *", "0 0 13 * 5", "30 4 * 2 *", "0 12 29 2 *", "0 0 31 * 0",
		"45 23 * * sat,sun", "1-3 1-3 1-3 * *", "@monthly", "@weekly", "0 0 */10 */3 */3" };
	unsigned seed = 12345;
	for (size_t i = 0; i < ARRAY_SIZE(specs); i++) {
		struct api_cron c = cron_ok(specs[i]);
		for (int k = 0; k < 6; k++) {
			seed = seed * 1103515245 + 12345;
			time_t after = 946684800 + (time_t)(seed % 1200000000u); /* 2000..2038 */
			time_t want = naive_next(&c, after, 5L * 365);
			time_t got = api_cron_next(&c, after);
			if (got != want)
				fail_msg("%s after %lld: got %lld, want %lld", specs[i],
					 (long long)after, (long long)got, (long long)want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_yn_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_yn_int, setup, teardown),
		cmocka_unit_test_setup_teardown(test_yn_bool, setup, teardown),
		cmocka_unit_test(test_quantity_ok),
		cmocka_unit_test(test_quantity_errors),
		cmocka_unit_test(test_quantity_long),
		cmocka_unit_test(test_duration_ok),
		cmocka_unit_test(test_duration_errors),
		cmocka_unit_test_setup_teardown(test_scaled_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scaled_value_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_dns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_label_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_label_value, setup, teardown),
		cmocka_unit_test(test_check_port_name),
		cmocka_unit_test(test_check_env_name),
		cmocka_unit_test(test_check_base64),
		cmocka_unit_test_setup_teardown(test_selector_parse, setup, teardown),
		cmocka_unit_test(test_selector_parse_errors),
		cmocka_unit_test_setup_teardown(test_selector_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_selector_from_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_selector_from_node_errors, setup, teardown),
		cmocka_unit_test(test_cron_parse),
		cmocka_unit_test(test_cron_errors),
		cmocka_unit_test(test_cron_next),
		cmocka_unit_test(test_cron_next_brute),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
