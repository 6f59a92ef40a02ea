/*
 * TCP input: RFC 9293 3.10.7 "SEGMENT ARRIVES", with RFC 5961 (challenge ACKs), RFC 7323
 * (window scale, timestamps, PAWS), NewReno loss recovery (RFC 5681, 6582) and RFC 6298
 * RTT sampling. Worker only; the worker owns every connection it looks up here.
 */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "dataplane/tq_worker.h"
#include "tq_ipv4.h"
#include "tq_net.h"
#include "tq_tcp_var.h"

#define TS_OPT_LEN 12 /* NOP NOP TS: what every segment carries when timestamps are on */

static void
free_m(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

/* Take the peer's SYN options: what both sides will use for the connection's life. */
static void
negotiate(struct tq_tcp_conn *c, const struct tq_tcp_opts *o)
{
	uint16_t mtu = tq_ports[c->port].mtu ? tq_ports[c->port].mtu : 1500;
	uint32_t mss = (o->present & TQ_TCP_OPT_MSS) ? o->mss : 536;

	c->ws_ok = (o->present & TQ_TCP_OPT_WSCALE) && tq_tcp_cfg.wscale > 0 && !c->from_cookie;
	c->snd_wscale = c->ws_ok ? RTE_MIN(o->wscale, TQ_TCP_WSCALE_MAX) : 0;
	c->rcv_wscale = c->ws_ok ? tq_tcp_cfg.wscale : 0;
	c->sack_ok = (o->present & TQ_TCP_OPT_SACK_PERM) && tq_tcp_cfg.sack && !c->from_cookie;
	c->ts_ok = (o->present & TQ_TCP_OPT_TS) && tq_tcp_cfg.timestamps && !c->from_cookie;
	if (c->ts_ok)
		c->ts_recent = o->ts_val;
	mss = RTE_MIN(mss, (uint32_t)mtu - 40u);
	mss = RTE_MIN(mss, (uint32_t)tq_tcp_cfg.mss);
	if (c->ts_ok) /* a peer MSS below 12 (even 0) must not wrap around */
		mss = mss > TS_OPT_LEN ? mss - TS_OPT_LEN : 0;
	c->snd_mss = (uint16_t)RTE_MAX(mss, 64u);
	c->cc->init(c);
}

static void
established(struct tq_tcp_conn *c)
{
	tq_tcp_set_state(c, TQ_TCP_ESTABLISHED);
	if (tq_tcp_cfg.keepalive_s)
		tq_tcp_timer_set(c, TQ_TCP_T_KEEP, (uint64_t)tq_tcp_cfg.keepalive_s * 1000);
}

/* The application said no in on_connected, or closed it from there. */
static bool
tell_connected(struct tq_tcp_conn *c)
{
	c->connected_cb_done = true;
	if (c->app->on_connected && c->app->on_connected(c) < 0) {
		c->connected_cb_done = false;
		if (c->state != TQ_TCP_CLOSED)
			tq_tcp_abort(c);
		return false;
	}
	return c->state != TQ_TCP_CLOSED;
}

static void
enter_time_wait(struct tq_tcp_conn *c)
{
	tq_tcp_set_state(c, TQ_TCP_TIME_WAIT);
	tq_tcp_timer_clear(c, TQ_TCP_T_REXMT);
	tq_tcp_timer_clear(c, TQ_TCP_T_KEEP);
	tq_tcp_timer_set(c, TQ_TCP_T_2MSL, 2ull * tq_tcp_cfg.msl_ms);
	c->w->ctr[TQ_CTR_tcp_closed]++;
	/* The application is done with it; the TCB stays only for the protocol. */
	if (c->connected_cb_done && c->app->on_closed) {
		c->connected_cb_done = false;
		c->app->on_closed(c, 0);
	}
}

static void segment_arrives(struct tq_tcp_conn *c, struct rte_mbuf *m,
			    const struct tq_tcp_view *v);

static void
passive_open(struct tq_worker *w, uint16_t port, const struct tq_tcp_key *key,
	     const struct tq_tcp_view *v, int li)
{
	struct tq_tcp_conn *c;

	if (w->tcp->half_open >= tq_tcp_cfg.syn_backlog) {
		tq_tcp_syncookie_send(w, v, key); /* a SYN flood costs us no state */
		return;
	}
	c = tq_tcp_conn_alloc(w, key, port);
	if (!c)
		return;
	c->listener = (uint8_t)(li + 1);
	c->app = tq_tcp_listeners[li].app;
	c->irs = v->seq;
	c->rcv_nxt = v->seq + 1;
	negotiate(c, &v->opts);
	c->snd_wnd = v->window; /* never scaled in a SYN */
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = v->seq;
	c->iss = tq_tcp_new_iss(w, key);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->recover = c->iss; /* RFC 6582: not 0, or half of all ISSs never fast-retransmit */
	c->snd_wl2 = c->iss;
	tq_tcp_set_state(c, TQ_TCP_SYN_RECEIVED);
	w->ctr[TQ_CTR_tcp_passive_opens]++;
	tq_tcp_send_syn(c);
}

/* The ACK of a SYN cookie: the connection starts ESTABLISHED, without options. */
static void
cookie_open(struct tq_worker *w, uint16_t port, const struct tq_tcp_key *key,
	    const struct tq_tcp_view *v, int li, uint16_t mss, struct rte_mbuf *m)
{
	struct tq_tcp_conn *c = tq_tcp_conn_alloc(w, key, port);

	if (!c) {
		free_m(m);
		return;
	}
	w->ctr[TQ_CTR_tcp_syn_cookies_ok]++;
	c->from_cookie = true;
	c->listener = (uint8_t)(li + 1);
	c->app = tq_tcp_listeners[li].app;
	c->irs = v->seq - 1;
	c->rcv_nxt = v->seq;
	c->rcv_adv = v->seq + 65535; /* what the cookie's SYN-ACK advertised */
	c->iss = v->ack - 1;
	c->snd_una = c->snd_nxt = c->snd_max = v->ack;
	c->recover = c->iss;
	c->snd_mss = mss;
	c->cc->init(c);
	c->snd_wnd = v->window; /* no window scaling without state for it */
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = v->seq;
	c->snd_wl2 = v->ack;
	c->last_ack_sent = c->rcv_nxt;
	w->ctr[TQ_CTR_tcp_passive_opens]++;
	established(c);
	if (!tell_connected(c)) {
		free_m(m);
		return;
	}
	c->in_input = true;
	segment_arrives(c, m, v); /* the ACK may carry data already */
	c->in_input = false;
}

static void
no_conn(struct tq_worker *w, uint16_t port, struct rte_mbuf *m, const struct tq_ipv4_view *ip,
	const struct tq_tcp_key *key, const struct tq_tcp_view *v)
{
	uint16_t mss;
	int li;

	if (v->flags & TQ_TCP_RST) {
		w->ctr[TQ_CTR_tcp_no_conn]++;
		free_m(m);
		return;
	}
	li = tq_tcp_find_listener(v->dst_port);
	if (li >= 0 && (v->flags & (TQ_TCP_SYN | TQ_TCP_ACK | TQ_TCP_FIN)) == TQ_TCP_SYN) {
		passive_open(w, port, key, v, li);
		free_m(m);
		return;
	}
	if (li >= 0 && (v->flags & (TQ_TCP_SYN | TQ_TCP_ACK)) == TQ_TCP_ACK &&
	    tq_tcp_syncookie_check(w, key, v, &mss) == 0) {
		cookie_open(w, port, key, v, li, mss, m);
		return;
	}
	w->ctr[(v->flags & TQ_TCP_SYN) && li < 0 ? TQ_CTR_tcp_no_listener : TQ_CTR_tcp_no_conn]++;
	tq_tcp_send_rst_for(w, ip, v);
	free_m(m);
}

static void
rtt_from_ack(struct tq_tcp_conn *c, const struct tq_tcp_view *v)
{
	if (c->rtt_timing && tq_seq_gt(v->ack, c->rtt_seq)) {
		c->rtt_timing = false;
		tq_tcp_rtt_sample(c, (uint32_t)((c->w->now - c->rtt_start_tsc) * 1000000 /
						rte_get_tsc_hz()));
	}
}

/* The cut of the last recovery was for segments that were late, not lost: take it back
 * (RFC 3708, RFC 3522). The rest of that window is recovered without another cut. */
static void
undo_cut(struct tq_tcp_conn *c)
{
	c->w->ctr[TQ_CTR_tcp_spurious_undo]++;
	c->cwnd = RTE_MAX(c->cwnd, c->undo_cwnd);
	c->ssthresh = RTE_MAX(c->ssthresh, c->undo_ssthresh);
	c->in_recovery = false;
	c->dupacks = 0;
	c->undo_ok = false;
	c->undo_eifel = false;
}

/*
 * RFC 2883: the first SACK block of @v is a D-SACK when it lies below the cumulative ACK
 * or inside the second block: the peer received that span twice. When it is one of this
 * recovery's retransmissions and the last of them still unreported, every one was
 * spurious (RFC 3708): undo the cut.
 */
static bool
dsack_check(struct tq_tcp_conn *c, const struct tq_tcp_view *v)
{
	const struct tq_tcp_opts *o = &v->opts;
	struct tq_tcp_sack_block b;

	if (!c->sack_ok || !(o->present & TQ_TCP_OPT_SACK) || o->sack_count == 0)
		return false;
	b = o->sack[0];
	if (!tq_seq_lt(b.start, b.end) || tq_seq_gt(b.end, c->snd_max))
		return false;
	if (!tq_seq_le(b.end, v->ack) &&
	    !(o->sack_count > 1 && tq_seq_ge(b.start, o->sack[1].start) &&
	      tq_seq_le(b.end, o->sack[1].end)))
		return false;
	c->w->ctr[TQ_CTR_tcp_dsack_rx]++;
	if (!c->undo_ok || c->undo_full || c->undo_n == 0)
		return true;
	for (unsigned int i = 0; i < c->undo_n; i++) {
		if (tq_seq_le(b.start, c->undo_rx[i].start) && tq_seq_ge(b.end, c->undo_rx[i].end)) {
			/* one retransmission per report: a span sent three times needs two */
			c->undo_rx[i] = c->undo_rx[--c->undo_n];
			if (c->undo_n == 0)
				undo_cut(c);
			break;
		}
	}
	return true;
}

/* An ACK that acknowledges new data (snd_una < ack <= snd_max). Returns true if our FIN
 * is now acknowledged. */
static bool
new_ack(struct tq_tcp_conn *c, const struct tq_tcp_view *v)
{
	uint32_t acked = v->ack - c->snd_una, data;
	bool fin_acked = false;

	if (c->snd_una == c->iss) { /* our SYN */
		acked--;
		c->snd_una++;
	}
	rtt_from_ack(c, v);
	tq_tcp_rack_acked(c, v->ack);
	/* Eifel (RFC 3522): the ACK for our first retransmission echoes a timestamp older
	 * than it, so the original made it: the recovery was spurious */
	if (c->undo_eifel && tq_seq_ge(v->ack, c->undo_end)) {
		c->undo_eifel = false;
		if (c->undo_ok && (v->opts.present & TQ_TCP_OPT_TS) && v->opts.ts_ecr &&
		    tq_seq_lt(v->opts.ts_ecr, c->undo_tsval))
			undo_cut(c);
	}
	data = RTE_MIN(acked, c->sq_bytes);
	tq_tcp_sq_acked(c, data);
	if (acked > data && c->fin_queued)
		fin_acked = true;
	c->snd_una = v->ack;
	if (tq_seq_lt(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
	if (c->sb_n)
		tq_tcp_sack_update(c, NULL); /* drop what snd_una passed */
	c->backoff = 0;
	c->tlp_done = false;
	if (c->in_recovery) {
		if (tq_seq_ge(v->ack, c->recover)) { /* full ACK: leave recovery */
			c->cc->on_recovery_exit(c);
			c->in_recovery = false;
			c->dupacks = 0;
		} else if (!c->txr) { /* partial ACK (RFC 6582 3.2): next hole, deflate */
			/* (with RACK, segment_arrives marks and resends the holes after this) */
			/* with SACK, not a hole this recovery already retransmitted (rexmt_high) */
			if (!c->sack_ok || (tq_tcp_sack_retransmit(c, 2) == 0 &&
					    tq_seq_ge(c->snd_una, c->rexmt_high)))
				tq_tcp_retransmit_first(c);
			c->cwnd = c->cwnd > acked ? c->cwnd - acked : 0;
			c->cwnd += c->snd_mss;
		}
	} else {
		c->dupacks = 0;
		c->cc->on_ack(c, acked);
	}
	if (c->snd_una == c->snd_max) {
		tq_tcp_timer_clear(c, TQ_TCP_T_REXMT);
		tq_tcp_rack_release(c);
	} else {
		tq_tcp_rexmt_arm(c);
	}
	if (c->want_writable && tq_tcp_send_space(c) >= tq_tcp_cfg.snd_buf / 2 &&
	    c->app->on_writable && !c->fin_queued) {
		c->want_writable = false;
		c->app->on_writable(c);
	}
	return fin_acked;
}

/* Loss detected (3 duplicate ACKs, or SACK): start fast recovery up to what we sent. */
static void
enter_recovery(struct tq_tcp_conn *c)
{
	c->w->ctr[TQ_CTR_tcp_fast_retransmits]++;
	c->undo_cwnd = c->cwnd;
	c->undo_ssthresh = c->ssthresh;
	c->undo_ok = true;
	c->undo_first = true;
	c->undo_eifel = false;
	c->undo_full = false;
	c->undo_n = 0;
	c->cc->on_loss(c);
	c->recover = c->snd_max;
	c->in_recovery = true;
	c->rexmt_high = c->snd_una;
	c->rexmt_round_done = false;
}

static void
dup_ack(struct tq_tcp_conn *c)
{
	c->w->ctr[TQ_CTR_tcp_dup_acks_rx]++;
	if (c->txr) {
		/* RACK decides by time; three dup ACKs still mark the first segment lost (a
		 * peer that sends no SACK blocks), and tq_tcp_rack_recover resends it, until
		 * the path showed reordering (RFC 8985 6.2: DupThresh only while it has not) */
		struct tq_tcp_txrec *r = &c->txr->r[c->txr->head];

		if (++c->dupacks == 3 && !c->in_recovery && !c->rack_reord && c->txr->n &&
		    !(r->flags & TQ_TCP_TXREC_SACKED))
			tq_tcp_txrec_set(c->txr, r, r->flags | TQ_TCP_TXREC_LOST);
		return;
	}
	if (++c->dupacks == 3 && !c->in_recovery && tq_seq_ge(c->snd_una, c->recover)) {
		enter_recovery(c);
		if (!c->sack_ok || tq_tcp_sack_retransmit(c, 2) == 0)
			tq_tcp_retransmit_first(c);
		tq_tcp_rexmt_arm(c);
	} else if (c->in_recovery) {
		c->cwnd += c->snd_mss; /* each dup ACK: a segment left the network */
	}
}

/*
 * RACK (RFC 8985 6.2): after an ACK (or when the reorder timer fires, @timer), mark lost
 * what was sent before the last delivered segment by more than RTT + reordering window,
 * enter recovery once per window, resend the lost segments within cwnd (the first at
 * once), and arm the timer for what may still be merely reordered.
 */
void
tq_tcp_rack_recover(struct tq_tcp_conn *c, bool timer)
{
	unsigned int first = 0;

	if (!tq_tcp_rack_detect(c)) {
		if (timer || c->rack_reo_ms)
			tq_tcp_rexmt_arm(c);
		return;
	}
	if (!c->in_recovery && tq_seq_ge(c->snd_una, c->recover)) {
		enter_recovery(c);
		c->cwnd = c->ssthresh; /* RFC 6675: pipe, not dup ACKs, paces recovery */
		first = 1;
	} else if (!c->in_recovery) {
		first = 1; /* a loss of the window we already reduced for: resend, no new cut */
	}
	tq_tcp_rack_retransmit(c, first);
	tq_tcp_rexmt_arm(c);
}

static void
syn_sent(struct tq_tcp_conn *c, struct rte_mbuf *m, const struct tq_tcp_view *v)
{
	uint8_t fl = v->flags;

	if ((fl & TQ_TCP_ACK) && (tq_seq_le(v->ack, c->iss) || tq_seq_gt(v->ack, c->snd_max))) {
		if (!(fl & TQ_TCP_RST))
			tq_tcp_send_ctl(c, TQ_TCP_RST, v->ack);
		free_m(m);
		return;
	}
	if (fl & TQ_TCP_RST) {
		if (fl & TQ_TCP_ACK) {
			c->w->ctr[TQ_CTR_tcp_resets_rx]++;
			tq_tcp_drop(c, -ECONNREFUSED);
		}
		free_m(m);
		return;
	}
	if (!(fl & TQ_TCP_SYN)) {
		free_m(m);
		return;
	}
	free_m(m); /* no data on SYNs (no TCP Fast Open) */
	c->irs = v->seq;
	c->rcv_nxt = v->seq + 1;
	/* Our SYN's window was recorded against rcv_nxt = 0 (the peer's ISN was unknown):
	 * re-anchor it, or acceptability tests this connection against a random edge. */
	c->rcv_adv = c->rcv_nxt + RTE_MIN(tq_tcp_rcv_window(c), 65535u);
	negotiate(c, &v->opts);
	c->snd_wnd = v->window;
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = v->seq;
	c->snd_wl2 = v->ack;
	if (!(fl & TQ_TCP_ACK)) { /* simultaneous open */
		tq_tcp_set_state(c, TQ_TCP_SYN_RECEIVED);
		tq_tcp_send_syn(c);
		return;
	}
	rtt_from_ack(c, v);
	c->snd_una = v->ack;
	c->backoff = 0;
	tq_tcp_timer_clear(c, TQ_TCP_T_REXMT);
	established(c);
	c->w->ctr[TQ_CTR_tcp_active_opens]++;
	c->connected_cb_done = false; /* tell_connected sets it again */
	if (tell_connected(c))
		tq_tcp_output(c, TQ_TCP_SEND_ACK); /* the ACK, with what on_connected queued */
}

/* Is a segment of @len sequence numbers at @seq acceptable (RFC 9293 table)? */
static bool
acceptable(const struct tq_tcp_conn *c, uint32_t seq, uint32_t len, uint32_t wnd)
{
	if (len == 0)
		return wnd == 0 ? seq == c->rcv_nxt
				: tq_seq_ge(seq, c->rcv_nxt) && tq_seq_lt(seq, c->rcv_nxt + wnd);
	if (wnd == 0)
		return false;
	return (tq_seq_ge(seq, c->rcv_nxt) && tq_seq_lt(seq, c->rcv_nxt + wnd)) ||
	       (tq_seq_ge(seq + len - 1, c->rcv_nxt) && tq_seq_lt(seq + len - 1, c->rcv_nxt + wnd));
}

static void
challenge_ack(struct tq_tcp_conn *c)
{
	c->w->ctr[TQ_CTR_tcp_challenge_acks]++;
	tq_tcp_send_ctl(c, TQ_TCP_ACK, c->snd_nxt);
}

static void
receive_fin(struct tq_tcp_conn *c, bool fin_acked)
{
	c->rcv_nxt++;
	c->ack_now = true;
	c->has_rcv_fin = false;
	/* nothing follows a FIN: segments queued beyond it (a peer that sent data past its
	 * own FIN) would sit at or below rcv_nxt, never pulled, for the TCB's life (as
	 * Linux's tcp_fin, drop them) */
	tq_tcp_ooo_purge(c);
	switch (c->state) {
	case TQ_TCP_SYN_RECEIVED:
	case TQ_TCP_ESTABLISHED:
		tq_tcp_set_state(c, TQ_TCP_CLOSE_WAIT);
		if (c->app->on_peer_closed && !c->app_closed)
			c->app->on_peer_closed(c);
		break;
	case TQ_TCP_FIN_WAIT_1:
		if (fin_acked)
			enter_time_wait(c);
		else
			tq_tcp_set_state(c, TQ_TCP_CLOSING);
		break;
	case TQ_TCP_FIN_WAIT_2:
		enter_time_wait(c);
		break;
	case TQ_TCP_TIME_WAIT:
		tq_tcp_timer_set(c, TQ_TCP_T_2MSL, 2ull * tq_tcp_cfg.msl_ms);
		break;
	default:
		break;
	}
}

static void
segment_arrives(struct tq_tcp_conn *c, struct rte_mbuf *m, const struct tq_tcp_view *v)
{
	struct tq_worker *w = c->w;
	uint32_t seq = v->seq, len = (uint32_t)v->payload_len, wnd;
	uint8_t fl = v->flags;
	bool fin_acked = false, dsack = false;

	c->last_rx_tsc = w->now;
	c->probes = 0;
	if (c->state == TQ_TCP_SYN_SENT) {
		syn_sent(c, m, v);
		return;
	}
	/* a retransmitted SYN while we wait for the handshake's ACK: repeat the SYN-ACK */
	if (c->state == TQ_TCP_SYN_RECEIVED && (fl & (TQ_TCP_SYN | TQ_TCP_ACK)) == TQ_TCP_SYN &&
	    seq == c->irs) {
		tq_tcp_send_syn(c);
		free_m(m);
		return;
	}
	/* a new SYN for a connection in TIME_WAIT: recycle it if the SYN is newer */
	if (c->state == TQ_TCP_TIME_WAIT && (fl & (TQ_TCP_SYN | TQ_TCP_ACK | TQ_TCP_RST)) == TQ_TCP_SYN &&
	    (tq_seq_gt(seq, c->rcv_nxt) ||
	     (c->ts_ok && (v->opts.present & TQ_TCP_OPT_TS) && tq_seq_gt(v->opts.ts_val, c->ts_recent)))) {
		int li = tq_tcp_find_listener(v->dst_port);
		struct tq_tcp_key key = c->key;
		uint16_t port = c->port;

		tq_tcp_drop(c, 0);
		if (li >= 0) {
			w->ctr[TQ_CTR_tcp_time_wait_reused]++;
			tq_tcp_reap(w); /* the TCB may be reused at once */
			passive_open(w, port, &key, v, li);
		}
		free_m(m);
		return;
	}
	/* PAWS (RFC 7323 5.3) */
	if (c->ts_ok && (v->opts.present & TQ_TCP_OPT_TS) && !(fl & TQ_TCP_RST) &&
	    tq_seq_lt(v->opts.ts_val, c->ts_recent)) {
		w->ctr[TQ_CTR_tcp_paws]++;
		tq_tcp_send_ctl(c, TQ_TCP_ACK, c->snd_nxt);
		free_m(m);
		return;
	}
	/* Simultaneous open (RFC 9293 figure 8, line 6): the peer's SYN-ACK answers our SYN
	 * while we are in SYN_RECEIVED. Its SYN is the one we have; its ACK completes the
	 * handshake at once (as Linux does) instead of after a retransmitted SYN-ACK. */
	if (c->state == TQ_TCP_SYN_RECEIVED && c->listener == 0 &&
	    (fl & (TQ_TCP_SYN | TQ_TCP_ACK | TQ_TCP_RST | TQ_TCP_FIN)) == (TQ_TCP_SYN | TQ_TCP_ACK) &&
	    seq == c->irs && v->ack == c->snd_nxt && len == 0) {
		seq = c->rcv_nxt;
		fl &= (uint8_t)~TQ_TCP_SYN;
	}
	/* 1. acceptability against the window we advertised */
	wnd = tq_seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	/* A zero-window probe (RCV.NXT - 1, no data: Linux's) carries the peer's latest ACK
	 * and SACKs: take them (RFC 9293 3.10.7.4: "special allowance should be made to
	 * accept valid ACKs" with a zero window) instead of waiting for its next probe. */
	if (len == 0 && seq == c->rcv_nxt - 1 && (fl & (TQ_TCP_SYN | TQ_TCP_RST | TQ_TCP_FIN |
						       TQ_TCP_ACK)) == TQ_TCP_ACK &&
	    c->state != TQ_TCP_SYN_RECEIVED) {
		seq = c->rcv_nxt;
		c->ack_now = true;
	}
	if (!acceptable(c, seq, len + !!(fl & TQ_TCP_SYN) + !!(fl & TQ_TCP_FIN), wnd)) {
		if (!(fl & TQ_TCP_RST)) {
			w->ctr[TQ_CTR_tcp_out_of_window]++;
			/* data we have already: a duplicate, reported as such (RFC 2883) */
			if (len && tq_seq_le(seq + len, c->rcv_nxt) &&
			    tq_seq_gt(seq, c->irs))
				tq_tcp_dsack_note(c, seq, seq + len);
			tq_tcp_send_ctl(c, TQ_TCP_ACK, c->snd_nxt);
			/* RFC 9293: a retransmitted FIN in TIME_WAIT restarts the 2 MSL wait */
			if (c->state == TQ_TCP_TIME_WAIT && (fl & TQ_TCP_FIN))
				tq_tcp_timer_set(c, TQ_TCP_T_2MSL, 2ull * tq_tcp_cfg.msl_ms);
		}
		free_m(m);
		return;
	}
	/* update ts_recent (RFC 7323 4.3: the segment covers the last ACK we sent) */
	if (c->ts_ok && (v->opts.present & TQ_TCP_OPT_TS) && tq_seq_le(seq, c->last_ack_sent))
		c->ts_recent = v->opts.ts_val;
	/* trim what we already have (left) and what lies beyond the window (right) */
	if (tq_seq_lt(seq, c->rcv_nxt) && len) {
		uint32_t dup = c->rcv_nxt - seq;

		tq_tcp_dsack_note(c, seq, seq + RTE_MIN(dup, len));
		if (dup >= len) {
			if (dup > len)
				fl &= (uint8_t)~TQ_TCP_FIN;
			len = 0;
			seq = c->rcv_nxt;
			c->ack_now = true;
		} else {
			rte_pktmbuf_adj(m, (uint16_t)dup);
			seq += dup;
			len -= dup;
		}
	}
	if (len && tq_seq_gt(seq + len, c->rcv_nxt + wnd)) {
		uint32_t excess = seq + len - (c->rcv_nxt + wnd);

		rte_pktmbuf_trim(m, (uint16_t)excess);
		len -= excess;
		fl &= (uint8_t)~TQ_TCP_FIN;
		c->ack_now = true;
	}
	/* 2. RST (RFC 5961 3.2) */
	if (fl & TQ_TCP_RST) {
		if (seq == c->rcv_nxt) {
			w->ctr[TQ_CTR_tcp_resets_rx]++;
			tq_tcp_drop(c, c->state == TQ_TCP_TIME_WAIT ? 0 : -ECONNRESET);
		} else {
			w->ctr[TQ_CTR_tcp_rst_in_window]++;
			challenge_ack(c);
		}
		free_m(m);
		return;
	}
	/* 3. SYN on a synchronized connection (RFC 5961 4) */
	if (fl & TQ_TCP_SYN) {
		w->ctr[TQ_CTR_tcp_syn_in_window]++;
		challenge_ack(c);
		free_m(m);
		return;
	}
	/* 4. no ACK, no processing */
	if (!(fl & TQ_TCP_ACK)) {
		free_m(m);
		return;
	}
	/* 5. ACK */
	if (c->state == TQ_TCP_SYN_RECEIVED) {
		if (tq_seq_le(v->ack, c->snd_una) || tq_seq_gt(v->ack, c->snd_max)) {
			tq_tcp_send_ctl(c, TQ_TCP_RST, v->ack);
			free_m(m);
			return;
		}
		c->snd_wnd = (uint32_t)v->window << c->snd_wscale;
		c->snd_wl1 = seq;
		c->snd_wl2 = v->ack;
		established(c);
		fin_acked = new_ack(c, v);
		if (!tell_connected(c)) {
			free_m(m);
			return;
		}
	} else if (tq_seq_gt(v->ack, c->snd_max) ||
		   tq_seq_lt(v->ack, c->snd_una - c->max_snd_wnd)) {
		/* ACK of unsent data, or older than any window we were given (RFC 5961 5.2) */
		w->ctr[TQ_CTR_tcp_ack_invalid]++;
		tq_tcp_send_ctl(c, TQ_TCP_ACK, c->snd_nxt);
		free_m(m);
		return;
	} else if (tq_seq_gt(v->ack, c->snd_una)) {
		dsack = dsack_check(c, v);
		if (c->sack_ok)
			tq_tcp_sack_update(c, &v->opts);
		fin_acked = new_ack(c, v);
	} else if (v->ack == c->snd_una && len == 0 && !(fl & TQ_TCP_FIN) &&
		   ((uint32_t)v->window << c->snd_wscale) == c->snd_wnd && c->snd_max != c->snd_una) {
		dsack = dsack_check(c, v);
		if (c->sack_ok)
			tq_tcp_sack_update(c, &v->opts);
		if (!dsack) /* a report of a duplicate says nothing of a loss */
			dup_ack(c);
	} else if (c->sack_ok && (v->opts.present & TQ_TCP_OPT_SACK)) {
		dsack_check(c, v);
		tq_tcp_sack_update(c, &v->opts); /* e.g. an ACK carrying data */
	}
	if (c->txr && c->state != TQ_TCP_CLOSED) {
		if (v->opts.present & TQ_TCP_OPT_SACK)
			tq_tcp_rack_sacked(c);
		tq_tcp_rack_recover(c, false);
	} else if (c->sack_ok && c->state != TQ_TCP_CLOSED && c->sb_n) {
		/* RFC 6675: three segments' worth SACKed above a hole means loss, dup ACKs
		 * or not (the peer's ACKs ride on its data in request/response traffic) */
		if (!c->in_recovery && tq_seq_ge(c->snd_una, c->recover) &&
		    tq_tcp_sacked_bytes(c) >= 3u * c->snd_mss) {
			enter_recovery(c);
			tq_tcp_rexmt_arm(c);
		}
		/* RACK's insight (RFC 8985), simply: the peer SACKs data we sent after the last
		 * round of retransmissions while a hole is still open, so that retransmission
		 * was lost too: go over the holes again instead of waiting for the RTO. */
		if (c->in_recovery && c->rexmt_round_done &&
		    tq_seq_gt(c->sb[c->sb_n - 1].end, c->rexmt_round_mark) &&
		    tq_seq_lt(c->snd_una, c->sb[0].start)) {
			c->w->ctr[TQ_CTR_tcp_lost_retransmits]++;
			c->rexmt_high = c->snd_una;
			c->rexmt_round_done = false;
		}
		if (c->in_recovery)
			tq_tcp_sack_retransmit(c, 2);
	}
	if (c->state == TQ_TCP_CLOSED) {
		free_m(m);
		return;
	}
	if (tq_seq_lt(c->snd_wl1, seq) || (c->snd_wl1 == seq && tq_seq_le(c->snd_wl2, v->ack))) {
		uint32_t old = c->snd_wnd;

		c->snd_wnd = (uint32_t)v->window << c->snd_wscale;
		c->snd_wl1 = seq;
		c->snd_wl2 = v->ack;
		if (c->snd_wnd > c->max_snd_wnd)
			c->max_snd_wnd = c->snd_wnd;
		if (old == 0 && c->snd_wnd > 0) {
			c->backoff = 0; /* the zero window opened: stop probing */
			if (c->snd_una == c->snd_max)
				tq_tcp_timer_clear(c, TQ_TCP_T_REXMT);
		}
	}
	if (fin_acked) {
		switch (c->state) {
		case TQ_TCP_FIN_WAIT_1:
			tq_tcp_set_state(c, TQ_TCP_FIN_WAIT_2);
			tq_tcp_timer_clear(c, TQ_TCP_T_REXMT);
			if (c->app_closed) /* nobody will read: don't wait for the peer forever */
				tq_tcp_timer_set(c, TQ_TCP_T_2MSL, 2ull * tq_tcp_cfg.msl_ms);
			break;
		case TQ_TCP_CLOSING:
			enter_time_wait(c);
			break;
		case TQ_TCP_LAST_ACK:
			w->ctr[TQ_CTR_tcp_closed]++;
			tq_tcp_drop(c, 0);
			free_m(m);
			return;
		default:
			break;
		}
	}
	/* 6. payload */
	if (len) {
		if (c->state != TQ_TCP_ESTABLISHED && c->state != TQ_TCP_FIN_WAIT_1 &&
		    c->state != TQ_TCP_FIN_WAIT_2) {
			free_m(m); /* data after the peer's FIN: ignore */
			m = NULL;
		} else if (c->app_closed) {
			w->ctr[TQ_CTR_tcp_after_close]++;
			tq_tcp_send_ctl(c, TQ_TCP_RST | TQ_TCP_ACK, c->snd_nxt);
			tq_tcp_drop(c, -ECONNABORTED);
			free_m(m);
			return;
		} else if (seq == c->rcv_nxt) {
			c->rcv_nxt += len;
			c->rx_held += len;
			w->ctr[TQ_CTR_tcp_payload_rx] += len;
			if (c->ooo_n)
				c->ack_now = true; /* a hole filled: tell the sender at once */
			/* an ACK for every two full segments at once; without delayed ACKs, one
			 * for a single segment at the end of the poll iteration (not per segment
			 * of a burst: half the ACKs, the same latency within microseconds) */
			if (c->rcv_nxt - c->last_ack_sent >= 2u * c->snd_mss)
				c->ack_now = true;
			else if (!tq_tcp_cfg.delack_ms && !c->ack_now && !c->ack_burst) {
				struct tq_tcp_worker *t = w->tcp;

				if (t->ack_n < TQ_TCP_ACK_LIST) {
					c->ack_burst = true;
					t->ack_list[t->ack_n++] = c->idx;
				} else {
					c->ack_now = true;
				}
			}
			if (c->app->on_data)
				c->app->on_data(c, m);
			else
				free_m(m);
			m = NULL;
			if (c->state == TQ_TCP_CLOSED)
				return;
			tq_tcp_ooo_pull(c);
			if (c->state == TQ_TCP_CLOSED)
				return;
			if (c->has_rcv_fin && c->rcv_nxt == c->rcv_fin_seq)
				receive_fin(c, fin_acked);
			if (c->state == TQ_TCP_CLOSED)
				return; /* the application closed from on_peer_closed */
			if (!c->ack_now && !c->ack_burst && !c->delack_pending) {
				c->delack_pending = true;
				tq_tcp_timer_set(c, TQ_TCP_T_DELACK, tq_tcp_cfg.delack_ms);
			}
		} else {
			if (fl & TQ_TCP_FIN) { /* remember an out-of-order FIN */
				c->has_rcv_fin = true;
				c->rcv_fin_seq = seq + len;
				fl &= (uint8_t)~TQ_TCP_FIN;
			}
			tq_tcp_ooo_insert(c, seq, len, m);
			m = NULL;
			c->ack_now = true; /* duplicate ACK, with SACK blocks */
		}
	}
	free_m(m);
	if (c->state == TQ_TCP_CLOSED)
		return;
	/* 7. FIN, in order */
	if ((fl & TQ_TCP_FIN) && seq + len == c->rcv_nxt)
		receive_fin(c, fin_acked || (c->fin_queued && c->snd_una == c->snd_max &&
					     tq_seq_gt(c->snd_max, c->snd_una + c->sq_bytes)));
	if (c->state == TQ_TCP_CLOSED)
		return;
	tq_tcp_output(c, c->ack_now ? TQ_TCP_SEND_ACK : 0);
}

void
tq_tcp_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m, const struct tq_ipv4_view *ip)
{
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	struct tq_tcp_key key;
	struct tq_tcp_view v;
	struct tq_tcp_conn *c;
	unsigned int owner;
	int rc;

	if (ip->payload_len < 4) {
		tq_net_drop(w, m, TQ_CTR_tcp_truncated);
		return;
	}
	key.raddr = ip->src;
	key.laddr = ip->dst;
	memcpy(&key.rport, ip->payload, 2);
	memcpy(&key.lport, ip->payload + 2, 2);
	owner = tq_tcp_owner(&key, tq_dp.nb_workers);
	if (owner != w->id) {
		/* Not ours (the NIC or the kernel chose the queue): hand it to the owner. */
		struct tq_ring_msg msg = {.type = TQ_MSG_TCP_SEGMENT, .a = port,
					  .b = (uint64_t)(uintptr_t)m};

		if (tq_worker_post(tq_dp.workers[owner], &msg, w))
			tq_net_drop(w, m, TQ_CTR_tcp_ring_full);
		else
			w->ctr[TQ_CTR_tcp_forwarded]++;
		return;
	}
	w->ctr[TQ_CTR_tcp_segs_rx]++;
	if (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD ||
	    (l4 != RTE_MBUF_F_RX_L4_CKSUM_GOOD &&
	     !tq_tcp_checksum_ok(ip->src, ip->dst, ip->payload, ip->payload_len))) {
		tq_net_drop(w, m, TQ_CTR_tcp_bad_checksum);
		return;
	}
	rc = tq_tcp_parse(ip->payload, ip->payload_len, &v);
	if (rc < 0) {
		tq_net_drop(w, m, (unsigned int)-rc);
		return;
	}
	/* From here @m holds the payload only. */
	rte_pktmbuf_adj(m, (uint16_t)(ip->hdr_len + v.hdr_len));
	c = tq_tcp_lookup(w, &key);
	if (!c) {
		if (!tq_port_owns(port, ip->dst)) {
			tq_net_drop(w, m, TQ_CTR_ipv4_not_for_us);
			return;
		}
		no_conn(w, port, m, ip, &key, &v);
		return;
	}
	c->in_input = true;
	segment_arrives(c, m, &v);
	c->in_input = false;
}

void
tq_tcp_input_forwarded(struct tq_worker *w, uint16_t port, struct rte_mbuf *m)
{
	struct tq_ipv4_view ip;

	/* The first worker validated the IPv4 header; parse it again for the view only. */
	if (tq_ipv4_parse(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m),
			  TQ_IPV4_CSUM_VERIFIED, &ip) < 0) {
		tq_net_drop(w, m, TQ_CTR_ring_bad_msg);
		return;
	}
	tq_tcp_input(w, port, m, &ip);
}
