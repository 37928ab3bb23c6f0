/* api/ynode.c: read-only accessors of the decoded YAML tree (struct ynode).
 *
 * None of these allocate; returned pointers point into the tree. Every accessor
 * accepts NULL and nodes of the wrong type, answering NULL / false / 0.
 */
#include <string.h>

#include "api/api.h"

static bool scalar_is(const struct ynode *k, const char *s, size_t n)
{
	return k && k->type == YN_SCALAR && k->len == n && memcmp(k->str, s, n) == 0;
}

/* The value of key s[0..n) in a map; the first one if a key repeats. */
static const struct ynode *get_n(const struct ynode *map, const char *s, size_t n)
{
	if (!map || map->type != YN_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->n; i++)
		if (scalar_is(map->items[2 * i], s, n))
			return map->items[2 * i + 1];
	return NULL;
}

const struct ynode *yn_get(const struct ynode *map, const char *key)
{
	return key ? get_n(map, key, strlen(key)) : NULL;
}

const struct ynode *yn_path(const struct ynode *n, const char *path)
{
	if (!path)
		return NULL;
	for (;;) {
		const char *dot = strchr(path, '.');
		size_t len = dot ? (size_t)(dot - path) : strlen(path);
		n = get_n(n, path, len);
		if (!n || !dot)
			return n;
		path = dot + 1;
	}
}

const char *yn_str(const struct ynode *n)
{
	return n && n->type == YN_SCALAR ? n->str : NULL;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/* Digits of base `base` (underscores ignored) into a magnitude <= limit. */
static bool parse_digits(const char *s, const char *end, unsigned base, uint64_t limit,
			 uint64_t *ret)
{
	uint64_t v = 0;
	bool any = false;
	for (; s < end; s++) {
		if (*s == '_')
			continue;
		int d = digit_value(*s);
		if (d >= (int)base || v > (limit - (uint64_t)d) / base)
			return false;
		v = v * base + (uint64_t)d;
		any = true;
	}
	*ret = v;
	return any;
}

/* YAML 1.1 integers as Kubernetes reads them (go-yaml v2, then JSON):
 * optional sign, then decimal, 0x hex, 0o or leading-0 octal, or 0b binary;
 * underscores are ignored anywhere (go-yaml strips them before
 * strconv.ParseInt). A leading-0 number with an 8 or 9 ("09") is not octal:
 * go-yaml makes it the float 9, which reaches an integer field as 9, so it
 * is read as decimal here. At least one digit; the value must fit int64. */
static bool parse_yaml_int(const char *s, size_t len, int64_t *ret)
{
	const char *end = s + len;
	bool neg = false;
	if (s < end && (*s == '+' || *s == '-'))
		neg = *s++ == '-';
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t v;
	bool ok;
	char p = end - s >= 2 && s[0] == '0' ? s[1] : 0;
	if (p == 'x' || p == 'X')
		ok = parse_digits(s + 2, end, 16, limit, &v);
	else if (p == 'o' || p == 'O')
		ok = parse_digits(s + 2, end, 8, limit, &v);
	else if (p == 'b' || p == 'B')
		ok = parse_digits(s + 2, end, 2, limit, &v);
	else if (p)
		ok = parse_digits(s, end, 8, limit, &v) || parse_digits(s, end, 10, limit, &v);
	else
		ok = parse_digits(s, end, 10, limit, &v);
	if (!ok)
		return false;
	if (neg)
		*ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*ret = (int64_t)v;
	return true;
}

bool yn_int(const struct ynode *n, int64_t *ret)
{
	if (!n || n->type != YN_SCALAR || n->tag != YS_INT || n->quoted)
		return false;
	int64_t v;
	if (!parse_yaml_int(n->str, n->len, &v))
		return false;
	if (ret)
		*ret = v;
	return true;
}

bool yn_bool(const struct ynode *n, bool *ret)
{
	/* YAML 1.1 booleans, the spellings go-yaml v2 resolves. */
	static const char *const yes[] = { "y", "Y", "yes", "Yes", "YES", "true", "True",
					   "TRUE", "on", "On", "ON" };
	static const char *const no[] = { "n", "N", "no", "No", "NO", "false", "False",
					  "FALSE", "off", "Off", "OFF" };
	if (!n || n->type != YN_SCALAR || n->tag != YS_BOOL || n->quoted)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		bool v;
		if (scalar_is(n, yes[i], strlen(yes[i])))
			v = true;
		else if (scalar_is(n, no[i], strlen(no[i])))
			v = false;
		else
			continue;
		if (ret)
			*ret = v;
		return true;
	}
	return false;
}

size_t yn_len(const struct ynode *n)
{
	return n && (n->type == YN_SEQ || n->type == YN_MAP) ? n->n : 0;
}

const struct ynode *yn_at(const struct ynode *seq, size_t i)
{
	return seq && seq->type == YN_SEQ && i < seq->n ? seq->items[i] : NULL;
}
