/*
 * Internet checksum helpers (RFC 1071, RFC 1624). Pure, any thread.
 * Words are taken as they lie in memory, so the arithmetic is byte-order free.
 */
#ifndef TQ_CSUM_H
#define TQ_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * One's-complement sum of @len bytes at @p, folded to 16 bits (not inverted).
 * 32-bit words summed into 64 bits give the same folded sum as 16-bit words (2^16 is 1
 * modulo 2^16 - 1, RFC 1071 2(B)), with a quarter of the additions: 1448-byte segments
 * are checksummed in software on both sides of every transfer.
 */
static inline uint16_t
tq_csum_sum(const void *p, size_t len, uint32_t seed)
{
	const uint8_t *b = p;
	uint64_t sum = seed;

	while (len >= 32) {
		uint64_t q[4];

		memcpy(q, b, sizeof(q));
		sum += (q[0] & 0xffffffffu) + (q[0] >> 32) + (q[1] & 0xffffffffu) + (q[1] >> 32) +
		       (q[2] & 0xffffffffu) + (q[2] >> 32) + (q[3] & 0xffffffffu) + (q[3] >> 32);
		b += 32;
		len -= 32;
	}
	while (len >= 4) {
		uint32_t w;

		memcpy(&w, b, 4);
		sum += w;
		b += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;

		memcpy(&w, b, 2);
		sum += w;
		b += 2;
		len -= 2;
	}
	if (len) {
		uint16_t w = 0;

		memcpy(&w, b, 1);
		sum += w;
	}
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The checksum field value for @len bytes at @p (checksum field zeroed by the caller). */
static inline uint16_t
tq_csum(const void *p, size_t len)
{
	return (uint16_t)~tq_csum_sum(p, len, 0);
}

/* RFC 1624 eqn. 3: new checksum after one 16-bit word changes from @old to @new. */
static inline uint16_t
tq_csum_update16(uint16_t csum, uint16_t old, uint16_t new)
{
	uint32_t sum = (uint16_t)~csum;

	sum += (uint16_t)~old;
	sum += new;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

#endif
