/*
 * libFuzzer driver for tq_icmp_parse: an exact-size copy, so ASan sees over-reads. A valid
 * echo request turned into its reply must still be a valid message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/tq_icmp.h"
#include "dataplane/tq_counters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size);
	struct tq_icmp_view v, reply;
	int rc;

	if (!p && size)
		return 0;
	memcpy(p, data, size);
	rc = tq_icmp_parse(p, size, &v);
	if (rc >= 0) {
		if (rc != TQ_ICMP_HDR_LEN || size < TQ_ICMP_HDR_LEN)
			abort();
		if (v.type == TQ_ICMP_ECHO_REQUEST) {
			tq_icmp_echo_to_reply(p);
			if (tq_icmp_parse(p, size, &reply) != TQ_ICMP_HDR_LEN ||
			    reply.type != TQ_ICMP_ECHO_REPLY || reply.code != 0 ||
			    reply.id != v.id || reply.seq != v.seq ||
			    memcmp(p + TQ_ICMP_HDR_LEN, data + TQ_ICMP_HDR_LEN,
				   size - TQ_ICMP_HDR_LEN) != 0)
				abort();
		}
	} else if (rc != -TQ_CTR_icmp_truncated && rc != -TQ_CTR_icmp_bad_checksum) {
		abort();
	}
	free(p);
	return 0;
}
