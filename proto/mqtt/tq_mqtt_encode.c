/*
 * MQTT encoders: every packet, both directions, into a caller-provided buffer. One code
 * path per packet emits the body twice: counting (sizing) and then storing, so the size
 * computed first and the bytes written cannot disagree.
 */
#include <errno.h>
#include <string.h>

#include "tq_mqtt_codec.h"
#include "tq_mqtt_wire.h"

/* The property block of @pr in packet context @ctx, or nothing below level 5. */
static int
emit_props(struct tq_mqtt_wr *w, uint8_t level, const struct tq_mqtt_props *pr,
	   unsigned int ctx)
{
	long len;

	if (level != TQ_MQTT_LEVEL_5)
		return 0;
	len = tq_mqtt_props_len(pr, ctx);
	if (len < 0)
		return (int)len;
	tq_mqtt_props_write(w, pr, (uint32_t)len);
	return 0;
}

/* True when @pr holds no property to write. */
static bool
props_empty(const struct tq_mqtt_props *pr)
{
	return pr->present == 0;
}

static int
emit_connect(struct tq_mqtt_wr *w, uint8_t level, const struct tq_mqtt_connect *c)
{
	static const struct tq_mqtt_str mqisdp = {(const uint8_t *)"MQIsdp", 6};
	static const struct tq_mqtt_str mqtt = {(const uint8_t *)"MQTT", 4};
	uint8_t f = 0;
	int ret;

	if (c->has_will && c->will.qos > 2)
		return -EINVAL;
	if (c->clean_start)
		f |= 0x02;
	if (c->has_will)
		f |= (uint8_t)(0x04 | c->will.qos << 3 | (c->will.retain ? 0x20 : 0));
	if (c->has_password)
		f |= 0x40;
	if (c->has_username)
		f |= 0x80;
	tq_mqtt_wr_str(w, level == TQ_MQTT_LEVEL_31 ? mqisdp : mqtt);
	tq_mqtt_wr_u8(w, level);
	tq_mqtt_wr_u8(w, f);
	tq_mqtt_wr_u16(w, c->keep_alive);
	if ((ret = emit_props(w, level, &c->props, TQ_MQTT_CONNECT)))
		return ret;
	tq_mqtt_wr_str(w, c->client_id);
	if (c->has_will) {
		if ((ret = emit_props(w, level, &c->will.props, TQ_MQTT_CTX_WILL)))
			return ret;
		tq_mqtt_wr_str(w, c->will.topic);
		tq_mqtt_wr_str(w, c->will.payload);
	}
	if (c->has_username)
		tq_mqtt_wr_str(w, c->username);
	if (c->has_password)
		tq_mqtt_wr_str(w, c->password);
	return 0;
}

static int
emit_connack(struct tq_mqtt_wr *w, uint8_t level, const struct tq_mqtt_connack *c)
{
	tq_mqtt_wr_u8(w, c->session_present ? 1 : 0);
	tq_mqtt_wr_u8(w, c->reason);
	return emit_props(w, level, &c->props, TQ_MQTT_CONNACK);
}

static int
emit_publish(struct tq_mqtt_wr *w, uint8_t level, const struct tq_mqtt_publish *pub,
	     bool with_payload)
{
	int ret;

	if (pub->qos > 2 || (pub->qos && pub->packet_id == 0))
		return -EINVAL;
	tq_mqtt_wr_str(w, pub->topic);
	if (pub->qos)
		tq_mqtt_wr_u16(w, pub->packet_id);
	if ((ret = emit_props(w, level, &pub->props, TQ_MQTT_PUBLISH)))
		return ret;
	if (with_payload) {
		if (pub->payload_len > TQ_MQTT_VBI_MAX)
			return -EINVAL;
		tq_mqtt_wr_bytes(w, pub->payload, pub->payload_len);
	}
	return 0;
}

static int
emit_ack(struct tq_mqtt_wr *w, uint8_t level, uint8_t type, const struct tq_mqtt_ack *a)
{
	if (a->packet_id == 0)
		return -EINVAL;
	tq_mqtt_wr_u16(w, a->packet_id);
	if (level != TQ_MQTT_LEVEL_5 || (a->reason == 0 && props_empty(&a->props)))
		return 0; /* 3.4.2.1: the short form */
	tq_mqtt_wr_u8(w, a->reason);
	if (props_empty(&a->props))
		return 0;
	return emit_props(w, level, &a->props, type);
}

static int
emit_subscribe(struct tq_mqtt_wr *w, uint8_t level, const struct tq_mqtt_subscribe *s)
{
	struct tq_mqtt_sub_iter it;
	struct tq_mqtt_sub sub;
	uint32_t n = 0;
	int ret;

	if (s->packet_id == 0 || s->count == 0)
		return -EINVAL;
	tq_mqtt_wr_u16(w, s->packet_id);
	if ((ret = emit_props(w, level, &s->props, TQ_MQTT_SUBSCRIBE)))
		return ret;
	tq_mqtt_sub_iter_init(&it, level, s);
	while (tq_mqtt_next_sub(&it, &sub)) {
		uint8_t o = sub.qos;

		if (sub.qos > 2 || sub.retain_handling > 2)
			return -EINVAL;
		if (level == TQ_MQTT_LEVEL_5)
			o |= (uint8_t)((sub.no_local ? 0x04 : 0) | (sub.retain_as_published ? 0x08 : 0) |
				       sub.retain_handling << 4);
		tq_mqtt_wr_str(w, sub.filter);
		tq_mqtt_wr_u8(w, o);
		n++;
	}
	return n == s->count ? 0 : -EINVAL;
}

static int
emit_unsubscribe(struct tq_mqtt_wr *w, uint8_t level, const struct tq_mqtt_unsubscribe *u)
{
	struct tq_mqtt_sub_iter it;
	struct tq_mqtt_str f;
	uint32_t n = 0;
	int ret;

	if (u->packet_id == 0 || u->count == 0)
		return -EINVAL;
	tq_mqtt_wr_u16(w, u->packet_id);
	if ((ret = emit_props(w, level, &u->props, TQ_MQTT_UNSUBSCRIBE)))
		return ret;
	tq_mqtt_unsub_iter_init(&it, u);
	while (tq_mqtt_next_unsub(&it, &f)) {
		tq_mqtt_wr_str(w, f);
		n++;
	}
	return n == u->count ? 0 : -EINVAL;
}

static int
emit_suback(struct tq_mqtt_wr *w, uint8_t level, uint8_t type, const struct tq_mqtt_suback *s)
{
	int ret;

	if (s->packet_id == 0)
		return -EINVAL;
	tq_mqtt_wr_u16(w, s->packet_id);
	if (type == TQ_MQTT_UNSUBACK && level != TQ_MQTT_LEVEL_5)
		return 0; /* 3.1.1 3.11.3: no payload */
	if (s->count == 0)
		return -EINVAL;
	if ((ret = emit_props(w, level, &s->props, type)))
		return ret;
	tq_mqtt_wr_bytes(w, s->codes, s->count);
	return 0;
}

static int
emit_disconnect(struct tq_mqtt_wr *w, uint8_t level, uint8_t type,
		const struct tq_mqtt_disconnect *d)
{
	if (level != TQ_MQTT_LEVEL_5 || (d->reason == 0 && props_empty(&d->props)))
		return 0; /* 3.14.2.1, 3.15.2.1: nothing at all */
	tq_mqtt_wr_u8(w, d->reason);
	if (props_empty(&d->props))
		return 0;
	return emit_props(w, level, &d->props, type);
}

/* Fixed header flags of @type (2.1.3); PUBLISH's come from the packet. */
static uint8_t
fixed_flags(uint8_t type, const struct tq_mqtt_publish *pub)
{
	if (type == TQ_MQTT_PUBLISH)
		return (uint8_t)((pub->dup ? 0x08 : 0) | pub->qos << 1 | (pub->retain ? 0x01 : 0));
	return type == TQ_MQTT_PUBREL || type == TQ_MQTT_SUBSCRIBE ||
			       type == TQ_MQTT_UNSUBSCRIBE
		       ? 0x02
		       : 0x00;
}

/* What one encoder call is about. */
struct enc_req {
	uint8_t level;
	uint8_t type;
	const void *msg;     /* the member of struct tq_mqtt_pkt for @type */
	bool header_only;    /* PUBLISH without its payload ... */
	size_t payload_len;  /* ... of this many bytes, counted in the remaining length */
};

static int
emit_body(struct tq_mqtt_wr *w, const struct enc_req *q)
{
	switch (q->type) {
	case TQ_MQTT_CONNECT: return emit_connect(w, q->level, q->msg);
	case TQ_MQTT_CONNACK: return emit_connack(w, q->level, q->msg);
	case TQ_MQTT_PUBLISH: return emit_publish(w, q->level, q->msg, !q->header_only);
	case TQ_MQTT_PUBACK:
	case TQ_MQTT_PUBREC:
	case TQ_MQTT_PUBREL:
	case TQ_MQTT_PUBCOMP: return emit_ack(w, q->level, q->type, q->msg);
	case TQ_MQTT_SUBSCRIBE: return emit_subscribe(w, q->level, q->msg);
	case TQ_MQTT_SUBACK:
	case TQ_MQTT_UNSUBACK: return emit_suback(w, q->level, q->type, q->msg);
	case TQ_MQTT_UNSUBSCRIBE: return emit_unsubscribe(w, q->level, q->msg);
	case TQ_MQTT_PINGREQ:
	case TQ_MQTT_PINGRESP: return 0;
	case TQ_MQTT_DISCONNECT: return emit_disconnect(w, q->level, q->type, q->msg);
	case TQ_MQTT_AUTH:
		if (q->level != TQ_MQTT_LEVEL_5)
			return -EINVAL;
		return emit_disconnect(w, q->level, q->type, q->msg);
	default: return -EINVAL;
	}
}

/* Size (@buf NULL) or write the packet of @q. */
static ssize_t
encode(uint8_t *buf, size_t cap, const struct enc_req *q)
{
	struct tq_mqtt_wr w = {0};
	size_t body, written;
	int ret;

	if (q->level < TQ_MQTT_LEVEL_31 || q->level > TQ_MQTT_LEVEL_5)
		return -EINVAL;
	if ((ret = emit_body(&w, q)))
		return ret;
	if (q->header_only && q->payload_len > TQ_MQTT_VBI_MAX)
		return -EINVAL;
	body = w.n + (q->header_only ? q->payload_len : 0);
	if (body > TQ_MQTT_VBI_MAX)
		return -EINVAL;
	written = 1 + tq_mqtt_vbi_len((uint32_t)body) + w.n;
	if (!buf)
		return (ssize_t)written;
	if (written > cap)
		return -ENOSPC;
	w = (struct tq_mqtt_wr){.p = buf, .cap = cap};
	tq_mqtt_wr_u8(&w, (uint8_t)(q->type << 4 |
				    fixed_flags(q->type, q->type == TQ_MQTT_PUBLISH ? q->msg : NULL)));
	tq_mqtt_wr_vbi(&w, (uint32_t)body);
	(void)emit_body(&w, q);
	return (ssize_t)w.n;
}

static const void *
pkt_member(const struct tq_mqtt_pkt *pkt)
{
	switch (pkt->type) {
	case TQ_MQTT_CONNECT: return &pkt->connect;
	case TQ_MQTT_CONNACK: return &pkt->connack;
	case TQ_MQTT_PUBLISH: return &pkt->publish;
	case TQ_MQTT_PUBACK:
	case TQ_MQTT_PUBREC:
	case TQ_MQTT_PUBREL:
	case TQ_MQTT_PUBCOMP: return &pkt->ack;
	case TQ_MQTT_SUBSCRIBE: return &pkt->subscribe;
	case TQ_MQTT_SUBACK:
	case TQ_MQTT_UNSUBACK: return &pkt->suback;
	case TQ_MQTT_UNSUBSCRIBE: return &pkt->unsubscribe;
	default: return &pkt->disconnect;
	}
}

ssize_t
tq_mqtt_encode(uint8_t *buf, size_t cap, uint8_t level, const struct tq_mqtt_pkt *pkt)
{
	struct enc_req q = {.level = level, .type = pkt->type, .msg = pkt_member(pkt)};

	if (!buf)
		return -ENOSPC;
	return encode(buf, cap, &q);
}

ssize_t
tq_mqtt_encode_len(uint8_t level, const struct tq_mqtt_pkt *pkt)
{
	struct enc_req q = {.level = level, .type = pkt->type, .msg = pkt_member(pkt)};

	return encode(NULL, 0, &q);
}

ssize_t
tq_mqtt_encode_publish_header(uint8_t *buf, size_t cap, uint8_t level,
			      const struct tq_mqtt_publish *pub, size_t payload_len)
{
	struct enc_req q = {.level = level, .type = TQ_MQTT_PUBLISH, .msg = pub,
			    .header_only = true, .payload_len = payload_len};

	if (!buf)
		return -ENOSPC;
	return encode(buf, cap, &q);
}

ssize_t
tq_mqtt_publish_header_len(uint8_t level, const struct tq_mqtt_publish *pub, size_t payload_len)
{
	struct enc_req q = {.level = level, .type = TQ_MQTT_PUBLISH, .msg = pub,
			    .header_only = true, .payload_len = payload_len};

	return encode(NULL, 0, &q);
}

ssize_t
tq_mqtt_encode_ack(uint8_t *buf, size_t cap, uint8_t level, uint8_t type,
		   const struct tq_mqtt_ack *ack)
{
	struct enc_req q = {.level = level, .type = type, .msg = ack};

	if (!buf)
		return -ENOSPC;
	if (type < TQ_MQTT_PUBACK || type > TQ_MQTT_PUBCOMP)
		return -EINVAL;
	return encode(buf, cap, &q);
}
