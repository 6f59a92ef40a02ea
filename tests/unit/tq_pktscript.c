/*
 * The interpreter of tq_pktscript.h: parse a line, inject or expect a segment, move the
 * simulated clock, act for the application, check. One script at a time per process.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "dataplane/net/tq_eth.h"
#include "dataplane/net/tq_ipv4.h"
#include "dataplane/net/tq_net.h"
#include "dataplane/net/tq_tcp_codec.h"
#include "dataplane/net/tq_tcp_var.h"
#include "dataplane/tq_services.h"
#include "dataplane/tq_worker.h"
#include "tq_pktscript.h"

#define LINE_MAX_LEN 1024
#define FRAME_MAX 2048
#define OUTQ_MAX 512
#define HELD_MAX 1024
#define DEFAULT_PEER_ISN 1000000u
#define DEFAULT_PEER_PORT 40000
#define DEFAULT_MAX_CONNS 16

/* One segment of a script line, numbers relative (see the header). */
struct seg {
	char dir;            /* '<' inject, '>' expect */
	uint8_t flags;
	uint32_t seq, len;
	bool has_ack;
	uint32_t ack;
	bool has_win;
	uint16_t win;
	bool opts_given;     /* an option list was written, other than "<...>" */
	bool ts_val_any;
	struct tq_tcp_opts opts;
};

/* A frame the port transmitted, copied out, with the simulated time it left. */
struct sent {
	uint64_t t_us;
	uint16_t len;
	bool ip_csum_offload;
	uint8_t f[FRAME_MAX];
};

struct run {
	const struct tq_pktscript_env *env;
	const char *name;
	struct tq_pktscript_result *res;
	unsigned int line;
	bool failed;

	/* configuration gathered before the worker exists */
	struct tq_tcp_conf cfg;
	struct tq_worker *w;
	unsigned int pool_start;

	/* time: base_tick is script time 0; now_us the script's clock */
	uint64_t tsc_per_tick;
	uint64_t base_tick;
	uint64_t now_us;
	uint64_t tolerance_us;

	/* addressing and sequence bases */
	uint32_t peer_isn;
	uint32_t our_iss;
	uint16_t peer_port, local_port;
	bool check_payload;

	/* frames sent and not yet claimed by an expectation */
	struct sent *outq;
	unsigned int outq_n;

	/* the sink app */
	struct tq_tcp_conn *conn;
	uint64_t rx_bytes;
	uint64_t tx_bytes;
	bool closed_called, peer_closed;
	int closed_err;
	struct rte_mbuf *held[HELD_MAX];
	unsigned int held_n;
	char app_err[256];
};

static struct run *cur; /* the sink app's callbacks have no context of their own */

static void __attribute__((format(printf, 2, 3)))
fail(struct run *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->failed)
		return;
	r->failed = true;
	r->res->line = r->line;
	n = snprintf(r->res->msg, sizeof(r->res->msg), "%s:%u: ", r->name, r->line);
	if (n < 0 || (size_t)n >= sizeof(r->res->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(r->res->msg + n, sizeof(r->res->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* The byte at stream offset @k (1 = first data byte, as relative sequence numbers). */
static uint8_t
pattern(uint32_t k)
{
	return (uint8_t)(k % 251);
}

/* ---------------------------------------------------------------- the sink app */

static void
sink_keep(struct run *r, struct rte_mbuf *m)
{
	if (r->held_n == HELD_MAX) {
		rte_pktmbuf_free(m);
		snprintf(r->app_err, sizeof(r->app_err), "sink app: more than %u chains held",
			 HELD_MAX);
		return;
	}
	r->held[r->held_n++] = m;
}

static void
sink_free_held(struct run *r)
{
	for (unsigned int i = 0; i < r->held_n; i++)
		rte_pktmbuf_free(r->held[i]);
	r->held_n = 0;
}

static int
sink_connected(struct tq_tcp_conn *c)
{
	cur->conn = c;
	return 0;
}

static void
sink_data(struct tq_tcp_conn *c, struct rte_mbuf *m)
{
	struct run *r = cur;
	uint32_t len = rte_pktmbuf_pkt_len(m), off = 0;

	(void)c;
	for (const struct rte_mbuf *s = m; s; s = s->next) {
		const uint8_t *p = rte_pktmbuf_mtod(s, const uint8_t *);

		for (uint16_t i = 0; i < s->data_len; i++, off++) {
			uint32_t k = (uint32_t)(r->rx_bytes + off + 1);

			if (r->check_payload && p[i] != pattern(k) && !r->app_err[0])
				snprintf(r->app_err, sizeof(r->app_err),
					 "sink app: byte %u of the stream is 0x%02x, the peer sent "
					 "0x%02x (data delivered twice or out of order?)",
					 k, p[i], pattern(k));
		}
	}
	r->rx_bytes += len;
	sink_keep(r, m);
}

static void
sink_peer_closed(struct tq_tcp_conn *c)
{
	(void)c;
	cur->peer_closed = true;
}

static void
sink_closed(struct tq_tcp_conn *c, int err)
{
	(void)c;
	cur->closed_called = true;
	cur->closed_err = err;
	cur->conn = NULL;
}

static const struct tq_tcp_app sink_app = {
	.on_connected = sink_connected,
	.on_data = sink_data,
	.on_peer_closed = sink_peer_closed,
	.on_closed = sink_closed,
};

/* ---------------------------------------------------------------- parsing */

static char *
skip_ws(char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

/* The next whitespace-separated token of *@pp, NUL-terminated in place, or NULL. */
static char *
next_tok(char **pp)
{
	char *p = skip_ws(*pp), *t;

	if (!*p)
		return NULL;
	t = p;
	while (*p && !isspace((unsigned char)*p))
		p++;
	if (*p)
		*p++ = '\0';
	*pp = p;
	return t;
}

static int
parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "+0.2" or "1.5" -> microseconds; relative when it starts with '+'. */
static int
parse_time(const char *s, bool *rel, uint64_t *us)
{
	char *end;
	double v;

	*rel = *s == '+';
	if (*rel)
		s++;
	if (!isdigit((unsigned char)*s) && *s != '.')
		return -1;
	v = strtod(s, &end);
	if (*end || v < 0 || v > 1e6)
		return -1;
	*us = (uint64_t)(v * 1e6 + 0.5);
	return 0;
}

static int
parse_flags(const char *s, uint8_t *out)
{
	uint8_t f = 0;

	for (; *s; s++) {
		switch (*s) {
		case 'S': f |= TQ_TCP_SYN; break;
		case 'F': f |= TQ_TCP_FIN; break;
		case 'R': f |= TQ_TCP_RST; break;
		case 'P': f |= TQ_TCP_PSH; break;
		case '.': f |= TQ_TCP_ACK; break;
		default: return -1;
		}
	}
	*out = f;
	return 0;
}

/* "a:b(len)" */
static int
parse_seq(const char *s, struct seg *g)
{
	uint32_t a, b, len;
	char buf[64], *colon, *paren, *close;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	paren = strchr(buf, '(');
	close = strchr(buf, ')');
	if (!colon || !paren || !close || paren < colon || close < paren || close[1])
		return -1;
	*colon = *paren = *close = '\0';
	if (parse_u32(buf, &a) || parse_u32(colon + 1, &b) || parse_u32(paren + 1, &len) ||
	    b - a != len || len > FRAME_MAX - 100)
		return -1;
	g->seq = a;
	g->len = len;
	return 0;
}

/* The inside of "<...>": fills g->opts. Returns 0 or -1 with @why set. */
static int
parse_opts(struct run *r, char *s, struct seg *g)
{
	char *item, *save = NULL;

	memset(&g->opts, 0, sizeof(g->opts));
	if (strcmp(skip_ws(s), "...") == 0)
		return 0;
	g->opts_given = true;
	for (item = strtok_r(s, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *p = item, *kw = next_tok(&p), *a1, *a2, *a3;
		uint32_t v, v2;

		if (!kw)
			continue;
		if (!strcmp(kw, "nop") || !strcmp(kw, "eol"))
			continue;
		if (!strcmp(kw, "sackOK")) {
			g->opts.present |= TQ_TCP_OPT_SACK_PERM;
		} else if (!strcmp(kw, "mss")) {
			if (parse_u32(next_tok(&p), &v) || v > 65535)
				goto bad;
			g->opts.present |= TQ_TCP_OPT_MSS;
			g->opts.mss = (uint16_t)v;
		} else if (!strcmp(kw, "wscale")) {
			if (parse_u32(next_tok(&p), &v) || v > 255)
				goto bad;
			g->opts.present |= TQ_TCP_OPT_WSCALE;
			g->opts.wscale = (uint8_t)v;
		} else if (!strcmp(kw, "TS")) {
			a1 = next_tok(&p);
			a2 = next_tok(&p);
			a3 = next_tok(&p);
			if (!a1 || strcmp(a1, "val") || !a2 || !a3 || strcmp(a3, "ecr"))
				goto bad;
			if (!strcmp(a2, "*") && g->dir == '>')
				g->ts_val_any = true;
			else if (parse_u32(a2, &g->opts.ts_val))
				goto bad;
			if (parse_u32(next_tok(&p), &g->opts.ts_ecr))
				goto bad;
			g->opts.present |= TQ_TCP_OPT_TS;
		} else if (!strcmp(kw, "sack")) {
			char *blk;

			while ((blk = next_tok(&p))) {
				char *colon = strchr(blk, ':');

				if (!colon || g->opts.sack_count == TQ_TCP_SACK_MAX)
					goto bad;
				*colon = '\0';
				if (parse_u32(blk, &v) || parse_u32(colon + 1, &v2))
					goto bad;
				g->opts.sack[g->opts.sack_count].start = v;
				g->opts.sack[g->opts.sack_count].end = v2;
				g->opts.sack_count++;
			}
			if (!g->opts.sack_count)
				goto bad;
			g->opts.present |= TQ_TCP_OPT_SACK;
		} else {
			goto bad;
		}
		if (next_tok(&p))
			goto bad;
	}
	return 0;
bad:
	fail(r, "cannot parse option \"%s\"", item);
	return -1;
}

/* After the direction: "FLAGS seq:end(len) [ack N] [win N] [<opts>]". */
static int
parse_seg(struct run *r, char *p, struct seg *g)
{
	char *lt = strchr(p, '<'), *tok;

	if (lt) {
		char *gt = strrchr(lt, '>');

		if (!gt) {
			fail(r, "option list without '>'");
			return -1;
		}
		*gt = '\0';
		*lt = '\0';
		if (parse_opts(r, lt + 1, g))
			return -1;
	}
	tok = next_tok(&p);
	if (!tok || parse_flags(tok, &g->flags)) {
		fail(r, "bad flags \"%s\" (S F R P .)", tok ? tok : "");
		return -1;
	}
	tok = next_tok(&p);
	if (!tok || parse_seq(tok, g)) {
		fail(r, "bad sequence \"%s\" (want start:end(len))", tok ? tok : "");
		return -1;
	}
	while ((tok = next_tok(&p))) {
		uint32_t v;

		if (!strcmp(tok, "ack") && !parse_u32(next_tok(&p), &v)) {
			g->has_ack = true;
			g->ack = v;
		} else if (!strcmp(tok, "win") && !parse_u32(next_tok(&p), &v) && v <= 65535) {
			g->has_win = true;
			g->win = (uint16_t)v;
		} else {
			fail(r, "unexpected \"%s\"", tok);
			return -1;
		}
	}
	if ((g->flags & TQ_TCP_ACK) && !g->has_ack && g->dir == '<') {
		fail(r, "an injected segment with '.' needs \"ack N\"");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- formatting */

static size_t
fmt_opts(char *b, size_t n, const struct tq_tcp_opts *o, bool ts_val_any)
{
	size_t k = 0;
	const char *sep = "";

#define OUT(...) k += (size_t)snprintf(b + k, k < n ? n - k : 0, __VA_ARGS__)
	OUT(" <");
	if (o->present & TQ_TCP_OPT_MSS) {
		OUT("%smss %u", sep, o->mss);
		sep = ",";
	}
	if (o->present & TQ_TCP_OPT_SACK_PERM) {
		OUT("%ssackOK", sep);
		sep = ",";
	}
	if (o->present & TQ_TCP_OPT_TS) {
		if (ts_val_any)
			OUT("%sTS val * ecr %" PRIu32, sep, o->ts_ecr);
		else
			OUT("%sTS val %" PRIu32 " ecr %" PRIu32, sep, o->ts_val, o->ts_ecr);
		sep = ",";
	}
	if (o->present & TQ_TCP_OPT_WSCALE) {
		OUT("%swscale %u", sep, o->wscale);
		sep = ",";
	}
	if (o->present & TQ_TCP_OPT_SACK) {
		OUT("%ssack", sep);
		for (unsigned int i = 0; i < o->sack_count; i++)
			OUT(" %" PRIu32 ":%" PRIu32, o->sack[i].start, o->sack[i].end);
	}
	OUT(">");
#undef OUT
	return k;
}

static void
fmt_seg(char *b, size_t n, const struct seg *g)
{
	char fl[8];
	size_t k = 0, i = 0;

	if (g->flags & TQ_TCP_SYN)
		fl[i++] = 'S';
	if (g->flags & TQ_TCP_FIN)
		fl[i++] = 'F';
	if (g->flags & TQ_TCP_RST)
		fl[i++] = 'R';
	if (g->flags & TQ_TCP_PSH)
		fl[i++] = 'P';
	if (g->flags & TQ_TCP_ACK)
		fl[i++] = '.';
	if (g->flags & ~(TQ_TCP_SYN | TQ_TCP_FIN | TQ_TCP_RST | TQ_TCP_PSH | TQ_TCP_ACK))
		fl[i++] = '?';
	fl[i] = '\0';
	k += (size_t)snprintf(b, n, "%c %s %" PRIu32 ":%" PRIu32 "(%" PRIu32 ")", g->dir, fl,
			      g->seq, g->seq + g->len, g->len);
	if (g->has_ack && k < n)
		k += (size_t)snprintf(b + k, n - k, " ack %" PRIu32, g->ack);
	if (g->has_win && k < n)
		k += (size_t)snprintf(b + k, n - k, " win %u", g->win);
	if (k < n) {
		if (g->opts_given)
			fmt_opts(b + k, n - k, &g->opts, g->ts_val_any);
		else if (g->dir == '>')
			snprintf(b + k, n - k, " <...>");
	}
}

/* ---------------------------------------------------------------- time and frames */

static uint64_t
tick_of_us(const struct run *r, uint64_t us)
{
	return r->base_tick + us / 1000;
}

static uint64_t
tsc_of_us(const struct run *r, uint64_t us)
{
	return r->base_tick * r->tsc_per_tick + us * r->tsc_per_tick / 1000;
}

/* Move what the worker queued to the port, and what the port sent to the out queue. */
static void
collect(struct run *r)
{
	struct rte_mbuf *pkts[64];
	unsigned int n;

	tq_worker_flush(r->w);
	while ((n = rte_ring_dequeue_burst(r->env->tx_ring, (void **)pkts, RTE_DIM(pkts),
					   NULL)) > 0) {
		for (unsigned int i = 0; i < n; i++) {
			struct rte_mbuf *m = pkts[i];

			if (r->outq_n == OUTQ_MAX) {
				fail(r, "more than %u segments sent and not expected", OUTQ_MAX);
			} else {
				struct sent *s = &r->outq[r->outq_n++];
				uint32_t len = RTE_MIN(rte_pktmbuf_pkt_len(m), (uint32_t)FRAME_MAX);
				const void *p = rte_pktmbuf_read(m, 0, len, s->f);

				if (p != s->f)
					memcpy(s->f, p, len);
				s->len = (uint16_t)len;
				s->t_us = r->now_us;
				s->ip_csum_offload = !!(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
			}
			rte_pktmbuf_free(m);
		}
	}
}

/* One poll iteration's worth of timers at the current w->now, then collect. */
static void
run_timers(struct run *r)
{
	tq_tcp_timers_run(r->w);
	collect(r);
}

/*
 * Advance the clock to @t_us, stopping at every timer deadline on the way so that timers
 * re-armed from a callback count from the moment they fired.
 */
static void
advance_to(struct run *r, uint64_t t_us)
{
	struct tq_tcp_worker *t = r->w->tcp;
	uint64_t target_tick = tick_of_us(r, t_us);

	if (t_us < r->now_us)
		t_us = r->now_us;
	for (;;) {
		uint64_t due = tq_timer_next_due(&t->wheel);

		if (due <= t->now_tick)
			due = t->now_tick + 1; /* fires at the next tick, as in the worker */
		if (due == UINT64_MAX || due > target_tick)
			break;
		r->now_us = (due - r->base_tick) * 1000;
		r->w->now = tsc_of_us(r, r->now_us);
		run_timers(r);
		if (r->failed)
			return;
	}
	r->now_us = t_us;
	r->w->now = tsc_of_us(r, t_us);
	run_timers(r);
}

/* ---------------------------------------------------------------- inject */

static void
inject(struct run *r, const struct seg *g)
{
	const struct tq_pktscript_env *e = r->env;
	uint8_t f[FRAME_MAX];
	uint8_t *ip = f + TQ_ETH_HDR_LEN, *tcp = ip + TQ_IPV4_HDR_LEN, *pl;
	struct tq_tcp_hdr_spec spec;
	struct rte_mbuf *m;
	size_t hlen, tlen;
	uint16_t csum;
	char *p;

	memset(&spec, 0, sizeof(spec));
	spec.src_port = r->peer_port;
	spec.dst_port = r->local_port;
	spec.seq = r->peer_isn + g->seq;
	spec.flags = g->flags;
	spec.ack = g->has_ack ? r->our_iss + g->ack : 0;
	spec.window = g->has_win ? g->win : 65535;
	spec.opts = g->opts;
	if ((spec.opts.present & TQ_TCP_OPT_TS) && (g->flags & TQ_TCP_ACK))
		spec.opts.ts_ecr = (uint32_t)(r->base_tick + g->opts.ts_ecr);
	for (unsigned int i = 0; i < spec.opts.sack_count; i++) {
		spec.opts.sack[i].start += r->our_iss;
		spec.opts.sack[i].end += r->our_iss;
	}
	hlen = tq_tcp_build(tcp, &spec);
	pl = tcp + hlen;
	for (uint32_t i = 0; i < g->len; i++)
		pl[i] = pattern(g->seq + i);
	tlen = hlen + g->len;
	csum = tq_tcp_checksum(e->peer_ip, e->our_ip, tcp, tlen);
	memcpy(tcp + 16, &csum, 2);
	tq_ipv4_build(ip, e->peer_ip, e->our_ip, IPPROTO_TCP, (uint16_t)tlen, 0x4242, 64, false);
	tq_eth_build(f, &e->our_mac, &e->peer_mac, RTE_ETHER_TYPE_IPV4);
	m = rte_pktmbuf_alloc(e->pool);
	if (!m) {
		fail(r, "out of mbufs for the injected segment");
		return;
	}
	p = rte_pktmbuf_append(m, (uint16_t)(TQ_ETH_HDR_LEN + TQ_IPV4_HDR_LEN + tlen));
	memcpy(p, f, TQ_ETH_HDR_LEN + TQ_IPV4_HDR_LEN + tlen);
	tq_net_input(r->w, e->port, m);
	run_timers(r); /* the end of a poll iteration: reap closed TCBs, send */
}

/* ---------------------------------------------------------------- expect */

/* Check @s is a TCP segment of our connection; fill @v and @actual (relative). */
static int
decode_sent(struct run *r, const struct sent *s, struct tq_tcp_view *v, struct seg *actual,
	    char *why, size_t n)
{
	const struct tq_pktscript_env *e = r->env;
	struct tq_ipv4_view ip;
	struct tq_eth_view eth;

	if (tq_eth_parse(s->f, s->len, &eth) < 0 || eth.ethertype != RTE_ETHER_TYPE_IPV4) {
		snprintf(why, n, "a frame that is not IPv4 (ethertype 0x%04x, %u bytes)",
			 eth.ethertype, s->len);
		return -1;
	}
	if (!rte_is_same_ether_addr(&eth.dst, &e->peer_mac) ||
	    !rte_is_same_ether_addr(&eth.src, &e->our_mac)) {
		snprintf(why, n, "a frame with wrong MAC addresses");
		return -1;
	}
	if (tq_ipv4_parse(s->f + TQ_ETH_HDR_LEN, s->len - TQ_ETH_HDR_LEN,
			  s->ip_csum_offload ? TQ_IPV4_CSUM_VERIFIED : 0, &ip) < 0) {
		snprintf(why, n, "an invalid IPv4 packet (header or checksum)");
		return -1;
	}
	if (ip.proto != IPPROTO_TCP || ip.src != e->our_ip || ip.dst != e->peer_ip) {
		snprintf(why, n, "an IPv4 packet that is not TCP from us to the peer");
		return -1;
	}
	if (!tq_tcp_checksum_ok(ip.src, ip.dst, ip.payload, ip.payload_len)) {
		snprintf(why, n, "a TCP segment with a wrong checksum");
		return -1;
	}
	if (tq_tcp_parse(ip.payload, ip.payload_len, v) < 0) {
		snprintf(why, n, "a TCP segment that does not parse");
		return -1;
	}
	if (r->local_port == 0 && (v->flags & TQ_TCP_SYN))
		r->local_port = v->src_port; /* active open: learn our port */
	if (v->src_port != r->local_port || v->dst_port != r->peer_port) {
		snprintf(why, n, "a segment for ports %u -> %u, not %u -> %u", v->src_port,
			 v->dst_port, r->local_port, r->peer_port);
		return -1;
	}
	if (v->flags & TQ_TCP_SYN)
		r->our_iss = v->seq; /* tachyon's ISN: outbound numbers count from it */
	memset(actual, 0, sizeof(*actual));
	actual->dir = '>';
	actual->flags = v->flags;
	actual->seq = v->seq - r->our_iss;
	actual->len = (uint32_t)v->payload_len;
	actual->has_ack = !!(v->flags & TQ_TCP_ACK);
	actual->ack = actual->has_ack ? v->ack - r->peer_isn : 0;
	actual->has_win = true;
	actual->win = v->window;
	actual->opts_given = true;
	actual->opts = v->opts;
	actual->opts.ts_val = (uint32_t)(v->opts.ts_val - r->base_tick);
	for (unsigned int i = 0; i < actual->opts.sack_count; i++) {
		actual->opts.sack[i].start -= r->peer_isn;
		actual->opts.sack[i].end -= r->peer_isn;
	}
	return 0;
}

/* The first field where @want and @got differ, or NULL. */
static const char *
seg_diff(const struct seg *want, const struct seg *got)
{
	const struct tq_tcp_opts *a = &want->opts, *b = &got->opts;

	if (want->flags != got->flags)
		return "flags";
	if (want->seq != got->seq)
		return "sequence number";
	if (want->len != got->len)
		return "payload length";
	if (want->has_ack && want->ack != got->ack)
		return "acknowledgment number";
	if (want->has_win && want->win != got->win)
		return "window";
	if (!want->opts_given)
		return NULL;
	if (a->present != b->present)
		return "set of options";
	if ((a->present & TQ_TCP_OPT_MSS) && a->mss != b->mss)
		return "MSS option";
	if ((a->present & TQ_TCP_OPT_WSCALE) && a->wscale != b->wscale)
		return "window scale option";
	if ((a->present & TQ_TCP_OPT_TS) && ((!want->ts_val_any && a->ts_val != b->ts_val) ||
					     a->ts_ecr != b->ts_ecr))
		return "timestamps option";
	if (a->present & TQ_TCP_OPT_SACK) {
		if (a->sack_count != b->sack_count)
			return "number of SACK blocks";
		for (unsigned int i = 0; i < a->sack_count; i++)
			if (a->sack[i].start != b->sack[i].start || a->sack[i].end != b->sack[i].end)
				return "SACK blocks";
	}
	return NULL;
}

static void
fmt_ms(char *b, size_t n, uint64_t us)
{
	snprintf(b, n, "%" PRIu64 ".%03" PRIu64 " s", us / 1000000, us / 1000 % 1000);
}

static void
expect(struct run *r, const struct seg *want, uint64_t t_us)
{
	char ws[512], gs[512], why[256], ts_want[32], ts_got[32];
	struct tq_tcp_view v;
	struct seg got;
	struct sent *s;
	const char *diff;

	advance_to(r, t_us);
	if (r->failed)
		return;
	fmt_seg(ws, sizeof(ws), want);
	fmt_ms(ts_want, sizeof(ts_want), t_us);
	if (r->outq_n == 0) {
		fail(r, "expected at %s\n    want: %s\n    got:  nothing sent", ts_want, ws);
		return;
	}
	s = &r->outq[0];
	fmt_ms(ts_got, sizeof(ts_got), s->t_us);
	if (decode_sent(r, s, &v, &got, why, sizeof(why))) {
		fail(r, "expected at %s\n    want: %s\n    got:  %s (at %s)", ts_want, ws, why,
		     ts_got);
		return;
	}
	fmt_seg(gs, sizeof(gs), &got);
	diff = seg_diff(want, &got);
	if (diff) {
		fail(r, "wrong %s\n    want: %s (at %s)\n    got:  %s (at %s)", diff, ws,
		     ts_want, gs, ts_got);
		return;
	}
	if (s->t_us + r->tolerance_us < t_us) {
		fail(r, "segment sent too early\n    want: %s at %s\n    got:  %s at %s", ws,
		     ts_want, gs, ts_got);
		return;
	}
	if (r->check_payload)
		for (uint32_t i = 0; i < got.len; i++)
			if (v.payload[i] != pattern(got.seq + i)) {
				fail(r, "payload byte at relative seq %" PRIu32 " is 0x%02x, want "
					"0x%02x\n    got:  %s", got.seq + i, v.payload[i],
				     pattern(got.seq + i), gs);
				return;
			}
	memmove(&r->outq[0], &r->outq[1], (r->outq_n - 1) * sizeof(r->outq[0]));
	r->outq_n--;
}

/* Nothing may wait unclaimed when the script does something else. */
static void
check_nothing_sent(struct run *r)
{
	char gs[512], why[256], ts[32];
	struct tq_tcp_view v;
	struct seg got;

	collect(r);
	if (r->failed || r->outq_n == 0)
		return;
	fmt_ms(ts, sizeof(ts), r->outq[0].t_us);
	if (decode_sent(r, &r->outq[0], &v, &got, why, sizeof(why)) == 0)
		fmt_seg(gs, sizeof(gs), &got);
	else
		snprintf(gs, sizeof(gs), "%s", why);
	fail(r, "unexpected segment (%u waiting)\n    got:  %s (at %s)", r->outq_n, gs, ts);
}

/* ---------------------------------------------------------------- directives */

static const struct {
	const char *name;
	size_t off;
	int kind; /* 0 = uint32, 1 = uint16, 2 = uint8, 3 = bool */
} cfg_keys[] = {
#define K(f, k) {#f, offsetof(struct tq_tcp_conf, f), k}
	K(max_conns, 0),   K(rcv_buf, 0),    K(snd_buf, 0),        K(ooo_max_segs, 0),
	K(syn_backlog, 0), K(msl_ms, 0),     K(delack_ms, 0),      K(rto_min_ms, 0),
	K(rto_max_ms, 0),  K(rto_initial_ms, 0), K(keepalive_s, 0), K(max_retries, 0),
	K(mss, 1),         K(wscale, 2),     K(timestamps, 3),     K(sack, 3),
#undef K
};

static int
set_cfg(struct run *r, char *kv)
{
	char *eq = strchr(kv, '=');
	uint32_t v;

	if (!eq) {
		fail(r, "%%tcp wants key=value, not \"%s\"", kv);
		return -1;
	}
	*eq = '\0';
	if (parse_u32(eq + 1, &v)) {
		fail(r, "%%tcp %s: bad value \"%s\"", kv, eq + 1);
		return -1;
	}
	for (size_t i = 0; i < RTE_DIM(cfg_keys); i++) {
		uint8_t *f = (uint8_t *)&r->cfg + cfg_keys[i].off;

		if (strcmp(cfg_keys[i].name, kv))
			continue;
		switch (cfg_keys[i].kind) {
		case 0: memcpy(f, &v, 4); break;
		case 1: { uint16_t x = (uint16_t)v; memcpy(f, &x, 2); break; }
		case 2: *f = (uint8_t)v; break;
		default: { bool b = v != 0; memcpy(f, &b, sizeof(b)); break; }
		}
		return 0;
	}
	fail(r, "%%tcp: unknown key \"%s\"", kv);
	return -1;
}

/* Create the worker with the configuration so far; script time 0 starts now. */
static int
start_worker(struct run *r)
{
	const struct tq_pktscript_env *e = r->env;
	struct tq_dp_conf conf;

	tq_tcp_cfg = r->cfg;
	tq_tcp_nb_listeners = 0;
	memset(tq_tcp_listeners, 0, sizeof(tq_tcp_listeners));
	memset(&conf, 0, sizeof(conf));
	conf.arp_reachable_s = 86400;
	r->pool_start = rte_mempool_avail_count(e->pool);
	r->w = tq_worker_create(0, rte_lcore_id(), e->pool, &conf);
	if (!r->w) {
		fail(r, "tq_worker_create: %s", strerror(errno));
		return -1;
	}
	tq_dp.nb_workers = 1;
	tq_dp.workers[0] = r->w;
	tq_arp_learned(r->w, e->port, e->peer_ip, &e->peer_mac, true, false);
	r->tsc_per_tick = r->w->tcp->tsc_per_tick;
	r->base_tick = r->w->tcp->now_tick + 1;
	r->now_us = 0;
	r->w->now = tsc_of_us(r, 0);
	run_timers(r);
	return r->failed ? -1 : 0;
}

static struct tq_tcp_conn *
lookup_conn(struct run *r)
{
	struct tq_tcp_key key = {
		.raddr = r->env->peer_ip,
		.laddr = r->env->our_ip,
		.rport = rte_cpu_to_be_16(r->peer_port),
		.lport = rte_cpu_to_be_16(r->local_port),
	};

	return tq_tcp_lookup(r->w, &key);
}

static struct tq_tcp_conn *
need_conn(struct run *r, const char *what)
{
	if (!r->conn)
		fail(r, "%s: the sink app has no connection", what);
	return r->conn;
}

static void
app_send(struct run *r, uint32_t n)
{
	struct rte_mbuf *head = NULL;
	struct tq_tcp_conn *c = need_conn(r, "%send");
	int ret;

	if (!c)
		return;
	while (n) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(r->env->pool);
		uint16_t take = (uint16_t)RTE_MIN(n, 1024u);
		uint8_t *p;

		if (!m) {
			rte_pktmbuf_free(head);
			fail(r, "%%send: out of mbufs");
			return;
		}
		p = (uint8_t *)rte_pktmbuf_append(m, take);
		for (uint16_t i = 0; i < take; i++)
			p[i] = pattern((uint32_t)(r->tx_bytes + i + 1));
		r->tx_bytes += take;
		n -= take;
		if (!head)
			head = m;
		else if (rte_pktmbuf_chain(head, m)) {
			rte_pktmbuf_free(m);
			rte_pktmbuf_free(head);
			fail(r, "%%send: chain too long");
			return;
		}
	}
	ret = tq_tcp_send(c, head);
	if (ret) {
		rte_pktmbuf_free(head);
		fail(r, "%%send: tq_tcp_send returned %d (%s)", ret, strerror(-ret));
	}
}

static const struct {
	const char *name;
	int err;
} err_names[] = {
	{"0", 0},
	{"ECONNRESET", -ECONNRESET},
	{"ECONNREFUSED", -ECONNREFUSED},
	{"ETIMEDOUT", -ETIMEDOUT},
	{"ECONNABORTED", -ECONNABORTED},
};

static const char *
err_name(int err)
{
	for (size_t i = 0; i < RTE_DIM(err_names); i++)
		if (err_names[i].err == err)
			return err_names[i].name;
	return "?";
}

static int
listen_app(struct run *r, uint32_t port, const char *app)
{
	struct tq_services_conf sc;
	int ret;

	memset(&sc, 0, sizeof(sc));
	if (!strcmp(app, "echo"))
		sc.echo = (uint16_t)port;
	else if (!strcmp(app, "discard"))
		sc.discard = (uint16_t)port;
	else if (!strcmp(app, "chargen"))
		sc.chargen = (uint16_t)port;
	else if (strcmp(app, "sink")) {
		fail(r, "%%listen: unknown app \"%s\" (echo discard chargen sink)", app);
		return -1;
	}
	ret = strcmp(app, "sink") ? tq_services_start(&sc)
				  : tq_tcp_listen((uint16_t)port, &sink_app, NULL);
	if (ret) {
		fail(r, "%%listen %u: %s", port, strerror(-ret));
		return -1;
	}
	if (r->local_port == 0)
		r->local_port = (uint16_t)port;
	return 0;
}

static void
directive(struct run *r, char *p)
{
	char *cmd = next_tok(&p), *a1 = next_tok(&p), *a2 = next_tok(&p);
	uint32_t v = 0;
	bool has_v = a1 && parse_u32(a1, &v) == 0;

	if (!strcmp(cmd, "%peer_isn") && has_v) {
		r->peer_isn = v;
	} else if (!strcmp(cmd, "%peer_port") && has_v && v && v < 65536) {
		r->peer_port = (uint16_t)v;
	} else if (!strcmp(cmd, "%local_port") && has_v && v && v < 65536) {
		r->local_port = (uint16_t)v;
	} else if (!strcmp(cmd, "%tolerance") && has_v) {
		r->tolerance_us = (uint64_t)v * 1000;
	} else if (!strcmp(cmd, "%payload") && a1 && (!strcmp(a1, "any") || !strcmp(a1, "check"))) {
		r->check_payload = !strcmp(a1, "check");
	} else if (!strcmp(cmd, "%listen") && has_v && v && v < 65536 && a2) {
		listen_app(r, v, a2);
	} else if (!strcmp(cmd, "%connect") && has_v && v && v < 65536) {
		struct tq_tcp_conn *c;
		int ret;

		r->peer_port = (uint16_t)v;
		r->local_port = 0; /* learned from the SYN */
		r->our_iss = 0;
		ret = tq_tcp_connect(r->w, r->env->peer_ip, (uint16_t)v, &sink_app, NULL, &c);
		if (ret)
			fail(r, "%%connect: %s", strerror(-ret));
		else
			r->conn = c;
		collect(r);
	} else if (!strcmp(cmd, "%send") && has_v) {
		app_send(r, v);
	} else if (!strcmp(cmd, "%release") && has_v) {
		if (need_conn(r, "%release"))
			tq_tcp_rx_release(r->conn, v);
	} else if (!strcmp(cmd, "%shutdown") && !a1) {
		if (need_conn(r, "%shutdown"))
			tq_tcp_shutdown(r->conn);
	} else if (!strcmp(cmd, "%close") && !a1) {
		if (need_conn(r, "%close"))
			tq_tcp_close(r->conn);
	} else if (!strcmp(cmd, "%abort") && !a1) {
		if (need_conn(r, "%abort"))
			tq_tcp_abort(r->conn);
	} else if (!strcmp(cmd, "%rx") && has_v) {
		if (r->rx_bytes != v)
			fail(r, "the sink app received %" PRIu64 " bytes, want %" PRIu32,
			     r->rx_bytes, v);
	} else if (!strcmp(cmd, "%state") && a1) {
		struct tq_tcp_conn *c = lookup_conn(r);
		const char *st = c ? tq_tcp_state_name(c->state) : "CLOSED";

		if (strcmp(st, a1))
			fail(r, "connection %u -> %u is in %s, want %s", r->peer_port,
			     r->local_port, st, a1);
	} else if (!strcmp(cmd, "%closed") && a1) {
		if (!strcmp(a1, "none")) {
			if (r->closed_called)
				fail(r, "on_closed(%s) was called, want not yet",
				     err_name(r->closed_err));
		} else {
			size_t i;

			for (i = 0; i < RTE_DIM(err_names) && strcmp(err_names[i].name, a1); i++)
				;
			if (i == RTE_DIM(err_names))
				fail(r, "%%closed: unknown error \"%s\"", a1);
			else if (!r->closed_called)
				fail(r, "on_closed was not called, want on_closed(%s)", a1);
			else if (r->closed_err != err_names[i].err)
				fail(r, "on_closed(%s), want on_closed(%s)", err_name(r->closed_err),
				     a1);
		}
	} else if (!strcmp(cmd, "%peer_closed") && a1 &&
		   (!strcmp(a1, "yes") || !strcmp(a1, "no"))) {
		if (r->peer_closed != !strcmp(a1, "yes"))
			fail(r, "on_peer_closed %s, want %s", r->peer_closed ? "called" : "not called",
			     a1);
	} else if (!strcmp(cmd, "%counter") && a1 && a2) {
		unsigned int id;

		if (parse_u32(a2, &v)) {
			fail(r, "%%counter %s: bad value", a1);
			return;
		}
		for (id = 1; id < TQ_CTR__COUNT && strcmp(tq_counter_name(id), a1); id++)
			;
		if (id == TQ_CTR__COUNT)
			fail(r, "%%counter: no counter \"%s\"", a1);
		else if (r->w->ctr[id] != v)
			fail(r, "counter %s = %" PRIu64 ", want %" PRIu32, a1, r->w->ctr[id], v);
	} else {
		fail(r, "unknown or malformed directive \"%s%s%s\"", cmd, a1 ? " " : "",
		     a1 ? a1 : "");
	}
}

/* ---------------------------------------------------------------- the script */

static void
run_line(struct run *r, char *line, uint64_t *last_t)
{
	char *p = skip_ws(line), *hash = strchr(p, '#'), *end;
	uint64_t t = *last_t, dt;
	bool rel = true;

	if (hash)
		*hash = '\0';
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (!*p)
		return;
	/* configuration lines come before the worker exists */
	if (!strncmp(p, "%tcp", 4) && isspace((unsigned char)p[4])) {
		char *kv;

		if (r->w) {
			fail(r, "%%tcp must come before every other line");
			return;
		}
		p += 4;
		while ((kv = next_tok(&p)))
			if (set_cfg(r, kv))
				return;
		return;
	}
	if (!r->w && start_worker(r))
		return;
	if (*p == '+' || isdigit((unsigned char)*p) || *p == '.') {
		char *tok = next_tok(&p);

		if (parse_time(tok, &rel, &dt)) {
			fail(r, "bad time \"%s\"", tok);
			return;
		}
		t = rel ? *last_t + dt : dt;
		if (t < *last_t) {
			fail(r, "time goes backwards");
			return;
		}
		p = skip_ws(p);
	}
	*last_t = t;
	if (*p == '>') {
		struct seg g;

		memset(&g, 0, sizeof(g));
		g.dir = '>';
		if (parse_seg(r, p + 1, &g) == 0)
			expect(r, &g, t);
	} else if (*p == '<') {
		struct seg g;

		memset(&g, 0, sizeof(g));
		g.dir = '<';
		if (parse_seg(r, p + 1, &g))
			return;
		advance_to(r, t);
		check_nothing_sent(r);
		if (!r->failed)
			inject(r, &g);
	} else if (*p == '%') {
		advance_to(r, t);
		check_nothing_sent(r);
		if (!r->failed)
			directive(r, p);
		if (!r->failed)
			collect(r);
	} else {
		fail(r, "a line starts with [time] then '<', '>' or '%%'");
	}
	if (!r->failed && r->app_err[0])
		fail(r, "%s", r->app_err);
}

int
tq_pktscript_run(const struct tq_pktscript_env *env, const char *name, const char *text,
		 struct tq_pktscript_result *res)
{
	struct run *r = calloc(1, sizeof(*r));
	uint64_t last_t = 0;
	const char *p = text;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!r) {
		snprintf(res->msg, sizeof(res->msg), "%s: out of memory", name);
		return -1;
	}
	r->outq = calloc(OUTQ_MAX, sizeof(*r->outq));
	if (!r->outq) {
		free(r);
		snprintf(res->msg, sizeof(res->msg), "%s: out of memory", name);
		return -1;
	}
	r->env = env;
	r->name = name;
	r->res = res;
	r->peer_isn = DEFAULT_PEER_ISN;
	r->peer_port = DEFAULT_PEER_PORT;
	r->check_payload = true;
	tq_tcp_conf_defaults(&r->cfg);
	r->cfg.max_conns = DEFAULT_MAX_CONNS;
	cur = r;

	while (*p && !r->failed) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[LINE_MAX_LEN];

		r->line++;
		if (len >= sizeof(line)) {
			fail(r, "line too long");
			break;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		run_line(r, line, &last_t);
		p = nl ? nl + 1 : p + len;
	}
	if (!r->failed && !r->w)
		start_worker(r);
	if (!r->failed) {
		r->line++; /* "the end of the script" */
		check_nothing_sent(r);
	}
	/* teardown: whatever is still open goes with the worker */
	if (r->w) {
		unsigned int avail;

		tq_worker_destroy(r->w);
		tq_dp.nb_workers = 0;
		tq_dp.workers[0] = NULL;
		sink_free_held(r);
		/* a frame the port sent but nobody read */
		{
			struct rte_mbuf *m;

			while (rte_ring_dequeue(env->tx_ring, (void **)&m) == 0)
				rte_pktmbuf_free(m);
		}
		avail = rte_mempool_avail_count(env->pool);
		if (!r->failed && avail != r->pool_start) {
			r->line = 0;
			fail(r, "mbuf leak: %d mbufs not back in the pool after the worker was freed",
			     (int)r->pool_start - (int)avail);
		}
	}
	tq_tcp_nb_listeners = 0;
	rc = r->failed ? -1 : 0;
	cur = NULL;
	free(r->outq);
	free(r);
	return rc;
}

int
tq_pktscript_run_file(const struct tq_pktscript_env *env, const char *path,
		      struct tq_pktscript_result *res)
{
	FILE *f = fopen(path, "r");
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *text;
	long size;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!f) {
		snprintf(res->msg, sizeof(res->msg), "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		snprintf(res->msg, sizeof(res->msg), "%s: cannot size the file", path);
		return -1;
	}
	text = malloc((size_t)size + 1);
	if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
		free(text);
		fclose(f);
		snprintf(res->msg, sizeof(res->msg), "%s: read failed", path);
		return -1;
	}
	text[size] = '\0';
	fclose(f);
	rc = tq_pktscript_run(env, name, text, res);
	free(text);
	return rc;
}
