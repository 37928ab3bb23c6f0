/* cluster_state.c: the node's copy of the cluster state (store/cluster.c's versioned
 * entries), as plans bring it: a whole `cluster` merged into STATE/cluster.json, or a
 * `clusterDelta` (the entries changed since the version the node reported) kept aside
 * in STATE/cluster-delta.json until there are more than DELTA_MAX of them, so that a
 * plan changing two entries of 10,000 does not read and write them all
 * (docs/node-protocol.md, "clusterDelta").
 *
 *   STATE/cluster.json        the state, as of the last whole merge or compaction
 *   STATE/cluster-delta.json  the entries set since, with the sum the clusterHash is
 *                             made of (rt_aside_read: written after cluster.json, and
 *                             not used when it is not of that file, so a node stopped
 *                             between the two reports no clusterHash and is sent the
 *                             whole state) */
#include "runtime/internal.h"

#include <string.h>
#include <unistd.h>

#include "store/store.h"

#define DELTA_MAX 256

static json_t *aside_read(const char *state, struct api_netsum *sum)
{
	return rt_aside_read(state, "cluster.json", "cluster-delta.json", "set", sum);
}

static int aside_write(const char *state, json_t *set, const struct api_netsum *sum, struct gerr **err)
{
	return rt_aside_write(state, "cluster.json", "cluster-delta.json", "set", set, sum, err);
}

json_t *cluster_state_read(const char *state)
{
	char *path = xasprintf("%s/cluster.json", state);
	json_t *cs = access(path, F_OK) == 0 ? json_load_path(path, RUNTIME_MAX_PLAN, NULL) : NULL;
	free(path);
	if (!json_is_object(cs)) {
		json_decref(cs);
		return json_object();
	}
	json_t *a = aside_read(state, NULL);
	if (a)
		json_object_update(cs, json_object_get(a, "set"));
	json_decref(a);
	return cs;
}

char *cluster_state_hash(const char *state)
{
	struct api_netsum sum;
	json_t *a = aside_read(state, &sum);
	char *h = a ? api_netsum_digest(&sum) : NULL;
	json_decref(a);
	return h;
}

static void journal_changed(struct journal *j, const json_t *changed)
{
	char *text = json_dumps(changed, JSON_COMPACT | JSON_SORT_KEYS);
	if (text && strlen(text) < JOURNAL_BODY_MAX)
		journal_append(j, "cluster.changed", text, strlen(text), NULL, NULL);
	free(text);
}

/* A whole state merged in: written whole, with no entries aside, when it changed or
 * when the sum on disk is missing or not its own (a node stopped half-way, or one an
 * earlier binary wrote). */
static void merge_whole(const struct node_paths *p, struct journal *j, const json_t *incoming)
{
	json_t *cs = cluster_state_read(p->state), *before = json_deep_copy(cs), *changed = json_object();
	struct api_netsum have, sum;
	json_t *a = aside_read(p->state, &have);
	bool merged = cluster_merge(cs, incoming) > 0;
	const char *key;
	json_t *entry;
	memset(&sum, 0, sizeof(sum));
	json_object_foreach(cs, key, entry)
		api_netsum_entry(&sum, key, entry, 1);
	if (merged || !a || memcmp(&sum, &have, sizeof(sum))) {
		json_object_foreach(cs, key, entry)
			if (!json_equal(entry, json_object_get(before, key)))
				json_object_set(changed, key, entry);
		if (json_object_size(changed))
			journal_changed(j, changed);
		char *path = xasprintf("%s/cluster.json", p->state);
		json_t *none = json_object();
		if (json_save_atomic(path, cs, 0600, NULL) == 0)
			aside_write(p->state, none, &sum, NULL);
		json_decref(none);
		free(path);
	}
	json_decref(a);
	json_decref(changed);
	json_decref(before);
	json_decref(cs);
}

int cluster_delta_check(const struct node_paths *p, const json_t *delta, struct gerr **err)
{
	const char *base = json_string_value(json_object_get(delta, "base"));
	char *have = cluster_state_hash(p->state);
	int r = 0;
	if (!base || !json_is_object(json_object_get(delta, "set")) || !json_is_object(json_object_get(delta, "was")))
		r = gerr_set(err, GERR_FAIL, "clusterDelta: {\"base\": HASH, \"set\": {...}, \"was\": {...}} expected");
	else if (!have || strcmp(base, have))
		r = gerr_set(err, GERR_FAIL, "clusterDelta: base %s is not this node's cluster state (clusterHash %s): "
			     "send the whole state", base, have ? have : "none");
	free(have);
	return r;
}

/* The entries set aside written into cluster.json (then none are). */
static int compact(const char *state, json_t *set, struct gerr **err)
{
	char *path = xasprintf("%s/cluster.json", state);
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
	struct api_netsum sum;
	json_t *a = cluster_delta_check(p, delta, err) == 0 ? aside_read(p->state, &sum) : NULL;
	if (!a)
		return -1;
	json_t *set = json_object_get(a, "set"), *entry;
	const json_t *was = json_object_get(delta, "was");
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
		if (json_object_size(set) > DELTA_MAX)
			r = compact(p->state, set, err);
		if (r == 0)
			r = aside_write(p->state, set, &sum, err);
	}
	json_decref(a);
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
