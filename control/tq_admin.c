/*
 * The operator's commands (see tq_admin.h for the parameters and the replies). Each command
 * is a row of admin_cmds[]: the keys it takes, checked on the telemetry thread, and the
 * function that does the work on the control thread inside tq_cplane_call().
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_telemetry.h>

#include "control/tq_admin.h"
#include "control/tq_cplane.h"
#include "control/tq_defs.h"
#include "proto/amqp/tq_amqp_admin.h"

#define ADMIN_PREFIX     "/tachyon/"
#define ADMIN_ARGS_MAX   8
#define ADMIN_PARAMS_MAX 1024 /* DPDK reads requests of at most 1023 bytes */
#define ERR_MAX          512

/* DPDK's telemetry output buffer (16 KiB in 22.11); a page keeps 3 KiB of it spare. */
#define PAGE_BUDGET (16384 - 3072)
#define PAGE_COLS   12

/* The parameters of one request, decoded; key[i] and val[i] point into buf. */
struct admin_args {
	unsigned int n;
	const char *key[ADMIN_ARGS_MAX];
	const char *val[ADMIN_ARGS_MAX];
	char buf[ADMIN_PARAMS_MAX + ADMIN_ARGS_MAX];
};

struct admin_req;

struct admin_cmd {
	const char *name; /* after /tachyon/ */
	/* The work, on the control thread; fills r->d, or returns -errno with a message. */
	int (*run)(struct admin_req *r, char *err, size_t errlen);
	const char *keys; /* accepted keys, space-separated; a '?' after a key: optional */
	const char *help;
};

/* One request on its way from the telemetry thread to the control thread and back. */
struct admin_req {
	const struct admin_cmd *cmd;
	struct admin_args args;
	struct rte_tel_data *d; /* the telemetry thread's, written by run() while it waits */
};

/* ---- strings for telemetry ----------------------------------------------------------- */

/*
 * Write @s into @out with bytes outside 0x20..0x7e as \xHH, at most @limit bytes; returns
 * false when @s did not fit.
 */
static bool
tel_str_fit(char *out, const char *s, size_t limit)
{
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch > 0x7e) {
			if (o + 4 > limit)
				break;
			snprintf(out + o, 5, "\\x%02x", ch);
			o += 4;
		} else {
			if (o + 1 > limit)
				break;
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return *s == '\0';
}

/* @s as a telemetry string (tq_admin.h: "Strings in replies") into @out. */
static void
tel_str(char out[RTE_TEL_MAX_STRING_LEN], const char *s)
{
	if (tel_str_fit(out, s, RTE_TEL_MAX_STRING_LEN - 1))
		return;
	tel_str_fit(out, s, RTE_TEL_MAX_STRING_LEN - 4);
	strcat(out, "...");
}

/* How many bytes @s takes in DPDK's JSON output, with its quotes and a comma. */
static size_t
json_cost(const char *s)
{
	size_t n = 3;

	for (; *s; s++)
		n += (*s == '"' || *s == '\\') ? 2 : 1;
	return n;
}

static void
dict_str(struct rte_tel_data *d, const char *key, const char *val)
{
	char buf[RTE_TEL_MAX_STRING_LEN];

	tel_str(buf, val);
	rte_tel_data_add_dict_string(d, key, buf);
}

static void
reply_ok(struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_int(d, "ok", 1);
}

/*
 * {"error": msg}. A message longer than a telemetry string is cut there, and comes whole in
 * "error_full" too: an array of pieces to join.
 */
static void
reply_error(struct rte_tel_data *d, const char *msg)
{
	char raw[RTE_TEL_MAX_STRING_LEN], out[RTE_TEL_MAX_STRING_LEN];
	struct rte_tel_data *full;
	size_t len = strlen(msg), at = 0;

	rte_tel_data_start_dict(d);
	dict_str(d, "error", msg);
	if (tel_str_fit(out, msg, RTE_TEL_MAX_STRING_LEN - 1) || !(full = rte_tel_data_alloc()))
		return;
	rte_tel_data_start_array(full, RTE_TEL_STRING_VAL);
	while (at < len) {
		size_t n = 0, o = 0;

		/* as many bytes as fit once written the way tel_str writes them */
		while (at + n < len) {
			unsigned char ch = (unsigned char)msg[at + n];
			size_t w = (ch < 0x20 || ch > 0x7e) ? 4 : 1;

			if (o + w > RTE_TEL_MAX_STRING_LEN - 1)
				break;
			o += w;
			n++;
		}
		memcpy(raw, msg + at, n);
		raw[n] = '\0';
		tel_str(out, raw);
		rte_tel_data_add_array_string(full, out);
		at += n;
	}
	if (rte_tel_data_add_dict_container(d, "error_full", full, 0) < 0)
		rte_tel_data_free(full);
}

/* ---- parameters -------------------------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Is @key (@len bytes) in @spec, and is it optional there? */
static bool
spec_has(const char *spec, const char *key, size_t len, bool *optional)
{
	const char *p = spec;

	while (*p) {
		size_t n = strcspn(p, " ?");

		if (n == len && memcmp(p, key, len) == 0) {
			if (optional)
				*optional = p[n] == '?';
			return true;
		}
		p += n;
		p += strspn(p, " ?");
	}
	return false;
}

/*
 * Decode @params (NULL: none) into @a against @c's keys. Pure: the telemetry thread runs it.
 * 0, or -EINVAL with a message in @err.
 */
static int
args_parse(const char *params, const struct admin_cmd *c, struct admin_args *a, char *err,
	   size_t errlen)
{
	const char *p = params ? params : "", *s;
	char *o = a->buf;

	a->n = 0;
	if (strlen(p) >= ADMIN_PARAMS_MAX) {
		snprintf(err, errlen, "parameters longer than %d bytes", ADMIN_PARAMS_MAX - 1);
		return -EINVAL;
	}
	while (*p) {
		size_t klen;
		const char *eq;

		if (*p == ' ') {
			p++;
			continue;
		}
		eq = p + strcspn(p, "= ");
		klen = (size_t)(eq - p);
		if (*eq != '=' || klen == 0) {
			snprintf(err, errlen, "parameter '%.*s' is not KEY=VALUE", (int)klen, p);
			return -EINVAL;
		}
		if (!spec_has(c->keys, p, klen, NULL)) {
			snprintf(err, errlen, "%s takes no parameter '%.*s'", c->name, (int)klen,
				 p);
			return -EINVAL;
		}
		for (unsigned int i = 0; i < a->n; i++) {
			if (strlen(a->key[i]) == klen && memcmp(a->key[i], p, klen) == 0) {
				snprintf(err, errlen, "parameter '%.*s' given twice", (int)klen, p);
				return -EINVAL;
			}
		}
		if (a->n == ADMIN_ARGS_MAX) {
			snprintf(err, errlen, "too many parameters");
			return -EINVAL;
		}
		a->key[a->n] = o;
		memcpy(o, p, klen);
		o += klen;
		*o++ = '\0';
		a->val[a->n] = o;
		for (s = eq + 1; *s && *s != ' '; s++) {
			int hi, lo;

			if (*s != '%') {
				*o++ = *s;
				continue;
			}
			hi = hexval(s[1]);
			lo = hi < 0 ? -1 : hexval(s[2]);
			if (lo < 0 || (hi == 0 && lo == 0)) {
				snprintf(err, errlen, "parameter '%.*s': bad %%-escape", (int)klen,
					 p);
				return -EINVAL;
			}
			*o++ = (char)(hi << 4 | lo);
			s += 2;
		}
		*o++ = '\0';
		a->n++;
		p = s;
	}
	/* every key without '?' is required */
	for (s = c->keys; *s;) {
		size_t n = strcspn(s, " ?");
		bool found = false;

		if (s[n] != '?') {
			for (unsigned int i = 0; i < a->n && !found; i++)
				found = strlen(a->key[i]) == n && memcmp(a->key[i], s, n) == 0;
			if (!found) {
				snprintf(err, errlen, "%s needs parameter '%.*s'", c->name, (int)n,
					 s);
				return -EINVAL;
			}
		}
		s += n;
		s += strspn(s, " ?");
	}
	return 0;
}

/* The value of @key, or NULL when not given. */
static const char *
arg(const struct admin_req *r, const char *key)
{
	for (unsigned int i = 0; i < r->args.n; i++)
		if (strcmp(r->args.key[i], key) == 0)
			return r->args.val[i];
	return NULL;
}

/* vhost=: the vhost a change applies to ("/" when not given). */
static const char *
arg_vhost(const struct admin_req *r)
{
	const char *v = arg(r, "vhost");

	return v ? v : "/";
}

static int
arg_u64(const struct admin_req *r, const char *key, uint64_t *out, char *err, size_t errlen)
{
	const char *v = arg(r, key);
	char *end;

	*out = 0;
	if (!v)
		return 0;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (!*v || *end || errno || *v == '-') {
		snprintf(err, errlen, "%s: '%s' is not a number", key, v);
		return -EINVAL;
	}
	return 0;
}

/* ---- lists, page by page ------------------------------------------------------------ */

enum col_type {
	COL_STR,
	COL_U64,
	COL_INT,
};

struct col {
	const char *name;
	enum col_type type;
};

/* A cell of a row: s for COL_STR (NULL is ""), u for COL_U64, i for COL_INT. */
struct cell {
	const char *s;
	uint64_t u;
	int i;
};

/*
 * Rows from @start on, one array per column, as long as they fit PAGE_BUDGET bytes of
 * output and RTE_TEL_MAX_ARRAY_ENTRIES; the rows after are counted only (total, next).
 */
struct page {
	const struct col *cols;
	unsigned int ncols;
	struct rte_tel_data *arr[PAGE_COLS]; /* ours until page_reply hands them to DPDK */
	uint64_t start, seen, rows, next;
	size_t bytes;
	bool full;
};

static void
page_free(struct page *pg)
{
	for (unsigned int i = 0; i < pg->ncols; i++) {
		rte_tel_data_free(pg->arr[i]);
		pg->arr[i] = NULL;
	}
}

static int
page_init(struct page *pg, const struct admin_req *r, const struct col *cols, unsigned int ncols,
	  char *err, size_t errlen)
{
	static const enum rte_tel_value_type tel_type[] = {
		[COL_STR] = RTE_TEL_STRING_VAL,
		[COL_U64] = RTE_TEL_U64_VAL,
		[COL_INT] = RTE_TEL_INT_VAL,
	};
	int rc;

	memset(pg, 0, sizeof(*pg));
	pg->cols = cols;
	pg->ncols = RTE_MIN(ncols, (unsigned int)PAGE_COLS);
	rc = arg_u64(r, "start", &pg->start, err, errlen);
	if (rc < 0)
		return rc;
	pg->bytes = 64; /* the command's name, total, next */
	for (unsigned int i = 0; i < pg->ncols; i++) {
		pg->arr[i] = rte_tel_data_alloc();
		if (!pg->arr[i]) {
			page_free(pg);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		rte_tel_data_start_array(pg->arr[i], tel_type[cols[i].type]);
		pg->bytes += strlen(cols[i].name) + 6;
	}
	return 0;
}

/* Offer one row: kept when it belongs to this page and fits, else only counted. */
static void
page_add(struct page *pg, const struct cell *cells)
{
	char buf[PAGE_COLS][RTE_TEL_MAX_STRING_LEN];
	uint64_t idx = pg->seen++;
	size_t cost = 0;

	if (idx < pg->start || pg->full)
		return;
	for (unsigned int i = 0; i < pg->ncols; i++) {
		if (pg->cols[i].type == COL_STR) {
			tel_str(buf[i], cells[i].s ? cells[i].s : "");
			cost += json_cost(buf[i]);
		} else {
			cost += 22;
		}
	}
	if (pg->rows == RTE_TEL_MAX_ARRAY_ENTRIES || (pg->rows && pg->bytes + cost > PAGE_BUDGET)) {
		pg->full = true;
		pg->next = idx;
		return;
	}
	for (unsigned int i = 0; i < pg->ncols; i++) {
		switch (pg->cols[i].type) {
		case COL_STR:
			rte_tel_data_add_array_string(pg->arr[i], buf[i]);
			break;
		case COL_U64:
			rte_tel_data_add_array_u64(pg->arr[i], cells[i].u);
			break;
		case COL_INT:
			rte_tel_data_add_array_int(pg->arr[i], cells[i].i);
			break;
		}
	}
	pg->rows++;
	pg->bytes += cost;
}

/* The reply: the columns (handed to DPDK, which frees them), total and next. */
static void
page_reply(struct page *pg, struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
	for (unsigned int i = 0; i < pg->ncols; i++) {
		if (rte_tel_data_add_dict_container(d, pg->cols[i].name, pg->arr[i], 0) < 0)
			rte_tel_data_free(pg->arr[i]);
		pg->arr[i] = NULL;
	}
	rte_tel_data_add_dict_u64(d, "total", pg->seen);
	if (pg->full)
		rte_tel_data_add_dict_u64(d, "next", pg->next);
}

/* Does a row of @vhost pass the request's vhost= filter? */
static bool
vhost_wanted(const struct admin_req *r, const char *vhost)
{
	const char *want = arg(r, "vhost");

	return !want || strcmp(want, vhost) == 0;
}

/* A change is done: publish it to the workers, then answer ok. */
static int
changed(struct admin_req *r, char *err, size_t errlen)
{
	int rc = tq_cplane_changed();

	if (rc < 0) {
		snprintf(err, errlen, "the change is made but not yet published: %s",
			 strerror(-rc));
		return rc;
	}
	reply_ok(r->d);
	return 0;
}

/* ---- users -------------------------------------------------------------------------- */

static int
run_users(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {{"name", COL_STR}, {"tags", COL_STR}};
	const struct tq_users *u = tq_cplane_users();
	struct page pg;
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < tq_users_count(u); i++) {
		const struct tq_user *x = tq_users_at(u, i);
		struct cell c[] = {{.s = x->name}, {.s = x->tags}};

		page_add(&pg, c);
	}
	page_reply(&pg, r->d);
	return 0;
}

static int
user_error(int rc, const char *user, char *err, size_t errlen)
{
	if (rc == -ENOENT)
		snprintf(err, errlen, "no such user \"%s\"", user);
	else if (rc == -EEXIST)
		snprintf(err, errlen, "user \"%s\" already exists", user);
	else if (rc == -EINVAL)
		snprintf(err, errlen,
			 "invalid user \"%s\": name 1 to %d bytes, password 1 to %d, tags up to %d",
			 user, TQ_USER_NAME_MAX, TQ_USER_PASSWORD_MAX, TQ_USER_TAGS_MAX);
	else
		snprintf(err, errlen, "user \"%s\": %s", user, strerror(-rc));
	return rc;
}

/*
 * add_user: the first user an operator adds removes the default one (tq_cplane.h); which
 * one went is found by comparing the names before and after, and told in the reply.
 */
static int
run_add_user(struct admin_req *r, char *err, size_t errlen)
{
	struct tq_users *u = tq_cplane_users();
	const char *name = arg(r, "user"), *pass = arg(r, "password"), *tags = arg(r, "tags");
	char removed[TQ_USER_NAME_MAX + 1] = "";
	size_t n;
	char **before;
	int rc;

	rc = tq_users_add(u, name, pass, strlen(pass), tags);
	if (rc < 0)
		return user_error(rc, name, err, errlen);
	n = tq_users_count(u);
	before = calloc(n ? n : 1, sizeof(*before));
	for (size_t i = 0; before && i < n; i++)
		before[i] = strdup(tq_users_at(u, i)->name);
	tq_cplane_operator_users();
	for (size_t i = 0; before && i < n; i++) {
		if (before[i] && !removed[0] && !tq_users_get(u, before[i], strlen(before[i])))
			snprintf(removed, sizeof(removed), "%s", before[i]);
		free(before[i]);
	}
	free(before);
	rc = changed(r, err, errlen);
	if (rc == 0 && removed[0])
		dict_str(r->d, "default_user_removed", removed);
	return rc;
}

static int
run_delete_user(struct admin_req *r, char *err, size_t errlen)
{
	const char *name = arg(r, "user");
	int rc = tq_users_delete(tq_cplane_users(), name);

	if (rc < 0)
		return user_error(rc, name, err, errlen);
	tq_access_forget_user(tq_cplane_access(), name);
	return changed(r, err, errlen);
}

static int
run_change_password(struct admin_req *r, char *err, size_t errlen)
{
	const char *name = arg(r, "user"), *pass = arg(r, "password");
	int rc = tq_users_set_password(tq_cplane_users(), name, pass, strlen(pass));

	if (rc < 0)
		return user_error(rc, name, err, errlen);
	return changed(r, err, errlen);
}

static int
run_set_user_tags(struct admin_req *r, char *err, size_t errlen)
{
	const char *name = arg(r, "user");
	int rc = tq_users_set_tags(tq_cplane_users(), name, arg(r, "tags"));

	if (rc < 0)
		return user_error(rc, name, err, errlen);
	return changed(r, err, errlen);
}

/* set_permissions and set_topic_permissions refuse an unknown user, as RabbitMQ does. */
static int
user_known(const char *name, char *err, size_t errlen)
{
	if (tq_users_get(tq_cplane_users(), name, strlen(name)))
		return 0;
	return user_error(-ENOENT, name, err, errlen);
}

static int
run_auth(struct admin_req *r, char *err, size_t errlen)
{
	const struct tq_users *u = tq_cplane_users();
	struct tq_users_stats st;

	(void)err;
	(void)errlen;
	tq_users_stats(u, &st);
	rte_tel_data_start_dict(r->d);
	rte_tel_data_add_dict_u64(r->d, "users", tq_users_count(u));
	rte_tel_data_add_dict_u64(r->d, "logins_ok", st.logins_ok);
	rte_tel_data_add_dict_u64(r->d, "logins_refused", st.logins_refused);
	rte_tel_data_add_dict_u64(r->d, "cache_hits", st.cache_hits);
	rte_tel_data_add_dict_u64(r->d, "throttled", st.throttled);
	rte_tel_data_add_dict_u64(r->d, "hashes", st.hashes);
	return 0;
}

/* ---- vhosts ------------------------------------------------------------------------- */

static int
vhost_error(int rc, const char *vhost, char *err, size_t errlen)
{
	if (rc == -ENOENT)
		snprintf(err, errlen, "no such vhost \"%s\"", vhost);
	else if (rc == -EEXIST)
		snprintf(err, errlen, "vhost \"%s\" already exists", vhost);
	else if (rc == -EBUSY)
		snprintf(err, errlen, "vhost \"%s\" has queues or open connections", vhost);
	else if (rc == -EINVAL)
		snprintf(err, errlen, "invalid vhost name \"%s\" (1 to %d bytes)", vhost,
			 TQ_VHOST_NAME_MAX);
	else
		snprintf(err, errlen, "vhost \"%s\": %s", vhost, strerror(-rc));
	return rc;
}

static int
run_vhosts(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {{"name", COL_STR}};
	const struct tq_access_db *db = tq_cplane_access();
	struct page pg;
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < tq_access_vhost_count(db); i++) {
		struct cell c[] = {{.s = tq_access_vhost_at(db, i)}};

		page_add(&pg, c);
	}
	page_reply(&pg, r->d);
	return 0;
}

static int
run_add_vhost(struct admin_req *r, char *err, size_t errlen)
{
	const char *vhost = arg(r, "vhost");
	int rc = tq_cplane_vhost_add(vhost);

	if (rc < 0)
		return vhost_error(rc, vhost, err, errlen);
	return changed(r, err, errlen);
}

static int
run_delete_vhost(struct admin_req *r, char *err, size_t errlen)
{
	const char *vhost = arg(r, "vhost");
	int rc = tq_cplane_vhost_delete(vhost);

	if (rc < 0)
		return vhost_error(rc, vhost, err, errlen);
	return changed(r, err, errlen);
}

/* ---- permissions -------------------------------------------------------------------- */

static int
run_permissions(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {
		{"user", COL_STR},  {"vhost", COL_STR}, {"configure", COL_STR},
		{"write", COL_STR}, {"read", COL_STR},
	};
	const struct tq_access_db *db = tq_cplane_access();
	struct page pg;
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < tq_access_perm_count(db); i++) {
		struct tq_access_perm p;

		if (tq_access_perm_at(db, i, &p) < 0 || !vhost_wanted(r, p.vhost))
			continue;
		page_add(&pg, (struct cell[]){{.s = p.user},
					      {.s = p.vhost},
					      {.s = p.configure},
					      {.s = p.write},
					      {.s = p.read}});
	}
	page_reply(&pg, r->d);
	return 0;
}

/* The errors of tq_access_set_*: @re_err is regerror's text for -EINVAL. */
static int
perm_error(int rc, const char *user, const char *vhost, const char *re_err, char *err,
	   size_t errlen)
{
	if (rc == -ENOENT)
		return vhost_error(rc, vhost, err, errlen);
	if (rc == -EINVAL)
		snprintf(err, errlen, "bad regular expression: %s", re_err[0] ? re_err : "invalid");
	else
		snprintf(err, errlen, "permissions of \"%s\" on \"%s\": %s", user, vhost,
			 strerror(-rc));
	return rc;
}

/* set_permissions, set_topic_permissions: user, vhost, @what (the field besides write and
 * read) through @set. */
static int
set_perms(struct admin_req *r, const char *what,
	  int (*set)(struct tq_access_db *db, const char *user, const char *vhost, const char *w,
		     const char *write, const char *read, char *err, size_t errlen),
	  char *err, size_t errlen)
{
	const char *user = arg(r, "user"), *vhost = arg_vhost(r);
	char re_err[ERR_MAX] = "";
	int rc = user_known(user, err, errlen);

	if (rc < 0)
		return rc;
	rc = set(tq_cplane_access(), user, vhost, arg(r, what), arg(r, "write"), arg(r, "read"),
		 re_err, sizeof(re_err));
	if (rc < 0)
		return perm_error(rc, user, vhost, re_err, err, errlen);
	return changed(r, err, errlen);
}

static int
run_set_permissions(struct admin_req *r, char *err, size_t errlen)
{
	return set_perms(r, "configure", tq_access_set_permissions, err, errlen);
}

static int
run_clear_permissions(struct admin_req *r, char *err, size_t errlen)
{
	const char *user = arg(r, "user"), *vhost = arg_vhost(r);
	int rc = tq_access_clear_permissions(tq_cplane_access(), user, vhost);

	if (rc == -ENOENT) {
		snprintf(err, errlen, "user \"%s\" has no permissions on vhost \"%s\"", user,
			 vhost);
		return rc;
	}
	if (rc < 0)
		return perm_error(rc, user, vhost, "", err, errlen);
	return changed(r, err, errlen);
}

static int
run_topic_permissions(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {
		{"user", COL_STR},  {"vhost", COL_STR}, {"exchange", COL_STR},
		{"write", COL_STR}, {"read", COL_STR},
	};
	const struct tq_access_db *db = tq_cplane_access();
	struct page pg;
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < tq_access_topic_perm_count(db); i++) {
		struct tq_access_topic_perm p;

		if (tq_access_topic_perm_at(db, i, &p) < 0 || !vhost_wanted(r, p.vhost))
			continue;
		page_add(&pg, (struct cell[]){{.s = p.user},
					      {.s = p.vhost},
					      {.s = p.exchange},
					      {.s = p.write},
					      {.s = p.read}});
	}
	page_reply(&pg, r->d);
	return 0;
}

static int
run_set_topic_permissions(struct admin_req *r, char *err, size_t errlen)
{
	return set_perms(r, "exchange", tq_access_set_topic_permissions, err, errlen);
}

static int
run_clear_topic_permissions(struct admin_req *r, char *err, size_t errlen)
{
	const char *user = arg(r, "user"), *vhost = arg_vhost(r), *x = arg(r, "exchange");
	int rc = tq_access_clear_topic_permissions(tq_cplane_access(), user, vhost, x);

	if (rc == -ENOENT) {
		snprintf(err, errlen, "user \"%s\" has no topic permissions on vhost \"%s\"%s%s%s",
			 user, vhost, x ? " for exchange \"" : "", x ? x : "", x ? "\"" : "");
		return rc;
	}
	if (rc < 0)
		return perm_error(rc, user, vhost, "", err, errlen);
	return changed(r, err, errlen);
}

/* ---- MQTT ACLs ---------------------------------------------------------------------- */

static const char *const acl_names[] = {
	[TQ_ACL_DENY] = "deny",
	[TQ_ACL_READ] = "read",
	[TQ_ACL_WRITE] = "write",
	[TQ_ACL_READWRITE] = "readwrite",
};

static int
run_acls(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {
		{"user", COL_STR}, {"pattern", COL_STR}, {"access", COL_STR}};
	const struct tq_access_db *db = tq_cplane_access();
	struct page pg;
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < tq_access_acl_count(db); i++) {
		struct tq_access_acl a;

		if (tq_access_acl_at(db, i, &a) < 0)
			continue;
		page_add(&pg, (struct cell[]){
				      {.s = a.user},
				      {.s = a.pattern},
				      {.s = (unsigned int)a.access < RTE_DIM(acl_names)
						    ? acl_names[a.access]
						    : "?"},
			      });
	}
	page_reply(&pg, r->d);
	return 0;
}

static int
run_set_acl(struct admin_req *r, char *err, size_t errlen)
{
	const char *user = arg(r, "user"), *pattern = arg(r, "pattern"), *access = arg(r, "access");
	int rc;

	for (unsigned int i = 0; i < RTE_DIM(acl_names); i++) {
		if (strcmp(access, acl_names[i]) != 0)
			continue;
		rc = tq_access_set_acl(tq_cplane_access(), user, pattern, (enum tq_acl_access)i);
		if (rc == -EINVAL) {
			snprintf(err, errlen, "\"%s\" is not a valid MQTT topic filter", pattern);
			return rc;
		}
		if (rc < 0) {
			snprintf(err, errlen, "ACL rule: %s", strerror(-rc));
			return rc;
		}
		return changed(r, err, errlen);
	}
	snprintf(err, errlen, "access must be read, write, readwrite or deny, not \"%s\"", access);
	return -EINVAL;
}

static int
run_clear_acl(struct admin_req *r, char *err, size_t errlen)
{
	const char *user = arg(r, "user"), *pattern = arg(r, "pattern");
	int rc = tq_access_clear_acl(tq_cplane_access(), user, pattern);

	if (rc == -ENOENT) {
		snprintf(err, errlen, "no ACL rule for %s%s%s and \"%s\"", user[0] ? "user \"" : "",
			 user[0] ? user : "every user", user[0] ? "\"" : "", pattern);
		return rc;
	}
	if (rc < 0) {
		snprintf(err, errlen, "ACL rule: %s", strerror(-rc));
		return rc;
	}
	return changed(r, err, errlen);
}

/* ---- policies ----------------------------------------------------------------------- */

static int
run_policies(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {
		{"vhost", COL_STR},    {"name", COL_STR},     {"pattern", COL_STR},
		{"apply_to", COL_STR}, {"priority", COL_INT}, {"definition", COL_STR},
	};
	const struct tq_policy_db *db = tq_cplane_policies();
	char def[1024];
	struct page pg;
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < tq_policy_count(db); i++) {
		struct tq_policy_info p;

		if (tq_policy_at(db, i, &p) < 0 || !vhost_wanted(r, p.vhost))
			continue;
		if (tq_policy_def_json(p.def, def, sizeof(def)) < 0)
			snprintf(def, sizeof(def), "(too long to show: see export)");
		page_add(&pg, (struct cell[]){{.s = p.vhost},
					      {.s = p.name},
					      {.s = p.pattern},
					      {.s = tq_policy_apply_name(p.apply_to)},
					      {.i = p.priority},
					      {.s = def}});
	}
	page_reply(&pg, r->d);
	return 0;
}

static int
run_set_policy(struct admin_req *r, char *err, size_t errlen)
{
	const char *vhost = arg_vhost(r), *json = arg(r, "definition");
	const char *prio = arg(r, "priority"), *apply = arg(r, "apply_to");
	enum tq_policy_apply apply_to = TQ_POLICY_ALL;
	struct tq_policy_def def;
	long priority = 0;
	char msg[ERR_MAX] = "";
	int rc;

	if (prio) {
		char *end;

		errno = 0;
		priority = strtol(prio, &end, 10);
		if (!*prio || *end || errno || priority < INT_MIN || priority > INT_MAX) {
			snprintf(err, errlen, "priority must be an integer, not \"%s\"", prio);
			return -EINVAL;
		}
	}
	if (apply && tq_policy_apply_parse(apply, &apply_to) < 0) {
		snprintf(err, errlen,
			 "apply-to must be queues, exchanges, all, users or topics, not \"%s\"",
			 apply);
		return -EINVAL;
	}
	if (!tq_access_vhost_exists(tq_cplane_access(), vhost))
		return vhost_error(-ENOENT, vhost, err, errlen);
	memset(&def, 0, sizeof(def));
	rc = tq_policy_def_parse(&def, json, strlen(json), msg, sizeof(msg));
	if (rc == 0)
		rc = tq_policy_set(tq_cplane_policies(), vhost, arg(r, "name"), arg(r, "pattern"),
				   apply_to, (int)priority, &def, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "policy \"%s\": %s", arg(r, "name"),
			 msg[0] ? msg : strerror(-rc));
		return rc;
	}
	return changed(r, err, errlen);
}

static int
run_clear_policy(struct admin_req *r, char *err, size_t errlen)
{
	const char *vhost = arg_vhost(r), *name = arg(r, "name");
	int rc = tq_policy_clear(tq_cplane_policies(), vhost, name);

	if (rc == -ENOENT) {
		snprintf(err, errlen, "no policy \"%s\" in vhost \"%s\"", name, vhost);
		return rc;
	}
	if (rc < 0) {
		snprintf(err, errlen, "policy \"%s\": %s", name, strerror(-rc));
		return rc;
	}
	return changed(r, err, errlen);
}

/* ---- definitions -------------------------------------------------------------------- */

static int
run_export(struct admin_req *r, char *err, size_t errlen)
{
	const char *path = arg(r, "path");
	char msg[ERR_MAX] = "";
	int rc = tq_defs_export_file(path, msg, sizeof(msg));

	if (rc < 0) {
		if (msg[0])
			snprintf(err, errlen, "%s", msg);
		else
			snprintf(err, errlen, "export to %s: %s", path, strerror(-rc));
		return rc;
	}
	reply_ok(r->d);
	dict_str(r->d, "path", path);
	return 0;
}

/*
 * import: tq_defs publishes what it applied; published here again in any case, since a
 * failed import may have applied the entries before the one that failed.
 */
static int
run_import(struct admin_req *r, char *err, size_t errlen)
{
	const char *path = arg(r, "path");
	char msg[ERR_MAX] = "";
	int rc = tq_defs_import_file(path, msg, sizeof(msg));
	int prc = tq_cplane_changed();

	if (rc < 0) {
		if (msg[0])
			snprintf(err, errlen, "%s", msg);
		else
			snprintf(err, errlen, "import of %s: %s", path, strerror(-rc));
		return rc;
	}
	if (prc < 0) {
		snprintf(err, errlen, "imported but not yet published: %s", strerror(-prc));
		return prc;
	}
	reply_ok(r->d);
	dict_str(r->d, "path", path);
	return 0;
}

/* ---- the AMQP broker ---------------------------------------------------------------- */

struct amqp_list {
	struct admin_req *r;
	struct page *pg;
};

static int
queue_row(void *arg_, const struct tq_amqp_queue_info *q)
{
	struct amqp_list *l = arg_;
	char args[1024] = "";

	if (!vhost_wanted(l->r, q->vhost))
		return 0;
	if (q->args && tq_policy_def_json(q->args, args, sizeof(args)) < 0)
		snprintf(args, sizeof(args), "(too long to show: see export)");
	page_add(l->pg, (struct cell[]){{.s = q->vhost},
					{.s = q->name},
					{.u = q->ready},
					{.u = q->unacked},
					{.u = q->consumers},
					{.s = q->policy},
					{.i = q->durable},
					{.i = q->auto_delete},
					{.i = q->exclusive},
					{.u = q->home},
					{.s = args}});
	return 0;
}

static int
run_queues(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {
		{"vhost", COL_STR},          {"name", COL_STR},
		{"messages_ready", COL_U64}, {"messages_unacked", COL_U64},
		{"consumers", COL_U64},      {"policy", COL_STR},
		{"durable", COL_INT},        {"auto_delete", COL_INT},
		{"exclusive", COL_INT},      {"worker", COL_U64},
		{"arguments", COL_STR},
	};
	struct page pg;
	struct amqp_list l = {r, &pg};
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	rc = tq_amqp_admin_queues(queue_row, &l);
	if (rc < 0) {
		page_free(&pg);
		snprintf(err, errlen, "queues: %s", strerror(-rc));
		return rc;
	}
	page_reply(&pg, r->d);
	return 0;
}

static int
exchange_row(void *arg_, const struct tq_amqp_exchange_info *x)
{
	struct amqp_list *l = arg_;

	if (!vhost_wanted(l->r, x->vhost))
		return 0;
	page_add(l->pg, (struct cell[]){{.s = x->vhost},
					{.s = x->name},
					{.s = x->type},
					{.i = x->durable},
					{.i = x->auto_delete},
					{.i = x->internal},
					{.s = x->alternate_exchange}});
	return 0;
}

static int
run_exchanges(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {
		{"vhost", COL_STR},
		{"name", COL_STR},
		{"type", COL_STR},
		{"durable", COL_INT},
		{"auto_delete", COL_INT},
		{"internal", COL_INT},
		{"alternate_exchange", COL_STR},
	};
	struct page pg;
	struct amqp_list l = {r, &pg};
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	rc = tq_amqp_admin_exchanges(exchange_row, &l);
	if (rc < 0) {
		page_free(&pg);
		snprintf(err, errlen, "exchanges: %s", strerror(-rc));
		return rc;
	}
	page_reply(&pg, r->d);
	return 0;
}

static int
binding_row(void *arg_, const struct tq_amqp_binding_info *b)
{
	struct amqp_list *l = arg_;

	if (!vhost_wanted(l->r, b->vhost))
		return 0;
	page_add(l->pg, (struct cell[]){{.s = b->vhost},
					{.s = b->source},
					{.s = b->destination},
					{.s = b->to_queue ? "queue" : "exchange"},
					{.s = b->routing_key}});
	return 0;
}

static int
run_bindings(struct admin_req *r, char *err, size_t errlen)
{
	static const struct col cols[] = {
		{"vhost", COL_STR},       {"source", COL_STR},
		{"destination", COL_STR}, {"destination_type", COL_STR},
		{"routing_key", COL_STR},
	};
	struct page pg;
	struct amqp_list l = {r, &pg};
	int rc = page_init(&pg, r, cols, RTE_DIM(cols), err, errlen);

	if (rc < 0)
		return rc;
	rc = tq_amqp_admin_bindings(binding_row, &l);
	if (rc < 0) {
		page_free(&pg);
		snprintf(err, errlen, "bindings: %s", strerror(-rc));
		return rc;
	}
	page_reply(&pg, r->d);
	return 0;
}

static int
run_purge_queue(struct admin_req *r, char *err, size_t errlen)
{
	const char *vhost = arg_vhost(r), *name = arg(r, "name");
	int rc = tq_amqp_admin_purge(vhost, name);

	if (rc == -ENOENT) {
		snprintf(err, errlen, "no queue \"%s\" in vhost \"%s\"", name, vhost);
		return rc;
	}
	if (rc < 0) {
		snprintf(err, errlen, "purge of \"%s\": %s", name, strerror(-rc));
		return rc;
	}
	reply_ok(r->d);
	rte_tel_data_add_dict_u64(r->d, "purged", (uint64_t)rc);
	return 0;
}

/* ---- the commands ------------------------------------------------------------------- */

static const struct admin_cmd admin_cmds[] = {
	{"users", run_users, "start?", "Users and their tags. Parameters: start=N"},
	{"add_user", run_add_user, "user password tags?",
	 "Add a user. Parameters: user= password= [tags=] (percent-encoded)"},
	{"delete_user", run_delete_user, "user", "Delete a user and its rules. Parameters: user="},
	{"change_password", run_change_password, "user password",
	 "Change a password. Parameters: user= password="},
	{"set_user_tags", run_set_user_tags, "user tags",
	 "Replace a user's tags. Parameters: user= tags=a,b"},
	{"vhosts", run_vhosts, "start?", "Virtual hosts. Parameters: start=N"},
	{"add_vhost", run_add_vhost, "vhost", "Add a vhost. Parameters: vhost="},
	{"delete_vhost", run_delete_vhost, "vhost", "Delete an unused vhost. Parameters: vhost="},
	{"permissions", run_permissions, "vhost? start?",
	 "Permissions. Parameters: [vhost=] [start=N]"},
	{"set_permissions", run_set_permissions, "user vhost? configure write read",
	 "Set permissions. Parameters: user= [vhost=] configure= write= read="},
	{"clear_permissions", run_clear_permissions, "user vhost?",
	 "Clear permissions. Parameters: user= [vhost=]"},
	{"topic_permissions", run_topic_permissions, "vhost? start?",
	 "Topic permissions. Parameters: [vhost=] [start=N]"},
	{"set_topic_permissions", run_set_topic_permissions, "user vhost? exchange write read",
	 "Set topic permissions. Parameters: user= [vhost=] exchange= write= read="},
	{"clear_topic_permissions", run_clear_topic_permissions, "user vhost? exchange?",
	 "Clear topic permissions. Parameters: user= [vhost=] [exchange=]"},
	{"acls", run_acls, "start?", "MQTT ACL rules. Parameters: start=N"},
	{"set_acl", run_set_acl, "user pattern access",
	 "Add an MQTT ACL rule. Parameters: user= pattern= access=read|write|readwrite|deny"},
	{"clear_acl", run_clear_acl, "user pattern",
	 "Remove an MQTT ACL rule. Parameters: user= pattern="},
	{"policies", run_policies, "vhost? start?", "Policies. Parameters: [vhost=] [start=N]"},
	{"set_policy", run_set_policy, "name vhost? pattern definition priority? apply_to?",
	 "Set a policy. Parameters: name= [vhost=] pattern= definition= [priority=] [apply_to=]"},
	{"clear_policy", run_clear_policy, "name vhost?",
	 "Clear a policy. Parameters: name= [vhost=]"},
	{"export", run_export, "path", "Export definitions to a file. Parameters: path="},
	{"import", run_import, "path", "Import definitions from a file. Parameters: path="},
	{"queues", run_queues, "vhost? start?", "AMQP queues. Parameters: [vhost=] [start=N]"},
	{"exchanges", run_exchanges, "vhost? start?",
	 "AMQP exchanges. Parameters: [vhost=] [start=N]"},
	{"bindings", run_bindings, "vhost? start?",
	 "AMQP bindings. Parameters: [vhost=] [start=N]"},
	{"purge_queue", run_purge_queue, "name vhost?",
	 "Purge an AMQP queue. Parameters: name= [vhost=]"},
	{"auth", run_auth, "", "Logins: accepted, refused, cached, throttled, hashes"},
};

/* tq_cplane_fn: on the control thread. */
static int
admin_run(void *arg_, char *out, size_t cap)
{
	struct admin_req *r = arg_;

	return r->cmd->run(r, out, cap);
}

/* The telemetry callback of every command: parse here, work on the control thread. */
static int
tel_admin(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct admin_cmd *c = NULL;
	struct admin_req *r;
	char err[ERR_MAX] = "";
	int rc;

	if (strncmp(cmd, ADMIN_PREFIX, strlen(ADMIN_PREFIX)) == 0)
		for (unsigned int i = 0; i < RTE_DIM(admin_cmds) && !c; i++)
			if (strcmp(cmd + strlen(ADMIN_PREFIX), admin_cmds[i].name) == 0)
				c = &admin_cmds[i];
	if (!c)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cmd = c;
	r->d = d;
	rc = args_parse(params, c, &r->args, err, sizeof(err));
	if (rc == 0)
		rc = tq_cplane_call(admin_run, r, err, sizeof(err));
	if (rc < 0) {
		if (rc == -ETIMEDOUT && !err[0])
			snprintf(err, sizeof(err),
				 "the control thread did not take the command "
				 "within 10 s");
		else if (rc == -ESHUTDOWN && !err[0])
			snprintf(err, sizeof(err), "tachyond is stopping");
		else if (!err[0])
			snprintf(err, sizeof(err), "%s", strerror(-rc));
		reply_error(d, err);
	}
	free(r);
	return 0;
}

int
tq_admin_register(void)
{
	int rc = 0;

	for (unsigned int i = 0; i < RTE_DIM(admin_cmds); i++) {
		char name[64];

		snprintf(name, sizeof(name), ADMIN_PREFIX "%s", admin_cmds[i].name);
		rc |= rte_telemetry_register_cmd(name, tel_admin, admin_cmds[i].help);
	}
	return rc ? -EINVAL : 0;
}
