/* tests/unit/test_nft_table.c: nft_table_digest over touched objects. As root with
 * ./gitops-nft (GITOPS_NFT overrides the path), in a private network namespace of
 * this process: a small table with every key shape netpol/compile.c writes, then
 * deltas (elements added, deleted, their verdict or value changed, chains, whole
 * sets, interval sets, elements that do not exist) each checked against the whole
 * table: digest(before) - digest(before, touched) + digest(after, touched) ==
 * digest(after). Then at scale (20,000 elements): a whole map read against one
 * element, timed. Without root, nothing is checked. */
#include <sched.h>
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

#include "runtime/internal.h"

#define TABLE "gitops_t"

static bool kernel;       /* root, an applier, and our own network namespace */

static const char *applier(void)
{
	const char *p = getenv("GITOPS_NFT");
	return p && *p ? p : "./gitops-nft";
}

static void apply(const char *text)
{
	const char *argv[] = { applier(), NULL };
	struct sbuf out = SBUF_INIT;
	struct child c = { .argv = argv, .in = text, .in_len = strlen(text), .out = &out,
			   .timeout_ms = 60000 };
	struct gerr *err = NULL;
	int st = child_run(&c, &err);
	if (st != 0)
		fail_msg("gitops-nft exited %d: %s%s\n--- script:\n%.2000s", st, err ? err->msg : "",
			 out.buf, text);
	sb_release(&out);
}

/* The digest of the whole table (touched NULL) or of the touched objects, given as a
 * NULL-terminated list. */
static void digest(const char *const *touched, uint64_t lane[4])
{
	struct strvec v = STRVEC_INIT;
	struct gerr *err = NULL;
	if (touched)
		strvec_pushv(&v, touched);
	if (nft_table_digest("ip", TABLE, touched ? &v : NULL, lane, NULL, &err) < 0)
		fail_msg("nft_table_digest: %s", err->msg);
	strvec_clear(&v);
}

static bool zero(const uint64_t lane[4])
{
	return !(lane[0] | lane[1] | lane[2] | lane[3]);
}

/* Apply the delta; the touched objects must account for all the table's change. */
static void check_delta(const char *delta, const char *const *touched)
{
	uint64_t whole0[4], part0[4], part1[4], whole1[4];
	digest(NULL, whole0);
	digest(touched, part0);
	apply(delta);
	digest(touched, part1);
	digest(NULL, whole1);
	assert_memory_not_equal(whole0, whole1, sizeof(whole0));   /* the delta changed something */
	for (size_t i = 0; i < 4; i++)
		if (whole0[i] - part0[i] + part1[i] != whole1[i])
			fail_msg("lane %zu: the touched objects miss the change of\n%s(first: %s)", i, delta,
				 touched[0]);
}

static const char base[] =
	"add table ip " TABLE "\n"
	"delete table ip " TABLE "\n"
	"table ip " TABLE " {\n"
	"\tset node-ips {\n"
	"\t\ttype ipv4_addr\n"
	"\t\telements = { 10.96.0.20,\n"
	"\t\t\t     192.168.1.10 }\n"
	"\t}\n\n"
	"\tset hairpin-endpoints {\n"
	"\t\ttype ipv4_addr . ipv4_addr\n"
	"\t\telements = { 10.244.1.5 . 10.244.1.5 }\n"
	"\t}\n\n"
	"\tmap service-ips {\n"
	"\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
	"\t\telements = {\n"
	"\t\t\t10.96.0.20 . tcp . 80 : goto svc-a,\n"
	"\t\t\t10.96.0.21 . udp . 53 : goto svc-b\n"
	"\t\t}\n"
	"\t}\n\n"
	"\tmap service-nodeports {\n"
	"\t\ttype inet_proto . inet_service : verdict\n"
	"\t\telements = {\n"
	"\t\t\ttcp . 30080 : goto svc-a\n"
	"\t\t}\n"
	"\t}\n\n"
	"\tmap endpoints-tcp {\n"
	"\t\ttypeof ip daddr . tcp dport . numgen random mod 2 : ip daddr . tcp dport\n"
	"\t\telements = {\n"
	"\t\t\t10.96.0.20 . 80 . 0 : 10.244.1.5 . 8080,\n"
	"\t\t\t10.96.0.20 . 80 . 1 : 10.244.2.7 . 8080\n"
	"\t\t}\n"
	"\t}\n\n"
	"\tset pol-ports {\n"
	"\t\ttype ipv4_addr . inet_proto . inet_service\n"
	"\t\tflags interval\n"
	"\t\telements = { 10.0.0.0-10.95.255.255 . tcp . 443 }\n"
	"\t}\n\n"
	"\tset pol-all {\n"
	"\t\ttype ipv4_addr\n"
	"\t\tflags interval\n"
	"\t\telements = { 10.244.2.0/25 }\n"
	"\t}\n\n"
	"\tset aff-a {\n"
	"\t\ttype ipv4_addr\n"
	"\t\tflags dynamic,timeout\n"
	"\t\ttimeout 600s\n"
	"\t}\n\n"
	"\tchain services {\n"
	"\t\tip daddr . meta l4proto . th dport vmap @service-ips\n"
	"\t\tip daddr @node-ips meta l4proto . th dport vmap @service-nodeports\n"
	"\t\tip saddr . ip daddr @hairpin-endpoints accept\n"
	"\t\tip saddr . meta l4proto . th dport @pol-ports accept\n"
	"\t\tip saddr @pol-all accept\n"
	"\t}\n\n"
	"\tchain lb-tcp-2 {\n"
	"\t\tdnat ip to ip daddr . tcp dport . numgen random mod 2 map @endpoints-tcp\n"
	"\t}\n\n"
	"\tchain svc-a {\n"
	"\t\tip saddr @aff-a update @aff-a { ip saddr } goto lb-tcp-2\n"
	"\t}\n\n"
	"\tchain svc-b {\n"
	"\t\tgoto lb-tcp-2\n"
	"\t}\n"
	"}\n";

#define E(set, elems) "add element ip " TABLE " " set " { " elems " }\n"
#define D(set, elems) "delete element ip " TABLE " " set " { " elems " }\n"
#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_elements(void **state)
{
	if (!kernel)
		skip();
	apply(base);
	/* ipv4_addr: added, deleted */
	check_delta(E("node-ips", "10.96.0.30"), L("element node-ips 10.96.0.30"));
	check_delta(D("node-ips", "10.96.0.20"), L("element node-ips 10.96.0.20"));
	/* ipv4_addr . ipv4_addr */
	check_delta(E("hairpin-endpoints", "10.244.2.7 . 10.244.2.7"),
		    L("element hairpin-endpoints 10.244.2.7 . 10.244.2.7"));
	check_delta(D("hairpin-endpoints", "10.244.1.5 . 10.244.1.5"),
		    L("element hairpin-endpoints 10.244.1.5 . 10.244.1.5"));
	/* ipv4_addr . inet_proto . inet_service: verdict changed, added (udp, sctp) */
	check_delta(D("service-ips", "10.96.0.20 . tcp . 80") E("service-ips", "10.96.0.20 . tcp . 80 : goto svc-b"),
		    L("element service-ips 10.96.0.20 . tcp . 80"));
	check_delta(E("service-ips", "10.96.0.22 . sctp . 9 : goto svc-a, 10.96.0.22 . udp . 65535 : goto svc-a"),
		    L("element service-ips 10.96.0.22 . udp . 65535", "element service-ips 10.96.0.22 . sctp . 9"));
	/* a protocol as a number */
	check_delta(D("service-ips", "10.96.0.21 . udp . 53"), L("element service-ips 10.96.0.21 . 17 . 53"));
	/* inet_proto . inet_service */
	check_delta(D("service-nodeports", "tcp . 30080") E("service-nodeports", "tcp . 30080 : goto svc-b"),
		    L("element service-nodeports tcp . 30080"));
	check_delta(E("service-nodeports", "udp . 30053 : goto svc-a"), L("element service-nodeports udp . 30053"));
	/* ip daddr . tcp dport . numgen: the value changed, a slot added, one deleted */
	check_delta(D("endpoints-tcp", "10.96.0.20 . 80 . 1")
		    E("endpoints-tcp", "10.96.0.20 . 80 . 1 : 10.244.3.2 . 8080, 10.96.0.20 . 80 . 2 : 10.244.1.5 . 80"),
		    L("element endpoints-tcp 10.96.0.20 . 80 . 1", "element endpoints-tcp 10.96.0.20 . 80 . 2"));
	check_delta(D("endpoints-tcp", "10.96.0.20 . 80 . 0"), L("element endpoints-tcp 10.96.0.20 . 80 . 0"));
	/* several maps at once, with a chain, an element that does not exist, an element
	 * of a dynamic set and one named twice */
	check_delta("add chain ip " TABLE " svc-c\n"
		    "add rule ip " TABLE " svc-c goto lb-tcp-2\n"
		    E("service-ips", "10.96.0.23 . tcp . 443 : goto svc-c")
		    E("endpoints-tcp", "10.96.0.23 . 443 . 0 : 10.244.1.5 . 8443")
		    D("node-ips", "192.168.1.10"),
		    L("element service-ips 10.96.0.23 . tcp . 443", "element endpoints-tcp 10.96.0.23 . 443 . 0",
		      "element node-ips 192.168.1.10", "element node-ips 10.9.9.9", "element aff-a 10.244.1.5",
		      "element service-ips 10.96.0.23 . tcp . 443", "chain svc-c"));
	/* a set named whole and by element: counted once */
	check_delta(E("node-ips", "10.96.0.40"), L("element node-ips 10.96.0.40", "set node-ips"));
	/* a new map with its elements */
	check_delta("add map ip " TABLE " endpoints-udp { typeof ip daddr . udp dport . numgen random mod 2 :"
		    " ip daddr . udp dport; }\n"
		    E("endpoints-udp", "10.96.0.21 . 53 . 0 : 10.244.1.5 . 53"),
		    L("set endpoints-udp", "element endpoints-udp 10.96.0.21 . 53 . 0"));
	/* interval sets: read whole, once */
	check_delta(E("pol-all", "10.244.3.0/24"), L("element pol-all 10.244.3.0/24", "element pol-all 10.244.4.1"));
	check_delta(D("pol-ports", "10.0.0.0-10.95.255.255 . tcp . 443") E("pol-ports", "10.244.2.12 . udp . 81"),
		    L("element pol-ports 10.0.0.0-10.95.255.255 . tcp . 443", "element pol-ports 10.244.2.12 . udp . 81"));
	/* a key that does not fit its set: the set whole */
	check_delta(E("node-ips", "10.96.0.50"), L("element node-ips 10.96.0.50", "element node-ips tcp . 80"));
	/* an affinity entry (an element of a dynamic set) changes nothing */
	uint64_t w0[4], w1[4];
	digest(NULL, w0);
	apply(E("aff-a", "10.244.9.9"));
	digest(NULL, w1);
	assert_memory_equal(w0, w1, sizeof(w0));
}

static void test_absent(void **state)
{
	if (!kernel)
		skip();
	apply(base);
	uint64_t lane[4];
	digest(L("element service-ips 10.96.0.20 . tcp . 80"), lane);
	assert_false(zero(lane));
	digest(L("element endpoints-tcp 10.96.0.20 . 80 . 1"), lane);
	assert_false(zero(lane));
	/* keys not there, sets not there, sets whose elements do not count */
	const char *const *none[] = {
		L("element service-ips 10.96.0.20 . tcp . 81"), L("element service-ips 10.96.0.20 . udp . 80"),
		L("element endpoints-tcp 10.96.0.20 . 80 . 3"), L("element service-nodeports sctp . 30080"),
		L("element node-ips 10.96.0.21"), L("element hairpin-endpoints 10.244.1.5 . 10.244.1.6"),
		L("element no-such-map 10.96.0.20"), L("element aff-a 10.244.1.5"), L("set no-such-map"),
		L("chain no-such-chain"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
		digest(none[i], lane);
		if (!zero(lane))
			fail_msg("%s: not nothing", none[i][0]);
	}
	/* no table at all */
	apply("delete table ip " TABLE "\n");
	digest(L("element service-ips 10.96.0.20 . tcp . 80"), lane);
	assert_true(zero(lane));
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 20,000 elements in endpoints-tcp and 10,000 in service-ips: one element against
 * the whole map, and the identity with many elements around. */
static void test_scale(void **state)
{
	if (!kernel)
		skip();
	apply(base);
	struct sbuf s = SBUF_INIT;
	sb_adds(&s, "add element ip " TABLE " endpoints-tcp {");
	for (unsigned i = 0; i < 20000; i++)
		sb_addf(&s, "%s10.97.%u.%u . 80 . %u : 10.244.%u.%u . 8080", i ? ", " : " ", i / 2 / 250, i / 2 % 250,
			i % 2, i % 200, i % 250 + 1);
	sb_adds(&s, " }\nadd element ip " TABLE " service-ips {");
	for (unsigned i = 0; i < 10000; i++)
		sb_addf(&s, "%s10.97.%u.%u . tcp . 80 : goto lb-tcp-2", i ? ", " : " ", i / 250, i % 250);
	sb_adds(&s, " }\n");
	apply(s.buf);
	sb_release(&s);
	const char *const *whole = L("set endpoints-tcp"), *const *one = L("element endpoints-tcp 10.97.20.7 . 80 . 1");
	uint64_t lane[4];
	double t0 = now();
	for (int i = 0; i < 10; i++)
		digest(whole, lane);
	double t1 = now();
	for (int i = 0; i < 100; i++)
		digest(one, lane);
	double t2 = now();
	assert_false(zero(lane));
	printf("# endpoints-tcp of 20000 elements: whole map %.2f ms, one element %.3f ms\n",
	       (t1 - t0) * 100, (t2 - t1) * 10);
	check_delta(D("endpoints-tcp", "10.97.20.7 . 80 . 1") E("endpoints-tcp", "10.97.20.7 . 80 . 1 : 10.244.9.9 . 80")
		    D("service-ips", "10.97.0.1 . tcp . 80"),
		    L("element endpoints-tcp 10.97.20.7 . 80 . 1", "element service-ips 10.97.0.1 . tcp . 80"));
	apply("delete table ip " TABLE "\n");
}

static int setup(void **state)
{
	kernel = geteuid() == 0 && access(applier(), X_OK) == 0 && unshare(CLONE_NEWNET) == 0;
	if (!kernel)
		printf("# nft table: not root, no %s or no unshare: nothing checked\n", applier());
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elements),
		cmocka_unit_test(test_absent),
		cmocka_unit_test(test_scale),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
