/*
 * Sessions: subscriptions, the queue of messages for the client, what is in flight, the
 * will, and the timers of session expiry and will delay. The owning worker only.
 *
 * Memory: the session and its arrays come from the C heap (CONNECT and SUBSCRIBE paths,
 * not per message); queue entries come from tq_mqtt.qent_pool (per message).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tq_mqtt_int.h"

struct tq_mqtt_sess *
tq_mqtt_sess_new(uint32_t slot, uint32_t gen, const char *id, uint16_t len)
{
	struct tq_mqtt_sess *s = calloc(1, sizeof(*s));

	if (!s || !(s->client_id = malloc((size_t)len + 1))) {
		free(s);
		return NULL;
	}
	memcpy(s->client_id, id, len);
	s->client_id[len] = '\0';
	s->client_id_len = len;
	s->slot = slot;
	s->gen = gen;
	s->next_pkt_id = 1;
	return s;
}

static void
qent_free(struct tq_mqtt_qent *e)
{
	tq_msg_unref(e->msg);
	rte_mempool_put(tq_mqtt.qent_pool, e);
}

/* The publishers may go on once the queue is down to half the limit. */
static void
queue_level(struct tq_mqtt_sess *s)
{
	if (s->q_len < tq_mqtt.conf.max_queued / 2)
		__atomic_store_n(&tq_mqtt.slots[s->slot].full, 0, __ATOMIC_RELAXED);
}

static void
drop_queue(struct tq_mqtt_sess *s, bool qos0_only)
{
	struct tq_mqtt_qent **pp = &s->q_head, *last = NULL;

	while (*pp) {
		struct tq_mqtt_qent *e = *pp;

		if (!qos0_only || e->qos == 0) {
			*pp = e->next;
			qent_free(e);
			s->q_len--;
		} else {
			last = e;
			pp = &e->next;
		}
	}
	s->q_tail = last;
	queue_level(s);
}

void
tq_mqtt_sess_clear(struct tq_worker *w, struct tq_mqtt_sess *s)
{
	(void)w;
	for (uint32_t i = 0; i < s->nsubs; i++) {
		struct tq_mqtt_subrec *r = &s->subs[i];

		tq_trie_remove(tq_mqtt.trie, r->filter, r->flen, r->group, r->glen, sess_key(s));
		free(r->filter);
	}
	s->nsubs = 0;
	drop_queue(s, false);
	for (uint32_t i = 0; i < s->inflight_n; i++)
		qent_free(s->inflight[i]);
	s->inflight_n = 0;
	s->qos2_in_n = 0;
}

void
tq_mqtt_sess_stop_timers(struct tq_worker *w, struct tq_mqtt_sess *s)
{
	tq_timer_stop(&w->mqtt->wheel, s->expiry_timer);
	tq_timer_stop(&w->mqtt->wheel, s->will_timer);
	s->expiry_timer = s->will_timer = 0;
}

void
tq_mqtt_sess_destroy(struct tq_worker *w, struct tq_mqtt_sess *s)
{
	tq_mqtt_sess_stop_timers(w, s);
	tq_mqtt_sess_clear(w, s);
	tq_msg_unref(s->will);
	tq_mqtt_dir_remove(s->slot);
	free(s->subs);
	free(s->inflight);
	free(s->qos2_in);
	free(s->client_id);
	free(s);
}

void
tq_mqtt_sess_detach(struct tq_worker *w, struct tq_mqtt_sess *s, bool lost)
{
	s->conn = NULL;
	__atomic_store_n(&tq_mqtt.slots[s->slot].online, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&tq_mqtt.slots[s->slot].full, 0, __ATOMIC_RELAXED);
	drop_queue(s, true); /* QoS 0 is not kept for offline sessions */
	if (s->will && !lost) { /* a normal DISCONNECT: no will (3.1.2.5) */
		tq_msg_unref(s->will);
		s->will = NULL;
	}
	if (s->will && (s->will_delay_s == 0 || s->expiry_s == 0))
		tq_mqtt_publish_will(w, s);
	if (s->expiry_s == 0) {
		tq_mqtt_sess_destroy(w, s);
		return;
	}
	tq_mqtt_sess_arm_timers(w, s);
}

void
tq_mqtt_sess_takeover(struct tq_worker *w, struct tq_mqtt_sess *s)
{
	struct tq_mqtt_conn *old = s->conn;

	tq_worker_count(w, TQ_CTR_mqtt_takeovers);
	old->sess = NULL;
	w->mqtt->connected--;
	s->conn = NULL;
	__atomic_store_n(&tq_mqtt.slots[s->slot].online, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&tq_mqtt.slots[s->slot].full, 0, __ATOMIC_RELAXED);
	drop_queue(s, true);
	if (s->will && s->will_delay_s == 0) /* the old connection was lost: its will goes */
		tq_mqtt_publish_will(w, s);
	tq_mqtt_conn_kill(old, 0x8E, true); /* Session taken over; no session left to detach */
}

void
tq_mqtt_sess_arm_timers(struct tq_worker *w, struct tq_mqtt_sess *s)
{
	tq_mqtt_sess_stop_timers(w, s);
	if (s->will) /* will delay: sent when it ends or the session does, whichever first */
		s->will_timer = tq_timer_start(&w->mqtt->wheel, (uintptr_t)s | TQ_MQTT_T_WILL,
					       tq_mqtt_ticks(RTE_MIN(s->will_delay_s, s->expiry_s)));
	if (s->expiry_s != UINT32_MAX)
		s->expiry_timer = tq_timer_start(&w->mqtt->wheel, (uintptr_t)s | TQ_MQTT_T_EXPIRY,
						 tq_mqtt_ticks(s->expiry_s) + 1);
}

void
tq_mqtt_timer_fired(void *ctx, uint64_t user, uint32_t handle)
{
	struct tq_worker *w = ctx;
	void *obj = (void *)(uintptr_t)(user & ~(uint64_t)7);

	(void)handle;
	switch (user & 7) {
	case TQ_MQTT_T_KEEPALIVE:
		tq_mqtt_keepalive_fired(w, obj);
		break;
	case TQ_MQTT_T_WILL: {
		struct tq_mqtt_sess *s = obj;

		s->will_timer = 0;
		if (s->will)
			tq_mqtt_publish_will(w, s);
		break;
	}
	case TQ_MQTT_T_EXPIRY: {
		struct tq_mqtt_sess *s = obj;

		s->expiry_timer = 0;
		if (s->will)
			tq_mqtt_publish_will(w, s);
		tq_worker_count(w, TQ_CTR_mqtt_sessions_expired);
		tq_mqtt_sess_destroy(w, s);
		break;
	}
	}
}

static bool
pkt_id_in_use(const struct tq_mqtt_sess *s, uint16_t id)
{
	for (uint32_t i = 0; i < s->inflight_n; i++)
		if (s->inflight[i]->pkt_id == id)
			return true;
	return false;
}

static uint16_t
next_pkt_id(struct tq_mqtt_sess *s)
{
	for (;;) {
		uint16_t id = s->next_pkt_id++;

		if (s->next_pkt_id == 0)
			s->next_pkt_id = 1;
		if (id && !pkt_id_in_use(s, id))
			return id;
	}
}

/*
 * Outbound topic aliases (5.0): the first topics sent to a client that allows aliases get
 * one each, up to its Topic Alias Maximum (capped at TQ_MQTT_OUT_ALIASES); later messages
 * on those topics carry the alias alone. An alias counts as set only once TCP took the
 * PUBLISH that set it. Returns the alias (0: none) and whether this PUBLISH sets it.
 */
static void
out_alias_undo(struct tq_mqtt_conn *c, bool is_new)
{
	if (is_new) { /* the PUBLISH that set it did not go: the client never saw it */
		c->out_alias_n--;
		free(c->out_alias[c->out_alias_n].topic);
		c->out_alias[c->out_alias_n].topic = NULL;
	}
}

static uint16_t
out_alias(struct tq_mqtt_conn *c, const struct tq_msg *m, bool *is_new)
{
	uint16_t n = RTE_MIN(c->client_alias_max, (uint16_t)TQ_MQTT_OUT_ALIASES);

	*is_new = false;
	if (c->level != TQ_MQTT_LEVEL_5 || !n)
		return 0;
	for (uint16_t i = 0; i < c->out_alias_n; i++) {
		struct tq_mqtt_alias *a = &c->out_alias[i];

		if (a->len == m->topic_len && !memcmp(a->topic, tq_msg_topic(m), a->len))
			return (uint16_t)(i + 1);
	}
	if (c->out_alias_n == n)
		return 0;
	if (!c->out_alias && !(c->out_alias = calloc(n, sizeof(*c->out_alias))))
		return 0;
	{
		struct tq_mqtt_alias *a = &c->out_alias[c->out_alias_n];

		a->topic = malloc(m->topic_len ? m->topic_len : 1);
		if (!a->topic)
			return 0;
		memcpy(a->topic, tq_msg_topic(m), m->topic_len);
		a->len = m->topic_len;
		*is_new = true;
		return ++c->out_alias_n;
	}
}

/*
 * Deliveries up to this many bytes (header and payload) are copied into the connection's
 * pending output, so a segment carries many of them: the copy costs less than the two mbufs
 * (header, payload clone) and the references it saves. Larger payloads go by reference.
 */
#define OUT_COPY_MAX 512

/*
 * PUBLISH for @e on @c, into its pending output (tq_mqtt_out_bytes): copied whole up to
 * OUT_COPY_MAX bytes, else the header copied and the payload linked by reference. Returns 0
 * once it is in the pending chain; -ENOBUFS while that chain already holds what TCP could take
 * now (the delivery waits in the queue for on_writable), -ENOMEM (no mbuf), -EMSGSIZE.
 */
static int
send_publish(struct tq_worker *w, struct tq_mqtt_conn *c, struct tq_mqtt_qent *e, bool dup)
{
	struct tq_msg *m = e->msg;
	struct tq_mqtt_publish pub = {0};
	struct rte_mbuf *body = NULL;
	uint8_t buf[OUT_COPY_MAX], *hbuf;
	uint16_t alias = 0;
	bool alias_new = false;
	uint64_t now, total;
	ssize_t hlen;
	int rc;

	pub.dup = dup;
	pub.qos = e->qos;
	pub.retain = e->retain;
	pub.packet_id = e->pkt_id;
	pub.topic.p = (const uint8_t *)tq_msg_topic(m);
	pub.topic.len = m->topic_len;
	if (c->level == TQ_MQTT_LEVEL_5) {
		pub.props = m->props;
		if (m->expiry_ms) {
			now = tq_msg_now_ms();
			pub.props.present |= TQ_MQTT_PBIT(TQ_MQTT_PROP_MESSAGE_EXPIRY);
			pub.props.message_expiry =
				(uint32_t)((m->expiry_ms > now ? m->expiry_ms - now : 0) + 999) / 1000;
		}
		if (e->nsub_ids) {
			pub.props.present |= TQ_MQTT_PBIT(TQ_MQTT_PROP_SUBSCRIPTION_ID);
			pub.props.sub_ids = e->sub_ids;
			pub.props.sub_id_count = e->nsub_ids;
		}
	}
	alias = out_alias(c, m, &alias_new);
	if (alias) {
		pub.props.present |= TQ_MQTT_PBIT(TQ_MQTT_PROP_TOPIC_ALIAS);
		pub.props.topic_alias = alias;
		if (!alias_new)
			pub.topic.len = 0; /* the alias stands for the topic (3.3.2.3.4) */
	}
	hlen = tq_mqtt_publish_header_len(c->level, &pub, m->payload_len);
	if (hlen < 0)
		return out_alias_undo(c, alias_new), -EMSGSIZE;
	if (c->client_max_packet && (uint64_t)hlen + m->payload_len > c->client_max_packet)
		return out_alias_undo(c, alias_new), -EMSGSIZE;
	total = (uint64_t)hlen + m->payload_len;
	if (c->ctl_len && c->ctl_len + total > tq_tcp_send_space(c->tcp))
		return out_alias_undo(c, alias_new), -ENOBUFS;
	if (total <= sizeof(buf)) {
		tq_mqtt_encode_publish_header(buf, (size_t)hlen, c->level, &pub, m->payload_len);
		if (m->payload_len)
			tq_mbuf_copy_out(m->payload, 0, m->payload_len, buf + hlen);
		rc = tq_mqtt_out_bytes(c, buf, (uint32_t)total);
	} else {
		/* a long topic: through the scratch buffer */
		hbuf = (size_t)hlen <= sizeof(buf) ? buf : w->mqtt->scratch;
		tq_mqtt_encode_publish_header(hbuf, (size_t)hlen, c->level, &pub, m->payload_len);
		if (m->payload && !(body = rte_pktmbuf_clone(m->payload, w->pool))) {
			tq_worker_count(w, TQ_CTR_mbuf_alloc_failed);
			rc = -ENOMEM;
		} else {
			rc = tq_mqtt_out_bytes(c, hbuf, (uint32_t)hlen);
			if (rc == 0 && body)
				tq_mqtt_out_chain(c, body);
			else
				rte_pktmbuf_free(body);
		}
	}
	if (rc) {
		out_alias_undo(c, alias_new);
		return rc;
	}
	tq_mqtt_out_done(c);
	tq_worker_count(w, dup ? TQ_CTR_mqtt_publish_resent : TQ_CTR_mqtt_publish_out);
	w->ctr[TQ_CTR_mqtt_bytes_out] += m->payload_len;
	return 0;
}

static uint32_t
inflight_limit(const struct tq_mqtt_sess *s)
{
	uint32_t lim = tq_mqtt.conf.max_inflight;

	if (s->conn && s->conn->client_receive_max < lim)
		lim = s->conn->client_receive_max;
	return lim;
}

void
tq_mqtt_sess_pump(struct tq_worker *w, struct tq_mqtt_sess *s)
{
	struct tq_mqtt_conn *c = s->conn;

	if (!c || c->state != CS_ACTIVE)
		return;
	while (s->q_head) {
		struct tq_mqtt_qent *e = s->q_head;
		bool dup = e->pkt_id != 0; /* back in the queue after a resume */
		int rc;

		if (e->qos && s->inflight_n >= inflight_limit(s))
			break;
		if (e->qos && !s->inflight) {
			s->inflight = calloc(tq_mqtt.conf.max_inflight, sizeof(*s->inflight));
			if (!s->inflight)
				break;
			s->inflight_cap = tq_mqtt.conf.max_inflight;
		}
		if (!dup && e->msg->expiry_ms && tq_msg_now_ms() >= e->msg->expiry_ms) {
			tq_worker_count(w, TQ_CTR_mqtt_expired);
			rc = -ETIMEDOUT;
		} else {
			if (e->qos && !dup)
				e->pkt_id = next_pkt_id(s);
			rc = send_publish(w, c, e, dup);
		}
		if (rc == -ENOBUFS || rc == -ENOMEM) { /* it stays first in the queue */
			if (!dup)
				e->pkt_id = 0;
			if (rc == -ENOMEM) { /* counted; the next flush pumps again */
				c->pump_retry = true;
				tq_mqtt_out_done(c);
			} else {
				tq_tcp_want_writable(c->tcp);
			}
			break;
		}
		s->q_head = e->next;
		if (!s->q_head)
			s->q_tail = NULL;
		s->q_len--;
		e->next = NULL;
		if (rc == -EMSGSIZE)
			tq_worker_count(w, TQ_CTR_mqtt_too_large_for_client);
		if (rc || e->qos == 0) {
			qent_free(e);
			continue;
		}
		e->state = e->qos == 1 ? QE_WAIT_PUBACK : QE_WAIT_PUBREC;
		s->inflight[s->inflight_n++] = e;
	}
	queue_level(s);
}

void
tq_mqtt_sess_resume(struct tq_worker *w, struct tq_mqtt_sess *s)
{
	struct tq_mqtt_qent *front = NULL, **tail = &front;
	uint32_t keep = 0;

	/* unacknowledged PUBLISHes go again, first, with DUP (4.4); PUBRELs again as such */
	for (uint32_t i = 0; i < s->inflight_n; i++) {
		struct tq_mqtt_qent *e = s->inflight[i];

		if (e->state == QE_WAIT_PUBCOMP) {
			struct tq_mqtt_pkt rel = {.type = TQ_MQTT_PUBREL};

			rel.ack.packet_id = e->pkt_id;
			tq_mqtt_send_pkt(s->conn, &rel);
			s->inflight[keep++] = e;
		} else {
			e->state = QE_QUEUED;
			*tail = e;
			tail = &e->next;
			s->q_len++;
		}
	}
	s->inflight_n = keep;
	if (front) {
		*tail = s->q_head;
		if (!s->q_head)
			s->q_tail = container_of(tail, struct tq_mqtt_qent, next);
		s->q_head = front;
	}
	tq_mqtt_sess_pump(w, s);
}

void
tq_mqtt_sess_enqueue(struct tq_worker *w, struct tq_mqtt_sess *s, struct tq_msg *m, uint8_t qos,
		     bool retain, const uint32_t *sub_ids, uint32_t nsub_ids)
{
	struct tq_mqtt_qent *e;

	if (qos == 0 && !s->conn) {
		tq_worker_count(w, TQ_CTR_mqtt_qos0_offline);
		return;
	}
	/*
	 * Past max_queued QoS 0 is dropped; QoS 1/2 for a connected client is still taken, up
	 * to twice the limit, while the publishers are paused (the slot's full flag, read by
	 * tq_mqtt_route). An offline session cannot drain: it holds max_queued, no more, and
	 * never pauses publishers.
	 */
	if (s->q_len >= (qos && s->conn ? 2 * tq_mqtt.conf.max_queued : tq_mqtt.conf.max_queued)) {
		tq_worker_count(w, TQ_CTR_mqtt_queue_full);
		return;
	}
	if (rte_mempool_get(tq_mqtt.qent_pool, (void **)&e) < 0) {
		tq_worker_count(w, TQ_CTR_mqtt_no_memory);
		if (qos && s->conn) /* its publishers wait until it drains */
			__atomic_store_n(&tq_mqtt.slots[s->slot].full, 1, __ATOMIC_RELAXED);
		return;
	}
	memset(e, 0, sizeof(*e));
	tq_msg_ref(m);
	e->msg = m;
	e->qos = qos;
	e->retain = retain;
	e->nsub_ids = (uint8_t)RTE_MIN(nsub_ids, (uint32_t)TQ_MQTT_QENT_SUBIDS);
	memcpy(e->sub_ids, sub_ids, e->nsub_ids * sizeof(uint32_t));
	if (s->q_tail)
		s->q_tail->next = e;
	else
		s->q_head = e;
	s->q_tail = e;
	s->q_len++;
	if (s->q_len >= tq_mqtt.conf.max_queued && s->conn)
		__atomic_store_n(&tq_mqtt.slots[s->slot].full, 1, __ATOMIC_RELAXED);
	if (s->conn)
		tq_mqtt_sess_pump(w, s);
}

void
tq_mqtt_sess_ack(struct tq_worker *w, struct tq_mqtt_sess *s, uint8_t type, uint16_t id)
{
	uint32_t i;
	struct tq_mqtt_qent *e = NULL;

	for (i = 0; i < s->inflight_n; i++)
		if (s->inflight[i]->pkt_id == id) {
			e = s->inflight[i];
			break;
		}
	if (!e) /* unknown or already acknowledged: nothing to do (a resend crossed it) */
		return;
	if (type == TQ_MQTT_PUBREC && (e->state == QE_WAIT_PUBREC || e->state == QE_WAIT_PUBCOMP)) {
		struct tq_mqtt_pkt rel = {.type = TQ_MQTT_PUBREL};

		e->state = QE_WAIT_PUBCOMP;
		tq_msg_unref(e->msg);
		e->msg = NULL;
		rel.ack.packet_id = id;
		tq_mqtt_send_pkt(s->conn, &rel);
		return;
	}
	if ((type == TQ_MQTT_PUBACK && e->state == QE_WAIT_PUBACK) ||
	    (type == TQ_MQTT_PUBCOMP && e->state == QE_WAIT_PUBCOMP)) {
		memmove(&s->inflight[i], &s->inflight[i + 1],
			(s->inflight_n - i - 1) * sizeof(s->inflight[0]));
		s->inflight_n--;
		qent_free(e);
		tq_mqtt_sess_pump(w, s);
	}
}

int
tq_mqtt_sub_add(struct tq_mqtt_sess *s, const char *filter, uint16_t flen, const char *group,
		uint16_t glen, uint64_t data, bool *existed)
{
	struct tq_mqtt_subrec *r = NULL;
	int rc;

	*existed = false;
	for (uint32_t i = 0; i < s->nsubs; i++) {
		struct tq_mqtt_subrec *x = &s->subs[i];

		if (x->flen == flen && x->glen == glen && !memcmp(x->filter, filter, flen) &&
		    (!glen || !memcmp(x->group, group, glen))) {
			r = x;
			*existed = true;
			break;
		}
	}
	if (!r) {
		char *copy;

		if (s->nsubs >= tq_mqtt.conf.max_subs)
			return -ENOSPC;
		if (s->nsubs == s->subs_cap) {
			uint32_t cap = s->subs_cap ? s->subs_cap * 2 : 4;
			struct tq_mqtt_subrec *n = realloc(s->subs, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			s->subs = n;
			s->subs_cap = cap;
		}
		copy = malloc((size_t)flen + glen + 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, filter, flen);
		if (glen)
			memcpy(copy + flen, group, glen);
		r = &s->subs[s->nsubs];
		r->filter = copy;
		r->flen = flen;
		r->group = glen ? copy + flen : NULL;
		r->glen = glen;
	}
	rc = tq_trie_add(tq_mqtt.trie, r->filter, r->flen, r->group, r->glen, sess_key(s), data);
	if (rc < 0) {
		if (!*existed)
			free(r->filter);
		return rc;
	}
	r->data = data;
	if (!*existed)
		s->nsubs++;
	return 0;
}

int
tq_mqtt_sub_remove(struct tq_mqtt_sess *s, const char *filter, uint16_t flen, const char *group,
		   uint16_t glen)
{
	for (uint32_t i = 0; i < s->nsubs; i++) {
		struct tq_mqtt_subrec *x = &s->subs[i];

		if (x->flen == flen && x->glen == glen && !memcmp(x->filter, filter, flen) &&
		    (!glen || !memcmp(x->group, group, glen))) {
			tq_trie_remove(tq_mqtt.trie, x->filter, x->flen, x->group, x->glen,
				       sess_key(s));
			free(x->filter);
			s->subs[i] = s->subs[--s->nsubs];
			return 0;
		}
	}
	return -ENOENT;
}
