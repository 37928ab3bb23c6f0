/* load.c: read manifests into an api_set — from the git source (--repo, --ref,
 * --path) or from files and directories named on the command line. */
#include "cli/cli.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "store/store.h"

static bool manifest_name(const char *name)
{
	return str_has_suffix(name, ".yaml") || str_has_suffix(name, ".yml") ||
	       str_has_suffix(name, ".json");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect manifest files under path (recursively, sorted) into list. */
static int collect(const char *path, struct strvec *list, bool top, struct gerr **err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return gerr_sys(err, "%s", path);
	if (!S_ISDIR(st.st_mode)) {
		if (top || manifest_name(path))
			strvec_push(list, path);
		return 0;
	}
	DIR *d = opendir(path);
	if (!d)
		return gerr_sys(err, "%s", path);
	struct strvec names = STRVEC_INIT;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			strvec_push(&names, e->d_name);
	closedir(d);
	if (names.n)
		qsort(names.v, names.n, sizeof(char *), cmp_str);
	int r = 0;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		char *child = xasprintf("%s/%s", strcmp(path, "/") ? path : "", names.v[i]);
		r = collect(child, list, false, err);
		free(child);
	}
	strvec_clear(&names);
	return r;
}

static int load_paths(struct cli_args *a, int first, struct api_set *set)
{
	struct strvec files = STRVEC_INIT;
	struct gerr *err = NULL;
	for (int i = first; i < a->argc; i++)
		if (collect(a->argv[i], &files, true, &err) < 0) {
			strvec_clear(&files);
			return cli_fail(err);
		}
	for (const char *const *f = cli_list(a, "filename"); *f; f++)
		if (collect(*f, &files, true, &err) < 0) {
			strvec_clear(&files);
			return cli_fail(err);
		}
	for (size_t i = 0; i < files.n; i++) {
		struct sbuf data = SBUF_INIT;
		const char *name = files.v[i];
		int r = strcmp(name, "-") == 0 ? sb_read_fd(&data, 0, API_MAX_FILE_BYTES, &err)
					       : sb_read_file(&data, name, API_MAX_FILE_BYTES, &err);
		if (r < 0) {
			sb_release(&data);
			strvec_clear(&files);
			return cli_fail(err);
		}
		api_add_file(set, strcmp(name, "-") ? name : "<stdin>", data.buf, data.len);
		sb_release(&data);
	}
	strvec_clear(&files);
	return 0;
}

static int load_git(struct cli_args *a, struct api_set *set, char **ret_desc)
{
	char *state = cli_str(a, "state-dir") ? xstrdup(cli_str(a, "state-dir")) : store_default_state_dir();
	struct store_source_opts o = {
		.repo = cli_str(a, "repo") ? cli_str(a, "repo") : ".",
		.ref = cli_str(a, "ref"),
		.path = cli_str(a, "path"),
		.state_dir = state,
		.no_fetch = cli_flag(a, "no-fetch"),
	};
	struct store_source *src = NULL;
	struct store_file *files = NULL;
	size_t n = 0;
	struct gerr *err = NULL;
	if (store_source_open(&o, &src, &err) < 0 ||
	    store_source_files(src, API_MAX_FILE_BYTES, &files, &n, &err) < 0) {
		store_source_close(src);
		free(state);
		return cli_fail(err);
	}
	for (size_t i = 0; i < n; i++)
		api_add_file(set, files[i].path, files[i].data, files[i].len);
	if (ret_desc)
		*ret_desc = xasprintf(" at %s", store_source_short_commit(src));
	store_files_free(files, n);
	store_source_close(src);
	free(state);
	return 0;
}

int cli_load(struct cli_args *a, int first_pos, struct api_set *set, char **ret_desc)
{
	if (ret_desc)
		*ret_desc = NULL;
	int r;
	if (a->argc > first_pos || *cli_list(a, "filename")) {
		if (cli_str(a, "repo") || cli_str(a, "ref") || cli_str(a, "path"))
			return cli_usage_error(a, "give either files or --repo/--ref/--path, not both");
		r = load_paths(a, first_pos, set);
	} else {
		r = load_git(a, set, ret_desc);
	}
	if (r == 0)
		api_finish(set);
	if (ret_desc && !*ret_desc)
		*ret_desc = xstrdup("");
	return r;
}
