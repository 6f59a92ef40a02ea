#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataplane/tq_nsim.h"
#include "tq_nsim_ctl.h"

#define CTL_WAIT_MS 1000 /* longest wait for the workers to take new settings */

/* A carrier posted to a worker, until the worker acknowledges it (then we free what it
 * handed back) or shutdown forgets it (then the ring still holds it). */
struct ctl_pending {
	struct ctl_pending *next;
	struct tq_nsim *carrier;
	unsigned int worker;
	uint64_t seq; /* the worker took it once its nsim_acked reaches this */
};

/* All below: control thread at boot and shutdown, telemetry thread (under its lock) between. */
static struct tq_nsim_conf ctl_conf[TQ_MAX_PORTS][TQ_NSIM_DIRS];
static uint64_t ctl_posted[TQ_MAX_WORKERS]; /* TQ_MSG_NSIM messages posted per worker */
static struct ctl_pending *ctl_pending;

void
tq_nsim_ctl_init(const struct tq_dp_conf *dp)
{
	memcpy(ctl_conf, dp->nsim, sizeof(ctl_conf));
}

static bool
ctl_acked(const struct ctl_pending *p)
{
	return __atomic_load_n(&tq_dp.workers[p->worker]->nsim_acked, __ATOMIC_ACQUIRE) >= p->seq;
}

/* Free what acknowledged carriers handed back. Returns how many are still pending. */
static unsigned int
ctl_reap(void)
{
	struct ctl_pending **pp = &ctl_pending;
	unsigned int left = 0;

	while (*pp) {
		struct ctl_pending *p = *pp;

		if (!ctl_acked(p)) {
			pp = &p->next;
			left++;
			continue;
		}
		tq_nsim_free(tq_nsim_retired(p->carrier));
		if (!tq_nsim_enabled(p->carrier))
			tq_nsim_free(p->carrier); /* a disable: never installed */
		*pp = p->next;
		free(p);
	}
	return left;
}

/* Post settings @c for @port/@dir to every worker; returns how many took them in time. */
static unsigned int
ctl_apply(uint16_t port, enum tq_nsim_dir dir, const struct tq_nsim_conf *c, char *err,
	  size_t errlen)
{
	uint64_t want[TQ_MAX_WORKERS] = {0};
	unsigned int applied = 0;

	for (unsigned int i = 0; i < tq_dp.nb_workers; i++) {
		struct tq_worker *w = tq_dp.workers[i];
		struct ctl_pending *p = malloc(sizeof(*p));
		struct tq_nsim *ns = p ? tq_nsim_create(c, w->id, w->socket) : NULL;

		if (!ns) {
			snprintf(err, errlen, "worker %u: out of memory", i);
			free(p);
			continue;
		}
		if (tq_nsim_post(w, port, dir, ns)) {
			snprintf(err, errlen, "worker %u: inbound ring full", i);
			tq_nsim_free(ns);
			free(p);
			continue;
		}
		p->carrier = ns;
		p->worker = i;
		p->seq = want[i] = ++ctl_posted[i];
		p->next = ctl_pending;
		ctl_pending = p;
	}
	/* Adaptive idle naps at most idle_sleep_max_us: a second is plenty. */
	for (unsigned int t = 0; t < CTL_WAIT_MS && !tq_dp.stop && ctl_reap() > 0; t++)
		usleep(1000);
	for (unsigned int i = 0; i < tq_dp.nb_workers; i++)
		if (want[i] &&
		    __atomic_load_n(&tq_dp.workers[i]->nsim_acked, __ATOMIC_ACQUIRE) >= want[i])
			applied++;
	return applied;
}

int
tq_nsim_ctl_command(const char *params, struct rte_tel_data *d)
{
	struct tq_nsim_conf next;
	char buf[1024], err[128] = "", val[64];
	char *save = NULL, *tok, *end;
	unsigned long port;
	enum tq_nsim_dir dir;
	bool change = false;
	unsigned int applied = 0;

	if (!params || strlen(params) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, params);
	tok = strtok_r(buf, ",", &save);
	if (!tok)
		return -EINVAL;
	port = strtoul(tok, &end, 10);
	if (end == tok || *end != '\0' || port >= tq_nb_ports || !tq_ports[port].up)
		return -EINVAL;
	tok = strtok_r(NULL, ",", &save);
	if (tok && strcmp(tok, "rx") == 0)
		dir = TQ_NSIM_RX;
	else if (tok && strcmp(tok, "tx") == 0)
		dir = TQ_NSIM_TX;
	else
		return -EINVAL;
	next = ctl_conf[port][dir];
	while (!err[0] && (tok = strtok_r(NULL, ",", &save)) != NULL) {
		char *eq = strchr(tok, '=');
		int rc;

		if (!eq) {
			snprintf(err, sizeof(err), "expected key=value, got '%.64s'", tok);
			break;
		}
		*eq = '\0';
		rc = tq_nsim_conf_set(&next, tok, eq + 1);
		if (rc == -ENOENT)
			snprintf(err, sizeof(err), "unknown key '%.32s'", tok);
		else if (rc)
			snprintf(err, sizeof(err), "bad value for %.32s: '%.64s'", tok, eq + 1);
		change = true;
	}
	ctl_reap();
	rte_tel_data_start_dict(d);
	if (err[0]) {
		rte_tel_data_add_dict_string(d, "error", err);
		return 0;
	}
	if (change) {
		applied = ctl_apply((uint16_t)port, dir, &next, err, sizeof(err));
		ctl_conf[port][dir] = next;
	}
	rte_tel_data_add_dict_int(d, "port", (int)port);
	rte_tel_data_add_dict_string(d, "direction", tq_nsim_dir_name(dir));
	rte_tel_data_add_dict_string(d, "enabled", tq_nsim_conf_enabled(&next) ? "yes" : "no");
	for (unsigned int k = 0; tq_nsim_keys[k]; k++) {
		tq_nsim_conf_get(&next, tq_nsim_keys[k], val, sizeof(val));
		rte_tel_data_add_dict_string(d, tq_nsim_keys[k], val);
	}
	if (change) {
		snprintf(val, sizeof(val), "%u/%u workers", applied, tq_dp.nb_workers);
		rte_tel_data_add_dict_string(d, "applied", val);
		if (err[0])
			rte_tel_data_add_dict_string(d, "error", err);
	}
	return 0;
}

void
tq_nsim_ctl_close(void)
{
	ctl_reap();
	while (ctl_pending) {
		struct ctl_pending *p = ctl_pending;

		ctl_pending = p->next;
		free(p); /* the carrier is still in the worker's ring: tq_worker_destroy frees it */
	}
}
