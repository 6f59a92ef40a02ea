/*
 * Exchanges and queues as the channels see them: the exchange and queue classes over
 * routing/tq_exchange (the registry shared by every worker) and the queue table
 * (tq_amqp_home.c), routing a publish, dead-lettering, and the bridge to MQTT.
 * The connection's worker (the home worker for dead letters).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routing/tq_exchange.h"
#include "tq_amqp_home.h"
#include "tq_amqp_queue.h"

#define MAX_XHEADERS 64

static uint64_t
qid_of(const struct tq_amqp_queue *q)
{
	return (uint64_t)q->gen << 32 | q->idx;
}

/* A field table as the registry takes it (arguments, headers): entries past MAX_XHEADERS
 * are left out. */
static uint32_t
xheaders(struct tq_amqp_table t, struct tq_xheader *out, char keys[][256])
{
	int n = tq_amqp_table_xheaders(t, out, MAX_XHEADERS, keys);

	return n < 0 ? MAX_XHEADERS : (uint32_t)n;
}

#define ROUTE_MAX TQ_AMQP_ROUTE_MAX

/*
 * The registry's callback only records: posting may run a queue's operations at once (a
 * queue at home here), which may dead-letter, which routes again; the registry's scratch
 * must be free by then.
 */
struct xroute {
	uint64_t qids[ROUTE_MAX];
	uint32_t n;
	bool overflow;
};

static void
x_deliver(void *arg, uint64_t qid)
{
	struct xroute *xr = arg;

	if (xr->n < ROUTE_MAX)
		xr->qids[xr->n++] = qid;
	else
		xr->overflow = true;
}

/* Route @m in @vhost: the number of queues, or -errno (tq_exchange_route). */
static int
route(struct tq_worker *w, const char *vhost, struct tq_msg *m,
      void (*on_queue)(void *arg, uint32_t qidx, uint32_t qgen, uint16_t home), void *arg)
{
	static __thread struct tq_xheader hx[MAX_XHEADERS];
	static __thread char keys[MAX_XHEADERS][256];
	struct tq_amqp_worker *wk = w->amqp;
	/* routes nest (a dead letter routed while a publish's queues are posted): one buffer
	 * per depth, made at boot */
	struct xroute *xr = wk->xr_depth < TQ_AMQP_ROUTE_DEPTH ? wk->xr[wk->xr_depth] : NULL;
	struct tq_exchange_msg xm = {
		.exchange = tq_msg_exchange(m),
		.xlen = m->exchange_len,
		.key = tq_msg_topic(m),
		.klen = m->topic_len,
		.deliver = x_deliver,
		.arg = xr,
	};
	struct tq_amqp_content_header h;
	size_t off;
	int rc;

	if (!xr) {
		tq_worker_count(w, TQ_CTR_amqp_no_memory);
		return 0;
	}
	wk->xr_depth++;
	xr->n = 0;
	xr->overflow = false;

	if (m->amqp && tq_amqp_header_decode(tq_msg_amqp_header(m), m->props_len, &h, &off) >= 0 &&
	    (h.props.flags & TQ_AMQP_BASIC_HEADERS_FLAG)) {
		xm.headers = hx;
		xm.nheaders = xheaders(h.props.headers, hx, keys);
	}
	rc = tq_exchange_route(tq_amqp.xreg, vhost, strlen(vhost), &xm, wk->xs);
	if (rc == -ENOBUFS) {
		struct tq_exchange_stats st;

		tq_worker_count(w, TQ_CTR_amqp_no_memory);
		tq_exchange_counts(tq_amqp.xreg, &st);
		wk->xs_want = true; /* grown at the next tick */
		rc = (int)xr->n;
	}
	if (xr->overflow)
		tq_worker_count(w, TQ_CTR_amqp_no_memory);
	for (uint32_t i = 0; i < xr->n; i++) {
		struct tq_amqp_queue *q = tq_amqp_queue_get((uint32_t)xr->qids[i],
							    (uint32_t)(xr->qids[i] >> 32));

		if (q)
			on_queue(arg, q->idx, q->gen, q->home);
	}
	wk->xr_depth--;
	return rc;
}

void
tq_amqp_route_vhost(struct tq_worker *w, const char *vhost, struct tq_msg *m,
		    void (*on_queue)(void *arg, uint32_t qidx, uint32_t qgen, uint16_t home),
		    void *arg)
{
	route(w, vhost, m, on_queue, arg);
}

int
tq_amqp_route(struct tq_amqp_conn *c, struct tq_msg *m,
	      void (*on_queue)(void *arg, uint32_t qidx, uint32_t qgen, uint16_t home),
	      void *arg, uint16_t *code, const char **text)
{
	int rc = route(c->w, c->vhost, m, on_queue, arg);

	if (rc == -ENOENT) {
		*code = TQ_AMQP_NOT_FOUND;
		*text = "NOT_FOUND - no exchange";
		return -1;
	}
	if (rc == -EPERM) {
		*code = TQ_AMQP_ACCESS_REFUSED;
		*text = "ACCESS_REFUSED - cannot publish to an internal exchange";
		return -1;
	}
	/* the bridge: a publish to amq.topic of "/" reaches MQTT subscribers too */
	if (tq_bridge_to_mqtt && m->exchange_len == 9 && !memcmp(tq_msg_exchange(m), "amq.topic", 9) &&
	    !strcmp(c->vhost, "/"))
		tq_bridge_to_mqtt(c->w, m);
	return rc < 0 ? 0 : rc;
}
/* -- queue.declare arguments ----------------------------------------------------------- */

static bool
int_value(const struct tq_amqp_value *v, int64_t *out)
{
	switch (v->tag) {
	case TQ_AMQP_V_I8:
	case TQ_AMQP_V_I16:
	case TQ_AMQP_V_I32:
	case TQ_AMQP_V_I64:
		*out = v->v.i;
		return true;
	case TQ_AMQP_V_U8:
	case TQ_AMQP_V_U16:
	case TQ_AMQP_V_U32:
		*out = (int64_t)v->v.u;
		return true;
	default:
		return false;
	}
}

static bool
sval_is(const struct tq_amqp_value *v, const char *s)
{
	return v->tag == TQ_AMQP_V_STR && v->v.str.len == strlen(s) &&
	       !memcmp(v->v.str.p, s, v->v.str.len);
}

/*
 * x-arguments into @q's conf and extras (RabbitMQ's names and checks: a bad value is 406
 * PRECONDITION_FAILED; unknown arguments are ignored). 0, or -1 with @text.
 */
static int
parse_qargs(struct tq_amqp_table args, struct tq_amqp_queue *q, char *text, size_t tlen)
{
	struct tq_amqp_iter it;
	struct tq_amqp_str key;
	struct tq_amqp_value v;
	int rc;

	tq_aqueue_conf_init(&q->conf);
	tq_amqp_table_iter(&it, args);
	while ((rc = tq_amqp_table_next(&it, &key, &v)) == 1) {
		char k[64];
		int64_t n = 0;
		bool isint = int_value(&v, &n);

		if (key.len >= sizeof(k))
			continue;
		memcpy(k, key.p, key.len);
		k[key.len] = '\0';
#define BAD(what)                                                                                  \
	do {                                                                                       \
		snprintf(text, tlen, "PRECONDITION_FAILED - invalid arg '%s' for queue '%.*s': %s",  \
			 k, (int)q->name_len, q->name, what);                                      \
		return -1;                                                                         \
	} while (0)
		if (!strcmp(k, "x-message-ttl")) {
			if (!isint || n < 0)
				BAD("not a non-negative integer");
			q->conf.message_ttl = (uint64_t)n;
			q->args.message_ttl = (uint64_t)n;
			q->args.set |= TQ_POL_MESSAGE_TTL;
		} else if (!strcmp(k, "x-expires")) {
			if (!isint || n <= 0)
				BAD("not a positive integer");
			q->expires_ms = (uint64_t)n;
			q->args.expires = (uint64_t)n;
			q->args.set |= TQ_POL_EXPIRES;
		} else if (!strcmp(k, "x-max-length")) {
			if (!isint || n < 0)
				BAD("not a non-negative integer");
			q->conf.max_length = (uint64_t)n;
			q->args.max_length = (uint64_t)n;
			q->args.set |= TQ_POL_MAX_LENGTH;
		} else if (!strcmp(k, "x-max-length-bytes")) {
			if (!isint || n < 0)
				BAD("not a non-negative integer");
			q->conf.max_length_bytes = (uint64_t)n;
			q->args.max_length_bytes = (uint64_t)n;
			q->args.set |= TQ_POL_MAX_LENGTH_BYTES;
		} else if (!strcmp(k, "x-overflow")) {
			if (sval_is(&v, "drop-head"))
				q->conf.overflow = TQ_AQUEUE_DROP_HEAD;
			else if (sval_is(&v, "reject-publish"))
				q->conf.overflow = TQ_AQUEUE_REJECT_PUBLISH;
			else if (sval_is(&v, "reject-publish-dlx"))
				q->conf.overflow = TQ_AQUEUE_REJECT_PUBLISH_DLX;
			else
				BAD("drop-head, reject-publish or reject-publish-dlx");
			/* tq_aqueue_overflow and tq_policy_overflow list the modes in one order */
			q->args.overflow = (uint8_t)q->conf.overflow;
			q->args.set |= TQ_POL_OVERFLOW;
		} else if (!strcmp(k, "x-dead-letter-exchange")) {
			if (v.tag != TQ_AMQP_V_STR || v.v.str.len > 255)
				BAD("not a string");
			memcpy(q->dlx, v.v.str.p, v.v.str.len);
			q->dlx_len = (uint8_t)v.v.str.len;
			q->conf.dead_letter = true;
			memcpy(q->args.dlx, v.v.str.p, v.v.str.len);
			q->args.dlx[v.v.str.len] = '\0';
			q->args.set |= TQ_POL_DLX;
		} else if (!strcmp(k, "x-dead-letter-routing-key")) {
			if (v.tag != TQ_AMQP_V_STR || v.v.str.len > 255)
				BAD("not a string");
			memcpy(q->dlrk, v.v.str.p, v.v.str.len);
			q->dlrk_len = (uint8_t)v.v.str.len;
			q->has_dlrk = true;
			memcpy(q->args.dlrk, v.v.str.p, v.v.str.len);
			q->args.dlrk[v.v.str.len] = '\0';
			q->args.set |= TQ_POL_DLRK;
		} else if (!strcmp(k, "x-max-priority")) {
			if (!isint || n < 0 || n > 255)
				BAD("not an integer in [0, 255]");
			q->conf.max_priority = (uint8_t)n;
			q->args.max_priority = (uint8_t)n;
			q->args.set |= TQ_POL_MAX_PRIORITY;
		} else if (!strcmp(k, "x-single-active-consumer")) {
			if (v.tag != TQ_AMQP_V_BOOL)
				BAD("not a boolean");
			q->conf.single_active_consumer = v.v.b;
		} else if (!strcmp(k, "x-message-group-header")) {
			/* tachyon's message groups: the header naming a message's group */
			if (v.tag == TQ_AMQP_V_BOOL && v.v.b) {
				snprintf(q->group_header, sizeof(q->group_header), "JMSXGroupID");
			} else if (v.tag == TQ_AMQP_V_STR && v.v.str.len > 0 &&
				   v.v.str.len < sizeof(q->group_header)) {
				memcpy(q->group_header, v.v.str.p, v.v.str.len);
				q->group_header[v.v.str.len] = '\0';
			} else {
				BAD("a header name or true");
			}
			q->conf.message_groups = true;
		}
#undef BAD
	}
	if (q->has_dlrk && !q->conf.dead_letter) {
		snprintf(text, tlen, "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' "
				     "for queue '%.*s': without x-dead-letter-exchange",
			 (int)q->name_len, q->name);
		return -1;
	}
	return rc < 0 ? -1 : 0;
}

/* Redeclaring with other properties or arguments: RabbitMQ's "inequivalent arg". */
static const char *
inequivalent(const struct tq_amqp_queue *a, const struct tq_amqp_queue *b)
{
	if (a->durable != b->durable)
		return "durable";
	if (a->exclusive != b->exclusive)
		return "exclusive";
	if (a->auto_delete != b->auto_delete)
		return "auto_delete";
	/* the arguments as declared (a policy may have changed the settings since): an absent
	 * one is its default */
#define OWN(q, bit, field, dflt) ((q)->args.set & (bit) ? (uint64_t)(q)->args.field : (dflt))
#define OWN_STR(q, bit, field) ((q)->args.set & (bit) ? (q)->args.field : NULL)
#define DIFF(bit, field, dflt) (OWN(a, bit, field, dflt) != OWN(b, bit, field, dflt))
#define DIFF_STR(bit, field)                                                                     \
	(!OWN_STR(a, bit, field) != !OWN_STR(b, bit, field) ||                                   \
	 (OWN_STR(a, bit, field) && strcmp(a->args.field, b->args.field)))
	if (DIFF(TQ_POL_MESSAGE_TTL, message_ttl, TQ_AQUEUE_TTL_NONE))
		return "x-message-ttl";
	if (DIFF(TQ_POL_EXPIRES, expires, 0))
		return "x-expires";
	if (DIFF(TQ_POL_MAX_LENGTH, max_length, TQ_AQUEUE_UNLIMITED))
		return "x-max-length";
	if (DIFF(TQ_POL_MAX_LENGTH_BYTES, max_length_bytes, TQ_AQUEUE_UNLIMITED))
		return "x-max-length-bytes";
	if (DIFF(TQ_POL_OVERFLOW, overflow, TQ_OVERFLOW_DROP_HEAD))
		return "x-overflow";
	if (DIFF_STR(TQ_POL_DLX, dlx))
		return "x-dead-letter-exchange";
	if (DIFF_STR(TQ_POL_DLRK, dlrk))
		return "x-dead-letter-routing-key";
	if (DIFF(TQ_POL_MAX_PRIORITY, max_priority, 0))
		return "x-max-priority";
#undef DIFF_STR
#undef DIFF
#undef OWN_STR
#undef OWN
	if (a->conf.single_active_consumer != b->conf.single_active_consumer)
		return "x-single-active-consumer";
	if (a->conf.message_groups != b->conf.message_groups ||
	    strcmp(a->group_header, b->group_header))
		return "x-message-group-header";
	return NULL;
}

const char *
tq_amqp_queue_inequivalent(const struct tq_amqp_queue *a, const struct tq_amqp_queue *b)
{
	return inequivalent(a, b);
}
/* -- dead-lettering -------------------------------------------------------------------- */

static void
tb_longstr(struct tq_amqp_tb *b, const char *key, const void *p, size_t len)
{
	tq_amqp_tb_str(b, key, p, len);
}

/*
 * The content header of a dead-lettered copy: the original properties without expiration,
 * headers with x-death (RabbitMQ's format: one table per queue and reason, newest first,
 * with count) and the x-first-death-* entries. Written into @buf; the payload length, or
 * -ENOSPC.
 */
static ssize_t
xdeath_header(const struct tq_amqp_queue *q, const struct tq_msg *m, const char *reason,
	      uint8_t *buf, size_t cap)
{
	struct tq_amqp_content_header h;
	uint8_t tbuf[8192];
	struct tq_amqp_tb b;
	struct tq_amqp_iter it;
	struct tq_amqp_str key;
	struct tq_amqp_value v, old_deaths = {0};
	bool have_first = false;
	int64_t count = 1;
	size_t off;
	ssize_t n;

	if (tq_amqp_header_decode(tq_msg_amqp_header(m), m->props_len, &h, &off) < 0)
		return -EINVAL;
	tq_amqp_tb_init(&b, tbuf, sizeof(tbuf));
	if (h.props.flags & TQ_AMQP_BASIC_HEADERS_FLAG) {
		tq_amqp_table_iter(&it, h.props.headers);
		while (tq_amqp_table_next(&it, &key, &v) == 1) {
			if (key.len == 7 && !memcmp(key.p, "x-death", 7)) {
				old_deaths = v;
				continue;
			}
			if (key.len > 14 && !memcmp(key.p, "x-first-death-", 14))
				have_first = true;
			{
				char k[256];

				memcpy(k, key.p, key.len);
				k[key.len] = '\0';
				tq_amqp_tb_value(&b, k, &v);
			}
		}
	}
	if (!have_first) {
		tb_longstr(&b, "x-first-death-reason", reason, strlen(reason));
		tb_longstr(&b, "x-first-death-queue", q->name, q->name_len);
		tb_longstr(&b, "x-first-death-exchange", tq_msg_exchange(m), m->exchange_len);
	}
	/* an earlier death in this queue for this reason: count it, move it first */
	if (old_deaths.tag == TQ_AMQP_V_ARRAY) {
		struct tq_amqp_value e;

		tq_amqp_array_iter(&it, old_deaths.v.table);
		while (tq_amqp_array_next(&it, &e) == 1) {
			struct tq_amqp_value qn, rn, cn;

			if (e.tag == TQ_AMQP_V_TABLE &&
			    tq_amqp_table_get(e.v.table, "queue", &qn) == 1 &&
			    tq_amqp_table_get(e.v.table, "reason", &rn) == 1 &&
			    qn.tag == TQ_AMQP_V_STR && rn.tag == TQ_AMQP_V_STR &&
			    qn.v.str.len == q->name_len && !memcmp(qn.v.str.p, q->name, q->name_len) &&
			    rn.v.str.len == strlen(reason) &&
			    !memcmp(rn.v.str.p, reason, rn.v.str.len) &&
			    tq_amqp_table_get(e.v.table, "count", &cn) == 1)
				count = (cn.tag == TQ_AMQP_V_I64 || cn.tag == TQ_AMQP_V_I32 ? cn.v.i
											   : (int64_t)cn.v.u) +
					1;
		}
	}
	tq_amqp_tb_array_begin(&b, "x-death");
	tq_amqp_tb_table_begin(&b, NULL);
	tq_amqp_tb_i64(&b, "count", count);
	tb_longstr(&b, "reason", reason, strlen(reason));
	tb_longstr(&b, "queue", q->name, q->name_len);
	tq_amqp_tb_timestamp(&b, "time", (uint64_t)time(NULL));
	tb_longstr(&b, "exchange", tq_msg_exchange(m), m->exchange_len);
	tq_amqp_tb_array_begin(&b, "routing-keys");
	tq_amqp_tb_str(&b, NULL, tq_msg_topic(m), m->topic_len);
	tq_amqp_tb_array_end(&b);
	if (h.props.flags & TQ_AMQP_BASIC_EXPIRATION_FLAG)
		tb_longstr(&b, "original-expiration", h.props.expiration.p, h.props.expiration.len);
	tq_amqp_tb_table_end(&b);
	if (old_deaths.tag == TQ_AMQP_V_ARRAY) { /* the others, as they were */
		struct tq_amqp_value e;

		tq_amqp_array_iter(&it, old_deaths.v.table);
		while (tq_amqp_array_next(&it, &e) == 1) {
			struct tq_amqp_value qn, rn;

			if (e.tag == TQ_AMQP_V_TABLE &&
			    tq_amqp_table_get(e.v.table, "queue", &qn) == 1 &&
			    tq_amqp_table_get(e.v.table, "reason", &rn) == 1 &&
			    qn.tag == TQ_AMQP_V_STR && rn.tag == TQ_AMQP_V_STR &&
			    qn.v.str.len == q->name_len && !memcmp(qn.v.str.p, q->name, q->name_len) &&
			    rn.v.str.len == strlen(reason) && !memcmp(rn.v.str.p, reason, rn.v.str.len))
				continue; /* replaced by the entry above */
			tq_amqp_tb_value(&b, NULL, &e);
		}
	}
	tq_amqp_tb_array_end(&b);
	if (tq_amqp_tb_finish(&b, &h.props.headers) < 0)
		return -ENOSPC;
	h.props.flags |= TQ_AMQP_BASIC_HEADERS_FLAG;
	h.props.flags &= (uint16_t)~TQ_AMQP_BASIC_EXPIRATION_FLAG; /* RabbitMQ drops it */
	n = tq_amqp_header_encode(buf, cap, 0, m->payload_len, &h.props);
	if (n < 0)
		return n;
	memmove(buf, buf + TQ_AMQP_FRAME_HDR_LEN, (size_t)n - TQ_AMQP_FRAME_OVERHEAD);
	return n - TQ_AMQP_FRAME_OVERHEAD;
}

struct dl_ctx {
	struct tq_worker *w;
	struct tq_msg *m;
};

static void
dl_on_queue(void *arg, uint32_t qidx, uint32_t qgen, uint16_t home)
{
	struct dl_ctx *d = arg;
	struct tq_amqp_op *op = tq_amqp_op_new(d->w, OP_ENQUEUE);

	if (!op)
		return;
	op->qidx = qidx;
	op->qgen = qgen;
	tq_msg_ref(d->m);
	op->msg = d->m;
	tq_amqp_post(d->w, home, op);
}

void
tq_amqp_dead_letter(struct tq_worker *w, struct tq_amqp_queue *q, struct tq_msg *m,
		    const char *reason)
{
	uint8_t hdr[16384];
	ssize_t hlen = m->amqp ? xdeath_header(q, m, reason, hdr, sizeof(hdr)) : -EINVAL;
	const char *rk = q->has_dlrk ? q->dlrk : tq_msg_topic(m);
	uint16_t rklen = q->has_dlrk ? q->dlrk_len : m->topic_len;
	struct tq_msg *d;
	struct dl_ctx ctx = {.w = w};
	bool heap;

	if (hlen < 0) {
		tq_worker_count(w, TQ_CTR_amqp_no_memory);
		return;
	}
	d = tq_msg_alloc(tq_amqp.msg_pool, rklen + q->dlx_len + (uint32_t)hlen, &heap);
	if (!d) {
		tq_worker_count(w, TQ_CTR_amqp_no_memory);
		return;
	}
	d->amqp = true;
	d->qos = m->qos;
	d->priority = m->priority;
	d->topic_len = rklen;
	d->exchange_len = q->dlx_len;
	memcpy(d->data, rk, rklen);
	memcpy(d->data + rklen, q->dlx, q->dlx_len);
	memcpy(d->data + rklen + q->dlx_len, hdr, (size_t)hlen);
	d->props_len = (uint32_t)hlen;
	d->payload_len = m->payload_len;
	if (m->payload && !(d->payload = rte_pktmbuf_clone(m->payload, w->pool))) {
		tq_msg_unref(d);
		tq_worker_count(w, TQ_CTR_mbuf_alloc_failed);
		return;
	}
	ctx.m = d;
	tq_amqp_route_vhost(w, q->vhost, d, dl_on_queue, &ctx);
	tq_msg_unref(d);
}
/* -- lookup ------------------------------------------------------------------------------ */

static struct tq_amqp_queue *
find_queue(const char *vhost, const char *name, size_t len)
{
	uint64_t qid;

	if (tq_exchange_queue_find(tq_amqp.xreg, vhost, strlen(vhost), name, len, &qid) < 0)
		return NULL;
	return tq_amqp_queue_get((uint32_t)qid, (uint32_t)(qid >> 32));
}

/* "" means the channel's last declared queue (spec: queue.bind, consume, get, ...). */
static void
queue_name(const struct tq_amqp_chan *ch, const struct tq_amqp_str *in, const char **name,
	   size_t *len)
{
	if (in->len) {
		*name = (const char *)in->p;
		*len = in->len;
	} else {
		*name = ch->last_queue;
		*len = ch->last_queue_len;
	}
}

static bool
exclusive_elsewhere(const struct tq_amqp_queue *q, const struct tq_amqp_conn *c)
{
	return q->exclusive && q->owner != tq_amqp_handle(c, 0);
}

int
tq_amqp_queue_lookup(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
		     const struct tq_amqp_str *in, uint32_t *qidx, uint32_t *qgen, uint16_t *code,
		     const char **text)
{
	static __thread char buf[320];
	const char *name;
	size_t len;
	struct tq_amqp_queue *q;

	queue_name(ch, in, &name, &len);
	q = find_queue(c->vhost, name, len);
	if (!q) {
		snprintf(buf, sizeof(buf), "NOT_FOUND - no queue '%.*s' in vhost '%s'", (int)len, name,
			 c->vhost);
		*code = TQ_AMQP_NOT_FOUND;
		*text = buf;
		return -1;
	}
	if (exclusive_elsewhere(q, c)) {
		snprintf(buf, sizeof(buf),
			 "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%.*s' "
			 "in vhost '%s'",
			 (int)len, name, c->vhost);
		*code = TQ_AMQP_RESOURCE_LOCKED;
		*text = buf;
		return -1;
	}
	*qidx = q->idx;
	*qgen = q->gen;
	return 0;
}

/* -- the exchange class ------------------------------------------------------------------ */

static void
x_error(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, int rc, uint32_t id, const char *what,
	const struct tq_amqp_str *name)
{
	char text[320];
	uint16_t code = tq_exchange_reply_code(rc);
	const char *why = rc == -ENOENT	 ? "NOT_FOUND - no %s '%.*s' in vhost '%s'"
			  : rc == -EPERM ? "ACCESS_REFUSED - operation not permitted on %s '%.*s' in "
					   "vhost '%s'"
			  : rc == -EEXIST ? "PRECONDITION_FAILED - inequivalent arg for %s '%.*s' "
					    "in vhost '%s'"
			  : rc == -EBUSY ? "PRECONDITION_FAILED - %s '%.*s' in vhost '%s' in use"
			  : rc == -ENOTSUP ? "COMMAND_INVALID - unknown exchange type for %s '%.*s' "
					     "in vhost '%s'"
					   : "PRECONDITION_FAILED - invalid arguments for %s '%.*s' "
					     "in vhost '%s'";

	snprintf(text, sizeof(text), why, what, (int)name->len, name->p, c->vhost);
	tq_amqp_chan_error(c, ch, code, text, id);
}

static void
exchange_method(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_method *m)
{
	static __thread struct tq_xheader args[MAX_XHEADERS];
	static __thread char keys[MAX_XHEADERS][256];
	const union tq_amqp_args *a = &m->args;
	uint32_t id = m->info->id;
	size_t vlen = strlen(c->vhost);
	int rc;

	switch (id) {
	case TQ_AMQP_EXCHANGE_DECLARE: {
		const struct tq_amqp_exchange_declare *d = &a->exchange_declare;
		struct tq_exchange_decl xd = {
			.name = (const char *)d->exchange.p,
			.nlen = d->exchange.len,
			.type = (const char *)d->type.p,
			.tlen = d->type.len,
			.flags = (d->durable ? TQ_EXCHANGE_DURABLE : 0) |
				 (d->auto_delete ? TQ_EXCHANGE_AUTO_DELETE : 0) |
				 (d->internal ? TQ_EXCHANGE_INTERNAL : 0),
			.passive = d->passive,
			.args = args,
		};

		xd.nargs = xheaders(d->arguments, args, keys);
		rc = tq_exchange_declare(tq_amqp.xreg, c->vhost, vlen, &xd);
		if (rc < 0) {
			x_error(c, ch, rc, id, "exchange", &d->exchange);
			return;
		}
		if (!d->no_wait)
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_EXCHANGE_DECLARE_OK, NULL);
		return;
	}
	case TQ_AMQP_EXCHANGE_DELETE: {
		const struct tq_amqp_exchange_delete *d = &a->exchange_delete;

		rc = tq_exchange_delete(tq_amqp.xreg, c->vhost, vlen, (const char *)d->exchange.p,
					d->exchange.len, d->if_unused);
		if (rc < 0) {
			x_error(c, ch, rc, id, "exchange", &d->exchange);
			return;
		}
		if (!d->no_wait)
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_EXCHANGE_DELETE_OK, NULL);
		return;
	}
	case TQ_AMQP_EXCHANGE_BIND:
	case TQ_AMQP_EXCHANGE_UNBIND: {
		/* exchange.bind and unbind have the same layout */
		const struct tq_amqp_exchange_bind *d = &a->exchange_bind;
		struct tq_exchange_binding b = {
			.src = (const char *)d->source.p,
			.slen = d->source.len,
			.dst = (const char *)d->destination.p,
			.dlen = d->destination.len,
			.kind = TQ_EXCHANGE_TO_EXCHANGE,
			.key = (const char *)d->routing_key.p,
			.klen = d->routing_key.len,
			.args = args,
		};

		b.nargs = xheaders(d->arguments, args, keys);
		rc = id == TQ_AMQP_EXCHANGE_BIND ? tq_exchange_bind(tq_amqp.xreg, c->vhost, vlen, &b)
						 : tq_exchange_unbind(tq_amqp.xreg, c->vhost, vlen, &b);
		if (rc < 0) {
			x_error(c, ch, rc, id, "exchange", &d->source);
			return;
		}
		if (!d->no_wait)
			tq_amqp_send_method(c, ch->id,
					    id == TQ_AMQP_EXCHANGE_BIND ? TQ_AMQP_IDX_EXCHANGE_BIND_OK
									: TQ_AMQP_IDX_EXCHANGE_UNBIND_OK,
					    NULL);
		return;
	}
	}
	tq_amqp_conn_error(c, TQ_AMQP_COMMAND_INVALID, "COMMAND_INVALID", id);
}

/* -- the queue class ---------------------------------------------------------------------- */

static void
gen_name(char *out, uint8_t *len)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint64_t r1 = rte_rdtsc() * 0x9E3779B97F4A7C15ull, r2 = (r1 ^ (uintptr_t)out) * 0xBF58476D1CE4E5B9ull;

	memcpy(out, "amq.gen-", 8);
	for (int i = 0; i < 22; i++)
		out[8 + i] = b64[((i < 11 ? r1 : r2) >> (6 * (i % 11))) & 63];
	*len = 30;
}

static uint16_t
home_of(const char *vhost, const char *name, size_t len)
{
	uint32_t h = 2166136261u;

	for (const char *p = vhost; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	return (uint16_t)(h % tq_dp.nb_workers);
}

uint16_t
tq_amqp_queue_home(const char *vhost, const char *name, size_t len)
{
	return home_of(vhost, name, len);
}

static void
declare_ok(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_queue *q,
	   bool no_wait)
{
	struct tq_amqp_queue_declare_ok ok = {
		.queue = {.p = (const uint8_t *)q->name, .len = q->name_len},
		.message_count = (uint32_t)__atomic_load_n(&q->n_ready, __ATOMIC_RELAXED),
		.consumer_count = __atomic_load_n(&q->n_consumers, __ATOMIC_RELAXED),
	};

	memcpy(ch->last_queue, q->name, q->name_len);
	ch->last_queue_len = q->name_len;
	if (!no_wait)
		tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_QUEUE_DECLARE_OK, &ok);
}

static void
queue_declare(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
	      const struct tq_amqp_queue_declare *d)
{
	static __thread struct tq_amqp_queue want;
	struct tq_amqp_queue *q;
	char text[400];
	const char *diff;
	uint32_t id = TQ_AMQP_QUEUE_DECLARE;
	int rc;

	memset(&want, 0, sizeof(want));
	if (d->queue.len) {
		memcpy(want.name, d->queue.p, d->queue.len);
		want.name_len = (uint8_t)d->queue.len;
	} else if (!d->passive) {
		gen_name(want.name, &want.name_len);
	}
	want.durable = d->durable;
	want.exclusive = d->exclusive;
	want.auto_delete = d->auto_delete;
	if (parse_qargs(d->arguments, &want, text, sizeof(text)) < 0) {
		tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED, text, id);
		return;
	}
retry:
	q = find_queue(c->vhost, want.name, want.name_len);
	if (q) {
		if (exclusive_elsewhere(q, c)) {
			snprintf(text, sizeof(text),
				 "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue "
				 "'%.*s' in vhost '%s'",
				 (int)q->name_len, q->name, c->vhost);
			tq_amqp_chan_error(c, ch, TQ_AMQP_RESOURCE_LOCKED, text, id);
			return;
		}
		if (!d->passive && (diff = inequivalent(q, &want)) != NULL) {
			snprintf(text, sizeof(text),
				 "PRECONDITION_FAILED - inequivalent arg '%s' for queue '%.*s' in "
				 "vhost '%s'",
				 diff, (int)q->name_len, q->name, c->vhost);
			tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED, text, id);
			return;
		}
		declare_ok(c, ch, q, d->no_wait);
		return;
	}
	if (d->passive) {
		snprintf(text, sizeof(text), "NOT_FOUND - no queue '%.*s' in vhost '%s'",
			 (int)want.name_len, want.name, c->vhost);
		tq_amqp_chan_error(c, ch, TQ_AMQP_NOT_FOUND, text, id);
		return;
	}
	if (d->queue.len >= 4 && !memcmp(d->queue.p, "amq.", 4)) {
		snprintf(text, sizeof(text),
			 "ACCESS_REFUSED - queue name '%.*s' contains reserved prefix 'amq.*'",
			 (int)want.name_len, want.name);
		tq_amqp_chan_error(c, ch, TQ_AMQP_ACCESS_REFUSED, text, id);
		return;
	}
	snprintf(want.vhost, sizeof(want.vhost), "%s", c->vhost);
	if (want.exclusive)
		want.owner = tq_amqp_handle(c, 0);
	/* its settings: its arguments merged with the policy that applies (QSBR read side) */
	tq_amqp_queue_policy(&want, rcu_dereference(tq_policies_cur));
	q = tq_amqp_queue_create(&want, home_of(c->vhost, want.name, want.name_len));
	if (!q) {
		tq_amqp_chan_error(c, ch, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR - too many queues",
				   id);
		return;
	}
	if (q->exclusive) {
		if (tq_amqp_conn_own(c, q) < 0) {
			tq_amqp_queue_discard(q);
			tq_amqp_chan_error(c, ch, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR", id);
			return;
		}
	}
	rc = tq_exchange_queue_add(tq_amqp.xreg, c->vhost, strlen(c->vhost), q->name, q->name_len,
				   qid_of(q));
	if (rc == -EEXIST) { /* declared elsewhere at the same moment: that one wins */
		if (q->exclusive)
			tq_amqp_conn_disown(c, q);
		tq_amqp_queue_discard(q);
		goto retry;
	}
	if (rc < 0) {
		if (q->exclusive)
			tq_amqp_conn_disown(c, q);
		tq_amqp_queue_discard(q);
		tq_amqp_chan_error(c, ch, TQ_AMQP_RESOURCE_ERROR, "RESOURCE_ERROR", id);
		return;
	}
	tq_worker_count(c->w, TQ_CTR_amqp_queues_declared);
	declare_ok(c, ch, q, d->no_wait);
}

/* queue.purge and queue.delete: the home answers (tq_amqp_reply_done). */
static void
queue_request(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, uint8_t kind,
	      const struct tq_amqp_str *in, uint64_t flags, bool no_wait, uint32_t id)
{
	struct tq_amqp_op *op;
	uint32_t qidx, qgen;
	uint16_t code = 0;
	const char *text = NULL;

	if (tq_amqp_queue_lookup(c, ch, in, &qidx, &qgen, &code, &text) < 0) {
		if (kind == OP_DELETE && code == TQ_AMQP_NOT_FOUND) { /* RabbitMQ: delete-ok 0 */
			struct tq_amqp_queue_delete_ok ok = {0};

			if (!no_wait)
				tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_QUEUE_DELETE_OK, &ok);
			return;
		}
		tq_amqp_chan_error(c, ch, code, text, id);
		return;
	}
	op = tq_amqp_op_new(c->w, kind);
	if (!op)
		return;
	op->qidx = qidx;
	op->qgen = qgen;
	op->handle = tq_amqp_handle(c, ch->id);
	op->b = flags | (no_wait ? 0x100 : 0);
	if (tq_amqp_queue_post(c->w, op) == 0)
		c->waiting++;
}

void
tq_amqp_reply_done(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_op *op)
{
	uint8_t kind = (uint8_t)(op->b >> 16);
	bool no_wait = op->b & 0x100;
	int64_t r = (int64_t)op->a;

	if (kind == OP_PURGE) {
		struct tq_amqp_queue_purge_ok ok = {.message_count = r < 0 ? 0 : (uint32_t)r};

		if (!no_wait)
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_QUEUE_PURGE_OK, &ok);
	} else if (kind == OP_DELETE) {
		struct tq_amqp_queue_delete_ok ok = {.message_count = r < 0 ? 0 : (uint32_t)r};

		if (r == -EBUSY)
			tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED,
					   "PRECONDITION_FAILED - queue in use", TQ_AMQP_QUEUE_DELETE);
		else if (r == -ENOTEMPTY)
			tq_amqp_chan_error(c, ch, TQ_AMQP_PRECONDITION_FAILED,
					   "PRECONDITION_FAILED - queue not empty",
					   TQ_AMQP_QUEUE_DELETE);
		else if (!no_wait)
			tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_QUEUE_DELETE_OK, &ok);
	}
}

static void
queue_bind(struct tq_amqp_conn *c, struct tq_amqp_chan *ch, const struct tq_amqp_method *m)
{
	static __thread struct tq_xheader args[MAX_XHEADERS];
	static __thread char keys[MAX_XHEADERS][256];
	bool bind = m->info->id == TQ_AMQP_QUEUE_BIND;
	/* queue.bind and queue.unbind differ only in no-wait */
	const struct tq_amqp_str *qn = bind ? &m->args.queue_bind.queue : &m->args.queue_unbind.queue;
	const struct tq_amqp_str *xn = bind ? &m->args.queue_bind.exchange
					    : &m->args.queue_unbind.exchange;
	const struct tq_amqp_str *rk = bind ? &m->args.queue_bind.routing_key
					    : &m->args.queue_unbind.routing_key;
	struct tq_amqp_table at = bind ? m->args.queue_bind.arguments : m->args.queue_unbind.arguments;
	struct tq_exchange_binding b = {.kind = TQ_EXCHANGE_TO_QUEUE, .args = args};
	const char *name;
	size_t len;
	int rc;

	queue_name(ch, qn, &name, &len);
	if (!find_queue(c->vhost, name, len)) {
		char text[320];

		snprintf(text, sizeof(text), "NOT_FOUND - no queue '%.*s' in vhost '%s'", (int)len,
			 name, c->vhost);
		tq_amqp_chan_error(c, ch, TQ_AMQP_NOT_FOUND, text, m->info->id);
		return;
	}
	b.src = (const char *)xn->p;
	b.slen = xn->len;
	b.dst = name;
	b.dlen = len;
	if (rk->len == 0 && qn->len == 0) { /* spec: empty key and queue: the queue's name */
		b.key = name;
		b.klen = len;
	} else {
		b.key = (const char *)rk->p;
		b.klen = rk->len;
	}
	b.nargs = xheaders(at, args, keys);
	rc = bind ? tq_exchange_bind(tq_amqp.xreg, c->vhost, strlen(c->vhost), &b)
		  : tq_exchange_unbind(tq_amqp.xreg, c->vhost, strlen(c->vhost), &b);
	if (rc < 0) {
		x_error(c, ch, rc, m->info->id, "exchange", xn);
		return;
	}
	if (!bind)
		tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_QUEUE_UNBIND_OK, NULL);
	else if (!m->args.queue_bind.no_wait)
		tq_amqp_send_method(c, ch->id, TQ_AMQP_IDX_QUEUE_BIND_OK, NULL);
}

void
tq_amqp_queue_method(struct tq_amqp_conn *c, struct tq_amqp_chan *ch,
		     const struct tq_amqp_method *m)
{
	const union tq_amqp_args *a = &m->args;

	switch (m->info->id) {
	case TQ_AMQP_QUEUE_DECLARE:
		queue_declare(c, ch, &a->queue_declare);
		return;
	case TQ_AMQP_QUEUE_BIND:
	case TQ_AMQP_QUEUE_UNBIND:
		queue_bind(c, ch, m);
		return;
	case TQ_AMQP_QUEUE_PURGE:
		queue_request(c, ch, OP_PURGE, &a->queue_purge.queue, 0, a->queue_purge.no_wait,
			      m->info->id);
		return;
	case TQ_AMQP_QUEUE_DELETE:
		queue_request(c, ch, OP_DELETE, &a->queue_delete.queue,
			      (uint64_t)a->queue_delete.if_unused |
				      (uint64_t)a->queue_delete.if_empty << 1,
			      a->queue_delete.no_wait, m->info->id);
		return;
	}
	if (TQ_AMQP_ID_CLASS(m->info->id) == TQ_AMQP_CLASS_EXCHANGE) {
		exchange_method(c, ch, m);
		return;
	}
	tq_amqp_conn_error(c, TQ_AMQP_COMMAND_INVALID, "COMMAND_INVALID", m->info->id);
}

/* -- the queue's name goes with it ------------------------------------------------------ */

void
tq_amqp_unregister_queue(struct tq_amqp_queue *q)
{
	tq_exchange_queue_del(tq_amqp.xreg, q->vhost, strlen(q->vhost), q->name, q->name_len);
}

/* -- exclusive queues: deleted with their connection --------------------------------------- */

int
tq_amqp_conn_own(struct tq_amqp_conn *c, const struct tq_amqp_queue *q)
{
	if (c->nexcl == c->excl_cap) {
		uint32_t cap = c->excl_cap ? c->excl_cap * 2 : 4;
		uint64_t *n = realloc(c->excl, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->excl = n;
		c->excl_cap = cap;
	}
	c->excl[c->nexcl++] = qid_of(q);
	return 0;
}

void
tq_amqp_conn_disown(struct tq_amqp_conn *c, const struct tq_amqp_queue *q)
{
	for (uint32_t i = 0; i < c->nexcl; i++)
		if (c->excl[i] == qid_of(q)) {
			c->excl[i] = c->excl[--c->nexcl];
			return;
		}
}

void
tq_amqp_conn_drop_exclusive(struct tq_amqp_conn *c)
{
	for (uint32_t i = 0; i < c->nexcl; i++) {
		struct tq_amqp_op *op = tq_amqp_op_new(c->w, OP_DELETE);

		if (!op)
			continue;
		op->qidx = (uint32_t)c->excl[i];
		op->qgen = (uint32_t)(c->excl[i] >> 32);
		op->handle = 0; /* nobody waits for the answer */
		op->b = 0x200;  /* no reply */
		tq_amqp_queue_post(c->w, op);
	}
	free(c->excl);
	c->excl = NULL;
	c->nexcl = c->excl_cap = 0;
}

/* -- the bridge from MQTT ---------------------------------------------------------------- */

struct bridge_ctx {
	struct tq_worker *w;
	struct tq_msg *m;
};

static void
bridge_on_queue(void *arg, uint32_t qidx, uint32_t qgen, uint16_t home)
{
	struct bridge_ctx *b = arg;
	struct tq_amqp_op *op = tq_amqp_op_new(b->w, OP_ENQUEUE);

	if (!op)
		return;
	op->qidx = qidx;
	op->qgen = qgen;
	tq_msg_ref(b->m);
	op->msg = b->m;
	tq_amqp_post(b->w, home, op);
}

/* MQTT topic a/b -> routing key a.b ('.' and '/' swap, as RabbitMQ's MQTT plugin does). */
static void
from_mqtt(struct tq_worker *w, const struct tq_msg *mm)
{
	uint8_t hdr[64];
	struct tq_amqp_basic_props props = {0};
	struct bridge_ctx ctx = {.w = w};
	struct tq_msg *m;
	ssize_t hlen;
	bool heap;

	static __thread uint64_t gen_seen; /* the registry's generation + 1, 0: not asked yet */
	static __thread bool may_route;
	uint64_t gen;

	if (!w->amqp)
		return;
	/* nothing bound to amq.topic (and no alternate exchange): no message to build */
	gen = tq_exchange_gen(tq_amqp.xreg) + 1;
	if (unlikely(gen != gen_seen)) {
		may_route = tq_exchange_may_route(tq_amqp.xreg, "/", 1, "amq.topic", 9);
		gen_seen = gen;
	}
	if (!may_route)
		return;
	if (mm->qos) { /* QoS 1 and 2 become persistent messages */
		props.flags = TQ_AMQP_BASIC_DELIVERY_MODE_FLAG;
		props.delivery_mode = 2;
	}
	hlen = tq_amqp_header_encode(hdr, sizeof(hdr), 0, mm->payload_len, &props);
	if (hlen < 0)
		return;
	hlen -= TQ_AMQP_FRAME_OVERHEAD;
	m = tq_msg_alloc(tq_amqp.msg_pool, mm->topic_len + 9 + (uint32_t)hlen, &heap);
	if (!m) {
		tq_worker_count(w, TQ_CTR_amqp_no_memory);
		return;
	}
	m->amqp = true;
	m->qos = mm->qos;
	m->topic_len = mm->topic_len;
	m->exchange_len = 9;
	for (uint16_t i = 0; i < mm->topic_len; i++) {
		char ch = tq_msg_topic(mm)[i];

		m->data[i] = ch == '/' ? '.' : ch == '.' ? '/' : ch;
	}
	memcpy(m->data + m->topic_len, "amq.topic", 9);
	memcpy(m->data + m->topic_len + 9, hdr + TQ_AMQP_FRAME_HDR_LEN, (size_t)hlen);
	m->props_len = (uint32_t)hlen;
	m->payload_len = mm->payload_len;
	if (mm->payload && !(m->payload = rte_pktmbuf_clone(mm->payload, w->pool))) {
		tq_msg_unref(m);
		return;
	}
	ctx.m = m;
	if (route(w, "/", m, bridge_on_queue, &ctx) > 0)
		tq_worker_count(w, TQ_CTR_amqp_bridged);
	tq_msg_unref(m);
}

void
tq_amqp_bridge_init(void)
{
	tq_bridge_to_amqp = from_mqtt;
}

size_t
tq_amqp_xroute_size(void)
{
	return sizeof(struct xroute);
}
