#include <string.h>

#include "dataplane/tq_counters.h"
#include "tq_csum.h"
#include "tq_tcp_codec.h"

#define TCP_PROTO 6

/* fixed option lengths (RFC 9293 3.2, RFC 7323 2.2 and 3.2, RFC 2018 2 and 3) */
#define OPTLEN_MSS 4
#define OPTLEN_WSCALE 3
#define OPTLEN_SACK_PERM 2
#define OPTLEN_TS 10
#define OPTLEN_SACK_BASE 2
#define OPTLEN_SACK_BLOCK 8

static inline uint16_t
load_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint8_t *
store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static inline uint8_t *
store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

/* Options in @p[0, @len): fills @o, returns 0 or -TQ_CTR_tcp_bad_option. */
static int
parse_options(const uint8_t *p, size_t len, struct tq_tcp_opts *o)
{
	size_t i = 0;

	while (i < len) {
		uint8_t kind = p[i], optlen;

		if (kind == TQ_TCPOPT_EOL)
			break;
		if (kind == TQ_TCPOPT_NOP) {
			i++;
			continue;
		}
		if (len - i < 2)
			return -TQ_CTR_tcp_bad_option; /* no room for the length byte */
		optlen = p[i + 1];
		if (optlen < 2 || optlen > len - i)
			return -TQ_CTR_tcp_bad_option;
		switch (kind) {
		case TQ_TCPOPT_MSS:
			if (optlen != OPTLEN_MSS)
				return -TQ_CTR_tcp_bad_option;
			o->mss = load_be16(p + i + 2);
			o->present |= TQ_TCP_OPT_MSS;
			break;
		case TQ_TCPOPT_WSCALE:
			if (optlen != OPTLEN_WSCALE)
				return -TQ_CTR_tcp_bad_option;
			o->wscale = p[i + 2];
			o->present |= TQ_TCP_OPT_WSCALE;
			break;
		case TQ_TCPOPT_SACK_PERM:
			if (optlen != OPTLEN_SACK_PERM)
				return -TQ_CTR_tcp_bad_option;
			o->present |= TQ_TCP_OPT_SACK_PERM;
			break;
		case TQ_TCPOPT_SACK: {
			unsigned int n = (optlen - OPTLEN_SACK_BASE) / OPTLEN_SACK_BLOCK;

			/* the option space bounds n to TQ_TCP_SACK_MAX */
			if (optlen < OPTLEN_SACK_BASE + OPTLEN_SACK_BLOCK ||
			    (optlen - OPTLEN_SACK_BASE) % OPTLEN_SACK_BLOCK)
				return -TQ_CTR_tcp_bad_option;
			for (unsigned int b = 0; b < n; b++) {
				const uint8_t *q = p + i + OPTLEN_SACK_BASE + b * OPTLEN_SACK_BLOCK;

				o->sack[b].start = load_be32(q);
				o->sack[b].end = load_be32(q + 4);
			}
			o->sack_count = (uint8_t)n;
			o->present |= TQ_TCP_OPT_SACK;
			break;
		}
		case TQ_TCPOPT_TS:
			if (optlen != OPTLEN_TS)
				return -TQ_CTR_tcp_bad_option;
			o->ts_val = load_be32(p + i + 2);
			o->ts_ecr = load_be32(p + i + 6);
			o->present |= TQ_TCP_OPT_TS;
			break;
		default: /* unknown: skip by its length */
			break;
		}
		i += optlen;
	}
	return 0;
}

int
tq_tcp_parse(const uint8_t *p, size_t len, struct tq_tcp_view *out)
{
	unsigned int hdr_len;
	int ret;

	if (len < TQ_TCP_HDR_LEN)
		return -TQ_CTR_tcp_truncated;
	hdr_len = (p[12] >> 4) * 4u;
	if (hdr_len < TQ_TCP_HDR_LEN)
		return -TQ_CTR_tcp_bad_offset;
	if (hdr_len > len)
		return -TQ_CTR_tcp_truncated;
	out->flags = p[13];
	if ((out->flags & TQ_TCP_SYN) && (out->flags & (TQ_TCP_FIN | TQ_TCP_RST)))
		return -TQ_CTR_tcp_bad_flags;
	memset(&out->opts, 0, sizeof(out->opts));
	ret = parse_options(p + TQ_TCP_HDR_LEN, hdr_len - TQ_TCP_HDR_LEN, &out->opts);
	if (ret < 0)
		return ret;
	out->src_port = load_be16(p);
	out->dst_port = load_be16(p + 2);
	out->seq = load_be32(p + 4);
	out->ack = load_be32(p + 8);
	out->hdr_len = (uint8_t)hdr_len;
	out->window = load_be16(p + 14);
	out->checksum = load_be16(p + 16);
	out->urgent = load_be16(p + 18);
	out->payload = p + hdr_len;
	out->payload_len = len - hdr_len;
	return (int)hdr_len;
}

/* Bytes of the options other than SACK blocks, as tq_tcp_build() writes them. */
static size_t
fixed_options_len(const struct tq_tcp_opts *o)
{
	size_t n = 0;

	if (o->present & TQ_TCP_OPT_MSS)
		n += 4;
	if (o->present & TQ_TCP_OPT_TS)
		n += 12; /* SACKOK,TS or NOP,NOP,TS */
	else if (o->present & TQ_TCP_OPT_SACK_PERM)
		n += 4; /* NOP,NOP,SACKOK */
	if (o->present & TQ_TCP_OPT_WSCALE)
		n += 4; /* NOP,WS */
	return n;
}

unsigned int
tq_tcp_sack_room(const struct tq_tcp_opts *o)
{
	size_t room = (TQ_TCP_OPT_SPACE - fixed_options_len(o) - 4) / OPTLEN_SACK_BLOCK;

	return room < TQ_TCP_SACK_MAX ? (unsigned int)room : TQ_TCP_SACK_MAX;
}

/* SACK blocks tq_tcp_build() writes for @o. */
static unsigned int
sack_blocks(const struct tq_tcp_opts *o)
{
	unsigned int room;

	if (!(o->present & TQ_TCP_OPT_SACK))
		return 0;
	room = tq_tcp_sack_room(o);
	return o->sack_count < room ? o->sack_count : room;
}

size_t
tq_tcp_hdr_len(const struct tq_tcp_opts *o)
{
	unsigned int n = sack_blocks(o);

	return TQ_TCP_HDR_LEN + fixed_options_len(o) + (n ? 4 + n * OPTLEN_SACK_BLOCK : 0);
}

size_t
tq_tcp_build(uint8_t *p, const struct tq_tcp_hdr_spec *spec)
{
	const struct tq_tcp_opts *o = &spec->opts;
	size_t hdr_len = tq_tcp_hdr_len(o);
	unsigned int nsack = sack_blocks(o);
	uint8_t *q = p + TQ_TCP_HDR_LEN;

	store_be16(p, spec->src_port);
	store_be16(p + 2, spec->dst_port);
	store_be32(p + 4, spec->seq);
	store_be32(p + 8, spec->ack);
	p[12] = (uint8_t)(hdr_len / 4 << 4);
	p[13] = spec->flags;
	store_be16(p + 14, spec->window);
	store_be16(p + 16, 0);
	store_be16(p + 18, spec->urgent);

	/* Linux's tcp_options_write() order, so peers and captures see what they expect */
	if (o->present & TQ_TCP_OPT_MSS) {
		*q++ = TQ_TCPOPT_MSS;
		*q++ = OPTLEN_MSS;
		q = store_be16(q, o->mss);
	}
	if (o->present & TQ_TCP_OPT_TS) {
		if (o->present & TQ_TCP_OPT_SACK_PERM) {
			*q++ = TQ_TCPOPT_SACK_PERM;
			*q++ = OPTLEN_SACK_PERM;
		} else {
			*q++ = TQ_TCPOPT_NOP;
			*q++ = TQ_TCPOPT_NOP;
		}
		*q++ = TQ_TCPOPT_TS;
		*q++ = OPTLEN_TS;
		q = store_be32(q, o->ts_val);
		q = store_be32(q, o->ts_ecr);
	} else if (o->present & TQ_TCP_OPT_SACK_PERM) {
		*q++ = TQ_TCPOPT_NOP;
		*q++ = TQ_TCPOPT_NOP;
		*q++ = TQ_TCPOPT_SACK_PERM;
		*q++ = OPTLEN_SACK_PERM;
	}
	if (o->present & TQ_TCP_OPT_WSCALE) {
		*q++ = TQ_TCPOPT_NOP;
		*q++ = TQ_TCPOPT_WSCALE;
		*q++ = OPTLEN_WSCALE;
		*q++ = o->wscale;
	}
	if (nsack) {
		*q++ = TQ_TCPOPT_NOP;
		*q++ = TQ_TCPOPT_NOP;
		*q++ = TQ_TCPOPT_SACK;
		*q++ = (uint8_t)(OPTLEN_SACK_BASE + nsack * OPTLEN_SACK_BLOCK);
		for (unsigned int b = 0; b < nsack; b++) {
			q = store_be32(q, o->sack[b].start);
			q = store_be32(q, o->sack[b].end);
		}
	}
	return hdr_len;
}

/* One's-complement sum of the IPv4 pseudo-header (RFC 9293 3.1), memory order. */
static uint16_t
pseudo_sum(uint32_t src, uint32_t dst, size_t len)
{
	uint8_t ph[12];

	memcpy(ph, &src, 4);
	memcpy(ph + 4, &dst, 4);
	ph[8] = 0;
	ph[9] = TCP_PROTO;
	store_be16(ph + 10, (uint16_t)len);
	return tq_csum_sum(ph, sizeof(ph), 0);
}

uint16_t
tq_tcp_pseudo_csum(uint32_t src, uint32_t dst, size_t len)
{
	return pseudo_sum(src, dst, len);
}

uint16_t
tq_tcp_checksum(uint32_t src, uint32_t dst, const void *seg, size_t len)
{
	return (uint16_t)~tq_csum_sum(seg, len, pseudo_sum(src, dst, len));
}

bool
tq_tcp_checksum_ok(uint32_t src, uint32_t dst, const void *seg, size_t len)
{
	return tq_csum_sum(seg, len, pseudo_sum(src, dst, len)) == 0xffff;
}
