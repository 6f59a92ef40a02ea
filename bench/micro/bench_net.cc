// Micro-benchmarks of the net codecs (ns per packet). Run: build/bench/micro/bench_net
#include <benchmark/benchmark.h>

#include <cstring>

extern "C" {
#include "dataplane/net/tq_arp.h"
#include "dataplane/net/tq_eth.h"
#include "dataplane/net/tq_icmp.h"
#include "dataplane/net/tq_ipv4.h"
}

namespace {

// An Ethernet + IPv4 + ICMP echo request with 56 bytes of data, as ping(8) sends it.
struct EchoFrame {
	uint8_t bytes[14 + 20 + 8 + 56];
	EchoFrame()
	{
		static const rte_ether_addr dst = {{2, 0, 0, 0, 0, 2}}, src = {{2, 0, 0, 0, 0, 1}};
		uint8_t data[56];

		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)i;
		tq_eth_build(bytes, &dst, &src, RTE_ETHER_TYPE_IPV4);
		tq_icmp_build_echo(bytes + 34, TQ_ICMP_ECHO_REQUEST, 7, 1, data, sizeof(data));
		tq_ipv4_build(bytes + 14, 0x010012c6, 0x020012c6, 1, 64, 1, 64, false);
	}
};

void BM_eth_parse(benchmark::State &state)
{
	EchoFrame f;
	tq_eth_view v;

	for (auto _ : state)
		benchmark::DoNotOptimize(tq_eth_parse(f.bytes, sizeof(f.bytes), &v));
}
BENCHMARK(BM_eth_parse);

void BM_ipv4_parse_sw_checksum(benchmark::State &state)
{
	EchoFrame f;
	tq_ipv4_view v;

	for (auto _ : state)
		benchmark::DoNotOptimize(tq_ipv4_parse(f.bytes + 14, sizeof(f.bytes) - 14, 0, &v));
}
BENCHMARK(BM_ipv4_parse_sw_checksum);

void BM_ipv4_parse_offloaded(benchmark::State &state)
{
	EchoFrame f;
	tq_ipv4_view v;

	for (auto _ : state)
		benchmark::DoNotOptimize(tq_ipv4_parse(f.bytes + 14, sizeof(f.bytes) - 14,
						       TQ_IPV4_CSUM_VERIFIED, &v));
}
BENCHMARK(BM_ipv4_parse_offloaded);

// The whole echo path on bytes: parse Ethernet, IPv4, ICMP, turn it into the reply.
void BM_echo_request_to_reply(benchmark::State &state)
{
	EchoFrame f;
	tq_eth_view e;
	tq_ipv4_view ip;
	tq_icmp_view ic;

	for (auto _ : state) {
		uint8_t frame[sizeof(f.bytes)];

		memcpy(frame, f.bytes, sizeof(frame));
		tq_eth_parse(frame, sizeof(frame), &e);
		tq_ipv4_parse(frame + 14, sizeof(frame) - 14, 0, &ip);
		tq_icmp_parse(frame + 34, ip.payload_len, &ic);
		tq_icmp_echo_to_reply(frame + 34);
		tq_ipv4_build(frame + 14, ip.dst, ip.src, 1, ip.payload_len, 2, 64, false);
		benchmark::DoNotOptimize(frame);
	}
}
BENCHMARK(BM_echo_request_to_reply);

void BM_arp_parse(benchmark::State &state)
{
	static const rte_ether_addr sha = {{2, 0, 0, 0, 0, 1}}, zero = {};
	uint8_t body[TQ_ARP_LEN];
	tq_arp_view v;

	tq_arp_build(body, TQ_ARP_OP_REQUEST, &sha, 0x010012c6, &zero, 0x020012c6);
	for (auto _ : state)
		benchmark::DoNotOptimize(tq_arp_parse(body, sizeof(body), &v));
}
BENCHMARK(BM_arp_parse);

} // namespace

BENCHMARK_MAIN();
