/*
 * libFuzzer driver for the policy definition scanner and formatter of tq_policy.h.
 *
 * The first byte picks the mode (even: parse, odd: set); the rest is:
 *   parse: one JSON definition object for tq_policy_def_parse (an exact-size heap copy, no
 *          terminating NUL, so ASan sees an over-read);
 *   set:   key 0x00 value 0x00 key 0x00 value ... for tq_policy_def_set, the pairs going in
 *          turn to two definitions (a queue's arguments and a policy's).
 *
 * Checked, from the header: an error is -EINVAL with a message in @err, and leaves a parse's
 * @def untouched; every definition that parses or sets is written by tq_policy_def_json
 * (-ENOSPC in a buffer one byte short, into an exact-size buffer) and that text parses back
 * to the same definition and formats to the same text. In set mode, the object made of the
 * pairs that were accepted (the last value of each key) parses to the same definition
 * ("each member as tq_policy_def_set does"), and tq_policy_effective merges the two as the
 * header says. Any violation abort()s.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/tq_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond))                                                                   \
			abort();                                                               \
	} while (0)

#define ERR_LEN 200
#define JSON_MAX 8192 /* 3 strings of 255 bytes, each byte at most 6 when escaped, and numbers */
#define NPAIRS_MAX 64

/* The keys, their bits, and whether tq_policy_effective takes the smaller of two. */
struct key_info {
	const char *name;
	uint32_t bit;
	bool merge_min;
};

static const struct key_info keys[] = {
	{"message-ttl", TQ_POL_MESSAGE_TTL, true},
	{"expires", TQ_POL_EXPIRES, true},
	{"max-length", TQ_POL_MAX_LENGTH, true},
	{"max-length-bytes", TQ_POL_MAX_LENGTH_BYTES, true},
	{"overflow", TQ_POL_OVERFLOW, false},
	{"dead-letter-exchange", TQ_POL_DLX, false},
	{"dead-letter-routing-key", TQ_POL_DLRK, false},
	{"max-priority", TQ_POL_MAX_PRIORITY, false},
	{"delivery-limit", TQ_POL_DELIVERY_LIMIT, true},
	{"alternate-exchange", TQ_POL_ALTERNATE_EXCHANGE, false},
	{"priority-class", TQ_POL_PRIORITY_CLASS, false},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
#define ALL_BITS ((TQ_POL_PRIORITY_CLASS << 1) - 1)

static const struct key_info *
key_info(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* Key @bit of @d as a number (a string field: 0, compared apart). */
static uint64_t
num_of(const struct tq_policy_def *d, uint32_t bit)
{
	switch (bit) {
	case TQ_POL_MESSAGE_TTL: return d->message_ttl;
	case TQ_POL_EXPIRES: return d->expires;
	case TQ_POL_MAX_LENGTH: return d->max_length;
	case TQ_POL_MAX_LENGTH_BYTES: return d->max_length_bytes;
	case TQ_POL_DELIVERY_LIMIT: return d->delivery_limit;
	case TQ_POL_OVERFLOW: return d->overflow;
	case TQ_POL_MAX_PRIORITY: return d->max_priority;
	case TQ_POL_PRIORITY_CLASS: return d->priority_class;
	default: return 0;
	}
}

static const char *
str_of(const struct tq_policy_def *d, uint32_t bit)
{
	switch (bit) {
	case TQ_POL_DLX: return d->dlx;
	case TQ_POL_DLRK: return d->dlrk;
	case TQ_POL_ALTERNATE_EXCHANGE: return d->alternate_exchange;
	default: return "";
	}
}

/* Key @bit of @x equals key @bit of @y (both set). */
static bool
key_eq(const struct tq_policy_def *x, const struct tq_policy_def *y, uint32_t bit)
{
	const char *a = str_of(x, bit), *b = str_of(y, bit);

	return num_of(x, bit) == num_of(y, bit) &&
	       !strncmp(a, b, TQ_POLICY_STR_MAX + 1);
}

/* The same keys set to the same values (what is past a string's NUL does not count). */
static bool
def_eq(const struct tq_policy_def *x, const struct tq_policy_def *y)
{
	if (x->set != y->set)
		return false;
	for (size_t i = 0; i < NKEYS; i++)
		if ((x->set & keys[i].bit) && !key_eq(x, y, keys[i].bit))
			return false;
	return true;
}

/* An error as the header has it: -EINVAL and a message. */
static void
check_error(int rc, const char *err)
{
	CHECK(rc == -EINVAL);
	CHECK(err[0] != '\0' && memchr(err, '\0', ERR_LEN));
}

/*
 * tq_policy_def_parse on an exact-size copy of @text; on error @def must be untouched.
 * Returns its result.
 */
static int
parse_copy(struct tq_policy_def *def, const char *text, size_t len)
{
	char *p = malloc(len ? len : 1), *err = malloc(ERR_LEN);
	struct tq_policy_def before = *def;
	int rc;

	CHECK(p && err);
	memcpy(p, text, len);
	err[0] = '\0';
	rc = tq_policy_def_parse(def, p, len, err, ERR_LEN);
	if (rc) {
		check_error(rc, err);
		CHECK(!memcmp(&before, def, sizeof(before)));
	} else {
		CHECK((def->set & ~(uint32_t)ALL_BITS) == 0);
	}
	free(p);
	free(err);
	return rc;
}

/* @def, accepted by the module, formats, parses back and formats the same. */
static void
check_round_trip(const struct tq_policy_def *def)
{
	char *text = malloc(JSON_MAX), *again = malloc(JSON_MAX), *exact;
	struct tq_policy_def back;
	int n;

	CHECK(text && again);
	n = tq_policy_def_json(def, text, JSON_MAX);
	CHECK(n >= 2 && n < JSON_MAX && (size_t)n == strlen(text));
	CHECK(text[0] == '{' && text[n - 1] == '}');

	/* the length it reports is the one it needs: one byte less is -ENOSPC */
	exact = malloc((size_t)n + 1);
	CHECK(exact);
	CHECK(tq_policy_def_json(def, exact, (size_t)n + 1) == n && !strcmp(exact, text));
	CHECK(tq_policy_def_json(def, exact, (size_t)n) == -ENOSPC);
	CHECK(tq_policy_def_json(def, exact, 1) == -ENOSPC);
	free(exact);

	memset(&back, 0xa5, sizeof(back));
	CHECK(parse_copy(&back, text, (size_t)n) == 0);
	CHECK(def_eq(def, &back));
	CHECK(tq_policy_def_json(&back, again, JSON_MAX) == n && !strcmp(text, again));
	free(text);
	free(again);
}

/* tq_policy_effective(@args, @pol) against the header's rule, NULLs included. */
static void
check_effective(const struct tq_policy_def *args, const struct tq_policy_def *pol)
{
	struct tq_policy_def out, only;

	tq_policy_effective(args, pol, &out);
	CHECK(out.set == (args->set | pol->set));
	for (size_t i = 0; i < NKEYS; i++) {
		uint32_t bit = keys[i].bit;
		bool a = args->set & bit, p = pol->set & bit;

		if (a && p && keys[i].merge_min) {
			uint64_t av = num_of(args, bit), pv = num_of(pol, bit);

			CHECK(num_of(&out, bit) == (av < pv ? av : pv));
		} else if (a) {
			CHECK(key_eq(&out, args, bit));
		} else if (p) {
			CHECK(key_eq(&out, pol, bit));
		}
	}
	tq_policy_effective(args, NULL, &only);
	CHECK(def_eq(&only, args));
	tq_policy_effective(NULL, pol, &only);
	CHECK(def_eq(&only, pol));
}

static void
run_parse(const uint8_t *data, size_t size)
{
	struct tq_policy_def def;

	memset(&def, 0x5a, sizeof(def));
	if (parse_copy(&def, (const char *)data, size) == 0)
		check_round_trip(&def);
}

/* The accepted value of each key, in the order the keys were first accepted. */
struct accepted {
	const char *value[NKEYS];
	size_t order[NKEYS], n;
};

static void
accepted_put(struct accepted *acc, const struct key_info *k, const char *value)
{
	size_t i = (size_t)(k - keys);

	if (!acc->value[i])
		acc->order[acc->n++] = i;
	acc->value[i] = value;
}

/* {"key":value,...} of @acc, parsed: the same definition as @def. */
static void
check_accepted(const struct accepted *acc, const struct tq_policy_def *def)
{
	size_t cap = 2, len = 0;
	struct tq_policy_def parsed;
	char *text;

	for (size_t j = 0; j < acc->n; j++)
		cap += strlen(keys[acc->order[j]].name) + strlen(acc->value[acc->order[j]]) + 4;
	text = malloc(cap);
	CHECK(text);
	text[len++] = '{';
	for (size_t j = 0; j < acc->n; j++) {
		size_t i = acc->order[j];

		len += (size_t)sprintf(text + len, "%s\"%s\":%s", j ? "," : "", keys[i].name,
				       acc->value[i]);
	}
	text[len++] = '}';
	CHECK(len <= cap);
	memset(&parsed, 0, sizeof(parsed));
	CHECK(parse_copy(&parsed, text, len) == 0);
	CHECK(def_eq(&parsed, def));
	free(text);
}

static void
run_set(const uint8_t *data, size_t size)
{
	struct tq_policy_def def[2];
	struct accepted acc[2];
	char *copy = malloc(size + 2), *p, *end, *err = malloc(ERR_LEN);
	size_t npairs = 0;

	CHECK(copy && err);
	memcpy(copy, data, size);
	copy[size] = copy[size + 1] = '\0'; /* the last key and value end here at the latest */
	memset(def, 0, sizeof(def));
	memset(acc, 0, sizeof(acc));
	end = copy + size;
	for (p = copy; p < end && npairs < NPAIRS_MAX; npairs++) {
		struct tq_policy_def *d = &def[npairs % 2], tmp = *d;
		const char *key = p, *value = p + strlen(p) + 1;
		int rc;

		p = (char *)value + strlen(value) + 1;
		err[0] = '\0';
		rc = tq_policy_def_set(&tmp, key, value, err, ERR_LEN);
		if (rc) {
			check_error(rc, err);
			continue;
		}
		CHECK(key_info(key) && (tmp.set & key_info(key)->bit));
		CHECK(tmp.set == (d->set | key_info(key)->bit));
		*d = tmp;
		accepted_put(&acc[npairs % 2], key_info(key), value);
	}
	for (int i = 0; i < 2; i++) {
		check_accepted(&acc[i], &def[i]);
		check_round_trip(&def[i]);
	}
	check_effective(&def[0], &def[1]);
	check_effective(&def[1], &def[0]);
	free(copy);
	free(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		run_set(data + 1, size - 1);
	else
		run_parse(data + 1, size - 1);
	return 0;
}
