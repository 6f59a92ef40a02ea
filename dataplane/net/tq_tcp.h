/*
 * tachyon's TCP: one instance per worker, sharing nothing. This is the API that the
 * protocol sessions (MQTT, AMQP) and the built-in services (echo, discard, chargen) use.
 *
 * Threads: every function here runs on the worker that owns the connection (the one
 * given to tq_tcp_connect, or the one that accepted it), except tq_tcp_listen, which the
 * control thread calls at boot before the workers start. Callbacks run on that worker,
 * from inside the stack: they may call tq_tcp_send/shutdown/close/abort on their own
 * connection.
 *
 * Sending from inside a callback queues the data; the segments leave when the stack
 * returns from the callback, so many small sends become full segments.
 *
 * Zero copy: received payload reaches the application as mbuf chains (the received frames
 * with the headers stripped); data to send is handed over as mbuf chains, which the stack
 * segments by reference (header mbuf + indirect payload mbufs) and retransmits from the
 * same references until acknowledged.
 *
 * Memory: a connection may hold at most rcv_buf bytes the application has not released
 * (tq_tcp_rx_release) plus out-of-order data; the receive window advertises what is left.
 * The send queue holds at most snd_buf bytes; tq_tcp_send refuses more (-ENOBUFS) and
 * on_writable tells when there is room again.
 */
#ifndef TQ_TCP_H
#define TQ_TCP_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>

struct tq_worker;
struct tq_tcp_conn; /* a connection; valid from on_connected until on_closed returns */

struct tq_tcp_app {
	/*
	 * The handshake completed (passive open: a new connection on a listener, whose
	 * listener_user is readable with tq_tcp_listener_user; active open: connected).
	 * Return 0 to keep the connection, or a negative value to reset it.
	 */
	int (*on_connected)(struct tq_tcp_conn *c);
	/*
	 * In-order payload: @m is a chain of pkt_len bytes, now owned by the application,
	 * which calls tq_tcp_rx_release(c, bytes) once it no longer holds them.
	 */
	void (*on_data)(struct tq_tcp_conn *c, struct rte_mbuf *m);
	/* The send queue has room again after tq_tcp_send returned -ENOBUFS. Optional. */
	void (*on_writable)(struct tq_tcp_conn *c);
	/* The peer sent FIN: it sends no more data (we may still send). Optional. */
	void (*on_peer_closed)(struct tq_tcp_conn *c);
	/*
	 * Last call for @c: 0 after an orderly close, or -ECONNRESET, -ETIMEDOUT,
	 * -ECONNREFUSED, -ECONNABORTED. @c is freed when this returns.
	 */
	void (*on_closed)(struct tq_tcp_conn *c, int err);
	/*
	 * An operator closes @c (tachyonctl close_connection): say so in the protocol's words
	 * and close. Optional: without it the connection is reset.
	 */
	void (*on_kill)(struct tq_tcp_conn *c, const char *why);
};

/* Per-connection limits and behaviour, from config [tcp]. */
struct tq_tcp_conf {
	uint32_t max_conns;      /* connections per worker (TCBs preallocated) */
	uint32_t rcv_buf;        /* bytes a connection may hold for the application */
	uint32_t snd_buf;        /* bytes a send queue may hold */
	uint32_t ooo_max_segs;   /* out-of-order runs (holes) kept per connection */
	uint32_t syn_backlog;    /* half-open connections per worker before SYN cookies */
	uint32_t msl_ms;         /* TIME_WAIT lasts 2 * msl_ms */
	uint32_t delack_ms;      /* 0 = ACK every segment at once (latency mode) */
	uint32_t rto_min_ms, rto_max_ms, rto_initial_ms;
	uint32_t keepalive_s;    /* 0 = off */
	uint32_t max_retries;    /* RTO expirations before giving up (ETIMEDOUT) */
	uint16_t mss;            /* MSS we announce (<= MTU - 40) */
	uint8_t wscale;          /* window scale we offer */
	bool timestamps, sack;
};

/* Fill @c with the defaults. */
void tq_tcp_conf_defaults(struct tq_tcp_conf *c);

/*
 * The settings every worker's stack reads. tq_tcp_conf_get copies them out (any thread).
 * tq_tcp_conf_set writes the fields of @c that differ from them: at boot before the workers
 * start, or while every worker is held at its tune barrier (TQ_TUNE_PARK, control/tq_tune.c),
 * never while a worker runs. Which fields a running stack can take is the caller's business
 * (max_conns and ooo_max_segs size memory at boot: tq_tune.h).
 */
void tq_tcp_conf_get(struct tq_tcp_conf *out);
void tq_tcp_conf_set(const struct tq_tcp_conf *c);

/*
 * Accept connections to TCP @port on every address of every port, on every worker.
 * Control thread, before the workers start. Returns 0, -EEXIST or -ENOSPC.
 */
int tq_tcp_listen(uint16_t port, const struct tq_tcp_app *app, void *listener_user);

/*
 * Open a connection from worker @w to @dst:@dport (network order address, host order
 * port); the source port is chosen so that the replies belong to @w. on_connected or
 * on_closed(-ECONNREFUSED / -ETIMEDOUT) follows. Returns 0 and sets *@out, or -errno.
 */
int tq_tcp_connect(struct tq_worker *w, uint32_t dst, uint16_t dport,
		   const struct tq_tcp_app *app, void *user, struct tq_tcp_conn **out);

/*
 * Free a chain linked through ->next beyond what its head's nb_segs and pkt_len say (a send
 * queue, an application's pending output whose nb_segs saturates), mbuf by mbuf:
 * rte_pktmbuf_free trusts the head's counts (and with RTE_LIBRTE_MBUF_DEBUG panics on them).
 */
static inline void
tq_tcp_chain_free(struct rte_mbuf *m)
{
	while (m) {
		struct rte_mbuf *next = m->next;

		m->next = NULL;
		m->nb_segs = 1;
		m->pkt_len = m->data_len;
		rte_pktmbuf_free_seg(m);
		m = next;
	}
}

/*
 * Queue the chain @m for sending. Returns 0 (@m now belongs to the stack), -ENOBUFS
 * (send queue full: @m stays the caller's; on_writable follows), -ENOTCONN or -EPIPE
 * (after shutdown).
 */
int tq_tcp_send(struct tq_tcp_conn *c, struct rte_mbuf *m);

/* Bytes tq_tcp_send would take now; 0 also under memory pressure: the worker's mbuf pool
 * under a quarter free while send queues hold half of it (on_writable follows once it
 * recovers, for callers that called tq_tcp_want_writable). */
uint32_t tq_tcp_send_space(const struct tq_tcp_conn *c);

/* Bytes in the send queue: sent and not yet acknowledged, or not yet sent. */
uint32_t tq_tcp_send_queued(const struct tq_tcp_conn *c);

/* Call on_writable once the send queue has room again (for callers that checked
 * tq_tcp_send_space instead of trying tq_tcp_send). */
void tq_tcp_want_writable(struct tq_tcp_conn *c);

/* True once the peer's FIN arrived (it will send nothing more). */
bool tq_tcp_peer_closed(const struct tq_tcp_conn *c);

/* The application no longer holds @bytes of what on_data gave it: the window reopens. */
void tq_tcp_rx_release(struct tq_tcp_conn *c, uint32_t bytes);

/* Send FIN once the queued data is out (half-close). Idempotent. */
void tq_tcp_shutdown(struct tq_tcp_conn *c);

/* shutdown, and refuse further on_data (further data gets RST). on_closed still follows. */
void tq_tcp_close(struct tq_tcp_conn *c);

/* Send RST and drop everything; on_closed(-ECONNABORTED) follows at once. */
void tq_tcp_abort(struct tq_tcp_conn *c);

void tq_tcp_set_user(struct tq_tcp_conn *c, void *user);
void *tq_tcp_user(const struct tq_tcp_conn *c);
/*
 * Close every connection of this worker whose peer is @raddr:@rport (network order; @rport 0:
 * any port) through its application's on_kill (else reset it). Returns how many. Worker.
 */
unsigned int tq_tcp_kill_peer(struct tq_worker *w, uint32_t raddr, uint16_t rport,
			      const char *why);

/* The peer's IPv4 address, network order. Owner worker. */
uint32_t tq_tcp_remote_addr(const struct tq_tcp_conn *c);
/* Give @c data-plane priority class @prio (enum tq_prio, dataplane/tq_prio.h). Owner worker. */
void tq_tcp_set_prio(struct tq_tcp_conn *c, uint8_t prio);
/* @c's data-plane priority class (enum tq_prio; 0: normal). Owner worker. */
uint8_t tq_tcp_prio(const struct tq_tcp_conn *c);
void *tq_tcp_listener_user(const struct tq_tcp_conn *c);
struct tq_worker *tq_tcp_worker(const struct tq_tcp_conn *c);

#endif
