/*
 * libFuzzer driver for the MQTT filter algebra of tq_access.h: tq_access_filter_valid,
 * tq_access_topic_matches, tq_access_filter_covers and tq_access_filter_intersects.
 *
 * The input is up to three strings: a, up to the first 0x00 byte; b, up to the second; c,
 * the rest (it may hold 0x00 bytes, which filters allow). Each is an exact-size heap copy,
 * so ASan sees an over-read. Every answer is checked against what tq_access.h promises:
 *
 *   - validity: non-empty, at most 65535 bytes, '+' only as a whole level, '#' only as the
 *     whole last level; a topic has no wildcard at all;
 *   - matching: MQTT's (a '+' level matches one level, empty included; "x/#" matches "x"
 *     and everything under it), and a '+' or '#' first level never matches a topic that
 *     starts with '$' (MQTT 4.7.2);
 *   - covers(p, f): every topic f matches is matched by p; intersects(p, f): some topic is
 *     matched by both.
 *
 * The driver has its own matcher (ref_match, a direct reading of the above), a constructive
 * intersection (the one topic that both would match if any does) and, for covers, an
 * enumeration of the topics f matches taken one per class that p can tell apart (p's
 * literal at that depth, another word, the empty level at depth 0, one level more than p
 * has). When that enumeration is complete, covers is decided exactly; when it is cut short
 * (too many wildcards), only the topics it reached are checked. On top: the properties the
 * brief names, spelled out (covers(f, f); covers implies intersects; for a topic t,
 * matches(f, t) == covers(f, t) == intersects(f, t); intersects is symmetric; covers is
 * transitive). Any violation abort()s.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/tq_access.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond))                                                                   \
			abort();                                                               \
	} while (0)

#define MQTT_LEN_MAX 65535
#define WITNESS_MAX 512 /* topics made per covers check before giving up on exactness */
#define ENUM_LEN_MAX 4096 /* longer filters get the cheap checks only */

/* One string of the input, with its levels. */
struct lv {
	const char *p;
	size_t n;
};

struct str {
	char *p;      /* exact-size heap copy (NULL when len is 0) */
	size_t len;
	struct lv *lv;
	size_t nlv;
};

static bool
lv_is(const struct lv *l, char c)
{
	return l->n == 1 && l->p[0] == c;
}

static bool
lv_wild(const struct lv *l)
{
	return lv_is(l, '+') || lv_is(l, '#');
}

static bool
lv_eq(const struct lv *a, const struct lv *b)
{
	return a->n == b->n && !memcmp(a->p, b->p, a->n);
}

/* Split @p (@len bytes) at every '/' into @out (room for len + 1 levels); the count. */
static size_t
split(const char *p, size_t len, struct lv *out)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '/') {
			out[n].p = p + start;
			out[n].n = i - start;
			n++;
			start = i + 1;
		}
	}
	return n;
}

static void
str_init(struct str *s, const uint8_t *data, size_t len)
{
	s->len = len;
	s->p = len ? malloc(len) : NULL;
	s->lv = malloc((len + 1) * sizeof(*s->lv));
	CHECK(s->lv && (s->p || !len));
	if (len)
		memcpy(s->p, data, len);
	s->nlv = split(s->p ? s->p : "", len, s->lv);
}

static void
str_free(struct str *s)
{
	free(s->p);
	free(s->lv);
}

/* The header's validity rule, read directly. */
static bool
ref_valid(const struct lv *v, size_t nlv, size_t len, bool wild)
{
	if (!len || len > MQTT_LEN_MAX)
		return false;
	for (size_t i = 0; i < nlv; i++) {
		bool plus = memchr(v[i].p, '+', v[i].n), hash = memchr(v[i].p, '#', v[i].n);

		if (!wild && (plus || hash))
			return false;
		if (plus && v[i].n != 1)
			return false;
		if (hash && (v[i].n != 1 || i + 1 != nlv))
			return false;
	}
	return true;
}

/* Does valid filter @f match valid topic @t? MQTT 4.7, with 4.7.2's '$' rule. */
static bool
ref_match(const struct lv *f, size_t nf, const struct lv *t, size_t nt)
{
	if (lv_wild(&f[0]) && t[0].n && t[0].p[0] == '$')
		return false;
	for (size_t i = 0;; i++) {
		if (i == nf)
			return i == nt;
		if (lv_is(&f[i], '#'))
			return true; /* "x/#" matches "x" too */
		if (i == nt)
			return false;
		if (!lv_is(&f[i], '+') && !lv_eq(&f[i], &t[i]))
			return false;
	}
}

/* A topic assembled level by level. */
struct topic {
	char *p;
	size_t len, cap;
	struct lv *lv;
	size_t nlv, lv_cap;
};

static void
topic_push(struct topic *t, const char *p, size_t n)
{
	size_t need = t->len + (t->nlv ? 1 : 0) + n;

	CHECK(need <= t->cap && t->nlv < t->lv_cap);
	if (t->nlv)
		t->p[t->len++] = '/';
	memcpy(t->p + t->len, p, n);
	t->lv[t->nlv].p = NULL; /* set by topic_levels once the buffer is final */
	t->lv[t->nlv].n = n;
	t->len += n;
	t->nlv++;
}

/* Point the levels into the buffer (it is not moved, but levels are filled in late). */
static void
topic_levels(struct topic *t)
{
	size_t off = 0;

	for (size_t i = 0; i < t->nlv; i++) {
		t->lv[i].p = t->p + off;
		off += t->lv[i].n + 1;
	}
}

static void
topic_pop(struct topic *t, size_t len, size_t nlv)
{
	t->len = len;
	t->nlv = nlv;
}

static void
topic_alloc(struct topic *t, size_t cap, size_t lv_cap)
{
	t->p = malloc(cap ? cap : 1);
	t->lv = malloc(lv_cap * sizeof(*t->lv));
	CHECK(t->p && t->lv);
	t->cap = cap;
	t->lv_cap = lv_cap;
	t->len = 0;
	t->nlv = 0;
}

static void
topic_free(struct topic *t)
{
	free(t->p);
	free(t->lv);
}

/* The library's answer for a topic the driver built, checked against ref_match. */
static bool
lib_match_checked(const struct str *f, const struct topic *t)
{
	bool lib = tq_access_topic_matches(f->p, f->len, t->p, t->len);
	bool ref = ref_valid(t->lv, t->nlv, t->len, false) && ref_match(f->lv, f->nlv, t->lv, t->nlv);

	CHECK(lib == ref);
	return lib;
}

/*
 * Is there a topic both valid filters @a and @b match? Where both have a wildcard the
 * common topic takes "x" (not empty, no '$': the choice that excludes least); where one has
 * a literal, that literal; from a '#' on, the other's remaining levels. Any common topic
 * differs from this one only in places where that choice cannot make it worse, so the
 * answer is exact.
 */
static bool
ref_intersects(const struct str *a, const struct str *b)
{
	struct topic t;
	bool ok = true;

	topic_alloc(&t, a->len + b->len + a->nlv + b->nlv + 2, a->nlv + b->nlv + 1);
	for (size_t i = 0;; i++) {
		bool aend = i == a->nlv, bend = i == b->nlv;
		const struct str *rest = NULL;

		if (aend && bend)
			break;
		if (!aend && lv_is(&a->lv[i], '#'))
			rest = b;
		else if (!bend && lv_is(&b->lv[i], '#'))
			rest = a;
		if (rest) {
			for (size_t j = i; j < rest->nlv; j++) {
				if (lv_wild(&rest->lv[j]))
					topic_push(&t, "x", 1);
				else
					topic_push(&t, rest->lv[j].p, rest->lv[j].n);
			}
			break;
		}
		if (aend || bend) {
			ok = false; /* one has more levels and no '#' to absorb them */
			break;
		}
		if (!lv_wild(&a->lv[i]))
			topic_push(&t, a->lv[i].p, a->lv[i].n);
		else if (!lv_wild(&b->lv[i]))
			topic_push(&t, b->lv[i].p, b->lv[i].n);
		else
			topic_push(&t, "x", 1);
	}
	topic_levels(&t);
	ok = ok && ref_valid(t.lv, t.nlv, t.len, false) &&
	     ref_match(a->lv, a->nlv, t.lv, t.nlv) && ref_match(b->lv, b->nlv, t.lv, t.nlv);
	topic_free(&t);
	return ok;
}

/* ---- covers: the topics @b matches, one per class that @a can tell apart ---- */

struct cover_walk {
	const struct str *a, *b;
	struct topic t;
	size_t count;   /* topics made */
	size_t matched; /* of which valid: b matches them all */
	bool truncated; /* more than WITNESS_MAX topics: the search is not exhaustive */
	bool escaped;   /* a topic b matches that a does not */
};

/* A word for depth @d that differs from @a's literal there. */
static const char *
generic_word(const struct str *a, size_t d)
{
	if (d < a->nlv && a->lv[d].n == 1 && a->lv[d].p[0] == 'z')
		return "zz";
	return "z";
}

static void
walk_done(struct cover_walk *w)
{
	if (w->truncated)
		return;
	if (++w->count > WITNESS_MAX) {
		w->truncated = true;
		return;
	}
	topic_levels(&w->t);
	if (!ref_valid(w->t.lv, w->t.nlv, w->t.len, false))
		return; /* "": the only topic the walk makes that is not one */
	w->matched++;
	CHECK(ref_match(w->b->lv, w->b->nlv, w->t.lv, w->t.nlv));
	CHECK(lib_match_checked(w->b, &w->t));
	if (!lib_match_checked(w->a, &w->t))
		w->escaped = true;
}

static void walk_level(struct cover_walk *w, size_t bi);

/* The levels a wildcard at depth @d may take: @a's literal, another word, "" at depth 0. */
static void
walk_options(struct cover_walk *w, size_t d, void (*next)(struct cover_walk *, size_t, size_t),
	     size_t arg)
{
	size_t len = w->t.len, nlv = w->t.nlv;
	const char *g = generic_word(w->a, d);

	/* b's wildcard here takes no '$' first level: a literal of a that has one is no option */
	if (d < w->a->nlv && !lv_wild(&w->a->lv[d]) &&
	    !(d == 0 && w->a->lv[0].n && w->a->lv[0].p[0] == '$')) {
		topic_push(&w->t, w->a->lv[d].p, w->a->lv[d].n);
		next(w, d + 1, arg);
		topic_pop(&w->t, len, nlv);
	}
	topic_push(&w->t, g, strlen(g));
	next(w, d + 1, arg);
	topic_pop(&w->t, len, nlv);
	if (d == 0) {
		topic_push(&w->t, "", 0);
		next(w, d + 1, arg);
		topic_pop(&w->t, len, nlv);
	}
}

/* After b's '#': @left more levels from depth @d. */
static void
walk_tail(struct cover_walk *w, size_t d, size_t left)
{
	if (w->truncated)
		return;
	if (!left) {
		walk_done(w);
		return;
	}
	walk_options(w, d, walk_tail, left - 1);
}

static void
walk_plus_next(struct cover_walk *w, size_t d, size_t bi)
{
	(void)d;
	walk_level(w, bi);
}

/* b's level @bi (its depth, since b's levels are taken one for one until a '#'). */
static void
walk_level(struct cover_walk *w, size_t bi)
{
	const struct lv *l;

	if (w->truncated)
		return;
	if (bi == w->b->nlv) {
		walk_done(w);
		return;
	}
	l = &w->b->lv[bi];
	if (lv_is(l, '#')) {
		/* the parent (not at depth 0), then 1 .. one level past a's length */
		size_t most = w->a->nlv + 1 > bi ? w->a->nlv + 1 - bi : 1;

		for (size_t k = bi ? 0 : 1; k <= most && !w->truncated; k++)
			walk_tail(w, bi, k);
	} else if (lv_is(l, '+')) {
		walk_options(w, bi, walk_plus_next, bi + 1);
	} else {
		size_t len = w->t.len, nlv = w->t.nlv;

		topic_push(&w->t, l->p, l->n);
		walk_level(w, bi + 1);
		topic_pop(&w->t, len, nlv);
	}
}

/* Check covers(a, b) against the topics b matches. Both are valid filters. */
static void
check_covers(const struct str *a, const struct str *b, bool covers)
{
	struct cover_walk w = {.a = a, .b = b};
	/* b's levels, the '#' expansion (a's depth + 1), each level at most max(a, "zz") */
	size_t nlv = b->nlv + a->nlv + 2;

	if (a->len > ENUM_LEN_MAX || b->len > ENUM_LEN_MAX)
		return;
	topic_alloc(&w.t, b->len + a->len + 3 * nlv + 2, nlv);
	walk_level(&w, 0);
	topic_free(&w.t);
	CHECK(w.matched > 0 || w.truncated); /* every valid filter matches some topic */
	if (covers)
		CHECK(!w.escaped);
	else if (!w.truncated)
		CHECK(w.escaped);
}

/* Every check on the ordered pair (@a, @b). */
static void
check_pair(const struct str *a, const struct str *b)
{
	bool av = ref_valid(a->lv, a->nlv, a->len, true), bv = ref_valid(b->lv, b->nlv, b->len, true);
	bool bt = ref_valid(b->lv, b->nlv, b->len, false);
	bool m = tq_access_topic_matches(a->p, a->len, b->p, b->len);
	bool c = tq_access_filter_covers(a->p, a->len, b->p, b->len);
	bool x = tq_access_filter_intersects(a->p, a->len, b->p, b->len);

	CHECK(m == (av && bt && ref_match(a->lv, a->nlv, b->lv, b->nlv)));
	CHECK(x == tq_access_filter_intersects(b->p, b->len, a->p, a->len));
	if (!av || !bv) {
		CHECK(!c && !x); /* false for an invalid argument */
		return;
	}
	CHECK(x == ref_intersects(a, b));
	if (c)
		CHECK(x); /* b matches some topic, and a matches it too */
	if (bt)
		CHECK(m == c && m == x); /* a topic matches itself only */
	check_covers(a, b, c);
}

static void
check_one(const struct str *s)
{
	bool v = tq_access_filter_valid(s->p, s->len);

	CHECK(v == ref_valid(s->lv, s->nlv, s->len, true));
	if (!v)
		return;
	CHECK(tq_access_filter_covers(s->p, s->len, s->p, s->len));
	CHECK(tq_access_filter_intersects(s->p, s->len, s->p, s->len));
	if (ref_valid(s->lv, s->nlv, s->len, false))
		CHECK(tq_access_topic_matches(s->p, s->len, s->p, s->len));
}

static void
check_triple(const struct str *a, const struct str *b, const struct str *c)
{
	bool ab = tq_access_filter_covers(a->p, a->len, b->p, b->len);
	bool bc = tq_access_filter_covers(b->p, b->len, c->p, c->len);

	if (ab && bc)
		CHECK(tq_access_filter_covers(a->p, a->len, c->p, c->len));
	/* a topic that both b and c match is one a matches */
	if (ab && tq_access_filter_intersects(b->p, b->len, c->p, c->len))
		CHECK(tq_access_filter_intersects(a->p, a->len, c->p, c->len));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *z1 = memchr(data, 0, size), *z2 = NULL;
	struct str a, b, c;
	size_t alen, blen;

	/* no 0x00 at all: a is the whole input, b is empty */
	alen = z1 ? (size_t)(z1 - data) : size;
	if (z1)
		z2 = memchr(z1 + 1, 0, size - alen - 1);
	blen = !z1 ? 0 : z2 ? (size_t)(z2 - z1 - 1) : size - alen - 1;
	str_init(&a, data, alen);
	str_init(&b, z1 ? z1 + 1 : data + size, blen);
	check_one(&a);
	check_one(&b);
	check_pair(&a, &b);
	check_pair(&b, &a);
	if (z2) {
		str_init(&c, z2 + 1, size - (size_t)(z2 + 1 - data));
		check_one(&c);
		check_pair(&a, &c);
		check_pair(&c, &a);
		check_triple(&a, &b, &c);
		check_triple(&c, &b, &a);
		str_free(&c);
	}
	str_free(&a);
	str_free(&b);
	return 0;
}
