/*
 * tachyond's configuration: defaults, an INI file (rte_cfgfile) and command-line options
 * given after EAL's "--". Control thread, boot only.
 */
#ifndef TQ_CONFIG_H
#define TQ_CONFIG_H

#include <stddef.h>

#include "control/tq_cplane.h"
#include "dataplane/tq_worker.h"
#include "proto/amqp/tq_amqp_broker.h"
#include "proto/mqtt/tq_mqtt_broker.h"
#include "tq_metrics.h"

struct tq_config {
	struct tq_dp_conf dp;
	struct tq_mqtt_conf mqtt; /* [mqtt] */
	struct tq_amqp_conf amqp; /* [amqp] */
	struct tq_metrics_conf metrics; /* [metrics] */
	struct tq_cplane_conf auth; /* [auth] */
	char path[256]; /* config file loaded, "" when none */
};

/* Fill @c with the defaults (busy polling, the production mode). */
void tq_config_defaults(struct tq_config *c);

/*
 * Apply the INI file at @path over @c. Unknown sections or keys and bad values are
 * errors. Returns 0 or -errno with a message in @err.
 */
int tq_config_load(struct tq_config *c, const char *path, char *err, size_t errlen);

/*
 * Apply one "section.key=value" setting (the form the command line's --set takes).
 * Returns 0 or -EINVAL with a message in @err.
 */
int tq_config_set(struct tq_config *c, const char *section, const char *key, const char *value,
		  char *err, size_t errlen);

/*
 * Parse the application's own arguments (after EAL's): -c/--config FILE,
 * --idle busy|adaptive, --ipv4 PORT=ADDR/LEN, --gateway PORT=ADDR, --set SEC.KEY=VAL.
 * Returns 0, 1 when help was printed, or -EINVAL with a message in @err.
 */
int tq_config_parse_args(struct tq_config *c, int argc, char **argv, char *err, size_t errlen);

#endif
