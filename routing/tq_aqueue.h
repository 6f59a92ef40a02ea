/*
 * AMQP queue semantics as a data structure: what RabbitMQ's classic queues do with ready and
 * unacknowledged messages, consumers and their prefetch, and none of the I/O. The session
 * layer owns one per queue on the queue's home worker and drives it: publish, dispatch, ack,
 * and drain the dead letters this module reports.
 *
 * Messages are opaque handles (`void *msg`); the queue never looks inside. Per message it keeps
 * a node (one allocation, through the caller's allocator or malloc) with the attributes it
 * needs: body size, priority level, expiry deadline, group, delivery count.
 *
 * Ownership of a message handle: publish returning 0 gives the queue the caller's reference.
 * The queue gives it up in exactly one way:
 *   - conf.release(ctx, msg) when the queue itself disposes of it: acked, discarded without
 *     dead-lettering (reject/nack without requeue, expiry, max-length drop), purged, destroyed;
 *   - to the caller through tq_aqueue_take_dead() (dead-lettering on);
 *   - to the caller through a delivery with `settled` set (no-ack consumer or no-ack get).
 * Deliveries without `settled` only lend the handle: the queue still owns it until the
 * delivery is acked, rejected or requeued; take your own reference to send it.
 *
 * Threads: none of its own, no locks, no EAL. Every function on one queue must be called from
 * one thread at a time (the queue's home worker). Callbacks must not call back into the queue.
 *
 * Time is the caller's, in milliseconds, monotonic (`now`). A message whose deadline is D is
 * deliverable while now <= D and expired once now > D; deadline = enqueue time + TTL.
 *
 * Decisions where RabbitMQ leaves room (see also the function comments):
 *   - TTL: the effective TTL is min(per-message expiration, x-message-ttl), computed here.
 *     Expired messages are removed when they reach the head (dispatch, get) and by
 *     tq_aqueue_sweep(), which finds every expired ready message, not only the head (a deadline
 *     heap), so memory comes back on time even with per-message TTLs. Unacked messages never
 *     expire; requeued ones keep their original deadline.
 *   - TTL 0 (effective): accepted only to be handed to a consumer at once. If no consumer could
 *     take it now (room, SAC, group owner) it expires in publish; otherwise it is deliverable
 *     until `now` moves on, so dispatch in the same millisecond.
 *   - Limits count ready messages and their body bytes (RabbitMQ). The queue never holds more
 *     than the limits after a publish: reject-publish refuses a message that would exceed
 *     either; drop-head enqueues, then drops from the head (the next message dispatch would
 *     give: highest priority, oldest) until within both. Requeues are never refused or dropped
 *     even if they take the queue over its limits. x-max-length 0 holds nothing, even when a
 *     consumer waits (RabbitMQ would hand it over directly).
 *   - Requeue puts a message back at its original position (by publish order within its
 *     priority), RabbitMQ's "original position if possible"; redelivered is set.
 *   - Single active consumer: the earliest registered consumer is the active one, whatever
 *     its x-priority; when it goes, the next earliest. Message groups are ignored with SAC.
 *   - Consumer priorities: a message goes to the highest-priority consumers that have room,
 *     round-robin among them; lower priorities only while all higher ones are blocked.
 *   - Message groups (queue argument `x-message-group-header`, naming the header that carries
 *     the group id; the default header when the argument is `true` is `JMSXGroupID`; the
 *     caller hashes the header's value to a non-zero uint64 group key): within a group,
 *     messages go out in publish order (requeued ones back at their place); priority only
 *     decides when an unassigned group's first message comes up. When it does, the group goes
 *     to the least loaded consumer (fewest groups, then fewest unacked) among the
 *     highest-priority consumers with room, and stays with it while the group has any message
 *     in the queue (ready or unacked). A group with nothing left is forgotten (ActiveMQ's
 *     bounded group cache forgets too), so its next message may go elsewhere: nothing is in
 *     flight, so order holds. A group's messages wait for their owner's room while other
 *     groups and ungrouped messages go on; an owner with room takes its groups' messages and
 *     the queue's head in queue order. When the owner leaves, its unacked messages go back in
 *     place and its groups are assigned afresh, in order. Ignored with single active consumer.
 *   - basic.get takes the head (groups ignored: it may take a message of a group another
 *     consumer owns) and tracks an acked get under a pseudo-consumer id chosen by the caller;
 *     no prefetch applies to it.
 *   - Expired messages at the head are removed by dispatch even when no consumer has room.
 *
 * Complexity: publish, dispatch (per delivery), ack, single reject: O(1) plus O(log n) for a
 * message with a TTL (deadline heap) plus O(consumer priority levels). Requeue: O(k) with k
 * the ready messages of its priority that are older than it (others requeued before; usually
 * none). Assigning a new group: O(consumers in the top priority level). When an unassigned
 * group's head leaves other than by delivery (expiry, drop, get), its next message takes its
 * place in the main order: a walk from the nearer end of that priority's list.
 * Memory: one node per message (tq_aqueue_node_size()), one small record per consumer, per
 * consumer priority and per group with messages; the hash tables and the deadline heap grow
 * with what is held and shrink when it drains.
 */
#ifndef TQ_AQUEUE_H
#define TQ_AQUEUE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_AQUEUE_UNLIMITED  UINT64_MAX /* max_length, max_length_bytes */
#define TQ_AQUEUE_TTL_NONE   UINT64_MAX /* message_ttl, tq_aqueue_msg_attr.ttl_ms */
#define TQ_AQUEUE_GROUP_NONE 0

/* tq_aqueue_publish() refused the message (reject-publish): it is still yours. */
#define TQ_AQUEUE_REFUSED (-ENOBUFS)
/*
 * tq_aqueue_publish() refused the message and took it to be dead-lettered (reject-publish-dlx
 * with dead-lettering on): nack the publisher; tq_aqueue_take_dead() returns it ("maxlen").
 */
#define TQ_AQUEUE_REFUSED_DEAD (-ENOSPC)

enum tq_aqueue_overflow {
	TQ_AQUEUE_DROP_HEAD,          /* x-overflow drop-head (default) */
	TQ_AQUEUE_REJECT_PUBLISH,     /* reject-publish */
	TQ_AQUEUE_REJECT_PUBLISH_DLX, /* reject-publish-dlx */
};

/* Why a message is dead-lettered: the x-death "reason" is tq_aqueue_reason_name(). */
enum tq_aqueue_dead_reason {
	TQ_AQUEUE_DEAD_EXPIRED,
	TQ_AQUEUE_DEAD_MAXLEN,
	TQ_AQUEUE_DEAD_REJECTED,
};

/* Queue arguments. Start from tq_aqueue_conf_init(), then set what the declare asked for. */
struct tq_aqueue_conf {
	uint64_t max_length;       /* x-max-length: ready messages; TQ_AQUEUE_UNLIMITED */
	uint64_t max_length_bytes; /* x-max-length-bytes: ready body bytes; TQ_AQUEUE_UNLIMITED */
	enum tq_aqueue_overflow overflow;
	uint64_t message_ttl;        /* x-message-ttl in ms; TQ_AQUEUE_TTL_NONE */
	uint8_t max_priority;        /* x-max-priority; 0 (absent): one level, priorities ignored */
	bool single_active_consumer; /* x-single-active-consumer */
	/*
	 * x-dead-letter-exchange is set: expired, max-length and rejected messages are handed
	 * back through tq_aqueue_take_dead() instead of released.
	 */
	bool dead_letter;
	bool message_groups; /* x-message-group-header present: honour tq_aqueue_msg_attr.group */
	/* Required. Called once per message the queue disposes of itself (above). */
	void (*release)(void *ctx, void *msg);
	/*
	 * Optional, both or neither: allocate and free the per-message node, of
	 * tq_aqueue_node_size() bytes, e.g. from a per-worker rte_mempool. Default malloc/free.
	 */
	void *(*node_alloc)(void *ctx);
	void (*node_free)(void *ctx, void *node);
	void *ctx; /* for the callbacks */
};

/* A message's attributes at publish. */
struct tq_aqueue_msg_attr {
	uint32_t size;    /* body bytes (x-max-length-bytes) */
	uint8_t priority; /* basic.properties priority; capped at max_priority */
	uint64_t ttl_ms;  /* per-message expiration in ms, or TQ_AQUEUE_TTL_NONE */
	uint64_t group;   /* hash of the group header's value, TQ_AQUEUE_GROUP_NONE: none */
};

struct tq_aqueue_consumer_conf {
	uint64_t id;       /* the caller's name for it (e.g. channel << 32 | consumer tag index) */
	int32_t priority;  /* x-priority (default 0; higher first) */
	uint32_t prefetch; /* unacked deliveries allowed; 0: unlimited; ignored with no_ack */
	bool no_ack;       /* deliveries are settled when sent */
	bool exclusive;    /* basic.consume exclusive */
};

/* One message handed to a consumer (dispatch) or to basic.get. */
struct tq_aqueue_delivery {
	uint64_t consumer; /* consumer id (or the get id) */
	void *msg;
	uint64_t delivery_id;    /* queue-wide, from 1, for ack/nack; 0 when settled */
	uint32_t delivery_count; /* times delivered, this one included (1 the first time) */
	bool redelivered;        /* delivered before (AMQP redelivered flag) */
	bool settled;            /* no-ack: the queue forgot the message, the reference is yours */
};

/* A message to dead-letter: the reference is yours (republish with x-death, then release). */
struct tq_aqueue_dead {
	void *msg;
	enum tq_aqueue_dead_reason reason;
	uint32_t delivery_count; /* times it had been delivered */
};

/* Counters since create (plain, read by the owning thread or approximately by others). */
struct tq_aqueue_stats {
	uint64_t published;   /* accepted by publish */
	uint64_t refused;     /* publish returned TQ_AQUEUE_REFUSED or TQ_AQUEUE_REFUSED_DEAD */
	uint64_t delivered;   /* deliveries, gets included, redeliveries included */
	uint64_t redelivered; /* of which redeliveries */
	uint64_t acked;
	uint64_t requeued;
	uint64_t rejected; /* reject/nack without requeue */
	uint64_t expired;
	uint64_t dropped; /* removed by drop-head (max-length) */
	uint64_t purged;
	uint64_t dead_lettered; /* handed out by tq_aqueue_take_dead */
};

struct tq_aqueue;

/* Defaults: no limits, drop-head, no TTL, one priority level, nothing else. */
void tq_aqueue_conf_init(struct tq_aqueue_conf *conf);

/* Bytes tq_aqueue_conf.node_alloc must return. */
size_t tq_aqueue_node_size(void);

/* x-death reason string: "expired", "maxlen", "rejected". */
const char *tq_aqueue_reason_name(enum tq_aqueue_dead_reason reason);

/* NULL + errno: EINVAL (no release, bad overflow, one allocator callback alone), ENOMEM. */
struct tq_aqueue *tq_aqueue_create(const struct tq_aqueue_conf *conf);

/*
 * Queue delete: releases every message it still holds (ready, unacked, dead letters not yet
 * taken) through conf.release and frees everything. Consumers simply vanish: the caller sends
 * basic.cancel to the ones it registered. NULL is a no-op.
 */
void tq_aqueue_destroy(struct tq_aqueue *q);

/*
 * basic.publish routed here. Returns 0 (the queue owns @msg; a confirm is an ack even if
 * the message is then dropped or expires at once), TQ_AQUEUE_REFUSED, TQ_AQUEUE_REFUSED_DEAD,
 * -ENOMEM (still yours) or -EINVAL (@msg NULL). Drain tq_aqueue_take_dead() afterwards.
 */
int tq_aqueue_publish(struct tq_aqueue *q, void *msg, const struct tq_aqueue_msg_attr *attr,
		      uint64_t now);

/*
 * Hand up to @max ready messages to consumers with room, in order (priority, then FIFO),
 * expiring those that reached the head past their deadline. Returns the count written to
 * @out. Fewer than @max means nothing more can go now: call again after a publish, an ack, a
 * requeue, a new or unpaused consumer.
 */
unsigned int tq_aqueue_dispatch(struct tq_aqueue *q, uint64_t now, struct tq_aqueue_delivery *out,
				unsigned int max);

/*
 * basic.get: take the head message (expired ones removed first). With @no_ack the delivery is
 * settled; otherwise it is tracked under @get_id (a pseudo-consumer, created on first use and
 * gone when it has nothing unacked; ack/nack/consumer_remove take it like a consumer id).
 * Returns 1 (*out filled), 0 (empty: basic.get-empty), -EINVAL (@get_id names a consumer),
 * -ENOMEM.
 */
int tq_aqueue_get(struct tq_aqueue *q, uint64_t now, uint64_t get_id, bool no_ack,
		  struct tq_aqueue_delivery *out);

/*
 * basic.ack of @delivery_id by consumer (or get id) @consumer; with @multiple every unacked
 * delivery of that consumer with an id <= @delivery_id (UINT64_MAX: all of them). Returns the
 * number settled; -ENOENT when @consumer is unknown, or without @multiple when @delivery_id
 * is not an unacked delivery of @consumer.
 */
int tq_aqueue_ack(struct tq_aqueue *q, uint64_t consumer, uint64_t delivery_id, bool multiple);

/*
 * basic.nack / basic.reject (nack with !multiple); basic.recover is nack(UINT64_MAX, multiple,
 * requeue) per consumer. @requeue puts the messages back at their original positions
 * (redelivered next time); otherwise they are dead-lettered "rejected" or released. Returns
 * as tq_aqueue_ack().
 */
int tq_aqueue_nack(struct tq_aqueue *q, uint64_t consumer, uint64_t delivery_id, bool multiple,
		   bool requeue);

/*
 * basic.consume. Returns 0, -EEXIST (id in use, also as a get id), -EBUSY (an exclusive
 * consumer exists, or @c->exclusive and the queue has consumers: 403 ACCESS_REFUSED),
 * -EINVAL, -ENOMEM.
 */
int tq_aqueue_consumer_add(struct tq_aqueue *q, const struct tq_aqueue_consumer_conf *c);

/*
 * basic.cancel, channel or connection closed: the consumer (or get id) goes and its unacked
 * messages go back to their positions, redelivered. Returns the number requeued or -ENOENT.
 */
int tq_aqueue_consumer_remove(struct tq_aqueue *q, uint64_t consumer);

/*
 * Stop (@paused) or resume deliveries to a consumer without removing it: channel.flow, a
 * channel's global prefetch reached, a connection whose socket is full. 0 or -ENOENT.
 */
int tq_aqueue_consumer_pause(struct tq_aqueue *q, uint64_t consumer, bool paused);

/* basic.qos changing a consumer's prefetch (0: unlimited). 0 or -ENOENT. */
int tq_aqueue_consumer_set_prefetch(struct tq_aqueue *q, uint64_t consumer, uint32_t prefetch);

/*
 * Expire every ready message whose deadline passed (now > deadline), wherever it sits.
 * Returns the count. Call when tq_aqueue_next_expiry() comes due.
 */
unsigned int tq_aqueue_sweep(struct tq_aqueue *q, uint64_t now);

/* The earliest `now` at which a ready message will be expired; UINT64_MAX: none. */
uint64_t tq_aqueue_next_expiry(const struct tq_aqueue *q);

/*
 * Take up to @max dead letters, oldest first: each reference becomes yours. Returns the
 * count. Never anything unless conf.dead_letter.
 */
unsigned int tq_aqueue_take_dead(struct tq_aqueue *q, struct tq_aqueue_dead *out, unsigned int max);

/* queue.purge: release every ready message (no dead-lettering, as RabbitMQ). Returns the count. */
uint64_t tq_aqueue_purge(struct tq_aqueue *q);

/*
 * A policy changed the queue's settings while it lives: take max_length, max_length_bytes,
 * overflow, message_ttl and dead_letter from @conf (its other fields are ignored: priority
 * levels, single active consumer and groups are fixed at create). As RabbitMQ does:
 *   - drop-head: ready messages over the new limits are dropped from the head at once
 *     (dead-lettered "maxlen" when dead_letter is on, else released), as a publish would;
 *   - reject-publish(-dlx): nothing is dropped; publishes are refused until the queue is
 *     back under its limits;
 *   - message_ttl applies to messages published from now on; held ones keep their deadline
 *     (RabbitMQ computes a message's expiry when it is enqueued);
 *   - turning dead_letter off leaves dead letters already pending to tq_aqueue_take_dead().
 * Returns the number of messages dropped (saturating at INT_MAX), or -EINVAL (@conf NULL or
 * a bad overflow: nothing changed). Drain tq_aqueue_take_dead() afterwards.
 */
int tq_aqueue_set_limits(struct tq_aqueue *q, const struct tq_aqueue_conf *conf);

uint64_t tq_aqueue_ready(const struct tq_aqueue *q); /* queue.declare-ok message_count */
uint64_t tq_aqueue_ready_bytes(const struct tq_aqueue *q);
uint64_t tq_aqueue_unacked(const struct tq_aqueue *q);
uint32_t tq_aqueue_consumers(const struct tq_aqueue *q);    /* consumer_count: no get ids */
uint64_t tq_aqueue_dead_pending(const struct tq_aqueue *q); /* not yet taken */
void tq_aqueue_stats(const struct tq_aqueue *q, struct tq_aqueue_stats *out);

#endif
