/*
 * tq_loadgen: an MQTT and AMQP 0-9-1 load generator with two transports that share this
 * workload core.
 *
 *   lg_core.c    the clients: MQTT over byte buffers (proto/mqtt's codec), the open-loop
 *                publish schedule, counting, the latency histogram, the report
 *   lg_amqp.c    --proto amqp: the AMQP 0-9-1 client (proto/amqp's codec) and its workloads
 *                (autoack, ack, confirms, fanout) on the same schedule and counts
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

/* LG_IDLE (--idle): CONNECT, CONNACK, then only PINGREQs; they neither publish nor
 * subscribe (memory per idle connection, bench/idle_conns.sh). */
enum lg_role { LG_PUB, LG_SUB, LG_IDLE };

enum lg_cstate {
	LG_CS_IDLE,       /* not connected yet */
	LG_CS_TCP,        /* TCP handshake */
	LG_CS_CONNACK,    /* CONNECT sent */
	LG_CS_SUBACK,     /* SUBSCRIBE sent */
	LG_CS_READY,      /* publishing / receiving */
	LG_CS_CLOSING,    /* DISCONNECT queued; closes once sent */
	LG_CS_CLOSED,
};

enum lg_proto { LG_MQTT, LG_AMQP };

/* AMQP workloads (--workload) */
enum lg_amqp_wl { LGA_AUTOACK, LGA_ACK, LGA_CONFIRMS, LGA_FANOUT };

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
	char topic[80];    /* publishers: the topic; subscribers: the filter ($share/g/... too) */
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
	uint16_t ping_every;  /* s between PINGREQs: half the keep alive in force */

	/* AMQP (lg_amqp.c) */
	uint8_t astep;        /* handshake step (enum in lg_amqp.c) */
	uint8_t setup_left;   /* setup replies still due before READY */
	bool await_close_ok;  /* connection.close sent: close TCP once close-ok is in */
	bool close_ok_seen;   /* close-ok is in: a reset now is the broker's way to close */
	uint8_t dlv;          /* consumer: 0, or a delivery's header (1) or body (2) is due */
	uint64_t body_left;   /* consumer: body bytes of the current delivery still due */
	uint64_t dlv_tag;     /* consumer: the current delivery's tag */
	uint64_t last_tag;    /* consumer (ack): the last delivery tag received */
	uint32_t unacked;     /* consumer (ack): deliveries not acknowledged yet */
	uint64_t conf_base;   /* publisher (confirms): every tag <= this is confirmed */
	uint8_t *tmpl;        /* publisher: basic.publish and content header frames */
	uint32_t tmpl_len;
};

#define LG_MAX_DSTS 8

struct lg_opts {
	const char *transport; /* "dpdk" or "kernel" */
	uint32_t dst;          /* broker address, network order (the first of dsts) */
	uint32_t dsts[LG_MAX_DSTS]; /* --dst A,B,...: the connections in ndst equal blocks */
	uint32_t ndst;
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
	uint8_t proto;         /* enum lg_proto */
	uint8_t workload;      /* AMQP: enum lg_amqp_wl */
	uint16_t prefetch;     /* AMQP ack: basic.qos prefetch-count */
	uint32_t ack_every;    /* AMQP ack: one basic.ack (multiple) per N deliveries */
	bool port_set;
	bool shared;           /* MQTT: subscribers share $share/g/PREFIX/0 (one gets each) */
	uint32_t idle;         /* MQTT: connections that only connect and stay (LG_IDLE) */
	uint16_t keepalive;    /* MQTT CONNECT keep alive, s (0: none); PINGREQ every half */
	double hold;           /* s between every client ready and the first PUBLISH */
};

/* The payload starts with: scheduled send TSC (8), publisher (4), sequence (8). */
#define LG_HDR 20

struct lg {
	struct lg_opts o;
	const struct lg_transport *tp;
	void *tp_ctx;
	struct lg_conn *conns; /* subscribers first, then publishers, then idle clients */
	uint32_t nconns;
	uint32_t *dirty;       /* connection ids with bytes to send */
	uint32_t ndirty;
	uint32_t fanout;       /* subscribers that receive each PUBLISH */
	bool seq_check;        /* per-publisher order is checked (not with competing consumers) */
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

/* shared by lg_core.c and lg_amqp.c */
uint8_t *lg_tx_reserve(struct lg_conn *c, uint32_t n);
void lg_mark_dirty(struct lg_conn *c);
void lg_conn_fail(struct lg_conn *c, uint64_t *counter, const char *why);
/* A message arrived at consumer @c: the sequence checks, counts and the histogram. */
void lg_count_rx(struct lg_conn *c, const uint8_t *payload, uint64_t now);
/* the client became READY */
void lg_conn_ready(struct lg_conn *c);
/* "publisher", "subscriber" or "idle client": for messages */
const char *lg_role_name(const struct lg_conn *c);
const char *lga_workload_name(uint8_t wl);

/* lg_amqp.c */
int lga_conn_init(struct lg_conn *c);
void lga_opened(struct lg_conn *c);
void lga_input(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now);
bool lga_pub_emit(struct lg *lg, struct lg_conn *c, uint64_t stamp);
/* queue connection.close (acks still owed first); false when it does not fit */
bool lga_close(struct lg_conn *c);
/* per loop: acks owed by consumers once the run is over */
void lga_step(struct lg_conn *c);
int lg_dpdk_run(int argc, char **argv);

/* The broker address @c connects to: --dst A,B,... splits the connections into equal
 * blocks, one per address (each address pair has its own 32768 source ports). */
static inline uint32_t
lg_conn_dst(const struct lg_conn *c)
{
	const struct lg_opts *o = &c->lg->o;
	uint32_t per = (c->lg->nconns + o->ndst - 1) / o->ndst;

	return o->dsts[c->id / per];
}

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
