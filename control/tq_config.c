#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <rte_cfgfile.h>

#include "dataplane/net/tq_ipv4.h"
#include "tq_config.h"

void
tq_config_defaults(struct tq_config *c)
{
	memset(c, 0, sizeof(*c));
	c->dp.idle = TQ_IDLE_BUSY;
	c->dp.burst = 32;
	c->dp.idle_polls = 1000;
	c->dp.idle_sleep_max_us = 1000;
	c->dp.ring_size = 1024;
	c->dp.mbufs_per_worker = 8192;
	c->dp.msg_mbufs = 16384;
	c->dp.nb_rxd = 1024;
	c->dp.nb_txd = 1024;
	c->dp.arp_entries = 1024;
	c->dp.arp_reachable_s = 300;
	c->dp.arp_retry_ms = 1000;
	c->dp.arp_retries = 3;
	tq_tcp_conf_defaults(&c->dp.tcp);
	tq_mqtt_conf_defaults(&c->mqtt);
	tq_amqp_conf_defaults(&c->amqp);
	tq_metrics_conf_defaults(&c->metrics);
	tq_cplane_conf_defaults(&c->auth);
}

static int
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end != '\0' || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Switches take true/false, yes/no, on/off as well as 1/0. */
static int
parse_bool(const char *s, uint32_t *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
		*out = 1;
	else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

struct u32_key {
	const char *section;
	const char *key;
	size_t offset;
	size_t size;
	uint32_t min, max;
};

#define DP_KEY(sec, k, field, lo, hi)                                                              \
	{sec, k, offsetof(struct tq_config, dp.field), sizeof(((struct tq_dp_conf *)0)->field),     \
	 lo, hi}

#define MQTT_KEY(k, lo, hi)                                                                        \
	{"mqtt", #k, offsetof(struct tq_config, mqtt.k), sizeof(((struct tq_mqtt_conf *)0)->k), lo, hi}

#define AUTH_KEY(k, field, lo, hi)                                                                 \
	{"auth", k, offsetof(struct tq_config, auth.field),                                        \
	 sizeof(((struct tq_cplane_conf *)0)->field), lo, hi}

#define AMQP_KEY(k, lo, hi)                                                                        \
	{"amqp", #k, offsetof(struct tq_config, amqp.k), sizeof(((struct tq_amqp_conf *)0)->k), lo, hi}

static const struct u32_key u32_keys[] = {
	DP_KEY("dataplane", "burst", burst, 1, TQ_BURST_MAX),
	DP_KEY("dataplane", "idle_polls", idle_polls, 0, UINT32_MAX),
	DP_KEY("dataplane", "idle_sleep_max_us", idle_sleep_max_us, 1, 1000000),
	DP_KEY("dataplane", "ring_size", ring_size, 64, 1 << 20),
	DP_KEY("dataplane", "mbufs_per_worker", mbufs_per_worker, 1024, 1 << 24),
	DP_KEY("dataplane", "msg_mbufs", msg_mbufs, 0, 1 << 24),
	DP_KEY("dataplane", "rx_desc", nb_rxd, 64, 16384),
	DP_KEY("dataplane", "tx_desc", nb_txd, 64, 16384),
	DP_KEY("arp", "entries", arp_entries, 16, 1 << 20),
	DP_KEY("arp", "reachable_s", arp_reachable_s, 1, 86400),
	DP_KEY("arp", "retry_ms", arp_retry_ms, 10, 60000),
	DP_KEY("arp", "retries", arp_retries, 1, 255),
	DP_KEY("tcp", "max_conns", tcp.max_conns, 1, 1 << 22),
	DP_KEY("tcp", "rcv_buf", tcp.rcv_buf, 4096, 1 << 30),
	DP_KEY("tcp", "snd_buf", tcp.snd_buf, 4096, 1 << 30),
	DP_KEY("tcp", "ooo_max_segs", tcp.ooo_max_segs, 1, 4096),
	DP_KEY("tcp", "syn_backlog", tcp.syn_backlog, 1, 1 << 22),
	DP_KEY("tcp", "msl_ms", tcp.msl_ms, 1, 600000),
	DP_KEY("tcp", "delack_ms", tcp.delack_ms, 0, 500),
	DP_KEY("tcp", "rto_min_ms", tcp.rto_min_ms, 1, 60000),
	DP_KEY("tcp", "rto_max_ms", tcp.rto_max_ms, 100, 600000),
	DP_KEY("tcp", "rto_initial_ms", tcp.rto_initial_ms, 10, 60000),
	DP_KEY("tcp", "keepalive_s", tcp.keepalive_s, 0, 86400),
	DP_KEY("tcp", "max_retries", tcp.max_retries, 1, 64),
	DP_KEY("tcp", "mss", tcp.mss, 88, 9000),
	DP_KEY("tcp", "wscale", tcp.wscale, 0, 14),
	DP_KEY("tcp", "timestamps", tcp.timestamps, 0, 1),
	DP_KEY("tcp", "sack", tcp.sack, 0, 1),
	DP_KEY("services", "echo", services.echo, 0, 65535),
	DP_KEY("services", "discard", services.discard, 0, 65535),
	DP_KEY("services", "chargen", services.chargen, 0, 65535),
	MQTT_KEY(port, 0, 65535),
	MQTT_KEY(allow_anonymous, 0, 1),
	MQTT_KEY(max_keepalive, 0, 65535),
	MQTT_KEY(max_packet_size, 64, 64 << 20),
	MQTT_KEY(receive_max, 1, 65535),
	MQTT_KEY(max_inflight, 1, 65535),
	MQTT_KEY(max_queued, 0, 1 << 24),
	MQTT_KEY(max_sessions, 16, 1 << 22),
	MQTT_KEY(max_session_expiry, 0, UINT32_MAX),
	MQTT_KEY(max_topic_len, 1, 65535),
	MQTT_KEY(max_topic_levels, 1, 65535),
	MQTT_KEY(max_subs, 1, 1 << 20),
	MQTT_KEY(topic_alias_max, 0, 65535),
	MQTT_KEY(max_retained, 0, 1 << 24),
	MQTT_KEY(sys_interval, 0, 86400),
	MQTT_KEY(msg_pool, 1023, 1 << 24),
	AMQP_KEY(port, 0, 65535),
	AMQP_KEY(frame_max, 4096, 1 << 20),
	AMQP_KEY(channel_max, 1, 65535),
	AMQP_KEY(heartbeat, 0, 65535),
	AMQP_KEY(max_queues, 16, 1 << 22),
	AMQP_KEY(op_pool, 1023, 1 << 24),
	{"metrics", "port", offsetof(struct tq_config, metrics.port), sizeof(uint32_t), 0, 65535},
	AUTH_KEY("iterations", users.iterations, 1, 10000000),
	AUTH_KEY("cache_ms", users.cache_ms, 0, 86400000),
	AUTH_KEY("fail_limit", users.fail_limit, 0, 1000000),
	AUTH_KEY("fail_window_ms", users.fail_window_ms, 1, 86400000),
	AUTH_KEY("fail_delay_ms", users.fail_delay_ms, 0, 600000),
	AUTH_KEY("ring_size", ring_size, 64, 1 << 20),
};

static void
store_uint(void *field, size_t size, uint32_t v)
{
	if (size == 1) /* uint8_t, or a bool whose range is [0, 1] */
		*(uint8_t *)field = (uint8_t)v;
	else if (size == 2)
		*(uint16_t *)field = (uint16_t)v;
	else
		*(uint32_t *)field = v;
}

static int
set_port(struct tq_config *c, unsigned int port, const char *key, const char *value, char *err,
	 size_t errlen)
{
	struct tq_port_conf *pc = &c->dp.ports[port];
	uint32_t v;

	if (strcmp(key, "ipv4") == 0) {
		if (tq_ipv4_parse_cidr(value, &pc->ipv4, &pc->prefix_len) == 0 && pc->ipv4)
			return 0;
	} else if (strcmp(key, "gateway") == 0) {
		if (tq_ipv4_parse_cidr(value, &pc->gateway, NULL) == 0)
			return 0;
	} else if (strcmp(key, "mtu") == 0) {
		if (parse_u32(value, 68, 9600, &v) == 0) {
			pc->mtu = (uint16_t)v;
			return 0;
		}
	} else {
		snprintf(err, errlen, "unknown key port%u.%s", port, key);
		return -EINVAL;
	}
	snprintf(err, errlen, "bad value for port%u.%s: '%s'", port, key, value);
	return -EINVAL;
}

int
tq_config_set(struct tq_config *c, const char *section, const char *key, const char *value,
	      char *err, size_t errlen)
{
	unsigned int port;
	enum tq_nsim_dir dir;
	char tail;
	int ret;

	ret = tq_nsim_parse_section(section, TQ_MAX_PORTS, &port, &dir);
	if (ret == -EINVAL) {
		snprintf(err, errlen, "bad section [%s]: nsim.portN.rx or nsim.portN.tx, N < %d",
			 section, TQ_MAX_PORTS);
		return -EINVAL;
	}
	if (ret == 0) {
		ret = tq_nsim_conf_set(&c->dp.nsim[port][dir], key, value);
		if (ret == -ENOENT)
			snprintf(err, errlen, "unknown setting %s.%s", section, key);
		else if (ret)
			snprintf(err, errlen, "bad value for %s.%s: '%s'", section, key, value);
		return ret ? -EINVAL : 0;
	}
	if (sscanf(section, "port%u%c", &port, &tail) == 1) {
		if (port >= TQ_MAX_PORTS) {
			snprintf(err, errlen, "port%u: at most %d ports", port, TQ_MAX_PORTS);
			return -EINVAL;
		}
		return set_port(c, port, key, value, err, errlen);
	}
	if (strcmp(section, "dataplane") == 0 && strcmp(key, "idle") == 0) {
		if (strcmp(value, "busy") == 0)
			c->dp.idle = TQ_IDLE_BUSY;
		else if (strcmp(value, "adaptive") == 0)
			c->dp.idle = TQ_IDLE_ADAPTIVE;
		else {
			snprintf(err, errlen, "dataplane.idle must be busy or adaptive, not '%s'",
				 value);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(section, "amqp") == 0 &&
	    (strcmp(key, "default_user") == 0 || strcmp(key, "default_pass") == 0)) {
		char *dst = key[8] == 'u' ? c->amqp.default_user : c->amqp.default_pass;

		if (strlen(value) >= sizeof(c->amqp.default_user)) {
			snprintf(err, errlen, "amqp.%s: at most 63 bytes", key);
			return -EINVAL;
		}
		snprintf(dst, sizeof(c->amqp.default_user), "%s", value);
		return 0;
	}
	if (strcmp(section, "auth") == 0 && strcmp(key, "definitions") == 0) {
		if (strlen(value) >= sizeof(c->auth.definitions)) {
			snprintf(err, errlen, "auth.definitions: at most %zu bytes",
				 sizeof(c->auth.definitions) - 1);
			return -EINVAL;
		}
		snprintf(c->auth.definitions, sizeof(c->auth.definitions), "%s", value);
		return 0;
	}
	if (strcmp(section, "metrics") == 0 && strcmp(key, "address") == 0) {
		struct in_addr a;

		if (strlen(value) >= sizeof(c->metrics.address) ||
		    inet_pton(AF_INET, value, &a) != 1) {
			snprintf(err, errlen, "metrics.address must be an IPv4 address, not '%s'",
				 value);
			return -EINVAL;
		}
		snprintf(c->metrics.address, sizeof(c->metrics.address), "%s", value);
		return 0;
	}
	if (strcmp(section, "mqtt") == 0 && strcmp(key, "shared_strategy") == 0) {
		static const char *const names[] = {"round_robin", "sticky", "hash"};

		for (uint32_t i = 0; i < 3; i++)
			if (strcmp(value, names[i]) == 0) {
				c->mqtt.shared_strategy = i;
				return 0;
			}
		snprintf(err, errlen,
			 "mqtt.shared_strategy must be round_robin, sticky or hash, not '%s'", value);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(u32_keys) / sizeof(u32_keys[0]); i++) {
		const struct u32_key *k = &u32_keys[i];
		uint32_t v;

		if (strcmp(section, k->section) || strcmp(key, k->key))
			continue;
		if (k->min == 0 && k->max == 1 && parse_bool(value, &v) == 0) {
			store_uint((char *)c + k->offset, k->size, v);
			return 0;
		}
		if (parse_u32(value, k->min, k->max, &v)) {
			snprintf(err, errlen, "%s.%s must be an integer in [%u, %u], not '%s'",
				 section, key, k->min, k->max, value);
			return -EINVAL;
		}
		store_uint((char *)c + k->offset, k->size, v);
		return 0;
	}
	snprintf(err, errlen, "unknown setting %s.%s", section, key);
	return -EINVAL;
}

int
tq_config_load(struct tq_config *c, const char *path, char *err, size_t errlen)
{
	struct rte_cfgfile *cf = rte_cfgfile_load(path, CFG_FLAG_EMPTY_VALUES);
	int nsec, ret = 0;
	char **names;

	if (!cf) {
		snprintf(err, errlen, "cannot read config file %s", path);
		return -ENOENT;
	}
	nsec = rte_cfgfile_num_sections(cf, NULL, 0);
	names = calloc((size_t)nsec + 1, sizeof(*names));
	for (int i = 0; names && i < nsec; i++)
		names[i] = malloc(CFG_NAME_LEN);
	if (!names) {
		rte_cfgfile_close(cf);
		return -ENOMEM;
	}
	rte_cfgfile_sections(cf, names, nsec);
	for (int i = 0; i < nsec && ret == 0; i++) {
		int n = rte_cfgfile_section_num_entries(cf, names[i]);
		struct rte_cfgfile_entry *e = calloc((size_t)n + 1, sizeof(*e));

		if (!e) {
			ret = -ENOMEM;
			break;
		}
		rte_cfgfile_section_entries(cf, names[i], e, n);
		for (int j = 0; j < n && ret == 0; j++)
			ret = tq_config_set(c, names[i], e[j].name, e[j].value, err, errlen);
		free(e);
	}
	for (int i = 0; i < nsec; i++)
		free(names[i]);
	free(names);
	rte_cfgfile_close(cf);
	if (ret == 0)
		snprintf(c->path, sizeof(c->path), "%s", path);
	return ret;
}

static void
usage(const char *prog)
{
	printf("usage: %s [EAL options] -- [options]\n"
	       "  -c, --config FILE        INI configuration (see README.md)\n"
	       "      --idle busy|adaptive how workers wait for packets\n"
	       "      --ipv4 PORT=A.B.C.D/LEN   address of a port\n"
	       "      --gateway PORT=A.B.C.D    default gateway behind a port\n"
	       "      --set SECTION.KEY=VALUE   any config file setting\n"
	       "  -h, --help               this text\n",
	       prog);
}

/* "N=value" → port N and value. */
static int
split_port_arg(const char *arg, char *section, size_t seclen, const char **value)
{
	char *eq = strchr(arg, '=');
	uint32_t port;
	char num[16];

	if (!eq || (size_t)(eq - arg) >= sizeof(num) || eq == arg)
		return -EINVAL;
	memcpy(num, arg, (size_t)(eq - arg));
	num[eq - arg] = '\0';
	if (parse_u32(num, 0, TQ_MAX_PORTS - 1, &port))
		return -EINVAL;
	snprintf(section, seclen, "port%u", port);
	*value = eq + 1;
	return 0;
}

int
tq_config_parse_args(struct tq_config *c, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"idle", required_argument, NULL, 'i'},
		{"ipv4", required_argument, NULL, '4'},
		{"gateway", required_argument, NULL, 'g'},
		{"set", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt, ret;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		char section[32], key[64];
		const char *value;
		const char *dot, *eq;

		switch (opt) {
		case 'c':
			ret = tq_config_load(c, optarg, err, errlen);
			break;
		case 'i':
			ret = tq_config_set(c, "dataplane", "idle", optarg, err, errlen);
			break;
		case '4':
		case 'g':
			ret = split_port_arg(optarg, section, sizeof(section), &value);
			if (ret)
				snprintf(err, errlen, "expected PORT=ADDRESS, got '%s'", optarg);
			else
				ret = tq_config_set(c, section, opt == '4' ? "ipv4" : "gateway",
						    value, err, errlen);
			break;
		case 's':
			/* The key follows the last dot before '=': sections may hold dots
			 * (nsim.port0.rx.drop=0.01), values too (port0.ipv4=198.18.0.2/24). */
			eq = strchr(optarg, '=');
			dot = eq ? memrchr(optarg, '.', (size_t)(eq - optarg)) : NULL;
			if (!dot || !eq || (size_t)(dot - optarg) >= sizeof(section) ||
			    (size_t)(eq - dot - 1) >= sizeof(key)) {
				snprintf(err, errlen, "expected SECTION.KEY=VALUE, got '%s'", optarg);
				return -EINVAL;
			}
			snprintf(section, sizeof(section), "%.*s", (int)(dot - optarg), optarg);
			snprintf(key, sizeof(key), "%.*s", (int)(eq - dot - 1), dot + 1);
			ret = tq_config_set(c, section, key, eq + 1, err, errlen);
			break;
		case 'h':
			usage(argv[0]);
			return 1;
		default:
			snprintf(err, errlen, "unknown option '%s' (try --help)", argv[optind - 1]);
			return -EINVAL;
		}
		if (ret)
			return ret;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
}
