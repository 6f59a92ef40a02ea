/*
 * Inside the MQTT broker: connections, sessions and what travels between workers.
 * Not for use outside proto/mqtt.
 *
 * Ownership:
 * - struct tq_mqtt_conn: one per TCP connection, created in on_connected, freed in
 *   on_closed, touched only by the worker that owns the TCP connection.
 * - struct tq_mqtt_sess: one per client id, owned by exactly one worker at a time (the
 *   slot's owner). It moves to another worker when its client reconnects there: the old
 *   owner hands the pointer over its ring (TAKEOVER / MOVED) and never touches it again.
 * - Slots (tq_mqtt_slots[]): global, one per session. owner is written by the worker that
 *   owns the session (or under the directory lock when a session is born) and read by
 *   everyone (atomics); sess is read only by the owner. Trie entries name a session by
 *   key = gen << 32 | slot, so an entry left by an ended session is recognised as stale.
 * - The client-id directory: a hash table under a mutex, used at CONNECT and when a
 *   session ends only (never per message).
 * - Messages (routing/tq_msg.h) are shared by reference; queue entries hold one each.
 */
#ifndef TQ_MQTT_INT_H
#define TQ_MQTT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/tq_prio.h"
#include "dataplane/tq_timer.h"
#include "dataplane/tq_worker.h"
#include "proto/mqtt/tq_mqtt_broker.h"
#include "proto/mqtt/tq_mqtt_codec.h"
#include "routing/tq_msg.h"
#include "routing/tq_retain.h"
#include "routing/tq_trie.h"

/* ring message types */
enum {
	TQ_MSG_MQTT_DELIVER = TQ_MSG_APP_BASE, /* b: struct tq_mqtt_batch * (owned by receiver) */
	TQ_MSG_MQTT_TAKEOVER,                  /* a: slot, b: gen << 16 | requesting worker */
	TQ_MSG_MQTT_MOVED,                     /* a: slot, b: struct tq_mqtt_sess * (now yours) */
	TQ_MSG_MQTT_RETRY,                     /* a: slot: the session ended; look the id up again */
	TQ_MSG_MQTT_AUTH,                      /* b: struct tq_ctl_req * (a login's answer) */
};

#define TQ_MQTT_QENT_SUBIDS 6
#define TQ_MQTT_OUT_ALIASES 32 /* outbound topic aliases per connection, at most */

enum tq_mqtt_qstate {
	QE_QUEUED = 0,
	QE_WAIT_PUBACK,
	QE_WAIT_PUBREC,
	QE_WAIT_PUBCOMP,
};

/* One message queued or in flight for one session (pool: tq_mqtt.qent_pool). */
struct tq_mqtt_qent {
	struct tq_mqtt_qent *next;
	struct tq_msg *msg; /* a reference; NULL once PUBREC came (only PUBREL/PUBCOMP left) */
	uint16_t pkt_id;
	uint8_t qos;
	uint8_t state; /* enum tq_mqtt_qstate */
	bool retain;   /* the retain flag this delivery carries */
	uint8_t nsub_ids;
	uint32_t sub_ids[TQ_MQTT_QENT_SUBIDS];
};

/* A subscription as the session remembers it (to remove it, to list it). */
struct tq_mqtt_subrec {
	char *filter; /* the filter without "$share/group/" (malloc'd, with group after it) */
	char *group;  /* NULL or the share name */
	uint16_t flen, glen;
	uint64_t data;
};

/* Subscription options packed in a trie entry's data. */
#define SUBD_QOS(d) ((uint8_t)((d)&3))
#define SUBD_NO_LOCAL(d) (((d) >> 2) & 1)
#define SUBD_RAP(d) (((d) >> 3) & 1)
#define SUBD_SUBID(d) ((uint32_t)((d) >> 8))
#define SUBD_MAKE(qos, nl, rap, subid)                                                             \
	((uint64_t)(qos) | (uint64_t)(nl) << 2 | (uint64_t)(rap) << 3 | (uint64_t)(subid) << 8)

struct tq_mqtt_conn;

struct tq_mqtt_sess {
	uint32_t slot, gen;
	struct tq_mqtt_conn *conn; /* NULL while offline */
	char *client_id;           /* malloc'd, NUL-terminated */
	uint16_t client_id_len;
	uint8_t level;
	uint32_t expiry_s;         /* v5 session expiry; v3: 0 clean, UINT32_MAX kept */
	uint32_t expiry_timer;     /* on the owner's wheel, 0: none */
	/* queued, not yet sent */
	struct tq_mqtt_qent *q_head, *q_tail;
	uint32_t q_len;
	/* sent, waiting for PUBACK / PUBREC / PUBCOMP, in sending order */
	struct tq_mqtt_qent **inflight;
	uint32_t inflight_n, inflight_cap;
	uint16_t next_pkt_id;
	/* QoS 2 packet ids received, PUBREC sent, PUBREL not yet received */
	uint16_t *qos2_in;
	uint32_t qos2_in_n, qos2_in_cap;
	struct tq_mqtt_subrec *subs;
	uint32_t nsubs, subs_cap;
	/* will: published when the connection is lost (after will_delay_s, v5) */
	struct tq_msg *will;
	uint32_t will_delay_s;
	uint32_t will_timer;
};

enum tq_mqtt_cstate {
	CS_NEW = 0,      /* waiting for CONNECT */
	CS_WAIT_SESSION, /* CONNECT read; the session is on its way from another worker */
	CS_ACTIVE,
	CS_CLOSING,      /* no more input is read */
	CS_WAIT_AUTH,    /* credentials or a SCRAM step are with the control thread */
	CS_AUTH,         /* SCRAM: server-first sent, the client's AUTH expected */
};

/* Where a connection's login stands (tq_mqtt_auth.c). */
enum {
	MQ_AUTH_NONE = 0,
	MQ_AUTH_OK,      /* the CONNECT may go on (c->user says who) */
	MQ_AUTH_REFUSED, /* the CONNECT is refused when read again */
};

struct tq_mqtt_alias {
	char *topic; /* malloc'd */
	uint16_t len;
};

/* What a CONNECT asked for, kept while its session is fetched from another worker. */
struct tq_mqtt_connreq {
	char *client_id;
	uint16_t client_id_len;
	bool assigned_id;  /* v5: we chose the client id */
	bool clean_start;
	uint32_t expiry_s;
	struct tq_msg *will; /* a reference, or NULL */
	uint32_t will_delay_s;
	uint32_t slot;     /* while waiting: the slot asked for */
};

struct tq_mqtt_conn {
	struct tq_tcp_conn *tcp;
	struct tq_worker *w;
	struct tq_mqtt_sess *sess;     /* once CS_ACTIVE */
	struct tq_mqtt_connreq *req;   /* CS_WAIT_SESSION only */
	struct tq_mqtt_conn *wait_next; /* in the worker's waiting list */
	struct rte_mbuf *rx, *rx_tail; /* received, not yet consumed; owned */
	uint32_t rx_len;
	uint32_t unreleased;           /* bytes not yet given back to TCP's window */
	/* output TCP did not take yet, control packets and deliveries in the order they were
	 * made (tq_mqtt_out_*); owned; ctl_tail is its last segment */
	struct rte_mbuf *ctl, *ctl_tail;
	uint32_t ctl_len;
	bool dirty;                    /* on the worker's dirty list of class dirty_cls */
	bool pump_retry;               /* a delivery found no mbuf: the flush pumps again */
	uint8_t dirty_cls;
	struct tq_mqtt_conn *dirty_prev, *dirty_next;
	uint64_t dirty_gen;            /* the flush round it was listed in (tq_mqtt_conns_flush) */
	uint8_t state;
	uint8_t level;
	bool request_problem_info;
	bool lost;                     /* closed without DISCONNECT: the will goes out */
	bool throttled;                /* a subscriber of its last PUBLISH is full: not reading */
	struct tq_mqtt_conn *thr_next; /* in the worker's throttled list */
	uint16_t keepalive_s;
	uint16_t client_receive_max;
	uint32_t client_max_packet;    /* 0: no limit */
	uint64_t last_rx_ms;
	uint32_t ka_timer;
	uint16_t alias_max;            /* ours, as told in CONNACK */
	struct tq_mqtt_alias *aliases; /* [alias_max + 1], lazily; owned */
	uint16_t client_alias_max;     /* the client's Topic Alias Maximum (outbound) */
	uint16_t out_alias_n;
	struct tq_mqtt_alias *out_alias; /* [min(client_alias_max, TQ_MQTT_OUT_ALIASES)]; owned */
	struct tq_mqtt_conn *all_prev, *all_next; /* the worker's connections (shutdown) */
	/* authentication and ACLs (tq_mqtt_auth.c) */
	const uint8_t *pkt_raw;        /* the packet being handled, whole (CONNECT: kept) */
	uint32_t pkt_raw_len;
	uint8_t auth;                  /* MQ_AUTH_* */
	struct tq_mqtt_conn *auth_next; /* in the worker's auth_wait list */
	bool auth_listed;              /* on that list (whatever its state became since) */
	uint64_t auth_cookie;          /* names this connection in control answers */
	uint64_t scram_id;             /* the SCRAM exchange at the control thread, 0: none */
	uint8_t *connect_copy;         /* SCRAM: the CONNECT, handled once authenticated */
	uint32_t connect_len;
	uint8_t *auth_final;           /* SCRAM: server-final, for the CONNACK; owned */
	uint16_t auth_final_len;
	char *user;                    /* who logged in (owned), NULL when anonymous: conn_user() */
	uint64_t acl_gen;              /* access snapshot of the cached publish decision */
	bool acl_ok;
	uint16_t acl_len;
	char *acl_topic;               /* its topic (owned, TQ_MQTT_ACL_TOPIC_MAX bytes), made at
					* the first check: idle connections do not pay for it */
};

#define TQ_MQTT_ACL_TOPIC_MAX 128

/* The user @c logged in as, "" when anonymous. */
static inline const char *
tq_mqtt_conn_user(const struct tq_mqtt_conn *c)
{
	return c->user ? c->user : "";
}

/* Deliveries of one message to sessions owned by one worker (pool: batch_pool). */
#define TQ_MQTT_BATCH_MAX 120
struct tq_mqtt_batch {
	struct tq_msg *msg; /* one reference for the whole batch */
	uint32_t n;
	uint32_t rsv;
	struct tq_trie_entry e[TQ_MQTT_BATCH_MAX]; /* key: session key; data: SUBD_* */
};

/* A delivery that reached the session's new owner before the session did. */
struct tq_mqtt_limbo {
	struct tq_mqtt_limbo *next;
	struct tq_msg *msg;
	struct tq_trie_entry e;
};

/* A session handed to a worker whose ring was full: posted again at the next tick. */
struct tq_mqtt_outbox {
	struct tq_mqtt_outbox *next;
	struct tq_ring_msg msg;
	uint16_t dst;
};

struct tq_mqtt_worker {
	struct tq_timer_wheel wheel;    /* 100 ms ticks: keep alive, session expiry, will delay */
	uint64_t wheel_t0_ms;
	uint8_t *scratch;               /* max_packet_size + 16: packets split across mbufs */
	struct tq_trie_entry *matches;  /* matching scratch */
	uint32_t nmatches, matches_cap;
	struct tq_mqtt_batch *out[TQ_MAX_WORKERS]; /* being filled during one publish */
	struct tq_mqtt_conn *waiting;   /* CS_WAIT_SESSION connections */
	struct tq_mqtt_conn *auth_wait; /* CS_WAIT_AUTH connections */
	uint64_t auth_seq;              /* last auth_cookie given */
	struct tq_mqtt_conn *conns;     /* every connection of this worker */
	struct tq_mqtt_conn *throttled; /* publishers paused for about a millisecond */
	/* connections with output for TCP at the end of the iteration, one FIFO per class */
	struct tq_mqtt_conn *dirty_head[TQ_PRIO_CLASSES], *dirty_tail[TQ_PRIO_CLASSES];
	uint64_t flush_gen;             /* flush rounds so far */
	uint64_t throttle_ms;           /* when they were last let go */
	bool throttle;                  /* set by tq_mqtt_route: a QoS 1/2 target is full */
	struct tq_mqtt_limbo *limbo;
	struct tq_mqtt_outbox *outbox;
	uint64_t connected;             /* connections in CS_ACTIVE (read by stats) */
	uint64_t pub_origin;            /* the publisher's key during a match (no local) */
	uint64_t sys_next_ms;           /* worker 0: next $SYS update */
	uint64_t errors[TQ_MQTT_E_COUNT]; /* protocol violations by reason (read by telemetry) */
};

struct tq_mqtt_slot {
	uint16_t owner;             /* atomic */
	bool used;                  /* under the directory lock */
	uint8_t online;             /* atomic, a hint for shared subscriptions */
	uint8_t full;               /* atomic: its queue passed max_queued (publishers wait) */
	uint32_t gen;               /* atomic; bumped when the slot is freed */
	struct tq_mqtt_sess *sess;  /* owner only */
};

struct tq_mqtt_global {
	struct tq_mqtt_conf conf;
	struct tq_trie *trie;
	struct tq_retain *retain;
	struct rte_mempool *msg_pool;
	struct rte_mempool *qent_pool;
	struct rte_mempool *batch_pool;
	struct tq_mqtt_slot *slots;
	uint64_t start_ms;
};

extern struct tq_mqtt_global tq_mqtt;

static inline uint64_t
sess_key(const struct tq_mqtt_sess *s)
{
	return (uint64_t)s->gen << 32 | s->slot;
}

/* tq_mqtt_dir.c: client-id directory and slots */
int tq_mqtt_dir_init(uint32_t max_sessions);
void tq_mqtt_dir_free(void);
/* Find @id: returns the slot, or -ENOENT. */
int tq_mqtt_dir_lookup(const char *id, uint16_t len, uint32_t *gen, uint16_t *owner);
/* Find or create @id for a new session owned by @owner: 0 found (slot, gen, owner set),
 * 1 created (slot, gen set, owner = @owner), -ENOSPC. */
int tq_mqtt_dir_get(const char *id, uint16_t len, uint16_t owner, uint32_t *slot, uint32_t *gen,
		    uint16_t *cur_owner);
/* The session ended: forget its id, free its slot (gen bumps). */
void tq_mqtt_dir_remove(uint32_t slot);
uint64_t tq_mqtt_dir_count(void);

/* tq_mqtt_conn.c */
extern const struct tq_tcp_app tq_mqtt_app;
/* Queue a control packet (never dropped once queued: kept until TCP takes it). Returns 0,
 * an encoding error, or -ENOMEM (no mbuf; counted). */
int tq_mqtt_send_pkt(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt);
/*
 * Output: control packets and deliveries join one ordered pending chain per connection
 * (c->ctl). tq_mqtt_out_bytes copies @len bytes into the free end of its last mbuf (and fresh
 * ones): all or nothing, 0 or -ENOMEM (counted). tq_mqtt_out_chain links chain @m (now owned
 * by the connection) after it. Neither sends: tq_mqtt_out_done, once a packet is complete,
 * lists the connection for the end of the loop iteration (tq_mqtt_conns_flush) or hands the
 * chain to TCP at once past TQ_MQTT_OUT_FLUSH bytes. Owner worker.
 */
#define TQ_MQTT_OUT_FLUSH (16 * 1024)
int tq_mqtt_out_bytes(struct tq_mqtt_conn *c, const void *buf, uint32_t len);
void tq_mqtt_out_chain(struct tq_mqtt_conn *c, struct rte_mbuf *m);
void tq_mqtt_out_done(struct tq_mqtt_conn *c);
/* The pending chain to TCP now (before a close: the FIN follows what TCP holds). What TCP
 * refuses for room stays pending (on_writable follows); on a closing connection it is freed. */
void tq_mqtt_out_flush(struct tq_mqtt_conn *c);
/* The loop, once per iteration: the listed connections' output goes to TCP, critical ones
 * first, then normal, then bulk (tq_prio.h). Returns how many connections it took. */
unsigned int tq_mqtt_conns_flush(struct tq_worker *w);
/* v5: DISCONNECT with @reason, then close; v3: close. The will goes out when @lost. */
void tq_mqtt_conn_kill(struct tq_mqtt_conn *c, uint8_t reason, bool lost);
/* A protocol violation -@err (enum tq_mqtt_err): counted by reason, then killed with its
 * v5 reason code. */
void tq_mqtt_violation(struct tq_mqtt_conn *c, int err);
void tq_mqtt_conn_keepalive_arm(struct tq_mqtt_conn *c);
void tq_mqtt_keepalive_fired(struct tq_worker *w, struct tq_mqtt_conn *c);
/* Read what arrived (after CONNECT waited for its session, or TCP took our backlog). */
void tq_mqtt_conn_resume_rx(struct tq_mqtt_conn *c);
/* Let the paused publishers read again (every millisecond, from the loop). */
void tq_mqtt_throttle_tick(struct tq_worker *w);
/* Shutdown (workers stopped): free every connection's MQTT state. */
void tq_mqtt_conns_free(struct tq_worker *w);

/* tq_mqtt_handlers.c */
/* Handle one decoded packet. Returns 0 (read on), 1 (consumed; stop reading for now),
 * 2 (not consumed: read it again later) or -1 (the connection is closing). */
int tq_mqtt_handle(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt, const uint8_t *base,
		   uint32_t pkt_off);
void tq_mqtt_connect_resume(struct tq_worker *w, uint32_t slot, struct tq_mqtt_sess *sess);
void tq_mqtt_connect_retry(struct tq_worker *w, uint32_t slot);

/* tq_mqtt_session.c */
struct tq_mqtt_sess *tq_mqtt_sess_new(uint32_t slot, uint32_t gen, const char *id, uint16_t len);
/* End a session: its subscriptions, queue and slot go. Owner only. */
void tq_mqtt_sess_destroy(struct tq_worker *w, struct tq_mqtt_sess *s);
/* Drop subscriptions and queued messages (clean start on an existing session). */
void tq_mqtt_sess_clear(struct tq_worker *w, struct tq_mqtt_sess *s);
/* The connection went away: will, expiry. */
void tq_mqtt_sess_detach(struct tq_worker *w, struct tq_mqtt_sess *s, bool lost);
/* A new connection takes the session: the old one is closed (0x8E), the session kept. */
void tq_mqtt_sess_takeover(struct tq_worker *w, struct tq_mqtt_sess *s);
/* Offline: arm the will-delay and expiry timers. */
void tq_mqtt_sess_arm_timers(struct tq_worker *w, struct tq_mqtt_sess *s);
/* Resend what is in flight (DUP) and send what is queued. */
void tq_mqtt_sess_resume(struct tq_worker *w, struct tq_mqtt_sess *s);
void tq_mqtt_sess_pump(struct tq_worker *w, struct tq_mqtt_sess *s);
void tq_mqtt_sess_enqueue(struct tq_worker *w, struct tq_mqtt_sess *s, struct tq_msg *m,
			  uint8_t qos, bool retain, const uint32_t *sub_ids, uint32_t nsub_ids);
/* Acks from the client. */
void tq_mqtt_sess_ack(struct tq_worker *w, struct tq_mqtt_sess *s, uint8_t type, uint16_t id);
void tq_mqtt_sess_stop_timers(struct tq_worker *w, struct tq_mqtt_sess *s);
void tq_mqtt_timer_fired(void *ctx, uint64_t user, uint32_t handle);
int tq_mqtt_sub_add(struct tq_mqtt_sess *s, const char *filter, uint16_t flen, const char *group,
		    uint16_t glen, uint64_t data, bool *existed);
int tq_mqtt_sub_remove(struct tq_mqtt_sess *s, const char *filter, uint16_t flen,
		       const char *group, uint16_t glen);

/* tq_mqtt_route.c */
/* Route @m (one reference kept by the caller) from session key @origin; returns how many
 * subscriptions matched. */
unsigned int tq_mqtt_route(struct tq_worker *w, struct tq_msg *m, uint64_t origin);
/* Send the retained messages matching @filter to @s (subscribe). */
void tq_mqtt_route_retained(struct tq_worker *w, struct tq_mqtt_sess *s, const char *filter,
			    uint16_t flen, uint8_t qos, uint32_t sub_id);
void tq_mqtt_ring_deliver(struct tq_worker *w, const struct tq_ring_msg *msg);
void tq_mqtt_limbo_drain(struct tq_worker *w, uint32_t slot);
void tq_mqtt_publish_will(struct tq_worker *w, struct tq_mqtt_sess *s);
/* A message from bytes (will, $SYS): NULL when out of memory. */
struct tq_msg *tq_mqtt_msg_make(struct tq_worker *w, const char *topic, uint16_t tlen,
				const void *payload, uint32_t plen, uint8_t qos, bool retain,
				const struct tq_mqtt_props *props);
void tq_mqtt_sys_tick(struct tq_worker *w);
/* Set (or clear) tq_bridge_to_mqtt. Control thread. */
void tq_mqtt_bridge_init(bool on);
/* Copy @props (5.0, as decoded) into @m's inline area, spans rebased. */
void tq_mqtt_msg_set_props(struct tq_msg *m, const struct tq_mqtt_props *props);

/* timer user tags (low bits of the pointer) */
#define TQ_MQTT_T_KEEPALIVE 1u
#define TQ_MQTT_T_EXPIRY 2u
#define TQ_MQTT_T_WILL 3u

static inline uint64_t
tq_mqtt_ticks(uint32_t seconds)
{
	return (uint64_t)seconds * 10; /* 100 ms ticks */
}

/* tq_mqtt_auth.c */
/*
 * CONNECT's credentials: 0 go on, 1 consumed and waiting (SCRAM), 2 not consumed and
 * waiting (password check), < 0 refuse with that error.
 */
int tq_mqtt_auth_connect(struct tq_mqtt_conn *c, const struct tq_mqtt_connect *cn,
			 const uint8_t *raw, uint32_t raw_len);
/* An AUTH packet in state CS_AUTH: 1 consumed (waiting), -1 refused. */
int tq_mqtt_auth_packet(struct tq_mqtt_conn *c, const struct tq_mqtt_pkt *pkt);
void tq_mqtt_auth_answer(struct tq_worker *w, const struct tq_ring_msg *msg);
void tq_mqtt_auth_conn_free(struct tq_mqtt_conn *c);
bool tq_mqtt_acl_publish(struct tq_mqtt_conn *c, const struct tq_mqtt_str *topic);
bool tq_mqtt_acl_subscribe(struct tq_mqtt_conn *c, const char *filter, size_t len);
/* tq_mqtt_handlers.c: CONNACK with a failure code, then close */
void tq_mqtt_auth_refuse(struct tq_mqtt_conn *c, int err);
/* tq_mqtt_handlers.c: handle the kept CONNECT now that SCRAM accepted the client */
void tq_mqtt_auth_replay(struct tq_mqtt_conn *c);

#endif
