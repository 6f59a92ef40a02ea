/*
 * tq_retain: put / replace / delete with every value released exactly once (after a grace
 * period), matching by filter with '+' and '#', the '$' rule, the limit, and a reference
 * check of tq_trie_match_filter on random topics and filters.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "routing/tq_retain.h"
#include "routing/tq_trie.h"
#include "tq_test.h"

/* A value is an index into these counters: how often the store released it. */
#define NVALUES 4096
static unsigned int released[NVALUES];
static char value_base[NVALUES];

#define VAL(i) ((void *)&value_base[i])

static void
release(void *v)
{
	size_t i = (size_t)((char *)v - value_base);

	CU_ASSERT_FATAL(i < NVALUES);
	__atomic_add_fetch(&released[i], 1, __ATOMIC_RELAXED);
}

/* Wait until every retired value has been released (we go offline for the barrier). */
static void
flush(void)
{
	urcu_qsbr_thread_offline();
	urcu_qsbr_barrier();
	urcu_qsbr_thread_online();
}

static unsigned int
rel(size_t i)
{
	return __atomic_load_n(&released[i], __ATOMIC_RELAXED);
}

#define MAX_SEEN 1024

struct seen {
	unsigned int n;
	char topic[MAX_SEEN][40];
	void *value[MAX_SEEN];
};

static void
on_value(void *arg, const char *topic, size_t tlen, void *value)
{
	struct seen *s = arg;

	CU_ASSERT_FATAL(s->n < MAX_SEEN && tlen < 40);
	memcpy(s->topic[s->n], topic, tlen);
	s->topic[s->n][tlen] = '\0';
	s->value[s->n] = value;
	s->n++;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The sorted topics matching @filter, joined by spaces, into @out. */
static const char *
topics(const struct tq_retain *r, const char *filter, char *out, size_t cap)
{
	static struct seen s;
	size_t at = 0;

	s.n = 0;

	CU_ASSERT_EQUAL(tq_retain_match(r, filter, strlen(filter), on_value, &s), s.n);
	qsort(s.topic, s.n, sizeof(s.topic[0]), cmp_str);
	out[0] = '\0';
	for (unsigned int i = 0; i < s.n; i++)
		at += (size_t)snprintf(out + at, cap - at, "%s%s", i ? " " : "", s.topic[i]);
	return out;
}

static int
put(struct tq_retain *r, const char *topic, size_t v)
{
	return tq_retain_put(r, topic, strlen(topic), v == SIZE_MAX ? NULL : VAL(v));
}

static void
test_put_replace_delete_release(void)
{
	struct tq_retain *r = tq_retain_create(release);
	static struct seen s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	memset(released, 0, sizeof(released));
	CU_ASSERT_EQUAL(put(r, "a/b", 1), 0);
	CU_ASSERT_EQUAL(put(r, "a/c", 2), 0);
	CU_ASSERT_EQUAL(tq_retain_count(r), 2);
	CU_ASSERT_EQUAL(tq_retain_match(r, "a/b", 3, on_value, &s), 1);
	CU_ASSERT_PTR_EQUAL(s.value[0], VAL(1));
	CU_ASSERT_STRING_EQUAL(s.topic[0], "a/b");

	/* replace: the old value is released after a grace period, not before */
	CU_ASSERT_EQUAL(put(r, "a/b", 3), 0);
	CU_ASSERT_EQUAL(tq_retain_count(r), 2);
	CU_ASSERT_EQUAL(rel(1), 0); /* we are online, so no grace period has passed */
	s.n = 0;
	CU_ASSERT_EQUAL(tq_retain_match(r, "a/b", 3, on_value, &s), 1);
	CU_ASSERT_PTR_EQUAL(s.value[0], VAL(3));
	flush();
	CU_ASSERT_EQUAL(rel(1), 1);
	CU_ASSERT_EQUAL(rel(3), 0);

	/* the same value again is a replacement too: released once for the old slot */
	CU_ASSERT_EQUAL(put(r, "a/b", 3), 0);
	flush();
	CU_ASSERT_EQUAL(rel(3), 1);
	released[3] = 0;

	/* delete, delete again, delete what never was */
	CU_ASSERT_EQUAL(put(r, "a/c", SIZE_MAX), 0);
	CU_ASSERT_EQUAL(put(r, "a/c", SIZE_MAX), 0);
	CU_ASSERT_EQUAL(put(r, "x/y/z", SIZE_MAX), 0);
	CU_ASSERT_EQUAL(tq_retain_count(r), 1);
	flush();
	CU_ASSERT_EQUAL(rel(2), 1);

	/* not topic names */
	CU_ASSERT_EQUAL(put(r, "a/+", 4), -EINVAL);
	CU_ASSERT_EQUAL(put(r, "a/#", 4), -EINVAL);
	CU_ASSERT_EQUAL(put(r, "#", 4), -EINVAL);
	CU_ASSERT_EQUAL(put(r, "", 4), -EINVAL);
	CU_ASSERT_EQUAL(tq_retain_put(r, "a\0b", 3, VAL(4)), -EINVAL);

	/* destroy releases what is left, once */
	CU_ASSERT_EQUAL(put(r, "q", 5), 0);
	tq_retain_destroy(r);
	flush();
	CU_ASSERT_EQUAL(rel(3), 1);
	CU_ASSERT_EQUAL(rel(5), 1);
	CU_ASSERT_EQUAL(rel(4), 0);
	for (size_t i = 0; i < 8; i++)
		CU_ASSERT(rel(i) <= 1);
}

static void
test_match_wildcards_and_dollar(void)
{
	static const char *const all[] = {
		"sport",
		"sport/tennis",
		"sport/tennis/player1",
		"sport/tennis/player1/ranking",
		"sport/",
		"/finance",
		"finance",
		"$SYS/broker/uptime",
		"$SYS",
		"a//b",
		"$x/y",
	};
	struct tq_retain *r = tq_retain_create(release);
	char out[512];

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	memset(released, 0, sizeof(released));
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		CU_ASSERT_EQUAL(put(r, all[i], i), 0);

	CU_ASSERT_STRING_EQUAL(topics(r, "#", out, sizeof(out)),
			       "/finance a//b finance sport sport/ sport/tennis "
			       "sport/tennis/player1 sport/tennis/player1/ranking");
	CU_ASSERT_STRING_EQUAL(topics(r, "sport/#", out, sizeof(out)),
			       "sport sport/ sport/tennis sport/tennis/player1 "
			       "sport/tennis/player1/ranking");
	CU_ASSERT_STRING_EQUAL(topics(r, "sport/+", out, sizeof(out)), "sport/ sport/tennis");
	CU_ASSERT_STRING_EQUAL(topics(r, "sport/tennis/+", out, sizeof(out)),
			       "sport/tennis/player1");
	CU_ASSERT_STRING_EQUAL(topics(r, "+", out, sizeof(out)), "finance sport");
	CU_ASSERT_STRING_EQUAL(topics(r, "+/+", out, sizeof(out)), "/finance sport/ sport/tennis");
	CU_ASSERT_STRING_EQUAL(topics(r, "/+", out, sizeof(out)), "/finance");
	CU_ASSERT_STRING_EQUAL(topics(r, "+/+/#", out, sizeof(out)),
			       "/finance a//b sport/ sport/tennis sport/tennis/player1 "
			       "sport/tennis/player1/ranking");
	CU_ASSERT_STRING_EQUAL(topics(r, "a/+/b", out, sizeof(out)), "a//b");
	/* '$' topics only by a literal first level */
	CU_ASSERT_STRING_EQUAL(topics(r, "$SYS/#", out, sizeof(out)), "$SYS $SYS/broker/uptime");
	CU_ASSERT_STRING_EQUAL(topics(r, "$SYS/+/uptime", out, sizeof(out)), "$SYS/broker/uptime");
	CU_ASSERT_STRING_EQUAL(topics(r, "+/broker/uptime", out, sizeof(out)), "");
	CU_ASSERT_STRING_EQUAL(topics(r, "$x/+", out, sizeof(out)), "$x/y");
	CU_ASSERT_STRING_EQUAL(topics(r, "sport/tennis/player1", out, sizeof(out)),
			       "sport/tennis/player1");
	CU_ASSERT_STRING_EQUAL(topics(r, "nothing/#", out, sizeof(out)), "");
	/* invalid filters match nothing */
	CU_ASSERT_STRING_EQUAL(topics(r, "sport/#/x", out, sizeof(out)), "");
	CU_ASSERT_STRING_EQUAL(topics(r, "sp+", out, sizeof(out)), "");
	tq_retain_destroy(r);
	flush();
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		CU_ASSERT_EQUAL(rel(i), 1);
}

static void
test_limit(void)
{
	struct tq_retain *r = tq_retain_create(release);
	char t[16];

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	memset(released, 0, sizeof(released));
	tq_retain_set_limit(r, 3);
	CU_ASSERT_EQUAL(put(r, "t/0", 0), 0);
	CU_ASSERT_EQUAL(put(r, "t/1", 1), 0);
	CU_ASSERT_EQUAL(put(r, "t/2", 2), 0);
	CU_ASSERT_EQUAL(put(r, "t/3", 3), -ENOSPC); /* refused: the value stays ours */
	CU_ASSERT_EQUAL(put(r, "t/2", 4), 0);       /* replacing is always allowed */
	CU_ASSERT_EQUAL(put(r, "t/1", SIZE_MAX), 0);
	CU_ASSERT_EQUAL(put(r, "t/3", 3), 0); /* room again */
	CU_ASSERT_EQUAL(tq_retain_count(r), 3);
	tq_retain_set_limit(r, 0); /* no limit */
	for (int i = 10; i < 1010; i++) {
		snprintf(t, sizeof(t), "t/%d", i);
		CU_ASSERT_EQUAL_FATAL(put(r, t, (size_t)i), 0);
	}
	CU_ASSERT_EQUAL(tq_retain_count(r), 1003);
	tq_retain_destroy(r);
	flush();
	CU_ASSERT_EQUAL(rel(0), 1);
	CU_ASSERT_EQUAL(rel(1), 1);
	CU_ASSERT_EQUAL(rel(2), 1);
	CU_ASSERT_EQUAL(rel(3), 1);
	CU_ASSERT_EQUAL(rel(4), 1);
	for (int i = 10; i < 1010; i++)
		CU_ASSERT_EQUAL_FATAL(rel((size_t)i), 1);
}

/* ---- tq_trie_match_filter against the book, on random topics and filters ----------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* MQTT 4.7 by the book, level by level. */
static bool
ref_mqtt(const char *filter, const char *topic)
{
	const char *fw[8], *tw[8];
	size_t fl[8], tl[8];
	int nf = 0, nt = 0, i;

	for (const char *p = filter, *e;; p = e + 1) {
		e = strchr(p, '/');
		fw[nf] = p;
		fl[nf++] = e ? (size_t)(e - p) : strlen(p);
		if (!e)
			break;
	}
	for (const char *p = topic, *e;; p = e + 1) {
		e = strchr(p, '/');
		tw[nt] = p;
		tl[nt++] = e ? (size_t)(e - p) : strlen(p);
		if (!e)
			break;
	}
	for (i = 0; i < nf; i++) {
		bool plus = fl[i] == 1 && fw[i][0] == '+', hash = fl[i] == 1 && fw[i][0] == '#';

		if ((plus || hash) && i == 0 && topic[0] == '$')
			return false;
		if (hash)
			return true;
		if (i >= nt || (!plus && (fl[i] != tl[i] || memcmp(fw[i], tw[i], fl[i]))))
			return false;
	}
	return i == nt;
}

static void
random_name(char *out, size_t cap, int levels, bool wild)
{
	static const char *const words[] = {"a", "b", "", "$s", "cc"};
	size_t at = 0;

	for (int i = 0; i < levels; i++) {
		const char *w = words[rng() % 5];
		unsigned int x = (unsigned int)(rng() % 10);

		if (wild && x < 3)
			w = "+";
		else if (wild && x < 5 && i == levels - 1)
			w = "#";
		at += (size_t)snprintf(out + at, cap - at, "%s%s", i ? "/" : "", w);
	}
}

#define NTOPICS 600

static char names[NTOPICS][40];

static void
test_match_filter_property(void)
{
	struct tq_retain *r = tq_retain_create(release);
	unsigned int total = 0, stored = 0;
	char filter[40];

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	memset(released, 0, sizeof(released));
	for (int i = 0; i < NTOPICS; i++) {
		random_name(names[i], sizeof(names[i]), 1 + (int)(rng() % 4), false);
		if (!names[i][0]) {
			strcpy(names[i], "z");
		}
		CU_ASSERT_EQUAL_FATAL(put(r, names[i], (size_t)i), 0);
	}
	/* a topic put twice keeps the later value */
	for (int i = 0; i < NTOPICS; i++) {
		bool last = true;

		for (int j = i + 1; j < NTOPICS; j++)
			if (!strcmp(names[i], names[j]))
				last = false;
		if (last)
			stored++;
		else
			names[i][0] = '\0'; /* superseded */
	}
	CU_ASSERT_EQUAL(tq_retain_count(r), stored);
	for (int n = 0; n < 2000; n++) {
		static struct seen s;
		unsigned int want = 0;

		s.n = 0;
		random_name(filter, sizeof(filter), 1 + (int)(rng() % 4), true);
		CU_ASSERT_EQUAL(tq_retain_match(r, filter, strlen(filter), on_value, &s), s.n);
		for (int i = 0; i < NTOPICS; i++) {
			bool found = false;

			if (!names[i][0] || !ref_mqtt(filter, names[i]))
				continue;
			want++;
			for (unsigned int k = 0; k < s.n; k++)
				if (!strcmp(s.topic[k], names[i]) && s.value[k] == VAL(i))
					found = true;
			if (!found) {
				CU_FAIL("retained topic missed");
				fprintf(stderr, "\n  filter '%s' topic '%s'\n", filter, names[i]);
			}
		}
		CU_ASSERT_EQUAL_FATAL(s.n, want);
		total += want;
	}
	CU_ASSERT(total > 1000);
	tq_retain_destroy(r);
	flush();
	for (int i = 0; i < NTOPICS; i++)
		CU_ASSERT_EQUAL_FATAL(rel((size_t)i), 1);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_put_replace_delete_release),
		TQ_TEST(test_match_wildcards_and_dollar),
		TQ_TEST(test_limit),
		TQ_TEST(test_match_filter_property),
	};
	int rc;

	urcu_qsbr_register_thread();
	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("retain", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	rc = tq_test_run();
	urcu_qsbr_thread_offline();
	urcu_qsbr_barrier();
	urcu_qsbr_unregister_thread();
	return rc;
}
