/* rollout.c: `gitops rollout status|history|undo|pause|resume deployment/NAME`.
 * History is the revision records of the cluster state (kept on every node);
 * undo pins an old template until git changes the Deployment's template, and with
 * --commit/--push writes that template back into git (a commit of the Deployment's
 * file, then a push). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "store/store.h"

struct target {
	const char *ns;
	char *name;
};

static int parse_target(struct cli_args *a, struct target *t)
{
	t->ns = cli_str(a, "namespace") ? cli_str(a, "namespace") : "default";
	if (a->argc < 2)
		return cli_usage_error(a, "name the deployment: gitops rollout %s deployment/NAME",
				       a->argc ? a->argv[0] : "status");
	const char *spec = a->argv[1], *name = NULL;
	char *kind = NULL;
	const char *slash = strchr(spec, '/');
	if (slash) {
		kind = xstrndup(spec, (size_t)(slash - spec));
		name = slash + 1;
	} else if (a->argc >= 3) {
		kind = xstrdup(spec);
		name = a->argv[2];
	} else {
		return cli_usage_error(a, "name the deployment as deployment/NAME");
	}
	const struct api_kind *k = api_kind_lookup(kind);
	bool ok = k && !strcmp(k->kind, "Deployment");
	if (!ok) {
		int r = cli_usage_error(a, "rollouts are of deployments, not \"%s\"", kind);
		free(kind);
		return r;
	}
	free(kind);
	t->name = xstrdup(name);
	return 0;
}

/* One dry-run pass: what the nodes report and the cluster state. */
static int observe(struct ctl *c, struct api_set *set, const char *commit, const char *subject,
		   struct rc_result *res)
{
	struct rc_opts o = c->o;
	o.dry_run = true;
	struct gerr *err = NULL;
	if (rc_pass(&o, set, commit, subject, res, &err) < 0)
		return cli_fail(err);
	return 0;
}

static const json_t *rollout_of(const struct rc_result *res, const struct target *t)
{
	size_t i;
	json_t *d;
	json_array_foreach(res->rollouts, i, d)
		if (!strcmp(json_string_value(json_object_get(d, "namespace")) ?: "", t->ns) &&
		    !strcmp(json_string_value(json_object_get(d, "name")) ?: "", t->name))
			return d;
	return NULL;
}

/* The revision records of a Deployment, sorted by revision: [{hash, revision, ...}]. */
static json_t *revisions(const json_t *cluster, const struct target *t)
{
	char *prefix = xasprintf("revision/%s/%s/", t->ns, t->name);
	json_t *list = json_array();
	const char *key;
	json_t *e;
	json_object_foreach((json_t *)cluster, key, e) {
		const json_t *v = cluster_get(cluster, key);
		if (!str_has_prefix(key, prefix) || !v)
			continue;
		json_t *r = json_deep_copy(v);
		json_object_set_new(r, "hash", json_string(key + strlen(prefix)));
		size_t at = 0;
		while (at < json_array_size(list) &&
		       json_integer_value(json_object_get(json_array_get(list, at), "revision")) <
			       json_integer_value(json_object_get(r, "revision")))
			at++;
		json_array_insert_new(list, at, r);
	}
	free(prefix);
	return list;
}

static void age(int64_t secs, struct sbuf *out)
{
	if (secs < 120)
		sb_addf(out, "%llds", (long long)secs);
	else if (secs < 7200)
		sb_addf(out, "%lldm", (long long)(secs / 60));
	else if (secs < 172800)
		sb_addf(out, "%lldh", (long long)(secs / 3600));
	else
		sb_addf(out, "%lldd", (long long)(secs / 86400));
}

static int history(struct ctl *c, const struct target *t, const json_t *cluster)
{
	json_t *list = revisions(cluster, t);
	int64_t want = 0;
	if (cli_str(c->a, "revision") && parse_i64(cli_str(c->a, "revision"), 1, INT32_MAX, &want) < 0) {
		json_decref(list);
		return cli_usage_error(c->a, "--revision takes a revision number");
	}
	if (json_array_size(list) == 0) {
		fprintf(stderr, "gitops: no rollout history for deployment.apps/%s in namespace \"%s\"\n", t->name, t->ns);
		json_decref(list);
		return 1;
	}
	char *pin_key = xasprintf("pin/%s/%s", t->ns, t->name);
	const char *pinned = json_string_value(json_object_get(cluster_get(cluster, pin_key), "hash"));
	free(pin_key);
	size_t i;
	json_t *r;
	if (want) {
		json_array_foreach(list, i, r)
			if (json_integer_value(json_object_get(r, "revision")) == want) {
				printf("deployment.apps/%s with revision #%lld\n", t->name, (long long)want);
				struct sbuf y = SBUF_INIT;
				char *text = json_dumps(json_object_get(r, "template"), JSON_INDENT(2) | JSON_SORT_KEYS);
				printf("Pod Template:\n%s\n", text);
				free(text);
				sb_release(&y);
				json_decref(list);
				return 0;
			}
		fprintf(stderr, "gitops: unable to find the specified revision %lld\n", (long long)want);
		json_decref(list);
		return 1;
	}
	printf("deployment.apps/%s\n%-9s %-8s %-5s %s\n", t->name, "REVISION", "COMMIT", "AGE", "CHANGE-CAUSE");
	int64_t now = (int64_t)time(NULL);
	json_array_foreach(list, i, r) {
		struct sbuf a = SBUF_INIT;
		age(now - json_integer_value(json_object_get(r, "time")), &a);
		const char *commit = json_string_value(json_object_get(r, "commit")) ?: "";
		json_int_t rev = json_integer_value(json_object_get(r, "revision"));
		printf("%-9lld %-8.7s %-5s %s%s\n", (long long)rev, commit, a.buf,
		       json_string_value(json_object_get(r, "subject")) ?: "<none>",
		       pinned && !strcmp(pinned, json_string_value(json_object_get(r, "hash")) ?: "")
			       ? "  (pinned by rollout undo)" : "");
		sb_release(&a);
	}
	json_decref(list);
	return 0;
}

/* Run one real pass that sets cluster-state keys, printing what it changed. */
static int pass_with(struct ctl *c, json_t *set)
{
	c->o.set = set;
	int rc = ctl_passes(c, false, 0);
	c->o.set = NULL;
	return rc;
}

/* ---- undo --commit: the revert written into git ------------------------------------
 * The Deployment's document in its file is rewritten with the revision's pod
 * template and committed (store_commit_file). The template comes, by preference,
 * from the file as written at the commit that introduced the revision (so the diff
 * is the lines that changed, without defaults), else from the revision record (with
 * every default filled in). The file is spliced, in this order of preference:
 *   1. the lines of the `template:` block (block style, the key alone on its line),
 *      re-emitted in kubectl's layout: comments inside the template are lost;
 *   2. the whole document, re-emitted: its comments and flow style are lost;
 *   3. a .json file: rewritten as indented JSON.
 * A candidate is taken only when the new file reads back to the same objects, with
 * the Deployment's spec.template replaced and nothing else changed, validates, and
 * its template hashes as the revision: then the next sync restarts nothing. */

/* Byte offset of the start of line (1-based), len when past the end. */
static size_t line_start(const char *text, size_t len, uint32_t line)
{
	size_t at = 0;
	for (uint32_t l = 1; l < line && at < len; l++) {
		const char *nl = memchr(text + at, '\n', len - at);
		at = nl ? (size_t)(nl - text) + 1 : len;
	}
	return at;
}

static size_t next_line(const char *text, size_t len, size_t at)
{
	const char *nl = memchr(text + at, '\n', len - at);
	return nl ? (size_t)(nl - text) + 1 : len;
}

/* Leading spaces of the line at `at`; *ret_content: more than blanks and a comment. */
static size_t line_indent(const char *text, size_t len, size_t at, bool *ret_content)
{
	size_t i = at;
	while (i < len && text[i] == ' ')
		i++;
	size_t ind = i - at;
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
		i++;
	*ret_content = i < len && text[i] != '\n' && text[i] != '#';
	return ind;
}

static bool doc_marker(const char *text, size_t len, size_t at)
{
	if (len - at < 3 || (memcmp(text + at, "---", 3) && memcmp(text + at, "...", 3)))
		return false;
	return len - at == 3 || memchr(" \t\r\n", text[at + 3], 4);
}

/* The end of the block whose first line starts at `at`: the following lines
 * indented deeper than ind (-1: every line, to the end of the document), with the
 * blank and comment lines between them but not after the last. */
static size_t block_end(const char *text, size_t len, size_t at, int ind)
{
	size_t end = next_line(text, len, at);
	for (size_t p = end; p < len && !doc_marker(text, len, p); p = next_line(text, len, p)) {
		bool content;
		size_t i = line_indent(text, len, p, &content);
		if (!content)
			continue;
		if ((int)i <= ind)
			break;
		end = next_line(text, len, p);
	}
	return end;
}

/* n's block YAML, every non-empty line indented by ind. */
static void emit_indented(const struct ynode *n, size_t ind, struct sbuf *out)
{
	struct sbuf y = SBUF_INIT;
	api_emit_yaml(n, &y);
	for (const char *p = y.buf; *p;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		if (l)
			sb_addf(out, "%*s", (int)ind, "");
		sb_add(out, p, l);
		sb_addc(out, '\n');
		p += l + (nl != NULL);
	}
	sb_release(&y);
}

/* 1: replace the lines of the block of key ("template", alone at its line's
 * indentation) by tmpl. */
static bool splice_template(const char *text, size_t len, const struct ynode *key, const struct ynode *tmpl,
			    struct sbuf *out)
{
	size_t at = line_start(text, len, key->line), ind = key->col ? key->col - 1 : 0;
	if (!key->col || at + ind + 9 > len || strspn(text + at, " ") < ind || memcmp(text + at + ind, "template", 8))
		return false;
	size_t k = at + ind + 8;
	while (k < len && (text[k] == ' ' || text[k] == '\t'))
		k++;
	if (k >= len || text[k] != ':')
		return false;
	size_t end = block_end(text, len, at, (int)ind);
	sb_add(out, text, at);
	sb_addf(out, "%*stemplate:\n", (int)ind, "");
	emit_indented(tmpl, ind + 2, out);
	sb_add(out, text + end, len - end);
	return true;
}

/* 2: replace the document whose root (a block mapping) is root by doc. */
static bool splice_document(const char *text, size_t len, const struct ynode *root, const struct ynode *doc,
			    struct sbuf *out)
{
	if (root->type != YN_MAP || root->col != 1)
		return false;
	size_t at = line_start(text, len, root->line), end = block_end(text, len, at, -1);
	sb_add(out, text, at);
	emit_indented(doc, 0, out);
	sb_add(out, text + end, len - end);
	return true;
}

/* root with spec.template replaced by tmpl: a shallow copy sharing every other
 * node (the copy never writes through them). Release with doc_copy_release(). */
struct doc_copy {
	struct ynode root, spec;
	const struct ynode *tmpl_key; /* the original "template" key */
};

static bool doc_copy_init(struct doc_copy *c, const struct ynode *root, const struct ynode *tmpl)
{
	memset(c, 0, sizeof(*c));
	c->root = *root;
	c->root.flags &= (uint8_t)~YNF_GROWN;
	c->root.items = xcalloc(2 * (size_t)root->n + 1, sizeof(*c->root.items));
	memcpy(c->root.items, root->items, 2 * (size_t)root->n * sizeof(*c->root.items));
	for (size_t i = 0; i < root->n; i++) {
		const struct ynode *spec = root->items[2 * i + 1];
		if (strcmp(yn_str(root->items[2 * i]) ?: "", "spec") || spec->type != YN_MAP)
			continue;
		c->spec = *spec;
		c->spec.flags &= (uint8_t)~YNF_GROWN;
		c->spec.items = xcalloc(2 * (size_t)spec->n + 1, sizeof(*c->spec.items));
		memcpy(c->spec.items, spec->items, 2 * (size_t)spec->n * sizeof(*c->spec.items));
		c->root.items[2 * i + 1] = &c->spec;
		for (size_t j = 0; j < spec->n; j++)
			if (!strcmp(yn_str(spec->items[2 * j]) ?: "", "template")) {
				c->tmpl_key = spec->items[2 * j];
				c->spec.items[2 * j + 1] = (struct ynode *)tmpl;
			}
	}
	return c->tmpl_key != NULL;
}

static void doc_copy_release(struct doc_copy *c)
{
	if (c->root.type == YN_MAP)
		free(c->root.items);
	if (c->spec.type == YN_MAP)
		free(c->spec.items);
}

static const struct api_object *find_in(const struct api_set *set, const struct target *t, size_t *ret_index)
{
	for (size_t i = 0; i < set->nobjs; i++) {
		const struct api_object *o = &set->objs[i];
		if (!strcmp(o->kind->kind, "Deployment") && !strcmp(o->ns, t->ns) && !strcmp(o->name, t->name)) {
			if (ret_index)
				*ret_index = i;
			return o;
		}
	}
	return NULL;
}

struct revert {
	const struct target *t;
	const json_t *pick;     /* the revision record */
	const char *file;       /* the Deployment's file */
	const char *text;       /* its bytes at the commit read */
	size_t len;
	struct api_set old;     /* the file as it is (not defaulted) */
	size_t index;           /* of the Deployment in old */
};

/* Does text (the rewritten file) say what we mean? See the comment above. */
static bool rewrite_ok(struct revert *rv, const char *text, size_t len, const json_t *want, struct sbuf *why)
{
	struct api_set n;
	api_set_init(&n);
	api_add_file(&n, rv->file, text, len);
	bool ok = n.nobjs == rv->old.nobjs;
	for (size_t i = 0; ok && i < n.nobjs; i++) {
		json_t *a = api_to_json(n.objs[i].root);
		json_t *b = i == rv->index ? json_incref((json_t *)want) : api_to_json(rv->old.objs[i].root);
		ok = json_equal(a, b);
		json_decref(a);
		json_decref(b);
	}
	if (!ok)
		sb_adds(why, "the rewritten file does not read back as intended");
	api_finish(&n);
	for (size_t i = 0; ok && i < n.ndiags; i++)
		if (n.diags[i].sev == API_ERROR) {
			api_diag_format(&n.diags[i], why);
			ok = false;
		}
	const struct api_object *d = ok ? find_in(&n, rv->t, NULL) : NULL;
	if (ok && d) {
		json_t *tmpl = api_to_json(yn_path(d->root, "spec.template"));
		char *hash = pod_template_hash(tmpl);
		const char *want_hash = json_string_value(json_object_get(rv->pick, "hash")) ?: "";
		ok = !strcmp(hash, want_hash);
		if (!ok)
			sb_addf(why, "its template hashes %s, not %s", hash, want_hash);
		free(hash);
		json_decref(tmpl);
	}
	api_set_release(&n);
	return ok;
}

/* The file with tmpl as the Deployment's template, into out; false (with why)
 * when no way of writing it reads back right. */
static bool rewrite(struct revert *rv, const struct ynode *tmpl, struct sbuf *out, struct sbuf *why)
{
	const struct ynode *root = rv->old.objs[rv->index].root;
	struct doc_copy c;
	bool ok = false;
	if (!doc_copy_init(&c, root, tmpl)) {
		sb_adds(why, "the Deployment has no spec.template");
		doc_copy_release(&c);
		return false;
	}
	json_t *want = api_to_json(&c.root);
	bool json_file = str_has_suffix(rv->file, ".json");
	for (int way = json_file ? 3 : 1; way <= 3 && !ok; way++) {
		sb_reset(out);
		bool made = false;
		if (way == 1) {
			made = splice_template(rv->text, rv->len, c.tmpl_key, tmpl, out);
		} else if (way == 2) {
			made = splice_document(rv->text, rv->len, root, &c.root, out);
		} else if (json_file) {
			char *s = json_dumps(want, JSON_INDENT(2));
			sb_adds(out, s ? s : "");
			sb_addc(out, '\n');
			free(s);
			made = true;
		}
		if (made) {
			sb_reset(why);
			ok = rewrite_ok(rv, out->buf, out->len, want, why);
		}
	}
	if (!ok && !why->len)
		sb_adds(why, "its document is not in block style");
	json_decref(want);
	doc_copy_release(&c);
	return ok;
}

/* The Deployment's spec.template as written at commit (the revision's), loaded
 * into scratch; NULL when that commit or the Deployment there cannot be read. */
static const struct ynode *template_at(struct ctl *c, const struct target *t, const char *commit,
				       struct api_set *scratch)
{
	struct store_source_opts so = {
		.repo = cli_str(c->a, "repo") ?: ".", .ref = commit, .path = cli_str(c->a, "path"),
		.state_dir = c->state, .no_fetch = true,
	};
	struct store_source *src = NULL;
	struct store_file *files = NULL;
	size_t n = 0;
	struct gerr *err = NULL;
	if (commit && store_source_open(&so, &src, &err) == 0 &&
	    store_source_files(src, API_MAX_FILE_BYTES, &files, &n, &err) == 0)
		for (size_t i = 0; i < n; i++)
			api_add_file(scratch, files[i].path, files[i].data, files[i].len);
	gerr_free(err);
	store_files_free(files, n);
	store_source_close(src);
	const struct api_object *d = find_in(scratch, t, NULL);
	return d ? yn_path(d->root, "spec.template") : NULL;
}

/* The revision record's template (defaults and all) as a tree in scratch. */
static const struct ynode *template_of_record(const json_t *pick, struct api_set *scratch)
{
	json_t *doc = json_pack("{s:s, s:s, s:{s:s}, s:{s:O}}", "apiVersion", "apps/v1", "kind", "Deployment",
				"metadata", "name", "revision", "spec", "template", json_object_get(pick, "template"));
	char *text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
	if (text)
		api_add_file(scratch, "<revision>", text, strlen(text));
	free(text);
	json_decref(doc);
	return scratch->nobjs ? yn_path(scratch->objs[0].root, "spec.template") : NULL;
}

/* Open the branch that was read (at the commit read) and rewrite the Deployment's
 * file: into out, with *ret_src open for the commit. Returns 0 or an exit code. */
static int revert_prepare(struct ctl *c, struct revert *rv, const struct api_object *d, const char *loaded,
			  struct store_source **ret_src, struct sbuf *out)
{
	struct store_source_opts so = {
		.repo = cli_str(c->a, "repo") ?: ".", .ref = cli_str(c->a, "ref"), .path = cli_str(c->a, "path"),
		.state_dir = c->state, .no_fetch = true,
	};
	struct gerr *err = NULL;
	char *data = NULL;
	if (store_source_open(&so, ret_src, &err) < 0)
		return cli_fail(err);
	if (strcmp(store_source_commit(*ret_src), loaded)) {
		fprintf(stderr, "gitops: %s moved while it was read: run again\n", so.ref ? so.ref : "HEAD");
		return 1;
	}
	if (!store_source_branch(*ret_src)) {
		fprintf(stderr, "gitops: --commit needs a branch: %s is not one (name it with --ref)\n",
			so.ref ? so.ref : "HEAD (detached)");
		return 1;
	}
	if (store_source_is_url(*ret_src) && !cli_flag(c->a, "push"))
		return cli_usage_error(c->a, "with a URL --repo, --commit needs --push: the controller's clone "
					     "follows the remote, so an unpushed commit would be dropped");
	if (store_source_read(*ret_src, d->file, API_MAX_FILE_BYTES, &data, &rv->len, &err) < 0)
		return cli_fail(err);
	rv->text = data;
	rv->file = d->file;
	api_add_file(&rv->old, d->file, rv->text, rv->len);
	if (!find_in(&rv->old, rv->t, &rv->index)) {
		fprintf(stderr, "gitops: deployment/%s not found in %s\n", rv->t->name, d->file);
		return 1;
	}
	struct api_set at_commit, record;
	api_set_init(&at_commit);
	api_set_init(&record);
	struct sbuf why = SBUF_INIT;
	const char *commit = json_string_value(json_object_get(rv->pick, "commit"));
	const struct ynode *tmpl = template_at(c, rv->t, commit, &at_commit);
	bool ok = tmpl && rewrite(rv, tmpl, out, &why);
	if (!ok && (tmpl = template_of_record(rv->pick, &record)))
		ok = rewrite(rv, tmpl, out, &why);
	if (!ok)
		fprintf(stderr, "gitops: cannot write revision %lld's template into %s: %s; nothing was committed\n",
			(long long)json_integer_value(json_object_get(rv->pick, "revision")), d->file,
			why.len ? why.buf : "no template");
	sb_release(&why);
	api_set_release(&at_commit);
	api_set_release(&record);
	return ok ? 0 : 1;
}

/* undo --commit [--push]: commit the revert to the branch read, push it. Returns 0 or
 * an exit code; nothing is changed unless the commit is made. */
static int revert_commit(struct ctl *c, const struct target *t, const struct api_object *d, const json_t *pick,
			 const char *loaded, int *ret_push_rc)
{
	struct revert rv = { .t = t, .pick = pick };
	api_set_init(&rv.old);
	struct store_source *src = NULL;
	struct sbuf out = SBUF_INIT, msg = SBUF_INIT;
	json_int_t rev = json_integer_value(json_object_get(pick, "revision"));
	const char *commit = json_string_value(json_object_get(pick, "commit"));
	const char *subject = json_string_value(json_object_get(pick, "subject"));
	int rc = revert_prepare(c, &rv, d, loaded, &src, &out);
	if (rc == 0) {
		sb_addf(&msg, "Revert deployment/%s to revision %lld\n\n", t->name, (long long)rev);
		sb_addf(&msg, "Restores the pod template of revision %lld of deployment.apps/%s in namespace\n"
			      "%s, introduced by commit %s%s%s%s.\n\nMade by gitops rollout undo --commit.\n",
			(long long)rev, t->name, t->ns, commit ? commit : "(unknown)", subject ? " (\"" : "",
			subject ? subject : "", subject ? "\")" : "");
		struct store_commit sc = { .path = d->file, .data = out.buf, .len = out.len, .message = msg.buf };
		struct gerr *err = NULL;
		if (store_commit_file(src, &sc, &err) < 0)
			rc = cli_fail(err);
	}
	if (rc == 0)
		printf("committed %s on %s: Revert deployment/%s to revision %lld\n", store_source_short_commit(src),
		       store_source_branch(src), t->name, (long long)rev);
	if (rc == 0 && cli_flag(c->a, "push")) {
		char *to = NULL;
		struct gerr *err = NULL;
		if (store_push(src, &to, &err) == 0) {
			printf("pushed %s to %s\n", store_source_branch(src), to);
		} else {
			*ret_push_rc = cli_fail(err);
			if (store_source_is_url(src))
				fprintf(stderr, "gitops: the commit %s was not pushed: the controller's clone drops it at "
						"its next fetch, and the pin holds\n", store_source_short_commit(src));
			else
				fprintf(stderr, "gitops: the commit %s stays on %s: pull, then push\n",
					store_source_short_commit(src), store_source_branch(src));
		}
		free(to);
	}
	store_source_close(src); /* before the pass: a URL's clone is locked meanwhile */
	sb_release(&out);
	sb_release(&msg);
	free((char *)rv.text);
	api_set_release(&rv.old);
	return rc;
}

static int undo(struct ctl *c, const struct target *t, const struct api_set *set, const json_t *cluster,
		const char *loaded)
{
	const struct api_object *d = find_in(set, t, NULL);
	if (!d) {
		fprintf(stderr, "gitops: deployments.apps \"%s\" not found in namespace \"%s\"\n", t->name, t->ns);
		return 1;
	}
	json_t *list = revisions(cluster, t);
	int64_t to = 0;
	if (cli_str(c->a, "to-revision") && parse_i64(cli_str(c->a, "to-revision"), 0, INT32_MAX, &to) < 0) {
		json_decref(list);
		return cli_usage_error(c->a, "--to-revision takes a revision number");
	}
	size_t n = json_array_size(list);
	const json_t *pick = NULL;
	if (to == 0 && n >= 2)
		pick = json_array_get(list, n - 2); /* the one before the current */
	for (size_t i = 0; to && i < n; i++)
		if (json_integer_value(json_object_get(json_array_get(list, i), "revision")) == to)
			pick = json_array_get(list, i);
	if (!pick) {
		fprintf(stderr, "gitops: %s\n", to ? "unable to find the specified revision" : "no rollout history found to roll back to");
		json_decref(list);
		return 1;
	}
	json_t *tmpl = api_to_json(yn_path(d->root, "spec.template"));
	char *git_hash = pod_template_hash(tmpl);
	json_decref(tmpl);
	json_int_t rev = json_integer_value(json_object_get(pick, "revision"));
	int rc = 0, push_rc = 0;
	bool commit = cli_flag(c->a, "commit") || cli_flag(c->a, "push"), committed = false;
	if (commit && !strcmp(git_hash, json_string_value(json_object_get(pick, "hash")) ?: "")) {
		printf("git already declares the template of revision %lld: nothing to commit\n", (long long)rev);
	} else if (commit) {
		rc = revert_commit(c, t, d, pick, loaded, &push_rc);
		committed = rc == 0;
	}
	if (rc) {
		free(git_hash);
		json_decref(list);
		return rc;
	}
	/* The pin also holds after a commit, until the pass reads a commit whose template
	 * is the pinned one (at once, unless a URL's push failed): it is released then. */
	char *key = xasprintf("pin/%s/%s", t->ns, t->name);
	json_t *set_keys = json_pack("{s:{s:O, s:O, s:s, s:O}}", key, "revision", json_object_get(pick, "revision"),
				     "hash", json_object_get(pick, "hash"), "gitHash", git_hash, "template",
				     json_object_get(pick, "template"));
	printf("deployment.apps/%s rolled back to revision %lld (%s)\n", t->name, (long long)rev,
	       committed ? "committed to git" : "pinned until git changes its template");
	rc = pass_with(c, set_keys);
	if (rc == 0)
		rc = push_rc;
	json_decref(set_keys);
	free(key);
	free(git_hash);
	json_decref(list);
	return rc;
}

static int pause_resume(struct ctl *c, const struct target *t, bool pause)
{
	char *key = xasprintf("paused/%s/%s", t->ns, t->name);
	json_t *set = json_pack("{s:o}", key, pause ? json_true() : json_null());
	printf("deployment.apps/%s %s\n", t->name, pause ? "paused" : "resumed");
	int rc = pass_with(c, set);
	json_decref(set);
	free(key);
	return rc;
}

static int status(struct ctl *c, const struct target *t, struct api_set *set, const char *commit,
		  const char *subject)
{
	int64_t timeout = 0;
	struct gerr *e = NULL;
	if (api_duration_parse(cli_str(c->a, "timeout") ? cli_str(c->a, "timeout") : "10m", &timeout, &e) < 0) {
		gerr_free(e);
		return cli_usage_error(c->a, "--timeout takes a duration");
	}
	time_t start = time(NULL);
	char *last = NULL;
	for (;;) {
		struct rc_result res = { 0 };
		int rc = observe(c, set, commit, subject, &res);
		if (rc) {
			free(last);
			return rc;
		}
		const json_t *d = rollout_of(&res, t);
		struct sbuf line = SBUF_INIT;
		int done = -1;
		if (!d) {
			fprintf(stderr, "gitops: deployments.apps \"%s\" not found\n", t->name);
			done = 1;
		} else if (json_is_true(json_object_get(d, "deadlineExceeded"))) {
			fprintf(stderr, "error: deployment \"%s\" exceeded its progress deadline\n", t->name);
			done = 1;
		} else if (json_is_true(json_object_get(d, "complete"))) {
			printf("deployment \"%s\" successfully rolled out\n", t->name);
			done = 0;
		} else {
			json_int_t want = json_integer_value(json_object_get(d, "desired"));
			json_int_t upd = json_integer_value(json_object_get(d, "updated"));
			json_int_t avail = json_integer_value(json_object_get(d, "available"));
			if (upd < want)
				sb_addf(&line, "Waiting for deployment \"%s\" rollout to finish: %lld out of %lld new "
					       "replicas have been updated...", t->name, (long long)upd, (long long)want);
			else
				sb_addf(&line, "Waiting for deployment \"%s\" rollout to finish: %lld of %lld updated "
					       "replicas are available...", t->name, (long long)avail, (long long)upd);
			if (!last || strcmp(last, line.buf)) {
				puts(line.buf);
				fflush(stdout);
				free(last);
				last = xstrdup(line.buf);
			}
		}
		sb_release(&line);
		rc_result_release(&res);
		if (done >= 0) {
			free(last);
			return done;
		}
		if ((time(NULL) - start) * 1000 > timeout) {
			fprintf(stderr, "error: timed out waiting for the condition\n");
			free(last);
			return 1;
		}
		sleep(1);
	}
}

int cmd_rollout(struct cli_args *a)
{
	if (a->argc < 1)
		return cli_usage_error(a, "name a subcommand: status, history, undo, pause or resume");
	const char *sub = a->argv[0];
	if (strcmp(sub, "status") && strcmp(sub, "history") && strcmp(sub, "undo") && strcmp(sub, "pause") &&
	    strcmp(sub, "resume"))
		return cli_usage_error(a, "unknown subcommand \"%s\": status, history, undo, pause or resume", sub);
	struct target t = { 0 };
	int rc = parse_target(a, &t);
	if (rc)
		return rc;
	struct ctl c;
	rc = ctl_setup(a, &c);
	struct api_set set;
	api_set_init(&set);
	char *commit = NULL, *subject = NULL;
	if (rc == 0)
		rc = ctl_load(&c, &set, &commit, &subject);
	if (rc == 0 && !strcmp(sub, "status")) {
		rc = status(&c, &t, &set, commit, subject);
	} else if (rc == 0 && (!strcmp(sub, "pause") || !strcmp(sub, "resume"))) {
		rc = pause_resume(&c, &t, !strcmp(sub, "pause"));
	} else if (rc == 0) {
		struct rc_result res = { 0 };
		rc = observe(&c, &set, commit, subject, &res);
		if (rc == 0 && !strcmp(sub, "history"))
			rc = history(&c, &t, res.cluster);
		else if (rc == 0)
			rc = undo(&c, &t, &set, res.cluster, commit);
		rc_result_release(&res);
	}
	free(commit);
	free(subject);
	api_set_release(&set);
	free(c.state);
	free(t.name);
	return rc;
}
