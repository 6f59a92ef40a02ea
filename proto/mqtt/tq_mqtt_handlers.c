/*
 * One function per packet a client sends (mosquitto's habit): CONNECT with session
 * lookup and take-over, PUBLISH and its acknowledgements, SUBSCRIBE, UNSUBSCRIBE, PINGREQ,
 * DISCONNECT, AUTH. Worker owning the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tq_mqtt_int.h"
#include "tq_mqtt_policy.h"

#define SHARE "$share/"
#define SHARE_LEN (sizeof(SHARE) - 1)

static int
refuse(struct tq_mqtt_conn *c, int err)
{
	struct tq_mqtt_pkt ack = {.type = TQ_MQTT_CONNACK};

	tq_worker_count(c->w, TQ_CTR_mqtt_connects_refused);
	ack.connack.reason = c->level == TQ_MQTT_LEVEL_5 ? tq_mqtt_err_reason(err)
						       : tq_mqtt_err_v3_connack(err);
	if (ack.connack.reason)
		tq_mqtt_send_pkt(c, &ack);
	c->state = CS_CLOSING;
	tq_mqtt_out_flush(c); /* the CONNACK before the FIN */
	tq_tcp_close(c->tcp);
	return -1;
}

void
tq_mqtt_auth_refuse(struct tq_mqtt_conn *c, int err)
{
	refuse(c, err);
}

static int handle_connect(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt);

void
tq_mqtt_auth_replay(struct tq_mqtt_conn *c)
{
	struct tq_mqtt_pkt pkt;
	uint8_t *copy = c->connect_copy;
	int rc;

	c->connect_copy = NULL;
	rc = tq_mqtt_decode(copy, c->connect_len, c->level, &pkt);
	if (rc <= 0 || pkt.type != TQ_MQTT_CONNECT) { /* it decoded the first time */
		free(copy);
		refuse(c, -TQ_MQTT_E_PROTOCOL);
		return;
	}
	c->pkt_raw = copy;
	c->pkt_raw_len = c->connect_len;
	rc = handle_connect(c, &pkt); /* copies what it keeps */
	c->pkt_raw = NULL;
	free(copy);
	if (rc >= 0)
		tq_mqtt_conn_resume_rx(c);
}

static void
free_req(struct tq_mqtt_connreq *req)
{
	if (!req)
		return;
	tq_msg_unref(req->will);
	free(req->client_id);
	free(req);
}

/* The session is here: attach it, answer CONNACK, send what waited. */
static void
bind_session(struct tq_mqtt_conn *c, struct tq_mqtt_sess *s, bool present)
{
	struct tq_mqtt_connreq *req = c->req;
	struct tq_worker *w = c->w;
	struct tq_mqtt_pkt ack = {.type = TQ_MQTT_CONNACK};
	struct tq_mqtt_props *p = &ack.connack.props;

	c->req = NULL;
	if (s->conn) /* take-over: the old connection goes (MQTT-3.1.4-3) */
		tq_mqtt_sess_takeover(w, s);
	tq_mqtt_sess_stop_timers(w, s);
	if (s->will) { /* reconnected before the will's delay ended: no will (3.1.3.2.2) */
		tq_msg_unref(s->will);
		s->will = NULL;
	}
	if (req->clean_start) {
		tq_mqtt_sess_clear(w, s);
		present = false;
	}
	s->conn = c;
	s->level = c->level;
	s->expiry_s = req->expiry_s;
	s->will = req->will;
	s->will_delay_s = req->will_delay_s;
	req->will = NULL;
	c->sess = s;
	c->state = CS_ACTIVE;
	__atomic_store_n(&tq_mqtt.slots[s->slot].online, 1, __ATOMIC_RELAXED);
	w->mqtt->connected++;
	tq_worker_count(w, TQ_CTR_mqtt_connects);
	if (present)
		tq_worker_count(w, TQ_CTR_mqtt_sessions_resumed);

	ack.connack.session_present = present && c->level >= TQ_MQTT_LEVEL_311;
	if (c->level == TQ_MQTT_LEVEL_5) {
		if (req->assigned_id) {
			p->present |= TQ_MQTT_PBIT(TQ_MQTT_PROP_ASSIGNED_CLIENT_ID);
			p->assigned_client_id.p = (const uint8_t *)s->client_id;
			p->assigned_client_id.len = s->client_id_len;
		}
		if (tq_mqtt.conf.max_session_expiry && req->expiry_s != 0 &&
		    req->expiry_s == tq_mqtt.conf.max_session_expiry) {
			p->present |= TQ_MQTT_PBIT(TQ_MQTT_PROP_SESSION_EXPIRY);
			p->session_expiry = req->expiry_s;
		}
		p->present |= TQ_MQTT_PBIT(TQ_MQTT_PROP_RECEIVE_MAX) |
			      TQ_MQTT_PBIT(TQ_MQTT_PROP_MAX_PACKET_SIZE) |
			      TQ_MQTT_PBIT(TQ_MQTT_PROP_TOPIC_ALIAS_MAX) |
			      TQ_MQTT_PBIT(TQ_MQTT_PROP_RETAIN_AVAILABLE) |
			      TQ_MQTT_PBIT(TQ_MQTT_PROP_WILDCARD_SUB_AVAILABLE) |
			      TQ_MQTT_PBIT(TQ_MQTT_PROP_SUB_ID_AVAILABLE) |
			      TQ_MQTT_PBIT(TQ_MQTT_PROP_SHARED_SUB_AVAILABLE);
		p->receive_max = (uint16_t)tq_mqtt.conf.receive_max;
		p->max_packet_size = tq_mqtt.conf.max_packet_size;
		p->topic_alias_max = c->alias_max;
		p->retain_available = 1;
		p->wildcard_sub_available = 1;
		p->sub_id_available = 1;
		p->shared_sub_available = 1;
	}
	if (c->level == TQ_MQTT_LEVEL_5 && tq_mqtt.conf.max_keepalive &&
	    (c->keepalive_s == 0 || c->keepalive_s > tq_mqtt.conf.max_keepalive)) {
		c->keepalive_s = (uint16_t)tq_mqtt.conf.max_keepalive;
		p->present |= TQ_MQTT_PBIT(TQ_MQTT_PROP_SERVER_KEEP_ALIVE);
		p->server_keep_alive = c->keepalive_s;
	}
	if (c->auth_final) { /* SCRAM: server-final goes with the CONNACK */
		p->present |= TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_METHOD) |
			      TQ_MQTT_PBIT(TQ_MQTT_PROP_AUTH_DATA);
		p->auth_method.p = (const uint8_t *)"SCRAM-SHA-256";
		p->auth_method.len = 13;
		p->auth_data.p = c->auth_final;
		p->auth_data.len = c->auth_final_len;
	}
	tq_mqtt_send_pkt(c, &ack);
	free(c->auth_final);
	c->auth_final = NULL;
	tq_mqtt_conn_keepalive_arm(c);
	free_req(req);
	if (present)
		tq_mqtt_sess_resume(w, s);
}

/* Look the client id up; bind, or wait for the session to come from its worker. */
static int
connect_lookup(struct tq_mqtt_conn *c)
{
	struct tq_mqtt_connreq *req = c->req;
	struct tq_worker *w = c->w;
	uint32_t slot, gen;
	uint16_t owner;
	int rc;

	rc = tq_mqtt_dir_get(req->client_id, req->client_id_len, w->id, &slot, &gen, &owner);
	if (rc < 0)
		return refuse(c, -TQ_MQTT_E_SERVER_BUSY);
	if (rc == 1) { /* a new session, here */
		struct tq_mqtt_sess *s = tq_mqtt_sess_new(slot, gen, req->client_id,
							  req->client_id_len);

		if (!s) {
			tq_mqtt_dir_remove(slot);
			return refuse(c, -TQ_MQTT_E_SERVER_BUSY);
		}
		tq_mqtt.slots[slot].sess = s;
		bind_session(c, s, false);
		return 0;
	}
	if (owner == w->id && tq_mqtt.slots[slot].sess) {
		bind_session(c, tq_mqtt.slots[slot].sess, true);
		return 0;
	}
	/* elsewhere (or on its way here): ask its owner; the answer comes on our ring */
	req->slot = slot;
	c->state = CS_WAIT_SESSION;
	c->wait_next = w->mqtt->waiting;
	w->mqtt->waiting = c;
	if (owner != w->id) {
		struct tq_ring_msg m = {.type = TQ_MSG_MQTT_TAKEOVER,
					.a = slot,
					.b = (uint64_t)gen << 16 | w->id};

		if (tq_worker_post(tq_dp.workers[owner], &m, w) < 0) {
			tq_worker_count(w, TQ_CTR_mqtt_ring_full);
			w->mqtt->waiting = c->wait_next;
			c->state = CS_NEW;
			return refuse(c, -TQ_MQTT_E_SERVER_BUSY);
		}
	}
	return 1; /* stop reading until the session is here */
}

static struct tq_mqtt_conn *
take_waiting(struct tq_worker *w, uint32_t slot)
{
	for (struct tq_mqtt_conn **pp = &w->mqtt->waiting; *pp; pp = &(*pp)->wait_next) {
		struct tq_mqtt_conn *c = *pp;

		if (c->req->slot == slot) {
			*pp = c->wait_next;
			c->wait_next = NULL;
			c->state = CS_NEW;
			return c;
		}
	}
	return NULL;
}

/* The session moved here (TQ_MSG_MQTT_MOVED) or was already here (TAKEOVER to ourselves). */
void
tq_mqtt_connect_resume(struct tq_worker *w, uint32_t slot, struct tq_mqtt_sess *sess)
{
	struct tq_mqtt_conn *c = take_waiting(w, slot);

	if (!c) { /* the connection went meanwhile: the session stays here, offline */
		if (!sess->conn)
			tq_mqtt_sess_arm_timers(w, sess);
		return;
	}
	bind_session(c, sess, true);
	tq_mqtt_conn_resume_rx(c);
}

/* The session ended before it could move: start over (a new session). */
void
tq_mqtt_connect_retry(struct tq_worker *w, uint32_t slot)
{
	struct tq_mqtt_conn *c = take_waiting(w, slot);

	if (c && connect_lookup(c) == 0)
		tq_mqtt_conn_resume_rx(c);
}

static int
handle_connect(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt)
{
	const struct tq_mqtt_connect *cn = &pkt->connect;
	struct tq_mqtt_connreq *req;
	struct tq_worker *w = c->w;
	char idbuf[48];
	const char *id = (const char *)cn->client_id.p;
	uint16_t idlen = cn->client_id.len;
	bool assigned = false;
	int rc;

	c->level = cn->level;
	rc = tq_mqtt_auth_connect(c, cn, c->pkt_raw, c->pkt_raw_len);
	if (rc < 0)
		return refuse(c, rc);
	if (rc > 0)
		return rc; /* the control thread answers first */
	if (cn->level == TQ_MQTT_LEVEL_5) {
		c->client_receive_max = cn->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_RECEIVE_MAX)
						? cn->props.receive_max
						: 65535;
		c->client_max_packet = cn->props.present &
						       TQ_MQTT_PBIT(TQ_MQTT_PROP_MAX_PACKET_SIZE)
					       ? cn->props.max_packet_size
					       : 0;
		c->request_problem_info =
			!(cn->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_REQUEST_PROBLEM_INFO)) ||
			cn->props.request_problem_info;
		c->alias_max = (uint16_t)tq_mqtt.conf.topic_alias_max;
		if (cn->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_TOPIC_ALIAS_MAX))
			c->client_alias_max = cn->props.topic_alias_max;
	} else {
		c->client_receive_max = 65535;
	}
	if (idlen == 0) {
		/* 3.1.1: only with clean session (MQTT-3.1.3-7); 3.1: never; 5.0: we assign one */
		if (cn->level == TQ_MQTT_LEVEL_31 ||
		    (cn->level == TQ_MQTT_LEVEL_311 && !cn->clean_start))
			return refuse(c, -TQ_MQTT_E_CLIENT_ID);
		idlen = (uint16_t)snprintf(idbuf, sizeof(idbuf), "tq-auto-%u-%lx", w->id,
					   (unsigned long)(rte_rdtsc() ^ (uintptr_t)c));
		id = idbuf;
		assigned = cn->level == TQ_MQTT_LEVEL_5;
	} else if (cn->level == TQ_MQTT_LEVEL_31 && idlen > 23) {
		return refuse(c, -TQ_MQTT_E_CLIENT_ID); /* 3.1: 1 to 23 characters */
	}
	req = calloc(1, sizeof(*req));
	if (!req || !(req->client_id = malloc((size_t)idlen + 1))) {
		free(req);
		return refuse(c, -TQ_MQTT_E_SERVER_BUSY);
	}
	memcpy(req->client_id, id, idlen);
	req->client_id[idlen] = '\0';
	req->client_id_len = idlen;
	req->assigned_id = assigned;
	req->clean_start = cn->clean_start;
	if (cn->level == TQ_MQTT_LEVEL_5) {
		req->expiry_s = cn->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_SESSION_EXPIRY)
					? cn->props.session_expiry
					: 0;
	} else {
		req->expiry_s = cn->clean_start ? 0 : UINT32_MAX;
	}
	if (tq_mqtt.conf.max_session_expiry && req->expiry_s > tq_mqtt.conf.max_session_expiry)
		req->expiry_s = tq_mqtt.conf.max_session_expiry;
	if (cn->has_will) {
		const struct tq_mqtt_will *wl = &cn->will;

		req->will = tq_mqtt_msg_make(w, (const char *)wl->topic.p, wl->topic.len,
					     wl->payload.p, wl->payload.len, wl->qos, wl->retain,
					     cn->level == TQ_MQTT_LEVEL_5 ? &wl->props : NULL);
		if (!req->will) {
			c->req = req;
			return refuse(c, -TQ_MQTT_E_SERVER_BUSY);
		}
		req->will_delay_s = wl->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_WILL_DELAY)
					    ? wl->props.will_delay
					    : 0;
	}
	c->keepalive_s = cn->keep_alive;
	c->req = req;
	return connect_lookup(c);
}

static int
set_alias(struct tq_mqtt_conn *c, uint16_t a, const struct tq_mqtt_str *topic)
{
	char *t;

	if (!c->aliases) {
		c->aliases = calloc((size_t)c->alias_max + 1, sizeof(*c->aliases));
		if (!c->aliases)
			return -ENOMEM;
	}
	t = malloc(topic->len ? topic->len : 1);
	if (!t)
		return -ENOMEM;
	memcpy(t, topic->p, topic->len);
	free(c->aliases[a].topic);
	c->aliases[a].topic = t;
	c->aliases[a].len = topic->len;
	return 0;
}

static void
send_ack(struct tq_mqtt_conn *c, uint8_t type, uint16_t id, uint8_t reason)
{
	struct tq_mqtt_pkt a = {.type = type};

	a.ack.packet_id = id;
	a.ack.reason = c->level == TQ_MQTT_LEVEL_5 ? reason : 0;
	tq_mqtt_send_pkt(c, &a);
}

static bool
qos2_in_has(const struct tq_mqtt_sess *s, uint16_t id, uint32_t *at)
{
	for (uint32_t i = 0; i < s->qos2_in_n; i++)
		if (s->qos2_in[i] == id) {
			*at = i;
			return true;
		}
	return false;
}

static unsigned int
topic_levels(const uint8_t *p, uint16_t len)
{
	unsigned int n = 1;

	for (uint16_t i = 0; i < len; i++)
		n += p[i] == '/';
	return n;
}

/* Stop reading this publisher for about a millisecond (TCP back-pressure). */
static void
throttle(struct tq_mqtt_conn *c)
{
	if (c->throttled)
		return;
	c->throttled = true;
	c->thr_next = c->w->mqtt->throttled;
	c->w->mqtt->throttled = c;
}

static int
handle_publish(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt, const uint8_t *base,
	       uint32_t pkt_off)
{
	const struct tq_mqtt_publish *p = &pkt->publish;
	struct tq_mqtt_sess *s = c->sess;
	struct tq_worker *w = c->w;
	struct tq_mqtt_str topic = p->topic;
	struct tq_msg *m;
	uint32_t at;
	unsigned int matched;
	bool heap;

	if (c->level == TQ_MQTT_LEVEL_5) {
		if (p->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_SUBSCRIPTION_ID)) {
			tq_mqtt_violation(c, -TQ_MQTT_E_SUB_ID_FROM_CLIENT);
			return -1;
		}
		if (p->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_TOPIC_ALIAS)) {
			uint16_t a = p->props.topic_alias;

			if (a == 0 || a > c->alias_max) {
				tq_mqtt_violation(c, -TQ_MQTT_E_TOPIC_ALIAS);
				return -1;
			}
			if (topic.len) {
				if (set_alias(c, a, &topic)) {
					tq_mqtt_conn_kill(c, 0x97, true);
					return -1;
				}
			} else if (!c->aliases || !c->aliases[a].topic) {
				tq_mqtt_violation(c, -TQ_MQTT_E_ALIAS_UNSET);
				return -1;
			} else {
				topic.p = (const uint8_t *)c->aliases[a].topic;
				topic.len = c->aliases[a].len;
			}
		}
		if (tq_mqtt_payload_format_ok(&p->props, p->payload, p->payload_len)) {
			if (p->qos == 0) {
				tq_mqtt_violation(c, -TQ_MQTT_E_PAYLOAD_FORMAT);
				return -1;
			}
			send_ack(c, p->qos == 1 ? TQ_MQTT_PUBACK : TQ_MQTT_PUBREC, p->packet_id,
				 0x99);
			return 0;
		}
	}
	if (topic.len == 0 || topic.len > tq_mqtt.conf.max_topic_len ||
	    topic_levels(topic.p, topic.len) > tq_mqtt.conf.max_topic_levels) {
		tq_mqtt_violation(c, -TQ_MQTT_E_TOPIC_LIMIT);
		return -1;
	}
	tq_worker_count(w, TQ_CTR_mqtt_publish_in);
	w->ctr[TQ_CTR_mqtt_bytes_in] += p->payload_len;
	if (p->qos == 2) {
		if (qos2_in_has(s, p->packet_id, &at)) { /* a resend: routed already */
			send_ack(c, TQ_MQTT_PUBREC, p->packet_id, 0);
			return 0;
		}
		if (s->qos2_in_n >= tq_mqtt.conf.receive_max) {
			tq_mqtt_violation(c, -TQ_MQTT_E_RECEIVE_MAX);
			return -1;
		}
		if (s->qos2_in_n == s->qos2_in_cap) {
			uint32_t cap = s->qos2_in_cap ? s->qos2_in_cap * 2 : 8;
			uint16_t *n = realloc(s->qos2_in, cap * sizeof(*n));

			if (!n) {
				tq_mqtt_conn_kill(c, 0x97, true);
				return -1;
			}
			s->qos2_in = n;
			s->qos2_in_cap = cap;
		}
	}
	if (!tq_mqtt_acl_publish(c, &topic)) {
		/* 3.1.1 has no way to say no: acknowledged and dropped (mosquitto) */
		tq_worker_count(w, TQ_CTR_mqtt_acl_publish_denied);
		w->ctr[TQ_CTR_mqtt_publish_in]--;
		w->ctr[TQ_CTR_mqtt_bytes_in] -= p->payload_len;
		if (p->qos)
			send_ack(c, p->qos == 1 ? TQ_MQTT_PUBACK : TQ_MQTT_PUBREC, p->packet_id,
				 0x87);
		if (p->qos == 2 && c->level != TQ_MQTT_LEVEL_5)
			s->qos2_in[s->qos2_in_n++] = p->packet_id; /* its PUBREL comes */
		return 0;
	}
	/* $SYS is ours: clients' publishes there are acknowledged and dropped */
	if (topic.len >= 5 && memcmp(topic.p, "$SYS/", 5) == 0) {
		matched = 0;
		goto ack;
	}
	m = tq_msg_alloc(tq_mqtt.msg_pool,
			 topic.len + (c->level == TQ_MQTT_LEVEL_5 ? p->props.raw_len : 0), &heap);
	if (!m) { /* out of messages: QoS 0 goes, QoS 1/2 is read again later */
		tq_worker_count(w, TQ_CTR_mqtt_no_memory);
		if (p->qos == 0)
			return 0;
		w->ctr[TQ_CTR_mqtt_publish_in]--;
		w->ctr[TQ_CTR_mqtt_bytes_in] -= p->payload_len;
		throttle(c);
		return 2;
	}
	if (heap)
		tq_worker_count(w, TQ_CTR_mqtt_msg_heap);
	m->qos = p->qos;
	m->retain = p->retain;
	m->topic_len = topic.len;
	memcpy(m->data, topic.p, topic.len);
	m->origin = sess_key(s);
	m->payload_len = (uint32_t)p->payload_len;
	if (p->payload_len) {
		bool copied;

		m->payload = tq_msg_payload(w->pool, c->rx, pkt_off + (uint32_t)(p->payload - base),
					    (uint32_t)p->payload_len, &copied);
		if (copied)
			tq_worker_count(w, TQ_CTR_mqtt_payload_copied);
		if (!m->payload) { /* no memory for it now: QoS 0 goes, QoS 1/2 waits */
			tq_worker_count(w, TQ_CTR_mqtt_no_memory);
			tq_msg_unref(m);
			if (p->qos == 0)
				return 0;
			w->ctr[TQ_CTR_mqtt_publish_in]--; /* it will be counted when read again */
			w->ctr[TQ_CTR_mqtt_bytes_in] -= p->payload_len;
			throttle(c);
			return 2; /* not consumed: read again shortly */
		}
	}
	if (c->level == TQ_MQTT_LEVEL_5)
		tq_mqtt_msg_set_props(m, &p->props);
	tq_mqtt_policy_expiry(w, m); /* a topics policy's message-ttl */
	if (p->retain) {
		int rc = tq_retain_put(tq_mqtt.retain, m->data, m->topic_len,
				       p->payload_len ? m : NULL);

		if (rc == 0 && p->payload_len)
			tq_msg_ref(m); /* the store's reference */
		if (rc == 0)
			tq_worker_count(w, TQ_CTR_mqtt_retained_set);
		else
			tq_worker_count(w, TQ_CTR_mqtt_retain_full);
	}
	w->mqtt->throttle = false;
	matched = tq_mqtt_route(w, m, m->origin);
	if (unlikely(w->trace.left)) /* tachyonctl trace */
		tq_trace_record(w, 'm', tq_mqtt_conn_user(c), NULL, 0, (const char *)topic.p, topic.len,
				(uint32_t)p->payload_len, p->qos, (int32_t)matched);
	if (tq_bridge_to_amqp) /* amq.topic: AMQP queues bound to a.b get it too */
		tq_bridge_to_amqp(w, m);
	tq_msg_unref(m);
	if (w->mqtt->throttle)
		throttle(c);
ack:
	if (p->qos == 1) {
		send_ack(c, TQ_MQTT_PUBACK, p->packet_id, matched ? 0 : 0x10);
	} else if (p->qos == 2) {
		s->qos2_in[s->qos2_in_n++] = p->packet_id;
		send_ack(c, TQ_MQTT_PUBREC, p->packet_id, matched ? 0 : 0x10);
	}
	return c->throttled ? 1 : 0; /* throttled: read no further for now */
}

static int
handle_pubrel(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_sess *s = c->sess;
	uint32_t at;
	uint8_t reason = 0x92; /* Packet Identifier not found */

	if (qos2_in_has(s, pkt->ack.packet_id, &at)) {
		s->qos2_in[at] = s->qos2_in[--s->qos2_in_n];
		reason = 0;
	}
	send_ack(c, TQ_MQTT_PUBCOMP, pkt->ack.packet_id, reason);
	return 0;
}

/* Split "$share/group/filter"; false when it is malformed. */
static bool
split_share(const struct tq_mqtt_str *f, const char **filter, uint16_t *flen, const char **group,
	    uint16_t *glen)
{
	const char *p = (const char *)f->p;
	uint16_t n = 0;

	*filter = p;
	*flen = f->len;
	*group = NULL;
	*glen = 0;
	if (f->len < SHARE_LEN || memcmp(p, SHARE, SHARE_LEN) != 0)
		return true;
	while (SHARE_LEN + n < f->len && p[SHARE_LEN + n] != '/') {
		if (p[SHARE_LEN + n] == '+' || p[SHARE_LEN + n] == '#')
			return false;
		n++;
	}
	if (n == 0 || SHARE_LEN + n + 1 >= f->len)
		return false;
	*group = p + SHARE_LEN;
	*glen = n;
	*filter = p + SHARE_LEN + n + 1;
	*flen = (uint16_t)(f->len - SHARE_LEN - n - 1);
	return true;
}

static int
handle_subscribe(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt)
{
	const struct tq_mqtt_subscribe *sp = &pkt->subscribe;
	struct tq_mqtt_pkt ack = {.type = TQ_MQTT_SUBACK};
	struct tq_mqtt_sess *s = c->sess;
	struct tq_mqtt_sub_iter it;
	struct tq_mqtt_sub sub;
	uint32_t sub_id = 0, i = 0;
	uint8_t *codes = malloc(sp->count ? sp->count : 1);
	bool *fresh = malloc(sp->count ? sp->count : 1);

	if (!codes || !fresh) {
		free(codes);
		free(fresh);
		tq_mqtt_conn_kill(c, 0x97, true);
		return -1;
	}
	if (c->level == TQ_MQTT_LEVEL_5 &&
	    (sp->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_SUBSCRIPTION_ID)))
		sub_id = sp->props.sub_id;
	tq_mqtt_sub_iter_init(&it, c->level, sp);
	while (i < sp->count && tq_mqtt_next_sub(&it, &sub)) {
		const char *filter, *group;
		uint16_t flen, glen;
		bool existed = false;
		uint8_t qos = sub.qos > 2 ? 2 : sub.qos;
		int rc;

		fresh[i] = false;
		if (!split_share(&sub.filter, &filter, &flen, &group, &glen)) {
			codes[i++] = c->level == TQ_MQTT_LEVEL_5 ? 0x8F : 0x80; /* filter invalid */
			continue;
		}
		if (!tq_mqtt_acl_subscribe(c, filter, flen)) {
			tq_worker_count(c->w, TQ_CTR_mqtt_acl_subscribe_denied);
			codes[i++] = c->level == TQ_MQTT_LEVEL_5 ? 0x87 : 0x80; /* not authorized */
			continue;
		}
		rc = tq_mqtt_sub_add(s, filter, flen, group, glen,
				     SUBD_MAKE(qos, sub.no_local, sub.retain_as_published, sub_id),
				     &existed);
		if (rc == -ENOSPC) {
			codes[i++] = c->level == TQ_MQTT_LEVEL_5 ? 0x97 : 0x80; /* quota */
			continue;
		}
		if (rc < 0) {
			codes[i++] = c->level == TQ_MQTT_LEVEL_5 ? (rc == -EINVAL ? 0x8F : 0x80)
								 : 0x80;
			continue;
		}
		tq_worker_count(c->w, TQ_CTR_mqtt_subscribes);
		codes[i] = qos;
		/* retained messages: handling 0 always, 1 if new, 2 never; none for shares */
		fresh[i] = !group &&
			   (sub.retain_handling == 0 || (sub.retain_handling == 1 && !existed));
		i++;
	}
	ack.suback.packet_id = sp->packet_id;
	ack.suback.count = i;
	ack.suback.codes = codes;
	tq_mqtt_send_pkt(c, &ack);
	/* then the retained messages, after the SUBACK (3.8.4) */
	tq_mqtt_sub_iter_init(&it, c->level, sp);
	for (uint32_t j = 0; j < i && tq_mqtt_next_sub(&it, &sub); j++) {
		if (fresh[j])
			tq_mqtt_route_retained(c->w, s, (const char *)sub.filter.p, sub.filter.len,
					       codes[j], sub_id);
	}
	free(codes);
	free(fresh);
	return 0;
}

static int
handle_unsubscribe(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt)
{
	const struct tq_mqtt_unsubscribe *u = &pkt->unsubscribe;
	struct tq_mqtt_pkt ack = {.type = TQ_MQTT_UNSUBACK};
	struct tq_mqtt_sub_iter it;
	struct tq_mqtt_str f;
	uint8_t *codes = malloc(u->count ? u->count : 1);
	uint32_t i = 0;

	if (!codes) {
		tq_mqtt_conn_kill(c, 0x97, true);
		return -1;
	}
	tq_mqtt_unsub_iter_init(&it, u);
	while (i < u->count && tq_mqtt_next_unsub(&it, &f)) {
		const char *filter, *group;
		uint16_t flen, glen;

		if (split_share(&f, &filter, &flen, &group, &glen) &&
		    tq_mqtt_sub_remove(c->sess, filter, flen, group, glen) == 0) {
			codes[i++] = 0;
			tq_worker_count(c->w, TQ_CTR_mqtt_unsubscribes);
		} else {
			codes[i++] = 0x11; /* No subscription existed */
		}
	}
	ack.suback.packet_id = u->packet_id;
	ack.suback.count = c->level == TQ_MQTT_LEVEL_5 ? i : 0;
	ack.suback.codes = codes;
	tq_mqtt_send_pkt(c, &ack);
	free(codes);
	return 0;
}

static int
handle_disconnect(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt)
{
	struct tq_mqtt_sess *s = c->sess;
	bool with_will = false;

	if (c->level == TQ_MQTT_LEVEL_5) {
		const struct tq_mqtt_disconnect *d = &pkt->disconnect;

		if (d->props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_SESSION_EXPIRY)) {
			if (s->expiry_s == 0 && d->props.session_expiry != 0) {
				tq_mqtt_violation(c, -TQ_MQTT_E_SESSION_EXPIRY_SET);
				return -1;
			}
			s->expiry_s = d->props.session_expiry;
			if (tq_mqtt.conf.max_session_expiry &&
			    s->expiry_s > tq_mqtt.conf.max_session_expiry)
				s->expiry_s = tq_mqtt.conf.max_session_expiry;
		}
		with_will = d->reason == 0x04; /* Disconnect with Will Message */
	}
	tq_worker_count(c->w, TQ_CTR_mqtt_disconnects);
	c->sess = NULL;
	c->w->mqtt->connected--;
	tq_mqtt_sess_detach(c->w, s, with_will);
	tq_mqtt_conn_kill(c, 0, false);
	return -1;
}

int
tq_mqtt_handle(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt, const uint8_t *base,
	       uint32_t pkt_off)
{
	struct tq_mqtt_pkt resp = {0};

	if (c->state == CS_NEW)
		return handle_connect(c, pkt); /* conn_process lets nothing else through */
	if (c->state == CS_AUTH)
		return tq_mqtt_auth_packet(c, pkt); /* nor anything but AUTH here */
	switch (pkt->type) {
	case TQ_MQTT_PUBLISH:
		return handle_publish(c, pkt, base, pkt_off);
	case TQ_MQTT_PUBACK:
	case TQ_MQTT_PUBREC:
	case TQ_MQTT_PUBCOMP:
		tq_mqtt_sess_ack(c->w, c->sess, pkt->type, pkt->ack.packet_id);
		return 0;
	case TQ_MQTT_PUBREL:
		return handle_pubrel(c, pkt);
	case TQ_MQTT_SUBSCRIBE:
		return handle_subscribe(c, pkt);
	case TQ_MQTT_UNSUBSCRIBE:
		return handle_unsubscribe(c, pkt);
	case TQ_MQTT_PINGREQ:
		resp.type = TQ_MQTT_PINGRESP;
		tq_mqtt_send_pkt(c, &resp);
		return 0;
	case TQ_MQTT_DISCONNECT:
		return handle_disconnect(c, pkt);
	case TQ_MQTT_AUTH: /* re-authentication is not offered */
		tq_mqtt_violation(c, -TQ_MQTT_E_BAD_AUTH_METHOD);
		return -1;
	default: /* CONNECT again (MQTT-3.1.0-2), or a packet only servers send */
		tq_mqtt_violation(c, -TQ_MQTT_E_UNEXPECTED_PACKET);
		return -1;
	}
}
