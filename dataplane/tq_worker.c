#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <urcu/urcu-qsbr.h>

#include "dataplane/net/tq_net.h"
#include "dataplane/net/tq_tcp_var.h"
#include "tq_prio.h"
#include "tq_worker.h"

struct tq_dataplane tq_dp;

struct tq_worker *
tq_worker_create(uint16_t id, unsigned int lcore, struct rte_mempool *pool,
		 const struct tq_dp_conf *conf)
{
	int socket = (int)rte_lcore_to_socket_id(lcore);
	char name[RTE_RING_NAMESIZE];
	struct tq_worker *w;
	uint64_t hz = rte_get_tsc_hz();
	int ret;

	w = rte_zmalloc_socket("tq_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, socket);
	if (!w) {
		errno = ENOMEM;
		return NULL;
	}
	w->id = id;
	w->lcore = lcore;
	w->socket = socket;
	w->pool = pool;
	w->burst = conf->burst ? RTE_MIN(conf->burst, TQ_BURST_MAX) : 32;
	w->idle = conf->idle;
	w->idle_polls = conf->idle_polls;
	w->sleep_max_us = conf->idle_sleep_max_us ? conf->idle_sleep_max_us : 1000;
	w->sleep_us = 1;
	w->ip_id = (uint16_t)(id << 12);
	w->ping_id = (uint16_t)(0x7100 + id);
	snprintf(name, sizeof(name), "tq_in_%u", id);
	w->inbound = rte_ring_create_elem(name, sizeof(struct tq_ring_msg),
					  rte_align32pow2(conf->ring_size ? conf->ring_size : 1024),
					  socket, RING_F_SC_DEQ);
	if (!w->inbound) {
		ret = rte_errno;
		rte_free(w);
		errno = ret;
		return NULL;
	}
	ret = tq_arp_cache_init(&w->arp, conf->arp_entries ? conf->arp_entries : 1024, socket,
				(uint64_t)(conf->arp_reachable_s ? conf->arp_reachable_s : 300) * hz,
				(uint64_t)(conf->arp_retry_ms ? conf->arp_retry_ms : 1000) * hz / 1000,
				conf->arp_retries ? conf->arp_retries : 3);
	if (ret) {
		rte_ring_free(w->inbound);
		rte_free(w);
		errno = -ret;
		return NULL;
	}
	ret = tq_tcp_worker_init(w, socket);
	if (ret) {
		tq_arp_cache_free(&w->arp);
		rte_ring_free(w->inbound);
		rte_free(w);
		errno = -ret;
		return NULL;
	}
	ret = tq_nsim_worker_init(w, conf->nsim, TQ_MAX_PORTS);
	if (ret) {
		tq_tcp_worker_free(w);
		tq_arp_cache_free(&w->arp);
		rte_ring_free(w->inbound);
		rte_free(w);
		errno = -ret;
		return NULL;
	}
	w->now = rte_rdtsc();
	w->next_tick = w->now + hz / 10;
	return w;
}

void
tq_worker_destroy(struct tq_worker *w)
{
	if (!w)
		return;
	for (uint16_t p = 0; p < TQ_MAX_PORTS; p++) {
		rte_pktmbuf_free_bulk(w->txq[p].pkts, w->txq[p].n);
		w->txq[p].n = 0;
	}
	/* Segments handed over by other workers and network simulator instances posted by
	 * control are the only ring messages that own memory. */
	{
		struct tq_ring_msg msg;

		while (rte_ring_sc_dequeue_elem(w->inbound, &msg, sizeof(msg)) == 0)
			if (msg.type == TQ_MSG_TCP_SEGMENT)
				rte_pktmbuf_free((struct rte_mbuf *)(uintptr_t)msg.b);
			else if (msg.type == TQ_MSG_NSIM)
				tq_nsim_free((struct tq_nsim *)(uintptr_t)msg.b);
	}
	tq_nsim_worker_fini(w);
	rte_ring_free(w->inbound);
	tq_tcp_worker_free(w);
	tq_arp_cache_free(&w->arp);
	rte_free(w);
}

uint16_t
tq_worker_tx_burst(struct tq_worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct tq_port_stats *ps = &w->port_stats[port];
	uint64_t bytes = 0;
	uint16_t sent;

	if (n == 0)
		return 0;
	for (uint16_t i = 0; i < n; i++)
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	sent = rte_eth_tx_burst(port, w->id, pkts, n);
	if (unlikely(sent < n)) {
		for (uint16_t i = sent; i < n; i++)
			bytes -= rte_pktmbuf_pkt_len(pkts[i]);
		rte_pktmbuf_free_bulk(&pkts[sent], n - sent);
		ps->tx_dropped += n - sent;
		w->ctr[TQ_CTR_tx_ring_full] += n - sent;
	}
	ps->tx_packets += sent;
	ps->tx_bytes += bytes;
	w->ctr[TQ_CTR_tx_packets] += sent; /* the worker totals, like rx_packets/rx_bytes */
	w->ctr[TQ_CTR_tx_bytes] += bytes;
	return sent;
}

void
tq_worker_flush(struct tq_worker *w)
{
	for (uint16_t p = 0; p < tq_nb_ports; p++) {
		struct tq_txq *q = &w->txq[p];

		if (q->n == 0)
			continue;
		if (unlikely(w->nsim[TQ_NSIM_TX][p] != NULL))
			tq_nsim_worker_tx(w, p, q->pkts, q->n); /* sends what passes now */
		else
			tq_worker_tx_burst(w, p, q->pkts, q->n);
		q->n = 0;
	}
}

int
tq_worker_post(struct tq_worker *dst, const struct tq_ring_msg *msg, struct tq_worker *from)
{
	if (rte_ring_mp_enqueue_elem(dst->inbound, (void *)(uintptr_t)msg, sizeof(*msg)) != 0) {
		if (from)
			from->ctr[TQ_CTR_ring_full]++;
		return -ENOBUFS;
	}
	return 0;
}

static tq_app_ring_fn app_ring[TQ_MSG_APP_MAX]; /* cp: wo at boot, dp: ro */
static tq_app_tick_fn app_tick[4];
static unsigned int nb_app_tick;
static tq_app_poll_fn app_poll[4];
static unsigned int nb_app_poll;

int
tq_worker_app_poll(tq_app_poll_fn poll)
{
	if (nb_app_poll == RTE_DIM(app_poll))
		return -EINVAL;
	app_poll[nb_app_poll++] = poll;
	return 0;
}

int
tq_worker_app_register(uint32_t type, tq_app_ring_fn ring)
{
	if (type < TQ_MSG_APP_BASE || type >= TQ_MSG_APP_BASE + TQ_MSG_APP_MAX)
		return -EINVAL;
	app_ring[type - TQ_MSG_APP_BASE] = ring;
	return 0;
}

int
tq_worker_app_tick(tq_app_tick_fn tick)
{
	if (nb_app_tick == RTE_DIM(app_tick))
		return -EINVAL;
	app_tick[nb_app_tick++] = tick;
	return 0;
}

/*
 * TQ_TUNE_PARK: stop between two packets until the control side has changed what every worker
 * reads (tq_tune.c), then go on. Counting in (acq_rel) tells it that this worker reads nothing
 * now; tq_dp.tune_release (acquire) that the change is done. A round the control side gave up
 * on (a newer generation, or released) is not waited for. Not offline for RCU: the iteration
 * may still hold pointers that it uses after the ring (a grace period waits for the release).
 */
static void
worker_park(uint64_t gen)
{
	const struct timespec nap = {.tv_sec = 0, .tv_nsec = 20 * 1000};
	uint64_t cur = __atomic_load_n(&tq_dp.tune_parked, __ATOMIC_RELAXED);
	unsigned int spins = 0;

	do {
		if (cur >> 16 != gen)
			return;
	} while (!__atomic_compare_exchange_n(&tq_dp.tune_parked, &cur, cur + 1, false,
					      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	while (__atomic_load_n(&tq_dp.tune_release, __ATOMIC_ACQUIRE) < gen) {
		if (++spins < 1024)
			rte_pause();
		else /* the other workers may need this core to reach the barrier */
			nanosleep(&nap, NULL);
	}
}

/* A setting changed while running (the control side checked the range). */
static void
worker_tune(struct tq_worker *w, uint32_t key, uint64_t v)
{
	switch (key) {
	case TQ_TUNE_BURST:
		if (v >= 1 && v <= TQ_BURST_MAX)
			w->burst = (uint16_t)v;
		break;
	case TQ_TUNE_IDLE:
		w->idle = v == TQ_IDLE_ADAPTIVE ? TQ_IDLE_ADAPTIVE : TQ_IDLE_BUSY;
		break;
	case TQ_TUNE_IDLE_POLLS:
		w->idle_polls = (uint32_t)v;
		break;
	case TQ_TUNE_IDLE_SLEEP_MAX_US:
		if (v >= 1)
			w->sleep_max_us = (uint32_t)v;
		break;
	case TQ_TUNE_PARK:
		worker_park(v);
		break;
	default:
		w->ctr[TQ_CTR_ring_bad_msg]++;
	}
}

unsigned int
tq_worker_drain_inbound(struct tq_worker *w)
{
	struct tq_ring_msg msgs[TQ_BURST_MAX];
	unsigned int n;

	n = rte_ring_sc_dequeue_burst_elem(w->inbound, msgs, sizeof(msgs[0]), w->burst, NULL);
	for (unsigned int i = 0; i < n; i++) {
		const struct tq_ring_msg *m = &msgs[i];

		switch (m->type) {
		case TQ_MSG_ARP_LEARN: {
			struct rte_ether_addr mac;

			memcpy(&mac, &m->b, RTE_ETHER_ADDR_LEN); /* little-endian: low 6 bytes */
			tq_arp_learned(w, (uint16_t)(m->b >> 48), m->a, &mac, true, false);
			break;
		}
		case TQ_MSG_GARP:
			tq_arp_send_garp(w, (uint16_t)m->a);
			break;
		case TQ_MSG_PING:
			tq_icmp_send_echo(w, m->a, (uint16_t)m->b);
			break;
		case TQ_MSG_TCP_SEGMENT:
			tq_tcp_input_forwarded(w, (uint16_t)m->a, (struct rte_mbuf *)(uintptr_t)m->b);
			break;
		case TQ_MSG_NSIM:
			tq_nsim_worker_apply(w, m);
			break;
		case TQ_MSG_TUNE:
			worker_tune(w, m->a, m->b);
			break;
		case TQ_MSG_TRACE:
			w->trace.left = m->a;
			break;
		case TQ_MSG_KILL_PEER:
			w->ctr[TQ_CTR_conns_killed] +=
				tq_tcp_kill_peer(w, m->a, (uint16_t)m->b, "closed by the operator");
			break;
		default:
			if (m->type >= TQ_MSG_APP_BASE && m->type < TQ_MSG_APP_BASE + TQ_MSG_APP_MAX &&
			    app_ring[m->type - TQ_MSG_APP_BASE]) {
				app_ring[m->type - TQ_MSG_APP_BASE](w, m);
				break;
			}
			w->ctr[TQ_CTR_ring_bad_msg]++;
			continue;
		}
	}
	w->ctr[TQ_CTR_ring_msgs_rx] += n;
	return n;
}

void
tq_worker_tick(struct tq_worker *w)
{
	tq_arp_age(w);
	for (unsigned int i = 0; i < nb_app_tick; i++)
		app_tick[i](w);
}

unsigned int
tq_worker_poll_once(struct tq_worker *w)
{
	struct rte_mbuf *pkts[TQ_BURST_MAX];
	unsigned int work = 0;

	w->now = rte_rdtsc();
	for (uint16_t p = 0; p < tq_nb_ports; p++) {
		uint16_t n = rte_eth_rx_burst(p, w->id, pkts, w->burst);

		if (unlikely(w->nsim[TQ_NSIM_RX][p] != NULL)) {
			tq_nsim_worker_rx(w, p, pkts, n); /* delivers what passes now */
		} else {
			if (unlikely(w->prio_conns))
				tq_prio_sort(w, pkts, n); /* critical first (tq_prio.h) */
			for (uint16_t i = 0; i < n; i++)
				tq_net_input(w, p, pkts[i]);
		}
		work += n;
	}
	if (unlikely(w->nsim_active))
		work += tq_nsim_worker_poll(w); /* delayed frames that came due */
	work += tq_worker_drain_inbound(w);
	for (unsigned int i = 0; i < nb_app_poll; i++)
		work += app_poll[i](w);
	tq_tcp_timers_run(w);
	if (unlikely(w->now >= w->next_tick)) {
		tq_worker_tick(w);
		w->next_tick = w->now + rte_get_tsc_hz() / 10;
	}
	tq_worker_flush(w);
	return work;
}

/* Adaptive idle: spin a while, then sleep with growing naps, offline for RCU meanwhile. */
static void
worker_idle(struct tq_worker *w, unsigned int work)
{
	struct timespec ts;

	if (work) {
		w->idle_count = 0;
		w->sleep_us = 1;
		return;
	}
	if (++w->idle_count < w->idle_polls) {
		rte_pause();
		return;
	}
	ts.tv_sec = 0;
	ts.tv_nsec = (long)w->sleep_us * 1000;
	urcu_qsbr_thread_offline();
	nanosleep(&ts, NULL);
	urcu_qsbr_thread_online();
	w->ctr[TQ_CTR_idle_sleeps]++;
	if (w->sleep_us < w->sleep_max_us)
		w->sleep_us = RTE_MIN(w->sleep_us * 2, w->sleep_max_us);
}

int
tq_worker_main(void *arg)
{
	struct tq_worker *w = arg;

	urcu_qsbr_register_thread();
	while (!tq_dp.stop) {
		unsigned int work = tq_worker_poll_once(w);

		w->loops++;
		if (work) /* one more TSC read, only when there was something to do */
			w->busy_tsc += rte_rdtsc() - w->now;
		urcu_qsbr_quiescent_state();
		if (w->idle == TQ_IDLE_ADAPTIVE)
			worker_idle(w, work);
	}
	urcu_qsbr_unregister_thread();
	return 0;
}
