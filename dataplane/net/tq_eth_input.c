#include <rte_ether.h>
#include <rte_mbuf.h>

#include "tq_eth.h"
#include "tq_net.h"

void
tq_net_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m)
{
	struct tq_port_stats *ps = &w->port_stats[port];
	struct tq_eth_view eth;
	int rc;

	ps->rx_packets++;
	ps->rx_bytes += rte_pktmbuf_pkt_len(m);
	w->ctr[TQ_CTR_rx_packets]++;
	w->ctr[TQ_CTR_rx_bytes] += rte_pktmbuf_pkt_len(m);
	if (unlikely(m->nb_segs != 1)) {
		tq_net_drop(w, m, TQ_CTR_rx_multiseg);
		return;
	}
	rc = tq_eth_parse(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m), &eth);
	if (rc < 0 || (rc = tq_eth_accept(&eth, &tq_ports[port].mac)) < 0) {
		tq_net_drop(w, m, (unsigned int)-rc);
		return;
	}
	if (rte_is_broadcast_ether_addr(&eth.dst))
		w->ctr[TQ_CTR_eth_broadcast]++;
	rte_pktmbuf_adj(m, TQ_ETH_HDR_LEN);
	switch (eth.ethertype) {
	case RTE_ETHER_TYPE_ARP:
		tq_arp_input(w, port, m);
		break;
	case RTE_ETHER_TYPE_IPV4:
		tq_ipv4_input(w, port, m);
		break;
	default:
		tq_net_drop(w, m, TQ_CTR_eth_unknown_type);
		break;
	}
}
