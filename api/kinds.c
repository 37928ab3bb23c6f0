/* kinds.c: the supported kinds, their API versions and names (kubectl's plural and
 * short names), and the API versions Kubernetes has removed. */
#include "api/internal.h"

#include <string.h>
#include <strings.h>

/* The first entry of a kind is its preferred version. */
static const struct api_kind kinds[] = {
	{ "Namespace", "", "v1", "namespaces", "ns", false, "V1Namespace" },
	{ "Node", "", "v1", "nodes", "no", false, "V1Node" },
	{ "Pod", "", "v1", "pods", "po", true, "V1Pod" },
	{ "Deployment", "apps", "v1", "deployments", "deploy", true, "V1Deployment" },
	{ "ReplicaSet", "apps", "v1", "replicasets", "rs", true, "V1ReplicaSet" },
	{ "DaemonSet", "apps", "v1", "daemonsets", "ds", true, "V1DaemonSet" },
	{ "StatefulSet", "apps", "v1", "statefulsets", "sts", true, "V1StatefulSet" },
	{ "Job", "batch", "v1", "jobs", "", true, "V1Job" },
	{ "CronJob", "batch", "v1", "cronjobs", "cj", true, "V1CronJob" },
	{ "Service", "", "v1", "services", "svc", true, "V1Service" },
	{ "Endpoints", "", "v1", "endpoints", "ep", true, "V1Endpoints" },
	{ "NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", "netpol", true,
	  "V1NetworkPolicy" },
	{ "ConfigMap", "", "v1", "configmaps", "cm", true, "V1ConfigMap" },
	{ "Secret", "", "v1", "secrets", "", true, "V1Secret" },
	{ "ServiceAccount", "", "v1", "serviceaccounts", "sa", true, "V1ServiceAccount" },
	{ "PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", "pvc", true,
	  "V1PersistentVolumeClaim" },
	{ "HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", "hpa", true,
	  "V2HorizontalPodAutoscaler" },
	{ "HorizontalPodAutoscaler", "autoscaling", "v1", "horizontalpodautoscalers", "hpa", true,
	  "V1HorizontalPodAutoscaler" },
	{ "PriorityClass", "scheduling.k8s.io", "v1", "priorityclasses", "pc", false,
	  "V1PriorityClass" },
	{ "ResourceQuota", "", "v1", "resourcequotas", "quota", true, "V1ResourceQuota" },
	{ "LimitRange", "", "v1", "limitranges", "limits", true, "V1LimitRange" },
};

/* API versions Kubernetes removed, and where each kind went. */
struct removed {
	const char *group_version;
	const char *kind; /* NULL = every kind of that version */
	const char *release;
	const char *use;
};
static const struct removed removed[] = {
	{ "extensions/v1beta1", "Ingress", "v1.22", "networking.k8s.io/v1" },
	{ "extensions/v1beta1", "NetworkPolicy", "v1.16", "networking.k8s.io/v1" },
	{ "extensions/v1beta1", NULL, "v1.16", "apps/v1" },
	{ "apps/v1beta1", NULL, "v1.16", "apps/v1" },
	{ "apps/v1beta2", NULL, "v1.16", "apps/v1" },
	{ "batch/v1beta1", NULL, "v1.25", "batch/v1" },
	{ "batch/v2alpha1", NULL, "v1.21", "batch/v1" },
	{ "autoscaling/v2beta1", NULL, "v1.25", "autoscaling/v2" },
	{ "autoscaling/v2beta2", NULL, "v1.26", "autoscaling/v2" },
	{ "policy/v1beta1", NULL, "v1.25", "policy/v1" },
	{ "networking.k8s.io/v1beta1", NULL, "v1.22", "networking.k8s.io/v1" },
	{ "scheduling.k8s.io/v1beta1", NULL, "v1.22", "scheduling.k8s.io/v1" },
	{ "scheduling.k8s.io/v1alpha1", NULL, "v1.17", "scheduling.k8s.io/v1" },
	{ "rbac.authorization.k8s.io/v1beta1", NULL, "v1.22", "rbac.authorization.k8s.io/v1" },
};

const struct api_kind *api_kinds(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(kinds);
	return kinds;
}

static bool in_list(const char *list, const char *word, size_t wlen)
{
	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (l == wlen && strncasecmp(p, word, l) == 0)
			return true;
		p += l + (c ? 1 : 0);
	}
	return false;
}

const struct api_kind *api_kind_lookup(const char *name)
{
	const char *dot = strchr(name, '.');
	size_t len = dot ? (size_t)(dot - name) : strlen(name);
	const char *group = dot ? dot + 1 : NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct api_kind *k = &kinds[i];
		if (group && strcasecmp(group, k->group))
			continue;
		size_t pl = strlen(k->plural);
		bool singular = strlen(k->kind) == len && strncasecmp(k->kind, name, len) == 0;
		bool plural = pl == len && strncasecmp(k->plural, name, len) == 0;
		/* "endpoints" is its own singular */
		if (singular || plural || in_list(k->short_names, name, len))
			return k;
	}
	return NULL;
}

/* The kind entry for an apiVersion + kind pair, or NULL with a reason. */
const struct api_kind *api_kind_for(const char *api_version, const char *kind, struct sbuf *why)
{
	bool known_kind = false;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct api_kind *k = &kinds[i];
		if (strcmp(k->kind, kind))
			continue;
		known_kind = true;
		const char *slash = strchr(api_version, '/');
		size_t glen = slash ? (size_t)(slash - api_version) : 0;
		const char *version = slash ? slash + 1 : api_version;
		if (strlen(k->group) == glen && strncmp(k->group, api_version, glen) == 0 &&
		    strcmp(k->version, version) == 0)
			return k;
	}
	for (size_t i = 0; i < ARRAY_SIZE(removed); i++) {
		const struct removed *r = &removed[i];
		if (strcmp(r->group_version, api_version) || (r->kind && strcmp(r->kind, kind)))
			continue;
		sb_addf(why, "apiVersion \"%s\" of %s was removed in Kubernetes %s; use \"%s\"",
			api_version, kind, r->release, r->use);
		return NULL;
	}
	if (known_kind) {
		sb_addf(why, "no kind \"%s\" is registered for version \"%s\"; supported:", kind,
			api_version);
		for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
			if (strcmp(kinds[i].kind, kind) == 0)
				sb_addf(why, " %s%s%s", kinds[i].group, *kinds[i].group ? "/" : "",
					kinds[i].version);
		return NULL;
	}
	sb_addf(why, "kind \"%s\" is not supported by gitops; supported kinds:", kind);
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (i == 0 || strcmp(kinds[i].kind, kinds[i - 1].kind))
			sb_addf(why, "%s %s", i ? "," : "", kinds[i].kind);
	return NULL;
}
