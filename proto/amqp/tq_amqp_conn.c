/*
 * AMQP over tachyon's TCP: the connection's receive chain, framing, the connection class
 * (start, tune, open, close), heartbeats, and frames out. The worker owning the TCP
 * connection only.
 *
 * Receive works as in MQTT (tq_mqtt_conn.c): TCP's mbufs are linked, a frame inside one mbuf
 * is decoded where it lies, one split across mbufs is copied into the worker's scratch
 * buffer, body frames are taken by reference. Frames out go through one ordered chain
 * (c->ctl) that TCP takes as it can; while it holds more than CTL_BACKLOG_MAX bytes, or while
 * replies from queue homes are awaited, nothing more is read (the TCP window closes). Frames
 * given as bytes fill the chain's last mbuf and go to TCP at the end of the loop iteration
 * (tq_amqp_conns_flush), so small frames share mbufs; chains go at once, with what waits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/tq_access.h"
#include "dataplane/tq_ctl.h"
#include "dataplane/tq_prio.h"
#include "tq_amqp_int.h"
#include "tq_amqp_queue.h"

#define CTL_BACKLOG_MAX (256 * 1024)

static void
ctl_flush(struct tq_amqp_conn *c)
{
	int rc;

	if (!c->ctl)
		return;
	rc = tq_tcp_send(c->tcp, c->ctl);
	if (rc == 0) {
		if (unlikely(c->w->prio_conns))
			tq_prio_tx_count(c->w, tq_tcp_prio(c->tcp), c->ctl_len);
		c->ctl = NULL;
		c->ctl_len = 0;
		c->ctl_blocked = false;
	} else if (rc == -ENOBUFS) {
		c->ctl_blocked = true;
		tq_tcp_want_writable(c->tcp);
	} else {
		tq_tcp_chain_free(c->ctl);
		c->ctl = NULL;
		c->ctl_len = 0;
		c->ctl_blocked = false;
	}
}

/* Link chain @m after what waits to go out (O(1): the tail is remembered). */
static void
ctl_append(struct tq_amqp_conn *c, struct rte_mbuf *m)
{
	tq_mbuf_out_chain(&c->ctl, &c->ctl_tail, &c->ctl_len, m);
	c->last_tx_ms = tq_msg_now_ms();
}

/* Output goes to TCP now: before a close, whose FIN follows what TCP holds. */
static void
conn_close(struct tq_amqp_conn *c)
{
	ctl_flush(c);
	c->state = AC_DEAD;
	tq_tcp_close(c->tcp);
}

/* Append a chain to what goes out, in order. */
int tq_amqp_send_chain(struct tq_amqp_conn *c, struct rte_mbuf *m);
int
tq_amqp_send_chain(struct tq_amqp_conn *c, struct rte_mbuf *m)
{
	if (c->state == AC_DEAD) {
		rte_pktmbuf_free(m);
		return -EPIPE;
	}
	ctl_append(c, m);
	ctl_flush(c);
	return 0;
}

/*
 * Bytes out: copied into the free end of the last mbuf waiting to go when it is one of ours
 * (direct, unshared), else into fresh mbufs; handed to TCP at the end of the loop iteration
 * (tq_amqp_conns_flush) or with the next chain. Small frames (deliveries of small messages,
 * confirms) so share mbufs: one per frame filled a send queue of 256 KiB with thousands of
 * mbufs per connection, and a few slow consumers emptied the worker's pool.
 */
int
tq_amqp_send(struct tq_amqp_conn *c, const void *buf, size_t len)
{
	struct tq_amqp_worker *wk = c->w->amqp;
	int rc;

	if (c->state == AC_DEAD)
		return -EPIPE;
	rc = tq_mbuf_out_bytes(c->w->pool, &c->ctl, &c->ctl_tail, &c->ctl_len, buf, (uint32_t)len);
	if (rc < 0) {
		tq_worker_count(c->w, TQ_CTR_mbuf_alloc_failed);
		return -ENOMEM; /* nothing queued */
	}
	c->last_tx_ms = tq_msg_now_ms();
	if (rc == 1) { /* large: a chain of its own, out now */
		ctl_flush(c);
		return 0;
	}
	if (!c->dirty) { /* flushed at the end of the iteration */
		if (wk->ndirty == wk->nslots) { /* only if slots went and came back: now then */
			ctl_flush(c);
			return 0;
		}
		c->dirty = true;
		wk->dirty[wk->ndirty++] = c->slot;
	}
	return 0;
}

/* One listed connection's output to TCP; if it drained, held deliveries, credit, reading. */
static void
flush_one(struct tq_amqp_conn *c)
{
	c->dirty = false;
	ctl_flush(c);
	if (c->ctl || tq_dp.stop)
		return;
	tq_amqp_chan_output_room(c);
	if (!c->ctl && c->rx_len)
		tq_amqp_conn_resume(c);
}

/*
 * The loop, once per iteration: output of the connections that wrote bytes goes to TCP; those
 * whose output drained give held deliveries and credit, and read what waits. Returns the
 * work done. While the worker has connections of a class other than normal, the critical
 * ones listed go first, then the normal ones, then the rest as usual (tq_prio.h): their entries
 * stay in the list, skipped once flushed (dirty is false).
 */
unsigned int
tq_amqp_conns_flush(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;
	unsigned int n = 0;

	if (unlikely(w->prio_conns))
		for (unsigned int o = 0; o + 1 < TQ_PRIO_CLASSES; o++)
			for (uint32_t i = wk->ndirty; i-- > 0;) { /* in the order pops take them */
				struct tq_amqp_conn *c = wk->conns[wk->dirty[i]];

				if (c && c->dirty && tq_tcp_prio(c->tcp) == tq_prio_order[o]) {
					flush_one(c);
					n++;
				}
			}
	while (wk->ndirty) { /* those the resumes below dirty again are taken too */
		struct tq_amqp_conn *c = wk->conns[wk->dirty[--wk->ndirty]];

		if (!c || !c->dirty)
			continue; /* gone, or flushed with a chain meanwhile */
		flush_one(c);
		n++;
	}
	return n;
}

int
tq_amqp_send_method(struct tq_amqp_conn *c, uint16_t channel, uint32_t method_idx,
		    const void *args)
{
	struct tq_amqp_worker *wk = c->w->amqp;
	ssize_t len = tq_amqp_method_encode(wk->scratch, wk->scratch_cap, channel,
					    &tq_amqp_methods[method_idx], args);

	if (len < 0)
		return (int)len;
	return tq_amqp_send(c, wk->scratch, (size_t)len);
}

static void
rx_consume(struct tq_amqp_conn *c, uint32_t n)
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
rx_free(struct tq_amqp_conn *c)
{
	rx_consume(c, c->rx_len);
	while (c->rx) { /* zero-length leftovers */
		struct rte_mbuf *m = c->rx;

		c->rx = m->next;
		m->next = NULL;
		m->nb_segs = 1;
		rte_pktmbuf_free(m);
	}
	c->rx_tail = NULL;
	c->rx_len = 0;
}

/* Hard error: connection.close with @code; only close/close-ok are read from now on. */
void
tq_amqp_conn_error(struct tq_amqp_conn *c, uint16_t code, const char *text, uint32_t method_id)
{
	struct tq_amqp_connection_close cl = {
		.reply_code = code,
		.reply_text = {.p = (const uint8_t *)text, .len = (uint32_t)strlen(text)},
		.class_id = TQ_AMQP_ID_CLASS(method_id),
		.method_id = TQ_AMQP_ID_METHOD(method_id),
	};

	if (c->state >= AC_CLOSING)
		return;
	tq_worker_count(c->w, TQ_CTR_amqp_conn_errors);
	if (c->state <= AC_START_OK && code != TQ_AMQP_ACCESS_REFUSED) {
		/* before tune nothing was negotiated: close the socket (spec 4.10.2) */
		conn_close(c);
		return;
	}
	tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_CLOSE, &cl);
	c->state = AC_CLOSING;
}

void
tq_amqp_chan_error(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint16_t code,
		   const char *text, uint32_t method_id)
{
	struct tq_amqp_channel_close cl = {
		.reply_code = code,
		.reply_text = {.p = (const uint8_t *)text, .len = (uint32_t)strlen(text)},
		.class_id = TQ_AMQP_ID_CLASS(method_id),
		.method_id = TQ_AMQP_ID_METHOD(method_id),
	};

	if (tq_amqp_reply_is_hard(code) == 1) {
		tq_amqp_conn_error(c, code, text, method_id);
		return;
	}
	if (ch->closing)
		return;
	tq_worker_count(c->w, TQ_CTR_amqp_chan_errors);
	tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_CHANNEL_CLOSE, &cl);
	ch->closing = true;
}

static void
send_start(struct tq_amqp_conn *c)
{
	uint8_t props[1024];
	struct tq_amqp_server_info si = {
		.product = "tachyon",
		.version = TQ_VERSION,
		.platform = "DPDK",
		.copyright = "tachyon authors, BSD-3-Clause",
		.information = "https://example.invalid/tachyon",
	};
	struct tq_amqp_connection_start st = {
		.version_major = 0,
		.version_minor = 9,
		.mechanisms = {.p = (const uint8_t *)"PLAIN AMQPLAIN", .len = 14},
		.locales = {.p = (const uint8_t *)"en_US", .len = 5},
	};

	if (tq_amqp_server_properties(props, sizeof(props), &si, &st.server_properties) == 0)
		tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_START, &st);
	c->state = AC_START_OK;
}

static void hb_arm(struct tq_amqp_conn *c, uint32_t seconds);

static bool
str_is(const struct tq_amqp_str *s, const char *v)
{
	size_t n = strlen(v);

	return s->len == n && memcmp(s->p, v, n) == 0;
}

/*
 * The credentials in start-ok: PLAIN is "authzid \0 user \0 password"; AMQPLAIN a table with
 * LOGIN and PASSWORD. false: another mechanism, or a response that is not one of these.
 */
static bool
credentials(const struct tq_amqp_connection_start_ok *so, struct tq_amqp_str *user,
	    struct tq_amqp_str *pass)
{
	memset(user, 0, sizeof(*user));
	memset(pass, 0, sizeof(*pass));
	if (str_is(&so->mechanism, "PLAIN")) {
		const uint8_t *p = so->response.p, *end = p + so->response.len;
		const uint8_t *z1 = memchr(p, 0, so->response.len), *z2;

		if (!z1)
			return false;
		z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1));
		if (!z2)
			return false;
		user->p = z1 + 1;
		user->len = (uint32_t)(z2 - z1 - 1);
		pass->p = z2 + 1;
		pass->len = (uint32_t)(end - z2 - 1);
		return true;
	}
	if (str_is(&so->mechanism, "AMQPLAIN")) {
		/* the response is a table without its 4-byte size: walk it as contents */
		struct tq_amqp_table t = {.p = so->response.p, .len = so->response.len};
		struct tq_amqp_value v;

		if (tq_amqp_table_get(t, "LOGIN", &v) == 1 && v.tag == TQ_AMQP_V_STR)
			*user = v.v.str;
		if (tq_amqp_table_get(t, "PASSWORD", &v) == 1 && v.tag == TQ_AMQP_V_STR)
			*pass = v.v.str;
		return user->len > 0;
	}
	return false;
}

static void
login_refused(struct tq_amqp_conn *c, const char *why)
{
	char text[200];

	/* authentication_failure_close: 403 with a reason, then close */
	c->state = AC_TUNE_OK; /* so that conn_error sends the close */
	tq_worker_count(c->w, TQ_CTR_amqp_auth_failures);
	snprintf(text, sizeof(text), "ACCESS_REFUSED - %s", why);
	tq_amqp_conn_error(c, TQ_AMQP_ACCESS_REFUSED, text, TQ_AMQP_CONNECTION_START_OK);
}

static void
login_accepted(struct tq_amqp_conn *c)
{
	struct tq_amqp_connection_tune t = {
		.channel_max = (uint16_t)tq_amqp.conf.channel_max,
		.frame_max = tq_amqp.conf.frame_max,
		.heartbeat = (uint16_t)tq_amqp.conf.heartbeat,
	};

	tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_TUNE, &t);
	c->state = AC_TUNE_OK;
}

/*
 * Hand the credentials to the control thread (dataplane/tq_ctl.h); reading pauses until
 * the answer (tq_amqp_login_answer). Without a control plane: the config's default user.
 */
static void
login(struct tq_amqp_conn *c, const struct tq_amqp_str *user, const struct tq_amqp_str *pass)
{
	struct tq_ctl_req *r;

	if (user->len > TQ_CTL_USER_MAX || pass->len > TQ_CTL_DATA_MAX) {
		login_refused(c, "Login was refused: credentials too long");
		return;
	}
	if (!tq_ctl_ring) {
		if (!str_is(user, tq_amqp.conf.default_user) ||
		    !str_is(pass, tq_amqp.conf.default_pass)) {
			login_refused(c, "Login was refused using authentication mechanism PLAIN");
			return;
		}
		memcpy(c->user, user->p, user->len);
		c->user[user->len] = '\0';
		login_accepted(c);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		login_refused(c, "Login was refused: server busy");
		return;
	}
	r->kind = TQ_CTL_LOGIN;
	r->reply_type = TQ_MSG_AMQP_AUTH;
	r->cookie = tq_amqp_handle(c, 0);
	r->src_ip = c->tcp ? tq_tcp_remote_addr(c->tcp) : 0;
	r->user_len = (uint16_t)user->len;
	memcpy(r->user, user->p, user->len);
	r->data_len = (uint16_t)pass->len;
	memcpy(r->data, pass->p, pass->len);
	if (tq_ctl_submit(c->w, r) < 0) {
		free(r);
		login_refused(c, "Login was refused: server busy");
		return;
	}
	c->auth_pending = true;
	c->waiting++;
}

/* The control thread's answer to login(): worker side, from the inbound ring. */
void
tq_amqp_login_answer(struct tq_worker *w, const struct tq_ring_msg *msg)
{
	struct tq_ctl_req *r = (struct tq_ctl_req *)(uintptr_t)msg->b;
	struct tq_amqp_conn *c = tq_amqp_conn_by_handle(w, r->cookie);

	if (!c || !c->auth_pending) {
		tq_worker_count(w, TQ_CTR_ctl_answers_stale);
		free(r);
		return;
	}
	c->auth_pending = false;
	c->waiting--;
	if (c->state == AC_START_OK) {
		if (r->result == 1) {
			memcpy(c->user, r->user, r->user_len);
			c->user[r->user_len] = '\0';
			tq_tcp_set_prio(c->tcp, r->prio); /* the user's data-plane class */
			login_accepted(c);
		} else {
			login_refused(c, "Login was refused using authentication mechanism PLAIN");
		}
	}
	free(r);
	tq_amqp_conn_resume(c);
}

static void
conn_method(struct tq_amqp_conn *c, const struct tq_amqp_method *m)
{
	uint32_t id = m->info->id;

	switch (c->state) {
	case AC_START_OK:
		if (id != TQ_AMQP_CONNECTION_START_OK)
			break;
		{ /* does the client take connection.blocked? (its capabilities table) */
			struct tq_amqp_value caps, v;

			if (tq_amqp_table_get(m->args.connection_start_ok.client_properties,
					      "capabilities", &caps) == 1 &&
			    caps.tag == TQ_AMQP_V_TABLE &&
			    tq_amqp_table_get(caps.v.table, "connection.blocked", &v) == 1 &&
			    v.tag == TQ_AMQP_V_BOOL && v.v.b)
				c->can_block = true;
		}
		{
			struct tq_amqp_str user, pass;

			if (!credentials(&m->args.connection_start_ok, &user, &pass)) {
				login_refused(c, "Login was refused using authentication "
						 "mechanism PLAIN");
				return;
			}
			login(c, &user, &pass);
		}
		return;
	case AC_TUNE_OK:
		if (id != TQ_AMQP_CONNECTION_TUNE_OK)
			break;
		{
			const struct tq_amqp_connection_tune_ok *t = &m->args.connection_tune_ok;

			if ((t->frame_max && t->frame_max < TQ_AMQP_FRAME_MIN_SIZE) ||
			    t->frame_max > tq_amqp.conf.frame_max ||
			    t->channel_max > tq_amqp.conf.channel_max) {
				tq_amqp_conn_error(c, TQ_AMQP_NOT_ALLOWED,
						   "NOT_ALLOWED - tune-ok beyond what was offered", id);
				return;
			}
			c->frame_max = t->frame_max ? t->frame_max : tq_amqp.conf.frame_max;
			c->channel_max = t->channel_max ? t->channel_max
							: (uint16_t)tq_amqp.conf.channel_max;
			c->heartbeat = t->heartbeat;
			c->chans = calloc((size_t)c->channel_max + 1, sizeof(*c->chans));
			if (!c->chans) {
				tq_amqp_conn_error(c, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR", id);
				return;
			}
		}
		c->state = AC_OPEN;
		return;
	case AC_OPEN:
		if (id != TQ_AMQP_CONNECTION_OPEN)
			break;
		{
			const struct tq_amqp_str *vh = &m->args.connection_open.virtual_host;
			struct tq_amqp_connection_open_ok ok = {0};

			char name[sizeof(c->vhost)], text[640];

			if (vh->len >= sizeof(name)) {
				tq_amqp_conn_error(c, TQ_AMQP_NOT_ALLOWED,
						   "NOT_ALLOWED - vhost name too long", id);
				return;
			}
			memcpy(name, vh->p, vh->len);
			name[vh->len] = '\0';
			/* RabbitMQ's answer to both: unknown vhost, no permission there */
			if ((!tq_access_cur && strcmp(name, "/")) ||
			    !tq_amqp_access_vhost(c, name)) {
				snprintf(text, sizeof(text),
					 "NOT_ALLOWED - access to vhost '%s' refused for user '%s'",
					 name, c->user);
				tq_worker_count(c->w, TQ_CTR_amqp_access_refused);
				tq_amqp_conn_error(c, TQ_AMQP_NOT_ALLOWED, text, id);
				return;
			}
			memcpy(c->vhost, name, vh->len + 1);
			tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_OPEN_OK, &ok);
		}
		c->state = AC_RUNNING;
		tq_timer_stop(&c->w->amqp->wheel, c->hb_timer); /* the handshake's */
		c->hb_timer = 0;
		if (c->heartbeat)
			hb_arm(c, c->heartbeat);
		c->w->amqp->connected++;
		tq_worker_count(c->w, TQ_CTR_amqp_connects);
		return;
	case AC_RUNNING:
		if (id == TQ_AMQP_CONNECTION_CLOSE) {
			tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_CLOSE_OK, NULL);
			conn_close(c);
			return;
		}
		if (id == TQ_AMQP_CONNECTION_CLOSE_OK || id == TQ_AMQP_CONNECTION_BLOCKED ||
		    id == TQ_AMQP_CONNECTION_UNBLOCKED)
			break;
		if (id == TQ_AMQP_CONNECTION_UPDATE_SECRET) {
			tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_UPDATE_SECRET_OK, NULL);
			return;
		}
		break;
	case AC_CLOSING:
		if (id == TQ_AMQP_CONNECTION_CLOSE_OK || id == TQ_AMQP_CONNECTION_CLOSE) {
			if (id == TQ_AMQP_CONNECTION_CLOSE)
				tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_CLOSE_OK, NULL);
			conn_close(c);
		}
		return;
	}
	tq_amqp_conn_error(c, TQ_AMQP_COMMAND_INVALID, "COMMAND_INVALID - unexpected method", id);
}

/* One frame, whole, at @base (also at the head of c->rx). 1: not consumed (retry later). */
static int
handle_frame(struct tq_amqp_conn *c, const struct tq_amqp_frame *f)
{
	struct tq_amqp_method m;
	size_t off;
	ssize_t rc;

	if (f->type == TQ_AMQP_FRAME_HEARTBEAT)
		return 0;
	if (c->state == AC_CLOSING && !(f->type == TQ_AMQP_FRAME_METHOD && f->channel == 0))
		return 0; /* after our close only close/close-ok count (spec 2.2.4) */
	if (f->type != TQ_AMQP_FRAME_METHOD) {
		if (c->state != AC_RUNNING || f->channel == 0) {
			tq_amqp_conn_error(c, TQ_AMQP_UNEXPECTED_FRAME,
					   "UNEXPECTED_FRAME - content frame here", 0);
			return 0;
		}
		if (f->type == TQ_AMQP_FRAME_HEADER) {
			tq_amqp_chan_header(c, f->channel, f->payload, f->size);
			goto done;
		}
		return tq_amqp_chan_body(c, f->channel, TQ_AMQP_FRAME_HDR_LEN, f->size);
	}
	rc = tq_amqp_method_decode(f->payload, f->size, &m, &off);
	if (rc < 0) {
		tq_amqp_conn_error(c, tq_amqp_err_reply((int)rc), tq_amqp_err_text((int)rc), 0);
		return 0;
	}
	if (!(m.info->sent_by & TQ_AMQP_BY_CLIENT)) {
		tq_amqp_conn_error(c, TQ_AMQP_COMMAND_INVALID,
				   "COMMAND_INVALID - a method only servers send", m.info->id);
		return 0;
	}
	if (f->channel == 0) {
		if (TQ_AMQP_ID_CLASS(m.info->id) != TQ_AMQP_CLASS_CONNECTION) {
			tq_amqp_conn_error(c, TQ_AMQP_COMMAND_INVALID,
					   "COMMAND_INVALID - channel 0 is for the connection class",
					   m.info->id);
			return 0;
		}
		conn_method(c, &m);
		return 0;
	}
	if (c->state != AC_RUNNING) {
		tq_amqp_conn_error(c, TQ_AMQP_CHANNEL_ERROR, "CHANNEL_ERROR - connection not open",
				   m.info->id);
		return 0;
	}
	if (f->channel > c->channel_max) {
		tq_amqp_conn_error(c, TQ_AMQP_CHANNEL_ERROR,
				   "CHANNEL_ERROR - channel number above channel-max", m.info->id);
		return 0;
	}
	tq_amqp_chan_method(c, f->channel, &m);
done:
	if (c->retry_frame) { /* no memory for it now: the frame is read again later */
		c->retry_frame = false;
		return 1;
	}
	return 0;
}

void
tq_amqp_conn_resume(struct tq_amqp_conn *c)
{
	struct tq_amqp_worker *wk = c->w->amqp;

	while (c->rx_len && c->state < AC_DEAD && !c->waiting && !c->stalled &&
	       c->ctl_len < CTL_BACKLOG_MAX) {
		struct tq_amqp_frame f;
		uint8_t hdr[TQ_AMQP_FRAME_HDR_LEN];
		const uint8_t *base;
		uint32_t total;
		size_t off;
		ssize_t rc;

		if (wk->ob_n) { /* operations wait for a full ring: read on once they are out */
			tq_amqp_ob_wait(c);
			break;
		}
		if (c->state == AC_HEADER) {
			uint8_t ph[TQ_AMQP_PROTOCOL_HEADER_LEN];
			uint32_t n = RTE_MIN(c->rx_len, (uint32_t)sizeof(ph));

			tq_mbuf_copy_out(c->rx, 0, n, ph);
			rc = tq_amqp_protocol_header_check(ph, n, &off);
			if (rc == TQ_AMQP_NEED_MORE)
				break;
			if (rc < 0) { /* ours, then close (spec 4.2.2) */
				tq_worker_count(c->w, TQ_CTR_amqp_bad_header);
				tq_amqp_send(c, tq_amqp_protocol_header, TQ_AMQP_PROTOCOL_HEADER_LEN);
				conn_close(c);
				break;
			}
			rx_consume(c, TQ_AMQP_PROTOCOL_HEADER_LEN);
			send_start(c);
			continue;
		}
		if (c->rx_len < TQ_AMQP_FRAME_HDR_LEN)
			break;
		tq_mbuf_copy_out(c->rx, 0, TQ_AMQP_FRAME_HDR_LEN, hdr);
		total = TQ_AMQP_FRAME_OVERHEAD + ((uint32_t)hdr[3] << 24 | (uint32_t)hdr[4] << 16 |
						  (uint32_t)hdr[5] << 8 | hdr[6]);
		if (total > (c->frame_max ? c->frame_max : TQ_AMQP_FRAME_MIN_SIZE) ||
		    total < TQ_AMQP_FRAME_OVERHEAD) {
			tq_worker_count(c->w, TQ_CTR_amqp_frame_errors);
			tq_amqp_conn_error(c, TQ_AMQP_FRAME_ERROR, "FRAME_ERROR - frame too large", 0);
			rx_free(c);
			break;
		}
		if (total > c->rx_len)
			break;
		if (c->rx->data_len >= total) {
			base = rte_pktmbuf_mtod(c->rx, const uint8_t *);
		} else {
			tq_mbuf_copy_out(c->rx, 0, total, wk->scratch);
			base = wk->scratch;
		}
		rc = tq_amqp_frame_parse(base, total, c->frame_max, &f, &off);
		if (rc <= 0) {
			tq_worker_count(c->w, TQ_CTR_amqp_frame_errors);
			tq_amqp_conn_error(c, tq_amqp_err_reply((int)rc), tq_amqp_err_text((int)rc), 0);
			rx_free(c);
			break;
		}
		if (handle_frame(c, &f)) {
			c->stalled = true;
			tq_amqp_stall_wait(c); /* tried again within a millisecond of memory back */
			break;
		}
		rx_consume(c, total);
	}
	if (c->unreleased && c->state < AC_DEAD && !c->waiting && !c->stalled && !c->ob_wait &&
	    c->ctl_len < CTL_BACKLOG_MAX) {
		tq_tcp_rx_release(c->tcp, c->unreleased);
		c->unreleased = 0;
	}
}

static int
amqp_connected(struct tq_tcp_conn *t)
{
	struct tq_worker *w = tq_tcp_worker(t);
	struct tq_amqp_worker *wk = w->amqp;
	struct tq_amqp_conn *c;
	uint32_t slot;

	for (slot = 0; slot < wk->nslots; slot++) {
		uint32_t s = (wk->free_hint + slot) % wk->nslots;

		if (!wk->conns[s]) {
			slot = s;
			break;
		}
	}
	if (slot >= wk->nslots)
		return -ENOSPC;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->tcp = t;
	c->w = w;
	c->slot = slot;
	c->gen = ++wk->gens[slot];
	wk->conns[slot] = c;
	wk->free_hint = slot + 1;
	c->last_rx_ms = c->last_tx_ms = tq_msg_now_ms();
	tq_tcp_set_user(t, c);
	hb_arm(c, 20); /* the handshake must finish within 10 s */
	return 0;
}

static void
amqp_data(struct tq_tcp_conn *t, struct rte_mbuf *m)
{
	struct tq_amqp_conn *c = tq_tcp_user(t);
	uint32_t len = rte_pktmbuf_pkt_len(m);

	c->unreleased += len;
	c->last_rx_ms = tq_msg_now_ms();
	if (c->state == AC_DEAD) {
		rte_pktmbuf_free(m);
		tq_tcp_rx_release(t, c->unreleased);
		c->unreleased = 0;
		return;
	}
	if (c->rx_tail)
		c->rx_tail->next = m;
	else
		c->rx = m;
	c->rx_tail = rte_pktmbuf_lastseg(m);
	c->rx_len += len;
	tq_amqp_conn_resume(c);
}

static void
amqp_writable(struct tq_tcp_conn *t)
{
	struct tq_amqp_conn *c = tq_tcp_user(t);

	ctl_flush(c);
	if (!c->ctl) /* held deliveries and credit first: the homes send more meanwhile */
		tq_amqp_chan_output_room(c);
	if (!c->ctl)
		tq_amqp_conn_resume(c);
}

static void
amqp_peer_closed(struct tq_tcp_conn *t)
{
	struct tq_amqp_conn *c = tq_tcp_user(t);

	if (c->state != AC_DEAD)
		conn_close(c);
}

static void
amqp_closed(struct tq_tcp_conn *t, int err)
{
	struct tq_amqp_conn *c = tq_tcp_user(t);
	struct tq_amqp_worker *wk;

	(void)err;
	if (!c)
		return;
	wk = c->w->amqp;
	if (c->chans) {
		for (uint32_t i = 1; i <= c->channel_max; i++)
			if (c->chans[i])
				tq_amqp_chan_free(c, c->chans[i]);
		free(c->chans);
	}
	tq_amqp_conn_drop_exclusive(c);
	if (c->state >= AC_RUNNING || (c->state == AC_DEAD && c->frame_max))
		if (wk->connected)
			wk->connected--;
	tq_timer_stop(&wk->wheel, c->hb_timer);
	rx_free(c);
	tq_tcp_chain_free(c->ctl);
	wk->conns[c->slot] = NULL;
	tq_tcp_set_user(t, NULL);
	free(c);
}

struct tq_amqp_conn *
tq_amqp_conn_by_handle(struct tq_worker *w, uint64_t h)
{
	struct tq_amqp_worker *wk = w->amqp;
	uint32_t slot = TQ_AMQP_H_SLOT(h);
	struct tq_amqp_conn *c;

	if (slot >= wk->nslots || !(c = wk->conns[slot]) || c->gen != TQ_AMQP_H_GEN(h))
		return NULL;
	return c;
}

/*
 * Heartbeats: every half interval, send one if nothing went out for that long; close when
 * nothing came in for two intervals (what RabbitMQ does). Before the handshake ends the
 * same timer bounds it.
 */
static void
hb_arm(struct tq_amqp_conn *c, uint32_t seconds)
{
	struct tq_amqp_worker *wk = c->w->amqp;

	c->hb_timer = tq_timer_start(&wk->wheel, (uintptr_t)c, (uint64_t)seconds * 10 / 2 + 1);
}

void tq_amqp_timer_fired(void *ctx, uint64_t user, uint32_t handle);
void
tq_amqp_timer_fired(void *ctx, uint64_t user, uint32_t handle)
{
	struct tq_amqp_conn *c = (struct tq_amqp_conn *)(uintptr_t)user;
	uint64_t now = tq_msg_now_ms();

	(void)ctx;
	(void)handle;
	c->hb_timer = 0;
	if (c->state == AC_DEAD)
		return;
	if (c->state < AC_RUNNING && c->state != AC_CLOSING) {
		if (now - c->last_rx_ms >= 10000 || c->state <= AC_START_OK) {
			tq_worker_count(c->w, TQ_CTR_amqp_handshake_timeouts);
			c->state = AC_DEAD;
			tq_tcp_close(c->tcp);
			return;
		}
		hb_arm(c, 10);
		return;
	}
	if (!c->heartbeat) {
		if (c->state == AC_CLOSING) /* close-ok never came */
			hb_arm(c, 30);
		return;
	}
	if (now - c->last_rx_ms >= 2000ull * c->heartbeat) {
		tq_worker_count(c->w, TQ_CTR_amqp_heartbeat_timeouts);
		c->state = AC_DEAD;
		tq_tcp_abort(c->tcp); /* on_closed runs now: c is gone */
		return;
	}
	if (now - c->last_tx_ms >= 500ull * c->heartbeat) {
		uint8_t hb[TQ_AMQP_FRAME_OVERHEAD];

		if (tq_amqp_heartbeat_encode(hb, sizeof(hb)) > 0)
			tq_amqp_send(c, hb, sizeof(hb));
	}
	hb_arm(c, c->heartbeat);
}

/* tachyonctl close_connection: RabbitMQ's 320 CONNECTION_FORCED, then the close handshake. */
static void
amqp_kill(struct tq_tcp_conn *t, const char *why)
{
	struct tq_amqp_conn *c = tq_tcp_user(t);
	char text[200];

	if (!c) {
		tq_tcp_abort(t);
		return;
	}
	snprintf(text, sizeof(text), "CONNECTION_FORCED - %s", why);
	tq_amqp_conn_error(c, TQ_AMQP_CONNECTION_FORCED, text, 0);
}

const struct tq_tcp_app tq_amqp_app = {
	.on_connected = amqp_connected,
	.on_data = amqp_data,
	.on_writable = amqp_writable,
	.on_peer_closed = amqp_peer_closed,
	.on_closed = amqp_closed,
	.on_kill = amqp_kill,
};

/* Shutdown (workers stopped): every connection's channels and state go. */
void tq_amqp_conns_free(struct tq_worker *w);
void
tq_amqp_conns_free(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;

	for (uint32_t s = 0; s < wk->nslots; s++)
		if (wk->conns[s])
			amqp_closed(wk->conns[s]->tcp, 0);
}

/* Every tick: connections that waited for memory try again. */
void tq_amqp_conns_unstall(struct tq_worker *w);
void
tq_amqp_conns_unstall(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;

	for (uint32_t s = 0; s < wk->nslots; s++) {
		struct tq_amqp_conn *c = wk->conns[s];

		if (c && c->stalled) {
			c->stalled = false;
			tq_amqp_conn_resume(c);
		}
		/* deliveries that found no mbufs, credit held back while they were short */
		c = wk->conns[s];
		if (c && (c->held_retry || c->credit_owed))
			tq_amqp_chan_output_room(c);
	}
}

/*
 * Memory alarm (RabbitMQ's connection.blocked): when the pools that hold queued payloads run
 * low, every connection that said it understands it is told, and told again when memory is
 * back (low: under a quarter free; back: over half). Checked every tick, and at once when a
body had to be copied (so the clients hear it before reading stops). Reading already stops for a body that finds
 * no memory (stalled); this lets well-behaved publishers stop before that.
 */
void tq_amqp_memory_alarm(struct tq_worker *w);
void
tq_amqp_memory_alarm(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;
	struct rte_mempool *mp = tq_msgdata_pool ? tq_msgdata_pool : w->pool;
	unsigned int avail = rte_mempool_avail_count(mp);
	bool low = avail < mp->size / 4, high = avail > mp->size / 2;

	if ((wk->blocked && !high) || (!wk->blocked && !low))
		return;
	wk->blocked = !wk->blocked;
	if (wk->blocked)
		tq_worker_count(w, TQ_CTR_amqp_memory_alarms);
	for (uint32_t s = 0; s < wk->nslots; s++) {
		struct tq_amqp_conn *c = wk->conns[s];

		if (!c || !c->can_block || c->state != AC_RUNNING)
			continue;
		if (wk->blocked) {
			struct tq_amqp_connection_blocked b = {
				.reason = {.p = (const uint8_t *)"low on memory", .len = 13},
			};

			tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_BLOCKED, &b);
		} else {
			tq_amqp_send_method(c, 0, TQ_AMQP_IDX_CONNECTION_UNBLOCKED, NULL);
		}
	}
}
