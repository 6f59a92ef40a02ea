/*
 * tq_loadgen: MQTT and AMQP load generator (see tq_loadgen.h; --proto amqp). Picks the transport:
 *   tq_loadgen --transport kernel [load options]           Linux sockets, no EAL
 *   tq_loadgen [EAL] -- [tachyond options] -- [load]        tachyon's TCP over DPDK
 * Exit status: 0 when the counts add up, 1 when they do not, 2 on a usage or setup error.
 */
#include <stdio.h>
#include <string.h>

#include "tq_loadgen.h"

int
main(int argc, char **argv)
{
	bool kernel = false;

	for (int i = 1; i < argc; i++)
		if ((!strcmp(argv[i], "--transport") && i + 1 < argc && !strcmp(argv[i + 1], "kernel")) ||
		    !strcmp(argv[i], "--transport=kernel"))
			kernel = true;
	if (kernel) {
		struct lg_opts o;

		if (lg_parse_opts(&o, argc, argv)) {
			lg_usage();
			return 2;
		}
		return lg_kernel_run(&o);
	}
	return lg_dpdk_run(argc, argv);
}
