/* network.c: the node's Services and NetworkPolicy (issue 5, docs/node-protocol.md
 * "The network") — the plan's `network` kept as STATE/network.json, filled in with
 * what only this node knows (its addresses, its pods' IPs and readiness:
 * network_fill.c), compiled by netpol_compile() and loaded by the GPL applier
 * `gitops-nft`, one transaction each time: the change from the script loaded last
 * (netpol_script_delta) when the kernel still has exactly that table, else the whole
 * table (network_load.c); a readiness change alone compiles only its Services
 * (network_index.c). gitops never links libnftables: gitops-nft is a child process
 * fed on stdin (docs/licensing.md). Here: one refresh at a time, and the entry points.
 *
 * Files (rules.json and rules.nft: network_load.c; rules-index: network_index.c):
 *   STATE/network.json  the last plan's `network`, as the controller sent it (compact,
 *                       keys sorted: an unchanged network is found equal by its bytes)
 *   STATE/rules.lock    flock: one refresh at a time on the node
 *   STATE/rules.dirty   "refresh, please": made by whoever wants a refresh before it
 *                       waits for the lock; the holder takes it away before reading
 *                       the pods' state, so a burst of readiness changes waiting
 *                       behind one refresh costs one more refresh, not one each
 */
#include "runtime/internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "netpol/netpol.h"

#define LOCK_TIMEOUT_S 120

/* ---- small helpers ---- */

char *net_state_file(const struct node_paths *p, const char *name)
{
	return xasprintf("%s/%s", p->state, name);
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- refresh ---- */

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
	char *path = net_state_file(p, "network.json");
	int rc = 0;
	*ret = NULL;
	if (access(path, F_OK) == 0 && !(*ret = json_load_path(path, RUNTIME_MAX_PLAN, err)))
		rc = -1;
	free(path);
	return rc;
}

/* Under the lock: compile, and load what changed. net: network.json's content
 * when the caller has it (taken), else NULL: read it. */
static int refresh_locked(struct rules_refresh *r, const char *reason, json_t *net, struct gerr **err)
{
	if (!net && !strcmp(reason, "readiness") && rules_refresh_partial(r) == 0) {
		if (json_object_get(r->st, "lastError") && json_object_del(r->st, "lastError") == 0)
			rules_save(r->p, r->st);
		return 0;
	}
	int rc = net ? 0 : load_network(r->p, &net, err);
	if (rc < 0)
		rules_record_failure(r, reason, err ? *err : NULL);
	if (!net)
		return rc;
	json_t *filled = net, *local = network_fill(r->p, filled);
	struct sbuf script = SBUF_INIT;
	char *digest = NULL;
	rc = netpol_compile(filled, &script, err);
	if (rc < 0)
		gerr_wrap(err, "compiling the network rules");
	else {
		digest = rt_sha256_hex(script.buf, script.len);
		struct rules_load l = { filled, &script, digest, reason, false };
		rc = rules_load_changes(r, &l, err);
		reason = l.reason;
	}
	if (rc < 0)
		rules_record_failure(r, reason, err ? *err : NULL);
	else {
		if (json_object_get(r->st, "lastError") && json_object_del(r->st, "lastError") == 0)
			rules_save(r->p, r->st);
		rules_index_save(r->p, filled, local, jstr(r->st, "digest"));
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
	char *path = net_state_file(p, "rules.lock");
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
	char *path = net_state_file(p, "rules.dirty");
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	free(path);
}

static bool take_dirty(const struct node_paths *p)
{
	char *path = net_state_file(p, "rules.dirty");
	bool was = unlink(path) == 0;
	free(path);
	return was;
}

int network_refresh(const struct node_paths *p, struct journal *j, const char *reason,
		    json_t *saved, struct gerr **err)
{
	if (!network_present(p))
		return 0;
	mark_dirty(p);
	int fd = lock_rules(p, LOCK_EX, err);
	if (fd < 0)
		return -1;
	int rc = 0;
	while (take_dirty(p)) { /* else the refresh before us saw what we came for */
		struct rules_refresh r = { p, j, rules_state(p) };
		if (err)
			gerr_clear(err);
		/* the first pass compiles what the caller just saved (filled in where it
		 * is: 10,000 Services copied cost ~30 ms), a later one what a concurrent
		 * refresh may have saved since */
		rc = refresh_locked(&r, reason, saved ? json_incref(saved) : NULL, err);
		saved = NULL;
		json_decref(r.st);
	}
	close(fd);
	return rc;
}

/* network.json and its digest. The digest goes first and comes back last: a node
 * that stops in between has none, and is sent the whole network, never a delta onto
 * a base it does not have. same: network.json has these bytes already (the digest
 * is written when missing). */
static int network_write(const struct node_paths *p, const char *text, size_t len, bool same,
			 struct gerr **err)
{
	char *path = net_state_file(p, "network.json"), *dpath = net_state_file(p, "network.digest");
	char *digest = NULL;
	int r = 0;
	if (!same) {
		unlink(dpath);
		r = write_file_atomic(path, text, len, 0644, err);
	}
	if (r == 0 && (!same || access(dpath, F_OK) < 0)) {
		digest = rt_sha256_hex(text, len);
		r = write_file_atomic(dpath, digest, strlen(digest), 0644, err);
	}
	free(digest);
	free(dpath);
	free(path);
	return r;
}

int network_save(const struct node_paths *p, const json_t *network, struct gerr **err)
{
	if (!json_is_object(network))
		return 0;
	/* compact with sorted keys: equal networks are equal bytes, compared without
	 * parsing the file (10,000 Services: 3 MB), and a delta is spliced into the text
	 * (network_splice.c) */
	char *text = json_dumps(network, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return gerr_set(err, GERR_FAIL, "network: cannot encode JSON");
	char *path = net_state_file(p, "network.json");
	struct sbuf have = SBUF_INIT;
	size_t len = strlen(text);
	bool same = access(path, F_OK) == 0 && sb_read_file(&have, path, len + 1, NULL) == 0 && have.len == len &&
		    !memcmp(have.buf, text, len);
	int r = network_write(p, text, len, same, err);
	sb_release(&have);
	free(path);
	free(text);
	return r;
}

char *network_digest(const struct node_paths *p)
{
	char *path = net_state_file(p, "network.digest");
	struct sbuf d = SBUF_INIT;
	bool ok = network_present(p) && sb_read_file(&d, path, 128, NULL) == 0 && d.len == 64;
	free(path);
	if (!ok)
		sb_release(&d);
	return ok ? sb_detach(&d, NULL) : NULL;
}

int network_delta_check(const struct node_paths *p, const json_t *delta, struct gerr **err)
{
	const char *base = jstr(delta, "base");
	char *have = network_digest(p);
	int r = 0;
	if (!json_is_object(delta) || !base || !json_is_object(json_object_get(delta, "services")))
		r = gerr_set(err, GERR_FAIL, "networkDelta: {\"base\": DIGEST, \"services\": {...}} expected");
	else if (!have || strcmp(base, have))
		r = gerr_set(err, GERR_FAIL, "networkDelta: base %s is not this node's network (networkDigest %s): "
			     "send the whole network", base, have ? have : "none");
	free(have);
	return r;
}

/* ---- a plan's networkDelta ---- */

/* The changed Services' old objects parsed from their text, and the new ones, in
 * pairs; false when one was added or removed (the whole compile's). */
static bool delta_pairs(const char *text, const struct net_change *ch, size_t n, json_t *olds, json_t *news)
{
	for (size_t i = 0; i < n; i++) {
		if (!ch[i].now || ch[i].old_end == 0)
			return false;
		json_t *old = json_loadb(text + ch[i].old_start, ch[i].old_end - ch[i].old_start, 0, NULL);
		if (!old)
			return false;
		json_array_append_new(olds, old);
		json_array_append(news, (json_t *)ch[i].now);
	}
	return true;
}

/* Under the lock: the splice saved, then the rules of the changed Services alone
 * when they can be, else the whole refresh (which parses network.json). */
static int delta_locked(struct rules_refresh *r, const json_t *delta, struct gerr **err)
{
	char *path = net_state_file(r->p, "network.json"), *old_id = rules_file_id(path);
	struct sbuf have = SBUF_INIT, now = SBUF_INIT;
	struct net_change *ch = NULL;
	size_t n = 0;
	json_t *olds = json_array(), *news = json_array();
	int rc = network_delta_check(r->p, delta, err);
	if (rc == 0)
		rc = sb_read_file(&have, path, RUNTIME_MAX_PLAN, err);
	if (rc == 0)
		rc = net_splice_services(have.buf, have.len, json_object_get(delta, "services"), &now, &ch, &n, err);
	if (rc == 0)
		rc = network_write(r->p, now.buf, now.len, false, err);
	if (rc < 0)
		goto out;
	bool pairs = delta_pairs(have.buf, ch, n, olds, news);
	sb_release(&now);    /* 3 MB each: the rules' buffers reuse them */
	sb_release(&have);
	if (!pairs || rules_refresh_services(r, old_id, olds, news))
		rc = refresh_locked(r, "plan", NULL, err);
	else if (json_object_get(r->st, "lastError") && json_object_del(r->st, "lastError") == 0)
		rules_save(r->p, r->st);
out:
	json_decref(news);
	json_decref(olds);
	free(ch);
	sb_release(&now);
	sb_release(&have);
	free(old_id);
	free(path);
	return rc;
}

int network_apply_delta(const struct node_paths *p, struct journal *j, const json_t *delta, struct gerr **err)
{
	int fd = lock_rules(p, LOCK_EX, err);
	if (fd < 0)
		return -1;
	/* rules.dirty is left alone: a readiness refresh waiting for the lock still
	 * runs after us (the partial path does not read the pods' readiness) */
	struct rules_refresh r = { p, j, rules_state(p) };
	int rc = delta_locked(&r, delta, err);
	json_decref(r.st);
	close(fd);
	return rc;
}

bool network_present(const struct node_paths *p)
{
	char *path = net_state_file(p, "network.json");
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
	struct rules_refresh r = { p, NULL, rules_state(p) };
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
	int r = rules_nft_list(net, &listing, err);
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
