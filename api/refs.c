/* refs.c: cross-object checks — warnings for references from pod templates to
 * ConfigMaps, Secrets, ServiceAccounts and PersistentVolumeClaims that no manifest
 * in the set defines (they may exist on a cluster already, so these are warnings,
 * not errors); errors for explicit ClusterIPs and NodePorts outside the cluster's
 * ranges or claimed by two Services. */
#include "api/internal.h"

#include <arpa/inet.h>
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

/* ---- Services: explicit ClusterIPs and NodePorts ---- */

/* One explicit value a Service asks for: a ClusterIP or a NodePort. */
struct claim {
	struct api_object *o;
	const struct ynode *at;
	uint32_t value;
	size_t order;           /* position of the object in file order */
	size_t port;            /* NodePorts: index in spec.ports */
};

static bool ipv4(const char *s, uint32_t *ret)
{
	struct in_addr a;
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return false;
	*ret = ntohl(a.s_addr);
	return true;
}

/* The service CIDR's network and broadcast addresses (config.c checked it). */
static bool service_range(const char *cidr, uint32_t *ret_net, uint32_t *ret_bcast)
{
	const char *slash = strchr(cidr, '/');
	int64_t bits;
	char *ip = slash ? xstrndup(cidr, (size_t)(slash - cidr)) : NULL;
	uint32_t a;
	bool ok = ip && ipv4(ip, &a) && parse_i64(slash + 1, 0, 30, &bits) == 0;
	free(ip);
	if (!ok)
		return false;
	uint32_t mask = bits ? ~0u << (32 - bits) : 0;
	*ret_net = a & mask;
	*ret_bcast = *ret_net | ~mask;
	return true;
}

static void svc_error(struct api_set *s, struct api_object *o, const struct ynode *at, const char *path,
		      const char *msg)
{
	struct sbuf label = SBUF_INIT;
	api_object_label(o, &label);
	api_diag_add(s, API_ERROR, o->file, at->line, at->col, label.buf, path, msg);
	o->invalid = true;
	sb_release(&label);
}

static int cmp_file_order(const void *x, const void *y)
{
	const struct api_object *a = *(struct api_object *const *)x, *b = *(struct api_object *const *)y;
	int c = strcmp(a->file, b->file);
	if (!c && a->line != b->line)
		c = a->line < b->line ? -1 : 1;
	if (!c && a->col != b->col)
		c = a->col < b->col ? -1 : 1;
	return c;
}

static int cmp_claim(const void *x, const void *y)
{
	const struct claim *a = x, *b = y;
	if (a->value != b->value)
		return a->value < b->value ? -1 : 1;
	if (a->order != b->order)
		return a->order < b->order ? -1 : 1;
	return a->port < b->port ? -1 : a->port > b->port;
}

/* Report every claim of a value already claimed by an earlier Service (in file
 * order), naming the first. Claims of one Service do not clash with each other
 * (a NodePort shared by a TCP and a UDP port is Kubernetes' way). */
static void report_clashes(struct api_set *s, struct claim *c, size_t n, bool ports)
{
	if (n)
		qsort(c, n, sizeof(*c), cmp_claim);
	for (size_t i = 1, first = 0; i < n; i++) {
		if (c[i].value != c[first].value) {
			first = i;
			continue;
		}
		if (c[i].o == c[first].o)
			continue;
		struct sbuf msg = SBUF_INIT, path = SBUF_INIT;
		const struct claim *f = &c[first];
		if (ports) {
			sb_addf(&path, "spec.ports[%zu].nodePort", c[i].port);
			sb_addf(&msg, "Invalid value: %u: provided port is already allocated to Service %s/%s (%s:%u:%u)",
				c[i].value, f->o->ns, f->o->name, f->o->file, f->at->line, f->at->col);
		} else {
			sb_adds(&path, "spec.clusterIP");
			sb_addf(&msg, "Invalid value: \"%s\": provided IP is already allocated to Service %s/%s (%s:%u:%u)",
				c[i].at->str, f->o->ns, f->o->name, f->o->file, f->at->line, f->at->col);
		}
		svc_error(s, c[i].o, c[i].at, path.buf, msg.buf);
		sb_release(&msg);
		sb_release(&path);
	}
}

static void claim_cluster_ip(struct api_set *s, struct api_object *o, size_t order, uint32_t net,
			     uint32_t bcast, const char *cidr, struct claim **v, size_t *n, size_t *alloc)
{
	const struct ynode *cip = yn_path(o->root, "spec.clusterIP");
	const char *ip = yn_str(cip);
	uint32_t a;
	if (!ip || !*ip || !strcmp(ip, "None"))
		return;
	if (!ipv4(ip, &a) || a <= net || a >= bcast) {
		struct sbuf msg = SBUF_INIT;
		sb_addf(&msg, "Invalid value: \"%s\": provided IP is not in the valid range. "
			      "The range of valid IPs is %s", ip, cidr);
		svc_error(s, o, cip, "spec.clusterIP", msg.buf);
		sb_release(&msg);
		return;
	}
	GROW(*v, *alloc, *n + 1);
	(*v)[(*n)++] = (struct claim){ o, cip, a, order, 0 };
}

static void claim_node_ports(struct api_set *s, struct api_object *o, size_t order, int64_t lo, int64_t hi,
			     const char *range, struct claim **v, size_t *n, size_t *alloc)
{
	const char *type = yn_str(yn_path(o->root, "spec.type"));
	const struct ynode *ports = yn_path(o->root, "spec.ports");
	if (!type || (strcmp(type, "NodePort") && strcmp(type, "LoadBalancer")))
		return;
	for (size_t i = 0; ports && ports->type == YN_SEQ && i < ports->n; i++) {
		const struct ynode *np = yn_get(ports->items[i], "nodePort");
		int64_t port;
		if (!np || !yn_int(np, &port) || port == 0)
			continue;
		if (port < lo || port > hi) {
			struct sbuf msg = SBUF_INIT, path = SBUF_INIT;
			sb_addf(&path, "spec.ports[%zu].nodePort", i);
			sb_addf(&msg, "Invalid value: %lld: provided port is not in the valid range. "
				      "The range of valid ports is %s", (long long)port, range);
			svc_error(s, o, np, path.buf, msg.buf);
			sb_release(&msg);
			sb_release(&path);
			continue;
		}
		GROW(*v, *alloc, *n + 1);
		(*v)[(*n)++] = (struct claim){ o, np, (uint32_t)port, order, i };
	}
}

/* Explicit spec.clusterIP inside serviceCIDR (not its network or broadcast
 * address), explicit nodePorts inside nodePortRange, and no value claimed by two
 * Services: the later one (in file order) is the error, naming the first. */
static void check_services(struct api_set *s)
{
	const char *cidr = api_config_get(s, "serviceCIDR"), *range = api_config_get(s, "nodePortRange");
	uint32_t net = 0, bcast = 0;
	int64_t lo = 0, hi = -1;
	const char *dash = strchr(range, '-');
	bool have_cidr = service_range(cidr, &net, &bcast);
	if (dash) {
		char *a = xstrndup(range, (size_t)(dash - range));
		if (parse_i64(a, 1, 65535, &lo) < 0 || parse_i64(dash + 1, 1, 65535, &hi) < 0)
			hi = -1;
		free(a);
	}
	struct api_object **svcs = xcalloc(s->nobjs + 1, sizeof(*svcs));
	size_t nsvc = 0;
	for (size_t i = 0; i < s->nobjs; i++)
		if (!s->objs[i].invalid && !strcmp(s->objs[i].kind->kind, "Service"))
			svcs[nsvc++] = &s->objs[i];
	if (nsvc)
		qsort(svcs, nsvc, sizeof(*svcs), cmp_file_order);
	struct claim *ips = NULL, *ports = NULL;
	size_t nips = 0, aips = 0, nports = 0, aports = 0;
	for (size_t i = 0; i < nsvc; i++) {
		const char *type = yn_str(yn_path(svcs[i]->root, "spec.type"));
		if (type && !strcmp(type, "ExternalName"))
			continue;
		if (have_cidr)
			claim_cluster_ip(s, svcs[i], i, net, bcast, cidr, &ips, &nips, &aips);
		if (hi >= lo)
			claim_node_ports(s, svcs[i], i, lo, hi, range, &ports, &nports, &aports);
	}
	report_clashes(s, ips, nips, false);
	report_clashes(s, ports, nports, true);
	free(ips);
	free(ports);
	free(svcs);
}

void api_check_references(struct api_set *s, struct api_object *const *sorted, size_t n)
{
	check_services(s);
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
