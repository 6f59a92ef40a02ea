/*
 * tachyon's commands on the DPDK telemetry socket, under /tachyon/. Callbacks run on
 * DPDK's telemetry thread: the ones that read take plain snapshots of worker counters
 * (no locks, possibly a few packets stale); the one that acts (ping) only posts to a
 * worker's inbound ring.
 */
#ifndef TQ_TELEMETRY_H
#define TQ_TELEMETRY_H

#include "tq_config.h"

/* Register every /tachyon/ command. Control thread, after the workers exist. */
int tq_telemetry_register(const struct tq_config *cfg);

/* Make every /tachyon/ command answer an error from now on (before workers are freed). */
void tq_telemetry_close(void);

/*
 * Post @m to every worker's ring, unless telemetry is closed (the workers may be gone).
 * Telemetry thread. 0, -ESHUTDOWN, or -ENOBUFS when a ring was full (the workers before it
 * got the message).
 */
struct tq_ring_msg;
int tq_telemetry_post_all(const struct tq_ring_msg *m);

#endif
