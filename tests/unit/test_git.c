/* test_git.c: the git source (store/git.c) against real repositories made with the
 * git CLI in a temporary directory, and the .gitopsignore matcher (store/ignore.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

/* ---- fixture: a temporary root, the git CLI with a clean environment ---- */

static char *g_root;     /* removed at the end of the run */
static int64_t g_time = 1700000000; /* commit times, one second apart */
static int g_serial;     /* unique directory names */

static char *tmp_path(const char *fmt, ...) PRINTF_LIKE(1, 2);
static char *tmp_path(const char *fmt, ...)
{
	struct sbuf sb = SBUF_INIT;
	sb_addf(&sb, "%s/", g_root);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return sb_detach(&sb, NULL);
}

/* A fresh directory name under the root (not created). */
static char *fresh(const char *what)
{
	return tmp_path("%s-%d", what, ++g_serial);
}

static void run(const char *dir, struct sbuf *out, const char *const *args)
{
	struct strvec argv = STRVEC_INIT, env = STRVEC_INIT;
	strvec_push(&argv, "git");
	if (dir) {
		strvec_push(&argv, "-C");
		strvec_push(&argv, dir);
	}
	strvec_pushv(&argv, args);
	const char *path = getenv("PATH");
	strvec_pushf(&env, "PATH=%s", path ? path : "/usr/bin:/bin");
	strvec_pushf(&env, "HOME=%s", g_root);
	strvec_push(&env, "GIT_CONFIG_NOSYSTEM=1");
	strvec_push(&env, "LC_ALL=C");
	strvec_push(&env, "GIT_AUTHOR_NAME=Test");
	strvec_push(&env, "GIT_AUTHOR_EMAIL=test@example.com");
	strvec_push(&env, "GIT_COMMITTER_NAME=Test");
	strvec_push(&env, "GIT_COMMITTER_EMAIL=test@example.com");
	strvec_pushf(&env, "GIT_AUTHOR_DATE=%lld +0000", (long long)g_time);
	strvec_pushf(&env, "GIT_COMMITTER_DATE=%lld +0000", (long long)g_time);
	struct sbuf errb = SBUF_INIT;
	struct gerr *err = NULL;
	struct child c = { .argv = strvec_argv(&argv), .env = strvec_argv(&env), .out = out,
			   .errb = &errb };
	int status = child_run(&c, &err);
	if (status != 0)
		fprintf(stderr, "git %s: status %d: %s%s\n", args[0], status,
			err ? err->msg : "", errb.buf);
	assert_int_equal(status, 0);
	gerr_free(err);
	sb_release(&errb);
	strvec_clear(&argv);
	strvec_clear(&env);
}

#define GIT(dir, ...) run((dir), NULL, (const char *const[]){ __VA_ARGS__, NULL })

/* `git rev-parse REV` in dir; caller frees. */
static char *rev(const char *dir, const char *r)
{
	struct sbuf out = SBUF_INIT;
	run(dir, &out, (const char *const[]){ "rev-parse", r, NULL });
	while (out.len && out.buf[out.len - 1] == '\n')
		sb_setlen(&out, out.len - 1);
	return sb_detach(&out, NULL);
}

static void put(const char *dir, const char *rel, const char *data)
{
	char *path = xasprintf("%s/%s", dir, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	assert_int_equal(mkdir_p(path, 0755, NULL), 0);
	*slash = '/';
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void commit(const char *dir, const char *msg)
{
	g_time++;
	GIT(dir, "add", "-A");
	GIT(dir, "commit", "-q", "--no-gpg-sign", "-m", msg);
}

/* A worktree on branch main with one commit of the given files (name, data, ...). */
static char *repo_with(const char *first, ...)
{
	char *dir = fresh("repo");
	GIT(NULL, "init", "-q", "-b", "main", dir);
	va_list ap;
	va_start(ap, first);
	for (const char *name = first; name; name = va_arg(ap, const char *))
		put(dir, name, va_arg(ap, const char *));
	va_end(ap);
	commit(dir, "first commit");
	return dir;
}

static struct store_source *open_ok(const struct store_source_opts *o)
{
	struct store_source *s = NULL;
	struct gerr *err = NULL;
	if (store_source_open(o, &s, &err) < 0)
		fail_msg("store_source_open(%s): %s", o->repo, err->msg);
	assert_null(err);
	assert_non_null(s);
	return s;
}

static struct store_source *open_at(const char *repo, const char *ref, const char *path)
{
	struct store_source_opts o = { .repo = repo, .ref = ref, .path = path };
	return open_ok(&o);
}

/* The error of a failing open; caller frees. */
static struct gerr *open_fails(const struct store_source_opts *o)
{
	struct store_source *s = NULL;
	struct gerr *err = NULL;
	assert_int_equal(store_source_open(o, &s, &err), -1);
	assert_null(s);
	assert_non_null(err);
	return err;
}

/* The paths store_source_files returns, one a line. Caller frees. */
static char *listing(struct store_source *s)
{
	struct store_file *f = NULL;
	size_t n = 0;
	struct gerr *err = NULL;
	if (store_source_files(s, 1 << 20, &f, &n, &err) < 0)
		fail_msg("store_source_files: %s", err->msg);
	struct sbuf sb = SBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(strlen(f[i].data), f[i].len);
		sb_addf(&sb, "%s\n", f[i].path);
	}
	store_files_free(f, n);
	return sb_detach(&sb, NULL);
}

static void assert_listing(struct store_source *s, const char *want)
{
	char *got = listing(s);
	assert_string_equal(got, want);
	free(got);
}

static int rm_rf(const char *path)
{
	struct child c = { .argv = (const char *const[]){ "rm", "-rf", "--", path, NULL } };
	return child_run(&c, NULL);
}

static int setup(void **state)
{
	char tmpl[] = "/tmp/gitops-test-git.XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	g_root = xstrdup(tmpl);
	/* libgit2 in this process reads $HOME/.gitconfig: keep the user's out. */
	setenv("HOME", g_root, 1);
	unsetenv("XDG_CONFIG_HOME");
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	return 0;
}

static int teardown(void **state)
{
	int r = rm_rf(g_root);
	free(g_root);
	return r == 0 ? 0 : -1;
}

/* ---- the matcher, without git -------------------------------------------- */

struct probe {
	const char *path;
	bool is_dir;
	bool excluded;
};

static void check(const struct store_ignore *ig, const struct probe *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (store_ignore_excluded(ig, p[i].path, p[i].is_dir) != p[i].excluded)
			fail_msg("'%s'%s: expected %s", p[i].path, p[i].is_dir ? " (dir)" : "",
				 p[i].excluded ? "excluded" : "included");
}

static struct store_ignore *ignore_of(const char *root_text)
{
	struct store_ignore *ig = store_ignore_new();
	store_ignore_add(ig, "", root_text, strlen(root_text));
	return ig;
}

static void test_ignore_basics(void **state)
{
	struct store_ignore *ig = ignore_of("# a comment\n"
					    "\n"
					    "*.json\n"
					    "   \n"
					    "!keep.json\n"
					    "secret?.yaml\n"
					    "\\#hash.yaml\n"
					    "\\!bang.yaml\n"
					    "space.yaml\\ \n"
					    "trailing.yaml   \n"
					    "crlf.yaml\r\n");
	const struct probe p[] = {
		{ "a.json", false, true },
		{ "deep/er/b.json", false, true },
		{ "keep.json", false, false },
		{ "x/keep.json", false, false },
		{ "a.yaml", false, false },
		{ "secret1.yaml", false, true },
		{ "secret12.yaml", false, false },
		{ "secret/.yaml", false, false }, /* '?' never matches '/' */
		{ "# a comment", false, false },
		{ "#hash.yaml", false, true },
		{ "!bang.yaml", false, true },
		{ "space.yaml ", false, true },
		{ "space.yaml", false, false },
		{ "trailing.yaml", false, true },
		{ "crlf.yaml", false, true },
	};
	check(ig, p, ARRAY_SIZE(p));
	store_ignore_free(ig);
	store_ignore_free(NULL);
}

static void test_ignore_later_wins(void **state)
{
	struct store_ignore *ig = ignore_of("*.yaml\n!*.yaml\nb.yaml\n");
	const struct probe p[] = {
		{ "a.yaml", false, false },
		{ "b.yaml", false, true },
		{ "d/b.yaml", false, true },
	};
	check(ig, p, ARRAY_SIZE(p));
	store_ignore_free(ig);
}

static void test_ignore_anchoring(void **state)
{
	struct store_ignore *ig = ignore_of("/top.yaml\n"
					    "apps/web.yaml\n"
					    "/only/*.yml\n"
					    "any.yaml\n");
	const struct probe p[] = {
		{ "top.yaml", false, true },
		{ "sub/top.yaml", false, false },
		{ "apps/web.yaml", false, true },
		{ "x/apps/web.yaml", false, false }, /* a middle '/' anchors too */
		{ "only/a.yml", false, true },
		{ "only/deeper/a.yml", false, false }, /* '*' does not cross '/' */
		{ "any.yaml", false, true },
		{ "a/b/any.yaml", false, true },
	};
	check(ig, p, ARRAY_SIZE(p));
	store_ignore_free(ig);
}

static void test_ignore_dir_only(void **state)
{
	struct store_ignore *ig = ignore_of("build/\n/tmp/\n");
	const struct probe p[] = {
		{ "build", true, true },
		{ "build", false, false }, /* a file named build */
		{ "build/a.yaml", false, true },
		{ "x/build/y/a.yaml", false, true },
		{ "tmp/a.yaml", false, true },
		{ "x/tmp/a.yaml", false, false },
		{ "builds/a.yaml", false, false },
	};
	check(ig, p, ARRAY_SIZE(p));
	store_ignore_free(ig);
}

static void test_ignore_doublestar(void **state)
{
	struct store_ignore *ig = ignore_of("**/generated\n"
					    "docs/**\n"
					    "a/**/z.yaml\n"
					    "x**y.yaml\n");
	const struct probe p[] = {
		{ "generated", true, true },
		{ "generated/a.yaml", false, true },
		{ "p/q/generated/a.yaml", false, true },
		{ "p/generatedx/a.yaml", false, false },
		{ "docs/a.yaml", false, true },
		{ "docs/a/b/c.yaml", false, true },
		{ "docs", true, false }, /* only what is inside docs */
		{ "a/z.yaml", false, true },
		{ "a/b/z.yaml", false, true },
		{ "a/b/c/z.yaml", false, true },
		{ "b/a/z.yaml", false, false },
		{ "xy.yaml", false, true },
		{ "x-long-y.yaml", false, true },
		{ "x/y.yaml", false, false }, /* not a whole segment: an ordinary '*' */
	};
	check(ig, p, ARRAY_SIZE(p));
	store_ignore_free(ig);
}

static void test_ignore_classes(void **state)
{
	struct store_ignore *ig = ignore_of("[abc].yaml\n"
					    "n[!0-9].yaml\n"
					    "r[0-2][[:digit:]].yaml\n"
					    "q[]].yaml\n"
					    "[unterminated.yaml\n");
	const struct probe p[] = {
		{ "a.yaml", false, true },
		{ "d.yaml", false, false },
		{ "nx.yaml", false, true },
		{ "n5.yaml", false, false },
		{ "r19.yaml", false, true },
		{ "r39.yaml", false, false },
		{ "r1x.yaml", false, false },
		{ "q].yaml", false, true },
		{ "[unterminated.yaml", false, false },
	};
	check(ig, p, ARRAY_SIZE(p));
	store_ignore_free(ig);
}

/* Backtracking is bounded: these would take ages if it were exponential. */
static void test_ignore_pathological(void **state)
{
	struct store_ignore *ig = ignore_of("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n"
					    "**/a/**/a/**/a/**/a/**/a/**/a/**/b\n");
	struct sbuf flat = SBUF_INIT, deep = SBUF_INIT;
	for (int i = 0; i < 200; i++) {
		sb_addc(&flat, 'a');
		sb_adds(&deep, i ? "/a" : "a");
	}
	assert_false(store_ignore_excluded(ig, flat.buf, false));
	assert_false(store_ignore_excluded(ig, deep.buf, false));
	sb_adds(&flat, "b");
	sb_adds(&deep, "/b");
	assert_true(store_ignore_excluded(ig, flat.buf, false));
	assert_true(store_ignore_excluded(ig, deep.buf, false));
	sb_release(&flat);
	sb_release(&deep);
	store_ignore_free(ig);
}

static void test_ignore_nested(void **state)
{
	struct store_ignore *ig = ignore_of("*.tmp.yaml\nlocal.yaml\n");
	const char *sub = "/x.yaml\n!local.yaml\ndeep/\n";
	store_ignore_add(ig, "apps/", sub, strlen(sub));
	const struct probe p[] = {
		{ "x.yaml", false, false },     /* apps' patterns apply under apps only */
		{ "apps/x.yaml", false, true }, /* anchored to apps/ */
		{ "apps/y/x.yaml", false, false },
		{ "local.yaml", false, true },
		{ "apps/local.yaml", false, false }, /* the deeper file wins */
		{ "apps/y/local.yaml", false, false },
		{ "other/local.yaml", false, true },
		{ "apps/a.tmp.yaml", false, true }, /* the root's still apply */
		{ "apps/deep/a.yaml", false, true },
		{ "deep/a.yaml", false, false },
		{ "appsx/x.yaml", false, false },
	};
	check(ig, p, ARRAY_SIZE(p));
	assert_int_equal(store_ignore_count(ig), 5);
	store_ignore_truncate(ig, 2);
	assert_false(store_ignore_excluded(ig, "apps/x.yaml", false));
	assert_true(store_ignore_excluded(ig, "apps/local.yaml", false));
	store_ignore_free(ig);
}

static void test_ignore_excluded_dir_stays_excluded(void **state)
{
	/* git: a file cannot be re-included when a directory above it is excluded */
	struct store_ignore *ig = ignore_of("secrets/\n!secrets/ok.yaml\nlogs/*\n!logs/keep.yaml\n");
	const struct probe p[] = {
		{ "secrets/ok.yaml", false, true },
		{ "logs/a.yaml", false, true },
		{ "logs/keep.yaml", false, false },
	};
	check(ig, p, ARRAY_SIZE(p));
	store_ignore_free(ig);
}

/* ---- the source ---------------------------------------------------------------- */

static void test_worktree(void **state)
{
	char *dir = repo_with("apps/web.yaml", "kind: Deployment\n", "README.md", "# hi\n", NULL);
	put(dir, "apps/db.yml", "kind: StatefulSet\n");
	g_time = 1700001000 - 1;
	commit(dir, "add the db\n\nwith a body\nof lines");
	char *head = rev(dir, "HEAD");

	struct store_source *s = open_at(dir, NULL, NULL);
	assert_string_equal(store_source_commit(s), head);
	assert_int_equal(strlen(store_source_short_commit(s)), 7);
	assert_memory_equal(store_source_short_commit(s), head, 7);
	assert_string_equal(store_source_subject(s), "add the db");
	assert_int_equal(store_source_time(s), 1700001000);

	struct store_file *f = NULL;
	size_t n = 0;
	assert_int_equal(store_source_files(s, 0, &f, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(f[0].path, "apps/db.yml");
	assert_string_equal(f[0].data, "kind: StatefulSet\n");
	assert_int_equal(f[0].len, 18);
	assert_string_equal(f[1].path, "apps/web.yaml");
	store_files_free(f, n);
	store_source_close(s);

	/* the object database, not the worktree: uncommitted edits are invisible */
	put(dir, "apps/web.yaml", "changed: true\n");
	put(dir, "apps/new.yaml", "new: true\n");
	s = open_at(dir, NULL, NULL);
	assert_listing(s, "apps/db.yml\napps/web.yaml\n");
	store_source_close(s);
	store_files_free(NULL, 0);
	store_source_close(NULL);
	free(head);
	free(dir);
}

static void test_inside_worktree_and_bare(void **state)
{
	char *dir = repo_with("a/b/c.yaml", "c: 1\n", "top.json", "{}\n", NULL);
	char *head = rev(dir, "HEAD");
	char *inside = xasprintf("%s/a/b", dir);
	struct store_source *s = open_at(inside, NULL, NULL);
	assert_string_equal(store_source_commit(s), head);
	assert_listing(s, "a/b/c.yaml\ntop.json\n"); /* --path, not the cwd, limits */
	store_source_close(s);

	char *bare = fresh("bare.git");
	GIT(NULL, "clone", "-q", "--bare", dir, bare);
	s = open_at(bare, NULL, NULL);
	assert_string_equal(store_source_commit(s), head);
	assert_listing(s, "a/b/c.yaml\ntop.json\n");
	store_source_close(s);
	s = open_at(bare, "main", "a");
	assert_listing(s, "a/b/c.yaml\n");
	store_source_close(s);
	free(bare);
	free(inside);
	free(head);
	free(dir);
}

static void test_refs(void **state)
{
	char *dir = repo_with("v.yaml", "v: 1\n", NULL);
	char *c1 = rev(dir, "HEAD");
	GIT(dir, "tag", "light");
	GIT(dir, "tag", "-a", "-m", "release one", "v1");
	GIT(dir, "checkout", "-q", "-b", "feature");
	put(dir, "v.yaml", "v: 2\n");
	put(dir, "w.yaml", "w: 2\n");
	commit(dir, "feature work");
	char *c2 = rev(dir, "HEAD");
	GIT(dir, "checkout", "-q", "main");

	const struct {
		const char *ref, *want;
	} cases[] = {
		{ NULL, c1 }, { "", c1 }, { "HEAD", c1 }, { "main", c1 },
		{ "feature", c2 }, { "refs/heads/feature", c2 }, { "light", c1 },
		{ "v1", c1 }, { "refs/tags/v1", c1 }, { c2, c2 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct store_source *s = open_at(dir, cases[i].ref, NULL);
		assert_string_equal(store_source_commit(s), cases[i].want);
		store_source_close(s);
	}
	char abbrev[9];
	memcpy(abbrev, c2, 8);
	abbrev[8] = '\0';
	struct store_source *s = open_at(dir, abbrev, NULL);
	assert_string_equal(store_source_commit(s), c2);
	assert_string_equal(store_source_subject(s), "feature work");
	assert_listing(s, "v.yaml\nw.yaml\n");
	store_source_close(s);
	free(c1);
	free(c2);
	free(dir);
}

static void expect_error(const struct store_source_opts *o, int code, const char *msg)
{
	struct gerr *err = open_fails(o);
	assert_int_equal(err->code, code);
	assert_string_equal(err->msg, msg);
	assert_null(strchr(err->msg, '\n'));
	gerr_free(err);
}

static void test_missing(void **state)
{
	char *dir = repo_with("clusters/prod/a.yaml", "a: 1\n", "clusters/file.yaml", "f: 1\n",
			      NULL);
	char *head = rev(dir, "HEAD");
	char *nowhere = tmp_path("no/such/repo");
	char *msg;

	msg = xasprintf("repository '%s' not found", nowhere);
	expect_error(&(struct store_source_opts){ .repo = nowhere }, GERR_IO, msg);
	free(msg);
	char *empty_dir = fresh("not-a-repo");
	assert_int_equal(mkdir_p(empty_dir, 0755, NULL), 0);
	msg = xasprintf("repository '%s' not found", empty_dir);
	expect_error(&(struct store_source_opts){ .repo = empty_dir }, GERR_IO, msg);
	free(msg);

	msg = xasprintf("ref 'nope' not found in %s", dir);
	expect_error(&(struct store_source_opts){ .repo = dir, .ref = "nope" }, GERR_IO, msg);
	free(msg);
	msg = xasprintf("ref 'deadbeef' not found in %s", dir);
	expect_error(&(struct store_source_opts){ .repo = dir, .ref = "deadbeef" }, GERR_IO, msg);
	free(msg);

	msg = xasprintf("path 'clusters/x' not found at %.7s", head);
	expect_error(&(struct store_source_opts){ .repo = dir, .path = "clusters/x/" }, GERR_IO,
		     msg);
	free(msg);
	msg = xasprintf("path 'clusters/file.yaml' is not a directory at %.7s", head);
	expect_error(&(struct store_source_opts){ .repo = dir, .path = "clusters/file.yaml" },
		     GERR_IO, msg);
	free(msg);

	/* an empty repository has no HEAD to read */
	char *unborn = fresh("unborn");
	GIT(NULL, "init", "-q", "-b", "main", unborn);
	msg = xasprintf("ref 'HEAD' not found in %s", unborn);
	expect_error(&(struct store_source_opts){ .repo = unborn }, GERR_IO, msg);
	free(msg);

	struct gerr *err = open_fails(&(struct store_source_opts){ .repo = "" });
	assert_int_equal(err->code, GERR_IO);
	gerr_free(err);
	free(unborn);
	free(empty_dir);
	free(nowhere);
	free(head);
	free(dir);
}

static void test_subtree(void **state)
{
	char *dir = repo_with("clusters/prod/web.yaml", "w: 1\n",
			      "clusters/prod/db/pg.yaml", "p: 1\n",
			      "clusters/prod/skip.yaml", "s: 1\n",
			      "clusters/staging/web.yaml", "w: 2\n",
			      "clusters/.gitopsignore", "skip.yaml\n",
			      "root.yaml", "r: 1\n", NULL);
	const struct {
		const char *path, *want;
	} cases[] = {
		{ "clusters/prod", "clusters/prod/db/pg.yaml\nclusters/prod/web.yaml\n" },
		{ "clusters/prod/", "clusters/prod/db/pg.yaml\nclusters/prod/web.yaml\n" },
		{ "./clusters//prod/", "clusters/prod/db/pg.yaml\nclusters/prod/web.yaml\n" },
		{ "clusters/prod/db", "clusters/prod/db/pg.yaml\n" },
		{ "clusters", "clusters/prod/db/pg.yaml\nclusters/prod/web.yaml\n"
			      "clusters/staging/web.yaml\n" },
		{ ".", "clusters/prod/db/pg.yaml\nclusters/prod/web.yaml\n"
		       "clusters/staging/web.yaml\nroot.yaml\n" },
		{ "", "clusters/prod/db/pg.yaml\nclusters/prod/web.yaml\n"
		      "clusters/staging/web.yaml\nroot.yaml\n" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct store_source *s = open_at(dir, NULL, cases[i].path);
		assert_listing(s, cases[i].want);
		store_source_close(s);
	}
	free(dir);
}

static void test_gitopsignore(void **state)
{
	char *dir = repo_with(".gitopsignore",
			      "# root patterns\n"
			      "*.secret.yaml\n"
			      "scratch/\n"
			      "**/generated/**\n"
			      "/local.yaml\n"
			      "vendor/*\n"
			      "!vendor/keep.yaml\n",
			      "a.yaml", "a: 1\n",
			      "local.yaml", "l: 1\n",
			      "db.secret.yaml", "s: 1\n",
			      "apps/local.yaml", "l: 2\n",
			      "apps/db.secret.yaml", "s: 2\n",
			      "apps/generated/x.yaml", "g: 1\n",
			      "apps/web/generated/deep/y.yaml", "g: 2\n",
			      "apps/scratch/z.yaml", "z: 1\n",
			      "scratch", "a file, not the directory\n",
			      "vendor/drop.yaml", "d: 1\n",
			      "vendor/keep.yaml", "k: 1\n",
			      "team/.gitopsignore", "/draft*\n!db.secret.yaml\n",
			      "team/draft-1.yaml", "d: 1\n",
			      "team/db.secret.yaml", "s: 3\n",
			      "team/sub/draft-2.yaml", "d: 2\n",
			      "other/draft-3.yaml", "d: 3\n", NULL);
	struct store_source *s = open_at(dir, NULL, NULL);
	assert_listing(s, "a.yaml\n"
			  "apps/local.yaml\n"
			  "other/draft-3.yaml\n"
			  "team/db.secret.yaml\n"
			  "team/sub/draft-2.yaml\n"
			  "vendor/keep.yaml\n");
	store_source_close(s);
	/* reading only a subtree still honours the .gitopsignore files above it */
	s = open_at(dir, NULL, "team");
	assert_listing(s, "team/db.secret.yaml\nteam/sub/draft-2.yaml\n");
	store_source_close(s);
	s = open_at(dir, NULL, "team/sub");
	assert_listing(s, "team/sub/draft-2.yaml\n");
	store_source_close(s);
	free(dir);
}

static void test_order_and_kinds(void **state)
{
	char *dir = repo_with("b.yaml", "b\n", "a/z.yaml", "z\n", "a.yaml", "a\n",
			      "a-b.yaml", "ab\n", "A.json", "{}\n", "a/b/c.yml", "c\n",
			      "a0.yml", "0\n", "notes.txt", "no\n", "x.yaml.bak", "no\n",
			      "Makefile", "no\n", "UPPER.YAML", "no\n", "d/.hidden.yaml", "h\n",
			      "run.sh", "no\n", NULL);
	char *exe = xasprintf("%s/a.yaml", dir);
	assert_int_equal(chmod(exe, 0755), 0);
	free(exe);
	commit(dir, "an executable manifest still counts");
	struct store_source *s = open_at(dir, NULL, NULL);
	/* byte order of the full path, not git's tree order ("a/" sorts as "a/") */
	assert_listing(s, "A.json\n"
			  "a-b.yaml\n"
			  "a.yaml\n"
			  "a/b/c.yml\n"
			  "a/z.yaml\n"
			  "a0.yml\n"
			  "b.yaml\n"); /* d/.hidden.yaml: hidden files are never manifests */
	store_source_close(s);
	free(dir);
}

static void test_symlink_submodule_skipped(void **state)
{
	char *dir = repo_with("real.yaml", "real: 1\n", NULL);
	char *head = rev(dir, "HEAD");
	char *link = xasprintf("%s/link.yaml", dir);
	assert_int_equal(symlink("real.yaml", link), 0);
	char *cacheinfo = xasprintf("160000,%s,mod.yaml", head);
	GIT(dir, "update-index", "--add", "--cacheinfo", cacheinfo);
	commit(dir, "a symlink and a gitlink");
	struct store_source *s = open_at(dir, NULL, NULL);
	assert_listing(s, "real.yaml\n");
	store_source_close(s);
	free(cacheinfo);
	free(link);
	free(head);
	free(dir);
}

static void test_size_limit(void **state)
{
	const size_t big = 3u << 20;
	char *data = xmalloc(big + 1);
	for (size_t i = 0; i < big; i += 16)
		memcpy(data + i, "k: vvvvvvvvvvv\n\n", 16);
	data[big] = '\0';
	char *dir = repo_with("small.yaml", "s: 1\n", "apps/big.yaml", data, NULL);
	struct store_source *s = open_at(dir, NULL, NULL);
	struct store_file *f = NULL;
	size_t n = 0;
	struct gerr *err = NULL;
	assert_int_equal(store_source_files(s, 1u << 20, &f, &n, &err), -1);
	assert_int_equal(err->code, GERR_FAIL);
	assert_string_equal(err->msg,
			    "file 'apps/big.yaml' is 3145728 bytes, over the limit of 1048576 bytes");
	assert_null(f);
	gerr_free(err);
	err = NULL;
	assert_int_equal(store_source_files(s, 4u << 20, &f, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(f[0].path, "apps/big.yaml");
	assert_int_equal(f[0].len, big);
	assert_memory_equal(f[0].data, data, big);
	assert_int_equal(f[0].data[big], '\0');
	store_files_free(f, n);
	store_source_close(s);
	free(dir);
	free(data);
}

/* ---- URLs and the cache --------------------------------------------------------- */

/* The one cache directory under state (checking no .tmp is left); caller frees. */
static char *cache_dir(const char *state)
{
	char *repos = xasprintf("%s/repos", state);
	char *found = NULL;
	struct sbuf out = SBUF_INIT;
	struct child c = { .argv = (const char *const[]){ "ls", repos, NULL }, .out = &out };
	assert_int_equal(child_run(&c, NULL), 0);
	for (char *line = strtok(out.buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (str_has_suffix(line, ".lock"))
			continue;
		assert_null(found);
		assert_int_equal(strlen(line), 16);
		assert_int_equal(strspn(line, "0123456789abcdef"), 16);
		found = xasprintf("%s/%s", repos, line);
	}
	assert_non_null(found);
	sb_release(&out);
	free(repos);
	return found;
}

static bool exists(const char *fmt, const char *arg)
{
	char *path = xasprintf(fmt, arg);
	struct stat st;
	bool r = lstat(path, &st) == 0;
	free(path);
	return r;
}

static void expect_ref_missing(struct store_source_opts *o, const char *ref)
{
	char *msg = xasprintf("ref '%s' not found in %s", ref, o->repo);
	o->ref = ref;
	expect_error(o, GERR_IO, msg);
	free(msg);
}

static void expect_commit(struct store_source_opts *o, const char *ref, const char *want)
{
	o->ref = ref;
	struct store_source *s = open_ok(o);
	assert_string_equal(store_source_commit(s), want);
	store_source_close(s);
}

static void test_url_clone_and_fetch(void **state)
{
	char *origin = repo_with("apps/web.yaml", "v: 1\n", NULL);
	GIT(origin, "branch", "old");
	char *c1 = rev(origin, "HEAD");
	char *url = xasprintf("file://%s", origin);
	char *state_dir = fresh("state");
	struct store_source_opts o = { .repo = url, .state_dir = state_dir };

	struct store_source *s = open_ok(&o);
	assert_string_equal(store_source_commit(s), c1);
	assert_listing(s, "apps/web.yaml\n");
	store_source_close(s);
	char *cache = cache_dir(state_dir);
	struct sbuf sum = SBUF_INIT;
	struct child c = { .argv = (const char *const[]){ "sha256sum", NULL }, .in = url,
			   .in_len = strlen(url), .out = &sum };
	assert_int_equal(child_run(&c, NULL), 0);
	assert_true(sum.len > 16);
	assert_memory_equal(strrchr(cache, '/') + 1, sum.buf, 16);
	sb_release(&sum);
	assert_true(exists("%s.lock", cache));
	assert_true(exists("%s/HEAD", cache)); /* bare: no worktree, no .git */
	assert_false(exists("%s/.git", cache));
	assert_false(exists("%s/apps", cache));

	/* the origin moves on: a new commit, a new tag, a deleted branch */
	put(origin, "apps/web.yaml", "v: 2\n");
	put(origin, "apps/db.yaml", "v: 2\n");
	commit(origin, "second");
	char *c2 = rev(origin, "HEAD");
	GIT(origin, "tag", "-a", "-m", "two", "v2");
	GIT(origin, "branch", "-q", "-D", "old");

	o.no_fetch = true;
	expect_commit(&o, NULL, c1);
	expect_commit(&o, "old", c1);
	expect_ref_missing(&o, "v2");

	o.no_fetch = false;
	o.ref = NULL;
	s = open_ok(&o);
	assert_string_equal(store_source_commit(s), c2);
	assert_string_equal(store_source_subject(s), "second");
	assert_listing(s, "apps/db.yaml\napps/web.yaml\n");
	store_source_close(s);
	expect_commit(&o, "v2", c2);
	expect_commit(&o, "main", c2);
	expect_ref_missing(&o, "old"); /* pruned */

	/* a force-push: the cache follows the remote, not its own history */
	GIT(origin, "reset", "-q", "--hard", c1);
	expect_commit(&o, "main", c1);
	char *again = cache_dir(state_dir);
	assert_string_equal(again, cache);
	free(again);
	free(cache);
	free(c2);
	free(state_dir);
	free(url);
	free(c1);
	free(origin);
}

static void test_url_follows_remote_head(void **state)
{
	char *origin = fresh("trunk-origin");
	GIT(NULL, "init", "-q", "-b", "trunk", origin);
	put(origin, "t.yaml", "t: 1\n");
	commit(origin, "on trunk");
	GIT(origin, "checkout", "-q", "-b", "other");
	put(origin, "o.yaml", "o: 1\n");
	commit(origin, "on other");
	GIT(origin, "checkout", "-q", "trunk");
	char *trunk = rev(origin, "trunk");
	char *url = xasprintf("file://%s", origin);
	char *state_dir = fresh("state");
	struct store_source_opts o = { .repo = url, .state_dir = state_dir };
	expect_commit(&o, NULL, trunk);
	free(state_dir);
	free(url);
	free(trunk);
	free(origin);
}

/* url.<base>.insteadOf in the user's git config rewrites the URL, as in git. */
static void test_url_insteadof(void **state)
{
	char *origin = repo_with("i.yaml", "i: 1\n", NULL);
	char *head = rev(origin, "HEAD");
	char *gitconfig = tmp_path(".gitconfig");
	char *cfg = xasprintf("[url \"file://%s/\"]\n\tinsteadOf = gitops-test:\n"
			      "[url \"file:///nowhere/\"]\n\tinsteadOf = gitops-\n", g_root);
	put(g_root, ".gitconfig", cfg);
	char *name = strrchr(origin, '/') + 1;
	char *url = xasprintf("gitops-test:%s", name);
	char *state_dir = fresh("state");
	struct store_source_opts o = { .repo = url, .state_dir = state_dir };
	expect_commit(&o, NULL, head);
	assert_int_equal(unlink(gitconfig), 0);
	free(state_dir);
	free(url);
	free(cfg);
	free(gitconfig);
	free(head);
	free(origin);
}

/* Several processes clone the same URL into an empty cache at once. */
static void test_url_concurrent(void **state)
{
	char *origin = repo_with("a.yaml", "a: 1\n", "b/c.yaml", "c: 1\n", NULL);
	char *head = rev(origin, "HEAD");
	char *url = xasprintf("file://%s", origin);
	char *state_dir = fresh("state");
	enum { N = 6 };
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct store_source_opts o = { .repo = url, .state_dir = state_dir,
						       .no_fetch = i % 2 };
			struct store_source *s = NULL;
			struct store_file *f = NULL;
			size_t n = 0;
			int ok = store_source_open(&o, &s, NULL) == 0 &&
				 strcmp(store_source_commit(s), head) == 0 &&
				 store_source_files(s, 0, &f, &n, NULL) == 0 && n == 2;
			_exit(ok ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	char *cache = cache_dir(state_dir);
	assert_false(exists("%s.tmp", cache));
	free(cache);
	free(state_dir);
	free(url);
	free(head);
	free(origin);
}

static void test_url_unreachable(void **state)
{
	char *state_dir = fresh("state");
	char *missing = tmp_path("no/such/origin");
	char *url = xasprintf("file://%s", missing);
	struct store_source_opts o = { .repo = url, .state_dir = state_dir };
	struct gerr *err = open_fails(&o);
	assert_int_equal(err->code, GERR_IO);
	char *prefix = xasprintf("fetching %s: ", url);
	assert_true(str_has_prefix(err->msg, prefix));
	assert_null(strchr(err->msg, '\n'));
	gerr_free(err);
	free(prefix);

	/* a failed first clone leaves no cache behind, only the lock */
	char *repos = xasprintf("%s/repos", state_dir);
	struct sbuf out = SBUF_INIT;
	struct child c = { .argv = (const char *const[]){ "ls", repos, NULL }, .out = &out };
	assert_int_equal(child_run(&c, NULL), 0);
	assert_true(str_has_suffix(out.buf, ".lock\n"));
	assert_int_equal(strchr(out.buf, '\n') - out.buf, 16 + 5);
	sb_release(&out);

	/* a password in the URL stays out of messages (port 1: refused at once) */
	o.repo = "http://alice:s3cret@127.0.0.1:1/x.git";
	err = open_fails(&o);
	assert_true(str_has_prefix(err->msg, "fetching http://alice:***@127.0.0.1:1/x.git: "));
	assert_null(strstr(err->msg, "s3cret"));
	gerr_free(err);
	free(repos);
	free(url);
	free(missing);
	free(state_dir);
}

static bool state_dir_is(const char *want)
{
	char *d = store_default_state_dir();
	bool ok = strcmp(d, want) == 0;
	if (!ok)
		fprintf(stderr, "store_default_state_dir: %s, expected %s\n", d, want);
	free(d);
	return ok;
}

/* The non-root rules; run in a child, which may drop root first. */
static bool user_state_dirs(void)
{
	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	setenv("HOME", "/home/someone", 1);
	bool ok = state_dir_is("/xdg/state/gitops");
	unsetenv("XDG_STATE_HOME");
	ok &= state_dir_is("/home/someone/.local/state/gitops");
	setenv("XDG_STATE_HOME", "relative", 1); /* invalid by the XDG spec: ignored */
	ok &= state_dir_is("/home/someone/.local/state/gitops");
	return ok;
}

static void test_default_state_dir(void **state)
{
	if (geteuid() == 0)
		assert_true(state_dir_is("/var/lib/gitops"));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(2);
		_exit(user_state_dirs() ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- writing back: store_commit_file, store_push ---------------------------------- */

/* `git -C dir ARGS` output without its trailing newline; caller frees. */
static char *git_out(const char *dir, const char *const *args)
{
	struct sbuf out = SBUF_INIT;
	run(dir, &out, args);
	while (out.len && out.buf[out.len - 1] == '\n')
		sb_setlen(&out, out.len - 1);
	return sb_detach(&out, NULL);
}
#define GIT_OUT(dir, ...) git_out((dir), (const char *const[]){ __VA_ARGS__, NULL })

static void assert_git_out(const char *dir, const char *want, const char *const *args)
{
	char *got = git_out(dir, args);
	assert_string_equal(got, want);
	free(got);
}
#define ASSERT_GIT(dir, want, ...) assert_git_out((dir), (want), (const char *const[]){ __VA_ARGS__, NULL })

static void assert_file(const char *dir, const char *rel, const char *want)
{
	char *path = xasprintf("%s/%s", dir, rel);
	struct sbuf sb = SBUF_INIT;
	assert_int_equal(sb_read_file(&sb, path, 1 << 20, NULL), 0);
	assert_string_equal(sb.buf, want);
	sb_release(&sb);
	free(path);
}

static int commit_file(struct store_source *s, const char *path, const char *data, struct gerr **err)
{
	struct store_commit c = { .path = path, .data = data, .len = strlen(data),
				  .message = "Revert it\n\nThe body names abc.\n" };
	return store_commit_file(s, &c, err);
}

static void expect_refused(struct store_source *s, const char *path, const char *data, const char *msg_part)
{
	struct gerr *err = NULL;
	assert_int_equal(commit_file(s, path, data, &err), -1);
	assert_non_null(err);
	if (!strstr(err->msg, msg_part))
		fail_msg("error \"%s\" lacks \"%s\"", err->msg, msg_part);
	assert_int_equal(err->code, GERR_FAIL);
	gerr_free(err);
}

static void test_commit_worktree(void **state)
{
	char *dir = repo_with("apps/web.yaml", "image: v2\n", "apps/db.yaml", "x: 1\n", NULL);
	char *c1 = rev(dir, "HEAD");
	char *web = xasprintf("%s/apps/web.yaml", dir);
	assert_int_equal(chmod(web, 0640), 0);
	free(web);
	struct store_source *s = open_at(dir, NULL, NULL);
	assert_string_equal(store_source_branch(s), "main");
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(store_source_read(s, "apps/web.yaml", 0, &data, &len, NULL), 0);
	assert_string_equal(data, "image: v2\n");
	free(data);
	struct gerr *err = NULL;
	if (commit_file(s, "apps/web.yaml", "image: v1\n", &err) < 0)
		fail_msg("store_commit_file: %s", err->msg);
	char *c2 = rev(dir, "HEAD");
	assert_string_equal(store_source_commit(s), c2);
	assert_string_equal(store_source_subject(s), "Revert it");
	assert_string_not_equal(c1, c2);
	ASSERT_GIT(dir, c1, "rev-parse", "HEAD~1");
	ASSERT_GIT(dir, "Revert it\n\nThe body names abc.", "log", "-1", "--format=%B");
	ASSERT_GIT(dir, "gitops <gitops@localhost>", "log", "-1", "--format=%an <%ae>");
	ASSERT_GIT(dir, "apps/web.yaml", "diff", "--name-only", "HEAD~1", "HEAD");
	ASSERT_GIT(dir, "image: v1", "show", "HEAD:apps/web.yaml");
	ASSERT_GIT(dir, "", "status", "--porcelain");      /* work tree and index follow */
	assert_file(dir, "apps/web.yaml", "image: v1\n");
	struct stat st;
	char *path = xasprintf("%s/apps/web.yaml", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	free(path);
	/* the same contents again: nothing to commit */
	expect_refused(s, "apps/web.yaml", "image: v1\n", "nothing to commit");
	expect_refused(s, "apps/none.yaml", "x\n", "not found");
	store_source_close(s);

	/* user.name and user.email of the repository are the author */
	GIT(dir, "config", "user.name", "Ann");
	GIT(dir, "config", "user.email", "ann@example.org");
	s = open_at(dir, "main", NULL);
	assert_int_equal(commit_file(s, "apps/db.yaml", "x: 2\n", NULL), 0);
	ASSERT_GIT(dir, "Ann <ann@example.org>", "log", "-1", "--format=%an <%ae>");
	store_source_close(s);
	free(c1);
	free(c2);
	free(dir);
}

static void test_commit_refusals(void **state)
{
	char *dir = repo_with("apps/web.yaml", "image: v2\n", "apps/db.yaml", "x: 1\n", NULL);
	GIT(dir, "tag", "v2");
	char *c1 = rev(dir, "HEAD");

	/* a dirty working file, an unstaged or a staged change: nothing changes */
	struct store_source *s = open_at(dir, NULL, NULL);
	put(dir, "apps/web.yaml", "image: v3\n");
	expect_refused(s, "apps/web.yaml", "image: v1\n", "apps/web.yaml has uncommitted changes in");
	GIT(dir, "add", "apps/web.yaml");
	expect_refused(s, "apps/web.yaml", "image: v1\n", "apps/web.yaml has staged changes in");
	ASSERT_GIT(dir, c1, "rev-parse", "HEAD");
	assert_file(dir, "apps/web.yaml", "image: v3\n");
	ASSERT_GIT(dir, "M  apps/web.yaml", "status", "--porcelain");
	/* another file's changes do not matter, and stay */
	assert_int_equal(commit_file(s, "apps/db.yaml", "x: 2\n", NULL), 0);
	ASSERT_GIT(dir, "M  apps/web.yaml", "status", "--porcelain");
	assert_file(dir, "apps/web.yaml", "image: v3\n");
	store_source_close(s);
	GIT(dir, "reset", "-q", "--hard");

	/* not a branch: a tag, a commit, an expression */
	const char *refs[] = { "v2", c1, "main~1" };
	for (size_t i = 0; i < ARRAY_SIZE(refs); i++) {
		s = open_at(dir, refs[i], NULL);
		assert_null(store_source_branch(s));
		expect_refused(s, "apps/web.yaml", "image: v1\n", "was not read from a branch");
		struct gerr *err = NULL;
		assert_int_equal(store_push(s, NULL, &err), -1);
		gerr_free(err);
		store_source_close(s);
	}

	/* the branch moved since it was read */
	s = open_at(dir, "main", NULL);
	put(dir, "apps/db.yaml", "x: 3\n");
	commit(dir, "meanwhile");
	char *c3 = rev(dir, "HEAD");
	expect_refused(s, "apps/web.yaml", "image: v1\n", "branch main moved from");
	ASSERT_GIT(dir, c3, "rev-parse", "HEAD");
	store_source_close(s);

	/* a bare repository, and a branch that is not checked out: only the ref moves */
	GIT(dir, "branch", "other");
	s = open_at(dir, "other", NULL);
	assert_int_equal(commit_file(s, "apps/web.yaml", "image: other\n", NULL), 0);
	ASSERT_GIT(dir, "image: other", "show", "other:apps/web.yaml");
	ASSERT_GIT(dir, c3, "rev-parse", "HEAD");
	assert_file(dir, "apps/web.yaml", "image: v2\n");
	ASSERT_GIT(dir, "", "status", "--porcelain");
	store_source_close(s);
	char *bare = fresh("bare");
	GIT(NULL, "clone", "-q", "--bare", dir, bare);
	s = open_at(bare, NULL, NULL);
	assert_string_equal(store_source_branch(s), "main");
	assert_int_equal(commit_file(s, "apps/web.yaml", "image: bare\n", NULL), 0);
	ASSERT_GIT(bare, "image: bare", "show", "main:apps/web.yaml");
	store_source_close(s);
	free(bare);
	free(c3);
	free(c1);
	free(dir);
}

static void test_push(void **state)
{
	char *seed = repo_with("apps/web.yaml", "image: v2\n", NULL);
	char *remote = fresh("remote");
	GIT(NULL, "clone", "-q", "--bare", seed, remote);
	char *work = fresh("work");
	GIT(NULL, "clone", "-q", remote, work);

	/* no remote at all */
	struct store_source *s = open_at(seed, NULL, NULL);
	struct gerr *err = NULL;
	assert_int_equal(store_push(s, NULL, &err), -1);
	assert_string_equal(err->msg, "no remote \"origin\" to push main to (git remote add origin URL)");
	gerr_free(err);
	store_source_close(s);

	/* a commit pushed to origin: the remote's branch and origin/main follow */
	s = open_at(work, NULL, NULL);
	assert_int_equal(commit_file(s, "apps/web.yaml", "image: v1\n", NULL), 0);
	char *pushed = xstrdup(store_source_commit(s));
	char *to = NULL;
	err = NULL;
	if (store_push(s, &to, &err) < 0)
		fail_msg("store_push: %s", err->msg);
	assert_string_equal(to, "origin");
	free(to);
	ASSERT_GIT(remote, pushed, "rev-parse", "main");
	ASSERT_GIT(work, pushed, "rev-parse", "origin/main");
	store_source_close(s);

	/* someone else pushes first: non-fast-forward, the local commit stays */
	char *other = fresh("other");
	GIT(NULL, "clone", "-q", remote, other);
	put(other, "apps/db.yaml", "x: 1\n");
	commit(other, "other change");
	GIT(other, "push", "-q", "origin", "main");
	char *theirs = rev(remote, "main");
	s = open_at(work, NULL, NULL);
	assert_int_equal(commit_file(s, "apps/web.yaml", "image: v0\n", NULL), 0);
	char *mine = xstrdup(store_source_commit(s));
	err = NULL;
	assert_int_equal(store_push(s, NULL, &err), -1);
	assert_int_equal(err->code, GERR_FAIL);
	assert_string_equal(err->msg, "pushing main to origin: rejected (non-fast-forward: origin has commits main lacks)");
	gerr_free(err);
	ASSERT_GIT(remote, theirs, "rev-parse", "main");
	ASSERT_GIT(work, mine, "rev-parse", "main");
	ASSERT_GIT(work, pushed, "rev-parse", "origin/main");
	store_source_close(s);

	/* (a remote's own refusal, e.g. a hook, needs git-receive-pack: libgit2 pushes
	 * to a local path directly; the bats test of undo goes through the same code) */
	GIT(work, "pull", "-q", "--rebase", "origin", "main");

	/* a URL source: the commit goes into the cache, the push to the URL */
	char *url = xasprintf("file://%s", remote);
	char *state_dir = fresh("state");
	struct store_source_opts o = { .repo = url, .state_dir = state_dir };
	s = open_ok(&o);
	assert_string_equal(store_source_branch(s), "main");
	assert_int_equal(commit_file(s, "apps/web.yaml", "image: url\n", NULL), 0);
	to = NULL;
	err = NULL;
	if (store_push(s, &to, &err) < 0)
		fail_msg("store_push: %s", err->msg);
	assert_string_equal(to, url);
	free(to);
	ASSERT_GIT(remote, store_source_commit(s), "rev-parse", "main");
	ASSERT_GIT(remote, "image: url", "show", "main:apps/web.yaml");
	store_source_close(s);
	free(state_dir);
	free(url);
	free(mine);
	free(theirs);
	free(other);
	free(pushed);
	free(work);
	free(remote);
	free(seed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ignore_basics),
		cmocka_unit_test(test_ignore_later_wins),
		cmocka_unit_test(test_ignore_anchoring),
		cmocka_unit_test(test_ignore_dir_only),
		cmocka_unit_test(test_ignore_doublestar),
		cmocka_unit_test(test_ignore_classes),
		cmocka_unit_test(test_ignore_pathological),
		cmocka_unit_test(test_ignore_nested),
		cmocka_unit_test(test_ignore_excluded_dir_stays_excluded),
		cmocka_unit_test(test_worktree),
		cmocka_unit_test(test_inside_worktree_and_bare),
		cmocka_unit_test(test_refs),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_subtree),
		cmocka_unit_test(test_gitopsignore),
		cmocka_unit_test(test_order_and_kinds),
		cmocka_unit_test(test_symlink_submodule_skipped),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_url_clone_and_fetch),
		cmocka_unit_test(test_url_follows_remote_head),
		cmocka_unit_test(test_url_insteadof),
		cmocka_unit_test(test_url_concurrent),
		cmocka_unit_test(test_url_unreachable),
		cmocka_unit_test(test_default_state_dir),
		cmocka_unit_test(test_commit_worktree),
		cmocka_unit_test(test_commit_refusals),
		cmocka_unit_test(test_push),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
