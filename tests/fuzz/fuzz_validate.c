/* fuzz_validate.c: libFuzzer target for the YAML decoder, validator, defaults and
 * both encoders — whatever the input, no crash, no leak, bounded memory. */
#include <stdlib.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_set set;
	api_set_init(&set);
	api_add_file(&set, "fuzz.yaml", (const char *)data, size);
	api_finish(&set);
	struct sbuf out = SBUF_INIT;
	for (size_t i = 0; i < set.nobjs; i++) {
		if (set.objs[i].invalid)
			continue;
		sb_reset(&out);
		api_emit_yaml(set.objs[i].root, &out);
		json_t *j = api_to_json(set.objs[i].root);
		json_decref(j);
	}
	for (size_t i = 0; i < set.ndiags; i++) {
		sb_reset(&out);
		api_diag_format(&set.diags[i], &out);
	}
	sb_release(&out);
	api_set_release(&set);
	return 0;
}
