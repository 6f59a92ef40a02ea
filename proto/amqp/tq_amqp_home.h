/*
 * AMQP queues (tq_amqp_home.c): the table every worker reads and the queue object whose
 * state only its home worker changes.
 */
#ifndef TQ_AMQP_HOME_H
#define TQ_AMQP_HOME_H

#include <pthread.h>

#include <urcu/urcu-qsbr.h>

#include "routing/tq_aqueue.h"
#include "tq_amqp_int.h"

/* A consumer as the home knows it. */
struct tq_amqp_qcons {
	uint64_t id;     /* tq_aqueue's consumer id */
	uint64_t handle; /* the consumer's channel */
	uint8_t ci;      /* its index in the channel */
	bool no_ack;
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
	uint64_t expires_ms;       /* x-expires, 0: never */
	char dlx[256];             /* x-dead-letter-exchange (conf.dead_letter) */
	uint8_t dlx_len;
	char dlrk[256];            /* x-dead-letter-routing-key */
	uint8_t dlrk_len;
	bool has_dlrk;
	char group_header[128];    /* x-message-group-header */
	struct tq_aqueue_conf conf;
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

/* A queue in the table (creation is the declaring worker's, under the lock). NULL + errno. */
struct tq_amqp_queue *tq_amqp_queue_create(const char *vhost, const char *name, uint8_t len,
					   uint16_t home, const struct tq_aqueue_conf *conf);
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
/* Republish @m through @q's dead-letter exchange with an x-death entry for @reason. */
void tq_amqp_dead_letter(struct tq_worker *w, struct tq_amqp_queue *q, struct tq_msg *m,
			 const char *reason);

#endif
