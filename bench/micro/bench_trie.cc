// Topic trie matching (ns per publish). Run: build/bench/bench_trie
// BM_mqtt_literal/N: the topic "dev/<k>/temp" among N unrelated "dev/<i>/temp" subscriptions;
// the cost must stay flat as N grows. BM_mqtt_wildcards/N: N subscriptions spread over
// literal, '+' and '#' filters, matched by a topic several of them hit.
// BM_amqp_bindings/N: RabbitMQ-style bindings with '*' and '#'.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

extern "C" {
#include <urcu/urcu-qsbr.h>

#include "routing/tq_trie.h"
}

namespace
{

void
count_entry(void *arg, const tq_trie_entry *e)
{
	*static_cast<uint64_t *>(arg) += e->key;
}

void
count_group(void *arg, tq_trie_group *g, const tq_trie_entry *m, uint32_t n)
{
	*static_cast<uint64_t *>(arg) += m[tq_trie_group_next(g) % n].key;
}

// Tries are built once per size and kept for the whole run (building 1M takes a while).
tq_trie *
get_trie(const std::string &kind, long n)
{
	static std::map<std::pair<std::string, long>, tq_trie *> cache;
	auto it = cache.find({kind, n});
	char f[64];

	if (it != cache.end())
		return it->second;
	tq_trie *t = tq_trie_create(kind == "amqp" ? TQ_TRIE_AMQP : TQ_TRIE_MQTT);
	for (long i = 0; i < n; i++) {
		int len;

		if (kind == "literal") {
			len = snprintf(f, sizeof(f), "dev/%ld/temp", i);
		} else if (kind == "wild") {
			switch (i % 5) {
			case 0:
				len = snprintf(f, sizeof(f), "dev/%ld/temp", i);
				break;
			case 1:
				len = snprintf(f, sizeof(f), "dev/+/%ld", i);
				break;
			case 2:
				len = snprintf(f, sizeof(f), "+/%ld/temp", i);
				break;
			case 3:
				len = snprintf(f, sizeof(f), "dev/%ld/#", i);
				break;
			default:
				len = snprintf(f, sizeof(f), "+/+/%ld/#", i);
				break;
			}
		} else {
			switch (i % 4) {
			case 0:
				len = snprintf(f, sizeof(f), "stock.%ld.#", i);
				break;
			case 1:
				len = snprintf(f, sizeof(f), "*.%ld.price", i);
				break;
			case 2:
				len = snprintf(f, sizeof(f), "#.%ld", i);
				break;
			default:
				len = snprintf(f, sizeof(f), "stock.#.%ld.#", i);
				break;
			}
		}
		tq_trie_add(t, f, (size_t)len, nullptr, 0, (uint64_t)i, 0);
	}
	if (kind == "wild") { // a few that always hit
		tq_trie_add(t, "#", 1, nullptr, 0, 1, 0);
		tq_trie_add(t, "dev/+/temp", 10, nullptr, 0, 2, 0);
		tq_trie_add(t, "+/+/temp", 8, "g", 1, 3, 0);
		tq_trie_add(t, "dev/#", 5, nullptr, 0, 4, 0);
	} else if (kind == "amqp") {
		tq_trie_add(t, "#", 1, nullptr, 0, 1, 0);
		tq_trie_add(t, "stock.*.price", 13, nullptr, 0, 2, 0);
		tq_trie_add(t, "#.price", 7, nullptr, 0, 3, 0);
	}
	cache[{kind, n}] = t;
	urcu_qsbr_quiescent_state();
	return t;
}

// @spread topics ("fmt" % k for k spread over [0, n)) prepared outside the timed loop:
// 1 = the same topic every time (hot caches), 4096 = a fresh part of the trie each time.
void
run(benchmark::State &state, const char *kind, const char *fmt)
{
	long n = state.range(0), spread = state.range(1);
	tq_trie *t = get_trie(kind, n);
	uint64_t sum = 0;
	tq_trie_match_cb cb = {count_entry, count_group, &sum};
	std::vector<std::string> topics;
	unsigned int hits = 0;
	size_t i = 0;
	char topic[64];

	for (long j = 0; j < spread; j++) {
		snprintf(topic, sizeof(topic), fmt, n > 1 ? (j * 7919 + n / 2) % n : 0L);
		topics.emplace_back(topic);
	}
	for (auto _ : state) {
		const std::string &s = topics[i];

		hits += tq_trie_match(t, s.data(), s.size(), &cb);
		i = i + 1 == topics.size() ? 0 : i + 1;
	}
	benchmark::DoNotOptimize(sum);
	state.counters["matches"] =
		benchmark::Counter((double)hits, benchmark::Counter::kAvgIterations);
	state.counters["nodes"] = (double)tq_trie_nodes(t);
	urcu_qsbr_quiescent_state();
}

void
BM_mqtt_literal(benchmark::State &state)
{
	run(state, "literal", "dev/%ld/temp");
}
BENCHMARK(BM_mqtt_literal)->ArgsProduct({{1, 1000, 100000, 1000000}, {1, 4096}});

void
BM_mqtt_wildcards(benchmark::State &state)
{
	run(state, "wild", "dev/%ld/temp");
}
BENCHMARK(BM_mqtt_wildcards)->ArgsProduct({{1000, 100000, 1000000}, {1, 4096}});

void
BM_amqp_bindings(benchmark::State &state)
{
	run(state, "amqp", "stock.%ld.price");
}
BENCHMARK(BM_amqp_bindings)->ArgsProduct({{1000, 100000}, {1, 4096}});

// The subscribe path: add then remove one filter in a trie of 100k.
void
BM_mqtt_add_remove(benchmark::State &state)
{
	tq_trie *t = get_trie("literal", 100000);

	for (auto _ : state) {
		tq_trie_add(t, "dev/new/temp", 12, nullptr, 0, 42, 0);
		tq_trie_remove(t, "dev/new/temp", 12, nullptr, 0, 42);
		urcu_qsbr_quiescent_state();
	}
}
BENCHMARK(BM_mqtt_add_remove);

} // namespace

int
main(int argc, char **argv)
{
	urcu_qsbr_register_thread();
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	urcu_qsbr_unregister_thread();
	return 0;
}
