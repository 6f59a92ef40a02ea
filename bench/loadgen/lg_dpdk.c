/*
 * --transport dpdk: the clients on tachyon's own worker, ports and TCP in client mode
 * (active opens), as tq_tcpbench does, over a net_memif pair to tachyond (or any port).
 *
 *   tq_loadgen [EAL options] -- [tachyond options: --ipv4, --set, -c] -- [load options]
 *
 * One worker lcore besides the main one: the worker runs the normal poll loop
 * (tq_worker_poll_once) with the clients in the same loop; the main lcore only sleeps.
 */
#include <errno.h>
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
#include <rte_mbuf.h>
#include <urcu/urcu-qsbr.h>

#include "control/tq_config.h"
#include "dataplane/net/tq_tcp.h"
#include "dataplane/net/tq_tcp_var.h"
#include "dataplane/tq_worker.h"
#include "tq_loadgen.h"

struct dctx {
	struct tq_worker *w;
	uint64_t mbuf_fail;
};

static volatile sig_atomic_t d_quit;
static volatile bool d_finished; /* dp: wo, main: ro; the worker left its loop */

static void
d_on_signal(int sig)
{
	d_quit = sig;
	tq_dp.stop = true;
}

/* ---- TCP callbacks ---- */

static int
d_on_connected(struct tq_tcp_conn *tc)
{
	lg_conn_opened(tq_tcp_user(tc));
	return 0;
}

static void
d_on_data(struct tq_tcp_conn *tc, struct rte_mbuf *m)
{
	struct lg_conn *c = tq_tcp_user(tc);
	uint32_t len = rte_pktmbuf_pkt_len(m);
	uint64_t now = rte_rdtsc();

	for (struct rte_mbuf *s = m; s; s = s->next)
		lg_conn_input(c, rte_pktmbuf_mtod(s, const uint8_t *), s->data_len, now);
	rte_pktmbuf_free(m);
	tq_tcp_rx_release(tc, len);
}

static void
d_on_peer_closed(struct tq_tcp_conn *tc)
{
	tq_tcp_shutdown(tc); /* ours follows; on_closed decides whether it was expected */
}

static void
d_on_closed(struct tq_tcp_conn *tc, int err)
{
	lg_conn_closed(tq_tcp_user(tc), err);
}

static const struct tq_tcp_app d_app = {
	.on_connected = d_on_connected,
	.on_data = d_on_data,
	.on_peer_closed = d_on_peer_closed,
	.on_closed = d_on_closed,
};

/* ---- the transport ---- */

static int
d_connect(struct lg_conn *c)
{
	struct dctx *d = c->lg->tp_ctx;
	struct tq_tcp_conn *tc;
	int ret = tq_tcp_connect(d->w, lg_conn_dst(c), c->lg->o.port, &d_app, c, &tc);

	if (ret == 0)
		c->tp = tc;
	return ret;
}

static void
d_close(struct lg_conn *c)
{
	if (c->tp)
		tq_tcp_shutdown(c->tp);
}

static void
d_abort(struct lg_conn *c)
{
	if (c->tp)
		tq_tcp_abort(c->tp); /* on_closed(-ECONNABORTED) at once */
	else
		lg_conn_closed(c, -ECONNABORTED);
}

static const struct lg_transport d_transport = {
	.name = "dpdk",
	.connect = d_connect,
	.close = d_close,
	.abort = d_abort,
};

/* Hand what the clients queued to TCP, as much as the send queues take (copied into
 * mbufs); the rest stays dirty for the next iteration. */
static bool
d_flush(struct lg *lg, struct dctx *d)
{
	uint32_t keep = 0;
	bool sent = false;

	for (uint32_t i = 0; i < lg->ndirty; i++) {
		struct lg_conn *c = &lg->conns[lg->dirty[i]];
		uint32_t pend = lg_tx_pending(c), n, left, off = 0;
		struct rte_mbuf *head = NULL, *tail = NULL;

		if (!c->tp || pend == 0 || c->state == LG_CS_CLOSED) {
			c->dirty = false;
			continue;
		}
		n = RTE_MIN(pend, tq_tcp_send_space(c->tp));
		for (left = n; left;) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(d->w->pool);
			uint16_t take;

			if (!m) {
				d->mbuf_fail++;
				break;
			}
			take = (uint16_t)RTE_MIN(left, (uint32_t)rte_pktmbuf_tailroom(m));
			memcpy(rte_pktmbuf_append(m, take), c->tx + c->tx_off + off, take);
			if (!head) {
				head = tail = m;
			} else {
				tail->next = m;
				tail = m;
				head->nb_segs++;
				head->pkt_len += take;
			}
			off += take;
			left -= take;
		}
		if (head) {
			if (tq_tcp_send(c->tp, head) == 0) {
				lg_conn_sent(c, off);
				sent = true;
			} else {
				rte_pktmbuf_free(head);
			}
		}
		if (lg_tx_pending(c))
			lg->dirty[keep++] = c->id; /* c->dirty stays true */
		else
			c->dirty = false;
	}
	lg->ndirty = keep;
	return sent;
}

static int
d_main(void *arg)
{
	struct lg *lg = arg;
	struct dctx *d = lg->tp_ctx;
	struct tq_worker *w = d->w;

	urcu_qsbr_register_thread();
	while (!tq_dp.stop && lg->phase != LG_PH_DONE) {
		uint64_t t0 = rte_rdtsc();
		unsigned int work = tq_worker_poll_once(w);
		bool sent;

		lg_step(lg, rte_rdtsc());
		sent = d_flush(lg, d);
		tq_worker_flush(w);
		urcu_qsbr_quiescent_state();
		lg_account(lg, t0, rte_rdtsc(), work > 0 || sent);
	}
	/* let the last segments (ACKs of FINs) leave */
	for (uint64_t until = rte_rdtsc() + rte_get_tsc_hz() / 20; rte_rdtsc() < until;)
		tq_worker_poll_once(w);
	urcu_qsbr_unregister_thread();
	tq_dp.stop = true;
	d_finished = true;
	return 0;
}

static bool
wait_link(uint16_t port, unsigned int secs)
{
	for (unsigned int i = 0; i < secs * 100 && !d_quit; i++) {
		struct rte_eth_link link;

		if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status)
			return true;
		usleep(10000);
	}
	return false;
}

int
lg_dpdk_run(int argc, char **argv)
{
	static struct tq_config cfg;
	static struct lg lg;
	struct rte_mempool *pool = NULL;
	struct tq_worker *w = NULL;
	struct dctx d = {0};
	char err[256] = "";
	int ret, load_at, rc = 2;
	unsigned int lcore;

	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "tq_loadgen: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 2;
	}
	argc -= ret;
	argv += ret;
	argv[0] = (char *)"tq_loadgen";
	/* tachyond's own options up to the next "--", then the load's */
	for (load_at = 1; load_at < argc && strcmp(argv[load_at], "--"); load_at++)
		;
	tq_config_defaults(&cfg);
	ret = tq_config_parse_args(&cfg, load_at, argv, err, sizeof(err));
	if (ret) {
		if (ret < 0)
			fprintf(stderr, "tq_loadgen: %s\n", err);
		goto out_eal;
	}
	tq_tcp_cfg = cfg.dp.tcp; /* the worker reads it from now on */
	if (load_at >= argc) {
		lg_usage();
		goto out_eal;
	}
	argv[load_at] = argv[0];
	if (lg_parse_opts(&lg.o, argc - load_at, argv + load_at) || strcmp(lg.o.transport, "dpdk")) {
		lg_usage();
		goto out_eal;
	}
	if (rte_lcore_count() != 2) {
		fprintf(stderr, "tq_loadgen: needs exactly one worker lcore besides the main one\n");
		goto out_eal;
	}
	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "tq_loadgen: no port (give --vdev=net_memif0,role=client,...)\n");
		goto out_eal;
	}
	signal(SIGINT, d_on_signal);
	signal(SIGTERM, d_on_signal);

	lcore = rte_get_next_lcore(-1, 1, 0);
	pool = rte_pktmbuf_pool_create("tq_lg_mbuf", cfg.dp.mbufs_per_worker - 1, 256, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_lcore_to_socket_id(lcore));
	if (!pool) {
		fprintf(stderr, "tq_loadgen: mbuf pool: %s\n", rte_strerror(rte_errno));
		goto out_eal;
	}
	tq_dp.nb_workers = 1;
	w = tq_worker_create(0, lcore, pool, &cfg.dp);
	if (!w) {
		fprintf(stderr, "tq_loadgen: worker: %s\n", strerror(errno));
		goto out_pool;
	}
	tq_dp.workers[0] = w;
	if (tq_port_setup_all(1, &pool, cfg.dp.ports, cfg.dp.nb_rxd, cfg.dp.nb_txd))
		goto out_ports;
	/* every port (one per --dst subnet with several memif pairs) up, with an address */
	for (uint16_t p = 0; p < tq_nb_ports; p++) {
		if (!tq_ports[p].up || !tq_ports[p].ipv4) {
			fprintf(stderr, "tq_loadgen: port %u needs an address (--ipv4 %u=A.B.C.D/LEN)\n",
				p, p);
			goto out_ports;
		}
		if (!wait_link(p, 20)) {
			fprintf(stderr, "tq_loadgen: port %u link still down (is tachyond's memif "
				"server up?)\n", p);
			goto out_ports;
		}
	}
	d.w = w;
	if (lg_init(&lg, &d_transport, &d, rte_get_tsc_hz())) {
		fprintf(stderr, "tq_loadgen: out of memory\n");
		goto out_lg;
	}
	rte_eal_remote_launch(d_main, &lg, lcore);
	/* Sleep, don't spin in rte_eal_mp_wait_lcore: the main lcore may share the worker's
	 * CPU, and a spinning main thread would steal its time slices (bench/RESULTS.md). */
	while (!d_finished)
		usleep(10000);
	rte_eal_mp_wait_lcore();
	if (!d_quit) {
		const uint64_t *ctr = w->ctr;

		rc = lg_report(&lg);
		if (!lg.o.quiet)
			printf("  stack: segs tx %" PRIu64 " rx %" PRIu64 ", retransmits %" PRIu64
			       ", rto %" PRIu64 ", tx ring full %" PRIu64 ", mbuf shortages %" PRIu64
			       "\n",
			       ctr[TQ_CTR_tcp_segs_tx], ctr[TQ_CTR_tcp_segs_rx],
			       ctr[TQ_CTR_tcp_retransmits], ctr[TQ_CTR_tcp_rto_expired],
			       ctr[TQ_CTR_tx_ring_full], d.mbuf_fail);
	}
out_lg:
	lg_free(&lg);
out_ports:
	tq_port_close_all();
	tq_worker_destroy(w);
	tq_dp.workers[0] = NULL;
out_pool:
	rte_mempool_free(pool);
out_eal:
	rte_eal_cleanup();
	return rc;
}
