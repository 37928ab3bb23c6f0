/* refs.c: warnings for references from pod templates to ConfigMaps, Secrets,
 * ServiceAccounts and PersistentVolumeClaims that no manifest in the set defines
 * (they may exist on a cluster already, so these are warnings, not errors). */
#include "api/internal.h"

#include <stdlib.h>
#include <string.h>

/* Where a reference sits, below the pod spec: "list[i].mid[j].tail", each part
 * optional; rendered only when a warning is reported. */
struct where {
	const char *list;
	size_t i;
	const char *mid;
	long j;          /* -1: mid has no index */
	const char *tail;
};

struct refctx {
	struct api_set *s;
	struct api_object *o;
	struct api_object *const *sorted;
	size_t n;
	const char *spec_path;
};

static int cmp_key(const char *kind, const char *ns, const char *name, const struct api_object *b)
{
	int c = strcmp(kind, b->kind->kind);
	if (!c)
		c = strcmp(ns, b->ns);
	if (!c)
		c = strcmp(name, b->name);
	return c;
}

static bool defined(const struct refctx *r, const char *kind, const char *name)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp_key(kind, r->o->ns, name, r->sorted[mid]);
		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

static void ref(struct refctx *r, const struct ynode *holder, const char *key, const char *kind,
		const struct where *w)
{
	const struct ynode *nm = yn_get(holder, key);
	const char *name = yn_str(nm);
	bool optional = false;
	if (!name || !*name || (yn_bool(yn_get(holder, "optional"), &optional) && optional))
		return;
	if (defined(r, kind, name))
		return;
	struct sbuf label = SBUF_INIT, msg = SBUF_INIT, path = SBUF_INIT;
	api_object_label(r->o, &label);
	sb_addf(&msg, "%s \"%s\" is not defined in the repository", kind, name);
	sb_adds(&path, r->spec_path);
	if (w->list)
		sb_addf(&path, ".%s[%zu]", w->list, w->i);
	if (w->mid)
		sb_addf(&path, ".%s", w->mid);
	if (w->mid && w->j >= 0)
		sb_addf(&path, "[%ld]", w->j);
	if (w->tail)
		sb_addf(&path, ".%s", w->tail);
	sb_addf(&path, ".%s", key);
	api_diag_add(r->s, API_WARNING, r->o->file, nm->line, nm->col, label.buf, path.buf, msg.buf);
	sb_release(&label);
	sb_release(&msg);
	sb_release(&path);
}

static void volume_refs(struct refctx *r, const struct ynode *vol, size_t i)
{
	struct where w = { "volumes", i, NULL, -1, "configMap" };
	ref(r, yn_get(vol, "configMap"), "name", "ConfigMap", &w);
	w.tail = "secret";
	ref(r, yn_get(vol, "secret"), "secretName", "Secret", &w);
	w.tail = "persistentVolumeClaim";
	ref(r, yn_get(vol, "persistentVolumeClaim"), "claimName", "PersistentVolumeClaim", &w);
	const struct ynode *sources = yn_path(vol, "projected.sources");
	for (size_t j = 0; j < yn_len(sources) && sources->type == YN_SEQ; j++) {
		struct where p = { "volumes", i, "projected.sources", (long)j, "configMap" };
		ref(r, yn_get(sources->items[j], "configMap"), "name", "ConfigMap", &p);
		p.tail = "secret";
		ref(r, yn_get(sources->items[j], "secret"), "name", "Secret", &p);
	}
}

static void container_refs(struct refctx *r, const char *list, const struct ynode *c, size_t i)
{
	const struct ynode *env = yn_get(c, "env");
	for (size_t j = 0; env && env->type == YN_SEQ && j < env->n; j++) {
		const struct ynode *from = yn_get(env->items[j], "valueFrom");
		if (!from)
			continue;
		struct where w = { list, i, "env", (long)j, "valueFrom.configMapKeyRef" };
		ref(r, yn_get(from, "configMapKeyRef"), "name", "ConfigMap", &w);
		w.tail = "valueFrom.secretKeyRef";
		ref(r, yn_get(from, "secretKeyRef"), "name", "Secret", &w);
	}
	const struct ynode *envfrom = yn_get(c, "envFrom");
	for (size_t j = 0; envfrom && envfrom->type == YN_SEQ && j < envfrom->n; j++) {
		struct where w = { list, i, "envFrom", (long)j, "configMapRef" };
		ref(r, yn_get(envfrom->items[j], "configMapRef"), "name", "ConfigMap", &w);
		w.tail = "secretRef";
		ref(r, yn_get(envfrom->items[j], "secretRef"), "name", "Secret", &w);
	}
}

static void podspec_refs(struct refctx *r, const struct ynode *spec)
{
	static const char *const lists[] = { "containers", "initContainers" };
	const struct ynode *vols = yn_get(spec, "volumes");
	for (size_t i = 0; vols && vols->type == YN_SEQ && i < vols->n; i++)
		volume_refs(r, vols->items[i], i);
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		const struct ynode *cs = yn_get(spec, lists[l]);
		for (size_t i = 0; cs && cs->type == YN_SEQ && i < cs->n; i++)
			container_refs(r, lists[l], cs->items[i], i);
	}
	const struct ynode *ips = yn_get(spec, "imagePullSecrets");
	for (size_t i = 0; ips && ips->type == YN_SEQ && i < ips->n; i++) {
		struct where w = { "imagePullSecrets", i, NULL, -1, NULL };
		ref(r, ips->items[i], "name", "Secret", &w);
	}
	const char *sa = yn_str(yn_get(spec, "serviceAccountName"));
	if (sa && strcmp(sa, "default")) {
		struct where w = { 0 };
		ref(r, spec, "serviceAccountName", "ServiceAccount", &w);
	}
}

static const char *podspec_path(const char *kind)
{
	if (!strcmp(kind, "Pod"))
		return "spec";
	if (!strcmp(kind, "CronJob"))
		return "spec.jobTemplate.spec.template.spec";
	if (!strcmp(kind, "Deployment") || !strcmp(kind, "ReplicaSet") || !strcmp(kind, "DaemonSet") ||
	    !strcmp(kind, "StatefulSet") || !strcmp(kind, "Job"))
		return "spec.template.spec";
	return NULL;
}

void api_check_references(struct api_set *s, struct api_object *const *sorted, size_t n)
{
	for (size_t i = 0; i < s->nobjs; i++) {
		struct api_object *o = &s->objs[i];
		const char *path = podspec_path(o->kind->kind);
		const struct ynode *spec = path ? yn_path(o->root, path) : NULL;
		if (o->invalid || !spec)
			continue;
		struct refctx r = { .s = s, .o = o, .sorted = sorted, .n = n, .spec_path = path };
		podspec_refs(&r, spec);
	}
}
