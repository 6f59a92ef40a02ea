/*
 * SYN cookies: when a worker holds syn_backlog half-open connections, a SYN is answered
 * with a SYN-ACK whose ISS encodes what the connection needs (a time slot, an MSS index
 * and a keyed hash of the 4-tuple), and no state is kept. The ACK that completes the
 * handshake carries the cookie back; if it checks out, the connection is created then.
 * The cookie cannot carry window scaling, SACK or timestamps, so the SYN-ACK offers only
 * the MSS. Worker only.
 */
#include <string.h>

#include <netinet/in.h>
#include <rte_jhash.h>
#include <rte_mbuf.h>

#include "dataplane/tq_worker.h"
#include "tq_ipv4.h"
#include "tq_net.h"
#include "tq_tcp_var.h"

#define SLOT_MS 64000u /* a cookie is valid for its slot and the next: 64 to 128 s */

static const uint16_t cookie_mss[8] = {216, 536, 1024, 1200, 1360, 1400, 1440, 1460};

static uint32_t
cookie_hash(const struct tq_tcp_worker *t, const struct tq_tcp_key *key, uint32_t slot)
{
	uint32_t words[4] = {key->raddr, key->laddr, (uint32_t)key->rport << 16 | key->lport,
			     slot};

	return rte_jhash_32b(words, 4, t->cookie_secret[1]) ^ t->cookie_secret[2];
}

static uint32_t
make_cookie(const struct tq_tcp_worker *t, const struct tq_tcp_key *key, uint32_t slot,
	    unsigned int mssi)
{
	return (slot & 0x1f) << 27 | (uint32_t)mssi << 24 | (cookie_hash(t, key, slot) & 0xffffff);
}

void
tq_tcp_syncookie_send(struct tq_worker *w, const struct tq_tcp_view *v,
		      const struct tq_tcp_key *key)
{
	struct tq_tcp_worker *t = w->tcp;
	uint32_t slot = (uint32_t)(t->now_tick / SLOT_MS);
	uint16_t peer_mss = (v->opts.present & TQ_TCP_OPT_MSS) ? v->opts.mss : 536;
	struct tq_tcp_hdr_spec spec;
	unsigned int mssi = 0;
	struct rte_mbuf *m;
	uint16_t csum;
	size_t hlen;
	uint8_t *p;

	for (unsigned int i = 0; i < 8; i++)
		if (cookie_mss[i] <= peer_mss && cookie_mss[i] <= tq_tcp_cfg.mss)
			mssi = i;
	m = rte_pktmbuf_alloc(w->pool);
	if (!m) {
		w->ctr[TQ_CTR_mbuf_alloc_failed]++;
		return;
	}
	memset(&spec, 0, sizeof(spec));
	spec.src_port = v->dst_port;
	spec.dst_port = v->src_port;
	spec.seq = make_cookie(t, key, slot, mssi);
	spec.ack = v->seq + 1;
	spec.flags = TQ_TCP_SYN | TQ_TCP_ACK;
	spec.window = 65535;
	spec.opts.present = TQ_TCP_OPT_MSS;
	spec.opts.mss = tq_tcp_cfg.mss;
	hlen = tq_tcp_hdr_len(&spec.opts);
	p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(TQ_IPV4_HDR_LEN + hlen));
	tq_tcp_build(p + TQ_IPV4_HDR_LEN, &spec);
	csum = tq_tcp_checksum(key->laddr, key->raddr, p + TQ_IPV4_HDR_LEN, hlen);
	memcpy(p + TQ_IPV4_HDR_LEN + 16, &csum, 2);
	tq_ipv4_build(p, key->laddr, key->raddr, IPPROTO_TCP, (uint16_t)hlen, w->ip_id++,
		      TQ_IPV4_DEFAULT_TTL, true);
	t->last_cookie_tick = t->now_tick;
	w->ctr[TQ_CTR_tcp_syn_cookies_sent]++;
	w->ctr[TQ_CTR_tcp_segs_tx]++;
	tq_ipv4_output(w, m);
}

int
tq_tcp_syncookie_check(struct tq_worker *w, const struct tq_tcp_key *key,
		       const struct tq_tcp_view *v, uint16_t *mss)
{
	struct tq_tcp_worker *t = w->tcp;
	uint32_t cookie = v->ack - 1, now = (uint32_t)(t->now_tick / SLOT_MS);

	/* only while cookies may be in flight: a stray ACK is not a cookie */
	if (!t->last_cookie_tick || t->now_tick - t->last_cookie_tick > 2ull * SLOT_MS)
		return -ENOENT;
	for (uint32_t back = 0; back < 2 && back <= now; back++) {
		unsigned int mssi = (cookie >> 24) & 7;

		if (make_cookie(t, key, now - back, mssi) == cookie) {
			*mss = cookie_mss[mssi];
			return 0;
		}
	}
	w->ctr[TQ_CTR_tcp_syn_cookie_bad]++;
	return -EINVAL;
}
