/*
 * Ports: every ethdev DPDK probed (PCI or vdev), one RX and one TX queue per worker,
 * RSS across workers when the port has it, IPv4 checksum offloads when it has them.
 *
 * Ownership: the table is written by the control thread before the workers start and
 * only read afterwards (dp: ro, cp: wo at boot).
 */
#ifndef TQ_PORT_H
#define TQ_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mempool.h>

#define TQ_MAX_PORTS 8

/* Addressing an operator gives a port (config section [portN]). */
struct tq_port_conf {
	uint32_t ipv4;    /* network order, 0 = none */
	uint8_t prefix_len;
	uint32_t gateway; /* network order, 0 = none */
	uint16_t mtu;     /* 0 = leave the device default */
};

struct tq_port {
	bool up;                 /* configured and started */
	uint16_t port_id;        /* ethdev id == index in tq_ports[] */
	uint16_t nb_queues;      /* one per worker */
	bool rss;                /* RSS spreads RX over the queues */
	bool rx_ipv4_csum;       /* device validates IPv4 header checksums */
	bool tx_ipv4_csum;       /* device fills IPv4 header checksums */
	bool rx_tcp_csum;        /* device validates TCP checksums */
	uint16_t mtu;
	struct rte_ether_addr mac;
	uint32_t ipv4;           /* network order, 0 = none */
	uint32_t netmask;        /* network order */
	uint32_t gateway;        /* network order, 0 = none */
	char name[RTE_ETH_NAME_MAX_LEN];
	char driver[32];
};

/* dp: ro, cp: wo before the workers start. Indexed by ethdev port id. */
extern struct tq_port tq_ports[TQ_MAX_PORTS];

/* Number of ports the router uses (ids 0 .. tq_nb_ports - 1). */
extern uint16_t tq_nb_ports;

/*
 * Configure and start every probed port with @nb_queues RX/TX queue pairs. Queue q takes
 * its mbufs from @queue_pools[q]. @conf is indexed by port id (may be NULL).
 * Control thread, boot only. Returns 0 or -errno (the message is logged).
 */
int tq_port_setup_all(uint16_t nb_queues, struct rte_mempool *const queue_pools[],
		      const struct tq_port_conf conf[TQ_MAX_PORTS], uint16_t nb_rxd,
		      uint16_t nb_txd);

/* Stop and close every started port. Control thread, after the workers stopped. */
void tq_port_close_all(void);

/* The port whose subnet holds @dst (network order), else the first port with a gateway;
 * sets *@next_hop. Returns the port id or -1. Any thread after boot. */
int tq_port_route(uint32_t dst, uint32_t *next_hop);

/* Is @ip (network order) the address of port @port? */
static inline bool
tq_port_owns(uint16_t port, uint32_t ip)
{
	return tq_ports[port].ipv4 != 0 && tq_ports[port].ipv4 == ip;
}

#endif
