/* tq_ipv4: header validation, build, address helpers; every input against a guard page. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "dataplane/net/tq_ipv4.h"
#include "dataplane/tq_counters.h"
#include "tq_test.h"

static const unsigned int flag_values[] = {0, TQ_IPV4_CSUM_VERIFIED};

/* The checksum field for @len bytes, by the RFC 1071 model of tq_test.c. */
static uint16_t
ref_csum(const uint8_t *p, size_t len)
{
	return (uint16_t)~tq_test_ref_sum(p, len);
}

static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
fix_csum(uint8_t *h)
{
	unsigned int ihl = (h[0] & 0xf) * 4u;

	put_be16(h + 10, 0);
	put_be16(h + 10, ref_csum(h, ihl));
}

/* A 20-byte header with @payload_len bytes of payload after it (pattern), checksum set. */
static size_t
make_packet(uint8_t *p, const char *src, const char *dst, uint8_t proto, uint16_t payload_len)
{
	uint32_t s = inet_addr(src), d = inet_addr(dst);

	p[0] = 0x45;
	p[1] = 0;
	put_be16(p + 2, (uint16_t)(20 + payload_len));
	put_be16(p + 4, 0x1234);
	put_be16(p + 6, 0x4000); /* DF */
	p[8] = 64;
	p[9] = proto;
	memcpy(p + 12, &s, 4);
	memcpy(p + 16, &d, 4);
	for (uint16_t i = 0; i < payload_len; i++)
		p[20 + i] = (uint8_t)(i * 7 + 3);
	fix_csum(p);
	return 20u + payload_len;
}

static int
parse_guarded(const uint8_t *data, size_t len, unsigned int flags, struct tq_ipv4_view *v)
{
	uint8_t *g = tq_test_guarded(data, len);
	int rc = tq_ipv4_parse(g, len, flags, v);

	/* spans point into the input: check them while it is mapped */
	if (rc > 0)
		CU_ASSERT(v->payload == g + rc);
	tq_test_guard_free(g, len);
	return rc;
}

/* The classic example header (checksum 0xb861) from RFC 1071 tutorials and Wikipedia. */
static void
test_parse_known_vector(void)
{
	static const uint8_t hdr[20] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	uint8_t pkt[0x73];
	struct tq_ipv4_view v;

	memset(pkt, 0, sizeof(pkt));
	memcpy(pkt, hdr, sizeof(hdr));
	CU_ASSERT_EQUAL(ref_csum(hdr, sizeof(hdr)), 0);
	for (size_t f = 0; f < 2; f++) {
		memset(&v, 0, sizeof(v));
		CU_ASSERT_EQUAL_FATAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v), 20);
		CU_ASSERT_EQUAL(v.src, inet_addr("192.168.0.1"));
		CU_ASSERT_EQUAL(v.dst, inet_addr("192.168.0.199"));
		CU_ASSERT_EQUAL(v.proto, 17);
		CU_ASSERT_EQUAL(v.ttl, 64);
		CU_ASSERT_EQUAL(v.id, 0);
		CU_ASSERT_EQUAL(v.hdr_len, 20);
		CU_ASSERT_EQUAL(v.total_len, 0x73);
		CU_ASSERT_EQUAL(v.payload_len, 0x73 - 20);
	}
}

/* Ethernet padding after total length is allowed; the view ends at total length. */
static void
test_parse_padding(void)
{
	uint8_t pkt[46];
	struct tq_ipv4_view v;

	memset(pkt, 0xcc, sizeof(pkt));
	make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 8);
	for (size_t f = 0; f < 2; f++) {
		CU_ASSERT_EQUAL_FATAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v), 20);
		CU_ASSERT_EQUAL(v.total_len, 28);
		CU_ASSERT_EQUAL(v.payload_len, 8);
	}
}

/* Every prefix of a packet fails with the right reason; only the whole packet parses. */
static void
test_parse_every_prefix(void)
{
	uint8_t pkt[60];
	size_t n = make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 40);

	for (size_t f = 0; f < 2; f++) {
		for (size_t len = 0; len <= n; len++) {
			struct tq_ipv4_view v;
			int want = len < 20 ? -TQ_CTR_ipv4_truncated :
				   len < n  ? -TQ_CTR_ipv4_bad_total_len : 20;

			CU_ASSERT_EQUAL(parse_guarded(pkt, len, flag_values[f], &v), want);
		}
	}
}

static void
test_parse_bad_version(void)
{
	static const uint8_t versions[] = {0, 1, 5, 6, 15};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		uint8_t pkt[40];
		struct tq_ipv4_view v;

		make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 20);
		pkt[0] = (uint8_t)(versions[i] << 4 | 5);
		fix_csum(pkt);
		for (size_t f = 0; f < 2; f++)
			CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v),
					-TQ_CTR_ipv4_bad_version);
	}
}

static void
test_parse_bad_ihl(void)
{
	uint8_t pkt[40];
	struct tq_ipv4_view v;

	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 20);
		pkt[0] = (uint8_t)(0x40 | ihl);
		for (size_t f = 0; f < 2; f++)
			CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v),
					-TQ_CTR_ipv4_bad_ihl);
	}
	/* IHL 15 (60 bytes) in a 40-byte packet: the header would run past the data */
	make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 20);
	pkt[0] = 0x4f;
	for (size_t f = 0; f < 2; f++)
		CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v),
				-TQ_CTR_ipv4_bad_ihl);
}

static void
test_parse_bad_total_len(void)
{
	static const uint16_t totals[] = {0, 1, 19, 41, 1500, 0xffff};
	uint8_t pkt[40];
	struct tq_ipv4_view v;

	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 20);
		put_be16(pkt + 2, totals[i]);
		fix_csum(pkt);
		for (size_t f = 0; f < 2; f++)
			CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v),
					-TQ_CTR_ipv4_bad_total_len);
	}
	/* total length == header length: an empty payload is valid */
	make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 0);
	CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), 0, &v), 20);
	CU_ASSERT_EQUAL(v.payload_len, 0);
}

static void
test_parse_bad_checksum(void)
{
	uint8_t pkt[40];
	struct tq_ipv4_view v;

	/* a flipped bit anywhere in the header is caught, unless the NIC verified it */
	for (size_t byte = 0; byte < 20; byte++) {
		if (byte == 0 || byte == 2 || byte == 3)
			continue; /* version, IHL and total length are checked first */
		make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 20);
		pkt[byte] ^= 0x01;
		CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), 0, &v), -TQ_CTR_ipv4_bad_checksum);
		if (byte != 6 && byte != 7) /* there the flip makes a fragment */
			CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), TQ_IPV4_CSUM_VERIFIED, &v),
					20);
	}
	/* the payload is not covered by the header checksum */
	make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 20);
	pkt[30] ^= 0xff;
	CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), 0, &v), 20);
}

static void
test_parse_fragments(void)
{
	static const uint16_t frag[] = {0x2000, 0x6000, 0x0001, 0x1fff, 0x2001, 0x4001, 0x3fff};
	uint8_t pkt[40];
	struct tq_ipv4_view v;

	for (size_t i = 0; i < sizeof(frag) / sizeof(frag[0]); i++) {
		make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 20);
		put_be16(pkt + 6, frag[i]);
		fix_csum(pkt);
		for (size_t f = 0; f < 2; f++)
			CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v),
					-TQ_CTR_ipv4_fragment);
	}
	/* DF alone, or no flags at all: a whole packet */
	make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 20);
	put_be16(pkt + 6, 0);
	fix_csum(pkt);
	CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), 0, &v), 20);
}

static void
test_parse_options(void)
{
	uint8_t pkt[60];
	struct tq_ipv4_view v;

	for (uint8_t ihl = 6; ihl <= 15; ihl++) {
		memset(pkt, 0, sizeof(pkt));
		make_packet(pkt, "198.18.0.7", "198.18.0.1", 1, 40);
		pkt[0] = (uint8_t)(0x40 | ihl);
		memset(pkt + 20, 1, ihl * 4u - 20); /* NOP options */
		fix_csum(pkt);
		for (size_t f = 0; f < 2; f++)
			CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v),
					-TQ_CTR_ipv4_options);
	}
}

static void
test_parse_martian_sources(void)
{
	static const char *const martians[] = {
		"0.0.0.0", "127.0.0.1", "127.255.255.254", "224.0.0.1",
		"239.255.255.250", "240.0.0.1", "255.255.255.255",
	};
	static const char *const fine[] = {
		"1.0.0.0", "10.0.0.1", "126.255.255.255", "128.0.0.1", "198.18.0.7",
		"223.255.255.255",
	};
	uint8_t pkt[40];
	struct tq_ipv4_view v;

	for (size_t i = 0; i < sizeof(martians) / sizeof(martians[0]); i++) {
		CU_ASSERT(tq_ipv4_is_martian_src(inet_addr(martians[i])));
		make_packet(pkt, martians[i], "198.18.0.1", 1, 20);
		for (size_t f = 0; f < 2; f++)
			CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), flag_values[f], &v),
					-TQ_CTR_ipv4_bad_src);
	}
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		CU_ASSERT_FALSE(tq_ipv4_is_martian_src(inet_addr(fine[i])));
		make_packet(pkt, fine[i], "198.18.0.1", 1, 20);
		CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), 0, &v), 20);
		CU_ASSERT_EQUAL(v.src, inet_addr(fine[i]));
	}
}

static void
test_build_parse_round_trip(void)
{
	static const uint16_t lens[] = {0, 1, 8, 64, 1480};
	static uint8_t pkt[1500 + 4];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = TQ_IPV4_HDR_LEN + lens[i];
		struct tq_ipv4_view v;

		memset(pkt, 0xee, sizeof(pkt));
		tq_ipv4_build(pkt, inet_addr("198.18.0.1"), inet_addr("203.0.113.9"), 6, lens[i],
			      (uint16_t)(0xbeef + i), 17, false);
		CU_ASSERT_EQUAL(pkt[6], 0x40); /* DF */
		CU_ASSERT_EQUAL(pkt[7], 0);
		CU_ASSERT_EQUAL(ref_csum(pkt, 20), 0);
		CU_ASSERT_EQUAL(pkt[20], 0xee); /* the payload is left alone */
		for (size_t f = 0; f < 2; f++) {
			CU_ASSERT_EQUAL_FATAL(parse_guarded(pkt, n, flag_values[f], &v), 20);
			CU_ASSERT_EQUAL(v.src, inet_addr("198.18.0.1"));
			CU_ASSERT_EQUAL(v.dst, inet_addr("203.0.113.9"));
			CU_ASSERT_EQUAL(v.proto, 6);
			CU_ASSERT_EQUAL(v.ttl, 17);
			CU_ASSERT_EQUAL(v.id, 0xbeef + i);
			CU_ASSERT_EQUAL(v.total_len, n);
			CU_ASSERT_EQUAL(v.payload_len, lens[i]);
		}
	}
}

/* With checksum offload the field stays zero: only a NIC-verified parse accepts it. */
static void
test_build_csum_offload(void)
{
	uint8_t pkt[28], full[28];
	struct tq_ipv4_view v;

	tq_ipv4_build(full, inet_addr("198.18.0.1"), inet_addr("198.18.0.7"), 1, 8, 7, 64, false);
	tq_ipv4_build(pkt, inet_addr("198.18.0.1"), inet_addr("198.18.0.7"), 1, 8, 7, 64, true);
	CU_ASSERT_EQUAL(pkt[10], 0);
	CU_ASSERT_EQUAL(pkt[11], 0);
	CU_ASSERT_FATAL(full[10] != 0 || full[11] != 0);
	memset(pkt + 20, 0, 8);
	CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), 0, &v), -TQ_CTR_ipv4_bad_checksum);
	CU_ASSERT_EQUAL(parse_guarded(pkt, sizeof(pkt), TQ_IPV4_CSUM_VERIFIED, &v), 20);
	/* everything but the checksum is what the non-offload build writes */
	pkt[10] = full[10];
	pkt[11] = full[11];
	CU_ASSERT_EQUAL(memcmp(pkt, full, 20), 0);
}

static void
test_fmt(void)
{
	static const char *const addrs[] = {"0.0.0.0", "192.0.2.1", "10.200.3.45",
					    "255.255.255.255"};
	char buf[16];

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		CU_ASSERT_PTR_EQUAL(tq_ipv4_fmt(inet_addr(addrs[i]), buf), buf);
		CU_ASSERT_STRING_EQUAL(buf, addrs[i]);
	}
}

static void
test_parse_cidr(void)
{
	static const char *const bad[] = {
		"", "/24", "1.2.3", "1.2.3.4/", "1.2.3.4/33", "1.2.3.4/-1", "1.2.3.4/2x",
		"256.1.1.1", "1.2.3.4 /24", "1111.2222.3333.4444", "1.2.3.4/24/8", "a.b.c.d",
		"1.2.3.4/999999999999999999999",
	};
	uint32_t addr = 0;
	uint8_t plen = 0;

	CU_ASSERT_EQUAL(tq_ipv4_parse_cidr("198.18.0.2/24", &addr, &plen), 0);
	CU_ASSERT_EQUAL(addr, inet_addr("198.18.0.2"));
	CU_ASSERT_EQUAL(plen, 24);
	CU_ASSERT_EQUAL(tq_ipv4_parse_cidr("10.0.0.1", &addr, &plen), 0);
	CU_ASSERT_EQUAL(addr, inet_addr("10.0.0.1"));
	CU_ASSERT_EQUAL(plen, 32);
	CU_ASSERT_EQUAL(tq_ipv4_parse_cidr("0.0.0.0/0", &addr, &plen), 0);
	CU_ASSERT_EQUAL(addr, 0);
	CU_ASSERT_EQUAL(plen, 0);
	CU_ASSERT_EQUAL(tq_ipv4_parse_cidr("192.0.2.1/32", &addr, &plen), 0);
	CU_ASSERT_EQUAL(plen, 32);
	/* a plain address where no prefix may be given */
	CU_ASSERT_EQUAL(tq_ipv4_parse_cidr("192.0.2.1", &addr, NULL), 0);
	CU_ASSERT_EQUAL(addr, inet_addr("192.0.2.1"));
	CU_ASSERT_EQUAL(tq_ipv4_parse_cidr("192.0.2.1/24", &addr, NULL), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(tq_ipv4_parse_cidr(bad[i], &addr, &plen), -EINVAL);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_parse_known_vector),
		TQ_TEST(test_parse_padding),
		TQ_TEST(test_parse_every_prefix),
		TQ_TEST(test_parse_bad_version),
		TQ_TEST(test_parse_bad_ihl),
		TQ_TEST(test_parse_bad_total_len),
		TQ_TEST(test_parse_bad_checksum),
		TQ_TEST(test_parse_fragments),
		TQ_TEST(test_parse_options),
		TQ_TEST(test_parse_martian_sources),
		TQ_TEST(test_build_parse_round_trip),
		TQ_TEST(test_build_csum_offload),
		TQ_TEST(test_fmt),
		TQ_TEST(test_parse_cidr),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("ipv4", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
