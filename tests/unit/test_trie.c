/*
 * tq_trie: the MQTT spec's and RabbitMQ's matching examples, filter syntax, add / replace /
 * remove / prune, groups, walk, a brute-force reference on random filters and topics (both
 * dialects), and readers racing a writer under urcu-qsbr.
 *
 * The main thread is an online QSBR reader (it matches) and also the writer; it announces a
 * quiescent state after each test so the call_rcu thread can free, and goes offline before
 * urcu_qsbr_barrier() at the end so LeakSanitizer sees nothing pending.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "routing/tq_trie.h"
#include "tq_test.h"

/* xorshift64*: deterministic, so a failure reproduces */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* ---- collecting matches ----------------------------------------------------------- */

#define MAX_HITS 65536

struct hits {
	unsigned int n;
	uint64_t key[MAX_HITS]; /* plain entries' keys; a group reports 1000000 + its size */
	uint64_t data[MAX_HITS];
};

static struct hits hits;

static void
on_entry(void *arg, const struct tq_trie_entry *e)
{
	struct hits *h = arg;

	CU_ASSERT_FATAL(h->n < MAX_HITS);
	h->key[h->n] = e->key;
	h->data[h->n] = e->data;
	h->n++;
}

static void
on_group(void *arg, struct tq_trie_group *g, const struct tq_trie_entry *members, uint32_t n)
{
	struct hits *h = arg;

	(void)g;
	(void)members;
	CU_ASSERT_FATAL(h->n < MAX_HITS);
	h->key[h->n] = 1000000 + n;
	h->data[h->n] = 0;
	h->n++;
}

static const struct tq_trie_match_cb collect = {
	.on_entry = on_entry, .on_group = on_group, .arg = &hits};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Match @topic; the sorted keys of the hits are left in hits.key. Returns the count. */
static unsigned int
match(const struct tq_trie *t, const char *topic)
{
	unsigned int n;

	hits.n = 0;
	n = tq_trie_match(t, topic, strlen(topic), &collect);
	CU_ASSERT_EQUAL(n, hits.n);
	qsort(hits.key, hits.n, sizeof(hits.key[0]), cmp_u64);
	return n;
}

/* Do exactly the keys @want (ascending, terminated by UINT64_MAX) match @topic? */
static bool
matches_exactly(const struct tq_trie *t, const char *topic, const uint64_t *want)
{
	unsigned int n = match(t, topic), i;

	for (i = 0; want[i] != UINT64_MAX; i++)
		if (i >= n || hits.key[i] != want[i])
			return false;
	return i == n;
}

#define KEYS(...) ((const uint64_t[]){__VA_ARGS__, UINT64_MAX})
#define NONE      ((const uint64_t[]){UINT64_MAX})

static int
add(struct tq_trie *t, const char *filter, uint64_t key)
{
	return tq_trie_add(t, filter, strlen(filter), NULL, 0, key, key * 10);
}

static int
del(struct tq_trie *t, const char *filter, uint64_t key)
{
	return tq_trie_remove(t, filter, strlen(filter), NULL, 0, key);
}

static void
done(struct tq_trie *t)
{
	tq_trie_destroy(t);
	urcu_qsbr_quiescent_state();
}

/* ---- MQTT ------------------------------------------------------------------------- */

/* MQTT 3.1.1 / 5.0 section 4.7: the spec's own examples. */
static void
test_mqtt_spec_examples(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(add(t, "sport/tennis/player1/#", 1), 0);
	CU_ASSERT_EQUAL(add(t, "sport/tennis/+", 2), 0);
	CU_ASSERT_EQUAL(add(t, "sport/#", 3), 0);
	CU_ASSERT_EQUAL(add(t, "#", 4), 0);
	CU_ASSERT_EQUAL(add(t, "+/tennis/#", 5), 0);
	CU_ASSERT_EQUAL(add(t, "sport/+/player1", 6), 0);
	CU_ASSERT_EQUAL(add(t, "+", 7), 0);
	CU_ASSERT_EQUAL(add(t, "/+", 8), 0);
	CU_ASSERT_EQUAL(add(t, "+/+", 9), 0);
	CU_ASSERT_EQUAL(add(t, "sport+", 10), -EINVAL);
	CU_ASSERT_EQUAL(tq_trie_count(t), 9);

	/* "sport/tennis/player1/#" matches player1, its ranking and its wimbledon results */
	CU_ASSERT(matches_exactly(t, "sport/tennis/player1", KEYS(1, 2, 3, 4, 5, 6)));
	CU_ASSERT(matches_exactly(t, "sport/tennis/player1/ranking", KEYS(1, 3, 4, 5)));
	CU_ASSERT(matches_exactly(t, "sport/tennis/player1/score/wimbledon", KEYS(1, 3, 4, 5)));
	/* "sport/#" also matches "sport" (the parent level) */
	CU_ASSERT(matches_exactly(t, "sport", KEYS(3, 4, 7)));
	/* "sport/tennis/+" matches "sport/tennis/player2" but not "sport/tennis/player1/ranking" */
	CU_ASSERT(matches_exactly(t, "sport/tennis/player2", KEYS(2, 3, 4, 5)));
	/* "sport/+" does not match "sport" but matches "sport/" */
	CU_ASSERT(matches_exactly(t, "sport/", KEYS(3, 4, 9)));
	/* "+/+" and "/+" match "/finance"; "+" does not */
	CU_ASSERT(matches_exactly(t, "/finance", KEYS(4, 8, 9)));
	CU_ASSERT(matches_exactly(t, "finance", KEYS(4, 7)));
	/* empty levels are levels */
	CU_ASSERT(matches_exactly(t, "sport//player1", KEYS(3, 4, 6)));
	CU_ASSERT(matches_exactly(t, "//", KEYS(4)));
	CU_ASSERT_EQUAL(match(t, ""), 0); /* not a topic */
	done(t);
}

/* 4.7.2: a wildcard in the first level does not match a topic starting with '$'. */
static void
test_mqtt_dollar_topics(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(add(t, "#", 1), 0);
	CU_ASSERT_EQUAL(add(t, "+/monitor/Clients", 2), 0);
	CU_ASSERT_EQUAL(add(t, "$SYS/#", 3), 0);
	CU_ASSERT_EQUAL(add(t, "$SYS/monitor/+", 4), 0);
	CU_ASSERT_EQUAL(add(t, "+", 5), 0);
	CU_ASSERT_EQUAL(add(t, "+/#", 6), 0);
	CU_ASSERT_EQUAL(add(t, "a/$x", 7), 0);
	CU_ASSERT_EQUAL(add(t, "a/+", 8), 0);

	CU_ASSERT(matches_exactly(t, "$SYS/monitor/Clients", KEYS(3, 4)));
	CU_ASSERT(matches_exactly(t, "$SYS", KEYS(3))); /* "$SYS/#" matches its parent */
	CU_ASSERT(matches_exactly(t, "$", NONE));
	CU_ASSERT(matches_exactly(t, "x/monitor/Clients", KEYS(1, 2, 6)));
	/* '$' only matters in the first level */
	CU_ASSERT(matches_exactly(t, "a/$x", KEYS(1, 6, 7, 8)));
	CU_ASSERT(matches_exactly(t, "x$", KEYS(1, 5, 6)));
	done(t);
}

static void
test_mqtt_filter_syntax(void)
{
	static const char *const bad[] = {
		"", "a/#/b", "#/a", "a#", "#a", "a/b#", "+a", "a+/b", "a/++", "##", "a/#/#",
	};
	static const char *const good[] = {
		"#",   "+",   "/",     "//",     "/a", "a/",  "a//b",
		"+/+", "+/#", "a/+/#", "$SYS/#", "*",  "a*b", "a.b",
	};
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);
	char deep[2 * TQ_TRIE_MAX_LEVELS + 2];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(add(t, bad[i], i), -EINVAL);
		CU_ASSERT_EQUAL(del(t, bad[i], i), -EINVAL);
	}
	CU_ASSERT_EQUAL(tq_trie_add(t, "a\0b", 3, NULL, 0, 1, 1), -EINVAL);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_EQUAL(add(t, good[i], i), 0);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_EQUAL(del(t, good[i], i), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1);

	/* TQ_TRIE_MAX_LEVELS levels are fine, one more is refused */
	for (unsigned int i = 0; i < TQ_TRIE_MAX_LEVELS; i++) {
		deep[2 * i] = 'a';
		deep[2 * i + 1] = '/';
	}
	CU_ASSERT_EQUAL(tq_trie_add(t, deep, 2 * TQ_TRIE_MAX_LEVELS - 1, NULL, 0, 1, 1), 0);
	deep[2 * TQ_TRIE_MAX_LEVELS] = 'a';
	CU_ASSERT_EQUAL(tq_trie_add(t, deep, 2 * TQ_TRIE_MAX_LEVELS + 1, NULL, 0, 1, 1), -EINVAL);
	deep[2 * TQ_TRIE_MAX_LEVELS - 1] = '\0';
	CU_ASSERT(matches_exactly(t, deep, KEYS(1)));
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1 + TQ_TRIE_MAX_LEVELS);
	CU_ASSERT_EQUAL(tq_trie_remove(t, deep, 2 * TQ_TRIE_MAX_LEVELS - 1, NULL, 0, 1), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1);
	done(t);
}

/* ---- AMQP ------------------------------------------------------------------------- */

/* RabbitMQ tutorial 5 (topics) and the topic exchange's documented edge cases. */
static void
test_amqp_examples(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_AMQP);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(add(t, "*.orange.*", 1), 0);
	CU_ASSERT_EQUAL(add(t, "*.*.rabbit", 2), 0);
	CU_ASSERT_EQUAL(add(t, "lazy.#", 3), 0);

	CU_ASSERT(matches_exactly(t, "quick.orange.rabbit", KEYS(1, 2)));
	CU_ASSERT(matches_exactly(t, "lazy.orange.elephant", KEYS(1, 3)));
	CU_ASSERT(matches_exactly(t, "quick.orange.fox", KEYS(1)));
	CU_ASSERT(matches_exactly(t, "lazy.brown.fox", KEYS(3)));
	CU_ASSERT(matches_exactly(t, "lazy.pink.rabbit", KEYS(2, 3))); /* once for Q2 */
	CU_ASSERT(matches_exactly(t, "quick.brown.fox", NONE));
	CU_ASSERT(matches_exactly(t, "orange", NONE));
	CU_ASSERT(matches_exactly(t, "quick.orange.male.rabbit", NONE));
	CU_ASSERT(matches_exactly(t, "lazy.orange.male.rabbit", KEYS(3)));
	CU_ASSERT(matches_exactly(t, "lazy", KEYS(3))); /* '#' eats zero words */

	CU_ASSERT_EQUAL(add(t, "#", 4), 0);
	CU_ASSERT_EQUAL(add(t, "a.#.c", 5), 0);
	CU_ASSERT_EQUAL(add(t, "", 6), 0);
	CU_ASSERT_EQUAL(add(t, "#.b", 7), 0);
	CU_ASSERT_EQUAL(add(t, "a.*.#", 8), 0);
	CU_ASSERT(matches_exactly(t, "", KEYS(4, 6)));
	CU_ASSERT(matches_exactly(t, "a.c", KEYS(4, 5, 8)));
	CU_ASSERT(matches_exactly(t, "a.x.y.c", KEYS(4, 5, 8)));
	CU_ASSERT(matches_exactly(t, "a.c.c", KEYS(4, 5, 8)));
	CU_ASSERT(matches_exactly(t, "b", KEYS(4, 7)));
	CU_ASSERT(matches_exactly(t, "a.b.b", KEYS(4, 7, 8)));
	CU_ASSERT(matches_exactly(t, "a", KEYS(4)));
	CU_ASSERT(matches_exactly(t, ".", KEYS(4))); /* two empty words */

	/* MQTT's wildcards are plain characters here; so are '*' and '#' inside a word (only
	 * a whole word is a wildcard: RabbitMQ splits on '.' and compares words) */
	CU_ASSERT_EQUAL(add(t, "a+.b/c", 9), 0);
	CU_ASSERT(matches_exactly(t, "a+.b/c", KEYS(4, 9)));
	CU_ASSERT_EQUAL(add(t, "a*.b", 10), 0);
	CU_ASSERT_EQUAL(add(t, "a.b#", 11), 0);
	CU_ASSERT_EQUAL(add(t, "**", 12), 0);
	CU_ASSERT(matches_exactly(t, "a*.b", KEYS(4, 7, 10)));
	CU_ASSERT(matches_exactly(t, "ax.b", KEYS(4, 7)));     /* "a*" is no wildcard */
	CU_ASSERT(matches_exactly(t, "a.b#", KEYS(4, 8, 11))); /* nor is "b#" */
	CU_ASSERT(matches_exactly(t, "**", KEYS(4, 12)));
	CU_ASSERT(matches_exactly(t, "xy", KEYS(4)));
	done(t);
}

/* Several '#': each binding once, and a long key with many '#' stays cheap. */
static void
test_amqp_many_hashes(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_AMQP);
	char key[2 * TQ_TRIE_MAX_LEVELS + 2], filter[64];
	size_t kl = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(add(t, "#.#", 1), 0);
	CU_ASSERT_EQUAL(add(t, "a.#.b.#", 2), 0);
	CU_ASSERT_EQUAL(add(t, "#.a.#", 3), 0);
	CU_ASSERT_EQUAL(add(t, "#.#.#.#.#.#.#.#", 4), 0);
	CU_ASSERT_EQUAL(add(t, "#.*.#.*.#", 5), 0);
	CU_ASSERT_EQUAL(add(t, "#.a.#.a.#.a.#", 6), 0);
	CU_ASSERT(matches_exactly(t, "", KEYS(1, 4)));
	CU_ASSERT(matches_exactly(t, "a", KEYS(1, 3, 4)));
	CU_ASSERT(matches_exactly(t, "a.b", KEYS(1, 2, 3, 4, 5)));
	CU_ASSERT(matches_exactly(t, "a.a.a", KEYS(1, 3, 4, 5, 6)));
	CU_ASSERT(matches_exactly(t, "b.a.x.b.a.b.a.a", KEYS(1, 3, 4, 5, 6)));
	CU_ASSERT(matches_exactly(t, "a.x.y.b", KEYS(1, 2, 3, 4, 5)));

	/* 256 words "a.a.a...": every binding above once (no blow-up, no duplicates) */
	for (unsigned int i = 0; i < TQ_TRIE_MAX_LEVELS; i++) {
		key[kl++] = 'a';
		key[kl++] = '.';
	}
	key[--kl] = '\0';
	for (int i = 0; i < 20; i++) { /* ten keys on each of two filters with six '#' */
		snprintf(filter, sizeof(filter), "#.a.#.a.#.a.#.a.#.a.#.%c", 'a' + (i % 2));
		tq_trie_add(t, filter, strlen(filter), NULL, 0, 100 + (uint64_t)i, 0);
	}
	CU_ASSERT_EQUAL(match(t, key), 15); /* 1..6 but 2, and the 10 ending in a */
	/* one word more than a routing key can hold matches nothing */
	key[kl] = '.';
	key[kl + 1] = 'a';
	CU_ASSERT_EQUAL(tq_trie_match(t, key, kl + 2, &collect), 0);
	done(t);
}

/* ---- writers ---------------------------------------------------------------------- */

static void
test_add_replace_remove_prune(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);
	uint64_t nodes0, data;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	nodes0 = tq_trie_nodes(t);
	CU_ASSERT_EQUAL(nodes0, 1);
	CU_ASSERT_EQUAL(tq_trie_add(t, "a/b/c", 5, NULL, 0, 7, 70), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 4);
	CU_ASSERT_EQUAL(tq_trie_add(t, "a/b/c", 5, NULL, 0, 7, 71), 1); /* replaced */
	CU_ASSERT_EQUAL(tq_trie_add(t, "a/b/c", 5, NULL, 0, 7, 71), 1); /* same again */
	CU_ASSERT_EQUAL(tq_trie_count(t), 1);
	CU_ASSERT_EQUAL(match(t, "a/b/c"), 1);
	CU_ASSERT_EQUAL(hits.data[0], 71);
	CU_ASSERT_EQUAL(tq_trie_get(t, "a/b/c", 5, NULL, 0, 7, &data), 0);
	CU_ASSERT_EQUAL(data, 71);
	CU_ASSERT_EQUAL(tq_trie_get(t, "a/b/c", 5, NULL, 0, 8, &data), -ENOENT);
	CU_ASSERT_EQUAL(tq_trie_get(t, "a/b", 3, NULL, 0, 7, &data), -ENOENT);

	/* a second key on the same filter, a plain and a group entry for the same key */
	CU_ASSERT_EQUAL(tq_trie_add(t, "a/b/c", 5, NULL, 0, 8, 80), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "a/b/c", 5, "g", 1, 7, 90), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "a/+/c", 5, NULL, 0, 7, 70), 0);
	CU_ASSERT_EQUAL(tq_trie_count(t), 4);
	CU_ASSERT(matches_exactly(t, "a/b/c", KEYS(7, 7, 8, 1000001))); /* two filters: twice */
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 6);

	CU_ASSERT_EQUAL(tq_trie_remove(t, "a/b/c", 5, NULL, 0, 9), -ENOENT);
	CU_ASSERT_EQUAL(tq_trie_remove(t, "a/b/x", 5, NULL, 0, 7), -ENOENT);
	CU_ASSERT_EQUAL(tq_trie_remove(t, "a/b/c", 5, "h", 1, 7), -ENOENT);
	CU_ASSERT_EQUAL(tq_trie_remove(t, "a/b/c", 5, NULL, 0, 7), 0);
	CU_ASSERT_EQUAL(tq_trie_remove(t, "a/b/c", 5, NULL, 0, 7), -ENOENT);
	CU_ASSERT(matches_exactly(t, "a/b/c", KEYS(7, 8, 1000001)));
	CU_ASSERT_EQUAL(tq_trie_remove(t, "a/b/c", 5, NULL, 0, 8), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 6); /* the group still holds a/b/c */
	CU_ASSERT_EQUAL(tq_trie_remove(t, "a/b/c", 5, "g", 1, 7), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 4); /* a/b and c went, a/+ /c stays */
	CU_ASSERT_EQUAL(tq_trie_remove(t, "a/+/c", 5, NULL, 0, 7), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), nodes0);
	CU_ASSERT_EQUAL(tq_trie_count(t), 0);
	CU_ASSERT_EQUAL(match(t, "a/b/c"), 0);
	done(t);
}

/* Thousands of siblings: the children table grows, shrinks and goes; nodes come back. */
static void
test_many_siblings(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);
	char f[32];
	int n = 20000;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < n; i++) {
		snprintf(f, sizeof(f), "dev/%d/temp", i);
		CU_ASSERT_EQUAL(add(t, f, (uint64_t)i), 0);
	}
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1 + 1 + 2 * (uint64_t)n);
	CU_ASSERT(matches_exactly(t, "dev/12345/temp", KEYS(12345)));
	/* remove in an order unrelated to insertion, checking the survivors as we go */
	for (int i = 0; i < n; i++) {
		int j = (int)(((uint64_t)i * 7919) % (uint64_t)n);

		snprintf(f, sizeof(f), "dev/%d/temp", j);
		CU_ASSERT_EQUAL(del(t, f, (uint64_t)j), 0);
		if (i % 997 == 0) {
			int k = (int)(((uint64_t)(i + 1) * 7919) % (uint64_t)n);

			if (i + 1 < n) {
				snprintf(f, sizeof(f), "dev/%d/temp", k);
				CU_ASSERT(matches_exactly(t, f, KEYS((uint64_t)k)));
			}
			urcu_qsbr_quiescent_state();
		}
	}
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1);
	CU_ASSERT_EQUAL(tq_trie_count(t), 0);
	done(t);
}

/* Many subscribers on one filter: the entry array grows in place and shrinks on removal. */
static void
test_many_keys_one_filter(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (uint64_t k = 0; k < 3000; k++)
		CU_ASSERT_EQUAL(add(t, "x/y", k), 0);
	CU_ASSERT_EQUAL(match(t, "x/y"), 3000);
	for (uint64_t k = 0; k < 3000; k++)
		CU_ASSERT_EQUAL_FATAL(hits.key[k], k);
	for (uint64_t k = 0; k < 3000; k += 2)
		CU_ASSERT_EQUAL(del(t, "x/y", k), 0);
	CU_ASSERT_EQUAL(match(t, "x/y"), 1500);
	for (uint64_t k = 0; k < 1500; k++)
		CU_ASSERT_EQUAL_FATAL(hits.key[k], 2 * k + 1);
	for (uint64_t k = 1; k < 3000; k += 2)
		CU_ASSERT_EQUAL(del(t, "x/y", k), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1);
	done(t);
}

/* ---- groups ----------------------------------------------------------------------- */

struct group_seen {
	struct tq_trie_group *g[4];
	uint64_t picked[4];
	uint32_t n[4];
	uint64_t members[4][8];
	int ngroups;
};

static void
pick_member(void *arg, struct tq_trie_group *g, const struct tq_trie_entry *m, uint32_t n)
{
	struct group_seen *s = arg;
	int i = s->ngroups++;

	CU_ASSERT_FATAL(i < 4 && n <= 8);
	s->g[i] = g;
	s->n[i] = n;
	for (uint32_t j = 0; j < n; j++)
		s->members[i][j] = m[j].key;
	s->picked[i] = m[tq_trie_group_next(g) % n].key;
}

static void
test_groups(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);
	const struct tq_trie_match_cb cb = {.on_entry = on_entry, .on_group = pick_member};
	struct group_seen s;
	uint64_t seen[3] = {0};
	size_t nl;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(tq_trie_add(t, "s/+", 3, "workers", 7, 1, 11), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "s/+", 3, "workers", 7, 2, 12), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "s/+", 3, "workers", 7, 3, 13), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "s/+", 3, "workers", 7, 3, 14), 1);
	CU_ASSERT_EQUAL(tq_trie_add(t, "s/+", 3, "other", 5, 1, 11), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "s/#", 3, "workers", 7, 9, 19), 0); /* another filter */
	CU_ASSERT_EQUAL(tq_trie_count(t), 5);

	/* round robin over the three members of "workers" at s/+ */
	for (int r = 0; r < 9; r++) {
		struct tq_trie_match_cb c = cb;

		memset(&s, 0, sizeof(s));
		c.arg = &s;
		CU_ASSERT_EQUAL(tq_trie_match(t, "s/x", 3, &c), 3);
		CU_ASSERT_EQUAL_FATAL(s.ngroups, 3);
		for (int i = 0; i < 3; i++) {
			const char *name = tq_trie_group_name(s.g[i], &nl);

			if (nl == 7 && !memcmp(name, "workers", 7) && s.n[i] == 3) {
				CU_ASSERT_EQUAL(s.members[i][0] + s.members[i][1] + s.members[i][2],
						6);
				seen[s.picked[i] - 1]++;
			}
		}
	}
	CU_ASSERT_EQUAL(seen[0], 3);
	CU_ASSERT_EQUAL(seen[1], 3);
	CU_ASSERT_EQUAL(seen[2], 3);

	/* members leave; the last one takes the group with it */
	CU_ASSERT_EQUAL(tq_trie_remove(t, "s/+", 3, "workers", 7, 2), 0);
	CU_ASSERT_EQUAL(tq_trie_remove(t, "s/+", 3, "workers", 7, 2), -ENOENT);
	CU_ASSERT(matches_exactly(t, "s/x", KEYS(1000001, 1000001, 1000002)));
	CU_ASSERT_EQUAL(tq_trie_remove(t, "s/+", 3, "workers", 7, 1), 0);
	CU_ASSERT_EQUAL(tq_trie_remove(t, "s/+", 3, "workers", 7, 3), 0);
	CU_ASSERT(matches_exactly(t, "s/x", KEYS(1000001, 1000001)));
	CU_ASSERT_EQUAL(tq_trie_remove(t, "s/+", 3, "other", 5, 1), 0);
	CU_ASSERT_EQUAL(tq_trie_remove(t, "s/#", 3, "workers", 7, 9), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1);
	CU_ASSERT_EQUAL(tq_trie_count(t), 0);
	done(t);
}

/* ---- walk ------------------------------------------------------------------------- */

struct walked {
	int n;
	char line[16][64];
};

static void
walk_fn(void *arg, const char *filter, size_t len, const char *group, size_t glen,
	const struct tq_trie_entry *e)
{
	struct walked *w = arg;

	CU_ASSERT_FATAL(w->n < 16);
	snprintf(w->line[w->n++], 64, "%.*s|%.*s|%llu", (int)len, filter, (int)glen,
		 group ? group : "", (unsigned long long)e->key);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_walk(void)
{
	static const char *const want[] = {
		"#|g|3", "+/b|g|4", "/||6", "a//c||1", "a/b||1", "a/b||2", "a|x|5",
	};
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);
	struct walked w = {0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(add(t, "a/b", 1), 0);
	CU_ASSERT_EQUAL(add(t, "a/b", 2), 0);
	CU_ASSERT_EQUAL(add(t, "a//c", 1), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "#", 1, "g", 1, 3, 0), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "+/b", 3, "g", 1, 4, 0), 0);
	CU_ASSERT_EQUAL(tq_trie_add(t, "a", 1, "x", 1, 5, 0), 0);
	CU_ASSERT_EQUAL(add(t, "/", 6), 0);
	tq_trie_walk(t, walk_fn, &w);
	CU_ASSERT_EQUAL_FATAL(w.n, 7);
	qsort(w.line, (size_t)w.n, sizeof(w.line[0]), cmp_str);
	for (int i = 0; i < 7; i++)
		CU_ASSERT_STRING_EQUAL(w.line[i], want[i]);
	done(t);
}

/* ---- reference matchers and the property tests ------------------------------------ */

#define MAXW 16

static int
split(const char *s, char sep, const char **w, size_t *wl)
{
	int n = 0;

	for (const char *p = s;;) {
		const char *e = strchr(p, sep);

		w[n] = p;
		wl[n] = e ? (size_t)(e - p) : strlen(p);
		n++;
		if (!e)
			return n;
		p = e + 1;
	}
}

static bool
word_is(const char *w, size_t l, const char *lit)
{
	return l == strlen(lit) && !memcmp(w, lit, l);
}

/* MQTT 4.7 by the book, level by level. */
static bool
ref_mqtt(const char *filter, const char *topic)
{
	const char *fw[MAXW], *tw[MAXW];
	size_t fl[MAXW], tl[MAXW];
	int nf = split(filter, '/', fw, fl), nt = split(topic, '/', tw, tl), i;

	for (i = 0; i < nf; i++) {
		bool wild = word_is(fw[i], fl[i], "+") || word_is(fw[i], fl[i], "#");

		if (wild && i == 0 && topic[0] == '$')
			return false;
		if (word_is(fw[i], fl[i], "#"))
			return true;
		if (i >= nt)
			return false;
		if (!word_is(fw[i], fl[i], "+") && (fl[i] != tl[i] || memcmp(fw[i], tw[i], fl[i])))
			return false;
	}
	return i == nt;
}

/* RabbitMQ's topic semantics by dynamic programming over (filter words, key words). */
static bool
ref_amqp(const char *filter, const char *key)
{
	const char *fw[MAXW], *kw[MAXW];
	size_t fl[MAXW], kl[MAXW];
	int nf = *filter ? split(filter, '.', fw, fl) : 0;
	int nk = *key ? split(key, '.', kw, kl) : 0;
	bool m[MAXW + 1][MAXW + 1] = {{false}}; /* m[i][j]: fw[i..] matches kw[j..] */

	m[nf][nk] = true;
	for (int i = nf - 1; i >= 0; i--) {
		for (int j = nk; j >= 0; j--) {
			if (word_is(fw[i], fl[i], "#"))
				m[i][j] = m[i + 1][j] || (j < nk && m[i][j + 1]);
			else if (j < nk && (word_is(fw[i], fl[i], "*") ||
					    (fl[i] == kl[j] && !memcmp(fw[i], kw[j], fl[i]))))
				m[i][j] = m[i + 1][j + 1];
		}
	}
	return m[0][0];
}

static void
random_words(char *out, size_t cap, char sep, int levels, int wild_pct, bool amqp)
{
	static const char *const words[] = {"a", "b", "c", "", "$s", "dd"};
	size_t at = 0;

	out[0] = '\0';
	for (int i = 0; i < levels; i++) {
		const char *w = words[rng() % (amqp ? 4 : 6)];
		int r = (int)(rng() % 100);

		if (r < wild_pct / 2)
			w = amqp ? "*" : "+";
		else if (r < wild_pct && (amqp || i == levels - 1))
			w = "#";
		if (i == 0 && !*w && levels == 1)
			w = "a"; /* not the empty string: MQTT refuses it, AMQP reads zero words */
		at += (size_t)snprintf(out + at, cap - at, "%s%s", i ? (char[]){sep, 0} : "", w);
	}
}

#define NFILTERS 3000
#define NTOPICS  3000

static char filters[NFILTERS][64];

static void
property(enum tq_trie_dialect d)
{
	bool amqp = d == TQ_TRIE_AMQP;
	char sep = amqp ? '.' : '/';
	struct tq_trie *t = tq_trie_create(d);
	char topic[64];
	unsigned int total = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < NFILTERS; i++) {
		int rc;

		random_words(filters[i], sizeof(filters[i]), sep, 1 + (int)(rng() % 5), 40, amqp);
		rc = add(t, filters[i], (uint64_t)i);
		CU_ASSERT_EQUAL_FATAL(rc, 0); /* keys are unique, so never a replacement */
	}
	/* remove a third of them again, so pruning is exercised before matching */
	for (int i = 0; i < NFILTERS; i += 3)
		CU_ASSERT_EQUAL_FATAL(del(t, filters[i], (uint64_t)i), 0);
	for (int n = 0; n < NTOPICS; n++) {
		unsigned int want = 0, got;

		random_words(topic, sizeof(topic), sep, (int)(rng() % 6), 0, amqp);
		if (!amqp && !*topic)
			continue; /* not an MQTT topic */
		got = match(t, topic);
		for (int i = 0; i < NFILTERS; i++) {
			bool hit = i % 3 && (amqp ? ref_amqp(filters[i], topic)
						  : ref_mqtt(filters[i], topic));

			if (!hit)
				continue;
			/* hits.key is sorted: each filter's key exactly once, in order */
			if (want >= got || hits.key[want] != (uint64_t)i) {
				CU_FAIL("trie and reference disagree");
				fprintf(stderr, "\n  topic '%s' filter '%s' (key %d)\n", topic,
					filters[i], i);
				done(t);
				return;
			}
			want++;
		}
		CU_ASSERT_EQUAL_FATAL(got, want);
		total += got;
	}
	CU_ASSERT(total > 1000); /* the test is not vacuous */
	for (int i = 1; i < NFILTERS; i++)
		if (i % 3)
			CU_ASSERT_EQUAL_FATAL(del(t, filters[i], (uint64_t)i), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1);
	done(t);
}

static void
test_property_mqtt(void)
{
	property(TQ_TRIE_MQTT);
}

static void
test_property_amqp(void)
{
	property(TQ_TRIE_AMQP);
}

/* ---- readers racing a writer ------------------------------------------------------ */

#define RACE_FILTERS 4000
#define STABLE       8 /* keys 0..7: subscribed before the readers start, never removed */
#define DATA_OF(k)   ((k)*0x9e3779b97f4a7c15ull ^ 0x5bd1e995ull)

static char race_filters[RACE_FILTERS][32];
static volatile int race_stop;

struct race_reader {
	struct tq_trie *t;
	uint64_t matches;
	uint64_t bad;
	uint64_t stable_missing;
	uint64_t seed;
};

struct race_check {
	struct race_reader *r;
	const char *topic;
	uint32_t stable_seen;
};

static void
race_entry(void *arg, const struct tq_trie_entry *e)
{
	struct race_check *c = arg;

	/* a key the writer used, with its data, whose filter matches the topic */
	if (e->key >= RACE_FILTERS || e->data != DATA_OF(e->key) ||
	    !ref_mqtt(race_filters[e->key], c->topic))
		c->r->bad++;
	if (e->key < STABLE)
		c->stable_seen |= 1u << e->key;
	c->r->matches++;
}

static void
race_group(void *arg, struct tq_trie_group *g, const struct tq_trie_entry *m, uint32_t n)
{
	struct race_check *c = arg;

	tq_trie_group_next(g);
	if (!n)
		c->r->bad++;
	for (uint32_t i = 0; i < n; i++)
		race_entry(arg, &m[i]);
}

static void *
race_read(void *arg)
{
	struct race_reader *r = arg;
	char topic[32];

	urcu_qsbr_register_thread();
	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		struct race_check c = {.r = r, .topic = topic};
		const struct tq_trie_match_cb cb = {
			.on_entry = race_entry, .on_group = race_group, .arg = &c};
		uint64_t x = r->seed = r->seed * 6364136223846793005ull + 1442695040888963407ull;

		snprintf(topic, sizeof(topic), "s/%u/%u", (unsigned)(x >> 40) % 50,
			 (unsigned)(x >> 20) % 8);
		tq_trie_match(r->t, topic, strlen(topic), &cb);
		/* the stable filter "s/+/<k>" for the topic's last level must always be seen */
		if (!(c.stable_seen & (1u << ((x >> 20) % 8))))
			r->stable_missing++;
		urcu_qsbr_quiescent_state();
	}
	urcu_qsbr_unregister_thread();
	return NULL;
}

static void
test_concurrent_readers(void)
{
	struct tq_trie *t = tq_trie_create(TQ_TRIE_MQTT);
	struct race_reader rd[2] = {{.t = t, .seed = 1}, {.t = t, .seed = 2}};
	pthread_t th[2];
	bool present[RACE_FILTERS] = {false};

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < RACE_FILTERS; i++) {
		if (i < STABLE)
			snprintf(race_filters[i], sizeof(race_filters[i]), "s/+/%d", i);
		else if (i % 5 == 0)
			snprintf(race_filters[i], sizeof(race_filters[i]), "s/%d/#", i % 50);
		else if (i % 5 == 1)
			snprintf(race_filters[i], sizeof(race_filters[i]), "s/+/%d", i % 8);
		else
			snprintf(race_filters[i], sizeof(race_filters[i]), "s/%d/%d", i % 50,
				 (i / 50) % 8);
	}
	for (int i = 0; i < STABLE; i++)
		CU_ASSERT_EQUAL(tq_trie_add(t, race_filters[i], strlen(race_filters[i]), NULL, 0,
					    (uint64_t)i, DATA_OF((uint64_t)i)),
				0);
	race_stop = 0;
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, race_read, &rd[i]), 0);
	/* the writer (this thread, an online reader too) churns filters, plain and grouped */
	for (int round = 0; round < 60000; round++) {
		int i = STABLE + (int)(rng() % (RACE_FILTERS - STABLE));
		const char *f = race_filters[i];
		bool grouped = i % 3 == 0;
		int rc;

		if (present[i])
			rc = tq_trie_remove(t, f, strlen(f), "g", grouped, (uint64_t)i);
		else
			rc = tq_trie_add(t, f, strlen(f), "g", grouped, (uint64_t)i,
					 DATA_OF((uint64_t)i));
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		present[i] = !present[i];
		if (round % 64 == 0)
			urcu_qsbr_quiescent_state();
	}
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT(rd[i].matches > 1000);
		CU_ASSERT_EQUAL(rd[i].bad, 0);
		CU_ASSERT_EQUAL(rd[i].stable_missing, 0);
	}
	for (int i = STABLE; i < RACE_FILTERS; i++) {
		const char *f = race_filters[i];

		if (present[i])
			CU_ASSERT_EQUAL(
				tq_trie_remove(t, f, strlen(f), "g", i % 3 == 0, (uint64_t)i), 0);
	}
	for (int i = 0; i < STABLE; i++)
		CU_ASSERT_EQUAL(del(t, race_filters[i], (uint64_t)i), 0);
	CU_ASSERT_EQUAL(tq_trie_count(t), 0);
	CU_ASSERT_EQUAL(tq_trie_nodes(t), 1);
	done(t);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_mqtt_spec_examples),
		TQ_TEST(test_mqtt_dollar_topics),
		TQ_TEST(test_mqtt_filter_syntax),
		TQ_TEST(test_amqp_examples),
		TQ_TEST(test_amqp_many_hashes),
		TQ_TEST(test_add_replace_remove_prune),
		TQ_TEST(test_many_siblings),
		TQ_TEST(test_many_keys_one_filter),
		TQ_TEST(test_groups),
		TQ_TEST(test_walk),
		TQ_TEST(test_property_mqtt),
		TQ_TEST(test_property_amqp),
		TQ_TEST(test_concurrent_readers),
	};
	int rc;

	urcu_qsbr_register_thread();
	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("trie", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	rc = tq_test_run();
	/* let the call_rcu thread free what the tests retired, then leave */
	urcu_qsbr_thread_offline();
	urcu_qsbr_barrier();
	urcu_qsbr_unregister_thread();
	return rc;
}
