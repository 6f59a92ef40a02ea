/*
 * The load generator's workload, independent of the transport: MQTT clients over byte
 * buffers, encoded and decoded with proto/mqtt's codec; an open-loop publish schedule;
 * sequence checks, counts and the latency histogram; the report. See tq_loadgen.h.
 *
 * Shapes: with as many publishers as subscribers (more than one each), publisher i and
 * subscriber i share topic PREFIX/i (pairs, each message to one subscriber); otherwise every
 * publisher publishes to PREFIX/0 and every subscriber subscribes to it (1→1, fan-in N→1,
 * fan-out 1→N: each message to every subscriber). With --shared every publisher publishes to
 * PREFIX/0 and the subscribers are one shared-subscription group ($share/g/PREFIX/0): each
 * message goes to one of them (shared fan-in N→M; no per-subscriber order check).
 *
 * Latency: each PUBLISH carries the TSC of its *scheduled* send time, so when the broker (or
 * the load generator) falls behind, the wait counts (no coordinated omission). At --rate 0
 * (as fast as the window allows) there is no schedule: the stamp is the time it was written.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <x86intrin.h>

#include "proto/mqtt/tq_mqtt_codec.h"
#include "tq_loadgen.h"

#define LG_PUB_TX_CAP (64 * 1024)
#define LG_SUB_TX_CAP (16 * 1024)
#define LG_RX_CAP (64 * 1024 + 16)   /* one packet (payload <= 60000) plus its header */
#define LG_PUB_BURST 64              /* PUBLISHes per publisher per loop at most */
#define LG_CONNECT_TIMEOUT_S 30

static inline void
put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline uint64_t
get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline uint32_t
get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* ---- buffers ---- */

void
lg_mark_dirty(struct lg_conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->lg->dirty[c->lg->ndirty++] = c->id;
	}
}

/* Room for @n more bytes at the end of @c's tx buffer, or NULL (the caller waits). */
uint8_t *
lg_tx_reserve(struct lg_conn *c, uint32_t n)
{
	if (c->tx_off == c->tx_len)
		c->tx_off = c->tx_len = 0;
	if (c->tx_cap - c->tx_len < n && c->tx_off > 0) {
		memmove(c->tx, c->tx + c->tx_off, c->tx_len - c->tx_off);
		c->tx_len -= c->tx_off;
		c->tx_off = 0;
	}
	return c->tx_cap - c->tx_len >= n ? c->tx + c->tx_len : NULL;
}

void
lg_conn_sent(struct lg_conn *c, uint32_t n)
{
	c->tx_off += n;
	if (c->tx_off == c->tx_len)
		c->tx_off = c->tx_len = 0;
}

/* Encode @pkt at the end of @c's tx buffer. Control packets never wait: no room is an
 * error (the buffers are far larger than any control packet we send between flushes). */
static int
queue_pkt(struct lg_conn *c, const struct tq_mqtt_pkt *pkt)
{
	ssize_t n = tq_mqtt_encode_len(c->lg->o.level, pkt);
	uint8_t *p;

	if (n < 0 || !(p = lg_tx_reserve(c, (uint32_t)n)))
		return -ENOSPC;
	n = tq_mqtt_encode(p, (size_t)n, c->lg->o.level, pkt);
	if (n < 0)
		return (int)n;
	c->tx_len += (uint32_t)n;
	lg_mark_dirty(c);
	return 0;
}

void
lg_conn_fail(struct lg_conn *c, uint64_t *counter, const char *why)
{
	struct lg *lg = c->lg;

	(*counter)++;
	if (!lg->o.quiet && *counter <= 3)
		fprintf(stderr, "tq_loadgen: %s %u: %s\n", lg_role_name(c), c->idx, why);
	c->abort_req = true;
}

const char *
lg_role_name(const struct lg_conn *c)
{
	return c->role == LG_PUB ? "publisher" : c->role == LG_SUB ? "subscriber" : "idle client";
}

/* ---- the MQTT client ---- */

void
lg_conn_opened(struct lg_conn *c)
{
	struct lg *lg = c->lg;
	char id[64];
	struct tq_mqtt_pkt pkt = {.type = TQ_MQTT_CONNECT};
	int n = snprintf(id, sizeof(id), "%s-%c%u", lg->o.topic_prefix,
			 c->role == LG_PUB ? 'p' : c->role == LG_SUB ? 's' : 'i', c->idx);

	if (lg->o.proto == LG_AMQP) {
		lg->nb_connecting--;
		lga_opened(c);
		return;
	}
	lg->nb_connecting--;
	pkt.connect.level = lg->o.level;
	pkt.connect.clean_start = true;
	/* none by default: a run may stall the loop for a moment (--keepalive for idle runs) */
	pkt.connect.keep_alive = lg->o.keepalive;
	pkt.connect.client_id = (struct tq_mqtt_str){(const uint8_t *)id, (uint16_t)n};
	c->state = LG_CS_CONNACK;
	if (queue_pkt(c, &pkt))
		lg_conn_fail(c, &lg->proto_errors, "CONNECT does not fit");
}

static void
on_connack(struct lg_conn *c, const struct tq_mqtt_connack *ca, uint64_t now)
{
	struct lg *lg = c->lg;
	uint16_t ka;

	if (c->state != LG_CS_CONNACK) {
		lg_conn_fail(c, &lg->proto_errors, "unexpected CONNACK");
		return;
	}
	if (ca->reason != 0) {
		lg_conn_fail(c, &lg->refused, "CONNECT refused");
		return;
	}
	/* the keep alive in force: ours, or the one the server imposes (MQTT 5) */
	ka = lg->o.keepalive;
	if (lg->o.level == TQ_MQTT_LEVEL_5 &&
	    (ca->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_SERVER_KEEP_ALIVE)) &&
	    ca->props.server_keep_alive)
		ka = ca->props.server_keep_alive;
	if (ka) {
		c->ping_every = ka > 1 ? ka / 2 : 1;
		c->next_ping = now + lg->hz * c->ping_every;
	}
	if (c->role == LG_SUB) {
		struct tq_mqtt_sub sub = {
			.filter = {(const uint8_t *)c->topic, c->topic_len},
			.qos = lg->o.qos,
		};
		struct tq_mqtt_pkt pkt = {.type = TQ_MQTT_SUBSCRIBE};

		pkt.subscribe.packet_id = 1;
		pkt.subscribe.count = 1;
		pkt.subscribe.subs = &sub;
		c->state = LG_CS_SUBACK;
		if (queue_pkt(c, &pkt))
			lg_conn_fail(c, &lg->proto_errors, "SUBSCRIBE does not fit");
	} else {
		lg_conn_ready(c);
	}
}

void
lg_conn_ready(struct lg_conn *c)
{
	c->state = LG_CS_READY;
	c->lg->nb_ready++;
}

static void
on_suback(struct lg_conn *c, const struct tq_mqtt_suback *sa)
{
	struct lg *lg = c->lg;

	if (c->state != LG_CS_SUBACK || sa->packet_id != 1 || sa->count != 1) {
		lg_conn_fail(c, &lg->proto_errors, "unexpected SUBACK");
		return;
	}
	if (sa->codes[0] != lg->o.qos) {
		lg_conn_fail(c, &lg->refused, "subscription refused or downgraded");
		return;
	}
	lg_conn_ready(c);
}

static void
on_publish(struct lg_conn *c, const struct tq_mqtt_publish *p, uint64_t now)
{
	struct lg *lg = c->lg;

	if (c->role != LG_SUB || c->state < LG_CS_READY) {
		lg_conn_fail(c, &lg->proto_errors, "unexpected PUBLISH");
		return;
	}
	if (p->qos != lg->o.qos || p->payload_len != lg->o.size) {
		lg->bad_payload++;
		return;
	}
	if (get32(p->payload + 8) >= lg->o.pubs) {
		lg->bad_payload++;
		return;
	}
	if (p->qos == 1) {
		struct tq_mqtt_ack ack = {.packet_id = p->packet_id};
		uint8_t *b = lg_tx_reserve(c, 8);
		ssize_t n;

		if (!b || (n = tq_mqtt_encode_ack(b, 8, lg->o.level, TQ_MQTT_PUBACK, &ack)) < 0) {
			lg_conn_fail(c, &lg->proto_errors, "PUBACK does not fit");
			return;
		}
		c->tx_len += (uint32_t)n;
		lg_mark_dirty(c);
	}
	lg_count_rx(c, p->payload, now);
}

void
lg_count_rx(struct lg_conn *c, const uint8_t *payload, uint64_t now)
{
	struct lg *lg = c->lg;
	uint64_t sched = get64(payload), seq = get64(payload + 12);
	uint32_t from = get32(payload + 8);

	if (from >= lg->o.pubs) {
		lg->bad_payload++;
		return;
	}
	lg->received++;
	if (!lg->seq_check) {
		/* competing consumers: each sees a part of every publisher's sequence */
	} else if (seq == c->expect[from]) {
		c->expect[from] = seq + 1;
	} else if (seq < c->expect[from]) {
		lg->dups++; /* again (DUP) or out of order: the gap counted it already */
		lg->reorders++;
	} else {
		lg->gaps += seq - c->expect[from]; /* QoS 0: lost (dropped by the broker) */
		c->expect[from] = seq + 1;
	}
	lg->t_last_rx = now;
	if (now >= lg->t_measure && now < lg->t_end)
		lg->rx_win++;
	if (sched >= lg->t_measure && sched < lg->t_end)
		hist_add(&lg->lat, now > sched ? now - sched : 0);
}

static void
on_puback(struct lg_conn *c, const struct tq_mqtt_ack *a)
{
	struct lg *lg = c->lg;
	uint64_t bit = UINT64_C(1) << (a->packet_id & 63);
	uint64_t *w = &c->pid_out[a->packet_id >> 6];

	if (c->role != LG_PUB || !c->pid_out || !(*w & bit)) {
		lg->bad_acks++;
		return;
	}
	*w &= ~bit;
	c->inflight--;
	lg->acked++;
}

static void
handle_pkt(struct lg_conn *c, const struct tq_mqtt_pkt *pkt, uint64_t now)
{
	switch (pkt->type) {
	case TQ_MQTT_PUBLISH:
		on_publish(c, &pkt->publish, now);
		break;
	case TQ_MQTT_PUBACK:
		on_puback(c, &pkt->ack);
		break;
	case TQ_MQTT_CONNACK:
		on_connack(c, &pkt->connack, now);
		break;
	case TQ_MQTT_SUBACK:
		on_suback(c, &pkt->suback);
		break;
	case TQ_MQTT_PINGRESP:
		break;
	case TQ_MQTT_DISCONNECT:
		lg_conn_fail(c, &c->lg->conn_errors, "DISCONNECT from the broker");
		break;
	default:
		lg_conn_fail(c, &c->lg->proto_errors, "unexpected packet type");
		break;
	}
}

/* Decode every whole packet in [p, p + n); returns the bytes consumed, or -1. */
static ssize_t
decode_all(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
	size_t off = 0;

	while (off < n && !c->abort_req) {
		struct tq_mqtt_pkt pkt;
		int r = tq_mqtt_decode(p + off, n - off, c->lg->o.level, &pkt);

		if (r == TQ_MQTT_NEED_MORE)
			break;
		if (r < 0) {
			if (!c->lg->o.quiet)
				fprintf(stderr, "tq_loadgen: undecodable packet: %s\n", tq_mqtt_err_name(r));
			lg_conn_fail(c, &c->lg->proto_errors, "undecodable packet");
			return -1;
		}
		handle_pkt(c, &pkt, now);
		off += (size_t)r;
	}
	return (ssize_t)off;
}

void
lg_conn_input(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
	if (c->lg->o.proto == LG_AMQP) {
		lga_input(c, p, n, now);
		return;
	}
	/* A packet split across reads: complete it in the rx buffer, then decode in place. */
	while (c->rx_len > 0 && n > 0 && !c->abort_req) {
		struct tq_mqtt_fixed f;
		int r = tq_mqtt_frame(c->rx, c->rx_len, 0, &f);
		size_t want, take;

		if (r < 0) {
			lg_conn_fail(c, &c->lg->proto_errors, "bad fixed header");
			return;
		}
		want = f.hdr_len ? f.hdr_len + f.remaining_len - c->rx_len : 1;
		if (c->rx_len + want > c->rx_cap) {
			lg_conn_fail(c, &c->lg->proto_errors, "packet larger than the rx buffer");
			return;
		}
		take = want < n ? want : n;
		memcpy(c->rx + c->rx_len, p, take);
		c->rx_len += (uint32_t)take;
		p += take;
		n -= take;
		if (f.hdr_len && take == want) {
			if (decode_all(c, c->rx, c->rx_len, now) < 0)
				return;
			c->rx_len = 0;
		}
	}
	if (n > 0 && !c->abort_req) {
		ssize_t used = decode_all(c, p, n, now);

		if (used < 0)
			return;
		if ((size_t)used < n) {
			if (n - (size_t)used > c->rx_cap) {
				lg_conn_fail(c, &c->lg->proto_errors, "packet larger than the rx buffer");
				return;
			}
			memcpy(c->rx, p + used, n - (size_t)used);
			c->rx_len = (uint32_t)(n - (size_t)used);
		}
	}
}

void
lg_conn_closed(struct lg_conn *c, int err)
{
	struct lg *lg = c->lg;

	if (c->state == LG_CS_TCP)
		lg->nb_connecting--;
	if (c->state >= LG_CS_READY && c->state != LG_CS_CLOSED && c->state != LG_CS_CLOSING)
		lg->nb_ready--;
	/* RabbitMQ resets the connection right after connection.close-ok: a clean end */
	if (c->close_ok_seen && c->state == LG_CS_CLOSING && err == -ECONNRESET)
		err = 0;
	if (err || c->state != LG_CS_CLOSING) {
		lg->conn_errors++;
		if (!lg->o.quiet && lg->conn_errors <= 3)
			fprintf(stderr, "tq_loadgen: %s %u: connection lost (%s, state %u)\n",
				lg_role_name(c), c->idx, err ? strerror(-err) : "closed by the broker",
				c->state);
	}
	c->state = LG_CS_CLOSED;
	c->tp = NULL;
	c->tx_off = c->tx_len = 0;
	lg->nb_closed++;
}

/* ---- publishing ---- */

/* One PUBLISH stamped @stamp; false when the window or the tx buffer is full. */
static bool
pub_emit(struct lg *lg, struct lg_conn *c, uint64_t stamp)
{
	struct tq_mqtt_publish pub = {
		.qos = lg->o.qos,
		.topic = {(const uint8_t *)c->topic, c->topic_len},
	};
	uint32_t need = 5 + 2 + c->topic_len + 2 + 1 + lg->o.size;
	uint8_t *b;
	ssize_t h;

	if (lg->o.proto == LG_AMQP)
		return lga_pub_emit(lg, c, stamp);
	if (lg->o.qos) {
		uint16_t pid = c->next_pid;

		if (c->inflight >= lg->o.window || (c->pid_out[pid >> 6] & (UINT64_C(1) << (pid & 63))))
			return false;
		pub.packet_id = pid;
	}
	b = lg_tx_reserve(c, need);
	if (!b)
		return false;
	h = tq_mqtt_encode_publish_header(b, need, lg->o.level, &pub, lg->o.size);
	if (h < 0) {
		lg_conn_fail(c, &lg->proto_errors, "PUBLISH header does not encode");
		return false;
	}
	memset(b + h + LG_HDR, 'x', lg->o.size - LG_HDR);
	put64(b + h, stamp);
	put32(b + h + 8, c->idx);
	put64(b + h + 12, c->seq++);
	c->tx_len += (uint32_t)h + lg->o.size;
	lg_mark_dirty(c);
	if (lg->o.qos) {
		c->pid_out[pub.packet_id >> 6] |= UINT64_C(1) << (pub.packet_id & 63);
		c->inflight++;
		c->next_pid = c->next_pid == 65535 ? 1 : c->next_pid + 1;
	}
	lg->sent++;
	lg->expected_rx += lg->fanout;
	if (lg->now >= lg->t_measure && lg->now < lg->t_end)
		lg->sent_win++; /* by when it left, not when it was due: the rate achieved */
	return true;
}

static void
pub_run(struct lg *lg, struct lg_conn *c, uint64_t now)
{
	uint64_t until = now < lg->t_end ? now : lg->t_end;

	if (lg->interval == 0) {
		for (int i = 0; i < LG_PUB_BURST && now < lg->t_end; i++)
			if (!pub_emit(lg, c, now))
				break;
		return;
	}
	for (int i = 0; i < LG_PUB_BURST && c->next_send <= until; i++) {
		if (!pub_emit(lg, c, c->next_send))
			break;
		if (now - c->next_send > lg->hz / 1000)
			lg->late++;
		c->next_send += lg->interval;
	}
}

/* ---- the run ---- */

static void
start_conn(struct lg *lg, struct lg_conn *c)
{
	int ret;

	c->state = LG_CS_TCP;
	lg->nb_connecting++;
	ret = lg->tp->connect(c);
	if (ret) {
		lg->nb_connecting--;
		c->state = LG_CS_CLOSED;
		lg->nb_closed++;
		lg->conn_errors++;
		if (!lg->o.quiet)
			fprintf(stderr, "tq_loadgen: connect: %s\n", strerror(-ret));
	}
}

static void
begin_close(struct lg *lg)
{
	struct tq_mqtt_pkt pkt = {.type = TQ_MQTT_DISCONNECT};

	for (uint32_t i = 0; i < lg->nconns; i++) {
		struct lg_conn *c = &lg->conns[i];

		if (c->state == LG_CS_CLOSED)
			continue;
		if (c->state == LG_CS_IDLE) {
			c->state = LG_CS_CLOSED;
			lg->nb_closed++;
			continue;
		}
		if (c->state == LG_CS_TCP) {
			lg->tp->abort(c);
			continue;
		}
		if (c->state >= LG_CS_READY)
			lg->nb_ready--;
		c->state = LG_CS_CLOSING;
		if (lg->o.proto == LG_AMQP ? !lga_close(c) : queue_pkt(c, &pkt) != 0)
			c->abort_req = true;
	}
	lg->phase = LG_PH_CLOSE;
	lg->t_deadline = __rdtsc() + 5 * lg->hz;
}

void
lg_step(struct lg *lg, uint64_t now)
{
	lg->now = now;
	/* aborts asked for from inside input handlers, and closes once DISCONNECT is out */
	for (uint32_t i = 0; i < lg->nconns; i++) {
		struct lg_conn *c = &lg->conns[i];

		if (c->abort_req && c->state != LG_CS_CLOSED) {
			c->abort_req = false;
			lg->tp->abort(c);
		} else if (c->state == LG_CS_CLOSING && lg_tx_pending(c) == 0 && !c->close_issued &&
			   !c->await_close_ok) {
			c->close_issued = true;
			lg->tp->close(c);
		} else if (c->next_ping && now >= c->next_ping && c->state == LG_CS_READY) {
			struct tq_mqtt_pkt ping = {.type = TQ_MQTT_PINGREQ};

			queue_pkt(c, &ping);
			c->next_ping += lg->hz * c->ping_every;
		} else if (lg->o.proto == LG_AMQP && c->unacked && lg->phase >= LG_PH_DRAIN &&
			   c->state == LG_CS_READY) {
			lga_step(c);
		}
	}
	switch (lg->phase) {
	case LG_PH_CONNECT:
		/* the first connection alone (the DPDK stack resolves the broker's MAC with it) */
		if (lg->next_conn == 0)
			start_conn(lg, &lg->conns[lg->next_conn++]);
		else if (lg->nb_ready > 0 || lg->next_conn > 1)
			while (lg->next_conn < lg->nconns && lg->nb_connecting < lg->o.max_connecting)
				start_conn(lg, &lg->conns[lg->next_conn++]);
		if (lg->nb_ready == lg->nconns) {
			/* --hold: connected and quiet for a while first (bench/callgrind.sh) */
			now += (uint64_t)(lg->o.hold * (double)lg->hz);
			lg->t_start = now;
			lg->t_measure = now + (uint64_t)(lg->o.warmup * (double)lg->hz);
			lg->t_end = lg->t_measure + (uint64_t)(lg->o.duration * (double)lg->hz);
			if (!lg->o.quiet) { /* bench/idle_conns.sh waits for this line */
				fprintf(stderr, "tq_loadgen: all %u clients ready\n", lg->nconns);
				fflush(stderr);
			}
					/* stagger the publishers across one interval */
			for (uint32_t i = 0; i < lg->o.pubs; i++)
				lg->conns[lg->o.subs + i].next_send =
					now + (lg->interval ? lg->interval * i / lg->o.pubs : 0);
			lg->phase = LG_PH_RUN;
		} else if (lg->nb_closed > 0 || now > lg->t_deadline) {
			fprintf(stderr, "tq_loadgen: only %u of %u clients ready\n", lg->nb_ready,
				lg->nconns);
			begin_close(lg);
		}
		break;
	case LG_PH_RUN:
		for (uint32_t i = 0; i < lg->o.pubs && now >= lg->t_start; i++) {
			struct lg_conn *c = &lg->conns[lg->o.subs + i];

			if (c->state == LG_CS_READY && !c->abort_req)
				pub_run(lg, c, now);
		}
		if (now >= lg->t_end) {
			for (uint32_t i = 0; lg->interval && i < lg->o.pubs; i++) {
				const struct lg_conn *c = &lg->conns[lg->o.subs + i];

				if (c->next_send < lg->t_end)
					lg->owed += (lg->t_end - c->next_send - 1) / lg->interval + 1;
			}
			lg->phase = LG_PH_DRAIN;
			lg->t_deadline = now + (uint64_t)(lg->o.drain * (double)lg->hz);
			lg->t_last_rx = now;
		} else if (lg->nb_closed > 0) {
			begin_close(lg);
		}
		break;
	case LG_PH_DRAIN: {
		bool amqp = lg->o.proto == LG_AMQP;
		bool acks = amqp ? lg->o.workload == LGA_CONFIRMS : lg->o.qos == 1;
		bool all_in = lg->received >= lg->expected_rx && (!acks || lg->acked == lg->sent);
		/* QoS 0 may lose messages: stop waiting 0.5 s after the last one (AMQP does not) */
		bool quiet = !amqp && lg->o.qos == 0 && now - lg->t_last_rx > lg->hz / 2;

		if (all_in || quiet || now > lg->t_deadline || lg->nb_closed > 0)
			begin_close(lg);
		break;
	}
	case LG_PH_CLOSE:
		if (lg->nb_closed == lg->nconns) {
			lg->phase = LG_PH_DONE;
		} else if (now > lg->t_deadline) {
			fprintf(stderr, "tq_loadgen: %u connections still open; aborting them\n",
				lg->nconns - lg->nb_closed);
			for (uint32_t i = 0; i < lg->nconns; i++)
				if (lg->conns[i].state != LG_CS_CLOSED)
					lg->tp->abort(&lg->conns[i]);
			lg->phase = LG_PH_DONE;
		}
		break;
	case LG_PH_DONE:
		break;
	}
}

int
lg_init(struct lg *lg, const struct lg_transport *tp, void *tp_ctx, uint64_t hz)
{
	const struct lg_opts *o = &lg->o;
	bool amqp = o->proto == LG_AMQP;
	bool pairs = o->pubs == o->subs && o->pubs > 1 && !(amqp && o->workload == LGA_FANOUT) &&
		     !o->shared;

	lg->tp = tp;
	lg->tp_ctx = tp_ctx;
	lg->hz = hz;
	lg->nconns = o->subs + o->pubs + o->idle;
	lg->fanout = pairs ? 1 : o->subs;
	lg->seq_check = true;
	if (amqp && o->workload != LGA_FANOUT && !pairs) {
		/* one queue: its consumers compete, each message reaches one of them */
		lg->fanout = 1;
		lg->seq_check = o->subs == 1;
	}
	if (o->shared) {
		/* one group: its members compete, each message reaches one of them */
		lg->fanout = 1;
		lg->seq_check = o->subs == 1;
	}
	lg->interval = o->rate > 0 ? (uint64_t)((double)hz * o->pubs / o->rate) : 0;
	if (o->rate > 0 && lg->interval == 0)
		lg->interval = 1;
	lg->conns = calloc(lg->nconns, sizeof(*lg->conns));
	lg->dirty = calloc(lg->nconns, sizeof(*lg->dirty));
	if (!lg->conns || !lg->dirty)
		return -ENOMEM;
	for (uint32_t i = 0; i < lg->nconns; i++) {
		struct lg_conn *c = &lg->conns[i];
		bool sub = i < o->subs;

		c->lg = lg;
		c->id = i;
		c->fd = -1;
		if (i >= o->subs + o->pubs) {
			/* CONNECT, CONNACK (maybe with properties), PINGREQ, DISCONNECT */
			c->role = LG_IDLE;
			c->idx = i - o->subs - o->pubs;
			c->rx_cap = 1024;
			c->tx_cap = 256;
			c->rx = malloc(c->rx_cap);
			c->tx = malloc(c->tx_cap);
			if (!c->rx || !c->tx)
				return -ENOMEM;
			continue;
		}
		c->role = sub ? LG_SUB : LG_PUB;
		c->idx = sub ? i : i - o->subs;
		if (!amqp && o->shared && sub)
			c->topic_len = (uint16_t)snprintf(c->topic, sizeof(c->topic), "$share/g/%s/0",
							  o->topic_prefix);
		else if (!amqp)
			c->topic_len = (uint16_t)snprintf(c->topic, sizeof(c->topic), "%s/%u",
							  o->topic_prefix, pairs ? c->idx : 0);
		else if (o->workload == LGA_FANOUT) /* each consumer's own queue; the exchange */
			c->topic_len = (uint16_t)snprintf(c->topic, sizeof(c->topic), sub ? "%s.q%u" : "%s.fan",
							  o->topic_prefix, c->idx);
		else /* the queue, reached through the default exchange */
			c->topic_len = (uint16_t)snprintf(c->topic, sizeof(c->topic), "%s.%u",
							  o->topic_prefix, pairs ? c->idx : 0);
		c->rx_cap = LG_RX_CAP;
		c->tx_cap = sub ? LG_SUB_TX_CAP : LG_PUB_TX_CAP;
		c->rx = malloc(c->rx_cap);
		c->tx = malloc(c->tx_cap);
		if (!c->rx || !c->tx)
			return -ENOMEM;
		if (sub) {
			c->expect = calloc(o->pubs, sizeof(*c->expect));
			if (!c->expect)
				return -ENOMEM;
		} else if (o->qos || (amqp && o->workload == LGA_CONFIRMS)) {
			c->pid_out = calloc(65536 / 64, sizeof(uint64_t));
			if (!c->pid_out)
				return -ENOMEM;
			c->next_pid = 1;
		}
		if (amqp && lga_conn_init(c))
			return -ENOMEM;
	}
	lg->phase = LG_PH_CONNECT;
	/* many connections take a while to open (100k idle clients: ~10 s on the 2-CPU VM) */
	lg->t_deadline = __rdtsc() + (LG_CONNECT_TIMEOUT_S + lg->nconns / 1000) * hz;
	lg->t_measure = lg->t_end = UINT64_MAX; /* nothing counts before the run */
	return 0;
}

void
lg_free(struct lg *lg)
{
	for (uint32_t i = 0; lg->conns && i < lg->nconns; i++) {
		free(lg->conns[i].rx);
		free(lg->conns[i].tx);
		free(lg->conns[i].expect);
		free(lg->conns[i].pid_out);
		free(lg->conns[i].tmpl);
	}
	free(lg->conns);
	free(lg->dirty);
	lg->conns = NULL;
	lg->dirty = NULL;
}

/* ---- report ---- */

static double
us(const struct lg *lg, uint64_t cyc)
{
	return (double)cyc * 1e6 / (double)lg->hz;
}

static const char lg_csv_header[] =
	"transport,qos,pubs,subs,size,rate_offered,secs,sent,acked,received,expected,"
	"sent_per_s,recv_per_s,p50_us,p99_us,p999_us,max_us,mean_us,lat_n,late,owed,lost,dups,"
	"conn_errors,proto_errors,refused,bad,busy_pct,ok,workload";

int
lg_report(struct lg *lg)
{
	const struct lg_opts *o = &lg->o;
	double secs = lg->t_end != UINT64_MAX ? (double)(lg->t_end - lg->t_measure) / (double)lg->hz
					      : 0;
	double sent_rate = secs > 0 ? (double)lg->sent_win / secs : 0;
	double recv_rate = secs > 0 ? (double)lg->rx_win / secs : 0;
	uint64_t errors = lg->conn_errors + lg->proto_errors + lg->refused + lg->bad_payload +
			  lg->bad_acks;
	double busy = lg->cyc_total ? 100.0 * (double)lg->cyc_busy / (double)lg->cyc_total : 0;
	uint64_t lost = lg->expected_rx > lg->received ? lg->expected_rx - lg->received : 0;
	/* --idle alone (no publisher): every client connected and none was lost */
	bool ok = errors == 0 && (lg->sent > 0 || o->pubs == 0) && lg->t_end != UINT64_MAX;

	if (o->proto == LG_AMQP) /* lossless: every message arrives; confirms: all confirmed */
		ok = ok && lg->received == lg->expected_rx && lg->dups == 0 && lg->gaps == 0 &&
		     (o->workload != LGA_CONFIRMS || lg->acked == lg->sent);
	else if (o->qos == 1)
		ok = ok && lg->acked == lg->sent && lg->received == lg->expected_rx &&
		     lg->dups == 0 && lg->gaps == 0;
	else
		ok = ok && lg->received <= lg->expected_rx;
	if (!o->quiet) {
		char offered[32] = "max";

		if (o->rate > 0)
			snprintf(offered, sizeof(offered), "%.0f", o->rate);
		if (o->proto == LG_AMQP)
			printf("tq_loadgen: %s transport, AMQP %s, %u publisher(s) -> %u consumer(s), "
			       "%u-byte payloads, offered %s msgs/s, %.2f s measured\n",
			       o->transport, lga_workload_name(o->workload), o->pubs, o->subs, o->size,
			       offered, secs);
		else
			printf("tq_loadgen: %s transport, QoS %u, %u publisher(s) -> %u subscriber(s)%s, "
			       "%u idle, %u-byte payloads, offered %s msgs/s, %.2f s measured\n",
			       o->transport, o->qos, o->pubs, o->subs,
			       o->shared ? " in one shared group" : "", o->idle, o->size, offered, secs);
		printf("  window: sent %.0f msgs/s, received %.0f msgs/s (fan-out %u)\n", sent_rate,
		       recv_rate, lg->fanout);
		printf("  latency (us, from the scheduled send): p50 %.1f p99 %.1f p99.9 %.1f max %.1f "
		       "mean %.1f (n=%" PRIu64 ")\n",
		       us(lg, hist_pct(&lg->lat, 50)), us(lg, hist_pct(&lg->lat, 99)),
		       us(lg, hist_pct(&lg->lat, 99.9)), us(lg, lg->lat.max),
		       lg->lat.n ? us(lg, lg->lat.sum / lg->lat.n) : 0.0, lg->lat.n);
		printf("  totals: sent %" PRIu64 ", acked %" PRIu64 ", received %" PRIu64
		       " of %" PRIu64 " expected (lost %" PRIu64 ", dups %" PRIu64 ", gaps %" PRIu64
		       "); open loop: late sends %" PRIu64 ", never sent %" PRIu64 "\n",
		       lg->sent, lg->acked, lg->received, lg->expected_rx, lost, lg->dups, lg->gaps,
		       lg->late, lg->owed);
		printf("  errors: connection %" PRIu64 ", protocol %" PRIu64 ", refused %" PRIu64
		       ", bad payloads %" PRIu64 ", bad acks %" PRIu64 "; loop busy %.1f%%\n",
		       lg->conn_errors, lg->proto_errors, lg->refused, lg->bad_payload, lg->bad_acks,
		       busy);
		printf("  verdict: %s\n", ok ? "counts add up" : "COUNTS DO NOT ADD UP");
	}
	if (o->csv_header)
		printf("%s\n", lg_csv_header);
	if (o->csv)
		printf("%s,%u,%u,%u,%u,%.0f,%.3f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		       ",%.0f,%.0f,%.2f,%.2f,%.2f,%.2f,%.2f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		       ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.1f,%d,%s\n",
		       o->transport, o->qos, o->pubs, o->subs, o->size, o->rate, secs, lg->sent,
		       lg->acked, lg->received, lg->expected_rx, sent_rate, recv_rate,
		       us(lg, hist_pct(&lg->lat, 50)), us(lg, hist_pct(&lg->lat, 99)),
		       us(lg, hist_pct(&lg->lat, 99.9)), us(lg, lg->lat.max),
		       lg->lat.n ? us(lg, lg->lat.sum / lg->lat.n) : 0.0, lg->lat.n, lg->late, lg->owed, lost,
		       lg->dups, lg->conn_errors, lg->proto_errors, lg->refused,
		       lg->bad_payload + lg->bad_acks, busy, ok,
		       o->proto == LG_AMQP ? lga_workload_name(o->workload) :
		       o->shared ? "mqtt_shared" : "mqtt");
	fflush(stdout);
	return ok ? 0 : 1;
}

/* ---- options ---- */

void
lg_usage(void)
{
	fprintf(stderr,
		"usage: tq_loadgen [EAL options] -- [--ipv4 0=A.B.C.D/LEN] [--set S.K=V]... -- LOAD\n"
		"       tq_loadgen --transport kernel LOAD\n"
		"LOAD:  --dst A.B.C.D [--port 1883] [--qos 0|1] [--mqtt 4|5] [--pubs N] [--subs N]\n"
		"       [--size BYTES (64, >= %d)] [--rate MSGS_PER_S (0 = max)] [--duration S (5)]\n"
		"       [--warmup S (1)] [--drain S (10)] [--window N (QoS 1 in flight per\n"
		"       publisher, 1000)] [--max-connecting N (64)] [--topic PREFIX] [--csv]\n"
		"       [--csv-header] [--quiet] [--shared (MQTT: the subscribers are one group,\n"
		"       $share/g/TOPIC: each message to one of them)]\n"
		"       [--idle N (MQTT: N more clients that only connect and stay; with --pubs 0\n"
		"       --subs 0 alone)] [--keepalive S (MQTT keep alive, 0: none; PINGREQ every\n"
		"       S/2)] [--hold S (connected and quiet for S s before the warm-up)]\n"
		"       --dst A,B,... (dpdk: the connections in equal blocks, one per\n"
		"       address: more than 32768 connections need more than one)\n"
		"       [--proto mqtt|amqp] AMQP 0-9-1 (guest/guest, vhost /, port 5672):\n"
		"       [--workload autoack|ack|confirms|fanout] [--prefetch N (ack: 100)]\n"
		"       [--ack-every N (ack: 1; > 1: basic.ack multiple every N)]\n"
		"       autoack/ack/confirms: publishers -> a queue (default exchange) -> consumers\n"
		"       (pairs when pubs = subs > 1); fanout: a fanout exchange -> one queue per\n"
		"       consumer; confirms: confirm.select, --window unconfirmed per publisher\n",
		LG_HDR);
}

int
lg_parse_opts(struct lg_opts *o, int argc, char **argv)
{
	static char prefix[32];
	static const struct option opts[] = {
		{"transport", required_argument, NULL, 'T'},
		{"dst", required_argument, NULL, 'd'},
		{"port", required_argument, NULL, 'p'},
		{"qos", required_argument, NULL, 'q'},
		{"mqtt", required_argument, NULL, 'v'},
		{"pubs", required_argument, NULL, 'P'},
		{"subs", required_argument, NULL, 'S'},
		{"size", required_argument, NULL, 's'},
		{"rate", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 't'},
		{"warmup", required_argument, NULL, 'w'},
		{"drain", required_argument, NULL, 'D'},
		{"window", required_argument, NULL, 'W'},
		{"max-connecting", required_argument, NULL, 'C'},
		{"topic", required_argument, NULL, 'x'},
		{"csv", no_argument, NULL, 'c'},
		{"csv-header", no_argument, NULL, 'H'},
		{"quiet", no_argument, NULL, 'Q'},
		{"proto", required_argument, NULL, 'A'},
		{"workload", required_argument, NULL, 'L'},
		{"prefetch", required_argument, NULL, 'F'},
		{"ack-every", required_argument, NULL, 'K'},
		{"shared", no_argument, NULL, 'G'},
		{"idle", required_argument, NULL, 'I'},
		{"keepalive", required_argument, NULL, 'k'},
		{"hold", required_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct in_addr a;
	char dbuf[LG_MAX_DSTS * 16 + 1], *tok, *save;
	int opt;

	snprintf(prefix, sizeof(prefix), "lg%d", (int)getpid());
	*o = (struct lg_opts){
		.transport = "dpdk", .port = 1883, .level = TQ_MQTT_LEVEL_311, .pubs = 1,
		.subs = 1, .size = 64, .duration = 5, .warmup = 1, .drain = 10, .window = 1000,
		.max_connecting = 64, .topic_prefix = prefix, .proto = LG_MQTT,
		.workload = LGA_AUTOACK, .prefetch = 100, .ack_every = 1,
	};
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'T': o->transport = optarg; break;
		case 'd':
			if (strlen(optarg) >= sizeof(dbuf))
				return -EINVAL;
			strcpy(dbuf, optarg);
			o->ndst = 0;
			for (tok = strtok_r(dbuf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (o->ndst == LG_MAX_DSTS || inet_pton(AF_INET, tok, &a) != 1)
					return -EINVAL;
				o->dsts[o->ndst++] = a.s_addr;
			}
			o->dst = o->ndst ? o->dsts[0] : 0;
			break;
		case 'p': o->port = (uint16_t)atoi(optarg); o->port_set = true; break;
		case 'q': o->qos = (uint8_t)atoi(optarg); break;
		case 'v': o->level = (uint8_t)atoi(optarg); break;
		case 'P': o->pubs = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'S': o->subs = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': o->size = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': o->rate = atof(optarg); break;
		case 't': o->duration = atof(optarg); break;
		case 'w': o->warmup = atof(optarg); break;
		case 'D': o->drain = atof(optarg); break;
		case 'W': o->window = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'C': o->max_connecting = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'x': o->topic_prefix = optarg; break;
		case 'c': o->csv = true; break;
		case 'H': o->csv_header = true; break;
		case 'Q': o->quiet = true; break;
		case 'A':
			if (!strcmp(optarg, "mqtt"))
				o->proto = LG_MQTT;
			else if (!strcmp(optarg, "amqp"))
				o->proto = LG_AMQP;
			else
				return -EINVAL;
			break;
		case 'L': {
			uint8_t wl;

			for (wl = 0; wl <= LGA_FANOUT && strcmp(optarg, lga_workload_name(wl)); wl++)
				;
			if (wl > LGA_FANOUT)
				return -EINVAL;
			o->workload = wl;
			break;
		}
		case 'F': o->prefetch = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'K': o->ack_every = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'G': o->shared = true; break;
		case 'h': o->hold = atof(optarg); break;
		case 'I': o->idle = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'k': {
			unsigned long v = strtoul(optarg, NULL, 0);

			if (v > 65535)
				return -EINVAL;
			o->keepalive = (uint16_t)v;
			break;
		}
		default: return -EINVAL;
		}
	}
	if (o->proto == LG_AMQP && !o->port_set)
		o->port = 5672;
	if (o->proto == LG_AMQP && o->workload == LGA_ACK &&
	    (o->ack_every == 0 || (o->prefetch && o->ack_every > o->prefetch)))
		return -EINVAL;
	if ((o->shared || o->idle) && o->proto != LG_MQTT)
		return -EINVAL;
	/* publishers and subscribers, or with --idle neither */
	if ((o->pubs == 0 || o->subs == 0) && !(o->idle && o->pubs == 0 && o->subs == 0))
		return -EINVAL;
	if (optind < argc || !o->dst || o->port == 0 || o->qos > 1 ||
	    (o->level != TQ_MQTT_LEVEL_311 && o->level != TQ_MQTT_LEVEL_5) ||
	    o->pubs + o->subs > 200000 || o->idle > (1 << 20) || o->size < LG_HDR ||
	    o->size > 60000 ||
	    o->rate < 0 || o->duration <= 0 || o->warmup < 0 || o->drain < 0 || o->hold < 0 ||
	    o->window == 0 || o->window > 60000 || o->max_connecting == 0 ||
	    strlen(o->topic_prefix) > 32 ||
	    (strcmp(o->transport, "dpdk") && strcmp(o->transport, "kernel")))
		return -EINVAL;
	return 0;
}
