/* dns.c: the cluster DNS of a node — one dnsmasq at network.dnsServer answering the
 * cluster's names from a hosts file made from network.json (NodeLocal DNSCache's
 * place, without a cluster-wide DNS behind it: every node knows every name). */
#include "runtime/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files under STATE/dns (0755, files 0644: dnsmasq reads them again on SIGHUP after
 * it has dropped to nobody, so STATE gets o+x — search, not listing):
 *   hosts         "IP\tNAME" lines (--addn-hosts)
 *   servers       "server=/DOMAIN/" (answer the cluster domain locally, never
 *                 forward it) and "server=IP" per nameserver of the node's
 *                 /etc/resolv.conf (--servers-file)
 *   address       the address dnsmasq was started on; another one restarts it
 *   dnsmasq.pid   written by dnsmasq; the process counts as ours only while its
 *                 command line names this pid file (pid reuse, stale files)
 *   lock          serializes dns_update (node apply and shims call it)
 *
 * The address lives on a dummy link DNS_LINK; a kernel without the dummy driver gets
 * it on lo instead (label lo:DNS_LINK). Either way it is a local address of the
 * node, so a pod's packets, routed to the node by its default route, are delivered
 * locally (the reverse path of a pod's address is its veth: rp_filter passes), and
 * they never cross the forward hook where NetworkPolicy egress is enforced. */

#define DNS_MAX_FILE (64u << 20)
#define DNS_LOCK_TIMEOUT_S 30
#define DNS_STOP_WAIT_MS 3000
#define DNS_CHILD_TIMEOUT_MS 10000

struct dns_paths {
	char *dir, *hosts, *servers, *address, *pid, *lock;
};

static void dns_paths_init(struct dns_paths *p, const char *state)
{
	p->dir = xasprintf("%s/dns", state);
	p->hosts = xasprintf("%s/hosts", p->dir);
	p->servers = xasprintf("%s/servers", p->dir);
	p->address = xasprintf("%s/address", p->dir);
	p->pid = xasprintf("%s/dnsmasq.pid", p->dir);
	p->lock = xasprintf("%s/lock", p->dir);
}

static void dns_paths_release(struct dns_paths *p)
{
	free(p->dir);
	free(p->hosts);
	free(p->servers);
	free(p->address);
	free(p->pid);
	free(p->lock);
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- the names --------------------------------------------------------------- */

/* A DNS label as Kubernetes names are: [a-z0-9-]{1,63}, no '-' at either end. */
static bool label_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return false;
	return true;
}

/* Labels separated by single dots ("cluster.local"). */
static bool domain_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 200)
		return false;
	char *copy = xstrdup(s), *save = NULL;
	bool ok = s[strlen(s) - 1] != '.' && s[0] != '.' && !strstr(s, "..");
	for (char *t = strtok_r(copy, ".", &save); t && ok; t = strtok_r(NULL, ".", &save))
		ok = label_ok(t);
	free(copy);
	return ok;
}

static bool ip_ok(const char *s)
{
	unsigned char buf[16];
	return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

/* Headless: no ClusterIP ("None", "" or absent), and not ExternalName. */
static bool headless(const json_t *svc)
{
	const char *ip = jstr(svc, "clusterIP"), *type = jstr(svc, "type");
	return !(type && !strcmp(type, "ExternalName")) && (!ip || !*ip || !strcmp(ip, "None"));
}

/* The pod an endpoint points at (by uid, else by IP), or NULL. */
static const json_t *endpoint_pod(const json_t *net, const json_t *ep)
{
	const char *uid = jstr(ep, "uid"), *ip = jstr(ep, "ip");
	size_t i;
	const json_t *pod;
	json_array_foreach(json_object_get(net, "pods"), i, pod) {
		const char *puid = jstr(pod, "uid"), *pip = jstr(pod, "ip");
		if ((uid && puid && !strcmp(uid, puid)) || (!uid && ip && pip && !strcmp(ip, pip)))
			return pod;
	}
	return NULL;
}

/* An endpoint's own name under a headless Service: its "hostname", else that of its
 * pod when the pod's subdomain is this Service (the endpoints controller's rule). */
static const char *endpoint_hostname(const json_t *net, const json_t *svc, const json_t *ep)
{
	const char *h = jstr(ep, "hostname");
	if (h && *h)
		return h;
	const json_t *pod = endpoint_pod(net, ep);
	const char *sub = jstr(pod, "subdomain");
	if (!pod || !sub || strcmp(sub, jstr(svc, "name")) ||
	    strcmp(jstr(pod, "namespace") ? jstr(pod, "namespace") : "", jstr(svc, "namespace")))
		return NULL;
	return jstr(pod, "hostname");
}

static void headless_names(const json_t *net, const json_t *svc, const char *fqdn, struct strvec *out)
{
	bool all = json_is_true(json_object_get(svc, "publishNotReadyAddresses"));
	size_t i;
	const json_t *ep;
	json_array_foreach(json_object_get(svc, "endpoints"), i, ep) {
		const char *ip = jstr(ep, "ip"), *host = endpoint_hostname(net, svc, ep);
		if (!ip_ok(ip) || (!all && json_is_false(json_object_get(ep, "ready"))))
			continue;
		strvec_pushf(out, "%s\t%s", ip, fqdn);
		if (label_ok(host))
			strvec_pushf(out, "%s\t%s.%s", ip, host, fqdn);
	}
}

/* A-B-C-D.NS.pod.DOMAIN → A.B.C.D for every pod with an IP, as CoreDNS answers them
 * ("pods verified": only addresses a pod of that namespace has). */
static void pod_names(const json_t *net, const char *domain, struct strvec *out)
{
	size_t i;
	const json_t *pod;
	json_array_foreach(json_object_get(net, "pods"), i, pod) {
		const char *ip = jstr(pod, "ip"), *ns = jstr(pod, "namespace");
		if (!ip_ok(ip) || !label_ok(ns))
			continue;
		char *dashed = xstrdup(ip);
		for (char *c = dashed; *c; c++)
			if (*c == '.' || *c == ':')
				*c = '-';
		strvec_pushf(out, "%s\t%s.%s.pod.%s", ip, dashed, ns, domain);
		free(dashed);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The hosts file: SVC.NS.svc.DOMAIN → ClusterIP; a headless Service's name → each of
 * its ready endpoints (all with publishNotReadyAddresses), HOSTNAME.SVC.NS.svc.DOMAIN
 * → an endpoint whose pod has that hostname and SVC as subdomain; pod_names. Sorted, unique:
 * the same network gives the same bytes. Names that are not DNS labels are skipped
 * (nothing from the input can start a line of its own). */
static void hosts_render(const json_t *net, const char *domain, struct sbuf *out)
{
	struct strvec lines = STRVEC_INIT;
	size_t i;
	const json_t *svc;
	json_array_foreach(json_object_get(net, "services"), i, svc) {
		const char *ns = jstr(svc, "namespace"), *name = jstr(svc, "name");
		const char *ip = jstr(svc, "clusterIP"), *type = jstr(svc, "type");
		if (!label_ok(ns) || !label_ok(name) || (type && !strcmp(type, "ExternalName")))
			continue;
		char *fqdn = xasprintf("%s.%s.svc.%s", name, ns, domain);
		if (headless(svc))
			headless_names(net, svc, fqdn, &lines);
		else if (ip_ok(ip))
			strvec_pushf(&lines, "%s\t%s", ip, fqdn);
		free(fqdn);
	}
	pod_names(net, domain, &lines);
	if (lines.n)
		qsort(lines.v, lines.n, sizeof(*lines.v), cmp_str);
	sb_addf(out, "# cluster DNS names, made by gitops from network.json; do not edit\n");
	for (i = 0; i < lines.n; i++)
		if (i == 0 || strcmp(lines.v[i], lines.v[i - 1]))
			sb_addf(out, "%s\n", lines.v[i]);
	strvec_clear(&lines);
}

/* The cluster domain is answered from the hosts file only (NXDOMAIN otherwise, at
 * once: the search list tries NS.svc.DOMAIN first for every name); anything else
 * goes to the node's own nameservers. */
static void servers_render(const char *domain, const char *self, struct sbuf *out)
{
	struct sbuf rc = SBUF_INIT;
	sb_addf(out, "server=/%s/\n", domain);
	sb_read_file(&rc, "/etc/resolv.conf", 1 << 16, NULL);
	char *save = NULL;
	for (char *line = strtok_r(rc.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s2 = NULL, *key = strtok_r(line, " \t\r", &s2), *val = strtok_r(NULL, " \t\r", &s2);
		if (key && val && !strcmp(key, "nameserver") && ip_ok(val) && strcmp(val, self))
			sb_addf(out, "server=%s\n", val);
	}
	sb_release(&rc);
}

/* ---- files ------------------------------------------------------------------- */

/* Write path when its contents differ: 1 written, 0 the same, -1 error. */
static int write_if_changed(const char *path, const struct sbuf *text, struct gerr **err)
{
	struct sbuf have = SBUF_INIT;
	bool same = access(path, F_OK) == 0 && sb_read_file(&have, path, DNS_MAX_FILE, NULL) == 0 &&
		    have.len == text->len && !memcmp(have.buf, text->buf, text->len);
	sb_release(&have);
	if (same)
		return 0;
	if (write_file_atomic(path, text->buf, text->len, 0644, err) < 0)
		return -1;
	if (chmod(path, 0644) < 0) /* whatever the umask: dnsmasq reads it as nobody */
		return gerr_sys(err, "chmod %s", path);
	return 1;
}

/* STATE/dns exists and nobody can reach it: STATE gets search permission for others. */
static int dns_dir(const char *state, const struct dns_paths *p, struct gerr **err)
{
	struct stat st;
	if (mkdir_p(p->dir, 0755, err) < 0)
		return -1;
	if (chmod(p->dir, 0755) < 0 || stat(state, &st) < 0)
		return gerr_sys(err, "%s", p->dir);
	if (!(st.st_mode & S_IXOTH) && chmod(state, (st.st_mode & 07777) | S_IXOTH) < 0)
		return gerr_sys(err, "chmod o+x %s", state);
	return 0;
}

static int lock_dns(const struct dns_paths *p, int *ret_fd, struct gerr **err)
{
	int fd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return gerr_sys(err, "open %s", p->lock);
	for (int i = 0; i < DNS_LOCK_TIMEOUT_S * 10; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*ret_fd = fd;
			return 0;
		}
		usleep(100000);
	}
	close(fd);
	return gerr_set(err, GERR_IO, "%s: another cluster DNS update is still running", p->lock);
}

/* ---- the address ------------------------------------------------------------- */

static int run(const char *const *argv, struct sbuf *out, struct gerr **err)
{
	struct sbuf errb = SBUF_INIT;
	struct child c = { .argv = argv, .out = out, .errb = &errb, .timeout_ms = DNS_CHILD_TIMEOUT_MS };
	int st = child_run(&c, err);
	if (st > 0) {
		while (errb.len && errb.buf[errb.len - 1] == '\n')
			sb_setlen(&errb, errb.len - 1);
		gerr_set(err, GERR_FAIL, "%s %s: %s", argv[0], argv[1], errb.len ? errb.buf : "failed");
	}
	sb_release(&errb);
	return st == 0 ? 0 : -1;
}

/* The link holding addr, or NULL when no link that is up has it. Caller frees. */
static char *addr_link(const char *addr)
{
	char *prefix = xasprintf("%s/32", addr);
	const char *argv[] = { "ip", "-o", "-4", "addr", "show", "up", "to", prefix, NULL };
	struct sbuf out = SBUF_INIT;
	char *dev = NULL;
	if (run(argv, &out, NULL) == 0) {
		/* "5: gitops-dns    inet 169.254.20.10/32 scope global gitops-dns\ ..." */
		char *save = NULL, *num = strtok_r(out.buf, " \t", &save);
		char *name = num ? strtok_r(NULL, " \t", &save) : NULL;
		if (name)
			dev = xstrdup(name);
	}
	sb_release(&out);
	free(prefix);
	return dev;
}

static void addr_remove(const char *addr)
{
	char *dev = addr_link(addr), *prefix = xasprintf("%s/32", addr);
	const char *argv[] = { "ip", "addr", "del", prefix, "dev", dev, NULL };
	if (dev)
		run(argv, NULL, NULL);
	free(dev);
	free(prefix);
}

/* addr on DNS_LINK (made when absent), or on lo when the kernel has no dummy links.
 * Returns 1 when it had to be added, 0 when it was there, -1 on error. */
static int addr_ensure(const char *addr, const char *old, struct gerr **err)
{
	if (old && *old && strcmp(old, addr))
		addr_remove(old);
	char *dev = addr_link(addr);
	bool present = dev != NULL;
	free(dev);
	if (present)
		return 0;
	char *prefix = xasprintf("%s/32", addr);
	const char *add[] = { "ip", "link", "add", DNS_LINK, "type", "dummy", NULL };
	const char *up[] = { "ip", "link", "set", DNS_LINK, "up", NULL };
	const char *on_link[] = { "ip", "addr", "replace", prefix, "dev", DNS_LINK, NULL };
	const char *on_lo[] = { "ip", "addr", "replace", prefix, "dev", "lo", "label", "lo:" DNS_LINK, NULL };
	char *have = xasprintf("/sys/class/net/%s", DNS_LINK);
	int r = access(have, F_OK) == 0 || run(add, NULL, NULL) == 0 ? 0 : -1;
	if (r == 0)
		r = run(up, NULL, err) < 0 || run(on_link, NULL, err) < 0 ? -1 : 1;
	else
		r = run(on_lo, NULL, err) < 0 ? -1 : 1;
	free(have);
	free(prefix);
	return r;
}

/* ---- dnsmasq ----------------------------------------------------------------- */

/* The pid of our dnsmasq, or 0: the pid file's process, alive, with our pid file
 * on its command line (a zombie's is empty). */
static pid_t dnsmasq_pid(const struct dns_paths *p)
{
	struct sbuf text = SBUF_INIT, cmd = SBUF_INIT;
	int64_t pid = 0;
	sb_read_file(&text, p->pid, 64, NULL);
	while (text.len && (text.buf[text.len - 1] == '\n' || text.buf[text.len - 1] == ' '))
		sb_setlen(&text, text.len - 1);
	if (text.len && parse_i64(text.buf, 2, INT32_MAX, &pid) == 0) {
		char *path = xasprintf("/proc/%lld/cmdline", (long long)pid);
		char *want = xasprintf("--pid-file=%s", p->pid);
		bool ours = false;
		if (sb_read_file(&cmd, path, 1 << 16, NULL) == 0)
			for (size_t off = 0; off < cmd.len && !ours; off += strlen(cmd.buf + off) + 1)
				ours = !strcmp(cmd.buf + off, want);
		if (!ours)
			pid = 0;
		free(path);
		free(want);
	} else {
		pid = 0;
	}
	sb_release(&text);
	sb_release(&cmd);
	return (pid_t)pid;
}

static void dnsmasq_stop(const struct dns_paths *p, pid_t pid)
{
	kill(pid, SIGTERM);
	for (int waited = 0; waited < DNS_STOP_WAIT_MS && dnsmasq_pid(p) == pid; waited += 20)
		usleep(20000);
	if (dnsmasq_pid(p) == pid)
		kill(pid, SIGKILL);
	unlink(p->pid);
}

/* dnsmasq forks into the background once it listens (its exit status says whether
 * it could), drops to nobody and closes its standard streams. */
static int dnsmasq_start(const struct dns_paths *p, const char *addr, struct gerr **err)
{
	struct strvec argv = STRVEC_INIT;
	strvec_push(&argv, "dnsmasq");
	strvec_push(&argv, "--conf-file=/dev/null"); /* no /etc/dnsmasq.conf */
	strvec_push(&argv, "--no-resolv");           /* upstreams: the servers file only */
	strvec_push(&argv, "--no-hosts");            /* not the node's /etc/hosts */
	strvec_pushf(&argv, "--pid-file=%s", p->pid);
	strvec_pushf(&argv, "--listen-address=%s", addr);
	strvec_push(&argv, "--bind-interfaces");     /* that address only, nothing else */
	strvec_push(&argv, "--port=53");
	strvec_push(&argv, "--user=nobody");
	strvec_push(&argv, "--group=nogroup");
	strvec_pushf(&argv, "--addn-hosts=%s", p->hosts);
	strvec_pushf(&argv, "--servers-file=%s", p->servers);
	strvec_push(&argv, "--domain-needed");       /* never forward a bare name */
	strvec_push(&argv, "--bogus-priv");          /* nor private reverse lookups */
	strvec_push(&argv, "--cache-size=1000");
	unlink(p->pid);
	int r = run(strvec_argv(&argv), NULL, err);
	if (r < 0)
		gerr_wrap(err, "starting the cluster DNS on %s", addr);
	strvec_clear(&argv);
	return r;
}

/* ---- update ------------------------------------------------------------------ */

static int dns_converge(const json_t *net, const struct dns_paths *p, struct gerr **err)
{
	const char *addr = jstr(net, "dnsServer"), *domain = jstr(net, "clusterDomain");
	struct in_addr a4;
	if (!addr || !*addr)
		addr = DNS_DEFAULT_SERVER;
	if (!domain || !*domain)
		domain = "cluster.local";
	if (inet_pton(AF_INET, addr, &a4) != 1)
		return gerr_set(err, GERR_FAIL, "network.dnsServer %s is not an IPv4 address", addr);
	if (!domain_ok(domain))
		return gerr_set(err, GERR_FAIL, "network.clusterDomain %s is not a DNS domain", domain);
	struct sbuf hosts = SBUF_INIT, servers = SBUF_INIT, old = SBUF_INIT, now = SBUF_INIT;
	hosts_render(net, domain, &hosts);
	servers_render(domain, addr, &servers);
	sb_adds(&now, addr);
	sb_read_file(&old, p->address, 64, NULL);
	int hc = write_if_changed(p->hosts, &hosts, err);
	int sc = hc < 0 ? -1 : write_if_changed(p->servers, &servers, err);
	int ac = sc < 0 ? -1 : addr_ensure(addr, old.buf, err);
	int r = ac < 0 ? -1 : 0;
	pid_t pid = r == 0 ? dnsmasq_pid(p) : 0;
	if (pid && (ac > 0 || strcmp(old.buf, addr))) {
		dnsmasq_stop(p, pid); /* it listens on a socket bound to its old address */
		pid = 0;
	}
	if (r == 0 && !pid)
		r = dnsmasq_start(p, addr, err);
	else if (r == 0 && (hc > 0 || sc > 0) && kill(pid, SIGHUP) < 0)
		r = gerr_sys(err, "reloading the cluster DNS (pid %d)", (int)pid);
	if (r == 0 && strcmp(old.buf, addr))
		r = write_if_changed(p->address, &now, err) < 0 ? -1 : 0;
	sb_release(&hosts);
	sb_release(&servers);
	sb_release(&old);
	sb_release(&now);
	return r;
}

int dns_update(const json_t *network_filled, const char *state_dir, struct gerr **err)
{
	if (!json_is_object(network_filled))
		return 0;
	struct dns_paths p;
	dns_paths_init(&p, state_dir);
	int fd = -1;
	int r = dns_dir(state_dir, &p, err);
	if (r == 0)
		r = lock_dns(&p, &fd, err);
	if (r == 0)
		r = dns_converge(network_filled, &p, err);
	if (fd >= 0)
		close(fd);
	dns_paths_release(&p);
	if (r < 0)
		gerr_wrap(err, "cluster DNS");
	return r;
}

int dns_ensure(const char *state_dir, struct gerr **err)
{
	struct dns_paths p;
	dns_paths_init(&p, state_dir);
	struct sbuf addr = SBUF_INIT;
	int fd = -1, r = 0;
	if (access(p.address, F_OK) == 0 && !dnsmasq_pid(&p)) {
		r = lock_dns(&p, &fd, err);
		sb_read_file(&addr, p.address, 64, NULL);
		if (r == 0 && addr.len && !dnsmasq_pid(&p)) /* not started meanwhile */
			r = addr_ensure(addr.buf, NULL, err) < 0 ? -1 : dnsmasq_start(&p, addr.buf, err);
	}
	if (fd >= 0)
		close(fd);
	sb_release(&addr);
	dns_paths_release(&p);
	if (r < 0)
		gerr_wrap(err, "cluster DNS");
	return r;
}
