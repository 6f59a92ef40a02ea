/*
 * AMQP queue semantics (tq_aqueue.h). Layout:
 *
 *   main            one FIFO per priority level, kept in publish order (seq) so a requeue can
 *                   go back to its place; a bitmap of non-empty levels finds the head. It holds
 *                   ungrouped ready messages and, for each unassigned group, that group's head.
 *   groups          (message groups on) every ready grouped message is on its group's own FIFO,
 *                   in publish order. An assigned group with ready messages sits on its
 *                   owner's list of groups to serve; the owner takes from there and from main.
 *   deadlines       a binary min-heap over ready messages that have one, for the sweep.
 *   unacked         per consumer, in delivery order; a map from delivery id to node.
 *   consumers       a map by id; an array of priority levels (highest first), each with a
 *                   round-robin list of consumers with room ("active") and one without.
 *   dead letters    a FIFO of nodes waiting for tq_aqueue_take_dead().
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "tq_aqueue.h"

enum node_state {
	NODE_READY,
	NODE_UNACKED,
	NODE_DEAD,
	NODE_LOOSE, /* being published or settled, in no list */
};

struct aq_group;
struct aq_consumer;

struct aq_node {
	TAILQ_ENTRY(aq_node) link;  /* main, a consumer's unacked, or the dead letters */
	TAILQ_ENTRY(aq_node) glink; /* its group's ready FIFO */
	void *msg;
	uint64_t seq;         /* publish order, the position a requeue returns to */
	uint64_t deadline;    /* deliverable while now <= deadline; TQ_AQUEUE_TTL_NONE */
	uint64_t delivery_id; /* while unacked */
	struct aq_group *group;
	struct aq_consumer *owner; /* while unacked */
	uint32_t size;
	uint32_t heap_idx; /* in q->heap while ready with a deadline */
	uint32_t delivery_count;
	uint8_t level;
	uint8_t state;
	uint8_t reason; /* NODE_DEAD */
	bool in_main;
};

TAILQ_HEAD(aq_node_list, aq_node);

#define HEAP_NONE UINT32_MAX

/* A message group with something in the queue (ready or unacked). */
struct aq_group {
	uint64_t key;
	struct aq_consumer *owner; /* NULL: unassigned, its head is on main */
	uint64_t n_msgs;
	struct aq_node_list ready;   /* glink, seq order */
	TAILQ_ENTRY(aq_group) olink; /* owner->owned */
	TAILQ_ENTRY(aq_group) rlink; /* owner->ready_groups, iff owned and ready non-empty */
};

TAILQ_HEAD(aq_group_list, aq_group);
TAILQ_HEAD(aq_consumer_list, aq_consumer);

/* Consumers sharing one x-priority. */
struct aq_clevel {
	int32_t prio;
	uint32_t n;
	struct aq_consumer_list active;  /* with room, round-robin order */
	struct aq_consumer_list blocked; /* prefetch full or paused */
};

struct aq_consumer {
	uint64_t id;
	struct aq_clevel *level; /* NULL: a basic.get pseudo-consumer */
	uint32_t prefetch;
	uint32_t n_unacked;
	uint32_t n_groups;
	bool no_ack;
	bool exclusive;
	bool paused;
	bool active;                    /* on level->active (else level->blocked) */
	bool in_gready;                 /* on q->gready: has room and groups with ready messages */
	TAILQ_ENTRY(aq_consumer) rr;    /* level->active / blocked */
	TAILQ_ENTRY(aq_consumer) reg;   /* q->consumers, registration order */
	TAILQ_ENTRY(aq_consumer) glink; /* q->gready */
	struct aq_node_list unacked;    /* delivery order */
	struct aq_group_list owned;
	struct aq_group_list ready_groups; /* owned groups with ready messages, in turn */
};

/* uint64 -> pointer, open addressing, linear probing, backward-shift deletion. */
struct aq_slot {
	uint64_t key;
	void *val; /* NULL: empty */
};

struct aq_map {
	struct aq_slot *slots;
	uint32_t mask;
	uint32_t n;
};

#define MAP_MIN 16u

struct tq_aqueue {
	struct tq_aqueue_conf conf;
	bool groups_on;
	uint32_t n_levels;
	uint64_t bitmap[4]; /* non-empty main levels */
	struct aq_node_list *levels;

	uint64_t next_seq;
	uint64_t next_delivery_id;
	uint64_t ready;
	uint64_t ready_bytes;
	uint64_t unacked;
	uint64_t dead_n;
	uint64_t with_deadline; /* nodes held (not dead) that have a deadline: heap_cap >= it */

	struct aq_node **heap;
	uint32_t heap_n;
	uint32_t heap_cap;

	struct aq_node_list dead;
	struct aq_map unacked_map;  /* delivery id -> node */
	struct aq_map consumer_map; /* id -> consumer (get pseudo-consumers too) */
	struct aq_map group_map;    /* key -> group */

	struct aq_clevel **clevels; /* highest priority first */
	uint32_t n_clevels;
	uint32_t clevels_cap;
	struct aq_consumer_list consumers; /* registration order, no get pseudo-consumers */
	uint32_t n_consumers;
	uint32_t n_exclusive;
	struct aq_consumer_list gready; /* consumers with room and groups with ready messages */

	struct tq_aqueue_stats st;
};

/* ---- map ---- */

static inline uint32_t
map_home(const struct aq_map *m, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(h ^ (h >> 32)) & m->mask;
}

static int
map_init(struct aq_map *m, uint32_t cap)
{
	m->slots = calloc(cap, sizeof(*m->slots));
	if (!m->slots)
		return -ENOMEM;
	m->mask = cap - 1;
	m->n = 0;
	return 0;
}

static void *
map_get(const struct aq_map *m, uint64_t key)
{
	for (uint32_t i = map_home(m, key);; i = (i + 1) & m->mask) {
		if (!m->slots[i].val)
			return NULL;
		if (m->slots[i].key == key)
			return m->slots[i].val;
	}
}

static void
map_insert_slot(struct aq_map *m, uint64_t key, void *val)
{
	uint32_t i = map_home(m, key);

	while (m->slots[i].val)
		i = (i + 1) & m->mask;
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->n++;
}

static int
map_resize(struct aq_map *m, uint32_t cap)
{
	struct aq_map nm;

	if (map_init(&nm, cap) < 0)
		return -ENOMEM;
	for (uint32_t i = 0; i <= m->mask; i++)
		if (m->slots[i].val)
			map_insert_slot(&nm, m->slots[i].key, m->slots[i].val);
	free(m->slots);
	*m = nm;
	return 0;
}

/* Room for one more entry (load at most 1/2). */
static int
map_reserve(struct aq_map *m)
{
	if ((m->n + 1) * 2 <= m->mask + 1)
		return 0;
	if (m->mask + 1 >= (1u << 31))
		return -ENOMEM;
	return map_resize(m, (m->mask + 1) * 2);
}

/* @key must be absent and map_reserve() must have succeeded. */
static void
map_put(struct aq_map *m, uint64_t key, void *val)
{
	map_insert_slot(m, key, val);
}

static void
map_del(struct aq_map *m, uint64_t key)
{
	uint32_t i = map_home(m, key);

	while (m->slots[i].key != key || !m->slots[i].val)
		i = (i + 1) & m->mask; /* present: the caller knows */
	for (uint32_t j = i;;) {
		j = (j + 1) & m->mask;
		if (!m->slots[j].val)
			break;
		uint32_t h = map_home(m, m->slots[j].key);
		/* move j into the hole at i unless its home lies cyclically in (i, j] */
		bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
		if (!stays) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].val = NULL;
	m->n--;
	/* give memory back when sparse; a failed shrink just keeps the big table */
	if (m->mask + 1 > MAP_MIN && m->n * 8 < m->mask + 1)
		(void)map_resize(m, (m->mask + 1) / 2);
}

/* ---- nodes and the deadline heap ---- */

static struct aq_node *
node_new(struct tq_aqueue *q)
{
	struct aq_node *m =
		q->conf.node_alloc ? q->conf.node_alloc(q->conf.ctx) : malloc(sizeof(*m));

	if (m)
		memset(m, 0, sizeof(*m));
	return m;
}

static void
node_free(struct tq_aqueue *q, struct aq_node *m)
{
	if (q->conf.node_free)
		q->conf.node_free(q->conf.ctx, m);
	else
		free(m);
}

static inline bool
node_before(const struct aq_node *a, const struct aq_node *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void
heap_set(struct tq_aqueue *q, uint32_t i, struct aq_node *m)
{
	q->heap[i] = m;
	m->heap_idx = i;
}

static void
heap_up(struct tq_aqueue *q, uint32_t i)
{
	struct aq_node *m = q->heap[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!node_before(m, q->heap[p]))
			break;
		heap_set(q, i, q->heap[p]);
		i = p;
	}
	heap_set(q, i, m);
}

static void
heap_down(struct tq_aqueue *q, uint32_t i)
{
	struct aq_node *m = q->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= q->heap_n)
			break;
		if (c + 1 < q->heap_n && node_before(q->heap[c + 1], q->heap[c]))
			c++;
		if (!node_before(q->heap[c], m))
			break;
		heap_set(q, i, q->heap[c]);
		i = c;
	}
	heap_set(q, i, m);
}

/* Capacity is reserved at publish (with_deadline), so a requeue never fails here. */
static void
heap_push(struct tq_aqueue *q, struct aq_node *m)
{
	q->heap_n++;
	heap_set(q, q->heap_n - 1, m);
	heap_up(q, q->heap_n - 1);
}

static void
heap_remove(struct tq_aqueue *q, struct aq_node *m)
{
	uint32_t i = m->heap_idx;
	struct aq_node *last = q->heap[--q->heap_n];

	m->heap_idx = HEAP_NONE;
	if (last == m)
		return;
	heap_set(q, i, last);
	heap_up(q, i);
	heap_down(q, last->heap_idx);
}

static int
heap_reserve(struct tq_aqueue *q, uint64_t need)
{
	uint32_t cap;
	struct aq_node **h;

	if (need <= q->heap_cap)
		return 0;
	if (need > UINT32_MAX / 2)
		return -ENOMEM;
	cap = q->heap_cap ? q->heap_cap * 2 : 64;
	while (cap < need)
		cap *= 2;
	h = realloc(q->heap, cap * sizeof(*h));
	if (!h)
		return -ENOMEM;
	q->heap = h;
	q->heap_cap = cap;
	return 0;
}

static void
heap_maybe_shrink(struct tq_aqueue *q)
{
	struct aq_node **h;

	if (q->heap_cap <= 64 || q->with_deadline * 4 >= q->heap_cap)
		return;
	h = realloc(q->heap, (q->heap_cap / 2) * sizeof(*h));
	if (h) {
		q->heap = h;
		q->heap_cap /= 2;
	}
}

/* ---- consumers ---- */

static inline bool
has_room(const struct aq_consumer *c)
{
	return !c->paused && (c->no_ack || c->prefetch == 0 || c->n_unacked < c->prefetch);
}

/* Re-file @c after its room or its groups' ready messages changed. */
static void
consumer_update(struct tq_aqueue *q, struct aq_consumer *c)
{
	bool room, gr;

	if (!c->level)
		return;
	room = has_room(c);
	if (room != c->active) {
		if (c->active) {
			TAILQ_REMOVE(&c->level->active, c, rr);
			TAILQ_INSERT_TAIL(&c->level->blocked, c, rr);
		} else {
			TAILQ_REMOVE(&c->level->blocked, c, rr);
			TAILQ_INSERT_TAIL(&c->level->active, c, rr);
		}
		c->active = room;
	}
	gr = room && !TAILQ_EMPTY(&c->ready_groups);
	if (gr != c->in_gready) {
		if (gr)
			TAILQ_INSERT_TAIL(&q->gready, c, glink);
		else
			TAILQ_REMOVE(&q->gready, c, glink);
		c->in_gready = gr;
	}
}

/* The consumer the next ungrouped message goes to, or NULL. */
static struct aq_consumer *
pick_rr(const struct tq_aqueue *q)
{
	if (q->conf.single_active_consumer) {
		struct aq_consumer *c = TAILQ_FIRST(&q->consumers);

		return c && c->active ? c : NULL;
	}
	for (uint32_t i = 0; i < q->n_clevels; i++)
		if (!TAILQ_EMPTY(&q->clevels[i]->active))
			return TAILQ_FIRST(&q->clevels[i]->active);
	return NULL;
}

/* For a new group: fewest groups, then fewest unacked, in the top level with room. */
static struct aq_consumer *
pick_least_loaded(const struct tq_aqueue *q)
{
	for (uint32_t i = 0; i < q->n_clevels; i++) {
		struct aq_consumer *c, *best = NULL;

		TAILQ_FOREACH(c, &q->clevels[i]->active, rr)
		{
			if (!best || c->n_groups < best->n_groups ||
			    (c->n_groups == best->n_groups && c->n_unacked < best->n_unacked))
				best = c;
		}
		if (best)
			return best;
	}
	return NULL;
}

/* ---- ready messages ---- */

static inline void
bit_set(struct tq_aqueue *q, uint32_t l)
{
	q->bitmap[l >> 6] |= 1ull << (l & 63);
}

static inline void
bit_clear(struct tq_aqueue *q, uint32_t l)
{
	q->bitmap[l >> 6] &= ~(1ull << (l & 63));
}

static struct aq_node *
main_head(const struct tq_aqueue *q)
{
	for (int w = 3; w >= 0; w--)
		if (q->bitmap[w]) {
			uint32_t l =
				(uint32_t)w * 64 + 63 - (uint32_t)__builtin_clzll(q->bitmap[w]);
			return TAILQ_FIRST(&q->levels[l]);
		}
	return NULL;
}

/*
 * Insert @m into @head (linked by @field) in seq order. Publishes append; requeues land near
 * the head; an unassigned group's next head may land anywhere: walk from the nearer end,
 * judging by seq.
 */
#define INSERT_BY_SEQ(head, m, field)                                                              \
	do {                                                                                       \
		struct aq_node *first_ = TAILQ_FIRST(head),                                        \
			       *last_ = TAILQ_LAST(head, aq_node_list);                            \
		struct aq_node *it_;                                                               \
		if (!last_ || last_->seq < (m)->seq) {                                             \
			TAILQ_INSERT_TAIL(head, m, field);                                         \
		} else if ((m)->seq - first_->seq <= last_->seq - (m)->seq) {                      \
			for (it_ = first_; it_->seq < (m)->seq; it_ = TAILQ_NEXT(it_, field))      \
				;                                                                  \
			TAILQ_INSERT_BEFORE(it_, m, field);                                        \
		} else {                                                                           \
			for (it_ = last_; it_ && it_->seq > (m)->seq;                              \
			     it_ = TAILQ_PREV(it_, aq_node_list, field))                           \
				;                                                                  \
			if (it_)                                                                   \
				TAILQ_INSERT_AFTER(head, it_, m, field);                           \
			else                                                                       \
				TAILQ_INSERT_HEAD(head, m, field);                                 \
		}                                                                                  \
	} while (0)

static void
main_insert(struct tq_aqueue *q, struct aq_node *m)
{
	INSERT_BY_SEQ(&q->levels[m->level], m, link);
	bit_set(q, m->level);
	m->in_main = true;
}

static void
main_unlink(struct tq_aqueue *q, struct aq_node *m)
{
	TAILQ_REMOVE(&q->levels[m->level], m, link);
	if (TAILQ_EMPTY(&q->levels[m->level]))
		bit_clear(q, m->level);
	m->in_main = false;
}

/* @g gets owner @c: its head leaves main, its ready messages become @c's to take. */
static void
group_assign(struct tq_aqueue *q, struct aq_group *g, struct aq_consumer *c)
{
	struct aq_node *head = TAILQ_FIRST(&g->ready);

	g->owner = c;
	c->n_groups++;
	TAILQ_INSERT_TAIL(&c->owned, g, olink);
	if (head) {
		main_unlink(q, head);
		TAILQ_INSERT_TAIL(&c->ready_groups, g, rlink);
		consumer_update(q, c);
	}
}

/* The owner goes: @g's head rejoins main at its place. The caller re-files the owner. */
static void
group_unassign(struct tq_aqueue *q, struct aq_group *g)
{
	struct aq_consumer *c = g->owner;

	TAILQ_REMOVE(&c->owned, g, olink);
	c->n_groups--;
	g->owner = NULL;
	if (!TAILQ_EMPTY(&g->ready)) {
		TAILQ_REMOVE(&c->ready_groups, g, rlink);
		main_insert(q, TAILQ_FIRST(&g->ready));
	}
}

/* A loose node becomes ready, at its place by publish order. */
static void
ready_link(struct tq_aqueue *q, struct aq_node *m)
{
	struct aq_group *g = m->group;

	m->state = NODE_READY;
	if (!g) {
		main_insert(q, m);
	} else {
		struct aq_node *old = TAILQ_FIRST(&g->ready);

		INSERT_BY_SEQ(&g->ready, m, glink);
		if (g->owner) {
			if (!old) {
				TAILQ_INSERT_TAIL(&g->owner->ready_groups, g, rlink);
				consumer_update(q, g->owner);
			}
		} else if (TAILQ_FIRST(&g->ready) == m) { /* the new head represents it */
			if (old)
				main_unlink(q, old);
			main_insert(q, m);
		}
	}
	q->ready++;
	q->ready_bytes += m->size;
	if (m->deadline != TQ_AQUEUE_TTL_NONE)
		heap_push(q, m);
}

static void
ready_unlink(struct tq_aqueue *q, struct aq_node *m)
{
	struct aq_group *g = m->group;

	if (m->in_main)
		main_unlink(q, m);
	if (g) {
		bool was_head = TAILQ_FIRST(&g->ready) == m;

		TAILQ_REMOVE(&g->ready, m, glink);
		if (g->owner) {
			if (TAILQ_EMPTY(&g->ready)) {
				TAILQ_REMOVE(&g->owner->ready_groups, g, rlink);
				consumer_update(q, g->owner);
			}
		} else if (was_head && !TAILQ_EMPTY(&g->ready)) {
			main_insert(q, TAILQ_FIRST(&g->ready));
		}
	}
	m->state = NODE_LOOSE;
	q->ready--;
	q->ready_bytes -= m->size;
	if (m->heap_idx != HEAP_NONE)
		heap_remove(q, m);
}

/* The message basic.get, drop-head and purge take: main's head, else an owned group's. */
static struct aq_node *
any_ready_head(const struct tq_aqueue *q)
{
	struct aq_node *m = main_head(q);
	struct aq_consumer *c;

	if (m || q->ready == 0)
		return m;
	TAILQ_FOREACH(c, &q->consumers, reg)
	if (!TAILQ_EMPTY(&c->ready_groups))
		return TAILQ_FIRST(&TAILQ_FIRST(&c->ready_groups)->ready);
	return NULL;
}

/* Queue order: higher priority first, then publish order. */
static inline bool
ahead(const struct aq_node *a, const struct aq_node *b)
{
	return a->level > b->level || (a->level == b->level && a->seq < b->seq);
}

/* ---- leaving the queue ---- */

static void
group_release(struct tq_aqueue *q, struct aq_group *g)
{
	if (g->owner) {
		TAILQ_REMOVE(&g->owner->owned, g, olink);
		g->owner->n_groups--;
	}
	map_del(&q->group_map, g->key);
	free(g);
}

/* A loose node stops being the queue's business (group and deadline accounting). */
static void
node_leave(struct tq_aqueue *q, struct aq_node *m)
{
	struct aq_group *g = m->group;

	if (g) {
		m->group = NULL;
		if (--g->n_msgs == 0)
			group_release(q, g);
	}
	if (m->deadline != TQ_AQUEUE_TTL_NONE) {
		q->with_deadline--;
		heap_maybe_shrink(q);
	}
}

/* A loose node the queue gives up: dead-lettered when on, else released. */
static void
dispose(struct tq_aqueue *q, struct aq_node *m, enum tq_aqueue_dead_reason reason)
{
	node_leave(q, m);
	if (q->conf.dead_letter) {
		m->state = NODE_DEAD;
		m->reason = (uint8_t)reason;
		TAILQ_INSERT_TAIL(&q->dead, m, link);
		q->dead_n++;
		return;
	}
	q->conf.release(q->conf.ctx, m->msg);
	node_free(q, m);
}

static void
expire(struct tq_aqueue *q, struct aq_node *m)
{
	ready_unlink(q, m);
	q->st.expired++;
	dispose(q, m, TQ_AQUEUE_DEAD_EXPIRED);
}

static inline bool
expired(const struct aq_node *m, uint64_t now)
{
	return now > m->deadline; /* TTL_NONE is UINT64_MAX: never */
}

/* ---- delivery ---- */

/*
 * Hand ready @m to @c (NULL: a no-ack basic.get). For a consumer that acks, the caller has
 * reserved a slot in unacked_map.
 */
static void
deliver(struct tq_aqueue *q, struct aq_consumer *c, uint64_t cid, bool no_ack, struct aq_node *m,
	struct tq_aqueue_delivery *out)
{
	ready_unlink(q, m);
	m->delivery_count++;
	out->consumer = cid;
	out->msg = m->msg;
	out->delivery_count = m->delivery_count;
	out->redelivered = m->delivery_count > 1;
	q->st.delivered++;
	if (out->redelivered)
		q->st.redelivered++;
	if (no_ack) {
		out->delivery_id = 0;
		out->settled = true;
		node_leave(q, m);
		node_free(q, m);
	} else {
		out->delivery_id = ++q->next_delivery_id;
		out->settled = false;
		m->delivery_id = out->delivery_id;
		m->owner = c;
		m->state = NODE_UNACKED;
		map_put(&q->unacked_map, m->delivery_id, m);
		TAILQ_INSERT_TAIL(&c->unacked, m, link);
		c->n_unacked++;
		q->unacked++;
	}
	if (c && c->level) {
		consumer_update(q, c);
		if (c->active) { /* round robin: to the back of its level */
			TAILQ_REMOVE(&c->level->active, c, rr);
			TAILQ_INSERT_TAIL(&c->level->active, c, rr);
		}
	}
}

/* Could a consumer take a message of group @g (NULL: none) right now (the TTL 0 rule)? */
static bool
can_take_now(const struct tq_aqueue *q, const struct aq_group *g)
{
	if (g && g->owner)
		return g->owner->active;
	return g ? pick_least_loaded(q) != NULL : pick_rr(q) != NULL;
}

unsigned int
tq_aqueue_dispatch(struct tq_aqueue *q, uint64_t now, struct tq_aqueue_delivery *out,
		   unsigned int max)
{
	unsigned int n = 0;

	while (n < max) {
		/* two candidates: main's head, and the next group message of an owner with room */
		struct aq_consumer *gc = TAILQ_FIRST(&q->gready), *c;
		struct aq_group *gg = gc ? TAILQ_FIRST(&gc->ready_groups) : NULL;
		struct aq_node *gm = gg ? TAILQ_FIRST(&gg->ready) : NULL;
		struct aq_node *m = main_head(q);

		if (m && (!gm || ahead(m, gm))) {
			struct aq_group *g = m->group; /* set only with groups on: unassigned */

			if (expired(m, now)) {
				expire(q, m);
				continue;
			}
			c = g ? pick_least_loaded(q) : pick_rr(q);
			if (c) {
				if (!c->no_ack && map_reserve(&q->unacked_map) < 0)
					break;
				if (g)
					group_assign(q, g, c);
				deliver(q, c, c->id, c->no_ack, m, &out[n++]);
				continue;
			}
		}
		if (!gm)
			break;
		if (expired(gm, now)) {
			expire(q, gm);
			continue;
		}
		if (!gc->no_ack && map_reserve(&q->unacked_map) < 0)
			break;
		TAILQ_REMOVE(&gc->ready_groups, gg, rlink); /* the owner's groups in turn */
		TAILQ_INSERT_TAIL(&gc->ready_groups, gg, rlink);
		deliver(q, gc, gc->id, gc->no_ack, gm, &out[n++]);
		if (gc->in_gready) { /* owners in turn */
			TAILQ_REMOVE(&q->gready, gc, glink);
			TAILQ_INSERT_TAIL(&q->gready, gc, glink);
		}
	}
	return n;
}

int
tq_aqueue_get(struct tq_aqueue *q, uint64_t now, uint64_t get_id, bool no_ack,
	      struct tq_aqueue_delivery *out)
{
	struct aq_consumer *c = map_get(&q->consumer_map, get_id);
	struct aq_node *m;

	if (c && c->level)
		return -EINVAL;
	while ((m = any_ready_head(q)) && expired(m, now))
		expire(q, m);
	if (!m)
		return 0;
	if (no_ack) {
		deliver(q, NULL, get_id, true, m, out);
		return 1;
	}
	if (map_reserve(&q->unacked_map) < 0)
		return -ENOMEM;
	if (!c) {
		if (map_reserve(&q->consumer_map) < 0)
			return -ENOMEM;
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->id = get_id;
		TAILQ_INIT(&c->unacked);
		TAILQ_INIT(&c->owned);
		TAILQ_INIT(&c->ready_groups);
		map_put(&q->consumer_map, get_id, c);
	}
	deliver(q, c, get_id, false, m, out);
	return 1;
}

/* ---- settling ---- */

enum settle_how { SETTLE_ACK, SETTLE_REQUEUE, SETTLE_DISCARD };

static void
settle_one(struct tq_aqueue *q, struct aq_node *m, enum settle_how how)
{
	struct aq_consumer *c = m->owner;

	TAILQ_REMOVE(&c->unacked, m, link);
	map_del(&q->unacked_map, m->delivery_id);
	c->n_unacked--;
	q->unacked--;
	m->owner = NULL;
	m->delivery_id = 0;
	m->state = NODE_LOOSE;
	switch (how) {
	case SETTLE_ACK:
		q->st.acked++;
		node_leave(q, m);
		q->conf.release(q->conf.ctx, m->msg);
		node_free(q, m);
		break;
	case SETTLE_REQUEUE:
		q->st.requeued++;
		ready_link(q, m);
		break;
	case SETTLE_DISCARD:
		q->st.rejected++;
		dispose(q, m, TQ_AQUEUE_DEAD_REJECTED);
		break;
	}
}

static void
consumer_free(struct tq_aqueue *q, struct aq_consumer *c)
{
	map_del(&q->consumer_map, c->id);
	free(c);
}

static int
settle(struct tq_aqueue *q, uint64_t cid, uint64_t delivery_id, bool multiple, enum settle_how how)
{
	struct aq_consumer *c = map_get(&q->consumer_map, cid);
	struct aq_node *m, *last = NULL;
	int n = 0;

	if (!c)
		return -ENOENT;
	if (!multiple) {
		m = map_get(&q->unacked_map, delivery_id);
		if (!m || m->owner != c)
			return -ENOENT;
		settle_one(q, m, how);
		n = 1;
	} else if (how == SETTLE_REQUEUE) {
		/* newest first: each lands in front of the one requeued before it */
		TAILQ_FOREACH(m, &c->unacked, link)
		{
			if (m->delivery_id > delivery_id)
				break;
			last = m;
		}
		while (last) {
			m = TAILQ_PREV(last, aq_node_list, link);
			settle_one(q, last, how);
			n++;
			last = m;
		}
	} else {
		while ((m = TAILQ_FIRST(&c->unacked)) && m->delivery_id <= delivery_id) {
			settle_one(q, m, how);
			n++;
		}
	}
	if (!c->level) {
		if (TAILQ_EMPTY(&c->unacked))
			consumer_free(q, c);
	} else {
		consumer_update(q, c);
	}
	return n;
}

int
tq_aqueue_ack(struct tq_aqueue *q, uint64_t consumer, uint64_t delivery_id, bool multiple)
{
	return settle(q, consumer, delivery_id, multiple, SETTLE_ACK);
}

int
tq_aqueue_nack(struct tq_aqueue *q, uint64_t consumer, uint64_t delivery_id, bool multiple,
	       bool requeue)
{
	return settle(q, consumer, delivery_id, multiple,
		      requeue ? SETTLE_REQUEUE : SETTLE_DISCARD);
}

/* ---- publish ---- */

static inline uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - 1 - b ? UINT64_MAX - 1 : a + b;
}

static inline bool
over_limits(const struct tq_aqueue *q, uint64_t add_n, uint64_t add_bytes)
{
	return q->ready + add_n > q->conf.max_length ||
	       (q->conf.max_length_bytes != TQ_AQUEUE_UNLIMITED &&
		q->ready_bytes + add_bytes > q->conf.max_length_bytes);
}

int
tq_aqueue_publish(struct tq_aqueue *q, void *msg, const struct tq_aqueue_msg_attr *attr,
		  uint64_t now)
{
	struct aq_group *g = NULL;
	struct aq_node *m;
	uint64_t ttl;

	if (!msg || !attr)
		return -EINVAL;
	if (q->conf.overflow != TQ_AQUEUE_DROP_HEAD && over_limits(q, 1, attr->size)) {
		if (q->conf.overflow == TQ_AQUEUE_REJECT_PUBLISH_DLX && q->conf.dead_letter) {
			m = node_new(q);
			if (!m)
				return -ENOMEM;
			m->msg = msg;
			m->deadline = TQ_AQUEUE_TTL_NONE;
			m->heap_idx = HEAP_NONE;
			m->size = attr->size;
			q->st.refused++;
			dispose(q, m, TQ_AQUEUE_DEAD_MAXLEN);
			return TQ_AQUEUE_REFUSED_DEAD;
		}
		q->st.refused++;
		return TQ_AQUEUE_REFUSED;
	}
	ttl = attr->ttl_ms < q->conf.message_ttl ? attr->ttl_ms : q->conf.message_ttl;
	if (ttl != TQ_AQUEUE_TTL_NONE && heap_reserve(q, q->with_deadline + 1) < 0)
		return -ENOMEM;
	m = node_new(q);
	if (!m)
		return -ENOMEM;
	if (q->groups_on && attr->group != TQ_AQUEUE_GROUP_NONE) {
		g = map_get(&q->group_map, attr->group);
		if (!g) {
			if (map_reserve(&q->group_map) < 0 || !(g = calloc(1, sizeof(*g)))) {
				node_free(q, m);
				return -ENOMEM;
			}
			g->key = attr->group;
			TAILQ_INIT(&g->ready);
			map_put(&q->group_map, g->key, g);
		}
		g->n_msgs++;
	}
	m->msg = msg;
	m->seq = ++q->next_seq;
	m->deadline = ttl == TQ_AQUEUE_TTL_NONE ? TQ_AQUEUE_TTL_NONE : sat_add(now, ttl);
	m->group = g;
	m->size = attr->size;
	m->heap_idx = HEAP_NONE;
	m->level = attr->priority < q->n_levels - 1 ? attr->priority : (uint8_t)(q->n_levels - 1);
	m->state = NODE_LOOSE;
	if (ttl != TQ_AQUEUE_TTL_NONE)
		q->with_deadline++;
	q->st.published++;

	if (ttl == 0 && !can_take_now(q, g)) { /* nobody to take it at once: dead on arrival */
		q->st.expired++;
		dispose(q, m, TQ_AQUEUE_DEAD_EXPIRED);
		return 0;
	}
	ready_link(q, m);
	while (over_limits(q, 0, 0)) { /* drop-head (the reject modes never get over here) */
		struct aq_node *h = any_ready_head(q);

		ready_unlink(q, h);
		q->st.dropped++;
		dispose(q, h, TQ_AQUEUE_DEAD_MAXLEN);
	}
	return 0;
}

/* ---- sweep, dead letters, purge ---- */

unsigned int
tq_aqueue_sweep(struct tq_aqueue *q, uint64_t now)
{
	unsigned int n = 0;

	while (q->heap_n && expired(q->heap[0], now)) {
		expire(q, q->heap[0]);
		n++;
	}
	return n;
}

uint64_t
tq_aqueue_next_expiry(const struct tq_aqueue *q)
{
	return q->heap_n ? q->heap[0]->deadline + 1 : UINT64_MAX;
}

unsigned int
tq_aqueue_take_dead(struct tq_aqueue *q, struct tq_aqueue_dead *out, unsigned int max)
{
	unsigned int n = 0;
	struct aq_node *m;

	while (n < max && (m = TAILQ_FIRST(&q->dead))) {
		TAILQ_REMOVE(&q->dead, m, link);
		q->dead_n--;
		out[n].msg = m->msg;
		out[n].reason = (enum tq_aqueue_dead_reason)m->reason;
		out[n].delivery_count = m->delivery_count;
		n++;
		node_free(q, m);
	}
	q->st.dead_lettered += n;
	return n;
}

static void
release_node(struct tq_aqueue *q, struct aq_node *m)
{
	q->conf.release(q->conf.ctx, m->msg);
	node_free(q, m);
}

uint64_t
tq_aqueue_purge(struct tq_aqueue *q)
{
	uint64_t n = 0;
	struct aq_node *m;

	while ((m = any_ready_head(q))) {
		ready_unlink(q, m);
		node_leave(q, m);
		release_node(q, m);
		n++;
	}
	q->st.purged += n;
	return n;
}

int
tq_aqueue_set_limits(struct tq_aqueue *q, const struct tq_aqueue_conf *conf)
{
	uint64_t n = 0;

	if (!conf || conf->overflow > TQ_AQUEUE_REJECT_PUBLISH_DLX)
		return -EINVAL;
	q->conf.max_length = conf->max_length;
	q->conf.max_length_bytes = conf->max_length_bytes;
	q->conf.overflow = conf->overflow;
	q->conf.message_ttl = conf->message_ttl;
	q->conf.dead_letter = conf->dead_letter;
	if (q->conf.overflow != TQ_AQUEUE_DROP_HEAD)
		return 0; /* the reject modes refuse what comes, never drop what is held */
	while (over_limits(q, 0, 0)) {
		struct aq_node *h = any_ready_head(q);

		ready_unlink(q, h);
		q->st.dropped++;
		dispose(q, h, TQ_AQUEUE_DEAD_MAXLEN);
		n++;
	}
	return n > INT_MAX ? INT_MAX : (int)n;
}

/* ---- consumers ---- */

static struct aq_clevel *
clevel_get(struct tq_aqueue *q, int32_t prio)
{
	struct aq_clevel *l;
	uint32_t i;

	for (i = 0; i < q->n_clevels && q->clevels[i]->prio >= prio; i++)
		if (q->clevels[i]->prio == prio)
			return q->clevels[i];
	if (q->n_clevels == q->clevels_cap) {
		uint32_t cap = q->clevels_cap ? q->clevels_cap * 2 : 4;
		struct aq_clevel **a = realloc(q->clevels, cap * sizeof(*a));

		if (!a)
			return NULL;
		q->clevels = a;
		q->clevels_cap = cap;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->prio = prio;
	TAILQ_INIT(&l->active);
	TAILQ_INIT(&l->blocked);
	memmove(&q->clevels[i + 1], &q->clevels[i], (q->n_clevels - i) * sizeof(*q->clevels));
	q->clevels[i] = l;
	q->n_clevels++;
	return l;
}

static void
clevel_put(struct tq_aqueue *q, struct aq_clevel *l)
{
	uint32_t i = 0;

	if (l->n)
		return;
	while (q->clevels[i] != l)
		i++;
	memmove(&q->clevels[i], &q->clevels[i + 1], (q->n_clevels - i - 1) * sizeof(*q->clevels));
	q->n_clevels--;
	free(l);
}

int
tq_aqueue_consumer_add(struct tq_aqueue *q, const struct tq_aqueue_consumer_conf *cc)
{
	struct aq_consumer *c;
	struct aq_clevel *l;

	if (!cc)
		return -EINVAL;
	if (map_get(&q->consumer_map, cc->id))
		return -EEXIST;
	if (q->n_exclusive || (cc->exclusive && q->n_consumers))
		return -EBUSY;
	if (map_reserve(&q->consumer_map) < 0)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	l = clevel_get(q, cc->priority);
	if (!l) {
		free(c);
		return -ENOMEM;
	}
	c->id = cc->id;
	c->level = l;
	c->prefetch = cc->prefetch;
	c->no_ack = cc->no_ack;
	c->exclusive = cc->exclusive;
	c->active = true;
	TAILQ_INIT(&c->unacked);
	TAILQ_INIT(&c->owned);
	TAILQ_INIT(&c->ready_groups);
	TAILQ_INSERT_TAIL(&l->active, c, rr);
	l->n++;
	TAILQ_INSERT_TAIL(&q->consumers, c, reg);
	q->n_consumers++;
	if (c->exclusive)
		q->n_exclusive++;
	map_put(&q->consumer_map, c->id, c);
	return 0;
}

int
tq_aqueue_consumer_remove(struct tq_aqueue *q, uint64_t consumer)
{
	struct aq_consumer *c = map_get(&q->consumer_map, consumer);
	struct aq_group *g;
	struct aq_node *m;
	int n = 0;

	if (!c)
		return -ENOENT;
	/* newest first, so each lands in front of the previous; its groups keep them in order */
	while ((m = TAILQ_LAST(&c->unacked, aq_node_list))) {
		settle_one(q, m, SETTLE_REQUEUE);
		n++;
	}
	/* its groups go back to the queue, each represented by its head, to be assigned afresh */
	while ((g = TAILQ_FIRST(&c->owned)))
		group_unassign(q, g);
	if (c->level) {
		if (c->active)
			TAILQ_REMOVE(&c->level->active, c, rr);
		else
			TAILQ_REMOVE(&c->level->blocked, c, rr);
		c->level->n--;
		clevel_put(q, c->level);
		TAILQ_REMOVE(&q->consumers, c, reg);
		q->n_consumers--;
		if (c->exclusive)
			q->n_exclusive--;
		if (c->in_gready)
			TAILQ_REMOVE(&q->gready, c, glink);
	}
	consumer_free(q, c);
	return n;
}

static struct aq_consumer *
real_consumer(const struct tq_aqueue *q, uint64_t id)
{
	struct aq_consumer *c = map_get(&q->consumer_map, id);

	return c && c->level ? c : NULL;
}

int
tq_aqueue_consumer_pause(struct tq_aqueue *q, uint64_t consumer, bool paused)
{
	struct aq_consumer *c = real_consumer(q, consumer);

	if (!c)
		return -ENOENT;
	c->paused = paused;
	consumer_update(q, c);
	return 0;
}

int
tq_aqueue_consumer_set_prefetch(struct tq_aqueue *q, uint64_t consumer, uint32_t prefetch)
{
	struct aq_consumer *c = real_consumer(q, consumer);

	if (!c)
		return -ENOENT;
	c->prefetch = prefetch;
	consumer_update(q, c);
	return 0;
}

/* ---- lifetime and counts ---- */

void
tq_aqueue_conf_init(struct tq_aqueue_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->max_length = TQ_AQUEUE_UNLIMITED;
	conf->max_length_bytes = TQ_AQUEUE_UNLIMITED;
	conf->overflow = TQ_AQUEUE_DROP_HEAD;
	conf->message_ttl = TQ_AQUEUE_TTL_NONE;
}

size_t
tq_aqueue_node_size(void)
{
	return sizeof(struct aq_node);
}

const char *
tq_aqueue_reason_name(enum tq_aqueue_dead_reason reason)
{
	switch (reason) {
	case TQ_AQUEUE_DEAD_EXPIRED:
		return "expired";
	case TQ_AQUEUE_DEAD_MAXLEN:
		return "maxlen";
	case TQ_AQUEUE_DEAD_REJECTED:
		return "rejected";
	}
	return "?";
}

struct tq_aqueue *
tq_aqueue_create(const struct tq_aqueue_conf *conf)
{
	struct tq_aqueue *q;

	if (!conf || !conf->release || conf->overflow > TQ_AQUEUE_REJECT_PUBLISH_DLX ||
	    !conf->node_alloc != !conf->node_free) {
		errno = EINVAL;
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	q->conf = *conf;
	q->groups_on = conf->message_groups && !conf->single_active_consumer;
	q->n_levels = (uint32_t)conf->max_priority + 1;
	q->levels = calloc(q->n_levels, sizeof(*q->levels));
	if (!q->levels || map_init(&q->unacked_map, MAP_MIN) < 0 ||
	    map_init(&q->consumer_map, MAP_MIN) < 0 || map_init(&q->group_map, MAP_MIN) < 0) {
		free(q->unacked_map.slots);
		free(q->consumer_map.slots);
		free(q->levels);
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < q->n_levels; i++)
		TAILQ_INIT(&q->levels[i]);
	TAILQ_INIT(&q->dead);
	TAILQ_INIT(&q->consumers);
	TAILQ_INIT(&q->gready);
	return q;
}

static void
release_list(struct tq_aqueue *q, struct aq_node_list *l)
{
	struct aq_node *m;

	while ((m = TAILQ_FIRST(l))) {
		TAILQ_REMOVE(l, m, link);
		release_node(q, m);
	}
}

void
tq_aqueue_destroy(struct tq_aqueue *q)
{
	if (!q)
		return;
	/* grouped ready messages through their groups (a head is on main too), then the rest */
	for (uint32_t i = 0; i <= q->group_map.mask; i++) {
		struct aq_group *g = q->group_map.slots[i].val;
		struct aq_node *m;

		if (!g)
			continue;
		while ((m = TAILQ_FIRST(&g->ready))) {
			TAILQ_REMOVE(&g->ready, m, glink);
			if (m->in_main)
				TAILQ_REMOVE(&q->levels[m->level], m, link);
			release_node(q, m);
		}
		free(g);
	}
	for (uint32_t i = 0; i < q->n_levels; i++)
		release_list(q, &q->levels[i]);
	for (uint32_t i = 0; i <= q->consumer_map.mask; i++) {
		struct aq_consumer *c = q->consumer_map.slots[i].val;

		if (c) {
			release_list(q, &c->unacked);
			free(c);
		}
	}
	release_list(q, &q->dead);
	for (uint32_t i = 0; i < q->n_clevels; i++)
		free(q->clevels[i]);
	free(q->clevels);
	free(q->unacked_map.slots);
	free(q->consumer_map.slots);
	free(q->group_map.slots);
	free(q->heap);
	free(q->levels);
	free(q);
}

uint64_t
tq_aqueue_ready(const struct tq_aqueue *q)
{
	return q->ready;
}

uint64_t
tq_aqueue_ready_bytes(const struct tq_aqueue *q)
{
	return q->ready_bytes;
}

uint64_t
tq_aqueue_unacked(const struct tq_aqueue *q)
{
	return q->unacked;
}

uint32_t
tq_aqueue_consumers(const struct tq_aqueue *q)
{
	return q->n_consumers;
}

uint64_t
tq_aqueue_dead_pending(const struct tq_aqueue *q)
{
	return q->dead_n;
}

void
tq_aqueue_stats(const struct tq_aqueue *q, struct tq_aqueue_stats *out)
{
	*out = q->st;
}
