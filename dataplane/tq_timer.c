#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_malloc.h>

#include "tq_timer.h"

/*
 * List heads live in the node array after the timers, so that links are plain node ids:
 * one per wheel slot, then these.
 */
enum {
	HEAD_OVERFLOW = TQ_TIMER_LEVELS * TQ_TIMER_SLOTS,
	HEAD_READY,   /* expired, waiting for delivery, in deadline order */
	HEAD_FIRING,  /* being delivered by the current advance */
	HEAD_SCRATCH, /* timers being cascaded */
	HEAD_COUNT,
};

#define SLOT_MASK (TQ_TIMER_SLOTS - 1)

static inline uint32_t
head_id(const struct tq_timer_wheel *tw, unsigned int head)
{
	return tw->head_base + head;
}

static inline bool
list_empty(const struct tq_timer_wheel *tw, unsigned int head)
{
	uint32_t h = head_id(tw, head);

	return tw->nodes[h].next == h;
}

static inline void
list_init(struct tq_timer_wheel *tw, unsigned int head)
{
	uint32_t h = head_id(tw, head);

	tw->nodes[h].next = h;
	tw->nodes[h].prev = h;
}

static inline void
set_occupied(struct tq_timer_wheel *tw, unsigned int head)
{
	tw->occupied[head / TQ_TIMER_SLOTS][(head % TQ_TIMER_SLOTS) / 64] |= 1ull << (head % 64);
}

static inline void
clear_occupied(struct tq_timer_wheel *tw, unsigned int head)
{
	tw->occupied[head / TQ_TIMER_SLOTS][(head % TQ_TIMER_SLOTS) / 64] &= ~(1ull << (head % 64));
}

static inline void
link_tail(struct tq_timer_wheel *tw, unsigned int head, uint32_t id)
{
	uint32_t h = head_id(tw, head);
	uint32_t last = tw->nodes[h].prev;

	tw->nodes[id].prev = last;
	tw->nodes[id].next = h;
	tw->nodes[last].next = id;
	tw->nodes[h].prev = id;
}

/* Unlink timer @id; when that empties a wheel slot, clear its occupancy bit. */
static inline void
unlink_timer(struct tq_timer_wheel *tw, uint32_t id)
{
	uint32_t p = tw->nodes[id].prev, n = tw->nodes[id].next;

	tw->nodes[p].next = n;
	tw->nodes[n].prev = p;
	if (p == n && p >= tw->head_base && p - tw->head_base < HEAD_OVERFLOW)
		clear_occupied(tw, p - tw->head_base);
}

/* Move every timer of list @src to the end (or the front) of list @dst. */
static void
splice(struct tq_timer_wheel *tw, unsigned int dst, unsigned int src, bool front)
{
	uint32_t s = head_id(tw, src), d = head_id(tw, dst);
	uint32_t first = tw->nodes[s].next, last = tw->nodes[s].prev;
	uint32_t before, after;

	if (first == s)
		return;
	before = front ? d : tw->nodes[d].prev;
	after = front ? tw->nodes[d].next : d;
	tw->nodes[before].next = first;
	tw->nodes[first].prev = before;
	tw->nodes[last].next = after;
	tw->nodes[after].prev = last;
	tw->nodes[s].next = s;
	tw->nodes[s].prev = s;
}

/* Link timer @id where its deadline says, relative to tw->now. */
static void
insert_timer(struct tq_timer_wheel *tw, uint32_t id)
{
	uint64_t e = tw->nodes[id].expiry, now = tw->now;
	unsigned int head;

	if (e <= now) {
		link_tail(tw, HEAD_READY, id);
		return;
	}
	for (unsigned int level = 0; level < TQ_TIMER_LEVELS; level++) {
		unsigned int shift = (level + 1) * TQ_TIMER_SLOT_BITS;

		/* same block of 2^shift ticks as now: this level has a slot for it, after now's */
		if ((e >> shift) == (now >> shift)) {
			head = level * TQ_TIMER_SLOTS +
			       ((e >> (level * TQ_TIMER_SLOT_BITS)) & SLOT_MASK);
			link_tail(tw, head, id);
			set_occupied(tw, head);
			return;
		}
	}
	link_tail(tw, HEAD_OVERFLOW, id);
	if (e < tw->overflow_min)
		tw->overflow_min = e;
}

/*
 * Re-insert every timer of wheel slot (or overflow) @head by its deadline: due ones go to
 * the tail of the ready list, the rest (cascading, or extended lazily) further on.
 */
static void
cascade(struct tq_timer_wheel *tw, unsigned int head)
{
	uint32_t s = head_id(tw, HEAD_SCRATCH);

	if (head < HEAD_OVERFLOW)
		clear_occupied(tw, head);
	splice(tw, HEAD_SCRATCH, head, false);
	while (tw->nodes[s].next != s) {
		uint32_t id = tw->nodes[s].next;

		unlink_timer(tw, id);
		insert_timer(tw, id);
	}
}

/* First occupied slot of @level at index @from or later, or -1. */
static int
next_slot(const struct tq_timer_wheel *tw, unsigned int level, unsigned int from)
{
	for (unsigned int w = from / 64; w < TQ_TIMER_SLOTS / 64; w++) {
		uint64_t bits = tw->occupied[level][w];

		if (w == from / 64)
			bits &= ~0ull << (from % 64);
		if (bits)
			return (int)(w * 64 + (unsigned int)__builtin_ctzll(bits));
	}
	return -1;
}

/*
 * Time has just become @t: cascade what starts at @t, then queue what expires at @t. Only
 * timers due at @t reach the ready list here, which keeps it in deadline order.
 */
static void
arrive(struct tq_timer_wheel *tw, uint64_t t)
{
	if ((t & ((1ull << TQ_TIMER_WHEEL_BITS) - 1)) == 0 && !list_empty(tw, HEAD_OVERFLOW)) {
		tw->overflow_min = UINT64_MAX;
		cascade(tw, HEAD_OVERFLOW);
	}
	for (unsigned int level = TQ_TIMER_LEVELS - 1; level > 0; level--) {
		unsigned int shift = level * TQ_TIMER_SLOT_BITS;

		if ((t & ((1ull << shift) - 1)) == 0)
			cascade(tw, level * TQ_TIMER_SLOTS + ((t >> shift) & SLOT_MASK));
	}
	cascade(tw, (unsigned int)(t & SLOT_MASK));
}

/*
 * The next tick after now at which something happens (a level-0 slot expires or a higher
 * slot cascades), or UINT64_MAX when the wheel and overflow are empty. Earlier levels'
 * candidates always come first: level 0 holds only the current 256-tick block, level 1 only
 * later parts of the current 2^16 block, and so on.
 */
static uint64_t
next_event(const struct tq_timer_wheel *tw)
{
	uint64_t now = tw->now;
	uint64_t t;

	for (unsigned int level = 0; level < TQ_TIMER_LEVELS; level++) {
		unsigned int shift = level * TQ_TIMER_SLOT_BITS;
		unsigned int block = shift + TQ_TIMER_SLOT_BITS; /* this level spans 2^block */
		unsigned int cur = (unsigned int)((now >> shift) & SLOT_MASK);
		int s = next_slot(tw, level, cur + 1);

		if (s >= 0)
			return (now >> block << block) | ((uint64_t)s << shift);
	}
	if (list_empty(tw, HEAD_OVERFLOW))
		return UINT64_MAX;
	/* overflow deadlines are in a later 2^24 block than now, so this cannot wrap */
	t = ((now >> TQ_TIMER_WHEEL_BITS) + 1) << TQ_TIMER_WHEEL_BITS;
	return RTE_MAX(t, tw->overflow_min >> TQ_TIMER_WHEEL_BITS << TQ_TIMER_WHEEL_BITS);
}

/* Move time to @target, queueing every timer that expires on the way on the ready list. */
static void
run_wheel(struct tq_timer_wheel *tw, uint64_t target)
{
	while (tw->now < target) {
		uint64_t t = next_event(tw);

		if (t > target) {
			tw->now = target;
			return;
		}
		tw->now = t;
		arrive(tw, t);
	}
}

static inline uint32_t
make_handle(const struct tq_timer_wheel *tw, uint32_t id)
{
	return tw->nodes[id].gen << tw->idx_bits | id;
}

/* The armed timer @handle names, or 0. */
static inline uint32_t
lookup(const struct tq_timer_wheel *tw, uint32_t handle)
{
	uint32_t id = handle & ((1u << tw->idx_bits) - 1);

	if (id == 0 || id > tw->max_timers || !tw->nodes[id].armed ||
	    tw->nodes[id].gen != handle >> tw->idx_bits)
		return 0;
	return id;
}

/* Return unlinked timer @id to the pool; its handle goes stale. */
static inline void
free_timer(struct tq_timer_wheel *tw, uint32_t id)
{
	struct tq_timer *t = &tw->nodes[id];

	t->armed = 0;
	t->gen = (t->gen + 1) & (UINT32_MAX >> tw->idx_bits);
	t->next = tw->free_head;
	tw->free_head = id;
	tw->armed--;
}

static inline uint64_t
deadline(const struct tq_timer_wheel *tw, uint64_t delay)
{
	return delay > UINT64_MAX - tw->now ? UINT64_MAX : tw->now + delay;
}

int
tq_timer_wheel_init(struct tq_timer_wheel *tw, uint32_t max_timers, uint32_t tick_ns, int socket)
{
	size_t n = (size_t)max_timers + 1 + HEAD_COUNT;

	memset(tw, 0, sizeof(*tw));
	if (max_timers == 0 || max_timers >= TQ_TIMER_MAX)
		return -EINVAL;
	if (socket == TQ_TIMER_SOCKET_LIBC) {
		tw->nodes = calloc(n, sizeof(*tw->nodes));
		tw->libc = true;
	} else {
		tw->nodes = rte_zmalloc_socket("tq_timer", n * sizeof(*tw->nodes),
					       RTE_CACHE_LINE_SIZE, socket);
	}
	if (!tw->nodes)
		return -ENOMEM;
	tw->max_timers = max_timers;
	tw->head_base = max_timers + 1;
	tw->tick_ns = tick_ns;
	tw->overflow_min = UINT64_MAX;
	while ((1ull << tw->idx_bits) <= max_timers)
		tw->idx_bits++;
	/* free list in index order, so handles come out 1, 2, 3... on a fresh wheel */
	for (uint32_t id = 1; id <= max_timers; id++)
		tw->nodes[id].next = id < max_timers ? id + 1 : 0;
	tw->free_head = 1;
	for (unsigned int h = 0; h < HEAD_COUNT; h++)
		list_init(tw, h);
	return 0;
}

void
tq_timer_wheel_free(struct tq_timer_wheel *tw)
{
	if (!tw->nodes)
		return;
	if (tw->libc)
		free(tw->nodes);
	else
		rte_free(tw->nodes);
	tw->nodes = NULL;
	tw->free_head = 0;
	tw->armed = 0;
}

uint32_t
tq_timer_start(struct tq_timer_wheel *tw, uint64_t user, uint64_t delay_ticks)
{
	uint32_t id = tw->free_head;
	struct tq_timer *t;

	if (id == 0)
		return 0;
	t = &tw->nodes[id];
	tw->free_head = t->next;
	t->armed = 1;
	t->user = user;
	t->expiry = deadline(tw, delay_ticks);
	insert_timer(tw, id);
	tw->armed++;
	return make_handle(tw, id);
}

int
tq_timer_stop(struct tq_timer_wheel *tw, uint32_t handle)
{
	uint32_t id = lookup(tw, handle);

	if (!id)
		return -ENOENT;
	unlink_timer(tw, id);
	free_timer(tw, id);
	return 0;
}

int
tq_timer_update(struct tq_timer_wheel *tw, uint32_t handle, uint64_t delay_ticks)
{
	uint32_t id = lookup(tw, handle);

	if (!id)
		return -ENOENT;
	unlink_timer(tw, id);
	tw->nodes[id].expiry = deadline(tw, delay_ticks);
	insert_timer(tw, id);
	return 0;
}

int
tq_timer_extend(struct tq_timer_wheel *tw, uint32_t handle, uint64_t delay_ticks)
{
	uint32_t id = lookup(tw, handle);
	uint64_t e;

	if (!id)
		return -ENOENT;
	e = deadline(tw, delay_ticks);
	/*
	 * An expired timer waits on the ready list in deadline order: move it for real. One
	 * in the wheel keeps its slot, which comes up before the new deadline; it is
	 * re-inserted then.
	 */
	if (e < tw->nodes[id].expiry || tw->nodes[id].expiry <= tw->now)
		return tq_timer_update(tw, handle, delay_ticks);
	tw->nodes[id].expiry = e;
	return 0;
}

bool
tq_timer_is_armed(const struct tq_timer_wheel *tw, uint32_t handle)
{
	return lookup(tw, handle) != 0;
}

int
tq_timer_expiry(const struct tq_timer_wheel *tw, uint32_t handle, uint64_t *expiry)
{
	uint32_t id = lookup(tw, handle);

	if (!id)
		return -ENOENT;
	*expiry = tw->nodes[id].expiry;
	return 0;
}

uint64_t
tq_timer_next_due(const struct tq_timer_wheel *tw)
{
	if (!list_empty(tw, HEAD_READY))
		return tw->now;
	return next_event(tw);
}

unsigned int
tq_timer_advance(struct tq_timer_wheel *tw, uint64_t now_ticks, tq_timer_fn fn, void *ctx,
		 unsigned int max_expiries)
{
	uint32_t f = head_id(tw, HEAD_FIRING);
	unsigned int fired = 0;

	if (tw->in_advance)
		return 0; /* called from a callback: not allowed, and harmless this way */
	if (now_ticks > tw->now)
		run_wheel(tw, now_ticks);
	/* deliver from a list of its own, so timers that callbacks start wait for next time */
	splice(tw, HEAD_FIRING, HEAD_READY, false);
	tw->in_advance = true;
	while (fired < max_expiries && tw->nodes[f].next != f) {
		uint32_t id = tw->nodes[f].next;
		struct tq_timer *t = &tw->nodes[id];
		uint64_t user = t->user;
		uint32_t handle = make_handle(tw, id);

		/* ready timers are due: extend() moves them for real, not lazily */
		unlink_timer(tw, id);
		free_timer(tw, id);
		fn(ctx, user, handle);
		fired++;
	}
	tw->in_advance = false;
	splice(tw, HEAD_READY, HEAD_FIRING, true);
	return fired;
}
