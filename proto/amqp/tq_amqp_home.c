/*
 * Queues on their home worker: the queue table, and every operation a queue takes
 * (enqueue, consume, cancel, settle, get, purge, delete) applied to its tq_aqueue, then the
 * dispatch that follows, each delivery posted to the consumer's worker, dead letters
 * republished through the dead-letter exchange with x-death. Runs on the home worker only,
 * except the table's lookups (any worker) and its creation (under the table lock).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "tq_amqp_home.h"
#include "tq_amqp_queue.h"

struct tq_amqp_queue **tq_amqp_queues; /* [max_queues]; entries written under the lock */
uint32_t tq_amqp_nqueues;
pthread_mutex_t tq_amqp_qlock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *qgens;

int
tq_amqp_queues_init(uint32_t max_queues)
{
	tq_amqp_queues = calloc(max_queues, sizeof(*tq_amqp_queues));
	qgens = calloc(max_queues, sizeof(*qgens));
	if (!tq_amqp_queues || !qgens)
		return -ENOMEM;
	tq_amqp_nqueues = max_queues;
	return 0;
}

static void
queue_free(struct tq_amqp_queue *q)
{
	tq_aqueue_destroy(q->aq);
	free(q->cons);
	free(q);
}

void
tq_amqp_queues_free(void)
{
	if (tq_amqp_queues)
		for (uint32_t i = 0; i < tq_amqp_nqueues; i++)
			if (tq_amqp_queues[i])
				queue_free(tq_amqp_queues[i]);
	free(tq_amqp_queues);
	free(qgens);
	tq_amqp_queues = NULL;
	qgens = NULL;
	tq_amqp_nqueues = 0;
}

static void
release_msg(void *ctx, void *msg)
{
	(void)ctx;
	tq_msg_unref(msg);
}

struct tq_amqp_queue *
tq_amqp_queue_create(const struct tq_amqp_queue *tmpl, uint16_t home)
{
	struct tq_amqp_queue *q = calloc(1, sizeof(*q));
	uint32_t i;

	if (!q)
		return NULL;
	/* identity, arguments and settings; the runtime state stays zero */
	memcpy(q->vhost, tmpl->vhost, sizeof(q->vhost));
	memcpy(q->name, tmpl->name, sizeof(q->name));
	q->name_len = tmpl->name_len;
	q->durable = tmpl->durable;
	q->exclusive = tmpl->exclusive;
	q->auto_delete = tmpl->auto_delete;
	q->owner = tmpl->owner;
	memcpy(q->group_header, tmpl->group_header, sizeof(q->group_header));
	q->args = tmpl->args;
	q->expires_ms = tmpl->expires_ms;
	memcpy(q->dlx, tmpl->dlx, sizeof(q->dlx));
	q->dlx_len = tmpl->dlx_len;
	memcpy(q->dlrk, tmpl->dlrk, sizeof(q->dlrk));
	q->dlrk_len = tmpl->dlrk_len;
	q->has_dlrk = tmpl->has_dlrk;
	q->eff = tmpl->eff;
	q->policy_gen = tmpl->policy_gen;
	memcpy(q->policy, tmpl->policy, sizeof(q->policy));
	q->conf = tmpl->conf;
	q->conf.release = release_msg;
	q->aq = tq_aqueue_create(&q->conf);
	if (!q->aq) {
		free(q);
		return NULL;
	}
	q->home = home;
	q->last_used_ms = tq_msg_now_ms();
	pthread_mutex_lock(&tq_amqp_qlock);
	for (i = 0; i < tq_amqp_nqueues && tq_amqp_queues[i]; i++)
		;
	if (i == tq_amqp_nqueues) {
		pthread_mutex_unlock(&tq_amqp_qlock);
		tq_aqueue_destroy(q->aq);
		free(q);
		errno = ENOSPC;
		return NULL;
	}
	q->idx = i;
	q->gen = ++qgens[i];
	__atomic_store_n(&tq_amqp_queues[i], q, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&tq_amqp_qlock);
	return q;
}

struct tq_amqp_queue *
tq_amqp_queue_get(uint32_t idx, uint32_t gen)
{
	struct tq_amqp_queue *q;

	if (idx >= tq_amqp_nqueues)
		return NULL;
	q = __atomic_load_n(&tq_amqp_queues[idx], __ATOMIC_ACQUIRE);
	return q && q->gen == gen && !__atomic_load_n(&q->deleted, __ATOMIC_ACQUIRE) ? q : NULL;
}

int
tq_amqp_queue_post(struct tq_worker *w, struct tq_amqp_op *op)
{
	struct tq_amqp_queue *q = tq_amqp_queue_get(op->qidx, op->qgen);

	if (!q) {
		tq_worker_count(w, TQ_CTR_amqp_stale_ops);
		if (op->kind == OP_GET) { /* the requester waits for an answer: get-empty */
			op->kind = OP_GET_REPLY;
			op->a = UINT64_MAX;
			op->b = 0;
			return tq_amqp_post(w, TQ_AMQP_H_WORKER(op->handle), op);
		}
		if ((op->kind == OP_PURGE || op->kind == OP_DELETE) && !(op->b & 0x200)) {
			op->b = (uint64_t)op->kind << 16 | (op->b & 0x1ff);
			op->kind = OP_REPLY;
			op->a = (uint64_t)-ENOENT;
			return tq_amqp_post(w, TQ_AMQP_H_WORKER(op->handle), op);
		}
		tq_msg_unref(op->msg);
		tq_amqp_op_free(op);
		return -1;
	}
	return tq_amqp_post(w, q->home, op);
}

/* -- home side ----------------------------------------------------------------------- */

static struct tq_amqp_qcons *
cons_find(struct tq_amqp_queue *q, uint64_t handle, uint8_t ci)
{
	for (uint32_t i = 0; i < q->ncons; i++)
		if (q->cons[i].handle == handle && q->cons[i].ci == ci)
			return &q->cons[i];
	return NULL;
}

static struct tq_amqp_qcons *
cons_by_id(struct tq_amqp_queue *q, uint64_t id)
{
	for (uint32_t i = 0; i < q->ncons; i++)
		if (q->cons[i].id == id)
			return &q->cons[i];
	return NULL;
}

/* The atomics others read, and what the queue dropped by itself into our counters. */
static void
counts_w(struct tq_worker *w, struct tq_amqp_queue *q)
{
	struct tq_aqueue_stats st;

	tq_aqueue_stats(q->aq, &st);
	if (!q->conf.dead_letter) { /* with a DLX they are dead-lettered, counted there */
		w->ctr[TQ_CTR_amqp_expired] += st.expired - q->seen_expired;
		w->ctr[TQ_CTR_amqp_maxlen_dropped] += st.dropped - q->seen_dropped;
	}
	q->seen_expired = st.expired;
	q->seen_dropped = st.dropped;
	__atomic_store_n(&q->n_ready, tq_aqueue_ready(q->aq), __ATOMIC_RELAXED);
	__atomic_store_n(&q->n_unacked, tq_aqueue_unacked(q->aq), __ATOMIC_RELAXED);
	__atomic_store_n(&q->n_consumers, tq_aqueue_consumers(q->aq), __ATOMIC_RELAXED);
}


static void dead_letters(struct tq_worker *w, struct tq_amqp_queue *q);

/* A consumer takes deliveries while its channel's prefetch and its credit allow. */
static void
cons_pause_update(struct tq_amqp_queue *q, const struct tq_amqp_qcons *k)
{
	tq_aqueue_consumer_pause(q->aq, k->id, k->chan_paused || k->credit <= 0);
}

/*
 * Hand out what can go now. The operations come first (a batch from the pool), then as many
 * deliveries as there are operations: a no-ack delivery is the queue's no more once handed
 * out, so it must never meet an empty pool. None at all: the tick tries again (starved).
 */
static void
dispatch(struct tq_worker *w, struct tq_amqp_queue *q)
{
	struct tq_aqueue_delivery d[32];
	struct tq_amqp_op *ops[RTE_DIM(d)];
	unsigned int n, want;

	do {
		want = RTE_DIM(d);
		while (want && rte_mempool_get_bulk(tq_amqp.op_pool, (void **)ops, want) < 0)
			want /= 2;
		if (!want) {
			tq_worker_count(w, TQ_CTR_amqp_no_memory);
			q->starved = true;
			break;
		}
		n = tq_aqueue_dispatch(q->aq, tq_msg_now_ms(), d, want);
		for (unsigned int i = 0; i < n; i++) {
			struct tq_amqp_qcons *k = cons_by_id(q, d[i].consumer);
			struct tq_amqp_op *op = ops[i];
			struct tq_msg *m = d[i].msg;

			memset(op, 0, sizeof(*op));
			op->kind = OP_DELIVER;
			if (!k) { /* cannot happen: tq_aqueue knows only the consumers in q->cons */
				tq_amqp_op_free(op);
				if (d[i].settled)
					tq_msg_unref(m);
				else
					tq_aqueue_consumer_remove(q->aq, d[i].consumer);
				continue;
			}
			if (!d[i].settled)
				tq_msg_ref(m); /* the queue keeps its own until the ack */
			op->msg = m;
			op->qidx = q->idx;
			op->qgen = q->gen;
			op->handle = k->handle;
			op->a = d[i].settled ? UINT64_MAX : d[i].delivery_id;
			op->b = k->ci | (uint64_t)d[i].redelivered << 8 | (uint64_t)k->no_ack << 16;
			if (k->credit-- == 1) /* the last it had: it waits for OP_CREDIT */
				cons_pause_update(q, k);
			tq_amqp_post(w, TQ_AMQP_H_WORKER(k->handle), op);
		}
		if (n < want)
			rte_mempool_put_bulk(tq_amqp.op_pool, (void **)(ops + n), want - n);
	} while (n == want);
	dead_letters(w, q);
	counts_w(w, q);
}

/* A queue that never was registered (declare lost a race, or failed). */
void
tq_amqp_queue_discard(struct tq_amqp_queue *q)
{
	__atomic_store_n(&q->deleted, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&tq_amqp_qlock);
	tq_amqp_queues[q->idx] = NULL;
	pthread_mutex_unlock(&tq_amqp_qlock);
	tq_amqp_queue_retire(q);
}

/* The queue goes: consumers hear basic.cancel, messages are released. */
static void
queue_delete(struct tq_worker *w, struct tq_amqp_queue *q)
{
	for (uint32_t i = 0; i < q->ncons; i++) {
		struct tq_amqp_op *op = tq_amqp_op_new(w, OP_CANCELLED);

		if (!op)
			continue;
		op->handle = q->cons[i].handle;
		op->b = q->cons[i].ci;
		tq_amqp_post(w, TQ_AMQP_H_WORKER(op->handle), op);
	}
	q->ncons = 0;
	tq_amqp_unregister_queue(q); /* bindings and name */
	__atomic_store_n(&q->deleted, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&tq_amqp_qlock);
	tq_amqp_queues[q->idx] = NULL;
	pthread_mutex_unlock(&tq_amqp_qlock);
	/* other workers may still hold q from a lookup a moment ago: free after a grace */
	tq_amqp_queue_retire(q);
}

static void
queue_free_rcu(struct rcu_head *head)
{
	queue_free(caa_container_of(head, struct tq_amqp_queue, rcu));
}

/* Workers look queues up and use them within one loop iteration (QSBR read side). */
void
tq_amqp_queue_retire(struct tq_amqp_queue *q)
{
	urcu_qsbr_call_rcu(&q->rcu, queue_free_rcu);
}

static uint64_t
group_key(const struct tq_amqp_queue *q, const struct tq_msg *m)
{
	struct tq_amqp_content_header h;
	struct tq_amqp_value v;
	size_t off;
	uint64_t hash = 1469598103934665603ull;

	if (!q->conf.message_groups || !m->amqp ||
	    tq_amqp_header_decode(tq_msg_amqp_header(m), m->props_len, &h, &off) < 0 ||
	    !(h.props.flags & TQ_AMQP_BASIC_HEADERS_FLAG) ||
	    tq_amqp_table_get(h.props.headers, q->group_header, &v) != 1 ||
	    (v.tag != TQ_AMQP_V_STR && v.tag != TQ_AMQP_V_BYTES))
		return TQ_AQUEUE_GROUP_NONE;
	for (uint32_t i = 0; i < v.v.str.len; i++)
		hash = (hash ^ v.v.str.p[i]) * 1099511628211ull;
	return hash ? hash : 1;
}

/* The answer to a purge or delete (b keeps the request's flags, gains its kind << 16). */
static void
reply(struct tq_worker *w, struct tq_amqp_op *op, uint8_t kind, int64_t result)
{
	tq_msg_unref(op->msg);
	op->msg = NULL;
	if (op->b & TQ_AMQP_OP_CTL) { /* the control thread asked (tq_amqp_admin_purge) */
		tq_amqp_ctl_done(op, result);
		return;
	}
	if ((op->kind == OP_DELETE || op->kind == OP_PURGE) && (op->b & 0x200)) {
		/* nobody waits (an exclusive queue's connection went) */
		tq_amqp_op_free(op);
		return;
	}
	op->b = (uint64_t)op->kind << 16 | (op->b & 0x1ff);
	op->kind = kind;
	op->a = (uint64_t)result;
	tq_amqp_post(w, TQ_AMQP_H_WORKER(op->handle), op);
}

void
tq_amqp_queue_op(struct tq_worker *w, struct tq_amqp_op *op)
{
	struct tq_amqp_queue *q = tq_amqp_queue_get(op->qidx, op->qgen);
	uint64_t now = tq_msg_now_ms();

	if (!q || q->home != w->id) {
		if (q) { /* cannot happen: queues do not move */
			tq_amqp_post(w, q->home, op);
			return;
		}
		tq_worker_count(w, TQ_CTR_amqp_stale_ops);
		if (op->kind == OP_ENQUEUE && op->a) { /* confirmed: it reached a queue that went */
			tq_msg_unref(op->msg);
			op->msg = NULL;
			op->kind = OP_CONFIRM;
			op->b = 0;
			tq_amqp_post(w, TQ_AMQP_H_WORKER(op->handle), op);
			op = NULL;
		} else if (op->kind == OP_GET) {
			op->kind = OP_GET_REPLY;
			tq_msg_unref(op->msg);
			op->msg = NULL;
			op->a = UINT64_MAX;
			op->b = 0;
			tq_amqp_post(w, TQ_AMQP_H_WORKER(op->handle), op);
			op = NULL;
		} else if (op->kind == OP_PURGE || op->kind == OP_DELETE) {
			reply(w, op, OP_REPLY, -ENOENT);
			op = NULL;
		}
		if (op) {
			tq_msg_unref(op->msg);
			tq_amqp_op_free(op);
		}
		return;
	}
	q->last_used_ms = now;
	switch (op->kind) {
	case OP_ENQUEUE: {
		struct tq_msg *m = op->msg;
		struct tq_aqueue_msg_attr at = {
			.size = m->payload_len,
			.priority = m->priority,
			.ttl_ms = m->amqp && m->props.present == 1 ? m->props.message_expiry
								   : TQ_AQUEUE_TTL_NONE,
			.group = group_key(q, m),
		};
		int rc;

		op->msg = NULL;
		rc = tq_aqueue_publish(q->aq, m, &at, now);
		if (rc == 0) {
			tq_worker_count(w, TQ_CTR_amqp_enqueued);
		} else {
			tq_worker_count(w, TQ_CTR_amqp_rejected_publish);
			if (rc != TQ_AQUEUE_REFUSED_DEAD)
				tq_msg_unref(m);
		}
		dispatch(w, q);
		if (op->a) { /* confirm (a: its sequence): ack, or nack when the queue refused it */
			op->kind = OP_CONFIRM;
			op->b = rc != 0;
			tq_amqp_post(w, TQ_AMQP_H_WORKER(op->handle), op);
		} else {
			tq_amqp_op_free(op);
		}
		return;
	}
	case OP_CONSUME: {
		struct tq_aqueue_consumer_conf cc = {
			.id = ++q->next_cons_id,
			.priority = (int32_t)(uint32_t)(op->b >> 32),
			.prefetch = (uint16_t)(op->b >> 16),
			.no_ack = op->b >> 8 & 1,
			.exclusive = op->b >> 9 & 1,
		};
		struct tq_amqp_qcons *k;

		if (q->ncons == q->cons_cap) {
			uint32_t cap = q->cons_cap ? q->cons_cap * 2 : 4;
			struct tq_amqp_qcons *n = realloc(q->cons, cap * sizeof(*n));

			if (!n)
				break;
			q->cons = n;
			q->cons_cap = cap;
		}
		if (tq_aqueue_consumer_add(q->aq, &cc) < 0) { /* exclusive conflict: 403 */
			reply(w, op, OP_REPLY, -EBUSY);
			return;
		}
		k = &q->cons[q->ncons++];
		k->id = cc.id;
		k->handle = op->handle;
		k->ci = (uint8_t)op->b;
		k->no_ack = cc.no_ack;
		k->chan_paused = false;
		k->credit = TQ_AMQP_CREDIT;
		q->had_consumer = true;
		reply(w, op, OP_REPLY, 0); /* consume-ok goes before the first delivery */
		dispatch(w, q);
		return;
	}
	case OP_CANCEL: {
		struct tq_amqp_qcons *k = cons_find(q, op->handle, (uint8_t)op->b);

		if (k) {
			tq_aqueue_consumer_remove(q->aq, k->id);
			*k = q->cons[--q->ncons];
		}
		if (q->auto_delete && q->had_consumer && q->ncons == 0) {
			queue_delete(w, q);
			break;
		}
		dispatch(w, q);
		break;
	}
	case OP_SETTLE: {
		uint8_t mode = (uint8_t)op->b, ci = (uint8_t)(op->b >> 8);
		uint64_t cid;
		struct tq_amqp_qcons *k;

		if (ci == 0xff) {
			cid = op->handle | 1ull << 63; /* a basic.get's pseudo-consumer */
		} else {
			k = cons_find(q, op->handle, ci);
			/* its consumer went: tq_aqueue requeued the message already */
			if (!k)
				break;
			cid = k->id;
		}
		if (mode == SETTLE_ACK)
			tq_aqueue_ack(q->aq, cid, op->a, false);
		else
			tq_aqueue_nack(q->aq, cid, op->a, false, mode == SETTLE_REQUEUE);
		dispatch(w, q);
		break;
	}
	case OP_PAUSE: {
		struct tq_amqp_qcons *k = cons_find(q, op->handle, (uint8_t)op->b);

		if (k) {
			k->chan_paused = op->b >> 8 & 1;
			cons_pause_update(q, k);
		}
		dispatch(w, q);
		break;
	}
	case OP_CREDIT: {
		struct tq_amqp_qcons *k = cons_find(q, op->handle, (uint8_t)op->b);
		int32_t before;

		if (!k) /* it went: what it had in flight went back with it */
			break;
		/* never above the window: a consumer that replaced one of the same channel and
		 * index may get its predecessor's late credit */
		before = k->credit;
		k->credit = (int32_t)RTE_MIN((int64_t)before + (int64_t)op->a,
					     (int64_t)TQ_AMQP_CREDIT);
		if (before <= 0 && k->credit > 0) {
			cons_pause_update(q, k);
			dispatch(w, q);
		}
		break;
	}
	case OP_GET: {
		struct tq_aqueue_delivery d;
		bool no_ack = op->b & 1;
		/* lent even for no-ack (acked once get-ok is out): nothing is lost when the
		 * channel cannot send it (tq_amqp_chan_op) */
		int rc = tq_aqueue_get(q->aq, now, op->handle | 1ull << 63, false, &d);

		op->kind = OP_GET_REPLY;
		if (rc == 1) {
			tq_msg_ref(d.msg);
			op->msg = d.msg;
			op->a = d.delivery_id;
			op->b = tq_aqueue_ready(q->aq) | (uint64_t)no_ack << 62 |
				(uint64_t)d.redelivered << 63;
		} else {
			op->msg = NULL;
			op->a = UINT64_MAX;
			op->b = 0;
		}
		dead_letters(w, q);
		counts_w(w, q);
		tq_amqp_post(w, TQ_AMQP_H_WORKER(op->handle), op);
		return;
	}
	case OP_PURGE:
		reply(w, op, OP_REPLY, (int64_t)tq_aqueue_purge(q->aq));
		counts_w(w, q);
		return;
	case OP_DELETE: {
		bool if_unused = op->b & 1, if_empty = op->b & 2;
		uint64_t n = tq_aqueue_ready(q->aq);

		if (if_unused && q->ncons) {
			reply(w, op, OP_REPLY, -EBUSY);
			return;
		}
		if (if_empty && (n || tq_aqueue_unacked(q->aq))) {
			reply(w, op, OP_REPLY, -ENOTEMPTY);
			return;
		}
		queue_delete(w, q);
		reply(w, op, OP_REPLY, (int64_t)n);
		return;
	}
	}
	tq_msg_unref(op->msg);
	tq_amqp_op_free(op);
}

/* Dead letters go to the dead-letter exchange with an x-death entry (RabbitMQ's format). */
static void
dead_letters(struct tq_worker *w, struct tq_amqp_queue *q)
{
	struct tq_aqueue_dead d[16];
	unsigned int n;

	if (!q->conf.dead_letter)
		return;
	while ((n = tq_aqueue_take_dead(q->aq, d, RTE_DIM(d))) > 0) {
		for (unsigned int i = 0; i < n; i++) {
			struct tq_msg *m = d[i].msg;

			tq_worker_count(w, TQ_CTR_amqp_dead_lettered);
			tq_amqp_dead_letter(w, q, m, tq_aqueue_reason_name(d[i].reason));
			tq_msg_unref(m);
		}
	}
}

/* -- policies: a queue's settings are its arguments merged with the policy that applies -- */

/* @q's settings from @eff; @create: its priority levels too (fixed once it lives). */
static void
settings_from(struct tq_amqp_queue *q, const struct tq_policy_def *eff, bool create)
{
	struct tq_aqueue_conf *c = &q->conf;
	size_t n;

	c->message_ttl = eff->set & TQ_POL_MESSAGE_TTL ? eff->message_ttl : TQ_AQUEUE_TTL_NONE;
	c->max_length = eff->set & TQ_POL_MAX_LENGTH ? eff->max_length : TQ_AQUEUE_UNLIMITED;
	c->max_length_bytes = eff->set & TQ_POL_MAX_LENGTH_BYTES ? eff->max_length_bytes
								  : TQ_AQUEUE_UNLIMITED;
	c->overflow = !(eff->set & TQ_POL_OVERFLOW)			    ? TQ_AQUEUE_DROP_HEAD
		      : eff->overflow == TQ_OVERFLOW_REJECT_PUBLISH	    ? TQ_AQUEUE_REJECT_PUBLISH
		      : eff->overflow == TQ_OVERFLOW_REJECT_PUBLISH_DLX ? TQ_AQUEUE_REJECT_PUBLISH_DLX
									    : TQ_AQUEUE_DROP_HEAD;
	q->expires_ms = eff->set & TQ_POL_EXPIRES ? eff->expires : 0;
	c->dead_letter = eff->set & TQ_POL_DLX;
	n = c->dead_letter ? strnlen(eff->dlx, TQ_POLICY_STR_MAX) : 0;
	memcpy(q->dlx, eff->dlx, n);
	q->dlx_len = (uint8_t)n;
	q->has_dlrk = c->dead_letter && (eff->set & TQ_POL_DLRK);
	n = q->has_dlrk ? strnlen(eff->dlrk, TQ_POLICY_STR_MAX) : 0;
	memcpy(q->dlrk, eff->dlrk, n);
	q->dlrk_len = (uint8_t)n;
	if (create)
		c->max_priority = eff->set & TQ_POL_MAX_PRIORITY ? eff->max_priority : 0;
	q->eff = *eff;
}

void
tq_amqp_queue_policy(struct tq_amqp_queue *q, const struct tq_policies *p)
{
	const char *pname = NULL;
	const struct tq_policy_def *pol =
		tq_policies_match(p, q->vhost, TQ_POLICY_QUEUES, q->name, q->name_len, &pname);
	struct tq_policy_def eff;

	tq_policy_effective(&q->args, pol, &eff);
	settings_from(q, &eff, true);
	snprintf(q->policy, sizeof(q->policy), "%s", pol && pname ? pname : "");
	q->policy_gen = p ? tq_policies_gen(p) : 0;
	if (pol)
		__atomic_fetch_add(&tq_amqp.policy_applied, 1, __ATOMIC_RELAXED);
}

/* The home renames the policy applied: a seqcount, so readers never see half a name. */
static void
policy_name_set(struct tq_amqp_queue *q, const char *name)
{
	uint32_t s = q->policy_seq;

	__atomic_store_n(&q->policy_seq, s + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	snprintf(q->policy, sizeof(q->policy), "%s", name);
	__atomic_store_n(&q->policy_seq, s + 2, __ATOMIC_RELEASE);
}

void
tq_amqp_queue_policy_name(const struct tq_amqp_queue *q, char *out, size_t cap)
{
	char copy[sizeof(q->policy)];
	uint32_t s1, s2;

	for (;;) {
		s1 = __atomic_load_n(&q->policy_seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		memcpy(copy, q->policy, sizeof(copy));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&q->policy_seq, __ATOMIC_RELAXED);
		if (s1 == s2)
			break;
	}
	copy[sizeof(copy) - 1] = '\0';
	snprintf(out, cap, "%s", copy);
}

/*
 * Home: @q's settings again from snapshot @p (generation @gen). What changed applies at
 * once: a lower max-length drops from the head (drop-head), the new DLX takes what drops.
 */
static void
policy_apply(struct tq_worker *w, struct tq_amqp_queue *q, const struct tq_policies *p,
	     uint64_t gen)
{
	const char *pname = NULL;
	const struct tq_policy_def *pol =
		tq_policies_match(p, q->vhost, TQ_POLICY_QUEUES, q->name, q->name_len, &pname);
	struct tq_policy_def eff;

	q->policy_gen = gen;
	tq_policy_effective(&q->args, pol, &eff);
	if (!pol || !pname)
		pname = "";
	if (!memcmp(&eff, &q->eff, sizeof(eff)) && !strcmp(pname, q->policy))
		return; /* another part of the snapshot changed */
	settings_from(q, &eff, false);
	if (strcmp(pname, q->policy))
		policy_name_set(q, pname);
	tq_aqueue_set_limits(q->aq, &q->conf);
	if (pol)
		__atomic_fetch_add(&tq_amqp.policy_applied, 1, __ATOMIC_RELAXED);
	dispatch(w, q); /* what was dropped goes to the DLX; the counts others read */
}

void
tq_amqp_queues_policies(struct tq_worker *w)
{
	const struct tq_policies *p = rcu_dereference(tq_policies_cur);
	uint64_t gen = p ? tq_policies_gen(p) : 0;

	for (uint32_t i = 0; i < tq_amqp_nqueues; i++) {
		struct tq_amqp_queue *q = __atomic_load_n(&tq_amqp_queues[i], __ATOMIC_ACQUIRE);

		if (q && q->home == w->id && !q->deleted && q->policy_gen != gen)
			policy_apply(w, q, p, gen);
	}
}

/*
 * Every 100 ms on each worker: expiry sweeps and x-expires of its queues, and the policies
 * of a queue declared from an older snapshot while tq_amqp_policies_changed was being heard.
 */
void
tq_amqp_queues_tick(struct tq_worker *w)
{
	const struct tq_policies *p = rcu_dereference(tq_policies_cur);
	uint64_t pgen = p ? tq_policies_gen(p) : 0;
	uint64_t now = tq_msg_now_ms();

	for (uint32_t i = 0; i < tq_amqp_nqueues; i++) {
		struct tq_amqp_queue *q = __atomic_load_n(&tq_amqp_queues[i], __ATOMIC_ACQUIRE);

		if (!q || q->home != w->id || q->deleted)
			continue;
		if (q->policy_gen != pgen)
			policy_apply(w, q, p, pgen);
		if (q->starved) { /* deliveries that found no operations */
			q->starved = false;
			dispatch(w, q);
		}
		if (tq_aqueue_next_expiry(q->aq) < now) {
			tq_aqueue_sweep(q->aq, now);
			dispatch(w, q);
		}
		if (q->expires_ms && !q->ncons && now - q->last_used_ms > q->expires_ms)
			queue_delete(w, q);
	}
}

/*
 * Telemetry and metrics threads, which are not QSBR readers: the lock keeps every queue in
 * the table from leaving it (removal takes the lock; the free waits a grace period after).
 */
void
tq_amqp_queues_counts(uint64_t *queues, uint64_t *consumers, uint64_t *ready, uint64_t *unacked)
{
	*queues = *consumers = *ready = *unacked = 0;
	pthread_mutex_lock(&tq_amqp_qlock);
	for (uint32_t i = 0; i < tq_amqp_nqueues; i++) {
		struct tq_amqp_queue *q = __atomic_load_n(&tq_amqp_queues[i], __ATOMIC_ACQUIRE);

		if (!q)
			continue;
		(*queues)++;
		*consumers += __atomic_load_n(&q->n_consumers, __ATOMIC_RELAXED);
		*ready += __atomic_load_n(&q->n_ready, __ATOMIC_RELAXED);
		*unacked += __atomic_load_n(&q->n_unacked, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&tq_amqp_qlock);
}
