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

/* Under the lock: compile, and load what changed. net: network.json's content
 * when the caller has it (taken), else NULL: read it. */
static int refresh_locked(struct rules_refresh *r, const char *reason, json_t *net, struct gerr **err)
{
	if (!net && !strcmp(reason, "readiness") && rules_refresh_partial(r) == 0) {
		if (json_object_get(r->st, "lastError") && json_object_del(r->st, "lastError") == 0)
			rules_save(r->p, r->st);
		return 0;
	}
	int rc = net ? 0 : network_read(r->p->state, &net, err);
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

/* ---- network.json and the Services changed since ---- */

#define OVERLAY_MAX 64 /* Services kept aside before they are spliced into network.json */

/* "NS/NAME" of a Service object (caller frees) */
static char *service_key(const json_t *svc)
{
	return xasprintf("%s/%s", jstr(svc, "namespace") ?: "", jstr(svc, "name") ?: "");
}

/* STATE/network-delta.json: the Services changed since network.json, and the sum of
 * the network's digest (rt_aside_read: none when it is not of this network.json) */
static json_t *delta_state(const struct node_paths *p, struct api_netsum *sum)
{
	return rt_aside_read(p->state, "network.json", "network-delta.json", "services", sum);
}

static int delta_state_save(const struct node_paths *p, json_t *services, const struct api_netsum *sum,
			    struct gerr **err)
{
	return rt_aside_write(p->state, "network.json", "network-delta.json", "services", services, sum, err);
}

void net_overlay_apply(json_t *network, const json_t *changes)
{
	json_t *svcs = json_object_get(network, "services"), *now;
	const char *key;
	if (!json_is_array(svcs))
		return;
	json_object_foreach((json_t *)changes, key, now) {
		const char *slash = strchr(key, '/');
		if (!slash)
			continue;
		size_t nslen = (size_t)(slash - key), at = json_array_size(svcs), i;
		bool found = false;
		json_t *s;
		json_array_foreach(svcs, i, s) {
			const char *ns = jstr(s, "namespace") ?: "", *name = jstr(s, "name") ?: "";
			int c = strncmp(ns, key, nslen);
			if (c == 0 && ns[nslen])
				c = 1;
			if (c == 0)
				c = strcmp(name, slash + 1);
			if (c == 0)
				found = true;
			if (c >= 0) {
				at = i;
				break;
			}
		}
		if (found && json_is_object(now))
			json_array_set(svcs, at, now);
		else if (found)
			json_array_remove(svcs, at);
		else if (json_is_object(now))
			json_array_insert(svcs, at, now);
	}
}

int network_read(const char *state, json_t **ret, struct gerr **err)
{
	char *path = xasprintf("%s/network.json", state);
	int rc = 0;
	*ret = NULL;
	if (access(path, F_OK) == 0 && !(*ret = json_load_path(path, RUNTIME_MAX_PLAN, err)))
		rc = -1;
	json_t *ds = *ret ? rt_aside_read(state, "network.json", "network-delta.json", "services", NULL) : NULL;
	if (ds)
		net_overlay_apply(*ret, json_object_get(ds, "services"));
	json_decref(ds);
	free(path);
	return rc;
}

char *network_identity(const struct node_paths *p)
{
	char *npath = net_state_file(p, "network.json"), *dpath = net_state_file(p, "network-delta.json");
	char *a = rules_file_id(npath), *b = rules_file_id(dpath);
	char *id = a ? xasprintf("%s+%s", a, b ?: "-") : NULL;
	free(b);
	free(a);
	free(dpath);
	free(npath);
	return id;
}

int network_save(const struct node_paths *p, const json_t *network, struct gerr **err)
{
	if (!json_is_object(network))
		return 0;
	/* compact with sorted keys: equal networks are equal bytes, compared without
	 * parsing the file (10,000 Services: 3 MB), and Services changed since are
	 * spliced into the text (network_splice.c) */
	char *text = json_dumps(network, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return gerr_set(err, GERR_FAIL, "network: cannot encode JSON");
	char *path = net_state_file(p, "network.json");
	struct sbuf have = SBUF_INIT;
	size_t len = strlen(text);
	json_t *ds = delta_state(p, NULL);
	bool same = ds && !json_object_size(json_object_get(ds, "services")) && sb_read_file(&have, path, len + 1, NULL) == 0 &&
		    have.len == len && !memcmp(have.buf, text, len);
	int r = 0;
	if (!same) {
		struct api_netsum sum;
		api_netsum_of(network, &sum);
		json_t *none = json_object();
		r = write_file_atomic(path, text, len, 0644, err);
		if (r == 0)
			r = delta_state_save(p, none, &sum, err);
		json_decref(none);
	}
	json_decref(ds);
	sb_release(&have);
	free(path);
	free(text);
	return r;
}

char *network_digest(const struct node_paths *p)
{
	struct api_netsum sum;
	json_t *ds = delta_state(p, &sum);
	char *d = ds ? api_netsum_digest(&sum) : NULL;
	json_decref(ds);
	return d;
}

int network_delta_check(const struct node_paths *p, const json_t *delta, struct gerr **err)
{
	const char *base = jstr(delta, "base");
	char *have = network_digest(p);
	int r = 0;
	const json_t *pods = json_object_get(delta, "pods");
	if (!json_is_object(delta) || !base || !json_is_object(json_object_get(delta, "services")) ||
	    !json_is_object(json_object_get(delta, "was")) || (pods && !json_is_array(pods)))
		r = gerr_set(err, GERR_FAIL, "networkDelta: {\"base\": DIGEST, \"services\": {...}, \"was\": {...}} expected");
	else if (!have || strcmp(base, have))
		r = gerr_set(err, GERR_FAIL, "networkDelta: base %s is not this node's network (networkDigest %s): "
			     "send the whole network", base, have ? have : "none");
	free(have);
	return r;
}

/* ---- a plan's networkDelta ---- */

/* Every changed Service, with what it was: from the delta ("was", which the base's
 * digest vouches for), checked against the Services changed since network.json where
 * the node has them. The digest updated; false with err on a malformed delta. */
static int delta_changes(const json_t *delta, json_t *overlay, struct api_netsum *sum, json_t *olds, json_t *news,
			 bool *pairs, struct gerr **err)
{
	const json_t *was = json_object_get(delta, "was"), *now;
	const char *key;
	json_object_foreach(json_object_get(delta, "services"), key, now) {
		const json_t *old = json_object_get(was, key), *kept = json_object_get(overlay, key);
		char *k = NULL;
		bool ok = old && (json_is_null(old) || json_is_object(old)) && (json_is_null(now) || json_is_object(now)) &&
			  (!kept || json_equal(kept, old));
		if (ok && json_is_object(now))
			ok = !strcmp(k = service_key(now), key);
		if (ok && json_is_object(old)) {
			free(k);
			ok = !strcmp(k = service_key(old), key);
		}
		free(k);
		if (!ok)
			return gerr_set(err, GERR_FAIL, "networkDelta: %s: \"was\" and \"services\" do not make a change of "
				       "this node's network: send the whole network", key);
		api_netsum_service(sum, old, -1);
		api_netsum_service(sum, now, 1);
		json_object_set(overlay, key, (json_t *)now);
		if (json_is_object(old) && json_is_object(now)) {
			json_array_append(olds, (json_t *)old);
			json_array_append(news, (json_t *)now);
		} else {
			*pairs = false;
		}
	}
	return 0;
}

/* The Services kept aside spliced into network.json (then none are): once every
 * OVERLAY_MAX of them, ~10 ms at 10,000 Services. */
static int overlay_compact(struct rules_refresh *r, json_t *ds, struct gerr **err)
{
	char *path = net_state_file(r->p, "network.json");
	struct sbuf have = SBUF_INIT, now = SBUF_INIT;
	struct net_change *ch = NULL;
	size_t n = 0;
	int rc = sb_read_file(&have, path, RUNTIME_MAX_PLAN, err);
	if (rc == 0 && net_splice_services(have.buf, have.len, json_object_get(ds, "services"), &now, &ch, &n, NULL) < 0) {
		/* not of the layout the splice knows (a controller that sends its Services
		 * in another order): parsed, changed and dumped */
		json_t *net = json_loadb(have.buf, have.len, 0, NULL);
		char *text = NULL;
		if (net) {
			net_overlay_apply(net, json_object_get(ds, "services"));
			text = json_dumps(net, JSON_COMPACT | JSON_SORT_KEYS);
		}
		sb_reset(&now);
		if (text)
			sb_add(&now, text, strlen(text));
		else
			rc = gerr_set(err, GERR_FAIL, "network.json: not JSON");
		free(text);
		json_decref(net);
	}
	if (rc == 0)
		rc = write_file_atomic(path, now.buf, now.len, 0644, err);
	if (rc == 0)
		json_object_clear(json_object_get(ds, "services"));
	free(ch);
	sb_release(&now);
	sb_release(&have);
	free(path);
	return rc;
}

/* Under the lock: the changes kept (network-delta.json), then the rules of the changed
 * Services alone when they can be, else the whole refresh. */
static int delta_locked(struct rules_refresh *r, const json_t *delta, struct gerr **err)
{
	char *old_id = network_identity(r->p);
	struct api_netsum sum;
	json_t *ds = delta_state(r->p, &sum), *olds = json_array(), *news = json_array();
	bool pairs = true;
	int rc = network_delta_check(r->p, delta, err);   /* no ds: no digest, refused */
	if (rc == 0)
		rc = delta_changes(delta, json_object_get(ds, "services"), &sum, olds, news, &pairs, err);
	if (rc == 0 && json_object_size(json_object_get(ds, "services")) > OVERLAY_MAX)
		rc = overlay_compact(r, ds, err);
	if (rc == 0)
		rc = delta_state_save(r->p, json_object_get(ds, "services"), &sum, err);
	if (rc < 0)
		goto out;
	if (!pairs || rules_refresh_services(r, old_id, olds, news, json_object_get(delta, "pods")))
		rc = refresh_locked(r, "plan", NULL, err);
	else if (json_object_get(r->st, "lastError") && json_object_del(r->st, "lastError") == 0)
		rules_save(r->p, r->st);
out:
	json_decref(news);
	json_decref(olds);
	json_decref(ds);
	free(old_id);
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
	network_read(p.state, &net, NULL); /* unreadable: list the default table */
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
	rt_crypto_init();
	struct node_paths p;
	if (node_paths_init(&p, o, err) < 0)
		return -1;
	int r = network_refresh(&p, NULL, "readiness", NULL, err);
	if (r == 0 && ret_state)
		*ret_state = rules_state(&p);
	node_paths_release(&p);
	return r;
}
