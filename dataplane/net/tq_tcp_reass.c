/*
 * TCP out-of-order queue: up to ooo_max_segs payload mbufs per connection, sorted by
 * sequence number, overlaps trimmed on insert, counted against the receive buffer so the
 * advertised window shrinks as it fills. Worker only.
 */
#include <string.h>

#include <rte_mbuf.h>

#include "dataplane/tq_worker.h"
#include "tq_tcp_var.h"

/* Drop @n bytes from the front of the payload chain @m (returns the new head or NULL). */
static struct rte_mbuf *
chain_adj(struct rte_mbuf *m, uint32_t n)
{
	while (m && n >= m->data_len && n > 0) {
		struct rte_mbuf *next = m->next;
		uint32_t pkt = m->pkt_len - m->data_len;
		uint16_t segs = (uint16_t)(m->nb_segs - 1);

		n -= m->data_len;
		m->next = NULL;
		m->nb_segs = 1;
		rte_pktmbuf_free_seg(m);
		m = next;
		if (m) {
			m->pkt_len = pkt;
			m->nb_segs = segs;
		}
	}
	if (m && n)
		rte_pktmbuf_adj(m, (uint16_t)n);
	return m;
}

void
tq_tcp_ooo_insert(struct tq_tcp_conn *c, uint32_t seq, uint32_t len, struct rte_mbuf *m)
{
	struct tq_tcp_ooo_seg *q = c->ooo;
	unsigned int i;

	c->ooo_last = seq; /* RFC 2018 4: the next ACK reports this segment's block first */
	/* find the first queued segment that ends after our start */
	for (i = 0; i < c->ooo_n && tq_seq_le(q[i].seq + q[i].len, seq); i++)
		;
	/* trim what the previous data already covers */
	if (i < c->ooo_n && tq_seq_le(q[i].seq, seq)) {
		uint32_t covered = q[i].seq + q[i].len - seq;

		if (covered >= len) {
			rte_pktmbuf_free(m);
			return;
		}
		m = chain_adj(m, covered);
		seq += covered;
		len -= covered;
		i++;
	}
	/* drop queued segments that the new one covers entirely; trim our tail over a partial */
	while (i < c->ooo_n && tq_seq_le(q[i].seq + q[i].len, seq + len)) {
		c->ooo_bytes -= q[i].len;
		rte_pktmbuf_free(q[i].m);
		memmove(&q[i], &q[i + 1], (c->ooo_n - i - 1) * sizeof(*q));
		c->ooo_n--;
	}
	/* our tail overlaps the next queued segment: keep only what is new (received frames
	 * are single segments; a chain is kept whole and trimmed when pulled) */
	if (i < c->ooo_n && tq_seq_lt(q[i].seq, seq + len) && m->nb_segs == 1) {
		rte_pktmbuf_trim(m, (uint16_t)(seq + len - q[i].seq));
		len = q[i].seq - seq;
	}
	if (c->ooo_n == tq_tcp_cfg.ooo_max_segs || len == 0) {
		c->w->ctr[TQ_CTR_tcp_ooo_full]++;
		rte_pktmbuf_free(m);
		return;
	}
	memmove(&q[i + 1], &q[i], (c->ooo_n - i) * sizeof(*q));
	q[i] = (struct tq_tcp_ooo_seg){.seq = seq, .len = len, .m = m};
	c->ooo_n++;
	c->ooo_bytes += len;
	c->w->ctr[TQ_CTR_tcp_ooo_segs]++;
}

void
tq_tcp_ooo_pull(struct tq_tcp_conn *c)
{
	while (c->ooo_n && tq_seq_le(c->ooo[0].seq, c->rcv_nxt) && c->state != TQ_TCP_CLOSED) {
		struct tq_tcp_ooo_seg s = c->ooo[0];
		uint32_t old = c->rcv_nxt - s.seq;

		memmove(&c->ooo[0], &c->ooo[1], (c->ooo_n - 1) * sizeof(c->ooo[0]));
		c->ooo_n--;
		c->ooo_bytes -= s.len;
		if (old >= s.len) {
			rte_pktmbuf_free(s.m);
			continue;
		}
		s.m = chain_adj(s.m, old);
		s.len -= old;
		c->rcv_nxt += s.len;
		c->w->ctr[TQ_CTR_tcp_payload_rx] += s.len;
		/* rx_held counts what the application holds: not what is freed here for it
		 * (after tq_tcp_close from an on_data of this same pull, say) */
		if (c->app_closed || !c->app->on_data) {
			rte_pktmbuf_free(s.m);
		} else {
			c->rx_held += s.len;
			c->app->on_data(c, s.m);
		}
	}
}

void
tq_tcp_ooo_purge(struct tq_tcp_conn *c)
{
	for (unsigned int i = 0; i < c->ooo_n; i++)
		rte_pktmbuf_free(c->ooo[i].m);
	c->ooo_n = 0;
	c->ooo_bytes = 0;
}
