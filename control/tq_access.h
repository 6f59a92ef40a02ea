/*
 * Who may touch what: vhosts, RabbitMQ's per-user-per-vhost permissions, topic permissions,
 * and MQTT topic ACLs. Two halves:
 *
 *   - struct tq_access_db: the definitions as the operator gave them. Control thread only
 *     (allocates, compiles regular expressions, validates). Changed by tachyonctl and by
 *     definitions import.
 *   - struct tq_access: an immutable snapshot built from the db by tq_access_build(), with
 *     every expression compiled. The control thread publishes it with rcu_assign_pointer on
 *     tq_access_cur (tq_access_publish) and frees the previous one after a grace period;
 *     workers read it under liburcu QSBR. The check functions only read the snapshot (POSIX
 *     regexec on compiled EREs, no allocation of their own), so any thread may call them on a
 *     snapshot it holds. The protocol sessions cache their decisions keyed by the snapshot's
 *     generation, so a change takes effect for live sessions at their next operation.
 *
 * Semantics (RabbitMQ's, https://www.rabbitmq.com/docs/access-control):
 *   - A user may open a connection to a vhost only if it has permissions there (any, even
 *     three empty expressions).
 *   - configure / write / read are POSIX extended regular expressions searched (not anchored)
 *     in the resource name; "" matches nothing, ".*" everything. The default exchange (name
 *     "") is checked as "amq.default".
 *   - Topic permissions: per user, vhost and exchange, a write and a read expression on
 *     routing keys, for topic exchanges only. Before matching, "{username}", "{vhost}" and
 *     "{client_id}" in the expression are replaced by the session's values (each value with
 *     its regex metacharacters escaped). No topic permission for that (user, vhost,
 *     exchange) means everything is allowed.
 *   - MQTT ACLs (mosquitto's acl_file model): rules of (user, pattern, access). A rule with
 *     user NULL or "" applies to every user. Patterns are MQTT filters; "%u" and "%c" in a
 *     level are replaced by the user name and the client id. access is read, write,
 *     readwrite or deny. With no rule at all in the db everything is allowed (ACLs off);
 *     with any rule, an operation is allowed only if a rule that applies to the user grants
 *     it and no deny rule of that user (or of everyone) matches.
 *       PUBLISH to topic T: a write-granting pattern matches T, no deny pattern matches T.
 *       SUBSCRIBE to filter F: a read-granting pattern covers F (every topic F can match is
 *       matched by the pattern: "a/#" covers "a/b/+", "a/+" does not cover "a/#"), and no
 *       deny pattern intersects F (some topic matches both).
 *     Topics starting with '$' are not matched by a pattern whose first level is '+' or '#'
 *     (MQTT 4.7.2), so "#" neither covers nor intersects "$SYS/#".
 *     A user name or client id containing '/', '+' or '#' must not widen a pattern: a
 *     granting rule that would substitute it grants nothing, a deny rule that would
 *     substitute it denies everything. A rule using "%u" (or "%c") does not apply to a
 *     client without a user name (client id), who->user (client_id) NULL.
 *
 * What a check costs: permissions, topic permissions and each user's ACL rules are found by
 * binary search; each distinct expression is compiled once per snapshot (".*" never reaches
 * regexec). The exception: a topic permission expression with {username}, {vhost} or
 * {client_id} cannot be compiled ahead, so tq_access_topic_ok() expands it (on the stack up
 * to 512 bytes, malloc beyond) and runs regcomp/regexec/regfree on every call: it allocates.
 * The sessions cache their decisions per snapshot generation, so this stays off the hot
 * path. glibc's regexec takes a lock per compiled expression: checks are safe from any
 * thread, and not meant for per-packet use without that cache.
 *
 * Names and keys are byte strings of @len bytes (regexec with REG_STARTEND), NUL allowed.
 * A NULL snapshot makes every check false; so does a NULL user or vhost for the permission
 * checks, while the ACL checks take a NULL user as an anonymous client (everyone's rules
 * only). With ACLs on, an invalid topic (empty, wildcards) or filter is refused; a shared
 * subscription is checked by its filter part ("$share/g/" stripped by the caller).
 * set_permissions/set_topic_permissions refuse a NULL or empty user and NULL strings with
 * -EINVAL; ACL rules are not per vhost and survive tq_access_vhost_delete().
 */
#ifndef TQ_ACCESS_H
#define TQ_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_VHOST_NAME_MAX 255

enum tq_perm_op {
	TQ_PERM_CONFIGURE = 0,
	TQ_PERM_WRITE = 1,
	TQ_PERM_READ = 2,
};

enum tq_acl_access {
	TQ_ACL_DENY = 0,
	TQ_ACL_READ = 1,
	TQ_ACL_WRITE = 2,
	TQ_ACL_READWRITE = 3,
};

/* Values substituted into topic permissions and ACL patterns. */
struct tq_access_who {
	const char *user;      /* NUL-terminated */
	const char *vhost;     /* NUL-terminated */
	const char *client_id; /* NUL-terminated; "" for AMQP */
};

/* ---- the definitions (control thread only) ---- */

struct tq_access_db;

/* An empty db with no vhost. NULL with errno ENOMEM. */
struct tq_access_db *tq_access_db_new(void);
void tq_access_db_free(struct tq_access_db *db);

int tq_access_vhost_add(struct tq_access_db *db, const char *name);    /* -EEXIST, -EINVAL */
/* Delete @name with every permission and topic permission in it. -ENOENT. */
int tq_access_vhost_delete(struct tq_access_db *db, const char *name);
bool tq_access_vhost_exists(const struct tq_access_db *db, const char *name);

/*
 * Set (replace) @user's permissions on @vhost. -ENOENT no such vhost; -EINVAL an expression
 * that does not compile (@err gets regerror's text, may be NULL). The user need not exist
 * (RabbitMQ requires it; the caller checks).
 */
int tq_access_set_permissions(struct tq_access_db *db, const char *user, const char *vhost,
			      const char *configure, const char *write, const char *read,
			      char *err, size_t errlen);
int tq_access_clear_permissions(struct tq_access_db *db, const char *user,
				const char *vhost); /* -ENOENT */

/* Set (replace) topic permissions of @user on @exchange in @vhost; same errors. */
int tq_access_set_topic_permissions(struct tq_access_db *db, const char *user,
				    const char *vhost, const char *exchange, const char *write,
				    const char *read, char *err, size_t errlen);
/* Clear them for @exchange, or for every exchange when @exchange is NULL. -ENOENT. */
int tq_access_clear_topic_permissions(struct tq_access_db *db, const char *user,
				      const char *vhost, const char *exchange);

/*
 * Add or replace the ACL rule (@user, @pattern): @user NULL/"" = every user. -EINVAL for a
 * pattern that is not a valid MQTT filter. Rules keep the order they were first added in.
 */
int tq_access_set_acl(struct tq_access_db *db, const char *user, const char *pattern,
		      enum tq_acl_access access);
int tq_access_clear_acl(struct tq_access_db *db, const char *user,
			const char *pattern); /* -ENOENT */

/* Forget everything of @user (permissions, topic permissions, ACL rules): user deleted. */
void tq_access_forget_user(struct tq_access_db *db, const char *user);

/* Enumeration, for export and tachyonctl (pointers valid until the next change). */
struct tq_access_perm {
	const char *user, *vhost, *configure, *write, *read;
};
struct tq_access_topic_perm {
	const char *user, *vhost, *exchange, *write, *read;
};
struct tq_access_acl {
	const char *user; /* "" = every user */
	const char *pattern;
	enum tq_acl_access access;
};
size_t tq_access_vhost_count(const struct tq_access_db *db);
const char *tq_access_vhost_at(const struct tq_access_db *db, size_t i); /* name order */
size_t tq_access_perm_count(const struct tq_access_db *db);
int tq_access_perm_at(const struct tq_access_db *db, size_t i, struct tq_access_perm *out);
size_t tq_access_topic_perm_count(const struct tq_access_db *db);
int tq_access_topic_perm_at(const struct tq_access_db *db, size_t i,
			    struct tq_access_topic_perm *out);
size_t tq_access_acl_count(const struct tq_access_db *db);
int tq_access_acl_at(const struct tq_access_db *db, size_t i, struct tq_access_acl *out);

/* ---- the snapshot (built by control, read by anyone) ---- */

struct tq_access;

/* Compile a snapshot of @db, tagged with generation @gen. NULL with errno ENOMEM. */
struct tq_access *tq_access_build(const struct tq_access_db *db, uint64_t gen);
/* Free a snapshot no reader can hold any more. */
void tq_access_free(struct tq_access *a);

uint64_t tq_access_gen(const struct tq_access *a);

/* May @user open a connection to @vhost? */
bool tq_access_vhost_ok(const struct tq_access *a, const char *user, const char *vhost);

/* May @user do @op on the exchange or queue called @name (@len bytes) in @vhost? */
bool tq_access_check(const struct tq_access *a, const char *user, const char *vhost,
		     enum tq_perm_op op, const char *name, size_t len);

/*
 * Topic permission: may @who publish with (@op write) or bind to (@op read) routing key
 * @key (@len bytes) on topic exchange @exchange?
 */
bool tq_access_topic_ok(const struct tq_access *a, const struct tq_access_who *who,
			const char *exchange, enum tq_perm_op op, const char *key, size_t len);

/* MQTT ACLs: may @who publish to @topic (@len bytes)? subscribe to @filter? */
bool tq_access_acl_publish(const struct tq_access *a, const struct tq_access_who *who,
			   const char *topic, size_t len);
bool tq_access_acl_subscribe(const struct tq_access *a, const struct tq_access_who *who,
			     const char *filter, size_t len);

/*
 * MQTT filter algebra, without substitution (any thread, no allocation). false when an
 * argument is not a valid filter (topic: no wildcard). tq_access_filter_valid: non-empty,
 * at most 65535 bytes, '#' only as the whole last level, '+' only as a whole level.
 */
bool tq_access_filter_valid(const char *filter, size_t len);
bool tq_access_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);
/* Every topic @filter matches is matched by @pattern. */
bool tq_access_filter_covers(const char *pattern, size_t plen, const char *filter,
			     size_t flen);
/* Some topic is matched by both. */
bool tq_access_filter_intersects(const char *pattern, size_t plen, const char *filter,
				 size_t flen);

/*
 * The snapshot the workers read: NULL until the control plane publishes one (then the
 * protocols fall back to their config: guest, anonymous). Workers: rcu_dereference under
 * QSBR. Control thread: tq_access_publish() swaps it in and frees the old one after a
 * grace period (synchronize_rcu: the control thread is not a reader).
 */
extern struct tq_access *tq_access_cur;
void tq_access_publish(struct tq_access *a);

#endif
