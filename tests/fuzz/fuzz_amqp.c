/*
 * libFuzzer driver for the AMQP 0-9-1 codec (tq_amqp_codec, tq_amqp_table). The first byte
 * picks what the rest is: 0 a stream of frames (each decoded by its type), 1 a method
 * payload, 2 a content header payload, 3 a field table with its size. Inputs are exact-size
 * heap copies, so ASan sees an over-read. Whatever decodes is encoded again, and that must
 * decode to the same values; tables are walked to the bottom (a validated table never
 * fails a walk) and rebuilt value by value into a table of the same size and values.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/amqp/tq_amqp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond))                                                                   \
			__builtin_trap();                                                      \
	} while (0)

static bool
span_eq(const void *a, const void *b)
{
	struct tq_amqp_str x, y;

	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	return x.len == y.len && (x.len == 0 || memcmp(x.p, y.p, x.len) == 0);
}

/* The fields of two argument (or property) structs described by @fi[0, @n) are equal. */
static bool
fields_eq(const struct tq_amqp_field_info *fi, unsigned int n, const void *a, const void *b,
	  uint16_t flags)
{
	for (unsigned int i = 0; i < n; i++) {
		const uint8_t *x = (const uint8_t *)a + fi[i].offset;
		const uint8_t *y = (const uint8_t *)b + fi[i].offset;
		size_t sz;

		if (flags && !(flags & (1u << (15 - i))))
			continue;
		switch (fi[i].type) {
		case TQ_AMQP_T_BIT:
			sz = sizeof(bool);
			break;
		case TQ_AMQP_T_OCTET:
			sz = 1;
			break;
		case TQ_AMQP_T_SHORT:
			sz = 2;
			break;
		case TQ_AMQP_T_LONG:
			sz = 4;
			break;
		case TQ_AMQP_T_LONGLONG:
		case TQ_AMQP_T_TIMESTAMP:
			sz = 8;
			break;
		default:
			if (!span_eq(x, y))
				return false;
			continue;
		}
		if (memcmp(x, y, sz))
			return false;
	}
	return true;
}

/*
 * Walk a validated table or array to the bottom (nested ones too); with @b, rebuild this
 * level into it (nested values are copied whole). *@nul_key: a key held a NUL, which the
 * C-string keys of the builder cannot carry.
 */
static void
walk(struct tq_amqp_table t, bool array, unsigned int depth, struct tq_amqp_tb *b,
     bool *nul_key)
{
	struct tq_amqp_iter it;
	struct tq_amqp_value v;
	struct tq_amqp_str k;
	char key[256];
	int ret;

	CHECK(depth <= TQ_AMQP_TABLE_DEPTH_MAX);
	if (array)
		tq_amqp_array_iter(&it, t);
	else
		tq_amqp_table_iter(&it, t);
	for (;;) {
		ret = array ? tq_amqp_array_next(&it, &v) : tq_amqp_table_next(&it, &k, &v);
		CHECK(ret >= 0);
		if (ret == 0)
			break;
		if (b) {
			if (!array) {
				memcpy(key, k.p, k.len);
				key[k.len] = 0;
				if (memchr(k.p, 0, k.len))
					*nul_key = true;
			}
			tq_amqp_tb_value(b, array ? NULL : key, &v);
		}
		if (v.tag == TQ_AMQP_V_TABLE || v.tag == TQ_AMQP_V_ARRAY)
			walk(v.v.table, v.tag == TQ_AMQP_V_ARRAY, depth + 1, NULL, nul_key);
	}
}

static bool
value_eq(const struct tq_amqp_value *v, const struct tq_amqp_value *w)
{
	if (v->tag != w->tag)
		return false;
	switch (v->tag) {
	case TQ_AMQP_V_BOOL:
		return v->v.b == w->v.b;
	case TQ_AMQP_V_I8:
	case TQ_AMQP_V_I16:
	case TQ_AMQP_V_I32:
	case TQ_AMQP_V_I64:
		return v->v.i == w->v.i;
	case TQ_AMQP_V_U8:
	case TQ_AMQP_V_U16:
	case TQ_AMQP_V_U32:
	case TQ_AMQP_V_TIMESTAMP:
		return v->v.u == w->v.u;
	case TQ_AMQP_V_FLOAT:
		return memcmp(&v->v.f, &w->v.f, sizeof(v->v.f)) == 0;
	case TQ_AMQP_V_DOUBLE:
		return memcmp(&v->v.d, &w->v.d, sizeof(v->v.d)) == 0;
	case TQ_AMQP_V_DECIMAL:
		return v->v.dec.scale == w->v.dec.scale && v->v.dec.value == w->v.dec.value;
	case TQ_AMQP_V_VOID:
		return true;
	default: /* S x F A */
		return span_eq(&v->v.str, &w->v.str);
	}
}

/*
 * A decoded table rebuilds into a table of the same size and values (unless a key holds a
 * NUL); the bytes may differ only where a bool was not sent as 0 or 1.
 */
static void
check_table(struct tq_amqp_table t)
{
	uint8_t *buf = malloc(t.len + 1);
	struct tq_amqp_iter a, b;
	struct tq_amqp_value v, w;
	struct tq_amqp_str k, l;
	struct tq_amqp_table r;
	struct tq_amqp_tb tb;
	bool nul_key = false;
	int ra, rb;

	CHECK(buf);
	tq_amqp_tb_init(&tb, buf, t.len);
	walk(t, false, 1, &tb, &nul_key);
	if (!nul_key) {
		CHECK(tq_amqp_tb_finish(&tb, &r) == 0);
		CHECK(r.len == t.len);
		tq_amqp_table_iter(&a, t);
		tq_amqp_table_iter(&b, r);
		do {
			ra = tq_amqp_table_next(&a, &k, &v);
			rb = tq_amqp_table_next(&b, &l, &w);
			CHECK(ra == rb && ra >= 0);
			if (ra)
				CHECK(span_eq(&k, &l) && value_eq(&v, &w));
		} while (ra > 0);
	}
	free(buf);
}

static void
check_method(const uint8_t *p, size_t len)
{
	struct tq_amqp_method m, m2;
	struct tq_amqp_frame f;
	size_t err_off = SIZE_MAX;
	ssize_t ret, n;
	uint8_t *buf;

	ret = tq_amqp_method_decode(p, len, &m, &err_off);
	if (ret < 0) {
		CHECK(ret > -TQ_AMQP_E_COUNT && err_off <= len);
		CHECK(tq_amqp_err_reply((int)ret) >= 500);
		return;
	}
	CHECK(ret == (ssize_t)len);
	for (unsigned int i = 0; i < m.info->nfields; i++)
		if (m.info->fields[i].type == TQ_AMQP_T_TABLE) {
			struct tq_amqp_table t;

			memcpy(&t, (const uint8_t *)&m.args + m.info->fields[i].offset, sizeof(t));
			check_table(t);
		}
	n = tq_amqp_method_len(m.info, &m.args);
	CHECK(n == (ssize_t)len + TQ_AMQP_FRAME_OVERHEAD); /* unused bits aside, the same size */
	buf = malloc((size_t)n);
	CHECK(buf);
	CHECK(tq_amqp_method_encode(buf, (size_t)n - 1, 7, m.info, &m.args) == -ENOSPC);
	CHECK(tq_amqp_method_encode(buf, (size_t)n, 7, m.info, &m.args) == n);
	CHECK(tq_amqp_frame_parse(buf, (size_t)n, 0, &f, &err_off) == n);
	CHECK(f.type == TQ_AMQP_FRAME_METHOD && f.channel == 7 && f.size == len);
	CHECK(tq_amqp_method_decode(f.payload, f.size, &m2, &err_off) == (ssize_t)len);
	CHECK(m2.info == m.info);
	CHECK(fields_eq(m.info->fields, m.info->nfields, &m.args, &m2.args, 0));
	free(buf);
}

static void
check_header(const uint8_t *p, size_t len)
{
	const struct tq_amqp_class_info *ci = tq_amqp_class_find(TQ_AMQP_CLASS_BASIC);
	struct tq_amqp_content_header h, h2;
	struct tq_amqp_frame f;
	size_t err_off = SIZE_MAX;
	ssize_t ret, n;
	uint8_t *buf;

	ret = tq_amqp_header_decode(p, len, &h, &err_off);
	if (ret < 0) {
		CHECK(ret > -TQ_AMQP_E_COUNT && err_off <= len);
		return;
	}
	CHECK(ret == (ssize_t)len);
	CHECK((h.props.flags & ~TQ_AMQP_BASIC_FLAGS_ALL) == 0);
	if (h.props.flags & TQ_AMQP_BASIC_HEADERS_FLAG)
		check_table(h.props.headers);
	n = tq_amqp_header_len(&h.props);
	CHECK(n > 0 && (size_t)n <= len + TQ_AMQP_FRAME_OVERHEAD); /* empty continuations go */
	buf = malloc((size_t)n);
	CHECK(buf);
	CHECK(tq_amqp_header_encode(buf, (size_t)n - 1, 1, h.body_size, &h.props) == -ENOSPC);
	CHECK(tq_amqp_header_encode(buf, (size_t)n, 1, h.body_size, &h.props) == n);
	CHECK(tq_amqp_frame_parse(buf, (size_t)n, 0, &f, &err_off) == n);
	CHECK(tq_amqp_header_decode(f.payload, f.size, &h2, &err_off) == (ssize_t)f.size);
	CHECK(h2.body_size == h.body_size && h2.props.flags == h.props.flags);
	/* | 1: compare only the present properties, none when there are none */
	CHECK(fields_eq(ci->props, ci->nprops, &h.props, &h2.props, h.props.flags | 1));
	free(buf);
}

static void
check_stream(const uint8_t *p, size_t len, uint32_t frame_max)
{
	size_t off = 0;

	while (off < len) {
		struct tq_amqp_frame f;
		size_t err_off = SIZE_MAX;
		ssize_t ret = tq_amqp_frame_parse(p + off, len - off, frame_max, &f, &err_off);

		if (ret == TQ_AMQP_NEED_MORE)
			return;
		if (ret < 0) {
			CHECK(err_off < len - off);
			CHECK(tq_amqp_err_reply((int)ret) == TQ_AMQP_FRAME_ERROR);
			return;
		}
		CHECK((size_t)ret == f.size + TQ_AMQP_FRAME_OVERHEAD && (size_t)ret <= len - off);
		CHECK(!frame_max || (size_t)ret <= frame_max);
		if (f.type == TQ_AMQP_FRAME_METHOD)
			check_method(f.payload, f.size);
		else if (f.type == TQ_AMQP_FRAME_HEADER)
			check_header(f.payload, f.size);
		else if (f.type == TQ_AMQP_FRAME_HEARTBEAT)
			CHECK(f.channel == 0 && f.size == 0);
		off += (size_t)ret;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	p = malloc(len ? len : 1);
	if (!p)
		return 0;
	if (len)
		memcpy(p, data + 1, len);
	switch (data[0] & 3) {
	case 0: {
		size_t err_off;

		/* frame_max from the selector's high bits: none, 4096 or 128 KiB */
		static const uint32_t frame_max[3] = {0, 4096, 131072};

		check_stream(p, len, frame_max[(data[0] >> 2) % 3]);
		CHECK(tq_amqp_protocol_header_check(p, len, &err_off) >= -TQ_AMQP_E_PROTOCOL_HEADER);
		break;
	}
	case 1:
		check_method(p, len);
		break;
	case 2:
		check_header(p, len);
		break;
	default: {
		struct tq_amqp_table t;
		size_t err_off = SIZE_MAX;
		ssize_t ret = tq_amqp_table_decode(p, len, &t, &err_off);

		if (ret < 0)
			CHECK(err_off <= len);
		else
			check_table(t);
		break;
	}
	}
	free(p);
	return 0;
}
