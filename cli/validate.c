/* validate.c: `gitops validate` — every problem in the manifests, one per line. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"

static void print_json(const struct api_set *set)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < set->ndiags; i++) {
		const struct api_diag *d = &set->diags[i];
		json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:s}", "severity",
						     d->sev == API_ERROR ? "error" : "warning", "file",
						     d->file, "line", (int)d->line, "column", (int)d->col,
						     "object", d->object, "field", d->path, "message", d->msg));
	}
	json_t *doc = json_pack("{s:o, s:i, s:i, s:i, s:i}", "diagnostics", arr, "errors",
				(int)set->nerrors, "warnings", (int)set->nwarnings, "objects",
				(int)set->nobjs, "files", (int)set->nfiles);
	char *s = json_dumps(doc, JSON_INDENT(2));
	puts(s);
	free(s);
	json_decref(doc);
}

int cmd_validate(struct cli_args *a)
{
	const char *fmt = cli_str(a, "output");
	if (fmt && strcmp(fmt, "json") && strcmp(fmt, "text"))
		return cli_usage_error(a, "unknown output format \"%s\" (json or text)", fmt);
	struct api_set set;
	api_set_init(&set);
	char *desc = NULL;
	int r = cli_load(a, 0, &set, &desc);
	if (r) {
		api_set_release(&set);
		free(desc);
		return r;
	}
	if (fmt && !strcmp(fmt, "json")) {
		print_json(&set);
	} else {
		struct sbuf line = SBUF_INIT;
		bool quiet = cli_flag(a, "quiet");
		for (size_t i = 0; i < set.ndiags; i++) {
			if (quiet && set.diags[i].sev == API_WARNING)
				continue;
			sb_reset(&line);
			api_diag_format(&set.diags[i], &line);
			puts(line.buf);
		}
		sb_release(&line);
		if (!quiet || set.nerrors) {
			printf("%zu error%s", set.nerrors, set.nerrors == 1 ? "" : "s");
			if (set.nwarnings)
				printf(", %zu warning%s", set.nwarnings, set.nwarnings == 1 ? "" : "s");
			printf(" in %zu object%s from %zu file%s%s\n", set.nobjs, set.nobjs == 1 ? "" : "s",
			       set.nfiles, set.nfiles == 1 ? "" : "s", desc);
		}
	}
	r = set.nerrors ? 1 : 0;
	api_set_release(&set);
	free(desc);
	return r;
}
