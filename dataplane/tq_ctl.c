#include <errno.h>
#include <stdint.h>

#include <rte_errno.h>
#include <rte_ring.h>

#include "dataplane/tq_ctl.h"
#include "dataplane/tq_worker.h"

struct rte_ring *tq_ctl_ring;

int
tq_ctl_init(unsigned int size)
{
	tq_ctl_ring = rte_ring_create("tq_ctl", size, SOCKET_ID_ANY, RING_F_SC_DEQ);
	return tq_ctl_ring ? 0 : -rte_errno;
}

void
tq_ctl_close(void)
{
	struct tq_ctl_req *r;

	if (!tq_ctl_ring)
		return;
	while (rte_ring_sc_dequeue(tq_ctl_ring, (void **)&r) == 0)
		free(r);
	rte_ring_free(tq_ctl_ring);
	tq_ctl_ring = NULL;
}

int
tq_ctl_submit(struct tq_worker *w, struct tq_ctl_req *r)
{
	if (!tq_ctl_ring)
		return -ENODEV;
	r->worker = w->id;
	if (rte_ring_mp_enqueue(tq_ctl_ring, r) != 0) {
		tq_worker_count(w, TQ_CTR_ctl_ring_full);
		return -ENOBUFS;
	}
	tq_worker_count(w, TQ_CTR_ctl_requests);
	return 0;
}

unsigned int
tq_ctl_take(struct tq_ctl_req **reqs, unsigned int n)
{
	return tq_ctl_ring ? rte_ring_sc_dequeue_burst(tq_ctl_ring, (void **)reqs, n, NULL) : 0;
}

int
tq_ctl_answer(struct tq_ctl_req *r)
{
	struct tq_ring_msg m = {.type = r->reply_type, .b = (uint64_t)(uintptr_t)r};

	if (r->worker >= tq_dp.nb_workers)
		return -EINVAL;
	return tq_worker_post(tq_dp.workers[r->worker], &m, NULL);
}
