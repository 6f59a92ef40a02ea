/*
 * TCP timers on the worker's wheel (1 tick = 1 ms): retransmission (RFC 6298, with
 * exponential backoff; also SYN retries and zero-window probes), delayed ACK, keepalive,
 * and 2*MSL (TIME_WAIT; also the FIN_WAIT_2 timeout). Worker only.
 */
#include <errno.h>

#include <rte_cycles.h>

#include "dataplane/tq_worker.h"
#include "tq_net.h"
#include "tq_tcp_var.h"

#define TQ_TCP_TIMER_BATCH 256 /* expiries handled per poll iteration */
#define TQ_TCP_SYN_RETRIES 6
#define TQ_TCP_KEEP_PROBES 9
#define TQ_TCP_KEEP_INTVL_MS 75000
#define TQ_TCP_PTO_DELACK_MS 50

void
tq_tcp_timer_set(struct tq_tcp_conn *c, enum tq_tcp_timer_kind k, uint64_t ms)
{
	struct tq_timer_wheel *tw = &c->w->tcp->wheel;

	if (c->timers[k] && tq_timer_update(tw, c->timers[k], ms) == 0)
		return;
	c->timers[k] = tq_timer_start(tw, (uint64_t)c->idx << 2 | k, ms);
}

void
tq_tcp_timer_clear(struct tq_tcp_conn *c, enum tq_tcp_timer_kind k)
{
	if (c->timers[k]) {
		tq_timer_stop(&c->w->tcp->wheel, c->timers[k]);
		c->timers[k] = 0;
	}
}

void
tq_tcp_timers_clear(struct tq_tcp_conn *c)
{
	for (int k = 0; k < TQ_TCP_T_COUNT; k++)
		tq_tcp_timer_clear(c, (enum tq_tcp_timer_kind)k);
}

/*
 * RFC 8985 tail loss probe: with an RTT estimate, outstanding data and no RTO backoff,
 * wait only PTO = 2 * SRTT (at least 10 ms) before probing, so that a loss at the tail
 * of a burst is repaired by SACK recovery rather than by a full RTO. With RACK a probe
 * also helps in recovery: a lost retransmission with nothing sent after it is found only
 * when something sent later is delivered. One segment in flight (7.2): the peer may be
 * delaying its ACK, so add a delayed-ACK allowance: 50 ms, not the RFC's 200 ms WCDelAckT
 * (which is no earlier than our 200 ms minimum RTO): receivers that ACK every other
 * segment (Linux: 40 ms at first) answer within it, and a probe too early costs one
 * duplicate segment. Returns the PTO in ms, or 0 when no probe is due.
 */
static uint64_t
pto_ms(const struct tq_tcp_conn *c)
{
	uint64_t slack, pto;

	if (!c->srtt_us || c->tlp_done || (c->in_recovery && !c->txr) || c->backoff ||
	    c->state < TQ_TCP_ESTABLISHED || c->snd_max == c->snd_una)
		return 0;
	slack = c->snd_max - c->snd_una <= c->snd_mss ? TQ_TCP_PTO_DELACK_MS : 2;
	pto = RTE_MAX(2ull * c->srtt_us / 1000 + slack, 10ull);
	return pto < (uint64_t)c->rto_us / 1000 ? pto : 0;
}

void
tq_tcp_probe_rearm(struct tq_tcp_conn *c)
{
	if (!c->timers[TQ_TCP_T_REXMT] || (!c->rack_timer && pto_ms(c)))
		tq_tcp_rexmt_arm(c);
}

/* (Re)start the retransmission timer: reorder timer, probe timeout or RTO with backoff. */
void
tq_tcp_rexmt_arm(struct tq_tcp_conn *c)
{
	uint64_t ms = (uint64_t)c->rto_us / 1000 << c->backoff, pto = pto_ms(c);

	c->pto_armed = false;
	c->rack_timer = false;
	if (pto && pto < ms) {
		c->pto_armed = true;
		ms = pto;
	}

	/* RACK's reorder timer (RFC 8985 6.3): when what may be only reordered is due */
	if (c->txr && c->rack_reo_ms && c->rack_reo_ms <= ms) {
		c->pto_armed = false;
		c->rack_timer = true;
		ms = c->rack_reo_ms;
	}
	if (ms > tq_tcp_cfg.rto_max_ms)
		ms = tq_tcp_cfg.rto_max_ms;
	tq_tcp_timer_set(c, TQ_TCP_T_REXMT, ms ? ms : 1);
}

/* RFC 6298 section 2, in microseconds. */
void
tq_tcp_rtt_sample(struct tq_tcp_conn *c, uint32_t rtt_us)
{
	uint32_t rto;

	if (rtt_us == 0)
		rtt_us = 1;
	if (c->srtt_us == 0) {
		c->srtt_us = rtt_us;
		c->rttvar_us = rtt_us / 2;
	} else {
		uint32_t delta = c->srtt_us > rtt_us ? c->srtt_us - rtt_us : rtt_us - c->srtt_us;

		c->rttvar_us = (3 * c->rttvar_us + delta) / 4;
		c->srtt_us = (7 * c->srtt_us + rtt_us) / 8;
	}
	rto = c->srtt_us + RTE_MAX(4 * c->rttvar_us, 1000u); /* G = 1 ms clock granularity */
	c->rto_us = RTE_MAX(rto, tq_tcp_cfg.rto_min_ms * 1000);
	if (c->rto_us > tq_tcp_cfg.rto_max_ms * 1000)
		c->rto_us = tq_tcp_cfg.rto_max_ms * 1000;
}

static void
rexmt_expired(struct tq_tcp_conn *c)
{
	struct tq_worker *w = c->w;
	uint32_t flight = c->snd_max - c->snd_una;

	if (c->state == TQ_TCP_SYN_SENT || c->state == TQ_TCP_SYN_RECEIVED) {
		if (++c->backoff > TQ_TCP_SYN_RETRIES) {
			w->ctr[TQ_CTR_tcp_timeouts]++;
			tq_tcp_drop(c, -ETIMEDOUT);
			return;
		}
		tq_tcp_send_syn(c);
		return;
	}
	/* zero window and nothing in flight: probe with one byte past the window */
	if (c->snd_wnd == 0 && flight == 0) {
		if (c->sq_bytes > 0 || c->fin_queued) {
			w->ctr[TQ_CTR_tcp_zero_window_probes]++;
			/* a pure ACK with seq snd_una - 1 makes the peer answer with its window */
			tq_tcp_send_ctl(c, TQ_TCP_ACK, c->snd_una - 1);
			if (c->backoff < 16)
				c->backoff++;
			tq_tcp_rexmt_arm(c);
		}
		return;
	}
	if (flight == 0) { /* nothing in flight: data left unsent by an mbuf shortage? */
		tq_tcp_output(c, 0);
		return;
	}
	if (c->rack_timer) {
		c->rack_timer = false;
		w->ctr[TQ_CTR_tcp_rack_reorder_timeouts]++;
		tq_tcp_rack_recover(c, true);
		return;
	}
	if (c->pto_armed) {
		uint32_t unsent = c->snd_una + c->sq_bytes - c->snd_nxt;

		c->pto_armed = false;
		c->tlp_done = true;
		w->ctr[TQ_CTR_tcp_tail_loss_probes]++;
		/* RFC 8985 7.3: new data if the peer's window takes it, else the last segment */
		if (c->snd_nxt == c->snd_max && tq_seq_lt(c->snd_nxt, c->snd_una + c->sq_bytes) &&
		    unsent && flight < c->snd_wnd && !tq_tcp_rack_lost_pending(c)) {
			uint32_t before = c->snd_max;

			tq_tcp_output(c, TQ_TCP_SEND_PROBE);
			if (c->state == TQ_TCP_CLOSED)
				return;
			if (c->snd_max == before)
				tq_tcp_retransmit_last(c);
		} else if (!c->txr || !tq_tcp_rack_probe(c)) {
			tq_tcp_retransmit_last(c);
		}
		c->rack_reo_ms = 0;
		tq_tcp_rexmt_arm(c); /* now the real RTO */
		return;
	}
	w->ctr[TQ_CTR_tcp_rto_expired]++;
	if (++c->backoff > tq_tcp_cfg.max_retries) {
		w->ctr[TQ_CTR_tcp_timeouts]++;
		tq_tcp_send_ctl(c, TQ_TCP_RST | TQ_TCP_ACK, c->snd_nxt);
		tq_tcp_drop(c, -ETIMEDOUT);
		return;
	}
	/* RFC 5681 (4): the algorithm shrinks the window; go back to snd_una */
	c->cc->on_rto(c);
	c->in_recovery = false;
	c->undo_ok = false; /* no undo of a timeout's cut (it resends everything) */
	c->undo_eifel = false;
	c->dupacks = 0;
	c->recover = c->snd_max;
	c->rtt_timing = false;
	/* Keep the scoreboard through one timeout, so that going back to snd_una resends only
	 * the holes; a second timeout in a row suggests the peer reneged: forget it. */
	if (c->backoff > 1)
		c->sb_n = 0;
	tq_tcp_rack_rto(c);
	c->rack_reo_ms = 0;
	c->snd_nxt = c->snd_una;
	tq_tcp_rexmt_arm(c);
	tq_tcp_output(c, 0);
}

static void
keep_expired(struct tq_tcp_conn *c)
{
	uint64_t idle_ms = (c->w->now - c->last_rx_tsc) * 1000 / rte_get_tsc_hz();
	uint64_t keep_ms = (uint64_t)tq_tcp_cfg.keepalive_s * 1000;

	if (c->state != TQ_TCP_ESTABLISHED && c->state != TQ_TCP_CLOSE_WAIT)
		return;
	if (idle_ms < keep_ms) {
		c->probes = 0;
		tq_tcp_timer_set(c, TQ_TCP_T_KEEP, keep_ms - idle_ms);
		return;
	}
	if (c->probes >= TQ_TCP_KEEP_PROBES) {
		c->w->ctr[TQ_CTR_tcp_timeouts]++;
		tq_tcp_send_ctl(c, TQ_TCP_RST | TQ_TCP_ACK, c->snd_nxt);
		tq_tcp_drop(c, -ETIMEDOUT);
		return;
	}
	c->probes++;
	c->w->ctr[TQ_CTR_tcp_keepalive_probes]++;
	tq_tcp_send_ctl(c, TQ_TCP_ACK, c->snd_una - 1);
	tq_tcp_timer_set(c, TQ_TCP_T_KEEP, RTE_MIN((uint64_t)TQ_TCP_KEEP_INTVL_MS, keep_ms));
}

static void
timer_fired(void *ctx, uint64_t user, uint32_t handle)
{
	struct tq_worker *w = ctx;
	struct tq_tcp_conn *c = &w->tcp->conns[user >> 2];
	enum tq_tcp_timer_kind k = (enum tq_tcp_timer_kind)(user & 3);

	if (c->timers[k] != handle || c->state == TQ_TCP_CLOSED)
		return; /* stale: the TCB moved on */
	c->timers[k] = 0;
	switch (k) {
	case TQ_TCP_T_REXMT:
		rexmt_expired(c);
		break;
	case TQ_TCP_T_DELACK:
		if (c->delack_pending) {
			c->delack_pending = false;
			tq_tcp_output(c, TQ_TCP_SEND_ACK);
		}
		break;
	case TQ_TCP_T_KEEP:
		keep_expired(c);
		break;
	case TQ_TCP_T_2MSL:
		if (c->state == TQ_TCP_TIME_WAIT)
			tq_tcp_drop(c, 0);
		else if (c->state == TQ_TCP_FIN_WAIT_2) /* the peer never closed its side */
			tq_tcp_drop(c, -ETIMEDOUT);
		break;
	default:
		break;
	}
}

void
tq_tcp_timers_run(struct tq_worker *w)
{
	struct tq_tcp_worker *t = w->tcp;
	uint64_t tick = w->now / t->tsc_per_tick;

	/* Every iteration, not only when the tick changes: with one call per tick the batch
	 * cap would cap the rate too (256 expiries per ms), and a larger backlog (TIME_WAITs
	 * at a few hundred thousand connections/s) would grow forever. */
	t->now_tick = tick;
	if (t->ack_n)
		tq_tcp_ack_flush(w);
	tq_timer_advance(&t->wheel, tick, timer_fired, w, TQ_TCP_TIMER_BATCH);
	if (unlikely(t->mem_low))
		tq_tcp_mem_recover(w);
	tq_tcp_reap(w);
}
