#include <stddef.h>

#include "tq_counters.h"

struct tq_counter_desc {
	const char *name;
	const char *help;
	bool drop;
};

static const struct tq_counter_desc tq_counter_descs[TQ_CTR__COUNT] = {
	[TQ_CTR_none] = {"none", "not a counter", false},
#define TQ_EVENT(n, h) [TQ_CTR_##n] = {#n, h, false},
#define TQ_DROP(n, h) [TQ_CTR_##n] = {#n, h, true},
#include "tq_counters.def"
#undef TQ_EVENT
#undef TQ_DROP
};

const char *
tq_counter_name(unsigned int id)
{
	return id > 0 && id < TQ_CTR__COUNT ? tq_counter_descs[id].name : NULL;
}

const char *
tq_counter_help(unsigned int id)
{
	return id > 0 && id < TQ_CTR__COUNT ? tq_counter_descs[id].help : NULL;
}

bool
tq_counter_is_drop(unsigned int id)
{
	return id > 0 && id < TQ_CTR__COUNT && tq_counter_descs[id].drop;
}
