/* network_load.c: loading the node's rules (network.c) — the GPL applier gitops-nft
 * as a child process fed on stdin (never linked: docs/licensing.md), what was loaded
 * last, and the change onto it: nothing, a delta, or the whole table.
 *
 * Files:
 *   STATE/rules.json    what was loaded last: {"digest": sha256 of the script,
 *                       "listing": the table's digest (below) right after the load,
 *                       "genid": the nftables generation then, "services",
 *                       "policies", "time", "lastError"}
 *   STATE/rules.nft     that script, the base of the next delta; used only while its
 *                       sha256 is rules.json's "digest" (not hashed again while it is
 *                       the file written then: rules.json's "scriptFile")
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

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netpol/netpol.h"

#define NFT_LIST_MAX (256u << 20)
#define NFT_TIMEOUT_MS (120 * 1000)
#define NFT_MESSAGE_MAX 4000

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- gitops-nft ---- */

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

const char *net_family(const json_t *net)
{
	return jstr(net, "family") ? jstr(net, "family") : "ip";
}

const char *net_table(const json_t *net)
{
	return jstr(net, "table") ? jstr(net, "table") : "gitops";
}

int rules_nft_list(const json_t *net, struct sbuf *out, struct gerr **err)
{
	const char *args[] = { "--list", net_family(net), net_table(net), NULL };
	return nft_run(args, NULL, 0, out, err);
}

/* ---- rules.json and the journal ---- */

json_t *rules_state(const struct node_paths *p)
{
	char *path = net_state_file(p, "rules.json");
	json_t *st = access(path, F_OK) == 0 ? json_load_path(path, 1 << 20, NULL) : NULL;
	free(path);
	if (!json_is_object(st)) {
		json_decref(st);
		st = json_object();
	}
	/* no rules.nft: written before the table's digest was read over netlink (its
	 * "listing" is of another kind); without the genid the next check reads the table
	 * and reloads it once, instead of trusting an unchanged generation */
	path = net_state_file(p, "rules.nft");
	if (access(path, F_OK) < 0)
		json_object_del(st, "genid");
	free(path);
	return st;
}

void rules_save(const struct node_paths *p, const json_t *st)
{
	char *path = net_state_file(p, "rules.json");
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

/* A failure is journalled once, not on every retry of the same failure. */
void rules_record_failure(struct rules_refresh *r, const char *reason, const struct gerr *e)
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
void rules_save_nosync(const char *path, const char *buf, size_t len)
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

/* rules.nft, and its identity in st's "scriptFile": a script read back from the file
 * it was written to is not hashed again (a machine that stopped since has no table
 * either, so a torn file is never a delta's base: rules_check_table fails first). */
static void script_save(const struct node_paths *p, const struct sbuf *script, json_t *st)
{
	char *path = net_state_file(p, "rules.nft");
	rules_save_nosync(path, script->buf, script->len);
	char *id = rules_file_id(path);
	if (id)
		json_object_set_new(st, "scriptFile", json_string(id));
	else
		json_object_del(st, "scriptFile");
	free(id);
	free(path);
}

/* The script loaded last, into `old`: NULL, or why there is none to compare with. */
const char *rules_script_last(struct rules_refresh *r, struct sbuf *old)
{
	const char *want = jstr(r->st, "digest");
	if (!want || !jstr(r->st, "listing"))
		return "nothing was loaded before";
	char *path = net_state_file(r->p, "rules.nft");
	int rc = sb_read_file(old, path, SCRIPT_MAX, NULL);
	char *id = rc == 0 && jstr(r->st, "scriptFile") ? rules_file_id(path) : NULL;
	free(path);
	if (rc < 0)
		return "the script loaded last is missing";
	bool same = id && !strcmp(id, jstr(r->st, "scriptFile"));
	free(id);
	if (!same) {
		char *have = rt_sha256_hex(old->buf, old->len);
		same = !strcmp(have, want);
		free(have);
	}
	return same ? NULL : "the script loaded last is not the one recorded";
}

/* ---- loading ---- */

/* 0: the table is what was loaded (genid recorded again), 1: it drifted (ret_found:
 * its digest now), -1: it cannot be read. */
int rules_check_table(struct rules_refresh *r, const json_t *net, char **ret_found, struct gerr **err)
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
static void record_load(struct rules_refresh *r, const struct rules_load *l, const char *listing, bool have_gen,
			uint32_t gen, const char *fallback)
{
	char *now = rfc3339_now();
	json_t *was = r->st;
	r->st = json_pack("{s:s, s:s, s:s}", "digest", l->digest, "listing", listing, "time", now);
	script_save(r->p, l->script, r->st);
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

static int load_whole(struct rules_refresh *r, const struct rules_load *l, const char *fallback, struct gerr **err)
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
int rules_load_delta(struct rules_refresh *r, const struct rules_load *l, const struct sbuf *delta,
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
static void record_text(struct rules_refresh *r, const struct rules_load *l)
{
	script_save(r->p, l->script, r->st);
	json_object_set_new(r->st, "digest", json_string(l->digest));
	set_counts(r->st, l->net, r->st);
	rules_save(r->p, r->st);
}

/* Loads what changed: nothing when the script is the one loaded last and the table
 * is still what it loaded; the delta from the last script when the table is still
 * that one; else the whole table. */
int rules_load_changes(struct rules_refresh *r, struct rules_load *l, struct gerr **err)
{
	bool same = jstr(r->st, "digest") && !strcmp(l->digest, jstr(r->st, "digest"));
	struct sbuf old = SBUF_INIT, delta = SBUF_INIT;
	struct strvec touched = STRVEC_INIT;
	char *found = NULL, *failed = NULL;
	const char *why = same ? NULL : rules_script_last(r, &old);
	int rc = why ? 0 : rules_check_table(r, l->net, &found, err);
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
	if (!why && rules_load_delta(r, l, &delta, &touched, &derr) == 0)
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
