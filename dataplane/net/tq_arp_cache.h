/*
 * Neighbour (ARP) cache of one worker: an open-addressing table with linear probing,
 * sized at boot. Owned and touched only by its worker (shared-nothing); other workers
 * feed it through the worker's inbound ring (TQ_MSG_ARP_LEARN). Times are TSC cycles
 * passed in by the caller, so the table itself makes no syscalls and reads no clock.
 */
#ifndef TQ_ARP_CACHE_H
#define TQ_ARP_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>

struct rte_mbuf;

enum tq_arp_state {
	TQ_ARP_FREE = 0,
	TQ_ARP_INCOMPLETE, /* request sent, waiting for the reply */
	TQ_ARP_REACHABLE,  /* mac is valid until expire_tsc */
};

struct tq_arp_entry {
	uint32_t ip; /* network order; meaningful when state != FREE */
	uint8_t state;
	uint8_t retries; /* requests sent while INCOMPLETE */
	uint16_t port;
	struct rte_ether_addr mac;
	uint64_t expire_tsc; /* REACHABLE: ages out then; INCOMPLETE: next retry then */
	struct rte_mbuf *hold; /* INCOMPLETE: one packet waiting to go; owned by the entry */
};

struct tq_arp_cache {
	struct tq_arp_entry *slots; /* power-of-two count; owned, freed by tq_arp_cache_free() */
	uint32_t mask;
	uint32_t used;
	uint32_t limit;        /* most entries allowed (3/4 of slots) */
	uint64_t reachable_tsc; /* lifetime of a learned entry */
	uint64_t retry_tsc;     /* interval between requests while INCOMPLETE */
	uint8_t max_retries;
};

/*
 * Allocate a cache for at least @entries entries on NUMA @socket. Boot time only.
 * Returns 0 or -ENOMEM / -EINVAL.
 */
int tq_arp_cache_init(struct tq_arp_cache *c, uint32_t entries, int socket, uint64_t reachable_tsc,
		      uint64_t retry_tsc, uint8_t max_retries);

/* Free the table and any held mbufs. */
void tq_arp_cache_free(struct tq_arp_cache *c);

/* The entry for @ip (any state but FREE), or NULL. */
struct tq_arp_entry *tq_arp_cache_lookup(struct tq_arp_cache *c, uint32_t ip);

/*
 * Create an entry for @ip: returns a zeroed entry with ip set and state INCOMPLETE (the
 * caller sets what it needs), the existing entry if there is one, or NULL when the cache
 * is full.
 */
struct tq_arp_entry *tq_arp_cache_insert(struct tq_arp_cache *c, uint32_t ip);

/* Remove @e (a pointer returned by lookup/insert). Its hold, if any, must be taken first. */
void tq_arp_cache_remove(struct tq_arp_cache *c, struct tq_arp_entry *e);

/*
 * Record that @ip is at @mac on @port, now. With @create false only an existing entry is
 * refreshed (RFC 826's merge rule for ARP not aimed at us). Returns the entry (its hold,
 * if any, is now ready to send), or NULL when not created.
 */
struct tq_arp_entry *tq_arp_cache_learn(struct tq_arp_cache *c, uint16_t port, uint32_t ip,
					const struct rte_ether_addr *mac, uint64_t now,
					bool create);

#endif
