/*
 * Sampled message trace (tachyonctl trace N): the next N publishes each worker routes are
 * recorded — when, which protocol, who (user), where to (MQTT topic or AMQP exchange and
 * routing key, cut at 64 bytes), the body size and how many subscribers or queues matched —
 * in a small ring per worker that the telemetry thread reads. Arming costs the fast path one
 * predictable branch (trace_left is 0) until an operator asks.
 */
#ifndef TQ_TRACE_H
#define TQ_TRACE_H

#include <stdint.h>

#define TQ_TRACE_RING 64  /* records kept per worker (the newest) */
#define TQ_TRACE_NAME 64  /* bytes of a topic, exchange or user kept */

struct tq_trace_rec {
	uint64_t seq;         /* 1, 2, ... per worker; 0: empty slot */
	uint64_t ms;          /* TSC in milliseconds (comparable across workers) */
	uint8_t proto;        /* 'm' MQTT, 'a' AMQP */
	uint8_t qos;          /* MQTT QoS / AMQP delivery mode */
	uint32_t size;        /* body bytes */
	int32_t matched;      /* subscribers or queues reached (< 0: refused) */
	char user[TQ_TRACE_NAME];
	char exchange[TQ_TRACE_NAME]; /* AMQP; "" for MQTT */
	char key[TQ_TRACE_NAME];      /* MQTT topic or AMQP routing key */
};

/* Per worker: written by its worker, read (torn records possible) by telemetry. */
struct tq_trace {
	uint32_t left;        /* publishes still to record; 0: off */
	uint64_t seq;
	struct tq_trace_rec rec[TQ_TRACE_RING];
};

struct tq_worker;

/* Record one publish (the caller checked w->trace.left). Worker only. */
void tq_trace_record(struct tq_worker *w, uint8_t proto, const char *user, const char *exchange,
		     uint32_t exchange_len, const char *key, uint32_t key_len, uint32_t size,
		     uint8_t qos, int32_t matched);

#endif
