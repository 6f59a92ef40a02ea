#include <string.h>

#include <netinet/in.h>
#include <rte_mbuf.h>

#include "tq_icmp.h"
#include "tq_ipv4.h"
#include "tq_net.h"

#define TQ_PING_DATA_LEN 56 /* what ping(8) sends by default */

void
tq_icmp_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m,
	      const struct tq_ipv4_view *ip)
{
	uint8_t *hdr = rte_pktmbuf_mtod(m, uint8_t *);
	uint8_t *icmp = hdr + ip->hdr_len;
	struct tq_icmp_view v;
	int rc;

	(void)port;
	rc = tq_icmp_parse(icmp, ip->payload_len, &v);
	if (rc < 0) {
		tq_net_drop(w, m, (unsigned int)-rc);
		return;
	}
	switch (v.type) {
	case TQ_ICMP_ECHO_REQUEST:
		w->ctr[TQ_CTR_icmp_echo_requests]++;
		/* The request's mbuf becomes the reply: same payload, addresses swapped. */
		tq_icmp_echo_to_reply(icmp);
		tq_ipv4_build(hdr, ip->dst, ip->src, IPPROTO_ICMP, ip->payload_len, w->ip_id++,
			      TQ_IPV4_DEFAULT_TTL, true);
		w->ctr[TQ_CTR_icmp_echo_replies_tx]++;
		tq_ipv4_output(w, m);
		break;
	case TQ_ICMP_ECHO_REPLY:
		w->ctr[TQ_CTR_icmp_echo_replies_rx]++;
		rte_pktmbuf_free(m);
		break;
	default:
		tq_net_drop(w, m, TQ_CTR_icmp_unhandled_type);
		break;
	}
}

void
tq_icmp_send_echo(struct tq_worker *w, uint32_t dst, uint16_t seq)
{
	uint8_t data[TQ_PING_DATA_LEN];
	struct rte_mbuf *m;
	uint32_t next_hop;
	uint8_t *p;
	int port = tq_port_route(dst, &next_hop);

	if (port < 0) {
		w->ctr[TQ_CTR_ipv4_no_route]++;
		return;
	}
	m = rte_pktmbuf_alloc(w->pool);
	if (unlikely(!m)) {
		w->ctr[TQ_CTR_mbuf_alloc_failed]++;
		return;
	}
	p = (uint8_t *)rte_pktmbuf_append(m, TQ_IPV4_HDR_LEN + TQ_ICMP_HDR_LEN + sizeof(data));
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	tq_icmp_build_echo(p + TQ_IPV4_HDR_LEN, TQ_ICMP_ECHO_REQUEST, w->ping_id, seq, data,
			   sizeof(data));
	tq_ipv4_build(p, tq_ports[port].ipv4, dst, IPPROTO_ICMP,
		      TQ_ICMP_HDR_LEN + sizeof(data), w->ip_id++, TQ_IPV4_DEFAULT_TTL, true);
	tq_ipv4_output(w, m);
}
