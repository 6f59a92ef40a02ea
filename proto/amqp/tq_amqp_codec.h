/*
 * AMQP 0-9-1 codec (with RabbitMQ's extensions): the protocol header, frames, method
 * arguments, content headers with the basic properties, body and heartbeat frames, and
 * the mapping of decoding errors to reply codes. Method argument layouts, ids and
 * constants are generated from the spec (tq_amqp_spec.h, gen_amqp.py); field tables are
 * in tq_amqp_table.h. Pure functions: no EAL, no allocation, no I/O, any thread.
 *
 * Decoders return bytes consumed (> 0), TQ_AMQP_NEED_MORE (frames and the protocol header
 * only: the input is a stream there), or -TQ_AMQP_E_* with the offending byte's offset in
 * *err_off, counted from the decoder's own input. Encoders compute the size first and
 * return the bytes written, or -ENOSPC (nothing written) when @cap is short.
 */
#ifndef TQ_AMQP_CODEC_H
#define TQ_AMQP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/amqp/tq_amqp-t.h"
#include "proto/amqp/tq_amqp_table.h"

/* protocol header */

#define TQ_AMQP_PROTOCOL_HEADER_LEN 8
extern const uint8_t tq_amqp_protocol_header[TQ_AMQP_PROTOCOL_HEADER_LEN]; /* "AMQP" 0 0 9 1 */

/*
 * Check the first bytes a client sends: 8 when they are our protocol header,
 * TQ_AMQP_NEED_MORE while what arrived is a prefix of it, -TQ_AMQP_E_PROTOCOL_HEADER (at the
 * first byte that differs) for anything else, another version included: the server then
 * writes tq_amqp_protocol_header and closes the socket (spec 4.2.2).
 */
ssize_t tq_amqp_protocol_header_check(const uint8_t *p, size_t len, size_t *err_off);

/* frames */

#define TQ_AMQP_FRAME_HDR_LEN 7  /* type, channel, payload size */
#define TQ_AMQP_FRAME_OVERHEAD 8 /* header and frame-end */

struct tq_amqp_frame {
	uint8_t type;     /* TQ_AMQP_FRAME_METHOD, _HEADER, _BODY, _HEARTBEAT */
	uint16_t channel;
	uint32_t size;    /* payload bytes */
	const uint8_t *payload; /* span into the input */
};

/*
 * Parse one frame at the start of the @len bytes at @p. @frame_max is the negotiated
 * largest frame, overhead included (connection.tune; 0: no limit). Returns the frame's
 * length (8 + size), TQ_AMQP_NEED_MORE until the whole frame is there (call again with more
 * bytes; for many frames in one segment call again after the bytes consumed), or
 * -TQ_AMQP_E_FRAME_TYPE, _FRAME_TOO_LARGE, _HEARTBEAT (as soon as the 7-byte header shows
 * it, before the payload arrives) or _FRAME_END.
 */
ssize_t tq_amqp_frame_parse(const uint8_t *p, size_t len, uint32_t frame_max,
			    struct tq_amqp_frame *f, size_t *err_off);

/*
 * Write the 7-byte header of a frame of @size payload bytes: the caller appends the
 * payload and TQ_AMQP_FRAME_END (for payloads kept in their own buffers).
 */
ssize_t tq_amqp_frame_head_encode(uint8_t *buf, size_t cap, uint8_t type, uint16_t channel,
				  uint32_t size);

/* A body frame carrying @len bytes of @data, or a heartbeat frame (channel 0, empty). */
ssize_t tq_amqp_body_encode(uint8_t *buf, size_t cap, uint16_t channel, const void *data,
			    size_t len);
ssize_t tq_amqp_heartbeat_encode(uint8_t *buf, size_t cap);

/* methods */

struct tq_amqp_method {
	const struct tq_amqp_method_info *info; /* ids, name, flags, argument layout */
	union tq_amqp_args args;                /* the member named after info (basic_publish) */
};

/*
 * Decode the @len-byte payload of a method frame: class and method ids, then every
 * argument, with consecutive bits packed into octets (least significant first), shortstr
 * and longstr as spans, tables validated. Returns @len, or -TQ_AMQP_E_METHOD_SHORT,
 * _UNKNOWN_CLASS, _UNKNOWN_METHOD, _TRUNCATED, _TRAILING or a table's error. Bits a method
 * does not define in its last octet are ignored, as RabbitMQ does.
 */
ssize_t tq_amqp_method_decode(const uint8_t *p, size_t len, struct tq_amqp_method *m,
			      size_t *err_off);

/*
 * Length of the method frame tq_amqp_method_encode() (tq_amqp_spec.h) writes for @args,
 * overhead included, or -EINVAL (a shortstr over 255 bytes, a payload over 2^32 - 1).
 */
ssize_t tq_amqp_method_len(const struct tq_amqp_method_info *mi, const void *args);

/* content headers */

struct tq_amqp_content_header {
	uint16_t class_id; /* TQ_AMQP_CLASS_BASIC */
	uint16_t weight;   /* always 0 */
	uint64_t body_size;
	struct tq_amqp_basic_props props;
};

/*
 * Decode the payload of a content header frame: class, weight, body size, the property
 * flag words (bit 0 of each: another word follows) and the properties they mark.
 * Returns @len, or -TQ_AMQP_E_HEADER_SHORT, _HEADER_CLASS, _HEADER_WEIGHT, _HEADER_FLAGS (a
 * bit the class does not define, in any word), _TRUNCATED, _TRAILING or a table's error.
 */
ssize_t tq_amqp_header_decode(const uint8_t *p, size_t len, struct tq_amqp_content_header *h,
			      size_t *err_off);

/*
 * A content header frame (class basic, weight 0) for a body of @body_size bytes, with the
 * properties whose flags are set in @props->flags. Returns the frame length, -ENOSPC, or
 * -EINVAL (a flag outside TQ_AMQP_BASIC_FLAGS_ALL, a shortstr over 255 bytes).
 */
ssize_t tq_amqp_header_encode(uint8_t *buf, size_t cap, uint16_t channel, uint64_t body_size,
			      const struct tq_amqp_basic_props *props);
ssize_t tq_amqp_header_len(const struct tq_amqp_basic_props *props);

/* connection.start's server-properties */

struct tq_amqp_server_info {
	const char *product;      /* each NULL: left out */
	const char *version;
	const char *platform;
	const char *copyright;
	const char *information;
	const char *cluster_name;
};

/*
 * Build the server-properties table of connection.start into @buf: the strings of @si and
 * the "capabilities" table clients read (publisher_confirms, exchange_exchange_bindings,
 * basic.nack, consumer_cancel_notify, connection.blocked, consumer_priorities,
 * authentication_failure_close, per_consumer_qos: all true). Returns 0 with @out, or
 * -ENOSPC.
 */
int tq_amqp_server_properties(uint8_t *buf, size_t cap, const struct tq_amqp_server_info *si,
			      struct tq_amqp_table *out);

/* errors: the one mapping (tq_amqp_errors.def) */

/* The reply code for the error @err (negative or not), 0 for PROTOCOL_HEADER. */
uint16_t tq_amqp_err_reply(int err);

/* True when the error closes the connection (every decoding error does: all are hard). */
bool tq_amqp_err_closes_connection(int err);

/* "FRAME_END" and a sentence, for logs and reply-text. */
const char *tq_amqp_err_name(int err);
const char *tq_amqp_err_text(int err);

#endif
