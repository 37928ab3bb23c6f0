/* exec.c: `gitops node exec` — run a command in a running container with `runc exec`,
 * stdin, stdout and stderr inherited, and the command's exit status returned. */
#include "runtime/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_JSON_MAX (1u << 20)

/* The container: the one asked for (a container or an init container), else the
 * first, saying so when there are several (as kubectl does). */
static int pick(const json_t *pod, const char *want, const char **ret, struct gerr **err)
{
	static const char *const keys[] = { "containers", "initContainers" };
	const json_t *spec = json_object_get(pod, "spec");
	const char *pname = json_string_value(json_object_get(pod, "name"));
	size_t i;
	const json_t *c;
	for (size_t k = 0; want && k < ARRAY_SIZE(keys); k++)
		json_array_foreach(json_object_get(spec, keys[k]), i, c)
			if (!strcmp(json_string_value(json_object_get(c, "name")) ?: "", want)) {
				*ret = want;
				return 0;
			}
	if (want)
		return gerr_set(err, GERR_FAIL, "container %s is not valid for pod %s", want, pname ? pname : "");
	const json_t *cs = json_object_get(spec, "containers");
	*ret = json_string_value(json_object_get(json_array_get(cs, 0), "name"));
	if (!*ret)
		return gerr_set(err, GERR_FAIL, "pod %s has no containers", pname ? pname : "");
	if (json_array_size(cs) > 1) {
		fprintf(stderr, "Defaulted container \"%s\" out of: ", *ret);
		json_array_foreach(cs, i, c)
			fprintf(stderr, "%s%s", i ? ", " : "", json_string_value(json_object_get(c, "name")) ?: "");
		fputc('\n', stderr);
	}
	return 0;
}

static int running(const struct node_paths *p, const char *uid, const char *c, const char *pname,
		   struct gerr **err)
{
	char *path = xasprintf("%s/%s/containers/%s/state.json", p->pods, uid, c);
	json_t *st = json_load_path(path, STATE_JSON_MAX, NULL);
	free(path);
	const json_t *state = json_object_get(st, "state");
	int r = 0;
	if (!json_object_get(state, "running")) {
		const char *why = json_string_value(json_object_get(json_object_get(state, "waiting"), "reason"));
		r = gerr_set(err, GERR_FAIL, "container %s in pod %s is not running%s%s", c, pname, why ? ": " : "",
			     why ? why : "");
	}
	json_decref(st);
	return r;
}

int node_exec(const struct node_opts *o, const struct exec_opts *e, int *ret_status, struct gerr **err)
{
	struct node_paths p;
	if (node_paths_init(&p, o, err) < 0)
		return -1;
	char *dir = NULL;
	json_t *pod = NULL;
	const char *c = NULL;
	int r = pod_find(&p, e->pod, &dir, &pod, err);
	const char *uid = dir ? strrchr(dir, '/') + 1 : NULL; /* POD = STATE/pods/<uid> */
	if (r == 0)
		r = pick(pod, e->container, &c, err);
	if (r == 0)
		r = running(&p, uid, c, json_string_value(json_object_get(pod, "name")) ?: e->pod, err);
	if (r == 0) {
		struct strvec argv = STRVEC_INIT;
		strvec_pushv(&argv, (const char *const[]){ p.runtime, "--root", p.runc_root, "exec", NULL });
		if (e->tty)
			strvec_push(&argv, "-t");
		strvec_pushf(&argv, "%s-%s", uid, c);
		strvec_pushv(&argv, e->argv);
		struct child ch = { .argv = strvec_argv(&argv), .inherit_in = true };
		*ret_status = child_run(&ch, err);
		r = *ret_status < 0 ? -1 : 0;
		strvec_clear(&argv);
	}
	free(dir);
	json_decref(pod);
	node_paths_release(&p);
	return r;
}
