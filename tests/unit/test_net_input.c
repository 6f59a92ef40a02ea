/*
 * The worker's whole input path without a NIC: a net_ring port whose RX ring we fill and
 * whose TX ring we read. Asserts on the frames that leave and on the worker's counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/net/tq_net.h"
#include "dataplane/tq_port.h"
#include "dataplane/tq_worker.h"
#include "tq_test.h"

#define OUR_IP "198.18.0.1"
#define PEER_IP "198.18.0.7"
#define GATEWAY_IP "198.18.0.254"
#define ARP_RETRIES 3

#define ETH_LEN 14
#define IP_OFF ETH_LEN
#define ICMP_OFF (ETH_LEN + 20)
#define MIN_FRAME 60 /* without FCS */

static struct rte_mempool *pool;
static struct rte_ring *rx_ring, *tx_ring;
static uint16_t port;
static struct rte_ether_addr our_mac;
static const struct rte_ether_addr peer_mac = {{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
static const struct rte_ether_addr other_mac = {{0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc}};
static const struct rte_ether_addr bcast_mac = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
static const struct rte_ether_addr zero_mac;

/* The worker of the running test, and the pool's free count when it started. */
static struct tq_worker *w;
static unsigned int pool_start;

static uint32_t
ip_of(const char *s)
{
	return inet_addr(s);
}


static uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put_eth(uint8_t *f, const struct rte_ether_addr *dst, const struct rte_ether_addr *src,
	uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put_be16(f + 12, type);
}

/* A minimum-size ARP frame (padded with a pattern). Returns its length. */
static size_t
make_arp(uint8_t *f, const struct rte_ether_addr *eth_dst, uint16_t op,
	 const struct rte_ether_addr *sha, uint32_t sip, const struct rte_ether_addr *tha,
	 uint32_t tip)
{
	uint8_t *a = f + ETH_LEN;

	memset(f, 0x5a, MIN_FRAME);
	put_eth(f, eth_dst, sha, RTE_ETHER_TYPE_ARP);
	put_be16(a, 1);
	put_be16(a + 2, RTE_ETHER_TYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, op);
	memcpy(a + 8, sha, 6);
	memcpy(a + 14, &sip, 4);
	memcpy(a + 18, tha, 6);
	memcpy(a + 24, &tip, 4);
	return MIN_FRAME;
}

static void
fix_ip_csum(uint8_t *f)
{
	uint8_t *ip = f + IP_OFF;

	put_be16(ip + 10, 0);
	put_be16(ip + 10, (uint16_t)~tq_test_ref_sum(ip, (ip[0] & 0xf) * 4u));
}

static void
fix_icmp_csum(uint8_t *f)
{
	uint8_t *ip = f + IP_OFF;
	unsigned int ihl = (ip[0] & 0xf) * 4u;
	uint8_t *icmp = ip + ihl;

	put_be16(icmp + 2, 0);
	put_be16(icmp + 2, (uint16_t)~tq_test_ref_sum(icmp, get_be16(ip + 2) - ihl));
}

/* An ICMP echo frame with @data_len bytes of pattern data, padded to 60 bytes with 0xee. */
static size_t
make_echo(uint8_t *f, const struct rte_ether_addr *eth_dst, uint32_t src, uint32_t dst,
	  uint8_t type, uint16_t seq, size_t data_len)
{
	uint8_t *ip = f + IP_OFF, *icmp = f + ICMP_OFF;
	size_t len = ICMP_OFF + 8 + data_len;

	memset(f, 0xee, RTE_MAX(len, (size_t)MIN_FRAME));
	put_eth(f, eth_dst, &peer_mac, RTE_ETHER_TYPE_IPV4);
	ip[0] = 0x45;
	ip[1] = 0;
	put_be16(ip + 2, (uint16_t)(20 + 8 + data_len));
	put_be16(ip + 4, 0x4242);
	put_be16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = IPPROTO_ICMP;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	icmp[0] = type;
	icmp[1] = 0;
	put_be16(icmp + 4, 0x1d1d);
	put_be16(icmp + 6, seq);
	for (size_t i = 0; i < data_len; i++)
		icmp[8 + i] = (uint8_t)(i * 13 + 1);
	fix_icmp_csum(f);
	fix_ip_csum(f);
	return RTE_MAX(len, (size_t)MIN_FRAME);
}

static struct rte_mbuf *
mbuf_of(const uint8_t *frame, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	char *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	p = rte_pktmbuf_append(m, (uint16_t)len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memcpy(p, frame, len);
	return m;
}

/* Give @frame to the worker as if received on our port, and send what it queued. */
static void
feed(const uint8_t *frame, size_t len)
{
	tq_net_input(w, port, mbuf_of(frame, len));
	tq_worker_flush(w);
}

/* Take up to @max frames the port sent. */
static unsigned int
take_sent(struct rte_mbuf **out, unsigned int max)
{
	tq_worker_flush(w);
	return rte_ring_dequeue_burst(tx_ring, (void **)out, max, NULL);
}

static void
assert_nothing_sent(void)
{
	struct rte_mbuf *m[8];
	unsigned int n = take_sent(m, 8);

	CU_ASSERT_EQUAL(n, 0);
	rte_pktmbuf_free_bulk(m, n);
}

/* Exactly one frame was sent: return it (the caller frees it), or fail the test. */
static struct rte_mbuf *
take_one(void)
{
	struct rte_mbuf *m[8];
	unsigned int n = take_sent(m, 8);

	if (n != 1) {
		rte_pktmbuf_free_bulk(m, n);
		CU_FAIL_FATAL("expected exactly one frame out");
	}
	CU_ASSERT_EQUAL_FATAL(m[0]->nb_segs, 1);
	return m[0];
}

static uint64_t
drops_total(void)
{
	uint64_t n = 0;

	for (unsigned int id = 1; id < TQ_CTR__COUNT; id++)
		if (tq_counter_is_drop(id))
			n += w->ctr[id];
	return n;
}

static void
worker_begin(void)
{
	struct tq_dp_conf conf;

	if (w) /* a previous test stopped at a fatal assertion */
		tq_worker_destroy(w);
	memset(&conf, 0, sizeof(conf));
	conf.arp_retries = ARP_RETRIES;
	pool_start = rte_mempool_avail_count(pool);
	w = tq_worker_create(0, rte_lcore_id(), pool, &conf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	tq_dp.nb_workers = 1;
	tq_dp.workers[0] = w;
}

/* Nothing left to send, every mbuf back in the pool. */
static void
worker_end(void)
{
	assert_nothing_sent();
	tq_worker_destroy(w);
	w = NULL;
	tq_dp.nb_workers = 0;
	tq_dp.workers[0] = NULL;
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), pool_start);
}

static void
assert_arp(const struct rte_mbuf *m, const struct rte_ether_addr *eth_dst, uint16_t op,
	   const struct rte_ether_addr *sha, uint32_t sip, const struct rte_ether_addr *tha,
	   uint32_t tip)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	const uint8_t *a = f + ETH_LEN;

	CU_ASSERT_EQUAL_FATAL(rte_pktmbuf_data_len(m), ETH_LEN + 28);
	CU_ASSERT_EQUAL(memcmp(f, eth_dst, 6), 0);
	CU_ASSERT_EQUAL(memcmp(f + 6, &our_mac, 6), 0);
	CU_ASSERT_EQUAL(get_be16(f + 12), RTE_ETHER_TYPE_ARP);
	CU_ASSERT_EQUAL(get_be16(a), 1);
	CU_ASSERT_EQUAL(get_be16(a + 2), RTE_ETHER_TYPE_IPV4);
	CU_ASSERT_EQUAL(a[4], 6);
	CU_ASSERT_EQUAL(a[5], 4);
	CU_ASSERT_EQUAL(get_be16(a + 6), op);
	CU_ASSERT_EQUAL(memcmp(a + 8, sha, 6), 0);
	CU_ASSERT_EQUAL(memcmp(a + 14, &sip, 4), 0);
	CU_ASSERT_EQUAL(memcmp(a + 18, tha, 6), 0);
	CU_ASSERT_EQUAL(memcmp(a + 24, &tip, 4), 0);
}

/* The IPv4 header checksum: filled in, or left to the port's offload. */
static void
assert_ip_csum(const struct rte_mbuf *m)
{
	const uint8_t *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, IP_OFF);

	if (tq_ports[port].tx_ipv4_csum) {
		CU_ASSERT(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
		CU_ASSERT(m->ol_flags & RTE_MBUF_F_TX_IPV4);
		CU_ASSERT_EQUAL(m->l2_len, ETH_LEN);
		CU_ASSERT_EQUAL(m->l3_len, 20);
	} else {
		CU_ASSERT_FALSE(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
		CU_ASSERT_EQUAL(tq_test_ref_sum(ip, 20), 0xffff);
	}
}

/* @m is an ICMP echo of @type from us to @dst via @eth_dst, with @icmp_len ICMP bytes. */
static void
assert_echo_out(const struct rte_mbuf *m, const struct rte_ether_addr *eth_dst, uint32_t dst,
		uint8_t type, size_t icmp_len)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	const uint8_t *ip = f + IP_OFF, *icmp = f + ICMP_OFF;
	uint32_t src = ip_of(OUR_IP);

	CU_ASSERT_EQUAL_FATAL(rte_pktmbuf_pkt_len(m), ICMP_OFF + icmp_len); /* no padding */
	CU_ASSERT_EQUAL(memcmp(f, eth_dst, 6), 0);
	CU_ASSERT_EQUAL(memcmp(f + 6, &our_mac, 6), 0);
	CU_ASSERT_EQUAL(get_be16(f + 12), RTE_ETHER_TYPE_IPV4);
	CU_ASSERT_EQUAL(ip[0], 0x45);
	CU_ASSERT_EQUAL(get_be16(ip + 2), 20 + icmp_len);
	CU_ASSERT_EQUAL(get_be16(ip + 6) & 0x3fff, 0); /* not a fragment */
	CU_ASSERT(ip[8] > 1);
	CU_ASSERT_EQUAL(ip[9], IPPROTO_ICMP);
	CU_ASSERT_EQUAL(memcmp(ip + 12, &src, 4), 0);
	CU_ASSERT_EQUAL(memcmp(ip + 16, &dst, 4), 0);
	assert_ip_csum(m);
	CU_ASSERT_EQUAL(icmp[0], type);
	CU_ASSERT_EQUAL(icmp[1], 0);
	CU_ASSERT_EQUAL(tq_test_ref_sum(icmp, icmp_len), 0xffff);
}

/* The peer asks for our address; we answer and learn the peer on the way. */
static void
learn_peer(void)
{
	uint8_t f[MIN_FRAME];
	struct rte_mbuf *m;

	feed(f, make_arp(f, &bcast_mac, 1, &peer_mac, ip_of(PEER_IP), &zero_mac, ip_of(OUR_IP)));
	m = take_one();
	rte_pktmbuf_free(m);
}

static void
test_arp_request_for_us(void)
{
	uint8_t f[MIN_FRAME];
	const struct tq_arp_entry *e;
	struct rte_mbuf *m;

	worker_begin();
	feed(f, make_arp(f, &bcast_mac, 1, &peer_mac, ip_of(PEER_IP), &zero_mac, ip_of(OUR_IP)));
	m = take_one();
	assert_arp(m, &peer_mac, 2, &our_mac, ip_of(OUR_IP), &peer_mac, ip_of(PEER_IP));
	rte_pktmbuf_free(m);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_rx_packets], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_eth_broadcast], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_rx], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_replies_tx], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_learned], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_tx_packets], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_tx_bytes], ETH_LEN + 28);
	CU_ASSERT_EQUAL(w->port_stats[port].tx_packets, 1);
	CU_ASSERT_EQUAL(drops_total(), 0);
	/* the requester is now a neighbour */
	e = tq_arp_cache_lookup(&w->arp, ip_of(PEER_IP));
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->state, TQ_ARP_REACHABLE);
	CU_ASSERT(rte_is_same_ether_addr(&e->mac, &peer_mac));
	/* unicast to us (a refresh probe) is answered the same way */
	feed(f, make_arp(f, &our_mac, 1, &peer_mac, ip_of(PEER_IP), &our_mac, ip_of(OUR_IP)));
	m = take_one();
	assert_arp(m, &peer_mac, 2, &our_mac, ip_of(OUR_IP), &peer_mac, ip_of(PEER_IP));
	rte_pktmbuf_free(m);
	worker_end();
}

/* RFC 826: ARP for someone else only refreshes a neighbour we already have. */
static void
test_arp_for_another_ip(void)
{
	uint8_t f[MIN_FRAME];
	const struct tq_arp_entry *e;

	worker_begin();
	feed(f, make_arp(f, &bcast_mac, 1, &peer_mac, ip_of(PEER_IP), &zero_mac,
			 ip_of("198.18.0.9")));
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_rx], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_not_for_us], 1);
	CU_ASSERT_EQUAL(drops_total(), 1);
	CU_ASSERT_PTR_NULL(tq_arp_cache_lookup(&w->arp, ip_of(PEER_IP)));

	learn_peer();
	/* the peer moved to another MAC and says so while asking for a third host */
	feed(f, make_arp(f, &bcast_mac, 1, &other_mac, ip_of(PEER_IP), &zero_mac,
			 ip_of("198.18.0.9")));
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_not_for_us], 2);
	e = tq_arp_cache_lookup(&w->arp, ip_of(PEER_IP));
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT(rte_is_same_ether_addr(&e->mac, &other_mac));
	CU_ASSERT_EQUAL(w->arp.used, 1);
	worker_end();
}

static void
test_arp_conflict(void)
{
	uint8_t f[MIN_FRAME];

	worker_begin();
	/* gratuitous ARP from another host for our address */
	feed(f, make_arp(f, &bcast_mac, 1, &other_mac, ip_of(OUR_IP), &zero_mac, ip_of(OUR_IP)));
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_conflict], 1);
	/* a reply claiming our address */
	feed(f, make_arp(f, &our_mac, 2, &other_mac, ip_of(OUR_IP), &our_mac, ip_of(OUR_IP)));
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_conflict], 2);
	CU_ASSERT_EQUAL(drops_total(), 2);
	CU_ASSERT_EQUAL(w->arp.used, 0);
	worker_end();
}

/* RFC 5227 probe (sender 0.0.0.0) for our address: answered, nothing learned. */
static void
test_arp_probe(void)
{
	uint8_t f[MIN_FRAME];
	struct rte_mbuf *m;

	worker_begin();
	feed(f, make_arp(f, &bcast_mac, 1, &peer_mac, 0, &zero_mac, ip_of(OUR_IP)));
	m = take_one();
	assert_arp(m, &peer_mac, 2, &our_mac, ip_of(OUR_IP), &peer_mac, 0);
	rte_pktmbuf_free(m);
	CU_ASSERT_EQUAL(w->arp.used, 0);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_learned], 0);
	worker_end();
}

static void
test_arp_reply_learned(void)
{
	uint8_t f[MIN_FRAME];
	const struct tq_arp_entry *e;

	worker_begin();
	feed(f, make_arp(f, &our_mac, 2, &peer_mac, ip_of(PEER_IP), &our_mac, ip_of(OUR_IP)));
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_replies_rx], 1);
	CU_ASSERT_EQUAL(drops_total(), 0);
	e = tq_arp_cache_lookup(&w->arp, ip_of(PEER_IP));
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT(rte_is_same_ether_addr(&e->mac, &peer_mac));
	worker_end();
}

/* Echo requests of several sizes (padded, odd, large) come back as correct replies. */
static void
test_echo_request_replied(void)
{
	static const size_t data_lens[] = {56, 0, 4, 33, 1400};
	static uint8_t f[1500], want_payload[1500];

	worker_begin();
	learn_peer();
	for (size_t i = 0; i < sizeof(data_lens) / sizeof(data_lens[0]); i++) {
		size_t len = make_echo(f, &our_mac, ip_of(PEER_IP), ip_of(OUR_IP), 8,
				       (uint16_t)(i + 1), data_lens[i]);
		const uint8_t *icmp;
		struct rte_mbuf *m;

		memcpy(want_payload, f + ICMP_OFF + 4, 4 + data_lens[i]); /* id, seq, data */
		memset(w->ctr, 0, sizeof(w->ctr));
		feed(f, len);
		m = take_one();
		assert_echo_out(m, &peer_mac, ip_of(PEER_IP), 0, 8 + data_lens[i]);
		icmp = rte_pktmbuf_mtod_offset(m, const uint8_t *, ICMP_OFF);
		CU_ASSERT_EQUAL(memcmp(icmp + 4, want_payload, 4 + data_lens[i]), 0);
		rte_pktmbuf_free(m);
		CU_ASSERT_EQUAL(w->ctr[TQ_CTR_ipv4_rx], 1);
		CU_ASSERT_EQUAL(w->ctr[TQ_CTR_icmp_echo_requests], 1);
		CU_ASSERT_EQUAL(w->ctr[TQ_CTR_icmp_echo_replies_tx], 1);
		CU_ASSERT_EQUAL(w->ctr[TQ_CTR_ipv4_tx], 1);
		CU_ASSERT_EQUAL(w->ctr[TQ_CTR_tx_packets], 1);
		CU_ASSERT_EQUAL(drops_total(), 0);
	}
	worker_end();
}

/* An echo from a host we have no neighbour entry for: ask, hold the reply, send on answer. */
static void
test_echo_from_unknown_neighbour(void)
{
	uint8_t f[MIN_FRAME + 64];
	struct rte_mbuf *m;

	worker_begin();
	feed(f, make_echo(f, &our_mac, ip_of(PEER_IP), ip_of(OUR_IP), 8, 7, 56));
	m = take_one();
	assert_arp(m, &bcast_mac, 1, &our_mac, ip_of(OUR_IP), &zero_mac, ip_of(PEER_IP));
	rte_pktmbuf_free(m);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_tx], 1);
	feed(f, make_arp(f, &our_mac, 2, &peer_mac, ip_of(PEER_IP), &our_mac, ip_of(OUR_IP)));
	m = take_one();
	assert_echo_out(m, &peer_mac, ip_of(PEER_IP), 0, 8 + 56);
	rte_pktmbuf_free(m);
	CU_ASSERT_EQUAL(drops_total(), 0);
	worker_end();
}

static void
test_eth_filters(void)
{
	static const struct rte_ether_addr mcast = {{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
	uint8_t f[MIN_FRAME + 64];

	worker_begin();
	learn_peer();
	feed(f, make_echo(f, &other_mac, ip_of(PEER_IP), ip_of(OUR_IP), 8, 1, 56));
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_eth_not_for_us], 1);
	feed(f, make_echo(f, &mcast, ip_of(PEER_IP), ip_of(OUR_IP), 8, 1, 56));
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_eth_multicast], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_icmp_echo_requests], 0);
	CU_ASSERT_EQUAL(drops_total(), 2);
	worker_end();
}

/* 1000 broadcast ARP requests for other hosts through the RX ring: counted, none answered. */
static void
test_broadcast_storm(void)
{
	enum { STORM = 1000 };
	unsigned int fed = 0;

	worker_begin();
	while (fed < STORM) {
		struct rte_mbuf *batch[50];

		for (unsigned int i = 0; i < RTE_DIM(batch); i++, fed++) {
			uint8_t f[MIN_FRAME];
			uint32_t sip = htonl(0xc6120000u | (2 + fed % 200));
			uint32_t tip = htonl(0xc6120000u | (2 + (fed * 7 + 3) % 250));
			struct rte_ether_addr sha = peer_mac;

			sha.addr_bytes[5] = (uint8_t)fed;
			make_arp(f, &bcast_mac, 1, &sha, sip, &zero_mac, tip);
			batch[i] = mbuf_of(f, sizeof(f));
		}
		CU_ASSERT_EQUAL_FATAL(rte_ring_enqueue_bulk(rx_ring, (void **)batch, RTE_DIM(batch),
							    NULL), RTE_DIM(batch));
		while (rte_ring_count(rx_ring) > 0)
			tq_worker_poll_once(w);
	}
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_rx_packets], STORM);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_eth_broadcast], STORM);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_rx], STORM);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_not_for_us], STORM);
	CU_ASSERT_EQUAL(drops_total(), STORM);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_replies_tx], 0);
	CU_ASSERT_EQUAL(w->port_stats[port].tx_packets, 0);
	CU_ASSERT_EQUAL(w->arp.used, 0);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), pool_start);
	worker_end();
}

/* Malformed frames: each drops with its own counter and nothing goes out. */
enum base { ECHO, ARP };

struct edit {
	uint8_t off;
	uint8_t val;
};

struct malformed {
	const char *what;
	enum base base;
	size_t len; /* 0: the base frame's length */
	bool fix_icmp, fix_ip;
	unsigned int ctr;
	struct edit edits[6];
};

static const struct malformed malformed[] = {
	{"runt", ECHO, 13, 0, 0, TQ_CTR_eth_truncated, {{0}}},
	{"802.1Q", ECHO, 0, 0, 0, TQ_CTR_eth_vlan, {{12, 0x81}, {13, 0x00}}},
	{"802.1ad", ECHO, 0, 0, 0, TQ_CTR_eth_vlan, {{12, 0x88}, {13, 0xa8}}},
	{"IPv6", ECHO, 0, 0, 0, TQ_CTR_eth_unknown_type, {{12, 0x86}, {13, 0xdd}}},
	{"ARP truncated", ARP, ETH_LEN + 27, 0, 0, TQ_CTR_arp_truncated, {{0}}},
	{"ARP htype", ARP, 0, 0, 0, TQ_CTR_arp_bad_format, {{15, 6}}},
	{"ARP ptype", ARP, 0, 0, 0, TQ_CTR_arp_bad_format, {{16, 0x86}, {17, 0xdd}}},
	{"ARP hlen", ARP, 0, 0, 0, TQ_CTR_arp_bad_format, {{18, 8}}},
	{"ARP plen", ARP, 0, 0, 0, TQ_CTR_arp_bad_format, {{19, 16}}},
	{"ARP op", ARP, 0, 0, 0, TQ_CTR_arp_bad_op, {{21, 3}}},
	{"ARP multicast sender", ARP, 0, 0, 0, TQ_CTR_arp_bad_sender, {{22, 0x01}}},
	{"ARP zero sender", ARP, 0, 0, 0, TQ_CTR_arp_bad_sender,
	 {{22, 0}, {23, 0}, {24, 0}, {25, 0}, {26, 0}, {27, 0}}},
	{"IPv4 truncated", ECHO, ETH_LEN + 19, 0, 0, TQ_CTR_ipv4_truncated, {{0}}},
	{"IPv6 in IPv4 type", ECHO, 0, 0, 1, TQ_CTR_ipv4_bad_version, {{14, 0x65}}},
	{"IHL 4", ECHO, 0, 0, 0, TQ_CTR_ipv4_bad_ihl, {{14, 0x44}}},
	{"total > frame", ECHO, 0, 0, 1, TQ_CTR_ipv4_bad_total_len, {{16, 0x05}, {17, 0xdc}}},
	{"total < header", ECHO, 0, 0, 1, TQ_CTR_ipv4_bad_total_len, {{16, 0}, {17, 16}}},
	{"IPv4 checksum", ECHO, 0, 0, 0, TQ_CTR_ipv4_bad_checksum, {{22, 1}}},
	{"MF", ECHO, 0, 0, 1, TQ_CTR_ipv4_fragment, {{20, 0x20}}},
	{"offset", ECHO, 0, 0, 1, TQ_CTR_ipv4_fragment, {{20, 0x00}, {21, 0xb9}}},
	{"options", ECHO, 0, 0, 1, TQ_CTR_ipv4_options, {{14, 0x46}}},
	{"loopback src", ECHO, 0, 1, 1, TQ_CTR_ipv4_bad_src,
	 {{26, 127}, {27, 0}, {28, 0}, {29, 1}}},
	{"multicast src", ECHO, 0, 1, 1, TQ_CTR_ipv4_bad_src, {{26, 224}, {29, 5}}},
	{"other dst", ECHO, 0, 1, 1, TQ_CTR_ipv4_not_for_us, {{33, 2}}},
	{"UDP", ECHO, 0, 0, 1, TQ_CTR_ipv4_unknown_proto, {{23, 17}}},
	{"ICMP truncated", ECHO, 0, 0, 1, TQ_CTR_icmp_truncated, {{16, 0}, {17, 24}}},
	{"ICMP checksum", ECHO, 0, 0, 0, TQ_CTR_icmp_bad_checksum, {{42, 0x55}}},
	{"ICMP timestamp", ECHO, 0, 1, 0, TQ_CTR_icmp_unhandled_type, {{34, 13}}},
};

static size_t
make_base(uint8_t *f, enum base base)
{
	if (base == ARP)
		return make_arp(f, &bcast_mac, 1, &peer_mac, ip_of(PEER_IP), &zero_mac,
				ip_of(OUR_IP));
	return make_echo(f, &our_mac, ip_of(PEER_IP), ip_of(OUR_IP), 8, 1, 56);
}

static void
test_malformed_frames(void)
{
	uint8_t f[MIN_FRAME + 64];

	worker_begin();
	learn_peer();
	/* the unedited bases are answered: the edits alone cause the drops below */
	feed(f, make_base(f, ECHO));
	rte_pktmbuf_free(take_one());
	feed(f, make_base(f, ARP));
	rte_pktmbuf_free(take_one());
	CU_ASSERT_EQUAL_FATAL(drops_total(), 0);

	for (size_t i = 0; i < RTE_DIM(malformed); i++) {
		const struct malformed *c = &malformed[i];
		size_t len = make_base(f, c->base);

		for (size_t k = 0; k < RTE_DIM(c->edits) && c->edits[k].off; k++)
			f[c->edits[k].off] = c->edits[k].val;
		if (c->fix_icmp)
			fix_icmp_csum(f);
		if (c->fix_ip)
			fix_ip_csum(f);
		memset(w->ctr, 0, sizeof(w->ctr));
		feed(f, c->len ? c->len : len);
		if (w->ctr[c->ctr] != 1 || drops_total() != 1)
			fprintf(stderr, "\n  %s: %s = %" PRIu64 ", drops %" PRIu64 "\n", c->what,
				tq_counter_name(c->ctr), w->ctr[c->ctr], drops_total());
		CU_ASSERT_EQUAL(w->ctr[c->ctr], 1);
		CU_ASSERT_EQUAL(drops_total(), 1);
		CU_ASSERT_EQUAL(w->ctr[TQ_CTR_rx_packets], 1);
		assert_nothing_sent();
	}
	worker_end();
}

/* Frames in several segments are not taken (yet): counted and freed, every segment. */
static void
test_multiseg_dropped(void)
{
	uint8_t f[MIN_FRAME + 64];
	size_t len;
	struct rte_mbuf *head, *tail;

	worker_begin();
	len = make_base(f, ECHO);
	head = mbuf_of(f, 40);
	tail = mbuf_of(f + 40, len - 40);
	CU_ASSERT_EQUAL_FATAL(rte_pktmbuf_chain(head, tail), 0);
	tq_net_input(w, port, head);
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_rx_multiseg], 1);
	CU_ASSERT_EQUAL(drops_total(), 1);
	worker_end();
}

/* The NIC's RX checksum verdict is trusted both ways. */
static void
test_rx_checksum_flags(void)
{
	uint8_t f[MIN_FRAME + 64];
	struct rte_mbuf *m;
	size_t len;

	worker_begin();
	learn_peer();
	len = make_base(f, ECHO);
	m = mbuf_of(f, len);
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD;
	tq_net_input(w, port, m);
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_ipv4_bad_checksum], 1);

	f[IP_OFF + 10] ^= 0xff; /* wrong, but the NIC says it checked and found it good */
	m = mbuf_of(f, len);
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	tq_net_input(w, port, m);
	m = take_one();
	assert_echo_out(m, &peer_mac, ip_of(PEER_IP), 0, 8 + 56);
	rte_pktmbuf_free(m);
	worker_end();
}

/* An echo reply from a stranger is counted and dropped: no ARP, no neighbour entry. */
static void
test_echo_reply_from_stranger(void)
{
	uint8_t f[MIN_FRAME + 64];

	worker_begin();
	feed(f, make_echo(f, &our_mac, ip_of(PEER_IP), ip_of(OUR_IP), 0, 1, 56));
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_icmp_echo_replies_rx], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_tx], 0);
	CU_ASSERT_EQUAL(w->arp.used, 0);
	CU_ASSERT_EQUAL(drops_total(), 0);
	worker_end();
}

/* Our own ping to an unresolved neighbour: ARP first, the echo leaves with the answer. */
static void
test_send_echo_resolves(void)
{
	uint8_t f[MIN_FRAME];
	const struct tq_arp_entry *e;
	const uint8_t *icmp;
	struct rte_mbuf *m;

	worker_begin();
	tq_icmp_send_echo(w, ip_of(PEER_IP), 5);
	m = take_one();
	assert_arp(m, &bcast_mac, 1, &our_mac, ip_of(OUR_IP), &zero_mac, ip_of(PEER_IP));
	rte_pktmbuf_free(m);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_tx], 1);
	e = tq_arp_cache_lookup(&w->arp, ip_of(PEER_IP));
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->state, TQ_ARP_INCOMPLETE);
	CU_ASSERT_PTR_NOT_NULL(e->hold);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), pool_start - 1);

	feed(f, make_arp(f, &our_mac, 2, &peer_mac, ip_of(PEER_IP), &our_mac, ip_of(OUR_IP)));
	m = take_one();
	assert_echo_out(m, &peer_mac, ip_of(PEER_IP), 8, 8 + 56);
	icmp = rte_pktmbuf_mtod_offset(m, const uint8_t *, ICMP_OFF);
	CU_ASSERT_EQUAL(get_be16(icmp + 4), w->ping_id);
	CU_ASSERT_EQUAL(get_be16(icmp + 6), 5);
	rte_pktmbuf_free(m);
	CU_ASSERT_PTR_NULL(e->hold);
	CU_ASSERT_EQUAL(e->state, TQ_ARP_REACHABLE);
	/* now resolved: the next ping leaves at once */
	tq_icmp_send_echo(w, ip_of(PEER_IP), 6);
	m = take_one();
	assert_echo_out(m, &peer_mac, ip_of(PEER_IP), 8, 8 + 56);
	rte_pktmbuf_free(m);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_tx], 1);
	CU_ASSERT_EQUAL(drops_total(), 0);
	worker_end();
}

/* Nobody answers: a request per retry interval, then the held packet is dropped. */
static void
test_send_echo_resolve_fails(void)
{
	struct tq_arp_entry *e;
	struct rte_mbuf *m;

	worker_begin();
	tq_icmp_send_echo(w, ip_of(PEER_IP), 1);
	rte_pktmbuf_free(take_one());
	for (unsigned int sent = 1; sent < ARP_RETRIES; sent++) {
		e = tq_arp_cache_lookup(&w->arp, ip_of(PEER_IP));
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		w->now = e->expire_tsc - 1; /* not yet */
		tq_arp_age(w);
		assert_nothing_sent();
		w->now = e->expire_tsc;
		tq_arp_age(w);
		m = take_one();
		assert_arp(m, &bcast_mac, 1, &our_mac, ip_of(OUR_IP), &zero_mac, ip_of(PEER_IP));
		rte_pktmbuf_free(m);
	}
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_tx], ARP_RETRIES);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_resolve_failed], 0);
	e = tq_arp_cache_lookup(&w->arp, ip_of(PEER_IP));
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	w->now = e->expire_tsc;
	tq_arp_age(w);
	assert_nothing_sent();
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_resolve_failed], 1);
	CU_ASSERT_PTR_NULL(tq_arp_cache_lookup(&w->arp, ip_of(PEER_IP)));
	CU_ASSERT_EQUAL(w->arp.used, 0);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), pool_start); /* the hold was freed */
	worker_end();
}

/* One packet waits per neighbour: a newer one replaces it, and only one ARP goes out. */
static void
test_send_echo_hold_replaced(void)
{
	uint8_t f[MIN_FRAME];
	const uint8_t *icmp;
	struct rte_mbuf *m;

	worker_begin();
	tq_icmp_send_echo(w, ip_of(PEER_IP), 1);
	tq_icmp_send_echo(w, ip_of(PEER_IP), 2);
	rte_pktmbuf_free(take_one());
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_requests_tx], 1);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_arp_hold_replaced], 1);
	feed(f, make_arp(f, &our_mac, 2, &peer_mac, ip_of(PEER_IP), &our_mac, ip_of(OUR_IP)));
	m = take_one();
	icmp = rte_pktmbuf_mtod_offset(m, const uint8_t *, ICMP_OFF);
	CU_ASSERT_EQUAL(get_be16(icmp + 6), 2);
	rte_pktmbuf_free(m);
	worker_end();
}

/* Off-subnet destinations go to the gateway's MAC. */
static void
test_send_echo_via_gateway(void)
{
	static const struct rte_ether_addr gw_mac = {{0x52, 0x54, 0x00, 0x00, 0x00, 0xfe}};
	uint8_t f[MIN_FRAME];
	struct rte_mbuf *m;

	worker_begin();
	tq_icmp_send_echo(w, ip_of("203.0.113.5"), 1);
	m = take_one();
	assert_arp(m, &bcast_mac, 1, &our_mac, ip_of(OUR_IP), &zero_mac, ip_of(GATEWAY_IP));
	rte_pktmbuf_free(m);
	feed(f, make_arp(f, &our_mac, 2, &gw_mac, ip_of(GATEWAY_IP), &our_mac, ip_of(OUR_IP)));
	m = take_one();
	assert_echo_out(m, &gw_mac, ip_of("203.0.113.5"), 8, 8 + 56);
	rte_pktmbuf_free(m);
	worker_end();
}

/* One ring port with our address, set up the way tachyond sets up every port. */
static int
setup_port(void)
{
	struct tq_port_conf conf[TQ_MAX_PORTS];
	struct rte_mempool *pools[1];
	int ret;

	pool = rte_pktmbuf_pool_create("tq_test_net", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	rx_ring = rte_ring_create("tq_test_rx", 1024, (int)rte_socket_id(), 0);
	tx_ring = rte_ring_create("tq_test_tx", 1024, (int)rte_socket_id(), 0);
	if (!pool || !rx_ring || !tx_ring)
		return -1;
	ret = rte_eth_from_rings("net_ring_tq_test", &rx_ring, 1, &tx_ring, 1,
				 rte_socket_id());
	if (ret < 0)
		return ret;
	port = (uint16_t)ret;
	memset(conf, 0, sizeof(conf));
	conf[port].ipv4 = ip_of(OUR_IP);
	conf[port].prefix_len = 24;
	conf[port].gateway = ip_of(GATEWAY_IP);
	pools[0] = pool;
	ret = tq_port_setup_all(1, pools, conf, 64, 64);
	if (ret)
		return ret;
	if (!tq_ports[port].up || tq_ports[port].ipv4 != ip_of(OUR_IP))
		return -1;
	our_mac = tq_ports[port].mac;
	if (!rte_is_unicast_ether_addr(&our_mac) || rte_is_zero_ether_addr(&our_mac)) {
		/* the ring PMD's address is not a usable unicast one: give the port its own */
		static const struct rte_ether_addr own = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

		our_mac = own;
		tq_ports[port].mac = own;
	}
	return 0;
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_arp_request_for_us),
		TQ_TEST(test_arp_for_another_ip),
		TQ_TEST(test_arp_conflict),
		TQ_TEST(test_arp_probe),
		TQ_TEST(test_arp_reply_learned),
		TQ_TEST(test_echo_request_replied),
		TQ_TEST(test_echo_from_unknown_neighbour),
		TQ_TEST(test_eth_filters),
		TQ_TEST(test_broadcast_storm),
		TQ_TEST(test_malformed_frames),
		TQ_TEST(test_multiseg_dropped),
		TQ_TEST(test_rx_checksum_flags),
		TQ_TEST(test_echo_reply_from_stranger),
		TQ_TEST(test_send_echo_resolves),
		TQ_TEST(test_send_echo_resolve_fails),
		TQ_TEST(test_send_echo_hold_replaced),
		TQ_TEST(test_send_echo_via_gateway),
	};
	int rc;

	if (tq_test_eal_init() < 0 || setup_port() < 0) {
		fprintf(stderr, "test_net_input: EAL or ring port setup failed\n");
		return EXIT_FAILURE;
	}
	if (CU_initialize_registry() != CUE_SUCCESS ||
	    TQ_SUITE("net_input", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	rc = tq_test_run();
	if (w)
		tq_worker_destroy(w);
	tq_port_close_all();
	rte_ring_free(rx_ring);
	rte_ring_free(tx_ring);
	rte_mempool_free(pool);
	rte_eal_cleanup();
	return rc;
}
