#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "tq_arp.h"
#include "tq_eth.h"
#include "tq_net.h"

static void
arp_tx(struct tq_worker *w, uint16_t port, struct rte_mbuf *m, const struct rte_ether_addr *dst)
{
	uint8_t *eth = (uint8_t *)rte_pktmbuf_prepend(m, TQ_ETH_HDR_LEN);

	if (unlikely(!eth)) { /* every mbuf we build or receive keeps headroom */
		tq_net_drop(w, m, TQ_CTR_mbuf_alloc_failed);
		return;
	}
	tq_eth_build(eth, dst, &tq_ports[port].mac, RTE_ETHER_TYPE_ARP);
	tq_worker_tx(w, port, m);
}

/* Build and send an ARP request asking for @tip; @sip is our sender address. */
static void
arp_send_request(struct tq_worker *w, uint16_t port, uint32_t sip, uint32_t tip)
{
	static const struct rte_ether_addr zero;
	struct rte_ether_addr bcast;
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	uint8_t *p;

	if (unlikely(!m)) {
		w->ctr[TQ_CTR_mbuf_alloc_failed]++;
		return;
	}
	p = (uint8_t *)rte_pktmbuf_append(m, TQ_ARP_LEN);
	tq_arp_build(p, TQ_ARP_OP_REQUEST, &tq_ports[port].mac, sip, &zero, tip);
	memset(&bcast, 0xff, sizeof(bcast));
	arp_tx(w, port, m, &bcast);
}

void
tq_arp_send_garp(struct tq_worker *w, uint16_t port)
{
	if (port >= tq_nb_ports || !tq_ports[port].up || !tq_ports[port].ipv4)
		return;
	arp_send_request(w, port, tq_ports[port].ipv4, tq_ports[port].ipv4);
	w->ctr[TQ_CTR_arp_garp_tx]++;
}

/* Send the packet held for @e, now that its MAC is known. */
static void
arp_release_hold(struct tq_worker *w, struct tq_arp_entry *e)
{
	struct rte_mbuf *m = e->hold;
	uint8_t *eth;

	if (!m)
		return;
	e->hold = NULL;
	eth = (uint8_t *)rte_pktmbuf_prepend(m, TQ_ETH_HDR_LEN);
	if (unlikely(!eth)) {
		tq_net_drop(w, m, TQ_CTR_mbuf_alloc_failed);
		return;
	}
	tq_eth_build(eth, &e->mac, &tq_ports[e->port].mac, RTE_ETHER_TYPE_IPV4);
	tq_worker_tx(w, e->port, m);
}

void
tq_arp_learned(struct tq_worker *w, uint16_t port, uint32_t ip,
	       const struct rte_ether_addr *mac, bool create, bool propagate)
{
	struct tq_arp_entry *e = tq_arp_cache_lookup(&w->arp, ip);
	bool changed = !e || e->state != TQ_ARP_REACHABLE || e->port != port ||
		       !rte_is_same_ether_addr(&e->mac, mac);

	e = tq_arp_cache_learn(&w->arp, port, ip, mac, w->now, create);
	if (!e) {
		if (create)
			w->ctr[TQ_CTR_arp_cache_full]++;
		return;
	}
	w->ctr[propagate ? TQ_CTR_arp_learned : TQ_CTR_arp_learned_remote]++;
	arp_release_hold(w, e);
	if (propagate && changed && tq_dp.nb_workers > 1) {
		struct tq_ring_msg msg = {.type = TQ_MSG_ARP_LEARN, .a = ip};

		memcpy(&msg.b, mac, RTE_ETHER_ADDR_LEN);
		msg.b |= (uint64_t)port << 48;
		for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
			if (tq_dp.workers[i] != w)
				tq_worker_post(tq_dp.workers[i], &msg, w);
	}
}

void
tq_arp_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m)
{
	const struct tq_port *p = &tq_ports[port];
	struct tq_arp_view a;
	uint8_t *body = rte_pktmbuf_mtod(m, uint8_t *);
	bool for_us;
	int rc;

	rc = tq_arp_parse(body, rte_pktmbuf_data_len(m), &a);
	if (rc < 0) {
		tq_net_drop(w, m, (unsigned int)-rc);
		return;
	}
	w->ctr[a.op == TQ_ARP_OP_REQUEST ? TQ_CTR_arp_requests_rx : TQ_CTR_arp_replies_rx]++;
	if (!p->ipv4) {
		tq_net_drop(w, m, TQ_CTR_arp_not_for_us);
		return;
	}
	if (a.sip == p->ipv4) { /* another host uses our address (or probes as if it did) */
		tq_net_drop(w, m, TQ_CTR_arp_conflict);
		return;
	}
	for_us = a.tip == p->ipv4;
	/* RFC 826: merge the sender when the target is us, otherwise only refresh. A sender
	 * of 0.0.0.0 is an RFC 5227 probe: answer it, learn nothing. */
	if (a.sip != 0)
		tq_arp_learned(w, port, a.sip, &a.sha, for_us, true);
	if (!for_us) {
		tq_net_drop(w, m, TQ_CTR_arp_not_for_us);
		return;
	}
	if (a.op != TQ_ARP_OP_REQUEST) {
		rte_pktmbuf_free(m); /* a reply to us: learning it was all there was to do */
		return;
	}
	/* Answer in place: the request's mbuf becomes the reply. */
	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_data_len(m) - TQ_ARP_LEN));
	tq_arp_build(body, TQ_ARP_OP_REPLY, &p->mac, p->ipv4, &a.sha, a.sip);
	arp_tx(w, port, m, &a.sha);
	w->ctr[TQ_CTR_arp_replies_tx]++;
}

void
tq_arp_output(struct tq_worker *w, uint16_t port, uint32_t next_hop, struct rte_mbuf *m)
{
	struct tq_arp_entry *e = tq_arp_cache_lookup(&w->arp, next_hop);
	uint8_t *eth;

	if (likely(e && e->state == TQ_ARP_REACHABLE)) {
		eth = (uint8_t *)rte_pktmbuf_prepend(m, TQ_ETH_HDR_LEN);
		if (unlikely(!eth)) {
			tq_net_drop(w, m, TQ_CTR_mbuf_alloc_failed);
			return;
		}
		tq_eth_build(eth, &e->mac, &tq_ports[port].mac, RTE_ETHER_TYPE_IPV4);
		tq_worker_tx(w, port, m);
		return;
	}
	if (!e) {
		e = tq_arp_cache_insert(&w->arp, next_hop);
		if (!e) {
			tq_net_drop(w, m, TQ_CTR_arp_cache_full);
			return;
		}
		e->state = TQ_ARP_INCOMPLETE;
		e->port = port;
		e->retries = 1;
		e->expire_tsc = w->now + w->arp.retry_tsc;
		arp_send_request(w, port, tq_ports[port].ipv4, next_hop);
		w->ctr[TQ_CTR_arp_requests_tx]++;
	}
	if (e->hold)
		tq_net_drop(w, e->hold, TQ_CTR_arp_hold_replaced);
	e->hold = m;
}

void
tq_arp_age(struct tq_worker *w)
{
	struct tq_arp_cache *c = &w->arp;

	for (uint32_t i = 0; i <= c->mask;) {
		struct tq_arp_entry *e = &c->slots[i];

		if (e->state == TQ_ARP_FREE || w->now < e->expire_tsc) {
			i++;
			continue;
		}
		if (e->state == TQ_ARP_INCOMPLETE && e->retries < c->max_retries) {
			arp_send_request(w, e->port, tq_ports[e->port].ipv4, e->ip);
			w->ctr[TQ_CTR_arp_requests_tx]++;
			e->retries++;
			e->expire_tsc = w->now + c->retry_tsc;
			i++;
			continue;
		}
		if (e->state == TQ_ARP_INCOMPLETE) {
			if (e->hold)
				tq_net_drop(w, e->hold, TQ_CTR_arp_resolve_failed);
			e->hold = NULL;
		} else {
			w->ctr[TQ_CTR_arp_expired]++;
		}
		/* Removal shifts a later entry into slot i: look at slot i again. */
		tq_arp_cache_remove(c, e);
	}
}
