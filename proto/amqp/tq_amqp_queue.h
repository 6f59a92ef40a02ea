/*
 * Exchanges and queues as the channels see them (tq_amqp_queue.c): the exchange and queue
 * classes, routing a publish, finding a queue, and posting operations to a queue's home
 * worker. The connection's worker calls these; queue state itself changes only on the home.
 */
#ifndef TQ_AMQP_QUEUE_H
#define TQ_AMQP_QUEUE_H

#include "tq_amqp_int.h"

/* exchange.* and queue.* methods. */
void tq_amqp_queue_method(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
			  const struct tq_amqp_method *m);

/*
 * Route @m (exchange and routing key inside it) in @c's vhost: @on_queue once per queue.
 * Returns the number of queues, or -1 with the reply @code and @text (404: no exchange;
 * 403: internal exchange).
 */
int tq_amqp_route(struct tq_amqp_conn *c, struct tq_msg *m,
		  void (*on_queue)(void *arg, uint32_t qidx, uint32_t qgen, uint16_t home),
		  void *arg, uint16_t *code, const char **text);

/* Find the queue @name ("" = the channel's last declared) for consume / get. 0 or -1. */
int tq_amqp_queue_lookup(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
			 const struct tq_amqp_str *name, uint32_t *qidx, uint32_t *qgen,
			 uint16_t *code, const char **text);

/* Post @op to the home of queue op->qidx; 0, or -1 (freed, counted: queue gone, ring full). */
int tq_amqp_queue_post(struct tq_worker *w, struct tq_amqp_op *op);

/* An OP_REPLY for a request this channel made (queue.purge-ok, queue.delete-ok, ...). */
void tq_amqp_reply_done(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
			const struct tq_amqp_op *op);

/* The home worker's side of an operation. */
void tq_amqp_queue_op(struct tq_worker *w, struct tq_amqp_op *op);

/* Route @m (dead letters) in @vhost from worker @w. */
void tq_amqp_route_vhost(struct tq_worker *w, const char *vhost, struct tq_msg *m,
			 void (*on_queue)(void *arg, uint32_t qidx, uint32_t qgen, uint16_t home),
			 void *arg);

/* The connection goes: its exclusive queues are deleted. */
void tq_amqp_conn_drop_exclusive(struct tq_amqp_conn *c);

/* Set tq_bridge_to_amqp (boot). */
void tq_amqp_bridge_init(void);

#endif
