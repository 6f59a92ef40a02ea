#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_debug.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_malloc.h>

#include "dataplane/net/tq_net.h"
#include "dataplane/tq_counters.h"
#include "dataplane/tq_worker.h"
#include "tq_nsim.h"

/* One frame waiting in the delay line: ordered by due time, then by arrival. */
struct nsim_slot {
	uint64_t due; /* TSC */
	uint64_t seq;
	struct rte_mbuf *m;
};

struct tq_nsim {
	/* settings: immutable after tq_nsim_create */
	struct tq_nsim_conf conf;
	bool enabled;
	bool line;            /* delay, jitter or rate: frames may wait in the delay line */
	uint64_t p_drop;      /* probabilities scaled to 2^32 (1.0 = 2^32: always) */
	uint64_t p_dup;
	uint64_t p_reorder;
	uint64_t p_corrupt;
	uint64_t delay_tsc;
	uint64_t jitter_tsc;
	uint64_t hold_tsc;    /* longest wait of a reordered frame */
	uint64_t rate_bps;    /* 0 = no rate limit */
	uint64_t burst_tsc;   /* rate-limit burst tolerance */
	uint64_t hz;
	uint32_t cap;         /* delay-line capacity */

	/* state: written by the owning worker only */
	uint64_t rng;
	uint64_t tat;         /* rate limit: theoretical arrival time (GCRA), TSC */
	uint64_t seq;
	struct rte_mbuf *held; /* reorder slot */
	uint64_t held_until;
	uint32_t n;           /* frames in the delay line */

	/* handover: written once by the worker that installs this carrier, read by control
	 * after the acknowledgement (see tq_nsim_post) */
	struct tq_nsim *retired;

	struct nsim_slot heap[]; /* min-heap of cap slots */
};

const char *const tq_nsim_keys[] = {
	"drop", "duplicate", "reorder", "corrupt", "delay_us", "jitter_us", "rate_mbps", "seed",
	"queue", NULL,
};

const char *
tq_nsim_dir_name(enum tq_nsim_dir dir)
{
	return dir == TQ_NSIM_RX ? "rx" : "tx";
}

bool
tq_nsim_conf_enabled(const struct tq_nsim_conf *c)
{
	return c->drop > 0 || c->duplicate > 0 || c->reorder > 0 || c->corrupt > 0 ||
	       c->delay_us || c->jitter_us || c->rate_mbps > 0;
}

static int
parse_fraction(const char *s, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= 0 && v <= hi)) /* NaN fails too */
		return -EINVAL;
	*out = v;
	return 0;
}

static int
parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end != '\0' || strchr(s, '-') || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

int
tq_nsim_conf_set(struct tq_nsim_conf *c, const char *key, const char *value)
{
	uint64_t v;
	int ret;

	if (strcmp(key, "drop") == 0)
		return parse_fraction(value, 1, &c->drop);
	if (strcmp(key, "duplicate") == 0)
		return parse_fraction(value, 1, &c->duplicate);
	if (strcmp(key, "reorder") == 0)
		return parse_fraction(value, 1, &c->reorder);
	if (strcmp(key, "corrupt") == 0)
		return parse_fraction(value, 1, &c->corrupt);
	if (strcmp(key, "rate_mbps") == 0)
		return parse_fraction(value, TQ_NSIM_RATE_MAX_MBPS, &c->rate_mbps);
	if (strcmp(key, "delay_us") == 0) {
		ret = parse_uint(value, 0, TQ_NSIM_DELAY_MAX_US, &v);
		if (ret == 0)
			c->delay_us = (uint32_t)v;
		return ret;
	}
	if (strcmp(key, "jitter_us") == 0) {
		ret = parse_uint(value, 0, TQ_NSIM_DELAY_MAX_US, &v);
		if (ret == 0)
			c->jitter_us = (uint32_t)v;
		return ret;
	}
	if (strcmp(key, "queue") == 0) {
		ret = parse_uint(value, 1, TQ_NSIM_QUEUE_MAX, &v);
		if (ret == 0)
			c->queue = (uint32_t)v;
		return ret;
	}
	if (strcmp(key, "seed") == 0)
		return parse_uint(value, 0, UINT64_MAX, &c->seed);
	return -ENOENT;
}

int
tq_nsim_conf_get(const struct tq_nsim_conf *c, const char *key, char *buf, size_t len)
{
	if (strcmp(key, "drop") == 0)
		snprintf(buf, len, "%.6g", c->drop);
	else if (strcmp(key, "duplicate") == 0)
		snprintf(buf, len, "%.6g", c->duplicate);
	else if (strcmp(key, "reorder") == 0)
		snprintf(buf, len, "%.6g", c->reorder);
	else if (strcmp(key, "corrupt") == 0)
		snprintf(buf, len, "%.6g", c->corrupt);
	else if (strcmp(key, "rate_mbps") == 0)
		snprintf(buf, len, "%.6g", c->rate_mbps);
	else if (strcmp(key, "delay_us") == 0)
		snprintf(buf, len, "%" PRIu32, c->delay_us);
	else if (strcmp(key, "jitter_us") == 0)
		snprintf(buf, len, "%" PRIu32, c->jitter_us);
	else if (strcmp(key, "queue") == 0)
		snprintf(buf, len, "%" PRIu32, c->queue ? c->queue : TQ_NSIM_QUEUE_DEFAULT);
	else if (strcmp(key, "seed") == 0)
		snprintf(buf, len, "%" PRIu64, c->seed);
	else
		return -ENOENT;
	return 0;
}

int
tq_nsim_parse_section(const char *section, unsigned int max_ports, unsigned int *port,
		      enum tq_nsim_dir *dir)
{
	const char *p = section + 9;
	unsigned long v;
	char *end;

	if (strncmp(section, "nsim.", 5) != 0 && strcmp(section, "nsim") != 0)
		return -ENOENT;
	if (strncmp(section, "nsim.port", 9) != 0 || *p < '0' || *p > '9')
		return -EINVAL;
	v = strtoul(p, &end, 10);
	if (v >= max_ports)
		return -EINVAL;
	if (strcmp(end, ".rx") == 0)
		*dir = TQ_NSIM_RX;
	else if (strcmp(end, ".tx") == 0)
		*dir = TQ_NSIM_TX;
	else
		return -EINVAL;
	*port = (unsigned int)v;
	return 0;
}

/* splitmix64: tiny, fast, and every seed (0 included) gives a full-period sequence. */
static inline uint64_t
nsim_rand(struct tq_nsim *ns)
{
	uint64_t z = (ns->rng += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, range) without modulo bias worth the name (Lemire's multiply-shift). */
static inline uint64_t
nsim_uniform(struct tq_nsim *ns, uint64_t range)
{
	return (uint64_t)(((unsigned __int128)nsim_rand(ns) * range) >> 64);
}

static inline bool
nsim_chance(struct tq_nsim *ns, uint64_t p32)
{
	return (nsim_rand(ns) >> 32) < p32;
}

static uint64_t
prob32(double p)
{
	return p >= 1 ? UINT64_C(1) << 32 : (uint64_t)(p * 4294967296.0);
}

struct tq_nsim *
tq_nsim_create(const struct tq_nsim_conf *c, uint16_t worker_id, int socket)
{
	uint32_t cap = c->queue ? c->queue : TQ_NSIM_QUEUE_DEFAULT;
	uint64_t hz = rte_get_tsc_hz();
	struct tq_nsim *ns;
	uint64_t mix;

	if (cap > TQ_NSIM_QUEUE_MAX || !(c->rate_mbps >= 0 && c->rate_mbps <= TQ_NSIM_RATE_MAX_MBPS)) {
		errno = EINVAL;
		return NULL;
	}
	ns = rte_zmalloc_socket("tq_nsim", sizeof(*ns) + (size_t)cap * sizeof(ns->heap[0]),
				RTE_CACHE_LINE_SIZE, socket);
	if (!ns) {
		errno = ENOMEM;
		return NULL;
	}
	ns->conf = *c;
	ns->enabled = tq_nsim_conf_enabled(c);
	ns->p_drop = prob32(c->drop);
	ns->p_dup = prob32(c->duplicate);
	ns->p_reorder = prob32(c->reorder);
	ns->p_corrupt = prob32(c->corrupt);
	ns->hz = hz;
	ns->delay_tsc = (uint64_t)c->delay_us * hz / 1000000;
	ns->jitter_tsc = (uint64_t)c->jitter_us * hz / 1000000;
	ns->hold_tsc = (uint64_t)TQ_NSIM_REORDER_HOLD_US * hz / 1000000;
	ns->rate_bps = c->rate_mbps > 0 ? (uint64_t)(c->rate_mbps * 1e6) : 0;
	if (c->rate_mbps > 0 && ns->rate_bps == 0)
		ns->rate_bps = 1;
	ns->burst_tsc = (uint64_t)TQ_NSIM_BURST_US * hz / 1000000;
	ns->line = ns->delay_tsc || ns->jitter_tsc || ns->rate_bps;
	ns->cap = cap;
	/* Same seed, different workers: different but reproducible streams. */
	ns->rng = c->seed ^ ((uint64_t)worker_id << 48);
	mix = nsim_rand(ns);
	ns->rng = mix;
	return ns;
}

void
tq_nsim_free(struct tq_nsim *ns)
{
	if (!ns)
		return;
	for (uint32_t i = 0; i < ns->n; i++)
		rte_pktmbuf_free(ns->heap[i].m);
	rte_pktmbuf_free(ns->held);
	rte_free(ns);
}

bool
tq_nsim_enabled(const struct tq_nsim *ns)
{
	return ns->enabled;
}

const struct tq_nsim_conf *
tq_nsim_conf(const struct tq_nsim *ns)
{
	return &ns->conf;
}

struct tq_nsim *
tq_nsim_retired(const struct tq_nsim *ns)
{
	return ns->retired;
}

uint32_t
tq_nsim_held(const struct tq_nsim *ns)
{
	return ns->n + (ns->held != NULL);
}

static inline bool
slot_before(const struct nsim_slot *a, const struct nsim_slot *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
heap_push(struct tq_nsim *ns, uint64_t due, struct rte_mbuf *m)
{
	struct nsim_slot s = {.due = due, .seq = ns->seq++, .m = m};
	uint32_t i = ns->n++;

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!slot_before(&s, &ns->heap[parent]))
			break;
		ns->heap[i] = ns->heap[parent];
		i = parent;
	}
	ns->heap[i] = s;
}

static struct rte_mbuf *
heap_pop(struct tq_nsim *ns)
{
	struct rte_mbuf *m = ns->heap[0].m;
	struct nsim_slot last = ns->heap[--ns->n];
	uint32_t i = 0;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= ns->n)
			break;
		if (c + 1 < ns->n && slot_before(&ns->heap[c + 1], &ns->heap[c]))
			c++;
		if (!slot_before(&ns->heap[c], &last))
			break;
		ns->heap[i] = ns->heap[c];
		i = c;
	}
	ns->heap[i] = last;
	return m;
}

/* Delay line and rate limit: @m leaves now (into @out) or waits, or is dropped when full. */
static void
nsim_schedule(struct tq_nsim *ns, struct rte_mbuf *m, uint64_t now, struct rte_mbuf **out,
	      uint16_t *nout, uint64_t *ctr)
{
	uint64_t due, dep, tat = ns->tat;

	if (!ns->line) {
		out[(*nout)++] = m;
		return;
	}
	due = now + ns->delay_tsc;
	if (ns->jitter_tsc) {
		uint64_t r = nsim_uniform(ns, 2 * ns->jitter_tsc + 1);

		/* due += r - jitter, but never before now */
		if (r >= ns->jitter_tsc)
			due += r - ns->jitter_tsc;
		else
			due = ns->jitter_tsc - r > ns->delay_tsc ? now
								 : due - (ns->jitter_tsc - r);
	}
	dep = due;
	if (ns->rate_bps) {
		/* GCRA (a token bucket in time units): the frame leaves when the bucket,
		 * ns->burst_tsc deep, has room for its bits. */
		uint64_t cost = (uint64_t)((unsigned __int128)rte_pktmbuf_pkt_len(m) * 8 * ns->hz /
					   ns->rate_bps);

		if (tat < due)
			tat = due;
		if (tat > due + ns->burst_tsc)
			dep = tat - ns->burst_tsc;
		tat += cost;
	}
	/* Leave now only when nothing waits: a frame must not overtake earlier due ones. */
	if (dep <= now && ns->n == 0) {
		ns->tat = tat;
		out[(*nout)++] = m;
		return;
	}
	if (unlikely(ns->n == ns->cap)) {
		ctr[TQ_CTR_nsim_queue_full]++;
		rte_pktmbuf_free(m);
		return;
	}
	ns->tat = tat;
	if (dep > due)
		ctr[TQ_CTR_nsim_rate_limited]++;
	ctr[TQ_CTR_nsim_delayed]++;
	heap_push(ns, dep, m);
}

/* Reorder: hold @m back, or send it and then the frame held before it. */
static void
nsim_reorder(struct tq_nsim *ns, struct rte_mbuf *m, uint64_t now, struct rte_mbuf **out,
	     uint16_t *nout, uint64_t *ctr)
{
	struct rte_mbuf *held = ns->held;

	if (ns->p_reorder && !held && nsim_chance(ns, ns->p_reorder)) {
		ns->held = m;
		ns->held_until = now + ns->hold_tsc;
		return;
	}
	nsim_schedule(ns, m, now, out, nout, ctr);
	if (held) {
		ns->held = NULL;
		ctr[TQ_CTR_nsim_reordered]++;
		nsim_schedule(ns, held, now, out, nout, ctr);
	}
}

/* May we write @m's bytes? Not when a segment is shared (a clone the TCP stack keeps for
 * retransmission, say): then corruption would leak into the other copy. */
static bool
nsim_writable(const struct rte_mbuf *m)
{
	for (; m; m = m->next)
		if (!RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1)
			return false;
	return true;
}

/*
 * A TX frame whose IPv4 header checksum the port would fill: fill it now, so that the
 * receiver catches a flipped bit as on a real wire instead of the port covering it with a
 * fresh checksum. (L4 checksum offloads, which nothing requests today, are left alone.)
 */
static void
nsim_tx_csum_now(struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip;

	if (!(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) ||
	    rte_pktmbuf_data_len(m) < m->l2_len + sizeof(*ip))
		return;
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, m->l2_len);
	if (rte_pktmbuf_data_len(m) < m->l2_len + rte_ipv4_hdr_len(ip))
		return;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	m->ol_flags &= ~RTE_MBUF_F_TX_IP_CKSUM;
}

/* Flip one random bit beyond the Ethernet header. Returns the frame to go on with. */
static struct rte_mbuf *
nsim_corrupt(struct tq_nsim *ns, struct rte_mbuf *m, uint64_t *ctr)
{
	uint32_t len = rte_pktmbuf_pkt_len(m), off;
	struct rte_mbuf *seg;
	unsigned int bit;

	if (len <= RTE_ETHER_HDR_LEN)
		return m; /* nothing beyond the header to corrupt */
	if (!nsim_writable(m)) {
		struct rte_mbuf *c = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);

		if (!c) {
			ctr[TQ_CTR_mbuf_alloc_failed]++;
			return m;
		}
		rte_pktmbuf_free(m);
		m = c;
	}
	nsim_tx_csum_now(m);
	off = RTE_ETHER_HDR_LEN + (uint32_t)nsim_uniform(ns, len - RTE_ETHER_HDR_LEN);
	bit = (unsigned int)(nsim_rand(ns) & 7);
	for (seg = m; off >= seg->data_len; seg = seg->next)
		off -= seg->data_len;
	*rte_pktmbuf_mtod_offset(seg, uint8_t *, off) ^= (uint8_t)(1u << bit);
	/* A NIC's "checksum good" no longer holds: make the stack check for itself. */
	m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
	ctr[TQ_CTR_nsim_corrupted]++;
	return m;
}

uint16_t
tq_nsim_input(struct tq_nsim *ns, struct rte_mbuf **pkts, uint16_t n, uint64_t now,
	      struct rte_mbuf **out, uint64_t *ctr)
{
	uint16_t nout = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i], *dup = NULL;

		if (ns->p_drop && nsim_chance(ns, ns->p_drop)) {
			ctr[TQ_CTR_nsim_dropped]++;
			rte_pktmbuf_free(m);
			continue;
		}
		if (ns->p_dup && nsim_chance(ns, ns->p_dup)) {
			dup = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
			if (dup)
				ctr[TQ_CTR_nsim_duplicated]++;
			else
				ctr[TQ_CTR_mbuf_alloc_failed]++;
		}
		if (ns->p_corrupt && nsim_chance(ns, ns->p_corrupt))
			m = nsim_corrupt(ns, m, ctr);
		nsim_reorder(ns, m, now, out, &nout, ctr);
		if (dup)
			nsim_reorder(ns, dup, now, out, &nout, ctr);
	}
	return nout;
}

uint16_t
tq_nsim_release(struct tq_nsim *ns, uint64_t now, struct rte_mbuf **out, uint16_t cap,
		uint64_t *ctr)
{
	uint16_t n = 0;

	if (cap == 0)
		return 0;
	if (ns->held && now >= ns->held_until) {
		struct rte_mbuf *m = ns->held;

		ns->held = NULL; /* no later frame came: it leaves late, not reordered */
		nsim_schedule(ns, m, now, out, &n, ctr);
	}
	while (n < cap && ns->n && ns->heap[0].due <= now)
		out[n++] = heap_pop(ns);
	return n;
}

uint16_t
tq_nsim_flush(struct tq_nsim *ns, struct rte_mbuf **out, uint16_t cap)
{
	uint16_t n = 0;

	while (n < cap && ns->n)
		out[n++] = heap_pop(ns);
	if (n < cap && ns->held) {
		out[n++] = ns->held;
		ns->held = NULL;
	}
	return n;
}

/* ---- worker side ---- */

static void
nsim_set(struct tq_worker *w, enum tq_nsim_dir dir, uint16_t port, struct tq_nsim *ns)
{
	w->nsim_active -= w->nsim[dir][port] != NULL;
	w->nsim[dir][port] = ns;
	w->nsim_active += ns != NULL;
}

int
tq_nsim_worker_init(struct tq_worker *w, const struct tq_nsim_conf conf[][TQ_NSIM_DIRS],
		    unsigned int nb_ports)
{
	for (unsigned int p = 0; p < nb_ports && p < TQ_MAX_PORTS; p++) {
		for (unsigned int d = 0; d < TQ_NSIM_DIRS; d++) {
			struct tq_nsim *ns;

			if (!tq_nsim_conf_enabled(&conf[p][d]))
				continue;
			ns = tq_nsim_create(&conf[p][d], w->id, w->socket);
			if (!ns) {
				int ret = -errno;

				tq_nsim_worker_fini(w);
				return ret;
			}
			nsim_set(w, d, (uint16_t)p, ns);
		}
	}
	return 0;
}

void
tq_nsim_worker_fini(struct tq_worker *w)
{
	for (unsigned int d = 0; d < TQ_NSIM_DIRS; d++)
		for (uint16_t p = 0; p < TQ_MAX_PORTS; p++) {
			tq_nsim_free(w->nsim[d][p]);
			nsim_set(w, d, p, NULL);
		}
}

/* Hand frames that left an instance on: RX to the net stack, TX to the port. */
static void
nsim_deliver(struct tq_worker *w, enum tq_nsim_dir dir, uint16_t port, struct rte_mbuf **pkts,
	     uint16_t n)
{
	if (dir == TQ_NSIM_RX)
		for (uint16_t i = 0; i < n; i++)
			tq_net_input(w, port, pkts[i]);
	else
		tq_worker_tx_burst(w, port, pkts, n);
}

void
tq_nsim_worker_rx(struct tq_worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mbuf *out[TQ_NSIM_OUT_MAX(TQ_BURST_MAX)];
	uint16_t nout;

	RTE_ASSERT(n <= TQ_BURST_MAX);
	nout = tq_nsim_input(w->nsim[TQ_NSIM_RX][port], pkts, n, w->now, out, w->ctr);
	nsim_deliver(w, TQ_NSIM_RX, port, out, nout);
}

void
tq_nsim_worker_tx(struct tq_worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mbuf *out[TQ_NSIM_OUT_MAX(TQ_BURST_MAX)];
	uint16_t nout;

	RTE_ASSERT(n <= TQ_BURST_MAX);
	nout = tq_nsim_input(w->nsim[TQ_NSIM_TX][port], pkts, n, w->now, out, w->ctr);
	nsim_deliver(w, TQ_NSIM_TX, port, out, nout);
}

unsigned int
tq_nsim_worker_poll(struct tq_worker *w)
{
	struct rte_mbuf *out[TQ_BURST_MAX];
	unsigned int work = 0;

	for (uint16_t p = 0; p < tq_nb_ports; p++) {
		for (unsigned int d = 0; d < TQ_NSIM_DIRS; d++) {
			struct tq_nsim *ns = w->nsim[d][p];
			uint16_t n;

			if (!ns)
				continue;
			n = tq_nsim_release(ns, w->now, out, TQ_BURST_MAX, w->ctr);
			nsim_deliver(w, d, p, out, n);
			work += n;
		}
	}
	return work;
}

int
tq_nsim_post(struct tq_worker *w, uint16_t port, enum tq_nsim_dir dir, struct tq_nsim *ns)
{
	struct tq_ring_msg msg = {
		.type = TQ_MSG_NSIM,
		.a = (uint32_t)port | (uint32_t)dir << 16,
		.b = (uint64_t)(uintptr_t)ns,
	};

	if (port >= TQ_MAX_PORTS || dir >= TQ_NSIM_DIRS || !ns)
		return -EINVAL;
	ns->retired = NULL;
	return tq_worker_post(w, &msg, NULL);
}

void
tq_nsim_worker_apply(struct tq_worker *w, const struct tq_ring_msg *m)
{
	struct tq_nsim *next = (struct tq_nsim *)(uintptr_t)m->b;
	enum tq_nsim_dir dir = (enum tq_nsim_dir)(m->a >> 16);
	uint16_t port = (uint16_t)(m->a & 0xffff);
	struct rte_mbuf *out[TQ_BURST_MAX];
	struct tq_nsim *old;
	uint16_t n;

	/* tq_nsim_post() checked these; a bad message is a bug, not input. */
	RTE_VERIFY(next && port < TQ_MAX_PORTS && dir < TQ_NSIM_DIRS);
	old = w->nsim[dir][port];
	nsim_set(w, dir, port, next->enabled ? next : NULL);
	/* What the old settings held leaves now; the new ones start empty. */
	if (old)
		while ((n = tq_nsim_flush(old, out, TQ_BURST_MAX)) > 0)
			nsim_deliver(w, dir, port, out, n);
	next->retired = old;
	w->ctr[TQ_CTR_nsim_updates]++;
	/* Publish: after this store the poster owns @old (and @next when not installed). */
	__atomic_store_n(&w->nsim_acked, w->nsim_acked + 1, __ATOMIC_RELEASE);
}
