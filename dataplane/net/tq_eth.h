/*
 * Ethernet II header: parse and build. Pure functions, any thread, no allocation.
 */
#ifndef TQ_ETH_H
#define TQ_ETH_H

#include <stddef.h>
#include <stdint.h>

#include <rte_ether.h>

struct tq_eth_view {
	struct rte_ether_addr dst;
	struct rte_ether_addr src;
	uint16_t ethertype; /* host order */
};

#define TQ_ETH_HDR_LEN 14

/*
 * Parse the Ethernet header at @p. Returns the header length (14), or
 * -TQ_CTR_eth_truncated / -TQ_CTR_eth_vlan (802.1Q/802.1ad tags: no VLANs configured).
 */
int tq_eth_parse(const uint8_t *p, size_t len, struct tq_eth_view *out);

/*
 * Is the frame for a host whose MAC is @ours? Returns 0 for our unicast address and
 * broadcast, -TQ_CTR_eth_multicast or -TQ_CTR_eth_not_for_us otherwise.
 */
int tq_eth_accept(const struct tq_eth_view *v, const struct rte_ether_addr *ours);

/* Write an Ethernet header (14 bytes) at @p. */
void tq_eth_build(uint8_t *p, const struct rte_ether_addr *dst, const struct rte_ether_addr *src,
		  uint16_t ethertype);

#endif
