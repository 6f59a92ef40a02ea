/*
 * Policies (the rules are in tq_policy.h): a scanner and a formatter for definitions, the
 * control thread's db, and the immutable snapshot the workers match against.
 *
 * Every definition key is described once, in key_table: its JSON name, its bit, how its
 * value is typed and bounded, what apply-to it fits and how tq_policy_effective merges it.
 * The scanner, the formatter, the validation in tq_policy_set and the merge all walk that
 * table, so a new key is one line there (and a field in struct tq_policy_def).
 *
 * The db keeps its policies as an array of pointers sorted by (vhost, name), the order
 * tq_policy_at enumerates. A snapshot is one array of entries, each with its own copy of the
 * strings and its own compiled pattern, sorted the way a match wants them (priority
 * descending, then name, then vhost, in byte order): a match is the first entry that
 * applies, so no reader ever compares priorities.
 */
/* liburcu's sanctioned way to inline rcu_dereference & co. without _LGPL_SOURCE. */
#define URCU_INLINE_SMALL_FUNCTIONS
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-qsbr.h>

#include "tq_policy.h"

#ifndef REG_STARTEND
#error "tq_policy needs regexec's REG_STARTEND (glibc, the BSDs)"
#endif

/* dp: ro (rcu_dereference), cp: wo (tq_policies_publish only). */
struct tq_policies *tq_policies_cur;

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- the keys ------------------------------------------------------------------------ */

enum key_kind {
	KEY_U64,  /* uint64_t field, integer in [min, max] */
	KEY_U8,   /* uint8_t field, integer in [min, max] */
	KEY_ENUM, /* uint8_t field, one of names[] (index = value) */
	KEY_STR,  /* char[TQ_POLICY_STR_MAX + 1] field, a JSON string */
};

struct key_desc {
	const char *name;
	uint32_t bit;         /* TQ_POL_* */
	enum key_kind kind;
	uint8_t fits;         /* the apply-to bits it fits: QUEUES, EXCHANGES, USERS, TOPICS */
	bool merge_min;       /* tq_policy_effective: the smaller wins (else the argument) */
	size_t off;           /* of the field in struct tq_policy_def */
	uint64_t min, max;    /* KEY_U64, KEY_U8 */
	const char *const *names; /* KEY_ENUM */
	uint8_t nnames;
};

static const char *const overflow_names[] = {
	[TQ_OVERFLOW_DROP_HEAD] = "drop-head",
	[TQ_OVERFLOW_REJECT_PUBLISH] = "reject-publish",
	[TQ_OVERFLOW_REJECT_PUBLISH_DLX] = "reject-publish-dlx",
};

static const char *const class_names[] = {
	[TQ_CLASS_CRITICAL] = "critical",
	[TQ_CLASS_NORMAL] = "normal",
	[TQ_CLASS_BULK] = "bulk",
};

/*
 * Times are bounded as RabbitMQ bounds x-message-ttl and x-expires (2^32 - 1 ms, its
 * largest timer), so a queue can turn them into nanoseconds without overflow; counts by
 * INT64_MAX, so they fit a signed 64-bit integer wherever they go.
 */
#define MS_MAX UINT32_MAX
#define COUNT_MAX ((uint64_t)INT64_MAX)

#define FIELD(f) offsetof(struct tq_policy_def, f)

static const struct key_desc key_table[] = {
	{"message-ttl", TQ_POL_MESSAGE_TTL, KEY_U64, TQ_POLICY_QUEUES | TQ_POLICY_TOPICS, true,
	 FIELD(message_ttl), 0, MS_MAX, NULL, 0},
	{"expires", TQ_POL_EXPIRES, KEY_U64, TQ_POLICY_QUEUES, true, FIELD(expires), 1, MS_MAX,
	 NULL, 0},
	{"max-length", TQ_POL_MAX_LENGTH, KEY_U64, TQ_POLICY_QUEUES, true, FIELD(max_length), 0,
	 COUNT_MAX, NULL, 0},
	{"max-length-bytes", TQ_POL_MAX_LENGTH_BYTES, KEY_U64, TQ_POLICY_QUEUES, true,
	 FIELD(max_length_bytes), 0, COUNT_MAX, NULL, 0},
	{"overflow", TQ_POL_OVERFLOW, KEY_ENUM, TQ_POLICY_QUEUES, false, FIELD(overflow), 0, 0,
	 overflow_names, 3},
	{"dead-letter-exchange", TQ_POL_DLX, KEY_STR, TQ_POLICY_QUEUES, false, FIELD(dlx), 0, 0,
	 NULL, 0},
	{"dead-letter-routing-key", TQ_POL_DLRK, KEY_STR, TQ_POLICY_QUEUES, false, FIELD(dlrk),
	 0, 0, NULL, 0},
	{"max-priority", TQ_POL_MAX_PRIORITY, KEY_U8, TQ_POLICY_QUEUES, false,
	 FIELD(max_priority), 1, 255, NULL, 0},
	{"delivery-limit", TQ_POL_DELIVERY_LIMIT, KEY_U64, TQ_POLICY_QUEUES, true,
	 FIELD(delivery_limit), 0, COUNT_MAX, NULL, 0},
	{"alternate-exchange", TQ_POL_ALTERNATE_EXCHANGE, KEY_STR, TQ_POLICY_EXCHANGES, false,
	 FIELD(alternate_exchange), 0, 0, NULL, 0},
	{"priority-class", TQ_POL_PRIORITY_CLASS, KEY_ENUM, TQ_POLICY_USERS, false,
	 FIELD(priority_class), 0, 0, class_names, 3},
};

#define NKEYS (sizeof(key_table) / sizeof(key_table[0]))

static uint32_t
known_bits(void)
{
	uint32_t m = 0;

	for (size_t k = 0; k < NKEYS; k++)
		m |= key_table[k].bit;
	return m;
}

static const struct key_desc *
key_find(const char *name, size_t len)
{
	for (size_t k = 0; k < NKEYS; k++)
		if (strlen(key_table[k].name) == len && !memcmp(key_table[k].name, name, len))
			return &key_table[k];
	return NULL;
}

static uint64_t *
field_u64(struct tq_policy_def *d, const struct key_desc *k)
{
	return (uint64_t *)(void *)((char *)d + k->off);
}

static uint8_t *
field_u8(struct tq_policy_def *d, const struct key_desc *k)
{
	return (uint8_t *)d + k->off;
}

static char *
field_str(struct tq_policy_def *d, const struct key_desc *k)
{
	return (char *)d + k->off;
}

/* Copy key @k's value from @src to @dst (the set bit is the caller's). */
static void
field_copy(struct tq_policy_def *dst, const struct tq_policy_def *src, const struct key_desc *k)
{
	struct tq_policy_def *s = (struct tq_policy_def *)src; /* read only */

	switch (k->kind) {
	case KEY_U64:
		*field_u64(dst, k) = *field_u64(s, k);
		break;
	case KEY_U8:
	case KEY_ENUM:
		*field_u8(dst, k) = *field_u8(s, k);
		break;
	case KEY_STR:
		memcpy(field_str(dst, k), field_str(s, k), TQ_POLICY_STR_MAX);
		field_str(dst, k)[TQ_POLICY_STR_MAX] = '\0';
		break;
	}
}

/* ---- UTF-8 and the JSON scanner ------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at @s (@len bytes left), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	uint32_t cp, min;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool
utf8_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_seq(p + i, len - i);
		if (!n)
			return false;
	}
	return true;
}

static bool
json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t
skip_ws(const char *p, size_t len, size_t i)
{
	while (i < len && json_ws(p[i]))
		i++;
	return i;
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A JSON integer (-?(0|[1-9][0-9]*), no fraction, no exponent) at p[*i]; *@i moves past it.
 * -EINVAL: not an integer; -ERANGE: its magnitude does not fit 64 bits.
 */
static int
scan_int(const char *p, size_t len, size_t *i, bool *neg, uint64_t *v)
{
	size_t j = *i;
	uint64_t x = 0;

	*neg = j < len && p[j] == '-';
	if (*neg)
		j++;
	if (j >= len || p[j] < '0' || p[j] > '9')
		return -EINVAL;
	if (p[j] == '0' && j + 1 < len && p[j + 1] >= '0' && p[j + 1] <= '9')
		return -EINVAL; /* a leading zero */
	for (; j < len && p[j] >= '0' && p[j] <= '9'; j++) {
		unsigned d = (unsigned)(p[j] - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
	}
	if (j < len && (p[j] == '.' || p[j] == 'e' || p[j] == 'E'))
		return -EINVAL;
	*i = j;
	*v = x;
	return 0;
}

/*
 * The JSON string whose opening quote is at p[*i], unescaped into @out (@cap bytes, NUL
 * included) with its length in *@outlen; *@i moves past the closing quote. Escapes: \" \\ \/
 * \b \f \n \r \t and \uXXXX for U+0001..U+007F; other bytes must be printable ASCII or
 * well-formed UTF-8. -EINVAL (message in @err) or -E2BIG (longer than @cap - 1 bytes).
 */
static int
scan_str(const char *p, size_t len, size_t *i, char *out, size_t cap, size_t *outlen,
	 char *err, size_t errlen)
{
	size_t j = *i + 1, n = 0;

	for (;;) {
		unsigned char c;
		size_t run = 1;

		if (j >= len) {
			set_err(err, errlen, "unterminated string");
			return -EINVAL;
		}
		c = (unsigned char)p[j];
		if (c == '"')
			break;
		if (c < 0x20) {
			set_err(err, errlen, "control character 0x%02x in a string (escape it)", c);
			return -EINVAL;
		}
		if (c == '\\') {
			size_t adv = 2;
			int v = 0;

			if (j + 1 >= len) {
				set_err(err, errlen, "unterminated string");
				return -EINVAL;
			}
			switch (p[j + 1]) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case '/': c = '/'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u':
				for (size_t k = j + 2; k < j + 6; k++) {
					int h = k < len ? hex_val(p[k]) : -1;

					if (h < 0) {
						set_err(err, errlen, "\\u needs 4 hex digits");
						return -EINVAL;
					}
					v = v << 4 | h;
				}
				if (v == 0 || v > 0x7f) {
					set_err(err, errlen,
						"\\u%04x: only \\u0001 to \\u007f are accepted "
						"(write other characters as UTF-8)", (unsigned)v);
					return -EINVAL;
				}
				c = (unsigned char)v;
				adv = 6;
				break;
			default:
				set_err(err, errlen, "unknown escape \\%c", p[j + 1]);
				return -EINVAL;
			}
			if (n + 1 >= cap)
				return -E2BIG;
			out[n++] = (char)c;
			j += adv;
			continue;
		}
		if (c >= 0x80) {
			run = utf8_seq((const unsigned char *)p + j, len - j);
			if (!run) {
				set_err(err, errlen, "a string that is not valid UTF-8");
				return -EINVAL;
			}
		}
		if (n + run >= cap)
			return -E2BIG;
		memcpy(out + n, p + j, run);
		n += run;
		j += run;
	}
	out[n] = '\0';
	*outlen = n;
	*i = j + 1;
	return 0;
}

/*
 * Set key @k of @def from the JSON value @val (@vlen bytes, whitespace around allowed).
 * @def is only changed on success.
 */
static int
set_value(struct tq_policy_def *def, const struct key_desc *k, const char *val, size_t vlen,
	  char *err, size_t errlen)
{
	char s[TQ_POLICY_STR_MAX + 1];
	size_t i = skip_ws(val, vlen, 0), slen = 0;
	uint64_t v = 0;
	bool neg = false;
	int rc;

	if (i == vlen) {
		set_err(err, errlen, "%s: no value", k->name);
		return -EINVAL;
	}
	switch (k->kind) {
	case KEY_U64:
	case KEY_U8:
		rc = scan_int(val, vlen, &i, &neg, &v);
		if (rc == -EINVAL) {
			set_err(err, errlen, "%s must be an integer", k->name);
			return rc;
		}
		if (rc == -ERANGE || (neg && v) || v < k->min || v > k->max) {
			set_err(err, errlen, "%s must be an integer from %" PRIu64 " to %" PRIu64,
				k->name, k->min, k->max);
			return -EINVAL;
		}
		break;
	case KEY_ENUM:
	case KEY_STR:
		if (val[i] != '"') {
			set_err(err, errlen, "%s must be a string", k->name);
			return -EINVAL;
		}
		rc = scan_str(val, vlen, &i, s, sizeof(s), &slen, err, errlen);
		if (rc == -E2BIG) {
			set_err(err, errlen, "%s: longer than %d bytes", k->name, TQ_POLICY_STR_MAX);
			return -EINVAL;
		}
		if (rc) {
			/* prefix the scanner's message with the key */
			char m[128];

			snprintf(m, sizeof(m), "%s", err && errlen ? err : "");
			set_err(err, errlen, "%s: %s", k->name, m);
			return rc;
		}
		if (k->kind == KEY_ENUM) {
			for (v = 0; v < k->nnames; v++)
				if (!strcmp(s, k->names[v]))
					break;
			if (v == k->nnames) {
				set_err(err, errlen, "%s: \"%.64s\" is not one of %s%s%s%s%s", k->name,
					s, k->names[0], k->nnames > 1 ? ", " : "",
					k->nnames > 1 ? k->names[1] : "",
					k->nnames > 2 ? ", " : "",
					k->nnames > 2 ? k->names[2] : "");
				return -EINVAL;
			}
		}
		break;
	}
	if (skip_ws(val, vlen, i) != vlen) {
		set_err(err, errlen, "%s: unexpected text after the value", k->name);
		return -EINVAL;
	}
	switch (k->kind) {
	case KEY_U64:
		*field_u64(def, k) = v;
		break;
	case KEY_U8:
	case KEY_ENUM:
		*field_u8(def, k) = (uint8_t)v;
		break;
	case KEY_STR:
		memcpy(field_str(def, k), s, slen + 1);
		break;
	}
	def->set |= k->bit;
	return 0;
}

static int
unknown_key(const char *key, size_t klen, char *err, size_t errlen)
{
	set_err(err, errlen, "unknown policy key \"%.*s\"", klen > 64 ? 64 : (int)klen, key);
	return -EINVAL;
}

int
tq_policy_def_set(struct tq_policy_def *def, const char *key, const char *json_value,
		  char *err, size_t errlen)
{
	const struct key_desc *k;

	if (!def || !key || !json_value) {
		set_err(err, errlen, "missing argument");
		return -EINVAL;
	}
	k = key_find(key, strlen(key));
	if (!k)
		return unknown_key(key, strlen(key), err, errlen);
	return set_value(def, k, json_value, strlen(json_value), err, errlen);
}

/* Where the JSON value starting at p[i] ends: a string's closing quote, else , } or space. */
static size_t
value_end(const char *p, size_t len, size_t i)
{
	if (i < len && p[i] == '"') {
		for (i++; i < len && p[i] != '"'; i++)
			if (p[i] == '\\' && i + 1 < len)
				i++;
		return i < len ? i + 1 : len;
	}
	while (i < len && p[i] != ',' && p[i] != '}' && !json_ws(p[i]))
		i++;
	return i;
}

int
tq_policy_def_parse(struct tq_policy_def *def, const char *json, size_t len, char *err,
		    size_t errlen)
{
	struct tq_policy_def d = {0};
	size_t i;

	if (!def || !json) {
		set_err(err, errlen, "missing argument");
		return -EINVAL;
	}
	i = skip_ws(json, len, 0);
	if (i >= len || json[i] != '{') {
		set_err(err, errlen, "a definition is a JSON object: {\"key\": value, ...}");
		return -EINVAL;
	}
	i = skip_ws(json, len, i + 1);
	if (i < len && json[i] == '}') {
		i++;
		goto end;
	}
	for (;;) {
		char key[TQ_POLICY_STR_MAX + 1];
		const struct key_desc *k;
		size_t klen = 0, vend;
		int rc;

		if (i >= len || json[i] != '"') {
			set_err(err, errlen, "expected a key (a string) at offset %zu", i);
			return -EINVAL;
		}
		rc = scan_str(json, len, &i, key, sizeof(key), &klen, err, errlen);
		if (rc == -E2BIG)
			return unknown_key(json + i + 1, 64, err, errlen);
		if (rc)
			return rc;
		k = key_find(key, klen);
		if (!k)
			return unknown_key(key, klen, err, errlen);
		if (d.set & k->bit) {
			set_err(err, errlen, "%s given twice", k->name);
			return -EINVAL;
		}
		i = skip_ws(json, len, i);
		if (i >= len || json[i] != ':') {
			set_err(err, errlen, "expected ':' after \"%s\"", k->name);
			return -EINVAL;
		}
		i = skip_ws(json, len, i + 1);
		vend = value_end(json, len, i);
		rc = set_value(&d, k, json + i, vend - i, err, errlen);
		if (rc)
			return rc;
		i = skip_ws(json, len, vend);
		if (i < len && json[i] == ',') {
			i = skip_ws(json, len, i + 1);
			continue;
		}
		if (i < len && json[i] == '}') {
			i++;
			break;
		}
		set_err(err, errlen, "expected ',' or '}' at offset %zu", i);
		return -EINVAL;
	}
end:
	if (skip_ws(json, len, i) != len) {
		set_err(err, errlen, "unexpected text after the definition at offset %zu", i);
		return -EINVAL;
	}
	*def = d;
	return 0;
}

/* ---- the formatter ------------------------------------------------------------------- */

/* Appends that count what they could not write, so the caller learns the length needed. */
struct outbuf {
	char *p;
	size_t cap, len;
};

static void
out_ch(struct outbuf *o, char c)
{
	if (o->len < o->cap)
		o->p[o->len] = c;
	o->len++;
}

static void
out_raw(struct outbuf *o, const char *s)
{
	while (*s)
		out_ch(o, *s++);
}

/* @s (NUL-terminated within @max bytes) as a JSON string, quotes included. */
static void
out_jstr(struct outbuf *o, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strnlen(s, max);

	out_ch(o, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': out_raw(o, "\\\""); break;
		case '\\': out_raw(o, "\\\\"); break;
		case '\b': out_raw(o, "\\b"); break;
		case '\f': out_raw(o, "\\f"); break;
		case '\n': out_raw(o, "\\n"); break;
		case '\r': out_raw(o, "\\r"); break;
		case '\t': out_raw(o, "\\t"); break;
		default:
			if (c < 0x20) {
				out_raw(o, "\\u00");
				out_ch(o, hex[c >> 4]);
				out_ch(o, hex[c & 15]);
			} else {
				out_ch(o, (char)c);
			}
		}
	}
	out_ch(o, '"');
}

int
tq_policy_def_json(const struct tq_policy_def *def, char *out, size_t cap)
{
	struct tq_policy_def *d = (struct tq_policy_def *)def; /* read only */
	struct outbuf o = {out, cap, 0};
	bool first = true;

	if (!def || (!out && cap))
		return -EINVAL;
	out_ch(&o, '{');
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key_desc *k = &key_table[i];
		char num[24];

		if (!(def->set & k->bit))
			continue;
		if (!first)
			out_ch(&o, ',');
		first = false;
		out_ch(&o, '"');
		out_raw(&o, k->name);
		out_raw(&o, "\":");
		switch (k->kind) {
		case KEY_U64:
			snprintf(num, sizeof(num), "%" PRIu64, *field_u64(d, k));
			out_raw(&o, num);
			break;
		case KEY_U8:
			snprintf(num, sizeof(num), "%u", *field_u8(d, k));
			out_raw(&o, num);
			break;
		case KEY_ENUM:
			if (*field_u8(d, k) >= k->nnames)
				return -EINVAL;
			out_jstr(&o, k->names[*field_u8(d, k)], SIZE_MAX);
			break;
		case KEY_STR:
			out_jstr(&o, field_str(d, k), TQ_POLICY_STR_MAX + 1);
			break;
		}
	}
	out_ch(&o, '}');
	if (o.len >= cap) {
		if (cap)
			out[cap - 1] = '\0';
		return -ENOSPC;
	}
	out[o.len] = '\0';
	return (int)o.len;
}

/* ---- merge --------------------------------------------------------------------------- */

void
tq_policy_effective(const struct tq_policy_def *args, const struct tq_policy_def *pol,
		    struct tq_policy_def *out)
{
	static const struct tq_policy_def none;
	struct tq_policy_def r;

	memset(&r, 0, sizeof(r));
	if (!args)
		args = &none;
	if (!pol)
		pol = &none;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key_desc *k = &key_table[i];
		bool a = args->set & k->bit, p = pol->set & k->bit;

		if (!a && !p)
			continue;
		if (a && p && k->merge_min) {
			/* only KEY_U64 keys merge by minimum */
			uint64_t av = *field_u64((struct tq_policy_def *)args, k);
			uint64_t pv = *field_u64((struct tq_policy_def *)pol, k);

			*field_u64(&r, k) = av < pv ? av : pv;
		} else {
			field_copy(&r, a ? args : pol, k);
		}
		r.set |= k->bit;
	}
	*out = r; /* last: @out may be @args or @pol */
}

/* ---- the db -------------------------------------------------------------------------- */

struct policy {
	char *vhost, *name, *pattern;
	enum tq_policy_apply apply_to;
	int priority;
	struct tq_policy_def def;
};

struct tq_policy_db {
	struct policy **v; /* sorted by (vhost, name), byte order */
	size_t n, cap;
};

struct tq_policy_db *
tq_policy_db_new(void)
{
	struct tq_policy_db *db = calloc(1, sizeof(*db));

	if (!db)
		errno = ENOMEM;
	return db;
}

static void
policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->vhost);
	free(p->name);
	free(p->pattern);
	free(p);
}

void
tq_policy_db_free(struct tq_policy_db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->n; i++)
		policy_free(db->v[i]);
	free(db->v);
	free(db);
}

static int
vn_cmp(const char *va, const char *na, const char *vb, const char *nb)
{
	int c = strcmp(va, vb);

	return c ? c : strcmp(na, nb);
}

/* Index of (@vhost, @name) in @db, or where it would go with *@found false. */
static size_t
db_find(const struct tq_policy_db *db, const char *vhost, const char *name, bool *found)
{
	size_t lo = 0, hi = db->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = vn_cmp(db->v[mid]->vhost, db->v[mid]->name, vhost, name);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static const char *const apply_names[] = {
	[TQ_POLICY_QUEUES] = "queues",
	[TQ_POLICY_EXCHANGES] = "exchanges",
	[TQ_POLICY_ALL] = "all",
	[TQ_POLICY_USERS] = "users",
	[TQ_POLICY_TOPICS] = "topics",
};

static bool
apply_valid(enum tq_policy_apply a)
{
	return (a >= TQ_POLICY_QUEUES && a <= TQ_POLICY_USERS) || a == TQ_POLICY_TOPICS;
}

int
tq_policy_apply_parse(const char *s, enum tq_policy_apply *out)
{
	if (!s || !out)
		return -EINVAL;
	for (int a = TQ_POLICY_QUEUES; a <= TQ_POLICY_TOPICS; a++) {
		if (apply_names[a] && !strcmp(s, apply_names[a])) {
			*out = (enum tq_policy_apply)a;
			return 0;
		}
	}
	return -EINVAL;
}

const char *
tq_policy_apply_name(enum tq_policy_apply a)
{
	return apply_valid(a) ? apply_names[a] : "unknown";
}

/* A name, vhost or pattern: 1..@max bytes of UTF-8 (@max 0: any length, may be empty). */
static int
check_text(const char *what, const char *s, size_t max, char *err, size_t errlen)
{
	size_t n = strlen(s);

	if (max && (n == 0 || n > max)) {
		set_err(err, errlen, "%s must be 1 to %zu bytes long", what, max);
		return -EINVAL;
	}
	if (!utf8_ok(s, n)) {
		set_err(err, errlen, "%s is not valid UTF-8", what);
		return -EINVAL;
	}
	return 0;
}

/* Is @def something def_set could have produced, and does each of its keys fit @apply? */
static int
check_def(const struct tq_policy_def *def, enum tq_policy_apply apply, char *err, size_t errlen)
{
	struct tq_policy_def *d = (struct tq_policy_def *)def; /* read only */

	if (def->set & ~known_bits()) {
		set_err(err, errlen, "unknown definition bits 0x%x", def->set & ~known_bits());
		return -EINVAL;
	}
	if (!def->set) {
		set_err(err, errlen, "empty definition: a policy needs at least one key");
		return -EINVAL;
	}
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key_desc *k = &key_table[i];
		const char *s;
		uint64_t v;

		if (!(def->set & k->bit))
			continue;
		switch (k->kind) {
		case KEY_U64:
		case KEY_U8:
			v = k->kind == KEY_U64 ? *field_u64(d, k) : *field_u8(d, k);
			if (v < k->min || v > k->max) {
				set_err(err, errlen, "%s must be an integer from %" PRIu64
					" to %" PRIu64, k->name, k->min, k->max);
				return -EINVAL;
			}
			break;
		case KEY_ENUM:
			if (*field_u8(d, k) >= k->nnames) {
				set_err(err, errlen, "%s: invalid value %u", k->name,
					*field_u8(d, k));
				return -EINVAL;
			}
			break;
		case KEY_STR:
			s = field_str(d, k);
			if (!memchr(s, '\0', TQ_POLICY_STR_MAX + 1)) {
				set_err(err, errlen, "%s: longer than %d bytes", k->name,
					TQ_POLICY_STR_MAX);
				return -EINVAL;
			}
			if (!utf8_ok(s, strlen(s))) {
				set_err(err, errlen, "%s: not valid UTF-8", k->name);
				return -EINVAL;
			}
			break;
		}
		if (!(k->fits & apply)) {
			if (k->fits == TQ_POLICY_USERS)
				set_err(err, errlen, "%s is a key for users: apply-to must be "
					"\"users\", not \"%s\"", k->name, apply_names[apply]);
			else if (k->fits == TQ_POLICY_EXCHANGES)
				set_err(err, errlen, "%s is a key for exchanges: apply-to must be "
					"\"exchanges\" or \"all\", not \"%s\"", k->name,
					apply_names[apply]);
			else if (k->fits & TQ_POLICY_TOPICS)
				set_err(err, errlen, "%s is a key for queues and topics: apply-to "
					"must be \"queues\", \"all\" or \"topics\", not \"%s\"",
					k->name, apply_names[apply]);
			else
				set_err(err, errlen, "%s is a key for queues: apply-to must be "
					"\"queues\" or \"all\", not \"%s\"", k->name,
					apply_names[apply]);
			return -EINVAL;
		}
	}
	return 0;
}

/* Compile @pattern as a policy pattern; -EINVAL with regerror's text in @err. */
static int
compile(regex_t *re, const char *pattern, char *err, size_t errlen)
{
	int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);

	if (rc) {
		char m[128];

		regerror(rc, re, m, sizeof(m));
		set_err(err, errlen, "pattern \"%.64s\": %s", pattern, m);
		return rc == REG_ESPACE ? -ENOMEM : -EINVAL;
	}
	return 0;
}

int
tq_policy_set(struct tq_policy_db *db, const char *vhost, const char *name,
	      const char *pattern, enum tq_policy_apply apply_to, int priority,
	      const struct tq_policy_def *def, char *err, size_t errlen)
{
	struct policy *p;
	regex_t re;
	size_t at;
	bool found;
	int rc;

	if (!db || !vhost || !name || !pattern || !def) {
		set_err(err, errlen, "missing argument");
		return -EINVAL;
	}
	if ((rc = check_text("vhost", vhost, TQ_POLICY_NAME_MAX, err, errlen)) ||
	    (rc = check_text("policy name", name, TQ_POLICY_NAME_MAX, err, errlen)) ||
	    (rc = check_text("pattern", pattern, 0, err, errlen)))
		return rc;
	if (!apply_valid(apply_to)) {
		set_err(err, errlen, "apply-to must be queues, exchanges, all, users or topics");
		return -EINVAL;
	}
	rc = check_def(def, apply_to, err, errlen);
	if (rc)
		return rc;
	rc = compile(&re, pattern, err, errlen);
	if (rc)
		return rc;
	regfree(&re); /* each snapshot compiles its own */

	p = calloc(1, sizeof(*p));
	if (p) {
		p->vhost = strdup(vhost);
		p->name = strdup(name);
		p->pattern = strdup(pattern);
	}
	if (!p || !p->vhost || !p->name || !p->pattern)
		goto nomem;
	p->apply_to = apply_to;
	p->priority = priority;
	tq_policy_effective(def, NULL, &p->def); /* only the set keys, the rest zero */

	at = db_find(db, vhost, name, &found);
	if (found) {
		policy_free(db->v[at]);
		db->v[at] = p;
		return 0;
	}
	if (db->n == db->cap) {
		size_t cap = db->cap ? 2 * db->cap : 8;
		struct policy **v = realloc(db->v, cap * sizeof(*v));

		if (!v)
			goto nomem;
		db->v = v;
		db->cap = cap;
	}
	memmove(db->v + at + 1, db->v + at, (db->n - at) * sizeof(*db->v));
	db->v[at] = p;
	db->n++;
	return 0;
nomem:
	policy_free(p);
	set_err(err, errlen, "out of memory");
	return -ENOMEM;
}

int
tq_policy_clear(struct tq_policy_db *db, const char *vhost, const char *name)
{
	size_t at;
	bool found;

	if (!db || !vhost || !name)
		return -EINVAL;
	at = db_find(db, vhost, name, &found);
	if (!found)
		return -ENOENT;
	policy_free(db->v[at]);
	memmove(db->v + at, db->v + at + 1, (db->n - at - 1) * sizeof(*db->v));
	db->n--;
	return 0;
}

void
tq_policy_forget_vhost(struct tq_policy_db *db, const char *vhost)
{
	size_t w = 0;

	if (!db || !vhost)
		return;
	for (size_t r = 0; r < db->n; r++) {
		if (!strcmp(db->v[r]->vhost, vhost))
			policy_free(db->v[r]);
		else
			db->v[w++] = db->v[r];
	}
	db->n = w;
}

size_t
tq_policy_count(const struct tq_policy_db *db)
{
	return db ? db->n : 0;
}

int
tq_policy_at(const struct tq_policy_db *db, size_t i, struct tq_policy_info *out)
{
	const struct policy *p;

	if (!db || !out)
		return -EINVAL;
	if (i >= db->n)
		return -ENOENT;
	p = db->v[i];
	out->vhost = p->vhost;
	out->name = p->name;
	out->pattern = p->pattern;
	out->apply_to = p->apply_to;
	out->priority = p->priority;
	out->def = &p->def;
	return 0;
}

/* ---- the snapshot -------------------------------------------------------------------- */

struct snap_entry {
	char *vhost, *name;
	regex_t re;
	enum tq_policy_apply apply_to;
	int priority;
	struct tq_policy_def def;
};

struct tq_policies {
	uint64_t gen;
	uint32_t kinds; /* the apply-to bits of its entries */
	size_t n; /* entries fully built (all of them once tq_policies_build returns) */
	struct snap_entry e[];
};

/* Match order: priority descending, then name, then vhost (byte order). */
static int
entry_cmp(const void *a, const void *b)
{
	const struct snap_entry *x = a, *y = b;
	int c;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->vhost, y->vhost);
}

void
tq_policies_free(struct tq_policies *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->e[i].vhost);
		free(p->e[i].name);
		regfree(&p->e[i].re);
	}
	free(p);
}

struct tq_policies *
tq_policies_build(const struct tq_policy_db *db, uint64_t gen)
{
	size_t n = db ? db->n : 0;
	struct tq_policies *p = calloc(1, sizeof(*p) + n * sizeof(p->e[0]));

	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->gen = gen;
	for (size_t i = 0; i < n; i++) {
		const struct policy *src = db->v[i];
		struct snap_entry *e = &p->e[i];
		int rc;

		e->vhost = strdup(src->vhost);
		e->name = strdup(src->name);
		rc = e->vhost && e->name ? compile(&e->re, src->pattern, NULL, 0) : -ENOMEM;
		if (rc) {
			free(e->vhost);
			free(e->name);
			tq_policies_free(p);
			errno = -rc;
			return NULL;
		}
		e->apply_to = src->apply_to;
		p->kinds |= src->apply_to;
		e->priority = src->priority;
		e->def = src->def;
		p->n = i + 1;
	}
	if (p->n) /* qsort(NULL, 0, ...) is undefined */
		qsort(p->e, p->n, sizeof(p->e[0]), entry_cmp);
	return p;
}

uint64_t
tq_policies_gen(const struct tq_policies *p)
{
	return p ? p->gen : 0;
}

bool
tq_policies_has(const struct tq_policies *p, enum tq_policy_apply kind)
{
	return p && (p->kinds & kind);
}

/*
 * Names shorter than this are copied to the stack and NUL-terminated before regexec: the
 * callers pass spans of packet buffers, and sanitizers' regexec wrappers read the subject up
 * to a NUL whatever REG_STARTEND says. Longer names are matched in place: pass them
 * NUL-terminated (user names are; tq_mqtt_policy copies long topics).
 */
#define MATCH_COPY_MAX 1024

const struct tq_policy_def *
tq_policies_match(const struct tq_policies *p, const char *vhost, enum tq_policy_apply kind,
		  const char *name, size_t len, const char **name_out)
{
	char copy[MATCH_COPY_MAX];
	const char *subject = name;

	if (!p || (kind != TQ_POLICY_USERS && !vhost) || (!name && len) || len > INT_MAX)
		return NULL;
	if (kind != TQ_POLICY_QUEUES && kind != TQ_POLICY_EXCHANGES && kind != TQ_POLICY_USERS &&
	    kind != TQ_POLICY_TOPICS)
		return NULL;
	if (len < sizeof(copy)) {
		if (len)
			memcpy(copy, name, len);
		copy[len] = '\0';
		subject = copy;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct snap_entry *e = &p->e[i];
		regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)len};

		if (!(e->apply_to & kind))
			continue; /* ALL (3) covers QUEUES (1) and EXCHANGES (2), not USERS or TOPICS */
		if (kind != TQ_POLICY_USERS && strcmp(e->vhost, vhost))
			continue;
		if (regexec(&e->re, subject, 1, &m, REG_STARTEND))
			continue;
		if (name_out)
			*name_out = e->name;
		return &e->def;
	}
	return NULL;
}

void
tq_policies_publish(struct tq_policies *p)
{
	struct tq_policies *old = tq_policies_cur; /* the control thread is the only writer */

	if (old == p)
		return;
	rcu_assign_pointer(tq_policies_cur, p);
	urcu_qsbr_synchronize_rcu();
	tq_policies_free(old);
}
