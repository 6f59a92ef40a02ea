/*
 * tachyonctl: the operator's CLI. Talks to tachyond over the DPDK telemetry socket
 * (/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2) and prints tables, or JSON with --json.
 * The control plane's commands (users, permissions, policies, ...) speak the parameter
 * encoding of control/tq_admin.h. Exit status: 0 done, 1 tachyond refused the command (its
 * reason on stderr), 2 usage error, 3 tachyond cannot be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/tq_json.h"
#include "control/tq_telemetry_rows.h"

#define REPLY_MAX (64 * 1024)

enum {
	EXIT_REFUSED = 1,     /* tachyond answered no */
	EXIT_USAGE = 2,       /* wrong arguments: nothing sent */
	EXIT_UNREACHABLE = 3, /* no socket, no answer, or an answer that is not telemetry */
};

struct ctl {
	int fd;
	bool json;
	bool all;
	bool unreachable; /* set by ctl_connect / ctl_query: exit EXIT_UNREACHABLE */
	const char *sock; /* connected to on the first query */
};

static int
ctl_connect(struct ctl *c, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char buf[4096];

	c->unreachable = true; /* until the greeting */
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
	c->unreachable = false;
	return 0;
}

/* Send @cmd and return the parsed value under the reply's single key. */
static struct tq_json *
ctl_query(struct ctl *c, const char *cmd, char **raw_out)
{
	struct tq_json *root;
	char *raw;
	ssize_t n;

	if (c->unreachable || (c->fd < 0 && ctl_connect(c, c->sock)))
		return NULL;
	raw = malloc(REPLY_MAX + 1);
	if (!raw)
		return NULL;
	if (write(c->fd, cmd, strlen(cmd)) < 0 || (n = read(c->fd, raw, REPLY_MAX)) <= 0) {
		fprintf(stderr, "tachyonctl: %s: no reply\n", cmd);
		c->unreachable = true;
		free(raw);
		return NULL;
	}
	raw[n] = '\0';
	root = tq_json_parse(raw, (size_t)n, NULL);
	if (!root || root->type != TQ_JSON_OBJECT || !root->child) {
		fprintf(stderr, "tachyonctl: %s: unexpected reply: %s\n", cmd, raw);
		c->unreachable = true;
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
 * set SECTION.KEY=VALUE...: the config file's names, changed live: the network simulator's
 * (nsim.portN.rx|tx.KEY) here, the others through /tachyon/set (control/tq_tune.h).
 */
/*
 * /tachyon/set,SECTION.KEY=VALUE or /tachyon/get,SECTION.KEY: prints "KEY = VALUE" (set:
 * the value now in force), or tachyond's refusal on stderr (exit 1).
 */
static int
cmd_tune(struct ctl *c, const char *what, const char *arg)
{
	char q[300];
	struct tq_json *root;
	const struct tq_json *v, *e;
	char *raw = NULL;

	if (strlen(arg) > 250 || strchr(arg, ',') || strchr(arg, ' ') ||
	    (strcmp(what, "/tachyon/get") == 0) != (strchr(arg, '=') == NULL)) {
		fprintf(stderr, "tachyonctl: %s: '%s': SECTION.KEY%s\n", what + 9, arg,
			strcmp(what, "/tachyon/get") ? "=VALUE" : "");
		return 2;
	}
	snprintf(q, sizeof(q), "%s,%s", what, arg);
	root = ctl_query(c, q, &raw);
	if (!root)
		return c->unreachable ? 3 : 1;
	v = value_of(root);
	if (c->json) {
		printf("%s\n", raw);
	} else if ((e = tq_json_get(v, "error"))) {
		fprintf(stderr, "tachyonctl: %s\n", e->text ? e->text : "refused");
		free(raw);
		tq_json_free(root);
		return 1;
	} else if ((e = tq_json_get(v, "ok")) || (e = tq_json_get(v, "value"))) {
		int klen = (int)strcspn(arg, "=");

		printf("%.*s = %s\n", klen, arg, e->text ? e->text : "");
	}
	free(raw);
	tq_json_free(root);
	return 0;
}

static int
cmd_set(struct ctl *c, int argc, char **argv)
{
	int rc = 0;

	for (int i = 0; i < argc && rc == 0; i++) {
		char port[16], dir[8], kv[128];
		char *args[3] = {port, dir, kv};

		if (sscanf(argv[i], "nsim.port%15[0-9].%7[a-z].%127s", port, dir, kv) == 3) {
			rc = cmd_nsim(c, 3, args);
			continue;
		}
		rc = cmd_tune(c, "/tachyon/set", argv[i]);
	}
	return rc;
}

/* ---- the control plane's commands (control/tq_admin.h) ------------------------------- */

/* DPDK reads at most this much of a request, the command's name included. */
#define REQ_MAX 1023

/* A request: "/tachyon/NAME,key=value key=value", values percent-encoded. */
struct req {
	const char *name;
	char buf[REQ_MAX + 1];
	size_t len;
	unsigned int nparams;
	bool too_long;
};

static void
req_init(struct req *q, const char *name)
{
	q->name = name;
	q->len = (size_t)snprintf(q->buf, sizeof(q->buf), "/tachyon/%s", name);
	q->nparams = 0;
	q->too_long = false;
}

static void
req_putc(struct req *q, char ch)
{
	if (q->len >= REQ_MAX) {
		q->too_long = true;
		return;
	}
	q->buf[q->len++] = ch;
	q->buf[q->len] = '\0';
}

/* Append key=@val, every byte but A-Z a-z 0-9 - . _ ~ as %HH. @val NULL: left out. */
static void
req_add(struct req *q, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!val)
		return;
	req_putc(q, q->nparams++ ? ' ' : ',');
	for (; *key; key++)
		req_putc(q, *key);
	req_putc(q, '=');
	for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			req_putc(q, (char)*p);
		} else {
			req_putc(q, '%');
			req_putc(q, hex[*p >> 4]);
			req_putc(q, hex[*p & 15]);
		}
	}
}

/*
 * Send @q; on success *@root is the reply (the caller frees) and *@raw its text when @raw
 * is not NULL. A reply with "error" is printed on stderr (and, with --json, the reply on
 * stdout). Returns an exit status.
 */
static int
admin_query(struct ctl *c, const struct req *q, struct tq_json **root, char **raw)
{
	const struct tq_json *error;
	char *text = NULL;

	*root = NULL;
	if (q->too_long) {
		fprintf(stderr,
			"tachyonctl: %s: arguments too long: a request to tachyond holds %d bytes "
			"once encoded (see control/tq_admin.h)\n",
			q->name, REQ_MAX);
		return EXIT_USAGE;
	}
	*root = ctl_query(c, q->buf, &text);
	if (!*root)
		return c->unreachable ? EXIT_UNREACHABLE : EXIT_REFUSED;
	error = tq_json_get(value_of(*root), "error");
	if (error) {
		const struct tq_json *full = tq_json_get(value_of(*root), "error_full");

		if (c->json)
			printf("%s\n", text);
		fprintf(stderr, "tachyonctl: %s: ", q->name);
		if (full && full->child) /* a long message, in pieces */
			for (const struct tq_json *e = full->child; e; e = e->next)
				fputs(e->text ? e->text : "", stderr);
		else
			fputs(error->text ? error->text : "refused", stderr);
		fputc('\n', stderr);
		tq_json_free(*root);
		*root = NULL;
		free(text);
		return EXIT_REFUSED;
	}
	if (raw)
		*raw = text;
	else
		free(text);
	return 0;
}

/*
 * A change: send @q, then print the reply with --json, or @done (a printf format taking
 * @arg1 and @arg2) otherwise. *@out (when not NULL) gets the reply for more to print.
 */
static int
admin_change(struct ctl *c, const struct req *q, struct tq_json **out, const char *done,
	     const char *arg1, const char *arg2)
{
	struct tq_json *root;
	char *raw = NULL;
	int rc = admin_query(c, q, &root, &raw);

	if (rc)
		return rc;
	if (c->json)
		printf("%s\n", raw);
	else
		printf(done, arg1, arg2);
	free(raw);
	if (out)
		*out = root;
	else
		tq_json_free(root);
	return 0;
}

/*
 * A view: "/tachyon/@name" with @param (as is, after a comma) when not NULL. With --json the
 * reply is printed and *@root is NULL; otherwise *@root is the reply for the caller to show
 * (and free). Errors as admin_query. Returns an exit status.
 */
static int
view_query(struct ctl *c, const char *name, const char *param, struct tq_json **root)
{
	struct req q;
	char *raw = NULL;
	int rc;

	req_init(&q, name);
	if (param) {
		req_putc(&q, ',');
		for (; *param; param++)
			req_putc(&q, *param);
	}
	rc = admin_query(c, &q, root, c->json ? &raw : NULL);
	if (rc == 0 && c->json) {
		printf("%s\n", raw);
		tq_json_free(*root);
		*root = NULL;
	}
	free(raw);
	return rc;
}

/* How a table shows a column. */
enum {
	TC_BOOL = 1,     /* 0/1 as false/true */
	TC_QUOTED = 2,   /* "" shown as "" (an empty regular expression matches nothing) */
	TC_EVERYONE = 4, /* "" shown as * (an ACL rule for every user) */
};

struct tcol {
	const char *key, *header;
	unsigned int flags;
};

static void
json_put_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static size_t
json_len(const struct tq_json *j)
{
	size_t n = 0;

	for (j = j ? j->child : NULL; j; j = j->next)
		n++;
	return n;
}

static const char *
cell_text(const struct tq_json *e, unsigned int flags)
{
	const char *t = e && e->text ? e->text : "";

	if (flags & TC_BOOL)
		return strcmp(t, "0") == 0 ? "false" : "true";
	if (!*t && (flags & TC_QUOTED))
		return "\"\"";
	if (!*t && (flags & TC_EVERYONE))
		return "*";
	return t;
}

/* The pages of a list printed as one JSON reply, in the shape of a single page. */
static void
list_print_json(const struct req *q, struct tq_json **pages, size_t npages)
{
	const struct tq_json *first = value_of(pages[0]);
	const struct tq_json *total = tq_json_get(value_of(pages[npages - 1]), "total");

	printf("{\"/tachyon/%s\": {", q->name);
	for (const struct tq_json *col = first->child; col; col = col->next) {
		bool any = false;

		if (col->type != TQ_JSON_ARRAY)
			continue;
		printf("%s\"%s\": [", col == first->child ? "" : ", ", col->key);
		for (size_t p = 0; p < npages; p++) {
			const struct tq_json *a = tq_json_get(value_of(pages[p]), col->key);

			for (const struct tq_json *e = a ? a->child : NULL; e; e = e->next) {
				printf("%s", any ? ", " : "");
				any = true;
				if (e->type == TQ_JSON_STRING)
					json_put_str(e->text ? e->text : "");
				else
					printf("%s", e->text ? e->text : "null");
			}
		}
		printf("]");
	}
	printf(", \"total\": %s}}\n", total && total->text ? total->text : "0");
}

static void
list_print_table(struct tq_json **pages, size_t npages, const struct tcol *cols, unsigned int ncols)
{
	size_t nrows = 0, r = 0, w[16] = {0};
	const char **cell;

	for (size_t p = 0; p < npages; p++)
		nrows += json_len(tq_json_get(value_of(pages[p]), cols[0].key));
	cell = calloc(nrows * ncols + 1, sizeof(*cell));
	if (!cell) {
		fprintf(stderr, "tachyonctl: out of memory\n");
		return;
	}
	for (size_t p = 0; p < npages; p++) {
		size_t rows = json_len(tq_json_get(value_of(pages[p]), cols[0].key));

		for (unsigned int j = 0; j < ncols; j++) {
			const struct tq_json *e = tq_json_get(value_of(pages[p]), cols[j].key);
			size_t i = 0;

			for (e = e ? e->child : NULL; i < rows; i++, e = e ? e->next : NULL)
				cell[(r + i) * ncols + j] = cell_text(e, cols[j].flags);
		}
		r += rows;
	}
	for (unsigned int j = 0; j < ncols; j++) {
		w[j] = strlen(cols[j].header);
		for (size_t i = 0; i < nrows; i++)
			if (strlen(cell[i * ncols + j]) > w[j])
				w[j] = strlen(cell[i * ncols + j]);
	}
	for (unsigned int j = 0; j < ncols; j++)
		printf(j + 1 < ncols ? "%-*s  " : "%.*s\n", (int)w[j], cols[j].header);
	for (size_t i = 0; i < nrows; i++)
		for (unsigned int j = 0; j < ncols; j++)
			printf(j + 1 < ncols ? "%-*s  " : "%.*s\n",
			       (int)(j + 1 < ncols ? w[j] : INT_MAX), cell[i * ncols + j]);
	free(cell);
}

/*
 * A list: every page of @base (start=N for the ones after the first), then a table of
 * @cols, or with --json the reply (the pages merged when there were several).
 */
static int
admin_list(struct ctl *c, const struct req *base, const struct tcol *cols, unsigned int ncols)
{
	struct tq_json **pages = NULL;
	size_t npages = 0;
	char *raw = NULL;
	uint64_t start = 0;
	int rc = 0;

	for (;;) {
		struct tq_json *root, **grown;
		const struct tq_json *next;
		struct req q = *base;
		char num[24];

		if (start) {
			snprintf(num, sizeof(num), "%llu", (unsigned long long)start);
			req_add(&q, "start", num);
		}
		free(raw);
		raw = NULL;
		rc = admin_query(c, &q, &root, &raw);
		if (rc)
			break;
		grown = realloc(pages, (npages + 1) * sizeof(*pages));
		if (!grown) {
			tq_json_free(root);
			rc = EXIT_REFUSED;
			break;
		}
		pages = grown;
		pages[npages++] = root;
		next = tq_json_get(value_of(root), "next");
		if (!next || tq_json_u64(next) <= start)
			break;
		start = tq_json_u64(next);
	}
	if (rc == 0 && c->json && npages == 1)
		printf("%s\n", raw);
	else if (rc == 0 && c->json)
		list_print_json(base, pages, npages);
	else if (rc == 0)
		list_print_table(pages, npages, cols, ncols);
	free(raw);
	for (size_t p = 0; p < npages; p++)
		tq_json_free(pages[p]);
	free(pages);
	return rc;
}

/* Options and arguments after the command's name. */
struct sub {
	int argc;
	char **argv; /* the positional arguments */
	const char *vhost, *tags, *priority, *apply_to;
};

#define LIST(c, q, cols) admin_list(c, q, cols, sizeof(cols) / sizeof(cols[0]))

static int
cmd_users(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {{"name", "user", 0}, {"tags", "tags", 0}};
	struct req q;

	(void)s;
	req_init(&q, "users");
	return LIST(c, &q, cols);
}

static int
cmd_add_user(struct ctl *c, const struct sub *s)
{
	const struct tq_json *removed;
	struct tq_json *root = NULL;
	struct req q;
	int rc;

	req_init(&q, "add_user");
	req_add(&q, "user", s->argv[0]);
	req_add(&q, "password", s->argv[1]);
	req_add(&q, "tags", s->tags);
	rc = admin_change(c, &q, &root, "Added user \"%s\".\n", s->argv[0], NULL);
	if (rc)
		return rc;
	removed = tq_json_get(value_of(root), "default_user_removed");
	if (removed && removed->text && !c->json)
		printf("The default user \"%s\" was removed: once an operator adds users, only "
		       "those users can log in.\n",
		       removed->text);
	tq_json_free(root);
	return 0;
}

static int
cmd_delete_user(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "delete_user");
	req_add(&q, "user", s->argv[0]);
	return admin_change(c, &q, NULL,
			    "Deleted user \"%s\" with its permissions and ACL rules.\n", s->argv[0],
			    NULL);
}

static int
cmd_change_password(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "change_password");
	req_add(&q, "user", s->argv[0]);
	req_add(&q, "password", s->argv[1]);
	return admin_change(c, &q, NULL, "Changed the password of user \"%s\".\n", s->argv[0],
			    NULL);
}

/* set_user_tags NAME [TAG ...]: the tags joined with commas (none: no tags). */
static int
cmd_set_user_tags(struct ctl *c, const struct sub *s)
{
	char tags[REQ_MAX + 1] = "";
	size_t len = 0;
	struct req q;

	for (int i = 1; i < s->argc; i++) {
		int n = snprintf(tags + len, sizeof(tags) - len, "%s%s", i > 1 ? "," : "",
				 s->argv[i]);

		if (n < 0 || (size_t)n >= sizeof(tags) - len) {
			fprintf(stderr, "tachyonctl: set_user_tags: tags too long\n");
			return EXIT_USAGE;
		}
		len += (size_t)n;
	}
	req_init(&q, "set_user_tags");
	req_add(&q, "user", s->argv[0]);
	req_add(&q, "tags", tags);
	return admin_change(c, &q, NULL, "Set the tags of user \"%s\" to \"%s\".\n", s->argv[0],
			    tags);
}

static int
cmd_vhosts(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {{"name", "name", 0}};
	struct req q;

	(void)s;
	req_init(&q, "vhosts");
	return LIST(c, &q, cols);
}

static int
cmd_add_vhost(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "add_vhost");
	req_add(&q, "vhost", s->argv[0]);
	return admin_change(c, &q, NULL, "Added vhost \"%s\".\n", s->argv[0], NULL);
}

static int
cmd_delete_vhost(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "delete_vhost");
	req_add(&q, "vhost", s->argv[0]);
	return admin_change(c, &q, NULL, "Deleted vhost \"%s\".\n", s->argv[0], NULL);
}

static const char *
vhost_of(const struct sub *s)
{
	return s->vhost ? s->vhost : "/";
}

static int
cmd_permissions(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {
		{"user", "user", 0},
		{"vhost", "vhost", 0},
		{"configure", "configure", TC_QUOTED},
		{"write", "write", TC_QUOTED},
		{"read", "read", TC_QUOTED},
	};
	struct req q;

	req_init(&q, "permissions");
	req_add(&q, "vhost", s->vhost);
	return LIST(c, &q, cols);
}

static int
cmd_set_permissions(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "set_permissions");
	req_add(&q, "user", s->argv[0]);
	req_add(&q, "vhost", vhost_of(s));
	req_add(&q, "configure", s->argv[1]);
	req_add(&q, "write", s->argv[2]);
	req_add(&q, "read", s->argv[3]);
	return admin_change(c, &q, NULL, "Set permissions of user \"%s\" on vhost \"%s\".\n",
			    s->argv[0], vhost_of(s));
}

static int
cmd_clear_permissions(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "clear_permissions");
	req_add(&q, "user", s->argv[0]);
	req_add(&q, "vhost", vhost_of(s));
	return admin_change(c, &q, NULL, "Cleared permissions of user \"%s\" on vhost \"%s\".\n",
			    s->argv[0], vhost_of(s));
}

static int
cmd_topic_permissions(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {
		{"user", "user", 0},         {"vhost", "vhost", 0},
		{"exchange", "exchange", 0}, {"write", "write", TC_QUOTED},
		{"read", "read", TC_QUOTED},
	};
	struct req q;

	req_init(&q, "topic_permissions");
	req_add(&q, "vhost", s->vhost);
	return LIST(c, &q, cols);
}

static int
cmd_set_topic_permissions(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "set_topic_permissions");
	req_add(&q, "user", s->argv[0]);
	req_add(&q, "vhost", vhost_of(s));
	req_add(&q, "exchange", s->argv[1]);
	req_add(&q, "write", s->argv[2]);
	req_add(&q, "read", s->argv[3]);
	return admin_change(c, &q, NULL,
			    "Set topic permissions of user \"%s\" on exchange \"%s\".\n",
			    s->argv[0], s->argv[1]);
}

static int
cmd_clear_topic_permissions(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "clear_topic_permissions");
	req_add(&q, "user", s->argv[0]);
	req_add(&q, "vhost", vhost_of(s));
	req_add(&q, "exchange", s->argc > 1 ? s->argv[1] : NULL);
	return admin_change(c, &q, NULL,
			    "Cleared topic permissions of user \"%s\" on vhost \"%s\".\n",
			    s->argv[0], vhost_of(s));
}

static int
cmd_acls(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {
		{"user", "user", TC_EVERYONE},
		{"pattern", "pattern", 0},
		{"access", "access", 0},
	};
	struct req q;

	(void)s;
	req_init(&q, "acls");
	return LIST(c, &q, cols);
}

/* An ACL rule's user: "" and "*" mean every user. */
static const char *
acl_user(const char *u)
{
	return strcmp(u, "*") == 0 ? "" : u;
}

static int
cmd_set_acl(struct ctl *c, const struct sub *s)
{
	static const char *const access[] = {"read", "write", "readwrite", "deny"};
	const char *user = acl_user(s->argv[0]);
	bool known = false;
	struct req q;

	for (unsigned int i = 0; i < sizeof(access) / sizeof(access[0]); i++)
		known |= strcmp(s->argv[2], access[i]) == 0;
	if (!known) {
		fprintf(stderr,
			"tachyonctl: set_acl: access is read, write, readwrite or deny, "
			"not '%s'\n",
			s->argv[2]);
		return EXIT_USAGE;
	}
	req_init(&q, "set_acl");
	req_add(&q, "user", user);
	req_add(&q, "pattern", s->argv[1]);
	req_add(&q, "access", s->argv[2]);
	return admin_change(c, &q, NULL, "Set ACL rule for %s on \"%s\".\n",
			    user[0] ? user : "every user", s->argv[1]);
}

static int
cmd_clear_acl(struct ctl *c, const struct sub *s)
{
	const char *user = acl_user(s->argv[0]);
	struct req q;

	req_init(&q, "clear_acl");
	req_add(&q, "user", user);
	req_add(&q, "pattern", s->argv[1]);
	return admin_change(c, &q, NULL, "Cleared ACL rule for %s on \"%s\".\n",
			    user[0] ? user : "every user", s->argv[1]);
}

static int
cmd_policies(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {
		{"vhost", "vhost", 0},       {"name", "name", 0},
		{"pattern", "pattern", 0},   {"apply_to", "apply-to", 0},
		{"priority", "priority", 0}, {"definition", "definition", 0},
	};
	struct req q;

	req_init(&q, "policies");
	req_add(&q, "vhost", s->vhost);
	return LIST(c, &q, cols);
}

static int
cmd_set_policy(struct ctl *c, const struct sub *s)
{
	static const char *const apply[] = {"queues", "exchanges", "all", "users", "topics"};
	bool known = !s->apply_to;
	struct req q;

	if (s->priority) {
		char *end;
		long v;

		errno = 0;
		v = strtol(s->priority, &end, 10);
		if (!*s->priority || *end || errno || v < INT_MIN || v > INT_MAX) {
			fprintf(stderr, "tachyonctl: set_policy: --priority takes an integer\n");
			return EXIT_USAGE;
		}
	}
	for (unsigned int i = 0; !known && i < sizeof(apply) / sizeof(apply[0]); i++)
		known = strcmp(s->apply_to, apply[i]) == 0;
	if (!known) {
		fprintf(stderr,
			"tachyonctl: set_policy: --apply-to takes queues, exchanges, all, users "
			"or topics\n");
		return EXIT_USAGE;
	}
	req_init(&q, "set_policy");
	req_add(&q, "name", s->argv[0]);
	req_add(&q, "vhost", vhost_of(s));
	req_add(&q, "pattern", s->argv[1]);
	req_add(&q, "definition", s->argv[2]);
	req_add(&q, "priority", s->priority);
	req_add(&q, "apply_to", s->apply_to);
	return admin_change(c, &q, NULL, "Set policy \"%s\" on vhost \"%s\".\n", s->argv[0],
			    vhost_of(s));
}

static int
cmd_clear_policy(struct ctl *c, const struct sub *s)
{
	struct req q;

	req_init(&q, "clear_policy");
	req_add(&q, "name", s->argv[0]);
	req_add(&q, "vhost", vhost_of(s));
	return admin_change(c, &q, NULL, "Cleared policy \"%s\" on vhost \"%s\".\n", s->argv[0],
			    vhost_of(s));
}

/* export FILE / import FILE: FILE made absolute here, tachyond has another directory. */
static int
cmd_definitions(struct ctl *c, const struct sub *s, const char *name, const char *done)
{
	char path[PATH_MAX], cwd[PATH_MAX];
	struct req q;

	if (s->argv[0][0] == '/') {
		snprintf(path, sizeof(path), "%s", s->argv[0]);
	} else if (!getcwd(cwd, sizeof(cwd)) ||
		   (size_t)snprintf(path, sizeof(path), "%s/%s", cwd, s->argv[0]) >= sizeof(path)) {
		fprintf(stderr, "tachyonctl: %s: cannot make %s absolute\n", name, s->argv[0]);
		return EXIT_USAGE;
	}
	req_init(&q, name);
	req_add(&q, "path", path);
	return admin_change(c, &q, NULL, done, path, NULL);
}

static int
cmd_export(struct ctl *c, const struct sub *s)
{
	return cmd_definitions(c, s, "export", "Exported definitions to %s.\n");
}

static int
cmd_import(struct ctl *c, const struct sub *s)
{
	return cmd_definitions(c, s, "import", "Imported definitions from %s.\n");
}

static int
cmd_queues(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {
		{"vhost", "vhost", 0},          {"name", "name", 0},
		{"messages_ready", "ready", 0}, {"messages_unacked", "unacked", 0},
		{"consumers", "consumers", 0},  {"policy", "policy", 0},
	};
	struct req q;

	req_init(&q, "queues");
	req_add(&q, "vhost", s->vhost);
	return LIST(c, &q, cols);
}

static int
cmd_exchanges(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {
		{"vhost", "vhost", 0},
		{"name", "name", TC_QUOTED},
		{"type", "type", 0},
		{"durable", "durable", TC_BOOL},
		{"auto_delete", "auto_delete", TC_BOOL},
		{"internal", "internal", TC_BOOL},
		{"alternate_exchange", "alternate_exchange", 0},
	};
	struct req q;

	req_init(&q, "exchanges");
	req_add(&q, "vhost", s->vhost);
	return LIST(c, &q, cols);
}

static int
cmd_bindings(struct ctl *c, const struct sub *s)
{
	static const struct tcol cols[] = {
		{"vhost", "vhost", 0},
		{"source", "source", TC_QUOTED},
		{"destination", "destination", 0},
		{"destination_type", "destination_type", 0},
		{"routing_key", "routing_key", TC_QUOTED},
	};
	struct req q;

	req_init(&q, "bindings");
	req_add(&q, "vhost", s->vhost);
	return LIST(c, &q, cols);
}

static int
cmd_purge_queue(struct ctl *c, const struct sub *s)
{
	const struct tq_json *n;
	struct tq_json *root = NULL;
	struct req q;
	int rc;

	req_init(&q, "purge_queue");
	req_add(&q, "name", s->argv[0]);
	req_add(&q, "vhost", vhost_of(s));
	rc = admin_change(c, &q, &root, "Purged queue \"%s\" in vhost \"%s\"", s->argv[0],
			  vhost_of(s));
	if (rc)
		return rc;
	n = tq_json_get(value_of(root), "purged");
	if (!c->json)
		printf(": %s messages.\n", n && n->text ? n->text : "0");
	tq_json_free(root);
	return 0;
}

static int
cmd_auth(struct ctl *c, const struct sub *s)
{
	struct tq_json *root;
	struct req q;
	char *raw = NULL;
	int rc;

	(void)s;
	req_init(&q, "auth");
	rc = admin_query(c, &q, &root, &raw);
	if (rc)
		return rc;
	if (c->json)
		printf("%s\n", raw);
	else
		for (const struct tq_json *f = value_of(root)->child; f; f = f->next)
			printf("%-16s %s\n", f->key, f->text ? f->text : "");
	free(raw);
	tq_json_free(root);
	return 0;
}

/* ---- the older commands, in the same shape ------------------------------------------ */

static int
cmd_stats_(struct ctl *c, const struct sub *s)
{
	(void)s;
	return cmd_stats(c);
}

static int
cmd_ports_(struct ctl *c, const struct sub *s)
{
	(void)s;
	return cmd_ports(c);
}

static int
cmd_arp(struct ctl *c, const struct sub *s)
{
	(void)s;
	return cmd_worker_rows(c, "/tachyon/arp", TQ_ARP_ROW_HEADER);
}

/* The @i-th number of array @key in a /tachyon/workers reply. */
static uint64_t
worker_val(const struct tq_json *v, const char *key, unsigned int i)
{
	const struct tq_json *a = tq_json_get(v, key), *e;

	for (e = a ? a->child : NULL; e && i; e = e->next)
		i--;
	return e ? tq_json_u64(e) : 0;
}

/* workers: each worker's busy share over half a second, from two samples. */
static int
cmd_workers(struct ctl *c, const struct sub *s)
{
	struct tq_json *r0, *r1;
	const struct tq_json *a, *b, *lc;
	double dt;
	unsigned int n = 0;

	struct req q;
	int rc;

	(void)s;
	req_init(&q, "workers");
	rc = admin_query(c, &q, &r0, NULL);
	if (rc)
		return rc;
	usleep(500 * 1000);
	rc = view_query(c, "workers", NULL, &r1);
	if (rc || !r1) {
		tq_json_free(r0);
		return rc;
	}
	a = value_of(r0);
	b = value_of(r1);
	dt = (double)(tq_json_u64(tq_json_get(b, "tsc")) - tq_json_u64(tq_json_get(a, "tsc")));
	for (lc = tq_json_get(b, "lcore"), lc = lc ? lc->child : NULL; lc; lc = lc->next)
		n++;
	printf("%-6s %5s %7s %12s %10s\n", "worker", "lcore", "busy%", "loops/s", "sleeps/s");
	for (unsigned int i = 0; i < n && dt > 0; i++) {
		double hz = (double)tq_json_u64(tq_json_get(b, "tsc_hz"));
		double secs = dt / hz;
		double busy = (double)(worker_val(b, "busy_tsc", i) - worker_val(a, "busy_tsc", i));

		printf("%-6u %5" PRIu64 " %6.1f%% %12.0f %10.0f\n", i, worker_val(b, "lcore", i),
		       100.0 * busy / dt,
		       (double)(worker_val(b, "loops", i) - worker_val(a, "loops", i)) / secs,
		       (double)(worker_val(b, "idle_sleeps", i) - worker_val(a, "idle_sleeps", i)) /
			       secs);
	}
	tq_json_free(r0);
	tq_json_free(r1);
	return 0;
}

static int
cmd_conns(struct ctl *c, const struct sub *s)
{
	(void)s;
	return cmd_worker_rows(c, "/tachyon/conns", TQ_CONN_ROW_HEADER);
}

/* status: is tachyond up, and what it carries, on one screen (info, mqtt and amqp). */
static int
cmd_status(struct ctl *c, const struct sub *s)
{
	static const char *const views[] = {"info", "mqtt", "amqp"};
	struct tq_json *r[3] = {0};
	const struct tq_json *i, *m, *a;
	char *raw[3] = {0};
	int rc = 0;

	(void)s;
	for (unsigned int k = 0; k < 3 && rc == 0; k++) {
		struct req q;

		req_init(&q, views[k]);
		rc = admin_query(c, &q, &r[k], &raw[k]);
	}
	if (rc)
		goto out;
	if (c->json) {
		printf("{\"info\": %s, \"mqtt\": %s, \"amqp\": %s}\n", raw[0], raw[1], raw[2]);
		goto out;
	}
	i = value_of(r[0]);
	m = value_of(r[1]);
	a = value_of(r[2]);
	printf("tachyond %s: up %" PRIu64 " s, %" PRIu64 " workers, %" PRIu64 " ports, idle %s\n",
	       tq_json_get(i, "version") ? tq_json_get(i, "version")->text : "?",
	       tq_json_u64(tq_json_get(i, "uptime_s")), tq_json_u64(tq_json_get(i, "workers")),
	       tq_json_u64(tq_json_get(i, "ports")),
	       tq_json_get(i, "idle") ? tq_json_get(i, "idle")->text : "?");
	printf("MQTT (port %" PRIu64 "): %" PRIu64 " clients, %" PRIu64 " sessions, %" PRIu64
	       " subscriptions, %" PRIu64 " retained\n",
	       tq_json_u64(tq_json_get(m, "port")), tq_json_u64(tq_json_get(m, "clients_connected")),
	       tq_json_u64(tq_json_get(m, "sessions")), tq_json_u64(tq_json_get(m, "subscriptions")),
	       tq_json_u64(tq_json_get(m, "retained")));
	printf("AMQP (port %" PRIu64 "): %" PRIu64 " connections, %" PRIu64 " queues, %" PRIu64
	       " consumers, %" PRIu64 " messages ready, %" PRIu64 " unacked\n",
	       tq_json_u64(tq_json_get(a, "port")), tq_json_u64(tq_json_get(a, "connections")),
	       tq_json_u64(tq_json_get(a, "queues")), tq_json_u64(tq_json_get(a, "consumers")),
	       tq_json_u64(tq_json_get(a, "messages_ready")),
	       tq_json_u64(tq_json_get(a, "messages_unacked")));
out:
	for (unsigned int k = 0; k < 3; k++) {
		tq_json_free(r[k]);
		free(raw[k]);
	}
	return rc;
}

static int
cmd_info(struct ctl *c, const struct sub *s)
{
	(void)s;
	return cmd_raw(c, "/tachyon/info");
}

static int
cmd_mqtt(struct ctl *c, const struct sub *s)
{
	(void)s;
	return cmd_raw(c, "/tachyon/mqtt");
}

static int
cmd_amqp(struct ctl *c, const struct sub *s)
{
	(void)s;
	return cmd_raw(c, "/tachyon/amqp");
}

static int
cmd_ping_(struct ctl *c, const struct sub *s)
{
	return cmd_ping(c, s->argv[0], s->argc > 1 ? atoi(s->argv[1]) : 3);
}

static int
cmd_nsim_(struct ctl *c, const struct sub *s)
{
	return cmd_nsim(c, s->argc, s->argv);
}

static int
cmd_set_(struct ctl *c, const struct sub *s)
{
	return cmd_set(c, s->argc, s->argv);
}

/* The @i-th element of array @key of @v (NULL past the end). */
static const struct tq_json *
col_at(const struct tq_json *v, const char *key, unsigned int i)
{
	const struct tq_json *a = tq_json_get(v, key), *e;

	for (e = a ? a->child : NULL; e && i; e = e->next)
		i--;
	return e;
}

/* trace N: record the next N publishes per worker; trace: show them, oldest first. */
static int
cmd_trace(struct ctl *c, const struct sub *s)
{
	struct tq_json *root;
	const struct tq_json *v, *e;
	unsigned int n = 0, *order;
	uint64_t t0 = UINT64_MAX;
	int rc = 0;

	if (s->argc && (strlen(s->argv[0]) > 10 || strspn(s->argv[0], "0123456789") !=
							      strlen(s->argv[0]))) {
		fprintf(stderr, "tachyonctl: trace [N]\n");
		return 2;
	}
	rc = view_query(c, "trace", s->argc ? s->argv[0] : NULL, &root);
	if (rc || !root)
		return rc;
	v = value_of(root);
	if (s->argc) {
		printf("Recording the next %s publishes of each worker (tachyonctl trace shows them).\n",
		       s->argv[0]);
		goto out;
	}
	for (e = tq_json_get(v, "seq"), e = e ? e->child : NULL; e; e = e->next)
		n++;
	order = calloc(n ? n : 1, sizeof(*order));
	if (!order) {
		rc = 1;
		goto out;
	}
	for (unsigned int i = 0; i < n; i++) {
		uint64_t ms = tq_json_u64(col_at(v, "ms", i));

		order[i] = i;
		if (ms < t0)
			t0 = ms;
	}
	for (unsigned int i = 1; i < n; i++) /* by time, then worker and sequence: n <= 64 each */
		for (unsigned int j = i; j > 0 &&
					 tq_json_u64(col_at(v, "ms", order[j - 1])) >
						 tq_json_u64(col_at(v, "ms", order[j]));
		     j--) {
			unsigned int x = order[j];

			order[j] = order[j - 1];
			order[j - 1] = x;
		}
	printf("%8s %6s %5s %-16s %-20s %-32s %8s %4s %8s\n", "ms", "worker", "proto", "user",
	       "exchange", "topic/key", "size", "qos", "matched");
	for (unsigned int k = 0; k < n; k++) {
		unsigned int i = order[k];
		const struct tq_json *u = col_at(v, "user", i), *x = col_at(v, "exchange", i);
		const struct tq_json *key = col_at(v, "key", i), *p = col_at(v, "proto", i);

		printf("%8" PRIu64 " %6" PRIu64 " %5s %-16s %-20s %-32s %8" PRIu64 " %4" PRIu64
		       " %8" PRIu64 "\n",
		       tq_json_u64(col_at(v, "ms", i)) - t0, tq_json_u64(col_at(v, "worker", i)),
		       p && p->text ? p->text : "", u && u->text && *u->text ? u->text : "-",
		       x && x->text ? (*x->text ? x->text : (strcmp(p && p->text ? p->text : "",
								    "amqp") ? "-" : "(default)"))
				    : "",
		       key && key->text ? key->text : "", tq_json_u64(col_at(v, "size", i)),
		       tq_json_u64(col_at(v, "qos", i)), tq_json_u64(col_at(v, "matched", i)));
	}
	free(order);
out:
	tq_json_free(root);
	return rc;
}

/* sessions: MQTT sessions, connected or kept (the first 500; the total). */
static int
cmd_sessions(struct ctl *c, const struct sub *s)
{
	struct tq_json *root;
	const struct tq_json *v, *id, *wk, *on, *full;
	int rc;

	(void)s;
	rc = view_query(c, "sessions", NULL, &root);
	if (rc || !root)
		return rc;
	v = value_of(root);
	printf("%-40s %6s %7s %10s\n", "client_id", "worker", "online", "queue_full");
	id = tq_json_get(v, "client_id");
	wk = tq_json_get(v, "worker");
	on = tq_json_get(v, "online");
	full = tq_json_get(v, "queue_full");
	for (id = id ? id->child : NULL, wk = wk ? wk->child : NULL, on = on ? on->child : NULL,
	    full = full ? full->child : NULL;
	     id && wk && on && full; id = id->next, wk = wk->next, on = on->next, full = full->next)
		printf("%-40s %6" PRIu64 " %7s %10s\n", id->text ? id->text : "", tq_json_u64(wk),
		       tq_json_u64(on) ? "yes" : "no", tq_json_u64(full) ? "yes" : "no");
	if (tq_json_u64(tq_json_get(v, "total")) > 500)
		printf("(%" PRIu64 " sessions; the first 500 shown)\n",
		       tq_json_u64(tq_json_get(v, "total")));
	tq_json_free(root);
	return 0;
}

/* close_connection ADDR[:PORT]: the workers close that peer's connections. */
static int
cmd_close_connection(struct ctl *c, const struct sub *s)
{
	struct tq_json *root;
	int rc;

	if (strlen(s->argv[0]) > 40 || strchr(s->argv[0], ',')) {
		fprintf(stderr, "tachyonctl: close_connection ADDR[:PORT]\n");
		return 2;
	}
	rc = view_query(c, "close_connection", s->argv[0], &root);
	if (rc || !root)
		return rc;
	printf("Closing the connections from %s (AMQP: 320 CONNECTION_FORCED, MQTT 5: "
	       "DISCONNECT 0x98).\n", s->argv[0]);
	tq_json_free(root);
	return 0;
}

static int
cmd_get(struct ctl *c, const struct sub *s)
{
	int rc = 0;

	for (int i = 0; i < s->argc && rc == 0; i++)
		rc = cmd_tune(c, "/tachyon/get", s->argv[i]);
	return rc;
}

static int
cmd_raw_(struct ctl *c, const struct sub *s)
{
	return cmd_raw(c, s->argv[0]);
}

/* Which options a command takes after its name. */
enum {
	O_VHOST = 1,
	O_TAGS = 2,
	O_POLICY = 4, /* --priority, --apply-to */
};

struct command {
	const char *name;
	int min_args, max_args; /* positional arguments; max -1: any number */
	unsigned int opts;
	int (*run)(struct ctl *c, const struct sub *s);
};

static const struct command commands[] = {
	{"status", 0, 0, 0, cmd_status},
	{"stats", 0, 0, 0, cmd_stats_},
	{"ports", 0, 0, 0, cmd_ports_},
	{"arp", 0, 0, 0, cmd_arp},
	{"conns", 0, 0, 0, cmd_conns},
	{"workers", 0, 0, 0, cmd_workers},
	{"info", 0, 0, 0, cmd_info},
	{"mqtt", 0, 0, 0, cmd_mqtt},
	{"amqp", 0, 0, 0, cmd_amqp},
	{"ping", 1, 2, 0, cmd_ping_},
	{"nsim", 2, -1, 0, cmd_nsim_},
	{"set", 1, -1, 0, cmd_set_},
	{"get", 1, -1, 0, cmd_get},
	{"close_connection", 1, 1, 0, cmd_close_connection},
	{"sessions", 0, 0, 0, cmd_sessions},
	{"trace", 0, 1, 0, cmd_trace},
	{"raw", 1, 1, 0, cmd_raw_},
	{"users", 0, 0, 0, cmd_users},
	{"add_user", 2, 2, O_TAGS, cmd_add_user},
	{"delete_user", 1, 1, 0, cmd_delete_user},
	{"change_password", 2, 2, 0, cmd_change_password},
	{"set_user_tags", 1, -1, 0, cmd_set_user_tags},
	{"vhosts", 0, 0, 0, cmd_vhosts},
	{"add_vhost", 1, 1, 0, cmd_add_vhost},
	{"delete_vhost", 1, 1, 0, cmd_delete_vhost},
	{"permissions", 0, 0, O_VHOST, cmd_permissions},
	{"set_permissions", 4, 4, O_VHOST, cmd_set_permissions},
	{"clear_permissions", 1, 1, O_VHOST, cmd_clear_permissions},
	{"topic_permissions", 0, 0, O_VHOST, cmd_topic_permissions},
	{"set_topic_permissions", 4, 4, O_VHOST, cmd_set_topic_permissions},
	{"clear_topic_permissions", 1, 2, O_VHOST, cmd_clear_topic_permissions},
	{"acls", 0, 0, 0, cmd_acls},
	{"set_acl", 3, 3, 0, cmd_set_acl},
	{"clear_acl", 2, 2, 0, cmd_clear_acl},
	{"policies", 0, 0, O_VHOST, cmd_policies},
	{"list_policies", 0, 0, O_VHOST, cmd_policies}, /* rabbitmqctl's name */
	{"set_policy", 3, 3, O_VHOST | O_POLICY, cmd_set_policy},
	{"clear_policy", 1, 1, O_VHOST, cmd_clear_policy},
	{"export", 1, 1, 0, cmd_export},
	{"import", 1, 1, 0, cmd_import},
	{"queues", 0, 0, O_VHOST, cmd_queues},
	{"exchanges", 0, 0, O_VHOST, cmd_exchanges},
	{"bindings", 0, 0, O_VHOST, cmd_bindings},
	{"purge_queue", 1, 1, O_VHOST, cmd_purge_queue},
	{"auth", 0, 0, 0, cmd_auth},
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: tachyonctl [-p FILE_PREFIX | -s SOCKET] [--json] [--all] COMMAND [ARGS]\n"
		"Exit status: 0 done, 1 tachyond refused (reason on stderr), 2 usage, 3 tachyond\n"
		"not reachable. --json prints tachyond's JSON reply.\n"
		"\n"
		"Router:\n"
		"  status           up or not (exit 3), version, uptime, MQTT and AMQP in one screen\n"
		"  stats            counters (non-zero ones; --all for every one), per worker\n"
		"  ports            ports with addresses, offloads and traffic\n"
		"  arp              neighbour caches of every worker\n"
		"  workers          busy share, loops/s and sleeps/s of each worker (over 0.5 s)\n"
		"  conns            TCP connections: state, windows, RTT, queued bytes\n"
		"  sessions         MQTT sessions: client id, worker, online, queue full\n"
		"  trace [N]        record the next N publishes of each worker / show them\n"
		"  close_connection ADDR[:PORT]\n"
		"                   close the connections from that peer (AMQP 320, MQTT 5 0x98)\n"
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
		"  set SECTION.KEY=VALUE ... | get SECTION.KEY ...\n"
		"                   live: dataplane.{burst,idle,idle_polls,idle_sleep_max_us},\n"
		"                   auth.{iterations,cache_ms,fail_limit,fail_window_ms,\n"
		"                   fail_delay_ms}, log.level,\n"
		"                   tcp.{rcv_buf,snd_buf,syn_backlog,msl_ms,delack_ms,rto_min_ms,\n"
		"                   rto_max_ms,rto_initial_ms,keepalive_s,max_retries,mss,wscale,\n"
		"                   timestamps,sack} (mss..sack: new connections; keepalive_s\n"
		"                   cannot go back to 0),\n"
		"                   mqtt.{allow_anonymous,max_keepalive,max_packet_size,receive_max,\n"
		"                   max_inflight,max_queued,max_session_expiry,max_topic_len,\n"
		"                   max_topic_levels,max_subs,topic_alias_max,max_retained,\n"
		"                   sys_interval} (max_inflight: lower only),\n"
		"                   amqp.{frame_max,channel_max,heartbeat} (new connections);\n"
		"                   the rest needs a restart (README.md, \"Tuning\")\n"
		"  raw /CMD[,ARGS]  any telemetry command, printed as JSON\n"
		"\n"
		"Users and vhosts (the default user goes when the first user is added):\n"
		"  users | vhosts | auth (login figures)\n"
		"  add_user NAME PASSWORD [--tags T1,T2]   delete_user NAME\n"
		"  change_password NAME PASSWORD           set_user_tags NAME [TAG ...]\n"
		"  add_vhost NAME                          delete_vhost NAME\n"
		"\n"
		"Permissions (-p VHOST, default \"/\"; lists show every vhost without -p):\n"
		"  permissions [-p VHOST]\n"
		"  set_permissions [-p VHOST] USER CONFIGURE WRITE READ   (regular expressions)\n"
		"  clear_permissions [-p VHOST] USER\n"
		"  topic_permissions [-p VHOST]\n"
		"  set_topic_permissions [-p VHOST] USER EXCHANGE WRITE READ\n"
		"  clear_topic_permissions [-p VHOST] USER [EXCHANGE]\n"
		"MQTT ACLs (USER \"\" or \"*\": every user; %%u, %%c: user name, client id):\n"
		"  acls\n"
		"  set_acl USER PATTERN read|write|readwrite|deny\n"
		"  clear_acl USER PATTERN\n"
		"Policies:\n"
		"  policies [-p VHOST]   (or list_policies)\n"
		"  set_policy [-p VHOST] NAME PATTERN DEFINITION_JSON [--priority N]\n"
		"             [--apply-to queues|exchanges|all|users|topics]\n"
		"  clear_policy [-p VHOST] NAME\n"
		"Definitions (RabbitMQ's JSON format; FILE on tachyond's host):\n"
		"  export FILE | import FILE\n"
		"AMQP objects:\n"
		"  queues [-p VHOST] | exchanges [-p VHOST] | bindings [-p VHOST]\n"
		"  purge_queue [-p VHOST] NAME\n"
		"An argument that starts with '-' goes after \"--\".\n");
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
	static const struct option sub_opts[] = {
		{"vhost", required_argument, NULL, 'p'},
		{"tags", required_argument, NULL, 't'},
		{"priority", required_argument, NULL, 'P'},
		{"apply-to", required_argument, NULL, 'A'},
		{"json", no_argument, NULL, 'j'},
		{"all", no_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ctl c = {.fd = -1};
	const struct command *cmd = NULL;
	struct sub s = {0};
	const char *prefix = "rte", *sock = NULL;
	unsigned int given = 0;
	char path[256];
	int opt, rc, sargc;
	char **sargv;

	/* '+': stop at the command, whose own -p is a vhost (RabbitMQ's) */
	while ((opt = getopt_long(argc, argv, "+p:s:jah", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			prefix = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'a':
			c.all = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && !cmd; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "tachyonctl: unknown command '%s' (tachyonctl --help)\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	sargc = argc - optind;
	sargv = argv + optind;
	optind = 0; /* glibc: start over on the command's own arguments */
	while ((opt = getopt_long(sargc, sargv, "p:jah", sub_opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			s.vhost = optarg;
			given |= O_VHOST;
			break;
		case 't':
			s.tags = optarg;
			given |= O_TAGS;
			break;
		case 'P':
			s.priority = optarg;
			given |= O_POLICY;
			break;
		case 'A':
			s.apply_to = optarg;
			given |= O_POLICY;
			break;
		case 'j':
			c.json = true;
			break;
		case 'a':
			c.all = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	s.argc = sargc - optind;
	s.argv = sargv + optind;
	if ((given & ~cmd->opts) || s.argc < cmd->min_args ||
	    (cmd->max_args >= 0 && s.argc > cmd->max_args)) {
		fprintf(stderr, "tachyonctl: %s: wrong arguments (tachyonctl --help)\n", cmd->name);
		return EXIT_USAGE;
	}
	if (!sock) {
		const char *run = getuid() == 0 ? "/var/run" : getenv("XDG_RUNTIME_DIR");

		snprintf(path, sizeof(path), "%s/dpdk/%s/dpdk_telemetry.v2", run ? run : "/tmp",
			 prefix);
		sock = path;
	}
	c.sock = sock;
	rc = cmd->run(&c, &s);
	if (rc && c.unreachable)
		rc = EXIT_UNREACHABLE;
	if (c.fd >= 0)
		close(c.fd);
	return rc;
}
