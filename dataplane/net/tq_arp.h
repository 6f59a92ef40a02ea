/*
 * ARP for Ethernet/IPv4 (RFC 826): parse and build. Pure functions, any thread.
 */
#ifndef TQ_ARP_H
#define TQ_ARP_H

#include <stddef.h>
#include <stdint.h>

#include <rte_ether.h>

#define TQ_ARP_LEN 28 /* Ethernet/IPv4 ARP body */
#define TQ_ARP_OP_REQUEST 1
#define TQ_ARP_OP_REPLY 2

struct tq_arp_view {
	uint16_t op; /* host order */
	struct rte_ether_addr sha;
	struct rte_ether_addr tha;
	uint32_t sip; /* network order */
	uint32_t tip; /* network order */
};

/*
 * Parse an ARP body at @p. Returns TQ_ARP_LEN, or -TQ_CTR_arp_truncated,
 * -TQ_CTR_arp_bad_format, -TQ_CTR_arp_bad_op, -TQ_CTR_arp_bad_sender
 * (sender hardware address broadcast, multicast or zero).
 */
int tq_arp_parse(const uint8_t *p, size_t len, struct tq_arp_view *out);

/* Write an Ethernet/IPv4 ARP body (TQ_ARP_LEN bytes) at @p. Addresses in network order. */
void tq_arp_build(uint8_t *p, uint16_t op, const struct rte_ether_addr *sha, uint32_t sip,
		  const struct rte_ether_addr *tha, uint32_t tip);

#endif
