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
	if (!from->amqp->ob_head[dst] && tq_worker_post(tq_dp.workers[dst], &rm, NULL) == 0)
		return 0;
	/* the ring is full, or others wait for it already: in order behind them (ob_flush) */
	{
		struct tq_amqp_worker *wk = from->amqp;

		tq_worker_count(from, TQ_CTR_amqp_ring_full);
		op->next = NULL;
		if (wk->ob_tail[dst])
			wk->ob_tail[dst]->next = op;
		else
			wk->ob_head[dst] = op;
		wk->ob_tail[dst] = op;
		wk->ob_n++;
	}
	return 0;
}

void
tq_amqp_ob_wait(struct tq_amqp_conn *c)
{
	struct tq_amqp_worker *wk = c->w->amqp;

	if (c->ob_wait)
		return;
	c->ob_wait = true;
	/* a slot may be listed twice (its connection went, the next one waits too): bounded
	 * by falling back to a walk over every slot */
	if (wk->ob_nwait < wk->nslots)
		wk->ob_wait[wk->ob_nwait++] = c->slot;
	else
		wk->ob_wait_all = true;
}

void
tq_amqp_stall_wait(struct tq_amqp_conn *c)
{
	struct tq_amqp_worker *wk = c->w->amqp;

	if (wk->nstall < wk->nslots) /* else the tick's walk (tq_amqp_conns_unstall) finds it */
		wk->stall_wait[wk->nstall++] = c->slot;
}

/*
 * The loop: publishers stalled for want of memory read again, at most every millisecond and
 * once an eighth of the message pool is free (the tick alone made them wait 100 ms while the
 * queues drained in a few). A slot listed twice, or a stall that ended at the tick, costs a
 * look. Returns the work done.
 */
static unsigned int
stall_retry(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;
	struct rte_mempool *mp = tq_amqp.msg_pool;
	uint64_t now = tq_msg_now_ms();
	uint32_t k = wk->nstall;
	unsigned int n = 0;

	if (now == wk->stall_ms || tq_dp.stop)
		return 0;
	wk->stall_ms = now;
	if (rte_mempool_avail_count(mp) < mp->size / 8)
		return 0;
	while (k-- && wk->nstall) { /* those that stall again go back on top: k bounds it */
		struct tq_amqp_conn *c = wk->conns[wk->stall_wait[--wk->nstall]];

		if (c && c->stalled) {
			c->stalled = false;
			tq_amqp_conn_resume(c);
			n++;
		}
	}
	return n;
}

/*
 * The loop: operations that waited for a full ring go, in order per destination; once none
 * waits, the connections that stopped reading for them read on. Returns the work done.
 */
static unsigned int
ob_flush(struct tq_worker *w)
{
	struct tq_amqp_worker *wk = w->amqp;
	unsigned int n = 0;

	for (uint16_t d = 0; wk->ob_n && d < tq_dp.nb_workers; d++) {
		while (wk->ob_head[d]) {
			struct tq_amqp_op *op = wk->ob_head[d], *next = op->next;
			struct tq_ring_msg rm = {.type = TQ_MSG_AMQP_OP,
						 .b = (uint64_t)(uintptr_t)op};

			/* next is read before: once posted, the op is the receiver's */
			if (tq_worker_post(tq_dp.workers[d], &rm, NULL) < 0)
				break;
			wk->ob_head[d] = next;
			if (!next)
				wk->ob_tail[d] = NULL;
			wk->ob_n--;
			n++;
		}
	}
	if (tq_dp.stop) /* shutdown (drain_all): nothing is read any more */
		return n;
	/* resuming may fill the outbox again: then the rest wait for the next round */
	while (!wk->ob_n && wk->ob_nwait) {
		struct tq_amqp_conn *c = wk->conns[wk->ob_wait[--wk->ob_nwait]];

		if (c && c->ob_wait) {
			c->ob_wait = false;
			tq_amqp_conn_resume(c);
			n++;
		}
	}
	if (!wk->ob_n && !wk->ob_nwait && wk->ob_wait_all) {
		wk->ob_wait_all = false;
		for (uint32_t s = 0; s < wk->nslots && !wk->ob_n; s++) {
			struct tq_amqp_conn *c = wk->conns[s];

			if (c && c->ob_wait) {
				c->ob_wait = false;
				tq_amqp_conn_resume(c);
				n++;
			}
		}
		if (wk->ob_n) /* some may still wait: walk again next time */
			wk->ob_wait_all = true;
	}
	return n;
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
	case OP_CREDIT:
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
	/* policies changed (tq_amqp_policies_changed): this home's queues take them now */
	if (__atomic_load_n(&tq_amqp.policies_bump, __ATOMIC_ACQUIRE) != wk->policies_seen) {
		wk->policies_seen = __atomic_load_n(&tq_amqp.policies_bump, __ATOMIC_ACQUIRE);
		tq_amqp_queues_policies(w);
		n++;
	}
	while (wk->local_head) { /* what these post to us joins the end: run it too */
		struct tq_amqp_op *op = wk->local_head;

		wk->local_head = op->next;
		if (!wk->local_head)
			wk->local_tail = NULL;
		run_op(w, op);
		n++;
	}
	if (wk->ob_n || wk->ob_nwait || wk->ob_wait_all)
		n += ob_flush(w);
	if (wk->nstall)
		n += stall_retry(w);
	if (wk->ndirty) /* last: what the operations above wrote goes out together */
		n += tq_amqp_conns_flush(w);
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
	wk->snd_buf = tq_tcp_cfg.snd_buf;
	wk->conns = calloc(wk->nslots, sizeof(*wk->conns));
	wk->gens = calloc(wk->nslots, sizeof(*wk->gens));
	wk->ob_head = calloc(tq_dp.nb_workers, sizeof(*wk->ob_head));
	wk->ob_tail = calloc(tq_dp.nb_workers, sizeof(*wk->ob_tail));
	wk->ob_wait = calloc(wk->nslots, sizeof(*wk->ob_wait));
	wk->dirty = calloc(wk->nslots, sizeof(*wk->dirty));
	wk->stall_wait = calloc(wk->nslots, sizeof(*wk->stall_wait));
	if (!wk->scratch || !wk->conns || !wk->gens || !wk->ob_head || !wk->ob_tail ||
	    !wk->ob_wait || !wk->dirty || !wk->stall_wait)
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
	free(wk->ob_head); /* empty: drained at close (drain_all) */
	free(wk->ob_tail);
	free(wk->ob_wait);
	free(wk->dirty);
	free(wk->stall_wait);
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
	if ((rc = tq_amqp_admin_init()) < 0) /* its list of vhosts: "/" */
		goto fail;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if ((rc = worker_init(tq_dp.workers[i], conf)) < 0)
			goto fail;
	tq_worker_app_register(TQ_MSG_AMQP_OP, ring_op);
	tq_worker_app_register(TQ_MSG_AMQP_AUTH, tq_amqp_login_answer);
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
	tq_amqp_admin_close();
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

int
tq_amqp_broker_conf_get(struct tq_amqp_conf *out)
{
	if (!tq_amqp.conf.port)
		return -ENOTSUP;
	*out = tq_amqp.conf;
	return 0;
}

int
tq_amqp_broker_conf_apply(const struct tq_amqp_conf *next)
{
	if (!tq_amqp.conf.port)
		return -ENOTSUP;
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
		struct tq_amqp_worker *wk = tq_dp.workers[i]->amqp;
		uint8_t *p;

		if (!wk || wk->scratch_cap >= next->frame_max + 1024)
			continue;
		p = rte_realloc_socket(wk->scratch, next->frame_max + 1024, 0,
				       tq_dp.workers[i]->socket);
		if (!p)
			return -ENOMEM; /* the ones already grown are merely larger */
		wk->scratch = p;
		wk->scratch_cap = next->frame_max + 1024;
	}
	/* only what changes: other threads may read the rest */
	if (tq_amqp.conf.frame_max != next->frame_max)
		tq_amqp.conf.frame_max = next->frame_max;
	if (tq_amqp.conf.channel_max != next->channel_max)
		tq_amqp.conf.channel_max = next->channel_max;
	if (tq_amqp.conf.heartbeat != next->heartbeat)
		tq_amqp.conf.heartbeat = next->heartbeat;
	return 0;
}

void
tq_amqp_broker_tcp_tuned(uint32_t snd_buf)
{
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (tq_dp.workers[i]->amqp)
			tq_dp.workers[i]->amqp->snd_buf = snd_buf;
}
