/*
 * The simulated wire of tq_wire.h: frames in flight in a list sorted by arrival time,
 * impairments drawn from a PRNG per direction, and the event loop that moves simulated
 * time from one frame or timer deadline to the next.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dataplane/net/tq_eth.h"
#include "dataplane/net/tq_ipv4.h"
#include "dataplane/net/tq_net.h"
#include "dataplane/net/tq_tcp_codec.h"
#include "dataplane/net/tq_tcp_var.h"
#include "dataplane/tq_counters.h"
#include "dataplane/tq_worker.h"
#include "tq_wire.h"

#define MAX_RULES 16
#define MAX_WAKES 16
#define BURST 32
#define TCP_OFF (TQ_ETH_HDR_LEN + TQ_IPV4_HDR_LEN)
#define SPINS_MAX 100000 /* events at one instant before we call it a livelock */

struct frame {
	struct frame *next;
	uint64_t due_us;
	uint16_t len;
	uint8_t data[];
};

struct tq_wire {
	struct tq_wire_env env;
	struct rte_ether_addr mac;

	/* time: tick base_tick is simulated time 0 */
	uint64_t base_tick, tsc_per_tick;
	uint64_t now_us;
	uint64_t wakes[MAX_WAKES];
	unsigned int nb_wakes;

	/* frames in flight, sorted by due_us, equal times in the order they were queued */
	struct frame *head, *tail;
	unsigned int in_flight;

	struct tq_wire_link link[TQ_WIRE_SIDES];
	uint64_t rng[TQ_WIRE_SIDES];
	struct tq_wire_stats st[TQ_WIRE_SIDES];
	struct tq_wire_rule rules[MAX_RULES];
	struct tq_wire_rule_stats rule_st[MAX_RULES];
	unsigned int nb_rules;

	/* what the SYNs told us, per sending side */
	bool have_isn[TQ_WIRE_SIDES];
	uint32_t isn[TQ_WIRE_SIDES];
	uint32_t top[TQ_WIRE_SIDES];  /* highest stream offset sent so far (retransmissions) */
	bool ws_offered[TQ_WIRE_SIDES];
	uint8_t ws[TQ_WIRE_SIDES];
	uint16_t client_port;         /* host order, 0 = no SYN seen yet */

	struct tq_wire_history hist[TQ_WIRE_SIDES];
	bool tcb_seen[TQ_WIRE_SIDES];
	bool trace;                   /* TQ_WIRE_TRACE set: every segment to stderr */
	char err[512];
};

/* ---------------------------------------------------------------- small helpers */

static uint64_t
rng_next(uint64_t *s)
{
	/* splitmix64: good enough, and one line of state */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool
chance(uint64_t *s, uint32_t ppm)
{
	return ppm && rng_next(s) % 1000000u < ppm;
}

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void __attribute__((format(printf, 2, 3)))
set_err(struct tq_wire *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
}

static void
set_time(struct tq_wire *x, uint64_t us)
{
	x->now_us = us;
	x->env.w->now = x->base_tick * x->tsc_per_tick + us * x->tsc_per_tick / 1000;
}

static struct tq_tcp_key
side_key(const struct tq_wire *x, enum tq_wire_side side)
{
	uint16_t cport = rte_cpu_to_be_16(x->client_port);
	uint16_t sport = rte_cpu_to_be_16(x->env.server_port);
	struct tq_tcp_key k = {.raddr = x->env.addr, .laddr = x->env.addr};

	k.lport = side == TQ_WIRE_CLIENT ? cport : sport;
	k.rport = side == TQ_WIRE_CLIENT ? sport : cport;
	return k;
}

struct tq_tcp_conn *
tq_wire_conn(const struct tq_wire *x, enum tq_wire_side side)
{
	struct tq_tcp_key k;

	if (!x->client_port)
		return NULL;
	k = side_key(x, side);
	return tq_tcp_lookup(x->env.w, &k);
}

uint16_t
tq_wire_client_port(const struct tq_wire *x)
{
	return x->client_port;
}

/* Record the state of both TCBs when it changed. */
static void
observe(struct tq_wire *x)
{
	for (int s = 0; s < TQ_WIRE_SIDES; s++) {
		struct tq_tcp_conn *c = tq_wire_conn(x, (enum tq_wire_side)s);
		struct tq_wire_history *h = &x->hist[s];
		uint8_t state;

		if (c) {
			x->tcb_seen[s] = true;
			state = c->state;
			if (c->snd_max - c->snd_una > x->st[s].max_flight)
				x->st[s].max_flight = c->snd_max - c->snd_una;
		} else if (x->tcb_seen[s]) {
			state = TQ_TCP_CLOSED;
		} else {
			continue;
		}
		if ((h->n == 0 || h->s[h->n - 1] != state) && h->n < TQ_WIRE_HIST_MAX)
			h->s[h->n++] = state;
	}
}

/* ---------------------------------------------------------------- frames in flight */

static struct frame *
frame_new(const uint8_t *data, uint16_t len)
{
	struct frame *f = malloc(sizeof(*f) + len);

	if (!f)
		abort();
	f->next = NULL;
	f->len = len;
	memcpy(f->data, data, len);
	return f;
}

/* Insert @f by due time, after every frame due at the same time or earlier. */
static void
enqueue(struct tq_wire *x, struct frame *f)
{
	struct frame **pp;

	x->in_flight++;
	if (!x->tail || x->tail->due_us <= f->due_us) {
		if (x->tail)
			x->tail->next = f;
		else
			x->head = f;
		x->tail = f;
		return;
	}
	for (pp = &x->head; *pp && (*pp)->due_us <= f->due_us; pp = &(*pp)->next)
		;
	f->next = *pp;
	*pp = f;
}

static struct frame *
dequeue_due(struct tq_wire *x)
{
	struct frame *f = x->head;

	if (!f || f->due_us > x->now_us)
		return NULL;
	x->head = f->next;
	if (!x->head)
		x->tail = NULL;
	x->in_flight--;
	f->next = NULL;
	return f;
}

/* ---------------------------------------------------------------- impairments */

static void
fix_tcp_csum(uint8_t *d, uint16_t len)
{
	uint32_t src, dst;
	uint16_t csum = 0;

	memcpy(&src, d + TQ_ETH_HDR_LEN + 12, 4);
	memcpy(&dst, d + TQ_ETH_HDR_LEN + 16, 4);
	memcpy(d + TCP_OFF + 16, &csum, 2);
	csum = tq_tcp_checksum(src, dst, d + TCP_OFF, len - TCP_OFF);
	memcpy(d + TCP_OFF + 16, &csum, 2);
}

static void
fix_ip_csum(uint8_t *d)
{
	uint8_t *ip = d + TQ_ETH_HDR_LEN;
	uint32_t sum = 0;

	put_be16(ip + 10, 0);
	for (unsigned int i = 0; i < TQ_IPV4_HDR_LEN; i += 2)
		sum += be16(ip + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put_be16(ip + 10, (uint16_t)~sum);
}

/* The shift that applies to windows @from advertises (RFC 7323: both SYNs offered it). */
static uint8_t
win_shift(const struct tq_wire *x, enum tq_wire_side from)
{
	return x->ws_offered[0] && x->ws_offered[1] ? x->ws[from] : 0;
}

/* Cut @f short. Returns true when what is left is a valid (shorter) TCP segment. */
static bool
truncate_frame(struct tq_wire *x, enum tq_wire_side from, struct frame *f)
{
	uint64_t r = rng_next(&x->rng[from]);
	uint16_t len = (uint16_t)(r % f->len);
	uint32_t src, dst;
	uint16_t tlen;

	f->len = len;
	/* half the time fix the IPv4 total length, so that TCP itself sees the short segment */
	if (!((r >> 32) & 1) || len < TCP_OFF)
		return false;
	tlen = (uint16_t)(len - TCP_OFF);
	put_be16(f->data + TQ_ETH_HDR_LEN + 2, (uint16_t)(len - TQ_ETH_HDR_LEN));
	fix_ip_csum(f->data);
	memcpy(&src, f->data + TQ_ETH_HDR_LEN + 12, 4);
	memcpy(&dst, f->data + TQ_ETH_HDR_LEN + 16, 4);
	return tlen >= TQ_TCP_HDR_LEN && (f->data[TCP_OFF + 12] >> 4) * 4u <= tlen &&
	       (f->data[TCP_OFF + 12] >> 4) >= 5 &&
	       tq_tcp_checksum_ok(src, dst, f->data + TCP_OFF, tlen);
}

static bool
rule_matches(const struct tq_wire *x, const struct tq_wire_rule *r, enum tq_wire_side from,
	     const struct tq_tcp_view *v)
{
	uint32_t off;

	if (r->from != from || (v->flags & r->flags_mask) != r->flags)
		return false;
	if (r->data_only && v->payload_len == 0)
		return false;
	if (r->match_byte) {
		if (!x->have_isn[from] || v->payload_len == 0)
			return false;
		off = v->seq - (x->isn[from] + 1);
		if (!(r->byte - off < v->payload_len))
			return false;
	}
	return true;
}

/* Learn from a segment @from sent; returns true when a scripted rule drops it. */
static bool
inspect(struct tq_wire *x, enum tq_wire_side from, const struct tq_tcp_view *v)
{
	struct tq_wire_stats *st = &x->st[from];
	bool drop = false;

	if (v->flags & TQ_TCP_SYN) {
		if (from == TQ_WIRE_CLIENT && !(v->flags & TQ_TCP_ACK)) {
			x->client_port = v->src_port;
			/* a new connection: forget what the last one negotiated */
			x->have_isn[TQ_WIRE_SERVER] = false;
			x->ws_offered[TQ_WIRE_SERVER] = false;
		}
		x->have_isn[from] = true;
		x->isn[from] = v->seq;
		x->top[from] = 0;
		x->ws_offered[from] = (v->opts.present & TQ_TCP_OPT_WSCALE) != 0;
		x->ws[from] = RTE_MIN(v->opts.wscale, TQ_TCP_WSCALE_MAX);
	} else {
		uint32_t win = (uint32_t)v->window << win_shift(x, from);

		if (win > st->max_window)
			st->max_window = win;
	}
	if (v->payload_len) {
		st->data_segs++;
		st->data_bytes += v->payload_len;
		if (x->have_isn[from]) {
			uint32_t end = v->seq + (uint32_t)v->payload_len - (x->isn[from] + 1);

			if (end <= x->top[from] && end < (1u << 31))
				st->retransmits++;
			else
				x->top[from] = end;
		}
	}
	for (unsigned int i = 0; i < x->nb_rules; i++) {
		const struct tq_wire_rule *r = &x->rules[i];
		struct tq_wire_rule_stats *rs = &x->rule_st[i];

		if (!rule_matches(x, r, from, v))
			continue;
		if (rs->matched < TQ_WIRE_RULE_TIMES)
			rs->t_us[rs->matched] = x->now_us;
		rs->matched++;
		if (!drop && rs->matched > r->skip && (r->count == 0 || rs->dropped < r->count)) {
			rs->dropped++;
			drop = true;
		}
	}
	if (drop)
		st->rule_dropped++;
	return drop;
}

/* TQ_WIRE_TRACE=1: one line per segment sent, sequence numbers relative to the ISNs. */
static void
trace_seg(const struct tq_wire *x, enum tq_wire_side from, const struct tq_tcp_view *v)
{
	enum tq_wire_side to = (enum tq_wire_side)(1 - from);
	uint32_t seq = v->seq - (x->have_isn[from] ? x->isn[from] : 0);
	uint32_t ack = v->ack - (x->have_isn[to] ? x->isn[to] : 0);

	fprintf(stderr, "%10.3f ms %s %s%s%s%s%s seq %u len %zu ack %u win %u",
		(double)x->now_us / 1000.0, from == TQ_WIRE_CLIENT ? "c>s" : "s>c",
		v->flags & TQ_TCP_SYN ? "S" : "", v->flags & TQ_TCP_FIN ? "F" : "",
		v->flags & TQ_TCP_RST ? "R" : "", v->flags & TQ_TCP_PSH ? "P" : "",
		v->flags & TQ_TCP_ACK ? "." : "", (v->flags & TQ_TCP_SYN) ? v->seq : seq,
		v->payload_len, ack, v->window);
	if (v->opts.present & TQ_TCP_OPT_TS)
		fprintf(stderr, " ts %u ecr %u", v->opts.ts_val, v->opts.ts_ecr);
	for (unsigned int i = 0; i < v->opts.sack_count; i++)
		fprintf(stderr, " sack %u:%u", v->opts.sack[i].start - x->isn[to],
			v->opts.sack[i].end - x->isn[to]);
	fprintf(stderr, "\n");
}

/* A frame the port sent: impair it and put it in flight (or not). */
static void
wire_take(struct tq_wire *x, const uint8_t *data, uint16_t len)
{
	enum tq_wire_side from = TQ_WIRE_CLIENT;
	const struct tq_wire_link *l;
	struct tq_wire_stats *st;
	struct tq_tcp_view v;
	struct frame *f;
	uint64_t *rng, delay;
	bool is_tcp = false;

	if (len >= TCP_OFF && be16(data + 12) == RTE_ETHER_TYPE_IPV4 &&
	    data[TQ_ETH_HDR_LEN + 9] == IPPROTO_TCP &&
	    tq_tcp_parse(data + TCP_OFF, len - TCP_OFF, &v) >= 0) {
		is_tcp = true;
		if (v.src_port == x->env.server_port)
			from = TQ_WIRE_SERVER;
	}
	l = &x->link[from];
	st = &x->st[from];
	rng = &x->rng[from];
	st->frames++;
	if (is_tcp && x->trace)
		trace_seg(x, from, &v);
	if (is_tcp && inspect(x, from, &v)) {
		if (x->trace)
			fprintf(stderr, "    (dropped by a rule)\n");
		return;
	}
	if (chance(rng, l->drop_ppm)) {
		st->dropped++;
		return;
	}
	f = frame_new(data, len);
	if (is_tcp && l->clamp_bytes) {
		uint8_t shift = (v.flags & TQ_TCP_SYN) ? 0 : win_shift(x, from);
		uint32_t raw = l->clamp_bytes >> shift;

		if (raw == 0)
			raw = 1;
		if (raw > 65535)
			raw = 65535;
		if (v.window > raw) {
			put_be16(f->data + TCP_OFF + 14, (uint16_t)raw);
			fix_tcp_csum(f->data, f->len);
			st->clamped++;
		}
	}
	if (is_tcp && chance(rng, l->corrupt_ppm)) {
		/* one bit of the TCP segment: only its checksum can catch it */
		uint32_t bits = (uint32_t)(len - TCP_OFF) * 8u;
		uint32_t b = (uint32_t)(rng_next(rng) % bits);

		f->data[TCP_OFF + b / 8] ^= (uint8_t)(1u << (b % 8));
		st->corrupted++;
	} else if (chance(rng, l->truncate_ppm)) {
		st->truncated++;
		if (truncate_frame(x, from, f))
			st->truncated_valid++;
	}
	delay = l->delay_us;
	if (l->jitter_us) {
		uint64_t j = rng_next(rng) % (2ull * l->jitter_us + 1);

		delay = delay + j >= l->jitter_us ? delay + j - l->jitter_us : 0;
	}
	if (chance(rng, l->reorder_ppm)) {
		delay += l->reorder_us ? l->reorder_us : 3000;
		st->reordered++;
	}
	f->due_us = x->now_us + delay;
	if (chance(rng, l->dup_ppm)) {
		struct frame *d = frame_new(f->data, f->len);

		d->due_us = f->due_us;
		enqueue(x, f);
		enqueue(x, d);
		st->duplicated++;
		return;
	}
	enqueue(x, f);
}

/* Move what the worker queued to the port, and what the port sent onto the wire. */
static void
collect(struct tq_wire *x)
{
	struct rte_mbuf *pkts[BURST];
	uint8_t buf[RTE_MBUF_DEFAULT_DATAROOM];
	unsigned int n;

	tq_worker_flush(x->env.w);
	while ((n = rte_ring_dequeue_burst(x->env.tx_ring, (void **)pkts, BURST, NULL)) > 0) {
		for (unsigned int i = 0; i < n; i++) {
			struct rte_mbuf *m = pkts[i];
			uint32_t len = rte_pktmbuf_pkt_len(m);
			const uint8_t *p;

			if (len > sizeof(buf)) { /* nothing we build is that long */
				rte_pktmbuf_free(m);
				continue;
			}
			p = rte_pktmbuf_read(m, 0, len, buf);
			if (p != buf)
				memcpy(buf, p, len);
			if ((m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) && len >= TCP_OFF)
				fix_ip_csum(buf); /* the port's offload */
			rte_pktmbuf_free(m);
			wire_take(x, buf, (uint16_t)len);
		}
	}
}

/* Hand the frames that are due to the port's RX side and let the worker take them, one
 * burst at a time, as its poll loop would. Returns how many. */
static unsigned int
deliver(struct tq_wire *x)
{
	struct tq_worker *w = x->env.w;
	struct rte_mbuf *pkts[BURST];
	unsigned int n = 0, total = 0;
	struct frame *f;

	for (;;) {
		uint16_t got;

		n = 0;
		while (n < BURST && (f = dequeue_due(x)) != NULL) {
			/* sending side, for the counters: by the TCP source port */
			enum tq_wire_side from = f->len >= TCP_OFF + 2 &&
						 be16(f->data + TCP_OFF) == x->env.server_port
							 ? TQ_WIRE_SERVER
							 : TQ_WIRE_CLIENT;
			struct rte_mbuf *m = rte_pktmbuf_alloc(x->env.pool);
			char *p;

			if (!m) { /* as a NIC without RX descriptors: the frame is lost */
				x->st[from].rx_nombuf++;
				free(f);
				continue;
			}
			p = rte_pktmbuf_append(m, f->len);
			if (f->len)
				memcpy(p, f->data, f->len);
			x->st[from].delivered++;
			free(f);
			pkts[n++] = m;
		}
		if (n == 0)
			break;
		if (rte_ring_enqueue_burst(x->env.rx_ring, (void **)pkts, n, NULL) != n)
			abort(); /* the RX ring holds more than a burst */
		while ((got = rte_eth_rx_burst(x->env.port, w->id, pkts, BURST)) > 0) {
			for (uint16_t i = 0; i < got; i++) {
				tq_net_input(w, x->env.port, pkts[i]);
				observe(x);
			}
			total += got;
		}
		tq_tcp_timers_run(w); /* the end of a poll iteration: reap */
		tq_worker_flush(w);
	}
	return total;
}

/* ---------------------------------------------------------------- API */

struct tq_wire *
tq_wire_create(const struct tq_wire_env *env)
{
	struct tq_wire *x = calloc(1, sizeof(*x));
	struct tq_tcp_worker *t = env->w->tcp;

	if (!x)
		return NULL;
	x->env = *env;
	x->trace = getenv("TQ_WIRE_TRACE") != NULL;
	x->mac = tq_ports[env->port].mac;
	x->tsc_per_tick = t->tsc_per_tick;
	x->base_tick = t->now_tick + 1;
	x->rng[TQ_WIRE_CLIENT] = env->seed ^ 0x636c69656e74ull;
	x->rng[TQ_WIRE_SERVER] = env->seed ^ 0x736572766572ull;
	set_time(x, 0);
	tq_tcp_timers_run(env->w);
	/* ARP for our own address would be a conflict (rightly): the test says where it is */
	if (!tq_arp_cache_learn(&env->w->arp, env->port, env->addr, &x->mac, env->w->now, true)) {
		free(x);
		return NULL;
	}
	return x;
}

void
tq_wire_destroy(struct tq_wire *x)
{
	struct frame *f;

	if (!x)
		return;
	while ((f = x->head) != NULL) {
		x->head = f->next;
		free(f);
	}
	free(x);
}

void
tq_wire_set_link(struct tq_wire *x, enum tq_wire_side from, const struct tq_wire_link *l)
{
	x->link[from] = *l;
}

int
tq_wire_add_rule(struct tq_wire *x, const struct tq_wire_rule *r)
{
	if (x->nb_rules == MAX_RULES)
		return -ENOSPC;
	x->rules[x->nb_rules] = *r;
	memset(&x->rule_st[x->nb_rules], 0, sizeof(x->rule_st[0]));
	return (int)x->nb_rules++;
}

const struct tq_wire_rule_stats *
tq_wire_rule_stats(const struct tq_wire *x, int rule)
{
	return &x->rule_st[rule];
}

const struct tq_wire_stats *
tq_wire_stats(const struct tq_wire *x, enum tq_wire_side from)
{
	return &x->st[from];
}

const struct tq_wire_history *
tq_wire_history(const struct tq_wire *x, enum tq_wire_side side)
{
	return &x->hist[side];
}

const char *
tq_wire_history_str(const struct tq_wire *x, enum tq_wire_side side, char *buf, size_t len)
{
	const struct tq_wire_history *h = &x->hist[side];
	size_t o = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < h->n && o < len; i++) {
		int n = snprintf(buf + o, len - o, "%s%s", i ? " " : "", tq_tcp_state_name(h->s[i]));

		if (n < 0)
			break;
		o += (size_t)n;
	}
	return buf;
}

void
tq_wire_history_reset(struct tq_wire *x)
{
	memset(x->hist, 0, sizeof(x->hist));
	memset(x->tcb_seen, 0, sizeof(x->tcb_seen));
}

uint64_t
tq_wire_now_us(const struct tq_wire *x)
{
	return x->now_us;
}

void
tq_wire_wake_at(struct tq_wire *x, uint64_t t_us)
{
	if (x->nb_wakes < MAX_WAKES && t_us > x->now_us)
		x->wakes[x->nb_wakes++] = t_us;
}

void
tq_wire_inject(struct tq_wire *x, enum tq_wire_side from, uint8_t flags, uint32_t seq,
	       uint32_t ack, uint16_t window)
{
	uint8_t d[TCP_OFF + TQ_TCP_HDR_MAX];
	struct tq_tcp_hdr_spec spec;
	struct frame *f;
	size_t hlen;

	memset(&spec, 0, sizeof(spec));
	spec.src_port = from == TQ_WIRE_CLIENT ? x->client_port : x->env.server_port;
	spec.dst_port = from == TQ_WIRE_CLIENT ? x->env.server_port : x->client_port;
	spec.seq = seq;
	spec.ack = ack;
	spec.flags = flags;
	spec.window = window;
	hlen = tq_tcp_build(d + TCP_OFF, &spec);
	tq_ipv4_build(d + TQ_ETH_HDR_LEN, x->env.addr, x->env.addr, IPPROTO_TCP, (uint16_t)hlen,
		      0x4242, TQ_IPV4_DEFAULT_TTL, false);
	tq_eth_build(d, &x->mac, &x->mac, RTE_ETHER_TYPE_IPV4);
	fix_tcp_csum(d, (uint16_t)(TCP_OFF + hlen));
	f = frame_new(d, (uint16_t)(TCP_OFF + hlen));
	f->due_us = x->now_us;
	x->st[from].injected++;
	enqueue(x, f);
}

const char *
tq_wire_error(const struct tq_wire *x)
{
	return x->err;
}

/* The next thing that will happen: a frame due, a TCP timer, a wake-up. */
static uint64_t
next_event(struct tq_wire *x)
{
	struct tq_tcp_worker *t = x->env.w->tcp;
	uint64_t due = tq_timer_next_due(&t->wheel), next = UINT64_MAX;
	unsigned int k = 0;

	if (due != UINT64_MAX) {
		if (due <= t->now_tick)
			due = t->now_tick + 1; /* fires at the next tick, as in the worker */
		next = (due - x->base_tick) * 1000;
	}
	if (x->head && x->head->due_us < next)
		next = x->head->due_us;
	for (unsigned int i = 0; i < x->nb_wakes; i++) {
		if (x->wakes[i] <= x->now_us)
			continue;
		x->wakes[k++] = x->wakes[i];
		if (x->wakes[i] < next)
			next = x->wakes[i];
	}
	x->nb_wakes = k;
	return next;
}

int
tq_wire_run(struct tq_wire *x, tq_wire_step_fn step, void *ctx, uint64_t limit_ms)
{
	uint64_t deadline = x->now_us + limit_ms * 1000, spins = 0;
	bool idle_polled = false;

	x->err[0] = '\0';
	for (;;) {
		uint64_t next;

		collect(x);
		deliver(x);
		observe(x);
		if (step(ctx)) {
			collect(x);
			return 0;
		}
		observe(x);
		collect(x);
		if (x->head && x->head->due_us <= x->now_us) {
			if (++spins > SPINS_MAX) {
				set_err(x, "livelock: %u events at t=%" PRIu64 " us", SPINS_MAX,
					x->now_us);
				break;
			}
			continue;
		}
		next = next_event(x);
		if (next == UINT64_MAX && !idle_polled) {
			/* a poll iteration with nothing due still ends as every one does (the
			 * stack's wake-up after memory pressure, say): once, then judge */
			idle_polled = true;
			tq_tcp_timers_run(x->env.w);
			tq_worker_flush(x->env.w);
			continue;
		}
		if (next == UINT64_MAX) {
			set_err(x, "stalled at t=%" PRIu64 " ms: no frame in flight, no timer armed",
				x->now_us / 1000);
			break;
		}
		if (next > deadline) {
			set_err(x, "not done after %" PRIu64 " ms of simulated time", limit_ms);
			break;
		}
		spins = 0;
		idle_polled = false;
		set_time(x, next);
		tq_tcp_timers_run(x->env.w);
	}
	fprintf(stderr, "tq_wire: %s\n", x->err);
	tq_wire_dump(x, stderr);
	return -1;
}

static void
dump_conn(const struct tq_wire *x, enum tq_wire_side side, FILE *f)
{
	const struct tq_tcp_conn *c = tq_wire_conn(x, side);
	const char *name = side == TQ_WIRE_CLIENT ? "client" : "server";

	if (!c) {
		fprintf(f, "  %s: no TCB\n", name);
		return;
	}
	fprintf(f,
		"  %s: %s  snd_una=%u snd_nxt=%u snd_max=%u (relative to ISS) sq_bytes=%u "
		"snd_wnd=%u max_snd_wnd=%u mss=%u\n"
		"    rcv_nxt=%u (rel. IRS) rcv_adv-rcv_nxt=%d rcv_window=%u rx_held=%u ooo_n=%u "
		"ooo_bytes=%u\n"
		"    cwnd=%u ssthresh=%u dupacks=%u in_recovery=%d recover=%u sb_n=%u "
		"srtt=%uus rto=%uus backoff=%u pto_armed=%d tlp_done=%d\n"
		"    fin_queued=%d fin_sent=%d app_closed=%d want_writable=%d ts=%d sack=%d "
		"ws=%d (snd %u rcv %u) cookie=%d timers rexmt=%d delack=%d keep=%d 2msl=%d\n",
		name, tq_tcp_state_name(c->state), c->snd_una - c->iss, c->snd_nxt - c->iss,
		c->snd_max - c->iss, c->sq_bytes, c->snd_wnd, c->max_snd_wnd, c->snd_mss,
		c->rcv_nxt - c->irs, (int)(c->rcv_adv - c->rcv_nxt), tq_tcp_rcv_window(c),
		c->rx_held, c->ooo_n, c->ooo_bytes, c->cwnd, c->ssthresh, c->dupacks,
		c->in_recovery, c->recover - c->iss, c->sb_n, c->srtt_us, c->rto_us, c->backoff,
		c->pto_armed, c->tlp_done, c->fin_queued, c->fin_sent, c->app_closed,
		c->want_writable, c->ts_ok, c->sack_ok, c->ws_ok, c->snd_wscale, c->rcv_wscale,
		c->from_cookie, c->timers[TQ_TCP_T_REXMT] != 0, c->timers[TQ_TCP_T_DELACK] != 0,
		c->timers[TQ_TCP_T_KEEP] != 0, c->timers[TQ_TCP_T_2MSL] != 0);
}

void
tq_wire_dump(const struct tq_wire *x, FILE *f)
{
	const struct tq_worker *w = x->env.w;
	char h[512];

	fprintf(f, "tq_wire at t=%" PRIu64 " us, %u frames in flight, client port %u, "
		   "TCBs in use %u\n",
		x->now_us, x->in_flight, x->client_port, w->tcp->nb_conns);
	for (int s = 0; s < TQ_WIRE_SIDES; s++) {
		const struct tq_wire_stats *st = &x->st[s];

		fprintf(f,
			"  %s sent: frames=%" PRIu64 " data=%" PRIu64 " (%" PRIu64 " B) rexmit=%" PRIu64
			" dropped=%" PRIu64 " rule_dropped=%" PRIu64 " dup=%" PRIu64
			" reordered=%" PRIu64 " corrupted=%" PRIu64 " truncated=%" PRIu64
			" clamped=%" PRIu64 " injected=%" PRIu64 " rx_nombuf=%" PRIu64
			" delivered=%" PRIu64 "\n",
			s == TQ_WIRE_CLIENT ? "client" : "server", st->frames, st->data_segs,
			st->data_bytes, st->retransmits, st->dropped, st->rule_dropped,
			st->duplicated, st->reordered, st->corrupted, st->truncated, st->clamped,
			st->injected, st->rx_nombuf, st->delivered);
		fprintf(f, "  %s states: %s\n", s == TQ_WIRE_CLIENT ? "client" : "server",
			tq_wire_history_str(x, (enum tq_wire_side)s, h, sizeof(h)));
	}
	dump_conn(x, TQ_WIRE_CLIENT, f);
	dump_conn(x, TQ_WIRE_SERVER, f);
	fprintf(f, "  counters:");
	for (unsigned int i = 1; i < TQ_CTR__COUNT; i++)
		if (w->ctr[i])
			fprintf(f, " %s=%" PRIu64, tq_counter_name(i), w->ctr[i]);
	fprintf(f, "\n");
}
