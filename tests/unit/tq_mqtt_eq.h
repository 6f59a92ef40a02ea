/*
 * Equality of two decoded MQTT views by content (spans compared byte by byte, repeated
 * properties and filter lists through their iterators), for the unit tests and the fuzz
 * driver's encode/decode round trips. Returns NULL when equal, else what differs.
 */
#ifndef TQ_MQTT_EQ_H
#define TQ_MQTT_EQ_H

#include <string.h>

#include "proto/mqtt/tq_mqtt_codec.h"

static inline int
tq_mqtt_str_eq(struct tq_mqtt_str a, struct tq_mqtt_str b)
{
	return a.len == b.len && (a.len == 0 || !memcmp(a.p, b.p, a.len));
}

static inline const char *
tq_mqtt_props_diff(const struct tq_mqtt_props *a, const struct tq_mqtt_props *b)
{
	struct tq_mqtt_prop_iter ia, ib;
	struct tq_mqtt_pair pa, pb;
	uint32_t va, vb;
	bool more;

	if (a->present != b->present)
		return "property set";
#define INT_EQ(f, id)                                                                          \
	if ((a->present & TQ_MQTT_PBIT(id)) && a->f != b->f)                                   \
		return #f;
#define STR_EQ(f, id)                                                                          \
	if ((a->present & TQ_MQTT_PBIT(id)) && !tq_mqtt_str_eq(a->f, b->f))                    \
		return #f;
	INT_EQ(payload_format, TQ_MQTT_PROP_PAYLOAD_FORMAT)
	INT_EQ(message_expiry, TQ_MQTT_PROP_MESSAGE_EXPIRY)
	STR_EQ(content_type, TQ_MQTT_PROP_CONTENT_TYPE)
	STR_EQ(response_topic, TQ_MQTT_PROP_RESPONSE_TOPIC)
	STR_EQ(correlation_data, TQ_MQTT_PROP_CORRELATION_DATA)
	INT_EQ(session_expiry, TQ_MQTT_PROP_SESSION_EXPIRY)
	STR_EQ(assigned_client_id, TQ_MQTT_PROP_ASSIGNED_CLIENT_ID)
	INT_EQ(server_keep_alive, TQ_MQTT_PROP_SERVER_KEEP_ALIVE)
	STR_EQ(auth_method, TQ_MQTT_PROP_AUTH_METHOD)
	STR_EQ(auth_data, TQ_MQTT_PROP_AUTH_DATA)
	INT_EQ(request_problem_info, TQ_MQTT_PROP_REQUEST_PROBLEM_INFO)
	INT_EQ(will_delay, TQ_MQTT_PROP_WILL_DELAY)
	INT_EQ(request_response_info, TQ_MQTT_PROP_REQUEST_RESPONSE_INFO)
	STR_EQ(response_info, TQ_MQTT_PROP_RESPONSE_INFO)
	STR_EQ(server_reference, TQ_MQTT_PROP_SERVER_REFERENCE)
	STR_EQ(reason_string, TQ_MQTT_PROP_REASON_STRING)
	INT_EQ(receive_max, TQ_MQTT_PROP_RECEIVE_MAX)
	INT_EQ(topic_alias_max, TQ_MQTT_PROP_TOPIC_ALIAS_MAX)
	INT_EQ(topic_alias, TQ_MQTT_PROP_TOPIC_ALIAS)
	INT_EQ(max_qos, TQ_MQTT_PROP_MAX_QOS)
	INT_EQ(retain_available, TQ_MQTT_PROP_RETAIN_AVAILABLE)
	INT_EQ(max_packet_size, TQ_MQTT_PROP_MAX_PACKET_SIZE)
	INT_EQ(wildcard_sub_available, TQ_MQTT_PROP_WILDCARD_SUB_AVAILABLE)
	INT_EQ(sub_id_available, TQ_MQTT_PROP_SUB_ID_AVAILABLE)
	INT_EQ(shared_sub_available, TQ_MQTT_PROP_SHARED_SUB_AVAILABLE)
#undef INT_EQ
#undef STR_EQ
	tq_mqtt_prop_iter_init(&ia, a);
	tq_mqtt_prop_iter_init(&ib, b);
	do {
		more = tq_mqtt_next_user_prop(&ia, &pa);
		if (more != tq_mqtt_next_user_prop(&ib, &pb))
			return "user property count";
		if (more && (!tq_mqtt_str_eq(pa.name, pb.name) || !tq_mqtt_str_eq(pa.value, pb.value)))
			return "user property";
	} while (more);
	tq_mqtt_prop_iter_init(&ia, a);
	tq_mqtt_prop_iter_init(&ib, b);
	do {
		more = tq_mqtt_next_sub_id(&ia, &va);
		if (more != tq_mqtt_next_sub_id(&ib, &vb))
			return "subscription identifier count";
		if (more && va != vb)
			return "subscription identifier";
	} while (more);
	return NULL;
}

static inline const char *
tq_mqtt_pkt_diff(uint8_t level, const struct tq_mqtt_pkt *a, const struct tq_mqtt_pkt *b)
{
	struct tq_mqtt_sub_iter ia, ib;
	const char *d;
	bool more;

	if (a->type != b->type)
		return "type";
	switch (a->type) {
	case TQ_MQTT_CONNECT: {
		const struct tq_mqtt_connect *x = &a->connect, *y = &b->connect;

		if (x->level != y->level || x->clean_start != y->clean_start ||
		    x->has_will != y->has_will || x->has_username != y->has_username ||
		    x->has_password != y->has_password || x->keep_alive != y->keep_alive ||
		    x->flags != y->flags)
			return "connect header";
		if (!tq_mqtt_str_eq(x->protocol_name, y->protocol_name) ||
		    !tq_mqtt_str_eq(x->client_id, y->client_id))
			return "connect name or client id";
		if ((d = tq_mqtt_props_diff(&x->props, &y->props)))
			return d;
		if (x->has_will &&
		    (x->will.qos != y->will.qos || x->will.retain != y->will.retain ||
		     !tq_mqtt_str_eq(x->will.topic, y->will.topic) ||
		     !tq_mqtt_str_eq(x->will.payload, y->will.payload)))
			return "will";
		if (x->has_will && (d = tq_mqtt_props_diff(&x->will.props, &y->will.props)))
			return d;
		if (x->has_username && !tq_mqtt_str_eq(x->username, y->username))
			return "username";
		if (x->has_password && !tq_mqtt_str_eq(x->password, y->password))
			return "password";
		return NULL;
	}
	case TQ_MQTT_CONNACK:
		if (a->connack.session_present != b->connack.session_present ||
		    a->connack.reason != b->connack.reason)
			return "connack";
		return tq_mqtt_props_diff(&a->connack.props, &b->connack.props);
	case TQ_MQTT_PUBLISH: {
		const struct tq_mqtt_publish *x = &a->publish, *y = &b->publish;

		if (x->dup != y->dup || x->qos != y->qos || x->retain != y->retain)
			return "publish flags";
		if (x->qos && x->packet_id != y->packet_id)
			return "packet id";
		if (!tq_mqtt_str_eq(x->topic, y->topic))
			return "topic";
		if (x->payload_len != y->payload_len ||
		    (x->payload_len && memcmp(x->payload, y->payload, x->payload_len)))
			return "payload";
		return tq_mqtt_props_diff(&x->props, &y->props);
	}
	case TQ_MQTT_PUBACK:
	case TQ_MQTT_PUBREC:
	case TQ_MQTT_PUBREL:
	case TQ_MQTT_PUBCOMP:
		if (a->ack.packet_id != b->ack.packet_id || a->ack.reason != b->ack.reason)
			return "ack";
		return tq_mqtt_props_diff(&a->ack.props, &b->ack.props);
	case TQ_MQTT_SUBSCRIBE: {
		struct tq_mqtt_sub sa, sb;

		if (a->subscribe.packet_id != b->subscribe.packet_id ||
		    a->subscribe.count != b->subscribe.count)
			return "subscribe header";
		tq_mqtt_sub_iter_init(&ia, level, &a->subscribe);
		tq_mqtt_sub_iter_init(&ib, level, &b->subscribe);
		do {
			more = tq_mqtt_next_sub(&ia, &sa);
			if (more != tq_mqtt_next_sub(&ib, &sb))
				return "subscription count";
			if (more && (!tq_mqtt_str_eq(sa.filter, sb.filter) || sa.qos != sb.qos ||
				     sa.no_local != sb.no_local ||
				     sa.retain_as_published != sb.retain_as_published ||
				     sa.retain_handling != sb.retain_handling))
				return "subscription";
		} while (more);
		return tq_mqtt_props_diff(&a->subscribe.props, &b->subscribe.props);
	}
	case TQ_MQTT_UNSUBSCRIBE: {
		struct tq_mqtt_str fa, fb;

		if (a->unsubscribe.packet_id != b->unsubscribe.packet_id ||
		    a->unsubscribe.count != b->unsubscribe.count)
			return "unsubscribe header";
		tq_mqtt_unsub_iter_init(&ia, &a->unsubscribe);
		tq_mqtt_unsub_iter_init(&ib, &b->unsubscribe);
		do {
			more = tq_mqtt_next_unsub(&ia, &fa);
			if (more != tq_mqtt_next_unsub(&ib, &fb))
				return "filter count";
			if (more && !tq_mqtt_str_eq(fa, fb))
				return "filter";
		} while (more);
		return tq_mqtt_props_diff(&a->unsubscribe.props, &b->unsubscribe.props);
	}
	case TQ_MQTT_SUBACK:
	case TQ_MQTT_UNSUBACK:
		if (a->suback.packet_id != b->suback.packet_id || a->suback.count != b->suback.count ||
		    (a->suback.count && memcmp(a->suback.codes, b->suback.codes, a->suback.count)))
			return "suback";
		return tq_mqtt_props_diff(&a->suback.props, &b->suback.props);
	case TQ_MQTT_DISCONNECT:
	case TQ_MQTT_AUTH:
		if (a->disconnect.reason != b->disconnect.reason)
			return "reason";
		return tq_mqtt_props_diff(&a->disconnect.props, &b->disconnect.props);
	default:
		return NULL;
	}
}

#endif
