/* volume.c: a pod's volumes under POD/volumes — emptyDir (tmpfs for medium Memory),
 * hostPath, persistentVolumeClaim (a node-local directory), and configMap, secret
 * (on tmpfs: never on disk in clear), downwardAPI and projected contents written
 * atomically as the kubelet does: files in a "..<hash>" directory, a "..data"
 * symlink swapped by rename, and one symlink per top-level name into "..data". */
#include "runtime/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"

struct vfile {
	char *path;   /* relative: "key" or "dir/key" */
	char *data;
	size_t len;
	mode_t mode;
};

struct projection {
	struct vfile *files;
	size_t n, alloc;
};

static void proj_add(struct projection *pr, const char *path, const void *data, size_t len, mode_t mode)
{
	GROW(pr->files, pr->alloc, pr->n + 1);
	struct vfile *f = &pr->files[pr->n++];
	f->path = xstrdup(path);
	f->data = xmalloc(len + 1);
	memcpy(f->data, data, len);
	f->data[len] = '\0';
	f->len = len;
	f->mode = mode;
}

static void proj_release(struct projection *pr)
{
	for (size_t i = 0; i < pr->n; i++) {
		free(pr->files[i].path);
		freezero(pr->files[i].data, pr->files[i].len);
	}
	free(pr->files);
	memset(pr, 0, sizeof(*pr));
}

static mode_t mode_of(const json_t *item, const json_t *dflt)
{
	json_int_t m = json_integer_value(json_object_get(item, "mode"));
	if (!m)
		m = json_integer_value(dflt);
	return (mode_t)(m ? m & 07777 : 0644);
}

/* Keys of a ConfigMap or Secret into the projection, all of them or the items. */
static int project_keys(struct projection *pr, const json_t *obj, bool secret, const json_t *src,
			const json_t *dflt_mode, const char *what, struct gerr **err)
{
	const json_t *items = json_object_get(src, "items");
	const json_t *data = json_object_get(obj, "data"), *bin = json_object_get(obj, "binaryData");
	const char *key;
	json_t *val;
	size_t i;
	if (json_array_size(items)) {
		json_t *it;
		json_array_foreach(items, i, it) {
			key = json_string_value(json_object_get(it, "key"));
			const char *path = json_string_value(json_object_get(it, "path"));
			val = json_object_get(data, key ? key : "");
			bool b = !val && bin;
			if (!val)
				val = json_object_get(bin, key ? key : "");
			if (!val || !path) {
				if (json_is_true(json_object_get(src, "optional")))
					continue;
				return gerr_set(err, GERR_FAIL, "%s: no key \"%s\"", what, key ? key : "");
			}
			struct sbuf dec = SBUF_INIT;
			const char *s = json_string_value(val);
			if ((secret || b) && base64_decode(s, strlen(s), &dec))
				proj_add(pr, path, dec.buf, dec.len, mode_of(it, dflt_mode));
			else
				proj_add(pr, path, s, strlen(s), mode_of(it, dflt_mode));
			freezero(sb_detach(&dec, NULL), dec.len);
		}
		return 0;
	}
	const json_t *maps[2] = { data, bin };
	for (int m = 0; m < 2; m++)
		json_object_foreach((json_t *)maps[m], key, val) {
			struct sbuf dec = SBUF_INIT;
			const char *s = json_string_value(val);
			if (!s)
				continue;
			if ((secret || m == 1) && base64_decode(s, strlen(s), &dec))
				proj_add(pr, key, dec.buf, dec.len, mode_of(NULL, dflt_mode));
			else
				proj_add(pr, key, s, strlen(s), mode_of(NULL, dflt_mode));
			freezero(sb_detach(&dec, NULL), dec.len);
		}
	return 0;
}

static void labels_text(const json_t *map, struct sbuf *out)
{
	const char **keys = xcalloc(json_object_size(map) + 1, sizeof(*keys));
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)map, k, v)
		keys[n++] = k;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			const char *t = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_object_get(map, keys[i]));
		sb_addf(out, "%s=\"", keys[i]);
		for (const char *p = s ? s : ""; *p; p++) {
			if (*p == '"' || *p == '\\')
				sb_addc(out, '\\');
			if (*p == '\n')
				sb_adds(out, "\\n");
			else
				sb_addc(out, *p);
		}
		sb_adds(out, "\"\n");
	}
	free(keys);
}

static int project_downward(struct projection *pr, const json_t *pod, const json_t *src,
			    const json_t *dflt_mode, struct gerr **err)
{
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(src, "items"), i, it) {
		const char *path = json_string_value(json_object_get(it, "path"));
		const char *fp = json_string_value(json_object_get(json_object_get(it, "fieldRef"), "fieldPath"));
		struct sbuf text = SBUF_INIT;
		if (!path)
			continue;
		if (fp && !strcmp(fp, "metadata.labels"))
			labels_text(json_object_get(pod, "labels"), &text);
		else if (fp && !strcmp(fp, "metadata.annotations"))
			labels_text(json_object_get(pod, "annotations"), &text);
		else if (fp && !strcmp(fp, "metadata.name"))
			sb_adds(&text, json_string_value(json_object_get(pod, "name")));
		else if (fp && !strcmp(fp, "metadata.namespace"))
			sb_adds(&text, json_string_value(json_object_get(pod, "namespace")));
		else if (fp && !strcmp(fp, "metadata.uid"))
			sb_adds(&text, json_string_value(json_object_get(pod, "uid")));
		else if (fp) {
			sb_release(&text);
			return gerr_set(err, GERR_FAIL, "downwardAPI: fieldPath %s is not supported", fp);
		} else {
			sb_release(&text);
			continue; /* resourceFieldRef: not projected yet */
		}
		proj_add(pr, path, text.buf, text.len, mode_of(it, dflt_mode));
		sb_release(&text);
	}
	return 0;
}

static const json_t *lookup(const json_t *pod, const char *which, const json_t *src, const char *key)
{
	const char *name = json_string_value(json_object_get(src, key));
	return name ? json_object_get(json_object_get(pod, which), name) : NULL;
}

static int project_volume(struct projection *pr, const json_t *pod, const json_t *vol,
			  bool *ret_secret, struct gerr **err)
{
	const json_t *src, *obj;
	if ((src = json_object_get(vol, "configMap"))) {
		obj = lookup(pod, "configMaps", src, "name");
		if (!obj)
			return json_is_true(json_object_get(src, "optional")) ? 0 :
				gerr_set(err, GERR_FAIL, "configmap \"%s\" not found",
					 json_string_value(json_object_get(src, "name")));
		return project_keys(pr, obj, false, src, json_object_get(src, "defaultMode"), "configMap", err);
	}
	if ((src = json_object_get(vol, "secret"))) {
		*ret_secret = true;
		obj = lookup(pod, "secrets", src, "secretName");
		if (!obj)
			return json_is_true(json_object_get(src, "optional")) ? 0 :
				gerr_set(err, GERR_FAIL, "secret \"%s\" not found",
					 json_string_value(json_object_get(src, "secretName")));
		return project_keys(pr, obj, true, src, json_object_get(src, "defaultMode"), "secret", err);
	}
	if ((src = json_object_get(vol, "downwardAPI")))
		return project_downward(pr, pod, src, json_object_get(src, "defaultMode"), err);
	src = json_object_get(vol, "projected");
	const json_t *dflt = json_object_get(src, "defaultMode");
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(src, "sources"), i, s) {
		const json_t *x;
		int r = 0;
		if ((x = json_object_get(s, "configMap")) && (obj = lookup(pod, "configMaps", x, "name")))
			r = project_keys(pr, obj, false, x, dflt, "configMap", err);
		else if ((x = json_object_get(s, "secret")) && (obj = lookup(pod, "secrets", x, "name"))) {
			*ret_secret = true;
			r = project_keys(pr, obj, true, x, dflt, "secret", err);
		} else if ((x = json_object_get(s, "downwardAPI")))
			r = project_downward(pr, pod, x, dflt, err);
		else if (json_object_get(s, "configMap") || json_object_get(s, "secret")) {
			const json_t *ref = json_object_get(s, "configMap") ? json_object_get(s, "configMap")
									     : json_object_get(s, "secret");
			if (!json_is_true(json_object_get(ref, "optional")))
				r = gerr_set(err, GERR_FAIL, "projected source \"%s\" not found",
					     json_string_value(json_object_get(ref, "name")));
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the atomic writer ---- */

static int write_all_files(const char *dir, const struct projection *pr, struct gerr **err)
{
	for (size_t i = 0; i < pr->n; i++) {
		const struct vfile *f = &pr->files[i];
		if (strstr(f->path, "..") || f->path[0] == '/')
			return gerr_set(err, GERR_FAIL, "volume path \"%s\" must be relative without '..'", f->path);
		char *path = xasprintf("%s/%s", dir, f->path);
		char *slash = strrchr(path, '/');
		*slash = '\0';
		int r = mkdir_p(path, 0755, err);
		*slash = '/';
		int fd = r < 0 ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, f->mode);
		if (r == 0 && fd < 0)
			r = gerr_sys(err, "create %s", path);
		if (fd >= 0) {
			if (write(fd, f->data, f->len) != (ssize_t)f->len)
				r = gerr_sys(err, "write %s", path);
			fchmod(fd, f->mode);
			close(fd);
		}
		free(path);
		if (r < 0)
			return r;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int rm_rf(const char *path)
{
	/* FTW_MOUNT: never cross into a mount left behind (e.g. a tmpfs not unmounted) */
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static char *projection_hash(const struct projection *pr)
{
	json_t *j = json_array();
	for (size_t i = 0; i < pr->n; i++) {
		char *h = NULL;
		json_t *data = json_stringn(pr->files[i].data, pr->files[i].len);
		if (!data) { /* binary: hash it instead */
			json_t *tmp = json_integer((json_int_t)pr->files[i].len);
			h = api_json_sha256(tmp);
			json_decref(tmp);
		}
		json_array_append_new(j, json_pack("{s:s, s:o, s:i, s:s}", "p", pr->files[i].path, "d",
						   data ? data : json_null(), "m", (int)pr->files[i].mode,
						   "h", h ? h : ""));
		free(h);
	}
	char *hash = api_json_sha256(j);
	json_decref(j);
	hash[16] = '\0';
	return hash;
}

static int atomic_project(const char *dir, const struct projection *pr, struct gerr **err)
{
	char *hash = projection_hash(pr);
	char *target = xasprintf("..%s", hash), *data_link = xasprintf("%s/..data", dir);
	char cur[256];
	ssize_t n = readlink(data_link, cur, sizeof(cur) - 1);
	int r = 0;
	if (n > 0 && (size_t)n == strlen(target) && !memcmp(cur, target, (size_t)n))
		goto out; /* unchanged */
	char *tdir = xasprintf("%s/%s", dir, target), *tmp_link = xasprintf("%s/..data_tmp", dir);
	rm_rf(tdir);
	if (mkdir(tdir, 0755) < 0 || write_all_files(tdir, pr, err) < 0) {
		r = err && *err ? -1 : gerr_sys(err, "mkdir %s", tdir);
		free(tdir);
		free(tmp_link);
		goto out;
	}
	unlink(tmp_link);
	if (symlink(target, tmp_link) < 0 || rename(tmp_link, data_link) < 0)
		r = gerr_sys(err, "swap %s", data_link);
	for (size_t i = 0; r == 0 && i < pr->n; i++) {
		const char *slash = strchr(pr->files[i].path, '/');
		char *top = slash ? xstrndup(pr->files[i].path, (size_t)(slash - pr->files[i].path))
				  : xstrdup(pr->files[i].path);
		char *link = xasprintf("%s/%s", dir, top), *to = xasprintf("..data/%s", top);
		if (access(link, F_OK) != 0 && symlink(to, link) < 0 && errno != EEXIST)
			r = gerr_sys(err, "symlink %s", link);
		free(top);
		free(link);
		free(to);
	}
	if (r == 0 && n > 0) { /* drop the previous generation */
		cur[n] = '\0';
		char *old = xasprintf("%s/%s", dir, cur);
		rm_rf(old);
		free(old);
	}
	free(tdir);
	free(tmp_link);
out:
	free(hash);
	free(target);
	free(data_link);
	return r;
}

/* ---- volumes ---- */

static bool is_mountpoint(const char *path)
{
	struct stat a, b;
	char *parent = xasprintf("%s/..", path);
	bool r = stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
	free(parent);
	return r;
}

static int mount_tmpfs(const char *dir, const char *size, struct gerr **err)
{
	if (is_mountpoint(dir))
		return 0;
	char *opts = size ? xasprintf("mode=0755,size=%s", size) : xstrdup("mode=0755");
	int r = mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts);
	free(opts);
	return r < 0 ? gerr_sys(err, "mount tmpfs on %s", dir) : 0;
}

static char *state_of(const char *pod_dir)
{
	char *s = xstrdup(pod_dir), *slash = strrchr(s, '/');
	if (slash)
		*slash = '\0';
	slash = strrchr(s, '/');
	if (slash)
		*slash = '\0';
	return s;
}

char *volume_host_path(const json_t *pod, const char *pod_dir, const char *volume)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(json_object_get(pod, "spec"), "volumes"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		if (!name || strcmp(name, volume))
			continue;
		const json_t *hp = json_object_get(v, "hostPath");
		if (hp)
			return xstrdup(json_string_value(json_object_get(hp, "path")));
		const json_t *pvc = json_object_get(v, "persistentVolumeClaim");
		if (pvc) {
			char *state = state_of(pod_dir);
			char *p = xasprintf("%s/pvc/%s/%s", state, json_string_value(json_object_get(pod, "namespace")),
					    json_string_value(json_object_get(pvc, "claimName")));
			free(state);
			return p;
		}
		return xasprintf("%s/volumes/%s", pod_dir, name);
	}
	return NULL;
}

static int setup_host_path(const json_t *hp, struct gerr **err)
{
	const char *path = json_string_value(json_object_get(hp, "path"));
	const char *type = json_string_value(json_object_get(hp, "type"));
	struct stat st;
	if (!path)
		return gerr_set(err, GERR_FAIL, "hostPath without a path");
	if (type && !strcmp(type, "DirectoryOrCreate"))
		return mkdir_p(path, 0755, err);
	if (type && !strcmp(type, "FileOrCreate")) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return gerr_sys(err, "create %s", path);
		close(fd);
		return 0;
	}
	if (type && *type && stat(path, &st) < 0)
		return gerr_set(err, GERR_FAIL, "hostPath type check failed: %s is not a %s", path, type);
	if (type && !strcmp(type, "Directory") && !S_ISDIR(st.st_mode))
		return gerr_set(err, GERR_FAIL, "hostPath type check failed: %s is not a directory", path);
	return 0;
}

static int setup_one(const json_t *pod, const char *pod_dir, const json_t *vol, struct gerr **err)
{
	const char *name = json_string_value(json_object_get(vol, "name"));
	if (json_object_get(vol, "hostPath"))
		return setup_host_path(json_object_get(vol, "hostPath"), err);
	char *dir = volume_host_path(pod, pod_dir, name);
	int r = mkdir_p(dir, 0755, err);
	const json_t *ed = json_object_get(vol, "emptyDir");
	const char *medium = json_string_value(json_object_get(ed, "medium"));
	if (r == 0 && medium && !strcmp(medium, "Memory")) {
		int64_t milli;
		const char *limit = json_string_value(json_object_get(ed, "sizeLimit"));
		char *size = limit && api_quantity_parse(limit, &milli, NULL) == 0
			? xasprintf("%lld", (long long)((milli + 999) / 1000)) : NULL;
		r = mount_tmpfs(dir, size, err);
		free(size);
	}
	bool projected = json_object_get(vol, "configMap") || json_object_get(vol, "secret") ||
			 json_object_get(vol, "downwardAPI") || json_object_get(vol, "projected");
	if (r == 0 && projected) {
		struct projection pr = { 0 };
		bool secret = false;
		r = project_volume(&pr, pod, vol, &secret, err);
		if (r == 0 && secret)
			r = mount_tmpfs(dir, NULL, err);
		if (r == 0)
			r = atomic_project(dir, &pr, err);
		proj_release(&pr);
	}
	if (r < 0)
		gerr_wrap(err, "volume \"%s\"", name);
	free(dir);
	return r;
}

int volumes_setup(const json_t *pod, const char *pod_dir, struct gerr **err)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(json_object_get(pod, "spec"), "volumes"), i, v)
		if (setup_one(pod, pod_dir, v, err) < 0)
			return -1;
	return 0;
}

void volumes_teardown(const char *pod_dir)
{
	char *dir = xasprintf("%s/volumes", pod_dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = xasprintf("%s/%s", dir, e->d_name);
		if (is_mountpoint(p))
			umount2(p, MNT_DETACH);
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
}
