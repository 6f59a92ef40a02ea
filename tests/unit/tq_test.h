/*
 * Shared helpers for tachyon's CUnit suites: a main() that runs the registered suites and
 * exits non-zero on any failure, guard-page buffers for over-read checks, and an EAL
 * bring-up that needs neither hugepages nor a NIC.
 */
#ifndef TQ_TEST_H
#define TQ_TEST_H

#include <stddef.h>
#include <stdint.h>

#include <CUnit/Basic.h>

/*
 * Copy @len bytes of @data into a buffer whose last byte sits right before a PROT_NONE
 * page, so any read past the end faults. Free with tq_test_guard_free(). Aborts on error.
 */
uint8_t *tq_test_guarded(const void *data, size_t len);
void tq_test_guard_free(uint8_t *p, size_t len);

/*
 * RFC 1071 the slow way, over big-endian words: the one's-complement sum of @len bytes,
 * folded, not inverted. A model independent of dataplane/net/tq_csum.h, for checking it.
 */
uint16_t tq_test_ref_sum(const uint8_t *p, size_t len);

/* Initialise DPDK's EAL for unit tests: --no-huge --no-pci, no shared files, one lcore. */
int tq_test_eal_init(void);

/* Add @n tests of @tests to a new suite @name. Returns CUE_SUCCESS or an error. */
struct tq_test_case {
	const char *name;
	void (*fn)(void);
};
int tq_test_add_suite(const char *name, const struct tq_test_case *tests, size_t n);

#define TQ_TEST(fn) {#fn, fn}
#define TQ_SUITE(name, arr) tq_test_add_suite(name, arr, sizeof(arr) / sizeof(arr[0]))

/*
 * Run every registered suite verbosely; returns the process exit code (0 when all passed).
 * Call after registering suites in main().
 */
int tq_test_run(void);

#endif
