/*
 * A simulated wire for TCP tests in which both ends are tachyon's stack.
 *
 * One worker, one ring port with one IPv4 address A: the test application connects to A
 * itself, so the client TCB {A:p -> A:server_port} and the server TCB {A:server_port ->
 * A:p} live in the same worker's table and every segment crosses the wire. The wire takes
 * what the port transmits (its TX ring), impairs it per direction (drop, duplicate,
 * reorder, delay with jitter, corrupt one bit, truncate, clamp the advertised window,
 * scripted drops), and hands it back to the port's RX ring when its delay has elapsed.
 * Frames from server_port go server -> client; all others client -> server.
 *
 * Time is simulated, as in tq_pktscript.h: the wire owns w->now and moves it from one
 * event to the next (a frame due, a TCP timer due, a wake-up the test asked for), running
 * the TCP timers at each step; a run of simulated minutes costs milliseconds of CPU.
 * Randomness comes from a seeded PRNG per direction: a run is reproducible.
 *
 * Threads: everything here runs on the caller's thread, which acts as the worker's lcore.
 */
#ifndef TQ_WIRE_H
#define TQ_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_mempool.h>
#include <rte_ring.h>

struct tq_worker;
struct tq_tcp_conn;
struct tq_wire;

/* The side that sends a frame; the wire's settings are per sending side. */
enum tq_wire_side {
	TQ_WIRE_CLIENT = 0, /* client -> server frames */
	TQ_WIRE_SERVER = 1, /* server -> client frames */
	TQ_WIRE_SIDES,
};

struct tq_wire_env {
	struct tq_worker *w;      /* created by the caller; the wire drives its clock */
	uint16_t port;            /* a ring port: the wire reads tx_ring and fills rx_ring */
	struct rte_ring *rx_ring, *tx_ring;
	struct rte_mempool *pool; /* frames handed back are copied into mbufs from it */
	uint32_t addr;            /* the port's IPv4 address, network order */
	uint16_t server_port;     /* host order */
	uint64_t seed;
};

/*
 * Impairments of the frames one side sends. Probabilities in parts per million, drawn
 * for each frame; a frame is dropped, corrupted or truncated (at most one of the three),
 * and independently duplicated and/or reordered.
 */
struct tq_wire_link {
	uint32_t delay_us;     /* one-way delay */
	uint32_t jitter_us;    /* each frame's delay is uniform in delay_us +- jitter_us */
	uint32_t drop_ppm;
	uint32_t dup_ppm;      /* a second copy right behind the first */
	uint32_t reorder_ppm;  /* the frame waits reorder_us more: later frames overtake it */
	uint32_t reorder_us;   /* 0: 3 ms */
	uint32_t corrupt_ppm;  /* one bit flipped in the TCP header or payload */
	uint32_t truncate_ppm; /* cut short at a random length (IPv4 length fixed or not) */
	uint32_t clamp_bytes;  /* 0 = off: the TCP window of these frames rewritten to at most
				* this many bytes (scaled as negotiated), checksum fixed */
};

/* A scripted drop: of the segments @from sends that match, let @skip pass, then drop
 * @count (0 = all the rest). */
struct tq_wire_rule {
	enum tq_wire_side from;
	uint8_t flags_mask, flags; /* match when (TCP flags & flags_mask) == flags */
	bool data_only;            /* only segments with payload */
	bool match_byte;           /* only segments carrying stream byte @byte (0 = first) */
	uint32_t byte;
	uint32_t skip;
	uint32_t count;
};

#define TQ_WIRE_RULE_TIMES 16
struct tq_wire_rule_stats {
	uint32_t matched, dropped;
	uint64_t t_us[TQ_WIRE_RULE_TIMES]; /* when each of the first matches left */
};

/* What the wire saw and did, per sending side. */
struct tq_wire_stats {
	uint64_t frames, data_segs, data_bytes, retransmits; /* as sent */
	uint64_t dropped, duplicated, reordered, corrupted, delivered;
	uint64_t truncated, truncated_valid; /* valid: a shorter segment the checksum accepts */
	uint64_t clamped, rule_dropped, injected, rx_nombuf;
	uint32_t max_window;  /* largest window advertised, scaled, in bytes */
	uint32_t max_flight;  /* largest snd_max - snd_una of the side's TCB seen */
};

#define TQ_WIRE_HIST_MAX 32
struct tq_wire_history {
	uint8_t n;
	uint8_t s[TQ_WIRE_HIST_MAX]; /* enum tq_tcp_state, consecutive duplicates folded;
				      * CLOSED when the TCB left the table */
};

/*
 * Create a wire for @env: simulated time 0 starts now, and A's ARP entry points at the
 * port's own MAC. Returns NULL on allocation failure.
 */
struct tq_wire *tq_wire_create(const struct tq_wire_env *env);

/* Free frames in flight and the wire. The worker is the caller's. */
void tq_wire_destroy(struct tq_wire *x);

void tq_wire_set_link(struct tq_wire *x, enum tq_wire_side from, const struct tq_wire_link *l);

/* Add a scripted drop. Returns its index (for tq_wire_rule_stats) or -ENOSPC. */
int tq_wire_add_rule(struct tq_wire *x, const struct tq_wire_rule *r);
const struct tq_wire_rule_stats *tq_wire_rule_stats(const struct tq_wire *x, int rule);

const struct tq_wire_stats *tq_wire_stats(const struct tq_wire *x, enum tq_wire_side from);
const struct tq_wire_history *tq_wire_history(const struct tq_wire *x, enum tq_wire_side side);
/* "SYN_SENT ESTABLISHED ..." into @buf. */
const char *tq_wire_history_str(const struct tq_wire *x, enum tq_wire_side side, char *buf,
				size_t len);
void tq_wire_history_reset(struct tq_wire *x);

/* Simulated microseconds since tq_wire_create. */
uint64_t tq_wire_now_us(const struct tq_wire *x);

/* Make the run stop at @t_us (so that the step function acts then). */
void tq_wire_wake_at(struct tq_wire *x, uint64_t t_us);

/* The side's TCB (found by 4-tuple, once the client's SYN went by), or NULL. */
struct tq_tcp_conn *tq_wire_conn(const struct tq_wire *x, enum tq_wire_side side);
/* The client's port (host order), 0 before its first SYN. */
uint16_t tq_wire_client_port(const struct tq_wire *x);

/*
 * Put a forged segment on the wire as if @from sent it (4-tuple of the current
 * connection), past every impairment; it arrives at the current time. Sequence and
 * acknowledgment numbers are absolute.
 */
void tq_wire_inject(struct tq_wire *x, enum tq_wire_side from, uint8_t flags, uint32_t seq,
		    uint32_t ack, uint16_t window);

/*
 * Called after every event (a frame delivered, timers run) has been handled; returns true
 * when the run is over. It may act on the connections (send, close, release).
 */
typedef bool (*tq_wire_step_fn)(void *ctx);

/*
 * Run until @step returns true (0), or fail (-1) when @limit_ms of simulated time pass,
 * or nothing is left that could make progress (no frame in flight, no timer, no wake-up).
 * On failure tq_wire_error() says why and the state of both TCBs goes to stderr.
 */
int tq_wire_run(struct tq_wire *x, tq_wire_step_fn step, void *ctx, uint64_t limit_ms);
const char *tq_wire_error(const struct tq_wire *x);

/* Both TCBs (state, sequence space, windows, congestion state, timers), the wire's
 * statistics and the worker's non-zero counters. */
void tq_wire_dump(const struct tq_wire *x, FILE *f);

#endif
