/*
 * The AMQP exchange and binding registry (see tq_exchange.h for the rules).
 *
 * Readers' view, all published with rcu_assign_pointer (or a release store of a count):
 * registry -> vhosts by name -> exchanges and queues by name (struct nmap) -> per exchange
 * its routing state: direct: a name table of keys, each with a destination array; fanout: a
 * destination array; topic: a tq_trie (AMQP dialect, entry key = destination); headers: an
 * array of bindings. A destination is a tagged pointer: a queue, or an exchange (low bit).
 * Arrays are appended in place and removed from by storing 0 (readers skip it), so removal
 * never allocates and never moves an entry a reader might be about to read.
 *
 * Writers' view, under r->lock only: each exchange's bindings as source and as destination,
 * each queue's bindings, and a per-vhost hash of bindings by (source, destination, key) to
 * find duplicates and the bindings sharing one trie entry.
 */
/* liburcu's sanctioned way to inline rcu_dereference & co. without _LGPL_SOURCE. */
#define URCU_INLINE_SMALL_FUNCTIONS
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <urcu/list.h>
#include <urcu/urcu-qsbr.h>

#include "tq_exchange.h"
#include "tq_trie.h"

/* ---- named objects and their tables ------------------------------------------------ */

/* The head of everything found by name: vhosts, exchanges, queues, direct keys. */
struct nobj {
	uint32_t h;
	uint32_t len;
	const char *name; /* in the object's own allocation */
};

/*
 * Open addressing with linear probing over object pointers. A removed object leaves a
 * tombstone; a quarter of the slots stays NULL so probes end. Inserting into a NULL or
 * tombstone slot is done in place; growing and shrinking build a new table (call_rcu).
 */
struct ntab {
	struct rcu_head rcu;
	uint32_t mask;
	uint32_t used; /* writer: live + tombstones */
	struct nobj *slot[];
};

struct nmap {
	struct ntab *t; /* rcu; NULL when empty */
	uint32_t live;  /* writer */
};

static char tomb_mark;
#define TOMB ((struct nobj *)(void *)&tomb_mark)

#define NTAB_MIN 8u

/* memcmp and memcpy that accept NULL with a zero length (names and values may be empty). */
static inline bool
mem_eq(const void *a, const void *b, size_t n)
{
	return !n || !memcmp(a, b, n);
}

static inline void
mem_copy(void *d, const void *s, size_t n)
{
	if (n)
		memcpy(d, s, n);
}

static inline uint64_t
hmix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* Seeded per registry: names come from clients, who should not aim collisions. */
static uint32_t
name_hash(uint64_t seed, const char *p, size_t len)
{
	uint64_t h = hmix(seed + len);

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = hmix(h ^ w) + 0x9e3779b97f4a7c15ull;
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, p, len);
		h = hmix(h ^ w ^ (uint64_t)len << 56);
	}
	return (uint32_t)h;
}

static void
free_rcu_ntab(struct rcu_head *h)
{
	free(caa_container_of(h, struct ntab, rcu));
}

/* Readers and the writer. */
static struct nobj *
nmap_find(const struct nmap *m, const char *name, size_t len, uint32_t h)
{
	const struct ntab *t = rcu_dereference(m->t);

	if (!t)
		return NULL;
	for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct nobj *o = rcu_dereference(t->slot[i]);

		if (!o)
			return NULL;
		if (o != TOMB && o->h == h && o->len == len && mem_eq(o->name, name, len))
			return o;
	}
}

/* A table of @cap slots with @m's live objects. */
static struct ntab *
ntab_build(const struct nmap *m, uint32_t cap)
{
	struct ntab *t = calloc(1, sizeof(*t) + cap * sizeof(t->slot[0]));

	if (!t)
		return NULL;
	t->mask = cap - 1;
	for (uint32_t i = 0; m->t && i <= m->t->mask; i++) {
		struct nobj *o = m->t->slot[i];
		uint32_t j;

		if (!o || o == TOMB)
			continue;
		for (j = o->h & t->mask; t->slot[j]; j = (j + 1) & t->mask)
			;
		t->slot[j] = o;
		t->used++;
	}
	return t;
}

static uint32_t
ntab_cap_for(uint32_t live)
{
	uint32_t cap = NTAB_MIN;

	while (cap < 2 * live)
		cap *= 2;
	return cap;
}

static void
nmap_swap(struct nmap *m, struct ntab *t)
{
	struct ntab *old = m->t;

	rcu_assign_pointer(m->t, t);
	if (old)
		urcu_qsbr_call_rcu(&old->rcu, free_rcu_ntab);
}

/* Link a complete object. 0 or -ENOMEM (nothing changed). Writer. */
static int
nmap_insert(struct nmap *m, struct nobj *o)
{
	struct ntab *t = m->t;
	uint32_t i;

	if (!t || 4 * (t->used + 1) > 3 * (t->mask + 1)) {
		t = ntab_build(m, ntab_cap_for(m->live + 1));
		if (!t)
			return -ENOMEM;
		nmap_swap(m, t);
	}
	for (i = o->h & t->mask; t->slot[i] && t->slot[i] != TOMB; i = (i + 1) & t->mask)
		;
	if (!t->slot[i])
		t->used++;
	rcu_assign_pointer(t->slot[i], o);
	m->live++;
	return 0;
}

/* Unlink @o (linked); shrinks when sparse, if memory allows. Writer; cannot fail. */
static void
nmap_unlink(struct nmap *m, struct nobj *o)
{
	struct ntab *t = m->t;
	uint32_t i;

	for (i = o->h & t->mask; t->slot[i] != o; i = (i + 1) & t->mask)
		;
	rcu_assign_pointer(t->slot[i], TOMB);
	if (!--m->live) {
		nmap_swap(m, NULL);
	} else if (t->mask + 1 > NTAB_MIN && 8 * m->live < t->mask + 1) {
		struct ntab *nt = ntab_build(m, ntab_cap_for(m->live));

		if (nt)
			nmap_swap(m, nt);
	}
}

/* Call @fn on every live object (writer, or no writer left). */
#define NMAP_FOREACH(m, o)                                                                    \
	for (uint32_t _i = 0; (m)->t && _i <= (m)->t->mask; _i++)                              \
		if (((o) = (void *)(m)->t->slot[_i]) && (void *)(o) != (void *)TOMB)

/* ---- destination arrays ------------------------------------------------------------- */

/* Entries d[0, n) are visible; 0 marks a removed one. Appends in place while there is room. */
struct dset {
	struct rcu_head rcu;
	uint32_t n;    /* readers: acquire */
	uint32_t cap;  /* writer */
	uint32_t live; /* writer: nonzero entries */
	uintptr_t d[];
};

static void
free_rcu_dset(struct rcu_head *h)
{
	free(caa_container_of(h, struct dset, rcu));
}

/* A compacted copy of @s (may be NULL) with room for @cap. */
static struct dset *
dset_copy(const struct dset *s, uint32_t cap)
{
	struct dset *ns = malloc(sizeof(*ns) + cap * sizeof(ns->d[0]));

	if (!ns)
		return NULL;
	ns->n = 0;
	ns->cap = cap;
	for (uint32_t i = 0; s && i < s->n; i++)
		if (s->d[i])
			ns->d[ns->n++] = s->d[i];
	ns->live = ns->n;
	return ns;
}

/* Append @v. 0 or -ENOMEM (nothing changed). Writer. */
static int
dset_add(struct dset **pp, uintptr_t v)
{
	struct dset *s = *pp, *ns;

	if (s && s->n < s->cap) {
		s->d[s->n] = v;
		__atomic_store_n(&s->n, s->n + 1, __ATOMIC_RELEASE);
		s->live++;
		return 0;
	}
	ns = dset_copy(s, s ? 2 * (s->live + 1) : 4);
	if (!ns)
		return -ENOMEM;
	ns->d[ns->n++] = v;
	ns->live++;
	rcu_assign_pointer(*pp, ns);
	if (s)
		urcu_qsbr_call_rcu(&s->rcu, free_rcu_dset);
	return 0;
}

/* Remove one @v. Leaves *@pp NULL when it was the last. Writer; never fails. */
static void
dset_del(struct dset **pp, uintptr_t v)
{
	struct dset *s = *pp;
	uint32_t i;

	for (i = 0; i < s->n && s->d[i] != v; i++)
		;
	if (i == s->n)
		return;
	__atomic_store_n(&s->d[i], 0, __ATOMIC_RELAXED);
	if (!--s->live) {
		rcu_assign_pointer(*pp, NULL);
		urcu_qsbr_call_rcu(&s->rcu, free_rcu_dset);
	} else if (s->n >= 16 && 4 * s->live < s->n) {
		struct dset *ns = dset_copy(s, 2 * s->live);

		if (ns) { /* without memory the holes simply stay */
			rcu_assign_pointer(*pp, ns);
			urcu_qsbr_call_rcu(&s->rcu, free_rcu_dset);
		}
	}
}

/* ---- the objects -------------------------------------------------------------------- */

enum xmatch { XM_ALL, XM_ANY, XM_ALL_X, XM_ANY_X };

struct xchg;

/*
 * A binding. Immutable once linked except its list links (writer). Readers reach it only
 * through a headers exchange's array; freed with call_rcu.
 */
struct binding {
	struct rcu_head rcu;
	struct cds_list_head out; /* in src->out */
	struct cds_list_head in;  /* in the destination's in */
	struct binding *hnext;    /* in the vhost's binding hash */
	uint32_t h;
	uint8_t xmatch;           /* enum xmatch (headers sources) */
	struct xchg *src;
	uintptr_t dst;            /* tagged destination */
	const char *key;
	uint32_t klen;
	uint32_t nargs;
	struct tq_xheader *args;  /* sorted by key (stable); strings in this allocation */
};

/* Freed with call_rcu once unlinked (unless leaked, see tq_exchange.h). */
struct xqueue {
	struct nobj n;
	struct rcu_head rcu;
	uint64_t qid;
	struct cds_list_head in; /* writer: bindings to it */
	uint8_t dead;            /* readers: relaxed */
	bool leaked;             /* writer */
};

/* A direct exchange's key and its destinations. */
struct dkey {
	struct nobj n;
	struct rcu_head rcu;
	struct dset *set; /* rcu; never NULL while linked */
};

struct xchg {
	struct nobj n;
	struct rcu_head rcu;
	uint8_t type;   /* enum tq_exchange_type */
	uint8_t flags;  /* TQ_EXCHANGE_* */
	bool is_default;
	bool has_ae;
	uint8_t dead;   /* readers: relaxed */
	bool dying;     /* writer: being deleted, its own routing state is left as it is */
	bool leaked;    /* writer */
	uint32_t ae_len;
	uint32_t ae_h;
	const char *ae;
	union {
		struct dset *set;     /* fanout: destinations; headers: bindings (rcu) */
		struct nmap direct;   /* key -> struct dkey */
		struct tq_trie *topic;
	} rt;
	struct cds_list_head out; /* writer: bindings from it */
	struct cds_list_head in;  /* writer: bindings to it */
	uint32_t nout;
	struct xchg *doomed_next;
};

/* Bindings by (source, destination, key); writer only, chains. */
struct bindex {
	struct binding **tab;
	uint32_t mask;
	uint32_t n;
};

struct xvhost {
	struct nobj n;
	struct rcu_head rcu;
	struct nmap xs; /* exchanges */
	struct nmap qs; /* queues */
	struct bindex bx;
};

struct tq_exchange_reg {
	pthread_mutex_t lock; /* writers */
	uint64_t wgen;        /* bumped by every writer as it lets go of the lock (tq_exchange_gen) */
	struct nmap vhosts;
	uint64_t seed;
	struct tq_exchange_stats st; /* writer writes, anyone reads (relaxed) */
};

/* Every writer ends here: readers that cached an answer see the generation move. */
static void
writer_unlock(struct tq_exchange_reg *r)
{
	__atomic_store_n(&r->wgen, r->wgen + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->lock);
}

#define DST_XCHG 1u

static inline uintptr_t
dst_of_queue(const struct xqueue *q)
{
	return (uintptr_t)q;
}

static inline uintptr_t
dst_of_xchg(const struct xchg *x)
{
	return (uintptr_t)x | DST_XCHG;
}

static inline bool
dst_is_xchg(uintptr_t d)
{
	return d & DST_XCHG;
}

static inline struct xchg *
dst_xchg(uintptr_t d)
{
	return (struct xchg *)(d & ~(uintptr_t)DST_XCHG);
}

static inline struct xqueue *
dst_queue(uintptr_t d)
{
	return (struct xqueue *)d;
}

static void
stat_add(uint64_t *c, int64_t d)
{
	__atomic_store_n(c, *c + (uint64_t)d, __ATOMIC_RELAXED);
}

/* ---- freeing ------------------------------------------------------------------------ */

static void
free_rcu_plain_binding(struct rcu_head *h)
{
	free(caa_container_of(h, struct binding, rcu));
}

static void
free_rcu_queue(struct rcu_head *h)
{
	free(caa_container_of(h, struct xqueue, rcu));
}

static void
dkey_free(struct dkey *k)
{
	free(k->set);
	free(k);
}

static void
free_rcu_dkey(struct rcu_head *h)
{
	dkey_free(caa_container_of(h, struct dkey, rcu));
}

/* An exchange and its routing state (not its bindings, which are freed on their own). */
static void
xchg_free(struct xchg *x)
{
	struct dkey *k;

	switch (x->type) {
	case TQ_EXCHANGE_DIRECT:
		NMAP_FOREACH(&x->rt.direct, k)
			dkey_free(k);
		free(x->rt.direct.t);
		break;
	case TQ_EXCHANGE_TOPIC:
		tq_trie_destroy(x->rt.topic);
		break;
	default:
		free(x->rt.set);
		break;
	}
	free(x);
}

static void
free_rcu_xchg(struct rcu_head *h)
{
	xchg_free(caa_container_of(h, struct xchg, rcu));
}

/* Everything a vhost holds, at once: nobody can reach any of it any more. */
static void
vhost_free_all(struct xvhost *vh)
{
	struct xchg *x;
	struct xqueue *q;

	for (uint32_t i = 0; vh->bx.tab && i <= vh->bx.mask; i++) {
		for (struct binding *b = vh->bx.tab[i], *nb; b; b = nb) {
			nb = b->hnext;
			free(b);
		}
	}
	free(vh->bx.tab);
	NMAP_FOREACH(&vh->xs, x)
		xchg_free(x);
	NMAP_FOREACH(&vh->qs, q)
		free(q);
	free(vh->xs.t);
	free(vh->qs.t);
	free(vh);
}

static void
free_rcu_vhost(struct rcu_head *h)
{
	vhost_free_all(caa_container_of(h, struct xvhost, rcu));
}

/* ---- field values ------------------------------------------------------------------- */

static bool
tag_known(uint8_t t)
{
	return t && strchr("tbBsuIilfdDSATFVx", t);
}

static bool
tag_bytes(uint8_t t)
{
	return t == 'S' || t == 'x' || t == 'F' || t == 'A';
}

/* A number as Erlang sees it: an integer (sign, magnitude) or a float. */
struct num {
	bool is_float;
	bool neg;
	uint64_t mag;
	double d;
};

static bool
as_num(const struct tq_xheader *h, struct num *n)
{
	*n = (struct num){0};
	switch (h->tag) {
	case 'b': case 's': case 'I': case 'l':
		n->neg = h->v.i < 0;
		n->mag = n->neg ? 0 - (uint64_t)h->v.i : (uint64_t)h->v.i;
		return true;
	case 'B': case 'u': case 'i': case 'T':
		n->mag = h->v.u;
		return true;
	case 'f':
		n->is_float = true;
		n->d = (double)h->v.f;
		return true;
	case 'd':
		n->is_float = true;
		n->d = h->v.d;
		return true;
	default:
		return false;
	}
}

/* An integer against a float: equal only when the float is that integer exactly. */
static bool
int_eq_float(const struct num *i, double d)
{
	bool neg = d < 0;
	double a = neg ? -d : d;
	uint64_t m;

	if (!(a < 18446744073709551616.0)) /* also NaN */
		return false;
	m = (uint64_t)a;
	if ((double)m != a)
		return false;
	return m == 0 ? i->mag == 0 : (neg == i->neg && m == i->mag);
}

static bool
num_eq(const struct num *a, const struct num *b)
{
	if (a->is_float && b->is_float)
		return a->d == b->d;
	if (a->is_float)
		return int_eq_float(b, a->d);
	if (b->is_float)
		return int_eq_float(a, b->d);
	return a->neg == b->neg && a->mag == b->mag;
}

/* A header value against a condition's (not void), as RabbitMQ's '==' compares them. */
static bool
value_eq(const struct tq_xheader *c, const struct tq_xheader *h)
{
	struct num a, b;

	if (as_num(c, &a))
		return as_num(h, &b) && num_eq(&a, &b);
	switch (c->tag) {
	case 't':
		return h->tag == 't' && !c->v.b == !h->v.b;
	case 'D':
		return h->tag == 'D' && c->v.dec.scale == h->v.dec.scale &&
		       c->v.dec.value == h->v.dec.value;
	case 'S':
	case 'x': /* both are Erlang binaries */
		return (h->tag == 'S' || h->tag == 'x') && c->v.bytes.len == h->v.bytes.len &&
		       mem_eq(c->v.bytes.p, h->v.bytes.p, c->v.bytes.len);
	case 'F':
	case 'A':
		if (h->tag != 'F' && h->tag != 'A')
			return false;
		if (!c->v.bytes.len && !h->v.bytes.len) /* [] == [] */
			return true;
		return h->tag == c->tag && c->v.bytes.len == h->v.bytes.len &&
		       mem_eq(c->v.bytes.p, h->v.bytes.p, c->v.bytes.len);
	default:
		return false;
	}
}

/* Identity of binding arguments: same tag, same value, bit for bit. */
static bool
value_same(const struct tq_xheader *a, const struct tq_xheader *b)
{
	if (a->tag != b->tag || a->klen != b->klen || !mem_eq(a->key, b->key, a->klen))
		return false;
	switch (a->tag) {
	case 't':
		return !a->v.b == !b->v.b;
	case 'b': case 's': case 'I': case 'l':
		return a->v.i == b->v.i;
	case 'B': case 'u': case 'i': case 'T':
		return a->v.u == b->v.u;
	case 'f':
		return !memcmp(&a->v.f, &b->v.f, sizeof(float));
	case 'd':
		return !memcmp(&a->v.d, &b->v.d, sizeof(double));
	case 'D':
		return a->v.dec.scale == b->v.dec.scale && a->v.dec.value == b->v.dec.value;
	case 'V':
		return true;
	default:
		return a->v.bytes.len == b->v.bytes.len &&
		       mem_eq(a->v.bytes.p, b->v.bytes.p, a->v.bytes.len);
	}
}

static bool
key_is(const struct tq_xheader *h, const char *k)
{
	size_t n = strlen(k);

	return h->klen == n && mem_eq(h->key, k, n);
}

/* Erlang's order of binaries: bytes, then the shorter first. */
static int
key_cmp(const struct tq_xheader *a, const struct tq_xheader *b)
{
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = n ? memcmp(a->key, b->key, n) : 0;

	return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

static const struct tq_xheader *
args_get(const struct tq_xheader *a, uint32_t n, const char *key, size_t klen)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i].klen == klen && mem_eq(a[i].key, key, klen))
			return &a[i];
	return NULL;
}

/* ---- headers matching (readers) --------------------------------------------------- */

static bool
headers_match(const struct binding *b, const struct tq_xheader *hs, uint32_t nh)
{
	bool any = b->xmatch == XM_ANY || b->xmatch == XM_ANY_X;
	bool with_x = b->xmatch == XM_ALL_X || b->xmatch == XM_ANY_X;

	for (uint32_t i = 0; i < b->nargs; i++) {
		const struct tq_xheader *c = &b->args[i], *h;
		bool ok;

		if (key_is(c, "x-match"))
			continue;
		if (!with_x && c->klen >= 2 && c->key[0] == 'x' && c->key[1] == '-')
			continue;
		h = args_get(hs, nh, c->key, c->klen);
		ok = h && (c->tag == 'V' || value_eq(c, h));
		if (any && ok)
			return true;
		if (!any && !ok)
			return false;
	}
	return !any;
}

/* ---- bindings (writer) -------------------------------------------------------------- */

static uint32_t
bkey_hash(const struct tq_exchange_reg *r, const struct xchg *src, uintptr_t dst,
	  const char *key, size_t klen)
{
	return name_hash(r->seed ^ hmix((uint64_t)(uintptr_t)src) ^ hmix(dst + 1), key, klen);
}

static void
bindex_insert(struct bindex *bx, struct binding *b)
{
	if (bx->n + 1 > 2 * (bx->mask + 1)) {
		uint32_t cap = 2 * (bx->mask + 1);
		struct binding **t = calloc(cap, sizeof(*t));

		if (t) { /* without memory the chains get longer */
			for (uint32_t i = 0; i <= bx->mask; i++) {
				for (struct binding *e = bx->tab[i], *ne; e; e = ne) {
					ne = e->hnext;
					e->hnext = t[e->h & (cap - 1)];
					t[e->h & (cap - 1)] = e;
				}
			}
			free(bx->tab);
			bx->tab = t;
			bx->mask = cap - 1;
		}
	}
	b->hnext = bx->tab[b->h & bx->mask];
	bx->tab[b->h & bx->mask] = b;
	bx->n++;
}

static void
bindex_remove(struct bindex *bx, struct binding *b)
{
	struct binding **pp = &bx->tab[b->h & bx->mask];

	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
	bx->n--;
}

static bool
same_route(const struct binding *a, const struct binding *b)
{
	return a->h == b->h && a->src == b->src && a->dst == b->dst && a->klen == b->klen &&
	       mem_eq(a->key, b->key, a->klen);
}

static struct binding *
bindex_find_exact(const struct bindex *bx, const struct binding *c)
{
	for (struct binding *b = bx->tab[c->h & bx->mask]; b; b = b->hnext) {
		uint32_t i;

		if (!same_route(b, c) || b->nargs != c->nargs)
			continue;
		for (i = 0; i < b->nargs && value_same(&b->args[i], &c->args[i]); i++)
			;
		if (i == b->nargs)
			return b;
	}
	return NULL;
}

/* Linked bindings with @c's (source, destination, key), @c included if linked. */
static uint32_t
bindex_count_route(const struct bindex *bx, const struct binding *c)
{
	uint32_t n = 0;

	for (struct binding *b = bx->tab[c->h & bx->mask]; b; b = b->hnext)
		n += same_route(b, c);
	return n;
}

struct arg_ref {
	const struct tq_xheader *h;
	uint32_t i;
};

static int
arg_ref_cmp(const void *pa, const void *pb)
{
	const struct arg_ref *a = pa, *b = pb;
	int c = key_cmp(a->h, b->h);

	return c ? c : (a->i > b->i) - (a->i < b->i);
}

/*
 * A binding not yet linked: key and arguments copied (arguments sorted by key, stably), in
 * one allocation. -EINVAL for an unknown tag or over-long key; -ENOMEM.
 */
static int
binding_build(const struct tq_exchange_reg *r, struct xchg *src, uintptr_t dst,
	      const struct tq_exchange_binding *spec, struct binding **out)
{
	size_t size = sizeof(struct binding) + spec->nargs * sizeof(struct tq_xheader) + spec->klen;
	struct arg_ref *refs = NULL;
	struct binding *b;
	char *p;

	if (spec->klen > TQ_EXCHANGE_NAME_MAX || (spec->nargs && !spec->args))
		return -EINVAL;
	for (uint32_t i = 0; i < spec->nargs; i++) {
		const struct tq_xheader *a = &spec->args[i];

		if (!tag_known(a->tag) || (a->klen && !a->key) ||
		    (tag_bytes(a->tag) && a->v.bytes.len && !a->v.bytes.p))
			return -EINVAL;
		size += a->klen + (tag_bytes(a->tag) ? a->v.bytes.len : 0);
	}
	if (spec->nargs && !(refs = malloc(spec->nargs * sizeof(*refs))))
		return -ENOMEM;
	b = calloc(1, size);
	if (!b) {
		free(refs);
		return -ENOMEM;
	}
	b->src = src;
	b->dst = dst;
	b->nargs = spec->nargs;
	b->args = (struct tq_xheader *)(b + 1);
	p = (char *)(b->args + spec->nargs);
	mem_copy(p, spec->key, spec->klen);
	b->key = p;
	b->klen = (uint32_t)spec->klen;
	p += spec->klen;
	for (uint32_t i = 0; i < spec->nargs; i++)
		refs[i] = (struct arg_ref){.h = &spec->args[i], .i = i};
	if (spec->nargs > 1)
		qsort(refs, spec->nargs, sizeof(*refs), arg_ref_cmp);
	for (uint32_t i = 0; i < spec->nargs; i++) {
		struct tq_xheader *a = &b->args[i];

		*a = *refs[i].h;
		mem_copy(p, a->key, a->klen);
		a->key = p;
		p += a->klen;
		if (a->tag == 't')
			a->v.b = !!a->v.b;
		if (tag_bytes(a->tag)) {
			mem_copy(p, a->v.bytes.p, a->v.bytes.len);
			a->v.bytes.p = (const uint8_t *)p;
			p += a->v.bytes.len;
		}
	}
	free(refs);
	b->h = bkey_hash(r, src, dst, b->key, b->klen);
	*out = b;
	return 0;
}

/* A headers binding's x-match: 0 or -EINVAL (RabbitMQ's validate_binding). */
static int
binding_xmatch(struct binding *b)
{
	static const char *const modes[] = {"all", "any", "all-with-x", "any-with-x"};
	const struct tq_xheader *m = args_get(b->args, b->nargs, "x-match", 7);

	b->xmatch = XM_ALL;
	if (!m)
		return 0;
	if (m->tag != 'S')
		return -EINVAL;
	for (uint8_t i = 0; i < 4; i++) {
		if (m->v.bytes.len == strlen(modes[i]) &&
		    mem_eq(m->v.bytes.p, modes[i], m->v.bytes.len)) {
			b->xmatch = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Publish @b in its source's routing state. 0, -EINVAL (topic key), -ENOMEM. Writer. */
static int
rt_add(struct tq_exchange_reg *r, struct binding *b)
{
	struct xchg *x = b->src;
	struct dkey *k;
	int rc;

	switch (x->type) {
	case TQ_EXCHANGE_DIRECT: {
		uint32_t h = name_hash(r->seed, b->key, b->klen);

		k = (struct dkey *)nmap_find(&x->rt.direct, b->key, b->klen, h);
		if (k)
			return dset_add(&k->set, b->dst);
		k = calloc(1, sizeof(*k) + b->klen + 1);
		if (!k)
			return -ENOMEM;
		mem_copy(k + 1, b->key, b->klen);
		k->n = (struct nobj){.h = h, .len = b->klen, .name = (const char *)(k + 1)};
		if (dset_add(&k->set, b->dst) < 0 || nmap_insert(&x->rt.direct, &k->n) < 0) {
			dkey_free(k); /* never published */
			return -ENOMEM;
		}
		return 0;
	}
	case TQ_EXCHANGE_FANOUT:
		return dset_add(&x->rt.set, b->dst);
	case TQ_EXCHANGE_TOPIC:
		rc = tq_trie_add(x->rt.topic, b->key, b->klen, NULL, 0, b->dst, 0);
		return rc < 0 ? rc : 0;
	default:
		return dset_add(&x->rt.set, (uintptr_t)b);
	}
}

/*
 * Withdraw linked @b from its source's routing state. Only the trie can fail (-ENOMEM,
 * nothing changed); the topic entry is shared by every binding with the same (source,
 * destination, key), so it goes with the last of them. Writer.
 */
static int
rt_del(struct tq_exchange_reg *r, struct xvhost *vh, struct binding *b)
{
	struct xchg *x = b->src;
	struct dkey *k;
	int rc;

	switch (x->type) {
	case TQ_EXCHANGE_DIRECT:
		k = (struct dkey *)nmap_find(&x->rt.direct, b->key, b->klen,
					     name_hash(r->seed, b->key, b->klen));
		if (k->set->live == 1) { /* the key goes, its array with it */
			nmap_unlink(&x->rt.direct, &k->n);
			urcu_qsbr_call_rcu(&k->rcu, free_rcu_dkey);
		} else {
			dset_del(&k->set, b->dst);
		}
		return 0;
	case TQ_EXCHANGE_FANOUT:
		dset_del(&x->rt.set, b->dst);
		return 0;
	case TQ_EXCHANGE_TOPIC:
		if (bindex_count_route(&vh->bx, b) > 1)
			return 0;
		rc = tq_trie_remove(x->rt.topic, b->key, b->klen, NULL, 0, b->dst);
		return rc == -ENOENT ? 0 : rc;
	default:
		dset_del(&x->rt.set, (uintptr_t)b);
		return 0;
	}
}

static struct cds_list_head *
dst_in_list(uintptr_t d)
{
	return dst_is_xchg(d) ? &dst_xchg(d)->in : &dst_queue(d)->in;
}

/* Drop linked @b from the writer's lists and retire it (its routing state already done). */
static void
binding_retire(struct tq_exchange_reg *r, struct xvhost *vh, struct binding *b)
{
	cds_list_del(&b->out);
	cds_list_del(&b->in);
	bindex_remove(&vh->bx, b);
	__atomic_store_n(&b->src->nout, b->src->nout - 1, __ATOMIC_RELAXED); /* may_route */
	stat_add(&r->st.bindings, -1);
	urcu_qsbr_call_rcu(&b->rcu, free_rcu_plain_binding);
}

/*
 * Remove @b as part of deleting its destination: when the trie cannot let go of the entry,
 * the destination stays allocated for it (leaked, skipped by readers as dead).
 */
static void
binding_drop_for_dst(struct tq_exchange_reg *r, struct xvhost *vh, struct binding *b)
{
	if (!b->src->dying && rt_del(r, vh, b) < 0) {
		if (dst_is_xchg(b->dst))
			dst_xchg(b->dst)->leaked = true;
		else
			dst_queue(b->dst)->leaked = true;
	}
	binding_retire(r, vh, b);
}

/* ---- exchanges (writer) ------------------------------------------------------------- */

static bool
reserved_name(const char *name, size_t len)
{
	return len >= 4 && mem_eq(name, "amq.", 4);
}

static int
type_parse(const char *s, size_t len)
{
	static const char *const names[] = {
		[TQ_EXCHANGE_DIRECT] = "direct",
		[TQ_EXCHANGE_FANOUT] = "fanout",
		[TQ_EXCHANGE_TOPIC] = "topic",
		[TQ_EXCHANGE_HEADERS] = "headers",
	};

	for (int i = 0; i < 4; i++)
		if (len == strlen(names[i]) && mem_eq(s, names[i], len))
			return i;
	return -ENOTSUP;
}

static struct xchg *
xchg_new(const struct tq_exchange_reg *r, const char *name, size_t nlen, int type,
	 uint32_t flags, const struct tq_xheader *ae)
{
	size_t ae_len = ae ? ae->v.bytes.len : 0;
	struct xchg *x = calloc(1, sizeof(*x) + nlen + 1 + ae_len + 1);
	char *p = (char *)(x + 1);

	if (!x)
		return NULL;
	mem_copy(p, name, nlen);
	x->n = (struct nobj){.h = name_hash(r->seed, name, nlen), .len = (uint32_t)nlen, .name = p};
	p += nlen + 1;
	x->type = (uint8_t)type;
	x->flags = (uint8_t)flags;
	if (ae) {
		mem_copy(p, ae->v.bytes.p, ae_len);
		x->has_ae = true;
		x->ae = p;
		x->ae_len = (uint32_t)ae_len;
		x->ae_h = name_hash(r->seed, p, ae_len);
	}
	CDS_INIT_LIST_HEAD(&x->out);
	CDS_INIT_LIST_HEAD(&x->in);
	if (type == TQ_EXCHANGE_TOPIC && !(x->rt.topic = tq_trie_create(TQ_TRIE_AMQP))) {
		free(x);
		return NULL;
	}
	return x;
}

static struct xvhost *
vhost_find(const struct tq_exchange_reg *r, const char *name, size_t len)
{
	if (len > TQ_EXCHANGE_NAME_MAX || (len && !name))
		return NULL;
	return (struct xvhost *)nmap_find(&r->vhosts, name, len, name_hash(r->seed, name, len));
}

static struct xchg *
xchg_find(const struct tq_exchange_reg *r, const struct xvhost *vh, const char *name, size_t len)
{
	if (len > TQ_EXCHANGE_NAME_MAX || (len && !name))
		return NULL;
	return (struct xchg *)nmap_find(&vh->xs, name, len, name_hash(r->seed, name, len));
}

static struct xqueue *
queue_find(const struct tq_exchange_reg *r, const struct xvhost *vh, const char *name, size_t len)
{
	if (len > TQ_EXCHANGE_NAME_MAX || (len && !name))
		return NULL;
	return (struct xqueue *)nmap_find(&vh->qs, name, len, name_hash(r->seed, name, len));
}

/*
 * Delete @first and every auto-delete source left without bindings by that, and so on.
 * A dying exchange's own routing state is left alone (readers may still be in it; it is
 * freed whole after a grace period); bindings into it are withdrawn from their sources.
 */
static void
xchg_kill(struct tq_exchange_reg *r, struct xvhost *vh, struct xchg *first)
{
	struct xchg *stack = first, *y;

	first->dying = true;
	first->doomed_next = NULL;
	while ((y = stack)) {
		stack = y->doomed_next;
		while (!cds_list_empty(&y->out))
			binding_retire(r, vh, cds_list_first_entry(&y->out, struct binding, out));
		while (!cds_list_empty(&y->in)) {
			struct binding *b = cds_list_first_entry(&y->in, struct binding, in);
			struct xchg *s = b->src;

			binding_drop_for_dst(r, vh, b);
			if ((s->flags & TQ_EXCHANGE_AUTO_DELETE) && !s->nout && !s->dying) {
				s->dying = true;
				s->doomed_next = stack;
				stack = s;
			}
		}
		nmap_unlink(&vh->xs, &y->n);
		__atomic_store_n(&y->dead, 1, __ATOMIC_RELAXED);
		stat_add(&r->st.exchanges, -1);
		if (!y->leaked)
			urcu_qsbr_call_rcu(&y->rcu, free_rcu_xchg);
		else
			stat_add(&r->st.leaked, 1);
	}
}

/* After a binding from @s went: an auto-delete exchange goes with its last one. */
static void
maybe_auto_delete(struct tq_exchange_reg *r, struct xvhost *vh, struct xchg *s)
{
	if ((s->flags & TQ_EXCHANGE_AUTO_DELETE) && !s->nout && !s->dying)
		xchg_kill(r, vh, s);
}

/* ---- registry ----------------------------------------------------------------------- */

struct tq_exchange_reg *
tq_exchange_reg_create(void)
{
	struct tq_exchange_reg *r = calloc(1, sizeof(*r));

	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != sizeof(r->seed)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		r->seed = hmix((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)r);
	}
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

void
tq_exchange_reg_destroy(struct tq_exchange_reg *r)
{
	struct xvhost *vh;

	if (!r)
		return;
	NMAP_FOREACH(&r->vhosts, vh)
		vhost_free_all(vh);
	free(r->vhosts.t);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct {
	const char *name;
	int type;
} builtin[] = {
	{"", TQ_EXCHANGE_DIRECT},
	{"amq.direct", TQ_EXCHANGE_DIRECT},
	{"amq.fanout", TQ_EXCHANGE_FANOUT},
	{"amq.topic", TQ_EXCHANGE_TOPIC},
	{"amq.headers", TQ_EXCHANGE_HEADERS},
	{"amq.match", TQ_EXCHANGE_HEADERS},
};

int
tq_exchange_vhost_add(struct tq_exchange_reg *r, const char *name, size_t len)
{
	struct xvhost *vh;
	int rc = -ENOMEM;

	if (len > TQ_EXCHANGE_NAME_MAX || (len && !name))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (vhost_find(r, name, len)) {
		rc = -EEXIST;
		goto out;
	}
	vh = calloc(1, sizeof(*vh) + len + 1);
	if (!vh)
		goto out;
	mem_copy(vh + 1, name, len);
	vh->n = (struct nobj){.h = name_hash(r->seed, name, len), .len = (uint32_t)len,
			      .name = (const char *)(vh + 1)};
	vh->bx.mask = 15;
	vh->bx.tab = calloc(vh->bx.mask + 1, sizeof(vh->bx.tab[0]));
	if (!vh->bx.tab)
		goto fail;
	/* Built completely before it is published: plain inserts, no reader sees it yet. */
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		struct xchg *x = xchg_new(r, builtin[i].name, strlen(builtin[i].name),
					  builtin[i].type, TQ_EXCHANGE_DURABLE, NULL);

		if (!x)
			goto fail;
		x->is_default = !builtin[i].name[0];
		if (nmap_insert(&vh->xs, &x->n) < 0) {
			xchg_free(x);
			goto fail;
		}
	}
	if (nmap_insert(&r->vhosts, &vh->n) < 0)
		goto fail;
	stat_add(&r->st.vhosts, 1);
	stat_add(&r->st.exchanges, (int64_t)(sizeof(builtin) / sizeof(builtin[0])));
	rc = 0;
	goto out;
fail:
	/* tables it replaced while filling went to call_rcu; what it holds now goes here */
	vhost_free_all(vh);
out:
	writer_unlock(r);
	return rc;
}

int
tq_exchange_vhost_del(struct tq_exchange_reg *r, const char *name, size_t len)
{
	struct xvhost *vh;

	pthread_mutex_lock(&r->lock);
	vh = vhost_find(r, name, len);
	if (!vh) {
		writer_unlock(r);
		return -ENOENT;
	}
	nmap_unlink(&r->vhosts, &vh->n);
	stat_add(&r->st.vhosts, -1);
	stat_add(&r->st.exchanges, -(int64_t)vh->xs.live);
	stat_add(&r->st.queues, -(int64_t)vh->qs.live);
	stat_add(&r->st.bindings, -(int64_t)vh->bx.n);
	urcu_qsbr_call_rcu(&vh->rcu, free_rcu_vhost);
	writer_unlock(r);
	return 0;
}

int
tq_exchange_declare(struct tq_exchange_reg *r, const char *vhn, size_t vlen,
		    const struct tq_exchange_decl *d)
{
	const struct tq_xheader *ae = NULL;
	struct xvhost *vh;
	struct xchg *x;
	uint32_t flags = d->flags & (TQ_EXCHANGE_DURABLE | TQ_EXCHANGE_AUTO_DELETE |
				     TQ_EXCHANGE_INTERNAL);
	int type = 0, rc;

	if (d->nlen > TQ_EXCHANGE_NAME_MAX || (d->nlen && !d->name) || (d->nargs && !d->args))
		return -EINVAL;
	if (!d->passive && (type = type_parse(d->type, d->tlen)) < 0)
		return type;
	if (!d->passive && !d->nlen)
		return -EPERM;
	pthread_mutex_lock(&r->lock);
	vh = vhost_find(r, vhn, vlen);
	if (!vh) {
		rc = -ENOENT;
		goto out;
	}
	x = xchg_find(r, vh, d->name, d->nlen);
	if (d->passive) {
		rc = x ? 1 : -ENOENT;
		goto out;
	}
	ae = args_get(d->args, d->nargs, "alternate-exchange", 18);
	if (ae && (ae->tag != 'S' || ae->v.bytes.len > TQ_EXCHANGE_NAME_MAX ||
		   (ae->v.bytes.len && !ae->v.bytes.p))) {
		rc = x ? -EEXIST : -EINVAL; /* an existing one: inequivalent argument */
		goto out;
	}
	if (x) {
		bool same_ae = ae ? x->has_ae && x->ae_len == ae->v.bytes.len &&
					    mem_eq(x->ae, ae->v.bytes.p, x->ae_len)
				  : !x->has_ae;

		rc = x->type == type && x->flags == flags && same_ae ? 1 : -EEXIST;
		goto out;
	}
	if (reserved_name(d->name, d->nlen)) {
		rc = -EPERM;
		goto out;
	}
	rc = -ENOMEM;
	x = xchg_new(r, d->name, d->nlen, type, flags, ae);
	if (!x)
		goto out;
	if (nmap_insert(&vh->xs, &x->n) < 0) {
		xchg_free(x);
		goto out;
	}
	stat_add(&r->st.exchanges, 1);
	rc = 0;
out:
	writer_unlock(r);
	return rc;
}

int
tq_exchange_delete(struct tq_exchange_reg *r, const char *vhn, size_t vlen, const char *name,
		   size_t nlen, bool if_unused)
{
	struct xvhost *vh;
	struct xchg *x;
	int rc = 0;

	if (!nlen || reserved_name(name, nlen))
		return -EPERM;
	pthread_mutex_lock(&r->lock);
	vh = vhost_find(r, vhn, vlen);
	if (!vh) {
		rc = -ENOENT;
		goto out;
	}
	x = xchg_find(r, vh, name, nlen);
	if (!x)
		rc = 1;
	else if (if_unused && x->nout)
		rc = -EBUSY;
	else
		xchg_kill(r, vh, x);
out:
	writer_unlock(r);
	return rc;
}

static void
xchg_info(const struct xchg *x, struct tq_exchange_info *out)
{
	*out = (struct tq_exchange_info){
		.name = x->n.name,
		.nlen = x->n.len,
		.type = (enum tq_exchange_type)x->type,
		.flags = x->flags,
		.has_ae = x->has_ae,
		.ae = x->ae,
		.ae_len = x->ae_len,
	};
}

int
tq_exchange_info(const struct tq_exchange_reg *r, const char *vhn, size_t vlen, const char *name,
		 size_t nlen, struct tq_exchange_info *out)
{
	const struct xvhost *vh = vhost_find(r, vhn, vlen);
	const struct xchg *x = vh ? xchg_find(r, vh, name, nlen) : NULL;

	if (!x)
		return -ENOENT;
	xchg_info(x, out);
	return 0;
}

/* ---- queues ------------------------------------------------------------------------- */

int
tq_exchange_queue_add(struct tq_exchange_reg *r, const char *vhn, size_t vlen, const char *name,
		      size_t nlen, uint64_t qid)
{
	struct xvhost *vh;
	struct xqueue *q;
	int rc = -ENOMEM;

	if (nlen > TQ_EXCHANGE_NAME_MAX || (nlen && !name))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	vh = vhost_find(r, vhn, vlen);
	if (!vh) {
		rc = -ENOENT;
		goto out;
	}
	if (queue_find(r, vh, name, nlen)) {
		rc = -EEXIST;
		goto out;
	}
	q = calloc(1, sizeof(*q) + nlen + 1);
	if (!q)
		goto out;
	mem_copy(q + 1, name, nlen);
	q->n = (struct nobj){.h = name_hash(r->seed, name, nlen), .len = (uint32_t)nlen,
			     .name = (const char *)(q + 1)};
	q->qid = qid;
	CDS_INIT_LIST_HEAD(&q->in);
	if (nmap_insert(&vh->qs, &q->n) < 0) {
		free(q);
		goto out;
	}
	stat_add(&r->st.queues, 1);
	rc = 0;
out:
	writer_unlock(r);
	return rc;
}

int
tq_exchange_queue_del(struct tq_exchange_reg *r, const char *vhn, size_t vlen, const char *name,
		      size_t nlen)
{
	struct xvhost *vh;
	struct xqueue *q;
	int rc = -ENOENT;

	pthread_mutex_lock(&r->lock);
	vh = vhost_find(r, vhn, vlen);
	q = vh ? queue_find(r, vh, name, nlen) : NULL;
	if (!q)
		goto out;
	nmap_unlink(&vh->qs, &q->n);
	__atomic_store_n(&q->dead, 1, __ATOMIC_RELAXED);
	while (!cds_list_empty(&q->in)) {
		struct binding *b = cds_list_first_entry(&q->in, struct binding, in);
		struct xchg *s = b->src;

		binding_drop_for_dst(r, vh, b);
		maybe_auto_delete(r, vh, s);
	}
	stat_add(&r->st.queues, -1);
	if (!q->leaked)
		urcu_qsbr_call_rcu(&q->rcu, free_rcu_queue);
	else
		stat_add(&r->st.leaked, 1);
	rc = 0;
out:
	writer_unlock(r);
	return rc;
}

int
tq_exchange_queue_find(const struct tq_exchange_reg *r, const char *vhn, size_t vlen,
		       const char *name, size_t nlen, uint64_t *qid)
{
	const struct xvhost *vh = vhost_find(r, vhn, vlen);
	const struct xqueue *q = vh ? queue_find(r, vh, name, nlen) : NULL;

	if (!q)
		return -ENOENT;
	if (qid)
		*qid = q->qid;
	return 0;
}

/* ---- binding and unbinding ---------------------------------------------------------- */

/* The ends of a binding, in RabbitMQ's order of checks. */
static int
binding_ends(const struct tq_exchange_reg *r, const char *vhn, size_t vlen,
	     const struct tq_exchange_binding *spec, struct xvhost **vh, struct xchg **src,
	     uintptr_t *dst)
{
	if (!spec->slen || (spec->kind == TQ_EXCHANGE_TO_EXCHANGE && !spec->dlen))
		return -EPERM;
	if (!(*vh = vhost_find(r, vhn, vlen)) || !(*src = xchg_find(r, *vh, spec->src, spec->slen)))
		return -ENOENT;
	if (spec->kind == TQ_EXCHANGE_TO_EXCHANGE) {
		struct xchg *x = xchg_find(r, *vh, spec->dst, spec->dlen);

		if (!x)
			return -ENOENT;
		*dst = dst_of_xchg(x);
	} else {
		struct xqueue *q = queue_find(r, *vh, spec->dst, spec->dlen);

		if (!q)
			return -ENOENT;
		*dst = dst_of_queue(q);
	}
	return 0;
}

int
tq_exchange_bind(struct tq_exchange_reg *r, const char *vhn, size_t vlen,
		 const struct tq_exchange_binding *spec)
{
	struct xvhost *vh;
	struct xchg *src;
	struct binding *b;
	uintptr_t dst;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = binding_ends(r, vhn, vlen, spec, &vh, &src, &dst);
	if (rc < 0)
		goto out;
	rc = binding_build(r, src, dst, spec, &b);
	if (rc < 0)
		goto out;
	if (src->type == TQ_EXCHANGE_HEADERS && (rc = binding_xmatch(b)) < 0)
		goto drop;
	if (bindex_find_exact(&vh->bx, b)) {
		rc = 1;
		goto drop;
	}
	rc = rt_add(r, b);
	if (rc < 0)
		goto drop;
	bindex_insert(&vh->bx, b);
	cds_list_add_tail(&b->out, &src->out);
	cds_list_add_tail(&b->in, dst_in_list(dst));
	__atomic_store_n(&src->nout, src->nout + 1, __ATOMIC_RELAXED); /* may_route */
	stat_add(&r->st.bindings, 1);
	goto out;
drop:
	free(b); /* never published */
out:
	writer_unlock(r);
	return rc;
}

int
tq_exchange_unbind(struct tq_exchange_reg *r, const char *vhn, size_t vlen,
		   const struct tq_exchange_binding *spec)
{
	struct xvhost *vh;
	struct xchg *src;
	struct binding *c, *b;
	uintptr_t dst;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = binding_ends(r, vhn, vlen, spec, &vh, &src, &dst);
	if (rc < 0)
		goto out;
	rc = binding_build(r, src, dst, spec, &c);
	if (rc == -EINVAL) /* such arguments cannot have been bound */
		rc = 1;
	if (rc)
		goto out;
	b = bindex_find_exact(&vh->bx, c);
	free(c);
	if (!b) {
		rc = 1;
		goto out;
	}
	rc = rt_del(r, vh, b);
	if (rc < 0)
		goto out;
	binding_retire(r, vh, b);
	maybe_auto_delete(r, vh, src);
out:
	writer_unlock(r);
	return rc;
}

/* ---- listing ------------------------------------------------------------------------ */

int
tq_exchange_walk(struct tq_exchange_reg *r, const char *vhn, size_t vlen,
		 const struct tq_exchange_walk_cb *cb)
{
	struct xvhost *vh;
	struct xchg *x;
	struct xqueue *q;

	pthread_mutex_lock(&r->lock);
	vh = vhost_find(r, vhn, vlen);
	if (!vh) {
		writer_unlock(r);
		return -ENOENT;
	}
	if (cb->on_exchange) {
		NMAP_FOREACH(&vh->xs, x) {
			struct tq_exchange_info info;

			xchg_info(x, &info);
			cb->on_exchange(cb->arg, &info);
		}
	}
	if (!cb->on_binding)
		goto out;
	NMAP_FOREACH(&vh->qs, q) {
		const struct tq_exchange_binding bi = {
			.src = "", .dst = q->n.name, .dlen = q->n.len, .kind = TQ_EXCHANGE_TO_QUEUE,
			.key = q->n.name, .klen = q->n.len};

		cb->on_binding(cb->arg, &bi);
	}
	NMAP_FOREACH(&vh->xs, x) {
		struct binding *b;

		cds_list_for_each_entry(b, &x->out, out) {
			const struct nobj *d = dst_is_xchg(b->dst) ? &dst_xchg(b->dst)->n
								   : &dst_queue(b->dst)->n;
			const struct tq_exchange_binding bi = {
				.src = x->n.name, .slen = x->n.len,
				.dst = d->name, .dlen = d->len,
				.kind = dst_is_xchg(b->dst) ? TQ_EXCHANGE_TO_EXCHANGE
							    : TQ_EXCHANGE_TO_QUEUE,
				.key = b->key, .klen = b->klen,
				.args = b->args, .nargs = b->nargs};

			cb->on_binding(cb->arg, &bi);
		}
	}
out:
	writer_unlock(r);
	return 0;
}

void
tq_exchange_counts(const struct tq_exchange_reg *r, struct tq_exchange_stats *st)
{
	st->vhosts = __atomic_load_n(&r->st.vhosts, __ATOMIC_RELAXED);
	st->exchanges = __atomic_load_n(&r->st.exchanges, __ATOMIC_RELAXED);
	st->queues = __atomic_load_n(&r->st.queues, __ATOMIC_RELAXED);
	st->bindings = __atomic_load_n(&r->st.bindings, __ATOMIC_RELAXED);
	st->leaked = __atomic_load_n(&r->st.leaked, __ATOMIC_RELAXED);
}

/* ---- routing (readers) -------------------------------------------------------------- */

/*
 * Sets of pointers for one publish at a time: a slot is in the current set when its gen is
 * the scratch's, so clearing is one increment.
 */
struct sslot {
	uint64_t key;
	uint32_t gen;
};

struct pset {
	struct sslot *slot;
	uint32_t mask;
	uint32_t cap; /* at most this many members */
	uint32_t n;
};

struct tq_exchange_scratch {
	uint32_t gen;
	struct pset qs;
	struct pset xs;
	const struct xchg **work; /* xs.cap entries */
};

static int
pset_alloc(struct pset *p, uint32_t cap)
{
	uint32_t slots = 16;

	while (slots < 2 * (uint64_t)cap && slots < (1u << 31))
		slots *= 2;
	p->slot = calloc(slots, sizeof(p->slot[0]));
	if (!p->slot)
		return -ENOMEM;
	p->mask = slots - 1;
	p->cap = cap < slots / 2 ? cap : slots / 2;
	p->n = 0;
	return 0;
}

/* 1 added, 0 already there, -1 full. */
static int
pset_add(struct pset *p, uint32_t gen, uint64_t key)
{
	uint32_t i = (uint32_t)hmix(key) & p->mask;

	for (;; i = (i + 1) & p->mask) {
		struct sslot *s = &p->slot[i];

		if (s->gen != gen) {
			if (p->n == p->cap)
				return -1;
			s->gen = gen;
			s->key = key;
			p->n++;
			return 1;
		}
		if (s->key == key)
			return 0;
	}
}

struct tq_exchange_scratch *
tq_exchange_scratch_create(uint32_t queues, uint32_t exchanges)
{
	struct tq_exchange_scratch *s = calloc(1, sizeof(*s));

	if (!s || tq_exchange_scratch_reserve(s, queues ? queues : 1, exchanges ? exchanges : 1)) {
		tq_exchange_scratch_free(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

void
tq_exchange_scratch_free(struct tq_exchange_scratch *s)
{
	if (!s)
		return;
	free(s->qs.slot);
	free(s->xs.slot);
	free(s->work);
	free(s);
}

int
tq_exchange_scratch_reserve(struct tq_exchange_scratch *s, uint32_t queues, uint32_t exchanges)
{
	struct pset q = s->qs, x = s->xs;
	const struct xchg **work = s->work;

	if (!s->qs.slot || queues > s->qs.cap) {
		if (pset_alloc(&q, queues) < 0)
			return -ENOMEM;
	}
	if (!s->xs.slot || exchanges > s->xs.cap) {
		if (pset_alloc(&x, exchanges) < 0 ||
		    !(work = malloc(x.cap * sizeof(work[0])))) {
			if (q.slot != s->qs.slot)
				free(q.slot);
			if (x.slot != s->xs.slot)
				free(x.slot);
			return -ENOMEM;
		}
	}
	if (q.slot != s->qs.slot)
		free(s->qs.slot);
	if (x.slot != s->xs.slot) {
		free(s->xs.slot);
		free(s->work);
	}
	s->qs = q;
	s->xs = x;
	s->work = work;
	s->gen = 0; /* fresh slots are gen 0: start the next publish at 1 with no stale hits */
	memset(s->qs.slot, 0, (s->qs.mask + 1) * sizeof(s->qs.slot[0]));
	memset(s->xs.slot, 0, (s->xs.mask + 1) * sizeof(s->xs.slot[0]));
	return 0;
}

struct route_ctx {
	const struct tq_exchange_msg *m;
	struct tq_exchange_scratch *s;
	uint32_t nwork;
	uint32_t matched; /* destinations the current exchange yielded */
	int delivered;
	bool full;
};

static void
visit(struct route_ctx *c, uintptr_t d)
{
	int rc;

	if (dst_is_xchg(d)) {
		const struct xchg *x = dst_xchg(d);

		if (__atomic_load_n(&x->dead, __ATOMIC_RELAXED))
			return;
		c->matched++;
		rc = pset_add(&c->s->xs, c->s->gen, (uintptr_t)x);
		if (rc > 0)
			c->s->work[c->nwork++] = x;
	} else {
		const struct xqueue *q = dst_queue(d);

		if (__atomic_load_n(&q->dead, __ATOMIC_RELAXED))
			return;
		c->matched++;
		/* by id: a queue deleted and declared again under the same id is one queue */
		rc = pset_add(&c->s->qs, c->s->gen, q->qid);
		if (rc > 0) {
			if (c->m->deliver)
				c->m->deliver(c->m->arg, q->qid);
			c->delivered++;
		}
	}
	if (rc < 0)
		c->full = true;
}

static void
visit_set(struct route_ctx *c, const struct dset *s)
{
	uint32_t n = s ? __atomic_load_n(&s->n, __ATOMIC_ACQUIRE) : 0;

	for (uint32_t i = 0; i < n; i++) {
		uintptr_t d = __atomic_load_n(&s->d[i], __ATOMIC_RELAXED);

		if (d)
			visit(c, d);
	}
}

static void
on_topic_entry(void *arg, const struct tq_trie_entry *e)
{
	visit(arg, (uintptr_t)e->key);
}

/* One exchange's own destinations. */
static void
route_one(const struct tq_exchange_reg *r, const struct xvhost *vh, struct route_ctx *c,
	  const struct xchg *x)
{
	const struct tq_exchange_msg *m = c->m;
	const struct dkey *k;
	const struct dset *s;

	switch (x->type) {
	case TQ_EXCHANGE_DIRECT:
		if (x->is_default) {
			const struct xqueue *q = queue_find(r, vh, m->key, m->klen);

			if (q)
				visit(c, dst_of_queue(q));
			break;
		}
		if (m->klen > TQ_EXCHANGE_NAME_MAX)
			break;
		k = (const struct dkey *)nmap_find(&x->rt.direct, m->key, m->klen,
						   name_hash(r->seed, m->key, m->klen));
		if (k)
			visit_set(c, rcu_dereference(k->set));
		break;
	case TQ_EXCHANGE_FANOUT:
		visit_set(c, rcu_dereference(x->rt.set));
		break;
	case TQ_EXCHANGE_TOPIC: {
		const struct tq_trie_match_cb cb = {.on_entry = on_topic_entry, .arg = c};

		tq_trie_match(x->rt.topic, m->key, m->klen, &cb);
		break;
	}
	default:
		s = rcu_dereference(x->rt.set);
		for (uint32_t i = 0, n = s ? __atomic_load_n(&s->n, __ATOMIC_ACQUIRE) : 0; i < n;
		     i++) {
			const struct binding *b =
				(const struct binding *)__atomic_load_n(&s->d[i], __ATOMIC_RELAXED);

			if (b && headers_match(b, m->headers, m->nheaders))
				visit(c, b->dst);
		}
		break;
	}
}

int
tq_exchange_route(const struct tq_exchange_reg *r, const char *vhn, size_t vlen,
		  const struct tq_exchange_msg *m, struct tq_exchange_scratch *s)
{
	const struct xvhost *vh = vhost_find(r, vhn, vlen);
	const struct xchg *x = vh ? xchg_find(r, vh, m->exchange, m->xlen) : NULL;
	struct route_ctx c = {.m = m, .s = s};

	if (!x)
		return -ENOENT;
	if (x->flags & TQ_EXCHANGE_INTERNAL)
		return -EPERM;
	if (!++s->gen) { /* wrapped: old stamps could pass for current ones */
		memset(s->qs.slot, 0, (s->qs.mask + 1) * sizeof(s->qs.slot[0]));
		memset(s->xs.slot, 0, (s->xs.mask + 1) * sizeof(s->xs.slot[0]));
		s->gen = 1;
	}
	s->qs.n = 0;
	s->xs.n = 0;
	pset_add(&s->xs, s->gen, (uintptr_t)x); /* cap >= 1 */
	s->work[c.nwork++] = x;
	for (uint32_t next = 0; next < c.nwork; next++) {
		const struct xchg *y = s->work[next];

		c.matched = 0;
		route_one(r, vh, &c, y);
		if (!c.matched && y->has_ae) {
			const struct xchg *a =
				(const struct xchg *)nmap_find(&vh->xs, y->ae, y->ae_len, y->ae_h);

			if (a) {
				int rc = pset_add(&s->xs, s->gen, (uintptr_t)a);

				if (rc > 0)
					s->work[c.nwork++] = a;
				else if (rc < 0)
					c.full = true;
			}
		}
	}
	return c.full ? -ENOBUFS : c.delivered;
}

uint64_t
tq_exchange_gen(const struct tq_exchange_reg *r)
{
	return __atomic_load_n(&r->wgen, __ATOMIC_ACQUIRE);
}

bool
tq_exchange_may_route(const struct tq_exchange_reg *r, const char *vhn, size_t vlen,
		      const char *name, size_t nlen)
{
	const struct xvhost *vh = vhost_find(r, vhn, vlen);
	const struct xchg *x = vh ? xchg_find(r, vh, name, nlen) : NULL;

	if (!x || (x->flags & TQ_EXCHANGE_INTERNAL))
		return false;
	return x->is_default || x->has_ae || __atomic_load_n(&x->nout, __ATOMIC_RELAXED) > 0;
}

uint16_t
tq_exchange_reply_code(int err)
{
	switch (err) {
	case -ENOENT:
		return 404; /* NOT_FOUND */
	case -EPERM:
		return 403; /* ACCESS_REFUSED */
	case -EEXIST:
	case -EBUSY:
	case -EINVAL:
		return 406; /* PRECONDITION_FAILED */
	case -ENOTSUP:
		return 503; /* COMMAND_INVALID */
	default:
		return 541; /* INTERNAL_ERROR */
	}
}
