/*
 * Segment-level TCP scripts for tachyon's stack, in the spirit of packetdrill: a script
 * says which segments the peer sends, which segments tachyon must answer with, and when,
 * on a simulated clock. The interpreter owns one worker for the script's life, feeds it
 * frames through tq_net_input, and reads what it transmits from the ring port's TX ring.
 *
 * Format: one event per line; '#' starts a comment.
 *
 *   [time] < FLAGS seq:end(len) [ack N] [win N] [<options>]   the peer sends (inject)
 *   [time] > FLAGS seq:end(len) [ack N] [win N] [<options>]   tachyon must send (expect)
 *   [time] %directive args...                                  set-up, app action, assertion
 *
 * time: "+S" seconds after the previous line, or "S" seconds since the script started
 *   (decimals allowed: +0.2 = 200 ms); absent = +0. The clock only moves when the script
 *   says so; timers fire at their exact millisecond on the way (the wheel is stepped from
 *   one deadline to the next). An expected segment must leave at its line's time (within
 *   %tolerance, default 0 ms): leaving earlier is an error, and so is any segment still
 *   unclaimed when the next injection, directive or the end of the script comes.
 * FLAGS: any of S F R P and '.' (ACK), e.g. "S.", "P.", "F.", "R", ".".
 * seq:end(len): relative sequence numbers, as packetdrill prints them. Inbound: relative
 *   to the peer's ISN (%peer_isn, default 1000000); outbound: relative to tachyon's ISN,
 *   learned from each SYN tachyon sends (0 until then). "ack N" uses the other side's ISN.
 * win: the raw 16-bit field. Inbound default 65535; outbound not compared when absent.
 * options: comma-separated "mss N", "sackOK", "wscale N", "TS val N ecr N", "sack A:B ...",
 *   "nop", "eol". Outbound: compared as a set of values (layout and NOPs ignored); "<...>"
 *   or no options = don't care; "TS val *" = any value. Tachyon's TS clock is in ms since
 *   the script started (TS val 200 at +0.2); inbound "ecr" values are given on that scale.
 *   SACK blocks are relative like seq/ack. An inbound SYN's "ecr" is sent as written.
 * payload: inbound bytes are a fixed pattern of the stream offset; outbound payload must
 *   carry the same pattern (what echo returns and %send sends) unless "%payload any".
 *
 * Directives, before the first other line (they configure the worker it creates):
 *   %tcp key=value ...      tq_tcp_cfg fields: max_conns rcv_buf snd_buf ooo_max_segs
 *                           syn_backlog msl_ms delack_ms rto_min_ms rto_max_ms
 *                           rto_initial_ms keepalive_s max_retries mss wscale timestamps sack
 * Directives anywhere:
 *   %peer_isn N | %peer_port N | %local_port N | %tolerance MS | %payload any|check
 *   %listen PORT echo|discard|chargen|sink   (sink: the script's app, holds what it gets)
 *   %connect PORT           active open from the sink app (the local port is learned)
 *   %send N                 the sink app queues N bytes
 *   %release N              the sink app releases N received bytes (window reopens)
 *   %shutdown | %close | %abort   on the sink app's connection
 *   %rx N                   the sink app has received exactly N bytes (pattern checked)
 *   %state NAME             the 4-tuple's TCB is in NAME (CLOSED: no TCB)
 *   %closed none|0|ECONNRESET|ECONNREFUSED|ETIMEDOUT|ECONNABORTED   the sink's on_closed
 *   %peer_closed yes|no     the sink app got on_peer_closed
 *   %counter NAME N         the worker counter NAME equals N
 *
 * At the end every mbuf must be back in the pool (connections still open are freed with
 * the worker).
 */
#ifndef TQ_PKTSCRIPT_H
#define TQ_PKTSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mempool.h>
#include <rte_ring.h>

/* The ring port the scripts run on (set up by the caller, one per process). */
struct tq_pktscript_env {
	struct rte_mempool *pool; /* the worker's mbufs; also used for injected frames */
	struct rte_ring *tx_ring; /* what the port transmits */
	uint16_t port;
	struct rte_ether_addr our_mac, peer_mac;
	uint32_t our_ip, peer_ip; /* network order */
};

struct tq_pktscript_result {
	unsigned int line; /* script line of the failure, 0 when not tied to a line */
	char msg[4096];    /* what went wrong, with expected/actual segments */
};

/*
 * Run the script @text (@name for messages) on @env. The caller's thread becomes the
 * worker's (tq_dp.workers[0]) for the duration. Returns 0, or -1 with @res filled.
 */
int tq_pktscript_run(const struct tq_pktscript_env *env, const char *name, const char *text,
		     struct tq_pktscript_result *res);

/* Read the file at @path and run it. Returns 0 or -1 (@res says why, I/O errors too). */
int tq_pktscript_run_file(const struct tq_pktscript_env *env, const char *path,
			  struct tq_pktscript_result *res);

#endif
