/*
 * TCP: configuration, listeners, the per-worker TCB table, connection lifetime and the
 * application API of tq_tcp.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_jhash.h>
#include <rte_malloc.h>
#include <rte_random.h>

#include "dataplane/tq_worker.h"
#include "tq_net.h"
#include "tq_tcp_var.h"

struct tq_tcp_listener tq_tcp_listeners[TQ_TCP_MAX_LISTENERS];
unsigned int tq_tcp_nb_listeners;
struct tq_tcp_conf tq_tcp_cfg;

static const char *const state_names[TQ_TCP_NSTATES] = {
	"CLOSED",      "SYN_SENT",   "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1",
	"FIN_WAIT_2",  "CLOSE_WAIT", "CLOSING",      "LAST_ACK",    "TIME_WAIT",
};

const char *
tq_tcp_state_name(unsigned int s)
{
	return s < TQ_TCP_NSTATES ? state_names[s] : "?";
}

void
tq_tcp_conf_defaults(struct tq_tcp_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->max_conns = 16384;
	c->rcv_buf = 256 * 1024;
	c->snd_buf = 256 * 1024;
	c->ooo_max_segs = 64;
	c->syn_backlog = 1024;
	c->msl_ms = 30000;
	c->delack_ms = 0;
	c->rto_min_ms = 200;
	c->rto_max_ms = 60000;
	c->rto_initial_ms = 1000;
	c->keepalive_s = 0;
	c->max_retries = 12;
	c->mss = 1460;
	c->wscale = 7;
	c->timestamps = true;
	c->sack = true;
}

void
tq_tcp_conf_get(struct tq_tcp_conf *out)
{
	*out = tq_tcp_cfg;
}

/* Field by field: other threads may read the ones that do not change (max_conns: telemetry). */
#define SET_IF_CHANGED(f)                                                                          \
	do {                                                                                       \
		if (tq_tcp_cfg.f != c->f)                                                          \
			tq_tcp_cfg.f = c->f;                                                       \
	} while (0)

void
tq_tcp_conf_set(const struct tq_tcp_conf *c)
{
	SET_IF_CHANGED(max_conns);
	SET_IF_CHANGED(rcv_buf);
	SET_IF_CHANGED(snd_buf);
	SET_IF_CHANGED(ooo_max_segs);
	SET_IF_CHANGED(syn_backlog);
	SET_IF_CHANGED(msl_ms);
	SET_IF_CHANGED(delack_ms);
	SET_IF_CHANGED(rto_min_ms);
	SET_IF_CHANGED(rto_max_ms);
	SET_IF_CHANGED(rto_initial_ms);
	SET_IF_CHANGED(keepalive_s);
	SET_IF_CHANGED(max_retries);
	SET_IF_CHANGED(mss);
	SET_IF_CHANGED(wscale);
	SET_IF_CHANGED(timestamps);
	SET_IF_CHANGED(sack);
}

#undef SET_IF_CHANGED

int
tq_tcp_listen(uint16_t port, const struct tq_tcp_app *app, void *listener_user)
{
	if (tq_tcp_find_listener(port) >= 0)
		return -EEXIST;
	if (tq_tcp_nb_listeners == TQ_TCP_MAX_LISTENERS)
		return -ENOSPC;
	tq_tcp_listeners[tq_tcp_nb_listeners++] =
		(struct tq_tcp_listener){.port = port, .app = app, .user = listener_user};
	return 0;
}

int
tq_tcp_find_listener(uint16_t port_host)
{
	for (unsigned int i = 0; i < tq_tcp_nb_listeners; i++)
		if (tq_tcp_listeners[i].port == port_host)
			return (int)i;
	return -1;
}

int
tq_tcp_worker_init(struct tq_worker *w, int socket)
{
	struct tq_tcp_worker *t;
	struct rte_hash_parameters hp = {0};
	char name[RTE_HASH_NAMESIZE];
	uint32_t n = tq_tcp_cfg.max_conns, pool_n;
	int ret;

	if (n == 0) { /* no config given (tests, tools): the defaults */
		tq_tcp_conf_defaults(&tq_tcp_cfg);
		n = tq_tcp_cfg.max_conns;
	}
	t = rte_zmalloc_socket("tq_tcp", sizeof(*t), RTE_CACHE_LINE_SIZE, socket);
	if (!t)
		return -ENOMEM;
	t->conns = rte_zmalloc_socket("tq_tcbs", (size_t)n * sizeof(*t->conns),
				      RTE_CACHE_LINE_SIZE, socket);
	if (!t->conns)
		goto nomem;
	t->ooo_cap = tq_tcp_cfg.ooo_max_segs; /* tuning may change the setting later */
	for (uint32_t i = 0; i < n; i++) {
		struct tq_tcp_conn *c = &t->conns[i];

		c->idx = i;
		c->w = w;
		c->next_free = t->free;
		t->free = c;
	}
	/*
	 * Out-of-order arrays for an eighth of the connections (at least 1,024) at once: a TCB
	 * takes one at its first out-of-order segment and gives it back once the holes fill,
	 * so idle connections hold none (1 KiB each by default). Beyond: tcp_ooo_no_memory.
	 */
	snprintf(name, sizeof(name), "tq_ooo_%u", w->id);
	pool_n = n / 8 > 1024 ? n / 8 : 1024;
	if (pool_n > n)
		pool_n = n;
	t->ooo_pool = rte_mempool_create(name, pool_n + 63,
					 t->ooo_cap * sizeof(struct tq_tcp_ooo_seg), 32, 0, NULL,
					 NULL, NULL, NULL, socket, 0);
	if (!t->ooo_pool)
		goto nomem;
	snprintf(name, sizeof(name), "tq_tcb_%u", w->id);
	hp.name = name;
	hp.entries = n < 8 ? 8 : n;
	hp.key_len = sizeof(struct tq_tcp_key);
	hp.hash_func = rte_hash_crc;
	hp.socket_id = socket;
	t->table = rte_hash_create(&hp);
	if (!t->table)
		goto nomem;
	ret = tq_timer_wheel_init(&t->wheel, n * TQ_TCP_T_COUNT + 1, 1000000, socket);
	if (ret)
		goto nomem;
	snprintf(name, sizeof(name), "tq_clone_%u", w->id);
	/* indirect mbufs for segments in flight: 4 per connection up to 64 Ki (an idle
	 * connection holds none; 4 per slot at 100k connections was 800 bytes each) */
	pool_n = 4 * n < 8192 ? 8192 : 4 * n > 65536 ? 65536 : 4 * n;
	t->clone_pool = rte_pktmbuf_pool_create(name, pool_n - 1, 256, 0, 0, socket);
	if (!t->clone_pool)
		goto nomem;
	/* RACK rings for up to 1,024 connections sending at once (6 KiB each); beyond,
	 * connections recover without RACK (tcp_rack_no_ring) */
	snprintf(name, sizeof(name), "tq_txrec_%u", w->id);
	t->txrec_pool = rte_mempool_create(name, RTE_MIN(n, 1024u) + 63, sizeof(struct tq_tcp_txring),
					   32, 0, NULL, NULL, NULL, NULL, socket, 0);
	if (!t->txrec_pool)
		goto nomem;
	t->tsc_per_tick = rte_get_tsc_hz() / 1000;
	t->now_tick = rte_rdtsc() / t->tsc_per_tick;
	tq_timer_advance(&t->wheel, t->now_tick, NULL, NULL, 0);
	t->next_ephemeral = (uint16_t)(32768 + (rte_rand() % 16384));
	for (int i = 0; i < 4; i++)
		t->cookie_secret[i] = (uint32_t)rte_rand();
	w->tcp = t;
	return 0;
nomem:
	w->tcp = t;
	tq_tcp_worker_free(w);
	return -ENOMEM;
}

void
tq_tcp_worker_free(struct tq_worker *w)
{
	struct tq_tcp_worker *t = w->tcp;

	if (!t)
		return;
	if (t->conns) {
		for (uint32_t i = 0; i < tq_tcp_cfg.max_conns; i++) {
			struct tq_tcp_conn *c = &t->conns[i];

			if (c->state != TQ_TCP_CLOSED) {
				tq_tcp_chain_free(c->sq_head);
				c->sq_head = NULL;
				tq_tcp_ooo_purge(c);
			}
		}
		rte_free(t->conns);
	}
	rte_hash_free(t->table);
	tq_timer_wheel_free(&t->wheel);
	rte_mempool_free(t->clone_pool);
	rte_mempool_free(t->ooo_pool);
	rte_mempool_free(t->txrec_pool);
	rte_free(t);
	w->tcp = NULL;
}

struct tq_tcp_conn *
tq_tcp_lookup(struct tq_worker *w, const struct tq_tcp_key *key)
{
	void *data;

	return rte_hash_lookup_data(w->tcp->table, key, &data) < 0 ? NULL : data;
}

struct tq_tcp_conn *
tq_tcp_conn_alloc(struct tq_worker *w, const struct tq_tcp_key *key, uint16_t port)
{
	struct tq_tcp_worker *t = w->tcp;
	struct tq_tcp_conn *c = t->free;
	struct tq_tcp_ooo_seg *ooo;
	uint32_t idx;

	if (!c) {
		w->ctr[TQ_CTR_tcp_no_tcb]++;
		return NULL;
	}
	if (rte_hash_add_key_data(t->table, key, c) < 0) {
		w->ctr[TQ_CTR_tcp_no_tcb]++;
		return NULL;
	}
	t->free = c->next_free;
	idx = c->idx;
	ooo = c->ooo;
	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->ooo = ooo;
	c->w = w;
	c->key = *key;
	c->port = port;
	c->snd_mss = 536;
	c->cc = &tq_tcp_cc_newreno; /* the only algorithm so far; CUBIC will be chosen in [tcp] */
	c->rto_us = tq_tcp_cfg.rto_initial_ms * 1000;
	c->last_rx_tsc = w->now;
	t->nb_conns++;
	return c;
}

/*
 * Release @c's resources and take it out of the table. The TCB itself goes to the reap
 * list and is reused only after the current poll iteration (tq_tcp_reap), so code that
 * still holds @c after a callback sees state CLOSED, never another connection.
 */
void
tq_tcp_conn_free(struct tq_tcp_conn *c)
{
	struct tq_tcp_worker *t = c->w->tcp;

	if (c->state == TQ_TCP_CLOSED)
		return;
	tq_tcp_timers_clear(c);
	tq_tcp_chain_free(c->sq_head);
	c->sq_head = c->sq_tail = NULL;
	c->sq_cur = NULL;
	c->sq_bytes = 0;
	t->sq_mbufs -= c->sq_mbufs;
	c->sq_mbufs = 0;
	tq_tcp_ooo_purge(c);
	tq_tcp_rack_release(c);
	/* a port to this peer is free again: tq_tcp_connect may look again */
	if (t->full_tick && c->key.raddr == t->full_raddr && c->key.rport == t->full_rport)
		t->full_tick = 0;
	if (c->state == TQ_TCP_SYN_RECEIVED && c->listener)
		t->half_open--;
	if (c->prio)
		c->w->prio_conns--;
	rte_hash_del_key(t->table, &c->key);
	c->state = TQ_TCP_CLOSED;
	c->next_free = t->reap;
	t->reap = c;
	t->nb_conns--;
}

void
tq_tcp_reap(struct tq_worker *w)
{
	struct tq_tcp_worker *t = w->tcp;

	while (t->reap) {
		struct tq_tcp_conn *c = t->reap;

		t->reap = c->next_free;
		c->next_free = t->free;
		t->free = c;
	}
}

void
tq_tcp_set_state(struct tq_tcp_conn *c, enum tq_tcp_state s)
{
	struct tq_tcp_worker *t = c->w->tcp;

	if (c->state == TQ_TCP_SYN_RECEIVED && c->listener)
		t->half_open--;
	if (s == TQ_TCP_SYN_RECEIVED && c->listener)
		t->half_open++;
	if (s == TQ_TCP_ESTABLISHED)
		c->w->ctr[TQ_CTR_tcp_established]++;
	c->state = (uint8_t)s;
}

void
tq_tcp_drop(struct tq_tcp_conn *c, int err)
{
	bool tell = c->connected_cb_done && c->app && c->app->on_closed;

	if (c->state == TQ_TCP_CLOSED)
		return;
	tq_tcp_conn_free(c);
	if (tell) {
		c->connected_cb_done = false;
		c->app->on_closed(c, err);
	}
}

uint32_t
tq_tcp_new_iss(struct tq_worker *w, const struct tq_tcp_key *key)
{
	/* RFC 6528: a 4 us clock plus a keyed hash of the connection's identity. */
	uint32_t h = rte_jhash_32b((const uint32_t *)key, sizeof(*key) / 4,
				   w->tcp->cookie_secret[0]);

	return h + (uint32_t)(rte_rdtsc() / (rte_get_tsc_hz() / 250000));
}

unsigned int
tq_tcp_owner(const struct tq_tcp_key *key, unsigned int nb_workers)
{
	if (nb_workers <= 1)
		return 0;
	return rte_hash_crc(key, sizeof(*key), 0x7ac401u) % nb_workers;
}

bool
tq_tcp_tw_reusable(const struct tq_tcp_conn *c)
{
	uint64_t idle = c->w->now - c->last_rx_tsc;

	/* Timestamps on both ways and the peer silent for 1 s: its clock (1 ms..1 s a tick,
	 * RFC 7323) moved on, so PAWS tells the old incarnation's segments from the new. */
	return c->state == TQ_TCP_TIME_WAIT && c->ts_ok && tq_tcp_cfg.timestamps &&
	       c->listener == 0 && idle >= rte_get_tsc_hz();
}

uint32_t
tq_tcp_ts_now(struct tq_worker *w)
{
	return (uint32_t)w->tcp->now_tick; /* 1 ms timestamp clock (RFC 7323 allows 1 ms..1 s) */
}

/* ---- application API ---- */

int
tq_tcp_connect(struct tq_worker *w, uint32_t dst, uint16_t dport, const struct tq_tcp_app *app,
	       void *user, struct tq_tcp_conn **out)
{
	struct tq_tcp_worker *t = w->tcp;
	struct tq_tcp_key key;
	struct tq_tcp_conn *c, *tw = NULL;
	uint32_t next_hop, tw_snd_max = 0;
	unsigned int tries;
	int port = tq_port_route(dst, &next_hop);

	if (port < 0 || !tq_ports[port].ipv4)
		return -ENETUNREACH;
	key.raddr = dst;
	key.laddr = tq_ports[port].ipv4;
	key.rport = rte_cpu_to_be_16(dport);
	/*
	 * A source port whose 4-tuple hashes to this worker and is free, or in a TIME_WAIT
	 * we may reuse. The cursor goes on from the last port chosen, so a scan costs about
	 * nb_workers lookups while ports are free; once none was (the whole range scanned),
	 * connects to that peer fail at once until one of its connections ends or 1 s passed.
	 */
	if (t->full_tick && t->full_raddr == dst && t->full_rport == key.rport &&
	    t->now_tick - t->full_tick < 1000) {
		w->ctr[TQ_CTR_tcp_connect_no_port]++;
		return -EADDRNOTAVAIL;
	}
	for (tries = 0; tries < TQ_TCP_EPHEMERAL_PORTS; tries++) {
		if (++t->next_ephemeral < TQ_TCP_EPHEMERAL_FIRST)
			t->next_ephemeral = TQ_TCP_EPHEMERAL_FIRST;
		key.lport = rte_cpu_to_be_16(t->next_ephemeral);
		if (tq_tcp_owner(&key, tq_dp.nb_workers) != w->id)
			continue;
		tw = tq_tcp_lookup(w, &key);
		if (!tw || tq_tcp_tw_reusable(tw))
			break;
	}
	if (tries == TQ_TCP_EPHEMERAL_PORTS) {
		t->full_raddr = dst;
		t->full_rport = key.rport;
		t->full_tick = t->now_tick ? t->now_tick : 1;
		w->ctr[TQ_CTR_tcp_connect_no_port]++;
		return -EADDRNOTAVAIL;
	}
	if (tw) {
		/* as Linux's tcp_tw_reuse: the new ISS lies beyond anything the old one sent */
		tw_snd_max = tw->snd_max;
		tq_tcp_drop(tw, 0); /* its application heard on_closed on entering TIME_WAIT */
		w->ctr[TQ_CTR_tcp_time_wait_reused_connect]++;
	}
	c = tq_tcp_conn_alloc(w, &key, (uint16_t)port);
	if (!c)
		return -ENOMEM;
	c->app = app;
	c->user = user;
	c->iss = tw ? tw_snd_max + 65535 + 2 : tq_tcp_new_iss(w, &key);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->recover = c->iss; /* RFC 6582: not 0 (see passive_open) */
	c->rcv_wscale = tq_tcp_cfg.wscale; /* offered in our SYN; 0 again if not accepted */
	tq_tcp_set_state(c, TQ_TCP_SYN_SENT);
	c->connected_cb_done = true; /* the caller knows it: on_closed reports failure */
	tq_tcp_send_syn(c);
	*out = c;
	return 0;
}

int
tq_tcp_send(struct tq_tcp_conn *c, struct rte_mbuf *m)
{
	uint32_t len = rte_pktmbuf_pkt_len(m), n;
	struct rte_mbuf *last;

	if (c->fin_queued)
		return -EPIPE;
	if (c->state != TQ_TCP_ESTABLISHED && c->state != TQ_TCP_CLOSE_WAIT)
		return -ENOTCONN;
	if (c->sq_bytes + len > tq_tcp_cfg.snd_buf && c->sq_bytes > 0) {
		c->want_writable = true;
		return -ENOBUFS;
	}
	/* The chain's segments join the send queue as they are (zero copy). */
	for (last = m, n = 1; last->next; last = last->next)
		n++;
	c->sq_mbufs += n;
	c->w->tcp->sq_mbufs += n;
	if (c->sq_tail)
		c->sq_tail->next = m;
	else
		c->sq_head = m;
	c->sq_tail = last;
	c->sq_bytes += len;
	if (!c->in_input) /* inside input processing the output at its end sends it */
		tq_tcp_output(c, 0);
	return 0;
}

void
tq_tcp_want_writable(struct tq_tcp_conn *c)
{
	c->want_writable = true;
}

bool
tq_tcp_peer_closed(const struct tq_tcp_conn *c)
{
	switch (c->state) {
	case TQ_TCP_CLOSE_WAIT:
	case TQ_TCP_LAST_ACK:
	case TQ_TCP_CLOSING:
	case TQ_TCP_TIME_WAIT:
	case TQ_TCP_CLOSED:
		return true;
	default:
		return false;
	}
}

/*
 * Memory pressure (see struct tq_tcp_worker): the worker's pool holds RX buffers, the
 * headers of every segment and ACK, and whatever applications allocate to send. Were
 * queued data let take it all, no ACK could be received or sent and nothing would ever be
 * freed (a stack frozen by its own send queues: 1,000 bulk connections did it).
 */
static bool
mem_low(struct tq_worker *w)
{
	struct tq_tcp_worker *t = w->tcp;

	if (t->sq_mbufs < w->pool->size / 2)
		return false; /* the usual case: no count of the pool at all */
	if ((t->mem_asks++ & 31) == 0)
		t->mem_avail = rte_mempool_avail_count(w->pool);
	if (t->mem_avail >= w->pool->size / 4)
		return false;
	if (!t->mem_low) {
		t->mem_low = true;
		w->ctr[TQ_CTR_tcp_mem_pressure]++;
	}
	return true;
}

uint32_t
tq_tcp_send_space(const struct tq_tcp_conn *c)
{
	if (c->sq_bytes >= tq_tcp_cfg.snd_buf || mem_low(c->w))
		return 0;
	return tq_tcp_cfg.snd_buf - c->sq_bytes;
}

uint32_t
tq_tcp_send_queued(const struct tq_tcp_conn *c)
{
	return c->sq_bytes;
}

void
tq_tcp_mem_recover(struct tq_worker *w)
{
	struct tq_tcp_worker *t = w->tcp;
	uint32_t n = tq_tcp_cfg.max_conns, start = t->mem_cursor % n;

	/* once per poll iteration while low (a count of the pool's caches, ~100 ns) */
	t->mem_avail = rte_mempool_avail_count(w->pool);
	if (t->mem_avail < w->pool->size / 4 + w->pool->size / 8 &&
	    t->sq_mbufs >= w->pool->size / 4)
		return;
	t->mem_low = false;
	/* every connection that asked for on_writable and has room, from a rotating start,
	 * until one of them runs the pool low again */
	for (uint32_t k = 0; k < n && !t->mem_low; k++) {
		struct tq_tcp_conn *c = &t->conns[(start + k) % n];

		if (c->state == TQ_TCP_CLOSED || !c->want_writable || c->fin_queued ||
		    !c->connected_cb_done || !c->app || !c->app->on_writable ||
		    tq_tcp_send_space(c) < tq_tcp_cfg.snd_buf / 2)
			continue;
		c->want_writable = false;
		c->app->on_writable(c);
		t->mem_cursor = (start + k + 1) % n; /* the next scan starts after it */
	}
}

void
tq_tcp_rx_release(struct tq_tcp_conn *c, uint32_t bytes)
{
	uint32_t before = tq_tcp_rcv_window(c);

	c->rx_held = bytes > c->rx_held ? 0 : c->rx_held - bytes;
	/* Window update when it opens by two segments or half the buffer (RFC 9293 SWS). */
	if (c->state >= TQ_TCP_ESTABLISHED &&
	    tq_tcp_rcv_window(c) - before >= RTE_MIN(2u * tq_tcp_cfg.mss, tq_tcp_cfg.rcv_buf / 2) &&
	    before < tq_tcp_cfg.rcv_buf / 2)
		tq_tcp_output(c, TQ_TCP_SEND_ACK);
}

void
tq_tcp_shutdown(struct tq_tcp_conn *c)
{
	if (c->fin_queued || c->state == TQ_TCP_CLOSED)
		return;
	switch (c->state) {
	case TQ_TCP_SYN_SENT:
		tq_tcp_drop(c, -ECONNABORTED);
		return;
	case TQ_TCP_SYN_RECEIVED:
	case TQ_TCP_ESTABLISHED:
		c->fin_queued = true;
		tq_tcp_set_state(c, TQ_TCP_FIN_WAIT_1);
		break;
	case TQ_TCP_CLOSE_WAIT:
		c->fin_queued = true;
		tq_tcp_set_state(c, TQ_TCP_LAST_ACK);
		break;
	default:
		return;
	}
	tq_tcp_output(c, 0);
}

void
tq_tcp_close(struct tq_tcp_conn *c)
{
	c->app_closed = true;
	tq_tcp_shutdown(c);
}

void
tq_tcp_abort(struct tq_tcp_conn *c)
{
	if (c->state == TQ_TCP_CLOSED)
		return;
	if (c->state != TQ_TCP_SYN_SENT && c->state != TQ_TCP_TIME_WAIT)
		tq_tcp_send_ctl(c, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, c->snd_nxt);
	c->w->ctr[TQ_CTR_tcp_aborted]++;
	tq_tcp_drop(c, -ECONNABORTED);
}

void
tq_tcp_set_user(struct tq_tcp_conn *c, void *user)
{
	c->user = user;
}

void *
tq_tcp_user(const struct tq_tcp_conn *c)
{
	return c->user;
}

unsigned int
tq_tcp_kill_peer(struct tq_worker *w, uint32_t raddr, uint16_t rport, const char *why)
{
	struct tq_tcp_worker *t = w->tcp;
	unsigned int n = 0;

	for (uint32_t i = 0; i < tq_tcp_cfg.max_conns; i++) {
		struct tq_tcp_conn *c = &t->conns[i];

		/* open and handed to its application (not closing already) */
		if ((c->state != TQ_TCP_ESTABLISHED && c->state != TQ_TCP_CLOSE_WAIT) ||
		    c->app_closed || !c->connected_cb_done || c->key.raddr != raddr ||
		    (rport && c->key.rport != rport))
			continue;
		if (c->app && c->app->on_kill)
			c->app->on_kill(c, why);
		else
			tq_tcp_abort(c);
		n++;
	}
	return n;
}

uint32_t
tq_tcp_remote_addr(const struct tq_tcp_conn *c)
{
	return c->key.raddr;
}

void
tq_tcp_set_prio(struct tq_tcp_conn *c, uint8_t prio)
{
	if (c->state == TQ_TCP_CLOSED || c->prio == prio)
		return;
	if (c->prio)
		c->w->prio_conns--;
	if (prio)
		c->w->prio_conns++;
	c->prio = prio;
}

uint8_t
tq_tcp_prio(const struct tq_tcp_conn *c)
{
	return c->prio;
}

void *
tq_tcp_listener_user(const struct tq_tcp_conn *c)
{
	return c->listener ? tq_tcp_listeners[c->listener - 1].user : NULL;
}

struct tq_worker *
tq_tcp_worker(const struct tq_tcp_conn *c)
{
	return c->w;
}
