/*
 * Retained messages: at most one value per MQTT topic name, found by a subscription's filter
 * (MQTT 3.3.1.3). Stored in a topic trie (routing/tq_trie.h) whose "filters" are the topic
 * names themselves, matched in the other direction (tq_trie_match_filter).
 *
 * Ownership: the store holds one reference's worth of each value it accepted (put returned
 * 0) and hands it to @release after a grace period (call_rcu) when the value is replaced or
 * deleted, and at destroy. A put that fails leaves the value with the caller.
 *
 * Threads: writers (put, set_limit) any thread, serialised by the store's mutex, which is
 * never held while waiting for a grace period; they malloc (not the publish fast path).
 * Readers (match): a liburcu QSBR-registered, online thread; lock-free, no allocation.
 */
#ifndef TQ_RETAIN_H
#define TQ_RETAIN_H

#include <stddef.h>
#include <stdint.h>

struct tq_retain;

/* @release: called once per value the store gives up. NULL + errno (ENOMEM). */
struct tq_retain *tq_retain_create(void (*release)(void *value));

/*
 * Releases every stored value (now, from this thread) and frees the store. No reader or
 * writer may be left. Values replaced or deleted within the last grace period are released
 * by liburcu's call_rcu thread: call urcu_qsbr_barrier() (from a thread that is not an online
 * reader) to wait for them, e.g. before their pools go away. NULL is a no-op.
 */
void tq_retain_destroy(struct tq_retain *r);

/*
 * At most @max_messages topics (0: no limit, the default). Lowering it below the count
 * deletes nothing; only new topics are refused. Any thread.
 */
void tq_retain_set_limit(struct tq_retain *r, uint64_t max_messages);

/*
 * Retain @value for @topic (a topic name: no '+' or '#', 1..65535 bytes, at most
 * TQ_TRIE_MAX_LEVELS levels), replacing (and releasing) any previous value; @value NULL
 * deletes (0 whether or not there was one). Returns 0, -EINVAL, -ENOMEM, or -ENOSPC when a
 * new topic would exceed the limit (replacing is always allowed). Writers' rules.
 */
int tq_retain_put(struct tq_retain *r, const char *topic, size_t len, void *value);

/*
 * Call @on_value once per retained topic matching the MQTT filter @filter ('+' and '#'
 * as in subscriptions; a wildcard first level does not match topics starting with '$').
 * @topic and @value are valid until the reader's next quiescent state: take your own
 * reference inside the callback. Returns the number of calls; 0 for an invalid filter.
 * Readers' rules.
 */
unsigned int tq_retain_match(const struct tq_retain *r, const char *filter, size_t len,
			     void (*on_value)(void *arg, const char *topic, size_t tlen,
					      void *value),
			     void *arg);

/* Retained topics. Any thread (approximate while writers run). */
uint64_t tq_retain_count(const struct tq_retain *r);

#endif
