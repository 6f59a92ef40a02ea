/* tq_config: defaults, INI files, command-line options, and the errors operators see. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "control/tq_config.h"
#include "tq_test.h"

static char err[256];

static const char *
write_ini(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	strcpy(path, "/tmp/tq_test_config_XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_defaults_busy_polling(void)
{
	struct tq_config c;

	tq_config_defaults(&c);
	CU_ASSERT_EQUAL(c.dp.idle, TQ_IDLE_BUSY);
	CU_ASSERT_EQUAL(c.dp.burst, 32);
	CU_ASSERT_EQUAL(c.dp.ports[0].ipv4, 0);
}

static void
test_file_sets_ports_and_dataplane(void)
{
	struct tq_config c;
	const char *path = write_ini("; demo\n[dataplane]\nidle = adaptive\nburst = 16\n"
				     "[arp]\nentries = 64\n"
				     "[port1]\nipv4 = 198.18.0.2/24\ngateway = 198.18.0.1\nmtu = 9000\n");

	tq_config_defaults(&c);
	CU_ASSERT_EQUAL_FATAL(tq_config_load(&c, path, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.dp.idle, TQ_IDLE_ADAPTIVE);
	CU_ASSERT_EQUAL(c.dp.burst, 16);
	CU_ASSERT_EQUAL(c.dp.arp_entries, 64);
	CU_ASSERT_EQUAL(c.dp.ports[1].ipv4, inet_addr("198.18.0.2"));
	CU_ASSERT_EQUAL(c.dp.ports[1].prefix_len, 24);
	CU_ASSERT_EQUAL(c.dp.ports[1].gateway, inet_addr("198.18.0.1"));
	CU_ASSERT_EQUAL(c.dp.ports[1].mtu, 9000);
	CU_ASSERT_STRING_EQUAL(c.path, path);
	unlink(path);
}

static void
test_file_errors_name_the_setting(void)
{
	struct tq_config c;
	const char *bad[] = {
		"[dataplane]\nidle = sometimes\n", "[dataplane]\nburst = 0\n",
		"[dataplane]\nburst = 12x\n",      "[nosuch]\nkey = 1\n",
		"[port0]\nipv4 = 300.1.1.1/24\n",  "[port0]\nipv4 = 198.18.0.2/33\n",
		"[port9]\nipv4 = 198.18.0.2/24\n", "[port0]\ncolour = blue\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *path = write_ini(bad[i]);

		tq_config_defaults(&c);
		err[0] = '\0';
		CU_ASSERT(tq_config_load(&c, path, err, sizeof(err)) < 0);
		CU_ASSERT(strlen(err) > 0);
		unlink(path);
	}
	tq_config_defaults(&c);
	CU_ASSERT(tq_config_load(&c, "/nonexistent/tachyond.ini", err, sizeof(err)) < 0);
}

static void
test_args_override(void)
{
	struct tq_config c;
	char *argv[] = {"tachyond", "--idle", "adaptive", "--ipv4", "0=198.18.0.2/24",
			"--gateway", "0=198.18.0.1", "--set", "arp.retries=5", NULL};

	tq_config_defaults(&c);
	CU_ASSERT_EQUAL_FATAL(tq_config_parse_args(&c, 9, argv, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.dp.idle, TQ_IDLE_ADAPTIVE);
	CU_ASSERT_EQUAL(c.dp.ports[0].ipv4, inet_addr("198.18.0.2"));
	CU_ASSERT_EQUAL(c.dp.ports[0].gateway, inet_addr("198.18.0.1"));
	CU_ASSERT_EQUAL(c.dp.arp_retries, 5);
}

static void
test_args_errors(void)
{
	struct tq_config c;
	char *a1[] = {"tachyond", "--ipv4", "198.18.0.2/24", NULL};
	char *a2[] = {"tachyond", "--bogus", NULL};
	char *a3[] = {"tachyond", "--set", "arp.retries", NULL};
	char *a4[] = {"tachyond", "stray", NULL};

	tq_config_defaults(&c);
	CU_ASSERT(tq_config_parse_args(&c, 3, a1, err, sizeof(err)) < 0);
	CU_ASSERT(tq_config_parse_args(&c, 2, a2, err, sizeof(err)) < 0);
	CU_ASSERT(tq_config_parse_args(&c, 3, a3, err, sizeof(err)) < 0);
	CU_ASSERT(tq_config_parse_args(&c, 2, a4, err, sizeof(err)) < 0);
}

/* [nsim.portN.rx|tx] sections, and --set splitting at the last dot before '='. */
static void
test_nsim_sections_and_dotted_set(void)
{
	struct tq_config c;
	const char *path = write_ini("[nsim.port1.tx]\ndelay_us = 50000\njitter_us = 5000\n"
				     "rate_mbps = 2.5\nqueue = 64\n");
	char *argv[] = {"tachyond", "--set", "nsim.port0.rx.drop=0.01", "--set",
			"nsim.port0.rx.seed=7", "--set", "port0.ipv4=198.18.0.2/24", NULL};
	const char *bad[] = {
		"[nsim.port0.rx]\ndrop = 1.5\n",  "[nsim.port0.rx]\ncolour = 1\n",
		"[nsim.port9.rx]\ndrop = 0.1\n",  "[nsim.port0.up]\ndrop = 0.1\n",
		"[nsim.port0]\ndrop = 0.1\n",
	};
	char *a1[] = {"tachyond", "--set", "nsim.port0.rx.drop", NULL};
	char *a2[] = {"tachyond", "--set", "nsim.port0.rx.drop=x", NULL};

	tq_config_defaults(&c);
	CU_ASSERT_FALSE(tq_nsim_conf_enabled(&c.dp.nsim[0][TQ_NSIM_RX]));
	CU_ASSERT_EQUAL_FATAL(tq_config_load(&c, path, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.dp.nsim[1][TQ_NSIM_TX].delay_us, 50000);
	CU_ASSERT_EQUAL(c.dp.nsim[1][TQ_NSIM_TX].jitter_us, 5000);
	CU_ASSERT_DOUBLE_EQUAL(c.dp.nsim[1][TQ_NSIM_TX].rate_mbps, 2.5, 1e-9);
	CU_ASSERT_EQUAL(c.dp.nsim[1][TQ_NSIM_TX].queue, 64);
	CU_ASSERT_FALSE(tq_nsim_conf_enabled(&c.dp.nsim[1][TQ_NSIM_RX]));
	unlink(path);

	CU_ASSERT_EQUAL_FATAL(tq_config_parse_args(&c, 7, argv, err, sizeof(err)), 0);
	CU_ASSERT_DOUBLE_EQUAL(c.dp.nsim[0][TQ_NSIM_RX].drop, 0.01, 1e-12);
	CU_ASSERT_EQUAL(c.dp.nsim[0][TQ_NSIM_RX].seed, 7);
	CU_ASSERT_EQUAL(c.dp.ports[0].ipv4, inet_addr("198.18.0.2")); /* dots in the value */

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		path = write_ini(bad[i]);
		tq_config_defaults(&c);
		err[0] = '\0';
		CU_ASSERT(tq_config_load(&c, path, err, sizeof(err)) < 0);
		CU_ASSERT(strlen(err) > 0);
		unlink(path);
	}
	CU_ASSERT(tq_config_parse_args(&c, 3, a1, err, sizeof(err)) < 0);
	CU_ASSERT(tq_config_parse_args(&c, 3, a2, err, sizeof(err)) < 0);
	CU_ASSERT(strstr(err, "nsim.port0.rx.drop") != NULL);
}

/* [metrics]: 127.0.0.1:15692 unless told otherwise, port 0 turns it off, IPv4 only. */
static void
test_metrics_section(void)
{
	struct tq_config c;
	const char *path = write_ini("[metrics]\naddress = 0.0.0.0\nport = 9100\n");
	char *argv[] = {"tachyond", "--set", "metrics.port=0", "--set",
			"metrics.address=198.18.0.2", NULL};
	const char *bad[] = {
		"[metrics]\naddress = localhost\n",     "[metrics]\naddress = 300.1.1.1\n",
		"[metrics]\naddress = 10.0.0.1/8\n",    "[metrics]\naddress = ::1\n",
		"[metrics]\naddress = 127.000.000.0001\n", "[metrics]\naddress =\n",
		"[metrics]\nport = 65536\n",            "[metrics]\nport = -1\n",
		"[metrics]\nport = http\n",             "[metrics]\npath = /metrics\n",
	};

	tq_config_defaults(&c);
	CU_ASSERT_STRING_EQUAL(c.metrics.address, "127.0.0.1");
	CU_ASSERT_EQUAL(c.metrics.port, 15692);
	CU_ASSERT_EQUAL_FATAL(tq_config_load(&c, path, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.metrics.address, "0.0.0.0");
	CU_ASSERT_EQUAL(c.metrics.port, 9100);
	unlink(path);
	CU_ASSERT_EQUAL_FATAL(tq_config_parse_args(&c, 5, argv, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.metrics.port, 0);
	CU_ASSERT_STRING_EQUAL(c.metrics.address, "198.18.0.2");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		path = write_ini(bad[i]);
		tq_config_defaults(&c);
		err[0] = '\0';
		CU_ASSERT(tq_config_load(&c, path, err, sizeof(err)) < 0);
		CU_ASSERT(strstr(err, "metrics.") != NULL);
		/* a refused value leaves the default in place */
		CU_ASSERT_STRING_EQUAL(c.metrics.address, "127.0.0.1");
		CU_ASSERT_EQUAL(c.metrics.port, 15692);
		unlink(path);
	}
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_defaults_busy_polling),
		TQ_TEST(test_file_sets_ports_and_dataplane),
		TQ_TEST(test_file_errors_name_the_setting),
		TQ_TEST(test_args_override),
		TQ_TEST(test_args_errors),
		TQ_TEST(test_nsim_sections_and_dotted_set),
		TQ_TEST(test_metrics_section),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("config", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
