/*
 * Definitions import and export (tq_defs.h), RabbitMQ's format. Control thread only: it
 * reads and changes the control plane's stores (tq_cplane_users/access/policies) and asks
 * the AMQP broker to declare (tq_amqp_admin.h); tq_cplane_changed() publishes once at the
 * end of an import.
 *
 * Import order: vhosts, users, permissions, topic_permissions, policies, exchanges, queues,
 * bindings, mqtt_acls; the first entry that fails stops it with a message naming the entry
 * (what came before stays, and is published). Unknown top-level keys and unknown queue
 * x-arguments are ignored, as the broker ignores them in queue.declare; policy keys we do not
 * have (RabbitMQ's ha-mode, queue-mode, ...) are skipped with a line on stderr, and a policy
 * left with none is skipped whole, so a RabbitMQ export imports where the concepts match.
 * Where RabbitMQ's format leaves room:
 *   - a user without hashing_algorithm: the hash's length names it (RabbitMQ's md5, sha256,
 *     sha512: a 4-byte salt and the digest, base64), "SCRAM-SHA-256$..." is ours; a user may
 *     carry "password" (plain, hashed here) instead of password_hash, for files by hand;
 *   - the first user of a file removes the default user (tq_cplane_operator_users) before
 *     it is applied, so a file that defines "guest" itself keeps it;
 *   - permissions and topic permissions of an unknown user fail, as in RabbitMQ;
 *   - built-in exchanges ("" and "amq.*") and the default exchange's bindings are skipped;
 *   - exchanges default to durable, queues to durable (RabbitMQ's export always says).
 *
 * Export: every section as JSON, entries one per line, each section sorted so two exports
 * of the same state are the same text. Built-in exchanges, the default exchange's implicit
 * bindings and exclusive queues (a connection's, gone with it) are left out, as RabbitMQ
 * leaves them out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/tq_cplane.h"
#include "control/tq_defs.h"
#include "control/tq_json.h"
#include "proto/amqp/tq_amqp_admin.h"
#include "proto/amqp/tq_amqp_table.h"

#define DEFS_FILE_MAX (64u << 20)  /* a definitions file we read */
#define ARGS_TABLE_MAX 65536       /* binding arguments, encoded */
#define ARGS_MAX 64                /* binding arguments */
#define OUR_ALGORITHM "tachyon_scram_sha256"
#define RABBIT_PREFIX "rabbit_password_hashing_"

/* ---- JSON out ------------------------------------------------------------------------ */

/* A growing string; on allocation failure it stops growing and remembers (oom). */
struct jb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
jb_raw(struct jb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
jb_s(struct jb *b, const char *s)
{
	jb_raw(b, s, strlen(s));
}

static void jb_printf(struct jb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
jb_printf(struct jb *b, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		jb_raw(b, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* @s (@n bytes) as a JSON string: quotes, backslashes and control characters escaped;
 * other bytes as they are (UTF-8 passes through). */
static void
jb_strn(struct jb *b, const char *s, size_t n)
{
	size_t run = 0;

	jb_raw(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[8];

		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(u, sizeof(u), "\\u%04x", c);
				esc = u;
			}
		}
		if (!esc) {
			run++;
			continue;
		}
		jb_raw(b, s + i - run, run);
		run = 0;
		jb_s(b, esc);
	}
	jb_raw(b, s + n - run, run);
	jb_raw(b, "\"", 1);
}

static void
jb_str(struct jb *b, const char *s)
{
	jb_strn(b, s ? s : "", s ? strlen(s) : 0);
}

/* "key": (with a comma before unless first) */
static void
jb_key(struct jb *b, bool *first, const char *key)
{
	if (!*first)
		jb_raw(b, ",", 1);
	*first = false;
	jb_str(b, key);
	jb_raw(b, ":", 1);
}

/* ---- sorted sections ----------------------------------------------------------------- */

struct entry {
	char *key; /* sort key */
	char *json;
};

struct section {
	struct entry *v;
	size_t n, cap;
	bool oom;
};

/* Take @key's and @json's strings (both reset). */
static void
section_add(struct section *s, struct jb *key, struct jb *json)
{
	if (key->oom || json->oom || !key->p || !json->p) {
		s->oom = true;
		goto drop;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct entry *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			s->oom = true;
			goto drop;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct entry){key->p, json->p};
	*key = (struct jb){0};
	*json = (struct jb){0};
	return;
drop:
	free(key->p);
	free(json->p);
	*key = (struct jb){0};
	*json = (struct jb){0};
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

static void
section_free(struct section *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].json);
	}
	free(s->v);
	*s = (struct section){0};
}

/* "name": [ entries sorted by key ] into @out; frees @s. */
static void
section_write(struct jb *out, const char *name, struct section *s)
{
	if (s->oom)
		out->oom = true;
	if (s->n) /* qsort(NULL, 0, ...) is undefined */
		qsort(s->v, s->n, sizeof(*s->v), entry_cmp);
	jb_s(out, ",\n");
	jb_str(out, name);
	jb_s(out, ": [");
	for (size_t i = 0; i < s->n; i++) {
		jb_s(out, i ? ",\n  " : "\n  ");
		jb_s(out, s->v[i].json);
	}
	jb_s(out, s->n ? "\n]" : "]");
	section_free(s);
}

/* Sort keys: fields joined by \x01, which sorts below every printable byte. */
static void
key_join(struct jb *k, const char *const *parts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			jb_raw(k, "\x01", 1);
		jb_s(k, parts[i] ? parts[i] : "");
	}
}

/* ---- export -------------------------------------------------------------------------- */

/* A users' tags "a,b" as a JSON list. */
static void
tags_json(struct jb *b, const char *tags)
{
	const char *p = tags ? tags : "";
	bool first = true;

	jb_raw(b, "[", 1);
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		const char *s = p;
		size_t m = n;

		while (m && *s == ' ')
			s++, m--;
		while (m && s[m - 1] == ' ')
			m--;
		if (m) {
			if (!first)
				jb_raw(b, ",", 1);
			first = false;
			jb_strn(b, s, m);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	jb_raw(b, "]", 1);
}

static void
export_users(struct jb *out)
{
	struct tq_users *u = tq_cplane_users();
	struct section s = {0};
	size_t n = tq_users_count(u);

	for (size_t i = 0; i < n; i++) {
		const struct tq_user *e = tq_users_at(u, i);
		const char *hash = e->secret, *dollar = strchr(e->secret, '$');
		char alg[64] = OUR_ALGORITHM;
		struct jb k = {0}, j = {0};

		/* RabbitMQ's hashes go out as RabbitMQ writes them, so RabbitMQ takes them back */
		if (!strncmp(e->secret, RABBIT_PREFIX, strlen(RABBIT_PREFIX)) && dollar &&
		    (size_t)(dollar - e->secret) < sizeof(alg)) {
			memcpy(alg, e->secret, (size_t)(dollar - e->secret));
			alg[dollar - e->secret] = '\0';
			hash = dollar + 1;
		}
		jb_s(&k, e->name);
		jb_s(&j, "{\"name\":");
		jb_str(&j, e->name);
		jb_s(&j, ",\"password_hash\":");
		jb_str(&j, hash);
		jb_s(&j, ",\"hashing_algorithm\":");
		jb_str(&j, alg);
		jb_s(&j, ",\"tags\":");
		tags_json(&j, e->tags);
		jb_s(&j, ",\"limits\":{}}");
		section_add(&s, &k, &j);
	}
	section_write(out, "users", &s);
}

static void
export_access(struct jb *out)
{
	struct tq_access_db *db = tq_cplane_access();
	struct section s = {0};
	size_t n = tq_access_vhost_count(db);

	for (size_t i = 0; i < n; i++) {
		struct jb k = {0}, j = {0};

		jb_s(&k, tq_access_vhost_at(db, i));
		jb_s(&j, "{\"name\":");
		jb_str(&j, tq_access_vhost_at(db, i));
		jb_s(&j, "}");
		section_add(&s, &k, &j);
	}
	section_write(out, "vhosts", &s);

	n = tq_access_perm_count(db);
	for (size_t i = 0; i < n; i++) {
		struct tq_access_perm p;
		struct jb k = {0}, j = {0};

		if (tq_access_perm_at(db, i, &p) < 0)
			continue;
		key_join(&k, (const char *const[]){p.user, p.vhost}, 2);
		jb_s(&j, "{\"user\":");
		jb_str(&j, p.user);
		jb_s(&j, ",\"vhost\":");
		jb_str(&j, p.vhost);
		jb_s(&j, ",\"configure\":");
		jb_str(&j, p.configure);
		jb_s(&j, ",\"write\":");
		jb_str(&j, p.write);
		jb_s(&j, ",\"read\":");
		jb_str(&j, p.read);
		jb_s(&j, "}");
		section_add(&s, &k, &j);
	}
	section_write(out, "permissions", &s);

	n = tq_access_topic_perm_count(db);
	for (size_t i = 0; i < n; i++) {
		struct tq_access_topic_perm p;
		struct jb k = {0}, j = {0};

		if (tq_access_topic_perm_at(db, i, &p) < 0)
			continue;
		key_join(&k, (const char *const[]){p.user, p.vhost, p.exchange}, 3);
		jb_s(&j, "{\"user\":");
		jb_str(&j, p.user);
		jb_s(&j, ",\"vhost\":");
		jb_str(&j, p.vhost);
		jb_s(&j, ",\"exchange\":");
		jb_str(&j, p.exchange);
		jb_s(&j, ",\"write\":");
		jb_str(&j, p.write);
		jb_s(&j, ",\"read\":");
		jb_str(&j, p.read);
		jb_s(&j, "}");
		section_add(&s, &k, &j);
	}
	section_write(out, "topic_permissions", &s);
}

static void
export_policies(struct jb *out)
{
	struct tq_policy_db *db = tq_cplane_policies();
	struct section s = {0};
	size_t n = tq_policy_count(db);
	char *def = NULL;
	size_t cap = 0;

	for (size_t i = 0; i < n; i++) {
		struct tq_policy_info p;
		struct jb k = {0}, j = {0};
		int len;

		if (tq_policy_at(db, i, &p) < 0)
			continue;
		while ((len = tq_policy_def_json(p.def, def, cap)) == -ENOSPC || len >= (int)cap) {
			char *d;

			if (len < 0 && len != -ENOSPC)
				break;
			cap = cap ? cap * 2 : 4096;
			d = realloc(def, cap);
			if (!d) {
				s.oom = true;
				break;
			}
			def = d;
		}
		if (len < 0 || !def) {
			s.oom = true;
			continue;
		}
		key_join(&k, (const char *const[]){p.vhost, p.name}, 2);
		jb_s(&j, "{\"vhost\":");
		jb_str(&j, p.vhost);
		jb_s(&j, ",\"name\":");
		jb_str(&j, p.name);
		jb_s(&j, ",\"pattern\":");
		jb_str(&j, p.pattern);
		jb_s(&j, ",\"apply-to\":");
		jb_str(&j, tq_policy_apply_name(p.apply_to));
		jb_s(&j, ",\"definition\":");
		jb_raw(&j, def, (size_t)len);
		jb_printf(&j, ",\"priority\":%d}", p.priority);
		section_add(&s, &k, &j);
	}
	free(def);
	section_write(out, "policies", &s);
}

static const char *const overflow_names[] = {"drop-head", "reject-publish", "reject-publish-dlx"};

/* A queue's own arguments as x-arguments. */
static void
qargs_json(struct jb *j, const struct tq_amqp_queue_info *q)
{
	const struct tq_policy_def *a = q->args;
	bool first = true;

	jb_raw(j, "{", 1);
	if (a->set & TQ_POL_MESSAGE_TTL) {
		jb_key(j, &first, "x-message-ttl");
		jb_printf(j, "%" PRIu64, a->message_ttl);
	}
	if (a->set & TQ_POL_EXPIRES) {
		jb_key(j, &first, "x-expires");
		jb_printf(j, "%" PRIu64, a->expires);
	}
	if (a->set & TQ_POL_MAX_LENGTH) {
		jb_key(j, &first, "x-max-length");
		jb_printf(j, "%" PRIu64, a->max_length);
	}
	if (a->set & TQ_POL_MAX_LENGTH_BYTES) {
		jb_key(j, &first, "x-max-length-bytes");
		jb_printf(j, "%" PRIu64, a->max_length_bytes);
	}
	if ((a->set & TQ_POL_OVERFLOW) && a->overflow < 3) {
		jb_key(j, &first, "x-overflow");
		jb_str(j, overflow_names[a->overflow]);
	}
	if (a->set & TQ_POL_DLX) {
		jb_key(j, &first, "x-dead-letter-exchange");
		jb_str(j, a->dlx);
	}
	if (a->set & TQ_POL_DLRK) {
		jb_key(j, &first, "x-dead-letter-routing-key");
		jb_str(j, a->dlrk);
	}
	if (a->set & TQ_POL_MAX_PRIORITY) {
		jb_key(j, &first, "x-max-priority");
		jb_printf(j, "%u", a->max_priority);
	}
	if (q->single_active_consumer) {
		jb_key(j, &first, "x-single-active-consumer");
		jb_s(j, "true");
	}
	if (q->group_header) {
		jb_key(j, &first, "x-message-group-header");
		jb_str(j, q->group_header);
	}
	jb_raw(j, "}", 1);
}

/* Queues exported, by "vhost\x01name", to leave out bindings to the others. */
struct exported {
	struct section queues;
	struct section names; /* keys only (json ""), sorted after the walk */
};

static int
export_queue(void *arg, const struct tq_amqp_queue_info *q)
{
	struct exported *ex = arg;
	struct jb k = {0}, j = {0}, k2 = {0}, none = {0};

	if (q->exclusive)
		return 0;
	key_join(&k, (const char *const[]){q->vhost, q->name}, 2);
	key_join(&k2, (const char *const[]){q->vhost, q->name}, 2);
	jb_s(&j, "{\"name\":");
	jb_str(&j, q->name);
	jb_s(&j, ",\"vhost\":");
	jb_str(&j, q->vhost);
	jb_printf(&j, ",\"durable\":%s,\"auto_delete\":%s,\"arguments\":",
		  q->durable ? "true" : "false", q->auto_delete ? "true" : "false");
	qargs_json(&j, q);
	jb_s(&j, "}");
	section_add(&ex->queues, &k, &j);
	jb_s(&none, "");
	section_add(&ex->names, &k2, &none);
	return 0;
}

static bool
is_builtin_exchange(const char *name)
{
	return !name[0] || !strncmp(name, "amq.", 4);
}

static int
export_exchange(void *arg, const struct tq_amqp_exchange_info *x)
{
	struct section *s = arg;
	struct jb k = {0}, j = {0};

	if (is_builtin_exchange(x->name))
		return 0;
	key_join(&k, (const char *const[]){x->vhost, x->name}, 2);
	jb_s(&j, "{\"name\":");
	jb_str(&j, x->name);
	jb_s(&j, ",\"vhost\":");
	jb_str(&j, x->vhost);
	jb_s(&j, ",\"type\":");
	jb_str(&j, x->type);
	jb_printf(&j, ",\"durable\":%s,\"auto_delete\":%s,\"internal\":%s,\"arguments\":{",
		  x->durable ? "true" : "false", x->auto_delete ? "true" : "false",
		  x->internal ? "true" : "false");
	if (x->alternate_exchange) {
		jb_s(&j, "\"alternate-exchange\":");
		jb_str(&j, x->alternate_exchange);
	}
	jb_s(&j, "}}");
	section_add(s, &k, &j);
	return 0;
}

static void value_json(struct jb *j, const struct tq_amqp_value *v, int depth);

/* The entries of an encoded table (@array: values only) as a JSON object or list. */
static void
table_json(struct jb *j, const uint8_t *p, uint32_t len, bool array, int depth)
{
	struct tq_amqp_table t = {.p = p, .len = len};
	struct tq_amqp_iter it;
	struct tq_amqp_str key;
	struct tq_amqp_value v;
	bool first = true;

	if (depth > TQ_AMQP_TABLE_DEPTH_MAX) {
		jb_s(j, "null");
		return;
	}
	jb_s(j, array ? "[" : "{");
	if (array) {
		tq_amqp_array_iter(&it, t);
		while (tq_amqp_array_next(&it, &v) == 1) {
			if (!first)
				jb_raw(j, ",", 1);
			first = false;
			value_json(j, &v, depth + 1);
		}
	} else {
		tq_amqp_table_iter(&it, t);
		while (tq_amqp_table_next(&it, &key, &v) == 1) {
			if (!first)
				jb_raw(j, ",", 1);
			first = false;
			jb_strn(j, (const char *)key.p, key.len);
			jb_raw(j, ":", 1);
			value_json(j, &v, depth + 1);
		}
	}
	jb_s(j, array ? "]" : "}");
}

/* A decimal's value (value / 10^scale) as a JSON number literal. */
static void
decimal_json(struct jb *j, uint8_t scale, uint32_t value)
{
	char digits[16];
	int n = snprintf(digits, sizeof(digits), "%u", value);

	if (!scale) {
		jb_s(j, digits);
		return;
	}
	if (scale >= n) {
		jb_s(j, "0.");
		for (int i = n; i < scale; i++)
			jb_raw(j, "0", 1);
		jb_s(j, digits);
		return;
	}
	jb_raw(j, digits, (size_t)(n - scale));
	jb_raw(j, ".", 1);
	jb_s(j, digits + n - scale);
}

static void
value_json(struct jb *j, const struct tq_amqp_value *v, int depth)
{
	switch (v->tag) {
	case TQ_AMQP_V_BOOL:
		jb_s(j, v->v.b ? "true" : "false");
		break;
	case TQ_AMQP_V_I8:
	case TQ_AMQP_V_I16:
	case TQ_AMQP_V_I32:
	case TQ_AMQP_V_I64:
		jb_printf(j, "%" PRId64, v->v.i);
		break;
	case TQ_AMQP_V_U8:
	case TQ_AMQP_V_U16:
	case TQ_AMQP_V_U32:
	case TQ_AMQP_V_TIMESTAMP:
		jb_printf(j, "%" PRIu64, v->v.u);
		break;
	case TQ_AMQP_V_FLOAT:
		jb_printf(j, "%.9g", (double)v->v.f);
		break;
	case TQ_AMQP_V_DOUBLE:
		jb_printf(j, "%.17g", v->v.d);
		break;
	case TQ_AMQP_V_DECIMAL:
		decimal_json(j, v->v.dec.scale, v->v.dec.value);
		break;
	case TQ_AMQP_V_STR:
	case TQ_AMQP_V_BYTES:
		jb_strn(j, (const char *)v->v.str.p, v->v.str.len);
		break;
	case TQ_AMQP_V_TABLE:
	case TQ_AMQP_V_ARRAY:
		table_json(j, v->v.table.p, v->v.table.len, v->tag == TQ_AMQP_V_ARRAY, depth);
		break;
	default:
		jb_s(j, "null");
	}
}

/* Binding arguments (the registry's decoded form) as a JSON object. */
static void
xargs_json(struct jb *j, const struct tq_xheader *a, uint32_t n)
{
	bool first = true;

	jb_raw(j, "{", 1);
	for (uint32_t i = 0; i < n; i++) {
		struct tq_amqp_value v = {.tag = a[i].tag};

		if (!first)
			jb_raw(j, ",", 1);
		first = false;
		jb_strn(j, a[i].key, a[i].klen);
		jb_raw(j, ":", 1);
		/* tq_xheader's union is laid out like tq_amqp_value's (tq_exchange.h) */
		switch (a[i].tag) {
		case TQ_AMQP_V_BOOL:
			v.v.b = a[i].v.b;
			break;
		case TQ_AMQP_V_FLOAT:
			v.v.f = a[i].v.f;
			break;
		case TQ_AMQP_V_DOUBLE:
			v.v.d = a[i].v.d;
			break;
		case TQ_AMQP_V_DECIMAL:
			v.v.dec.scale = a[i].v.dec.scale;
			v.v.dec.value = a[i].v.dec.value;
			break;
		case TQ_AMQP_V_STR:
		case TQ_AMQP_V_BYTES:
			v.v.str.p = a[i].v.bytes.p;
			v.v.str.len = a[i].v.bytes.len;
			break;
		case TQ_AMQP_V_TABLE:
		case TQ_AMQP_V_ARRAY:
			v.v.table.p = a[i].v.bytes.p;
			v.v.table.len = a[i].v.bytes.len;
			break;
		default:
			v.v.u = a[i].v.u;
		}
		value_json(j, &v, 1);
	}
	jb_raw(j, "}", 1);
}

struct bind_ctx {
	struct section bindings;
	const struct section *queues; /* names, sorted */
};

static int
export_binding(void *arg, const struct tq_amqp_binding_info *b)
{
	struct bind_ctx *bc = arg;
	struct jb k = {0}, j = {0}, args = {0};

	if (!b->source[0])
		return 0; /* the default exchange's: implicit */
	if (b->to_queue) { /* to a queue that is not exported (exclusive): left out with it */
		struct jb qk = {0};
		struct entry e;

		key_join(&qk, (const char *const[]){b->vhost, b->destination}, 2);
		if (qk.oom) {
			bc->bindings.oom = true;
			return 0;
		}
		e.key = qk.p;
		if (!bsearch(&e, bc->queues->v, bc->queues->n, sizeof(e), entry_cmp)) {
			free(qk.p);
			return 0;
		}
		free(qk.p);
	}
	xargs_json(&args, b->args, b->nargs);
	key_join(&k, (const char *const[]){b->vhost, b->source, b->to_queue ? "queue" : "exchange",
					    b->destination, b->routing_key, args.p},
		 6);
	jb_s(&j, "{\"source\":");
	jb_str(&j, b->source);
	jb_s(&j, ",\"vhost\":");
	jb_str(&j, b->vhost);
	jb_s(&j, ",\"destination\":");
	jb_str(&j, b->destination);
	jb_s(&j, ",\"destination_type\":");
	jb_str(&j, b->to_queue ? "queue" : "exchange");
	jb_s(&j, ",\"routing_key\":");
	jb_str(&j, b->routing_key);
	jb_s(&j, ",\"arguments\":");
	jb_s(&j, args.p ? args.p : "{}");
	jb_s(&j, "}");
	if (args.oom)
		j.oom = true;
	free(args.p);
	section_add(&bc->bindings, &k, &j);
	return 0;
}

static void
export_amqp(struct jb *out)
{
	struct exported ex = {0};
	struct section xs = {0};
	struct bind_ctx bc = {0};

	tq_amqp_admin_exchanges(export_exchange, &xs); /* -ENODEV: no AMQP, nothing */
	section_write(out, "exchanges", &xs);
	tq_amqp_admin_queues(export_queue, &ex);
	if (ex.names.n)
		qsort(ex.names.v, ex.names.n, sizeof(*ex.names.v), entry_cmp);
	section_write(out, "queues", &ex.queues);
	bc.queues = &ex.names;
	tq_amqp_admin_bindings(export_binding, &bc);
	section_write(out, "bindings", &bc.bindings);
	if (ex.names.oom)
		out->oom = true;
	section_free(&ex.names);
}

static const char *
acl_access_name(enum tq_acl_access a)
{
	switch (a) {
	case TQ_ACL_READ:
		return "read";
	case TQ_ACL_WRITE:
		return "write";
	case TQ_ACL_READWRITE:
		return "readwrite";
	case TQ_ACL_DENY:
		break;
	}
	return "deny";
}

/* ACL rules keep their order (it is the order they were added in): not sorted. */
static void
export_acls(struct jb *out)
{
	struct tq_access_db *db = tq_cplane_access();
	size_t n = tq_access_acl_count(db), k = 0;

	jb_s(out, ",\n\"mqtt_acls\": [");
	for (size_t i = 0; i < n; i++) {
		struct tq_access_acl a;

		if (tq_access_acl_at(db, i, &a) < 0)
			continue;
		jb_s(out, k++ ? ",\n  " : "\n  ");
		jb_s(out, "{\"user\":");
		jb_str(out, a.user ? a.user : "");
		jb_s(out, ",\"pattern\":");
		jb_str(out, a.pattern);
		jb_s(out, ",\"access\":");
		jb_str(out, acl_access_name(a.access));
		jb_s(out, "}");
	}
	jb_s(out, k ? "\n]" : "]");
}

int
tq_defs_export(char **out, size_t *len)
{
	struct jb b = {0};

	*out = NULL;
	*len = 0;
	jb_s(&b, "{\"product_name\": \"tachyon\"");
#ifdef TQ_VERSION
	jb_s(&b, ",\n\"product_version\": ");
	jb_str(&b, TQ_VERSION);
#endif
	export_users(&b);
	export_access(&b); /* vhosts, permissions, topic_permissions */
	export_policies(&b);
	export_amqp(&b);   /* exchanges, queues, bindings */
	export_acls(&b);
	jb_s(&b, "\n}\n");
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

int
tq_defs_export_file(const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	char *text;
	size_t len, off = 0;
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	rc = tq_defs_export(&text, &len);
	if (rc < 0) {
		snprintf(err, errlen, "export: %s", strerror(-rc));
		return rc;
	}
	fd = mkstemp(tmp); /* 0600: the file holds password hashes */
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		free(text);
		return rc;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	free(text);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		unlink(tmp);
	}
	return rc;
}

/* ---- import -------------------------------------------------------------------------- */

struct imp {
	char *err;
	size_t errlen;
	bool applied;        /* something changed: publish at the end */
	bool operator_users; /* tq_cplane_operator_users called */
	unsigned int skipped; /* policy keys we do not know, skipped */
};

static int imp_fail(struct imp *im, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
imp_fail(struct imp *im, int rc, const char *fmt, ...)
{
	va_list ap;

	if (im->err && im->errlen) {
		va_start(ap, fmt);
		vsnprintf(im->err, im->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Member @key of @o as a string; NULL when absent; *@bad when present but not a string. */
static const char *
jstr(const struct tq_json *o, const char *key, bool *bad)
{
	const struct tq_json *j = tq_json_get(o, key);

	if (!j || j->type == TQ_JSON_NULL)
		return NULL;
	if (j->type != TQ_JSON_STRING) {
		*bad = true;
		return NULL;
	}
	return j->text;
}

/* Member @key as a boolean (@dflt when absent); -EINVAL when not a boolean. */
static int
jbool(const struct tq_json *o, const char *key, bool dflt, bool *out)
{
	const struct tq_json *j = tq_json_get(o, key);

	*out = dflt;
	if (!j || j->type == TQ_JSON_NULL)
		return 0;
	if (j->type != TQ_JSON_BOOL)
		return -EINVAL;
	*out = j->boolean;
	return 0;
}

/*
 * The section @name as an array of objects: *@arr (NULL when absent). An entry that is not
 * an object fails the import.
 */
static int
section_get(struct imp *im, const struct tq_json *root, const char *name,
	    const struct tq_json **arr)
{
	const struct tq_json *a = tq_json_get(root, name), *e;
	size_t i = 0;

	*arr = NULL;
	if (!a || a->type == TQ_JSON_NULL)
		return 0;
	if (a->type != TQ_JSON_ARRAY)
		return imp_fail(im, -EINVAL, "%s: not a list", name);
	for (e = a->child; e; e = e->next, i++)
		if (e->type != TQ_JSON_OBJECT)
			return imp_fail(im, -EINVAL, "%s[%zu]: not an object", name, i);
	*arr = a;
	return 0;
}

/* A scalar JSON value as JSON text (what tq_policy_def_set takes) into @b. -EINVAL. */
static int
json_text(const struct tq_json *v, struct jb *b)
{
	switch (v->type) {
	case TQ_JSON_NUMBER:
		jb_s(b, v->text);
		return 0;
	case TQ_JSON_STRING:
		jb_str(b, v->text);
		return 0;
	case TQ_JSON_BOOL:
		jb_s(b, v->boolean ? "true" : "false");
		return 0;
	default:
		return -EINVAL;
	}
}

/* Set policy key @key of @def from JSON value @v. 0 or -EINVAL with @msg. */
static int
def_set_json(struct tq_policy_def *def, const char *key, const struct tq_json *v, char *msg,
	     size_t msglen)
{
	struct jb t = {0};
	int rc;

	if (json_text(v, &t) < 0) {
		snprintf(msg, msglen, "%s: not a number, string or boolean", key);
		free(t.p);
		return -EINVAL;
	}
	if (t.oom) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	rc = tq_policy_def_set(def, key, t.p, msg, msglen);
	free(t.p);
	return rc;
}

static int
import_vhosts(struct imp *im, const struct tq_json *root)
{
	const struct tq_json *arr, *e;
	size_t i = 0;
	int rc = section_get(im, root, "vhosts", &arr);

	for (e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
		bool bad = false;
		const char *name = jstr(e, "name", &bad);

		if (!name || !name[0])
			return imp_fail(im, -EINVAL, "vhosts[%zu]: no name", i);
		rc = tq_cplane_vhost_add(name);
		if (rc == -EEXIST)
			rc = 0;
		if (rc < 0)
			return imp_fail(im, rc, "vhosts[%zu] '%s': %s", i, name, strerror(-rc));
		im->applied = true;
	}
	return rc;
}

/* RabbitMQ's hash without an algorithm: the decoded length tells (salt 4 + digest). */
static const char *
guess_algorithm(const char *hash)
{
	size_t n = strlen(hash);

	if (!strncmp(hash, "SCRAM-SHA-256$", 14))
		return OUR_ALGORITHM;
	if (n == 28)
		return RABBIT_PREFIX "md5";
	if (n == 92)
		return RABBIT_PREFIX "sha512";
	return RABBIT_PREFIX "sha256"; /* RabbitMQ's default since 3.6 */
}

/* tags: "a,b" or ["a", "b"] into @b (a comma-separated string). */
static int
tags_text(const struct tq_json *e, struct jb *b)
{
	const struct tq_json *t = tq_json_get(e, "tags");

	jb_s(b, "");
	if (!t || t->type == TQ_JSON_NULL)
		return 0;
	if (t->type == TQ_JSON_STRING) {
		jb_s(b, t->text);
		return 0;
	}
	if (t->type != TQ_JSON_ARRAY)
		return -EINVAL;
	for (const struct tq_json *c = t->child; c; c = c->next) {
		if (c->type != TQ_JSON_STRING || strchr(c->text, ','))
			return -EINVAL;
		if (b->len)
			jb_raw(b, ",", 1);
		jb_s(b, c->text);
	}
	return 0;
}

/* Would this users[] entry apply? (tried on a scratch store: no hashing for a hash) */
static bool
user_entry_valid(const char *name, const char *hash, const char *alg, const char *password,
		 const char *tags)
{
	struct tq_users_conf conf;
	struct tq_users *t;
	int rc;

	if (strlen(name) > TQ_USER_NAME_MAX)
		return false;
	if (!hash || !hash[0])
		return password && password[0] && strlen(password) <= TQ_USER_PASSWORD_MAX;
	tq_users_conf_defaults(&conf);
	t = tq_users_new(&conf);
	if (!t)
		return false;
	rc = tq_users_put_hashed(t, name, hash, alg && alg[0] ? alg : guess_algorithm(hash), tags);
	tq_users_free(t);
	return rc == 0;
}

static int
import_users(struct imp *im, const struct tq_json *root)
{
	struct tq_users *u = tq_cplane_users();
	const struct tq_json *arr, *e;
	size_t i = 0;
	int rc = section_get(im, root, "users", &arr);

	for (e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
		bool bad = false;
		const char *name = jstr(e, "name", &bad);
		const char *hash = jstr(e, "password_hash", &bad);
		const char *alg = jstr(e, "hashing_algorithm", &bad);
		const char *password = jstr(e, "password", &bad);
		struct jb tags = {0};

		if (!name || !name[0] || bad)
			return imp_fail(im, -EINVAL, "users[%zu]: no name, or a field not a string",
					i);
		if (tags_text(e, &tags) < 0 || tags.oom) {
			free(tags.p);
			return imp_fail(im, -EINVAL, "users[%zu] '%s': tags: a string or a list of "
					"strings", i, name);
		}
		/* the operator defines users: ours (the default user) goes first, so that a
		 * user of that name in the file stays; but only for an entry that will apply,
		 * so that a file refused at its first user leaves the default user in place */
		if (!im->operator_users && user_entry_valid(name, hash, alg, password, tags.p)) {
			tq_cplane_operator_users();
			im->operator_users = true;
		}
		if (hash && hash[0]) {
			if (!alg || !alg[0])
				alg = guess_algorithm(hash);
			rc = tq_users_put_hashed(u, name, hash, alg, tags.p);
		} else if (password && password[0]) {
			/* a plain password (not in RabbitMQ's exports; handy by hand) */
			rc = tq_users_add(u, name, password, strlen(password), tags.p);
			if (rc == -EEXIST) {
				rc = tq_users_set_password(u, name, password, strlen(password));
				if (rc == 0)
					rc = tq_users_set_tags(u, name, tags.p);
			}
		} else {
			rc = -EINVAL;
		}
		free(tags.p);
		if (rc < 0)
			return imp_fail(im, rc, "users[%zu] '%s': %s", i, name,
					rc == -EINVAL ? "no usable password_hash (or password) for "
							"its hashing_algorithm"
						      : strerror(-rc));
		im->applied = true;
	}
	return rc;
}

/* RabbitMQ refuses permissions of a user it does not know; so do we. */
static bool
user_known(const char *name)
{
	return tq_users_get(tq_cplane_users(), name, strlen(name)) != NULL;
}

/* A permissions section: its name, the field besides write and read, and its setter. */
struct perm_section {
	const char *name;
	const char *what; /* "configure" or "exchange" */
	int (*set)(struct tq_access_db *db, const char *user, const char *vhost, const char *what,
		   const char *write, const char *read, char *err, size_t errlen);
};

static int
import_perm_section(struct imp *im, const struct tq_json *root, const struct perm_section *ps)
{
	struct tq_access_db *db = tq_cplane_access();
	const struct tq_json *arr, *e;
	size_t i = 0;
	int rc = section_get(im, root, ps->name, &arr);

	for (e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
		bool bad = false;
		const char *user = jstr(e, "user", &bad), *vhost = jstr(e, "vhost", &bad);
		const char *what = jstr(e, ps->what, &bad), *wr = jstr(e, "write", &bad);
		const char *rd = jstr(e, "read", &bad);
		char msg[256] = "";

		if (!user || !vhost || !what || !wr || !rd || bad)
			return imp_fail(im, -EINVAL, "%s[%zu]: user, vhost, %s, write and read are "
					"strings", ps->name, i, ps->what);
		if (!user_known(user))
			return imp_fail(im, -ENOENT, "%s[%zu]: no user '%s'", ps->name, i, user);
		rc = ps->set(db, user, vhost, what, wr, rd, msg, sizeof(msg));
		if (rc < 0)
			return imp_fail(im, rc, "%s[%zu] '%s' on '%s': %s", ps->name, i, user, vhost,
					rc == -ENOENT ? "no such vhost" : msg[0] ? msg : strerror(-rc));
		im->applied = true;
	}
	return rc;
}

static int
import_permissions(struct imp *im, const struct tq_json *root)
{
	static const struct perm_section ps = {"permissions", "configure",
					       tq_access_set_permissions};

	return import_perm_section(im, root, &ps);
}

static int
import_topic_permissions(struct imp *im, const struct tq_json *root)
{
	static const struct perm_section ps = {"topic_permissions", "exchange",
					       tq_access_set_topic_permissions};

	return import_perm_section(im, root, &ps);
}

static int
import_policies(struct imp *im, const struct tq_json *root)
{
	struct tq_policy_db *db = tq_cplane_policies();
	const struct tq_json *arr, *e;
	size_t i = 0;
	int rc = section_get(im, root, "policies", &arr);

	for (e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
		bool bad = false;
		const char *vhost = jstr(e, "vhost", &bad), *name = jstr(e, "name", &bad);
		const char *pattern = jstr(e, "pattern", &bad), *apply = jstr(e, "apply-to", &bad);
		const struct tq_json *def = tq_json_get(e, "definition");
		const struct tq_json *prio = tq_json_get(e, "priority");
		enum tq_policy_apply to = TQ_POLICY_ALL; /* RabbitMQ's default */
		struct tq_policy_def d = {0};
		char msg[256] = "";
		long long p = 0;

		if (!vhost || !name || !pattern || bad)
			return imp_fail(im, -EINVAL, "policies[%zu]: vhost, name and pattern are "
					"strings", i);
		if (apply && tq_policy_apply_parse(apply, &to) < 0)
			return imp_fail(im, -EINVAL, "policies[%zu] '%s': apply-to '%s' is not "
					"queues, exchanges, all, users or topics", i, name, apply);
		if (prio && prio->type != TQ_JSON_NULL) {
			char *end;

			if (prio->type != TQ_JSON_NUMBER)
				return imp_fail(im, -EINVAL, "policies[%zu] '%s': priority is not a "
						"number", i, name);
			errno = 0;
			p = strtoll(prio->text, &end, 10);
			if (*end || errno || p < INT_MIN || p > INT_MAX)
				return imp_fail(im, -EINVAL, "policies[%zu] '%s': priority is not an "
						"integer", i, name);
		}
		if (!def || def->type != TQ_JSON_OBJECT)
			return imp_fail(im, -EINVAL, "policies[%zu] '%s': no definition object", i,
					name);
		if (!tq_access_vhost_exists(tq_cplane_access(), vhost))
			return imp_fail(im, -ENOENT, "policies[%zu] '%s': no vhost '%s'", i, name,
					vhost);
		for (const struct tq_json *k = def->child; k; k = k->next) {
			rc = def_set_json(&d, k->key, k, msg, sizeof(msg));
			if (rc < 0 && !strncmp(msg, "unknown policy key", 18)) {
				/* a RabbitMQ feature we do not have (ha-mode, queue-mode, ...): the
				 * key is skipped and said so; the rest of the policy applies */
				fprintf(stderr, "tachyond: import: policies[%zu] '%s': %s: skipped\n",
					i, name, msg);
				im->skipped++;
				rc = 0;
				continue;
			}
			if (rc < 0)
				return imp_fail(im, rc, "policies[%zu] '%s': %s", i, name, msg);
		}
		if (!d.set) /* nothing we know of: the policy as a whole is skipped */
			continue;
		rc = tq_policy_set(db, vhost, name, pattern, to, (int)p, &d, msg, sizeof(msg));
		if (rc < 0)
			return imp_fail(im, rc, "policies[%zu] '%s': %s", i, name,
					msg[0] ? msg : strerror(-rc));
		im->applied = true;
	}
	return rc;
}

static int
import_exchanges(struct imp *im, const struct tq_json *root)
{
	const struct tq_json *arr, *e;
	size_t i = 0;
	int rc = section_get(im, root, "exchanges", &arr);

	for (e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
		bool bad = false, durable, auto_delete, internal;
		const char *name = jstr(e, "name", &bad), *vhost = jstr(e, "vhost", &bad);
		const char *type = jstr(e, "type", &bad), *ae = NULL;
		const struct tq_json *args = tq_json_get(e, "arguments");
		char msg[320] = "";

		if (!name || !vhost || !type || bad)
			return imp_fail(im, -EINVAL, "exchanges[%zu]: name, vhost and type are "
					"strings", i);
		if (jbool(e, "durable", true, &durable) < 0 ||
		    jbool(e, "auto_delete", false, &auto_delete) < 0 ||
		    jbool(e, "internal", false, &internal) < 0)
			return imp_fail(im, -EINVAL, "exchanges[%zu] '%s': durable, auto_delete and "
					"internal are booleans", i, name);
		if (args && args->type != TQ_JSON_NULL) {
			if (args->type != TQ_JSON_OBJECT)
				return imp_fail(im, -EINVAL, "exchanges[%zu] '%s': arguments is not "
						"an object", i, name);
			ae = jstr(args, "alternate-exchange", &bad);
			if (bad)
				return imp_fail(im, -EINVAL, "exchanges[%zu] '%s': alternate-exchange "
						"is not a string", i, name);
		}
		if (is_builtin_exchange(name))
			continue; /* every vhost has them already */
		rc = tq_amqp_admin_exchange_declare(vhost, name, type, durable, auto_delete,
						    internal, ae, msg, sizeof(msg));
		if (rc < 0)
			return imp_fail(im, rc, "exchanges[%zu] '%s' in vhost '%s': %s", i, name,
					vhost, msg);
		im->applied = true;
	}
	return rc;
}

/* x-arguments that are policy keys, by their policy name. */
static const struct {
	const char *arg, *key;
} qarg_keys[] = {
	{"x-message-ttl", "message-ttl"},
	{"x-expires", "expires"},
	{"x-max-length", "max-length"},
	{"x-max-length-bytes", "max-length-bytes"},
	{"x-overflow", "overflow"},
	{"x-dead-letter-exchange", "dead-letter-exchange"},
	{"x-dead-letter-routing-key", "dead-letter-routing-key"},
	{"x-max-priority", "max-priority"},
};

/* A queue's arguments object into @def and @opts. 0 or -EINVAL with @msg. */
static int
queue_args(const struct tq_json *args, struct tq_policy_def *def, struct tq_amqp_queue_opts *opts,
	   char *msg, size_t msglen)
{
	for (const struct tq_json *a = args ? args->child : NULL; a; a = a->next) {
		size_t k;

		for (k = 0; k < sizeof(qarg_keys) / sizeof(qarg_keys[0]); k++)
			if (!strcmp(a->key, qarg_keys[k].arg))
				break;
		if (k < sizeof(qarg_keys) / sizeof(qarg_keys[0])) {
			/* x-max-priority 0 is one level: what no argument gives */
			if (!strcmp(a->key, "x-max-priority") && a->type == TQ_JSON_NUMBER &&
			    !strcmp(a->text, "0"))
				continue;
			char m[256];

			if (def_set_json(def, qarg_keys[k].key, a, m, sizeof(m)) < 0) {
				snprintf(msg, msglen, "%s: %s", a->key, m);
				return -EINVAL;
			}
		} else if (!strcmp(a->key, "x-single-active-consumer")) {
			if (a->type != TQ_JSON_BOOL) {
				snprintf(msg, msglen, "x-single-active-consumer: not a boolean");
				return -EINVAL;
			}
			opts->single_active_consumer = a->boolean;
		} else if (!strcmp(a->key, "x-message-group-header")) {
			if (a->type == TQ_JSON_BOOL && a->boolean) {
				opts->group_header = "JMSXGroupID"; /* as queue.declare takes it */
			} else if (a->type == TQ_JSON_STRING && a->text[0]) {
				opts->group_header = a->text;
			} else {
				snprintf(msg, msglen, "x-message-group-header: a header name or true");
				return -EINVAL;
			}
		}
		/* others (x-queue-type, x-queue-mode, ...): ignored, as queue.declare does */
	}
	return 0;
}

static int
import_queues(struct imp *im, const struct tq_json *root)
{
	const struct tq_json *arr, *e;
	size_t i = 0;
	int rc = section_get(im, root, "queues", &arr);

	for (e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
		bool bad = false, durable, auto_delete;
		const char *name = jstr(e, "name", &bad), *vhost = jstr(e, "vhost", &bad);
		const struct tq_json *args = tq_json_get(e, "arguments");
		struct tq_policy_def def = {0};
		struct tq_amqp_queue_opts opts = {0};
		char msg[320] = "";

		if (!name || !vhost || bad)
			return imp_fail(im, -EINVAL, "queues[%zu]: name and vhost are strings", i);
		if (jbool(e, "durable", true, &durable) < 0 ||
		    jbool(e, "auto_delete", false, &auto_delete) < 0)
			return imp_fail(im, -EINVAL, "queues[%zu] '%s': durable and auto_delete are "
					"booleans", i, name);
		if (args && args->type != TQ_JSON_NULL && args->type != TQ_JSON_OBJECT)
			return imp_fail(im, -EINVAL, "queues[%zu] '%s': arguments is not an object",
					i, name);
		if (queue_args(args && args->type == TQ_JSON_OBJECT ? args : NULL, &def, &opts, msg,
			       sizeof(msg)) < 0)
			return imp_fail(im, -EINVAL, "queues[%zu] '%s': %s", i, name, msg);
		rc = tq_amqp_admin_queue_declare_opts(vhost, name, durable, auto_delete, &def, &opts,
						      msg, sizeof(msg));
		if (rc < 0)
			return imp_fail(im, rc, "queues[%zu] '%s' in vhost '%s': %s", i, name, vhost,
					msg);
		im->applied = true;
	}
	return rc;
}

/* One JSON value into the table builder (nested objects and lists too). */
static void
tb_json(struct tq_amqp_tb *b, const char *key, const struct tq_json *v)
{
	switch (v->type) {
	case TQ_JSON_NULL:
		tq_amqp_tb_void(b, key);
		break;
	case TQ_JSON_BOOL:
		tq_amqp_tb_bool(b, key, v->boolean);
		break;
	case TQ_JSON_STRING:
		tq_amqp_tb_str(b, key, v->text, strlen(v->text));
		break;
	case TQ_JSON_NUMBER: {
		char *end;
		long long n;

		errno = 0;
		n = strtoll(v->text, &end, 10);
		if (!*end && !errno)
			tq_amqp_tb_i64(b, key, n);
		else
			tq_amqp_tb_double(b, key, strtod(v->text, NULL));
		break;
	}
	case TQ_JSON_ARRAY:
		tq_amqp_tb_array_begin(b, key);
		for (const struct tq_json *c = v->child; c; c = c->next)
			tb_json(b, NULL, c);
		tq_amqp_tb_array_end(b);
		break;
	case TQ_JSON_OBJECT:
		tq_amqp_tb_table_begin(b, key);
		for (const struct tq_json *c = v->child; c; c = c->next)
			tb_json(b, c->key, c);
		tq_amqp_tb_table_end(b);
		break;
	}
}

/*
 * A binding's arguments object as the registry takes them: encoded as an AMQP table first
 * (integers as signed 64-bit, other numbers as doubles, null as void), then walked the way
 * the broker walks a queue.bind's arguments. @buf holds what @out points into.
 */
static int
binding_args(const struct tq_json *args, uint8_t *buf, size_t cap, struct tq_xheader *out,
	     uint32_t *n, char (*keys)[256])
{
	struct tq_amqp_tb b;
	struct tq_amqp_table t;
	int rc;

	*n = 0;
	tq_amqp_tb_init(&b, buf, cap);
	for (const struct tq_json *c = args ? args->child : NULL; c; c = c->next) {
		if (strlen(c->key) > TQ_EXCHANGE_NAME_MAX)
			return -EINVAL;
		tb_json(&b, c->key, c);
	}
	if (tq_amqp_tb_finish(&b, &t) < 0)
		return -EINVAL;
	rc = tq_amqp_table_xheaders(t, out, ARGS_MAX, keys);
	if (rc < 0)
		return rc;
	*n = (uint32_t)rc;
	return 0;
}

static int
import_bindings(struct imp *im, const struct tq_json *root)
{
	static char keys[ARGS_MAX][256];
	static struct tq_xheader xargs[ARGS_MAX];
	const struct tq_json *arr, *e;
	uint8_t *buf = NULL;
	size_t i = 0;
	int rc = section_get(im, root, "bindings", &arr);

	for (e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
		bool bad = false, to_queue;
		const char *src = jstr(e, "source", &bad), *vhost = jstr(e, "vhost", &bad);
		const char *dst = jstr(e, "destination", &bad);
		const char *dtype = jstr(e, "destination_type", &bad);
		const char *key = jstr(e, "routing_key", &bad);
		const struct tq_json *args = tq_json_get(e, "arguments");
		char msg[400] = "";
		uint32_t nargs = 0;

		if (!src || !vhost || !dst || !dtype || bad)
			rc = imp_fail(im, -EINVAL, "bindings[%zu]: source, vhost, destination and "
				      "destination_type are strings", i);
		else if (strcmp(dtype, "queue") && strcmp(dtype, "exchange"))
			rc = imp_fail(im, -EINVAL, "bindings[%zu]: destination_type '%s' is not "
				      "queue or exchange", i, dtype);
		else if (args && args->type != TQ_JSON_NULL && args->type != TQ_JSON_OBJECT)
			rc = imp_fail(im, -EINVAL, "bindings[%zu]: arguments is not an object", i);
		if (rc < 0)
			break;
		if (!src[0])
			continue; /* the default exchange's bindings are implicit */
		to_queue = !strcmp(dtype, "queue");
		if (args && args->type == TQ_JSON_OBJECT && args->child) {
			if (!buf && !(buf = malloc(ARGS_TABLE_MAX))) {
				rc = imp_fail(im, -ENOMEM, "out of memory");
				break;
			}
			if (binding_args(args, buf, ARGS_TABLE_MAX, xargs, &nargs, keys) < 0) {
				rc = imp_fail(im, -EINVAL, "bindings[%zu] '%s' -> '%s': arguments "
					      "too many, too large or too deep", i, src, dst);
				break;
			}
		}
		rc = tq_amqp_admin_bind_args(vhost, src, dst, to_queue, key ? key : "", xargs,
					     nargs, msg, sizeof(msg));
		if (rc < 0) {
			rc = imp_fail(im, rc, "bindings[%zu] '%s' -> %s '%s' in vhost '%s': %s", i,
				      src, dtype, dst, vhost, msg);
			break;
		}
		im->applied = true;
	}
	free(buf);
	return rc;
}

static int
import_acls(struct imp *im, const struct tq_json *root)
{
	struct tq_access_db *db = tq_cplane_access();
	const struct tq_json *arr, *e;
	size_t i = 0;
	int rc = section_get(im, root, "mqtt_acls", &arr);

	for (e = arr ? arr->child : NULL; e && rc == 0; e = e->next, i++) {
		bool bad = false;
		const char *user = jstr(e, "user", &bad), *pattern = jstr(e, "pattern", &bad);
		const char *access = jstr(e, "access", &bad);
		enum tq_acl_access a;

		if (!pattern || !access || bad)
			return imp_fail(im, -EINVAL, "mqtt_acls[%zu]: pattern and access are strings",
					i);
		if (!strcmp(access, "read"))
			a = TQ_ACL_READ;
		else if (!strcmp(access, "write"))
			a = TQ_ACL_WRITE;
		else if (!strcmp(access, "readwrite"))
			a = TQ_ACL_READWRITE;
		else if (!strcmp(access, "deny"))
			a = TQ_ACL_DENY;
		else
			return imp_fail(im, -EINVAL, "mqtt_acls[%zu]: access '%s' is not read, write, "
					"readwrite or deny", i, access);
		rc = tq_access_set_acl(db, user ? user : "", pattern, a);
		if (rc < 0)
			return imp_fail(im, rc, "mqtt_acls[%zu] '%s': %s", i, pattern,
					rc == -EINVAL ? "not a valid MQTT topic filter"
						      : strerror(-rc));
		im->applied = true;
	}
	return rc;
}

int
tq_defs_import(const char *json, size_t len, char *err, size_t errlen)
{
	static int (*const steps[])(struct imp *, const struct tq_json *) = {
		import_vhosts,	   import_users,    import_permissions, import_topic_permissions,
		import_policies,   import_exchanges, import_queues,     import_bindings,
		import_acls,
	};
	struct imp im = {.err = err, .errlen = errlen};
	struct tq_json *root;
	size_t pos = 0;
	int rc = 0;

	if (err && errlen)
		err[0] = '\0';
	root = tq_json_parse(json, len, &pos);
	if (!root) {
		if (errno == ENOMEM)
			return imp_fail(&im, -ENOMEM, "definitions: out of memory");
		return imp_fail(&im, -EINVAL, "definitions: not valid JSON (at byte %zu)", pos);
	}
	if (root->type != TQ_JSON_OBJECT) {
		tq_json_free(root);
		return imp_fail(&im, -EINVAL, "definitions: not a JSON object");
	}
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]) && rc == 0; s++)
		rc = steps[s](&im, root);
	tq_json_free(root);
	if (im.applied) { /* what was applied is published, even when a later entry failed */
		int crc = tq_cplane_changed();

		if (rc == 0 && crc < 0)
			rc = imp_fail(&im, crc, "definitions: publishing: %s", strerror(-crc));
	}
	return rc;
}

int
tq_defs_import_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t off = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)DEFS_FILE_MAX) {
		rc = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		snprintf(err, errlen, "%s: %s", path,
			 rc == -EFBIG ? "larger than 64 MiB" : rc == -EINVAL ? "not a file"
									    : strerror(-rc));
		close(fd);
		return rc;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	if (off != (size_t)st.st_size) {
		free(buf);
		snprintf(err, errlen, "%s: short read", path);
		return -EIO;
	}
	rc = tq_defs_import(buf, off, err, errlen);
	if (rc < 0 && err && errlen) { /* name the file */
		char m[512];

		snprintf(m, sizeof(m), "%s", err);
		snprintf(err, errlen, "%s: %s", path, m);
	}
	free(buf);
	return rc;
}
