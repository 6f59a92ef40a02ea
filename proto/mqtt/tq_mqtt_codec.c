/*
 * MQTT framing, decoders for every packet type, UTF-8 and topic checks, and the error
 * table. Section numbers are those of MQTT 5.0 unless marked 3.1.1.
 */
#include <string.h>

#include "tq_mqtt_codec.h"
#include "tq_mqtt_wire.h"

struct err_info {
	const char *name;
	uint8_t reason;
	uint8_t v3_connack;
};

static const struct err_info err_table[TQ_MQTT_E_COUNT] = {
	[TQ_MQTT_E_NONE] = {"NONE", 0x00, 0x00},
#define TQ_MQTT_ERR(n, reason, v3, text) [TQ_MQTT_E_##n] = {#n, reason, v3},
#include "tq_mqtt_errors.def"
#undef TQ_MQTT_ERR
};

static const struct err_info *
err_lookup(int err)
{
	if (err < 0)
		err = -err;
	return err > 0 && err < TQ_MQTT_E_COUNT ? &err_table[err] : NULL;
}

uint8_t
tq_mqtt_err_reason(int err)
{
	const struct err_info *e = err_lookup(err);

	return e ? e->reason : 0x80;
}

uint8_t
tq_mqtt_err_v3_connack(int err)
{
	const struct err_info *e = err_lookup(err);

	return e ? e->v3_connack : 0x00;
}

const char *
tq_mqtt_err_name(int err)
{
	const struct err_info *e = err_lookup(err);

	return e ? e->name : "?";
}

int
tq_mqtt_utf8_check(const uint8_t *p, size_t len, size_t *bad_off)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n;
		uint32_t cp, min;

		if (c < 0x80) {
			if (c == 0) {
				if (bad_off)
					*bad_off = i;
				return -TQ_MQTT_E_UTF8_NUL;
			}
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			goto bad; /* continuation byte, C0/C1 (overlong) or F5..FF */
		}
		if (len - i <= n)
			goto bad;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		/* overlong, surrogate halves (MQTT-1.5.4-1), beyond Unicode */
		if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			goto bad;
		i += n + 1;
	}
	return 0;
bad:
	if (bad_off)
		*bad_off = i;
	return -TQ_MQTT_E_BAD_UTF8;
}

/* Topic name rules apart from UTF-8: non-empty, no wildcards (4.7.1). */
static bool
topic_syntax_ok(const uint8_t *p, size_t len)
{
	if (len == 0)
		return false;
	return !memchr(p, '+', len) && !memchr(p, '#', len);
}

/* Topic filter rules apart from UTF-8 (4.7.1.2, 4.7.1.3). */
static bool
filter_syntax_ok(const uint8_t *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool starts_level = i == 0 || p[i - 1] == '/';
		bool ends_level = i + 1 == len || p[i + 1] == '/';

		if (p[i] == '+' && !(starts_level && ends_level))
			return false;
		if (p[i] == '#' && !(starts_level && i + 1 == len))
			return false;
	}
	return true;
}

bool
tq_mqtt_topic_valid(const uint8_t *p, size_t len)
{
	return len <= UINT16_MAX && topic_syntax_ok(p, len) && !tq_mqtt_utf8_check(p, len, NULL);
}

bool
tq_mqtt_filter_valid(const uint8_t *p, size_t len)
{
	return len <= UINT16_MAX && filter_syntax_ok(p, len) && !tq_mqtt_utf8_check(p, len, NULL);
}

int
tq_mqtt_payload_format_ok(const struct tq_mqtt_props *props, const uint8_t *payload,
			  size_t len)
{
	if (!(props->present & TQ_MQTT_PBIT(TQ_MQTT_PROP_PAYLOAD_FORMAT)) ||
	    props->payload_format != 1)
		return 0;
	/* 5.0 1.5.4 forbids U+0000 in UTF-8 strings; the payload is "UTF-8 encoded character
	 * data", for which the same definition holds */
	return tq_mqtt_utf8_check(payload, len, NULL) ? -TQ_MQTT_E_PAYLOAD_FORMAT : 0;
}

int
tq_mqtt_frame(const uint8_t *p, size_t len, uint32_t max_packet_size,
	      struct tq_mqtt_fixed *hdr)
{
	uint32_t rl = 0;
	uint64_t total;

	memset(hdr, 0, sizeof(*hdr));
	if (len < 1)
		return TQ_MQTT_NEED_MORE;
	hdr->type = p[0] >> 4;
	hdr->flags = p[0] & 0x0f;
	for (unsigned int i = 0; i < 4; i++) {
		uint8_t b;

		if (len < 2 + i)
			return TQ_MQTT_NEED_MORE;
		b = p[1 + i];
		rl |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			hdr->hdr_len = (uint8_t)(2 + i);
			hdr->vbi_minimal = i == 0 || b != 0;
			goto length_known;
		}
	}
	hdr->err_off = 4; /* the 4th length byte says a 5th follows (1.5.5) */
	return -TQ_MQTT_E_BAD_VBI;
length_known:
	hdr->remaining_len = rl;
	total = (uint64_t)hdr->hdr_len + rl;
	if (max_packet_size && total > max_packet_size) {
		hdr->err_off = 1;
		return -TQ_MQTT_E_TOO_LARGE;
	}
	if (len < total)
		return TQ_MQTT_NEED_MORE;
	return (int)total;
}

/* A topic name field (3.3.2.1), UTF-8 checked; empty allowed at level 5 (alias). */
static int
rd_topic(struct tq_mqtt_rd *r, struct tq_mqtt_str *t)
{
	size_t at = r->pos;
	int ret = tq_mqtt_rd_str(r, t);

	if (ret)
		return ret;
	if (t->len == 0 && r->level == TQ_MQTT_LEVEL_5)
		return 0;
	if (!topic_syntax_ok(t->p, t->len))
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_TOPIC_NAME);
	return 0;
}

static int
rd_packet_id(struct tq_mqtt_rd *r, uint16_t *id)
{
	size_t at = r->pos;
	int ret = tq_mqtt_rd_u16(r, id);

	if (!ret && *id == 0)
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PACKET_ID_ZERO);
	return ret;
}

static int
rd_end(struct tq_mqtt_rd *r)
{
	return r->pos == r->end ? 0 : tq_mqtt_rd_fail(r, r->pos, TQ_MQTT_E_TRAILING);
}

static int
rd_props(struct tq_mqtt_rd *r, unsigned int ctx, struct tq_mqtt_props *pr)
{
	if (r->level != TQ_MQTT_LEVEL_5) {
		memset(pr, 0, sizeof(*pr));
		return 0;
	}
	return tq_mqtt_props_decode(r, ctx, pr);
}

/* Reason codes each packet may carry (5.0 2.4 and each packet's section). */
static bool
reason_ok(uint8_t type, uint8_t level, uint8_t rc)
{
	static const uint8_t connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
					  0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97,
					  0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f};
	static const uint8_t puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
	static const uint8_t pubrel[] = {0x00, 0x92};
	static const uint8_t suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
					 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2};
	static const uint8_t unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91};
	static const uint8_t disconnect[] = {
		0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94,
		0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2};
	static const uint8_t auth[] = {0x00, 0x18, 0x19};
	const uint8_t *set;
	size_t n;

	if (level != TQ_MQTT_LEVEL_5) {
		if (type == TQ_MQTT_CONNACK)
			return rc <= 5; /* 3.1.1 table 3.1 */
		if (type == TQ_MQTT_SUBACK)
			return rc <= 2 || rc == 0x80;
		return rc == 0;
	}
	switch (type) {
	case TQ_MQTT_CONNACK: set = connack; n = sizeof(connack); break;
	case TQ_MQTT_PUBACK:
	case TQ_MQTT_PUBREC: set = puback; n = sizeof(puback); break;
	case TQ_MQTT_PUBREL:
	case TQ_MQTT_PUBCOMP: set = pubrel; n = sizeof(pubrel); break;
	case TQ_MQTT_SUBACK: set = suback; n = sizeof(suback); break;
	case TQ_MQTT_UNSUBACK: set = unsuback; n = sizeof(unsuback); break;
	case TQ_MQTT_DISCONNECT: set = disconnect; n = sizeof(disconnect); break;
	case TQ_MQTT_AUTH: set = auth; n = sizeof(auth); break;
	default: return false;
	}
	return memchr(set, rc, n) != NULL;
}

static int
rd_reason(struct tq_mqtt_rd *r, uint8_t type, uint8_t *rc)
{
	size_t at = r->pos;
	int ret = tq_mqtt_rd_u8(r, rc);

	if (!ret && !reason_ok(type, r->level, *rc))
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_REASON_CODE);
	return ret;
}

static int
decode_connect(struct tq_mqtt_rd *r, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_connect *c = &pkt->connect;
	bool mqtt, mqisdp;
	size_t at;
	uint8_t f, will_qos;
	int ret;

	memset(c, 0, sizeof(*c));
	r->level = pkt->level = 0; /* not known yet: every level checks strings the same */
	at = r->pos;
	if ((ret = tq_mqtt_rd_str(r, &c->protocol_name)))
		return ret;
	/* 3.1.2.1; 3.1 uses "MQIsdp" */
	mqtt = c->protocol_name.len == 4 && !memcmp(c->protocol_name.p, "MQTT", 4);
	mqisdp = c->protocol_name.len == 6 && !memcmp(c->protocol_name.p, "MQIsdp", 6);

	if (!mqtt && !mqisdp)
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PROTOCOL_NAME);
	at = r->pos;
	if ((ret = tq_mqtt_rd_u8(r, &c->level)))
		return ret;
	if (mqisdp ? c->level != TQ_MQTT_LEVEL_31
		   : c->level != TQ_MQTT_LEVEL_311 && c->level != TQ_MQTT_LEVEL_5)
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PROTOCOL_VERSION);
	r->level = pkt->level = c->level;
	at = r->pos;
	if ((ret = tq_mqtt_rd_u8(r, &f)))
		return ret;
	c->flags = f;
	if (f & 0x01) /* MQTT-3.1.2-3 */
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_CONNECT_RESERVED);
	c->clean_start = f & 0x02;
	c->has_will = f & 0x04;
	will_qos = (f >> 3) & 3;
	c->will.retain = f & 0x20;
	c->has_password = f & 0x40;
	c->has_username = f & 0x80;
	if (!c->has_will && (will_qos || c->will.retain)) /* MQTT-3.1.2-11, -13 */
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_WILL_FLAGS);
	if (will_qos == 3) /* MQTT-3.1.2-12 */
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_BAD_QOS);
	c->will.qos = will_qos;
	/* 3.1.1 MQTT-3.1.2-22; 5.0 allows a password alone */
	if (c->level != TQ_MQTT_LEVEL_5 && c->has_password && !c->has_username)
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_PASSWORD_NO_USER);
	if ((ret = tq_mqtt_rd_u16(r, &c->keep_alive)))
		return ret;
	if ((ret = rd_props(r, TQ_MQTT_CONNECT, &c->props)))
		return ret;
	at = r->pos;
	if ((ret = tq_mqtt_rd_str(r, &c->client_id)))
		return ret;
	/* 3.1: 1..23 characters; 3.1.1 MQTT-3.1.3-7, -8: empty needs a clean session; 5.0
	 * assigns one (3.1.3.1). Longer ids and other characters are the session's policy. */
	if (c->client_id.len == 0 &&
	    (c->level == TQ_MQTT_LEVEL_31 || (c->level == TQ_MQTT_LEVEL_311 && !c->clean_start)))
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_CLIENT_ID);
	if (c->has_will) {
		if ((ret = rd_props(r, TQ_MQTT_CTX_WILL, &c->will.props)))
			return ret;
		at = r->pos;
		if ((ret = tq_mqtt_rd_str(r, &c->will.topic)))
			return ret;
		if (!topic_syntax_ok(c->will.topic.p, c->will.topic.len)) /* MQTT-3.1.3-11 */
			return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_TOPIC_NAME);
		if ((ret = tq_mqtt_rd_bin(r, &c->will.payload)))
			return ret;
	}
	if (c->has_username && (ret = tq_mqtt_rd_str(r, &c->username)))
		return ret;
	if (c->has_password && (ret = tq_mqtt_rd_bin(r, &c->password)))
		return ret;
	return rd_end(r);
}

static int
decode_connack(struct tq_mqtt_rd *r, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_connack *c = &pkt->connack;
	size_t at = r->pos;
	uint8_t f;
	int ret;

	memset(c, 0, sizeof(*c));
	if ((ret = tq_mqtt_rd_u8(r, &f)))
		return ret;
	if (f & 0xfe) /* 3.2.2.1: reserved */
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_CONNACK_FLAGS);
	c->session_present = f & 1;
	if ((ret = rd_reason(r, TQ_MQTT_CONNACK, &c->reason)))
		return ret;
	if (c->session_present && c->reason) /* MQTT-3.2.2-6; 3.1.1 MQTT-3.2.2-4 */
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_CONNACK_FLAGS);
	if ((ret = rd_props(r, TQ_MQTT_CONNACK, &c->props)))
		return ret;
	return rd_end(r);
}

static int
decode_publish(struct tq_mqtt_rd *r, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_publish *pub = &pkt->publish;
	size_t topic_at = r->pos;
	int ret;

	memset(pub, 0, sizeof(*pub));
	pub->dup = pkt->flags & 0x08;
	pub->qos = (pkt->flags >> 1) & 3;
	pub->retain = pkt->flags & 0x01;
	if (pub->qos == 3) /* MQTT-3.3.1-4 */
		return tq_mqtt_rd_fail(r, 0, TQ_MQTT_E_BAD_QOS);
	if (pub->dup && pub->qos == 0) /* MQTT-3.3.1-2 */
		return tq_mqtt_rd_fail(r, 0, TQ_MQTT_E_BAD_FLAGS);
	if ((ret = rd_topic(r, &pub->topic)))
		return ret;
	if (pub->qos && (ret = rd_packet_id(r, &pub->packet_id)))
		return ret;
	if ((ret = rd_props(r, TQ_MQTT_PUBLISH, &pub->props)))
		return ret;
	/* 3.3.2.1: an empty topic needs a topic alias */
	if (pub->topic.len == 0 && !(pub->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_TOPIC_ALIAS)))
		return tq_mqtt_rd_fail(r, topic_at, TQ_MQTT_E_NO_TOPIC);
	pub->payload = r->p + r->pos;
	pub->payload_len = r->end - r->pos;
	return 0;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 .. 3.7) */
static int
decode_ack(struct tq_mqtt_rd *r, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_ack *a = &pkt->ack;
	int ret;

	memset(a, 0, sizeof(*a));
	if ((ret = rd_packet_id(r, &a->packet_id)))
		return ret;
	/* 5.0: reason and properties may be left out (3.4.2.1) */
	if (r->level == TQ_MQTT_LEVEL_5 && tq_mqtt_rd_left(r) > 0) {
		if ((ret = rd_reason(r, pkt->type, &a->reason)))
			return ret;
		if (tq_mqtt_rd_left(r) > 0 && (ret = rd_props(r, pkt->type, &a->props)))
			return ret;
	}
	return rd_end(r);
}

/* The options byte of a subscription (3.8.3.1; 3.1.1: QoS only). */
static int
rd_sub_options(struct tq_mqtt_rd *r, struct tq_mqtt_sub *s)
{
	size_t at = r->pos;
	uint8_t o;
	int ret = tq_mqtt_rd_u8(r, &o);

	if (ret)
		return ret;
	if (o & (r->level == TQ_MQTT_LEVEL_5 ? 0xc0 : 0xfc)) /* MQTT-3.8.3-5; 3.1.1 -4 */
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_SUB_RESERVED);
	s->qos = o & 3;
	if (s->qos == 3)
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_BAD_QOS);
	s->no_local = o & 0x04;
	s->retain_as_published = o & 0x08;
	s->retain_handling = (o >> 4) & 3;
	if (s->retain_handling == 3)
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_RETAIN_HANDLING);
	return 0;
}

#define SHARE_PREFIX "$share/"
#define SHARE_PREFIX_LEN (sizeof(SHARE_PREFIX) - 1)

/* A topic filter field: UTF-8, wildcards in place; at 5.0 a shared one well formed
 * (4.8.2: "$share/" ShareName "/" filter, ShareName without '/', '+', '#'). */
static int
rd_filter(struct tq_mqtt_rd *r, struct tq_mqtt_str *f, bool *shared)
{
	size_t at = r->pos;
	int ret = tq_mqtt_rd_str(r, f);

	if (ret)
		return ret;
	if (!filter_syntax_ok(f->p, f->len))
		return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_TOPIC_FILTER);
	*shared = false;
	if (r->level == TQ_MQTT_LEVEL_5 && f->len >= SHARE_PREFIX_LEN &&
	    !memcmp(f->p, SHARE_PREFIX, SHARE_PREFIX_LEN)) {
		const uint8_t *name = f->p + SHARE_PREFIX_LEN;
		size_t rest = f->len - SHARE_PREFIX_LEN, n = 0;

		while (n < rest && name[n] != '/' && name[n] != '+' && name[n] != '#')
			n++;
		if (n == 0 || n + 1 >= rest || name[n] != '/')
			return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_TOPIC_FILTER);
		*shared = true;
	}
	return 0;
}

static int
decode_subscribe(struct tq_mqtt_rd *r, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_subscribe *s = &pkt->subscribe;
	int ret;

	memset(s, 0, sizeof(*s));
	if ((ret = rd_packet_id(r, &s->packet_id)))
		return ret;
	if ((ret = rd_props(r, TQ_MQTT_SUBSCRIBE, &s->props)))
		return ret;
	s->raw = r->p + r->pos;
	s->raw_len = (uint32_t)tq_mqtt_rd_left(r);
	if (s->raw_len == 0) /* MQTT-3.8.3-2; 3.1.1 MQTT-3.8.3-3 */
		return tq_mqtt_rd_fail(r, r->pos, TQ_MQTT_E_NO_FILTERS);
	while (tq_mqtt_rd_left(r) > 0) {
		struct tq_mqtt_sub sub;
		size_t at = r->pos;
		bool shared;

		if ((ret = rd_filter(r, &sub.filter, &shared)))
			return ret;
		if ((ret = rd_sub_options(r, &sub)))
			return ret;
		if (shared && sub.no_local)
			return tq_mqtt_rd_fail(r, at, TQ_MQTT_E_SHARED_NO_LOCAL);
		s->count++;
	}
	return 0;
}

static int
decode_unsubscribe(struct tq_mqtt_rd *r, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_unsubscribe *u = &pkt->unsubscribe;
	int ret;

	memset(u, 0, sizeof(*u));
	if ((ret = rd_packet_id(r, &u->packet_id)))
		return ret;
	if ((ret = rd_props(r, TQ_MQTT_UNSUBSCRIBE, &u->props)))
		return ret;
	u->raw = r->p + r->pos;
	u->raw_len = (uint32_t)tq_mqtt_rd_left(r);
	if (u->raw_len == 0) /* MQTT-3.10.3-2 */
		return tq_mqtt_rd_fail(r, r->pos, TQ_MQTT_E_NO_FILTERS);
	while (tq_mqtt_rd_left(r) > 0) {
		struct tq_mqtt_str f;
		bool shared;

		if ((ret = rd_filter(r, &f, &shared)))
			return ret;
		u->count++;
	}
	return 0;
}

/* SUBACK and UNSUBACK (3.9, 3.11): packet id, 5.0 properties, one code per filter. */
static int
decode_suback(struct tq_mqtt_rd *r, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_suback *s = &pkt->suback;
	int ret;

	memset(s, 0, sizeof(*s));
	if ((ret = rd_packet_id(r, &s->packet_id)))
		return ret;
	if (pkt->type == TQ_MQTT_UNSUBACK && r->level != TQ_MQTT_LEVEL_5)
		return rd_end(r); /* 3.1.1: no payload */
	if ((ret = rd_props(r, pkt->type, &s->props)))
		return ret;
	s->codes = r->p + r->pos;
	s->count = (uint32_t)tq_mqtt_rd_left(r);
	if (s->count == 0)
		return tq_mqtt_rd_fail(r, r->pos, TQ_MQTT_E_NO_FILTERS);
	while (tq_mqtt_rd_left(r) > 0) {
		uint8_t rc;

		if ((ret = rd_reason(r, pkt->type, &rc)))
			return ret;
	}
	return 0;
}

/* DISCONNECT and AUTH (3.14, 3.15): at 5.0 the reason code and properties are optional. */
static int
decode_disconnect(struct tq_mqtt_rd *r, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_disconnect *d = &pkt->disconnect;
	int ret;

	memset(d, 0, sizeof(*d));
	if (r->level != TQ_MQTT_LEVEL_5)
		return rd_end(r);
	if (tq_mqtt_rd_left(r) > 0) {
		if ((ret = rd_reason(r, pkt->type, &d->reason)))
			return ret;
		if (tq_mqtt_rd_left(r) > 0 && (ret = rd_props(r, pkt->type, &d->props)))
			return ret;
		if ((ret = rd_end(r)))
			return ret;
		/* MQTT-3.15.2-1 (a Protocol Error to omit the method) unless the whole variable
		 * header was left out (3.15.2.1: reason 0x00 and no properties) */
		if (pkt->type == TQ_MQTT_AUTH &&
		    !(d->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_METHOD)))
			return tq_mqtt_rd_fail(r, pkt->hdr_len, TQ_MQTT_E_NO_AUTH_METHOD);
	}
	return 0;
}

/* Fixed header flags each type must carry (2.1.3); PUBLISH's are its own. */
static const uint8_t required_flags[16] = {
	[TQ_MQTT_PUBREL] = 0x2, [TQ_MQTT_SUBSCRIBE] = 0x2, [TQ_MQTT_UNSUBSCRIBE] = 0x2,
};

int
tq_mqtt_decode(const uint8_t *p, size_t len, uint8_t level, struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_fixed hdr;
	struct tq_mqtt_rd r;
	int total, ret;

	pkt->err_off = 0;
	pkt->level = level;
	total = tq_mqtt_frame(p, len, 0, &hdr);
	pkt->type = hdr.type;
	pkt->flags = hdr.flags;
	pkt->hdr_len = hdr.hdr_len;
	pkt->remaining_len = hdr.remaining_len;
	if (total <= 0) {
		pkt->err_off = hdr.err_off;
		return total;
	}
	r = (struct tq_mqtt_rd){.p = p, .pos = hdr.hdr_len, .end = (size_t)total, .level = level};
	if (hdr.type == 0 || (hdr.type == TQ_MQTT_AUTH && level != TQ_MQTT_LEVEL_5)) {
		pkt->err_off = 0;
		return -TQ_MQTT_E_BAD_TYPE;
	}
	if (hdr.type != TQ_MQTT_PUBLISH && hdr.flags != required_flags[hdr.type]) {
		pkt->err_off = 0;
		return -TQ_MQTT_E_BAD_FLAGS;
	}
	if (hdr.type != TQ_MQTT_CONNECT && level != TQ_MQTT_LEVEL_31 &&
	    level != TQ_MQTT_LEVEL_311 && level != TQ_MQTT_LEVEL_5) {
		pkt->err_off = 0;
		return -TQ_MQTT_E_PROTOCOL; /* no CONNECT yet: the session's error */
	}
	switch (hdr.type) {
	case TQ_MQTT_CONNECT: ret = decode_connect(&r, pkt); break;
	case TQ_MQTT_CONNACK: ret = decode_connack(&r, pkt); break;
	case TQ_MQTT_PUBLISH: ret = decode_publish(&r, pkt); break;
	case TQ_MQTT_PUBACK:
	case TQ_MQTT_PUBREC:
	case TQ_MQTT_PUBREL:
	case TQ_MQTT_PUBCOMP: ret = decode_ack(&r, pkt); break;
	case TQ_MQTT_SUBSCRIBE: ret = decode_subscribe(&r, pkt); break;
	case TQ_MQTT_SUBACK:
	case TQ_MQTT_UNSUBACK: ret = decode_suback(&r, pkt); break;
	case TQ_MQTT_UNSUBSCRIBE: ret = decode_unsubscribe(&r, pkt); break;
	case TQ_MQTT_PINGREQ:
	case TQ_MQTT_PINGRESP: ret = rd_end(&r); break;
	default: ret = decode_disconnect(&r, pkt); break; /* DISCONNECT, AUTH */
	}
	if (ret) {
		pkt->err_off = r.err_off;
		return ret;
	}
	/* MQTT-1.5.5-1 for the remaining length too, once the level is known */
	if (!hdr.vbi_minimal && pkt->level == TQ_MQTT_LEVEL_5) {
		pkt->err_off = 1;
		return -TQ_MQTT_E_BAD_VBI;
	}
	return total;
}

void
tq_mqtt_sub_iter_init(struct tq_mqtt_sub_iter *it, uint8_t level,
		      const struct tq_mqtt_subscribe *s)
{
	memset(it, 0, sizeof(*it));
	it->raw = s->raw;
	it->raw_len = s->raw_len;
	it->count = s->count;
	it->level = level;
	it->subs = s->subs;
}

void
tq_mqtt_unsub_iter_init(struct tq_mqtt_sub_iter *it, const struct tq_mqtt_unsubscribe *u)
{
	memset(it, 0, sizeof(*it));
	it->raw = u->raw;
	it->raw_len = u->raw_len;
	it->count = u->count;
	it->filters = u->filters;
}

/* The next filter of a validated raw list; @opts: an options byte follows each. */
static bool
raw_filter_next(struct tq_mqtt_sub_iter *it, struct tq_mqtt_str *f, bool opts)
{
	uint32_t need;

	if (!it->raw || it->idx >= it->count || it->raw_len - it->pos < 2)
		return false;
	f->len = (uint16_t)(it->raw[it->pos] << 8 | it->raw[it->pos + 1]);
	need = 2u + f->len + (opts ? 1u : 0u);
	if (it->raw_len - it->pos < need)
		return false;
	f->p = it->raw + it->pos + 2;
	it->pos += need;
	it->idx++;
	return true;
}

bool
tq_mqtt_next_sub(struct tq_mqtt_sub_iter *it, struct tq_mqtt_sub *out)
{
	uint8_t o;

	if (it->subs) {
		if (it->idx >= it->count)
			return false;
		*out = it->subs[it->idx++];
		return true;
	}
	if (!raw_filter_next(it, &out->filter, true))
		return false;
	o = it->raw[it->pos - 1];
	out->qos = o & 3;
	out->no_local = it->level == TQ_MQTT_LEVEL_5 && (o & 0x04);
	out->retain_as_published = it->level == TQ_MQTT_LEVEL_5 && (o & 0x08);
	out->retain_handling = it->level == TQ_MQTT_LEVEL_5 ? (o >> 4) & 3 : 0;
	return true;
}

bool
tq_mqtt_next_unsub(struct tq_mqtt_sub_iter *it, struct tq_mqtt_str *out)
{
	if (it->filters) {
		if (it->idx >= it->count)
			return false;
		*out = it->filters[it->idx++];
		return true;
	}
	return raw_filter_next(it, out, false);
}
