/* git.c: the git source — open a repository (a local path, or a URL cloned once
 * into a bare cache and fetched), resolve a ref to a commit, and read the
 * manifests of a subtree from the object database (never a checkout).
 *
 * Memory: plain malloc/free with explicit release (no arena): a source lives as
 * long as its caller keeps it; the files it returns are the caller's. Every
 * libgit2 object taken in a function is freed before it returns, except the
 * repository, commit and tree the source keeps until store_source_close().
 *
 * The URL cache: STATE_DIR/repos/<first 16 hex of sha256(url)> is a bare
 * repository whose refs/heads and refs/tags mirror the remote's (fetched with
 * pruning, forced), and whose HEAD follows the remote's default branch. It is
 * written only under an exclusive flock of STATE_DIR/repos/<hash>.lock; a first
 * clone goes to <hash>.tmp and is renamed into place, so a cache directory that
 * exists is a complete clone. Readers that do not fetch take the lock shared.
 * The URL is not stored in the cache (an anonymous remote), so credentials in
 * it stay out of the repository's config; messages show it with the password
 * replaced by "***".
 */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <git2.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define IGNORE_FILE ".gitopsignore"
#define IGNORE_MAX_BYTES (1u << 20) /* one .gitopsignore */
#define TREE_MAX_DEPTH 256          /* directory nesting under the root */


const char *store_git_msg(void)
{
	const git_error *e = git_error_last();
	return e && e->message ? e->message : "unknown libgit2 error";
}

/* ---- names: URLs, paths ----------------------------------------------------- */

/* A URL, as git decides: a scheme, or scp-like "[user@]host:path" (a ':' before
 * any '/'), unless a local file of that name exists. */
static bool is_url(const char *s)
{
	static const char *const schemes[] = {
		"https://", "http://", "ssh://", "git://", "file://", "git+ssh://", "ssh+git://",
	};
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (str_has_prefix(s, schemes[i]))
			return true;
	const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
	struct stat st;
	return colon && colon != s && (!slash || colon < slash) && stat(s, &st) < 0;
}

/* "https://user:secret@host/x" -> "https://user:***@host/x"; others unchanged. */
static char *redact_url(const char *s)
{
	const char *auth = strstr(s, "://");
	if (!auth)
		return xstrdup(s);
	auth += 3;
	size_t alen = strcspn(auth, "/");
	const char *at = memrchr(auth, '@', alen);
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!colon)
		return xstrdup(s);
	return xasprintf("%.*s:***%s", (int)(colon - s), s, at);
}

static void url_hash(const char *url, char ret[17])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(url, strlen(url), md, &n, EVP_sha256(), NULL) || n < 8)
		abort(); /* sha256 is always there: like an allocation failure */
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 8; i++) {
		ret[2 * i] = hex[md[i] >> 4];
		ret[2 * i + 1] = hex[md[i] & 15];
	}
	ret[16] = '\0';
}

/* "./a//b/" -> "a/b"; NULL, "", "." and "/" -> "". */
static char *normalize_path(const char *in)
{
	struct sbuf sb = SBUF_INIT;
	for (const char *p = in ? in : ""; *p;) {
		size_t n = strcspn(p, "/");
		if (n && !(n == 1 && p[0] == '.')) {
			if (sb.len)
				sb_addc(&sb, '/');
			sb_add(&sb, p, n);
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return sb_detach(&sb, NULL);
}

/* ---- the URL cache ---------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

static int remove_tree(const char *path, struct gerr **err)
{
	struct stat st;
	if (lstat(path, &st) < 0 && errno == ENOENT)
		return 0;
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return gerr_sys(err, "removing %s", path);
	return 0;
}

int store_lock_cache(const char *lock_path, bool shared, struct gerr **err)
{
	int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return gerr_sys(err, "opening lock %s", lock_path);
	while (flock(fd, shared ? LOCK_SH : LOCK_EX) < 0) {
		if (errno != EINTR) {
			gerr_sys(err, "locking %s", lock_path);
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* ssh: the agent's keys, as user@ from the URL (or "git"). https: credentials in
 * the URL are used by libgit2 itself; otherwise there are none to offer. */
int store_cred_cb(git_credential **out, const char *url, const char *user,
		   unsigned int allowed, void *payload)
{
	struct cred_state *st = payload;
	(void)url;
	if (st->tries++ >= CRED_MAX_TRIES) {
		git_error_set_str(GIT_ERROR_NET, "authentication failed (tried the ssh agent's keys)");
		return GIT_EAUTH;
	}
	if (!user || !*user)
		user = "git";
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	if (allowed & GIT_CREDENTIAL_SSH_KEY)
		return git_credential_ssh_key_from_agent(out, user);
	return GIT_PASSTHROUGH;
}

/* Point HEAD at the remote's default branch, when it says which. */
static void follow_remote_head(git_repository *repo, git_remote *remote)
{
	git_buf head = GIT_BUF_INIT;
	git_reference *ref = NULL;
	if (git_remote_default_branch(&head, remote) == 0 &&
	    git_reference_lookup(&ref, repo, head.ptr) == 0)
		git_repository_set_head(repo, head.ptr);
	git_reference_free(ref);
	git_buf_dispose(&head);
	git_error_clear();
}

/* url.<base>.insteadOf, the longest matching base winning, as git does. Done here
 * because libgit2 1.5's own rewriting leaks a pcre2 match block (~10 KiB) per
 * config entry on every remote it creates; caller frees. */
char *store_insteadof(git_repository *repo, const char *url)
{
	static const char head[] = "url.", tail[] = ".insteadof";
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	char *out = NULL;
	size_t best = 0;
	if (git_repository_config_snapshot(&cfg, repo) == 0 && git_config_iterator_new(&it, cfg) == 0) {
		while (git_config_next(&e, it) == 0) {
			size_t n = strlen(e->name), vlen = e->value ? strlen(e->value) : 0;
			if (n <= strlen(head) + strlen(tail) || !str_has_prefix(e->name, head) ||
			    !str_has_suffix(e->name, tail) || vlen <= best ||
			    strncmp(url, e->value, vlen) != 0)
				continue;
			best = vlen;
			free(out);
			out = xasprintf("%.*s%s", (int)(n - strlen(head) - strlen(tail)),
					e->name + strlen(head), url + vlen);
		}
	}
	git_config_iterator_free(it);
	git_config_free(cfg);
	git_error_clear();
	return out ? out : xstrdup(url);
}

static int fetch_into(git_repository *repo, const char *url, const char *name,
		      struct gerr **err)
{
	static char heads[] = "+refs/heads/*:refs/heads/*", tags[] = "+refs/tags/*:refs/tags/*";
	char *specs[] = { heads, tags };
	git_strarray refspecs = { specs, ARRAY_SIZE(specs) };
	struct cred_state cred = { 0 };
	git_fetch_options fo;
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION); /* the _INIT macro is partial */
	fo.prune = GIT_FETCH_PRUNE;
	fo.update_fetchhead = 0;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* the refspec takes them all */
	fo.proxy_opts.type = GIT_PROXY_AUTO;
	fo.callbacks.credentials = store_cred_cb;
	fo.callbacks.payload = &cred;

	git_remote_create_options ro;
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = repo; /* and no name: an anonymous remote */
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	char *real_url = store_insteadof(repo, url);
	git_remote *remote = NULL;
	int r = 0;
	if (git_remote_create_with_opts(&remote, real_url, &ro) < 0 ||
	    git_remote_fetch(remote, &refspecs, &fo, "gitops: fetch") < 0)
		r = gerr_set(err, GERR_IO, "fetching %s: %s", name, store_git_msg());
	else
		follow_remote_head(repo, remote);
	git_remote_free(remote);
	free(real_url);
	return r;
}

static int clone_into(const char *cache, const char *url, const char *name, struct gerr **err)
{
	char *tmp = xasprintf("%s.tmp", cache);
	git_repository *repo = NULL;
	int r = remove_tree(tmp, err); /* a clone that died half-way */
	if (r == 0 && git_repository_init(&repo, tmp, 1) < 0)
		r = gerr_set(err, GERR_IO, "creating %s: %s", tmp, store_git_msg());
	if (r == 0)
		r = fetch_into(repo, url, name, err);
	git_repository_free(repo);
	if (r == 0 && rename(tmp, cache) < 0)
		r = gerr_sys(err, "renaming %s", tmp);
	if (r < 0)
		remove_tree(tmp, NULL);
	free(tmp);
	return r;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Open the cache of o->repo, cloning or fetching it; *ret_lock_fd holds the lock
 * until the caller has resolved its ref. */
static int open_url(struct store_source *s, const struct store_source_opts *o,
		    int *ret_lock_fd, struct gerr **err)
{
	char hash[17];
	url_hash(o->repo, hash);
	char *state = o->state_dir && *o->state_dir ? xstrdup(o->state_dir) : store_default_state_dir();
	char *dir = xasprintf("%s/repos", state);
	char *cache = xasprintf("%s/%s", dir, hash);
	char *lock = xasprintf("%s.lock", cache);
	bool fetch = !o->no_fetch;
	int r = mkdir_p(dir, 0700, err);
	if (r == 0)
		r = *ret_lock_fd = store_lock_cache(lock, o->no_fetch && is_dir(cache), err);
	if (r >= 0 && !is_dir(cache)) { /* checked again: another process may have cloned it */
		r = clone_into(cache, o->repo, s->name, err);
		fetch = false;
	}
	if (r >= 0 && git_repository_open_ext(&s->repo, cache, GIT_REPOSITORY_OPEN_NO_SEARCH |
					      GIT_REPOSITORY_OPEN_BARE, NULL) < 0)
		r = gerr_set(err, GERR_IO, "repository cache %s of %s: %s", cache, s->name,
			     store_git_msg());
	if (r >= 0 && fetch)
		r = fetch_into(s->repo, o->repo, s->name, err);
	s->url = xstrdup(o->repo);
	s->lock_path = lock;
	free(state);
	free(dir);
	free(cache);
	return r < 0 ? -1 : 0;
}

static int open_local(struct store_source *s, const char *path, struct gerr **err)
{
	int e = git_repository_open_ext(&s->repo, path, 0, NULL);
	if (e == GIT_ENOTFOUND)
		return gerr_set(err, GERR_IO, "repository '%s' not found", s->name);
	if (e < 0)
		return gerr_set(err, GERR_IO, "repository '%s': %s", s->name, store_git_msg());
	return 0;
}

/* ---- ref and path ------------------------------------------------------------- */

/* Make c (owned from now on) the source's commit. */
void store_take_commit(struct store_source *s, git_commit *c)
{
	git_commit_free(s->commit);
	free(s->subject);
	s->commit = c;
	const git_oid *id = git_commit_id(c);
	git_oid_tostr(s->commit_hex, sizeof(s->commit_hex), id);
	git_oid_tostr(s->short_hex, sizeof(s->short_hex), id);
	const char *summary = git_commit_summary(c);
	s->subject = xstrdup(summary ? summary : "");
	s->time = (int64_t)git_commit_author(c)->when.time;
}

/* The branch spec names (HEAD: the branch checked out), if it is one and points
 * at the source's commit; a tag, a commit, an expression or a detached HEAD
 * leaves branch_ref NULL. */
static void find_branch(struct store_source *s, const char *spec)
{
	git_reference *ref = NULL;
	int e = strcmp(spec, "HEAD") ? git_reference_dwim(&ref, s->repo, spec)
				     : git_repository_head(&ref, s->repo);
	const git_oid *id = e == 0 ? git_reference_target(ref) : NULL;
	if (id && git_reference_is_branch(ref) && git_oid_equal(id, git_commit_id(s->commit)))
		s->branch_ref = xstrdup(git_reference_name(ref));
	git_reference_free(ref);
	git_error_clear();
}

static int resolve(struct store_source *s, const char *ref, struct gerr **err)
{
	const char *spec = ref && *ref ? ref : "HEAD";
	git_object *obj = NULL, *peeled = NULL;
	int e = git_revparse_single(&obj, s->repo, spec);
	if (e == GIT_ENOTFOUND || e == GIT_EUNBORNBRANCH)
		return gerr_set(err, GERR_IO, "ref '%s' not found in %s", spec, s->name);
	if (e == GIT_EAMBIGUOUS)
		return gerr_set(err, GERR_IO, "ref '%s' is ambiguous in %s", spec, s->name);
	if (e < 0)
		return gerr_set(err, GERR_IO, "ref '%s' in %s: %s", spec, s->name, store_git_msg());
	e = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (e < 0)
		return gerr_set(err, GERR_IO, "ref '%s' in %s does not name a commit", spec,
				s->name);
	store_take_commit(s, (git_commit *)peeled);
	find_branch(s, spec);
	return 0;
}

/* The tree at path under root ("" = root itself). */
static int tree_at(git_repository *repo, git_tree *root, const char *path, git_tree **ret,
		   const char *short_hex, struct gerr **err)
{
	if (!*path)
		return git_tree_dup(ret, root) < 0 ? gerr_set(err, GERR_IO, "%s", store_git_msg()) : 0;
	git_tree_entry *e = NULL;
	int r = git_tree_entry_bypath(&e, root, path);
	if (r == GIT_ENOTFOUND)
		return gerr_set(err, GERR_IO, "path '%s' not found at %s", path, short_hex);
	if (r < 0)
		return gerr_set(err, GERR_IO, "path '%s' at %s: %s", path, short_hex, store_git_msg());
	if (git_tree_entry_type(e) != GIT_OBJECT_TREE)
		r = gerr_set(err, GERR_IO, "path '%s' is not a directory at %s", path, short_hex);
	else if (git_tree_lookup(ret, repo, git_tree_entry_id(e)) < 0)
		r = gerr_set(err, GERR_IO, "path '%s' at %s: %s", path, short_hex, store_git_msg());
	git_tree_entry_free(e);
	return r;
}

int store_open_tree(struct store_source *s, struct gerr **err)
{
	git_tree *root = NULL;
	if (git_commit_tree(&root, s->commit) < 0)
		return gerr_set(err, GERR_IO, "tree of %s: %s", s->short_hex, store_git_msg());
	int r = tree_at(s->repo, root, s->path, &s->tree, s->short_hex, err);
	git_tree_free(root);
	return r;
}

/* ---- the source ---------------------------------------------------------------- */

int store_source_open(const struct store_source_opts *o, struct store_source **ret,
		      struct gerr **err)
{
	if (!o->repo || !*o->repo)
		return gerr_set(err, GERR_IO, "no repository given");
	if (git_libgit2_init() < 0)
		return gerr_set(err, GERR_IO, "initializing libgit2: %s", store_git_msg());
	/* Objects of a repository we read are trusted as git trusts them: re-hashing
	 * every blob on read cost 7% of a validate of 10,000 objects. */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	struct store_source *s = xcalloc(1, sizeof(*s));
	s->lock_fd = -1;
	s->name = redact_url(o->repo);
	s->path = normalize_path(o->path);
	int lock_fd = -1;
	int r = is_url(o->repo) ? open_url(s, o, &lock_fd, err) : open_local(s, o->repo, err);
	if (r == 0)
		r = resolve(s, o->ref, err);
	if (lock_fd >= 0)
		close(lock_fd);
	if (r == 0)
		r = store_open_tree(s, err);
	if (r < 0) {
		store_source_close(s);
		return -1;
	}
	*ret = s;
	return 0;
}

void store_source_close(struct store_source *s)
{
	if (!s)
		return;
	git_tree_free(s->tree);
	git_commit_free(s->commit);
	git_repository_free(s->repo);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->name);
	free(s->path);
	free(s->subject);
	free(s->branch_ref);
	if (s->url)
		freezero(s->url, strlen(s->url)); /* may hold a password */
	free(s->lock_path);
	free(s);
	git_libgit2_shutdown();
}

const char *store_source_commit(const struct store_source *s)
{
	return s->commit_hex;
}

const char *store_source_short_commit(const struct store_source *s)
{
	return s->short_hex;
}

const char *store_source_subject(const struct store_source *s)
{
	return s->subject;
}

int64_t store_source_time(const struct store_source *s)
{
	return s->time;
}

/* ---- reading the tree ---------------------------------------------------------- */

struct walk {
	git_repository *repo;
	git_odb *odb;
	struct store_ignore *ig;
	size_t max_bytes;
	struct sbuf path;   /* of the entry being looked at */
	struct store_file *files;
	size_t n, alloc;
};

/* The bytes of blob id (named path for messages), refused past max (0 = no limit)
 * before it is read. */
static int read_blob(struct walk *w, const git_oid *id, const char *path, size_t max,
		     char **ret, size_t *ret_len, struct gerr **err)
{
	size_t len;
	git_object_t type;
	if (git_odb_read_header(&len, &type, w->odb, id) < 0)
		return gerr_set(err, GERR_IO, "reading '%s': %s", path, store_git_msg());
	if (max && len > max)
		return gerr_set(err, GERR_FAIL, "file '%s' is %zu bytes, over the limit of %zu bytes",
				path, len, max);
	git_blob *blob = NULL;
	if (git_blob_lookup(&blob, w->repo, id) < 0)
		return gerr_set(err, GERR_IO, "reading '%s': %s", path, store_git_msg());
	len = (size_t)git_blob_rawsize(blob);
	char *data = xmalloc(len + 1);
	memcpy(data, git_blob_rawcontent(blob), len);
	data[len] = '\0';
	git_blob_free(blob);
	*ret = data;
	*ret_len = len;
	return 0;
}

/* Add the .gitopsignore of tree (directory dir) to the patterns, if it has one. */
static int load_ignore(struct walk *w, const git_tree *tree, const char *dir, struct gerr **err)
{
	const git_tree_entry *e = git_tree_entry_byname(tree, IGNORE_FILE);
	git_filemode_t mode = e ? git_tree_entry_filemode(e) : GIT_FILEMODE_UNREADABLE;
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
		return 0;
	char *path = *dir ? xasprintf("%s/%s", dir, IGNORE_FILE) : xstrdup(IGNORE_FILE);
	char *data;
	size_t len;
	int r = read_blob(w, git_tree_entry_id(e), path, IGNORE_MAX_BYTES, &data, &len, err);
	if (r == 0) {
		store_ignore_add(w->ig, dir, data, len);
		free(data);
	}
	free(path);
	return r;
}

static bool is_manifest(const char *name)
{
	return str_has_suffix(name, ".yaml") || str_has_suffix(name, ".yml") ||
	       str_has_suffix(name, ".json");
}

static int walk_tree(struct walk *w, const git_tree *tree, int depth, struct gerr **err);

static int walk_entry(struct walk *w, const git_tree_entry *e, int depth, struct gerr **err)
{
	const char *path = w->path.buf;
	/* hidden files and directories (.github/, .gitlab-ci.yml...) are never manifests */
	if (git_tree_entry_name(e)[0] == '.')
		return 0;
	switch (git_tree_entry_filemode(e)) {
	case GIT_FILEMODE_TREE: {
		if (store_ignore_excluded(w->ig, path, true))
			return 0;
		if (depth >= TREE_MAX_DEPTH)
			return gerr_set(err, GERR_FAIL, "directory '%s' is nested over %d levels deep",
					path, TREE_MAX_DEPTH);
		git_tree *sub = NULL;
		if (git_tree_lookup(&sub, w->repo, git_tree_entry_id(e)) < 0)
			return gerr_set(err, GERR_IO, "reading '%s': %s", path, store_git_msg());
		int r = walk_tree(w, sub, depth + 1, err);
		git_tree_free(sub);
		return r;
	}
	case GIT_FILEMODE_BLOB:
	case GIT_FILEMODE_BLOB_EXECUTABLE: {
		if (!is_manifest(git_tree_entry_name(e)) || store_ignore_excluded(w->ig, path, false))
			return 0;
		struct store_file f = { 0 };
		if (read_blob(w, git_tree_entry_id(e), path, w->max_bytes, &f.data, &f.len, err) < 0)
			return -1;
		f.path = xstrdup(path);
		GROW(w->files, w->alloc, w->n + 1);
		w->files[w->n++] = f;
		return 0;
	}
	default: /* symlinks and submodules are not manifests */
		return 0;
	}
}

/* Walk tree, the directory named by w->path; patterns its .gitopsignore adds
 * are dropped when it is done. */
static int walk_tree(struct walk *w, const git_tree *tree, int depth, struct gerr **err)
{
	size_t mark = store_ignore_count(w->ig);
	size_t base = w->path.len;
	char *dir = xstrdup(w->path.buf);
	int r = load_ignore(w, tree, dir, err);
	free(dir);
	size_t n = git_tree_entrycount(tree);
	for (size_t i = 0; i < n && r == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		sb_setlen(&w->path, base);
		if (base)
			sb_addc(&w->path, '/');
		sb_adds(&w->path, git_tree_entry_name(e));
		r = walk_entry(w, e, depth, err);
	}
	sb_setlen(&w->path, base);
	store_ignore_truncate(w->ig, mark);
	return r;
}

/* Patterns of the .gitopsignore files above the subtree: the root's, then each
 * directory's down to (not including) path: "a/b/c" reads "", "a" and "a/b". */
static int load_parent_ignores(struct store_source *s, struct walk *w, struct gerr **err)
{
	if (!*s->path)
		return 0;
	git_tree *root = NULL;
	if (git_commit_tree(&root, s->commit) < 0)
		return gerr_set(err, GERR_IO, "tree of %s: %s", s->short_hex, store_git_msg());
	int r = 0;
	const char *next = s->path;
	for (size_t len = 0; r == 0;) {
		char *dir = xstrndup(s->path, len);
		git_tree *t = NULL;
		r = tree_at(s->repo, root, dir, &t, s->short_hex, err);
		if (r == 0)
			r = load_ignore(w, t, dir, err);
		git_tree_free(t);
		free(dir);
		const char *slash = strchr(next, '/');
		if (!slash)
			break;
		len = (size_t)(slash - s->path);
		next = slash + 1;
	}
	git_tree_free(root);
	return r;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct store_file *)a)->path, ((const struct store_file *)b)->path);
}

int store_source_files(struct store_source *s, size_t max_bytes, struct store_file **ret,
		       size_t *ret_n, struct gerr **err)
{
	struct walk w = { .repo = s->repo, .max_bytes = max_bytes, .path = SBUF_INIT };
	if (git_repository_odb(&w.odb, s->repo) < 0)
		return gerr_set(err, GERR_IO, "object database of %s: %s", s->name, store_git_msg());
	w.ig = store_ignore_new();
	sb_adds(&w.path, s->path);
	int r = load_parent_ignores(s, &w, err);
	if (r == 0)
		r = walk_tree(&w, s->tree, 0, err);
	store_ignore_free(w.ig);
	sb_release(&w.path);
	git_odb_free(w.odb);
	if (r < 0) {
		store_files_free(w.files, w.n);
		return -1;
	}
	if (w.n)
		qsort(w.files, w.n, sizeof(*w.files), cmp_file);
	*ret = w.files;
	*ret_n = w.n;
	return 0;
}

void store_files_free(struct store_file *f, size_t n)
{
	if (!f)
		return;
	for (size_t i = 0; i < n; i++) {
		free(f[i].path);
		free(f[i].data);
	}
	free(f);
}

char *store_default_state_dir(void)
{
	if (geteuid() == 0)
		return xstrdup("/var/lib/gitops");
	const char *xdg = getenv("XDG_STATE_HOME");
	if (xdg && xdg[0] == '/') /* XDG: a relative path is invalid, ignore it */
		return xasprintf("%s/gitops", xdg);
	const char *home = getenv("HOME");
	if (!home || home[0] != '/') {
		struct passwd *pw = getpwuid(geteuid());
		home = pw && pw->pw_dir ? pw->pw_dir : "";
	}
	return xasprintf("%s/.local/state/gitops", home);
}

/* ---- reading one file ------------------------------------------------------------ */

const char *store_source_branch(const struct store_source *s)
{
	return s->branch_ref ? s->branch_ref + strlen("refs/heads/") : NULL;
}

bool store_source_is_url(const struct store_source *s)
{
	return s->url != NULL;
}

int store_source_read(struct store_source *s, const char *path, size_t max_bytes, char **ret,
		      size_t *ret_len, struct gerr **err)
{
	git_tree *root = NULL;
	git_tree_entry *e = NULL;
	struct walk w = { .repo = s->repo };
	int r = 0;
	if (git_commit_tree(&root, s->commit) < 0 || git_repository_odb(&w.odb, s->repo) < 0)
		r = gerr_set(err, GERR_IO, "tree of %s: %s", s->short_hex, store_git_msg());
	else if (git_tree_entry_bypath(&e, root, path) < 0 || git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		r = gerr_set(err, GERR_IO, "file '%s' not found at %s", path, s->short_hex);
	else
		r = read_blob(&w, git_tree_entry_id(e), path, max_bytes, ret, ret_len, err);
	git_tree_entry_free(e);
	git_tree_free(root);
	git_odb_free(w.odb);
	return r;
}
