/* netpol-gen: inputs for bench/bench-netpol.sh, written on stdout.
 *
 *   netpol-gen services N EPS [OPTIONS]   compiler input: N ClusterIP Services, one port
 *                                         (80 -> 8080), EPS ready endpoints each
 *   netpol-gen policies G P [OPTIONS]     compiler input: G local pods, each selected by
 *                                         its own NetworkPolicy (G policy groups), each
 *                                         allowing ingress on TCP 8080 from P peer pods
 *   netpol-gen linear N [OPTIONS]         an nft script: the iptables-style baseline, one
 *                                         `ip daddr X dport 80 dnat to E:8080` rule per
 *                                         Service in one nat prerouting chain (N = 0: one
 *                                         rule that matches nothing, so that conntrack and
 *                                         NAT run as with any ruleset: the floor)
 * OPTIONS
 *   --table NAME        table name (default gitops)
 *   --udp               the Services' port is UDP (the packet test sends UDP)
 *   --add-endpoint K    Service K gets one more endpoint (services only)
 *   --drop-endpoint K   Service K loses its last endpoint (services only)
 *
 * Addresses: ClusterIPs 10.96.0.0 + i (in 10.96.0.0/12), endpoints 10.128.0.0 +
 * i*EPS + k (clusterCIDR 10.128.0.0/9), an added endpoint 10.200.0.0 + K; policy
 * groups' pods 10.130.0.0 + g, peer pods 10.140.0.0 + 2j (never adjacent, so the
 * compiler cannot merge them into ranges). Output is deterministic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib.h"

static void die(const char *msg)
{
	fprintf(stderr, "netpol-gen: %s\n", msg);
	exit(2);
}

static void ip(FILE *f, uint32_t a)
{
	fprintf(f, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static long num(const char *s, long max)
{
	int64_t v;
	if (!s || parse_i64(s, 0, max, &v) < 0)
		die("bad number");
	return (long)v;
}

#define SVC_BASE 0x0a600000u  /* 10.96.0.0 */
#define EP_BASE  0x0a800000u  /* 10.128.0.0 */
#define ADD_BASE 0x0ac80000u  /* 10.200.0.0 */

static void services(FILE *f, const char *table, long n, long eps, bool udp, long add, long drop)
{
	fprintf(f, "{\"table\":\"%s\",\"nodeIPs\":[\"192.168.1.10\"],\"clusterCIDR\":\"10.128.0.0/9\","
		   "\"services\":[\n", table);
	for (long i = 0; i < n; i++) {
		fprintf(f, "%s{\"namespace\":\"ns-%ld\",\"name\":\"svc-%ld\",\"clusterIP\":\"",
			i ? ",\n" : "", i % 50, i);
		ip(f, SVC_BASE + (uint32_t)i);
		fprintf(f, "\",\"ports\":[{\"name\":\"http\",\"protocol\":\"%s\",\"port\":80,"
			   "\"targetPort\":8080}],\"endpoints\":[", udp ? "UDP" : "TCP");
		long m = eps - (i == drop ? 1 : 0);
		for (long k = 0; k < m; k++) {
			fputs(k ? ",{\"ip\":\"" : "{\"ip\":\"", f);
			ip(f, EP_BASE + (uint32_t)(i * eps + k));
			fprintf(f, "\",\"node\":\"node-%ld\",\"local\":false,\"ready\":true,"
				   "\"ports\":{\"http\":8080}}", (i + k) % 20);
		}
		if (i == add) {
			fputs(m ? ",{\"ip\":\"" : "{\"ip\":\"", f);
			ip(f, ADD_BASE + (uint32_t)i);
			fputs("\",\"node\":\"node-new\",\"local\":false,\"ready\":true,"
			      "\"ports\":{\"http\":8080}}", f);
		}
		fputs("]}", f);
	}
	fputs("]}\n", f);
}

#define GROUP_BASE 0x0a820000u  /* 10.130.0.0 */
#define PEER_BASE  0x0a8c0000u  /* 10.140.0.0 */
#define SHARDS 10

/* Peer pod j is in shard j % SHARDS; group g allows shard g % SHARDS: P peers each. */
static void policies(FILE *f, const char *table, long groups, long peers)
{
	fprintf(f, "{\"table\":\"%s\",\"nodeIPs\":[\"192.168.1.10\"],\"clusterCIDR\":\"10.128.0.0/9\","
		   "\"namespaces\":[{\"name\":\"apps\"}],\"pods\":[\n", table);
	for (long g = 0; g < groups; g++) {
		fprintf(f, "%s{\"namespace\":\"apps\",\"name\":\"app-%ld\",\"ip\":\"", g ? ",\n" : "", g);
		ip(f, GROUP_BASE + (uint32_t)g);
		fprintf(f, "\",\"local\":true,\"labels\":{\"app\":\"g%ld\"},"
			   "\"ports\":[{\"name\":\"http\",\"containerPort\":8080}]}", g);
	}
	for (long j = 0; j < peers * SHARDS; j++) {
		fprintf(f, ",\n{\"namespace\":\"apps\",\"name\":\"peer-%ld\",\"ip\":\"", j);
		ip(f, PEER_BASE + 2 * (uint32_t)j);
		fprintf(f, "\",\"local\":false,\"labels\":{\"shard\":\"s%ld\"}}", j % SHARDS);
	}
	fputs("],\n\"policies\":[\n", f);
	for (long g = 0; g < groups; g++)
		fprintf(f, "%s{\"namespace\":\"apps\",\"name\":\"allow-%ld\","
			   "\"podSelector\":{\"matchLabels\":{\"app\":\"g%ld\"}},\"policyTypes\":[\"Ingress\"],"
			   "\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"shard\":\"s%ld\"}}}],"
			   "\"ports\":[{\"protocol\":\"TCP\",\"port\":8080}]}]}",
			g ? ",\n" : "", g, g, g % SHARDS);
	fputs("]}\n", f);
}

static void linear(FILE *f, const char *table, long n, bool udp)
{
	fprintf(f, "add table ip %s\ndelete table ip %s\ntable ip %s {\n"
		   "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
		table, table, table);
	if (n == 0)   /* the nat expression is what turns conntrack and NAT on */
		fputs("\t\tip daddr 10.95.255.255 udp dport 80 dnat to 10.95.255.254:8080\n", f);
	for (long i = 0; i < n; i++) {
		fputs("\t\tip daddr ", f);
		ip(f, SVC_BASE + (uint32_t)i);
		fprintf(f, " %s dport 80 dnat to ", udp ? "udp" : "tcp");
		ip(f, EP_BASE + (uint32_t)(2 * i));
		fputs(":8080\n", f);
	}
	fputs("\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
	      "\t}\n}\n", f);
}

int main(int argc, char **argv)
{
	const char *table = "gitops";
	bool udp = false;
	long add = -1, drop = -1;
	if (argc < 3)
		die("usage: netpol-gen services N EPS | policies G P | linear N [--table T] [--udp] "
		    "[--add-endpoint K] [--drop-endpoint K]");
	const char *what = argv[1];
	int first_opt = !strcmp(what, "linear") ? 3 : 4;
	if (argc < first_opt)
		die("missing arguments");
	for (int i = first_opt; i < argc; i++) {
		if (!strcmp(argv[i], "--table") && i + 1 < argc)
			table = argv[++i];
		else if (!strcmp(argv[i], "--udp"))
			udp = true;
		else if (!strcmp(argv[i], "--add-endpoint") && i + 1 < argc)
			add = num(argv[++i], 10000000);
		else if (!strcmp(argv[i], "--drop-endpoint") && i + 1 < argc)
			drop = num(argv[++i], 10000000);
		else
			die("unknown option");
	}
	if (!strcmp(what, "services"))
		services(stdout, table, num(argv[2], 1000000), num(argv[3], 1000), udp, add, drop);
	else if (!strcmp(what, "policies"))
		policies(stdout, table, num(argv[2], 100000), num(argv[3], 100000));
	else if (!strcmp(what, "linear"))
		linear(stdout, table, num(argv[2], 1000000), udp);
	else
		die("unknown kind");
	return fflush(stdout) == 0 ? 0 : 2;
}
