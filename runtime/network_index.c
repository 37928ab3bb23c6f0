/* network_index.c: a readiness change without compiling everything (network.c).
 * A local pod's readiness changes only the Services that have it as an endpoint.
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
#include "runtime/internal.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netpol/netpol.h"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

char *rules_file_id(const char *path)
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
		rules_save_nosync(path, text, strlen(text));
	free(text);
}

/* The pods of the network at the endpoints of svcs, when a named targetPort needs them. */
static json_t *needed_pods(const json_t *net, const json_t *svcs)
{
	json_t *ips = json_object(), *sv;
	size_t i;
	json_array_foreach(svcs, i, sv)
		api_net_named_ips(sv, ips);
	json_t *out = api_net_pods_at(json_object_get(net, "pods"), ips);
	json_decref(ips);
	return out;
}

/* DIR/UID.json for each of `pods`: the filled Services that have it as an endpoint. */
static void index_pods(const char *dir, const json_t *filled, const json_t *pods)
{
	json_t *by_uid = json_object(), *sv, *ep, *v;
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
	mkdir(dir, 0700);
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
	const char *uid;
	json_object_foreach((json_t *)pods, uid, v) {
		json_t *svcs = json_object_get(by_uid, uid);
		json_t *one = json_pack("{s:o, s:o}", "services", svcs ? json_incref(svcs) : json_array(), "pods",
					needed_pods(filled, svcs));
		char *f = xasprintf("%s/%s.json", dir, uid);
		save_json_nosync(f, one);
		free(f);
		json_decref(one);
	}
	json_decref(by_uid);
}

/* Every local pod with an IP gets its file, with no Services too: a missing one means
 * a torn index, not a pod without Services. Nothing is written when the index would
 * say what it says (the same script, network.json, settings and local pods). */
void rules_index_save(const struct node_paths *p, const json_t *filled, const json_t *local, const char *script)
{
	char *dir = net_state_file(p, "rules-index"), *path = net_state_file(p, "rules-index.json");
	char *id = network_identity(p);
	json_t *pods = json_object(), *settings = json_object(), *lp, *v;
	const char *uid, *key;
	json_object_foreach((json_t *)local, uid, lp)
		if (jstr(lp, "ip"))
			json_object_set_new(pods, uid, json_pack("{s:O, s:O}", "ip", json_object_get(lp, "ip"), "ready",
								 json_object_get(lp, "ready")));
	json_object_foreach((json_t *)filled, key, v)
		if (strcmp(key, "services") && strcmp(key, "pods") && strcmp(key, "policies") && strcmp(key, "namespaces"))
			json_object_set(settings, key, v);
	json_t *g = json_pack("{s:s, s:s?, s:o, s:o}", "script", script, "network", id, "settings", settings, "pods", pods);
	char *text = json_dumps(g, JSON_COMPACT);
	struct sbuf have = SBUF_INIT;
	size_t len = text ? strlen(text) : 0;
	if (text && (sb_read_file(&have, path, len + 1, NULL) < 0 || have.len != len || memcmp(have.buf, text, len))) {
		unlink(path);      /* stale from here on */
		index_pods(dir, filled, pods);
		rules_save_nosync(path, text, len);
	}
	sb_release(&have);
	free(text);
	json_decref(g);
	free(id);
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
		json_t *one = access(path, F_OK) == 0 ? json_load_path(path, RUNTIME_MAX_PLAN, NULL) : NULL;
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

/* rules-index.json when it describes the table loaded last and network.json as `id`
 * names it, else NULL. */
static json_t *index_load(struct rules_refresh *r, const char *gpath, const char *id)
{
	json_t *g = access(gpath, F_OK) == 0 ? json_load_path(gpath, RUNTIME_MAX_PLAN, NULL) : NULL;
	if (!json_is_object(json_object_get(g, "settings")) || !id || !jstr(g, "network") ||
	    strcmp(id, jstr(g, "network")) || !jstr(g, "script") || !jstr(r->st, "digest") ||
	    strcmp(jstr(g, "script"), jstr(r->st, "digest"))) {
		json_decref(g);
		return NULL;
	}
	return g;
}

/* The change from old_in to new_in (partial inputs with the index's settings) made
 * onto the table loaded last, which must still be in the kernel; g's "script" then
 * names the script loaded. 0, or 1: the whole compile must do it. */
static int partial_load(struct rules_refresh *r, json_t *g, const json_t *old_in, const json_t *new_in,
			const char *reason)
{
	const json_t *settings = json_object_get(g, "settings");
	struct sbuf old = SBUF_INIT, delta = SBUF_INIT, after = SBUF_INIT;
	struct strvec touched = STRVEC_INIT;
	char *digest = NULL, *found = NULL;
	int rc = 1;
	if (rules_script_last(r, &old) || rules_check_table(r, settings, &found, NULL) ||
	    netpol_partial_delta(old.buf, old_in, new_in, &delta, &after, &touched, NULL) != 0)
		goto out;
	if (delta.len) {
		digest = rt_sha256_hex(after.buf, after.len);
		struct rules_load l = { settings, &after, digest, reason, true };
		if (rules_load_delta(r, &l, &delta, &touched, NULL) < 0)
			goto out;
		json_object_set_new(g, "script", json_string(digest));
	}
	rc = 0;
out:
	strvec_clear(&touched);
	sb_release(&after);
	sb_release(&delta);
	sb_release(&old);
	free(found);
	free(digest);
	return rc;
}

/* 0: done (the change loaded, or none); 1: the whole compile must do it. */
int rules_refresh_partial(struct rules_refresh *r)
{
	char *gpath = net_state_file(r->p, "rules-index.json");
	char *id = network_identity(r->p), *found = NULL;
	json_t *g = index_load(r, gpath, id);
	json_t *local = NULL, *changed = json_array(), *svcs = json_object(), *pods = json_object();
	json_t *old_in = NULL, *new_in = NULL;
	const json_t *settings = json_object_get(g, "settings");
	int rc = 1;
	if (!g)
		goto out;
	local = net_local_pods(r->p);
	if (!readiness_moved(json_object_get(g, "pods"), local, changed))
		goto out;
	if (!json_array_size(changed)) {
		rc = rules_check_table(r, settings, &found, NULL) == 0 ? 0 : 1;
		goto out;
	}
	if (index_services(r->p, changed, svcs, pods))
		goto out;
	old_in = partial_input(settings, svcs, pods, json_object_get(g, "pods"));
	new_in = partial_input(settings, svcs, pods, local);
	if (partial_load(r, g, old_in, new_in, "readiness"))
		goto out;
	size_t i;
	json_t *uid;
	json_array_foreach(changed, i, uid)
		json_object_set(json_object_get(json_object_get(g, "pods"), json_string_value(uid)), "ready",
				json_object_get(json_object_get(local, json_string_value(uid)), "ready"));
	save_json_nosync(gpath, g);
	rc = 0;
out:
	free(found);
	json_decref(new_in);
	json_decref(old_in);
	json_decref(pods);
	json_decref(svcs);
	json_decref(changed);
	json_decref(local);
	json_decref(g);
	free(id);
	free(gpath);
	return rc;
}

/* settings + Services (no pods: the caller makes sure no named targetPort needs one). */
static json_t *services_input(const json_t *settings, const json_t *svcs, const json_t *pods)
{
	json_t *in = json_deep_copy(settings);
	json_object_set(in, "services", (json_t *)svcs);
	json_object_set_new(in, "pods", json_is_array(pods) ? json_incref((json_t *)pods) : json_array());
	return in;
}

static bool has_local(const json_t *svc)
{
	size_t i;
	json_t *ep;
	json_array_foreach(json_object_get(svc, "endpoints"), i, ep)
		if (json_is_true(json_object_get(ep, "local")))
			return true;
	return false;
}

/* Whether each Service changed only its endpoints, none local (a local one is filled
 * in and indexed per pod), and needs nothing but itself compiled: not headless (its
 * endpoints are names in the cluster DNS), no named targetPort unless the pods it is
 * resolved on came with it (`named`). */
static bool endpoints_only(const json_t *old_svcs, const json_t *new_svcs, bool named)
{
	size_t i;
	json_t *a;
	if (json_array_size(old_svcs) != json_array_size(new_svcs))
		return false;
	json_array_foreach(old_svcs, i, a) {
		const json_t *b = json_array_get(new_svcs, i);
		const char *cip = jstr(b, "clusterIP");
		if (!cip || !*cip || !strcmp(cip, "None") || (!named && (api_net_named_target(a) || api_net_named_target(b))) ||
		    has_local(a) || has_local(b))
			return false;
		json_t *x = json_copy((json_t *)a), *y = json_copy((json_t *)b);
		json_object_del(x, "endpoints");
		json_object_del(y, "endpoints");
		bool same = json_equal(x, y);
		json_decref(x);
		json_decref(y);
		if (!same)
			return false;
	}
	return true;
}

int rules_refresh_services(struct rules_refresh *r, const char *old_id, const json_t *old_svcs,
			   const json_t *new_svcs, const json_t *pods)
{
	if (!endpoints_only(old_svcs, new_svcs, json_is_array(pods)))
		return 1;
	char *gpath = net_state_file(r->p, "rules-index.json");
	json_t *g = index_load(r, gpath, old_id);
	json_t *old_in = NULL, *new_in = NULL;
	int rc = 1;
	if (g) {
		old_in = services_input(json_object_get(g, "settings"), old_svcs, pods);
		new_in = services_input(json_object_get(g, "settings"), new_svcs, pods);
		rc = partial_load(r, g, old_in, new_in, "plan");
	}
	char *id = rc == 0 ? network_identity(r->p) : NULL;
	if (id) {   /* the index describes the network just written */
		json_object_set_new(g, "network", json_string(id));
		save_json_nosync(gpath, g);
	} else if (rc == 0) {
		rc = 1;
	}
	free(id);
	json_decref(new_in);
	json_decref(old_in);
	json_decref(g);
	free(gpath);
	return rc;
}
