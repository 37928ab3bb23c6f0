/* cluster.c: the replicated cluster state — what the controller decided (pod
 * CIDRs, ClusterIPs, NodePorts, rollout revisions, pins, the last synced commit)
 * kept on every node so that any machine with the repository and the keys can
 * take over. A JSON object of versioned entries; merging keeps, per key, the
 * entry with the higher version (ties: the larger canonical JSON), so merges
 * commute and every node converges to the same state. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

static json_int_t version_of(const json_t *entry)
{
	return json_integer_value(json_object_get(entry, "v"));
}

static bool newer(const json_t *a, const json_t *b)
{
	json_int_t va = version_of(a), vb = version_of(b);
	if (va != vb)
		return va > vb;
	if (json_equal(a, b)) /* the common case: every node holds the same entry */
		return false;
	char *ta = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	char *tb = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	bool r = strcmp(ta ? ta : "", tb ? tb : "") > 0;
	free(ta);
	free(tb);
	return r;
}

size_t cluster_merge(json_t *into, const json_t *other)
{
	const char *key;
	json_t *entry;
	size_t changed = 0;
	if (!json_is_object(into) || !json_is_object(other))
		return 0;
	json_object_foreach((json_t *)other, key, entry) {
		if (!json_is_object(entry))
			continue;
		const json_t *have = json_object_get(into, key);
		if (!have || newer(entry, have)) {
			json_object_set(into, key, entry);
			changed++;
		}
	}
	return changed;
}

const json_t *cluster_get(const json_t *cs, const char *key)
{
	const json_t *v = json_object_get(json_object_get(cs, key), "value");
	return json_is_null(v) ? NULL : v;
}

static json_int_t max_version(const json_t *cs)
{
	json_int_t max = 0;
	const char *key;
	json_t *entry;
	json_object_foreach((json_t *)cs, key, entry)
		if (version_of(entry) > max)
			max = version_of(entry);
	return max;
}

bool cluster_set(json_t *cs, const char *key, json_t *value)
{
	const json_t *have = json_object_get(cs, key);
	json_t *cur = json_object_get(have, "value");
	if ((!value && (!cur || json_is_null(cur))) || (value && cur && json_equal(cur, value))) {
		json_decref(value);
		return false;
	}
	json_t *entry = json_pack("{s:I, s:o}", "v", max_version(cs) + 1, "value", value ? value : json_null());
	json_object_set_new(cs, key, entry);
	return true;
}
