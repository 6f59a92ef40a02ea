/*
 * Live network-simulator settings: the /tachyon/nsim telemetry command. The control side
 * keeps the current settings of every port and direction, builds one new instance per
 * worker on each change, posts it on the worker's ring and frees what the workers hand
 * back (the protocol is in dataplane/tq_nsim.h, tq_nsim_post). It never writes worker
 * state.
 */
#ifndef TQ_NSIM_CTL_H
#define TQ_NSIM_CTL_H

#include <rte_telemetry.h>

#include "dataplane/tq_worker.h"

/* Take the boot settings from @dp. Control thread, before the command is registered. */
void tq_nsim_ctl_init(const struct tq_dp_conf *dp);

/*
 * /tachyon/nsim,PORT,rx|tx[,key=value...]: show the settings of PORT's direction, or
 * change the given keys (the others stay) and wait up to a second for every worker to
 * take them. Answers a dict of the settings ("applied": "N/M workers" after a change) or
 * {"error": "..."} for bad input; -EINVAL when there is no PORT and direction.
 * Telemetry thread, one caller at a time (tq_telemetry's lock).
 */
int tq_nsim_ctl_command(const char *params, struct rte_tel_data *d);

/*
 * Free what the workers handed back; forget messages they never took (tq_worker_destroy
 * frees those). Control thread, after the workers stopped and the telemetry commands were
 * closed, before the workers are destroyed.
 */
void tq_nsim_ctl_close(void);

#endif
