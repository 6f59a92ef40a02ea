/*
 * A small JSON reader for tachyonctl (replies from the telemetry socket). Builds a tree
 * with malloc: it runs in the CLI process, never in tachyond.
 */
#ifndef TQ_JSON_H
#define TQ_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tq_json_type {
	TQ_JSON_NULL,
	TQ_JSON_BOOL,
	TQ_JSON_NUMBER,
	TQ_JSON_STRING,
	TQ_JSON_ARRAY,
	TQ_JSON_OBJECT,
};

struct tq_json {
	enum tq_json_type type;
	char *key;   /* member name when the parent is an object, else NULL */
	char *text;  /* STRING: the unescaped value; NUMBER: its literal */
	bool boolean;
	struct tq_json *child; /* ARRAY/OBJECT: first element */
	struct tq_json *next;  /* next sibling */
};

#define TQ_JSON_MAX_DEPTH 32

/*
 * Parse @len bytes of @text (one value, surrounding whitespace allowed). Returns the tree,
 * or NULL with errno EINVAL (and *@err_pos set to the offending offset when not NULL) or
 * ENOMEM. Free with tq_json_free().
 */
struct tq_json *tq_json_parse(const char *text, size_t len, size_t *err_pos);

void tq_json_free(struct tq_json *j);

/* The member @key of object @obj, or NULL. */
const struct tq_json *tq_json_get(const struct tq_json *obj, const char *key);

/* A NUMBER as uint64 (0 when not a non-negative integer). */
uint64_t tq_json_u64(const struct tq_json *j);

#endif
