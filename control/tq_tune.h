/*
 * Live tuning: tachyonctl set KEY=VALUE / get KEY over the telemetry socket
 * (/tachyon/set, /tachyon/get). The values are checked by the config's own parser
 * (tq_config_set on a scratch copy), then applied where they live:
 *   dataplane.burst, .idle, .idle_polls, .idle_sleep_max_us: posted to every worker's ring
 *     (TQ_MSG_TUNE), taken at its next loop iteration;
 *   auth.iterations, .cache_ms, .fail_limit, .fail_window_ms, .fail_delay_ms: the user store,
 *     on the control thread (tq_cplane_call);
 *   log.level: DPDK's global log level (1 emergency .. 8 debug, or its name).
 * Other settings need a restart (their owners size memory from them at start); set says so.
 */
#ifndef TQ_TUNE_H
#define TQ_TUNE_H

struct tq_config;

/* Register the commands (control thread, boot). @cfg: the running configuration. */
int tq_tune_register(const struct tq_config *cfg);

#endif
