/*
 * Policies, RabbitMQ's way (https://www.rabbitmq.com/docs/policies): a name, a vhost, a
 * pattern (POSIX ERE searched in the object's name, as RabbitMQ's are), what it applies to,
 * a priority and a definition. For one object the policy that applies is the matching one of
 * the highest priority; between equal priorities, the one whose name sorts first (RabbitMQ
 * leaves ties undefined; we make them repeatable). Only one policy applies to an object; its
 * definition keys merge with the object's own arguments (tq_policy_effective).
 *
 * apply-to: "queues", "exchanges", "all" (both), and tachyon's "users": matched against user
 * names, for the data-plane priority class of their connections, and "topics": matched
 * against the topic of each MQTT PUBLISH (vhost "/"), for message-ttl: a published message
 * (retained ones too) lives at most that long, whatever Message Expiry Interval it carries.
 *
 * Definition keys (RabbitMQ's names; values as in a JSON definition):
 *   message-ttl (ms, >= 0; queues and topics), expires (ms, > 0), max-length (>= 0), max-length-bytes (>= 0),
 *   overflow ("drop-head" | "reject-publish" | "reject-publish-dlx"),
 *   dead-letter-exchange (string), dead-letter-routing-key (string),
 *   max-priority (1..255; tachyon applies it to queues declared after the policy, never to a
 *   live queue, whose priority levels are fixed), delivery-limit (>= 0),
 *   alternate-exchange (string; exchanges),
 *   priority-class ("critical" | "normal" | "bulk"; users).
 * Unknown keys are refused (-EINVAL with a message), so a typo is not silently ignored.
 *
 * Same split as tq_access.h: struct tq_policy_db is the control thread's (allocates,
 * compiles); struct tq_policies is an immutable snapshot (tq_policies_build) that the
 * control thread publishes on tq_policies_cur with rcu_assign_pointer and frees after a grace
 * period; workers match against it under QSBR without allocating.
 */
#ifndef TQ_POLICY_H
#define TQ_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_POLICY_NAME_MAX 255
#define TQ_POLICY_STR_MAX 255

enum tq_policy_apply {
	TQ_POLICY_QUEUES = 1,
	TQ_POLICY_EXCHANGES = 2,
	TQ_POLICY_ALL = 3,
	TQ_POLICY_USERS = 4,
	TQ_POLICY_TOPICS = 8,
};

enum tq_policy_overflow {
	TQ_OVERFLOW_DROP_HEAD = 0,
	TQ_OVERFLOW_REJECT_PUBLISH = 1,
	TQ_OVERFLOW_REJECT_PUBLISH_DLX = 2,
};

enum tq_priority_class {
	TQ_CLASS_CRITICAL = 0,
	TQ_CLASS_NORMAL = 1,
	TQ_CLASS_BULK = 2,
};

/* Which fields of struct tq_policy_def are set. */
enum {
	TQ_POL_MESSAGE_TTL = 1u << 0,
	TQ_POL_EXPIRES = 1u << 1,
	TQ_POL_MAX_LENGTH = 1u << 2,
	TQ_POL_MAX_LENGTH_BYTES = 1u << 3,
	TQ_POL_OVERFLOW = 1u << 4,
	TQ_POL_DLX = 1u << 5,
	TQ_POL_DLRK = 1u << 6,
	TQ_POL_MAX_PRIORITY = 1u << 7,
	TQ_POL_DELIVERY_LIMIT = 1u << 8,
	TQ_POL_ALTERNATE_EXCHANGE = 1u << 9,
	TQ_POL_PRIORITY_CLASS = 1u << 10,
};

/* A definition: the keys above, or (for tq_policy_effective) a queue's own arguments. */
struct tq_policy_def {
	uint32_t set; /* TQ_POL_* */
	uint64_t message_ttl, expires, max_length, max_length_bytes, delivery_limit;
	uint8_t overflow;       /* enum tq_policy_overflow */
	uint8_t max_priority;
	uint8_t priority_class; /* enum tq_priority_class */
	char dlx[TQ_POLICY_STR_MAX + 1];
	char dlrk[TQ_POLICY_STR_MAX + 1];
	char alternate_exchange[TQ_POLICY_STR_MAX + 1];
};

/*
 * Set one key of @def from a value given as JSON text (a number literal, or a string with
 * its quotes: "\"drop-head\""), as the definitions file and tachyonctl carry them. -EINVAL
 * with a message in @err for an unknown key, a wrong type or a value out of range.
 */
int tq_policy_def_set(struct tq_policy_def *def, const char *key, const char *json_value,
		      char *err, size_t errlen);

/*
 * Write @def as a JSON object ({"max-length":10,...}) into @out. Returns the length, or
 * -ENOSPC.
 */
int tq_policy_def_json(const struct tq_policy_def *def, char *out, size_t cap);

/*
 * Parse a whole definition, a JSON object of @len bytes ({"max-length":10,...}, what
 * tq_policy_def_json writes and rabbitmqctl set_policy takes), each member as
 * tq_policy_def_set does. @def is replaced on success, untouched on error (-EINVAL with a
 * message in @err: syntax, unknown key, bad value, a key given twice). Any thread; pure.
 */
int tq_policy_def_parse(struct tq_policy_def *def, const char *json, size_t len, char *err,
			size_t errlen);

/*
 * What applies to a queue: its own arguments @args and the policy's @pol (NULL: none).
 * For message-ttl, expires, max-length, max-length-bytes and delivery-limit the smaller of
 * the two wins when both are set (what RabbitMQ does for its operator policies, the safe
 * reading for limits); for every other key the queue's own argument wins (RabbitMQ's rule for
 * optional arguments).
 */
void tq_policy_effective(const struct tq_policy_def *args, const struct tq_policy_def *pol,
			 struct tq_policy_def *out);

/* ---- the definitions (control thread only) ---- */

struct tq_policy_db;

struct tq_policy_db *tq_policy_db_new(void); /* NULL, errno ENOMEM */
void tq_policy_db_free(struct tq_policy_db *db);

/*
 * Add or replace policy @name in @vhost. -EINVAL (with @err) for a bad pattern or an
 * apply-to that does not fit the definition's keys (e.g. priority-class on queues).
 */
int tq_policy_set(struct tq_policy_db *db, const char *vhost, const char *name,
		  const char *pattern, enum tq_policy_apply apply_to, int priority,
		  const struct tq_policy_def *def, char *err, size_t errlen);
int tq_policy_clear(struct tq_policy_db *db, const char *vhost, const char *name); /* -ENOENT */
/* Drop every policy of @vhost (vhost deleted). */
void tq_policy_forget_vhost(struct tq_policy_db *db, const char *vhost);

/* Enumeration in (vhost, name) order, for export and tachyonctl. */
struct tq_policy_info {
	const char *vhost, *name, *pattern;
	enum tq_policy_apply apply_to;
	int priority;
	const struct tq_policy_def *def;
};
size_t tq_policy_count(const struct tq_policy_db *db);
int tq_policy_at(const struct tq_policy_db *db, size_t i, struct tq_policy_info *out);

/* Parse/format apply-to names ("queues", "exchanges", "all", "users", "topics"). -EINVAL. */
int tq_policy_apply_parse(const char *s, enum tq_policy_apply *out);
const char *tq_policy_apply_name(enum tq_policy_apply a);

/* ---- the snapshot (built by control, read by anyone) ---- */

struct tq_policies;

struct tq_policies *tq_policies_build(const struct tq_policy_db *db, uint64_t gen);
void tq_policies_free(struct tq_policies *p);
uint64_t tq_policies_gen(const struct tq_policies *p);
/* Does @p hold a policy for @kind (TQ_POLICY_TOPICS, ...)? A cheap test before matching. */
bool tq_policies_has(const struct tq_policies *p, enum tq_policy_apply kind);

/*
 * The policy that applies to object @name (@len bytes) of kind @kind (TQ_POLICY_QUEUES,
 * _EXCHANGES, _USERS or _TOPICS) in @vhost (ignored for users), or NULL. Its name in *@name_out when
 * not NULL (valid as long as the snapshot).
 */
const struct tq_policy_def *tq_policies_match(const struct tq_policies *p, const char *vhost,
					      enum tq_policy_apply kind, const char *name,
					      size_t len, const char **name_out);

/* The snapshot the workers read (NULL: no policies); see tq_access_cur. */
extern struct tq_policies *tq_policies_cur;
void tq_policies_publish(struct tq_policies *p);

#endif
