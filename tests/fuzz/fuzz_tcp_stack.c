/*
 * libFuzzer driver for the whole TCP stack holding live connections: one worker with a
 * ring-backed port, the built-in services and a test application, fed segments that a
 * small program in each input describes. State carries over from input to input (the
 * connections, their timers, the application's held data), so later inputs meet
 * connections in every state; the driver resets everything every RESET_EVERY inputs.
 *
 * An input is a sequence of records [op][len][len argument bytes]; a truncated last record
 * is ignored. Ops (op % 16):
 *   0 NOP         nothing
 *   1,2 SEG       one segment: a mostly valid Ethernet/IPv4/TCP frame from a peer to our
 *                 address, for a connection the driver knows (seq/ack relative to the
 *                 live TCB's rcv_nxt/snd_una/snd_nxt/snd_max) or a new one to a listener;
 *                 fuzzed flags, deltas, window, options (structured or raw), payload,
 *                 checksum right or wrong
 *   3 HANDSHAKE   SYN, then the ACK of our SYN-ACK: a new established connection
 *   4 RAW         fuzz bytes as a frame, or as a TCP segment inside valid headers
 *   5 TIME        move the clock forward and run the TCP timers (RTO, delayed ACK,
 *                 keepalive, TIME_WAIT, FIN_WAIT_2)
 *   6..10 APP     on a test-application connection: send, close, abort, shutdown,
 *                 release held data
 *   11 MOOD       what the application does from its callbacks (close, abort, send, hold)
 *   12 CONNECT    an active open, optionally answered at once with a SYN-ACK
 *   13 ARP        learn a peer again, or age the neighbour cache
 *   14 EPILOGUE   drain, cap the connection count, check every invariant
 *   15 BURST      several segments in a row on one connection, seq advancing
 * Every op is followed by what a poll iteration does at its end (flush the TX queue,
 * reap closed TCBs); every frame the port sends is checked (lengths, checksums, and for
 * the test application's connections the payload bytes against the stream pattern) and
 * freed. After each input, the epilogue checks the stack from outside: TCB table and
 * counts, sequence-space order, send/out-of-order queue bookkeeping, armed timers (and
 * that every connection that waits for something has the timer that ends the wait),
 * and every mbuf of the pool accounted for with the right reference count.
 *
 * Memory checks beyond ASan's defaults: the mbuf pool uses mempool ops that poison an
 * mbuf while it sits in the pool (use after free, double free), the dataplane is built
 * with RTE_LIBRTE_MBUF_DEBUG (chain sanity on every free), and its rte_zmalloc_socket /
 * rte_free go to malloc (see meson.build) so ASan sees the TCB and queue arrays.
 *
 * Reproducing: a crash may need the inputs before it. With TQ_FUZZ_HISTORY=<file> every
 * record executed since the last reset is written to <file> as it runs (a shared mapping:
 * it survives any crash); <file> is itself an input that replays the whole history from
 * a fresh stack (trailing zero bytes are NOPs). Minimise it with -minimize_crash=1.
 * "%p" in the name becomes the process id (for -fork/-jobs); the file of a process
 * that exits normally is removed. TQ_FUZZ_FRESH=1 starts every input from a fresh stack,
 * so that libFuzzer's minimiser (which runs many inputs in one process) sees inputs that
 * stand alone: TQ_FUZZ_FRESH=1 fuzz_tcp_stack -minimize_crash=1 -runs=N <file>.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <sanitizer/asan_interface.h>

#include "dataplane/net/tq_ipv4.h"
#include "dataplane/net/tq_net.h"
#include "dataplane/net/tq_tcp_var.h"
#include "dataplane/tq_port.h"
#include "dataplane/tq_services.h"
#include "dataplane/tq_worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void *tq_fuzz_zmalloc_socket(const char *type, size_t size, unsigned int align, int socket);
void tq_fuzz_free(void *p);

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond))                                                                   \
			check_failed(__LINE__, #cond);                                         \
	} while (0)

#define OUR_IP "198.18.0.1"
#define PEER0_IP "198.18.0.7"  /* learned at start */
#define PEER1_IP "198.18.0.8"  /* unknown until an ARP op: our replies wait in ARP */
#define GATEWAY_IP "198.18.0.254"

#define POOL_SIZE 2047
#define FRAME_MAX 2048
#define MAX_CONNS 64
#define CONN_CAP 48     /* after each input, abort connections beyond this */
#define NSLOTS 16       /* peer endpoints the driver remembers */
#define RESET_EVERY 4000 /* inputs */
#define HIST_CAP (1u << 20)
#define APP_HELD_MAX 8

enum {
	OP_NOP, OP_SEG, OP_SEG2, OP_HANDSHAKE, OP_RAW, OP_TIME, OP_SEND, OP_CLOSE, OP_ABORT,
	OP_SHUTDOWN, OP_RELEASE, OP_MOOD, OP_CONNECT, OP_ARP, OP_EPILOGUE, OP_BURST, OP_COUNT,
};

/* listener ports: echo, discard, chargen, the test application (twice), and a closed one */
#define PORT_ECHO 7
#define PORT_DISCARD 9
#define PORT_CHARGEN 19
#define PORT_APP 5000
#define PORT_APP2 5001
#define PORT_CLOSED 6000
static const uint16_t dst_ports[] = {PORT_ECHO, PORT_DISCARD, PORT_CHARGEN,
				     PORT_APP,  PORT_APP2,    PORT_CLOSED};

static struct rte_mempool *pool;
static struct rte_ring *rx_ring, *tx_ring;
static uint16_t port;
static struct rte_ether_addr our_mac;
static const struct rte_ether_addr peer_mac[2] = {{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}},
						  {{0x52, 0x54, 0x00, 0x12, 0x34, 0x57}}};
static uint32_t our_ip, peer_ip[2];
static struct tq_worker *w;
static uint64_t clock_base; /* TSC of virtual time 0, on a tick boundary */
static uint64_t vclock;     /* virtual TSC cycles since clock_base */
static unsigned long inputs_since_reset;

/* ---- failure reporting ---- */

static void end_of_iteration(void);

static void
check_failed(int line, const char *what)
{
	fprintf(stderr, "fuzz_tcp_stack.c:%d: invariant failed: %s\n", line, what);
	abort();
}

/* ---- history (see the header comment) ---- */

static uint8_t *hist;
static size_t hist_len;  /* bytes of records since the last reset (counted without a file) */
static char hist_path[512];

/* A run that ends normally needs no history. */
static void
hist_remove(void)
{
	unlink(hist_path);
}

static void
hist_open(void)
{
	const char *path = getenv("TQ_FUZZ_HISTORY");
	const char *pid = path ? strstr(path, "%p") : NULL;
	int fd;

	if (!path || !*path)
		return;
	/* "%p" becomes the process id: one history per process of -fork/-jobs runs */
	if (pid)
		snprintf(hist_path, sizeof(hist_path), "%.*s%d%s", (int)(pid - path), path,
			 (int)getpid(), pid + 2);
	else
		snprintf(hist_path, sizeof(hist_path), "%s", path);
	path = hist_path;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, HIST_CAP) < 0) {
		perror("TQ_FUZZ_HISTORY");
		exit(1);
	}
	hist = mmap(NULL, HIST_CAP, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (hist == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	atexit(hist_remove);
}

static void
hist_append(uint8_t op, const uint8_t *args, size_t len)
{
	if (hist && hist_len + 2 + len <= HIST_CAP) {
		hist[hist_len] = op;
		hist[hist_len + 1] = (uint8_t)len;
		memcpy(hist + hist_len + 2, args, len);
	}
	hist_len += 2 + len;
}

static void
hist_clear(void)
{
	if (hist)
		memset(hist, 0, RTE_MIN(hist_len, (size_t)HIST_CAP));
	hist_len = 0;
}

/* ---- an argument reader: zeros past the end ---- */

struct rd {
	const uint8_t *p;
	size_t n, i;
};

static uint8_t
rd8(struct rd *r)
{
	return r->i < r->n ? r->p[r->i++] : 0;
}

static uint16_t
rd16(struct rd *r)
{
	uint16_t hi = rd8(r);

	return (uint16_t)(hi << 8 | rd8(r));
}

static uint32_t
rd32(struct rd *r)
{
	uint32_t hi = rd16(r);

	return hi << 16 | rd16(r);
}

static size_t
rd_left(const struct rd *r)
{
	return r->n - r->i;
}

/*
 * ---- mempool ops that poison pooled mbufs for ASan ----
 * Armed once the pool is built: rte_pktmbuf_init() writes every object while it sits in
 * the pool, with the memset that ASan intercepts.
 */
static bool pool_poison;

static void
poison_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned int idx)
{
	(void)arg;
	(void)idx;
	ASAN_POISON_MEMORY_REGION(obj, mp->elt_size);
}

static int
asan_pool_alloc(struct rte_mempool *mp)
{
	char name[RTE_RING_NAMESIZE];
	struct rte_ring *r;

	snprintf(name, sizeof(name), "FZ_%s", mp->name);
	r = rte_ring_create(name, rte_align32pow2(mp->size + 1), mp->socket_id,
			    RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!r)
		return -rte_errno;
	mp->pool_data = r;
	return 0;
}

static void
asan_pool_free(struct rte_mempool *mp)
{
	rte_ring_free(mp->pool_data);
}

static int
asan_pool_enqueue(struct rte_mempool *mp, void *const *objs, unsigned int n)
{
	for (unsigned int i = 0; pool_poison && i < n; i++)
		ASAN_POISON_MEMORY_REGION(objs[i], mp->elt_size);
	return rte_ring_enqueue_bulk(mp->pool_data, objs, n, NULL) == n ? 0 : -ENOBUFS;
}

static int
asan_pool_dequeue(struct rte_mempool *mp, void **objs, unsigned int n)
{
	if (rte_ring_dequeue_bulk(mp->pool_data, objs, n, NULL) != n)
		return -ENOBUFS;
	for (unsigned int i = 0; i < n; i++)
		ASAN_UNPOISON_MEMORY_REGION(objs[i], mp->elt_size);
	return 0;
}

static unsigned int
asan_pool_count(const struct rte_mempool *mp)
{
	return rte_ring_count(mp->pool_data);
}

static const struct rte_mempool_ops asan_pool_ops = {
	.name = "tq_fuzz_asan",
	.alloc = asan_pool_alloc,
	.free = asan_pool_free,
	.enqueue = asan_pool_enqueue,
	.dequeue = asan_pool_dequeue,
	.get_count = asan_pool_count,
};

/* ---- rte_zmalloc_socket/rte_free of the dataplane, for ASan (see meson.build) ---- */

void *
tq_fuzz_zmalloc_socket(const char *type, size_t size, unsigned int align, int socket)
{
	void *p;

	(void)type;
	(void)socket;
	if (align < 16)
		align = 16;
	if (posix_memalign(&p, align, size ? size : 1))
		return NULL;
	memset(p, 0, size);
	return p;
}

void
tq_fuzz_free(void *p)
{
	free(p);
}

/* ---- the peer endpoints the driver talks from ---- */

struct slot {
	bool used;
	uint8_t peer;          /* index in peer_ip[] */
	uint16_t rport, lport; /* host order: the peer's port, ours */
	uint32_t ts;           /* the peer's timestamp clock */
	/* the TCB's numbers when last seen (or the peer's ISN before there is a TCB) */
	uint32_t irs, rcv_nxt, rcv_adv, snd_una, snd_nxt, snd_max, iss;
	uint16_t snd_mss;
	bool cookie;           /* a SYN-ACK left without a TCB (SYN cookie): iss is its seq */
};

static struct slot slots[NSLOTS];
static unsigned int slot_next, slot_used;
static uint16_t next_rport = 1024;
static uint32_t next_isn = 0x10000000;

static struct tq_tcp_key
slot_key(const struct slot *s)
{
	struct tq_tcp_key k = {
		.raddr = peer_ip[s->peer], .laddr = our_ip,
		.rport = rte_cpu_to_be_16(s->rport), .lport = rte_cpu_to_be_16(s->lport),
	};
	return k;
}

/* The live TCB of @s (refreshing the numbers we keep), or NULL. */
static struct tq_tcp_conn *
slot_conn(struct slot *s)
{
	struct tq_tcp_key k = slot_key(s);
	struct tq_tcp_conn *c = tq_tcp_lookup(w, &k);

	if (c) {
		s->irs = c->irs;
		s->rcv_nxt = c->rcv_nxt;
		s->rcv_adv = c->rcv_adv;
		s->snd_una = c->snd_una;
		s->snd_nxt = c->snd_nxt;
		s->snd_max = c->snd_max;
		s->iss = c->iss;
		s->snd_mss = c->snd_mss;
	}
	return c;
}

static struct slot *
slot_new(uint8_t peer, uint16_t lport, uint16_t rport)
{
	struct slot *s = &slots[slot_next];

	slot_next = (slot_next + 1) % NSLOTS;
	if (slot_used < NSLOTS)
		slot_used++;
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->peer = peer;
	s->lport = lport;
	s->rport = rport;
	s->ts = 1000;
	next_isn += 0x01234567;
	s->irs = next_isn;
	s->rcv_nxt = next_isn;
	s->snd_mss = 536;
	return s;
}

/* The @k-th most recent slot (0 = newest), or NULL when there is none. */
static struct slot *
slot_pick(uint8_t k)
{
	if (!slot_used)
		return NULL;
	k = (uint8_t)(k % slot_used);
	return &slots[(slot_next + NSLOTS - 1 - k) % NSLOTS];
}

/* A new endpoint towards a listener port chosen by @sel. */
static struct slot *
slot_for_new(uint8_t sel)
{
	uint8_t peer = ((sel >> 3) & 3) == 3 ? 1 : 0;

	if (++next_rport < 1024)
		next_rport = 1024;
	return slot_new(peer, dst_ports[(sel & 7) % RTE_DIM(dst_ports)], next_rport);
}

/* ---- the test application ---- */

struct app_conn {
	struct tq_tcp_conn *c;
	bool active;
	uint8_t nheld;
	uint32_t held_bytes;
	uint64_t sent;           /* stream offset of the next byte we queue */
	struct rte_mbuf *held[APP_HELD_MAX];
};

static struct app_conn apps[MAX_CONNS];
static uint32_t mood = 0x9e3779b9;
static const struct tq_tcp_app test_app;
static int app_listener_cookie;

static uint32_t
mood_bits(unsigned int n)
{
	uint32_t v = mood & ((1u << n) - 1);

	mood = mood >> n | mood << (32 - n);
	return v;
}

/* Byte @off of every test-application stream: lets the TX check verify segmentation. */
static uint8_t
pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 8) * 13 + 0x5a);
}

static struct app_conn *
app_of(struct tq_tcp_conn *c)
{
	struct app_conn *e = tq_tcp_user(c);

	CHECK(e && e >= apps && e < apps + MAX_CONNS && e->active && e->c == c);
	return e;
}

static struct app_conn *
app_alloc(void)
{
	for (unsigned int i = 0; i < MAX_CONNS; i++)
		if (!apps[i].active) {
			memset(&apps[i], 0, sizeof(apps[i]));
			apps[i].active = true;
			return &apps[i];
		}
	return NULL;
}

/* Queue @len pattern bytes as a chain of @nseg mbufs. Returns tq_tcp_send's answer. */
static int
app_send(struct app_conn *e, uint32_t len, unsigned int nseg)
{
	struct rte_mbuf *head = NULL;
	uint32_t left = len;
	int ret;

	if (len == 0)
		return 0;
	if (len > 65535)
		len = left = 65535;
	for (unsigned int i = 0; i < nseg && left; i++) {
		uint32_t n = i + 1 == nseg ? left : RTE_MAX(left / (nseg - i), 1u);
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		uint8_t *p;

		if (!m)
			break;
		n = RTE_MIN(n, (uint32_t)rte_pktmbuf_tailroom(m));
		p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)n);
		CHECK(p);
		for (uint32_t j = 0; j < n; j++)
			p[j] = pattern(e->sent + (len - left) + j);
		if (head && rte_pktmbuf_chain(head, m)) {
			rte_pktmbuf_free(m);
			break;
		}
		if (!head)
			head = m;
		left -= n;
	}
	if (!head)
		return -ENOMEM;
	len = rte_pktmbuf_pkt_len(head);
	ret = tq_tcp_send(e->c, head);
	if (ret == 0)
		e->sent += len;
	else
		rte_pktmbuf_free(head);
	return ret;
}

static void
app_release(struct app_conn *e, unsigned int n)
{
	uint32_t bytes = 0;

	n = RTE_MIN(n, (unsigned int)e->nheld);
	for (unsigned int i = 0; i < n; i++) {
		bytes += rte_pktmbuf_pkt_len(e->held[i]);
		rte_pktmbuf_free(e->held[i]);
	}
	memmove(e->held, e->held + n, (e->nheld - n) * sizeof(e->held[0]));
	e->nheld = (uint8_t)(e->nheld - n);
	e->held_bytes -= bytes;
	tq_tcp_rx_release(e->c, bytes);
}

static int
app_connected(struct tq_tcp_conn *c)
{
	struct app_conn *e = tq_tcp_user(c);

	if (!e) { /* passive open */
		CHECK(tq_tcp_listener_user(c) == NULL ||
		      tq_tcp_listener_user(c) == &app_listener_cookie);
		e = app_alloc();
		if (!e)
			return -1;
		e->c = c;
		tq_tcp_set_user(c, e);
	}
	app_of(c);
	switch (mood_bits(3)) {
	case 0: /* refused: the stack resets it without on_closed */
		e->active = false;
		e->c = NULL;
		tq_tcp_set_user(c, NULL);
		return -1;
	case 1:
		app_send(e, 100, 1);
		break;
	case 2:
		tq_tcp_close(c);
		break;
	case 3:
		tq_tcp_abort(c); /* on_closed has run: @e is free again */
		break;
	case 4:
		tq_tcp_shutdown(c);
		break;
	case 5:
		app_send(e, 3000, 3);
		break;
	default:
		break;
	}
	return 0;
}

static void
app_data(struct tq_tcp_conn *c, struct rte_mbuf *m)
{
	struct app_conn *e = app_of(c);
	uint32_t len = rte_pktmbuf_pkt_len(m);
	const char *why;

	CHECK(rte_mbuf_check(m, 1, &why) == 0);
	CHECK(len > 0);
	e->held_bytes += len; /* ours until released */
	switch (mood_bits(3)) {
	case 0:
	case 1:
		if (e->nheld < APP_HELD_MAX) {
			e->held[e->nheld++] = m;
			return;
		}
		break;
	case 3:
		app_send(e, len, 2);
		break;
	case 4:
		tq_tcp_close(c);
		break;
	case 5:
		e->held_bytes -= len;
		rte_pktmbuf_free(m);
		tq_tcp_abort(c); /* on_closed has run */
		return;
	case 6:
		tq_tcp_shutdown(c);
		break;
	case 7:
		if (e->nheld < APP_HELD_MAX) {
			e->held[e->nheld++] = m;
			app_release(e, 1);
			return;
		}
		break;
	default:
		break;
	}
	e->held_bytes -= len;
	rte_pktmbuf_free(m);
	tq_tcp_rx_release(c, len);
}

static void
app_writable(struct tq_tcp_conn *c)
{
	struct app_conn *e = app_of(c);

	switch (mood_bits(2)) {
	case 0:
		app_send(e, 500, 1);
		break;
	case 1:
		for (int i = 0; i < 10 && app_send(e, 1200, 2) == 0; i++)
			;
		break;
	default:
		break;
	}
}

static void
app_peer_closed(struct tq_tcp_conn *c)
{
	struct app_conn *e = app_of(c);

	CHECK(tq_tcp_peer_closed(c));
	switch (mood_bits(2)) {
	case 0:
		tq_tcp_close(c);
		break;
	case 1:
		app_send(e, 200, 1);
		tq_tcp_close(c);
		break;
	case 2:
		tq_tcp_abort(c);
		break;
	default:
		break;
	}
}

static void
app_closed(struct tq_tcp_conn *c, int err)
{
	struct app_conn *e = app_of(c);

	CHECK(err == 0 || err == -ECONNRESET || err == -ETIMEDOUT || err == -ECONNREFUSED ||
	      err == -ECONNABORTED);
	for (unsigned int i = 0; i < e->nheld; i++)
		rte_pktmbuf_free(e->held[i]);
	e->nheld = 0;
	e->held_bytes = 0;
	e->active = false;
	e->c = NULL;
	tq_tcp_set_user(c, NULL);
}

static const struct tq_tcp_app test_app = {
	.on_connected = app_connected,
	.on_data = app_data,
	.on_writable = app_writable,
	.on_peer_closed = app_peer_closed,
	.on_closed = app_closed,
};

/* ---- frames in ---- */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
inject(const uint8_t *f, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	char *p;

	if (!m)
		return; /* the pool is empty: a NIC would drop it too */
	p = rte_pktmbuf_append(m, (uint16_t)len);
	CHECK(p);
	memcpy(p, f, len);
	tq_net_input(w, port, m);
}

/* Ethernet + IPv4 around the @tcp_len bytes already at f + 34; returns the frame length. */
static size_t
wrap_ipv4(uint8_t *f, uint8_t peer, size_t tcp_len, bool fix_tcp_csum, bool bad_csum)
{
	uint8_t *ip = f + 14, *tcp = f + 34;
	uint16_t csum;

	memcpy(f, &our_mac, 6);
	memcpy(f + 6, &peer_mac[peer], 6);
	put16(f + 12, RTE_ETHER_TYPE_IPV4);
	tq_ipv4_build(ip, peer_ip[peer], our_ip, IPPROTO_TCP, (uint16_t)tcp_len, 0x4242,
		      64, false);
	if (fix_tcp_csum && tcp_len >= 20) {
		tcp[16] = tcp[17] = 0;
		csum = tq_tcp_checksum(peer_ip[peer], our_ip, tcp, tcp_len);
		if (bad_csum)
			csum ^= 0x0101;
		memcpy(tcp + 16, &csum, 2);
	}
	return 34 + tcp_len;
}

/* Structured options from the reader, relative to @s. */
static void
read_opts(struct rd *r, struct slot *s, uint8_t sel, struct tq_tcp_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (sel & 0x01) {
		o->present |= TQ_TCP_OPT_MSS;
		o->mss = rd16(r);
	}
	if (sel & 0x02) {
		o->present |= TQ_TCP_OPT_WSCALE;
		o->wscale = rd8(r);
	}
	if (sel & 0x04)
		o->present |= TQ_TCP_OPT_SACK_PERM;
	if (sel & 0x08) {
		int8_t d = (int8_t)rd8(r);
		uint8_t ecr = rd8(r);

		o->present |= TQ_TCP_OPT_TS;
		s->ts += (uint32_t)(int32_t)d; /* mostly forward: PAWS sees both */
		o->ts_val = s->ts;
		o->ts_ecr = ecr == 0xff ? rd32(r) : tq_tcp_ts_now(w) - ecr;
	}
	if (sel & 0x10) {
		unsigned int n = ((sel >> 5) & 3) + 1;
		uint32_t mss = s->snd_mss ? s->snd_mss : 536;

		o->present |= TQ_TCP_OPT_SACK;
		o->sack_count = (uint8_t)n;
		for (unsigned int i = 0; i < n; i++) {
			uint8_t a = rd8(r), b = rd8(r);

			o->sack[i].start = s->snd_una + (a & 15) * mss + (a >> 4 == 15 ? rd8(r) : 0);
			o->sack[i].end = o->sack[i].start + ((b & 7) + 1) * mss -
					 (b & 0x80 ? (b >> 3 & 15) : 0);
		}
	}
}

struct seg_desc {
	struct slot *s;
	uint8_t flags;
	uint32_t seq, ack;
	uint16_t window;
	bool raw_opts, bad_csum, no_auto_ts;
	uint8_t raw_opt_len;
	uint8_t raw_opt[40];
	struct tq_tcp_opts opts;
	uint16_t paylen;
	const uint8_t *payload; /* NULL: a pattern */
	size_t payload_avail;
};

static void
send_seg(const struct seg_desc *d)
{
	static uint8_t f[FRAME_MAX + 64];
	uint8_t *tcp = f + 34;
	size_t hlen, room, plen;
	struct tq_tcp_hdr_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.src_port = d->s->rport;
	spec.dst_port = d->s->lport;
	spec.seq = d->seq;
	spec.ack = d->ack;
	spec.flags = d->flags;
	spec.window = d->window;
	if (d->raw_opts) {
		hlen = 20 + (d->raw_opt_len + 3u) / 4 * 4;
		tq_tcp_build(tcp, &spec);
		memset(tcp + 20, 0, hlen - 20);
		memcpy(tcp + 20, d->raw_opt, d->raw_opt_len);
		tcp[12] = (uint8_t)(hlen / 4 << 4);
	} else {
		spec.opts = d->opts;
		hlen = tq_tcp_build(tcp, &spec);
	}
	room = FRAME_MAX - 34 - hlen;
	plen = RTE_MIN((size_t)d->paylen, room);
	for (size_t i = 0; i < plen; i++)
		tcp[hlen + i] = d->payload && i < d->payload_avail ? d->payload[i]
								   : (uint8_t)(i * 31 + d->seq);
	inject(f, wrap_ipv4(f, d->s->peer, hlen + plen, true, d->bad_csum));
}

static uint32_t
rel(uint8_t mode, struct rd *r, uint32_t b0, uint32_t b1, uint32_t b2)
{
	unsigned int shift = ((mode >> 2) & 7) * 3;
	int32_t delta = (int8_t)rd8(r);
	uint32_t base;

	switch (mode & 3) {
	case 0:
		base = b0;
		break;
	case 1:
		base = b1;
		break;
	case 2:
		base = b2;
		break;
	default:
		return rd32(r);
	}
	return base + (uint32_t)(delta * (int32_t)(1u << shift));
}

/*
 * Read a segment description: [sel][flags][mode][seqmode][seqd][ackmode][ackd][win:2]
 * [optsel][opts...][paylen:2][payload...]. Returns false when there is nothing to send to.
 */
static bool
read_seg(struct rd *r, struct seg_desc *d)
{
	uint8_t sel = rd8(r), mode, optsel;
	struct slot *s;

	memset(d, 0, sizeof(*d));
	s = (sel & 0x80) || !slot_used ? slot_for_new(sel) : slot_pick(sel);
	slot_conn(s);
	d->s = s;
	d->flags = rd8(r);
	mode = rd8(r);
	d->bad_csum = (mode & 0x07) == 0x07; /* rarely: most segments must get in */
	d->no_auto_ts = mode & 0x08;
	{
		uint8_t sm = rd8(r);

		/* seq: rcv_nxt, the right edge we advertised, or irs (+ scaled delta) */
		d->seq = rel(sm, r, s->rcv_nxt, s->rcv_adv, s->irs + 1);
	}
	{
		uint8_t am = rd8(r);

		d->ack = rel(am, r, s->snd_nxt, s->snd_una, s->snd_max);
	}
	d->window = rd16(r);
	optsel = rd8(r);
	if (optsel & 0x80) {
		d->raw_opts = true;
		d->raw_opt_len = (uint8_t)RTE_MIN((unsigned int)(optsel & 0x3f), 40u);
		for (unsigned int i = 0; i < d->raw_opt_len; i++)
			d->raw_opt[i] = rd8(r);
	} else {
		read_opts(r, s, optsel, &d->opts);
	}
	d->paylen = rd16(r);
	if (d->paylen & 0x8000) { /* the payload bytes follow */
		d->payload = r->p + r->i;
		d->payload_avail = rd_left(r);
	}
	d->paylen &= 0x7ff;
	return true;
}

/* Fill in a timestamp option the way a well-behaved peer would, when @c uses them. */
static void
auto_ts(struct seg_desc *d, const struct tq_tcp_conn *c)
{
	if (c && c->ts_ok && !d->raw_opts && !(d->opts.present & TQ_TCP_OPT_TS)) {
		d->opts.present |= TQ_TCP_OPT_TS;
		d->opts.ts_val = ++d->s->ts;
		d->opts.ts_ecr = c->ts_recent ? tq_tcp_ts_now(w) : 0;
	}
}

static void
op_seg(struct rd *r, unsigned int count)
{
	struct seg_desc d;
	struct tq_tcp_conn *c;

	if (!read_seg(r, &d))
		return;
	c = slot_conn(d.s);
	if (!d.no_auto_ts)
		auto_ts(&d, c);
	for (unsigned int i = 0; i < count; i++) {
		if (i && (d.opts.present & TQ_TCP_OPT_TS))
			d.opts.ts_val = ++d.s->ts;
		send_seg(&d);
		d.seq += d.paylen ? d.paylen : 1;
		if (i + 1 < count) {
			end_of_iteration();
			c = slot_conn(d.s);
			if (!(d.flags & TQ_TCP_SYN) && c)
				d.ack = c->snd_nxt;
		}
	}
}

/* [sel][optsel][opts...][win:2][isn-delta][paylen:2] */
static void
op_handshake(struct rd *r)
{
	uint8_t sel = rd8(r), optsel = rd8(r);
	struct slot *s = slot_for_new(sel);
	struct tq_tcp_conn *c;
	struct seg_desc d;

	memset(&d, 0, sizeof(d));
	d.s = s;
	read_opts(r, s, optsel & 0x0f, &d.opts); /* SYN options: no SACK blocks */
	d.window = rd16(r);
	s->irs += rd8(r);
	d.seq = s->irs;
	d.flags = TQ_TCP_SYN;
	send_seg(&d);
	end_of_iteration(); /* sees the SYN-ACK: a SYN cookie leaves no TCB */
	c = slot_conn(s);
	memset(&d.opts, 0, sizeof(d.opts));
	d.flags = TQ_TCP_ACK;
	if (c && c->state == TQ_TCP_SYN_RECEIVED) {
		d.seq = c->rcv_nxt;
		d.ack = c->snd_nxt;
	} else if (!c && s->cookie) {
		d.seq = s->rcv_nxt;
		d.ack = s->snd_nxt;
	} else {
		return;
	}
	d.paylen = rd16(r) & 0x7ff;
	if (d.paylen)
		d.flags |= TQ_TCP_PSH;
	auto_ts(&d, c);
	send_seg(&d);
}

/* [mode][bytes...] */
static void
op_raw(struct rd *r)
{
	static uint8_t f[FRAME_MAX + 64];
	uint8_t mode = rd8(r);
	size_t n = rd_left(r);

	if (mode & 0x01) { /* a TCP segment of fuzz bytes in valid headers */
		uint8_t peer = (mode >> 1) & 1;

		memcpy(f + 34, r->p + r->i, n);
		if ((mode & 0x08) && n >= 4 && slot_used) { /* aimed at a known connection */
			struct slot *s = slot_pick(mode >> 4);

			put16(f + 34, s->rport);
			put16(f + 36, s->lport);
			peer = s->peer;
		}
		inject(f, wrap_ipv4(f, peer, n, mode & 0x04, false));
	} else if (n >= 14) {
		memcpy(f, r->p + r->i, n);
		if (mode & 0x02)
			memcpy(f, &our_mac, 6);
		inject(f, n);
	}
	r->i = r->n;
}

/* Move the clock by [unit][amount...] and run the timers. */
static void
op_time(struct rd *r)
{
	uint64_t tick = w->tcp->tsc_per_tick;
	uint8_t unit = rd8(r);
	uint64_t d;

	switch (unit & 3) {
	case 0:
		d = (uint64_t)rd8(r) * tick;
		break;
	case 1:
		d = (uint64_t)rd16(r) * tick;
		break;
	case 2:
		d = (uint64_t)rd16(r) * 16 * tick;
		break;
	default:
		d = (uint64_t)rd16(r) * tick / 1000; /* microseconds: RTT samples */
		break;
	}
	vclock += d;
	w->now = clock_base + vclock;
	tq_tcp_timers_run(w);
}

/* The test application's connection of the slot chosen by @sel, or NULL. */
static struct app_conn *
pick_app(uint8_t sel)
{
	struct slot *s = slot_pick(sel);
	struct tq_tcp_conn *c = s ? slot_conn(s) : NULL;
	struct app_conn *e;

	if (!c || c->app != &test_app || !(e = tq_tcp_user(c)))
		return NULL;
	return app_of(c);
}

static void
op_app(uint8_t op, struct rd *r)
{
	struct app_conn *e = pick_app(rd8(r));

	if (!e)
		return;
	switch (op) {
	case OP_SEND: {
		uint32_t len = rd16(r) & 0x3fff;

		app_send(e, len, rd8(r) % 4 + 1);
		break;
	}
	case OP_CLOSE:
		tq_tcp_close(e->c);
		break;
	case OP_ABORT:
		tq_tcp_abort(e->c);
		break;
	case OP_SHUTDOWN:
		if (rd8(r) & 1)
			tq_tcp_want_writable(e->c);
		else
			tq_tcp_shutdown(e->c);
		break;
	case OP_RELEASE:
		app_release(e, rd8(r) % (APP_HELD_MAX + 1));
		break;
	default:
		break;
	}
}

/* [port:2][flags][synack: sel of options...][win:2] */
static void
op_connect(struct rd *r)
{
	uint16_t dport = rd16(r);
	uint8_t fl = rd8(r);
	uint8_t peer = (fl & 0x80) ? 1 : 0;
	struct app_conn *e = app_alloc();
	struct tq_tcp_conn *c;
	struct slot *s;
	struct seg_desc d;

	if (!e)
		return;
	if (tq_tcp_connect(w, peer_ip[peer], dport, &test_app, e, &c)) {
		e->active = false;
		return;
	}
	e->c = c;
	s = slot_new(peer, rte_be_to_cpu_16(c->key.lport), dport);
	slot_conn(s);
	if (!(fl & 1))
		return;
	/* the peer answers at once: SYN-ACK (or whatever flags say) with fuzzed options */
	memset(&d, 0, sizeof(d));
	d.s = s;
	d.flags = (fl & 2) ? (uint8_t)(rd8(r) | TQ_TCP_SYN) : TQ_TCP_SYN | TQ_TCP_ACK;
	read_opts(r, s, rd8(r) & 0x0f, &d.opts);
	d.window = rd16(r);
	d.seq = s->irs;
	d.ack = c->iss + 1 + (uint32_t)(int8_t)((fl & 4) ? rd8(r) : 0);
	send_seg(&d);
}

static void
learn_peer(uint8_t peer)
{
	uint8_t f[60];

	memset(f, 0, sizeof(f));
	memset(f, 0xff, 6);
	memcpy(f + 6, &peer_mac[peer], 6);
	put16(f + 12, RTE_ETHER_TYPE_ARP);
	put16(f + 14, 1);
	put16(f + 16, RTE_ETHER_TYPE_IPV4);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 1);
	memcpy(f + 22, &peer_mac[peer], 6);
	memcpy(f + 28, &peer_ip[peer], 4);
	memcpy(f + 38, &our_ip, 4);
	inject(f, sizeof(f));
}

static void
op_arp(struct rd *r)
{
	uint8_t b = rd8(r);

	if (b & 0x80)
		tq_arp_age(w);
	else
		learn_peer(b & 1);
}

/* ---- frames out ---- */

/*
 * A SYN-ACK that has no TCB behind it is a SYN cookie: remember its numbers in the slot,
 * so that the next ACK from there can complete the handshake.
 */
static void
learn_syn_ack(uint32_t raddr, const struct tq_tcp_view *v)
{
	for (unsigned int i = 0; i < NSLOTS; i++) {
		struct slot *s = &slots[i];

		if (!s->used || peer_ip[s->peer] != raddr || s->rport != v->dst_port ||
		    s->lport != v->src_port || slot_conn(s))
			continue;
		s->cookie = true;
		s->iss = v->seq;
		s->snd_una = s->snd_nxt = s->snd_max = v->seq + 1;
		s->rcv_nxt = s->rcv_adv = v->ack;
		s->irs = v->ack - 1;
	}
}

/* Check a frame the port sent. */
static void
check_tx(struct rte_mbuf *m)
{
	static uint8_t f[FRAME_MAX * 2];
	const char *why;
	uint32_t len = rte_pktmbuf_pkt_len(m);
	struct tq_ipv4_view ip;
	struct tq_tcp_view v;
	const uint8_t *p;

	CHECK(rte_mbuf_check(m, 1, &why) == 0);
	p = rte_pktmbuf_read(m, 0, len, f);
	CHECK(p);
	if (len > 14 + 1500) {
		fprintf(stderr, "frame of %u bytes in %u segments:", len, m->nb_segs);
		for (unsigned int i = 0; i < 14 + 20 + 40 && i < len; i++)
			fprintf(stderr, " %02x", p[i]);
		fprintf(stderr, "\n");
	}
	CHECK(len >= 14 && len <= 14 + 1500);
	CHECK(memcmp(p + 6, &our_mac, 6) == 0);
	if (p[12] != 0x08 || p[13] != 0x00)
		return; /* ARP */
	CHECK(!tq_ports[port].tx_ipv4_csum);
	CHECK(tq_ipv4_parse(p + 14, len - 14, 0, &ip) == 20);
	CHECK(ip.total_len == len - 14);
	CHECK(ip.src == our_ip);
	if (ip.proto != IPPROTO_TCP)
		return;
	CHECK(tq_tcp_checksum_ok(ip.src, ip.dst, ip.payload, ip.payload_len));
	CHECK(tq_tcp_parse(ip.payload, ip.payload_len, &v) > 0);
	CHECK(!((v.flags & TQ_TCP_RST) && v.payload_len));
	if ((v.flags & (TQ_TCP_SYN | TQ_TCP_ACK)) == (TQ_TCP_SYN | TQ_TCP_ACK))
		learn_syn_ack(ip.dst, &v);
	if (v.payload_len) {
		struct tq_tcp_key k = {.raddr = ip.dst, .laddr = ip.src,
				       .rport = rte_cpu_to_be_16(v.dst_port),
				       .lport = rte_cpu_to_be_16(v.src_port)};
		struct tq_tcp_conn *c = tq_tcp_lookup(w, &k);

		CHECK(!(v.flags & TQ_TCP_SYN));
		CHECK(v.payload_len <= 1460);
		/* the test application's bytes come out where they belong in its stream */
		if (c && c->app == &test_app && tq_seq_gt(v.seq, c->iss) &&
		    tq_seq_le(v.seq + (uint32_t)v.payload_len, c->snd_max)) {
			uint32_t off = v.seq - c->iss - 1;

			for (size_t j = 0; j < v.payload_len; j++)
				if (v.payload[j] != pattern((uint64_t)off + j)) {
					fprintf(stderr, "seq %u (stream offset %u) byte %zu: %02x, "
						"want %02x\n", v.seq, off, j, v.payload[j],
						pattern((uint64_t)off + j));
					CHECK(!"TX payload differs from the stream");
				}
		}
	}
}

static void
drain_tx(void)
{
	struct rte_mbuf *m[64];
	unsigned int n;

	tq_worker_flush(w);
	while ((n = rte_ring_dequeue_burst(tx_ring, (void **)m, RTE_DIM(m), NULL)) > 0)
		for (unsigned int i = 0; i < n; i++) {
			check_tx(m[i]);
			rte_pktmbuf_free(m[i]);
		}
}

/* What a poll iteration does after its input: reap, send. */
static void
end_of_iteration(void)
{
	tq_tcp_timers_run(w);
	drain_tx();
}

/* ---- invariants ---- */

static const struct rte_mbuf *refs[POOL_SIZE * 4];
static unsigned int nrefs, nclones;

static void
account_chain(const struct rte_mbuf *m)
{
	for (; m; m = m->next) {
		CHECK(nrefs < RTE_DIM(refs));
		if (RTE_MBUF_CLONED(m)) {
			nclones++;
			refs[nrefs++] = rte_mbuf_from_indirect((struct rte_mbuf *)(uintptr_t)m);
		} else {
			refs[nrefs++] = m;
		}
	}
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const void *const *)a, y = (uintptr_t)*(const void *const *)b;

	return x < y ? -1 : x > y;
}

static bool
is_echo(const struct tq_tcp_conn *c)
{
	return c->listener && tq_tcp_listeners[c->listener - 1].port == PORT_ECHO;
}

static void
check_conn(struct tq_tcp_conn *c, unsigned int *armed)
{
	const struct tq_tcp_worker *t = w->tcp;
	uint32_t sum = 0, prev_end = 0, nsq = 0;
	const struct rte_mbuf *s, *last = NULL;
	const char *why;

	CHECK(tq_tcp_lookup(w, &c->key) == c);
	CHECK(c->state > TQ_TCP_CLOSED && c->state < TQ_TCP_NSTATES);
	CHECK(tq_seq_le(c->snd_una, c->snd_nxt) && tq_seq_le(c->snd_nxt, c->snd_max));
	/* send queue */
	for (s = c->sq_head; s; s = s->next) {
		sum += s->data_len;
		last = s;
		nsq++;
	}
	CHECK(last == c->sq_tail);
	CHECK(nsq == c->sq_mbufs); /* memory pressure counts on it */
	CHECK(c->sq_head ? c->sq_off < c->sq_head->data_len && sum - c->sq_off == c->sq_bytes
			 : c->sq_bytes == 0 && c->sq_off == 0);
	/* at most SYN and FIN beyond the queued bytes are in flight */
	CHECK(c->snd_max - c->snd_una <= c->sq_bytes + 2);
	account_chain(c->sq_head);
	/* out-of-order queue: sorted, disjoint, beyond rcv_nxt */
	if (c->ooo_n > tq_tcp_cfg.ooo_max_segs)
		fprintf(stderr, "%s: ooo_n %u, ooo_bytes %u\n", tq_tcp_state_name(c->state),
			c->ooo_n, c->ooo_bytes);
	CHECK(c->ooo_n <= tq_tcp_cfg.ooo_max_segs);
	sum = 0;
	for (unsigned int i = 0; i < c->ooo_n; i++) {
		const struct tq_tcp_ooo_seg *q = &c->ooo[i];

		CHECK(q->len > 0 && q->m && rte_pktmbuf_pkt_len(q->m) >= q->len);
		CHECK(rte_mbuf_check(q->m, 1, &why) == 0);
		if (!tq_seq_gt(q->seq, c->rcv_nxt))
			fprintf(stderr, "%s: ooo[%u] at rcv_nxt%+d, %u bytes; has_rcv_fin %d at "
				"rcv_nxt%+d\n", tq_tcp_state_name(c->state), i,
				(int)(q->seq - c->rcv_nxt), q->len, c->has_rcv_fin,
				(int)(c->rcv_fin_seq - c->rcv_nxt));
		CHECK(tq_seq_gt(q->seq, c->rcv_nxt));
		if (i)
			CHECK(tq_seq_ge(q->seq, prev_end));
		prev_end = q->seq + q->len;
		sum += q->len;
		account_chain(q->m);
	}
	CHECK(sum == c->ooo_bytes);
	/* RACK's ring: contiguous records, counts that match the flags (the fast paths of
	 * the pipe and of loss detection trust them) */
	if (c->txr) {
		unsigned int nmark = 0, nrexmt = 0;

		CHECK(c->txr->n <= TQ_TCP_TXREC_MAX);
		for (unsigned int i = 0; i < c->txr->n; i++) {
			const struct tq_tcp_txrec *r =
				&c->txr->r[(c->txr->head + i) % TQ_TCP_TXREC_MAX];

			CHECK(tq_seq_lt(r->start, r->end));
			if (i + 1 < c->txr->n)
				CHECK(r->end == c->txr->r[(c->txr->head + i + 1) %
							  TQ_TCP_TXREC_MAX].start);
			nmark += (r->flags & (TQ_TCP_TXREC_SACKED | TQ_TCP_TXREC_LOST)) != 0;
			nrexmt += (r->flags & TQ_TCP_TXREC_RETRANS) != 0;
		}
		CHECK(nmark == c->txr->nmark && nrexmt == c->txr->nrexmt);
	}
	/* what the application holds */
	if (c->app == &test_app && c->user) {
		struct app_conn *e = app_of(c);

		if (c->rx_held != e->held_bytes)
			fprintf(stderr, "%s app_closed %d: rx_held %u, the application holds %u\n",
				tq_tcp_state_name(c->state), c->app_closed, c->rx_held,
				e->held_bytes);
		CHECK(c->rx_held == e->held_bytes);
		for (unsigned int i = 0; i < e->nheld; i++)
			account_chain(e->held[i]);
	} else if (is_echo(c) && c->user && c->connected_cb_done) {
		CHECK(c->rx_held == rte_pktmbuf_pkt_len((struct rte_mbuf *)c->user));
		account_chain(c->user);
	} else if (c->connected_cb_done && c->app != &test_app) {
		CHECK(c->rx_held == 0);
	}
	/* timers */
	for (int k = 0; k < TQ_TCP_T_COUNT; k++)
		if (c->timers[k]) {
			CHECK(tq_timer_is_armed(&t->wheel, c->timers[k]));
			(*armed)++;
		}
	/* whoever waits for something has the timer that ends the wait */
	if (c->state == TQ_TCP_SYN_SENT || c->state == TQ_TCP_SYN_RECEIVED)
		CHECK(c->timers[TQ_TCP_T_REXMT]);
	else if (c->snd_max != c->snd_una && c->state != TQ_TCP_TIME_WAIT)
		CHECK(c->timers[TQ_TCP_T_REXMT]);
	if (c->state == TQ_TCP_TIME_WAIT)
		CHECK(c->timers[TQ_TCP_T_2MSL]);
	if (c->delack_pending)
		CHECK(c->timers[TQ_TCP_T_DELACK]);
	/* data or a FIN waits and nothing is in flight: only the persist (or retry) timer
	 * will send it; without one the connection stalls */
	if ((c->state == TQ_TCP_ESTABLISHED || c->state == TQ_TCP_CLOSE_WAIT ||
	     c->state == TQ_TCP_FIN_WAIT_1 || c->state == TQ_TCP_CLOSING ||
	     c->state == TQ_TCP_LAST_ACK) &&
	    c->snd_una == c->snd_max && (c->sq_bytes > 0 || c->fin_queued) &&
	    !c->timers[TQ_TCP_T_REXMT]) {
		fprintf(stderr, "%s: %u bytes and %s wait, nothing in flight, wnd %u cwnd %u\n",
			tq_tcp_state_name(c->state), c->sq_bytes, c->fin_queued ? "a FIN" : "no FIN",
			c->snd_wnd, c->cwnd);
		CHECK(!"a connection with something to send has no timer");
	}
}

static void
check_stack(void)
{
	struct tq_tcp_worker *t = w->tcp;
	unsigned int live = 0, half = 0, armed = 0, uniq = 0;
	uint32_t sq_mbufs = 0;

	nrefs = nclones = 0;
	for (uint32_t i = 0; i < tq_tcp_cfg.max_conns; i++) {
		struct tq_tcp_conn *c = &t->conns[i];

		if (c->state == TQ_TCP_CLOSED) {
			for (int k = 0; k < TQ_TCP_T_COUNT; k++)
				CHECK(c->timers[k] == 0);
			CHECK(!c->sq_head && c->ooo_n == 0);
			continue;
		}
		live++;
		if (c->state == TQ_TCP_SYN_RECEIVED && c->listener)
			half++;
		check_conn(c, &armed);
		sq_mbufs += c->sq_mbufs;
	}
	CHECK(live == t->nb_conns);
	CHECK(sq_mbufs == t->sq_mbufs);
	CHECK(t->nb_conns <= tq_tcp_cfg.max_conns);
	CHECK(half == t->half_open);
	CHECK(armed == t->wheel.armed);
	for (unsigned int i = 0; i < MAX_CONNS; i++)
		if (apps[i].active) {
			CHECK(apps[i].c && apps[i].c->state != TQ_TCP_CLOSED);
			CHECK(apps[i].c->user == &apps[i]);
		}
	/* neighbour cache holds */
	for (uint32_t i = 0; i <= w->arp.mask; i++)
		if (w->arp.slots[i].state != TQ_ARP_FREE)
			account_chain(w->arp.slots[i].hold);
	CHECK(w->txq[port].n == 0);
	CHECK(rte_ring_count(tx_ring) == 0);
	/* every mbuf is in the pool or has owners that its reference count agrees with */
	qsort(refs, nrefs, sizeof(refs[0]), cmp_ptr);
	for (unsigned int i = 0; i < nrefs;) {
		unsigned int j = i;

		while (j < nrefs && refs[j] == refs[i])
			j++;
		if (rte_mbuf_refcnt_read(refs[i]) != j - i) {
			fprintf(stderr, "mbuf %p: refcnt %u, %u owners\n", (const void *)refs[i],
				rte_mbuf_refcnt_read(refs[i]), j - i);
			CHECK(!"mbuf reference count differs from its owners");
		}
		CHECK(refs[i]->pool == pool);
		uniq++;
		i = j;
	}
	if (uniq + rte_mempool_avail_count(pool) != POOL_SIZE) {
		fprintf(stderr, "pool: %u free + %u held != %u\n", rte_mempool_avail_count(pool),
			uniq, POOL_SIZE);
		CHECK(!"mbufs leaked or freed twice");
	}
	CHECK(nclones + rte_mempool_avail_count(t->clone_pool) == t->clone_pool->size);
}

/* Abort connections beyond CONN_CAP (those longest in the table's lowest slots first). */
static void
cap_conns(void)
{
	struct tq_tcp_worker *t = w->tcp;

	for (uint32_t i = 0; i < tq_tcp_cfg.max_conns && t->nb_conns > CONN_CAP; i++) {
		struct tq_tcp_conn *c = &t->conns[i];

		if (c->state != TQ_TCP_CLOSED)
			tq_tcp_abort(c);
	}
	end_of_iteration();
}

/* TQ_FUZZ_VERBOSE=1: the worker's counters and connections after each input. */
static void
dump_state(void)
{
	static int verbose = -1;

	if (verbose < 0)
		verbose = getenv("TQ_FUZZ_VERBOSE") != NULL;
	if (!verbose)
		return;
	for (unsigned int id = 1; id < TQ_CTR__COUNT; id++)
		if (w->ctr[id])
			fprintf(stderr, " %s=%" PRIu64, tq_counter_name(id), w->ctr[id]);
	fprintf(stderr, "\n");
	for (uint32_t i = 0; i < tq_tcp_cfg.max_conns; i++) {
		const struct tq_tcp_conn *c = &w->tcp->conns[i];

		if (c->state != TQ_TCP_CLOSED)
			fprintf(stderr, "  tcb %u :%u->:%u %s una+%u nxt+%u max+%u sq %u ooo %u\n", i,
				rte_be_to_cpu_16(c->key.rport), rte_be_to_cpu_16(c->key.lport),
				tq_tcp_state_name(c->state), c->snd_una - c->iss,
				c->snd_nxt - c->iss, c->snd_max - c->iss, c->sq_bytes, c->ooo_n);
	}
}

static void
epilogue(void)
{
	end_of_iteration();
	cap_conns();
	check_stack();
	dump_state();
}

/* ---- set-up and reset ---- */

static void
worker_start(void)
{
	struct tq_dp_conf conf;

	memset(&conf, 0, sizeof(conf));
	conf.arp_retries = 3;
	conf.arp_reachable_s = 600;
	w = tq_worker_create(0, rte_lcore_id(), pool, &conf);
	if (!w) {
		fprintf(stderr, "tq_worker_create: %s\n", strerror(errno));
		exit(1);
	}
	tq_dp.nb_workers = 1;
	tq_dp.workers[0] = w;
	clock_base = (rte_rdtsc() / w->tcp->tsc_per_tick + 1) * w->tcp->tsc_per_tick;
	vclock = 0;
	w->now = clock_base;
	tq_tcp_timers_run(w);
	memset(slots, 0, sizeof(slots));
	slot_next = slot_used = 0;
	next_rport = 1024;
	next_isn = 0x10000000;
	mood = 0x9e3779b9;
	learn_peer(0);
	end_of_iteration();
}

/* Everything back: abort every connection, destroy the worker, count the pool. */
static void
worker_stop(void)
{
	struct tq_tcp_worker *t = w->tcp;

	for (uint32_t i = 0; i < tq_tcp_cfg.max_conns; i++)
		if (t->conns[i].state != TQ_TCP_CLOSED)
			tq_tcp_abort(&t->conns[i]);
	end_of_iteration();
	for (unsigned int i = 0; i < MAX_CONNS; i++)
		CHECK(!apps[i].active);
	tq_worker_destroy(w);
	w = NULL;
	tq_dp.nb_workers = 0;
	tq_dp.workers[0] = NULL;
	CHECK(rte_mempool_avail_count(pool) == POOL_SIZE);
}

static int
setup(void)
{
	struct tq_port_conf pconf[TQ_MAX_PORTS];
	struct tq_services_conf svc = {.echo = PORT_ECHO, .discard = PORT_DISCARD,
				       .chargen = PORT_CHARGEN};
	struct rte_mempool *pools[1];
	char prefix[32];
	char *argv[] = {
		"fuzz_tcp_stack", "--no-huge", "--no-pci", "-m", "256", "--no-shconf",
		"--no-telemetry", "--file-prefix", prefix, "-l", "0", "--log-level", "*:error",
		NULL,
	};
	int ret;

	/* Not --in-memory: DPDK 22.11 refuses it beside --no-huge (see tests/unit/tq_test.c). */
	snprintf(prefix, sizeof(prefix), "tq_fz_stack_%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(argv) - 1, argv) < 0)
		return -1;
	if (rte_mempool_register_ops(&asan_pool_ops) < 0)
		return -1;
	pool = rte_pktmbuf_pool_create_by_ops("tq_fz_pool", POOL_SIZE, 0, 0,
					      RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id(),
					      asan_pool_ops.name);
	if (pool) { /* every mbuf is in the pool now */
		rte_mempool_obj_iter(pool, poison_obj, NULL);
		pool_poison = true;
	}
	rx_ring = rte_ring_create("tq_fz_rx", 1024, (int)rte_socket_id(), 0);
	tx_ring = rte_ring_create("tq_fz_tx", 1024, (int)rte_socket_id(), 0);
	if (!pool || !rx_ring || !tx_ring)
		return -1;
	ret = rte_eth_from_rings("net_ring_tq_fz", &rx_ring, 1, &tx_ring, 1, rte_socket_id());
	if (ret < 0)
		return ret;
	port = (uint16_t)ret;
	our_ip = inet_addr(OUR_IP);
	peer_ip[0] = inet_addr(PEER0_IP);
	peer_ip[1] = inet_addr(PEER1_IP);
	memset(pconf, 0, sizeof(pconf));
	pconf[port].ipv4 = our_ip;
	pconf[port].prefix_len = 24;
	pconf[port].gateway = inet_addr(GATEWAY_IP);
	pools[0] = pool;
	if (tq_port_setup_all(1, pools, pconf, 64, 64))
		return -1;
	our_mac = tq_ports[port].mac;
	if (!rte_is_unicast_ether_addr(&our_mac) || rte_is_zero_ether_addr(&our_mac)) {
		static const struct rte_ether_addr own = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

		our_mac = own;
		tq_ports[port].mac = own;
	}
	/* small everything, so that the limits are reached */
	tq_tcp_conf_defaults(&tq_tcp_cfg);
	tq_tcp_cfg.max_conns = MAX_CONNS;
	tq_tcp_cfg.rcv_buf = 4096;
	tq_tcp_cfg.snd_buf = 8192;
	tq_tcp_cfg.ooo_max_segs = 6;
	tq_tcp_cfg.syn_backlog = 16;
	tq_tcp_cfg.msl_ms = 1000;
	tq_tcp_cfg.delack_ms = 40;
	tq_tcp_cfg.rto_min_ms = 200;
	tq_tcp_cfg.rto_max_ms = 4000;
	tq_tcp_cfg.rto_initial_ms = 1000;
	tq_tcp_cfg.keepalive_s = 10;
	tq_tcp_cfg.max_retries = 4;
	tq_tcp_cfg.mss = 1000;
	tq_tcp_cfg.wscale = 2;
	if (tq_services_start(&svc) || tq_tcp_listen(PORT_APP, &test_app, NULL) ||
	    tq_tcp_listen(PORT_APP2, &test_app, &app_listener_cookie))
		return -1;
	hist_open();
	worker_start();
	return 0;
}

static void
run_op(uint8_t op, struct rd *r)
{
	switch (op) {
	case OP_SEG:
	case OP_SEG2:
		op_seg(r, 1);
		break;
	case OP_BURST:
		op_seg(r, rd8(r) % 8 + 1);
		break;
	case OP_HANDSHAKE:
		op_handshake(r);
		break;
	case OP_RAW:
		op_raw(r);
		break;
	case OP_TIME:
		op_time(r);
		break;
	case OP_SEND:
	case OP_CLOSE:
	case OP_ABORT:
	case OP_SHUTDOWN:
	case OP_RELEASE:
		op_app(op, r);
		break;
	case OP_MOOD:
		mood = rd32(r);
		if (!mood)
			mood = 0x9e3779b9;
		break;
	case OP_CONNECT:
		op_connect(r);
		break;
	case OP_ARP:
		op_arp(r);
		break;
	case OP_EPILOGUE:
		epilogue();
		return;
	default:
		break;
	}
	end_of_iteration();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static const uint8_t none[1];
	size_t i = 0;

	static int fresh = -1;

	if (!ready) {
		if (setup() < 0) {
			fprintf(stderr, "fuzz_tcp_stack: EAL, pool or port setup failed\n");
			exit(1);
		}
		ready = true;
		fresh = getenv("TQ_FUZZ_FRESH") != NULL;
	} else if (fresh) {
		worker_stop();
		hist_clear();
		inputs_since_reset = 0;
		worker_start();
	}
	/* a history replay is one long input: no cap on its ops */
	while (i + 2 <= size && i + 2 + data[i + 1] <= size) {
		uint8_t op = data[i] % OP_COUNT;
		struct rd r = {.p = data + i + 2, .n = data[i + 1]};

		hist_append(data[i], r.p, r.n);
		run_op(op, &r);
		i += 2 + data[i + 1];
	}
	hist_append(OP_EPILOGUE, none, 0);
	epilogue();
	if (++inputs_since_reset >= RESET_EVERY || hist_len > HIST_CAP - 8192) {
		worker_stop();
		hist_clear();
		inputs_since_reset = 0;
		worker_start();
	}
	return 0;
}
