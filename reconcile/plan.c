/* plan.c: the plan of one node (docs/node-protocol.md) — its pods, each with the
 * data of the ConfigMaps and Secrets it references, the cluster state, and the
 * network (network.c). */
#include "reconcile/internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *rc_new_uid(void)
{
	unsigned char b[8] = { 0 };
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
		abort();
	close(fd);
	char *hex = xmalloc(17);
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	return hex;
}

static const struct api_object *find_obj(const struct api_set *s, const char *kind, const char *ns,
					 const char *name)
{
	for (size_t i = 0; i < s->nobjs; i++) {
		const struct api_object *o = &s->objs[i];
		if (!o->invalid && !strcmp(o->kind->kind, kind) && !strcmp(o->ns, ns) && !strcmp(o->name, name))
			return o;
	}
	return NULL;
}

/* A Secret's data with stringData folded in (base64), as the API server stores it. */
static json_t *secret_data(const json_t *secret)
{
	json_t *data = json_deep_copy(json_object_get(secret, "data"));
	if (!data)
		data = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(secret, "stringData"), k, v) {
		struct sbuf enc = SBUF_INIT;
		const char *s = json_string_value(v) ?: "";
		base64_encode(s, strlen(s), &enc);
		json_object_set_new(data, k, json_string(enc.buf));
		sb_release(&enc);
	}
	return data;
}

static void add_ref(const struct rc_world *w, const char *ns, const char *kind, const char *name,
		    json_t *into)
{
	if (!name || json_object_get(into, name))
		return;
	const struct api_object *o = find_obj(w->desired, kind, ns, name);
	if (!o)
		return;
	json_t *j = api_to_json(o->root);
	if (!strcmp(kind, "Secret"))
		json_object_set_new(into, name, json_pack("{s:o, s:O?}", "data", secret_data(j), "type",
							  json_object_get(j, "type")));
	else
		json_object_set_new(into, name, json_pack("{s:O?, s:O?}", "data", json_object_get(j, "data"),
							  "binaryData", json_object_get(j, "binaryData")));
	json_decref(j);
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
	return json_string_value(json_object_get(json_object_get(o, a), b));
}

static void container_refs(const struct rc_world *w, const char *ns, const json_t *c, json_t *cms, json_t *secs)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(c, "env"), i, e) {
		const json_t *from = json_object_get(e, "valueFrom");
		add_ref(w, ns, "ConfigMap", str_at(from, "configMapKeyRef", "name"), cms);
		add_ref(w, ns, "Secret", str_at(from, "secretKeyRef", "name"), secs);
	}
	json_array_foreach(json_object_get(c, "envFrom"), i, e) {
		add_ref(w, ns, "ConfigMap", str_at(e, "configMapRef", "name"), cms);
		add_ref(w, ns, "Secret", str_at(e, "secretRef", "name"), secs);
	}
}

static void spec_refs(const struct rc_world *w, const char *ns, const json_t *spec, json_t *cms, json_t *secs,
		      json_t *pull)
{
	size_t i, k;
	json_t *v, *s;
	json_array_foreach(json_object_get(spec, "volumes"), i, v) {
		add_ref(w, ns, "ConfigMap", str_at(v, "configMap", "name"), cms);
		add_ref(w, ns, "Secret", str_at(v, "secret", "secretName"), secs);
		json_array_foreach(json_object_get(json_object_get(v, "projected"), "sources"), k, s) {
			add_ref(w, ns, "ConfigMap", str_at(s, "configMap", "name"), cms);
			add_ref(w, ns, "Secret", str_at(s, "secret", "name"), secs);
		}
	}
	const char *lists[] = { "containers", "initContainers" };
	for (int l = 0; l < 2; l++)
		json_array_foreach(json_object_get(spec, lists[l]), i, v)
			container_refs(w, ns, v, cms, secs);
	json_array_foreach(json_object_get(spec, "imagePullSecrets"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		const struct api_object *o = name ? find_obj(w->desired, "Secret", ns, name) : NULL;
		const char *enc = o ? yn_str(yn_get(yn_get(o->root, "data"), ".dockerconfigjson")) : NULL;
		if (!enc)
			continue;
		/* the node gets the decoded dockerconfigjson text */
		struct sbuf dec = SBUF_INIT;
		base64_decode(enc, strlen(enc), &dec);
		json_object_set_new(pull, name, json_string(dec.buf));
		sb_release(&dec);
	}
}

json_t *rc_pod_entry(const struct rc_world *w, const char *uid, const char *ns, const char *name,
		     const json_t *template_meta, const json_t *spec, const char *owner, const char *rs,
		     const char *hash)
{
	json_t *labels = json_deep_copy(json_object_get(template_meta, "labels"));
	json_t *ann = json_deep_copy(json_object_get(template_meta, "annotations"));
	if (!labels)
		labels = json_object();
	if (!ann)
		ann = json_object();
	if (hash)
		json_object_set_new(labels, LABEL_HASH, json_string(hash));
	if (owner)
		json_object_set_new(ann, ANN_OWNER, json_string(owner));
	if (rs)
		json_object_set_new(ann, ANN_REPLICASET, json_string(rs));
	json_t *cms = json_object(), *secs = json_object(), *pull = json_object();
	spec_refs(w, ns, spec, cms, secs, pull);
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:O, s:o, s:o, s:o}", "uid", uid, "namespace", ns,
			 "name", name, "labels", labels, "annotations", ann, "spec", spec, "configMaps",
			 cms, "secrets", secs, "imagePullSecrets", pull);
}

json_t *rc_plan_for(const struct rc_world *w, const struct rc_node *n)
{
	json_t *regs = json_array();
	char *list = xstrdup(rc_setting(w, "insecureRegistries") ?: "");
	for (char *t = strtok(list, ", "); t; t = strtok(NULL, ", "))
		json_array_append_new(regs, json_string(t));
	free(list);
	json_t *plan = json_pack("{s:i, s:s, s:s?, s:s, s:s, s:o, s:O}", "protocol", 1, "node", n->name, "podCIDR",
				 n->pod_cidr, "clusterDomain", rc_setting(w, "clusterDomain"), "dnsServer",
				 rc_setting(w, "dnsServer"), "insecureRegistries", regs, "pods", n->plan_pods);
	/* the cluster state: only what changed when the node has the cached one (none
	 * when nothing did), else whole */
	const json_t *cd = n->cluster_cached ? w->cluster_delta : NULL;
	if (!cd)
		json_object_set(plan, "cluster", w->cluster);
	else if (json_object_size(json_object_get(cd, "set")))
		json_object_set(plan, "clusterDelta", (json_t *)cd);
	json_t *mirrors = json_object();   /* registryMirrors "docker.io=HOST:PORT,..." */
	list = xstrdup(rc_setting(w, "registryMirrors") ?: "");
	for (char *t = strtok(list, ", "); t; t = strtok(NULL, ", ")) {
		char *eq = strchr(t, '=');
		if (eq) {
			*eq = '\0';
			json_object_set_new(mirrors, t, json_string(eq + 1));
		}
	}
	free(list);
	if (json_object_size(mirrors))
		json_object_set(plan, "registryMirrors", mirrors);
	json_decref(mirrors);
	rc_network_plan(w, n, w->prev_net, plan);
	return plan;
}
