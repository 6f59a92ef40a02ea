/*
 * linux_rr: the workloads of tq_tcpbench on Linux sockets, for the comparison in
 * bench/tcp_vs_linux.sh. One thread, epoll, non-blocking sockets, TCP_NODELAY.
 *
 *   linux_rr server [--addr A.B.C.D] [--echo 7] [--discard 9]
 *   linux_rr bulk|rr|cps --dst A.B.C.D [--port N] [--conns N] [--size N]
 *                        [--duration S] [--warmup S]
 *
 * server: echo (RFC 862) and discard (RFC 863), closing after the peer's FIN, like
 * tachyond's services. bulk: push 64 KiB writes; goodput from TCP_INFO's tcpi_bytes_acked.
 * rr: --size-byte requests, one outstanding per connection, the response verified byte by
 * byte; latency from CLOCK_MONOTONIC. cps: connect, shutdown(SHUT_WR), wait for the
 * server's FIN, close; connect latency. Prints the same RESULT line as tq_tcpbench.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked (glibc's lacks it) */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tq_hist.h" /* the latency histogram, shared with tcpbench.c */

#define MAX_EVENTS 256
#define BULK_WRITE (64 * 1024)

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void
die(const char *what)
{
	perror(what);
	exit(2);
}

static void
set_nb(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl");
}

static void
set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- server ---- */

enum { KIND_LISTEN_ECHO = 1, KIND_LISTEN_DISCARD, KIND_ECHO, KIND_DISCARD };

struct sconn {
	int fd;
	int kind;
	char *pend;      /* echo: bytes read but not yet written back */
	size_t pend_off, pend_len;
	bool peer_closed;
};

static int
listen_on(uint32_t addr, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {addr}};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0)
		die("bind/listen");
	set_nb(fd);
	return fd;
}

static void
sconn_close(int ep, struct sconn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pend);
	free(c);
}

/* Echo what is pending; returns false when the connection was closed. */
static bool
echo_flush(int ep, struct sconn *c)
{
	while (c->pend_off < c->pend_len) {
		ssize_t n = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);

		if (n < 0) {
			if (errno == EAGAIN) {
				struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};

				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev); /* stop reading meanwhile */
				return true;
			}
			sconn_close(ep, c);
			return false;
		}
		c->pend_off += (size_t)n;
	}
	c->pend_off = c->pend_len = 0;
	if (c->peer_closed) {
		sconn_close(ep, c);
		return false;
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	return true;
}

static int
run_server(uint32_t addr, uint16_t echo_port, uint16_t discard_port)
{
	int ep = epoll_create1(0);
	struct sconn le = {.kind = KIND_LISTEN_ECHO}, ld = {.kind = KIND_LISTEN_DISCARD};
	struct epoll_event evs[MAX_EVENTS];
	static char buf[256 * 1024];

	le.fd = listen_on(addr, echo_port);
	ld.fd = listen_on(addr, discard_port);
	epoll_ctl(ep, EPOLL_CTL_ADD, le.fd, &(struct epoll_event){.events = EPOLLIN, .data.ptr = &le});
	epoll_ctl(ep, EPOLL_CTL_ADD, ld.fd, &(struct epoll_event){.events = EPOLLIN, .data.ptr = &ld});
	printf("linux_rr: server ready (echo %u, discard %u)\n", echo_port, discard_port);
	fflush(stdout);
	while (!quit) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, 200);

		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;

			if (c->kind == KIND_LISTEN_ECHO || c->kind == KIND_LISTEN_DISCARD) {
				for (;;) {
					int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK);
					struct sconn *nc;

					if (fd < 0)
						break;
					set_nodelay(fd);
					nc = calloc(1, sizeof(*nc));
					nc->fd = fd;
					nc->kind = c->kind == KIND_LISTEN_ECHO ? KIND_ECHO : KIND_DISCARD;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd,
						  &(struct epoll_event){.events = EPOLLIN, .data.ptr = nc});
				}
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				echo_flush(ep, c);
				continue;
			}
			for (;;) {
				ssize_t r = read(c->fd, buf, sizeof(buf));

				if (r == 0 || (r < 0 && errno != EAGAIN)) {
					c->peer_closed = true;
					if (c->pend_len == 0)
						sconn_close(ep, c);
					break;
				}
				if (r < 0)
					break;
				if (c->kind == KIND_DISCARD)
					continue;
				c->pend = realloc(c->pend, (size_t)r);
				memcpy(c->pend, buf, (size_t)r);
				c->pend_off = 0;
				c->pend_len = (size_t)r;
				if (!echo_flush(ep, c) || c->pend_len)
					break;
			}
		}
	}
	return 0;
}

/* ---- clients ---- */

enum mode { MODE_BULK, MODE_RR, MODE_CPS };
static const char *const mode_names[] = {"bulk", "rr", "cps"};

struct cconn {
	int fd;
	uint32_t id;
	bool connecting, outstanding, closing;
	uint64_t sent, rcvd, req_seq, t_req;
	uint32_t resp_got;
};

struct client {
	enum mode mode;
	struct sockaddr_in dst;
	uint32_t nconns, size;
	double duration, warmup;
	int ep;
	struct cconn *conns;
	uint32_t nb_open;
	bool measuring, stopping;
	uint64_t t_measure, t_end, t_measure_real, t_end_real;
	uint64_t connects, connect_fail, conn_errors, established, closed_ok;
	uint64_t bytes_sent, bytes_acked, bytes_rcvd, requests, responses, verify_errors;
	uint64_t window_ops, acked_at_measure, acked_at_end;
	int last_err;
	struct hist lat;
	char *reqbuf;
};

static inline uint8_t
pattern(uint32_t id, uint64_t seq, uint32_t off)
{
	return (uint8_t)(seq * 131 + off * 7 + id);
}

static uint64_t
bytes_acked(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return 0;
	return ti.tcpi_bytes_acked;
}

static void
cl_connect(struct client *cl, struct cconn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	cl->connects++;
	if (fd < 0)
		die("socket");
	set_nodelay(fd);
	c->fd = fd;
	c->sent = c->rcvd = c->req_seq = 0;
	c->outstanding = c->closing = false;
	c->connecting = true;
	c->t_req = now_ns();
	if (connect(fd, (struct sockaddr *)&cl->dst, sizeof(cl->dst)) < 0 && errno != EINPROGRESS) {
		cl->connect_fail++;
		cl->last_err = errno;
		close(fd);
		c->fd = -1;
		c->connecting = false;
		return;
	}
	epoll_ctl(cl->ep, EPOLL_CTL_ADD, fd,
		  &(struct epoll_event){.events = EPOLLOUT | EPOLLIN, .data.ptr = c});
	cl->nb_open++;
}

static void
cl_close(struct client *cl, struct cconn *c, bool ok)
{
	if (ok) {
		cl->closed_ok++;
		if (cl->mode == MODE_BULK) /* tcpi_bytes_acked counts the SYN and the FIN too */
			cl->bytes_acked += bytes_acked(c->fd) - 2;
		if (cl->mode == MODE_CPS && cl->measuring && !cl->stopping)
			cl->window_ops++;
	} else {
		cl->conn_errors++;
	}
	epoll_ctl(cl->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	cl->nb_open--;
	if (cl->mode == MODE_CPS && !cl->stopping)
		cl_connect(cl, c);
}

static void
cl_shutdown(struct client *cl, struct cconn *c)
{
	c->closing = true;
	shutdown(c->fd, SHUT_WR);
	epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &(struct epoll_event){.events = EPOLLIN, .data.ptr = c});
}

static void
rr_send(struct client *cl, struct cconn *c)
{
	ssize_t n;

	for (uint32_t i = 0; i < cl->size; i++)
		cl->reqbuf[i] = (char)pattern(c->id, c->req_seq, i);
	c->t_req = now_ns();
	n = write(c->fd, cl->reqbuf, cl->size);
	if (n != (ssize_t)cl->size) { /* one small request never fills a fresh socket buffer */
		cl->last_err = n < 0 ? errno : EMSGSIZE;
		cl_close(cl, c, false);
		return;
	}
	c->req_seq++;
	c->outstanding = true;
	c->resp_got = 0;
	c->sent += cl->size;
	cl->bytes_sent += cl->size;
	cl->requests++;
}

static void
bulk_write(struct client *cl, struct cconn *c)
{
	static char buf[BULK_WRITE];

	while (!cl->stopping) {
		ssize_t n = write(c->fd, buf, sizeof(buf));

		if (n <= 0)
			return; /* EAGAIN: EPOLLOUT follows */
		c->sent += (uint64_t)n;
		cl->bytes_sent += (uint64_t)n;
	}
}

static uint64_t
bulk_acked_now(struct client *cl)
{
	uint64_t sum = cl->bytes_acked;

	for (uint32_t i = 0; i < cl->nconns; i++)
		if (cl->conns[i].fd >= 0)
			sum += bytes_acked(cl->conns[i].fd);
	return sum;
}

static void
on_event(struct client *cl, struct cconn *c, uint32_t events)
{
	static char buf[256 * 1024];

	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		c->connecting = false;
		if (err) {
			cl->connect_fail++;
			cl->last_err = err;
			cl->conn_errors--; /* cl_close counts it once, as a connect failure */
			cl_close(cl, c, false);
			return;
		}
		cl->established++;
		switch (cl->mode) {
		case MODE_CPS:
			if (cl->measuring)
				hist_add(&cl->lat, now_ns() - c->t_req);
			cl_shutdown(cl, c);
			return;
		case MODE_RR:
			epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd,
				  &(struct epoll_event){.events = EPOLLIN, .data.ptr = c});
			return; /* requests start with the run */
		case MODE_BULK:
			epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd,
				  &(struct epoll_event){.events = EPOLLIN | EPOLLOUT, .data.ptr = c});
			break;
		}
	}
	if ((events & EPOLLOUT) && cl->mode == MODE_BULK && !c->closing)
		bulk_write(cl, c);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n == 0) { /* the server's FIN: only after ours */
			bool ok = c->closing && !c->outstanding;

			if (!ok)
				cl->last_err = ECONNRESET;
			cl_close(cl, c, ok);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			cl->last_err = errno;
			cl_close(cl, c, false);
			return;
		}
		c->rcvd += (uint64_t)n;
		cl->bytes_rcvd += (uint64_t)n;
		if (cl->mode != MODE_RR)
			continue;
		if (!c->outstanding || c->resp_got + (uint64_t)n > cl->size) {
			cl->verify_errors++;
			continue;
		}
		for (ssize_t i = 0; i < n; i++)
			if ((uint8_t)buf[i] != pattern(c->id, c->req_seq - 1, c->resp_got + (uint32_t)i)) {
				cl->verify_errors++;
				break;
			}
		c->resp_got += (uint32_t)n;
		if (c->resp_got == cl->size) {
			uint64_t t = now_ns();

			c->outstanding = false;
			cl->responses++;
			if (cl->measuring && c->t_req >= cl->t_measure_real) {
				hist_add(&cl->lat, t - c->t_req);
				cl->window_ops++;
			}
			if (cl->stopping)
				cl_shutdown(cl, c);
			else
				rr_send(cl, c);
			if (c->fd < 0)
				return;
		}
	}
}

static void
cl_stop(struct client *cl)
{
	cl->stopping = true;
	for (uint32_t i = 0; i < cl->nconns; i++) {
		struct cconn *c = &cl->conns[i];

		if (c->fd >= 0 && !c->connecting && !c->closing && !c->outstanding)
			cl_shutdown(cl, c);
	}
}

static void
poll_once(struct client *cl, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(cl->ep, evs, MAX_EVENTS, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct cconn *c = evs[i].data.ptr;

		if (c->fd >= 0)
			on_event(cl, c, evs[i].events);
	}
}

static int
run_client(struct client *cl)
{
	double secs;
	bool ok;
	uint64_t deadline;

	cl->ep = epoll_create1(0);
	cl->conns = calloc(cl->nconns, sizeof(*cl->conns));
	cl->reqbuf = malloc(cl->size ? cl->size : 1);
	for (uint32_t i = 0; i < cl->nconns; i++) {
		cl->conns[i].id = i;
		cl->conns[i].fd = -1;
		cl_connect(cl, &cl->conns[i]);
	}
	/* bulk and rr: every connection up before the clock starts */
	deadline = now_ns() + 10000000000ull;
	if (cl->mode != MODE_CPS) {
		while (!quit && cl->established + cl->connect_fail < cl->nconns && now_ns() < deadline)
			poll_once(cl, 10);
		if (cl->established < cl->nconns) {
			fprintf(stderr, "linux_rr: only %" PRIu64 " of %u connections established\n",
				cl->established, cl->nconns);
			return 1;
		}
		if (cl->mode == MODE_RR)
			for (uint32_t i = 0; i < cl->nconns; i++)
				rr_send(cl, &cl->conns[i]);
	}
	cl->t_measure = now_ns() + (uint64_t)(cl->warmup * 1e9);
	cl->t_end = cl->t_measure + (uint64_t)(cl->duration * 1e9);
	while (!quit) {
		uint64_t t = now_ns();

		if (!cl->measuring && t >= cl->t_measure) {
			cl->measuring = true;
			cl->t_measure_real = t;
			/* the window runs from when it really began: one long poll iteration
			 * (1,000 bulk connections) must not swallow all of it */
			cl->t_end = t + (uint64_t)(cl->duration * 1e9);
			cl->window_ops = 0;
			memset(&cl->lat, 0, sizeof(cl->lat));
			if (cl->mode == MODE_BULK)
				cl->acked_at_measure = bulk_acked_now(cl);
		} else if (cl->measuring && t >= cl->t_end) {
			cl->t_end_real = t;
			if (cl->mode == MODE_BULK)
				cl->acked_at_end = bulk_acked_now(cl);
			cl->measuring = false;
			break;
		}
		if (cl->mode == MODE_CPS) /* slots whose connect failed (e.g. no free port) */
			for (uint32_t i = 0; i < cl->nconns; i++)
				if (cl->conns[i].fd < 0)
					cl_connect(cl, &cl->conns[i]);
		poll_once(cl, 1);
	}
	cl_stop(cl);
	deadline = now_ns() + 10000000000ull;
	while (!quit && cl->nb_open > 0 && now_ns() < deadline)
		poll_once(cl, 10);
	if (cl->nb_open)
		fprintf(stderr, "linux_rr: %u connections still open after the drain\n", cl->nb_open);

	secs = (double)(cl->t_end_real - cl->t_measure_real) / 1e9;
	ok = cl->conn_errors == 0 && cl->connect_fail == 0 && cl->verify_errors == 0 &&
	     cl->nb_open == 0 && secs > 0;
	if (cl->mode == MODE_BULK) {
		double gbps = (double)(cl->acked_at_end - cl->acked_at_measure) * 8 / secs / 1e9;

		ok = ok && cl->bytes_acked == cl->bytes_sent;
		printf("bulk: %u conn(s), %.2f s: %.3f Gbit/s goodput (acknowledged)\n", cl->nconns,
		       secs, gbps);
		printf("RESULT mode=bulk conns=%u size=%u secs=%.3f gbps=%.4f bytes_sent=%" PRIu64
		       " bytes_acked=%" PRIu64 " bytes_rcvd=%" PRIu64, cl->nconns, BULK_WRITE, secs,
		       gbps, cl->bytes_sent, cl->bytes_acked, cl->bytes_rcvd);
	} else {
		double rate = (double)cl->window_ops / secs;
		bool rr = cl->mode == MODE_RR;

		if (rr)
			ok = ok && cl->responses == cl->requests;
		else
			ok = ok && cl->closed_ok == cl->established;
		printf("%s: %u conn(s), %.2f s: %.0f %s/s\n", mode_names[cl->mode], cl->nconns, secs,
		       rate, rr ? "transactions" : "connections");
		printf("%s latency (us): p50 %.1f p99 %.1f p99.9 %.1f max %.1f (n=%" PRIu64 ")\n",
		       rr ? "request" : "connect", hist_pct(&cl->lat, 50) / 1e3,
		       hist_pct(&cl->lat, 99) / 1e3, hist_pct(&cl->lat, 99.9) / 1e3,
		       cl->lat.max / 1e3, cl->lat.n);
		printf("RESULT mode=%s conns=%u size=%u secs=%.3f rate=%.1f p50_us=%.2f p99_us=%.2f "
		       "p999_us=%.2f max_us=%.2f requests=%" PRIu64 " responses=%" PRIu64
		       " bytes_sent=%" PRIu64 " bytes_rcvd=%" PRIu64 " verify_errors=%" PRIu64,
		       mode_names[cl->mode], cl->nconns, cl->size, secs, rate,
		       hist_pct(&cl->lat, 50) / 1e3, hist_pct(&cl->lat, 99) / 1e3,
		       hist_pct(&cl->lat, 99.9) / 1e3, cl->lat.max / 1e3, cl->requests,
		       cl->responses, cl->bytes_sent, cl->bytes_rcvd, cl->verify_errors);
	}
	printf(" connects=%" PRIu64 " established=%" PRIu64 " closed_ok=%" PRIu64
	       " conn_errors=%" PRIu64 " connect_fail=%" PRIu64 " ok=%d\n",
	       cl->connects, cl->established, cl->closed_ok, cl->conn_errors, cl->connect_fail, ok);
	if (!ok && cl->last_err)
		fprintf(stderr, "linux_rr: last error: %s\n", strerror(cl->last_err));
	return ok ? 0 : 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: linux_rr server [--addr A] [--echo P] [--discard P]\n"
			"       linux_rr bulk|rr|cps --dst A [--port P] [--conns N] [--size N]\n"
			"                [--duration S] [--warmup S]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"addr", required_argument, NULL, 'a'},  {"echo", required_argument, NULL, 'e'},
		{"discard", required_argument, NULL, 'x'}, {"dst", required_argument, NULL, 'd'},
		{"port", required_argument, NULL, 'p'},  {"conns", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},  {"duration", required_argument, NULL, 't'},
		{"warmup", required_argument, NULL, 'w'}, {NULL, 0, NULL, 0},
	};
	static struct client cl;
	uint32_t addr = htonl(INADDR_ANY);
	int echo_port = 7, discard_port = 9, port = -1, opt;
	bool server;

	if (argc < 2)
		usage();
	server = !strcmp(argv[1], "server");
	if (!server) {
		if (!strcmp(argv[1], "bulk"))
			cl.mode = MODE_BULK;
		else if (!strcmp(argv[1], "rr"))
			cl.mode = MODE_RR;
		else if (!strcmp(argv[1], "cps"))
			cl.mode = MODE_CPS;
		else
			usage();
	}
	cl.nconns = 1;
	cl.duration = 5;
	cl.warmup = 1;
	cl.dst.sin_family = AF_INET;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			if (inet_pton(AF_INET, optarg, &addr) != 1)
				usage();
			break;
		case 'e':
			echo_port = atoi(optarg);
			break;
		case 'x':
			discard_port = atoi(optarg);
			break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &cl.dst.sin_addr) != 1)
				usage();
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			cl.nconns = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 's':
			cl.size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 't':
			cl.duration = atof(optarg);
			break;
		case 'w':
			cl.warmup = atof(optarg);
			break;
		default:
			usage();
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (server)
		return run_server(addr, (uint16_t)echo_port, (uint16_t)discard_port);
	if (!cl.dst.sin_addr.s_addr || cl.nconns == 0 || cl.duration <= 0)
		usage();
	cl.dst.sin_port = htons((uint16_t)(port > 0 ? port : cl.mode == MODE_RR ? 7 : 9));
	if (cl.size == 0)
		cl.size = 64;
	return run_client(&cl);
}
