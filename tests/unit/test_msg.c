/*
 * routing/tq_msg: the shared message and the mbuf helpers the broker's zero-copy path
 * stands on: slices by reference across segment boundaries, copies out, chains from
 * bytes, and reference counts that give every mbuf and message back exactly once.
 */
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_mbuf.h>

#include "dataplane/net/tq_tcp.h"
#include "routing/tq_msg.h"
#include "tq_test.h"

#define POOL_SIZE 1023

static struct rte_mempool *pool, *msg_pool;

/* A chain of @nseg segments holding bytes 0, 1, 2, ... with the given segment sizes. */
static struct rte_mbuf *
make_chain(const uint16_t *sizes, unsigned int nseg, uint8_t *model)
{
	struct rte_mbuf *head = NULL;
	uint32_t off = 0;

	for (unsigned int i = 0; i < nseg; i++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		uint8_t *p;

		CU_ASSERT_FATAL(m != NULL);
		p = (uint8_t *)rte_pktmbuf_append(m, sizes[i]);
		for (uint16_t j = 0; j < sizes[i]; j++, off++)
			p[j] = model[off] = (uint8_t)(off * 7 + 3);
		if (head) {
			CU_ASSERT_FATAL(rte_pktmbuf_chain(head, m) == 0);
		} else {
			head = m;
		}
	}
	return head;
}

static void
test_slice_every_range(void)
{
	static const uint16_t sizes[] = {5, 1, 300, 17, 1000};
	uint8_t model[1323], out[1323];
	unsigned int avail = rte_mempool_avail_count(pool);
	struct rte_mbuf *chain = make_chain(sizes, 5, model);
	uint32_t total = rte_pktmbuf_pkt_len(chain);

	CU_ASSERT_EQUAL(total, 1323);
	/* every start at a boundary or inside one, lengths across 0..3 boundaries */
	for (uint32_t off = 0; off < total; off += 7) {
		for (uint32_t len = 1; off + len <= total; len += 61) {
			struct rte_mbuf *s = tq_mbuf_slice(pool, chain, off, len);

			CU_ASSERT_FATAL(s != NULL);
			CU_ASSERT_EQUAL(rte_pktmbuf_pkt_len(s), len);
			CU_ASSERT_EQUAL(tq_mbuf_copy_out(s, 0, len, out), 0);
			CU_ASSERT_EQUAL(memcmp(out, model + off, len), 0);
			/* a slice points into the original: no copy */
			CU_ASSERT(RTE_MBUF_CLONED(s) != 0);
			rte_pktmbuf_free(s);
		}
	}
	CU_ASSERT_PTR_NULL(tq_mbuf_slice(pool, chain, 1300, 24)); /* past the end */
	rte_pktmbuf_free(chain);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), avail); /* nothing leaked */
}

static void
test_slice_outlives_original(void)
{
	static const uint16_t sizes[] = {100, 100};
	uint8_t model[200], out[150];
	unsigned int avail = rte_mempool_avail_count(pool);
	struct rte_mbuf *chain = make_chain(sizes, 2, model);
	struct rte_mbuf *s = tq_mbuf_slice(pool, chain, 30, 150);

	CU_ASSERT_FATAL(s != NULL);
	rte_pktmbuf_free(chain); /* the receive chain goes; the message keeps the bytes */
	CU_ASSERT(rte_mempool_avail_count(pool) < avail);
	CU_ASSERT_EQUAL(tq_mbuf_copy_out(s, 0, 150, out), 0);
	CU_ASSERT_EQUAL(memcmp(out, model + 30, 150), 0);
	rte_pktmbuf_free(s);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), avail);
}

static void
test_copy_out_bounds(void)
{
	static const uint16_t sizes[] = {10, 10};
	uint8_t model[20], out[21];
	struct rte_mbuf *chain = make_chain(sizes, 2, model);

	CU_ASSERT_EQUAL(tq_mbuf_copy_out(chain, 5, 15, out), 0);
	CU_ASSERT_EQUAL(memcmp(out, model + 5, 15), 0);
	CU_ASSERT_EQUAL(tq_mbuf_copy_out(chain, 5, 16, out), -EINVAL);
	CU_ASSERT_EQUAL(tq_mbuf_copy_out(chain, 20, 1, out), -EINVAL);
	CU_ASSERT_EQUAL(tq_mbuf_copy_out(chain, 20, 0, out), 0);
	rte_pktmbuf_free(chain);
}

static void
test_from_bytes_spans_segments(void)
{
	uint32_t len = 5000;
	uint8_t *src = malloc(len), *out = malloc(len);
	struct rte_mbuf *m;

	for (uint32_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i ^ (i >> 8));
	m = tq_mbuf_from_bytes(pool, src, len);
	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT_EQUAL(rte_pktmbuf_pkt_len(m), len);
	CU_ASSERT(m->nb_segs >= 3); /* 2 KiB mbufs */
	CU_ASSERT_EQUAL(tq_mbuf_copy_out(m, 0, len, out), 0);
	CU_ASSERT_EQUAL(memcmp(src, out, len), 0);
	CU_ASSERT_PTR_NULL(tq_mbuf_from_bytes(pool, src, 0));
	rte_pktmbuf_free(m);
	free(src);
	free(out);
}

static void
test_refcount_frees_once(void)
{
	unsigned int mbufs = rte_mempool_avail_count(pool);
	unsigned int msgs = rte_mempool_avail_count(msg_pool);
	bool heap;
	struct tq_msg *m = tq_msg_alloc(msg_pool, 100, &heap);

	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT_FALSE(heap);
	CU_ASSERT_EQUAL(m->refcnt, 1);
	m->payload = tq_mbuf_from_bytes(pool, "hello", 5);
	m->payload_len = 5;
	tq_msg_ref(m);
	tq_msg_ref(m);
	tq_msg_unref(m);
	tq_msg_release(m);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(msg_pool), msgs - 1); /* one reference left */
	tq_msg_unref(m);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(msg_pool), msgs);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), mbufs); /* the payload went with it */
}

static void
test_large_inline_goes_to_heap(void)
{
	unsigned int msgs = rte_mempool_avail_count(msg_pool);
	bool heap;
	struct tq_msg *m = tq_msg_alloc(msg_pool, TQ_MSG_INLINE + 1, &heap);

	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT_TRUE(heap);
	memset(m->data, 'x', TQ_MSG_INLINE + 1); /* all of it is ours (ASan checks) */
	CU_ASSERT_EQUAL(rte_mempool_avail_count(msg_pool), msgs);
	tq_msg_unref(m);
	m = tq_msg_alloc(msg_pool, TQ_MSG_INLINE, &heap);
	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT_FALSE(heap);
	tq_msg_unref(m);
}

/* Walk an output list as TCP does (next, data_len), copying it out; count its mbufs. */
static uint32_t
out_read(const struct rte_mbuf *m, uint8_t *dst, unsigned int *mbufs)
{
	uint32_t n = 0;

	for (*mbufs = 0; m; m = m->next, (*mbufs)++) {
		memcpy(dst + n, rte_pktmbuf_mtod(m, const uint8_t *), m->data_len);
		n += m->data_len;
	}
	return n;
}

static void
test_out_bytes_share_mbufs(void)
{
	unsigned int avail = rte_mempool_avail_count(pool), mbufs;
	uint32_t bytes = 0, len = 0;
	struct rte_mbuf *head = NULL, *tail = NULL, *src, *clone;
	static uint8_t want[40000], got[40000];

	for (uint32_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 7 + (i >> 9));
	/* small pieces fill one mbuf before another is taken */
	CU_ASSERT_EQUAL(tq_mbuf_out_bytes(pool, &head, &tail, &bytes, want, 100), 0);
	CU_ASSERT_EQUAL(tq_mbuf_out_bytes(pool, &head, &tail, &bytes, want + 100, 200), 0);
	len = 300;
	CU_ASSERT_EQUAL(bytes, 300);
	CU_ASSERT_EQUAL(out_read(head, got, &mbufs), 300);
	CU_ASSERT_EQUAL(mbufs, 1);
	/* a piece crossing the mbuf's end continues in a fresh one */
	CU_ASSERT_EQUAL(tq_mbuf_out_bytes(pool, &head, &tail, &bytes, want + len, 3000), 0);
	len += 3000;
	CU_ASSERT_EQUAL(out_read(head, got, &mbufs), len);
	CU_ASSERT_EQUAL(mbufs, 2);
	/* an indirect tail (a payload clone) is never written into */
	src = tq_mbuf_from_bytes(pool, want + len, 50);
	CU_ASSERT_FATAL(src != NULL);
	clone = tq_mbuf_slice(pool, src, 0, 50);
	CU_ASSERT_FATAL(clone != NULL);
	rte_pktmbuf_free(src);
	tq_mbuf_out_chain(&head, &tail, &bytes, clone);
	len += 50;
	CU_ASSERT_EQUAL(tq_mbuf_out_bytes(pool, &head, &tail, &bytes, want + len, 10), 0);
	len += 10;
	CU_ASSERT_EQUAL(out_read(head, got, &mbufs), len);
	CU_ASSERT_EQUAL(mbufs, 4);
	/* large: a chain of its own */
	CU_ASSERT_EQUAL(tq_mbuf_out_bytes(pool, &head, &tail, &bytes, want + len, 30000), 1);
	len += 30000;
	CU_ASSERT_EQUAL(bytes, len);
	CU_ASSERT_EQUAL(rte_pktmbuf_pkt_len(head), len);
	CU_ASSERT_EQUAL(out_read(head, got, &mbufs), len);
	CU_ASSERT_EQUAL(memcmp(got, want, len), 0);
	CU_ASSERT_PTR_EQUAL(tail, rte_pktmbuf_lastseg(tail));
	tq_tcp_chain_free(head); /* as TCP frees such a list */
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), avail); /* nothing leaked */
}

static void
test_now_ms_moves(void)
{
	uint64_t a = tq_msg_now_ms();
	struct timespec ts = {0, 20 * 1000 * 1000};

	nanosleep(&ts, NULL);
	CU_ASSERT(tq_msg_now_ms() >= a + 15);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_slice_every_range),
		TQ_TEST(test_slice_outlives_original),
		TQ_TEST(test_copy_out_bounds),
		TQ_TEST(test_from_bytes_spans_segments),
		TQ_TEST(test_out_bytes_share_mbufs),
		TQ_TEST(test_refcount_frees_once),
		TQ_TEST(test_large_inline_goes_to_heap),
		TQ_TEST(test_now_ms_moves),
	};

	if (tq_test_eal_init() < 0) {
		fprintf(stderr, "EAL init failed\n");
		return EXIT_FAILURE;
	}
	pool = rte_pktmbuf_pool_create("msg_test", POOL_SIZE, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	msg_pool = tq_msg_pool_create("msg_test_msgs", 63, SOCKET_ID_ANY);
	if (!pool || !msg_pool) {
		fprintf(stderr, "pools: %s\n", rte_strerror(rte_errno));
		return EXIT_FAILURE;
	}
	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("msg", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
