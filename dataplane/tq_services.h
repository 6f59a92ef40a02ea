/*
 * Built-in TCP test services on the userspace stack: echo (RFC 862), discard (RFC 863)
 * and a chargen-like source (RFC 864). They show the TCP API at work and give operators
 * something to `nc` to. Enabled per port number from config [services].
 */
#ifndef TQ_SERVICES_H
#define TQ_SERVICES_H

#include <stdint.h>

struct tq_services_conf {
	uint16_t echo;    /* TCP port, 0 = off */
	uint16_t discard;
	uint16_t chargen;
};

/* Register the enabled services' listeners. Control thread, before the workers start. */
int tq_services_start(const struct tq_services_conf *conf);

#endif
