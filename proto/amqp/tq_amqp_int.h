/*
 * Inside the AMQP broker. Not for use outside proto/amqp.
 *
 * Ownership:
 * - struct tq_amqp_conn and its channels: the worker owning the TCP connection. Other
 *   workers name a channel by a handle (worker, connection slot, generation, channel) and
 *   reach it only through that worker's ring; a stale handle finds nothing and is counted.
 * - struct tq_amqp_queue: created under the queue directory's lock by the declaring worker
 *   (or the control thread: tq_amqp_admin.c), then its state (messages, consumers: tq_aqueue,
 *   and the settings policies change) is touched only by its home worker; counts are
 *   atomics readable by all. Queues are found by name through the directory
 *   (declare path), by index through tq_amqp.queues[] (everyone), and routed to through
 *   routing/tq_exchange (RCU).
 * - Messages are routing/tq_msg, shared by reference (body chains by mbuf reference).
 */
#ifndef TQ_AMQP_INT_H
#define TQ_AMQP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/tq_timer.h"
#include "dataplane/tq_worker.h"
#include "proto/amqp/tq_amqp_broker.h"
#include "proto/amqp/tq_amqp_codec.h"
#include "routing/tq_msg.h"

/* ring message types (after MQTT's four) */
enum {
	TQ_MSG_AMQP_OP = TQ_MSG_APP_BASE + 8, /* b: struct tq_amqp_op * (owned by receiver) */
	TQ_MSG_AMQP_AUTH = TQ_MSG_APP_BASE + 9, /* b: struct tq_ctl_req * (the login's answer) */
};

/* A channel handle: worker (8) | connection slot (24) | generation (16) | channel (16). */
#define TQ_AMQP_H(w, slot, gen, ch)                                                                \
	((uint64_t)(w) << 56 | (uint64_t)((slot)&0xffffff) << 32 | (uint64_t)((gen)&0xffff) << 16 | \
	 (uint64_t)(ch))
#define TQ_AMQP_H_WORKER(h) ((uint16_t)((h) >> 56))
#define TQ_AMQP_H_SLOT(h) ((uint32_t)((h) >> 32) & 0xffffff)
#define TQ_AMQP_H_GEN(h) ((uint16_t)((h) >> 16))
#define TQ_AMQP_H_CHAN(h) ((uint16_t)(h))

enum tq_amqp_cstate {
	AC_HEADER = 0, /* waiting for the protocol header */
	AC_START_OK,   /* connection.start sent */
	AC_TUNE_OK,    /* connection.tune sent */
	AC_OPEN,       /* tune-ok received, waiting for connection.open */
	AC_RUNNING,
	AC_CLOSING,    /* connection.close sent: only close/close-ok are read */
	AC_DEAD,       /* TCP close requested */
};

struct tq_amqp_conn;

/* A delivery the client has not acknowledged yet (in delivery-tag order). */
struct tq_amqp_unacked {
	uint64_t tag;
	uint32_t qidx, qgen;
	uint64_t qdid;   /* the queue's delivery id */
	uint8_t cons;    /* consumer index in the channel, 0xff: basic.get */
};

struct tq_amqp_consumer {
	char tag[256];
	uint8_t tag_len;
	bool used;
	bool no_ack;
	bool no_wait;
	uint32_t qidx, qgen;
	uint32_t owed; /* deliveries handed to TCP whose credit the home has not had back */
};

#define TQ_AMQP_MAX_CONSUMERS 64 /* per channel */
#define TQ_AMQP_ROUTE_MAX 1024   /* queues one publish reaches */
#define TQ_AMQP_ROUTE_DEPTH 4    /* nested routes (dead letters of dead letters) */
/*
 * Credit between a queue's home and a consumer: the home sends at most TQ_AMQP_CREDIT
 * deliveries a consumer's channel has not given back (OP_CREDIT), and pauses the consumer at
 * 0. The channel gives credit back in batches for deliveries TCP took, while its connection
 * has no output waiting (and, when mbufs run short, little in its send queue): so what waits
 * for a slow consumer's socket stays in its queue, not in mbufs (acks or no acks).
 */
#define TQ_AMQP_CREDIT 256
#define TQ_AMQP_CREDIT_BATCH 64

/* A publish in confirm mode waiting for @left queue homes. */
struct tq_amqp_confirm {
	uint64_t seq;
	uint32_t left;
	bool nack;
	bool tx;  /* a tx.commit's publish: counts down tx_pending instead of acking */
};

/* An ack/nack/reject inside a transaction, applied at tx.commit. */
struct tq_amqp_txsettle {
	uint64_t tag;
	bool multiple;
	uint8_t mode;
	uint32_t method;
};

struct tq_amqp_chan {
	uint16_t id;
	bool closing;      /* channel.close sent, waiting for close-ok */
	bool flow_active;
	/* content being assembled: basic.publish, then a header, then bodies */
	struct tq_msg *pending;
	uint64_t body_left;
	uint8_t publish_flags; /* bit 0 mandatory */
	char pub_exchange[256];
	uint8_t pub_exchange_len;
	/* publisher confirms and transactions */
	bool confirm;
	bool tx;
	uint64_t next_seq;   /* confirm sequence of the next publish (from 1) */
	struct tq_amqp_confirm *confirms;
	uint32_t cf_n, cf_cap;
	struct tq_msg **tx_msgs; /* publishes held until tx.commit */
	uint32_t tx_n, tx_cap;
	struct tq_amqp_txsettle *tx_settles;
	uint32_t txs_n, txs_cap;
	uint32_t tx_pending;  /* committed publishes the queues have not taken yet */
	bool commit_waiting;  /* tx.commit-ok goes when tx_pending reaches 0 */
	/* the queue last declared on this channel: "" in later methods means it (spec) */
	char last_queue[256];
	uint8_t last_queue_len;
	/* consumers */
	struct tq_amqp_consumer cons[TQ_AMQP_MAX_CONSUMERS];
	uint16_t prefetch;   /* basic.qos prefetch-count for consumers started later */
	uint16_t global_prefetch; /* basic.qos global: unacked deliveries on the channel, 0: none */
	uint32_t live;       /* unacked consumer deliveries the client holds */
	struct tq_amqp_op *held, *held_tail; /* deliveries over the global prefetch, in order */
	bool paused;         /* the consumers' homes were told to pause */
	/* unacknowledged deliveries, tag order */
	struct tq_amqp_unacked *unacked;
	uint32_t un_head, un_n, un_cap; /* ring */
	uint64_t next_tag;
	/* basic.publish's permission on the exchange, for access snapshot acc_gen (0: none) */
	uint64_t acc_gen;
	bool acc_ok;
	uint8_t acc_xlen;
	char acc_x[256];
};

struct tq_amqp_conn {
	struct tq_tcp_conn *tcp;
	struct tq_worker *w;
	uint32_t slot;
	uint16_t gen;
	uint8_t state;
	bool sasl_ok;
	struct rte_mbuf *rx, *rx_tail;
	uint32_t rx_len;
	uint32_t unreleased;
	struct rte_mbuf *ctl;          /* frames TCP has not taken yet (kept in order) */
	struct rte_mbuf *ctl_tail;     /* its last segment */
	uint32_t ctl_len;
	bool ctl_blocked;              /* TCP refused ctl (send queue full): writable follows */
	bool dirty;                    /* ctl has bytes for TCP at the end of the iteration */
	uint32_t frame_max;
	uint16_t channel_max;
	uint16_t heartbeat;
	uint64_t last_rx_ms, last_tx_ms;
	uint32_t hb_timer;
	uint32_t waiting;              /* replies awaited from queue homes: reading paused */
	bool stalled;                  /* no memory for a message or body: reading paused until
					* memory is back (tq_amqp_stall_wait) or the tick */
	bool can_block;                /* its capabilities include connection.blocked */
	bool retry_frame;              /* set by a handler: no memory, leave the frame unread */
	bool ob_wait;                  /* stopped reading while operations wait for a full ring */
	bool credit_owed;              /* a channel holds credit it could not give back yet */
	bool held_retry;               /* a delivery waits on a channel for mbufs */
	struct tq_amqp_chan **chans;   /* [channel_max + 1], NULL = closed */
	uint64_t *excl;                /* exclusive queues it declared (qid), deleted with it */
	uint32_t nexcl, excl_cap;
	uint32_t nchans;
	char vhost[128];
	bool auth_pending;             /* start-ok's credentials are with the control thread */
	char user[256];                /* who logged in */
};

/* A cross-worker operation (pool: tq_amqp.op_pool). */
enum tq_amqp_op_kind {
	OP_ENQUEUE = 1,  /* publisher -> queue home: msg; a = confirm seq (0: none), handle */
	OP_CONFIRM,      /* home -> publisher: a = seq, b = 1 nack */
	OP_DELIVER,      /* home -> consumer: msg, a = qdid, b = cons | redelivered << 8 */
	OP_CONSUME,      /* consumer -> home: b = cons | no_ack << 8 | prefetch << 16 */
	OP_CANCEL,       /* consumer -> home: b = cons (its unacked go back) */
	OP_SETTLE,       /* consumer -> home: a = qdid, b = mode (ack, requeue, discard) */
	OP_GET,          /* consumer -> home: b = no_ack */
	OP_GET_REPLY,    /* home -> consumer: msg or NULL, a = qdid, b = ready | no_ack << 62 |
			  * redelivered << 63 (lent even when no-ack: acked once sent) */
	OP_PURGE,        /* -> home; reply: OP_REPLY a = count */
	OP_DELETE,       /* -> home, b = if_unused | if_empty << 1; reply: a = count or error */
	OP_REPLY,        /* home -> requester: a = result (>= 0) or -errno, b = request kind */
	OP_CANCELLED,    /* home -> consumer: the queue went (basic.cancel), b = cons */
	OP_PAUSE,        /* consumer -> home: b = cons | paused << 8 (a channel's global prefetch) */
	OP_CREDIT,       /* consumer -> home: b = cons, a = deliveries it may send more */
};

#define SETTLE_ACK 0
#define SETTLE_REQUEUE 1
#define SETTLE_DISCARD 2

/* OP_PURGE's b: the control thread waits for the answer; handle is its waiter (admin.c) */
#define TQ_AMQP_OP_CTL 0x400

struct tq_amqp_op {
	struct tq_amqp_op *next; /* in a worker's local list */
	uint8_t kind;
	uint8_t pad[3];
	uint32_t qidx, qgen;
	uint64_t handle;
	uint64_t a, b;
	struct tq_msg *msg; /* a reference, or NULL */
};

struct tq_amqp_worker {
	struct tq_timer_wheel wheel; /* 100 ms: heartbeats, queue expiry */
	uint64_t wheel_t0_ms;
	uint8_t *scratch;            /* frame_max + 16: frames split across mbufs; encoding */
	uint32_t scratch_cap;
	struct tq_amqp_conn **conns; /* slot -> connection */
	uint16_t *gens;
	uint32_t nslots, free_hint;
	uint64_t connected;
	bool blocked;                   /* connection.blocked sent (memory alarm) */
	struct tq_exchange_scratch *xs; /* routing scratch (tq_exchange_route) */
	void *xr[TQ_AMQP_ROUTE_DEPTH];  /* routing results per nesting depth (tq_amqp_queue.c) */
	uint32_t xr_depth;
	/* operations for this very worker: run from the loop, never inside the code that
	 * posted them (that code may be walking what the operation changes) */
	struct tq_amqp_op *local_head, *local_tail;
	bool xs_want;                   /* a publish needed more: grow it at the tick */
	/*
	 * Operations for other workers that found the destination's ring full, in order per
	 * destination ([nb_workers]): posted from the loop as room comes; meanwhile this worker's
	 * connections read nothing (their slots in ob_wait, or ob_wait_all when it overflowed).
	 */
	struct tq_amqp_op **ob_head, **ob_tail;
	uint32_t ob_n;
	uint32_t *ob_wait; /* [nslots] */
	uint32_t ob_nwait;
	bool ob_wait_all;
	uint32_t *dirty; /* [nslots]: connections with output for TCP (tq_amqp_conns_flush) */
	uint32_t ndirty;
	/* [nslots]: connections stalled for memory, read again from the loop once messages are
	 * back (at most every millisecond); the tick's walk takes those beyond it */
	uint32_t *stall_wait;
	uint32_t nstall;
	uint64_t stall_ms;
	uint32_t op_skip; /* publishes that may go before the operation pool is checked again */
	uint32_t snd_buf; /* tcp.snd_buf: what a connection's send queue may hold */
	uint64_t policies_seen;         /* tq_amqp.policies_bump when it last applied them */
};

struct tq_amqp_global {
	struct tq_amqp_conf conf;
	struct rte_mempool *op_pool;
	struct rte_mempool *msg_pool;
	struct tq_exchange_reg *xreg; /* exchanges, queue names, bindings of every vhost */
	uint64_t start_ms;
	uint64_t policies_bump;  /* cp: wo, dp: ro (atomic): bumped when policies change */
	uint64_t policy_applied; /* atomic: queues a policy was applied to (declare, change) */
};

extern struct tq_amqp_global tq_amqp;

struct tq_exchange_reg;
struct tq_exchange_scratch;

/* tq_amqp_conn.c */
extern const struct tq_tcp_app tq_amqp_app;
/*
 * Queue a whole frame (@len bytes at @buf) for the client, copied: 0, -EPIPE (closing) or
 * -ENOMEM (no mbufs: nothing queued). TCP gets it at the end of the loop iteration (or with
 * the next chain).
 */
int tq_amqp_send(struct tq_amqp_conn *c, const void *buf, size_t len);
/* Hand the output of the connections that wrote to TCP (the loop, once per iteration). */
unsigned int tq_amqp_conns_flush(struct tq_worker *w);
/* Encode and send a method on @channel; 0 or -errno. */
int tq_amqp_send_method(struct tq_amqp_conn *c, uint16_t channel, uint32_t method_idx,
			const void *args);
/* Close the connection with @code (connection.close, then wait for close-ok). */
void tq_amqp_conn_error(struct tq_amqp_conn *c, uint16_t code, const char *text,
			uint32_t method_id);
/* Close @ch with a soft error @code (channel.close). */
void tq_amqp_chan_error(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint16_t code,
			const char *text, uint32_t method_id);
/* Read what waited while replies from queue homes were outstanding. */
void tq_amqp_conn_resume(struct tq_amqp_conn *c);
struct tq_amqp_conn *tq_amqp_conn_by_handle(struct tq_worker *w, uint64_t h);
/* The control thread's answer to a login (ring message TQ_MSG_AMQP_AUTH). */
void tq_amqp_login_answer(struct tq_worker *w, const struct tq_ring_msg *msg);
static inline uint64_t
tq_amqp_handle(const struct tq_amqp_conn *c, uint16_t ch)
{
	return TQ_AMQP_H(c->w->id, c->slot, c->gen, ch);
}

size_t tq_amqp_xroute_size(void);

/* tq_amqp_access.c */
/* May this method run (permissions)? false: the channel was closed with 403. */
bool tq_amqp_access_method(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
			   const struct tq_amqp_method *m);
/* May the connection's user open @vhost? */
bool tq_amqp_access_vhost(struct tq_amqp_conn *c, const char *vhost);

/* tq_amqp_channel.c */
/* A method frame on an open channel (or channel.open); content frames below. */
void tq_amqp_chan_method(struct tq_amqp_conn *c, uint16_t channel, const struct tq_amqp_method *m);
void tq_amqp_chan_header(struct tq_amqp_conn *c, uint16_t channel, const uint8_t *p, uint32_t len);
/* 0, or 1: no memory for the body now, read the frame again later (nothing consumed). */
int tq_amqp_chan_body(struct tq_amqp_conn *c, uint16_t channel, uint32_t off, uint32_t len);
/* The channel goes (close-ok, connection end): consumers cancelled, unacked requeued. */
void tq_amqp_chan_free(struct tq_amqp_conn *c, struct tq_amqp_chan *ch);
/* An operation arrived for a channel of this worker. */
void tq_amqp_chan_op(struct tq_worker *w, struct tq_amqp_op *op);

void tq_amqp_confirm_done(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint64_t seq,
			  bool nack);

/* tq_amqp_admin.c */
/* The home answers the control thread's request @op (TQ_AMQP_OP_CTL) with @result; frees op. */
void tq_amqp_ctl_done(struct tq_amqp_op *op, int64_t result);
/* The vhosts the admin side lists: "/" at start, forgotten at close. Control thread. */
int tq_amqp_admin_init(void);
void tq_amqp_admin_close(void);

/*
 * The connection's output drained, or the tick: deliveries held for want of mbufs go out and
 * credit held back goes to the homes.
 */
void tq_amqp_chan_output_room(struct tq_amqp_conn *c);

/* ops */
/*
 * Post @op to worker @dst (owned by the receiver from now on). Never fails: when @dst's ring
 * is full it waits in order in this worker's outbox (counted, amqp_ring_full) and the
 * worker's connections stop reading until it is out. Returns 0.
 */
int tq_amqp_post(struct tq_worker *from, uint16_t dst, struct tq_amqp_op *op);
/* @c stops reading until the outbox is empty (the loop resumes it). Its worker only. */
void tq_amqp_ob_wait(struct tq_amqp_conn *c);
/* @c stalled (c->stalled) for want of memory: the loop reads it again once there is some. */
void tq_amqp_stall_wait(struct tq_amqp_conn *c);
struct tq_amqp_op *tq_amqp_op_new(struct tq_worker *w, uint8_t kind);
/* Run this worker's local operations (the loop's poll hook). */
unsigned int tq_amqp_local_run(struct tq_worker *w);
void tq_amqp_op_free(struct tq_amqp_op *op);

#endif
