/*
 * Permissions on AMQP methods, RabbitMQ's table
 * (https://www.rabbitmq.com/docs/access-control, "How permissions work"):
 *
 *   exchange.declare (not passive)   configure on the exchange
 *   exchange.delete                  configure on the exchange
 *   queue.declare (not passive)      configure on the queue (server-named: "amq.gen-")
 *   queue.delete                     configure on the queue
 *   queue.bind / queue.unbind        write on the queue, read on the exchange, and for a
 *                                    topic exchange topic read on the binding key
 *   exchange.bind / exchange.unbind  write on the destination, read on the source
 *   queue.purge                      read on the queue
 *   basic.publish                    write on the exchange, and for a topic exchange topic
 *                                    write on the routing key
 *   basic.consume / basic.get        read on the queue
 *
 * A refusal closes the channel with 403 ACCESS_REFUSED and RabbitMQ's wording, and is
 * counted (amqp_access_refused). Rules come from the snapshot the control plane publishes
 * (tq_access_cur, read under the worker's QSBR read side); without one (no control plane)
 * everything is allowed. basic.publish's decision on the exchange is cached on the channel
 * for the snapshot's generation, so the fast path costs one comparison until the rules
 * change, and a change reaches live channels at their next publish.
 */
#define URCU_INLINE_SMALL_FUNCTIONS
#include <stdio.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "control/tq_access.h"
#include "proto/amqp/tq_amqp_int.h"
#include "routing/tq_exchange.h"

static const char *const op_name[] = {"configure", "write", "read"};

/* "" (the default exchange) is checked as amq.default (RabbitMQ). */
static void
xname(const struct tq_amqp_str *s, const char **p, size_t *len)
{
	if (s->len == 0) {
		*p = "amq.default";
		*len = 11;
	} else {
		*p = (const char *)s->p;
		*len = s->len;
	}
}

/* "" in a queue method means the channel's last declared queue (spec). */
static void
qname(const struct tq_amqp_chan *ch, const struct tq_amqp_str *s, const char **p, size_t *len)
{
	if (s->len == 0) {
		*p = ch->last_queue;
		*len = ch->last_queue_len;
	} else {
		*p = (const char *)s->p;
		*len = s->len;
	}
}

static bool
refuse(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint32_t method, enum tq_perm_op op,
       const char *kind, const char *name, size_t len)
{
	char text[600];

	snprintf(text, sizeof(text),
		 "ACCESS_REFUSED - %s access to %s '%.*s' in vhost '%s' refused for user '%s'",
		 op_name[op], kind, (int)len, name, c->vhost, c->user);
	tq_worker_count(c->w, TQ_CTR_amqp_access_refused);
	tq_amqp_chan_error(c, ch, TQ_AMQP_ACCESS_REFUSED, text, method);
	return false;
}

static bool
check(const struct tq_access *a, struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
      uint32_t method, enum tq_perm_op op, const char *kind, const char *name, size_t len)
{
	if (tq_access_check(a, c->user, c->vhost, op, name, len))
		return true;
	return refuse(c, ch, method, op, kind, name, len);
}

/* Topic permission on @key when @exchange is a topic exchange. */
static bool
check_topic(const struct tq_access *a, struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
	    uint32_t method, enum tq_perm_op op, const char *x, size_t xlen,
	    const struct tq_amqp_str *key)
{
	struct tq_access_who who = {.user = c->user, .vhost = c->vhost, .client_id = ""};
	struct tq_exchange_info info;
	char xz[256], text[900];

	if (tq_exchange_info(tq_amqp.xreg, c->vhost, strlen(c->vhost), x, xlen, &info) < 0 ||
	    info.type != TQ_EXCHANGE_TOPIC)
		return true;
	memcpy(xz, x, xlen);
	xz[xlen] = '\0';
	if (tq_access_topic_ok(a, &who, xz, op, (const char *)key->p, key->len))
		return true;
	snprintf(text, sizeof(text),
		 "ACCESS_REFUSED - %s access to topic '%.*s' in exchange '%s' in vhost '%s' "
		 "refused for user '%s'",
		 op_name[op], (int)key->len, key->p, xz, c->vhost, c->user);
	tq_worker_count(c->w, TQ_CTR_amqp_access_refused);
	tq_amqp_chan_error(c, ch, TQ_AMQP_ACCESS_REFUSED, text, method);
	return false;
}

static bool
publish_ok(const struct tq_access *a, struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
	   const struct tq_amqp_basic_publish *p)
{
	uint64_t gen = tq_access_gen(a);
	const char *x;
	size_t xlen;

	xname(&p->exchange, &x, &xlen);
	if (ch->acc_gen != gen || ch->acc_xlen != xlen || memcmp(ch->acc_x, x, xlen) != 0) {
		memcpy(ch->acc_x, x, xlen);
		ch->acc_xlen = (uint8_t)xlen;
		ch->acc_gen = gen;
		ch->acc_ok = tq_access_check(a, c->user, c->vhost, TQ_PERM_WRITE, x, xlen);
	}
	if (!ch->acc_ok) {
		ch->acc_gen = 0; /* the channel closes: nothing to keep */
		return refuse(c, ch, TQ_AMQP_BASIC_PUBLISH, TQ_PERM_WRITE, "exchange", x, xlen);
	}
	return check_topic(a, c, ch, TQ_AMQP_BASIC_PUBLISH, TQ_PERM_WRITE,
			   (const char *)p->exchange.p, p->exchange.len, &p->routing_key);
}

bool
tq_amqp_access_method(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
		      const struct tq_amqp_method *m)
{
	const struct tq_access *a = rcu_dereference(tq_access_cur);
	const union tq_amqp_args *g = &m->args;
	uint32_t id = m->info->id;
	const char *n, *n2;
	size_t len, len2;

	if (!a)
		return true;
	switch (id) {
	case TQ_AMQP_BASIC_PUBLISH:
		return publish_ok(a, c, ch, &g->basic_publish);
	case TQ_AMQP_EXCHANGE_DECLARE:
		if (g->exchange_declare.passive)
			return true;
		xname(&g->exchange_declare.exchange, &n, &len);
		return check(a, c, ch, id, TQ_PERM_CONFIGURE, "exchange", n, len);
	case TQ_AMQP_EXCHANGE_DELETE:
		xname(&g->exchange_delete.exchange, &n, &len);
		return check(a, c, ch, id, TQ_PERM_CONFIGURE, "exchange", n, len);
	case TQ_AMQP_QUEUE_DECLARE:
		if (g->queue_declare.passive)
			return true;
		if (g->queue_declare.queue.len == 0) {
			n = "amq.gen-";
			len = 8;
		} else {
			n = (const char *)g->queue_declare.queue.p;
			len = g->queue_declare.queue.len;
		}
		return check(a, c, ch, id, TQ_PERM_CONFIGURE, "queue", n, len);
	case TQ_AMQP_QUEUE_DELETE:
		qname(ch, &g->queue_delete.queue, &n, &len);
		return check(a, c, ch, id, TQ_PERM_CONFIGURE, "queue", n, len);
	case TQ_AMQP_QUEUE_PURGE:
		qname(ch, &g->queue_purge.queue, &n, &len);
		return check(a, c, ch, id, TQ_PERM_READ, "queue", n, len);
	case TQ_AMQP_QUEUE_BIND:
	case TQ_AMQP_QUEUE_UNBIND: {
		const struct tq_amqp_str *q = id == TQ_AMQP_QUEUE_BIND ? &g->queue_bind.queue
								       : &g->queue_unbind.queue;
		const struct tq_amqp_str *x = id == TQ_AMQP_QUEUE_BIND ? &g->queue_bind.exchange
								       : &g->queue_unbind.exchange;
		const struct tq_amqp_str *k = id == TQ_AMQP_QUEUE_BIND
						      ? &g->queue_bind.routing_key
						      : &g->queue_unbind.routing_key;

		qname(ch, q, &n, &len);
		xname(x, &n2, &len2);
		return check(a, c, ch, id, TQ_PERM_WRITE, "queue", n, len) &&
		       check(a, c, ch, id, TQ_PERM_READ, "exchange", n2, len2) &&
		       check_topic(a, c, ch, id, TQ_PERM_READ, (const char *)x->p, x->len, k);
	}
	case TQ_AMQP_EXCHANGE_BIND:
	case TQ_AMQP_EXCHANGE_UNBIND: {
		const struct tq_amqp_str *d = id == TQ_AMQP_EXCHANGE_BIND
						      ? &g->exchange_bind.destination
						      : &g->exchange_unbind.destination;
		const struct tq_amqp_str *s = id == TQ_AMQP_EXCHANGE_BIND
						      ? &g->exchange_bind.source
						      : &g->exchange_unbind.source;

		xname(d, &n, &len);
		xname(s, &n2, &len2);
		return check(a, c, ch, id, TQ_PERM_WRITE, "exchange", n, len) &&
		       check(a, c, ch, id, TQ_PERM_READ, "exchange", n2, len2);
	}
	case TQ_AMQP_BASIC_CONSUME:
		qname(ch, &g->basic_consume.queue, &n, &len);
		return check(a, c, ch, id, TQ_PERM_READ, "queue", n, len);
	case TQ_AMQP_BASIC_GET:
		qname(ch, &g->basic_get.queue, &n, &len);
		return check(a, c, ch, id, TQ_PERM_READ, "queue", n, len);
	default:
		return true;
	}
}

bool
tq_amqp_access_vhost(struct tq_amqp_conn *c, const char *vhost)
{
	const struct tq_access *a = rcu_dereference(tq_access_cur);

	return !a || tq_access_vhost_ok(a, c->user, vhost);
}
