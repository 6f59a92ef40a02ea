/*
 * The AMQP 0-9-1 broker: connections and channels on tachyon's TCP (one set per worker),
 * exchanges and bindings in routing/tq_exchange (shared, RCU), queues on their home
 * worker (routing/tq_aqueue semantics), and the bridge to MQTT through amq.topic.
 *
 * Threads: tq_amqp_broker_start/close run on the control thread (boot, shutdown with the
 * workers stopped); the rest of proto/amqp runs on workers; the stats readers anywhere.
 */
#ifndef TQ_AMQP_BROKER_H
#define TQ_AMQP_BROKER_H

#include <stdint.h>

/* [amqp] in the config. */
struct tq_amqp_conf {
	uint32_t port;         /* TCP port, 0 = no AMQP */
	uint32_t frame_max;    /* largest frame we accept and offer in connection.tune */
	uint32_t channel_max;  /* channels per connection */
	uint32_t heartbeat;    /* s offered in connection.tune (0: none) */
	uint32_t max_queues;   /* queues on the router */
	uint32_t op_pool;      /* cross-worker operation descriptors */
	char default_user[64]; /* the one user until the control plane's users land */
	char default_pass[64];
};

void tq_amqp_conf_defaults(struct tq_amqp_conf *c);

/*
 * Live limits (tachyonctl set amqp.KEY: control/tq_tune.c). tq_amqp_broker_conf_get copies the
 * settings in force (any thread; they change only under the tune barrier); -ENOTSUP without
 * AMQP. tq_amqp_broker_conf_apply takes @next's frame_max, channel_max and heartbeat, which
 * the next connection.tune offers (connections already tuned keep theirs; the others are
 * ignored), growing the workers' scratch for a larger frame_max first: 0, -ENOTSUP or -ENOMEM
 * (nothing changed). tq_amqp_broker_tcp_tuned tells the workers' flow control the new
 * tcp.snd_buf. Both only while every worker is held at its tune barrier (TQ_TUNE_PARK).
 */
int tq_amqp_broker_conf_get(struct tq_amqp_conf *out);
int tq_amqp_broker_conf_apply(const struct tq_amqp_conf *next);
void tq_amqp_broker_tcp_tuned(uint32_t snd_buf);

/* Control thread, workers created, not started. 0 or -errno; port 0: nothing done. */
int tq_amqp_broker_start(const struct tq_amqp_conf *conf);
void tq_amqp_broker_close(void);

struct tq_amqp_stats {
	uint64_t connections;
	uint64_t channels;
	uint64_t queues;
	uint64_t consumers;
	uint64_t messages_ready;
	uint64_t messages_unacked;
};
void tq_amqp_broker_stats(struct tq_amqp_stats *s);

#endif
