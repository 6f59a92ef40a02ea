/*
 * Log-linear latency histogram for bench/: 32 sub-buckets per power of two (about 3 %
 * resolution), exact below 64. Header-only so that both the DPDK bench (tcpbench.c) and the
 * plain-Linux one (linux_rr.c) use the same buckets and percentiles. One thread per
 * histogram; no allocation.
 */
#ifndef TQ_HIST_H
#define TQ_HIST_H

#include <stdint.h>

#define H_SUB_BITS 5
#define H_SUB (1u << H_SUB_BITS)
#define H_BUCKETS ((64 - H_SUB_BITS + 1) * H_SUB)

struct hist {
	uint64_t n, max, sum;
	uint64_t b[H_BUCKETS];
};

static inline unsigned int
hist_idx(uint64_t v)
{
	unsigned int e;

	if (v < 2 * H_SUB)
		return (unsigned int)v;
	e = 63u - (unsigned int)__builtin_clzll(v); /* >= H_SUB_BITS + 1 */
	/* v >> (e - H_SUB_BITS) is in [H_SUB, 2 * H_SUB): consecutive after the linear part */
	return ((e - H_SUB_BITS) << H_SUB_BITS) + (unsigned int)(v >> (e - H_SUB_BITS));
}

/* Highest value that lands in bucket @i. */
static inline uint64_t
hist_upper(unsigned int i)
{
	unsigned int e, q;

	if (i < 2 * H_SUB)
		return i;
	e = (i >> H_SUB_BITS) + H_SUB_BITS - 1;
	q = H_SUB + (i & (H_SUB - 1));
	return ((uint64_t)(q + 1) << (e - H_SUB_BITS)) - 1;
}

static inline void
hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_idx(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

/* The @p-th percentile (0..100): the upper bound of its bucket, never above the maximum. */
static inline uint64_t
hist_pct(const struct hist *h, double p)
{
	uint64_t want = (uint64_t)(p / 100.0 * (double)h->n + 0.999999), seen = 0;

	if (h->n == 0)
		return 0;
	if (want == 0)
		want = 1;
	for (unsigned int i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return hist_upper(i) < h->max ? hist_upper(i) : h->max;
	}
	return h->max;
}

#endif
