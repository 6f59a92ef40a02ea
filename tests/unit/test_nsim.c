/*
 * tq_nsim: each fault does what it says, at the rate it says, reproducibly, never early,
 * and every mbuf comes back to the pool; the worker handover frees what it should.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/tq_nsim.h"
#include "dataplane/tq_worker.h"
#include "tq_test.h"

#define POOL_SIZE 4095
#define SEQ_OFF RTE_ETHER_HDR_LEN /* where a test frame keeps its sequence number */

static struct rte_mempool *pool;
static uint64_t ctr[TQ_CTR__COUNT];
static unsigned int pool_start;

static uint8_t
pattern(uint32_t seq, uint32_t i)
{
	return (uint8_t)(i * 7 + seq * 13 + 1);
}

/* A @len-byte frame: a byte pattern that depends on @seq, and @seq at SEQ_OFF. */
static struct rte_mbuf *
frame(uint32_t seq, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	uint8_t *p;

	CU_ASSERT_FATAL(m != NULL);
	p = (uint8_t *)rte_pktmbuf_append(m, len);
	CU_ASSERT_FATAL(p != NULL);
	for (uint32_t i = 0; i < len; i++)
		p[i] = pattern(seq, i);
	if (len >= SEQ_OFF + 4)
		memcpy(p + SEQ_OFF, &seq, 4);
	return m;
}

static uint32_t
frame_seq(const struct rte_mbuf *m)
{
	uint32_t seq;

	memcpy(&seq, rte_pktmbuf_mtod_offset(m, const uint8_t *, SEQ_OFF), 4);
	return seq;
}

static struct tq_nsim *
make(const struct tq_nsim_conf *c, uint16_t worker)
{
	struct tq_nsim *ns = tq_nsim_create(c, worker, SOCKET_ID_ANY);

	CU_ASSERT_FATAL(ns != NULL);
	return ns;
}

static uint64_t
us(uint64_t n)
{
	return n * rte_get_tsc_hz() / 1000000;
}

static uint64_t
nsim_counters(void)
{
	return ctr[TQ_CTR_nsim_dropped] + ctr[TQ_CTR_nsim_duplicated] +
	       ctr[TQ_CTR_nsim_reordered] + ctr[TQ_CTR_nsim_corrupted] +
	       ctr[TQ_CTR_nsim_delayed] + ctr[TQ_CTR_nsim_rate_limited] +
	       ctr[TQ_CTR_nsim_queue_full];
}

static void
reset(void)
{
	memset(ctr, 0, sizeof(ctr));
	pool_start = rte_mempool_avail_count(pool);
}

static void
assert_no_leak(void)
{
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), pool_start);
}

static void
test_disabled_passes_untouched(void)
{
	struct tq_nsim_conf c = {.seed = 9, .queue = 8}; /* seed and queue alone: still off */
	struct rte_mbuf *in[32], *out[TQ_NSIM_OUT_MAX(32)];
	struct tq_nsim *ns;
	uint16_t n;

	reset();
	CU_ASSERT_FALSE(tq_nsim_conf_enabled(&c));
	ns = make(&c, 0);
	CU_ASSERT_FALSE(tq_nsim_enabled(ns));
	for (uint32_t i = 0; i < 32; i++)
		in[i] = frame(i, (uint16_t)(60 + i));
	n = tq_nsim_input(ns, in, 32, 1000, out, ctr);
	CU_ASSERT_EQUAL_FATAL(n, 32);
	for (uint32_t i = 0; i < 32; i++) {
		const uint8_t *p = rte_pktmbuf_mtod(out[i], const uint8_t *);
		bool same = rte_pktmbuf_pkt_len(out[i]) == 60 + i;

		CU_ASSERT_PTR_EQUAL(out[i], in[i]);
		for (uint32_t b = 0; same && b < 60 + i; b++)
			if (b < SEQ_OFF || b >= SEQ_OFF + 4)
				same = p[b] == pattern(i, b);
		CU_ASSERT(same);
	}
	CU_ASSERT_EQUAL(tq_nsim_held(ns), 0);
	CU_ASSERT_EQUAL(tq_nsim_release(ns, UINT64_MAX, out, 32, ctr), 0);
	CU_ASSERT_EQUAL(nsim_counters(), 0);
	rte_pktmbuf_free_bulk(in, 32);
	tq_nsim_free(ns);
	assert_no_leak();
}

static void
test_drop_rate_within_bound(void)
{
	struct tq_nsim_conf c = {.drop = 0.1, .seed = 42};
	struct rte_mbuf *in[64], *out[TQ_NSIM_OUT_MAX(64)];
	const uint32_t total = 100000;
	uint32_t passed = 0, dropped;
	struct tq_nsim *ns;

	reset();
	ns = make(&c, 0);
	for (uint32_t sent = 0; sent < total; sent += 64) {
		uint16_t n;

		for (uint32_t i = 0; i < 64; i++)
			in[i] = frame(sent + i, 64);
		n = tq_nsim_input(ns, in, 64, sent, out, ctr);
		passed += n;
		rte_pktmbuf_free_bulk(out, n);
	}
	dropped = (total + 63) / 64 * 64 - passed;
	/* Binomial(100032, 0.1): sd 95; allow 5 sd. */
	printf("\n    dropped %u of %u (expected ~10003)\n", dropped, (total + 63) / 64 * 64);
	CU_ASSERT(fabs((double)dropped - 10003.2) < 475);
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_dropped], dropped);
	tq_nsim_free(ns);
	assert_no_leak();

	/* 1.0 drops everything */
	c.drop = 1;
	ns = make(&c, 0);
	for (uint32_t i = 0; i < 64; i++)
		in[i] = frame(i, 64);
	CU_ASSERT_EQUAL(tq_nsim_input(ns, in, 64, 0, out, ctr), 0);
	tq_nsim_free(ns);
	assert_no_leak();
}

/* Which of 4096 frames, fed one by one, did an instance drop? */
static void
drop_pattern(uint64_t seed, uint16_t worker, uint8_t *dropped)
{
	struct tq_nsim_conf c = {.drop = 0.3, .seed = seed};
	struct tq_nsim *ns = make(&c, worker);
	struct rte_mbuf *m, *out[TQ_NSIM_OUT_MAX(1)];

	for (uint32_t i = 0; i < 4096; i++) {
		m = frame(i, 64);
		dropped[i] = tq_nsim_input(ns, &m, 1, i, out, ctr) == 0;
		if (!dropped[i])
			rte_pktmbuf_free(out[0]);
	}
	tq_nsim_free(ns);
}

static void
test_same_seed_same_sequence(void)
{
	static uint8_t a[4096], b[4096], other_worker[4096], other_seed[4096];

	reset();
	drop_pattern(7, 0, a);
	drop_pattern(7, 0, b);
	drop_pattern(7, 1, other_worker);
	drop_pattern(8, 0, other_seed);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a, other_worker, sizeof(a)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a, other_seed, sizeof(a)), 0);
	assert_no_leak();
}

static void
test_duplicates_are_identical_copies(void)
{
	struct tq_nsim_conf c = {.duplicate = 1, .seed = 1};
	struct rte_mbuf *in[32], *out[TQ_NSIM_OUT_MAX(32)];
	struct tq_nsim *ns;
	uint16_t n;

	reset();
	ns = make(&c, 0);
	for (uint32_t i = 0; i < 32; i++)
		in[i] = frame(i, (uint16_t)(64 + 40 * i));
	n = tq_nsim_input(ns, in, 32, 0, out, ctr);
	CU_ASSERT_EQUAL_FATAL(n, 64);
	for (uint32_t i = 0; i < 32; i++) {
		const struct rte_mbuf *a = out[2 * i], *b = out[2 * i + 1];

		CU_ASSERT_PTR_NOT_EQUAL(a, b);
		CU_ASSERT_EQUAL(frame_seq(a), i);
		CU_ASSERT_EQUAL_FATAL(rte_pktmbuf_pkt_len(a), rte_pktmbuf_pkt_len(b));
		CU_ASSERT_EQUAL(memcmp(rte_pktmbuf_mtod(a, const void *),
				       rte_pktmbuf_mtod(b, const void *), rte_pktmbuf_pkt_len(a)), 0);
	}
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_duplicated], 32);
	rte_pktmbuf_free_bulk(out, n); /* each exactly once: a double free shows in the count */
	tq_nsim_free(ns);
	assert_no_leak();

	/* half of the frames, roughly */
	c.duplicate = 0.5;
	ns = make(&c, 0);
	memset(ctr, 0, sizeof(ctr));
	for (uint32_t round = 0; round < 64; round++) {
		for (uint32_t i = 0; i < 32; i++)
			in[i] = frame(i, 64);
		n = tq_nsim_input(ns, in, 32, 0, out, ctr);
		rte_pktmbuf_free_bulk(out, n);
	}
	CU_ASSERT(ctr[TQ_CTR_nsim_duplicated] > 2048 * 0.4 && ctr[TQ_CTR_nsim_duplicated] < 2048 * 0.6);
	tq_nsim_free(ns);
	assert_no_leak();
}

static void
test_reorder_loses_nothing(void)
{
	struct tq_nsim_conf c = {.reorder = 0.25, .seed = 3};
	struct rte_mbuf *in[32], *out[TQ_NSIM_OUT_MAX(32)];
	static uint32_t order[2048];
	static uint8_t seen[2048];
	uint32_t nout = 0, inversions = 0;
	uint64_t now = 1000000;
	struct tq_nsim *ns;
	uint16_t n;

	reset();
	memset(seen, 0, sizeof(seen));
	ns = make(&c, 0);
	for (uint32_t sent = 0; sent < 2048; sent += 32) {
		for (uint32_t i = 0; i < 32; i++)
			in[i] = frame(sent + i, 64);
		n = tq_nsim_input(ns, in, 32, now++, out, ctr);
		for (uint16_t i = 0; i < n; i++) {
			order[nout++] = frame_seq(out[i]);
			rte_pktmbuf_free(out[i]);
		}
	}
	/* a last frame held and nothing after it: it leaves once its hold expires, not before */
	CU_ASSERT_EQUAL(tq_nsim_release(ns, now, out, 32, ctr), 0);
	n = tq_nsim_release(ns, now + us(TQ_NSIM_REORDER_HOLD_US), out, 32, ctr);
	for (uint16_t i = 0; i < n; i++) {
		order[nout++] = frame_seq(out[i]);
		rte_pktmbuf_free(out[i]);
	}
	CU_ASSERT_EQUAL_FATAL(nout, 2048);
	for (uint32_t i = 0; i < nout; i++) {
		CU_ASSERT_FATAL(order[i] < 2048);
		CU_ASSERT_EQUAL(seen[order[i]], 0);
		seen[order[i]] = 1;
		if (i > 0 && order[i] < order[i - 1]) {
			inversions++;
			CU_ASSERT_EQUAL(order[i - 1], order[i] + 1); /* right after the next one */
		}
	}
	printf("\n    %u frames sent after a later one\n", inversions);
	CU_ASSERT(inversions > 2048 / 8);
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_reordered], inversions);
	tq_nsim_free(ns);
	assert_no_leak();
}

/* Bits in which @m differs from frame(@seq, len), and the first differing byte. */
static unsigned int
bit_diff(const struct rte_mbuf *m, uint32_t seq, uint32_t *where)
{
	uint8_t buf[2048];
	const uint8_t *p = rte_pktmbuf_read(m, 0, rte_pktmbuf_pkt_len(m), buf);
	unsigned int bits = 0;

	*where = UINT32_MAX;
	for (uint32_t i = 0; i < rte_pktmbuf_pkt_len(m); i++) {
		uint8_t want = pattern(seq, i);

		if (i >= SEQ_OFF && i < SEQ_OFF + 4)
			want = ((const uint8_t *)&seq)[i - SEQ_OFF];
		if (p[i] != want) {
			bits += (unsigned int)__builtin_popcount(p[i] ^ want);
			if (*where == UINT32_MAX)
				*where = i;
		}
	}
	return bits;
}

static void
test_corrupt_flips_one_bit_beyond_ethernet(void)
{
	struct tq_nsim_conf c = {.corrupt = 1, .seed = 5};
	struct rte_mbuf *m, *out[TQ_NSIM_OUT_MAX(1)];
	uint32_t where, low = UINT32_MAX, high = 0;
	struct tq_nsim *ns;
	uint16_t len;

	reset();
	ns = make(&c, 0);
	for (uint32_t i = 0; i < 500; i++) {
		len = (uint16_t)(SEQ_OFF + 4 + i * 3);
		m = frame(i, len);
		m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;
		CU_ASSERT_EQUAL_FATAL(tq_nsim_input(ns, &m, 1, 0, out, ctr), 1);
		/* (the sequence number itself may be the corrupted field: compare by i) */
		CU_ASSERT_EQUAL(bit_diff(out[0], i, &where), 1);
		CU_ASSERT(where >= RTE_ETHER_HDR_LEN && where < len);
		CU_ASSERT_EQUAL(out[0]->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK, 0);
		low = RTE_MIN(low, where);
		high = RTE_MAX(high, where);
		rte_pktmbuf_free(out[0]);
	}
	CU_ASSERT_EQUAL(low, RTE_ETHER_HDR_LEN); /* the whole range is reachable */
	CU_ASSERT(high > 1000);
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_corrupted], 500);

	/* a bare Ethernet header has nothing to corrupt */
	m = frame(0, RTE_ETHER_HDR_LEN);
	CU_ASSERT_EQUAL_FATAL(tq_nsim_input(ns, &m, 1, 0, out, ctr), 1);
	CU_ASSERT_EQUAL(bit_diff(out[0], 0, &where), 0);
	rte_pktmbuf_free(out[0]);
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_corrupted], 500);

	/* a shared frame (a clone kept for retransmission) is copied, the other holder's
	 * bytes stay intact */
	m = frame(77, 200);
	rte_mbuf_refcnt_update(m, 1);
	{
		struct rte_mbuf *shared = m;

		CU_ASSERT_EQUAL_FATAL(tq_nsim_input(ns, &m, 1, 0, out, ctr), 1);
		CU_ASSERT_PTR_NOT_EQUAL(out[0], shared);
		CU_ASSERT_EQUAL(bit_diff(out[0], 77, &where), 1);
		CU_ASSERT_EQUAL(bit_diff(shared, 77, &where), 0);
		CU_ASSERT_EQUAL(rte_mbuf_refcnt_read(shared), 1);
		rte_pktmbuf_free(shared);
		rte_pktmbuf_free(out[0]);
	}

	/* a chained frame: the bit may land in either segment */
	for (uint32_t i = 0; i < 50; i++) {
		struct rte_mbuf *head = frame(i, 100), *tail = rte_pktmbuf_alloc(pool);
		uint8_t *p = (uint8_t *)rte_pktmbuf_append(tail, 100);

		for (uint32_t b = 0; b < 100; b++)
			p[b] = pattern(i, 100 + b);
		CU_ASSERT_EQUAL_FATAL(rte_pktmbuf_chain(head, tail), 0);
		CU_ASSERT_EQUAL_FATAL(tq_nsim_input(ns, &head, 1, 0, out, ctr), 1);
		CU_ASSERT_EQUAL(bit_diff(out[0], i, &where), 1);
		CU_ASSERT(where >= RTE_ETHER_HDR_LEN && where < 200);
		rte_pktmbuf_free(out[0]);
	}
	tq_nsim_free(ns);
	assert_no_leak();
}

/*
 * A TX frame that asks the port for its IPv4 header checksum: the simulator fills it before
 * flipping the bit (as a wire corrupts after the NIC), so the receiver can catch it.
 */
static void
test_corrupt_tx_checksum_computed_first(void)
{
	struct tq_nsim_conf c = {.corrupt = 1, .seed = 6};
	struct rte_mbuf *m, *out[TQ_NSIM_OUT_MAX(1)];
	struct tq_nsim *ns;
	unsigned int in_header = 0;

	reset();
	ns = make(&c, 0);
	for (uint32_t i = 0; i < 300; i++) {
		uint8_t want[74], *p;
		struct rte_ipv4_hdr *ip;
		unsigned int bits = 0;
		uint32_t where = 0;

		m = frame(i, sizeof(want));
		ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, RTE_ETHER_HDR_LEN);
		ip->version_ihl = 0x45;
		ip->hdr_checksum = 0;
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
		m->l2_len = RTE_ETHER_HDR_LEN;
		m->l3_len = sizeof(*ip);
		memcpy(want, rte_pktmbuf_mtod(m, void *), sizeof(want));
		((struct rte_ipv4_hdr *)(want + RTE_ETHER_HDR_LEN))->hdr_checksum =
			rte_ipv4_cksum((const struct rte_ipv4_hdr *)(want + RTE_ETHER_HDR_LEN));

		CU_ASSERT_EQUAL_FATAL(tq_nsim_input(ns, &m, 1, 0, out, ctr), 1);
		CU_ASSERT_EQUAL(out[0]->ol_flags & RTE_MBUF_F_TX_IP_CKSUM, 0);
		p = rte_pktmbuf_mtod(out[0], uint8_t *);
		for (uint32_t b = 0; b < sizeof(want); b++)
			if (p[b] != want[b]) {
				bits += (unsigned int)__builtin_popcount(p[b] ^ want[b]);
				where = b;
			}
		CU_ASSERT_EQUAL(bits, 1);
		CU_ASSERT(where >= RTE_ETHER_HDR_LEN);
		in_header += where < RTE_ETHER_HDR_LEN + sizeof(*ip);
		rte_pktmbuf_free(out[0]);
	}
	CU_ASSERT(in_header > 0); /* some flips hit the header the checksum covers */
	tq_nsim_free(ns);
	assert_no_leak();
}

/* Feed 400 frames 10 µs apart, releasing every µs; check each frame's time in the line. */
static void
check_delay(uint32_t delay_us, uint32_t jitter_us)
{
	struct tq_nsim_conf c = {.delay_us = delay_us, .jitter_us = jitter_us, .seed = 11};
	struct rte_mbuf *m, *out[TQ_NSIM_OUT_MAX(32)];
	static uint64_t sent_at[400];
	uint64_t t0 = us(1000000), tick = us(1), min_wait = UINT64_MAX, max_wait = 0;
	uint32_t got = 0, next = 0, last_seq = 0;
	bool fifo = true;
	struct tq_nsim *ns = make(&c, 0);

	reset();
	for (uint64_t t = t0; got < 400 && t < t0 + us(400 * 10 + delay_us + jitter_us + 100);
	     t += tick) {
		uint16_t n;

		if (next < 400 && t >= t0 + us(next * 10)) {
			m = frame(next, 64);
			sent_at[next] = t;
			CU_ASSERT_EQUAL(tq_nsim_input(ns, &m, 1, t, out, ctr), 0);
			next++;
		}
		n = tq_nsim_release(ns, t, out, 32, ctr);
		for (uint16_t i = 0; i < n; i++) {
			uint32_t seq = frame_seq(out[i]);
			uint64_t waited = t - sent_at[seq];

			min_wait = RTE_MIN(min_wait, waited);
			max_wait = RTE_MAX(max_wait, waited);
			if (got > 0 && seq < last_seq)
				fifo = false;
			last_seq = seq;
			got++;
			rte_pktmbuf_free(out[i]);
		}
	}
	printf("\n    delay %u ± %u us: waited %.1f .. %.1f us\n", delay_us, jitter_us,
	       (double)min_wait / (double)us(1), (double)max_wait / (double)us(1));
	CU_ASSERT_EQUAL(got, 400);
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_delayed], 400);
	/* never early (the due time is computed in whole TSC ticks from µs) */
	CU_ASSERT(min_wait >= (delay_us > jitter_us ? us(delay_us) - us(jitter_us) : 0));
	/* and not late by more than our release tick */
	CU_ASSERT(max_wait <= us(delay_us) + us(jitter_us) + tick);
	if (jitter_us == 0) {
		CU_ASSERT(fifo);
	} else {
		CU_ASSERT(max_wait - min_wait > us(jitter_us)); /* the jitter is really there */
	}
	tq_nsim_free(ns);
	assert_no_leak();
}

static void
test_delay_never_early(void)
{
	check_delay(1000, 0);
	check_delay(1000, 300);
	check_delay(100, 300); /* jitter beyond the delay: clamped to "now", never before */
}

static void
test_rate_limit_holds_long_run_rate(void)
{
	/* 1250-byte frames at 10 Mbit/s: one per millisecond */
	struct tq_nsim_conf c = {.rate_mbps = 10, .seed = 2};
	struct rte_mbuf *in[32], *out[TQ_NSIM_OUT_MAX(32)];
	const uint64_t frame_tsc = us(1000), t0 = us(5000000);
	uint64_t first = 0, last = 0, t;
	uint32_t got = 0;
	bool never_fast = true;
	struct tq_nsim *ns;

	reset();
	ns = make(&c, 0);
	/* 200 frames offered at once, far over the rate */
	for (uint32_t sent = 0; sent < 200; sent += 25) {
		uint16_t n;

		for (uint32_t i = 0; i < 25; i++)
			in[i] = frame(sent + i, 1250);
		n = tq_nsim_input(ns, in, 25, t0, out, ctr);
		for (uint16_t i = 0; i < n; i++, got++)
			rte_pktmbuf_free(out[i]);
	}
	CU_ASSERT(got >= 1 && got <= 2); /* what fits the burst tolerance (1 ms) */
	first = t0;
	for (t = t0; got < 200 && t < t0 + us(400000); t += us(10)) {
		uint16_t n = tq_nsim_release(ns, t, out, 32, ctr);

		for (uint16_t i = 0; i < n; i++, got++) {
			/* frame k may leave at t0 + k ms minus the burst tolerance, never before */
			if (t + us(TQ_NSIM_BURST_US) + us(1) < t0 + got * frame_tsc)
				never_fast = false;
			rte_pktmbuf_free(out[i]);
			last = t;
		}
	}
	printf("\n    200 x 10 kbit at 10 Mbit/s: last left after %.1f ms\n",
	       (double)(last - first) / (double)us(1000));
	CU_ASSERT_EQUAL(got, 200);
	CU_ASSERT(never_fast);
	/* long run: 199 frames after the first took 198..200 ms (burst of 1 ms) */
	CU_ASSERT(last - first >= us(197000) && last - first <= us(200000));
	CU_ASSERT(ctr[TQ_CTR_nsim_rate_limited] >= 197);
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_queue_full], 0);
	tq_nsim_free(ns);
	assert_no_leak();
}

static void
test_full_delay_line_drops_and_leaks_nothing(void)
{
	struct tq_nsim_conf c = {.delay_us = 1000, .queue = 16, .seed = 4};
	struct rte_mbuf *in[50], *out[TQ_NSIM_OUT_MAX(50)];
	struct tq_nsim *ns;

	reset();
	ns = make(&c, 0);
	for (uint32_t i = 0; i < 50; i++)
		in[i] = frame(i, 64);
	CU_ASSERT_EQUAL(tq_nsim_input(ns, in, 50, 100, out, ctr), 0);
	for (uint32_t i = 0; i < 50; i++)
		in[i] = frame(50 + i, 64);
	CU_ASSERT_EQUAL(tq_nsim_input(ns, in, 50, 200, out, ctr), 0);
	CU_ASSERT_EQUAL(tq_nsim_held(ns), 16);
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_delayed], 16);
	CU_ASSERT_EQUAL(ctr[TQ_CTR_nsim_queue_full], 84);
	/* the first 16 leave, in order, after the delay */
	CU_ASSERT_EQUAL(tq_nsim_release(ns, 100 + us(1000) - 1, out, 50, ctr), 0);
	CU_ASSERT_EQUAL_FATAL(tq_nsim_release(ns, 100 + us(1000), out, 50, ctr), 16);
	for (uint32_t i = 0; i < 16; i++)
		CU_ASSERT_EQUAL(frame_seq(out[i]), i);
	rte_pktmbuf_free_bulk(out, 16);
	/* freeing an instance that holds frames frees them */
	for (uint32_t i = 0; i < 10; i++)
		in[i] = frame(i, 64);
	CU_ASSERT_EQUAL(tq_nsim_input(ns, in, 10, 300, out, ctr), 0);
	CU_ASSERT_EQUAL(tq_nsim_held(ns), 10);
	tq_nsim_free(ns);
	assert_no_leak();
}

static void
test_conf_keys_and_sections(void)
{
	struct tq_nsim_conf c = {0};
	unsigned int port;
	enum tq_nsim_dir dir;
	char buf[64];

	CU_ASSERT_EQUAL(tq_nsim_conf_set(&c, "drop", "0.05"), 0);
	CU_ASSERT_DOUBLE_EQUAL(c.drop, 0.05, 1e-12);
	CU_ASSERT_EQUAL(tq_nsim_conf_set(&c, "delay_us", "50000"), 0);
	CU_ASSERT_EQUAL(c.delay_us, 50000);
	CU_ASSERT_EQUAL(tq_nsim_conf_set(&c, "rate_mbps", "2.5"), 0);
	CU_ASSERT_EQUAL(tq_nsim_conf_set(&c, "seed", "18446744073709551615"), 0);
	CU_ASSERT_EQUAL(c.seed, UINT64_MAX);
	CU_ASSERT_EQUAL(tq_nsim_conf_set(&c, "queue", "64"), 0);
	CU_ASSERT(tq_nsim_conf_enabled(&c));
	CU_ASSERT_EQUAL(tq_nsim_conf_get(&c, "drop", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "0.05");
	CU_ASSERT_EQUAL(tq_nsim_conf_get(&c, "rate_mbps", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "2.5");
	CU_ASSERT_EQUAL(tq_nsim_conf_set(&c, "colour", "1"), -ENOENT);
	CU_ASSERT_EQUAL(tq_nsim_conf_get(&c, "colour", buf, sizeof(buf)), -ENOENT);
	{
		const char *bad[][2] = {
			{"drop", "1.5"},  {"drop", "-0.1"},      {"drop", "nan"},
			{"drop", ""},     {"drop", "0.1x"},      {"corrupt", "inf"},
			{"queue", "0"},   {"queue", "2000000"}, {"delay_us", "-1"},
			{"delay_us", "20000000"}, {"seed", "x"}, {"rate_mbps", "-3"},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CU_ASSERT_EQUAL(tq_nsim_conf_set(&c, bad[i][0], bad[i][1]), -EINVAL);
	}
	for (unsigned int k = 0; tq_nsim_keys[k]; k++)
		CU_ASSERT_EQUAL(tq_nsim_conf_get(&c, tq_nsim_keys[k], buf, sizeof(buf)), 0);

	CU_ASSERT_EQUAL(tq_nsim_parse_section("nsim.port3.tx", 8, &port, &dir), 0);
	CU_ASSERT_EQUAL(port, 3);
	CU_ASSERT_EQUAL(dir, TQ_NSIM_TX);
	CU_ASSERT_EQUAL(tq_nsim_parse_section("nsim.port0.rx", 8, &port, &dir), 0);
	CU_ASSERT_EQUAL(dir, TQ_NSIM_RX);
	CU_ASSERT_EQUAL(tq_nsim_parse_section("port0", 8, &port, &dir), -ENOENT);
	CU_ASSERT_EQUAL(tq_nsim_parse_section("dataplane", 8, &port, &dir), -ENOENT);
	CU_ASSERT_EQUAL(tq_nsim_parse_section("nsim.port8.rx", 8, &port, &dir), -EINVAL);
	CU_ASSERT_EQUAL(tq_nsim_parse_section("nsim.port0.up", 8, &port, &dir), -EINVAL);
	CU_ASSERT_EQUAL(tq_nsim_parse_section("nsim.port0", 8, &port, &dir), -EINVAL);
	CU_ASSERT_EQUAL(tq_nsim_parse_section("nsim.portx.rx", 8, &port, &dir), -EINVAL);
	CU_ASSERT_EQUAL(tq_nsim_parse_section("nsim", 8, &port, &dir), -EINVAL);
}

static size_t
heap_allocs(void)
{
	struct rte_malloc_socket_stats s;
	size_t n = 0;

	for (unsigned int sock = 0; sock < rte_socket_count(); sock++)
		if (rte_malloc_get_socket_stats((int)rte_socket_id_by_idx(sock), &s) == 0)
			n += s.alloc_count;
	return n;
}

/* The live-change protocol on a real (not running) worker: swap in, hand back, disable,
 * and a message still queued at destroy. */
static void
test_worker_handover(void)
{
	static struct tq_dp_conf dp;
	struct tq_nsim_conf on = {.drop = 0.5, .seed = 1}, off = {0};
	struct tq_nsim *a, *b, *d;
	struct tq_worker *w;
	size_t allocs = heap_allocs();

	memset(&dp, 0, sizeof(dp));
	dp.nsim[1][TQ_NSIM_TX].delay_us = 100; /* one instance at boot */
	w = tq_worker_create(0, rte_lcore_id(), pool, &dp);
	CU_ASSERT_FATAL(w != NULL);
	CU_ASSERT_EQUAL(w->nsim_active, 1);
	CU_ASSERT_PTR_NOT_NULL(w->nsim[TQ_NSIM_TX][1]);
	CU_ASSERT_PTR_NULL(w->nsim[TQ_NSIM_RX][0]);
	CU_ASSERT_EQUAL(w->nsim_acked, 0);

	a = tq_nsim_create(&on, 0, SOCKET_ID_ANY);
	CU_ASSERT_EQUAL_FATAL(tq_nsim_post(w, 0, TQ_NSIM_RX, a), 0);
	CU_ASSERT_PTR_NULL(w->nsim[TQ_NSIM_RX][0]); /* nothing changes until the worker looks */
	CU_ASSERT_EQUAL(tq_worker_drain_inbound(w), 1);
	CU_ASSERT_PTR_EQUAL(w->nsim[TQ_NSIM_RX][0], a);
	CU_ASSERT_EQUAL(w->nsim_active, 2);
	CU_ASSERT_EQUAL(w->nsim_acked, 1);
	CU_ASSERT_PTR_NULL(tq_nsim_retired(a));

	b = tq_nsim_create(&on, 0, SOCKET_ID_ANY);
	CU_ASSERT_EQUAL_FATAL(tq_nsim_post(w, 0, TQ_NSIM_RX, b), 0);
	CU_ASSERT_EQUAL(tq_worker_drain_inbound(w), 1);
	CU_ASSERT_PTR_EQUAL(w->nsim[TQ_NSIM_RX][0], b);
	CU_ASSERT_EQUAL(w->nsim_acked, 2);
	CU_ASSERT_PTR_EQUAL(tq_nsim_retired(b), a); /* handed back: ours to free */
	tq_nsim_free(a);

	/* disabling: the carrier is never installed, both come back */
	d = tq_nsim_create(&off, 0, SOCKET_ID_ANY);
	CU_ASSERT_EQUAL_FATAL(tq_nsim_post(w, 0, TQ_NSIM_RX, d), 0);
	CU_ASSERT_EQUAL(tq_worker_drain_inbound(w), 1);
	CU_ASSERT_PTR_NULL(w->nsim[TQ_NSIM_RX][0]);
	CU_ASSERT_EQUAL(w->nsim_active, 1);
	CU_ASSERT_EQUAL(w->nsim_acked, 3);
	CU_ASSERT_PTR_EQUAL(tq_nsim_retired(d), b);
	tq_nsim_free(b);
	tq_nsim_free(d);
	CU_ASSERT_EQUAL(w->ctr[TQ_CTR_nsim_updates], 3);

	/* a carrier still queued when the worker goes: destroy frees it with the boot one */
	d = tq_nsim_create(&on, 0, SOCKET_ID_ANY);
	CU_ASSERT_EQUAL(tq_nsim_post(w, TQ_MAX_PORTS, TQ_NSIM_RX, d), -EINVAL);
	CU_ASSERT_EQUAL(tq_nsim_post(w, 0, TQ_NSIM_RX, NULL), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(tq_nsim_post(w, 2, TQ_NSIM_TX, d), 0);
	tq_worker_destroy(w);
	CU_ASSERT_EQUAL(heap_allocs(), allocs);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_disabled_passes_untouched),
		TQ_TEST(test_drop_rate_within_bound),
		TQ_TEST(test_same_seed_same_sequence),
		TQ_TEST(test_duplicates_are_identical_copies),
		TQ_TEST(test_reorder_loses_nothing),
		TQ_TEST(test_corrupt_flips_one_bit_beyond_ethernet),
		TQ_TEST(test_corrupt_tx_checksum_computed_first),
		TQ_TEST(test_delay_never_early),
		TQ_TEST(test_rate_limit_holds_long_run_rate),
		TQ_TEST(test_full_delay_line_drops_and_leaks_nothing),
		TQ_TEST(test_conf_keys_and_sections),
		TQ_TEST(test_worker_handover),
	};

	if (tq_test_eal_init() < 0) {
		fprintf(stderr, "EAL init failed\n");
		return EXIT_FAILURE;
	}
	pool = rte_pktmbuf_pool_create("nsim_test", POOL_SIZE, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	if (!pool) {
		fprintf(stderr, "mbuf pool: %s\n", rte_strerror(rte_errno));
		return EXIT_FAILURE;
	}
	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("nsim", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
