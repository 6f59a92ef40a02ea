#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include "dataplane/net/tq_ipv4.h"
#include "dataplane/tq_worker.h"
#include "tq_nsim_ctl.h"
#include "tq_telemetry.h"
#include "tq_telemetry_rows.h"
#include "dataplane/net/tq_tcp_var.h"

static const struct tq_config *tel_cfg;
static uint64_t tel_start_tsc;
/* Held by every callback and by tq_telemetry_close(): no callback reads a freed worker. */
static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;
static bool tel_closed;

static int
parse_index(const char *params, unsigned int limit, unsigned int *out)
{
	char *end;
	unsigned long v;

	if (!params || !*params)
		return -ENOENT;
	v = strtoul(params, &end, 10);
	if (end == params || *end != '\0' || v >= limit)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static int
tel_info_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "version", TQ_VERSION);
	rte_tel_data_add_dict_int(d, "workers", (int)tq_dp.nb_workers);
	rte_tel_data_add_dict_int(d, "ports", tq_nb_ports);
	rte_tel_data_add_dict_string(d, "idle", tel_cfg->dp.idle == TQ_IDLE_BUSY ? "busy"
										  : "adaptive");
	rte_tel_data_add_dict_u64(d, "uptime_s", (rte_rdtsc() - tel_start_tsc) / rte_get_tsc_hz());
	rte_tel_data_add_dict_string(d, "config", tel_cfg->path[0] ? tel_cfg->path : "(none)");
	return 0;
}

/* /tachyon/stats: every counter summed over the workers; ",N": worker N's. */
static int
tel_stats_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	unsigned int only = 0;
	int rc = parse_index(params, tq_dp.nb_workers, &only);

	(void)cmd;
	if (rc == -EINVAL)
		return -EINVAL;
	rte_tel_data_start_dict(d);
	for (unsigned int id = 1; id < TQ_CTR__COUNT; id++) {
		uint64_t sum = 0;

		for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
			if (rc == -ENOENT || i == only)
				sum += tq_dp.workers[i]->ctr[id];
		rte_tel_data_add_dict_u64(d, tq_counter_name(id), sum);
	}
	return 0;
}

/* /tachyon/counters: the description of every counter, and whether it counts drops. */
static int
tel_counters_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char buf[RTE_TEL_MAX_STRING_LEN];

	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	for (unsigned int id = 1; id < TQ_CTR__COUNT; id++) {
		snprintf(buf, sizeof(buf), "%s%s", tq_counter_is_drop(id) ? "drop: " : "",
			 tq_counter_help(id));
		rte_tel_data_add_dict_string(d, tq_counter_name(id), buf);
	}
	return 0;
}

/* /tachyon/ports: the port ids; ",N": port N's settings and counters. */
static int
tel_ports_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char buf[64], ip[16];
	struct tq_port_stats sum = {0};
	struct rte_eth_link link;
	const struct tq_port *p;
	unsigned int pid;
	int rc = parse_index(params, tq_nb_ports, &pid);

	(void)cmd;
	if (rc == -ENOENT) {
		rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
		for (uint16_t i = 0; i < tq_nb_ports; i++)
			if (tq_ports[i].up)
				rte_tel_data_add_array_int(d, i);
		return 0;
	}
	if (rc || !tq_ports[pid].up)
		return -EINVAL;
	p = &tq_ports[pid];
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
		const struct tq_port_stats *s = &tq_dp.workers[i]->port_stats[pid];

		sum.rx_packets += s->rx_packets;
		sum.rx_bytes += s->rx_bytes;
		sum.tx_packets += s->tx_packets;
		sum.tx_bytes += s->tx_bytes;
		sum.tx_dropped += s->tx_dropped;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "name", p->name);
	rte_tel_data_add_dict_string(d, "driver", p->driver);
	rte_ether_format_addr(buf, sizeof(buf), &p->mac);
	rte_tel_data_add_dict_string(d, "mac", buf);
	if (p->ipv4) {
		snprintf(buf, sizeof(buf), "%s/%d", tq_ipv4_fmt(p->ipv4, ip),
			 __builtin_popcount(p->netmask));
		rte_tel_data_add_dict_string(d, "ipv4", buf);
	} else {
		rte_tel_data_add_dict_string(d, "ipv4", "-");
	}
	rte_tel_data_add_dict_string(d, "gateway", p->gateway ? tq_ipv4_fmt(p->gateway, ip) : "-");
	rte_tel_data_add_dict_int(d, "mtu", p->mtu);
	rte_tel_data_add_dict_int(d, "queues", p->nb_queues);
	rte_tel_data_add_dict_string(d, "rss", p->rss ? "yes" : "no");
	snprintf(buf, sizeof(buf), "%s%s%s", p->rx_ipv4_csum ? "rx-ipv4-cksum " : "",
		 p->tx_ipv4_csum ? "tx-ipv4-cksum" : "",
		 !p->rx_ipv4_csum && !p->tx_ipv4_csum ? "none" : "");
	rte_tel_data_add_dict_string(d, "offloads", buf);
	if (rte_eth_link_get_nowait((uint16_t)pid, &link) == 0)
		rte_tel_data_add_dict_string(d, "link", link.link_status ? "up" : "down");
	rte_tel_data_add_dict_u64(d, "rx_packets", sum.rx_packets);
	rte_tel_data_add_dict_u64(d, "rx_bytes", sum.rx_bytes);
	rte_tel_data_add_dict_u64(d, "tx_packets", sum.tx_packets);
	rte_tel_data_add_dict_u64(d, "tx_bytes", sum.tx_bytes);
	rte_tel_data_add_dict_u64(d, "tx_dropped", sum.tx_dropped);
	/* what the device itself dropped before any worker saw it */
	{
		struct rte_eth_stats es;

		if (rte_eth_stats_get((uint16_t)pid, &es) == 0) {
			rte_tel_data_add_dict_u64(d, "rx_missed", es.imissed);
			rte_tel_data_add_dict_u64(d, "rx_nombuf", es.rx_nombuf);
			rte_tel_data_add_dict_u64(d, "rx_errors", es.ierrors);
		}
	}
	return 0;
}

/*
 * /tachyon/arp,N: worker N's neighbour cache as "ip mac port state" strings. A snapshot
 * read while the worker may change it: an entry can be torn, never a crash (the slot array
 * does not move while the worker runs).
 */
static int
tel_arp_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	unsigned int wid = 0;
	const struct tq_arp_cache *c;
	int rc = parse_index(params, tq_dp.nb_workers, &wid);

	(void)cmd;
	if (rc == -EINVAL)
		return -EINVAL;
	c = &tq_dp.workers[wid]->arp;
	rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
	for (uint32_t i = 0; i <= c->mask; i++) {
		struct tq_arp_entry e = c->slots[i];
		char line[96], ip[16], mac[RTE_ETHER_ADDR_FMT_SIZE];

		if (e.state == TQ_ARP_FREE)
			continue;
		rte_ether_format_addr(mac, sizeof(mac), &e.mac);
		snprintf(line, sizeof(line), TQ_ARP_ROW_FMT, tq_ipv4_fmt(e.ip, ip), mac, e.port,
			 e.state == TQ_ARP_REACHABLE ? "reachable" : "incomplete");
		if (rte_tel_data_add_array_string(d, line))
			break; /* array full: RTE_TEL_MAX_ARRAY_ENTRIES */
	}
	return 0;
}

/* /tachyon/ping,A.B.C.D[,seq]: worker 0 sends one ICMP echo request. */
static int
tel_ping_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct tq_ring_msg msg = {.type = TQ_MSG_PING};
	char addr[32];
	const char *comma;
	uint32_t ip;

	(void)cmd;
	if (!params || tq_dp.nb_workers == 0)
		return -EINVAL;
	comma = strchr(params, ',');
	snprintf(addr, sizeof(addr), "%.*s", comma ? (int)(comma - params) : (int)strlen(params),
		 params);
	if (tq_ipv4_parse_cidr(addr, &ip, NULL))
		return -EINVAL;
	msg.a = ip;
	msg.b = comma ? strtoul(comma + 1, NULL, 10) & 0xffff : 1;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "sent_to_worker0",
				     tq_worker_post(tq_dp.workers[0], &msg, NULL) == 0 ? "yes"
										       : "ring full");
	return 0;
}

/* /tachyon/nsim,PORT,rx|tx[,key=value...]: see tq_nsim_ctl.h. */
static int
tel_nsim_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	return tq_nsim_ctl_command(params, d);
}

#define TEL_LOCKED(fn)                                                                             \
	static int tel_##fn(const char *cmd, const char *params, struct rte_tel_data *d)           \
	{                                                                                          \
		int rc = -EBUSY;                                                                   \
                                                                                                   \
		pthread_mutex_lock(&tel_lock);                                                     \
		if (!tel_closed)                                                                   \
			rc = tel_##fn##_locked(cmd, params, d);                                    \
		pthread_mutex_unlock(&tel_lock);                                                   \
		return rc;                                                                         \
	}

/*
 * /tachyon/conns,N: worker N's TCP connections, one formatted row each (at most
 * RTE_TEL_MAX_ARRAY_ENTRIES). A snapshot read while the worker runs: a row can be torn,
 * never a crash (the TCB array does not move while the worker runs).
 */
static int
tel_conns_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	unsigned int wid = 0;
	const struct tq_tcp_worker *t;
	int rc = parse_index(params, tq_dp.nb_workers, &wid);

	(void)cmd;
	if (rc == -EINVAL)
		return -EINVAL;
	t = tq_dp.workers[wid]->tcp;
	rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
	for (uint32_t i = 0; i < tq_tcp_cfg.max_conns; i++) {
		struct tq_tcp_conn c = t->conns[i];
		char line[256], l[24], r[24], ip[16]; /* telemetry keeps the first 127 bytes */

		if (c.state == TQ_TCP_CLOSED)
			continue;
		snprintf(l, sizeof(l), "%s:%u", tq_ipv4_fmt(c.key.laddr, ip),
			 rte_be_to_cpu_16(c.key.lport));
		snprintf(r, sizeof(r), "%s:%u", tq_ipv4_fmt(c.key.raddr, ip),
			 rte_be_to_cpu_16(c.key.rport));
		snprintf(line, sizeof(line), TQ_CONN_ROW_FMT, l, r, tq_tcp_state_name(c.state),
			 c.snd_wnd, tq_tcp_rcv_window(&c), c.cwnd, c.srtt_us, c.rto_us / 1000,
			 c.sq_bytes, c.rx_held);
		if (rte_tel_data_add_array_string(d, line) < 0)
			break; /* array full (a positive E2BIG only means truncated) */
	}
	return 0;
}

static void
add_error(void *arg, const char *name, uint64_t n)
{
	rte_tel_data_add_dict_u64(arg, name, n);
}

/* /tachyon/mqtt: the broker's figures (sessions, subscriptions, retained, violations). */
static int
tel_mqtt_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct tq_mqtt_stats st;
	struct rte_tel_data *errors;

	(void)cmd;
	(void)params;
	tq_mqtt_broker_stats(&st);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "port", tel_cfg->mqtt.port);
	rte_tel_data_add_dict_u64(d, "clients_connected", st.clients_connected);
	rte_tel_data_add_dict_u64(d, "sessions", st.sessions);
	rte_tel_data_add_dict_u64(d, "subscriptions", st.subscriptions);
	rte_tel_data_add_dict_u64(d, "trie_nodes", st.trie_nodes);
	rte_tel_data_add_dict_u64(d, "retained", st.retained);
	errors = rte_tel_data_alloc();
	if (errors) {
		rte_tel_data_start_dict(errors);
		tq_mqtt_broker_errors(add_error, errors);
		rte_tel_data_add_dict_container(d, "protocol_errors", errors, 0);
	}
	return 0;
}

/* /tachyon/amqp: the AMQP broker's figures. */
static int
tel_amqp_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct tq_amqp_stats st;

	(void)cmd;
	(void)params;
	tq_amqp_broker_stats(&st);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "port", tel_cfg->amqp.port);
	rte_tel_data_add_dict_u64(d, "connections", st.connections);
	rte_tel_data_add_dict_u64(d, "queues", st.queues);
	rte_tel_data_add_dict_u64(d, "consumers", st.consumers);
	rte_tel_data_add_dict_u64(d, "messages_ready", st.messages_ready);
	rte_tel_data_add_dict_u64(d, "messages_unacked", st.messages_unacked);
	return 0;
}

/*
 * /tachyon/workers: per worker its lcore, the TSC cycles its loop spent doing work, its loop
 * iterations and idle sleeps, and the TSC now; a reader takes two samples and divides the
 * differences (tachyonctl workers: busy %).
 */
static int
tel_workers_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const keys[] = {"lcore", "busy_tsc", "loops", "idle_sleeps"};
	uint64_t now = rte_rdtsc();

	(void)cmd;
	(void)params;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "tsc_hz", rte_get_tsc_hz());
	rte_tel_data_add_dict_u64(d, "tsc", now);
	for (unsigned int k = 0; k < RTE_DIM(keys); k++) {
		struct rte_tel_data *a = rte_tel_data_alloc();

		if (!a)
			return -ENOMEM;
		rte_tel_data_start_array(a, RTE_TEL_U64_VAL);
		for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
			const struct tq_worker *w = tq_dp.workers[i];
			uint64_t v = k == 0   ? w->lcore
				     : k == 1 ? __atomic_load_n(&w->busy_tsc, __ATOMIC_RELAXED)
				     : k == 2 ? __atomic_load_n(&w->loops, __ATOMIC_RELAXED)
					      : w->ctr[TQ_CTR_idle_sleeps];

			rte_tel_data_add_array_u64(a, v);
		}
		rte_tel_data_add_dict_container(d, keys[k], a, 0);
	}
	return 0;
}

/* /tachyon/sessions: MQTT sessions (client id, owner worker, online, queue full), at most
 * TEL_SESSIONS_MAX of them, and the total. */
#define TEL_SESSIONS_MAX 500

/*
 * A printable copy of @s (@len bytes, or up to its NUL when @len is SIZE_MAX) for DPDK's
 * JSON: printable ASCII only, no quote or backslash (others become '?'), cut to @cap - 1.
 */
static void
tel_printable(char *dst, const char *s, size_t len, size_t cap)
{
	size_t i = 0;

	for (; i < len && i < cap - 1 && (len != SIZE_MAX || s[i]); i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? s[i] : '?';
	dst[i] = '\0';
}

struct sess_cols {
	struct rte_tel_data *id, *worker, *online, *full;
	uint32_t n;
};

static void
sess_row(void *arg, const char *id, uint16_t len, uint16_t worker, bool online, bool full)
{
	struct sess_cols *c = arg;
	char buf[RTE_TEL_MAX_STRING_LEN];

	if (c->n++ >= TEL_SESSIONS_MAX)
		return;
	tel_printable(buf, id, len, sizeof(buf)); /* not NUL-terminated */
	rte_tel_data_add_array_string(c->id, buf);
	rte_tel_data_add_array_u64(c->worker, worker);
	rte_tel_data_add_array_u64(c->online, online);
	rte_tel_data_add_array_u64(c->full, full);
}

static int
tel_sessions_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct sess_cols c = {
		.id = rte_tel_data_alloc(),
		.worker = rte_tel_data_alloc(),
		.online = rte_tel_data_alloc(),
		.full = rte_tel_data_alloc(),
	};

	(void)cmd;
	(void)params;
	if (!c.id || !c.worker || !c.online || !c.full) {
		rte_tel_data_free(c.id);
		rte_tel_data_free(c.worker);
		rte_tel_data_free(c.online);
		rte_tel_data_free(c.full);
		return -ENOMEM;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_start_array(c.id, RTE_TEL_STRING_VAL);
	rte_tel_data_start_array(c.worker, RTE_TEL_U64_VAL);
	rte_tel_data_start_array(c.online, RTE_TEL_U64_VAL);
	rte_tel_data_start_array(c.full, RTE_TEL_U64_VAL);
	tq_mqtt_sessions(sess_row, &c);
	rte_tel_data_add_dict_u64(d, "total", c.n);
	rte_tel_data_add_dict_container(d, "client_id", c.id, 0);
	rte_tel_data_add_dict_container(d, "worker", c.worker, 0);
	rte_tel_data_add_dict_container(d, "online", c.online, 0);
	rte_tel_data_add_dict_container(d, "queue_full", c.full, 0);
	return 0;
}

/*
 * /tachyon/trace,N: record the next N publishes of each worker (0: stop);
 * /tachyon/trace: what was recorded (each worker's newest TQ_TRACE_RING), as columns.
 */
static int
tel_trace_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const cols[] = {"worker", "seq",  "ms",	"proto", "user",
					   "exchange", "key", "size", "qos",	"matched"};
	struct rte_tel_data *a[RTE_DIM(cols)];

	(void)cmd;
	rte_tel_data_start_dict(d);
	if (params && *params) {
		char *end;
		unsigned long n = strtoul(params, &end, 10);
		struct tq_ring_msg m = {.type = TQ_MSG_TRACE};

		if (*end || n > 1000000) {
			rte_tel_data_add_dict_string(d, "error", "usage: trace [N], N <= 1000000");
			return 0;
		}
		m.a = (uint32_t)n;
		for (unsigned int w = 0; w < tq_dp.nb_workers; w++)
			if (tq_worker_post(tq_dp.workers[w], &m, NULL) < 0) {
				rte_tel_data_add_dict_string(d, "error", "a worker's ring is full");
				return 0;
			}
		rte_tel_data_add_dict_u64(d, "armed", n);
		return 0;
	}
	for (size_t k = 0; k < RTE_DIM(cols); k++) {
		a[k] = rte_tel_data_alloc();
		if (!a[k]) {
			while (k--)
				rte_tel_data_free(a[k]);
			return -ENOMEM;
		}
		rte_tel_data_start_array(a[k], k >= 3 && k <= 6 ? RTE_TEL_STRING_VAL
							       : RTE_TEL_U64_VAL);
	}
	for (unsigned int w = 0; w < tq_dp.nb_workers; w++) {
		const struct tq_trace *t = &tq_dp.workers[w]->trace;

		for (unsigned int i = 0; i < TQ_TRACE_RING; i++) {
			const struct tq_trace_rec *src = &t->rec[i];
			struct tq_trace_rec r;
			uint64_t s1 = __atomic_load_n(&src->seq, __ATOMIC_ACQUIRE);
			char buf[TQ_TRACE_NAME];

			if (!s1)
				continue;
			memcpy(&r, src, sizeof(r)); /* torn when the worker writes meanwhile: */
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (__atomic_load_n(&src->seq, __ATOMIC_RELAXED) != s1)
				continue; /* then skipped */
			r.user[TQ_TRACE_NAME - 1] = r.exchange[TQ_TRACE_NAME - 1] = '\0';
			r.key[TQ_TRACE_NAME - 1] = '\0';
			rte_tel_data_add_array_u64(a[0], w);
			rte_tel_data_add_array_u64(a[1], s1);
			rte_tel_data_add_array_u64(a[2], r.ms);
			rte_tel_data_add_array_string(a[3], r.proto == 'm' ? "mqtt" : "amqp");
			tel_printable(buf, r.user, SIZE_MAX, sizeof(buf));
			rte_tel_data_add_array_string(a[4], buf);
			tel_printable(buf, r.exchange, SIZE_MAX, sizeof(buf));
			rte_tel_data_add_array_string(a[5], buf);
			tel_printable(buf, r.key, SIZE_MAX, sizeof(buf));
			rte_tel_data_add_array_string(a[6], buf);
			rte_tel_data_add_array_u64(a[7], r.size);
			rte_tel_data_add_array_u64(a[8], r.qos);
			rte_tel_data_add_array_u64(a[9], r.matched < 0 ? 0 : (uint64_t)r.matched);
		}
	}
	for (size_t k = 0; k < RTE_DIM(cols); k++)
		rte_tel_data_add_dict_container(d, cols[k], a[k], 0);
	return 0;
}

TEL_LOCKED(trace)
TEL_LOCKED(sessions)
TEL_LOCKED(workers)
TEL_LOCKED(info)
TEL_LOCKED(mqtt)
TEL_LOCKED(amqp)
TEL_LOCKED(stats)
TEL_LOCKED(counters)
TEL_LOCKED(ports)
TEL_LOCKED(arp)
TEL_LOCKED(ping)
TEL_LOCKED(nsim)
TEL_LOCKED(conns)

static int tel_close_connection(const char *cmd, const char *params, struct rte_tel_data *d);

int
tq_telemetry_register(const struct tq_config *cfg)
{
	int rc = 0;

	tel_cfg = cfg;
	tel_start_tsc = rte_rdtsc();
	tq_nsim_ctl_init(&cfg->dp);
	rc |= rte_telemetry_register_cmd("/tachyon/info", tel_info,
					 "tachyond version, workers, ports, idle mode, uptime");
	rc |= rte_telemetry_register_cmd("/tachyon/stats", tel_stats,
					 "Counters summed over workers. Parameters: int worker_id");
	rc |= rte_telemetry_register_cmd("/tachyon/counters", tel_counters,
					 "What each counter counts");
	rc |= rte_telemetry_register_cmd("/tachyon/ports", tel_ports,
					 "Port ids. Parameters: int port_id for its details");
	rc |= rte_telemetry_register_cmd("/tachyon/arp", tel_arp,
					 "Neighbour cache of a worker. Parameters: int worker_id");
	rc |= rte_telemetry_register_cmd("/tachyon/ping", tel_ping,
					 "Send an ICMP echo request. Parameters: ipv4[,seq]");
	rc |= rte_telemetry_register_cmd("/tachyon/close_connection", tel_close_connection,
					 "Close the connections from a peer. Parameters: ADDR[:PORT]");
	rc |= rte_telemetry_register_cmd("/tachyon/trace", tel_trace,
					 "Sampled message trace. Parameters: N (record the next N "
					 "publishes per worker), or none (show them)");
	rc |= rte_telemetry_register_cmd("/tachyon/sessions", tel_sessions,
					 "MQTT sessions: client id, worker, online, queue full");
	rc |= rte_telemetry_register_cmd("/tachyon/workers", tel_workers,
					 "Per worker: lcore, busy TSC cycles, loops, idle sleeps");
	rc |= rte_telemetry_register_cmd("/tachyon/conns", tel_conns,
					 "TCP connections of a worker. Parameters: int worker_id");
	rc |= rte_telemetry_register_cmd("/tachyon/mqtt", tel_mqtt,
					 "MQTT broker: clients, sessions, subscriptions, retained");
	rc |= rte_telemetry_register_cmd("/tachyon/amqp", tel_amqp,
					 "AMQP broker: connections, queues, consumers, messages");
	rc |= rte_telemetry_register_cmd("/tachyon/nsim", tel_nsim,
					 "Network simulator. Parameters: port,rx|tx[,key=value...]");
	return rc ? -EINVAL : 0;
}

int
tq_telemetry_post_all(const struct tq_ring_msg *m)
{
	int rc = -ESHUTDOWN;

	pthread_mutex_lock(&tel_lock);
	if (!tel_closed) {
		rc = 0;
		for (unsigned int w = 0; w < tq_dp.nb_workers && rc == 0; w++)
			rc = tq_worker_post(tq_dp.workers[w], m, NULL);
	}
	pthread_mutex_unlock(&tel_lock);
	return rc;
}

/*
 * /tachyon/close_connection,ADDR[:PORT]: every worker closes its connections from that peer
 * (AMQP: 320 CONNECTION_FORCED; MQTT 5: DISCONNECT 0x98; otherwise a reset). Asynchronous:
 * counted in conns_killed as the workers do it.
 */
static int
tel_close_connection(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char addr[32];
	const char *colon;
	uint32_t ip = 0;
	unsigned long port = 0;
	struct tq_ring_msg m = {.type = TQ_MSG_KILL_PEER};
	int rc;

	(void)cmd;
	rte_tel_data_start_dict(d);
	if (!params || !*params || strlen(params) >= sizeof(addr)) {
		rte_tel_data_add_dict_string(d, "error", "usage: ADDR[:PORT]");
		return 0;
	}
	snprintf(addr, sizeof(addr), "%s", params);
	colon = strchr(addr, ':');
	if (colon) {
		char *end;

		port = strtoul(colon + 1, &end, 10);
		addr[colon - addr] = '\0';
		if (*end || port == 0 || port > 65535) {
			rte_tel_data_add_dict_string(d, "error", "bad port");
			return 0;
		}
	}
	if (tq_ipv4_parse_cidr(addr, &ip, NULL) < 0 || !ip) {
		rte_tel_data_add_dict_string(d, "error", "bad IPv4 address");
		return 0;
	}
	m.a = ip;
	m.b = rte_cpu_to_be_16((uint16_t)port);
	rc = tq_telemetry_post_all(&m);
	if (rc < 0) {
		rte_tel_data_add_dict_string(d, "error", rc == -ENOBUFS ? "a worker's ring is full"
									: "shutting down");
		return 0;
	}
	rte_tel_data_add_dict_string(d, "ok", params);
	return 0;
}

void
tq_telemetry_close(void)
{
	pthread_mutex_lock(&tel_lock);
	tel_closed = true;
	pthread_mutex_unlock(&tel_lock);
}
