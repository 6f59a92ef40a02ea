/*
 * libFuzzer driver for tq_mqtt_codec. The first byte picks the protocol level (3, 4, 5);
 * the rest is a byte stream framed and decoded packet after packet (from an exact-size
 * heap copy, so ASan sees an over-read), as a session would. Every packet that decodes
 * must re-encode (at its level), decode again to the same view, report -ENOSPC one byte
 * short, and read as NEED_MORE when cut short. Every error must be one of the table's.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mqtt/tq_mqtt_codec.h"
#include "tests/unit/tq_mqtt_eq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond))                                                                   \
			__builtin_trap();                                                      \
	} while (0)

static bool
span_in(const uint8_t *base, size_t len, const struct tq_mqtt_str *s)
{
	return s->len == 0 || (s->p >= base && s->p + s->len <= base + len);
}

static void
check_round_trip(uint8_t level, const struct tq_mqtt_pkt *pkt, const uint8_t *p, size_t len)
{
	ssize_t want = tq_mqtt_encode_len(level, pkt);
	struct tq_mqtt_pkt back;
	uint8_t *buf;

	CHECK(want > 0);
	buf = malloc((size_t)want);
	CHECK(buf);
	CHECK(tq_mqtt_encode(buf, (size_t)want - 1, level, pkt) == -ENOSPC);
	CHECK(tq_mqtt_encode(buf, (size_t)want, level, pkt) == want);
	CHECK(tq_mqtt_decode(buf, (size_t)want, level, &back) == want);
	CHECK(tq_mqtt_pkt_diff(level, pkt, &back) == NULL);
	/* the same bytes once more: encoding is a function of the view */
	if (want <= (ssize_t)len + 8 && pkt->type == TQ_MQTT_PUBLISH) {
		ssize_t h = tq_mqtt_publish_header_len(level, &pkt->publish, pkt->publish.payload_len);

		CHECK(h > 0 && h + (ssize_t)pkt->publish.payload_len == want);
		CHECK(tq_mqtt_encode_publish_header(buf, (size_t)h, level, &pkt->publish,
						    pkt->publish.payload_len) == h);
	}
	free(buf);
	(void)p;
}

static void
check_spans(const struct tq_mqtt_pkt *k, const uint8_t *p, size_t len)
{
	switch (k->type) {
	case TQ_MQTT_CONNECT:
		CHECK(span_in(p, len, &k->connect.client_id));
		CHECK(span_in(p, len, &k->connect.username));
		CHECK(span_in(p, len, &k->connect.password));
		CHECK(span_in(p, len, &k->connect.will.topic));
		CHECK(span_in(p, len, &k->connect.will.payload));
		CHECK(k->connect.level >= 3 && k->connect.level <= 5);
		break;
	case TQ_MQTT_PUBLISH:
		CHECK(span_in(p, len, &k->publish.topic));
		CHECK(k->publish.payload >= p && k->publish.payload + k->publish.payload_len == p + len);
		CHECK(k->publish.qos <= 2 && (k->publish.qos == 0 || k->publish.packet_id));
		CHECK(k->publish.topic.len > 0 ||
		      (k->publish.props.present & TQ_MQTT_PBIT(TQ_MQTT_PROP_TOPIC_ALIAS)));
		if (k->publish.topic.len)
			CHECK(tq_mqtt_topic_valid(k->publish.topic.p, k->publish.topic.len));
		break;
	case TQ_MQTT_SUBSCRIBE: {
		struct tq_mqtt_sub_iter it;
		struct tq_mqtt_sub s;
		uint32_t n = 0;

		tq_mqtt_sub_iter_init(&it, k->level, &k->subscribe);
		while (tq_mqtt_next_sub(&it, &s)) {
			CHECK(span_in(p, len, &s.filter));
			CHECK(tq_mqtt_filter_valid(s.filter.p, s.filter.len));
			CHECK(s.qos <= 2 && s.retain_handling <= 2);
			n++;
		}
		CHECK(n == k->subscribe.count && n > 0);
		break;
	}
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t level;
	uint8_t *p;
	size_t off = 0, len;

	if (size < 1)
		return 0;
	level = (uint8_t)(TQ_MQTT_LEVEL_31 + data[0] % 3);
	len = size - 1;
	p = malloc(len ? len : 1);
	CHECK(p);
	memcpy(p, data + 1, len);
	for (;;) {
		struct tq_mqtt_pkt k;
		int ret = tq_mqtt_decode(p + off, len - off, level, &k);

		if (ret == TQ_MQTT_NEED_MORE)
			break;
		if (ret < 0) {
			CHECK(ret > -TQ_MQTT_E_COUNT);
			CHECK(k.err_off <= len - off);
			CHECK(tq_mqtt_err_reason(ret) >= 0x80);
			break;
		}
		CHECK((size_t)ret <= len - off);
		CHECK((size_t)ret == k.hdr_len + (size_t)k.remaining_len);
		/* a session keeps the level its CONNECT chose */
		if (k.type == TQ_MQTT_CONNECT)
			level = k.level;
		check_spans(&k, p + off, (size_t)ret);
		check_round_trip(k.type == TQ_MQTT_CONNECT ? k.connect.level : level, &k, p + off,
				 (size_t)ret);
		/* cut short, the same bytes are NEED_MORE */
		{
			struct tq_mqtt_pkt cut;

			CHECK(tq_mqtt_decode(p + off, (size_t)ret - 1, level, &cut) ==
			      TQ_MQTT_NEED_MORE);
		}
		off += (size_t)ret;
	}
	free(p);
	return 0;
}
