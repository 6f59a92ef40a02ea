/*
 * Runs every script (*.pkt) of tests/tcp (tq_pktscript.h) as one CUnit test, on a ring port.
 * Usage: test_tcp_scripts DIR [SCRIPT.pkt ...]   (the names pick a subset of DIR)
 */
#include <dirent.h>
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

#include "dataplane/tq_port.h"
#include "tq_pktscript.h"
#include "tq_test.h"

#define OUR_IP "198.18.0.1"
#define PEER_IP "198.18.0.7"
#define GATEWAY_IP "198.18.0.254"

static struct tq_pktscript_env env;
static struct rte_ring *rx_ring;
static const char *script_dir;

static int
setup_port(void)
{
	static const struct rte_ether_addr peer_mac = {{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
	struct tq_port_conf conf[TQ_MAX_PORTS];
	struct rte_mempool *pools[1];
	int ret;

	env.pool = rte_pktmbuf_pool_create("tq_test_pkt", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	rx_ring = rte_ring_create("tq_pkt_rx", 1024, (int)rte_socket_id(), 0);
	env.tx_ring = rte_ring_create("tq_pkt_tx", 1024, (int)rte_socket_id(), 0);
	if (!env.pool || !rx_ring || !env.tx_ring)
		return -1;
	ret = rte_eth_from_rings("net_ring_tq_pkt", &rx_ring, 1, &env.tx_ring, 1,
				 rte_socket_id());
	if (ret < 0)
		return ret;
	env.port = (uint16_t)ret;
	env.our_ip = inet_addr(OUR_IP);
	env.peer_ip = inet_addr(PEER_IP);
	env.peer_mac = peer_mac;
	memset(conf, 0, sizeof(conf));
	conf[env.port].ipv4 = env.our_ip;
	conf[env.port].prefix_len = 24;
	conf[env.port].gateway = inet_addr(GATEWAY_IP);
	pools[0] = env.pool;
	ret = tq_port_setup_all(1, pools, conf, 64, 64);
	if (ret)
		return ret;
	env.our_mac = tq_ports[env.port].mac;
	if (!rte_is_unicast_ether_addr(&env.our_mac) || rte_is_zero_ether_addr(&env.our_mac)) {
		static const struct rte_ether_addr own = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

		env.our_mac = own;
		tq_ports[env.port].mac = own;
	}
	return 0;
}

/*
 * The test's name is the script's file name. Each script runs several times: the stack
 * picks a fresh random ISS (RFC 6528) each time, and a bug that depends on where the ISS
 * lies in sequence space (an uninitialised variable compared with tq_seq_*) shows up in
 * one run out of two. TQ_PKTSCRIPT_RUNS overrides the count.
 */
static void
run_current_script(void)
{
	const char *name = CU_get_current_test()->pName;
	const char *env_runs = getenv("TQ_PKTSCRIPT_RUNS");
	int runs = env_runs && atoi(env_runs) > 0 ? atoi(env_runs) : 8;
	struct tq_pktscript_result res;
	char path[4096], msg[sizeof(res.msg) + 32];

	snprintf(path, sizeof(path), "%s/%s", script_dir, name);
	for (int i = 1; i <= runs; i++) {
		if (tq_pktscript_run_file(&env, path, &res) == 0)
			continue;
		snprintf(msg, sizeof(msg), "(run %d of %d) %s", i, runs, res.msg);
		/* CUnit copies the strings: the failure reads "<script>:<line> - <message>" */
		CU_assertImplementation(CU_FALSE, res.line, msg, path, "", CU_FALSE);
		return;
	}
	CU_PASS(script);
}

static int
is_script(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && !strcmp(d->d_name + n - 4, ".pkt");
}

static int
wanted(const char *name, int argc, char **argv)
{
	if (argc <= 2)
		return 1;
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct dirent **names;
	CU_pSuite suite;
	int n, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [SCRIPT.pkt ...]\n", argv[0]);
		return EXIT_FAILURE;
	}
	script_dir = argv[1];
	n = scandir(script_dir, &names, is_script, alphasort);
	if (n <= 0) {
		fprintf(stderr, "test_tcp_scripts: no *.pkt in %s\n", script_dir);
		return EXIT_FAILURE;
	}
	if (tq_test_eal_init() < 0 || setup_port() < 0) {
		fprintf(stderr, "test_tcp_scripts: EAL or ring port setup failed\n");
		return EXIT_FAILURE;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return EXIT_FAILURE;
	suite = CU_add_suite("tcp_scripts", NULL, NULL);
	for (int i = 0; i < n; i++) {
		/* CUnit keeps the name pointer: the dirents live until the end */
		if (suite && wanted(names[i]->d_name, argc, argv))
			CU_add_test(suite, names[i]->d_name, run_current_script);
	}
	if (!suite || CU_get_error() != CUE_SUCCESS)
		return EXIT_FAILURE;
	rc = tq_test_run();
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	tq_port_close_all();
	rte_ring_free(rx_ring);
	rte_ring_free(env.tx_ring);
	rte_mempool_free(env.pool);
	rte_eal_cleanup();
	return rc;
}
