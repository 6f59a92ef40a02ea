#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <rte_log.h>
#include <rte_telemetry.h>

#include "control/tq_config.h"
#include "control/tq_cplane.h"
#include "control/tq_telemetry.h"
#include "control/tq_tune.h"
#include "dataplane/tq_worker.h"
#include "proto/amqp/tq_amqp_broker.h"
#include "proto/mqtt/tq_mqtt_broker.h"

/* How long set waits for every worker to reach its tune barrier before it gives up. */
#define PARK_WAIT_MS 5000

/*
 * One set or get at a time: DPDK runs each telemetry client on its own thread. Held across
 * the tune barrier; guards the statics below.
 */
static pthread_mutex_t tune_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t park_gen; /* the last TQ_TUNE_PARK generation */
static const struct tq_config *tune_cfg;
/* The loop settings as last set (the workers take them at their next iteration). */
static struct {
	uint64_t burst, idle, idle_polls, idle_sleep_max_us;
} tune_cur;

static const char *const log_names[] = {"",	  "emergency", "alert", "critical", "error",
					"warning", "notice",    "info",  "debug"};

static const struct {
	const char *key;
	enum tq_tune_key tk;
} dp_keys[] = {
	{"burst", TQ_TUNE_BURST},
	{"idle", TQ_TUNE_IDLE},
	{"idle_polls", TQ_TUNE_IDLE_POLLS},
	{"idle_sleep_max_us", TQ_TUNE_IDLE_SLEEP_MAX_US},
};

/*
 * The settings that the workers, TCP and the brokers read where they need them, so a new value
 * takes effect without a restart (tq_tune.h says when). Offsets in struct tq_config.
 */
struct live_key {
	const char *sec, *key;
	size_t off, size;
};

#define LIVE(sec, k, field) {sec, k, offsetof(struct tq_config, field), \
			      sizeof(((struct tq_config *)0)->field)}

static const struct live_key live_keys[] = {
	LIVE("tcp", "rcv_buf", dp.tcp.rcv_buf),
	LIVE("tcp", "snd_buf", dp.tcp.snd_buf),
	LIVE("tcp", "syn_backlog", dp.tcp.syn_backlog),
	LIVE("tcp", "msl_ms", dp.tcp.msl_ms),
	LIVE("tcp", "delack_ms", dp.tcp.delack_ms),
	LIVE("tcp", "rto_min_ms", dp.tcp.rto_min_ms),
	LIVE("tcp", "rto_max_ms", dp.tcp.rto_max_ms),
	LIVE("tcp", "rto_initial_ms", dp.tcp.rto_initial_ms),
	LIVE("tcp", "keepalive_s", dp.tcp.keepalive_s),
	LIVE("tcp", "max_retries", dp.tcp.max_retries),
	LIVE("tcp", "mss", dp.tcp.mss),
	LIVE("tcp", "wscale", dp.tcp.wscale),
	LIVE("tcp", "timestamps", dp.tcp.timestamps),
	LIVE("tcp", "sack", dp.tcp.sack),
	LIVE("mqtt", "allow_anonymous", mqtt.allow_anonymous),
	LIVE("mqtt", "max_keepalive", mqtt.max_keepalive),
	LIVE("mqtt", "max_packet_size", mqtt.max_packet_size),
	LIVE("mqtt", "receive_max", mqtt.receive_max),
	LIVE("mqtt", "max_inflight", mqtt.max_inflight),
	LIVE("mqtt", "max_queued", mqtt.max_queued),
	LIVE("mqtt", "max_session_expiry", mqtt.max_session_expiry),
	LIVE("mqtt", "max_topic_len", mqtt.max_topic_len),
	LIVE("mqtt", "max_topic_levels", mqtt.max_topic_levels),
	LIVE("mqtt", "max_subs", mqtt.max_subs),
	LIVE("mqtt", "topic_alias_max", mqtt.topic_alias_max),
	LIVE("mqtt", "max_retained", mqtt.max_retained),
	LIVE("mqtt", "sys_interval", mqtt.sys_interval),
	LIVE("amqp", "frame_max", amqp.frame_max),
	LIVE("amqp", "channel_max", amqp.channel_max),
	LIVE("amqp", "heartbeat", amqp.heartbeat),
};

static const struct live_key *
live_key(const char *sec, const char *key)
{
	for (size_t i = 0; i < RTE_DIM(live_keys); i++)
		if (!strcmp(sec, live_keys[i].sec) && !strcmp(key, live_keys[i].key))
			return &live_keys[i];
	return NULL;
}

static uint64_t
live_value(const struct tq_config *c, const struct live_key *lk)
{
	const uint8_t *p = (const uint8_t *)c + lk->off;

	if (lk->size == 1)
		return *p;
	if (lk->size == 2)
		return *(const uint16_t *)p;
	return *(const uint32_t *)p;
}

/* The configuration with the values in force now: the boot one with TCP's and the brokers'
 * settings as they are (a broker that does not run keeps its boot section). */
static void
live_config(struct tq_config *c)
{
	*c = *tune_cfg;
	tq_tcp_conf_get(&c->dp.tcp);
	tq_mqtt_broker_conf_get(&c->mqtt);
	tq_amqp_broker_conf_get(&c->amqp);
}

/*
 * The tune barrier (VPP's worker barrier, in small): every worker stops where it reads its
 * ring (TQ_TUNE_PARK) and counts itself in, @apply changes what they all read, they go on.
 * Settings shared by all workers thus change with none of them reading, and each worker's own
 * state (scratch buffers) may be resized from here. If not every worker has stopped within
 * PARK_WAIT_MS, or tachyond stops meanwhile, it gives up with nothing changed (only tq_dp's
 * words are read while waiting: a worker that left its loop may be freed). Telemetry thread,
 * tune_lock held.
 */
static int
with_workers_parked(int (*apply)(void *arg, char *err, size_t cap), void *arg, char *err,
		    size_t cap)
{
	struct tq_ring_msg m = {.type = TQ_MSG_TUNE, .a = TQ_TUNE_PARK, .b = ++park_gen};
	const struct timespec nap = {.tv_sec = 0, .tv_nsec = 50 * 1000};
	struct timespec t0, now;
	int rc;

	__atomic_store_n(&tq_dp.tune_parked, m.b << 16, __ATOMIC_RELAXED); /* a new round */
	rc = tq_telemetry_post_all(&m);
	if (rc < 0) {
		snprintf(err, cap, "%s", rc == -ENOBUFS ? "a worker's ring is full: try again"
							: "shutting down");
		goto release; /* the workers that got it wait for the release */
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((__atomic_load_n(&tq_dp.tune_parked, __ATOMIC_ACQUIRE) & 0xffff) <
	       tq_dp.nb_workers) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (tq_dp.stop) {
			snprintf(err, cap, "shutting down");
			rc = -ESHUTDOWN;
			goto release;
		}
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >
		    PARK_WAIT_MS) {
			snprintf(err, cap, "%u of %u workers stopped for the change within "
				 "%u ms: nothing changed",
				 (unsigned int)(__atomic_load_n(&tq_dp.tune_parked,
								__ATOMIC_RELAXED) & 0xffff),
				 tq_dp.nb_workers, PARK_WAIT_MS);
			rc = -ETIMEDOUT;
			goto release;
		}
		nanosleep(&nap, NULL);
	}
	rc = apply(arg, err, cap);
release:
	__atomic_store_n(&tq_dp.tune_release, m.b, __ATOMIC_RELEASE);
	return rc;
}

struct live_set {
	const struct live_key *lk;
	const struct tq_config *next;
};

/* Under the tune barrier: hand the new section to its owner. */
static int
apply_live(void *arg, char *err, size_t cap)
{
	const struct live_set *ls = arg;
	int rc;

	if (!strcmp(ls->lk->sec, "tcp")) {
		tq_tcp_conf_set(&ls->next->dp.tcp);
		tq_amqp_broker_tcp_tuned(ls->next->dp.tcp.snd_buf);
		return 0;
	}
	if (!strcmp(ls->lk->sec, "mqtt"))
		rc = tq_mqtt_broker_conf_apply(&ls->next->mqtt, err, cap);
	else
		rc = tq_amqp_broker_conf_apply(&ls->next->amqp);
	if (rc == -ENOMEM)
		snprintf(err, cap, "%s.%s: out of memory for the larger buffers", ls->lk->sec,
			 ls->lk->key);
	return rc;
}

/*
 * tcp.*, mqtt.*, amqp.*: @next is the configuration in force with the new value (checked by
 * the config's parser); refuse what a running stack cannot take, else apply it under the
 * barrier. Telemetry thread, tune_lock held.
 */
static int
set_live(const struct live_key *lk, const struct tq_config *now, const struct tq_config *next,
	 char *err, size_t cap)
{
	struct live_set ls = {.lk = lk, .next = next};
	struct tq_mqtt_conf mc;
	struct tq_amqp_conf ac;

	if ((!strcmp(lk->sec, "mqtt") && tq_mqtt_broker_conf_get(&mc) < 0) ||
	    (!strcmp(lk->sec, "amqp") && tq_amqp_broker_conf_get(&ac) < 0)) {
		snprintf(err, cap, "%s.%s: %s does not run (its port is 0)", lk->sec, lk->key,
			 lk->sec);
		return -ENOTSUP;
	}
	if (!strcmp(lk->sec, "tcp")) {
		const struct tq_tcp_conf *t = &next->dp.tcp;

		/* An armed keepalive timer that finds 0 would probe at once and give up. */
		if (t->keepalive_s == 0 && now->dp.tcp.keepalive_s != 0) {
			snprintf(err, cap, "tcp.keepalive_s: turning keepalives off needs a "
				 "restart");
			return -EPERM;
		}
		if (t->rto_min_ms > t->rto_max_ms) {
			snprintf(err, cap, "tcp: rto_min_ms %u above rto_max_ms %u", t->rto_min_ms,
				 t->rto_max_ms);
			return -EINVAL;
		}
	}
	return with_workers_parked(apply_live, &ls, err, cap);
}

/* "section.key=value" into its three parts (in @buf). */
static int
split(const char *params, char *buf, size_t cap, char **sec, char **key, char **val)
{
	char *dot, *eq;

	if (!params || strlen(params) >= cap)
		return -EINVAL;
	strcpy(buf, params);
	dot = strchr(buf, '.');
	eq = strchr(buf, '=');
	if (!dot || (eq && eq < dot))
		return -EINVAL;
	*dot = '\0';
	*sec = buf;
	*key = dot + 1;
	if (eq) {
		*eq = '\0';
		*val = eq + 1;
	} else {
		*val = NULL;
	}
	return 0;
}

struct auth_set {
	const char *key;
	const struct tq_users_conf *parsed;
	uint64_t got; /* get */
	bool get;
};

/* On the control thread: read or change one field of the user store's settings. */
static int
auth_call(void *arg, char *out, size_t cap)
{
	struct auth_set *a = arg;
	struct tq_users_conf c;
	uint32_t *f;

	tq_users_conf_get(tq_cplane_users(), &c);
	if (!strcmp(a->key, "iterations"))
		f = &c.iterations;
	else if (!strcmp(a->key, "cache_ms"))
		f = &c.cache_ms;
	else if (!strcmp(a->key, "fail_limit"))
		f = &c.fail_limit;
	else if (!strcmp(a->key, "fail_window_ms"))
		f = &c.fail_window_ms;
	else if (!strcmp(a->key, "fail_delay_ms"))
		f = &c.fail_delay_ms;
	else {
		snprintf(out, cap, "auth.%s cannot change while tachyond runs", a->key);
		return -ENOTSUP;
	}
	if (a->get) {
		a->got = *f;
		return 0;
	}
	/* the same field of the config's parse of the new value */
	*f = *(const uint32_t *)((const char *)a->parsed + ((const char *)f - (const char *)&c));
	return tq_users_conf_set(tq_cplane_users(), &c);
}

static int tel_set_locked(const char *params, struct rte_tel_data *d);
static int tel_get_locked(const char *params, struct rte_tel_data *d);

static int
tel_set(const char *cmd, const char *params, struct rte_tel_data *d)
{
	int rc;

	(void)cmd;
	pthread_mutex_lock(&tune_lock);
	rc = tel_set_locked(params, d);
	pthread_mutex_unlock(&tune_lock);
	return rc;
}

static int
tel_get(const char *cmd, const char *params, struct rte_tel_data *d)
{
	int rc;

	(void)cmd;
	pthread_mutex_lock(&tune_lock);
	rc = tel_get_locked(params, d);
	pthread_mutex_unlock(&tune_lock);
	return rc;
}

static int
tel_set_locked(const char *params, struct rte_tel_data *d)
{
	static struct tq_config scratch, now; /* under tune_lock */
	char buf[256], err[256] = "", *sec, *key, *val;
	const struct live_key *lk;
	int rc;

	rte_tel_data_start_dict(d);
	if (split(params, buf, sizeof(buf), &sec, &key, &val) < 0 || !val) {
		rte_tel_data_add_dict_string(d, "error", "usage: SECTION.KEY=VALUE");
		return 0;
	}
	if (!strcmp(sec, "log") && !strcmp(key, "level")) {
		char *end;
		long lv = strtol(val, &end, 10);

		if (*end)
			for (lv = 1; lv <= 8 && strcasecmp(val, log_names[lv]); lv++)
				;
		if (lv < 1 || lv > 8) {
			rte_tel_data_add_dict_string(d, "error", "log.level: 1..8 or emergency, "
						     "alert, critical, error, warning, notice, info, debug");
			return 0;
		}
		rte_log_set_global_level((uint32_t)lv);
		rte_tel_data_add_dict_string(d, "ok", log_names[lv]);
		return 0;
	}
	live_config(&now);
	scratch = now;
	rc = tq_config_set(&scratch, sec, key, val, err, sizeof(err));
	if (rc < 0) {
		rte_tel_data_add_dict_string(d, "error", err);
		return 0;
	}
	if ((lk = live_key(sec, key))) {
		rc = set_live(lk, &now, &scratch, err, sizeof(err));
		if (rc < 0) {
			rte_tel_data_add_dict_string(d, "error", err[0] ? err : strerror(-rc));
			return 0;
		}
		live_config(&now);
		rte_tel_data_add_dict_u64(d, "ok", live_value(&now, lk));
		return 0;
	}
	if (!strcmp(sec, "dataplane")) {
		for (size_t i = 0; i < RTE_DIM(dp_keys); i++) {
			uint64_t v;

			if (strcmp(key, dp_keys[i].key))
				continue;
			v = dp_keys[i].tk == TQ_TUNE_BURST	  ? scratch.dp.burst
			    : dp_keys[i].tk == TQ_TUNE_IDLE	  ? scratch.dp.idle
			    : dp_keys[i].tk == TQ_TUNE_IDLE_POLLS ? scratch.dp.idle_polls
								  : scratch.dp.idle_sleep_max_us;
			struct tq_ring_msg m = {.type = TQ_MSG_TUNE, .a = dp_keys[i].tk, .b = v};

			rc = tq_telemetry_post_all(&m);
			if (rc < 0) {
				rte_tel_data_add_dict_string(d, "error",
							     rc == -ENOBUFS ? "a worker's ring is full: "
									      "try again"
									    : "shutting down");
				return 0;
			}
			if (dp_keys[i].tk == TQ_TUNE_BURST)
				tune_cur.burst = v;
			else if (dp_keys[i].tk == TQ_TUNE_IDLE)
				tune_cur.idle = v;
			else if (dp_keys[i].tk == TQ_TUNE_IDLE_POLLS)
				tune_cur.idle_polls = v;
			else
				tune_cur.idle_sleep_max_us = v;
			rte_tel_data_add_dict_string(d, "ok", val);
			return 0;
		}
	} else if (!strcmp(sec, "auth")) {
		struct auth_set a = {.key = key, .parsed = &scratch.auth.users};

		rc = tq_cplane_call(auth_call, &a, err, sizeof(err));
		if (rc < 0) {
			rte_tel_data_add_dict_string(d, "error", err[0] ? err : strerror(-rc));
			return 0;
		}
		rte_tel_data_add_dict_string(d, "ok", val);
		return 0;
	}
	snprintf(err, sizeof(err),
		 "%s.%s cannot change while tachyond runs (set it in the config and restart)", sec,
		 key);
	rte_tel_data_add_dict_string(d, "error", err);
	return 0;
}

static int
tel_get_locked(const char *params, struct rte_tel_data *d)
{
	static struct tq_config now; /* under tune_lock */
	char buf[256], err[256] = "", *sec, *key, *val;
	const struct live_key *lk;

	rte_tel_data_start_dict(d);
	if (split(params, buf, sizeof(buf), &sec, &key, &val) < 0 || val) {
		rte_tel_data_add_dict_string(d, "error", "usage: SECTION.KEY");
		return 0;
	}
	if (!strcmp(sec, "log") && !strcmp(key, "level")) {
		uint32_t lv = rte_log_get_global_level();

		rte_tel_data_add_dict_string(d, "value", lv <= 8 ? log_names[lv] : "?");
		return 0;
	}
	if ((lk = live_key(sec, key))) {
		live_config(&now);
		rte_tel_data_add_dict_u64(d, "value", live_value(&now, lk));
		return 0;
	}
	if (!strcmp(sec, "dataplane")) {
		if (!strcmp(key, "burst"))
			rte_tel_data_add_dict_u64(d, "value", tune_cur.burst);
		else if (!strcmp(key, "idle"))
			rte_tel_data_add_dict_string(d, "value", tune_cur.idle == TQ_IDLE_ADAPTIVE
									 ? "adaptive"
									 : "busy");
		else if (!strcmp(key, "idle_polls"))
			rte_tel_data_add_dict_u64(d, "value", tune_cur.idle_polls);
		else if (!strcmp(key, "idle_sleep_max_us"))
			rte_tel_data_add_dict_u64(d, "value", tune_cur.idle_sleep_max_us);
		else
			goto unknown;
		return 0;
	}
	if (!strcmp(sec, "auth")) {
		struct auth_set a = {.key = key, .get = true};
		int rc = tq_cplane_call(auth_call, &a, err, sizeof(err));

		if (rc < 0) {
			rte_tel_data_add_dict_string(d, "error", err[0] ? err : strerror(-rc));
			return 0;
		}
		rte_tel_data_add_dict_u64(d, "value", a.got);
		return 0;
	}
unknown:
	/* DPDK cuts strings at 127 bytes: the list is in tachyonctl --help */
	snprintf(err, sizeof(err), "%s.%s: no such live setting (tachyonctl --help lists them)",
		 sec, key);
	rte_tel_data_add_dict_string(d, "error", err);
	return 0;
}

int
tq_tune_register(const struct tq_config *cfg)
{
	int rc = 0;

	tune_cfg = cfg;
	tune_cur.burst = cfg->dp.burst;
	tune_cur.idle = cfg->dp.idle;
	tune_cur.idle_polls = cfg->dp.idle_polls;
	tune_cur.idle_sleep_max_us = cfg->dp.idle_sleep_max_us;
	rc |= rte_telemetry_register_cmd("/tachyon/set", tel_set,
					 "Change a setting live. Parameters: SECTION.KEY=VALUE");
	rc |= rte_telemetry_register_cmd("/tachyon/get", tel_get,
					 "A setting's value now. Parameters: SECTION.KEY");
	return rc ? -EINVAL : 0;
}
