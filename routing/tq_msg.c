#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include "tq_msg.h"

struct rte_mempool *tq_msgdata_pool;

void (*tq_bridge_to_amqp)(struct tq_worker *w, const struct tq_msg *mqtt_msg);
void (*tq_bridge_to_mqtt)(struct tq_worker *w, const struct tq_msg *amqp_msg);

struct rte_mempool *
tq_msg_pool_create(const char *name, uint32_t n, int socket)
{
	struct rte_mempool *mp;
	uint32_t cache = RTE_MIN(256u, n * 2 / 3); /* DPDK's rule: cache <= n / 1.5 */

	mp = rte_mempool_create(name, n, sizeof(struct tq_msg) + TQ_MSG_INLINE, cache, 0, NULL,
				NULL, NULL, NULL, socket, 0);
	if (!mp)
		errno = rte_errno ? rte_errno : ENOMEM;
	return mp;
}

struct tq_msg *
tq_msg_alloc(struct rte_mempool *pool, uint32_t inline_len, bool *heap)
{
	struct tq_msg *m = NULL;

	*heap = false;
	if (pool && inline_len <= TQ_MSG_INLINE) {
		if (rte_mempool_get(pool, (void **)&m) < 0)
			return NULL;
	} else {
		m = rte_malloc("tq_msg", sizeof(*m) + inline_len, 0);
		if (!m)
			return NULL;
		*heap = true;
		pool = NULL;
	}
	memset(m, 0, sizeof(*m));
	m->refcnt = 1;
	m->pool = pool;
	m->heap = *heap;
	return m;
}

void
tq_msg_unref(struct tq_msg *m)
{
	if (!m || __atomic_sub_fetch(&m->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	rte_pktmbuf_free(m->payload);
	if (m->heap)
		rte_free(m);
	else
		rte_mempool_put(m->pool, m);
}

void
tq_msg_release(void *m)
{
	tq_msg_unref(m);
}

uint64_t
tq_msg_now_ms(void)
{
	/* 2^64 / (TSC cycles per ms): a multiply instead of a division (asked several times
	 * per message; the division was 5 % of an AMQP worker). Monotonic like the TSC; at
	 * most 1 ms below the exact quotient. Every thread computes the same value. */
	static uint64_t inv;

	if (unlikely(!inv))
		inv = (uint64_t)(((unsigned __int128)1 << 64) / (rte_get_tsc_hz() / 1000));
	return (uint64_t)(((unsigned __int128)rte_get_tsc_cycles() * inv) >> 64);
}

struct rte_mbuf *
tq_mbuf_slice(struct rte_mempool *pool, const struct rte_mbuf *m, uint32_t off, uint32_t len)
{
	struct rte_mbuf *head = NULL, *tail = NULL;
	uint32_t left = len;

	while (m && off >= m->data_len) {
		off -= m->data_len;
		m = m->next;
	}
	while (left && m) {
		uint32_t take = RTE_MIN((uint32_t)m->data_len - off, left);
		struct rte_mbuf *mi = rte_pktmbuf_alloc(pool);

		if (!mi || (head && head->nb_segs == UINT16_MAX)) {
			rte_pktmbuf_free(mi);
			rte_pktmbuf_free(head);
			return NULL;
		}
		rte_pktmbuf_attach(mi, (struct rte_mbuf *)(uintptr_t)m);
		mi->data_off = (uint16_t)(mi->data_off + off);
		mi->data_len = (uint16_t)take;
		mi->pkt_len = take;
		if (!head) {
			head = mi;
		} else {
			tail->next = mi;
			head->nb_segs++;
			head->pkt_len += take;
		}
		tail = mi;
		left -= take;
		off = 0;
		m = m->next;
	}
	if (left) { /* the chain was shorter than asked */
		rte_pktmbuf_free(head);
		return NULL;
	}
	return head;
}

int
tq_mbuf_copy_out(const struct rte_mbuf *m, uint32_t off, uint32_t len, void *dst)
{
	uint8_t *d = dst;

	while (m && off >= m->data_len) {
		off -= m->data_len;
		m = m->next;
	}
	while (len && m) {
		uint32_t take = RTE_MIN((uint32_t)m->data_len - off, len);

		memcpy(d, rte_pktmbuf_mtod_offset(m, const uint8_t *, off), take);
		d += take;
		len -= take;
		off = 0;
		m = m->next;
	}
	return len ? -EINVAL : 0;
}

struct rte_mbuf *
tq_mbuf_from_bytes(struct rte_mempool *pool, const void *src, uint32_t len)
{
	struct rte_mbuf *head = NULL, *tail = NULL;
	const uint8_t *s = src;

	while (len) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		uint32_t take;

		if (!m) {
			rte_pktmbuf_free(head);
			return NULL;
		}
		take = RTE_MIN(len, (uint32_t)rte_pktmbuf_tailroom(m));
		memcpy(rte_pktmbuf_append(m, (uint16_t)take), s, take);
		if (!head) {
			head = m;
		} else {
			tail->next = m;
			head->nb_segs++;
			head->pkt_len += take;
		}
		tail = m;
		s += take;
		len -= take;
	}
	return head;
}

void
tq_mbuf_out_chain(struct rte_mbuf **head, struct rte_mbuf **tail, uint32_t *bytes,
		  struct rte_mbuf *m)
{
	uint32_t len = rte_pktmbuf_pkt_len(m);

	if (*head) {
		(*tail)->next = m;
		(*head)->nb_segs = (uint16_t)RTE_MIN((uint32_t)(*head)->nb_segs + m->nb_segs,
						     (uint32_t)RTE_MBUF_MAX_NB_SEGS);
		(*head)->pkt_len += len;
	} else {
		*head = m;
	}
	*tail = rte_pktmbuf_lastseg(m);
	*bytes += len;
}

int
tq_mbuf_out_bytes(struct rte_mempool *pool, struct rte_mbuf **head, struct rte_mbuf **tail,
		  uint32_t *bytes, const void *buf, uint32_t len)
{
	struct rte_mbuf *t = *head ? *tail : NULL, *fresh[8], *m;
	const uint8_t *src = buf;
	uint32_t room = 0, per, need, take;

	if (t && RTE_MBUF_DIRECT(t) && rte_mbuf_refcnt_read(t) == 1)
		room = rte_pktmbuf_tailroom(t);
	per = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
	need = len > room ? (len - room + per - 1) / per : 0;
	if (need > RTE_DIM(fresh)) { /* large: a chain of its own */
		m = tq_mbuf_from_bytes(pool, buf, len);
		if (!m)
			return -ENOMEM;
		tq_mbuf_out_chain(head, tail, bytes, m);
		return 1;
	}
	if (need && rte_pktmbuf_alloc_bulk(pool, fresh, need) < 0)
		return -ENOMEM; /* nothing appended */
	if (room) {
		take = RTE_MIN(room, len);
		memcpy(rte_pktmbuf_mtod_offset(t, uint8_t *, t->data_len), src, take);
		t->data_len = (uint16_t)(t->data_len + take);
		(*head)->pkt_len += take;
		*bytes += take;
		src += take;
		len -= take;
	}
	for (uint32_t i = 0; i < need; i++) {
		m = fresh[i];
		take = RTE_MIN(len, (uint32_t)rte_pktmbuf_tailroom(m));
		memcpy(rte_pktmbuf_append(m, (uint16_t)take), src, take);
		src += take;
		len -= take;
		tq_mbuf_out_chain(head, tail, bytes, m);
	}
	return 0;
}

/* Per thread: the last counts of the few pools it asks about (a worker: its RX pool, the
 * message-data pool). */
static __thread struct {
	const struct rte_mempool *mp;
	unsigned int avail, left;
} pool_avail[4];
static __thread unsigned int pool_avail_next;

unsigned int
tq_pool_avail(struct rte_mempool *mp)
{
	unsigned int i;

	for (i = 0; i < RTE_DIM(pool_avail); i++) {
		if (pool_avail[i].mp != mp)
			continue;
		if (pool_avail[i].left) {
			pool_avail[i].left--;
			return pool_avail[i].avail;
		}
		break;
	}
	if (i == RTE_DIM(pool_avail)) /* a pool not seen yet: take the next slot */
		i = pool_avail_next++ % RTE_DIM(pool_avail);
	pool_avail[i].mp = mp;
	pool_avail[i].avail = rte_mempool_avail_count(mp);
	pool_avail[i].left = TQ_POOL_AVAIL_EVERY;
	return pool_avail[i].avail;
}

struct rte_mbuf *
tq_msg_payload(struct rte_mempool *rx_pool, const struct rte_mbuf *m, uint32_t off, uint32_t len,
	       bool *copied)
{
	struct rte_mbuf *head = NULL, *tail = NULL;

	*copied = false;
	if (!len)
		return NULL;
	if (!tq_msgdata_pool || tq_pool_avail(rx_pool) >= rx_pool->size / 2)
		return tq_mbuf_slice(rx_pool, m, off, len);
	while (len) {
		struct rte_mbuf *d = rte_pktmbuf_alloc(tq_msgdata_pool);
		uint32_t take;

		if (!d) {
			rte_pktmbuf_free(head);
			return NULL;
		}
		take = RTE_MIN(len, (uint32_t)rte_pktmbuf_tailroom(d));
		tq_mbuf_copy_out(m, off, take, rte_pktmbuf_append(d, (uint16_t)take));
		if (!head) {
			head = d;
		} else {
			tail->next = d;
			head->nb_segs++;
			head->pkt_len += take;
		}
		tail = d;
		off += take;
		len -= take;
	}
	*copied = true;
	return head;
}
