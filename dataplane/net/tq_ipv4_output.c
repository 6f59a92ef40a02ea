#include <string.h>

#include <rte_mbuf.h>

#include "tq_csum.h"
#include "tq_ipv4.h"
#include "tq_net.h"

void
tq_ipv4_output(struct tq_worker *w, struct rte_mbuf *m)
{
	uint8_t *hdr = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t dst, next_hop;
	uint16_t csum = 0;
	int port;

	memcpy(&dst, hdr + 16, 4);
	port = tq_port_route(dst, &next_hop);
	if (unlikely(port < 0)) {
		tq_net_drop(w, m, TQ_CTR_ipv4_no_route);
		return;
	}
	memcpy(hdr + 10, &csum, 2);
	if (tq_ports[port].tx_ipv4_csum) {
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
		m->l2_len = 14;
		m->l3_len = (hdr[0] & 0xf) * 4u;
	} else {
		csum = tq_csum(hdr, (hdr[0] & 0xf) * 4u);
		memcpy(hdr + 10, &csum, 2);
	}
	w->ctr[TQ_CTR_ipv4_tx]++;
	tq_arp_output(w, (uint16_t)port, next_hop, m);
}
