/*
 * TCP out-of-order queue: up to ooo_max_segs runs of contiguous payload per connection
 * (each an mbuf chain), sorted by sequence number, overlaps trimmed on insert, counted
 * against the receive buffer so the advertised window shrinks as it fills; at most
 * max(ooo_max_segs, rcv_buf / 512) mbufs in all. Worker only.
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

/* Mbufs the queue may hold: received frames carry at least 512 bytes each up to the
 * window (MSS 536 peers), more only from a peer that cuts its data small on purpose. */
static uint32_t
ooo_mbuf_cap(void)
{
	return RTE_MAX(tq_tcp_cfg.ooo_max_segs, tq_tcp_cfg.rcv_buf / 512);
}

/* Free entry @i and close the gap. */
static void
ooo_remove(struct tq_tcp_conn *c, unsigned int i)
{
	struct tq_tcp_ooo_seg *q = c->ooo;

	c->ooo_bytes -= q[i].len;
	c->ooo_mbufs -= q[i].m->nb_segs;
	rte_pktmbuf_free(q[i].m);
	memmove(&q[i], &q[i + 1], (c->ooo_n - i - 1) * sizeof(*q));
	c->ooo_n--;
}

/* The array goes back to the worker's pool once nothing waits in it. */
static void
ooo_release_if_empty(struct tq_tcp_conn *c)
{
	if (c->ooo_n || !c->ooo)
		return;
	rte_mempool_put(c->w->tcp->ooo_pool, c->ooo);
	c->ooo = NULL;
}

void
tq_tcp_ooo_insert(struct tq_tcp_conn *c, uint32_t seq, uint32_t len, struct rte_mbuf *m)
{
	struct tq_tcp_ooo_seg *q;
	unsigned int i;
	uint16_t segs;
	bool whole;

	if (!c->ooo && rte_mempool_get(c->w->tcp->ooo_pool, (void **)&c->ooo) < 0) {
		c->ooo = NULL;
		c->w->ctr[TQ_CTR_tcp_ooo_no_memory]++;
		rte_pktmbuf_free(m); /* the peer sends it again */
		return;
	}
	q = c->ooo;

	c->ooo_last = seq; /* RFC 2018 4: the next ACK reports this segment's block first */
	/* find the first queued run that ends after our start */
	for (i = 0; i < c->ooo_n && tq_seq_le(q[i].seq + q[i].len, seq); i++)
		;
	/* trim what the previous data already covers */
	if (i < c->ooo_n && tq_seq_le(q[i].seq, seq)) {
		uint32_t covered = q[i].seq + q[i].len - seq;

		tq_tcp_dsack_note(c, seq, seq + RTE_MIN(covered, len));
		if (covered >= len) {
			rte_pktmbuf_free(m);
			ooo_release_if_empty(c);
			return;
		}
		m = chain_adj(m, covered);
		seq += covered;
		len -= covered;
		i++;
	}
	/* drop queued runs that the new data covers entirely */
	while (i < c->ooo_n && tq_seq_le(q[i].seq + q[i].len, seq + len))
		ooo_remove(c, i);
	/* our tail overlaps the next queued run: keep only what is new (received frames
	 * are single segments; a chain is kept whole and trimmed when pulled) */
	if (i < c->ooo_n && tq_seq_lt(q[i].seq, seq + len) && m->nb_segs == 1) {
		rte_pktmbuf_trim(m, (uint16_t)(seq + len - q[i].seq));
		len = q[i].seq - seq;
	}
	segs = m->nb_segs;
	if (len == 0) {
		rte_pktmbuf_free(m);
		ooo_release_if_empty(c);
		return;
	}
	/* the window bounds the bytes; this bounds the mbufs (tiny segments) */
	if (c->ooo_mbufs + segs > ooo_mbuf_cap())
		goto full;
	/*
	 * Contiguous data joins its neighbour's chain, so an entry is a run of segments and
	 * ooo_max_segs bounds the runs (holes), not the segments: after one loss a whole
	 * window arrives out of order as one entry (the window bounds the bytes).
	 */
	whole = rte_pktmbuf_pkt_len(m) == len; /* else a chain kept whole, trimmed on pull */
	if (whole && i > 0 && q[i - 1].seq + q[i - 1].len == seq &&
	    rte_pktmbuf_pkt_len(q[i - 1].m) == q[i - 1].len &&
	    q[i - 1].m->nb_segs + segs <= RTE_MBUF_MAX_NB_SEGS && !rte_pktmbuf_chain(q[i - 1].m, m)) {
		q[i - 1].len += len;
		if (i < c->ooo_n && q[i - 1].seq + q[i - 1].len == q[i].seq &&
		    rte_pktmbuf_pkt_len(q[i].m) == q[i].len &&
		    q[i - 1].m->nb_segs + q[i].m->nb_segs <= RTE_MBUF_MAX_NB_SEGS &&
		    !rte_pktmbuf_chain(q[i - 1].m, q[i].m)) {
			q[i - 1].len += q[i].len;
			memmove(&q[i], &q[i + 1], (c->ooo_n - i - 1) * sizeof(*q));
			c->ooo_n--;
		}
	} else if (whole && i < c->ooo_n && seq + len == q[i].seq &&
		   q[i].m->nb_segs + segs <= RTE_MBUF_MAX_NB_SEGS && !rte_pktmbuf_chain(m, q[i].m)) {
		q[i].m = m;
		q[i].seq = seq;
		q[i].len += len;
	} else {
		if (c->ooo_n >= RTE_MIN(tq_tcp_cfg.ooo_max_segs, c->w->tcp->ooo_cap))
			goto full;
		memmove(&q[i + 1], &q[i], (c->ooo_n - i) * sizeof(*q));
		q[i] = (struct tq_tcp_ooo_seg){.seq = seq, .len = len, .m = m};
		c->ooo_n++;
	}
	c->ooo_bytes += len;
	c->ooo_mbufs += segs;
	c->w->ctr[TQ_CTR_tcp_ooo_segs]++;
	return;
full:
	c->w->ctr[TQ_CTR_tcp_ooo_full]++;
	rte_pktmbuf_free(m);
	ooo_release_if_empty(c);
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
		c->ooo_mbufs -= s.m->nb_segs;
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
	ooo_release_if_empty(c);
}

void
tq_tcp_ooo_purge(struct tq_tcp_conn *c)
{
	for (unsigned int i = 0; i < c->ooo_n; i++)
		rte_pktmbuf_free(c->ooo[i].m);
	c->ooo_n = 0;
	c->ooo_bytes = 0;
	c->ooo_mbufs = 0;
	ooo_release_if_empty(c);
}
