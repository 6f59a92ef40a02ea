/*
 * Workers: one per worker lcore, each polling its RX queue of every port. A worker's
 * state is one cache-aligned struct that only that worker writes (counters included);
 * other threads read counters and post messages to its inbound ring.
 */
#ifndef TQ_WORKER_H
#define TQ_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/net/tq_arp_cache.h"
#include "dataplane/net/tq_tcp.h"
#include "dataplane/tq_services.h"
#include "dataplane/tq_counters.h"
#include "dataplane/tq_nsim.h"
#include "dataplane/tq_port.h"
#include "dataplane/tq_trace.h"

#define TQ_MAX_WORKERS 32
#define TQ_BURST_MAX 64

enum tq_idle_mode {
	TQ_IDLE_BUSY = 0, /* poll without pause: lowest latency, one core burnt per worker */
	TQ_IDLE_ADAPTIVE, /* back off, then sleep offline for RCU: for shared/small machines */
};

/* Data-plane settings, filled by the control thread's config before the workers start. */
struct tq_dp_conf {
	struct tq_tcp_conf tcp;
	struct tq_services_conf services;
	enum tq_idle_mode idle;
	uint16_t burst;            /* RX burst size, <= TQ_BURST_MAX */
	uint32_t idle_polls;       /* empty polls before the first sleep (adaptive) */
	uint32_t idle_sleep_max_us;/* longest single sleep (adaptive) */
	uint32_t ring_size;        /* inbound ring entries per worker */
	uint32_t mbufs_per_worker;
	uint32_t msg_mbufs;        /* tq_msgdata_pool: queued payloads when RX runs short */
	uint16_t nb_rxd, nb_txd;
	uint32_t arp_entries;
	uint32_t arp_reachable_s;
	uint32_t arp_retry_ms;
	uint8_t arp_retries;
	struct tq_port_conf ports[TQ_MAX_PORTS];
	struct tq_nsim_conf nsim[TQ_MAX_PORTS][TQ_NSIM_DIRS]; /* [nsim.portN.rx|tx] */
};

/* What travels on a worker's inbound ring (16 bytes, copied by value). */
enum tq_ring_msg_type {
	TQ_MSG_ARP_LEARN = 1, /* a: ip (network order), b: mac (6 bytes) | port << 48 */
	TQ_MSG_GARP,          /* a: port: send a gratuitous ARP for its address */
	TQ_MSG_PING,          /* a: ip (network order), b: seq: send an ICMP echo request */
	TQ_MSG_TCP_SEGMENT,   /* a: port, b: struct rte_mbuf * at its IPv4 header (owned) */
	TQ_MSG_NSIM,          /* a: port | dir << 16, b: struct tq_nsim * (owned; tq_nsim_post) */
	TQ_MSG_TUNE,          /* a: enum tq_tune_key, b: the new value (tachyonctl set) */
	TQ_MSG_KILL_PEER,     /* a: peer address, b: peer port (network order; 0 any) */
	TQ_MSG_TRACE,         /* a: record the next a publishes (tq_trace.h) */
	TQ_MSG_APP_BASE = 64, /* from here on: the protocols' own messages (tq_worker_app_register) */
};
#define TQ_MSG_APP_MAX 16 /* message types TQ_MSG_APP_BASE .. + TQ_MSG_APP_MAX - 1 */

/* Loop settings a running worker takes from its ring (TQ_MSG_TUNE). */
enum tq_tune_key {
	TQ_TUNE_BURST = 1, /* 1..TQ_BURST_MAX */
	TQ_TUNE_IDLE,      /* enum tq_idle_mode */
	TQ_TUNE_IDLE_POLLS,
	TQ_TUNE_IDLE_SLEEP_MAX_US,
	/*
	 * b: a generation. The worker counts itself into tq_dp.tune_parked and waits where it
	 * reads its ring until tq_dp.tune_release reaches b, so that the control side can change
	 * settings that all workers read (tcp.*, mqtt.*, amqp.*: control/tq_tune.c) with none
	 * of them running.
	 */
	TQ_TUNE_PARK,
};

struct tq_ring_msg {
	uint32_t type;
	uint32_t a;
	uint64_t b;
};

struct tq_port_stats {
	uint64_t rx_packets, rx_bytes;
	uint64_t tx_packets, tx_bytes, tx_dropped;
};

struct tq_txq {
	uint16_t n;
	struct rte_mbuf *pkts[TQ_BURST_MAX];
};

struct tq_worker {
	/* hot: read every iteration */
	uint16_t id;    /* worker index, also the RX/TX queue index on every port */
	uint16_t burst;
	unsigned int lcore;
	int socket;
	uint64_t now;   /* TSC at the top of this iteration */
	uint64_t next_tick;
	struct rte_ring *inbound;   /* MP/SC: from other workers and control; owned */
	struct rte_mempool *pool;   /* mbufs on this worker's socket; shared, not owned */
	uint16_t ip_id;             /* IPv4 identification for packets we originate */
	uint16_t nsim_active;       /* instances in nsim[][]: 0 = no release pass */
	uint32_t prio_conns;        /* connections of a class other than normal (tq_prio.h) */
	/* network simulator per direction and port, NULL = off; owned (tq_nsim.h) */
	struct tq_nsim *nsim[TQ_NSIM_DIRS][TQ_MAX_PORTS];
	struct tq_txq txq[TQ_MAX_PORTS];

	/* idle control */
	enum tq_idle_mode idle;
	uint32_t idle_count;
	uint32_t idle_polls;
	uint32_t sleep_us;
	uint32_t sleep_max_us;

	/* written by this worker only, read by anyone (plain, summed by readers) */
	uint64_t ctr[TQ_CTR__COUNT] __rte_cache_aligned;
	struct tq_port_stats port_stats[TQ_MAX_PORTS];
	uint64_t nsim_acked; /* dp: wo (release), cp: ro (acquire): TQ_MSG_NSIM handled */
	uint64_t busy_tsc;   /* dp: wo, cp: ro: TSC cycles spent in loop iterations that did work */
	struct tq_trace trace; /* dp: wo (armed by TQ_MSG_TRACE), telemetry: ro */
	uint64_t loops;      /* dp: wo, cp: ro: loop iterations */

	struct tq_arp_cache arp __rte_cache_aligned;
	struct tq_tcp_worker *tcp; /* this worker's TCP (TCBs, table, timers); owned */
	struct tq_mqtt_worker *mqtt; /* this worker's MQTT sessions; owned by proto/mqtt */
	struct tq_amqp_worker *amqp; /* this worker's AMQP connections; owned by proto/amqp */
	uint16_t ping_id;
} __rte_cache_aligned;

/* The router's workers; written by control at boot, read by everyone after. */
struct tq_tcp_worker;
struct tq_mqtt_worker;
struct tq_amqp_worker;

struct tq_dataplane {
	unsigned int nb_workers;
	struct tq_worker *workers[TQ_MAX_WORKERS];
	volatile bool stop; /* cp: wo, dp: ro; workers leave their loop when set */
	/* The tune barrier (TQ_TUNE_PARK): generation << 16 | workers parked in it (cp: sets
	 * the generation; dp: counts itself in, acq_rel); parked workers wait for tune_release
	 * to reach their generation (cp: wo, release; dp: ro, acquire). */
	uint64_t tune_parked;
	uint64_t tune_release;
};

extern struct tq_dataplane tq_dp;

/*
 * Allocate worker @id for @lcore on its socket, with its inbound ring and ARP cache.
 * Control thread, boot. Returns NULL with errno set.
 */
struct tq_worker *tq_worker_create(uint16_t id, unsigned int lcore, struct rte_mempool *pool,
				   const struct tq_dp_conf *conf);

/*
 * Protocols above TCP (MQTT, AMQP) plug into the loop here, at boot on the control thread,
 * before the workers start: @ring handles inbound messages of type @type (TQ_MSG_APP_BASE +
 * n); @tick (optional) runs in every worker's 100 ms housekeeping. Returns 0 or -EINVAL.
 */
struct tq_ring_msg;
typedef void (*tq_app_ring_fn)(struct tq_worker *w, const struct tq_ring_msg *msg);
typedef void (*tq_app_tick_fn)(struct tq_worker *w);
int tq_worker_app_register(uint32_t type, tq_app_ring_fn ring);
int tq_worker_app_tick(tq_app_tick_fn tick);
/* @poll runs once per loop iteration (after the inbound ring); returns the work it did. */
typedef unsigned int (*tq_app_poll_fn)(struct tq_worker *w);
int tq_worker_app_poll(tq_app_poll_fn poll);

/* Free a worker that is not running: drains its ring and TX queues. Control thread. */
void tq_worker_destroy(struct tq_worker *w);

/* The poll loop (rte_eal_remote_launch entry); @arg is the struct tq_worker. */
int tq_worker_main(void *arg);

/* One iteration of the loop without idle handling; returns the work done. Worker only. */
unsigned int tq_worker_poll_once(struct tq_worker *w);

/* Queue @m for transmission on @port (ownership moves). Worker only. */
static inline void tq_worker_tx(struct tq_worker *w, uint16_t port, struct rte_mbuf *m);

/* Send every queued frame. Worker only. */
void tq_worker_flush(struct tq_worker *w);

/* Send @n frames on @port now, past the TX queue and the network simulator; what the
 * port does not take is freed and counted. Returns how many it took. Worker only. */
uint16_t tq_worker_tx_burst(struct tq_worker *w, uint16_t port, struct rte_mbuf **pkts,
			    uint16_t n);

/*
 * Post @msg to worker @dst's inbound ring. Any thread. Returns 0, or -ENOBUFS when the
 * ring is full (counted as ring_full on @from when not NULL).
 */
int tq_worker_post(struct tq_worker *dst, const struct tq_ring_msg *msg, struct tq_worker *from);

/* Take and handle up to a burst of inbound messages. Returns how many. Worker only. */
unsigned int tq_worker_drain_inbound(struct tq_worker *w);

/* Once-per-100ms housekeeping (ARP aging and retries). Worker only. */
void tq_worker_tick(struct tq_worker *w);

static inline void
tq_worker_count(struct tq_worker *w, unsigned int ctr)
{
	w->ctr[ctr]++;
}

static inline void
tq_worker_tx(struct tq_worker *w, uint16_t port, struct rte_mbuf *m)
{
	struct tq_txq *q = &w->txq[port];

	q->pkts[q->n++] = m;
	if (q->n == TQ_BURST_MAX)
		tq_worker_flush(w);
}

#endif
