/*
 * libFuzzer driver for tq_ipv4_parse, with and without TQ_IPV4_CSUM_VERIFIED: an exact-size
 * copy, so ASan sees over-reads. Accepted headers are rebuilt and must parse again.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/tq_ipv4.h"
#include "dataplane/tq_counters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
is_ipv4_drop(int rc)
{
	switch (-rc) {
	case TQ_CTR_ipv4_truncated:
	case TQ_CTR_ipv4_bad_version:
	case TQ_CTR_ipv4_bad_ihl:
	case TQ_CTR_ipv4_bad_total_len:
	case TQ_CTR_ipv4_bad_checksum:
	case TQ_CTR_ipv4_fragment:
	case TQ_CTR_ipv4_options:
	case TQ_CTR_ipv4_bad_src:
		return true;
	default:
		return false;
	}
}

static void
check(const uint8_t *p, size_t size, unsigned int flags)
{
	struct tq_ipv4_view v, again;
	uint8_t *pkt;
	int rc = tq_ipv4_parse(p, size, flags, &v);

	if (rc < 0) {
		if (!is_ipv4_drop(rc) || (flags && rc == -TQ_CTR_ipv4_bad_checksum))
			abort();
		return;
	}
	if (rc != TQ_IPV4_HDR_LEN || v.hdr_len != rc || v.total_len > size || v.payload != p + rc ||
	    v.payload_len + v.hdr_len != v.total_len)
		abort();
	/* rebuild the packet from the view: it parses back to the same fields */
	pkt = malloc(v.total_len);
	if (!pkt)
		return;
	tq_ipv4_build(pkt, v.src, v.dst, v.proto, v.payload_len, v.id, v.ttl, false);
	memcpy(pkt + TQ_IPV4_HDR_LEN, v.payload, v.payload_len);
	if (tq_ipv4_parse(pkt, v.total_len, 0, &again) != TQ_IPV4_HDR_LEN || again.src != v.src ||
	    again.dst != v.dst || again.proto != v.proto || again.id != v.id ||
	    again.ttl != v.ttl || again.total_len != v.total_len ||
	    memcmp(again.payload, v.payload, v.payload_len) != 0)
		abort();
	free(pkt);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size);

	if (!p && size)
		return 0;
	memcpy(p, data, size);
	check(p, size, 0);
	check(p, size, TQ_IPV4_CSUM_VERIFIED);
	free(p);
	return 0;
}
