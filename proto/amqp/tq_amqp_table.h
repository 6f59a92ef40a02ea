/*
 * AMQP 0-9-1 field tables and arrays with RabbitMQ's type tags: validation, iteration and
 * lookup over spans (no allocation), and a builder that appends into a caller buffer.
 * Pure functions: no EAL, no I/O, any thread.
 */
#ifndef TQ_AMQP_TABLE_H
#define TQ_AMQP_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/amqp/tq_amqp-t.h"

/*
 * Decode the table at @p (a 4-byte size, then that many bytes of entries) within @len
 * bytes: every entry, nested table and array is checked (sizes exact, known tags, depth at
 * most TQ_AMQP_TABLE_DEPTH_MAX counting this table as 1). Returns 4 + size, with @out the
 * contents, or -TQ_AMQP_E_TABLE_SIZE, _TABLE_TAG, _TABLE_DEPTH with *err_off (from @p).
 * A size past @len is TABLE_SIZE: the table sits in a complete frame payload.
 */
ssize_t tq_amqp_table_decode(const uint8_t *p, size_t len, struct tq_amqp_table *out,
			     size_t *err_off);

/*
 * Walk a table's entries (tq_amqp_table_next) or an array's values (tq_amqp_array_next).
 * Each next returns 1 with the entry, 0 at the end, or -TQ_AMQP_E_* when the contents are
 * malformed (never for a table from a decoder, which validated it). Bounds are checked on
 * every step either way. Nested tables and arrays come back as spans: walk them likewise.
 */
void tq_amqp_table_iter(struct tq_amqp_iter *it, struct tq_amqp_table t);
void tq_amqp_array_iter(struct tq_amqp_iter *it, struct tq_amqp_table a);
int tq_amqp_table_next(struct tq_amqp_iter *it, struct tq_amqp_str *key, struct tq_amqp_value *v);
int tq_amqp_array_next(struct tq_amqp_iter *it, struct tq_amqp_value *v);

/* The first entry of @t named @key: 1 and *@v when found, 0 when not, or -TQ_AMQP_E_*. */
int tq_amqp_table_get(struct tq_amqp_table t, const char *key, struct tq_amqp_value *v);

struct tq_xheader;
/*
 * The entries of @t as the exchange registry takes them (routing/tq_exchange.h: arguments,
 * headers): at most @max into @out, whose strings point into @t and whose keys are
 * NUL-terminated copies in @keys (the caller's, as long as @out is used). Returns the number
 * stored, or -E2BIG when @t holds more than @max (the first @max are stored).
 */
int tq_amqp_table_xheaders(struct tq_amqp_table t, struct tq_xheader *out, uint32_t max,
			   char (*keys)[256]);

/*
 * Table builder: appends entries into @buf, with nested tables and arrays opened and
 * closed around their contents. Every append computes its size first and writes nothing
 * when it does not fit; the first error sticks and tq_amqp_tb_finish() reports it. Inside
 * an array @key must be NULL; in a table it names the entry (at most 255 bytes).
 */
struct tq_amqp_tb {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;       /* 0, -ENOSPC or -EINVAL */
	uint8_t depth; /* open nested tables and arrays */
	uint32_t arrays; /* bit d: level d (0: the top table) is an array */
	size_t open[TQ_AMQP_TABLE_DEPTH_MAX]; /* offset of each open level's size field */
};

void tq_amqp_tb_init(struct tq_amqp_tb *b, uint8_t *buf, size_t cap);
void tq_amqp_tb_bool(struct tq_amqp_tb *b, const char *key, bool v);
void tq_amqp_tb_i8(struct tq_amqp_tb *b, const char *key, int8_t v);
void tq_amqp_tb_u8(struct tq_amqp_tb *b, const char *key, uint8_t v);
void tq_amqp_tb_i16(struct tq_amqp_tb *b, const char *key, int16_t v);
void tq_amqp_tb_u16(struct tq_amqp_tb *b, const char *key, uint16_t v);
void tq_amqp_tb_i32(struct tq_amqp_tb *b, const char *key, int32_t v);
void tq_amqp_tb_u32(struct tq_amqp_tb *b, const char *key, uint32_t v);
void tq_amqp_tb_i64(struct tq_amqp_tb *b, const char *key, int64_t v);
void tq_amqp_tb_float(struct tq_amqp_tb *b, const char *key, float v);
void tq_amqp_tb_double(struct tq_amqp_tb *b, const char *key, double v);
void tq_amqp_tb_decimal(struct tq_amqp_tb *b, const char *key, uint8_t scale, uint32_t value);
void tq_amqp_tb_timestamp(struct tq_amqp_tb *b, const char *key, uint64_t v);
void tq_amqp_tb_void(struct tq_amqp_tb *b, const char *key);
void tq_amqp_tb_str(struct tq_amqp_tb *b, const char *key, const void *s, size_t len);
void tq_amqp_tb_cstr(struct tq_amqp_tb *b, const char *key, const char *s);
void tq_amqp_tb_bytes(struct tq_amqp_tb *b, const char *key, const void *s, size_t len);
/* Any value, nested tables and arrays copied as they are (re-encoding a decoded value). */
void tq_amqp_tb_value(struct tq_amqp_tb *b, const char *key, const struct tq_amqp_value *v);
void tq_amqp_tb_table_begin(struct tq_amqp_tb *b, const char *key);
void tq_amqp_tb_table_end(struct tq_amqp_tb *b);
void tq_amqp_tb_array_begin(struct tq_amqp_tb *b, const char *key);
void tq_amqp_tb_array_end(struct tq_amqp_tb *b);

/*
 * Close the build: 0 with @out the table's contents (what a method's table argument
 * takes), -ENOSPC when something did not fit, -EINVAL for a key where none belongs (or
 * none where one does), an over-long key or string, a nesting error or a level left open.
 */
int tq_amqp_tb_finish(struct tq_amqp_tb *b, struct tq_amqp_table *out);

#endif
