/*
 * The Prometheus endpoint (see tq_metrics.h): libmicrohttpd without threads of its own,
 * driven by tq_metrics_poll() on the control thread; each GET /metrics builds its answer
 * in a fresh heap buffer that libmicrohttpd frees once it is sent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>
#include <rte_ethdev.h>

#include "dataplane/tq_worker.h"
#include "proto/amqp/tq_amqp_admin.h"
#include "proto/amqp/tq_amqp_broker.h"
#include "proto/mqtt/tq_mqtt_broker.h"
#include "tq_metrics.h"

#ifndef TQ_VERSION
#define TQ_VERSION "unknown"
#endif

/* Limits on what a client may cost us: requests are a line and a few headers. */
#define METRICS_CONN_MEMORY (8 * 1024) /* per connection; half of it reads the request */
#define METRICS_MAX_CONNS   16
#define METRICS_TIMEOUT_S   10
#define METRICS_BUF_INITIAL (64 * 1024)
#define METRICS_LOG_PER_MIN 5

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT    "text/plain; charset=utf-8"

struct tq_metrics_buf {
	char *data; /* heap; handed over to the HTTP response when complete */
	size_t len;
	size_t cap;
	int err; /* first error (-ENOMEM); later appends do nothing */
};

struct metrics_source {
	const char *name;
	tq_metrics_source_fn fn;
	void *arg;
};

static struct MHD_Daemon *metrics_daemon;
static struct timespec metrics_started; /* CLOCK_MONOTONIC at tq_metrics_start() */
static struct metrics_source metrics_sources[TQ_METRICS_MAX_SOURCES];
static unsigned int metrics_nb_sources;

void
tq_metrics_conf_defaults(struct tq_metrics_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->address, sizeof(c->address), "127.0.0.1");
	c->port = 15692;
}

/* ---- the answer buffer -------------------------------------------------------------- */

static int
buf_reserve(struct tq_metrics_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : METRICS_BUF_INITIAL;
	char *p;

	if (b->err)
		return b->err;
	if (b->len + more + 1 <= b->cap)
		return 0;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

static int
buf_append(struct tq_metrics_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n))
		return b->err;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static int __attribute__((format(printf, 2, 3)))
buf_printf(struct tq_metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (buf_reserve(b, 128))
		return b->err;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return b->err;
	}
	if ((size_t)n >= b->cap - b->len) { /* did not fit: grow, then print again */
		if (buf_reserve(b, (size_t)n))
			return b->err;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return 0;
}

/*
 * @s escaped as the format wants: backslash and newline always (HELP text and label
 * values), the double quote too inside a label value (@quoted).
 */
static int
buf_escaped(struct tq_metrics_buf *b, const char *s, bool quoted)
{
	for (; *s; s++) {
		size_t run = strcspn(s, quoted ? "\\\n\"" : "\\\n");

		buf_append(b, s, run);
		s += run;
		if (!*s)
			break;
		buf_append(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\", 2);
	}
	return b->err;
}

int
tq_metrics_family(struct tq_metrics_buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s ", name);
	buf_escaped(b, help, false);
	buf_printf(b, "\n# TYPE %s %s\n", name, type);
	return b->err;
}

static int
sample_labels(struct tq_metrics_buf *b, const char *name, const char *const *labels)
{
	buf_append(b, name, strlen(name));
	if (!labels || !labels[0])
		return b->err;
	buf_append(b, "{", 1);
	for (unsigned int i = 0; labels[i] && labels[i + 1]; i += 2) {
		buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
		buf_escaped(b, labels[i + 1], true);
		buf_append(b, "\"", 1);
	}
	buf_append(b, "}", 1);
	return b->err;
}

int
tq_metrics_sample(struct tq_metrics_buf *b, const char *name, const char *const *labels,
		  uint64_t value)
{
	sample_labels(b, name, labels);
	return buf_printf(b, " %" PRIu64 "\n", value);
}

int
tq_metrics_sample_double(struct tq_metrics_buf *b, const char *name, const char *const *labels,
			 double value)
{
	sample_labels(b, name, labels);
	return buf_printf(b, " %.17g\n", value);
}

int
tq_metrics_source_add(const char *name, tq_metrics_source_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	if (metrics_nb_sources == TQ_METRICS_MAX_SOURCES)
		return -ENOSPC;
	metrics_sources[metrics_nb_sources++] = (struct metrics_source){name, fn, arg};
	return 0;
}

/* ---- the built-in sources ------------------------------------------------------------ */

static int
source_process(struct tq_metrics_buf *b, void *arg)
{
	struct timespec now;
	double up;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &now);
	up = (double)(now.tv_sec - metrics_started.tv_sec) +
	     (double)(now.tv_nsec - metrics_started.tv_nsec) / 1e9;
	tq_metrics_family(b, "tachyon_build_info", "gauge", "tachyond's version (always 1)");
	tq_metrics_sample(b, "tachyon_build_info", (const char *[]){"version", TQ_VERSION, NULL},
			  1);
	tq_metrics_family(b, "tachyon_uptime_seconds", "gauge",
			  "Seconds since tachyond became ready (workers, ports and brokers up)");
	tq_metrics_sample_double(b, "tachyon_uptime_seconds", NULL, up);
	tq_metrics_family(b, "tachyon_workers", "gauge", "Worker lcores polling the ports");
	tq_metrics_sample(b, "tachyon_workers", NULL, tq_dp.nb_workers);
	return b->err;
}

/* Every counter of tq_counters.def, one sample per worker (summing is PromQL's job). */
static int
source_counters(struct tq_metrics_buf *b, void *arg)
{
	char name[96], help[256], wid[12];

	(void)arg;
	for (unsigned int id = 1; id < TQ_CTR__COUNT; id++) {
		snprintf(name, sizeof(name), "tachyon_%s_total", tq_counter_name(id));
		snprintf(help, sizeof(help), "%s%s", tq_counter_is_drop(id) ? "drop: " : "",
			 tq_counter_help(id));
		tq_metrics_family(b, name, "counter", help);
		for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
			snprintf(wid, sizeof(wid), "%u", i);
			tq_metrics_sample(b, name, (const char *[]){"worker", wid, NULL},
					  tq_dp.workers[i]->ctr[id]);
		}
	}
	return b->err;
}

/* A counter read at @offset of a stats struct, for tables of series. */
struct stat_series {
	const char *name;
	const char *help;
	size_t offset;
};

static const struct stat_series port_series[] = {
	/* in struct tq_port_stats */
	{"tachyon_port_rx_packets_total", "Frames received on the port by the worker",
	 offsetof(struct tq_port_stats, rx_packets)},
	{"tachyon_port_rx_bytes_total", "Bytes received on the port by the worker",
	 offsetof(struct tq_port_stats, rx_bytes)},
	{"tachyon_port_tx_packets_total", "Frames sent on the port by the worker",
	 offsetof(struct tq_port_stats, tx_packets)},
	{"tachyon_port_tx_bytes_total", "Bytes sent on the port by the worker",
	 offsetof(struct tq_port_stats, tx_bytes)},
	{"tachyon_port_tx_dropped_total",
	 "drop: frames the port's TX queue did not take from the worker",
	 offsetof(struct tq_port_stats, tx_dropped)},
};

static const struct stat_series device_series[] = {
	/* in struct rte_eth_stats */
	{"tachyon_port_rx_missed_total",
	 "drop: frames the device dropped, its RX queue full (imissed)",
	 offsetof(struct rte_eth_stats, imissed)},
	{"tachyon_port_rx_nombuf_total",
	 "drop: frames the device dropped for want of mbufs (rx_nombuf)",
	 offsetof(struct rte_eth_stats, rx_nombuf)},
	{"tachyon_port_rx_errors_total", "drop: erroneous frames the device received (ierrors)",
	 offsetof(struct rte_eth_stats, ierrors)},
};

static uint64_t
stat_at(const void *stats, size_t offset)
{
	uint64_t v;

	memcpy(&v, (const char *)stats + offset, sizeof(v));
	return v;
}

/* The ports in use: what they are, their link, what each worker moved through each. */
static int
source_ports(struct tq_metrics_buf *b, void *arg)
{
	char pid[8], wid[12], mac[RTE_ETHER_ADDR_FMT_SIZE];
	struct rte_eth_link link;

	(void)arg;
	tq_metrics_family(b, "tachyon_port_info", "gauge",
			  "A port in use: its device name, driver and MAC address (always 1)");
	for (uint16_t p = 0; p < tq_nb_ports; p++) {
		if (!tq_ports[p].up)
			continue;
		snprintf(pid, sizeof(pid), "%u", p);
		rte_ether_format_addr(mac, sizeof(mac), &tq_ports[p].mac);
		tq_metrics_sample(b, "tachyon_port_info",
				  (const char *[]){"port", pid, "name", tq_ports[p].name, "driver",
						   tq_ports[p].driver, "mac", mac, NULL},
				  1);
	}
	tq_metrics_family(b, "tachyon_port_link_up", "gauge", "1 when the port's link is up");
	for (uint16_t p = 0; p < tq_nb_ports; p++) {
		if (!tq_ports[p].up || rte_eth_link_get_nowait(p, &link) != 0)
			continue;
		snprintf(pid, sizeof(pid), "%u", p);
		tq_metrics_sample(b, "tachyon_port_link_up", (const char *[]){"port", pid, NULL},
				  link.link_status ? 1 : 0);
	}
	for (size_t s = 0; s < RTE_DIM(port_series); s++) {
		tq_metrics_family(b, port_series[s].name, "counter", port_series[s].help);
		for (uint16_t p = 0; p < tq_nb_ports; p++) {
			if (!tq_ports[p].up)
				continue;
			snprintf(pid, sizeof(pid), "%u", p);
			for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
				snprintf(wid, sizeof(wid), "%u", i);
				tq_metrics_sample(
					b, port_series[s].name,
					(const char *[]){"port", pid, "worker", wid, NULL},
					stat_at(&tq_dp.workers[i]->port_stats[p],
						port_series[s].offset));
			}
		}
	}
	return b->err;
}

/* What each device dropped before any worker saw it (rte_eth_stats_get). */
static int
source_devices(struct tq_metrics_buf *b, void *arg)
{
	struct rte_eth_stats es[TQ_MAX_PORTS];
	bool have[TQ_MAX_PORTS] = {false};
	char pid[8];

	(void)arg;
	for (uint16_t p = 0; p < tq_nb_ports; p++)
		have[p] = tq_ports[p].up && rte_eth_stats_get(p, &es[p]) == 0;
	for (size_t s = 0; s < RTE_DIM(device_series); s++) {
		tq_metrics_family(b, device_series[s].name, "counter", device_series[s].help);
		for (uint16_t p = 0; p < tq_nb_ports; p++) {
			if (!have[p])
				continue;
			snprintf(pid, sizeof(pid), "%u", p);
			tq_metrics_sample(b, device_series[s].name,
					  (const char *[]){"port", pid, NULL},
					  stat_at(&es[p], device_series[s].offset));
		}
	}
	return b->err;
}

static void
mqtt_error_sample(void *arg, const char *reason, uint64_t n)
{
	tq_metrics_sample(arg, "tachyon_mqtt_protocol_errors_by_reason_total",
			  (const char *[]){"reason", reason, NULL}, n);
}

/* The MQTT broker's figures (zero when MQTT is off). */
static int
source_mqtt(struct tq_metrics_buf *b, void *arg)
{
	struct tq_mqtt_stats st;

	(void)arg;
	tq_mqtt_broker_stats(&st);
	tq_metrics_family(b, "tachyon_mqtt_clients_connected", "gauge",
			  "MQTT clients connected now");
	tq_metrics_sample(b, "tachyon_mqtt_clients_connected", NULL, st.clients_connected);
	tq_metrics_family(b, "tachyon_mqtt_sessions", "gauge",
			  "MQTT sessions, connected or kept for a client that left");
	tq_metrics_sample(b, "tachyon_mqtt_sessions", NULL, st.sessions);
	tq_metrics_family(b, "tachyon_mqtt_subscriptions", "gauge", "MQTT subscriptions");
	tq_metrics_sample(b, "tachyon_mqtt_subscriptions", NULL, st.subscriptions);
	tq_metrics_family(b, "tachyon_mqtt_retained_messages", "gauge",
			  "MQTT retained messages stored");
	tq_metrics_sample(b, "tachyon_mqtt_retained_messages", NULL, st.retained);
	tq_metrics_family(b, "tachyon_mqtt_trie_nodes", "gauge",
			  "Nodes of the MQTT topic trie (subscriptions' topic levels)");
	tq_metrics_sample(b, "tachyon_mqtt_trie_nodes", NULL, st.trie_nodes);
	/* only the reasons seen so far have a sample */
	tq_metrics_family(b, "tachyon_mqtt_protocol_errors_by_reason_total", "counter",
			  "MQTT protocol violations by reason (tq_mqtt_errors.def)");
	tq_mqtt_broker_errors(mqtt_error_sample, b);
	return b->err;
}

/*
 * The AMQP broker's figures (zero when AMQP is off). Its channels are left out:
 * tq_amqp_broker_stats() does not count them yet (always 0).
 */
static int
source_amqp(struct tq_metrics_buf *b, void *arg)
{
	struct tq_amqp_stats st;

	(void)arg;
	tq_amqp_broker_stats(&st);
	tq_metrics_family(b, "tachyon_amqp_connections", "gauge", "AMQP connections open now");
	tq_metrics_sample(b, "tachyon_amqp_connections", NULL, st.connections);
	tq_metrics_family(b, "tachyon_amqp_queues", "gauge", "AMQP queues");
	tq_metrics_sample(b, "tachyon_amqp_queues", NULL, st.queues);
	tq_metrics_family(b, "tachyon_amqp_consumers", "gauge", "AMQP consumers");
	tq_metrics_sample(b, "tachyon_amqp_consumers", NULL, st.consumers);
	tq_metrics_family(b, "tachyon_amqp_messages_ready", "gauge",
			  "AMQP messages ready for delivery, all queues");
	tq_metrics_sample(b, "tachyon_amqp_messages_ready", NULL, st.messages_ready);
	tq_metrics_family(b, "tachyon_amqp_messages_unacked", "gauge",
			  "AMQP messages delivered and not acknowledged yet, all queues");
	tq_metrics_sample(b, "tachyon_amqp_messages_unacked", NULL, st.messages_unacked);
	return b->err;
}

/* Per-queue series: one pass over the queues per family (a family's samples go together). */
struct queue_pass {
	struct tq_metrics_buf *b;
	const char *family;
	int what; /* 0 ready, 1 unacked, 2 consumers */
};

static int
queue_sample(void *arg, const struct tq_amqp_queue_info *q)
{
	const struct queue_pass *qp = arg;
	const char *labels[] = {"vhost", q->vhost, "queue", q->name, NULL};
	uint64_t v = qp->what == 0 ? q->ready : qp->what == 1 ? q->unacked : q->consumers;

	return tq_metrics_sample(qp->b, qp->family, labels, v);
}

static int
source_queues(struct tq_metrics_buf *b, void *arg)
{
	static const struct {
		const char *family, *help;
	} fam[] = {
		{"tachyon_queue_messages_ready", "Messages ready for delivery, per AMQP queue"},
		{"tachyon_queue_messages_unacked", "Messages delivered and not acknowledged yet, "
						   "per AMQP queue"},
		{"tachyon_queue_consumers", "Consumers, per AMQP queue"},
	};

	(void)arg;
	for (int i = 0; i < 3; i++) {
		struct queue_pass qp = {.b = b, .family = fam[i].family, .what = i};

		tq_metrics_family(b, fam[i].family, "gauge", fam[i].help);
		tq_amqp_admin_queues(queue_sample, &qp);
	}
	return b->err;
}

static const struct metrics_source builtin_sources[] = {
	{"process", source_process, NULL}, {"counters", source_counters, NULL},
	{"ports", source_ports, NULL},     {"devices", source_devices, NULL},
	{"mqtt", source_mqtt, NULL},       {"amqp", source_amqp, NULL},
	{"queues", source_queues, NULL},
};

/* ---- HTTP ---------------------------------------------------------------------------- */

/*
 * Queue an answer on @conn. @body: static text (@owned false) or heap text that the
 * response frees (@owned true; freed here when no response can be made).
 */
static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned int status, const char *type, char *body, size_t len,
	bool owned, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body,
					    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (owned)
			free(body);
		return MHD_NO; /* MHD closes the connection */
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r); /* the connection holds its own reference */
	return ret;
}

static enum MHD_Result
respond_text(struct MHD_Connection *conn, unsigned int status, const char *text, const char *allow)
{
	return respond(conn, status, CONTENT_TYPE_TEXT, (char *)text, strlen(text), false, allow);
}

static enum MHD_Result
respond_metrics(struct MHD_Connection *conn)
{
	struct tq_metrics_buf b = {0};
	int rc = 0;

	for (size_t i = 0; i < RTE_DIM(builtin_sources) && rc == 0; i++)
		rc = builtin_sources[i].fn(&b, builtin_sources[i].arg);
	for (unsigned int i = 0; i < metrics_nb_sources && rc == 0; i++) {
		rc = metrics_sources[i].fn(&b, metrics_sources[i].arg);
		if (rc)
			fprintf(stderr, "tachyond: metrics: source %s: %s\n",
				metrics_sources[i].name ? metrics_sources[i].name : "?",
				strerror(-rc));
	}
	if (rc == 0)
		rc = b.err;
	if (rc) {
		free(b.data);
		return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "metrics could not be collected\n", NULL);
	}
	return respond(conn, MHD_HTTP_OK, CONTENT_TYPE_METRICS, b.data, b.len, true, NULL);
}

/*
 * libmicrohttpd's access handler: every request, answered on its first call (no request
 * here has a body worth reading; MHD closes a connection whose body was left unread).
 */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	/* HEAD as GET (MHD sends the headers only): HTTP wants both from any server */
	if (!get && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "method not allowed: GET or HEAD\n", "GET, HEAD");
	if (strcmp(url, "/metrics") == 0)
		return respond_metrics(conn);
	if (strcmp(url, "/") == 0)
		return respond_text(conn, MHD_HTTP_OK, "tachyond: Prometheus metrics at /metrics\n",
				    NULL);
	return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", NULL);
}

/*
 * libmicrohttpd's messages: the listener's failures, but also one per misbehaving client
 * (request too big, closed half-way): at most METRICS_LOG_PER_MIN a minute, so that a
 * client cannot fill our log.
 */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	static time_t window;
	static unsigned int logged;
	time_t now = time(NULL);

	(void)cls;
	if (now - window >= 60) {
		window = now;
		logged = 0;
	}
	if (++logged > METRICS_LOG_PER_MIN) {
		if (logged == METRICS_LOG_PER_MIN + 1)
			fputs("tachyond: metrics: more messages this minute not shown\n", stderr);
		return;
	}
	fputs("tachyond: metrics: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int
tq_metrics_start(const struct tq_metrics_conf *conf)
{
	static struct sockaddr_in sa; /* MHD reads it during MHD_start_daemon only */
	unsigned int flags = MHD_USE_ERROR_LOG;

	if (metrics_daemon)
		return -EALREADY;
	if (conf->port == 0)
		return 0;
	if (conf->port > 65535)
		return -EINVAL;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)conf->port);
	if (inet_pton(AF_INET, conf->address, &sa.sin_addr) != 1)
		return -EINVAL;
	/* epoll lifts select()'s FD_SETSIZE: DPDK may hold many descriptors already */
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	clock_gettime(CLOCK_MONOTONIC, &metrics_started);
	errno = 0;
	/* the logger first: MHD logs with its own until it sees it */
	metrics_daemon = MHD_start_daemon(
		flags, (uint16_t)conf->port, NULL, NULL, on_request, NULL,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&sa, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_CONN_MEMORY,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_MAX_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_TIMEOUT_S, MHD_OPTION_END);
	if (!metrics_daemon)
		return errno ? -errno : -EIO;
	return 0;
}

void
tq_metrics_poll(void)
{
	if (metrics_daemon)
		MHD_run(metrics_daemon); /* a zero-timeout wait, then whatever is ready */
}

void
tq_metrics_stop(void)
{
	if (metrics_daemon)
		MHD_stop_daemon(metrics_daemon);
	metrics_daemon = NULL;
	metrics_nb_sources = 0;
}
