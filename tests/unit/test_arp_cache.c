/*
 * tq_arp_cache: open addressing with linear probing and backward-shift deletion, checked
 * against a plain reference model; full-cache refusal; learn's create/refresh rule.
 */
#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "dataplane/net/tq_arp_cache.h"
#include "tq_test.h"

#define REACHABLE_TSC 1000
#define RETRY_TSC 10

static struct tq_arp_cache cache;
static uint32_t cache_entries; /* what cache was sized for */

static void
cache_init(uint32_t entries)
{
	cache_entries = entries;
	CU_ASSERT_EQUAL_FATAL(tq_arp_cache_init(&cache, entries, SOCKET_ID_ANY, REACHABLE_TSC,
						 RETRY_TSC, 3), 0);
}

static uint32_t
slot_index(const struct tq_arp_entry *e)
{
	return (uint32_t)(e - cache.slots);
}

/* The slot @ip hashes to, found the way a user can: its slot in an otherwise empty table. */
static uint32_t
home_of(uint32_t ip)
{
	struct tq_arp_cache probe;
	struct tq_arp_entry *e;
	uint32_t home;

	if (tq_arp_cache_init(&probe, cache_entries, SOCKET_ID_ANY, 1, 1, 1) != 0 ||
	    probe.mask != cache.mask)
		abort();
	e = tq_arp_cache_insert(&probe, ip);
	home = (uint32_t)(e - probe.slots);
	tq_arp_cache_free(&probe);
	return home;
}

/* Find @n addresses (network order, 10.0.0.0/8) whose home slot is @home. */
static void
find_colliding(uint32_t home, uint32_t *out, size_t n)
{
	size_t found = 0;

	for (uint32_t host = 1; found < n && host < (1u << 24); host++) {
		uint32_t ip = rte_cpu_to_be_32(0x0a000000u | host);

		if (home_of(ip) == home)
			out[found++] = ip;
	}
	CU_ASSERT_EQUAL_FATAL(found, n);
}

static void
test_init_sizes(void)
{
	static const uint32_t entries[] = {1, 2, 3, 47, 48, 64, 100, 1000, 1024, 4096};

	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		cache_init(entries[i]);
		CU_ASSERT(cache.limit >= entries[i]);	      /* asked-for entries all fit */
		CU_ASSERT(cache.limit < cache.mask + 1);      /* a free slot always ends a probe */
		CU_ASSERT_EQUAL((cache.mask + 1) & cache.mask, 0); /* power of two */
		CU_ASSERT_EQUAL(cache.used, 0);
		tq_arp_cache_free(&cache);
		CU_ASSERT_PTR_NULL(cache.slots);
		tq_arp_cache_free(&cache); /* twice is harmless */
	}
	CU_ASSERT_EQUAL(tq_arp_cache_init(&cache, 0, SOCKET_ID_ANY, 1, 1, 1), -EINVAL);
	CU_ASSERT_EQUAL(tq_arp_cache_init(&cache, (1u << 24) + 1, SOCKET_ID_ANY, 1, 1, 1),
			-EINVAL);
}

static void
test_insert_lookup(void)
{
	uint32_t ip = rte_cpu_to_be_32(0xc6120007);
	struct tq_arp_entry *e, *again;

	cache_init(64);
	CU_ASSERT_PTR_NULL(tq_arp_cache_lookup(&cache, ip));
	e = tq_arp_cache_insert(&cache, ip);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->ip, ip);
	CU_ASSERT_NOT_EQUAL(e->state, TQ_ARP_FREE);
	CU_ASSERT_PTR_NULL(e->hold);
	CU_ASSERT_EQUAL(e->retries, 0);
	CU_ASSERT_EQUAL(cache.used, 1);
	CU_ASSERT_PTR_EQUAL(tq_arp_cache_lookup(&cache, ip), e);
	again = tq_arp_cache_insert(&cache, ip);
	CU_ASSERT_PTR_EQUAL(again, e);
	CU_ASSERT_EQUAL(cache.used, 1);
	CU_ASSERT_PTR_NULL(tq_arp_cache_lookup(&cache, ip + 1));
	tq_arp_cache_remove(&cache, e);
	CU_ASSERT_EQUAL(cache.used, 0);
	CU_ASSERT_PTR_NULL(tq_arp_cache_lookup(&cache, ip));
	tq_arp_cache_free(&cache);
}

/*
 * Keys sharing one home slot form a run; removing any one of them keeps every other one
 * findable (no tombstones: later keys shift back). Also across the table's wrap-around.
 */
static void
test_colliding_keys(void)
{
	uint32_t keys[6];

	cache_init(64);
	for (int wrap = 0; wrap < 2; wrap++) {
		uint32_t home = wrap ? cache.mask - 2 : 5;

		find_colliding(home, keys, 6);
		for (size_t victim = 0; victim < 6; victim++) {
			for (size_t i = 0; i < 6; i++) {
				struct tq_arp_entry *e = tq_arp_cache_insert(&cache, keys[i]);

				CU_ASSERT_PTR_NOT_NULL_FATAL(e);
				CU_ASSERT_EQUAL(slot_index(e), (home + i) & cache.mask);
				e->state = TQ_ARP_REACHABLE;
				e->port = (uint16_t)i;
			}
			tq_arp_cache_remove(&cache, tq_arp_cache_lookup(&cache, keys[victim]));
			CU_ASSERT_PTR_NULL(tq_arp_cache_lookup(&cache, keys[victim]));
			for (size_t i = 0; i < 6; i++) {
				struct tq_arp_entry *e = tq_arp_cache_lookup(&cache, keys[i]);

				if (i == victim)
					continue;
				CU_ASSERT_PTR_NOT_NULL_FATAL(e);
				CU_ASSERT_EQUAL(e->port, i); /* the entry moved with its data */
				CU_ASSERT_EQUAL(e->state, TQ_ARP_REACHABLE);
				/* the run closed up: no gap before the last key */
				CU_ASSERT_EQUAL(slot_index(e),
						(home + i - (i > victim)) & cache.mask);
			}
			CU_ASSERT_EQUAL(cache.used, 5);
			for (size_t i = 0; i < 6; i++)
				if (i != victim)
					tq_arp_cache_remove(&cache,
							    tq_arp_cache_lookup(&cache, keys[i]));
			CU_ASSERT_EQUAL(cache.used, 0);
		}
	}
	tq_arp_cache_free(&cache);
}

/* An entry whose home is after the hole must not be shifted in front of its home. */
static void
test_remove_keeps_home_order(void)
{
	uint32_t a[2], b[2];
	struct tq_arp_entry *e;

	cache_init(64);
	find_colliding(10, a, 2); /* slots 10, 11 */
	find_colliding(12, b, 2); /* slots 12, 13 */
	for (size_t i = 0; i < 2; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(tq_arp_cache_insert(&cache, a[i]));
		CU_ASSERT_PTR_NOT_NULL_FATAL(tq_arp_cache_insert(&cache, b[i]));
	}
	/* now a[0]@10 a[1]@11 b[0]@12 b[1]@13; a[1] shifts back, b[1] must not (home 12) */
	tq_arp_cache_remove(&cache, tq_arp_cache_lookup(&cache, a[0]));
	e = tq_arp_cache_lookup(&cache, a[1]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(slot_index(e), 10);
	e = tq_arp_cache_lookup(&cache, b[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(slot_index(e), 12); /* at home: stays */
	e = tq_arp_cache_lookup(&cache, b[1]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(slot_index(e), 13);
	tq_arp_cache_free(&cache);
}

/* Random insert/remove/lookup against a plain array, with keys crowded around wrap-around. */
static void
test_random_against_model(void)
{
	enum { NKEYS = 160, STEPS = 30000 };
	static uint32_t keys[NKEYS];
	static bool present[NKEYS];
	uint32_t used = 0;
	size_t nk = 0;

	cache_init(48); /* 128 slots, limit 96 */
	/* keys whose homes fall in the last 8 and first 8 slots: long, wrapping runs */
	for (uint32_t host = 1; nk < NKEYS; host++) {
		uint32_t ip = rte_cpu_to_be_32(0xc0a80000u + host);
		uint32_t home = home_of(ip);

		if (home >= cache.mask - 7 || home < 8 || (host % 5 == 0 && nk < NKEYS / 4))
			keys[nk++] = ip;
	}
	memset(present, 0, sizeof(present));
	srand(826);
	for (int step = 0; step < STEPS; step++) {
		size_t k = (size_t)rand() % NKEYS;
		int op = rand() % 3;
		struct tq_arp_entry *e;

		if (op == 0) {
			e = tq_arp_cache_insert(&cache, keys[k]);
			if (present[k]) {
				CU_ASSERT_PTR_NOT_NULL(e);
			} else if (used >= cache.limit) {
				CU_ASSERT_PTR_NULL(e);
			} else {
				CU_ASSERT_PTR_NOT_NULL_FATAL(e);
				e->mac.addr_bytes[0] = (uint8_t)k;
				e->port = (uint16_t)k;
				present[k] = true;
				used++;
			}
		} else if (op == 1) {
			e = tq_arp_cache_lookup(&cache, keys[k]);
			CU_ASSERT_EQUAL(e != NULL, present[k]);
			if (e) {
				tq_arp_cache_remove(&cache, e);
				present[k] = false;
				used--;
			}
		} else {
			/* fill hard now and then so the cache also runs full */
			for (size_t i = 0; i < NKEYS && used < cache.limit && step % 500 == 0; i++)
				if (!present[i] && tq_arp_cache_insert(&cache, keys[i])) {
					e = tq_arp_cache_lookup(&cache, keys[i]);
					e->mac.addr_bytes[0] = (uint8_t)i;
					e->port = (uint16_t)i;
					present[i] = true;
					used++;
				}
		}
		CU_ASSERT_EQUAL_FATAL(cache.used, used);
		for (size_t i = 0; i < NKEYS; i++) {
			e = tq_arp_cache_lookup(&cache, keys[i]);
			if (present[i] != (e != NULL)) {
				CU_FAIL_FATAL("lookup disagrees with the model");
			}
			if (e) {
				CU_ASSERT_EQUAL_FATAL(e->ip, keys[i]);
				CU_ASSERT_EQUAL_FATAL(e->port, i);
			}
		}
	}
	tq_arp_cache_free(&cache);
}

/*
 * The neighbours of one subnet differ only in their last bytes (network order): they must
 * still spread over the table, or every lookup walks one long run of them.
 */
static void
test_subnet_spreads(void)
{
	enum { HOSTS = 250 };
	static bool home_used[4096];
	unsigned int homes = 0, worst = 0;

	cache_init(1024);
	CU_ASSERT_FATAL(cache.mask < RTE_DIM(home_used));
	memset(home_used, 0, sizeof(home_used));
	for (uint32_t host = 1; host <= HOSTS; host++) {
		uint32_t ip = rte_cpu_to_be_32(0xc6120000u | host); /* 198.18.0.host */
		uint32_t home = home_of(ip);
		struct tq_arp_entry *e = tq_arp_cache_insert(&cache, ip);
		unsigned int dist;

		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		homes += !home_used[home];
		home_used[home] = true;
		dist = (slot_index(e) - home) & cache.mask;
		worst = RTE_MAX(worst, dist);
	}
	if (homes < HOSTS / 2 || worst > 16)
		fprintf(stderr, "\n  %u hosts of a /24: %u home slots, longest probe %u\n", HOSTS,
			homes, worst);
	CU_ASSERT(homes >= HOSTS / 2);
	CU_ASSERT(worst <= 16);
	tq_arp_cache_free(&cache);
}

static void
test_full_cache_refuses(void)
{
	struct rte_ether_addr mac = {{0x02, 0, 0, 0, 0, 9}};
	uint32_t first = rte_cpu_to_be_32(0x0a000001), extra;
	uint32_t i;

	cache_init(20);
	for (i = 0; i < cache.limit; i++)
		CU_ASSERT_PTR_NOT_NULL_FATAL(
			tq_arp_cache_insert(&cache, rte_cpu_to_be_32(0x0a000001 + i)));
	extra = rte_cpu_to_be_32(0x0a000001 + i);
	CU_ASSERT_EQUAL(cache.used, cache.limit);
	CU_ASSERT_PTR_NULL(tq_arp_cache_insert(&cache, extra));
	CU_ASSERT_PTR_NULL(tq_arp_cache_learn(&cache, 0, extra, &mac, 1, true));
	CU_ASSERT_PTR_NULL(tq_arp_cache_lookup(&cache, extra)); /* and lookup still ends */
	CU_ASSERT_EQUAL(cache.used, cache.limit);
	/* existing entries still answer, and may be refreshed */
	CU_ASSERT_PTR_NOT_NULL(tq_arp_cache_insert(&cache, first));
	CU_ASSERT_PTR_NOT_NULL(tq_arp_cache_learn(&cache, 0, first, &mac, 1, true));
	/* one removal makes room for one more */
	tq_arp_cache_remove(&cache, tq_arp_cache_lookup(&cache, first));
	CU_ASSERT_PTR_NOT_NULL(tq_arp_cache_insert(&cache, extra));
	CU_ASSERT_PTR_NULL(tq_arp_cache_insert(&cache, first));
	tq_arp_cache_free(&cache);
}

static void
test_learn_create_and_refresh(void)
{
	struct rte_ether_addr mac1 = {{0x52, 0x54, 0, 0, 0, 1}}, mac2 = {{0x52, 0x54, 0, 0, 0, 2}};
	uint32_t ip = rte_cpu_to_be_32(0xc6120007), other = rte_cpu_to_be_32(0xc6120008);
	struct tq_arp_entry *e;

	cache_init(64);
	/* create=false: nothing to refresh, nothing created */
	CU_ASSERT_PTR_NULL(tq_arp_cache_learn(&cache, 1, ip, &mac1, 100, false));
	CU_ASSERT_PTR_NULL(tq_arp_cache_lookup(&cache, ip));
	CU_ASSERT_EQUAL(cache.used, 0);

	/* create=true: a reachable entry */
	e = tq_arp_cache_learn(&cache, 1, ip, &mac1, 100, true);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_EQUAL(tq_arp_cache_lookup(&cache, ip), e);
	CU_ASSERT_EQUAL(e->state, TQ_ARP_REACHABLE);
	CU_ASSERT_EQUAL(e->port, 1);
	CU_ASSERT(rte_is_same_ether_addr(&e->mac, &mac1));
	CU_ASSERT_EQUAL(e->expire_tsc, 100 + REACHABLE_TSC);

	/* create=false on an existing entry: refreshed, moved, no new entry */
	e = tq_arp_cache_learn(&cache, 2, ip, &mac2, 500, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT(rte_is_same_ether_addr(&e->mac, &mac2));
	CU_ASSERT_EQUAL(e->port, 2);
	CU_ASSERT_EQUAL(e->expire_tsc, 500 + REACHABLE_TSC);
	CU_ASSERT_EQUAL(cache.used, 1);
	CU_ASSERT_PTR_NULL(tq_arp_cache_learn(&cache, 1, other, &mac1, 500, false));
	CU_ASSERT_EQUAL(cache.used, 1);

	/* an INCOMPLETE entry with retries becomes reachable, retries reset */
	e = tq_arp_cache_insert(&cache, other);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	e->state = TQ_ARP_INCOMPLETE;
	e->retries = 2;
	e = tq_arp_cache_learn(&cache, 3, other, &mac1, 900, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->state, TQ_ARP_REACHABLE);
	CU_ASSERT_EQUAL(e->retries, 0);
	CU_ASSERT_EQUAL(e->port, 3);
	tq_arp_cache_free(&cache);
}

/* Learning keeps a held packet for the caller to send; free releases any still held. */
static void
test_hold_and_free(void)
{
	struct rte_mempool *pool = rte_pktmbuf_pool_create("tq_arp_cache_pool", 63, 0, 0,
							   RTE_MBUF_DEFAULT_BUF_SIZE,
							   SOCKET_ID_ANY);
	struct rte_ether_addr mac = {{0x52, 0x54, 0, 0, 0, 1}};
	unsigned int avail;
	struct tq_arp_entry *e;
	struct rte_mbuf *m;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
	avail = rte_mempool_avail_count(pool);
	cache_init(64);
	for (uint32_t i = 0; i < 10; i++) {
		e = tq_arp_cache_insert(&cache, rte_cpu_to_be_32(0x0a000001 + i));
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		e->hold = rte_pktmbuf_alloc(pool);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e->hold);
	}
	m = tq_arp_cache_lookup(&cache, rte_cpu_to_be_32(0x0a000001))->hold;
	e = tq_arp_cache_learn(&cache, 0, rte_cpu_to_be_32(0x0a000001), &mac, 1, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_EQUAL(e->hold, m);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), avail - 10);
	tq_arp_cache_free(&cache);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(pool), avail);
	rte_mempool_free(pool);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_init_sizes),
		TQ_TEST(test_insert_lookup),
		TQ_TEST(test_colliding_keys),
		TQ_TEST(test_remove_keeps_home_order),
		TQ_TEST(test_random_against_model),
		TQ_TEST(test_subnet_spreads),
		TQ_TEST(test_full_cache_refuses),
		TQ_TEST(test_learn_create_and_refresh),
		TQ_TEST(test_hold_and_free),
	};
	int rc;

	if (tq_test_eal_init() < 0) {
		fprintf(stderr, "test_arp_cache: EAL init failed\n");
		return EXIT_FAILURE;
	}
	if (CU_initialize_registry() != CUE_SUCCESS ||
	    TQ_SUITE("arp_cache", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	rc = tq_test_run();
	rte_eal_cleanup();
	return rc;
}
