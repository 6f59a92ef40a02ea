#include <errno.h>
#include <string.h>

#include "proto/amqp/tq_amqp_codec.h"
#include "proto/amqp/tq_amqp_wire.h"

const uint8_t tq_amqp_protocol_header[TQ_AMQP_PROTOCOL_HEADER_LEN] = {
	'A', 'M', 'Q', 'P', 0, TQ_AMQP_VERSION_MAJOR, TQ_AMQP_VERSION_MINOR,
	TQ_AMQP_VERSION_REVISION,
};

#define METHOD_IDS_LEN 4    /* class id, method id */
#define HEADER_FIXED_LEN 14 /* class id, weight, body size, first flag word */
#define FLAG_CONTINUATION 0x0001u

ssize_t
tq_amqp_protocol_header_check(const uint8_t *p, size_t len, size_t *err_off)
{
	size_t n = len < TQ_AMQP_PROTOCOL_HEADER_LEN ? len : TQ_AMQP_PROTOCOL_HEADER_LEN;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != tq_amqp_protocol_header[i]) {
			*err_off = i;
			return -TQ_AMQP_E_PROTOCOL_HEADER;
		}
	}
	return n < TQ_AMQP_PROTOCOL_HEADER_LEN ? TQ_AMQP_NEED_MORE : TQ_AMQP_PROTOCOL_HEADER_LEN;
}

/* frames */

ssize_t
tq_amqp_frame_parse(const uint8_t *p, size_t len, uint32_t frame_max, struct tq_amqp_frame *f,
		    size_t *err_off)
{
	uint32_t size;
	uint16_t channel;

	if (len < 1)
		return TQ_AMQP_NEED_MORE;
	switch (p[0]) {
	case TQ_AMQP_FRAME_METHOD:
	case TQ_AMQP_FRAME_HEADER:
	case TQ_AMQP_FRAME_BODY:
	case TQ_AMQP_FRAME_HEARTBEAT:
		break;
	default:
		*err_off = 0;
		return -TQ_AMQP_E_FRAME_TYPE;
	}
	if (len < TQ_AMQP_FRAME_HDR_LEN)
		return TQ_AMQP_NEED_MORE;
	channel = tq_amqp_ld16(p + 1);
	size = tq_amqp_ld32(p + 3);
	/* checked before the payload arrives: nothing is buffered on a peer's word */
	if (frame_max && (frame_max < TQ_AMQP_FRAME_OVERHEAD ||
			  size > frame_max - TQ_AMQP_FRAME_OVERHEAD)) {
		*err_off = 3;
		return -TQ_AMQP_E_FRAME_TOO_LARGE;
	}
	if (p[0] == TQ_AMQP_FRAME_HEARTBEAT && (channel != 0 || size != 0)) {
		*err_off = channel != 0 ? 1 : 3;
		return -TQ_AMQP_E_HEARTBEAT;
	}
	if (len - TQ_AMQP_FRAME_HDR_LEN <= size) /* the payload and frame-end */
		return TQ_AMQP_NEED_MORE;
	if (p[TQ_AMQP_FRAME_HDR_LEN + size] != TQ_AMQP_FRAME_END) {
		*err_off = TQ_AMQP_FRAME_HDR_LEN + (size_t)size;
		return -TQ_AMQP_E_FRAME_END;
	}
	f->type = p[0];
	f->channel = channel;
	f->size = size;
	f->payload = p + TQ_AMQP_FRAME_HDR_LEN;
	return (ssize_t)size + TQ_AMQP_FRAME_OVERHEAD;
}

static uint8_t *
put_frame_head(uint8_t *w, uint8_t type, uint16_t channel, uint32_t size)
{
	*w++ = type;
	w = tq_amqp_st16(w, channel);
	return tq_amqp_st32(w, size);
}

ssize_t
tq_amqp_frame_head_encode(uint8_t *buf, size_t cap, uint8_t type, uint16_t channel,
			  uint32_t size)
{
	if (cap < TQ_AMQP_FRAME_HDR_LEN)
		return -ENOSPC;
	put_frame_head(buf, type, channel, size);
	return TQ_AMQP_FRAME_HDR_LEN;
}

ssize_t
tq_amqp_body_encode(uint8_t *buf, size_t cap, uint16_t channel, const void *data, size_t len)
{
	uint8_t *w;

	if (len > UINT32_MAX)
		return -EINVAL;
	if (cap < TQ_AMQP_FRAME_OVERHEAD || cap - TQ_AMQP_FRAME_OVERHEAD < len)
		return -ENOSPC;
	w = put_frame_head(buf, TQ_AMQP_FRAME_BODY, channel, (uint32_t)len);
	if (len)
		memcpy(w, data, len);
	w[len] = TQ_AMQP_FRAME_END;
	return (ssize_t)len + TQ_AMQP_FRAME_OVERHEAD;
}

ssize_t
tq_amqp_heartbeat_encode(uint8_t *buf, size_t cap)
{
	if (cap < TQ_AMQP_FRAME_OVERHEAD)
		return -ENOSPC;
	put_frame_head(buf, TQ_AMQP_FRAME_HEARTBEAT, 0, 0)[0] = TQ_AMQP_FRAME_END;
	return TQ_AMQP_FRAME_OVERHEAD;
}

/* one argument or property, any type but bit */

/* field_len() and field_put() read a table argument as a string: same layout */
_Static_assert(sizeof(struct tq_amqp_table) == sizeof(struct tq_amqp_str) &&
		       offsetof(struct tq_amqp_table, len) == offsetof(struct tq_amqp_str, len),
	       "struct tq_amqp_table and struct tq_amqp_str differ");

/*
 * Decode the field of @type at @p[*@off] into @dst (a member of the argument struct, by its
 * descriptor's offset) and advance *@off. Returns 0 or -TQ_AMQP_E_*.
 */
static int
field_decode(uint8_t type, const uint8_t *p, size_t len, size_t *off, void *dst, size_t *err_off)
{
	size_t o = *off, room = len - o;

	switch (type) {
	case TQ_AMQP_T_OCTET:
		if (room < 1)
			goto truncated;
		memcpy(dst, p + o, 1);
		*off = o + 1;
		return 0;
	case TQ_AMQP_T_SHORT: {
		uint16_t v;

		if (room < 2)
			goto truncated;
		v = tq_amqp_ld16(p + o);
		memcpy(dst, &v, sizeof(v));
		*off = o + 2;
		return 0;
	}
	case TQ_AMQP_T_LONG: {
		uint32_t v;

		if (room < 4)
			goto truncated;
		v = tq_amqp_ld32(p + o);
		memcpy(dst, &v, sizeof(v));
		*off = o + 4;
		return 0;
	}
	case TQ_AMQP_T_LONGLONG:
	case TQ_AMQP_T_TIMESTAMP: {
		uint64_t v;

		if (room < 8)
			goto truncated;
		v = tq_amqp_ld64(p + o);
		memcpy(dst, &v, sizeof(v));
		*off = o + 8;
		return 0;
	}
	case TQ_AMQP_T_SHORTSTR: {
		struct tq_amqp_str s;

		if (room < 1 || room - 1 < p[o])
			goto truncated;
		s.p = p + o + 1;
		s.len = p[o];
		memcpy(dst, &s, sizeof(s));
		*off = o + 1 + s.len;
		return 0;
	}
	case TQ_AMQP_T_LONGSTR: {
		struct tq_amqp_str s;

		if (room < 4 || room - 4 < tq_amqp_ld32(p + o))
			goto truncated;
		s.p = p + o + 4;
		s.len = tq_amqp_ld32(p + o);
		memcpy(dst, &s, sizeof(s));
		*off = o + 4 + s.len;
		return 0;
	}
	case TQ_AMQP_T_TABLE: {
		struct tq_amqp_table t;
		ssize_t ret;

		if (room < 4)
			goto truncated;
		ret = tq_amqp_table_decode(p + o, room, &t, err_off);
		if (ret < 0) {
			*err_off += o;
			return (int)ret;
		}
		memcpy(dst, &t, sizeof(t));
		*off = o + (size_t)ret;
		return 0;
	}
	default: /* bits are the caller's */
		break;
	}
truncated:
	*err_off = o;
	return -TQ_AMQP_E_TRUNCATED;
}

/* Wire length of the field of @type in @src, or -1 when it cannot be sent. */
static int64_t
field_len(uint8_t type, const void *src)
{
	struct tq_amqp_str s;

	switch (type) {
	case TQ_AMQP_T_OCTET:
		return 1;
	case TQ_AMQP_T_SHORT:
		return 2;
	case TQ_AMQP_T_LONG:
		return 4;
	case TQ_AMQP_T_LONGLONG:
	case TQ_AMQP_T_TIMESTAMP:
		return 8;
	case TQ_AMQP_T_SHORTSTR:
		memcpy(&s, src, sizeof(s));
		return s.len > UINT8_MAX ? -1 : 1 + (int64_t)s.len;
	case TQ_AMQP_T_LONGSTR:
	case TQ_AMQP_T_TABLE: /* struct tq_amqp_table has the same layout */
		memcpy(&s, src, sizeof(s));
		return 4 + (int64_t)s.len;
	default:
		return -1;
	}
}

/* Write the field of @type in @src at @w (room checked); returns the next write position. */
static uint8_t *
field_put(uint8_t type, const void *src, uint8_t *w)
{
	struct tq_amqp_str s;
	uint64_t v64;
	uint32_t v32;
	uint16_t v16;

	switch (type) {
	case TQ_AMQP_T_OCTET:
		memcpy(w, src, 1);
		return w + 1;
	case TQ_AMQP_T_SHORT:
		memcpy(&v16, src, sizeof(v16));
		return tq_amqp_st16(w, v16);
	case TQ_AMQP_T_LONG:
		memcpy(&v32, src, sizeof(v32));
		return tq_amqp_st32(w, v32);
	case TQ_AMQP_T_LONGLONG:
	case TQ_AMQP_T_TIMESTAMP:
		memcpy(&v64, src, sizeof(v64));
		return tq_amqp_st64(w, v64);
	case TQ_AMQP_T_SHORTSTR:
		memcpy(&s, src, sizeof(s));
		*w++ = (uint8_t)s.len;
		break;
	case TQ_AMQP_T_LONGSTR:
	case TQ_AMQP_T_TABLE:
		memcpy(&s, src, sizeof(s));
		w = tq_amqp_st32(w, s.len);
		break;
	default:
		return w;
	}
	if (s.len)
		memcpy(w, s.p, s.len);
	return w + s.len;
}

/* methods */

ssize_t
tq_amqp_method_decode(const uint8_t *p, size_t len, struct tq_amqp_method *m, size_t *err_off)
{
	const struct tq_amqp_method_info *mi;
	unsigned int bit = 8; /* next bit in @bits; 8: none left, read an octet */
	uint8_t bits = 0;
	size_t off = METHOD_IDS_LEN;

	if (len < METHOD_IDS_LEN) {
		*err_off = len;
		return -TQ_AMQP_E_METHOD_SHORT;
	}
	mi = tq_amqp_method_find(tq_amqp_ld16(p), tq_amqp_ld16(p + 2));
	if (!mi) {
		bool known_class = tq_amqp_class_find(tq_amqp_ld16(p)) != NULL;

		*err_off = known_class ? 2 : 0;
		return known_class ? -TQ_AMQP_E_UNKNOWN_METHOD : -TQ_AMQP_E_UNKNOWN_CLASS;
	}
	m->info = mi;
	for (unsigned int i = 0; i < mi->nfields; i++) {
		const struct tq_amqp_field_info *fi = &mi->fields[i];
		uint8_t *dst = (uint8_t *)&m->args + fi->offset;
		int ret;

		if (fi->type == TQ_AMQP_T_BIT) {
			bool v;

			if (bit == 8) {
				if (off >= len) {
					*err_off = off;
					return -TQ_AMQP_E_TRUNCATED;
				}
				bits = p[off++];
				bit = 0;
			}
			v = bits >> bit++ & 1;
			memcpy(dst, &v, sizeof(v));
			continue;
		}
		bit = 8; /* any other field ends a run of bits */
		ret = field_decode(fi->type, p, len, &off, dst, err_off);
		if (ret < 0)
			return ret;
	}
	if (off != len) {
		*err_off = off;
		return -TQ_AMQP_E_TRAILING;
	}
	return (ssize_t)len;
}

/* Method payload length (ids and arguments), or -1 when an argument cannot be sent. */
static int64_t
method_payload_len(const struct tq_amqp_method_info *mi, const void *args)
{
	int64_t n = METHOD_IDS_LEN;
	unsigned int bit = 8;

	for (unsigned int i = 0; i < mi->nfields; i++) {
		const struct tq_amqp_field_info *fi = &mi->fields[i];
		int64_t flen;

		if (fi->type == TQ_AMQP_T_BIT) {
			if (bit == 8) {
				n++;
				bit = 0;
			}
			bit++;
			continue;
		}
		bit = 8;
		flen = field_len(fi->type, (const uint8_t *)args + fi->offset);
		if (flen < 0)
			return -1;
		n += flen;
	}
	return n;
}

ssize_t
tq_amqp_method_len(const struct tq_amqp_method_info *mi, const void *args)
{
	int64_t n = method_payload_len(mi, args);

	if (n < 0 || n > UINT32_MAX)
		return -EINVAL;
	return (ssize_t)n + TQ_AMQP_FRAME_OVERHEAD;
}

ssize_t
tq_amqp_method_encode(uint8_t *buf, size_t cap, uint16_t channel,
		      const struct tq_amqp_method_info *mi, const void *args)
{
	ssize_t len = tq_amqp_method_len(mi, args);
	uint8_t *w, *bits_at = NULL;
	unsigned int bit = 8;

	if (len < 0)
		return len;
	if (cap < (size_t)len)
		return -ENOSPC;
	w = put_frame_head(buf, TQ_AMQP_FRAME_METHOD, channel,
			   (uint32_t)(len - TQ_AMQP_FRAME_OVERHEAD));
	w = tq_amqp_st16(w, mi->class_id);
	w = tq_amqp_st16(w, mi->method_id);
	for (unsigned int i = 0; i < mi->nfields; i++) {
		const struct tq_amqp_field_info *fi = &mi->fields[i];
		const uint8_t *src = (const uint8_t *)args + fi->offset;

		if (fi->type == TQ_AMQP_T_BIT) {
			bool v;

			if (bit == 8) {
				bits_at = w++;
				*bits_at = 0;
				bit = 0;
			}
			memcpy(&v, src, sizeof(v));
			*bits_at |= (uint8_t)((v ? 1u : 0u) << bit++);
			continue;
		}
		bit = 8;
		w = field_put(fi->type, src, w);
	}
	*w = TQ_AMQP_FRAME_END;
	return len;
}

/* content headers */

/* The flag bits of the first word that the class's properties use. */
static uint16_t
props_mask(const struct tq_amqp_class_info *ci)
{
	return (uint16_t)(0xffffu << (16 - ci->nprops));
}

ssize_t
tq_amqp_header_decode(const uint8_t *p, size_t len, struct tq_amqp_content_header *h,
		      size_t *err_off)
{
	const struct tq_amqp_class_info *ci;
	uint16_t flags, word, mask;
	size_t off;

	if (len < HEADER_FIXED_LEN) {
		*err_off = len;
		return -TQ_AMQP_E_HEADER_SHORT;
	}
	h->class_id = tq_amqp_ld16(p);
	ci = tq_amqp_class_find(h->class_id);
	if (!ci || h->class_id != TQ_AMQP_CLASS_BASIC) {
		*err_off = 0;
		return -TQ_AMQP_E_HEADER_CLASS;
	}
	h->weight = tq_amqp_ld16(p + 2);
	if (h->weight != 0) {
		*err_off = 2;
		return -TQ_AMQP_E_HEADER_WEIGHT;
	}
	h->body_size = tq_amqp_ld64(p + 4);
	mask = props_mask(ci);
	flags = word = tq_amqp_ld16(p + 12);
	off = 12;
	/* continuation words carry properties 15 and up, which basic does not have */
	for (;;) {
		if (word & ~mask & ~FLAG_CONTINUATION) {
			*err_off = off;
			return -TQ_AMQP_E_HEADER_FLAGS;
		}
		off += 2;
		if (!(word & FLAG_CONTINUATION))
			break;
		if (len - off < 2) {
			*err_off = off;
			return -TQ_AMQP_E_TRUNCATED;
		}
		word = tq_amqp_ld16(p + off);
		mask = 0;
	}
	memset(&h->props, 0, sizeof(h->props));
	h->props.flags = flags & props_mask(ci);
	for (unsigned int i = 0; i < ci->nprops; i++) {
		int ret;

		if (!(flags & (1u << (15 - i))))
			continue;
		ret = field_decode(ci->props[i].type, p, len, &off,
				   (uint8_t *)&h->props + ci->props[i].offset, err_off);
		if (ret < 0)
			return ret;
	}
	if (off != len) {
		*err_off = off;
		return -TQ_AMQP_E_TRAILING;
	}
	return (ssize_t)len;
}

ssize_t
tq_amqp_header_len(const struct tq_amqp_basic_props *props)
{
	const struct tq_amqp_class_info *ci = tq_amqp_class_find(TQ_AMQP_CLASS_BASIC);
	int64_t n = HEADER_FIXED_LEN;

	if (props->flags & ~TQ_AMQP_BASIC_FLAGS_ALL)
		return -EINVAL;
	for (unsigned int i = 0; i < ci->nprops; i++) {
		int64_t flen;

		if (!(props->flags & (1u << (15 - i))))
			continue;
		flen = field_len(ci->props[i].type, (const uint8_t *)props + ci->props[i].offset);
		if (flen < 0)
			return -EINVAL;
		n += flen;
	}
	if (n > UINT32_MAX)
		return -EINVAL;
	return (ssize_t)n + TQ_AMQP_FRAME_OVERHEAD;
}

ssize_t
tq_amqp_header_encode(uint8_t *buf, size_t cap, uint16_t channel, uint64_t body_size,
		      const struct tq_amqp_basic_props *props)
{
	const struct tq_amqp_class_info *ci = tq_amqp_class_find(TQ_AMQP_CLASS_BASIC);
	ssize_t len = tq_amqp_header_len(props);
	uint8_t *w;

	if (len < 0)
		return len;
	if (cap < (size_t)len)
		return -ENOSPC;
	w = put_frame_head(buf, TQ_AMQP_FRAME_HEADER, channel,
			   (uint32_t)(len - TQ_AMQP_FRAME_OVERHEAD));
	w = tq_amqp_st16(w, TQ_AMQP_CLASS_BASIC);
	w = tq_amqp_st16(w, 0); /* weight */
	w = tq_amqp_st64(w, body_size);
	w = tq_amqp_st16(w, props->flags);
	for (unsigned int i = 0; i < ci->nprops; i++)
		if (props->flags & (1u << (15 - i)))
			w = field_put(ci->props[i].type,
				      (const uint8_t *)props + ci->props[i].offset, w);
	*w = TQ_AMQP_FRAME_END;
	return len;
}

/* connection.start */

int
tq_amqp_server_properties(uint8_t *buf, size_t cap, const struct tq_amqp_server_info *si,
			  struct tq_amqp_table *out)
{
	static const char *const capabilities[] = {
		"publisher_confirms",
		"exchange_exchange_bindings",
		"basic.nack",
		"consumer_cancel_notify",
		"connection.blocked",
		"consumer_priorities",
		"authentication_failure_close",
		"per_consumer_qos",
	};
	const struct {
		const char *key, *value;
	} strings[] = {
		{"product", si->product},
		{"version", si->version},
		{"platform", si->platform},
		{"copyright", si->copyright},
		{"information", si->information},
		{"cluster_name", si->cluster_name},
	};
	struct tq_amqp_tb b;

	tq_amqp_tb_init(&b, buf, cap);
	tq_amqp_tb_table_begin(&b, "capabilities");
	for (size_t i = 0; i < sizeof(capabilities) / sizeof(capabilities[0]); i++)
		tq_amqp_tb_bool(&b, capabilities[i], true);
	tq_amqp_tb_table_end(&b);
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		if (strings[i].value)
			tq_amqp_tb_cstr(&b, strings[i].key, strings[i].value);
	return tq_amqp_tb_finish(&b, out);
}

/* errors */

static const struct {
	const char *name;
	const char *text;
	uint16_t reply;
} errors[TQ_AMQP_E_COUNT] = {
	[TQ_AMQP_E_NONE] = {"NONE", "no error", TQ_AMQP_REPLY_SUCCESS},
#define TQ_AMQP_ERR(name, reply, text) [TQ_AMQP_E_##name] = {#name, text, reply},
#include "proto/amqp/tq_amqp_errors.def"
#undef TQ_AMQP_ERR
};

static unsigned int
err_index(int err)
{
	unsigned int e = err < 0 ? 0u - (unsigned int)err : (unsigned int)err;

	return e < TQ_AMQP_E_COUNT ? e : TQ_AMQP_E_NONE;
}

uint16_t
tq_amqp_err_reply(int err)
{
	return errors[err_index(err)].reply;
}

bool
tq_amqp_err_closes_connection(int err)
{
	uint16_t reply = tq_amqp_err_reply(err);

	/* the protocol header's answer closes the socket outright */
	return reply == 0 || tq_amqp_reply_is_hard(reply) == 1;
}

const char *
tq_amqp_err_name(int err)
{
	return errors[err_index(err)].name;
}

const char *
tq_amqp_err_text(int err)
{
	return errors[err_index(err)].text;
}
