/* yaml_events.c: the floor for any libyaml-based decoder — pull every event of
 * every file named on the command line, and nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <yaml.h>

#include "lib/lib.h"

int main(int argc, char **argv)
{
	size_t events = 0;
	for (int i = 1; i < argc; i++) {
		struct sbuf data = SBUF_INIT;
		if (sb_read_file(&data, argv[i], 0, NULL) < 0)
			return 2;
		yaml_parser_t p;
		yaml_parser_initialize(&p);
		yaml_parser_set_input_string(&p, (const unsigned char *)data.buf, data.len);
		for (;;) {
			yaml_event_t e;
			if (!yaml_parser_parse(&p, &e))
				return 1;
			int end = e.type == YAML_STREAM_END_EVENT;
			yaml_event_delete(&e);
			events++;
			if (end)
				break;
		}
		yaml_parser_delete(&p);
		sb_release(&data);
	}
	printf("%zu events\n", events);
	return 0;
}
