/* check.c: `gitops node check` — the parts a node needs, their versions, the
 * Debian package of each missing one, and which cgroup controllers are enforced. */
#include "runtime/internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

struct part {
	const char *name;
	const char *const *argv; /* version command; argv[0] is looked up in PATH */
	const char *package;
	bool required;
};

static const char *const runc_v[] = { "runc", "--version", NULL };
static const char *const skopeo_v[] = { "skopeo", "--version", NULL };
static const char *const umoci_v[] = { "umoci", "--version", NULL };
static const char *const nft_v[] = { "nft", "--version", NULL };
static const char *const ip_v[] = { "ip", "-V", NULL };
static const char *const ssh_v[] = { "sshd", "-V", NULL };
static const char *const dnsmasq_v[] = { "dnsmasq", "--version", NULL };

static const struct part parts[] = {
	{ "runtime", runc_v, "runc", true },
	{ "skopeo", skopeo_v, "skopeo", true },
	{ "umoci", umoci_v, "umoci", true },
	{ "nft", nft_v, "nftables", true },
	{ "ip", ip_v, "iproute2", true },
	{ "dnsmasq", dnsmasq_v, "dnsmasq-base", true },   /* the cluster DNS (dns.c) */
	{ "sshd", ssh_v, "openssh-server", false },
};

static char *first_line(const char *s)
{
	const char *nl = strchr(s, '\n');
	return nl ? xstrndup(s, (size_t)(nl - s)) : xstrdup(s);
}

static json_t *check_part(const struct part *pt, const char *runtime, bool *ok)
{
	const char *argv[4] = { pt->argv[0], pt->argv[1], pt->argv[2], NULL };
	if (!strcmp(pt->name, "runtime"))
		argv[0] = runtime;
	char *path = which(argv[0]);
	json_t *j = json_pack("{s:s, s:s, s:b}", "name", pt->name, "package", pt->package, "required",
			      pt->required);
	if (!path) {
		json_object_set_new(j, "found", json_false());
		if (pt->required)
			*ok = false;
		return j;
	}
	struct sbuf out = SBUF_INIT, errb = SBUF_INIT;
	struct child c = { .argv = argv, .out = &out, .errb = &errb, .timeout_ms = 10000 };
	child_run(&c, NULL);
	char *v = first_line(out.len ? out.buf : errb.buf);
	json_object_set_new(j, "found", json_true());
	json_object_set_new(j, "path", json_string(path));
	json_object_set_new(j, "version", json_string(v));
	free(v);
	free(path);
	sb_release(&out);
	sb_release(&errb);
	return j;
}

static json_t *check_cni(const struct node_paths *p, bool *ok)
{
	static const char *const plugins[] = { "ptp", "host-local", "loopback", NULL };
	json_t *j = json_pack("{s:s, s:s, s:b, s:[]}", "name", "cni-plugins", "package",
			      "containernetworking-plugins", "required", 1, "missing");
	char *dirs = xstrdup(p->cni_bin);
	const char *found_dir = NULL;
	for (const char *const *pl = plugins; *pl; pl++) {
		bool found = false;
		char *copy = xstrdup(dirs);
		for (char *d = strtok(copy, ":"); d && !found; d = strtok(NULL, ":")) {
			char *path = xasprintf("%s/%s", d, *pl);
			found = access(path, X_OK) == 0;
			if (found && !found_dir)
				json_object_set_new(j, "path", json_string(d)), found_dir = "";
			free(path);
		}
		free(copy);
		if (!found)
			json_array_append_new(json_object_get(j, "missing"), json_string(*pl));
	}
	free(dirs);
	bool all = json_array_size(json_object_get(j, "missing")) == 0;
	json_object_set_new(j, "found", json_boolean(all));
	if (!all)
		*ok = false;
	return j;
}

/* cgroup v2 (unified), v1, or the hybrid of v1 controllers plus a v2 mount. */
static json_t *check_cgroups(void)
{
	struct statfs sf;
	const char *version = "v1";
	if (statfs("/sys/fs/cgroup", &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC)
		version = "v2";
	else if (access("/sys/fs/cgroup/unified", F_OK) == 0)
		version = "hybrid";
	json_t *enforced = json_array(), *missing = json_array();
	static const char *const ctrls[] = { "memory", "cpu", "pids", NULL };
	struct sbuf v2 = SBUF_INIT;
	if (!strcmp(version, "v2"))
		sb_read_file(&v2, "/sys/fs/cgroup/cgroup.controllers", 4096, NULL);
	for (const char *const *c = ctrls; *c; c++) {
		bool on;
		if (!strcmp(version, "v2")) {
			char *pad = xasprintf(" %s ", v2.buf);
			char *w = xasprintf(" %s ", *c);
			for (char *x = pad; *x; x++)
				if (*x == '\n')
					*x = ' ';
			on = strstr(pad, w) != NULL;
			free(pad);
			free(w);
		} else {
			char *path = xasprintf("/sys/fs/cgroup/%s", *c);
			on = access(path, F_OK) == 0;
			free(path);
		}
		json_array_append_new(on ? enforced : missing, json_string(*c));
	}
	sb_release(&v2);
	return json_pack("{s:s, s:o, s:o, s:s}", "version", version, "enforced", enforced,
			 "notEnforced", missing, "driver", "cgroupfs (runc)");
}

int node_check(const struct node_opts *o, json_t **ret_report, bool *ret_ok, struct gerr **err)
{
	struct node_paths p;
	if (node_paths_init(&p, o, err) < 0)
		return -1;
	bool ok = true;
	json_t *list = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		json_array_append_new(list, check_part(&parts[i], p.runtime, &ok));
	json_array_append_new(list, check_cni(&p, &ok));
	/* the nftables applier is installed next to gitops */
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(self, '/');
	char *nft = slash ? xasprintf("%.*s/gitops-nft", (int)(slash - self), self) : xstrdup("gitops-nft");
	bool have_nft = access(nft, X_OK) == 0;
	json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:b, s:s}", "name", "gitops-nft", "package",
					      "gitops (make install)", "required", 1, "found", have_nft, "path", nft));
	if (!have_nft)
		ok = false;
	free(nft);
	*ret_report = json_pack("{s:s, s:o, s:o, s:s, s:b}", "version", gitops_version(), "parts", list,
				"cgroup", check_cgroups(), "stateDir", p.state, "ok", ok);
	*ret_ok = ok;
	node_paths_release(&p);
	return 0;
}
