/*
 * Types shared by the AMQP 0-9-1 codec's modules (tq_amqp_codec.h: frames, methods, content
 * headers; tq_amqp_table.h: field tables): return conventions and error numbers.
 */
#ifndef TQ_AMQP_T_H
#define TQ_AMQP_T_H

#include "proto/amqp/tq_amqp_spec.h"

/*
 * Decoders return bytes consumed (> 0), TQ_AMQP_NEED_MORE (only where the input is a
 * stream: the protocol header and frames; nothing is consumed), or -TQ_AMQP_E_* with the
 * offset of the offending byte in *err_off. Encoders return bytes written or -errno.
 */
#define TQ_AMQP_NEED_MORE 0

enum tq_amqp_err {
	TQ_AMQP_E_NONE,
#define TQ_AMQP_ERR(name, reply, text) TQ_AMQP_E_##name,
#include "proto/amqp/tq_amqp_errors.def"
#undef TQ_AMQP_ERR
	TQ_AMQP_E_COUNT,
};

/* Tables and arrays nested deeper than this are refused (a table in a table is depth 2). */
#define TQ_AMQP_TABLE_DEPTH_MAX 16

/* field value tags, RabbitMQ's (not the 0-9-1 spec's, which clashes for s, u, i, l) */
#define TQ_AMQP_V_BOOL 't'
#define TQ_AMQP_V_I8 'b'
#define TQ_AMQP_V_U8 'B'
#define TQ_AMQP_V_I16 's'
#define TQ_AMQP_V_U16 'u'
#define TQ_AMQP_V_I32 'I'
#define TQ_AMQP_V_U32 'i'
#define TQ_AMQP_V_I64 'l'
#define TQ_AMQP_V_FLOAT 'f'
#define TQ_AMQP_V_DOUBLE 'd'
#define TQ_AMQP_V_DECIMAL 'D'
#define TQ_AMQP_V_STR 'S'
#define TQ_AMQP_V_ARRAY 'A'
#define TQ_AMQP_V_TIMESTAMP 'T'
#define TQ_AMQP_V_TABLE 'F'
#define TQ_AMQP_V_VOID 'V'
#define TQ_AMQP_V_BYTES 'x'

/* One field value; strings, tables and arrays are spans into the input. */
struct tq_amqp_value {
	uint8_t tag; /* TQ_AMQP_V_* */
	union {
		bool b;                   /* t */
		int64_t i;                /* b s I l, sign-extended */
		uint64_t u;               /* B u i T */
		float f;                  /* f */
		double d;                 /* d */
		struct {
			uint8_t scale;    /* value / 10^scale */
			uint32_t value;   /* as sent (RabbitMQ reads it unsigned) */
		} dec;                    /* D */
		struct tq_amqp_str str;   /* S x */
		struct tq_amqp_table table; /* F: contents; A: values without keys */
	} v;
};

/* A walk over a table's entries or an array's values (tq_amqp_table_iter()). */
struct tq_amqp_iter {
	const uint8_t *p;
	uint32_t len;
	uint32_t off;
	bool array;
};

#endif
