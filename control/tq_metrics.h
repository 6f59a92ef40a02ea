/*
 * Prometheus metrics over HTTP: GET /metrics answers the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/) built from the worker
 * counters, the port statistics, the MQTT and AMQP brokers' figures and the uptime.
 *
 * Threads: everything here runs on the control thread. libmicrohttpd is used in its
 * external-select mode without a thread of its own: tq_metrics_poll(), called from the
 * control loop, accepts, reads and answers whatever is pending, and builds each answer on
 * the spot (plain reads of counters that only workers write, as telemetry does). Because
 * the control thread also destroys the workers, there is no lock: tq_metrics_stop() runs
 * first.
 *
 * More series: a source is one function that appends whole families (HELP, TYPE, then
 * every sample of that family) to the answer; register it with tq_metrics_source_add().
 * The built-in ones (process, workers' counters, ports, MQTT, AMQP) come first, then the
 * registered ones in the order they were added.
 *
 * Per-queue series are meant to arrive that way: the AMQP broker (or whoever owns the
 * queues) writes one function, e.g.
 *
 *	static int
 *	tq_amqp_metrics_queues(struct tq_metrics_buf *b, void *arg)
 *	{
 *		tq_metrics_family(b, "tachyon_queue_messages_ready", "gauge",
 *				  "Messages ready to be delivered, per queue");
 *		for each queue q:
 *			tq_metrics_sample(b, "tachyon_queue_messages_ready",
 *					  (const char *[]){"vhost", q->vhost, "queue", q->name,
 *							   NULL}, q->ready);
 *		tq_metrics_family(b, "tachyon_queue_messages_unacked", ...);
 *		...
 *		return 0;
 *	}
 *
 * and tachyond registers it after tq_metrics_start():
 *	tq_metrics_source_add("queues", tq_amqp_metrics_queues, NULL);
 */
#ifndef TQ_METRICS_H
#define TQ_METRICS_H

#include <stdint.h>

/* [metrics] in the config. */
struct tq_metrics_conf {
	char address[16]; /* IPv4 address to listen on, dotted quad ("127.0.0.1") */
	uint32_t port;    /* TCP port, 0 = no metrics endpoint */
};

/* 127.0.0.1:15692 (RabbitMQ's Prometheus port). Any thread. */
void tq_metrics_conf_defaults(struct tq_metrics_conf *c);

/*
 * Listen on conf->address:conf->port (that address only). Control thread, after the
 * workers and the brokers were created (the answers read them). Returns 0 (also when
 * conf->port is 0: nothing is done), -EINVAL for a bad address, -EALREADY when started,
 * or -errno from the listening socket (-EADDRINUSE ...). @conf is not kept.
 */
int tq_metrics_start(const struct tq_metrics_conf *conf);

/*
 * Serve what is pending (new connections, requests, answers still being sent) without
 * blocking. Control thread, about every millisecond. Nothing when not started.
 */
void tq_metrics_poll(void);

/*
 * Close the listener and every connection, forget the registered sources. Control
 * thread, before the workers and brokers the answers read are freed. Safe when not
 * started, and twice.
 */
void tq_metrics_stop(void);

/* ---- sources: what an answer is made of -------------------------------------------- */

/* The answer being built; appended to only through the functions below. */
struct tq_metrics_buf;

/*
 * A source appends complete families to @b. Returns 0 or -errno (the scrape then fails
 * with 500, so return an error only when the answer would be wrong, not when a figure is
 * merely unavailable). Runs on the control thread inside tq_metrics_poll().
 */
typedef int (*tq_metrics_source_fn)(struct tq_metrics_buf *b, void *arg);

/*
 * Add @fn (with @arg) to every answer, after the sources already there. @name (static
 * storage) names it in error messages. Control thread. Returns 0, -EINVAL for a NULL @fn,
 * -ENOSPC beyond TQ_METRICS_MAX_SOURCES. Sources are forgotten by tq_metrics_stop().
 */
#define TQ_METRICS_MAX_SOURCES 16
int tq_metrics_source_add(const char *name, tq_metrics_source_fn fn, void *arg);

/*
 * Start family @name: its "# HELP" (@help, escaped) and "# TYPE" (@type: "counter",
 * "gauge", "untyped") lines. Every sample of the family must follow before the next
 * family starts (the format wants a family's samples together). Counter names end in
 * "_total". Returns 0 or -ENOMEM (also remembered in @b: the answer becomes a 500).
 */
int tq_metrics_family(struct tq_metrics_buf *b, const char *name, const char *type,
		      const char *help);

/*
 * One sample line: @name{k1="v1",k2="v2"} @value. @labels: NULL, or key, value, key,
 * value, ..., NULL; the values are escaped (backslash, double quote, newline), keys are
 * taken as they are (they must match [a-zA-Z_][a-zA-Z0-9_]*). Returns 0 or -ENOMEM.
 */
int tq_metrics_sample(struct tq_metrics_buf *b, const char *name, const char *const *labels,
		      uint64_t value);

/* The same with a floating-point value (printed with %.17g). */
int tq_metrics_sample_double(struct tq_metrics_buf *b, const char *name, const char *const *labels,
			     double value);

#endif
