/*
 * MQTT codec: OASIS MQTT 3.1.1 and 5.0, and MQTT 3.1 (protocol levels 3, 4, 5).
 * Framing, a decoder for every packet type into views whose strings and binary data are
 * spans into the input, UTF-8 and topic checks, MQTT 5 properties, and encoders into
 * caller-provided buffers. Pure functions: no EAL, no allocation, no I/O, any thread.
 *
 * Return values of the decoding functions: bytes consumed (> 0), TQ_MQTT_NEED_MORE (0:
 * give me more bytes, nothing was consumed), or -TQ_MQTT_E_* with the offset of the
 * offending byte in err_off. tq_mqtt_err_reason() and tq_mqtt_err_v3_connack() map an error
 * to what the peer is told (tq_mqtt_errors.def, the one table).
 */
#ifndef TQ_MQTT_CODEC_H
#define TQ_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TQ_MQTT_NEED_MORE 0

#define TQ_MQTT_LEVEL_31 3  /* MQTT 3.1, protocol name "MQIsdp" */
#define TQ_MQTT_LEVEL_311 4 /* MQTT 3.1.1, "MQTT" */
#define TQ_MQTT_LEVEL_5 5   /* MQTT 5.0, "MQTT" */

#define TQ_MQTT_VBI_MAX 268435455u              /* 4-byte variable byte integer */
#define TQ_MQTT_FIXED_HDR_MAX 5                 /* type/flags + 4 length bytes */
#define TQ_MQTT_PACKET_MAX (TQ_MQTT_VBI_MAX + 5) /* the largest packet of all */

enum tq_mqtt_type {
	TQ_MQTT_CONNECT = 1,
	TQ_MQTT_CONNACK = 2,
	TQ_MQTT_PUBLISH = 3,
	TQ_MQTT_PUBACK = 4,
	TQ_MQTT_PUBREC = 5,
	TQ_MQTT_PUBREL = 6,
	TQ_MQTT_PUBCOMP = 7,
	TQ_MQTT_SUBSCRIBE = 8,
	TQ_MQTT_SUBACK = 9,
	TQ_MQTT_UNSUBSCRIBE = 10,
	TQ_MQTT_UNSUBACK = 11,
	TQ_MQTT_PINGREQ = 12,
	TQ_MQTT_PINGRESP = 13,
	TQ_MQTT_DISCONNECT = 14,
	TQ_MQTT_AUTH = 15, /* 5.0 only */
};

enum tq_mqtt_err {
	TQ_MQTT_E_NONE = 0,
#define TQ_MQTT_ERR(name, reason, v3, text) TQ_MQTT_E_##name,
#include "tq_mqtt_errors.def"
#undef TQ_MQTT_ERR
	TQ_MQTT_E_COUNT,
};

/* The MQTT 5 reason code for -@err or @err (0x80 "unspecified error" if unknown). */
uint8_t tq_mqtt_err_reason(int err);
/* The 3.x CONNACK return code for an error in a CONNECT, or 0: close without CONNACK. */
uint8_t tq_mqtt_err_v3_connack(int err);
/* The error's name ("BAD_UTF8"), for counters and logs; "?" if unknown. */
const char *tq_mqtt_err_name(int err);

/* MQTT 5 property identifiers (5.0 section 2.2.2.2). */
enum tq_mqtt_prop_id {
	TQ_MQTT_PROP_PAYLOAD_FORMAT = 0x01,           /* byte 0/1: PUBLISH, will */
	TQ_MQTT_PROP_MESSAGE_EXPIRY = 0x02,           /* 4-byte: PUBLISH, will */
	TQ_MQTT_PROP_CONTENT_TYPE = 0x03,             /* UTF-8: PUBLISH, will */
	TQ_MQTT_PROP_RESPONSE_TOPIC = 0x08,           /* UTF-8 topic name: PUBLISH, will */
	TQ_MQTT_PROP_CORRELATION_DATA = 0x09,         /* binary: PUBLISH, will */
	TQ_MQTT_PROP_SUBSCRIPTION_ID = 0x0B,          /* VBI 1..: PUBLISH (repeatable), SUBSCRIBE */
	TQ_MQTT_PROP_SESSION_EXPIRY = 0x11,           /* 4-byte: CONNECT, CONNACK, DISCONNECT */
	TQ_MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,       /* UTF-8: CONNACK */
	TQ_MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,        /* 2-byte: CONNACK */
	TQ_MQTT_PROP_AUTH_METHOD = 0x15,              /* UTF-8: CONNECT, CONNACK, AUTH */
	TQ_MQTT_PROP_AUTH_DATA = 0x16,                /* binary: CONNECT, CONNACK, AUTH */
	TQ_MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,     /* byte 0/1: CONNECT */
	TQ_MQTT_PROP_WILL_DELAY = 0x18,               /* 4-byte: will */
	TQ_MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,    /* byte 0/1: CONNECT */
	TQ_MQTT_PROP_RESPONSE_INFO = 0x1A,            /* UTF-8: CONNACK */
	TQ_MQTT_PROP_SERVER_REFERENCE = 0x1C,         /* UTF-8: CONNACK, DISCONNECT */
	TQ_MQTT_PROP_REASON_STRING = 0x1F,            /* UTF-8: CONNACK, acks, DISCONNECT, AUTH */
	TQ_MQTT_PROP_RECEIVE_MAX = 0x21,              /* 2-byte 1..: CONNECT, CONNACK */
	TQ_MQTT_PROP_TOPIC_ALIAS_MAX = 0x22,          /* 2-byte: CONNECT, CONNACK */
	TQ_MQTT_PROP_TOPIC_ALIAS = 0x23,              /* 2-byte 1..: PUBLISH */
	TQ_MQTT_PROP_MAX_QOS = 0x24,                  /* byte 0/1: CONNACK */
	TQ_MQTT_PROP_RETAIN_AVAILABLE = 0x25,         /* byte 0/1: CONNACK */
	TQ_MQTT_PROP_USER = 0x26,                     /* string pair, repeatable: all but PINGs */
	TQ_MQTT_PROP_MAX_PACKET_SIZE = 0x27,          /* 4-byte 1..: CONNECT, CONNACK */
	TQ_MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,   /* byte 0/1: CONNACK */
	TQ_MQTT_PROP_SUB_ID_AVAILABLE = 0x29,         /* byte 0/1: CONNACK */
	TQ_MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,     /* byte 0/1: CONNACK */
};
#define TQ_MQTT_PROP_ID_MAX 0x2A

/* Presence bit of a property in struct tq_mqtt_props.present. */
#define TQ_MQTT_PBIT(id) (UINT64_C(1) << (id))

/* A UTF-8 string or binary data (2-byte length on the wire): a span, not NUL-terminated. */
struct tq_mqtt_str {
	const uint8_t *p;
	uint16_t len;
};

struct tq_mqtt_pair {
	struct tq_mqtt_str name;
	struct tq_mqtt_str value;
};

/*
 * MQTT 5 properties of one packet (or of a will). Decoding fills @present (a bit per
 * property seen, user properties and subscription identifiers included), the values of the
 * single-valued ones, @raw (the property block, for the iterators) and the counts.
 * Encoding writes the properties whose bit is set in @present; user properties and
 * subscription identifiers come from the arrays @user / @sub_ids when not NULL, else from
 * @raw (so a decoded view re-encodes, and a forwarded PUBLISH keeps its user properties).
 */
struct tq_mqtt_props {
	uint64_t present; /* TQ_MQTT_PBIT(TQ_MQTT_PROP_*) */
	uint32_t message_expiry;
	uint32_t session_expiry;
	uint32_t will_delay;
	uint32_t max_packet_size;
	uint32_t sub_id; /* decode: the first subscription identifier (SUBSCRIBE has one) */
	uint16_t server_keep_alive;
	uint16_t receive_max;
	uint16_t topic_alias_max;
	uint16_t topic_alias;
	uint8_t payload_format;
	uint8_t request_problem_info;
	uint8_t request_response_info;
	uint8_t max_qos;
	uint8_t retain_available;
	uint8_t wildcard_sub_available;
	uint8_t sub_id_available;
	uint8_t shared_sub_available;
	struct tq_mqtt_str content_type;
	struct tq_mqtt_str response_topic;
	struct tq_mqtt_str correlation_data;
	struct tq_mqtt_str assigned_client_id;
	struct tq_mqtt_str auth_method;
	struct tq_mqtt_str auth_data;
	struct tq_mqtt_str response_info;
	struct tq_mqtt_str server_reference;
	struct tq_mqtt_str reason_string;
	/* repeatable properties */
	uint32_t user_count;
	uint32_t sub_id_count;
	const struct tq_mqtt_pair *user; /* encode: user_count pairs, or NULL: from @raw */
	const uint32_t *sub_ids;         /* encode: sub_id_count values, or NULL: from @raw */
	const uint8_t *raw;              /* the property block as decoded (no length prefix) */
	uint32_t raw_len;
};

/* Walks the user properties or subscription identifiers of a tq_mqtt_props. */
struct tq_mqtt_prop_iter {
	const struct tq_mqtt_props *props;
	uint32_t pos; /* in raw */
	uint32_t idx; /* in the arrays */
};

void tq_mqtt_prop_iter_init(struct tq_mqtt_prop_iter *it, const struct tq_mqtt_props *props);
/* The next user property into @out; false at the end. */
bool tq_mqtt_next_user_prop(struct tq_mqtt_prop_iter *it, struct tq_mqtt_pair *out);
/* The next subscription identifier into @out; false at the end. */
bool tq_mqtt_next_sub_id(struct tq_mqtt_prop_iter *it, uint32_t *out);

struct tq_mqtt_will {
	struct tq_mqtt_props props; /* 5.0 will properties */
	struct tq_mqtt_str topic;
	struct tq_mqtt_str payload; /* binary data: at most 65535 bytes */
	uint8_t qos;
	bool retain;
};

struct tq_mqtt_connect {
	struct tq_mqtt_str protocol_name; /* decode only: the encoder writes the level's name */
	uint8_t level;                    /* 3, 4 or 5 */
	uint8_t flags;                    /* decode only: the connect flags byte */
	bool clean_start;                 /* 3.x: clean session */
	bool has_will;
	bool has_username;
	bool has_password;
	uint16_t keep_alive;
	struct tq_mqtt_props props;
	struct tq_mqtt_str client_id;
	struct tq_mqtt_will will;     /* if has_will */
	struct tq_mqtt_str username;  /* if has_username */
	struct tq_mqtt_str password;  /* if has_password; binary data */
};

struct tq_mqtt_connack {
	bool session_present;
	uint8_t reason; /* 5.0 reason code, or the 3.x return code (0..5) */
	struct tq_mqtt_props props;
};

struct tq_mqtt_publish {
	bool dup;
	uint8_t qos;
	bool retain;
	uint16_t packet_id; /* QoS > 0 only */
	struct tq_mqtt_str topic; /* empty in 5.0 when a topic alias stands for it */
	struct tq_mqtt_props props;
	const uint8_t *payload;
	size_t payload_len;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP */
struct tq_mqtt_ack {
	uint16_t packet_id;
	uint8_t reason; /* 5.0; 0 in 3.x */
	struct tq_mqtt_props props;
};

/* One subscription of a SUBSCRIBE. */
struct tq_mqtt_sub {
	struct tq_mqtt_str filter;
	uint8_t qos;
	bool no_local;            /* 5.0 */
	bool retain_as_published; /* 5.0 */
	uint8_t retain_handling;  /* 5.0: 0..2 */
};

struct tq_mqtt_subscribe {
	uint16_t packet_id;
	struct tq_mqtt_props props;
	uint32_t count;
	const struct tq_mqtt_sub *subs; /* encode: count entries, or NULL: from raw */
	const uint8_t *raw;             /* decoded payload: the filter list */
	uint32_t raw_len;
};

struct tq_mqtt_unsubscribe {
	uint16_t packet_id;
	struct tq_mqtt_props props;
	uint32_t count;
	const struct tq_mqtt_str *filters; /* encode: count entries, or NULL: from raw */
	const uint8_t *raw;
	uint32_t raw_len;
};

/* SUBACK and UNSUBACK (3.x UNSUBACK has no codes: count 0). */
struct tq_mqtt_suback {
	uint16_t packet_id;
	struct tq_mqtt_props props;
	uint32_t count;
	const uint8_t *codes; /* a span: one reason / return code per filter */
};

/* DISCONNECT (5.0 fields; empty in 3.x) and AUTH */
struct tq_mqtt_disconnect {
	uint8_t reason;
	struct tq_mqtt_props props;
};

/* Iterate over the filters of a SUBSCRIBE or UNSUBSCRIBE view (raw or array). */
struct tq_mqtt_sub_iter {
	const uint8_t *raw;
	uint32_t raw_len;
	uint32_t pos;
	uint32_t idx;
	uint32_t count;
	uint8_t level;
	const struct tq_mqtt_sub *subs;
	const struct tq_mqtt_str *filters;
};

void tq_mqtt_sub_iter_init(struct tq_mqtt_sub_iter *it, uint8_t level,
			   const struct tq_mqtt_subscribe *s);
bool tq_mqtt_next_sub(struct tq_mqtt_sub_iter *it, struct tq_mqtt_sub *out);
void tq_mqtt_unsub_iter_init(struct tq_mqtt_sub_iter *it, const struct tq_mqtt_unsubscribe *u);
bool tq_mqtt_next_unsub(struct tq_mqtt_sub_iter *it, struct tq_mqtt_str *out);

/* One decoded packet. */
struct tq_mqtt_pkt {
	uint8_t type;           /* enum tq_mqtt_type */
	uint8_t flags;          /* fixed header low nibble */
	uint8_t level;          /* the level decoded at (CONNECT: its own, once read) */
	uint8_t hdr_len;        /* fixed header bytes: 2 .. 5 */
	uint32_t remaining_len;
	size_t err_off;         /* on error: offset of the offending byte from the input start */
	union {
		struct tq_mqtt_connect connect;
		struct tq_mqtt_connack connack;
		struct tq_mqtt_publish publish;
		struct tq_mqtt_ack ack;
		struct tq_mqtt_subscribe subscribe;
		struct tq_mqtt_suback suback; /* SUBACK and UNSUBACK */
		struct tq_mqtt_unsubscribe unsubscribe;
		struct tq_mqtt_disconnect disconnect; /* DISCONNECT and AUTH */
	};
};

/* What tq_mqtt_frame() reads. */
struct tq_mqtt_fixed {
	uint8_t type;
	uint8_t flags;
	uint8_t hdr_len;  /* 2 .. 5 */
	bool vbi_minimal; /* false: more length bytes than needed (malformed in 5.0 only) */
	uint32_t remaining_len;
	size_t err_off;
};

/*
 * Frame one packet at @p (@len bytes available, possibly less or more than a packet).
 * Returns the packet's total length (fixed header included) when all of it is in @p;
 * TQ_MQTT_NEED_MORE when it is not (the fixed header is filled as far as known); or
 * -TQ_MQTT_E_BAD_VBI (a 4th length byte with its continuation bit) or -TQ_MQTT_E_TOO_LARGE
 * (total length above @max_packet_size; 0: no limit), as soon as the length is known.
 * Reads only the fixed header; never reads beyond @len.
 */
int tq_mqtt_frame(const uint8_t *p, size_t len, uint32_t max_packet_size,
		  struct tq_mqtt_fixed *hdr);

/*
 * Frame and decode one packet at @p, read by the rules of protocol @level (3, 4 or 5; a
 * CONNECT is read by its own level, which the session then keeps). Returns the packet's
 * length, TQ_MQTT_NEED_MORE, or -TQ_MQTT_E_* with @pkt->err_off. On success every span in
 * @pkt points into @p. The payload format (0x99) is not checked: tq_mqtt_payload_format_ok().
 * Rules that need session state are not checked either: topic alias above the maximum,
 * subscription identifier in a PUBLISH from a client, first packet not CONNECT, ...
 */
int tq_mqtt_decode(const uint8_t *p, size_t len, uint8_t level, struct tq_mqtt_pkt *pkt);

/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, up to U+10FFFF) without
 * U+0000. Returns 0, -TQ_MQTT_E_BAD_UTF8 or -TQ_MQTT_E_UTF8_NUL; @bad_off (if not NULL)
 * gets the offset of the offending byte. */
int tq_mqtt_utf8_check(const uint8_t *p, size_t len, size_t *bad_off);
/* A topic name: valid UTF-8, 1..65535 bytes, no '+' or '#'. */
bool tq_mqtt_topic_valid(const uint8_t *p, size_t len);
/* A topic filter: valid UTF-8, 1..65535 bytes, '+' alone in its level, '#' alone in the
 * last level. "$share/name/filter" is not treated specially here. */
bool tq_mqtt_filter_valid(const uint8_t *p, size_t len);
/* 0, or -TQ_MQTT_E_PAYLOAD_FORMAT when @props says UTF-8 (payload format 1) but the payload
 * is not (5.0 MQTT-3.3.2-4: a receiver MAY check; the reason code is 0x99). */
int tq_mqtt_payload_format_ok(const struct tq_mqtt_props *props, const uint8_t *payload,
			      size_t len);

/*
 * Encoders. Each writes a whole packet into @buf (@cap bytes) by the rules of @level and
 * returns its length, -ENOSPC if it does not fit (nothing useful written), or -EINVAL for
 * what cannot be encoded (QoS 3, a packet id 0 where one is needed, a packet above
 * TQ_MQTT_PACKET_MAX, a type unknown at @level). Properties are written at level 5 only.
 * tq_mqtt_encode_len() returns the length tq_mqtt_encode() would write, or -EINVAL.
 *
 * tq_mqtt_encode() takes @pkt->type and the member for it (connect, connack, publish, ack
 * for PUBACK..PUBCOMP, subscribe, suback for SUBACK and UNSUBACK, unsubscribe, disconnect
 * for DISCONNECT and AUTH; nothing for PINGREQ/PINGRESP). Acks, DISCONNECT and AUTH use
 * their short forms at level 5 when the reason is 0 and there are no properties.
 */
ssize_t tq_mqtt_encode(uint8_t *buf, size_t cap, uint8_t level, const struct tq_mqtt_pkt *pkt);
ssize_t tq_mqtt_encode_len(uint8_t level, const struct tq_mqtt_pkt *pkt);

/*
 * PUBLISH header only: fixed header (remaining length counting @payload_len more bytes),
 * topic, packet id and properties, so that the payload can follow by reference (chained
 * mbuf). @pub->payload is not read. Returns the header length, -ENOSPC or -EINVAL.
 */
ssize_t tq_mqtt_encode_publish_header(uint8_t *buf, size_t cap, uint8_t level,
				      const struct tq_mqtt_publish *pub, size_t payload_len);
ssize_t tq_mqtt_publish_header_len(uint8_t level, const struct tq_mqtt_publish *pub,
				   size_t payload_len);

/* PUBACK, PUBREC, PUBREL or PUBCOMP (@type), the hot path's ack without a struct pkt. */
ssize_t tq_mqtt_encode_ack(uint8_t *buf, size_t cap, uint8_t level, uint8_t type,
			   const struct tq_mqtt_ack *ack);

#endif
