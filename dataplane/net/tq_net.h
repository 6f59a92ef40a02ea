/*
 * The per-packet handlers of a worker's net stack: Ethernet demux, ARP, IPv4, ICMP.
 * Every function here runs on the worker that owns @w and takes ownership of the mbuf
 * it is given: the mbuf is sent, held (ARP resolution) or freed with a counted reason.
 * No allocation but from the worker's mempool, no locks, no syscalls.
 */
#ifndef TQ_NET_H
#define TQ_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "dataplane/tq_worker.h"

struct tq_ipv4_view;

/* Free @m and count why. */
static inline void
tq_net_drop(struct tq_worker *w, struct rte_mbuf *m, unsigned int ctr)
{
	w->ctr[ctr]++;
	rte_pktmbuf_free(m);
}

/* A frame received on @port: @m starts at the Ethernet header. */
void tq_net_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m);

/* An ARP packet: @m starts at the ARP body. */
void tq_arp_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m);

/*
 * @ip is at @mac behind @port. @create: make an entry if there is none (else only refresh).
 * @propagate: tell the other workers when the entry is new or changed. A packet held
 * for @ip leaves now.
 */
void tq_arp_learned(struct tq_worker *w, uint16_t port, uint32_t ip,
		    const struct rte_ether_addr *mac, bool create, bool propagate);

/*
 * Send @m (starting at its IPv4 header) to @next_hop on @port: prepend the Ethernet header
 * from the neighbour cache, or hold @m and ask with an ARP request.
 */
void tq_arp_output(struct tq_worker *w, uint16_t port, uint32_t next_hop, struct rte_mbuf *m);

/* Broadcast a gratuitous ARP for @port's address. */
void tq_arp_send_garp(struct tq_worker *w, uint16_t port);

/* Age neighbour entries and retry or give up pending resolutions (from tq_worker_tick). */
void tq_arp_age(struct tq_worker *w);

/* An IPv4 packet: @m starts at the IPv4 header. */
void tq_ipv4_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m);

/*
 * Send @m, which starts at a complete IPv4 header (its checksum field is filled here, or
 * left to the port's offload), towards the header's destination.
 */
void tq_ipv4_output(struct tq_worker *w, struct rte_mbuf *m);

/* An ICMP message inside the IPv4 packet @m described by @ip. */
void tq_icmp_input(struct tq_worker *w, uint16_t port, struct rte_mbuf *m,
		   const struct tq_ipv4_view *ip);

/* Originate one ICMP echo request to @dst (network order) with sequence @seq. */
void tq_icmp_send_echo(struct tq_worker *w, uint32_t dst, uint16_t seq);

#endif
