#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tq_json.h"

struct parser {
	const char *p;
	size_t len;
	size_t pos;
	int depth;
};

static struct tq_json *parse_value(struct parser *ps);

static void
skip_ws(struct parser *ps)
{
	while (ps->pos < ps->len && (ps->p[ps->pos] == ' ' || ps->p[ps->pos] == '\t' ||
				     ps->p[ps->pos] == '\n' || ps->p[ps->pos] == '\r'))
		ps->pos++;
}

static struct tq_json *
node(enum tq_json_type t)
{
	struct tq_json *j = calloc(1, sizeof(*j));

	if (j)
		j->type = t;
	return j;
}

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

/* Parse a string at ps->pos (on the opening quote); returns a malloc'd UTF-8 copy. */
static char *
parse_string(struct parser *ps)
{
	size_t start = ++ps->pos, n = 0;
	char *out;

	/* Unescaped output is never longer than the input, so size by the input. */
	while (ps->pos < ps->len && ps->p[ps->pos] != '"') {
		if (ps->p[ps->pos] == '\\')
			ps->pos++;
		ps->pos++;
	}
	if (ps->pos >= ps->len) {
		ps->pos = ps->len; /* a trailing backslash stepped past the end */
		return NULL;
	}
	out = malloc(ps->pos - start + 1);
	if (!out)
		return NULL;
	for (size_t i = start; i < ps->pos; i++) {
		char c = ps->p[i];

		if ((unsigned char)c < 0x20)
			goto bad;
		if (c != '\\') {
			out[n++] = c;
			continue;
		}
		c = ps->p[++i];
		switch (c) {
		case '"': case '\\': case '/': out[n++] = c; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u': {
			unsigned int cp = 0;

			if (i + 4 >= ps->pos)
				goto bad;
			for (int k = 1; k <= 4; k++) {
				int h = hexval(ps->p[i + k]);

				if (h < 0)
					goto bad;
				cp = cp << 4 | (unsigned int)h;
			}
			i += 4;
			/* \uXXXX fits in at most 3 UTF-8 bytes, as does the 6-byte escape. */
			if (cp < 0x80) {
				out[n++] = (char)cp;
			} else if (cp < 0x800) {
				out[n++] = (char)(0xc0 | cp >> 6);
				out[n++] = (char)(0x80 | (cp & 0x3f));
			} else {
				out[n++] = (char)(0xe0 | cp >> 12);
				out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				out[n++] = (char)(0x80 | (cp & 0x3f));
			}
			break;
		}
		default:
			goto bad;
		}
	}
	out[n] = '\0';
	ps->pos++; /* closing quote */
	return out;
bad:
	free(out);
	return NULL;
}

static struct tq_json *
parse_number(struct parser *ps)
{
	size_t start = ps->pos;
	struct tq_json *j;

	if (ps->pos < ps->len && ps->p[ps->pos] == '-')
		ps->pos++;
	if (ps->pos >= ps->len || ps->p[ps->pos] < '0' || ps->p[ps->pos] > '9')
		return NULL;
	while (ps->pos < ps->len && ps->p[ps->pos] && strchr("0123456789.eE+-", ps->p[ps->pos]))
		ps->pos++;
	j = node(TQ_JSON_NUMBER);
	if (!j)
		return NULL;
	j->text = strndup(ps->p + start, ps->pos - start);
	if (!j->text) {
		free(j);
		return NULL;
	}
	return j;
}

static struct tq_json *
parse_container(struct parser *ps, bool object)
{
	struct tq_json *j = node(object ? TQ_JSON_OBJECT : TQ_JSON_ARRAY), **tail;
	char close = object ? '}' : ']';

	if (!j)
		return NULL;
	tail = &j->child;
	ps->pos++;
	skip_ws(ps);
	if (ps->pos < ps->len && ps->p[ps->pos] == close) {
		ps->pos++;
		return j;
	}
	for (;;) {
		char *key = NULL;
		struct tq_json *v;

		skip_ws(ps);
		if (object) {
			if (ps->pos >= ps->len || ps->p[ps->pos] != '"')
				goto bad;
			key = parse_string(ps);
			if (!key)
				goto bad;
			skip_ws(ps);
			if (ps->pos >= ps->len || ps->p[ps->pos] != ':') {
				free(key);
				goto bad;
			}
			ps->pos++;
		}
		v = parse_value(ps);
		if (!v) {
			free(key);
			goto bad;
		}
		v->key = key;
		*tail = v;
		tail = &v->next;
		skip_ws(ps);
		if (ps->pos >= ps->len)
			goto bad;
		if (ps->p[ps->pos] == ',') {
			ps->pos++;
			continue;
		}
		if (ps->p[ps->pos] == close) {
			ps->pos++;
			return j;
		}
		goto bad;
	}
bad:
	tq_json_free(j);
	return NULL;
}

static struct tq_json *
parse_literal(struct parser *ps, const char *word, enum tq_json_type t, bool b)
{
	size_t n = strlen(word);
	struct tq_json *j;

	if (ps->len - ps->pos < n || memcmp(ps->p + ps->pos, word, n) != 0)
		return NULL;
	ps->pos += n;
	j = node(t);
	if (j)
		j->boolean = b;
	return j;
}

static struct tq_json *
parse_value(struct parser *ps)
{
	struct tq_json *j = NULL;

	skip_ws(ps);
	if (ps->pos >= ps->len || ++ps->depth > TQ_JSON_MAX_DEPTH)
		return NULL;
	switch (ps->p[ps->pos]) {
	case '{':
		j = parse_container(ps, true);
		break;
	case '[':
		j = parse_container(ps, false);
		break;
	case '"': {
		char *s = parse_string(ps);

		if (s && (j = node(TQ_JSON_STRING)) != NULL)
			j->text = s;
		else
			free(s);
		break;
	}
	case 't':
		j = parse_literal(ps, "true", TQ_JSON_BOOL, true);
		break;
	case 'f':
		j = parse_literal(ps, "false", TQ_JSON_BOOL, false);
		break;
	case 'n':
		j = parse_literal(ps, "null", TQ_JSON_NULL, false);
		break;
	default:
		j = parse_number(ps);
		break;
	}
	ps->depth--;
	return j;
}

struct tq_json *
tq_json_parse(const char *text, size_t len, size_t *err_pos)
{
	struct parser ps = {.p = text, .len = len};
	struct tq_json *j = parse_value(&ps);

	if (j) {
		skip_ws(&ps);
		if (ps.pos == ps.len)
			return j;
		tq_json_free(j);
	}
	if (err_pos)
		*err_pos = ps.pos;
	errno = EINVAL;
	return NULL;
}

void
tq_json_free(struct tq_json *j)
{
	while (j) {
		struct tq_json *next = j->next;

		tq_json_free(j->child);
		free(j->key);
		free(j->text);
		free(j);
		j = next;
	}
}

const struct tq_json *
tq_json_get(const struct tq_json *obj, const char *key)
{
	if (!obj || obj->type != TQ_JSON_OBJECT)
		return NULL;
	for (const struct tq_json *c = obj->child; c; c = c->next)
		if (c->key && strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

uint64_t
tq_json_u64(const struct tq_json *j)
{
	char *end;
	unsigned long long v;

	if (!j || j->type != TQ_JSON_NUMBER || j->text[0] == '-')
		return 0;
	v = strtoull(j->text, &end, 10);
	return *end == '\0' ? (uint64_t)v : 0;
}
