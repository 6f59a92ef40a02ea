#include <errno.h>
#include <string.h>

#include <rte_common.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "tq_arp_cache.h"

/*
 * Mix all 32 bits (murmur3's finalizer) before masking: addresses are in network order, so
 * the hosts of one subnet differ only in the high bits of @ip, which a multiply alone never
 * carries down into the low bits the mask keeps.
 */
static uint32_t
slot_of(const struct tq_arp_cache *c, uint32_t ip)
{
	ip ^= ip >> 16;
	ip *= 0x85ebca6bu;
	ip ^= ip >> 13;
	ip *= 0xc2b2ae35u;
	ip ^= ip >> 16;
	return ip & c->mask;
}

int
tq_arp_cache_init(struct tq_arp_cache *c, uint32_t entries, int socket, uint64_t reachable_tsc,
		  uint64_t retry_tsc, uint8_t max_retries)
{
	uint32_t n;

	if (entries == 0 || entries > (1u << 24))
		return -EINVAL;
	/* at least 4 slots: with 2, the 3/4 limit below would round down to 0 entries */
	n = rte_align32pow2(RTE_MAX(entries + entries / 3 + 1, 4u));
	memset(c, 0, sizeof(*c));
	c->slots = rte_zmalloc_socket("tq_arp_cache", n * sizeof(*c->slots), RTE_CACHE_LINE_SIZE,
				      socket);
	if (!c->slots)
		return -ENOMEM;
	c->mask = n - 1;
	c->limit = n / 4 * 3;
	c->reachable_tsc = reachable_tsc;
	c->retry_tsc = retry_tsc;
	c->max_retries = max_retries;
	return 0;
}

void
tq_arp_cache_free(struct tq_arp_cache *c)
{
	if (!c->slots)
		return;
	for (uint32_t i = 0; i <= c->mask; i++)
		rte_pktmbuf_free(c->slots[i].hold);
	rte_free(c->slots);
	c->slots = NULL;
}

struct tq_arp_entry *
tq_arp_cache_lookup(struct tq_arp_cache *c, uint32_t ip)
{
	for (uint32_t i = slot_of(c, ip);; i = (i + 1) & c->mask) {
		struct tq_arp_entry *e = &c->slots[i];

		if (e->state == TQ_ARP_FREE)
			return NULL;
		if (e->ip == ip)
			return e;
	}
}

struct tq_arp_entry *
tq_arp_cache_insert(struct tq_arp_cache *c, uint32_t ip)
{
	uint32_t i;

	for (i = slot_of(c, ip); c->slots[i].state != TQ_ARP_FREE; i = (i + 1) & c->mask)
		if (c->slots[i].ip == ip)
			return &c->slots[i];
	if (c->used >= c->limit)
		return NULL;
	c->used++;
	memset(&c->slots[i], 0, sizeof(c->slots[i]));
	c->slots[i].ip = ip;
	/* The caller sets the state; mark INCOMPLETE so probing sees the slot taken. */
	c->slots[i].state = TQ_ARP_INCOMPLETE;
	return &c->slots[i];
}

void
tq_arp_cache_remove(struct tq_arp_cache *c, struct tq_arp_entry *e)
{
	uint32_t hole = (uint32_t)(e - c->slots);

	/* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
	for (uint32_t j = (hole + 1) & c->mask; c->slots[j].state != TQ_ARP_FREE;
	     j = (j + 1) & c->mask) {
		uint32_t home = slot_of(c, c->slots[j].ip);

		/* Move j into the hole unless its home lies cyclically in (hole, j]. */
		if (((j - home) & c->mask) >= ((j - hole) & c->mask)) {
			c->slots[hole] = c->slots[j];
			hole = j;
		}
	}
	memset(&c->slots[hole], 0, sizeof(c->slots[hole]));
	c->used--;
}

struct tq_arp_entry *
tq_arp_cache_learn(struct tq_arp_cache *c, uint16_t port, uint32_t ip,
		   const struct rte_ether_addr *mac, uint64_t now, bool create)
{
	struct tq_arp_entry *e = create ? tq_arp_cache_insert(c, ip) : tq_arp_cache_lookup(c, ip);

	if (!e)
		return NULL;
	e->state = TQ_ARP_REACHABLE;
	e->port = port;
	e->mac = *mac;
	e->retries = 0;
	e->expire_tsc = now + c->reachable_tsc;
	return e;
}
