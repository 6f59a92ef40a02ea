/*
 * AMQP queues (tq_amqp_home.c): the table every worker reads and the queue object whose
 * state only its home worker changes.
 */
#ifndef TQ_AMQP_HOME_H
#define TQ_AMQP_HOME_H

#include <pthread.h>

#include <urcu/urcu-qsbr.h>

#include "control/tq_policy.h"
#include "routing/tq_aqueue.h"
#include "tq_amqp_int.h"

/* A consumer as the home knows it. */
struct tq_amqp_qcons {
	uint64_t id;     /* tq_aqueue's consumer id */
	uint64_t handle; /* the consumer's channel */
	uint8_t ci;      /* its index in the channel */
	bool no_ack;
	bool chan_paused; /* its channel's global prefetch is reached (OP_PAUSE) */
	int32_t credit;   /* deliveries it may be sent still (< 0: a batch went over) */
};

struct tq_amqp_queue {
	/* written once at creation (under tq_amqp_qlock), read by all */
	uint32_t idx, gen;
	uint16_t home;
	char vhost[128];
	char name[256];
	uint8_t name_len;
	bool durable, exclusive, auto_delete;
	uint64_t owner;            /* exclusive: the owning connection's handle (channel 0) */
	char group_header[128];    /* x-message-group-header */
	struct tq_policy_def args; /* its own x-arguments as policy keys (equivalence, listing) */
	/*
	 * Settings: its arguments merged with the policy that applies (tq_amqp_queue_policy),
	 * set at creation, then changed by the home alone when policies change. Priority
	 * levels, single active consumer and groups in conf never change.
	 */
	uint64_t expires_ms;       /* x-expires, 0: never */
	char dlx[256];             /* x-dead-letter-exchange (conf.dead_letter) */
	uint8_t dlx_len;
	char dlrk[256];            /* x-dead-letter-routing-key */
	uint8_t dlrk_len;
	bool has_dlrk;
	struct tq_aqueue_conf conf;
	struct tq_policy_def eff;  /* what the settings were computed from */
	uint64_t policy_gen;       /* the policy snapshot's generation they come from (0: none) */
	/* the policy applied ("": none): the home writes it under policy_seq (odd while
	 * writing), others read it with tq_amqp_queue_policy_name */
	uint32_t policy_seq;
	char policy[TQ_POLICY_NAME_MAX + 1];
	/* atomics: written by the home, read by all (declare-ok, telemetry) */
	bool deleted;
	uint64_t n_ready, n_unacked;
	uint32_t n_consumers;
	/* home only */
	struct tq_aqueue *aq;
	struct tq_amqp_qcons *cons;
	uint32_t ncons, cons_cap;
	uint64_t next_cons_id;
	uint64_t last_used_ms;
	uint64_t seen_expired, seen_dropped; /* tq_aqueue_stats already counted */
	bool had_consumer;
	bool starved; /* dispatch found no operations for deliveries: again at the tick */
	struct rcu_head rcu;
};

extern struct tq_amqp_queue **tq_amqp_queues;
extern uint32_t tq_amqp_nqueues;
extern pthread_mutex_t tq_amqp_qlock;

/* The table: boot, shutdown, per-worker housekeeping, telemetry. */
int tq_amqp_queues_init(uint32_t max_queues);
void tq_amqp_queues_free(void);
void tq_amqp_queues_tick(struct tq_worker *w);
void tq_amqp_queues_counts(uint64_t *queues, uint64_t *consumers, uint64_t *ready,
			   uint64_t *unacked);

/*
 * A queue in the table like @tmpl (vhost, name, flags, group header, args and the settings
 * tq_amqp_queue_policy computed; its runtime state fresh), on worker @home. The declaring
 * thread (any worker, or the control thread for tq_amqp_admin), under the lock; every field
 * is set before the queue is published. NULL + errno.
 */
struct tq_amqp_queue *tq_amqp_queue_create(const struct tq_amqp_queue *tmpl, uint16_t home);
/*
 * Settings of @q (not yet created: a template) from its args and the policy of snapshot @p
 * that applies to it (NULL: none), priority levels included. Any thread that may read @p.
 */
void tq_amqp_queue_policy(struct tq_amqp_queue *q, const struct tq_policies *p);
/* The name of the policy applied to @q into @out ("" for none). Any thread. */
void tq_amqp_queue_policy_name(const struct tq_amqp_queue *q, char *out, size_t cap);
/* Home: recompute the settings of its queues made from another snapshot than the current. */
void tq_amqp_queues_policies(struct tq_worker *w);
/* The live queue at @idx of generation @gen, or NULL. Any worker, within one iteration. */
struct tq_amqp_queue *tq_amqp_queue_get(uint32_t idx, uint32_t gen);
/* Free after a grace period (other workers may still look at it). */
void tq_amqp_queue_retire(struct tq_amqp_queue *q);
/* Out of the table and retired: a queue that was never registered. */
void tq_amqp_queue_discard(struct tq_amqp_queue *q);
/* Exclusive queues of a connection (tq_amqp_queue.c). */
int tq_amqp_conn_own(struct tq_amqp_conn *c, const struct tq_amqp_queue *q);
void tq_amqp_conn_disown(struct tq_amqp_conn *c, const struct tq_amqp_queue *q);

/* tq_amqp_queue.c: forget the queue's name and bindings. */
void tq_amqp_unregister_queue(struct tq_amqp_queue *q);
/* The home worker of queue @name (@len bytes) in @vhost. */
uint16_t tq_amqp_queue_home(const char *vhost, const char *name, size_t len);
/* The first property or argument in which @a and @b differ (redeclare), or NULL. */
const char *tq_amqp_queue_inequivalent(const struct tq_amqp_queue *a,
				       const struct tq_amqp_queue *b);
/* Republish @m through @q's dead-letter exchange with an x-death entry for @reason. */
void tq_amqp_dead_letter(struct tq_worker *w, struct tq_amqp_queue *q, struct tq_msg *m,
			 const char *reason);

#endif
