/*
 * tq_policy: every definition key with valid and invalid values, JSON strings and their
 * escapes, whole definitions, the formatter and its round trip, apply-to against keys, the
 * db (set, replace, clear, forget_vhost, enumeration order), matching (priorities, ties,
 * unanchored patterns, vhosts, what each apply-to reaches), the merge with a queue's own
 * arguments, snapshots, and a QSBR reader matching while the main thread publishes.
 *
 * The main thread is not a QSBR reader (it plays the control thread, which publishes with
 * synchronize_rcu); the reader thread registers itself.
 */
#define URCU_INLINE_SMALL_FUNCTIONS
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <urcu/urcu-qsbr.h>

#include "control/tq_policy.h"
#include "tq_test.h"

static char err[256];

static int
dset(struct tq_policy_def *d, const char *key, const char *val)
{
	err[0] = '\0';
	return tq_policy_def_set(d, key, val, err, sizeof(err));
}

/* A definition from JSON text; the test fails if it does not parse. */
static struct tq_policy_def
D(const char *json)
{
	struct tq_policy_def d;
	int rc;

	memset(&d, 0, sizeof(d));
	err[0] = '\0';
	rc = tq_policy_def_parse(&d, json, strlen(json), err, sizeof(err));
	if (rc)
		fprintf(stderr, "D(%s): %s\n", json, err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	return d;
}

/* Every key set, with strings that need escaping. */
static struct tq_policy_def
full_def(void)
{
	struct tq_policy_def d;

	memset(&d, 0, sizeof(d));
	d.set = TQ_POL_MESSAGE_TTL | TQ_POL_EXPIRES | TQ_POL_MAX_LENGTH |
		TQ_POL_MAX_LENGTH_BYTES | TQ_POL_OVERFLOW | TQ_POL_DLX | TQ_POL_DLRK |
		TQ_POL_MAX_PRIORITY | TQ_POL_DELIVERY_LIMIT | TQ_POL_ALTERNATE_EXCHANGE |
		TQ_POL_PRIORITY_CLASS;
	d.message_ttl = 4294967295u;
	d.expires = 1;
	d.max_length = 0;
	d.max_length_bytes = 9223372036854775807u;
	d.overflow = TQ_OVERFLOW_REJECT_PUBLISH_DLX;
	strcpy(d.dlx, "q\"uo\\te/\b\f\n\r\t\x01\x1f\x7f caf\xc3\xa9");
	memset(d.dlrk, 'k', TQ_POLICY_STR_MAX); /* the longest string */
	d.max_priority = 255;
	d.delivery_limit = 20;
	strcpy(d.alternate_exchange, "");
	d.priority_class = TQ_CLASS_BULK;
	return d;
}

/*
 * @key = @val must be refused with -EINVAL, a message containing @in, and the definition
 * (holding an earlier value of every key) unchanged.
 */
static void
refuse_at(const char *key, const char *val, const char *in, int line)
{
	struct tq_policy_def d, before;
	int rc;

	d = full_def();
	before = d;
	rc = dset(&d, key, val);
	if (rc != -EINVAL || !strstr(err, in))
		fprintf(stderr, "line %d: %s = %s: rc %d, \"%s\" (wanted \"%s\")\n", line, key,
			val, rc, err, in);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, in));
	CU_ASSERT_EQUAL(memcmp(&d, &before, sizeof(d)), 0);
}

#define REFUSE(k, v) refuse_at(k, v, k, __LINE__)
#define REFUSE_MSG(k, v, m) refuse_at(k, v, m, __LINE__)

/* ---- one key at a time --------------------------------------------------------------- */

struct int_key {
	const char *name;
	uint32_t bit;
	uint64_t min, max;
	const char *below, *above; /* the first values out of range */
};

static const struct int_key int_keys[] = {
	{"message-ttl", TQ_POL_MESSAGE_TTL, 0, 4294967295u, "-1", "4294967296"},
	{"expires", TQ_POL_EXPIRES, 1, 4294967295u, "0", "4294967296"},
	{"max-length", TQ_POL_MAX_LENGTH, 0, 9223372036854775807u, "-1", "9223372036854775808"},
	{"max-length-bytes", TQ_POL_MAX_LENGTH_BYTES, 0, 9223372036854775807u, "-1",
	 "9223372036854775808"},
	{"max-priority", TQ_POL_MAX_PRIORITY, 1, 255, "0", "256"},
	{"delivery-limit", TQ_POL_DELIVERY_LIMIT, 0, 9223372036854775807u, "-1",
	 "9223372036854775808"},
};

static uint64_t
int_field(const struct tq_policy_def *d, uint32_t bit)
{
	switch (bit) {
	case TQ_POL_MESSAGE_TTL: return d->message_ttl;
	case TQ_POL_EXPIRES: return d->expires;
	case TQ_POL_MAX_LENGTH: return d->max_length;
	case TQ_POL_MAX_LENGTH_BYTES: return d->max_length_bytes;
	case TQ_POL_MAX_PRIORITY: return d->max_priority;
	case TQ_POL_DELIVERY_LIMIT: return d->delivery_limit;
	}
	return ~0ull;
}

static void
test_def_integers(void)
{
	for (size_t i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++) {
		const struct int_key *k = &int_keys[i];
		struct tq_policy_def d;
		char v[32];

		memset(&d, 0, sizeof(d));
		snprintf(v, sizeof(v), "%llu", (unsigned long long)k->min);
		CU_ASSERT_EQUAL(dset(&d, k->name, v), 0);
		CU_ASSERT_EQUAL(d.set, k->bit);
		CU_ASSERT_EQUAL(int_field(&d, k->bit), k->min);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)k->max);
		CU_ASSERT_EQUAL(dset(&d, k->name, v), 0);
		CU_ASSERT_EQUAL(int_field(&d, k->bit), k->max);
		/* whitespace around a value is JSON */
		CU_ASSERT_EQUAL(dset(&d, k->name, " \t\n10\r "), 0);
		CU_ASSERT_EQUAL(int_field(&d, k->bit), 10);
		CU_ASSERT_EQUAL(d.set, k->bit);

		REFUSE(k->name, k->below);
		REFUSE(k->name, k->above);
		REFUSE(k->name, "-5");
		REFUSE(k->name, "99999999999999999999999"); /* past 64 bits */
		REFUSE(k->name, "1.5");
		REFUSE(k->name, "10.0"); /* RabbitMQ wants an integer too */
		REFUSE(k->name, "1e3");
		REFUSE(k->name, "010");
		REFUSE(k->name, "\"10\"");
		REFUSE(k->name, "");
		REFUSE(k->name, "   ");
		REFUSE(k->name, "10 11");
		REFUSE(k->name, "10,");
		REFUSE(k->name, "true");
		REFUSE(k->name, "null");
		REFUSE(k->name, "0x10");
		REFUSE(k->name, "+10");
		REFUSE(k->name, "-");
	}
}

static void
test_def_integer_edges(void)
{
	struct tq_policy_def d;

	memset(&d, 0, sizeof(d));
	/* -0 is a JSON integer equal to 0 */
	CU_ASSERT_EQUAL(dset(&d, "message-ttl", "-0"), 0);
	CU_ASSERT_EQUAL(d.message_ttl, 0);
	CU_ASSERT_EQUAL(dset(&d, "message-ttl", "0"), 0);
	REFUSE("expires", "-0");
	CU_ASSERT_EQUAL(dset(&d, "message-ttl", "60000"), 0);
	CU_ASSERT_EQUAL(d.message_ttl, 60000);
	/* 2^64 - 1 parses as a number but is past every key's range */
	REFUSE_MSG("max-length", "18446744073709551615", "from 0 to 9223372036854775807");
	REFUSE_MSG("max-length", "18446744073709551616", "from 0 to 9223372036854775807");
	/* a later key leaves the earlier ones alone; setting a key again replaces it */
	CU_ASSERT_EQUAL(dset(&d, "max-length", "10"), 0);
	CU_ASSERT_EQUAL(dset(&d, "max-length", "11"), 0);
	CU_ASSERT_EQUAL(d.set, TQ_POL_MESSAGE_TTL | TQ_POL_MAX_LENGTH);
	CU_ASSERT_EQUAL(d.message_ttl, 60000);
	CU_ASSERT_EQUAL(d.max_length, 11);
	CU_ASSERT_EQUAL(dset(&d, "max-priority", "10"), 0);
	CU_ASSERT_EQUAL(d.max_priority, 10);
}

static const char *const str_keys[] = {
	"dead-letter-exchange", "dead-letter-routing-key", "alternate-exchange",
};

static const char *
str_field(const struct tq_policy_def *d, const char *key)
{
	if (!strcmp(key, "dead-letter-exchange"))
		return d->dlx;
	if (!strcmp(key, "dead-letter-routing-key"))
		return d->dlrk;
	return d->alternate_exchange;
}

static uint32_t
str_bit(const char *key)
{
	if (!strcmp(key, "dead-letter-exchange"))
		return TQ_POL_DLX;
	if (!strcmp(key, "dead-letter-routing-key"))
		return TQ_POL_DLRK;
	return TQ_POL_ALTERNATE_EXCHANGE;
}

static void
test_def_strings(void)
{
	char big[700], v[800];

	for (size_t i = 0; i < sizeof(str_keys) / sizeof(str_keys[0]); i++) {
		const char *k = str_keys[i];
		struct tq_policy_def d;

		memset(&d, 0, sizeof(d));
		CU_ASSERT_EQUAL(dset(&d, k, "\"dlx.main\""), 0);
		CU_ASSERT_EQUAL(d.set, str_bit(k));
		CU_ASSERT_STRING_EQUAL(str_field(&d, k), "dlx.main");
		CU_ASSERT_EQUAL(dset(&d, k, " \"\" "), 0); /* the default exchange */
		CU_ASSERT_STRING_EQUAL(str_field(&d, k), "");
		/* every escape we take */
		CU_ASSERT_EQUAL(dset(&d, k, "\"a\\\"b\\\\c\\/d\\ne\\tf\\u0041\\u007e\\r\\b\\f\""),
				0);
		CU_ASSERT_STRING_EQUAL(str_field(&d, k), "a\"b\\c/d\ne\tfA~\r\b\f");
		/* upper-case hex digits */
		CU_ASSERT_EQUAL(dset(&d, k, "\"\\u004A\\u004a\""), 0);
		CU_ASSERT_STRING_EQUAL(str_field(&d, k), "JJ");
		/* raw UTF-8 goes through */
		CU_ASSERT_EQUAL(dset(&d, k, "\"caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80\""), 0);
		CU_ASSERT_STRING_EQUAL(str_field(&d, k), "caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80");

		/* exactly TQ_POLICY_STR_MAX bytes, then one more */
		memset(big, 'x', TQ_POLICY_STR_MAX);
		big[TQ_POLICY_STR_MAX] = '\0';
		snprintf(v, sizeof(v), "\"%s\"", big);
		CU_ASSERT_EQUAL(dset(&d, k, v), 0);
		CU_ASSERT_EQUAL(strlen(str_field(&d, k)), TQ_POLICY_STR_MAX);
		snprintf(v, sizeof(v), "\"%sy\"", big);
		REFUSE_MSG(k, v, "longer than 255 bytes");
		/* the limit is on the unescaped text: 255 escapes are 255 bytes */
		v[0] = '"';
		for (int j = 0; j < TQ_POLICY_STR_MAX; j++)
			memcpy(v + 1 + 2 * j, "\\n", 2);
		strcpy(v + 1 + 2 * TQ_POLICY_STR_MAX, "\"");
		CU_ASSERT_EQUAL(dset(&d, k, v), 0);
		CU_ASSERT_EQUAL(strlen(str_field(&d, k)), TQ_POLICY_STR_MAX);
		strcpy(v + 1 + 2 * TQ_POLICY_STR_MAX, "\\n\"");
		REFUSE_MSG(k, v, "longer than 255 bytes");

		REFUSE_MSG(k, "dlx", "must be a string");     /* no quotes */
		REFUSE_MSG(k, "10", "must be a string");
		REFUSE_MSG(k, "\"dlx", "unterminated");
		REFUSE_MSG(k, "\"dlx\\\"", "unterminated");
		REFUSE_MSG(k, "\"a\" \"b\"", "after the value");
		REFUSE_MSG(k, "\"a\\x\"", "unknown escape");
		REFUSE_MSG(k, "\"a\\u00\"", "4 hex digits");
		REFUSE_MSG(k, "\"a\\u00g1\"", "4 hex digits");
		REFUSE_MSG(k, "\"a\\u0000\"", "\\u0000");     /* would cut the string */
		REFUSE_MSG(k, "\"a\\u00e9\"", "\\u00e9");     /* not ASCII */
		REFUSE_MSG(k, "\"a\\ud83d\\ude00\"", "\\ud83d");
		REFUSE_MSG(k, "\"a\tb\"", "control character");
		REFUSE_MSG(k, "\"a\nb\"", "control character");
		REFUSE_MSG(k, "\"\xff\"", "UTF-8");
		REFUSE_MSG(k, "\"\xc3\"", "UTF-8");           /* truncated sequence */
		REFUSE_MSG(k, "\"\xc0\xaf\"", "UTF-8");       /* overlong */
		REFUSE_MSG(k, "\"\xed\xa0\x80\"", "UTF-8");   /* a surrogate */
		REFUSE_MSG(k, "\"\xf4\x90\x80\x80\"", "UTF-8"); /* past U+10FFFF */
	}
}

static void
test_def_enums(void)
{
	static const char *const ovf[] = {"drop-head", "reject-publish", "reject-publish-dlx"};
	static const char *const cls[] = {"critical", "normal", "bulk"};
	struct tq_policy_def d;
	char v[64];

	memset(&d, 0, sizeof(d));
	for (int i = 0; i < 3; i++) {
		snprintf(v, sizeof(v), "\"%s\"", ovf[i]);
		CU_ASSERT_EQUAL(dset(&d, "overflow", v), 0);
		CU_ASSERT_EQUAL(d.overflow, i);
		snprintf(v, sizeof(v), "\"%s\"", cls[i]);
		CU_ASSERT_EQUAL(dset(&d, "priority-class", v), 0);
		CU_ASSERT_EQUAL(d.priority_class, i);
	}
	CU_ASSERT_EQUAL(d.set, TQ_POL_OVERFLOW | TQ_POL_PRIORITY_CLASS);
	CU_ASSERT_EQUAL(TQ_OVERFLOW_REJECT_PUBLISH_DLX, 2);
	CU_ASSERT_EQUAL(TQ_CLASS_BULK, 2);
	/* escapes work in enum values too */
	CU_ASSERT_EQUAL(dset(&d, "overflow", "\"drop\\u002dhead\""), 0);
	CU_ASSERT_EQUAL(d.overflow, TQ_OVERFLOW_DROP_HEAD);

	REFUSE_MSG("overflow", "\"Drop-head\"", "is not one of drop-head, reject-publish");
	REFUSE("overflow", "\"drop-head \"");
	REFUSE("overflow", "\"\"");
	REFUSE("overflow", "\"reject-publish-dlx-\"");
	REFUSE_MSG("overflow", "0", "must be a string");
	REFUSE_MSG("priority-class", "\"high\"", "is not one of critical, normal, bulk");
	REFUSE_MSG("priority-class", "1", "must be a string");
	REFUSE("priority-class", "\"NORMAL\"");
}

static void
test_def_unknown_keys(void)
{
	REFUSE_MSG("ha-mode", "\"all\"", "unknown policy key \"ha-mode\"");
	REFUSE_MSG("x-message-ttl", "10", "unknown policy key \"x-message-ttl\"");
	REFUSE_MSG("Message-TTL", "10", "unknown policy key");
	REFUSE_MSG("message-ttl ", "10", "unknown policy key");
	REFUSE_MSG("queue-mode", "\"lazy\"", "unknown policy key");
	REFUSE_MSG("", "10", "unknown policy key \"\"");
	CU_ASSERT_EQUAL(tq_policy_def_set(NULL, "max-length", "1", NULL, 0), -EINVAL);
	/* a NULL or empty error buffer is fine */
	{
		struct tq_policy_def d = {0};

		CU_ASSERT_EQUAL(tq_policy_def_set(&d, "nope", "1", NULL, 0), -EINVAL);
		CU_ASSERT_EQUAL(tq_policy_def_set(&d, "max-length", "x", err, 0), -EINVAL);
		CU_ASSERT_EQUAL(tq_policy_def_set(&d, "max-length", "1", NULL, 0), 0);
		CU_ASSERT_EQUAL(d.max_length, 1);
	}
}

/* ---- whole definitions, the formatter, round trips ------------------------------------ */

static int
parse(struct tq_policy_def *d, const char *json)
{
	err[0] = '\0';
	return tq_policy_def_parse(d, json, strlen(json), err, sizeof(err));
}

static void
test_def_parse(void)
{
	struct tq_policy_def d, before;

	d = D("{}");
	CU_ASSERT_EQUAL(d.set, 0);
	d = D("  { \"max-length\" : 10 ,\n\t\"overflow\":\"reject-publish\" , "
	      "\"dead-letter-exchange\": \"a,}b\" }  ");
	CU_ASSERT_EQUAL(d.set, TQ_POL_MAX_LENGTH | TQ_POL_OVERFLOW | TQ_POL_DLX);
	CU_ASSERT_EQUAL(d.max_length, 10);
	CU_ASSERT_EQUAL(d.overflow, TQ_OVERFLOW_REJECT_PUBLISH);
	CU_ASSERT_STRING_EQUAL(d.dlx, "a,}b");
	/* a key may be written with escapes */
	d = D("{\"max\\u002dlength\":3}");
	CU_ASSERT_EQUAL(d.max_length, 3);

	/* every error leaves @d as it was and says why */
	before = d;
#define BAD(json, msg)                                                                        \
	do {                                                                                  \
		CU_ASSERT_EQUAL(parse(&d, json), -EINVAL);                                    \
		if (!strstr(err, msg))                                                        \
			fprintf(stderr, "%s: \"%s\" (wanted \"%s\")\n", json, err, msg);      \
		CU_ASSERT_PTR_NOT_NULL(strstr(err, msg));                                     \
		CU_ASSERT_EQUAL(memcmp(&d, &before, sizeof(d)), 0);                           \
	} while (0)
	BAD("", "JSON object");
	BAD("[]", "JSON object");
	BAD("\"max-length\"", "JSON object");
	BAD("{", "expected a key");
	BAD("{\"max-length\":1", "expected ',' or '}'");
	BAD("{\"max-length\":1,}", "expected a key");
	BAD("{\"max-length\" 1}", "expected ':'");
	BAD("{\"max-length\":}", "no value");
	BAD("{\"max-length\":1 2}", "expected ',' or '}'");
	BAD("{max-length:1}", "expected a key");
	BAD("{\"max-length\":1}x", "unexpected text");
	BAD("{\"max-length\":1}{}", "unexpected text");
	BAD("{\"max-length\":1,\"max-length\":2}", "max-length given twice");
	BAD("{\"ha-mode\":\"all\"}", "unknown policy key \"ha-mode\"");
	BAD("{\"expires\":0}", "expires must be an integer from 1");
	BAD("{\"max-length\":\"1\"}", "max-length must be an integer");
	BAD("{\"overflow\":\"nope\"}", "overflow: \"nope\" is not one of");
	BAD("{\"dead-letter-exchange\":\"a\\q\"}", "dead-letter-exchange: unknown escape");
	BAD("{\"max-length\":1, \"overflow\":\"drop-head\"", "expected ',' or '}'");
#undef BAD
	CU_ASSERT_EQUAL(tq_policy_def_parse(NULL, "{}", 2, NULL, 0), -EINVAL);
	/* @len bounds the text: what follows it is not read */
	CU_ASSERT_EQUAL(tq_policy_def_parse(&d, "{\"max-length\":5}garbage", 16, err,
					    sizeof(err)), 0);
	CU_ASSERT_EQUAL(d.max_length, 5);
}

static void
test_def_json(void)
{
	struct tq_policy_def d;
	char out[2048];
	const char *want;
	int n;

	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(tq_policy_def_json(&d, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, "{}");

	CU_ASSERT_EQUAL(dset(&d, "priority-class", "\"critical\""), 0);
	CU_ASSERT_EQUAL(dset(&d, "dead-letter-exchange", "\"dl\\\"x\\\\\\u0001\\n\""), 0);
	CU_ASSERT_EQUAL(dset(&d, "overflow", "\"reject-publish\""), 0);
	CU_ASSERT_EQUAL(dset(&d, "message-ttl", "60000"), 0);
	CU_ASSERT_EQUAL(dset(&d, "max-priority", "255"), 0);
	/* keys come out in the header's order, whatever order they were set in */
	want = "{\"message-ttl\":60000,\"overflow\":\"reject-publish\","
	       "\"dead-letter-exchange\":\"dl\\\"x\\\\\\u0001\\n\",\"max-priority\":255,"
	       "\"priority-class\":\"critical\"}";
	n = tq_policy_def_json(&d, out, sizeof(out));
	CU_ASSERT_EQUAL(n, (int)strlen(want));
	CU_ASSERT_STRING_EQUAL(out, want);
	/* room for the text but not its NUL, then just enough */
	CU_ASSERT_EQUAL(tq_policy_def_json(&d, out, strlen(want)), -ENOSPC);
	CU_ASSERT_EQUAL(out[strlen(want) - 1], '\0'); /* truncated output is still a string */
	CU_ASSERT_EQUAL(tq_policy_def_json(&d, out, 1), -ENOSPC);
	CU_ASSERT_EQUAL(tq_policy_def_json(&d, NULL, 0), -ENOSPC);
	CU_ASSERT_EQUAL(tq_policy_def_json(&d, out, strlen(want) + 1), n);
	CU_ASSERT_STRING_EQUAL(out, want);
	/* an enum value no name stands for cannot be written */
	d.overflow = 9;
	CU_ASSERT_EQUAL(tq_policy_def_json(&d, out, sizeof(out)), -EINVAL);
}

static void
assert_same_def(const struct tq_policy_def *a, const struct tq_policy_def *b)
{
	CU_ASSERT_EQUAL(a->set, b->set);
	CU_ASSERT_EQUAL(a->message_ttl, b->message_ttl);
	CU_ASSERT_EQUAL(a->expires, b->expires);
	CU_ASSERT_EQUAL(a->max_length, b->max_length);
	CU_ASSERT_EQUAL(a->max_length_bytes, b->max_length_bytes);
	CU_ASSERT_EQUAL(a->delivery_limit, b->delivery_limit);
	CU_ASSERT_EQUAL(a->overflow, b->overflow);
	CU_ASSERT_EQUAL(a->max_priority, b->max_priority);
	CU_ASSERT_EQUAL(a->priority_class, b->priority_class);
	CU_ASSERT_STRING_EQUAL(a->dlx, b->dlx);
	CU_ASSERT_STRING_EQUAL(a->dlrk, b->dlrk);
	CU_ASSERT_STRING_EQUAL(a->alternate_exchange, b->alternate_exchange);
}

static const struct {
	const char *name;
	uint32_t bit;
} all_keys[] = {
	{"message-ttl", TQ_POL_MESSAGE_TTL},
	{"expires", TQ_POL_EXPIRES},
	{"max-length", TQ_POL_MAX_LENGTH},
	{"max-length-bytes", TQ_POL_MAX_LENGTH_BYTES},
	{"overflow", TQ_POL_OVERFLOW},
	{"dead-letter-exchange", TQ_POL_DLX},
	{"dead-letter-routing-key", TQ_POL_DLRK},
	{"max-priority", TQ_POL_MAX_PRIORITY},
	{"delivery-limit", TQ_POL_DELIVERY_LIMIT},
	{"alternate-exchange", TQ_POL_ALTERNATE_EXCHANGE},
	{"priority-class", TQ_POL_PRIORITY_CLASS},
};

static void
test_def_round_trip(void)
{
	struct tq_policy_def full = full_def(), back, one;
	char out[4096], out2[4096];
	int n;

	/* the whole object through tq_policy_def_parse */
	n = tq_policy_def_json(&full, out, sizeof(out));
	CU_ASSERT_FATAL(n > 0);
	memset(&back, 0, sizeof(back));
	CU_ASSERT_EQUAL_FATAL(tq_policy_def_parse(&back, out, (size_t)n, err, sizeof(err)), 0);
	assert_same_def(&back, &full);
	CU_ASSERT_EQUAL(tq_policy_def_json(&back, out2, sizeof(out2)), n);
	CU_ASSERT_STRING_EQUAL(out2, out);

	/* each key alone is {"key":VALUE}; VALUE goes back through tq_policy_def_set */
	memset(&back, 0, sizeof(back));
	for (size_t i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
		const char *k = all_keys[i].name;
		size_t klen = strlen(k);

		one = full;
		one.set = all_keys[i].bit;
		n = tq_policy_def_json(&one, out, sizeof(out));
		CU_ASSERT_FATAL(n > (int)klen + 5);
		CU_ASSERT_EQUAL(strncmp(out, "{\"", 2), 0);
		CU_ASSERT_EQUAL(strncmp(out + 2, k, klen), 0);
		CU_ASSERT_EQUAL(strncmp(out + 2 + klen, "\":", 2), 0);
		CU_ASSERT_EQUAL(out[n - 1], '}');
		out[n - 1] = '\0';
		CU_ASSERT_EQUAL(dset(&back, k, out + 2 + klen + 2), 0);
		CU_ASSERT_EQUAL(back.set & all_keys[i].bit, all_keys[i].bit);
	}
	assert_same_def(&back, &full);
}

/* ---- apply-to ------------------------------------------------------------------------ */

static void
test_apply_names(void)
{
	static const struct {
		const char *s;
		enum tq_policy_apply a;
	} names[] = {
		{"queues", TQ_POLICY_QUEUES},
		{"exchanges", TQ_POLICY_EXCHANGES},
		{"all", TQ_POLICY_ALL},
		{"users", TQ_POLICY_USERS},
		{"topics", TQ_POLICY_TOPICS},
	};
	enum tq_policy_apply a = TQ_POLICY_QUEUES;

	for (size_t i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(tq_policy_apply_parse(names[i].s, &a), 0);
		CU_ASSERT_EQUAL(a, names[i].a);
		CU_ASSERT_STRING_EQUAL(tq_policy_apply_name(names[i].a), names[i].s);
	}
	a = TQ_POLICY_USERS;
	CU_ASSERT_EQUAL(tq_policy_apply_parse("both", &a), -EINVAL);
	CU_ASSERT_EQUAL(tq_policy_apply_parse("Queues", &a), -EINVAL);
	CU_ASSERT_EQUAL(tq_policy_apply_parse("", &a), -EINVAL);
	CU_ASSERT_EQUAL(tq_policy_apply_parse("queue", &a), -EINVAL);
	CU_ASSERT_EQUAL(tq_policy_apply_parse(NULL, &a), -EINVAL);
	CU_ASSERT_EQUAL(a, TQ_POLICY_USERS);
	CU_ASSERT_STRING_EQUAL(tq_policy_apply_name((enum tq_policy_apply)0), "unknown");
	CU_ASSERT_STRING_EQUAL(tq_policy_apply_name((enum tq_policy_apply)5), "unknown");
	CU_ASSERT_STRING_EQUAL(tq_policy_apply_name((enum tq_policy_apply)7), "unknown");
	CU_ASSERT_EQUAL(tq_policy_apply_parse("topic", &a), -EINVAL);
}

static int
pset(struct tq_policy_db *db, const char *vhost, const char *name, const char *pattern,
     enum tq_policy_apply apply, int prio, const char *json)
{
	struct tq_policy_def d = D(json);

	err[0] = '\0';
	return tq_policy_set(db, vhost, name, pattern, apply, prio, &d, err, sizeof(err));
}

/* Which apply-to each key accepts: Q queues, X exchanges, A all, U users, T topics. */
static void
test_apply_vs_keys(void)
{
	static const struct {
		const char *def;
		const char *ok; /* the apply-tos that take it */
		const char *msg;
	} cases[] = {
		{"{\"message-ttl\":1}", "QAT", "message-ttl is a key for queues and topics"},
		{"{\"expires\":1}", "QA", "expires is a key for queues"},
		{"{\"max-length\":1}", "QA", "max-length is a key for queues"},
		{"{\"max-length-bytes\":1}", "QA", "max-length-bytes is a key for queues"},
		{"{\"overflow\":\"drop-head\"}", "QA", "overflow is a key for queues"},
		{"{\"dead-letter-exchange\":\"d\"}", "QA", "dead-letter-exchange is a key for q"},
		{"{\"dead-letter-routing-key\":\"d\"}", "QA", "dead-letter-routing-key is a key"},
		{"{\"max-priority\":5}", "QA", "max-priority is a key for queues"},
		{"{\"delivery-limit\":5}", "QA", "delivery-limit is a key for queues"},
		{"{\"alternate-exchange\":\"ae\"}", "XA", "alternate-exchange is a key for exch"},
		{"{\"priority-class\":\"bulk\"}", "U", "priority-class is a key for users"},
		/* one misfit spoils a policy */
		{"{\"max-length\":1,\"alternate-exchange\":\"ae\"}", "A", "a key for"},
		{"{\"max-length\":1,\"priority-class\":\"bulk\"}", "", "a key for"},
	};
	static const struct {
		char c;
		enum tq_policy_apply a;
	} applies[] = {
		{'Q', TQ_POLICY_QUEUES},
		{'X', TQ_POLICY_EXCHANGES},
		{'A', TQ_POLICY_ALL},
		{'U', TQ_POLICY_USERS},
		{'T', TQ_POLICY_TOPICS},
	};
	struct tq_policy_db *db = tq_policy_db_new();

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t j = 0; j < sizeof(applies) / sizeof(applies[0]); j++) {
			bool ok = strchr(cases[i].ok, applies[j].c) != NULL;
			int rc = pset(db, "/", "p", ".*", applies[j].a, 0, cases[i].def);

			CU_ASSERT_EQUAL(rc, ok ? 0 : -EINVAL);
			if (!ok) {
				CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].msg));
				/* the message names the apply-to that was given */
				CU_ASSERT_PTR_NOT_NULL(
					strstr(err, tq_policy_apply_name(applies[j].a)));
			}
		}
	}
	/* the last accepted one is there; the refusals after it replaced nothing */
	{
		struct tq_policy_info pi;

		CU_ASSERT_EQUAL(tq_policy_count(db), 1);
		CU_ASSERT_EQUAL(tq_policy_at(db, 0, &pi), 0);
		CU_ASSERT_EQUAL(pi.apply_to, TQ_POLICY_ALL);
		CU_ASSERT_EQUAL(pi.def->set, TQ_POL_MAX_LENGTH | TQ_POL_ALTERNATE_EXCHANGE);
	}
	tq_policy_db_free(db);
}

static void
test_set_validation(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct tq_policy_def d;
	char name[300];

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	memset(name, 'n', sizeof(name));
	name[TQ_POLICY_NAME_MAX] = '\0';
	CU_ASSERT_EQUAL(pset(db, "/", name, ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"), 0);
	CU_ASSERT_EQUAL(pset(db, name, "p", ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"), 0);
	name[TQ_POLICY_NAME_MAX] = 'n';
	name[TQ_POLICY_NAME_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(pset(db, "/", name, ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "policy name must be 1 to 255 bytes"));
	CU_ASSERT_EQUAL(pset(db, name, "p", ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "vhost must be 1 to 255 bytes"));
	CU_ASSERT_EQUAL(pset(db, "/", "", ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"),
			-EINVAL);
	CU_ASSERT_EQUAL(pset(db, "", "p", ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"),
			-EINVAL);
	CU_ASSERT_EQUAL(pset(db, "/", "\xff", ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "UTF-8"));

	/* patterns: POSIX ERE, regerror's text */
	CU_ASSERT_EQUAL(pset(db, "/", "p", "a(", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "pattern \"a(\": "));
	CU_ASSERT(strlen(err) > strlen("pattern \"a(\": "));
	CU_ASSERT_EQUAL(pset(db, "/", "p", "[a-", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"),
			-EINVAL);
	CU_ASSERT_EQUAL(pset(db, "/", "p", "*a{2,1}", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"),
			-EINVAL);

	/* apply-to outside the enum, an empty definition */
	CU_ASSERT_EQUAL(pset(db, "/", "p", ".*", (enum tq_policy_apply)0, 0,
			     "{\"max-length\":1}"), -EINVAL);
	CU_ASSERT_EQUAL(pset(db, "/", "p", ".*", (enum tq_policy_apply)5, 0,
			     "{\"max-length\":1}"), -EINVAL);
	CU_ASSERT_EQUAL(pset(db, "/", "p", ".*", TQ_POLICY_QUEUES, 0, "{}"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "empty definition"));

	/* a definition filled in by hand is held to what tq_policy_def_set accepts */
#define BAD_DEF(field_stmt, msg)                                                              \
	do {                                                                                  \
		memset(&d, 0, sizeof(d));                                                     \
		field_stmt;                                                                   \
		err[0] = '\0';                                                                \
		CU_ASSERT_EQUAL(tq_policy_set(db, "/", "p", ".*", TQ_POLICY_ALL, 0, &d, err,  \
					      sizeof(err)), -EINVAL);                         \
		CU_ASSERT_PTR_NOT_NULL(strstr(err, msg));                                     \
	} while (0)
	BAD_DEF((d.set = TQ_POL_EXPIRES, d.expires = 0), "expires must be");
	BAD_DEF((d.set = TQ_POL_MESSAGE_TTL, d.message_ttl = 1ull << 32), "message-ttl must");
	BAD_DEF((d.set = TQ_POL_MAX_LENGTH, d.max_length = 1ull << 63), "max-length must");
	BAD_DEF((d.set = TQ_POL_MAX_PRIORITY, d.max_priority = 0), "max-priority must");
	BAD_DEF((d.set = TQ_POL_OVERFLOW, d.overflow = 3), "overflow: invalid value 3");
	BAD_DEF((d.set = TQ_POL_DLX, memset(d.dlx, 'x', sizeof(d.dlx))), "longer than 255");
	BAD_DEF((d.set = TQ_POL_DLRK, strcpy(d.dlrk, "\xc3")), "not valid UTF-8");
	BAD_DEF((d.set = 1u << 20), "unknown definition bits");
	BAD_DEF((d.set = TQ_POL_PRIORITY_CLASS, d.priority_class = 1), "key for users");
#undef BAD_DEF

	/* missing arguments */
	memset(&d, 0, sizeof(d));
	d.set = TQ_POL_MAX_LENGTH;
	CU_ASSERT_EQUAL(tq_policy_set(NULL, "/", "p", ".*", TQ_POLICY_ALL, 0, &d, NULL, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_policy_set(db, NULL, "p", ".*", TQ_POLICY_ALL, 0, &d, NULL, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_policy_set(db, "/", "p", NULL, TQ_POLICY_ALL, 0, &d, NULL, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_policy_set(db, "/", "p", ".*", TQ_POLICY_ALL, 0, NULL, NULL, 0),
			-EINVAL);

	/* nothing refused got in */
	CU_ASSERT_EQUAL(tq_policy_count(db), 2);
	tq_policy_db_free(db);
}

/* ---- the db -------------------------------------------------------------------------- */

static void
expect_order(struct tq_policy_db *db, const char *const *vn, size_t n)
{
	struct tq_policy_info pi;

	CU_ASSERT_EQUAL_FATAL(tq_policy_count(db), n);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL_FATAL(tq_policy_at(db, i, &pi), 0);
		CU_ASSERT_STRING_EQUAL(pi.vhost, vn[2 * i]);
		CU_ASSERT_STRING_EQUAL(pi.name, vn[2 * i + 1]);
	}
	CU_ASSERT_EQUAL(tq_policy_at(db, n, &pi), -ENOENT);
}

static void
test_db(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct tq_policy_info pi;
	struct tq_policy_def d;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(tq_policy_count(db), 0);
	CU_ASSERT_EQUAL(tq_policy_at(db, 0, &pi), -ENOENT);

	CU_ASSERT_EQUAL(pset(db, "v2", "b", "^b", TQ_POLICY_QUEUES, 1, "{\"max-length\":1}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "z", "^z", TQ_POLICY_EXCHANGES, 2,
			     "{\"alternate-exchange\":\"ae\"}"), 0);
	CU_ASSERT_EQUAL(pset(db, "v2", "a", "^a", TQ_POLICY_USERS, -3,
			     "{\"priority-class\":\"bulk\"}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "B", "x", TQ_POLICY_ALL, 0, "{\"expires\":5}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "a", "y", TQ_POLICY_QUEUES, 0, "{\"expires\":6}"), 0);
	/* (vhost, name) in byte order: "/" < "v2", "B" < "a" < "z" */
	{
		static const char *const want[] = {"/", "B", "/", "a", "/", "z", "v2", "a",
						   "v2", "b"};

		expect_order(db, want, 5);
	}
	/* every field comes back */
	CU_ASSERT_EQUAL(tq_policy_at(db, 3, &pi), 0);
	CU_ASSERT_STRING_EQUAL(pi.pattern, "^a");
	CU_ASSERT_EQUAL(pi.apply_to, TQ_POLICY_USERS);
	CU_ASSERT_EQUAL(pi.priority, -3);
	CU_ASSERT_EQUAL(pi.def->set, TQ_POL_PRIORITY_CLASS);
	CU_ASSERT_EQUAL(pi.def->priority_class, TQ_CLASS_BULK);

	/* replace: same (vhost, name), everything new, count unchanged */
	CU_ASSERT_EQUAL(pset(db, "v2", "a", "^new", TQ_POLICY_QUEUES, 9,
			     "{\"max-length-bytes\":100}"), 0);
	CU_ASSERT_EQUAL(tq_policy_count(db), 5);
	CU_ASSERT_EQUAL(tq_policy_at(db, 3, &pi), 0);
	CU_ASSERT_STRING_EQUAL(pi.name, "a");
	CU_ASSERT_STRING_EQUAL(pi.pattern, "^new");
	CU_ASSERT_EQUAL(pi.apply_to, TQ_POLICY_QUEUES);
	CU_ASSERT_EQUAL(pi.priority, 9);
	CU_ASSERT_EQUAL(pi.def->set, TQ_POL_MAX_LENGTH_BYTES);
	CU_ASSERT_EQUAL(pi.def->max_length_bytes, 100);
	/* a refused replacement keeps the old policy */
	CU_ASSERT_EQUAL(pset(db, "v2", "a", "(", TQ_POLICY_QUEUES, 1, "{\"max-length\":1}"),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_policy_at(db, 3, &pi), 0);
	CU_ASSERT_STRING_EQUAL(pi.pattern, "^new");

	/* the db holds its own copy: fields the caller did not set do not leak in */
	memset(&d, 0x41, sizeof(d));
	d.set = TQ_POL_MAX_LENGTH;
	d.max_length = 4;
	CU_ASSERT_EQUAL(tq_policy_set(db, "/", "copy", ".", TQ_POLICY_QUEUES, 0, &d, err,
				      sizeof(err)), 0);
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(tq_policy_at(db, 2, &pi), 0);
	CU_ASSERT_STRING_EQUAL(pi.name, "copy");
	CU_ASSERT_EQUAL(pi.def->max_length, 4);
	CU_ASSERT_EQUAL(pi.def->expires, 0);
	CU_ASSERT_STRING_EQUAL(pi.def->dlx, "");
	CU_ASSERT_EQUAL(tq_policy_clear(db, "/", "copy"), 0);

	/* clear */
	CU_ASSERT_EQUAL(tq_policy_clear(db, "/", "a"), 0);
	CU_ASSERT_EQUAL(tq_policy_clear(db, "/", "a"), -ENOENT);
	CU_ASSERT_EQUAL(tq_policy_clear(db, "v3", "b"), -ENOENT);
	CU_ASSERT_EQUAL(tq_policy_clear(db, "v2", "z"), -ENOENT); /* z lives in "/" */
	CU_ASSERT_EQUAL(tq_policy_clear(db, "/", "b"), -ENOENT);  /* names are case-sensitive */
	{
		static const char *const want[] = {"/", "B", "/", "z", "v2", "a", "v2", "b"};

		expect_order(db, want, 4);
	}
	/* forget a vhost: only its policies go */
	tq_policy_forget_vhost(db, "v3");
	CU_ASSERT_EQUAL(tq_policy_count(db), 4);
	tq_policy_forget_vhost(db, "v2");
	{
		static const char *const want[] = {"/", "B", "/", "z"};

		expect_order(db, want, 2);
	}
	/* set after forget, in the middle of the order */
	CU_ASSERT_EQUAL(pset(db, "/", "M", "m", TQ_POLICY_QUEUES, 0, "{\"expires\":5}"), 0);
	{
		static const char *const want[] = {"/", "B", "/", "M", "/", "z"};

		expect_order(db, want, 3);
	}
	tq_policy_forget_vhost(db, "/");
	CU_ASSERT_EQUAL(tq_policy_count(db), 0);
	CU_ASSERT_EQUAL(tq_policy_clear(db, "/", "B"), -ENOENT);
	CU_ASSERT_EQUAL(tq_policy_count(NULL), 0);
	CU_ASSERT_EQUAL(tq_policy_at(NULL, 0, &pi), -EINVAL);
	tq_policy_db_free(db);
	tq_policy_db_free(NULL);
}

static void
test_db_many(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct tq_policy_info prev, pi;
	char name[16];

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	/* enough to grow the array a few times, inserted out of order */
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "p%03d", (i * 37) % 100);
		CU_ASSERT_EQUAL(pset(db, i % 2 ? "odd" : "even", name, ".", TQ_POLICY_QUEUES, i,
				     "{\"max-length\":1}"), 0);
	}
	CU_ASSERT_EQUAL(tq_policy_count(db), 100);
	CU_ASSERT_EQUAL(tq_policy_at(db, 0, &prev), 0);
	for (size_t i = 1; i < 100; i++) {
		int c;

		CU_ASSERT_EQUAL_FATAL(tq_policy_at(db, i, &pi), 0);
		c = strcmp(prev.vhost, pi.vhost);
		CU_ASSERT(c < 0 || (c == 0 && strcmp(prev.name, pi.name) < 0));
		prev = pi;
	}
	tq_policy_forget_vhost(db, "even");
	CU_ASSERT_EQUAL(tq_policy_count(db), 50);
	tq_policy_db_free(db);
}

/* ---- matching ------------------------------------------------------------------------ */

/* The name of the policy that applies, "" for none. */
static const char *
who(const struct tq_policies *p, const char *vhost, enum tq_policy_apply kind, const char *n)
{
	const char *name = "unset";
	const struct tq_policy_def *d = tq_policies_match(p, vhost, kind, n, strlen(n), &name);

	if (!d)
		return "";
	return name;
}

static void
test_match_priority(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct tq_policies *p;
	const struct tq_policy_def *d;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(pset(db, "/", "low", ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "orders", "^orders\\.", TQ_POLICY_QUEUES, 5,
			     "{\"max-length\":2}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "neg", "tmp", TQ_POLICY_QUEUES, -1, "{\"max-length\":3}"),
			0);
	CU_ASSERT_EQUAL(pset(db, "/", "exact", "^a$", TQ_POLICY_QUEUES, 10,
			     "{\"max-length\":4}"), 0);
	p = tq_policies_build(db, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);

	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "orders.new"), "orders");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "x.orders.new"), "low");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "ordersXnew"), "low");
	/* negative priority loses to 0 even where it matches */
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "tmp.1"), "low");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "a"), "exact");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "ab"), "low");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, ""), "low");
	d = tq_policies_match(p, "/", TQ_POLICY_QUEUES, "orders.x", 8, NULL); /* no name_out */
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->max_length, 2);
	/* @len bounds the name: "a" out of "abc" is "a" */
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "a") , "exact");
	{
		const char *nm = NULL;

		d = tq_policies_match(p, "/", TQ_POLICY_QUEUES, "abc", 1, &nm);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		CU_ASSERT_STRING_EQUAL(nm, "exact");
		CU_ASSERT_EQUAL(d->max_length, 4);
		/* and nothing past @len is read: a name that is not NUL-terminated */
		{
			char *g = (char *)tq_test_guarded("orders.zz", 9);

			d = tq_policies_match(p, "/", TQ_POLICY_QUEUES, g, 9, &nm);
			CU_ASSERT_PTR_NOT_NULL(d);
			CU_ASSERT_STRING_EQUAL(nm, "orders");
			tq_test_guard_free((uint8_t *)g, 9);
		}
	}
	tq_policies_free(p);

	/* without the catch-all, a name nothing matches gets no policy */
	CU_ASSERT_EQUAL(tq_policy_clear(db, "/", "low"), 0);
	p = tq_policies_build(db, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "other"), "");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "tmp.1"), "neg");
	/* unanchored: the pattern is searched anywhere in the name, like RabbitMQ's */
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "my-tmp-queue"), "neg");
	tq_policies_free(p);
	tq_policy_db_free(db);
}

static void
test_match_ties(void)
{
	static const char *const names[] = {"b", "a", "c", "B", "aa"};
	struct tq_policies *p;

	/* same priority, all matching: the name first in byte order wins ("B" < "a"), in
	 * whatever order they were set */
	for (int rot = 0; rot < 5; rot++) {
		struct tq_policy_db *db = tq_policy_db_new();

		CU_ASSERT_PTR_NOT_NULL_FATAL(db);
		for (int i = 0; i < 5; i++)
			CU_ASSERT_EQUAL(pset(db, "/", names[(i + rot) % 5], "q", TQ_POLICY_QUEUES,
					     7, "{\"max-length\":1}"), 0);
		/* a higher priority that does not match changes nothing */
		CU_ASSERT_EQUAL(pset(db, "/", "A", "^zzz$", TQ_POLICY_QUEUES, 8,
				     "{\"max-length\":1}"), 0);
		p = tq_policies_build(db, 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "q1"), "B");
		tq_policies_free(p);
		CU_ASSERT_EQUAL(tq_policy_clear(db, "/", "B"), 0);
		p = tq_policies_build(db, 2);
		CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "q1"), "a");
		tq_policies_free(p);
		CU_ASSERT_EQUAL(tq_policy_clear(db, "/", "a"), 0);
		p = tq_policies_build(db, 3);
		CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "q1"), "aa");
		tq_policies_free(p);
		tq_policy_db_free(db);
	}
}

static void
test_match_vhosts(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct tq_policies *p;
	const struct tq_policy_def *d;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(pset(db, "/", "p", ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"), 0);
	CU_ASSERT_EQUAL(pset(db, "v2", "p", ".*", TQ_POLICY_QUEUES, 0, "{\"max-length\":2}"), 0);
	/* a higher priority in another vhost does not reach "/" */
	CU_ASSERT_EQUAL(pset(db, "v2", "hi", ".*", TQ_POLICY_QUEUES, 9, "{\"max-length\":3}"),
			0);
	p = tq_policies_build(db, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	d = tq_policies_match(p, "/", TQ_POLICY_QUEUES, "q", 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->max_length, 1);
	d = tq_policies_match(p, "v2", TQ_POLICY_QUEUES, "q", 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->max_length, 3);
	CU_ASSERT_STRING_EQUAL(who(p, "v3", TQ_POLICY_QUEUES, "q"), "");
	CU_ASSERT_STRING_EQUAL(who(p, "V2", TQ_POLICY_QUEUES, "q"), "");
	CU_ASSERT_PTR_NULL(tq_policies_match(p, NULL, TQ_POLICY_QUEUES, "q", 1, NULL));
	tq_policies_free(p);
	tq_policy_db_free(db);
}

static void
test_match_kinds(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct tq_policies *p;
	char *longname;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(pset(db, "/", "q", "^q", TQ_POLICY_QUEUES, 0, "{\"max-length\":1}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "x", "^x", TQ_POLICY_EXCHANGES, 0,
			     "{\"alternate-exchange\":\"ae\"}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "all", "^[qxu]", TQ_POLICY_ALL, -1,
			     "{\"expires\":1000}"), 0);
	CU_ASSERT_EQUAL(pset(db, "v2", "u", "^u", TQ_POLICY_USERS, 0,
			     "{\"priority-class\":\"critical\"}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "u-bulk", "^bulk", TQ_POLICY_USERS, 0,
			     "{\"priority-class\":\"bulk\"}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "tail", "y$", TQ_POLICY_USERS, 5,
			     "{\"priority-class\":\"normal\"}"), 0);
	p = tq_policies_build(db, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_FALSE(tq_policies_has(p, TQ_POLICY_TOPICS)); /* none yet */
	CU_ASSERT_TRUE(tq_policies_has(p, TQ_POLICY_USERS));
	CU_ASSERT_FALSE(tq_policies_has(NULL, TQ_POLICY_QUEUES));
	tq_policies_free(p);
	CU_ASSERT_EQUAL(pset(db, "/", "t", "^sensors/", TQ_POLICY_TOPICS, 0,
			     "{\"message-ttl\":1500}"), 0);
	CU_ASSERT_EQUAL(pset(db, "v2", "t2", "^q", TQ_POLICY_TOPICS, 0,
			     "{\"message-ttl\":1}"), 0);
	p = tq_policies_build(db, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_TRUE(tq_policies_has(p, TQ_POLICY_TOPICS));
	/* topics: only topics policies of the vhost given; they match no queue or user */
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_TOPICS, "sensors/a/b"), "t");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_TOPICS, "q1"), ""); /* t2 is v2's */
	CU_ASSERT_STRING_EQUAL(who(p, "v2", TQ_POLICY_TOPICS, "q1"), "t2");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_TOPICS, "x/sensors/"), "");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "sensors/a"), "");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_USERS, "sensors/a"), "");
	{
		const struct tq_policy_def *d =
			tq_policies_match(p, "/", TQ_POLICY_TOPICS, "sensors/t", 9, NULL);

		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		CU_ASSERT_EQUAL(d->set, TQ_POL_MESSAGE_TTL);
		CU_ASSERT_EQUAL(d->message_ttl, 1500);
	}

	/* queues: the queue policy, else the "all" one; never an exchange or user policy */
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "q1"), "q");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "x1"), "all");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "u1"), "all");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "bulk1"), "");
	/* exchanges: the mirror image */
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_EXCHANGES, "x1"), "x");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_EXCHANGES, "q1"), "all");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_EXCHANGES, "bulk1"), "");
	/* users: only users policies, from any vhost, whatever vhost is given */
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_USERS, "u1"), "u");
	CU_ASSERT_STRING_EQUAL(who(p, "nowhere", TQ_POLICY_USERS, "bulk-loader"), "u-bulk");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_USERS, "q1"), "");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_USERS, "x1"), "");
	{
		const struct tq_policy_def *d =
			tq_policies_match(p, NULL, TQ_POLICY_USERS, "u1", 2, NULL);

		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		CU_ASSERT_EQUAL(d->priority_class, TQ_CLASS_CRITICAL);
	}
	/* a user name longer than the matcher's stack copy is matched in place */
	longname = malloc(5001);
	CU_ASSERT_PTR_NOT_NULL_FATAL(longname);
	memset(longname, 'z', 5000);
	memcpy(longname, "bulk", 4);
	longname[4999] = 'y';
	longname[5000] = '\0';
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_USERS, longname), "tail");
	{
		const char *nm = NULL;

		/* @len still bounds it: without the final y, "tail" does not match */
		CU_ASSERT_PTR_NOT_NULL(tq_policies_match(p, "/", TQ_POLICY_USERS, longname, 4999,
							 &nm));
		CU_ASSERT_STRING_EQUAL(nm, "u-bulk");
		/* and neither "^u" nor "^bulk" past the start: only z's are left */
		CU_ASSERT_PTR_NULL(tq_policies_match(p, "/", TQ_POLICY_USERS, longname + 4,
						     4995, NULL));
	}
	free(longname);
	/* "all" is not a kind of object */
	CU_ASSERT_PTR_NULL(tq_policies_match(p, "/", TQ_POLICY_ALL, "q1", 2, NULL));
	CU_ASSERT_PTR_NULL(tq_policies_match(p, "/", (enum tq_policy_apply)0, "q1", 2, NULL));
	tq_policies_free(p);
	tq_policy_db_free(db);
}

static void
test_match_patterns(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct tq_policies *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	/* ERE: alternation, classes, intervals; the empty pattern matches everything */
	CU_ASSERT_EQUAL(pset(db, "/", "alt", "^(amq|sys)\\.", TQ_POLICY_QUEUES, 4,
			     "{\"max-length\":1}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "cls", "^[0-9]{3}$", TQ_POLICY_QUEUES, 3,
			     "{\"max-length\":1}"), 0);
	CU_ASSERT_EQUAL(pset(db, "/", "dot", "a.c", TQ_POLICY_QUEUES, 2, "{\"max-length\":1}"),
			0);
	CU_ASSERT_EQUAL(pset(db, "/", "empty", "", TQ_POLICY_QUEUES, 1, "{\"max-length\":1}"),
			0);
	p = tq_policies_build(db, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "amq.gen-1"), "alt");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "sys.x"), "alt");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "xamq.gen"), "empty");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "123"), "cls");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "1234"), "empty");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "xxabcxx"), "dot");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "a.c"), "dot");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "ac"), "empty");
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, ""), "empty");
	/* case matters */
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "AMQ.x"), "empty");
	tq_policies_free(p);
	tq_policy_db_free(db);
}

/* ---- merge --------------------------------------------------------------------------- */

static void
test_effective_min_keys(void)
{
	static const char *const keys[] = {"message-ttl", "expires", "max-length",
					   "max-length-bytes", "delivery-limit"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *k = keys[i];
		struct tq_policy_def a, p, out;
		uint32_t bit;

		memset(&a, 0, sizeof(a));
		memset(&p, 0, sizeof(p));
		CU_ASSERT_EQUAL(dset(&a, k, "100"), 0);
		CU_ASSERT_EQUAL(dset(&p, k, "50"), 0);
		bit = a.set;
		/* both set: the smaller, whichever side it is on */
		tq_policy_effective(&a, &p, &out);
		CU_ASSERT_EQUAL(out.set, bit);
		CU_ASSERT_EQUAL(int_field(&out, bit), 50);
		tq_policy_effective(&p, &a, &out);
		CU_ASSERT_EQUAL(int_field(&out, bit), 50);
		/* one side only */
		tq_policy_effective(&a, NULL, &out);
		CU_ASSERT_EQUAL(out.set, bit);
		CU_ASSERT_EQUAL(int_field(&out, bit), 100);
		memset(&out, 0x55, sizeof(out));
		tq_policy_effective(NULL, &p, &out);
		CU_ASSERT_EQUAL(out.set, bit);
		CU_ASSERT_EQUAL(int_field(&out, bit), 50);
		/* 0 is a value, not "unset": a message-ttl of 0 wins against 50 */
		if (strcmp(k, "expires")) {
			CU_ASSERT_EQUAL(dset(&a, k, "0"), 0);
			tq_policy_effective(&a, &p, &out);
			CU_ASSERT_EQUAL(int_field(&out, bit), 0);
		}
	}
}

static void
test_effective_arg_keys(void)
{
	static const struct {
		const char *key, *arg, *pol;
	} cases[] = {
		{"overflow", "\"reject-publish\"", "\"drop-head\""},
		{"overflow", "\"drop-head\"", "\"reject-publish-dlx\""},
		{"dead-letter-exchange", "\"arg-dlx\"", "\"pol-dlx\""},
		{"dead-letter-exchange", "\"\"", "\"pol-dlx\""}, /* "" is a value */
		{"dead-letter-routing-key", "\"arg-rk\"", "\"pol-rk\""},
		{"max-priority", "10", "5"},   /* the argument wins even when larger */
		{"max-priority", "2", "200"},
		{"alternate-exchange", "\"arg-ae\"", "\"pol-ae\""},
		{"priority-class", "\"bulk\"", "\"critical\""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tq_policy_def a, p, want_a, want_p, out;
		char ja[600], jo[600];

		memset(&a, 0, sizeof(a));
		memset(&p, 0, sizeof(p));
		CU_ASSERT_EQUAL(dset(&a, cases[i].key, cases[i].arg), 0);
		CU_ASSERT_EQUAL(dset(&p, cases[i].key, cases[i].pol), 0);
		want_a = a;
		want_p = p;
		tq_policy_effective(&a, &p, &out);
		CU_ASSERT_EQUAL(tq_policy_def_json(&out, jo, sizeof(jo)) > 0, 1);
		CU_ASSERT_EQUAL(tq_policy_def_json(&want_a, ja, sizeof(ja)) > 0, 1);
		CU_ASSERT_STRING_EQUAL(jo, ja);
		/* only the policy has it: the policy's */
		tq_policy_effective(NULL, &p, &out);
		tq_policy_def_json(&out, jo, sizeof(jo));
		tq_policy_def_json(&want_p, ja, sizeof(ja));
		CU_ASSERT_STRING_EQUAL(jo, ja);
		/* an argument set for another key leaves this one to the policy */
		memset(&a, 0, sizeof(a));
		CU_ASSERT_EQUAL(dset(&a, "max-length", "5"), 0);
		tq_policy_effective(&a, &p, &out);
		CU_ASSERT_EQUAL(out.set, TQ_POL_MAX_LENGTH | want_p.set);
		CU_ASSERT_EQUAL(out.max_length, 5);
	}
}

static void
test_effective_whole(void)
{
	struct tq_policy_def a, p, out;

	a = D("{\"message-ttl\":1000,\"max-length\":10,\"dead-letter-exchange\":\"a-dlx\","
	      "\"max-priority\":4}");
	p = D("{\"message-ttl\":500,\"max-length\":20,\"dead-letter-exchange\":\"p-dlx\","
	      "\"dead-letter-routing-key\":\"p-rk\",\"overflow\":\"reject-publish\","
	      "\"expires\":60000,\"delivery-limit\":3,\"max-priority\":9}");
	tq_policy_effective(&a, &p, &out);
	CU_ASSERT_EQUAL(out.set, a.set | p.set);
	CU_ASSERT_EQUAL(out.message_ttl, 500);
	CU_ASSERT_EQUAL(out.max_length, 10);
	CU_ASSERT_STRING_EQUAL(out.dlx, "a-dlx");
	CU_ASSERT_STRING_EQUAL(out.dlrk, "p-rk");
	CU_ASSERT_EQUAL(out.overflow, TQ_OVERFLOW_REJECT_PUBLISH);
	CU_ASSERT_EQUAL(out.expires, 60000);
	CU_ASSERT_EQUAL(out.delivery_limit, 3);
	CU_ASSERT_EQUAL(out.max_priority, 4);
	CU_ASSERT_FALSE(out.set & TQ_POL_MAX_LENGTH_BYTES);
	/* @out may be @args */
	tq_policy_effective(&a, &p, &a);
	CU_ASSERT_EQUAL(a.set, out.set);
	CU_ASSERT_EQUAL(a.message_ttl, 500);
	CU_ASSERT_STRING_EQUAL(a.dlrk, "p-rk");
	/* nothing on either side: nothing */
	memset(&out, 0x77, sizeof(out));
	tq_policy_effective(NULL, NULL, &out);
	CU_ASSERT_EQUAL(out.set, 0);
	CU_ASSERT_STRING_EQUAL(out.dlx, "");
}

/* ---- snapshots ----------------------------------------------------------------------- */

static void
test_snapshot(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct tq_policies *p, *q;
	const struct tq_policy_def *d;
	const char *nm = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	/* an empty db makes an empty snapshot */
	p = tq_policies_build(db, 41);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(tq_policies_gen(p), 41);
	CU_ASSERT_STRING_EQUAL(who(p, "/", TQ_POLICY_QUEUES, "q"), "");
	tq_policies_free(p);
	/* no snapshot at all: nothing applies */
	CU_ASSERT_PTR_NULL(tq_policies_match(NULL, "/", TQ_POLICY_QUEUES, "q", 1, NULL));
	CU_ASSERT_EQUAL(tq_policies_gen(NULL), 0);
	tq_policies_free(NULL);

	CU_ASSERT_EQUAL(pset(db, "/", "p", "^q", TQ_POLICY_QUEUES, 0,
			     "{\"max-length\":1,\"dead-letter-exchange\":\"d1\"}"), 0);
	p = tq_policies_build(db, 42);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(tq_policies_gen(p), 42);
	/* the snapshot is a copy: later changes to the db do not show through */
	CU_ASSERT_EQUAL(pset(db, "/", "p", "^x", TQ_POLICY_QUEUES, 0,
			     "{\"max-length\":2,\"dead-letter-exchange\":\"d2\"}"), 0);
	q = tq_policies_build(db, 43);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	tq_policy_db_free(db); /* and it outlives the db */
	d = tq_policies_match(p, "/", TQ_POLICY_QUEUES, "q1", 2, &nm);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->max_length, 1);
	CU_ASSERT_STRING_EQUAL(d->dlx, "d1");
	CU_ASSERT_STRING_EQUAL(nm, "p");
	CU_ASSERT_PTR_NULL(tq_policies_match(p, "/", TQ_POLICY_QUEUES, "x1", 2, NULL));
	d = tq_policies_match(q, "/", TQ_POLICY_QUEUES, "x1", 2, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->max_length, 2);
	CU_ASSERT_PTR_NULL(tq_policies_match(q, "/", TQ_POLICY_QUEUES, "q1", 2, NULL));

	/* publish: the pointer moves, the old one is freed (ASan would see a leak or a use) */
	CU_ASSERT_PTR_NULL(tq_policies_cur);
	tq_policies_publish(p);
	CU_ASSERT_PTR_EQUAL(tq_policies_cur, p);
	tq_policies_publish(p); /* publishing the current one again is a no-op */
	CU_ASSERT_PTR_EQUAL(tq_policies_cur, p);
	CU_ASSERT_EQUAL(tq_policies_gen(tq_policies_cur), 42);
	tq_policies_publish(q);
	CU_ASSERT_PTR_EQUAL(tq_policies_cur, q);
	CU_ASSERT_EQUAL(tq_policies_gen(tq_policies_cur), 43);
	tq_policies_publish(NULL);
	CU_ASSERT_PTR_NULL(tq_policies_cur);
}

/* ---- a reader while the control thread publishes ------------------------------------- */

#define RACE_GENS 300

struct race_reader {
	uint64_t matches, bad, last_gen, gens_seen;
	int stop;
};

static void *
race_read(void *arg)
{
	struct race_reader *r = arg;
	uint64_t prev = 0;

	urcu_qsbr_register_thread();
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		const struct tq_policies *p = rcu_dereference(tq_policies_cur);

		if (p) {
			const char *nm = NULL;
			const struct tq_policy_def *d =
				tq_policies_match(p, "/", TQ_POLICY_QUEUES, "work.1", 6, &nm);
			uint64_t g = tq_policies_gen(p);
			char want[32];

			snprintf(want, sizeof(want), "g%llu", (unsigned long long)g);
			/* snapshot g has "gen" with max-length g and dead-letter-exchange "g<g>",
			 * and a loser of lower priority */
			if (!d || d->max_length != g || strcmp(d->dlx, want) || !nm ||
			    strcmp(nm, "gen") || g < prev)
				r->bad++;
			if (g != prev)
				r->gens_seen++;
			prev = g;
			__atomic_store_n(&r->last_gen, g, __ATOMIC_RELEASE);
			r->matches++;
		}
		urcu_qsbr_quiescent_state();
	}
	urcu_qsbr_unregister_thread();
	return NULL;
}

static void
test_concurrent(void)
{
	struct tq_policy_db *db = tq_policy_db_new();
	struct race_reader rd = {0};
	pthread_t th;
	char json[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, race_read, &rd), 0);
	for (uint64_t g = 1; g <= RACE_GENS; g++) {
		struct tq_policies *p;

		snprintf(json, sizeof(json),
			 "{\"max-length\":%llu,\"dead-letter-exchange\":\"g%llu\"}",
			 (unsigned long long)g, (unsigned long long)g);
		CU_ASSERT_EQUAL(pset(db, "/", "gen", "^work\\.", TQ_POLICY_QUEUES, 1, json), 0);
		snprintf(json, sizeof(json), "{\"max-length\":%llu}", (unsigned long long)g + 7);
		CU_ASSERT_EQUAL(pset(db, "/", g % 2 ? "loser-a" : "loser-b", "work",
				     TQ_POLICY_QUEUES, 0, json), 0);
		p = tq_policies_build(db, g);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		tq_policies_publish(p);
	}
	/* the reader sees the last snapshot (bounded wait: 10 s) */
	for (int i = 0; i < 10000 && __atomic_load_n(&rd.last_gen, __ATOMIC_ACQUIRE) != RACE_GENS;
	     i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	__atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
	CU_ASSERT_EQUAL(pthread_join(th, NULL), 0);
	CU_ASSERT_EQUAL(rd.last_gen, RACE_GENS);
	CU_ASSERT(rd.matches > 0);
	CU_ASSERT(rd.gens_seen >= 1);
	CU_ASSERT_EQUAL(rd.bad, 0);
	printf("\n    reader: %llu matches over %llu generations\n",
	       (unsigned long long)rd.matches, (unsigned long long)rd.gens_seen);
	tq_policies_publish(NULL);
	tq_policy_db_free(db);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_def_integers),
		TQ_TEST(test_def_integer_edges),
		TQ_TEST(test_def_strings),
		TQ_TEST(test_def_enums),
		TQ_TEST(test_def_unknown_keys),
		TQ_TEST(test_def_parse),
		TQ_TEST(test_def_json),
		TQ_TEST(test_def_round_trip),
		TQ_TEST(test_apply_names),
		TQ_TEST(test_apply_vs_keys),
		TQ_TEST(test_set_validation),
		TQ_TEST(test_db),
		TQ_TEST(test_db_many),
		TQ_TEST(test_match_priority),
		TQ_TEST(test_match_ties),
		TQ_TEST(test_match_vhosts),
		TQ_TEST(test_match_kinds),
		TQ_TEST(test_match_patterns),
		TQ_TEST(test_effective_min_keys),
		TQ_TEST(test_effective_arg_keys),
		TQ_TEST(test_effective_whole),
		TQ_TEST(test_snapshot),
		TQ_TEST(test_concurrent),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("policy", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
