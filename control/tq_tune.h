/*
 * Live tuning: tachyonctl set KEY=VALUE / get KEY over the telemetry socket
 * (/tachyon/set, /tachyon/get; one at a time). The values are checked by the config's own
 * parser (tq_config_set on a copy of the settings in force), then applied where they live:
 *   dataplane.burst, .idle, .idle_polls, .idle_sleep_max_us: posted to every worker's ring
 *     (TQ_MSG_TUNE), taken at its next loop iteration;
 *   auth.iterations, .cache_ms, .fail_limit, .fail_window_ms, .fail_delay_ms: the user store,
 *     on the control thread (tq_cplane_call);
 *   log.level: DPDK's global log level (1 emergency .. 8 debug, or its name);
 *   tcp.*, mqtt.*, amqp.* below: settings that every worker reads in one shared struct
 *     (tq_tcp_cfg, tq_mqtt.conf, tq_amqp.conf). They change under the tune barrier: each
 *     worker gets TQ_TUNE_PARK and waits where it reads its ring, the telemetry thread
 *     changes the fields (and grows the workers' scratch buffers a larger limit needs),
 *     then lets them go (VPP's worker barrier). No worker reads while one writes, and the
 *     stack and brokers keep reading plain fields. A change costs every worker one pause
 *     of a loop iteration (up to idle_sleep_max_us for a sleeping one).
 * When a new value applies:
 *   tcp.delack_ms, rto_min_ms, rto_max_ms, rto_initial_ms, max_retries, msl_ms, syn_backlog:
 *     the next time the stack uses it, on every connection (an RTO at its next sample,
 *     rto_initial_ms for new connections);
 *   tcp.keepalive_s: connections established after; the others at their next keepalive
 *     timer. Not back to 0 (an armed timer would probe at once and give up): restart;
 *   tcp.rcv_buf: the next window of every connection; a smaller one never moves an
 *     advertised right edge back (window_field keeps rcv_adv);
 *   tcp.snd_buf: at once for every send queue (and AMQP's flow control);
 *   tcp.mss, wscale, timestamps, sack: connections opened after (tachyond opens none);
 *   mqtt.max_packet_size, receive_max: at once for every connection, announced in the v5
 *     CONNACK of new ones (a client told more may be disconnected if it uses it);
 *   mqtt.max_queued, max_topic_len, max_topic_levels, max_subs, max_retained,
 *     sys_interval: at once (the next message, SUBSCRIBE, retained store, $SYS update);
 *   mqtt.max_inflight: at once, lower only (sessions size their in-flight arrays from it);
 *   mqtt.allow_anonymous, max_keepalive, max_session_expiry, topic_alias_max: the next
 *     CONNECT (max_session_expiry: also the next DISCONNECT);
 *   amqp.frame_max, channel_max, heartbeat: the next connection.tune (new connections);
 *     a connection between tune and tune-ok when frame_max drops is refused.
 * Other settings need a restart (their owners size memory from them at start: tcp.max_conns,
 * ooo_max_segs, ports, pools, rings, max_sessions, max_queues); set says so.
 */
#ifndef TQ_TUNE_H
#define TQ_TUNE_H

struct tq_config;

/* Register the commands (control thread, boot). @cfg: the running configuration. */
int tq_tune_register(const struct tq_config *cfg);

#endif
