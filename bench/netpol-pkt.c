/* netpol-pkt: per-new-connection cost of the nat hooks, with real packets.
 *
 *   netpol-pkt SERVICES PACKETS BUDGET_MS FIRST [NODE_NETNS]
 *
 * Run inside the "pod" network namespace of bench/bench-netpol.sh (10.254.0.2,
 * default route: a veth to the node namespace, where the rules are loaded, and
 * from there a veth to a sink namespace that drops everything). Sends UDP
 * datagrams from a raw socket (IP_HDRINCL, UDP checksum 0: none) to ClusterIP
 * 10.96.0.0 + r:80, r uniform over SERVICES from a generator seeded by FIRST.
 * The c-th datagram comes from 10.254.1.0 + c / 60000, port 1024 + c % 60000,
 * c counting from FIRST: the caller gives each run against the same namespace
 * its own range, so every datagram is the first packet of a new connection — a
 * new conntrack entry, the nat prerouting chain (the Service lookup, DNAT),
 * forward, nat postrouting. Two runs with the same SERVICES and FIRST send the
 * same datagrams in the same order: the bench's floors, with no Service rule,
 * see the traffic the rules see.
 *
 * Nothing is queued: veth's transmit puts the packet on this CPU's backlog and
 * the softirq that processes it (node namespace, then sink) runs before sendto
 * returns, on this thread; the kernel has no IRQ time accounting, so that time
 * is this thread's CPU time, which other processes' time slices do not inflate.
 * Sends PACKETS datagrams, or stops after BUDGET_MS of CPU time; the first 1,000
 * (ARP, caches) are not timed.
 *
 * With NODE_NETNS (a name in /run/netns), the conntrack table of that namespace
 * is flushed before the first datagram and after the last (a ctnetlink socket
 * opened there), so every run meets the same table: its own entries only, in a
 * global conntrack hash that holds no other run's. Without it, entries pile up
 * (the unreplied UDP timeout is 30 s) and each run pays for all the runs before.
 *
 * Prints: "ns_per_packet CPU wall WALL sent N" (CPU time of this thread per
 * datagram; the wall clock for reference; N counts the untimed ones too).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/lib.h"

#define SVC_BASE 0x0a600000u  /* 10.96.0.0 */
#define SRC_BASE 0x0afe0100u  /* 10.254.1.0 */
#define WARMUP 1000

static double clk(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static int fd;
static unsigned long counter;
static long services;

static void send_one(void)
{
	struct {
		struct iphdr ip;
		struct udphdr udp;
		char payload[16];
	} pkt;
	memset(&pkt, 0, sizeof(pkt));
	pkt.ip.version = 4;
	pkt.ip.ihl = 5;
	pkt.ip.ttl = 64;
	pkt.ip.protocol = IPPROTO_UDP;
	pkt.ip.tot_len = htons(sizeof(pkt));
	pkt.ip.saddr = htonl(SRC_BASE + 1 + (uint32_t)(counter / 60000));
	pkt.ip.daddr = htonl(SVC_BASE + next_rand() % (uint32_t)services);
	pkt.udp.source = htons((uint16_t)(1024 + counter % 60000));
	pkt.udp.dest = htons(80);
	pkt.udp.len = htons(sizeof(pkt.udp) + sizeof(pkt.payload));
	counter++;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = pkt.ip.daddr };
	if (sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		perror("netpol-pkt: sendto");
		exit(2);
	}
}

/* A ctnetlink socket in the namespace /run/netns/NAME; this thread returns to its own. */
static int ct_socket(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int there = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || there < 0 || setns(there, CLONE_NEWNET) < 0) {
		perror("netpol-pkt: the node's network namespace");
		exit(2);
	}
	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (nl < 0 || setns(self, CLONE_NEWNET) < 0) {
		perror("netpol-pkt: ctnetlink");
		exit(2);
	}
	close(self);
	close(there);
	return nl;
}

/* IPCTNL_MSG_CT_DELETE without attributes: every IPv4 entry of the namespace. */
static void ct_flush(int nl)
{
	struct {
		struct nlmsghdr nh;
		struct nfgenmsg nf;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, .nlmsg_seq = 1 },
		.nf = { .nfgen_family = AF_INET, .version = NFNETLINK_V0 },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	char buf[4096];
	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0 ||
	    recv(nl, buf, sizeof(buf), 0) < (ssize_t)sizeof(struct nlmsghdr)) {
		perror("netpol-pkt: conntrack flush");
		exit(2);
	}
	const struct nlmsghdr *nh = (const struct nlmsghdr *)buf;
	const struct nlmsgerr *err = NLMSG_DATA(nh);
	if (nh->nlmsg_type != NLMSG_ERROR || err->error != 0) {
		fprintf(stderr, "netpol-pkt: conntrack flush: error %d\n",
			nh->nlmsg_type == NLMSG_ERROR ? err->error : 0);
		exit(2);
	}
}

static long arg(const char *s, long min, long max)
{
	int64_t v;
	if (parse_i64(s, min, max, &v) < 0) {
		fprintf(stderr, "netpol-pkt: bad argument %s\n", s);
		exit(2);
	}
	return (long)v;
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: netpol-pkt SERVICES PACKETS BUDGET_MS FIRST [NODE_NETNS]\n");
		return 2;
	}
	services = arg(argv[1], 1, 1 << 20);
	long packets = arg(argv[2], 1, 1000000), budget = arg(argv[3], 1, 60000);
	counter = (unsigned long)arg(argv[4], 0, 10000000);
	rng ^= counter * 0x2545f4914f6cdd1dull;
	int nl = argc == 6 ? ct_socket(argv[5]) : -1;
	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0) {
		perror("netpol-pkt: socket");
		return 2;
	}
	if (nl >= 0)
		ct_flush(nl);
	for (int i = 0; i < WARMUP; i++)
		send_one();
	usleep(50000);
	double c0 = clk(CLOCK_THREAD_CPUTIME_ID), w0 = clk(CLOCK_MONOTONIC);
	long n = 0;
	while (n < packets) {
		send_one();
		n++;
		if ((n & 63) == 0 && clk(CLOCK_THREAD_CPUTIME_ID) - c0 > (double)budget * 1e6)
			break;
	}
	double cpu = (clk(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)n;
	double wall = (clk(CLOCK_MONOTONIC) - w0) / (double)n;
	if (nl >= 0)
		ct_flush(nl);
	printf("ns_per_packet %.0f wall %.0f sent %ld\n", cpu, wall, n + WARMUP);
	return 0;
}
