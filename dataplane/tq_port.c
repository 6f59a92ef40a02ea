#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_log.h>

#include "tq_port.h"

struct tq_port tq_ports[TQ_MAX_PORTS];
uint16_t tq_nb_ports;

static int
port_setup(uint16_t pid, uint16_t nb_queues, struct rte_mempool *const queue_pools[],
	   const struct tq_port_conf *pc, uint16_t nb_rxd, uint16_t nb_txd)
{
	struct tq_port *p = &tq_ports[pid];
	struct rte_eth_conf eth_conf;
	struct rte_eth_dev_info info;
	int ret;

	ret = rte_eth_dev_info_get(pid, &info);
	if (ret)
		return ret;
	memset(&eth_conf, 0, sizeof(eth_conf));
	if (nb_queues > info.max_rx_queues || nb_queues > info.max_tx_queues) {
		fprintf(stderr, "tachyond: port %u (%s) has %u/%u queues, %u workers need one each\n",
			pid, info.driver_name, info.max_rx_queues, info.max_tx_queues, nb_queues);
		return -ENOTSUP;
	}
	if (nb_queues > 1 && info.flow_type_rss_offloads) {
		eth_conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		eth_conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
			info.flow_type_rss_offloads;
		p->rss = eth_conf.rx_adv_conf.rss_conf.rss_hf != 0;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
		eth_conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
		p->rx_ipv4_csum = true;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) {
		eth_conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
		p->rx_tcp_csum = true;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
		eth_conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
		p->tx_ipv4_csum = true;
	}
	ret = rte_eth_dev_configure(pid, nb_queues, nb_queues, &eth_conf);
	if (ret)
		return ret;
	if (pc && pc->mtu) {
		ret = rte_eth_dev_set_mtu(pid, pc->mtu);
		if (ret)
			return ret;
	}
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd);
	if (ret)
		return ret;
	for (uint16_t q = 0; q < nb_queues; q++) {
		struct rte_eth_rxconf rxc = info.default_rxconf;
		struct rte_eth_txconf txc = info.default_txconf;
		int socket = queue_pools[q]->socket_id;

		rxc.offloads = eth_conf.rxmode.offloads;
		txc.offloads = eth_conf.txmode.offloads;
		ret = rte_eth_rx_queue_setup(pid, q, nb_rxd, socket, &rxc, queue_pools[q]);
		if (ret)
			return ret;
		ret = rte_eth_tx_queue_setup(pid, q, nb_txd, socket, &txc);
		if (ret)
			return ret;
	}
	ret = rte_eth_dev_start(pid);
	if (ret)
		return ret;
	rte_eth_macaddr_get(pid, &p->mac);
	rte_eth_dev_get_mtu(pid, &p->mtu);
	rte_eth_dev_get_name_by_port(pid, p->name);
	snprintf(p->driver, sizeof(p->driver), "%s", info.driver_name);
	p->port_id = pid;
	p->nb_queues = nb_queues;
	if (pc) {
		p->ipv4 = pc->ipv4;
		p->netmask = pc->prefix_len ? rte_cpu_to_be_32(~0u << (32 - pc->prefix_len)) : 0;
		p->gateway = pc->gateway;
	}
	p->up = true;
	return 0;
}

int
tq_port_setup_all(uint16_t nb_queues, struct rte_mempool *const queue_pools[],
		  const struct tq_port_conf conf[TQ_MAX_PORTS], uint16_t nb_rxd, uint16_t nb_txd)
{
	uint16_t pid;

	RTE_ETH_FOREACH_DEV(pid)
	{
		int ret;

		if (pid >= TQ_MAX_PORTS) {
			fprintf(stderr, "tachyond: port %u ignored: at most %d ports\n", pid,
				TQ_MAX_PORTS);
			continue;
		}
		ret = port_setup(pid, nb_queues, queue_pools, conf ? &conf[pid] : NULL, nb_rxd,
				 nb_txd);
		if (ret) {
			fprintf(stderr, "tachyond: port %u setup failed: %s\n", pid, strerror(-ret));
			return ret;
		}
		if (pid + 1 > tq_nb_ports)
			tq_nb_ports = (uint16_t)(pid + 1);
	}
	return 0;
}

void
tq_port_close_all(void)
{
	for (uint16_t pid = 0; pid < tq_nb_ports; pid++) {
		if (!tq_ports[pid].up)
			continue;
		rte_eth_dev_stop(pid);
		rte_eth_dev_close(pid);
		tq_ports[pid].up = false;
	}
}

int
tq_port_route(uint32_t dst, uint32_t *next_hop)
{
	for (uint16_t pid = 0; pid < tq_nb_ports; pid++) {
		const struct tq_port *p = &tq_ports[pid];

		if (p->up && p->ipv4 && ((dst ^ p->ipv4) & p->netmask) == 0) {
			*next_hop = dst;
			return pid;
		}
	}
	for (uint16_t pid = 0; pid < tq_nb_ports; pid++) {
		if (tq_ports[pid].up && tq_ports[pid].gateway) {
			*next_hop = tq_ports[pid].gateway;
			return pid;
		}
	}
	return -1;
}
