/* network.c: the node's Services and NetworkPolicy (issue 5, docs/node-protocol.md
 * "The network") — the plan's `network` kept as STATE/network.json, filled in with
 * what only this node knows (its addresses, its pods' IPs and readiness), compiled
 * by netpol_compile() and loaded by the GPL applier `gitops-nft`, one transaction
 * each time: the change from the script loaded last (netpol_script_delta) when the
 * kernel still has exactly that table, else the whole table. gitops never links
 * libnftables: gitops-nft is a child process fed on stdin (docs/licensing.md).
 *
 * Files:
 *   STATE/network.json  the last plan's `network`, as the controller sent it (compact,
 *                       keys sorted: an unchanged network is found equal by its bytes)
 *   STATE/rules.json    what was loaded last: {"digest": sha256 of the script,
 *                       "listing": the table's digest (below) right after the load,
 *                       "genid": the nftables generation then, "services",
 *                       "policies", "time", "lastError"}
 *   STATE/rules.nft     that script, the base of the next delta; used only while its
 *                       sha256 is rules.json's "digest"
 *   STATE/rules.lock    flock: one refresh at a time on the node
 *   STATE/rules.dirty   "refresh, please": made by whoever wants a refresh before it
 *                       waits for the lock; the holder takes it away before reading
 *                       the pods' state, so a burst of readiness changes waiting
 *                       behind one refresh costs one more refresh, not one each
 *
 * Drift: the kernel's nftables generation id changes with every ruleset commit of
 * the network namespace. It costs one netlink round trip (no child process), so
 * `node status` compares it on every call and reads the table only when it moved.
 * The table is read over netlink, not listed through libnftables (10,000 Services:
 * ~0.12 s instead of ~0.65 s), into a digest that a whole load and a delta giving the
 * same table agree on (nft_table_digest, runtime/nft_table.c); after a delta only the objects it touched are
 * read again.
 */
#include "runtime/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "netpol/netpol.h"

#define NFT_LIST_MAX (256u << 20)
#define NFT_TIMEOUT_MS (120 * 1000)
#define LOCK_TIMEOUT_S 120
#define NFT_MESSAGE_MAX 4000

/* ---- small helpers ---- */

static char *state_file(const struct node_paths *p, const char *name)
{
	return xasprintf("%s/%s", p->state, name);
}

static char *sha256_hex(const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	char *hex = xmalloc(2 * n + 1);
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * n] = '\0';
	return hex;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* gitops-nft next to this binary (make install puts them together), else in PATH. */
static char *nft_path(void)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(self, '/');
	if (slash) {
		char *path = xasprintf("%.*s/gitops-nft", (int)(slash - self), self);
		if (access(path, X_OK) == 0)
			return path;
		free(path);
	}
	char *found = which("gitops-nft");
	return found ? found : xstrdup("gitops-nft");
}

/* ---- gitops-nft ---- */

static void trim_end(struct sbuf *sb)
{
	while (sb->len && (sb->buf[sb->len - 1] == '\n' || sb->buf[sb->len - 1] == ' '))
		sb_setlen(sb, sb->len - 1);
}

static int nft_run(const char *const *args, const char *in, size_t in_len, struct sbuf *out,
		   struct gerr **err)
{
	char *nft = nft_path();
	struct strvec argv = STRVEC_INIT;
	strvec_push(&argv, nft);
	strvec_pushv(&argv, args);
	struct sbuf errb = SBUF_INIT;
	struct child c = { .argv = strvec_argv(&argv), .in = in, .in_len = in_len, .out = out,
			   .errb = &errb, .out_max = NFT_LIST_MAX, .timeout_ms = NFT_TIMEOUT_MS };
	int st = child_run(&c, err);
	if (st > 0) {
		sb_add(out, errb.buf, errb.len);
		trim_end(out);
		if (out->len > NFT_MESSAGE_MAX)
			sb_setlen(out, NFT_MESSAGE_MAX);
		gerr_set(err, GERR_FAIL, "%s exited %d%s%s", nft, st, out->len ? ": " : "", out->buf);
	}
	sb_release(&errb);
	strvec_clear(&argv);
	free(nft);
	return st == 0 ? 0 : -1;
}

static const char *net_family(const json_t *net)
{
	return jstr(net, "family") ? jstr(net, "family") : "ip";
}

static const char *net_table(const json_t *net)
{
	return jstr(net, "table") ? jstr(net, "table") : "gitops";
}

static int nft_list(const json_t *net, struct sbuf *out, struct gerr **err)
{
	const char *args[] = { "--list", net_family(net), net_table(net), NULL };
	return nft_run(args, NULL, 0, out, err);
}

/* ---- what only this node knows ---- */

static bool pod_ready(const char *dir, const json_t *pod)
{
	const json_t *cs = json_object_get(json_object_get(pod, "spec"), "containers");
	bool ready = json_array_size(cs) > 0;
	size_t i;
	json_t *c;
	json_array_foreach(cs, i, c) {
		char *path = xasprintf("%s/containers/%s/state.json", dir, jstr(c, "name") ?: "");
		json_t *st = access(path, F_OK) == 0 ? json_load_path(path, 1 << 20, NULL) : NULL;
		ready &= json_is_true(json_object_get(st, "ready"));
		json_decref(st);
		free(path);
	}
	return ready;
}

/* uid → {"ip", "ready", "hostNetwork"} of every pod this node has. */
static json_t *local_pods(const struct node_paths *p)
{
	json_t *out = json_object();
	DIR *d = opendir(p->pods);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *dir = xasprintf("%s/%s", p->pods, e->d_name), *path = xasprintf("%s/pod.json", dir);
		json_t *pod = json_load_path(path, RUNTIME_MAX_PLAN, NULL);
		const char *uid = jstr(pod, "uid");
		if (uid)
			json_object_set_new(out, uid, json_pack("{s:O?, s:b, s:b}", "ip", json_object_get(pod, "podIP"),
								"ready", pod_ready(dir, pod), "hostNetwork",
								json_is_true(json_object_get(json_object_get(pod, "spec"),
											     "hostNetwork"))));
		json_decref(pod);
		free(path);
		free(dir);
	}
	if (d)
		closedir(d);
	return out;
}

static bool parse_cidr(const char *s, uint32_t *ret_net, uint32_t *ret_mask)
{
	char buf[32];
	const char *slash = s ? strchr(s, '/') : NULL;
	int64_t bits;
	if (!slash || (size_t)(slash - s) >= sizeof(buf) || parse_i64(slash + 1, 0, 32, &bits) < 0)
		return false;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*ret_mask = bits ? ~0u << (32 - bits) : 0;
	*ret_net = ntohl(a.s_addr) & *ret_mask;
	return true;
}

/* The node's own IPv4 addresses that can serve NodePorts: not loopback, not
 * link-local (the DNS address lives there), not in the pods' range. */
static json_t *node_ips(const json_t *net)
{
	uint32_t cnet = 0, cmask = 0;
	bool have = parse_cidr(jstr(net, "clusterCIDR"), &cnet, &cmask) ||
		    parse_cidr(jstr(net, "podCIDR"), &cnet, &cmask);
	json_t *out = json_array();
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) < 0)
		return out;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		uint32_t h = ntohl(a.s_addr);
		if ((h >> 24) == 127 || (h >> 16) == 0xa9fe || (have && (h & cmask) == cnet))
			continue;
		char text[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, text, sizeof(text));
		bool dup = false;
		size_t k;
		json_t *v;
		json_array_foreach(out, k, v)
			dup |= !strcmp(json_string_value(v), text);
		if (!dup)
			json_array_append_new(out, json_string(text));
	}
	freeifaddrs(ifs);
	return out;
}

static void fill_pods(json_t *net, const json_t *local)
{
	size_t i;
	json_t *pod;
	json_array_foreach(json_object_get(net, "pods"), i, pod) {
		const json_t *lp = json_object_get(local, jstr(pod, "uid") ?: "");
		if (!json_is_true(json_object_get(pod, "local")) || !jstr(pod, "uid"))
			continue;
		if (!lp || !jstr(lp, "ip")) {
			json_object_del(pod, "ip"); /* not (or no longer) here: no rules */
			continue;
		}
		bool hostnet = json_is_true(json_object_get(lp, "hostNetwork"));
		if (hostnet)
			json_object_set_new(pod, "hostNetwork", json_true());
		if (!hostnet || !jstr(pod, "ip"))
			json_object_set(pod, "ip", json_object_get(lp, "ip"));
	}
}

static void fill_endpoints(json_t *net, const json_t *local)
{
	size_t i;
	json_t *svc;
	json_array_foreach(json_object_get(net, "services"), i, svc) {
		json_t *eps = json_object_get(svc, "endpoints");
		for (size_t k = 0; k < json_array_size(eps);) {
			json_t *ep = json_array_get(eps, k);
			const json_t *lp = json_object_get(local, jstr(ep, "uid") ?: "");
			if (!json_is_true(json_object_get(ep, "local")) || !jstr(ep, "uid")) {
				k++;
				continue;
			}
			if (!lp || !jstr(lp, "ip")) {
				json_array_remove(eps, k); /* the pod is gone from this node */
				continue;
			}
			if (!json_is_true(json_object_get(lp, "hostNetwork")) || !jstr(ep, "ip"))
				json_object_set(ep, "ip", json_object_get(lp, "ip"));
			json_object_set(ep, "ready", json_object_get(lp, "ready"));
			k++;
		}
	}
}

/* network.json (loaded afresh, changed in place) with the node's addresses, its
 * pods' IPs and readiness; returns local_pods(). */
static json_t *network_fill(const struct node_paths *p, json_t *net)
{
	if (!json_is_array(json_object_get(net, "nodeIPs")))
		json_object_set_new(net, "nodeIPs", node_ips(net));
	json_t *local = local_pods(p);
	fill_pods(net, local);
	fill_endpoints(net, local);
	return local;
}

/* ---- rules.json and the journal ---- */

static json_t *rules_state(const struct node_paths *p)
{
	char *path = state_file(p, "rules.json");
	json_t *st = access(path, F_OK) == 0 ? json_load_path(path, 1 << 20, NULL) : NULL;
	free(path);
	if (!json_is_object(st)) {
		json_decref(st);
		st = json_object();
	}
	/* no rules.nft: written before the table's digest was read over netlink (its
	 * "listing" is of another kind); without the genid the next check reads the table
	 * and reloads it once, instead of trusting an unchanged generation */
	path = state_file(p, "rules.nft");
	if (access(path, F_OK) < 0)
		json_object_del(st, "genid");
	free(path);
	return st;
}

static void rules_save(const struct node_paths *p, const json_t *st)
{
	char *path = state_file(p, "rules.json");
	struct gerr *e = NULL;
	if (json_save_atomic(path, st, 0644, &e) < 0)
		fprintf(stderr, "gitops: %s\n", e->msg);
	gerr_free(e);
	free(path);
}

static void journal_rec(const struct node_paths *p, struct journal *j, const char *type, json_t *body)
{
	struct gerr *e = NULL;
	if (j) {
		char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(body);
		if (text)
			journal_append(j, type, text, strlen(text), NULL, &e);
		free(text);
	} else {
		rt_journal(p, type, body, &e);
	}
	if (e)
		fprintf(stderr, "gitops: journal %s: %s\n", type, e->msg);
	gerr_free(e);
}

struct refresh {
	const struct node_paths *p;
	struct journal *j;  /* NULL: open the journal per record */
	json_t *st;         /* rules.json */
};

/* A failure is journalled once, not on every retry of the same failure. */
static void record_failure(struct refresh *r, const char *reason, const struct gerr *e)
{
	const char *msg = e ? e->msg : "failed";
	if (jstr(r->st, "lastError") && !strcmp(jstr(r->st, "lastError"), msg))
		return;
	json_object_set_new(r->st, "lastError", json_string(msg));
	rules_save(r->p, r->st);
	journal_rec(r->p, r->j, "rules.failed", json_pack("{s:s, s:s}", "reason", reason, "message", msg));
}

/* ---- the script loaded last (STATE/rules.nft) ---- */

#define SCRIPT_MAX (256u << 20)   /* gitops-nft reads no more */

/* tmp → rename, without fsync: for files used only while a digest recorded with
 * them matches (rules.nft, the index), so a torn or stale one costs a whole compile
 * or load, never a wrong delta. */
static void save_nosync(const char *path, const char *buf, size_t len)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t off = 0;
	while (fd >= 0 && off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	bool ok = fd >= 0 && off == len;
	if (fd >= 0 && close(fd) < 0)
		ok = false;
	if (!ok || rename(tmp, path) < 0) {
		fprintf(stderr, "gitops: saving %s: %s\n", path, strerror(errno ? errno : EIO));
		unlink(tmp);
	}
	free(tmp);
}

static void script_save(const struct node_paths *p, const struct sbuf *script)
{
	char *path = state_file(p, "rules.nft");
	save_nosync(path, script->buf, script->len);
	free(path);
}

/* The script loaded last, into `old`: NULL, or why there is none to compare with. */
static const char *script_last(struct refresh *r, struct sbuf *old)
{
	const char *want = jstr(r->st, "digest");
	if (!want || !jstr(r->st, "listing"))
		return "nothing was loaded before";
	char *path = state_file(r->p, "rules.nft");
	int rc = sb_read_file(old, path, SCRIPT_MAX, NULL);
	free(path);
	if (rc < 0)
		return "the script loaded last is missing";
	char *have = sha256_hex(old->buf, old->len);
	bool same = !strcmp(have, want);
	free(have);
	return same ? NULL : "the script loaded last is not the one recorded";
}

/* ---- refresh ---- */

/* One change to load. */
struct load {
	const json_t *net;          /* the filled network */
	const struct sbuf *script;  /* its whole table */
	const char *digest;         /* sha256 of the script */
	const char *reason;         /* plan | readiness | drift */
	bool partial;               /* made by refresh_partial */
};

/* 0: the table is what was loaded (genid recorded again), 1: it drifted (ret_found:
 * its digest now), -1: it cannot be read. */
static int check_table(struct refresh *r, const json_t *net, char **ret_found, struct gerr **err)
{
	uint32_t gen;
	bool have_gen = nft_genid(&gen) == 0;
	const json_t *was = json_object_get(r->st, "genid");
	if (have_gen && json_is_integer(was) && (uint32_t)json_integer_value(was) == gen)
		return 0;
	char *found = NULL;
	if (nft_table_digest_hex(net_family(net), net_table(net), &found, NULL, err) < 0)
		return gerr_wrap(err, "reading the network rules");
	if (jstr(r->st, "listing") && !strcmp(found, jstr(r->st, "listing"))) {
		free(found);
		if (have_gen) {
			json_object_set_new(r->st, "genid", json_integer(gen));
			rules_save(r->p, r->st);
		}
		return 0;
	}
	*ret_found = found;
	return 1;
}

/* The numbers of Services and policies: net's, or (a partial load) those of `was`. */
static void set_counts(json_t *st, const json_t *net, const json_t *was)
{
	static const char *const keys[] = { "services", "policies" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const json_t *v = json_object_get(net, keys[i]);
		json_int_t n = v ? (json_int_t)json_array_size(v) : json_integer_value(json_object_get(was, keys[i]));
		json_object_set_new(st, keys[i], json_integer(n));
	}
}

/* The kernel has l's table now, whose digest is `listing`: rules.json, rules.nft and
 * the journal say so. `fallback`: why it was loaded whole (NULL: as a delta). */
static void record_load(struct refresh *r, const struct load *l, const char *listing, bool have_gen,
			uint32_t gen, const char *fallback)
{
	char *now = rfc3339_now();
	script_save(r->p, l->script);
	json_t *was = r->st;
	r->st = json_pack("{s:s, s:s, s:s}", "digest", l->digest, "listing", listing, "time", now);
	set_counts(r->st, l->net, was);
	json_decref(was);
	if (have_gen)
		json_object_set_new(r->st, "genid", json_integer(gen));
	rules_save(r->p, r->st);
	json_t *body = json_pack("{s:s, s:O, s:O, s:s, s:b}", "digest", l->digest, "services",
				 json_object_get(r->st, "services"), "policies", json_object_get(r->st, "policies"),
				 "reason", l->reason, "delta", fallback == NULL);
	if (fallback)
		json_object_set_new(body, "fallback", json_string(fallback));
	if (l->partial)
		json_object_set_new(body, "partial", json_true());
	journal_rec(r->p, r->j, "rules.loaded", body);
	free(now);
}

static int load_whole(struct refresh *r, const struct load *l, const char *fallback, struct gerr **err)
{
	struct sbuf out = SBUF_INIT;
	int rc = nft_run((const char *const[]){ NULL }, l->script->buf, l->script->len, &out, err);
	sb_release(&out);
	if (rc < 0)
		return gerr_wrap(err, "loading the network rules");
	uint32_t gen;
	bool have_gen = nft_genid(&gen) == 0; /* before the digest: a later change shows */
	char *listing = NULL;
	if (nft_table_digest_hex(net_family(l->net), net_table(l->net), &listing, NULL, err) < 0)
		return gerr_wrap(err, "reading the network rules back");
	record_load(r, l, listing, have_gen, gen, fallback);
	free(listing);
	return 0;
}

/* The delta onto a table that is exactly the one loaded last. The table's digest is
 * updated from the objects the delta touches, read before and after: when nothing
 * else committed in between (the generation moved by one), the sum over the rest
 * is unchanged. -1: not loaded (gitops-nft refused it, as one transaction: the table
 * is as it was) or not read back; the caller loads the whole table. */
static int load_delta(struct refresh *r, const struct load *l, const struct sbuf *delta,
		      const struct strvec *touched, struct gerr **err)
{
	uint64_t sum[4], before[4], after[4];
	uint32_t g0 = 0, g1 = 0;
	bool gens = nft_genid(&g0) == 0;
	if (!nft_hex_lanes(jstr(r->st, "listing"), sum))
		return gerr_set(err, GERR_FAIL, "no digest of the table loaded last");
	if (nft_table_digest(net_family(l->net), net_table(l->net), touched, before, NULL, err) < 0)
		return -1;
	struct sbuf out = SBUF_INIT;
	int rc = nft_run((const char *const[]){ NULL }, delta->buf, delta->len, &out, err);
	sb_release(&out);
	if (rc < 0)
		return -1;
	gens = gens && nft_genid(&g1) == 0;
	char *listing = NULL;
	if (gens && g1 == g0 + 1 && nft_table_digest(net_family(l->net), net_table(l->net), touched, after, NULL, err) == 0) {
		for (size_t i = 0; i < 4; i++)
			sum[i] += after[i] - before[i];
		listing = nft_lanes_hex(sum);
	} else if (nft_table_digest_hex(net_family(l->net), net_table(l->net), &listing, NULL, err) < 0)
		return gerr_wrap(err, "reading the network rules back");
	record_load(r, l, listing, gens, g1, NULL);
	free(listing);
	return 0;
}

/* Only the text changed, not the table (nothing to load): the new text is the one
 * to compare with from now on. */
static void record_text(struct refresh *r, const struct load *l)
{
	script_save(r->p, l->script);
	json_object_set_new(r->st, "digest", json_string(l->digest));
	set_counts(r->st, l->net, r->st);
	rules_save(r->p, r->st);
}

/* Loads what changed: nothing when the script is the one loaded last and the table
 * is still what it loaded; the delta from the last script when the table is still
 * that one; else the whole table. */
static int load_changes(struct refresh *r, struct load *l, struct gerr **err)
{
	bool same = jstr(r->st, "digest") && !strcmp(l->digest, jstr(r->st, "digest"));
	struct sbuf old = SBUF_INIT, delta = SBUF_INIT;
	struct strvec touched = STRVEC_INIT;
	char *found = NULL, *failed = NULL;
	const char *why = same ? NULL : script_last(r, &old);
	int rc = why ? 0 : check_table(r, l->net, &found, err);
	if (rc == 1) {
		journal_rec(r->p, r->j, "rules.drift", json_pack("{s:s, s:s?, s:s}", "digest", l->digest, "expected",
								 jstr(r->st, "listing"), "found", found));
		l->reason = "drift";
		why = "the table drifted";
	}
	if (rc < 0 || (same && rc == 0))
		goto out;
	if (!why && netpol_script_delta(old.buf, l->script->buf, &delta, &touched) == 1)
		why = "no delta expresses the change";
	if (!why && !delta.len) {
		record_text(r, l);
		goto out;
	}
	struct gerr *derr = NULL;
	if (!why && load_delta(r, l, &delta, &touched, &derr) == 0)
		goto out;
	if (derr)
		why = failed = xasprintf("the delta: %s", derr->msg);
	gerr_free(derr);
	rc = load_whole(r, l, why, err);
out:
	free(failed);
	free(found);
	strvec_clear(&touched);
	sb_release(&delta);
	sb_release(&old);
	return rc < 0 ? -1 : 0;
}

static void dns_hook(const struct node_paths *p, const json_t *filled)
{
	struct gerr *e = NULL;
	if (dns_update(filled, p->state, &e) < 0)
		fprintf(stderr, "gitops: cluster DNS: %s\n", e ? e->msg : "failed");
	gerr_free(e);
}

/* STATE/network.json, or *ret NULL when the node has none. */
static int load_network(const struct node_paths *p, json_t **ret, struct gerr **err)
{
	char *path = state_file(p, "network.json");
	int rc = 0;
	*ret = NULL;
	if (access(path, F_OK) == 0 && !(*ret = json_load_path(path, RUNTIME_MAX_PLAN, err)))
		rc = -1;
	free(path);
	return rc;
}

/* ---- a readiness change without compiling everything ---- */
/* A local pod's readiness changes only the Services that have it as an endpoint.
 * After every whole compile the node keeps an index of what it loaded:
 *   STATE/rules-index.json      {"script": rules.json's digest then, "network": the
 *                               identity of network.json (device:inode:size:mtime),
 *                               "settings": the network's settings as filled in,
 *                               "pods": {uid: {"ip", "ready"}} of the local pods}
 *   STATE/rules-index/UID.json  {"services": the filled Services that have pod UID as
 *                               an endpoint, "pods": those pods of the network their
 *                               named targetPorts need}
 * When only readiness moved since (same network.json, same pods and IPs, the table
 * still the one loaded), the Services of the pods that changed are compiled alone,
 * as loaded and as now, and netpol_partial_delta() makes their change onto rules.nft;
 * the index then records the new readiness and script. Anything else, or anything
 * it cannot do (a headless Service: the cluster DNS changes too), is the whole
 * compile's. Both files are written without fsync: used only while "script" is
 * rules.json's digest. */

static char *file_id(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return NULL;
	return xasprintf("%llu:%llu:%lld:%lld.%09ld", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void save_json_nosync(const char *path, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	if (text)
		save_nosync(path, text, strlen(text));
	free(text);
}

static bool named_target(const json_t *svc)
{
	size_t i;
	json_t *port;
	json_array_foreach(json_object_get(svc, "ports"), i, port)
		if (json_is_string(json_object_get(port, "targetPort")))
			return true;
	return false;
}

/* The pods of the network at the endpoints of svcs, when a named targetPort needs them. */
static json_t *needed_pods(const json_t *net, const json_t *svcs)
{
	json_t *ips = json_object(), *out = json_array(), *sv, *ep, *pod;
	size_t i, k;
	json_array_foreach(svcs, i, sv)
		if (named_target(sv))
			json_array_foreach(json_object_get(sv, "endpoints"), k, ep)
				if (jstr(ep, "ip"))
					json_object_set_new(ips, jstr(ep, "ip"), json_true());
	json_array_foreach(json_object_size(ips) ? json_object_get(net, "pods") : NULL, i, pod)
		if (jstr(pod, "ip") && json_object_get(ips, jstr(pod, "ip")))
			json_array_append(out, pod);
	json_decref(ips);
	return out;
}

static void index_save(const struct node_paths *p, const json_t *filled, const json_t *local, const char *script)
{
	char *dir = state_file(p, "rules-index"), *path = state_file(p, "rules-index.json");
	char *netpath = state_file(p, "network.json"), *id = file_id(netpath);
	unlink(path);      /* stale from here on */
	mkdir(dir, 0700);
	json_t *by_uid = json_object(), *sv, *ep, *lp, *pods = json_object(), *settings = json_object(), *v;
	size_t i, k;
	json_array_foreach(json_object_get(filled, "services"), i, sv)
		json_array_foreach(json_object_get(sv, "endpoints"), k, ep) {
			const char *uid = json_is_true(json_object_get(ep, "local")) ? jstr(ep, "uid") : NULL;
			json_t *list = uid ? json_object_get(by_uid, uid) : NULL;
			if (uid && !list)
				json_object_set_new(by_uid, uid, list = json_array());
			if (list && json_array_get(list, json_array_size(list) - 1) != sv)
				json_array_append(list, sv);
		}
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			char *f = xasprintf("%s/%s", dir, e->d_name);
			unlink(f);
			free(f);
		}
	if (d)
		closedir(d);
	const char *uid, *key;
	json_object_foreach((json_t *)local, uid, lp) {
		if (!jstr(lp, "ip"))
			continue;
		json_object_set_new(pods, uid, json_pack("{s:O, s:O}", "ip", json_object_get(lp, "ip"), "ready",
							 json_object_get(lp, "ready")));
		json_t *svcs = json_object_get(by_uid, uid);
		if (!svcs)
			continue;
		json_t *one = json_pack("{s:O, s:o}", "services", svcs, "pods", needed_pods(filled, svcs));
		char *f = xasprintf("%s/%s.json", dir, uid);
		save_json_nosync(f, one);
		free(f);
		json_decref(one);
	}
	json_object_foreach((json_t *)filled, key, v)
		if (strcmp(key, "services") && strcmp(key, "pods") && strcmp(key, "policies") && strcmp(key, "namespaces"))
			json_object_set(settings, key, v);
	json_t *g = json_pack("{s:s, s:s?, s:o, s:o}", "script", script, "network", id, "settings", settings, "pods", pods);
	save_json_nosync(path, g);
	json_decref(g);
	json_decref(by_uid);
	free(id);
	free(netpath);
	free(path);
	free(dir);
}

/* The Services (and pods) of the local pods in `changed`, by namespace/name; 1 when
 * one of them is headless (its names change in the cluster DNS). */
static int index_services(const struct node_paths *p, const json_t *changed, json_t *svcs, json_t *pods)
{
	size_t i, k;
	json_t *uid, *sv, *pod;
	json_array_foreach(changed, i, uid) {
		char *path = xasprintf("%s/rules-index/%s.json", p->state, json_string_value(uid));
		json_t *one = access(path, F_OK) == 0 ? json_load_path(path, RUNTIME_MAX_PLAN, NULL) : json_object();
		free(path);
		if (!one)
			return 1;
		json_array_foreach(json_object_get(one, "services"), k, sv) {
			char *key = xasprintf("%s/%s", jstr(sv, "namespace") ?: "", jstr(sv, "name") ?: "");
			if (jstr(sv, "clusterIP") && !strcmp(jstr(sv, "clusterIP"), "None")) {
				free(key);
				json_decref(one);
				return 1;
			}
			json_object_set(svcs, key, sv);
			free(key);
		}
		json_array_foreach(json_object_get(one, "pods"), k, pod) {
			char *key = xasprintf("%s/%s", jstr(pod, "namespace") ?: "", jstr(pod, "name") ?: "");
			json_object_set(pods, key, pod);
			free(key);
		}
		json_decref(one);
	}
	return 0;
}

/* settings + svcs with each local endpoint's readiness from `ready` ({uid: {"ready"}}). */
static json_t *partial_input(const json_t *settings, const json_t *svcs, const json_t *pods, const json_t *ready)
{
	json_t *in = json_deep_copy(settings), *list = json_array(), *plist = json_array(), *sv, *ep, *pod;
	const char *key;
	size_t k;
	json_object_foreach((json_t *)svcs, key, sv) {
		json_t *copy = json_deep_copy(sv);
		json_array_foreach(json_object_get(copy, "endpoints"), k, ep) {
			const json_t *r = json_is_true(json_object_get(ep, "local")) ? json_object_get(ready, jstr(ep, "uid") ?: "") : NULL;
			if (r)
				json_object_set(ep, "ready", json_object_get(r, "ready"));
		}
		json_array_append_new(list, copy);
	}
	json_object_foreach((json_t *)pods, key, pod)
		json_array_append(plist, pod);
	json_object_set_new(in, "services", list);
	json_object_set_new(in, "pods", plist);
	return in;
}

/* The local pods whose readiness differs from the index's (appended to `changed`);
 * false when anything else differs: a pod came, went or has another IP. */
static bool readiness_moved(const json_t *was, const json_t *local, json_t *changed)
{
	const char *uid;
	json_t *lp, *w;
	json_object_foreach((json_t *)local, uid, lp) {
		w = json_object_get(was, uid);
		if (!jstr(lp, "ip")) {
			if (w)
				return false;
			continue;
		}
		if (!w || !jstr(w, "ip") || strcmp(jstr(w, "ip"), jstr(lp, "ip")))
			return false;
		if (json_is_true(json_object_get(w, "ready")) != json_is_true(json_object_get(lp, "ready")))
			json_array_append_new(changed, json_string(uid));
	}
	json_object_foreach((json_t *)was, uid, w)
		if (!json_object_get(local, uid))
			return false;
	return true;
}

/* 0: done (the change loaded, or none); 1: the whole compile must do it. */
static int refresh_partial(struct refresh *r)
{
	char *gpath = state_file(r->p, "rules-index.json"), *netpath = state_file(r->p, "network.json");
	char *id = file_id(netpath);
	json_t *g = access(gpath, F_OK) == 0 ? json_load_path(gpath, RUNTIME_MAX_PLAN, NULL) : NULL;
	json_t *local = NULL, *changed = json_array(), *svcs = json_object(), *pods = json_object();
	json_t *old_in = NULL, *new_in = NULL;
	struct sbuf old = SBUF_INIT, delta = SBUF_INIT, after = SBUF_INIT;
	struct strvec touched = STRVEC_INIT;
	char *digest = NULL, *found = NULL;
	const json_t *settings = json_object_get(g, "settings");
	int rc = 1;
	if (!json_is_object(settings) || !id || !jstr(g, "network") || strcmp(id, jstr(g, "network")) ||
	    !jstr(g, "script") || !jstr(r->st, "digest") || strcmp(jstr(g, "script"), jstr(r->st, "digest")))
		goto out;
	local = local_pods(r->p);
	if (!readiness_moved(json_object_get(g, "pods"), local, changed))
		goto out;
	if (!json_array_size(changed)) {
		rc = check_table(r, settings, &found, NULL) == 0 ? 0 : 1;
		goto out;
	}
	if (index_services(r->p, changed, svcs, pods) || script_last(r, &old) || check_table(r, settings, &found, NULL))
		goto out;
	old_in = partial_input(settings, svcs, pods, json_object_get(g, "pods"));
	new_in = partial_input(settings, svcs, pods, local);
	if (netpol_partial_delta(old.buf, old_in, new_in, &delta, &after, &touched, NULL) != 0)
		goto out;
	if (delta.len) {
		digest = sha256_hex(after.buf, after.len);
		struct load l = { settings, &after, digest, "readiness", true };
		if (load_delta(r, &l, &delta, &touched, NULL) < 0)
			goto out;
		json_object_set_new(g, "script", json_string(digest));
	}
	size_t i;
	json_t *uid;
	json_array_foreach(changed, i, uid)
		json_object_set(json_object_get(json_object_get(g, "pods"), json_string_value(uid)), "ready",
				json_object_get(json_object_get(local, json_string_value(uid)), "ready"));
	save_json_nosync(gpath, g);
	rc = 0;
out:
	strvec_clear(&touched);
	sb_release(&after);
	sb_release(&delta);
	sb_release(&old);
	free(found);
	free(digest);
	json_decref(new_in);
	json_decref(old_in);
	json_decref(pods);
	json_decref(svcs);
	json_decref(changed);
	json_decref(local);
	json_decref(g);
	free(id);
	free(netpath);
	free(gpath);
	return rc;
}

/* Under the lock: compile, and load what changed. net: network.json's content
 * when the caller has it (taken), else NULL: read it. */
static int refresh_locked(struct refresh *r, const char *reason, json_t *net, struct gerr **err)
{
	if (!net && !strcmp(reason, "readiness") && refresh_partial(r) == 0) {
		if (json_object_get(r->st, "lastError") && json_object_del(r->st, "lastError") == 0)
			rules_save(r->p, r->st);
		return 0;
	}
	int rc = net ? 0 : load_network(r->p, &net, err);
	if (rc < 0)
		record_failure(r, reason, err ? *err : NULL);
	if (!net)
		return rc;
	json_t *filled = net, *local = network_fill(r->p, filled);
	struct sbuf script = SBUF_INIT;
	char *digest = NULL;
	rc = netpol_compile(filled, &script, err);
	if (rc < 0)
		gerr_wrap(err, "compiling the network rules");
	else {
		digest = sha256_hex(script.buf, script.len);
		struct load l = { filled, &script, digest, reason, false };
		rc = load_changes(r, &l, err);
		reason = l.reason;
	}
	if (rc < 0)
		record_failure(r, reason, err ? *err : NULL);
	else {
		if (json_object_get(r->st, "lastError") && json_object_del(r->st, "lastError") == 0)
			rules_save(r->p, r->st);
		index_save(r->p, filled, local, jstr(r->st, "digest"));
	}
	dns_hook(r->p, filled);
	json_decref(local);
	free(digest);
	sb_release(&script);
	json_decref(net);
	return rc;
}

/* ---- locking ---- */

static int lock_rules(const struct node_paths *p, int how, struct gerr **err)
{
	char *path = state_file(p, "rules.lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0)
		return gerr_sys(err, "open %s/rules.lock", p->state);
	bool wait = !(how & LOCK_NB);
	for (int i = 0; i < (wait ? LOCK_TIMEOUT_S * 10 : 1); i++) {
		if (flock(fd, how | LOCK_NB) == 0)
			return fd;
		if (wait)
			usleep(100000);
	}
	close(fd);
	return wait ? gerr_set(err, GERR_IO, "another refresh of the network rules is still running") : -1;
}

static void mark_dirty(const struct node_paths *p)
{
	char *path = state_file(p, "rules.dirty");
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	free(path);
}

static bool take_dirty(const struct node_paths *p)
{
	char *path = state_file(p, "rules.dirty");
	bool was = unlink(path) == 0;
	free(path);
	return was;
}

int network_refresh(const struct node_paths *p, struct journal *j, const char *reason,
		    const json_t *saved, struct gerr **err)
{
	if (!network_present(p))
		return 0;
	mark_dirty(p);
	int fd = lock_rules(p, LOCK_EX, err);
	if (fd < 0)
		return -1;
	int rc = 0;
	while (take_dirty(p)) { /* else the refresh before us saw what we came for */
		struct refresh r = { p, j, rules_state(p) };
		if (err)
			gerr_clear(err);
		/* the first pass compiles what the caller just saved (filled in: a copy),
		 * a later one what a concurrent refresh may have saved since */
		rc = refresh_locked(&r, reason, saved ? json_deep_copy(saved) : NULL, err);
		saved = NULL;
		json_decref(r.st);
	}
	close(fd);
	return rc;
}

int network_save(const struct node_paths *p, const json_t *network, struct gerr **err)
{
	if (!json_is_object(network))
		return 0;
	/* compact with sorted keys: equal networks are equal bytes, compared without
	 * parsing the file (10,000 Services: 3 MB) */
	char *text = json_dumps(network, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return gerr_set(err, GERR_FAIL, "network: cannot encode JSON");
	char *path = state_file(p, "network.json");
	struct sbuf have = SBUF_INIT;
	size_t len = strlen(text);
	int r = 0;
	if (access(path, F_OK) < 0 || sb_read_file(&have, path, len + 1, NULL) < 0 || have.len != len ||
	    memcmp(have.buf, text, len))
		r = write_file_atomic(path, text, len, 0644, err);
	sb_release(&have);
	free(path);
	free(text);
	return r;
}

bool network_present(const struct node_paths *p)
{
	char *path = state_file(p, "network.json");
	bool have = access(path, F_OK) == 0;
	free(path);
	return have;
}

void network_check_drift(const struct node_paths *p)
{
	if (!network_present(p))
		return;
	int fd = lock_rules(p, LOCK_EX | LOCK_NB, NULL);
	if (fd < 0)
		return; /* a refresh is running: it checks the table itself */
	struct refresh r = { p, NULL, rules_state(p) };
	const json_t *was = json_object_get(r.st, "genid");
	uint32_t gen;
	bool quiet = !jstr(r.st, "listing") ||
		     (json_is_integer(was) && nft_genid(&gen) == 0 && (uint32_t)json_integer_value(was) == gen);
	if (!quiet) {
		struct gerr *e = NULL;
		/* the script may have changed too (a readiness refresh that failed): the
		 * refresh loads whatever differs, and calls a changed table drift */
		if (refresh_locked(&r, "readiness", NULL, &e) < 0)
			fprintf(stderr, "gitops: %s\n", e ? e->msg : "refreshing the network rules failed");
		gerr_free(e);
	}
	json_decref(r.st);
	close(fd);
}

void network_refresh_spawn(const struct node_paths *p)
{
	if (!network_present(p))
		return;
	pid_t pid = fork();
	if (pid != 0)
		return; /* the parent (a shim) reaps it with its other children */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	close_range(3, ~0U, 0);
	struct gerr *e = NULL;
	if (network_refresh(p, NULL, "readiness", NULL, &e) < 0)
		fprintf(stderr, "gitops: %s\n", e ? e->msg : "refreshing the network rules failed");
	gerr_free(e);
	_exit(0);
}

/* ---- gitops node rules ---- */

int node_rules(const struct node_opts *o, json_t **ret_report, struct gerr **err)
{
	struct node_paths p;
	if (node_paths_init(&p, o, err) < 0)
		return -1;
	int fd = lock_rules(&p, LOCK_SH, err);
	if (fd < 0) {
		node_paths_release(&p);
		return -1;
	}
	json_t *net = NULL;
	load_network(&p, &net, NULL); /* unreadable: list the default table */
	json_t *st = rules_state(&p);
	struct sbuf listing = SBUF_INIT;
	char *digest = NULL;
	bool present = false;
	int r = nft_list(net, &listing, err);
	if (r == 0)
		r = nft_table_digest_hex(net_family(net), net_table(net), &digest, &present, err);
	close(fd);
	if (r == 0) {
		const char *want = jstr(st, "listing");
		json_t *loaded = json_object_size(st) ? json_incref(st) : json_null();
		char *table = xasprintf("%s %s", net_family(net), net_table(net));
		*ret_report = json_pack("{s:b, s:s, s:s, s:s, s:o, s:b}", "network", net != NULL, "table", table,
					"listing", listing.buf, "listingDigest", digest, "loaded", loaded,
					"matches", want ? !strcmp(want, digest) : !present);
		free(table);
	}
	free(digest);
	sb_release(&listing);
	json_decref(st);
	json_decref(net);
	node_paths_release(&p);
	return r;
}

int node_refresh(const struct node_opts *o, json_t **ret_state, struct gerr **err)
{
	struct node_paths p;
	if (node_paths_init(&p, o, err) < 0)
		return -1;
	int r = network_refresh(&p, NULL, "readiness", NULL, err);
	if (r == 0 && ret_state)
		*ret_state = rules_state(&p);
	node_paths_release(&p);
	return r;
}
