#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <rte_byteorder.h>

#include "dataplane/tq_counters.h"
#include "tq_csum.h"
#include "tq_ipv4.h"

static uint16_t
load_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

bool
tq_ipv4_is_martian_src(uint32_t addr)
{
	uint32_t a = rte_be_to_cpu_32(addr);
	uint8_t first = (uint8_t)(a >> 24);

	return a == 0 || first == 127 || first >= 224; /* 224/4 multicast, 240/4 + broadcast */
}

int
tq_ipv4_parse(const uint8_t *p, size_t len, unsigned int flags, struct tq_ipv4_view *out)
{
	unsigned int ihl;
	uint16_t frag;

	if (len < TQ_IPV4_HDR_LEN)
		return -TQ_CTR_ipv4_truncated;
	if ((p[0] >> 4) != 4)
		return -TQ_CTR_ipv4_bad_version;
	ihl = (p[0] & 0xf) * 4u;
	if (ihl < TQ_IPV4_HDR_LEN || ihl > len)
		return -TQ_CTR_ipv4_bad_ihl;
	out->total_len = load_be16(p + 2);
	if (out->total_len < ihl || out->total_len > len)
		return -TQ_CTR_ipv4_bad_total_len;
	if (!(flags & TQ_IPV4_CSUM_VERIFIED) && tq_csum_sum(p, ihl, 0) != 0xffff)
		return -TQ_CTR_ipv4_bad_checksum;
	frag = load_be16(p + 6);
	if (frag & 0x3fff) /* MF set or a fragment offset: a fragment */
		return -TQ_CTR_ipv4_fragment;
	if (ihl > TQ_IPV4_HDR_LEN)
		return -TQ_CTR_ipv4_options;
	memcpy(&out->src, p + 12, 4);
	memcpy(&out->dst, p + 16, 4);
	if (tq_ipv4_is_martian_src(out->src))
		return -TQ_CTR_ipv4_bad_src;
	out->hdr_len = (uint16_t)ihl;
	out->id = load_be16(p + 4);
	out->ttl = p[8];
	out->proto = p[9];
	out->payload = p + ihl;
	out->payload_len = (uint16_t)(out->total_len - ihl);
	return (int)ihl;
}

void
tq_ipv4_build(uint8_t *p, uint32_t src, uint32_t dst, uint8_t proto, uint16_t payload_len,
	      uint16_t id, uint8_t ttl, bool csum_offload)
{
	uint16_t total = rte_cpu_to_be_16((uint16_t)(payload_len + TQ_IPV4_HDR_LEN));
	uint16_t id_be = rte_cpu_to_be_16(id);
	uint16_t df = rte_cpu_to_be_16(0x4000);
	uint16_t csum = 0;

	p[0] = 0x45;
	p[1] = 0;
	memcpy(p + 2, &total, 2);
	memcpy(p + 4, &id_be, 2);
	memcpy(p + 6, &df, 2);
	p[8] = ttl;
	p[9] = proto;
	memcpy(p + 10, &csum, 2);
	memcpy(p + 12, &src, 4);
	memcpy(p + 16, &dst, 4);
	if (!csum_offload) {
		csum = tq_csum(p, TQ_IPV4_HDR_LEN);
		memcpy(p + 10, &csum, 2);
	}
}

char *
tq_ipv4_fmt(uint32_t addr, char *buf)
{
	const uint8_t *b = (const uint8_t *)&addr;

	snprintf(buf, 16, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	return buf;
}

int
tq_ipv4_parse_cidr(const char *s, uint32_t *addr, uint8_t *prefix_len)
{
	char host[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	struct in_addr in;

	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &in) != 1)
		return -EINVAL;
	*addr = in.s_addr;
	if (slash) {
		char *end;
		long v;

		if (!prefix_len)
			return -EINVAL;
		errno = 0;
		v = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end != '\0' || v < 0 || v > 32)
			return -EINVAL;
		*prefix_len = (uint8_t)v;
	} else if (prefix_len) {
		*prefix_len = 32;
	}
	return 0;
}
