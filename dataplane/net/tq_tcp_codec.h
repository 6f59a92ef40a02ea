/*
 * TCP segment codec (RFC 9293 header; options from RFC 9293 (MSS), RFC 7323 (window scale,
 * timestamps) and RFC 2018 (SACK)): parse, build, checksum, sequence arithmetic.
 * Pure functions over caller-owned bytes: no EAL, no allocation, any thread.
 */
#ifndef TQ_TCP_CODEC_H
#define TQ_TCP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_TCP_HDR_LEN 20 /* without options */
#define TQ_TCP_HDR_MAX 60 /* data offset 15 */
#define TQ_TCP_OPT_SPACE (TQ_TCP_HDR_MAX - TQ_TCP_HDR_LEN)
#define TQ_TCP_SACK_MAX 4 /* blocks that fit in the option space */

/* header flags (byte 13) */
#define TQ_TCP_FIN 0x01
#define TQ_TCP_SYN 0x02
#define TQ_TCP_RST 0x04
#define TQ_TCP_PSH 0x08
#define TQ_TCP_ACK 0x10
#define TQ_TCP_URG 0x20
#define TQ_TCP_ECE 0x40
#define TQ_TCP_CWR 0x80

/* option kinds */
#define TQ_TCPOPT_EOL 0
#define TQ_TCPOPT_NOP 1
#define TQ_TCPOPT_MSS 2
#define TQ_TCPOPT_WSCALE 3
#define TQ_TCPOPT_SACK_PERM 4
#define TQ_TCPOPT_SACK 5
#define TQ_TCPOPT_TS 8

/* struct tq_tcp_opts.present */
#define TQ_TCP_OPT_MSS 0x01
#define TQ_TCP_OPT_WSCALE 0x02
#define TQ_TCP_OPT_SACK_PERM 0x04
#define TQ_TCP_OPT_SACK 0x08 /* with sack_count >= 1 */
#define TQ_TCP_OPT_TS 0x10

#define TQ_TCP_WSCALE_MAX 14 /* RFC 7323 2.3: larger shifts count as 14 (parsed as sent) */

struct tq_tcp_sack_block {
	uint32_t start; /* left edge, host order */
	uint32_t end;   /* right edge (first sequence number after the block) */
};

/* Options we understand; values in host order and as sent (window scale not clamped). */
struct tq_tcp_opts {
	uint8_t present; /* TQ_TCP_OPT_* */
	uint8_t wscale;
	uint16_t mss;
	uint8_t sack_count; /* blocks in sack[], 0 .. TQ_TCP_SACK_MAX */
	uint32_t ts_val;
	uint32_t ts_ecr;
	struct tq_tcp_sack_block sack[TQ_TCP_SACK_MAX];
};

struct tq_tcp_view {
	uint16_t src_port; /* host order, as are all numbers here */
	uint16_t dst_port;
	uint32_t seq;
	uint32_t ack;
	uint8_t hdr_len;   /* data offset * 4: 20 .. 60 */
	uint8_t flags;     /* TQ_TCP_*; the reserved bits of byte 12 are ignored */
	uint16_t window;   /* as sent, not scaled */
	uint16_t checksum; /* as sent; not verified by tq_tcp_parse() */
	uint16_t urgent;
	const uint8_t *payload; /* span into the input */
	size_t payload_len;
	struct tq_tcp_opts opts;
};

/*
 * Parse the TCP segment of @len bytes at @p (the IPv4 payload). Returns the header length,
 * or the negated drop counter: tcp_truncated (shorter than 20 bytes or its data offset),
 * tcp_bad_offset (data offset below 5), tcp_bad_flags (SYN with FIN or RST),
 * tcp_bad_option (an option length below 2 or past the header, a wrong length for MSS,
 * window scale, SACK-permitted or timestamps, a SACK length not 2 + 8n with n >= 1).
 * Unknown options are skipped by their length; parsing stops at EOL; a repeated option
 * replaces the earlier one (as Linux does). The checksum is not verified.
 */
int tq_tcp_parse(const uint8_t *p, size_t len, struct tq_tcp_view *out);

/* What tq_tcp_build() writes. opts.present picks the options. */
struct tq_tcp_hdr_spec {
	uint16_t src_port; /* host order, as are all numbers here */
	uint16_t dst_port;
	uint32_t seq;
	uint32_t ack;
	uint8_t flags;
	uint16_t window;
	uint16_t urgent;
	struct tq_tcp_opts opts;
};

/*
 * How many SACK blocks tq_tcp_build() fits beside the other options of @o: 4 alone,
 * 3 beside timestamps, never fewer than 2.
 */
unsigned int tq_tcp_sack_room(const struct tq_tcp_opts *o);

/* The header length tq_tcp_build() will write for @o: 20 .. 60, a multiple of 4. */
size_t tq_tcp_hdr_len(const struct tq_tcp_opts *o);

/*
 * Write the header and options of @spec at @p (tq_tcp_hdr_len() bytes), in the order and
 * with the padding Linux uses: MSS; SACK-permitted and timestamps packed as
 * SACKOK,TS or NOP,NOP,TS (NOP,NOP,SACKOK without timestamps); NOP,WS; NOP,NOP,SACK with
 * at most tq_tcp_sack_room() blocks (the first ones: put the newest first, RFC 2018 4).
 * The checksum field is left zero. Returns the header length.
 */
size_t tq_tcp_build(uint8_t *p, const struct tq_tcp_hdr_spec *spec);

/*
 * Checksum over the IPv4 pseudo-header (@src, @dst in network order, protocol 6, @len)
 * and the @len bytes of @seg, whose checksum field must be zero. Returns the field value,
 * in network order: memcpy() it to offset 16.
 */
uint16_t tq_tcp_checksum(uint32_t src, uint32_t dst, const void *seg, size_t len);

/* True when the segment's own checksum (field included) is correct. */
bool tq_tcp_checksum_ok(uint32_t src, uint32_t dst, const void *seg, size_t len);

/*
 * The pseudo-header sum alone, folded and not inverted, in network order: what DPDK's TX
 * checksum offload (RTE_MBUF_F_TX_TCP_CKSUM) wants in the checksum field (as
 * rte_ipv4_phdr_cksum() does). @len is the TCP length (0 for TSO, per DPDK).
 */
uint16_t tq_tcp_pseudo_csum(uint32_t src, uint32_t dst, size_t len);

/* Sequence number comparisons modulo 2^32 (RFC 9293 3.4): valid within 2^31 of each other. */
static inline bool
tq_seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool
tq_seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

static inline bool
tq_seq_gt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

static inline bool
tq_seq_ge(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) >= 0;
}

/* lo <= seq <= hi, walking forward from @lo (Linux's between()); any span below 2^32. */
static inline bool
tq_seq_between(uint32_t seq, uint32_t lo, uint32_t hi)
{
	return (uint32_t)(seq - lo) <= (uint32_t)(hi - lo);
}

static inline uint32_t
tq_seq_max(uint32_t a, uint32_t b)
{
	return tq_seq_gt(a, b) ? a : b;
}

static inline uint32_t
tq_seq_min(uint32_t a, uint32_t b)
{
	return tq_seq_lt(a, b) ? a : b;
}

#endif
