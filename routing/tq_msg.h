/*
 * The message: one object per published message, shared by every subscriber, queue and
 * retained slot that holds it (ARCHITECTURE.md "One message model").
 *
 * Ownership: a tq_msg is reference counted (atomic: references travel between workers on
 * rings and into the retained store, which drops its references from liburcu's call_rcu
 * thread). The payload is an mbuf chain owned by the message: usually indirect mbufs that
 * point into the frames the publisher's segments arrived in (zero copy), chained by
 * reference again for each delivery. The topic and the properties to forward live inline
 * after the struct (data[]).
 *
 * Allocation: from a mempool (tq_msg_pool_create, at boot) when the topic and properties
 * fit the pool's element, else from the DPDK heap (the caller counts that).
 */
#ifndef TQ_MSG_H
#define TQ_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "proto/mqtt/tq_mqtt_codec.h"

#define TQ_MSG_INLINE 640 /* bytes of topic + properties a pooled message holds */

struct tq_msg {
	uint32_t refcnt;          /* atomic */
	uint8_t qos;              /* as published */
	bool retain;              /* as published */
	bool heap;                /* from rte_malloc, not the pool */
	uint16_t topic_len;       /* MQTT topic, or AMQP routing key */
	uint8_t exchange_len;     /* AMQP: the exchange published to, after the routing key */
	bool amqp;                /* AMQP form: props_len bytes of content header payload follow */
	uint8_t priority;         /* AMQP basic priority (0 when unset) */
	uint32_t props_len;       /* MQTT: bytes of props.raw at data + topic_len; AMQP: the
				   * content header frame payload at data + topic_len + exchange_len */
	uint32_t payload_len;
	uint64_t expiry_ms;       /* tq_msg_now_ms() deadline, 0: never expires */
	uint64_t origin;          /* publisher's session key (MQTT no local), 0: none */
	struct rte_mbuf *payload; /* chain of payload_len bytes, NULL when empty; owned */
	struct rte_mempool *pool; /* where this came from (NULL: heap) */
	/*
	 * MQTT 5 properties to forward (spans rebased into data[]; topic alias and message
	 * expiry are per delivery; subscription identifiers are the subscriber's).
	 */
	struct tq_mqtt_props props;
	char data[];              /* topic (not NUL-terminated), then the property block */
};

/*
 * The MQTT <-> AMQP bridge (ARCHITECTURE.md): each broker sets the hook the other calls,
 * at boot, on the control thread (NULL: that broker is off). Called on a worker with a
 * message of the caller's world; the callee makes its own copy (sharing the payload by
 * reference) and routes it. MQTT topic a/b is AMQP routing key a.b on amq.topic of "/".
 */
struct tq_worker;
extern void (*tq_bridge_to_amqp)(struct tq_worker *w, const struct tq_msg *mqtt_msg);
extern void (*tq_bridge_to_mqtt)(struct tq_worker *w, const struct tq_msg *amqp_msg);

/* A pool of messages with TQ_MSG_INLINE bytes inline. Control thread, boot. NULL + errno. */
struct rte_mempool *tq_msg_pool_create(const char *name, uint32_t n, int socket);

/*
 * A message with room for @inline_len bytes of topic and properties, refcnt 1, fields
 * zeroed. From @pool when it fits, else the heap (*@heap set). NULL when out of memory.
 */
struct tq_msg *tq_msg_alloc(struct rte_mempool *pool, uint32_t inline_len, bool *heap);

static inline const char *
tq_msg_topic(const struct tq_msg *m)
{
	return m->data;
}

static inline const char *
tq_msg_exchange(const struct tq_msg *m)
{
	return m->data + m->topic_len;
}

/* AMQP: the content header frame payload as published (class, weight, size, properties). */
static inline const uint8_t *
tq_msg_amqp_header(const struct tq_msg *m)
{
	return (const uint8_t *)m->data + m->topic_len + m->exchange_len;
}

static inline void
tq_msg_ref(struct tq_msg *m)
{
	__atomic_add_fetch(&m->refcnt, 1, __ATOMIC_RELAXED);
}

/* Drop a reference; the last one frees the payload chain and the message. Any thread. */
void tq_msg_unref(struct tq_msg *m);

/* void * form of tq_msg_unref, for stores that hold values (tq_retain). */
void tq_msg_release(void *m);

/* Milliseconds on a monotonic clock (TSC based), the time base of expiry_ms. */
uint64_t tq_msg_now_ms(void);

/*
 * Indirect mbufs (from @pool) covering bytes [@off, @off + @len) of the chain @m, without
 * copying: the new chain holds references to @m's buffers. NULL when @len is 0 or no mbuf
 * could be had (check @len first). Worker (any lcore with a mempool cache) or control.
 */
struct rte_mbuf *tq_mbuf_slice(struct rte_mempool *pool, const struct rte_mbuf *m, uint32_t off,
			       uint32_t len);

/*
 * Memory for message payloads held in queues when receive buffers run short: received
 * frames shared by reference (zero copy) are what the NIC needs to receive the ACKs that
 * free them, so once a worker's pool is half used, payloads are copied into this pool
 * instead (tq_msg_payload). Set at boot by tachyond (NULL: always zero copy).
 */
extern struct rte_mempool *tq_msgdata_pool;

/*
 * rte_mempool_avail_count(@mp) as this thread saw it at most TQ_POOL_AVAIL_EVERY calls ago.
 * The exact count walks every lcore's cache (RTE_MAX_LCORE of them): 12 % of a worker when
 * asked once per message. For the per-message thresholds (a quarter, a half of a pool of
 * thousands) that staleness does not matter; timers and alarms ask the pool itself.
 */
#define TQ_POOL_AVAIL_EVERY 32
unsigned int tq_pool_avail(struct rte_mempool *mp);

/*
 * The payload of a message: bytes [@off, @off + @len) of the received chain @m, by
 * reference while @rx_pool has at least half its mbufs free, else copied into
 * tq_msgdata_pool (*@copied set). NULL when neither has room (or @len is 0): the caller
 * pushes back on the sender.
 */
struct rte_mbuf *tq_msg_payload(struct rte_mempool *rx_pool, const struct rte_mbuf *m,
				uint32_t off, uint32_t len, bool *copied);

/* Copy @len bytes at @off of chain @m into @dst. Returns 0 or -EINVAL (out of range). */
int tq_mbuf_copy_out(const struct rte_mbuf *m, uint32_t off, uint32_t len, void *dst);

/*
 * A fresh chain from @pool holding a copy of @len bytes at @src (for will messages and
 * $SYS payloads that have no frame to point into). NULL when out of mbufs or @len is 0.
 */
struct rte_mbuf *tq_mbuf_from_bytes(struct rte_mempool *pool, const void *src, uint32_t len);

/*
 * Output waiting for TCP, as MQTT and AMQP connections keep it between flushes: a plain
 * list of mbufs from *@head to *@tail holding *@bytes. TCP reads next and data_len only,
 * so the head's nb_segs saturates instead of limiting how much may wait (free such a list
 * with tq_tcp_chain_free). The connection owns the list.
 */
/* Append chain @m (taken). */
void tq_mbuf_out_chain(struct rte_mbuf **head, struct rte_mbuf **tail, uint32_t *bytes,
		       struct rte_mbuf *m);
/*
 * Append a copy of @len bytes at @buf: into the free end of the last mbuf when it is a
 * direct one held only here (small packets share mbufs), then into fresh ones from @pool.
 * Returns 0, 1 when the bytes were large enough to get a chain of their own (more than 8
 * mbufs), or -ENOMEM with nothing appended.
 */
int tq_mbuf_out_bytes(struct rte_mempool *pool, struct rte_mbuf **head, struct rte_mbuf **tail,
		      uint32_t *bytes, const void *buf, uint32_t len);

#endif
