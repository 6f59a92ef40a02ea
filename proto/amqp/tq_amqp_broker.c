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
void tq_amqp_memory_alarm(struct tq_worker *w);

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

	if (dst == from->id) { /* ours: no ring, but later in this loop iteration */
		struct tq_amqp_worker *wk = from->amqp;

		op->next = NULL;
		if (wk->local_tail)
			wk->local_tail->next = op;
		else
			wk->local_head = op;
		wk->local_tail = op;
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
run_op(struct tq_worker *w, struct tq_amqp_op *op)
{
	switch (op->kind) {
	case OP_ENQUEUE:
	case OP_CONSUME:
	case OP_CANCEL:
	case OP_SETTLE:
	case OP_GET:
	case OP_PURGE:
	case OP_DELETE:
	case OP_PAUSE:
		tq_amqp_queue_op(w, op);
		break;
	default:
		tq_amqp_chan_op(w, op);
	}
}

static void
ring_op(struct tq_worker *w, const struct tq_ring_msg *rm)
{
	run_op(w, (struct tq_amqp_op *)(uintptr_t)rm->b);
}

unsigned int
tq_amqp_local_run(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;
	unsigned int n = 0;

	if (!wk)
		return 0;
	while (wk->local_head) { /* what these post to us joins the end: run it too */
		struct tq_amqp_op *op = wk->local_head;

		wk->local_head = op->next;
		if (!wk->local_head)
			wk->local_tail = NULL;
		run_op(w, op);
		n++;
	}
	return n;
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
	tq_amqp_memory_alarm(w); /* before the stalled read on: they may fill memory again */
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
	tq_worker_app_poll(tq_amqp_local_run);
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

/* Shutdown: every ring and local list until nothing moves (workers stopped). */
static void
drain_all(void)
{
	unsigned int work;

	do {
		work = 0;
		for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
			if (tq_dp.workers[i] && tq_dp.workers[i]->amqp)
				work += tq_worker_drain_inbound(tq_dp.workers[i]) +
					tq_amqp_local_run(tq_dp.workers[i]);
	} while (work);
}

void
tq_amqp_broker_close(void)
{
	if (!tq_amqp.op_pool && !tq_amqp.msg_pool)
		return;
	drain_all();
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i] && tq_dp.workers[i]->amqp)
			tq_amqp_conns_free(tq_dp.workers[i]);
	drain_all(); /* what the channels gave back */
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
