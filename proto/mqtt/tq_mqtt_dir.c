/*
 * The client-id directory: client id -> session slot, and the slots' free list. A mutex
 * guards both; it is taken at CONNECT and when a session ends, never per message.
 * Slot owners and generations are read without it (atomics) by the publish path.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tq_mqtt_int.h"

struct dir_ent {
	struct dir_ent *next;
	uint32_t slot;
	uint16_t len;
	char id[];
};

static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dir_ent **buckets; /* under dir_lock */
static struct dir_ent **by_slot; /* under dir_lock */
static uint32_t nbuckets;
static uint32_t *free_slots; /* stack, under dir_lock */
static uint32_t nfree, nslots;

static uint32_t
id_hash(const char *id, uint16_t len)
{
	uint32_t h = 2166136261u;

	for (uint16_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)id[i]) * 16777619u;
	return h;
}

int
tq_mqtt_dir_init(uint32_t max_sessions)
{
	nbuckets = 1;
	while (nbuckets < max_sessions)
		nbuckets <<= 1;
	buckets = calloc(nbuckets, sizeof(*buckets));
	by_slot = calloc(max_sessions, sizeof(*by_slot));
	free_slots = calloc(max_sessions, sizeof(*free_slots));
	tq_mqtt.slots = calloc(max_sessions, sizeof(*tq_mqtt.slots));
	if (!buckets || !by_slot || !free_slots || !tq_mqtt.slots) {
		tq_mqtt_dir_free();
		return -ENOMEM;
	}
	nslots = max_sessions;
	for (uint32_t i = 0; i < max_sessions; i++)
		free_slots[i] = max_sessions - 1 - i; /* slot 0 first */
	nfree = max_sessions;
	return 0;
}

void
tq_mqtt_dir_free(void)
{
	if (buckets)
		for (uint32_t b = 0; b < nbuckets; b++)
			while (buckets[b]) {
				struct dir_ent *e = buckets[b];

				buckets[b] = e->next;
				free(e);
			}
	free(buckets);
	free(by_slot);
	free(free_slots);
	free(tq_mqtt.slots);
	buckets = by_slot = NULL;
	free_slots = NULL;
	tq_mqtt.slots = NULL;
	nfree = nslots = 0;
}

static struct dir_ent *
find(const char *id, uint16_t len)
{
	for (struct dir_ent *e = buckets[id_hash(id, len) & (nbuckets - 1)]; e; e = e->next)
		if (e->len == len && memcmp(e->id, id, len) == 0)
			return e;
	return NULL;
}

int
tq_mqtt_dir_lookup(const char *id, uint16_t len, uint32_t *gen, uint16_t *owner)
{
	struct dir_ent *e;
	int ret = -ENOENT;

	pthread_mutex_lock(&dir_lock);
	e = find(id, len);
	if (e) {
		ret = (int)e->slot;
		*gen = __atomic_load_n(&tq_mqtt.slots[e->slot].gen, __ATOMIC_ACQUIRE);
		*owner = __atomic_load_n(&tq_mqtt.slots[e->slot].owner, __ATOMIC_ACQUIRE);
	}
	pthread_mutex_unlock(&dir_lock);
	return ret;
}

int
tq_mqtt_dir_get(const char *id, uint16_t len, uint16_t owner, uint32_t *slot, uint32_t *gen,
		uint16_t *cur_owner)
{
	struct dir_ent *e;
	struct tq_mqtt_slot *s;
	int ret;

	pthread_mutex_lock(&dir_lock);
	e = find(id, len);
	if (e) {
		*slot = e->slot;
		*gen = __atomic_load_n(&tq_mqtt.slots[e->slot].gen, __ATOMIC_ACQUIRE);
		*cur_owner = __atomic_load_n(&tq_mqtt.slots[e->slot].owner, __ATOMIC_ACQUIRE);
		ret = 0;
	} else if (nfree == 0 || !(e = malloc(sizeof(*e) + len))) {
		ret = -ENOSPC;
	} else {
		uint32_t b = id_hash(id, len) & (nbuckets - 1);

		e->slot = free_slots[--nfree];
		e->len = len;
		memcpy(e->id, id, len);
		e->next = buckets[b];
		buckets[b] = e;
		by_slot[e->slot] = e;
		s = &tq_mqtt.slots[e->slot];
		s->used = true;
		s->sess = NULL;
		__atomic_store_n(&s->owner, owner, __ATOMIC_RELEASE);
		*slot = e->slot;
		*gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
		*cur_owner = owner;
		ret = 1;
	}
	pthread_mutex_unlock(&dir_lock);
	return ret;
}

void
tq_mqtt_dir_remove(uint32_t slot)
{
	struct dir_ent *e, **pp;
	struct tq_mqtt_slot *s = &tq_mqtt.slots[slot];

	pthread_mutex_lock(&dir_lock);
	e = by_slot[slot];
	if (e) {
		for (pp = &buckets[id_hash(e->id, e->len) & (nbuckets - 1)]; *pp; pp = &(*pp)->next)
			if (*pp == e) {
				*pp = e->next;
				break;
			}
		by_slot[slot] = NULL;
		free(e);
	}
	if (s->used) {
		s->used = false;
		s->sess = NULL;
		__atomic_store_n(&s->online, 0, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->gen, 1, __ATOMIC_ACQ_REL);
		free_slots[nfree++] = slot;
	}
	pthread_mutex_unlock(&dir_lock);
}

uint64_t
tq_mqtt_dir_count(void)
{
	return nslots - __atomic_load_n(&nfree, __ATOMIC_RELAXED);
}

uint32_t
tq_mqtt_sessions(void (*fn)(void *arg, const char *id, uint16_t len, uint16_t worker,
			    bool online, bool full),
		 void *arg)
{
	uint32_t n = 0;

	if (!by_slot)
		return 0;
	pthread_mutex_lock(&dir_lock);
	for (uint32_t i = 0; i < nslots; i++) {
		const struct dir_ent *e = by_slot[i];
		const struct tq_mqtt_slot *s = &tq_mqtt.slots[i];

		if (!e)
			continue;
		fn(arg, e->id, e->len, __atomic_load_n(&s->owner, __ATOMIC_RELAXED),
		   __atomic_load_n(&s->online, __ATOMIC_RELAXED),
		   __atomic_load_n(&s->full, __ATOMIC_RELAXED));
		n++;
	}
	pthread_mutex_unlock(&dir_lock);
	return n;
}
