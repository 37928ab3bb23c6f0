/* cluster_state.c: the node's copy of the cluster state (store/cluster.c's versioned
 * entries), as plans bring it: a whole `cluster` merged into STATE/cluster.json, or a
 * `clusterDelta` (the entries changed since the version the node reported) kept aside
 * in STATE/cluster-delta.json until there are more than DELTA_MAX of them, so that a
 * plan changing two entries of 10,000 does not read and write them all
 * (docs/node-protocol.md, "clusterDelta").
 *
 *   STATE/cluster.json        the state, as of the last whole merge or compaction
 *   STATE/cluster-delta.json  {"base": cluster.json's identity, "sum": the digest's
 *                             sum (api_netsum_format), "set": {KEY: entry}}: the
 *                             entries set since; not of this cluster.json: none
 *   STATE/cluster.hash        clusterHash (api_cluster_digest of the whole), removed
 *                             before either file changes and written after: a node
 *                             stopped between has none, and is sent the whole state */
#include "runtime/internal.h"

#include <string.h>
#include <unistd.h>

#include "store/store.h"

#define DELTA_MAX 256

static char *state_file(const char *state, const char *name)
{
	return xasprintf("%s/%s", state, name);
}

/* cluster-delta.json when it belongs to cluster.json as it is, else NULL */
static json_t *delta_read(const char *state)
{
	char *path = state_file(state, "cluster.json"), *dpath = state_file(state, "cluster-delta.json");
	char *id = rules_file_id(path);
	json_t *d = id && access(dpath, F_OK) == 0 ? json_load_path(dpath, RUNTIME_MAX_PLAN, NULL) : NULL;
	struct api_netsum sum;
	const char *base = json_string_value(json_object_get(d, "base"));
	if (!json_is_object(json_object_get(d, "set")) || !base || strcmp(base, id) ||
	    api_netsum_parse(json_string_value(json_object_get(d, "sum")), &sum) < 0) {
		json_decref(d);
		d = NULL;
	}
	free(id);
	free(dpath);
	free(path);
	return d;
}

json_t *cluster_state_read(const char *state)
{
	char *path = state_file(state, "cluster.json");
	json_t *cs = access(path, F_OK) == 0 ? json_load_path(path, RUNTIME_MAX_PLAN, NULL) : NULL;
	free(path);
	if (!json_is_object(cs)) {
		json_decref(cs);
		return json_object();
	}
	json_t *d = delta_read(state);
	if (d)
		json_object_update(cs, json_object_get(d, "set"));
	json_decref(d);
	return cs;
}

char *cluster_state_hash(const char *state)
{
	char *path = state_file(state, "cluster.hash");
	struct sbuf h = SBUF_INIT;
	bool ok = sb_read_file(&h, path, 128, NULL) == 0 && h.len == 64;
	free(path);
	if (!ok)
		sb_release(&h);
	return ok ? sb_detach(&h, NULL) : NULL;
}

static void hash_forget(const char *state)
{
	char *path = state_file(state, "cluster.hash");
	unlink(path);
	free(path);
}

/* cluster-delta.json with `set` onto cluster.json as it is now, then cluster.hash. */
static int delta_write(const char *state, json_t *set, const struct api_netsum *sum, struct gerr **err)
{
	char *path = state_file(state, "cluster.json"), *dpath = state_file(state, "cluster-delta.json");
	char *hpath = state_file(state, "cluster.hash");
	char *id = rules_file_id(path), *text = api_netsum_format(sum), *hash = api_netsum_digest(sum);
	json_t *d = json_pack("{s:s, s:s, s:O}", "base", id ?: "", "sum", text, "set", set);
	int r = json_save_atomic(dpath, d, 0600, err);
	if (r == 0)
		r = write_file_atomic(hpath, hash, strlen(hash), 0600, err);
	json_decref(d);
	free(hash);
	free(text);
	free(id);
	free(hpath);
	free(dpath);
	free(path);
	return r;
}

static void journal_changed(struct journal *j, const json_t *changed)
{
	char *text = json_dumps(changed, JSON_COMPACT | JSON_SORT_KEYS);
	if (text && strlen(text) < JOURNAL_BODY_MAX)
		journal_append(j, "cluster.changed", text, strlen(text), NULL, NULL);
	free(text);
}

/* A whole state merged in: written whole, with no entries aside. */
static void merge_whole(const struct node_paths *p, struct journal *j, const json_t *incoming)
{
	json_t *cs = cluster_state_read(p->state), *before = json_deep_copy(cs), *changed = json_object();
	char *have = cluster_state_hash(p->state);
	json_t *d = have ? delta_read(p->state) : NULL;
	bool merged = cluster_merge(cs, incoming) > 0;
	const char *key;
	json_t *entry;
	struct api_netsum sum;
	memset(&sum, 0, sizeof(sum));
	json_object_foreach(cs, key, entry)
		api_netsum_entry(&sum, key, entry, 1);
	char *hash = api_netsum_digest(&sum);
	/* written when it changed, or when its hash is missing or not its own (a node
	 * stopped half-way, or one that an earlier binary wrote) */
	if (merged || !d || strcmp(hash, have)) {
		json_object_foreach(cs, key, entry)
			if (!json_equal(entry, json_object_get(before, key)))
				json_object_set(changed, key, entry);
		if (json_object_size(changed))
			journal_changed(j, changed);
		char *path = state_file(p->state, "cluster.json");
		hash_forget(p->state);
		json_t *none = json_object();
		if (json_save_atomic(path, cs, 0600, NULL) == 0)
			delta_write(p->state, none, &sum, NULL);
		json_decref(none);
		free(path);
	}
	free(hash);
	json_decref(d);
	free(have);
	json_decref(changed);
	json_decref(before);
	json_decref(cs);
}

int cluster_delta_check(const struct node_paths *p, const json_t *delta, struct gerr **err)
{
	const char *base = json_string_value(json_object_get(delta, "base"));
	char *have = cluster_state_hash(p->state);
	json_t *d = have ? delta_read(p->state) : NULL;
	int r = 0;
	if (!base || !json_is_object(json_object_get(delta, "set")) || !json_is_object(json_object_get(delta, "was")))
		r = gerr_set(err, GERR_FAIL, "clusterDelta: {\"base\": HASH, \"set\": {...}, \"was\": {...}} expected");
	else if (!have || !d || strcmp(base, have))
		r = gerr_set(err, GERR_FAIL, "clusterDelta: base %s is not this node's cluster state (clusterHash %s): "
			     "send the whole state", base, have && d ? have : "none");
	json_decref(d);
	free(have);
	return r;
}

/* The entries set aside written into cluster.json (then none are). */
static int compact(const char *state, json_t *set, struct gerr **err)
{
	char *path = state_file(state, "cluster.json");
	json_t *cs = json_load_path(path, RUNTIME_MAX_PLAN, err);
	int r = -1;
	if (json_is_object(cs)) {
		json_object_update(cs, set);
		r = json_save_atomic(path, cs, 0600, err);
		if (r == 0)
			json_object_clear(set);
	}
	json_decref(cs);
	free(path);
	return r;
}

static int apply_delta(const struct node_paths *p, struct journal *j, const json_t *delta, struct gerr **err)
{
	if (cluster_delta_check(p, delta, err) < 0)
		return -1;
	json_t *d = delta_read(p->state), *set = json_object_get(d, "set"), *entry;
	const json_t *was = json_object_get(delta, "was");
	struct api_netsum sum;
	api_netsum_parse(json_string_value(json_object_get(d, "sum")), &sum);
	const char *key;
	int r = 0;
	json_object_foreach(json_object_get(delta, "set"), key, entry) {
		const json_t *old = json_object_get(was, key), *kept = json_object_get(set, key);
		if (!json_is_object(entry) || !old || (!json_is_null(old) && !json_is_object(old)) ||
		    (kept && !json_equal(kept, old))) {
			r = gerr_set(err, GERR_FAIL, "clusterDelta: %s: \"was\" and \"set\" do not make a change of this "
				     "node's cluster state: send the whole state", key);
			break;
		}
	}
	if (r == 0 && json_object_size(json_object_get(delta, "set"))) {
		json_object_foreach(json_object_get(delta, "set"), key, entry) {
			api_netsum_entry(&sum, key, json_object_get(was, key), -1);
			api_netsum_entry(&sum, key, entry, 1);
			json_object_set(set, key, entry);
		}
		journal_changed(j, json_object_get(delta, "set"));
		hash_forget(p->state);
		if (json_object_size(set) > DELTA_MAX)
			r = compact(p->state, set, err);
		if (r == 0)
			r = delta_write(p->state, set, &sum, err);
	}
	json_decref(d);
	return r;
}

int cluster_record(const struct node_paths *p, struct journal *j, const json_t *plan, struct gerr **err)
{
	const json_t *delta = json_object_get(plan, "clusterDelta");
	if (delta)
		return apply_delta(p, j, delta, err);
	if (json_is_object(json_object_get(plan, "cluster")))
		merge_whole(p, j, json_object_get(plan, "cluster"));
	return 0;
}
