/* libFuzzer driver for tq_arp_parse: an exact-size copy, so ASan sees over-reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/tq_arp.h"
#include "dataplane/tq_counters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size);
	uint8_t body[TQ_ARP_LEN];
	struct tq_arp_view v, again;
	int rc;

	if (!p && size)
		return 0;
	memcpy(p, data, size);
	rc = tq_arp_parse(p, size, &v);
	if (rc >= 0) {
		if (rc != TQ_ARP_LEN || size < TQ_ARP_LEN)
			abort();
		if (v.op != TQ_ARP_OP_REQUEST && v.op != TQ_ARP_OP_REPLY)
			abort();
		if (rte_is_multicast_ether_addr(&v.sha) || rte_is_zero_ether_addr(&v.sha))
			abort();
		/* build what was parsed: the same bytes, and it parses back */
		tq_arp_build(body, v.op, &v.sha, v.sip, &v.tha, v.tip);
		if (memcmp(body, p, TQ_ARP_LEN) != 0 ||
		    tq_arp_parse(body, sizeof(body), &again) != TQ_ARP_LEN)
			abort();
	} else if (rc != -TQ_CTR_arp_truncated && rc != -TQ_CTR_arp_bad_format &&
		   rc != -TQ_CTR_arp_bad_op && rc != -TQ_CTR_arp_bad_sender) {
		abort();
	}
	free(p);
	return 0;
}
