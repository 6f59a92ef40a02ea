#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_eal.h>

#include "tq_test.h"

uint8_t *
tq_test_guarded(const void *data, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t span = (len + page - 1) / page * page + page;
	uint8_t *base = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *guard, *p;

	if (base == MAP_FAILED)
		abort();
	guard = base + span - page;
	if (mprotect(guard, page, PROT_NONE))
		abort();
	p = guard - len;
	if (len)
		memcpy(p, data, len);
	return p;
}

void
tq_test_guard_free(uint8_t *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_span = (len + page - 1) / page * page;
	uint8_t *guard = p + len; /* page-aligned by construction */

	munmap(guard - data_span, data_span + page);
}

uint16_t
tq_test_ref_sum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i += 2)
		sum += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

int
tq_test_eal_init(void)
{
	static int done;
	char prefix[32];
	/* Not --in-memory: DPDK 22.11 refuses it beside --no-huge ("legacy mem"). No shared
	 * files and a prefix of our own instead, so that suites never collide. */
	char *argv[] = {
		"tq_test", "--no-huge", "--no-pci", "-m", "128", "--no-shconf", "--no-telemetry",
		"--file-prefix", prefix, "-l", "0", "--log-level", "*:error", NULL,
	};

	if (done)
		return 0;
	snprintf(prefix, sizeof(prefix), "tq_test_%d", (int)getpid());
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv) < 0)
		return -1;
	done = 1;
	return 0;
}

int
tq_test_add_suite(const char *name, const struct tq_test_case *tests, size_t n)
{
	CU_pSuite s = CU_add_suite(name, NULL, NULL);

	if (!s)
		return CU_get_error();
	for (size_t i = 0; i < n; i++)
		if (!CU_add_test(s, tests[i].name, tests[i].fn))
			return CU_get_error();
	return CUE_SUCCESS;
}

int
tq_test_run(void)
{
	unsigned int failed;

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
