/*
 * TCP output: segments built by reference from the send queue (a header mbuf from the
 * worker's pool + indirect mbufs attached to the queued payload), ACKs, SYNs, RSTs.
 * Worker only.
 */
#include <string.h>

#include <netinet/in.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "dataplane/tq_worker.h"
#include "tq_csum.h"
#include "tq_ipv4.h"
#include "tq_net.h"
#include "tq_tcp_var.h"

#define HDR_ROOM (TQ_IPV4_HDR_LEN + TQ_TCP_HDR_MAX)

static void rack_sent(struct tq_tcp_conn *c, uint32_t seq, uint32_t len);
static bool rack_room(const struct tq_tcp_conn *c);

uint32_t
tq_tcp_rcv_window(const struct tq_tcp_conn *c)
{
	uint32_t used = c->rx_held + c->ooo_bytes;

	return used >= tq_tcp_cfg.rcv_buf ? 0 : tq_tcp_cfg.rcv_buf - used;
}

/* The window field for a non-SYN segment; never moves the right edge left (RFC 9293). */
static uint16_t
window_field(struct tq_tcp_conn *c)
{
	uint32_t win = tq_tcp_rcv_window(c), scaled;

	if (tq_seq_lt(c->rcv_nxt + win, c->rcv_adv))
		win = c->rcv_adv - c->rcv_nxt;
	scaled = win >> c->rcv_wscale;
	if (scaled > 65535)
		scaled = 65535;
	if (tq_seq_gt(c->rcv_nxt + (scaled << c->rcv_wscale), c->rcv_adv))
		c->rcv_adv = c->rcv_nxt + (scaled << c->rcv_wscale);
	return (uint16_t)scaled;
}

/* Attach @len bytes of the send queue, starting @off bytes after snd_una, to @m. */
static int
attach_payload(struct tq_tcp_conn *c, struct rte_mbuf *m, uint32_t off, uint32_t len)
{
	uint32_t skip = c->sq_off + off, pos = 0;
	struct rte_mbuf *s = c->sq_head;
	bool first = true;

	if (c->sq_cur && c->sq_cur_pos <= skip) {
		s = c->sq_cur;
		pos = c->sq_cur_pos;
		skip -= pos;
	}
	for (; s && len; s = s->next) {
		struct rte_mbuf *mi;
		uint32_t take;

		if (skip >= s->data_len) {
			skip -= s->data_len;
			pos += s->data_len;
			continue;
		}
		if (first) {
			c->sq_cur = s;
			c->sq_cur_pos = pos;
			first = false;
		}
		take = RTE_MIN(s->data_len - skip, len);
		mi = rte_pktmbuf_alloc(c->w->tcp->clone_pool);
		if (!mi)
			return -ENOMEM;
		rte_pktmbuf_attach(mi, s);
		rte_pktmbuf_adj(mi, (uint16_t)skip);
		rte_pktmbuf_trim(mi, (uint16_t)(mi->data_len - take));
		if (rte_pktmbuf_chain(m, mi)) {
			rte_pktmbuf_free(mi);
			return -EOVERFLOW;
		}
		len -= take;
		skip = 0;
	}
	return len ? -EINVAL : 0;
}

/* The out-of-order data ending with segment *@i, merged with the segments it touches
 * below; *@i becomes the lowest of them. */
static struct tq_tcp_sack_block
ooo_block(const struct tq_tcp_conn *c, int *i)
{
	struct tq_tcp_sack_block b = {c->ooo[*i].seq, c->ooo[*i].seq + c->ooo[*i].len};

	while (*i > 0 && c->ooo[*i - 1].seq + c->ooo[*i - 1].len == b.start) {
		(*i)--;
		b.start = c->ooo[*i].seq;
	}
	return b;
}

/* Options every segment of @c carries (timestamps), plus SACK blocks on ACKs. */
static void
segment_opts(struct tq_tcp_conn *c, struct tq_tcp_opts *o, uint8_t flags)
{
	memset(o, 0, sizeof(*o));
	if (c->ts_ok) {
		o->present |= TQ_TCP_OPT_TS;
		o->ts_val = tq_tcp_ts_now(c->w);
		o->ts_ecr = c->ts_recent;
	}
	if (c->sack_ok && (c->ooo_n || c->dsack) && (flags & TQ_TCP_ACK) &&
	    !(flags & TQ_TCP_SYN)) {
		/* RFC 2883: a duplicate's span first (a D-SACK block), once. RFC 2018 4: then
		 * the block holding the segment that arrived last (MUST), then the others,
		 * highest first (usually the most recently changed). */
		unsigned int room = tq_tcp_sack_room(o), n = 0, f;
		bool first = false;

		if (c->dsack) {
			c->dsack = false;
			o->sack[n++] = c->dsack_blk;
			c->w->ctr[TQ_CTR_tcp_dsack_tx]++;
		}
		f = n;
		for (int i = c->ooo_n - 1; i >= 0 && !first; i--) {
			struct tq_tcp_sack_block b = ooo_block(c, &i);

			if (tq_seq_ge(c->ooo_last, b.start) && tq_seq_lt(c->ooo_last, b.end)) {
				o->sack[n++] = b;
				first = true;
			}
		}
		for (int i = c->ooo_n - 1; i >= 0 && n < room; i--) {
			struct tq_tcp_sack_block b = ooo_block(c, &i);

			if (!first || b.start != o->sack[f].start)
				o->sack[n++] = b;
		}
		o->sack_count = (uint8_t)n;
		o->present |= TQ_TCP_OPT_SACK;
	}
}

/* SYN options: what we offer (active open) or what the peer offered and we accept. */
static void
syn_opts(struct tq_tcp_conn *c, struct tq_tcp_opts *o)
{
	bool active = c->listener == 0;

	memset(o, 0, sizeof(*o));
	o->present = TQ_TCP_OPT_MSS;
	o->mss = tq_tcp_cfg.mss;
	if (c->from_cookie)
		return;
	if (active ? tq_tcp_cfg.wscale > 0 : c->ws_ok) {
		o->present |= TQ_TCP_OPT_WSCALE;
		o->wscale = c->rcv_wscale;
	}
	if (active ? tq_tcp_cfg.sack : c->sack_ok)
		o->present |= TQ_TCP_OPT_SACK_PERM;
	if (active ? tq_tcp_cfg.timestamps : c->ts_ok) {
		o->present |= TQ_TCP_OPT_TS;
		o->ts_val = tq_tcp_ts_now(c->w);
		o->ts_ecr = c->ts_recent;
	}
}

/* TCP checksum of @len bytes from @off in the chain @m, with the IPv4 pseudo-header. */
static uint16_t
chain_checksum(uint32_t src, uint32_t dst, const struct rte_mbuf *m, uint32_t off, uint32_t len)
{
	uint32_t sum = tq_tcp_pseudo_csum(src, dst, len);
	bool odd = false;

	for (; m && len; m = m->next) {
		uint32_t n;
		uint16_t s;

		if (off >= m->data_len) {
			off -= m->data_len;
			continue;
		}
		n = RTE_MIN((uint32_t)m->data_len - off, len);
		s = tq_csum_sum(rte_pktmbuf_mtod_offset(m, const uint8_t *, off), n, 0);
		/* a segment that starts at an odd offset of the whole has its bytes swapped */
		sum += odd ? (uint16_t)(s << 8 | s >> 8) : s;
		if (n & 1)
			odd = !odd;
		len -= n;
		off = 0;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * Build and send one segment of @c: @flags, sequence @seq, @len payload bytes taken @off
 * bytes after snd_una. Returns 0 or -ENOMEM (nothing sent; the caller retries later).
 */
static int
send_segment(struct tq_tcp_conn *c, uint8_t flags, uint32_t seq, uint32_t off, uint32_t len)
{
	struct tq_worker *w = c->w;
	struct tq_tcp_hdr_spec spec;
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	uint8_t *p;
	size_t hlen;

	if (!m) {
		w->ctr[TQ_CTR_mbuf_alloc_failed]++;
		return -ENOMEM;
	}
	memset(&spec, 0, sizeof(spec));
	spec.src_port = rte_be_to_cpu_16(c->key.lport);
	spec.dst_port = rte_be_to_cpu_16(c->key.rport);
	spec.seq = seq;
	spec.flags = flags;
	if (flags & TQ_TCP_ACK)
		spec.ack = c->rcv_nxt;
	if (flags & TQ_TCP_SYN) {
		syn_opts(c, &spec.opts);
		spec.window = (uint16_t)RTE_MIN(tq_tcp_rcv_window(c), 65535u);
		c->rcv_adv = c->rcv_nxt + spec.window;
	} else {
		segment_opts(c, &spec.opts, len ? flags & (uint8_t)~TQ_TCP_ACK : flags);
		spec.window = window_field(c);
	}
	hlen = tq_tcp_hdr_len(&spec.opts);
	p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(TQ_IPV4_HDR_LEN + hlen));
	tq_tcp_build(p + TQ_IPV4_HDR_LEN, &spec);
	if (len && attach_payload(c, m, off, len)) {
		rte_pktmbuf_free(m);
		w->ctr[TQ_CTR_mbuf_alloc_failed]++;
		return -ENOMEM;
	}
	tq_ipv4_build(p, c->key.laddr, c->key.raddr, IPPROTO_TCP, (uint16_t)(hlen + len),
		      w->ip_id++, TQ_IPV4_DEFAULT_TTL, true);
	{
		uint16_t csum = chain_checksum(c->key.laddr, c->key.raddr, m, TQ_IPV4_HDR_LEN,
					       (uint32_t)(hlen + len));

		memcpy(p + TQ_IPV4_HDR_LEN + 16, &csum, 2);
	}
	if (flags & TQ_TCP_ACK) {
		c->last_ack_sent = c->rcv_nxt;
		c->ack_now = false;
		c->ack_burst = false; /* what it owed went with this one */
		if (c->delack_pending) {
			c->delack_pending = false;
			tq_tcp_timer_clear(c, TQ_TCP_T_DELACK);
		}
	}
	if (len) {
		if (c->in_recovery && c->undo_ok && tq_seq_lt(seq, c->snd_max))
			tq_tcp_undo_note(c, seq, len);
		rack_sent(c, seq, len);
	}
	w->ctr[TQ_CTR_tcp_segs_tx]++;
	w->ctr[TQ_CTR_tcp_payload_tx] += len;
	if (flags & TQ_TCP_RST)
		w->ctr[TQ_CTR_tcp_resets_tx]++;
	tq_ipv4_output(w, m);
	return 0;
}

void
tq_tcp_send_syn(struct tq_tcp_conn *c)
{
	uint8_t flags = TQ_TCP_SYN | (c->state == TQ_TCP_SYN_RECEIVED ? TQ_TCP_ACK : 0);

	/* Karn: time only the first transmission of the SYN */
	c->rtt_timing = c->backoff == 0;
	c->rtt_seq = c->iss;
	c->rtt_start_tsc = c->w->now;
	if (send_segment(c, flags, c->iss, 0, 0) == 0) {
		c->snd_nxt = c->iss + 1;
		if (tq_seq_gt(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
	}
	tq_tcp_rexmt_arm(c);
}

void
tq_tcp_send_ctl(struct tq_tcp_conn *c, uint8_t flags, uint32_t seq)
{
	send_segment(c, flags, seq, 0, 0);
}

/* First sequence number after the queued data: where FIN goes. */
static uint32_t
data_end(const struct tq_tcp_conn *c)
{
	return c->snd_una + c->sq_bytes;
}

/* Bytes below @seq that the peer SACKed (they left the network: RFC 6675's pipe). */
static uint32_t
sacked_below(const struct tq_tcp_conn *c, uint32_t seq)
{
	uint32_t n = 0;

	for (unsigned int i = 0; i < c->sb_n && tq_seq_lt(c->sb[i].start, seq); i++) {
		uint32_t start = tq_seq_max(c->sb[i].start, c->snd_una);
		uint32_t end = tq_seq_min(c->sb[i].end, seq);

		if (tq_seq_lt(start, end))
			n += end - start;
	}
	return n;
}

/*
 * Going over already-sent data again (after a timeout): step over what the peer SACKed
 * and return the bytes we may send from snd_nxt before the next SACKed block.
 */
static uint32_t
skip_sacked(struct tq_tcp_conn *c)
{
	for (unsigned int i = 0; i < c->sb_n; i++) {
		if (tq_seq_le(c->sb[i].end, c->snd_nxt))
			continue;
		if (tq_seq_le(c->sb[i].start, c->snd_nxt)) {
			c->snd_nxt = c->sb[i].end;
			continue;
		}
		return c->sb[i].start - c->snd_nxt;
	}
	return UINT32_MAX;
}

void
tq_tcp_output(struct tq_tcp_conn *c, unsigned int flags)
{
	bool sent = false, failed = false;
	/* RACK's pipe, walked once per call: each new segment then adds its length (a walk per
	 * segment made a flight's output quadratic in its records: 7.6 % of an MQTT worker) */
	bool rack_pipe_ok = false;
	uint32_t rack_pipe = 0;

	switch (c->state) {
	case TQ_TCP_ESTABLISHED:
	case TQ_TCP_CLOSE_WAIT:
	case TQ_TCP_FIN_WAIT_1:
	case TQ_TCP_CLOSING:
	case TQ_TCP_LAST_ACK:
		break;
	case TQ_TCP_SYN_RECEIVED:
	case TQ_TCP_FIN_WAIT_2:
	case TQ_TCP_TIME_WAIT:
		if (flags & TQ_TCP_SEND_ACK || c->ack_now)
			send_segment(c, TQ_TCP_ACK, c->snd_nxt, 0, 0);
		return;
	default:
		return;
	}
	for (;;) {
		uint32_t nxt0 = c->snd_nxt;
		uint32_t room = c->sb_n ? skip_sacked(c) : UINT32_MAX;
		/* the peer's window bounds the sequence span; cwnd bounds what is in the network */
		uint32_t inflight = c->snd_nxt - c->snd_una;
		uint32_t pipe;
		bool new_data;

		if (c->snd_nxt != nxt0)
			rack_pipe_ok = false; /* moved over SACKed data: count again */
		if (c->txr && !rack_pipe_ok) {
			rack_pipe = tq_tcp_rack_pipe(c);
			rack_pipe_ok = true;
		}
		pipe = c->txr ? rack_pipe : inflight - (c->sb_n ? sacked_below(c, c->snd_nxt) : 0);
		uint32_t win = c->snd_wnd;
		uint32_t off = inflight, unsent, len;
		uint8_t fl = TQ_TCP_ACK;

		if (flags & TQ_TCP_SEND_PROBE && !sent)
			pipe = 0; /* a tail loss probe with new data: one segment past cwnd */
		if (pipe >= c->cwnd)
			win = RTE_MIN(win, inflight); /* no room in cwnd: nothing goes out */
		else
			win = RTE_MIN(win, inflight + (c->cwnd - pipe));

		if (tq_seq_ge(c->snd_nxt, data_end(c)))
			unsent = 0;
		else
			unsent = data_end(c) - c->snd_nxt;
		if (unsent == 0) {
			/* FIN once everything before it is out (again, after a timeout) */
			if (c->fin_queued && c->snd_nxt == data_end(c) &&
			    (inflight < win || c->snd_wnd == 0)) {
				if (send_segment(c, TQ_TCP_ACK | TQ_TCP_FIN, c->snd_nxt, 0, 0)) {
					failed = true;
					break;
				}
				c->snd_nxt++;
				if (tq_seq_gt(c->snd_nxt, c->snd_max))
					c->snd_max = c->snd_nxt;
				sent = true;
			}
			break;
		}
		if (inflight >= win) {
			if (c->snd_wnd == 0 && inflight == 0)
				tq_tcp_rexmt_arm(c); /* persist: probe the zero window */
			break;
		}
		len = RTE_MIN(unsent, (uint32_t)c->snd_mss);
		len = RTE_MIN(len, win - inflight);
		len = RTE_MIN(len, room);
		/* a flight beyond the ring's records (huge windows): RFC 6675 recovery alone
		 * until everything is acknowledged */
		if (tq_seq_ge(c->snd_nxt, c->snd_max) && !rack_room(c)) {
			c->w->ctr[TQ_CTR_tcp_rack_no_ring]++;
			tq_tcp_rack_release(c);
			if (c->in_recovery) /* what the SACK fallback expects of a recovery */
				c->rexmt_high = c->snd_una;
		}
		/* Sender SWS avoidance: no runt segment while data is in flight and more waits. */
		if (len < c->snd_mss && len < unsent && inflight > 0)
			break;
		if (len == unsent && c->fin_queued)
			fl |= TQ_TCP_FIN;
		if (len == unsent)
			fl |= TQ_TCP_PSH;
		new_data = tq_seq_ge(c->snd_nxt, c->snd_max);
		if (send_segment(c, fl, c->snd_nxt, off, len)) {
			failed = true;
			break;
		}
		if (new_data && !(fl & TQ_TCP_FIN) && c->txr)
			rack_pipe += len; /* its record: neither SACKed nor lost, below snd_nxt */
		else
			rack_pipe_ok = false; /* going back after a timeout, or the FIN: count again */
		if (!new_data)
			c->w->ctr[TQ_CTR_tcp_retransmits]++;
		if (!c->rtt_timing && tq_seq_ge(c->snd_nxt, c->snd_max)) {
			c->rtt_timing = true;
			c->rtt_seq = c->snd_nxt;
			c->rtt_start_tsc = c->w->now;
		}
		c->snd_nxt += len + ((fl & TQ_TCP_FIN) ? 1 : 0);
		if (tq_seq_gt(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
		sent = true;
	}
	if (sent || failed) {
		/* after an mbuf shortage the timer brings us back here: never a silent stall */
		tq_tcp_probe_rearm(c);
		return;
	}
	if (flags & TQ_TCP_SEND_ACK || c->ack_now)
		send_segment(c, TQ_TCP_ACK, c->snd_nxt, 0, 0);
}

void
tq_tcp_ack_flush(struct tq_worker *w)
{
	struct tq_tcp_worker *t = w->tcp;

	for (uint32_t i = 0; i < t->ack_n; i++) {
		struct tq_tcp_conn *c = &t->conns[t->ack_list[i]];

		if (c->ack_burst) {
			c->ack_burst = false;
			tq_tcp_output(c, TQ_TCP_SEND_ACK);
		}
	}
	t->ack_n = 0;
}

void
tq_tcp_retransmit_first(struct tq_tcp_conn *c)
{
	uint32_t len = RTE_MIN((uint32_t)c->snd_mss, c->sq_bytes);
	uint8_t fl = TQ_TCP_ACK;

	c->w->ctr[TQ_CTR_tcp_retransmits]++;
	c->rtt_timing = false; /* Karn: no sample from a retransmitted segment */
	if (len == c->sq_bytes && c->fin_queued && tq_seq_gt(c->snd_max, data_end(c)))
		fl |= TQ_TCP_FIN;
	send_segment(c, fl, c->snd_una, 0, len);
}

void
tq_tcp_retransmit_last(struct tq_tcp_conn *c)
{
	uint32_t data_out = tq_seq_lt(data_end(c), c->snd_max) ? data_end(c) : c->snd_max;
	uint32_t len = RTE_MIN((uint32_t)c->snd_mss, data_out - c->snd_una);
	uint32_t seq = data_out - len;
	uint8_t fl = TQ_TCP_ACK;

	if (c->fin_queued && tq_seq_gt(c->snd_max, data_end(c)))
		fl |= TQ_TCP_FIN; /* the FIN was sent after the data: probe with it */
	else if (len && data_out == data_end(c))
		fl |= TQ_TCP_PSH; /* as when it was first sent */
	c->rtt_timing = false;
	send_segment(c, fl, seq, seq - c->snd_una, len);
}

void
tq_tcp_undo_note(struct tq_tcp_conn *c, uint32_t seq, uint32_t len)
{
	if (c->undo_first) {
		c->undo_first = false;
		c->undo_eifel = c->ts_ok;
		c->undo_tsval = tq_tcp_ts_now(c->w); /* what segment_opts put on it */
		c->undo_end = seq + len;
	}
	if (c->undo_n == TQ_TCP_UNDO_MAX) {
		c->undo_full = true;
		return;
	}
	c->undo_rx[c->undo_n].start = seq;
	c->undo_rx[c->undo_n].end = seq + len;
	c->undo_n++;
}

void
tq_tcp_sack_update(struct tq_tcp_conn *c, const struct tq_tcp_opts *o)
{
	struct tq_tcp_sack_block *sb = c->sb;
	unsigned int n = c->sb_n;

	for (unsigned int i = 0; o && i < o->sack_count; i++) {
		struct tq_tcp_sack_block b = o->sack[i];
		unsigned int j;

		/* ignore blocks that are stale, empty or beyond what we sent (RFC 6675 5.1) */
		if (!tq_seq_lt(b.start, b.end) || tq_seq_le(b.end, c->snd_una) ||
		    tq_seq_gt(b.end, c->snd_max))
			continue;
		if (tq_seq_lt(b.start, c->snd_una))
			b.start = c->snd_una;
		/* insert sorted, then merge overlapping or touching neighbours */
		for (j = 0; j < n && tq_seq_lt(sb[j].start, b.start); j++)
			;
		if (n == TQ_TCP_SB_MAX) { /* full: forget the highest block */
			if (j == n)
				continue;
			n--;
		}
		memmove(&sb[j + 1], &sb[j], (n - j) * sizeof(*sb));
		sb[j] = b;
		n++;
	}
	/* prune below snd_una and merge */
	{
		unsigned int w = 0;

		for (unsigned int r = 0; r < n; r++) {
			struct tq_tcp_sack_block b = sb[r];

			if (tq_seq_le(b.end, c->snd_una))
				continue;
			if (tq_seq_lt(b.start, c->snd_una))
				b.start = c->snd_una;
			if (w && tq_seq_le(b.start, sb[w - 1].end)) {
				if (tq_seq_gt(b.end, sb[w - 1].end))
					sb[w - 1].end = b.end;
				continue;
			}
			sb[w++] = b;
		}
		c->sb_n = (uint8_t)w;
	}
}

uint32_t
tq_tcp_sacked_bytes(const struct tq_tcp_conn *c)
{
	uint32_t n = 0;

	for (unsigned int i = 0; i < c->sb_n; i++)
		n += c->sb[i].end - c->sb[i].start;
	return n;
}

unsigned int
tq_tcp_sack_retransmit(struct tq_tcp_conn *c, unsigned int max_segs)
{
	unsigned int sent = 0;
	uint32_t seq = tq_seq_max(c->rexmt_high, c->snd_una);

	/* holes lie below the highest SACKed byte; each is sent once per recovery */
	for (unsigned int i = 0; i < c->sb_n && sent < max_segs; i++) {
		while (tq_seq_lt(seq, c->sb[i].start) && sent < max_segs) {
			uint32_t len = RTE_MIN(c->sb[i].start - seq, (uint32_t)c->snd_mss);

			len = RTE_MIN(len, c->sq_bytes - (seq - c->snd_una));
			if (len == 0 ||
			    send_segment(c, TQ_TCP_ACK, seq, seq - c->snd_una, len))
				return sent;
			c->w->ctr[TQ_CTR_tcp_retransmits]++;
			seq += len;
			sent++;
		}
		if (tq_seq_lt(seq, c->sb[i].start))
			break; /* the cap hit mid-hole: the rest of it is for the next call */
		if (tq_seq_lt(seq, c->sb[i].end))
			seq = c->sb[i].end;
	}
	c->rexmt_high = seq;
	if (sent)
		c->rtt_timing = false; /* Karn */
	/* every hole went out again: data sent from here on is newer than the retransmissions */
	if (sent < max_segs && c->sb_n && tq_seq_ge(seq, c->sb[c->sb_n - 1].end) &&
	    !c->rexmt_round_done) {
		c->rexmt_round_done = true;
		c->rexmt_round_mark = c->snd_nxt;
	}
	return sent;
}

void
tq_tcp_sq_acked(struct tq_tcp_conn *c, uint32_t bytes)
{
	uint32_t skip;

	if (bytes > c->sq_bytes)
		bytes = c->sq_bytes;
	c->sq_bytes -= bytes;
	skip = c->sq_off + bytes;
	while (c->sq_head && skip >= c->sq_head->data_len) {
		struct rte_mbuf *s = c->sq_head;

		skip -= s->data_len;
		if (c->sq_cur == s)
			c->sq_cur = NULL;
		else if (c->sq_cur)
			c->sq_cur_pos -= s->data_len;
		c->sq_head = s->next;
		s->next = NULL;
		s->nb_segs = 1;
		s->pkt_len = s->data_len;
		rte_pktmbuf_free_seg(s);
		c->sq_mbufs--;
		c->w->tcp->sq_mbufs--;
	}
	if (!c->sq_head)
		c->sq_tail = NULL;
	c->sq_off = c->sq_head ? skip : 0;
}

void
tq_tcp_send_stateless(struct tq_worker *w, uint32_t laddr, uint32_t raddr,
		      const struct tq_tcp_hdr_spec *spec)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	size_t hlen = tq_tcp_hdr_len(&spec->opts);
	uint16_t csum;
	uint8_t *p;

	if (!m) {
		w->ctr[TQ_CTR_mbuf_alloc_failed]++;
		return;
	}
	p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(TQ_IPV4_HDR_LEN + hlen));
	tq_tcp_build(p + TQ_IPV4_HDR_LEN, spec);
	csum = tq_tcp_checksum(laddr, raddr, p + TQ_IPV4_HDR_LEN, hlen);
	memcpy(p + TQ_IPV4_HDR_LEN + 16, &csum, 2);
	tq_ipv4_build(p, laddr, raddr, IPPROTO_TCP, (uint16_t)hlen, w->ip_id++,
		      TQ_IPV4_DEFAULT_TTL, true);
	if (spec->flags & TQ_TCP_RST)
		w->ctr[TQ_CTR_tcp_resets_tx]++;
	w->ctr[TQ_CTR_tcp_segs_tx]++;
	tq_ipv4_output(w, m);
}

void
tq_tcp_send_rst_for(struct tq_worker *w, const struct tq_ipv4_view *ip,
		    const struct tq_tcp_view *v)
{
	struct tq_tcp_hdr_spec spec;

	if (v->flags & TQ_TCP_RST)
		return;
	memset(&spec, 0, sizeof(spec));
	spec.src_port = v->dst_port;
	spec.dst_port = v->src_port;
	if (v->flags & TQ_TCP_ACK) {
		spec.seq = v->ack;
		spec.flags = TQ_TCP_RST;
	} else {
		spec.ack = v->seq + (uint32_t)v->payload_len + !!(v->flags & TQ_TCP_SYN) +
			   !!(v->flags & TQ_TCP_FIN);
		spec.flags = TQ_TCP_RST | TQ_TCP_ACK;
	}
	tq_tcp_send_stateless(w, ip->dst, ip->src, &spec);
}

/* ---- RACK (RFC 8985): transmission records ---- */

#define REC(t, i) (&(t)->r[((t)->head + (i)) % TQ_TCP_TXREC_MAX])

static uint32_t
tsc_to_us(uint64_t tsc)
{
	return (uint32_t)RTE_MIN(tsc * 1000000 / rte_get_tsc_hz(), (uint64_t)UINT32_MAX);
}

/* A ring for @c, from the worker's pool; NULL (RACK off for now) without SACK or rings. */
static struct tq_tcp_txring *
rack_attach(struct tq_tcp_conn *c)
{
	void *obj;

	if (!c->sack_ok || !c->w->tcp->txrec_pool)
		return NULL;
	if (rte_mempool_get(c->w->tcp->txrec_pool, &obj)) {
		c->w->ctr[TQ_CTR_tcp_rack_no_ring]++;
		return NULL;
	}
	c->txr = obj;
	c->txr->head = 0;
	c->txr->n = 0;
	c->txr->nmark = 0;
	c->txr->nrexmt = 0;
	return c->txr;
}

void
tq_tcp_rack_release(struct tq_tcp_conn *c)
{
	if (c->txr) {
		rte_mempool_put(c->w->tcp->txrec_pool, c->txr);
		c->txr = NULL;
	}
}

/* send_segment sent @len payload bytes at @seq: new records, or newer times for old ones. */
static void
rack_sent(struct tq_tcp_conn *c, uint32_t seq, uint32_t len)
{
	struct tq_tcp_txring *t = c->txr;
	uint32_t end = seq + len, top;

	if (!t) {
		/* records start with a flight: a ring taken mid-flight would not cover it */
		if (c->snd_una != c->snd_max || seq != c->snd_una || !rack_attach(c))
			return;
		t = c->txr;
	}
	top = t->n ? REC(t, t->n - 1)->end : seq;
	for (unsigned int i = 0; i < t->n && tq_seq_lt(seq, top); i++) {
		struct tq_tcp_txrec *r = REC(t, i);

		if (tq_seq_le(r->end, seq))
			continue;
		if (tq_seq_ge(r->start, end))
			break;
		r->xmit_tsc = c->w->now;
		tq_tcp_txrec_set(t, r, (r->flags & ~(uint32_t)TQ_TCP_TXREC_LOST) |
					       TQ_TCP_TXREC_RETRANS);
	}
	if (tq_seq_gt(end, top) && t->n < TQ_TCP_TXREC_MAX) {
		struct tq_tcp_txrec *r = REC(t, t->n);

		r->start = tq_seq_max(seq, top);
		r->end = end;
		r->xmit_tsc = c->w->now;
		r->flags = 0;
		t->n++;
	}
}

/* Room for another new segment's record (output stops sending new data without it). */
static bool
rack_room(const struct tq_tcp_conn *c)
{
	return !c->txr || c->txr->n < TQ_TCP_TXREC_MAX;
}

/* RFC 8985 6.2 step 2: @r was delivered. */
static void
rack_delivered(struct tq_tcp_conn *c, const struct tq_tcp_txrec *r)
{
	uint32_t rtt = tsc_to_us(c->w->now - r->xmit_tsc);

	/* a retransmission ACKed faster than any RTT: the original's ACK, ambiguous */
	if ((r->flags & TQ_TCP_TXREC_RETRANS) && c->min_rtt_us && rtt < c->min_rtt_us)
		return;
	if (!(r->flags & TQ_TCP_TXREC_RETRANS) && (c->min_rtt_us == 0 || rtt < c->min_rtt_us))
		c->min_rtt_us = RTE_MAX(rtt, 1u);
	/* sent once, before what was delivered already: the path reorders (6.2 step 3) */
	if (!(r->flags & TQ_TCP_TXREC_RETRANS) && r->xmit_tsc < c->rack_xmit_tsc)
		c->rack_reord = true;
	c->rack_rtt_us = rtt;
	if (r->xmit_tsc > c->rack_xmit_tsc ||
	    (r->xmit_tsc == c->rack_xmit_tsc && tq_seq_gt(r->end, c->rack_end))) {
		c->rack_xmit_tsc = r->xmit_tsc;
		c->rack_end = r->end;
	}
}

void
tq_tcp_rack_acked(struct tq_tcp_conn *c, uint32_t ack)
{
	struct tq_tcp_txring *t = c->txr;

	while (t && t->n && tq_seq_le(REC(t, 0)->end, ack)) {
		if (!(REC(t, 0)->flags & TQ_TCP_TXREC_SACKED))
			rack_delivered(c, REC(t, 0));
		tq_tcp_txrec_set(t, REC(t, 0), 0);
		t->head = (uint16_t)((t->head + 1) % TQ_TCP_TXREC_MAX);
		t->n--;
	}
}

void
tq_tcp_rack_sacked(struct tq_tcp_conn *c)
{
	struct tq_tcp_txring *t = c->txr;
	unsigned int b = 0;

	if (!t)
		return;
	for (unsigned int i = 0; i < t->n && b < c->sb_n; i++) {
		struct tq_tcp_txrec *r = REC(t, i);

		while (b < c->sb_n && tq_seq_le(c->sb[b].end, r->start))
			b++;
		if (b == c->sb_n)
			break;
		if (r->flags & TQ_TCP_TXREC_SACKED)
			continue;
		if (tq_seq_le(c->sb[b].start, r->start) && tq_seq_ge(c->sb[b].end, r->end)) {
			tq_tcp_txrec_set(t, r, (r->flags & ~(uint32_t)TQ_TCP_TXREC_LOST) |
						       TQ_TCP_TXREC_SACKED);
			rack_delivered(c, r);
		}
	}
}

bool
tq_tcp_rack_detect(struct tq_tcp_conn *c)
{
	struct tq_tcp_txring *t = c->txr;
	uint64_t hz = rte_get_tsc_hz(), wait_tsc, next = UINT64_MAX;
	uint32_t reo_us;
	bool lost = false;

	c->rack_reo_ms = 0;
	if (!t || !c->rack_xmit_tsc)
		return false;
	/*
	 * The reordering window: a quarter of the lowest RTT, at least the 1 ms clock tick;
	 * once the path showed reordering, SRTT (RFC 8985's cap: without DSACK to grow the
	 * window by rounds, jitter of several ms would otherwise cut cwnd for nothing).
	 */
	reo_us = RTE_MAX(c->min_rtt_us / 4, 1000u);
	if (c->srtt_us && (c->rack_reord || reo_us > c->srtt_us))
		reo_us = c->srtt_us > 1000 ? c->srtt_us : 1000;
	wait_tsc = ((uint64_t)c->rack_rtt_us + reo_us) * hz / 1000000;
	for (unsigned int i = 0; i < t->n; i++) {
		struct tq_tcp_txrec *r = REC(t, i);
		uint64_t due;

		if (r->flags & TQ_TCP_TXREC_LOST)
			lost = true; /* marked before, not resent yet (cwnd) */
		if (r->flags & (TQ_TCP_TXREC_SACKED | TQ_TCP_TXREC_LOST))
			continue;
		/* only what was sent before the latest delivered segment; with nothing sent
		 * twice the ring is in transmission order, so nothing after this either */
		if (r->xmit_tsc > c->rack_xmit_tsc ||
		    (r->xmit_tsc == c->rack_xmit_tsc && tq_seq_ge(r->end, c->rack_end))) {
			if (t->nrexmt == 0)
				break;
			continue;
		}
		due = r->xmit_tsc + wait_tsc;
		if (due <= c->w->now) {
			if (r->flags & TQ_TCP_TXREC_RETRANS)
				c->w->ctr[TQ_CTR_tcp_lost_retransmits]++;
			tq_tcp_txrec_set(t, r, r->flags | TQ_TCP_TXREC_LOST);
			lost = true;
		} else if (due < next) {
			next = due;
		}
	}
	if (next != UINT64_MAX)
		c->rack_reo_ms = (uint32_t)((next - c->w->now) * 1000 / hz) + 1;
	return lost;
}

/* Flags of a retransmission of @len bytes at @seq: PSH again on the last queued byte. */
static uint8_t
rexmt_flags(const struct tq_tcp_conn *c, uint32_t seq, uint32_t len)
{
	return TQ_TCP_ACK | (seq + len == data_end(c) ? TQ_TCP_PSH : 0);
}

uint32_t
tq_tcp_rack_pipe(const struct tq_tcp_conn *c)
{
	const struct tq_tcp_txring *t = c->txr;
	uint32_t pipe = 0;

	/* nothing SACKed or lost: the records, contiguous from the first, are all in the pipe
	 * (the usual case, and one a walk of up to 256 records per ACK made costly) */
	if (t->nmark == 0 && t->n && c->snd_nxt == c->snd_max) {
		const struct tq_tcp_txrec *last = &t->r[(t->head + t->n - 1) % TQ_TCP_TXREC_MAX];
		uint32_t first = tq_seq_max(t->r[t->head].start, c->snd_una);

		return tq_seq_gt(last->end, first) ? last->end - first : 0;
	}
	for (unsigned int i = 0; i < t->n; i++) {
		const struct tq_tcp_txrec *r = &t->r[(t->head + i) % TQ_TCP_TXREC_MAX];
		uint32_t start = tq_seq_max(r->start, c->snd_una);

		if (tq_seq_ge(start, c->snd_nxt))
			break; /* after a timeout, what was not sent again yet */
		if (!(r->flags & (TQ_TCP_TXREC_SACKED | TQ_TCP_TXREC_LOST)) &&
		    tq_seq_lt(start, r->end))
			pipe += r->end - start;
	}
	return pipe;
}

unsigned int
tq_tcp_rack_retransmit(struct tq_tcp_conn *c, unsigned int min_segs)
{
	struct tq_tcp_txring *t = c->txr;
	unsigned int sent = 0;
	uint32_t pipe;

	if (!t)
		return 0;
	pipe = tq_tcp_rack_pipe(c);
	for (unsigned int i = 0; i < t->n; i++) {
		struct tq_tcp_txrec *r = REC(t, i);
		uint32_t start = tq_seq_max(r->start, c->snd_una), len;

		if (!(r->flags & TQ_TCP_TXREC_LOST))
			continue;
		if (tq_seq_ge(start, c->snd_nxt))
			break; /* going back after a timeout: tq_tcp_output's job */
		if (sent >= min_segs && pipe >= c->cwnd)
			break;
		len = r->end - start;
		len = RTE_MIN(len, c->sq_bytes - (start - c->snd_una));
		if (len == 0 || send_segment(c, rexmt_flags(c, start, len), start,
					     start - c->snd_una, len))
			break;
		c->w->ctr[TQ_CTR_tcp_retransmits]++;
		c->w->ctr[TQ_CTR_tcp_rack_retransmits]++;
		pipe += len;
		sent++;
	}
	if (sent) {
		c->rtt_timing = false; /* Karn */
		/* a lost retransmission with nothing sent after it would wait for the RTO:
		 * one more tail loss probe may go after it (each round needs a delivery) */
		c->tlp_done = false;
	}
	return sent;
}

bool
tq_tcp_rack_lost_pending(const struct tq_tcp_conn *c)
{
	const struct tq_tcp_txring *t = c->txr;

	for (unsigned int i = 0; t && t->nmark && i < t->n; i++)
		if (t->r[(t->head + i) % TQ_TCP_TXREC_MAX].flags & TQ_TCP_TXREC_LOST)
			return true;
	return false;
}

bool
tq_tcp_rack_probe(struct tq_tcp_conn *c)
{
	struct tq_tcp_txring *t = c->txr;
	int lost = -1;

	/* a segment marked lost and not yet resent (cwnd was full) is the better probe */
	for (unsigned int i = 0; t && i < t->n && lost < 0; i++)
		if (REC(t, i)->flags & TQ_TCP_TXREC_LOST)
			lost = (int)i;
	for (int i = lost >= 0 ? lost : t ? t->n - 1 : -1; i >= 0; i--) {
		struct tq_tcp_txrec *r = REC(t, i);
		uint32_t start = tq_seq_max(r->start, c->snd_una), len;

		if (r->flags & TQ_TCP_TXREC_SACKED || tq_seq_ge(start, c->snd_nxt))
			continue;
		len = RTE_MIN(r->end - start, c->sq_bytes - (start - c->snd_una));
		if (len == 0)
			return false;
		c->rtt_timing = false; /* Karn */
		c->w->ctr[TQ_CTR_tcp_retransmits]++;
		return send_segment(c, rexmt_flags(c, start, len), start, start - c->snd_una,
				    len) == 0;
	}
	return false;
}

void
tq_tcp_rack_rto(struct tq_tcp_conn *c)
{
	struct tq_tcp_txring *t = c->txr;

	for (unsigned int i = 0; t && i < t->n; i++) {
		struct tq_tcp_txrec *r = REC(t, i);

		/* after a second timeout the scoreboard is gone (reneging?): SACKed too */
		if (!(r->flags & TQ_TCP_TXREC_SACKED) || c->sb_n == 0)
			tq_tcp_txrec_set(t, r, (r->flags & TQ_TCP_TXREC_RETRANS) |
						       TQ_TCP_TXREC_LOST);
	}
}
