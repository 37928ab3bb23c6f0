/* image.c: images on a node — skopeo copies them into OCI layouts under STATE/images, umoci unpacks them into bundles. */
#include "runtime/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Layout: STATE/images/<domain, ':' as '_'>/<repository path>/ is one OCI layout per
 * repository (tags share blobs); the reference name in it is the tag, or
 * "sha256-<hex>" for a pull by digest. A lock file in the layout serializes writers
 * (skopeo, LOCK_EX) against readers (umoci, index.json, LOCK_SH). Paths handed to
 * skopeo and umoci are relative to their working directory: both split "PATH:REF" at
 * a colon, and a registry's port or the state directory may hold one.
 * Old blobs are never collected yet. */

#define PULL_TIMEOUT_MS (10 * 60 * 1000)
#define UNPACK_TIMEOUT_MS (10 * 60 * 1000)
#define JSON_BLOB_MAX (4u << 20)
#define LOCK_NAME ".gitops-lock"
#define REF_ANNOTATION "org.opencontainers.image.ref.name"

/* An image name, normalized as docker and Kubernetes do. */
struct imgname {
	char *domain; /* "docker.io", "10.213.1.1:5000" */
	char *path;   /* "library/busybox" */
	char *tag;    /* NULL when pulled by digest */
	char *digest; /* "sha256:<hex>" or NULL */
	bool explicit_tag;
};

static void imgname_release(struct imgname *n)
{
	free(n->domain);
	free(n->path);
	free(n->tag);
	free(n->digest);
}

static bool all_of(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

static bool digest_ok(const char *d)
{
	return d && str_has_prefix(d, "sha256:") && strlen(d) == 7 + 64 && all_of(d + 7, 64, "0123456789abcdef");
}

/* Repository path: lowercase components, none empty or starting with a separator. */
static bool repo_path_ok(const char *p)
{
	if (!*p || !all_of(p, strlen(p), LOWER_DIGITS "._-/"))
		return false;
	for (const char *c = p; c; c = strchr(c, '/')) {
		c += *c == '/';
		if (!*c || strchr("._-/", *c))
			return false;
	}
	return true;
}

static bool domain_ok(const char *d)
{
	return *d && !strchr(".-:", *d) && all_of(d, strlen(d), ALNUM ".-:") && !strstr(d, "..");
}

/* Split off "@digest" and ":tag" (a colon after the last slash). */
static int split_ref(struct imgname *n, char *name, const char *image, struct gerr **err)
{
	char *at = strchr(name, '@'), *slash, *colon;
	if (at) {
		*at = '\0';
		if (!digest_ok(at + 1))
			return gerr_set(err, GERR_FAIL, "invalid image %s: digest must be sha256:<64 hex digits>", image);
		n->digest = xstrdup(at + 1);
	}
	slash = strrchr(name, '/');
	colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = '\0';
		size_t len = strlen(colon + 1);
		if (!len || len > 128 || colon[1] == '.' || colon[1] == '-' || !all_of(colon + 1, len, ALNUM "_.-"))
			return gerr_set(err, GERR_FAIL, "invalid image %s: bad tag", image);
		n->tag = xstrdup(colon + 1);
		n->explicit_tag = true;
	}
	if (n->digest) { /* skopeo takes a tag or a digest, not both: the digest wins */
		free(n->tag);
		n->tag = NULL;
	} else if (!n->tag) {
		n->tag = xstrdup("latest");
	}
	return 0;
}

/* "busybox" → docker.io/library/busybox:latest; "host:5000/a/b:t" stays itself. */
static int parse_image(const char *image, struct imgname *n, struct gerr **err)
{
	memset(n, 0, sizeof(*n));
	char *name = xstrdup(image);
	int r = split_ref(n, name, image, err);
	char *slash = strchr(name, '/');
	bool has_domain = slash && (memchr(name, '.', (size_t)(slash - name)) ||
				    memchr(name, ':', (size_t)(slash - name)) ||
				    !strncmp(name, "localhost/", 10));
	if (has_domain) {
		n->domain = xstrndup(name, (size_t)(slash - name));
		n->path = xstrdup(slash + 1);
	} else {
		n->domain = xstrdup("docker.io");
		n->path = xstrdup(name);
	}
	if (!strcmp(n->domain, "index.docker.io")) {
		free(n->domain);
		n->domain = xstrdup("docker.io");
	}
	if (!strcmp(n->domain, "docker.io") && !strchr(n->path, '/')) {
		char *p = xasprintf("library/%s", n->path);
		free(n->path);
		n->path = p;
	}
	if (r == 0 && (!domain_ok(n->domain) || !repo_path_ok(n->path)))
		r = gerr_set(err, GERR_FAIL, "invalid image %s: not a valid reference", image);
	free(name);
	if (r < 0)
		imgname_release(n);
	return r;
}

/* Layout directory relative to STATE/images, and the reference name in it. */
static char *layout_rel(const struct imgname *n)
{
	char *rel = xasprintf("%s/%s", n->domain, n->path);
	for (char *c = rel; *c != '/'; c++)
		if (*c == ':')
			*c = '_';
	return rel;
}

static char *ref_name(const struct imgname *n)
{
	return n->digest ? xasprintf("sha256-%s", n->digest + 7) : xstrdup(n->tag);
}

/* ---- the layout ------------------------------------------------------------ */

/* Lock the layout (creating its directory); returns the fd to close, or -1. */
static int layout_lock(const char *layout, int op, struct gerr **err)
{
	if (mkdir_p(layout, 0700, err) < 0)
		return -1;
	char *path = xasprintf("%s/" LOCK_NAME, layout);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		gerr_sys(err, "open %s", path);
	while (fd >= 0 && flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		gerr_sys(err, "lock %s", path);
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

/* The manifest digest of ref in layout/index.json: 1 found, 0 not, -1 error. */
static int index_lookup(const char *layout, const char *ref, char **ret_digest, struct gerr **err)
{
	char *path = xasprintf("%s/index.json", layout);
	bool absent = access(path, F_OK) < 0 && errno == ENOENT;
	json_t *index = absent ? NULL : json_load_path(path, JSON_BLOB_MAX, err);
	free(path);
	if (absent || !index)
		return absent ? 0 : -1;
	int r = 0;
	size_t i;
	const json_t *m;
	json_array_foreach(json_object_get(index, "manifests"), i, m) {
		const char *name = json_string_value(json_object_get(json_object_get(m, "annotations"), REF_ANNOTATION));
		const char *digest = json_string_value(json_object_get(m, "digest"));
		if (name && !strcmp(name, ref) && digest_ok(digest)) {
			*ret_digest = xstrdup(digest);
			r = 1;
			break;
		}
	}
	json_decref(index);
	return r;
}

static json_t *read_blob(const char *layout, const char *digest, struct gerr **err)
{
	if (!digest_ok(digest)) {
		gerr_set(err, GERR_FAIL, "%s: bad digest %s", layout, digest ? digest : "(none)");
		return NULL;
	}
	char *path = xasprintf("%s/blobs/sha256/%s", layout, digest + 7);
	json_t *v = json_load_path(path, JSON_BLOB_MAX, err);
	free(path);
	return v;
}

/* index.json → manifest → config blob → its "config" (Entrypoint, Cmd, ...). */
static int image_config_read(const char *layout, const char *ref, json_t **ret, struct gerr **err)
{
	char *digest = NULL;
	int r = index_lookup(layout, ref, &digest, err);
	if (r == 0)
		r = gerr_set(err, GERR_FAIL, "%s: no image %s in the layout", layout, ref);
	json_t *manifest = r < 0 ? NULL : read_blob(layout, digest, err);
	const char *cfg_digest = json_string_value(json_object_get(json_object_get(manifest, "config"), "digest"));
	json_t *blob = manifest ? read_blob(layout, cfg_digest, err) : NULL;
	if (blob) {
		static const char *const keys[] = { "Entrypoint", "Cmd", "Env", "WorkingDir", "User" };
		const json_t *c = json_object_get(blob, "config");
		*ret = json_object();
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			if (json_object_get(c, keys[i]) && !json_is_null(json_object_get(c, keys[i])))
				json_object_set(*ret, keys[i], json_object_get(c, keys[i]));
	}
	r = blob ? 0 : -1;
	json_decref(blob);
	json_decref(manifest);
	free(digest);
	return r;
}

/* ---- pulling ---------------------------------------------------------------- */

static bool insecure_registry(const char *domain)
{
	if (!strcmp(domain, "localhost") || str_has_prefix(domain, "localhost:") ||
	    !strcmp(domain, "127.0.0.1") || str_has_prefix(domain, "127.0.0.1:"))
		return true;
	const char *list = getenv("GITOPS_INSECURE_REGISTRIES");
	size_t n = strlen(domain);
	for (const char *p = list; p && *p;) {
		p += strspn(p, " ,");
		size_t len = strcspn(p, " ,");
		if (len == n && !strncmp(p, domain, n))
			return true;
		p += len;
	}
	return false;
}

/* The registry to pull DOMAIN's images from: its mirror (the cluster setting
 * registryMirrors, "docker.io=10.0.0.1:5000,quay.io=..." in GITOPS_REGISTRY_MIRRORS,
 * as containerd's mirrors), else DOMAIN itself. Images keep their own names; only
 * the bytes come from the mirror. Returns a malloc'ed string. */
static char *pull_domain(const char *domain)
{
	const char *list = getenv("GITOPS_REGISTRY_MIRRORS");
	size_t n = strlen(domain);
	for (const char *p = list; p && *p;) {
		p += strspn(p, " ,");
		size_t len = strcspn(p, " ,");
		const char *eq = memchr(p, '=', len);
		if (eq && (size_t)(eq - p) == n && !strncmp(p, domain, n) && eq + 1 < p + len)
			return xstrndup(eq + 1, (size_t)(p + len - eq - 1));
		p += len;
	}
	return xstrdup(domain);
}

/* The docker config written to a 0600 file under RUN for skopeo; caller unlinks. */
static char *write_authfile(const struct node_paths *p, const char *auth_json, struct gerr **err)
{
	if (mkdir_p(p->run, 0700, err) < 0)
		return NULL;
	char *path = xasprintf("%s/auth-XXXXXX", p->run);
	int fd = mkostemp(path, O_CLOEXEC);
	size_t len = strlen(auth_json), off = 0;
	while (fd >= 0 && off < len) {
		ssize_t w = write(fd, auth_json + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (fd < 0 || off < len || close(fd) < 0) {
		gerr_sys(err, "writing registry credentials to %s", path);
		if (fd >= 0)
			unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

/* skopeo's reason, on one line: the msg="..." of its last log line, else that line. */
static char *skopeo_reason(const struct sbuf *errb)
{
	char *text = xstrndup(errb->buf, errb->len), *end = text + strlen(text);
	while (end > text && strchr(" \t\r\n", end[-1]))
		*--end = '\0';
	char *line = strrchr(text, '\n') ? strrchr(text, '\n') + 1 : text;
	char *msg = strstr(line, "msg=\"");
	struct sbuf sb = SBUF_INIT;
	if (msg) {
		for (char *c = msg + 5; *c && *c != '"'; c++) { /* logrus quoting: \" \\ \n */
			bool esc = *c == '\\' && c[1];
			c += esc;
			sb_addc(&sb, esc && *c == 'n' ? ' ' : *c);
		}
	} else {
		sb_adds(&sb, line);
	}
	free(text);
	if (!sb.len)
		sb_adds(&sb, "skopeo failed without saying why");
	return sb_detach(&sb, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int skopeo_copy(const struct node_paths *p, const struct imgname *n, const char *rel,
		       const char *ref, const char *auth_json, struct gerr **err)
{
	struct strvec av = STRVEC_INIT;
	char *authfile = auth_json && *auth_json ? write_authfile(p, auth_json, err) : NULL;
	if (auth_json && *auth_json && !authfile)
		return -1;
	/* no signature policy: Kubernetes does not verify images either */
	strvec_pushv(&av, (const char *const[]){ "skopeo", "--insecure-policy", "copy", "--quiet", NULL });
	char *from = pull_domain(n->domain);
	if (insecure_registry(from))
		strvec_push(&av, "--src-tls-verify=false");
	if (authfile) {
		strvec_push(&av, "--src-authfile");
		strvec_push(&av, authfile);
	}
	char *src = xasprintf("%s/%s%s%s", from, n->path, n->digest ? "@" : ":",
			      n->digest ? n->digest : n->tag);
	free(from);
	strvec_pushf(&av, "docker://%s", src);
	strvec_pushf(&av, "oci:%s:%s", rel, ref);
	struct sbuf errb = SBUF_INIT;
	struct child c = { .argv = strvec_argv(&av), .dir = p->images, .errb = &errb,
			   .out_max = 1 << 16, .timeout_ms = PULL_TIMEOUT_MS };
	int64_t t0 = mono_ms();
	int st = child_run(&c, err);
	if (st == 128 + 9 && mono_ms() - t0 >= PULL_TIMEOUT_MS)
		gerr_set(err, GERR_FAIL, "pulling %s timed out after %d s", src, PULL_TIMEOUT_MS / 1000);
	else if (st > 0) {
		char *why = skopeo_reason(&errb);
		gerr_set(err, GERR_FAIL, "%s", why);
		free(why);
	}
	if (authfile)
		unlink(authfile);
	free(authfile);
	sb_release(&errb);
	strvec_clear(&av);
	free(src);
	return st == 0 ? 0 : -1;
}

static const char *policy_of(const struct imgname *n, const char *policy, struct gerr **err)
{
	if (!policy || !*policy) /* Kubernetes' default */
		return n->digest || (n->explicit_tag && strcmp(n->tag, "latest")) ? "IfNotPresent" : "Always";
	if (strcmp(policy, "Always") && strcmp(policy, "IfNotPresent") && strcmp(policy, "Never")) {
		gerr_set(err, GERR_FAIL, "unknown imagePullPolicy %s", policy);
		return NULL;
	}
	return policy;
}

/* Under the layout's lock: look, pull when the policy says so, read the digest. */
static int ensure_locked(const struct node_paths *p, const struct imgname *n, const char *image,
			 const char *policy, const char *auth_json, struct image_ref *ret, struct gerr **err)
{
	char *rel = layout_rel(n);
	int r = 0;
	if (strcmp(policy, "Always"))
		r = index_lookup(ret->layout, ret->tag, &ret->digest, err);
	if (r == 0 && !strcmp(policy, "Never"))
		r = gerr_set(err, GERR_FAIL, "ErrImageNeverPull: container image \"%s\" is not present "
			     "with pull policy of Never", image);
	if (r == 0)
		r = skopeo_copy(p, n, rel, ret->tag, auth_json, err);
	if (r == 0 && (r = index_lookup(ret->layout, ret->tag, &ret->digest, err)) == 0)
		r = gerr_set(err, GERR_FAIL, "%s: pulled, but not found in %s", image, ret->layout);
	free(rel);
	return r < 0 ? -1 : 0;
}

int image_ensure(const struct node_paths *p, const char *image, const char *pull_policy,
		 const char *auth_json, struct image_ref *ret, struct gerr **err)
{
	struct imgname n;
	memset(ret, 0, sizeof(*ret));
	if (parse_image(image ? image : "", &n, err) < 0)
		return -1;
	const char *policy = policy_of(&n, pull_policy, err);
	char *rel = layout_rel(&n);
	ret->layout = xasprintf("%s/%s", p->images, rel);
	ret->tag = ref_name(&n);
	free(rel);
	int lock = policy ? layout_lock(ret->layout, LOCK_EX, err) : -1;
	int r = lock < 0 ? -1 : ensure_locked(p, &n, image, policy, auth_json, ret, err);
	if (lock >= 0)
		close(lock);
	imgname_release(&n);
	if (r < 0)
		image_ref_release(ret);
	return r;
}

void image_ref_release(struct image_ref *r)
{
	if (!r)
		return;
	free(r->layout);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

/* ---- unpacking -------------------------------------------------------------- */

/* `umoci raw unpack`: the rootfs alone, without the mtree and runtime config that
 * `umoci unpack` also computes (hashing every file). */
static int umoci_unpack(const struct image_ref *img, const char *rootfs, struct gerr **err)
{
	char *image = xasprintf(".:%s", img->tag);
	const char *argv[] = { "umoci", "raw", "unpack", "--image", image, rootfs, NULL };
	struct sbuf errb = SBUF_INIT;
	struct child c = { .argv = argv, .dir = img->layout, .out = &errb, .errb = &errb,
			   .out_max = 1 << 16, .timeout_ms = UNPACK_TIMEOUT_MS };
	int st = child_run(&c, err);
	if (st > 0) {
		while (errb.len && strchr(" \n", errb.buf[errb.len - 1]))
			sb_setlen(&errb, errb.len - 1);
		const char *nl = strrchr(errb.buf, '\n');
		gerr_set(err, GERR_FAIL, "umoci raw unpack %s: %s", img->tag,
			 errb.len ? (nl ? nl + 1 : errb.buf) : "failed");
	}
	sb_release(&errb);
	free(image);
	return st == 0 ? 0 : -1;
}

/* Unpack into tmp/rootfs, then swap it in for bundle/rootfs. */
static int unpack_swap(const struct image_ref *img, const char *bundle_dir, const char *tmp,
		       struct gerr **err)
{
	char *fresh = xasprintf("%s/rootfs", tmp), *old = xasprintf("%s/old", tmp);
	char *rootfs = xasprintf("%s/rootfs", bundle_dir);
	int r = umoci_unpack(img, fresh, err);
	if (r == 0 && rename(rootfs, old) < 0 && errno != ENOENT)
		r = gerr_sys(err, "moving the old %s aside", rootfs);
	if (r == 0 && rename(fresh, rootfs) < 0)
		r = gerr_sys(err, "rename %s", rootfs);
	free(fresh);
	free(old);
	free(rootfs);
	return r;
}

/* Remove what an unpack interrupted by a crash left in the bundle. */
static void remove_stale(const char *bundle_dir)
{
	DIR *d = opendir(bundle_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!str_has_prefix(de->d_name, ".unpack-"))
			continue;
		char *path = xasprintf("%s/%s", bundle_dir, de->d_name);
		rm_rf(path);
		free(path);
	}
	if (d)
		closedir(d);
}

int image_unpack(const struct node_paths *p, const struct image_ref *img, const char *bundle_dir,
		 json_t **ret_config, struct gerr **err)
{
	(void)p;
	json_t *config = NULL;
	if (mkdir_p(bundle_dir, 0700, err) < 0)
		return -1;
	remove_stale(bundle_dir);
	char *tmp = xasprintf("%s/.unpack-XXXXXX", bundle_dir);
	int lock = layout_lock(img->layout, LOCK_SH, err), r = lock < 0 ? -1 : 0;
	bool made = r == 0 && mkdtemp(tmp);
	if (r == 0 && !made)
		r = gerr_sys(err, "mkdtemp %s", tmp);
	if (r == 0)
		r = image_config_read(img->layout, img->tag, &config, err);
	if (r == 0)
		r = unpack_swap(img, bundle_dir, tmp, err);
	if (lock >= 0)
		close(lock);
	if (made)
		rm_rf(tmp);
	free(tmp);
	if (r == 0 && ret_config)
		*ret_config = config;
	else
		json_decref(config);
	return r;
}
