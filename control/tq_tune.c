#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <rte_log.h>
#include <rte_telemetry.h>

#include "control/tq_config.h"
#include "control/tq_cplane.h"
#include "control/tq_telemetry.h"
#include "control/tq_tune.h"
#include "dataplane/tq_worker.h"

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

static int
tel_set(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static struct tq_config scratch; /* the telemetry thread's; one command at a time */
	char buf[256], err[256] = "", *sec, *key, *val;
	int rc;

	(void)cmd;
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
	scratch = *tune_cfg;
	rc = tq_config_set(&scratch, sec, key, val, err, sizeof(err));
	if (rc < 0) {
		rte_tel_data_add_dict_string(d, "error", err);
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
tel_get(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char buf[256], err[256] = "", *sec, *key, *val;

	(void)cmd;
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
