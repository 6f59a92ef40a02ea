/*
 * tq_loadgen: an MQTT load generator with two transports that share this workload core.
 *
 *   lg_core.c    the clients: MQTT over byte buffers (proto/mqtt's codec), the open-loop
 *                publish schedule, counting, the latency histogram, the report
 *   lg_kernel.c  --transport kernel: Linux sockets, one epoll loop, busy polling
 *   lg_dpdk.c    --transport dpdk: tachyon's worker, ports and TCP in client mode
 *
 * One thread runs everything (the transport's loop calls lg_step and the input and
 * connection hooks below); nothing here is shared between threads.
 *
 * Byte flow: a transport hands received bytes to lg_conn_input (which frames and decodes
 * them, keeping a partial packet in the connection's rx buffer) and sends what the core
 * wrote into the connection's tx buffer; connections with bytes to send are on the dirty
 * list (lg_dirty), which the transport empties with lg_conn_sent.
 */
#ifndef TQ_LOADGEN_H
#define TQ_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tq_hist.h"

enum lg_role { LG_PUB, LG_SUB };

enum lg_cstate {
	LG_CS_IDLE,       /* not connected yet */
	LG_CS_TCP,        /* TCP handshake */
	LG_CS_CONNACK,    /* CONNECT sent */
	LG_CS_SUBACK,     /* SUBSCRIBE sent */
	LG_CS_READY,      /* publishing / receiving */
	LG_CS_CLOSING,    /* DISCONNECT queued; closes once sent */
	LG_CS_CLOSED,
};

enum lg_phase { LG_PH_CONNECT, LG_PH_RUN, LG_PH_DRAIN, LG_PH_CLOSE, LG_PH_DONE };

struct lg_conn {
	struct lg *lg;
	uint32_t id;       /* index in lg->conns */
	uint32_t idx;      /* publisher or subscriber number */
	uint8_t role;      /* enum lg_role */
	uint8_t state;     /* enum lg_cstate */
	bool dirty;        /* on lg->dirty */
	bool abort_req;    /* a protocol error: the loop aborts it */
	bool close_issued; /* CLOSING: the transport was told to close */
	void *tp;          /* the transport's handle (tq_tcp_conn, or unused) */
	int fd;            /* kernel transport */
	char topic[48];    /* publishers: the topic; subscribers: the filter */
	uint16_t topic_len;

	uint8_t *rx;       /* a partial packet carried over between reads */
	uint32_t rx_len, rx_cap;
	uint8_t *tx;       /* bytes to send: [tx_off, tx_len) */
	uint32_t tx_off, tx_len, tx_cap;

	/* publisher */
	uint64_t next_send;   /* TSC of the next scheduled PUBLISH (open loop) */
	uint64_t seq;         /* next sequence number */
	uint16_t next_pid;    /* next packet identifier (QoS 1) */
	uint32_t inflight;    /* QoS 1 PUBLISHes not yet acknowledged */
	uint64_t *pid_out;    /* QoS 1: bitmap of outstanding packet identifiers */
	/* subscriber */
	uint64_t *expect;     /* next sequence number expected from each publisher */
	uint64_t next_ping;   /* TSC of the next PINGREQ (0: none) */
};

struct lg_opts {
	const char *transport; /* "dpdk" or "kernel" */
	uint32_t dst;          /* broker address, network order */
	uint16_t port;
	uint8_t qos;           /* 0 or 1 */
	uint8_t level;         /* MQTT protocol level: 4 (3.1.1) or 5 */
	uint32_t pubs, subs;
	uint32_t size;         /* payload bytes (>= LG_HDR) */
	double rate;           /* PUBLISHes/s offered by all publishers together; 0 = max */
	double duration, warmup, drain;
	uint32_t window;       /* QoS 1: unacknowledged PUBLISHes per publisher */
	uint32_t max_connecting; /* TCP opens in flight at once */
	const char *topic_prefix;
	bool csv, csv_header, quiet;
};

/* The payload starts with: scheduled send TSC (8), publisher (4), sequence (8). */
#define LG_HDR 20

struct lg {
	struct lg_opts o;
	const struct lg_transport *tp;
	void *tp_ctx;
	struct lg_conn *conns; /* subscribers first, then publishers */
	uint32_t nconns;
	uint32_t *dirty;       /* connection ids with bytes to send */
	uint32_t ndirty;
	uint32_t fanout;       /* subscribers that receive each PUBLISH */
	enum lg_phase phase;
	uint64_t hz;           /* TSC ticks per second */
	uint64_t interval;     /* TSC between two PUBLISHes of one publisher (0: max rate) */
	uint64_t now;          /* TSC of this lg_step */
	uint64_t t_start, t_measure, t_end, t_deadline, t_last_rx;
	uint32_t next_conn;    /* next connection to open */
	uint32_t nb_connecting, nb_ready, nb_closed;

	/* counts over the whole run */
	uint64_t sent, acked, received, expected_rx;
	uint64_t sent_win, rx_win;      /* sent / received inside the window */
	uint64_t late;                  /* open loop: sends more than 1 ms behind schedule */
	uint64_t owed;                  /* open loop: PUBLISHes due by the end but never sent */
	uint64_t conn_errors;           /* TCP errors, refused connects, closes we did not ask for */
	uint64_t proto_errors;          /* undecodable or unexpected packets */
	uint64_t refused;               /* CONNACK or SUBACK refusals */
	uint64_t dups, gaps, reorders;  /* subscriber sequence checks */
	uint64_t bad_payload, bad_acks;
	uint64_t cyc_total, cyc_busy;   /* RUN phase: TSC in the loop, in iterations that did work */
	struct hist lat;                /* scheduled send → received, TSC */
};

/* What a transport offers the core. Every call is made from the loop's thread. */
struct lg_transport {
	const char *name;
	/* Start opening @c's TCP connection; lg_conn_opened or lg_conn_closed follows. */
	int (*connect)(struct lg_conn *c);
	/* @c's tx buffer is empty and it is CLOSING: close it in order. */
	void (*close)(struct lg_conn *c);
	/* Reset @c at once; lg_conn_closed follows (maybe from inside). */
	void (*abort)(struct lg_conn *c);
};

int lg_init(struct lg *lg, const struct lg_transport *tp, void *tp_ctx, uint64_t hz);
void lg_free(struct lg *lg);
/* The workload's state machine: open connections, publish on schedule, end the run. */
void lg_step(struct lg *lg, uint64_t now);
/* The TCP connection is up: CONNECT goes out. */
void lg_conn_opened(struct lg_conn *c);
/* Bytes arrived in order. */
void lg_conn_input(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now);
/* The connection is gone (err 0: in order). */
void lg_conn_closed(struct lg_conn *c, int err);
/* The transport took @n bytes from the tx buffer. */
void lg_conn_sent(struct lg_conn *c, uint32_t n);
/* Print the summary (and CSV); returns 0 when the counts add up. */
int lg_report(struct lg *lg);
int lg_parse_opts(struct lg_opts *o, int argc, char **argv);
void lg_usage(void);

int lg_kernel_run(struct lg_opts *o);
int lg_dpdk_run(int argc, char **argv);

static inline uint32_t
lg_tx_pending(const struct lg_conn *c)
{
	return c->tx_len - c->tx_off;
}

/* One loop iteration from @t0 to @t1 that did (@busy) or did not do work. */
static inline void
lg_account(struct lg *lg, uint64_t t0, uint64_t t1, bool busy)
{
	if (lg->phase == LG_PH_RUN && t0 >= lg->t_measure) {
		lg->cyc_total += t1 - t0;
		if (busy)
			lg->cyc_busy += t1 - t0;
	}
}

#endif
