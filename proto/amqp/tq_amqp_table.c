#include <errno.h>
#include <string.h>

#include "proto/amqp/tq_amqp_table.h"
#include "proto/amqp/tq_amqp_wire.h"
#include "routing/tq_exchange.h"

/* Bytes after the tag of a fixed-size value, or -1 for tags with a 4-byte size, -2 unknown. */
static int
fixed_size(uint8_t tag)
{
	switch (tag) {
	case TQ_AMQP_V_VOID:
		return 0;
	case TQ_AMQP_V_BOOL:
	case TQ_AMQP_V_I8:
	case TQ_AMQP_V_U8:
		return 1;
	case TQ_AMQP_V_I16:
	case TQ_AMQP_V_U16:
		return 2;
	case TQ_AMQP_V_I32:
	case TQ_AMQP_V_U32:
	case TQ_AMQP_V_FLOAT:
		return 4;
	case TQ_AMQP_V_DECIMAL:
		return 5;
	case TQ_AMQP_V_I64:
	case TQ_AMQP_V_DOUBLE:
	case TQ_AMQP_V_TIMESTAMP:
		return 8;
	case TQ_AMQP_V_STR:
	case TQ_AMQP_V_BYTES:
	case TQ_AMQP_V_ARRAY:
	case TQ_AMQP_V_TABLE:
		return -1;
	default:
		return -2;
	}
}

/*
 * The value at @p[@off] (its tag first) within @len bytes: fills @v and *@next (the offset
 * after it). Nested tables and arrays are not looked into. Returns 0 or -TQ_AMQP_E_*.
 */
static int
value_parse(const uint8_t *p, size_t len, size_t off, struct tq_amqp_value *v, size_t *next,
	    size_t *err_off)
{
	const uint8_t *q;
	size_t room;
	uint32_t n = 0;
	int sz;

	if (off >= len) {
		*err_off = off;
		return -TQ_AMQP_E_TABLE_SIZE;
	}
	v->tag = p[off];
	sz = fixed_size(v->tag);
	if (sz == -2) {
		*err_off = off;
		return -TQ_AMQP_E_TABLE_TAG;
	}
	q = p + off + 1;
	room = len - off - 1;
	if (sz >= 0) {
		if (room < (size_t)sz) {
			*err_off = off;
			return -TQ_AMQP_E_TABLE_SIZE;
		}
		*next = off + 1 + (size_t)sz;
	} else {
		if (room < 4) {
			*err_off = off;
			return -TQ_AMQP_E_TABLE_SIZE;
		}
		n = tq_amqp_ld32(q);
		if (room - 4 < n) {
			*err_off = off + 1;
			return -TQ_AMQP_E_TABLE_SIZE;
		}
		*next = off + 5 + n;
	}
	switch (v->tag) {
	case TQ_AMQP_V_BOOL:
		v->v.b = q[0] != 0;
		break;
	case TQ_AMQP_V_I8:
		v->v.i = (int8_t)q[0];
		break;
	case TQ_AMQP_V_U8:
		v->v.u = q[0];
		break;
	case TQ_AMQP_V_I16:
		v->v.i = (int16_t)tq_amqp_ld16(q);
		break;
	case TQ_AMQP_V_U16:
		v->v.u = tq_amqp_ld16(q);
		break;
	case TQ_AMQP_V_I32:
		v->v.i = (int32_t)tq_amqp_ld32(q);
		break;
	case TQ_AMQP_V_U32:
		v->v.u = tq_amqp_ld32(q);
		break;
	case TQ_AMQP_V_I64:
		v->v.i = (int64_t)tq_amqp_ld64(q);
		break;
	case TQ_AMQP_V_TIMESTAMP:
		v->v.u = tq_amqp_ld64(q);
		break;
	case TQ_AMQP_V_FLOAT: {
		uint32_t bits = tq_amqp_ld32(q);

		memcpy(&v->v.f, &bits, sizeof(bits));
		break;
	}
	case TQ_AMQP_V_DOUBLE: {
		uint64_t bits = tq_amqp_ld64(q);

		memcpy(&v->v.d, &bits, sizeof(bits));
		break;
	}
	case TQ_AMQP_V_DECIMAL:
		v->v.dec.scale = q[0];
		v->v.dec.value = tq_amqp_ld32(q + 1);
		break;
	case TQ_AMQP_V_STR:
	case TQ_AMQP_V_BYTES:
		v->v.str.p = q + 4;
		v->v.str.len = n;
		break;
	case TQ_AMQP_V_ARRAY:
	case TQ_AMQP_V_TABLE:
		v->v.table.p = q + 4;
		v->v.table.len = n;
		break;
	default: /* void */
		break;
	}
	return 0;
}

/* The key at @p[@off]: fills @key and *@next. */
static int
key_parse(const uint8_t *p, size_t len, size_t off, struct tq_amqp_str *key, size_t *next,
	  size_t *err_off)
{
	if (off >= len || len - off - 1 < p[off]) {
		*err_off = off;
		return -TQ_AMQP_E_TABLE_SIZE;
	}
	key->p = p + off + 1;
	key->len = p[off];
	*next = off + 1 + p[off];
	return 0;
}

/*
 * Check the @len bytes of table (or array) contents at @p, @depth levels deep; @base is
 * the offset of @p in what the caller reports error positions against.
 */
static int
contents_check(const uint8_t *p, size_t len, bool array, unsigned int depth, size_t base,
	       size_t *err_off)
{
	size_t off = 0;

	while (off < len) {
		struct tq_amqp_value v;
		struct tq_amqp_str key;
		int ret;

		if (!array) {
			ret = key_parse(p, len, off, &key, &off, err_off);
			if (ret < 0)
				goto fail;
		}
		ret = value_parse(p, len, off, &v, &off, err_off);
		if (ret < 0)
			goto fail;
		if (v.tag == TQ_AMQP_V_TABLE || v.tag == TQ_AMQP_V_ARRAY) {
			size_t at = (size_t)(v.v.table.p - p);

			if (depth >= TQ_AMQP_TABLE_DEPTH_MAX) {
				*err_off = base + at - 5; /* the tag */
				return -TQ_AMQP_E_TABLE_DEPTH;
			}
			ret = contents_check(v.v.table.p, v.v.table.len, v.tag == TQ_AMQP_V_ARRAY,
					     depth + 1, base + at, err_off);
			if (ret < 0)
				return ret;
		}
		continue;
fail:
		*err_off += base;
		return ret;
	}
	return 0;
}

ssize_t
tq_amqp_table_decode(const uint8_t *p, size_t len, struct tq_amqp_table *out, size_t *err_off)
{
	uint32_t n;
	int ret;

	if (len < 4) {
		*err_off = 0;
		return -TQ_AMQP_E_TABLE_SIZE;
	}
	n = tq_amqp_ld32(p);
	if (len - 4 < n) {
		*err_off = 0;
		return -TQ_AMQP_E_TABLE_SIZE;
	}
	ret = contents_check(p + 4, n, false, 1, 4, err_off);
	if (ret < 0)
		return ret;
	out->p = p + 4;
	out->len = n;
	return (ssize_t)n + 4;
}

void
tq_amqp_table_iter(struct tq_amqp_iter *it, struct tq_amqp_table t)
{
	it->p = t.p;
	it->len = t.len;
	it->off = 0;
	it->array = false;
}

void
tq_amqp_array_iter(struct tq_amqp_iter *it, struct tq_amqp_table a)
{
	tq_amqp_table_iter(it, a);
	it->array = true;
}

/* One step of either walk; @key NULL for arrays. */
static int
iter_next(struct tq_amqp_iter *it, struct tq_amqp_str *key, struct tq_amqp_value *v)
{
	size_t off = it->off, err_off;
	int ret;

	if (off >= it->len)
		return 0;
	if (key) {
		ret = key_parse(it->p, it->len, off, key, &off, &err_off);
		if (ret < 0)
			return ret;
	}
	ret = value_parse(it->p, it->len, off, v, &off, &err_off);
	if (ret < 0)
		return ret;
	it->off = (uint32_t)off;
	return 1;
}

int
tq_amqp_table_next(struct tq_amqp_iter *it, struct tq_amqp_str *key, struct tq_amqp_value *v)
{
	if (it->array)
		return -TQ_AMQP_E_TABLE_SIZE;
	return iter_next(it, key, v);
}

int
tq_amqp_array_next(struct tq_amqp_iter *it, struct tq_amqp_value *v)
{
	if (!it->array)
		return -TQ_AMQP_E_TABLE_SIZE;
	return iter_next(it, NULL, v);
}

int
tq_amqp_table_xheaders(struct tq_amqp_table t, struct tq_xheader *out, uint32_t max,
		       char (*keys)[256])
{
	struct tq_amqp_iter it;
	struct tq_amqp_str key;
	struct tq_amqp_value v;
	uint32_t n = 0;

	tq_amqp_table_iter(&it, t);
	while (tq_amqp_table_next(&it, &key, &v) == 1) {
		struct tq_xheader *x = &out[n];

		if (n == max)
			return -E2BIG;
		memcpy(keys[n], key.p, key.len); /* a shortstr: at most 255 bytes */
		keys[n][key.len] = '\0';
		x->key = keys[n];
		x->klen = (uint16_t)key.len;
		x->tag = v.tag;
		switch (v.tag) { /* tq_xheader's union mirrors tq_amqp_value's */
		case TQ_AMQP_V_STR:
		case TQ_AMQP_V_BYTES:
			x->v.bytes.p = v.v.str.p;
			x->v.bytes.len = v.v.str.len;
			break;
		case TQ_AMQP_V_TABLE:
		case TQ_AMQP_V_ARRAY:
			x->v.bytes.p = v.v.table.p;
			x->v.bytes.len = v.v.table.len;
			break;
		case TQ_AMQP_V_DECIMAL:
			x->v.dec.scale = v.v.dec.scale;
			x->v.dec.value = v.v.dec.value;
			break;
		case TQ_AMQP_V_FLOAT:
			x->v.f = v.v.f;
			break;
		case TQ_AMQP_V_DOUBLE:
			x->v.d = v.v.d;
			break;
		case TQ_AMQP_V_BOOL:
			x->v.b = v.v.b;
			break;
		default:
			x->v.u = v.v.u; /* integers, timestamps, void */
		}
		n++;
	}
	return (int)n;
}

int
tq_amqp_table_get(struct tq_amqp_table t, const char *key, struct tq_amqp_value *v)
{
	size_t klen = strlen(key);
	struct tq_amqp_iter it;
	struct tq_amqp_str k;
	int ret;

	tq_amqp_table_iter(&it, t);
	while ((ret = tq_amqp_table_next(&it, &k, v)) > 0)
		if (k.len == klen && memcmp(k.p, key, klen) == 0)
			return 1;
	return ret;
}

/* builder */

void
tq_amqp_tb_init(struct tq_amqp_tb *b, uint8_t *buf, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->cap = cap;
}

/*
 * Room for the key (or its absence) and a value of @vlen bytes with its tag: returns where
 * the value's bytes go (after the tag), or NULL with the error recorded.
 */
static uint8_t *
tb_put(struct tq_amqp_tb *b, const char *key, uint8_t tag, size_t vlen)
{
	bool in_array = b->arrays >> b->depth & 1;
	size_t klen = key ? strlen(key) : 0;
	size_t need;
	uint8_t *w;

	if (b->err)
		return NULL;
	if (in_array != (key == NULL) || klen > UINT8_MAX) {
		b->err = -EINVAL;
		return NULL;
	}
	need = (in_array ? 0 : 1 + klen) + 1 + vlen;
	if (b->cap - b->len < need) {
		b->err = -ENOSPC;
		return NULL;
	}
	w = b->buf + b->len;
	if (!in_array) {
		*w++ = (uint8_t)klen;
		memcpy(w, key, klen);
		w += klen;
	}
	*w++ = tag;
	b->len += need;
	return w;
}

void
tq_amqp_tb_bool(struct tq_amqp_tb *b, const char *key, bool v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_BOOL, 1);

	if (w)
		*w = v;
}

void
tq_amqp_tb_i8(struct tq_amqp_tb *b, const char *key, int8_t v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_I8, 1);

	if (w)
		*w = (uint8_t)v;
}

void
tq_amqp_tb_u8(struct tq_amqp_tb *b, const char *key, uint8_t v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_U8, 1);

	if (w)
		*w = v;
}

void
tq_amqp_tb_i16(struct tq_amqp_tb *b, const char *key, int16_t v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_I16, 2);

	if (w)
		tq_amqp_st16(w, (uint16_t)v);
}

void
tq_amqp_tb_u16(struct tq_amqp_tb *b, const char *key, uint16_t v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_U16, 2);

	if (w)
		tq_amqp_st16(w, v);
}

void
tq_amqp_tb_i32(struct tq_amqp_tb *b, const char *key, int32_t v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_I32, 4);

	if (w)
		tq_amqp_st32(w, (uint32_t)v);
}

void
tq_amqp_tb_u32(struct tq_amqp_tb *b, const char *key, uint32_t v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_U32, 4);

	if (w)
		tq_amqp_st32(w, v);
}

void
tq_amqp_tb_i64(struct tq_amqp_tb *b, const char *key, int64_t v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_I64, 8);

	if (w)
		tq_amqp_st64(w, (uint64_t)v);
}

void
tq_amqp_tb_float(struct tq_amqp_tb *b, const char *key, float v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_FLOAT, 4);
	uint32_t bits;

	memcpy(&bits, &v, sizeof(bits));
	if (w)
		tq_amqp_st32(w, bits);
}

void
tq_amqp_tb_double(struct tq_amqp_tb *b, const char *key, double v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_DOUBLE, 8);
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	if (w)
		tq_amqp_st64(w, bits);
}

void
tq_amqp_tb_decimal(struct tq_amqp_tb *b, const char *key, uint8_t scale, uint32_t value)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_DECIMAL, 5);

	if (w) {
		w[0] = scale;
		tq_amqp_st32(w + 1, value);
	}
}

void
tq_amqp_tb_timestamp(struct tq_amqp_tb *b, const char *key, uint64_t v)
{
	uint8_t *w = tb_put(b, key, TQ_AMQP_V_TIMESTAMP, 8);

	if (w)
		tq_amqp_st64(w, v);
}

void
tq_amqp_tb_void(struct tq_amqp_tb *b, const char *key)
{
	tb_put(b, key, TQ_AMQP_V_VOID, 0);
}

/* A value of a 4-byte size and @len bytes. */
static void
tb_sized(struct tq_amqp_tb *b, const char *key, uint8_t tag, const void *s, size_t len)
{
	uint8_t *w;

	if (len > UINT32_MAX) {
		if (!b->err)
			b->err = -EINVAL;
		return;
	}
	w = tb_put(b, key, tag, 4 + len);
	if (w) {
		tq_amqp_st32(w, (uint32_t)len);
		if (len)
			memcpy(w + 4, s, len);
	}
}

void
tq_amqp_tb_str(struct tq_amqp_tb *b, const char *key, const void *s, size_t len)
{
	tb_sized(b, key, TQ_AMQP_V_STR, s, len);
}

void
tq_amqp_tb_cstr(struct tq_amqp_tb *b, const char *key, const char *s)
{
	tb_sized(b, key, TQ_AMQP_V_STR, s, strlen(s));
}

void
tq_amqp_tb_bytes(struct tq_amqp_tb *b, const char *key, const void *s, size_t len)
{
	tb_sized(b, key, TQ_AMQP_V_BYTES, s, len);
}

void
tq_amqp_tb_value(struct tq_amqp_tb *b, const char *key, const struct tq_amqp_value *v)
{
	switch (v->tag) {
	case TQ_AMQP_V_BOOL:
		tq_amqp_tb_bool(b, key, v->v.b);
		break;
	case TQ_AMQP_V_I8:
		tq_amqp_tb_i8(b, key, (int8_t)v->v.i);
		break;
	case TQ_AMQP_V_U8:
		tq_amqp_tb_u8(b, key, (uint8_t)v->v.u);
		break;
	case TQ_AMQP_V_I16:
		tq_amqp_tb_i16(b, key, (int16_t)v->v.i);
		break;
	case TQ_AMQP_V_U16:
		tq_amqp_tb_u16(b, key, (uint16_t)v->v.u);
		break;
	case TQ_AMQP_V_I32:
		tq_amqp_tb_i32(b, key, (int32_t)v->v.i);
		break;
	case TQ_AMQP_V_U32:
		tq_amqp_tb_u32(b, key, (uint32_t)v->v.u);
		break;
	case TQ_AMQP_V_I64:
		tq_amqp_tb_i64(b, key, v->v.i);
		break;
	case TQ_AMQP_V_FLOAT:
		tq_amqp_tb_float(b, key, v->v.f);
		break;
	case TQ_AMQP_V_DOUBLE:
		tq_amqp_tb_double(b, key, v->v.d);
		break;
	case TQ_AMQP_V_DECIMAL:
		tq_amqp_tb_decimal(b, key, v->v.dec.scale, v->v.dec.value);
		break;
	case TQ_AMQP_V_TIMESTAMP:
		tq_amqp_tb_timestamp(b, key, v->v.u);
		break;
	case TQ_AMQP_V_VOID:
		tq_amqp_tb_void(b, key);
		break;
	case TQ_AMQP_V_STR:
	case TQ_AMQP_V_BYTES:
		tb_sized(b, key, v->tag, v->v.str.p, v->v.str.len);
		break;
	case TQ_AMQP_V_TABLE:
	case TQ_AMQP_V_ARRAY:
		tb_sized(b, key, v->tag, v->v.table.p, v->v.table.len);
		break;
	default:
		if (!b->err)
			b->err = -EINVAL;
		break;
	}
}

static void
tb_begin(struct tq_amqp_tb *b, const char *key, uint8_t tag)
{
	uint8_t *w;

	if (!b->err && b->depth + 1 >= TQ_AMQP_TABLE_DEPTH_MAX) {
		b->err = -EINVAL;
		return;
	}
	w = tb_put(b, key, tag, 4); /* the size, written at the end */
	if (!w)
		return;
	b->depth++;
	b->open[b->depth] = (size_t)(w - b->buf);
	if (tag == TQ_AMQP_V_ARRAY)
		b->arrays |= 1u << b->depth;
	else
		b->arrays &= ~(1u << b->depth);
}

static void
tb_end(struct tq_amqp_tb *b, bool array)
{
	size_t at;

	if (b->err)
		return;
	if (b->depth == 0 || (bool)(b->arrays >> b->depth & 1) != array) {
		b->err = -EINVAL;
		return;
	}
	at = b->open[b->depth];
	if (b->len - at - 4 > UINT32_MAX) {
		b->err = -EINVAL;
		return;
	}
	tq_amqp_st32(b->buf + at, (uint32_t)(b->len - at - 4));
	b->depth--;
}

void
tq_amqp_tb_table_begin(struct tq_amqp_tb *b, const char *key)
{
	tb_begin(b, key, TQ_AMQP_V_TABLE);
}

void
tq_amqp_tb_table_end(struct tq_amqp_tb *b)
{
	tb_end(b, false);
}

void
tq_amqp_tb_array_begin(struct tq_amqp_tb *b, const char *key)
{
	tb_begin(b, key, TQ_AMQP_V_ARRAY);
}

void
tq_amqp_tb_array_end(struct tq_amqp_tb *b)
{
	tb_end(b, true);
}

int
tq_amqp_tb_finish(struct tq_amqp_tb *b, struct tq_amqp_table *out)
{
	if (!b->err && (b->depth != 0 || b->len > UINT32_MAX))
		b->err = -EINVAL;
	if (b->err)
		return b->err;
	out->p = b->buf;
	out->len = (uint32_t)b->len;
	return 0;
}
