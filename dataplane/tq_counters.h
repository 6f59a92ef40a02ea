/* Per-worker counter ids and names, generated from tq_counters.def. */
#ifndef TQ_COUNTERS_H
#define TQ_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

enum tq_counter {
	TQ_CTR_none = 0, /* id 0 is never a counter, so -id is always < 0 */
#define TQ_EVENT(name, help) TQ_CTR_##name,
#define TQ_DROP(name, help) TQ_CTR_##name,
#include "tq_counters.def"
#undef TQ_EVENT
#undef TQ_DROP
	TQ_CTR__COUNT,
};

/* Name of counter @id ("ipv4_bad_checksum"), NULL when out of range. Any thread. */
const char *tq_counter_name(unsigned int id);
/* One-line description of counter @id. Any thread. */
const char *tq_counter_help(unsigned int id);
/* True when @id counts dropped input rather than an event. Any thread. */
bool tq_counter_is_drop(unsigned int id);

#endif
