/*
 * The broker's shared state and its place in the worker loop: configuration, pools, the
 * trie and retained store, each worker's MQTT part, the ring messages that move sessions
 * between workers, and housekeeping (timers, $SYS).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_lcore.h>
#include <rte_malloc.h>
#include <urcu/urcu-qsbr.h>

#include "tq_mqtt_int.h"

struct tq_mqtt_global tq_mqtt;

void
tq_mqtt_conf_defaults(struct tq_mqtt_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->port = 0;
	c->allow_anonymous = 0;
	c->max_keepalive = 65535;
	c->max_packet_size = 1 << 20;
	c->receive_max = 100;
	c->max_inflight = 100;
	c->max_queued = 1000;
	c->max_sessions = 65536;
	c->max_session_expiry = 0;
	c->max_topic_len = 65535;
	c->max_topic_levels = 128;
	c->max_subs = 1000;
	c->topic_alias_max = 16;
	c->max_retained = 100000;
	c->sys_interval = 10;
	c->shared_strategy = TQ_MQTT_SHARED_ROUND_ROBIN;
	c->msg_pool = 16383;
}

/* TAKEOVER: hand the session to the worker where its client reconnected. */
static void
ring_takeover(struct tq_worker *w, const struct tq_ring_msg *rm)
{
	uint32_t slot = rm->a, gen = (uint32_t)(rm->b >> 16);
	uint16_t dst = (uint16_t)rm->b;
	struct tq_mqtt_slot *sl = &tq_mqtt.slots[slot];
	struct tq_mqtt_sess *s = sl->sess;
	uint16_t owner = __atomic_load_n(&sl->owner, __ATOMIC_ACQUIRE);
	struct tq_ring_msg out = {.a = slot};

	if (__atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE) != gen) { /* it ended: start over */
		out.type = TQ_MSG_MQTT_RETRY;
		if (tq_worker_post(tq_dp.workers[dst], &out, w) < 0)
			tq_worker_count(w, TQ_CTR_mqtt_ring_full);
		return;
	}
	if (owner != w->id) { /* it moved on meanwhile: ask its owner */
		if (tq_worker_post(tq_dp.workers[owner], rm, w) < 0)
			tq_worker_count(w, TQ_CTR_mqtt_ring_full);
		return;
	}
	if (!s) /* on its way to us: ring_moved will serve the waiting connection */
		return;
	if (dst == w->id) { /* it came to us before this request did */
		tq_mqtt_connect_resume(w, slot, s);
		return;
	}
	if (s->conn)
		tq_mqtt_sess_takeover(w, s);
	tq_mqtt_sess_stop_timers(w, s);
	sl->sess = NULL;
	__atomic_store_n(&sl->owner, dst, __ATOMIC_RELEASE);
	out.type = TQ_MSG_MQTT_MOVED;
	out.b = (uint64_t)(uintptr_t)s;
	tq_worker_count(w, TQ_CTR_mqtt_session_moves);
	if (tq_worker_post(tq_dp.workers[dst], &out, w) < 0) {
		/* its ring is full: the session may not be lost, so it waits here for the tick */
		struct tq_mqtt_outbox *o = malloc(sizeof(*o));

		if (!o) { /* cannot hold it: end the session rather than lose track of it */
			tq_mqtt_sess_destroy(w, s);
			return;
		}
		o->msg = out;
		o->dst = dst;
		o->next = w->mqtt->outbox;
		w->mqtt->outbox = o;
	}
}

static void
outbox_retry(struct tq_worker *w)
{
	struct tq_mqtt_outbox **pp = &w->mqtt->outbox;

	while (*pp) {
		struct tq_mqtt_outbox *o = *pp;

		if (tq_worker_post(tq_dp.workers[o->dst], &o->msg, w) == 0) {
			*pp = o->next;
			free(o);
		} else {
			pp = &o->next;
		}
	}
}

static void
ring_moved(struct tq_worker *w, const struct tq_ring_msg *rm)
{
	struct tq_mqtt_sess *s = (struct tq_mqtt_sess *)(uintptr_t)rm->b;

	tq_mqtt.slots[rm->a].sess = s;
	tq_mqtt_limbo_drain(w, rm->a);
	tq_mqtt_connect_resume(w, rm->a, s);
}

static void
ring_retry(struct tq_worker *w, const struct tq_ring_msg *rm)
{
	tq_mqtt_connect_retry(w, rm->a);
}

static void
mqtt_tick(struct tq_worker *w)
{
	struct tq_mqtt_worker *wk = w->mqtt;

	if (!wk)
		return;
	tq_timer_advance(&wk->wheel, (tq_msg_now_ms() - wk->wheel_t0_ms) / 100, tq_mqtt_timer_fired,
			 w, 4096);
	tq_mqtt_sys_tick(w);
	if (wk->outbox)
		outbox_retry(w);
}

/* Every loop iteration: paused publishers read again once a millisecond has passed. */
static unsigned int
mqtt_poll(struct tq_worker *w)
{
	struct tq_mqtt_worker *wk = w->mqtt;
	unsigned int work;
	uint64_t now;

	if (!wk)
		return 0;
	work = tq_mqtt_conns_flush(w); /* this iteration's output, critical connections first */
	if (!wk->throttled)
		return work;
	now = tq_msg_now_ms();
	if (now == wk->throttle_ms)
		return work;
	wk->throttle_ms = now;
	tq_mqtt_throttle_tick(w);
	return work + 1;
}

/* The largest max_packet_size every worker's scratch holds (cp: rw at boot and under the tune
 * barrier). */
static uint32_t scratch_packet_size;

static int
worker_init(struct tq_worker *w, const struct tq_mqtt_conf *conf)
{
	struct tq_mqtt_worker *wk = rte_zmalloc_socket("tq_mqtt_worker", sizeof(*wk),
						       RTE_CACHE_LINE_SIZE, w->socket);

	if (!wk)
		return -ENOMEM;
	w->mqtt = wk;
	wk->scratch = rte_malloc_socket("tq_mqtt_scratch", (size_t)conf->max_packet_size + 16, 0,
					w->socket);
	wk->matches_cap = 1024;
	wk->matches = malloc(wk->matches_cap * sizeof(*wk->matches));
	if (!wk->scratch || !wk->matches)
		return -ENOMEM;
	scratch_packet_size = conf->max_packet_size;
	wk->wheel_t0_ms = tq_msg_now_ms();
	return tq_timer_wheel_init(&wk->wheel, 2 * conf->max_sessions + 1024, 100 * 1000 * 1000,
				   w->socket);
}

static void
worker_free(struct tq_worker *w)
{
	struct tq_mqtt_worker *wk = w->mqtt;

	if (!wk)
		return;
	while (wk->outbox) {
		struct tq_mqtt_outbox *o = wk->outbox;

		wk->outbox = o->next;
		free(o);
	}
	while (wk->limbo) {
		struct tq_mqtt_limbo *l = wk->limbo;

		wk->limbo = l->next;
		tq_msg_unref(l->msg);
		free(l);
	}
	tq_timer_wheel_free(&wk->wheel);
	rte_free(wk->scratch);
	free(wk->matches);
	rte_free(wk);
	w->mqtt = NULL;
}

int
tq_mqtt_broker_start(const struct tq_mqtt_conf *conf)
{
	int rc = -ENOMEM;

	if (!conf->port)
		return 0;
	tq_mqtt.conf = *conf;
	tq_mqtt.start_ms = tq_msg_now_ms();
	tq_mqtt.trie = tq_trie_create(TQ_TRIE_MQTT);
	tq_mqtt.retain = tq_retain_create(tq_msg_release);
	if (!tq_mqtt.trie || !tq_mqtt.retain)
		goto fail;
	tq_retain_set_limit(tq_mqtt.retain, conf->max_retained);
	tq_mqtt.msg_pool = tq_msg_pool_create("tq_msg", conf->msg_pool, SOCKET_ID_ANY);
	tq_mqtt.qent_pool = rte_mempool_create("tq_mqtt_qent", 4 * conf->msg_pool + 3,
					       sizeof(struct tq_mqtt_qent), 256, 0, NULL, NULL,
					       NULL, NULL, SOCKET_ID_ANY, 0);
	tq_mqtt.batch_pool = rte_mempool_create("tq_mqtt_batch", 4095, sizeof(struct tq_mqtt_batch),
						64, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	if (!tq_mqtt.msg_pool || !tq_mqtt.qent_pool || !tq_mqtt.batch_pool)
		goto fail;
	if ((rc = tq_mqtt_dir_init(conf->max_sessions)) < 0)
		goto fail;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if ((rc = worker_init(tq_dp.workers[i], conf)) < 0)
			goto fail;
	tq_worker_app_register(TQ_MSG_MQTT_DELIVER, tq_mqtt_ring_deliver);
	tq_worker_app_register(TQ_MSG_MQTT_TAKEOVER, ring_takeover);
	tq_worker_app_register(TQ_MSG_MQTT_MOVED, ring_moved);
	tq_worker_app_register(TQ_MSG_MQTT_RETRY, ring_retry);
	tq_worker_app_register(TQ_MSG_MQTT_AUTH, tq_mqtt_auth_answer);
	tq_worker_app_tick(mqtt_tick);
	tq_worker_app_poll(mqtt_poll);
	tq_mqtt_bridge_init(true);
	rc = tq_tcp_listen((uint16_t)conf->port, &tq_mqtt_app, NULL);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	tq_mqtt_broker_close();
	return rc < 0 ? rc : -ENOMEM;
}

/*
 * Shutdown, workers stopped: what is still on the rings is handled, then every session
 * and connection is freed without wills (the router is going away, not the clients).
 */
void
tq_mqtt_broker_close(void)
{
	if (!tq_mqtt.slots && !tq_mqtt.trie)
		return;
	tq_mqtt_bridge_init(false);
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i] && tq_dp.workers[i]->mqtt)
			while (tq_worker_drain_inbound(tq_dp.workers[i]))
				;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
		struct tq_worker *w = tq_dp.workers[i];

		if (!w || !w->mqtt)
			continue;
		tq_mqtt_conns_free(w);
		for (struct tq_mqtt_outbox *o = w->mqtt->outbox; o; o = o->next) /* to their owner */
			tq_mqtt.slots[o->msg.a].sess = (struct tq_mqtt_sess *)(uintptr_t)o->msg.b;
	}
	if (tq_mqtt.slots)
		for (uint32_t i = 0; i < tq_mqtt.conf.max_sessions; i++) {
			struct tq_mqtt_slot *sl = &tq_mqtt.slots[i];

			if (sl->used && sl->sess) {
				struct tq_worker *w = tq_dp.workers[sl->owner];

				sl->sess->will = (tq_msg_unref(sl->sess->will), NULL);
				tq_mqtt_sess_destroy(w, sl->sess);
			}
		}
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i])
			worker_free(tq_dp.workers[i]);
	if (tq_mqtt.retain)
		tq_retain_destroy(tq_mqtt.retain);
	if (tq_mqtt.trie)
		tq_trie_destroy(tq_mqtt.trie);
	urcu_qsbr_barrier(); /* released messages go back to the pools before they go */
	tq_mqtt_dir_free();
	rte_mempool_free(tq_mqtt.batch_pool);
	rte_mempool_free(tq_mqtt.qent_pool);
	rte_mempool_free(tq_mqtt.msg_pool);
	memset(&tq_mqtt, 0, sizeof(tq_mqtt));
}

void
tq_mqtt_broker_stats(struct tq_mqtt_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!tq_mqtt.trie)
		return;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i]->mqtt)
			s->clients_connected += tq_dp.workers[i]->mqtt->connected;
	s->sessions = tq_mqtt_dir_count();
	s->subscriptions = tq_trie_count(tq_mqtt.trie);
	s->trie_nodes = tq_trie_nodes(tq_mqtt.trie);
	s->retained = tq_retain_count(tq_mqtt.retain);
}

void
tq_mqtt_broker_errors(void (*fn)(void *arg, const char *name, uint64_t n), void *arg)
{
	if (!tq_mqtt.trie)
		return;
	for (int e = 1; e < TQ_MQTT_E_COUNT; e++) {
		uint64_t n = 0;

		for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
			if (tq_dp.workers[i]->mqtt)
				n += tq_dp.workers[i]->mqtt->errors[e];
		if (n)
			fn(arg, tq_mqtt_err_name(e), n);
	}
}

int
tq_mqtt_broker_conf_get(struct tq_mqtt_conf *out)
{
	if (!tq_mqtt.conf.port)
		return -ENOTSUP;
	*out = tq_mqtt.conf;
	return 0;
}

/* The fields a running broker reads afresh each time it needs them (all uint32_t). */
static const size_t live_fields[] = {
	offsetof(struct tq_mqtt_conf, allow_anonymous),
	offsetof(struct tq_mqtt_conf, max_keepalive),
	offsetof(struct tq_mqtt_conf, max_packet_size),
	offsetof(struct tq_mqtt_conf, receive_max),
	offsetof(struct tq_mqtt_conf, max_inflight),
	offsetof(struct tq_mqtt_conf, max_queued),
	offsetof(struct tq_mqtt_conf, max_session_expiry),
	offsetof(struct tq_mqtt_conf, max_topic_len),
	offsetof(struct tq_mqtt_conf, max_topic_levels),
	offsetof(struct tq_mqtt_conf, max_subs),
	offsetof(struct tq_mqtt_conf, topic_alias_max),
	offsetof(struct tq_mqtt_conf, max_retained),
	offsetof(struct tq_mqtt_conf, sys_interval),
};

int
tq_mqtt_broker_conf_apply(const struct tq_mqtt_conf *next, char *err, size_t cap)
{
	if (!tq_mqtt.conf.port)
		return -ENOTSUP;
	/* A session sizes its in-flight array once, from the value then in force, and the
	 * senders trust the limit: never above what the smallest array holds. */
	if (next->max_inflight > tq_mqtt.conf.max_inflight) {
		snprintf(err, cap, "mqtt.max_inflight: at most %u while tachyond runs (higher "
			 "needs a restart)", tq_mqtt.conf.max_inflight);
		return -EPERM;
	}
	if (next->max_packet_size > scratch_packet_size) {
		for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
			struct tq_worker *w = tq_dp.workers[i];
			uint8_t *p;

			if (!w->mqtt)
				continue;
			p = rte_realloc_socket(w->mqtt->scratch,
					       (size_t)next->max_packet_size + 16, 0, w->socket);
			if (!p)
				return -ENOMEM; /* the ones already grown are merely larger */
			w->mqtt->scratch = p;
		}
		scratch_packet_size = next->max_packet_size;
	}
	for (size_t i = 0; i < RTE_DIM(live_fields); i++) {
		uint32_t *dst = (uint32_t *)((char *)&tq_mqtt.conf + live_fields[i]);
		uint32_t v = *(const uint32_t *)((const char *)next + live_fields[i]);

		if (*dst != v) /* only what changes: other threads read the rest */
			*dst = v;
	}
	tq_retain_set_limit(tq_mqtt.retain, tq_mqtt.conf.max_retained);
	return 0;
}
