/* store/internal.h: what git.c and writeback.c share; private to store/. */
#ifndef GITOPS_STORE_INTERNAL_H
#define GITOPS_STORE_INTERNAL_H

#include <git2.h>

#include "store/store.h"

#define CRED_MAX_TRIES 3            /* libgit2 asks again after a rejected credential */

struct store_source {
	git_repository *repo;
	git_commit *commit;
	git_tree *tree;     /* the tree at path */
	char *name;         /* --repo as given, password redacted: for messages */
	char *path;         /* subtree, normalized: "" (root) or "a/b" */
	char *subject;
	int64_t time;
	char commit_hex[GIT_OID_HEXSZ + 1];
	char short_hex[8];
	char *branch_ref;   /* "refs/heads/main" when the ref named a branch, else NULL */
	char *url;          /* a URL source: the URL as given (credentials stay in memory) */
	char *lock_path;    /* a URL source: the cache's lock file */
	int lock_fd;        /* held from a commit into the cache until close; else -1 */
};

struct cred_state {   /* store_cred_cb's payload */
	int tries;
};

/* git.c */
const char *store_git_msg(void);          /* libgit2's last error message */
int store_lock_cache(const char *lock_path, bool shared, struct gerr **err);
int store_cred_cb(git_credential **out, const char *url, const char *user, unsigned int allowed, void *payload);
char *store_insteadof(git_repository *repo, const char *url);
void store_take_commit(struct store_source *s, git_commit *c);
int store_open_tree(struct store_source *s, struct gerr **err);

#endif
