/*
 * From a PUBLISH to the sessions that get it: one trie match under RCU (the worker is an
 * online QSBR reader), the matches sorted by session, then each session's share either
 * delivered here (the session is ours) or put in one batch per destination worker and
 * posted on its ring: one descriptor per worker, never one per subscriber. The message is
 * shared by reference; its payload stays in the publisher's receive mbufs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_version.h>

#include "tq_mqtt_int.h"

static void
push_match(struct tq_mqtt_worker *wk, uint64_t key, uint64_t data)
{
	if (wk->nmatches == wk->matches_cap) {
		uint32_t cap = wk->matches_cap * 2;
		struct tq_trie_entry *n = realloc(wk->matches, cap * sizeof(*n));

		if (!n) /* rare growth of a scratch array; without memory the match is cut */
			return;
		wk->matches = n;
		wk->matches_cap = cap;
	}
	wk->matches[wk->nmatches].key = key;
	wk->matches[wk->nmatches].data = data;
	wk->nmatches++;
}

static void
on_entry(void *arg, const struct tq_trie_entry *e)
{
	struct tq_mqtt_worker *wk = arg;

	if (SUBD_NO_LOCAL(e->data) && e->key == wk->pub_origin)
		return; /* no local: not back to the publisher (3.8.3.1) */
	push_match(wk, e->key, e->data);
}

static bool
slot_online(uint64_t key)
{
	const struct tq_mqtt_slot *sl = &tq_mqtt.slots[(uint32_t)key];

	return __atomic_load_n(&sl->online, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&sl->gen, __ATOMIC_RELAXED) == (uint32_t)(key >> 32);
}

/* A shared subscription: one member gets the message, an online one when there is one. */
static void
on_group(void *arg, struct tq_trie_group *g, const struct tq_trie_entry *members, uint32_t n)
{
	struct tq_mqtt_worker *wk = arg;
	uint32_t start;

	if (!n)
		return;
	switch (tq_mqtt.conf.shared_strategy) {
	case TQ_MQTT_SHARED_STICKY:
		start = 0;
		break;
	case TQ_MQTT_SHARED_HASH:
		start = (uint32_t)((wk->pub_origin * 0x9E3779B97F4A7C15ull) >> 32) % n;
		break;
	default:
		start = tq_trie_group_next(g) % n;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct tq_trie_entry *e = &members[(start + i) % n];

		if (slot_online(e->key)) {
			push_match(wk, e->key, e->data);
			return;
		}
	}
	push_match(wk, members[start].key, members[start].data); /* all offline: queue */
}

static int
cmp_key(const void *a, const void *b)
{
	const struct tq_trie_entry *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* The class of the connection of session @key when it is connected here, else normal. */
static unsigned int
session_class(const struct tq_worker *w, uint64_t key)
{
	const struct tq_mqtt_slot *sl = &tq_mqtt.slots[(uint32_t)key];

	if (__atomic_load_n(&sl->owner, __ATOMIC_ACQUIRE) != w->id || !sl->sess ||
	    !sl->sess->conn)
		return TQ_PRIO_NORMAL; /* sess is read by its owner only */
	return tq_tcp_prio(sl->sess->conn->tcp);
}

static void
batch_flush(struct tq_worker *w, uint16_t dst)
{
	struct tq_mqtt_worker *wk = w->mqtt;
	struct tq_mqtt_batch *b = wk->out[dst];
	struct tq_ring_msg rm = {.type = TQ_MSG_MQTT_DELIVER};

	if (!b)
		return;
	wk->out[dst] = NULL;
	rm.b = (uint64_t)(uintptr_t)b;
	if (tq_worker_post(tq_dp.workers[dst], &rm, w) < 0) {
		tq_worker_count(w, TQ_CTR_mqtt_ring_full);
		tq_msg_unref(b->msg);
		rte_mempool_put(tq_mqtt.batch_pool, b);
		return;
	}
	tq_worker_count(w, TQ_CTR_mqtt_batches_tx);
}

static void
batch_add(struct tq_worker *w, uint16_t dst, struct tq_msg *m, const struct tq_trie_entry *e)
{
	struct tq_mqtt_worker *wk = w->mqtt;
	struct tq_mqtt_batch *b = wk->out[dst];

	if (b && b->n == TQ_MQTT_BATCH_MAX) {
		batch_flush(w, dst);
		b = NULL;
	}
	if (!b) {
		if (rte_mempool_get(tq_mqtt.batch_pool, (void **)&b) < 0) {
			tq_worker_count(w, TQ_CTR_mqtt_no_memory);
			return;
		}
		tq_msg_ref(m);
		b->msg = m;
		b->n = 0;
		wk->out[dst] = b;
	}
	b->e[b->n++] = *e;
}

static void
flush_all(struct tq_worker *w)
{
	for (uint16_t d = 0; d < tq_dp.nb_workers; d++)
		if (w->mqtt->out[d])
			batch_flush(w, d);
}

/*
 * Deliver @m to the sessions in @e (sorted by key; a session may appear several times,
 * once per matching subscription): merged per session (highest QoS, every subscription
 * identifier, MQTT-3.3.4-2..5), then queued here, forwarded to the session's owner, or
 * parked until the session arrives. With @only < TQ_PRIO_CLASSES, just the sessions whose
 * connection is of that class (deliver_entries).
 */
static void
deliver_class(struct tq_worker *w, struct tq_msg *m, const struct tq_trie_entry *e, uint32_t n,
	      unsigned int only)
{
	struct tq_mqtt_worker *wk = w->mqtt;
	uint32_t i = 0;

	while (i < n) {
		uint64_t key = e[i].key;
		uint32_t slot = (uint32_t)key, j = i, nids = 0;
		uint32_t ids[TQ_MQTT_QENT_SUBIDS];
		uint8_t qos = 0;
		bool rap = false;
		struct tq_mqtt_slot *sl = &tq_mqtt.slots[slot];
		uint16_t owner;

		if (only < TQ_PRIO_CLASSES && session_class(w, key) != only) {
			while (j < n && e[j].key == key)
				j++;
			i = j;
			continue;
		}
		for (; j < n && e[j].key == key; j++) {
			qos = RTE_MAX(qos, SUBD_QOS(e[j].data));
			rap |= SUBD_RAP(e[j].data);
			if (SUBD_SUBID(e[j].data) && nids < TQ_MQTT_QENT_SUBIDS)
				ids[nids++] = SUBD_SUBID(e[j].data);
		}
		if (__atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE) != (uint32_t)(key >> 32)) {
			tq_worker_count(w, TQ_CTR_mqtt_stale_delivery);
		} else if ((owner = __atomic_load_n(&sl->owner, __ATOMIC_ACQUIRE)) != w->id) {
			for (uint32_t k = i; k < j; k++)
				batch_add(w, owner, m, &e[k]); /* it moved: after it */
		} else if (!sl->sess) { /* on its way here: hold until it arrives */
			for (uint32_t k = i; k < j; k++) {
				struct tq_mqtt_limbo *l = malloc(sizeof(*l));

				if (!l) {
					tq_worker_count(w, TQ_CTR_mqtt_no_memory);
					continue;
				}
				tq_msg_ref(m);
				l->msg = m;
				l->e = e[k];
				l->next = wk->limbo;
				wk->limbo = l;
			}
		} else {
			tq_mqtt_sess_enqueue(w, sl->sess, m, RTE_MIN(qos, m->qos),
					     rap ? m->retain : false, ids, nids);
		}
		i = j;
	}
}

/*
 * Deliver @m to @e[0..n): while the worker has connections of a class other than normal, in
 * three passes (critical, normal, bulk sessions: tq_prio.h), each in key order. A session's
 * class cannot change between the passes: it is set at login (a ring message) and a
 * connection goes only from TCP's callbacks, never from inside a delivery. Sessions not
 * connected here (remote, offline, on their way) count as normal.
 */
static void
deliver_entries(struct tq_worker *w, struct tq_msg *m, const struct tq_trie_entry *e, uint32_t n)
{
	if (likely(!w->prio_conns) || n < 2) {
		deliver_class(w, m, e, n, TQ_PRIO_CLASSES);
		return;
	}
	for (unsigned int o = 0; o < TQ_PRIO_CLASSES; o++)
		deliver_class(w, m, e, n, tq_prio_order[o]);
}

unsigned int
tq_mqtt_route(struct tq_worker *w, struct tq_msg *m, uint64_t origin)
{
	struct tq_mqtt_worker *wk = w->mqtt;
	const struct tq_trie_match_cb cb = {.on_entry = on_entry, .on_group = on_group, .arg = wk};
	uint32_t n, nlocal = 0;

	wk->nmatches = 0;
	wk->pub_origin = origin;
	tq_trie_match(tq_mqtt.trie, tq_msg_topic(m), m->topic_len, &cb);
	n = wk->nmatches;
	if (!n) {
		tq_worker_count(w, TQ_CTR_mqtt_no_match);
		return 0;
	}
	if (n > 1)
		qsort(wk->matches, n, sizeof(wk->matches[0]), cmp_key);
	/* ours first, in place; the rest to their owners */
	for (uint32_t i = 0; i < n; i++) {
		const struct tq_trie_entry *e = &wk->matches[i];
		const struct tq_mqtt_slot *sl = &tq_mqtt.slots[(uint32_t)e->key];
		uint16_t owner = __atomic_load_n(&sl->owner, __ATOMIC_ACQUIRE);

		if (m->qos && SUBD_QOS(e->data) && __atomic_load_n(&sl->full, __ATOMIC_RELAXED))
			wk->throttle = true; /* the publisher waits (TCP back-pressure) */

		if (owner == w->id)
			wk->matches[nlocal++] = *e;
		else
			batch_add(w, owner, m, e);
	}
	deliver_entries(w, m, wk->matches, nlocal);
	flush_all(w);
	return n;
}

void
tq_mqtt_ring_deliver(struct tq_worker *w, const struct tq_ring_msg *rm)
{
	struct tq_mqtt_batch *b = (struct tq_mqtt_batch *)(uintptr_t)rm->b;

	tq_worker_count(w, TQ_CTR_mqtt_batches_rx);
	deliver_entries(w, b->msg, b->e, b->n);
	flush_all(w);
	tq_msg_unref(b->msg);
	rte_mempool_put(tq_mqtt.batch_pool, b);
}

void
tq_mqtt_limbo_drain(struct tq_worker *w, uint32_t slot)
{
	struct tq_mqtt_worker *wk = w->mqtt;
	struct tq_mqtt_limbo *mine = NULL, **pp = &wk->limbo;

	/* take this slot's entries out, oldest first (the list is newest first) */
	while (*pp) {
		struct tq_mqtt_limbo *l = *pp;

		if ((uint32_t)l->e.key == slot) {
			*pp = l->next;
			l->next = mine;
			mine = l;
		} else {
			pp = &l->next;
		}
	}
	while (mine) {
		struct tq_mqtt_limbo *l = mine;

		mine = l->next;
		deliver_entries(w, l->msg, &l->e, 1);
		tq_msg_unref(l->msg);
		free(l);
	}
	flush_all(w);
}

struct retained_ctx {
	struct tq_worker *w;
	struct tq_mqtt_sess *s;
	uint8_t qos;
	uint32_t sub_id;
};

static void
on_retained(void *arg, const char *topic, size_t tlen, void *value)
{
	struct retained_ctx *rc = arg;
	struct tq_msg *m = value;

	(void)topic;
	(void)tlen;
	if (m->expiry_ms && tq_msg_now_ms() >= m->expiry_ms) {
		tq_worker_count(rc->w, TQ_CTR_mqtt_expired);
		return;
	}
	/* enqueue takes its own reference inside our read-side section */
	tq_mqtt_sess_enqueue(rc->w, rc->s, m, RTE_MIN(rc->qos, m->qos), true, &rc->sub_id,
			     rc->sub_id ? 1 : 0);
}

void
tq_mqtt_route_retained(struct tq_worker *w, struct tq_mqtt_sess *s, const char *filter,
		       uint16_t flen, uint8_t qos, uint32_t sub_id)
{
	struct retained_ctx rc = {.w = w, .s = s, .qos = qos, .sub_id = sub_id};

	tq_retain_match(tq_mqtt.retain, filter, flen, on_retained, &rc);
}

static const uint8_t *
rebase(const uint8_t *p, const struct tq_mqtt_props *from, const uint8_t *to)
{
	if (!p || p < from->raw || p >= from->raw + from->raw_len)
		return p;
	return to + (p - from->raw);
}

void
tq_mqtt_msg_set_props(struct tq_msg *m, const struct tq_mqtt_props *props)
{
	uint8_t *raw = (uint8_t *)m->data + m->topic_len;
	struct tq_mqtt_props *p = &m->props;

	*p = *props;
	memcpy(raw, props->raw, props->raw_len);
	m->props_len = props->raw_len;
	p->raw = raw;
	p->content_type.p = rebase(props->content_type.p, props, raw);
	p->response_topic.p = rebase(props->response_topic.p, props, raw);
	p->correlation_data.p = rebase(props->correlation_data.p, props, raw);
	p->user = NULL;
	p->sub_ids = NULL;
	p->sub_id_count = 0;
	/* per delivery: the expiry left, the subscriber's ids; never the publisher's alias */
	p->present &= TQ_MQTT_PBIT(TQ_MQTT_PROP_PAYLOAD_FORMAT) |
		      TQ_MQTT_PBIT(TQ_MQTT_PROP_CONTENT_TYPE) |
		      TQ_MQTT_PBIT(TQ_MQTT_PROP_RESPONSE_TOPIC) |
		      TQ_MQTT_PBIT(TQ_MQTT_PROP_CORRELATION_DATA) | TQ_MQTT_PBIT(TQ_MQTT_PROP_USER);
	if (props->present & TQ_MQTT_PBIT(TQ_MQTT_PROP_MESSAGE_EXPIRY))
		m->expiry_ms = tq_msg_now_ms() + (uint64_t)props->message_expiry * 1000;
}

struct tq_msg *
tq_mqtt_msg_make(struct tq_worker *w, const char *topic, uint16_t tlen, const void *payload,
		 uint32_t plen, uint8_t qos, bool retain, const struct tq_mqtt_props *props)
{
	struct tq_msg *m;
	bool heap;

	m = tq_msg_alloc(tq_mqtt.msg_pool, tlen + (props ? props->raw_len : 0), &heap);
	if (!m)
		return NULL;
	m->qos = qos;
	m->retain = retain;
	m->topic_len = tlen;
	memcpy(m->data, topic, tlen);
	m->payload_len = plen;
	if (plen && !(m->payload = tq_mbuf_from_bytes(w->pool, payload, plen))) {
		tq_msg_unref(m);
		return NULL;
	}
	if (props)
		tq_mqtt_msg_set_props(m, props);
	return m;
}

void
tq_mqtt_publish_will(struct tq_worker *w, struct tq_mqtt_sess *s)
{
	struct tq_msg *m = s->will;

	s->will = NULL;
	tq_timer_stop(&w->mqtt->wheel, s->will_timer);
	s->will_timer = 0;
	if (m->retain && tq_retain_put(tq_mqtt.retain, m->data, m->topic_len,
				       m->payload_len ? m : NULL) == 0 && m->payload_len)
		tq_msg_ref(m);
	m->origin = sess_key(s);
	tq_mqtt_route(w, m, m->origin);
	tq_msg_unref(m);
	tq_worker_count(w, TQ_CTR_mqtt_wills_sent);
}

static void
sys_put(struct tq_worker *w, const char *topic, const char *fmt, uint64_t v)
{
	char payload[64];
	int len = snprintf(payload, sizeof(payload), fmt, v);
	struct tq_msg *m = tq_mqtt_msg_make(w, topic, (uint16_t)strlen(topic), payload,
					    (uint32_t)len, 0, true, NULL);

	if (!m)
		return;
	if (tq_retain_put(tq_mqtt.retain, m->data, m->topic_len, m) == 0)
		tq_msg_ref(m);
	tq_mqtt_route(w, m, 0);
	tq_msg_unref(m);
	tq_worker_count(w, TQ_CTR_mqtt_sys_published);
}

static uint64_t
sum_ctr(unsigned int ctr)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		v += tq_dp.workers[i]->ctr[ctr];
	return v;
}

/* $SYS/broker/...: worker 0, every sys_interval seconds, retained (as mosquitto does). */
void
tq_mqtt_sys_tick(struct tq_worker *w)
{
	struct tq_mqtt_stats st;
	uint64_t now = tq_msg_now_ms();
	char version[64];

	if (w->id != 0 || !tq_mqtt.conf.sys_interval || now < w->mqtt->sys_next_ms)
		return;
	w->mqtt->sys_next_ms = now + (uint64_t)tq_mqtt.conf.sys_interval * 1000;
	tq_mqtt_broker_stats(&st);
	snprintf(version, sizeof(version), "tachyon %s", TQ_VERSION);
	{
		struct tq_msg *m = tq_mqtt_msg_make(w, "$SYS/broker/version", 19, version,
						    (uint32_t)strlen(version), 0, true, NULL);

		if (m) {
			if (tq_retain_put(tq_mqtt.retain, m->data, m->topic_len, m) == 0)
				tq_msg_ref(m);
			tq_mqtt_route(w, m, 0);
			tq_msg_unref(m);
		}
	}
	sys_put(w, "$SYS/broker/uptime", "%lu seconds",
		(now - tq_mqtt.start_ms) / 1000);
	sys_put(w, "$SYS/broker/clients/connected", "%lu", st.clients_connected);
	sys_put(w, "$SYS/broker/clients/total", "%lu", st.sessions);
	sys_put(w, "$SYS/broker/subscriptions/count", "%lu", st.subscriptions);
	sys_put(w, "$SYS/broker/retained messages/count", "%lu", st.retained);
	sys_put(w, "$SYS/broker/messages/received", "%lu", sum_ctr(TQ_CTR_mqtt_publish_in));
	sys_put(w, "$SYS/broker/messages/sent", "%lu",
		sum_ctr(TQ_CTR_mqtt_publish_out) + sum_ctr(TQ_CTR_mqtt_publish_resent));
	sys_put(w, "$SYS/broker/bytes/received", "%lu", sum_ctr(TQ_CTR_mqtt_bytes_in));
	sys_put(w, "$SYS/broker/bytes/sent", "%lu", sum_ctr(TQ_CTR_mqtt_bytes_out));
}

/*
 * The bridge from AMQP: a publish to amq.topic of "/" with routing key a.b reaches MQTT
 * subscribers of a/b ('.' and '/' swap back). Persistent messages (delivery mode 2) are
 * QoS 1, others QoS 0; the body is shared by reference; properties are not carried.
 */
static void
from_amqp(struct tq_worker *w, const struct tq_msg *am)
{
	struct tq_msg *m;
	bool heap;

	if (!w->mqtt || am->topic_len == 0)
		return;
	m = tq_msg_alloc(tq_mqtt.msg_pool, am->topic_len, &heap);
	if (!m) {
		tq_worker_count(w, TQ_CTR_mqtt_no_memory);
		return;
	}
	m->qos = am->qos ? 1 : 0;
	m->topic_len = am->topic_len;
	for (uint16_t i = 0; i < am->topic_len; i++) {
		char ch = tq_msg_topic(am)[i];

		m->data[i] = ch == '.' ? '/' : ch == '/' ? '.' : ch;
	}
	m->payload_len = am->payload_len;
	if (am->payload && !(m->payload = rte_pktmbuf_clone(am->payload, w->pool))) {
		tq_msg_unref(m);
		return;
	}
	if (tq_mqtt_topic_valid((const uint8_t *)m->data, m->topic_len))
		tq_mqtt_route(w, m, 0);
	tq_msg_unref(m);
}

void
tq_mqtt_bridge_init(bool on)
{
	tq_bridge_to_mqtt = on ? from_amqp : NULL;
}
