/* tests/unit/test_scheduler.c: the scheduler checked against kube-scheduler's behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reconcile/scheduler_internal.h"

#define MI (1024LL * 1024)
#define GI (1024LL * MI)

/* ---- fixtures: JSON from text with ' for ", released after each test ---- */

static json_t **kept;
static size_t nkept, akept;

static json_t *J(const char *text)
{
	char *s = xstrdup(text);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t e;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
	if (!j)
		fail_msg("bad test JSON (%s): %s", e.text, s);
	free(s);
	GROW(kept, akept, nkept + 1);
	kept[nkept++] = j;
	return j;
}

static int teardown(void **state)
{
	for (size_t i = 0; i < nkept; i++)
		json_decref(kept[i]);
	free(kept);
	kept = NULL;
	nkept = akept = 0;
	return 0;
}

static struct sched_node N(const char *name)
{
	return (struct sched_node){ .name = name, .alloc_cpu = 4000, .alloc_mem = 8 * GI,
				    .alloc_pods = 110 };
}

static struct sched_request R(const char *spec)
{
	return (struct sched_request){ .ns = "default", .spec = J(spec) };
}

#define POD_1CPU "{'containers':[{'name':'c','resources':{'requests':{'cpu':'1','memory':'1Gi'}}}]}"
#define POD_BARE "{'containers':[{'name':'c'}]}"

static const char *place(const struct sched_request *r, const struct sched_node *nodes, size_t n,
			 const struct sched_pod *pods, size_t np)
{
	char *why = NULL;
	int i = sched_place(r, nodes, n, pods, np, &why);
	if (i < 0)
		fail_msg("not placed: %s", why);
	assert_null(why);
	assert_true((size_t)i < n);
	return nodes[i].name;
}

static void expect_fail(const struct sched_request *r, const struct sched_node *nodes, size_t n,
			const struct sched_pod *pods, size_t np, const char *want)
{
	char *why = NULL;
	assert_int_equal(sched_place(r, nodes, n, pods, np, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, want);
	free(why);
}

/* Place count replicas one by one, accounting each and recording it as a pod. */
static void place_replicas(const struct sched_request *r, struct sched_node *nodes, size_t n,
			   struct sched_pod *pods, size_t *np, int count)
{
	for (int k = 0; k < count; k++) {
		char *why = NULL;
		int i = sched_place(r, nodes, n, pods, *np, &why);
		if (i < 0)
			fail_msg("replica %d not placed: %s", k, why);
		sched_account(&nodes[i], r->spec);
		pods[(*np)++] = (struct sched_pod){ r->ns, nodes[i].name, r->labels, r->owner };
	}
}

static int on_node(const struct sched_pod *pods, size_t np, const char *node)
{
	int n = 0;
	for (size_t i = 0; i < np; i++)
		n += !strcmp(pods[i].node, node);
	return n;
}

/* ---- requests ---- */

static void test_requests_sum_and_init(void **state)
{
	int64_t cpu, mem;
	sched_requests(J("{'containers':["
			 "{'resources':{'requests':{'cpu':'100m','memory':'64Mi'}}},"
			 "{'resources':{'requests':{'cpu':'200m','memory':'64Mi'}}}],"
			 "'initContainers':[{'resources':{'requests':{'cpu':'500m','memory':'100Mi'}}}]}"),
		       &cpu, &mem);
	assert_int_equal(cpu, 500);      /* the init container's is larger */
	assert_int_equal(mem, 128 * MI); /* the containers' sum is larger */
}

static void test_requests_sidecar_overhead_limits(void **state)
{
	int64_t cpu, mem;
	/* a sidecar adds to the sum and to every later init container */
	sched_requests(J("{'containers':[{'resources':{'requests':{'cpu':'200m'}}}],"
			 "'initContainers':["
			 "{'restartPolicy':'Always','resources':{'requests':{'cpu':'100m'}}},"
			 "{'resources':{'requests':{'cpu':'1'}}}]}"),
		       &cpu, &mem);
	assert_int_equal(cpu, 1100);
	assert_int_equal(mem, 0);
	/* limits stand in for missing requests; numbers are quantities; overhead adds */
	sched_requests(J("{'containers':[{'resources':{'limits':{'cpu':2,'memory':'1.5Gi'}}}],"
			 "'overhead':{'cpu':'250m','memory':'1Ki'}}"),
		       &cpu, &mem);
	assert_int_equal(cpu, 2250);
	assert_int_equal(mem, 3 * GI / 2 + 1024);
}

static void test_requests_none_and_nonzero(void **state)
{
	int64_t cpu, mem;
	sched_requests(J(POD_BARE), &cpu, &mem);
	assert_int_equal(cpu, 0);
	assert_int_equal(mem, 0);
	sched_pod_requests(J("{'containers':[{},{'resources':{'requests':{'cpu':'0'}}}]}"), true,
			   &cpu, &mem);
	assert_int_equal(cpu, 100);          /* an explicit 0 stays 0 */
	assert_int_equal(mem, 2 * 200 * MI);
}

static void test_init_container_does_not_fit(void **state)
{
	struct sched_node n[] = { N("a") };
	n[0].alloc_cpu = 1000;
	struct sched_request r = R("{'containers':[{'resources':{'requests':{'cpu':'100m'}}}],"
				   "'initContainers':[{'resources':{'requests':{'cpu':'2'}}}]}");
	expect_fail(&r, n, 1, NULL, 0, "0/1 nodes are available: 1 Insufficient cpu.");
	n[0].alloc_cpu = 2000;
	assert_string_equal(place(&r, n, 1, NULL, 0), "a");
}

/* ---- one test per filter, with upstream's reason ---- */

static void test_filter_resources(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	struct sched_request r = R(POD_1CPU);
	n[0].used_cpu = 3500;
	n[1].used_mem = 7800 * MI;
	n[2].used_pods = 110;
	expect_fail(&r, n, 3, NULL, 0,
		    "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
		    "1 Too many pods.");
	n[0].used_mem = 7800 * MI; /* both short on one node: both reasons count */
	expect_fail(&r, n, 3, NULL, 0,
		    "0/3 nodes are available: 1 Insufficient cpu, 1 Too many pods, "
		    "2 Insufficient memory.");
	/* a pod requesting nothing fits a full node, but not past its pod count */
	struct sched_request bare = R(POD_BARE);
	assert_string_equal(place(&bare, n, 1, NULL, 0), "a");
	n[2].used_cpu = 4000;
	expect_fail(&bare, &n[2], 1, NULL, 0, "0/1 nodes are available: 1 Too many pods.");
}

static void test_filter_unschedulable(void **state)
{
	struct sched_node n[] = { N("a") };
	n[0].unschedulable = true;
	expect_fail(&(struct sched_request){ .ns = "default", .spec = J(POD_BARE) }, n, 1, NULL, 0,
		    "0/1 nodes are available: 1 node(s) were unschedulable.");
	struct sched_request r = R("{'tolerations':[{'key':'node.kubernetes.io/unschedulable',"
				   "'operator':'Exists','effect':'NoSchedule'}]}");
	assert_string_equal(place(&r, n, 1, NULL, 0), "a");
}

static void test_filter_node_name(void **state)
{
	struct sched_node n[] = { N("a"), N("b") };
	struct sched_request r = R("{'nodeName':'b'}");
	assert_string_equal(place(&r, n, 2, NULL, 0), "b");
	r = R("{'nodeName':'zz'}");
	expect_fail(&r, n, 2, NULL, 0,
		    "0/2 nodes are available: 2 node(s) didn't match the requested node name.");
}

static void test_filter_taint_and_not_ready(void **state)
{
	struct sched_node n[] = { N("a"), N("b") };
	n[0].taints = J("[{'key':'dedicated','value':'db','effect':'NoSchedule'}]");
	n[1].not_ready = true;
	expect_fail(&(struct sched_request){ .ns = "default", .spec = J(POD_BARE) }, n, 2, NULL, 0,
		    "0/2 nodes are available: 1 node(s) had untolerated taint "
		    "{dedicated: db}, 1 node(s) had untolerated taint "
		    "{node.kubernetes.io/not-ready: }.");
	struct sched_request r = R("{'tolerations':[{'key':'node.kubernetes.io/not-ready',"
				   "'operator':'Exists'}]}");
	assert_string_equal(place(&r, n, 2, NULL, 0), "b");
}

static void test_filter_node_affinity(void **state)
{
	struct sched_node n[] = { N("a"), N("b") };
	n[1].labels = J("{'disk':'ssd'}");
	struct sched_request r = R("{'nodeSelector':{'disk':'ssd'}}");
	assert_string_equal(place(&r, n, 2, NULL, 0), "b");
	r = R("{'nodeSelector':{'disk':'nvme'}}");
	expect_fail(&r, n, 2, NULL, 0,
		    "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.");
	/* nodeSelector and affinity both apply; hostname defaults to the node name */
	r = R("{'nodeSelector':{'disk':'ssd'},'affinity':{'nodeAffinity':{"
	      "'requiredDuringSchedulingIgnoredDuringExecution':{'nodeSelectorTerms':[{"
	      "'matchExpressions':[{'key':'kubernetes.io/hostname','operator':'In',"
	      "'values':['a']}]}]}}}}");
	expect_fail(&r, n, 2, NULL, 0,
		    "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.");
}

static void test_filter_ports(void **state)
{
	struct sched_node n[] = { N("a"), N("b") };
	n[0].host_ports = J("[{'port':8080,'protocol':'TCP','hostIP':''}]");
	n[1].host_ports = J("[{'port':8080,'protocol':'TCP','hostIP':'127.0.0.1'}]");
	struct sched_request r = R("{'containers':[{'ports':[{'containerPort':80,'hostPort':8080}]}]}");
	expect_fail(&r, n, 2, NULL, 0,
		    "0/2 nodes are available: 2 node(s) didn't have free ports for the requested "
		    "pod ports.");
	/* another address, or another protocol, is free */
	r = R("{'containers':[{'ports':[{'containerPort':80,'hostPort':8080,'hostIP':'10.0.0.1'}]}]}");
	assert_string_equal(place(&r, n, 2, NULL, 0), "b");
	r = R("{'containers':[{'ports':[{'containerPort':80,'hostPort':8080,'protocol':'UDP'}]}]}");
	assert_string_equal(place(&r, n, 2, NULL, 0), "a");
	/* a container port without hostPort takes no host port; hostNetwork does */
	r = R("{'containers':[{'ports':[{'containerPort':8080}]}]}");
	assert_string_equal(place(&r, n, 2, NULL, 0), "a");
	r = R("{'hostNetwork':true,'containers':[{'ports':[{'containerPort':8080}]}]}");
	expect_fail(&r, n, 2, NULL, 0,
		    "0/2 nodes are available: 2 node(s) didn't have free ports for the requested "
		    "pod ports.");
}

static void test_host_ports_accounted(void **state)
{
	struct sched_node n[] = { N("a"), N("b") };
	struct sched_request r = R("{'containers':[{'resources':{'requests':{'cpu':'250m',"
				   "'memory':'64Mi'}},'ports':[{'containerPort':53,'hostPort':53,"
				   "'protocol':'UDP'}]}]}");
	assert_string_equal(place(&r, n, 2, NULL, 0), "a");
	sched_account(&n[0], r.spec);
	assert_int_equal(n[0].used_cpu, 250);
	assert_int_equal(n[0].used_mem, 64 * MI);
	assert_int_equal(n[0].used_pods, 1);
	assert_int_equal(json_array_size(n[0].host_ports), 1);
	assert_string_equal(place(&r, n, 2, NULL, 0), "b");
	sched_account(&n[1], r.spec);
	expect_fail(&r, n, 2, NULL, 0,
		    "0/2 nodes are available: 2 node(s) didn't have free ports for the requested "
		    "pod ports.");
	json_decref((json_t *)n[0].host_ports);
	json_decref((json_t *)n[1].host_ports);
}

static void test_filter_spread(void **state)
{
	struct sched_node n[] = { N("a1"), N("a2"), N("b1"), N("x") };
	n[0].labels = n[1].labels = J("{'zone':'a'}");
	n[2].labels = J("{'zone':'b'}");
	const json_t *web = J("{'app':'web'}");
	struct sched_pod pods[] = { { "default", "a1", web, NULL }, { "default", "a2", web, NULL },
				    { "other", "b1", web, NULL }, { "other", "b1", web, NULL } };
	struct sched_request r = R("{'topologySpreadConstraints':[{'maxSkew':1,"
				   "'topologyKey':'zone','whenUnsatisfiable':'DoNotSchedule',"
				   "'labelSelector':{'matchLabels':{'app':'web'}}}]}");
	r.labels = web;
	/* zone a has 2, zone b 0 (pods in "other" do not count): only b */
	assert_string_equal(place(&r, n, 4, pods, 4), "b1");
	n[2].unschedulable = true;
	expect_fail(&r, n, 4, pods, 4,
		    "0/4 nodes are available: 1 node(s) didn't match pod topology spread constraints "
		    "(missing required label), 1 node(s) were unschedulable, 2 node(s) didn't match "
		    "pod topology spread constraints.");
	/* minDomains above the domains there are makes the global minimum 0 */
	n[2].unschedulable = false;
	r = R("{'topologySpreadConstraints':[{'maxSkew':1,'minDomains':3,'topologyKey':'zone',"
	      "'whenUnsatisfiable':'DoNotSchedule','labelSelector':{'matchLabels':{'app':'web'}}}]}");
	r.labels = web;
	pods[2].ns = "default";
	expect_fail(&r, n, 3, pods, 3,
		    "0/3 nodes are available: 3 node(s) didn't match pod topology spread constraints.");
}

static void test_filter_pod_affinity(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	n[0].labels = n[1].labels = J("{'zone':'z1'}");
	n[2].labels = J("{'zone':'z2'}");
	struct sched_pod pods[] = { { "default", "b", J("{'app':'cache'}"), NULL } };
	struct sched_request r = R("{'affinity':{'podAffinity':{"
				   "'requiredDuringSchedulingIgnoredDuringExecution':[{"
				   "'labelSelector':{'matchLabels':{'app':'cache'}},'topologyKey':'zone'}]}}}");
	/* zone z1 holds the cache: a and b qualify, a wins the tie by name */
	assert_string_equal(place(&r, n, 3, pods, 1), "a");
	expect_fail(&r, &n[2], 1, pods, 1,
		    "0/1 nodes are available: 1 node(s) didn't match pod affinity rules.");
	/* no cache anywhere and the pod is no cache itself: nowhere */
	expect_fail(&r, n, 3, NULL, 0,
		    "0/3 nodes are available: 3 node(s) didn't match pod affinity rules.");
	/* the first of a group selecting itself goes anywhere with the key */
	r.labels = J("{'app':'cache'}");
	n[0].labels = NULL;
	assert_string_equal(place(&r, n, 3, NULL, 0), "b");
	/* a cache in another namespace does not count unless the term names it */
	pods[0].ns = "infra";
	r.labels = NULL;
	expect_fail(&r, n, 3, pods, 1,
		    "0/3 nodes are available: 3 node(s) didn't match pod affinity rules.");
	r = R("{'affinity':{'podAffinity':{'requiredDuringSchedulingIgnoredDuringExecution':[{"
	      "'labelSelector':{'matchLabels':{'app':'cache'}},'topologyKey':'zone',"
	      "'namespaces':['infra']}]}}}");
	assert_string_equal(place(&r, n, 3, pods, 1), "b");
	r = R("{'affinity':{'podAffinity':{'requiredDuringSchedulingIgnoredDuringExecution':[{"
	      "'labelSelector':{'matchLabels':{'app':'cache'}},'topologyKey':'zone',"
	      "'namespaceSelector':{}}]}}}");
	assert_string_equal(place(&r, n, 3, pods, 1), "b");
}

static void test_filter_pod_anti_affinity(void **state)
{
	struct sched_node n[] = { N("a"), N("b") };
	struct sched_pod pods[] = { { "default", "a", J("{'app':'db'}"), NULL } };
	struct sched_request r = R("{'affinity':{'podAntiAffinity':{"
				   "'requiredDuringSchedulingIgnoredDuringExecution':[{"
				   "'labelSelector':{'matchLabels':{'app':'db'}},"
				   "'topologyKey':'kubernetes.io/hostname'}]}}}");
	assert_string_equal(place(&r, n, 2, pods, 1), "b");
	expect_fail(&r, n, 1, pods, 1,
		    "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules.");
	pods[0].ns = "other";
	assert_string_equal(place(&r, n, 1, pods, 1), "a");
}

/* ---- the message ---- */

static void test_fit_message_mixed(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c"), N("d") };
	struct sched_request r = R(POD_1CPU);
	n[0].used_mem = n[1].used_mem = 7500 * MI;
	n[2].taints = J("[{'key':'dedicated','value':'db','effect':'NoSchedule'}]");
	/* Go's sort.Strings over "count reason": "1 node..." sorts before "2 Ins..." */
	expect_fail(&r, n, 3, NULL, 0,
		    "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
		    "2 Insufficient memory.");
	n[3].unschedulable = true;
	n[3].used_mem = 8 * GI; /* the first failing filter alone is reported */
	expect_fail(&r, n, 4, NULL, 0,
		    "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
		    "1 node(s) were unschedulable, 2 Insufficient memory.");
}

static void test_fit_message_sorting(void **state)
{
	struct strvec why[12] = { 0 };
	for (int i = 0; i < 10; i++)
		strvec_push(&why[i], "B");
	strvec_push(&why[10], "A");
	strvec_push(&why[10], "C");
	char *msg = sched_fit_message(why, 12);
	assert_string_equal(msg, "0/12 nodes are available: 1 A, 1 C, 10 B.");
	free(msg);
	for (int i = 0; i < 12; i++)
		strvec_clear(&why[i]);
	struct sched_request r = R(POD_BARE);
	char *none = NULL;
	assert_int_equal(sched_place(&r, NULL, 0, NULL, 0, &none), -1);
	assert_string_equal(none, "no nodes available to schedule pods");
	free(none);
	assert_int_equal(sched_place(&r, NULL, 0, NULL, 0, NULL), -1);
}

/* ---- tolerations ---- */

static bool tol(const char *tolerations, const char *key, const char *value, const char *effect)
{
	const struct sched_taint t = { key, value, effect };
	return sched_tolerates(J(tolerations), &t);
}

static void test_tolerations(void **state)
{
	const char *eq = "[{'key':'k','operator':'Equal','value':'v','effect':'NoSchedule'}]";
	assert_true(tol(eq, "k", "v", "NoSchedule"));
	assert_false(tol(eq, "k", "w", "NoSchedule"));
	assert_false(tol(eq, "j", "v", "NoSchedule"));
	assert_false(tol(eq, "k", "v", "NoExecute"));
	assert_true(tol("[{'key':'k','value':'v'}]", "k", "v", "NoExecute")); /* "" is Equal */
	assert_true(tol("[{'key':'k','operator':'Exists'}]", "k", "anything", "NoSchedule"));
	assert_true(tol("[{'operator':'Exists'}]", "any", "thing", "NoExecute"));
	assert_true(tol("[{'operator':'Exists','effect':'NoExecute'}]", "a", "", "NoExecute"));
	assert_false(tol("[{'operator':'Exists','effect':'NoExecute'}]", "a", "", "NoSchedule"));
	assert_false(tol("[{'key':'k','operator':'Gt','value':'v'}]", "k", "v", "NoSchedule"));
	assert_false(tol("[]", "k", "v", "NoSchedule"));
	assert_false(sched_tolerates(NULL, &(struct sched_taint){ "k", "", "NoSchedule" }));
}

static void test_taint_effects(void **state)
{
	struct sched_node n[] = { N("a") };
	n[0].taints = J("[{'key':'evict','value':'now','effect':'NoExecute'},"
			"{'key':'soft','effect':'PreferNoSchedule'}]");
	struct sched_request r = R("{'tolerations':[{'key':'evict','operator':'Equal',"
				   "'value':'now','effect':'NoSchedule'}]}");
	expect_fail(&r, n, 1, NULL, 0,
		    "0/1 nodes are available: 1 node(s) had untolerated taint {evict: now}.");
	r = R("{'tolerations':[{'key':'evict','operator':'Exists','effect':'NoExecute'}]}");
	assert_string_equal(place(&r, n, 1, NULL, 0), "a"); /* PreferNoSchedule does not filter */
	n[0].not_ready = true;
	r = R("{'tolerations':[{'operator':'Exists'}]}"); /* tolerates everything */
	assert_string_equal(place(&r, n, 1, NULL, 0), "a");
}

/* ---- node affinity ---- */

static bool term(const char *t, const struct sched_node *n)
{
	return sched_node_term_matches(J(t), n);
}

#define EXPR(k, op, vals) "{'matchExpressions':[{'key':'" k "','operator':'" op "'" vals "}]}"

static void test_node_selector_operators(void **state)
{
	struct sched_node a = N("a");
	a.labels = J("{'zone':'z1','cores':'16','gpu':'true'}");
	assert_true(term(EXPR("zone", "In", ",'values':['z0','z1']"), &a));
	assert_false(term(EXPR("zone", "In", ",'values':['z2']"), &a));
	assert_true(term(EXPR("zone", "NotIn", ",'values':['z2']"), &a));
	assert_true(term(EXPR("missing", "NotIn", ",'values':['x']"), &a));
	assert_true(term(EXPR("gpu", "Exists", ""), &a));
	assert_false(term(EXPR("gpu", "DoesNotExist", ""), &a));
	assert_true(term(EXPR("missing", "DoesNotExist", ""), &a));
	assert_true(term(EXPR("cores", "Gt", ",'values':['8']"), &a));
	assert_false(term(EXPR("cores", "Gt", ",'values':['16']"), &a));
	assert_true(term(EXPR("cores", "Lt", ",'values':['100']"), &a)); /* numeric, not text */
	assert_false(term(EXPR("zone", "Gt", ",'values':['1']"), &a));  /* not an integer */
	assert_false(term(EXPR("missing", "Lt", ",'values':['1']"), &a));
	/* malformed requirements match nothing */
	assert_false(term(EXPR("cores", "Gt", ",'values':['x']"), &a));
	assert_false(term(EXPR("cores", "Gt", ",'values':['1','2']"), &a));
	assert_false(term(EXPR("zone", "In", ",'values':[]"), &a));
	assert_false(term(EXPR("gpu", "Exists", ",'values':['true']"), &a));
	assert_false(term(EXPR("zone", "Equals", ",'values':['z1']"), &a));
	assert_false(term("{}", &a));
	/* expressions AND */
	assert_false(term("{'matchExpressions':[{'key':'zone','operator':'In','values':['z1']},"
			  "{'key':'cores','operator':'Gt','values':['32']}]}", &a));
	/* matchFields: metadata.name only */
	assert_true(term("{'matchFields':[{'key':'metadata.name','operator':'In','values':['a']}]}", &a));
	assert_false(term("{'matchFields':[{'key':'metadata.name','operator':'NotIn',"
			  "'values':['a']}]}", &a));
	assert_false(term("{'matchFields':[{'key':'spec.x','operator':'In','values':['a']}]}", &a));
}

static void test_node_affinity_terms_or(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	n[0].labels = J("{'zone':'z1','cores':'4'}");
	n[1].labels = J("{'zone':'z3','cores':'64'}");
	n[2].labels = J("{'zone':'z2','cores':'4'}");
	const char *head = "{'affinity':{'nodeAffinity':{'requiredDuringSchedulingIgnoredDuring"
			   "Execution':{'nodeSelectorTerms':[";
	char *spec = xasprintf("%s%s,%s]}}}}", head, EXPR("zone", "In", ",'values':['z2']"),
			       EXPR("cores", "Gt", ",'values':['8']"));
	struct sched_request r = R(spec);
	free(spec);
	struct sched_node only_a[] = { n[0] };
	expect_fail(&r, only_a, 1, NULL, 0,
		    "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.");
	assert_string_equal(place(&r, &n[1], 1, NULL, 0), "b"); /* the second term */
	assert_string_equal(place(&r, &n[2], 1, NULL, 0), "c"); /* the first term */
}

/* ---- selectors ---- */

static bool sel(const char *s, const char *labels)
{
	return sched_selector_matches(J(s), sched_json_label, J(labels));
}

static void test_label_selector(void **state)
{
	assert_true(sel("{}", "{}"));
	assert_true(sched_selector_is_empty(J("{}")));
	assert_false(sched_selector_matches(NULL, sched_json_label, NULL));
	assert_false(sel("null", "{'a':'b'}"));
	assert_true(sel("{'matchLabels':{'app':'web'}}", "{'app':'web','x':'y'}"));
	assert_false(sel("{'matchLabels':{'app':'web'}}", "{'app':'db'}"));
	assert_false(sel("{'matchLabels':{'app':'web'}}", "{}"));
	const char *ex = "{'matchLabels':{'app':'web'},'matchExpressions':["
			 "{'key':'tier','operator':'In','values':['fe','be']},"
			 "{'key':'canary','operator':'DoesNotExist'}]}";
	assert_true(sel(ex, "{'app':'web','tier':'be'}"));
	assert_false(sel(ex, "{'app':'web','tier':'be','canary':'1'}"));
	assert_false(sel(ex, "{'app':'web'}"));
	assert_true(sel("{'matchExpressions':[{'key':'t','operator':'NotIn','values':['x']}]}", "{}"));
	assert_true(sel("{'matchExpressions':[{'key':'t','operator':'Exists'}]}", "{'t':''}"));
	/* malformed selects nothing; Gt is for node selectors only */
	assert_false(sel("{'matchExpressions':[{'key':'t','operator':'In','values':[]}]}", "{'t':'x'}"));
	assert_false(sel("{'matchExpressions':[{'key':'t','operator':'Gt','values':['1']}]}",
			 "{'t':'5'}"));
}

/* ---- spreading and affinity across replicas ---- */

static void test_anti_affinity_spreads_replicas(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	n[0].alloc_cpu = 16000; /* without the rule, every replica would go to a */
	struct sched_pod pods[8];
	size_t np = 0;
	struct sched_request r = R("{'containers':[{'resources':{'requests':{'cpu':'1'}}}],"
				   "'affinity':{'podAntiAffinity':{"
				   "'requiredDuringSchedulingIgnoredDuringExecution':[{"
				   "'labelSelector':{'matchLabels':{'app':'db'}},"
				   "'topologyKey':'kubernetes.io/hostname'}]}}}");
	r.labels = J("{'app':'db'}");
	place_replicas(&r, n, 3, pods, &np, 3);
	assert_int_equal(on_node(pods, np, "a"), 1);
	assert_int_equal(on_node(pods, np, "b"), 1);
	assert_int_equal(on_node(pods, np, "c"), 1);
	expect_fail(&r, n, 3, pods, np,
		    "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.");
	struct sched_request free_r = R("{'containers':[{'resources':{'requests':{'cpu':'1'}}}]}");
	assert_string_equal(place(&free_r, n, 3, pods, np), "a");
}

static void test_owner_spreading(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	const json_t *web = J("{'app':'web'}");
	struct sched_pod pods[16] = {
		{ "default", "a", web, "Deployment/default/other" }, /* another owner: ignored */
		{ "default", "a", web, "Deployment/default/other" },
		{ "default", "a", web, "Deployment/default/web" },
		{ "default", "a", web, "Deployment/default/web" },
	};
	size_t np = 4;
	struct sched_request r = R(POD_BARE);
	r.labels = web;
	r.owner = "Deployment/default/web";
	place_replicas(&r, n, 3, pods, &np, 4);
	assert_int_equal(on_node(pods, np, "a"), 4);
	assert_int_equal(on_node(pods, np, "b"), 2);
	assert_int_equal(on_node(pods, np, "c"), 2);
	/* with no owner, nothing spreads the bare pods: the tie goes to a */
	r.owner = NULL;
	assert_string_equal(place(&r, n, 3, pods, np), "a");
}

static void test_owner_spreading_from_scratch(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	struct sched_pod pods[16];
	size_t np = 0;
	struct sched_request r = R(POD_BARE);
	r.owner = "StatefulSet/default/db";
	place_replicas(&r, n, 3, pods, &np, 7);
	assert_int_equal(on_node(pods, np, "a"), 3);
	assert_int_equal(on_node(pods, np, "b"), 2);
	assert_int_equal(on_node(pods, np, "c"), 2);
}

static void test_deterministic_and_order_free(void **state)
{
	struct sched_node base[] = { N("a"), N("b"), N("c"), N("d"), N("e") };
	base[0].used_cpu = 1000;
	base[3].used_cpu = 2000;
	struct sched_pod pods[] = { { "default", "b", NULL, "Deployment/default/web" } };
	struct sched_request r = R(POD_BARE);
	r.owner = "Deployment/default/web";
	/* b and c, e tie on resources; b holds a replica; c wins c/e by name */
	assert_string_equal(place(&r, base, 5, pods, 1), "c");
	assert_string_equal(place(&r, base, 5, pods, 1), "c");
	static const size_t orders[][5] = { { 4, 3, 2, 1, 0 }, { 2, 4, 0, 3, 1 }, { 1, 0, 4, 2, 3 },
					    { 3, 1, 4, 0, 2 } };
	for (size_t k = 0; k < ARRAY_SIZE(orders); k++) {
		struct sched_node shuffled[5];
		for (size_t i = 0; i < 5; i++)
			shuffled[i] = base[orders[k][i]];
		assert_string_equal(place(&r, shuffled, 5, pods, 1), "c");
	}
}

/* ---- scores ---- */

static void scores_of(sched_score_fn *fn, const struct sched_request *r,
		      const struct sched_node *n, size_t nn, const struct sched_pod *pods,
		      size_t np, int64_t *out)
{
	struct sched_ctx c;
	size_t cand[8];
	for (size_t i = 0; i < nn; i++)
		cand[i] = i;
	sched_ctx_init(&c, r, n, nn, pods, np);
	fn(&c, cand, nn, out);
	sched_ctx_release(&c);
}

static void test_least_requested(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	n[0].used_cpu = 3000;
	n[1].used_cpu = 1000;
	n[2].used_cpu = 2000;
	struct sched_request r = R(POD_1CPU);
	int64_t s[3];
	scores_of(sched_score_least_allocated, &r, n, 3, NULL, 0, s);
	assert_int_equal(s[0], (0 + 87) / 2);
	assert_int_equal(s[1], (50 + 87) / 2);
	assert_int_equal(s[2], (25 + 87) / 2);
	assert_string_equal(place(&r, n, 3, NULL, 0), "b");
	/* a pod without requests counts as 100m and 200Mi here */
	r = R(POD_BARE);
	scores_of(sched_score_least_allocated, &r, n, 1, NULL, 0, s);
	assert_int_equal(s[0], (900 * 100 / 4000 + (8192 - 200) * 100 / 8192) / 2);
}

static void test_balanced_allocation(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	n[0].used_cpu = 3000;
	n[1].used_cpu = 1000;
	n[2].used_cpu = 2000;
	struct sched_request r = R(POD_1CPU);
	int64_t s[3];
	scores_of(sched_score_balanced, &r, n, 3, NULL, 0, s);
	assert_int_equal(s[0], 56); /* |1 - 0.125| / 2 */
	assert_int_equal(s[1], 81); /* |0.5 - 0.125| / 2 */
	assert_int_equal(s[2], 68);
	r = R(POD_BARE); /* best-effort pods are not scored */
	scores_of(sched_score_balanced, &r, n, 3, NULL, 0, s);
	assert_int_equal(s[0] + s[1] + s[2], 0);
}

static void test_prefer_no_schedule(void **state)
{
	struct sched_node n[] = { N("a"), N("b") };
	n[0].alloc_cpu = 64000; /* a is far emptier... */
	n[0].taints = J("[{'key':'spot','value':'yes','effect':'PreferNoSchedule'}]");
	struct sched_request r = R(POD_1CPU);
	int64_t s[2];
	scores_of(sched_score_taints, &r, n, 2, NULL, 0, s);
	assert_int_equal(s[0], 0);
	assert_int_equal(s[1], 100);
	assert_string_equal(place(&r, n, 2, NULL, 0), "b"); /* ...but tainted */
	r = R("{'containers':[{'resources':{'requests':{'cpu':'1'}}}],"
	      "'tolerations':[{'key':'spot','operator':'Exists'}]}");
	assert_string_equal(place(&r, n, 2, NULL, 0), "a");
}

static void test_preferred_node_affinity(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	n[0].labels = J("{'zone':'z1'}");
	n[1].labels = J("{'gpu':'yes'}");
	struct sched_request r = R("{'affinity':{'nodeAffinity':{"
				   "'preferredDuringSchedulingIgnoredDuringExecution':["
				   "{'weight':1,'preference':" EXPR("zone", "In", ",'values':['z1']") "},"
				   "{'weight':50,'preference':" EXPR("gpu", "Exists", "") "}]}}}");
	int64_t s[3];
	scores_of(sched_score_node_affinity, &r, n, 3, NULL, 0, s);
	assert_int_equal(s[0], 2);
	assert_int_equal(s[1], 100);
	assert_int_equal(s[2], 0);
	assert_string_equal(place(&r, n, 3, NULL, 0), "b");
}

static void test_preferred_pod_affinity(void **state)
{
	struct sched_node n[] = { N("a"), N("b"), N("c") };
	struct sched_pod pods[] = { { "default", "b", J("{'app':'cache'}"), NULL } };
	const char *fmt = "{'affinity':{'%s':{'preferredDuringSchedulingIgnoredDuringExecution':[{"
			  "'weight':100,'podAffinityTerm':{'labelSelector':{'matchLabels':"
			  "{'app':'cache'}},'topologyKey':'kubernetes.io/hostname'}}]}}}";
	char *spec = xasprintf(fmt, "podAffinity");
	struct sched_request r = R(spec);
	free(spec);
	assert_string_equal(place(&r, n, 3, pods, 1), "b");
	spec = xasprintf(fmt, "podAntiAffinity");
	r = R(spec);
	free(spec);
	int64_t s[3];
	scores_of(sched_score_pod_affinity, &r, n, 3, pods, 1, s);
	assert_int_equal(s[0], 100);
	assert_int_equal(s[1], 0);
	assert_int_equal(s[2], 100);
	pods[0].node = "a";
	assert_string_equal(place(&r, n, 3, pods, 1), "b");
}

static void test_spread_schedule_anyway(void **state)
{
	struct sched_node n[] = { N("a1"), N("a2"), N("b1"), N("x") };
	n[0].labels = n[1].labels = J("{'zone':'a'}");
	n[2].labels = J("{'zone':'b'}");
	n[2].used_cpu = 3000; /* fuller, still preferred for spreading */
	const json_t *web = J("{'app':'web'}");
	struct sched_pod pods[] = { { "default", "a1", web, NULL }, { "default", "a2", web, NULL } };
	struct sched_request r = R("{'topologySpreadConstraints':[{'maxSkew':1,"
				   "'topologyKey':'zone','whenUnsatisfiable':'ScheduleAnyway',"
				   "'labelSelector':{'matchLabels':{'app':'web'}}}]}");
	r.labels = web;
	int64_t s[4];
	scores_of(sched_score_spread, &r, n, 4, pods, 2, s);
	assert_int_equal(s[0], 0);   /* 2 pods * ln(4) rounds to 3: the maximum */
	assert_int_equal(s[1], 0);
	assert_int_equal(s[2], 100);
	assert_int_equal(s[3], 0);   /* no zone label: not scored */
	assert_string_equal(place(&r, n, 4, pods, 2), "b1");
}

static void test_spread_label_keys_and_policies(void **state)
{
	struct sched_node n[] = { N("a1"), N("b1"), N("c1") };
	n[0].labels = J("{'zone':'a'}");
	n[1].labels = J("{'zone':'b'}");
	n[2].labels = J("{'zone':'c'}");
	n[2].taints = J("[{'key':'x','value':'y','effect':'NoSchedule'}]");
	const json_t *old = J("{'app':'web','hash':'old'}"), *cur = J("{'app':'web','hash':'new'}");
	struct sched_pod pods[] = { { "default", "a1", old, NULL }, { "default", "a1", old, NULL },
				    { "default", "b1", cur, NULL }, { "default", "a1", cur, NULL } };
	const char *fmt = "{'topologySpreadConstraints':[{'maxSkew':1,'topologyKey':'zone',"
			  "'whenUnsatisfiable':'DoNotSchedule','labelSelector':{'matchLabels':"
			  "{'app':'web'}},'matchLabelKeys':['hash']%s}]}";
	char *spec = xasprintf(fmt, "");
	struct sched_request r = R(spec);
	free(spec);
	r.labels = cur;
	/* only this revision's pods count: a 0, b 1 (c, tainted, still a domain) */
	assert_string_equal(place(&r, n, 3, pods, 3), "a1");
	/* a 1, b 1, c 0: the tainted zone holds the minimum down */
	expect_fail(&r, n, 3, pods, 4,
		    "0/3 nodes are available: 1 node(s) had untolerated taint {x: y}, "
		    "2 node(s) didn't match pod topology spread constraints.");
	spec = xasprintf(fmt, ",'nodeTaintsPolicy':'Honor'");
	r = R(spec);
	free(spec);
	r.labels = cur;
	assert_string_equal(place(&r, n, 3, pods, 4), "a1");
}

static void test_owner_spreading_zones(void **state)
{
	struct sched_node n[] = { N("a1"), N("a2"), N("b1") };
	n[0].labels = n[1].labels = J("{'topology.kubernetes.io/zone':'a'}");
	n[2].labels = J("{'topology.kubernetes.io/zone':'b'}");
	struct sched_pod pods[4];
	size_t np = 0;
	struct sched_request r = R(POD_BARE);
	r.owner = "Deployment/default/web";
	place_replicas(&r, n, 3, pods, &np, 2);
	assert_string_equal(pods[0].node, "a1");
	assert_string_equal(pods[1].node, "b1"); /* the other zone, not a2 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
		T(test_requests_sum_and_init),
		T(test_requests_sidecar_overhead_limits),
		T(test_requests_none_and_nonzero),
		T(test_init_container_does_not_fit),
		T(test_filter_resources),
		T(test_filter_unschedulable),
		T(test_filter_node_name),
		T(test_filter_taint_and_not_ready),
		T(test_filter_node_affinity),
		T(test_filter_ports),
		T(test_host_ports_accounted),
		T(test_filter_spread),
		T(test_filter_pod_affinity),
		T(test_filter_pod_anti_affinity),
		T(test_fit_message_mixed),
		T(test_fit_message_sorting),
		T(test_tolerations),
		T(test_taint_effects),
		T(test_node_selector_operators),
		T(test_node_affinity_terms_or),
		T(test_label_selector),
		T(test_anti_affinity_spreads_replicas),
		T(test_owner_spreading),
		T(test_owner_spreading_from_scratch),
		T(test_deterministic_and_order_free),
		T(test_least_requested),
		T(test_balanced_allocation),
		T(test_prefer_no_schedule),
		T(test_preferred_node_affinity),
		T(test_preferred_pod_affinity),
		T(test_spread_schedule_anyway),
		T(test_spread_label_keys_and_policies),
		T(test_owner_spreading_zones),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
