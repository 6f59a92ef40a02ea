#include <string.h>

#include <rte_byteorder.h>

#include "dataplane/tq_counters.h"
#include "tq_eth.h"

int
tq_eth_parse(const uint8_t *p, size_t len, struct tq_eth_view *out)
{
	uint16_t type;

	if (len < TQ_ETH_HDR_LEN)
		return -TQ_CTR_eth_truncated;
	memcpy(&out->dst, p, RTE_ETHER_ADDR_LEN);
	memcpy(&out->src, p + 6, RTE_ETHER_ADDR_LEN);
	memcpy(&type, p + 12, 2);
	out->ethertype = rte_be_to_cpu_16(type);
	if (out->ethertype == RTE_ETHER_TYPE_VLAN || out->ethertype == RTE_ETHER_TYPE_QINQ)
		return -TQ_CTR_eth_vlan;
	return TQ_ETH_HDR_LEN;
}

int
tq_eth_accept(const struct tq_eth_view *v, const struct rte_ether_addr *ours)
{
	if (rte_is_same_ether_addr(&v->dst, ours) || rte_is_broadcast_ether_addr(&v->dst))
		return 0;
	if (rte_is_multicast_ether_addr(&v->dst))
		return -TQ_CTR_eth_multicast;
	return -TQ_CTR_eth_not_for_us;
}

void
tq_eth_build(uint8_t *p, const struct rte_ether_addr *dst, const struct rte_ether_addr *src,
	     uint16_t ethertype)
{
	uint16_t type = rte_cpu_to_be_16(ethertype);

	memmove(p, dst, RTE_ETHER_ADDR_LEN);
	memmove(p + 6, src, RTE_ETHER_ADDR_LEN);
	memcpy(p + 12, &type, 2);
}
