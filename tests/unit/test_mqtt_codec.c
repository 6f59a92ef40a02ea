/*
 * tq_mqtt_codec: packets as mosquitto 2.0.11 and paho-mqtt 1.6.1 send them at levels 3, 4
 * and 5 (captured on 127.0.0.1), framing, byte-at-a-time feeds against a guard page,
 * encode/decode round trips for every packet type and every property, and every malformed
 * case with the reason code it maps to.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mqtt/tq_mqtt_codec.h"
#include "tq_mqtt_eq.h"
#include "tq_test.h"

#define L31 TQ_MQTT_LEVEL_31
#define L311 TQ_MQTT_LEVEL_311
#define L5 TQ_MQTT_LEVEL_5
#define PB(id) TQ_MQTT_PBIT(TQ_MQTT_PROP_##id)
#define S(lit) ((struct tq_mqtt_str){(const uint8_t *)(lit), sizeof(lit) - 1})

/* ---- captured vectors (mosquitto_pub/_sub 2.0.11, paho-mqtt 1.6.1) ---- */

/* mosquitto_pub -V mqttv31 -i mqtt31-pub -q 1 -t sensors/temp -m 21.5 */
static const uint8_t mosq31_connect[] = {
	0x10, 0x18,                                     /* CONNECT, remaining 24 */
	0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, /* "MQIsdp", level 3 */
	0x02, 0x00, 0x3c,                               /* clean session, keep alive 60 */
	0x00, 0x0a, 'm', 'q', 't', 't', '3', '1', '-', 'p', 'u', 'b',
};
static const uint8_t mosq31_publish[] = {
	0x32, 0x14, /* PUBLISH QoS 1 */
	0x00, 0x0c, 's', 'e', 'n', 's', 'o', 'r', 's', '/', 't', 'e', 'm', 'p',
	0x00, 0x01, /* packet id 1 */
	'2', '1', '.', '5',
};
static const uint8_t disconnect_v3[] = {0xe0, 0x00};

/* mosquitto_pub -V mqttv311 -i pub311 -q 1 -r -t sensors/temp -m 21.5 -u alice -P secret */
static const uint8_t mosq311_connect_user[] = {
	0x10, 0x21, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
	0xc2, 0x00, 0x3c, /* user name, password, clean session; keep alive 60 */
	0x00, 0x06, 'p', 'u', 'b', '3', '1', '1',
	0x00, 0x05, 'a', 'l', 'i', 'c', 'e',
	0x00, 0x06, 's', 'e', 'c', 'r', 'e', 't',
};
static const uint8_t mosq311_publish_retain[] = {
	0x33, 0x14, /* QoS 1, retain */
	0x00, 0x0c, 's', 'e', 'n', 's', 'o', 'r', 's', '/', 't', 'e', 'm', 'p',
	0x00, 0x01, '2', '1', '.', '5',
};

/* mosquitto_pub -V mqttv311 -q 0 -t a/b -m hello --will-topic will/t --will-payload bye
 *   --will-qos 1 --will-retain -k 30 (no -i: empty client id) */
static const uint8_t mosq311_connect_will[] = {
	0x10, 0x19, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
	0x2e, 0x00, 0x1e, /* will retain, will QoS 1, will, clean session; keep alive 30 */
	0x00, 0x00,       /* empty client id */
	0x00, 0x06, 'w', 'i', 'l', 'l', '/', 't',
	0x00, 0x03, 'b', 'y', 'e',
};
static const uint8_t mosq311_publish_q0[] = {
	0x30, 0x0a, 0x00, 0x03, 'a', '/', 'b', 'h', 'e', 'l', 'l', 'o',
};

/* mosquitto_pub -V mqttv5 -i pub5 -q 2 ... -D connect session-expiry-interval 3600
 *   -D connect receive-maximum 10 -D connect maximum-packet-size 65536
 *   -D connect topic-alias-maximum 5 -D connect user-property who me */
static const uint8_t mosq5_connect[] = {
	0x10, 0x2b, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c,
	0x1a,                         /* properties: 26 bytes */
	0x11, 0x00, 0x00, 0x0e, 0x10, /* session expiry 3600 */
	0x21, 0x00, 0x0a,             /* receive maximum 10 */
	0x27, 0x00, 0x01, 0x00, 0x00, /* maximum packet size 65536 */
	0x22, 0x00, 0x05,             /* topic alias maximum 5 */
	0x26, 0x00, 0x03, 'w', 'h', 'o', 0x00, 0x02, 'm', 'e', /* user property */
	0x00, 0x04, 'p', 'u', 'b', '5',
};
/* ... -D publish message-expiry-interval 60 -D publish user-property k v
 *   -D publish content-type text/plain -D publish response-topic resp/t
 *   -D publish correlation-data abc -D publish payload-format-indicator 1 */
static const uint8_t mosq5_publish[] = {
	0x34, 0x3f, /* QoS 2 */
	0x00, 0x0c, 's', 'e', 'n', 's', 'o', 'r', 's', '/', 't', 'e', 'm', 'p',
	0x00, 0x01, /* packet id 1 */
	0x2a,       /* properties: 42 bytes */
	0x02, 0x00, 0x00, 0x00, 0x3c,                        /* message expiry 60 */
	0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',              /* user property */
	0x03, 0x00, 0x0a, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n',
	0x08, 0x00, 0x06, 'r', 'e', 's', 'p', '/', 't',      /* response topic */
	0x09, 0x00, 0x03, 'a', 'b', 'c',                     /* correlation data */
	0x01, 0x01,                                          /* payload format: UTF-8 */
	'2', '1', '.', '5',
};
static const uint8_t mosq5_pubrel[] = {0x62, 0x02, 0x00, 0x01}; /* short form */

/* mosquitto_sub -V mqttv311 -i sub311 -t 'sensors/+/temp' -t 'a/#' -q 1 */
static const uint8_t mosq311_subscribe[] = {
	0x82, 0x19, 0x00, 0x01,
	0x00, 0x0e, 's', 'e', 'n', 's', 'o', 'r', 's', '/', '+', '/', 't', 'e', 'm', 'p', 0x01,
	0x00, 0x03, 'a', '/', '#', 0x01,
};
/* mosquitto_sub -V mqttv5 -i sub5 -t 'sensors/#' -q 2
 *   -D subscribe subscription-identifier 42 -D subscribe user-property a b */
static const uint8_t mosq5_connect_sub[] = {
	0x10, 0x14, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c,
	0x03, 0x21, 0x00, 0x14, /* receive maximum 20 */
	0x00, 0x04, 's', 'u', 'b', '5',
};
static const uint8_t mosq5_subscribe[] = {
	0x82, 0x18, 0x00, 0x01,
	0x09, 0x0b, 0x2a,                               /* subscription identifier 42 */
	0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b',         /* user property */
	0x00, 0x09, 's', 'e', 'n', 's', 'o', 'r', 's', '/', '#', 0x02,
};
/* what mosquitto_sub -W sends on its timeout: "disconnect with will message" */
static const uint8_t mosq5_disconnect_will[] = {0xe0, 0x01, 0x04};
/* mosquitto_sub -V mqttv31 -i sub31 -t x/y -q 0 */
static const uint8_t mosq31_subscribe[] = {
	0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 'x', '/', 'y', 0x00,
};

/* paho-mqtt MQTTv5: will with properties, user name and password, clean start */
static const uint8_t paho5_connect[] = {
	0x10, 0x50, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
	0xee, 0x00, 0x2d, /* user, password, will retain, will QoS 1, will, clean; 45 s */
	0x07, 0x11, 0x00, 0x00, 0x00, 0x3c, 0x17, 0x00, /* session expiry 60, problem info 0 */
	0x00, 0x05, 'p', 'a', 'h', 'o', '5',
	0x12, /* will properties: 18 bytes */
	0x03, 0x00, 0x0a, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n',
	0x18, 0x00, 0x00, 0x00, 0x0a, /* will delay 10 */
	0x00, 0x13, 'c', 'l', 'i', 'e', 'n', 't', 's', '/', 'p', 'a', 'h', 'o', '5', '/', 's', 't',
	'a', 't', 'e',
	0x00, 0x04, 'g', 'o', 'n', 'e',
	0x00, 0x03, 'b', 'o', 'b',
	0x00, 0x02, 'p', 'w',
};
/* no local, retain as published, retain handling 2; and a shared subscription */
static const uint8_t paho5_subscribe[] = {
	0x82, 0x1c, 0x00, 0x01, 0x02, 0x0b, 0x07, /* subscription identifier 7 */
	0x00, 0x05, 'a', '/', '+', '/', 'c', 0x2d,
	0x00, 0x0c, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'x', '/', '#', 0x00,
};
static const uint8_t paho5_unsubscribe[] = {
	0xa2, 0x0f, 0x00, 0x02, 0x00,
	0x00, 0x05, 'a', '/', '+', '/', 'c', 0x00, 0x03, 'x', '/', '#',
};
static const uint8_t paho5_publish_alias[] = {
	0x32, 0x24, 0x00, 0x07, 't', '/', 'a', 'l', 'i', 'a', 's', 0x00, 0x03,
	0x15, 0x23, 0x00, 0x03, /* topic alias 3 */
	0x26, 0x00, 0x02, 'k', '1', 0x00, 0x02, 'v', '1',
	0x26, 0x00, 0x02, 'k', '2', 0x00, 0x02, 'v', '2',
	0x00, 0x01, 0x02,
};
static const uint8_t disconnect_v5[] = {0xe0, 0x00};
/* paho-mqtt MQTTv311, clean_session=False */
static const uint8_t paho311_connect[] = {
	0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x00, 0x00, 0x3c,
	0x00, 0x07, 'p', 'a', 'h', 'o', '3', '1', '1',
};
static const uint8_t paho311_subscribe[] = {
	0x82, 0x0e, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x02, 0x00, 0x03, 'c', '/', '#', 0x00,
};
static const uint8_t paho311_unsubscribe[] = {0xa2, 0x07, 0x00, 0x02, 0x00, 0x03, 'a', '/', 'b'};
static const uint8_t paho311_publish_q2[] = {0x34, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x03, 'x'};
static const uint8_t paho311_pubrel[] = {0x62, 0x02, 0x00, 0x03};
/* paho-mqtt MQTTv31 */
static const uint8_t paho31_connect[] = {
	0x10, 0x14, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3c,
	0x00, 0x06, 'p', 'a', 'h', 'o', '3', '1',
};
static const uint8_t paho31_subscribe[] = {0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x01};

/* Server packets, written by hand from the specs (mosquitto's layouts). */
static const uint8_t connack_v311[] = {0x20, 0x02, 0x00, 0x00};
static const uint8_t connack_v311_present[] = {0x20, 0x02, 0x01, 0x00};
static const uint8_t connack_v5[] = {
	0x20, 0x1a, 0x00, 0x00, 0x17,
	0x12, 0x00, 0x05, 'a', 'u', 't', 'o', '1', /* assigned client id */
	0x13, 0x00, 0x1e,                          /* server keep alive 30 */
	0x21, 0x00, 0x14,                          /* receive maximum 20 */
	0x22, 0x00, 0x0a,                          /* topic alias maximum 10 */
	0x24, 0x01,                                /* maximum QoS 1 */
	0x25, 0x00,                                /* retain not available */
	0x2a, 0x00,                                /* no shared subscriptions */
};
static const uint8_t suback_v311[] = {0x90, 0x04, 0x00, 0x01, 0x01, 0x80};
static const uint8_t suback_v5[] = {0x90, 0x05, 0x00, 0x01, 0x00, 0x02, 0x8f};
static const uint8_t unsuback_v311[] = {0xb0, 0x02, 0x00, 0x02};
static const uint8_t unsuback_v5[] = {0xb0, 0x05, 0x00, 0x02, 0x00, 0x00, 0x11};
static const uint8_t puback_v5_reason[] = {0x40, 0x03, 0x00, 0x07, 0x10}; /* no subscribers */
static const uint8_t pingreq[] = {0xc0, 0x00};
static const uint8_t pingresp[] = {0xd0, 0x00};
static const uint8_t auth_v5[] = {
	0xf0, 0x0f, 0x18, 0x0d, 0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M', 0x16, 0x00, 0x02, 'h', 'i',
};

struct vec {
	const char *name;
	const uint8_t *b;
	size_t len;
	uint8_t level;
};

#define V(arr, lvl) {#arr, arr, sizeof(arr), lvl}
static const struct vec vectors[] = {
	V(mosq31_connect, L31), V(mosq31_publish, L31), V(disconnect_v3, L31),
	V(mosq311_connect_user, L311), V(mosq311_publish_retain, L311),
	V(mosq311_connect_will, L311), V(mosq311_publish_q0, L311), V(mosq5_connect, L5),
	V(mosq5_publish, L5), V(mosq5_pubrel, L5), V(mosq311_subscribe, L311),
	V(mosq5_connect_sub, L5), V(mosq5_subscribe, L5), V(mosq5_disconnect_will, L5),
	V(mosq31_subscribe, L31), V(paho5_connect, L5), V(paho5_subscribe, L5),
	V(paho5_unsubscribe, L5), V(paho5_publish_alias, L5), V(disconnect_v5, L5),
	V(paho311_connect, L311), V(paho311_subscribe, L311), V(paho311_unsubscribe, L311),
	V(paho311_publish_q2, L311), V(paho311_pubrel, L311), V(paho31_connect, L31),
	V(paho31_subscribe, L31), V(connack_v311, L311), V(connack_v311_present, L311),
	V(connack_v5, L5), V(suback_v311, L311), V(suback_v5, L5), V(unsuback_v311, L311),
	V(unsuback_v5, L5), V(puback_v5_reason, L5), V(pingreq, L311), V(pingresp, L5),
	V(auth_v5, L5),
};
#define NVEC (sizeof(vectors) / sizeof(vectors[0]))

/* ---- helpers ---- */

/* Guarded copies stay mapped until the test ends, so views into them can be checked. */
static struct {
	uint8_t *p;
	size_t len;
} guards[64];
static unsigned int nguards;

static uint8_t *
guard(const void *b, size_t len)
{
	uint8_t *g = tq_test_guarded(b, len);

	if (nguards == sizeof(guards) / sizeof(guards[0])) {
		tq_test_guard_free(guards[0].p, guards[0].len);
		memmove(guards, guards + 1, sizeof(guards) - sizeof(guards[0]));
		nguards--;
	}
	guards[nguards].p = g;
	guards[nguards++].len = len;
	return g;
}

static void
guards_free(void)
{
	while (nguards) {
		nguards--;
		tq_test_guard_free(guards[nguards].p, guards[nguards].len);
	}
}

/* Decode @len bytes of @b placed right before a guard page. */
static int
decode_g(const uint8_t *b, size_t len, uint8_t level, struct tq_mqtt_pkt *pkt)
{
	return tq_mqtt_decode(guard(b, len), len, level, pkt);
}

static bool
str_is(struct tq_mqtt_str s, const char *want)
{
	return s.len == strlen(want) && !memcmp(s.p, want, s.len);
}

/* Encode @pkt at @level, checking the size function and -ENOSPC at every shorter
 * capacity; decode the bytes again and require the same view. Returns the length. */
static ssize_t
round_trip(uint8_t level, const struct tq_mqtt_pkt *pkt, uint8_t *out, size_t cap)
{
	ssize_t want = tq_mqtt_encode_len(level, pkt), n;
	struct tq_mqtt_pkt back;
	const char *diff;

	if (want <= 0 || (size_t)want > cap)
		fprintf(stderr, "\n  encode_len type %u level %u: %zd\n", pkt->type, level, want);
	CU_ASSERT_FATAL(want > 0 && (size_t)want <= cap);
	for (size_t c = 0; c < (size_t)want; c += (size_t)want > 64 ? 7 : 1)
		CU_ASSERT_EQUAL(tq_mqtt_encode(out, c, level, pkt), -ENOSPC);
	n = tq_mqtt_encode(out, cap, level, pkt);
	CU_ASSERT_EQUAL_FATAL(n, want);
	CU_ASSERT_EQUAL_FATAL(decode_g(out, (size_t)n, level, &back), n);
	diff = tq_mqtt_pkt_diff(level, pkt, &back);
	if (diff)
		fprintf(stderr, "\n  round trip type %u level %u differs: %s\n", pkt->type, level, diff);
	CU_ASSERT_PTR_NULL(diff);
	return n;
}

/* ---- captured vectors ---- */

static void
test_captured_decode(void)
{
	struct tq_mqtt_pkt k;
	struct tq_mqtt_prop_iter it;
	struct tq_mqtt_sub_iter si;
	struct tq_mqtt_pair up;
	struct tq_mqtt_sub sub;
	struct tq_mqtt_str f;
	uint32_t sid;

	for (size_t i = 0; i < NVEC; i++) {
		int ret = decode_g(vectors[i].b, vectors[i].len, vectors[i].level, &k);

		if (ret != (int)vectors[i].len)
			fprintf(stderr, "\n  %s: %d (%s at %zu)\n", vectors[i].name, ret,
				tq_mqtt_err_name(ret), k.err_off);
		CU_ASSERT_EQUAL(ret, (int)vectors[i].len);
	}

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq31_connect, sizeof(mosq31_connect), 0, &k), 26);
	CU_ASSERT_EQUAL(k.type, TQ_MQTT_CONNECT);
	CU_ASSERT_EQUAL(k.level, L31);
	CU_ASSERT(str_is(k.connect.protocol_name, "MQIsdp"));
	CU_ASSERT(k.connect.clean_start && !k.connect.has_will && !k.connect.has_username);
	CU_ASSERT_EQUAL(k.connect.keep_alive, 60);
	CU_ASSERT(str_is(k.connect.client_id, "mqtt31-pub"));

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq31_publish, sizeof(mosq31_publish), L31, &k), 22);
	CU_ASSERT(k.publish.qos == 1 && !k.publish.dup && !k.publish.retain);
	CU_ASSERT(str_is(k.publish.topic, "sensors/temp"));
	CU_ASSERT_EQUAL(k.publish.packet_id, 1);
	CU_ASSERT(k.publish.payload_len == 4 && !memcmp(k.publish.payload, "21.5", 4));

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq311_connect_user, sizeof(mosq311_connect_user), 0, &k),
			      35);
	CU_ASSERT_EQUAL(k.connect.level, L311);
	CU_ASSERT(k.connect.has_username && k.connect.has_password);
	CU_ASSERT(str_is(k.connect.username, "alice") && str_is(k.connect.password, "secret"));
	CU_ASSERT(str_is(k.connect.client_id, "pub311"));

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq311_publish_retain, sizeof(mosq311_publish_retain), L311,
				       &k), 22);
	CU_ASSERT(k.publish.retain && k.publish.qos == 1);

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq311_connect_will, sizeof(mosq311_connect_will), 0, &k),
			      27);
	CU_ASSERT(k.connect.has_will && k.connect.will.qos == 1 && k.connect.will.retain);
	CU_ASSERT(str_is(k.connect.will.topic, "will/t") && str_is(k.connect.will.payload, "bye"));
	CU_ASSERT_EQUAL(k.connect.client_id.len, 0);
	CU_ASSERT_EQUAL(k.connect.keep_alive, 30);

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq5_connect, sizeof(mosq5_connect), 0, &k), 45);
	CU_ASSERT_EQUAL(k.level, L5);
	CU_ASSERT_EQUAL(k.connect.props.present, PB(SESSION_EXPIRY) | PB(RECEIVE_MAX) |
							 PB(MAX_PACKET_SIZE) | PB(TOPIC_ALIAS_MAX) |
							 PB(USER));
	CU_ASSERT_EQUAL(k.connect.props.session_expiry, 3600);
	CU_ASSERT_EQUAL(k.connect.props.receive_max, 10);
	CU_ASSERT_EQUAL(k.connect.props.max_packet_size, 65536);
	CU_ASSERT_EQUAL(k.connect.props.topic_alias_max, 5);
	CU_ASSERT_EQUAL(k.connect.props.user_count, 1);
	tq_mqtt_prop_iter_init(&it, &k.connect.props);
	CU_ASSERT_FATAL(tq_mqtt_next_user_prop(&it, &up));
	CU_ASSERT(str_is(up.name, "who") && str_is(up.value, "me"));
	CU_ASSERT_FALSE(tq_mqtt_next_user_prop(&it, &up));
	CU_ASSERT(str_is(k.connect.client_id, "pub5"));

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq5_publish, sizeof(mosq5_publish), L5, &k), 65);
	CU_ASSERT(k.publish.qos == 2 && k.publish.packet_id == 1);
	CU_ASSERT_EQUAL(k.publish.props.present, PB(MESSAGE_EXPIRY) | PB(USER) | PB(CONTENT_TYPE) |
							 PB(RESPONSE_TOPIC) |
							 PB(CORRELATION_DATA) | PB(PAYLOAD_FORMAT));
	CU_ASSERT_EQUAL(k.publish.props.message_expiry, 60);
	CU_ASSERT(str_is(k.publish.props.content_type, "text/plain"));
	CU_ASSERT(str_is(k.publish.props.response_topic, "resp/t"));
	CU_ASSERT(str_is(k.publish.props.correlation_data, "abc"));
	CU_ASSERT_EQUAL(k.publish.props.payload_format, 1);
	CU_ASSERT(k.publish.payload_len == 4 && !memcmp(k.publish.payload, "21.5", 4));
	CU_ASSERT_EQUAL(tq_mqtt_payload_format_ok(&k.publish.props, k.publish.payload, 4), 0);

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq5_pubrel, sizeof(mosq5_pubrel), L5, &k), 4);
	CU_ASSERT(k.type == TQ_MQTT_PUBREL && k.ack.packet_id == 1 && k.ack.reason == 0);

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq311_subscribe, sizeof(mosq311_subscribe), L311, &k), 27);
	CU_ASSERT(k.subscribe.packet_id == 1 && k.subscribe.count == 2);
	tq_mqtt_sub_iter_init(&si, L311, &k.subscribe);
	CU_ASSERT_FATAL(tq_mqtt_next_sub(&si, &sub));
	CU_ASSERT(str_is(sub.filter, "sensors/+/temp") && sub.qos == 1);
	CU_ASSERT_FATAL(tq_mqtt_next_sub(&si, &sub));
	CU_ASSERT(str_is(sub.filter, "a/#") && sub.qos == 1);
	CU_ASSERT_FALSE(tq_mqtt_next_sub(&si, &sub));

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq5_subscribe, sizeof(mosq5_subscribe), L5, &k), 26);
	CU_ASSERT_EQUAL(k.subscribe.props.sub_id, 42);
	CU_ASSERT_EQUAL(k.subscribe.props.sub_id_count, 1);
	tq_mqtt_prop_iter_init(&it, &k.subscribe.props);
	CU_ASSERT(tq_mqtt_next_sub_id(&it, &sid) && sid == 42);
	CU_ASSERT_FALSE(tq_mqtt_next_sub_id(&it, &sid));
	tq_mqtt_sub_iter_init(&si, L5, &k.subscribe);
	CU_ASSERT_FATAL(tq_mqtt_next_sub(&si, &sub));
	CU_ASSERT(str_is(sub.filter, "sensors/#") && sub.qos == 2 && !sub.no_local);

	CU_ASSERT_EQUAL_FATAL(decode_g(mosq5_disconnect_will, 3, L5, &k), 3);
	CU_ASSERT_EQUAL(k.disconnect.reason, 0x04);

	CU_ASSERT_EQUAL_FATAL(decode_g(paho5_connect, sizeof(paho5_connect), 0, &k), 82);
	CU_ASSERT(k.connect.has_will && k.connect.will.qos == 1 && k.connect.will.retain);
	CU_ASSERT_EQUAL(k.connect.props.present, PB(SESSION_EXPIRY) | PB(REQUEST_PROBLEM_INFO));
	CU_ASSERT_EQUAL(k.connect.props.request_problem_info, 0);
	CU_ASSERT_EQUAL(k.connect.will.props.present, PB(CONTENT_TYPE) | PB(WILL_DELAY));
	CU_ASSERT_EQUAL(k.connect.will.props.will_delay, 10);
	CU_ASSERT(str_is(k.connect.will.topic, "clients/paho5/state"));
	CU_ASSERT(str_is(k.connect.will.payload, "gone"));
	CU_ASSERT(str_is(k.connect.username, "bob") && str_is(k.connect.password, "pw"));
	CU_ASSERT_EQUAL(k.connect.keep_alive, 45);

	CU_ASSERT_EQUAL_FATAL(decode_g(paho5_subscribe, sizeof(paho5_subscribe), L5, &k), 30);
	tq_mqtt_sub_iter_init(&si, L5, &k.subscribe);
	CU_ASSERT_FATAL(tq_mqtt_next_sub(&si, &sub));
	CU_ASSERT(str_is(sub.filter, "a/+/c") && sub.qos == 1 && sub.no_local &&
		  sub.retain_as_published && sub.retain_handling == 2);
	CU_ASSERT_FATAL(tq_mqtt_next_sub(&si, &sub));
	CU_ASSERT(str_is(sub.filter, "$share/g/x/#") && sub.qos == 0 && !sub.no_local);

	CU_ASSERT_EQUAL_FATAL(decode_g(paho5_unsubscribe, sizeof(paho5_unsubscribe), L5, &k), 17);
	CU_ASSERT(k.unsubscribe.packet_id == 2 && k.unsubscribe.count == 2);
	tq_mqtt_unsub_iter_init(&si, &k.unsubscribe);
	CU_ASSERT(tq_mqtt_next_unsub(&si, &f) && str_is(f, "a/+/c"));
	CU_ASSERT(tq_mqtt_next_unsub(&si, &f) && str_is(f, "x/#"));
	CU_ASSERT_FALSE(tq_mqtt_next_unsub(&si, &f));

	CU_ASSERT_EQUAL_FATAL(decode_g(paho5_publish_alias, sizeof(paho5_publish_alias), L5, &k),
			      38);
	CU_ASSERT_EQUAL(k.publish.props.topic_alias, 3);
	CU_ASSERT_EQUAL(k.publish.props.user_count, 2);
	tq_mqtt_prop_iter_init(&it, &k.publish.props);
	CU_ASSERT(tq_mqtt_next_user_prop(&it, &up) && str_is(up.name, "k1") && str_is(up.value, "v1"));
	CU_ASSERT(tq_mqtt_next_user_prop(&it, &up) && str_is(up.name, "k2") && str_is(up.value, "v2"));
	CU_ASSERT_FALSE(tq_mqtt_next_user_prop(&it, &up));
	CU_ASSERT(k.publish.payload_len == 3 && k.publish.payload[2] == 2);

	CU_ASSERT_EQUAL_FATAL(decode_g(paho311_connect, sizeof(paho311_connect), 0, &k), 21);
	CU_ASSERT_FALSE(k.connect.clean_start);

	CU_ASSERT_EQUAL_FATAL(decode_g(connack_v5, sizeof(connack_v5), L5, &k), 28);
	CU_ASSERT(str_is(k.connack.props.assigned_client_id, "auto1"));
	CU_ASSERT_EQUAL(k.connack.props.server_keep_alive, 30);
	CU_ASSERT_EQUAL(k.connack.props.max_qos, 1);
	CU_ASSERT(!!(k.connack.props.present & PB(RETAIN_AVAILABLE))); /* CU_ASSERT takes an int */
	CU_ASSERT_EQUAL(k.connack.props.retain_available, 0);

	CU_ASSERT_EQUAL_FATAL(decode_g(connack_v311_present, 4, L311, &k), 4);
	CU_ASSERT(k.connack.session_present && k.connack.reason == 0);
	CU_ASSERT_EQUAL_FATAL(decode_g(suback_v5, sizeof(suback_v5), L5, &k), 7);
	CU_ASSERT(k.suback.count == 2 && k.suback.codes[0] == 0x02 && k.suback.codes[1] == 0x8f);
	CU_ASSERT_EQUAL_FATAL(decode_g(unsuback_v311, 4, L311, &k), 4);
	CU_ASSERT(k.suback.packet_id == 2 && k.suback.count == 0);
	CU_ASSERT_EQUAL_FATAL(decode_g(auth_v5, sizeof(auth_v5), L5, &k), 17);
	CU_ASSERT(k.disconnect.reason == 0x18 && str_is(k.disconnect.props.auth_method, "SCRAM"));
	guards_free();
}

/* Encoding a decoded capture without properties gives back the same bytes; with
 * properties (which we write in identifier order) the same view. */
static void
test_captured_reencode(void)
{
	uint8_t out[512];

	for (size_t i = 0; i < NVEC; i++) {
		struct tq_mqtt_pkt k;
		uint8_t level = vectors[i].level;
		ssize_t n;

		CU_ASSERT_EQUAL_FATAL(decode_g(vectors[i].b, vectors[i].len, level, &k),
				      (int)vectors[i].len);
		n = round_trip(level, &k, out, sizeof(out));
		/* mosquitto writes these properties in the order of its command line */
		if (strcmp(vectors[i].name, "mosq5_connect") &&
		    strcmp(vectors[i].name, "mosq5_publish")) {
			CU_ASSERT_EQUAL(n, (ssize_t)vectors[i].len);
			CU_ASSERT(!memcmp(out, vectors[i].b, vectors[i].len));
		}
		guards_free();
	}
}

/* Every prefix of every capture is NEED_MORE, read against a guard page. */
static void
test_byte_at_a_time(void)
{
	for (size_t i = 0; i < NVEC; i++) {
		struct tq_mqtt_pkt k;

		for (size_t n = 0; n < vectors[i].len; n++) {
			uint8_t *g = tq_test_guarded(vectors[i].b, n);
			int ret = tq_mqtt_decode(g, n, vectors[i].level, &k);

			CU_ASSERT_EQUAL(ret, TQ_MQTT_NEED_MORE);
			tq_test_guard_free(g, n);
		}
		CU_ASSERT_EQUAL(decode_g(vectors[i].b, vectors[i].len, vectors[i].level, &k),
				(int)vectors[i].len);
		guards_free();
	}
}

/* A complete frame whose remaining length cuts the body short at every length: an error
 * (or a shorter valid packet), never a read past the frame. */
static void
test_truncated_bodies(void)
{
	uint8_t buf[256];

	for (size_t i = 0; i < NVEC; i++) {
		const uint8_t *b = vectors[i].b;
		size_t hdr = 2, body = vectors[i].len - hdr;

		if (body >= 128)
			continue; /* all captures have one length byte */
		for (size_t cut = 0; cut < body; cut++) {
			struct tq_mqtt_pkt k;
			int ret;

			buf[0] = b[0];
			buf[1] = (uint8_t)cut;
			memcpy(buf + 2, b + 2, cut);
			ret = decode_g(buf, cut + 2, vectors[i].level, &k);
			CU_ASSERT(ret < 0 || ret == (int)cut + 2);
			if (ret < 0) {
				CU_ASSERT(k.err_off <= cut + 2);
			}
		}
		guards_free();
	}
}

/* ---- framing ---- */

static void
test_frame_lengths(void)
{
	static const struct {
		uint8_t b[5];
		uint8_t n;
		uint32_t value;
	} vbi[] = {
		{{0x00}, 1, 0},
		{{0x7f}, 1, 127},
		{{0x80, 0x01}, 2, 128},
		{{0xff, 0x7f}, 2, 16383},
		{{0x80, 0x80, 0x01}, 3, 16384},
		{{0xff, 0xff, 0x7f}, 3, 2097151},
		{{0x80, 0x80, 0x80, 0x01}, 4, 2097152},
		{{0xff, 0xff, 0xff, 0x7f}, 4, 268435455},
	};
	struct tq_mqtt_fixed h;
	uint8_t buf[6];

	for (size_t i = 0; i < sizeof(vbi) / sizeof(vbi[0]); i++) {
		uint8_t *g;

		buf[0] = 0x30;
		memcpy(buf + 1, vbi[i].b, vbi[i].n);
		g = guard(buf, 1u + vbi[i].n);
		/* the header alone: complete only for an empty body */
		CU_ASSERT_EQUAL(tq_mqtt_frame(g, 1u + vbi[i].n, 0, &h),
				vbi[i].value ? TQ_MQTT_NEED_MORE : 2);
		CU_ASSERT_EQUAL(h.remaining_len, vbi[i].value);
		CU_ASSERT_EQUAL(h.hdr_len, 1 + vbi[i].n);
		CU_ASSERT(h.vbi_minimal);
		for (size_t n = 0; n < 1u + vbi[i].n; n++)
			CU_ASSERT_EQUAL(tq_mqtt_frame(g, n, 0, &h), TQ_MQTT_NEED_MORE);
		/* too large, as soon as the length is known */
		if (vbi[i].value > 10) {
			CU_ASSERT_EQUAL(tq_mqtt_frame(g, 1u + vbi[i].n, 10, &h), -TQ_MQTT_E_TOO_LARGE);
			CU_ASSERT_EQUAL(tq_mqtt_err_reason(-TQ_MQTT_E_TOO_LARGE), 0x95);
		}
	}
	/* a 4th length byte with its continuation bit: malformed before a 5th arrives */
	{
		static const uint8_t five[] = {0x30, 0xff, 0xff, 0xff, 0xff};
		static const uint8_t five_full[] = {0x30, 0x80, 0x80, 0x80, 0x80, 0x01};
		struct tq_mqtt_pkt k;

		CU_ASSERT_EQUAL(tq_mqtt_frame(guard(five, 5), 5, 0, &h), -TQ_MQTT_E_BAD_VBI);
		CU_ASSERT_EQUAL(h.err_off, 4);
		CU_ASSERT_EQUAL(decode_g(five_full, 6, L311, &k), -TQ_MQTT_E_BAD_VBI);
		CU_ASSERT_EQUAL(tq_mqtt_err_reason(-TQ_MQTT_E_BAD_VBI), 0x81);
		CU_ASSERT_EQUAL(tq_mqtt_frame(guard(five, 4), 4, 0, &h), TQ_MQTT_NEED_MORE);
	}
	/* exactly the maximum packet size passes; one more fails */
	{
		static const uint8_t p[] = {0x30, 0x05, 0x00, 0x01, 'a', 'x', 'y'};

		CU_ASSERT_EQUAL(tq_mqtt_frame(p, sizeof(p), 7, &h), 7);
		CU_ASSERT_EQUAL(tq_mqtt_frame(p, sizeof(p), 6, &h), -TQ_MQTT_E_TOO_LARGE);
		CU_ASSERT_EQUAL(tq_mqtt_frame(p, 2, 6, &h), -TQ_MQTT_E_TOO_LARGE);
	}
	/* non-minimal length: fine in 3.1.1, malformed in 5.0 (MQTT-1.5.5-1) */
	{
		static const uint8_t ping_long[] = {0xc0, 0x80, 0x00};
		struct tq_mqtt_pkt k;

		CU_ASSERT_EQUAL(decode_g(ping_long, 3, L311, &k), 3);
		CU_ASSERT_EQUAL(decode_g(ping_long, 3, L5, &k), -TQ_MQTT_E_BAD_VBI);
	}
	guards_free();
}

/* Several packets in one segment, and a packet split across segments. */
static void
test_frame_stream(void)
{
	uint8_t stream[256];
	size_t len = 0, off = 0;
	const struct vec *seq[] = {&vectors[0], &vectors[1], &vectors[2]};
	struct tq_mqtt_pkt k;
	unsigned int got = 0;
	int ret;

	for (size_t i = 0; i < 3; i++) {
		memcpy(stream + len, seq[i]->b, seq[i]->len);
		len += seq[i]->len;
	}
	while ((ret = tq_mqtt_decode(stream + off, len - off, L31, &k)) > 0) {
		CU_ASSERT_EQUAL(k.type, seq[got]->b[0] >> 4);
		off += (size_t)ret;
		got++;
	}
	CU_ASSERT_EQUAL(ret, TQ_MQTT_NEED_MORE);
	CU_ASSERT_EQUAL(got, 3);
	CU_ASSERT_EQUAL(off, len);
	/* a partial second packet after a complete first */
	off = 0;
	CU_ASSERT_EQUAL(tq_mqtt_decode(stream, seq[0]->len + 3, L31, &k), (int)seq[0]->len);
	CU_ASSERT_EQUAL(tq_mqtt_decode(stream + seq[0]->len, 3, L31, &k), TQ_MQTT_NEED_MORE);
}

/* ---- UTF-8 and topics ---- */

static void
test_utf8(void)
{
	static const struct {
		const char *s;
		size_t len;
		int err;
		size_t off;
	} cases[] = {
		{"", 0, 0, 0},
		{"a/b", 3, 0, 0},
		{"\xc3\xa9t\xc3\xa9", 5, 0, 0},       /* été */
		{"\xe2\x82\xac", 3, 0, 0},            /* € */
		{"\xf0\x9f\x98\x80", 4, 0, 0},        /* U+1F600 */
		{"\xef\xbb\xbf" "a", 4, 0, 0},        /* BOM is kept, not skipped (MQTT-1.5.4-3) */
		{"\xf4\x8f\xbf\xbf", 4, 0, 0},        /* U+10FFFF */
		{"\x01\x7f", 2, 0, 0},                /* controls: SHOULD NOT, accepted */
		{"\xef\xbf\xbf", 3, 0, 0},            /* non-character U+FFFF: accepted */
		{"a\0b", 3, -TQ_MQTT_E_UTF8_NUL, 1},  /* MQTT-1.5.4-2 */
		{"\xc0\x80", 2, -TQ_MQTT_E_BAD_UTF8, 0}, /* overlong NUL */
		{"\xc1\xbf", 2, -TQ_MQTT_E_BAD_UTF8, 0}, /* overlong */
		{"\xe0\x80\xaf", 3, -TQ_MQTT_E_BAD_UTF8, 0},
		{"\xf0\x80\x80\xaf", 4, -TQ_MQTT_E_BAD_UTF8, 0},
		{"ab\xed\xa0\x80", 5, -TQ_MQTT_E_BAD_UTF8, 2}, /* surrogate U+D800 */
		{"\xed\xbf\xbf", 3, -TQ_MQTT_E_BAD_UTF8, 0},   /* U+DFFF */
		{"\xf4\x90\x80\x80", 4, -TQ_MQTT_E_BAD_UTF8, 0}, /* above U+10FFFF */
		{"\xf5\x80\x80\x80", 4, -TQ_MQTT_E_BAD_UTF8, 0},
		{"\xff", 1, -TQ_MQTT_E_BAD_UTF8, 0},
		{"a\x80", 2, -TQ_MQTT_E_BAD_UTF8, 1},   /* lone continuation */
		{"\xc3", 1, -TQ_MQTT_E_BAD_UTF8, 0},    /* truncated sequence */
		{"\xe2\x82", 2, -TQ_MQTT_E_BAD_UTF8, 0},
		{"\xe2\x28\xa1", 3, -TQ_MQTT_E_BAD_UTF8, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *g = guard(cases[i].s, cases[i].len);
		size_t off = 99;
		int ret = tq_mqtt_utf8_check(g, cases[i].len, &off);

		if (ret != cases[i].err)
			fprintf(stderr, "\n  utf8 case %zu: %d\n", i, ret);
		CU_ASSERT_EQUAL(ret, cases[i].err);
		if (cases[i].err)
			CU_ASSERT_EQUAL(off, cases[i].off);
	}
	CU_ASSERT_EQUAL(tq_mqtt_err_reason(-TQ_MQTT_E_BAD_UTF8), 0x81);
	CU_ASSERT_EQUAL(tq_mqtt_err_reason(-TQ_MQTT_E_UTF8_NUL), 0x81);
	guards_free();
}

static void
test_topics_and_filters(void)
{
	static const struct {
		const char *s;
		bool topic, filter;
	} cases[] = {
		{"a", true, true},
		{"a/b/c", true, true},
		{"/", true, true},
		{"a//b", true, true},
		{"$SYS/x", true, true},
		{"sport/tennis/player1", true, true},
		{"+", false, true},
		{"#", false, true},
		{"a/+", false, true},
		{"+/b", false, true},
		{"a/+/c", false, true},
		{"+/+", false, true},
		{"/+", false, true},
		{"a/#", false, true},
		{"+/#", false, true},
		{"/#", false, true},
		{"a/#/b", false, false},
		{"sport+", false, false},
		{"sport/tennis#", false, false},
		{"a/b+/c", false, false},
		{"a/+b", false, false},
		{"##", false, false},
		{"#/", false, false},
		{"++", false, false},
		{"", false, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].s);
		uint8_t *g = guard(cases[i].s, n);

		if (tq_mqtt_topic_valid(g, n) != cases[i].topic ||
		    tq_mqtt_filter_valid(g, n) != cases[i].filter)
			fprintf(stderr, "\n  topic case \"%s\"\n", cases[i].s);
		CU_ASSERT_EQUAL(tq_mqtt_topic_valid(g, n), cases[i].topic);
		CU_ASSERT_EQUAL(tq_mqtt_filter_valid(g, n), cases[i].filter);
	}
	CU_ASSERT_FALSE(tq_mqtt_topic_valid((const uint8_t *)"a\0b", 3));
	CU_ASSERT_FALSE(tq_mqtt_filter_valid((const uint8_t *)"a/\xc0\x80", 4));
	guards_free();
}

/* ---- malformed packets ---- */

struct bad {
	const char *name;
	uint8_t level;
	uint8_t len;
	uint8_t b[40];
	int err;
	uint8_t reason; /* MQTT 5 reason code */
};

#define CONNECT_HDR(rl, lvl) 0x10, rl, 0x00, 0x04, 'M', 'Q', 'T', 'T', lvl

static const struct bad bad_packets[] = {
	/* fixed header */
	{"type 0", L311, 2, {0x00, 0x00}, -TQ_MQTT_E_BAD_TYPE, 0x81},
	{"AUTH at 3.1.1", L311, 2, {0xf0, 0x00}, -TQ_MQTT_E_BAD_TYPE, 0x81},
	{"PUBREL flags 0", L311, 4, {0x60, 0x02, 0x00, 0x01}, -TQ_MQTT_E_BAD_FLAGS, 0x81},
	{"SUBSCRIBE flags 0", L311, 8, {0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00},
	 -TQ_MQTT_E_BAD_FLAGS, 0x81},
	{"UNSUBSCRIBE flags 3", L5, 7, {0xa3, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01},
	 -TQ_MQTT_E_BAD_FLAGS, 0x81},
	{"PUBACK flags 1", L311, 4, {0x41, 0x02, 0x00, 0x01}, -TQ_MQTT_E_BAD_FLAGS, 0x81},
	{"CONNECT flags 1", L311, 2, {0x11, 0x00}, -TQ_MQTT_E_BAD_FLAGS, 0x81},
	{"PINGREQ flags 2", L5, 2, {0xc2, 0x00}, -TQ_MQTT_E_BAD_FLAGS, 0x81},
	{"PINGREQ with a body", L311, 3, {0xc0, 0x01, 0x00}, -TQ_MQTT_E_TRAILING, 0x81},
	{"DISCONNECT with a body at 3.1.1", L311, 3, {0xe0, 0x01, 0x00}, -TQ_MQTT_E_TRAILING, 0x81},
	/* PUBLISH */
	{"QoS 3", L311, 7, {0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}, -TQ_MQTT_E_BAD_QOS, 0x81},
	{"DUP on QoS 0", L311, 5, {0x38, 0x03, 0x00, 0x01, 'a'}, -TQ_MQTT_E_BAD_FLAGS, 0x81},
	{"packet id 0", L5, 8, {0x32, 0x06, 0x00, 0x01, 'a', 0x00, 0x00, 0x00},
	 -TQ_MQTT_E_PACKET_ID_ZERO, 0x82},
	{"wildcard + in topic", L311, 7, {0x30, 0x05, 0x00, 0x03, 'a', '/', '+'},
	 -TQ_MQTT_E_TOPIC_NAME, 0x81},
	{"wildcard # in topic", L5, 6, {0x30, 0x04, 0x00, 0x01, '#', 0x00},
	 -TQ_MQTT_E_TOPIC_NAME, 0x81},
	{"empty topic at 3.1.1", L311, 5, {0x30, 0x03, 0x00, 0x00, 'x'}, -TQ_MQTT_E_TOPIC_NAME,
	 0x81},
	{"empty topic without alias", L5, 5, {0x30, 0x03, 0x00, 0x00, 0x00}, -TQ_MQTT_E_NO_TOPIC,
	 0x82},
	{"topic U+0000", L311, 6, {0x30, 0x04, 0x00, 0x02, 'a', 0x00}, -TQ_MQTT_E_UTF8_NUL, 0x81},
	{"topic bad UTF-8", L311, 6, {0x30, 0x04, 0x00, 0x02, 0xc0, 0xaf}, -TQ_MQTT_E_BAD_UTF8,
	 0x81},
	{"topic past the end", L311, 5, {0x30, 0x03, 0x00, 0x05, 'a'}, -TQ_MQTT_E_TRUNCATED, 0x81},
	{"no packet id", L311, 5, {0x32, 0x03, 0x00, 0x01, 'a'}, -TQ_MQTT_E_TRUNCATED, 0x81},
	{"no property length", L5, 5, {0x30, 0x03, 0x00, 0x01, 'a'}, -TQ_MQTT_E_TRUNCATED, 0x81},
	{"property length past the end", L5, 6, {0x30, 0x04, 0x00, 0x01, 'a', 0x05},
	 -TQ_MQTT_E_TRUNCATED, 0x81},
	{"property value past its block", L5, 9,
	 {0x30, 0x07, 0x00, 0x01, 'a', 0x02, 0x23, 0x00, 0x01}, -TQ_MQTT_E_TRUNCATED, 0x81},
	{"property length not minimal", L5, 7, {0x30, 0x05, 0x00, 0x01, 'a', 0x80, 0x00},
	 -TQ_MQTT_E_BAD_VBI, 0x81},
	{"topic alias 0", L5, 9, {0x30, 0x07, 0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x00},
	 -TQ_MQTT_E_TOPIC_ALIAS, 0x94},
	{"duplicate topic alias", L5, 12,
	 {0x30, 0x0a, 0x00, 0x01, 'a', 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02},
	 -TQ_MQTT_E_PROP_DUPLICATE, 0x82},
	{"payload format 2", L5, 8, {0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x01, 0x02},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"subscription id 0", L5, 8, {0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x0b, 0x00},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"response topic with wildcard", L5, 11,
	 {0x30, 0x09, 0x00, 0x01, 'a', 0x05, 0x08, 0x00, 0x02, 'a', '#'},
	 -TQ_MQTT_E_RESPONSE_TOPIC, 0x82},
	{"session expiry in PUBLISH", L5, 11,
	 {0x30, 0x09, 0x00, 0x01, 'a', 0x05, 0x11, 0x00, 0x00, 0x00, 0x00},
	 -TQ_MQTT_E_PROP_NOT_ALLOWED, 0x81},
	{"unknown property 0x04", L5, 8, {0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x04, 0x00},
	 -TQ_MQTT_E_PROP_UNKNOWN, 0x81},
	{"property id 0x80 0x01", L5, 9, {0x30, 0x07, 0x00, 0x01, 'a', 0x03, 0x80, 0x01, 0x00},
	 -TQ_MQTT_E_PROP_UNKNOWN, 0x81},
	{"user property value cut", L5, 12,
	 {0x30, 0x0a, 0x00, 0x01, 'a', 0x06, 0x26, 0x00, 0x01, 'k', 0x00, 0x01},
	 -TQ_MQTT_E_TRUNCATED, 0x81},
	{"user property bad UTF-8", L5, 13,
	 {0x30, 0x0b, 0x00, 0x01, 'a', 0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 0xfe},
	 -TQ_MQTT_E_BAD_UTF8, 0x81},
	/* acks */
	{"PUBACK packet id 0", L311, 4, {0x40, 0x02, 0x00, 0x00}, -TQ_MQTT_E_PACKET_ID_ZERO, 0x82},
	{"PUBACK short", L311, 3, {0x40, 0x01, 0x00}, -TQ_MQTT_E_TRUNCATED, 0x81},
	{"PUBACK long at 3.1.1", L311, 5, {0x40, 0x03, 0x00, 0x01, 0x00}, -TQ_MQTT_E_TRAILING, 0x81},
	{"PUBACK bad reason", L5, 5, {0x40, 0x03, 0x00, 0x01, 0x92}, -TQ_MQTT_E_REASON_CODE, 0x82},
	{"PUBREL bad reason", L5, 5, {0x62, 0x03, 0x00, 0x01, 0x10}, -TQ_MQTT_E_REASON_CODE, 0x82},
	{"PUBCOMP topic alias", L5, 9, {0x70, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01},
	 -TQ_MQTT_E_PROP_NOT_ALLOWED, 0x81},
	{"PUBREC duplicate reason string", L5, 14,
	 {0x50, 0x0c, 0x00, 0x01, 0x00, 0x08, 0x1f, 0x00, 0x01, 'a', 0x1f, 0x00, 0x01, 'b'},
	 -TQ_MQTT_E_PROP_DUPLICATE, 0x82},
	/* SUBSCRIBE */
	{"no filters", L311, 4, {0x82, 0x02, 0x00, 0x01}, -TQ_MQTT_E_NO_FILTERS, 0x82},
	{"no filters at 5.0", L5, 5, {0x82, 0x03, 0x00, 0x01, 0x00}, -TQ_MQTT_E_NO_FILTERS, 0x82},
	{"filter a/#/b", L311, 11, {0x82, 0x09, 0x00, 0x01, 0x00, 0x05, 'a', '/', '#', '/', 'b', 0x00},
	 -TQ_MQTT_E_TOPIC_FILTER, 0x81},
	{"filter sport+", L311, 13,
	 {0x82, 0x0b, 0x00, 0x01, 0x00, 0x06, 's', 'p', 'o', 'r', 't', '+', 0x00},
	 -TQ_MQTT_E_TOPIC_FILTER, 0x81},
	{"empty filter", L311, 7, {0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00},
	 -TQ_MQTT_E_TOPIC_FILTER, 0x81},
	{"requested QoS 3", L311, 8, {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03},
	 -TQ_MQTT_E_BAD_QOS, 0x81},
	{"3.1.1 reserved option bits", L311, 8, {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04},
	 -TQ_MQTT_E_SUB_RESERVED, 0x81},
	{"5.0 reserved option bits", L5, 9, {0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40},
	 -TQ_MQTT_E_SUB_RESERVED, 0x81},
	{"retain handling 3", L5, 9, {0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30},
	 -TQ_MQTT_E_RETAIN_HANDLING, 0x82},
	{"options missing", L311, 7, {0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'},
	 -TQ_MQTT_E_TRUNCATED, 0x81},
	{"SUBSCRIBE packet id 0", L311, 8, {0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00},
	 -TQ_MQTT_E_PACKET_ID_ZERO, 0x82},
	{"two subscription ids", L5, 13,
	 {0x82, 0x0b, 0x00, 0x01, 0x04, 0x0b, 0x01, 0x0b, 0x02, 0x00, 0x01, 'a', 0x00},
	 -TQ_MQTT_E_PROP_DUPLICATE, 0x82},
	{"no local on a shared subscription", L5, 19,
	 {0x82, 0x11, 0x00, 0x01, 0x00, 0x00, 0x0a, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'a',
	  0x04},
	 -TQ_MQTT_E_SHARED_NO_LOCAL, 0x82},
	{"shared without a share name", L5, 18,
	 {0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x09, '$', 's', 'h', 'a', 'r', 'e', '/', '/', 'a', 0x00},
	 -TQ_MQTT_E_TOPIC_FILTER, 0x81},
	{"shared without a filter", L5, 17,
	 {0x82, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x08, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 0x00},
	 -TQ_MQTT_E_TOPIC_FILTER, 0x81},
	{"shared name with +", L5, 19,
	 {0x82, 0x11, 0x00, 0x01, 0x00, 0x00, 0x0a, '$', 's', 'h', 'a', 'r', 'e', '/', '+', '/', 'a',
	  0x00},
	 -TQ_MQTT_E_TOPIC_FILTER, 0x81},
	{"UNSUBSCRIBE # (valid: control case)", L311, 7, {0xa2, 0x05, 0x00, 0x01, 0x00, 0x01, '#'},
	 0, 0},
	{"UNSUBSCRIBE no filters", L311, 4, {0xa2, 0x02, 0x00, 0x01}, -TQ_MQTT_E_NO_FILTERS, 0x82},
	{"UNSUBSCRIBE filter a#", L311, 8, {0xa2, 0x06, 0x00, 0x01, 0x00, 0x02, 'a', '#'},
	 -TQ_MQTT_E_TOPIC_FILTER, 0x81},
	/* server packets */
	{"SUBACK bad code at 3.1.1", L311, 5, {0x90, 0x03, 0x00, 0x01, 0x03},
	 -TQ_MQTT_E_REASON_CODE, 0x82},
	{"SUBACK no codes", L311, 4, {0x90, 0x02, 0x00, 0x01}, -TQ_MQTT_E_NO_FILTERS, 0x82},
	{"UNSUBACK bad code", L5, 6, {0xb0, 0x04, 0x00, 0x01, 0x00, 0x01}, -TQ_MQTT_E_REASON_CODE,
	 0x82},
	{"UNSUBACK with codes at 3.1.1", L311, 5, {0xb0, 0x03, 0x00, 0x01, 0x00},
	 -TQ_MQTT_E_TRAILING, 0x81},
	{"CONNACK reserved flags", L311, 4, {0x20, 0x02, 0x02, 0x00}, -TQ_MQTT_E_CONNACK_FLAGS, 0x81},
	{"CONNACK present with error", L311, 4, {0x20, 0x02, 0x01, 0x05}, -TQ_MQTT_E_CONNACK_FLAGS,
	 0x81},
	{"CONNACK code 6 at 3.1.1", L311, 4, {0x20, 0x02, 0x00, 0x06}, -TQ_MQTT_E_REASON_CODE, 0x82},
	{"CONNACK without properties at 5.0", L5, 4, {0x20, 0x02, 0x00, 0x00},
	 -TQ_MQTT_E_TRUNCATED, 0x81},
	{"CONNACK receive maximum 0", L5, 8, {0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"CONNACK maximum QoS 2", L5, 7, {0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"CONNACK retain available 2", L5, 7, {0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"CONNACK maximum packet size 0", L5, 10,
	 {0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00}, -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"CONNACK auth data alone", L5, 9, {0x20, 0x07, 0x00, 0x00, 0x04, 0x16, 0x00, 0x01, 'x'},
	 -TQ_MQTT_E_NO_AUTH_METHOD, 0x82},
	{"DISCONNECT bad reason", L5, 3, {0xe0, 0x01, 0x01}, -TQ_MQTT_E_REASON_CODE, 0x82},
	{"DISCONNECT trailing", L5, 5, {0xe0, 0x03, 0x00, 0x00, 0x00}, -TQ_MQTT_E_TRAILING, 0x81},
	{"AUTH without method", L5, 4, {0xf0, 0x02, 0x18, 0x00}, -TQ_MQTT_E_NO_AUTH_METHOD, 0x82},
	{"AUTH bad reason", L5, 3, {0xf0, 0x01, 0x00 + 0x01}, -TQ_MQTT_E_REASON_CODE, 0x82},
	/* CONNECT */
	{"protocol name MQTX", 0, 14,
	 {0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00},
	 -TQ_MQTT_E_PROTOCOL_NAME, 0x84},
	{"level 6", 0, 15, {CONNECT_HDR(0x0d, 6), 0x02, 0x00, 0x3c, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_PROTOCOL_VERSION, 0x84},
	{"MQTT with level 3", 0, 15, {CONNECT_HDR(0x0d, 3), 0x02, 0x00, 0x3c, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_PROTOCOL_VERSION, 0x84},
	{"MQIsdp with level 4", 0, 17,
	 {0x10, 0x0f, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01,
	  'c'},
	 -TQ_MQTT_E_PROTOCOL_VERSION, 0x84},
	{"reserved flag", 0, 15, {CONNECT_HDR(0x0d, 4), 0x03, 0x00, 0x3c, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_CONNECT_RESERVED, 0x81},
	{"will QoS without will", 0, 15, {CONNECT_HDR(0x0d, 4), 0x0a, 0x00, 0x3c, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_WILL_FLAGS, 0x81},
	{"will retain without will", 0, 16,
	 {CONNECT_HDR(0x0e, 5), 0x22, 0x00, 0x3c, 0x00, 0x00, 0x01, 'c'}, -TQ_MQTT_E_WILL_FLAGS, 0x81},
	{"will QoS 3", 0, 15, {CONNECT_HDR(0x0d, 4), 0x1e, 0x00, 0x3c, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_BAD_QOS, 0x81},
	{"password without user name at 3.1.1", 0, 15,
	 {CONNECT_HDR(0x0d, 4), 0x42, 0x00, 0x3c, 0x00, 0x01, 'c'}, -TQ_MQTT_E_PASSWORD_NO_USER, 0x81},
	{"empty id without clean session", 0, 14,
	 {CONNECT_HDR(0x0c, 4), 0x00, 0x00, 0x3c, 0x00, 0x00}, -TQ_MQTT_E_CLIENT_ID, 0x85},
	{"empty id at 3.1", 0, 16,
	 {0x10, 0x0e, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3c, 0x00, 0x00},
	 -TQ_MQTT_E_CLIENT_ID, 0x85},
	{"client id U+0000", 0, 16, {CONNECT_HDR(0x0e, 4), 0x02, 0x00, 0x3c, 0x00, 0x02, 'c', 0x00},
	 -TQ_MQTT_E_UTF8_NUL, 0x81},
	{"will topic with wildcard", 0, 23,
	 {CONNECT_HDR(0x15, 4), 0x06, 0x00, 0x3c, 0x00, 0x01, 'c', 0x00, 0x03, 'a', '/', '#', 0x00,
	  0x01, 'x'},
	 -TQ_MQTT_E_TOPIC_NAME, 0x81},
	{"will payload cut", 0, 21,
	 {CONNECT_HDR(0x13, 4), 0x06, 0x00, 0x3c, 0x00, 0x01, 'c', 0x00, 0x01, 'a', 0x00, 0x05, 'x'},
	 -TQ_MQTT_E_TRUNCATED, 0x81},
	{"user name missing", 0, 15, {CONNECT_HDR(0x0d, 4), 0x82, 0x00, 0x3c, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_TRUNCATED, 0x81},
	{"trailing byte", 0, 16, {CONNECT_HDR(0x0e, 4), 0x02, 0x00, 0x3c, 0x00, 0x01, 'c', 'x'},
	 -TQ_MQTT_E_TRAILING, 0x81},
	{"receive maximum 0", 0, 19,
	 {CONNECT_HDR(0x11, 5), 0x02, 0x00, 0x3c, 0x03, 0x21, 0x00, 0x00, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"request problem information 2", 0, 18,
	 {CONNECT_HDR(0x10, 5), 0x02, 0x00, 0x3c, 0x02, 0x17, 0x02, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"request response information 2", 0, 18,
	 {CONNECT_HDR(0x10, 5), 0x02, 0x00, 0x3c, 0x02, 0x19, 0x02, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
	{"duplicate session expiry", 0, 26,
	 {CONNECT_HDR(0x18, 5), 0x02, 0x00, 0x3c, 0x0a, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0x00, 0x01,
	  'c'},
	 -TQ_MQTT_E_PROP_DUPLICATE, 0x82},
	{"will delay in CONNECT properties", 0, 21,
	 {CONNECT_HDR(0x13, 5), 0x02, 0x00, 0x3c, 0x05, 0x18, 0, 0, 0, 1, 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_PROP_NOT_ALLOWED, 0x81},
	{"auth data without method", 0, 20,
	 {CONNECT_HDR(0x12, 5), 0x02, 0x00, 0x3c, 0x04, 0x16, 0x00, 0x01, 'x', 0x00, 0x01, 'c'},
	 -TQ_MQTT_E_NO_AUTH_METHOD, 0x82},
	{"session expiry in will properties", 0, 29,
	 {CONNECT_HDR(0x1b, 5), 0x06, 0x00, 0x3c, 0x00, 0x00, 0x01, 'c', 0x05, 0x11, 0, 0, 0, 1, 0x00,
	  0x01, 't', 0x00, 0x00},
	 -TQ_MQTT_E_PROP_NOT_ALLOWED, 0x81},
	{"will payload format 3", 0, 26,
	 {CONNECT_HDR(0x18, 5), 0x06, 0x00, 0x3c, 0x00, 0x00, 0x01, 'c', 0x02, 0x01, 0x03, 0x00, 0x01,
	  't', 0x00, 0x00},
	 -TQ_MQTT_E_PROP_VALUE, 0x82},
};

static void
test_malformed(void)
{
	for (size_t i = 0; i < sizeof(bad_packets) / sizeof(bad_packets[0]); i++) {
		const struct bad *c = &bad_packets[i];
		struct tq_mqtt_pkt k;
		int ret = decode_g(c->b, c->len, c->level, &k);

		if (c->err == 0) { /* "#" alone is a valid filter: a control case */
			CU_ASSERT_EQUAL(ret, c->len);
			continue;
		}
		if (ret != c->err)
			fprintf(stderr, "\n  %s: got %d %s at %zu, want %s\n", c->name, ret,
				tq_mqtt_err_name(ret), k.err_off, tq_mqtt_err_name(c->err));
		CU_ASSERT_EQUAL(ret, c->err);
		CU_ASSERT_EQUAL(tq_mqtt_err_reason(ret), c->reason);
		CU_ASSERT(k.err_off <= c->len); /* a missing byte is reported where it lacks */
	}
	guards_free();
}

/* Offsets point at the offending byte. */
static void
test_error_offsets(void)
{
	static const uint8_t dup_alias[] = {0x30, 0x0a, 0x00, 0x01, 'a', 0x06, 0x23, 0x00, 0x01,
					    0x23, 0x00, 0x02};
	static const uint8_t bad_utf8[] = {0x30, 0x05, 0x00, 0x03, 'a', 'b', 0xff};
	static const uint8_t bad_filter[] = {0x82, 0x0b, 0x00, 0x01, 0x00, 0x01, 'a', 0x00,
					     0x00, 0x02, 'a', '#', 0x00};
	struct tq_mqtt_pkt k;

	CU_ASSERT_EQUAL(decode_g(dup_alias, sizeof(dup_alias), L5, &k), -TQ_MQTT_E_PROP_DUPLICATE);
	CU_ASSERT_EQUAL(k.err_off, 9);
	CU_ASSERT_EQUAL(decode_g(bad_utf8, sizeof(bad_utf8), L311, &k), -TQ_MQTT_E_BAD_UTF8);
	CU_ASSERT_EQUAL(k.err_off, 6);
	CU_ASSERT_EQUAL(decode_g(bad_filter, sizeof(bad_filter), L311, &k), -TQ_MQTT_E_TOPIC_FILTER);
	CU_ASSERT_EQUAL(k.err_off, 8);
	guards_free();
}

/* 3.x behaviour and the rest of the table. */
static void
test_error_table(void)
{
	CU_ASSERT_EQUAL(tq_mqtt_err_v3_connack(-TQ_MQTT_E_PROTOCOL_VERSION), 0x01);
	CU_ASSERT_EQUAL(tq_mqtt_err_v3_connack(-TQ_MQTT_E_CLIENT_ID), 0x02);
	CU_ASSERT_EQUAL(tq_mqtt_err_v3_connack(-TQ_MQTT_E_SERVER_UNAVAILABLE), 0x03);
	CU_ASSERT_EQUAL(tq_mqtt_err_v3_connack(-TQ_MQTT_E_BAD_USER_PASS), 0x04);
	CU_ASSERT_EQUAL(tq_mqtt_err_v3_connack(-TQ_MQTT_E_NOT_AUTHORIZED), 0x05);
	CU_ASSERT_EQUAL(tq_mqtt_err_v3_connack(-TQ_MQTT_E_MALFORMED), 0x00); /* close */
	CU_ASSERT_EQUAL(tq_mqtt_err_v3_connack(-TQ_MQTT_E_PROTOCOL_NAME), 0x00);
	CU_ASSERT_EQUAL(tq_mqtt_err_reason(-TQ_MQTT_E_BAD_AUTH_METHOD), 0x8c);
	CU_ASSERT_EQUAL(tq_mqtt_err_reason(-TQ_MQTT_E_PAYLOAD_FORMAT), 0x99);
	CU_ASSERT_EQUAL(tq_mqtt_err_reason(-TQ_MQTT_E_PROTOCOL), 0x82);
	CU_ASSERT_EQUAL(tq_mqtt_err_reason(TQ_MQTT_E_TOO_LARGE), 0x95); /* either sign */
	CU_ASSERT_EQUAL(tq_mqtt_err_reason(-TQ_MQTT_E_COUNT), 0x80);
	CU_ASSERT_STRING_EQUAL(tq_mqtt_err_name(-TQ_MQTT_E_BAD_QOS), "BAD_QOS");
	CU_ASSERT_STRING_EQUAL(tq_mqtt_err_name(12345), "?");
	/* every error has a name and a reason code that is an error (>= 0x80) */
	for (int e = 1; e < TQ_MQTT_E_COUNT; e++) {
		CU_ASSERT(tq_mqtt_err_reason(-e) >= 0x80);
		CU_ASSERT_STRING_NOT_EQUAL(tq_mqtt_err_name(-e), "?");
	}
}

static void
test_payload_format(void)
{
	struct tq_mqtt_props pr = {.present = PB(PAYLOAD_FORMAT), .payload_format = 1};

	CU_ASSERT_EQUAL(tq_mqtt_payload_format_ok(&pr, (const uint8_t *)"\xc3\xa9", 2), 0);
	CU_ASSERT_EQUAL(tq_mqtt_payload_format_ok(&pr, (const uint8_t *)"\xc3", 1),
			-TQ_MQTT_E_PAYLOAD_FORMAT);
	pr.payload_format = 0;
	CU_ASSERT_EQUAL(tq_mqtt_payload_format_ok(&pr, (const uint8_t *)"\xc3", 1), 0);
	pr.present = 0;
	pr.payload_format = 1;
	CU_ASSERT_EQUAL(tq_mqtt_payload_format_ok(&pr, (const uint8_t *)"\xc3", 1), 0);
}

/* ---- every property in every packet ---- */

/* A valid packet of each context with @props (VBI length + bytes) spliced in. */
static size_t
build_with_props(unsigned int ctx, const uint8_t *props, size_t plen, uint8_t *out)
{
	static const uint8_t connect_pre[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 5, 0x02, 0x00, 0x3c};
	static const uint8_t will_pre[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 5, 0x06, 0x00, 0x3c,
					   0x00, 0x00, 0x01, 'c'};
	static const uint8_t will_post[] = {0x00, 0x01, 't', 0x00, 0x01, 'p'};
	static const uint8_t id[] = {0x00, 0x01};
	static const uint8_t id_rc[] = {0x00, 0x01, 0x00};
	static const uint8_t topic_id[] = {0x00, 0x01, 't', 0x00, 0x01};
	static const uint8_t client[] = {0x00, 0x01, 'c'};
	static const uint8_t sub[] = {0x00, 0x01, 'a', 0x00};
	static const uint8_t unsub[] = {0x00, 0x01, 'a'};
	static const uint8_t code[] = {0x00};
	static const uint8_t connack_pre[] = {0x00, 0x00};
	static const uint8_t auth_pre[] = {0x18};
	static const uint8_t payload[] = {'x'};
	const uint8_t *pre = NULL, *post = NULL;
	size_t npre = 0, npost = 0, body, n = 0;
	uint8_t type = (uint8_t)ctx, flags = 0;
	uint8_t tmp[512];

#define SET(a, b) (a = b, n##a = sizeof(b))
	switch (ctx) {
	case TQ_MQTT_CONNECT: SET(pre, connect_pre); SET(post, client); break;
	case 16: type = TQ_MQTT_CONNECT; SET(pre, will_pre); SET(post, will_post); break;
	case TQ_MQTT_CONNACK: SET(pre, connack_pre); break;
	case TQ_MQTT_PUBLISH: flags = 0x2; SET(pre, topic_id); SET(post, payload); break;
	case TQ_MQTT_PUBACK:
	case TQ_MQTT_PUBREC:
	case TQ_MQTT_PUBCOMP: SET(pre, id_rc); break;
	case TQ_MQTT_PUBREL: flags = 0x2; SET(pre, id_rc); break;
	case TQ_MQTT_SUBSCRIBE: flags = 0x2; SET(pre, id); SET(post, sub); break;
	case TQ_MQTT_SUBACK:
	case TQ_MQTT_UNSUBACK: SET(pre, id); SET(post, code); break;
	case TQ_MQTT_UNSUBSCRIBE: flags = 0x2; SET(pre, id); SET(post, unsub); break;
	case TQ_MQTT_DISCONNECT: SET(pre, code); break;
	case TQ_MQTT_AUTH: SET(pre, auth_pre); break;
	}
#undef SET
	memcpy(tmp + n, pre, npre);
	n += npre;
	tmp[n++] = (uint8_t)plen; /* tests keep property blocks below 128 bytes */
	memcpy(tmp + n, props, plen);
	n += plen;
	if (npost)
		memcpy(tmp + n, post, npost);
	n += npost;
	body = n;
	out[0] = (uint8_t)(type << 4 | flags);
	out[1] = (uint8_t)body; /* below 128 */
	memcpy(out + 2, tmp, body);
	return body + 2;
}

static const struct tq_mqtt_props *
ctx_props(unsigned int ctx, const struct tq_mqtt_pkt *k)
{
	switch (ctx) {
	case TQ_MQTT_CONNECT: return &k->connect.props;
	case 16: return &k->connect.will.props;
	case TQ_MQTT_CONNACK: return &k->connack.props;
	case TQ_MQTT_PUBLISH: return &k->publish.props;
	case TQ_MQTT_SUBSCRIBE: return &k->subscribe.props;
	case TQ_MQTT_UNSUBSCRIBE: return &k->unsubscribe.props;
	case TQ_MQTT_SUBACK:
	case TQ_MQTT_UNSUBACK: return &k->suback.props;
	case TQ_MQTT_DISCONNECT:
	case TQ_MQTT_AUTH: return &k->disconnect.props;
	default: return &k->ack.props;
	}
}

static void
test_every_property_everywhere(void)
{
	/* identifier, a valid encoding of a value, contexts where 5.0 2.2.2.2 allows it */
#define CX(t) (1u << (t))
#define ACKS (CX(4) | CX(5) | CX(6) | CX(7))
	static const struct {
		uint8_t id;
		uint8_t len;
		uint8_t v[12];
		uint32_t ctx;
	} props[] = {
		{0x01, 1, {0x01}, CX(3) | CX(16)},
		{0x02, 4, {0, 0, 0, 60}, CX(3) | CX(16)},
		{0x03, 4, {0, 2, 't', 'p'}, CX(3) | CX(16)},
		{0x08, 5, {0, 3, 'r', '/', 't'}, CX(3) | CX(16)},
		{0x09, 4, {0, 2, 0xff, 0x00}, CX(3) | CX(16)},
		{0x0b, 2, {0x80, 0x01}, CX(3) | CX(8)},
		{0x11, 4, {0, 0, 1, 0}, CX(1) | CX(2) | CX(14)},
		{0x12, 3, {0, 1, 'x'}, CX(2)},
		{0x13, 2, {0, 5}, CX(2)},
		{0x15, 3, {0, 1, 'm'}, CX(1) | CX(2) | CX(15)},
		{0x17, 1, {1}, CX(1)},
		{0x18, 4, {0, 0, 0, 5}, CX(16)},
		{0x19, 1, {1}, CX(1)},
		{0x1a, 3, {0, 1, 'i'}, CX(2)},
		{0x1c, 3, {0, 1, 's'}, CX(2) | CX(14)},
		{0x1f, 3, {0, 1, 'r'}, CX(2) | ACKS | CX(9) | CX(11) | CX(14) | CX(15)},
		{0x21, 2, {0, 1}, CX(1) | CX(2)},
		{0x22, 2, {0, 0}, CX(1) | CX(2)},
		{0x23, 2, {0, 1}, CX(3)},
		{0x24, 1, {0}, CX(2)},
		{0x25, 1, {1}, CX(2)},
		{0x26, 6, {0, 1, 'k', 0, 1, 'v'},
		 CX(1) | CX(2) | CX(3) | CX(16) | ACKS | CX(8) | CX(9) | CX(10) | CX(11) | CX(14) |
			 CX(15)},
		{0x27, 4, {0, 0, 4, 0}, CX(1) | CX(2)},
		{0x28, 1, {0}, CX(2)},
		{0x29, 1, {1}, CX(2)},
		{0x2a, 1, {0}, CX(2)},
	};
	static const uint8_t auth_method[] = {0x15, 0x00, 0x01, 'm'};
	uint8_t pkt[256], blk[64], out[512];
	unsigned int checked = 0, pairs = 0;

	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
		pairs += (unsigned int)__builtin_popcount(props[i].ctx);
		for (unsigned int ctx = 1; ctx <= 16; ctx++) {
			bool allowed = props[i].ctx & CX(ctx);
			size_t n = 0, len;
			struct tq_mqtt_pkt k;
			int ret, want_err;

			if (ctx == TQ_MQTT_PINGREQ || ctx == TQ_MQTT_PINGRESP)
				continue;
			/* AUTH needs its method; auth data needs one wherever it is allowed */
			if (ctx == TQ_MQTT_AUTH && props[i].id != 0x15) {
				memcpy(blk, auth_method, sizeof(auth_method));
				n = sizeof(auth_method);
			}
			blk[n++] = props[i].id;
			memcpy(blk + n, props[i].v, props[i].len);
			n += props[i].len;
			len = build_with_props(ctx, blk, n, pkt);
			ret = decode_g(pkt, len, L5, &k);
			want_err = allowed ? (int)len : -TQ_MQTT_E_PROP_NOT_ALLOWED;
			if (ret != want_err)
				fprintf(stderr, "\n  property 0x%02x in ctx %u: %d %s\n", props[i].id, ctx,
					ret, tq_mqtt_err_name(ret));
			CU_ASSERT_EQUAL(ret, want_err);
			if (!allowed || ret <= 0)
				continue;
			CU_ASSERT(!!(ctx_props(ctx, &k)->present & TQ_MQTT_PBIT(props[i].id)));
			/* the decoded view encodes and decodes to the same view */
			round_trip(L5, &k, out, sizeof(out));
			/* twice: a duplicate, except the repeatable ones */
			memcpy(blk + n, blk + n - props[i].len - 1, props[i].len + 1u);
			len = build_with_props(ctx, blk, n + props[i].len + 1, pkt);
			ret = decode_g(pkt, len, L5, &k);
			if (props[i].id == 0x26 || (props[i].id == 0x0b && ctx == TQ_MQTT_PUBLISH)) {
				CU_ASSERT_EQUAL(ret, (int)len);
				if (ret > 0 && props[i].id == 0x0b)
					CU_ASSERT_EQUAL(k.publish.props.sub_id_count, 2);
			} else {
				CU_ASSERT_EQUAL(ret, -TQ_MQTT_E_PROP_DUPLICATE);
			}
			checked++;
			guards_free();
		}
	}
	CU_ASSERT_EQUAL(checked, pairs); /* every allowed pair decoded; AUTH data below */
	/* authentication data, with its method, where allowed */
	{
		static const uint8_t both[] = {0x15, 0x00, 0x01, 'm', 0x16, 0x00, 0x02, 0x01, 0x02};
		static const unsigned int ctxs[] = {TQ_MQTT_CONNECT, TQ_MQTT_CONNACK, TQ_MQTT_AUTH};
		struct tq_mqtt_pkt k;

		for (size_t c = 0; c < 3; c++) {
			size_t len = build_with_props(ctxs[c], both, sizeof(both), pkt);

			CU_ASSERT_EQUAL(decode_g(pkt, len, L5, &k), (int)len);
			CU_ASSERT_EQUAL(ctx_props(ctxs[c], &k)->auth_data.len, 2);
			round_trip(L5, &k, out, sizeof(out));
		}
	}
	guards_free();
#undef CX
#undef ACKS
}

/* Range limits of each integer property: the edges that pass and fail. */
static void
test_property_ranges(void)
{
	static const struct {
		unsigned int ctx;
		uint8_t len;
		uint8_t v[6];
		int err;
	} cases[] = {
		{TQ_MQTT_PUBLISH, 2, {0x01, 0x00}, 0},
		{TQ_MQTT_PUBLISH, 2, {0x01, 0x01}, 0},
		{TQ_MQTT_PUBLISH, 2, {0x01, 0xff}, -TQ_MQTT_E_PROP_VALUE},
		{TQ_MQTT_PUBLISH, 5, {0x0b, 0xff, 0xff, 0xff, 0x7f}, 0}, /* 268,435,455 */
		{TQ_MQTT_PUBLISH, 5, {0x0b, 0xff, 0xff, 0xff, 0xff}, -TQ_MQTT_E_BAD_VBI},
		{TQ_MQTT_PUBLISH, 3, {0x0b, 0x81, 0x00}, -TQ_MQTT_E_BAD_VBI}, /* not minimal */
		{TQ_MQTT_PUBLISH, 3, {0x23, 0xff, 0xff}, 0},
		{TQ_MQTT_CONNECT, 3, {0x21, 0xff, 0xff}, 0},
		{TQ_MQTT_CONNECT, 5, {0x27, 0xff, 0xff, 0xff, 0xff}, 0},
		{TQ_MQTT_CONNECT, 5, {0x27, 0x00, 0x00, 0x00, 0x00}, -TQ_MQTT_E_PROP_VALUE},
		{TQ_MQTT_CONNECT, 3, {0x22, 0x00, 0x00}, 0}, /* topic alias maximum 0: none */
		{TQ_MQTT_CONNECT, 2, {0x17, 0x02}, -TQ_MQTT_E_PROP_VALUE},
		{TQ_MQTT_CONNACK, 2, {0x24, 0x00}, 0},
		{TQ_MQTT_CONNACK, 2, {0x28, 0x02}, -TQ_MQTT_E_PROP_VALUE},
		{TQ_MQTT_CONNACK, 2, {0x29, 0x02}, -TQ_MQTT_E_PROP_VALUE},
		{TQ_MQTT_CONNACK, 2, {0x2a, 0x02}, -TQ_MQTT_E_PROP_VALUE},
		{TQ_MQTT_CONNACK, 3, {0x13, 0x00, 0x00}, 0}, /* server keep alive 0 */
		{TQ_MQTT_CONNACK, 3, {0x21, 0x00, 0x00}, -TQ_MQTT_E_PROP_VALUE},
		{TQ_MQTT_SUBSCRIBE, 2, {0x0b, 0x00}, -TQ_MQTT_E_PROP_VALUE},
		{TQ_MQTT_SUBSCRIBE, 5, {0x0b, 0xff, 0xff, 0xff, 0x7f}, 0},
		{16, 2, {0x01, 0x02}, -TQ_MQTT_E_PROP_VALUE},
		{16, 4, {0x08, 0x00, 0x01, '+'}, -TQ_MQTT_E_RESPONSE_TOPIC},
		{16, 3, {0x08, 0x00, 0x00}, -TQ_MQTT_E_RESPONSE_TOPIC}, /* empty topic */
	};
	uint8_t pkt[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tq_mqtt_pkt k;
		size_t len = build_with_props(cases[i].ctx, cases[i].v, cases[i].len, pkt);
		int ret = decode_g(pkt, len, L5, &k);

		if (ret != (cases[i].err ? cases[i].err : (int)len))
			fprintf(stderr, "\n  range case %zu: %d %s\n", i, ret, tq_mqtt_err_name(ret));
		CU_ASSERT_EQUAL(ret, cases[i].err ? cases[i].err : (int)len);
	}
	guards_free();
}

/* ---- encoders ---- */

static void
test_round_trip_every_type(void)
{
	static const uint32_t sub_ids[] = {1, 127, 128, 16384, TQ_MQTT_VBI_MAX};
	static const struct tq_mqtt_pair users[] = {{S("a"), S("b")}, {S(""), S("")},
						    {S("k\xc3\xa9"), S("v")}};
	static const struct tq_mqtt_sub subs[] = {
		{S("a/+/c"), 1, true, true, 2},
		{S("#"), 2, false, false, 1},
		{S("$share/g/x"), 0, false, true, 0},
	};
	static const struct tq_mqtt_sub subs_v3[] = {{S("a/+/c"), 1, false, false, 0},
						     {S("#"), 2, false, false, 0}};
	static const struct tq_mqtt_str filters[] = {S("a/b"), S("+/#")};
	static const uint8_t suback_codes[] = {0x00, 0x01, 0x02, 0x80};
	static const uint8_t unsuback_codes[] = {0x00, 0x11};
	static const uint8_t payload[300] = {1, 2, 3};
	static const uint8_t levels[] = {L31, L311, L5};
	uint8_t out[1024];

	for (size_t li = 0; li < 3; li++) {
		uint8_t lv = levels[li];
		bool v5 = lv == L5;
		struct tq_mqtt_pkt k;

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_CONNECT;
		k.connect = (struct tq_mqtt_connect){
			.level = lv, .clean_start = true, .has_will = true, .has_username = true,
			.has_password = true, .keep_alive = 65535, .client_id = S("client-1"),
			.username = S("user"), .password = {(const uint8_t *)"\0\xff", 2},
			.will = {.topic = S("w/t"), .payload = {payload, 200}, .qos = 2,
				 .retain = true},
		};
		k.connect.protocol_name = lv == L31 ? S("MQIsdp") : S("MQTT");
		k.connect.flags = 0xf6;
		if (v5) {
			k.connect.props = (struct tq_mqtt_props){
				.present = PB(SESSION_EXPIRY) | PB(RECEIVE_MAX) | PB(MAX_PACKET_SIZE) |
					   PB(TOPIC_ALIAS_MAX) | PB(REQUEST_RESPONSE_INFO) |
					   PB(REQUEST_PROBLEM_INFO) | PB(USER) | PB(AUTH_METHOD) |
					   PB(AUTH_DATA),
				.session_expiry = 0xffffffff, .receive_max = 1, .max_packet_size = 1,
				.topic_alias_max = 7, .request_response_info = 1,
				.request_problem_info = 0, .user = users, .user_count = 3,
				.auth_method = S("SCRAM-SHA-1"), .auth_data = {payload, 3},
			};
			k.connect.will.props = (struct tq_mqtt_props){
				.present = PB(WILL_DELAY) | PB(PAYLOAD_FORMAT) | PB(MESSAGE_EXPIRY) |
					   PB(CONTENT_TYPE) | PB(RESPONSE_TOPIC) |
					   PB(CORRELATION_DATA) | PB(USER),
				.will_delay = 5, .payload_format = 0, .message_expiry = 9,
				.content_type = S("ct"), .response_topic = S("r"),
				.correlation_data = {payload, 4}, .user = users, .user_count = 1,
			};
		}
		round_trip(lv, &k, out, sizeof(out));
		/* without will and password (3.1.1 needs the user name with it) */
		k.connect.has_will = false;
		k.connect.has_password = false;
		k.connect.flags = 0x82;
		round_trip(lv, &k, out, sizeof(out));

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_CONNACK;
		k.connack.session_present = true;
		if (v5)
			k.connack.props = (struct tq_mqtt_props){
				.present = PB(ASSIGNED_CLIENT_ID) | PB(SERVER_KEEP_ALIVE) |
					   PB(RECEIVE_MAX) | PB(MAX_PACKET_SIZE) |
					   PB(TOPIC_ALIAS_MAX) | PB(REASON_STRING) | PB(MAX_QOS) |
					   PB(RETAIN_AVAILABLE) | PB(WILDCARD_SUB_AVAILABLE) |
					   PB(SUB_ID_AVAILABLE) | PB(SHARED_SUB_AVAILABLE) |
					   PB(SESSION_EXPIRY) | PB(RESPONSE_INFO) |
					   PB(SERVER_REFERENCE) | PB(AUTH_METHOD) | PB(AUTH_DATA) |
					   PB(USER),
				.assigned_client_id = S("auto-0001"), .server_keep_alive = 20,
				.receive_max = 65535, .max_packet_size = 268435460,
				.topic_alias_max = 10, .reason_string = S("ok"), .max_qos = 1,
				.retain_available = 0, .wildcard_sub_available = 1,
				.sub_id_available = 1, .shared_sub_available = 0,
				.session_expiry = 30, .response_info = S("resp/"),
				.server_reference = S("other:1883"), .auth_method = S("m"),
				.auth_data = {payload, 1}, .user = users, .user_count = 2,
			};
		round_trip(lv, &k, out, sizeof(out));
		k.connack.session_present = false;
		k.connack.reason = v5 ? 0x87 : 0x05;
		round_trip(lv, &k, out, sizeof(out));

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_PUBLISH;
		k.publish = (struct tq_mqtt_publish){.dup = true, .qos = 2, .retain = true,
						     .packet_id = 65535, .topic = S("a/b/c"),
						     .payload = payload, .payload_len = 300};
		if (v5)
			k.publish.props = (struct tq_mqtt_props){
				.present = PB(PAYLOAD_FORMAT) | PB(MESSAGE_EXPIRY) | PB(CONTENT_TYPE) |
					   PB(RESPONSE_TOPIC) | PB(CORRELATION_DATA) |
					   PB(SUBSCRIPTION_ID) | PB(TOPIC_ALIAS) | PB(USER),
				.payload_format = 1, .message_expiry = 3600,
				.content_type = S("application/json"), .response_topic = S("re/ply"),
				.correlation_data = {payload, 16}, .sub_ids = sub_ids,
				.sub_id_count = 5, .topic_alias = 65535, .user = users, .user_count = 3,
			};
		round_trip(lv, &k, out, sizeof(out));
		k.publish.qos = 0;
		k.publish.dup = false;
		k.publish.payload_len = 0;
		round_trip(lv, &k, out, sizeof(out));
		if (v5) { /* topic alias instead of a topic */
			k.publish.topic = S("");
			round_trip(lv, &k, out, sizeof(out));
		}

		for (uint8_t t = TQ_MQTT_PUBACK; t <= TQ_MQTT_PUBCOMP; t++) {
			memset(&k, 0, sizeof(k));
			k.type = t;
			k.ack.packet_id = 42;
			CU_ASSERT_EQUAL(round_trip(lv, &k, out, sizeof(out)), 4); /* short form */
			if (!v5)
				continue;
			k.ack.reason = t == TQ_MQTT_PUBREL || t == TQ_MQTT_PUBCOMP ? 0x92 : 0x10;
			CU_ASSERT_EQUAL(round_trip(lv, &k, out, sizeof(out)), 5);
			k.ack.props = (struct tq_mqtt_props){
				.present = PB(REASON_STRING) | PB(USER), .reason_string = S("why"),
				.user = users, .user_count = 1};
			round_trip(lv, &k, out, sizeof(out));
			k.ack.reason = 0;
			round_trip(lv, &k, out, sizeof(out));
		}

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_SUBSCRIBE;
		k.subscribe = (struct tq_mqtt_subscribe){.packet_id = 7, .subs = subs,
							 .count = v5 ? 3 : 2};
		if (v5)
			k.subscribe.props = (struct tq_mqtt_props){
				.present = PB(SUBSCRIPTION_ID) | PB(USER), .sub_ids = sub_ids + 4,
				.sub_id_count = 1, .user = users, .user_count = 1};
		else
			k.subscribe.subs = subs_v3;
		round_trip(lv, &k, out, sizeof(out));

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_SUBACK;
		k.suback = (struct tq_mqtt_suback){.packet_id = 7, .codes = suback_codes, .count = 4};
		if (v5)
			k.suback.props = (struct tq_mqtt_props){.present = PB(REASON_STRING),
								.reason_string = S("r")};
		round_trip(lv, &k, out, sizeof(out));

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_UNSUBSCRIBE;
		k.unsubscribe = (struct tq_mqtt_unsubscribe){.packet_id = 8, .filters = filters,
							     .count = 2};
		if (v5)
			k.unsubscribe.props = (struct tq_mqtt_props){.present = PB(USER),
								     .user = users, .user_count = 2};
		round_trip(lv, &k, out, sizeof(out));

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_UNSUBACK;
		k.suback = (struct tq_mqtt_suback){.packet_id = 8};
		if (v5) {
			k.suback.codes = unsuback_codes;
			k.suback.count = 2;
			k.suback.props = (struct tq_mqtt_props){.present = PB(REASON_STRING),
								.reason_string = S("gone")};
		}
		CU_ASSERT_EQUAL(round_trip(lv, &k, out, sizeof(out)), v5 ? 14 : 4);

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_PINGREQ;
		CU_ASSERT_EQUAL(round_trip(lv, &k, out, sizeof(out)), 2);
		k.type = TQ_MQTT_PINGRESP;
		CU_ASSERT_EQUAL(round_trip(lv, &k, out, sizeof(out)), 2);

		memset(&k, 0, sizeof(k));
		k.type = TQ_MQTT_DISCONNECT;
		CU_ASSERT_EQUAL(round_trip(lv, &k, out, sizeof(out)), 2);
		if (v5) {
			k.disconnect.reason = 0x8e;
			CU_ASSERT_EQUAL(round_trip(lv, &k, out, sizeof(out)), 3);
			k.disconnect.props = (struct tq_mqtt_props){
				.present = PB(SESSION_EXPIRY) | PB(REASON_STRING) |
					   PB(SERVER_REFERENCE) | PB(USER),
				.session_expiry = 0, .reason_string = S("taken over"),
				.server_reference = S("b"), .user = users, .user_count = 1};
			round_trip(lv, &k, out, sizeof(out));

			memset(&k, 0, sizeof(k));
			k.type = TQ_MQTT_AUTH;
			k.disconnect.reason = 0x18;
			k.disconnect.props = (struct tq_mqtt_props){
				.present = PB(AUTH_METHOD) | PB(AUTH_DATA) | PB(REASON_STRING) |
					   PB(USER),
				.auth_method = S("SCRAM"), .auth_data = {payload, 32},
				.reason_string = S("continue"), .user = users, .user_count = 1};
			round_trip(lv, &k, out, sizeof(out));
			k.disconnect.reason = 0;
			k.disconnect.props = (struct tq_mqtt_props){0};
			CU_ASSERT_EQUAL(round_trip(lv, &k, out, sizeof(out)), 2);
		} else {
			k.type = TQ_MQTT_AUTH;
			CU_ASSERT_EQUAL(tq_mqtt_encode_len(lv, &k), -EINVAL);
		}
		guards_free();
	}
}

/* Bytes as a server writes them. */
static void
test_encode_exact_bytes(void)
{
	static const uint8_t users_raw[] = {0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'};
	uint8_t out[128];
	struct tq_mqtt_pkt k;
	struct tq_mqtt_ack ack = {.packet_id = 0x1234};
	ssize_t n;

	/* CONNACK at 3.1.1 and 5.0 */
	memset(&k, 0, sizeof(k));
	k.type = TQ_MQTT_CONNACK;
	CU_ASSERT_EQUAL(tq_mqtt_encode(out, sizeof(out), L311, &k), 4);
	CU_ASSERT(!memcmp(out, connack_v311, 4));
	k.connack.props = (struct tq_mqtt_props){
		.present = PB(ASSIGNED_CLIENT_ID) | PB(SERVER_KEEP_ALIVE) | PB(RECEIVE_MAX) |
			   PB(TOPIC_ALIAS_MAX) | PB(MAX_QOS) | PB(RETAIN_AVAILABLE) |
			   PB(SHARED_SUB_AVAILABLE),
		.assigned_client_id = S("auto1"), .server_keep_alive = 30, .receive_max = 20,
		.topic_alias_max = 10, .max_qos = 1,
	};
	n = tq_mqtt_encode(out, sizeof(out), L5, &k);
	CU_ASSERT_EQUAL_FATAL(n, (ssize_t)sizeof(connack_v5));
	CU_ASSERT(!memcmp(out, connack_v5, sizeof(connack_v5)));
	/* acks: short forms */
	CU_ASSERT_EQUAL(tq_mqtt_encode_ack(out, sizeof(out), L311, TQ_MQTT_PUBACK, &ack), 4);
	CU_ASSERT(!memcmp(out, "\x40\x02\x12\x34", 4));
	CU_ASSERT_EQUAL(tq_mqtt_encode_ack(out, sizeof(out), L5, TQ_MQTT_PUBREL, &ack), 4);
	CU_ASSERT(!memcmp(out, "\x62\x02\x12\x34", 4));
	ack.reason = 0x10;
	CU_ASSERT_EQUAL(tq_mqtt_encode_ack(out, sizeof(out), L5, TQ_MQTT_PUBACK, &ack), 5);
	CU_ASSERT(!memcmp(out, "\x40\x03\x12\x34\x10", 5));
	CU_ASSERT_EQUAL(tq_mqtt_encode_ack(out, sizeof(out), L311, TQ_MQTT_PUBACK, &ack), 4);
	CU_ASSERT_EQUAL(tq_mqtt_encode_ack(out, 4, L5, TQ_MQTT_PUBACK, &ack), -ENOSPC);
	CU_ASSERT_EQUAL(tq_mqtt_encode_ack(out, 9, L5, TQ_MQTT_SUBACK, &ack), -EINVAL);
	ack.packet_id = 0;
	CU_ASSERT_EQUAL(tq_mqtt_encode_ack(out, 9, L5, TQ_MQTT_PUBACK, &ack), -EINVAL);
	/* PINGRESP, DISCONNECT */
	k.type = TQ_MQTT_PINGRESP;
	CU_ASSERT_EQUAL(tq_mqtt_encode(out, 2, L5, &k), 2);
	CU_ASSERT(!memcmp(out, pingresp, 2));
	memset(&k, 0, sizeof(k));
	k.type = TQ_MQTT_DISCONNECT;
	k.disconnect.reason = 0x04;
	CU_ASSERT_EQUAL(tq_mqtt_encode(out, sizeof(out), L5, &k), 3);
	CU_ASSERT(!memcmp(out, mosq5_disconnect_will, 3));
	/* SUBACK */
	memset(&k, 0, sizeof(k));
	k.type = TQ_MQTT_SUBACK;
	k.suback = (struct tq_mqtt_suback){.packet_id = 1, .codes = suback_v311 + 4, .count = 2};
	CU_ASSERT_EQUAL(tq_mqtt_encode(out, sizeof(out), L311, &k), 6);
	CU_ASSERT(!memcmp(out, suback_v311, 6));
	/* user properties forwarded from a received block (raw), not an array */
	memset(&k, 0, sizeof(k));
	k.type = TQ_MQTT_PUBLISH;
	k.publish.topic = S("t");
	k.publish.props = (struct tq_mqtt_props){.present = PB(USER), .user_count = 1,
						 .raw = users_raw, .raw_len = sizeof(users_raw)};
	n = tq_mqtt_encode(out, sizeof(out), L5, &k);
	CU_ASSERT_EQUAL_FATAL(n, 2 + 3 + 1 + 7);
	CU_ASSERT(!memcmp(out + 6, users_raw, sizeof(users_raw)));
	/* what cannot be encoded */
	k.publish.qos = 3;
	CU_ASSERT_EQUAL(tq_mqtt_encode_len(L5, &k), -EINVAL);
	k.publish.qos = 1; /* packet id 0 */
	CU_ASSERT_EQUAL(tq_mqtt_encode_len(L5, &k), -EINVAL);
	k.publish.packet_id = 1;
	k.publish.props.present = PB(SESSION_EXPIRY); /* not a PUBLISH property */
	CU_ASSERT_EQUAL(tq_mqtt_encode_len(L5, &k), -EINVAL);
	CU_ASSERT(tq_mqtt_encode_len(L311, &k) > 0); /* properties are not written there */
	k.publish.props.present = PB(SUBSCRIPTION_ID);
	k.publish.props.sub_ids = (const uint32_t[]){0};
	k.publish.props.sub_id_count = 1;
	CU_ASSERT_EQUAL(tq_mqtt_encode_len(L5, &k), -EINVAL);
	CU_ASSERT_EQUAL(tq_mqtt_encode_len(6, &k), -EINVAL);
	memset(&k, 0, sizeof(k));
	k.type = TQ_MQTT_SUBSCRIBE;
	k.subscribe.packet_id = 1; /* no filters */
	CU_ASSERT_EQUAL(tq_mqtt_encode_len(L5, &k), -EINVAL);
}

/* The PUBLISH header alone, then the payload by reference: the same bytes as a whole
 * PUBLISH, with the remaining length counting the payload. */
static void
test_publish_header_zero_copy(void)
{
	static uint8_t payload[200000];
	static uint8_t whole[200100];
	static const uint32_t ids[] = {3, 70000};
	uint8_t hdr[256];
	struct tq_mqtt_publish pub = {
		.qos = 1, .packet_id = 9, .topic = S("fan/out"), .payload = payload,
		.props = {.present = PB(SUBSCRIPTION_ID) | PB(TOPIC_ALIAS) | PB(MESSAGE_EXPIRY),
			  .sub_ids = ids, .sub_id_count = 2, .topic_alias = 4,
			  .message_expiry = 17},
	};
	static const size_t sizes[] = {0, 1, 100, 117, 118, 16000, 200000};
	static const uint8_t levels[] = {L311, L5};

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	for (size_t li = 0; li < 2; li++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			struct tq_mqtt_pkt k = {.type = TQ_MQTT_PUBLISH};
			ssize_t h, w, want;

			pub.payload_len = sizes[s];
			k.publish = pub;
			want = tq_mqtt_publish_header_len(levels[li], &pub, sizes[s]);
			h = tq_mqtt_encode_publish_header(hdr, sizeof(hdr), levels[li], &pub, sizes[s]);
			CU_ASSERT_EQUAL_FATAL(h, want);
			CU_ASSERT_EQUAL(tq_mqtt_encode_publish_header(hdr, (size_t)h - 1, levels[li], &pub,
								      sizes[s]),
					-ENOSPC);
			w = tq_mqtt_encode(whole, sizeof(whole), levels[li], &k);
			CU_ASSERT_EQUAL_FATAL(w, h + (ssize_t)sizes[s]);
			CU_ASSERT(!memcmp(whole, hdr, (size_t)h));
			CU_ASSERT(!memcmp(whole + h, payload, sizes[s]));
			CU_ASSERT_EQUAL(tq_mqtt_decode(whole, (size_t)w, levels[li], &k), (int)w);
			CU_ASSERT_EQUAL(k.publish.payload_len, sizes[s]);
			CU_ASSERT(k.publish.payload == whole + h);
		}
	}
	CU_ASSERT_EQUAL(tq_mqtt_publish_header_len(L5, &pub, TQ_MQTT_VBI_MAX), -EINVAL);
	CU_ASSERT(tq_mqtt_publish_header_len(L311, &pub, TQ_MQTT_VBI_MAX - 11) > 0);
}

/* Framing and decoding a large packet (4-byte remaining length). */
static void
test_large_packet(void)
{
	size_t plen = 2100000;
	uint8_t *buf = malloc(plen + 64);
	struct tq_mqtt_publish pub = {.topic = S("big"), .payload = NULL, .payload_len = plen};
	struct tq_mqtt_pkt k;
	ssize_t h;

	CU_ASSERT_FATAL(buf != NULL);
	h = tq_mqtt_encode_publish_header(buf, 64, L5, &pub, plen);
	CU_ASSERT_EQUAL_FATAL(h, 1 + 4 + 5 + 1);
	memset(buf + h, 'z', plen);
	CU_ASSERT_EQUAL(tq_mqtt_decode(buf, (size_t)h + plen, L5, &k), (int)(h + (ssize_t)plen));
	CU_ASSERT_EQUAL(k.hdr_len, 5);
	CU_ASSERT_EQUAL(tq_mqtt_decode(buf, (size_t)h + plen - 1, L5, &k), TQ_MQTT_NEED_MORE);
	free(buf);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_captured_decode),
		TQ_TEST(test_captured_reencode),
		TQ_TEST(test_byte_at_a_time),
		TQ_TEST(test_truncated_bodies),
		TQ_TEST(test_frame_lengths),
		TQ_TEST(test_frame_stream),
		TQ_TEST(test_utf8),
		TQ_TEST(test_topics_and_filters),
		TQ_TEST(test_malformed),
		TQ_TEST(test_error_offsets),
		TQ_TEST(test_error_table),
		TQ_TEST(test_payload_format),
		TQ_TEST(test_every_property_everywhere),
		TQ_TEST(test_property_ranges),
		TQ_TEST(test_round_trip_every_type),
		TQ_TEST(test_encode_exact_bytes),
		TQ_TEST(test_publish_header_zero_copy),
		TQ_TEST(test_large_packet),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("mqtt_codec", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
