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
	if (c->sack_ok && c->ooo_n && (flags & TQ_TCP_ACK) && !(flags & TQ_TCP_SYN)) {
		/* RFC 2018 4: first the block holding the segment that arrived last (MUST),
		 * then the others, highest first (usually the most recently changed). */
		unsigned int room = tq_tcp_sack_room(o), n = 0;
		bool first = false;

		for (int i = c->ooo_n - 1; i >= 0 && !first; i--) {
			struct tq_tcp_sack_block b = ooo_block(c, &i);

			if (tq_seq_ge(c->ooo_last, b.start) && tq_seq_lt(c->ooo_last, b.end)) {
				o->sack[n++] = b;
				first = true;
			}
		}
		for (int i = c->ooo_n - 1; i >= 0 && n < room; i--) {
			struct tq_tcp_sack_block b = ooo_block(c, &i);

			if (!first || b.start != o->sack[0].start)
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
		if (c->delack_pending) {
			c->delack_pending = false;
			tq_tcp_timer_clear(c, TQ_TCP_T_DELACK);
		}
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
		uint32_t room = c->sb_n ? skip_sacked(c) : UINT32_MAX;
		/* the peer's window bounds the sequence span; cwnd bounds what is in the network */
		uint32_t inflight = c->snd_nxt - c->snd_una;
		uint32_t pipe = inflight - (c->sb_n ? sacked_below(c, c->snd_nxt) : 0);
		uint32_t win = c->snd_wnd;
		uint32_t off = inflight, unsent, len;
		uint8_t fl = TQ_TCP_ACK;

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
		/* Sender SWS avoidance: no runt segment while data is in flight and more waits. */
		if (len < c->snd_mss && len < unsent && inflight > 0)
			break;
		if (len == unsent && c->fin_queued)
			fl |= TQ_TCP_FIN;
		if (len == unsent)
			fl |= TQ_TCP_PSH;
		if (send_segment(c, fl, c->snd_nxt, off, len)) {
			failed = true;
			break;
		}
		if (tq_seq_lt(c->snd_nxt, c->snd_max))
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
		if (!c->timers[TQ_TCP_T_REXMT])
			tq_tcp_rexmt_arm(c);
		return;
	}
	if (flags & TQ_TCP_SEND_ACK || c->ack_now)
		send_segment(c, TQ_TCP_ACK, c->snd_nxt, 0, 0);
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
	c->rtt_timing = false;
	send_segment(c, fl, seq, seq - c->snd_una, len);
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
