/*
 * tq_exchange: RabbitMQ's semantics for every exchange type (the tutorials' and the Java
 * client's routing examples, rewritten here), the default and built-in exchanges, reserved
 * names, declare equivalence, exchange-to-exchange bindings with cycles, alternate exchanges
 * (chains, cycles, late ones), dedup across paths, auto-delete cascades, if-unused, queues,
 * headers matching with typed values, vhosts, listing, scratch limits, and two QSBR readers
 * routing while a writer churns bindings, queues and auto-delete exchanges.
 *
 * The main thread is an online QSBR reader (it routes) and the writer; it announces a
 * quiescent state after each test and goes offline before urcu_qsbr_barrier() at the end
 * so LeakSanitizer sees nothing pending.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "routing/tq_exchange.h"
#include "tq_test.h"

#define VH "/"

static struct tq_exchange_reg *R;
static struct tq_exchange_scratch *S;

static void
setup(void)
{
	R = tq_exchange_reg_create();
	S = tq_exchange_scratch_create(256, 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(R);
	CU_ASSERT_PTR_NOT_NULL_FATAL(S);
	CU_ASSERT_EQUAL_FATAL(tq_exchange_vhost_add(R, VH, 1), 0);
}

static void
teardown(void)
{
	tq_exchange_reg_destroy(R);
	tq_exchange_scratch_free(S);
	R = NULL;
	S = NULL;
	urcu_qsbr_quiescent_state();
}

/* ---- calls with C strings ----------------------------------------------------------- */

static int
decl_full(const char *name, const char *type, uint32_t flags, bool passive,
	  const struct tq_xheader *args, uint32_t nargs)
{
	const struct tq_exchange_decl d = {
		.name = name, .nlen = strlen(name), .type = type, .tlen = type ? strlen(type) : 0,
		.flags = flags, .passive = passive, .args = args, .nargs = nargs};

	return tq_exchange_declare(R, VH, 1, &d);
}

static int
decl(const char *name, const char *type, uint32_t flags)
{
	return decl_full(name, type, flags, false, NULL, 0);
}

static int
passive(const char *name)
{
	return decl_full(name, NULL, 0, true, NULL, 0);
}

static struct tq_xheader
hs(const char *k, const char *v)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = 'S',
				   .v.bytes = {(const uint8_t *)v, (uint32_t)strlen(v)}};
}

static struct tq_xheader
hraw(const char *k, uint8_t tag, const void *p, uint32_t len)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = tag,
				   .v.bytes = {p, len}};
}

static struct tq_xheader
hi(const char *k, uint8_t tag, int64_t i)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = tag, .v.i = i};
}

static struct tq_xheader
hu(const char *k, uint8_t tag, uint64_t u)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = tag, .v.u = u};
}

static struct tq_xheader
hd(const char *k, double d)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = 'd', .v.d = d};
}

static struct tq_xheader
hf(const char *k, float f)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = 'f', .v.f = f};
}

static struct tq_xheader
hb(const char *k, bool b)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = 't', .v.b = b};
}

static struct tq_xheader
hv(const char *k)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = 'V'};
}

static struct tq_xheader
hdec(const char *k, uint8_t scale, uint32_t value)
{
	return (struct tq_xheader){.key = k, .klen = (uint16_t)strlen(k), .tag = 'D',
				   .v.dec = {scale, value}};
}

#define ARGS(...) ((const struct tq_xheader[]){__VA_ARGS__})
#define NARGS(...) ((uint32_t)(sizeof(ARGS(__VA_ARGS__)) / sizeof(struct tq_xheader)))

static struct tq_exchange_binding
spec(const char *src, const char *dst, enum tq_exchange_dest kind, const char *key,
     const struct tq_xheader *args, uint32_t nargs)
{
	return (struct tq_exchange_binding){
		.src = src, .slen = strlen(src), .dst = dst, .dlen = strlen(dst), .kind = kind,
		.key = key, .klen = strlen(key), .args = args, .nargs = nargs};
}

static int
bindq_args(const char *x, const char *q, const char *key, const struct tq_xheader *a, uint32_t n)
{
	struct tq_exchange_binding b = spec(x, q, TQ_EXCHANGE_TO_QUEUE, key, a, n);

	return tq_exchange_bind(R, VH, 1, &b);
}

static int
bindq(const char *x, const char *q, const char *key)
{
	return bindq_args(x, q, key, NULL, 0);
}

static int
unbindq_args(const char *x, const char *q, const char *key, const struct tq_xheader *a,
	     uint32_t n)
{
	struct tq_exchange_binding b = spec(x, q, TQ_EXCHANGE_TO_QUEUE, key, a, n);

	return tq_exchange_unbind(R, VH, 1, &b);
}

static int
unbindq(const char *x, const char *q, const char *key)
{
	return unbindq_args(x, q, key, NULL, 0);
}

static int
bindx(const char *src, const char *dst, const char *key)
{
	struct tq_exchange_binding b = spec(src, dst, TQ_EXCHANGE_TO_EXCHANGE, key, NULL, 0);

	return tq_exchange_bind(R, VH, 1, &b);
}

static int
unbindx(const char *src, const char *dst, const char *key)
{
	struct tq_exchange_binding b = spec(src, dst, TQ_EXCHANGE_TO_EXCHANGE, key, NULL, 0);

	return tq_exchange_unbind(R, VH, 1, &b);
}

static int
qadd(const char *name, uint64_t qid)
{
	return tq_exchange_queue_add(R, VH, 1, name, strlen(name), qid);
}

static int
qdel(const char *name)
{
	return tq_exchange_queue_del(R, VH, 1, name, strlen(name));
}

static int
xdel(const char *name, bool if_unused)
{
	return tq_exchange_delete(R, VH, 1, name, strlen(name), if_unused);
}

static bool
exists(const char *name)
{
	struct tq_exchange_info info;

	return tq_exchange_info(R, VH, 1, name, strlen(name), &info) == 0;
}

static uint64_t
nbindings(void)
{
	struct tq_exchange_stats st;

	tq_exchange_counts(R, &st);
	return st.bindings;
}

/* ---- routing and what it delivered ------------------------------------------------- */

#define MAX_GOT 1024

static struct {
	unsigned int n;
	uint64_t qid[MAX_GOT];
} got;

static void
collect(void *arg, uint64_t qid)
{
	(void)arg;
	CU_ASSERT_FATAL(got.n < MAX_GOT);
	for (unsigned int i = 0; i < got.n; i++)
		CU_ASSERT(got.qid[i] != qid); /* delivered once per queue */
	got.qid[got.n++] = qid;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Publish to @x with @key and headers; the sorted qids are left in got. */
static int
route_h(const char *x, const char *key, const struct tq_xheader *h, uint32_t nh)
{
	const struct tq_exchange_msg m = {
		.exchange = x, .xlen = strlen(x), .key = key, .klen = strlen(key),
		.headers = h, .nheaders = nh, .deliver = collect};
	int rc;

	got.n = 0;
	rc = tq_exchange_route(R, VH, 1, &m, S);
	if (rc >= 0)
		CU_ASSERT_EQUAL(rc, (int)got.n);
	qsort(got.qid, got.n, sizeof(got.qid[0]), cmp_u64);
	return rc;
}

static int
route(const char *x, const char *key)
{
	return route_h(x, key, NULL, 0);
}

/* Did the last route deliver exactly @want (ascending, terminated by UINT64_MAX)? */
static bool
got_is(const uint64_t *want)
{
	unsigned int i;

	for (i = 0; want[i] != UINT64_MAX; i++)
		if (i >= got.n || got.qid[i] != want[i])
			return false;
	return i == got.n;
}

#define QIDS(...) ((const uint64_t[]){__VA_ARGS__, UINT64_MAX})
#define NONE      ((const uint64_t[]){UINT64_MAX})

/* route then compare, in one assertion with the line of the caller */
#define ROUTES(x, key, want)                                                                  \
	do {                                                                                  \
		CU_ASSERT(route(x, key) >= 0);                                                \
		CU_ASSERT(got_is(want));                                                      \
	} while (0)

/* ---- built-in exchanges, reserved names, declare ----------------------------------- */

static void
test_builtin(void)
{
	static const struct {
		const char *name;
		enum tq_exchange_type type;
	} want[] = {
		{"", TQ_EXCHANGE_DIRECT},          {"amq.direct", TQ_EXCHANGE_DIRECT},
		{"amq.fanout", TQ_EXCHANGE_FANOUT}, {"amq.topic", TQ_EXCHANGE_TOPIC},
		{"amq.headers", TQ_EXCHANGE_HEADERS}, {"amq.match", TQ_EXCHANGE_HEADERS},
	};
	struct tq_exchange_stats st;

	setup();
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct tq_exchange_info info;

		CU_ASSERT_EQUAL_FATAL(tq_exchange_info(R, VH, 1, want[i].name,
						       strlen(want[i].name), &info), 0);
		CU_ASSERT_EQUAL(info.type, want[i].type);
		CU_ASSERT_EQUAL(info.flags, TQ_EXCHANGE_DURABLE);
		CU_ASSERT_FALSE(info.has_ae);
		CU_ASSERT_EQUAL(info.nlen, strlen(want[i].name));
	}
	tq_exchange_counts(R, &st);
	CU_ASSERT_EQUAL(st.vhosts, 1);
	CU_ASSERT_EQUAL(st.exchanges, 6);
	CU_ASSERT_EQUAL(st.queues, 0);

	/* the default exchange: every queue by its name, nothing else */
	CU_ASSERT_EQUAL(qadd("q1", 1), 0);
	CU_ASSERT_EQUAL(qadd("q2", 2), 0);
	ROUTES("", "q1", QIDS(1));
	ROUTES("", "q2", QIDS(2));
	CU_ASSERT_EQUAL(route("", "q3"), 0);
	CU_ASSERT_EQUAL(route("", ""), 0);

	/* ... and it is off limits */
	CU_ASSERT_EQUAL(decl("", "direct", TQ_EXCHANGE_DURABLE), -EPERM);
	CU_ASSERT_EQUAL(passive(""), 1);
	CU_ASSERT_EQUAL(xdel("", false), -EPERM);
	CU_ASSERT_EQUAL(bindq("", "q1", "q1"), -EPERM);
	CU_ASSERT_EQUAL(unbindq("", "q1", "q1"), -EPERM);
	CU_ASSERT_EQUAL(bindx("", "amq.direct", "k"), -EPERM);
	CU_ASSERT_EQUAL(bindx("amq.direct", "", "k"), -EPERM);

	/* amq.*: never deleted, never newly declared; redeclared as it is, fine */
	CU_ASSERT_EQUAL(xdel("amq.direct", false), -EPERM);
	CU_ASSERT_EQUAL(xdel("amq.nonexistent", false), -EPERM);
	CU_ASSERT_EQUAL(decl("amq.foo", "direct", 0), -EPERM);
	CU_ASSERT_EQUAL(decl("amq.direct", "direct", TQ_EXCHANGE_DURABLE), 1);
	CU_ASSERT_EQUAL(decl("amq.direct", "fanout", TQ_EXCHANGE_DURABLE), -EEXIST);
	CU_ASSERT_EQUAL(decl("amq.direct", "direct", 0), -EEXIST);
	CU_ASSERT_EQUAL(passive("amq.topic"), 1);
	CU_ASSERT_EQUAL(passive("amq.nope"), -ENOENT);
	CU_ASSERT_FALSE(exists("amq.foo"));
	/* only the exact prefix is reserved */
	CU_ASSERT_EQUAL(decl("amq", "direct", 0), 0);
	CU_ASSERT_EQUAL(decl("amqp.x", "direct", 0), 0);
	CU_ASSERT_EQUAL(decl("AMQ.x", "direct", 0), 0);

	/* the built-ins route */
	CU_ASSERT_EQUAL(bindq("amq.direct", "q1", "k"), 0);
	CU_ASSERT_EQUAL(bindq("amq.fanout", "q2", ""), 0);
	CU_ASSERT_EQUAL(bindq("amq.topic", "q1", "a.*"), 0);
	CU_ASSERT_EQUAL(bindq_args("amq.match", "q2", "", ARGS(hs("h", "v")), 1), 0);
	ROUTES("amq.direct", "k", QIDS(1));
	ROUTES("amq.fanout", "zz", QIDS(2));
	ROUTES("amq.topic", "a.b", QIDS(1));
	CU_ASSERT(route_h("amq.match", "", ARGS(hs("h", "v")), 1) == 1);
	CU_ASSERT(got_is(QIDS(2)));

	/* vhosts */
	CU_ASSERT_EQUAL(tq_exchange_vhost_add(R, VH, 1), -EEXIST);
	CU_ASSERT_EQUAL(tq_exchange_declare(R, "nope", 4,
					    &(struct tq_exchange_decl){.name = "x", .nlen = 1,
								       .type = "direct", .tlen = 6}),
			-ENOENT);
	CU_ASSERT_EQUAL(tq_exchange_route(R, "nope", 4,
					  &(struct tq_exchange_msg){.exchange = "", .key = "q1",
								    .klen = 2, .deliver = collect},
					  S),
			-ENOENT);
	teardown();
}

static void
test_declare(void)
{
	struct tq_exchange_info info;
	char longname[TQ_EXCHANGE_NAME_MAX + 2];

	setup();
	CU_ASSERT_EQUAL(decl("x", "direct", 0), 0);
	CU_ASSERT_EQUAL(decl("x", "direct", 0), 1);
	CU_ASSERT_EQUAL(decl("x", "fanout", 0), -EEXIST);
	CU_ASSERT_EQUAL(decl("x", "direct", TQ_EXCHANGE_DURABLE), -EEXIST);
	CU_ASSERT_EQUAL(decl("x", "direct", TQ_EXCHANGE_AUTO_DELETE), -EEXIST);
	CU_ASSERT_EQUAL(decl("x", "direct", TQ_EXCHANGE_INTERNAL), -EEXIST);
	CU_ASSERT_EQUAL(decl_full("x", "direct", 0, false, ARGS(hs("alternate-exchange", "ae")), 1),
			-EEXIST);
	/* other arguments take no part in equivalence */
	CU_ASSERT_EQUAL(decl_full("x", "direct", 0, false, ARGS(hs("x-whatever", "1")), 1), 1);

	/* the type is checked first, existing or not, default or not (503) */
	CU_ASSERT_EQUAL(decl("x", "x-consistent-hash", 0), -ENOTSUP);
	CU_ASSERT_EQUAL(decl("y", "", 0), -ENOTSUP);
	CU_ASSERT_EQUAL(decl("", "bogus", 0), -ENOTSUP);
	CU_ASSERT_EQUAL(decl("y", "Direct", 0), -ENOTSUP);

	/* alternate exchange: a longstr, part of equivalence */
	CU_ASSERT_EQUAL(decl_full("y", "topic", TQ_EXCHANGE_DURABLE, false,
				  ARGS(hs("alternate-exchange", "ae")), 1),
			0);
	CU_ASSERT_EQUAL(decl_full("y", "topic", TQ_EXCHANGE_DURABLE, false,
				  ARGS(hi("n", 'I', 1), hs("alternate-exchange", "ae")), 2),
			1);
	CU_ASSERT_EQUAL(decl_full("y", "topic", TQ_EXCHANGE_DURABLE, false,
				  ARGS(hs("alternate-exchange", "other")), 1),
			-EEXIST);
	CU_ASSERT_EQUAL(decl("y", "topic", TQ_EXCHANGE_DURABLE), -EEXIST);
	CU_ASSERT_EQUAL_FATAL(tq_exchange_info(R, VH, 1, "y", 1, &info), 0);
	CU_ASSERT_EQUAL(info.type, TQ_EXCHANGE_TOPIC);
	CU_ASSERT_TRUE(info.has_ae);
	CU_ASSERT(info.ae_len == 2 && !memcmp(info.ae, "ae", 2));
	CU_ASSERT_EQUAL(decl_full("z", "direct", 0, false,
				  ARGS(hraw("alternate-exchange", 'x', "ae", 2)), 1),
			-EINVAL);
	CU_ASSERT_EQUAL(decl_full("z", "direct", 0, false,
				  ARGS(hi("alternate-exchange", 'I', 7)), 1),
			-EINVAL);
	CU_ASSERT_FALSE(exists("z"));

	/* passive: existence only */
	CU_ASSERT_EQUAL(passive("nope"), -ENOENT);
	CU_ASSERT_EQUAL(decl_full("x", "bogus", TQ_EXCHANGE_DURABLE, true, NULL, 0), 1);

	/* names are shortstr */
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	CU_ASSERT_EQUAL(decl(longname, "direct", 0), -EINVAL);
	longname[TQ_EXCHANGE_NAME_MAX] = 0;
	CU_ASSERT_EQUAL(decl(longname, "direct", 0), 0);
	CU_ASSERT_EQUAL(qadd(longname, 9), 0);
	CU_ASSERT_EQUAL(bindq(longname, longname, longname), 0);
	ROUTES(longname, longname, QIDS(9));

	/* what the session answers */
	CU_ASSERT_EQUAL(tq_exchange_reply_code(-ENOENT), 404);
	CU_ASSERT_EQUAL(tq_exchange_reply_code(-EPERM), 403);
	CU_ASSERT_EQUAL(tq_exchange_reply_code(-EEXIST), 406);
	CU_ASSERT_EQUAL(tq_exchange_reply_code(-EBUSY), 406);
	CU_ASSERT_EQUAL(tq_exchange_reply_code(-EINVAL), 406);
	CU_ASSERT_EQUAL(tq_exchange_reply_code(-ENOTSUP), 503);
	CU_ASSERT_EQUAL(tq_exchange_reply_code(-ENOMEM), 541);
	teardown();
}

/* ---- the four types ------------------------------------------------------------------ */

/* RabbitMQ tutorial 4 ("Routing"): direct_logs with orange / black / green. */
static void
test_direct(void)
{
	setup();
	CU_ASSERT_EQUAL(decl("direct_logs", "direct", 0), 0);
	CU_ASSERT_EQUAL(qadd("Q1", 1), 0);
	CU_ASSERT_EQUAL(qadd("Q2", 2), 0);
	CU_ASSERT_EQUAL(bindq("direct_logs", "Q1", "orange"), 0);
	CU_ASSERT_EQUAL(bindq("direct_logs", "Q2", "black"), 0);
	CU_ASSERT_EQUAL(bindq("direct_logs", "Q2", "green"), 0);
	ROUTES("direct_logs", "orange", QIDS(1));
	ROUTES("direct_logs", "black", QIDS(2));
	ROUTES("direct_logs", "green", QIDS(2));
	CU_ASSERT_EQUAL(route("direct_logs", "blue"), 0);
	CU_ASSERT_EQUAL(route("direct_logs", "orang"), 0);
	CU_ASSERT_EQUAL(route("direct_logs", ""), 0);

	/* multiple bindings: one key to both queues (the tutorial's second figure) */
	CU_ASSERT_EQUAL(bindq("direct_logs", "Q1", "black"), 0);
	ROUTES("direct_logs", "black", QIDS(1, 2));

	/* binding again is a no-op; unbinding twice is fine */
	CU_ASSERT_EQUAL(bindq("direct_logs", "Q1", "black"), 1);
	CU_ASSERT_EQUAL(nbindings(), 4);
	CU_ASSERT_EQUAL(unbindq("direct_logs", "Q1", "black"), 0);
	CU_ASSERT_EQUAL(unbindq("direct_logs", "Q1", "black"), 1);
	ROUTES("direct_logs", "black", QIDS(2));

	/* the empty key is a key like any other */
	CU_ASSERT_EQUAL(bindq("direct_logs", "Q1", ""), 0);
	ROUTES("direct_logs", "", QIDS(1));

	/* same queue and key, other arguments: two bindings, one delivery */
	CU_ASSERT_EQUAL(bindq_args("direct_logs", "Q1", "orange", ARGS(hi("a", 'I', 1)), 1), 0);
	CU_ASSERT_EQUAL(nbindings(), 5);
	ROUTES("direct_logs", "orange", QIDS(1));
	CU_ASSERT_EQUAL(unbindq("direct_logs", "Q1", "orange"), 0);
	ROUTES("direct_logs", "orange", QIDS(1));
	CU_ASSERT_EQUAL(unbindq_args("direct_logs", "Q1", "orange", ARGS(hi("a", 'I', 1)), 1), 0);
	CU_ASSERT_EQUAL(route("direct_logs", "orange"), 0);

	/* arguments are a set: their order does not make another binding; their types do */
	CU_ASSERT_EQUAL(bindq_args("direct_logs", "Q2", "k", ARGS(hi("a", 'I', 1), hs("b", "2")), 2),
			0);
	CU_ASSERT_EQUAL(bindq_args("direct_logs", "Q2", "k", ARGS(hs("b", "2"), hi("a", 'I', 1)), 2),
			1);
	CU_ASSERT_EQUAL(bindq_args("direct_logs", "Q2", "k", ARGS(hs("b", "2"), hi("a", 'l', 1)), 2),
			0);
	CU_ASSERT_EQUAL(unbindq_args("direct_logs", "Q2", "k", ARGS(hs("b", "2"), hi("a", 'I', 1)), 2),
			0);
	CU_ASSERT_EQUAL(unbindq_args("direct_logs", "Q2", "k", ARGS(hi("a", 'I', 1), hs("b", "2")), 2),
			1);
	ROUTES("direct_logs", "k", QIDS(2));

	/* many keys and queues: the key table grows and shrinks */
	for (int i = 0; i < 300; i++) {
		char q[16], k[16];

		snprintf(q, sizeof(q), "m%d", i);
		snprintf(k, sizeof(k), "key.%d", i % 100);
		CU_ASSERT_EQUAL(qadd(q, 1000 + (uint64_t)i), 0);
		CU_ASSERT_EQUAL(bindq("direct_logs", q, k), 0);
	}
	ROUTES("direct_logs", "key.7", QIDS(1007, 1107, 1207));
	for (int i = 0; i < 300; i++) {
		char q[16];

		snprintf(q, sizeof(q), "m%d", i);
		if (i % 100 != 7)
			CU_ASSERT_EQUAL(qdel(q), 0);
	}
	ROUTES("direct_logs", "key.7", QIDS(1007, 1107, 1207));
	CU_ASSERT_EQUAL(route("direct_logs", "key.8"), 0);
	teardown();
}

static void
test_fanout(void)
{
	setup();
	CU_ASSERT_EQUAL(decl("logs", "fanout", 0), 0);
	CU_ASSERT_EQUAL(route("logs", "x"), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		char q[8];

		snprintf(q, sizeof(q), "q%u", (unsigned)i);
		CU_ASSERT_EQUAL(qadd(q, i), 0);
		CU_ASSERT_EQUAL(bindq("logs", q, q), 0); /* keys are ignored */
	}
	CU_ASSERT_EQUAL(bindq("logs", "q1", "another"), 0);
	ROUTES("logs", "", QIDS(1, 2, 3));
	ROUTES("logs", "anything.at.all", QIDS(1, 2, 3));
	CU_ASSERT_EQUAL(unbindq("logs", "q1", "q1"), 0);
	ROUTES("logs", "", QIDS(1, 2, 3));
	CU_ASSERT_EQUAL(unbindq("logs", "q1", "another"), 0);
	ROUTES("logs", "", QIDS(2, 3));
	CU_ASSERT_EQUAL(unbindq("logs", "q2", "q2"), 0);
	CU_ASSERT_EQUAL(unbindq("logs", "q3", "q3"), 0);
	CU_ASSERT_EQUAL(route("logs", ""), 0);

	/* many: holes left by unbinding are compacted away */
	for (int i = 0; i < 200; i++) {
		char q[16];

		snprintf(q, sizeof(q), "f%d", i);
		CU_ASSERT_EQUAL(qadd(q, 100 + (uint64_t)i), 0);
		CU_ASSERT_EQUAL(bindq("logs", q, ""), 0);
	}
	CU_ASSERT_EQUAL(route("logs", ""), 200);
	for (int i = 0; i < 200; i++) {
		char q[16];

		snprintf(q, sizeof(q), "f%d", i);
		if (i != 150)
			CU_ASSERT_EQUAL(unbindq("logs", q, ""), 0);
	}
	ROUTES("logs", "", QIDS(250));
	teardown();
}

/* RabbitMQ tutorial 5 ("Topics"), and the Java client's doubleBinding test. */
static void
test_topic(void)
{
	setup();
	CU_ASSERT_EQUAL(decl("topic_logs", "topic", 0), 0);
	CU_ASSERT_EQUAL(qadd("Q1", 1), 0);
	CU_ASSERT_EQUAL(qadd("Q2", 2), 0);
	CU_ASSERT_EQUAL(bindq("topic_logs", "Q1", "*.orange.*"), 0);
	CU_ASSERT_EQUAL(bindq("topic_logs", "Q2", "*.*.rabbit"), 0);
	CU_ASSERT_EQUAL(bindq("topic_logs", "Q2", "lazy.#"), 0);
	ROUTES("topic_logs", "quick.orange.rabbit", QIDS(1, 2));
	ROUTES("topic_logs", "lazy.orange.elephant", QIDS(1, 2));
	ROUTES("topic_logs", "quick.orange.fox", QIDS(1));
	ROUTES("topic_logs", "lazy.brown.fox", QIDS(2));
	ROUTES("topic_logs", "lazy.pink.rabbit", QIDS(2)); /* two bindings, once */
	CU_ASSERT_EQUAL(route("topic_logs", "quick.brown.fox"), 0);
	CU_ASSERT_EQUAL(route("topic_logs", "orange"), 0);
	CU_ASSERT_EQUAL(route("topic_logs", "quick.orange.male.rabbit"), 0);
	ROUTES("topic_logs", "lazy.orange.male.rabbit", QIDS(2));
	ROUTES("topic_logs", "lazy", QIDS(2));

	/* x.# and #.x on one queue: one copy of x.y, y.x and x.x */
	CU_ASSERT_EQUAL(qadd("Q3", 3), 0);
	CU_ASSERT_EQUAL(bindq("topic_logs", "Q3", "x.#"), 0);
	CU_ASSERT_EQUAL(bindq("topic_logs", "Q3", "#.x"), 0);
	ROUTES("topic_logs", "x.y", QIDS(3));
	ROUTES("topic_logs", "y.x", QIDS(3));
	ROUTES("topic_logs", "x.x", QIDS(3));

	/* '#' alone takes everything, the empty key included; "" only takes "" */
	CU_ASSERT_EQUAL(qadd("all", 4), 0);
	CU_ASSERT_EQUAL(qadd("empty", 5), 0);
	CU_ASSERT_EQUAL(bindq("topic_logs", "all", "#"), 0);
	CU_ASSERT_EQUAL(bindq("topic_logs", "empty", ""), 0);
	ROUTES("topic_logs", "", QIDS(4, 5));
	ROUTES("topic_logs", "a.b.c", QIDS(4));

	/* '*' or '#' inside a word: a literal word, as in RabbitMQ */
	CU_ASSERT_EQUAL(bindq("topic_logs", "Q1", "a*b"), 0);
	CU_ASSERT_EQUAL(bindq("topic_logs", "Q1", "a.#b"), 0);
	ROUTES("topic_logs", "a*b", QIDS(1, 4));
	ROUTES("topic_logs", "axb", QIDS(4));
	ROUTES("topic_logs", "a.#b", QIDS(1, 4));
	ROUTES("topic_logs", "a.b", QIDS(4));
	CU_ASSERT_EQUAL(unbindq("topic_logs", "Q1", "a*b"), 0);
	CU_ASSERT_EQUAL(unbindq("topic_logs", "Q1", "a.#b"), 0);
	ROUTES("topic_logs", "a*b", QIDS(4));

	/* one trie entry shared by two bindings (other arguments): it goes with the last */
	CU_ASSERT_EQUAL(bindq_args("topic_logs", "Q1", "k.*", ARGS(hs("a", "1")), 1), 0);
	CU_ASSERT_EQUAL(bindq_args("topic_logs", "Q1", "k.*", ARGS(hs("a", "2")), 1), 0);
	ROUTES("topic_logs", "k.z", QIDS(1, 4));
	CU_ASSERT_EQUAL(unbindq_args("topic_logs", "Q1", "k.*", ARGS(hs("a", "1")), 1), 0);
	ROUTES("topic_logs", "k.z", QIDS(1, 4));
	CU_ASSERT_EQUAL(unbindq_args("topic_logs", "Q1", "k.*", ARGS(hs("a", "2")), 1), 0);
	ROUTES("topic_logs", "k.z", QIDS(4));
	teardown();
}

static void
test_headers_examples(void)
{
	setup();
	CU_ASSERT_EQUAL(qadd("all", 1), 0);
	CU_ASSERT_EQUAL(qadd("any", 2), 0);
	/* h1 = "12345", h2 = "bar", h3 present: all / any (the Java client's amq.match case) */
	CU_ASSERT_EQUAL(bindq_args("amq.match", "all", "",
				   ARGS(hs("h1", "12345"), hs("h2", "bar"), hv("h3"),
					hs("x-match", "all")),
				   4),
			0);
	CU_ASSERT_EQUAL(bindq_args("amq.match", "any", "",
				   ARGS(hs("x-match", "any"), hs("h1", "12345"), hs("h2", "bar"),
					hv("h3")),
				   4),
			0);
	CU_ASSERT_EQUAL(route_h("amq.match", "", NULL, 0), 0);
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hs("h1", "12345")), 1), 1);
	CU_ASSERT(got_is(QIDS(2)));
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hs("h2", "bar")), 1), 1);
	CU_ASSERT(got_is(QIDS(2)));
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hs("h1", "12345"), hs("h2", "bar")), 2), 1);
	CU_ASSERT(got_is(QIDS(2)));
	CU_ASSERT_EQUAL(route_h("amq.match", "",
				ARGS(hs("h2", "bar"), hv("h3"), hs("h1", "12345")), 3),
			2);
	CU_ASSERT(got_is(QIDS(1, 2)));
	/* presence: h3 of any type */
	CU_ASSERT_EQUAL(route_h("amq.match", "",
				ARGS(hs("h1", "12345"), hs("h2", "bar"), hi("h3", 'I', 0)), 3),
			2);
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hs("h1", "12345"), hs("h2", "quux")), 2), 1);
	CU_ASSERT(got_is(QIDS(2)));
	CU_ASSERT_EQUAL(route_h("amq.match", "",
				ARGS(hs("h1", "zot"), hs("h2", "quux"), hv("h3")), 3),
			1);
	CU_ASSERT(got_is(QIDS(2)));
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hv("h3")), 1), 1);
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hs("h1", "zot"), hs("h2", "quux")), 2), 0);
	/* a void header is present, but equals no value */
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hv("h1")), 1), 0);
	/* the first of two same-named headers counts */
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hs("h2", "x"), hs("h2", "bar")), 2), 0);
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hs("h2", "bar"), hs("h2", "x")), 2), 1);
	/* the routing key plays no part */
	CU_ASSERT_EQUAL(route_h("amq.match", "whatever", ARGS(hs("h1", "12345")), 1), 1);

	/* RabbitMQ's exchanges guide: format/type, pdf/report/log/zip */
	CU_ASSERT_EQUAL(decl("hx", "headers", 0), 0);
	CU_ASSERT_EQUAL(qadd("A", 10), 0);
	CU_ASSERT_EQUAL(qadd("B", 11), 0);
	CU_ASSERT_EQUAL(qadd("C", 12), 0);
	CU_ASSERT_EQUAL(bindq_args("hx", "A", "",
				   ARGS(hs("format", "pdf"), hs("type", "report"), hs("x-match", "all")),
				   3),
			0);
	CU_ASSERT_EQUAL(bindq_args("hx", "B", "",
				   ARGS(hs("format", "pdf"), hs("type", "log"), hs("x-match", "any")),
				   3),
			0);
	CU_ASSERT_EQUAL(bindq_args("hx", "C", "",
				   ARGS(hs("format", "zip"), hs("type", "report"), hs("x-match", "all")),
				   3),
			0);
	CU_ASSERT(route_h("hx", "", ARGS(hs("format", "pdf"), hs("type", "report")), 2) == 2);
	CU_ASSERT(got_is(QIDS(10, 11)));
	CU_ASSERT(route_h("hx", "", ARGS(hs("format", "pdf")), 1) == 1);
	CU_ASSERT(got_is(QIDS(11)));
	CU_ASSERT(route_h("hx", "", ARGS(hs("format", "zip"), hs("type", "log")), 2) == 1);
	CU_ASSERT(got_is(QIDS(11)));
	CU_ASSERT(route_h("hx", "", ARGS(hs("type", "report"), hs("format", "zip")), 2) == 1);
	CU_ASSERT(got_is(QIDS(12)));
	teardown();
}

/* One binding {x-match: all, k: @cond}; does a message {k: @h} reach it? */
static bool
hmatch(struct tq_xheader cond, struct tq_xheader h)
{
	int rc;

	CU_ASSERT_EQUAL(bindq_args("amq.headers", "t", "", ARGS(cond), 1), 0);
	rc = route_h("amq.headers", "", &h, 1);
	CU_ASSERT_EQUAL(unbindq_args("amq.headers", "t", "", ARGS(cond), 1), 0);
	return rc == 1;
}

static void
test_headers_types(void)
{
	static const uint8_t tab1[] = {1, 'a', 'I', 0, 0, 0, 5};
	static const uint8_t tab2[] = {1, 'a', 'I', 0, 0, 0, 6};

	setup();
	CU_ASSERT_EQUAL(qadd("t", 1), 0);
	/* integers by value, whatever their width, sign or tag; timestamps are integers */
	CU_ASSERT_TRUE(hmatch(hi("n", 'I', 5), hi("n", 'l', 5)));
	CU_ASSERT_TRUE(hmatch(hi("n", 'I', 5), hu("n", 'T', 5)));
	CU_ASSERT_TRUE(hmatch(hi("n", 'I', 5), hu("n", 'B', 5)));
	CU_ASSERT_TRUE(hmatch(hi("n", 'b', -3), hi("n", 's', -3)));
	CU_ASSERT_TRUE(hmatch(hu("n", 'i', 4000000000u), hi("n", 'l', 4000000000)));
	CU_ASSERT_FALSE(hmatch(hi("n", 'I', 5), hi("n", 'I', 6)));
	CU_ASSERT_FALSE(hmatch(hi("n", 'I', 5), hi("n", 'I', -5)));
	CU_ASSERT_FALSE(hmatch(hi("n", 'l', -1), hu("n", 'T', UINT64_MAX)));
	/* ... and against floats holding the same number (Erlang's ==) */
	CU_ASSERT_TRUE(hmatch(hi("n", 'I', 5), hd("n", 5.0)));
	CU_ASSERT_TRUE(hmatch(hd("n", -1.0), hi("n", 'l', -1)));
	CU_ASSERT_TRUE(hmatch(hi("n", 's', 7), hf("n", 7.0f)));
	CU_ASSERT_TRUE(hmatch(hu("n", 'T', 1ull << 63), hd("n", 9223372036854775808.0)));
	CU_ASSERT_FALSE(hmatch(hi("n", 'I', 5), hd("n", 5.5)));
	CU_ASSERT_TRUE(hmatch(hi("n", 'I', 0), hd("n", -0.0)));
	CU_ASSERT_TRUE(hmatch(hd("n", 2.5), hf("n", 2.5f)));
	CU_ASSERT_FALSE(hmatch(hd("n", 0.1), hf("n", 0.1f))); /* not the same number */
	/* strings are not numbers; longstr and byte arrays are both binaries */
	CU_ASSERT_FALSE(hmatch(hi("n", 'I', 5), hs("n", "5")));
	CU_ASSERT_FALSE(hmatch(hs("n", "5"), hi("n", 'I', 5)));
	CU_ASSERT_TRUE(hmatch(hs("n", "abc"), hraw("n", 'x', "abc", 3)));
	CU_ASSERT_FALSE(hmatch(hs("n", "abc"), hs("n", "abd")));
	CU_ASSERT_FALSE(hmatch(hs("n", "abc"), hs("n", "abcd")));
	CU_ASSERT_TRUE(hmatch(hs("n", ""), hs("n", "")));
	/* booleans only equal booleans */
	CU_ASSERT_TRUE(hmatch(hb("n", true), hb("n", true)));
	CU_ASSERT_FALSE(hmatch(hb("n", true), hb("n", false)));
	CU_ASSERT_FALSE(hmatch(hb("n", true), hi("n", 'I', 1)));
	/* decimals by (scale, value) */
	CU_ASSERT_TRUE(hmatch(hdec("n", 2, 150), hdec("n", 2, 150)));
	CU_ASSERT_FALSE(hmatch(hdec("n", 2, 150), hdec("n", 1, 15)));
	CU_ASSERT_FALSE(hmatch(hdec("n", 0, 5), hi("n", 'I', 5)));
	/* nested tables and arrays by their bytes; an empty table is an empty array */
	CU_ASSERT_TRUE(hmatch(hraw("n", 'F', tab1, sizeof(tab1)), hraw("n", 'F', tab1, sizeof(tab1))));
	CU_ASSERT_FALSE(hmatch(hraw("n", 'F', tab1, sizeof(tab1)), hraw("n", 'F', tab2, sizeof(tab2))));
	CU_ASSERT_FALSE(hmatch(hraw("n", 'F', tab1, sizeof(tab1)), hraw("n", 'A', tab1, sizeof(tab1))));
	CU_ASSERT_TRUE(hmatch(hraw("n", 'F', NULL, 0), hraw("n", 'A', NULL, 0)));
	CU_ASSERT_FALSE(hmatch(hraw("n", 'F', NULL, 0), hs("n", "")));
	/* void: presence of any value; a void header equals no value */
	CU_ASSERT_TRUE(hmatch(hv("n"), hd("n", 1.5)));
	CU_ASSERT_TRUE(hmatch(hv("n"), hv("n")));
	CU_ASSERT_FALSE(hmatch(hv("n"), hv("m")));
	CU_ASSERT_FALSE(hmatch(hs("n", ""), hv("n")));
	/* keys are exact */
	CU_ASSERT_FALSE(hmatch(hs("n", "v"), hs("N", "v")));
	/* an unknown tag is refused */
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "t", "", ARGS(hi("n", 'Z', 1)), 1), -EINVAL);
	teardown();
}

static void
test_headers_xmatch(void)
{
	setup();
	CU_ASSERT_EQUAL(qadd("q", 1), 0);
	/* no x-match: all */
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "", ARGS(hs("a", "1"), hs("b", "2")), 2), 0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("a", "1")), 1), 0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("b", "2"), hs("a", "1")), 2), 1);
	CU_ASSERT_EQUAL(unbindq_args("amq.headers", "q", "", ARGS(hs("b", "2"), hs("a", "1")), 2), 0);

	/* x- arguments are not conditions: all with none left takes everything, any nothing */
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "",
				   ARGS(hs("x-match", "all"), hs("x-key", "v")), 2),
			0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", NULL, 0), 1);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("x-key", "other")), 1), 1);
	CU_ASSERT_EQUAL(unbindq_args("amq.headers", "q", "",
				     ARGS(hs("x-match", "all"), hs("x-key", "v")), 2),
			0);
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "",
				   ARGS(hs("x-match", "any"), hs("x-key", "v")), 2),
			0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("x-key", "v")), 1), 0);
	CU_ASSERT_EQUAL(unbindq_args("amq.headers", "q", "",
				     ARGS(hs("x-match", "any"), hs("x-key", "v")), 2),
			0);

	/* all-with-x / any-with-x: x- arguments count (x-match itself never does) */
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "",
				   ARGS(hs("x-match", "all-with-x"), hs("x-first-death-reason", "expired"),
					hs("x-first-death-queue", "work")),
				   3),
			0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", NULL, 0), 0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("x-first-death-reason", "expired")), 1), 0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "",
				ARGS(hs("x-first-death-queue", "work"),
				     hs("x-first-death-reason", "expired")),
				2),
			1);
	CU_ASSERT_EQUAL(route_h("amq.headers", "",
				ARGS(hs("x-first-death-queue", "work"),
				     hs("x-first-death-reason", "rejected")),
				2),
			0);
	CU_ASSERT_EQUAL(unbindq_args("amq.headers", "q", "",
				     ARGS(hs("x-first-death-queue", "work"),
					  hs("x-first-death-reason", "expired"),
					  hs("x-match", "all-with-x")),
				     3),
			0);
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "",
				   ARGS(hs("x-match", "any-with-x"), hs("x-a", "1"), hs("b", "2")), 3),
			0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("x-a", "1")), 1), 1);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("b", "2")), 1), 1);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("x-match", "any-with-x")), 1), 0);
	CU_ASSERT_EQUAL(route_h("amq.headers", "", ARGS(hs("c", "3")), 1), 0);
	CU_ASSERT_EQUAL(unbindq_args("amq.headers", "q", "",
				     ARGS(hs("x-match", "any-with-x"), hs("x-a", "1"), hs("b", "2")),
				     3),
			0);
	CU_ASSERT_EQUAL(nbindings(), 0);

	/* x-match must be one of the four, as a longstr (RabbitMQ's validate_binding) */
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "", ARGS(hs("x-match", "none")), 1), -EINVAL);
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "", ARGS(hs("x-match", "ALL")), 1), -EINVAL);
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "", ARGS(hraw("x-match", 'x', "all", 3)), 1),
			-EINVAL);
	CU_ASSERT_EQUAL(bindq_args("amq.headers", "q", "", ARGS(hi("x-match", 'I', 1)), 1), -EINVAL);
	CU_ASSERT_EQUAL(nbindings(), 0);
	/* ... on headers exchanges only: elsewhere arguments are not looked at */
	CU_ASSERT_EQUAL(bindq_args("amq.direct", "q", "k", ARGS(hs("x-match", "none")), 1), 0);
	ROUTES("amq.direct", "k", QIDS(1));
	teardown();
}

/* ---- exchange to exchange, alternate exchanges, dedup ------------------------------- */

static void
test_e2e(void)
{
	setup();
	CU_ASSERT_EQUAL(decl("x1", "direct", 0), 0);
	CU_ASSERT_EQUAL(decl("x2", "fanout", 0), 0);
	CU_ASSERT_EQUAL(decl("x3", "topic", TQ_EXCHANGE_INTERNAL), 0);
	CU_ASSERT_EQUAL(qadd("q1", 1), 0);
	CU_ASSERT_EQUAL(qadd("q2", 2), 0);
	CU_ASSERT_EQUAL(qadd("q3", 3), 0);
	CU_ASSERT_EQUAL(bindx("x1", "x2", "k"), 0);
	CU_ASSERT_EQUAL(bindx("x1", "x2", "k"), 1);
	CU_ASSERT_EQUAL(bindq("x2", "q1", ""), 0);
	CU_ASSERT_EQUAL(bindq("x2", "q2", ""), 0);
	ROUTES("x1", "k", QIDS(1, 2));
	CU_ASSERT_EQUAL(route("x1", "j"), 0);

	/* q1 also directly: still once */
	CU_ASSERT_EQUAL(bindq("x1", "q1", "k"), 0);
	ROUTES("x1", "k", QIDS(1, 2));

	/* through an internal exchange, which cannot be published to itself */
	CU_ASSERT_EQUAL(bindx("x2", "x3", "ignored"), 0);
	CU_ASSERT_EQUAL(bindq("x3", "q3", "k"), 0); /* the routing key travels on */
	ROUTES("x1", "k", QIDS(1, 2, 3));
	CU_ASSERT_EQUAL(route("x3", "k"), -EPERM);

	/* cycles: x2 -> x1 -> x2, x2 -> x2 */
	CU_ASSERT_EQUAL(bindx("x2", "x1", ""), 0);
	CU_ASSERT_EQUAL(bindx("x2", "x2", ""), 0);
	ROUTES("x1", "k", QIDS(1, 2, 3));
	ROUTES("x2", "k", QIDS(1, 2, 3));
	ROUTES("x2", "z", QIDS(1, 2));

	/* a diamond: x1 -> x4 -> q4 and x1 -> x2 -> x4 */
	CU_ASSERT_EQUAL(decl("x4", "fanout", 0), 0);
	CU_ASSERT_EQUAL(qadd("q4", 4), 0);
	CU_ASSERT_EQUAL(bindq("x4", "q4", ""), 0);
	CU_ASSERT_EQUAL(bindx("x1", "x4", "k"), 0);
	CU_ASSERT_EQUAL(bindx("x2", "x4", ""), 0);
	ROUTES("x1", "k", QIDS(1, 2, 3, 4));

	/* ends that do not exist; the source is checked first */
	CU_ASSERT_EQUAL(bindx("x1", "nope", "k"), -ENOENT);
	CU_ASSERT_EQUAL(bindx("nope", "x1", "k"), -ENOENT);
	CU_ASSERT_EQUAL(bindq("nope", "nope", "k"), -ENOENT);
	CU_ASSERT_EQUAL(bindq("x1", "nope", "k"), -ENOENT);
	CU_ASSERT_EQUAL(unbindx("x1", "nope", "k"), -ENOENT);
	CU_ASSERT_EQUAL(unbindx("x1", "x4", "other"), 1);
	CU_ASSERT_EQUAL(unbindx("x1", "x4", "k"), 0);
	CU_ASSERT_EQUAL(unbindx("x2", "x4", ""), 0);
	ROUTES("x1", "k", QIDS(1, 2, 3));
	teardown();
}

static int
decl_ae(const char *name, const char *type, uint32_t flags, const char *ae)
{
	return decl_full(name, type, flags, false, ARGS(hs("alternate-exchange", ae)), 1);
}

static void
test_alternate(void)
{
	setup();
	CU_ASSERT_EQUAL(qadd("qx", 1), 0);
	CU_ASSERT_EQUAL(qadd("qa", 2), 0);
	CU_ASSERT_EQUAL(qadd("qb", 3), 0);
	/* unroutable on x -> everything on its AE */
	CU_ASSERT_EQUAL(decl_ae("x", "direct", 0, "ae"), 0);
	CU_ASSERT_EQUAL(decl("ae", "fanout", TQ_EXCHANGE_INTERNAL), 0);
	CU_ASSERT_EQUAL(bindq("x", "qx", "k"), 0);
	CU_ASSERT_EQUAL(bindq("ae", "qa", ""), 0);
	ROUTES("x", "k", QIDS(1));
	ROUTES("x", "other", QIDS(2));

	/* a chain: x -> ae2 (nothing) -> ae3 */
	CU_ASSERT_EQUAL(decl_ae("y", "topic", 0, "ae2"), 0);
	CU_ASSERT_EQUAL(decl_ae("ae2", "direct", 0, "ae3"), 0);
	CU_ASSERT_EQUAL(decl("ae3", "fanout", 0), 0);
	CU_ASSERT_EQUAL(bindq("ae3", "qb", ""), 0);
	ROUTES("y", "a.b", QIDS(3));
	CU_ASSERT_EQUAL(bindq("ae2", "qa", "a.b"), 0);
	ROUTES("y", "a.b", QIDS(2));

	/* a cycle of alternates ends */
	CU_ASSERT_EQUAL(decl_ae("c1", "direct", 0, "c2"), 0);
	CU_ASSERT_EQUAL(decl_ae("c2", "direct", 0, "c1"), 0);
	CU_ASSERT_EQUAL(route("c1", "k"), 0);
	CU_ASSERT_EQUAL(decl_ae("self", "direct", 0, "self"), 0);
	CU_ASSERT_EQUAL(route("self", "k"), 0);
	CU_ASSERT_EQUAL(bindq("c2", "qb", "k"), 0);
	ROUTES("c1", "k", QIDS(3));

	/* a missing alternate: nothing; one declared later is used from then on */
	CU_ASSERT_EQUAL(decl_ae("late", "fanout", 0, "later"), 0);
	CU_ASSERT_EQUAL(route("late", "k"), 0);
	CU_ASSERT_EQUAL(decl("later", "fanout", 0), 0);
	CU_ASSERT_EQUAL(bindq("later", "qx", ""), 0);
	ROUTES("late", "k", QIDS(1));
	CU_ASSERT_EQUAL(xdel("later", false), 0);
	CU_ASSERT_EQUAL(route("late", "k"), 0);

	/* the default exchange as alternate: by queue name */
	CU_ASSERT_EQUAL(decl_ae("d", "direct", 0, ""), 0);
	ROUTES("d", "qb", QIDS(3));
	CU_ASSERT_EQUAL(route("d", "nope"), 0);

	/* per exchange: x2 matched (an exchange), so its AE is not used; y2's is */
	CU_ASSERT_EQUAL(decl_ae("x2", "fanout", 0, "ae"), 0);
	CU_ASSERT_EQUAL(decl("y2", "direct", 0), 0);
	CU_ASSERT_EQUAL(bindx("x2", "y2", ""), 0);
	CU_ASSERT_EQUAL(route("x2", "k"), 0);
	CU_ASSERT_EQUAL(xdel("y2", false), 0);
	CU_ASSERT_EQUAL(decl_ae("y2", "direct", 0, "ae3"), 0);
	CU_ASSERT_EQUAL(bindx("x2", "y2", ""), 0);
	ROUTES("x2", "k", QIDS(3));
	/* reached by both AE and a binding: once */
	CU_ASSERT_EQUAL(bindx("x2", "ae3", ""), 0);
	ROUTES("x2", "k", QIDS(3));
	teardown();
}

/* may_route: would a publish to the exchange reach anything (the MQTT bridge's shortcut) */
static bool
may(const char *x)
{
	return tq_exchange_may_route(R, VH, 1, x, strlen(x));
}

static void
test_may_route(void)
{
	uint64_t g0, g1;

	setup();
	CU_ASSERT_FALSE(may("amq.topic")); /* nothing bound */
	CU_ASSERT_TRUE(may(""));           /* the default exchange: by queue name */
	CU_ASSERT_FALSE(may("nope"));
	CU_ASSERT_FALSE(tq_exchange_may_route(R, "v", 1, "amq.topic", 9)); /* no such vhost */
	g0 = tq_exchange_gen(R);
	CU_ASSERT_EQUAL(qadd("q", 1), 0);
	g1 = tq_exchange_gen(R);
	CU_ASSERT_NOT_EQUAL(g1, g0); /* every change moves it */
	CU_ASSERT_EQUAL(bindq("amq.topic", "q", "a.#"), 0);
	CU_ASSERT_NOT_EQUAL(tq_exchange_gen(R), g1);
	CU_ASSERT_TRUE(may("amq.topic"));
	CU_ASSERT_EQUAL(unbindq("amq.topic", "q", "a.#"), 0);
	CU_ASSERT_FALSE(may("amq.topic"));
	/* exchange-to-exchange bindings count */
	CU_ASSERT_EQUAL(decl("x", "fanout", 0), 0);
	CU_ASSERT_EQUAL(bindx("amq.topic", "x", "#"), 0);
	CU_ASSERT_TRUE(may("amq.topic"));
	CU_ASSERT_EQUAL(unbindx("amq.topic", "x", "#"), 0);
	CU_ASSERT_FALSE(may("amq.topic"));
	/* a queue deleted takes its bindings with it */
	CU_ASSERT_EQUAL(bindq("amq.topic", "q", "b"), 0);
	CU_ASSERT_EQUAL(bindq("amq.topic", "q", "c"), 0);
	CU_ASSERT_TRUE(may("amq.topic"));
	CU_ASSERT_EQUAL(qdel("q"), 0);
	CU_ASSERT_FALSE(may("amq.topic"));
	/* an alternate exchange may take what nothing bound takes */
	CU_ASSERT_EQUAL(decl_ae("t", "topic", 0, "x"), 0);
	CU_ASSERT_TRUE(may("t"));
	/* internal exchanges take no publishes */
	CU_ASSERT_EQUAL(decl("i", "fanout", TQ_EXCHANGE_INTERNAL), 0);
	CU_ASSERT_EQUAL(bindx("i", "x", ""), 0);
	CU_ASSERT_FALSE(may("i"));
	teardown();
}

/* ---- deletion ------------------------------------------------------------------------ */

static void
test_auto_delete(void)
{
	setup();
	CU_ASSERT_EQUAL(qadd("q", 1), 0);
	CU_ASSERT_EQUAL(qadd("r", 2), 0);
	/* never bound: stays */
	CU_ASSERT_EQUAL(decl("ad", "direct", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_TRUE(exists("ad"));
	/* goes with its last binding as source */
	CU_ASSERT_EQUAL(bindq("ad", "q", "a"), 0);
	CU_ASSERT_EQUAL(bindq("ad", "r", "b"), 0);
	CU_ASSERT_EQUAL(unbindq("ad", "q", "a"), 0);
	CU_ASSERT_TRUE(exists("ad"));
	CU_ASSERT_EQUAL(unbindq("ad", "r", "b"), 0);
	CU_ASSERT_FALSE(exists("ad"));
	CU_ASSERT_EQUAL(route("ad", "a"), -ENOENT);
	/* bindings into it do not keep it */
	CU_ASSERT_EQUAL(decl("ad", "fanout", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_EQUAL(bindx("amq.fanout", "ad", ""), 0);
	CU_ASSERT_EQUAL(bindq("ad", "q", ""), 0);
	CU_ASSERT_EQUAL(unbindq("ad", "q", ""), 0);
	CU_ASSERT_FALSE(exists("ad"));
	CU_ASSERT_EQUAL(nbindings(), 0);

	/* a queue's deletion takes its bindings, and the sources they were the last of */
	CU_ASSERT_EQUAL(decl("ad", "topic", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_EQUAL(decl("keep", "topic", 0), 0);
	CU_ASSERT_EQUAL(bindq("ad", "q", "#"), 0);
	CU_ASSERT_EQUAL(bindq("ad", "q", "a.*"), 0);
	CU_ASSERT_EQUAL(bindq("keep", "q", "#"), 0);
	CU_ASSERT_EQUAL(qdel("q"), 0);
	CU_ASSERT_FALSE(exists("ad"));
	CU_ASSERT_TRUE(exists("keep"));
	CU_ASSERT_EQUAL(route("keep", "a.b"), 0);

	/* a cascade: a -> b -> r, both auto-delete: deleting r takes b, then a */
	CU_ASSERT_EQUAL(decl("a", "fanout", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_EQUAL(decl("b", "fanout", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_EQUAL(bindx("a", "b", ""), 0);
	CU_ASSERT_EQUAL(bindq("b", "r", ""), 0);
	ROUTES("a", "", QIDS(2));
	CU_ASSERT_EQUAL(qdel("r"), 0);
	CU_ASSERT_FALSE(exists("b"));
	CU_ASSERT_FALSE(exists("a"));
	CU_ASSERT_EQUAL(nbindings(), 0);

	/* deleting a destination exchange: its auto-delete source goes, a plain one stays */
	CU_ASSERT_EQUAL(decl("src_ad", "fanout", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_EQUAL(decl("src", "fanout", 0), 0);
	CU_ASSERT_EQUAL(decl("dst", "fanout", 0), 0);
	CU_ASSERT_EQUAL(bindx("src_ad", "dst", ""), 0);
	CU_ASSERT_EQUAL(bindx("src", "dst", ""), 0);
	CU_ASSERT_EQUAL(xdel("dst", false), 0);
	CU_ASSERT_FALSE(exists("src_ad"));
	CU_ASSERT_TRUE(exists("src"));

	/* an auto-delete exchange in a cycle with itself */
	CU_ASSERT_EQUAL(decl("loop", "fanout", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_EQUAL(bindx("loop", "loop", ""), 0);
	CU_ASSERT_EQUAL(unbindx("loop", "loop", ""), 0);
	CU_ASSERT_FALSE(exists("loop"));
	/* and in a cycle with another one */
	CU_ASSERT_EQUAL(decl("p1", "fanout", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_EQUAL(decl("p2", "fanout", TQ_EXCHANGE_AUTO_DELETE), 0);
	CU_ASSERT_EQUAL(bindx("p1", "p2", ""), 0);
	CU_ASSERT_EQUAL(bindx("p2", "p1", ""), 0);
	CU_ASSERT_EQUAL(xdel("p1", false), 0);
	CU_ASSERT_FALSE(exists("p2"));
	CU_ASSERT_EQUAL(nbindings(), 0);
	teardown();
}

static void
test_delete(void)
{
	struct tq_exchange_stats st;

	setup();
	CU_ASSERT_EQUAL(qadd("q", 1), 0);
	CU_ASSERT_EQUAL(decl("x", "direct", 0), 0);
	CU_ASSERT_EQUAL(decl("y", "topic", 0), 0);
	CU_ASSERT_EQUAL(bindx("x", "y", "k"), 0);
	CU_ASSERT_EQUAL(bindq("y", "q", "#"), 0);
	ROUTES("x", "k", QIDS(1));
	/* if-unused: bindings as source count, as destination not */
	CU_ASSERT_EQUAL(xdel("x", true), -EBUSY);
	CU_ASSERT_TRUE(exists("x"));
	CU_ASSERT_EQUAL(xdel("y", true), -EBUSY);
	CU_ASSERT_EQUAL(unbindq("y", "q", "#"), 0);
	CU_ASSERT_EQUAL(xdel("y", true), 0);
	CU_ASSERT_FALSE(exists("y"));
	/* bindings went both ways: x has none left */
	CU_ASSERT_EQUAL(nbindings(), 0);
	CU_ASSERT_EQUAL(xdel("x", true), 0);
	/* absent: fine (RabbitMQ answers delete-ok) */
	CU_ASSERT_EQUAL(xdel("x", false), 1);
	CU_ASSERT_EQUAL(tq_exchange_delete(R, "nope", 4, "x", 1, false), -ENOENT);
	/* declared again: new and empty */
	CU_ASSERT_EQUAL(decl("y", "fanout", 0), 0);
	CU_ASSERT_EQUAL(route("y", "k"), 0);
	/* a plain delete takes both directions */
	CU_ASSERT_EQUAL(decl("x", "fanout", 0), 0);
	CU_ASSERT_EQUAL(bindx("x", "y", ""), 0);
	CU_ASSERT_EQUAL(bindx("y", "x", ""), 0);
	CU_ASSERT_EQUAL(bindq("y", "q", ""), 0);
	CU_ASSERT_EQUAL(bindq("x", "q", ""), 0);
	CU_ASSERT_EQUAL(xdel("y", false), 0);
	CU_ASSERT_EQUAL(nbindings(), 1);
	ROUTES("x", "", QIDS(1));
	tq_exchange_counts(R, &st);
	CU_ASSERT_EQUAL(st.exchanges, 7);
	CU_ASSERT_EQUAL(st.leaked, 0);
	teardown();
}

static void
test_queues(void)
{
	uint64_t qid = 0;

	setup();
	CU_ASSERT_EQUAL(qadd("q", 1), 0);
	CU_ASSERT_EQUAL(qadd("q", 2), -EEXIST);
	CU_ASSERT_EQUAL(tq_exchange_queue_find(R, VH, 1, "q", 1, &qid), 0);
	CU_ASSERT_EQUAL(qid, 1);
	CU_ASSERT_EQUAL(tq_exchange_queue_add(R, "nope", 4, "q", 1, 1), -ENOENT);
	CU_ASSERT_EQUAL(bindq("amq.direct", "q", "k"), 0);
	CU_ASSERT_EQUAL(bindq("amq.fanout", "q", ""), 0);
	CU_ASSERT_EQUAL(bindq("amq.topic", "q", "k.#"), 0);
	CU_ASSERT_EQUAL(bindq_args("amq.match", "q", "", ARGS(hs("a", "b")), 1), 0);
	CU_ASSERT_EQUAL(nbindings(), 4);
	CU_ASSERT_EQUAL(qdel("q"), 0);
	CU_ASSERT_EQUAL(qdel("q"), -ENOENT);
	CU_ASSERT_EQUAL(tq_exchange_queue_find(R, VH, 1, "q", 1, &qid), -ENOENT);
	CU_ASSERT_EQUAL(nbindings(), 0);
	CU_ASSERT_EQUAL(route("amq.direct", "k"), 0);
	CU_ASSERT_EQUAL(route("amq.fanout", "k"), 0);
	CU_ASSERT_EQUAL(route("amq.topic", "k"), 0);
	CU_ASSERT_EQUAL(route_h("amq.match", "", ARGS(hs("a", "b")), 1), 0);
	/* the same name again is a new queue, with none of the old bindings */
	CU_ASSERT_EQUAL(qadd("q", 7), 0);
	ROUTES("", "q", QIDS(7));
	CU_ASSERT_EQUAL(route("amq.fanout", "k"), 0);
	/* unbinding: ends must exist, the binding need not */
	CU_ASSERT_EQUAL(unbindq("amq.direct", "q", "k"), 1);
	CU_ASSERT_EQUAL(unbindq("amq.direct", "nope", "k"), -ENOENT);
	CU_ASSERT_EQUAL(unbindq("nope", "q", "k"), -ENOENT);
	teardown();
}

static void
test_vhosts(void)
{
	struct tq_exchange_stats st;
	const struct tq_exchange_msg m = {.exchange = "amq.fanout", .xlen = 10, .deliver = collect};
	struct tq_exchange_binding b = spec("amq.fanout", "q", TQ_EXCHANGE_TO_QUEUE, "", NULL, 0);

	setup();
	CU_ASSERT_EQUAL(tq_exchange_vhost_add(R, "other", 5), 0);
	CU_ASSERT_EQUAL(qadd("q", 1), 0);
	CU_ASSERT_EQUAL(tq_exchange_queue_add(R, "other", 5, "q", 1, 2), 0);
	CU_ASSERT_EQUAL(bindq("amq.fanout", "q", ""), 0);
	ROUTES("amq.fanout", "", QIDS(1));
	got.n = 0;
	CU_ASSERT_EQUAL(tq_exchange_route(R, "other", 5, &m, S), 0);
	CU_ASSERT_EQUAL(tq_exchange_bind(R, "other", 5, &b), 0);
	got.n = 0;
	CU_ASSERT_EQUAL(tq_exchange_route(R, "other", 5, &m, S), 1);
	CU_ASSERT(got.n == 1 && got.qid[0] == 2);
	tq_exchange_counts(R, &st);
	CU_ASSERT_EQUAL(st.vhosts, 2);
	CU_ASSERT_EQUAL(st.exchanges, 12);
	CU_ASSERT_EQUAL(st.queues, 2);
	CU_ASSERT_EQUAL(st.bindings, 2);
	/* a vhost goes whole */
	CU_ASSERT_EQUAL(tq_exchange_vhost_del(R, "other", 5), 0);
	CU_ASSERT_EQUAL(tq_exchange_vhost_del(R, "other", 5), -ENOENT);
	CU_ASSERT_EQUAL(tq_exchange_route(R, "other", 5, &m, S), -ENOENT);
	tq_exchange_counts(R, &st);
	CU_ASSERT_EQUAL(st.vhosts, 1);
	CU_ASSERT_EQUAL(st.exchanges, 6);
	CU_ASSERT_EQUAL(st.queues, 1);
	CU_ASSERT_EQUAL(st.bindings, 1);
	ROUTES("amq.fanout", "", QIDS(1));
	/* and comes back empty */
	CU_ASSERT_EQUAL(tq_exchange_vhost_add(R, "other", 5), 0);
	got.n = 0;
	CU_ASSERT_EQUAL(tq_exchange_route(R, "other", 5, &m, S), 0);
	/* the empty name is a vhost name too */
	CU_ASSERT_EQUAL(tq_exchange_vhost_add(R, "", 0), 0);
	teardown();
}

/* ---- listing -------------------------------------------------------------------------- */

struct listing {
	char text[4096];
	size_t len;
	int exchanges;
	int bindings;
};

static void
list_exchange(void *arg, const struct tq_exchange_info *x)
{
	struct listing *l = arg;

	l->exchanges++;
	if (x->nlen == 2 && !memcmp(x->name, "ex", 2))
		CU_ASSERT(x->type == TQ_EXCHANGE_HEADERS && x->flags == TQ_EXCHANGE_AUTO_DELETE &&
			  x->has_ae && x->ae_len == 3 && !memcmp(x->ae, "alt", 3));
}

static void
list_binding(void *arg, const struct tq_exchange_binding *b)
{
	struct listing *l = arg;

	l->bindings++;
	l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, "%.*s>%s%.*s:%.*s",
				   (int)b->slen, b->src,
				   b->kind == TQ_EXCHANGE_TO_EXCHANGE ? "x:" : "q:", (int)b->dlen,
				   b->dst, (int)b->klen, b->key);
	for (uint32_t i = 0; i < b->nargs; i++)
		l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, ",%.*s",
					   (int)b->args[i].klen, b->args[i].key);
	l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, " ");
}

static void
test_walk(void)
{
	struct listing l = {.len = 0};
	const struct tq_exchange_walk_cb cb = {list_exchange, list_binding, &l};

	setup();
	CU_ASSERT_EQUAL(decl_full("ex", "headers", TQ_EXCHANGE_AUTO_DELETE, false,
				  ARGS(hs("alternate-exchange", "alt")), 1),
			0);
	CU_ASSERT_EQUAL(qadd("q", 1), 0);
	CU_ASSERT_EQUAL(bindq_args("ex", "q", "k", ARGS(hs("z", "1"), hs("a", "2"), hs("m", "3")), 3),
			0);
	CU_ASSERT_EQUAL(bindx("ex", "amq.topic", "t"), 0);
	CU_ASSERT_EQUAL(tq_exchange_walk(R, VH, 1, &cb), 0);
	CU_ASSERT_EQUAL(l.exchanges, 7);
	CU_ASSERT_EQUAL(l.bindings, 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(l.text, ">q:q:q "));          /* default, implicit */
	CU_ASSERT_PTR_NOT_NULL(strstr(l.text, "ex>q:q:k,a,m,z ")); /* arguments by key */
	CU_ASSERT_PTR_NOT_NULL(strstr(l.text, "ex>x:amq.topic:t "));
	CU_ASSERT_EQUAL(tq_exchange_walk(R, "nope", 4, &cb), -ENOENT);
	teardown();
}

/* ---- scratch limits ------------------------------------------------------------------ */

static void
test_scratch(void)
{
	setup();
	tq_exchange_scratch_free(S);
	S = tq_exchange_scratch_create(2, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(S);
	for (uint64_t i = 1; i <= 3; i++) {
		char q[8];

		snprintf(q, sizeof(q), "q%u", (unsigned)i);
		CU_ASSERT_EQUAL(qadd(q, i), 0);
		CU_ASSERT_EQUAL(bindq("amq.fanout", q, ""), 0);
	}
	/* three queues into room for two: the first two got it, and the caller knows */
	CU_ASSERT_EQUAL(route("amq.fanout", ""), -ENOBUFS);
	CU_ASSERT_EQUAL(got.n, 2);
	CU_ASSERT_EQUAL(unbindq("amq.fanout", "q3", ""), 0);
	ROUTES("amq.fanout", "", QIDS(1, 2));
	/* a second exchange into room for one */
	CU_ASSERT_EQUAL(decl("x", "fanout", 0), 0);
	CU_ASSERT_EQUAL(bindx("x", "amq.fanout", ""), 0);
	CU_ASSERT_EQUAL(route("x", ""), -ENOBUFS);
	CU_ASSERT_EQUAL(tq_exchange_scratch_reserve(S, 4, 4), 0);
	CU_ASSERT_EQUAL(bindq("amq.fanout", "q3", ""), 0);
	ROUTES("x", "", QIDS(1, 2, 3));
	/* many publishes: the generation stamps keep sets apart */
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL(route("x", ""), 3);
	teardown();
}

/* ---- readers racing a writer ---------------------------------------------------------- */

#define STABLE  5     /* qids 1..5: bound throughout */
#define CHURN   64    /* qids 100..163: bound, unbound, deleted, re-added */
#define ROUNDS  200000

static int race_stop;

struct race_reader {
	uint64_t seed;
	uint64_t routes;
	uint64_t bad;     /* an unknown qid, or one delivered twice */
	uint64_t missing; /* a stable queue not delivered */
	uint64_t seen[4]; /* per route: bit per qid slot */
	unsigned int stable_seen;
};

static void
race_deliver(void *arg, uint64_t qid)
{
	struct race_reader *r = arg;
	uint64_t slot;

	if (qid >= 1 && qid <= STABLE)
		slot = qid - 1, r->stable_seen |= 1u << (qid - 1);
	else if (qid >= 100 && qid < 100 + CHURN)
		slot = 8 + qid - 100;
	else {
		r->bad++;
		return;
	}
	if (r->seen[slot / 64] & (1ull << (slot % 64)))
		r->bad++;
	r->seen[slot / 64] |= 1ull << (slot % 64);
}

static void *
race_read(void *arg)
{
	struct race_reader *r = arg;
	struct tq_exchange_scratch *s = tq_exchange_scratch_create(256, 256);
	const struct tq_xheader h[] = {hs("a", "1"), hi("n", 'l', 7)};

	urcu_qsbr_register_thread();
	while (s && !__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		const struct tq_exchange_msg m = {
			.exchange = "root", .xlen = 4, .key = "k.s", .klen = 3,
			.headers = h, .nheaders = 2, .deliver = race_deliver, .arg = r};
		int rc;

		memset(r->seen, 0, sizeof(r->seen));
		r->stable_seen = 0;
		rc = tq_exchange_route(R, VH, 1, &m, s);
		if (rc < 0)
			r->bad++;
		if (r->stable_seen != (1u << STABLE) - 1)
			r->missing++;
		r->routes++;
		urcu_qsbr_quiescent_state();
	}
	urcu_qsbr_unregister_thread();
	tq_exchange_scratch_free(s);
	return NULL;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void
test_concurrent(void)
{
	static const char *const xs[] = {"t", "d", "f", "h"};
	static const char *const keys[] = {"k.s", "k.*", "#", "k.t", "*.s"};
	struct race_reader rd[2] = {{.seed = 1}, {.seed = 2}};
	pthread_t th[2];
	struct tq_exchange_stats st;

	setup();
	/* root (fanout) -> t (topic), d (direct), h (headers), f (fanout), g (direct) -> ae */
	CU_ASSERT_EQUAL(decl("root", "fanout", 0), 0);
	CU_ASSERT_EQUAL(decl("t", "topic", TQ_EXCHANGE_INTERNAL), 0);
	CU_ASSERT_EQUAL(decl("d", "direct", 0), 0);
	CU_ASSERT_EQUAL(decl("h", "headers", 0), 0);
	CU_ASSERT_EQUAL(decl("f", "fanout", 0), 0);
	CU_ASSERT_EQUAL(decl_ae("g", "direct", 0, "ae"), 0); /* never bound: always its AE */
	CU_ASSERT_EQUAL(decl("ae", "fanout", 0), 0);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(bindx("root", xs[i], ""), 0);
	CU_ASSERT_EQUAL(bindx("root", "g", ""), 0);
	CU_ASSERT_EQUAL(bindx("root", "root", ""), 0);
	/* the stable queues, one per way in, and one on every way (dedup) */
	for (uint64_t i = 1; i <= STABLE; i++) {
		char q[8];

		snprintf(q, sizeof(q), "s%u", (unsigned)i);
		CU_ASSERT_EQUAL(qadd(q, i), 0);
	}
	CU_ASSERT_EQUAL(bindq("t", "s1", "k.*"), 0);
	CU_ASSERT_EQUAL(bindq("d", "s2", "k.s"), 0);
	CU_ASSERT_EQUAL(bindq_args("h", "s3", "", ARGS(hs("x-match", "any"), hd("n", 7.0)), 2), 0);
	CU_ASSERT_EQUAL(bindq("ae", "s4", ""), 0);
	CU_ASSERT_EQUAL(bindq("t", "s5", "#"), 0);
	CU_ASSERT_EQUAL(bindq("d", "s5", "k.s"), 0);
	CU_ASSERT_EQUAL(bindq_args("h", "s5", "", ARGS(hs("a", "1")), 1), 0);
	CU_ASSERT_EQUAL(bindq("ae", "s5", ""), 0);
	for (int i = 0; i < CHURN; i++) {
		char q[8];

		snprintf(q, sizeof(q), "c%d", i);
		CU_ASSERT_EQUAL(qadd(q, 100 + (uint64_t)i), 0);
	}
	race_stop = 0;
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, race_read, &rd[i]), 0);

	for (int round = 0; round < ROUNDS; round++) {
		uint64_t x = rng();
		int c = (int)(x % CHURN);
		const char *ex = xs[(x >> 8) % 4];
		const char *key = keys[(x >> 16) % 5];
		char q[8], adx[16];
		int rc;

		snprintf(q, sizeof(q), "c%d", c);
		switch ((x >> 24) % 8) {
		case 0: /* the queue goes, bindings and all, and comes back */
			CU_ASSERT_EQUAL(qdel(q), 0);
			CU_ASSERT_EQUAL(qadd(q, 100 + (uint64_t)c), 0);
			break;
		case 1: /* an auto-delete exchange between root and the queue */
			snprintf(adx, sizeof(adx), "ad%d", c % 8);
			rc = decl(adx, "topic", TQ_EXCHANGE_AUTO_DELETE);
			CU_ASSERT(rc == 0 || rc == 1);
			if (rc == 0) {
				CU_ASSERT_EQUAL(bindx("root", adx, ""), 0);
				CU_ASSERT_EQUAL(bindq(adx, q, "k.#"), 0);
			} else {
				rc = unbindx("root", adx, ""); /* gone by now, or not */
				CU_ASSERT(rc == 0 || rc == 1);
				rc = xdel(adx, false);
				CU_ASSERT(rc == 0 || rc == 1);
			}
			break;
		default:
			if (!strcmp(ex, "h"))
				rc = (x >> 40) & 1
					     ? bindq_args(ex, q, key, ARGS(hs("a", "1")), 1)
					     : unbindq_args(ex, q, key, ARGS(hs("a", "1")), 1);
			else
				rc = (x >> 40) & 1 ? bindq(ex, q, key) : unbindq(ex, q, key);
			CU_ASSERT(rc == 0 || rc == 1);
			break;
		}
		if (round % 64 == 0)
			urcu_qsbr_quiescent_state();
	}
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT(rd[i].routes > 1000);
		CU_ASSERT_EQUAL(rd[i].bad, 0);
		CU_ASSERT_EQUAL(rd[i].missing, 0);
	}
	/* everything the churn made goes with its queues */
	for (int i = 0; i < CHURN; i++) {
		char q[8];

		snprintf(q, sizeof(q), "c%d", i);
		CU_ASSERT_EQUAL(qdel(q), 0);
	}
	tq_exchange_counts(R, &st);
	CU_ASSERT_EQUAL(st.bindings, 6 + 8);
	CU_ASSERT_EQUAL(st.exchanges, 6 + 7);
	CU_ASSERT_EQUAL(st.leaked, 0);
	ROUTES("root", "k.s", QIDS(1, 2, 4, 5));
	teardown();
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_builtin),
		TQ_TEST(test_declare),
		TQ_TEST(test_direct),
		TQ_TEST(test_fanout),
		TQ_TEST(test_topic),
		TQ_TEST(test_headers_examples),
		TQ_TEST(test_headers_types),
		TQ_TEST(test_headers_xmatch),
		TQ_TEST(test_e2e),
		TQ_TEST(test_alternate),
		TQ_TEST(test_may_route),
		TQ_TEST(test_auto_delete),
		TQ_TEST(test_delete),
		TQ_TEST(test_queues),
		TQ_TEST(test_vhosts),
		TQ_TEST(test_walk),
		TQ_TEST(test_scratch),
		TQ_TEST(test_concurrent),
	};
	int rc;

	urcu_qsbr_register_thread();
	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("exchange", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	rc = tq_test_run();
	/* let the call_rcu thread free what the tests retired, then leave */
	urcu_qsbr_thread_offline();
	urcu_qsbr_barrier();
	urcu_qsbr_unregister_thread();
	return rc;
}
