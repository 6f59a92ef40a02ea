/* tq_arp: Ethernet/IPv4 ARP parse and build; every input against a guard page. */
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "dataplane/net/tq_arp.h"
#include "dataplane/tq_counters.h"
#include "tq_test.h"

static const struct rte_ether_addr ours = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
static const struct rte_ether_addr peer = {{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

/* An ARP body written byte by byte from RFC 826, independent of tq_arp_build(). */
static void
make_arp(uint8_t *b, uint16_t op, const struct rte_ether_addr *sha, const char *sip,
	 const struct rte_ether_addr *tha, const char *tip)
{
	uint32_t s = inet_addr(sip), t = inet_addr(tip);

	b[0] = 0x00, b[1] = 0x01; /* htype Ethernet */
	b[2] = 0x08, b[3] = 0x00; /* ptype IPv4 */
	b[4] = 6, b[5] = 4;
	b[6] = (uint8_t)(op >> 8), b[7] = (uint8_t)op;
	memcpy(b + 8, sha, 6);
	memcpy(b + 14, &s, 4);
	memcpy(b + 18, tha, 6);
	memcpy(b + 24, &t, 4);
}

static int
parse_guarded(const uint8_t *data, size_t len, struct tq_arp_view *v)
{
	uint8_t *g = tq_test_guarded(data, len);
	int rc = tq_arp_parse(g, len, v);

	tq_test_guard_free(g, len);
	return rc;
}

static void
test_parse_request_and_reply(void)
{
	static const struct rte_ether_addr zero;
	uint8_t b[46]; /* the ARP body of a minimum-size frame, with Ethernet padding */
	struct tq_arp_view v;

	memset(b, 0x5a, sizeof(b));
	make_arp(b, TQ_ARP_OP_REQUEST, &peer, "198.18.0.7", &zero, "198.18.0.1");
	CU_ASSERT_EQUAL(parse_guarded(b, TQ_ARP_LEN, &v), TQ_ARP_LEN);
	CU_ASSERT_EQUAL(parse_guarded(b, sizeof(b), &v), TQ_ARP_LEN);
	CU_ASSERT_EQUAL(v.op, TQ_ARP_OP_REQUEST);
	CU_ASSERT(rte_is_same_ether_addr(&v.sha, &peer));
	CU_ASSERT(rte_is_zero_ether_addr(&v.tha));
	CU_ASSERT_EQUAL(v.sip, inet_addr("198.18.0.7"));
	CU_ASSERT_EQUAL(v.tip, inet_addr("198.18.0.1"));

	make_arp(b, TQ_ARP_OP_REPLY, &peer, "198.18.0.7", &ours, "198.18.0.1");
	CU_ASSERT_EQUAL(parse_guarded(b, TQ_ARP_LEN, &v), TQ_ARP_LEN);
	CU_ASSERT_EQUAL(v.op, TQ_ARP_OP_REPLY);
	CU_ASSERT(rte_is_same_ether_addr(&v.tha, &ours));

	/* a locally administered unicast sender is a valid sender */
	make_arp(b, TQ_ARP_OP_REQUEST, &ours, "198.18.0.9", &zero, "198.18.0.1");
	CU_ASSERT_EQUAL(parse_guarded(b, TQ_ARP_LEN, &v), TQ_ARP_LEN);
}

static void
test_parse_every_prefix(void)
{
	static const struct rte_ether_addr zero;
	uint8_t b[TQ_ARP_LEN];

	make_arp(b, TQ_ARP_OP_REQUEST, &peer, "198.18.0.7", &zero, "198.18.0.1");
	for (size_t len = 0; len < TQ_ARP_LEN; len++) {
		struct tq_arp_view v;

		CU_ASSERT_EQUAL(parse_guarded(b, len, &v), -TQ_CTR_arp_truncated);
	}
	/* truncation is reported before any other defect */
	b[0] = 0xff;
	b[7] = 9;
	for (size_t len = 0; len < TQ_ARP_LEN; len++) {
		struct tq_arp_view v;

		CU_ASSERT_EQUAL(parse_guarded(b, len, &v), -TQ_CTR_arp_truncated);
	}
}

static void
test_parse_bad_format(void)
{
	static const struct {
		size_t off;
		uint8_t val;
	} cases[] = {
		{0, 0x01},  /* htype 0x0101 */
		{1, 0x06},  /* htype 6 (IEEE 802) */
		{1, 0x00},  /* htype 0 */
		{2, 0x86},  /* ptype 0x86dd (IPv6) */
		{3, 0x06},  /* ptype 0x0806 */
		{4, 16},    /* hlen */
		{4, 0},
		{5, 16},    /* plen */
		{5, 0},
	};
	static const struct rte_ether_addr zero;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t b[TQ_ARP_LEN];
		struct tq_arp_view v;

		make_arp(b, TQ_ARP_OP_REQUEST, &peer, "198.18.0.7", &zero, "198.18.0.1");
		b[cases[i].off] = cases[i].val;
		CU_ASSERT_EQUAL(parse_guarded(b, sizeof(b), &v), -TQ_CTR_arp_bad_format);
		/* the format is checked before the operation */
		b[7] = 7;
		CU_ASSERT_EQUAL(parse_guarded(b, sizeof(b), &v), -TQ_CTR_arp_bad_format);
	}
}

static void
test_parse_bad_op(void)
{
	static const uint16_t ops[] = {0, 3, 4, 8, 0x0101, 0x0201, 0xffff};
	static const struct rte_ether_addr zero;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		uint8_t b[TQ_ARP_LEN];
		struct tq_arp_view v;

		make_arp(b, ops[i], &peer, "198.18.0.7", &zero, "198.18.0.1");
		CU_ASSERT_EQUAL(parse_guarded(b, sizeof(b), &v), -TQ_CTR_arp_bad_op);
	}
}

static void
test_parse_bad_sender(void)
{
	static const struct rte_ether_addr senders[] = {
		{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, /* broadcast */
		{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}}, /* multicast */
		{{0x53, 0x54, 0x00, 0x12, 0x34, 0x56}}, /* peer with the I/G bit */
		{{0x00, 0x00, 0x00, 0x00, 0x00, 0x00}}, /* zero */
	};
	static const struct rte_ether_addr zero;

	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		uint8_t b[TQ_ARP_LEN];
		struct tq_arp_view v;

		make_arp(b, TQ_ARP_OP_REQUEST, &senders[i], "198.18.0.7", &zero, "198.18.0.1");
		CU_ASSERT_EQUAL(parse_guarded(b, sizeof(b), &v), -TQ_CTR_arp_bad_sender);
		make_arp(b, TQ_ARP_OP_REPLY, &senders[i], "198.18.0.7", &ours, "198.18.0.1");
		CU_ASSERT_EQUAL(parse_guarded(b, sizeof(b), &v), -TQ_CTR_arp_bad_sender);
	}
}

static void
test_build_parse_round_trip(void)
{
	static const uint16_t ops[] = {TQ_ARP_OP_REQUEST, TQ_ARP_OP_REPLY};

	for (size_t i = 0; i < 2; i++) {
		uint8_t built[TQ_ARP_LEN + 1], want[TQ_ARP_LEN];
		struct tq_arp_view v;

		memset(built, 0xee, sizeof(built));
		tq_arp_build(built, ops[i], &peer, inet_addr("198.18.0.7"), &ours,
			     inet_addr("198.18.0.1"));
		make_arp(want, ops[i], &peer, "198.18.0.7", &ours, "198.18.0.1");
		CU_ASSERT_EQUAL(memcmp(built, want, TQ_ARP_LEN), 0);
		CU_ASSERT_EQUAL(built[TQ_ARP_LEN], 0xee);
		CU_ASSERT_EQUAL_FATAL(parse_guarded(built, TQ_ARP_LEN, &v), TQ_ARP_LEN);
		CU_ASSERT_EQUAL(v.op, ops[i]);
		CU_ASSERT(rte_is_same_ether_addr(&v.sha, &peer));
		CU_ASSERT(rte_is_same_ether_addr(&v.tha, &ours));
		CU_ASSERT_EQUAL(v.sip, inet_addr("198.18.0.7"));
		CU_ASSERT_EQUAL(v.tip, inet_addr("198.18.0.1"));
	}
}

/* The reply is built over the request it answers, its target taken from the request body. */
static void
test_build_reply_in_place(void)
{
	static const struct rte_ether_addr zero;
	uint8_t b[TQ_ARP_LEN], want[TQ_ARP_LEN];
	struct tq_arp_view v;
	uint32_t sip;

	make_arp(b, TQ_ARP_OP_REQUEST, &peer, "198.18.0.7", &zero, "198.18.0.1");
	memcpy(&sip, b + 14, 4);
	tq_arp_build(b, TQ_ARP_OP_REPLY, &ours, inet_addr("198.18.0.1"),
		     (const struct rte_ether_addr *)(b + 8), sip);
	make_arp(want, TQ_ARP_OP_REPLY, &ours, "198.18.0.1", &peer, "198.18.0.7");
	CU_ASSERT_EQUAL(memcmp(b, want, TQ_ARP_LEN), 0);
	CU_ASSERT_EQUAL(parse_guarded(b, TQ_ARP_LEN, &v), TQ_ARP_LEN);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_parse_request_and_reply),
		TQ_TEST(test_parse_every_prefix),
		TQ_TEST(test_parse_bad_format),
		TQ_TEST(test_parse_bad_op),
		TQ_TEST(test_parse_bad_sender),
		TQ_TEST(test_build_parse_round_trip),
		TQ_TEST(test_build_reply_in_place),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("arp", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
