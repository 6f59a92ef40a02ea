/*
 * Channels: the channel, exchange, queue, basic, confirm and tx classes as a client sees
 * them. Exchanges and queues themselves live behind tq_amqp_queue.c (declare, bind, route;
 * queue state on its home worker); this file keeps what is the channel's: content being
 * assembled, consumers, unacknowledged deliveries and their tags, confirms, transactions.
 * The worker owning the connection only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/tq_prio.h"
#include "tq_amqp_int.h"
#include "tq_amqp_queue.h"

int tq_amqp_send_chain(struct tq_amqp_conn *c, struct rte_mbuf *m);
void tq_amqp_memory_alarm(struct tq_worker *w);
static void consume_done(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
			 const struct tq_amqp_op *op);
static void set_paused(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, bool paused);
static void release_held(struct tq_amqp_conn *c, struct tq_amqp_chan *ch);

static struct tq_amqp_chan *
chan_get(struct tq_amqp_conn *c, uint16_t id)
{
	return c->chans ? c->chans[id] : NULL;
}

static struct tq_amqp_chan *
chan_new(struct tq_amqp_conn *c, uint16_t id)
{
	struct tq_amqp_chan *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	ch->id = id;
	ch->flow_active = true;
	ch->next_seq = 1;
	ch->next_tag = 1;
	c->chans[id] = ch;
	c->nchans++;
	return ch;
}

/* Tell the queue's home what became of a delivery (b: mode | consumer index << 8). */
static void
settle(struct tq_amqp_conn *c, uint16_t chan, const struct tq_amqp_unacked *u, uint8_t mode)
{
	struct tq_amqp_op *op = tq_amqp_op_new(c->w, OP_SETTLE);

	if (!op)
		return;
	op->qidx = u->qidx;
	op->qgen = u->qgen;
	op->handle = tq_amqp_handle(c, chan);
	op->a = u->qdid;
	op->b = mode | (uint64_t)u->cons << 8;
	tq_amqp_queue_post(c->w, op);
}

void
tq_amqp_chan_free(struct tq_amqp_conn *c, struct tq_amqp_chan *ch)
{
	/* consumers go (their unacknowledged messages return to their queues), then the rest */
	for (unsigned int i = 0; i < TQ_AMQP_MAX_CONSUMERS; i++) {
		struct tq_amqp_consumer *k = &ch->cons[i];
		struct tq_amqp_op *op;

		if (!k->used)
			continue;
		op = tq_amqp_op_new(c->w, OP_CANCEL);
		if (op) {
			op->qidx = k->qidx;
			op->qgen = k->qgen;
			op->handle = tq_amqp_handle(c, ch->id);
			op->b = i;
			tq_amqp_queue_post(c->w, op);
		}
		k->used = false;
	}
	for (uint32_t i = 0; i < ch->un_n; i++) {
		const struct tq_amqp_unacked *u = &ch->unacked[(ch->un_head + i) % ch->un_cap];

		if (u->qdid != UINT64_MAX)
			settle(c, ch->id, u, SETTLE_REQUEUE);
	}
	if (ch->commit_waiting) /* the connection no longer waits for this channel */
		c->waiting--;
	while (ch->held) { /* held deliveries go back to their queues (no-ack ones are gone) */
		struct tq_amqp_op *op = ch->held;
		struct tq_amqp_unacked u = {.qidx = op->qidx, .qgen = op->qgen, .qdid = op->a,
					    .cons = (uint8_t)op->b};

		ch->held = op->next;
		if (op->a != UINT64_MAX)
			settle(c, ch->id, &u, SETTLE_REQUEUE);
		tq_msg_unref(op->msg);
		tq_amqp_op_free(op);
	}
	tq_msg_unref(ch->pending);
	for (uint32_t i = 0; i < ch->tx_n; i++)
		tq_msg_unref(ch->tx_msgs[i]);
	free(ch->tx_msgs);
	free(ch->tx_settles);
	free(ch->unacked);
	free(ch->confirms);
	c->chans[ch->id] = NULL;
	c->nchans--;
	free(ch);
}

/* -- deliveries out ----------------------------------------------------------------- */

/* Bodies up to this size are copied after the method and header: their frames then share
 * mbufs with the frames before and after them (tq_amqp_send) instead of taking four each
 * (frames, body by reference, frame end). */
#define INLINE_BODY_MAX 1024

/*
 * basic.deliver / get-ok / return + content header + body frames, small bodies copied,
 * larger ones by reference. 0 (counted in amqp_deliveries), -ENOMEM (no mbufs now: nothing
 * was queued, try again later), -EPIPE (the connection is closing), or a permanent error
 * (-EMSGSIZE: it can never go).
 */
static int
send_content(struct tq_amqp_conn *c, uint16_t channel, uint32_t method_idx, const void *args,
	     const struct tq_msg *m)
{
	struct tq_amqp_worker *wk = c->w->amqp;
	struct rte_mbuf *head, *tail;
	ssize_t n, h;
	uint32_t off = 0, max = c->frame_max - TQ_AMQP_FRAME_OVERHEAD;
	uint8_t *p = wk->scratch;
	int rc;

	n = tq_amqp_method_encode(p, wk->scratch_cap, channel, &tq_amqp_methods[method_idx], args);
	if (n < 0)
		return (int)n;
	/* the content header as published, on this channel */
	h = TQ_AMQP_FRAME_OVERHEAD + m->props_len;
	if ((size_t)(n + h) > wk->scratch_cap)
		return -EMSGSIZE;
	tq_amqp_frame_head_encode(p + n, (size_t)h, TQ_AMQP_FRAME_HEADER, channel, m->props_len);
	memcpy(p + n + TQ_AMQP_FRAME_HDR_LEN, tq_msg_amqp_header(m), m->props_len);
	p[n + h - 1] = TQ_AMQP_FRAME_END;
	if (m->payload_len <= RTE_MIN((uint32_t)INLINE_BODY_MAX, max) &&
	    (size_t)(n + h) + TQ_AMQP_FRAME_OVERHEAD + m->payload_len <= wk->scratch_cap) {
		uint8_t *b = p + n + h;

		if (m->payload_len) {
			tq_amqp_frame_head_encode(b, TQ_AMQP_FRAME_HDR_LEN, TQ_AMQP_FRAME_BODY,
						  channel, m->payload_len);
			tq_mbuf_copy_out(m->payload, 0, m->payload_len, b + TQ_AMQP_FRAME_HDR_LEN);
			b[TQ_AMQP_FRAME_HDR_LEN + m->payload_len] = TQ_AMQP_FRAME_END;
			h += TQ_AMQP_FRAME_OVERHEAD + m->payload_len;
		}
		rc = tq_amqp_send(c, p, (size_t)(n + h));
		if (rc == 0)
			tq_worker_count(c->w, TQ_CTR_amqp_deliveries);
		return rc;
	}
	head = tq_mbuf_from_bytes(c->w->pool, p, (uint32_t)(n + h));
	if (!head) {
		tq_worker_count(c->w, TQ_CTR_mbuf_alloc_failed);
		return -ENOMEM;
	}
	tail = rte_pktmbuf_lastseg(head);
	while (off < m->payload_len) {
		uint32_t len = RTE_MIN(max, m->payload_len - off);
		uint8_t fh[TQ_AMQP_FRAME_HDR_LEN], fe = TQ_AMQP_FRAME_END;
		struct rte_mbuf *a, *body, *b;

		tq_amqp_frame_head_encode(fh, sizeof(fh), TQ_AMQP_FRAME_BODY, channel, len);
		a = tq_mbuf_from_bytes(c->w->pool, fh, sizeof(fh));
		body = tq_mbuf_slice(c->w->pool, m->payload, off, len);
		b = tq_mbuf_from_bytes(c->w->pool, &fe, 1);
		if (!a || !body || !b ||
		    head->nb_segs + 2u + body->nb_segs > RTE_MBUF_MAX_NB_SEGS) {
			rc = a && body && b ? -EMSGSIZE : -ENOMEM;
			if (rc == -ENOMEM)
				tq_worker_count(c->w, TQ_CTR_mbuf_alloc_failed);
			rte_pktmbuf_free(a);
			rte_pktmbuf_free(body);
			rte_pktmbuf_free(b);
			rte_pktmbuf_free(head);
			return rc;
		}
		tail->next = a;
		a->next = body;
		rte_pktmbuf_lastseg(body)->next = b;
		head->nb_segs = (uint16_t)(head->nb_segs + 2 + body->nb_segs);
		head->pkt_len += TQ_AMQP_FRAME_OVERHEAD + len;
		tail = b;
		off += len;
	}
	rc = tq_amqp_send_chain(c, head);
	if (rc == 0)
		tq_worker_count(c->w, TQ_CTR_amqp_deliveries);
	return rc;
}

static bool
unacked_push(struct tq_amqp_chan *ch, const struct tq_amqp_unacked *u)
{
	if (ch->un_n == ch->un_cap) {
		uint32_t cap = ch->un_cap ? ch->un_cap * 2 : 64;
		struct tq_amqp_unacked *n = malloc(cap * sizeof(*n));

		if (!n)
			return false;
		for (uint32_t i = 0; i < ch->un_n; i++)
			n[i] = ch->unacked[(ch->un_head + i) % ch->un_cap];
		free(ch->unacked);
		ch->unacked = n;
		ch->un_cap = cap;
		ch->un_head = 0;
	}
	ch->unacked[(ch->un_head + ch->un_n) % ch->un_cap] = *u;
	ch->un_n++;
	return true;
}

/* Output a connection may gather in one loop iteration before its consumers' credit waits
 * for the end of the iteration (tq_amqp_conns_flush), when TCP takes it. */
#define OUTPUT_BATCH_MAX (64 * 1024)

/*
 * May the consumers of @c be sent more? Not while its output waits for TCP (the send queue
 * was full) or is a batch already; and while the worker's mbufs run short (under a quarter
 * free), only once its send queue is down to an eighth. Never on the pool alone: queued
 * payloads may hold much of it, and only deliveries make them go.
 */
static bool
output_room(const struct tq_amqp_conn *c)
{
	struct rte_mempool *mp = c->w->pool;

	if (c->ctl_blocked || c->ctl_len >= OUTPUT_BATCH_MAX)
		return false;
	return tq_tcp_send_space(c->tcp) >= c->w->amqp->snd_buf - c->w->amqp->snd_buf / 8 ||
	       tq_pool_avail(mp) >= mp->size / 4;
}

/*
 * Give consumer @ci's home back the credit of what TCP took, in batches, while the output has
 * room (output_room); else the connection owes it, paid from tq_amqp_chan_output_room
 * (writable, the tick).
 */
static void
credit_return(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint8_t ci)
{
	struct tq_amqp_consumer *k = &ch->cons[ci];
	struct tq_amqp_op *op;

	if (k->owed < TQ_AMQP_CREDIT_BATCH || !k->used)
		return;
	if (!output_room(c) || !(op = tq_amqp_op_new(c->w, OP_CREDIT))) {
		c->credit_owed = true;
		return;
	}
	op->qidx = k->qidx;
	op->qgen = k->qgen;
	op->handle = tq_amqp_handle(c, ch->id);
	op->a = k->owed;
	op->b = ci;
	k->owed = 0;
	tq_amqp_queue_post(c->w, op);
}

/*
 * basic.deliver for @op to consumer @k (its message reference stays the op's). 0, or
 * -ENOMEM: no mbufs now, nothing happened (the caller holds the op and tries again later).
 */
static int
deliver_now(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, struct tq_amqp_consumer *k,
	    const struct tq_amqp_op *op)
{
	struct tq_amqp_unacked u = {.qidx = op->qidx, .qgen = op->qgen, .qdid = op->a,
				    .cons = (uint8_t)op->b};
	struct tq_amqp_basic_deliver d = {0};
	int rc;

	d.consumer_tag.p = (const uint8_t *)k->tag;
	d.consumer_tag.len = k->tag_len;
	d.delivery_tag = ch->next_tag; /* taken once the frames are queued */
	d.redelivered = op->b >> 8 & 1;
	d.exchange.p = (const uint8_t *)tq_msg_exchange(op->msg);
	d.exchange.len = op->msg->exchange_len;
	d.routing_key.p = (const uint8_t *)tq_msg_topic(op->msg);
	d.routing_key.len = op->msg->topic_len;
	u.tag = d.delivery_tag;
	if (!k->no_ack && !unacked_push(ch, &u)) {
		settle(c, ch->id, &u, SETTLE_REQUEUE);
		tq_amqp_conn_error(c, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR", 0);
		return 0;
	}
	rc = send_content(c, ch->id, TQ_AMQP_IDX_BASIC_DELIVER, &d, op->msg);
	if (rc < 0 && rc != -EPIPE) { /* not sent: its unacked entry (the last) goes again */
		if (!k->no_ack)
			ch->un_n--;
		if (rc == -ENOMEM)
			return -ENOMEM;
		/* it can never go (a header larger than a frame): the queue forgets it */
		tq_worker_count(c->w, TQ_CTR_amqp_no_memory);
		if (!k->no_ack)
			settle(c, ch->id, &u, SETTLE_DISCARD);
		return 0;
	}
	if (!k->no_ack)
		ch->live++;
	ch->next_tag++;
	k->owed++;
	credit_return(c, ch, (uint8_t)op->b);
	return 0;
}

/* Tell the homes of the channel's consumers to stop (or resume) delivering. */
static void
set_paused(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, bool paused)
{
	if (ch->paused == paused)
		return;
	ch->paused = paused;
	for (unsigned int i = 0; i < TQ_AMQP_MAX_CONSUMERS; i++) {
		struct tq_amqp_consumer *k = &ch->cons[i];
		struct tq_amqp_op *op;

		if (!k->used || k->no_ack || !(op = tq_amqp_op_new(c->w, OP_PAUSE)))
			continue;
		op->qidx = k->qidx;
		op->qgen = k->qgen;
		op->handle = tq_amqp_handle(c, ch->id);
		op->b = i | (uint64_t)paused << 8;
		tq_amqp_queue_post(c->w, op);
	}
}

/*
 * Held deliveries go out, in order, while the channel's prefetch has room (acks made some)
 * and mbufs can be had (else the tick or writable tries again); then the homes resume.
 */
static void
release_held(struct tq_amqp_conn *c, struct tq_amqp_chan *ch)
{
	while (ch->held) {
		struct tq_amqp_op *op = ch->held;
		uint8_t ci = (uint8_t)op->b;
		struct tq_amqp_consumer *k = &ch->cons[ci];

		if (k->used && k->qidx == op->qidx && k->qgen == op->qgen) {
			if (!k->no_ack && ch->global_prefetch && ch->live >= ch->global_prefetch)
				break;
			if (deliver_now(c, ch, k, op) == -ENOMEM) {
				c->held_retry = true;
				break;
			}
		} /* else its consumer went: the home took back what it had unacked */
		ch->held = op->next;
		if (!ch->held)
			ch->held_tail = NULL;
		tq_msg_unref(op->msg);
		tq_amqp_op_free(op);
	}
	if (!ch->held)
		set_paused(c, ch, false);
}

/* Keep @op (a delivery) on the channel after those held already. */
static void
hold(struct tq_amqp_chan *ch, struct tq_amqp_op *op)
{
	op->next = NULL;
	if (ch->held_tail)
		ch->held_tail->next = op;
	else
		ch->held = op;
	ch->held_tail = op;
}

/*
 * A delivery for consumer @ci of a channel that cannot take it: the consumer went, or its
 * channel or connection is closing. A consumer still registered is cancelled at its home
 * first, so the home stops sending to it; then the message goes back (a requeue that
 * arrives after the cancel finds it requeued already). Without the cancel the home gave the
 * requeued message straight back to the same consumer, for as long as the channel lingered.
 */
static void
deliver_stale(struct tq_worker *w, struct tq_amqp_conn *c, const struct tq_amqp_op *op)
{
	uint8_t ci = (uint8_t)op->b;
	struct tq_amqp_chan *ch = c ? chan_get(c, TQ_AMQP_H_CHAN(op->handle)) : NULL;
	struct tq_amqp_consumer *k = ch && ci < TQ_AMQP_MAX_CONSUMERS ? &ch->cons[ci] : NULL;

	if (k && k->used && k->qidx == op->qidx && k->qgen == op->qgen) {
		struct tq_amqp_op *cancel = tq_amqp_op_new(w, OP_CANCEL);

		if (cancel) {
			cancel->qidx = k->qidx;
			cancel->qgen = k->qgen;
			cancel->handle = op->handle;
			cancel->b = ci;
			tq_amqp_queue_post(w, cancel);
			k->used = false;
		}
	}
	if (op->a != UINT64_MAX) { /* not no-ack */
		struct tq_amqp_op *back = tq_amqp_op_new(w, OP_SETTLE);

		if (back) {
			back->qidx = op->qidx;
			back->qgen = op->qgen;
			back->handle = op->handle;
			back->a = op->a;
			back->b = SETTLE_REQUEUE | (uint64_t)ci << 8;
			tq_amqp_queue_post(w, back);
		}
	}
	tq_worker_count(w, TQ_CTR_amqp_stale_ops);
}

void
tq_amqp_chan_output_room(struct tq_amqp_conn *c)
{
	uint32_t seen = 0;

	if (!c->chans || c->ctl_blocked || (!c->held_retry && !c->credit_owed))
		return;
	c->held_retry = false; /* set again by what still cannot go */
	c->credit_owed = false;
	for (uint32_t i = 1; i <= c->channel_max && seen < c->nchans; i++) {
		struct tq_amqp_chan *ch = c->chans[i];

		if (!ch)
			continue;
		seen++;
		if (ch->held)
			release_held(c, ch);
		for (unsigned int ci = 0; ci < TQ_AMQP_MAX_CONSUMERS; ci++)
			credit_return(c, ch, (uint8_t)ci);
	}
}

/* Settle the message of get reply @op at its queue (works with its connection gone). */
static void
get_settle(struct tq_worker *w, const struct tq_amqp_op *op, uint8_t mode)
{
	struct tq_amqp_op *s = tq_amqp_op_new(w, OP_SETTLE);

	if (!s)
		return;
	s->qidx = op->qidx;
	s->qgen = op->qgen;
	s->handle = op->handle;
	s->a = op->a;
	s->b = mode | 0xffu << 8; /* the basic.get pseudo-consumer */
	tq_amqp_queue_post(w, s);
}

/* basic.get-ok for reply @op; 0, or -ENOMEM (nothing sent: the caller answers get-empty). */
static int
get_ok(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_op *op)
{
	bool no_ack = op->b >> 62 & 1;
	struct tq_amqp_basic_get_ok g = {0};
	struct tq_amqp_unacked u = {.qidx = op->qidx, .qgen = op->qgen, .qdid = op->a,
				    .cons = 0xff};
	int rc;

	g.delivery_tag = ch->next_tag;
	g.redelivered = op->b >> 63;
	g.exchange.p = (const uint8_t *)tq_msg_exchange(op->msg);
	g.exchange.len = op->msg->exchange_len;
	g.routing_key.p = (const uint8_t *)tq_msg_topic(op->msg);
	g.routing_key.len = op->msg->topic_len;
	g.message_count = (uint32_t)(op->b & 0xffffffff);
	u.tag = g.delivery_tag;
	if (!no_ack && !unacked_push(ch, &u)) {
		tq_amqp_conn_error(c, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR", 0);
		return -ENOMEM;
	}
	rc = send_content(c, ch->id, TQ_AMQP_IDX_BASIC_GET_OK, &g, op->msg);
	if (rc < 0 && rc != -EPIPE) { /* not sent: back to the queue */
		if (!no_ack)
			ch->un_n--;
		return -ENOMEM;
	}
	ch->next_tag++;
	return 0;
}

/* OP_DELIVER / OP_GET_REPLY / OP_CONFIRM / OP_REPLY / OP_CANCELLED for one of our channels */
void
tq_amqp_chan_op(struct tq_worker *w, struct tq_amqp_op *op)
{
	struct tq_amqp_conn *c = tq_amqp_conn_by_handle(w, op->handle);
	struct tq_amqp_chan *ch = c && c->state == AC_RUNNING ? chan_get(c, TQ_AMQP_H_CHAN(op->handle))
							     : NULL;

	if (ch && ch->closing)
		ch = NULL;
	switch (op->kind) {
	case OP_DELIVER: {
		uint8_t ci = (uint8_t)op->b;
		struct tq_amqp_consumer *k = ch && ci < TQ_AMQP_MAX_CONSUMERS ? &ch->cons[ci] : NULL;

		if (!k || !k->used || k->qidx != op->qidx || k->qgen != op->qgen) {
			deliver_stale(w, c, op);
			break;
		}
		if (ch->held) { /* after those waiting already (same consumer: in order) */
			hold(ch, op);
			if (!k->no_ack && ch->global_prefetch && ch->live >= ch->global_prefetch)
				set_paused(c, ch, true);
			return; /* the op (and its message) stays with the channel */
		}
		if (!k->no_ack && ch->global_prefetch && ch->live >= ch->global_prefetch) {
			/* over the channel's prefetch: held here, the homes pause */
			hold(ch, op);
			set_paused(c, ch, true);
			return;
		}
		if (deliver_now(c, ch, k, op) == -ENOMEM) { /* no mbufs: again later, in order */
			hold(ch, op);
			c->held_retry = true;
			return;
		}
		break;
	}
	case OP_GET_REPLY:
		/* the home lends every message it gets (a != UINT64_MAX), no-ack ones too (b bit
		 * 62): acked once get-ok is out, back to the queue when it cannot go */
		if (ch && op->msg && get_ok(c, ch, op) == 0) {
			if (op->b >> 62 & 1)
				get_settle(w, op, SETTLE_ACK);
		} else if (ch) {
			struct tq_amqp_basic_get_empty e = {0};

			if (op->msg)
				get_settle(w, op, SETTLE_REQUEUE);
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_BASIC_GET_EMPTY, &e);
		} else if (op->msg) {
			get_settle(w, op, SETTLE_REQUEUE);
		}
		if (c) {
			c->waiting--;
			tq_amqp_conn_resume(c);
		}
		break;
	case OP_CONFIRM:
		if (ch) {
			tq_amqp_confirm_done(c, ch, op->a, op->b != 0);
			tq_amqp_conn_resume(c); /* a tx.commit-ok may have let reading go on */
		}
		break;
	case OP_REPLY:
		if (c) {
			c->waiting--;
			if (ch && (uint8_t)(op->b >> 16) == OP_CONSUME)
				consume_done(c, ch, op);
			else if (ch)
				tq_amqp_reply_done(c, ch, op);
			tq_amqp_conn_resume(c);
		}
		break;
	case OP_CANCELLED: /* the queue was deleted: basic.cancel to the client */
		if (ch && op->b < TQ_AMQP_MAX_CONSUMERS && ch->cons[op->b].used) {
			struct tq_amqp_consumer *k = &ch->cons[op->b];
			struct tq_amqp_basic_cancel bc = {0};

			bc.consumer_tag.p = (const uint8_t *)k->tag;
			bc.consumer_tag.len = k->tag_len;
			bc.no_wait = true;
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_BASIC_CANCEL, &bc);
			k->used = false;
		}
		break;
	}
	tq_msg_unref(op->msg);
	tq_amqp_op_free(op);
}

/* -- confirms ------------------------------------------------------------------------- */

/* A publish with @n queue homes to hear from (0: confirmed at once). */
static void
confirm_start(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint64_t seq, uint32_t n,
	      bool nack, bool tx)
{
	if (n == 0 && tx) {
		if (--ch->tx_pending == 0 && ch->commit_waiting) {
			ch->commit_waiting = false;
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_TX_COMMIT_OK, NULL);
			c->waiting--;
			/* the caller's loop (or the ring handler) reads on */
		}
		return;
	}
	if (n == 0) {
		struct tq_amqp_basic_ack a = {.delivery_tag = seq};
		struct tq_amqp_basic_nack na = {.delivery_tag = seq};

		if (nack)
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_BASIC_NACK, &na);
		else
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_BASIC_ACK, &a);
		return;
	}
	if (ch->cf_n == ch->cf_cap) {
		uint32_t cap = ch->cf_cap ? ch->cf_cap * 2 : 64;
		struct tq_amqp_confirm *nc = realloc(ch->confirms, cap * sizeof(*nc));

		if (!nc) {
			tq_amqp_conn_error(c, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR", 0);
			return;
		}
		ch->confirms = nc;
		ch->cf_cap = cap;
	}
	ch->confirms[ch->cf_n].seq = seq;
	ch->confirms[ch->cf_n].left = n;
	ch->confirms[ch->cf_n].nack = nack;
	ch->confirms[ch->cf_n].tx = tx;
	ch->cf_n++;
}

void
tq_amqp_confirm_done(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint64_t seq, bool nack)
{
	for (uint32_t i = 0; i < ch->cf_n; i++) {
		struct tq_amqp_confirm *f = &ch->confirms[i];

		if (f->seq != seq)
			continue;
		f->nack |= nack;
		if (--f->left == 0) {
			bool n = f->nack, tx = f->tx;

			ch->confirms[i] = ch->confirms[--ch->cf_n];
			confirm_start(c, ch, seq, 0, n, tx);
		}
		return;
	}
}

/* -- publishing ----------------------------------------------------------------------- */

struct route_ctx {
	struct tq_amqp_conn *c;
	struct tq_amqp_chan *ch;
	struct tq_msg *m;
	uint64_t seq;
	uint32_t n;
};

static struct tq_amqp_confirm *
confirm_find(struct tq_amqp_chan *ch, uint64_t seq)
{
	for (uint32_t i = ch->cf_n; i-- > 0;) /* the newest is usually the one */
		if (ch->confirms[i].seq == seq)
			return &ch->confirms[i];
	return NULL;
}

static void
on_queue(void *arg, uint32_t qidx, uint32_t qgen, uint16_t home)
{
	struct route_ctx *rc = arg;
	struct tq_amqp_op *op = tq_amqp_op_new(rc->c->w, OP_ENQUEUE);
	struct tq_amqp_confirm *f;

	(void)home;
	if (!op) { /* this queue does not get it (ops_room makes it rare): the confirm says so */
		if (rc->seq && (f = confirm_find(rc->ch, rc->seq)) != NULL)
			f->nack = true;
		return;
	}
	op->qidx = qidx;
	op->qgen = qgen;
	op->handle = tq_amqp_handle(rc->c, rc->ch->id);
	op->a = rc->seq;
	tq_msg_ref(rc->m);
	op->msg = rc->m;
	/* one more answer to wait for, counted before the post (a home here answers at once) */
	if (rc->seq && (f = confirm_find(rc->ch, rc->seq)) != NULL)
		f->left++;
	if (tq_amqp_queue_post(rc->c->w, op) == 0) {
		rc->n++;
	} else if (rc->seq) {
		tq_amqp_confirm_done(rc->c, rc->ch, rc->seq, true); /* not taken: nack */
	}
}

/* Route a complete message; @m's reference is the caller's. */
static void
publish(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, struct tq_msg *m, bool mandatory,
	bool tx)
{
	struct route_ctx rc = {.c = c, .ch = ch, .m = m,
			       .seq = ch->confirm || tx ? ch->next_seq++ : 0};
	uint16_t code = 0;
	const char *text = NULL;
	int n;

	tq_worker_count(c->w, TQ_CTR_amqp_publishes);
	if (tx)
		ch->tx_pending++;
	if (rc.seq) /* a guard answer, given below once routing is over */
		confirm_start(c, ch, rc.seq, 1, false, tx);
	n = tq_amqp_route(c, m, on_queue, &rc, &code, &text);
	if (unlikely(c->w->trace.left)) /* tachyonctl trace */
		tq_trace_record(c->w, 'a', c->user, tq_msg_exchange(m), m->exchange_len,
				(const char *)m->data, m->topic_len, m->payload_len, 0, n);
	if (n < 0) {
		if (rc.seq)
			tq_amqp_confirm_done(c, ch, rc.seq, false);
		tq_amqp_chan_error(c, ch, code, text, TQ_AMQP_BASIC_PUBLISH);
		return;
	}
	if (n == 0) {
		tq_worker_count(c->w, TQ_CTR_amqp_unroutable);
		if (mandatory) {
			struct tq_amqp_basic_return r = {
				.reply_code = TQ_AMQP_NO_ROUTE,
				.reply_text = {.p = (const uint8_t *)"NO_ROUTE", .len = 8},
				.exchange = {.p = (const uint8_t *)tq_msg_exchange(m),
					     .len = m->exchange_len},
				.routing_key = {.p = (const uint8_t *)tq_msg_topic(m),
						.len = m->topic_len},
			};

			send_content(c, ch->id, TQ_AMQP_IDX_BASIC_RETURN, &r, m);
		}
	}
	if (rc.seq) /* the guard: acked (or nacked) now if every queue answered already */
		tq_amqp_confirm_done(c, ch, rc.seq, false);
}

/* The content is complete: route it now, or hold it for tx.commit. */
static void
content_done(struct tq_amqp_conn *c, struct tq_amqp_chan *ch)
{
	struct tq_msg *m = ch->pending;
	bool mandatory = ch->publish_flags & 1;

	ch->pending = NULL;
	if (ch->tx) {
		if (ch->tx_n == ch->tx_cap) {
			uint32_t cap = ch->tx_cap ? ch->tx_cap * 2 : 16;
			struct tq_msg **n = realloc(ch->tx_msgs, cap * sizeof(*n));

			if (!n) {
				tq_msg_unref(m);
				tq_amqp_conn_error(c, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR", 0);
				return;
			}
			ch->tx_msgs = n;
			ch->tx_cap = cap;
		}
		m->origin = mandatory; /* remembered for the commit */
		ch->tx_msgs[ch->tx_n++] = m;
		return;
	}
	publish(c, ch, m, mandatory, false);
	tq_msg_unref(m);
}

void
tq_amqp_chan_header(struct tq_amqp_conn *c, uint16_t channel, const uint8_t *p, uint32_t len)
{
	struct tq_amqp_chan *ch = chan_get(c, channel);
	struct tq_amqp_content_header h;
	struct tq_msg *m;
	size_t off;
	ssize_t rc;
	bool heap;

	if (!ch || ch->closing) {
		if (!ch)
			tq_amqp_conn_error(c, TQ_AMQP_CHANNEL_ERROR, "CHANNEL_ERROR - no such channel",
					   0);
		return;
	}
	if (!ch->pending || ch->pending->props_len || ch->body_left) {
		tq_amqp_conn_error(c, TQ_AMQP_UNEXPECTED_FRAME,
				   "UNEXPECTED_FRAME - content header without basic.publish", 0);
		return;
	}
	rc = tq_amqp_header_decode(p, len, &h, &off);
	if (rc < 0) {
		tq_amqp_conn_error(c, tq_amqp_err_reply((int)rc), tq_amqp_err_text((int)rc), 0);
		return;
	}
	/* the message gets its final size now: routing key, exchange, header as published */
	m = tq_msg_alloc(tq_amqp.msg_pool, ch->pending->topic_len + ch->pending->exchange_len + len,
			 &heap);
	if (!m) { /* out of messages: this header is read again later (the window closes) */
		tq_worker_count(c->w, TQ_CTR_amqp_no_memory);
		c->retry_frame = true;
		return;
	}
	m->amqp = true;
	m->topic_len = ch->pending->topic_len;
	m->exchange_len = ch->pending->exchange_len;
	memcpy(m->data, ch->pending->data, m->topic_len + m->exchange_len);
	memcpy(m->data + m->topic_len + m->exchange_len, p, len);
	m->props_len = len;
	m->qos = (h.props.flags & TQ_AMQP_BASIC_DELIVERY_MODE_FLAG) && h.props.delivery_mode == 2;
	m->priority = h.props.flags & TQ_AMQP_BASIC_PRIORITY_FLAG ? h.props.priority : 0;
	if (h.props.flags & TQ_AMQP_BASIC_EXPIRATION_FLAG) {
		uint64_t ms = 0;
		bool ok = h.props.expiration.len > 0 && h.props.expiration.len < 20;

		for (uint32_t i = 0; ok && i < h.props.expiration.len; i++) {
			uint8_t d = h.props.expiration.p[i];

			ok = d >= '0' && d <= '9';
			ms = ms * 10 + (uint64_t)(d - '0');
		}
		if (!ok) {
			tq_msg_unref(m);
			tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED,
					   "PRECONDITION_FAILED - invalid expiration",
					   TQ_AMQP_BASIC_PUBLISH);
			tq_msg_unref(ch->pending);
			ch->pending = NULL;
			return;
		}
		m->expiry_ms = tq_msg_now_ms() + ms;
		m->props.message_expiry = (uint32_t)RTE_MIN(ms, (uint64_t)UINT32_MAX);
		m->props.present = 1; /* "per-message TTL set", even 0 (tq_aqueue: TTL 0 rule) */
	}
	tq_msg_unref(ch->pending);
	ch->pending = m;
	ch->body_left = h.body_size;
	if (h.body_size == 0)
		content_done(c, ch);
}

int
tq_amqp_chan_body(struct tq_amqp_conn *c, uint16_t channel, uint32_t off, uint32_t len)
{
	struct tq_amqp_chan *ch = chan_get(c, channel);
	struct tq_msg *m;
	struct rte_mbuf *piece = NULL;

	if (!ch || ch->closing) {
		if (!ch)
			tq_amqp_conn_error(c, TQ_AMQP_CHANNEL_ERROR, "CHANNEL_ERROR - no such channel",
					   0);
		return 0;
	}
	m = ch->pending;
	if (!m || !m->amqp || len > ch->body_left) {
		tq_amqp_conn_error(c, TQ_AMQP_UNEXPECTED_FRAME,
				   "UNEXPECTED_FRAME - body frame beyond the content's size", 0);
		return 0;
	}
	if (len) {
		bool copied;

		piece = tq_msg_payload(c->w->pool, c->rx, off, len, &copied);
		if (copied) {
			tq_worker_count(c->w, TQ_CTR_amqp_payload_copied);
			if (!c->w->amqp->blocked &&
			    rte_mempool_avail_count(tq_msgdata_pool) < tq_msgdata_pool->size / 4)
				tq_amqp_memory_alarm(c->w); /* now, not at the tick */
		}
		if (!piece) { /* no memory now: this frame is read again at the next tick */
			tq_worker_count(c->w, TQ_CTR_amqp_no_memory);
			return 1;
		}
		if (!m->payload) {
			m->payload = piece;
		} else if (m->payload->nb_segs + piece->nb_segs > RTE_MBUF_MAX_NB_SEGS) {
			rte_pktmbuf_free(piece);
			tq_amqp_conn_error(c, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR - body in too "
					   "many frames", 0);
			return 0;
		} else {
			rte_pktmbuf_chain(m->payload, piece);
		}
		m->payload_len += len;
		ch->body_left -= len;
	}
	if (ch->body_left == 0)
		content_done(c, ch);
	return 0;
}

/* -- acks ------------------------------------------------------------------------------ */

/* Settle tag @tag (or all up to it with @multiple; tag 0 + multiple: all). 0 or -ENOENT. */
static int
settle_tags(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint64_t tag, bool multiple,
	    uint8_t mode)
{
	bool found = false;

	for (uint32_t i = 0; i < ch->un_n; i++) {
		struct tq_amqp_unacked *u = &ch->unacked[(ch->un_head + i) % ch->un_cap];

		if (u->qdid == UINT64_MAX)
			continue; /* settled already */
		if (multiple ? (tag == 0 || u->tag <= tag) : u->tag == tag) {
			settle(c, ch->id, u, mode);
			u->qdid = UINT64_MAX;
			if (u->cons != 0xff && ch->live)
				ch->live--;
			found = true;
			if (!multiple)
				break;
		} else if (u->tag > tag && tag) {
			break;
		}
	}
	while (ch->un_n && ch->unacked[ch->un_head].qdid == UINT64_MAX) {
		ch->un_head = (ch->un_head + 1) % ch->un_cap;
		ch->un_n--;
	}
	if (ch->held)
		release_held(c, ch);
	return found || (multiple && tag == 0) ? 0 : -ENOENT;
}

static void
ack_method(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint32_t id, uint64_t tag,
	   bool multiple, uint8_t mode)
{
	if (ch->tx) { /* applied at commit */
		if (ch->txs_n == ch->txs_cap) {
			uint32_t cap = ch->txs_cap ? ch->txs_cap * 2 : 16;
			struct tq_amqp_txsettle *n = realloc(ch->tx_settles, cap * sizeof(*n));

			if (!n)
				return;
			ch->tx_settles = n;
			ch->txs_cap = cap;
		}
		ch->tx_settles[ch->txs_n++] = (struct tq_amqp_txsettle){tag, multiple, mode, id};
		return;
	}
	if (settle_tags(c, ch, tag, multiple, mode) < 0) {
		char text[96];

		snprintf(text, sizeof(text), "PRECONDITION_FAILED - unknown delivery tag %llu",
			 (unsigned long long)tag);
		tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED, text, id);
	}
}

/* -- the methods ----------------------------------------------------------------------- */

static void
gen_tag(char *out, uint8_t *len)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t r = rte_rdtsc() * 0x9E3779B97F4A7C15ull;

	memcpy(out, "amq.ctag-", 9);
	for (int i = 0; i < 16; i++)
		out[9 + i] = hex[(r >> (4 * i)) & 15];
	*len = 25;
}

/*
 * The priority a queue's home orders consumers by: the client's x-priority first, then the
 * connection's data-plane class (tq_prio.h) between equal x-priorities: critical consumers
 * take messages first, bulk ones last (RabbitMQ's rule for consumer priorities: the highest
 * that has room). x-priority is clamped to +-2^28 to leave room for the class.
 */
static int32_t
consumer_rank(const struct tq_amqp_conn *c, int32_t x_priority)
{
	static const int32_t rank[TQ_PRIO_CLASSES] = {
		[TQ_PRIO_CRITICAL] = 2, [TQ_PRIO_NORMAL] = 1, [TQ_PRIO_BULK] = 0};
	uint8_t cls = tq_tcp_prio(c->tcp);

	if (x_priority > (1 << 28) - 1)
		x_priority = (1 << 28) - 1;
	else if (x_priority < -(1 << 28))
		x_priority = -(1 << 28);
	return x_priority * 4 + rank[cls < TQ_PRIO_CLASSES ? cls : TQ_PRIO_NORMAL];
}

static void
basic_consume(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_basic_consume *a)
{
	struct tq_amqp_consumer *k = NULL;
	struct tq_amqp_basic_consume_ok ok;
	struct tq_amqp_op *op;
	uint32_t qidx, qgen;
	uint16_t code = 0;
	const char *text = NULL;
	int32_t prio = 0;
	unsigned int i, free_i = TQ_AMQP_MAX_CONSUMERS;
	struct tq_amqp_value v;

	if (tq_amqp_queue_lookup(c, ch, &a->queue, &qidx, &qgen, &code, &text) < 0) {
		tq_amqp_chan_error(c, ch, code, text, TQ_AMQP_BASIC_CONSUME);
		return;
	}
	for (i = 0; i < TQ_AMQP_MAX_CONSUMERS; i++) {
		if (!ch->cons[i].used) {
			if (free_i == TQ_AMQP_MAX_CONSUMERS)
				free_i = i;
			continue;
		}
		if (a->consumer_tag.len && ch->cons[i].tag_len == a->consumer_tag.len &&
		    !memcmp(ch->cons[i].tag, a->consumer_tag.p, a->consumer_tag.len)) {
			tq_amqp_conn_error(c, TQ_AMQP_NOT_ALLOWED,
					   "NOT_ALLOWED - attempt to reuse consumer tag",
					   TQ_AMQP_BASIC_CONSUME);
			return;
		}
	}
	if (free_i == TQ_AMQP_MAX_CONSUMERS) {
		tq_amqp_chan_error(c, ch, TQ_AMQP_RESOURCE_LOCKED,
				   "RESOURCE_LOCKED - too many consumers on this channel",
				   TQ_AMQP_BASIC_CONSUME);
		return;
	}
	k = &ch->cons[free_i];
	if (a->consumer_tag.len) {
		memcpy(k->tag, a->consumer_tag.p, a->consumer_tag.len);
		k->tag_len = (uint8_t)a->consumer_tag.len;
	} else {
		gen_tag(k->tag, &k->tag_len);
	}
	if (tq_amqp_table_get(a->arguments, "x-priority", &v) == 1 &&
	    (v.tag == TQ_AMQP_V_I8 || v.tag == TQ_AMQP_V_I16 || v.tag == TQ_AMQP_V_I32 ||
	     v.tag == TQ_AMQP_V_I64))
		prio = (int32_t)v.v.i;
	prio = consumer_rank(c, prio);
	op = tq_amqp_op_new(c->w, OP_CONSUME);
	if (!op) {
		tq_amqp_chan_error(c, ch, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR",
				   TQ_AMQP_BASIC_CONSUME);
		return;
	}
	k->used = true;
	k->no_ack = a->no_ack;
	k->no_wait = a->no_wait;
	k->qidx = qidx;
	k->qgen = qgen;
	(void)ok;
	/* the home answers first (consume-ok, or 403 for an exclusive conflict), then delivers */
	op->qidx = qidx;
	op->qgen = qgen;
	op->handle = tq_amqp_handle(c, ch->id);
	op->b = (uint64_t)free_i | (uint64_t)a->no_ack << 8 | (uint64_t)a->exclusive << 9 |
		(uint64_t)ch->prefetch << 16 | (uint64_t)(uint32_t)prio << 32;
	if (tq_amqp_queue_post(c->w, op) == 0)
		c->waiting++;
	tq_worker_count(c->w, TQ_CTR_amqp_consumers_started);
}

/* The home's answer to basic.consume: a = 0 or -EBUSY, b = request kind << 16 | index. */
static void
consume_done(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_op *op)
{
	uint8_t ci = (uint8_t)op->b;
	struct tq_amqp_consumer *k = ci < TQ_AMQP_MAX_CONSUMERS ? &ch->cons[ci] : NULL;
	struct tq_amqp_basic_consume_ok ok;

	if (!k || !k->used)
		return;
	if ((int64_t)op->a < 0) {
		k->used = false;
		tq_amqp_chan_error(c, ch, TQ_AMQP_ACCESS_REFUSED,
				   "ACCESS_REFUSED - queue in exclusive use (or an exclusive consumer "
				   "on a queue in use)",
				   TQ_AMQP_BASIC_CONSUME);
		return;
	}
	if (!k->no_wait) {
		ok.consumer_tag.p = (const uint8_t *)k->tag;
		ok.consumer_tag.len = k->tag_len;
		tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_BASIC_CONSUME_OK, &ok);
	}
}

static void
basic_cancel(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_basic_cancel *a)
{
	struct tq_amqp_basic_cancel_ok ok = {.consumer_tag = a->consumer_tag};

	for (unsigned int i = 0; i < TQ_AMQP_MAX_CONSUMERS; i++) {
		struct tq_amqp_consumer *k = &ch->cons[i];

		if (k->used && k->tag_len == a->consumer_tag.len &&
		    !memcmp(k->tag, a->consumer_tag.p, k->tag_len)) {
			struct tq_amqp_op *op = tq_amqp_op_new(c->w, OP_CANCEL);

			if (op) {
				op->qidx = k->qidx;
				op->qgen = k->qgen;
				op->handle = tq_amqp_handle(c, ch->id);
				op->b = i;
				tq_amqp_queue_post(c->w, op);
			}
			k->used = false;
			break;
		}
	}
	/* an unknown tag is not an error (RabbitMQ answers cancel-ok) */
	if (!a->no_wait)
		tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_BASIC_CANCEL_OK, &ok);
}

static void
basic_get(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_basic_get *a)
{
	struct tq_amqp_op *op;
	uint32_t qidx, qgen;
	uint16_t code = 0;
	const char *text = NULL;

	if (tq_amqp_queue_lookup(c, ch, &a->queue, &qidx, &qgen, &code, &text) < 0) {
		tq_amqp_chan_error(c, ch, code, text, TQ_AMQP_BASIC_GET);
		return;
	}
	op = tq_amqp_op_new(c->w, OP_GET);
	if (!op)
		return;
	op->qidx = qidx;
	op->qgen = qgen;
	op->handle = tq_amqp_handle(c, ch->id);
	op->b = a->no_ack;
	if (tq_amqp_queue_post(c->w, op) == 0)
		c->waiting++; /* get-ok or get-empty comes back on our ring */
}

static void
tx_commit(struct tq_amqp_conn *c, struct tq_amqp_chan *ch)
{
	for (uint32_t i = 0; i < ch->tx_n; i++) {
		struct tq_msg *m = ch->tx_msgs[i];
		bool mandatory = m->origin != 0;

		m->origin = 0;
		publish(c, ch, m, mandatory, true);
		tq_msg_unref(m);
	}
	ch->tx_n = 0;
	for (uint32_t i = 0; i < ch->txs_n; i++) {
		const struct tq_amqp_txsettle *s = &ch->tx_settles[i];

		settle_tags(c, ch, s->tag, s->multiple, s->mode);
	}
	ch->txs_n = 0;
}

static void
tx_rollback(struct tq_amqp_chan *ch)
{
	for (uint32_t i = 0; i < ch->tx_n; i++)
		tq_msg_unref(ch->tx_msgs[i]);
	ch->tx_n = 0;
	ch->txs_n = 0;
}

/*
 * Room in the shared operation pool for a publish's posts (one per queue it reaches): a post
 * that found none would lose the message for that queue, so below the floor the publish
 * waits unread like one that finds no message. The pool's count walks every lcore cache:
 * after a check with plenty, the publishes that surely fit go unchecked.
 */
static bool
ops_room(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;
	struct rte_mempool *mp = tq_amqp.op_pool;
	unsigned int floor = RTE_MIN(2u * TQ_AMQP_ROUTE_MAX, mp->size / 4), avail;

	if (wk->op_skip) {
		wk->op_skip--;
		return true;
	}
	avail = rte_mempool_avail_count(mp);
	if (avail < floor)
		return false;
	/* every worker may publish as much meanwhile */
	wk->op_skip = (avail - floor) / (TQ_AMQP_ROUTE_MAX * tq_dp.nb_workers);
	return true;
}

void
tq_amqp_chan_method(struct tq_amqp_conn *c, uint16_t channel, const struct tq_amqp_method *m)
{
	struct tq_amqp_chan *ch = chan_get(c, channel);
	const union tq_amqp_args *a = &m->args;
	uint32_t id = m->info->id;

	if (id == TQ_AMQP_CHANNEL_OPEN) {
		struct tq_amqp_channel_open_ok ok = {0};

		if (ch) {
			tq_amqp_conn_error(c, TQ_AMQP_CHANNEL_ERROR,
					   "CHANNEL_ERROR - second 'channel.open' seen", id);
			return;
		}
		if (!chan_new(c, channel)) {
			tq_amqp_conn_error(c, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR", id);
			return;
		}
		tq_amqp_send_method(c, channel, TQ_AMQP_IDX_CHANNEL_OPEN_OK, &ok);
		return;
	}
	if (!ch) {
		tq_amqp_conn_error(c, TQ_AMQP_CHANNEL_ERROR,
				   "CHANNEL_ERROR - expected 'channel.open'", id);
		return;
	}
	if (ch->closing) { /* only close-ok (or their close) ends it; the rest is dropped */
		if (id == TQ_AMQP_CHANNEL_CLOSE_OK || id == TQ_AMQP_CHANNEL_CLOSE) {
			if (id == TQ_AMQP_CHANNEL_CLOSE)
				tq_amqp_send_method(c, channel, TQ_AMQP_IDX_CHANNEL_CLOSE_OK, NULL);
			tq_amqp_chan_free(c, ch);
		}
		return;
	}
	if (ch->pending && !(id == TQ_AMQP_CHANNEL_CLOSE)) {
		tq_amqp_conn_error(c, TQ_AMQP_UNEXPECTED_FRAME,
				   "UNEXPECTED_FRAME - expected content header or body", id);
		return;
	}
	if (!tq_amqp_access_method(c, ch, m))
		return; /* refused: the channel is closing (403) */
	switch (id) {
	case TQ_AMQP_CHANNEL_CLOSE:
		tq_amqp_chan_free(c, ch);
		tq_amqp_send_method(c, channel, TQ_AMQP_IDX_CHANNEL_CLOSE_OK, NULL);
		return;
	case TQ_AMQP_CHANNEL_CLOSE_OK:
		return; /* not closing: ignore */
	case TQ_AMQP_CHANNEL_FLOW:
		if (!a->channel_flow.active) {
			tq_amqp_conn_error(c, TQ_AMQP_NOT_IMPLEMENTED,
					   "NOT_IMPLEMENTED - active=false is not supported", id);
			return;
		}
		{
			struct tq_amqp_channel_flow_ok ok = {.active = true};

			tq_amqp_send_method(c, channel, TQ_AMQP_IDX_CHANNEL_FLOW_OK, &ok);
		}
		return;
	case TQ_AMQP_BASIC_QOS: /* RabbitMQ's reading: global = the channel, else per consumer */
		if (a->basic_qos.global) {
			ch->global_prefetch = a->basic_qos.prefetch_count;
			release_held(c, ch);
		} else {
			ch->prefetch = a->basic_qos.prefetch_count;
		}
		tq_amqp_send_method(c, channel, TQ_AMQP_IDX_BASIC_QOS_OK, NULL);
		return;
	case TQ_AMQP_BASIC_CONSUME:
		basic_consume(c, ch, &a->basic_consume);
		return;
	case TQ_AMQP_BASIC_CANCEL:
		basic_cancel(c, ch, &a->basic_cancel);
		return;
	case TQ_AMQP_BASIC_PUBLISH: {
		struct tq_msg *pm;
		bool heap;
		const struct tq_amqp_basic_publish *p = &a->basic_publish;

		if (p->immediate) {
			tq_amqp_conn_error(c, TQ_AMQP_NOT_IMPLEMENTED,
					   "NOT_IMPLEMENTED - immediate=true", id);
			return;
		}
		/* routing key and exchange now; the header completes the message */
		pm = ops_room(c->w) ? tq_msg_alloc(tq_amqp.msg_pool,
						   p->routing_key.len + p->exchange.len, &heap)
				    : NULL;
		if (!pm) { /* out of messages: this publish is read again later */
			tq_worker_count(c->w, TQ_CTR_amqp_no_memory);
			c->retry_frame = true;
			return;
		}
		pm->topic_len = (uint16_t)p->routing_key.len;
		pm->exchange_len = (uint8_t)p->exchange.len;
		memcpy(pm->data, p->routing_key.p, p->routing_key.len);
		memcpy(pm->data + pm->topic_len, p->exchange.p, p->exchange.len);
		ch->pending = pm;
		ch->body_left = 0;
		ch->publish_flags = p->mandatory;
		return;
	}
	case TQ_AMQP_BASIC_GET:
		basic_get(c, ch, &a->basic_get);
		return;
	case TQ_AMQP_BASIC_ACK:
		ack_method(c, ch, id, a->basic_ack.delivery_tag, a->basic_ack.multiple, SETTLE_ACK);
		return;
	case TQ_AMQP_BASIC_NACK:
		ack_method(c, ch, id, a->basic_nack.delivery_tag, a->basic_nack.multiple,
			   a->basic_nack.requeue ? SETTLE_REQUEUE : SETTLE_DISCARD);
		return;
	case TQ_AMQP_BASIC_REJECT:
		ack_method(c, ch, id, a->basic_reject.delivery_tag, false,
			   a->basic_reject.requeue ? SETTLE_REQUEUE : SETTLE_DISCARD);
		return;
	case TQ_AMQP_BASIC_RECOVER:
	case TQ_AMQP_BASIC_RECOVER_ASYNC:
		/* every unacknowledged message goes back to its queue, redelivered */
		settle_tags(c, ch, 0, true, SETTLE_REQUEUE);
		if (id == TQ_AMQP_BASIC_RECOVER)
			tq_amqp_send_method(c, channel, TQ_AMQP_IDX_BASIC_RECOVER_OK, NULL);
		return;
	case TQ_AMQP_CONFIRM_SELECT:
		if (ch->tx) {
			tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED,
					   "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
					   id);
			return;
		}
		ch->confirm = true;
		if (!a->confirm_select.nowait)
			tq_amqp_send_method(c, channel, TQ_AMQP_IDX_CONFIRM_SELECT_OK, NULL);
		return;
	case TQ_AMQP_TX_SELECT:
		if (ch->confirm) {
			tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED,
					   "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
					   id);
			return;
		}
		ch->tx = true;
		tq_amqp_send_method(c, channel, TQ_AMQP_IDX_TX_SELECT_OK, NULL);
		return;
	case TQ_AMQP_TX_COMMIT:
	case TQ_AMQP_TX_ROLLBACK:
		if (!ch->tx) {
			tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED,
					   "PRECONDITION_FAILED - channel is not transactional", id);
			return;
		}
		if (id == TQ_AMQP_TX_COMMIT) {
			/* commit-ok once every queue took its messages (tx_pending back to 0) */
			ch->commit_waiting = true;
			c->waiting++;
			ch->tx_pending++; /* a guard while the publishes go out */
			tx_commit(c, ch);
			confirm_start(c, ch, 0, 0, false, true);
		} else {
			tx_rollback(ch);
			tq_amqp_send_method(c, channel, TQ_AMQP_IDX_TX_ROLLBACK_OK, NULL);
		}
		return;
	default:
		if (TQ_AMQP_ID_CLASS(id) == TQ_AMQP_CLASS_EXCHANGE ||
		    TQ_AMQP_ID_CLASS(id) == TQ_AMQP_CLASS_QUEUE) {
			tq_amqp_queue_method(c, ch, m); /* tq_amqp_queue.c */
			return;
		}
		tq_amqp_conn_error(c, TQ_AMQP_COMMAND_INVALID, "COMMAND_INVALID - unexpected method",
				   id);
	}
}
