/*
 * Requests from the workers to the control thread, for what workers must not do themselves:
 * check a password (slow hashing), run a SCRAM step. A worker allocates a struct
 * tq_ctl_req (malloc: a login is not the fast path), fills it and submits it; the control
 * thread answers by posting the same request back to the worker's inbound ring as
 * {type = req->reply_type, b = req}. Ownership travels with the pointer: the worker until
 * tq_ctl_submit() succeeds, then the control thread, then the worker again, which frees it
 * (with free()) whether or not the connection that asked is still there (req->cookie tells).
 *
 * The ring is multi-producer (workers), single-consumer (control thread). A full ring is
 * counted (ctl_ring_full) and the worker refuses the login as "server busy"; it never waits.
 * tq_ctl_ring is NULL when no control plane runs (unit tests): the protocols then fall back
 * to their config (the AMQP default user, MQTT allow_anonymous).
 */
#ifndef TQ_CTL_H
#define TQ_CTL_H

#include <stdint.h>

#include <rte_ring.h>

struct tq_worker;

enum tq_ctl_kind {
	TQ_CTL_LOGIN = 1,   /* user + data (password) -> result 1 ok / 0 refused */
	TQ_CTL_SCRAM_FIRST, /* data = client-first -> out = server-first, scram_id set */
	TQ_CTL_SCRAM_FINAL, /* scram_id, data = client-final -> result, out = server-final */
	TQ_CTL_SCRAM_ABORT, /* scram_id: the connection went; never answered (control frees) */
};

#define TQ_CTL_USER_MAX 255
#define TQ_CTL_DATA_MAX 1024
#define TQ_CTL_OUT_MAX 512

struct tq_ctl_req {
	uint8_t kind;           /* enum tq_ctl_kind */
	uint16_t worker;        /* the worker to answer */
	uint32_t reply_type;    /* ring message type of the answer (the protocol's) */
	uint64_t cookie;        /* the protocol's: which connection asked */
	uint32_t src_ip;        /* the client's IPv4 address, network order (rate limit) */
	uint64_t scram_id;      /* SCRAM: the exchange, set by control at SCRAM_FIRST */
	int result;             /* control: 1 accepted, 0 refused, < 0 error (-errno) */
	uint8_t prio;           /* control, when accepted: the user's class (dataplane/tq_prio.h) */
	uint16_t user_len;      /* LOGIN: set by the worker; SCRAM: by control (the user) */
	uint16_t data_len, out_len;
	char user[TQ_CTL_USER_MAX + 1];
	uint8_t data[TQ_CTL_DATA_MAX];
	uint8_t out[TQ_CTL_OUT_MAX];
};

/* The request ring; NULL = no control plane. cp: wo at boot, dp: ro. */
extern struct rte_ring *tq_ctl_ring;

/* Create the ring (control thread, boot, before the workers start). 0 or -errno. */
int tq_ctl_init(unsigned int size);
void tq_ctl_close(void);

/*
 * Submit @r from worker @w (sets r->worker). 0: the control thread owns @r now; -ENOBUFS
 * (ring full, counted) or -ENODEV (no control plane): @r is still the caller's.
 */
int tq_ctl_submit(struct tq_worker *w, struct tq_ctl_req *r);

/* Control thread: take up to @n requests. */
unsigned int tq_ctl_take(struct tq_ctl_req **reqs, unsigned int n);

/*
 * Control thread: hand @r back to its worker. 0, or -ENOBUFS when the worker's ring is full
 * (the caller keeps @r and tries again later).
 */
int tq_ctl_answer(struct tq_ctl_req *r);

#endif
