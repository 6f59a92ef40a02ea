/*
 * Retained messages over the topic trie: each topic is a plain trie entry (key 0) whose data
 * points to an item holding the topic and the value. Replacing publishes a new item (the
 * trie swaps the entry array copy-on-write) and retires the old one with call_rcu; the
 * item's callback releases the value and frees the item.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "tq_retain.h"
#include "tq_trie.h"

/* One retained value. Owned by the store while linked, then by its call_rcu callback. */
struct retain_item {
	struct rcu_head rcu;
	void (*release)(void *value); /* a copy: callbacks may run after the store is gone */
	void *value;
	size_t tlen;
	char topic[];
};

struct tq_retain {
	pthread_mutex_t lock; /* writers */
	struct tq_trie *trie; /* topic -> (key 0, data = struct retain_item *) */
	void (*release)(void *value);
	uint64_t limit; /* 0: none; atomic */
};

static void
item_free_rcu(struct rcu_head *h)
{
	struct retain_item *it = caa_container_of(h, struct retain_item, rcu);

	it->release(it->value);
	free(it);
}

static void
retire(uint64_t data)
{
	struct retain_item *it = (struct retain_item *)(uintptr_t)data;

	urcu_qsbr_call_rcu(&it->rcu, item_free_rcu);
}

struct tq_retain *
tq_retain_create(void (*release)(void *value))
{
	struct tq_retain *r;

	if (!release) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	r->trie = tq_trie_create(TQ_TRIE_MQTT);
	if (!r->trie) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->release = release;
	return r;
}

static void
release_one(void *arg, const char *filter, size_t len, const char *group, size_t glen,
	    const struct tq_trie_entry *e)
{
	struct retain_item *it = (struct retain_item *)(uintptr_t)e->data;

	(void)arg;
	(void)filter;
	(void)len;
	(void)group;
	(void)glen;
	it->release(it->value);
	free(it);
}

void
tq_retain_destroy(struct tq_retain *r)
{
	if (!r)
		return;
	tq_trie_walk(r->trie, release_one, NULL);
	tq_trie_destroy(r->trie);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void
tq_retain_set_limit(struct tq_retain *r, uint64_t max_messages)
{
	__atomic_store_n(&r->limit, max_messages, __ATOMIC_RELAXED);
}

int
tq_retain_put(struct tq_retain *r, const char *topic, size_t len, void *value)
{
	struct retain_item *it;
	uint64_t old, limit;
	int rc;

	if (!len || len > TQ_TRIE_MAX_LEN || memchr(topic, '+', len) || memchr(topic, '#', len))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	/* we are the trie's only writer, so reading it here needs no RCU registration */
	rc = tq_trie_get(r->trie, topic, len, NULL, 0, 0, &old);
	if (rc < 0 && rc != -ENOENT)
		goto out;
	if (!value) {
		if (rc == 0 && (rc = tq_trie_remove(r->trie, topic, len, NULL, 0, 0)) == 0)
			retire(old);
		rc = rc == -ENOENT ? 0 : rc;
		goto out;
	}
	limit = __atomic_load_n(&r->limit, __ATOMIC_RELAXED);
	if (rc == -ENOENT && limit && tq_trie_count(r->trie) >= limit) {
		rc = -ENOSPC;
		goto out;
	}
	it = malloc(sizeof(*it) + len + 1);
	if (!it) {
		rc = -ENOMEM;
		goto out;
	}
	it->release = r->release;
	it->value = value;
	it->tlen = len;
	memcpy(it->topic, topic, len);
	it->topic[len] = '\0';
	rc = tq_trie_add(r->trie, topic, len, NULL, 0, 0, (uint64_t)(uintptr_t)it);
	if (rc < 0) {
		free(it);
		goto out;
	}
	if (rc == 1)
		retire(old);
	rc = 0;
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

struct match_arg {
	void (*on_value)(void *arg, const char *topic, size_t tlen, void *value);
	void *arg;
};

static void
on_item(void *arg, const struct tq_trie_entry *e)
{
	const struct match_arg *m = arg;
	struct retain_item *it = (struct retain_item *)(uintptr_t)e->data;

	m->on_value(m->arg, it->topic, it->tlen, it->value);
}

unsigned int
tq_retain_match(const struct tq_retain *r, const char *filter, size_t len,
		void (*on_value)(void *arg, const char *topic, size_t tlen, void *value), void *arg)
{
	struct match_arg m = {.on_value = on_value, .arg = arg};
	const struct tq_trie_match_cb cb = {.on_entry = on_item, .arg = &m};

	return tq_trie_match_filter(r->trie, filter, len, &cb);
}

uint64_t
tq_retain_count(const struct tq_retain *r)
{
	return tq_trie_count(r->trie);
}
