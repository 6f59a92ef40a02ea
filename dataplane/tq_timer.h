/*
 * Hierarchical timer wheel of one worker (in the spirit of VPP's tw_timer and the classic
 * Linux cascading wheel). Owned and touched only by its worker: no locks, no atomics; every
 * call below is for the owning thread only, and none of them allocates after init.
 *
 * Time is counted in ticks. The caller turns its clock (TSC) into ticks and drives the
 * wheel with tq_timer_advance(); the tick length given at init is kept for documentation
 * and telemetry only (TCP uses 1 tick = 1 ms).
 *
 * Layout: three levels of 256 slots plus an overflow list.
 *   level 0: the current block of 256 ticks, one slot per tick;
 *   level 1: the rest of the current block of 2^16 ticks, one slot per 256 ticks;
 *   level 2: the rest of the current block of 2^24 ticks, one slot per 2^16 ticks;
 *   overflow: anything later (any 64-bit deadline), sorted into the wheel again each
 *   time time enters a new block of 2^24 ticks.
 * Timers in a level 1/2 slot are cascaded (re-inserted by their exact deadline) when time
 * reaches the slot, so they end in a level-0 slot of their exact tick.
 *
 * Precision: exact. A timer with deadline D = now + delay never fires before D and fires
 * in the first tq_timer_advance(now_ticks >= D), unless that call's max_expiries cap is
 * reached, in which case it is delivered by the following calls, in deadline order, before
 * anything that expires later. "now" is the now_ticks of the last tq_timer_advance() (0
 * after init): advance first in each loop iteration, then start timers, so delays count
 * from the present.
 *
 * Cost: start/stop/update/extend are O(1). Advance costs O(expired + cascaded timers) plus
 * at most one step per non-empty slot passed: occupancy bitmaps skip empty slots, so a jump
 * over hours of idle time is cheap; overflow timers are revisited once per 2^24 ticks.
 *
 * Handles are uint32_t: a pool index in the low bits (enough for max_timers) and a
 * generation in the high bits (at least 8 bits), bumped whenever a timer fires or is
 * stopped. 0 is never a valid handle. A stale handle (its timer fired or was stopped) is
 * detected and ignored, unless its pool entry has since been reused exactly a multiple of
 * 2^generation-bits times: clear stored handles in the expiry callback.
 */
#ifndef TQ_TIMER_H
#define TQ_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TQ_TIMER_LEVELS 3
#define TQ_TIMER_SLOT_BITS 8
#define TQ_TIMER_SLOTS (1u << TQ_TIMER_SLOT_BITS)
#define TQ_TIMER_WHEEL_BITS (TQ_TIMER_LEVELS * TQ_TIMER_SLOT_BITS) /* 24: beyond, overflow */
#define TQ_TIMER_MAX (1u << TQ_TIMER_WHEEL_BITS) /* max_timers must be below this */

/* tq_timer_wheel_init() @socket: allocate with calloc() (no EAL: tests, tools). */
#define TQ_TIMER_SOCKET_LIBC (-2)

/*
 * Called for each expired timer with the @user value it was started with and its (now
 * stale) @handle. The timer is already free: the callback may start, stop, update or
 * extend any timer, this one's pool entry included; timers it starts with delay 0 fire in
 * the next tq_timer_advance(), not this one. It must not call tq_timer_advance().
 */
typedef void (*tq_timer_fn)(void *ctx, uint64_t user, uint32_t handle);

/* A pool entry, or (past the last timer) a list head. Internal: use the functions. */
struct tq_timer {
	uint32_t next; /* node ids; a free timer uses next for the free list */
	uint32_t prev;
	uint32_t gen;     /* generation, masked to the handle's generation bits */
	uint32_t armed;   /* 1 while linked in a slot, the overflow or the ready list */
	uint64_t expiry;  /* deadline in ticks; may be later than its slot (extend) */
	uint64_t user;
};

struct tq_timer_wheel {
	uint64_t now;          /* ticks: now_ticks of the last advance */
	struct tq_timer *nodes; /* [1, max_timers]: timers; then list heads; owned */
	uint32_t max_timers;
	uint32_t free_head;    /* first free timer, 0 when the pool is exhausted */
	uint32_t armed;        /* timers started and not yet fired or stopped */
	uint32_t head_base;    /* node id of the first list head */
	uint8_t idx_bits;      /* handle = gen << idx_bits | index */
	bool in_advance;
	bool libc;             /* nodes came from calloc(), not rte_zmalloc_socket() */
	uint32_t tick_ns;      /* documentation only: how long a tick is */
	uint64_t overflow_min; /* lower bound of the overflow's deadlines, UINT64_MAX if none */
	uint64_t occupied[TQ_TIMER_LEVELS][TQ_TIMER_SLOTS / 64]; /* non-empty slots */
};

/*
 * Prepare @tw with a pool of @max_timers timers (1 .. TQ_TIMER_MAX - 1) on NUMA @socket,
 * or from calloc() with TQ_TIMER_SOCKET_LIBC. @tick_ns is recorded, not used. Time starts
 * at tick 0. Boot time, on any thread, before the owner uses it.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int tq_timer_wheel_init(struct tq_timer_wheel *tw, uint32_t max_timers, uint32_t tick_ns,
			int socket);

/* Free the pool. Pending timers are dropped without callbacks. Safe on a zeroed @tw. */
void tq_timer_wheel_free(struct tq_timer_wheel *tw);

/*
 * Arm a timer that expires @delay_ticks after now (0: in the next advance) and passes
 * @user to the callback. Returns its handle, or 0 when the pool is exhausted.
 * Deadlines past UINT64_MAX are clamped to it.
 */
uint32_t tq_timer_start(struct tq_timer_wheel *tw, uint64_t user, uint64_t delay_ticks);

/* Disarm @handle. Returns 0, or -ENOENT when the handle is stale (fired, stopped, 0). */
int tq_timer_stop(struct tq_timer_wheel *tw, uint32_t handle);

/*
 * Re-arm @handle to expire @delay_ticks after now, earlier or later than before; it keeps
 * its handle and user value. Returns 0, or -ENOENT when stale (nothing is armed then).
 */
int tq_timer_update(struct tq_timer_wheel *tw, uint32_t handle, uint64_t delay_ticks);

/*
 * Lazy re-arm for timers that are pushed back far more often than they fire (keepalive,
 * idle timeouts; nginx's habit): when the new deadline is not earlier than the current
 * one, only the deadline is stored and the timer is moved when its old slot comes up.
 * An earlier deadline, or a timer already expired and waiting for delivery, falls back to
 * tq_timer_update(). Returns 0 or -ENOENT.
 */
int tq_timer_extend(struct tq_timer_wheel *tw, uint32_t handle, uint64_t delay_ticks);

/* True when @handle names an armed timer. */
bool tq_timer_is_armed(const struct tq_timer_wheel *tw, uint32_t handle);

/* Store the deadline (ticks) of @handle in @expiry. Returns 0 or -ENOENT. */
int tq_timer_expiry(const struct tq_timer_wheel *tw, uint32_t handle, uint64_t *expiry);

/*
 * A tick before which no timer fires (for idle sleeps): the exact next deadline when it
 * lies in the current 256-tick block, the start of its slot otherwise; now when expired
 * timers wait for delivery; UINT64_MAX when nothing is armed.
 */
uint64_t tq_timer_next_due(const struct tq_timer_wheel *tw);

/*
 * Move time to @now_ticks (a @now_ticks in the past moves nothing) and call @fn(@ctx, ...)
 * for expired timers, earliest deadline first, at most @max_expiries of them (0: none).
 * Expired timers beyond the cap stay queued, in order, for the next calls. Returns the
 * number of callbacks made.
 */
unsigned int tq_timer_advance(struct tq_timer_wheel *tw, uint64_t now_ticks, tq_timer_fn fn,
			      void *ctx, unsigned int max_expiries);

#endif
