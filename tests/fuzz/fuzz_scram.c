/*
 * libFuzzer driver for the SCRAM-SHA-256 server side (control/tq_scram.h) against a real
 * user store (control/tq_users.h), made once in LLVMFuzzerInitialize with PBKDF2 at one
 * iteration (conf.iterations = 1 and every secret made with 1), so that a run costs a few
 * HMACs. The server nonce is fixed with tq_scram_test_server_nonce, so a seed can carry a
 * whole valid exchange (make_control_corpus.py computes them with hashlib and hmac).
 *
 * The first byte picks the mode (its value modulo 3); the rest is:
 *   0: client-first-message 0x00 client-final-message (no 0x00: step 1 only);
 *   1: a client-final-message answering the fixed client-first FIXED_FIRST (user "user");
 *   2: a client-first-message; the driver then answers it with the right proof for the
 *      user's password, computed here with OpenSSL (not with tq_users).
 * Each message is an exact-size heap copy, so ASan sees an over-read.
 *
 * Checked, from the header: the return values each step may give; server-first is
 * "r=<client nonce><server nonce>,s=<salt>,i=1" for every user (an unknown one looks the
 * same); step 2 answers 1 only for a user with a SCRAM secret whose proof is right (the
 * driver recomputes it from the password, the AuthMessage and the channel binding), with
 * "v=<ServerSignature>" that the driver recomputes too, and an empty @out on 0; step 2 is
 * out of order before a successful step 1 and after step 2 (-EINVAL). In mode 2 an
 * exchange for a SCRAM user must succeed, and one for any other user must be refused.
 * Any violation abort()s.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "control/tq_scram.h"
#include "control/tq_users.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond))                                                                   \
			abort();                                                               \
	} while (0)

/* Shared with make_control_corpus.py: change both together. */
#define SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" /* RFC 7677's */
#define FIXED_SALT "tachyon-fuzz-slt"                  /* 16 bytes */
#define FIXED_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RABBIT_SALT "\x90\x8d\xc6\x0a"

#define KEY_LEN 32
#define B64_KEY_LEN 44

/* The store's users and what the driver knows of them. */
struct fuzz_user {
	const char *name, *password;
	enum { BY_SALT, BY_ADD, BY_RABBIT } how;
};

static const struct fuzz_user fuzz_users[] = {
	{"user", "pencil", BY_SALT},     /* RFC 7677's names, our salt and cost */
	{"a,b=c", "p,w=d", BY_SALT},     /* a name that needs =2C and =3D */
	{"random", "hunter2", BY_ADD},   /* a random salt: mode 2 only */
	{"rabbit", "guest", BY_RABBIT},  /* an imported RabbitMQ hash: no SCRAM until reset */
};

#define NUSERS (sizeof(fuzz_users) / sizeof(fuzz_users[0]))

static struct tq_users *users;

static void
add_users(void)
{
	for (size_t i = 0; i < NUSERS; i++) {
		const struct fuzz_user *f = &fuzz_users[i];
		uint8_t buf[4 + KEY_LEN];
		char secret[200];

		switch (f->how) {
		case BY_SALT:
			CHECK(tq_users_make_secret_salt(f->password, strlen(f->password), 1,
							(const uint8_t *)FIXED_SALT,
							strlen(FIXED_SALT), secret,
							sizeof(secret)) == 0);
			CHECK(tq_users_put_hashed(users, f->name, secret, NULL, NULL) == 0);
			break;
		case BY_ADD:
			CHECK(tq_users_add(users, f->name, f->password, strlen(f->password),
					   NULL) == 0);
			break;
		case BY_RABBIT: {
			/* base64(salt[4] || SHA-256(salt[4] || password)) */
			EVP_MD_CTX *md = EVP_MD_CTX_new();

			CHECK(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL));
			CHECK(EVP_DigestUpdate(md, RABBIT_SALT, 4));
			CHECK(EVP_DigestUpdate(md, f->password, strlen(f->password)));
			memcpy(buf, RABBIT_SALT, 4);
			CHECK(EVP_DigestFinal_ex(md, buf + 4, NULL));
			EVP_MD_CTX_free(md);
			EVP_EncodeBlock((unsigned char *)secret, buf, sizeof(buf));
			CHECK(tq_users_put_hashed(users, f->name, secret,
						  "rabbit_password_hashing_sha256", NULL) == 0);
			break;
		}
		}
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct tq_users_conf conf;

	(void)argc;
	(void)argv;
	tq_users_conf_defaults(&conf);
	conf.iterations = 1;
	users = tq_users_new(&conf);
	CHECK(users);
	add_users();
	CHECK(tq_scram_test_server_nonce(SERVER_NONCE) == 0);
	return 0;
}

static const struct fuzz_user *
user_find(const char *name)
{
	for (size_t i = 0; i < NUSERS; i++)
		if (!strcmp(fuzz_users[i].name, name))
			return &fuzz_users[i];
	return NULL;
}

/* ---- the client side, from RFC 5802 ------------------------------------------------ */

/* What the driver reads from a client-first-message the server accepted. */
struct first_parts {
	size_t gs2_len;      /* "n,," etc., commas included */
	const char *bare;    /* the rest */
	size_t bare_len;
	char user[TQ_USER_NAME_MAX + 1];
	const char *cnonce;
	size_t cnonce_len;
};

/* Bytes up to the next ',' (or the end). */
static size_t
field(const char *p, const char *end)
{
	const char *c = memchr(p, ',', (size_t)(end - p));

	return c ? (size_t)(c - p) : (size_t)(end - p);
}

/* saslname: "=2C" ',' and "=3D" '='. */
static bool
sasl_decode(const char *p, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (o == TQ_USER_NAME_MAX)
			return false;
		if (p[i] != '=') {
			out[o++] = p[i];
		} else if (i + 2 < len && p[i + 1] == '2' && p[i + 2] == 'C') {
			out[o++] = ',';
			i += 2;
		} else if (i + 2 < len && p[i + 1] == '3' && p[i + 2] == 'D') {
			out[o++] = '=';
			i += 2;
		} else {
			return false;
		}
	}
	out[o] = '\0';
	return o > 0;
}

static bool
parse_first(const char *m, size_t len, struct first_parts *fp)
{
	const char *end = m + len, *p = m;
	size_t n;

	n = field(p, end); /* gs2-cbind-flag */
	if (p + n == end)
		return false;
	p += n + 1;
	n = field(p, end); /* authzid */
	if (p + n == end)
		return false;
	p += n + 1;
	fp->gs2_len = (size_t)(p - m);
	fp->bare = p;
	fp->bare_len = (size_t)(end - p);
	n = field(p, end);
	if (n < 2 || p[0] != 'n' || p[1] != '=' || p + n == end ||
	    !sasl_decode(p + 2, n - 2, fp->user))
		return false;
	p += n + 1;
	n = field(p, end);
	if (n < 3 || p[0] != 'r' || p[1] != '=')
		return false;
	fp->cnonce = p + 2;
	fp->cnonce_len = n - 2;
	return true;
}

static void
hmac256(const uint8_t *key, size_t klen, const void *msg, size_t len, uint8_t out[KEY_LEN])
{
	unsigned int olen = KEY_LEN;

	CHECK(HMAC(EVP_sha256(), key, (int)klen, msg, len, out, &olen) && olen == KEY_LEN);
}

/* The keys of @password for the salt and cost in server-first-message @sf. */
struct client_keys {
	uint8_t client[KEY_LEN], stored[KEY_LEN], server[KEY_LEN];
};

static void
client_keys(const char *password, const char *sf, struct client_keys *k)
{
	const char *s = strstr(sf, ",s="), *i = strstr(sf, ",i=");
	uint8_t salt[TQ_SCRAM_MSG_MAX], salted[KEY_LEN];
	int slen;

	CHECK(s && i && i > s && strcmp(i, ",i=1") == 0);
	slen = EVP_DecodeBlock(salt, (const unsigned char *)s + 3, (int)(i - s - 3));
	CHECK(slen > 0 && i - s - 3 >= 4);
	slen -= (i[-1] == '=') + (i[-2] == '=');
	CHECK(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, slen, 1, EVP_sha256(),
				KEY_LEN, salted));
	hmac256(salted, KEY_LEN, "Client Key", 10, k->client);
	CHECK(EVP_Digest(k->client, KEY_LEN, k->stored, NULL, EVP_sha256(), NULL));
	hmac256(salted, KEY_LEN, "Server Key", 10, k->server);
}

/* bare "," server-first "," final-without-proof; its length. */
static size_t
auth_message(const struct first_parts *fp, const char *sf, const char *wp, size_t wp_len,
	     char *out, size_t cap)
{
	int n = snprintf(out, cap, "%.*s,%s,%.*s", (int)fp->bare_len, fp->bare, sf, (int)wp_len,
			 wp);

	CHECK(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

/* "v=" base64(HMAC(ServerKey, AuthMessage)) */
static void
check_server_final(const struct client_keys *k, const char *auth, size_t auth_len,
		   const char *out, size_t out_len)
{
	char want[3 + B64_KEY_LEN + 1] = "v=";
	uint8_t sig[KEY_LEN];

	hmac256(k->server, KEY_LEN, auth, auth_len, sig);
	EVP_EncodeBlock((unsigned char *)want + 2, sig, KEY_LEN);
	CHECK(out_len == strlen(want) && !strcmp(out, want));
}

/*
 * Step 2 said 1 to @final (@len bytes): it must be the answer a client knowing the
 * password gives: c= the gs2 header, r= the whole nonce, extensions, p= the right proof.
 */
static void
check_accepted(const char *first, const struct first_parts *fp, const char *sf,
	       const char *final, size_t len, const char *out, size_t out_len)
{
	const struct fuzz_user *u = user_find(fp->user);
	char head[TQ_SCRAM_MSG_MAX * 2], proof64[B64_KEY_LEN + 1], auth[3 * TQ_SCRAM_MSG_MAX];
	const char *last = final + len;
	uint8_t sig[KEY_LEN], proof[KEY_LEN];
	struct client_keys k;
	size_t auth_len;
	int n;

	CHECK(u && u->how != BY_RABBIT);
	/* c=<gs2 in base64>,r=<nonce> must open it; the proof is the last attribute */
	n = snprintf(head, sizeof(head), "c=");
	n += EVP_EncodeBlock((unsigned char *)head + n, (const unsigned char *)first,
			     (int)fp->gs2_len);
	n += snprintf(head + n, sizeof(head) - (size_t)n, ",r=%.*s%s,", (int)fp->cnonce_len,
		      fp->cnonce, SERVER_NONCE);
	CHECK((size_t)n <= len && !memcmp(final, head, (size_t)n));
	while (last > final && last[-1] != ',')
		last--;
	CHECK(last > final && (size_t)(final + len - last) == 2 + B64_KEY_LEN &&
	      !memcmp(last, "p=", 2));

	client_keys(u->password, sf, &k);
	auth_len = auth_message(fp, sf, final, (size_t)(last - 1 - final), auth, sizeof(auth));
	hmac256(k.stored, KEY_LEN, auth, auth_len, sig);
	for (size_t i = 0; i < KEY_LEN; i++)
		proof[i] = k.client[i] ^ sig[i];
	EVP_EncodeBlock((unsigned char *)proof64, proof, KEY_LEN);
	CHECK(!memcmp(last + 2, proof64, B64_KEY_LEN));
	check_server_final(&k, auth, auth_len, out, out_len);
}

/* ---- the exchange ---------------------------------------------------------------- */

static char *
dup_exact(const char *p, size_t len)
{
	char *c = malloc(len ? len : 1);

	CHECK(c);
	memcpy(c, p, len);
	return c;
}

/* Step 1 on @first; on success its parts in @fp and server-first in @sf. Returns rc. */
static int
step1(struct tq_scram *s, const char *first, size_t len, struct first_parts *fp, char *sf)
{
	char *msg = dup_exact(first, len);
	size_t sf_len = SIZE_MAX;
	char want[TQ_SCRAM_MSG_MAX];
	int rc;

	rc = tq_scram_server_first(s, users, (const uint8_t *)msg, len, sf, TQ_SCRAM_MSG_MAX,
				   &sf_len);
	free(msg);
	CHECK(rc == 0 || rc == -EINVAL || rc == -ENOTSUP);
	if (rc)
		return rc;
	CHECK(s->step == 1);
	CHECK(sf_len == strlen(sf));
	CHECK(parse_first(first, len, fp));
	CHECK(!strcmp(s->user, fp->user)); /* kept for the caller */
	/* r=<client nonce><server nonce>,s=... ,i=1 whoever the user is */
	snprintf(want, sizeof(want), "r=%.*s%s,s=", (int)fp->cnonce_len, fp->cnonce,
		 SERVER_NONCE);
	CHECK(!strncmp(sf, want, strlen(want)));
	CHECK(sf_len > 4 && !strcmp(sf + sf_len - 4, ",i=1"));
	return 0;
}

/* Step 2 on @final after a successful step 1; returns rc. */
static int
step2(struct tq_scram *s, const char *first, const struct first_parts *fp, const char *sf,
      const char *final, size_t len)
{
	char *msg = dup_exact(final, len), out[TQ_SCRAM_MSG_MAX];
	size_t out_len = SIZE_MAX;
	int rc;

	rc = tq_scram_server_final(s, (const uint8_t *)msg, len, out, sizeof(out), &out_len);
	CHECK(rc == 1 || rc == 0 || rc == -EINVAL);
	CHECK(s->step == 2);
	if (rc == 1)
		check_accepted(first, fp, sf, msg, len, out, out_len);
	else if (rc == 0)
		CHECK(out_len == 0 && out[0] == '\0');
	free(msg);
	/* one answer per exchange */
	CHECK(tq_scram_server_final(s, (const uint8_t *)final, len, out, sizeof(out),
				    &out_len) == -EINVAL);
	CHECK(!strcmp(s->user, fp->user));
	return rc;
}

/* Mode 2: the final message a client with the right password sends. */
static void
complete(struct tq_scram *s, const char *first, const struct first_parts *fp, const char *sf)
{
	const struct fuzz_user *u = user_find(fp->user);
	char final[TQ_SCRAM_MSG_MAX], auth[3 * TQ_SCRAM_MSG_MAX];
	uint8_t sig[KEY_LEN], proof[KEY_LEN];
	struct client_keys k;
	size_t auth_len;
	int n, rc;

	client_keys(u ? u->password : "not the password", sf, &k);
	n = snprintf(final, sizeof(final), "c=");
	n += EVP_EncodeBlock((unsigned char *)final + n, (const unsigned char *)first,
			     (int)fp->gs2_len);
	n += snprintf(final + n, sizeof(final) - (size_t)n, ",r=%.*s%s", (int)fp->cnonce_len,
		      fp->cnonce, SERVER_NONCE);
	auth_len = auth_message(fp, sf, final, (size_t)n, auth, sizeof(auth));
	hmac256(k.stored, KEY_LEN, auth, auth_len, sig);
	for (size_t i = 0; i < KEY_LEN; i++)
		proof[i] = k.client[i] ^ sig[i];
	n += snprintf(final + n, sizeof(final) - (size_t)n, ",p=");
	n += EVP_EncodeBlock((unsigned char *)final + n, proof, KEY_LEN);
	/* step 1 made sure that this answer fits */
	CHECK((size_t)n < TQ_SCRAM_MSG_MAX);
	rc = step2(s, first, fp, sf, final, (size_t)n);
	CHECK(rc == (u && u->how != BY_RABBIT ? 1 : 0));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *first, *final = NULL, *rest = (const char *)data + 1;
	size_t first_len, final_len = 0;
	char sf[TQ_SCRAM_MSG_MAX], out[TQ_SCRAM_MSG_MAX];
	struct first_parts fp;
	struct tq_scram s;
	int mode, rc;

	if (!size)
		return 0;
	mode = data[0] % 3;
	first = rest;
	first_len = size - 1;
	if (mode == 0) {
		const char *z = memchr(rest, 0, size - 1);

		if (z) {
			first_len = (size_t)(z - rest);
			final = z + 1;
			final_len = size - 1 - first_len - 1;
		}
	} else if (mode == 1) {
		first = FIXED_FIRST;
		first_len = strlen(FIXED_FIRST);
		final = rest;
		final_len = size - 1;
	}

	memset(&s, 0, sizeof(s));
	rc = step1(&s, first, first_len, &fp, sf);
	if (mode == 1)
		CHECK(rc == 0);
	if (rc) {
		/* step 2 before a successful step 1 is out of order */
		if (final) {
			size_t out_len;

			CHECK(tq_scram_server_final(&s, (const uint8_t *)final, final_len, out,
						    sizeof(out), &out_len) == -EINVAL);
		}
	} else if (mode == 2) {
		complete(&s, first, &fp, sf);
	} else if (final) {
		step2(&s, first, &fp, sf, final, final_len);
	}
	tq_scram_clear(&s);
	CHECK(s.step == 0);
	return 0;
}
