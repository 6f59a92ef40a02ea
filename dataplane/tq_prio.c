#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>

#include "dataplane/net/tq_tcp_var.h"
#include "dataplane/tq_prio.h"
#include "dataplane/tq_worker.h"

const uint8_t tq_prio_order[TQ_PRIO_CLASSES] = {TQ_PRIO_CRITICAL, TQ_PRIO_NORMAL, TQ_PRIO_BULK};

enum tq_prio
tq_prio_classify(struct tq_worker *w, const struct rte_mbuf *m)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m), ihl;
	struct tq_tcp_key key;
	struct tq_tcp_conn *c;

	/* Ethernet (no VLAN), IPv4, TCP: just enough to name the connection */
	if (len < RTE_ETHER_HDR_LEN + 20 || p[12] != 0x08 || p[13] != 0x00)
		return TQ_PRIO_NORMAL;
	p += RTE_ETHER_HDR_LEN;
	len -= RTE_ETHER_HDR_LEN;
	ihl = (uint32_t)(p[0] & 0x0f) * 4;
	if ((p[0] >> 4) != 4 || ihl < 20 || p[9] != 6 || len < ihl + 4)
		return TQ_PRIO_NORMAL;
	memcpy(&key.raddr, p + 12, 4);
	memcpy(&key.laddr, p + 16, 4);
	memcpy(&key.rport, p + ihl, 2);
	memcpy(&key.lport, p + ihl + 2, 2);
	if (tq_tcp_owner(&key, tq_dp.nb_workers) != w->id)
		return TQ_PRIO_NORMAL; /* forwarded to its owner, which sorts it there */
	c = tq_tcp_lookup(w, &key);
	return c ? (enum tq_prio)c->prio : TQ_PRIO_NORMAL;
}

void
tq_prio_sort(struct tq_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	static const unsigned int ctr_pkts[TQ_PRIO_CLASSES] = {
		TQ_CTR_prio_rx_normal, TQ_CTR_prio_rx_critical, TQ_CTR_prio_rx_bulk};
	static const unsigned int ctr_bytes[TQ_PRIO_CLASSES] = {
		TQ_CTR_prio_rx_normal_bytes, TQ_CTR_prio_rx_critical_bytes,
		TQ_CTR_prio_rx_bulk_bytes};
	struct rte_mbuf *tmp[TQ_BURST_MAX];
	uint8_t cls[TQ_BURST_MAX];
	uint16_t k = 0;

	for (uint16_t i = 0; i < n; i++) {
		cls[i] = (uint8_t)tq_prio_classify(w, pkts[i]);
		w->ctr[ctr_pkts[cls[i]]]++;
		w->ctr[ctr_bytes[cls[i]]] += rte_pktmbuf_pkt_len(pkts[i]);
	}
	for (unsigned int o = 0; o < TQ_PRIO_CLASSES; o++)
		for (uint16_t i = 0; i < n; i++)
			if (cls[i] == tq_prio_order[o])
				tmp[k++] = pkts[i];
	memcpy(pkts, tmp, (size_t)n * sizeof(*pkts));
}

void
tq_prio_tx_count(struct tq_worker *w, uint8_t p, uint32_t bytes)
{
	static const unsigned int ctr_chains[TQ_PRIO_CLASSES] = {
		TQ_CTR_prio_tx_normal, TQ_CTR_prio_tx_critical, TQ_CTR_prio_tx_bulk};
	static const unsigned int ctr_bytes[TQ_PRIO_CLASSES] = {
		TQ_CTR_prio_tx_normal_bytes, TQ_CTR_prio_tx_critical_bytes,
		TQ_CTR_prio_tx_bulk_bytes};

	if (p >= TQ_PRIO_CLASSES)
		p = TQ_PRIO_NORMAL;
	w->ctr[ctr_chains[p]]++;
	w->ctr[ctr_bytes[p]] += bytes;
}

const char *
tq_prio_name(enum tq_prio p)
{
	return p == TQ_PRIO_CRITICAL ? "critical" : p == TQ_PRIO_BULK ? "bulk" : "normal";
}
