/*
 * The topic trie (see tq_trie.h for the rules). Writers hold t->lock and publish with
 * rcu_assign_pointer (or a release store of an array's count); readers load with
 * rcu_dereference (or an acquire load of the count) and never write.
 */
/* liburcu's sanctioned way to inline rcu_dereference & co. without _LGPL_SOURCE. */
#define URCU_INLINE_SMALL_FUNCTIONS
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <urcu/urcu-qsbr.h>

#include "tq_trie.h"

enum node_kind {
	NODE_ROOT,
	NODE_LITERAL,
	NODE_STAR, /* '+' (MQTT) or '*' (AMQP) */
	NODE_HASH, /* '#' */
};

struct node;

/*
 * A node's literal children: linear probing over node pointers. A removed child leaves a
 * tombstone (readers probe past it); the table always keeps a quarter of its slots NULL so
 * a probe ends. Inserting into a NULL or tombstone slot is done in place (a reader sees the
 * pointer or not); growing, shrinking and purging tombstones build a new table.
 * Owned by its node; a replaced table is freed with call_rcu.
 */
struct kids {
	struct rcu_head rcu;
	uint32_t mask; /* slots - 1 */
	uint32_t used; /* writer: live + tombstones */
	struct node *slot[];
};

/*
 * Entries of one filter (or of one group): e[0..n) are visible. Appending writes e[n] then
 * stores n + 1 with release; replacing data or removing builds a new array.
 * Owned by its node or group; a replaced array is freed with call_rcu.
 */
struct eset {
	struct rcu_head rcu;
	uint32_t n;   /* readers: acquire load */
	uint32_t cap; /* writer only */
	struct tq_trie_entry e[];
};

struct tq_trie_group {
	struct rcu_head rcu;
	struct eset *members; /* rcu; never NULL or empty while the group is linked */
	uint32_t rr;          /* round-robin counter: atomic, any reader */
	uint32_t nlen;
	char name[];
};

/* The groups at one filter; replaced on every change (they are few). Owned by the node. */
struct gset {
	struct rcu_head rcu;
	uint32_t n;
	struct tq_trie_group *g[];
};

/*
 * A filter level. Freed with call_rcu once unlinked; it is unlinked only when empty (no
 * entries, groups or children), so freeing it frees nothing else.
 */
struct node {
	struct rcu_head rcu;
	struct node *parent;  /* immutable; readers may follow it */
	struct kids *kids;    /* rcu; NULL when no literal child */
	struct node *star;    /* rcu */
	struct node *hash;    /* rcu */
	struct eset *entries; /* rcu; NULL when none */
	struct gset *groups;  /* rcu; NULL when none */
	uint32_t nkids;       /* writer: live literal children */
	uint32_t h;           /* hash of word (literal nodes) */
	uint32_t len;
	uint8_t kind;
	char word[];
};

struct tq_trie {
	pthread_mutex_t lock; /* writers */
	struct node *root;
	uint64_t seed;
	uint64_t count; /* writer writes, anyone reads (relaxed) */
	uint64_t nodes;
	enum tq_trie_dialect dialect;
	char sep;
	char star;
};

/* The tombstone: an address no node has. */
static char tomb_mark;
#define TOMB ((struct node *)(void *)&tomb_mark)

#define KIDS_MIN 4u
#define ESET_MIN 2u

/* ---- hashing ---------------------------------------------------------------------- */

static inline uint64_t
mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x9fb21c651e98df25ull;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 32);
}

/* Seeded per trie so subscribers cannot aim collisions at one node's table. */
static uint32_t
word_hash(uint64_t seed, const char *p, size_t len)
{
	uint64_t h = seed ^ ((uint64_t)len * 0x9e3779b97f4a7c15ull);
	uint64_t v;

	while (len >= 8) {
		memcpy(&v, p, 8);
		h = mix64(h ^ v);
		p += 8;
		len -= 8;
	}
	v = 0;
	memcpy(&v, p, len);
	return (uint32_t)mix64(h ^ v ^ ((uint64_t)len << 59));
}

/* ---- freeing ---------------------------------------------------------------------- */

static void
free_kids_rcu(struct rcu_head *h)
{
	free(caa_container_of(h, struct kids, rcu));
}

static void
free_eset_rcu(struct rcu_head *h)
{
	free(caa_container_of(h, struct eset, rcu));
}

static void
free_gset_rcu(struct rcu_head *h)
{
	free(caa_container_of(h, struct gset, rcu));
}

static void
free_group(struct tq_trie_group *g)
{
	free(g->members);
	free(g);
}

static void
free_group_rcu(struct rcu_head *h)
{
	free_group(caa_container_of(h, struct tq_trie_group, rcu));
}

static void
free_node_rcu(struct rcu_head *h)
{
	free(caa_container_of(h, struct node, rcu));
}

/* ---- filter syntax ---------------------------------------------------------------- */

/* A level's kind by the dialect's rules; -EINVAL for a misplaced wildcard character. */
static int
level_kind(const struct tq_trie *t, const char *w, size_t len, bool last)
{
	if (len == 1 && w[0] == t->star)
		return NODE_STAR;
	if (len == 1 && w[0] == '#') {
		if (t->dialect == TQ_TRIE_MQTT && !last)
			return -EINVAL;
		return NODE_HASH;
	}
	/* MQTT: a wildcard character must stand alone in its level; AMQP (RabbitMQ): only a
	 * whole word is a wildcard, "a*" is a word like any other */
	if (t->dialect == TQ_TRIE_MQTT &&
	    (memchr(w, '#', len) || memchr(w, t->star, len) || memchr(w, '\0', len)))
		return -EINVAL;
	return NODE_LITERAL;
}

/* Check a whole filter before touching the trie. */
static int
filter_check(const struct tq_trie *t, const char *f, size_t len)
{
	size_t levels = 0;
	const char *end = f + len;

	if (len > TQ_TRIE_MAX_LEN || (len && !f))
		return -EINVAL;
	if (len == 0)
		return t->dialect == TQ_TRIE_AMQP ? 0 : -EINVAL; /* AMQP: zero words */
	for (const char *p = f;;) {
		const char *s = memchr(p, t->sep, (size_t)(end - p));
		const char *we = s ? s : end;

		if (++levels > TQ_TRIE_MAX_LEVELS)
			return -EINVAL;
		if (level_kind(t, p, (size_t)(we - p), !s) < 0)
			return -EINVAL;
		if (!s)
			return 0;
		p = s + 1;
	}
}

/* ---- children tables -------------------------------------------------------------- */

/* A reader's (or the writer's) lookup of a literal child. */
static inline struct node *
kid_find(const struct node *n, const char *w, size_t len, uint32_t h)
{
	const struct kids *k = rcu_dereference(n->kids);

	if (!k)
		return NULL;
	for (uint32_t i = h & k->mask;; i = (i + 1) & k->mask) {
		struct node *c = rcu_dereference(k->slot[i]);

		if (!c)
			return NULL;
		if (c != TOMB && c->h == h && c->len == len && !memcmp(c->word, w, len))
			return c;
	}
}

/* The same, hashing the word only when @n has literal children at all. */
static inline struct node *
kid_lookup(const struct tq_trie *t, const struct node *n, const char *w, size_t len)
{
	if (!rcu_dereference(n->kids))
		return NULL;
	return kid_find(n, w, len, word_hash(t->seed, w, len));
}

/* A new table of @cap slots holding @n's live children; NULL on ENOMEM. */
static struct kids *
kids_build(const struct node *n, uint32_t cap)
{
	struct kids *k = calloc(1, sizeof(*k) + cap * sizeof(k->slot[0]));
	const struct kids *old = n->kids;

	if (!k)
		return NULL;
	k->mask = cap - 1;
	for (uint32_t i = 0; old && i <= old->mask; i++) {
		struct node *c = old->slot[i];
		uint32_t j;

		if (!c || c == TOMB)
			continue;
		for (j = c->h & k->mask; k->slot[j]; j = (j + 1) & k->mask)
			;
		k->slot[j] = c;
		k->used++;
	}
	return k;
}

static uint32_t
kids_cap_for(uint32_t live)
{
	uint32_t cap = KIDS_MIN;

	while (cap < 2 * live) /* half full after a rebuild */
		cap *= 2;
	return cap;
}

/* Publish @k as @n's table and retire the old one. */
static void
kids_swap(struct node *n, struct kids *k)
{
	struct kids *old = n->kids;

	rcu_assign_pointer(n->kids, k);
	if (old)
		urcu_qsbr_call_rcu(&old->rcu, free_kids_rcu);
}

/* Link a fully built child @c into @n. Writer. */
static int
kid_insert(struct node *n, struct node *c)
{
	struct kids *k = n->kids;
	uint32_t i;

	if (!k || 4 * (k->used + 1) > 3 * (k->mask + 1)) {
		k = kids_build(n, kids_cap_for(n->nkids + 1));
		if (!k)
			return -ENOMEM;
		kids_swap(n, k);
	}
	for (i = c->h & k->mask; k->slot[i] && k->slot[i] != TOMB; i = (i + 1) & k->mask)
		;
	if (!k->slot[i])
		k->used++;
	rcu_assign_pointer(k->slot[i], c);
	n->nkids++;
	return 0;
}

/* Unlink child @c from @n; shrinks the table when it got sparse. Writer; cannot fail. */
static void
kid_unlink(struct node *n, struct node *c)
{
	struct kids *k = n->kids;
	uint32_t i;

	for (i = c->h & k->mask; k->slot[i] != c; i = (i + 1) & k->mask)
		;
	rcu_assign_pointer(k->slot[i], TOMB);
	n->nkids--;
	if (!n->nkids) {
		kids_swap(n, NULL);
	} else if (k->mask + 1 > KIDS_MIN && 8 * n->nkids < k->mask + 1) {
		struct kids *nk = kids_build(n, kids_cap_for(n->nkids));

		if (nk) /* without memory the sparse table simply stays */
			kids_swap(n, nk);
	}
}

/* ---- entry arrays ----------------------------------------------------------------- */

static struct eset *
eset_alloc(uint32_t cap)
{
	struct eset *es = malloc(sizeof(*es) + cap * sizeof(es->e[0]));

	if (es) {
		es->n = 0;
		es->cap = cap;
	}
	return es;
}

static int
eset_find(const struct eset *es, uint64_t key)
{
	for (uint32_t i = 0; es && i < es->n; i++)
		if (es->e[i].key == key)
			return (int)i;
	return -1;
}

/* Add or replace (@key, @data) in *@pp. Returns 0 added, 1 replaced, -ENOMEM. Writer. */
static int
eset_put(struct eset **pp, uint64_t key, uint64_t data)
{
	struct eset *es = *pp, *ns;
	int i = eset_find(es, key);

	if (i >= 0) {
		if (es->e[i].data == data)
			return 1;
		ns = eset_alloc(es->cap);
		if (!ns)
			return -ENOMEM;
		memcpy(ns->e, es->e, es->n * sizeof(es->e[0]));
		ns->n = es->n;
		ns->e[i].data = data;
		rcu_assign_pointer(*pp, ns);
		urcu_qsbr_call_rcu(&es->rcu, free_eset_rcu);
		return 1;
	}
	if (es && es->n < es->cap) {
		es->e[es->n].key = key;
		es->e[es->n].data = data;
		__atomic_store_n(&es->n, es->n + 1, __ATOMIC_RELEASE);
		return 0;
	}
	ns = eset_alloc(es ? 2 * es->cap : ESET_MIN);
	if (!ns)
		return -ENOMEM;
	if (es)
		memcpy(ns->e, es->e, es->n * sizeof(es->e[0]));
	ns->n = es ? es->n : 0;
	ns->e[ns->n].key = key;
	ns->e[ns->n].data = data;
	ns->n++;
	rcu_assign_pointer(*pp, ns);
	if (es)
		urcu_qsbr_call_rcu(&es->rcu, free_eset_rcu);
	return 0;
}

/*
 * Remove entry @i of *@pp (leaving NULL when it was the last). -ENOMEM when the smaller
 * copy cannot be made (nothing changed). Writer.
 */
static int
eset_del(struct eset **pp, uint32_t i)
{
	struct eset *es = *pp, *ns = NULL;

	if (es->n > 1) {
		uint32_t cap = es->cap;

		while (cap > ESET_MIN && cap / 4 >= es->n - 1)
			cap /= 2;
		ns = eset_alloc(cap);
		if (!ns)
			return -ENOMEM;
		memcpy(ns->e, es->e, i * sizeof(es->e[0]));
		memcpy(ns->e + i, es->e + i + 1, (es->n - i - 1) * sizeof(es->e[0]));
		ns->n = es->n - 1;
	}
	rcu_assign_pointer(*pp, ns);
	urcu_qsbr_call_rcu(&es->rcu, free_eset_rcu);
	return 0;
}

/* ---- groups ----------------------------------------------------------------------- */

static int
group_find(const struct gset *gs, const char *name, size_t len)
{
	for (uint32_t i = 0; gs && i < gs->n; i++)
		if (gs->g[i]->nlen == len && !memcmp(gs->g[i]->name, name, len))
			return (int)i;
	return -1;
}

/* @n's groups with @g added (@g not NULL) or group @drop removed. Writer. */
static int
gset_replace(struct node *n, struct tq_trie_group *g, int drop)
{
	struct gset *gs = n->groups, *ns = NULL;
	uint32_t cnt = gs ? gs->n : 0, j = 0;

	cnt = g ? cnt + 1 : cnt - 1;
	if (cnt) {
		ns = malloc(sizeof(*ns) + cnt * sizeof(ns->g[0]));
		if (!ns)
			return -ENOMEM;
		for (uint32_t i = 0; gs && i < gs->n; i++)
			if ((int)i != drop)
				ns->g[j++] = gs->g[i];
		if (g)
			ns->g[j++] = g;
		ns->n = j;
	}
	rcu_assign_pointer(n->groups, ns);
	if (gs)
		urcu_qsbr_call_rcu(&gs->rcu, free_gset_rcu);
	return 0;
}

/* ---- nodes ------------------------------------------------------------------------ */

static struct node *
node_alloc(struct node *parent, enum node_kind kind, const char *w, size_t len, uint32_t h)
{
	struct node *n = calloc(1, sizeof(*n) + len + 1);

	if (!n)
		return NULL;
	n->parent = parent;
	n->kind = (uint8_t)kind;
	n->h = h;
	n->len = (uint32_t)len;
	memcpy(n->word, w, len);
	return n;
}

static bool
node_empty(const struct node *n)
{
	return !n->entries && !n->groups && !n->nkids && !n->star && !n->hash;
}

/* Unlink and retire empty nodes from @n up (the root stays). Writer. */
static void
prune(struct tq_trie *t, struct node *n)
{
	while (n->kind != NODE_ROOT && node_empty(n)) {
		struct node *p = n->parent;

		if (n->kind == NODE_STAR)
			rcu_assign_pointer(p->star, NULL);
		else if (n->kind == NODE_HASH)
			rcu_assign_pointer(p->hash, NULL);
		else
			kid_unlink(p, n);
		urcu_qsbr_call_rcu(&n->rcu, free_node_rcu);
		__atomic_store_n(&t->nodes, t->nodes - 1, __ATOMIC_RELAXED);
		n = p;
	}
}

/*
 * Walk @filter (already checked) from the root; with @create, missing nodes are made and
 * linked (the caller prunes them on a later failure). NULL: not found or ENOMEM.
 */
static struct node *
node_walk(struct tq_trie *t, const char *f, size_t len, bool create)
{
	struct node *n = t->root;
	const char *end = f + len;

	if (!len)
		return n;
	for (const char *p = f;;) {
		const char *s = memchr(p, t->sep, (size_t)(end - p));
		size_t wl = (size_t)((s ? s : end) - p);
		int kind = level_kind(t, p, wl, !s);
		uint32_t h = kind == NODE_LITERAL ? word_hash(t->seed, p, wl) : 0;
		struct node *c = kind == NODE_STAR   ? n->star
				 : kind == NODE_HASH ? n->hash
						     : kid_find(n, p, wl, h);

		if (!c) {
			if (!create || !(c = node_alloc(n, (enum node_kind)kind, p, wl, h)))
				return NULL;
			if (kind == NODE_STAR) {
				rcu_assign_pointer(n->star, c);
			} else if (kind == NODE_HASH) {
				rcu_assign_pointer(n->hash, c);
			} else if (kid_insert(n, c) < 0) {
				free(c); /* never published */
				return NULL;
			}
			__atomic_store_n(&t->nodes, t->nodes + 1, __ATOMIC_RELAXED);
		}
		n = c;
		if (!s)
			return n;
		p = s + 1;
	}
}

/* The deepest existing node on @filter's path, for pruning after a failed create. */
static struct node *
node_deepest(struct tq_trie *t, const char *f, size_t len)
{
	struct node *n = t->root;
	const char *end = f + len;

	for (const char *p = f; len;) {
		const char *s = memchr(p, t->sep, (size_t)(end - p));
		size_t wl = (size_t)((s ? s : end) - p);
		int kind = level_kind(t, p, wl, !s);
		struct node *c = kind == NODE_STAR ? n->star
				 : kind == NODE_HASH
					 ? n->hash
					 : kid_find(n, p, wl, word_hash(t->seed, p, wl));

		if (!c)
			break;
		n = c;
		if (!s)
			break;
		p = s + 1;
	}
	return n;
}

/* ---- life cycle ------------------------------------------------------------------- */

struct tq_trie *
tq_trie_create(enum tq_trie_dialect d)
{
	struct tq_trie *t;

	if (d != TQ_TRIE_MQTT && d != TQ_TRIE_AMQP) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t || !(t->root = node_alloc(NULL, NODE_ROOT, "", 0, 0))) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t->seed = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)t);
	}
	pthread_mutex_init(&t->lock, NULL);
	t->dialect = d;
	t->sep = d == TQ_TRIE_MQTT ? '/' : '.';
	t->star = d == TQ_TRIE_MQTT ? '+' : '*';
	t->nodes = 1;
	return t;
}

/* Free @n and everything below it at once (no reader left). */
static void
node_free_all(struct node *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; n->kids && i <= n->kids->mask; i++)
		if (n->kids->slot[i] && n->kids->slot[i] != TOMB)
			node_free_all(n->kids->slot[i]);
	node_free_all(n->star);
	node_free_all(n->hash);
	for (uint32_t i = 0; n->groups && i < n->groups->n; i++)
		free_group(n->groups->g[i]);
	free(n->groups);
	free(n->entries);
	free(n->kids);
	free(n);
}

void
tq_trie_destroy(struct tq_trie *t)
{
	if (!t)
		return;
	node_free_all(t->root);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

enum tq_trie_dialect
tq_trie_dialect(const struct tq_trie *t)
{
	return t->dialect;
}

/* ---- writers ---------------------------------------------------------------------- */

int
tq_trie_add(struct tq_trie *t, const char *filter, size_t len, const char *group, size_t glen,
	    uint64_t key, uint64_t data)
{
	struct node *n;
	int rc;

	if (filter_check(t, filter, len) < 0 || (glen && !group) || glen > TQ_TRIE_MAX_LEN)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	n = node_walk(t, filter, len, true);
	if (!n) {
		rc = -ENOMEM;
		goto undo;
	}
	if (!glen) {
		rc = eset_put(&n->entries, key, data);
	} else {
		int gi = group_find(n->groups, group, glen);

		if (gi >= 0) {
			rc = eset_put(&n->groups->g[gi]->members, key, data);
		} else {
			/* A new group is complete (one member) before it is published. */
			struct tq_trie_group *g = calloc(1, sizeof(*g) + glen + 1);

			rc = -ENOMEM;
			if (g) {
				memcpy(g->name, group, glen);
				g->nlen = (uint32_t)glen;
				rc = eset_put(&g->members, key, data);
				if (rc == 0 && gset_replace(n, g, -1) < 0)
					rc = -ENOMEM;
				if (rc < 0)
					free_group(g);
			}
		}
	}
	if (rc == 0)
		__atomic_store_n(&t->count, t->count + 1, __ATOMIC_RELAXED);
undo:
	if (rc < 0) /* nodes made for this filter and left empty go again */
		prune(t, node_deepest(t, filter, len));
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int
tq_trie_remove(struct tq_trie *t, const char *filter, size_t len, const char *group, size_t glen,
	       uint64_t key)
{
	struct node *n;
	int rc = -ENOENT, i, gi;

	if (filter_check(t, filter, len) < 0 || (glen && !group))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	n = node_walk(t, filter, len, false);
	if (!n)
		goto out;
	if (!glen) {
		i = eset_find(n->entries, key);
		if (i >= 0)
			rc = eset_del(&n->entries, (uint32_t)i);
	} else if ((gi = group_find(n->groups, group, glen)) >= 0) {
		struct tq_trie_group *g = n->groups->g[gi];

		i = eset_find(g->members, key);
		if (i >= 0 && g->members->n == 1) {
			/* the last member: unlink the group, members and all, in one step */
			rc = gset_replace(n, NULL, gi);
			if (rc == 0)
				urcu_qsbr_call_rcu(&g->rcu, free_group_rcu);
		} else if (i >= 0) {
			rc = eset_del(&g->members, (uint32_t)i);
		}
	}
	if (rc == 0) {
		__atomic_store_n(&t->count, t->count - 1, __ATOMIC_RELAXED);
		prune(t, n);
	}
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* ---- readers ---------------------------------------------------------------------- */

int
tq_trie_get(const struct tq_trie *t, const char *filter, size_t len, const char *group, size_t glen,
	    uint64_t key, uint64_t *data)
{
	const struct node *n = t->root;
	const struct eset *es;
	const char *end = filter + len;

	if (filter_check(t, filter, len) < 0 || (glen && !group))
		return -EINVAL;
	for (const char *p = filter; len;) {
		const char *s = memchr(p, t->sep, (size_t)(end - p));
		size_t wl = (size_t)((s ? s : end) - p);
		int kind = level_kind(t, p, wl, !s);

		n = kind == NODE_STAR   ? rcu_dereference(n->star)
		    : kind == NODE_HASH ? rcu_dereference(n->hash)
					: kid_lookup(t, n, p, wl);
		if (!n)
			return -ENOENT;
		if (!s)
			break;
		p = s + 1;
	}
	if (!glen) {
		es = rcu_dereference(n->entries);
	} else {
		const struct gset *gs = rcu_dereference(n->groups);
		int gi = group_find(gs, group, glen);

		if (gi < 0)
			return -ENOENT;
		es = rcu_dereference(gs->g[gi]->members);
	}
	if (es) {
		uint32_t cnt = __atomic_load_n(&es->n, __ATOMIC_ACQUIRE);

		for (uint32_t i = 0; i < cnt; i++) {
			if (es->e[i].key == key) {
				if (data)
					*data = es->e[i].data;
				return 0;
			}
		}
	}
	return -ENOENT;
}

struct match_ctx {
	const struct tq_trie *t;
	const struct tq_trie_match_cb *cb;
	unsigned int calls;
};

/* Report @n's entries and groups. */
static void
emit(struct match_ctx *x, const struct node *n)
{
	const struct eset *es = rcu_dereference(n->entries);
	const struct gset *gs = rcu_dereference(n->groups);

	if (es) {
		uint32_t cnt = __atomic_load_n(&es->n, __ATOMIC_ACQUIRE);

		for (uint32_t i = 0; i < cnt; i++)
			if (x->cb->on_entry)
				x->cb->on_entry(x->cb->arg, &es->e[i]);
		x->calls += cnt;
	}
	for (uint32_t i = 0; gs && i < gs->n; i++) {
		struct tq_trie_group *g = gs->g[i];
		const struct eset *m = rcu_dereference(g->members);
		uint32_t cnt = __atomic_load_n(&m->n, __ATOMIC_ACQUIRE);

		if (x->cb->on_group)
			x->cb->on_group(x->cb->arg, g, m->e, cnt);
		x->calls++;
	}
}

/*
 * MQTT: @n has consumed the levels before @p; the level at @p ends at the next '/' or at
 * @end. @first: @p is the topic's first level, where a '$' topic hides from wildcards.
 */
static void
mqtt_match(struct match_ctx *x, const struct node *n, const char *p, const char *end, bool first,
	   bool dollar)
{
	const char *s = memchr(p, '/', (size_t)(end - p));
	size_t wl = (size_t)((s ? s : end) - p);
	const struct node *c, *kids[2];
	bool wild = !(first && dollar);

	if (wild && (c = rcu_dereference(n->hash)))
		emit(x, c);
	kids[0] = wild ? rcu_dereference(n->star) : NULL;
	kids[1] = kid_lookup(x->t, n, p, wl);
	for (int i = 0; i < 2; i++) {
		if (!(c = kids[i]))
			continue;
		if (s) {
			mqtt_match(x, c, s + 1, end, false, dollar);
		} else {
			emit(x, c);
			if ((c = rcu_dereference(c->hash))) /* "a/#" matches "a" */
				emit(x, c);
		}
	}
}

/* AMQP: the key split once into words, on the reader's stack. */
struct amqp_word {
	uint32_t off;
	uint32_t len;
	uint32_t h;
};

struct amqp_ctx {
	struct match_ctx m;
	const char *key;
	uint32_t nw;
	struct amqp_word w[TQ_TRIE_MAX_LEVELS];
};

/* Where the path to a node left its nearest '#' ancestor: @h entered at @i1, next word @k. */
struct amqp_anchor {
	const struct node *h;
	uint32_t i1;
	uint32_t k;
};

static inline bool
amqp_word_is(const struct amqp_ctx *x, uint32_t i, const struct node *c)
{
	const struct amqp_word *w = &x->w[i];

	return c->kind == NODE_STAR ||
	       (c->h == w->h && c->len == w->len && !memcmp(c->word, x->key + w->off, w->len));
}

/*
 * Is @n, reached having consumed @i words, also reachable with fewer? Only through its
 * nearest '#' ancestor a->h, which tries every start word k' >= a->i1: if the literal/star
 * path from there to @n also fits at some k' < a->k, @n was (or will be) visited at a
 * smaller index, whose '#' child then covers everything this one would.
 */
static bool
amqp_redundant(const struct amqp_ctx *x, const struct node *n, uint32_t i,
	       const struct amqp_anchor *a)
{
	uint32_t m = i - a->k; /* nodes from below a->h down to n */

	for (uint32_t kp = a->i1; kp < a->k; kp++) {
		const struct node *c = n;
		uint32_t t = m;

		while (t && amqp_word_is(x, kp + t - 1, c)) {
			c = c->parent;
			t--;
		}
		if (!t)
			return true;
	}
	return false;
}

static void amqp_hash(struct amqp_ctx *x, const struct node *h, uint32_t i);

/* @n (not a '#') has consumed words [0, @i); @a: its nearest '#' ancestor or NULL. */
static void
amqp_visit(struct amqp_ctx *x, const struct node *n, uint32_t i, const struct amqp_anchor *a)
{
	const struct node *c;

	if (i == x->nw)
		emit(&x->m, n);
	if ((c = rcu_dereference(n->hash)) && !(a && amqp_redundant(x, n, i, a)))
		amqp_hash(x, c, i);
	if (i == x->nw)
		return;
	if ((c = rcu_dereference(n->star)))
		amqp_visit(x, c, i + 1, a);
	if ((c = kid_find(n, x->key + x->w[i].off, x->w[i].len, x->w[i].h)))
		amqp_visit(x, c, i + 1, a);
}

/* '#' node @h entered at word @i (its smallest): it eats words [i, k) for every k. */
static void
amqp_hash(struct amqp_ctx *x, const struct node *h, uint32_t i)
{
	const struct node *c;

	emit(&x->m, h);                     /* eats the rest */
	if ((c = rcu_dereference(h->hash))) /* "#.#": entered once, at i */
		amqp_hash(x, c, i);
	for (uint32_t k = i; k < x->nw; k++) {
		const struct amqp_anchor a = {.h = h, .i1 = i, .k = k};

		if ((c = rcu_dereference(h->star)))
			amqp_visit(x, c, k + 1, &a);
		if ((c = kid_find(h, x->key + x->w[k].off, x->w[k].len, x->w[k].h)))
			amqp_visit(x, c, k + 1, &a);
	}
}

unsigned int
tq_trie_match(const struct tq_trie *t, const char *topic, size_t len,
	      const struct tq_trie_match_cb *cb)
{
	if (t->dialect == TQ_TRIE_MQTT) {
		struct match_ctx x = {.t = t, .cb = cb};

		if (!len)
			return 0;
		mqtt_match(&x, t->root, topic, topic + len, true, topic[0] == '$');
		return x.calls;
	} else {
		struct amqp_ctx x;
		const char *end = topic + len;

		x.m = (struct match_ctx){.t = t, .cb = cb};
		x.key = topic;
		x.nw = 0;
		for (const char *p = topic; len;) {
			const char *s = memchr(p, '.', (size_t)(end - p));
			struct amqp_word *w = &x.w[x.nw];

			if (x.nw == TQ_TRIE_MAX_LEVELS)
				return 0;
			w->off = (uint32_t)(p - topic);
			w->len = (uint32_t)((s ? s : end) - p);
			w->h = word_hash(t->seed, p, w->len);
			x.nw++;
			if (!s)
				break;
			p = s + 1;
		}
		amqp_visit(&x, t->root, 0, NULL);
		return x.m.calls;
	}
}

/* Every topic at or below @n (only literal children hold topics). */
static void
subtree(struct match_ctx *x, const struct node *n, bool skip_dollar)
{
	const struct kids *k = rcu_dereference(n->kids);

	emit(x, n);
	for (uint32_t i = 0; k && i <= k->mask; i++) {
		const struct node *c = rcu_dereference(k->slot[i]);

		if (c && c != TOMB && !(skip_dollar && c->len && c->word[0] == '$'))
			subtree(x, c, false);
	}
}

static void
filter_match(struct match_ctx *x, const struct node *n, const char *p, const char *end, bool first)
{
	const char *s = memchr(p, '/', (size_t)(end - p));
	size_t wl = (size_t)((s ? s : end) - p);
	const struct kids *k;
	const struct node *c;

	if (wl == 1 && *p == '#') {
		subtree(x, n, first);
		return;
	}
	if (wl == 1 && *p == '+') {
		k = rcu_dereference(n->kids);
		for (uint32_t i = 0; k && i <= k->mask; i++) {
			c = rcu_dereference(k->slot[i]);
			if (!c || c == TOMB || (first && c->len && c->word[0] == '$'))
				continue;
			if (s)
				filter_match(x, c, s + 1, end, false);
			else
				emit(x, c);
		}
		return;
	}
	c = kid_lookup(x->t, n, p, wl);
	if (c && s)
		filter_match(x, c, s + 1, end, false);
	else if (c)
		emit(x, c);
}

unsigned int
tq_trie_match_filter(const struct tq_trie *t, const char *filter, size_t len,
		     const struct tq_trie_match_cb *cb)
{
	struct match_ctx x = {.t = t, .cb = cb};

	if (t->dialect != TQ_TRIE_MQTT || filter_check(t, filter, len) < 0)
		return 0;
	filter_match(&x, t->root, filter, filter + len, true);
	return x.calls;
}

uint32_t
tq_trie_group_next(struct tq_trie_group *g)
{
	return __atomic_fetch_add(&g->rr, 1, __ATOMIC_RELAXED);
}

const char *
tq_trie_group_name(const struct tq_trie_group *g, size_t *len)
{
	if (len)
		*len = g->nlen;
	return g->name;
}

uint64_t
tq_trie_count(const struct tq_trie *t)
{
	return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

uint64_t
tq_trie_nodes(const struct tq_trie *t)
{
	return __atomic_load_n(&t->nodes, __ATOMIC_RELAXED);
}

struct walk_ctx {
	const struct tq_trie *t;
	void (*fn)(void *arg, const char *filter, size_t len, const char *group, size_t glen,
		   const struct tq_trie_entry *e);
	void *arg;
	char *buf;
};

/* @n's filter is buf[0, len); @depth 0 is the root. */
static void
walk_node(struct walk_ctx *x, const struct node *n, size_t len, unsigned int depth)
{
	const struct eset *es = rcu_dereference(n->entries);
	const struct gset *gs = rcu_dereference(n->groups);
	const struct kids *k = rcu_dereference(n->kids);
	const struct node *extra[2] = {rcu_dereference(n->star), rcu_dereference(n->hash)};

	for (uint32_t i = 0, c = es ? __atomic_load_n(&es->n, __ATOMIC_ACQUIRE) : 0; i < c; i++)
		x->fn(x->arg, x->buf, len, NULL, 0, &es->e[i]);
	for (uint32_t j = 0; gs && j < gs->n; j++) {
		const struct tq_trie_group *g = gs->g[j];
		const struct eset *m = rcu_dereference(g->members);

		for (uint32_t i = 0, c = __atomic_load_n(&m->n, __ATOMIC_ACQUIRE); i < c; i++)
			x->fn(x->arg, x->buf, len, g->name, g->nlen, &m->e[i]);
	}
	for (uint32_t i = 0; i <= (k ? k->mask + 2 : 1); i++) {
		const struct node *c;
		size_t at = len;

		if (k && i <= k->mask)
			c = rcu_dereference(k->slot[i]);
		else
			c = extra[k ? i - k->mask - 1 : i];
		if (!c || c == TOMB)
			continue;
		if (depth)
			x->buf[at++] = x->t->sep;
		if (at + c->len > TQ_TRIE_MAX_LEN) /* cannot happen: filters were checked */
			continue;
		memcpy(x->buf + at, c->word, c->len);
		walk_node(x, c, at + c->len, depth + 1);
	}
}

void
tq_trie_walk(const struct tq_trie *t,
	     void (*fn)(void *arg, const char *filter, size_t len, const char *group, size_t glen,
			const struct tq_trie_entry *e),
	     void *arg)
{
	struct walk_ctx x = {.t = t, .fn = fn, .arg = arg, .buf = malloc(TQ_TRIE_MAX_LEN + 1)};

	if (!x.buf)
		return;
	walk_node(&x, t->root, 0, 0);
	free(x.buf);
}
