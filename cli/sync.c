/* sync.c: `gitops sync`, `gitops diff`, `gitops reconcile` and `gitops cron` —
 * one pass (or passes until rollouts finish) of the controller over SSH. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "reconcile/reconcile.h"
#include "store/store.h"

static int parse_duration(struct cli_args *a, const char *opt, const char *dflt, int64_t *ret_ms)
{
	const char *v = cli_str(a, opt) ? cli_str(a, opt) : dflt;
	struct gerr *e = NULL;
	if (api_duration_parse(v, ret_ms, &e) < 0) {
		int r = cli_usage_error(a, "--%s: %s", opt, e ? e->msg : "not a duration");
		gerr_free(e);
		return r;
	}
	return 0;
}

int ctl_setup(struct cli_args *a, struct ctl *r)
{
	memset(r, 0, sizeof(*r));
	r->a = a;
	r->state = cli_str(a, "state-dir") ? xstrdup(cli_str(a, "state-dir")) : store_default_state_dir();
	int64_t par = 32, tmo = 30000;
	if (cli_str(a, "parallel") && parse_i64(cli_str(a, "parallel"), 1, 1000, &par) < 0)
		return cli_usage_error(a, "--parallel takes a number from 1 to 1000");
	if (parse_duration(a, "ssh-timeout", "30s", &tmo))
		return 2;
	const char *prune = cli_str(a, "prune");
	if (prune && strcmp(prune, "true") && strcmp(prune, "false"))
		return cli_usage_error(a, "--prune takes true or false");
	r->o = (struct rc_opts){
		.state_dir = r->state, .ssh_config = cli_str(a, "ssh-config"), .parallel = (int)par,
		.timeout_ms = (int)tmo, .accept_new = cli_flag(a, "accept-new-host-keys"),
		.dry_run = cli_flag(a, "dry-run"), .prune = !prune || !strcmp(prune, "true"),
	};
	r->json_log = cli_str(a, "log-format") && !strcmp(cli_str(a, "log-format"), "json");
	if (mkdir_p(r->state, 0700, NULL) < 0) {
		fprintf(stderr, "gitops: cannot create the state directory %s\n", r->state);
		return 2;
	}
	return 0;
}

/* Read, validate and default the desired state. Nothing is applied when anything
 * is invalid. */
int ctl_load(struct ctl *r, struct api_set *set, char **ret_commit, char **ret_subject)
{
	char *state = r->state;
	struct store_source_opts so = {
		.repo = cli_str(r->a, "repo") ? cli_str(r->a, "repo") : ".", .ref = cli_str(r->a, "ref"),
		.path = cli_str(r->a, "path"), .state_dir = state, .no_fetch = cli_flag(r->a, "no-fetch"),
	};
	struct store_source *src = NULL;
	struct store_file *files = NULL;
	size_t n = 0;
	struct gerr *err = NULL;
	if (store_source_open(&so, &src, &err) < 0 || store_source_files(src, API_MAX_FILE_BYTES, &files, &n, &err) < 0) {
		store_source_close(src);
		return cli_fail(err);
	}
	for (size_t i = 0; i < n; i++)
		api_add_file(set, files[i].path, files[i].data, files[i].len);
	api_finish(set);
	*ret_commit = xstrdup(store_source_commit(src));
	*ret_subject = xstrdup(store_source_subject(src) ? store_source_subject(src) : "");
	store_files_free(files, n);
	store_source_close(src);
	if (set->nerrors) {
		struct sbuf line = SBUF_INIT;
		for (size_t i = 0; i < set->ndiags; i++) {
			if (set->diags[i].sev != API_ERROR)
				continue;
			sb_reset(&line);
			api_diag_format(&set->diags[i], &line);
			fprintf(stderr, "%s\n", line.buf);
		}
		sb_release(&line);
		fprintf(stderr, "gitops: %zu error%s in the manifests at %.7s: nothing was applied\n", set->nerrors,
			set->nerrors == 1 ? "" : "s", *ret_commit);
		return 1;
	}
	size_t workloads = 0;
	for (size_t i = 0; i < set->nobjs; i++)
		workloads += strcmp(set->objs[i].kind->kind, "Node") && strcmp(set->objs[i].kind->kind, "Namespace");
	if (workloads == 0 && !cli_flag(r->a, "allow-empty")) {
		fprintf(stderr, "gitops: the tree at %.7s has no manifests besides nodes: refusing to remove "
				"everything (use --allow-empty to mean it)\n", *ret_commit);
		return 1;
	}
	return 0;
}

/* ---- printing ---- */

static void print_nodes(const struct ctl *r, const struct rc_result *res)
{
	size_t i;
	json_t *n;
	json_array_foreach(res->nodes, i, n) {
		const char *name = json_string_value(json_object_get(n, "name"));
		if (!json_is_true(json_object_get(n, "ok"))) {
			printf("%-8s ✗ unreachable: %s\n", name, json_string_value(json_object_get(n, "error")));
			continue;
		}
		int st = (int)json_integer_value(json_object_get(n, "started"));
		int sp = (int)json_integer_value(json_object_get(n, "stopped"));
		int rs = (int)json_integer_value(json_object_get(n, "restarted"));
		if (r->quiet && !st && !sp && !rs)
			continue;
		printf("%-8s ✓ %lld pods", name, (long long)json_integer_value(json_object_get(n, "pods")));
		if (st || sp || rs) {
			const char *sep = " (";
			if (st)
				printf("%s%d started", sep, st), sep = ", ";
			if (sp)
				printf("%s%d stopped", sep, sp), sep = ", ";
			if (rs)
				printf("%s%d updated", sep, rs);
			putchar(')');
		}
		putchar('\n');
	}
}

static bool print_rollouts(const struct rc_result *res, bool verbose, int64_t now)
{
	bool failed = false;
	size_t i;
	json_t *d;
	json_array_foreach(res->rollouts, i, d) {
		bool complete = json_is_true(json_object_get(d, "complete"));
		bool exceeded = json_is_true(json_object_get(d, "deadlineExceeded"));
		failed |= exceeded;
		if (complete && !verbose)
			continue;
		printf("deployment.apps/%s  ", json_string_value(json_object_get(d, "name")));
		long long rev = (long long)json_integer_value(json_object_get(d, "revision"));
		if (exceeded)
			printf("revision %lld failed: ProgressDeadlineExceeded", rev);
		else
			printf("%s revision %lld", complete ? "rolled out" : "rolling out", rev);
		printf(" (%lld/%lld updated, %lld ready)", (long long)json_integer_value(json_object_get(d, "updated")),
		       (long long)json_integer_value(json_object_get(d, "desired")),
		       (long long)json_integer_value(json_object_get(d, "ready")));
		if (complete)
			printf(" in %llds", (long long)(now - json_integer_value(json_object_get(d, "since"))));
		putchar('\n');
	}
	json_array_foreach(res->pending, i, d)
		printf("pod %s/%s: Pending: %s\n", json_string_value(json_object_get(d, "namespace")),
		       json_string_value(json_object_get(d, "name")), json_string_value(json_object_get(d, "pending")));
	return failed;
}

static void log_json(const struct rc_result *res, const char *commit, int rc)
{
	json_t *line = json_pack("{s:s, s:s, s:i, s:b, s:O, s:O, s:O}", "event", "reconcile", "commit", commit,
				 "exit", rc, "changed", res->changed, "nodes", res->nodes, "rollouts",
				 res->rollouts, "pending", res->pending);
	char *s = json_dumps(line, JSON_COMPACT);
	puts(s);
	free(s);
	json_decref(line);
}

static bool all_complete(const struct rc_result *res)
{
	size_t i;
	json_t *d;
	json_array_foreach(res->rollouts, i, d)
		if (!json_is_true(json_object_get(d, "complete")))
			return false;
	return json_array_size(res->pending) == 0;
}

static bool nodes_ok(const struct rc_result *res)
{
	size_t i;
	json_t *n;
	json_array_foreach(res->nodes, i, n)
		if (!json_is_true(json_object_get(n, "ok")))
			return false;
	return true;
}

/* One pass, or passes until every rollout completes/fails (--wait). */
int ctl_passes(struct ctl *r, bool wait, int64_t timeout_ms)
{
	struct api_set set;
	api_set_init(&set);
	char *commit = NULL, *subject = NULL;
	int rc = ctl_load(r, &set, &commit, &subject);
	int64_t start = (int64_t)time(NULL);
	struct rc_result res = { 0 };
	/* a node that cannot be reached fails the run (exit 1) but does not stop the
	 * passes: the other nodes' rollouts go on */
	for (bool go = rc == 0; go;) {
		struct gerr *err = NULL;
		rc_result_release(&res);
		if (rc_pass(&r->o, &set, commit, subject, &res, &err) < 0) {
			rc = cli_fail(err);
			break;
		}
		rc = 0;
		bool done = !wait || all_complete(&res) || r->o.dry_run;
		bool failed = false;
		if (!r->json_log) {
			if (!r->quiet || res.changed || !nodes_ok(&res))
				print_nodes(r, &res);
			failed = print_rollouts(&res, done && (wait || !r->quiet || res.changed), (int64_t)time(NULL));
		} else {
			json_t *d;
			size_t i;
			json_array_foreach(res.rollouts, i, d)
				failed |= json_is_true(json_object_get(d, "deadlineExceeded"));
		}
		if (!nodes_ok(&res) || failed)
			rc = 1;
		if (done || failed || ((int64_t)time(NULL) - start) * 1000 > timeout_ms) {
			if (wait && !done && !failed) {
				fprintf(stderr, "gitops: timed out after %llds waiting for rollouts\n",
					(long long)(timeout_ms / 1000));
				rc = 1;
			}
			break;
		}
		sleep(1);
		r->quiet = true; /* later passes print only what changed */
	}
	if (r->json_log && commit && (res.changed || rc))
		log_json(&res, commit, rc);
	rc_result_release(&res);
	free(commit);
	free(subject);
	api_set_release(&set);
	return rc;
}

int cmd_sync(struct cli_args *a)
{
	struct ctl r;
	int rc = ctl_setup(a, &r);
	int64_t timeout = 0;
	if (rc == 0 && parse_duration(a, "timeout", "10m", &timeout))
		rc = 2;
	if (rc == 0)
		rc = ctl_passes(&r, cli_flag(a, "wait"), timeout);
	free(r.state);
	return rc;
}

int cmd_diff(struct cli_args *a)
{
	struct ctl r;
	int rc = ctl_setup(a, &r);
	if (rc) {
		free(r.state);
		return rc;
	}
	r.o.dry_run = true;
	struct api_set set;
	api_set_init(&set);
	char *commit = NULL, *subject = NULL;
	rc = ctl_load(&r, &set, &commit, &subject);
	struct rc_result res = { 0 };
	struct gerr *err = NULL;
	if (rc == 0 && rc_pass(&r.o, &set, commit, subject, &res, &err) < 0)
		rc = cli_fail(err);
	if (rc == 0) {
		size_t i, k;
		json_t *n, *c;
		json_array_foreach(res.nodes, i, n) {
			const char *name = json_string_value(json_object_get(n, "name"));
			if (!json_is_true(json_object_get(n, "ok"))) {
				printf("%s: unreachable: %s\n", name, json_string_value(json_object_get(n, "error")));
				rc = 2;
				continue;
			}
			json_array_foreach(json_object_get(n, "changes"), k, c)
				printf("%s: %s\n", name, json_string_value(c));
		}
		json_array_foreach(res.pending, i, n)
			printf("pending %s/%s: %s\n", json_string_value(json_object_get(n, "namespace")),
			       json_string_value(json_object_get(n, "name")), json_string_value(json_object_get(n, "pending")));
		if (rc == 0)
			rc = res.changed ? 1 : 0;
	} else if (rc == 1) {
		rc = 2; /* invalid manifests: diff could not be computed */
	}
	rc_result_release(&res);
	free(commit);
	free(subject);
	api_set_release(&set);
	free(r.state);
	return rc;
}

/* ---- reconcile: sync for cron ---- */

static int take_lock(struct ctl *r, bool wait, int *ret_fd)
{
	char *path = xasprintf("%s/reconcile.lock", r->state);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0) {
		fprintf(stderr, "gitops: cannot open the lock in %s: %s\n", r->state, strerror(errno));
		return 2;
	}
	if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		char who[128] = "";
		ssize_t n = pread(fd, who, sizeof(who) - 1, 0);
		who[n > 0 ? n : 0] = '\0';
		who[strcspn(who, "\n")] = '\0';
		printf("gitops: another reconcile holds the lock (%s); not running\n", *who ? who : "unknown");
		close(fd);
		return 3;
	}
	char me[128];
	int len = snprintf(me, sizeof(me), "pid %ld since %lld\n", (long)getpid(), (long long)time(NULL));
	if (ftruncate(fd, 0) == 0 && pwrite(fd, me, (size_t)len, 0) < 0)
		fprintf(stderr, "gitops: cannot write the lock: %s\n", strerror(errno));
	*ret_fd = fd;
	return 0;
}

int cmd_reconcile(struct cli_args *a)
{
	struct ctl r;
	int rc = ctl_setup(a, &r);
	int64_t interval = 60000;
	if (rc == 0 && parse_duration(a, "interval", "1m", &interval))
		rc = 2;
	int fd = -1;
	if (rc == 0) {
		rc = take_lock(&r, cli_flag(a, "wait-lock"), &fd);
		if (rc == 3) {
			free(r.state);
			return 0; /* someone else is reconciling: that is success for cron */
		}
	}
	while (rc == 0 || cli_flag(a, "watch")) {
		r.quiet = true;
		rc = ctl_passes(&r, false, 0);
		if (!cli_flag(a, "watch"))
			break;
		fflush(stdout);
		sleep((unsigned)(interval / 1000 > 0 ? interval / 1000 : 1));
	}
	if (fd >= 0)
		close(fd);
	free(r.state);
	return rc;
}

int cmd_cron(struct cli_args *a)
{
	const char *repo = cli_str(a, "repo") ? cli_str(a, "repo") : "URL";
	const char *every = cli_str(a, "every") ? cli_str(a, "every") : "1";
	int64_t m;
	if (parse_i64(every, 1, 59, &m) < 0)
		return cli_usage_error(a, "--every takes minutes from 1 to 59");
	printf("# crontab line (crontab -e as the user that holds the SSH keys):\n");
	printf("*/%lld * * * * gitops reconcile --repo %s --log-format json >>/var/log/gitops.log 2>&1\n\n",
	       (long long)m, repo);
	printf("# or a systemd timer: /etc/systemd/system/gitops-reconcile.service\n"
	       "[Unit]\nDescription=gitops reconcile\nWants=network-online.target\nAfter=network-online.target\n\n"
	       "[Service]\nType=oneshot\nExecStart=/usr/local/bin/gitops reconcile --repo %s --log-format json\n\n"
	       "# /etc/systemd/system/gitops-reconcile.timer\n"
	       "[Unit]\nDescription=gitops reconcile every %lld min\n\n"
	       "[Timer]\nOnBootSec=1min\nOnUnitActiveSec=%lldmin\n\n[Install]\nWantedBy=timers.target\n\n"
	       "# then: systemctl daemon-reload && systemctl enable --now gitops-reconcile.timer\n",
	       repo, (long long)m, (long long)m);
	return 0;
}
