/*
 * MQTT over tachyon's TCP: the connection's receive chain, framing, control packets out,
 * keep alive and the ways a connection ends. Runs on the worker owning the connection.
 *
 * Receive: TCP hands over mbuf chains; they are linked onto c->rx and packets are framed
 * across them. A packet inside one mbuf is decoded where it lies; one split across mbufs
 * is copied into the worker's scratch buffer first. PUBLISH payloads are never copied:
 * the message takes indirect mbufs over the received ones (tq_mbuf_slice). Received bytes
 * go back to TCP's window as soon as they are read, so a connection holds at most one
 * unfinished packet (<= max_packet_size) — except while its session is being fetched
 * from another worker or TCP has not taken our control packets: then nothing is read or
 * released and the window closes (back-pressure instead of memory).
 *
 * Send: control packets and deliveries (tq_mqtt_session.c) join one pending chain per
 * connection, in the order they are made; small ones are copied into the free end of its last
 * mbuf, large payloads are linked by reference. The chain goes to TCP once per loop iteration
 * (tq_mqtt_conns_flush, critical connections first), at once past TQ_MQTT_OUT_FLUSH bytes,
 * and before a close; so many small messages to one subscriber become full segments instead
 * of one segment each. What TCP does not take stays pending until on_writable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tq_mqtt_int.h"

#define CTL_BACKLOG_MAX (64 * 1024) /* output bytes waiting for TCP before we stop reading */

static void
dirty_unlink(struct tq_mqtt_conn *c)
{
	struct tq_mqtt_worker *wk = c->w->mqtt;

	if (c->dirty_prev)
		c->dirty_prev->dirty_next = c->dirty_next;
	else
		wk->dirty_head[c->dirty_cls] = c->dirty_next;
	if (c->dirty_next)
		c->dirty_next->dirty_prev = c->dirty_prev;
	else
		wk->dirty_tail[c->dirty_cls] = c->dirty_prev;
	c->dirty_prev = c->dirty_next = NULL;
	c->dirty = false;
}

/* List @c for the end of the iteration, behind the connections of its class. */
static void
dirty_add(struct tq_mqtt_conn *c)
{
	struct tq_mqtt_worker *wk = c->w->mqtt;
	uint8_t cls = c->w->prio_conns ? tq_tcp_prio(c->tcp) : TQ_PRIO_NORMAL;

	if (c->dirty)
		return;
	if (cls >= TQ_PRIO_CLASSES)
		cls = TQ_PRIO_NORMAL;
	c->dirty = true;
	c->dirty_cls = cls;
	c->dirty_gen = wk->flush_gen;
	c->dirty_next = NULL;
	c->dirty_prev = wk->dirty_tail[cls];
	if (c->dirty_prev)
		c->dirty_prev->dirty_next = c;
	else
		wk->dirty_head[cls] = c;
	wk->dirty_tail[cls] = c;
}

/*
 * The pending chain to TCP, whole (TCP takes a chain or nothing). Refused for room: it stays,
 * and on_writable comes back for it; the connection is going away: it is freed.
 */
void
tq_mqtt_out_flush(struct tq_mqtt_conn *c)
{
	uint32_t len = c->ctl_len;
	int rc;

	if (!c->ctl)
		return;
	rc = tq_tcp_send(c->tcp, c->ctl);
	if (rc == -ENOBUFS) {
		tq_tcp_want_writable(c->tcp);
		return;
	}
	if (rc == 0 && unlikely(c->w->prio_conns))
		tq_prio_tx_count(c->w, tq_tcp_prio(c->tcp), len);
	if (rc != 0) /* -EPIPE, -ENOTCONN: nothing will be sent */
		tq_tcp_chain_free(c->ctl);
	c->ctl = c->ctl_tail = NULL;
	c->ctl_len = 0;
}

/* Link @m (one packet's bytes or part of them) after the pending chain: O(1). */
void
tq_mqtt_out_chain(struct tq_mqtt_conn *c, struct rte_mbuf *m)
{
	tq_mbuf_out_chain(&c->ctl, &c->ctl_tail, &c->ctl_len, m);
}

/*
 * Small packets share mbufs (tq_mbuf_out_bytes): one mbuf per small PUBLISH (two with the
 * payload clone) filled a send queue of 256 KiB with thousands of mbufs per subscriber;
 * now a segment's worth of small deliveries is one or two mbufs.
 */
int
tq_mqtt_out_bytes(struct tq_mqtt_conn *c, const void *buf, uint32_t len)
{
	if (tq_mbuf_out_bytes(c->w->pool, &c->ctl, &c->ctl_tail, &c->ctl_len, buf, len) < 0) {
		tq_worker_count(c->w, TQ_CTR_mbuf_alloc_failed);
		return -ENOMEM; /* nothing queued */
	}
	return 0;
}

void
tq_mqtt_out_done(struct tq_mqtt_conn *c)
{
	if (c->ctl_len >= TQ_MQTT_OUT_FLUSH)
		tq_mqtt_out_flush(c); /* stays listed: a flush of nothing costs a test */
	if (c->ctl || c->pump_retry)
		dirty_add(c);
}

unsigned int
tq_mqtt_conns_flush(struct tq_worker *w)
{
	struct tq_mqtt_worker *wk = w->mqtt;
	unsigned int n = 0;
	uint64_t round;

	if (!wk)
		return 0;
	/* connections listed again meanwhile (a retry, a resumed reader) wait for the next */
	round = wk->flush_gen++;
	for (unsigned int o = 0; o < TQ_PRIO_CLASSES; o++) {
		uint8_t cls = tq_prio_order[o];
		struct tq_mqtt_conn *c;

		while ((c = wk->dirty_head[cls]) && c->dirty_gen <= round) {
			dirty_unlink(c);
			tq_mqtt_out_flush(c);
			n++;
			if (c->ctl || tq_dp.stop)
				continue;
			if (c->pump_retry) { /* mbufs may be back */
				c->pump_retry = false;
				if (c->sess && c->state == CS_ACTIVE)
					tq_mqtt_sess_pump(w, c->sess);
			}
			if (c->unreleased && !c->throttled) /* reading waited for the backlog */
				tq_mqtt_conn_resume_rx(c);
		}
	}
	return n;
}

int
tq_mqtt_send_pkt(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_worker *wk = c->w->mqtt;
	ssize_t len;
	int rc;

	len = tq_mqtt_encode(wk->scratch, tq_mqtt.conf.max_packet_size + 16, c->level, pkt);
	if (len < 0)
		return (int)len;
	rc = tq_mqtt_out_bytes(c, wk->scratch, (uint32_t)len);
	if (rc < 0)
		return rc;
	tq_mqtt_out_done(c);
	return 0;
}

static void
rx_release(struct tq_mqtt_conn *c)
{
	if (c->unreleased && (c->state == CS_NEW || c->state == CS_ACTIVE || c->state == CS_AUTH) &&
	    !c->throttled &&
	    c->ctl_len < CTL_BACKLOG_MAX) {
		tq_tcp_rx_release(c->tcp, c->unreleased);
		c->unreleased = 0;
	}
}

/* Drop the first @n bytes of the receive chain. */
static void
rx_consume(struct tq_mqtt_conn *c, uint32_t n)
{
	c->rx_len -= n;
	while (n && c->rx) {
		struct rte_mbuf *m = c->rx;

		if (m->data_len <= n) {
			n -= m->data_len;
			c->rx = m->next;
			m->next = NULL;
			m->nb_segs = 1;
			m->pkt_len = m->data_len;
			rte_pktmbuf_free(m);
		} else {
			m->data_off = (uint16_t)(m->data_off + n);
			m->data_len = (uint16_t)(m->data_len - n);
			n = 0;
		}
	}
	if (!c->rx)
		c->rx_tail = NULL;
}

static void
conn_free_rx(struct tq_mqtt_conn *c)
{
	while (c->rx) {
		struct rte_mbuf *m = c->rx;

		c->rx = m->next;
		m->next = NULL;
		m->nb_segs = 1;
		m->pkt_len = m->data_len;
		rte_pktmbuf_free(m);
	}
	c->rx_tail = NULL;
	c->rx_len = 0;
}

static void
count_error(struct tq_mqtt_conn *c, int err)
{
	unsigned int e = (unsigned int)(err < 0 ? -err : err);

	tq_worker_count(c->w, TQ_CTR_mqtt_protocol_errors);
	if (e < TQ_MQTT_E_COUNT)
		c->w->mqtt->errors[e]++;
}

void
tq_mqtt_violation(struct tq_mqtt_conn *c, int err)
{
	count_error(c, err);
	tq_mqtt_conn_kill(c, tq_mqtt_err_reason(err), true);
}

/* A malformed or illegal packet: v5 gets DISCONNECT with the reason (after CONNACK). */
static void
protocol_error(struct tq_mqtt_conn *c, int err)
{
	if (c->state != CS_NEW) {
		tq_mqtt_violation(c, err);
		return;
	}
	count_error(c, err);
	{ /* a bad CONNECT: CONNACK with a code where there is one */
		tq_worker_count(c->w, TQ_CTR_mqtt_connects_refused);
		struct tq_mqtt_pkt ack = {.type = TQ_MQTT_CONNACK};
		uint8_t v3 = tq_mqtt_err_v3_connack(err);

		if (c->level == TQ_MQTT_LEVEL_5) {
			ack.connack.reason = tq_mqtt_err_reason(err);
			tq_mqtt_send_pkt(c, &ack);
		} else if (v3) { /* a level we do not speak is told in 3.1.1's words */
			if (!c->level)
				c->level = TQ_MQTT_LEVEL_311;
			ack.connack.reason = v3;
			tq_mqtt_send_pkt(c, &ack);
		}
		c->state = CS_CLOSING;
		tq_mqtt_out_flush(c); /* before the FIN */
		tq_tcp_close(c->tcp);
	}
}

void
tq_mqtt_conn_resume_rx(struct tq_mqtt_conn *c)
{
	struct tq_mqtt_worker *wk = c->w->mqtt;

	while ((c->state == CS_NEW || c->state == CS_ACTIVE || c->state == CS_AUTH) && c->rx_len &&
	       !c->throttled &&
	       c->ctl_len < CTL_BACKLOG_MAX) {
		struct tq_mqtt_fixed fx;
		struct tq_mqtt_pkt pkt;
		uint8_t hdr[TQ_MQTT_FIXED_HDR_MAX];
		uint32_t n = RTE_MIN(c->rx_len, (uint32_t)sizeof(hdr));
		const uint8_t *base;
		uint64_t total;
		int rc;

		tq_mbuf_copy_out(c->rx, 0, n, hdr);
		rc = tq_mqtt_frame(hdr, n, tq_mqtt.conf.max_packet_size, &fx);
		if (rc < 0) {
			protocol_error(c, rc);
			break;
		}
		if (!fx.hdr_len)
			break; /* the length is not all here yet */
		total = (uint64_t)fx.hdr_len + fx.remaining_len;
		if ((c->state == CS_NEW && fx.type != TQ_MQTT_CONNECT) ||
		    (c->state == CS_AUTH && fx.type != TQ_MQTT_AUTH)) {
			protocol_error(c, -TQ_MQTT_E_PROTOCOL);
			break;
		}
		if (total > c->rx_len)
			break;
		if (c->rx->data_len >= total) {
			base = rte_pktmbuf_mtod(c->rx, const uint8_t *);
		} else {
			tq_mbuf_copy_out(c->rx, 0, (uint32_t)total, wk->scratch);
			base = wk->scratch;
		}
		rc = tq_mqtt_decode(base, (size_t)total, c->level, &pkt);
		if (rc <= 0) {
			if (c->state == CS_NEW)
				c->level = pkt.level; /* for the CONNACK's encoding; 0: unknown */
			protocol_error(c, rc ? rc : -TQ_MQTT_E_PROTOCOL);
			break;
		}
		c->pkt_raw = base;
		c->pkt_raw_len = (uint32_t)total;
		rc = tq_mqtt_handle(c, &pkt, base, 0);
		if (rc < 0 || rc == 2) /* closing, or to be read again later */
			break;
		rx_consume(c, (uint32_t)total);
		if (rc > 0)
			break; /* CS_WAIT_SESSION: the rest waits for the session */
	}
	rx_release(c);
}

static int
mqtt_connected(struct tq_tcp_conn *t)
{
	struct tq_mqtt_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->tcp = t;
	c->w = tq_tcp_worker(t);
	c->last_rx_ms = tq_msg_now_ms();
	c->keepalive_s = 10; /* until CONNECT: a connection that says nothing is dropped */
	c->all_next = c->w->mqtt->conns;
	if (c->all_next)
		c->all_next->all_prev = c;
	c->w->mqtt->conns = c;
	tq_tcp_set_user(t, c);
	tq_mqtt_conn_keepalive_arm(c);
	return 0;
}

static void
mqtt_data(struct tq_tcp_conn *t, struct rte_mbuf *m)
{
	struct tq_mqtt_conn *c = tq_tcp_user(t);
	uint32_t len = rte_pktmbuf_pkt_len(m);

	c->unreleased += len;
	if (c->state == CS_CLOSING) {
		rte_pktmbuf_free(m);
		tq_tcp_rx_release(t, c->unreleased);
		c->unreleased = 0;
		return;
	}
	c->last_rx_ms = tq_msg_now_ms();
	if (c->rx_tail)
		c->rx_tail->next = m;
	else
		c->rx = m;
	c->rx_tail = rte_pktmbuf_lastseg(m);
	c->rx_len += len;
	tq_mqtt_conn_resume_rx(c);
}

static void
mqtt_writable(struct tq_tcp_conn *t)
{
	struct tq_mqtt_conn *c = tq_tcp_user(t);

	tq_mqtt_out_flush(c);
	if (c->ctl)
		return;
	if (c->sess && c->state == CS_ACTIVE)
		tq_mqtt_sess_pump(c->w, c->sess);
	tq_mqtt_conn_resume_rx(c); /* reading stopped while control packets waited */
}

static void
mqtt_peer_closed(struct tq_tcp_conn *t)
{
	struct tq_mqtt_conn *c = tq_tcp_user(t);

	tq_mqtt_conn_kill(c, 0, true); /* no DISCONNECT came first: the will goes out */
}

static void
conn_free(struct tq_mqtt_conn *c)
{
	struct tq_mqtt_worker *wk = c->w->mqtt;

	if (c->all_prev)
		c->all_prev->all_next = c->all_next;
	else
		wk->conns = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;
	if (c->throttled)
		for (struct tq_mqtt_conn **pp = &wk->throttled; *pp; pp = &(*pp)->thr_next)
			if (*pp == c) {
				*pp = c->thr_next;
				break;
			}
	tq_mqtt_auth_conn_free(c);
	if (c->req) {
		tq_msg_unref(c->req->will);
		free(c->req->client_id);
		free(c->req);
	}
	tq_timer_stop(&wk->wheel, c->ka_timer);
	conn_free_rx(c);
	if (c->dirty)
		dirty_unlink(c);
	tq_tcp_chain_free(c->ctl);
	if (c->aliases) {
		for (uint32_t i = 0; i <= c->alias_max; i++)
			free(c->aliases[i].topic);
		free(c->aliases);
	}
	for (uint16_t i = 0; i < c->out_alias_n; i++)
		free(c->out_alias[i].topic);
	free(c->out_alias);
	tq_tcp_set_user(c->tcp, NULL);
	free(c);
}

void
tq_mqtt_conns_free(struct tq_worker *w)
{
	while (w->mqtt->conns) {
		struct tq_mqtt_conn *c = w->mqtt->conns;

		if (c->sess) {
			c->sess->conn = NULL;
			c->sess = NULL;
		}
		conn_free(c);
	}
	w->mqtt->waiting = NULL;
	w->mqtt->auth_wait = NULL;
}

static void
mqtt_closed(struct tq_tcp_conn *t, int err)
{
	struct tq_mqtt_conn *c = tq_tcp_user(t);
	struct tq_mqtt_worker *wk;

	(void)err;
	if (!c)
		return;
	wk = c->w->mqtt;
	if (c->state != CS_CLOSING)
		tq_worker_count(c->w, TQ_CTR_mqtt_conns_lost);
	if (c->sess) {
		tq_mqtt_sess_detach(c->w, c->sess, c->state != CS_CLOSING || c->lost);
		c->sess = NULL;
		wk->connected--;
	}
	if (c->state == CS_WAIT_SESSION) { /* leave the waiting list; the session stays put */
		for (struct tq_mqtt_conn **pp = &wk->waiting; *pp; pp = &(*pp)->wait_next)
			if (*pp == c) {
				*pp = c->wait_next;
				break;
			}
	}
	conn_free(c);
}

void
tq_mqtt_conn_kill(struct tq_mqtt_conn *c, uint8_t reason, bool lost)
{
	if (c->state == CS_CLOSING)
		return;
	if (lost)
		tq_worker_count(c->w, TQ_CTR_mqtt_conns_lost);
	if (c->level == TQ_MQTT_LEVEL_5 && reason && c->state == CS_ACTIVE) {
		struct tq_mqtt_pkt d = {.type = TQ_MQTT_DISCONNECT};

		d.disconnect.reason = reason;
		tq_mqtt_send_pkt(c, &d);
	}
	if (c->sess) {
		tq_mqtt_sess_detach(c->w, c->sess, lost);
		c->sess = NULL;
		c->w->mqtt->connected--;
	}
	c->lost = lost;
	c->state = CS_CLOSING;
	conn_free_rx(c);
	if (c->unreleased) {
		tq_tcp_rx_release(c->tcp, c->unreleased);
		c->unreleased = 0;
	}
	tq_mqtt_out_flush(c); /* what is pending goes before the FIN */
	tq_tcp_close(c->tcp);
}

void
tq_mqtt_conn_keepalive_arm(struct tq_mqtt_conn *c)
{
	struct tq_mqtt_worker *wk = c->w->mqtt;
	uint64_t ticks;

	tq_timer_stop(&wk->wheel, c->ka_timer);
	c->ka_timer = 0;
	if (!c->keepalive_s)
		return;
	ticks = tq_mqtt_ticks(c->keepalive_s) * 3 / 2; /* 1.5 x keep alive (3.1.2.10) */
	c->ka_timer = tq_timer_start(&wk->wheel, (uintptr_t)c | TQ_MQTT_T_KEEPALIVE, ticks + 1);
}

/* The keep-alive timer: lazily re-armed from the time of the last byte received. */
void
tq_mqtt_keepalive_fired(struct tq_worker *w, struct tq_mqtt_conn *c)
{
	uint64_t limit_ms = (uint64_t)c->keepalive_s * 1500;
	uint64_t idle = tq_msg_now_ms() - c->last_rx_ms;

	c->ka_timer = 0;
	if (c->state == CS_CLOSING)
		return;
	if (idle >= limit_ms) {
		tq_worker_count(w, TQ_CTR_mqtt_keepalive_timeouts);
		tq_mqtt_conn_kill(c, 0x8D, true); /* Keep Alive timeout */
		return;
	}
	c->ka_timer = tq_timer_start(&w->mqtt->wheel, (uintptr_t)c | TQ_MQTT_T_KEEPALIVE,
				     (limit_ms - idle) / 100 + 1);
}

/* tachyonctl close_connection: v5 DISCONNECT 0x98 (administrative action); the will goes. */
static void
mqtt_kill(struct tq_tcp_conn *t, const char *why)
{
	struct tq_mqtt_conn *c = tq_tcp_user(t);

	(void)why;
	if (!c) {
		tq_tcp_abort(t);
		return;
	}
	tq_mqtt_conn_kill(c, 0x98, true);
}

const struct tq_tcp_app tq_mqtt_app = {
	.on_connected = mqtt_connected,
	.on_data = mqtt_data,
	.on_writable = mqtt_writable,
	.on_peer_closed = mqtt_peer_closed,
	.on_closed = mqtt_closed,
	.on_kill = mqtt_kill,
};

void
tq_mqtt_throttle_tick(struct tq_worker *w)
{
	struct tq_mqtt_conn *c = w->mqtt->throttled;

	w->mqtt->throttled = NULL;
	while (c) {
		struct tq_mqtt_conn *next = c->thr_next;

		c->throttled = false;
		c->thr_next = NULL;
		tq_mqtt_conn_resume_rx(c); /* may throttle it again */
		c = next;
	}
}
