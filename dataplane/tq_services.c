#include <errno.h>
#include <string.h>

#include <rte_mbuf.h>

#include "dataplane/net/tq_tcp.h"
#include "dataplane/tq_worker.h"
#include "tq_services.h"

/*
 * echo: every received chain goes back as it is (zero copy). What the send queue cannot
 * take waits in the connection's user pointer and is not released, so the receive window
 * closes until on_writable: the peer is slowed down, nothing is dropped. The mbufs that fit
 * go at once (whole mbufs, in order): waiting for room for the whole chain drained the send
 * queue to its last ACK before anything more went out.
 */

/* Cut the chain @m after the mbufs that fit in @room bytes; returns the rest, or @m itself
 * when not even its first mbuf fits (then nothing is cut). */
static struct rte_mbuf *
chain_cut(struct rte_mbuf *m, uint32_t room)
{
	struct rte_mbuf *prev = NULL, *s = m;
	uint32_t len = 0;
	uint16_t n = 0;

	while (s && len + s->data_len <= room) {
		len += s->data_len;
		n++;
		prev = s;
		s = s->next;
	}
	if (!prev || !s)
		return prev ? NULL : m;
	prev->next = NULL;
	s->nb_segs = (uint16_t)(m->nb_segs - n);
	s->pkt_len = m->pkt_len - len;
	m->nb_segs = n;
	m->pkt_len = len;
	return s;
}

static void
echo_flush(struct tq_tcp_conn *c)
{
	struct rte_mbuf *m = tq_tcp_user(c), *rest;
	uint32_t len;

	if (!m)
		return;
	len = rte_pktmbuf_pkt_len(m);
	if (len > tq_tcp_send_space(c) && (rest = chain_cut(m, tq_tcp_send_space(c)))) {
		if (rest == m) { /* nothing fits yet */
			tq_tcp_want_writable(c);
			return;
		}
		len = rte_pktmbuf_pkt_len(m);
		if (tq_tcp_send(c, m) != 0) { /* cannot happen: it fit; keep the order anyway */
			if (rte_pktmbuf_chain(m, rest)) {
				tq_tcp_abort(c);
				rte_pktmbuf_free(rest);
			}
			return;
		}
		tq_tcp_set_user(c, rest);
		tq_tcp_rx_release(c, len);
		tq_tcp_want_writable(c);
		return;
	}
	if (tq_tcp_send(c, m) == 0) {
		tq_tcp_set_user(c, NULL);
		tq_tcp_rx_release(c, len);
	}
}

static void
echo_data(struct tq_tcp_conn *c, struct rte_mbuf *m)
{
	struct rte_mbuf *pending = tq_tcp_user(c);

	if (pending) {
		/* keep arrival order: queue behind what already waits */
		if (rte_pktmbuf_chain(pending, m)) {
			tq_tcp_abort(c); /* over 65535 segments waiting: cannot happen with rcv_buf */
			rte_pktmbuf_free(m);
			return;
		}
	} else {
		tq_tcp_set_user(c, m);
	}
	echo_flush(c);
}

static void
echo_peer_closed(struct tq_tcp_conn *c)
{
	if (!tq_tcp_user(c))
		tq_tcp_close(c);
}

static void
echo_writable(struct tq_tcp_conn *c)
{
	echo_flush(c);
	if (!tq_tcp_user(c) && tq_tcp_peer_closed(c)) /* it closed while we waited */
		tq_tcp_close(c);
}

static void
service_closed(struct tq_tcp_conn *c, int err)
{
	(void)err;
	rte_pktmbuf_free(tq_tcp_user(c)); /* echo: whatever still waited */
	tq_tcp_set_user(c, NULL);
}

static const struct tq_tcp_app echo_app = {
	.on_data = echo_data,
	.on_writable = echo_writable,
	.on_peer_closed = echo_peer_closed,
	.on_closed = service_closed,
};

/* discard: take everything, free it at once. */
static void
discard_data(struct tq_tcp_conn *c, struct rte_mbuf *m)
{
	uint32_t len = rte_pktmbuf_pkt_len(m);

	rte_pktmbuf_free(m);
	tq_tcp_rx_release(c, len);
}

static void
close_on_peer_close(struct tq_tcp_conn *c)
{
	tq_tcp_close(c);
}

static const struct tq_tcp_app discard_app = {
	.on_data = discard_data,
	.on_peer_closed = close_on_peer_close,
	.on_closed = service_closed,
};

/*
 * chargen: RFC 864's rotating 72-character lines, forever, as fast as the window allows.
 * The line to start from is kept in the user pointer (as an integer).
 */
#define CHARGEN_LINE 74 /* 72 characters + CR LF */

static void
chargen_fill(struct tq_tcp_conn *c)
{
	struct rte_mempool *pool = tq_tcp_worker(c)->pool;
	uintptr_t line = (uintptr_t)tq_tcp_user(c);

	for (;;) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		uint16_t room;
		char *p;

		if (!m) { /* out of mbufs: try again when acknowledgements free some */
			tq_tcp_want_writable(c);
			break;
		}
		room = (uint16_t)(rte_pktmbuf_tailroom(m) / CHARGEN_LINE * CHARGEN_LINE);
		if (room > 1480)
			room = 1480 / CHARGEN_LINE * CHARGEN_LINE;
		if (tq_tcp_send_space(c) < room) {
			rte_pktmbuf_free(m);
			tq_tcp_want_writable(c);
			break;
		}
		p = rte_pktmbuf_append(m, room);
		for (uint16_t off = 0; off < room; off += CHARGEN_LINE, line++) {
			for (int i = 0; i < 72; i++)
				p[off + i] = (char)(' ' + (line + (uintptr_t)i) % 95);
			p[off + 72] = '\r';
			p[off + 73] = '\n';
		}
		if (tq_tcp_send(c, m)) {
			rte_pktmbuf_free(m);
			break;
		}
	}
	tq_tcp_set_user(c, (void *)(line % 95));
}

static int
chargen_connected(struct tq_tcp_conn *c)
{
	tq_tcp_set_user(c, NULL);
	chargen_fill(c);
	return 0;
}

static void
chargen_data(struct tq_tcp_conn *c, struct rte_mbuf *m)
{
	discard_data(c, m); /* RFC 864: what the client sends is thrown away */
}

static void
chargen_closed(struct tq_tcp_conn *c, int err)
{
	(void)c;
	(void)err;
}

static const struct tq_tcp_app chargen_app = {
	.on_connected = chargen_connected,
	.on_data = chargen_data,
	.on_writable = chargen_fill,
	.on_peer_closed = close_on_peer_close,
	.on_closed = chargen_closed,
};

int
tq_services_start(const struct tq_services_conf *conf)
{
	int ret = 0;

	if (conf->echo)
		ret = tq_tcp_listen(conf->echo, &echo_app, NULL);
	if (!ret && conf->discard)
		ret = tq_tcp_listen(conf->discard, &discard_app, NULL);
	if (!ret && conf->chargen)
		ret = tq_tcp_listen(conf->chargen, &chargen_app, NULL);
	return ret;
}
