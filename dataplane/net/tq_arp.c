#include <string.h>

#include <rte_byteorder.h>

#include "dataplane/tq_counters.h"
#include "tq_arp.h"

static uint16_t
load_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int
tq_arp_parse(const uint8_t *p, size_t len, struct tq_arp_view *out)
{
	if (len < TQ_ARP_LEN)
		return -TQ_CTR_arp_truncated;
	if (load_be16(p) != 1 /* Ethernet */ || load_be16(p + 2) != RTE_ETHER_TYPE_IPV4 ||
	    p[4] != RTE_ETHER_ADDR_LEN || p[5] != 4)
		return -TQ_CTR_arp_bad_format;
	out->op = load_be16(p + 6);
	if (out->op != TQ_ARP_OP_REQUEST && out->op != TQ_ARP_OP_REPLY)
		return -TQ_CTR_arp_bad_op;
	memcpy(&out->sha, p + 8, 6);
	memcpy(&out->sip, p + 14, 4);
	memcpy(&out->tha, p + 18, 6);
	memcpy(&out->tip, p + 24, 4);
	if (rte_is_multicast_ether_addr(&out->sha) || rte_is_zero_ether_addr(&out->sha))
		return -TQ_CTR_arp_bad_sender; /* broadcast is a multicast address too */
	return TQ_ARP_LEN;
}

void
tq_arp_build(uint8_t *p, uint16_t op, const struct rte_ether_addr *sha, uint32_t sip,
	     const struct rte_ether_addr *tha, uint32_t tip)
{
	static const uint8_t fixed[6] = {0, 1, 0x08, 0x00, 6, 4};

	memcpy(p, fixed, sizeof(fixed));
	p[6] = (uint8_t)(op >> 8);
	p[7] = (uint8_t)op;
	/* memmove: a reply is built in place over the request it answers */
	memmove(p + 18, tha, 6);
	memcpy(p + 24, &tip, 4);
	memmove(p + 8, sha, 6);
	memcpy(p + 14, &sip, 4);
}
