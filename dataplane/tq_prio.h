/*
 * Data-plane priority classes: what a trading desk pays for. A connection's class comes
 * from the control plane when its user logs in (a policy that applies to users, key
 * priority-class: critical, normal or bulk) and is kept on its TCB (tq_tcp_set_prio).
 *
 * While a worker holds connections of a class other than normal, every RX burst is sorted
 * by class before the stack sees it, stably (within a class, arrival order is kept): the
 * segments of critical connections are processed first — their publishes decoded, routed and
 * their deliveries queued for TX — then normal, then bulk, so under contention a critical
 * client waits for less of the bulk traffic in front of it. Segments the classifier cannot
 * place (not TCP over IPv4, not this worker's, no TCB: SYNs, ARP, ICMP) count as normal. A
 * worker with only normal connections does not classify at all (one branch per burst).
 *
 * Delivery scheduling: when one message goes to many sessions of a worker, MQTT queues it to
 * the critical sessions first, then normal, then bulk, each class in the usual (session key)
 * order (tq_mqtt_route.c), so under mbuf or queue pressure the critical copies are made first.
 * AMQP: a queue's home orders its consumers by x-priority and, between equal ones, by the
 * class of the consumer's connection (critical first; tq_amqp_channel.c consumer_rank), so a
 * critical consumer with room takes the next message before a bulk one does.
 *
 * TX: MQTT and AMQP gather a connection's output in a pending chain that goes to TCP once per
 * loop iteration (or at once past a size threshold); that flush takes the dirty connections
 * critical first, then normal, then bulk, so a critical subscriber's segments reach the TX
 * queue ahead of the bulk ones produced in the same iteration (tq_mqtt_conns_flush,
 * tq_amqp_conns_flush).
 *
 * Counters per class, while the worker has connections of a class other than normal (the
 * only time classes cost anything): prio_rx_* (frames and bytes as sorted) and prio_tx_*
 * (output chains and bytes handed to TCP by the protocols) show the work done for each.
 * Worker only.
 */
#ifndef TQ_PRIO_H
#define TQ_PRIO_H

#include <stdint.h>

#include <rte_mbuf.h>

enum tq_prio {
	TQ_PRIO_NORMAL = 0, /* a zeroed TCB is normal */
	TQ_PRIO_CRITICAL = 1,
	TQ_PRIO_BULK = 2,
};
#define TQ_PRIO_CLASSES 3

struct tq_worker;

/* The class of the connection @m (a frame at its Ethernet header) belongs to. */
enum tq_prio tq_prio_classify(struct tq_worker *w, const struct rte_mbuf *m);

/* Sort @pkts[0..n) by class (critical, normal, bulk), stably, counting per class. */
void tq_prio_sort(struct tq_worker *w, struct rte_mbuf **pkts, uint16_t n);

/* The order classes are served in: critical, normal, bulk. */
extern const uint8_t tq_prio_order[TQ_PRIO_CLASSES];

/* @bytes of a connection of class @p were handed to TCP (one chain): prio_tx_*. Callers
 * count only while w->prio_conns, as the RX side does. */
void tq_prio_tx_count(struct tq_worker *w, uint8_t p, uint32_t bytes);

/* The name of a class ("critical", "normal", "bulk"). */
const char *tq_prio_name(enum tq_prio p);

#endif
