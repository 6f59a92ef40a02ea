#include <string.h>

#include "dataplane/tq_counters.h"
#include "tq_csum.h"
#include "tq_icmp.h"

int
tq_icmp_parse(const uint8_t *p, size_t len, struct tq_icmp_view *out)
{
	if (len < TQ_ICMP_HDR_LEN)
		return -TQ_CTR_icmp_truncated;
	if (tq_csum_sum(p, len, 0) != 0xffff)
		return -TQ_CTR_icmp_bad_checksum;
	out->type = p[0];
	out->code = p[1];
	out->id = (uint16_t)(p[4] << 8 | p[5]);
	out->seq = (uint16_t)(p[6] << 8 | p[7]);
	return TQ_ICMP_HDR_LEN;
}

void
tq_icmp_echo_to_reply(uint8_t *p)
{
	uint16_t old, new, csum;

	memcpy(&old, p, 2);
	p[0] = TQ_ICMP_ECHO_REPLY;
	p[1] = 0;
	memcpy(&new, p, 2);
	memcpy(&csum, p + 2, 2);
	csum = tq_csum_update16(csum, old, new);
	/* RFC 1624 eqn. 3 gives +0 when the message sums to zero; for an all-zero reply (id,
	 * seq and data all 0) +0 fails the receiver's check, while -0 passes for any message. */
	if (csum == 0)
		csum = 0xffff;
	memcpy(p + 2, &csum, 2);
}

void
tq_icmp_build_echo(uint8_t *p, uint8_t type, uint16_t id, uint16_t seq, const void *data,
		   size_t data_len)
{
	uint16_t csum;

	memmove(p + TQ_ICMP_HDR_LEN, data, data_len);
	p[0] = type;
	p[1] = 0;
	p[2] = p[3] = 0;
	p[4] = (uint8_t)(id >> 8);
	p[5] = (uint8_t)id;
	p[6] = (uint8_t)(seq >> 8);
	p[7] = (uint8_t)seq;
	csum = tq_csum(p, TQ_ICMP_HDR_LEN + data_len);
	memcpy(p + 2, &csum, 2);
}
