/*
 * --proto amqp: AMQP 0-9-1 clients for tq_loadgen over the same byte buffers, schedule,
 * counts and histogram as the MQTT ones (lg_core.c). Everything on the wire is written and
 * read with proto/amqp's codec (tq_amqp_encode_*, tq_amqp_frame_parse, tq_amqp_method_decode,
 * tq_amqp_header_encode/decode).
 *
 * Handshake (every connection): protocol header; connection.start -> start-ok (PLAIN
 * guest/guest); tune -> tune-ok (the server's channel-max and frame-max, no heartbeats) and
 * connection.open "/"; open-ok -> channel.open 1; open-ok -> the workload's setup, sent at
 * once, READY when every reply is in:
 *   consumers  [fanout: exchange.declare PREFIX.fan fanout] queue.declare (auto-delete)
 *              [fanout: queue.bind to PREFIX.fan] [ack: basic.qos prefetch] basic.consume
 *              (no-ack unless the workload is ack)
 *   publishers [confirms: confirm.select]
 * Workloads:
 *   autoack   basic.publish to the queue through the default exchange; consumers no-ack
 *   ack       the same with manual acks: basic.qos --prefetch, basic.ack per delivery, or
 *             one basic.ack multiple per --ack-every deliveries (and what is left at the end)
 *   confirms  autoack plus confirm.select on the publishers: basic.ack (multiple or not)
 *             counted in "acked"; at most --window unconfirmed per publisher; nack = bad ack
 *   fanout    basic.publish to the fanout exchange PREFIX.fan, one queue per consumer
 * End: connection.close 200; TCP closes once close-ok is in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/amqp/tq_amqp_codec.h"
#include "tq_loadgen.h"

#define CH 1 /* the one channel */

enum {
	AS_START,  /* protocol header sent, connection.start due */
	AS_TUNE,   /* start-ok sent */
	AS_OPEN,   /* tune-ok and connection.open sent */
	AS_CHAN,   /* channel.open sent */
	AS_SETUP,  /* declare/bind/qos/consume/confirm.select sent: setup_left replies due */
	AS_READY,
};

static const char *const wl_names[] = {"autoack", "ack", "confirms", "fanout"};

const char *
lga_workload_name(uint8_t wl)
{
	return wl <= LGA_FANOUT ? wl_names[wl] : "?";
}

static inline struct tq_amqp_str
str(const char *s, size_t n)
{
	return (struct tq_amqp_str){(const uint8_t *)s, (uint32_t)n};
}

static inline struct tq_amqp_str
cstr(const char *s)
{
	return str(s, strlen(s));
}

/* Room for a method frame: the encoders say how much they wrote; 512 bytes hold any we send. */
#define CTL_ROOM 512

typedef ssize_t (*enc_fn)(uint8_t *buf, size_t cap, uint16_t channel, const void *args);

/* Encode with @enc at the end of @c's tx buffer; false (and the connection fails) if not. */
static bool
put(struct lg_conn *c, ssize_t (*enc)(uint8_t *, size_t, uint16_t, const void *), uint16_t ch,
    const void *args, const char *what)
{
	uint8_t *b = lg_tx_reserve(c, CTL_ROOM);
	ssize_t n;

	if (!b || (n = enc(b, CTL_ROOM, ch, args)) < 0) {
		lg_conn_fail(c, &c->lg->proto_errors, what);
		return false;
	}
	c->tx_len += (uint32_t)n;
	lg_mark_dirty(c);
	return true;
}

/* the typed encoders, as enc_fn (their argument structs differ) */
#define ENC(name, type)                                                                   \
	static ssize_t enc_##name(uint8_t *b, size_t cap, uint16_t ch, const void *a)      \
	{                                                                                  \
		return tq_amqp_encode_##name(b, cap, ch, (const struct tq_amqp_##type *)a); \
	}
ENC(connection_start_ok, connection_start_ok)
ENC(connection_tune_ok, connection_tune_ok)
ENC(connection_open, connection_open)
ENC(connection_close, connection_close)
ENC(channel_open, channel_open)
ENC(exchange_declare, exchange_declare)
ENC(queue_declare, queue_declare)
ENC(queue_bind, queue_bind)
ENC(basic_qos, basic_qos)
ENC(basic_consume, basic_consume)
ENC(basic_ack, basic_ack)
ENC(confirm_select, confirm_select)

static ssize_t
enc_close_ok(uint8_t *b, size_t cap, uint16_t ch, const void *a)
{
	(void)a;
	return tq_amqp_encode_connection_close_ok(b, cap, ch);
}

int
lga_conn_init(struct lg_conn *c)
{
	(void)c;
	return 0;
}

void
lga_opened(struct lg_conn *c)
{
	uint8_t *b = lg_tx_reserve(c, TQ_AMQP_PROTOCOL_HEADER_LEN);

	c->state = LG_CS_CONNACK;
	c->astep = AS_START;
	if (!b) {
		lg_conn_fail(c, &c->lg->proto_errors, "protocol header does not fit");
		return;
	}
	memcpy(b, tq_amqp_protocol_header, TQ_AMQP_PROTOCOL_HEADER_LEN);
	c->tx_len += TQ_AMQP_PROTOCOL_HEADER_LEN;
	lg_mark_dirty(c);
}

/* The publish template: basic.publish and the content header (no properties) of a body of
 * --size bytes, identical for every message of this publisher. */
static int
build_template(struct lg_conn *c)
{
	const struct lg_opts *o = &c->lg->o;
	struct tq_amqp_basic_publish bp = {0};
	struct tq_amqp_basic_props props = {.flags = 0};
	uint8_t buf[CTL_ROOM];
	ssize_t m, h;

	if (o->workload == LGA_FANOUT) {
		bp.exchange = str(c->topic, c->topic_len);
		bp.routing_key = str("", 0);
	} else {
		bp.exchange = str("", 0);
		bp.routing_key = str(c->topic, c->topic_len);
	}
	m = tq_amqp_encode_basic_publish(buf, sizeof(buf), CH, &bp);
	if (m < 0)
		return -EINVAL;
	h = tq_amqp_header_encode(buf + m, sizeof(buf) - (size_t)m, CH, o->size, &props);
	if (h < 0)
		return -EINVAL;
	c->tmpl = malloc((size_t)(m + h));
	if (!c->tmpl)
		return -ENOMEM;
	memcpy(c->tmpl, buf, (size_t)(m + h));
	c->tmpl_len = (uint32_t)(m + h);
	return 0;
}

static void
on_channel_open_ok(struct lg_conn *c)
{
	const struct lg_opts *o = &c->lg->o;
	struct tq_amqp_table none = {(const uint8_t *)"", 0};
	char fan[48];

	c->astep = AS_SETUP;
	c->setup_left = 0;
	if (c->role == LG_PUB) {
		if (build_template(c)) {
			lg_conn_fail(c, &c->lg->proto_errors, "basic.publish does not encode");
			return;
		}
		if (o->workload == LGA_CONFIRMS) {
			struct tq_amqp_confirm_select cs = {.nowait = false};

			if (!put(c, enc_confirm_select, CH, &cs, "confirm.select"))
				return;
			c->setup_left++;
		}
	} else {
		struct tq_amqp_queue_declare qd = {
			.queue = str(c->topic, c->topic_len), .auto_delete = true, .arguments = none,
		};
		struct tq_amqp_basic_consume bc = {
			.queue = str(c->topic, c->topic_len), .consumer_tag = str("", 0),
			.no_ack = o->workload != LGA_ACK, .arguments = none,
		};

		snprintf(fan, sizeof(fan), "%s.fan", o->topic_prefix);
		if (o->workload == LGA_FANOUT) {
			struct tq_amqp_exchange_declare ed = {
				.exchange = cstr(fan), .type = cstr("fanout"), .auto_delete = true,
				.arguments = none,
			};

			if (!put(c, enc_exchange_declare, CH, &ed, "exchange.declare"))
				return;
			c->setup_left++;
		}
		if (!put(c, enc_queue_declare, CH, &qd, "queue.declare"))
			return;
		c->setup_left++;
		if (o->workload == LGA_FANOUT) {
			struct tq_amqp_queue_bind qb = {
				.queue = str(c->topic, c->topic_len), .exchange = cstr(fan),
				.routing_key = str("", 0), .arguments = none,
			};

			if (!put(c, enc_queue_bind, CH, &qb, "queue.bind"))
				return;
			c->setup_left++;
		}
		if (o->workload == LGA_ACK) {
			struct tq_amqp_basic_qos q = {.prefetch_count = o->prefetch};

			if (!put(c, enc_basic_qos, CH, &q, "basic.qos"))
				return;
			c->setup_left++;
		}
		if (!put(c, enc_basic_consume, CH, &bc, "basic.consume"))
			return;
		c->setup_left++;
	}
	if (c->setup_left == 0) {
		c->astep = AS_READY;
		lg_conn_ready(c);
	}
}

/* consumer (ack): acknowledge everything received so far */
static void
send_ack(struct lg_conn *c)
{
	struct tq_amqp_basic_ack a = {.delivery_tag = c->last_tag, .multiple = c->unacked > 1};

	if (put(c, enc_basic_ack, CH, &a, "basic.ack does not fit"))
		c->unacked = 0;
}

void
lga_step(struct lg_conn *c)
{
	if (c->unacked)
		send_ack(c);
}

bool
lga_close(struct lg_conn *c)
{
	struct tq_amqp_connection_close cc = {.reply_code = 200, .reply_text = cstr("bye")};

	if (c->unacked && c->astep == AS_READY)
		send_ack(c);
	if (c->abort_req)
		return false;
	if (!put(c, enc_connection_close, 0, &cc, "connection.close does not fit"))
		return false;
	c->await_close_ok = true;
	return true;
}

/* publisher (confirms): tag @tag (and every one before it when @multiple) confirmed */
static void
on_confirm(struct lg_conn *c, uint64_t tag, bool multiple, bool nack)
{
	struct lg *lg = c->lg;

	if (c->role != LG_PUB || !c->pid_out || tag <= c->conf_base || tag >= c->seq + 1) {
		lg->bad_acks++;
		return;
	}
	if (nack)
		lg->bad_acks++;
	if (multiple) {
		for (uint64_t t = c->conf_base + 1; t <= tag; t++) {
			uint64_t *w = &c->pid_out[(t & 65535) >> 6], bit = UINT64_C(1) << (t & 63);

			if (*w & bit) {
				*w &= ~bit; /* confirmed before, alone */
			} else {
				lg->acked++;
				c->inflight--;
			}
		}
		c->conf_base = tag;
	} else {
		uint64_t *w = &c->pid_out[(tag & 65535) >> 6], bit = UINT64_C(1) << (tag & 63);

		if (*w & bit) {
			lg->bad_acks++; /* twice */
			return;
		}
		lg->acked++;
		c->inflight--;
		if (tag == c->conf_base + 1) {
			c->conf_base = tag;
			for (;;) { /* the ones confirmed alone right after it */
				uint64_t t = c->conf_base + 1;

				w = &c->pid_out[(t & 65535) >> 6];
				bit = UINT64_C(1) << (t & 63);
				if (!(*w & bit))
					break;
				*w &= ~bit;
				c->conf_base = t;
			}
		} else {
			*w |= bit;
		}
	}
}

static void
on_server_close(struct lg_conn *c, const struct tq_amqp_method *m)
{
	struct lg *lg = c->lg;
	const struct tq_amqp_str *t = m->info->id == TQ_AMQP_CONNECTION_CLOSE
					      ? &m->args.connection_close.reply_text
					      : &m->args.channel_close.reply_text;
	uint16_t code = m->info->id == TQ_AMQP_CONNECTION_CLOSE ? m->args.connection_close.reply_code
								 : m->args.channel_close.reply_code;

	if (!lg->o.quiet)
		fprintf(stderr, "tq_loadgen: %s %u: %s %u %.*s\n",
			c->role == LG_PUB ? "publisher" : "consumer", c->idx, m->info->name, code,
			(int)t->len, (const char *)t->p);
	if (m->info->id == TQ_AMQP_CONNECTION_CLOSE) {
		put(c, enc_close_ok, 0, NULL, "connection.close-ok does not fit");
		if (c->state == LG_CS_CLOSING && code == 200)
			return;
	}
	lg_conn_fail(c, &lg->refused, "closed by the server");
}

static void
on_method(struct lg_conn *c, uint16_t ch, const struct tq_amqp_method *m)
{
	struct lg *lg = c->lg;
	uint32_t id = m->info->id;

	switch (id) {
	case TQ_AMQP_CONNECTION_START: {
		static const char resp[] = "\0guest\0guest";
		struct tq_amqp_connection_start_ok so = {
			.client_properties = {(const uint8_t *)"", 0},
			.mechanism = cstr("PLAIN"),
			.response = str(resp, sizeof(resp) - 1),
			.locale = cstr("en_US"),
		};

		if (c->astep != AS_START)
			break;
		c->astep = AS_TUNE;
		put(c, enc_connection_start_ok, 0, &so, "start-ok");
		return;
	}
	case TQ_AMQP_CONNECTION_TUNE: {
		const struct tq_amqp_connection_tune *t = &m->args.connection_tune;
		struct tq_amqp_connection_tune_ok to = {
			.channel_max = t->channel_max, .frame_max = t->frame_max, .heartbeat = 0,
		};
		struct tq_amqp_connection_open op = {.virtual_host = cstr("/"), .reserved_1 = str("", 0)};

		if (c->astep != AS_TUNE)
			break;
		c->astep = AS_OPEN;
		if (put(c, enc_connection_tune_ok, 0, &to, "tune-ok"))
			put(c, enc_connection_open, 0, &op, "connection.open");
		return;
	}
	case TQ_AMQP_CONNECTION_OPEN_OK: {
		struct tq_amqp_channel_open co = {.reserved_1 = str("", 0)};

		if (c->astep != AS_OPEN)
			break;
		c->astep = AS_CHAN;
		put(c, enc_channel_open, CH, &co, "channel.open");
		return;
	}
	case TQ_AMQP_CHANNEL_OPEN_OK:
		if (c->astep != AS_CHAN || ch != CH)
			break;
		on_channel_open_ok(c);
		return;
	case TQ_AMQP_EXCHANGE_DECLARE_OK:
	case TQ_AMQP_QUEUE_DECLARE_OK:
	case TQ_AMQP_QUEUE_BIND_OK:
	case TQ_AMQP_BASIC_QOS_OK:
	case TQ_AMQP_BASIC_CONSUME_OK:
	case TQ_AMQP_CONFIRM_SELECT_OK:
		if (c->astep != AS_SETUP || c->setup_left == 0)
			break;
		if (--c->setup_left == 0) {
			c->astep = AS_READY;
			if (c->state == LG_CS_CONNACK)
				lg_conn_ready(c);
		}
		return;
	case TQ_AMQP_BASIC_DELIVER:
		if (c->role != LG_SUB || c->astep != AS_READY || c->dlv)
			break;
		c->dlv = 1;
		c->dlv_tag = m->args.basic_deliver.delivery_tag;
		return;
	case TQ_AMQP_BASIC_ACK:
		on_confirm(c, m->args.basic_ack.delivery_tag, m->args.basic_ack.multiple, false);
		return;
	case TQ_AMQP_BASIC_NACK:
		on_confirm(c, m->args.basic_nack.delivery_tag, m->args.basic_nack.multiple, true);
		return;
	case TQ_AMQP_CONNECTION_CLOSE_OK:
		if (!c->await_close_ok)
			break;
		c->await_close_ok = false;
		c->close_ok_seen = true;
		return;
	case TQ_AMQP_CONNECTION_CLOSE:
	case TQ_AMQP_CHANNEL_CLOSE:
		on_server_close(c, m);
		return;
	case TQ_AMQP_CONNECTION_BLOCKED:
	case TQ_AMQP_CONNECTION_UNBLOCKED:
		return; /* RabbitMQ's memory alarm: publishing stalls by itself */
	default:
		break;
	}
	if (!lg->o.quiet)
		fprintf(stderr, "tq_loadgen: unexpected %s\n", m->info->name);
	lg_conn_fail(c, &lg->proto_errors, "unexpected method");
}

/* one whole frame */
static void
on_frame(struct lg_conn *c, const struct tq_amqp_frame *f, uint64_t now)
{
	struct lg *lg = c->lg;
	size_t eo = 0;

	switch (f->type) {
	case TQ_AMQP_FRAME_METHOD: {
		struct tq_amqp_method m;
		ssize_t r;

		if (c->dlv) {
			lg_conn_fail(c, &lg->proto_errors, "method inside a delivery's content");
			return;
		}
		r = tq_amqp_method_decode(f->payload, f->size, &m, &eo);
		if (r < 0) {
			if (!lg->o.quiet)
				fprintf(stderr, "tq_loadgen: undecodable method: %s\n", tq_amqp_err_name((int)r));
			lg_conn_fail(c, &lg->proto_errors, "undecodable method");
			return;
		}
		on_method(c, f->channel, &m);
		return;
	}
	case TQ_AMQP_FRAME_HEADER: {
		struct tq_amqp_content_header h;

		if (c->dlv != 1 || tq_amqp_header_decode(f->payload, f->size, &h, &eo) < 0) {
			lg_conn_fail(c, &lg->proto_errors, "unexpected content header");
			return;
		}
		if (h.body_size != lg->o.size)
			lg->bad_payload++;
		c->body_left = h.body_size;
		c->dlv = 2;
		if (h.body_size == 0)
			c->dlv = 0;
		return;
	}
	case TQ_AMQP_FRAME_BODY:
		if (c->dlv != 2 || f->size > c->body_left) {
			lg_conn_fail(c, &lg->proto_errors, "unexpected body frame");
			return;
		}
		/* the stamp is at the start of the first body frame */
		if (c->body_left == lg->o.size) {
			if (f->size >= LG_HDR)
				lg_count_rx(c, f->payload, now);
			else
				lg->bad_payload++;
		}
		c->body_left -= f->size;
		if (c->body_left)
			return;
		c->dlv = 0;
		if (lg->o.workload == LGA_ACK) {
			c->last_tag = c->dlv_tag;
			c->unacked++;
			if (c->unacked >= lg->o.ack_every)
				send_ack(c);
		}
		return;
	case TQ_AMQP_FRAME_HEARTBEAT:
		return;
	default:
		lg_conn_fail(c, &lg->proto_errors, "unknown frame type");
	}
}

static inline uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Frames in [p, p + n): bytes used (a partial frame at the end is left), or -1. */
static ssize_t
frames(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
	size_t off = 0;

	while (off < n && !c->abort_req) {
		struct tq_amqp_frame f;
		size_t eo = 0;
		ssize_t r = tq_amqp_frame_parse(p + off, n - off, 0, &f, &eo);

		if (r == TQ_AMQP_NEED_MORE)
			break;
		if (r < 0) {
			if (!c->lg->o.quiet)
				fprintf(stderr, "tq_loadgen: bad frame: %s\n", tq_amqp_err_name((int)r));
			lg_conn_fail(c, &c->lg->proto_errors, "bad frame");
			return -1;
		}
		on_frame(c, &f, now);
		off += (size_t)r;
	}
	return (ssize_t)off;
}

void
lga_input(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
	/* A frame split across reads: complete it in the rx buffer, then parse it there. */
	while (c->rx_len > 0 && n > 0 && !c->abort_req) {
		size_t want, take;
		bool hdr = c->rx_len >= TQ_AMQP_FRAME_HDR_LEN;

		want = hdr ? (size_t)be32(c->rx + 3) + TQ_AMQP_FRAME_OVERHEAD - c->rx_len
			   : TQ_AMQP_FRAME_HDR_LEN - c->rx_len;
		if (c->rx_len + want > c->rx_cap) {
			lg_conn_fail(c, &c->lg->proto_errors, "frame larger than the rx buffer");
			return;
		}
		take = want < n ? want : n;
		memcpy(c->rx + c->rx_len, p, take);
		c->rx_len += (uint32_t)take;
		p += take;
		n -= take;
		if (hdr && take == want) {
			if (frames(c, c->rx, c->rx_len, now) < 0)
				return;
			c->rx_len = 0;
		}
	}
	if (n > 0 && !c->abort_req) {
		ssize_t used = frames(c, p, n, now);

		if (used < 0)
			return;
		if ((size_t)used < n) {
			if (n - (size_t)used > c->rx_cap) {
				lg_conn_fail(c, &c->lg->proto_errors, "frame larger than the rx buffer");
				return;
			}
			memcpy(c->rx, p + used, n - (size_t)used);
			c->rx_len = (uint32_t)(n - (size_t)used);
		}
	}
}

/* One message stamped @stamp; false when the window or the tx buffer is full. */
bool
lga_pub_emit(struct lg *lg, struct lg_conn *c, uint64_t stamp)
{
	uint32_t need = c->tmpl_len + TQ_AMQP_FRAME_OVERHEAD + lg->o.size;
	bool confirms = lg->o.workload == LGA_CONFIRMS;
	uint8_t *b, *body;

	if (confirms && c->inflight >= lg->o.window)
		return false;
	b = lg_tx_reserve(c, need);
	if (!b)
		return false;
	memcpy(b, c->tmpl, c->tmpl_len);
	if (tq_amqp_frame_head_encode(b + c->tmpl_len, TQ_AMQP_FRAME_HDR_LEN, TQ_AMQP_FRAME_BODY, CH,
				      lg->o.size) < 0) {
		lg_conn_fail(c, &lg->proto_errors, "body frame does not encode");
		return false;
	}
	body = b + c->tmpl_len + TQ_AMQP_FRAME_HDR_LEN;
	memset(body + LG_HDR, 'x', lg->o.size - LG_HDR);
	memcpy(body, &stamp, 8);
	memcpy(body + 8, &c->idx, 4);
	memcpy(body + 12, &c->seq, 8);
	c->seq++; /* confirms: this message's tag is c->seq (tags start at 1) */
	body[lg->o.size] = TQ_AMQP_FRAME_END;
	c->tx_len += need;
	lg_mark_dirty(c);
	if (confirms)
		c->inflight++;
	lg->sent++;
	lg->expected_rx += lg->fanout;
	if (lg->now >= lg->t_measure && lg->now < lg->t_end)
		lg->sent_win++;
	return true;
}
