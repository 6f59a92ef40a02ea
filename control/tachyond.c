/*
 * tachyond: EAL, config, mempools, ports and workers; then the main lcore becomes the
 * control thread (it never polls a NIC) until SIGINT/SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "dataplane/net/tq_ipv4.h"
#include "dataplane/net/tq_tcp_var.h"
#include "dataplane/tq_worker.h"
#include "routing/tq_msg.h"
#include "tq_admin.h"
#include "tq_config.h"
#include "tq_cplane.h"
#include "tq_tune.h"
#include "tq_metrics.h"
#include "tq_nsim_ctl.h"
#include "tq_telemetry.h"

static volatile sig_atomic_t quit_signal;

static void
on_signal(int sig)
{
	quit_signal = sig;
}

static struct rte_mempool *socket_pools[RTE_MAX_NUMA_NODES];

/* One mbuf pool per NUMA socket that runs workers, sized for the workers on it. */
static int
create_pools(const struct tq_config *cfg, struct rte_mempool *queue_pools[])
{
	unsigned int per_socket[RTE_MAX_NUMA_NODES] = {0};
	unsigned int lcore, q = 0;

	RTE_LCORE_FOREACH_WORKER(lcore)
	per_socket[rte_lcore_to_socket_id(lcore)]++;
	for (unsigned int s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		char name[RTE_MEMPOOL_NAMESIZE];

		if (!per_socket[s])
			continue;
		snprintf(name, sizeof(name), "tq_mbuf_s%u", s);
		socket_pools[s] = rte_pktmbuf_pool_create(
			name, per_socket[s] * cfg->dp.mbufs_per_worker - 1, 256, 0,
			RTE_MBUF_DEFAULT_BUF_SIZE, (int)s);
		if (!socket_pools[s]) {
			fprintf(stderr, "tachyond: mbuf pool on socket %u: %s\n", s,
				rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	RTE_LCORE_FOREACH_WORKER(lcore)
	queue_pools[q++] = socket_pools[rte_lcore_to_socket_id(lcore)];
	if (cfg->dp.msg_mbufs) { /* queued payloads, copied when RX buffers run short */
		tq_msgdata_pool = rte_pktmbuf_pool_create("tq_msgdata", cfg->dp.msg_mbufs - 1, 256,
							  0, RTE_MBUF_DEFAULT_BUF_SIZE,
							  (int)rte_socket_id());
		if (!tq_msgdata_pool) {
			fprintf(stderr, "tachyond: message data pool: %s\n", rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	return 0;
}

static void
free_pools(void)
{
	rte_mempool_free(tq_msgdata_pool);
	tq_msgdata_pool = NULL;
	for (unsigned int s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		rte_mempool_free(socket_pools[s]);
		socket_pools[s] = NULL;
	}
}

static void
print_ready(void)
{
	char ip[16], mac[RTE_ETHER_ADDR_FMT_SIZE];

	printf("tachyond: ready: %u workers, %u ports\n", tq_dp.nb_workers, tq_nb_ports);
	for (uint16_t p = 0; p < tq_nb_ports; p++) {
		if (!tq_ports[p].up)
			continue;
		rte_ether_format_addr(mac, sizeof(mac), &tq_ports[p].mac);
		printf("tachyond: port %u %s (%s) mac %s ipv4 %s/%d\n", p, tq_ports[p].name,
		       tq_ports[p].driver, mac,
		       tq_ports[p].ipv4 ? tq_ipv4_fmt(tq_ports[p].ipv4, ip) : "-",
		       __builtin_popcount(tq_ports[p].netmask));
	}
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct rte_mempool *queue_pools[TQ_MAX_WORKERS];
	static struct tq_config cfg;
	char err[256] = "";
	unsigned int lcore;
	int ret, rc = EXIT_FAILURE;

	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "tachyond: EAL init failed: %s\n", rte_strerror(rte_errno));
		return EXIT_FAILURE;
	}
	argv[ret] = argv[0];
	tq_config_defaults(&cfg);
	ret = tq_config_parse_args(&cfg, argc - ret, argv + ret, err, sizeof(err));
	if (ret) {
		if (ret < 0)
			fprintf(stderr, "tachyond: %s\n", err);
		rte_eal_cleanup();
		return ret < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	}
	tq_dp.nb_workers = rte_lcore_count() - 1;
	if (tq_dp.nb_workers == 0 || tq_dp.nb_workers > TQ_MAX_WORKERS) {
		fprintf(stderr,
			"tachyond: needs 1 to %d worker lcores besides the main one (e.g. -l 0-1)\n",
			TQ_MAX_WORKERS);
		rte_eal_cleanup();
		return EXIT_FAILURE;
	}
	if (rte_eth_dev_count_avail() == 0)
		fprintf(stderr, "tachyond: warning: no ports (give one with --vdev=net_tap0)\n");

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	tq_tcp_cfg = cfg.dp.tcp; /* read by the workers from now on */
	if (tq_services_start(&cfg.dp.services))
		fprintf(stderr, "tachyond: warning: built-in services not started\n");
	if (create_pools(&cfg, queue_pools))
		goto out_pools;
	{
		uint16_t id = 0;

		RTE_LCORE_FOREACH_WORKER(lcore)
		{
			tq_dp.workers[id] = tq_worker_create(id, lcore, queue_pools[id], &cfg.dp);
			if (!tq_dp.workers[id]) {
				fprintf(stderr, "tachyond: worker %u: %s\n", id, strerror(errno));
				goto out_workers;
			}
			id++;
		}
	}
	if (tq_port_setup_all((uint16_t)tq_dp.nb_workers, queue_pools, cfg.dp.ports, cfg.dp.nb_rxd,
			      cfg.dp.nb_txd))
		goto out_ports;
	ret = tq_mqtt_broker_start(&cfg.mqtt);
	if (ret < 0) {
		fprintf(stderr, "tachyond: MQTT on port %u: %s\n", cfg.mqtt.port, strerror(-ret));
		goto out_mqtt;
	}
	ret = tq_amqp_broker_start(&cfg.amqp);
	if (ret < 0) {
		fprintf(stderr, "tachyond: AMQP on port %u: %s\n", cfg.amqp.port, strerror(-ret));
		goto out_mqtt;
	}
	ret = tq_cplane_start(&cfg.auth, cfg.amqp.default_user, cfg.amqp.default_pass, err,
			      sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "tachyond: control plane: %s\n", err);
		goto out_cplane;
	}
	if (tq_telemetry_register(&cfg))
		fprintf(stderr, "tachyond: warning: telemetry commands not registered\n");
	if (tq_tune_register(&cfg))
		fprintf(stderr, "tachyond: warning: set/get commands not registered\n");
	if (tq_admin_register())
		fprintf(stderr, "tachyond: warning: tachyonctl's user and permission commands not "
				"registered\n");
	ret = tq_metrics_start(&cfg.metrics); /* not fatal: routing matters more than scraping */
	if (ret < 0)
		fprintf(stderr, "tachyond: warning: no metrics on %s:%u: %s\n", cfg.metrics.address,
			cfg.metrics.port, strerror(-ret));

	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
			if (tq_dp.workers[i]->lcore == lcore)
				rte_eal_remote_launch(tq_worker_main, tq_dp.workers[i], lcore);
	}
	/* Announce our addresses: worker 0 sends one gratuitous ARP per addressed port. */
	for (uint16_t p = 0; p < tq_nb_ports; p++) {
		struct tq_ring_msg msg = {.type = TQ_MSG_GARP, .a = p};

		if (tq_ports[p].up && tq_ports[p].ipv4)
			tq_worker_post(tq_dp.workers[0], &msg, NULL);
	}
	print_ready();

	/*
	 * The control thread: logins, commands, metrics. A 1 ms nap when nothing came, 10 ms
	 * once nothing came for 100 ms: an idle router's control thread (often on a worker's
	 * core) wakes 100 times a second, and a login after a quiet spell waits 10 ms at most.
	 */
	for (unsigned int idle = 0; !quit_signal;) {
		tq_metrics_poll();
		if (tq_cplane_poll()) {
			idle = 0;
		} else if (idle < 100) {
			idle++;
			usleep(1000);
		} else {
			usleep(10000);
		}
	}
	printf("tachyond: %s, stopping\n", strsignal(quit_signal));
	rc = EXIT_SUCCESS;

	tq_dp.stop = true;
	rte_eal_mp_wait_lcore();
	tq_telemetry_close();
	tq_metrics_stop(); /* before the workers and brokers it reads are freed */
	tq_nsim_ctl_close(); /* before the workers it reads are destroyed */
out_cplane:
	tq_cplane_stop(); /* workers stopped: answers they never took are in their rings */
out_mqtt:
	tq_amqp_broker_close(); /* workers stopped: connections, queues and messages go */
	tq_mqtt_broker_close(); /* workers stopped: sessions and messages go */
out_ports:
	tq_port_close_all();
out_workers:
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
		tq_worker_destroy(tq_dp.workers[i]);
		tq_dp.workers[i] = NULL;
	}
out_pools:
	free_pools();
	rte_eal_cleanup();
	if (rc == EXIT_SUCCESS)
		printf("tachyond: stopped\n");
	return rc;
}
