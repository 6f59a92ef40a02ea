/*
 * IPv4 header (RFC 791): validate and build. Pure functions, any thread.
 */
#ifndef TQ_IPV4_H
#define TQ_IPV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_IPV4_HDR_LEN 20
#define TQ_IPV4_DEFAULT_TTL 64

/* tq_ipv4_parse() flags */
#define TQ_IPV4_CSUM_VERIFIED 0x1 /* the NIC already found the header checksum good */

struct tq_ipv4_view {
	uint32_t src; /* network order */
	uint32_t dst; /* network order */
	uint16_t hdr_len;
	uint16_t total_len; /* header + payload; the frame may carry padding beyond it */
	uint16_t id;
	uint8_t proto;
	uint8_t ttl;
	const uint8_t *payload; /* span into the input */
	uint16_t payload_len;
};

/*
 * Validate the IPv4 header at @p (@len bytes available after the link header).
 * Returns the header length, or the negated drop counter: ipv4_truncated, ipv4_bad_version,
 * ipv4_bad_ihl, ipv4_bad_total_len, ipv4_bad_checksum, ipv4_fragment, ipv4_options,
 * ipv4_bad_src.
 */
int tq_ipv4_parse(const uint8_t *p, size_t len, unsigned int flags, struct tq_ipv4_view *out);

/* Is @addr (network order) never a valid source: zero, loopback, multicast, class E, broadcast? */
bool tq_ipv4_is_martian_src(uint32_t addr);

/*
 * Write a 20-byte IPv4 header at @p with DF set and, unless @csum_offload, its checksum.
 * Addresses in network order.
 */
void tq_ipv4_build(uint8_t *p, uint32_t src, uint32_t dst, uint8_t proto, uint16_t payload_len,
		   uint16_t id, uint8_t ttl, bool csum_offload);

/* Format @addr (network order) as dotted quad into @buf (at least 16 bytes). Returns @buf. */
char *tq_ipv4_fmt(uint32_t addr, char *buf);

/*
 * Parse "a.b.c.d" or "a.b.c.d/len" into @addr (network order) and @prefix_len (32 when
 * absent; may be NULL when no prefix is allowed). Returns 0 or -EINVAL.
 */
int tq_ipv4_parse_cidr(const char *s, uint32_t *addr, uint8_t *prefix_len);

#endif
