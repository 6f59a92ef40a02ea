/*
 * libFuzzer driver for tq_json_parse: an exact-size copy (no terminating NUL), so ASan sees
 * over-reads; every tree is walked and freed, so LeakSanitizer sees leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/tq_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch every node the way tachyonctl does; returns the depth of the list @j (0: empty). */
static int
walk(const struct tq_json *j)
{
	int deepest = 0;

	if (!j)
		return 0;
	for (; j; j = j->next) {
		int d = 0;

		switch (j->type) {
		case TQ_JSON_NUMBER:
		case TQ_JSON_STRING:
			if (!j->text)
				abort();
			(void)tq_json_u64(j);
			break;
		case TQ_JSON_OBJECT:
			for (const struct tq_json *c = j->child; c; c = c->next)
				if (!c->key || tq_json_get(j, c->key) == NULL)
					abort();
			d = walk(j->child);
			break;
		case TQ_JSON_ARRAY:
			d = walk(j->child);
			break;
		default:
			break;
		}
		if (d > deepest)
			deepest = d;
	}
	return deepest + 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = malloc(size);
	struct tq_json *j;
	size_t err_pos = SIZE_MAX;

	if (!p && size)
		return 0;
	memcpy(p, data, size);
	j = tq_json_parse(p, size, &err_pos);
	if (j) {
		if (walk(j) > TQ_JSON_MAX_DEPTH)
			abort();
		tq_json_free(j);
	} else if (err_pos > size) {
		abort(); /* the error position lies inside the input */
	}
	free(p);
	return 0;
}
