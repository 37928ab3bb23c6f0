/* schema.c: lookups over the generated schema tables (api/schema_gen.c). */
#include "api/internal.h"

#include <string.h>

int schema_type_index(const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < schema_ntypes; i++)
		if (strcmp(schema_types[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Binary search: the generator sorts each type's fields by strcmp(name). */
const struct schema_field *schema_field(const struct schema_type *t, const char *name)
{
	if (!t || !name)
		return NULL;
	size_t lo = 0, hi = t->nfields;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, t->fields[mid].name);
		if (c == 0)
			return &t->fields[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
