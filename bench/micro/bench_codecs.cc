// Micro-benchmarks of the MQTT and AMQP codecs (ns per packet, on bytes in the cache).
// Run: build-bench/bench/bench_codecs. The inputs are built once by the encoders under test
// and checked to decode; every loop checks its return value so that a broken input cannot
// pass for a fast one.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "proto/amqp/tq_amqp_codec.h"
#include "proto/amqp/tq_amqp_table.h"
#include "proto/mqtt/tq_mqtt_codec.h"
}

namespace {

[[noreturn]] void die(const char *what, long rc)
{
	fprintf(stderr, "bench_codecs: %s: %ld\n", what, rc);
	exit(1);
}

tq_mqtt_str mstr(const char *s)
{
	return tq_mqtt_str{reinterpret_cast<const uint8_t *>(s), static_cast<uint16_t>(strlen(s))};
}

tq_amqp_str astr(const char *s)
{
	return tq_amqp_str{reinterpret_cast<const uint8_t *>(s), static_cast<uint32_t>(strlen(s))};
}

// ---------------------------------------------------------------------------------------
// MQTT

const uint8_t kPayload[64] = {
	'{', '"', 't', '"', ':', '2', '1', '.', '5', ',', '"', 'h', '"', ':', '4', '0', '}',
};
const tq_mqtt_pair kUser = {mstr("source"), mstr("bench")};

// A PUBLISH of 64 bytes on a 3-level topic; at level 5 with two properties (content type
// and a user property), as a typical sensor message.
tq_mqtt_pkt publish_pkt(uint8_t level, uint8_t qos)
{
	tq_mqtt_pkt pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = TQ_MQTT_PUBLISH;
	pkt.publish.qos = qos;
	pkt.publish.packet_id = qos ? 4242 : 0;
	pkt.publish.topic = mstr("sensors/kitchen/temperature");
	pkt.publish.payload = kPayload;
	pkt.publish.payload_len = sizeof(kPayload);
	if (level == TQ_MQTT_LEVEL_5) {
		pkt.publish.props.present = TQ_MQTT_PBIT(TQ_MQTT_PROP_CONTENT_TYPE) |
					    TQ_MQTT_PBIT(TQ_MQTT_PROP_USER);
		pkt.publish.props.content_type = mstr("application/json");
		pkt.publish.props.user = &kUser;
		pkt.publish.props.user_count = 1;
	}
	return pkt;
}

std::vector<uint8_t> encode(uint8_t level, const tq_mqtt_pkt &pkt)
{
	std::vector<uint8_t> buf(512);
	ssize_t n = tq_mqtt_encode(buf.data(), buf.size(), level, &pkt);

	if (n <= 0)
		die("tq_mqtt_encode", n);
	buf.resize(static_cast<size_t>(n));
	tq_mqtt_pkt check;
	int rc = tq_mqtt_decode(buf.data(), buf.size(), level, &check);
	if (rc != n)
		die("tq_mqtt_decode of the encoder's output", rc);
	return buf;
}

void BM_mqtt_decode_publish(benchmark::State &state, uint8_t level, uint8_t qos)
{
	std::vector<uint8_t> wire = encode(level, publish_pkt(level, qos));
	tq_mqtt_pkt pkt;

	for (auto _ : state) {
		int rc = tq_mqtt_decode(wire.data(), wire.size(), level, &pkt);

		if (rc != static_cast<int>(wire.size()))
			die("decode", rc);
		benchmark::DoNotOptimize(pkt);
	}
	state.SetLabel(std::to_string(wire.size()) + " B");
}
BENCHMARK_CAPTURE(BM_mqtt_decode_publish, v311_qos0, TQ_MQTT_LEVEL_311, 0);
BENCHMARK_CAPTURE(BM_mqtt_decode_publish, v311_qos1, TQ_MQTT_LEVEL_311, 1);
BENCHMARK_CAPTURE(BM_mqtt_decode_publish, v5_qos0, TQ_MQTT_LEVEL_5, 0);
BENCHMARK_CAPTURE(BM_mqtt_decode_publish, v5_qos1, TQ_MQTT_LEVEL_5, 1);

void BM_mqtt_encode_publish(benchmark::State &state, uint8_t level, uint8_t qos)
{
	tq_mqtt_pkt pkt = publish_pkt(level, qos);
	uint8_t buf[512];
	ssize_t want = static_cast<ssize_t>(encode(level, pkt).size());

	for (auto _ : state) {
		ssize_t n = tq_mqtt_encode(buf, sizeof(buf), level, &pkt);

		if (n != want)
			die("encode", n);
		benchmark::DoNotOptimize(buf);
	}
	state.SetLabel(std::to_string(want) + " B");
}
BENCHMARK_CAPTURE(BM_mqtt_encode_publish, v311_qos0, TQ_MQTT_LEVEL_311, 0);
BENCHMARK_CAPTURE(BM_mqtt_encode_publish, v311_qos1, TQ_MQTT_LEVEL_311, 1);
BENCHMARK_CAPTURE(BM_mqtt_encode_publish, v5_qos0, TQ_MQTT_LEVEL_5, 0);
BENCHMARK_CAPTURE(BM_mqtt_encode_publish, v5_qos1, TQ_MQTT_LEVEL_5, 1);

// The broker's delivery path: the header alone, the payload follows by reference.
void BM_mqtt_encode_publish_header(benchmark::State &state, uint8_t level, uint8_t qos)
{
	tq_mqtt_pkt pkt = publish_pkt(level, qos);
	uint8_t buf[256];
	ssize_t want = tq_mqtt_publish_header_len(level, &pkt.publish, sizeof(kPayload));

	if (want <= 0)
		die("tq_mqtt_publish_header_len", want);
	for (auto _ : state) {
		ssize_t n = tq_mqtt_encode_publish_header(buf, sizeof(buf), level, &pkt.publish,
							  sizeof(kPayload));

		if (n != want)
			die("encode header", n);
		benchmark::DoNotOptimize(buf);
	}
	state.SetLabel(std::to_string(want) + " B");
}
BENCHMARK_CAPTURE(BM_mqtt_encode_publish_header, v311_qos1, TQ_MQTT_LEVEL_311, 1);
BENCHMARK_CAPTURE(BM_mqtt_encode_publish_header, v5_qos1, TQ_MQTT_LEVEL_5, 1);

// The same v5 header from a decoded PUBLISH, as the broker forwards one: the user property
// comes from the decoded property block (props.raw), not from an array.
void BM_mqtt_encode_publish_header_forwarded(benchmark::State &state)
{
	std::vector<uint8_t> wire = encode(TQ_MQTT_LEVEL_5, publish_pkt(TQ_MQTT_LEVEL_5, 1));
	tq_mqtt_pkt in;
	uint8_t buf[256];

	if (tq_mqtt_decode(wire.data(), wire.size(), TQ_MQTT_LEVEL_5, &in) <= 0)
		die("decode", 0);
	ssize_t want = tq_mqtt_publish_header_len(TQ_MQTT_LEVEL_5, &in.publish, sizeof(kPayload));
	if (want <= 0)
		die("tq_mqtt_publish_header_len", want);
	for (auto _ : state) {
		ssize_t n = tq_mqtt_encode_publish_header(buf, sizeof(buf), TQ_MQTT_LEVEL_5,
							  &in.publish, sizeof(kPayload));

		if (n != want)
			die("encode header", n);
		benchmark::DoNotOptimize(buf);
	}
	state.SetLabel(std::to_string(want) + " B");
}
BENCHMARK(BM_mqtt_encode_publish_header_forwarded);

// CONNECT with client id, user name and password, keep alive 60, clean; at level 5 with
// session expiry, receive maximum and topic alias maximum.
void BM_mqtt_decode_connect(benchmark::State &state, uint8_t level)
{
	tq_mqtt_pkt pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = TQ_MQTT_CONNECT;
	pkt.connect.level = level;
	pkt.connect.clean_start = true;
	pkt.connect.keep_alive = 60;
	pkt.connect.client_id = mstr("bench-sensor-000042");
	pkt.connect.has_username = pkt.connect.has_password = true;
	pkt.connect.username = mstr("sensor");
	pkt.connect.password = mstr("s3cr3t-t0ken");
	if (level == TQ_MQTT_LEVEL_5) {
		pkt.connect.props.present = TQ_MQTT_PBIT(TQ_MQTT_PROP_SESSION_EXPIRY) |
					    TQ_MQTT_PBIT(TQ_MQTT_PROP_RECEIVE_MAX) |
					    TQ_MQTT_PBIT(TQ_MQTT_PROP_TOPIC_ALIAS_MAX);
		pkt.connect.props.session_expiry = 3600;
		pkt.connect.props.receive_max = 100;
		pkt.connect.props.topic_alias_max = 16;
	}
	std::vector<uint8_t> wire = encode(level, pkt);

	for (auto _ : state) {
		int rc = tq_mqtt_decode(wire.data(), wire.size(), TQ_MQTT_LEVEL_311, &pkt);

		if (rc != static_cast<int>(wire.size()))
			die("decode", rc);
		benchmark::DoNotOptimize(pkt);
	}
	state.SetLabel(std::to_string(wire.size()) + " B");
}
BENCHMARK_CAPTURE(BM_mqtt_decode_connect, v311, TQ_MQTT_LEVEL_311);
BENCHMARK_CAPTURE(BM_mqtt_decode_connect, v5, TQ_MQTT_LEVEL_5);

// SUBSCRIBE with three filters (a literal, '+', '#'), decoded and then walked with the
// iterator as the broker does; at level 5 with a subscription identifier.
void BM_mqtt_decode_subscribe(benchmark::State &state, uint8_t level)
{
	static const tq_mqtt_sub subs[] = {
		{mstr("home/kitchen/light"), 1, false, false, 0},
		{mstr("sensors/+/temperature"), 1, false, false, 0},
		{mstr("alerts/#"), 2, false, false, 0},
	};
	tq_mqtt_pkt pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = TQ_MQTT_SUBSCRIBE;
	pkt.subscribe.packet_id = 7;
	pkt.subscribe.count = 3;
	pkt.subscribe.subs = subs;
	if (level == TQ_MQTT_LEVEL_5) {
		pkt.subscribe.props.present = TQ_MQTT_PBIT(TQ_MQTT_PROP_SUBSCRIPTION_ID);
		pkt.subscribe.props.sub_id = 12;
		static const uint32_t ids[] = {12};
		pkt.subscribe.props.sub_ids = ids;
		pkt.subscribe.props.sub_id_count = 1;
	}
	std::vector<uint8_t> wire = encode(level, pkt);

	for (auto _ : state) {
		int rc = tq_mqtt_decode(wire.data(), wire.size(), level, &pkt);
		tq_mqtt_sub_iter it;
		tq_mqtt_sub s;
		uint32_t n = 0;

		if (rc != static_cast<int>(wire.size()))
			die("decode", rc);
		tq_mqtt_sub_iter_init(&it, level, &pkt.subscribe);
		while (tq_mqtt_next_sub(&it, &s)) {
			benchmark::DoNotOptimize(s);
			n++;
		}
		if (n != 3)
			die("filters", n);
	}
	state.SetLabel(std::to_string(wire.size()) + " B");
}
BENCHMARK_CAPTURE(BM_mqtt_decode_subscribe, v311, TQ_MQTT_LEVEL_311);
BENCHMARK_CAPTURE(BM_mqtt_decode_subscribe, v5, TQ_MQTT_LEVEL_5);

// ---------------------------------------------------------------------------------------
// AMQP 0-9-1

// A table like a client's client-properties: strings, a nested capabilities table of
// booleans, an integer and a timestamp. Returned with its 4-byte size, as on the wire.
std::vector<uint8_t> sample_table()
{
	std::vector<uint8_t> buf(1024);
	tq_amqp_tb b;
	tq_amqp_table t;

	tq_amqp_tb_init(&b, buf.data(), buf.size());
	tq_amqp_tb_cstr(&b, "product", "tachyon-bench");
	tq_amqp_tb_cstr(&b, "version", "0.1.0");
	tq_amqp_tb_cstr(&b, "platform", "C");
	tq_amqp_tb_table_begin(&b, "capabilities");
	tq_amqp_tb_bool(&b, "publisher_confirms", true);
	tq_amqp_tb_bool(&b, "consumer_cancel_notify", true);
	tq_amqp_tb_bool(&b, "basic.nack", true);
	tq_amqp_tb_bool(&b, "connection.blocked", true);
	tq_amqp_tb_table_end(&b);
	tq_amqp_tb_i32(&b, "x-priority", 5);
	tq_amqp_tb_timestamp(&b, "x-started", 1700000000);
	int rc = tq_amqp_tb_finish(&b, &t);
	if (rc)
		die("tq_amqp_tb_finish", rc);
	std::vector<uint8_t> wire(4 + t.len);
	wire[0] = static_cast<uint8_t>(t.len >> 24);
	wire[1] = static_cast<uint8_t>(t.len >> 16);
	wire[2] = static_cast<uint8_t>(t.len >> 8);
	wire[3] = static_cast<uint8_t>(t.len);
	memcpy(wire.data() + 4, t.p, t.len);
	return wire;
}

void BM_amqp_table_decode(benchmark::State &state)
{
	std::vector<uint8_t> wire = sample_table();
	tq_amqp_table t;
	size_t off;

	for (auto _ : state) {
		ssize_t n = tq_amqp_table_decode(wire.data(), wire.size(), &t, &off);

		if (n != static_cast<ssize_t>(wire.size()))
			die("table decode", n);
		benchmark::DoNotOptimize(t);
	}
	state.SetLabel(std::to_string(wire.size()) + " B, 6 entries, 4 nested");
}
BENCHMARK(BM_amqp_table_decode);

// What a publisher sends for one 64-byte message: basic.publish (exchange amq.topic,
// routing key sensors.kitchen.temperature), a content header with content-type,
// delivery-mode 2 and a 2-entry headers table, one body frame.
struct AmqpPublish {
	std::vector<uint8_t> wire;
	std::vector<uint8_t> headers;
	AmqpPublish()
	{
		uint8_t hb[128];
		tq_amqp_tb b;
		tq_amqp_table h;
		tq_amqp_basic_publish bp;
		tq_amqp_basic_props props;
		uint8_t buf[1024];
		ssize_t n, len = 0;

		tq_amqp_tb_init(&b, hb, sizeof(hb));
		tq_amqp_tb_cstr(&b, "x-source", "bench");
		tq_amqp_tb_i32(&b, "x-seq", 42);
		if (tq_amqp_tb_finish(&b, &h))
			die("headers", 0);
		headers.assign(h.p, h.p + h.len);
		h.p = headers.data();

		memset(&bp, 0, sizeof(bp));
		bp.exchange = astr("amq.topic");
		bp.routing_key = astr("sensors.kitchen.temperature");
		n = tq_amqp_encode_basic_publish(buf, sizeof(buf), 1, &bp);
		if (n <= 0)
			die("basic.publish encode", n);
		len += n;
		memset(&props, 0, sizeof(props));
		props.flags = TQ_AMQP_BASIC_CONTENT_TYPE_FLAG | TQ_AMQP_BASIC_HEADERS_FLAG |
			      TQ_AMQP_BASIC_DELIVERY_MODE_FLAG;
		props.content_type = astr("application/json");
		props.headers = h;
		props.delivery_mode = 2;
		n = tq_amqp_header_encode(buf + len, sizeof(buf) - len, 1, sizeof(kPayload), &props);
		if (n <= 0)
			die("header encode", n);
		len += n;
		n = tq_amqp_body_encode(buf + len, sizeof(buf) - len, 1, kPayload, sizeof(kPayload));
		if (n <= 0)
			die("body encode", n);
		len += n;
		wire.assign(buf, buf + len);
	}
};

void BM_amqp_decode_publish(benchmark::State &state)
{
	AmqpPublish in;
	const uint8_t *end = in.wire.data() + in.wire.size();

	for (auto _ : state) {
		const uint8_t *p = in.wire.data();
		tq_amqp_frame f;
		tq_amqp_method m;
		tq_amqp_content_header h;
		size_t off;
		ssize_t n;

		n = tq_amqp_frame_parse(p, end - p, 131072, &f, &off);
		if (n <= 0 || f.type != TQ_AMQP_FRAME_METHOD)
			die("method frame", n);
		if (tq_amqp_method_decode(f.payload, f.size, &m, &off) != f.size)
			die("basic.publish", 0);
		p += n;
		n = tq_amqp_frame_parse(p, end - p, 131072, &f, &off);
		if (n <= 0 || f.type != TQ_AMQP_FRAME_HEADER)
			die("header frame", n);
		if (tq_amqp_header_decode(f.payload, f.size, &h, &off) != f.size)
			die("content header", 0);
		p += n;
		n = tq_amqp_frame_parse(p, end - p, 131072, &f, &off);
		if (n <= 0 || f.type != TQ_AMQP_FRAME_BODY || f.size != h.body_size)
			die("body frame", n);
		p += n;
		benchmark::DoNotOptimize(m);
		benchmark::DoNotOptimize(h);
		benchmark::DoNotOptimize(f);
	}
	state.SetLabel(std::to_string(in.wire.size()) + " B, 3 frames");
}
BENCHMARK(BM_amqp_decode_publish);

tq_amqp_basic_deliver sample_deliver()
{
	tq_amqp_basic_deliver d;

	memset(&d, 0, sizeof(d));
	d.consumer_tag = astr("amq.ctag-Qx3bV7aLr9s0_gE2hN1fTw");
	d.delivery_tag = 123456;
	d.exchange = astr("amq.topic");
	d.routing_key = astr("sensors.kitchen.temperature");
	return d;
}

void BM_amqp_encode_deliver(benchmark::State &state)
{
	tq_amqp_basic_deliver d = sample_deliver();
	uint8_t buf[512];
	ssize_t want = tq_amqp_encode_basic_deliver(buf, sizeof(buf), 1, &d);

	if (want <= 0)
		die("basic.deliver", want);
	for (auto _ : state) {
		d.delivery_tag++;
		ssize_t n = tq_amqp_encode_basic_deliver(buf, sizeof(buf), 1, &d);

		if (n != want)
			die("basic.deliver", n);
		benchmark::DoNotOptimize(buf);
	}
	state.SetLabel(std::to_string(want) + " B");
}
BENCHMARK(BM_amqp_encode_deliver);

// The whole delivery: basic.deliver, the publisher's content header re-encoded, the body.
void BM_amqp_encode_deliver_header_body(benchmark::State &state)
{
	AmqpPublish in;
	tq_amqp_basic_deliver d = sample_deliver();
	tq_amqp_basic_props props;
	uint8_t buf[1024];
	ssize_t want = 0;

	memset(&props, 0, sizeof(props));
	props.flags = TQ_AMQP_BASIC_CONTENT_TYPE_FLAG | TQ_AMQP_BASIC_HEADERS_FLAG |
		      TQ_AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = astr("application/json");
	props.headers = tq_amqp_table{in.headers.data(), static_cast<uint32_t>(in.headers.size())};
	props.delivery_mode = 2;
	for (auto _ : state) {
		ssize_t n, len;

		d.delivery_tag++;
		len = n = tq_amqp_encode_basic_deliver(buf, sizeof(buf), 1, &d);
		if (n <= 0)
			die("basic.deliver", n);
		n = tq_amqp_header_encode(buf + len, sizeof(buf) - len, 1, sizeof(kPayload), &props);
		if (n <= 0)
			die("header", n);
		len += n;
		n = tq_amqp_body_encode(buf + len, sizeof(buf) - len, 1, kPayload, sizeof(kPayload));
		if (n <= 0)
			die("body", n);
		len += n;
		want = len;
		benchmark::DoNotOptimize(buf);
	}
	state.SetLabel(std::to_string(want) + " B, 3 frames");
}
BENCHMARK(BM_amqp_encode_deliver_header_body);

} // namespace

BENCHMARK_MAIN();
