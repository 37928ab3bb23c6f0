/* tests/netpol/scale.h: included by tests/unit/test_netpol.c — 10,000 Services x 2
 * endpoints compiled, then (root) checked and loaded cold by gitops-nft in a
 * private network namespace. The target for the cold load is 2 s;
 * NETPOL_SCALE_LIMIT (seconds, default 8) is where the test fails. Then the
 * same for NetworkPolicy: 5,000 pods (200 on this node), 150 policies. */

#define SCALE_SERVICES 10000
#define SCALE_TARGET_SECS 2.0

static json_t *scale_ip(uint32_t ip)
{
	char *s = xasprintf("%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
	json_t *j = json_string(s);
	free(s);
	return j;
}

static json_t *scale_input(void)
{
	json_t *svcs = json_array();
	for (uint32_t i = 0; i < SCALE_SERVICES; i++) {
		char *ns = xasprintf("ns-%u", i % 50), *name = xasprintf("svc-%u", i);
		json_t *eps = json_array();
		for (uint32_t k = 0; k < 2; k++)
			json_array_append_new(eps, json_pack("{s:o, s:b, s:b, s:{s:i}}",
				"ip", scale_ip(0x0a640000u + 2 * i + k), "local", k == 0,
				"ready", 1, "ports", "http", 8080));
		json_array_append_new(svcs, json_pack("{s:s, s:s, s:o, s:[{s:s, s:s, s:i, s:i}], s:o}",
			"namespace", ns, "name", name, "clusterIP", scale_ip(0x0a600000u + i),
			"ports", "name", "http", "protocol", "TCP", "port", 80, "targetPort", 8080,
			"endpoints", eps));
		free(ns);
		free(name);
	}
	return json_pack("{s:[s], s:s, s:o}", "nodeIPs", "192.168.1.10",
			 "clusterCIDR", "10.100.0.0/16", "services", svcs);
}

static double scale_limit(void)
{
	const char *s = getenv("NETPOL_SCALE_LIMIT");
	int64_t v;
	return s && parse_i64(s, 1, 3600, &v) == 0 ? (double)v : 8.0;
}

static void scale_apply(const char *what, const char *text, bool check)
{
	struct sbuf out = SBUF_INIT;
	double secs;
	int st = run_applier(text, check, &secs, &out);
	if (st == -2) {
		printf("# netpol scale: no unshare(1), cold load not measured\n");
		sb_release(&out);
		return;
	}
	if (st != 0)
		fprintf(stderr, "gitops-nft%s exited %d:\n%.2000s\n", check ? " --check" : "", st, out.buf);
	assert_int_equal(st, 0);
	printf("# netpol scale: %s: gitops-nft %s %.3f s (target %.1f s)%s\n", what,
	       check ? "--check" : "cold load (netns)", secs, SCALE_TARGET_SECS,
	       secs > SCALE_TARGET_SECS ? "  OVER TARGET" : "");
	assert_true(secs < scale_limit());
	sb_release(&out);
}

static void test_scale(void **state)
{
	json_t *in = scale_input();
	double t0 = now();
	char *text = compile_renamed(in);
	double t1 = now();
	printf("# netpol scale: %d services x 2 endpoints: compile %.3f s, %zu bytes\n",
	       SCALE_SERVICES, t1 - t0, strlen(text));
	assert_true(t1 - t0 < scale_limit());
	assert_non_null(strstr(text, "\t\t\t10.96.0.0 . 80 . 0 : 10.100.0.0 . 8080,\n"));
	assert_non_null(strstr(text, "\t\t\t10.96.0.0 . tcp . 80 : goto lb-tcp-2,\n"));
	if (can_apply()) {
		scale_apply("services", text, true);
		scale_apply("services", text, false);
	} else
		printf("# netpol scale: not root or no %s: load not measured\n", applier());
	free(text);
	json_decref(in);
}

#define SCALE_NS 50
#define SCALE_PODS_PER_NS 100

static json_t *scale_policies_input(void)
{
	json_t *pods = json_array(), *nss = json_array(), *pols = json_array();
	for (uint32_t n = 0; n < SCALE_NS; n++) {
		char *ns = xasprintf("team-%u", n), *team = xasprintf("t%u", n % 5);
		json_array_append_new(nss, json_pack("{s:s, s:{s:s}}", "name", ns, "labels", "team", team));
		for (uint32_t p = 0; p < SCALE_PODS_PER_NS; p++) {
			uint32_t i = n * SCALE_PODS_PER_NS + p;
			char *name = xasprintf("pod-%u", p), *app = xasprintf("app-%u", p % 10);
			json_array_append_new(pods, json_pack("{s:s, s:s, s:o, s:b, s:{s:s}, s:[{s:s, s:i}]}",
				"namespace", ns, "name", name, "ip", scale_ip(0x0af40000u + i), "local", i % 25 == 0,
				"labels", "app", app, "ports", "name", "http", "containerPort", 8080 + p % 3));
			free(name);
			free(app);
		}
		json_array_append_new(pols, json_pack("{s:s, s:s, s:{}, s:[s, s]}", "namespace", ns,
			"name", "default-deny", "podSelector", "policyTypes", "Ingress", "Egress"));
		json_array_append_new(pols, json_pack(
			"{s:s, s:s, s:{s:{s:s}}, s:[s], s:[{s:[{s:{s:{s:s}}}], s:[{s:s}, {s:i, s:i}]}]}",
			"namespace", ns, "name", "same-app", "podSelector", "matchLabels", "app", "app-1",
			"policyTypes", "Ingress", "ingress", "from", "podSelector", "matchLabels", "app", "app-2",
			"ports", "port", "http", "port", 9000, "endPort", 9100));
		json_array_append_new(pols, json_pack(
			"{s:s, s:s, s:{}, s:[s], s:[{s:[{s:{s:{s:s}}}], s:[{s:s, s:i}, {s:s, s:i}]}]}",
			"namespace", ns, "name", "team-and-dns", "podSelector", "policyTypes", "Egress",
			"egress", "to", "namespaceSelector", "matchLabels", "team", team,
			"ports", "protocol", "UDP", "port", 53, "protocol", "TCP", "port", 8080));
		free(ns);
		free(team);
	}
	return json_pack("{s:[s], s:o, s:o, s:o}", "nodeIPs", "192.168.1.10", "namespaces", nss,
			 "pods", pods, "policies", pols);
}

static void test_scale_policies(void **state)
{
	json_t *in = scale_policies_input();
	double t0 = now();
	char *text = compile_renamed(in);
	double t1 = now();
	printf("# netpol scale: %d pods, %d policies: compile %.3f s, %zu bytes\n",
	       SCALE_NS * SCALE_PODS_PER_NS, 3 * SCALE_NS, t1 - t0, strlen(text));
	assert_true(t1 - t0 < scale_limit());
	if (can_apply()) {
		scale_apply("policies", text, true);
		scale_apply("policies", text, false);
	}
	free(text);
	json_decref(in);
}
