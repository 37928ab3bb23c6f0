/* status.c: `gitops node status` — every pod with Kubernetes' phase, conditions and
 * container statuses (from the shims' state files), the node's capacity, and the
 * journal records after a sequence number. */
#include "runtime/internal.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define MAX_PODS 110
#define RECORDS_MAX 10000

static json_t *container_status(const char *dir, const json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	char *path = xasprintf("%s/containers/%s/state.json", dir, name);
	json_t *st = json_load_path(path, 1 << 20, NULL);
	free(path);
	if (!st)
		st = json_pack("{s:s, s:{s:{s:s}}, s:b, s:b, s:i}", "name", name, "state", "waiting",
			       "reason", "ContainerCreating", "ready", 0, "started", 0, "restartCount", 0);
	if (!json_object_get(st, "image"))
		json_object_set(st, "image", json_object_get(c, "image"));
	path = xasprintf("%s/containers/%s/spec.json", dir, name);
	json_t *spec = json_load_path(path, 1 << 24, NULL);
	free(path);
	if (spec)
		json_object_set(st, "hash", json_object_get(spec, "hash"));
	json_decref(spec);
	return st;
}

static const char *state_kind(const json_t *st)
{
	const json_t *s = json_object_get(st, "state");
	if (json_object_get(s, "running"))
		return "running";
	if (json_object_get(s, "terminated"))
		return "terminated";
	return "waiting";
}

static json_int_t exit_code(const json_t *st)
{
	return json_integer_value(json_object_get(json_object_get(json_object_get(st, "state"), "terminated"), "exitCode"));
}

static json_t *condition(const char *type, bool ok, const char *reason)
{
	json_t *c = json_pack("{s:s, s:s}", "type", type, "status", ok ? "True" : "False");
	if (!ok && reason)
		json_object_set_new(c, "reason", json_string(reason));
	return c;
}

/* Kubernetes' pod phase from the container states and the restart policy. */
static const char *phase_of(const json_t *inits, const json_t *apps, const char *policy, bool initialized)
{
	size_t i, n = json_array_size(apps), running = 0, term_ok = 0, term_fail = 0;
	json_t *st;
	json_array_foreach(inits, i, st)
		if (!strcmp(state_kind(st), "terminated") && exit_code(st) != 0 && !strcmp(policy, "Never"))
			return "Failed";
	if (!initialized)
		return "Pending";
	json_array_foreach(apps, i, st) {
		const char *k = state_kind(st);
		bool restarting = json_integer_value(json_object_get(st, "restartCount")) > 0 ||
				  json_object_size(json_object_get(st, "lastState")) > 0;
		if (!strcmp(k, "running"))
			running++;
		else if (!strcmp(k, "terminated"))
			(exit_code(st) == 0 ? term_ok++ : term_fail++);
		else if (restarting)
			running++; /* waiting to restart (CrashLoopBackOff) */
	}
	if (running)
		return "Running";
	if (term_ok + term_fail == n && n) {
		if (!strcmp(policy, "Always"))
			return "Running";
		if (term_fail == 0)
			return "Succeeded";
		if (!strcmp(policy, "Never"))
			return "Failed";
		return "Running";
	}
	return "Pending";
}

static json_t *pod_status(const char *dir)
{
	/* pod.json alone: the status needs no secrets (pod_load() would merge them in) */
	char *ppath = xasprintf("%s/pod.json", dir);
	json_t *pod = json_load_path(ppath, RUNTIME_MAX_PLAN, NULL);
	free(ppath);
	if (!pod)
		return NULL;
	const json_t *spec = json_object_get(pod, "spec");
	const char *policy = json_string_value(json_object_get(spec, "restartPolicy"));
	if (!policy)
		policy = "Always";
	json_t *inits = json_array(), *apps = json_array();
	size_t i;
	json_t *c;
	bool initialized = true, ready = true;
	json_array_foreach(json_object_get(spec, "initContainers"), i, c) {
		json_t *st = container_status(dir, c);
		initialized &= !strcmp(state_kind(st), "terminated") && exit_code(st) == 0;
		json_array_append_new(inits, st);
	}
	json_array_foreach(json_object_get(spec, "containers"), i, c) {
		json_t *st = container_status(dir, c);
		ready &= json_is_true(json_object_get(st, "ready"));
		json_array_append_new(apps, st);
	}
	json_t *out = json_pack("{s:O, s:O, s:O, s:O?, s:O?, s:O?, s:O?, s:O?}", "uid", json_object_get(pod, "uid"),
				"planHash", json_object_get(pod, "planHash"),
				"namespace", json_object_get(pod, "namespace"), "name",
				json_object_get(pod, "name"), "podIP", json_object_get(pod, "podIP"),
				"startTime", json_object_get(pod, "startTime"), "labels",
				json_object_get(pod, "labels"), "annotations", json_object_get(pod, "annotations"));
	char *epath = xasprintf("%s/error.json", dir);
	json_t *error = access(epath, F_OK) == 0 ? json_load_path(epath, 1 << 16, NULL) : NULL;
	free(epath);
	const char *phase = error ? "Pending" : phase_of(inits, apps, policy, initialized);
	json_object_set_new(out, "phase", json_string(phase));
	if (error) {
		json_object_set(out, "reason", json_object_get(error, "reason"));
		json_object_set(out, "message", json_object_get(error, "message"));
	}
	bool done = !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
	json_object_set_new(out, "conditions",
			    json_pack("[o, o, o, o]", condition("PodScheduled", true, NULL),
				      condition("Initialized", initialized, "ContainersNotInitialized"),
				      condition("ContainersReady", ready && !done, "ContainersNotReady"),
				      condition("Ready", ready && !done, "ContainersNotReady")));
	json_object_set_new(out, "initContainerStatuses", inits);
	json_object_set_new(out, "containerStatuses", apps);
	json_decref(error);
	json_decref(pod);
	return out;
}

static json_t *capacity(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct sysinfo si;
	sysinfo(&si);
	unsigned long long mem_ki = (unsigned long long)si.totalram * si.mem_unit / 1024;
	/* the kubelet's default eviction threshold: memory.available < 100Mi */
	unsigned long long alloc_ki = mem_ki > 102400 ? mem_ki - 102400 : 0;
	char cpu[32], mem[48], amem[48], pods[16];
	snprintf(cpu, sizeof(cpu), "%ld", cpus);
	snprintf(mem, sizeof(mem), "%lluKi", mem_ki);
	snprintf(amem, sizeof(amem), "%lluKi", alloc_ki);
	snprintf(pods, sizeof(pods), "%d", MAX_PODS);
	return json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}", "capacity", "cpu", cpu, "memory", mem,
			 "pods", pods, "allocatable", "cpu", cpu, "memory", amem, "pods", pods);
}

static int add_record(const struct journal_rec *r, void *arg, struct gerr **err)
{
	json_t *records = arg;
	(void)err;
	if (json_array_size(records) >= RECORDS_MAX)
		return 1;
	json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
	json_array_append_new(records, json_pack("{s:I, s:I, s:s, s:b, s:o}", "seq", (json_int_t)r->seq,
						 "timeNs", (json_int_t)r->time_ns, "type", r->type,
						 "snapshot", r->snapshot, "body", body ? body : json_null()));
	return 0;
}

/* ---- keeping the journal short ---- */

#define JOURNAL_MAX_BYTES (4u << 20)   /* compacted past this */

struct trim {
	uint64_t *seq, *end;   /* each record's seq, and the bytes from it to the last one's end */
	size_t n, alloc;
	uint64_t total;
};

static int trim_note(const struct journal_rec *r, void *arg, struct gerr **err)
{
	struct trim *t = arg;
	(void)err;
	if (t->n == t->alloc) {
		t->alloc = t->alloc ? 2 * t->alloc : 1024;
		t->seq = xrealloc(t->seq, t->alloc * sizeof(*t->seq));
		t->end = xrealloc(t->end, t->alloc * sizeof(*t->end));
	}
	t->total += r->body_len + strlen(r->type) + 32;
	t->seq[t->n] = r->seq;
	t->end[t->n++] = t->total;
	return 0;
}

void rt_journal_trim(struct journal *j)
{
	const char *env = getenv("GITOPS_JOURNAL_MAX_BYTES");
	uint64_t max = env && *env ? strtoull(env, NULL, 10) : JOURNAL_MAX_BYTES;
	struct journal_info in;
	if (!j || max < 1024 || journal_info(j, &in, NULL) < 0 || in.size < max)
		return;
	/* the newest quarter of the limit stays; what came before is one snapshot
	 * record saying how much went (events skip it) */
	struct trim t = { 0 };
	uint64_t covers = 0;
	if (journal_since(j, 0, trim_note, &t, NULL) == 0 && t.n > 1) {
		for (size_t i = 0; i + 1 < t.n && t.total - t.end[i] > max / 4; i++)
			covers = t.seq[i];
		if (in.has_snapshot && covers <= in.first_seq)
			covers = 0;   /* nothing but the snapshot itself to drop */
	}
	if (covers) {
		json_t *body = json_pack("{s:{s:I}}", "compacted", "toSeq", (json_int_t)covers);
		char *text = json_dumps(body, JSON_COMPACT);
		struct gerr *e = NULL;
		if (text && journal_compact(j, covers, text, strlen(text), max, NULL, &e) < 0)
			fprintf(stderr, "gitops: compacting the journal: %s\n", e ? e->msg : "failed");
		gerr_free(e);
		free(text);
		json_decref(body);
	}
	free(t.seq);
	free(t.end);
}

int node_status(const struct node_opts *o, uint64_t since, json_t **ret_status, struct gerr **err)
{
	rt_crypto_init();
	struct node_paths p;
	if (node_paths_init(&p, o, err) < 0)
		return -1;
	network_check_drift(&p); /* someone changed our nftables table: reload it */
	struct gerr *de = NULL;   /* the cluster DNS died: start it again */
	if (dns_ensure(p.state, &de) < 0)
		fprintf(stderr, "gitops: %s\n", de ? de->msg : "cluster DNS: cannot start it");
	gerr_free(de);
	json_t *pods = json_array();
	DIR *d = opendir(p.pods);
	struct dirent *e;
	struct strvec names = STRVEC_INIT;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			strvec_push(&names, e->d_name);
	if (d)
		closedir(d);
	for (size_t i = 0; i < names.n; i++) {
		char *dir = xasprintf("%s/%s", p.pods, names.v[i]);
		json_t *ps = pod_status(dir);
		if (ps)
			json_array_append_new(pods, ps);
		free(dir);
	}
	strvec_clear(&names);
	struct journal *j = NULL;
	json_t *records = json_array();
	uint64_t last = 0;
	int r = journal_open(p.journal, JOURNAL_CREATE, &j, NULL, err);
	if (r == 0) {
		last = journal_last_seq(j);
		if (since != UINT64_MAX && since < last)
			r = journal_since(j, since, add_record, records, err);
		rt_journal_trim(j);
	}
	journal_close(j);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	char *npath = xasprintf("%s/node-name", p.state);
	struct sbuf nname = SBUF_INIT;
	if (sb_read_file(&nname, npath, 256, NULL) == 0 && nname.len)
		snprintf(host, sizeof(host), "%s", nname.buf);
	sb_release(&nname);
	free(npath);
	json_t *st = capacity();
	json_object_set_new(st, "protocol", json_integer(RUNTIME_PROTOCOL));
	json_object_set_new(st, "node", json_string(host));
	json_object_set_new(st, "version", json_string(gitops_version()));
	json_object_set_new(st, "pods", pods);
	/* the cluster state, unless the caller already has this version of it */
	char *hash = cluster_state_hash(p.state);
	if (hash)
		json_object_set_new(st, "clusterHash", json_string(hash));
	if (!hash || !o || !o->cluster_hash || strcmp(o->cluster_hash, hash))
		json_object_set_new(st, "cluster", cluster_state_read(p.state));
	free(hash);
	char *nd = network_digest(&p);   /* the base a networkDelta must name */
	if (nd)
		json_object_set_new(st, "networkDigest", json_string(nd));
	free(nd);
	json_object_set_new(st, "journal", json_pack("{s:I, s:o}", "lastSeq", (json_int_t)last, "records", records));
	node_paths_release(&p);
	if (r < 0) {
		json_decref(st);
		return -1;
	}
	*ret_status = st;
	return 0;
}
