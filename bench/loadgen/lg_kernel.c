/*
 * --transport kernel: the same clients on Linux sockets, one thread, one epoll set polled
 * without sleeping (so that the schedule is kept, as the DPDK transport's loop does), so
 * brokers without DPDK (mosquitto) and tachyond behind a TAP get identical traffic.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "tq_loadgen.h"

struct kctx {
	int ep;
	struct sockaddr_in dst;
};

static volatile sig_atomic_t k_stop;

static void
k_on_signal(int sig)
{
	(void)sig;
	k_stop = 1;
}

static int
k_connect(struct lg_conn *c)
{
	struct kctx *k = c->lg->tp_ctx;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&k->dst, sizeof(k->dst)) && errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (epoll_ctl(k->ep, EPOLL_CTL_ADD, fd, &ev)) {
		int err = -errno;

		close(fd);
		return err;
	}
	c->fd = fd;
	return 0;
}

static void
k_gone(struct lg_conn *c, int err)
{
	close(c->fd); /* leaves the epoll set too */
	c->fd = -1;
	lg_conn_closed(c, err);
}

/* DISCONNECT is out: send FIN; the broker's close (EOF) ends it. */
static void
k_close(struct lg_conn *c)
{
	shutdown(c->fd, SHUT_WR);
}

static void
k_abort(struct lg_conn *c)
{
	struct linger lin = {.l_onoff = 1, .l_linger = 0}; /* RST */

	if (c->fd < 0) {
		lg_conn_closed(c, -ECONNABORTED);
		return;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	k_gone(c, -ECONNABORTED);
}

static const struct lg_transport k_transport = {
	.name = "kernel",
	.connect = k_connect,
	.close = k_close,
	.abort = k_abort,
};

static void
k_event(struct kctx *k, struct lg_conn *c, uint32_t events, uint8_t *buf, size_t cap)
{
	if (c->state == LG_CS_TCP) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			k_gone(c, -err);
			return;
		}
		epoll_ctl(k->ep, EPOLL_CTL_MOD, c->fd, &ev);
		lg_conn_opened(c);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	for (;;) {
		ssize_t r = read(c->fd, buf, cap);

		if (r > 0) {
			lg_conn_input(c, buf, (size_t)r, __rdtsc());
			if ((size_t)r < cap || c->abort_req)
				return;
		} else if (r == 0) {
			k_gone(c, 0); /* an error unless we were closing: lg_conn_closed decides */
			return;
		} else {
			if (errno != EAGAIN && errno != EINTR)
				k_gone(c, -errno);
			return;
		}
	}
}

/* Write what the clients queued; what the socket does not take stays dirty. */
static bool
k_flush(struct lg *lg)
{
	uint32_t keep = 0;
	bool wrote = false;

	for (uint32_t i = 0; i < lg->ndirty; i++) {
		struct lg_conn *c = &lg->conns[lg->dirty[i]];
		ssize_t w;

		if (c->fd < 0 || c->state == LG_CS_TCP || lg_tx_pending(c) == 0) {
			c->dirty = c->fd >= 0 && c->state == LG_CS_TCP && lg_tx_pending(c);
			if (c->dirty)
				lg->dirty[keep++] = c->id;
			continue;
		}
		w = send(c->fd, c->tx + c->tx_off, lg_tx_pending(c), MSG_NOSIGNAL);
		if (w > 0) {
			lg_conn_sent(c, (uint32_t)w);
			wrote = true;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			c->abort_req = true;
		}
		if (lg_tx_pending(c))
			lg->dirty[keep++] = c->id;
		else
			c->dirty = false;
	}
	lg->ndirty = keep;
	return wrote;
}

static uint64_t
calibrate_tsc(void)
{
	struct timespec a, b;
	uint64_t t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &a);
	t0 = __rdtsc();
	usleep(200 * 1000);
	clock_gettime(CLOCK_MONOTONIC, &b);
	t1 = __rdtsc();
	return (uint64_t)((double)(t1 - t0) /
			  ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9));
}

int
lg_kernel_run(struct lg_opts *o)
{
	static uint8_t buf[256 * 1024];
	struct epoll_event evs[256];
	struct kctx k = {.ep = -1};
	struct lg lg = {.o = *o};
	int rc = 2;

	k.dst.sin_family = AF_INET;
	k.dst.sin_addr.s_addr = o->dst;
	k.dst.sin_port = htons(o->port);
	k.ep = epoll_create1(EPOLL_CLOEXEC);
	if (k.ep < 0) {
		perror("tq_loadgen: epoll_create1");
		return 2;
	}
	signal(SIGINT, k_on_signal);
	signal(SIGTERM, k_on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (lg_init(&lg, &k_transport, &k, calibrate_tsc())) {
		fprintf(stderr, "tq_loadgen: out of memory\n");
		goto out;
	}
	while (lg.phase != LG_PH_DONE && !k_stop) {
		uint64_t t0 = __rdtsc();
		int n = epoll_wait(k.ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 0);
		bool wrote;

		for (int i = 0; i < n; i++) {
			struct lg_conn *c = evs[i].data.ptr;

			if (c->fd >= 0)
				k_event(&k, c, evs[i].events, buf, sizeof(buf));
		}
		lg_step(&lg, __rdtsc());
		wrote = k_flush(&lg);
		lg_account(&lg, t0, __rdtsc(), n > 0 || wrote);
	}
	rc = k_stop ? 2 : lg_report(&lg);
	for (uint32_t i = 0; i < lg.nconns; i++)
		if (lg.conns[i].fd >= 0)
			close(lg.conns[i].fd);
out:
	lg_free(&lg);
	close(k.ep);
	return rc;
}
