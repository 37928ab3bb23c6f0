/* rollout.c: `gitops rollout status|history|undo|pause|resume deployment/NAME`.
 * History is the revision records of the cluster state (kept on every node);
 * undo pins an old template until git changes the Deployment's template. */
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

static const struct api_object *find_deployment(const struct api_set *set, const struct target *t)
{
	for (size_t i = 0; i < set->nobjs; i++) {
		const struct api_object *o = &set->objs[i];
		if (!strcmp(o->kind->kind, "Deployment") && !strcmp(o->ns, t->ns) && !strcmp(o->name, t->name))
			return o;
	}
	return NULL;
}

static int undo(struct ctl *c, const struct target *t, const struct api_set *set, const json_t *cluster)
{
	const struct api_object *d = find_deployment(set, t);
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
	char *key = xasprintf("pin/%s/%s", t->ns, t->name);
	json_t *set_keys = json_pack("{s:{s:O, s:O, s:s, s:O}}", key, "revision", json_object_get(pick, "revision"),
				     "hash", json_object_get(pick, "hash"), "gitHash", git_hash, "template",
				     json_object_get(pick, "template"));
	printf("deployment.apps/%s rolled back to revision %lld (pinned until git changes its template)\n", t->name,
	       (long long)json_integer_value(json_object_get(pick, "revision")));
	int rc = pass_with(c, set_keys);
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
			rc = undo(&c, &t, &set, res.cluster);
		rc_result_release(&res);
	}
	free(commit);
	free(subject);
	api_set_release(&set);
	free(c.state);
	free(t.name);
	return rc;
}
