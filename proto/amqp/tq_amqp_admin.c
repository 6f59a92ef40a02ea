/*
 * The control plane's side of the broker (tq_amqp_admin.h): vhosts, policies on live
 * queues, declaring exchanges, queues and bindings from the control thread, listing them,
 * and purging a queue through its home.
 *
 * Threads: every function here runs on the control thread (or one the control plane
 * serialises) while the workers run, except tq_amqp_ctl_done (a home worker). Queues are
 * created the way a worker that is not their home creates them (tq_amqp_queue_create: the
 * queue is complete before the table publishes it, and only its home touches its state
 * afterwards); what workers free after a grace period (queue objects, the registry's names)
 * is read as a QSBR reader registered for the length of the call, never across a wait for
 * a grace period (the control thread is no reader otherwise: tq_access_publish and
 * tq_policies_publish call synchronize_rcu on it).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <urcu/urcu-qsbr.h>

#include "proto/amqp/tq_amqp_admin.h"
#include "proto/amqp/tq_amqp_home.h"
#include "proto/amqp/tq_amqp_int.h"
#include "routing/tq_exchange.h"

#define PURGE_WAIT_MS 1000

/* The vhosts of the registry (it cannot list them): "/" from the start, then ours. */
static char **vhosts;
static size_t nvhosts;

/* Nesting of read_begin on this thread. */
static __thread unsigned int reading;

static void
read_begin(void)
{
	if (reading++ == 0)
		urcu_qsbr_register_thread(); /* online from here */
}

static void
read_end(void)
{
	if (--reading == 0)
		urcu_qsbr_unregister_thread();
}

static ssize_t
vhost_index(const char *name)
{
	for (size_t i = 0; i < nvhosts; i++)
		if (!strcmp(vhosts[i], name))
			return (ssize_t)i;
	return -1;
}

static int
vhost_remember(const char *name)
{
	char **n = realloc(vhosts, (nvhosts + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	vhosts = n;
	if (!(vhosts[nvhosts] = strdup(name)))
		return -ENOMEM;
	nvhosts++;
	return 0;
}

static void
vhost_forget(const char *name)
{
	ssize_t i = vhost_index(name);

	if (i < 0)
		return;
	free(vhosts[i]);
	vhosts[i] = vhosts[--nvhosts];
}

int
tq_amqp_admin_init(void)
{
	tq_amqp_admin_close();
	return vhost_remember("/");
}

void
tq_amqp_admin_close(void)
{
	for (size_t i = 0; i < nvhosts; i++)
		free(vhosts[i]);
	free(vhosts);
	vhosts = NULL;
	nvhosts = 0;
}

/* Does a queue of @vhost exist? (reader) */
static bool
vhost_has_queues(const char *vhost)
{
	for (uint32_t i = 0; i < tq_amqp_nqueues; i++) {
		struct tq_amqp_queue *q = __atomic_load_n(&tq_amqp_queues[i], __ATOMIC_ACQUIRE);

		if (q && !__atomic_load_n(&q->deleted, __ATOMIC_ACQUIRE) && !strcmp(q->vhost, vhost))
			return true;
	}
	return false;
}

int
tq_amqp_vhost_add(const char *name)
{
	int rc;

	if (!tq_amqp.xreg)
		return -ENODEV;
	if (strlen(name) >= sizeof(((struct tq_amqp_queue *)0)->vhost))
		return -EINVAL; /* queues and connections keep the vhost in 128 bytes */
	rc = tq_exchange_vhost_add(tq_amqp.xreg, name, strlen(name));
	if (rc < 0)
		return rc;
	rc = vhost_remember(name);
	if (rc < 0)
		tq_exchange_vhost_del(tq_amqp.xreg, name, strlen(name));
	return rc;
}

/* Queues are checked; open connections are not (their worker alone reads them). */
int
tq_amqp_vhost_delete(const char *name)
{
	bool busy;
	int rc;

	if (!tq_amqp.xreg)
		return -ENODEV;
	read_begin();
	busy = vhost_has_queues(name);
	read_end();
	if (busy)
		return -EBUSY;
	rc = tq_exchange_vhost_del(tq_amqp.xreg, name, strlen(name));
	if (rc == 0)
		vhost_forget(name);
	return rc;
}

void
tq_amqp_policies_changed(void)
{
	if (!tq_amqp.xreg)
		return;
	/* the snapshot is published already: each home sees it with the bump (release) */
	__atomic_fetch_add(&tq_amqp.policies_bump, 1, __ATOMIC_RELEASE);
}

uint64_t
tq_amqp_admin_policy_applied(void)
{
	return __atomic_load_n(&tq_amqp.policy_applied, __ATOMIC_RELAXED);
}

/* -- declaring ------------------------------------------------------------------------ */

static int
fail(int rc, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Broker running, vhost known, names within bounds. 0 or -errno with @err. */
static int
check_common(const char *vhost, const char *name, const char *what, char *err, size_t errlen)
{
	if (!tq_amqp.xreg)
		return fail(-ENODEV, err, errlen, "the AMQP broker is not running");
	if (vhost_index(vhost) < 0)
		return fail(-ENOENT, err, errlen, "NOT_FOUND - no vhost '%s'", vhost);
	if (strlen(name) > TQ_EXCHANGE_NAME_MAX)
		return fail(-EINVAL, err, errlen, "%s name longer than %u bytes", what,
			    TQ_EXCHANGE_NAME_MAX);
	return 0;
}

int
tq_amqp_admin_exchange_declare(const char *vhost, const char *name, const char *type,
			       bool durable, bool auto_delete, bool internal,
			       const char *alternate_exchange, char *err, size_t errlen)
{
	struct tq_xheader ae = {
		.key = "alternate-exchange",
		.klen = 18,
		.tag = TQ_AMQP_V_STR,
	};
	struct tq_exchange_decl d = {
		.name = name,
		.nlen = strlen(name),
		.type = type,
		.tlen = strlen(type),
		.flags = (durable ? TQ_EXCHANGE_DURABLE : 0) |
			 (auto_delete ? TQ_EXCHANGE_AUTO_DELETE : 0) |
			 (internal ? TQ_EXCHANGE_INTERNAL : 0),
	};
	int rc = check_common(vhost, name, "exchange", err, errlen);

	if (rc < 0)
		return rc;
	if (alternate_exchange) {
		ae.v.bytes.p = (const uint8_t *)alternate_exchange;
		ae.v.bytes.len = (uint32_t)strlen(alternate_exchange);
		d.args = &ae;
		d.nargs = 1;
	}
	rc = tq_exchange_declare(tq_amqp.xreg, vhost, strlen(vhost), &d);
	switch (rc) {
	case 0:
	case 1:
		return 0;
	case -ENOTSUP:
		return fail(rc, err, errlen, "COMMAND_INVALID - unknown exchange type '%s'", type);
	case -EPERM:
		return fail(rc, err, errlen,
			    "ACCESS_REFUSED - exchange name '%s' is reserved (default or 'amq.*')",
			    name);
	case -EEXIST:
		return fail(rc, err, errlen,
			    "PRECONDITION_FAILED - inequivalent arg for exchange '%s' in vhost '%s'",
			    name, vhost);
	case -EINVAL:
		return fail(rc, err, errlen,
			    "PRECONDITION_FAILED - invalid arguments for exchange '%s' in vhost '%s'",
			    name, vhost);
	case -ENOENT:
		return fail(rc, err, errlen, "NOT_FOUND - no vhost '%s'", vhost);
	default:
		return fail(rc, err, errlen, "exchange '%s': %s", name, strerror(-rc));
	}
}

/* The live queue @name of @vhost, or NULL. Reader. */
static struct tq_amqp_queue *
queue_find(const char *vhost, const char *name)
{
	uint64_t qid;

	if (tq_exchange_queue_find(tq_amqp.xreg, vhost, strlen(vhost), name, strlen(name), &qid) < 0)
		return NULL;
	return tq_amqp_queue_get((uint32_t)qid, (uint32_t)(qid >> 32));
}

/* @want as a client's queue.declare with these arguments would make it. */
static int
queue_template(struct tq_amqp_queue *want, const char *vhost, const char *name, bool durable,
	       bool auto_delete, const struct tq_policy_def *args,
	       const struct tq_amqp_queue_opts *opts, char *err, size_t errlen)
{
	const uint32_t not_queue = TQ_POL_ALTERNATE_EXCHANGE | TQ_POL_PRIORITY_CLASS;

	if (!name[0])
		return fail(-EINVAL, err, errlen, "a queue needs a name");
	if (args && (args->set & not_queue))
		return fail(-EINVAL, err, errlen,
			    "PRECONDITION_FAILED - queue '%s': alternate-exchange and "
			    "priority-class are not queue arguments",
			    name);
	if (args && (args->set & TQ_POL_DLRK) && !(args->set & TQ_POL_DLX))
		return fail(-EINVAL, err, errlen,
			    "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for "
			    "queue '%s': without x-dead-letter-exchange",
			    name);
	if (opts && opts->group_header && strlen(opts->group_header) >= sizeof(want->group_header))
		return fail(-EINVAL, err, errlen,
			    "PRECONDITION_FAILED - invalid arg 'x-message-group-header' for queue "
			    "'%s': too long",
			    name);
	memset(want, 0, sizeof(*want));
	snprintf(want->vhost, sizeof(want->vhost), "%s", vhost);
	want->name_len = (uint8_t)strlen(name);
	memcpy(want->name, name, want->name_len);
	want->durable = durable;
	want->auto_delete = auto_delete;
	if (args)
		want->args = *args;
	tq_aqueue_conf_init(&want->conf);
	if (opts) {
		want->conf.single_active_consumer = opts->single_active_consumer;
		if (opts->group_header && opts->group_header[0]) {
			snprintf(want->group_header, sizeof(want->group_header), "%s",
				 opts->group_header);
			want->conf.message_groups = true;
		}
	}
	return 0;
}

int
tq_amqp_admin_queue_declare_opts(const char *vhost, const char *name, bool durable,
				 bool auto_delete, const struct tq_policy_def *args,
				 const struct tq_amqp_queue_opts *opts, char *err, size_t errlen)
{
	struct tq_amqp_queue *want, *q;
	const char *diff;
	int rc = check_common(vhost, name, "queue", err, errlen);

	if (rc < 0)
		return rc;
	want = malloc(sizeof(*want));
	if (!want)
		return fail(-ENOMEM, err, errlen, "out of memory");
	rc = queue_template(want, vhost, name, durable, auto_delete, args, opts, err, errlen);
	if (rc < 0)
		goto out;
	read_begin();
retry:
	q = queue_find(vhost, name);
	if (q) {
		if (q->exclusive)
			rc = fail(-EBUSY, err, errlen,
				  "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue "
				  "'%s' in vhost '%s'",
				  name, vhost);
		else if ((diff = tq_amqp_queue_inequivalent(q, want)) != NULL)
			rc = fail(-EEXIST, err, errlen,
				  "PRECONDITION_FAILED - inequivalent arg '%s' for queue '%s' in "
				  "vhost '%s'",
				  diff, name, vhost);
		goto unlock;
	}
	if (!strncmp(name, "amq.", 4)) {
		rc = fail(-EPERM, err, errlen,
			  "ACCESS_REFUSED - queue name '%s' contains reserved prefix 'amq.*'", name);
		goto unlock;
	}
	/* the control thread writes tq_policies_cur: its own reading needs no protection */
	tq_amqp_queue_policy(want, tq_policies_cur);
	q = tq_amqp_queue_create(want, tq_amqp_queue_home(vhost, name, strlen(name)));
	if (!q) {
		rc = errno == ENOSPC ? fail(-ENOSPC, err, errlen, "RESOURCE_ERROR - too many queues")
				     : fail(-ENOMEM, err, errlen, "out of memory");
		goto unlock;
	}
	rc = tq_exchange_queue_add(tq_amqp.xreg, vhost, strlen(vhost), q->name, q->name_len,
				   (uint64_t)q->gen << 32 | q->idx);
	if (rc == -EEXIST) { /* a client declared it at the same moment: theirs stands */
		tq_amqp_queue_discard(q);
		goto retry;
	}
	if (rc < 0) {
		tq_amqp_queue_discard(q);
		rc = fail(rc, err, errlen, "queue '%s' in vhost '%s': %s", name, vhost,
			  strerror(-rc));
	}
unlock:
	read_end();
out:
	free(want);
	return rc;
}

int
tq_amqp_admin_queue_declare(const char *vhost, const char *name, bool durable, bool auto_delete,
			    const struct tq_policy_def *args, char *err, size_t errlen)
{
	return tq_amqp_admin_queue_declare_opts(vhost, name, durable, auto_delete, args, NULL, err,
						errlen);
}

int
tq_amqp_admin_bind_args(const char *vhost, const char *source, const char *destination,
			bool to_queue, const char *routing_key, const struct tq_xheader *args,
			uint32_t nargs, char *err, size_t errlen)
{
	struct tq_exchange_binding b = {
		.src = source,
		.slen = strlen(source),
		.dst = destination,
		.dlen = strlen(destination),
		.kind = to_queue ? TQ_EXCHANGE_TO_QUEUE : TQ_EXCHANGE_TO_EXCHANGE,
		.key = routing_key,
		.klen = strlen(routing_key),
		.args = args,
		.nargs = nargs,
	};
	const char *dkind = to_queue ? "queue" : "exchange";
	struct tq_exchange_info xi;
	uint64_t qid;
	int rc = check_common(vhost, source, "exchange", err, errlen);

	if (rc < 0)
		return rc;
	if (b.dlen > TQ_EXCHANGE_NAME_MAX || b.klen > TQ_EXCHANGE_NAME_MAX)
		return fail(-EINVAL, err, errlen, "binding: a name or key longer than %u bytes",
			    TQ_EXCHANGE_NAME_MAX);
	rc = tq_exchange_bind(tq_amqp.xreg, vhost, strlen(vhost), &b);
	if (rc >= 0)
		return 0;
	if (rc == -ENOENT) { /* which end: ask as a reader */
		bool src_ok, dst_ok;

		read_begin();
		src_ok = tq_exchange_info(tq_amqp.xreg, vhost, strlen(vhost), source, b.slen,
					  &xi) == 0;
		dst_ok = to_queue ? tq_exchange_queue_find(tq_amqp.xreg, vhost, strlen(vhost),
							   destination, b.dlen, &qid) == 0
				  : tq_exchange_info(tq_amqp.xreg, vhost, strlen(vhost),
						     destination, b.dlen, &xi) == 0;
		read_end();
		if (!src_ok)
			return fail(rc, err, errlen, "NOT_FOUND - no exchange '%s' in vhost '%s'",
				    source, vhost);
		if (!dst_ok)
			return fail(rc, err, errlen, "NOT_FOUND - no %s '%s' in vhost '%s'", dkind,
				    destination, vhost);
		return fail(rc, err, errlen, "NOT_FOUND - vhost '%s'", vhost);
	}
	if (rc == -EPERM)
		return fail(rc, err, errlen,
			    "ACCESS_REFUSED - the default exchange cannot be bound (binding '%s' "
			    "-> '%s')",
			    source, destination);
	if (rc == -EINVAL)
		return fail(rc, err, errlen,
			    "PRECONDITION_FAILED - invalid arguments or key for binding '%s' -> "
			    "%s '%s' in vhost '%s'",
			    source, dkind, destination, vhost);
	return fail(rc, err, errlen, "binding '%s' -> '%s': %s", source, destination,
		    strerror(-rc));
}

int
tq_amqp_admin_bind(const char *vhost, const char *source, const char *destination,
		   bool to_queue, const char *routing_key, char *err, size_t errlen)
{
	return tq_amqp_admin_bind_args(vhost, source, destination, to_queue, routing_key, NULL, 0,
				       err, errlen);
}

/* -- listing ---------------------------------------------------------------------------- */

int
tq_amqp_admin_queues(int (*fn)(void *arg, const struct tq_amqp_queue_info *q), void *arg)
{
	static char vhost[sizeof(((struct tq_amqp_queue *)0)->vhost)], name[256], policy[256];
	static char group[sizeof(((struct tq_amqp_queue *)0)->group_header)];
	struct tq_policy_def args;
	int rc = 0;

	if (!tq_amqp.xreg)
		return -ENODEV;
	read_begin();
	for (uint32_t i = 0; i < tq_amqp_nqueues && !rc; i++) {
		struct tq_amqp_queue *q = __atomic_load_n(&tq_amqp_queues[i], __ATOMIC_ACQUIRE);
		struct tq_amqp_queue_info info;

		if (!q || __atomic_load_n(&q->deleted, __ATOMIC_ACQUIRE))
			continue;
		/* written before the table published q: plain copies */
		memcpy(vhost, q->vhost, sizeof(vhost));
		vhost[sizeof(vhost) - 1] = '\0';
		memcpy(name, q->name, q->name_len);
		name[q->name_len] = '\0';
		memcpy(group, q->group_header, sizeof(group));
		group[sizeof(group) - 1] = '\0';
		args = q->args;
		tq_amqp_queue_policy_name(q, policy, sizeof(policy));
		info = (struct tq_amqp_queue_info){
			.vhost = vhost,
			.name = name,
			.durable = q->durable,
			.auto_delete = q->auto_delete,
			.exclusive = q->exclusive,
			.home = q->home,
			.ready = __atomic_load_n(&q->n_ready, __ATOMIC_RELAXED),
			.unacked = __atomic_load_n(&q->n_unacked, __ATOMIC_RELAXED),
			.consumers = __atomic_load_n(&q->n_consumers, __ATOMIC_RELAXED),
			.args = &args,
			.policy = policy[0] ? policy : NULL,
			.single_active_consumer = q->conf.single_active_consumer,
			.group_header = group[0] ? group : NULL,
		};
		rc = fn(arg, &info);
	}
	read_end();
	return rc;
}

static const char *
type_name(enum tq_exchange_type t)
{
	switch (t) {
	case TQ_EXCHANGE_DIRECT:
		return "direct";
	case TQ_EXCHANGE_FANOUT:
		return "fanout";
	case TQ_EXCHANGE_TOPIC:
		return "topic";
	case TQ_EXCHANGE_HEADERS:
		return "headers";
	}
	return "?";
}

struct walk {
	const char *vhost;
	int (*xfn)(void *arg, const struct tq_amqp_exchange_info *x);
	int (*bfn)(void *arg, const struct tq_amqp_binding_info *b);
	void *arg;
	int rc;
};

/* A name of @len bytes (at most 255) as a C string in @buf. */
static const char *
cstr(char *buf, const char *p, size_t len)
{
	memcpy(buf, p, len);
	buf[len] = '\0';
	return buf;
}

static void
walk_exchange(void *arg, const struct tq_exchange_info *x)
{
	struct walk *w = arg;
	char name[TQ_EXCHANGE_NAME_MAX + 1], ae[TQ_EXCHANGE_NAME_MAX + 1];
	struct tq_amqp_exchange_info info = {
		.vhost = w->vhost,
		.name = cstr(name, x->name, x->nlen),
		.type = type_name(x->type),
		.durable = x->flags & TQ_EXCHANGE_DURABLE,
		.auto_delete = x->flags & TQ_EXCHANGE_AUTO_DELETE,
		.internal = x->flags & TQ_EXCHANGE_INTERNAL,
		.alternate_exchange = x->has_ae ? cstr(ae, x->ae, x->ae_len) : NULL,
	};

	if (!w->rc)
		w->rc = w->xfn(w->arg, &info);
}

static void
walk_binding(void *arg, const struct tq_exchange_binding *b)
{
	struct walk *w = arg;
	char src[TQ_EXCHANGE_NAME_MAX + 1], dst[TQ_EXCHANGE_NAME_MAX + 1];
	char key[TQ_EXCHANGE_NAME_MAX + 1];
	struct tq_amqp_binding_info info = {
		.vhost = w->vhost,
		.source = cstr(src, b->src, b->slen),
		.destination = cstr(dst, b->dst, b->dlen),
		.routing_key = cstr(key, b->key, b->klen),
		.to_queue = b->kind == TQ_EXCHANGE_TO_QUEUE,
		.args = b->args,
		.nargs = b->nargs,
	};

	if (!w->rc)
		w->rc = w->bfn(w->arg, &info);
}

static int
walk_all(struct walk *w)
{
	struct tq_exchange_walk_cb cb = {
		.on_exchange = w->xfn ? walk_exchange : NULL,
		.on_binding = w->bfn ? walk_binding : NULL,
		.arg = w,
	};

	if (!tq_amqp.xreg)
		return -ENODEV;
	for (size_t i = 0; i < nvhosts && !w->rc; i++) {
		w->vhost = vhosts[i];
		tq_exchange_walk(tq_amqp.xreg, vhosts[i], strlen(vhosts[i]), &cb);
	}
	return w->rc;
}

int
tq_amqp_admin_exchanges(int (*fn)(void *arg, const struct tq_amqp_exchange_info *x), void *arg)
{
	struct walk w = {.xfn = fn, .arg = arg};

	return walk_all(&w);
}

int
tq_amqp_admin_bindings(int (*fn)(void *arg, const struct tq_amqp_binding_info *b), void *arg)
{
	struct walk w = {.bfn = fn, .arg = arg};

	return walk_all(&w);
}

/* -- purge through the home ------------------------------------------------------------ */

/*
 * The control thread's side of a request to a home. Whoever comes second frees it: the
 * home answering after the control thread gave up, or the control thread after the answer.
 */
enum { WAIT_PENDING, WAIT_ANSWERED, WAIT_ABANDONED };

struct ctl_wait {
	int state; /* atomic */
	int64_t result;
};

void
tq_amqp_ctl_done(struct tq_amqp_op *op, int64_t result)
{
	struct ctl_wait *wt = (struct ctl_wait *)(uintptr_t)op->handle;
	int expected = WAIT_PENDING;

	tq_amqp_op_free(op);
	wt->result = result;
	if (!__atomic_compare_exchange_n(&wt->state, &expected, WAIT_ANSWERED, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		free(wt); /* abandoned: nobody reads it */
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
tq_amqp_admin_purge(const char *vhost, const char *name)
{
	struct tq_ring_msg rm = {.type = TQ_MSG_AMQP_OP};
	struct tq_amqp_queue *q;
	struct tq_amqp_op *op;
	struct ctl_wait *wt;
	uint32_t qidx = 0, qgen = 0;
	uint16_t home = 0;
	uint64_t until;
	int expected = WAIT_PENDING;
	int64_t r;

	if (!tq_amqp.xreg)
		return -ENODEV;
	read_begin();
	q = queue_find(vhost, name);
	if (q) {
		qidx = q->idx;
		qgen = q->gen;
		home = q->home;
	}
	read_end();
	if (!q)
		return -ENOENT;
	wt = calloc(1, sizeof(*wt));
	if (!wt)
		return -ENOMEM;
	if (rte_mempool_get(tq_amqp.op_pool, (void **)&op) < 0) {
		free(wt);
		return -ENOMEM;
	}
	memset(op, 0, sizeof(*op));
	op->kind = OP_PURGE;
	op->qidx = qidx;
	op->qgen = qgen;
	op->handle = (uint64_t)(uintptr_t)wt;
	op->b = TQ_AMQP_OP_CTL;
	rm.b = (uint64_t)(uintptr_t)op;
	if (tq_worker_post(tq_dp.workers[home], &rm, NULL) < 0) {
		tq_amqp_op_free(op);
		free(wt);
		return -ENOBUFS;
	}
	until = now_ms() + PURGE_WAIT_MS;
	while (__atomic_load_n(&wt->state, __ATOMIC_ACQUIRE) == WAIT_PENDING && now_ms() < until)
		usleep(200);
	if (__atomic_compare_exchange_n(&wt->state, &expected, WAIT_ABANDONED, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return -ETIMEDOUT; /* the home frees it when it answers */
	r = wt->result;
	free(wt);
	if (r < 0)
		return (int)r;
	return r > INT32_MAX ? INT32_MAX : (int)r;
}
