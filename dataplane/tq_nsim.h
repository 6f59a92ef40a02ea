/*
 * tq_nsim: a network simulator stage in the port layer (VPP's nsim plugin, Linux netem),
 * so that tests get exact, repeatable faults on a kernel without netem.
 *
 * One instance per worker, port and direction: RX sits between rte_eth_rx_burst and the
 * net stack, TX between the stack's TX queue and rte_eth_tx_burst. Each frame goes
 * through, in order:
 *
 *   drop → duplicate (a deep copy, so later stages may change either) → corrupt (one bit
 *   flipped beyond the Ethernet header, the original only) → reorder (hold the frame and
 *   send it right after the next one; after TQ_NSIM_REORDER_HOLD_US without a next one it
 *   leaves alone, late but not counted as reordered) → delay line (fixed delay ± uniform
 *   jitter, then a token-bucket rate limit; a min-heap ordered by due TSC with a fixed
 *   capacity; full = dropped and counted).
 *
 * Randomness comes from splitmix64 seeded by (seed, worker id): the same seed, worker and
 * input give the same faults. Every effect is a counter in tq_counters.def (nsim_*).
 *
 * Ownership: an instance is allocated by a non-worker thread (tq_nsim_create) and then
 * belongs to exactly one of: the control side, a TQ_MSG_NSIM message in a worker's ring,
 * or the worker that installed it (struct tq_worker.nsim). See tq_nsim_worker_apply()
 * for the handover. Frames an instance holds belong to it: tq_nsim_free() frees them.
 */
#ifndef TQ_NSIM_H
#define TQ_NSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_mbuf.h>

struct tq_worker;
struct tq_ring_msg;

#define TQ_NSIM_QUEUE_DEFAULT 1024      /* delay-line capacity when "queue" is not set */
#define TQ_NSIM_QUEUE_MAX (1u << 20)
#define TQ_NSIM_DELAY_MAX_US 10000000u  /* 10 s, for delay_us and jitter_us */
#define TQ_NSIM_RATE_MAX_MBPS 1000000.0 /* 1 Tbit/s */
#define TQ_NSIM_REORDER_HOLD_US 10000   /* longest wait of a reordered frame for a next one */
#define TQ_NSIM_BURST_US 1000           /* the rate limit lets this much time's worth burst */

/* Room tq_nsim_input() needs in @out for @n input frames (duplicates, one held frame). */
#define TQ_NSIM_OUT_MAX(n) (2 * (n) + 1)

enum tq_nsim_dir {
	TQ_NSIM_RX = 0, /* frames from the port, before the net stack */
	TQ_NSIM_TX,     /* frames from the net stack, before rte_eth_tx_burst */
	TQ_NSIM_DIRS,
};

/* Settings of one port and direction ([nsim.portN.rx|tx]); all zero = off. */
struct tq_nsim_conf {
	double drop;        /* probability 0..1 */
	double duplicate;   /* probability 0..1 */
	double reorder;     /* probability 0..1 */
	double corrupt;     /* probability 0..1 */
	uint32_t delay_us;  /* fixed delay */
	uint32_t jitter_us; /* uniform ± around the delay (never before "now") */
	double rate_mbps;   /* token-bucket rate limit, 0 = none */
	uint64_t seed;      /* PRNG seed, mixed with the worker id */
	uint32_t queue;     /* delay-line capacity in frames, 0 = TQ_NSIM_QUEUE_DEFAULT */
};

/* The keys of struct tq_nsim_conf as config and telemetry spell them, NULL-terminated. */
extern const char *const tq_nsim_keys[];

/* "rx" or "tx". */
const char *tq_nsim_dir_name(enum tq_nsim_dir dir);

/* Does @c change anything (any effect set)? seed and queue alone do not. Any thread. */
bool tq_nsim_conf_enabled(const struct tq_nsim_conf *c);

/*
 * Set @key of @c from its text @value ("0.05", "50000", ...). Pure; any thread.
 * Returns 0, -ENOENT for an unknown key, -EINVAL for a bad or out-of-range value.
 */
int tq_nsim_conf_set(struct tq_nsim_conf *c, const char *key, const char *value);

/* Format @key of @c into @buf (the effective value: queue 0 shows the default). */
int tq_nsim_conf_get(const struct tq_nsim_conf *c, const char *key, char *buf, size_t len);

/*
 * Parse a config section name "nsim.portN.rx" / "nsim.portN.tx". Returns 0, -ENOENT when
 * @section is not an nsim section at all, -EINVAL when it is one but malformed or N is
 * not below @max_ports.
 */
int tq_nsim_parse_section(const char *section, unsigned int max_ports, unsigned int *port,
			  enum tq_nsim_dir *dir);

/*
 * Allocate an instance with settings @c (copied; immutable afterwards) for worker
 * @worker_id on NUMA @socket. Any non-worker thread (rte_malloc). A disabled @c gives a
 * valid instance that passes every frame: tq_nsim_enabled() says false. NULL + errno.
 */
struct tq_nsim *tq_nsim_create(const struct tq_nsim_conf *c, uint16_t worker_id, int socket);

/* Free @ns and every frame it holds. The thread that owns @ns; NULL is fine. */
void tq_nsim_free(struct tq_nsim *ns);

/* Were the settings of @ns enabled at creation? Any thread. */
bool tq_nsim_enabled(const struct tq_nsim *ns);

/* The settings @ns was created with. Any thread (immutable). */
const struct tq_nsim_conf *tq_nsim_conf(const struct tq_nsim *ns);

/*
 * Run @n frames of @pkts through @ns at TSC @now. Ownership of every frame moves to @ns;
 * those that leave now are written to @out (room for TQ_NSIM_OUT_MAX(@n)), in order, and
 * their count returned; dropped ones are freed; the rest wait for tq_nsim_release().
 * Effects are counted in @ctr (a worker's TQ_CTR_* array). Owner of @ns only.
 */
uint16_t tq_nsim_input(struct tq_nsim *ns, struct rte_mbuf **pkts, uint16_t n, uint64_t now,
		       struct rte_mbuf **out, uint64_t *ctr);

/*
 * Take up to @cap frames due at TSC @now (delay line, and a reordered frame whose hold
 * expired) into @out; returns how many. Frames never leave before their due time.
 * Owner of @ns only.
 */
uint16_t tq_nsim_release(struct tq_nsim *ns, uint64_t now, struct rte_mbuf **out, uint16_t cap,
			 uint64_t *ctr);

/* Take up to @cap held frames whatever their due time (retiring @ns). Owner of @ns only. */
uint16_t tq_nsim_flush(struct tq_nsim *ns, struct rte_mbuf **out, uint16_t cap);

/* Frames @ns holds (delay line and reorder slot). Owner of @ns only. */
uint32_t tq_nsim_held(const struct tq_nsim *ns);

/*
 * The instance a worker swapped out when it installed carrier @ns (NULL when there was
 * none). Control side, only after the worker acknowledged the message (see below).
 */
struct tq_nsim *tq_nsim_retired(const struct tq_nsim *ns);

/*
 * Worker side. A worker keeps one pointer per direction and port (NULL = off: the poll
 * loop pays one predictable branch) and a count of installed instances (0 = the release
 * pass is skipped).
 */

/* Install instances for every enabled setting in @conf. Control, boot. 0 or -errno. */
int tq_nsim_worker_init(struct tq_worker *w,
			const struct tq_nsim_conf conf[][TQ_NSIM_DIRS], unsigned int nb_ports);

/* Free every installed instance and the frames it holds. Control, worker stopped. */
void tq_nsim_worker_fini(struct tq_worker *w);

/* @n frames received on @port: run them through the RX instance and deliver what passes
 * to the net stack. Worker only; w->nsim[TQ_NSIM_RX][port] must be set. */
void tq_nsim_worker_rx(struct tq_worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n);

/* @n frames to send on @port: run them through the TX instance and send what passes.
 * Worker only; w->nsim[TQ_NSIM_TX][port] must be set. */
void tq_nsim_worker_tx(struct tq_worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n);

/* Deliver (RX) or send (TX) frames that came due, a burst per instance. Returns how many.
 * Worker only, once per loop when w->nsim_active. */
unsigned int tq_nsim_worker_poll(struct tq_worker *w);

/*
 * Live change, control side: post carrier @ns (made by tq_nsim_create for this worker) for
 * @port/@dir to @w's ring. Ownership of @ns moves to the message on success (0); on
 * -ENOBUFS (ring full) the caller still owns it. Not a worker; one poster at a time
 * (callers serialise, e.g. under the telemetry lock).
 *
 * The worker (tq_nsim_worker_apply) installs @ns (or NULL when @ns is disabled), sends or
 * delivers at once every frame the old instance held, stores the old instance in
 * @ns->retired and then increments w->nsim_acked with release order. From the moment the
 * poster sees nsim_acked reach the number of messages it posted to @w (acquire load), the
 * old instance — and @ns itself when it was disabled, so never installed — belong to the
 * poster, who frees them. An installed @ns stays the worker's until a later swap hands it
 * back, or tq_worker_destroy() frees it; a message still queued when the worker stops is
 * freed, carrier included, by tq_worker_destroy().
 */
int tq_nsim_post(struct tq_worker *w, uint16_t port, enum tq_nsim_dir dir, struct tq_nsim *ns);

/* Handle a TQ_MSG_NSIM message (see tq_nsim_post). Worker only. */
void tq_nsim_worker_apply(struct tq_worker *w, const struct tq_ring_msg *m);

#endif
