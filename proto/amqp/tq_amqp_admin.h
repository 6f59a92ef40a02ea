/*
 * The AMQP broker as the control plane sees it: vhosts, policies on live queues, and the
 * exchanges, queues and bindings that definitions import and export and tachyonctl lists.
 * Every function: control thread only (or a thread the control plane serialises, never a
 * worker), while the workers run. What belongs to a queue's home worker is asked of it over
 * its ring; what the routing registry holds is written under its writer lock.
 */
#ifndef TQ_AMQP_ADMIN_H
#define TQ_AMQP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/tq_policy.h"
#include "routing/tq_exchange.h"

/* Add vhost @name to the exchange registry with its built-in exchanges. 0, -EEXIST. */
int tq_amqp_vhost_add(const char *name);
/* Remove it: -EBUSY while it has queues or open connections, -ENOENT. */
int tq_amqp_vhost_delete(const char *name);

/*
 * tq_policies_cur changed: every queue's effective settings (its own arguments merged with
 * the policy that now applies, tq_policy_effective) are recomputed on its home worker.
 * Returns at once; the homes apply it at their next loop.
 */
void tq_amqp_policies_changed(void);

/* Declare as a client would (same equivalence rules); @err gets the AMQP reply text. */
int tq_amqp_admin_exchange_declare(const char *vhost, const char *name, const char *type,
				   bool durable, bool auto_delete, bool internal,
				   const char *alternate_exchange, char *err, size_t errlen);
/*
 * @args: the queue's x-arguments as policy keys (NULL: none; alternate-exchange and
 * priority-class refused). The queue gets the home worker, name and default-exchange binding
 * a client's declare would give it, and its settings from @args merged with the policy that
 * applies. Equivalent redeclare: 0. Errors (@err gets the AMQP reply text): -ENODEV (no AMQP
 * broker), -ENOENT (vhost), -EINVAL (arguments, name), -EPERM ("amq." prefix), -EBUSY
 * (an exclusive queue of a connection), -EEXIST (inequivalent), -ENOSPC (too many queues),
 * -ENOMEM.
 */
int tq_amqp_admin_queue_declare(const char *vhost, const char *name, bool durable,
				bool auto_delete, const struct tq_policy_def *args, char *err,
				size_t errlen);
/* Queue arguments that are not policy keys. */
struct tq_amqp_queue_opts {
	bool single_active_consumer; /* x-single-active-consumer */
	const char *group_header;    /* x-message-group-header (tachyon's); NULL or "": none */
};
/* tq_amqp_admin_queue_declare with @opts (NULL: none). */
int tq_amqp_admin_queue_declare_opts(const char *vhost, const char *name, bool durable,
				     bool auto_delete, const struct tq_policy_def *args,
				     const struct tq_amqp_queue_opts *opts, char *err,
				     size_t errlen);
/* Bind @destination to exchange @source (0 also when the binding existed); -errno + @err. */
int tq_amqp_admin_bind(const char *vhost, const char *source, const char *destination,
		       bool to_queue, const char *routing_key, char *err, size_t errlen);
/* The same with binding arguments (headers exchanges: x-match and the conditions). */
int tq_amqp_admin_bind_args(const char *vhost, const char *source, const char *destination,
			    bool to_queue, const char *routing_key, const struct tq_xheader *args,
			    uint32_t nargs, char *err, size_t errlen);

/* Listing, for export and tachyonctl (values are copies taken at the call). */
struct tq_amqp_queue_info {
	const char *vhost, *name;
	bool durable, auto_delete, exclusive;
	uint16_t home;                  /* worker */
	uint64_t ready, unacked, consumers;
	const struct tq_policy_def *args; /* its own arguments as policy keys */
	const char *policy;             /* the policy applied, or NULL */
	bool single_active_consumer;
	const char *group_header;       /* x-message-group-header, or NULL */
};
struct tq_amqp_exchange_info {
	const char *vhost, *name, *type;
	bool durable, auto_delete, internal;
	const char *alternate_exchange; /* or NULL */
};
struct tq_amqp_binding_info {
	const char *vhost, *source, *destination, *routing_key;
	bool to_queue;
	const struct tq_xheader *args; /* sorted by key; valid during the callback */
	uint32_t nargs;
};
/*
 * Each walk calls @fn once per object (every vhost; exchanges include the built-in ones,
 * bindings the default exchange's implicit ones, source ""); a non-zero return from @fn
 * stops it and is returned. 0 or -ENODEV. Strings are valid during the callback only. @fn
 * must not call the broker: queues are walked as a QSBR reader (never wait for a grace
 * period inside), exchanges and bindings under the registry's writer lock.
 */
int tq_amqp_admin_queues(int (*fn)(void *arg, const struct tq_amqp_queue_info *q), void *arg);
int tq_amqp_admin_exchanges(int (*fn)(void *arg, const struct tq_amqp_exchange_info *x),
			    void *arg);
int tq_amqp_admin_bindings(int (*fn)(void *arg, const struct tq_amqp_binding_info *b),
			   void *arg);

/* Queues a policy was applied to so far (at declare, and at each change that altered them). */
uint64_t tq_amqp_admin_policy_applied(void);

/*
 * tachyonctl purge_queue: the messages removed, or -ENOENT, -ENOBUFS (the home's ring is
 * full), -ETIMEDOUT (no answer within 1 s: the purge may still happen).
 */
int tq_amqp_admin_purge(const char *vhost, const char *name);

#endif
