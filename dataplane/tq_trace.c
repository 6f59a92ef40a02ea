#include <string.h>

#include <rte_cycles.h>

#include "dataplane/tq_trace.h"
#include "dataplane/tq_worker.h"

static void
copy_name(char *dst, const char *src, uint32_t len)
{
	uint32_t n = len < TQ_TRACE_NAME - 1 ? len : TQ_TRACE_NAME - 1;

	if (src && n)
		memcpy(dst, src, n);
	dst[src ? n : 0] = '\0';
}

void
tq_trace_record(struct tq_worker *w, uint8_t proto, const char *user, const char *exchange,
		uint32_t exchange_len, const char *key, uint32_t key_len, uint32_t size,
		uint8_t qos, int32_t matched)
{
	struct tq_trace *t = &w->trace;
	struct tq_trace_rec *r = &t->rec[t->seq % TQ_TRACE_RING];

	r->seq = 0; /* a reader skips it while it is being written */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	r->ms = w->now / (rte_get_tsc_hz() / 1000); /* the TSC in ms, as the loop saw it */
	r->proto = proto;
	r->qos = qos;
	r->size = size;
	r->matched = matched;
	copy_name(r->user, user, user ? (uint32_t)strlen(user) : 0);
	copy_name(r->exchange, exchange, exchange_len);
	copy_name(r->key, key, key_len);
	__atomic_store_n(&r->seq, ++t->seq, __ATOMIC_RELEASE);
	t->left--;
}
