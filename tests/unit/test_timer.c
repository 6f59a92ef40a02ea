/* tq_timer: exact expiry at every level, a reference model, handles, the pool, the cap. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_memory.h>

#include "dataplane/tq_timer.h"
#include "tq_test.h"

#define MAX_FIRED 8192

struct fired {
	uint64_t user;
	uint32_t handle;
	uint64_t now; /* the wheel's time when the callback ran */
};

struct recorder {
	struct tq_timer_wheel *tw;
	unsigned int n;
	struct fired f[MAX_FIRED];
};

static struct recorder rec;

static void
record(void *ctx, uint64_t user, uint32_t handle)
{
	struct recorder *r = ctx;

	CU_ASSERT_FATAL(r->n < MAX_FIRED);
	r->f[r->n].user = user;
	r->f[r->n].handle = handle;
	r->f[r->n].now = r->tw->now;
	r->n++;
}

static void
wheel_init(struct tq_timer_wheel *tw, uint32_t max_timers)
{
	CU_ASSERT_EQUAL_FATAL(tq_timer_wheel_init(tw, max_timers, 1000000, TQ_TIMER_SOCKET_LIBC),
			      0);
	memset(&rec, 0, sizeof(rec));
	rec.tw = tw;
}

static unsigned int
advance(struct tq_timer_wheel *tw, uint64_t now)
{
	return tq_timer_advance(tw, now, record, &rec, UINT32_MAX);
}

/* xorshift64*: deterministic, so a failure reproduces */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void
test_init_rejects_bad_sizes(void)
{
	struct tq_timer_wheel tw;

	CU_ASSERT_EQUAL(tq_timer_wheel_init(&tw, 0, 1000000, TQ_TIMER_SOCKET_LIBC), -EINVAL);
	CU_ASSERT_EQUAL(tq_timer_wheel_init(&tw, TQ_TIMER_MAX, 1000000, TQ_TIMER_SOCKET_LIBC),
			-EINVAL);
	CU_ASSERT_EQUAL_FATAL(tq_timer_wheel_init(&tw, 1, 1000000, TQ_TIMER_SOCKET_LIBC), 0);
	CU_ASSERT_EQUAL(tw.tick_ns, 1000000);
	tq_timer_wheel_free(&tw);
	tq_timer_wheel_free(&tw); /* twice is harmless */
}

/*
 * One timer of each interesting delay, from several starting times (block boundaries of
 * every level included): silent up to deadline - 1, fires exactly at the deadline.
 */
static void
test_single_timer_fires_exactly_on_its_tick(void)
{
	static const uint64_t delays[] = {
		0, 1, 2, 254, 255, 256, 257, 511, 65535, 65536, 65537, 131072,
		(1u << 24) - 1, 1u << 24, (1u << 24) + 1, (1ull << 32) + 12345, 1ull << 40,
	};
	static const uint64_t starts[] = {
		0, 1, 255, 256, 65535, 65536, (1u << 24) - 1, 1u << 24, 123456789,
		(1ull << 40) - 3,
	};
	struct tq_timer_wheel tw;

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		for (size_t d = 0; d < sizeof(delays) / sizeof(delays[0]); d++) {
			uint64_t t0 = starts[s], due = t0 + delays[d];
			uint64_t expiry;
			uint32_t h;

			wheel_init(&tw, 4);
			CU_ASSERT_EQUAL(advance(&tw, t0), 0);
			h = tq_timer_start(&tw, 1000 + d, delays[d]);
			CU_ASSERT_FATAL(h != 0);
			CU_ASSERT_EQUAL(tq_timer_expiry(&tw, h, &expiry), 0);
			CU_ASSERT_EQUAL(expiry, due);
			CU_ASSERT(tq_timer_next_due(&tw) <= due);
			if (due > t0) {
				/* a few irregular steps, then the tick before */
				CU_ASSERT_EQUAL(advance(&tw, t0 + (due - t0) / 3), 0);
				CU_ASSERT_EQUAL(advance(&tw, due - 1), 0);
				CU_ASSERT_TRUE(tq_timer_is_armed(&tw, h));
			}
			CU_ASSERT_EQUAL(advance(&tw, due), 1);
			CU_ASSERT_EQUAL(rec.n, 1);
			CU_ASSERT_EQUAL(rec.f[0].user, 1000 + d);
			CU_ASSERT_EQUAL(rec.f[0].handle, h);
			CU_ASSERT_EQUAL(rec.f[0].now, due);
			CU_ASSERT_FALSE(tq_timer_is_armed(&tw, h));
			CU_ASSERT_EQUAL(tw.armed, 0);
			CU_ASSERT_EQUAL(advance(&tw, due + (1ull << 26)), 0);
			tq_timer_wheel_free(&tw);
		}
	}
}

/* Step one tick at a time through the first 70000 ticks: each timer fires on its tick. */
static void
test_tick_by_tick(void)
{
	static const uint64_t delays[] = {1, 7, 255, 256, 300, 511, 512, 4097, 65535, 65536, 69999};
	struct tq_timer_wheel tw;
	unsigned int seen = 0;

	wheel_init(&tw, 64);
	CU_ASSERT_EQUAL(advance(&tw, 200), 0); /* not block aligned */
	for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++)
		CU_ASSERT_FATAL(tq_timer_start(&tw, delays[i], delays[i]) != 0);
	for (uint64_t t = 201; t <= 200 + 70000; t++) {
		unsigned int n = advance(&tw, t);

		for (unsigned int k = 0; k < n; k++) {
			CU_ASSERT_EQUAL(rec.f[seen + k].user + 200, t);
		}
		seen += n;
	}
	CU_ASSERT_EQUAL(seen, sizeof(delays) / sizeof(delays[0]));
	tq_timer_wheel_free(&tw);
}

/*
 * Random starts, stops, updates, lazy extends and advances (single ticks to 2^26-tick
 * jumps) against a plain array of deadlines: after every advance, exactly the timers the
 * model says are due have fired, in deadline order, none before its deadline.
 */
struct model_timer {
	uint32_t handle; /* 0: not armed */
	uint64_t deadline;
};

#define MODEL_N 2048

static uint64_t
random_delay(void)
{
	switch (rng() % 8) {
	case 0:
		return rng() % 4;
	case 1:
	case 2:
		return rng() % 300;
	case 3:
	case 4:
		return rng() % 70000;
	case 5:
		return rng() % (1u << 20);
	case 6:
		return rng() % (1u << 25);
	default:
		return rng() % (1ull << 34);
	}
}

static uint64_t
random_step(void)
{
	switch (rng() % 8) {
	case 0:
	case 1:
		return 1;
	case 2:
	case 3:
		return rng() % 256;
	case 4:
	case 5:
		return rng() % 5000;
	case 6:
		return rng() % (1u << 18);
	default:
		return rng() % (1u << 26);
	}
}

static void
test_random_against_model(void)
{
	static struct model_timer m[MODEL_N];
	struct tq_timer_wheel tw;
	unsigned int total_fired = 0, total_started = 0, total_stopped = 0;

	rng_state = 0x243f6a8885a308d3ull;
	memset(m, 0, sizeof(m));
	wheel_init(&tw, MODEL_N);
	for (int round = 0; round < 30000; round++) {
		unsigned int ops = (unsigned int)(rng() % 16);
		uint64_t now;
		unsigned int n, live, expected = 0;

		for (unsigned int o = 0; o < ops; o++) {
			unsigned int i = (unsigned int)(rng() % MODEL_N);
			uint64_t delay = random_delay();

			if (!m[i].handle) {
				m[i].handle = tq_timer_start(&tw, i, delay);
				CU_ASSERT_FATAL(m[i].handle != 0);
				m[i].deadline = tw.now + delay;
				total_started++;
				continue;
			}
			switch (rng() % 3) {
			case 0:
				CU_ASSERT_EQUAL(tq_timer_stop(&tw, m[i].handle), 0);
				m[i].handle = 0;
				total_stopped++;
				break;
			case 1:
				CU_ASSERT_EQUAL(tq_timer_update(&tw, m[i].handle, delay), 0);
				m[i].deadline = tw.now + delay;
				break;
			default:
				CU_ASSERT_EQUAL(tq_timer_extend(&tw, m[i].handle, delay), 0);
				m[i].deadline = tw.now + delay;
				break;
			}
		}
		now = tw.now + random_step();
		for (unsigned int i = 0; i < MODEL_N; i++)
			if (m[i].handle && m[i].deadline <= now)
				expected++;
		rec.n = 0;
		n = advance(&tw, now);
		CU_ASSERT_EQUAL_FATAL(n, expected);
		for (unsigned int k = 0; k < n; k++) {
			struct model_timer *t = &m[rec.f[k].user];

			CU_ASSERT_EQUAL_FATAL(rec.f[k].handle, t->handle);
			CU_ASSERT_FATAL(t->deadline <= now);
			if (k > 0)
				CU_ASSERT_FATAL(m[rec.f[k - 1].user].deadline <= t->deadline);
		}
		/* mark fired only now: the order check above needs the deadlines */
		for (unsigned int k = 0; k < n; k++)
			m[rec.f[k].user].handle = 0;
		total_fired += n;
		live = 0;
		for (unsigned int i = 0; i < MODEL_N; i++)
			if (m[i].handle) {
				uint64_t e;

				live++;
				CU_ASSERT_EQUAL_FATAL(tq_timer_expiry(&tw, m[i].handle, &e), 0);
				CU_ASSERT_EQUAL_FATAL(e, m[i].deadline);
				CU_ASSERT_FATAL(tq_timer_next_due(&tw) <= e);
			}
		CU_ASSERT_EQUAL_FATAL(tw.armed, live);
	}
	/* whatever is left fires when time runs far enough, and nothing is lost */
	{
		unsigned int left = 0, n;

		for (unsigned int i = 0; i < MODEL_N; i++)
			left += m[i].handle != 0;
		CU_ASSERT_EQUAL(tw.armed, left);
		rec.n = 0;
		n = advance(&tw, tw.now + (1ull << 36));
		CU_ASSERT_EQUAL(n, left);
		CU_ASSERT_EQUAL(total_started, total_fired + total_stopped + left);
		CU_ASSERT_EQUAL(tw.armed, 0);
		CU_ASSERT_EQUAL(tq_timer_next_due(&tw), UINT64_MAX);
	}
	CU_ASSERT(total_fired > 1000); /* the mix really exercised expiry */
	tq_timer_wheel_free(&tw);
}

static void
test_stop_and_update_live_and_stale_handles(void)
{
	struct tq_timer_wheel tw;
	uint32_t a, b, c, reused;

	wheel_init(&tw, 4);
	a = tq_timer_start(&tw, 1, 10);
	b = tq_timer_start(&tw, 2, 20);
	c = tq_timer_start(&tw, 3, 300);
	CU_ASSERT(a && b && c && a != b && b != c);

	/* stop a live timer: it never fires; stopping again is refused */
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, a), 0);
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, a), -ENOENT);
	CU_ASSERT_EQUAL(tq_timer_update(&tw, a, 5), -ENOENT);
	CU_ASSERT_EQUAL(tq_timer_extend(&tw, a, 5), -ENOENT);
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, 0), -ENOENT);
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, 0xffffffffu), -ENOENT);
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, 7), -ENOENT); /* index beyond the pool */

	/* a's pool entry is reused: the old handle must not touch the new timer */
	reused = tq_timer_start(&tw, 4, 15);
	CU_ASSERT(reused != 0 && reused != a);
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, a), -ENOENT);
	CU_ASSERT_EQUAL(tq_timer_update(&tw, a, 1000), -ENOENT);
	CU_ASSERT_TRUE(tq_timer_is_armed(&tw, reused));

	/* update: b later (20 -> 40), c earlier (300 -> 12) */
	CU_ASSERT_EQUAL(tq_timer_update(&tw, b, 40), 0);
	CU_ASSERT_EQUAL(tq_timer_update(&tw, c, 12), 0);
	CU_ASSERT_EQUAL(advance(&tw, 11), 0);
	CU_ASSERT_EQUAL(advance(&tw, 12), 1);
	CU_ASSERT_EQUAL(rec.f[0].user, 3);
	CU_ASSERT_EQUAL(advance(&tw, 15), 1);
	CU_ASSERT_EQUAL(rec.f[1].user, 4);
	CU_ASSERT_EQUAL(advance(&tw, 39), 0);
	CU_ASSERT_EQUAL(advance(&tw, 40), 1);
	CU_ASSERT_EQUAL(rec.f[2].user, 2);
	CU_ASSERT_EQUAL(advance(&tw, 1000), 0);

	/* fired handles are stale */
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, b), -ENOENT);
	CU_ASSERT_EQUAL(tq_timer_update(&tw, c, 1), -ENOENT);
	CU_ASSERT_FALSE(tq_timer_is_armed(&tw, c));
	CU_ASSERT_EQUAL(tw.armed, 0);
	CU_ASSERT_EQUAL(advance(&tw, 100000), 0);
	tq_timer_wheel_free(&tw);
}

static void
test_pool_exhaustion_and_recovery(void)
{
	struct tq_timer_wheel tw;
	uint32_t h[8];

	wheel_init(&tw, 8);
	for (int i = 0; i < 8; i++) {
		h[i] = tq_timer_start(&tw, (uint64_t)i, 100 + (uint64_t)i);
		CU_ASSERT_FATAL(h[i] != 0);
		for (int j = 0; j < i; j++)
			CU_ASSERT(h[i] != h[j]);
	}
	CU_ASSERT_EQUAL(tq_timer_start(&tw, 99, 1), 0);
	CU_ASSERT_EQUAL(tw.armed, 8);
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, h[3]), 0);
	h[3] = tq_timer_start(&tw, 33, 50);
	CU_ASSERT(h[3] != 0);
	CU_ASSERT_EQUAL(tq_timer_start(&tw, 99, 1), 0);
	/* firing frees entries too */
	CU_ASSERT_EQUAL(advance(&tw, 101), 3); /* 33 at 50, 0 at 100, 1 at 101 */
	for (int i = 0; i < 3; i++)
		CU_ASSERT(tq_timer_start(&tw, 200, 1) != 0);
	CU_ASSERT_EQUAL(tq_timer_start(&tw, 99, 1), 0);
	CU_ASSERT_EQUAL(advance(&tw, 1000), 8);
	CU_ASSERT_EQUAL(tw.armed, 0);
	tq_timer_wheel_free(&tw);
}

static void
test_cap_leaves_the_rest_in_order(void)
{
	struct tq_timer_wheel tw;
	unsigned int total = 0, n, calls = 0;

	wheel_init(&tw, 256);
	/* 100 timers, deadlines spread over three levels, started in scrambled order */
	for (unsigned int i = 0; i < 100; i++) {
		uint64_t d = 1 + (i * 37 % 100) * 997;

		CU_ASSERT_FATAL(tq_timer_start(&tw, d, d) != 0);
	}
	n = tq_timer_advance(&tw, 200000, record, &rec, 10);
	CU_ASSERT_EQUAL(n, 10);
	CU_ASSERT_EQUAL(tq_timer_next_due(&tw), 200000); /* expired ones wait */
	/* a later timer started now must wait behind the backlog */
	CU_ASSERT_FATAL(tq_timer_start(&tw, 1ull << 40, 0) != 0);
	total = n;
	while ((n = tq_timer_advance(&tw, 200000, record, &rec, 7)) > 0) {
		CU_ASSERT(n <= 7);
		total += n;
		calls++;
	}
	CU_ASSERT_EQUAL(total, 101);
	CU_ASSERT_EQUAL(calls, 13); /* 91 at 7 per call */
	for (unsigned int k = 1; k < 100; k++)
		CU_ASSERT(rec.f[k - 1].user < rec.f[k].user);
	CU_ASSERT_EQUAL(rec.f[100].user, 1ull << 40);
	/* a cap of 0 fires nothing but still moves time */
	CU_ASSERT_FATAL(tq_timer_start(&tw, 5, 5) != 0);
	CU_ASSERT_EQUAL(tq_timer_advance(&tw, 300000, record, &rec, 0), 0);
	CU_ASSERT_EQUAL(tw.now, 300000);
	CU_ASSERT_EQUAL(advance(&tw, 300000), 1);
	tq_timer_wheel_free(&tw);
}

/* Records, and the timer with user 5 starts one due now (user 10) from its callback. */
static void
record_and_start(void *ctx, uint64_t user, uint32_t handle)
{
	record(ctx, user, handle);
	if (user == 5)
		CU_ASSERT(tq_timer_start(rec.tw, 10, 0) != 0);
}

/* What a capped call leaves behind goes before what its callbacks queued. */
static void
test_cap_backlog_before_new_expiries(void)
{
	struct tq_timer_wheel tw;

	wheel_init(&tw, 8);
	for (uint64_t d = 5; d <= 7; d++)
		CU_ASSERT_FATAL(tq_timer_start(&tw, d, d) != 0);
	CU_ASSERT_EQUAL(tq_timer_advance(&tw, 10, record_and_start, &rec, 1), 1);
	CU_ASSERT_EQUAL(tq_timer_advance(&tw, 10, record_and_start, &rec, 1), 1);
	CU_ASSERT_EQUAL(tq_timer_advance(&tw, 10, record_and_start, &rec, 5), 2);
	CU_ASSERT_EQUAL_FATAL(rec.n, 4);
	CU_ASSERT_EQUAL(rec.f[0].user, 5);
	CU_ASSERT_EQUAL(rec.f[1].user, 6);
	CU_ASSERT_EQUAL(rec.f[2].user, 7);
	CU_ASSERT_EQUAL(rec.f[3].user, 10);
	tq_timer_wheel_free(&tw);
}

static void
test_large_jumps(void)
{
	static const uint64_t due[] = {
		10, 300, 70000, (1u << 24) + 7, (1ull << 33) + 1, (1ull << 33) + 2, 1ull << 45,
	};
	struct tq_timer_wheel tw;
	const size_t n = sizeof(due) / sizeof(due[0]);

	wheel_init(&tw, 16);
	for (size_t i = n; i-- > 0;)
		CU_ASSERT_FATAL(tq_timer_start(&tw, due[i], due[i]) != 0);
	CU_ASSERT_EQUAL(advance(&tw, (1ull << 33) + 1), 5);
	CU_ASSERT_EQUAL(advance(&tw, 1ull << 44), 1);
	CU_ASSERT_EQUAL(advance(&tw, UINT64_MAX - 1), 1);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(rec.f[i].user, due[i]);
	/* deadlines past 2^64 clamp to the last tick, and still fire there */
	CU_ASSERT_FATAL(tq_timer_start(&tw, 77, UINT64_MAX) != 0);
	CU_ASSERT_EQUAL(advance(&tw, UINT64_MAX), 1);
	CU_ASSERT_EQUAL(rec.f[n].user, 77);
	tq_timer_wheel_free(&tw);
}

/* The TCP pattern: push a keepalive back on every segment, let it fire once idle. */
static void
test_lazy_extend(void)
{
	struct tq_timer_wheel tw;
	uint32_t ka, other;
	uint64_t e;

	wheel_init(&tw, 4);
	ka = tq_timer_start(&tw, 1, 100);
	for (uint64_t t = 1; t <= 5000; t++) {
		CU_ASSERT_EQUAL(advance(&tw, t), 0);
		CU_ASSERT_EQUAL(tq_timer_extend(&tw, ka, 100), 0); /* from level 0 into level 1 */
	}
	CU_ASSERT_EQUAL(tq_timer_expiry(&tw, ka, &e), 0);
	CU_ASSERT_EQUAL(e, 5100);
	CU_ASSERT_EQUAL(advance(&tw, 5099), 0);
	CU_ASSERT_EQUAL(advance(&tw, 5100), 1);
	CU_ASSERT_EQUAL(rec.f[0].now, 5100);

	/* extended from level 0 far into the overflow, then stepped through */
	ka = tq_timer_start(&tw, 2, 10);
	CU_ASSERT_EQUAL(tq_timer_extend(&tw, ka, 1ull << 30), 0);
	CU_ASSERT_EQUAL(advance(&tw, 5100 + 10), 0);
	CU_ASSERT_EQUAL(advance(&tw, 5100 + (1ull << 30) - 1), 0);
	CU_ASSERT_EQUAL(advance(&tw, 5100 + (1ull << 30)), 1);

	/* extended past another timer, then both expire in one call: still in deadline order */
	rec.n = 0;
	CU_ASSERT_EQUAL(advance(&tw, (tw.now | 255) + 1), 0); /* all three in one level-0 block */
	ka = tq_timer_start(&tw, 150, 100);
	other = tq_timer_start(&tw, 120, 120);
	CU_ASSERT_EQUAL(tq_timer_extend(&tw, ka, 150), 0);
	CU_ASSERT_EQUAL(advance(&tw, tw.now + 200), 2);
	CU_ASSERT_EQUAL(rec.f[0].user, 120);
	CU_ASSERT_EQUAL(rec.f[1].user, 150);

	/* an expired timer waiting behind the cap, extended: it leaves the queue */
	rec.n = 0;
	ka = tq_timer_start(&tw, 1, 1);
	other = tq_timer_start(&tw, 2, 1);
	CU_ASSERT_EQUAL(tq_timer_advance(&tw, tw.now + 5, record, &rec, 0), 0);
	CU_ASSERT_EQUAL(tq_timer_extend(&tw, ka, 10), 0);
	CU_ASSERT_EQUAL(tq_timer_expiry(&tw, ka, &e), 0);
	CU_ASSERT_EQUAL(e, tw.now + 10);
	CU_ASSERT_EQUAL(advance(&tw, tw.now), 1);
	CU_ASSERT_EQUAL(rec.f[0].user, 2);
	CU_ASSERT_EQUAL(advance(&tw, tw.now + 9), 0);
	CU_ASSERT_EQUAL(advance(&tw, tw.now + 1), 1);
	CU_ASSERT_EQUAL(rec.f[1].user, 1);

	/* an earlier deadline moves it for real */
	rec.n = 0;
	ka = tq_timer_start(&tw, 3, 1000);
	other = tq_timer_start(&tw, 4, 1000);
	CU_ASSERT_EQUAL(tq_timer_extend(&tw, ka, 3), 0);
	CU_ASSERT_EQUAL(advance(&tw, tw.now + 3), 1);
	CU_ASSERT_EQUAL(rec.f[0].user, 3);
	CU_ASSERT_TRUE(tq_timer_is_armed(&tw, other));
	tq_timer_wheel_free(&tw);
}

/* Callbacks that re-arm, stop a timer due in the same batch, and try to re-enter. */
struct chaos {
	struct tq_timer_wheel *tw;
	uint32_t victim;
	uint32_t periodic;
	unsigned int periodic_runs;
	unsigned int victim_runs;
	unsigned int zero_runs;
	unsigned int nested;
};

static void
chaos_cb(void *ctx, uint64_t user, uint32_t handle)
{
	struct chaos *c = ctx;

	(void)handle;
	switch (user) {
	case 1: /* periodic, every 10 ticks; also stops the victim due at the same tick */
		c->periodic_runs++;
		c->periodic = tq_timer_start(c->tw, 1, 10);
		CU_ASSERT(c->periodic != 0);
		if (c->victim) {
			CU_ASSERT_EQUAL(tq_timer_stop(c->tw, c->victim), 0);
			c->victim = 0;
		}
		/* delay 0 from a callback: next advance, not this one */
		CU_ASSERT(tq_timer_start(c->tw, 3, 0) != 0);
		c->nested += tq_timer_advance(c->tw, c->tw->now + 1000, chaos_cb, c, 100);
		break;
	case 2:
		c->victim_runs++;
		break;
	case 3:
		c->zero_runs++;
		break;
	}
}

static void
test_callbacks_may_rearm_and_stop(void)
{
	struct tq_timer_wheel tw;
	struct chaos c = {.tw = &tw};

	wheel_init(&tw, 16);
	c.periodic = tq_timer_start(&tw, 1, 10);
	c.victim = tq_timer_start(&tw, 2, 10); /* same tick, queued after the periodic one */
	CU_ASSERT_EQUAL(tq_timer_advance(&tw, 10, chaos_cb, &c, 100), 1);
	CU_ASSERT_EQUAL(c.victim_runs, 0);
	CU_ASSERT_EQUAL(c.zero_runs, 0);
	CU_ASSERT_EQUAL(c.nested, 0);
	CU_ASSERT_EQUAL(tq_timer_advance(&tw, 10, chaos_cb, &c, 100), 1);
	CU_ASSERT_EQUAL(c.zero_runs, 1);
	for (uint64_t t = 11; t <= 100; t++)
		tq_timer_advance(&tw, t, chaos_cb, &c, 100);
	CU_ASSERT_EQUAL(c.periodic_runs, 10); /* 10, 20, ..., 100 */
	CU_ASSERT_EQUAL(c.zero_runs, 9);      /* the one started at 100 waits for the next call */
	CU_ASSERT_EQUAL(tw.armed, 2);
	CU_ASSERT_EQUAL(tq_timer_advance(&tw, 100, chaos_cb, &c, 100), 1);
	CU_ASSERT_EQUAL(c.zero_runs, 10);
	CU_ASSERT_EQUAL(c.nested, 0);
	CU_ASSERT_EQUAL(tw.armed, 1);
	tq_timer_wheel_free(&tw);
}

static void
test_next_due(void)
{
	struct tq_timer_wheel tw;
	uint32_t h;

	wheel_init(&tw, 4);
	CU_ASSERT_EQUAL(tq_timer_next_due(&tw), UINT64_MAX);
	advance(&tw, 1000);
	h = tq_timer_start(&tw, 1, 5000);
	CU_ASSERT(tq_timer_next_due(&tw) > 1000 && tq_timer_next_due(&tw) <= 6000);
	CU_ASSERT_FATAL(tq_timer_start(&tw, 2, 7) != 0);
	CU_ASSERT_EQUAL(tq_timer_next_due(&tw), 1007); /* level 0: exact */
	advance(&tw, 1007);
	CU_ASSERT_EQUAL(tq_timer_stop(&tw, h), 0);
	CU_ASSERT_EQUAL(tq_timer_next_due(&tw), UINT64_MAX);
	tq_timer_wheel_free(&tw);
}

/* The production allocation path: rte_zmalloc_socket() under an EAL without hugepages. */
static void
test_eal_allocation(void)
{
	struct tq_timer_wheel tw;
	unsigned int total = 0;

	CU_ASSERT_EQUAL_FATAL(tq_test_eal_init(), 0);
	CU_ASSERT_EQUAL_FATAL(tq_timer_wheel_init(&tw, 100000, 1000000, SOCKET_ID_ANY), 0);
	CU_ASSERT_FALSE(tw.libc);
	memset(&rec, 0, sizeof(rec));
	rec.tw = &tw;
	for (uint64_t i = 0; i < 100000; i++)
		CU_ASSERT_FATAL(tq_timer_start(&tw, i, i % 5000) != 0);
	CU_ASSERT_EQUAL(tq_timer_start(&tw, 0, 1), 0);
	while (tw.armed) {
		total += tq_timer_advance(&tw, tw.now + 1, record, &rec, MAX_FIRED / 2);
		rec.n = 0;
	}
	CU_ASSERT_EQUAL(total, 100000);
	tq_timer_wheel_free(&tw);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_init_rejects_bad_sizes),
		TQ_TEST(test_single_timer_fires_exactly_on_its_tick),
		TQ_TEST(test_tick_by_tick),
		TQ_TEST(test_random_against_model),
		TQ_TEST(test_stop_and_update_live_and_stale_handles),
		TQ_TEST(test_pool_exhaustion_and_recovery),
		TQ_TEST(test_cap_leaves_the_rest_in_order),
		TQ_TEST(test_cap_backlog_before_new_expiries),
		TQ_TEST(test_large_jumps),
		TQ_TEST(test_lazy_extend),
		TQ_TEST(test_callbacks_may_rearm_and_stop),
		TQ_TEST(test_next_due),
		TQ_TEST(test_eal_allocation),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("timer", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
