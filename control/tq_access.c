/*
 * Access rules: the control thread's db of definitions and the immutable snapshots the
 * workers check against (see tq_access.h for the rules).
 *
 * db: every definition is a struct rec (up to five strings in one allocation). Vhosts,
 * permissions and topic permissions live in arrays sorted by their key (binary search;
 * insertion and removal move pointers), ACL rules in an array in insertion order plus an
 * index sorted by (user, pattern) for replace, clear and forget_user.
 *
 * snapshot: one allocation per table and one string arena. Permissions and topic permissions
 * are sorted by key as in the db, so a check is a binary search; each distinct expression is
 * compiled once (most users share ".*") and ".*" itself never reaches regexec. ACL rules are
 * split into everyone's and, per user, the user's own (a sorted table of users).
 */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <urcu/urcu-qsbr.h>

#include "tq_access.h"

/*
 * regexec must see a name of known length that need not be NUL-terminated and may hold
 * any byte: glibc's (and the BSDs') REG_STARTEND. Without it we would have to copy every
 * name into a bounded buffer; tachyon needs glibc for DPDK anyway.
 */
#ifndef REG_STARTEND
#error "tq_access needs regexec's REG_STARTEND (glibc, BSD libc)"
#endif

#define RE_FLAGS     (REG_EXTENDED | REG_NOSUB)
#define REC_NSTR     5
#define MQTT_LEN_MAX 65535
/* Expanded topic-permission expressions up to this size are built on the stack. */
#define EXPAND_STACK 512

struct tq_access *tq_access_cur;

/* ---- db records and sorted tables ---------------------------------------------------- */

/* One definition: its strings (unused ones NULL) in the same allocation. */
struct rec {
	enum tq_acl_access access; /* ACL rules only */
	const char *s[REC_NSTR];
	char buf[];
};

/* Records sorted by their first nkey strings (strcmp order). */
struct rtab {
	struct rec **v;
	size_t n, cap;
	unsigned int nkey;
};

struct tq_access_db {
	struct rtab vhosts;     /* (name) */
	struct rtab perms;      /* (user, vhost, configure, write, read) */
	struct rtab tperms;     /* (user, vhost, exchange, write, read) */
	struct rtab acl_idx;    /* (user, pattern): the records of acl_order, by key */
	struct rec **acl_order; /* insertion order; owns the ACL records */
	size_t nacl, acl_cap;
};

static struct rec *
rec_new(const char *const *s, unsigned int n, enum tq_acl_access access)
{
	size_t len[REC_NSTR], total = 0;
	struct rec *r;
	char *p;

	for (unsigned int i = 0; i < n; i++) {
		len[i] = strlen(s[i]) + 1;
		total += len[i];
	}
	r = calloc(1, sizeof(*r) + total);
	if (!r)
		return NULL;
	r->access = access;
	p = r->buf;
	for (unsigned int i = 0; i < n; i++) {
		memcpy(p, s[i], len[i]);
		r->s[i] = p;
		p += len[i];
	}
	return r;
}

static int
rec_cmp(const struct rec *r, const char *const *key, unsigned int nkey)
{
	for (unsigned int i = 0; i < nkey; i++) {
		int c = strcmp(r->s[i], key[i]);

		if (c)
			return c;
	}
	return 0;
}

/* Index of the first record whose first @nkey strings are >= @key. */
static size_t
rtab_lower(const struct rtab *t, const char *const *key, unsigned int nkey)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rec_cmp(t->v[mid], key, nkey) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the record with exactly @key (t->nkey strings), or -1. */
static ssize_t
rtab_find(const struct rtab *t, const char *const *key)
{
	size_t i = rtab_lower(t, key, t->nkey);

	if (i < t->n && !rec_cmp(t->v[i], key, t->nkey))
		return (ssize_t)i;
	return -1;
}

/* @v (of *@cap elements of @size) with room for @need; NULL (v kept) on ENOMEM. */
static void *
grow(void *v, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 8;
	void *nv;

	if (need <= *cap)
		return v;
	while (ncap < need)
		ncap *= 2;
	nv = realloc(v, ncap * size);
	if (nv)
		*cap = ncap;
	return nv;
}

static int
rtab_insert_at(struct rtab *t, size_t i, struct rec *r)
{
	struct rec **v = grow(t->v, &t->cap, t->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	t->v = v;
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(t->v[0]));
	t->v[i] = r;
	t->n++;
	return 0;
}

/* Insert @r, or replace (and free) the record with the same key. 0 or -ENOMEM (r freed). */
static int
rtab_put(struct rtab *t, struct rec *r)
{
	size_t i = rtab_lower(t, r->s, t->nkey);

	if (i < t->n && !rec_cmp(t->v[i], r->s, t->nkey)) {
		free(t->v[i]);
		t->v[i] = r;
		return 0;
	}
	if (rtab_insert_at(t, i, r)) {
		free(r);
		return -ENOMEM;
	}
	return 0;
}

/* Remove records [i, j); free them when @owner. */
static void
rtab_cut(struct rtab *t, size_t i, size_t j, bool owner)
{
	if (owner)
		for (size_t k = i; k < j; k++)
			free(t->v[k]);
	if (j < t->n) /* an empty table has no array: memmove(NULL, ...) is undefined */
		memmove(&t->v[i], &t->v[j], (t->n - j) * sizeof(t->v[0]));
	t->n -= j - i;
}

/* Remove (and free) every record for which @drop says so; keeps the order. */
static size_t
rtab_filter(struct rtab *t, bool (*drop)(const struct rec *, const void *), const void *arg)
{
	size_t w = 0, n0 = t->n;

	for (size_t i = 0; i < t->n; i++) {
		if (drop(t->v[i], arg))
			free(t->v[i]);
		else
			t->v[w++] = t->v[i];
	}
	t->n = w;
	return n0 - w;
}

static void
rtab_free(struct rtab *t, bool owner)
{
	if (owner)
		for (size_t i = 0; i < t->n; i++)
			free(t->v[i]);
	free(t->v);
}

/* ---- expressions ------------------------------------------------------------------- */

static const char *const var_name[] = {"{username}", "{vhost}", "{client_id}"};

static bool
is_re_meta(char c)
{
	return c && strchr(".[]()*+?{}|^$\\", c);
}

/* The value of variable @v for @who; NULL @who: "x" (to validate an expression). */
static const char *
var_value(const struct tq_access_who *who, unsigned int v)
{
	const char *s;

	if (!who)
		return "x";
	s = v == 0 ? who->user : v == 1 ? who->vhost : who->client_id;
	return s ? s : "";
}

static bool
has_vars(const char *src)
{
	for (unsigned int v = 0; v < 3; v++)
		if (strstr(src, var_name[v]))
			return true;
	return false;
}

/* Append @c to @out (@cap bytes) at *@n if it fits; counts it either way. */
static void
put(char *out, size_t cap, size_t *n, char c)
{
	if (*n + 1 < cap)
		out[*n] = c;
	(*n)++;
}

/*
 * Expand the variables of @src with @who's values, regex metacharacters escaped, into
 * @out (@cap > 0 bytes, NUL-terminated, cut short when it does not fit). Returns the length
 * the whole expansion needs, without the NUL.
 */
static size_t
expand(const char *src, const struct tq_access_who *who, char *out, size_t cap)
{
	size_t n = 0;

	while (*src) {
		unsigned int v;
		size_t vl = 0;

		for (v = 0; v < 3; v++) {
			vl = strlen(var_name[v]);
			if (!strncmp(src, var_name[v], vl))
				break;
		}
		if (v == 3) {
			put(out, cap, &n, *src++);
			continue;
		}
		for (const char *s = var_value(who, v); *s; s++) {
			if (is_re_meta(*s))
				put(out, cap, &n, '\\');
			put(out, cap, &n, *s);
		}
		src += vl;
	}
	out[n < cap ? n : cap - 1] = '\0';
	return n;
}

/* Compile @src (as a topic permission when @vars) to see whether it is valid. 0 or -EINVAL. */
static int
validate_re(const char *src, bool vars, char *err, size_t errlen)
{
	char stack[EXPAND_STACK], *heap = NULL;
	const char *text = src;
	regex_t re;
	int rc;

	if (!*src)
		return 0;
	if (vars && has_vars(src)) {
		size_t need = expand(src, NULL, stack, sizeof(stack));

		if (need >= sizeof(stack)) {
			heap = malloc(need + 1);
			if (!heap)
				return -ENOMEM;
			expand(src, NULL, heap, need + 1);
		}
		text = heap ? heap : stack;
	}
	rc = regcomp(&re, text, RE_FLAGS);
	free(heap);
	if (rc) {
		if (err && errlen)
			regerror(rc, &re, err, errlen);
		return rc == REG_ESPACE ? -ENOMEM : -EINVAL;
	}
	regfree(&re);
	return 0;
}

/* ---- MQTT filters -------------------------------------------------------------------- */

/* Walks the '/'-separated levels of a topic or filter. */
struct levels {
	const char *s;
	size_t len, pos;
	bool done;
};

static void
levels_init(struct levels *l, const char *s, size_t len)
{
	*l = (struct levels){.s = s, .len = len};
}

/* The next level into (@p, @n); false when there is none. */
static bool
levels_next(struct levels *l, const char **p, size_t *n)
{
	const char *slash;

	if (l->done)
		return false;
	*p = l->s + l->pos;
	slash = memchr(*p, '/', l->len - l->pos);
	if (slash) {
		*n = (size_t)(slash - *p);
		l->pos += *n + 1;
	} else {
		*n = l->len - l->pos;
		l->done = true;
	}
	return true;
}

static bool
is_lv(const char *p, size_t n, char c)
{
	return n == 1 && p[0] == c;
}

/* A valid MQTT filter (topic when !@wild): non-empty, '#' last and alone, '+' alone. */
static bool
filter_valid(const char *f, size_t len, bool wild)
{
	struct levels l;
	const char *p;
	size_t n;

	if (!f || !len || len > MQTT_LEN_MAX)
		return false;
	levels_init(&l, f, len);
	while (levels_next(&l, &p, &n)) {
		bool plus = memchr(p, '+', n), hash = memchr(p, '#', n);

		if (!wild && (plus || hash))
			return false;
		if ((plus && n != 1) || (hash && (n != 1 || !l.done)))
			return false;
	}
	return true;
}

/*
 * The values "%u" and "%c" stand for in ACL patterns. A NULL value: rules using it do not
 * apply. A bad value (with '/', '+' or '#') would widen the pattern: a granting rule using
 * it grants nothing, a denying one denies everything.
 */
struct subst {
	const char *u, *c;
	size_t ulen, clen;
	bool ubad, cbad;
};

static void
subst_init(struct subst *x, const struct tq_access_who *who)
{
	*x = (struct subst){.u = who->user, .c = who->client_id};
	if (x->u) {
		x->ulen = strlen(x->u);
		x->ubad = strpbrk(x->u, "/+#") != NULL;
	}
	if (x->c) {
		x->clen = strlen(x->c);
		x->cbad = strpbrk(x->c, "/+#") != NULL;
	}
}

/* Is "%u" or "%c" at t[i] (of @n), with @x substituting? Sets the value. */
static bool
subst_at(const char *t, size_t n, size_t i, const struct subst *x, const char **v, size_t *vl)
{
	if (!x || t[i] != '%' || i + 1 >= n)
		return false;
	if (t[i + 1] == 'u' && x->u) {
		*v = x->u;
		*vl = x->ulen;
		return true;
	}
	if (t[i + 1] == 'c' && x->c) {
		*v = x->c;
		*vl = x->clen;
		return true;
	}
	return false;
}

/* Does pattern level @t (%u and %c substituted when @x) equal topic level @s? */
static bool
tmpl_eq(const char *t, size_t tn, const char *s, size_t sn, const struct subst *x)
{
	size_t i = 0, j = 0;

	while (i < tn) {
		const char *v;
		size_t vl;

		if (subst_at(t, tn, i, x, &v, &vl)) {
			if (sn - j < vl || memcmp(s + j, v, vl))
				return false;
			j += vl;
			i += 2;
		} else {
			if (j >= sn || s[j] != t[i])
				return false;
			i++;
			j++;
		}
	}
	return j == sn;
}

/* Does pattern level @t, substituted, start with '$'? */
static bool
tmpl_dollar(const char *t, size_t tn, const struct subst *x)
{
	for (size_t i = 0; i < tn;) {
		const char *v;
		size_t vl;

		if (!subst_at(t, tn, i, x, &v, &vl))
			return t[i] == '$';
		if (vl)
			return v[0] == '$';
		i += 2;
	}
	return false;
}

static bool
lit_dollar(const char *p, size_t n)
{
	return n && p[0] == '$' && !is_lv(p, n, '+') && !is_lv(p, n, '#');
}

/* Does pattern @p match topic @t? (4.7.2: wildcards first never match a '$' topic.) */
static bool
pat_match(const char *p, size_t plen, const char *t, size_t tlen, const struct subst *x)
{
	struct levels lp, lt;
	const char *pl, *tl;
	size_t pn, tn;
	bool first = true;

	levels_init(&lp, p, plen);
	levels_init(&lt, t, tlen);
	for (;; first = false) {
		bool tmore;

		if (!levels_next(&lp, &pl, &pn))
			return !levels_next(&lt, &tl, &tn);
		tmore = levels_next(&lt, &tl, &tn);
		if (is_lv(pl, pn, '#'))
			return !(first && tmore && tn && tl[0] == '$');
		if (!tmore)
			return false;
		if (is_lv(pl, pn, '+')) {
			if (first && tn && tl[0] == '$')
				return false;
		} else if (!tmpl_eq(pl, pn, tl, tn, x)) {
			return false;
		}
	}
}

/*
 * A topic has at least one level and is never "" (one empty level), so a '#' that is the
 * first level, or follows an empty first level, has no parent to match: there it means
 * "+/#". The filter algebra below is exact over valid topics only.
 */

/* Does pattern @p match every topic filter @f matches? */
static bool
pat_covers(const char *p, size_t plen, const char *f, size_t flen, const struct subst *x)
{
	struct levels lp, lf;
	const char *pl, *fl;
	size_t pn, fn;
	bool f0_empty = false;

	levels_init(&lp, p, plen);
	levels_init(&lf, f, flen);
	for (unsigned int depth = 0;; depth++) {
		bool fmore;

		if (!levels_next(&lp, &pl, &pn))
			return !levels_next(&lf, &fl, &fn);
		fmore = levels_next(&lf, &fl, &fn);
		if (is_lv(pl, pn, '#'))
			return !(depth == 0 && fmore && lit_dollar(fl, fn));
		if (!fmore)
			return false;
		if (is_lv(fl, fn, '#')) {
			/* only "+/#" covers a parentless "#" */
			if ((depth > 1 || (depth == 1 && !f0_empty)) || !is_lv(pl, pn, '+'))
				return false;
			return levels_next(&lp, &pl, &pn) && is_lv(pl, pn, '#');
		}
		if (depth == 0)
			f0_empty = fn == 0;
		if (is_lv(pl, pn, '+')) {
			if (depth == 0 && lit_dollar(fl, fn))
				return false;
		} else if (is_lv(fl, fn, '+') || !tmpl_eq(pl, pn, fl, fn, x)) {
			return false;
		}
	}
}

/* Does pattern level @t, substituted, have no character at all? */
static bool
tmpl_empty(const char *t, size_t tn, const struct subst *x)
{
	for (size_t i = 0; i < tn; i += 2) {
		const char *v;
		size_t vl;

		if (!subst_at(t, tn, i, x, &v, &vl) || vl)
			return false;
	}
	return true;
}

/* Is there a topic that both pattern @p and filter @f match? */
static bool
pat_intersects(const char *p, size_t plen, const char *f, size_t flen, const struct subst *x)
{
	struct levels lp, lf;
	const char *pl = NULL, *fl = NULL;
	size_t pn = 0, fn = 0;
	bool empty0 = false; /* the first level of any common topic is empty */

	levels_init(&lp, p, plen);
	levels_init(&lf, f, flen);
	for (unsigned int depth = 0;; depth++) {
		bool pmore = levels_next(&lp, &pl, &pn);
		bool fmore = levels_next(&lf, &fl, &fn);
		bool pw = pmore && (is_lv(pl, pn, '+') || is_lv(pl, pn, '#'));
		bool fw = fmore && (is_lv(fl, fn, '+') || is_lv(fl, fn, '#'));
		bool phash = pmore && is_lv(pl, pn, '#'), fhash = fmore && is_lv(fl, fn, '#');

		/* a wildcard first level picks no '$' topic: the other must not insist on one */
		if (depth == 0 && pw && fmore && !fw && lit_dollar(fl, fn))
			return false;
		if (depth == 0 && fw && pmore && !pw && tmpl_dollar(pl, pn, x))
			return false;
		if (phash || fhash) {
			/* the only common topic would be the parent "", which is none */
			if (depth == 1 && empty0 && (!pmore || !fmore))
				return false;
			return true;
		}
		if (!pmore || !fmore)
			return pmore == fmore;
		if (depth == 0)
			empty0 = (!pw && tmpl_empty(pl, pn, x)) || (!fw && !fn);
		if (!pw && !fw && !tmpl_eq(pl, pn, fl, fn, x))
			return false;
	}
}

bool
tq_access_filter_valid(const char *filter, size_t len)
{
	return filter_valid(filter, len, true);
}

bool
tq_access_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen)
{
	return filter_valid(filter, flen, true) && filter_valid(topic, tlen, false) &&
	       pat_match(filter, flen, topic, tlen, NULL);
}

bool
tq_access_filter_covers(const char *pattern, size_t plen, const char *filter, size_t flen)
{
	return filter_valid(pattern, plen, true) && filter_valid(filter, flen, true) &&
	       pat_covers(pattern, plen, filter, flen, NULL);
}

bool
tq_access_filter_intersects(const char *pattern, size_t plen, const char *filter, size_t flen)
{
	return filter_valid(pattern, plen, true) && filter_valid(filter, flen, true) &&
	       pat_intersects(pattern, plen, filter, flen, NULL);
}

/* ---- the db ---------------------------------------------------------------------------- */

struct tq_access_db *
tq_access_db_new(void)
{
	struct tq_access_db *db = calloc(1, sizeof(*db));

	if (!db) {
		errno = ENOMEM;
		return NULL;
	}
	db->vhosts.nkey = 1;
	db->perms.nkey = 2;
	db->tperms.nkey = 3;
	db->acl_idx.nkey = 2;
	return db;
}

void
tq_access_db_free(struct tq_access_db *db)
{
	if (!db)
		return;
	rtab_free(&db->vhosts, true);
	rtab_free(&db->perms, true);
	rtab_free(&db->tperms, true);
	rtab_free(&db->acl_idx, false);
	for (size_t i = 0; i < db->nacl; i++)
		free(db->acl_order[i]);
	free(db->acl_order);
	free(db);
}

int
tq_access_vhost_add(struct tq_access_db *db, const char *name)
{
	struct rec *r;
	size_t len, i;

	if (!db || !name)
		return -EINVAL;
	len = strlen(name);
	if (!len || len > TQ_VHOST_NAME_MAX)
		return -EINVAL;
	i = rtab_lower(&db->vhosts, &name, 1);
	if (i < db->vhosts.n && !strcmp(db->vhosts.v[i]->s[0], name))
		return -EEXIST;
	r = rec_new(&name, 1, 0);
	if (!r)
		return -ENOMEM;
	if (rtab_insert_at(&db->vhosts, i, r)) {
		free(r);
		return -ENOMEM;
	}
	return 0;
}

static bool
rec_in_vhost(const struct rec *r, const void *vhost)
{
	return !strcmp(r->s[1], vhost);
}

int
tq_access_vhost_delete(struct tq_access_db *db, const char *name)
{
	ssize_t i;

	if (!db || !name)
		return -EINVAL;
	i = rtab_find(&db->vhosts, &name);
	if (i < 0)
		return -ENOENT;
	rtab_filter(&db->perms, rec_in_vhost, name);
	rtab_filter(&db->tperms, rec_in_vhost, name);
	rtab_cut(&db->vhosts, (size_t)i, (size_t)i + 1, true);
	return 0;
}

bool
tq_access_vhost_exists(const struct tq_access_db *db, const char *name)
{
	return db && name && rtab_find(&db->vhosts, &name) >= 0;
}

int
tq_access_set_permissions(struct tq_access_db *db, const char *user, const char *vhost,
			  const char *configure, const char *write, const char *read, char *err,
			  size_t errlen)
{
	const char *s[REC_NSTR] = {user, vhost, configure, write, read};
	struct rec *r;
	int rc;

	if (!db || !user || !*user || !vhost || !configure || !write || !read)
		return -EINVAL;
	if (!tq_access_vhost_exists(db, vhost))
		return -ENOENT;
	for (unsigned int i = 2; i < REC_NSTR; i++) {
		rc = validate_re(s[i], false, err, errlen);
		if (rc)
			return rc;
	}
	r = rec_new(s, REC_NSTR, 0);
	if (!r)
		return -ENOMEM;
	return rtab_put(&db->perms, r);
}

int
tq_access_clear_permissions(struct tq_access_db *db, const char *user, const char *vhost)
{
	const char *key[2] = {user, vhost};
	ssize_t i;

	if (!db || !user || !vhost)
		return -EINVAL;
	i = rtab_find(&db->perms, key);
	if (i < 0)
		return -ENOENT;
	rtab_cut(&db->perms, (size_t)i, (size_t)i + 1, true);
	return 0;
}

int
tq_access_set_topic_permissions(struct tq_access_db *db, const char *user, const char *vhost,
				const char *exchange, const char *write, const char *read,
				char *err, size_t errlen)
{
	const char *s[REC_NSTR] = {user, vhost, exchange, write, read};
	struct rec *r;
	int rc;

	if (!db || !user || !*user || !vhost || !exchange || !write || !read)
		return -EINVAL;
	if (!tq_access_vhost_exists(db, vhost))
		return -ENOENT;
	for (unsigned int i = 3; i < REC_NSTR; i++) {
		rc = validate_re(s[i], true, err, errlen);
		if (rc)
			return rc;
	}
	r = rec_new(s, REC_NSTR, 0);
	if (!r)
		return -ENOMEM;
	return rtab_put(&db->tperms, r);
}

int
tq_access_clear_topic_permissions(struct tq_access_db *db, const char *user, const char *vhost,
				  const char *exchange)
{
	const char *key[3] = {user, vhost, exchange};
	unsigned int nkey = exchange ? 3 : 2;
	size_t i, j;

	if (!db || !user || !vhost)
		return -EINVAL;
	i = rtab_lower(&db->tperms, key, nkey);
	for (j = i; j < db->tperms.n && !rec_cmp(db->tperms.v[j], key, nkey); j++)
		;
	if (i == j)
		return -ENOENT;
	rtab_cut(&db->tperms, i, j, true);
	return 0;
}

int
tq_access_set_acl(struct tq_access_db *db, const char *user, const char *pattern,
		  enum tq_acl_access access)
{
	const char *s[2] = {user ? user : "", pattern};
	struct rec *r, **order;
	size_t i;

	if (!db || !pattern || !filter_valid(pattern, strlen(pattern), true) ||
	    (unsigned int)access > TQ_ACL_READWRITE)
		return -EINVAL;
	i = rtab_lower(&db->acl_idx, s, 2);
	if (i < db->acl_idx.n && !rec_cmp(db->acl_idx.v[i], s, 2)) {
		db->acl_idx.v[i]->access = access; /* keeps its place in acl_order */
		return 0;
	}
	order = grow(db->acl_order, &db->acl_cap, db->nacl + 1, sizeof(*order));
	if (!order)
		return -ENOMEM;
	db->acl_order = order;
	r = rec_new(s, 2, access);
	if (!r)
		return -ENOMEM;
	if (rtab_insert_at(&db->acl_idx, i, r)) {
		free(r);
		return -ENOMEM;
	}
	db->acl_order[db->nacl++] = r;
	return 0;
}

static void
acl_order_drop(struct tq_access_db *db, bool (*drop)(const struct rec *, const void *),
	       const void *arg)
{
	size_t w = 0;

	for (size_t i = 0; i < db->nacl; i++) {
		if (drop(db->acl_order[i], arg))
			free(db->acl_order[i]);
		else
			db->acl_order[w++] = db->acl_order[i];
	}
	db->nacl = w;
}

static bool
rec_is(const struct rec *r, const void *which)
{
	return r == which;
}

int
tq_access_clear_acl(struct tq_access_db *db, const char *user, const char *pattern)
{
	const char *key[2] = {user ? user : "", pattern};
	struct rec *r;
	ssize_t i;

	if (!db || !pattern)
		return -EINVAL;
	i = rtab_find(&db->acl_idx, key);
	if (i < 0)
		return -ENOENT;
	r = db->acl_idx.v[i];
	rtab_cut(&db->acl_idx, (size_t)i, (size_t)i + 1, false);
	acl_order_drop(db, rec_is, r);
	return 0;
}

static bool
rec_of_user(const struct rec *r, const void *user)
{
	return !strcmp(r->s[0], user);
}

void
tq_access_forget_user(struct tq_access_db *db, const char *user)
{
	struct rtab *owned[2];
	size_t i, j;

	if (!db || !user || !*user) /* "" is everyone's ACL rules, never a user */
		return;
	owned[0] = &db->perms;
	owned[1] = &db->tperms;
	for (unsigned int k = 0; k < 2; k++) {
		i = rtab_lower(owned[k], &user, 1);
		for (j = i; j < owned[k]->n && !strcmp(owned[k]->v[j]->s[0], user); j++)
			;
		rtab_cut(owned[k], i, j, true);
	}
	i = rtab_lower(&db->acl_idx, &user, 1);
	for (j = i; j < db->acl_idx.n && !strcmp(db->acl_idx.v[j]->s[0], user); j++)
		;
	if (i < j) {
		rtab_cut(&db->acl_idx, i, j, false);
		acl_order_drop(db, rec_of_user, user);
	}
}

size_t
tq_access_vhost_count(const struct tq_access_db *db)
{
	return db ? db->vhosts.n : 0;
}

const char *
tq_access_vhost_at(const struct tq_access_db *db, size_t i)
{
	return db && i < db->vhosts.n ? db->vhosts.v[i]->s[0] : NULL;
}

size_t
tq_access_perm_count(const struct tq_access_db *db)
{
	return db ? db->perms.n : 0;
}

int
tq_access_perm_at(const struct tq_access_db *db, size_t i, struct tq_access_perm *out)
{
	const struct rec *r;

	if (!db || !out || i >= db->perms.n)
		return -ENOENT;
	r = db->perms.v[i];
	*out = (struct tq_access_perm){r->s[0], r->s[1], r->s[2], r->s[3], r->s[4]};
	return 0;
}

size_t
tq_access_topic_perm_count(const struct tq_access_db *db)
{
	return db ? db->tperms.n : 0;
}

int
tq_access_topic_perm_at(const struct tq_access_db *db, size_t i, struct tq_access_topic_perm *out)
{
	const struct rec *r;

	if (!db || !out || i >= db->tperms.n)
		return -ENOENT;
	r = db->tperms.v[i];
	*out = (struct tq_access_topic_perm){r->s[0], r->s[1], r->s[2], r->s[3], r->s[4]};
	return 0;
}

size_t
tq_access_acl_count(const struct tq_access_db *db)
{
	return db ? db->nacl : 0;
}

int
tq_access_acl_at(const struct tq_access_db *db, size_t i, struct tq_access_acl *out)
{
	const struct rec *r;

	if (!db || !out || i >= db->nacl)
		return -ENOENT;
	r = db->acl_order[i];
	*out = (struct tq_access_acl){r->s[0], r->s[1], r->access};
	return 0;
}

/* ---- the snapshot -------------------------------------------------------------------- */

enum sexpr_kind {
	X_NONE, /* "": matches nothing */
	X_ALL,  /* ".*": matches everything, no regexec */
	X_RE,   /* compiled */
	X_VARS, /* topic permission with variables: expanded and compiled per check */
};

struct sexpr {
	const char *src;
	enum sexpr_kind kind;
	regex_t re; /* X_RE */
};

struct sperm {
	const char *user, *vhost;
	const struct sexpr *e[3]; /* by enum tq_perm_op */
};

struct stperm {
	const char *user, *vhost, *exchange;
	const struct sexpr *e[2]; /* write, read */
};

struct sacl {
	const char *pat;
	size_t plen;
	enum tq_acl_access access;
	bool has_u, has_c;
};

/* A user's own ACL rules: acl[first .. first + n). */
struct sacl_user {
	const char *user;
	size_t first, n;
};

struct tq_access {
	uint64_t gen;
	struct sperm *perm; /* sorted by (user, vhost) */
	size_t nperm;
	struct stperm *tperm; /* sorted by (user, vhost, exchange) */
	size_t ntperm;
	struct sexpr *expr; /* the distinct expressions */
	size_t nexpr;
	bool acl_on;      /* any ACL rule */
	struct sacl *acl; /* everyone's [0, nacl_all), then each user's */
	size_t nacl, nacl_all;
	struct sacl_user *acl_user; /* sorted by user */
	size_t nacl_user;
	char *strs; /* every string of the snapshot */
	size_t strs_used;
};

/* Build-time state: the string arena and the expression intern table. */
struct builder {
	struct tq_access *a;
	size_t cap_expr;
	struct sexpr **slot; /* open addressing over a->expr; (src, vars) distinct */
	bool *slot_vars;
	size_t mask;
};

static const char *
b_str(struct builder *b, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = b->a->strs + b->a->strs_used;

	memcpy(p, s, n);
	b->a->strs_used += n;
	return p;
}

static uint64_t
str_hash(const char *s, bool vars)
{
	uint64_t h = 0xcbf29ce484222325ull ^ vars;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* The compiled form of @src (a topic permission's when @vars); NULL on failure. */
static const struct sexpr *
b_expr(struct builder *b, const char *src, bool vars)
{
	struct tq_access *a = b->a;
	struct sexpr *e;
	size_t i;
	int rc;

	vars = vars && has_vars(src);
	for (i = str_hash(src, vars) & b->mask; b->slot[i]; i = (i + 1) & b->mask)
		if (b->slot_vars[i] == vars && !strcmp(b->slot[i]->src, src))
			return b->slot[i];
	e = &a->expr[a->nexpr];
	e->src = b_str(b, src);
	if (!*src) {
		e->kind = X_NONE;
	} else if (!strcmp(src, ".*")) {
		e->kind = X_ALL;
	} else if (vars) {
		e->kind = X_VARS;
	} else {
		rc = regcomp(&e->re, src, RE_FLAGS);
		if (rc) {
			errno = rc == REG_ESPACE ? ENOMEM : EINVAL;
			return NULL;
		}
		e->kind = X_RE;
	}
	a->nexpr++;
	b->slot[i] = e;
	b->slot_vars[i] = vars;
	return e;
}

static size_t
rtab_strlen(const struct rtab *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		for (unsigned int k = 0; k < REC_NSTR && t->v[i]->s[k]; k++)
			n += strlen(t->v[i]->s[k]) + 1;
	return n;
}

static void
sacl_set(struct builder *b, struct sacl *r, const struct rec *src)
{
	r->pat = b_str(b, src->s[1]);
	r->plen = strlen(r->pat);
	r->access = src->access;
	r->has_u = strstr(r->pat, "%u") != NULL;
	r->has_c = strstr(r->pat, "%c") != NULL;
}

static int
build_acl(struct builder *b, const struct tq_access_db *db)
{
	struct tq_access *a = b->a;
	size_t i, k = 0;

	a->acl_on = db->nacl > 0;
	a->acl = calloc(db->nacl ? db->nacl : 1, sizeof(*a->acl));
	a->acl_user = calloc(db->nacl ? db->nacl : 1, sizeof(*a->acl_user));
	if (!a->acl || !a->acl_user)
		return -ENOMEM;
	for (i = 0; i < db->nacl; i++)
		if (!*db->acl_order[i]->s[0])
			sacl_set(b, &a->acl[k++], db->acl_order[i]);
	a->nacl_all = k;
	/* the index is sorted by user: each user's rules are contiguous, everyone's first */
	for (i = 0; i < db->acl_idx.n; i++) {
		const struct rec *r = db->acl_idx.v[i];
		struct sacl_user *u;

		if (!*r->s[0])
			continue;
		u = a->nacl_user ? &a->acl_user[a->nacl_user - 1] : NULL;
		if (!u || strcmp(u->user, r->s[0])) {
			u = &a->acl_user[a->nacl_user++];
			u->user = b_str(b, r->s[0]);
			u->first = k;
		}
		sacl_set(b, &a->acl[k++], r);
		u->n++;
	}
	a->nacl = k;
	return 0;
}

static int
build_perms(struct builder *b, const struct tq_access_db *db)
{
	struct tq_access *a = b->a;

	a->perm = calloc(db->perms.n ? db->perms.n : 1, sizeof(*a->perm));
	a->tperm = calloc(db->tperms.n ? db->tperms.n : 1, sizeof(*a->tperm));
	if (!a->perm || !a->tperm)
		return -ENOMEM;
	for (size_t i = 0; i < db->perms.n; i++, a->nperm++) {
		const struct rec *r = db->perms.v[i];
		struct sperm *p = &a->perm[i];

		p->user = b_str(b, r->s[0]);
		p->vhost = b_str(b, r->s[1]);
		for (unsigned int k = 0; k < 3; k++)
			if (!(p->e[k] = b_expr(b, r->s[2 + k], false)))
				return -errno;
	}
	for (size_t i = 0; i < db->tperms.n; i++, a->ntperm++) {
		const struct rec *r = db->tperms.v[i];
		struct stperm *p = &a->tperm[i];

		p->user = b_str(b, r->s[0]);
		p->vhost = b_str(b, r->s[1]);
		p->exchange = b_str(b, r->s[2]);
		for (unsigned int k = 0; k < 2; k++)
			if (!(p->e[k] = b_expr(b, r->s[3 + k], true)))
				return -errno;
	}
	return 0;
}

struct tq_access *
tq_access_build(const struct tq_access_db *db, uint64_t gen)
{
	struct builder b = {0};
	struct tq_access *a;
	size_t slots = 16, strs;
	int rc = -ENOMEM;

	if (!db) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		goto nomem;
	b.a = a;
	a->gen = gen;
	b.cap_expr = 3 * db->perms.n + 2 * db->tperms.n;
	while (slots < 2 * b.cap_expr)
		slots *= 2;
	b.mask = slots - 1;
	b.slot = calloc(slots, sizeof(*b.slot));
	b.slot_vars = calloc(slots, sizeof(*b.slot_vars));
	a->expr = calloc(b.cap_expr ? b.cap_expr : 1, sizeof(*a->expr));
	strs = rtab_strlen(&db->perms) + rtab_strlen(&db->tperms) + rtab_strlen(&db->acl_idx);
	a->strs = malloc(strs ? strs : 1);
	if (!b.slot || !b.slot_vars || !a->expr || !a->strs)
		goto fail;
	rc = build_perms(&b, db);
	if (!rc)
		rc = build_acl(&b, db);
	if (rc)
		goto fail;
	free(b.slot);
	free(b.slot_vars);
	return a;
fail:
	free(b.slot);
	free(b.slot_vars);
	tq_access_free(a);
nomem:
	errno = -rc;
	return NULL;
}

void
tq_access_free(struct tq_access *a)
{
	if (!a)
		return;
	for (size_t i = 0; a->expr && i < a->nexpr; i++)
		if (a->expr[i].kind == X_RE)
			regfree(&a->expr[i].re);
	free(a->expr);
	free(a->perm);
	free(a->tperm);
	free(a->acl);
	free(a->acl_user);
	free(a->strs);
	free(a);
}

uint64_t
tq_access_gen(const struct tq_access *a)
{
	return a ? a->gen : 0;
}

void
tq_access_publish(struct tq_access *a)
{
	struct tq_access *old = tq_access_cur; /* only the control thread writes it */

	if (old == a)
		return;
	rcu_assign_pointer(tq_access_cur, a);
	if (old) {
		urcu_qsbr_synchronize_rcu();
		tq_access_free(old);
	}
}

/* ---- checks (any thread, on a snapshot it holds) --------------------------------------- */

static int
perm_cmp(const struct sperm *p, const char *user, const char *vhost)
{
	int c = strcmp(p->user, user);

	return c ? c : strcmp(p->vhost, vhost);
}

static const struct sperm *
perm_find(const struct tq_access *a, const char *user, const char *vhost)
{
	size_t lo = 0, hi = a->nperm;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = perm_cmp(&a->perm[mid], user, vhost);

		if (!c)
			return &a->perm[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct stperm *
tperm_find(const struct tq_access *a, const char *user, const char *vhost, const char *xname)
{
	size_t lo = 0, hi = a->ntperm;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct stperm *p = &a->tperm[mid];
		int c = strcmp(p->user, user);

		if (!c)
			c = strcmp(p->vhost, vhost);
		if (!c)
			c = strcmp(p->exchange, xname);
		if (!c)
			return p;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool
re_found(const regex_t *re, const char *s, size_t len)
{
	regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)len};

	return regexec(re, s, 1, &m, REG_STARTEND) == 0;
}

/* Is expression @e found in @s (@len bytes)? @who: the values of a topic permission's. */
static bool
expr_search(const struct sexpr *e, const char *s, size_t len, const struct tq_access_who *who)
{
	char stack[EXPAND_STACK], *heap = NULL;
	const char *text;
	regex_t re;
	size_t need;
	bool ok;

	switch (e->kind) {
	case X_NONE:
		return false;
	case X_ALL:
		return true;
	case X_RE:
		return re_found(&e->re, s, len);
	case X_VARS:
		break;
	}
	/* the one allocating check: regcomp (see tq_access.h) */
	need = expand(e->src, who, stack, sizeof(stack));
	if (need >= sizeof(stack)) {
		heap = malloc(need + 1);
		if (!heap)
			return false;
		expand(e->src, who, heap, need + 1);
	}
	text = heap ? heap : stack;
	ok = regcomp(&re, text, RE_FLAGS) == 0;
	free(heap);
	if (!ok)
		return false;
	ok = re_found(&re, s, len);
	regfree(&re);
	return ok;
}

bool
tq_access_vhost_ok(const struct tq_access *a, const char *user, const char *vhost)
{
	return a && user && vhost && perm_find(a, user, vhost);
}

bool
tq_access_check(const struct tq_access *a, const char *user, const char *vhost, enum tq_perm_op op,
		const char *name, size_t len)
{
	const struct sperm *p;

	if (!a || !user || !vhost || (unsigned int)op > TQ_PERM_READ || (!name && len))
		return false;
	p = perm_find(a, user, vhost);
	if (!p)
		return false;
	if (!len) {
		name = "amq.default";
		len = strlen(name);
	}
	return expr_search(p->e[op], name, len, NULL);
}

bool
tq_access_topic_ok(const struct tq_access *a, const struct tq_access_who *who, const char *exchange,
		   enum tq_perm_op op, const char *key, size_t len)
{
	const struct stperm *p;

	if (!a || !who || !who->user || !who->vhost || !exchange || (!key && len))
		return false;
	p = tperm_find(a, who->user, who->vhost, exchange);
	if (!p)
		return true;
	if (op != TQ_PERM_WRITE && op != TQ_PERM_READ)
		return false;
	return expr_search(p->e[op == TQ_PERM_WRITE ? 0 : 1], key ? key : "", len, who);
}

static const struct sacl_user *
acl_user_find(const struct tq_access *a, const char *user)
{
	size_t lo = 0, hi = a->nacl_user;

	if (!user || !*user)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->acl_user[mid].user, user);

		if (!c)
			return &a->acl_user[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * The ACL decision for @s (a topic when !@sub, else a filter): granted by a rule with
 * @want, and no deny rule matching (publish) or intersecting (subscribe).
 */
static bool
acl_decide(const struct tq_access *a, const struct tq_access_who *who, const char *s, size_t len,
	   bool sub, unsigned int want)
{
	const struct sacl_user *u;
	struct subst x;
	bool granted = false;
	size_t ranges[2][2];

	if (!a || !who)
		return false;
	if (!a->acl_on)
		return true;
	if (!filter_valid(s, len, sub))
		return false;
	subst_init(&x, who);
	u = acl_user_find(a, who->user);
	ranges[0][0] = 0;
	ranges[0][1] = a->nacl_all;
	ranges[1][0] = u ? u->first : 0;
	ranges[1][1] = u ? u->first + u->n : 0;
	for (unsigned int k = 0; k < 2; k++) {
		for (size_t i = ranges[k][0]; i < ranges[k][1]; i++) {
			const struct sacl *r = &a->acl[i];
			bool bad, hit;

			if ((r->has_u && !x.u) || (r->has_c && !x.c))
				continue; /* no value to put in: the rule is not for this client */
			bad = (r->has_u && x.ubad) || (r->has_c && x.cbad);
			if (r->access == TQ_ACL_DENY) {
				if (bad)
					return false;
				hit = sub ? pat_intersects(r->pat, r->plen, s, len, &x)
					  : pat_match(r->pat, r->plen, s, len, &x);
				if (hit)
					return false;
			} else if (!granted && !bad && (r->access & want)) {
				granted = sub ? pat_covers(r->pat, r->plen, s, len, &x)
					      : pat_match(r->pat, r->plen, s, len, &x);
			}
		}
	}
	return granted;
}

bool
tq_access_acl_publish(const struct tq_access *a, const struct tq_access_who *who, const char *topic,
		      size_t len)
{
	return acl_decide(a, who, topic, len, false, TQ_ACL_WRITE);
}

bool
tq_access_acl_subscribe(const struct tq_access *a, const struct tq_access_who *who,
			const char *filter, size_t len)
{
	return acl_decide(a, who, filter, len, true, TQ_ACL_READ);
}
