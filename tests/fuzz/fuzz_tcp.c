/*
 * libFuzzer driver for tq_tcp_codec: parse any bytes (from an exact-size heap copy, so
 * ASan sees an over-read); when they parse, rebuild the header from the view, parse that,
 * and require the same header back. Also checks the checksum helpers agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/tq_tcp_codec.h"
#include "dataplane/tq_counters.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond))                                                                   \
			__builtin_trap();                                                      \
	} while (0)

static void
check_round_trip(const struct tq_tcp_view *v)
{
	struct tq_tcp_hdr_spec spec = {
		.src_port = v->src_port, .dst_port = v->dst_port, .seq = v->seq, .ack = v->ack,
		.flags = v->flags, .window = v->window, .urgent = v->urgent, .opts = v->opts,
	};
	unsigned int room = tq_tcp_sack_room(&v->opts);
	unsigned int want_sack = v->opts.sack_count < room ? v->opts.sack_count : room;
	struct tq_tcp_view w;
	size_t len = tq_tcp_hdr_len(&spec.opts);
	uint8_t *hdr = malloc(len);
	int ret;

	CHECK(hdr);
	CHECK(len >= TQ_TCP_HDR_LEN && len <= TQ_TCP_HDR_MAX && len % 4 == 0);
	CHECK(tq_tcp_build(hdr, &spec) == len);
	ret = tq_tcp_parse(hdr, len, &w);
	CHECK(ret == (int)len);
	CHECK(w.src_port == v->src_port && w.dst_port == v->dst_port);
	CHECK(w.seq == v->seq && w.ack == v->ack);
	CHECK(w.flags == v->flags && w.window == v->window && w.urgent == v->urgent);
	CHECK(w.checksum == 0 && w.payload_len == 0);
	CHECK(w.opts.present == v->opts.present);
	if (v->opts.present & TQ_TCP_OPT_MSS)
		CHECK(w.opts.mss == v->opts.mss);
	if (v->opts.present & TQ_TCP_OPT_WSCALE)
		CHECK(w.opts.wscale == v->opts.wscale);
	if (v->opts.present & TQ_TCP_OPT_TS)
		CHECK(w.opts.ts_val == v->opts.ts_val && w.opts.ts_ecr == v->opts.ts_ecr);
	/* the builder keeps the first blocks that fit (the newest, RFC 2018) */
	CHECK(w.opts.sack_count == want_sack);
	for (unsigned int b = 0; b < want_sack; b++)
		CHECK(w.opts.sack[b].start == v->opts.sack[b].start &&
		      w.opts.sack[b].end == v->opts.sack[b].end);
	free(hdr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);
	struct tq_tcp_view v;
	int ret;

	CHECK(p);
	memcpy(p, data, size);
	ret = tq_tcp_parse(p, size, &v);
	if (ret > 0) {
		CHECK(ret == v.hdr_len && (size_t)ret <= size);
		CHECK(v.payload == p + ret && v.payload_len == size - (size_t)ret);
		CHECK(v.opts.sack_count <= TQ_TCP_SACK_MAX);
		CHECK(!(v.opts.present & TQ_TCP_OPT_SACK) == (v.opts.sack_count == 0));
		check_round_trip(&v);
		/* a checksum written into the segment verifies; the segment is ours to change */
		if (size <= UINT16_MAX) {
			uint32_t src = 0x0a000001, dst = 0x0a000002;
			uint16_t csum;

			p[16] = p[17] = 0;
			csum = tq_tcp_checksum(src, dst, p, size);
			memcpy(p + 16, &csum, 2);
			CHECK(tq_tcp_checksum_ok(src, dst, p, size));
		}
	} else {
		CHECK(ret == -TQ_CTR_tcp_truncated || ret == -TQ_CTR_tcp_bad_offset ||
		      ret == -TQ_CTR_tcp_bad_flags || ret == -TQ_CTR_tcp_bad_option);
	}
	free(p);
	return 0;
}
