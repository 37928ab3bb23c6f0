/* tests/unit/test_netpol_delta.c: netpol_compile_delta, golden-free. As root with
 * ./gitops-nft (GITOPS_NFT overrides the path), in a private network namespace
 * of this process: for pairs of inputs (old, new), loading the whole table of old
 * then the delta gives the same `nft list table` (objects and elements sorted,
 * rules in order) as loading the whole table of new. The pairs: consecutive
 * golden inputs in both directions, each golden against an empty input both ways,
 * and single changes of a generated input (one endpoint added or removed, a
 * Service's endpoints gone or back, a Service added or removed, its traffic policy,
 * a pod's labels or a policy changed). netpol_script_delta (the node's way: the text
 * loaded last against the new one) must give the same text as netpol_compile_delta,
 * and name exactly the objects whose listing changes. Without root only the text
 * contract is checked. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "netpol/netpol.h"

#define GOLDEN_DIR "tests/netpol/golden"

static bool kernel;       /* root, an applier, and our own network namespace */
static char *table_name;

static const char *applier(void)
{
	const char *p = getenv("GITOPS_NFT");
	return p && *p ? p : "./gitops-nft";
}

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		fail_msg("%d: %s", je.line, je.text);
	json_object_set_new(j, "table", json_string(table_name));
	return j;
}

static json_t *golden(const char *name)
{
	char *path = xasprintf("%s/%s.json", GOLDEN_DIR, name);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		fail_msg("%s:%d: %s", path, je.line, je.text);
	free(path);
	json_object_set_new(j, "table", json_string(table_name));
	return j;
}

static char *full(const json_t *in)
{
	struct sbuf out = SBUF_INIT;
	struct gerr *err = NULL;
	if (netpol_compile(in, &out, &err) < 0)
		fail_msg("netpol_compile: %s", err->msg);
	return sb_detach(&out, NULL);
}

static char *delta(const json_t *a, const json_t *b, int *ret)
{
	struct sbuf out = SBUF_INIT;
	struct gerr *err = NULL;
	*ret = netpol_compile_delta(a, b, &out, &err);
	if (*ret < 0)
		fail_msg("netpol_compile_delta: %s", err->msg);
	return sb_detach(&out, NULL);
}

/* ---- the kernel side ---------------------------------------------------------------- */

static void apply(const char *what, const char *text)
{
	const char *argv[] = { applier(), NULL };
	struct sbuf out = SBUF_INIT;
	struct child c = { .argv = argv, .in = text, .in_len = strlen(text), .out = &out,
			   .timeout_ms = 60000 };
	struct gerr *err = NULL;
	int st = child_run(&c, &err);
	if (st != 0)
		fail_msg("gitops-nft (%s) exited %d: %s%s\n--- script:\n%.4000s", what, st,
			 err ? err->msg : "", out.buf, text);
	sb_release(&out);
}

static char *list_table(void)
{
	const char *argv[] = { applier(), "--list", "ip", table_name, NULL };
	struct sbuf out = SBUF_INIT;
	struct child c = { .argv = argv, .out = &out, .timeout_ms = 60000 };
	struct gerr *err = NULL;
	if (child_run(&c, &err) != 0)
		fail_msg("gitops-nft --list failed");
	return sb_detach(&out, NULL);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == ','))
		s[--n] = '\0';
	return s;
}

/* `nft list table` with its blocks sorted by their first line and every set's
 * elements sorted (the kernel lists hash sets in hash order, chains in creation
 * order); the rules of a chain keep their order. */
static char *canonical(const char *listing)
{
	char *text = xstrdup(listing), *save = NULL, *line;
	struct strvec blocks = STRVEC_INIT, elems = STRVEC_INIT;
	struct sbuf cur = SBUF_INIT, el = SBUF_INIT;
	bool in_elems = false;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "table ", 6) || !strcmp(line, "}"))
			continue;
		if (in_elems || strstr(line, "elements = {")) {
			char *s = in_elems ? line : strstr(line, "elements = {") + 12;
			char *close = strchr(s, '}');
			if (close)
				*close = '\0';
			sb_addf(&el, "%s,", s);
			in_elems = !close;
			if (in_elems)
				continue;
			char *es = NULL;
			for (char *e = strtok_r(el.buf, ",", &es); e; e = strtok_r(NULL, ",", &es))
				if (*trim(e))
					strvec_push(&elems, trim(e));
			if (elems.n)
				qsort(elems.v, elems.n, sizeof(*elems.v), cmp_str);
			for (size_t i = 0; i < elems.n; i++)
				sb_addf(&cur, "\t\telement %s\n", elems.v[i]);
			strvec_clear(&elems);
			sb_reset(&el);
			continue;
		}
		if (!strcmp(line, "\t}")) {
			strvec_push(&blocks, cur.buf);
			sb_reset(&cur);
			continue;
		}
		if (*trim(line))
			sb_addf(&cur, "%s\n", line);
	}
	if (blocks.n)
		qsort(blocks.v, blocks.n, sizeof(*blocks.v), cmp_str);
	struct sbuf all = SBUF_INIT;
	for (size_t i = 0; i < blocks.n; i++)
		sb_addf(&all, "%s}\n", blocks.v[i]);
	sb_add(&all, cur.buf, cur.len);   /* nothing unless the listing was cut short */
	strvec_clear(&blocks);
	sb_release(&cur);
	sb_release(&el);
	free(text);
	return sb_detach(&all, NULL);
}

static void report_diff(const char *what, const char *want, const char *got)
{
	size_t line = 1;
	while (*want && *want == *got) {
		if (*want == '\n')
			line++;
		want++;
		got++;
	}
	while (line > 1 && want[-1] != '\n') {
		want--;
		got--;
	}
	fprintf(stderr, "%s: full(old)+delta differs from full(new) at line %zu\n"
			"  full(new):   %.*s\n  with delta:  %.*s\n", what, line,
		(int)strcspn(want, "\n"), want, (int)strcspn(got, "\n"), got);
}

/* The objects of a canonical listing: "chain NAME" or "set NAME" (maps too) → the
 * block's text, in name order. */
static void blocks(const char *canon, struct strvec *names, struct strvec *texts)
{
	const char *p = canon;
	while (*p) {
		const char *end = strstr(p, "\n}\n");
		end = end ? end + 3 : p + strlen(p);
		const char *kind = p + strspn(p, "\t");
		const char *name = strchr(kind, ' ');
		size_t n = name ? strcspn(name + 1, " \n") : 0;
		if (name)
			strvec_pushf(names, "%s %.*s", str_has_prefix(kind, "chain ") ? "chain" : "set", (int)n,
				     name + 1);
		else
			strvec_push(names, "?");
		char *text = xstrndup(p, (size_t)(end - p));
		strvec_push(texts, text);
		free(text);
		p = end;
	}
}

/* The objects whose blocks differ between two canonical listings, sorted by name
 * with sets before chains (netpol_script_delta's order). */
static void changed_objects(const char *ca, const char *cb, struct strvec *ret)
{
	struct strvec na = STRVEC_INIT, ta = STRVEC_INIT, nb = STRVEC_INIT, tb = STRVEC_INIT;
	blocks(ca, &na, &ta);
	blocks(cb, &nb, &tb);
	struct strvec sets = STRVEC_INIT, chains = STRVEC_INIT;
	for (size_t i = 0; i < na.n + nb.n; i++) {
		bool in_a = i < na.n;
		const char *name = in_a ? na.v[i] : nb.v[i - na.n];
		const char *text = in_a ? ta.v[i] : tb.v[i - na.n];
		const struct strvec *other = in_a ? &nb : &na, *other_t = in_a ? &tb : &ta;
		size_t k = 0;
		while (k < other->n && strcmp(other->v[k], name))
			k++;
		if (k < other->n && (!in_a || !strcmp(other_t->v[k], text)))
			continue;   /* the same in both, or already counted from a */
		strvec_push(str_has_prefix(name, "chain ") ? &chains : &sets, name);
	}
	if (sets.n)
		qsort(sets.v, sets.n, sizeof(*sets.v), cmp_str);
	if (chains.n)
		qsort(chains.v, chains.n, sizeof(*chains.v), cmp_str);
	for (size_t i = 0; i < sets.n; i++)
		strvec_push(ret, sets.v[i]);
	for (size_t i = 0; i < chains.n; i++)
		strvec_push(ret, chains.v[i]);
	strvec_clear(&na);
	strvec_clear(&ta);
	strvec_clear(&nb);
	strvec_clear(&tb);
	strvec_clear(&sets);
	strvec_clear(&chains);
}

static char *canonical_listing(void)
{
	char *l = list_table(), *c = canonical(l);
	free(l);
	return c;
}

/* What `touched` names, as objects: "element SET KEY" counts as "set SET", once. */
static void touched_objects(const struct strvec *touched, struct strvec *ret)
{
	for (size_t i = 0; i < touched->n; i++) {
		const char *t = touched->v[i];
		char *o = str_has_prefix(t, "element ") ? xasprintf("set %.*s", (int)strcspn(t + 8, " "), t + 8)
							: xstrdup(t);
		if (!ret->n || strcmp(ret->v[ret->n - 1], o))
			strvec_push(ret, o);
		free(o);
	}
}

/* "set …" before "chain …", each by name */
static int cmp_touched(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int cx = str_has_prefix(x, "chain "), cy = str_has_prefix(y, "chain ");
	return cx != cy ? cx - cy : strcmp(x, y);
}

static char *joined(const struct strvec *v)
{
	struct sbuf sb = SBUF_INIT;
	for (size_t i = 0; i < v->n; i++)
		sb_addf(&sb, "%s\n", v->v[i]);
	return sb_detach(&sb, NULL);
}

/* full(a) + delta(a, b) lists like full(b); returns the delta's return value. The
 * delta from the texts is the same, and names the objects whose listing changes. */
static int check_pair(const char *what, const json_t *a, const json_t *b)
{
	int r;
	char *fa = full(a), *fb = full(b), *d = delta(a, b, &r);
	assert_true(r == 0 || r == 1);
	if (r == 1)
		assert_string_equal(d, fb);
	struct sbuf sd = SBUF_INIT;
	struct strvec touched = STRVEC_INIT;
	assert_int_equal(netpol_script_delta(fa, fb, &sd, &touched), r);
	assert_string_equal(sd.buf, d);
	if (r == 1 || !*d)
		assert_int_equal(touched.n, 0);
	if (kernel) {
		apply("full(old)", fa);
		char *before = list_table();
		if (*d)
			apply("delta", d);
		char *got = list_table();
		apply("full(new)", fb);
		char *want = list_table();
		char *cw = canonical(want), *cg = canonical(got);
		if (strcmp(cw, cg)) {
			report_diff(what, cw, cg);
			fprintf(stderr, "--- delta:\n%.6000s\n", d);
			fail();
		}
		if (r == 0) {
			struct strvec changed = STRVEC_INIT;
			char *cb = canonical(before);
			changed_objects(cb, cw, &changed);
			struct strvec objs = STRVEC_INIT;
			touched_objects(&touched, &objs);
			char *t = joined(&objs), *c = joined(&changed);
			strvec_clear(&objs);
			if (strcmp(t, c)) {
				fprintf(stderr, "%s: the delta names\n%s-- the listing changed in\n%s", what, t, c);
				fail();
			}
			free(t);
			free(c);
			free(cb);
			strvec_clear(&changed);
		}
		free(before);
		free(cw);
		free(cg);
		free(got);
		free(want);
	}
	strvec_clear(&touched);
	sb_release(&sd);
	free(fa);
	free(fb);
	free(d);
	return r;
}

/* ---- golden inputs ------------------------------------------------------------------ */

static const char *const goldens[] = {
	"affinity", "allow-from-namespaceselector", "allow-from-podselector",
	"clusterip-two-endpoints", "deny-all-ingress", "egress-deny-allow-dns", "endport",
	"etp-local", "headless", "ipblock-except", "multiport-named-targetport", "named-ports",
	"no-endpoints", "nodeport", "peer-both-selectors", "traffic-policies",
	"two-policies-additive",
};

static void test_goldens(void **state)
{
	json_t *empty = parse("{\"nodeIPs\": [\"192.168.1.10\"]}");
	for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
		json_t *a = golden(goldens[i]);
		char *what = xasprintf("empty -> %s", goldens[i]);
		check_pair(what, empty, a);
		free(what);
		what = xasprintf("%s -> empty", goldens[i]);
		check_pair(what, a, empty);
		free(what);
		if (i + 1 < ARRAY_SIZE(goldens)) {
			json_t *b = golden(goldens[i + 1]);
			what = xasprintf("%s -> %s", goldens[i], goldens[i + 1]);
			check_pair(what, a, b);
			free(what);
			what = xasprintf("%s -> %s", goldens[i + 1], goldens[i]);
			check_pair(what, b, a);
			free(what);
			json_decref(b);
		}
		json_decref(a);
	}
	json_decref(empty);
}

/* ---- single changes of one input ------------------------------------------------------ */

static json_t *svc(const char *name, const char *ip, int eps, bool affinity)
{
	json_t *e = json_array();
	for (int k = 0; k < eps; k++) {
		char *a = xasprintf("10.244.%d.%d", k % 3, 10 + k);
		json_array_append_new(e, json_pack("{s:s, s:b, s:{s:i}}", "ip", a, "local", k == 0,
						   "ports", "http", 8080));
		free(a);
	}
	json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:i, s:i, s:i}], s:o}", "namespace", "web",
			      "name", name, "type", "NodePort", "clusterIP", ip, "ports", "name", "http",
			      "port", 80, "targetPort", 8080, "nodePort", 30000 + ip[strlen(ip) - 1], "endpoints", e);
	if (affinity)
		json_object_set_new(s, "sessionAffinity", json_string("ClientIP"));
	return s;
}

/* Three Services, two pods on this node and one elsewhere, two policies; `change`
 * alters one thing. */
static json_t *base(const char *change)
{
	json_t *in = parse("{\"nodeIPs\": [\"192.168.1.10\"], \"clusterCIDR\": \"10.244.0.0/16\","
		"\"namespaces\": [{\"name\": \"web\", \"labels\": {\"team\": \"a\"}}],"
		"\"pods\": ["
		" {\"namespace\": \"web\", \"name\": \"a\", \"ip\": \"10.244.0.10\", \"local\": true,"
		"  \"labels\": {\"app\": \"web\"}, \"ports\": [{\"name\": \"http\", \"containerPort\": 8080}]},"
		" {\"namespace\": \"web\", \"name\": \"b\", \"ip\": \"10.244.1.11\", \"local\": true,"
		"  \"labels\": {\"app\": \"db\"}},"
		" {\"namespace\": \"web\", \"name\": \"c\", \"ip\": \"10.244.2.12\", \"labels\": {\"app\": \"web\"}}],"
		"\"policies\": ["
		" {\"namespace\": \"web\", \"name\": \"db\", \"podSelector\": {\"matchLabels\": {\"app\": \"db\"}},"
		"  \"policyTypes\": [\"Ingress\"], \"ingress\": [{\"from\": [{\"podSelector\":"
		"  {\"matchLabels\": {\"app\": \"web\"}}}], \"ports\": [{\"port\": 5432}]}]},"
		" {\"namespace\": \"web\", \"name\": \"egress\", \"podSelector\": {},"
		"  \"policyTypes\": [\"Egress\"], \"egress\": [{\"to\": [{\"ipBlock\": {\"cidr\": \"10.0.0.0/8\","
		"  \"except\": [\"10.1.0.0/16\"]}}]}]}]}");
	json_t *svcs = json_array();
	bool c = change != NULL;
	json_array_append_new(svcs, svc("one", "10.96.0.1", c && !strcmp(change, "add-endpoint") ? 3 : 2, false));
	json_array_append_new(svcs, svc("two", "10.96.0.2",
		c && !strcmp(change, "drop-endpoint") ? 1 : c && !strcmp(change, "no-endpoints") ? 0 : 2,
		c && !strcmp(change, "affinity")));
	if (!c || strcmp(change, "remove-service"))
		json_array_append_new(svcs, svc("three", "10.96.0.3", 2, false));
	if (c && !strcmp(change, "add-service"))
		json_array_append_new(svcs, svc("four", "10.96.0.4", 4, true));
	json_object_set_new(in, "services", svcs);
	json_t *pods = json_object_get(in, "pods"), *pols = json_object_get(in, "policies");
	if (c && !strcmp(change, "relabel"))
		json_object_set_new(json_object_get(json_array_get(pods, 1), "labels"), "app", json_string("web"));
	if (c && !strcmp(change, "policy"))
		json_object_set_new(json_array_get(json_object_get(json_array_get(json_object_get(
			json_array_get(pols, 0), "ingress"), 0), "ports"), 0), "port", json_integer(5433));
	if (c && !strcmp(change, "no-policies"))
		json_array_clear(pols);
	if (c && !strcmp(change, "itp-local"))   /* a map key kept, its verdict changed */
		json_object_set_new(json_array_get(svcs, 0), "internalTrafficPolicy", json_string("Local"));
	if (c && !strcmp(change, "node-ip"))
		json_array_append_new(json_object_get(in, "nodeIPs"), json_string("192.168.1.11"));
	return in;
}

static void test_changes(void **state)
{
	static const char *const changes[] = {
		"add-endpoint", "drop-endpoint", "no-endpoints", "affinity", "remove-service",
		"add-service", "relabel", "policy", "no-policies", "itp-local", "node-ip",
	};
	json_t *b0 = base(NULL);
	for (size_t i = 0; i < ARRAY_SIZE(changes); i++) {
		json_t *b1 = base(changes[i]);
		char *what = xasprintf("base -> %s", changes[i]);
		assert_int_equal(check_pair(what, b0, b1), 0);   /* a delta, not the whole table */
		free(what);
		what = xasprintf("%s -> base", changes[i]);
		assert_int_equal(check_pair(what, b1, b0), 0);
		free(what);
		json_decref(b1);
	}
	json_decref(b0);
}

/* ---- the text contract ------------------------------------------------------------------ */

static void test_contract(void **state)
{
	json_t *a = base(NULL), *b = base("add-endpoint");
	int r;
	/* equal inputs: nothing to do */
	char *d = delta(a, a, &r);
	assert_int_equal(r, 0);
	assert_string_equal(d, "");
	free(d);
	/* one endpoint (on another node): the NodePort's chain is rewritten, the ClusterIP
	 * gets one more slot and the shared chain of 3; only this node's endpoints can
	 * hairpin, so no hairpin element */
	d = delta(a, b, &r);
	assert_int_equal(r, 0);
	assert_non_null(strstr(d, "dnat to 10.244.2.12"));
	assert_null(strstr(d, "hairpin-endpoints"));
	assert_non_null(strstr(d, " endpoints-tcp { 10.96.0.1 . 80 . 2 : 10.244.2.12 . 8080 }\n"));
	assert_non_null(strstr(d, "delete element ip gitops_"));
	assert_non_null(strstr(d, " service-ips { 10.96.0.1 . tcp . 80 : goto lb-tcp-3 }\n"));
	assert_non_null(strstr(d, "\nadd rule ip gitops_"));
	assert_null(strstr(d, "delete chain"));
	assert_null(strstr(d, "add table"));
	free(d);
	/* the same for ClusterIP Services: elements only, no rule touched but the new
	 * shared chain's, so the kernel validates no chain of the table again */
	json_t *ca = base(NULL), *cb = base("add-endpoint");
	json_t *cs[] = { ca, cb };
	for (size_t k = 0; k < ARRAY_SIZE(cs); k++) {
		size_t i;
		json_t *sv;
		json_array_foreach(json_object_get(cs[k], "services"), i, sv) {
			json_object_set_new(sv, "type", json_string("ClusterIP"));
			json_object_del(json_array_get(json_object_get(sv, "ports"), 0), "nodePort");
		}
	}
	d = delta(ca, cb, &r);
	assert_int_equal(r, 0);
	assert_null(strstr(d, "flush chain"));
	assert_non_null(strstr(d, " endpoints-tcp { 10.96.0.1 . 80 . 2 : 10.244.2.12 . 8080 }\n"));
	free(d);
	d = delta(cb, ca, &r);  /* and back: the slot and the chain of 3 go */
	assert_int_equal(r, 0);
	assert_null(strstr(d, "add rule"));
	assert_non_null(strstr(d, " endpoints-tcp { 10.96.0.1 . 80 . 2 }\n"));
	assert_non_null(strstr(d, "delete chain ip gitops_"));
	free(d);
	json_decref(ca);
	json_decref(cb);
	/* a verdict changed: the key deleted and added again in the same transaction */
	json_t *itp = base("itp-local");
	d = delta(a, itp, &r);
	assert_int_equal(r, 0);
	assert_non_null(strstr(d, "delete element ip "));
	assert_non_null(strstr(d, "service-ips { 10.96.0.1 . tcp . 80 }"));
	assert_non_null(strstr(d, "service-ips { 10.96.0.1 . tcp . 80 : goto lb-tcp-1 }"));
	free(d);
	json_decref(itp);
	/* another table name: the whole table */
	json_t *c = base("add-endpoint");
	json_object_set_new(c, "table", json_string("other"));
	char *fc = full(c);
	d = delta(a, c, &r);
	assert_int_equal(r, 1);
	assert_string_equal(d, fc);
	free(d);
	free(fc);
	/* an old input that does not compile: the whole table */
	json_t *bad = parse("{\"services\": 5}");
	char *fb = full(b);
	d = delta(bad, b, &r);
	assert_int_equal(r, 1);
	assert_string_equal(d, fb);
	free(d);
	free(fb);
	/* from the texts: equal texts, nothing; one that is not netpol_compile() output,
	 * the other whole; the objects touched */
	char *fa = full(a), *fbb = full(b);
	struct sbuf sd = SBUF_INIT;
	struct strvec touched = STRVEC_INIT;
	assert_int_equal(netpol_script_delta(fa, fa, &sd, &touched), 0);
	assert_int_equal(sd.len, 0);
	assert_int_equal(touched.n, 0);
	assert_int_equal(netpol_script_delta("table ip gitops {\n\tbogus\n}\n", fbb, &sd, &touched), 1);
	assert_string_equal(sd.buf, fbb);
	assert_int_equal(touched.n, 0);
	sb_reset(&sd);
	assert_int_equal(netpol_script_delta("", fbb, &sd, NULL), 1);
	assert_string_equal(sd.buf, fbb);
	sb_reset(&sd);
	assert_int_equal(netpol_script_delta(fa, fbb, &sd, &touched), 0);
	/* a few elements are named each, so that only they are read back */
	assert_int_equal(touched.n, 4);
	assert_string_equal(touched.v[0], "element endpoints-tcp 10.96.0.1 . 80 . 2");
	assert_string_equal(touched.v[1], "element service-ips 10.96.0.1 . tcp . 80");
	assert_string_equal(touched.v[2], "chain lb-tcp-3");
	assert_true(str_has_prefix(touched.v[3], "chain svc-"));
	assert_non_null(strstr(sd.buf, touched.v[3] + 6));
	strvec_clear(&touched);
	sb_release(&sd);
	free(fa);
	free(fbb);
	/* a new input that does not compile: the error, nothing written */
	struct sbuf out = SBUF_INIT;
	struct gerr *err = NULL;
	assert_int_equal(netpol_compile_delta(a, bad, &out, &err), -1);
	assert_non_null(err);
	assert_int_equal(out.len, 0);
	gerr_free(err);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(bad);
}

/* ---- netpol_partial_delta ------------------------------------------------------------ */

static bool has_endpoint(const json_t *svc, const char *ip)
{
	size_t k;
	json_t *e;
	json_array_foreach(json_object_get(svc, "endpoints"), k, e)
		if (!strcmp(json_string_value(json_object_get(e, "ip")) ?: "", ip))
			return true;
	return false;
}

/* `in` as the node gives it to netpol_partial_delta: no policies or namespaces, and
 * only the Services that have an endpoint at `ip` in `in` or in `other`. */
static json_t *part_of(const json_t *in, const json_t *other, const char *ip)
{
	json_t *p = json_deep_copy(in), *svcs = json_object_get(p, "services");
	json_object_del(p, "policies");
	json_object_del(p, "namespaces");
	for (size_t i = 0; i < json_array_size(svcs);) {
		json_t *sv = json_array_get(svcs, i);
		bool keep = has_endpoint(sv, ip);
		size_t k;
		json_t *o;
		json_array_foreach(json_object_get(other, "services"), k, o)
			keep |= !strcmp(json_string_value(json_object_get(o, "name")),
					json_string_value(json_object_get(sv, "name"))) &&
				!strcmp(json_string_value(json_object_get(o, "namespace")),
					json_string_value(json_object_get(sv, "namespace"))) &&
				has_endpoint(o, ip);
		if (keep)
			i++;
		else
			json_array_remove(svcs, i);
	}
	return p;
}

/* The change of the endpoint at `ip` from a to b, made partially onto full(a): it
 * must leave nothing for the whole compile's delta to do, and (with a kernel) give
 * full(b)'s table, touching exactly the objects whose listing changes. */
static void check_partial(const char *what, const json_t *a, const json_t *b, const char *ip)
{
	json_t *pa = part_of(a, b, ip), *pb = part_of(b, a, ip);
	char *fa = full(a), *fb = full(b);
	struct sbuf d = SBUF_INIT, after = SBUF_INIT, rest = SBUF_INIT;
	struct strvec touched = STRVEC_INIT;
	struct gerr *err = NULL;
	int r = netpol_partial_delta(fa, pa, pb, &d, &after, &touched, &err);
	if (r != 0)
		fail_msg("%s: netpol_partial_delta returned %d%s%s", what, r, err ? ": " : "", err ? err->msg : "");
	assert_int_equal(netpol_script_delta(after.buf, fb, &rest, NULL), 0);
	if (rest.len)
		fail_msg("%s: after the partial delta\n%s\nthe whole compile still has to do\n%s", what, d.buf, rest.buf);
	if (kernel) {
		apply("full(old)", fa);
		char *before = canonical_listing();
		if (d.len)
			apply("partial", d.buf);
		char *got = canonical_listing();
		if (rest.len)
			apply("the rest", rest.buf);
		char *cleaned = canonical_listing();
		apply("full(new)", fb);
		char *want = canonical_listing();
		if (strcmp(want, cleaned)) {
			report_diff(what, want, cleaned);
			fprintf(stderr, "--- partial delta:\n%s--- the rest:\n%s", d.buf, rest.buf);
			fail();
		}
		struct strvec changed = STRVEC_INIT, objs = STRVEC_INIT;
		changed_objects(before, got, &changed);
		touched_objects(&touched, &objs);
		if (objs.n)   /* in the table's order, as changed_objects gives them, once */
			qsort(objs.v, objs.n, sizeof(*objs.v), cmp_touched);
		for (size_t k = 1; k < objs.n;)
			if (!strcmp(objs.v[k - 1], objs.v[k])) {
				free(objs.v[k]);
				memmove(objs.v + k, objs.v + k + 1, (objs.n - k - 1) * sizeof(*objs.v));
				objs.v[--objs.n] = NULL;
			} else
				k++;
		char *t = joined(&objs), *c = joined(&changed);
		if (strcmp(t, c))
			fail_msg("%s: the partial delta names\n%s-- the listing changed in\n%s", what, t, c);
		free(t);
		free(c);
		strvec_clear(&objs);
		strvec_clear(&changed);
		free(before);
		free(got);
		free(cleaned);
		free(want);
	}
	gerr_free(err);
	strvec_clear(&touched);
	sb_release(&d);
	sb_release(&after);
	sb_release(&rest);
	free(fa);
	free(fb);
	json_decref(pa);
	json_decref(pb);
}

/* check_partial of a -> b and of b -> a; takes `what`. */
static void both_ways(char *what, const json_t *a, const json_t *b, const char *ip)
{
	check_partial(what, a, b, ip);
	check_partial(what, b, a, ip);
	free(what);
}

static json_t *endpoints_of(json_t *in, size_t i)
{
	return json_object_get(json_array_get(json_object_get(in, "services"), i), "endpoints");
}

/* For every endpoint of every Service of `in`: readiness flipped, the endpoint
 * removed, and a new one on the other side of the node added next to it. */
static void partial_changes(const char *name, const json_t *in)
{
	size_t i, k;
	json_t *sv, *e;
	json_array_foreach(json_object_get(in, "services"), i, sv) {
		json_array_foreach(json_object_get(sv, "endpoints"), k, e) {
			const char *ip = json_string_value(json_object_get(e, "ip"));
			if (!ip)
				continue;
			json_t *b = json_deep_copy(in);
			json_object_set_new(json_array_get(endpoints_of(b, i), k), "ready",
					    json_boolean(json_is_false(json_object_get(e, "ready"))));
			both_ways(xasprintf("%s: %s ready flipped", name, ip), in, b, ip);
			json_array_remove(endpoints_of(b, i), k);
			both_ways(xasprintf("%s: %s removed", name, ip), in, b, ip);
			json_decref(b);
			b = json_deep_copy(in);
			json_t *ne = json_deep_copy(e);
			char *nip = xasprintf("10.244.9.%zu", 10 * i + k + 1);
			json_object_set_new(ne, "ip", json_string(nip));
			json_object_set_new(ne, "local", json_boolean(!json_is_true(json_object_get(e, "local"))));
			json_array_append_new(endpoints_of(b, i), ne);
			both_ways(xasprintf("%s: %s added", name, nip), in, b, nip);
			free(nip);
			json_decref(b);
		}
	}
}

/* Six Services of several kinds over five pods (three on this node), each pod backing
 * several of them. */
static json_t *shared_pods(const char *const *ips)
{
	json_t *in = parse("{\"nodeIPs\": [\"192.168.1.10\"], \"clusterCIDR\": \"10.244.0.0/16\"}");
	json_t *svcs = json_array();
	for (int s = 0; s < 6; s++) {
		json_t *eps = json_array();
		for (int k = 0; k < 5; k++)
			if ((s + k) % 3)
				json_array_append_new(eps, json_pack("{s:s, s:b, s:b, s:{s:i}}", "ip", ips[k], "local", k < 3,
								     "ready", true, "ports", "http", 8080));
		char name[16], ip[16];
		snprintf(name, sizeof(name), "s%d", s);
		snprintf(ip, sizeof(ip), "10.96.1.%d", s + 1);
		json_t *sv = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:i, s:i}], s:o}", "namespace", "web", "name", name,
				       "type", s % 3 == 2 ? "NodePort" : "ClusterIP", "clusterIP", ip, "ports", "name",
				       "http", "port", 80, "targetPort", 8080, "endpoints", eps);
		if (s % 3 == 2)
			json_object_set_new(json_array_get(json_object_get(sv, "ports"), 0), "nodePort", json_integer(30000 + s));
		if (s == 1)
			json_object_set_new(sv, "sessionAffinity", json_string("ClientIP"));
		if (s == 2)
			json_object_set_new(sv, "externalTrafficPolicy", json_string("Local"));
		if (s == 4)
			json_object_set_new(sv, "internalTrafficPolicy", json_string("Local"));
		json_array_append_new(svcs, sv);
	}
	json_object_set_new(in, "services", svcs);
	return in;
}

/* A node's life: one pod's readiness after another flips (in every Service it backs,
 * as a probe does), each partial delta made onto the text the one before left. After
 * each, the whole compile finds nothing to do; in the kernel, the deltas one after
 * the other list like a whole load of the last input. */
static void test_partial_chain(void **state)
{
	static const char *const ips[] = { "10.244.0.1", "10.244.0.2", "10.244.0.3", "10.244.1.4", "10.244.1.5" };
	json_t *in = shared_pods(ips);
	char *loaded = full(in);
	if (kernel)
		apply("full(first)", loaded);
	unsigned seed = 1;
	for (int step = 0; step < 100; step++) {
		seed = seed * 1103515245u + 12345u;
		const char *ip = ips[(seed >> 16) % ARRAY_SIZE(ips)];
		json_t *next = json_deep_copy(in), *sv, *ep;
		size_t i, k;
		json_array_foreach(json_object_get(next, "services"), i, sv)
			json_array_foreach(json_object_get(sv, "endpoints"), k, ep)
				if (!strcmp(json_string_value(json_object_get(ep, "ip")), ip))
					json_object_set_new(ep, "ready", json_boolean(json_is_false(json_object_get(ep, "ready"))));
		json_t *pa = part_of(in, next, ip), *pb = part_of(next, in, ip);
		struct sbuf d = SBUF_INIT, after = SBUF_INIT, rest = SBUF_INIT;
		struct gerr *err = NULL;
		int r = netpol_partial_delta(loaded, pa, pb, &d, &after, NULL, &err);
		if (r != 0)
			fail_msg("step %d (%s): netpol_partial_delta returned %d", step, ip, r);
		if (kernel && d.len)
			apply("partial", d.buf);
		char *fn = full(next);
		assert_int_equal(netpol_script_delta(after.buf, fn, &rest, NULL), 0);
		if (rest.len)
			fail_msg("step %d (%s): after\n%s\nthe whole compile still has to do\n%s", step, ip, d.buf, rest.buf);
		free(fn);
		free(loaded);
		loaded = sb_detach(&after, NULL);
		sb_release(&d);
		sb_release(&rest);
		json_decref(pa);
		json_decref(pb);
		json_decref(in);
		in = next;
	}
	if (kernel) {
		char *got = canonical_listing(), *fl = full(in);
		apply("full(last)", fl);
		char *want = canonical_listing();
		if (strcmp(want, got)) {
			report_diff("the chain of partial deltas", want, got);
			fail();
		}
		free(got);
		free(want);
		free(fl);
	}
	free(loaded);
	json_decref(in);
}

static void test_partial(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
		json_t *a = golden(goldens[i]);
		partial_changes(goldens[i], a);
		json_decref(a);
	}
	json_t *a = base(NULL);
	partial_changes("base", a);
	size_t i;
	json_t *sv;
	json_array_foreach(json_object_get(a, "services"), i, sv) {  /* ClusterIP only: elements */
		json_object_set_new(sv, "type", json_string("ClusterIP"));
		json_object_del(json_array_get(json_object_get(sv, "ports"), 0), "nodePort");
	}
	partial_changes("clusterip", a);
	/* what it cannot do: a text it did not compile; another Service's key */
	json_t *b = json_deep_copy(a), *pa = part_of(a, a, "10.244.0.10"), *pb = json_deep_copy(pa);
	struct sbuf d = SBUF_INIT, after = SBUF_INIT;
	assert_int_equal(netpol_partial_delta("table ip gitops {\n\tbogus\n}\n", pa, pb, &d, &after, NULL, NULL), 1);
	json_array_remove(json_object_get(pa, "services"), 2);     /* "one" only */
	json_array_remove(json_object_get(pa, "services"), 1);
	json_decref(pb);
	pb = json_deep_copy(pa);
	json_t *clash = json_deep_copy(json_array_get(json_object_get(a, "services"), 1));
	json_object_set_new(clash, "name", json_string("clash"));    /* "two"'s ClusterIP */
	json_array_remove(json_object_get(clash, "endpoints"), 0);
	json_array_append_new(json_object_get(pb, "services"), clash);
	char *fa = full(a);
	assert_int_equal(netpol_partial_delta(fa, pa, pb, &d, &after, NULL, NULL), 1);
	assert_int_equal(d.len + after.len, 0);
	free(fa);
	json_decref(a);
	json_decref(b);
	json_decref(pa);
	json_decref(pb);
}

static int setup(void **state)
{
	table_name = xasprintf("gitops_delta_%ld", (long)getpid());
	kernel = geteuid() == 0 && access(applier(), X_OK) == 0 && unshare(CLONE_NEWNET) == 0;
	if (!kernel)
		printf("# netpol delta: not root, no %s or no unshare: text checks only\n", applier());
	return 0;
}

static int teardown(void **state)
{
	free(table_name);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_goldens),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_partial_chain),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
