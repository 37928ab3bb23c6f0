/* util.c: small helpers of the runtime — canonical JSON hashes, time stamps, JSON
 * files, node paths and the journal shortcut. */
#include "runtime/internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

char *rfc3339_now(void)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[32];
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(buf);
}

json_t *json_load_path(const char *path, size_t max, struct gerr **err)
{
	struct sbuf sb = SBUF_INIT;
	if (sb_read_file(&sb, path, max, err) < 0) {
		sb_release(&sb);
		return NULL;
	}
	json_error_t je;
	json_t *v = json_loadb(sb.buf, sb.len, 0, &je);
	sb_release(&sb);
	if (!v)
		gerr_set(err, GERR_FAIL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	return v;
}

int json_save_atomic(const char *path, const json_t *v, mode_t mode, struct gerr **err)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!text)
		return gerr_set(err, GERR_FAIL, "%s: cannot encode JSON", path);
	size_t len = strlen(text);
	text = xrealloc(text, len + 2);
	text[len++] = '\n';
	int r = write_file_atomic(path, text, len, mode, err);
	free(text);
	return r;
}

int node_paths_init(struct node_paths *p, const struct node_opts *o, struct gerr **err)
{
	memset(p, 0, sizeof(*p));
	const char *state = o && o->state_dir ? o->state_dir : "/var/lib/gitops";
	const char *run = o && o->run_dir ? o->run_dir : "/run/gitops";
	p->state = xstrdup(state);
	p->run = xstrdup(run);
	p->journal = xasprintf("%s/journal", state);
	p->pods = xasprintf("%s/pods", state);
	p->images = xasprintf("%s/images", state);
	p->cni_conf = xasprintf("%s/cni/net.conflist", state);
	p->cni_data = xasprintf("%s/cni/networks", state);
	p->runc_root = xasprintf("%s/runc", run);
	const char *rt = o && o->runtime ? o->runtime : getenv("GITOPS_RUNTIME");
	p->runtime = rt && *rt ? rt : "runc";
	p->cni_bin = o && o->cni_bin ? o->cni_bin : "/usr/lib/cni:/opt/cni/bin";
	p->self = o && o->self ? o->self : "/proc/self/exe";
	if (mkdir_p(p->pods, 0700, err) < 0 || mkdir_p(p->images, 0700, err) < 0 ||
	    mkdir_p(p->cni_data, 0700, err) < 0 || mkdir_p(p->runc_root, 0700, err) < 0) {
		node_paths_release(p);
		return -1;
	}
	return 0;
}

void node_paths_release(struct node_paths *p)
{
	free(p->state);
	free(p->run);
	free(p->journal);
	free(p->pods);
	free(p->images);
	free(p->cni_conf);
	free(p->cni_data);
	free(p->runc_root);
	memset(p, 0, sizeof(*p));
}

int rt_journal(const struct node_paths *p, const char *type, json_t *body, struct gerr **err)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	if (!text)
		return gerr_set(err, GERR_FAIL, "journal %s: cannot encode body", type);
	struct journal *j = NULL;
	int r = journal_open(p->journal, JOURNAL_CREATE, &j, NULL, err);
	if (r == 0)
		r = journal_append(j, type, text, strlen(text), NULL, err);
	journal_close(j);
	free(text);
	return r;
}

void rt_crypto_init(void)
{
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
}

char *rt_sha256_hex(const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	char *hex = xmalloc(2 * n + 1);
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * n] = '\0';
	return hex;
}

/* ---- files kept aside of a whole one (network-delta.json, cluster-delta.json) ---- */

json_t *rt_aside_read(const char *state, const char *whole, const char *aside, const char *key,
		      struct api_netsum *ret_sum)
{
	char *path = xasprintf("%s/%s", state, whole), *apath = xasprintf("%s/%s", state, aside);
	char *id = rules_file_id(path);
	json_t *a = id && access(apath, F_OK) == 0 ? json_load_path(apath, RUNTIME_MAX_PLAN, NULL) : NULL;
	struct api_netsum sum;
	const char *base = json_string_value(json_object_get(a, "base"));
	if (!json_is_object(json_object_get(a, key)) || !base || strcmp(base, id) ||
	    api_netsum_parse(json_string_value(json_object_get(a, "sum")), &sum) < 0) {
		json_decref(a);
		a = NULL;
	} else if (ret_sum) {
		*ret_sum = sum;
	}
	free(id);
	free(apath);
	free(path);
	return a;
}

int rt_aside_write(const char *state, const char *whole, const char *aside, const char *key, json_t *members,
		   const struct api_netsum *sum, struct gerr **err)
{
	char *path = xasprintf("%s/%s", state, whole), *apath = xasprintf("%s/%s", state, aside);
	char *id = rules_file_id(path), *text = api_netsum_format(sum);
	json_t *a = json_pack("{s:s, s:s, s:O}", "base", id ?: "", "sum", text, key, members);
	/* renamed into place, not synced: after a crash the old one or the new one is
	 * there, each with the sum of what it says (or an empty file: no digest, and the
	 * whole is sent); losing the last delta costs the controller a whole plan */
	char *out = json_dumps(a, JSON_COMPACT);
	int r = out ? 0 : gerr_set(err, GERR_FAIL, "%s: cannot encode JSON", aside);
	if (out)
		rules_save_nosync(apath, out, strlen(out));
	free(out);
	json_decref(a);
	free(text);
	free(id);
	free(apath);
	free(path);
	return r;
}
