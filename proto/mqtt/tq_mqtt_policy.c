/*
 * Topics policies on the publish path (tq_mqtt_policy.h). The snapshot is the control
 * plane's (tq_policies_cur, published with RCU); this file only reads it.
 *
 * Matching is a regexec per policy, so the answer for the last topic is kept per worker
 * thread with the snapshot generation it came from: a publisher repeating one topic pays for
 * one match per policy change, not per message.
 */
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "control/tq_policy.h"
#include "dataplane/tq_worker.h"
#include "routing/tq_msg.h"
#include "tq_mqtt_policy.h"

#define CACHE_TOPIC_MAX 256

static __thread struct {
	uint64_t gen;       /* snapshot generation + 1 (0: empty) */
	uint64_t ttl_ms;    /* UINT64_MAX: no message-ttl for this topic */
	uint16_t len;
	char topic[CACHE_TOPIC_MAX];
} cache;

/* A topic longer than tq_policies_match copies (it wants such names NUL-terminated). */
static __thread char long_topic[65536];

static uint64_t
topic_ttl(const struct tq_policies *p, const char *topic, uint16_t len)
{
	const struct tq_policy_def *d;
	uint64_t gen = tq_policies_gen(p) + 1;

	if (cache.gen == gen && cache.len == len && !memcmp(cache.topic, topic, len))
		return cache.ttl_ms;
	if (len >= 1024) {
		memcpy(long_topic, topic, len);
		long_topic[len] = '\0';
		topic = long_topic;
	}
	d = tq_policies_match(p, "/", TQ_POLICY_TOPICS, topic, len, NULL);
	if (len <= CACHE_TOPIC_MAX) {
		cache.gen = gen;
		cache.len = len;
		memcpy(cache.topic, topic, len);
		cache.ttl_ms = d && (d->set & TQ_POL_MESSAGE_TTL) ? d->message_ttl : UINT64_MAX;
		return cache.ttl_ms;
	}
	return d && (d->set & TQ_POL_MESSAGE_TTL) ? d->message_ttl : UINT64_MAX;
}

void
tq_mqtt_policy_expiry(struct tq_worker *w, struct tq_msg *m)
{
	const struct tq_policies *p = rcu_dereference(tq_policies_cur);
	uint64_t ttl, deadline;

	if (likely(!tq_policies_has(p, TQ_POLICY_TOPICS)))
		return;
	ttl = topic_ttl(p, (const char *)m->data, m->topic_len);
	if (ttl == UINT64_MAX)
		return;
	deadline = tq_msg_now_ms() + ttl;
	if (!m->expiry_ms || m->expiry_ms > deadline) {
		m->expiry_ms = deadline;
		tq_worker_count(w, TQ_CTR_mqtt_policy_ttl);
	}
}
