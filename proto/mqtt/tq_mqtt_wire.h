/*
 * Internal to the MQTT codec: a bounds-checked reader over one framed packet and a writer
 * that either counts (sizing pass) or stores (within its capacity). Not for other modules.
 */
#ifndef TQ_MQTT_WIRE_H
#define TQ_MQTT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tq_mqtt_codec.h"

/* Reader: @p is the packet start, reads stay within [pos, end); errors set err_off. */
struct tq_mqtt_rd {
	const uint8_t *p;
	size_t pos;
	size_t end;
	size_t err_off;
	uint8_t level;
};

static inline int
tq_mqtt_rd_fail(struct tq_mqtt_rd *r, size_t off, int err)
{
	r->err_off = off;
	return -err;
}

static inline size_t
tq_mqtt_rd_left(const struct tq_mqtt_rd *r)
{
	return r->end - r->pos;
}

static inline int
tq_mqtt_rd_u8(struct tq_mqtt_rd *r, uint8_t *v)
{
	if (tq_mqtt_rd_left(r) < 1)
		return tq_mqtt_rd_fail(r, r->pos, TQ_MQTT_E_TRUNCATED);
	*v = r->p[r->pos++];
	return 0;
}

static inline int
tq_mqtt_rd_u16(struct tq_mqtt_rd *r, uint16_t *v)
{
	if (tq_mqtt_rd_left(r) < 2)
		return tq_mqtt_rd_fail(r, r->pos, TQ_MQTT_E_TRUNCATED);
	*v = (uint16_t)(r->p[r->pos] << 8 | r->p[r->pos + 1]);
	r->pos += 2;
	return 0;
}

static inline int
tq_mqtt_rd_u32(struct tq_mqtt_rd *r, uint32_t *v)
{
	const uint8_t *q = r->p + r->pos;

	if (tq_mqtt_rd_left(r) < 4)
		return tq_mqtt_rd_fail(r, r->pos, TQ_MQTT_E_TRUNCATED);
	*v = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
	r->pos += 4;
	return 0;
}

/* Variable byte integer; at level 5 it must use the fewest bytes (MQTT-1.5.5-1). */
static inline int
tq_mqtt_rd_vbi(struct tq_mqtt_rd *r, uint32_t *v)
{
	size_t start = r->pos;
	uint32_t val = 0;

	for (unsigned int i = 0; i < 4; i++) {
		uint8_t b;

		if (tq_mqtt_rd_left(r) < 1)
			return tq_mqtt_rd_fail(r, start, TQ_MQTT_E_TRUNCATED);
		b = r->p[r->pos++];
		val |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (i > 0 && b == 0 && r->level == TQ_MQTT_LEVEL_5)
				return tq_mqtt_rd_fail(r, start, TQ_MQTT_E_BAD_VBI);
			*v = val;
			return 0;
		}
	}
	return tq_mqtt_rd_fail(r, r->pos - 1, TQ_MQTT_E_BAD_VBI);
}

/* Binary data: 2-byte length then that many bytes, all before @end. */
static inline int
tq_mqtt_rd_bin(struct tq_mqtt_rd *r, struct tq_mqtt_str *s)
{
	size_t start = r->pos;
	uint16_t n;
	int ret = tq_mqtt_rd_u16(r, &n);

	if (ret)
		return ret;
	if (tq_mqtt_rd_left(r) < n)
		return tq_mqtt_rd_fail(r, start, TQ_MQTT_E_TRUNCATED);
	s->p = r->p + r->pos;
	s->len = n;
	r->pos += n;
	return 0;
}

/* A UTF-8 encoded string: binary data that passes tq_mqtt_utf8_check(). */
static inline int
tq_mqtt_rd_str(struct tq_mqtt_rd *r, struct tq_mqtt_str *s)
{
	size_t bad;
	int ret = tq_mqtt_rd_bin(r, s);

	if (ret)
		return ret;
	ret = tq_mqtt_utf8_check(s->p, s->len, &bad);
	if (ret)
		r->err_off = (size_t)(s->p - r->p) + bad;
	return ret;
}

/* Writer: counts when p is NULL; stores only within cap (the caller sized it first). */
struct tq_mqtt_wr {
	uint8_t *p;
	size_t cap;
	size_t n;
};

static inline void
tq_mqtt_wr_bytes(struct tq_mqtt_wr *w, const void *src, size_t len)
{
	if (w->p && len && w->n <= w->cap && len <= w->cap - w->n)
		memcpy(w->p + w->n, src, len);
	w->n += len;
}

static inline void
tq_mqtt_wr_u8(struct tq_mqtt_wr *w, uint8_t v)
{
	tq_mqtt_wr_bytes(w, &v, 1);
}

static inline void
tq_mqtt_wr_u16(struct tq_mqtt_wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	tq_mqtt_wr_bytes(w, b, 2);
}

static inline void
tq_mqtt_wr_u32(struct tq_mqtt_wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	tq_mqtt_wr_bytes(w, b, 4);
}

static inline size_t
tq_mqtt_vbi_len(uint32_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/* @v <= TQ_MQTT_VBI_MAX (the caller checks) */
static inline void
tq_mqtt_wr_vbi(struct tq_mqtt_wr *w, uint32_t v)
{
	uint8_t b[4];
	size_t n = 0;

	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	tq_mqtt_wr_bytes(w, b, n);
}

static inline void
tq_mqtt_wr_str(struct tq_mqtt_wr *w, struct tq_mqtt_str s)
{
	tq_mqtt_wr_u16(w, s.len);
	tq_mqtt_wr_bytes(w, s.p, s.len);
}

/* Property contexts: a packet type, or the will properties of a CONNECT. */
#define TQ_MQTT_CTX_WILL 16

/* Decode the property length and properties allowed in @ctx at @r (level 5). */
int tq_mqtt_props_decode(struct tq_mqtt_rd *r, unsigned int ctx, struct tq_mqtt_props *out);

/* Bytes of the property block of @pr (without its length), or -EINVAL when a property
 * is not allowed in @ctx or a value cannot be encoded. */
long tq_mqtt_props_len(const struct tq_mqtt_props *pr, unsigned int ctx);

/* Write the property length @len (from tq_mqtt_props_len) and the properties. */
void tq_mqtt_props_write(struct tq_mqtt_wr *w, const struct tq_mqtt_props *pr, uint32_t len);

#endif
