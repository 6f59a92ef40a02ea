/*
 * tq_icmp and tq_csum: ICMP parse, echo build and reply-in-place; Internet checksum
 * (RFC 1071) and its incremental update (RFC 1624). Inputs against a guard page.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>

#include "dataplane/net/tq_csum.h"
#include "dataplane/net/tq_icmp.h"
#include "dataplane/tq_counters.h"
#include "tq_test.h"


/* tq_csum_* results are words as they lie in memory: read them back as big-endian. */
static uint16_t
as_be(uint16_t mem_word)
{
	uint8_t b[2];

	memcpy(b, &mem_word, 2);
	return (uint16_t)(b[0] << 8 | b[1]);
}

static void
fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rand() >> 7);
}

/* RFC 1071 section 3's example: 00 01 f2 03 f4 f5 f6 f7 sums to dd f2. */
static void
test_csum_rfc1071_vectors(void)
{
	static const uint8_t ex[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
	static const uint8_t ip[] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	uint8_t *g = tq_test_guarded(ex, sizeof(ex));

	CU_ASSERT_EQUAL(as_be(tq_csum_sum(g, sizeof(ex), 0)), 0xddf2);
	CU_ASSERT_EQUAL(as_be(tq_csum(g, sizeof(ex))), 0x220d);
	/* odd length: the last byte is padded with a zero on the right (dcfb) */
	CU_ASSERT_EQUAL(as_be(tq_csum_sum(g, sizeof(ex) - 1, 0)), 0xdcfb);
	tq_test_guard_free(g, sizeof(ex));

	g = tq_test_guarded(ip, sizeof(ip));
	CU_ASSERT_EQUAL(as_be(tq_csum(g, sizeof(ip))), 0xb861);
	tq_test_guard_free(g, sizeof(ip));

	g = tq_test_guarded(NULL, 0);
	CU_ASSERT_EQUAL(tq_csum_sum(g, 0, 0), 0);
	CU_ASSERT_EQUAL(tq_csum(g, 0), 0xffff);
	tq_test_guard_free(g, 0);
}

static void
test_csum_matches_model(void)
{
	static uint8_t buf[9000];

	srand(1071);
	for (int iter = 0; iter < 2000; iter++) {
		size_t len = (size_t)rand() % (iter < 1000 ? 64 : sizeof(buf));
		uint8_t *g;

		fill_random(buf, len);
		g = tq_test_guarded(buf, len);
		CU_ASSERT_EQUAL(as_be(tq_csum_sum(g, len, 0)), tq_test_ref_sum(buf, len));
		tq_test_guard_free(g, len);
	}
	/* sums that carry many times: all 0xff */
	memset(buf, 0xff, sizeof(buf));
	CU_ASSERT_EQUAL(tq_csum_sum(buf, sizeof(buf), 0), 0xffff);
}

/* Every length and alignment around the 32-byte and 4-byte steps of the word loop. */
static void
test_csum_every_length_and_alignment(void)
{
	static uint8_t buf[512];

	srand(2026);
	fill_random(buf, sizeof(buf));
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 300; len++)
			CU_ASSERT_EQUAL(as_be(tq_csum_sum(buf + off, len, 0)),
					tq_test_ref_sum(buf + off, len));
	memset(buf, 0, sizeof(buf));
	CU_ASSERT_EQUAL(tq_csum_sum(buf, sizeof(buf), 0), 0); /* all zero: +0, not -0 */
}

/* A pseudo-header sum passed as seed equals summing both parts in one go. */
static void
test_csum_seed_chains(void)
{
	uint8_t buf[128];

	srand(768);
	for (int iter = 0; iter < 500; iter++) {
		size_t split = ((size_t)rand() % 32) * 2, len = split + (size_t)rand() % 64;
		uint16_t first;

		fill_random(buf, len);
		first = tq_csum_sum(buf, split, 0);
		CU_ASSERT_EQUAL(tq_csum_sum(buf + split, len - split, first),
				tq_csum_sum(buf, len, 0));
	}
}

/* RFC 1624 section 4: checksum dd2f, a word changes 5555 -> 3285: eqn. 3 gives 0000. */
static void
test_csum_rfc1624_vector(void)
{
	CU_ASSERT_EQUAL(tq_csum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
	CU_ASSERT_EQUAL(tq_csum_update16(0x2fdd, 0x5555, 0x8532), 0x0000); /* byte-swapped */
}

/* Changing one word then updating incrementally equals recomputing over the new data. */
static void
test_csum_update_equals_recompute(void)
{
	uint16_t words[64];

	srand(1624);
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = 1 + (size_t)rand() % 64, k = (size_t)rand() % n;
		uint16_t before, old, new, updated;

		bool all_zero = true;

		fill_random((uint8_t *)words, n * 2);
		if (iter % 8 == 0) /* the edge values, and data that becomes all zero */
			memset(words, iter & 8 ? 0xff : 0, n * 2);
		before = tq_csum(words, n * 2);
		old = words[k];
		new = (uint16_t)((unsigned int)rand() ^ (unsigned int)rand() << 8);
		if (iter % 16 == 0)
			new = 0;
		words[k] = new;
		updated = tq_csum_update16(before, old, new);
		for (size_t i = 0; i < n; i++)
			all_zero &= words[i] == 0;
		if (all_zero) {
			/* the one case RFC 1624 eqn. 3 cannot tell apart: it gives +0 (0000) */
			CU_ASSERT(updated == 0x0000 || updated == 0xffff);
			continue;
		}
		CU_ASSERT_EQUAL(updated, tq_csum(words, n * 2));
		CU_ASSERT_EQUAL(tq_csum_sum(words, n * 2, updated), 0xffff); /* receiver's check */
	}
}

/* An echo message built byte by byte (checksum from the model). */
static size_t
make_echo(uint8_t *p, uint8_t type, uint16_t id, uint16_t seq, size_t data_len)
{
	uint16_t c;

	p[0] = type;
	p[1] = 0;
	p[2] = p[3] = 0;
	p[4] = (uint8_t)(id >> 8), p[5] = (uint8_t)id;
	p[6] = (uint8_t)(seq >> 8), p[7] = (uint8_t)seq;
	for (size_t i = 0; i < data_len; i++)
		p[8 + i] = (uint8_t)(i + 0x20);
	c = (uint16_t)~tq_test_ref_sum(p, 8 + data_len);
	p[2] = (uint8_t)(c >> 8), p[3] = (uint8_t)c;
	return 8 + data_len;
}

static int
parse_guarded(const uint8_t *data, size_t len, struct tq_icmp_view *v)
{
	uint8_t *g = tq_test_guarded(data, len);
	int rc = tq_icmp_parse(g, len, v);

	tq_test_guard_free(g, len);
	return rc;
}

static void
test_parse_valid(void)
{
	static const size_t lens[] = {0, 1, 7, 56, 1472};
	static uint8_t msg[8 + 1472];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = make_echo(msg, TQ_ICMP_ECHO_REQUEST, 0x7100, (uint16_t)(0xfe01 + i),
				     lens[i]);
		struct tq_icmp_view v;

		memset(&v, 0xee, sizeof(v));
		CU_ASSERT_EQUAL(parse_guarded(msg, n, &v), TQ_ICMP_HDR_LEN);
		CU_ASSERT_EQUAL(v.type, TQ_ICMP_ECHO_REQUEST);
		CU_ASSERT_EQUAL(v.code, 0);
		CU_ASSERT_EQUAL(v.id, 0x7100);
		CU_ASSERT_EQUAL(v.seq, 0xfe01 + i);
	}
	/* other types parse too: answering them is the caller's choice */
	make_echo(msg, 3, 0, 0, 28);
	msg[1] = 1;
	msg[2] = msg[3] = 0;
	{
		uint16_t c = (uint16_t)~tq_test_ref_sum(msg, 36);
		struct tq_icmp_view v;

		msg[2] = (uint8_t)(c >> 8), msg[3] = (uint8_t)c;
		CU_ASSERT_EQUAL(parse_guarded(msg, 36, &v), TQ_ICMP_HDR_LEN);
		CU_ASSERT_EQUAL(v.type, 3);
		CU_ASSERT_EQUAL(v.code, 1);
	}
}

/* Every prefix: truncated below the header, and beyond it valid only if the model agrees. */
static void
test_parse_every_prefix(void)
{
	uint8_t msg[64];
	size_t n = make_echo(msg, TQ_ICMP_ECHO_REQUEST, 1, 2, 56);

	for (size_t len = 0; len <= n; len++) {
		struct tq_icmp_view v;
		int want = len < TQ_ICMP_HDR_LEN ? -TQ_CTR_icmp_truncated :
			   tq_test_ref_sum(msg, len) == 0xffff ? TQ_ICMP_HDR_LEN
						       : -TQ_CTR_icmp_bad_checksum;

		CU_ASSERT_EQUAL(parse_guarded(msg, len, &v), want);
	}
}

static void
test_parse_bad_checksum(void)
{
	uint8_t msg[8 + 57];
	size_t n = make_echo(msg, TQ_ICMP_ECHO_REQUEST, 9, 9, 57);

	/* a flipped bit in the header, the checksum or the payload (odd last byte too) */
	for (size_t byte = 0; byte < n; byte++) {
		struct tq_icmp_view v;

		msg[byte] ^= 0x10;
		CU_ASSERT_EQUAL(parse_guarded(msg, n, &v), -TQ_CTR_icmp_bad_checksum);
		msg[byte] ^= 0x10;
	}
}

static void
test_build_parse_round_trip(void)
{
	static const size_t lens[] = {0, 1, 56, 1472};
	static uint8_t built[8 + 1472], want[8 + 1472], data[1472];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i + 0x20);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct tq_icmp_view v;
		size_t n = make_echo(want, TQ_ICMP_ECHO_REPLY, 0xabcd, 0x0102, lens[i]);

		tq_icmp_build_echo(built, TQ_ICMP_ECHO_REPLY, 0xabcd, 0x0102, data, lens[i]);
		CU_ASSERT_EQUAL(memcmp(built, want, n), 0);
		CU_ASSERT_EQUAL(parse_guarded(built, n, &v), TQ_ICMP_HDR_LEN);
		CU_ASSERT_EQUAL(v.type, TQ_ICMP_ECHO_REPLY);
		CU_ASSERT_EQUAL(v.id, 0xabcd);
		CU_ASSERT_EQUAL(v.seq, 0x0102);

		/* data already in place after the header */
		memset(built, 0, 8);
		tq_icmp_build_echo(built, TQ_ICMP_ECHO_REPLY, 0xabcd, 0x0102, built + 8, lens[i]);
		CU_ASSERT_EQUAL(memcmp(built, want, n), 0);
	}
}

/* The reply made in place: type 0, everything else kept, checksum as a full recompute. */
static void
test_echo_to_reply(void)
{
	static uint8_t req[8 + 1500], want[8 + 1500];

	srand(792);
	for (int iter = 0; iter < 2000; iter++) {
		size_t len = (size_t)rand() % 1500, n = TQ_ICMP_HDR_LEN + len;
		uint16_t id = (uint16_t)rand(), seq = (uint16_t)rand();
		struct tq_icmp_view v;
		uint16_t c;

		fill_random(req + 8, len);
		tq_icmp_build_echo(req, TQ_ICMP_ECHO_REQUEST, id, seq, req + 8, len);
		memcpy(want, req, n);
		want[0] = TQ_ICMP_ECHO_REPLY;
		want[2] = want[3] = 0;
		c = (uint16_t)~tq_test_ref_sum(want, n);
		if (c == 0)
			c = 0xffff; /* a zero checksum goes out as -0, which every receiver takes */
		want[2] = (uint8_t)(c >> 8), want[3] = (uint8_t)c;

		tq_icmp_echo_to_reply(req);
		CU_ASSERT_EQUAL(parse_guarded(req, n, &v), TQ_ICMP_HDR_LEN);
		CU_ASSERT_EQUAL(v.type, TQ_ICMP_ECHO_REPLY);
		CU_ASSERT_EQUAL(v.id, id);
		CU_ASSERT_EQUAL(v.seq, seq);
		CU_ASSERT_EQUAL(memcmp(req, want, n), 0);
	}
}

/*
 * An echo request with id 0, seq 0 and zero data has an all-zero reply: its checksum must
 * still verify (0xffff), or the peer drops the reply as corrupt. Likewise a reply that
 * sums to zero without being all zero (id ffff).
 */
static void
test_echo_to_reply_all_zero(void)
{
	static const size_t lens[] = {0, 1, 56};
	uint8_t req[8 + 56], zero[56];

	memset(zero, 0, sizeof(zero));
	for (size_t i = 0; i < 2 * RTE_DIM(lens); i++) {
		size_t n = TQ_ICMP_HDR_LEN + lens[i % RTE_DIM(lens)];
		struct tq_icmp_view v;

		tq_icmp_build_echo(req, TQ_ICMP_ECHO_REQUEST, i < RTE_DIM(lens) ? 0 : 0xffff, 0,
				   zero, n - TQ_ICMP_HDR_LEN);
		CU_ASSERT_EQUAL_FATAL(parse_guarded(req, n, &v), TQ_ICMP_HDR_LEN);
		tq_icmp_echo_to_reply(req);
		CU_ASSERT_EQUAL(req[0], TQ_ICMP_ECHO_REPLY);
		CU_ASSERT_EQUAL(parse_guarded(req, n, &v), TQ_ICMP_HDR_LEN);
	}
}

int
main(void)
{
	static const struct tq_test_case csum[] = {
		TQ_TEST(test_csum_rfc1071_vectors),
		TQ_TEST(test_csum_matches_model),
		TQ_TEST(test_csum_every_length_and_alignment),
		TQ_TEST(test_csum_seed_chains),
		TQ_TEST(test_csum_rfc1624_vector),
		TQ_TEST(test_csum_update_equals_recompute),
	};
	static const struct tq_test_case icmp[] = {
		TQ_TEST(test_parse_valid),
		TQ_TEST(test_parse_every_prefix),
		TQ_TEST(test_parse_bad_checksum),
		TQ_TEST(test_build_parse_round_trip),
		TQ_TEST(test_echo_to_reply),
		TQ_TEST(test_echo_to_reply_all_zero),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("csum", csum) != CUE_SUCCESS ||
	    TQ_SUITE("icmp", icmp) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
