/*
 * The MQTT broker: MQTT 3.1, 3.1.1 and 5.0 sessions on tachyon's TCP, one set of sessions
 * per worker, one topic trie (routing/tq_trie) and one retained store shared by all.
 *
 * Threads: tq_mqtt_broker_init/start/close run on the control thread (boot and shutdown,
 * workers stopped); everything else in proto/mqtt runs on the worker that owns the
 * connection or session, except the stats readers (any thread, plain reads).
 */
#ifndef TQ_MQTT_BROKER_H
#define TQ_MQTT_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tq_mqtt_shared_strategy {
	TQ_MQTT_SHARED_ROUND_ROBIN = 0, /* each message to the next member (online first) */
	TQ_MQTT_SHARED_STICKY,          /* the first online member until it leaves */
	TQ_MQTT_SHARED_HASH,            /* by publisher: one publisher's messages to one member */
};

/* [mqtt] in the config. */
struct tq_mqtt_conf {
	uint32_t port;             /* TCP port, 0 = no MQTT */
	uint32_t allow_anonymous;  /* 1: CONNECT without username accepted */
	uint32_t max_keepalive;    /* s: longer (or 0) keep alives are cut to this (v5: Server Keep Alive) */
	uint32_t max_packet_size;  /* bytes, whole packet; larger ones close the connection */
	uint32_t receive_max;      /* QoS 2 PUBLISHes a client may have unreleased (v5 Receive Maximum) */
	uint32_t max_inflight;     /* QoS 1/2 messages sent and unacknowledged, per session */
	uint32_t max_queued;       /* messages queued per session beyond those in flight */
	uint32_t max_sessions;     /* sessions (connected or kept) on the whole router */
	uint32_t max_session_expiry; /* s: cap on the session expiry interval, 0 = none */
	uint32_t max_topic_len;    /* bytes */
	uint32_t max_topic_levels;
	uint32_t max_subs;         /* subscriptions per session */
	uint32_t topic_alias_max;  /* topic aliases a v5 client may use towards us */
	uint32_t max_retained;     /* retained messages on the router */
	uint32_t sys_interval;     /* s between $SYS updates, 0 = none */
	uint32_t shared_strategy;  /* enum tq_mqtt_shared_strategy */
	uint32_t msg_pool;         /* pooled messages (more are taken from the heap) */
};

void tq_mqtt_conf_defaults(struct tq_mqtt_conf *c);

/*
 * Live limits (tachyonctl set mqtt.KEY: control/tq_tune.c, which says when each one applies).
 * tq_mqtt_broker_conf_get copies the settings in force into @out: any thread (they change only
 * under the tune barrier, set and get are serialised by tq_tune.c); -ENOTSUP without MQTT.
 * tq_mqtt_broker_conf_apply takes @next's live fields (allow_anonymous, max_keepalive,
 * max_packet_size, receive_max, max_inflight, max_queued, max_session_expiry, max_topic_len,
 * max_topic_levels, max_subs, topic_alias_max, max_retained, sys_interval; the others are
 * ignored): only while every worker is held at its tune barrier (TQ_TUNE_PARK). It grows the
 * workers' scratch for a larger max_packet_size first. Returns 0, -ENOTSUP (no MQTT), -EPERM
 * (max_inflight above the value in force: sessions' in-flight arrays have that size; @err
 * says so) or -ENOMEM (nothing changed).
 */
int tq_mqtt_broker_conf_get(struct tq_mqtt_conf *out);
int tq_mqtt_broker_conf_apply(const struct tq_mqtt_conf *next, char *err, size_t cap);

/*
 * Create the shared state (trie, retained store, session table, pools) and each
 * worker's part, and listen on conf->port. Control thread, after the workers are created
 * and before they start. Returns 0 or -errno. A port of 0: nothing is done.
 */
int tq_mqtt_broker_start(const struct tq_mqtt_conf *conf);

/* Free everything after the workers stopped (connections are dropped without wills). */
void tq_mqtt_broker_close(void);

/* Figures for telemetry and $SYS: any thread, approximate. */
struct tq_mqtt_stats {
	uint64_t clients_connected;
	uint64_t sessions;        /* connected + kept */
	uint64_t subscriptions;
	uint64_t retained;
	uint64_t trie_nodes;
};
void tq_mqtt_broker_stats(struct tq_mqtt_stats *s);

/* Protocol violations by reason summed over workers: calls @fn for each non-zero one with
 * the error's name (tq_mqtt_errors.def) and count. Any thread, approximate. */
void tq_mqtt_broker_errors(void (*fn)(void *arg, const char *name, uint64_t n), void *arg);

/*
 * Every session (connected or kept for a client that will come back), for tachyonctl
 * sessions: @fn(@arg, client id, its length, owner worker, online, queue full). Any thread:
 * walks the client-id directory under its lock (held through the callbacks, which must not
 * call the broker); the rest are the slots' atomics. Returns how many.
 */
uint32_t tq_mqtt_sessions(void (*fn)(void *arg, const char *id, uint16_t len, uint16_t worker,
				     bool online, bool full),
			  void *arg);

#endif
