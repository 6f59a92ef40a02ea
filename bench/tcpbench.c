/*
 * tq_tcpbench: a DPDK load generator that drives tachyon's own TCP stack in client mode
 * (active opens) against a tachyond over a net_memif pair (or any port).
 *
 *   tq_tcpbench [EAL options] -- [tachyond options: --ipv4, --set, -c, --idle] -- [bench]
 *
 * Bench options:
 *   --mode bulk|rr|cps   bulk: push as fast as the window allows (goodput);
 *                        rr: request/response of --size bytes, one outstanding per
 *                        connection (transactions/s, latency percentiles);
 *                        cps: connect, half-close, wait for the close (connections/s)
 *   --dst A.B.C.D        server address (required)
 *   --port N             server TCP port (default: bulk 9 discard, rr 7 echo, cps 9)
 *   --conns N            connections (bulk, rr) or concurrent opens (cps); default 1
 *   --size N             rr: request = response bytes (default 64); bulk: bytes per mbuf
 *                        (default 1448, one segment with timestamps at MSS 1460)
 *   --duration S         measured seconds (default 5)
 *   --warmup S           seconds before the measurement starts (default 1)
 *   --drain S            seconds allowed to finish in-flight work and close (default 10)
 *   --linger             after the report, keep the memif link up with the worker
 *                        stopped until SIGTERM (at most 120 s): the server can then be
 *                        stopped first, so that no peer disconnects under its polling
 *                        worker (DPDK 22.11's memif unmaps the rings from its interrupt
 *                        thread while a worker may be inside a burst: a SIGSEGV)
 *
 * One worker lcore besides the main one: the worker runs the normal poll loop
 * (tq_worker_poll_once) with the bench application on the TCP API in the same loop; the
 * main lcore only waits. Results: a human summary, then one line
 *   RESULT mode=... key=value ...
 * for scripts. Exit status 0 when every count adds up (no connection error, every request
 * answered in full and verified, every byte sent acknowledged), 1 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <urcu/urcu-qsbr.h>

#include "control/tq_config.h"
#include "control/tq_telemetry.h"
#include "dataplane/net/tq_tcp.h"
#include "dataplane/net/tq_tcp_var.h"
#include "dataplane/tq_worker.h"
#include "tq_hist.h"

enum mode { MODE_BULK, MODE_RR, MODE_CPS };
static const char *const mode_names[] = {"bulk", "rr", "cps"};

enum phase { PH_PRIME, PH_OPEN, PH_RUN, PH_DRAIN, PH_DONE };

enum cstate { CS_IDLE, CS_CONNECTING, CS_OPEN, CS_CLOSING };

/* the latency histogram (tq_hist.h) is shared with the other bench */

/* ---- the bench ---- */

struct bconn {
	struct tq_tcp_conn *c;
	struct bench *b;
	uint32_t id;
	uint8_t state;
	bool outstanding;   /* rr: a request waits for its response */
	bool want_close;    /* rr: close once the outstanding response is in */
	uint64_t sent;      /* payload bytes handed to tq_tcp_send */
	uint64_t rcvd;      /* payload bytes received */
	uint64_t req_seq;   /* rr: requests sent on this connection */
	uint32_t resp_got;  /* rr: bytes of the current response */
	uint64_t t_req;     /* rr: TSC when the request was sent; cps: when connect was called */
};

struct bench {
	/* options */
	enum mode mode;
	uint32_t dst;       /* network order */
	uint16_t dport;
	uint32_t nconns;
	uint32_t size;
	double duration, warmup, drain;

	/* run */
	struct tq_worker *w;
	struct bconn *conns;
	enum phase phase;
	uint32_t nb_open;   /* connections currently open or opening */
	uint32_t *pending;  /* cps: slots waiting for a new connect (stack) */
	uint32_t npending;
	uint64_t hz;
	uint64_t t_prime_deadline, t_measure, t_end, t_drain_deadline;
	bool measuring, stopping;

	/* results */
	uint64_t connects, connect_fail, conn_errors, established, closed_ok;
	uint64_t connect_busy;  /* tq_tcp_connect refused: no TCB or port free (TIME_WAIT) */
	uint64_t bytes_sent, bytes_acked, bytes_rcvd;
	uint64_t acked_at_measure, acked_at_end; /* bulk: snapshots */
	uint64_t requests, responses, verify_errors, short_responses;
	uint64_t window_ops;    /* rr: responses, cps: connections closed, in the window */
	uint64_t mbuf_fail;
	uint64_t t_measure_real, t_end_real;
	uint64_t last_err;
	struct hist lat;        /* rr: request→response; cps: connect→established */
	bool linger;            /* --linger */
};

static struct bench B;
static volatile sig_atomic_t quit_signal;
static volatile bool bench_finished; /* dp: wo, main: ro; the worker left its loop */

static void
on_signal(int sig)
{
	quit_signal = sig;
	tq_dp.stop = true;
}

static inline uint8_t
pattern(const struct bconn *bc, uint64_t seq, uint32_t off)
{
	return (uint8_t)(seq * 131 + off * 7 + bc->id);
}

/* Bytes queued in @c's send queue (unsent + unacknowledged). */
static inline uint32_t
queued(const struct tq_tcp_conn *c)
{
	return tq_tcp_send_queued(c);
}

static void conn_start(struct bench *b, struct bconn *bc);

/* ---- bulk ---- */

static void
bulk_fill(struct bconn *bc)
{
	struct bench *b = bc->b;
	struct rte_mbuf *ms[32];
	uint32_t chunk = b->size;

	if (bc->state != CS_OPEN || b->stopping)
		return;
	for (;;) {
		uint32_t space = tq_tcp_send_space(bc->c), n = space / chunk;

		if (n == 0) {
			tq_tcp_want_writable(bc->c);
			return;
		}
		n = RTE_MIN(n, (uint32_t)RTE_DIM(ms));
		if (rte_pktmbuf_alloc_bulk(b->w->pool, ms, n)) {
			b->mbuf_fail++;
			return; /* try again on the next loop */
		}
		for (uint32_t i = 0; i < n; i++) {
			ms[i]->data_len = (uint16_t)chunk;
			ms[i]->pkt_len = chunk;
			ms[i]->next = i + 1 < n ? ms[i + 1] : NULL;
		}
		ms[0]->nb_segs = (uint16_t)n;
		ms[0]->pkt_len = n * chunk;
		if (tq_tcp_send(bc->c, ms[0]) != 0) {
			rte_pktmbuf_free(ms[0]);
			return;
		}
		bc->sent += (uint64_t)n * chunk;
		b->bytes_sent += (uint64_t)n * chunk;
	}
}

static uint64_t
bulk_acked_now(struct bench *b)
{
	uint64_t sum = b->bytes_acked; /* connections already closed */

	for (uint32_t i = 0; i < b->nconns; i++) {
		struct bconn *bc = &b->conns[i];

		if (bc->state == CS_OPEN || bc->state == CS_CLOSING)
			sum += bc->sent - queued(bc->c);
	}
	return sum;
}

/* ---- rr ---- */

static int
rr_send(struct bconn *bc)
{
	struct bench *b = bc->b;
	struct rte_mbuf *head = NULL;
	uint32_t left = b->size, off = 0;

	while (left) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(b->w->pool);
		uint32_t take;
		uint8_t *p;

		if (!m) {
			b->mbuf_fail++;
			rte_pktmbuf_free(head);
			return -ENOMEM;
		}
		take = RTE_MIN(left, (uint32_t)rte_pktmbuf_tailroom(m));
		p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)take);
		for (uint32_t i = 0; i < take; i++)
			p[i] = pattern(bc, bc->req_seq, off + i);
		if (head && rte_pktmbuf_chain(head, m)) {
			rte_pktmbuf_free(m);
			rte_pktmbuf_free(head);
			return -EOVERFLOW;
		}
		if (!head)
			head = m;
		off += take;
		left -= take;
	}
	bc->t_req = rte_rdtsc();
	if (tq_tcp_send(bc->c, head) != 0) {
		rte_pktmbuf_free(head);
		return -ENOBUFS;
	}
	bc->req_seq++; /* the response is checked against pattern(req_seq - 1) */
	bc->outstanding = true;
	bc->resp_got = 0;
	bc->sent += b->size;
	b->bytes_sent += b->size;
	b->requests++;
	return 0;
}

static void
rr_next_or_close(struct bconn *bc)
{
	struct bench *b = bc->b;

	if (b->stopping || bc->want_close) {
		bc->state = CS_CLOSING;
		tq_tcp_shutdown(bc->c);
		return;
	}
	if (rr_send(bc))
		tq_tcp_abort(bc->c); /* counted as an error by on_closed */
}

/* ---- callbacks ---- */

static int
on_connected(struct tq_tcp_conn *c)
{
	struct bconn *bc = tq_tcp_user(c);
	struct bench *b = bc->b;

	bc->state = CS_OPEN;
	b->established++;
	switch (b->mode) {
	case MODE_BULK:
		bulk_fill(bc);
		break;
	case MODE_RR:
		if (b->phase >= PH_RUN && !b->stopping && rr_send(bc))
			return -1;
		break;
	case MODE_CPS:
		if (b->measuring)
			hist_add(&b->lat, rte_rdtsc() - bc->t_req);
		bc->state = CS_CLOSING;
		tq_tcp_shutdown(c);
		break;
	}
	return 0;
}

static void
on_data(struct tq_tcp_conn *c, struct rte_mbuf *m)
{
	struct bconn *bc = tq_tcp_user(c);
	struct bench *b = bc->b;
	uint32_t len = rte_pktmbuf_pkt_len(m);

	bc->rcvd += len;
	b->bytes_rcvd += len;
	if (b->mode == MODE_RR) {
		if (!bc->outstanding || bc->resp_got + len > b->size) {
			b->verify_errors++; /* more than we asked for */
		} else {
			for (struct rte_mbuf *s = m; s; s = s->next) {
				const uint8_t *p = rte_pktmbuf_mtod(s, const uint8_t *);

				for (uint16_t i = 0; i < s->data_len; i++)
					if (p[i] != pattern(bc, bc->req_seq - 1, bc->resp_got + i)) {
						b->verify_errors++;
						break;
					}
				bc->resp_got += s->data_len;
			}
		}
	}
	rte_pktmbuf_free(m);
	tq_tcp_rx_release(c, len);
	if (b->mode == MODE_RR && bc->outstanding && bc->resp_got >= b->size) {
		uint64_t now = rte_rdtsc();

		bc->outstanding = false;
		b->responses++;
		if (b->measuring && bc->t_req >= b->t_measure_real) {
			hist_add(&b->lat, now - bc->t_req);
			b->window_ops++;
		}
		rr_next_or_close(bc);
	}
}

static void
on_writable(struct tq_tcp_conn *c)
{
	struct bconn *bc = tq_tcp_user(c);

	if (bc->b->mode == MODE_BULK)
		bulk_fill(bc);
}

static void
on_peer_closed(struct tq_tcp_conn *c)
{
	struct bconn *bc = tq_tcp_user(c);

	/* the server never closes first: only after our FIN; make sure ours is out */
	if (bc->state != CS_CLOSING) {
		bc->b->conn_errors++; /* the server closed on us */
		bc->state = CS_CLOSING;
	}
	tq_tcp_shutdown(c);
}

static void
on_closed(struct tq_tcp_conn *c, int err)
{
	struct bconn *bc = tq_tcp_user(c);
	struct bench *b = bc->b;

	if (err == 0) {
		b->closed_ok++;
		/* orderly close: our FIN was acknowledged, so everything before it was */
		b->bytes_acked += bc->sent - queued(c);
		if (b->mode == MODE_RR && bc->outstanding)
			b->short_responses++;
		if (b->mode == MODE_CPS && b->measuring && !b->stopping)
			b->window_ops++;
	} else {
		b->conn_errors++;
		b->last_err = (uint64_t)-err;
		if (bc->outstanding)
			b->short_responses++;
	}
	if (bc->state == CS_CONNECTING && err)
		b->connect_fail++;
	bc->c = NULL;
	bc->state = CS_IDLE;
	bc->outstanding = false;
	b->nb_open--;
	if (b->mode == MODE_CPS && !b->stopping)
		b->pending[b->npending++] = bc->id; /* reconnect from the loop, not from here */
}

static const struct tq_tcp_app bench_app = {
	.on_connected = on_connected,
	.on_data = on_data,
	.on_writable = on_writable,
	.on_peer_closed = on_peer_closed,
	.on_closed = on_closed,
};

static void
conn_start(struct bench *b, struct bconn *bc)
{
	struct tq_tcp_conn *c;
	int ret;

	bc->sent = bc->rcvd = bc->req_seq = 0;
	bc->outstanding = bc->want_close = false;
	bc->t_req = rte_rdtsc();
	ret = tq_tcp_connect(b->w, b->dst, b->dport, &bench_app, bc, &c);
	if (ret) {
		/* out of TCBs or ports (TIME_WAIT holds them): a capacity limit, retried */
		if (ret == -ENOMEM || ret == -EADDRNOTAVAIL)
			b->connect_busy++;
		else
			b->connect_fail++;
		b->last_err = (uint64_t)-ret;
		if (b->mode == MODE_CPS && !b->stopping)
			b->pending[b->npending++] = bc->id;
		return;
	}
	b->connects++;
	bc->c = c;
	bc->state = CS_CONNECTING;
	b->nb_open++;
}

static bool
all_established(const struct bench *b)
{
	for (uint32_t i = 0; i < b->nconns; i++)
		if (b->conns[i].state != CS_OPEN)
			return false;
	return true;
}

/* Stop issuing work; close what can be closed now. */
static void
bench_stop(struct bench *b)
{
	b->stopping = true;
	b->npending = 0;
	for (uint32_t i = 0; i < b->nconns; i++) {
		struct bconn *bc = &b->conns[i];

		if (bc->state == CS_OPEN) {
			if (b->mode == MODE_RR && bc->outstanding) {
				bc->want_close = true; /* after its response */
				continue;
			}
			bc->state = CS_CLOSING;
			tq_tcp_shutdown(bc->c);
		}
	}
}

static void
bench_step(struct bench *b)
{
	uint64_t now = b->w->now;

	switch (b->phase) {
	case PH_PRIME: /* the first connection resolves the server's MAC (one SYN held) */
		if (b->established > 0) {
			for (uint32_t i = 1; i < b->nconns; i++)
				conn_start(b, &b->conns[i]);
			b->phase = PH_OPEN;
		} else if (now > b->t_prime_deadline || b->nb_open == 0) {
			fprintf(stderr, "tq_tcpbench: no connection to the server\n");
			b->phase = PH_DONE;
		}
		break;
	case PH_OPEN:
		if (b->mode == MODE_CPS || all_established(b)) {
			b->t_measure = now + (uint64_t)(b->warmup * (double)b->hz);
			b->t_end = b->t_measure + (uint64_t)(b->duration * (double)b->hz);
			b->phase = PH_RUN;
			if (b->mode == MODE_RR)
				for (uint32_t i = 0; i < b->nconns; i++)
					if (b->conns[i].state == CS_OPEN && rr_send(&b->conns[i]))
						tq_tcp_abort(b->conns[i].c);
		} else if (now > b->t_prime_deadline) {
			fprintf(stderr, "tq_tcpbench: only some connections established\n");
			bench_stop(b);
			b->t_drain_deadline = now + (uint64_t)(b->drain * (double)b->hz);
			b->phase = PH_DRAIN;
		}
		break;
	case PH_RUN:
		if (!b->measuring && now >= b->t_measure) {
			b->measuring = true;
			b->t_measure_real = rte_rdtsc();
			b->window_ops = 0;
			memset(&b->lat, 0, sizeof(b->lat));
			if (b->mode == MODE_BULK)
				b->acked_at_measure = bulk_acked_now(b);
		}
		if (now >= b->t_end) {
			b->t_end_real = rte_rdtsc();
			if (b->mode == MODE_BULK)
				b->acked_at_end = bulk_acked_now(b);
			b->measuring = false;
			bench_stop(b);
			b->t_drain_deadline = now + (uint64_t)(b->drain * (double)b->hz);
			b->phase = PH_DRAIN;
			break;
		}
		if (b->mode == MODE_BULK) {
			for (uint32_t i = 0; i < b->nconns; i++)
				bulk_fill(&b->conns[i]); /* retries after a pool shortage */
		} else if (b->mode == MODE_CPS) {
			uint32_t n = b->npending;

			/* a failed connect pushes its slot again, below what is still to read */
			b->npending = 0;
			for (uint32_t i = 0; i < n; i++)
				conn_start(b, &b->conns[b->pending[i]]);
		}
		break;
	case PH_DRAIN:
		if (b->nb_open == 0) {
			b->phase = PH_DONE;
		} else if (now > b->t_drain_deadline) {
			fprintf(stderr, "tq_tcpbench: %u connections still open after the drain; aborting them\n",
				b->nb_open);
			for (uint32_t i = 0; i < b->nconns; i++)
				if (b->conns[i].state != CS_IDLE)
					tq_tcp_abort(b->conns[i].c);
			b->phase = PH_DONE;
		}
		break;
	case PH_DONE:
		break;
	}
}

static int
bench_main(void *arg)
{
	struct bench *b = arg;
	struct tq_worker *w = b->w;

	urcu_qsbr_register_thread();
	w->now = rte_rdtsc();
	b->t_prime_deadline = w->now + 10 * b->hz;
	conn_start(b, &b->conns[0]);
	b->phase = b->conns[0].state == CS_CONNECTING ? PH_PRIME : PH_DONE;
	while (!tq_dp.stop && b->phase != PH_DONE) {
		tq_worker_poll_once(w);
		bench_step(b);
		tq_worker_flush(w);
		urcu_qsbr_quiescent_state();
	}
	/* let the last segments (ACKs of FINs, RSTs) leave */
	for (uint64_t until = rte_rdtsc() + b->hz / 20; rte_rdtsc() < until;)
		tq_worker_poll_once(w);
	urcu_qsbr_unregister_thread();
	tq_dp.stop = true;
	bench_finished = true;
	return 0;
}

/* ---- reporting ---- */

static double
cyc_us(const struct bench *b, uint64_t cyc)
{
	return (double)cyc * 1e6 / (double)b->hz;
}

static int
report(struct bench *b)
{
	double secs = b->t_end_real > b->t_measure_real
			      ? (double)(b->t_end_real - b->t_measure_real) / (double)b->hz
			      : 0;
	const uint64_t *ctr = b->w->ctr;
	bool ok = b->conn_errors == 0 && b->connect_fail == 0 && b->verify_errors == 0 &&
		  b->short_responses == 0 && secs > 0;
	char extra[512] = "";

	switch (b->mode) {
	case MODE_BULK: {
		double gbps = secs ? (double)(b->acked_at_end - b->acked_at_measure) * 8 / secs / 1e9 : 0;

		ok = ok && b->bytes_acked == b->bytes_sent;
		printf("bulk: %u conn(s) to port %u, %.2f s: %.3f Gbit/s goodput (acknowledged)\n",
		       b->nconns, b->dport, secs, gbps);
		printf("bulk: bytes sent %" PRIu64 ", acknowledged %" PRIu64 ", received %" PRIu64 "\n",
		       b->bytes_sent, b->bytes_acked, b->bytes_rcvd);
		snprintf(extra, sizeof(extra), "gbps=%.4f bytes_sent=%" PRIu64 " bytes_acked=%" PRIu64
			 " bytes_rcvd=%" PRIu64, gbps, b->bytes_sent, b->bytes_acked, b->bytes_rcvd);
		break;
	}
	case MODE_RR:
	case MODE_CPS: {
		double rate = secs ? (double)b->window_ops / secs : 0;
		bool rr = b->mode == MODE_RR;

		if (rr)
			ok = ok && b->responses == b->requests && b->bytes_rcvd == b->bytes_sent;
		else
			ok = ok && b->closed_ok == b->established && b->established == b->connects;
		printf("%s: %u conn(s), %u-byte %s, %.2f s: %.0f %s/s\n", rr ? "rr" : "cps",
		       b->nconns, rr ? b->size : 0, rr ? "requests" : "opens", secs, rate,
		       rr ? "transactions" : "connections");
		printf("%s latency (us): p50 %.1f p99 %.1f p99.9 %.1f max %.1f mean %.1f (n=%" PRIu64 ")\n",
		       rr ? "request" : "connect", cyc_us(b, hist_pct(&b->lat, 50)),
		       cyc_us(b, hist_pct(&b->lat, 99)), cyc_us(b, hist_pct(&b->lat, 99.9)),
		       cyc_us(b, b->lat.max), b->lat.n ? cyc_us(b, b->lat.sum / b->lat.n) : 0.0,
		       b->lat.n);
		printf("%s: connects %" PRIu64 ", established %" PRIu64 ", closed in order %" PRIu64
		       ", requests %" PRIu64 ", responses %" PRIu64 ", bytes sent %" PRIu64
		       ", received %" PRIu64 ", verify errors %" PRIu64 "\n",
		       rr ? "rr" : "cps", b->connects, b->established, b->closed_ok, b->requests,
		       b->responses, b->bytes_sent, b->bytes_rcvd, b->verify_errors);
		snprintf(extra, sizeof(extra), "rate=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f "
			 "max_us=%.2f requests=%" PRIu64 " responses=%" PRIu64 " bytes_sent=%" PRIu64
			 " bytes_rcvd=%" PRIu64 " verify_errors=%" PRIu64, rate,
			 cyc_us(b, hist_pct(&b->lat, 50)), cyc_us(b, hist_pct(&b->lat, 99)),
			 cyc_us(b, hist_pct(&b->lat, 99.9)), cyc_us(b, b->lat.max), b->requests,
			 b->responses, b->bytes_sent, b->bytes_rcvd, b->verify_errors);
		break;
	}
	}
	printf("stack: segs tx %" PRIu64 " rx %" PRIu64 ", retransmits %" PRIu64
	       ", rto %" PRIu64 ", dup acks %" PRIu64 ", tx ring full %" PRIu64
	       ", no tcb %" PRIu64 ", mbuf shortages %" PRIu64 ", connects refused (no TCB/port) %"
	       PRIu64 "\n",
	       ctr[TQ_CTR_tcp_segs_tx], ctr[TQ_CTR_tcp_segs_rx], ctr[TQ_CTR_tcp_retransmits],
	       ctr[TQ_CTR_tcp_rto_expired], ctr[TQ_CTR_tcp_dup_acks_rx], ctr[TQ_CTR_tx_ring_full],
	       ctr[TQ_CTR_tcp_no_tcb], b->mbuf_fail, b->connect_busy);
	if (b->conn_errors || b->connect_fail)
		printf("errors: connection errors %" PRIu64 ", connect failures %" PRIu64
		       " (last: %s)\n", b->conn_errors, b->connect_fail, strerror((int)b->last_err));
	printf("RESULT mode=%s conns=%u size=%u secs=%.3f %s connects=%" PRIu64
	       " established=%" PRIu64 " closed_ok=%" PRIu64 " conn_errors=%" PRIu64
	       " connect_fail=%" PRIu64 " connect_busy=%" PRIu64 " retransmits=%" PRIu64 " ok=%d\n",
	       mode_names[b->mode], b->nconns, b->size, secs, extra, b->connects, b->established,
	       b->closed_ok, b->conn_errors, b->connect_fail, b->connect_busy,
	       ctr[TQ_CTR_tcp_retransmits], ok);
	fflush(stdout);
	return ok ? 0 : 1;
}

/* ---- options and main ---- */

static int
parse_bench_args(struct bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'},
		{"dst", required_argument, NULL, 'd'},
		{"port", required_argument, NULL, 'p'},
		{"conns", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{"duration", required_argument, NULL, 't'},
		{"warmup", required_argument, NULL, 'w'},
		{"drain", required_argument, NULL, 'D'},
		{"linger", no_argument, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};
	int opt, port = -1;
	struct in_addr a;

	b->mode = MODE_BULK;
	b->nconns = 1;
	b->size = 0;
	b->duration = 5;
	b->warmup = 1;
	b->drain = 10;
	optind = 1;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (!strcmp(optarg, "bulk"))
				b->mode = MODE_BULK;
			else if (!strcmp(optarg, "rr"))
				b->mode = MODE_RR;
			else if (!strcmp(optarg, "cps"))
				b->mode = MODE_CPS;
			else
				return -EINVAL;
			break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				return -EINVAL;
			b->dst = a.s_addr;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			b->nconns = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 's':
			b->size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 't':
			b->duration = atof(optarg);
			break;
		case 'w':
			b->warmup = atof(optarg);
			break;
		case 'D':
			b->drain = atof(optarg);
			break;
		case 'L':
			b->linger = true;
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind < argc || !b->dst || b->nconns == 0 || b->nconns > 1000000 ||
	    b->duration <= 0 || b->warmup < 0 || port > 65535 || port == 0)
		return -EINVAL;
	b->dport = (uint16_t)(port > 0 ? port : b->mode == MODE_RR ? 7 : 9);
	if (b->size == 0)
		b->size = b->mode == MODE_BULK ? 1448 : 64;
	if (b->mode == MODE_BULK && (b->size > 2048 || b->size * 2 > tq_tcp_cfg.snd_buf))
		return -EINVAL;
	return 0;
}

static void
usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [EAL options] -- [--ipv4 0=A.B.C.D/LEN] [--set SEC.KEY=VAL]... --\n"
		"       --mode bulk|rr|cps --dst A.B.C.D [--port N] [--conns N] [--size N]\n"
		"       [--duration S] [--warmup S] [--drain S]\n",
		prog);
}

static bool
wait_link(uint16_t port, unsigned int secs)
{
	for (unsigned int i = 0; i < secs * 100 && !quit_signal; i++) {
		struct rte_eth_link link;

		if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status)
			return true;
		usleep(10000);
	}
	return false;
}

int
main(int argc, char **argv)
{
	static struct tq_config cfg;
	struct rte_mempool *pool = NULL;
	struct tq_worker *w = NULL;
	struct bench *b = &B;
	char err[256] = "";
	int ret, app_argc, bench_at, rc = 2;
	unsigned int lcore;

	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "tq_tcpbench: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 2;
	}
	argc -= ret;
	argv += ret;
	argv[0] = (char *)"tq_tcpbench";
	/* tachyond's own options up to the next "--", then ours */
	for (bench_at = 1; bench_at < argc && strcmp(argv[bench_at], "--"); bench_at++)
		;
	app_argc = bench_at;
	tq_config_defaults(&cfg);
	ret = tq_config_parse_args(&cfg, app_argc, argv, err, sizeof(err));
	if (ret) {
		if (ret < 0)
			fprintf(stderr, "tq_tcpbench: %s\n", err);
		goto out_eal;
	}
	tq_tcp_cfg = cfg.dp.tcp; /* the workers read it from now on */
	if (bench_at >= argc) {
		usage("tq_tcpbench");
		goto out_eal;
	}
	argv[bench_at] = argv[0];
	if (parse_bench_args(b, argc - bench_at, argv + bench_at)) {
		usage("tq_tcpbench");
		goto out_eal;
	}
	if (rte_lcore_count() != 2) {
		fprintf(stderr, "tq_tcpbench: needs exactly one worker lcore besides the main one\n");
		goto out_eal;
	}
	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "tq_tcpbench: no port (give --vdev=net_memif0,role=client,...)\n");
		goto out_eal;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (tq_services_start(&cfg.dp.services))
		fprintf(stderr, "tq_tcpbench: warning: services not started\n");

	lcore = rte_get_next_lcore(-1, 1, 0);
	pool = rte_pktmbuf_pool_create("tq_bench_mbuf", cfg.dp.mbufs_per_worker - 1, 256, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_lcore_to_socket_id(lcore));
	if (!pool) {
		fprintf(stderr, "tq_tcpbench: mbuf pool: %s\n", rte_strerror(rte_errno));
		goto out_eal;
	}
	tq_dp.nb_workers = 1;
	w = tq_worker_create(0, lcore, pool, &cfg.dp);
	if (!w) {
		fprintf(stderr, "tq_tcpbench: worker: %s\n", strerror(errno));
		goto out_pool;
	}
	tq_dp.workers[0] = w;
	if (tq_port_setup_all(1, &pool, cfg.dp.ports, cfg.dp.nb_rxd, cfg.dp.nb_txd))
		goto out_ports;
	if (!tq_ports[0].up || !tq_ports[0].ipv4) {
		fprintf(stderr, "tq_tcpbench: port 0 needs an address (--ipv4 0=A.B.C.D/LEN)\n");
		goto out_ports;
	}
	if (tq_telemetry_register(&cfg))
		fprintf(stderr, "tq_tcpbench: warning: telemetry not registered\n");
	if (!wait_link(0, 20)) {
		fprintf(stderr, "tq_tcpbench: port 0 link still down (is tachyond's memif server up?)\n");
		goto out_tele;
	}

	b->w = w;
	b->hz = rte_get_tsc_hz();
	b->conns = rte_zmalloc("tq_bench_conns", b->nconns * sizeof(*b->conns), 0);
	b->pending = rte_zmalloc("tq_bench_pending", b->nconns * sizeof(*b->pending), 0);
	if (!b->conns || !b->pending) {
		fprintf(stderr, "tq_tcpbench: out of memory\n");
		goto out_tele;
	}
	for (uint32_t i = 0; i < b->nconns; i++) {
		b->conns[i].b = b;
		b->conns[i].id = i;
	}
	rte_eal_remote_launch(bench_main, b, lcore);
	/* Sleep, don't spin in rte_eal_mp_wait_lcore: the main lcore may share the worker's
	 * CPU (--lcores 0@1,1@1), and a spinning main thread would steal its time slices. */
	while (!bench_finished)
		usleep(10000);
	rte_eal_mp_wait_lcore();
	rc = quit_signal ? 2 : report(b);
	if (b->linger && !quit_signal) {
		printf("tq_tcpbench: lingering (link up, worker stopped) until SIGTERM\n");
		fflush(stdout);
		for (unsigned int i = 0; i < 12000 && !quit_signal; i++)
			usleep(10000);
	}
out_tele:
	tq_telemetry_close();
out_ports:
	tq_port_close_all();
	tq_worker_destroy(w);
	tq_dp.workers[0] = NULL;
	rte_free(b->conns);
	rte_free(b->pending);
out_pool:
	rte_mempool_free(pool);
out_eal:
	rte_eal_cleanup();
	return rc;
}
