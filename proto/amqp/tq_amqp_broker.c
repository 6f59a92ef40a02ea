/*
 * The AMQP broker's shared state and its place in the worker loop: configuration, pools,
 * each worker's AMQP part (connection slots, timer wheel, scratch), the ring hook for
 * cross-worker operations, shutdown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_lcore.h>
#include <rte_malloc.h>
#include <urcu/urcu-qsbr.h>

#include "dataplane/net/tq_tcp_var.h"
#include "routing/tq_exchange.h"
#include "tq_amqp_int.h"
#include "tq_amqp_home.h"
#include "tq_amqp_queue.h"

struct tq_amqp_global tq_amqp;

void tq_amqp_timer_fired(void *ctx, uint64_t user, uint32_t handle);
void tq_amqp_conns_unstall(struct tq_worker *w);

void
tq_amqp_conf_defaults(struct tq_amqp_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->frame_max = 131072;
	c->channel_max = 2047;
	c->heartbeat = 60;
	c->max_queues = 16384;
	c->op_pool = 65535;
	snprintf(c->default_user, sizeof(c->default_user), "guest");
	snprintf(c->default_pass, sizeof(c->default_pass), "guest");
}

struct tq_amqp_op *
tq_amqp_op_new(struct tq_worker *w, uint8_t kind)
{
	struct tq_amqp_op *op;

	if (rte_mempool_get(tq_amqp.op_pool, (void **)&op) < 0) {
		tq_worker_count(w, TQ_CTR_amqp_no_memory);
		return NULL;
	}
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	return op;
}

void
tq_amqp_op_free(struct tq_amqp_op *op)
{
	rte_mempool_put(tq_amqp.op_pool, op);
}

int
tq_amqp_post(struct tq_worker *from, uint16_t dst, struct tq_amqp_op *op)
{
	struct tq_ring_msg rm = {.type = TQ_MSG_AMQP_OP, .b = (uint64_t)(uintptr_t)op};

	if (dst == from->id) { /* ours: no ring */
		if (op->kind == OP_ENQUEUE || op->kind == OP_CONSUME || op->kind == OP_CANCEL ||
		    op->kind == OP_SETTLE || op->kind == OP_GET || op->kind == OP_PURGE ||
		    op->kind == OP_DELETE)
			tq_amqp_queue_op(from, op);
		else
			tq_amqp_chan_op(from, op);
		return 0;
	}
	if (tq_worker_post(tq_dp.workers[dst], &rm, from) < 0) {
		tq_worker_count(from, TQ_CTR_amqp_ring_full);
		tq_msg_unref(op->msg);
		tq_amqp_op_free(op);
		return -1;
	}
	return 0;
}

static void
ring_op(struct tq_worker *w, const struct tq_ring_msg *rm)
{
	struct tq_amqp_op *op = (struct tq_amqp_op *)(uintptr_t)rm->b;

	switch (op->kind) {
	case OP_ENQUEUE:
	case OP_CONSUME:
	case OP_CANCEL:
	case OP_SETTLE:
	case OP_GET:
	case OP_PURGE:
	case OP_DELETE:
		tq_amqp_queue_op(w, op);
		break;
	default:
		tq_amqp_chan_op(w, op);
	}
}

static void
amqp_tick(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;

	if (!wk)
		return;
	tq_timer_advance(&wk->wheel, (tq_msg_now_ms() - wk->wheel_t0_ms) / 100, tq_amqp_timer_fired,
			 w, 4096);
	tq_amqp_queues_tick(w);
	tq_amqp_conns_unstall(w);
	if (wk->xs_want) { /* off the fast path: room for what routing now reaches */
		struct tq_exchange_stats st;

		tq_exchange_counts(tq_amqp.xreg, &st);
		tq_exchange_scratch_reserve(wk->xs, (uint32_t)st.queues + 64,
					    (uint32_t)st.exchanges + 64);
		wk->xs_want = false;
	}
}

static int
worker_init(struct tq_worker *w, const struct tq_amqp_conf *conf)
{
	struct tq_amqp_worker *wk = rte_zmalloc_socket("tq_amqp_worker", sizeof(*wk),
						       RTE_CACHE_LINE_SIZE, w->socket);

	if (!wk)
		return -ENOMEM;
	w->amqp = wk;
	wk->scratch_cap = conf->frame_max + 1024;
	wk->scratch = rte_malloc_socket("tq_amqp_scratch", wk->scratch_cap, 0, w->socket);
	wk->nslots = tq_tcp_cfg.max_conns;
	wk->conns = calloc(wk->nslots, sizeof(*wk->conns));
	wk->gens = calloc(wk->nslots, sizeof(*wk->gens));
	if (!wk->scratch || !wk->conns || !wk->gens)
		return -ENOMEM;
	wk->xs = tq_exchange_scratch_create(1024, 256);
	if (!wk->xs)
		return -ENOMEM;
	for (unsigned int d = 0; d < TQ_AMQP_ROUTE_DEPTH; d++)
		if (!(wk->xr[d] = malloc(tq_amqp_xroute_size())))
			return -ENOMEM;
	wk->wheel_t0_ms = tq_msg_now_ms();
	return tq_timer_wheel_init(&wk->wheel, wk->nslots + 1024, 100 * 1000 * 1000, w->socket);
}

static void
worker_free(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;

	if (!wk)
		return;
	tq_timer_wheel_free(&wk->wheel);
	tq_exchange_scratch_free(wk->xs);
	for (unsigned int d = 0; d < TQ_AMQP_ROUTE_DEPTH; d++)
		free(wk->xr[d]);
	rte_free(wk->scratch);
	free(wk->conns);
	free(wk->gens);
	rte_free(wk);
	w->amqp = NULL;
}

int
tq_amqp_broker_start(const struct tq_amqp_conf *conf)
{
	int rc = -ENOMEM;

	if (!conf->port)
		return 0;
	tq_amqp.conf = *conf;
	tq_amqp.start_ms = tq_msg_now_ms();
	tq_amqp.op_pool = rte_mempool_create("tq_amqp_op", conf->op_pool, sizeof(struct tq_amqp_op),
					     256, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	tq_amqp.msg_pool = tq_msg_pool_create("tq_amqp_msg", 16383, SOCKET_ID_ANY);
	if (!tq_amqp.op_pool || !tq_amqp.msg_pool)
		goto fail;
	if ((rc = tq_amqp_queues_init(conf->max_queues)) < 0)
		goto fail;
	tq_amqp.xreg = tq_exchange_reg_create();
	if (!tq_amqp.xreg || (rc = tq_exchange_vhost_add(tq_amqp.xreg, "/", 1)) < 0)
		goto fail;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if ((rc = worker_init(tq_dp.workers[i], conf)) < 0)
			goto fail;
	tq_worker_app_register(TQ_MSG_AMQP_OP, ring_op);
	tq_amqp_bridge_init();
	tq_worker_app_tick(amqp_tick);
	rc = tq_tcp_listen((uint16_t)conf->port, &tq_amqp_app, NULL);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	tq_amqp_broker_close();
	return rc < 0 ? rc : -ENOMEM;
}

void tq_amqp_conns_free(struct tq_worker *w);

void
tq_amqp_broker_close(void)
{
	if (!tq_amqp.op_pool && !tq_amqp.msg_pool)
		return;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i] && tq_dp.workers[i]->amqp)
			while (tq_worker_drain_inbound(tq_dp.workers[i]))
				;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i] && tq_dp.workers[i]->amqp)
			tq_amqp_conns_free(tq_dp.workers[i]);
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++) /* what the channels gave back */
		if (tq_dp.workers[i] && tq_dp.workers[i]->amqp)
			while (tq_worker_drain_inbound(tq_dp.workers[i]))
				;
	tq_bridge_to_amqp = NULL;
	tq_amqp_queues_free(); /* before the registry: deleting queues unregisters them */
	tq_exchange_reg_destroy(tq_amqp.xreg);
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i])
			worker_free(tq_dp.workers[i]);
	urcu_qsbr_barrier();
	rte_mempool_free(tq_amqp.op_pool);
	rte_mempool_free(tq_amqp.msg_pool);
	memset(&tq_amqp, 0, sizeof(tq_amqp));
}

void
tq_amqp_broker_stats(struct tq_amqp_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!tq_amqp.op_pool)
		return;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i]->amqp)
			s->connections += tq_dp.workers[i]->amqp->connected;
	tq_amqp_queues_counts(&s->queues, &s->consumers, &s->messages_ready, &s->messages_unacked);
}
