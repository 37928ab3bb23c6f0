/* shim_state.c: the shim's view of its container as Kubernetes' ContainerStatus
 * (POD/containers/NAME/state.json, rewritten atomically on every change) and its
 * journal records. */
#include "runtime/shim.h"

#include <stdlib.h>
#include <string.h>

json_int_t shim_jint(const json_t *o, const char *key, json_int_t def)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

const char *shim_jstr(const json_t *o, const char *key, const char *def)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : def;
}

/* One handle for the shim's life (opening scans the whole journal); after a failed
 * append it is reopened once, in case the file was replaced under it. */
void shim_journal(struct shim *s, const char *type, json_t *body)
{
	json_object_set_new(body, "uid", json_string(s->uid));
	json_object_set_new(body, "container", json_string(s->name));
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	struct gerr *e = NULL;
	int r = -1;
	for (int attempt = 0; attempt < 2 && r < 0 && text; attempt++) {
		gerr_clear(&e);
		if (!s->journal && journal_open(s->paths.journal, JOURNAL_CREATE, &s->journal, NULL, &e) < 0)
			continue;
		r = journal_append(s->journal, type, text, strlen(text), NULL, &e);
		if (r < 0) {
			journal_close(s->journal);
			s->journal = NULL;
		}
	}
	if (r < 0)
		shim_logf(s, "journal %s: %s", type, e ? e->msg : "cannot encode the record");
	gerr_free(e);
	free(text);
}

void shim_write_state(struct shim *s)
{
	bool alive = s->phase == PH_RUNNING && s->pid > 0 && !s->exited;
	json_t *st = json_pack("{s:s, s:O, s:O, s:b, s:b, s:i, s:s, s:i, s:b}", "name", s->name,
			       "state", s->cur, "lastState", s->last, "ready", s->ready, "started",
			       s->started, "restartCount", s->restarts, "image", s->image, "pid",
			       alive ? (int)s->pid : 0, "final", s->final);
	if (s->image_id)
		json_object_set_new(st, "imageID", json_string(s->image_id));
	if (s->instances)
		json_object_set_new(st, "containerID", json_sprintf("runc://%s", s->cid));
	const char *hash = shim_jstr(s->spec, "hash", NULL);
	if (hash)
		json_object_set_new(st, "hash", json_string(hash));
	struct gerr *e = NULL;
	if (json_save_atomic(s->state_path, st, 0644, &e) < 0) {
		shim_logf(s, "%s", e ? e->msg : "writing the state file failed");
		gerr_free(e);
	}
	json_decref(st);
}

/* Replace the current state; write only when it changed. */
static void set_cur(struct shim *s, json_t *cur)
{
	if (json_equal(s->cur, cur)) {
		json_decref(cur);
		return;
	}
	json_decref(s->cur);
	s->cur = cur;
	shim_write_state(s);
}

void shim_set_waiting(struct shim *s, const char *reason, const char *msg)
{
	json_t *w = json_pack("{s:s}", "reason", reason);
	if (msg && *msg)
		json_object_set_new(w, "message", json_string(msg));
	set_cur(s, json_pack("{s:o}", "waiting", w));
}

void shim_set_running(struct shim *s)
{
	set_cur(s, json_pack("{s:{s:s}}", "running", "startedAt", s->started_at ? s->started_at : ""));
}

void shim_set_terminated(struct shim *s, int code, const char *reason, const char *msg)
{
	char *now = rfc3339_now();
	json_t *t = json_pack("{s:i, s:s, s:s, s:s}", "exitCode", code, "reason", reason, "startedAt",
			      s->started_at ? s->started_at : now, "finishedAt", now);
	if (msg && *msg)
		json_object_set_new(t, "message", json_string(msg));
	if (s->instances)
		json_object_set_new(t, "containerID", json_sprintf("runc://%s", s->cid));
	free(now);
	set_cur(s, json_pack("{s:o}", "terminated", t));
}

/* A shim that replaces an earlier one (spec change, or adoption after a crash) goes on
 * counting restarts, and shows what the last instance ended with. */
void shim_load_previous(struct shim *s)
{
	json_t *prev = json_load_path(s->state_path, 1u << 20, NULL);
	if (!prev) {
		shim_write_state(s);
		return;
	}
	s->restarts = (int)shim_jint(prev, "restartCount", 0);
	if (json_object_get(prev, "containerID"))
		s->instances = 1;
	json_t *term = json_object_get(json_object_get(prev, "state"), "terminated");
	json_t *last = term ? json_pack("{s:O}", "terminated", term)
			    : json_incref(json_object_get(prev, "lastState"));
	if (json_is_object(last)) {
		json_decref(s->last);
		s->last = last;
	} else {
		json_decref(last);
	}
	json_decref(prev);
	shim_write_state(s);
}
