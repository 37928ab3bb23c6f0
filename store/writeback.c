/* writeback.c: writing back (rollout undo --commit --push).
 *
 * One file's new blob, a tree and a commit on the branch read, the ref moved only if
 * it still points at the commit read (compare-and-swap); a checked-out work tree gets the file and the index
 * entry afterwards. A commit into a URL's cache takes the cache's exclusive lock and
 * holds it until the source is closed; pushes use an anonymous remote, as fetches.
 */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* user.name/user.email of the repository's configuration, else gitops's own. */
static int signature(git_repository *repo, git_signature **ret, struct gerr **err)
{
	if (git_signature_default(ret, repo) == 0)
		return 0;
	if (git_signature_now(ret, "gitops", "gitops@localhost") < 0)
		return gerr_set(err, GERR_IO, "making a signature: %s", store_git_msg());
	git_error_clear();
	return 0;
}

/* The work tree whose HEAD is the source's branch, or NULL (bare repository,
 * another branch checked out, a URL cache). */
static const char *checked_out_here(struct store_source *s)
{
	git_reference *head = NULL;
	const char *wd = git_repository_is_bare(s->repo) ? NULL : git_repository_workdir(s->repo);
	if (wd && (git_repository_head(&head, s->repo) < 0 || strcmp(git_reference_name(head), s->branch_ref)))
		wd = NULL;
	git_reference_free(head);
	git_error_clear();
	return wd;
}

/* The branch must still point at the source's commit, and (checked out) the file
 * must be unmodified in the index and the work tree. */
static int check_writable(struct store_source *s, const char *path, const char *wd, struct gerr **err)
{
	git_oid tip;
	if (git_reference_name_to_id(&tip, s->repo, s->branch_ref) < 0)
		return gerr_set(err, GERR_IO, "branch %s: %s", store_source_branch(s), store_git_msg());
	if (!git_oid_equal(&tip, git_commit_id(s->commit))) {
		char hex[8];
		git_oid_tostr(hex, sizeof(hex), &tip);
		return gerr_set(err, GERR_FAIL, "branch %s moved from %s to %s since it was read", store_source_branch(s),
				s->short_hex, hex);
	}
	unsigned int flags = 0;
	int e = wd ? git_status_file(&flags, s->repo, path) : 0;
	if (e == GIT_ENOTFOUND)
		return gerr_set(err, GERR_FAIL, "file '%s' not found at %s", path, s->short_hex);
	if (e < 0)
		return gerr_set(err, GERR_IO, "status of %s: %s", path, store_git_msg());
	if (flags & (GIT_STATUS_INDEX_NEW | GIT_STATUS_INDEX_MODIFIED | GIT_STATUS_INDEX_DELETED |
		     GIT_STATUS_INDEX_RENAMED | GIT_STATUS_INDEX_TYPECHANGE))
		return gerr_set(err, GERR_FAIL, "%s has staged changes in %s: commit or reset them first", path, wd);
	if (flags & (GIT_STATUS_WT_MODIFIED | GIT_STATUS_WT_DELETED | GIT_STATUS_WT_TYPECHANGE |
		     GIT_STATUS_WT_RENAMED | GIT_STATUS_CONFLICTED))
		return gerr_set(err, GERR_FAIL, "%s has uncommitted changes in %s: commit or stash them first", path, wd);
	return 0;
}

/* The root tree of the source's commit with path's blob replaced by data. */
static int updated_tree(struct store_source *s, const struct store_commit *c, git_tree **ret, struct gerr **err)
{
	git_tree *root = NULL;
	git_tree_entry *e = NULL;
	git_tree_update up = { .action = GIT_TREE_UPDATE_UPSERT, .path = c->path };
	git_oid tree_id;
	int r = 0;
	if (git_commit_tree(&root, s->commit) < 0)
		r = gerr_set(err, GERR_IO, "tree of %s: %s", s->short_hex, store_git_msg());
	else if (git_tree_entry_bypath(&e, root, c->path) < 0 || git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		r = gerr_set(err, GERR_FAIL, "file '%s' not found at %s", c->path, s->short_hex);
	else if (git_blob_create_from_buffer(&up.id, s->repo, c->data, c->len) < 0)
		r = gerr_set(err, GERR_IO, "writing a blob: %s", store_git_msg());
	else if (git_oid_equal(&up.id, git_tree_entry_id(e)))
		r = gerr_set(err, GERR_FAIL, "%s is unchanged: nothing to commit", c->path);
	if (r == 0) {
		up.filemode = git_tree_entry_filemode(e);
		if (git_tree_create_updated(&tree_id, s->repo, root, 1, &up) < 0 ||
		    git_tree_lookup(ret, s->repo, &tree_id) < 0)
			r = gerr_set(err, GERR_IO, "writing a tree: %s", store_git_msg());
	}
	git_tree_entry_free(e);
	git_tree_free(root);
	return r;
}

/* The working file and its index entry, after the branch moved to the commit. */
static int update_worktree(struct store_source *s, const char *wd, const struct store_commit *c, struct gerr **err)
{
	char *file = xasprintf("%s%s", wd, c->path); /* workdir ends with '/' */
	struct stat st;
	mode_t mode = stat(file, &st) == 0 ? st.st_mode & 07777 : 0644;
	git_index *idx = NULL;
	int r = write_file_atomic(file, c->data, c->len, mode, err);
	if (r == 0 && chmod(file, mode) < 0)
		r = gerr_sys(err, "chmod %s", file);
	if (r == 0 && (git_repository_index(&idx, s->repo) < 0 || git_index_read(idx, 0) < 0 ||
		       git_index_add_bypath(idx, c->path) < 0 || git_index_write(idx) < 0))
		r = gerr_set(err, GERR_IO, "updating the index: %s", store_git_msg());
	git_index_free(idx);
	free(file);
	return r;
}

int store_commit_file(struct store_source *s, const struct store_commit *c, struct gerr **err)
{
	if (!s->branch_ref)
		return gerr_set(err, GERR_FAIL, "%s was not read from a branch (a tag, a commit or a detached HEAD)",
				s->name);
	if (s->lock_path && s->lock_fd < 0 && (s->lock_fd = store_lock_cache(s->lock_path, false, err)) < 0)
		return -1;
	const char *wd = checked_out_here(s);
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	git_oid id;
	git_commit *made = NULL;
	git_reference *ref = NULL;
	const git_commit *parents[] = { s->commit };
	char *log = NULL;
	int r = check_writable(s, c->path, wd, err);
	if (r == 0)
		r = updated_tree(s, c, &tree, err);
	if (r == 0)
		r = signature(s->repo, &sig, err);
	if (r == 0 && (git_commit_create(&id, s->repo, NULL, sig, sig, NULL, c->message, tree, 1, parents) < 0 ||
		       git_commit_lookup(&made, s->repo, &id) < 0))
		r = gerr_set(err, GERR_IO, "writing the commit: %s", store_git_msg());
	if (r == 0) {
		log = xasprintf("commit: %s", git_commit_summary(made)); /* git's reflog wording */
		int e = git_reference_create_matching(&ref, s->repo, s->branch_ref, &id, 1, git_commit_id(s->commit), log);
		if (e == GIT_EMODIFIED)
			r = gerr_set(err, GERR_FAIL, "branch %s moved since it was read", store_source_branch(s));
		else if (e < 0)
			r = gerr_set(err, GERR_IO, "updating branch %s: %s", store_source_branch(s), store_git_msg());
	}
	if (r == 0) {
		store_take_commit(s, made);
		made = NULL;
		git_tree_free(s->tree);
		s->tree = NULL;
		r = store_open_tree(s, err);
	}
	if (r == 0 && wd && update_worktree(s, wd, c, err) < 0)
		r = gerr_wrap(err, "committed %s on %s, but the work tree was not updated", s->short_hex,
			      store_source_branch(s));
	git_reference_free(ref);
	git_commit_free(made);
	git_signature_free(sig);
	git_tree_free(tree);
	free(log);
	return r;
}

/* branch.B.pushRemote, remote.pushDefault, branch.B.remote, "origin": git's order.
 * Caller frees. */
static char *push_remote_name(git_config *cfg, const char *branch)
{
	char *keys[] = { xasprintf("branch.%s.pushremote", branch), xstrdup("remote.pushdefault"),
			 xasprintf("branch.%s.remote", branch) };
	char *name = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		git_buf v = GIT_BUF_INIT;
		if (!name && git_config_get_string_buf(&v, cfg, keys[i]) == 0 && v.size && strcmp(v.ptr, "."))
			name = xstrdup(v.ptr);
		git_buf_dispose(&v);
		free(keys[i]);
	}
	git_error_clear();
	return name ? name : xstrdup("origin");
}

/* remote.NAME.pushurl, else remote.NAME.url; caller frees, NULL when neither. */
static char *remote_url(git_config *cfg, const char *name)
{
	char *url = NULL;
	for (int i = 0; i < 2 && !url; i++) {
		char *key = xasprintf("remote.%s.%s", name, i ? "url" : "pushurl");
		git_buf v = GIT_BUF_INIT;
		if (git_config_get_string_buf(&v, cfg, key) == 0 && v.size)
			url = xstrdup(v.ptr);
		git_buf_dispose(&v);
		free(key);
	}
	git_error_clear();
	return url;
}

/* After a push to remote NAME: its tracking ref of the branch (remote.NAME.fetch
 * mapping), as git push does. Best effort. */
static void update_tracking(git_repository *repo, git_config *cfg, const char *name, const char *branch_ref,
			    const git_oid *id)
{
	char *key = xasprintf("remote.%s.fetch", name);
	git_config_iterator *it = NULL;
	git_config_entry *e;
	if (git_config_multivar_iterator_new(&it, cfg, key, NULL) == 0) {
		while (git_config_next(&e, it) == 0) {
			git_refspec *spec = NULL;
			git_buf dst = GIT_BUF_INIT;
			git_reference *ref = NULL;
			if (git_refspec_parse(&spec, e->value, 1) == 0 && git_refspec_src_matches(spec, branch_ref) &&
			    git_refspec_transform(&dst, spec, branch_ref) == 0)
				git_reference_create(&ref, repo, dst.ptr, id, 1, "update by push");
			git_reference_free(ref);
			git_buf_dispose(&dst);
			git_refspec_free(spec);
		}
	}
	git_config_iterator_free(it);
	free(key);
	git_error_clear();
}

struct push_state {
	struct cred_state cred;
	char *rejected; /* the remote's reason, when it refused the update */
};

static int push_update_cb(const char *refname, const char *status, void *payload)
{
	struct push_state *st = payload;
	if (status && !st->rejected)
		st->rejected = xasprintf("%s", status);
	(void)refname;
	return 0;
}

static int cred_push_cb(git_credential **out, const char *url, const char *user, unsigned int allowed,
			void *payload)
{
	return store_cred_cb(out, url, user, allowed, &((struct push_state *)payload)->cred);
}

static int push_to(struct store_source *s, const char *url, const char *to, struct gerr **err)
{
	char *spec = xasprintf("%s:%s", s->branch_ref, s->branch_ref);
	char *specs[] = { spec };
	git_strarray refspecs = { specs, 1 };
	struct push_state st = { 0 };
	git_push_options po;
	git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
	po.proxy_opts.type = GIT_PROXY_AUTO;
	po.callbacks.credentials = cred_push_cb;
	po.callbacks.push_update_reference = push_update_cb;
	po.callbacks.payload = &st;
	git_remote_create_options ro;
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = s->repo; /* anonymous: nothing written to the config */
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	char *real_url = store_insteadof(s->repo, url);
	git_remote *remote = NULL;
	const char *b = store_source_branch(s);
	int r = 0, e = git_remote_create_with_opts(&remote, real_url, &ro);
	if (e == 0)
		e = git_remote_push(remote, &refspecs, &po);
	if (e == GIT_ENONFASTFORWARD)
		r = gerr_set(err, GERR_FAIL, "pushing %s to %s: rejected (non-fast-forward: %s has commits %s lacks)",
			     b, to, to, b);
	else if (e < 0)
		r = gerr_set(err, GERR_IO, "pushing %s to %s: %s", b, to, store_git_msg());
	else if (st.rejected)
		r = gerr_set(err, GERR_FAIL, "pushing %s to %s: rejected by the remote: %s", b, to, st.rejected);
	git_remote_free(remote);
	free(real_url);
	free(st.rejected);
	free(spec);
	git_error_clear();
	return r;
}

int store_push(struct store_source *s, char **ret_remote, struct gerr **err)
{
	if (!s->branch_ref)
		return gerr_set(err, GERR_FAIL, "%s was not read from a branch: nothing to push", s->name);
	if (s->url) { /* the cache of a URL: back to the URL itself */
		int r = push_to(s, s->url, s->name, err);
		if (r == 0 && ret_remote)
			*ret_remote = xstrdup(s->name);
		return r;
	}
	git_config *cfg = NULL;
	if (git_repository_config_snapshot(&cfg, s->repo) < 0)
		return gerr_set(err, GERR_IO, "configuration of %s: %s", s->name, store_git_msg());
	char *name = push_remote_name(cfg, store_source_branch(s));
	char *url = remote_url(cfg, name);
	int r = url ? push_to(s, url, name, err)
		    : gerr_set(err, GERR_FAIL, "no remote \"%s\" to push %s to (git remote add %s URL)", name,
			       store_source_branch(s), name);
	if (r == 0)
		update_tracking(s->repo, cfg, name, s->branch_ref, git_commit_id(s->commit));
	if (r == 0 && ret_remote)
		*ret_remote = xstrdup(name);
	free(url);
	free(name);
	git_config_free(cfg);
	return r;
}
