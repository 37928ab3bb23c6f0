/* env.c: a container's environment as the kubelet makes it — image env, envFrom,
 * env with $(VAR) expansion and valueFrom references, the Services' link variables —
 * and its command line. */
#include "runtime/internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "api/api.h"

/* Decisions (see also docs/architecture.md):
 *  - containerd's order — default PATH and HOSTNAME, the image's Env, then the
 *    kubelet's variables (envFrom, env, then the Services' variables for names not
 *    set yet), each name keeping its first position and its last value. $(VAR) in env
 *    values sees envFrom, earlier env and the Services' variables (not the image's, as
 *    in Kubernetes); $(VAR) in command/args sees the final env, image's included.
 *  - The Services' variables are computed when the container starts, from the node's
 *    STATE/network.json, as the kubelet does from its informer: a Service created
 *    later appears only after the container restarts, and none of it is part of the
 *    container hash. The plan's own pod "env" (the controller's) is applied over them. */

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool jtrue(const json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

/* ---- $(VAR) expansion ------------------------------------------------------ */

static const char *lookup(const json_t *const *maps, size_t nmaps, const char *name, size_t len)
{
	char *key = xstrndup(name, len);
	const char *v = NULL;
	for (size_t i = 0; i < nmaps && !v; i++)
		v = jstr(maps[i], key);
	free(key);
	return v;
}

/* Kubernetes' expansion (third_party/forked/golang/expansion): "$$" is "$", "$(NAME)"
 * is the first map's value or stays as written, an unclosed "$(" and any other "$x"
 * are kept. Caller frees. */
char *env_expand(const char *in, const json_t *const *maps, size_t nmaps)
{
	struct sbuf sb = SBUF_INIT;
	for (const char *p = in; *p; p++) {
		if (p[0] != '$' || !p[1] || (p[1] != '$' && p[1] != '(')) {
			sb_addc(&sb, *p);
			continue;
		}
		const char *close = p[1] == '(' ? strchr(p + 2, ')') : NULL;
		if (p[1] == '$' || !close) {
			sb_add(&sb, p, p[1] == '$' ? 1 : 2);
			p++;
			continue;
		}
		const char *v = lookup(maps, nmaps, p + 2, (size_t)(close - p - 2));
		if (v)
			sb_adds(&sb, v);
		else
			sb_add(&sb, p, (size_t)(close - p + 1));
		p = close;
	}
	return sb_detach(&sb, NULL);
}

/* ---- quantities ------------------------------------------------------------ */

static int quantity(const json_t *v, int64_t *ret_milli, struct gerr **err)
{
	if (json_is_integer(v)) {
		*ret_milli = (int64_t)json_integer_value(v) * 1000;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v) * 1000;
		*ret_milli = (int64_t)(d < 0 ? d - 0.5 : d + 0.5);
		return 0;
	}
	if (!json_is_string(v))
		return gerr_set(err, GERR_FAIL, "quantity is not a string");
	return api_quantity_parse(json_string_value(v), ret_milli, err);
}

/* resources.<kind>.<name> in milli-units; 0 when absent. Requests default to limits. */
int resource_milli(const json_t *c, const char *kind, const char *name, int64_t *ret,
		   struct gerr **err)
{
	const json_t *res = json_object_get(c, "resources");
	const json_t *v = json_object_get(json_object_get(res, kind), name);
	if (!v && !strcmp(kind, "requests"))
		v = json_object_get(json_object_get(res, "limits"), name);
	*ret = 0;
	if (v && quantity(v, ret, err) < 0)
		return gerr_wrap(err, "resources.%s.%s", kind, name);
	return 0;
}

/* The node's capacity for a resource, in milli-units (limits default to it). */
static int64_t node_capacity(const json_t *pod, const char *name)
{
	if (!strcmp(name, "cpu"))
		return (int64_t)sysconf(_SC_NPROCESSORS_ONLN) * 1000;
	if (!strcmp(name, "memory"))
		return (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) * 1000;
	struct statvfs sv;
	const char *dir = jstr(pod, "podDir");
	if (statvfs(dir ? dir : "/", &sv) < 0)
		return 0;
	return (int64_t)(sv.f_blocks * sv.f_frsize) * 1000;
}

/* ---- env ------------------------------------------------------------------- */

struct envctx {
	const json_t *pod;
	const json_t *c;     /* the Container */
	json_t *vars;        /* the kubelet's variables so far, in order */
	const json_t *svc;   /* the Services' variables and the controller's env */
};

static bool env_name_ok(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!(*s == '_' || *s == '-' || *s == '.' || (*s >= '0' && *s <= '9') ||
		      (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

/* A value for the environment: text, or a Secret's base64 decoded; new reference. */
static json_t *env_string(const char *v, bool secret, const char *what, struct gerr **err)
{
	if (!secret)
		return json_string(v);
	struct sbuf sb = SBUF_INIT;
	json_t *s = NULL;
	if (!base64_decode(v, strlen(v), &sb))
		gerr_set(err, GERR_FAIL, "%s: illegal base64 data", what);
	else if (memchr(sb.buf, 0, sb.len) || !(s = json_stringn(sb.buf, sb.len)))
		gerr_set(err, GERR_FAIL, "%s: value is not text that an environment can hold", what);
	if (sb.alloc)
		freezero(sb.buf, sb.alloc);
	return s;
}

/* The data of ConfigMap/Secret name: 1 found, 0 absent and optional, -1 error. */
static int source_data(const struct envctx *x, bool secret, const char *name, bool optional,
		       const json_t **ret, struct gerr **err)
{
	const json_t *src = json_object_get(json_object_get(x->pod, secret ? "secrets" : "configMaps"),
					    name ? name : "");
	*ret = json_object_get(src, "data");
	if (src)
		return 1;
	if (optional)
		return 0;
	return gerr_set(err, GERR_FAIL, "%s \"%s\" not found", secret ? "secret" : "configmap",
			name ? name : "");
}

static int env_from(struct envctx *x, const json_t *ef, struct gerr **err)
{
	const json_t *ref = json_object_get(ef, "configMapRef");
	bool secret = !ref;
	if (secret)
		ref = json_object_get(ef, "secretRef");
	if (!ref)
		return 0;
	const json_t *data;
	const char *name = jstr(ref, "name"), *prefix = jstr(ef, "prefix");
	int r = source_data(x, secret, name, jtrue(ref, "optional"), &data, err);
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)data, k, v) { /* invalid names are skipped, as the kubelet does */
		char *key = xasprintf("%s%s", prefix ? prefix : "", k);
		if (json_is_string(v) && env_name_ok(key)) {
			char *what = xasprintf("secret %s/%s key %s", jstr(x->pod, "namespace"), name, k);
			json_t *s = env_string(json_string_value(v), secret, what, err);
			if (s)
				json_object_set_new(x->vars, key, s);
			else
				r = -1;
			free(what);
		}
		free(key);
		if (r < 0)
			break;
	}
	return r < 0 ? -1 : 0;
}

/* configMapKeyRef / secretKeyRef: *ret NULL when optional and missing. */
static int key_ref(struct envctx *x, const json_t *ref, bool secret, json_t **ret, struct gerr **err)
{
	const char *name = jstr(ref, "name"), *key = jstr(ref, "key");
	bool optional = jtrue(ref, "optional");
	const json_t *data;
	*ret = NULL;
	int r = source_data(x, secret, name, optional, &data, err);
	if (r <= 0)
		return r;
	const char *v = jstr(data, key ? key : "");
	if (!v && optional)
		return 0;
	const char *ns = jstr(x->pod, "namespace");
	if (!v)
		return gerr_set(err, GERR_FAIL, "couldn't find key %s in %s %s/%s", key ? key : "",
				secret ? "Secret" : "ConfigMap", ns, name);
	char *what = xasprintf("secret %s/%s key %s", ns, name, key);
	*ret = env_string(v, secret, what, err);
	free(what);
	return *ret ? 0 : -1;
}

/* "metadata.labels['k']" → "k" in a new string, or NULL. */
static char *subscript(const char *path, const char *field)
{
	size_t n = strlen(field), len = strlen(path);
	if (strncmp(path, field, n) || strncmp(path + n, "['", 2) || len < n + 4 ||
	    strcmp(path + len - 2, "']"))
		return NULL;
	return xstrndup(path + n + 2, len - n - 4);
}

static int field_ref(const struct envctx *x, const char *path, json_t **ret, struct gerr **err)
{
	static const char *const simple[][2] = {
		{ "metadata.name", "name" }, { "metadata.namespace", "namespace" },
		{ "metadata.uid", "uid" }, { "spec.nodeName", "node" },
		{ "status.podIP", "podIP" }, { "status.podIPs", "podIP" },
		{ "status.hostIP", "hostIP" }, { "status.hostIPs", "hostIP" },
	};
	const char *v = NULL;
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(simple) && !known; i++)
		if ((known = !strcmp(path, simple[i][0])))
			v = jstr(x->pod, simple[i][1]);
	if (!known && !strcmp(path, "spec.serviceAccountName")) {
		known = true;
		v = jstr(json_object_get(x->pod, "spec"), "serviceAccountName");
	}
	char *key = NULL;
	for (int i = 0; i < 2 && !known; i++) {
		const char *f = i ? "metadata.annotations" : "metadata.labels";
		if ((key = subscript(path, f))) {
			known = true;
			v = jstr(json_object_get(x->pod, i ? "annotations" : "labels"), key);
		}
	}
	free(key);
	if (!known)
		return gerr_set(err, GERR_FAIL, "unsupported fieldRef fieldPath %s", path);
	*ret = json_string(v ? v : "");
	return 0;
}

static const json_t *find_container(const json_t *pod, const char *name)
{
	const char *lists[] = { "containers", "initContainers" };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i;
		const json_t *c;
		json_array_foreach(json_object_get(json_object_get(pod, "spec"), lists[l]), i, c)
			if (!strcmp(jstr(c, "name") ? jstr(c, "name") : "", name))
				return c;
	}
	return NULL;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
	return a / b + (a % b != 0 && (a < 0) == (b < 0));
}

/* resourceFieldRef as the kubelet resolves it: limits default to the node's
 * capacity, the value is ceil(value / divisor). */
static int resource_ref(const struct envctx *x, const json_t *rf, json_t **ret, struct gerr **err)
{
	const char *res = jstr(rf, "resource"), *cname = jstr(rf, "containerName");
	const json_t *c = cname && *cname ? find_container(x->pod, cname) : x->c;
	const char *dot = res ? strchr(res, '.') : NULL;
	if (!c)
		return gerr_set(err, GERR_FAIL, "resourceFieldRef: no container %s", cname);
	if (!dot || (strncmp(res, "limits.", 7) && strncmp(res, "requests.", 9)))
		return gerr_set(err, GERR_FAIL, "unsupported resourceFieldRef resource %s", res ? res : "");
	char *kind = xstrndup(res, (size_t)(dot - res));
	int64_t v, div = 1000;
	int r = resource_milli(c, kind, dot + 1, &v, err);
	if (r == 0 && !v && !strcmp(kind, "limits"))
		v = node_capacity(x->pod, dot + 1);
	if (r == 0 && json_object_get(rf, "divisor"))
		r = quantity(json_object_get(rf, "divisor"), &div, err);
	free(kind);
	if (r < 0 || div <= 0)
		return r < 0 ? r : gerr_set(err, GERR_FAIL, "resourceFieldRef: divisor must be positive");
	if (strcmp(dot + 1, "cpu")) { /* bytes: both rounded up to whole units first */
		v = ceil_div(v, 1000);
		div = ceil_div(div, 1000);
	}
	*ret = json_sprintf("%lld", (long long)ceil_div(v, div));
	return 0;
}

/* One env entry: *ret NULL when it is skipped (an optional reference). */
static int env_value(struct envctx *x, const json_t *ev, json_t **ret, struct gerr **err)
{
	const char *value = jstr(ev, "value");
	const json_t *vf = json_object_get(ev, "valueFrom");
	*ret = NULL;
	if ((value && *value) || !vf) {
		const json_t *maps[] = { x->vars, x->svc };
		char *s = env_expand(value ? value : "", maps, 2);
		*ret = json_string(s);
		free(s);
		return 0;
	}
	const json_t *ref;
	if ((ref = json_object_get(vf, "fieldRef")))
		return field_ref(x, jstr(ref, "fieldPath") ? jstr(ref, "fieldPath") : "", ret, err);
	if ((ref = json_object_get(vf, "resourceFieldRef")))
		return resource_ref(x, ref, ret, err);
	if ((ref = json_object_get(vf, "configMapKeyRef")))
		return key_ref(x, ref, false, ret, err);
	if ((ref = json_object_get(vf, "secretKeyRef")))
		return key_ref(x, ref, true, ret, err);
	return gerr_set(err, GERR_FAIL, "env %s: unsupported valueFrom", jstr(ev, "name"));
}

/* Set "K=V" strings onto an ordered object (first position, last value). */
static void env_merge_strings(json_t *out, const json_t *list)
{
	size_t i;
	const json_t *e;
	json_array_foreach(list, i, e) {
		const char *s = json_string_value(e), *eq = s ? strchr(s, '=') : NULL;
		if (!eq || eq == s)
			continue;
		char *k = xstrndup(s, (size_t)(eq - s));
		json_object_set_new(out, k, json_string(eq + 1));
		free(k);
	}
}

char *pod_hostname(const json_t *pod)
{
	const json_t *spec = json_object_get(pod, "spec");
	if (jtrue(spec, "hostNetwork")) {
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		return xstrdup(host);
	}
	const char *h = jstr(spec, "hostname");
	if (!h || !*h)
		h = jstr(pod, "name") ? jstr(pod, "name") : "";
	size_t n = strlen(h) > 63 ? 63 : strlen(h);
	while (n > 0 && (h[n - 1] == '-' || h[n - 1] == '.'))
		n--;
	return xstrndup(h, n);
}

/* ---- Service links (the kubelet's pkg/kubelet/envvars) ------------------------ */

/* "my-svc" → "MY_SVC" (the kubelet's makeEnvVariableName). Caller frees. */
static char *env_ident(const char *s)
{
	char *out = xstrdup(s);
	for (char *p = out; *p; p++)
		*p = *p == '-' ? '_' : (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
	return out;
}

static void set_var(json_t *out, const char *value, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void set_var(json_t *out, const char *value, const char *fmt, ...)
{
	struct sbuf key = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&key, fmt, ap);
	va_end(ap);
	json_object_set_new(out, key.buf, json_string(value));
	sb_release(&key);
}

/* A ClusterIP the kubelet makes variables for: set, not "None" (headless), and
 * not an ExternalName Service. */
static bool service_ip_set(const json_t *svc)
{
	const char *ip = jstr(svc, "clusterIP"), *type = jstr(svc, "type");
	return ip && *ip && strcmp(ip, "None") && !(type && !strcmp(type, "ExternalName")) &&
	       json_array_size(json_object_get(svc, "ports")) > 0;
}

/* {SVC}_SERVICE_HOST, {SVC}_SERVICE_PORT (first port), {SVC}_SERVICE_PORT_{NAME}
 * (named ports), and Docker's link variables {SVC}_PORT (first port),
 * {SVC}_PORT_{PORT}_{PROTO} with _PROTO, _PORT and _ADDR. */
static void service_vars(const json_t *svc, json_t *out)
{
	const char *ip = jstr(svc, "clusterIP");
	char *prefix = env_ident(jstr(svc, "name") ? jstr(svc, "name") : "");
	bool v6 = strchr(ip, ':') != NULL;
	size_t i;
	const json_t *p;
	set_var(out, ip, "%s_SERVICE_HOST", prefix);
	json_array_foreach(json_object_get(svc, "ports"), i, p) {
		json_int_t port = json_integer_value(json_object_get(p, "port"));
		const char *proto = jstr(p, "protocol") && *jstr(p, "protocol") ? jstr(p, "protocol") : "TCP";
		char *num = xasprintf("%lld", (long long)port);
		char *up = env_ident(proto), *low = xstrdup(proto);
		for (char *c = low; *c; c++)
			*c = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c;
		char *url = xasprintf(v6 ? "%s://[%s]:%s" : "%s://%s:%s", low, ip, num);
		if (i == 0) {
			set_var(out, num, "%s_SERVICE_PORT", prefix);
			set_var(out, url, "%s_PORT", prefix);
		}
		if (jstr(p, "name") && *jstr(p, "name")) {
			char *pn = env_ident(jstr(p, "name"));
			set_var(out, num, "%s_SERVICE_PORT_%s", prefix, pn);
			free(pn);
		}
		set_var(out, url, "%s_PORT_%s_%s", prefix, num, up);
		set_var(out, low, "%s_PORT_%s_%s_PROTO", prefix, num, up);
		set_var(out, num, "%s_PORT_%s_%s_PORT", prefix, num, up);
		set_var(out, ip, "%s_PORT_%s_%s_ADDR", prefix, num, up);
		free(url);
		free(num);
		free(up);
		free(low);
	}
	free(prefix);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The kubelet's choice: the Services of the pod's namespace when links are enabled,
 * and always default/kubernetes (its "master service"; a namespace's own
 * "kubernetes" Service wins over it). By name, so the order is stable. */
static void service_links(const json_t *network, const json_t *pod, json_t *out)
{
	const char *ns = jstr(pod, "namespace") ? jstr(pod, "namespace") : "default";
	const json_t *enable = json_object_get(json_object_get(pod, "spec"), "enableServiceLinks");
	bool links = !json_is_false(enable);
	json_t *chosen = json_object(); /* name → Service (borrowed) */
	size_t i;
	json_t *svc;
	json_array_foreach(json_object_get(network, "services"), i, svc) {
		const char *sns = jstr(svc, "namespace"), *name = jstr(svc, "name");
		if (!sns || !name || !service_ip_set(svc))
			continue;
		if (!strcmp(sns, "default") && !strcmp(name, "kubernetes")) {
			if (!json_object_get(chosen, name))
				json_object_set(chosen, name, svc);
		} else if (links && !strcmp(sns, ns)) {
			json_object_set(chosen, name, svc);
		}
	}
	size_t n = json_object_size(chosen), k = 0;
	const char **names = xcalloc(n ? n : 1, sizeof(*names));
	const char *key;
	json_object_foreach(chosen, key, svc)
		names[k++] = key;
	qsort(names, n, sizeof(*names), cmp_str);
	for (k = 0; k < n; k++)
		service_vars(json_object_get(chosen, names[k]), out);
	free(names);
	json_decref(chosen);
}

/* ---- the environment --------------------------------------------------------- */

static json_t *env_final(const json_t *pod, const json_t *image_config, const struct envctx *x)
{
	json_t *all = json_object();
	char *host = pod_hostname(pod);
	json_object_set_new(all, "PATH", json_string("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	json_object_set_new(all, "HOSTNAME", json_string(host));
	free(host);
	env_merge_strings(all, json_object_get(image_config, "Env"));
	json_object_update(all, x->vars);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)x->svc, k, v) /* Services': never over the pod's own */
		if (json_is_string(v) && !json_object_get(x->vars, k))
			json_object_set(all, k, v);
	json_t *arr = json_array();
	json_object_foreach(all, k, v)
		json_array_append_new(arr, json_sprintf("%s=%s", k, json_string_value(v)));
	json_decref(all);
	return arr;
}

int env_container(const json_t *pod, const json_t *spec, const json_t *image_config,
		  const json_t *network, json_t **ret_env, struct gerr **err)
{
	json_t *svc = json_object();
	if (network)
		service_links(network, pod, svc);
	const json_t *plan_env = json_object_get(spec, "env");
	if (json_is_object(plan_env))
		json_object_update(svc, (json_t *)plan_env);
	struct envctx x = { pod, json_object_get(spec, "container"), json_object(), svc };
	int r = 0;
	size_t i;
	const json_t *e;
	json_array_foreach(json_object_get(x.c, "envFrom"), i, e)
		if (r == 0)
			r = env_from(&x, e, err);
	json_array_foreach(json_object_get(x.c, "env"), i, e) {
		json_t *v = NULL;
		const char *name = jstr(e, "name");
		if (r < 0 || !name)
			continue;
		if ((r = env_value(&x, e, &v, err)) == 0 && v)
			json_object_set_new(x.vars, name, v);
	}
	if (r == 0)
		*ret_env = env_final(pod, image_config, &x);
	json_decref(x.vars);
	json_decref(svc);
	return r;
}

int oci_env(const json_t *pod, const json_t *spec, const json_t *image_config, json_t **ret_env,
	    struct gerr **err)
{
	return env_container(pod, spec, image_config, NULL, ret_env, err);
}

int env_network_load(const char *pod_dir, json_t **ret, struct gerr **err)
{
	*ret = NULL;
	/* pod_dir is STATE/pods/UID: anything else has no node state to read */
	const char *slash = pod_dir ? strrchr(pod_dir, '/') : NULL;
	if (!slash || slash - pod_dir < 6 || strncmp(slash - 5, "/pods", 5))
		return 0;
	char *state = xstrndup(pod_dir, (size_t)(slash - 5 - pod_dir));
	int r = network_read(state, ret, err);
	if (r < 0)
		gerr_wrap(err, "the node's Services");
	free(state);
	return r;
}

/* ---- args ------------------------------------------------------------------ */

json_t *env_object(const json_t *env)
{
	json_t *o = json_object();
	env_merge_strings(o, env);
	return o;
}

static void push_expanded(json_t *out, const json_t *list, const json_t *vars)
{
	size_t i;
	const json_t *s;
	json_array_foreach(list, i, s) {
		char *e = env_expand(json_string_value(s) ? json_string_value(s) : "", &vars, 1);
		json_array_append_new(out, json_string(e));
		free(e);
	}
}

int oci_args(const json_t *spec, const json_t *image_config, const json_t *env, json_t **ret_args,
	     struct gerr **err)
{
	const json_t *c = json_object_get(spec, "container");
	const json_t *cmd = json_object_get(c, "command"), *args = json_object_get(c, "args");
	json_t *vars = env_object(env), *out = json_array();
	if (json_array_size(cmd)) {
		push_expanded(out, cmd, vars);
		push_expanded(out, args, vars);
	} else {
		const json_t *ep = json_object_get(image_config, "Entrypoint");
		const char *ep0 = json_string_value(json_array_get(ep, 0));
		if (!(json_array_size(ep) == 1 && ep0 && !*ep0))
			json_array_extend(out, (json_t *)ep);
		if (json_array_size(args))
			push_expanded(out, args, vars);
		else
			json_array_extend(out, json_object_get(image_config, "Cmd"));
	}
	json_decref(vars);
	if (json_array_size(out) == 0) {
		json_decref(out);
		return gerr_set(err, GERR_FAIL, "no command specified");
	}
	*ret_args = out;
	return 0;
}

