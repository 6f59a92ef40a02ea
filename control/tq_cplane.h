/*
 * The control plane's state and its service loop, on the control thread:
 *
 *   - owns the user store (tq_users), the access rules (tq_access_db) and the policies
 *     (tq_policy_db); every change publishes new snapshots for the workers (tq_access_cur,
 *     tq_policies_cur) and tells the brokers (vhosts, policies on live queues);
 *   - answers the workers' requests on the control ring (dataplane/tq_ctl.h): logins and
 *     SCRAM steps, holding back the answers the rate limit throttles;
 *   - runs commands from other threads (the telemetry thread serving tachyonctl) one at a
 *     time on the control thread (tq_cplane_call), so that nothing else ever writes this
 *     state.
 *
 * The default user: when no definitions file is loaded, the AMQP default user of the config
 * (amqp.default_user / default_pass, guest/guest unless changed; empty = none) is created
 * with full permissions on "/", and deleted the moment an operator adds a user of its own or
 * imports definitions with users. A router whose operator defined users never accepts guest.
 */
#ifndef TQ_CPLANE_H
#define TQ_CPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/tq_access.h"
#include "control/tq_policy.h"
#include "control/tq_users.h"

/* [auth] */
struct tq_cplane_conf {
	struct tq_users_conf users; /* iterations, cache_ms, fail_limit, fail_window_ms, ... */
	char definitions[256];      /* JSON definitions loaded at start ("" = none) */
	uint32_t ring_size;         /* control ring entries */
};

void tq_cplane_conf_defaults(struct tq_cplane_conf *c);

/*
 * Start: stores, definitions or the default user, snapshots, the control ring. Control
 * thread, boot, after the brokers started, before the workers run. @default_user/@pass: the
 * AMQP default ("" = none). 0 or -errno with a message in @err.
 */
int tq_cplane_start(const struct tq_cplane_conf *conf, const char *default_user,
		    const char *default_pass, char *err, size_t errlen);

/* One pass of the service: requests, held answers, one queued command. Returns work done. */
unsigned int tq_cplane_poll(void);

/* Stop (workers stopped): answers dropped, stores freed, snapshots unpublished. */
void tq_cplane_stop(void);

/*
 * Run @fn(@arg, @out, @cap) on the control thread and wait for it (any thread but the
 * control thread; one at a time). Returns what @fn returns, or -ETIMEDOUT after 10 s,
 * -ESHUTDOWN when the control plane is not running.
 */
typedef int (*tq_cplane_fn)(void *arg, char *out, size_t cap);
int tq_cplane_call(tq_cplane_fn fn, void *arg, char *out, size_t cap);

/*
 * The state, for the command handlers (tq_admin.c) and definitions (tq_defs.c), which run
 * inside tq_cplane_call on the control thread. After changing any of them, call
 * tq_cplane_changed() to publish.
 */
struct tq_users *tq_cplane_users(void);
struct tq_access_db *tq_cplane_access(void);
struct tq_policy_db *tq_cplane_policies(void);

/* Republish the access and policy snapshots (and apply policies to live queues). */
int tq_cplane_changed(void);

/* An operator added users (by command or import): the default user goes if it was ours. */
void tq_cplane_operator_users(void);

/* Add or delete a vhost everywhere (access rules and the AMQP exchange registry). */
int tq_cplane_vhost_add(const char *name);
int tq_cplane_vhost_delete(const char *name);

/* Monotonic milliseconds (the control thread's clock). */
uint64_t tq_cplane_now_ms(void);

#endif
