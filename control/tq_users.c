/*
 * Users, password secrets and the login check (see tq_users.h for the rules).
 *
 * The store is an array of user records sorted by name (bytes; a prefix sorts first),
 * found by binary search. The login cache is a fixed pool of TQ_USERS_CACHE_MAX entries:
 * each sits on its user's list (a change to the user drops them) and on one age list (the
 * oldest is reused when the pool is full). The failure counters are two fixed
 * set-associative tables (names, addresses) of keyed digests where the oldest entry of a
 * set gives way, so memory does not grow with the number of names or addresses tried.
 *
 * Everything keyed (cache, counters, made-up SCRAM salts) uses HMAC-SHA256 with one random
 * key per process and a domain byte, so no two uses can collide and nothing outside the
 * process can predict a table slot or tell a made-up salt from a real one.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "tq_users.h"

#define SCRAM_PREFIX "SCRAM-SHA-256$"
#define OUR_ALGORITHM "tachyon_scram_sha256"
#define SALT_LEN 16         /* bytes of salt in new secrets (PostgreSQL's too) */
#define KEY_LEN 32          /* SHA-256 */
#define SECRET_MAX 512      /* longest secret text we parse */
#define ID_LEN 16           /* bytes of digest kept to tell counters apart */
#define NONE UINT32_MAX

#define FAIL_WAYS 8u
#define FAIL_SETS (TQ_USERS_FAIL_SLOTS / FAIL_WAYS)

/* ---- the per-process key and keyed digests ------------------------------------------ */

enum key_domain {
	DOM_CACHE = 1,   /* login cache: name and password */
	DOM_FAIL_USER,   /* failure counter of a name */
	DOM_FAIL_ADDR,   /* failure counter of a source address */
	DOM_SCRAM_SALT,  /* made-up salt of an unknown SCRAM user */
	DOM_SCRAM_KEY,   /* made-up keys of an unknown SCRAM user (never match: known = 0) */
};

static uint8_t proc_key[KEY_LEN];
static int proc_key_rc = -EIO;
static pthread_once_t proc_key_once = PTHREAD_ONCE_INIT;

static void
proc_key_init(void)
{
	proc_key_rc = RAND_bytes(proc_key, sizeof(proc_key)) == 1 ? 0 : -EIO;
}

static int
proc_key_get(void)
{
	pthread_once(&proc_key_once, proc_key_init);
	return proc_key_rc;
}

/*
 * HMAC-SHA256(process key, @dom || @alen (2 bytes) || @a || @b). The length prefix keeps
 * ("ab", "c") and ("a", "bc") apart. @b may hold a password: the buffer is wiped.
 */
static int
keyed_mac(uint8_t dom, const void *a, size_t alen, const void *b, size_t blen,
	  uint8_t out[KEY_LEN])
{
	uint8_t buf[3 + TQ_USER_NAME_MAX + TQ_USER_PASSWORD_MAX];
	unsigned int olen = KEY_LEN;
	size_t n = 3 + alen + blen;
	int rc = -EIO;

	if (alen > TQ_USER_NAME_MAX || blen > TQ_USER_PASSWORD_MAX || proc_key_get())
		return -EINVAL;
	buf[0] = dom;
	buf[1] = (uint8_t)(alen >> 8);
	buf[2] = (uint8_t)alen;
	if (alen)
		memcpy(buf + 3, a, alen);
	if (blen)
		memcpy(buf + 3 + alen, b, blen);
	if (HMAC(EVP_sha256(), proc_key, KEY_LEN, buf, n, out, &olen))
		rc = 0;
	OPENSSL_cleanse(buf, n);
	return rc;
}

/* ---- base64 ------------------------------------------------------------------------- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
tq_users_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	size_t need, i, o = 0;
	uint32_t v;

	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return -ENOSPC;
	need = (len + 2) / 3 * 4;
	if (!out || need + 1 > cap)
		return -ENOSPC;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
tq_users_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	size_t pad = 0, n, i, o = 0;
	uint32_t v;
	int d, j;

	if (len % 4 || len > (size_t)INT_MAX || (len && !in))
		return -EINVAL;
	if (len && in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	n = len / 4 * 3 - pad;
	if (n > cap)
		return -ENOSPC;
	for (i = 0; i < len; i += 4) {
		v = 0;
		for (j = 0; j < 4; j++) {
			/* '=' only in the padding counted above: the last quad's tail */
			if (i + 4 == len && j >= 4 - (int)pad) {
				d = 0;
			} else {
				d = b64_value(in[i + (size_t)j]);
				if (d < 0)
					return -EINVAL;
			}
			v = v << 6 | (uint32_t)d;
		}
		if (i + 4 == len && ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))))
			return -EINVAL; /* bits past the data: not the canonical form */
		out[o++] = (uint8_t)(v >> 16);
		if (o < n)
			out[o++] = (uint8_t)(v >> 8);
		if (o < n)
			out[o++] = (uint8_t)v;
	}
	return (int)n;
}

/* Decode exactly @want bytes from @in (@len chars), else -EINVAL. */
static int
b64_exact(const char *in, size_t len, uint8_t *out, size_t want)
{
	return tq_users_b64_decode(in, len, out, want) == (int)want ? 0 : -EINVAL;
}

/* ---- secrets ------------------------------------------------------------------------ */

/* RabbitMQ's password_hash: base64(salt[4] || H(salt[4] || password)). */
struct rabbit_alg {
	const char *name;
	const EVP_MD *(*md)(void);
	size_t md_len;
};

static const struct rabbit_alg rabbit_algs[] = {
	{"rabbit_password_hashing_sha256", EVP_sha256, 32},
	{"rabbit_password_hashing_sha512", EVP_sha512, 64},
	{"rabbit_password_hashing_md5", EVP_md5, 16},
};

#define RABBIT_SALT 4
#define RABBIT_MAX (RABBIT_SALT + 64)

static const struct rabbit_alg *
rabbit_alg_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(rabbit_algs) / sizeof(rabbit_algs[0]); i++)
		if (strlen(rabbit_algs[i].name) == len && !memcmp(rabbit_algs[i].name, name, len))
			return &rabbit_algs[i];
	return NULL;
}

/* A secret taken apart: SCRAM (rabbit == NULL) or a RabbitMQ hash. */
struct secret {
	const struct rabbit_alg *rabbit;
	uint32_t iterations;
	size_t salt_len;
	uint8_t salt[TQ_USERS_SALT_MAX];
	uint8_t stored_key[KEY_LEN], server_key[KEY_LEN];
	uint8_t hash[RABBIT_MAX]; /* rabbit: salt[4] || digest */
};

/* Decimal digits in [@p, @end), 1 to TQ_USERS_ITERATIONS_MAX. */
static int
parse_iterations(const char *p, const char *end, uint32_t *out)
{
	uint32_t v = 0;

	if (p == end)
		return -EINVAL;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(*p - '0');
		if (v > TQ_USERS_ITERATIONS_MAX)
			return -EINVAL;
	}
	if (!v)
		return -EINVAL;
	*out = v;
	return 0;
}

/* SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> */
static int
scram_secret_parse(const char *s, size_t len, struct secret *o)
{
	const char *end = s + len, *p = s + strlen(SCRAM_PREFIX), *c1, *d2, *c2;
	int n;

	c1 = memchr(p, ':', (size_t)(end - p));
	if (!c1 || parse_iterations(p, c1, &o->iterations))
		return -EINVAL;
	d2 = memchr(c1 + 1, '$', (size_t)(end - c1 - 1));
	if (!d2)
		return -EINVAL;
	n = tq_users_b64_decode(c1 + 1, (size_t)(d2 - c1 - 1), o->salt, sizeof(o->salt));
	if (n <= 0)
		return -EINVAL;
	o->salt_len = (size_t)n;
	c2 = memchr(d2 + 1, ':', (size_t)(end - d2 - 1));
	if (!c2 || b64_exact(d2 + 1, (size_t)(c2 - d2 - 1), o->stored_key, KEY_LEN) ||
	    b64_exact(c2 + 1, (size_t)(end - c2 - 1), o->server_key, KEY_LEN))
		return -EINVAL;
	o->rabbit = NULL;
	return 0;
}

static int
rabbit_hash_parse(const struct rabbit_alg *a, const char *b64, size_t len, struct secret *o)
{
	if (b64_exact(b64, len, o->hash, RABBIT_SALT + a->md_len))
		return -EINVAL;
	o->rabbit = a;
	return 0;
}

/* Either stored form: SCRAM-SHA-256$... or <rabbit algorithm>$<base64>. */
static int
secret_parse(const char *s, struct secret *o)
{
	const struct rabbit_alg *a;
	const char *dollar;
	size_t len;

	if (!s)
		return -EINVAL;
	len = strnlen(s, SECRET_MAX);
	if (len == SECRET_MAX)
		return -EINVAL;
	if (!strncmp(s, SCRAM_PREFIX, strlen(SCRAM_PREFIX)))
		return scram_secret_parse(s, len, o);
	dollar = memchr(s, '$', len);
	if (!dollar)
		return -EINVAL;
	a = rabbit_alg_find(s, (size_t)(dollar - s));
	if (!a)
		return -EINVAL;
	return rabbit_hash_parse(a, dollar + 1, len - (size_t)(dollar - s) - 1, o);
}

int
tq_users_pbkdf2(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
		uint32_t iterations, uint8_t *out, size_t out_len)
{
	if ((!password && len) || (!salt && salt_len) || !out || !out_len || !iterations ||
	    iterations > TQ_USERS_ITERATIONS_MAX || len > INT_MAX || salt_len > INT_MAX ||
	    out_len > INT_MAX)
		return -EINVAL;
	if (PKCS5_PBKDF2_HMAC(password ? password : "", (int)len, salt ? salt : (const uint8_t *)"",
			      (int)salt_len, (int)iterations, EVP_sha256(), (int)out_len,
			      out) != 1)
		return -EIO;
	return 0;
}

/* StoredKey and ServerKey (either may be NULL) of @password under @salt, @iterations. */
static int
scram_keys(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
	   uint32_t iterations, uint8_t *stored_key, uint8_t *server_key)
{
	uint8_t salted[KEY_LEN], client_key[KEY_LEN];
	unsigned int olen = KEY_LEN;
	int rc;

	rc = tq_users_pbkdf2(password, len, salt, salt_len, iterations, salted, KEY_LEN);
	if (rc)
		return rc;
	rc = -EIO;
	if (stored_key &&
	    (!HMAC(EVP_sha256(), salted, KEY_LEN, (const uint8_t *)"Client Key", 10, client_key,
		   &olen) ||
	     !EVP_Digest(client_key, KEY_LEN, stored_key, NULL, EVP_sha256(), NULL)))
		goto out;
	if (server_key && !HMAC(EVP_sha256(), salted, KEY_LEN, (const uint8_t *)"Server Key", 10,
				server_key, &olen))
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return rc;
}

int
tq_users_make_secret_salt(const char *password, size_t len, uint32_t iterations,
			  const uint8_t *salt, size_t salt_len, char *out, size_t cap)
{
	char salt64[TQ_USERS_SALT_MAX / 3 * 4 + 8], stored64[48], server64[48];
	uint8_t stored_key[KEY_LEN], server_key[KEY_LEN];
	int rc, n;

	if (!iterations || iterations > TQ_USERS_ITERATIONS_MAX || !salt || !salt_len ||
	    salt_len > TQ_USERS_SALT_MAX || (!password && len) || !out)
		return -EINVAL;
	rc = scram_keys(password, len, salt, salt_len, iterations, stored_key, server_key);
	if (rc)
		return rc;
	tq_users_b64_encode(salt, salt_len, salt64, sizeof(salt64));
	tq_users_b64_encode(stored_key, KEY_LEN, stored64, sizeof(stored64));
	tq_users_b64_encode(server_key, KEY_LEN, server64, sizeof(server64));
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	n = snprintf(out, cap, SCRAM_PREFIX "%u:%s$%s:%s", iterations, salt64, stored64,
		     server64);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			out[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}

int
tq_users_make_secret(const char *password, size_t len, uint32_t iterations, char *out,
		     size_t cap)
{
	uint8_t salt[SALT_LEN];

	if (!iterations || iterations > TQ_USERS_ITERATIONS_MAX)
		return -EINVAL;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	return tq_users_make_secret_salt(password, len, iterations, salt, sizeof(salt), out, cap);
}

static int
rabbit_check(const struct secret *sec, const char *password, size_t len)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, sec->rabbit->md(), NULL) &&
	     EVP_DigestUpdate(ctx, sec->hash, RABBIT_SALT) &&
	     (!len || EVP_DigestUpdate(ctx, password, len)) &&
	     EVP_DigestFinal_ex(ctx, md, &md_len);
	EVP_MD_CTX_free(ctx);
	if (!ok || md_len != sec->rabbit->md_len)
		return -EIO;
	ok = !CRYPTO_memcmp(md, sec->hash + RABBIT_SALT, md_len);
	OPENSSL_cleanse(md, sizeof(md));
	return ok;
}

int
tq_users_secret_check(const char *secret, const char *password, size_t len)
{
	uint8_t stored_key[KEY_LEN];
	struct secret sec;
	int rc;

	if (secret_parse(secret, &sec) || (!password && len))
		return -EINVAL;
	if (sec.rabbit)
		return rabbit_check(&sec, password, len);
	rc = scram_keys(password, len, sec.salt, sec.salt_len, sec.iterations, stored_key, NULL);
	if (rc)
		return rc;
	rc = !CRYPTO_memcmp(stored_key, sec.stored_key, KEY_LEN);
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	return rc;
}

/* ---- the store ---------------------------------------------------------------------- */

struct urec {
	struct tq_user pub; /* first: what tq_users_get and tq_users_at hand out */
	size_t name_len;
	uint32_t cache;     /* first login-cache entry of this user, NONE if none */
};

struct cache_ent {
	uint8_t mac[KEY_LEN]; /* keyed_mac(DOM_CACHE, name, password) */
	uint64_t expires_ms;
	struct urec *owner;   /* NULL: free */
	uint32_t next;        /* owner's next entry, or the next free one */
	uint32_t older, newer;
};

struct fail_ent {
	uint8_t id[ID_LEN];
	uint64_t last_ms;     /* the latest failure */
	uint32_t count;       /* 0: free */
};

struct tq_users {
	struct tq_users_conf conf;
	struct urec **v;      /* sorted by name */
	size_t n, cap;
	uint64_t gen;
	struct tq_users_stats st;
	struct cache_ent *cache; /* TQ_USERS_CACHE_MAX entries */
	uint32_t cache_free, cache_oldest, cache_newest;
	struct fail_ent fail_user[TQ_USERS_FAIL_SLOTS];
	struct fail_ent fail_addr[TQ_USERS_FAIL_SLOTS];
};

void
tq_users_conf_defaults(struct tq_users_conf *conf)
{
	conf->iterations = 4096;
	conf->cache_ms = 300000;
	conf->fail_limit = 5;
	conf->fail_window_ms = 60000;
	conf->fail_delay_ms = 1000;
}

struct tq_users *
tq_users_new(const struct tq_users_conf *conf)
{
	struct tq_users *u;
	int rc = proc_key_get();

	if (rc) {
		errno = -rc;
		return NULL;
	}
	if (conf && (!conf->iterations || conf->iterations > TQ_USERS_ITERATIONS_MAX)) {
		errno = EINVAL;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		goto nomem;
	u->cache = calloc(TQ_USERS_CACHE_MAX, sizeof(*u->cache));
	if (!u->cache)
		goto nomem;
	if (conf)
		u->conf = *conf;
	else
		tq_users_conf_defaults(&u->conf);
	for (uint32_t i = 0; i < TQ_USERS_CACHE_MAX; i++)
		u->cache[i].next = i + 1 < TQ_USERS_CACHE_MAX ? i + 1 : NONE;
	u->cache_free = 0;
	u->cache_oldest = u->cache_newest = NONE;
	return u;
nomem:
	if (u)
		free(u->cache);
	free(u);
	errno = ENOMEM;
	return NULL;
}

static void
urec_free(struct urec *r)
{
	if (!r)
		return;
	free(r->pub.name);
	free(r->pub.secret);
	free(r->pub.tags);
	free(r);
}

void
tq_users_free(struct tq_users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++)
		urec_free(u->v[i]);
	free(u->v);
	OPENSSL_cleanse(u->cache, TQ_USERS_CACHE_MAX * sizeof(*u->cache));
	free(u->cache);
	free(u);
}

static int
name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* Where @name is (*found) or would go. */
static size_t
find_pos(const struct tq_users *u, const char *name, size_t len, bool *found)
{
	size_t lo = 0, hi = u->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(u->v[mid]->pub.name, u->v[mid]->name_len, name, len);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct urec *
find(const struct tq_users *u, const char *name, size_t len)
{
	bool found;
	size_t i;

	if (!name || !len || len > TQ_USER_NAME_MAX)
		return NULL;
	i = find_pos(u, name, len, &found);
	return found ? u->v[i] : NULL;
}

/* A name we can store: 1 to TQ_USER_NAME_MAX bytes. Its length, or 0. */
static size_t
name_ok(const char *name)
{
	size_t len;

	if (!name)
		return 0;
	len = strnlen(name, TQ_USER_NAME_MAX + 1);
	return len <= TQ_USER_NAME_MAX ? len : 0;
}

/* A copy of @tags (NULL = ""), or NULL with *@rc set. */
static char *
tags_dup(const char *tags, int *rc)
{
	char *t;

	if (!tags)
		tags = "";
	if (strnlen(tags, TQ_USER_TAGS_MAX + 1) > TQ_USER_TAGS_MAX) {
		*rc = -EINVAL;
		return NULL;
	}
	t = strdup(tags);
	if (!t)
		*rc = -ENOMEM;
	return t;
}

/* ---- login cache -------------------------------------------------------------------- */

static void
cache_unlink(struct tq_users *u, uint32_t i)
{
	struct cache_ent *e = &u->cache[i];
	uint32_t *pp = &e->owner->cache;

	while (*pp != i)
		pp = &u->cache[*pp].next;
	*pp = e->next;
	if (e->older != NONE)
		u->cache[e->older].newer = e->newer;
	else
		u->cache_oldest = e->newer;
	if (e->newer != NONE)
		u->cache[e->newer].older = e->older;
	else
		u->cache_newest = e->older;
	OPENSSL_cleanse(e->mac, sizeof(e->mac));
	e->owner = NULL;
	e->next = u->cache_free;
	u->cache_free = i;
}

/* Forget every cached login of @r (its password, tags or existence changed). */
static void
cache_drop_user(struct tq_users *u, struct urec *r)
{
	while (r->cache != NONE)
		cache_unlink(u, r->cache);
}

/* Is @mac cached for @r and not expired at @now? Expired entries met are freed. */
static bool
cache_find(struct tq_users *u, struct urec *r, const uint8_t mac[KEY_LEN], uint64_t now)
{
	uint32_t i = r->cache;
	bool hit = false;

	while (i != NONE) {
		uint32_t next = u->cache[i].next;

		if (u->cache[i].expires_ms <= now)
			cache_unlink(u, i);
		else if (!CRYPTO_memcmp(u->cache[i].mac, mac, KEY_LEN))
			hit = true;
		i = next;
	}
	return hit;
}

static void
cache_add(struct tq_users *u, struct urec *r, const uint8_t mac[KEY_LEN], uint64_t now)
{
	struct cache_ent *e;
	uint32_t i;

	if (u->cache_free == NONE)
		cache_unlink(u, u->cache_oldest);
	i = u->cache_free;
	e = &u->cache[i];
	u->cache_free = e->next;
	memcpy(e->mac, mac, KEY_LEN);
	e->expires_ms = now + u->conf.cache_ms;
	e->owner = r;
	e->next = r->cache;
	r->cache = i;
	e->older = u->cache_newest;
	e->newer = NONE;
	if (u->cache_newest != NONE)
		u->cache[u->cache_newest].newer = i;
	else
		u->cache_oldest = i;
	u->cache_newest = i;
}

/* ---- changes ------------------------------------------------------------------------ */

/* Insert @r (its name absent) at its place. */
static int
insert(struct tq_users *u, struct urec *r)
{
	bool found;
	size_t pos = find_pos(u, r->pub.name, r->name_len, &found);

	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 16;
		struct urec **v = realloc(u->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		u->v = v;
		u->cap = cap;
	}
	memmove(&u->v[pos + 1], &u->v[pos], (u->n - pos) * sizeof(*u->v));
	u->v[pos] = r;
	u->n++;
	return 0;
}

/* A new record owning @secret and @tags (freed here on failure). */
static struct urec *
urec_new(const char *name, size_t len, char *secret, char *tags)
{
	struct urec *r = calloc(1, sizeof(*r));

	if (r)
		r->pub.name = strndup(name, len);
	if (!r || !r->pub.name) {
		free(r);
		free(secret);
		free(tags);
		return NULL;
	}
	r->pub.secret = secret;
	r->pub.tags = tags;
	r->name_len = len;
	r->cache = NONE;
	return r;
}

/* A fresh secret for @password (counted in stats.hashes), or NULL with *@rc. */
static char *
secret_new(struct tq_users *u, const char *password, size_t len, int *rc)
{
	char buf[256], *s;

	if (!password || !len || len > TQ_USER_PASSWORD_MAX) {
		*rc = -EINVAL;
		return NULL;
	}
	u->st.hashes++;
	*rc = tq_users_make_secret(password, len, u->conf.iterations, buf, sizeof(buf));
	if (*rc)
		return NULL;
	s = strdup(buf);
	if (!s)
		*rc = -ENOMEM;
	return s;
}

int
tq_users_add(struct tq_users *u, const char *name, const char *password, size_t len,
	     const char *tags)
{
	size_t nlen = name_ok(name);
	char *secret, *t;
	struct urec *r;
	int rc = 0;

	if (!nlen || !password || !len || len > TQ_USER_PASSWORD_MAX)
		return -EINVAL;
	if (find(u, name, nlen))
		return -EEXIST;
	t = tags_dup(tags, &rc);
	if (!t)
		return rc;
	secret = secret_new(u, password, len, &rc);
	if (!secret) {
		free(t);
		return rc;
	}
	r = urec_new(name, nlen, secret, t);
	if (!r)
		return -ENOMEM;
	rc = insert(u, r);
	if (rc) {
		urec_free(r);
		return rc;
	}
	u->gen++;
	return 0;
}

int
tq_users_put_hashed(struct tq_users *u, const char *name, const char *secret,
		    const char *algorithm, const char *tags)
{
	size_t nlen = name_ok(name);
	const struct rabbit_alg *a = NULL;
	struct secret sec;
	char *stored, *t;
	struct urec *r;
	int rc = 0;

	if (!nlen || !secret)
		return -EINVAL;
	if (!algorithm || !strcmp(algorithm, OUR_ALGORITHM)) {
		/* our export: either stored form round-trips */
		if (secret_parse(secret, &sec))
			return -EINVAL;
		stored = strdup(secret);
	} else {
		size_t slen = strnlen(secret, SECRET_MAX);

		a = rabbit_alg_find(algorithm, strlen(algorithm));
		if (!a || slen == SECRET_MAX || rabbit_hash_parse(a, secret, slen, &sec))
			return -EINVAL;
		stored = malloc(strlen(a->name) + 1 + slen + 1);
		if (stored)
			sprintf(stored, "%s$%s", a->name, secret);
	}
	if (!stored)
		return -ENOMEM;
	t = tags_dup(tags, &rc);
	if (!t) {
		free(stored);
		return rc;
	}
	r = find(u, name, nlen);
	if (r) {
		cache_drop_user(u, r);
		free(r->pub.secret);
		free(r->pub.tags);
		r->pub.secret = stored;
		r->pub.tags = t;
	} else {
		r = urec_new(name, nlen, stored, t);
		if (!r)
			return -ENOMEM;
		rc = insert(u, r);
		if (rc) {
			urec_free(r);
			return rc;
		}
	}
	u->gen++;
	return 0;
}

int
tq_users_delete(struct tq_users *u, const char *name)
{
	size_t nlen = name_ok(name), pos = 0;
	bool found = false;

	if (nlen)
		pos = find_pos(u, name, nlen, &found);
	if (!found)
		return -ENOENT;
	cache_drop_user(u, u->v[pos]);
	urec_free(u->v[pos]);
	memmove(&u->v[pos], &u->v[pos + 1], (u->n - pos - 1) * sizeof(*u->v));
	u->n--;
	u->gen++;
	return 0;
}

int
tq_users_set_password(struct tq_users *u, const char *name, const char *password, size_t len)
{
	struct urec *r = find(u, name, name_ok(name));
	char *secret;
	int rc = 0;

	if (!r)
		return -ENOENT;
	secret = secret_new(u, password, len, &rc);
	if (!secret)
		return rc;
	cache_drop_user(u, r);
	free(r->pub.secret);
	r->pub.secret = secret;
	u->gen++;
	return 0;
}

int
tq_users_set_tags(struct tq_users *u, const char *name, const char *tags)
{
	struct urec *r = find(u, name, name_ok(name));
	int rc = 0;
	char *t;

	if (!r)
		return -ENOENT;
	t = tags_dup(tags, &rc);
	if (!t)
		return rc;
	cache_drop_user(u, r);
	free(r->pub.tags);
	r->pub.tags = t;
	u->gen++;
	return 0;
}

const struct tq_user *
tq_users_get(const struct tq_users *u, const char *name, size_t len)
{
	struct urec *r = find(u, name, len);

	return r ? &r->pub : NULL;
}

size_t
tq_users_count(const struct tq_users *u)
{
	return u->n;
}

const struct tq_user *
tq_users_at(const struct tq_users *u, size_t i)
{
	return i < u->n ? &u->v[i]->pub : NULL;
}

uint64_t
tq_users_gen(const struct tq_users *u)
{
	return u->gen;
}

void
tq_users_stats(const struct tq_users *u, struct tq_users_stats *out)
{
	*out = u->st;
}

/* ---- rate limit --------------------------------------------------------------------- */

static uint64_t
elapsed(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/*
 * The counter of digest @d in @tab: a live one, or (when @create) a free, stale or the
 * oldest slot of its set, cleared. A counter goes stale once fail_window_ms passes without
 * a failure. NULL when absent and not @create.
 */
static struct fail_ent *
fail_find(struct tq_users *u, struct fail_ent *tab, const uint8_t d[KEY_LEN], uint64_t now,
	  bool create)
{
	uint32_t set = ((uint32_t)d[ID_LEN] | (uint32_t)d[ID_LEN + 1] << 8 |
			(uint32_t)d[ID_LEN + 2] << 16 | (uint32_t)d[ID_LEN + 3] << 24) % FAIL_SETS;
	struct fail_ent *e = &tab[set * FAIL_WAYS], *victim = NULL;

	for (uint32_t w = 0; w < FAIL_WAYS; w++) {
		if (e[w].count && elapsed(now, e[w].last_ms) >= u->conf.fail_window_ms)
			e[w].count = 0; /* stale: free */
		if (e[w].count && !memcmp(e[w].id, d, ID_LEN))
			return &e[w];
	}
	if (!create)
		return NULL;
	for (uint32_t w = 0; w < FAIL_WAYS; w++) {
		if (!e[w].count) {
			victim = &e[w];
			break;
		}
		if (!victim || e[w].last_ms < victim->last_ms)
			victim = &e[w];
	}
	memcpy(victim->id, d, ID_LEN);
	victim->count = 0;
	victim->last_ms = now;
	return victim;
}

/* The keyed digests naming the counters of one attempt. */
struct throttle_keys {
	bool has_user, has_addr;
	uint8_t user[KEY_LEN], addr[KEY_LEN];
};

static void
throttle_keys(struct throttle_keys *k, const char *name, size_t name_len, const char *src)
{
	size_t slen = src ? strnlen(src, TQ_USER_NAME_MAX + 1) : 0;

	/* a name that cannot exist is still counted (by its first bytes): guessing names
	 * must cost the same */
	if (name_len > TQ_USER_NAME_MAX)
		name_len = TQ_USER_NAME_MAX;
	k->has_user = name && name_len &&
		      !keyed_mac(DOM_FAIL_USER, name, name_len, NULL, 0, k->user);
	k->has_addr = slen && slen <= TQ_USER_NAME_MAX &&
		      !keyed_mac(DOM_FAIL_ADDR, src, slen, NULL, 0, k->addr);
}

static bool
over_limit(struct tq_users *u, struct fail_ent *tab, const uint8_t d[KEY_LEN], uint64_t now)
{
	struct fail_ent *e = fail_find(u, tab, d, now, false);

	return e && e->count >= u->conf.fail_limit;
}

static uint32_t
throttle(struct tq_users *u, const struct throttle_keys *k, uint64_t now, bool failed)
{
	uint32_t delay = 0;
	struct fail_ent *e;

	if (!u->conf.fail_limit) /* 0: no rate limit */
		return 0;
	if ((k->has_user && over_limit(u, u->fail_user, k->user, now)) ||
	    (k->has_addr && over_limit(u, u->fail_addr, k->addr, now))) {
		delay = u->conf.fail_delay_ms;
		u->st.throttled++;
	}
	if (failed && k->has_user) {
		e = fail_find(u, u->fail_user, k->user, now, true);
		e->count += e->count < UINT32_MAX;
		e->last_ms = now;
	}
	if (failed && k->has_addr) {
		e = fail_find(u, u->fail_addr, k->addr, now, true);
		e->count += e->count < UINT32_MAX;
		e->last_ms = now;
	}
	return delay;
}

uint32_t
tq_users_throttle(struct tq_users *u, const char *name, size_t name_len, const char *src,
		  uint64_t now_ms, bool failed)
{
	struct throttle_keys k;

	throttle_keys(&k, name, name_len, src);
	return throttle(u, &k, now_ms, failed);
}

/* ---- the login check ---------------------------------------------------------------- */

/* What a check against a real secret costs, spent for an unknown user. */
static void
dummy_hash(struct tq_users *u, const char *password, size_t len)
{
	static const uint8_t salt[SALT_LEN] = "tachyon:no-user";
	uint8_t out[KEY_LEN];

	u->st.hashes++;
	tq_users_pbkdf2(password, len, salt, sizeof(salt), u->conf.iterations, out, sizeof(out));
	OPENSSL_cleanse(out, sizeof(out));
}

int
tq_users_login(struct tq_users *u, const char *name, size_t name_len, const char *password,
	       size_t len, const char *src, uint64_t now_ms, uint32_t *delay_ms)
{
	struct throttle_keys k;
	uint8_t mac[KEY_LEN];
	bool have_mac = false;
	struct urec *r;
	uint32_t delay;
	int ok = 0;

	r = find(u, name, name_len);
	if (!password || !len || len > TQ_USER_PASSWORD_MAX) {
		/* no user has an empty password; nothing to hash */
	} else if (!r) {
		dummy_hash(u, password, len);
	} else {
		if (u->conf.cache_ms)
			have_mac = !keyed_mac(DOM_CACHE, name, name_len, password, len, mac);
		if (have_mac && cache_find(u, r, mac, now_ms)) {
			ok = 1;
			u->st.cache_hits++;
		} else {
			u->st.hashes++;
			ok = tq_users_secret_check(r->pub.secret, password, len) == 1;
			if (ok && have_mac)
				cache_add(u, r, mac, now_ms);
		}
		OPENSSL_cleanse(mac, sizeof(mac));
	}
	throttle_keys(&k, name, name_len, src);
	delay = throttle(u, &k, now_ms, !ok);
	if (delay_ms)
		*delay_ms = delay;
	if (ok)
		u->st.logins_ok++;
	else
		u->st.logins_refused++;
	return ok;
}

/* ---- for tq_scram ------------------------------------------------------------------- */

int
tq_users_scram_params(const struct tq_users *u, const char *name, size_t len,
		      struct tq_users_scram *out)
{
	struct urec *r = find(u, name, len);
	uint8_t d[KEY_LEN];
	struct secret sec;

	memset(out, 0, sizeof(*out));
	if (!name || !len || len > TQ_USER_NAME_MAX)
		return -EINVAL;
	if (r && !secret_parse(r->pub.secret, &sec) && !sec.rabbit) {
		out->iterations = sec.iterations;
		out->salt_len = sec.salt_len;
		memcpy(out->salt, sec.salt, sec.salt_len);
		memcpy(out->stored_key, sec.stored_key, KEY_LEN);
		memcpy(out->server_key, sec.server_key, KEY_LEN);
		out->known = 1;
		return 0;
	}
	/* made up, the same every time for this name in this process */
	if (keyed_mac(DOM_SCRAM_SALT, name, len, NULL, 0, d))
		return -EIO;
	out->iterations = u->conf.iterations;
	out->salt_len = SALT_LEN;
	memcpy(out->salt, d, SALT_LEN);
	if (keyed_mac(DOM_SCRAM_KEY, name, len, NULL, 0, d))
		return -EIO;
	memcpy(out->stored_key, d, KEY_LEN);
	memcpy(out->server_key, d, KEY_LEN);
	out->known = 0;
	return 0;
}

void
tq_users_conf_get(const struct tq_users *u, struct tq_users_conf *out)
{
	*out = u->conf;
}

int
tq_users_conf_set(struct tq_users *u, const struct tq_users_conf *conf)
{
	if (!conf->iterations || conf->iterations > TQ_USERS_ITERATIONS_MAX)
		return -EINVAL;
	u->conf = *conf; /* the cache and the failure tables read it at their next use */
	return 0;
}
