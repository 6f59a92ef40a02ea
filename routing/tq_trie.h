/*
 * The topic trie: one engine, two dialects (MQTT filters and AMQP topic-exchange binding
 * keys), read lock-free by every worker under liburcu QSBR, written under one mutex.
 *
 * Shape: a node per filter level. A node has a hash table of its literal children (open
 * addressing; grown or shrunk by building a new table and publishing it with
 * rcu_assign_pointer), a pointer each for its '+'/'*' child and its '#' child, an array of
 * plain entries and an array of shared-subscription groups. Arrays and tables are replaced
 * copy-on-write (except that an entry is appended in place when the array has room: a
 * reader sees the count only after the entry is written), so a reader sees either the old
 * or the new version, never a mix.
 *
 * Ownership: the trie owns every node, table, array and group. What a writer unlinks is
 * freed by liburcu's call_rcu thread after a grace period (urcu_qsbr_call_rcu); those
 * callbacks touch nothing but the memory they free, so they may run after
 * tq_trie_destroy(). Call urcu_qsbr_barrier() (from a thread that is not an online reader)
 * to wait for them, e.g. before exit under LeakSanitizer.
 *
 * Threads:
 *  - Writers (add, remove): any thread, serialised by the trie's mutex, which is never held
 *    while waiting for a grace period (call_rcu only queues). Writers malloc: this is the
 *    subscribe path, never the publish fast path.
 *  - Readers (match, match_filter, get, walk): a thread registered with urcu-qsbr and
 *    online; pointers handed to callbacks stay valid until the reader's next quiescent
 *    state. match and match_filter take no lock and never allocate.
 *
 * Limits: a filter is at most TQ_TRIE_MAX_LEN bytes and TQ_TRIE_MAX_LEVELS levels (deeper
 * filters are refused with -EINVAL; mosquitto stops at 200 levels). Recursion in the readers
 * is bounded by the trie's depth, not by the topic. AMQP routing keys are shortstr (at most
 * 255 bytes, so at most 256 words); a key with more than TQ_TRIE_MAX_LEVELS words matches
 * nothing.
 *
 * Known cost: the entries of one filter are an array, so adding or removing a subscriber of
 * a filter that already has n subscribers costs O(n) (a scan, and a copy on remove).
 */
#ifndef TQ_TRIE_H
#define TQ_TRIE_H

#include <stddef.h>
#include <stdint.h>

#define TQ_TRIE_MAX_LEN    65535u
#define TQ_TRIE_MAX_LEVELS 256u

enum tq_trie_dialect {
	/*
	 * Levels split by '/'; '+' matches one level, '#' (alone, last) that level and all
	 * below it, and the parent ("a/#" matches "a"). A topic starting with '$' is not
	 * matched by a '+' or '#' in the filter's first level (MQTT 4.7.2). Empty levels
	 * are legal ("a//b", "/a"); the empty string is neither a topic nor a filter.
	 */
	TQ_TRIE_MQTT,
	/*
	 * Words split by '.'; '*' matches exactly one word, '#' zero or more words, anywhere
	 * in the key and any number of times (RabbitMQ's topic exchange: "a.#.c" matches
	 * "a.c" and "a.x.y.c", "#" matches ""). '*' and '#' are wildcards only as whole
	 * words ("a*" is a word like any other). The empty string has zero words. A binding with several '#' is matched in polynomial time:
	 * each '#' node is expanded once per match, at the smallest word index it is reached
	 * at (later arrivals are subsumed), so it also yields each binding once.
	 */
	TQ_TRIE_AMQP,
};

/* key: the subscriber's identity; data: its options. Both opaque to the trie. */
struct tq_trie_entry {
	uint64_t key;
	uint64_t data;
};

struct tq_trie;
/* A shared-subscription group ($share/NAME/filter) at one filter, with its members. */
struct tq_trie_group;

/* NULL + errno (EINVAL, ENOMEM). Any thread. */
struct tq_trie *tq_trie_create(enum tq_trie_dialect d);

/* Frees the trie and all it holds. No reader or writer may be left. NULL is a no-op. */
void tq_trie_destroy(struct tq_trie *t);

enum tq_trie_dialect tq_trie_dialect(const struct tq_trie *t);

/*
 * Subscribe @key to @filter, in group @group when @glen > 0 (@group NULL or @glen 0: a
 * plain subscription). (filter, group, key) is unique: adding it again replaces @data.
 * Returns 0 added, 1 replaced, -EINVAL (not a valid filter for the dialect, or over the
 * limits above), -ENOMEM (nothing changed). Writers' rules.
 */
int tq_trie_add(struct tq_trie *t, const char *filter, size_t len, const char *group, size_t glen,
		uint64_t key, uint64_t data);

/*
 * Unsubscribe. Returns 0, -ENOENT (not subscribed) or -EINVAL. Nodes left empty are unlinked
 * and, like the replaced arrays, freed with call_rcu. Writers' rules.
 */
int tq_trie_remove(struct tq_trie *t, const char *filter, size_t len, const char *group,
		   size_t glen, uint64_t key);

/*
 * The data of (filter, group, key) into *@data: 0, -ENOENT or -EINVAL. Readers' rules, or a
 * thread that excludes every writer itself (it then needs no RCU registration).
 */
int tq_trie_get(const struct tq_trie *t, const char *filter, size_t len, const char *group,
		size_t glen, uint64_t key, uint64_t *data);

struct tq_trie_match_cb {
	/* Once per matching plain entry. NULL: not called (still counted). */
	void (*on_entry)(void *arg, const struct tq_trie_entry *e);
	/* Once per matching group, @n >= 1 members; the caller picks one. NULL: not called. */
	void (*on_group)(void *arg, struct tq_trie_group *g, const struct tq_trie_entry *members,
			 uint32_t n);
	void *arg;
};

/*
 * Every subscription whose filter matches the topic name (or AMQP routing key) @topic.
 * Returns the number of matches reported (entries + groups). A subscriber reached through
 * two overlapping filters is reported twice: dedup is the caller's job. Cost: per level, one
 * hash lookup for the literal plus the '+'/'#' children; it does not grow with unrelated
 * subscriptions. Readers' rules; lock-free, no allocation. Wildcard characters in @topic are
 * taken literally (so they match only wildcards in filters, never literal levels).
 */
unsigned int tq_trie_match(const struct tq_trie *t, const char *topic, size_t len,
			   const struct tq_trie_match_cb *cb);

/*
 * The other direction, MQTT dialect only: every subscription whose filter is a topic name
 * (no wildcard) matched by the filter @filter. A literal level looks up one child, '+'
 * visits every child, '#' the node itself and its whole subtree; a wildcard in the first
 * level skips children starting with '$'. This is how retained messages (stored by topic)
 * are found for a new subscription. Returns the matches reported; 0 for an invalid filter
 * or the AMQP dialect. Readers' rules; lock-free, no allocation.
 */
unsigned int tq_trie_match_filter(const struct tq_trie *t, const char *filter, size_t len,
				  const struct tq_trie_match_cb *cb);

/* A per-group round-robin counter: returns the previous value. Any reader (atomic). */
uint32_t tq_trie_group_next(struct tq_trie_group *g);

/* The group's name. Readers' rules (valid while the group is). */
const char *tq_trie_group_name(const struct tq_trie_group *g, size_t *len);

/* Subscriptions (plain entries + group members) and nodes (with the root). Any thread. */
uint64_t tq_trie_count(const struct tq_trie *t);
uint64_t tq_trie_nodes(const struct tq_trie *t);

/*
 * Call @fn for every entry with its filter and group (group NULL and glen 0 when plain).
 * The strings are only valid during the call. Readers' rules (or no writer running);
 * allocates one TQ_TRIE_MAX_LEN buffer for the filter, and walks nothing if that fails.
 */
void tq_trie_walk(const struct tq_trie *t,
		  void (*fn)(void *arg, const char *filter, size_t len, const char *group,
			     size_t glen, const struct tq_trie_entry *e),
		  void *arg);

#endif
