/* api/formats.c: Kubernetes value formats — quantities, Go durations,
 * IntOrString percentages and the name/label/env/base64 checks.
 *
 * Pure functions of their input: no allocation except the gerr of a failure.
 * Messages are Kubernetes' (v1.22 wording) so users can search for them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/internal.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- quantities ------------------------------------------------------------ */

#define QUANTITY_REGEX_MSG \
	"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
#define QUANTITY_NUMERIC_MSG "unable to parse numeric part of quantity"
#define QUANTITY_SUFFIX_MSG "unable to parse quantity's suffix"

/* Exponents are clamped to this before any arithmetic: far past every
 * overflow (10^19) and underflow (rounds to 1m) threshold, far from
 * int64 overflow. */
#define QEXP_CLAMP ((int64_t)1 << 40)

struct qsuffix {
	const char *s;
	int exp10;
	int exp2;
};

static const struct qsuffix qsuffixes[] = {
	{ "", 0, 0 },    { "n", -9, 0 },  { "u", -6, 0 },  { "m", -3, 0 },   { "k", 3, 0 },
	{ "M", 6, 0 },   { "G", 9, 0 },   { "T", 12, 0 },  { "P", 15, 0 },   { "E", 18, 0 },
	{ "Ki", 0, 10 }, { "Mi", 0, 20 }, { "Gi", 0, 30 }, { "Ti", 0, 40 },  { "Pi", 0, 50 },
	{ "Ei", 0, 60 },
};

/* Go's strconv.ParseInt(s, 10, 64) on s[0..n): optional sign, digits only. */
static bool parse_go_int(const char *s, size_t n, int64_t *ret)
{
	const char *end = s + n;
	bool neg = false;
	if (s < end && (*s == '+' || *s == '-'))
		neg = *s++ == '-';
	if (s == end)
		return false;
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
	for (; s < end; s++) {
		if (!is_digit(*s))
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (limit - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*ret = neg ? (v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	return true;
}

static bool quantity_suffix(const char *s, size_t n, int64_t *exp10, int *exp2)
{
	for (size_t i = 0; i < ARRAY_SIZE(qsuffixes); i++) {
		if (strlen(qsuffixes[i].s) == n && memcmp(qsuffixes[i].s, s, n) == 0) {
			*exp10 = qsuffixes[i].exp10;
			*exp2 = qsuffixes[i].exp2;
			return true;
		}
	}
	*exp2 = 0;
	return n > 1 && (s[0] == 'e' || s[0] == 'E') && parse_go_int(s + 1, n - 1, exp10);
}

/* The digits of a number "int.frac" as one virtual sequence. */
struct qdigits {
	const char *ip, *fp;
	size_t ni, nf;
};

static int qdigit(const struct qdigits *q, int64_t i)
{
	if (i < 0 || i >= (int64_t)(q->ni + q->nf))
		return 0;
	return (size_t)i < q->ni ? q->ip[i] - '0' : q->fp[(size_t)i - q->ni] - '0';
}

/* |value| in milli-units, value = digits * 10^e10 * 2^e2, rounded away from
 * zero. Fails on overflow past INT64_MAX.
 *
 * Integer digits go to X (at most 19 of them, else overflow). The fraction
 * is multiplied by 2^e2 by doubling its first e2 decimal digits e2 times:
 * digits past the e2-th change the result by less than 2^e2/10^e2 = 1/5^e2,
 * the granularity of the kept part, so they only decide whether a remainder
 * is left (which rounds up). */
static bool quantity_magnitude(const struct qdigits *q, int64_t e10, int e2, uint64_t *ret)
{
	int64_t n = (int64_t)(q->ni + q->nf), lead = 0;
	while (lead < n && qdigit(q, lead) == 0)
		lead++;
	if (lead == n) {
		*ret = 0;
		return true;
	}
	int64_t split = n + e10; /* digits [0, split) are integer, the rest fraction */
	if (split - lead > 19)
		return false;
	uint64_t x = 0;
	for (int64_t i = lead; i < split; i++)
		x = x * 10 + (uint64_t)qdigit(q, i);

	uint8_t frac[60];
	bool rest = false; /* a nonzero fraction digit past the kept ones */
	for (int i = 0; i < e2; i++)
		frac[i] = (uint8_t)qdigit(q, split + i);
	for (int64_t i = split + e2 > lead ? split + e2 : lead; i < n && !rest; i++)
		rest = qdigit(q, i) != 0;
	uint64_t fint = 0;
	for (int round = 0; round < e2; round++) {
		unsigned carry = 0;
		for (int i = e2 - 1; i >= 0; i--) {
			unsigned d = frac[i] * 2u + carry;
			frac[i] = (uint8_t)(d % 10);
			carry = d / 10;
		}
		fint = fint << 1 | carry;
	}
	for (int i = 0; i < e2; i++)
		rest = rest || frac[i] != 0;

	if (x > ((uint64_t)INT64_MAX >> e2))
		return false;
	uint64_t v = (x << e2) + fint + (rest ? 1 : 0);
	if (v > (uint64_t)INT64_MAX)
		return false;
	*ret = v;
	return true;
}

/* Decisions: surrounding whitespace is ignored (Quantity.UnmarshalJSON trims
 * it); at least one digit is required (Kubernetes reads "Gi", "+" and "." as
 * 0 — we reject them); a value finer than a milli-unit rounds away from zero
 * like Kubernetes' MilliValue() (ceil for positives: "0.1m" is 1, "-0.1m" is
 * -1); past int64 milli-units is an error where Kubernetes would cap or wrap. */
int api_quantity_parse(const char *s, int64_t *ret_milli, struct gerr **err)
{
	const char *p = s, *end = s + strlen(s);
	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	bool neg = false;
	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	struct qdigits q = { .ip = p };
	while (p < end && is_digit(*p))
		p++;
	q.ni = (size_t)(p - q.ip);
	bool dot = p < end && *p == '.';
	if (dot) {
		q.fp = ++p;
		while (p < end && is_digit(*p))
			p++;
		q.nf = (size_t)(p - q.fp);
	}
	const char *suf = p;
	while (p < end && strchr("eEinumkKMGTP", *p))
		p++;
	if (p < end && (*p == '+' || *p == '-'))
		p++;
	while (p < end && is_digit(*p))
		p++;
	if (p != end || (q.ni + q.nf == 0 && !dot))
		return gerr_set(err, GERR_FAIL, QUANTITY_REGEX_MSG);
	if (q.ni + q.nf == 0)
		return gerr_set(err, GERR_FAIL, QUANTITY_NUMERIC_MSG);
	int64_t e10;
	int e2;
	if (!quantity_suffix(suf, (size_t)(end - suf), &e10, &e2))
		return gerr_set(err, GERR_FAIL, QUANTITY_SUFFIX_MSG);
	if (e10 > QEXP_CLAMP)
		e10 = QEXP_CLAMP;
	if (e10 < -QEXP_CLAMP)
		e10 = -QEXP_CLAMP;
	/* milli-units; the fraction digits shift the point left */
	e10 = e10 + 3 - (int64_t)q.nf;
	uint64_t mag;
	if (!quantity_magnitude(&q, e10, e2, &mag))
		return gerr_set(err, GERR_FAIL, "quantity is too large (more than %" PRId64
				" milli-units)", INT64_MAX);
	*ret_milli = neg ? -(int64_t)mag : (int64_t)mag;
	return 0;
}

/* ---- Go durations ---------------------------------------------------------- */

/* A unit is mult * 10^e nanoseconds. */
struct dunit {
	const char *name;
	uint64_t mult;
	int e;
};

static const struct dunit dunits[] = {
	{ "ns", 1, 0 },  { "us", 1, 3 }, { "\xc2\xb5s", 1, 3 } /* U+00B5 */,
	{ "\xce\xbcs", 1, 3 } /* U+03BC */, { "ms", 1, 6 }, { "s", 1, 9 },
	{ "m", 6, 10 },  { "h", 36, 11 },
};

static const struct dunit *duration_unit(const char *s, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(dunits); i++)
		if (strlen(dunits[i].name) == n && memcmp(dunits[i].name, s, n) == 0)
			return &dunits[i];
	return NULL;
}

static uint64_t pow10u(int e)
{
	uint64_t v = 1;
	while (e-- > 0)
		v *= 10;
	return v;
}

/* floor(0.f[0..nf) * unit) in nanoseconds, exact: the first u->e digits are
 * whole multiples of mult; of the rest, 17 digits decide the floor (a finite
 * decimal times 6 or 36 cannot land on an integer further out). */
static uint64_t duration_fraction(const char *f, size_t nf, const struct dunit *u)
{
	uint64_t whole = 0, rest = 0;
	for (int i = 0; i < u->e; i++)
		whole = whole * 10 + ((size_t)i < nf ? (uint64_t)(f[i] - '0') : 0);
	for (int i = 0; i < 17; i++) {
		size_t k = (size_t)u->e + (size_t)i;
		rest = rest * 10 + (k < nf ? (uint64_t)(f[k] - '0') : 0);
	}
	return whole * u->mult + rest * u->mult / pow10u(17);
}

/* Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?unit)+ or "0", at most
 * 2^63-1 ns (2^63 when negative), with Go's messages. The result is in
 * milliseconds truncated toward zero, as Go's Duration.Milliseconds(). */
int api_duration_parse(const char *s, int64_t *ret_ms, struct gerr **err)
{
	const char *orig = s;
	const uint64_t max = (uint64_t)1 << 63;
	bool neg = false;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*ret_ms = 0;
		return 0;
	}
	if (!*s)
		return gerr_set(err, GERR_FAIL, "time: invalid duration \"%s\"", orig);
	uint64_t total = 0;
	while (*s) {
		if (*s != '.' && !is_digit(*s))
			return gerr_set(err, GERR_FAIL, "time: invalid duration \"%s\"", orig);
		uint64_t v = 0;
		const char *start = s;
		for (; is_digit(*s); s++) {
			unsigned d = (unsigned)(*s - '0');
			if (v > (max - d) / 10)
				return gerr_set(err, GERR_FAIL, "time: invalid duration \"%s\"", orig);
			v = v * 10 + d;
		}
		bool pre = s != start, post = false;
		const char *frac = NULL;
		size_t nfrac = 0;
		if (*s == '.') {
			frac = ++s;
			while (is_digit(*s))
				s++;
			nfrac = (size_t)(s - frac);
			post = nfrac > 0;
		}
		if (!pre && !post)
			return gerr_set(err, GERR_FAIL, "time: invalid duration \"%s\"", orig);
		const char *us = s;
		while (*s && *s != '.' && !is_digit(*s))
			s++;
		if (s == us)
			return gerr_set(err, GERR_FAIL, "time: missing unit in duration \"%s\"", orig);
		const struct dunit *u = duration_unit(us, (size_t)(s - us));
		if (!u)
			return gerr_set(err, GERR_FAIL, "time: unknown unit \"%.*s\" in duration \"%s\"",
					(int)(s - us), us, orig);
		uint64_t unit = u->mult * pow10u(u->e);
		if (v > max / unit)
			return gerr_set(err, GERR_FAIL, "time: invalid duration \"%s\"", orig);
		v = v * unit + duration_fraction(frac, nfrac, u);
		if (v > max || total > max - v)
			return gerr_set(err, GERR_FAIL, "time: invalid duration \"%s\"", orig);
		total += v;
	}
	if (!neg && total > max - 1)
		return gerr_set(err, GERR_FAIL, "time: invalid duration \"%s\"", orig);
	uint64_t ms = total / 1000000;
	*ret_ms = neg ? -(int64_t)ms : (int64_t)ms;
	return 0;
}

/* ---- IntOrString ------------------------------------------------------------ */

/* Go's strconv.Atoi message for s[0..n) (the part before '%'). */
static int atoi_error(const char *s, size_t n, const char *why, struct gerr **err)
{
	return gerr_set(err, GERR_FAIL,
			"invalid value for IntOrString: invalid value \"%.*s%%\": strconv.Atoi: "
			"parsing \"%.*s\": %s", (int)n, s, (int)n, s, why);
}

/* Exact ceil/floor of pct * total / 100 (Kubernetes goes through float64). */
static int scale_percent(int64_t pct, int64_t total, bool round_up, int64_t *ret,
			 struct gerr **err)
{
	int64_t prod;
	if (__builtin_mul_overflow(pct, total, &prod))
		return gerr_set(err, GERR_FAIL, "invalid value for IntOrString: %" PRId64
				"%% of %" PRId64 " is out of range", pct, total);
	int64_t q = prod / 100, r = prod % 100; /* truncated toward zero */
	if (r != 0 && round_up && prod > 0)
		q++;
	if (r != 0 && !round_up && prod < 0)
		q--;
	*ret = q;
	return 0;
}

int api_scaled_value(const struct ynode *v, int64_t total, bool round_up, int64_t *ret,
		     struct gerr **err)
{
	if (!v)
		return gerr_set(err, GERR_FAIL, "nil value for IntOrString");
	if (v->type == YN_SCALAR && v->tag == YS_INT && !v->quoted) {
		if (!yn_int(v, ret))
			return gerr_set(err, GERR_FAIL, "invalid value for IntOrString: "
					"integer %s is out of range", v->str);
		return 0;
	}
	if (v->type != YN_SCALAR || (v->tag != YS_STR && !v->quoted))
		return gerr_set(err, GERR_FAIL,
				"invalid value for IntOrString: invalid type: neither int nor percentage");
	return api_scaled_percent(v->str, v->len, total, round_up, ret, err);
}

int api_scaled_percent(const char *s, size_t len, int64_t total, bool round_up, int64_t *ret,
		       struct gerr **err)
{
	if (len == 0 || s[len - 1] != '%')
		return gerr_set(err, GERR_FAIL,
				"invalid value for IntOrString: invalid type: string is not a percentage");
	size_t n = len - 1;
	int64_t pct;
	if (!parse_go_int(s, n, &pct)) {
		const char *p = s;
		if (n && (*p == '+' || *p == '-'))
			p++;
		bool digits = p < s + n;
		for (; p < s + n; p++)
			digits = digits && is_digit(*p);
		return atoi_error(s, n, digits ? "value out of range" : "invalid syntax", err);
	}
	return scale_percent(pct, total, round_up, ret, err);
}

/* ---- name and value checks -------------------------------------------------- */

#define MAXLEN_MSG(n) "must be no more than " #n " characters"

#define DNS1123_LABEL_MSG \
	"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " \
	"and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', " \
	"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
#define DNS1123_SUBDOMAIN_MSG \
	"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' " \
	"or '.', and must start and end with an alphanumeric character (e.g. 'example.com', " \
	"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define DNS1035_LABEL_MSG \
	"a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with " \
	"an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or " \
	"'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
#define QNAME_MSG \
	"must consist of alphanumeric characters, '-', '_' or '.', and must start and end with " \
	"an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for " \
	"validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define LABEL_VALUE_MSG \
	"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' " \
	"or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or " \
	"'my_value',  or '12345', regex used for validation is " \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
#define ENV_NAME_MSG \
	"a valid environment variable name must consist of alphabetic characters, digits, '_', " \
	"'-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  " \
	"or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? on s[0..n) */
static bool dns1123_label_ok(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* Labels joined by single dots; a label's own length is not limited. */
static bool dns1123_subdomain_ok(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!dns1123_label_ok(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] on s[0..n) */
static bool qname_ok(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!is_alnum(s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

const char *check_dns1123_label(const char *s)
{
	size_t n = strlen(s);
	if (n > 63)
		return MAXLEN_MSG(63);
	return dns1123_label_ok(s, n) ? NULL : DNS1123_LABEL_MSG;
}

const char *check_dns1123_subdomain(const char *s)
{
	size_t n = strlen(s);
	if (n > 253)
		return MAXLEN_MSG(253);
	return dns1123_subdomain_ok(s, n) ? NULL : DNS1123_SUBDOMAIN_MSG;
}

const char *check_dns1035_label(const char *s)
{
	size_t n = strlen(s);
	if (n > 63)
		return MAXLEN_MSG(63);
	if (!dns1123_label_ok(s, n) || is_digit(s[0]))
		return DNS1035_LABEL_MSG;
	return NULL;
}

/* Kubernetes' IsQualifiedName; of its messages, the first. */
const char *check_label_key(const char *s)
{
	const char *slash = strchr(s, '/');
	const char *name = s;
	if (slash) {
		if (strchr(slash + 1, '/'))
			return "a qualified name " QNAME_MSG " with an optional DNS subdomain prefix and "
			       "'/' (e.g. 'example.com/MyName')";
		size_t np = (size_t)(slash - s);
		if (np == 0)
			return "prefix part must be non-empty";
		if (np > 253)
			return "prefix part " MAXLEN_MSG(253);
		if (!dns1123_subdomain_ok(s, np))
			return "prefix part " DNS1123_SUBDOMAIN_MSG;
		name = slash + 1;
	}
	size_t n = strlen(name);
	if (n == 0)
		return "name part must be non-empty";
	if (n > 63)
		return "name part " MAXLEN_MSG(63);
	return qname_ok(name, n) ? NULL : "name part " QNAME_MSG;
}

const char *check_label_value(const char *s)
{
	size_t n = strlen(s);
	if (n > 63)
		return MAXLEN_MSG(63);
	return n == 0 || qname_ok(s, n) ? NULL : LABEL_VALUE_MSG;
}

/* IANA_SVC_NAME. The "one letter" message is today's Kubernetes wording (v1.22
 * said "letter or number" while requiring a letter). */
const char *check_port_name(const char *s)
{
	size_t n = strlen(s);
	if (n > 15)
		return MAXLEN_MSG(15);
	bool letter = false;
	for (size_t i = 0; i < n; i++) {
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
		letter = letter || (s[i] >= 'a' && s[i] <= 'z');
	}
	if (n == 0)
		return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
	if (!letter)
		return "must contain at least one letter (a-z)";
	if (strstr(s, "--"))
		return "must not contain consecutive hyphens";
	if (s[0] == '-' || s[n - 1] == '-')
		return "must not begin or end with a hyphen";
	return NULL;
}

const char *check_env_name(const char *s)
{
	if (!*s || is_digit(*s))
		return ENV_NAME_MSG;
	for (const char *p = s; *p; p++)
		if (!is_alnum(*p) && !strchr("-._", *p))
			return ENV_NAME_MSG;
	if (strcmp(s, ".") == 0)
		return "must not be '.'";
	if (strcmp(s, "..") == 0)
		return "must not be '..'";
	if (str_has_prefix(s, ".."))
		return "must not start with '..'";
	return NULL;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Where Go's base64.StdEncoding.Decode fails on s[0..len) (it skips '\r' and
 * '\n' anywhere), or -1 if it decodes. Mirrors Go's per-quantum rules,
 * including which offset each kind of error reports. */
static int64_t b64_error_offset(const char *s, size_t len)
{
	size_t si = 0;
	while (si < len) {
		for (int j = 0; j < 4; j++) {
			if (si == len) {
				if (j == 0)
					return -1;
				return (int64_t)si - j;
			}
			unsigned char c = (unsigned char)s[si++];
			if (b64_value(c) >= 0)
				continue;
			if (c == '\n' || c == '\r') {
				j--;
				continue;
			}
			if (c != '=' || j < 2)
				return (int64_t)(si - 1);
			if (j == 2) { /* "==" expected */
				while (si < len && (s[si] == '\n' || s[si] == '\r'))
					si++;
				if (si == len)
					return (int64_t)len;
				if (s[si] != '=')
					return (int64_t)(si - 1);
				si++;
			}
			while (si < len && (s[si] == '\n' || s[si] == '\r'))
				si++;
			return si < len ? (int64_t)si : -1;
		}
	}
	return -1;
}

/* The message names an offset, so it lives in a per-thread buffer, valid
 * until this thread's next call. */
const char *check_base64(const char *s, size_t len)
{
	static _Thread_local char msg[64];
	int64_t off = b64_error_offset(s, len);
	if (off < 0)
		return NULL;
	snprintf(msg, sizeof(msg), "illegal base64 data at input byte %" PRId64, off);
	return msg;
}
