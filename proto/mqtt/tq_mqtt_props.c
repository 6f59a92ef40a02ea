/*
 * MQTT 5 properties (5.0 section 2.2.2): the identifier table (type and the packets each
 * may appear in), decoding with duplicate and range checks, the iterators over repeatable
 * properties, and encoding.
 */
#include <errno.h>
#include <string.h>

#include "tq_mqtt_codec.h"
#include "tq_mqtt_wire.h"

enum prop_type {
	PT_NONE = 0, /* not an identifier of 5.0 */
	PT_BYTE,
	PT_U16,
	PT_U32,
	PT_VBI,
	PT_STR,
	PT_BIN,
	PT_PAIR,
};

#define C(t) (1u << (t))
#define ACKS (C(TQ_MQTT_PUBACK) | C(TQ_MQTT_PUBREC) | C(TQ_MQTT_PUBREL) | C(TQ_MQTT_PUBCOMP))
#define PUB_WILL (C(TQ_MQTT_PUBLISH) | C(TQ_MQTT_CTX_WILL))

struct prop_desc {
	uint8_t type;
	uint32_t ctx; /* C(packet type) | C(TQ_MQTT_CTX_WILL) */
};

/* 5.0 table 2-4, "Properties". */
static const struct prop_desc prop_table[TQ_MQTT_PROP_ID_MAX + 1] = {
	[TQ_MQTT_PROP_PAYLOAD_FORMAT] = {PT_BYTE, PUB_WILL},
	[TQ_MQTT_PROP_MESSAGE_EXPIRY] = {PT_U32, PUB_WILL},
	[TQ_MQTT_PROP_CONTENT_TYPE] = {PT_STR, PUB_WILL},
	[TQ_MQTT_PROP_RESPONSE_TOPIC] = {PT_STR, PUB_WILL},
	[TQ_MQTT_PROP_CORRELATION_DATA] = {PT_BIN, PUB_WILL},
	[TQ_MQTT_PROP_SUBSCRIPTION_ID] = {PT_VBI, C(TQ_MQTT_PUBLISH) | C(TQ_MQTT_SUBSCRIBE)},
	[TQ_MQTT_PROP_SESSION_EXPIRY] = {PT_U32, C(TQ_MQTT_CONNECT) | C(TQ_MQTT_CONNACK) |
							 C(TQ_MQTT_DISCONNECT)},
	[TQ_MQTT_PROP_ASSIGNED_CLIENT_ID] = {PT_STR, C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_SERVER_KEEP_ALIVE] = {PT_U16, C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_AUTH_METHOD] = {PT_STR, C(TQ_MQTT_CONNECT) | C(TQ_MQTT_CONNACK) |
						      C(TQ_MQTT_AUTH)},
	[TQ_MQTT_PROP_AUTH_DATA] = {PT_BIN, C(TQ_MQTT_CONNECT) | C(TQ_MQTT_CONNACK) |
						    C(TQ_MQTT_AUTH)},
	[TQ_MQTT_PROP_REQUEST_PROBLEM_INFO] = {PT_BYTE, C(TQ_MQTT_CONNECT)},
	[TQ_MQTT_PROP_WILL_DELAY] = {PT_U32, C(TQ_MQTT_CTX_WILL)},
	[TQ_MQTT_PROP_REQUEST_RESPONSE_INFO] = {PT_BYTE, C(TQ_MQTT_CONNECT)},
	[TQ_MQTT_PROP_RESPONSE_INFO] = {PT_STR, C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_SERVER_REFERENCE] = {PT_STR, C(TQ_MQTT_CONNACK) | C(TQ_MQTT_DISCONNECT)},
	[TQ_MQTT_PROP_REASON_STRING] = {PT_STR, C(TQ_MQTT_CONNACK) | ACKS | C(TQ_MQTT_SUBACK) |
							C(TQ_MQTT_UNSUBACK) | C(TQ_MQTT_DISCONNECT) |
							C(TQ_MQTT_AUTH)},
	[TQ_MQTT_PROP_RECEIVE_MAX] = {PT_U16, C(TQ_MQTT_CONNECT) | C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_TOPIC_ALIAS_MAX] = {PT_U16, C(TQ_MQTT_CONNECT) | C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_TOPIC_ALIAS] = {PT_U16, C(TQ_MQTT_PUBLISH)},
	[TQ_MQTT_PROP_MAX_QOS] = {PT_BYTE, C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_RETAIN_AVAILABLE] = {PT_BYTE, C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_USER] = {PT_PAIR, C(TQ_MQTT_CONNECT) | C(TQ_MQTT_CONNACK) | PUB_WILL | ACKS |
					    C(TQ_MQTT_SUBSCRIBE) | C(TQ_MQTT_SUBACK) |
					    C(TQ_MQTT_UNSUBSCRIBE) | C(TQ_MQTT_UNSUBACK) |
					    C(TQ_MQTT_DISCONNECT) | C(TQ_MQTT_AUTH)},
	[TQ_MQTT_PROP_MAX_PACKET_SIZE] = {PT_U32, C(TQ_MQTT_CONNECT) | C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_WILDCARD_SUB_AVAILABLE] = {PT_BYTE, C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_SUB_ID_AVAILABLE] = {PT_BYTE, C(TQ_MQTT_CONNACK)},
	[TQ_MQTT_PROP_SHARED_SUB_AVAILABLE] = {PT_BYTE, C(TQ_MQTT_CONNACK)},
};

static bool
repeatable(unsigned int id, unsigned int ctx)
{
	return id == TQ_MQTT_PROP_USER ||
	       (id == TQ_MQTT_PROP_SUBSCRIPTION_ID && ctx == TQ_MQTT_PUBLISH);
}

/* Where a decoded single-valued property is kept; NULL for the repeatable ones. */
static struct tq_mqtt_str *
str_field(struct tq_mqtt_props *pr, unsigned int id)
{
	switch (id) {
	case TQ_MQTT_PROP_CONTENT_TYPE: return &pr->content_type;
	case TQ_MQTT_PROP_RESPONSE_TOPIC: return &pr->response_topic;
	case TQ_MQTT_PROP_CORRELATION_DATA: return &pr->correlation_data;
	case TQ_MQTT_PROP_ASSIGNED_CLIENT_ID: return &pr->assigned_client_id;
	case TQ_MQTT_PROP_AUTH_METHOD: return &pr->auth_method;
	case TQ_MQTT_PROP_AUTH_DATA: return &pr->auth_data;
	case TQ_MQTT_PROP_RESPONSE_INFO: return &pr->response_info;
	case TQ_MQTT_PROP_SERVER_REFERENCE: return &pr->server_reference;
	case TQ_MQTT_PROP_REASON_STRING: return &pr->reason_string;
	default: return NULL;
	}
}

static uint8_t *
byte_field(struct tq_mqtt_props *pr, unsigned int id)
{
	switch (id) {
	case TQ_MQTT_PROP_PAYLOAD_FORMAT: return &pr->payload_format;
	case TQ_MQTT_PROP_REQUEST_PROBLEM_INFO: return &pr->request_problem_info;
	case TQ_MQTT_PROP_REQUEST_RESPONSE_INFO: return &pr->request_response_info;
	case TQ_MQTT_PROP_MAX_QOS: return &pr->max_qos;
	case TQ_MQTT_PROP_RETAIN_AVAILABLE: return &pr->retain_available;
	case TQ_MQTT_PROP_WILDCARD_SUB_AVAILABLE: return &pr->wildcard_sub_available;
	case TQ_MQTT_PROP_SUB_ID_AVAILABLE: return &pr->sub_id_available;
	case TQ_MQTT_PROP_SHARED_SUB_AVAILABLE: return &pr->shared_sub_available;
	default: return NULL;
	}
}

static uint16_t *
u16_field(struct tq_mqtt_props *pr, unsigned int id)
{
	switch (id) {
	case TQ_MQTT_PROP_SERVER_KEEP_ALIVE: return &pr->server_keep_alive;
	case TQ_MQTT_PROP_RECEIVE_MAX: return &pr->receive_max;
	case TQ_MQTT_PROP_TOPIC_ALIAS_MAX: return &pr->topic_alias_max;
	case TQ_MQTT_PROP_TOPIC_ALIAS: return &pr->topic_alias;
	default: return NULL;
	}
}

static uint32_t *
u32_field(struct tq_mqtt_props *pr, unsigned int id)
{
	switch (id) {
	case TQ_MQTT_PROP_MESSAGE_EXPIRY: return &pr->message_expiry;
	case TQ_MQTT_PROP_SESSION_EXPIRY: return &pr->session_expiry;
	case TQ_MQTT_PROP_WILL_DELAY: return &pr->will_delay;
	case TQ_MQTT_PROP_MAX_PACKET_SIZE: return &pr->max_packet_size;
	default: return NULL;
	}
}

/* Range rules of 5.0 section 3: 0 or 1 only, non-zero, topic names. */
static int
check_value(struct tq_mqtt_rd *r, size_t at, unsigned int id, const struct tq_mqtt_props *pr,
	    uint32_t v)
{
	switch (id) {
	case TQ_MQTT_PROP_PAYLOAD_FORMAT:
	case TQ_MQTT_PROP_REQUEST_PROBLEM_INFO:
	case TQ_MQTT_PROP_REQUEST_RESPONSE_INFO:
	case TQ_MQTT_PROP_MAX_QOS:
	case TQ_MQTT_PROP_RETAIN_AVAILABLE:
	case TQ_MQTT_PROP_WILDCARD_SUB_AVAILABLE:
	case TQ_MQTT_PROP_SUB_ID_AVAILABLE:
	case TQ_MQTT_PROP_SHARED_SUB_AVAILABLE:
		if (v > 1)
			return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PROP_VALUE);
		break;
	case TQ_MQTT_PROP_RECEIVE_MAX:     /* 3.1.2.11.3, 3.2.2.3.3 */
	case TQ_MQTT_PROP_MAX_PACKET_SIZE: /* 3.1.2.11.4, 3.2.2.3.6 */
	case TQ_MQTT_PROP_SUBSCRIPTION_ID: /* 3.8.2.1.2: 1 .. 268,435,455 */
		if (v == 0)
			return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PROP_VALUE);
		break;
	case TQ_MQTT_PROP_TOPIC_ALIAS: /* 3.3.2.3.4 */
		if (v == 0)
			return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_TOPIC_ALIAS);
		break;
	case TQ_MQTT_PROP_RESPONSE_TOPIC: /* 3.3.2.3.5: a topic name, no wildcards */
		if (!tq_mqtt_topic_valid(pr->response_topic.p, pr->response_topic.len))
			return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_RESPONSE_TOPIC);
		break;
	default:
		break;
	}
	return 0;
}

int
tq_mqtt_props_decode(struct tq_mqtt_rd *r, unsigned int ctx, struct tq_mqtt_props *out)
{
	size_t len_at = r->pos, end, saved_end = r->end;
	uint32_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = tq_mqtt_rd_vbi(r, &len);
	if (ret)
		return ret;
	if (len > tq_mqtt_rd_left(r))
		return tq_mqtt_rd_fail(r, len_at, TQ_MQTT_E_TRUNCATED);
	end = r->pos + len;
	out->raw = r->p + r->pos;
	out->raw_len = len;
	r->end = end; /* property values may not run past the block */
	while (r->pos < end) {
		size_t at = r->pos;
		uint32_t id, v = 0;
		const struct prop_desc *d;

		ret = tq_mqtt_rd_vbi(r, &id);
		if (ret)
			goto out;
		if (id > TQ_MQTT_PROP_ID_MAX || prop_table[id].type == PT_NONE) {
			ret = tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PROP_UNKNOWN);
			goto out;
		}
		d = &prop_table[id];
		if (!(d->ctx & C(ctx))) {
			ret = tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PROP_NOT_ALLOWED);
			goto out;
		}
		if ((out->present & TQ_MQTT_PBIT(id)) && !repeatable(id, ctx)) {
			ret = tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PROP_DUPLICATE);
			goto out;
		}
		switch (d->type) {
		case PT_BYTE: {
			uint8_t b;

			ret = tq_mqtt_rd_u8(r, &b);
			v = b;
			if (!ret)
				*byte_field(out, id) = b;
			break;
		}
		case PT_U16: {
			uint16_t h;

			ret = tq_mqtt_rd_u16(r, &h);
			v = h;
			if (!ret)
				*u16_field(out, id) = h;
			break;
		}
		case PT_U32:
			ret = tq_mqtt_rd_u32(r, &v);
			if (!ret)
				*u32_field(out, id) = v;
			break;
		case PT_VBI: /* the subscription identifier */
			ret = tq_mqtt_rd_vbi(r, &v);
			if (!ret && out->sub_id_count++ == 0)
				out->sub_id = v;
			break;
		case PT_STR:
			ret = tq_mqtt_rd_str(r, str_field(out, id));
			break;
		case PT_BIN:
			ret = tq_mqtt_rd_bin(r, str_field(out, id));
			break;
		case PT_PAIR: {
			struct tq_mqtt_str s;

			ret = tq_mqtt_rd_str(r, &s);
			if (!ret)
				ret = tq_mqtt_rd_str(r, &s);
			if (!ret)
				out->user_count++;
			break;
		}
		}
		if (ret)
			goto out;
		ret = check_value(r, at, id, out, v);
		if (ret)
			goto out;
		out->present |= TQ_MQTT_PBIT(id);
	}
	/* 3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3: data without a method */
	if ((out->present & TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_DATA)) &&
	    !(out->present & TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_METHOD)))
		ret = tq_mqtt_rd_fail(r, len_at, TQ_MQTT_E_NO_AUTH_METHOD);
out:
	r->end = saved_end;
	return ret;
}

void
tq_mqtt_prop_iter_init(struct tq_mqtt_prop_iter *it, const struct tq_mqtt_props *props)
{
	it->props = props;
	it->pos = 0;
	it->idx = 0;
}

/*
 * The next property @want in the (already validated) raw block, its value at *@val_at.
 * Identifiers of 5.0 all fit one byte.
 */
static bool
raw_next(struct tq_mqtt_prop_iter *it, unsigned int want, uint32_t *val_at)
{
	const uint8_t *raw = it->props->raw;
	uint32_t len = it->props->raw_len;

	while (raw && it->pos < len) {
		unsigned int id = raw[it->pos];
		uint32_t at = it->pos + 1, skip = 0;

		switch (id <= TQ_MQTT_PROP_ID_MAX ? prop_table[id].type : PT_NONE) {
		case PT_BYTE: skip = 1; break;
		case PT_U16: skip = 2; break;
		case PT_U32: skip = 4; break;
		case PT_VBI:
			while (at + skip < len && (raw[at + skip] & 0x80))
				skip++;
			skip++;
			break;
		case PT_STR:
		case PT_BIN:
			skip = at + 2 <= len ? 2u + (uint32_t)(raw[at] << 8 | raw[at + 1]) : len;
			break;
		case PT_PAIR:
			skip = at + 2 <= len ? 2u + (uint32_t)(raw[at] << 8 | raw[at + 1]) : len;
			if (at + skip + 2 <= len)
				skip += 2u + (uint32_t)(raw[at + skip] << 8 | raw[at + skip + 1]);
			break;
		default: /* not a validated block: stop */
			it->pos = len;
			return false;
		}
		if (skip > len - at) {
			it->pos = len;
			return false;
		}
		it->pos = at + skip;
		if (id == want) {
			*val_at = at;
			return true;
		}
	}
	return false;
}

bool
tq_mqtt_next_user_prop(struct tq_mqtt_prop_iter *it, struct tq_mqtt_pair *out)
{
	const struct tq_mqtt_props *pr = it->props;
	const uint8_t *raw = pr->raw;
	uint32_t at;

	if (pr->user) {
		if (it->idx >= pr->user_count)
			return false;
		*out = pr->user[it->idx++];
		return true;
	}
	if (!raw_next(it, TQ_MQTT_PROP_USER, &at))
		return false;
	out->name.len = (uint16_t)(raw[at] << 8 | raw[at + 1]);
	out->name.p = raw + at + 2;
	at += 2u + out->name.len;
	out->value.len = (uint16_t)(raw[at] << 8 | raw[at + 1]);
	out->value.p = raw + at + 2;
	return true;
}

bool
tq_mqtt_next_sub_id(struct tq_mqtt_prop_iter *it, uint32_t *out)
{
	const struct tq_mqtt_props *pr = it->props;
	uint32_t at, v = 0;

	if (pr->sub_ids) {
		if (it->idx >= pr->sub_id_count)
			return false;
		*out = pr->sub_ids[it->idx++];
		return true;
	}
	if (!raw_next(it, TQ_MQTT_PROP_SUBSCRIPTION_ID, &at))
		return false;
	for (unsigned int i = 0; i < 4 && at + i < it->pos; i++)
		v |= (uint32_t)(pr->raw[at + i] & 0x7f) << (7 * i);
	*out = v;
	return true;
}

/* The value of single-valued property @id of @pr, for encoding. */
static uint32_t
int_value(const struct tq_mqtt_props *pr, unsigned int id)
{
	struct tq_mqtt_props *m = (struct tq_mqtt_props *)(uintptr_t)pr; /* read only */
	const void *f;

	if ((f = byte_field(m, id)))
		return *(const uint8_t *)f;
	if ((f = u16_field(m, id)))
		return *(const uint16_t *)f;
	if ((f = u32_field(m, id)))
		return *(const uint32_t *)f;
	return 0;
}

/* Encode or count the properties of @pr; the caller checked them (tq_mqtt_props_len). */
static void
props_emit(struct tq_mqtt_wr *w, const struct tq_mqtt_props *pr)
{
	struct tq_mqtt_props *m = (struct tq_mqtt_props *)(uintptr_t)pr; /* read only */
	struct tq_mqtt_prop_iter it;

	for (uint64_t bits = pr->present; bits; bits &= bits - 1) {
		unsigned int id = (unsigned int)__builtin_ctzll(bits);
		struct tq_mqtt_pair pair;
		uint32_t v;

		switch (prop_table[id].type) {
		case PT_BYTE:
			tq_mqtt_wr_u8(w, (uint8_t)id);
			tq_mqtt_wr_u8(w, (uint8_t)int_value(pr, id));
			break;
		case PT_U16:
			tq_mqtt_wr_u8(w, (uint8_t)id);
			tq_mqtt_wr_u16(w, (uint16_t)int_value(pr, id));
			break;
		case PT_U32:
			tq_mqtt_wr_u8(w, (uint8_t)id);
			tq_mqtt_wr_u32(w, int_value(pr, id));
			break;
		case PT_VBI:
			tq_mqtt_prop_iter_init(&it, pr);
			while (tq_mqtt_next_sub_id(&it, &v)) {
				tq_mqtt_wr_u8(w, (uint8_t)id);
				tq_mqtt_wr_vbi(w, v);
			}
			break;
		case PT_STR:
		case PT_BIN:
			tq_mqtt_wr_u8(w, (uint8_t)id);
			tq_mqtt_wr_str(w, *str_field(m, id));
			break;
		case PT_PAIR:
			tq_mqtt_prop_iter_init(&it, pr);
			while (tq_mqtt_next_user_prop(&it, &pair)) {
				tq_mqtt_wr_u8(w, (uint8_t)id);
				tq_mqtt_wr_str(w, pair.name);
				tq_mqtt_wr_str(w, pair.value);
			}
			break;
		default:
			break;
		}
	}
}

long
tq_mqtt_props_len(const struct tq_mqtt_props *pr, unsigned int ctx)
{
	struct tq_mqtt_wr w = {0};
	struct tq_mqtt_prop_iter it;
	uint32_t v;

	if (!pr)
		return 0;
	for (uint64_t bits = pr->present; bits; bits &= bits - 1) {
		unsigned int id = (unsigned int)__builtin_ctzll(bits);

		if (id > TQ_MQTT_PROP_ID_MAX || !(prop_table[id].ctx & C(ctx)))
			return -EINVAL;
	}
	if (pr->present & TQ_MQTT_PBIT(TQ_MQTT_PROP_SUBSCRIPTION_ID)) {
		tq_mqtt_prop_iter_init(&it, pr);
		while (tq_mqtt_next_sub_id(&it, &v))
			if (v == 0 || v > TQ_MQTT_VBI_MAX)
				return -EINVAL;
	}
	props_emit(&w, pr);
	if (w.n > TQ_MQTT_VBI_MAX)
		return -EINVAL;
	return (long)w.n;
}

void
tq_mqtt_props_write(struct tq_mqtt_wr *w, const struct tq_mqtt_props *pr, uint32_t len)
{
	tq_mqtt_wr_vbi(w, len);
	if (pr)
		props_emit(w, pr);
}
