/*
 * Congestion control behind a small interface, so that algorithms (NewReno today, CUBIC
 * next) plug in without touching the state machine. The loss-recovery mechanics (fast
 * retransmit, NewReno partial ACKs, SACK holes, RTO go-back) stay in tq_tcp_input.c and
 * tq_tcp_timer.c; an algorithm only decides cwnd and ssthresh. Worker only.
 */
#ifndef TQ_TCP_CC_H
#define TQ_TCP_CC_H

#include <stdint.h>

struct tq_tcp_conn;

struct tq_tcp_cc_ops {
	const char *name;
	/* The handshake finished and snd_mss is known: set the initial window. */
	void (*init)(struct tq_tcp_conn *c);
	/* @acked new bytes were acknowledged outside loss recovery. */
	void (*on_ack)(struct tq_tcp_conn *c, uint32_t acked);
	/* Loss detected (3 duplicate ACKs or SACK): entering recovery. */
	void (*on_loss)(struct tq_tcp_conn *c);
	/* Recovery ended with a full ACK. */
	void (*on_recovery_exit)(struct tq_tcp_conn *c);
	/* The retransmission timer expired. */
	void (*on_rto)(struct tq_tcp_conn *c);
};

extern const struct tq_tcp_cc_ops tq_tcp_cc_newreno;

/* The algorithm called @name, or NULL. Any thread. */
const struct tq_tcp_cc_ops *tq_tcp_cc_find(const char *name);

#endif
