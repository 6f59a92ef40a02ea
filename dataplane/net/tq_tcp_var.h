/*
 * TCP internals shared by the tq_tcp_*.c files of one worker's stack: the TCB, the
 * per-worker tables, and the functions the input, output and timer halves call in each
 * other. Nothing here is for applications (they use tq_tcp.h).
 *
 * Ownership: a TCB, its queues and its timers belong to one worker; only that worker
 * reads or writes them, except telemetry, which reads snapshots for `tachyonctl conns`.
 */
#ifndef TQ_TCP_VAR_H
#define TQ_TCP_VAR_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_hash.h>
#include <rte_mbuf.h>

#include "dataplane/tq_timer.h"
#include "tq_tcp.h"
#include "tq_tcp_cc.h"
#include "tq_tcp_codec.h"

struct tq_worker;
struct tq_ipv4_view;

enum tq_tcp_state {
	TQ_TCP_CLOSED = 0,
	TQ_TCP_SYN_SENT,
	TQ_TCP_SYN_RECEIVED,
	TQ_TCP_ESTABLISHED,
	TQ_TCP_FIN_WAIT_1,
	TQ_TCP_FIN_WAIT_2,
	TQ_TCP_CLOSE_WAIT,
	TQ_TCP_CLOSING,
	TQ_TCP_LAST_ACK,
	TQ_TCP_TIME_WAIT,
	TQ_TCP_NSTATES,
};

/* Timers of a TCB, one wheel timer each; user value = tcb index << 2 | kind. */
enum tq_tcp_timer_kind {
	TQ_TCP_T_REXMT = 0, /* retransmission, SYN retry, zero-window probe (persist) */
	TQ_TCP_T_DELACK,
	TQ_TCP_T_KEEP,      /* keepalive, and the SYN_RECEIVED/connect give-up */
	TQ_TCP_T_2MSL,      /* TIME_WAIT, FIN_WAIT_2 timeout */
	TQ_TCP_T_COUNT,
};

/* Four-tuple in network order, as the hash table's key (12 bytes, no padding). */
struct tq_tcp_key {
	uint32_t raddr;
	uint32_t laddr;
	uint16_t rport;
	uint16_t lport;
};

/* A run of contiguous out-of-order data: received segments chained. */
struct tq_tcp_ooo_seg {
	uint32_t seq;
	uint32_t len;
	struct rte_mbuf *m; /* payload only, headers stripped; owned by the queue */
};

/*
 * RACK (RFC 8985): one record per data segment in flight, in sequence order from snd_una,
 * with its latest transmission time. A ring comes from the worker's txrec pool when a
 * connection with SACK starts sending and goes back when everything is acknowledged;
 * without one (pool empty, no SACK) the connection uses dup ACKs and the RTO alone.
 */
#define TQ_TCP_TXREC_MAX 256
#define TQ_TCP_TXREC_SACKED 0x1  /* the peer SACKed all of it */
#define TQ_TCP_TXREC_LOST 0x2    /* marked lost, not yet sent again */
#define TQ_TCP_TXREC_RETRANS 0x4 /* sent more than once */

struct tq_tcp_txrec {
	uint32_t start, end;  /* sequence span */
	uint64_t xmit_tsc;    /* last transmission */
	uint32_t flags;
};

struct tq_tcp_txring {
	uint16_t head, n;     /* oldest record, records in use */
	uint16_t nmark;       /* records SACKed or marked lost (0: pipe is the flight) */
	uint16_t nrexmt;      /* records sent more than once (0: in transmission order) */
	struct tq_tcp_txrec r[TQ_TCP_TXREC_MAX];
};

/* Change a record's flags, keeping its ring's counts (every change goes through here). */
static inline void
tq_tcp_txrec_set(struct tq_tcp_txring *t, struct tq_tcp_txrec *r, uint32_t flags)
{
	const uint32_t mark = TQ_TCP_TXREC_SACKED | TQ_TCP_TXREC_LOST;

	t->nmark = (uint16_t)(t->nmark + ((flags & mark) != 0) - ((r->flags & mark) != 0));
	t->nrexmt = (uint16_t)(t->nrexmt + ((flags & TQ_TCP_TXREC_RETRANS) != 0) -
			       ((r->flags & TQ_TCP_TXREC_RETRANS) != 0));
	r->flags = flags;
}

struct tq_tcp_conn {
	/* identity */
	struct tq_tcp_key key;
	uint32_t idx;           /* index in the worker's TCB array */
	uint16_t port;          /* ethdev port towards the peer */
	uint8_t state;
	uint8_t listener;       /* listener index + 1 for passive opens, 0 for active */
	uint8_t prio;           /* enum tq_prio (dataplane/tq_prio.h): 0 = normal */
	struct tq_worker *w;
	const struct tq_tcp_app *app;
	void *user;

	/* flags */
	bool app_closed;        /* tq_tcp_close: no more on_data */
	bool fin_queued;        /* send FIN after the queued data */
	bool fin_sent;
	bool ack_now;           /* send an ACK at the end of input processing */
	bool delack_pending;
	bool want_writable;     /* tq_tcp_send returned -ENOBUFS */
	bool connected_cb_done; /* on_connected was called (on_closed must follow) */
	bool ts_ok, sack_ok, ws_ok;
	bool in_recovery;       /* NewReno fast recovery */
	bool rtt_timing;
	bool pto_armed;         /* the REXMT timer is a tail loss probe timeout */
	bool tlp_done;          /* a probe was sent; none again until new data is ACKed */
	bool from_cookie;
	bool in_input;          /* inside segment_arrives: tq_tcp_send defers output */
	bool ack_burst;         /* an ACK is owed at the end of this poll iteration (listed) */
	bool has_rcv_fin;       /* the peer's FIN arrived out of order at rcv_fin_seq */
	uint32_t rcv_fin_seq;

	/* send sequence space (RFC 9293) */
	uint32_t iss;
	uint32_t snd_una, snd_nxt, snd_max;
	uint32_t snd_wnd;       /* peer's window, scaled */
	uint32_t snd_wl1, snd_wl2;
	uint32_t max_snd_wnd;
	uint16_t snd_mss;       /* most payload per segment we send */
	uint8_t snd_wscale;     /* shift for the peer's window */
	uint8_t rcv_wscale;     /* shift for our window */

	/* send queue: a singly linked list of mbuf segments (->next) from snd_una */
	struct rte_mbuf *sq_head, *sq_tail;
	uint32_t sq_off;        /* bytes of sq_head already acknowledged */
	struct rte_mbuf *sq_cur; /* where the last segment sent began (attach_payload) */
	uint32_t sq_cur_pos;    /* its first byte, counted from sq_head's first byte */
	uint32_t sq_bytes;      /* unacknowledged + unsent bytes */
	uint32_t sq_mbufs;      /* mbufs in the send queue (the worker sums them: sq_mbufs) */

	/* SACK scoreboard (RFC 6675): what the peer holds above snd_una, merged, sorted */
#define TQ_TCP_SB_MAX 8
	struct tq_tcp_sack_block sb[TQ_TCP_SB_MAX];
	uint8_t sb_n;
	uint32_t rexmt_high;    /* in recovery: holes below this were retransmitted */
	bool rexmt_round_done;  /* every hole was retransmitted once ... */
	uint32_t rexmt_round_mark; /* ... before data from here on was sent */

	/* congestion control: the algorithm sets cwnd/ssthresh; recovery state is ours */
	const struct tq_tcp_cc_ops *cc;
	uint32_t cwnd, ssthresh;
	uint32_t dupacks;
	uint32_t recover;

	/*
	 * Undo of a spurious reduction (RFC 3708 with D-SACK, RFC 3522 Eifel with
	 * timestamps): a recovery remembers cwnd and ssthresh before its cut and what it
	 * retransmitted. When the peer reports every retransmission as a duplicate, or the
	 * ACK for the first one echoes a timestamp older than it (the original arrived), the
	 * segments were late, not lost, and the cut is taken back.
	 */
#define TQ_TCP_UNDO_MAX 8
	bool undo_ok;           /* this recovery's cut may still be undone */
	bool undo_first;        /* no retransmission yet in this recovery */
	bool undo_eifel;        /* the Eifel test is pending for the first retransmission */
	bool undo_full;         /* more retransmissions than undo_rx holds: no D-SACK undo */
	uint8_t undo_n;         /* retransmitted spans not yet reported duplicate */
	uint32_t undo_cwnd, undo_ssthresh;
	uint32_t undo_tsval;    /* our timestamp on the first retransmission */
	uint32_t undo_end;      /* end of the first retransmission */
	struct tq_tcp_sack_block undo_rx[TQ_TCP_UNDO_MAX];

	/* D-SACK (RFC 2883): a duplicate segment's span, reported first on the next ACK */
	bool dsack;
	struct tq_tcp_sack_block dsack_blk;

	/* RTT (RFC 6298), microseconds */
	uint32_t srtt_us, rttvar_us, rto_us;
	uint32_t rtt_seq;
	uint64_t rtt_start_tsc;
	uint8_t backoff;        /* consecutive RTO expirations */
	uint8_t probes;         /* keepalive probes without answer */

	/* timestamps (RFC 7323) */
	uint32_t ts_recent;
	uint32_t last_ack_sent;

	/* receive sequence space */
	uint32_t irs;
	uint32_t rcv_nxt;
	uint32_t rcv_adv;       /* right edge of the window we advertised */
	uint32_t rx_held;       /* bytes given to the application, not yet released */
	uint32_t ooo_bytes;
	uint32_t ooo_mbufs;     /* mbufs the queue holds (hard bound: see tq_tcp_reass.c) */
	uint32_t ooo_last;      /* seq of the last out-of-order arrival: its SACK block goes first */
	uint16_t ooo_n;
	struct tq_tcp_ooo_seg *ooo; /* runs sorted by seq, from ooo_pool while ooo_n > 0, else NULL */

	/* RACK-TLP (RFC 8985); owned ring, NULL when nothing is in flight */
	struct tq_tcp_txring *txr;
	uint64_t rack_xmit_tsc;  /* sent last among the segments delivered so far */
	uint32_t rack_end;       /* its end (tie-break) */
	uint32_t rack_rtt_us;    /* its RTT */
	uint32_t min_rtt_us;     /* lowest RTT seen (0 = none yet) */
	uint32_t rack_reo_ms;    /* the reorder timer is due in this many ms, 0 = none */
	bool rack_timer;         /* the REXMT timer is RACK's reorder timer */
	bool rack_reord;         /* a segment was delivered after one sent later (reordering) */

	uint32_t timers[TQ_TCP_T_COUNT]; /* wheel handles, 0 when not armed */
	uint64_t last_rx_tsc;

	struct tq_tcp_conn *next_free;
};

struct tq_tcp_listener {
	uint16_t port;          /* host order */
	const struct tq_tcp_app *app;
	void *user;
};

#define TQ_TCP_MAX_LISTENERS 32

/* One worker's TCP. Owned by the worker (allocated at boot by tq_tcp_worker_init). */
struct tq_tcp_worker {
	struct tq_tcp_conn *conns;   /* max_conns TCBs */
	struct tq_tcp_conn *free;    /* free list */
	struct tq_tcp_conn *reap;    /* closed this iteration; freed by tq_tcp_reap */
	uint32_t nb_conns;           /* in use */
	uint32_t half_open;          /* SYN_RECEIVED count (passive) */
	struct rte_hash *table;      /* tq_tcp_key -> index in conns */
	struct tq_timer_wheel wheel; /* 1 tick = 1 ms */
	uint64_t tsc_per_tick;
	uint64_t now_tick;
	struct rte_mempool *clone_pool; /* indirect mbufs for zero-copy segments */
	struct rte_mempool *txrec_pool; /* struct tq_tcp_txring, RACK's records */
	uint32_t ooo_cap;            /* entries of an ooo array (ooo_max_segs at boot) */
	struct rte_mempool *ooo_pool; /* ooo arrays: a TCB holds one only while data waits in it */
	uint32_t full_raddr;         /* connect found no port for full_raddr:full_rport ... */
	uint16_t full_rport;
	uint64_t full_tick;          /* ... at this tick (0 = no such memory) */
	uint16_t next_ephemeral;
	uint32_t cookie_secret[4];
	uint64_t last_cookie_tick;   /* when a SYN cookie was last sent, 0 = never */
	/* Memory pressure: with under a quarter of the worker's mbuf pool free while send
	 * queues hold half of it, applications get no send space, so that queued data cannot
	 * take what RX, headers and ACKs need; once three eighths are free again (or the
	 * queues hold under a quarter), waiting connections get on_writable. Memory held
	 * elsewhere (a broker's queued messages) never holds sending back: sending frees it. */
	uint32_t sq_mbufs;           /* mbufs in all send queues */
	/* Connections owed an ACK at the end of the poll iteration (tcp.delack_ms = 0): one
	 * ACK for every two segments of a burst and one for what is left at its end, not one
	 * per segment. Indices into conns; a freed TCB has ack_burst clear and is skipped. */
#define TQ_TCP_ACK_LIST 256
	uint32_t ack_list[TQ_TCP_ACK_LIST];
	uint32_t ack_n;
	bool mem_low;
	uint32_t mem_avail;          /* free mbufs, refreshed every 32 asks (each poll while low) */
	uint32_t mem_asks;
	uint32_t mem_cursor;         /* where the next wake-up scan starts (fairness) */
};

/* Listeners: written by control at boot, read by workers after. */
extern struct tq_tcp_listener tq_tcp_listeners[TQ_TCP_MAX_LISTENERS];
extern unsigned int tq_tcp_nb_listeners;
extern struct tq_tcp_conf tq_tcp_cfg; /* dp: ro, cp: wo at boot */

/* tq_tcp.c */
int tq_tcp_worker_init(struct tq_worker *w, int socket);
void tq_tcp_worker_free(struct tq_worker *w);
void tq_tcp_reap(struct tq_worker *w);
struct tq_tcp_conn *tq_tcp_conn_alloc(struct tq_worker *w, const struct tq_tcp_key *key,
				      uint16_t port);
void tq_tcp_conn_free(struct tq_tcp_conn *c);
struct tq_tcp_conn *tq_tcp_lookup(struct tq_worker *w, const struct tq_tcp_key *key);
/* Enter CLOSED: stop timers, call on_closed(err) when the app knew the connection, free. */
void tq_tcp_drop(struct tq_tcp_conn *c, int err);
void tq_tcp_set_state(struct tq_tcp_conn *c, enum tq_tcp_state s);
uint32_t tq_tcp_new_iss(struct tq_worker *w, const struct tq_tcp_key *key);
unsigned int tq_tcp_owner(const struct tq_tcp_key *key, unsigned int nb_workers);
const char *tq_tcp_state_name(unsigned int s);
uint32_t tq_tcp_ts_now(struct tq_worker *w);
/* Ephemeral source ports of tq_tcp_connect: 32768..65535. */
#define TQ_TCP_EPHEMERAL_FIRST 32768u
#define TQ_TCP_EPHEMERAL_PORTS 32768u
/* @c is a TIME_WAIT that an outgoing connect may take over (tcp_tw_reuse's rule). */
bool tq_tcp_tw_reusable(const struct tq_tcp_conn *c);
int tq_tcp_find_listener(uint16_t port_host);

/* tq_tcp_input.c */
void tq_tcp_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m,
		  const struct tq_ipv4_view *ip);
/* A segment another worker handed over (TQ_MSG_TCP_SEGMENT): @m starts at its IPv4 header. */
void tq_tcp_input_forwarded(struct tq_worker *w, uint16_t port, struct rte_mbuf *m);
/* RACK loss marking and retransmission after an ACK or when its reorder timer (@timer)
 * fired; arms the REXMT timer. */
void tq_tcp_rack_recover(struct tq_tcp_conn *c, bool timer);

/* tq_tcp_output.c */
#define TQ_TCP_SEND_ACK 0x1   /* send at least an ACK */
#define TQ_TCP_SEND_PROBE 0x2 /* a tail loss probe: one new segment even without cwnd */
void tq_tcp_output(struct tq_tcp_conn *c, unsigned int flags);
void tq_tcp_send_syn(struct tq_tcp_conn *c);
void tq_tcp_send_ctl(struct tq_tcp_conn *c, uint8_t flags, uint32_t seq);
void tq_tcp_retransmit_first(struct tq_tcp_conn *c);
/* Send the highest outstanding segment again (a tail loss probe). */
void tq_tcp_retransmit_last(struct tq_tcp_conn *c);
/* In SACK recovery: retransmit up to @max_segs holes the scoreboard shows. Returns count. */
unsigned int tq_tcp_sack_retransmit(struct tq_tcp_conn *c, unsigned int max_segs);
/* In recovery: remember a retransmission of [@seq, @seq + @len) for a later undo. */
void tq_tcp_undo_note(struct tq_tcp_conn *c, uint32_t seq, uint32_t len);
/* Merge the peer's SACK blocks into the scoreboard; drop what snd_una passed. */
void tq_tcp_sack_update(struct tq_tcp_conn *c, const struct tq_tcp_opts *o);
uint32_t tq_tcp_sacked_bytes(const struct tq_tcp_conn *c);
/* Build and send a segment that belongs to no connection (RST, SYN cookie SYN-ACK). */
void tq_tcp_send_stateless(struct tq_worker *w, uint32_t laddr, uint32_t raddr,
			   const struct tq_tcp_hdr_spec *spec);
/* Answer @v, which found no connection, with RST (unless it is one). */
void tq_tcp_send_rst_for(struct tq_worker *w, const struct tq_ipv4_view *ip,
			 const struct tq_tcp_view *v);
uint32_t tq_tcp_rcv_window(const struct tq_tcp_conn *c);
/* RACK (RFC 8985). The ring of @c comes and goes with data in flight (attach/release). */
void tq_tcp_rack_release(struct tq_tcp_conn *c);
/* Records wholly below @ack are delivered: update RACK's state and forget them. */
void tq_tcp_rack_acked(struct tq_tcp_conn *c, uint32_t ack);
/* Mark records the scoreboard covers as SACKed (delivered). */
void tq_tcp_rack_sacked(struct tq_tcp_conn *c);
/* Mark lost what was sent before the last delivered segment by more than its RTT plus the
 * reordering window; sets rack_reo_ms for the rest. Returns true if anything is lost. */
bool tq_tcp_rack_detect(struct tq_tcp_conn *c);
/* Send lost records again while pipe < cwnd (at least @min_segs). Returns count. */
unsigned int tq_tcp_rack_retransmit(struct tq_tcp_conn *c, unsigned int min_segs);
/* True if a record is marked lost and not yet sent again. */
bool tq_tcp_rack_lost_pending(const struct tq_tcp_conn *c);
/* A tail loss probe: send again the first segment marked lost, else the highest one not
 * SACKed. False if there is none. */
bool tq_tcp_rack_probe(struct tq_tcp_conn *c);
/* A retransmission timeout: everything not SACKed is lost. */
void tq_tcp_rack_rto(struct tq_tcp_conn *c);
/* RFC 6675 pipe with RACK's marks: bytes sent, not SACKed and not lost. */
uint32_t tq_tcp_rack_pipe(const struct tq_tcp_conn *c);
void tq_tcp_sq_acked(struct tq_tcp_conn *c, uint32_t bytes);

/* tq_tcp.c: after memory pressure, on_writable for the connections that waited */
void tq_tcp_mem_recover(struct tq_worker *w);
/* tq_tcp_output.c: the ACKs owed at the end of the poll iteration */
void tq_tcp_ack_flush(struct tq_worker *w);

/* tq_tcp_timer.c */
void tq_tcp_timer_set(struct tq_tcp_conn *c, enum tq_tcp_timer_kind k, uint64_t ms);
void tq_tcp_timer_clear(struct tq_tcp_conn *c, enum tq_tcp_timer_kind k);
void tq_tcp_timers_clear(struct tq_tcp_conn *c);
void tq_tcp_rexmt_arm(struct tq_tcp_conn *c);
/* New data went out: restart the timer if it is off or a probe timeout (RFC 8985 7.2). */
void tq_tcp_probe_rearm(struct tq_tcp_conn *c);
void tq_tcp_rtt_sample(struct tq_tcp_conn *c, uint32_t rtt_us);
void tq_tcp_timers_run(struct tq_worker *w);

/* tq_tcp_syncookie.c */
/* Answer the SYN @v for @key with a stateless SYN-ACK carrying a cookie. */
void tq_tcp_syncookie_send(struct tq_worker *w, const struct tq_tcp_view *v,
			   const struct tq_tcp_key *key);
/* 0 and *@mss when @v's ACK carries a valid cookie for @key; -ENOENT or -EINVAL. */
int tq_tcp_syncookie_check(struct tq_worker *w, const struct tq_tcp_key *key,
			   const struct tq_tcp_view *v, uint16_t *mss);

/* tq_tcp_reass.c */
/* Keep @m (payload @len bytes at @seq, beyond rcv_nxt) for later. Takes @m. */
void tq_tcp_ooo_insert(struct tq_tcp_conn *c, uint32_t seq, uint32_t len, struct rte_mbuf *m);
/* Deliver what the out-of-order queue holds contiguous with rcv_nxt. */
void tq_tcp_ooo_pull(struct tq_tcp_conn *c);
void tq_tcp_ooo_purge(struct tq_tcp_conn *c);

/* A duplicate of [@start, @end) arrived: report it in a D-SACK block (RFC 2883) at once. */
static inline void
tq_tcp_dsack_note(struct tq_tcp_conn *c, uint32_t start, uint32_t end)
{
	if (!c->sack_ok)
		return;
	c->dsack = true;
	c->dsack_blk.start = start;
	c->dsack_blk.end = end;
	c->ack_now = true;
}

#endif
