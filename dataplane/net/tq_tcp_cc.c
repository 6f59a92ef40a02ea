/* NewReno congestion control (RFC 5681, RFC 6582, RFC 6928 initial window). */
#include <string.h>

#include <rte_common.h>

#include "tq_tcp_cc.h"
#include "tq_tcp_var.h"

static uint32_t
flight(const struct tq_tcp_conn *c)
{
	return c->snd_max - c->snd_una;
}

static void
newreno_init(struct tq_tcp_conn *c)
{
	uint32_t floor = RTE_MAX(2u * c->snd_mss, 14600u);

	c->cwnd = RTE_MIN(10u * c->snd_mss, floor);
	c->ssthresh = UINT32_MAX / 2;
}

static void
newreno_on_ack(struct tq_tcp_conn *c, uint32_t acked)
{
	if (c->cwnd < c->ssthresh) /* slow start, appropriate byte counting with L = 1 MSS */
		c->cwnd += RTE_MIN(acked, (uint32_t)c->snd_mss);
	else /* congestion avoidance: about one MSS per RTT */
		c->cwnd += RTE_MAX(1u, (uint32_t)c->snd_mss * c->snd_mss / c->cwnd);
}

static void
newreno_on_loss(struct tq_tcp_conn *c)
{
	c->ssthresh = RTE_MAX(flight(c) / 2, 2u * c->snd_mss);
	c->cwnd = c->ssthresh + 3u * c->snd_mss;
}

/*
 * RFC 6582 3.2 step 3, option 1: cwnd = ssthresh. (Option 2, min(ssthresh, FlightSize +
 * SMSS), leaves one segment when the full ACK drained the flight, as it usually does: the
 * next round then waits on the peer's delayed ACK, 40 ms on Linux, for every loss.)
 * A burst of at most ssthresh follows; ssthresh is half the flight that saw the loss.
 */
static void
newreno_on_recovery_exit(struct tq_tcp_conn *c)
{
	c->cwnd = RTE_MAX(c->ssthresh, 2u * c->snd_mss);
}

static void
newreno_on_rto(struct tq_tcp_conn *c)
{
	c->ssthresh = RTE_MAX(flight(c) / 2, 2u * c->snd_mss);
	c->cwnd = c->snd_mss;
}

const struct tq_tcp_cc_ops tq_tcp_cc_newreno = {
	.name = "newreno",
	.init = newreno_init,
	.on_ack = newreno_on_ack,
	.on_loss = newreno_on_loss,
	.on_recovery_exit = newreno_on_recovery_exit,
	.on_rto = newreno_on_rto,
};

const struct tq_tcp_cc_ops *
tq_tcp_cc_find(const char *name)
{
	return strcmp(name, tq_tcp_cc_newreno.name) == 0 ? &tq_tcp_cc_newreno : NULL;
}
