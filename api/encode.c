/* encode.c: a document tree as JSON (jansson) and as block YAML in kubectl's
 * layout. The YAML re-reads to the same tree: strings that would resolve to
 * another type as plain scalars are quoted. */
#include "api/internal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON ---- */

static bool bool_value(const char *s)
{
	return strchr("yYtTo", s[0]) && strcmp(s, "off") && strcmp(s, "Off") && strcmp(s, "OFF");
}

json_t *api_to_json(const struct ynode *n)
{
	if (!n)
		return json_null();
	switch (n->type) {
	case YN_MAP: {
		json_t *o = json_object();
		for (size_t i = 0; i < n->n; i++)
			json_object_set_new(o, n->items[2 * i]->str, api_to_json(n->items[2 * i + 1]));
		return o;
	}
	case YN_SEQ: {
		json_t *a = json_array();
		for (size_t i = 0; i < n->n; i++)
			json_array_append_new(a, api_to_json(n->items[i]));
		return a;
	}
	default:
		break;
	}
	int64_t i;
	switch (n->tag) {
	case YS_NULL:
		return json_null();
	case YS_BOOL:
		return json_boolean(bool_value(n->str));
	case YS_INT:
		if (yn_int(n, &i))
			return json_integer(i);
		break;
	case YS_FLOAT: {
		char *end;
		double d = strtod(n->str, &end);
		if (!*end)
			return json_real(d);
		break;
	}
	default:
		break;
	}
	json_t *s = json_stringn(n->str, n->len);
	return s ? s : json_string("\xef\xbf\xbd"); /* not UTF-8: U+FFFD */
}

char *api_json_sha256(const json_t *v)
{
	char *text = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(text ? text : "", text ? strlen(text) : 0, md, &n, EVP_sha256(), NULL);
	free(text);
	char *hex = xmalloc(2 * n + 1);
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hex;
}

/* ---- YAML ---- */

static void indent(struct sbuf *out, int n)
{
	for (int i = 0; i < n; i++)
		sb_addc(out, ' ');
}

static bool needs_quotes(const struct ynode *n)
{
	const char *s = n->str;
	if (!*s || n->len != strlen(s))
		return true;
	if (api_resolve_plain(s) != YS_STR)
		return true;
	if (s[0] == '-' || s[0] == '?') {
		if (!s[1] || s[1] == ' ')
			return true;
	} else if (strchr(":,[]{}#&*!|>'\"%@` \t", s[0])) {
		return true;
	}
	size_t len = strlen(s);
	if (s[len - 1] == ' ' || s[len - 1] == ':' || s[len - 1] == '\t')
		return true;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			return true;
		if ((c == ':' && (p[1] == ' ' || p[1] == '\0')) || (c == '#' && p > s && p[-1] == ' '))
			return true;
	}
	return strcmp(s, "<<") == 0;
}

static void emit_quoted(struct sbuf *out, const char *s, size_t len)
{
	sb_addc(out, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': sb_adds(out, "\\\""); break;
		case '\\': sb_adds(out, "\\\\"); break;
		case '\n': sb_adds(out, "\\n"); break;
		case '\t': sb_adds(out, "\\t"); break;
		case '\r': sb_adds(out, "\\r"); break;
		case '\0': sb_adds(out, "\\0"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				sb_addf(out, "\\x%02x", c);
			else
				sb_addc(out, (char)c);
		}
	}
	sb_addc(out, '"');
}

/* A multi-line string as a literal block, when that round-trips exactly. */
static bool emit_literal(struct sbuf *out, const struct ynode *n, int ind)
{
	const char *s = n->str;
	size_t len = n->len;
	if (len != strlen(s) || !strchr(s, '\n') || s[0] == ' ' || s[0] == '\n')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return false;
		if (c == ' ' && (i + 1 == len || s[i + 1] == '\n'))
			return false; /* trailing spaces on a line */
	}
	size_t trailing = 0;
	while (trailing < len && s[len - 1 - trailing] == '\n')
		trailing++;
	sb_adds(out, trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+");
	sb_addc(out, '\n');
	const char *p = s, *end = s + len - (trailing > 1 ? 0 : trailing);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (l)
			indent(out, ind);
		sb_add(out, p, l);
		sb_addc(out, '\n');
		p += l + 1;
	}
	return true;
}

static void emit_scalar(struct sbuf *out, const struct ynode *n, int ind)
{
	int64_t i;
	switch (n->tag) {
	case YS_NULL:
		sb_adds(out, "null\n");
		return;
	case YS_BOOL:
		sb_adds(out, bool_value(n->str) ? "true\n" : "false\n");
		return;
	case YS_INT:
		if (yn_int(n, &i)) {
			sb_addf(out, "%lld\n", (long long)i);
			return;
		}
		break;
	case YS_FLOAT:
		sb_addf(out, "%s\n", n->str);
		return;
	default:
		break;
	}
	if (emit_literal(out, n, ind))
		return;
	if (needs_quotes(n))
		emit_quoted(out, n->str, n->len);
	else
		sb_add(out, n->str, n->len);
	sb_addc(out, '\n');
}

static void emit_node(struct sbuf *out, const struct ynode *n, int ind);

static void emit_key(struct sbuf *out, const struct ynode *k)
{
	if (k->type == YN_SCALAR && !needs_quotes(k) && k->tag == YS_STR)
		sb_add(out, k->str, k->len);
	else
		emit_quoted(out, k->str, k->len);
	sb_addc(out, ':');
}

static bool is_empty_collection(const struct ynode *n)
{
	return n->type != YN_SCALAR && n->n == 0;
}

static void emit_value_after_key(struct sbuf *out, const struct ynode *v, int ind)
{
	if (v->type == YN_SCALAR || is_empty_collection(v)) {
		sb_addc(out, ' ');
		emit_node(out, v, ind + 2);
	} else if (v->type == YN_SEQ) {
		sb_addc(out, '\n');
		emit_node(out, v, ind); /* kubectl: sequences not indented under their key */
	} else {
		sb_addc(out, '\n');
		emit_node(out, v, ind + 2);
	}
}

/* Emit the pairs of a map; the first line's indentation is already written when
 * first_inline is set (a map inside a sequence item). */
static void emit_map(struct sbuf *out, const struct ynode *n, int ind, bool first_inline)
{
	for (size_t i = 0; i < n->n; i++) {
		if (i || !first_inline)
			indent(out, ind);
		emit_key(out, n->items[2 * i]);
		emit_value_after_key(out, n->items[2 * i + 1], ind);
	}
}

static void emit_node(struct sbuf *out, const struct ynode *n, int ind)
{
	if (n->type == YN_SCALAR) {
		emit_scalar(out, n, ind);
		return;
	}
	if (is_empty_collection(n)) {
		sb_adds(out, n->type == YN_MAP ? "{}\n" : "[]\n");
		return;
	}
	if (n->type == YN_MAP) {
		emit_map(out, n, ind, false);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->items[i];
		indent(out, ind);
		sb_adds(out, "- ");
		if (it->type == YN_MAP && it->n)
			emit_map(out, it, ind + 2, true);
		else if (it->type == YN_SEQ && it->n) {
			sb_addc(out, '\n');
			emit_node(out, it, ind + 2);
		} else
			emit_node(out, it, ind + 2);
	}
}

void api_emit_yaml(const struct ynode *n, struct sbuf *out)
{
	if (n)
		emit_node(out, n, 0);
}
