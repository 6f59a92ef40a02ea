/*
 * Big-endian loads and stores for the AMQP codec's own files (not an API): every caller
 * has checked the bounds before.
 */
#ifndef TQ_AMQP_WIRE_H
#define TQ_AMQP_WIRE_H

#include <stdint.h>

static inline uint16_t
tq_amqp_ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
tq_amqp_ld32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
tq_amqp_ld64(const uint8_t *p)
{
	return (uint64_t)tq_amqp_ld32(p) << 32 | tq_amqp_ld32(p + 4);
}

static inline uint8_t *
tq_amqp_st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static inline uint8_t *
tq_amqp_st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static inline uint8_t *
tq_amqp_st64(uint8_t *p, uint64_t v)
{
	tq_amqp_st32(p, (uint32_t)(v >> 32));
	return tq_amqp_st32(p + 4, (uint32_t)v);
}

#endif
