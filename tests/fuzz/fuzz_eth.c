/* libFuzzer driver for tq_eth_parse/tq_eth_accept: an exact-size copy, so ASan sees over-reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/tq_eth.h"
#include "dataplane/tq_counters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct rte_ether_addr ours = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
	uint8_t *p = malloc(size);
	struct tq_eth_view v, again;
	uint8_t hdr[TQ_ETH_HDR_LEN];
	int rc;

	if (!p && size)
		return 0;
	memcpy(p, data, size);
	rc = tq_eth_parse(p, size, &v);
	if (rc >= 0) {
		int acc = tq_eth_accept(&v, &ours);

		if (rc != TQ_ETH_HDR_LEN || size < TQ_ETH_HDR_LEN)
			abort();
		if (acc != 0 && acc != -TQ_CTR_eth_multicast && acc != -TQ_CTR_eth_not_for_us)
			abort();
		/* build what was parsed: it parses back to the same view */
		tq_eth_build(hdr, &v.dst, &v.src, v.ethertype);
		if (memcmp(hdr, p, TQ_ETH_HDR_LEN) != 0 ||
		    tq_eth_parse(hdr, sizeof(hdr), &again) != TQ_ETH_HDR_LEN ||
		    again.ethertype != v.ethertype)
			abort();
	} else if (rc != -TQ_CTR_eth_truncated && rc != -TQ_CTR_eth_vlan) {
		abort();
	}
	free(p);
	return 0;
}
