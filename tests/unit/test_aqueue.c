/*
 * tq_aqueue: every RabbitMQ queue rule with the delivery order it must produce (TTL, limits
 * and overflow modes, dead-letter reasons, priorities, consumer priorities, prefetch, single
 * active consumer, message groups, ack/nack, requeue order, get, purge), that each message
 * leaves the queue exactly once, and a randomized run against a simple reference model.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/tq_aqueue.h"
#include "tq_test.h"

#define MAXMSG 70000

/* Message handles are small integers (never 0) cast to pointers. */
#define M(i)  ((void *)(uintptr_t)(i))
#define ID(p) ((unsigned int)(uintptr_t)(p))

/* How each message left the queue: released by the queue, or handed to us. */
static unsigned int released[MAXMSG];
static unsigned int handed[MAXMSG];
static unsigned int release_log[MAXMSG * 2];
static unsigned int release_n;

static void
on_release(void *ctx, void *msg)
{
	(void)ctx;
	CU_ASSERT_FATAL(ID(msg) > 0 && ID(msg) < MAXMSG);
	released[ID(msg)]++;
	if (release_n < MAXMSG * 2)
		release_log[release_n++] = ID(msg);
}

static void
reset_counts(void)
{
	memset(released, 0, sizeof(released));
	memset(handed, 0, sizeof(handed));
	release_n = 0;
}

static struct tq_aqueue_conf
conf_default(void)
{
	struct tq_aqueue_conf c;

	tq_aqueue_conf_init(&c);
	c.release = on_release;
	return c;
}

static struct tq_aqueue *
mkq(const struct tq_aqueue_conf *c)
{
	struct tq_aqueue *q;

	reset_counts();
	q = tq_aqueue_create(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	return q;
}

static int
pub_full(struct tq_aqueue *q, unsigned int id, uint8_t prio, uint64_t ttl, uint32_t size,
	 uint64_t group, uint64_t now)
{
	struct tq_aqueue_msg_attr a = {
		.size = size,
		.priority = prio,
		.ttl_ms = ttl,
		.group = group,
	};

	return tq_aqueue_publish(q, M(id), &a, now);
}

static int
pub(struct tq_aqueue *q, unsigned int id)
{
	return pub_full(q, id, 0, TQ_AQUEUE_TTL_NONE, 10, 0, 0);
}

static int
cons(struct tq_aqueue *q, uint64_t id, int32_t prio, uint32_t prefetch)
{
	struct tq_aqueue_consumer_conf c = {.id = id, .priority = prio, .prefetch = prefetch};

	return tq_aqueue_consumer_add(q, &c);
}

/* The last dispatch's deliveries, to ack by index. */
static struct tq_aqueue_delivery dl[256];
static unsigned int dl_n;

/*
 * Dispatch up to @max at @now and render "consumer:msg" pairs, "r" after a redelivery, "s"
 * after a settled (no-ack) one, so tests read as the expected order.
 */
static const char *
disp(struct tq_aqueue *q, uint64_t now, unsigned int max)
{
	static char buf[4096];
	size_t o = 0;

	CU_ASSERT_FATAL(max <= 256);
	dl_n = tq_aqueue_dispatch(q, now, dl, max);
	buf[0] = '\0';
	for (unsigned int i = 0; i < dl_n; i++) {
		if (dl[i].settled)
			handed[ID(dl[i].msg)]++;
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%llu:%u%s%s", i ? " " : "",
				      (unsigned long long)dl[i].consumer, ID(dl[i].msg),
				      dl[i].redelivered ? "r" : "", dl[i].settled ? "s" : "");
	}
	if (getenv("AQ_DEBUG")) /* to see what a failing order was */
		fprintf(stderr, "\n  dispatched: %s", buf);
	return buf;
}

/* Take every dead letter: "msg/reason" pairs. */
static const char *
dead(struct tq_aqueue *q)
{
	static char buf[4096];
	struct tq_aqueue_dead d[64];
	unsigned int n;
	size_t o = 0;

	buf[0] = '\0';
	while ((n = tq_aqueue_take_dead(q, d, 64)) > 0)
		for (unsigned int i = 0; i < n; i++) {
			handed[ID(d[i].msg)]++;
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%u/%s", o ? " " : "",
					      ID(d[i].msg), tq_aqueue_reason_name(d[i].reason));
		}
	return buf;
}

/* The delivery id of message @id in the last dispatch. */
static uint64_t
did(unsigned int id)
{
	for (unsigned int i = 0; i < dl_n; i++)
		if (ID(dl[i].msg) == id)
			return dl[i].delivery_id;
	CU_FAIL("message not in the last dispatch");
	return 0;
}

static void
assert_once(unsigned int i)
{
	if (released[i] + handed[i] != 1) {
		fprintf(stderr, "message %u: released %u handed %u\n", i, released[i], handed[i]);
		CU_FAIL("a message did not leave exactly once");
	}
}

/* After destroy: every message 1..n left exactly once (released or handed to us). */
static void
assert_each_once(unsigned int n)
{
	for (unsigned int i = 1; i <= n; i++)
		assert_once(i);
}

/* ---- basics ---- */

static void
free_node_only(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static void
test_create_rejects_bad_conf(void)
{
	struct tq_aqueue_conf c = conf_default();

	c.release = NULL;
	errno = 0;
	CU_ASSERT_PTR_NULL(tq_aqueue_create(&c));
	CU_ASSERT_EQUAL(errno, EINVAL);
	c = conf_default();
	c.overflow = (enum tq_aqueue_overflow)7;
	CU_ASSERT_PTR_NULL(tq_aqueue_create(&c));
	c = conf_default();
	c.node_free = free_node_only;
	CU_ASSERT_PTR_NULL(tq_aqueue_create(&c)); /* an allocator needs both halves */
	tq_aqueue_destroy(NULL);
	CU_ASSERT_STRING_EQUAL(tq_aqueue_reason_name(TQ_AQUEUE_DEAD_EXPIRED), "expired");
	CU_ASSERT_STRING_EQUAL(tq_aqueue_reason_name(TQ_AQUEUE_DEAD_MAXLEN), "maxlen");
	CU_ASSERT_STRING_EQUAL(tq_aqueue_reason_name(TQ_AQUEUE_DEAD_REJECTED), "rejected");
}

static void
test_fifo_counts_ack(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q = mkq(&c);
	struct tq_aqueue_stats st;

	for (unsigned int i = 1; i <= 5; i++)
		CU_ASSERT_EQUAL(pub_full(q, i, 0, TQ_AQUEUE_TTL_NONE, 100 * i, 0, 0), 0);
	CU_ASSERT_EQUAL(pub(q, 0), -EINVAL); /* NULL handle */
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 5);
	CU_ASSERT_EQUAL(tq_aqueue_ready_bytes(q), 1500);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), ""); /* no consumer */
	CU_ASSERT_EQUAL(cons(q, 7, 0, 0), 0);
	CU_ASSERT_EQUAL(cons(q, 7, 0, 0), -EEXIST);
	CU_ASSERT_EQUAL(tq_aqueue_consumers(q), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 3), "7:1 7:2 7:3");
	CU_ASSERT_EQUAL(dl[0].delivery_id, 1);
	CU_ASSERT_EQUAL(dl[2].delivery_id, 3);
	CU_ASSERT_EQUAL(dl[0].delivery_count, 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "7:4 7:5");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 0);
	CU_ASSERT_EQUAL(tq_aqueue_ready_bytes(q), 0);
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 5);
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 7, 2, false), 1);
	CU_ASSERT_EQUAL(released[2], 1);
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 7, 2, false), -ENOENT); /* twice */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 8, 1, false), -ENOENT); /* unknown consumer */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 7, 99, false), -ENOENT);
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 7, UINT64_MAX, true), 4);
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 0);
	tq_aqueue_stats(q, &st);
	CU_ASSERT_EQUAL(st.published, 5);
	CU_ASSERT_EQUAL(st.delivered, 5);
	CU_ASSERT_EQUAL(st.acked, 5);
	tq_aqueue_destroy(q);
	assert_each_once(5);
}

/* ---- priorities ---- */

static void
test_message_priorities(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.max_priority = 10;
	q = mkq(&c);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 2, 5, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 3, 10, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 4, 255, TQ_AQUEUE_TTL_NONE, 1, 0, 0); /* capped at 10: behind 3 */
	pub_full(q, 5, 5, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 6, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 7, 11, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	cons(q, 1, 0, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:3 1:4 1:7 1:2 1:5 1:1 1:6");
	tq_aqueue_destroy(q);
	assert_each_once(7);

	/* no x-max-priority: priorities ignored, plain FIFO */
	c = conf_default();
	q = mkq(&c);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 2, 9, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 3, 4, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	cons(q, 1, 0, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:1 1:2 1:3");
	tq_aqueue_destroy(q);
	assert_each_once(3);
}

/* ---- TTL ---- */

static void
test_ttl_queue_and_message(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.message_ttl = 100;
	c.dead_letter = true;
	q = mkq(&c);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);  /* 100 ms: deliverable until 100 */
	pub_full(q, 2, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 50); /* until 150 */
	pub_full(q, 3, 0, 10, 1, 0, 50);                 /* per-message 10 < 100: until 60 */
	pub_full(q, 4, 0, 5000, 1, 0, 50);               /* 5000 > 100: until 150 */
	CU_ASSERT_EQUAL(tq_aqueue_next_expiry(q), 61);
	cons(q, 9, 0, 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 100, 8), "9:1"); /* now == deadline: still alive */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 9, did(1), false), 1);
	/* at 151: 2 expired at the head, 3 expired at the head, 4 expired */
	CU_ASSERT_STRING_EQUAL(disp(q, 151, 8), "");
	CU_ASSERT_STRING_EQUAL(dead(q), "2/expired 3/expired 4/expired");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 0);
	CU_ASSERT_EQUAL(tq_aqueue_next_expiry(q), UINT64_MAX);
	tq_aqueue_destroy(q);
	assert_each_once(4);
}

static void
test_ttl_head_only_then_sweep(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;
	uint64_t d1;

	c.dead_letter = true;
	q = mkq(&c);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 2, 0, 10, 1, 0, 0); /* expires behind a message that never does */
	pub_full(q, 3, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 4, 0, 30, 1, 0, 0);
	cons(q, 9, 0, 1);
	/* head-only expiry (RabbitMQ): 2 stays counted while 1 is ahead of it */
	CU_ASSERT_EQUAL(tq_aqueue_sweep(q, 0), 0);
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 4);
	CU_ASSERT_STRING_EQUAL(disp(q, 20, 1), "9:1");
	d1 = did(1);
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 3);
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	/* once at the head it expires, even while no consumer has room */
	CU_ASSERT_STRING_EQUAL(disp(q, 20, 8), "");
	CU_ASSERT_STRING_EQUAL(dead(q), "2/expired");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 2);
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 9, d1, false), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 20, 8), "9:3"); /* 4 is behind 3: still there */
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	CU_ASSERT_EQUAL(tq_aqueue_next_expiry(q), 31);
	/* the sweep finds expired messages wherever they are */
	CU_ASSERT_EQUAL(tq_aqueue_sweep(q, 30), 0);
	CU_ASSERT_EQUAL(tq_aqueue_sweep(q, 31), 1);
	CU_ASSERT_STRING_EQUAL(dead(q), "4/expired");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 0);
	tq_aqueue_destroy(q);
	assert_each_once(4);

	/* sweep in deadline order, from the middle of the queue, without dead-lettering */
	c = conf_default();
	q = mkq(&c);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 2, 0, 50, 1, 0, 0);
	pub_full(q, 3, 0, 20, 1, 0, 0);
	pub_full(q, 4, 0, 5, 1, 0, 10); /* until 15 */
	pub_full(q, 5, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	CU_ASSERT_EQUAL(tq_aqueue_sweep(q, 100), 3);
	CU_ASSERT_EQUAL(release_n, 3);
	CU_ASSERT_EQUAL(release_log[0], 4);
	CU_ASSERT_EQUAL(release_log[1], 3);
	CU_ASSERT_EQUAL(release_log[2], 2);
	cons(q, 1, 0, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 100, 8), "1:1 1:5");
	tq_aqueue_destroy(q);
	assert_each_once(5);
}

static void
test_ttl_zero(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.dead_letter = true;
	q = mkq(&c);
	/* nobody to take it: expires on arrival (the publish still succeeds) */
	CU_ASSERT_EQUAL(pub_full(q, 1, 0, 0, 1, 0, 5), 0);
	CU_ASSERT_STRING_EQUAL(dead(q), "1/expired");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 0);
	/* a consumer with room: delivered in the same millisecond */
	cons(q, 1, 0, 1);
	CU_ASSERT_EQUAL(pub_full(q, 2, 0, 0, 1, 0, 5), 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 5, 8), "1:2");
	/* its prefetch is full: expires on arrival */
	CU_ASSERT_EQUAL(pub_full(q, 3, 0, 0, 1, 0, 6), 0);
	CU_ASSERT_STRING_EQUAL(dead(q), "3/expired");
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, did(2), false), 1);
	/* accepted for a consumer, but dispatched a millisecond late: expired at the head */
	CU_ASSERT_EQUAL(pub_full(q, 4, 0, 0, 1, 0, 7), 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 8, 8), "");
	CU_ASSERT_STRING_EQUAL(dead(q), "4/expired");
	/* x-message-ttl 0 works the same */
	tq_aqueue_destroy(q);
	assert_each_once(4);

	c = conf_default();
	c.message_ttl = 0;
	q = mkq(&c);
	pub(q, 1);
	CU_ASSERT_EQUAL(released[1], 1);
	cons(q, 1, 0, 0);
	pub(q, 2);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:2");
	tq_aqueue_destroy(q);
	assert_each_once(2);
}

/* ---- limits ---- */

static void
test_max_length_drop_head(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.max_length = 3;
	c.dead_letter = true;
	q = mkq(&c);
	for (unsigned int i = 1; i <= 5; i++)
		CU_ASSERT_EQUAL(pub(q, i), 0);
	CU_ASSERT_STRING_EQUAL(dead(q), "1/maxlen 2/maxlen");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 3);
	/* unacked messages do not count */
	cons(q, 1, 0, 2);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:3 1:4");
	pub(q, 6);
	pub(q, 7);
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	pub(q, 8);
	CU_ASSERT_STRING_EQUAL(dead(q), "5/maxlen");
	/* requeues are never dropped, even over the limit; the next publish trims the head */
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, UINT64_MAX, true, true), 2);
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 5);
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	pub(q, 9);
	CU_ASSERT_STRING_EQUAL(dead(q), "3/maxlen 4/maxlen 6/maxlen");
	tq_aqueue_destroy(q);
	assert_each_once(9);

	/* without dead-lettering they are released; with priorities the head is the highest */
	c = conf_default();
	c.max_length = 2;
	c.max_priority = 5;
	q = mkq(&c);
	pub_full(q, 1, 1, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 2, 5, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 3, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	CU_ASSERT_EQUAL(release_n, 1);
	CU_ASSERT_EQUAL(release_log[0], 2);
	tq_aqueue_destroy(q);
	assert_each_once(3);

	/* x-max-length 0 holds nothing */
	c = conf_default();
	c.max_length = 0;
	q = mkq(&c);
	cons(q, 1, 0, 0);
	CU_ASSERT_EQUAL(pub(q, 1), 0);
	CU_ASSERT_EQUAL(released[1], 1);
	tq_aqueue_destroy(q);
	assert_each_once(1);
}

static void
test_max_length_bytes(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.max_length_bytes = 100;
	c.dead_letter = true;
	q = mkq(&c);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 40, 0, 0);
	pub_full(q, 2, 0, TQ_AQUEUE_TTL_NONE, 40, 0, 0);
	pub_full(q, 3, 0, TQ_AQUEUE_TTL_NONE, 20, 0, 0); /* exactly 100: fits */
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	pub_full(q, 4, 0, TQ_AQUEUE_TTL_NONE, 30, 0, 0);
	CU_ASSERT_STRING_EQUAL(dead(q), "1/maxlen");
	CU_ASSERT_EQUAL(tq_aqueue_ready_bytes(q), 90);
	pub_full(q, 5, 0, TQ_AQUEUE_TTL_NONE, 150, 0, 0); /* bigger than the limit: all go */
	CU_ASSERT_STRING_EQUAL(dead(q), "2/maxlen 3/maxlen 4/maxlen 5/maxlen");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 0);
	CU_ASSERT_EQUAL(tq_aqueue_ready_bytes(q), 0);
	tq_aqueue_destroy(q);
	assert_each_once(5);
}

static void
test_reject_publish(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;
	struct tq_aqueue_stats st;

	c.max_length = 2;
	c.max_length_bytes = 100;
	c.overflow = TQ_AQUEUE_REJECT_PUBLISH;
	c.dead_letter = true; /* reject-publish never dead-letters */
	q = mkq(&c);
	CU_ASSERT_EQUAL(pub(q, 1), 0);
	CU_ASSERT_EQUAL(pub(q, 2), 0);
	CU_ASSERT_EQUAL(pub(q, 3), TQ_AQUEUE_REFUSED);
	handed[3]++; /* still ours */
	CU_ASSERT_EQUAL(released[3], 0);
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	cons(q, 1, 0, 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:1");
	CU_ASSERT_EQUAL(pub_full(q, 4, 0, TQ_AQUEUE_TTL_NONE, 91, 0, 0), TQ_AQUEUE_REFUSED);
	handed[4]++;
	CU_ASSERT_EQUAL(pub_full(q, 5, 0, TQ_AQUEUE_TTL_NONE, 90, 0, 0), 0); /* 10 + 90 */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, did(1), false), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:2");
	tq_aqueue_stats(q, &st);
	CU_ASSERT_EQUAL(st.refused, 2);
	CU_ASSERT_EQUAL(st.published, 3);
	tq_aqueue_destroy(q);
	assert_each_once(5);
}

static void
test_reject_publish_dlx(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.max_length = 1;
	c.overflow = TQ_AQUEUE_REJECT_PUBLISH_DLX;
	c.dead_letter = true;
	q = mkq(&c);
	CU_ASSERT_EQUAL(pub(q, 1), 0);
	CU_ASSERT_EQUAL(pub(q, 2), TQ_AQUEUE_REFUSED_DEAD); /* taken, to dead-letter */
	CU_ASSERT_STRING_EQUAL(dead(q), "2/maxlen");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 1);
	tq_aqueue_destroy(q);
	assert_each_once(2);

	/* no dead-letter exchange: plain reject-publish */
	c.dead_letter = false;
	q = mkq(&c);
	CU_ASSERT_EQUAL(pub(q, 1), 0);
	CU_ASSERT_EQUAL(pub(q, 2), TQ_AQUEUE_REFUSED);
	handed[2]++;
	tq_aqueue_destroy(q);
	assert_each_once(2);
}

/* ---- dead-letter reasons and reject ---- */

static void
test_reject_dead_letters(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;
	struct tq_aqueue_dead d[4];

	c.dead_letter = true;
	q = mkq(&c);
	for (unsigned int i = 1; i <= 4; i++)
		pub(q, i);
	cons(q, 1, 0, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:1 1:2 1:3 1:4");
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, did(2), false, false), 1); /* basic.reject */
	CU_ASSERT_EQUAL(tq_aqueue_dead_pending(q), 1);
	CU_ASSERT_EQUAL(tq_aqueue_take_dead(q, d, 4), 1);
	handed[2]++;
	CU_ASSERT_EQUAL(d[0].msg, M(2));
	CU_ASSERT_EQUAL(d[0].reason, TQ_AQUEUE_DEAD_REJECTED);
	CU_ASSERT_EQUAL(d[0].delivery_count, 1);
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, did(4), true, false), 3); /* in order */
	CU_ASSERT_STRING_EQUAL(dead(q), "1/rejected 3/rejected 4/rejected");
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 0);
	/* a dead letter not taken yet is released by destroy */
	pub(q, 5);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:5");
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, did(5), false, false), 1);
	CU_ASSERT_EQUAL(tq_aqueue_dead_pending(q), 1);
	tq_aqueue_destroy(q);
	CU_ASSERT_EQUAL(released[5], 1);
	assert_each_once(5);

	/* no DLX: a reject releases */
	c.dead_letter = false;
	q = mkq(&c);
	pub(q, 1);
	cons(q, 1, 0, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:1");
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, did(1), false, false), 1);
	CU_ASSERT_EQUAL(released[1], 1);
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	tq_aqueue_destroy(q);
	assert_each_once(1);
}

/* ---- consumers ---- */

static void
test_round_robin_prefetch(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q = mkq(&c);

	cons(q, 1, 0, 2);
	cons(q, 2, 0, 2);
	cons(q, 3, 0, 2);
	for (unsigned int i = 1; i <= 8; i++)
		pub(q, i);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 4), "1:1 2:2 3:3 1:4");
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "2:5 3:6"); /* everyone at prefetch */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 2, 2, false), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "2:7");
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, 4, true), 2); /* 1's deliveries 1 and 4 */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:8");
	/* prefetch raised and lowered live */
	pub(q, 9);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_set_prefetch(q, 1, 1), 0); /* 1 unacked: full */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "");
	CU_ASSERT_EQUAL(tq_aqueue_consumer_set_prefetch(q, 3, 3), 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "3:9");
	CU_ASSERT_EQUAL(tq_aqueue_consumer_set_prefetch(q, 9, 3), -ENOENT);
	tq_aqueue_destroy(q);
	assert_each_once(9);
}

static void
test_consumer_priorities(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q = mkq(&c);

	cons(q, 1, 0, 0);  /* low, unlimited */
	cons(q, 2, 10, 2); /* high */
	cons(q, 3, 10, 1); /* high */
	cons(q, 4, -5, 0);
	for (unsigned int i = 1; i <= 6; i++)
		pub(q, i);
	/* the high ones round-robin until both block; then the next level down */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "2:1 3:2 2:3 1:4 1:5 1:6");
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 3, 2, false), 1);
	pub(q, 7);
	pub(q, 8);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "3:7 1:8");
	/* a paused high consumer (channel.flow) is skipped; resumed, it comes first again */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 2, UINT64_MAX, true), 2);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_pause(q, 2, true), 0);
	pub(q, 9);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:9");
	CU_ASSERT_EQUAL(tq_aqueue_consumer_pause(q, 2, false), 0);
	pub(q, 10);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "2:10");
	CU_ASSERT_EQUAL(tq_aqueue_consumer_pause(q, 77, true), -ENOENT);
	/* the highest level gone: the remaining levels still order */
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 2), 1); /* 10 back */
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 3), 1); /* 7 back */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:7r 1:10r");
	CU_ASSERT_EQUAL(tq_aqueue_consumers(q), 2);
	tq_aqueue_destroy(q);
	assert_each_once(10);
}

static void
test_exclusive_consumer(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q = mkq(&c);
	struct tq_aqueue_consumer_conf ex = {.id = 5, .exclusive = true};

	CU_ASSERT_EQUAL(cons(q, 1, 0, 0), 0);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_add(q, &ex), -EBUSY);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 1), 0);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 1), -ENOENT);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_add(q, &ex), 0);
	CU_ASSERT_EQUAL(cons(q, 2, 0, 0), -EBUSY);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 5), 0);
	CU_ASSERT_EQUAL(cons(q, 2, 0, 0), 0);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_add(q, NULL), -EINVAL);
	tq_aqueue_destroy(q);
}

static void
test_no_ack_consumer(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q = mkq(&c);
	struct tq_aqueue_consumer_conf na = {.id = 1, .no_ack = true, .prefetch = 1};

	CU_ASSERT_EQUAL(tq_aqueue_consumer_add(q, &na), 0);
	for (unsigned int i = 1; i <= 3; i++)
		pub(q, i);
	/* prefetch does not apply; the references are ours, the queue releases nothing */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:1s 1:2s 1:3s");
	CU_ASSERT_EQUAL(dl[0].delivery_id, 0);
	CU_ASSERT_EQUAL(release_n, 0);
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 0);
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, UINT64_MAX, true), 0);
	tq_aqueue_destroy(q);
	assert_each_once(3);
}

static void
test_single_active_consumer(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.single_active_consumer = true;
	q = mkq(&c);
	cons(q, 1, 0, 2);
	cons(q, 2, 100, 0); /* a higher priority does not take over (first registered wins) */
	cons(q, 3, 0, 0);
	for (unsigned int i = 1; i <= 5; i++)
		pub(q, i);
	/* only the active one, even when it is blocked */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:1 1:2");
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "");
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, 1, false), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:3");
	/* it goes: its unacked come back first, to the next registered */
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 1), 2);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "2:2r 2:3r 2:4 2:5");
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 2), 4);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "3:2r 3:3r 3:4r 3:5r");
	CU_ASSERT_EQUAL(dl[0].delivery_count, 3);
	tq_aqueue_destroy(q);
	assert_each_once(5);
}

/* ---- ack / nack / requeue ---- */

static void
test_multiple_ack_nack_per_consumer(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q = mkq(&c);

	cons(q, 1, 0, 0);
	cons(q, 2, 0, 0);
	for (unsigned int i = 1; i <= 8; i++)
		pub(q, i);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:1 2:2 1:3 2:4 1:5 2:6 1:7 2:8");
	/* ack multiple up to 5 for consumer 1: 1, 3, 5; consumer 2's untouched */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, did(5), true), 3);
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 5);
	/* up to an id that is not its own: still everything of its own below */
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 2, did(7), true, true), 3); /* 2, 4, 6 */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 2, did(7), false), -ENOENT); /* not its own */
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 3);
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, UINT64_MAX, true, true), 1); /* 7 */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:2r 2:4r 1:6r 2:7r");
	CU_ASSERT_EQUAL(dl[0].delivery_count, 2);
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 2, UINT64_MAX, true), 3); /* 8, 4, 7 */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, UINT64_MAX, true), 2);
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 0);
	tq_aqueue_destroy(q);
	assert_each_once(8);
}

static void
test_requeue_original_position(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;
	struct tq_aqueue_stats st;

	c.max_priority = 3;
	q = mkq(&c);
	for (unsigned int i = 1; i <= 6; i++)
		pub_full(q, i, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 7, 3, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	cons(q, 1, 0, 4);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:7 1:1 1:2 1:3");
	/* requeued out of order, one at a time: each goes back to where it was */
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, did(2), false, true), 1);
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, did(7), false, true), 1);
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, did(1), false, true), 1);
	pub_full(q, 8, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_set_prefetch(q, 1, 0), 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:7r 1:1r 1:2r 1:4 1:5 1:6 1:8");
	tq_aqueue_stats(q, &st);
	CU_ASSERT_EQUAL(st.requeued, 3);
	CU_ASSERT_EQUAL(st.redelivered, 3);
	tq_aqueue_destroy(q);
	assert_each_once(8);
}

/* ---- purge, get, destroy ---- */

static void
test_purge(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.dead_letter = true; /* purge does not dead-letter */
	q = mkq(&c);
	for (unsigned int i = 1; i <= 5; i++)
		pub(q, i);
	cons(q, 1, 0, 2);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:1 1:2");
	CU_ASSERT_EQUAL(tq_aqueue_purge(q), 3);
	CU_ASSERT_EQUAL(released[3] + released[4] + released[5], 3);
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 0);
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 2); /* untouched */
	CU_ASSERT_EQUAL(tq_aqueue_purge(q), 0);
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, UINT64_MAX, true, true), 2);
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 2);
	tq_aqueue_destroy(q);
	assert_each_once(5);
}

static void
test_basic_get(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;
	struct tq_aqueue_delivery d;

	c.dead_letter = true;
	q = mkq(&c);
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 0, 100, false, &d), 0); /* get-empty */
	pub_full(q, 1, 0, 5, 1, 0, 0);                           /* expires at 6 */
	for (unsigned int i = 2; i <= 5; i++)
		pub(q, i);
	/* no-ack get: settled, ours; an expired head is skipped (and dead-lettered) */
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 10, 100, true, &d), 1);
	CU_ASSERT_EQUAL(d.msg, M(2));
	CU_ASSERT(d.settled);
	handed[2]++;
	CU_ASSERT_STRING_EQUAL(dead(q), "1/expired");
	/* acked gets under a get id: no prefetch; ack one, nack the other back */
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 10, 100, false, &d), 1);
	CU_ASSERT_EQUAL(d.msg, M(3));
	CU_ASSERT_EQUAL(d.consumer, 100);
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 10, 100, false, &d), 1);
	CU_ASSERT_EQUAL(d.msg, M(4));
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 1);
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 2);
	CU_ASSERT_EQUAL(tq_aqueue_consumers(q), 0); /* a get id is not a consumer */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 100, d.delivery_id - 1, false), 1);
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 100, d.delivery_id, false, true), 1);
	/* nothing unacked: the get id is gone */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 100, UINT64_MAX, true), -ENOENT);
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 10, 100, false, &d), 1);
	CU_ASSERT_EQUAL(d.msg, M(4));
	CU_ASSERT(d.redelivered);
	/* closing the channel: consumer_remove on the get id requeues */
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 100), 1);
	/* a get id that names a consumer is refused; a consumer id that is a get id too */
	cons(q, 7, 0, 0);
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 10, 7, false, &d), -EINVAL);
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 10, 8, false, &d), 1);
	CU_ASSERT_EQUAL(cons(q, 8, 0, 0), -EEXIST);
	CU_ASSERT_STRING_EQUAL(disp(q, 10, 16), "7:5");
	tq_aqueue_destroy(q);
	assert_each_once(5);
}

static int allocs, frees;

static void *
count_alloc(void *ctx)
{
	CU_ASSERT_EQUAL(ctx, &allocs);
	allocs++;
	return malloc(tq_aqueue_node_size());
}

static void
count_free(void *ctx, void *p)
{
	CU_ASSERT_EQUAL(ctx, &allocs);
	frees++;
	free(p);
}

static void
test_destroy_releases_everything_once(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;
	struct tq_aqueue_delivery d;

	c.dead_letter = true;
	c.message_groups = true;
	c.max_priority = 4;
	c.node_alloc = count_alloc;
	c.node_free = count_free;
	c.ctx = &allocs;
	allocs = frees = 0;
	q = mkq(&c);
	cons(q, 1, 0, 3);
	cons(q, 2, 1, 3);
	for (unsigned int i = 1; i <= 40; i++)
		pub_full(q, i, (uint8_t)(i % 5), i % 3 ? TQ_AQUEUE_TTL_NONE : 50, 1, i % 4, 0);
	disp(q, 0, 4);
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 0, 99, false, &d), 1);
	CU_ASSERT_EQUAL(tq_aqueue_get(q, 0, 98, true, &d), 1);
	handed[ID(d.msg)]++;
	CU_ASSERT(tq_aqueue_nack(q, 2, UINT64_MAX, true, false) >= 1); /* dead, not taken */
	disp(q, 0, 2);
	CU_ASSERT(tq_aqueue_dead_pending(q) > 0);
	tq_aqueue_destroy(q);
	assert_each_once(40);
	CU_ASSERT_EQUAL(allocs, frees);
}

/* ---- message groups ---- */

#define GA 0xa1
#define GB 0xb2
#define GC 0xc3
#define GD 0xd4
#define GE 0xe5
#define GF 0xf6

static void
test_groups_spread_and_move(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;
	static const uint64_t groups[6] = {GA, GB, GC, GD, GE, GF};

	c.message_groups = true;
	q = mkq(&c);
	cons(q, 1, 0, 0);
	cons(q, 2, 0, 0);
	cons(q, 3, 0, 0);
	/* A1 B1 C1 D1 E1 F1 A2 B2 ... F2: message id = 10 * round + group index */
	for (unsigned int r = 1; r <= 2; r++)
		for (unsigned int g = 0; g < 6; g++)
			pub_full(q, 10 * r + g, 0, TQ_AQUEUE_TTL_NONE, 1, groups[g], 0);
	/* new groups go to the least loaded: A 1, B 2, C 3, D 1, E 2, F 3; then they stick */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 32),
			       "1:10 2:11 3:12 1:13 2:14 3:15 1:20 2:21 3:22 1:23 2:24 3:25");
	/* consumer 1 goes with A and D unacked: they move, in order, redelivered */
	pub_full(q, 30, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub_full(q, 33, 0, TQ_AQUEUE_TTL_NONE, 1, GD, 0);
	pub_full(q, 31, 0, TQ_AQUEUE_TTL_NONE, 1, GB, 0);
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 1), 4);
	/* A (least loaded, first in turn) to 2, D to 3, each in order; B stays with 2 */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 32), "2:10r 3:13r 2:31 3:23r 2:20r 3:33 2:30");
	tq_aqueue_destroy(q);
	for (unsigned int i = 10; i <= 33; i++)
		if (i % 10 <= 5 && i != 32)
			assert_once(i);
}

static void
test_groups_wait_for_their_owner(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.message_groups = true;
	q = mkq(&c);
	cons(q, 1, 0, 1);
	cons(q, 2, 0, 0);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub_full(q, 2, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub(q, 3); /* ungrouped */
	pub_full(q, 4, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub_full(q, 5, 0, TQ_AQUEUE_TTL_NONE, 1, GB, 0);
	/* A is 1's; while 1 is full A waits, everything else goes on */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:1 2:3 2:5");
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 2);
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, did(1), false), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:2");
	/* a requeue by the owner comes back first to the owner */
	CU_ASSERT_EQUAL(tq_aqueue_nack(q, 1, did(2), false, true), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:2r");
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, did(2), false), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:4");
	/* owner leaves with 4 unacked and 6, 7 waiting: all move to 2, in order */
	pub_full(q, 6, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub_full(q, 7, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "");
	CU_ASSERT_EQUAL(tq_aqueue_consumer_remove(q, 1), 1);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "2:4r 2:6 2:7");
	/* B (all acked) is forgotten: its next message goes to the least loaded */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 2, UINT64_MAX, true), 5);
	cons(q, 3, 0, 0);
	pub_full(q, 8, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0); /* A too: nothing in flight */
	pub_full(q, 9, 0, TQ_AQUEUE_TTL_NONE, 1, GB, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "2:8 3:9");
	tq_aqueue_destroy(q);
	assert_each_once(9);
}

static void
test_groups_least_loaded_and_ttl_zero(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.message_groups = true;
	c.dead_letter = true;
	q = mkq(&c);
	cons(q, 1, 0, 2);
	cons(q, 2, 0, 2);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub(q, 2);
	pub_full(q, 3, 0, TQ_AQUEUE_TTL_NONE, 1, GB, 0);
	/* round robin would give B to 1 (its turn); least loaded gives it to 2 (no group) */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:1 2:2 2:3");
	/* TTL 0 in a group whose owner is full expires, though 1 has room */
	CU_ASSERT_EQUAL(pub_full(q, 4, 0, 0, 1, GB, 0), 0);
	CU_ASSERT_STRING_EQUAL(dead(q), "4/expired");
	CU_ASSERT_EQUAL(pub_full(q, 5, 0, 0, 1, GA, 0), 0); /* A's owner has room */
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:5");
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	tq_aqueue_destroy(q);
	assert_each_once(5);
}

static void
test_groups_publish_order_and_ttl(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q;

	c.message_groups = true;
	c.max_priority = 9;
	c.dead_letter = true;
	q = mkq(&c);
	/* within a group, publish order; the group's turn comes with its first message */
	pub_full(q, 1, 1, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub_full(q, 2, 9, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub_full(q, 3, 5, TQ_AQUEUE_TTL_NONE, 1, 0, 0);
	pub_full(q, 4, 0, 10, 1, GB, 0); /* B's head expires; the next represents B */
	pub_full(q, 5, 7, TQ_AQUEUE_TTL_NONE, 1, GB, 0);
	CU_ASSERT_EQUAL(tq_aqueue_sweep(q, 11), 1);
	CU_ASSERT_STRING_EQUAL(dead(q), "4/expired");
	cons(q, 1, 0, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 11, 16), "1:5 1:3 1:1 1:2");
	/* groups are ignored with single active consumer */
	tq_aqueue_destroy(q);
	assert_each_once(5);

	c = conf_default();
	c.message_groups = true;
	c.single_active_consumer = true;
	q = mkq(&c);
	cons(q, 1, 0, 0);
	cons(q, 2, 0, 0);
	pub_full(q, 1, 0, TQ_AQUEUE_TTL_NONE, 1, GA, 0);
	pub_full(q, 2, 0, TQ_AQUEUE_TTL_NONE, 1, GB, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 16), "1:1 1:2");
	tq_aqueue_destroy(q);
	assert_each_once(2);
}

/* ---- randomized, against a reference model ---- */

static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static unsigned int
rnd(unsigned int n)
{
	return (unsigned int)(rng() % n);
}

enum { R_NONE, R_READY, R_UNACKED, R_GONE };

struct rmsg {
	int state;
	unsigned int level;
	uint64_t seq;
	uint64_t deadline;
	uint32_t size;
	uint64_t group;
	uint64_t consumer;
	uint64_t did;
	unsigned int dcount;
};

#define RCONS 24

struct rcons {
	bool present;
	bool is_get;
	uint64_t id;
	int32_t prio;
	uint32_t prefetch;
	bool no_ack;
	bool paused;
	unsigned int unacked;
	uint64_t reg; /* registration order */
};

struct model {
	struct tq_aqueue_conf conf;
	struct tq_aqueue *q;
	uint64_t now;
	unsigned int n_msgs; /* ids 1..n_msgs used */
	struct rmsg m[MAXMSG];
	unsigned int live[MAXMSG]; /* ids ready or unacked */
	unsigned int n_live;
	struct rcons c[RCONS];
	uint64_t next_reg;
	uint64_t ready, bytes, unacked;
	/* what the queue must hand back, in order */
	unsigned int exp_dead[256], exp_dead_n;
	unsigned int exp_dead_reason[256];
	unsigned int exp_rel[256], exp_rel_n;
};

static struct model md;

static bool
r_room(const struct rcons *c)
{
	return c->present && !c->is_get && !c->paused &&
	       (c->no_ack || c->prefetch == 0 || c->unacked < c->prefetch);
}

/* The consumer slot a delivery may go to, by the rules; -1: none. */
static bool
r_may_take(int ci)
{
	const struct rcons *c = &md.c[ci];
	int32_t top = INT32_MIN;
	bool any = false;

	if (!r_room(c))
		return false;
	if (md.conf.single_active_consumer) {
		uint64_t first = UINT64_MAX;
		for (int i = 0; i < RCONS; i++)
			if (md.c[i].present && !md.c[i].is_get && md.c[i].reg < first)
				first = md.c[i].reg;
		return c->reg == first;
	}
	for (int i = 0; i < RCONS; i++)
		if (r_room(&md.c[i]) && (!any || md.c[i].prio > top)) {
			top = md.c[i].prio;
			any = true;
		}
	return c->prio == top;
}

static bool
r_anyone(void)
{
	for (int i = 0; i < RCONS; i++)
		if (r_may_take(i))
			return true;
	return false;
}

static int
r_slot(uint64_t id)
{
	for (int i = 0; i < RCONS; i++)
		if (md.c[i].present && md.c[i].id == id)
			return i;
	return -1;
}

static unsigned int
r_head(void)
{
	unsigned int best = 0;

	for (unsigned int i = 0; i < md.n_live; i++) {
		const struct rmsg *a = &md.m[md.live[i]];
		const struct rmsg *b = &md.m[best];
		if (a->state != R_READY)
			continue;
		if (!best || a->level > b->level || (a->level == b->level && a->seq < b->seq))
			best = md.live[i];
	}
	return best;
}

static void
r_unlive(unsigned int id)
{
	for (unsigned int i = 0; i < md.n_live; i++)
		if (md.live[i] == id) {
			md.live[i] = md.live[--md.n_live];
			return;
		}
	CU_FAIL_FATAL("not live");
}

/* A ready or unacked message leaves: expected back as a dead letter or a release. */
static void
r_leave(unsigned int id, int reason, bool dead_letter)
{
	struct rmsg *m = &md.m[id];

	if (m->state == R_READY) {
		md.ready--;
		md.bytes -= m->size;
	} else {
		md.unacked--;
	}
	m->state = R_GONE;
	r_unlive(id);
	if (dead_letter && md.conf.dead_letter) {
		CU_ASSERT_FATAL(md.exp_dead_n < 256);
		md.exp_dead_reason[md.exp_dead_n] = (unsigned int)reason;
		md.exp_dead[md.exp_dead_n++] = id;
	} else {
		CU_ASSERT_FATAL(md.exp_rel_n < 256);
		md.exp_rel[md.exp_rel_n++] = id;
	}
}

/* Compare what the queue handed back during the last operation with the model. */
static void
r_check_outputs(void)
{
	struct tq_aqueue_dead d[256];
	unsigned int n = tq_aqueue_take_dead(md.q, d, 256);

	CU_ASSERT_EQUAL_FATAL(n, md.exp_dead_n);
	for (unsigned int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL_FATAL(ID(d[i].msg), md.exp_dead[i]);
		CU_ASSERT_EQUAL_FATAL(d[i].reason, md.exp_dead_reason[i]);
		handed[ID(d[i].msg)]++;
	}
	CU_ASSERT_EQUAL_FATAL(release_n, md.exp_rel_n);
	for (unsigned int i = 0; i < release_n; i++)
		CU_ASSERT_EQUAL_FATAL(release_log[i], md.exp_rel[i]);
	md.exp_dead_n = md.exp_rel_n = 0;
	release_n = 0;
	CU_ASSERT_EQUAL_FATAL(tq_aqueue_ready(md.q), md.ready);
	CU_ASSERT_EQUAL_FATAL(tq_aqueue_ready_bytes(md.q), md.bytes);
	CU_ASSERT_EQUAL_FATAL(tq_aqueue_unacked(md.q), md.unacked);
}

/* Expire ready messages at the head, as dispatch and get do. */
static void
r_expire_heads(void)
{
	unsigned int h;

	while ((h = r_head()) && md.now > md.m[h].deadline)
		r_leave(h, TQ_AQUEUE_DEAD_EXPIRED, true);
}

/* The queue handed @d to someone: check it is the head and a legal consumer, then apply. */
static void
r_delivered(const struct tq_aqueue_delivery *d, bool get, bool get_no_ack)
{
	unsigned int id = ID(d->msg);
	struct rmsg *m = &md.m[id];
	int ci = r_slot(d->consumer);

	r_expire_heads();
	CU_ASSERT_EQUAL_FATAL(id, r_head());
	CU_ASSERT_FATAL(md.now <= m->deadline);
	if (!get) {
		CU_ASSERT_FATAL(ci >= 0);
		CU_ASSERT_FATAL(r_may_take(ci));
	}
	m->dcount++;
	CU_ASSERT_EQUAL_FATAL(d->delivery_count, m->dcount);
	CU_ASSERT_EQUAL_FATAL(d->redelivered, m->dcount > 1);
	md.ready--;
	md.bytes -= m->size;
	if (get ? get_no_ack : md.c[ci].no_ack) {
		CU_ASSERT_FATAL(d->settled);
		m->state = R_GONE;
		r_unlive(id);
		handed[id]++;
		return;
	}
	CU_ASSERT_FATAL(!d->settled);
	if (ci < 0) { /* a new get id */
		for (ci = 0; ci < RCONS && md.c[ci].present; ci++)
			;
		CU_ASSERT_FATAL(ci < RCONS);
		memset(&md.c[ci], 0, sizeof(md.c[ci]));
		md.c[ci].present = md.c[ci].is_get = true;
		md.c[ci].id = d->consumer;
	}
	m->state = R_UNACKED;
	m->consumer = d->consumer;
	m->did = d->delivery_id;
	md.c[ci].unacked++;
	md.unacked++;
}

static void
r_publish(void)
{
	unsigned int id = ++md.n_msgs;
	struct rmsg *m = &md.m[id];
	uint8_t prio = (uint8_t)rnd(8);
	uint32_t size = 1 + rnd(100);
	uint64_t ttl = TQ_AQUEUE_TTL_NONE, eff;
	unsigned int r = rnd(10);
	bool over;
	int rc;

	if (r < 2)
		ttl = rnd(40);
	else if (r < 3)
		ttl = 0;
	over = md.ready + 1 > md.conf.max_length ||
	       (md.conf.max_length_bytes != TQ_AQUEUE_UNLIMITED &&
		md.bytes + size > md.conf.max_length_bytes);
	rc = pub_full(md.q, id, prio, ttl, size, 0, md.now);
	if (over && md.conf.overflow != TQ_AQUEUE_DROP_HEAD) {
		if (md.conf.overflow == TQ_AQUEUE_REJECT_PUBLISH_DLX && md.conf.dead_letter) {
			CU_ASSERT_EQUAL_FATAL(rc, TQ_AQUEUE_REFUSED_DEAD);
			md.exp_dead_reason[md.exp_dead_n] = TQ_AQUEUE_DEAD_MAXLEN;
			md.exp_dead[md.exp_dead_n++] = id;
		} else {
			CU_ASSERT_EQUAL_FATAL(rc, TQ_AQUEUE_REFUSED);
			handed[id]++;
		}
		m->state = R_GONE;
		return;
	}
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	eff = ttl < md.conf.message_ttl ? ttl : md.conf.message_ttl;
	m->state = R_READY;
	m->level = prio < md.conf.max_priority ? prio : md.conf.max_priority;
	m->seq = id;
	m->deadline = eff == TQ_AQUEUE_TTL_NONE ? TQ_AQUEUE_TTL_NONE : md.now + eff;
	m->size = size;
	md.live[md.n_live++] = id;
	md.ready++;
	md.bytes += size;
	if (eff == 0 && !r_anyone()) {
		r_leave(id, TQ_AQUEUE_DEAD_EXPIRED, true);
		return;
	}
	while (md.ready > md.conf.max_length || (md.conf.max_length_bytes != TQ_AQUEUE_UNLIMITED &&
						 md.bytes > md.conf.max_length_bytes))
		r_leave(r_head(), TQ_AQUEUE_DEAD_MAXLEN, true);
}

static void
r_dispatch(void)
{
	struct tq_aqueue_delivery d[8];
	unsigned int max = 1 + rnd(8), n;

	n = tq_aqueue_dispatch(md.q, md.now, d, max);
	for (unsigned int i = 0; i < n; i++)
		r_delivered(&d[i], false, false);
	if (n < max) { /* it stopped: nothing left, or nobody to take the head */
		r_expire_heads();
		CU_ASSERT_FATAL(r_head() == 0 || !r_anyone());
	}
}

/* Pick a random unacked message: its id, or 0. */
static unsigned int
r_pick_unacked(void)
{
	unsigned int start, id;

	if (md.unacked == 0)
		return 0;
	start = rnd(md.n_live);
	for (unsigned int i = 0; i < md.n_live; i++) {
		id = md.live[(start + i) % md.n_live];
		if (md.m[id].state == R_UNACKED)
			return id;
	}
	return 0;
}

/* Ack (how 0), requeue (1) or discard (2) one delivery, or all of a consumer's up to it. */
static void
r_settle(int how)
{
	unsigned int id = r_pick_unacked(), sel[MAXMSG / 8], nsel = 0;
	bool multiple = rnd(3) == 0;
	uint64_t cid, upto;
	int ci, rc;

	if (!id)
		return;
	cid = md.m[id].consumer;
	upto = md.m[id].did;
	ci = r_slot(cid);
	for (unsigned int i = 0; i < md.n_live; i++) {
		struct rmsg *m = &md.m[md.live[i]];
		if (m->state == R_UNACKED && m->consumer == cid &&
		    (multiple ? m->did <= upto : m->did == upto))
			sel[nsel++] = md.live[i];
	}
	/* in delivery order */
	for (unsigned int i = 1; i < nsel; i++)
		for (unsigned int j = i; j > 0 && md.m[sel[j]].did < md.m[sel[j - 1]].did; j--) {
			unsigned int t = sel[j];
			sel[j] = sel[j - 1];
			sel[j - 1] = t;
		}
	rc = how == 0 ? tq_aqueue_ack(md.q, cid, upto, multiple)
		      : tq_aqueue_nack(md.q, cid, upto, multiple, how == 1);
	CU_ASSERT_EQUAL_FATAL(rc, (int)nsel);
	for (unsigned int i = 0; i < nsel; i++) {
		struct rmsg *m = &md.m[sel[i]];
		md.c[ci].unacked--;
		if (how == 1) {
			m->state = R_READY;
			md.unacked--;
			md.ready++;
			md.bytes += m->size;
		} else {
			r_leave(sel[i], TQ_AQUEUE_DEAD_REJECTED, how == 2);
		}
	}
	if (md.c[ci].is_get && md.c[ci].unacked == 0)
		md.c[ci].present = false;
}

static void
r_consumer_add(void)
{
	int ci;
	struct tq_aqueue_consumer_conf cc = {0};

	for (ci = 0; ci < RCONS && md.c[ci].present; ci++)
		;
	if (ci >= RCONS - 2) /* keep slots for the two get ids */
		return;
	cc.id = 1000 + md.next_reg;
	cc.priority = (int32_t)rnd(3);
	cc.prefetch = rnd(4);
	cc.no_ack = rnd(7) == 0;
	CU_ASSERT_EQUAL_FATAL(tq_aqueue_consumer_add(md.q, &cc), 0);
	memset(&md.c[ci], 0, sizeof(md.c[ci]));
	md.c[ci].present = true;
	md.c[ci].id = cc.id;
	md.c[ci].prio = cc.priority;
	md.c[ci].prefetch = cc.prefetch;
	md.c[ci].no_ack = cc.no_ack;
	md.c[ci].reg = md.next_reg++;
}

static void
r_consumer_remove(void)
{
	int ci = (int)rnd(RCONS);
	unsigned int n = 0;

	if (!md.c[ci].present)
		return;
	for (unsigned int i = 0; i < md.n_live; i++) {
		struct rmsg *m = &md.m[md.live[i]];
		if (m->state == R_UNACKED && m->consumer == md.c[ci].id) {
			m->state = R_READY;
			md.unacked--;
			md.ready++;
			md.bytes += m->size;
			n++;
		}
	}
	CU_ASSERT_EQUAL_FATAL(tq_aqueue_consumer_remove(md.q, md.c[ci].id), (int)n);
	md.c[ci].present = false;
}

static void
r_get(void)
{
	struct tq_aqueue_delivery d;
	bool no_ack = rnd(2);
	uint64_t gid = 1 + rnd(2);
	int rc = tq_aqueue_get(md.q, md.now, gid, no_ack, &d);

	if (rc == 0) {
		r_expire_heads();
		CU_ASSERT_EQUAL_FATAL(r_head(), 0);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(rc, 1);
	r_delivered(&d, true, no_ack);
}

static void
r_sweep(void)
{
	unsigned int n = tq_aqueue_sweep(md.q, md.now), want = 0;

	/* every expired ready message, earliest deadline first (then publish order) */
	for (;;) {
		unsigned int best = 0;
		for (unsigned int i = 0; i < md.n_live; i++) {
			struct rmsg *a = &md.m[md.live[i]];
			if (a->state != R_READY || md.now <= a->deadline)
				continue;
			if (!best || a->deadline < md.m[best].deadline ||
			    (a->deadline == md.m[best].deadline && a->seq < md.m[best].seq))
				best = md.live[i];
		}
		if (!best)
			break;
		r_leave(best, TQ_AQUEUE_DEAD_EXPIRED, true);
		want++;
	}
	CU_ASSERT_EQUAL_FATAL(n, want);
}

static void
r_purge(void)
{
	unsigned int want = 0, h;

	while ((h = r_head())) {
		r_leave(h, 0, false);
		want++;
	}
	CU_ASSERT_EQUAL_FATAL(tq_aqueue_purge(md.q), want);
}

static void
model_run(const struct tq_aqueue_conf *conf, uint64_t seed, unsigned int ops)
{
	memset(&md, 0, sizeof(md));
	md.conf = *conf;
	md.q = mkq(conf);
	rng_state = seed;
	for (unsigned int op = 0; op < ops && md.n_msgs < MAXMSG - 2; op++) {
		unsigned int r = rnd(100);

		md.now += rnd(3);
		if (r < 35)
			r_publish();
		else if (r < 60)
			r_dispatch();
		else if (r < 70)
			r_settle(0);
		else if (r < 76)
			r_settle(1);
		else if (r < 79)
			r_settle(2);
		else if (r < 83)
			r_consumer_add();
		else if (r < 86)
			r_consumer_remove();
		else if (r < 89) {
			int ci = (int)rnd(RCONS);
			if (md.c[ci].present && !md.c[ci].is_get) {
				md.c[ci].paused = !md.c[ci].paused;
				CU_ASSERT_EQUAL_FATAL(tq_aqueue_consumer_pause(md.q, md.c[ci].id,
									       md.c[ci].paused),
						      0);
			}
		} else if (r < 94)
			r_get();
		else if (r < 99)
			r_sweep();
		else if (rnd(4) == 0)
			r_purge();
		r_check_outputs();
	}
	/* queue delete: everything left comes back through release, once */
	tq_aqueue_destroy(md.q);
	assert_each_once(md.n_msgs);
}

static void
test_model_random(void)
{
	static const struct {
		uint64_t max_length, max_bytes, ttl;
		enum tq_aqueue_overflow overflow;
		uint8_t max_priority;
		bool sac, dlx;
	} cfgs[] = {
		{TQ_AQUEUE_UNLIMITED, TQ_AQUEUE_UNLIMITED, TQ_AQUEUE_TTL_NONE, TQ_AQUEUE_DROP_HEAD,
		 0, false, false},
		{TQ_AQUEUE_UNLIMITED, TQ_AQUEUE_UNLIMITED, TQ_AQUEUE_TTL_NONE, TQ_AQUEUE_DROP_HEAD,
		 5, false, true},
		{12, TQ_AQUEUE_UNLIMITED, 30, TQ_AQUEUE_DROP_HEAD, 5, false, true},
		{12, 600, TQ_AQUEUE_TTL_NONE, TQ_AQUEUE_REJECT_PUBLISH, 3, false, true},
		{TQ_AQUEUE_UNLIMITED, 500, 25, TQ_AQUEUE_REJECT_PUBLISH_DLX, 7, false, true},
		{8, TQ_AQUEUE_UNLIMITED, TQ_AQUEUE_TTL_NONE, TQ_AQUEUE_REJECT_PUBLISH_DLX, 0, false,
		 false},
		{10, TQ_AQUEUE_UNLIMITED, 20, TQ_AQUEUE_DROP_HEAD, 2, true, true},
		{TQ_AQUEUE_UNLIMITED, TQ_AQUEUE_UNLIMITED, TQ_AQUEUE_TTL_NONE, TQ_AQUEUE_DROP_HEAD,
		 255, true, false},
	};
	unsigned int runs = 0;

	for (unsigned int k = 0; k < sizeof(cfgs) / sizeof(cfgs[0]); k++)
		for (uint64_t seed = 1; seed <= 6; seed++) {
			struct tq_aqueue_conf c = conf_default();

			c.max_length = cfgs[k].max_length;
			c.max_length_bytes = cfgs[k].max_bytes;
			c.message_ttl = cfgs[k].ttl;
			c.overflow = cfgs[k].overflow;
			c.max_priority = cfgs[k].max_priority;
			c.single_active_consumer = cfgs[k].sac;
			c.dead_letter = cfgs[k].dlx;
			model_run(&c, seed * 0x9e3779b97f4a7c15ull + k, 6000);
			runs++;
		}
	CU_ASSERT_EQUAL(runs, 48);
}

/*
 * Groups, randomized: per group, messages go out in publish order (requeued ones again
 * first), a group's unacked messages are held by one consumer at a time, and each message
 * leaves once. Get is left out (it ignores groups by design).
 */
static void
test_groups_random(void)
{
	for (uint64_t seed = 1; seed <= 10; seed++) {
		struct tq_aqueue_conf c = conf_default();
		struct tq_aqueue *q;
		struct tq_aqueue_delivery d[8];
		/* per message: group, state (0 ready, 1 unacked, 2 gone), holder, delivery id */
		static uint64_t grp[MAXMSG], holder[MAXMSG], dids[MAXMSG];
		static int st[MAXMSG];
		unsigned int n_msgs = 0, n_cons = 0;
		uint64_t cons_ids[8];
		uint32_t prefetch[8];

		c.message_groups = true;
		c.max_priority = 3;
		q = mkq(&c);
		rng_state = seed * 0x2545f4914f6cdd1dull;
		for (unsigned int op = 0; op < 8000; op++) {
			unsigned int r = rnd(100);

			if (r < 40 && n_msgs < MAXMSG - 2) {
				unsigned int id = ++n_msgs;
				grp[id] = rnd(4) ? 1 + rnd(6) : 0;
				st[id] = 0;
				CU_ASSERT_EQUAL_FATAL(pub_full(q, id, (uint8_t)rnd(4),
							       TQ_AQUEUE_TTL_NONE, 1, grp[id], 0),
						      0);
			} else if (r < 70) {
				unsigned int n = tq_aqueue_dispatch(q, 0, d, 8);
				for (unsigned int i = 0; i < n; i++) {
					unsigned int id = ID(d[i].msg);
					CU_ASSERT_EQUAL_FATAL(st[id], 0);
					for (unsigned int j = 1; j <= n_msgs; j++) {
						if (j == id || !grp[id] || grp[j] != grp[id])
							continue;
						/* nothing earlier of its group is still ready */
						CU_ASSERT_FATAL(j > id || st[j] != 0);
						/* nobody else holds its group */
						CU_ASSERT_FATAL(st[j] != 1 ||
								holder[j] == d[i].consumer);
					}
					st[id] = 1;
					holder[id] = d[i].consumer;
					dids[id] = d[i].delivery_id;
				}
			} else if (r < 88) {
				/* ack or requeue a random unacked one */
				unsigned int id = 1 + rnd(n_msgs ? n_msgs : 1);
				if (id <= n_msgs && st[id] == 1) {
					bool requeue = rnd(3) == 0;
					CU_ASSERT_EQUAL_FATAL(tq_aqueue_nack(q, holder[id],
									     dids[id], false,
									     requeue),
							      1);
					st[id] = requeue ? 0 : 2;
				}
			} else if (r < 94 && n_cons < 8) {
				cons_ids[n_cons] = 500 + seed * 100 + op;
				prefetch[n_cons] = rnd(4);
				CU_ASSERT_EQUAL_FATAL(cons(q, cons_ids[n_cons], (int32_t)rnd(2),
							   prefetch[n_cons]),
						      0);
				n_cons++;
			} else if (n_cons > 0) {
				unsigned int k = rnd(n_cons);
				tq_aqueue_consumer_remove(q, cons_ids[k]);
				for (unsigned int j = 1; j <= n_msgs; j++)
					if (st[j] == 1 && holder[j] == cons_ids[k])
						st[j] = 0;
				cons_ids[k] = cons_ids[--n_cons];
			}
		}
		tq_aqueue_destroy(q);
		for (unsigned int j = 1; j <= n_msgs; j++)
			CU_ASSERT_EQUAL_FATAL(released[j], 1); /* nack without DLX releases too */
	}
}

/* ---- settings changed on a live queue (policies) ---- */

static void
test_set_limits_drop_head(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue_stats st;
	struct tq_aqueue *q = mkq(&c);

	for (unsigned int i = 1; i <= 6; i++)
		CU_ASSERT_EQUAL(pub(q, i), 0);
	/* a consumer holds two: unacked messages never count against the limits */
	cons(q, 1, 0, 2);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:1 1:2");
	/* lowered to 2 without a DLX: the two oldest ready ones are released at once */
	c.max_length = 2;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), 2);
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 2);
	CU_ASSERT_EQUAL(tq_aqueue_unacked(q), 2);
	CU_ASSERT_EQUAL(released[3], 1);
	CU_ASSERT_EQUAL(released[4], 1);
	CU_ASSERT_EQUAL(released[5] + released[1], 0);
	/* the new limit holds for publishes too: drop-head */
	CU_ASSERT_EQUAL(pub(q, 7), 0);
	CU_ASSERT_EQUAL(released[5], 1);
	/* raised: nothing moves */
	c.max_length = 10;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), 0);
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 2);
	/* bytes, now with a DLX: dead-lettered "maxlen", oldest first */
	CU_ASSERT_EQUAL(pub_full(q, 8, 0, TQ_AQUEUE_TTL_NONE, 50, 0, 0), 0);
	c.max_length_bytes = 60;
	c.dead_letter = true;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), 1); /* 10 + 10 + 50 > 60: 6 goes */
	CU_ASSERT_STRING_EQUAL(dead(q), "6/maxlen");
	CU_ASSERT_EQUAL(tq_aqueue_ready_bytes(q), 60); /* 7 and 8 */
	tq_aqueue_stats(q, &st);
	CU_ASSERT_EQUAL(st.dropped, 4);
	/* the consumer still gets what is left, in order */
	CU_ASSERT_EQUAL(tq_aqueue_ack(q, 1, UINT64_MAX, true), 2);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 8), "1:7 1:8");
	tq_aqueue_destroy(q);
	assert_each_once(8);
}

static void
test_set_limits_reject_keeps_excess(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q = mkq(&c);

	for (unsigned int i = 1; i <= 4; i++)
		CU_ASSERT_EQUAL(pub(q, i), 0);
	c.max_length = 2;
	c.overflow = TQ_AQUEUE_REJECT_PUBLISH;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), 0);
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 4); /* held ones stay */
	CU_ASSERT_EQUAL(pub(q, 5), TQ_AQUEUE_REFUSED);
	handed[5]++; /* refused: still ours */
	cons(q, 1, 0, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 0, 3), "1:1 1:2 1:3");
	CU_ASSERT_EQUAL(pub(q, 6), 0); /* one ready: room again */
	CU_ASSERT_EQUAL(pub(q, 7), TQ_AQUEUE_REFUSED);
	handed[7]++;
	/* back to drop-head with the same limit: within it, nothing dropped */
	c.overflow = TQ_AQUEUE_DROP_HEAD;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), 0);
	/* a bad overflow changes nothing */
	c.overflow = (enum tq_aqueue_overflow)9;
	c.max_length = 0;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), -EINVAL);
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_aqueue_ready(q), 2);
	CU_ASSERT_EQUAL(pub(q, 8), 0); /* still drop-head at 2: 4 goes */
	CU_ASSERT_EQUAL(released[4], 1);
	tq_aqueue_destroy(q);
	assert_each_once(8);
}

static void
test_set_limits_ttl_and_dead_letter(void)
{
	struct tq_aqueue_conf c = conf_default();
	struct tq_aqueue *q = mkq(&c);

	CU_ASSERT_EQUAL(pub(q, 1), 0); /* no TTL when published: never expires */
	c.message_ttl = 100;
	c.dead_letter = true;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), 0);
	CU_ASSERT_EQUAL(pub_full(q, 2, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 0), 0); /* until 100 */
	CU_ASSERT_EQUAL(tq_aqueue_next_expiry(q), 101);
	CU_ASSERT_EQUAL(tq_aqueue_sweep(q, 200), 1);
	CU_ASSERT_STRING_EQUAL(dead(q), "2/expired");
	/* TTL and DLX removed: later messages live on, and go without a dead letter */
	c.message_ttl = TQ_AQUEUE_TTL_NONE;
	c.dead_letter = false;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), 0);
	CU_ASSERT_EQUAL(pub_full(q, 3, 0, TQ_AQUEUE_TTL_NONE, 1, 0, 200), 0);
	CU_ASSERT_EQUAL(tq_aqueue_next_expiry(q), UINT64_MAX);
	c.max_length = 1;
	CU_ASSERT_EQUAL(tq_aqueue_set_limits(q, &c), 1);
	CU_ASSERT_EQUAL(released[1], 1);
	CU_ASSERT_STRING_EQUAL(dead(q), "");
	cons(q, 1, 0, 0);
	CU_ASSERT_STRING_EQUAL(disp(q, 100000, 8), "1:3");
	tq_aqueue_destroy(q);
	assert_each_once(3);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_create_rejects_bad_conf),
		TQ_TEST(test_fifo_counts_ack),
		TQ_TEST(test_message_priorities),
		TQ_TEST(test_ttl_queue_and_message),
		TQ_TEST(test_ttl_head_only_then_sweep),
		TQ_TEST(test_ttl_zero),
		TQ_TEST(test_max_length_drop_head),
		TQ_TEST(test_max_length_bytes),
		TQ_TEST(test_reject_publish),
		TQ_TEST(test_reject_publish_dlx),
		TQ_TEST(test_reject_dead_letters),
		TQ_TEST(test_round_robin_prefetch),
		TQ_TEST(test_consumer_priorities),
		TQ_TEST(test_exclusive_consumer),
		TQ_TEST(test_no_ack_consumer),
		TQ_TEST(test_single_active_consumer),
		TQ_TEST(test_multiple_ack_nack_per_consumer),
		TQ_TEST(test_requeue_original_position),
		TQ_TEST(test_purge),
		TQ_TEST(test_basic_get),
		TQ_TEST(test_destroy_releases_everything_once),
		TQ_TEST(test_groups_spread_and_move),
		TQ_TEST(test_groups_wait_for_their_owner),
		TQ_TEST(test_groups_least_loaded_and_ttl_zero),
		TQ_TEST(test_groups_publish_order_and_ttl),
		TQ_TEST(test_model_random),
		TQ_TEST(test_groups_random),
		TQ_TEST(test_set_limits_drop_head),
		TQ_TEST(test_set_limits_reject_keeps_excess),
		TQ_TEST(test_set_limits_ttl_and_dead_letter),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("aqueue", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
