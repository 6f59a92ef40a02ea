/*
 * ICMP for IPv4 (RFC 792): parse, echo reply in place, echo build. Pure, any thread.
 */
#ifndef TQ_ICMP_H
#define TQ_ICMP_H

#include <stddef.h>
#include <stdint.h>

#define TQ_ICMP_HDR_LEN 8
#define TQ_ICMP_ECHO_REPLY 0
#define TQ_ICMP_ECHO_REQUEST 8

struct tq_icmp_view {
	uint8_t type;
	uint8_t code;
	uint16_t id;  /* host order (echo only) */
	uint16_t seq; /* host order (echo only) */
};

/*
 * Parse and checksum the ICMP message of @len bytes at @p. Returns TQ_ICMP_HDR_LEN, or
 * -TQ_CTR_icmp_truncated / -TQ_CTR_icmp_bad_checksum.
 */
int tq_icmp_parse(const uint8_t *p, size_t len, struct tq_icmp_view *out);

/* Turn the echo request at @p (already parsed) into its reply, fixing the checksum. */
void tq_icmp_echo_to_reply(uint8_t *p);

/*
 * Write an echo message of type @type with @data_len bytes of @data at @p
 * (TQ_ICMP_HDR_LEN + @data_len bytes). @data may overlap @p + TQ_ICMP_HDR_LEN.
 */
void tq_icmp_build_echo(uint8_t *p, uint8_t type, uint16_t id, uint16_t seq, const void *data,
			size_t data_len);

#endif
