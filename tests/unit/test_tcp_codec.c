/*
 * tq_tcp_codec: segments as Linux sends them, build/parse round trips, every malformed
 * option, truncation against a guard page, checksums, sequence arithmetic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "dataplane/net/tq_csum.h"
#include "dataplane/net/tq_tcp_codec.h"
#include "dataplane/tq_counters.h"
#include "tq_test.h"

/*
 * A connection from 192.168.1.10:51234 to 192.168.1.20:1883, as Linux 6.x writes it.
 * Checksums were computed independently (Python, 16-bit big-endian words).
 */
static const uint8_t linux_syn[40] = {
	0xc8, 0x22, 0x07, 0x5b, /* ports 51234 -> 1883 */
	0x1a, 0x2b, 0x3c, 0x4d, /* seq */
	0x00, 0x00, 0x00, 0x00, /* ack */
	0xa0, 0x02,             /* data offset 10 (40 bytes), SYN */
	0xfa, 0xf0,             /* window 64240 */
	0x61, 0x5b,             /* checksum */
	0x00, 0x00,             /* urgent */
	0x02, 0x04, 0x05, 0xb4, /* MSS 1460 */
	0x04, 0x02,             /* SACK permitted, packed with... */
	0x08, 0x0a, 0x00, 0x0f, 0x42, 0x40, 0x00, 0x00, 0x00, 0x00, /* TS 1000000, 0 */
	0x01, 0x03, 0x03, 0x07, /* NOP, window scale 7 */
};

static const uint8_t linux_synack[40] = {
	0x07, 0x5b, 0xc8, 0x22, /* ports 1883 -> 51234 */
	0x5e, 0x6f, 0x70, 0x81, /* seq */
	0x1a, 0x2b, 0x3c, 0x4e, /* ack = SYN's seq + 1 */
	0xa0, 0x12,             /* data offset 10, SYN|ACK */
	0xfe, 0x88,             /* window 65160 */
	0xe0, 0x58,             /* checksum */
	0x00, 0x00,
	0x02, 0x04, 0x05, 0xb4, /* MSS 1460 */
	0x04, 0x02,             /* SACK permitted */
	0x08, 0x0a, 0x7a, 0x12, 0x34, 0x56, 0x00, 0x0f, 0x42, 0x40, /* TS, echoing the SYN's */
	0x01, 0x03, 0x03, 0x07, /* NOP, window scale 7 */
};

static const uint8_t linux_ack[32] = {
	0xc8, 0x22, 0x07, 0x5b,
	0x1a, 0x2b, 0x3c, 0x4e, /* seq */
	0x5e, 0x6f, 0x70, 0x82, /* ack */
	0x80, 0x10,             /* data offset 8 (32 bytes), ACK */
	0x01, 0xf6,             /* window 502 (scaled by 7 on the receiver: 64256) */
	0x0b, 0xb7,             /* checksum */
	0x00, 0x00,
	0x01, 0x01, 0x08, 0x0a, 0x00, 0x0f, 0x42, 0x41, 0x7a, 0x12, 0x34, 0x56, /* NOP,NOP,TS */
};

/* The same ACK carrying "hello" with PSH: 37 bytes, an odd length for the checksum. */
static const uint8_t linux_data[37] = {
	0xc8, 0x22, 0x07, 0x5b, 0x1a, 0x2b, 0x3c, 0x4e, 0x5e, 0x6f, 0x70, 0x82,
	0x80, 0x18, /* PSH|ACK */
	0x01, 0xf6,
	0xc7, 0xd7, /* checksum */
	0x00, 0x00,
	0x01, 0x01, 0x08, 0x0a, 0x00, 0x0f, 0x42, 0x41, 0x7a, 0x12, 0x34, 0x56,
	'h', 'e', 'l', 'l', 'o',
};

/* A duplicate ACK reporting two holes, as Linux writes it: NOP,NOP,TS then NOP,NOP,SACK. */
static const uint8_t linux_sack_ack[52] = {
	0x07, 0x5b, 0xc8, 0x22,
	0x5e, 0x6f, 0x70, 0x82,
	0x1a, 0x2b, 0x3c, 0x4e,
	0xd0, 0x10,             /* data offset 13 (52 bytes), ACK */
	0x01, 0xfd,
	0x00, 0x00,             /* checksum (not checked here) */
	0x00, 0x00,
	0x01, 0x01, 0x08, 0x0a, 0x7a, 0x12, 0x34, 0x60, 0x00, 0x0f, 0x42, 0x41,
	0x01, 0x01, 0x05, 0x12, /* NOP, NOP, SACK, length 18: two blocks */
	0x1a, 0x2b, 0x50, 0x00, 0x1a, 0x2b, 0x55, 0xb4, /* newest block first */
	0x1a, 0x2b, 0x45, 0x00, 0x1a, 0x2b, 0x4a, 0xb4,
};

static uint32_t addr_client, addr_server;

/* Parse @len bytes of @b placed right before a guard page: any over-read crashes. */
static int
parse_guarded(const uint8_t *b, size_t len, struct tq_tcp_view *v)
{
	uint8_t *g = tq_test_guarded(b, len);
	int ret = tq_tcp_parse(g, len, v);

	if (ret > 0) {
		CU_ASSERT_PTR_EQUAL(v->payload, g + ret);
		v->payload = b + ret; /* keep the span meaningful after the guard is gone */
	}
	tq_test_guard_free(g, len);
	return ret;
}

static void
test_parse_linux_syn(void)
{
	struct tq_tcp_view v;

	CU_ASSERT_EQUAL_FATAL(parse_guarded(linux_syn, sizeof(linux_syn), &v), 40);
	CU_ASSERT_EQUAL(v.src_port, 51234);
	CU_ASSERT_EQUAL(v.dst_port, 1883);
	CU_ASSERT_EQUAL(v.seq, 0x1a2b3c4d);
	CU_ASSERT_EQUAL(v.ack, 0);
	CU_ASSERT_EQUAL(v.hdr_len, 40);
	CU_ASSERT_EQUAL(v.flags, TQ_TCP_SYN);
	CU_ASSERT_EQUAL(v.window, 64240);
	CU_ASSERT_EQUAL(v.checksum, 0x615b);
	CU_ASSERT_EQUAL(v.urgent, 0);
	CU_ASSERT_EQUAL(v.payload_len, 0);
	CU_ASSERT_EQUAL(v.opts.present,
			TQ_TCP_OPT_MSS | TQ_TCP_OPT_SACK_PERM | TQ_TCP_OPT_TS | TQ_TCP_OPT_WSCALE);
	CU_ASSERT_EQUAL(v.opts.mss, 1460);
	CU_ASSERT_EQUAL(v.opts.wscale, 7);
	CU_ASSERT_EQUAL(v.opts.ts_val, 1000000);
	CU_ASSERT_EQUAL(v.opts.ts_ecr, 0);
	CU_ASSERT_EQUAL(v.opts.sack_count, 0);
}

static void
test_parse_linux_synack_and_ack(void)
{
	struct tq_tcp_view v;

	CU_ASSERT_EQUAL_FATAL(parse_guarded(linux_synack, sizeof(linux_synack), &v), 40);
	CU_ASSERT_EQUAL(v.src_port, 1883);
	CU_ASSERT_EQUAL(v.flags, TQ_TCP_SYN | TQ_TCP_ACK);
	CU_ASSERT_EQUAL(v.ack, 0x1a2b3c4e);
	CU_ASSERT_EQUAL(v.window, 65160);
	CU_ASSERT_EQUAL(v.opts.ts_val, 0x7a123456);
	CU_ASSERT_EQUAL(v.opts.ts_ecr, 1000000);
	CU_ASSERT_EQUAL(v.opts.mss, 1460);

	CU_ASSERT_EQUAL_FATAL(parse_guarded(linux_ack, sizeof(linux_ack), &v), 32);
	CU_ASSERT_EQUAL(v.flags, TQ_TCP_ACK);
	CU_ASSERT_EQUAL(v.seq, 0x1a2b3c4e);
	CU_ASSERT_EQUAL(v.ack, 0x5e6f7082);
	CU_ASSERT_EQUAL(v.window, 502);
	CU_ASSERT_EQUAL(v.opts.present, TQ_TCP_OPT_TS);
	CU_ASSERT_EQUAL(v.opts.ts_val, 1000001);
	CU_ASSERT_EQUAL(v.opts.ts_ecr, 0x7a123456);
	CU_ASSERT_EQUAL(v.payload_len, 0);

	CU_ASSERT_EQUAL_FATAL(parse_guarded(linux_data, sizeof(linux_data), &v), 32);
	CU_ASSERT_EQUAL(v.flags, TQ_TCP_PSH | TQ_TCP_ACK);
	CU_ASSERT_EQUAL(v.payload_len, 5);
	CU_ASSERT_PTR_EQUAL(v.payload, linux_data + 32);
	CU_ASSERT_EQUAL(memcmp(v.payload, "hello", 5), 0);
}

static void
test_parse_linux_sack(void)
{
	struct tq_tcp_view v;

	CU_ASSERT_EQUAL_FATAL(parse_guarded(linux_sack_ack, sizeof(linux_sack_ack), &v), 52);
	CU_ASSERT_EQUAL(v.opts.present, TQ_TCP_OPT_TS | TQ_TCP_OPT_SACK);
	CU_ASSERT_EQUAL(v.opts.sack_count, 2);
	CU_ASSERT_EQUAL(v.opts.sack[0].start, 0x1a2b5000);
	CU_ASSERT_EQUAL(v.opts.sack[0].end, 0x1a2b55b4);
	CU_ASSERT_EQUAL(v.opts.sack[1].start, 0x1a2b4500);
	CU_ASSERT_EQUAL(v.opts.sack[1].end, 0x1a2b4ab4);
	CU_ASSERT_EQUAL(v.opts.ts_val, 0x7a123460);
}

/* Our builder writes byte for byte what Linux writes for the same header. */
static void
test_build_matches_linux(void)
{
	const uint8_t *want[] = {linux_syn, linux_synack, linux_ack, linux_sack_ack};
	const size_t want_len[] = {40, 40, 32, 52};

	for (size_t i = 0; i < 4; i++) {
		struct tq_tcp_view v;
		struct tq_tcp_hdr_spec spec;
		uint8_t out[TQ_TCP_HDR_MAX + 4], ref[TQ_TCP_HDR_MAX];

		memset(out, 0xee, sizeof(out));
		CU_ASSERT_EQUAL_FATAL(tq_tcp_parse(want[i], want_len[i], &v), (int)want_len[i]);
		spec = (struct tq_tcp_hdr_spec){
			.src_port = v.src_port, .dst_port = v.dst_port, .seq = v.seq, .ack = v.ack,
			.flags = v.flags, .window = v.window, .urgent = v.urgent, .opts = v.opts,
		};
		CU_ASSERT_EQUAL(tq_tcp_hdr_len(&spec.opts), v.hdr_len);
		CU_ASSERT_EQUAL_FATAL(tq_tcp_build(out, &spec), v.hdr_len);
		memcpy(ref, want[i], v.hdr_len);
		ref[16] = ref[17] = 0; /* the builder leaves the checksum to the caller */
		CU_ASSERT_EQUAL(memcmp(out, ref, v.hdr_len), 0);
		CU_ASSERT_EQUAL(out[v.hdr_len], 0xee); /* nothing written past the header */
	}
}

static void
test_sack_room(void)
{
	struct tq_tcp_opts o = {0};

	CU_ASSERT_EQUAL(tq_tcp_sack_room(&o), 4);
	o.present = TQ_TCP_OPT_TS;
	CU_ASSERT_EQUAL(tq_tcp_sack_room(&o), 3);
	o.present = TQ_TCP_OPT_TS | TQ_TCP_OPT_SACK_PERM;
	CU_ASSERT_EQUAL(tq_tcp_sack_room(&o), 3);
	o.present = TQ_TCP_OPT_MSS | TQ_TCP_OPT_WSCALE;
	CU_ASSERT_EQUAL(tq_tcp_sack_room(&o), 3);
	o.present = TQ_TCP_OPT_MSS | TQ_TCP_OPT_TS;
	CU_ASSERT_EQUAL(tq_tcp_sack_room(&o), 2);
	o.present = TQ_TCP_OPT_MSS | TQ_TCP_OPT_TS | TQ_TCP_OPT_WSCALE | TQ_TCP_OPT_SACK_PERM;
	CU_ASSERT_EQUAL(tq_tcp_sack_room(&o), 2);
}

/* Every subset of options, every SACK block count, through build and back. */
static void
test_build_parse_round_trip_every_combination(void)
{
	unsigned int cases = 0;

	for (unsigned int mask = 0; mask < 32; mask++) {
		unsigned int max_blocks = (mask & TQ_TCP_OPT_SACK) ? TQ_TCP_SACK_MAX : 0;

		for (unsigned int nb = (mask & TQ_TCP_OPT_SACK) ? 1 : 0; nb <= max_blocks; nb++) {
			struct tq_tcp_hdr_spec s = {
				.src_port = 0x8001, .dst_port = 443, .seq = 0xfffffff0u + mask,
				.ack = 0x80000000u | nb, .flags = (uint8_t)(TQ_TCP_ACK | mask),
				.window = (uint16_t)(0xffff - mask), .urgent = (uint16_t)nb,
			};
			struct tq_tcp_view v;
			uint8_t buf[TQ_TCP_HDR_MAX];
			unsigned int want_blocks, room;
			size_t len;

			if (s.flags & TQ_TCP_SYN) /* keep the flags legal: SYN alone */
				s.flags &= (uint8_t)~(TQ_TCP_FIN | TQ_TCP_RST);
			s.opts.present = (uint8_t)mask;
			s.opts.mss = (uint16_t)(536 + mask);
			s.opts.wscale = (uint8_t)(mask % 16); /* 15 too: kept as sent */
			s.opts.ts_val = 0xdeadbeef ^ mask;
			s.opts.ts_ecr = 0x01020304u * nb;
			s.opts.sack_count = (uint8_t)nb;
			for (unsigned int b = 0; b < nb; b++) {
				s.opts.sack[b].start = 0xfffff000u + b * 0x1000;
				s.opts.sack[b].end = s.opts.sack[b].start + 0x800;
			}
			room = tq_tcp_sack_room(&s.opts);
			want_blocks = nb < room ? nb : room;

			len = tq_tcp_build(buf, &s);
			CU_ASSERT_EQUAL(len, tq_tcp_hdr_len(&s.opts));
			CU_ASSERT(len >= TQ_TCP_HDR_LEN && len <= TQ_TCP_HDR_MAX && len % 4 == 0);
			CU_ASSERT_EQUAL_FATAL(parse_guarded(buf, len, &v), (int)len);
			CU_ASSERT_EQUAL(v.src_port, s.src_port);
			CU_ASSERT_EQUAL(v.dst_port, s.dst_port);
			CU_ASSERT_EQUAL(v.seq, s.seq);
			CU_ASSERT_EQUAL(v.ack, s.ack);
			CU_ASSERT_EQUAL(v.flags, s.flags);
			CU_ASSERT_EQUAL(v.window, s.window);
			CU_ASSERT_EQUAL(v.urgent, s.urgent);
			CU_ASSERT_EQUAL(v.checksum, 0);
			CU_ASSERT_EQUAL(v.opts.present, mask);
			if (mask & TQ_TCP_OPT_MSS)
				CU_ASSERT_EQUAL(v.opts.mss, s.opts.mss);
			if (mask & TQ_TCP_OPT_WSCALE)
				CU_ASSERT_EQUAL(v.opts.wscale, s.opts.wscale);
			if (mask & TQ_TCP_OPT_TS) {
				CU_ASSERT_EQUAL(v.opts.ts_val, s.opts.ts_val);
				CU_ASSERT_EQUAL(v.opts.ts_ecr, s.opts.ts_ecr);
			}
			CU_ASSERT_EQUAL(v.opts.sack_count, want_blocks);
			for (unsigned int b = 0; b < want_blocks; b++) {
				CU_ASSERT_EQUAL(v.opts.sack[b].start, s.opts.sack[b].start);
				CU_ASSERT_EQUAL(v.opts.sack[b].end, s.opts.sack[b].end);
			}
			cases++;
		}
	}
	CU_ASSERT_EQUAL(cases, 16 + 16 * 4);
}

/* A segment whose options are @opt (a multiple of 4 bytes): written into @buf. */
static size_t
with_options(uint8_t *buf, const uint8_t *opt, size_t opt_len)
{
	memcpy(buf, linux_ack, TQ_TCP_HDR_LEN);
	memcpy(buf + TQ_TCP_HDR_LEN, opt, opt_len);
	buf[12] = (uint8_t)((TQ_TCP_HDR_LEN + opt_len) / 4 << 4);
	return TQ_TCP_HDR_LEN + opt_len;
}

struct opt_case {
	const char *what;
	uint8_t opt[12];
	uint8_t len;
};

static void
test_malformed_options(void)
{
	static const struct opt_case bad[] = {
		{"MSS length 3", {2, 3, 5, 0}, 4},
		{"MSS length 5", {2, 5, 5, 0xb4, 0, 1, 1, 1}, 8},
		{"window scale length 2", {3, 2, 1, 1}, 4},
		{"window scale length 4", {3, 4, 7, 0}, 4},
		{"SACK-permitted length 3", {4, 3, 0, 1}, 4},
		{"SACK-permitted length 4", {4, 4, 0, 0}, 4},
		{"timestamps length 8", {8, 8, 0, 0, 0, 1, 0, 0}, 8},
		{"timestamps length 12", {8, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 12},
		{"SACK without a block", {1, 1, 5, 2}, 4},
		{"SACK length 9", {5, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}, 12},
		{"SACK length 11", {5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}, 12},
		{"length 0", {30, 0, 1, 1}, 4},
		{"length 1", {30, 1, 1, 1}, 4},
		{"MSS running past the header", {1, 2, 4, 5}, 4},
		{"timestamps running past the header", {1, 1, 8, 10, 0, 0, 0, 1}, 8},
		{"unknown option running past the header", {1, 253, 9, 0, 0, 0, 0, 0}, 8},
		{"length 255", {254, 255, 0, 0}, 4},
		{"kind without its length byte", {1, 1, 1, 2}, 4},
		{"bad option after a good one", {2, 4, 5, 0xb4, 3, 3, 7, 3, 2, 0, 0, 0}, 12},
	};
	static const struct opt_case good[] = {
		{"four NOPs", {1, 1, 1, 1}, 4},
		{"EOL, then garbage", {0, 2, 99, 255}, 4},
		{"MSS, EOL, then a broken option", {2, 4, 5, 0xb4, 0, 2, 1, 0}, 8},
		{"unknown option skipped", {253, 4, 0xab, 0xcd, 2, 4, 2, 0}, 8},
		{"unknown option of length 2", {30, 2, 1, 0}, 4},
		{"SACK with 1 block", {5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 0}, 12},
	};
	uint8_t buf[TQ_TCP_HDR_MAX];
	struct tq_tcp_view v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = with_options(buf, bad[i].opt, bad[i].len);
		int ret = parse_guarded(buf, len, &v);

		if (ret != -TQ_CTR_tcp_bad_option)
			fprintf(stderr, "\n  %s: got %d\n", bad[i].what, ret);
		CU_ASSERT_EQUAL(ret, -TQ_CTR_tcp_bad_option);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		size_t len = with_options(buf, good[i].opt, good[i].len);
		int ret = parse_guarded(buf, len, &v);

		if (ret != (int)len)
			fprintf(stderr, "\n  %s: got %d\n", good[i].what, ret);
		CU_ASSERT_EQUAL(ret, (int)len);
	}
	/* what the accepted ones meant */
	parse_guarded(buf, with_options(buf, good[2].opt, good[2].len), &v);
	CU_ASSERT_EQUAL(v.opts.present, TQ_TCP_OPT_MSS);
	CU_ASSERT_EQUAL(v.opts.mss, 1460);
	parse_guarded(buf, with_options(buf, good[3].opt, good[3].len), &v);
	CU_ASSERT_EQUAL(v.opts.present, TQ_TCP_OPT_MSS);
	CU_ASSERT_EQUAL(v.opts.mss, 512);
	parse_guarded(buf, with_options(buf, good[5].opt, good[5].len), &v);
	CU_ASSERT_EQUAL(v.opts.sack_count, 1);
	CU_ASSERT_EQUAL(v.opts.sack[0].start, 1);
	CU_ASSERT_EQUAL(v.opts.sack[0].end, 2);
	CU_ASSERT_STRING_EQUAL(tq_counter_name(TQ_CTR_tcp_bad_option), "tcp_bad_option");
	CU_ASSERT_TRUE(tq_counter_is_drop(TQ_CTR_tcp_bad_option));
}

static void
test_header_errors(void)
{
	uint8_t buf[64];
	struct tq_tcp_view v;

	for (uint8_t doff = 0; doff < 5; doff++) {
		memcpy(buf, linux_ack, sizeof(linux_ack));
		buf[12] = (uint8_t)(doff << 4);
		CU_ASSERT_EQUAL(parse_guarded(buf, sizeof(linux_ack), &v), -TQ_CTR_tcp_bad_offset);
	}
	memcpy(buf, linux_ack, sizeof(linux_ack));
	buf[12] = 0x90; /* 36 bytes claimed, 32 there */
	CU_ASSERT_EQUAL(parse_guarded(buf, sizeof(linux_ack), &v), -TQ_CTR_tcp_truncated);
	buf[12] = 0xf0; /* 60 */
	CU_ASSERT_EQUAL(parse_guarded(buf, sizeof(linux_ack), &v), -TQ_CTR_tcp_truncated);

	memcpy(buf, linux_syn, sizeof(linux_syn));
	buf[13] = TQ_TCP_SYN | TQ_TCP_FIN;
	CU_ASSERT_EQUAL(parse_guarded(buf, sizeof(linux_syn), &v), -TQ_CTR_tcp_bad_flags);
	buf[13] = TQ_TCP_SYN | TQ_TCP_RST | TQ_TCP_ACK;
	CU_ASSERT_EQUAL(parse_guarded(buf, sizeof(linux_syn), &v), -TQ_CTR_tcp_bad_flags);
	buf[13] = TQ_TCP_FIN | TQ_TCP_ACK | TQ_TCP_PSH | TQ_TCP_URG | TQ_TCP_ECE | TQ_TCP_CWR;
	CU_ASSERT_EQUAL(parse_guarded(buf, sizeof(linux_syn), &v), 40);
	CU_ASSERT_EQUAL(v.flags, buf[13]);
	/* the reserved bits of byte 12 do not disturb the data offset */
	memcpy(buf, linux_ack, sizeof(linux_ack));
	buf[12] = 0x8f;
	CU_ASSERT_EQUAL(parse_guarded(buf, sizeof(linux_ack), &v), 32);
}

/* Every prefix of every vector, against the guard page. */
static void
test_truncated_at_every_length(void)
{
	const uint8_t *vec[] = {linux_syn, linux_synack, linux_ack, linux_data, linux_sack_ack};
	const size_t vec_len[] = {40, 40, 32, 37, 52};
	const int hdr[] = {40, 40, 32, 32, 52};

	for (size_t i = 0; i < 5; i++) {
		for (size_t len = 0; len <= vec_len[i]; len++) {
			struct tq_tcp_view v;
			int ret = parse_guarded(vec[i], len, &v);

			if (len < (size_t)hdr[i]) {
				CU_ASSERT_EQUAL(ret, -TQ_CTR_tcp_truncated);
			} else {
				CU_ASSERT_EQUAL(ret, hdr[i]);
				CU_ASSERT_EQUAL(v.payload_len, len - (size_t)hdr[i]);
			}
		}
	}
}

static void
check_vector(const uint8_t *seg, size_t len, uint32_t src, uint32_t dst, uint16_t want)
{
	uint8_t buf[64];
	uint16_t csum;

	CU_ASSERT_TRUE(tq_tcp_checksum_ok(src, dst, seg, len));
	memcpy(buf, seg, len);
	buf[16] = buf[17] = 0;
	csum = tq_tcp_checksum(src, dst, buf, len);
	CU_ASSERT_EQUAL(ntohs(csum), want);
	memcpy(buf + 16, &csum, 2);
	CU_ASSERT_EQUAL(memcmp(buf, seg, len), 0);

	/* any single flipped bit, in the segment or the addresses, is caught */
	for (size_t bit = 0; bit < len * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CU_ASSERT_FALSE(tq_tcp_checksum_ok(src, dst, buf, len));
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (unsigned int bit = 0; bit < 32; bit++) {
		CU_ASSERT_FALSE(tq_tcp_checksum_ok(src ^ htonl(1u << bit), dst, buf, len));
		CU_ASSERT_FALSE(tq_tcp_checksum_ok(src, dst ^ htonl(1u << bit), buf, len));
	}
	/* the length is covered by the pseudo-header too */
	CU_ASSERT_FALSE(tq_tcp_checksum_ok(src, dst, buf, len - 1));
}

static void
test_checksum_vectors(void)
{
	check_vector(linux_syn, sizeof(linux_syn), addr_client, addr_server, 0x615b);
	check_vector(linux_synack, sizeof(linux_synack), addr_server, addr_client, 0xe058);
	check_vector(linux_ack, sizeof(linux_ack), addr_client, addr_server, 0x0bb7);
	check_vector(linux_data, sizeof(linux_data), addr_client, addr_server, 0xc7d7);
}

/*
 * TX offload: the field holds the pseudo-header sum, the NIC sums the segment over it and
 * stores the complement; that must equal the full software checksum.
 */
static void
test_pseudo_header_for_offload(void)
{
	uint8_t buf[40];
	uint16_t ph = tq_tcp_pseudo_csum(addr_client, addr_server, sizeof(buf));
	uint16_t nic;

	CU_ASSERT_EQUAL(ntohs(ph), 0x839d); /* computed independently */
	memcpy(buf, linux_syn, sizeof(buf));
	memcpy(buf + 16, &ph, 2);
	nic = (uint16_t)~tq_csum_sum(buf, sizeof(buf), 0);
	CU_ASSERT_EQUAL(ntohs(nic), 0x615b);
}

static void
test_seq_arithmetic(void)
{
	CU_ASSERT_TRUE(tq_seq_lt(1, 2));
	CU_ASSERT_FALSE(tq_seq_lt(2, 2));
	CU_ASSERT_TRUE(tq_seq_le(2, 2));
	CU_ASSERT_TRUE(tq_seq_lt(0xfffffff0u, 0x10)); /* across the wrap */
	CU_ASSERT_TRUE(tq_seq_gt(0x10, 0xfffffff0u));
	CU_ASSERT_FALSE(tq_seq_ge(0xfffffff0u, 0x10));
	CU_ASSERT_TRUE(tq_seq_ge(0, 0xffffffffu));
	CU_ASSERT_TRUE(tq_seq_lt(0, 0x7fffffffu)); /* 2^31 - 1 ahead: still later */
	CU_ASSERT_TRUE(tq_seq_gt(0, 0x80000001u)); /* 2^31 + 1 ahead: wrapped, so earlier */
	CU_ASSERT_TRUE(tq_seq_lt(0x80000000u, 0xffffffffu));
	CU_ASSERT_TRUE(tq_seq_le(0xffffffffu, 0xffffffffu));
	CU_ASSERT_FALSE(tq_seq_gt(0xffffffffu, 0xffffffffu));

	CU_ASSERT_TRUE(tq_seq_between(5, 5, 5));
	CU_ASSERT_TRUE(tq_seq_between(0, 0xfffffffeu, 5));
	CU_ASSERT_TRUE(tq_seq_between(0xfffffffeu, 0xfffffffeu, 5));
	CU_ASSERT_TRUE(tq_seq_between(5, 0xfffffffeu, 5));
	CU_ASSERT_FALSE(tq_seq_between(6, 0xfffffffeu, 5));
	CU_ASSERT_FALSE(tq_seq_between(0xfffffffdu, 0xfffffffeu, 5));
	CU_ASSERT_FALSE(tq_seq_between(100, 200, 300));

	CU_ASSERT_EQUAL(tq_seq_max(0xfffffff0u, 0x10), 0x10);
	CU_ASSERT_EQUAL(tq_seq_min(0xfffffff0u, 0x10), 0xfffffff0u);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_parse_linux_syn),
		TQ_TEST(test_parse_linux_synack_and_ack),
		TQ_TEST(test_parse_linux_sack),
		TQ_TEST(test_build_matches_linux),
		TQ_TEST(test_sack_room),
		TQ_TEST(test_build_parse_round_trip_every_combination),
		TQ_TEST(test_malformed_options),
		TQ_TEST(test_header_errors),
		TQ_TEST(test_truncated_at_every_length),
		TQ_TEST(test_checksum_vectors),
		TQ_TEST(test_pseudo_header_for_offload),
		TQ_TEST(test_seq_arithmetic),
	};

	addr_client = inet_addr("192.168.1.10");
	addr_server = inet_addr("192.168.1.20");
	if (CU_initialize_registry() != CUE_SUCCESS ||
	    TQ_SUITE("tcp_codec", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
