/*
 * SYN cookies: when a worker holds syn_backlog half-open connections, a SYN is answered
 * with a SYN-ACK whose ISS encodes what the connection needs (a time slot, an MSS index
 * and a keyed hash of the 4-tuple), and no state is kept. The ACK that completes the
 * handshake carries the cookie back; if it checks out, the connection is created then.
 * The cookie cannot carry window scaling, SACK or timestamps, so the SYN-ACK offers only
 * the MSS. Worker only.
 */
#include <string.h>

#include <rte_jhash.h>

#include "dataplane/tq_worker.h"
#include "tq_tcp_var.h"

#define SLOT_MS 64000u /* a cookie is valid for its slot and the next: 64 to 128 s */

static const uint16_t cookie_mss[8] = {216, 536, 1024, 1200, 1360, 1400, 1440, 1460};

/*
 * The peer's ISN is hashed in too (as Linux does): only the segment right after the SYN
 * (seq = ISN + 1) carries a cookie that checks out. Without it, a later segment (the
 * handshake's ACK lost, data following) would pass, and the connection would take its
 * sequence number for ISN + 1: the stream shifted, bytes delivered at the wrong offset.
 */
static uint32_t
cookie_hash(const struct tq_tcp_worker *t, const struct tq_tcp_key *key, uint32_t slot,
	    uint32_t peer_isn)
{
	uint32_t words[5] = {key->raddr, key->laddr, (uint32_t)key->rport << 16 | key->lport,
			     slot, peer_isn};

	return rte_jhash_32b(words, 5, t->cookie_secret[1]) ^ t->cookie_secret[2];
}

static uint32_t
make_cookie(const struct tq_tcp_worker *t, const struct tq_tcp_key *key, uint32_t slot,
	    unsigned int mssi, uint32_t peer_isn)
{
	return (slot & 0x1f) << 27 | (uint32_t)mssi << 24 |
	       (cookie_hash(t, key, slot, peer_isn) & 0xffffff);
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

	for (unsigned int i = 0; i < 8; i++)
		if (cookie_mss[i] <= peer_mss && cookie_mss[i] <= tq_tcp_cfg.mss)
			mssi = i;
	memset(&spec, 0, sizeof(spec));
	spec.src_port = v->dst_port;
	spec.dst_port = v->src_port;
	spec.seq = make_cookie(t, key, slot, mssi, v->seq);
	spec.ack = v->seq + 1;
	spec.flags = TQ_TCP_SYN | TQ_TCP_ACK;
	spec.window = 65535;
	spec.opts.present = TQ_TCP_OPT_MSS;
	spec.opts.mss = tq_tcp_cfg.mss;
	t->last_cookie_tick = t->now_tick;
	w->ctr[TQ_CTR_tcp_syn_cookies_sent]++;
	tq_tcp_send_stateless(w, key->laddr, key->raddr, &spec);
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

		if (make_cookie(t, key, now - back, mssi, v->seq - 1) == cookie) {
			*mss = cookie_mss[mssi];
			return 0;
		}
	}
	w->ctr[TQ_CTR_tcp_syn_cookie_bad]++;
	return -EINVAL;
}
