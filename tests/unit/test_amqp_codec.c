/*
 * tq_amqp_codec and tq_amqp_table: frames as pika 1.2 and librabbitmq (amqp-tools) send
 * them (captured by amqp_capture.py against a stand-in broker on 127.0.0.1), the broker's
 * side as pika.spec encodes it, round trips of every method, content headers with all 14
 * properties, tables with every tag, and the malformed cases: frame-end, frame-max,
 * truncation at every length against a guard page, byte-at-a-time feeds, unknown classes
 * and methods, table sizes and tags, nesting depth, shortstr overruns, bit packing.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/amqp/tq_amqp_codec.h"
#include "tq_test.h"

/* captured by tests/unit/amqp_capture.py: pika 1.2.0, librabbitmq (amqp-tools) */
static const uint8_t pika_protocol_header[8] = {
	0x41, 0x4d, 0x51, 0x50, 0x00, 0x00, 0x09, 0x01,
};
static const uint8_t pika_connection_startok[298] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x22, 0x00, 0x0a, 0x00, 0x0b, 0x00,
	0x00, 0x00, 0xfe, 0x07, 0x70, 0x72, 0x6f, 0x64, 0x75, 0x63, 0x74, 0x53,
	0x00, 0x00, 0x00, 0x1a, 0x50, 0x69, 0x6b, 0x61, 0x20, 0x50, 0x79, 0x74,
	0x68, 0x6f, 0x6e, 0x20, 0x43, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x20, 0x4c,
	0x69, 0x62, 0x72, 0x61, 0x72, 0x79, 0x08, 0x70, 0x6c, 0x61, 0x74, 0x66,
	0x6f, 0x72, 0x6d, 0x53, 0x00, 0x00, 0x00, 0x0d, 0x50, 0x79, 0x74, 0x68,
	0x6f, 0x6e, 0x20, 0x33, 0x2e, 0x31, 0x31, 0x2e, 0x32, 0x0c, 0x63, 0x61,
	0x70, 0x61, 0x62, 0x69, 0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x46, 0x00,
	0x00, 0x00, 0x6f, 0x1c, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74, 0x69,
	0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x66, 0x61, 0x69, 0x6c, 0x75,
	0x72, 0x65, 0x5f, 0x63, 0x6c, 0x6f, 0x73, 0x65, 0x74, 0x01, 0x0a, 0x62,
	0x61, 0x73, 0x69, 0x63, 0x2e, 0x6e, 0x61, 0x63, 0x6b, 0x74, 0x01, 0x12,
	0x63, 0x6f, 0x6e, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x2e, 0x62,
	0x6c, 0x6f, 0x63, 0x6b, 0x65, 0x64, 0x74, 0x01, 0x16, 0x63, 0x6f, 0x6e,
	0x73, 0x75, 0x6d, 0x65, 0x72, 0x5f, 0x63, 0x61, 0x6e, 0x63, 0x65, 0x6c,
	0x5f, 0x6e, 0x6f, 0x74, 0x69, 0x66, 0x79, 0x74, 0x01, 0x12, 0x70, 0x75,
	0x62, 0x6c, 0x69, 0x73, 0x68, 0x65, 0x72, 0x5f, 0x63, 0x6f, 0x6e, 0x66,
	0x69, 0x72, 0x6d, 0x73, 0x74, 0x01, 0x0b, 0x69, 0x6e, 0x66, 0x6f, 0x72,
	0x6d, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x53, 0x00, 0x00, 0x00, 0x18, 0x53,
	0x65, 0x65, 0x20, 0x68, 0x74, 0x74, 0x70, 0x3a, 0x2f, 0x2f, 0x70, 0x69,
	0x6b, 0x61, 0x2e, 0x72, 0x74, 0x66, 0x64, 0x2e, 0x6f, 0x72, 0x67, 0x07,
	0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x53, 0x00, 0x00, 0x00, 0x05,
	0x31, 0x2e, 0x32, 0x2e, 0x30, 0x05, 0x50, 0x4c, 0x41, 0x49, 0x4e, 0x00,
	0x00, 0x00, 0x0c, 0x00, 0x67, 0x75, 0x65, 0x73, 0x74, 0x00, 0x67, 0x75,
	0x65, 0x73, 0x74, 0x05, 0x65, 0x6e, 0x5f, 0x55, 0x53, 0xce,
};
static const uint8_t pika_connection_tuneok[20] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x1f, 0x07,
	0xff, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0xce,
};
static const uint8_t pika_connection_open[16] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0a, 0x00, 0x28, 0x01,
	0x2f, 0x00, 0x01, 0xce,
};
static const uint8_t pika_channel_open[13] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14, 0x00, 0x0a, 0x00,
	0xce,
};
static const uint8_t pika_confirm_select[13] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x55, 0x00, 0x0a, 0x00,
	0xce,
};
static const uint8_t pika_exchange_declare[64] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x38, 0x00, 0x28, 0x00, 0x0a, 0x00,
	0x00, 0x09, 0x74, 0x71, 0x2e, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x73, 0x05,
	0x74, 0x6f, 0x70, 0x69, 0x63, 0x02, 0x00, 0x00, 0x00, 0x1d, 0x12, 0x61,
	0x6c, 0x74, 0x65, 0x72, 0x6e, 0x61, 0x74, 0x65, 0x2d, 0x65, 0x78, 0x63,
	0x68, 0x61, 0x6e, 0x67, 0x65, 0x53, 0x00, 0x00, 0x00, 0x05, 0x74, 0x71,
	0x2e, 0x61, 0x65, 0xce,
};
static const uint8_t pika_queue_declare[87] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x4f, 0x00, 0x32, 0x00, 0x0a, 0x00,
	0x00, 0x05, 0x74, 0x71, 0x2e, 0x71, 0x31, 0x0a, 0x00, 0x00, 0x00, 0x3e,
	0x0c, 0x78, 0x2d, 0x6d, 0x61, 0x78, 0x2d, 0x6c, 0x65, 0x6e, 0x67, 0x74,
	0x68, 0x49, 0x00, 0x00, 0x03, 0xe8, 0x0d, 0x78, 0x2d, 0x6d, 0x65, 0x73,
	0x73, 0x61, 0x67, 0x65, 0x2d, 0x74, 0x74, 0x6c, 0x49, 0x00, 0x00, 0xea,
	0x60, 0x0c, 0x78, 0x2d, 0x71, 0x75, 0x65, 0x75, 0x65, 0x2d, 0x74, 0x79,
	0x70, 0x65, 0x53, 0x00, 0x00, 0x00, 0x07, 0x63, 0x6c, 0x61, 0x73, 0x73,
	0x69, 0x63, 0xce,
};
static const uint8_t pika_queue_bind[45] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x25, 0x00, 0x32, 0x00, 0x14, 0x00,
	0x00, 0x05, 0x74, 0x71, 0x2e, 0x71, 0x31, 0x09, 0x74, 0x71, 0x2e, 0x65,
	0x76, 0x65, 0x6e, 0x74, 0x73, 0x09, 0x73, 0x65, 0x6e, 0x73, 0x6f, 0x72,
	0x73, 0x2e, 0x23, 0x00, 0x00, 0x00, 0x00, 0x00, 0xce,
};
static const uint8_t pika_exchange_bind[40] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00, 0x28, 0x00, 0x1e, 0x00,
	0x00, 0x06, 0x74, 0x71, 0x2e, 0x64, 0x73, 0x74, 0x09, 0x74, 0x71, 0x2e,
	0x65, 0x76, 0x65, 0x6e, 0x74, 0x73, 0x03, 0x61, 0x2e, 0x62, 0x00, 0x00,
	0x00, 0x00, 0x00, 0xce,
};
static const uint8_t pika_basic_qos[19] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x3c, 0x00, 0x0a, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0xce,
};
static const uint8_t pika_basic_publish[36] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x3c, 0x00, 0x28, 0x00,
	0x00, 0x09, 0x74, 0x71, 0x2e, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x73, 0x0a,
	0x73, 0x65, 0x6e, 0x73, 0x6f, 0x72, 0x73, 0x2e, 0x74, 0x31, 0x01, 0xce,
};
static const uint8_t pika_header[271] = {
	0x02, 0x00, 0x01, 0x00, 0x00, 0x01, 0x07, 0x00, 0x3c, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, 0xff, 0xfc, 0x10, 0x61, 0x70,
	0x70, 0x6c, 0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73,
	0x6f, 0x6e, 0x05, 0x75, 0x74, 0x66, 0x2d, 0x38, 0x00, 0x00, 0x00, 0x8d,
	0x07, 0x78, 0x2d, 0x74, 0x72, 0x61, 0x63, 0x65, 0x53, 0x00, 0x00, 0x00,
	0x03, 0x61, 0x62, 0x63, 0x01, 0x6e, 0x49, 0x00, 0x00, 0x00, 0x2a, 0x03,
	0x6e, 0x65, 0x67, 0x49, 0xff, 0xff, 0xff, 0xf9, 0x04, 0x66, 0x6c, 0x61,
	0x67, 0x74, 0x01, 0x03, 0x64, 0x65, 0x63, 0x44, 0x01, 0x00, 0x00, 0x00,
	0x0f, 0x04, 0x77, 0x68, 0x65, 0x6e, 0x54, 0x00, 0x00, 0x00, 0x00, 0x65,
	0x53, 0xf1, 0x00, 0x03, 0x62, 0x69, 0x67, 0x6c, 0x00, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x06, 0x6e, 0x65, 0x73, 0x74, 0x65, 0x64, 0x46,
	0x00, 0x00, 0x00, 0x2f, 0x01, 0x6b, 0x53, 0x00, 0x00, 0x00, 0x01, 0x76,
	0x04, 0x6c, 0x69, 0x73, 0x74, 0x41, 0x00, 0x00, 0x00, 0x1d, 0x49, 0x00,
	0x00, 0x00, 0x01, 0x53, 0x00, 0x00, 0x00, 0x03, 0x74, 0x77, 0x6f, 0x46,
	0x00, 0x00, 0x00, 0x0b, 0x05, 0x74, 0x68, 0x72, 0x65, 0x65, 0x49, 0x00,
	0x00, 0x00, 0x03, 0x04, 0x6e, 0x6f, 0x6e, 0x65, 0x56, 0x02, 0x05, 0x06,
	0x63, 0x6f, 0x72, 0x72, 0x2d, 0x31, 0x15, 0x61, 0x6d, 0x71, 0x2e, 0x72,
	0x61, 0x62, 0x62, 0x69, 0x74, 0x6d, 0x71, 0x2e, 0x72, 0x65, 0x70, 0x6c,
	0x79, 0x2d, 0x74, 0x6f, 0x05, 0x36, 0x30, 0x30, 0x30, 0x30, 0x05, 0x6d,
	0x73, 0x67, 0x2d, 0x31, 0x00, 0x00, 0x00, 0x00, 0x65, 0x53, 0xf1, 0x00,
	0x07, 0x72, 0x65, 0x61, 0x64, 0x69, 0x6e, 0x67, 0x05, 0x67, 0x75, 0x65,
	0x73, 0x74, 0x0c, 0x74, 0x61, 0x63, 0x68, 0x79, 0x6f, 0x6e, 0x2d, 0x74,
	0x65, 0x73, 0x74, 0x02, 0x63, 0x31, 0xce,
};
static const uint8_t pika_body[19] = {
	0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0b, 0x7b, 0x22, 0x74, 0x22, 0x3a,
	0x20, 0x32, 0x31, 0x2e, 0x35, 0x7d, 0xce,
};
static const uint8_t pika_basic_consume[51] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x3c, 0x00, 0x14, 0x00,
	0x00, 0x05, 0x74, 0x71, 0x2e, 0x71, 0x31, 0x09, 0x63, 0x74, 0x61, 0x67,
	0x2d, 0x70, 0x69, 0x6b, 0x61, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0a, 0x78,
	0x2d, 0x70, 0x72, 0x69, 0x6f, 0x72, 0x69, 0x74, 0x79, 0x49, 0x00, 0x00,
	0x00, 0x05, 0xce,
};
static const uint8_t pika_basic_ack[21] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x3c, 0x00, 0x50, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x01, 0xce,
};
static const uint8_t pika_basic_nack[21] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x3c, 0x00, 0x78, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x02, 0xce,
};
static const uint8_t pika_basic_reject[21] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x3c, 0x00, 0x5a, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0xce,
};
static const uint8_t pika_basic_cancel[23] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x3c, 0x00, 0x1e, 0x09,
	0x63, 0x74, 0x61, 0x67, 0x2d, 0x70, 0x69, 0x6b, 0x61, 0x00, 0xce,
};
static const uint8_t pika_channel_close[34] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x14, 0x00, 0x28, 0x00,
	0x00, 0x0f, 0x4e, 0x6f, 0x72, 0x6d, 0x61, 0x6c, 0x20, 0x73, 0x68, 0x75,
	0x74, 0x64, 0x6f, 0x77, 0x6e, 0x00, 0x00, 0x00, 0x00, 0xce,
};
static const uint8_t pika_connection_close[34] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x0a, 0x00, 0x32, 0x00,
	0xc8, 0x0f, 0x4e, 0x6f, 0x72, 0x6d, 0x61, 0x6c, 0x20, 0x73, 0x68, 0x75,
	0x74, 0x64, 0x6f, 0x77, 0x6e, 0x00, 0x00, 0x00, 0x00, 0xce,
};
static const uint8_t librabbitmq_protocol_header[8] = {
	0x41, 0x4d, 0x51, 0x50, 0x00, 0x00, 0x09, 0x01,
};
static const uint8_t librabbitmq_connection_startok[328] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x40, 0x00, 0x0a, 0x00, 0x0b, 0x00,
	0x00, 0x01, 0x1c, 0x07, 0x70, 0x72, 0x6f, 0x64, 0x75, 0x63, 0x74, 0x53,
	0x00, 0x00, 0x00, 0x0a, 0x72, 0x61, 0x62, 0x62, 0x69, 0x74, 0x6d, 0x71,
	0x2d, 0x63, 0x07, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x53, 0x00,
	0x00, 0x00, 0x06, 0x30, 0x2e, 0x31, 0x31, 0x2e, 0x30, 0x08, 0x70, 0x6c,
	0x61, 0x74, 0x66, 0x6f, 0x72, 0x6d, 0x53, 0x00, 0x00, 0x00, 0x05, 0x4c,
	0x69, 0x6e, 0x75, 0x78, 0x09, 0x63, 0x6f, 0x70, 0x79, 0x72, 0x69, 0x67,
	0x68, 0x74, 0x53, 0x00, 0x00, 0x00, 0x49, 0x43, 0x6f, 0x70, 0x79, 0x72,
	0x69, 0x67, 0x68, 0x74, 0x20, 0x28, 0x63, 0x29, 0x20, 0x32, 0x30, 0x30,
	0x37, 0x2d, 0x32, 0x30, 0x31, 0x34, 0x20, 0x56, 0x4d, 0x57, 0x61, 0x72,
	0x65, 0x20, 0x49, 0x6e, 0x63, 0x2c, 0x20, 0x54, 0x6f, 0x6e, 0x79, 0x20,
	0x47, 0x61, 0x72, 0x6e, 0x6f, 0x63, 0x6b, 0x2d, 0x4a, 0x6f, 0x6e, 0x65,
	0x73, 0x2c, 0x20, 0x61, 0x6e, 0x64, 0x20, 0x41, 0x6c, 0x61, 0x6e, 0x20,
	0x41, 0x6e, 0x74, 0x6f, 0x6e, 0x75, 0x6b, 0x2e, 0x0b, 0x69, 0x6e, 0x66,
	0x6f, 0x72, 0x6d, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x53, 0x00, 0x00, 0x00,
	0x28, 0x53, 0x65, 0x65, 0x20, 0x68, 0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f,
	0x2f, 0x67, 0x69, 0x74, 0x68, 0x75, 0x62, 0x2e, 0x63, 0x6f, 0x6d, 0x2f,
	0x61, 0x6c, 0x61, 0x6e, 0x78, 0x7a, 0x2f, 0x72, 0x61, 0x62, 0x62, 0x69,
	0x74, 0x6d, 0x71, 0x2d, 0x63, 0x0c, 0x63, 0x61, 0x70, 0x61, 0x62, 0x69,
	0x6c, 0x69, 0x74, 0x69, 0x65, 0x73, 0x46, 0x00, 0x00, 0x00, 0x3c, 0x1c,
	0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74, 0x69, 0x63, 0x61, 0x74, 0x69,
	0x6f, 0x6e, 0x5f, 0x66, 0x61, 0x69, 0x6c, 0x75, 0x72, 0x65, 0x5f, 0x63,
	0x6c, 0x6f, 0x73, 0x65, 0x74, 0x01, 0x1a, 0x65, 0x78, 0x63, 0x68, 0x61,
	0x6e, 0x67, 0x65, 0x5f, 0x65, 0x78, 0x63, 0x68, 0x61, 0x6e, 0x67, 0x65,
	0x5f, 0x62, 0x69, 0x6e, 0x64, 0x69, 0x6e, 0x67, 0x73, 0x74, 0x01, 0x05,
	0x50, 0x4c, 0x41, 0x49, 0x4e, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x67, 0x75,
	0x65, 0x73, 0x74, 0x00, 0x67, 0x75, 0x65, 0x73, 0x74, 0x05, 0x65, 0x6e,
	0x5f, 0x55, 0x53, 0xce,
};
static const uint8_t librabbitmq_connection_tuneok[20] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x1f, 0x07,
	0xff, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0xce,
};
static const uint8_t librabbitmq_connection_open[16] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0a, 0x00, 0x28, 0x01,
	0x2f, 0x00, 0x01, 0xce,
};
static const uint8_t librabbitmq_channel_open[13] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x14, 0x00, 0x0a, 0x00,
	0xce,
};
static const uint8_t librabbitmq_basic_publish[29] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x15, 0x00, 0x3c, 0x00, 0x28, 0x00,
	0x00, 0x09, 0x61, 0x6d, 0x71, 0x2e, 0x74, 0x6f, 0x70, 0x69, 0x63, 0x03,
	0x61, 0x2e, 0x62, 0x00, 0xce,
};
static const uint8_t librabbitmq_header[52] = {
	0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x3c, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xf0, 0x00, 0x0a, 0x74, 0x65,
	0x78, 0x74, 0x2f, 0x70, 0x6c, 0x61, 0x69, 0x6e, 0x05, 0x75, 0x74, 0x66,
	0x2d, 0x38, 0x00, 0x00, 0x00, 0x08, 0x01, 0x6b, 0x53, 0x00, 0x00, 0x00,
	0x01, 0x76, 0x02, 0xce,
};
static const uint8_t librabbitmq_body[13] = {
	0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
	0xce,
};
static const uint8_t librabbitmq_channel_close[22] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x14, 0x00, 0x28, 0x00,
	0xc8, 0x03, 0x32, 0x30, 0x30, 0x00, 0x00, 0x00, 0x00, 0xce,
};
static const uint8_t librabbitmq_connection_close[22] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x0a, 0x00, 0x32, 0x00,
	0xc8, 0x03, 0x32, 0x30, 0x30, 0x00, 0x00, 0x00, 0x00, 0xce,
};
static const uint8_t pikaspec_basic_ack[21] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x3c, 0x00, 0x50, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0xce,
};
static const uint8_t pikaspec_basic_cancelok[22] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x3c, 0x00, 0x1f, 0x09,
	0x63, 0x74, 0x61, 0x67, 0x2d, 0x70, 0x69, 0x6b, 0x61, 0xce,
};
static const uint8_t pikaspec_basic_consumeok[22] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x3c, 0x00, 0x15, 0x09,
	0x63, 0x74, 0x61, 0x67, 0x2d, 0x70, 0x69, 0x6b, 0x61, 0xce,
};
static const uint8_t pikaspec_basic_qosok[12] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x3c, 0x00, 0x0b, 0xce,
};
static const uint8_t pikaspec_channel_closeok[12] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x14, 0x00, 0x29, 0xce,
};
static const uint8_t pikaspec_channel_openok[16] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x14, 0x00, 0x0b, 0x00,
	0x00, 0x00, 0x00, 0xce,
};
static const uint8_t pikaspec_confirm_selectok[12] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x55, 0x00, 0x0b, 0xce,
};
static const uint8_t pikaspec_connection_closeok[12] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x0a, 0x00, 0x33, 0xce,
};
static const uint8_t pikaspec_connection_openok[13] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x0a, 0x00, 0x29, 0x00,
	0xce,
};
static const uint8_t pikaspec_connection_start[333] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x45, 0x00, 0x0a, 0x00, 0x0a, 0x00,
	0x09, 0x00, 0x00, 0x01, 0x20, 0x07, 0x70, 0x72, 0x6f, 0x64, 0x75, 0x63,
	0x74, 0x53, 0x00, 0x00, 0x00, 0x08, 0x52, 0x61, 0x62, 0x62, 0x69, 0x74,
	0x4d, 0x51, 0x07, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x53, 0x00,
	0x00, 0x00, 0x06, 0x33, 0x2e, 0x31, 0x31, 0x2e, 0x39, 0x08, 0x70, 0x6c,
	0x61, 0x74, 0x66, 0x6f, 0x72, 0x6d, 0x53, 0x00, 0x00, 0x00, 0x11, 0x45,
	0x72, 0x6c, 0x61, 0x6e, 0x67, 0x2f, 0x4f, 0x54, 0x50, 0x20, 0x32, 0x35,
	0x2e, 0x32, 0x2e, 0x33, 0x0c, 0x63, 0x61, 0x70, 0x61, 0x62, 0x69, 0x6c,
	0x69, 0x74, 0x69, 0x65, 0x73, 0x46, 0x00, 0x00, 0x00, 0xc7, 0x12, 0x70,
	0x75, 0x62, 0x6c, 0x69, 0x73, 0x68, 0x65, 0x72, 0x5f, 0x63, 0x6f, 0x6e,
	0x66, 0x69, 0x72, 0x6d, 0x73, 0x74, 0x01, 0x1a, 0x65, 0x78, 0x63, 0x68,
	0x61, 0x6e, 0x67, 0x65, 0x5f, 0x65, 0x78, 0x63, 0x68, 0x61, 0x6e, 0x67,
	0x65, 0x5f, 0x62, 0x69, 0x6e, 0x64, 0x69, 0x6e, 0x67, 0x73, 0x74, 0x01,
	0x0a, 0x62, 0x61, 0x73, 0x69, 0x63, 0x2e, 0x6e, 0x61, 0x63, 0x6b, 0x74,
	0x01, 0x16, 0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72, 0x5f, 0x63,
	0x61, 0x6e, 0x63, 0x65, 0x6c, 0x5f, 0x6e, 0x6f, 0x74, 0x69, 0x66, 0x79,
	0x74, 0x01, 0x12, 0x63, 0x6f, 0x6e, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x6f,
	0x6e, 0x2e, 0x62, 0x6c, 0x6f, 0x63, 0x6b, 0x65, 0x64, 0x74, 0x01, 0x13,
	0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72, 0x5f, 0x70, 0x72, 0x69,
	0x6f, 0x72, 0x69, 0x74, 0x69, 0x65, 0x73, 0x74, 0x01, 0x1c, 0x61, 0x75,
	0x74, 0x68, 0x65, 0x6e, 0x74, 0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e,
	0x5f, 0x66, 0x61, 0x69, 0x6c, 0x75, 0x72, 0x65, 0x5f, 0x63, 0x6c, 0x6f,
	0x73, 0x65, 0x74, 0x01, 0x10, 0x70, 0x65, 0x72, 0x5f, 0x63, 0x6f, 0x6e,
	0x73, 0x75, 0x6d, 0x65, 0x72, 0x5f, 0x71, 0x6f, 0x73, 0x74, 0x01, 0x0f,
	0x64, 0x69, 0x72, 0x65, 0x63, 0x74, 0x5f, 0x72, 0x65, 0x70, 0x6c, 0x79,
	0x5f, 0x74, 0x6f, 0x74, 0x01, 0x00, 0x00, 0x00, 0x0e, 0x50, 0x4c, 0x41,
	0x49, 0x4e, 0x20, 0x41, 0x4d, 0x51, 0x50, 0x4c, 0x41, 0x49, 0x4e, 0x00,
	0x00, 0x00, 0x05, 0x65, 0x6e, 0x5f, 0x55, 0x53, 0xce,
};
static const uint8_t pikaspec_connection_tune[20] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x1e, 0x07,
	0xff, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3c, 0xce,
};
static const uint8_t pikaspec_exchange_bindok[12] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x28, 0x00, 0x1f, 0xce,
};
static const uint8_t pikaspec_exchange_declareok[12] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x28, 0x00, 0x0b, 0xce,
};
static const uint8_t pikaspec_queue_bindok[12] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x32, 0x00, 0x15, 0xce,
};
static const uint8_t pikaspec_queue_declareok[26] = {
	0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x12, 0x00, 0x32, 0x00, 0x0b, 0x05,
	0x74, 0x71, 0x2e, 0x71, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0xce,
};

/* Hand-written from the spec (4.2.3, 4.2.6): what our broker sends, byte for byte. */
static const uint8_t spec_basic_deliver[] = {
	0x01, 0x00, 0x05,       /* method frame, channel 5 */
	0x00, 0x00, 0x00, 0x20, /* payload 32 */
	0x00, 0x3c, 0x00, 0x3c, /* basic.deliver (60, 60) */
	0x04, 'c', 't', 'a', 'g', /* consumer-tag */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, /* delivery-tag 258 */
	0x01,                   /* redelivered: a bit alone in its octet */
	0x05, 't', 'q', '.', 'e', 'x', /* exchange */
	0x07, 's', 'e', 'n', 's', 'o', 'r', 's', /* routing-key */
	0xce,
};

static const uint8_t spec_heartbeat[] = {0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xce};

/* helpers */

struct captured {
	const char *name;
	const uint8_t *b;
	size_t len;
};

#define CAPTURED(v) {#v, v, sizeof(v)}

/* every frame a client sent, in order, then the broker's */
static const struct captured client_frames[] = {
	CAPTURED(pika_connection_startok), CAPTURED(pika_connection_tuneok),
	CAPTURED(pika_connection_open), CAPTURED(pika_channel_open),
	CAPTURED(pika_confirm_select), CAPTURED(pika_exchange_declare),
	CAPTURED(pika_queue_declare), CAPTURED(pika_queue_bind), CAPTURED(pika_exchange_bind),
	CAPTURED(pika_basic_qos), CAPTURED(pika_basic_publish), CAPTURED(pika_header),
	CAPTURED(pika_body), CAPTURED(pika_basic_consume), CAPTURED(pika_basic_ack),
	CAPTURED(pika_basic_nack), CAPTURED(pika_basic_reject), CAPTURED(pika_basic_cancel),
	CAPTURED(pika_channel_close), CAPTURED(pika_connection_close),
	CAPTURED(librabbitmq_connection_startok), CAPTURED(librabbitmq_connection_tuneok),
	CAPTURED(librabbitmq_connection_open), CAPTURED(librabbitmq_channel_open),
	CAPTURED(librabbitmq_basic_publish), CAPTURED(librabbitmq_header),
	CAPTURED(librabbitmq_body), CAPTURED(librabbitmq_channel_close),
	CAPTURED(librabbitmq_connection_close),
	CAPTURED(pikaspec_basic_ack), CAPTURED(pikaspec_basic_cancelok),
	CAPTURED(pikaspec_basic_consumeok), CAPTURED(pikaspec_basic_qosok),
	CAPTURED(pikaspec_channel_closeok), CAPTURED(pikaspec_channel_openok),
	CAPTURED(pikaspec_confirm_selectok), CAPTURED(pikaspec_connection_closeok),
	CAPTURED(pikaspec_connection_openok), CAPTURED(pikaspec_connection_start),
	CAPTURED(pikaspec_connection_tune), CAPTURED(pikaspec_exchange_bindok),
	CAPTURED(pikaspec_exchange_declareok), CAPTURED(pikaspec_queue_bindok),
	CAPTURED(pikaspec_queue_declareok), CAPTURED(spec_basic_deliver),
	CAPTURED(spec_heartbeat),
};

#define NFRAMES (sizeof(client_frames) / sizeof(client_frames[0]))

static bool
str_eq(struct tq_amqp_str s, const char *c)
{
	return s.len == strlen(c) && memcmp(s.p, c, s.len) == 0;
}

/* Parse the whole frame @b (placed before a guard page); returns the frame's type. */
static int
frame_guarded(const uint8_t *b, size_t len, uint32_t frame_max, struct tq_amqp_frame *f,
	      uint8_t **g)
{
	size_t err_off = 0;
	ssize_t ret;

	*g = tq_test_guarded(b, len);
	ret = tq_amqp_frame_parse(*g, len, frame_max, f, &err_off);
	CU_ASSERT_EQUAL(ret, (ssize_t)len);
	return ret == (ssize_t)len ? f->type : -1;
}

/*
 * Decode the method frame @b into @m; its spans point into *@g, a guarded copy that the
 * caller frees with tq_test_guard_free(*g, len) after looking.
 */
static const struct tq_amqp_method_info *
method_guarded(const uint8_t *b, size_t len, struct tq_amqp_method *m, uint8_t **g)
{
	struct tq_amqp_frame f;
	size_t err_off = 0;
	ssize_t ret;

	if (frame_guarded(b, len, 131072, &f, g) != TQ_AMQP_FRAME_METHOD)
		return NULL;
	ret = tq_amqp_method_decode(f.payload, f.size, m, &err_off);
	CU_ASSERT_EQUAL(ret, (ssize_t)f.size);
	if (ret != (ssize_t)f.size) {
		printf("\n  %s at %zu\n", tq_amqp_err_name((int)ret), err_off);
		return NULL;
	}
	return m->info;
}

/* The table entry @key must be a long string equal to @want. */
static void
assert_table_str(struct tq_amqp_table t, const char *key, const char *want)
{
	struct tq_amqp_value v;

	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_get(t, key, &v), 1);
	CU_ASSERT_EQUAL(v.tag, TQ_AMQP_V_STR);
	CU_ASSERT_TRUE(str_eq(v.v.str, want));
}

/* protocol header */

static void
test_protocol_header(void)
{
	static const uint8_t amqp_0_8[8] = {'A', 'M', 'Q', 'P', 1, 1, 8, 0};
	static const uint8_t amqp_0_9_0[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 0};
	static const uint8_t http[8] = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'};
	size_t err_off = 99;

	for (size_t n = 0; n <= 8; n++) {
		uint8_t *g = tq_test_guarded(pika_protocol_header, n);

		CU_ASSERT_EQUAL(tq_amqp_protocol_header_check(g, n, &err_off),
				n < 8 ? TQ_AMQP_NEED_MORE : 8);
		tq_test_guard_free(g, n);
	}
	CU_ASSERT_EQUAL(memcmp(pika_protocol_header, tq_amqp_protocol_header, 8), 0);
	CU_ASSERT_EQUAL(memcmp(librabbitmq_protocol_header, tq_amqp_protocol_header, 8), 0);
	CU_ASSERT_EQUAL(tq_amqp_protocol_header_check(amqp_0_8, 8, &err_off),
			-TQ_AMQP_E_PROTOCOL_HEADER);
	CU_ASSERT_EQUAL(err_off, 4);
	CU_ASSERT_EQUAL(tq_amqp_protocol_header_check(amqp_0_9_0, 8, &err_off),
			-TQ_AMQP_E_PROTOCOL_HEADER);
	CU_ASSERT_EQUAL(err_off, 7);
	/* refused at the first wrong byte, without waiting for the rest */
	CU_ASSERT_EQUAL(tq_amqp_protocol_header_check(http, 1, &err_off),
			-TQ_AMQP_E_PROTOCOL_HEADER);
	CU_ASSERT_EQUAL(err_off, 0);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_PROTOCOL_HEADER), 0);
	CU_ASSERT_TRUE(tq_amqp_err_closes_connection(-TQ_AMQP_E_PROTOCOL_HEADER));
}

/* captured handshakes */

static void
test_pika_handshake(void)
{
	struct tq_amqp_method m;
	struct tq_amqp_value v, cap;
	uint8_t *g;

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_connection_startok, sizeof(pika_connection_startok), &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_CONNECTION_START_OK);
	CU_ASSERT_STRING_EQUAL(m.info->name, "connection.start-ok");
	assert_table_str(m.args.connection_start_ok.client_properties, "product",
			 "Pika Python Client Library");
	assert_table_str(m.args.connection_start_ok.client_properties, "version", "1.2.0");
	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_get(m.args.connection_start_ok.client_properties,
						"capabilities", &v), 1);
	CU_ASSERT_EQUAL_FATAL(v.tag, TQ_AMQP_V_TABLE);
	CU_ASSERT_EQUAL(tq_amqp_table_get(v.v.table, "publisher_confirms", &cap), 1);
	CU_ASSERT_TRUE(cap.tag == TQ_AMQP_V_BOOL && cap.v.b);
	CU_ASSERT_EQUAL(tq_amqp_table_get(v.v.table, "basic.nack", &cap), 1);
	CU_ASSERT_EQUAL(tq_amqp_table_get(v.v.table, "no_such_capability", &cap), 0);
	CU_ASSERT_TRUE(str_eq(m.args.connection_start_ok.mechanism, "PLAIN"));
	CU_ASSERT_EQUAL(m.args.connection_start_ok.response.len, 12);
	CU_ASSERT_EQUAL(memcmp(m.args.connection_start_ok.response.p, "\0guest\0guest", 12), 0);
	CU_ASSERT_TRUE(str_eq(m.args.connection_start_ok.locale, "en_US"));
	tq_test_guard_free(g, sizeof(pika_connection_startok));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_connection_tuneok, sizeof(pika_connection_tuneok), &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_CONNECTION_TUNE_OK);
	CU_ASSERT_EQUAL(m.args.connection_tune_ok.channel_max, 2047);
	CU_ASSERT_EQUAL(m.args.connection_tune_ok.frame_max, 131072);
	CU_ASSERT_EQUAL(m.args.connection_tune_ok.heartbeat, 0);
	tq_test_guard_free(g, sizeof(pika_connection_tuneok));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_connection_open, sizeof(pika_connection_open), &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_CONNECTION_OPEN);
	CU_ASSERT_TRUE(str_eq(m.args.connection_open.virtual_host, "/"));
	tq_test_guard_free(g, sizeof(pika_connection_open));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_channel_open, sizeof(pika_channel_open), &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_CHANNEL_OPEN);
	tq_test_guard_free(g, sizeof(pika_channel_open));
}

static void
test_pika_channel_methods(void)
{
	struct tq_amqp_method m;
	struct tq_amqp_value v;
	struct tq_amqp_frame f;
	uint8_t *g;

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_confirm_select, sizeof(pika_confirm_select), &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_CONFIRM_SELECT);
	CU_ASSERT_FALSE(m.args.confirm_select.nowait);
	tq_test_guard_free(g, sizeof(pika_confirm_select));
	CU_ASSERT_TRUE(frame_guarded(pika_confirm_select, sizeof(pika_confirm_select), 0, &f,
				     &g) == TQ_AMQP_FRAME_METHOD && f.channel == 1);
	tq_test_guard_free(g, sizeof(pika_confirm_select));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_exchange_declare, sizeof(pika_exchange_declare), &m, &g));
	CU_ASSERT_TRUE(str_eq(m.args.exchange_declare.exchange, "tq.events"));
	CU_ASSERT_TRUE(str_eq(m.args.exchange_declare.type, "topic"));
	CU_ASSERT_FALSE(m.args.exchange_declare.passive);
	CU_ASSERT_TRUE(m.args.exchange_declare.durable);
	CU_ASSERT_FALSE(m.args.exchange_declare.auto_delete);
	CU_ASSERT_FALSE(m.args.exchange_declare.internal);
	CU_ASSERT_FALSE(m.args.exchange_declare.no_wait);
	assert_table_str(m.args.exchange_declare.arguments, "alternate-exchange", "tq.ae");
	tq_test_guard_free(g, sizeof(pika_exchange_declare));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_queue_declare, sizeof(pika_queue_declare), &m, &g));
	CU_ASSERT_TRUE(str_eq(m.args.queue_declare.queue, "tq.q1"));
	CU_ASSERT_FALSE(m.args.queue_declare.passive);
	CU_ASSERT_TRUE(m.args.queue_declare.durable);
	CU_ASSERT_FALSE(m.args.queue_declare.exclusive);
	CU_ASSERT_TRUE(m.args.queue_declare.auto_delete);
	CU_ASSERT_FALSE(m.args.queue_declare.no_wait);
	CU_ASSERT_EQUAL(tq_amqp_table_get(m.args.queue_declare.arguments, "x-max-length", &v), 1);
	CU_ASSERT_TRUE(v.tag == TQ_AMQP_V_I32 && v.v.i == 1000); /* pika sends ints as 'I' */
	CU_ASSERT_EQUAL(tq_amqp_table_get(m.args.queue_declare.arguments, "x-message-ttl", &v), 1);
	CU_ASSERT_TRUE(v.tag == TQ_AMQP_V_I32 && v.v.i == 60000);
	assert_table_str(m.args.queue_declare.arguments, "x-queue-type", "classic");
	tq_test_guard_free(g, sizeof(pika_queue_declare));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_queue_bind, sizeof(pika_queue_bind), &m, &g));
	CU_ASSERT_TRUE(str_eq(m.args.queue_bind.queue, "tq.q1"));
	CU_ASSERT_TRUE(str_eq(m.args.queue_bind.exchange, "tq.events"));
	CU_ASSERT_TRUE(str_eq(m.args.queue_bind.routing_key, "sensors.#"));
	CU_ASSERT_EQUAL(m.args.queue_bind.arguments.len, 0);
	tq_test_guard_free(g, sizeof(pika_queue_bind));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_exchange_bind, sizeof(pika_exchange_bind), &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_EXCHANGE_BIND);
	CU_ASSERT_TRUE(str_eq(m.args.exchange_bind.destination, "tq.dst"));
	CU_ASSERT_TRUE(str_eq(m.args.exchange_bind.source, "tq.events"));
	CU_ASSERT_TRUE(str_eq(m.args.exchange_bind.routing_key, "a.b"));
	tq_test_guard_free(g, sizeof(pika_exchange_bind));

	CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(pika_basic_qos, sizeof(pika_basic_qos), &m, &g));
	CU_ASSERT_EQUAL(m.args.basic_qos.prefetch_size, 0);
	CU_ASSERT_EQUAL(m.args.basic_qos.prefetch_count, 10);
	CU_ASSERT_FALSE(m.args.basic_qos.global);
	tq_test_guard_free(g, sizeof(pika_basic_qos));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_basic_publish, sizeof(pika_basic_publish), &m, &g));
	CU_ASSERT_TRUE(m.info->content);
	CU_ASSERT_TRUE(str_eq(m.args.basic_publish.exchange, "tq.events"));
	CU_ASSERT_TRUE(str_eq(m.args.basic_publish.routing_key, "sensors.t1"));
	CU_ASSERT_TRUE(m.args.basic_publish.mandatory);
	CU_ASSERT_FALSE(m.args.basic_publish.immediate);
	tq_test_guard_free(g, sizeof(pika_basic_publish));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_basic_consume, sizeof(pika_basic_consume), &m, &g));
	CU_ASSERT_TRUE(str_eq(m.args.basic_consume.queue, "tq.q1"));
	CU_ASSERT_TRUE(str_eq(m.args.basic_consume.consumer_tag, "ctag-pika"));
	CU_ASSERT_FALSE(m.args.basic_consume.no_local);
	CU_ASSERT_FALSE(m.args.basic_consume.no_ack);
	CU_ASSERT_FALSE(m.args.basic_consume.exclusive);
	CU_ASSERT_EQUAL(tq_amqp_table_get(m.args.basic_consume.arguments, "x-priority", &v), 1);
	CU_ASSERT_TRUE(v.tag == TQ_AMQP_V_I32 && v.v.i == 5);
	tq_test_guard_free(g, sizeof(pika_basic_consume));

	CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(pika_basic_ack, sizeof(pika_basic_ack), &m, &g));
	CU_ASSERT_EQUAL(m.args.basic_ack.delivery_tag, 7);
	CU_ASSERT_TRUE(m.args.basic_ack.multiple);
	tq_test_guard_free(g, sizeof(pika_basic_ack));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_basic_nack, sizeof(pika_basic_nack), &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_BASIC_NACK);
	CU_ASSERT_EQUAL(m.args.basic_nack.delivery_tag, 8);
	CU_ASSERT_FALSE(m.args.basic_nack.multiple);
	CU_ASSERT_TRUE(m.args.basic_nack.requeue); /* bit 1 of the same octet */
	tq_test_guard_free(g, sizeof(pika_basic_nack));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_basic_reject, sizeof(pika_basic_reject), &m, &g));
	CU_ASSERT_EQUAL(m.args.basic_reject.delivery_tag, 9);
	CU_ASSERT_FALSE(m.args.basic_reject.requeue);
	tq_test_guard_free(g, sizeof(pika_basic_reject));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_basic_cancel, sizeof(pika_basic_cancel), &m, &g));
	CU_ASSERT_TRUE(str_eq(m.args.basic_cancel.consumer_tag, "ctag-pika"));
	tq_test_guard_free(g, sizeof(pika_basic_cancel));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_channel_close, sizeof(pika_channel_close), &m, &g));
	CU_ASSERT_EQUAL(m.args.channel_close.reply_code, 0); /* pika's default */
	CU_ASSERT_TRUE(str_eq(m.args.channel_close.reply_text, "Normal shutdown"));
	tq_test_guard_free(g, sizeof(pika_channel_close));

	CU_ASSERT_PTR_NOT_NULL_FATAL(
		method_guarded(pika_connection_close, sizeof(pika_connection_close), &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_CONNECTION_CLOSE);
	CU_ASSERT_EQUAL(m.args.connection_close.reply_code, 200);
	tq_test_guard_free(g, sizeof(pika_connection_close));
}

static void
test_pika_content(void)
{
	struct tq_amqp_content_header h;
	const struct tq_amqp_basic_props *pr = &h.props;
	struct tq_amqp_value v, w, x;
	struct tq_amqp_iter it;
	struct tq_amqp_frame f;
	size_t err_off = 0;
	uint8_t *g;

	CU_ASSERT_EQUAL_FATAL(frame_guarded(pika_header, sizeof(pika_header), 0, &f, &g),
			      TQ_AMQP_FRAME_HEADER);
	CU_ASSERT_EQUAL_FATAL(tq_amqp_header_decode(f.payload, f.size, &h, &err_off),
			      (ssize_t)f.size);
	CU_ASSERT_EQUAL(h.class_id, TQ_AMQP_CLASS_BASIC);
	CU_ASSERT_EQUAL(h.body_size, 11);
	CU_ASSERT_EQUAL(pr->flags, TQ_AMQP_BASIC_FLAGS_ALL); /* all 14 */
	CU_ASSERT_TRUE(str_eq(pr->content_type, "application/json"));
	CU_ASSERT_TRUE(str_eq(pr->content_encoding, "utf-8"));
	CU_ASSERT_EQUAL(pr->delivery_mode, 2);
	CU_ASSERT_EQUAL(pr->priority, 5);
	CU_ASSERT_TRUE(str_eq(pr->correlation_id, "corr-1"));
	CU_ASSERT_TRUE(str_eq(pr->reply_to, "amq.rabbitmq.reply-to"));
	CU_ASSERT_TRUE(str_eq(pr->expiration, "60000"));
	CU_ASSERT_TRUE(str_eq(pr->message_id, "msg-1"));
	CU_ASSERT_EQUAL(pr->timestamp, 1700000000);
	CU_ASSERT_TRUE(str_eq(pr->type, "reading"));
	CU_ASSERT_TRUE(str_eq(pr->user_id, "guest"));
	CU_ASSERT_TRUE(str_eq(pr->app_id, "tachyon-test"));
	CU_ASSERT_TRUE(str_eq(pr->reserved, "c1"));
	/* headers as pika writes them: S, I, t, D, T, l, F holding A holding F, V */
	assert_table_str(pr->headers, "x-trace", "abc");
	CU_ASSERT_TRUE(tq_amqp_table_get(pr->headers, "n", &v) == 1 && v.tag == 'I' && v.v.i == 42);
	CU_ASSERT_TRUE(tq_amqp_table_get(pr->headers, "neg", &v) == 1 && v.v.i == -7);
	CU_ASSERT_TRUE(tq_amqp_table_get(pr->headers, "flag", &v) == 1 && v.tag == 't' && v.v.b);
	CU_ASSERT_TRUE(tq_amqp_table_get(pr->headers, "dec", &v) == 1 && v.tag == 'D' &&
		       v.v.dec.scale == 1 && v.v.dec.value == 15);
	CU_ASSERT_TRUE(tq_amqp_table_get(pr->headers, "when", &v) == 1 && v.tag == 'T' &&
		       v.v.u == 1700000000);
	CU_ASSERT_TRUE(tq_amqp_table_get(pr->headers, "big", &v) == 1 && v.tag == 'l' &&
		       v.v.i == (int64_t)1 << 40);
	CU_ASSERT_TRUE(tq_amqp_table_get(pr->headers, "none", &v) == 1 && v.tag == 'V');
	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_get(pr->headers, "nested", &v), 1);
	CU_ASSERT_EQUAL_FATAL(v.tag, TQ_AMQP_V_TABLE);
	assert_table_str(v.v.table, "k", "v");
	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_get(v.v.table, "list", &w), 1);
	CU_ASSERT_EQUAL_FATAL(w.tag, TQ_AMQP_V_ARRAY);
	tq_amqp_array_iter(&it, w.v.table);
	CU_ASSERT_TRUE(tq_amqp_array_next(&it, &x) == 1 && x.tag == 'I' && x.v.i == 1);
	CU_ASSERT_TRUE(tq_amqp_array_next(&it, &x) == 1 && x.tag == 'S' && str_eq(x.v.str, "two"));
	CU_ASSERT_TRUE(tq_amqp_array_next(&it, &x) == 1 && x.tag == 'F');
	CU_ASSERT_TRUE(tq_amqp_table_get(x.v.table, "three", &v) == 1 && v.v.i == 3);
	CU_ASSERT_EQUAL(tq_amqp_array_next(&it, &x), 0);
	tq_test_guard_free(g, sizeof(pika_header));

	CU_ASSERT_EQUAL_FATAL(frame_guarded(pika_body, sizeof(pika_body), 0, &f, &g),
			      TQ_AMQP_FRAME_BODY);
	CU_ASSERT_EQUAL(f.size, 11);
	CU_ASSERT_EQUAL(memcmp(f.payload, "{\"t\": 21.5}", 11), 0);
	tq_test_guard_free(g, sizeof(pika_body));
}

static void
test_librabbitmq(void)
{
	struct tq_amqp_content_header h;
	struct tq_amqp_method m;
	struct tq_amqp_frame f;
	size_t err_off = 0;
	uint8_t *g;

	CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(librabbitmq_connection_startok,
						    sizeof(librabbitmq_connection_startok), &m, &g));
	assert_table_str(m.args.connection_start_ok.client_properties, "product", "rabbitmq-c");
	CU_ASSERT_TRUE(str_eq(m.args.connection_start_ok.mechanism, "PLAIN"));
	tq_test_guard_free(g, sizeof(librabbitmq_connection_startok));

	CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(librabbitmq_basic_publish,
						    sizeof(librabbitmq_basic_publish), &m, &g));
	CU_ASSERT_TRUE(str_eq(m.args.basic_publish.exchange, "amq.topic"));
	CU_ASSERT_TRUE(str_eq(m.args.basic_publish.routing_key, "a.b"));
	CU_ASSERT_FALSE(m.args.basic_publish.mandatory);
	tq_test_guard_free(g, sizeof(librabbitmq_basic_publish));

	CU_ASSERT_EQUAL_FATAL(
		frame_guarded(librabbitmq_header, sizeof(librabbitmq_header), 0, &f, &g),
		TQ_AMQP_FRAME_HEADER);
	CU_ASSERT_EQUAL_FATAL(tq_amqp_header_decode(f.payload, f.size, &h, &err_off),
			      (ssize_t)f.size);
	CU_ASSERT_EQUAL(h.body_size, 5);
	CU_ASSERT_EQUAL(h.props.flags, TQ_AMQP_BASIC_CONTENT_TYPE_FLAG |
					       TQ_AMQP_BASIC_CONTENT_ENCODING_FLAG |
					       TQ_AMQP_BASIC_HEADERS_FLAG |
					       TQ_AMQP_BASIC_DELIVERY_MODE_FLAG);
	CU_ASSERT_TRUE(str_eq(h.props.content_type, "text/plain"));
	CU_ASSERT_TRUE(str_eq(h.props.content_encoding, "utf-8"));
	CU_ASSERT_EQUAL(h.props.delivery_mode, 2);
	assert_table_str(h.props.headers, "k", "v");
	tq_test_guard_free(g, sizeof(librabbitmq_header));

	CU_ASSERT_EQUAL_FATAL(frame_guarded(librabbitmq_body, sizeof(librabbitmq_body), 0, &f, &g),
			      TQ_AMQP_FRAME_BODY);
	CU_ASSERT_TRUE(f.size == 5 && memcmp(f.payload, "hello", 5) == 0);
	tq_test_guard_free(g, sizeof(librabbitmq_body));
}

/* Every captured frame decodes, and re-encodes to the same bytes. */
static void
test_captured_reencode(void)
{
	for (size_t i = 0; i < NFRAMES; i++) {
		const struct captured *c = &client_frames[i];
		struct tq_amqp_content_header h;
		struct tq_amqp_method m;
		struct tq_amqp_frame f;
		uint8_t out[512];
		size_t err_off = 0;
		ssize_t n = -1;
		uint8_t *g;

		CU_ASSERT_FATAL(c->len <= sizeof(out));
		switch (frame_guarded(c->b, c->len, TQ_AMQP_FRAME_MIN_SIZE, &f, &g)) {
		case TQ_AMQP_FRAME_METHOD:
			CU_ASSERT_EQUAL(tq_amqp_method_decode(f.payload, f.size, &m, &err_off),
					(ssize_t)f.size);
			n = tq_amqp_method_encode(out, sizeof(out), f.channel, m.info, &m.args);
			break;
		case TQ_AMQP_FRAME_HEADER:
			CU_ASSERT_EQUAL(tq_amqp_header_decode(f.payload, f.size, &h, &err_off),
					(ssize_t)f.size);
			n = tq_amqp_header_encode(out, sizeof(out), f.channel, h.body_size, &h.props);
			break;
		case TQ_AMQP_FRAME_BODY:
			n = tq_amqp_body_encode(out, sizeof(out), f.channel, f.payload, f.size);
			break;
		case TQ_AMQP_FRAME_HEARTBEAT:
			n = tq_amqp_heartbeat_encode(out, sizeof(out));
			break;
		default:
			break;
		}
		if (n != (ssize_t)c->len || memcmp(out, c->b, c->len) != 0)
			printf("\n  %s: re-encoded %zd bytes differ\n", c->name, n);
		CU_ASSERT_EQUAL(n, (ssize_t)c->len);
		CU_ASSERT_EQUAL(memcmp(out, c->b, c->len), 0);
		tq_test_guard_free(g, c->len);
	}
}

/* The broker side as pika.spec writes it, and the capabilities our encoder announces. */
static void
test_server_methods(void)
{
	static const struct tq_amqp_server_info si = {
		.product = "tachyon", .version = "0.1.0", .platform = "DPDK 22.11",
		.copyright = "tachyon authors", .information = "BSD-3-Clause",
		.cluster_name = "tq@localhost",
	};
	static const char *const caps[] = {
		"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
		"consumer_cancel_notify", "connection.blocked", "consumer_priorities",
		"authentication_failure_close", "per_consumer_qos",
	};
	uint8_t props[512], frame[1024];
	struct tq_amqp_connection_start start = {
		.version_major = 0, .version_minor = 9,
		.mechanisms = {(const uint8_t *)"PLAIN AMQPLAIN", 14},
		.locales = {(const uint8_t *)"en_US", 5},
	};
	struct tq_amqp_value v, c;
	struct tq_amqp_method m;
	uint8_t *g;
	ssize_t n;

	/* pika.spec's connection.start, with RabbitMQ's capabilities */
	CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(pikaspec_connection_start,
						    sizeof(pikaspec_connection_start), &m, &g));
	CU_ASSERT_EQUAL(m.args.connection_start.version_major, 0);
	CU_ASSERT_EQUAL(m.args.connection_start.version_minor, 9);
	CU_ASSERT_TRUE(str_eq(m.args.connection_start.mechanisms, "PLAIN AMQPLAIN"));
	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_get(m.args.connection_start.server_properties,
						"capabilities", &v), 1);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		CU_ASSERT_TRUE(tq_amqp_table_get(v.v.table, caps[i], &c) == 1 && c.v.b);
	tq_test_guard_free(g, sizeof(pikaspec_connection_start));

	/* ours */
	CU_ASSERT_EQUAL_FATAL(tq_amqp_server_properties(props, sizeof(props), &si,
							&start.server_properties), 0);
	n = tq_amqp_encode_connection_start(frame, sizeof(frame), 0, &start);
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(frame, (size_t)n, &m, &g));
	CU_ASSERT_EQUAL(m.info->id, TQ_AMQP_CONNECTION_START);
	assert_table_str(m.args.connection_start.server_properties, "product", "tachyon");
	assert_table_str(m.args.connection_start.server_properties, "cluster_name",
			 "tq@localhost");
	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_get(m.args.connection_start.server_properties,
						"capabilities", &v), 1);
	CU_ASSERT_EQUAL_FATAL(v.tag, TQ_AMQP_V_TABLE);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		CU_ASSERT_TRUE(tq_amqp_table_get(v.v.table, caps[i], &c) == 1 &&
			       c.tag == TQ_AMQP_V_BOOL && c.v.b);
	tq_test_guard_free(g, (size_t)n);
	for (size_t cap = 0; cap < 64; cap++) /* a short buffer is refused */
		CU_ASSERT_EQUAL(tq_amqp_server_properties(props, cap, &si, &start.server_properties),
				-ENOSPC);

	/* basic.deliver as the spec lays it out */
	{
		struct tq_amqp_basic_deliver d = {
			.consumer_tag = {(const uint8_t *)"ctag", 4}, .delivery_tag = 258,
			.redelivered = true, .exchange = {(const uint8_t *)"tq.ex", 5},
			.routing_key = {(const uint8_t *)"sensors", 7},
		};

		n = tq_amqp_encode_basic_deliver(frame, sizeof(frame), 5, &d);
		CU_ASSERT_EQUAL(n, (ssize_t)sizeof(spec_basic_deliver));
		CU_ASSERT_EQUAL(memcmp(frame, spec_basic_deliver, sizeof(spec_basic_deliver)), 0);
	}
	/* the pikaspec frames are what our typed encoders write */
	{
		struct tq_amqp_connection_tune t = {2047, 131072, 60};
		struct tq_amqp_basic_ack a = {1, false};
		struct tq_amqp_basic_consume_ok co = {{(const uint8_t *)"ctag-pika", 9}};
		struct tq_amqp_queue_declare_ok qd = {{(const uint8_t *)"tq.q1", 5}, 0, 0};

		n = tq_amqp_encode_connection_tune(frame, sizeof(frame), 0, &t);
		CU_ASSERT_TRUE(n == sizeof(pikaspec_connection_tune) &&
			       !memcmp(frame, pikaspec_connection_tune, (size_t)n));
		n = tq_amqp_encode_basic_ack(frame, sizeof(frame), 1, &a);
		CU_ASSERT_TRUE(n == sizeof(pikaspec_basic_ack) &&
			       !memcmp(frame, pikaspec_basic_ack, (size_t)n));
		n = tq_amqp_encode_basic_consume_ok(frame, sizeof(frame), 1, &co);
		CU_ASSERT_TRUE(n == sizeof(pikaspec_basic_consumeok) &&
			       !memcmp(frame, pikaspec_basic_consumeok, (size_t)n));
		n = tq_amqp_encode_queue_declare_ok(frame, sizeof(frame), 1, &qd);
		CU_ASSERT_TRUE(n == sizeof(pikaspec_queue_declareok) &&
			       !memcmp(frame, pikaspec_queue_declareok, (size_t)n));
		n = tq_amqp_encode_basic_qos_ok(frame, sizeof(frame), 1);
		CU_ASSERT_TRUE(n == sizeof(pikaspec_basic_qosok) &&
			       !memcmp(frame, pikaspec_basic_qosok, (size_t)n));
		n = tq_amqp_encode_confirm_select_ok(frame, sizeof(frame), 1);
		CU_ASSERT_TRUE(n == sizeof(pikaspec_confirm_selectok) &&
			       !memcmp(frame, pikaspec_confirm_selectok, (size_t)n));
		n = tq_amqp_encode_connection_close_ok(frame, sizeof(frame), 0);
		CU_ASSERT_TRUE(n == sizeof(pikaspec_connection_closeok) &&
			       !memcmp(frame, pikaspec_connection_closeok, (size_t)n));
	}
	/* queue.declare-ok counts, get-ok, blocked */
	{
		struct tq_amqp_queue_declare_ok qd = {{(const uint8_t *)"q", 1}, 123456, 7};
		struct tq_amqp_basic_get_ok go = {99, true, {(const uint8_t *)"x", 1},
						  {(const uint8_t *)"rk", 2}, 41};
		struct tq_amqp_connection_blocked bl = {{(const uint8_t *)"low on memory", 13}};

		n = tq_amqp_encode_queue_declare_ok(frame, sizeof(frame), 3, &qd);
		CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(frame, (size_t)n, &m, &g));
		CU_ASSERT_EQUAL(m.args.queue_declare_ok.message_count, 123456);
		CU_ASSERT_EQUAL(m.args.queue_declare_ok.consumer_count, 7);
		tq_test_guard_free(g, (size_t)n);
		n = tq_amqp_encode_basic_get_ok(frame, sizeof(frame), 3, &go);
		CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(frame, (size_t)n, &m, &g));
		CU_ASSERT_TRUE(m.args.basic_get_ok.redelivered);
		CU_ASSERT_EQUAL(m.args.basic_get_ok.message_count, 41);
		tq_test_guard_free(g, (size_t)n);
		n = tq_amqp_encode_connection_blocked(frame, sizeof(frame), 0, &bl);
		CU_ASSERT_PTR_NOT_NULL_FATAL(method_guarded(frame, (size_t)n, &m, &g));
		CU_ASSERT_TRUE(str_eq(m.args.connection_blocked.reason, "low on memory"));
		tq_test_guard_free(g, (size_t)n);
		n = tq_amqp_encode_connection_unblocked(frame, sizeof(frame), 0);
		CU_ASSERT_EQUAL(n, 12);
		n = tq_amqp_encode_basic_get_empty(frame, sizeof(frame), 3,
						   &(struct tq_amqp_basic_get_empty){{NULL, 0}});
		CU_ASSERT_EQUAL(n, 13);
	}
}

/* The spec's extensions and flags made it through the generator. */
static void
test_spec_tables(void)
{
	const struct tq_amqp_method_info *mi;

	CU_ASSERT_EQUAL(TQ_AMQP_METHOD_COUNT, 64);
	CU_ASSERT_EQUAL(TQ_AMQP_FRAME_END, 0xce);
	CU_ASSERT_EQUAL(TQ_AMQP_FRAME_MIN_SIZE, 4096);
	mi = tq_amqp_method_find(85, 10);
	CU_ASSERT_TRUE_FATAL(mi != NULL);
	CU_ASSERT_STRING_EQUAL(mi->name, "confirm.select");
	CU_ASSERT_TRUE(mi->nfields == 1 && mi->fields[0].type == TQ_AMQP_T_BIT);
	CU_ASSERT_EQUAL(mi->responses[0], TQ_AMQP_CONFIRM_SELECT_OK);
	CU_ASSERT_STRING_EQUAL(tq_amqp_method_find(60, 120)->name, "basic.nack");
	CU_ASSERT_EQUAL(tq_amqp_method_find(60, 120)->sent_by, TQ_AMQP_BY_CLIENT | TQ_AMQP_BY_SERVER);
	CU_ASSERT_STRING_EQUAL(tq_amqp_method_find(40, 30)->name, "exchange.bind");
	CU_ASSERT_STRING_EQUAL(tq_amqp_method_find(40, 40)->name, "exchange.unbind");
	CU_ASSERT_STRING_EQUAL(tq_amqp_method_find(40, 51)->name, "exchange.unbind-ok");
	CU_ASSERT_STRING_EQUAL(tq_amqp_method_find(10, 60)->name, "connection.blocked");
	CU_ASSERT_STRING_EQUAL(tq_amqp_method_find(10, 61)->name, "connection.unblocked");
	CU_ASSERT_STRING_EQUAL(tq_amqp_method_find(10, 70)->name, "connection.update-secret");
	CU_ASSERT_PTR_NULL(tq_amqp_method_find(60, 121));
	CU_ASSERT_PTR_NULL(tq_amqp_method_find(30, 10)); /* the spec's removed access class */
	/* who sends what */
	CU_ASSERT_EQUAL(tq_amqp_method_find(60, 60)->sent_by, TQ_AMQP_BY_SERVER); /* deliver */
	CU_ASSERT_EQUAL(tq_amqp_method_find(60, 40)->sent_by, TQ_AMQP_BY_CLIENT); /* publish */
	CU_ASSERT_EQUAL(tq_amqp_method_find(60, 30)->sent_by, TQ_AMQP_BY_CLIENT | TQ_AMQP_BY_SERVER);
	CU_ASSERT_EQUAL(tq_amqp_method_find(60, 80)->sent_by, TQ_AMQP_BY_CLIENT | TQ_AMQP_BY_SERVER);
	/* content and synchronous flags */
	for (unsigned int i = 0; i < TQ_AMQP_METHOD_COUNT; i++) {
		const struct tq_amqp_method_info *x = &tq_amqp_methods[i];
		bool content = x->id == TQ_AMQP_BASIC_PUBLISH || x->id == TQ_AMQP_BASIC_RETURN ||
			       x->id == TQ_AMQP_BASIC_DELIVER || x->id == TQ_AMQP_BASIC_GET_OK;

		CU_ASSERT_EQUAL(x->content, content);
		CU_ASSERT_PTR_EQUAL(tq_amqp_method_find(x->class_id, x->method_id), x);
		CU_ASSERT_PTR_NOT_NULL(tq_amqp_class_find(x->class_id));
	}
	mi = tq_amqp_method_find(60, 70);
	CU_ASSERT_TRUE(mi->synchronous && mi->responses[0] == TQ_AMQP_BASIC_GET_OK &&
		       mi->responses[1] == TQ_AMQP_BASIC_GET_EMPTY);
	CU_ASSERT_FALSE(tq_amqp_method_find(60, 40)->synchronous);
	CU_ASSERT_TRUE(tq_amqp_method_find(50, 10)->synchronous);
	CU_ASSERT_TRUE(tq_amqp_method_find(60, 100)->deprecated);
	CU_ASSERT_EQUAL(tq_amqp_class_find(60)->nprops, 14);
	CU_ASSERT_STRING_EQUAL(tq_amqp_class_find(60)->props[13].name, "reserved");
	CU_ASSERT_EQUAL(TQ_AMQP_BASIC_FLAGS_ALL, 0xfffc);
	CU_ASSERT_EQUAL(TQ_AMQP_BASIC_CONTENT_TYPE_FLAG, 0x8000);
	CU_ASSERT_EQUAL(TQ_AMQP_BASIC_RESERVED_FLAG, 0x0004);
}

/* frames */

static void
test_stream_many_frames_and_byte_at_a_time(void)
{
	static uint8_t stream[8192];
	size_t len = 0, off = 0, nframes = 0;
	struct tq_amqp_frame f;
	size_t err_off;

	for (size_t i = 0; i < NFRAMES; i++) {
		CU_ASSERT_FATAL(len + client_frames[i].len <= sizeof(stream));
		memcpy(stream + len, client_frames[i].b, client_frames[i].len);
		len += client_frames[i].len;
	}
	/* all in one segment */
	while (off < len) {
		ssize_t ret = tq_amqp_frame_parse(stream + off, len - off, 131072, &f, &err_off);

		CU_ASSERT_EQUAL_FATAL(ret, (ssize_t)client_frames[nframes].len);
		off += (size_t)ret;
		nframes++;
	}
	CU_ASSERT_EQUAL(nframes, NFRAMES);
	/* one byte at a time: need-more until each frame is complete, never a read beyond */
	off = 0;
	nframes = 0;
	for (size_t have = 1; have <= len; have++) {
		size_t glen = have - off;
		uint8_t *g = tq_test_guarded(stream + off, glen);
		ssize_t ret = tq_amqp_frame_parse(g, glen, 131072, &f, &err_off);

		if (glen < client_frames[nframes].len) {
			CU_ASSERT_EQUAL(ret, TQ_AMQP_NEED_MORE);
		} else {
			CU_ASSERT_EQUAL(ret, (ssize_t)client_frames[nframes].len);
			off = have;
			nframes++;
		}
		tq_test_guard_free(g, glen);
	}
	CU_ASSERT_EQUAL(nframes, NFRAMES);
}

static void
test_frame_errors(void)
{
	uint8_t b[64];
	struct tq_amqp_frame f;
	size_t err_off = 0;

	/* bad frame-end */
	memcpy(b, pika_basic_ack, sizeof(pika_basic_ack));
	b[sizeof(pika_basic_ack) - 1] = 0xcd;
	CU_ASSERT_EQUAL(tq_amqp_frame_parse(b, sizeof(pika_basic_ack), 0, &f, &err_off),
			-TQ_AMQP_E_FRAME_END);
	CU_ASSERT_EQUAL(err_off, sizeof(pika_basic_ack) - 1);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_FRAME_END), TQ_AMQP_FRAME_ERROR);

	/* frame-max: exactly at it is fine, one byte over is refused from the header alone */
	CU_ASSERT_EQUAL(tq_amqp_frame_parse(pika_basic_ack, sizeof(pika_basic_ack),
					    sizeof(pika_basic_ack), &f, &err_off),
			(ssize_t)sizeof(pika_basic_ack));
	CU_ASSERT_EQUAL(tq_amqp_frame_parse(pika_basic_ack, TQ_AMQP_FRAME_HDR_LEN,
					    sizeof(pika_basic_ack) - 1, &f, &err_off),
			-TQ_AMQP_E_FRAME_TOO_LARGE);
	CU_ASSERT_EQUAL(err_off, 3);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_FRAME_TOO_LARGE), 501);
	{
		/* a 4 GB declaration is refused before anything is buffered */
		const uint8_t huge[7] = {3, 0, 1, 0xff, 0xff, 0xff, 0xff};

		CU_ASSERT_EQUAL(tq_amqp_frame_parse(huge, 7, 131072, &f, &err_off),
				-TQ_AMQP_E_FRAME_TOO_LARGE);
		CU_ASSERT_EQUAL(tq_amqp_frame_parse(huge, 7, 0, &f, &err_off), TQ_AMQP_NEED_MORE);
	}

	/* frame types */
	for (unsigned int t = 0; t < 256; t++) {
		bool ok = t == 1 || t == 2 || t == 3 || t == 8;

		b[0] = (uint8_t)t;
		CU_ASSERT_EQUAL(tq_amqp_frame_parse(b, 1, 0, &f, &err_off),
				ok ? TQ_AMQP_NEED_MORE : -TQ_AMQP_E_FRAME_TYPE);
	}
	/* the protocol header again, mid-stream */
	CU_ASSERT_EQUAL(tq_amqp_frame_parse(pika_protocol_header, 8, 0, &f, &err_off),
			-TQ_AMQP_E_FRAME_TYPE);

	/* heartbeats */
	CU_ASSERT_EQUAL(tq_amqp_frame_parse(spec_heartbeat, 8, 4096, &f, &err_off), 8);
	CU_ASSERT_TRUE(f.type == TQ_AMQP_FRAME_HEARTBEAT && f.channel == 0 && f.size == 0);
	{
		const uint8_t hb_ch1[8] = {8, 0, 1, 0, 0, 0, 0, 0xce};
		const uint8_t hb_data[9] = {8, 0, 0, 0, 0, 0, 1, 0, 0xce};

		CU_ASSERT_EQUAL(tq_amqp_frame_parse(hb_ch1, 8, 0, &f, &err_off),
				-TQ_AMQP_E_HEARTBEAT);
		CU_ASSERT_EQUAL(err_off, 1);
		CU_ASSERT_EQUAL(tq_amqp_frame_parse(hb_data, 9, 0, &f, &err_off),
				-TQ_AMQP_E_HEARTBEAT);
		CU_ASSERT_EQUAL(err_off, 3);
	}
	CU_ASSERT_EQUAL(tq_amqp_heartbeat_encode(b, 7), -ENOSPC);
	CU_ASSERT_EQUAL(tq_amqp_heartbeat_encode(b, 8), 8);
	CU_ASSERT_EQUAL(memcmp(b, spec_heartbeat, 8), 0);
	/* body frames, zero-copy head */
	CU_ASSERT_EQUAL(tq_amqp_frame_head_encode(b, 7, TQ_AMQP_FRAME_BODY, 1, 11), 7);
	CU_ASSERT_EQUAL(memcmp(b, pika_body, 7), 0);
	CU_ASSERT_EQUAL(tq_amqp_frame_head_encode(b, 6, TQ_AMQP_FRAME_BODY, 1, 11), -ENOSPC);
	CU_ASSERT_EQUAL(tq_amqp_body_encode(b, 18, 1, "{\"t\": 21.5}", 11), -ENOSPC);
	CU_ASSERT_EQUAL(tq_amqp_body_encode(b, 19, 1, "{\"t\": 21.5}", 11), 19);
	CU_ASSERT_EQUAL(memcmp(b, pika_body, 19), 0);
}

/* Every prefix of every frame: need-more; every prefix of every payload: an error. */
static void
test_truncated_at_every_length(void)
{
	for (size_t i = 0; i < NFRAMES; i++) {
		const struct captured *c = &client_frames[i];
		const uint8_t *payload = c->b + TQ_AMQP_FRAME_HDR_LEN;
		size_t plen = c->len - TQ_AMQP_FRAME_OVERHEAD;

		for (size_t n = 0; n < c->len; n++) {
			uint8_t *g = tq_test_guarded(c->b, n);
			struct tq_amqp_frame f;
			size_t err_off;

			CU_ASSERT_EQUAL(tq_amqp_frame_parse(g, n, 0, &f, &err_off), TQ_AMQP_NEED_MORE);
			tq_test_guard_free(g, n);
		}
		for (size_t n = 0; n < plen && c->b[0] != TQ_AMQP_FRAME_BODY; n++) {
			uint8_t *g = tq_test_guarded(payload, n);
			struct tq_amqp_content_header h;
			struct tq_amqp_method m;
			size_t err_off = SIZE_MAX;
			ssize_t ret;

			if (c->b[0] == TQ_AMQP_FRAME_METHOD)
				ret = tq_amqp_method_decode(g, n, &m, &err_off);
			else
				ret = tq_amqp_header_decode(g, n, &h, &err_off);
			CU_ASSERT_TRUE(ret < 0);
			CU_ASSERT_TRUE(err_off <= n);
			CU_ASSERT_TRUE(ret == -TQ_AMQP_E_TRUNCATED || ret == -TQ_AMQP_E_METHOD_SHORT ||
				       ret == -TQ_AMQP_E_HEADER_SHORT || ret == -TQ_AMQP_E_TABLE_SIZE);
			tq_test_guard_free(g, n);
		}
	}
}

static void
test_unknown_class_and_method(void)
{
	const uint8_t unknown_class[4] = {0, 99, 0, 10};
	const uint8_t unknown_method[4] = {0, 60, 0, 99};
	const uint8_t access_request[4] = {0, 30, 0, 10}; /* 0-8's access class, gone in 0-9-1 */
	struct tq_amqp_method m;
	size_t err_off;

	CU_ASSERT_EQUAL(tq_amqp_method_decode(unknown_class, 4, &m, &err_off),
			-TQ_AMQP_E_UNKNOWN_CLASS);
	CU_ASSERT_EQUAL(err_off, 0);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_UNKNOWN_CLASS), TQ_AMQP_NOT_IMPLEMENTED);
	CU_ASSERT_EQUAL(tq_amqp_method_decode(access_request, 4, &m, &err_off),
			-TQ_AMQP_E_UNKNOWN_CLASS);
	CU_ASSERT_EQUAL(tq_amqp_method_decode(unknown_method, 4, &m, &err_off),
			-TQ_AMQP_E_UNKNOWN_METHOD);
	CU_ASSERT_EQUAL(err_off, 2);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_UNKNOWN_METHOD), TQ_AMQP_COMMAND_INVALID);
	CU_ASSERT_EQUAL(tq_amqp_method_decode(unknown_method, 3, &m, &err_off),
			-TQ_AMQP_E_METHOD_SHORT);
}

static void
test_arguments_malformed(void)
{
	/* exchange.declare: reserved short, then the exchange name says 200 bytes, 3 follow */
	const uint8_t overrun[] = {0, 40, 0, 10, 0, 0, 200, 'a', 'b', 'c'};
	/* basic.ack with a byte too many */
	const uint8_t trailing[] = {0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x55};
	/* basic.ack without its bit octet */
	const uint8_t no_bits[] = {0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1};
	/* connection.secure-ok: longstr of 2^32 - 1 bytes */
	const uint8_t long_overrun[] = {0, 10, 0, 21, 0xff, 0xff, 0xff, 0xff, 'x'};
	struct tq_amqp_method m;
	size_t err_off;

	CU_ASSERT_EQUAL(tq_amqp_method_decode(overrun, sizeof(overrun), &m, &err_off),
			-TQ_AMQP_E_TRUNCATED);
	CU_ASSERT_EQUAL(err_off, 6);
	CU_ASSERT_EQUAL(tq_amqp_method_decode(trailing, sizeof(trailing), &m, &err_off),
			-TQ_AMQP_E_TRAILING);
	CU_ASSERT_EQUAL(err_off, 13);
	CU_ASSERT_EQUAL(tq_amqp_method_decode(no_bits, sizeof(no_bits), &m, &err_off),
			-TQ_AMQP_E_TRUNCATED);
	CU_ASSERT_EQUAL(err_off, 12);
	CU_ASSERT_EQUAL(tq_amqp_method_decode(long_overrun, sizeof(long_overrun), &m, &err_off),
			-TQ_AMQP_E_TRUNCATED);
	CU_ASSERT_EQUAL(err_off, 4);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_TRUNCATED), TQ_AMQP_FRAME_ERROR);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_TRAILING), TQ_AMQP_FRAME_ERROR);
}

/* Consecutive bits share octets (least significant first); any other field ends the run. */
static void
test_bits_packing(void)
{
	/* queue.declare: passive, durable, exclusive, auto-delete, no-wait in one octet */
	const uint8_t qd[] = {0, 50, 0, 10, 0, 0, 1, 'q', 0x15 | 0xe0, 0, 0, 0, 0};
	/* basic.deliver: redelivered sits alone between delivery-tag and exchange */
	const uint8_t del[] = {0, 60, 0, 60, 1, 't', 0, 0, 0, 0, 0, 0, 0, 9, 0xfe, 1, 'x', 0};
	/* basic.nack: multiple and requeue share an octet */
	const uint8_t nack[] = {0, 60, 0, 120, 0, 0, 0, 0, 0, 0, 0, 3, 0x02};
	struct tq_amqp_queue_declare q = {0};
	struct tq_amqp_method m;
	uint8_t out[64];
	size_t err_off;

	CU_ASSERT_EQUAL_FATAL(tq_amqp_method_decode(qd, sizeof(qd), &m, &err_off),
			      (ssize_t)sizeof(qd));
	CU_ASSERT_TRUE(m.args.queue_declare.passive);
	CU_ASSERT_FALSE(m.args.queue_declare.durable);
	CU_ASSERT_TRUE(m.args.queue_declare.exclusive);
	CU_ASSERT_FALSE(m.args.queue_declare.auto_delete);
	CU_ASSERT_TRUE(m.args.queue_declare.no_wait); /* bits 5-7 unused and ignored */
	CU_ASSERT_EQUAL_FATAL(tq_amqp_method_decode(del, sizeof(del), &m, &err_off),
			      (ssize_t)sizeof(del));
	CU_ASSERT_FALSE(m.args.basic_deliver.redelivered); /* 0xfe: bit 0 clear */
	CU_ASSERT_TRUE(str_eq(m.args.basic_deliver.exchange, "x"));
	CU_ASSERT_EQUAL_FATAL(tq_amqp_method_decode(nack, sizeof(nack), &m, &err_off),
			      (ssize_t)sizeof(nack));
	CU_ASSERT_FALSE(m.args.basic_nack.multiple);
	CU_ASSERT_TRUE(m.args.basic_nack.requeue);
	/* and encoded back the same way */
	q.queue = (struct tq_amqp_str){(const uint8_t *)"q", 1};
	q.passive = q.exclusive = q.no_wait = true;
	CU_ASSERT_EQUAL(tq_amqp_encode_queue_declare(out, sizeof(out), 1, &q), 8 + 13);
	CU_ASSERT_EQUAL(out[7 + 8], 0x15);
	CU_ASSERT_EQUAL(tq_amqp_encode_basic_nack(out, sizeof(out), 1,
						  &(struct tq_amqp_basic_nack){3, true, true}), 8 + 13);
	CU_ASSERT_EQUAL(out[7 + 12], 0x03);
}

/* round trips of every method */

static uint8_t pool[1024];

/* Fill the argument struct of @mi with values that depend on @seed and the field. */
static void
fill_args(const struct tq_amqp_method_info *mi, void *args, unsigned int seed,
	  struct tq_amqp_table table)
{
	for (unsigned int i = 0; i < mi->nfields; i++) {
		uint8_t *dst = (uint8_t *)args + mi->fields[i].offset;
		unsigned int k = seed * 31 + i * 7;
		struct tq_amqp_str s;

		switch (mi->fields[i].type) {
		case TQ_AMQP_T_BIT: {
			bool v = (seed >> (i % 4)) & 1;

			memcpy(dst, &v, sizeof(v));
			break;
		}
		case TQ_AMQP_T_OCTET:
			*dst = (uint8_t)k;
			break;
		case TQ_AMQP_T_SHORT: {
			uint16_t v = (uint16_t)(k * 2654435761u >> 8);

			memcpy(dst, &v, sizeof(v));
			break;
		}
		case TQ_AMQP_T_LONG: {
			uint32_t v = k * 2654435761u;

			memcpy(dst, &v, sizeof(v));
			break;
		}
		case TQ_AMQP_T_LONGLONG:
		case TQ_AMQP_T_TIMESTAMP: {
			uint64_t v = (uint64_t)k * 0x9e3779b97f4a7c15ull;

			memcpy(dst, &v, sizeof(v));
			break;
		}
		case TQ_AMQP_T_SHORTSTR:
			s.p = pool + k % 64;
			s.len = seed == 3 ? 255 : k % 40; /* 255: the longest a shortstr holds */
			memcpy(dst, &s, sizeof(s));
			break;
		case TQ_AMQP_T_LONGSTR:
			s.p = pool + k % 100;
			s.len = seed == 3 ? 0 : 300 + k % 200;
			memcpy(dst, &s, sizeof(s));
			break;
		case TQ_AMQP_T_TABLE:
			memcpy(dst, &table, sizeof(table));
			break;
		default:
			break;
		}
	}
}

/* Compare the fields of two argument structs of @mi (spans by contents). */
static bool
args_equal(const struct tq_amqp_method_info *mi, const void *a, const void *b)
{
	for (unsigned int i = 0; i < mi->nfields; i++) {
		const uint8_t *x = (const uint8_t *)a + mi->fields[i].offset;
		const uint8_t *y = (const uint8_t *)b + mi->fields[i].offset;
		struct tq_amqp_str s, t;

		switch (mi->fields[i].type) {
		case TQ_AMQP_T_BIT:
			if (memcmp(x, y, sizeof(bool)))
				return false;
			break;
		case TQ_AMQP_T_OCTET:
			if (*x != *y)
				return false;
			break;
		case TQ_AMQP_T_SHORT:
			if (memcmp(x, y, 2))
				return false;
			break;
		case TQ_AMQP_T_LONG:
			if (memcmp(x, y, 4))
				return false;
			break;
		case TQ_AMQP_T_LONGLONG:
		case TQ_AMQP_T_TIMESTAMP:
			if (memcmp(x, y, 8))
				return false;
			break;
		default: /* strings and tables */
			memcpy(&s, x, sizeof(s));
			memcpy(&t, y, sizeof(t));
			if (s.len != t.len || (s.len && memcmp(s.p, t.p, s.len)))
				return false;
			break;
		}
	}
	return true;
}

static void
test_round_trip_every_method(void)
{
	static uint8_t frame[4096], tbuf[256];
	unsigned int checked = 0;

	for (size_t i = 0; i < sizeof(pool); i++)
		pool[i] = (uint8_t)(i * 37 + 11);
	for (unsigned int seed = 0; seed < 4; seed++) {
		struct tq_amqp_table table = {NULL, 0};
		struct tq_amqp_tb tb;

		if (seed) { /* an empty table first, then some entries */
			tq_amqp_tb_init(&tb, tbuf, sizeof(tbuf));
			tq_amqp_tb_cstr(&tb, "x-match", seed & 1 ? "all" : "any");
			tq_amqp_tb_i32(&tb, "x-priority", (int32_t)seed - 2);
			tq_amqp_tb_table_begin(&tb, "nested");
			tq_amqp_tb_bool(&tb, "deep", true);
			tq_amqp_tb_table_end(&tb);
			CU_ASSERT_EQUAL_FATAL(tq_amqp_tb_finish(&tb, &table), 0);
		}
		for (unsigned int i = 0; i < TQ_AMQP_METHOD_COUNT; i++) {
			const struct tq_amqp_method_info *mi = &tq_amqp_methods[i];
			union tq_amqp_args args;
			struct tq_amqp_method m;
			struct tq_amqp_frame f;
			size_t err_off = 0;
			ssize_t n, len;
			uint8_t *g;

			memset(&args, 0, sizeof(args));
			fill_args(mi, &args, seed, table);
			len = tq_amqp_method_len(mi, &args);
			CU_ASSERT_FATAL(len >= 12 && (size_t)len <= sizeof(frame));
			n = tq_amqp_method_encode(frame, sizeof(frame), (uint16_t)(seed + i), mi, &args);
			CU_ASSERT_EQUAL_FATAL(n, len);
			/* a buffer one byte short is refused, and nothing is written */
			memset(frame, 0xa5, sizeof(frame));
			CU_ASSERT_EQUAL(tq_amqp_method_encode(frame, (size_t)len - 1, 0, mi, &args),
					-ENOSPC);
			CU_ASSERT_EQUAL(frame[0], 0xa5);
			n = tq_amqp_method_encode(frame, (size_t)len, (uint16_t)(seed + i), mi, &args);
			CU_ASSERT_EQUAL_FATAL(n, len);
			g = tq_test_guarded(frame, (size_t)n);
			CU_ASSERT_EQUAL_FATAL(tq_amqp_frame_parse(g, (size_t)n, 0, &f, &err_off), n);
			CU_ASSERT_EQUAL(f.channel, (uint16_t)(seed + i));
			CU_ASSERT_EQUAL_FATAL(tq_amqp_method_decode(f.payload, f.size, &m, &err_off),
					      (ssize_t)f.size);
			CU_ASSERT_PTR_EQUAL(m.info, mi);
			if (!args_equal(mi, &args, &m.args))
				printf("\n  %s (seed %u) differs\n", mi->name, seed);
			CU_ASSERT_TRUE(args_equal(mi, &args, &m.args));
			tq_test_guard_free(g, (size_t)n);
			checked++;
		}
	}
	CU_ASSERT_EQUAL(checked, 4 * TQ_AMQP_METHOD_COUNT);
	/* what cannot be sent */
	{
		struct tq_amqp_basic_consume_ok co = {{pool, 256}};
		uint8_t out[512];

		CU_ASSERT_EQUAL(tq_amqp_encode_basic_consume_ok(out, sizeof(out), 1, &co), -EINVAL);
		co.consumer_tag.len = 255;
		CU_ASSERT_EQUAL(tq_amqp_encode_basic_consume_ok(out, sizeof(out), 1, &co),
				8 + 4 + 256);
	}
}

/* content headers */

/* A table with every tag, nested: a table in an array in a table. */
static int
build_every_tag(uint8_t *buf, size_t cap, struct tq_amqp_table *t)
{
	struct tq_amqp_tb b;

	tq_amqp_tb_init(&b, buf, cap);
	tq_amqp_tb_bool(&b, "t", true);
	tq_amqp_tb_i8(&b, "b", -5);
	tq_amqp_tb_u8(&b, "B", 250);
	tq_amqp_tb_i16(&b, "s", -30000);
	tq_amqp_tb_u16(&b, "u", 60000);
	tq_amqp_tb_i32(&b, "I", -2000000000);
	tq_amqp_tb_u32(&b, "i", 4000000000u);
	tq_amqp_tb_i64(&b, "l", -9000000000000000000ll);
	tq_amqp_tb_float(&b, "f", 1.25f);
	tq_amqp_tb_double(&b, "d", -2.5e300);
	tq_amqp_tb_decimal(&b, "D", 2, 31415);
	tq_amqp_tb_cstr(&b, "S", "long string");
	tq_amqp_tb_timestamp(&b, "T", 1700000000);
	tq_amqp_tb_void(&b, "V");
	tq_amqp_tb_bytes(&b, "x", "\0\1\2\3", 4);
	tq_amqp_tb_array_begin(&b, "A");
	tq_amqp_tb_i32(&b, NULL, 1);
	tq_amqp_tb_cstr(&b, NULL, "two");
	tq_amqp_tb_table_begin(&b, NULL);
	tq_amqp_tb_u8(&b, "three", 3);
	tq_amqp_tb_array_begin(&b, "empty");
	tq_amqp_tb_array_end(&b);
	tq_amqp_tb_table_end(&b);
	tq_amqp_tb_void(&b, NULL);
	tq_amqp_tb_array_end(&b);
	tq_amqp_tb_table_begin(&b, "F");
	tq_amqp_tb_table_end(&b);
	return tq_amqp_tb_finish(&b, t);
}

static void
check_every_tag(struct tq_amqp_table t)
{
	static const char tags[] = "tbBsuIilfdDSTVxAF";
	struct tq_amqp_value v, w;
	struct tq_amqp_iter it, ia;
	struct tq_amqp_str key;
	unsigned int n = 0;

	tq_amqp_table_iter(&it, t);
	while (tq_amqp_table_next(&it, &key, &v) == 1) {
		CU_ASSERT_FATAL(n < sizeof(tags) - 1);
		CU_ASSERT_EQUAL(v.tag, tags[n]); /* each entry is named after its tag */
		CU_ASSERT_TRUE(key.len == 1 && key.p[0] == tags[n]);
		n++;
	}
	CU_ASSERT_EQUAL(n, sizeof(tags) - 1);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "t", &v) == 1 && v.v.b);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "b", &v) == 1 && v.v.i == -5);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "B", &v) == 1 && v.v.u == 250);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "s", &v) == 1 && v.v.i == -30000);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "u", &v) == 1 && v.v.u == 60000);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "I", &v) == 1 && v.v.i == -2000000000);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "i", &v) == 1 && v.v.u == 4000000000u);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "l", &v) == 1 && v.v.i == -9000000000000000000ll);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "f", &v) == 1 && v.v.f == 1.25f);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "d", &v) == 1 && v.v.d == -2.5e300);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "D", &v) == 1 && v.v.dec.scale == 2 &&
		       v.v.dec.value == 31415);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "S", &v) == 1 && str_eq(v.v.str, "long string"));
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "T", &v) == 1 && v.v.u == 1700000000);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "x", &v) == 1 && v.v.str.len == 4 &&
		       memcmp(v.v.str.p, "\0\1\2\3", 4) == 0);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "F", &v) == 1 && v.v.table.len == 0);
	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_get(t, "A", &v), 1);
	tq_amqp_array_iter(&ia, v.v.table);
	CU_ASSERT_TRUE(tq_amqp_array_next(&ia, &w) == 1 && w.tag == 'I' && w.v.i == 1);
	CU_ASSERT_TRUE(tq_amqp_array_next(&ia, &w) == 1 && w.tag == 'S' && str_eq(w.v.str, "two"));
	CU_ASSERT_TRUE(tq_amqp_array_next(&ia, &w) == 1 && w.tag == 'F');
	CU_ASSERT_TRUE(tq_amqp_table_get(w.v.table, "three", &v) == 1 && v.v.u == 3);
	CU_ASSERT_TRUE(tq_amqp_table_get(w.v.table, "empty", &v) == 1 && v.tag == 'A' &&
		       v.v.table.len == 0);
	CU_ASSERT_TRUE(tq_amqp_array_next(&ia, &w) == 1 && w.tag == 'V');
	CU_ASSERT_EQUAL(tq_amqp_array_next(&ia, &w), 0);
	/* a table walk on an array and v.v. is refused */
	CU_ASSERT_TRUE(tq_amqp_table_next(&ia, &key, &w) < 0);
}

static void
test_content_header_all_properties(void)
{
	static uint8_t tbuf[512], frame[1024];
	struct tq_amqp_basic_props p = {0};
	struct tq_amqp_content_header h;
	struct tq_amqp_frame f;
	size_t err_off = 0;
	ssize_t n;
	uint8_t *g;

#define S(x) ((struct tq_amqp_str){(const uint8_t *)(x), sizeof(x) - 1})
	CU_ASSERT_EQUAL_FATAL(build_every_tag(tbuf, sizeof(tbuf), &p.headers), 0);
	p.flags = TQ_AMQP_BASIC_FLAGS_ALL;
	p.content_type = S("application/octet-stream");
	p.content_encoding = S("gzip");
	p.delivery_mode = 2;
	p.priority = 9;
	p.correlation_id = S("c-42");
	p.reply_to = S("replies");
	p.expiration = S("1000");
	p.message_id = S("m-42");
	p.timestamp = 0x0102030405060708ull;
	p.type = S("t");
	p.user_id = S("guest");
	p.app_id = S("bench");
	p.reserved = S("cluster");
#undef S
	n = tq_amqp_header_encode(frame, sizeof(frame), 9, 1ull << 33, &p);
	CU_ASSERT_EQUAL_FATAL(n, tq_amqp_header_len(&p));
	CU_ASSERT_EQUAL(tq_amqp_header_encode(frame, (size_t)n - 1, 9, 1, &p), -ENOSPC);
	g = tq_test_guarded(frame, (size_t)n);
	CU_ASSERT_EQUAL_FATAL(tq_amqp_frame_parse(g, (size_t)n, 0, &f, &err_off), n);
	CU_ASSERT_EQUAL_FATAL(tq_amqp_header_decode(f.payload, f.size, &h, &err_off),
			      (ssize_t)f.size);
	CU_ASSERT_EQUAL(h.body_size, 1ull << 33);
	CU_ASSERT_EQUAL(h.props.flags, TQ_AMQP_BASIC_FLAGS_ALL);
	CU_ASSERT_TRUE(str_eq(h.props.content_type, "application/octet-stream"));
	CU_ASSERT_TRUE(str_eq(h.props.content_encoding, "gzip"));
	CU_ASSERT_EQUAL(h.props.delivery_mode, 2);
	CU_ASSERT_EQUAL(h.props.priority, 9);
	CU_ASSERT_TRUE(str_eq(h.props.correlation_id, "c-42"));
	CU_ASSERT_TRUE(str_eq(h.props.reply_to, "replies"));
	CU_ASSERT_TRUE(str_eq(h.props.expiration, "1000"));
	CU_ASSERT_TRUE(str_eq(h.props.message_id, "m-42"));
	CU_ASSERT_EQUAL(h.props.timestamp, 0x0102030405060708ull);
	CU_ASSERT_TRUE(str_eq(h.props.type, "t"));
	CU_ASSERT_TRUE(str_eq(h.props.user_id, "guest"));
	CU_ASSERT_TRUE(str_eq(h.props.app_id, "bench"));
	CU_ASSERT_TRUE(str_eq(h.props.reserved, "cluster"));
	check_every_tag(h.props.headers);
	tq_test_guard_free(g, (size_t)n);

	/* no properties at all; then only some, absent ones read back empty */
	p.flags = 0;
	CU_ASSERT_EQUAL(tq_amqp_header_encode(frame, sizeof(frame), 1, 0, &p), 22);
	p.flags = TQ_AMQP_BASIC_PRIORITY_FLAG | TQ_AMQP_BASIC_APP_ID_FLAG;
	n = tq_amqp_header_encode(frame, sizeof(frame), 1, 5, &p);
	CU_ASSERT_EQUAL_FATAL(n, 22 + 1 + 6);
	CU_ASSERT_EQUAL(tq_amqp_header_decode(frame + 7, (size_t)n - 8, &h, &err_off), n - 8);
	CU_ASSERT_TRUE(h.props.priority == 9 && str_eq(h.props.app_id, "bench"));
	CU_ASSERT_TRUE(h.props.content_type.len == 0 && h.props.headers.len == 0);
	/* a flag the class does not define */
	p.flags = 0x0002;
	CU_ASSERT_EQUAL(tq_amqp_header_encode(frame, sizeof(frame), 1, 0, &p), -EINVAL);
}

static void
test_content_header_malformed(void)
{
	/* class 60, weight 0, body size 5, flags: delivery-mode, then the octet */
	uint8_t b[32] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x10, 0x00, 2};
	uint8_t cont[32] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x10, 0x01, 0x00, 0x00, 2};
	struct tq_amqp_content_header h;
	size_t err_off;

	CU_ASSERT_EQUAL(tq_amqp_header_decode(b, 15, &h, &err_off), 15);
	CU_ASSERT_EQUAL(h.props.delivery_mode, 2);
	/* a continuation word with nothing in it is accepted (spec 4.2.6.1) */
	CU_ASSERT_EQUAL(tq_amqp_header_decode(cont, 17, &h, &err_off), 17);
	CU_ASSERT_TRUE(h.props.flags == TQ_AMQP_BASIC_DELIVERY_MODE_FLAG &&
		       h.props.delivery_mode == 2);
	/* a continuation word announcing property 16 and up: basic has none */
	cont[14] = 0x80;
	CU_ASSERT_EQUAL(tq_amqp_header_decode(cont, 17, &h, &err_off), -TQ_AMQP_E_HEADER_FLAGS);
	CU_ASSERT_EQUAL(err_off, 14);
	/* a continuation bit without the word */
	CU_ASSERT_EQUAL(tq_amqp_header_decode(cont, 14, &h, &err_off), -TQ_AMQP_E_TRUNCATED);
	/* bit 1: the 15th property, undefined */
	b[13] = 0x02;
	CU_ASSERT_EQUAL(tq_amqp_header_decode(b, 15, &h, &err_off), -TQ_AMQP_E_HEADER_FLAGS);
	CU_ASSERT_EQUAL(err_off, 12);
	b[13] = 0;
	CU_ASSERT_EQUAL(tq_amqp_header_decode(b, 16, &h, &err_off), -TQ_AMQP_E_TRAILING);
	CU_ASSERT_EQUAL(tq_amqp_header_decode(b, 14, &h, &err_off), -TQ_AMQP_E_TRUNCATED);
	CU_ASSERT_EQUAL(tq_amqp_header_decode(b, 13, &h, &err_off), -TQ_AMQP_E_HEADER_SHORT);
	b[3] = 1; /* weight */
	CU_ASSERT_EQUAL(tq_amqp_header_decode(b, 15, &h, &err_off), -TQ_AMQP_E_HEADER_WEIGHT);
	b[3] = 0;
	b[1] = 10; /* connection has no content */
	CU_ASSERT_EQUAL(tq_amqp_header_decode(b, 15, &h, &err_off), -TQ_AMQP_E_HEADER_CLASS);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_HEADER_CLASS), TQ_AMQP_UNEXPECTED_FRAME);
}

/* tables */

static void
test_table_every_tag(void)
{
	static uint8_t buf[512], wire[600];
	struct tq_amqp_table t, d;
	size_t err_off = 0;
	uint8_t *g;

	CU_ASSERT_EQUAL_FATAL(build_every_tag(buf, sizeof(buf), &t), 0);
	check_every_tag(t);
	/* decoded from the wire (size prefix) against a guard page */
	wire[0] = (uint8_t)(t.len >> 24);
	wire[1] = (uint8_t)(t.len >> 16);
	wire[2] = (uint8_t)(t.len >> 8);
	wire[3] = (uint8_t)t.len;
	memcpy(wire + 4, t.p, t.len);
	g = tq_test_guarded(wire, t.len + 4);
	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_decode(g, t.len + 4, &d, &err_off),
			      (ssize_t)t.len + 4);
	check_every_tag(d);
	/* every shorter input is refused without reading beyond it */
	for (size_t n = 0; n < t.len + 4; n++) {
		uint8_t *h = tq_test_guarded(wire, n);

		CU_ASSERT_EQUAL(tq_amqp_table_decode(h, n, &d, &err_off), -TQ_AMQP_E_TABLE_SIZE);
		tq_test_guard_free(h, n);
	}
	tq_test_guard_free(g, t.len + 4);
	/* a table with every tag rebuilt value by value (tq_amqp_tb_value) is the same */
	{
		struct tq_amqp_value v;
		struct tq_amqp_str k;
		struct tq_amqp_iter it;
		struct tq_amqp_table r;
		struct tq_amqp_tb b;
		uint8_t again[512];
		char key[256];

		tq_amqp_tb_init(&b, again, sizeof(again));
		tq_amqp_table_iter(&it, t);
		while (tq_amqp_table_next(&it, &k, &v) == 1) {
			memcpy(key, k.p, k.len);
			key[k.len] = 0;
			tq_amqp_tb_value(&b, key, &v);
		}
		CU_ASSERT_EQUAL_FATAL(tq_amqp_tb_finish(&b, &r), 0);
		CU_ASSERT_TRUE(r.len == t.len && memcmp(r.p, t.p, t.len) == 0);
	}
}

/* A bool octet other than 0 and 1 is true (RabbitMQ reads any non-zero so); rebuilt as 1. */
static void
test_table_bool_not_canonical(void)
{
	const uint8_t wire[] = {0, 0, 0, 4, 1, 'a', 't', 0x11};
	struct tq_amqp_value v;
	struct tq_amqp_table t, r;
	struct tq_amqp_tb b;
	uint8_t out[8];
	size_t err_off;

	CU_ASSERT_EQUAL_FATAL(tq_amqp_table_decode(wire, sizeof(wire), &t, &err_off), 8);
	CU_ASSERT_TRUE(tq_amqp_table_get(t, "a", &v) == 1 && v.tag == 't' && v.v.b);
	tq_amqp_tb_init(&b, out, sizeof(out));
	tq_amqp_tb_value(&b, "a", &v);
	CU_ASSERT_EQUAL_FATAL(tq_amqp_tb_finish(&b, &r), 0);
	CU_ASSERT_TRUE(r.len == 4 && r.p[3] == 1);
}

static void
test_table_malformed(void)
{
	/* size 9: key "a", 'I' and 4 bytes = 7; then key "b" without its value */
	const uint8_t too_big[] = {0, 0, 0, 9, 1, 'a', 'I', 0, 0, 0, 1, 1, 'b'};
	/* size 5 cuts the long int */
	const uint8_t cut[] = {0, 0, 0, 5, 1, 'a', 'I', 0, 0, 0, 1};
	/* past the input */
	const uint8_t past[] = {0, 0, 1, 0, 1, 'a', 'V'};
	/* an unknown tag */
	const uint8_t bad_tag[] = {0, 0, 0, 3, 1, 'a', 'Z'};
	/* a key longer than the table */
	const uint8_t bad_key[] = {0, 0, 0, 3, 9, 'a', 'V'};
	/* a string longer than the table that holds it */
	const uint8_t bad_str[] = {0, 0, 0, 8, 1, 'a', 'S', 0, 0, 0, 9, 'x', 0, 0};
	/* an array whose size runs past its table */
	const uint8_t bad_arr[] = {0, 0, 0, 8, 1, 'a', 'A', 0, 0, 0, 2, 'V', 0, 0};
	/* the spec's 0-9-1 tags that RabbitMQ does not use */
	const uint8_t spec_tag[] = {0, 0, 0, 5, 1, 'a', 'U', 0, 1};
	struct tq_amqp_table t;
	size_t err_off = 0;

	CU_ASSERT_EQUAL(tq_amqp_table_decode(too_big, sizeof(too_big), &t, &err_off),
			-TQ_AMQP_E_TABLE_SIZE);
	CU_ASSERT_EQUAL(err_off, 13);
	CU_ASSERT_EQUAL(tq_amqp_table_decode(cut, sizeof(cut), &t, &err_off), -TQ_AMQP_E_TABLE_SIZE);
	CU_ASSERT_EQUAL(err_off, 6);
	CU_ASSERT_EQUAL(tq_amqp_table_decode(past, sizeof(past), &t, &err_off),
			-TQ_AMQP_E_TABLE_SIZE);
	CU_ASSERT_EQUAL(err_off, 0);
	CU_ASSERT_EQUAL(tq_amqp_table_decode(bad_tag, sizeof(bad_tag), &t, &err_off),
			-TQ_AMQP_E_TABLE_TAG);
	CU_ASSERT_EQUAL(err_off, 6);
	CU_ASSERT_EQUAL(tq_amqp_table_decode(bad_key, sizeof(bad_key), &t, &err_off),
			-TQ_AMQP_E_TABLE_SIZE);
	CU_ASSERT_EQUAL(tq_amqp_table_decode(bad_str, sizeof(bad_str), &t, &err_off),
			-TQ_AMQP_E_TABLE_SIZE);
	CU_ASSERT_EQUAL(err_off, 7);
	CU_ASSERT_EQUAL(tq_amqp_table_decode(bad_arr, sizeof(bad_arr), &t, &err_off),
			-TQ_AMQP_E_TABLE_SIZE);
	CU_ASSERT_EQUAL(tq_amqp_table_decode(spec_tag, sizeof(spec_tag), &t, &err_off),
			-TQ_AMQP_E_TABLE_TAG);
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_TABLE_TAG), TQ_AMQP_FRAME_ERROR);
	{
		/* in a method: queue.declare whose arguments table is too short */
		const uint8_t qd[] = {0, 50, 0, 10, 0, 0, 1, 'q', 0, 0, 0, 0, 9, 1, 'a', 'V'};
		struct tq_amqp_method m;

		CU_ASSERT_EQUAL(tq_amqp_method_decode(qd, sizeof(qd), &m, &err_off),
				-TQ_AMQP_E_TABLE_SIZE);
		CU_ASSERT_EQUAL(err_off, 9);
	}
}

/* Nested tables: TQ_AMQP_TABLE_DEPTH_MAX levels pass, one more is refused. */
static void
test_table_depth(void)
{
	static uint8_t wire[512];
	struct tq_amqp_table t;
	size_t err_off = 0;

	for (unsigned int depth = 1; depth <= TQ_AMQP_TABLE_DEPTH_MAX + 1; depth++) {
		/* each level: size, then key "k" and 'F' for the next, the last one empty */
		size_t off = 0;

		for (unsigned int l = 0; l < depth; l++) {
			uint32_t size = (depth - 1 - l) * 7;

			wire[off++] = (uint8_t)(size >> 24);
			wire[off++] = (uint8_t)(size >> 16);
			wire[off++] = (uint8_t)(size >> 8);
			wire[off++] = (uint8_t)size;
			if (l + 1 < depth) {
				wire[off++] = 1;
				wire[off++] = 'k';
				wire[off++] = 'F';
			}
		}
		if (depth <= TQ_AMQP_TABLE_DEPTH_MAX) {
			CU_ASSERT_EQUAL(tq_amqp_table_decode(wire, off, &t, &err_off), (ssize_t)off);
		} else {
			CU_ASSERT_EQUAL(tq_amqp_table_decode(wire, off, &t, &err_off),
					-TQ_AMQP_E_TABLE_DEPTH);
			CU_ASSERT_EQUAL(wire[err_off], 'F');
		}
	}
	/* arrays count too: table, then arrays inside arrays */
	{
		size_t off = 0;
		unsigned int levels = TQ_AMQP_TABLE_DEPTH_MAX; /* top table + 15 arrays + 1 */
		uint32_t inner = 0;

		/* build inside out: the innermost array is empty */
		static uint8_t tmp[512];
		size_t tlen = 0;

		for (unsigned int l = 0; l < levels; l++) {
			memmove(tmp + 5, tmp, tlen);
			tmp[0] = 'A';
			tmp[1] = (uint8_t)(inner >> 24);
			tmp[2] = (uint8_t)(inner >> 16);
			tmp[3] = (uint8_t)(inner >> 8);
			tmp[4] = (uint8_t)inner;
			tlen += 5;
			inner = (uint32_t)tlen;
		}
		wire[off++] = 0;
		wire[off++] = 0;
		wire[off++] = (uint8_t)((tlen + 2) >> 8);
		wire[off++] = (uint8_t)(tlen + 2);
		wire[off++] = 1;
		wire[off++] = 'a';
		memcpy(wire + off, tmp, tlen);
		off += tlen;
		CU_ASSERT_EQUAL(tq_amqp_table_decode(wire, off, &t, &err_off), -TQ_AMQP_E_TABLE_DEPTH);
	}
	CU_ASSERT_EQUAL(tq_amqp_err_reply(-TQ_AMQP_E_TABLE_DEPTH), TQ_AMQP_FRAME_ERROR);
}

static void
test_table_builder_errors(void)
{
	static uint8_t buf[256];
	struct tq_amqp_table t, full;
	struct tq_amqp_tb b;
	char long_key[300];

	tq_amqp_tb_init(&b, buf, sizeof(buf));
	tq_amqp_tb_array_begin(&b, "a");
	tq_amqp_tb_bool(&b, "key in an array", true);
	CU_ASSERT_EQUAL(tq_amqp_tb_finish(&b, &t), -EINVAL);

	tq_amqp_tb_init(&b, buf, sizeof(buf));
	tq_amqp_tb_bool(&b, NULL, true); /* no key in a table */
	CU_ASSERT_EQUAL(tq_amqp_tb_finish(&b, &t), -EINVAL);

	tq_amqp_tb_init(&b, buf, sizeof(buf));
	tq_amqp_tb_table_end(&b); /* nothing open */
	CU_ASSERT_EQUAL(tq_amqp_tb_finish(&b, &t), -EINVAL);

	tq_amqp_tb_init(&b, buf, sizeof(buf));
	tq_amqp_tb_table_begin(&b, "x");
	tq_amqp_tb_array_end(&b); /* not what is open */
	CU_ASSERT_EQUAL(tq_amqp_tb_finish(&b, &t), -EINVAL);

	tq_amqp_tb_init(&b, buf, sizeof(buf));
	tq_amqp_tb_table_begin(&b, "left open");
	CU_ASSERT_EQUAL(tq_amqp_tb_finish(&b, &t), -EINVAL);

	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = 0;
	tq_amqp_tb_init(&b, buf, sizeof(buf));
	tq_amqp_tb_void(&b, long_key);
	CU_ASSERT_EQUAL(tq_amqp_tb_finish(&b, &t), -EINVAL);

	tq_amqp_tb_init(&b, buf, sizeof(buf));
	for (unsigned int i = 0; i < TQ_AMQP_TABLE_DEPTH_MAX; i++)
		tq_amqp_tb_table_begin(&b, "n");
	CU_ASSERT_EQUAL(tq_amqp_tb_finish(&b, &t), -EINVAL);

	/* every short buffer: -ENOSPC, never a byte past @cap */
	CU_ASSERT_EQUAL_FATAL(build_every_tag(buf, sizeof(buf), &full), 0);
	for (size_t cap = 0; cap < full.len; cap++) {
		uint8_t *w = tq_test_guarded(buf, cap); /* writable, ending at a guard page */

		CU_ASSERT_EQUAL(build_every_tag(w, cap, &t), -ENOSPC);
		tq_test_guard_free(w, cap);
	}
}

static void
test_reply_codes(void)
{
	static const uint16_t soft[] = {311, 312, 313, 403, 404, 405, 406};
	static const uint16_t hard[] = {320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541};

	for (size_t i = 0; i < sizeof(soft) / sizeof(soft[0]); i++)
		CU_ASSERT_EQUAL(tq_amqp_reply_is_hard(soft[i]), 0);
	for (size_t i = 0; i < sizeof(hard) / sizeof(hard[0]); i++)
		CU_ASSERT_EQUAL(tq_amqp_reply_is_hard(hard[i]), 1);
	CU_ASSERT_EQUAL(tq_amqp_reply_is_hard(200), -1);
	CU_ASSERT_EQUAL(tq_amqp_reply_is_hard(999), -1);
	CU_ASSERT_STRING_EQUAL(tq_amqp_reply_name(404), "NOT_FOUND");
	CU_ASSERT_STRING_EQUAL(tq_amqp_reply_name(501), "FRAME_ERROR");
	CU_ASSERT_STRING_EQUAL(tq_amqp_reply_name(200), "REPLY_SUCCESS");
	CU_ASSERT_PTR_NULL(tq_amqp_reply_name(100));
	/* every decoding error has a code and closes the connection */
	for (int e = 1; e < TQ_AMQP_E_COUNT; e++) {
		uint16_t code = tq_amqp_err_reply(-e);

		CU_ASSERT_TRUE(code == 0 || tq_amqp_reply_is_hard(code) == 1);
		CU_ASSERT_TRUE(tq_amqp_err_closes_connection(-e));
		CU_ASSERT_PTR_NOT_NULL(tq_amqp_err_name(-e));
		CU_ASSERT_TRUE(strlen(tq_amqp_err_text(e)) > 0);
	}
	CU_ASSERT_STRING_EQUAL(tq_amqp_err_name(-TQ_AMQP_E_FRAME_END), "FRAME_END");
	CU_ASSERT_STRING_EQUAL(tq_amqp_err_name(-9999), "NONE"); /* out of range */
	CU_ASSERT_STRING_EQUAL(tq_amqp_err_name(INT_MIN), "NONE");
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_protocol_header),
		TQ_TEST(test_pika_handshake),
		TQ_TEST(test_pika_channel_methods),
		TQ_TEST(test_pika_content),
		TQ_TEST(test_librabbitmq),
		TQ_TEST(test_captured_reencode),
		TQ_TEST(test_server_methods),
		TQ_TEST(test_spec_tables),
		TQ_TEST(test_stream_many_frames_and_byte_at_a_time),
		TQ_TEST(test_frame_errors),
		TQ_TEST(test_truncated_at_every_length),
		TQ_TEST(test_unknown_class_and_method),
		TQ_TEST(test_arguments_malformed),
		TQ_TEST(test_bits_packing),
		TQ_TEST(test_round_trip_every_method),
		TQ_TEST(test_content_header_all_properties),
		TQ_TEST(test_content_header_malformed),
		TQ_TEST(test_table_every_tag),
		TQ_TEST(test_table_bool_not_canonical),
		TQ_TEST(test_table_malformed),
		TQ_TEST(test_table_depth),
		TQ_TEST(test_table_builder_errors),
		TQ_TEST(test_reply_codes),
	};

	if (CU_initialize_registry() != CUE_SUCCESS ||
	    TQ_SUITE("amqp_codec", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
