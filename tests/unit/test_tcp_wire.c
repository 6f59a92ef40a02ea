/*
 * TCP over a simulated wire (tq_wire.h): both ends are tachyon's stack, one worker talking
 * to its own address, so every segment crosses a link that drops, duplicates, reorders,
 * delays, corrupts, truncates or clamps windows on purpose. A test application transfers
 * a seeded byte pattern each way, checks every byte in order, then both ends close; each
 * case asserts the data, the close sequence, what the counters say about the recovery
 * path taken, and that no TCB or mbuf is left behind.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <CUnit/TestRun.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/net/tq_tcp_var.h"
#include "dataplane/tq_port.h"
#include "dataplane/tq_worker.h"
#include "tq_test.h"
#include "tq_wire.h"

#define OUR_IP "198.18.0.1"
#define SERVER_PORT 5001
#define POOL_SIZE 8191
#define CHUNK 2000        /* bytes per mbuf the application sends: not a multiple of the MSS */
#define MSS_TS 1448       /* payload per segment with timestamps (1460 - 12) */
#define KiB 1024u
#define MiB (1024u * 1024u)

static struct rte_mempool *pool;
static struct rte_ring *rx_ring, *tx_ring;
static uint16_t port;
static uint32_t our_ip;

/* ---------------------------------------------------------------- the test application */

struct sim;

struct endpoint {
	const char *name;
	struct sim *sim;
	struct tq_tcp_conn *c;   /* NULL before on_connected and after on_closed */
	uint32_t tx_seed, rx_seed;
	uint32_t tx_total, tx_queued;
	uint32_t rx_total, rx_got;
	bool connected, peer_closed, close_called, closed, retry_send;
	int closed_err;
	unsigned int closed_calls, connected_calls, writable_calls;
	uint8_t state_at_closed;
	bool from_cookie;
	uint64_t connected_us;
	/* hold: keep what arrives instead of releasing it (the window closes) */
	bool hold;
	struct rte_mbuf **held;
	unsigned int held_n, held_max;
	uint32_t held_bytes;
	char err[256];
};

enum closer { CLIENT_CLOSES, SERVER_CLOSES, BOTH_CLOSE };

struct sim {
	struct tq_worker *w;
	struct tq_wire *wire;
	struct endpoint cli, srv;
	enum closer closer;
	bool wait_time_wait;   /* done only when every TCB is gone (TIME_WAIT over) */
	unsigned int pool_start;
	void (*hook)(struct sim *s); /* extra actions at each step */
	/* state of the hooks */
	uint64_t t_mark;
	int phase;
	uint64_t ctr_mark[6];
	struct rte_mbuf **hoard;
	unsigned int hoard_n;
};

/* The byte at stream offset @k of the stream seeded @seed: a word of hash per 4 bytes. */
static inline uint32_t
pattern_word(uint32_t seed, uint32_t i)
{
	uint32_t x = i * 0x9e3779b1u ^ seed;

	x ^= x >> 15;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	return x ^ (x >> 16);
}

static void
fill(uint8_t *p, uint32_t seed, uint32_t off, uint32_t len)
{
	uint32_t word = pattern_word(seed, off >> 2);

	for (uint32_t i = 0; i < len; i++, off++) {
		if ((off & 3) == 0)
			word = pattern_word(seed, off >> 2);
		p[i] = (uint8_t)(word >> ((off & 3) * 8));
	}
}

static void __attribute__((format(printf, 2, 3)))
ep_error(struct endpoint *e, const char *fmt, ...)
{
	va_list ap;

	if (e->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(e->err, sizeof(e->err), fmt, ap);
	va_end(ap);
}

/* Queue as much of the stream as the send buffer takes. */
static void
pump(struct endpoint *e)
{
	e->retry_send = false;
	while (e->c && e->tx_queued < e->tx_total) {
		uint32_t len = RTE_MIN((uint32_t)CHUNK, e->tx_total - e->tx_queued);
		struct rte_mbuf *m;
		int rc;

		if (tq_tcp_send_space(e->c) < len) {
			tq_tcp_want_writable(e->c);
			return;
		}
		m = rte_pktmbuf_alloc(pool);
		if (!m) {
			e->retry_send = true; /* pool empty: try again at the next step */
			return;
		}
		fill((uint8_t *)rte_pktmbuf_append(m, (uint16_t)len), e->tx_seed, e->tx_queued, len);
		rc = tq_tcp_send(e->c, m);
		if (rc == -ENOBUFS) {
			rte_pktmbuf_free(m);
			return; /* on_writable follows */
		}
		if (rc) {
			rte_pktmbuf_free(m);
			ep_error(e, "%s: tq_tcp_send: %s", e->name, strerror(-rc));
			return;
		}
		e->tx_queued += len;
	}
}

static void
release_held(struct endpoint *e)
{
	for (unsigned int i = 0; i < e->held_n; i++)
		rte_pktmbuf_free(e->held[i]);
	e->held_n = 0;
	if (e->c && e->held_bytes)
		tq_tcp_rx_release(e->c, e->held_bytes);
	e->held_bytes = 0;
}

static int
ep_connected(struct endpoint *e, struct tq_tcp_conn *c)
{
	e->c = c;
	e->connected = true;
	e->connected_calls++;
	e->connected_us = tq_wire_now_us(e->sim->wire);
	e->from_cookie = c->from_cookie;
	pump(e);
	return 0;
}

static int
cli_connected(struct tq_tcp_conn *c)
{
	return ep_connected(tq_tcp_user(c), c);
}

static int
srv_connected(struct tq_tcp_conn *c)
{
	struct sim *s = tq_tcp_listener_user(c);

	if (s->srv.connected_calls) {
		ep_error(&s->srv, "server: a second connection");
		return -1;
	}
	tq_tcp_set_user(c, &s->srv);
	return ep_connected(&s->srv, c);
}

static void
on_data(struct tq_tcp_conn *c, struct rte_mbuf *m)
{
	struct endpoint *e = tq_tcp_user(c);
	uint32_t len = rte_pktmbuf_pkt_len(m);
	uint8_t want[RTE_MBUF_DEFAULT_DATAROOM];

	if (e->rx_got + len > e->rx_total)
		ep_error(e, "%s: %u bytes beyond the %u the peer sends", e->name,
			 e->rx_got + len - e->rx_total, e->rx_total);
	for (const struct rte_mbuf *s = m; s && !e->err[0]; s = s->next) {
		const uint8_t *p = rte_pktmbuf_mtod(s, const uint8_t *);
		uint32_t left = s->data_len;

		while (left && !e->err[0]) {
			uint32_t n = RTE_MIN(left, (uint32_t)sizeof(want));

			fill(want, e->rx_seed, e->rx_got, n);
			if (memcmp(p, want, n)) {
				uint32_t i = 0;

				while (p[i] == want[i])
					i++;
				ep_error(e, "%s: stream byte %u is 0x%02x, the peer sent 0x%02x",
					 e->name, e->rx_got + i, p[i], want[i]);
			}
			e->rx_got += n;
			p += n;
			left -= n;
		}
	}
	if (!e->hold) {
		rte_pktmbuf_free(m);
		tq_tcp_rx_release(c, len);
		return;
	}
	if (e->held_n == e->held_max) {
		e->held_max = e->held_max ? 2 * e->held_max : 256;
		e->held = realloc(e->held, e->held_max * sizeof(*e->held));
		if (!e->held)
			abort();
	}
	e->held[e->held_n++] = m;
	e->held_bytes += len;
}

static void
on_writable(struct tq_tcp_conn *c)
{
	struct endpoint *e = tq_tcp_user(c);

	e->writable_calls++;
	pump(e);
}

static void
on_peer_closed(struct tq_tcp_conn *c)
{
	struct endpoint *e = tq_tcp_user(c);

	e->peer_closed = true;
}

static void
on_closed(struct tq_tcp_conn *c, int err)
{
	struct endpoint *e = tq_tcp_user(c);

	e->closed = true;
	e->closed_calls++;
	e->closed_err = err;
	e->state_at_closed = c->state;
	e->c = NULL;
}

static const struct tq_tcp_app cli_app = {
	.on_connected = cli_connected,
	.on_data = on_data,
	.on_writable = on_writable,
	.on_peer_closed = on_peer_closed,
	.on_closed = on_closed,
};

static const struct tq_tcp_app srv_app = {
	.on_connected = srv_connected,
	.on_data = on_data,
	.on_writable = on_writable,
	.on_peer_closed = on_peer_closed,
	.on_closed = on_closed,
};

/* ---------------------------------------------------------------- running a transfer */

static void __attribute__((format(printf, 2, 3)))
fail_at(int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	CU_assertImplementation(CU_FALSE, (unsigned int)line, msg, __FILE__, "", CU_FALSE);
}
#define FAIL(...) fail_at(__LINE__, __VA_ARGS__)
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail_at(__LINE__, #cond ": " __VA_ARGS__);                                 \
	} while (0)

static void
conf_defaults(struct tq_tcp_conf *cfg)
{
	tq_tcp_conf_defaults(cfg);
	cfg->max_conns = 16;
	/* TIME_WAIT (and the FIN_WAIT_2 timeout) of 2 s of simulated time: longer than an RTO
	 * or two, so that a lost FIN is retransmitted before the peer gives up waiting */
	cfg->msl_ms = 1000;
}

static struct tq_wire_link
link_delay(uint32_t us)
{
	struct tq_wire_link l;

	memset(&l, 0, sizeof(l));
	l.delay_us = us;
	return l;
}

static void
ep_init(struct sim *s, struct endpoint *e, const char *name, uint32_t tx_seed,
	uint32_t rx_seed, uint32_t tx_total, uint32_t rx_total)
{
	free(e->held);
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->sim = s;
	e->tx_seed = tx_seed;
	e->rx_seed = rx_seed;
	e->tx_total = tx_total;
	e->rx_total = rx_total;
}

/*
 * A worker with @cfg, a wire (1 ms each way) and the two endpoints; @c2s and @s2c bytes to
 * transfer. Returns false (the test failed) when the set-up did.
 */
static bool
sim_start(struct sim *s, const struct tq_tcp_conf *cfg, uint32_t c2s, uint32_t s2c,
	  uint64_t seed)
{
	struct tq_wire_env env;
	struct tq_dp_conf conf;
	struct tq_wire_link l = link_delay(1000);

	memset(s, 0, sizeof(*s));
	tq_tcp_cfg = *cfg;
	tq_tcp_nb_listeners = 0;
	memset(tq_tcp_listeners, 0, sizeof(tq_tcp_listeners));
	if (tq_tcp_listen(SERVER_PORT, &srv_app, s)) {
		FAIL("tq_tcp_listen");
		return false;
	}
	memset(&conf, 0, sizeof(conf));
	conf.arp_reachable_s = 86400;
	s->pool_start = rte_mempool_avail_count(pool);
	s->w = tq_worker_create(0, rte_lcore_id(), pool, &conf);
	if (!s->w) {
		FAIL("tq_worker_create: %s", strerror(errno));
		return false;
	}
	tq_dp.nb_workers = 1;
	tq_dp.workers[0] = s->w;
	memset(&env, 0, sizeof(env));
	env.w = s->w;
	env.port = port;
	env.rx_ring = rx_ring;
	env.tx_ring = tx_ring;
	env.pool = pool;
	env.addr = our_ip;
	env.server_port = SERVER_PORT;
	env.seed = seed;
	s->wire = tq_wire_create(&env);
	if (!s->wire) {
		FAIL("tq_wire_create");
		return false;
	}
	tq_wire_set_link(s->wire, TQ_WIRE_CLIENT, &l);
	tq_wire_set_link(s->wire, TQ_WIRE_SERVER, &l);
	ep_init(s, &s->cli, "client", 0xc0ffee ^ (uint32_t)seed, 0x5eed ^ (uint32_t)seed, c2s, s2c);
	ep_init(s, &s->srv, "server", 0x5eed ^ (uint32_t)seed, 0xc0ffee ^ (uint32_t)seed, s2c, c2s);
	s->closer = CLIENT_CLOSES;
	s->wait_time_wait = true;
	return true;
}

static bool
sim_connect(struct sim *s)
{
	struct tq_tcp_conn *c;
	int rc = tq_tcp_connect(s->w, our_ip, SERVER_PORT, &cli_app, &s->cli, &c);

	if (rc) {
		FAIL("tq_tcp_connect: %s", strerror(-rc));
		return false;
	}
	return true;
}

static bool
ready_to_close(const struct endpoint *e)
{
	return e->c && e->connected && !e->close_called && e->tx_queued == e->tx_total &&
	       e->rx_got == e->rx_total && !e->hold;
}

static void
do_close(struct endpoint *e)
{
	e->close_called = true;
	tq_tcp_close(e->c);
}

static bool
sim_step(void *ctx)
{
	struct sim *s = ctx;
	struct endpoint *a = s->closer == SERVER_CLOSES ? &s->srv : &s->cli;
	struct endpoint *p = s->closer == SERVER_CLOSES ? &s->cli : &s->srv;

	if (s->hook)
		s->hook(s);
	if (s->hoard_n) /* the pool is drained: nothing ends before it is given back */
		return false;
	if (s->cli.retry_send)
		pump(&s->cli);
	if (s->srv.retry_send)
		pump(&s->srv);
	if (s->closer == BOTH_CLOSE) {
		if (ready_to_close(&s->cli) && ready_to_close(&s->srv)) {
			do_close(&s->cli); /* the same simulated instant */
			do_close(&s->srv);
		}
	} else {
		if (ready_to_close(a))
			do_close(a);
		if (p->peer_closed && ready_to_close(p))
			do_close(p);
	}
	if (s->cli.err[0] || s->srv.err[0])
		return true;
	if ((s->cli.closed && s->cli.closed_err) || (s->srv.closed && s->srv.closed_err))
		return true;
	return s->cli.closed && s->srv.closed && (!s->wait_time_wait || s->w->tcp->nb_conns == 0);
}

static int
sim_run(struct sim *s, uint64_t limit_ms)
{
	int rc = tq_wire_run(s->wire, sim_step, s, limit_ms);

	if (rc)
		FAIL("%s", tq_wire_error(s->wire));
	return rc;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Data exact both ways, orderly close on both sides in the right sequence, no TCB left. */
static void
check_transfer(struct sim *s)
{
	struct endpoint *a = s->closer == SERVER_CLOSES ? &s->srv : &s->cli;
	struct endpoint *p = s->closer == SERVER_CLOSES ? &s->cli : &s->srv;
	enum tq_wire_side as = s->closer == SERVER_CLOSES ? TQ_WIRE_SERVER : TQ_WIRE_CLIENT;
	char ha[512], hp[512];

	CHECK(!s->cli.err[0], "%s", s->cli.err);
	CHECK(!s->srv.err[0], "%s", s->srv.err);
	CHECK(s->cli.rx_got == s->cli.rx_total, "client got %u of %u bytes", s->cli.rx_got,
	      s->cli.rx_total);
	CHECK(s->srv.rx_got == s->srv.rx_total, "server got %u of %u bytes", s->srv.rx_got,
	      s->srv.rx_total);
	CHECK(s->cli.connected_calls == 1 && s->srv.connected_calls == 1,
	      "on_connected: client %u, server %u", s->cli.connected_calls,
	      s->srv.connected_calls);
	CHECK(s->cli.closed_calls == 1 && s->cli.closed_err == 0,
	      "client on_closed called %u times, err %d", s->cli.closed_calls, s->cli.closed_err);
	CHECK(s->srv.closed_calls == 1 && s->srv.closed_err == 0,
	      "server on_closed called %u times, err %d", s->srv.closed_calls, s->srv.closed_err);
	tq_wire_history_str(s->wire, as, ha, sizeof(ha));
	tq_wire_history_str(s->wire, (enum tq_wire_side)(1 - as), hp, sizeof(hp));
	if (!s->wait_time_wait) /* the active closer is still in TIME_WAIT */
		strcat(ha, " CLOSED");
	if (s->closer == BOTH_CLOSE) {
		CHECK(ends_with(ha, "ESTABLISHED FIN_WAIT_1 CLOSING TIME_WAIT CLOSED"),
		      "client states: %s", ha);
		CHECK(ends_with(hp, "ESTABLISHED FIN_WAIT_1 CLOSING TIME_WAIT CLOSED"),
		      "server states: %s", hp);
		CHECK(a->state_at_closed == TQ_TCP_TIME_WAIT && p->state_at_closed == TQ_TCP_TIME_WAIT,
		      "on_closed in %s and %s", tq_tcp_state_name(a->state_at_closed),
		      tq_tcp_state_name(p->state_at_closed));
	} else {
		CHECK(ends_with(ha, "ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 TIME_WAIT CLOSED") ||
			      ends_with(ha, "ESTABLISHED FIN_WAIT_1 TIME_WAIT CLOSED") ||
			      ends_with(ha, "ESTABLISHED FIN_WAIT_1 CLOSING TIME_WAIT CLOSED"),
		      "active closer (%s) states: %s", a->name, ha);
		CHECK(ends_with(hp, "ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED"),
		      "passive closer (%s) states: %s", p->name, hp);
		CHECK(a->state_at_closed == TQ_TCP_TIME_WAIT, "active closer's on_closed in %s",
		      tq_tcp_state_name(a->state_at_closed));
		CHECK(p->state_at_closed == TQ_TCP_CLOSED, "passive closer's on_closed in %s",
		      tq_tcp_state_name(p->state_at_closed));
	}
	if (s->wait_time_wait)
		CHECK(s->w->tcp->nb_conns == 0, "%u TCBs left", s->w->tcp->nb_conns);
}

/* Free everything; every mbuf must be back in the pool. */
static void
sim_end(struct sim *s)
{
	struct rte_mbuf *m;
	unsigned int avail;

	tq_wire_destroy(s->wire);
	if (s->w) {
		tq_worker_destroy(s->w);
		tq_dp.nb_workers = 0;
		tq_dp.workers[0] = NULL;
	}
	for (unsigned int i = 0; i < s->hoard_n; i++)
		rte_pktmbuf_free(s->hoard[i]);
	free(s->hoard);
	s->cli.c = s->srv.c = NULL;
	release_held(&s->cli);
	release_held(&s->srv);
	free(s->cli.held);
	free(s->srv.held);
	while (rte_ring_dequeue(tx_ring, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	while (rte_ring_dequeue(rx_ring, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	tq_tcp_nb_listeners = 0;
	avail = rte_mempool_avail_count(pool);
	CHECK(avail == s->pool_start, "%d mbufs not back in the pool",
	      (int)s->pool_start - (int)avail);
}

static uint64_t
ctr(const struct sim *s, unsigned int id)
{
	return s->w->ctr[id];
}
#define CTR(s, name) ctr(s, TQ_CTR_##name)

/* Start, connect, run to the end and check the common outcome. Returns the run's rc. */
static int
run_case(struct sim *s, uint64_t limit_ms)
{
	int rc;

	if (!sim_connect(s))
		return -1;
	rc = sim_run(s, limit_ms);
	if (rc == 0)
		check_transfer(s);
	return rc;
}

/* ---------------------------------------------------------------- cases: clean */

static void
test_handshake_only(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	if (sim_start(&s, &cfg, 0, 0, 1) && run_case(&s, 10000) == 0) {
		CHECK(CTR(&s, tcp_active_opens) == 1 && CTR(&s, tcp_passive_opens) == 1, "opens");
		CHECK(CTR(&s, tcp_established) == 2, "%" PRIu64, CTR(&s, tcp_established));
		CHECK(CTR(&s, tcp_retransmits) == 0, "%" PRIu64, CTR(&s, tcp_retransmits));
		CHECK(CTR(&s, tcp_closed) == 2, "%" PRIu64, CTR(&s, tcp_closed));
		/* SYN, SYN-ACK, ACK, FIN, ACK+FIN (or ACK, FIN), ACK */
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->frames <= 4 &&
			      tq_wire_stats(s.wire, TQ_WIRE_SERVER)->frames <= 3,
		      "client sent %" PRIu64 " frames, server %" PRIu64,
		      tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->frames,
		      tq_wire_stats(s.wire, TQ_WIRE_SERVER)->frames);
	}
	sim_end(&s);
}

static void
test_bulk_4mib(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	if (sim_start(&s, &cfg, 4 * MiB, 4 * MiB, 2) && run_case(&s, 60000) == 0) {
		CHECK(CTR(&s, tcp_retransmits) == 0, "%" PRIu64, CTR(&s, tcp_retransmits));
		CHECK(CTR(&s, tcp_payload_rx) == 8ull * MiB, "%" PRIu64, CTR(&s, tcp_payload_rx));
		CHECK(CTR(&s, tcp_out_of_window) == 0, "%" PRIu64, CTR(&s, tcp_out_of_window));
		CHECK(CTR(&s, mbuf_alloc_failed) == 0, "%" PRIu64, CTR(&s, mbuf_alloc_failed));
	}
	sim_end(&s);
}

/* One way, latency mode (no delayed ACKs): the receiver ACKs every second full segment of
 * a burst and what is left at its end, not every segment (nor fewer: the sender's clock). */
static void
test_bulk_one_way_acks(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	cfg.delack_ms = 0;
	if (sim_start(&s, &cfg, 4 * MiB, 0, 3) && run_case(&s, 60000) == 0) {
		const struct tq_wire_stats *cli = tq_wire_stats(s.wire, TQ_WIRE_CLIENT);
		const struct tq_wire_stats *srv = tq_wire_stats(s.wire, TQ_WIRE_SERVER);

		CHECK(srv->frames * 10 <= cli->data_segs * 6 && srv->frames * 4 >= cli->data_segs,
		      "%" PRIu64 " frames from the receiver for %" PRIu64 " data segments",
		      srv->frames, cli->data_segs);
		CHECK(CTR(&s, tcp_retransmits) == 0, "%" PRIu64, CTR(&s, tcp_retransmits));
	}
	sim_end(&s);
}

/* ---------------------------------------------------------------- cases: scripted loss */

static int
drop_rule(struct sim *s, enum tq_wire_side from, uint8_t mask, uint8_t flags, bool data,
	  bool by_byte, uint32_t byte, uint32_t skip, uint32_t count)
{
	struct tq_wire_rule r = {
		.from = from, .flags_mask = mask, .flags = flags, .data_only = data,
		.match_byte = by_byte, .byte = byte, .skip = skip, .count = count,
	};

	return tq_wire_add_rule(s->wire, &r);
}

/* The third data segment the client sends is lost: three duplicate ACKs bring it back. */
static void
test_single_loss_fast_retransmit(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 1 * MiB, 256 * KiB, 3))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, false, 0, 2, 1);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_rule_stats(s.wire, r)->dropped == 1, "rule dropped %u",
		      tq_wire_rule_stats(s.wire, r)->dropped);
		CHECK(CTR(&s, tcp_fast_retransmits) == 1, "%" PRIu64, CTR(&s, tcp_fast_retransmits));
		CHECK(CTR(&s, tcp_rto_expired) == 0, "%" PRIu64, CTR(&s, tcp_rto_expired));
		CHECK(CTR(&s, tcp_retransmits) == 1, "%" PRIu64, CTR(&s, tcp_retransmits));
	}
out:
	sim_end(&s);
}

/* Four segments of one window lost: SACK recovery repairs them all without a timeout. */
static void
test_sack_multiple_losses(void)
{
	static const uint32_t at[] = {300000, 305000, 310000, 318000};
	struct tq_tcp_conf cfg;
	struct sim s;
	int r[4];

	conf_defaults(&cfg);
	cfg.ooo_max_segs = 256; /* the whole window fits out of order: only our four losses */
	if (!sim_start(&s, &cfg, 1 * MiB, 64 * KiB, 4))
		goto out;
	for (int i = 0; i < 4; i++)
		r[i] = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, at[i], 0, 1);
	if (run_case(&s, 60000) == 0) {
		for (int i = 0; i < 4; i++)
			CHECK(tq_wire_rule_stats(s.wire, r[i])->dropped == 1, "loss %d", i);
		CHECK(CTR(&s, tcp_fast_retransmits) == 1, "%" PRIu64, CTR(&s, tcp_fast_retransmits));
		CHECK(CTR(&s, tcp_rto_expired) == 0, "%" PRIu64, CTR(&s, tcp_rto_expired));
		CHECK(CTR(&s, tcp_retransmits) == 4, "%" PRIu64, CTR(&s, tcp_retransmits));
	}
out:
	sim_end(&s);
}

/* Six consecutive segments lost (one wide hole): the whole hole goes out again within
 * an RTT or two of recovery, not one segment per partial ACK. */
static void
test_sack_wide_hole(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	uint64_t first = UINT64_MAX, last = 0;
	int r[6];

	conf_defaults(&cfg);
	cfg.ooo_max_segs = 256;
	if (!sim_start(&s, &cfg, 1 * MiB, 64 * KiB, 14))
		goto out;
	for (int i = 0; i < 6; i++)
		r[i] = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, 500000 + i * MSS_TS, 0, 1);
	if (run_case(&s, 60000) == 0) {
		for (int i = 0; i < 6; i++) {
			const struct tq_wire_rule_stats *rs = tq_wire_rule_stats(s.wire, r[i]);

			CHECK(rs->matched == 2, "segment %d sent %u times", i, rs->matched);
			first = RTE_MIN(first, rs->t_us[1]);
			last = RTE_MAX(last, rs->t_us[1]);
		}
		CHECK(last - first <= 4000, "the hole took %" PRIu64 " us to go out again (RTT 2 ms)",
		      last - first);
		CHECK(CTR(&s, tcp_rto_expired) == 0, "%" PRIu64, CTR(&s, tcp_rto_expired));
		CHECK(CTR(&s, tcp_retransmits) == 6, "%" PRIu64, CTR(&s, tcp_retransmits));
	}
out:
	sim_end(&s);
}

/*
 * The last data segment lost again and again: first a tail loss probe after PTO (2 SRTT +
 * 50 ms: it is alone in flight and the peer might delay its ACK; SRTT is 2 ms), then
 * timeouts, each twice as late as the one
 * before (RFC 6298 5.5), the first rto_min after the probe.
 */
static void
test_lost_retransmission_rto_backoff(void)
{
	const uint32_t n = 1 * MiB;
	struct tq_tcp_conf cfg;
	const struct tq_wire_rule_stats *rs;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, n, 64 * KiB, 5))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, n - 1, 0, 4);
	if (run_case(&s, 60000) == 0) {
		rs = tq_wire_rule_stats(s.wire, r);
		CHECK(rs->matched == 5 && rs->dropped == 4, "sent %u times, dropped %u",
		      rs->matched, rs->dropped);
		CHECK(CTR(&s, tcp_tail_loss_probes) == 1, "%" PRIu64, CTR(&s, tcp_tail_loss_probes));
		CHECK(CTR(&s, tcp_rto_expired) == 3, "%" PRIu64, CTR(&s, tcp_rto_expired));
		if (rs->matched == 5) {
			uint64_t pto = rs->t_us[1] - rs->t_us[0], rto1 = rs->t_us[2] - rs->t_us[1];
			uint64_t rto2 = rs->t_us[3] - rs->t_us[2], rto3 = rs->t_us[4] - rs->t_us[3];

			CHECK(pto >= 54000 && pto <= 56000, "probe after %" PRIu64 " us", pto);
			CHECK(rto1 >= 200000 && rto1 <= 202000, "first RTO after %" PRIu64 " us", rto1);
			CHECK(rto2 + 2000 >= 2 * rto1 && rto2 <= 2 * rto1 + 2000,
			      "RTOs %" PRIu64 " then %" PRIu64 " us: no doubling", rto1, rto2);
			CHECK(rto3 + 2000 >= 2 * rto2 && rto3 <= 2 * rto2 + 2000,
			      "RTOs %" PRIu64 " then %" PRIu64 " us: no doubling", rto2, rto3);
		}
	}
out:
	sim_end(&s);
}

/*
 * RACK (RFC 8985): the last segment but one lost. Only one segment follows it, so one
 * duplicate ACK comes, never three; the SACK of that segment, delivered 2 ms (the RTT)
 * after both were sent, marks the hole lost a reordering window (1 ms) later: the
 * retransmission leaves about 3 ms after the original, well before a probe (10 ms).
 */
static void
test_rack_time_marking(void)
{
	const uint32_t n = 200 * MSS_TS;
	const struct tq_wire_rule_stats *rs;
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, n, 0, 40))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, n - MSS_TS - 1, 0, 1);
	if (run_case(&s, 60000) == 0) {
		rs = tq_wire_rule_stats(s.wire, r);
		CHECK(rs->matched == 2 && rs->dropped == 1, "sent %u times", rs->matched);
		if (rs->matched == 2)
			CHECK(rs->t_us[1] - rs->t_us[0] <= 5000,
			      "resent %" PRIu64 " us after the original", rs->t_us[1] - rs->t_us[0]);
		CHECK(CTR(&s, tcp_rack_retransmits) == 1, "%" PRIu64, CTR(&s, tcp_rack_retransmits));
		CHECK(CTR(&s, tcp_retransmits) == 1, "%" PRIu64, CTR(&s, tcp_retransmits));
		CHECK(CTR(&s, tcp_rto_expired) == 0, "%" PRIu64, CTR(&s, tcp_rto_expired));
	}
out:
	sim_end(&s);
}

/*
 * A segment in mid-transfer lost, and its retransmission lost too: the SACKs of data sent
 * after the retransmission show it lost (RACK), and it goes a third time within a few
 * RTTs, not after the 200 ms RTO.
 */
static void
test_rack_lost_retransmission(void)
{
	const struct tq_wire_rule_stats *rs;
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 2 * MiB, 64 * KiB, 41))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, 500000, 0, 2);
	if (run_case(&s, 60000) == 0) {
		rs = tq_wire_rule_stats(s.wire, r);
		CHECK(rs->matched == 3 && rs->dropped == 2, "sent %u times", rs->matched);
		if (rs->matched == 3)
			CHECK(rs->t_us[2] - rs->t_us[0] <= 20000,
			      "third copy %" PRIu64 " us after the first", rs->t_us[2] - rs->t_us[0]);
		CHECK(CTR(&s, tcp_lost_retransmits) >= 1, "%" PRIu64, CTR(&s, tcp_lost_retransmits));
		CHECK(CTR(&s, tcp_rto_expired) == 0, "%" PRIu64, CTR(&s, tcp_rto_expired));
	}
out:
	sim_end(&s);
}

/*
 * One loss in a full 256 KiB window: everything after it (well over 64 segments, the
 * ooo_max_segs default) waits out of order, as one run, and none is dropped: only the
 * lost segment is sent twice.
 */
static void
test_ooo_beyond_64_segments(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 4 * MiB, 0, 42))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, 3 * MiB, 0, 1);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_rule_stats(s.wire, r)->dropped == 1, "not dropped");
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->max_flight > 100 * MSS_TS,
		      "at most %u in flight", tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->max_flight);
		CHECK(CTR(&s, tcp_ooo_segs) > cfg.ooo_max_segs, "%" PRIu64, CTR(&s, tcp_ooo_segs));
		CHECK(CTR(&s, tcp_ooo_full) == 0, "%" PRIu64, CTR(&s, tcp_ooo_full));
		CHECK(CTR(&s, tcp_retransmits) == 1, "%" PRIu64, CTR(&s, tcp_retransmits));
	}
out:
	sim_end(&s);
}

/*
 * Out-of-order arrays are lent: one loss puts the receiver's TCB on one, and once the hole
 * fills it goes back to the worker's pool (idle connections hold none).
 */
static void
test_ooo_array_lent(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	unsigned int all = 0;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 1 * MiB, 0, 43))
		goto out;
	all = rte_mempool_avail_count(s.w->tcp->ooo_pool);
	r = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, 512 * KiB, 0, 1);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_rule_stats(s.wire, r)->dropped == 1, "not dropped");
		CHECK(CTR(&s, tcp_ooo_segs) > 0, "no out-of-order segment");
		CHECK(rte_mempool_avail_count(s.w->tcp->ooo_pool) == all,
		      "%u of %u arrays back", rte_mempool_avail_count(s.w->tcp->ooo_pool), all);
		CHECK(CTR(&s, tcp_ooo_no_memory) == 0, "%" PRIu64, CTR(&s, tcp_ooo_no_memory));
	}
out:
	sim_end(&s);
}

/*
 * No out-of-order array to be had (the pool emptied here by hand): what arrives beyond a
 * hole is dropped and counted, and the sender's recovery still delivers every byte.
 */
static void
test_ooo_no_array(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	void **taken = NULL;
	unsigned int n = 0;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 256 * KiB, 0, 44))
		goto out;
	n = rte_mempool_avail_count(s.w->tcp->ooo_pool);
	taken = calloc(n, sizeof(*taken));
	CHECK(taken && rte_mempool_get_bulk(s.w->tcp->ooo_pool, taken, n) == 0, "drain %u", n);
	drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, 64 * KiB, 0, 1);
	if (run_case(&s, 120000) == 0) {
		CHECK(CTR(&s, tcp_ooo_no_memory) > 0, "%" PRIu64, CTR(&s, tcp_ooo_no_memory));
		CHECK(CTR(&s, tcp_ooo_segs) == 0, "%" PRIu64, CTR(&s, tcp_ooo_segs));
	}
	if (taken)
		rte_mempool_put_bulk(s.w->tcp->ooo_pool, taken, n);
	free(taken);
out:
	sim_end(&s);
}

/*
 * The last data segment of a transfer lost: a tail loss probe, not a timeout, repairs it.
 * rto_min is 1 s here: tachyon arms the probe only when it comes before the RTO, and for
 * a lone segment in flight the probe waits 2 SRTT + 200 ms (RFC 8985 7.2's WCDelAckT),
 * which with the default rto_min of 200 ms is never the case.
 */
static void
test_tail_loss_probe(void)
{
	const uint32_t n = 700 * MSS_TS;
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	cfg.rto_min_ms = 1000;
	if (!sim_start(&s, &cfg, n, 0, 6))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, 0, 0, true, true, n - 1, 0, 1);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_rule_stats(s.wire, r)->dropped == 1, "tail not dropped");
		CHECK(CTR(&s, tcp_tail_loss_probes) >= 1, "%" PRIu64, CTR(&s, tcp_tail_loss_probes));
		CHECK(CTR(&s, tcp_retransmits) == 1, "%" PRIu64, CTR(&s, tcp_retransmits));
		CHECK(CTR(&s, tcp_rto_expired) == 0, "%" PRIu64, CTR(&s, tcp_rto_expired));
	}
out:
	sim_end(&s);
}

/* The client's SYN is lost: it is sent again after rto_initial_ms (RFC 6298 2.1). */
static void
test_syn_lost(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 64 * KiB, 64 * KiB, 7))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, TQ_TCP_SYN | TQ_TCP_ACK, TQ_TCP_SYN, false, false, 0, 0,
		      1);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_rule_stats(s.wire, r)->matched == 2, "SYN sent %u times",
		      tq_wire_rule_stats(s.wire, r)->matched);
		CHECK(s.cli.connected_us >= cfg.rto_initial_ms * 1000ull &&
			      s.cli.connected_us <= cfg.rto_initial_ms * 1000ull + 10000,
		      "connected after %" PRIu64 " us", s.cli.connected_us);
	}
out:
	sim_end(&s);
}

/* The SYN-ACK is lost: a retransmitted SYN or SYN-ACK completes the handshake. */
static void
test_synack_lost(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 64 * KiB, 64 * KiB, 8))
		goto out;
	r = drop_rule(&s, TQ_WIRE_SERVER, TQ_TCP_SYN | TQ_TCP_ACK, TQ_TCP_SYN | TQ_TCP_ACK, false,
		      false, 0, 0, 1);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_rule_stats(s.wire, r)->dropped == 1, "SYN-ACK not dropped");
		CHECK(tq_wire_rule_stats(s.wire, r)->matched >= 2, "SYN-ACK sent %u times",
		      tq_wire_rule_stats(s.wire, r)->matched);
		CHECK(s.cli.connected_us >= cfg.rto_initial_ms * 1000ull, "connected after %" PRIu64
		      " us", s.cli.connected_us);
	}
out:
	sim_end(&s);
}

/*
 * The handshake's final ACK (which carries the client's first data) is lost: the data
 * that follows completes the server's handshake, the lost segment is repaired.
 */
static void
test_handshake_ack_lost(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 64 * KiB, 64 * KiB, 9))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, TQ_TCP_SYN | TQ_TCP_ACK, TQ_TCP_ACK, false, false, 0, 0,
		      1);
	if (run_case(&s, 60000) == 0)
		CHECK(tq_wire_rule_stats(s.wire, r)->dropped == 1, "ACK not dropped");
out:
	sim_end(&s);
}

/* Same, with nothing for the client to send: the server's SYN-ACK retransmission gets a
 * fresh ACK out of the client. */
static void
test_handshake_ack_lost_no_data(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 0, 64 * KiB, 10))
		goto out;
	r = drop_rule(&s, TQ_WIRE_CLIENT, TQ_TCP_SYN | TQ_TCP_ACK, TQ_TCP_ACK, false, false, 0, 0,
		      1);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_rule_stats(s.wire, r)->dropped == 1, "ACK not dropped");
		CHECK(s.srv.connected_us >= cfg.rto_initial_ms * 1000ull,
		      "server connected after %" PRIu64 " us", s.srv.connected_us);
	}
out:
	sim_end(&s);
}

static void
fin_lost(enum tq_wire_side who)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	int r;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 128 * KiB, 128 * KiB, 11 + who))
		goto out;
	r = drop_rule(&s, who, TQ_TCP_FIN, TQ_TCP_FIN, false, false, 0, 0, 1);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_rule_stats(s.wire, r)->dropped == 1, "FIN not dropped");
		CHECK(tq_wire_rule_stats(s.wire, r)->matched >= 2, "FIN sent %u times",
		      tq_wire_rule_stats(s.wire, r)->matched);
	}
out:
	sim_end(&s);
}

static void
test_fin_lost_active(void)
{
	fin_lost(TQ_WIRE_CLIENT);
}

static void
test_fin_lost_passive(void)
{
	fin_lost(TQ_WIRE_SERVER);
}

/* ---------------------------------------------------------------- cases: random faults */

static void
impaired(uint64_t seed, const struct tq_wire_link *l, uint32_t bytes, uint64_t limit_ms,
	 struct sim *s)
{
	struct tq_tcp_conf cfg;

	conf_defaults(&cfg);
	if (!sim_start(s, &cfg, bytes, bytes, seed))
		return;
	tq_wire_set_link(s->wire, TQ_WIRE_CLIENT, l);
	tq_wire_set_link(s->wire, TQ_WIRE_SERVER, l);
	run_case(s, limit_ms);
}

static void
test_random_loss_5pct(void)
{
	struct tq_wire_link l = link_delay(1000);
	struct sim s;

	l.drop_ppm = 50000;
	impaired(20, &l, 1 * MiB, 300000, &s);
	if (s.wire)
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->dropped > 0 &&
			      tq_wire_stats(s.wire, TQ_WIRE_SERVER)->dropped > 0,
		      "nothing dropped");
	sim_end(&s);
}

static void
test_reorder_25pct(void)
{
	struct tq_wire_link l = link_delay(1000);
	struct sim s;

	l.reorder_ppm = 250000;
	impaired(21, &l, 1 * MiB, 120000, &s);
	if (s.wire)
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->reordered > 100, "%" PRIu64,
		      tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->reordered);
	sim_end(&s);
}

static void
test_duplicate_5pct(void)
{
	struct tq_wire_link l = link_delay(1000);
	struct sim s;

	l.dup_ppm = 50000;
	impaired(22, &l, 1 * MiB, 60000, &s);
	if (s.wire)
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->duplicated > 10, "%" PRIu64,
		      tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->duplicated);
	sim_end(&s);
}

/* Every corrupted segment is caught by the TCP checksum and counted. */
static void
test_corrupt_1pct(void)
{
	struct tq_wire_link l = link_delay(1000);
	struct sim s;

	l.corrupt_ppm = 10000;
	impaired(23, &l, 1 * MiB, 120000, &s);
	if (s.wire) {
		uint64_t n = tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->corrupted +
			     tq_wire_stats(s.wire, TQ_WIRE_SERVER)->corrupted;

		CHECK(n > 5, "%" PRIu64 " corrupted", n);
		CHECK(CTR(&s, tcp_bad_checksum) == n, "%" PRIu64 " bad checksums, %" PRIu64
		      " corrupted", CTR(&s, tcp_bad_checksum), n);
	}
	sim_end(&s);
}

/* Every truncated frame is counted as a drop somewhere (unless what is left is a valid,
 * shorter segment), and nothing crashes. */
static void
test_truncate_1pct(void)
{
	struct tq_wire_link l = link_delay(1000);
	struct sim s;

	l.truncate_ppm = 10000;
	impaired(24, &l, 1 * MiB, 120000, &s);
	if (s.wire) {
		const struct tq_wire_stats *a = tq_wire_stats(s.wire, TQ_WIRE_CLIENT);
		const struct tq_wire_stats *b = tq_wire_stats(s.wire, TQ_WIRE_SERVER);
		uint64_t n = a->truncated + b->truncated - a->truncated_valid - b->truncated_valid;
		uint64_t drops = CTR(&s, eth_truncated) + CTR(&s, ipv4_truncated) +
				 CTR(&s, ipv4_bad_total_len) + CTR(&s, tcp_truncated) +
				 CTR(&s, tcp_bad_checksum) + CTR(&s, tcp_bad_offset);

		CHECK(a->truncated + b->truncated > 5, "%" PRIu64 " truncated",
		      a->truncated + b->truncated);
		CHECK(drops == n, "%" PRIu64 " counted drops for %" PRIu64 " truncated frames",
		      drops, n);
	}
	sim_end(&s);
}

static void
test_delay_20ms_jitter(void)
{
	struct tq_wire_link l = link_delay(20000);
	struct sim s;

	l.jitter_us = 5000;
	impaired(25, &l, 1 * MiB, 120000, &s);
	sim_end(&s);
}

/* The server's window rewritten to one segment: the client never has more in flight. */
static void
test_window_clamp_1seg(void)
{
	struct tq_wire_link l = link_delay(1000);
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 256 * KiB, 16 * KiB, 26))
		goto out;
	l.clamp_bytes = MSS_TS;
	tq_wire_set_link(s.wire, TQ_WIRE_SERVER, &l);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_SERVER)->clamped > 100, "%" PRIu64,
		      tq_wire_stats(s.wire, TQ_WIRE_SERVER)->clamped);
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->max_flight <= MSS_TS + 1,
		      "client had %u bytes in flight", tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->max_flight);
	}
out:
	sim_end(&s);
}

/* The server's application holds what it gets for 3 s: the window closes, the client
 * probes it, and resumes when the application releases. */
static void
zero_window_hook(struct sim *s)
{
	uint64_t now = tq_wire_now_us(s->wire);

	/* closed: less than a segment left, which the scaled window field shows as 0 */
	if (s->phase == 0 && s->srv.c && tq_tcp_rcv_window(s->srv.c) < MSS_TS) {
		s->phase = 1;
		s->t_mark = now;
		tq_wire_wake_at(s->wire, now + 3000000);
	} else if (s->phase == 1 && now >= s->t_mark + 3000000) {
		s->phase = 2;
		s->ctr_mark[0] = CTR(s, tcp_zero_window_probes);
		s->srv.hold = false;
		release_held(&s->srv);
	}
}

static void
test_zero_window(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	cfg.rcv_buf = 64 * KiB;
	if (!sim_start(&s, &cfg, 512 * KiB, 16 * KiB, 27))
		goto out;
	s.srv.hold = true;
	s.hook = zero_window_hook;
	if (run_case(&s, 60000) == 0) {
		CHECK(s.phase == 2, "the window never closed");
		CHECK(s.ctr_mark[0] >= 3, "%" PRIu64 " zero-window probes in 3 s", s.ctr_mark[0]);
	}
out:
	sim_end(&s);
}

/* A 4 MiB receive buffer over 20 ms of RTT: windows beyond 64 KiB, scaled. */
static void
test_window_scaling(void)
{
	struct tq_tcp_conf cfg;
	struct tq_wire_link l = link_delay(10000);
	struct sim s;

	conf_defaults(&cfg);
	cfg.rcv_buf = 4 * MiB;
	cfg.snd_buf = 4 * MiB;
	if (!sim_start(&s, &cfg, 16 * MiB, 64 * KiB, 28))
		goto out;
	tq_wire_set_link(s.wire, TQ_WIRE_CLIENT, &l);
	tq_wire_set_link(s.wire, TQ_WIRE_SERVER, &l);
	if (run_case(&s, 60000) == 0) {
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_SERVER)->max_window > 2 * MiB,
		      "server advertised at most %u", tq_wire_stats(s.wire, TQ_WIRE_SERVER)->max_window);
		CHECK(tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->max_flight > 1 * MiB,
		      "client had at most %u in flight",
		      tq_wire_stats(s.wire, TQ_WIRE_CLIENT)->max_flight);
		CHECK(CTR(&s, tcp_retransmits) == 0, "%" PRIu64, CTR(&s, tcp_retransmits));
	}
out:
	sim_end(&s);
}

/* ---------------------------------------------------------------- cases: closing, attacks */

static void
test_simultaneous_close(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 256 * KiB, 256 * KiB, 30))
		goto out;
	s.closer = BOTH_CLOSE;
	run_case(&s, 60000);
out:
	sim_end(&s);
}

/* A forged RST inside the server's window but not at RCV.NXT: a challenge ACK, and the
 * connection goes on (RFC 5961 3.2). */
static void
rst_hook(struct sim *s)
{
	if (s->phase == 0 && s->srv.c && s->srv.rx_got >= 100000 &&
	    s->srv.c->state == TQ_TCP_ESTABLISHED) {
		const struct tq_tcp_conn *c = s->srv.c;

		s->phase = 1;
		s->ctr_mark[0] = CTR(s, tcp_challenge_acks);
		tq_wire_inject(s->wire, TQ_WIRE_CLIENT, TQ_TCP_RST, c->rcv_nxt + 1000, 0, 0);
	}
}

static void
test_rst_in_window_challenge_ack(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 512 * KiB, 128 * KiB, 31))
		goto out;
	s.hook = rst_hook;
	if (run_case(&s, 60000) == 0) {
		CHECK(s.phase == 1, "no RST injected");
		CHECK(CTR(&s, tcp_rst_in_window) == 1, "%" PRIu64, CTR(&s, tcp_rst_in_window));
		CHECK(CTR(&s, tcp_challenge_acks) == s.ctr_mark[0] + 1, "%" PRIu64 " challenge ACKs",
		      CTR(&s, tcp_challenge_acks) - s.ctr_mark[0]);
		CHECK(CTR(&s, tcp_resets_rx) == 0, "%" PRIu64, CTR(&s, tcp_resets_rx));
	}
out:
	sim_end(&s);
}

/* The server closes first and sits in TIME_WAIT; the client connects again from the same
 * port: the SYN recycles the TIME_WAIT TCB (its timestamp is newer) and the second
 * connection transfers its data like the first. */
static void
test_time_wait_reuse(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	uint16_t cport;
	char h[512];

	conf_defaults(&cfg);
	cfg.msl_ms = 5000; /* still in TIME_WAIT when the second SYN comes */
	if (!sim_start(&s, &cfg, 128 * KiB, 128 * KiB, 32))
		goto out;
	s.closer = SERVER_CLOSES;
	s.wait_time_wait = false;
	if (run_case(&s, 60000) != 0)
		goto out;
	cport = tq_wire_client_port(s.wire);
	CHECK(tq_wire_conn(s.wire, TQ_WIRE_SERVER) &&
		      tq_wire_conn(s.wire, TQ_WIRE_SERVER)->state == TQ_TCP_TIME_WAIT,
	      "server not in TIME_WAIT");
	/* the second connection */
	ep_init(&s, &s.cli, "client", 0xabcdef, 0x123456, 64 * KiB, 200 * KiB);
	ep_init(&s, &s.srv, "server", 0x123456, 0xabcdef, 200 * KiB, 64 * KiB);
	s.wait_time_wait = true;
	tq_wire_history_reset(s.wire);
	s.w->tcp->next_ephemeral = (uint16_t)(cport - 1);
	if (run_case(&s, 60000) != 0)
		goto out;
	CHECK(tq_wire_client_port(s.wire) == cport, "client port %u, then %u", cport,
	      tq_wire_client_port(s.wire));
	CHECK(CTR(&s, tcp_time_wait_reused) == 1, "%" PRIu64, CTR(&s, tcp_time_wait_reused));
	CHECK(strncmp(tq_wire_history_str(s.wire, TQ_WIRE_SERVER, h, sizeof(h)),
		      "TIME_WAIT SYN_RECEIVED ESTABLISHED", 34) == 0,
	      "server states: %s", h);
out:
	sim_end(&s);
}

static bool
wait_until_mark(void *ctx)
{
	struct sim *s = ctx;

	return tq_wire_now_us(s->wire) >= s->t_mark;
}

/*
 * Outgoing connects and TIME_WAIT (as Linux's tcp_tw_reuse): the client closed first and
 * holds its 4-tuple in TIME_WAIT (2 MSL = 10 s). A connect whose port cursor lands on it
 * right away takes the next port; after 1 s of silence, timestamps tell the incarnations
 * apart and the connect takes the 4-tuple over, counted.
 */
static void
test_connect_reuses_time_wait(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;
	uint16_t cport;

	conf_defaults(&cfg);
	cfg.msl_ms = 5000;
	if (!sim_start(&s, &cfg, 64 * KiB, 64 * KiB, 43))
		goto out;
	s.wait_time_wait = false;
	if (run_case(&s, 60000) != 0)
		goto out;
	cport = tq_wire_client_port(s.wire);
	CHECK(tq_wire_conn(s.wire, TQ_WIRE_CLIENT) &&
		      tq_wire_conn(s.wire, TQ_WIRE_CLIENT)->state == TQ_TCP_TIME_WAIT,
	      "client not in TIME_WAIT");
	/* too soon: another port */
	ep_init(&s, &s.cli, "client", 0xabcdef, 0x123456, 32 * KiB, 32 * KiB);
	ep_init(&s, &s.srv, "server", 0x123456, 0xabcdef, 32 * KiB, 32 * KiB);
	tq_wire_history_reset(s.wire);
	s.w->tcp->next_ephemeral = (uint16_t)(cport - 1);
	if (run_case(&s, 60000) != 0)
		goto out;
	CHECK(tq_wire_client_port(s.wire) != cport, "TIME_WAIT port %u taken at once", cport);
	CHECK(CTR(&s, tcp_time_wait_reused_connect) == 0, "%" PRIu64,
	      CTR(&s, tcp_time_wait_reused_connect));
	/* 1.1 s later: the same 4-tuple */
	s.t_mark = tq_wire_now_us(s.wire) + 1100000;
	tq_wire_wake_at(s.wire, s.t_mark);
	if (tq_wire_run(s.wire, wait_until_mark, &s, 5000)) {
		FAIL("%s", tq_wire_error(s.wire));
		goto out;
	}
	ep_init(&s, &s.cli, "client", 0xfedcba, 0x654321, 32 * KiB, 32 * KiB);
	ep_init(&s, &s.srv, "server", 0x654321, 0xfedcba, 32 * KiB, 32 * KiB);
	tq_wire_history_reset(s.wire);
	s.w->tcp->next_ephemeral = (uint16_t)(cport - 1);
	s.wait_time_wait = true;
	if (run_case(&s, 60000) != 0)
		goto out;
	CHECK(tq_wire_client_port(s.wire) == cport, "client port %u, then %u", cport,
	      tq_wire_client_port(s.wire));
	CHECK(CTR(&s, tcp_time_wait_reused_connect) == 1, "%" PRIu64,
	      CTR(&s, tcp_time_wait_reused_connect));
out:
	sim_end(&s);
}

/* No backlog: the connection comes from a SYN cookie, data still exact. */
static void
test_syn_cookies(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	cfg.syn_backlog = 0;
	if (!sim_start(&s, &cfg, 512 * KiB, 512 * KiB, 33))
		goto out;
	if (run_case(&s, 60000) == 0) {
		CHECK(s.srv.from_cookie, "the server's connection is not from a cookie");
		CHECK(CTR(&s, tcp_syn_cookies_sent) == 1, "%" PRIu64, CTR(&s, tcp_syn_cookies_sent));
		CHECK(CTR(&s, tcp_syn_cookies_ok) == 1, "%" PRIu64, CTR(&s, tcp_syn_cookies_ok));
	}
out:
	sim_end(&s);
}

/*
 * Same, and the cookie's ACK (with the client's first data) is lost. The segments that
 * follow carry the cookie too, but not the peer's ISN + 1: they must not open the
 * connection (its stream would start at the wrong byte). They get RST, as in Linux: the
 * client sees the connection reset, and no byte is ever delivered at a wrong offset.
 */
static void
test_syn_cookies_ack_lost(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	cfg.syn_backlog = 0;
	if (!sim_start(&s, &cfg, 256 * KiB, 256 * KiB, 34))
		goto out;
	drop_rule(&s, TQ_WIRE_CLIENT, TQ_TCP_SYN | TQ_TCP_ACK, TQ_TCP_ACK, false, false, 0, 0, 1);
	if (!sim_connect(&s) || sim_run(&s, 60000) != 0)
		goto out;
	CHECK(!s.cli.err[0] && !s.srv.err[0], "%s%s", s.cli.err, s.srv.err);
	CHECK(s.srv.connected_calls == 0 && s.srv.rx_got == 0,
	      "the server accepted a connection from a later segment's cookie");
	CHECK(CTR(&s, tcp_syn_cookie_bad) >= 1, "%" PRIu64, CTR(&s, tcp_syn_cookie_bad));
	CHECK(s.cli.closed && s.cli.closed_err == -ECONNRESET, "client on_closed(%d)",
	      s.cli.closed_err);
out:
	sim_end(&s);
}

/* Mid-transfer the pool is drained empty for 2 s: the shortage is counted (memory
 * pressure holds the applications back; what was in flight fails to allocate), time goes
 * on, and once the mbufs are back the applications are woken and the transfer completes. */
#define HOARD_LEAVE 0

static void
hoard_hook(struct sim *s)
{
	uint64_t now = tq_wire_now_us(s->wire);

	if (s->phase == 0 && s->srv.rx_got >= 1 * MiB && s->cli.rx_got >= 1 * MiB) {
		unsigned int n = rte_mempool_avail_count(pool);

		s->phase = 1;
		s->t_mark = now;
		s->ctr_mark[0] = CTR(s, mbuf_alloc_failed);
		s->ctr_mark[4] = CTR(s, tcp_mem_pressure);
		s->hoard = malloc(n * sizeof(*s->hoard));
		if (!s->hoard)
			abort();
		while (rte_mempool_avail_count(pool) > HOARD_LEAVE) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

			if (!m)
				break;
			s->hoard[s->hoard_n++] = m;
		}
		tq_wire_wake_at(s->wire, now + 2000000);
	} else if (s->phase == 1 && now >= s->t_mark + 2000000) {
		s->phase = 2;
		s->ctr_mark[1] = CTR(s, mbuf_alloc_failed);
		s->ctr_mark[2] = tq_wire_stats(s->wire, TQ_WIRE_CLIENT)->rx_nombuf +
				 tq_wire_stats(s->wire, TQ_WIRE_SERVER)->rx_nombuf;
		s->ctr_mark[3] = s->cli.c && s->srv.c;
		s->ctr_mark[5] = CTR(s, tcp_mem_pressure);
		s->t_mark = s->srv.rx_got; /* progress while starved, for the message */
		for (unsigned int i = 0; i < s->hoard_n; i++)
			rte_pktmbuf_free(s->hoard[i]);
		s->hoard_n = 0;
	}
}

static void
test_mbuf_exhaustion(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	if (!sim_start(&s, &cfg, 4 * MiB, 4 * MiB, 35))
		goto out;
	s.hook = hoard_hook;
	if (run_case(&s, 120000) == 0) {
		CHECK(s.phase == 2, "phase %d", s.phase);
		/* the shortage is noticed and counted: the applications held back (memory
		 * pressure) or, for what was already in flight, allocations that failed */
		CHECK(s.ctr_mark[5] > s.ctr_mark[4] ||
			      (s.ctr_mark[1] > s.ctr_mark[0] && s.ctr_mark[2] > 0),
		      "while the pool was empty: memory pressure %" PRIu64 ", allocation "
		      "failures in the stack %" PRIu64 ", wire RX %" PRIu64,
		      s.ctr_mark[5] - s.ctr_mark[4], s.ctr_mark[1] - s.ctr_mark[0], s.ctr_mark[2]);
		CHECK(s.ctr_mark[3], "a connection died while the pool was empty");
	}
out:
	sim_end(&s);
}

/* Send buffers far larger than the mbuf pool (the bench's 1,000 bulk connections, in
 * one): queued data must not take the mbufs that RX and ACKs need. Applications get no
 * send space while the pool is under a quarter free and send queues hold half of it, are
 * woken when it recovers, and the transfer completes (tq_tcpbench's 1,000 bulk
 * connections froze the stack that way). */
static void
test_send_queues_beyond_pool(void)
{
	struct tq_tcp_conf cfg;
	struct sim s;

	conf_defaults(&cfg);
	cfg.snd_buf = 64 * MiB;
	if (!sim_start(&s, &cfg, 8 * MiB, 8 * MiB, 36))
		goto out;
	if (run_case(&s, 120000) == 0)
		CHECK(CTR(&s, tcp_mem_pressure) > 0, "the pool never ran low: %" PRIu64,
		      CTR(&s, tcp_mem_pressure));
out:
	sim_end(&s);
}

/* ---------------------------------------------------------------- main */

static int
setup_port(void)
{
	struct tq_port_conf conf[TQ_MAX_PORTS];
	struct rte_mempool *pools[1];
	int ret;

	pool = rte_pktmbuf_pool_create("tq_wire_pool", POOL_SIZE, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	/* the TX ring takes a whole window sent at one instant (4 MiB / 1448 B segments) */
	rx_ring = rte_ring_create("tq_wire_rx", 1024, (int)rte_socket_id(), 0);
	tx_ring = rte_ring_create("tq_wire_tx", 16384, (int)rte_socket_id(), 0);
	if (!pool || !rx_ring || !tx_ring)
		return -1;
	ret = rte_eth_from_rings("net_ring_tq_wire", &rx_ring, 1, &tx_ring, 1, rte_socket_id());
	if (ret < 0)
		return ret;
	port = (uint16_t)ret;
	our_ip = inet_addr(OUR_IP);
	memset(conf, 0, sizeof(conf));
	conf[port].ipv4 = our_ip;
	conf[port].prefix_len = 24;
	pools[0] = pool;
	ret = tq_port_setup_all(1, pools, conf, 64, 64);
	if (ret)
		return ret;
	if (!rte_is_unicast_ether_addr(&tq_ports[port].mac) ||
	    rte_is_zero_ether_addr(&tq_ports[port].mac)) {
		static const struct rte_ether_addr own = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

		tq_ports[port].mac = own;
	}
	return 0;
}

/* Register the cases of @arr whose name is in argv (all when argv names none). */
static int
add_suite(const char *name, const struct tq_test_case *arr, size_t n, int argc, char **argv)
{
	struct tq_test_case pick[64];
	size_t k = 0;

	for (size_t i = 0; i < n && k < RTE_DIM(pick); i++) {
		bool want = argc <= 1;

		for (int j = 1; j < argc && !want; j++)
			want = strcmp(argv[j], arr[i].name) == 0;
		if (want)
			pick[k++] = arr[i];
	}
	return k ? tq_test_add_suite(name, pick, k) : CUE_SUCCESS;
}
#define ADD_SUITE(name, arr) add_suite(name, arr, RTE_DIM(arr), argc, argv)

int
main(int argc, char **argv)
{
	static const struct tq_test_case clean[] = {
		TQ_TEST(test_handshake_only),
		TQ_TEST(test_bulk_4mib),
		TQ_TEST(test_bulk_one_way_acks),
	};
	static const struct tq_test_case loss[] = {
		TQ_TEST(test_single_loss_fast_retransmit),
		TQ_TEST(test_sack_multiple_losses),
		TQ_TEST(test_sack_wide_hole),
		TQ_TEST(test_lost_retransmission_rto_backoff),
		TQ_TEST(test_tail_loss_probe),
		TQ_TEST(test_rack_time_marking),
		TQ_TEST(test_rack_lost_retransmission),
		TQ_TEST(test_ooo_beyond_64_segments),
		TQ_TEST(test_ooo_array_lent),
		TQ_TEST(test_ooo_no_array),
		TQ_TEST(test_syn_lost),
		TQ_TEST(test_synack_lost),
		TQ_TEST(test_handshake_ack_lost),
		TQ_TEST(test_handshake_ack_lost_no_data),
		TQ_TEST(test_fin_lost_active),
		TQ_TEST(test_fin_lost_passive),
	};
	static const struct tq_test_case faults[] = {
		TQ_TEST(test_random_loss_5pct),
		TQ_TEST(test_reorder_25pct),
		TQ_TEST(test_duplicate_5pct),
		TQ_TEST(test_corrupt_1pct),
		TQ_TEST(test_truncate_1pct),
		TQ_TEST(test_delay_20ms_jitter),
		TQ_TEST(test_window_clamp_1seg),
		TQ_TEST(test_zero_window),
		TQ_TEST(test_window_scaling),
	};
	static const struct tq_test_case lifecycle[] = {
		TQ_TEST(test_simultaneous_close),
		TQ_TEST(test_rst_in_window_challenge_ack),
		TQ_TEST(test_time_wait_reuse),
		TQ_TEST(test_connect_reuses_time_wait),
		TQ_TEST(test_syn_cookies),
		TQ_TEST(test_syn_cookies_ack_lost),
		TQ_TEST(test_mbuf_exhaustion),
		TQ_TEST(test_send_queues_beyond_pool),
	};
	int rc;

	if (tq_test_eal_init() < 0 || setup_port() < 0) {
		fprintf(stderr, "test_tcp_wire: EAL or ring port setup failed\n");
		return EXIT_FAILURE;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return EXIT_FAILURE;
	if (ADD_SUITE("tcp_wire_clean", clean) != CUE_SUCCESS ||
	    ADD_SUITE("tcp_wire_loss", loss) != CUE_SUCCESS ||
	    ADD_SUITE("tcp_wire_faults", faults) != CUE_SUCCESS ||
	    ADD_SUITE("tcp_wire_lifecycle", lifecycle) != CUE_SUCCESS)
		return EXIT_FAILURE;
	rc = tq_test_run();
	tq_port_close_all();
	rte_ring_free(rx_ring);
	rte_ring_free(tx_ring);
	rte_mempool_free(pool);
	rte_eal_cleanup();
	return rc;
}
