#include <rte_mbuf.h>

#include "tq_ipv4.h"
#include "tq_net.h"
#include "tq_tcp_var.h"

void
tq_ipv4_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m)
{
	uint64_t csum_flags = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	unsigned int flags = 0;
	struct tq_ipv4_view ip;
	int rc;

	if (csum_flags == RTE_MBUF_F_RX_IP_CKSUM_BAD) {
		tq_net_drop(w, m, TQ_CTR_ipv4_bad_checksum);
		return;
	}
	if (csum_flags == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
		flags |= TQ_IPV4_CSUM_VERIFIED;
	rc = tq_ipv4_parse(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m), flags,
			   &ip);
	if (rc < 0) {
		tq_net_drop(w, m, (unsigned int)-rc);
		return;
	}
	if (!tq_port_owns(port, ip.dst)) {
		tq_net_drop(w, m, TQ_CTR_ipv4_not_for_us);
		return;
	}
	/* Ethernet pads short frames: the IPv4 total length says where the packet ends. */
	if (rte_pktmbuf_data_len(m) > ip.total_len)
		rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_data_len(m) - ip.total_len));
	w->ctr[TQ_CTR_ipv4_rx]++;
	switch (ip.proto) {
	case IPPROTO_ICMP:
		tq_icmp_input(w, port, m, &ip);
		break;
	case IPPROTO_TCP:
		tq_tcp_input(w, port, m, &ip);
		break;
	default:
		tq_net_drop(w, m, TQ_CTR_ipv4_unknown_proto);
		break;
	}
}
