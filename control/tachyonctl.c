/*
 * tachyonctl: the operator's CLI. Talks to tachyond over the DPDK telemetry socket
 * (/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2) and prints tables, or JSON with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/tq_json.h"
#include "control/tq_telemetry_rows.h"

#define REPLY_MAX (64 * 1024)

struct ctl {
	int fd;
	bool json;
	bool all;
};

static int
ctl_connect(struct ctl *c, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char buf[4096];

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "tachyonctl: socket path too long\n");
		return -1;
	}
	strcpy(sun.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "tachyonctl: cannot connect to %s: %s (is tachyond running with "
				"this --file-prefix?)\n",
			path, strerror(errno));
		return -1;
	}
	/* The server greets with its version info first. */
	if (read(c->fd, buf, sizeof(buf)) <= 0) {
		fprintf(stderr, "tachyonctl: no greeting from %s\n", path);
		return -1;
	}
	return 0;
}

/* Send @cmd and return the parsed value under the reply's single key. */
static struct tq_json *
ctl_query(struct ctl *c, const char *cmd, char **raw_out)
{
	char *raw = malloc(REPLY_MAX + 1);
	struct tq_json *root;
	ssize_t n;

	if (!raw)
		return NULL;
	if (write(c->fd, cmd, strlen(cmd)) < 0 || (n = read(c->fd, raw, REPLY_MAX)) <= 0) {
		fprintf(stderr, "tachyonctl: %s: no reply\n", cmd);
		free(raw);
		return NULL;
	}
	raw[n] = '\0';
	root = tq_json_parse(raw, (size_t)n, NULL);
	if (!root || root->type != TQ_JSON_OBJECT || !root->child) {
		fprintf(stderr, "tachyonctl: %s: unexpected reply: %s\n", cmd, raw);
		tq_json_free(root);
		free(raw);
		return NULL;
	}
	if (root->child->type == TQ_JSON_NULL) {
		fprintf(stderr, "tachyonctl: %s: tachyond refused the command\n", cmd);
		tq_json_free(root);
		free(raw);
		return NULL;
	}
	if (raw_out)
		*raw_out = raw;
	else
		free(raw);
	return root;
}

static const struct tq_json *
value_of(const struct tq_json *root)
{
	return root->child;
}

static int
cmd_raw(struct ctl *c, const char *cmd)
{
	char *raw = NULL;
	struct tq_json *root = ctl_query(c, cmd, &raw);

	if (!root)
		return 1;
	printf("%s\n", raw);
	free(raw);
	tq_json_free(root);
	return 0;
}

static int
worker_count(struct ctl *c)
{
	struct tq_json *info = ctl_query(c, "/tachyon/info", NULL);
	int n = info ? (int)tq_json_u64(tq_json_get(value_of(info), "workers")) : -1;

	tq_json_free(info);
	return n;
}

static int
cmd_stats(struct ctl *c)
{
	struct tq_json *total, *help, *per[64] = {0};
	int nw, rc = 1;

	if (c->json)
		return cmd_raw(c, "/tachyon/stats");
	nw = worker_count(c);
	if (nw < 0)
		return 1;
	if (nw > 64)
		nw = 64;
	total = ctl_query(c, "/tachyon/stats", NULL);
	help = ctl_query(c, "/tachyon/counters", NULL);
	if (!total || !help)
		goto out;
	for (int i = 0; i < nw; i++) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "/tachyon/stats,%d", i);
		per[i] = ctl_query(c, cmd, NULL);
		if (!per[i])
			goto out;
	}
	printf("%-24s %14s", "counter", "total");
	for (int i = 0; i < nw && nw > 1; i++)
		printf(" %12s%-2d", "worker", i);
	printf("  %s\n", "meaning");
	for (const struct tq_json *e = value_of(total)->child; e; e = e->next) {
		const struct tq_json *h = tq_json_get(value_of(help), e->key);

		if (!c->all && tq_json_u64(e) == 0)
			continue;
		printf("%-24s %14llu", e->key, (unsigned long long)tq_json_u64(e));
		for (int i = 0; i < nw && nw > 1; i++)
			printf(" %14llu",
			       (unsigned long long)tq_json_u64(tq_json_get(value_of(per[i]), e->key)));
		printf("  %s\n", h && h->text ? h->text : "");
	}
	rc = 0;
out:
	for (int i = 0; i < nw; i++)
		tq_json_free(per[i]);
	tq_json_free(total);
	tq_json_free(help);
	return rc;
}

static int
cmd_ports(struct ctl *c)
{
	struct tq_json *ids = ctl_query(c, "/tachyon/ports", NULL);
	int rc = 0;

	if (!ids)
		return 1;
	if (c->json)
		printf("{");
	for (const struct tq_json *id = value_of(ids)->child; id; id = id->next) {
		char cmd[64];
		char *raw = NULL;
		struct tq_json *p;

		snprintf(cmd, sizeof(cmd), "/tachyon/ports,%s", id->text);
		p = ctl_query(c, cmd, &raw);
		if (!p) {
			rc = 1;
			break;
		}
		if (c->json) {
			/* {"/tachyon/ports,0": {...}} → "0": {...} */
			const char *body = strchr(raw, ':');

			printf("%s\"%s\"%.*s", id == value_of(ids)->child ? "" : ", ", id->text,
			       (int)(strlen(body) - 1), body);
		} else {
			printf("port %s\n", id->text);
			for (const struct tq_json *f = value_of(p)->child; f; f = f->next)
				printf("  %-12s %s\n", f->key, f->text ? f->text : "");
		}
		free(raw);
		tq_json_free(p);
	}
	if (c->json)
		printf("}\n");
	tq_json_free(ids);
	return rc;
}

/*
 * Per-worker tables whose rows tachyond formats as space-separated strings
 * (/tachyon/arp,N and /tachyon/conns,N): a header, then each row with its worker.
 */
static int
cmd_worker_rows(struct ctl *c, const char *base, const char *header)
{
	int nw = worker_count(c);

	if (nw < 0)
		return 1;
	if (!c->json)
		printf("%-6s %s\n", "worker", header);
	for (int i = 0; i < nw; i++) {
		char cmd[64];
		char *raw = NULL;
		struct tq_json *a;

		snprintf(cmd, sizeof(cmd), "%s,%d", base, i);
		a = ctl_query(c, cmd, &raw);
		if (!a)
			return 1;
		if (c->json)
			printf("%s\n", raw);
		else
			for (const struct tq_json *e = value_of(a)->child; e; e = e->next)
				printf("%-6d %s\n", i, e->text ? e->text : "");
		free(raw);
		tq_json_free(a);
	}
	return 0;
}

static int
cmd_ping(struct ctl *c, const char *ip, int count)
{
	struct tq_json *before, *after;
	uint64_t got = 0, base;
	int seq;

	before = ctl_query(c, "/tachyon/stats", NULL);
	if (!before)
		return 1;
	base = tq_json_u64(tq_json_get(value_of(before), "icmp_echo_replies_rx"));
	tq_json_free(before);
	for (seq = 1; seq <= count; seq++) {
		char cmd[96];
		struct tq_json *r;

		snprintf(cmd, sizeof(cmd), "/tachyon/ping,%s,%d", ip, seq);
		r = ctl_query(c, cmd, NULL);
		if (!r)
			return 1;
		tq_json_free(r);
		/* Wait up to a second for this reply (ARP may have to resolve first). */
		for (int t = 0; t < 100; t++) {
			usleep(10 * 1000);
			after = ctl_query(c, "/tachyon/stats", NULL);
			if (!after)
				return 1;
			got = tq_json_u64(tq_json_get(value_of(after), "icmp_echo_replies_rx")) - base;
			tq_json_free(after);
			if (got >= (uint64_t)seq)
				break;
		}
	}
	printf("%d echo requests sent to %s, %llu replies\n", count, ip, (unsigned long long)got);
	return got == (uint64_t)count ? 0 : 1;
}

/* nsim PORT rx|tx [key=value ...]: show, or change then show, a port's simulator. */
static int
cmd_nsim(struct ctl *c, int argc, char **argv)
{
	const struct tq_json *v, *error, *applied;
	char cmd[1024];
	char *raw = NULL;
	struct tq_json *r;
	int len, rc = 0;

	len = snprintf(cmd, sizeof(cmd), "/tachyon/nsim,%s,%s", argv[0], argv[1]);
	for (int i = 2; i < argc && len > 0 && (size_t)len < sizeof(cmd); i++)
		len += snprintf(cmd + len, sizeof(cmd) - (size_t)len, ",%s", argv[i]);
	if (len < 0 || (size_t)len >= sizeof(cmd)) {
		fprintf(stderr, "tachyonctl: nsim: too many settings\n");
		return 2;
	}
	r = ctl_query(c, cmd, &raw);
	if (!r)
		return 1;
	v = value_of(r);
	error = tq_json_get(v, "error");
	applied = tq_json_get(v, "applied");
	if (c->json) {
		printf("%s\n", raw);
	} else if (!error || applied) {
		printf("nsim port %s %s\n", argv[0], argv[1]);
		for (const struct tq_json *f = v->child; f; f = f->next)
			if (f != error)
				printf("  %-12s %s\n", f->key, f->text ? f->text : "");
	}
	if (error) {
		fprintf(stderr, "tachyonctl: nsim: %s\n", error->text ? error->text : "error");
		rc = 1;
	}
	/* "N/M workers": not all took the change in time */
	if (applied && applied->text) {
		unsigned int n = 0, m = 0;

		if (sscanf(applied->text, "%u/%u", &n, &m) != 2 || n != m)
			rc = 1;
	}
	free(raw);
	tq_json_free(r);
	return rc;
}

/*
 * set SECTION.KEY=VALUE...: the config file's names, changed live. Today the network
 * simulator's settings (nsim.portN.rx|tx.KEY) are the ones that can change while running.
 */
static int
cmd_set(struct ctl *c, int argc, char **argv)
{
	int rc = 0;

	for (int i = 0; i < argc && rc == 0; i++) {
		char port[16], dir[8], kv[128];
		char *args[3] = {port, dir, kv};

		if (sscanf(argv[i], "nsim.port%15[0-9].%7[a-z].%127s", port, dir, kv) != 3) {
			fprintf(stderr, "tachyonctl: set: '%s': only nsim.portN.rx|tx.KEY=VALUE can "
					"change while tachyond runs; other settings go in its config\n",
				argv[i]);
			return 2;
		}
		rc = cmd_nsim(c, 3, args);
	}
	return rc;
}

static void
usage(void)
{
	printf("usage: tachyonctl [-p FILE_PREFIX | -s SOCKET] [--json] [--all] COMMAND\n"
	       "commands:\n"
	       "  stats            counters (non-zero ones; --all for every one), per worker\n"
	       "  ports            ports with addresses, offloads and traffic\n"
	       "  arp              neighbour caches of every worker\n"
	       "  conns            TCP connections: state, windows, RTT, queued bytes\n"
	       "  info             version, workers, uptime\n"
	       "  mqtt             MQTT broker: clients, sessions, subscriptions, retained\n"
	       "  amqp             AMQP broker: connections, queues, consumers, messages\n"
	       "  ping IP [COUNT]  make tachyond send ICMP echo requests and count replies\n"
	       "  nsim PORT rx|tx [KEY=VALUE ...]\n"
	       "                   show or change the network simulator of a port's direction\n"
	       "                   (drop duplicate reorder corrupt delay_us jitter_us\n"
	       "                   rate_mbps seed queue; see README.md)\n"
	       "  set nsim.portN.rx|tx.KEY=VALUE ...\n"
	       "                   the same, with the config file's names\n"
	       "  raw /CMD[,ARGS]  any telemetry command, printed as JSON\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"prefix", required_argument, NULL, 'p'},
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"all", no_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ctl c = {.fd = -1};
	const char *prefix = "rte", *sock = NULL, *cmd;
	char path[256];
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "p:s:jah", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': prefix = optarg; break;
		case 's': sock = optarg; break;
		case 'j': c.json = true; break;
		case 'a': c.all = true; break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind >= argc) {
		usage();
		return 2;
	}
	cmd = argv[optind];
	if (!sock) {
		const char *run = getuid() == 0 ? "/var/run" : getenv("XDG_RUNTIME_DIR");

		snprintf(path, sizeof(path), "%s/dpdk/%s/dpdk_telemetry.v2", run ? run : "/tmp",
			 prefix);
		sock = path;
	}
	if (ctl_connect(&c, sock))
		return 1;
	if (strcmp(cmd, "stats") == 0)
		rc = cmd_stats(&c);
	else if (strcmp(cmd, "ports") == 0)
		rc = cmd_ports(&c);
	else if (strcmp(cmd, "arp") == 0)
		rc = cmd_worker_rows(&c, "/tachyon/arp", TQ_ARP_ROW_HEADER);
	else if (strcmp(cmd, "conns") == 0)
		rc = cmd_worker_rows(&c, "/tachyon/conns", TQ_CONN_ROW_HEADER);
	else if (strcmp(cmd, "info") == 0)
		rc = cmd_raw(&c, "/tachyon/info");
	else if (strcmp(cmd, "mqtt") == 0)
		rc = cmd_raw(&c, "/tachyon/mqtt");
	else if (strcmp(cmd, "amqp") == 0)
		rc = cmd_raw(&c, "/tachyon/amqp");
	else if (strcmp(cmd, "ping") == 0 && optind + 1 < argc)
		rc = cmd_ping(&c, argv[optind + 1], optind + 2 < argc ? atoi(argv[optind + 2]) : 3);
	else if (strcmp(cmd, "nsim") == 0 && optind + 2 < argc)
		rc = cmd_nsim(&c, argc - optind - 1, argv + optind + 1);
	else if (strcmp(cmd, "set") == 0 && optind + 1 < argc)
		rc = cmd_set(&c, argc - optind - 1, argv + optind + 1);
	else if (strcmp(cmd, "raw") == 0 && optind + 1 < argc)
		rc = cmd_raw(&c, argv[optind + 1]);
	else {
		usage();
		rc = 2;
	}
	close(c.fd);
	return rc;
}
