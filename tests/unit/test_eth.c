/* tq_eth: Ethernet II header parse, accept and build; every input against a guard page. */
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/tq_eth.h"
#include "dataplane/tq_counters.h"
#include "tq_test.h"

static const struct rte_ether_addr ours = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
static const struct rte_ether_addr peer = {{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

/* A 60-byte frame (minimum size, padded) from peer to ours with @ethertype. */
static void
make_frame(uint8_t *f, const struct rte_ether_addr *dst, uint16_t ethertype)
{
	memset(f, 0xa5, 60);
	memcpy(f, dst, 6);
	memcpy(f + 6, &peer, 6);
	f[12] = (uint8_t)(ethertype >> 8);
	f[13] = (uint8_t)ethertype;
}

static int
parse_guarded(const uint8_t *data, size_t len, struct tq_eth_view *v)
{
	uint8_t *g = tq_test_guarded(data, len);
	int rc = tq_eth_parse(g, len, v);

	tq_test_guard_free(g, len);
	return rc;
}

static void
test_parse_valid_frames(void)
{
	static const uint16_t types[] = {RTE_ETHER_TYPE_IPV4, RTE_ETHER_TYPE_ARP,
					 RTE_ETHER_TYPE_IPV6, 0x0600, 0xffff};
	uint8_t f[60];

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct tq_eth_view v;

		make_frame(f, &ours, types[i]);
		memset(&v, 0, sizeof(v));
		CU_ASSERT_EQUAL(parse_guarded(f, sizeof(f), &v), TQ_ETH_HDR_LEN);
		CU_ASSERT(rte_is_same_ether_addr(&v.dst, &ours));
		CU_ASSERT(rte_is_same_ether_addr(&v.src, &peer));
		CU_ASSERT_EQUAL(v.ethertype, types[i]);
		/* exactly a header, nothing after it, is a valid frame too */
		CU_ASSERT_EQUAL(parse_guarded(f, TQ_ETH_HDR_LEN, &v), TQ_ETH_HDR_LEN);
	}
}

/* Every prefix shorter than the header is truncated; the parse never succeeds early. */
static void
test_parse_every_prefix(void)
{
	uint8_t f[60];

	make_frame(f, &ours, RTE_ETHER_TYPE_IPV4);
	for (size_t len = 0; len <= sizeof(f); len++) {
		struct tq_eth_view v;
		int want = len < TQ_ETH_HDR_LEN ? -TQ_CTR_eth_truncated : TQ_ETH_HDR_LEN;

		CU_ASSERT_EQUAL(parse_guarded(f, len, &v), want);
	}
}

static void
test_parse_vlan_and_qinq(void)
{
	uint8_t f[60];
	struct tq_eth_view v;

	make_frame(f, &ours, RTE_ETHER_TYPE_VLAN);
	CU_ASSERT_EQUAL(parse_guarded(f, sizeof(f), &v), -TQ_CTR_eth_vlan);
	make_frame(f, &ours, RTE_ETHER_TYPE_QINQ);
	CU_ASSERT_EQUAL(parse_guarded(f, sizeof(f), &v), -TQ_CTR_eth_vlan);
	/* a tag with nothing after the TPID is still a VLAN frame, not a truncated one */
	CU_ASSERT_EQUAL(parse_guarded(f, TQ_ETH_HDR_LEN, &v), -TQ_CTR_eth_vlan);
}

static void
test_accept(void)
{
	static const struct {
		struct rte_ether_addr dst;
		int want;
	} cases[] = {
		{{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}}, 0},                       /* ours */
		{{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, 0},                       /* broadcast */
		{{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}}, -TQ_CTR_eth_multicast},   /* IPv4 mcast */
		{{{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}}, -TQ_CTR_eth_multicast},   /* IPv6 mcast */
		{{{0x03, 0x00, 0x00, 0x00, 0x00, 0x01}}, -TQ_CTR_eth_multicast},   /* ours | I/G */
		{{{0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}}, -TQ_CTR_eth_multicast},   /* near bcast */
		{{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}}, -TQ_CTR_eth_not_for_us},  /* last byte */
		{{{0x06, 0x00, 0x00, 0x00, 0x00, 0x01}}, -TQ_CTR_eth_not_for_us},  /* first byte */
		{{{0x00, 0x00, 0x00, 0x00, 0x00, 0x00}}, -TQ_CTR_eth_not_for_us},  /* zero */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t f[60];
		struct tq_eth_view v;

		make_frame(f, &cases[i].dst, RTE_ETHER_TYPE_IPV4);
		CU_ASSERT_EQUAL_FATAL(parse_guarded(f, sizeof(f), &v), TQ_ETH_HDR_LEN);
		CU_ASSERT_EQUAL(tq_eth_accept(&v, &ours), cases[i].want);
	}
}

static void
test_build_parse_round_trip(void)
{
	uint8_t f[TQ_ETH_HDR_LEN + 2];
	struct tq_eth_view v;

	memset(f, 0xee, sizeof(f));
	tq_eth_build(f, &peer, &ours, RTE_ETHER_TYPE_ARP);
	CU_ASSERT_EQUAL(f[12], 0x08);
	CU_ASSERT_EQUAL(f[13], 0x06);
	CU_ASSERT_EQUAL(f[14], 0xee); /* writes the header and nothing else */
	CU_ASSERT_EQUAL_FATAL(parse_guarded(f, TQ_ETH_HDR_LEN, &v), TQ_ETH_HDR_LEN);
	CU_ASSERT(rte_is_same_ether_addr(&v.dst, &peer));
	CU_ASSERT(rte_is_same_ether_addr(&v.src, &ours));
	CU_ASSERT_EQUAL(v.ethertype, RTE_ETHER_TYPE_ARP);

	/* a reply header built over the request: dst taken from the frame's own src field */
	tq_eth_build(f, (const struct rte_ether_addr *)(f + 6), &peer, RTE_ETHER_TYPE_IPV4);
	CU_ASSERT_EQUAL_FATAL(parse_guarded(f, TQ_ETH_HDR_LEN, &v), TQ_ETH_HDR_LEN);
	CU_ASSERT(rte_is_same_ether_addr(&v.dst, &ours));
	CU_ASSERT(rte_is_same_ether_addr(&v.src, &peer));
	CU_ASSERT_EQUAL(v.ethertype, RTE_ETHER_TYPE_IPV4);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_parse_valid_frames),
		TQ_TEST(test_parse_every_prefix),
		TQ_TEST(test_parse_vlan_and_qinq),
		TQ_TEST(test_accept),
		TQ_TEST(test_build_parse_round_trip),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("eth", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
