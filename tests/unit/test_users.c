/*
 * tq_users and tq_scram: PBKDF2-HMAC-SHA256 (RFC 7914 section 11), base64, the secret text
 * form (checked against a literal computed once with Python's hashlib and against OpenSSL's
 * primitives called here), names and limits, store changes, enumeration order and gen,
 * RabbitMQ hash import (published vectors and hashes made here), the login cache, the rate
 * limit per name and per address with an injected clock, and SCRAM-SHA-256: RFC 7677's
 * example byte for byte, a client written here with OpenSSL against random nonces, unknown
 * users, malformed and truncated messages (each read from a buffer ending at a guard page)
 * and calls out of order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "control/tq_scram.h"
#include "control/tq_users.h"
#include "tq_test.h"

/* RFC 7677 section 3 */
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CFIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO" RFC_SNONCE
#define RFC_SFIRST "r=" RFC_NONCE ",s=" RFC_SALT ",i=4096"
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_CFINAL "c=biws,r=" RFC_NONCE ",p=" RFC_PROOF
#define RFC_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* "pencil" under RFC_SALT, 4096: computed once with Python's hashlib.pbkdf2_hmac and hmac */
/* RabbitMQ's md5 hash of "simon" with salt CA D5 08 9B (a published example, rechecked with
 * openssl dgst) */
#define MD5_SIMON "rabbit_password_hashing_md5$ytUIm8s3AnKsXQjptplKFytfVxI="
#define RFC_SECRET                                                                         \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"                                     \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"                                    \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* ---- helpers ------------------------------------------------------------------------ */

static struct tq_users *
store(uint32_t iterations)
{
	struct tq_users_conf c;
	struct tq_users *u;

	tq_users_conf_defaults(&c);
	c.iterations = iterations;
	u = tq_users_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	return u;
}

static int
add(struct tq_users *u, const char *name, const char *pw, const char *tags)
{
	return tq_users_add(u, name, pw, strlen(pw), tags);
}

static int
login(struct tq_users *u, const char *name, const char *pw, const char *src, uint64_t now,
      uint32_t *delay)
{
	return tq_users_login(u, name, strlen(name), pw, strlen(pw), src, now, delay);
}

static struct tq_users_stats
stats(const struct tq_users *u)
{
	struct tq_users_stats st;

	tq_users_stats(u, &st);
	return st;
}

static int
unhex(const char *hex, uint8_t *out)
{
	int n = 0;
	unsigned int b;

	while (*hex) {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		if (sscanf(hex, "%2x", &b) != 1)
			return -1;
		out[n++] = (uint8_t)b;
		hex += 2;
	}
	return n;
}

/* Base64 with OpenSSL's encoder (independent of ours). */
static void
b64_ossl(const uint8_t *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* ---- PBKDF2, base64, secrets -------------------------------------------------------- */

static void
test_pbkdf2(void)
{
	uint8_t want[64], got[64];

	/* RFC 7914 section 11 */
	CU_ASSERT_EQUAL(unhex("55 ac 04 6e 56 e3 08 9f ec 16 91 c2 25 44 b6 05"
			      "f9 41 85 21 6d de 04 65 e6 8b 9d 57 c2 0d ac bc"
			      "49 ca 9c cc f1 79 b6 45 99 16 64 b3 9d 77 ef 31"
			      "7c 71 b8 45 b1 e3 0b d5 09 11 20 41 d3 a1 97 83", want), 64);
	CU_ASSERT_EQUAL(tq_users_pbkdf2("passwd", 6, (const uint8_t *)"salt", 4, 1, got, 64), 0);
	CU_ASSERT_EQUAL(memcmp(got, want, 64), 0);
	CU_ASSERT_EQUAL(unhex("4d dc d8 f6 0b 98 be 21 83 0c ee 5e f2 27 01 f9"
			      "64 1a 44 18 d0 4c 04 14 ae ff 08 87 6b 34 ab 56"
			      "a1 d4 25 a1 22 58 33 54 9a db 84 1b 51 c9 b3 17"
			      "6a 27 2b de bb a1 d0 78 47 8f 62 b3 97 f3 3c 8d", want), 64);
	CU_ASSERT_EQUAL(tq_users_pbkdf2("Password", 8, (const uint8_t *)"NaCl", 4, 80000, got, 64),
			0);
	CU_ASSERT_EQUAL(memcmp(got, want, 64), 0);

	CU_ASSERT_EQUAL(tq_users_pbkdf2("p", 1, (const uint8_t *)"s", 1, 0, got, 32), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_pbkdf2("p", 1, (const uint8_t *)"s", 1,
					TQ_USERS_ITERATIONS_MAX + 1, got, 32), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_pbkdf2("p", 1, (const uint8_t *)"s", 1, 1, got, 0), -EINVAL);
}

static void
test_base64(void)
{
	/* RFC 4648 section 10 */
	static const char *const vec[][2] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};
	static const char *const bad[] = {
		"Zg=", "Zg", "Zh==", "Zm9=", "Z===", "====", "Zm=v", "Zg==Zg==", "Zm9v\n",
		"Zm 9", "Zm9v!A==", "Zg=A",
	};
	uint8_t bytes[256], back[256];
	char text[400];

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t n = strlen(vec[i][0]);

		CU_ASSERT_EQUAL(tq_users_b64_encode((const uint8_t *)vec[i][0], n, text,
						    sizeof(text)), (int)strlen(vec[i][1]));
		CU_ASSERT_STRING_EQUAL(text, vec[i][1]);
		CU_ASSERT_EQUAL(tq_users_b64_decode(vec[i][1], strlen(vec[i][1]), back,
						    sizeof(back)), (int)n);
		CU_ASSERT_EQUAL(memcmp(back, vec[i][0], n), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(tq_users_b64_decode(bad[i], strlen(bad[i]), back, sizeof(back)),
				-EINVAL);
	/* every length against OpenSSL's encoder, and back */
	CU_ASSERT_EQUAL_FATAL(RAND_bytes(bytes, sizeof(bytes)), 1);
	for (size_t n = 0; n <= sizeof(bytes); n++) {
		char want[400];

		b64_ossl(bytes, n, want);
		CU_ASSERT_EQUAL(tq_users_b64_encode(bytes, n, text, sizeof(text)),
				(int)strlen(want));
		CU_ASSERT_STRING_EQUAL(text, want);
		CU_ASSERT_EQUAL(tq_users_b64_decode(text, strlen(text), back, sizeof(back)),
				(int)n);
		CU_ASSERT_EQUAL(memcmp(back, bytes, n), 0);
	}
	/* room */
	CU_ASSERT_EQUAL(tq_users_b64_encode((const uint8_t *)"foo", 3, text, 4), -ENOSPC);
	CU_ASSERT_EQUAL(tq_users_b64_encode((const uint8_t *)"foo", 3, text, 5), 4);
	CU_ASSERT_EQUAL(tq_users_b64_decode("Zm9vYmFy", 8, back, 5), -ENOSPC);
	CU_ASSERT_EQUAL(tq_users_b64_decode("Zm9vYmE=", 8, back, 5), 5);
}

/* Our secret of @pw under @salt, @iter, computed here with OpenSSL's primitives. */
static void
secret_ossl(const char *pw, const uint8_t *salt, size_t salt_len, uint32_t iter, char *out)
{
	uint8_t salted[32], ck[32], sk[32], sv[32];
	char s64[100], k64[48], v64[48];
	unsigned int n = 32;

	CU_ASSERT_EQUAL_FATAL(PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)salt_len,
						(int)iter, EVP_sha256(), 32, salted), 1);
	HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, ck, &n);
	EVP_Digest(ck, 32, sk, NULL, EVP_sha256(), NULL);
	HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Server Key", 10, sv, &n);
	b64_ossl(salt, salt_len, s64);
	b64_ossl(sk, 32, k64);
	b64_ossl(sv, 32, v64);
	sprintf(out, "SCRAM-SHA-256$%u:%s$%s:%s", iter, s64, k64, v64);
}

static void
test_secret(void)
{
	uint8_t salt[16];
	char s1[200], s2[200], want[300];
	unsigned int iter;
	char salt64[64], k1[64], k2[64];

	/* a fixed salt: the literal, and OpenSSL's primitives */
	CU_ASSERT_EQUAL_FATAL(tq_users_b64_decode(RFC_SALT, strlen(RFC_SALT), salt, 16), 16);
	CU_ASSERT_EQUAL(tq_users_make_secret_salt("pencil", 6, 4096, salt, 16, s1, sizeof(s1)), 0);
	CU_ASSERT_STRING_EQUAL(s1, RFC_SECRET);
	RAND_bytes(salt, sizeof(salt));
	CU_ASSERT_EQUAL(tq_users_make_secret_salt("hunter2", 7, 1000, salt, 16, s1, sizeof(s1)), 0);
	secret_ossl("hunter2", salt, 16, 1000, want);
	CU_ASSERT_STRING_EQUAL(s1, want);

	/* a random salt: the shape, and two secrets of one password differ */
	CU_ASSERT_EQUAL(tq_users_make_secret("pencil", 6, 4096, s1, sizeof(s1)), 0);
	CU_ASSERT_EQUAL(tq_users_make_secret("pencil", 6, 4096, s2, sizeof(s2)), 0);
	CU_ASSERT_STRING_NOT_EQUAL(s1, s2);
	CU_ASSERT_EQUAL(strlen(s1), strlen("SCRAM-SHA-256$4096:") + 24 + 1 + 44 + 1 + 44);
	CU_ASSERT_EQUAL(sscanf(s1, "SCRAM-SHA-256$%u:%63[^$]$%63[^:]:%63s", &iter, salt64, k1, k2),
			4);
	CU_ASSERT_EQUAL(iter, 4096);
	CU_ASSERT_EQUAL(strlen(salt64), 24);
	CU_ASSERT_EQUAL(strlen(k1), 44);
	CU_ASSERT_EQUAL(strlen(k2), 44);

	/* right and wrong passwords, both forms */
	CU_ASSERT_EQUAL(tq_users_secret_check(s1, "pencil", 6), 1);
	CU_ASSERT_EQUAL(tq_users_secret_check(s2, "pencil", 6), 1);
	CU_ASSERT_EQUAL(tq_users_secret_check(RFC_SECRET, "pencil", 6), 1);
	CU_ASSERT_EQUAL(tq_users_secret_check(s1, "Pencil", 6), 0);
	CU_ASSERT_EQUAL(tq_users_secret_check(s1, "pencil", 5), 0);
	CU_ASSERT_EQUAL(tq_users_secret_check(s1, "", 0), 0);
	CU_ASSERT_EQUAL(tq_users_secret_check(MD5_SIMON, "simon", 5), 1);
	CU_ASSERT_EQUAL(tq_users_secret_check(MD5_SIMON, "simon!", 6), 0);

	/* arguments */
	CU_ASSERT_EQUAL(tq_users_make_secret("pencil", 6, 0, s1, sizeof(s1)), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_make_secret("pencil", 6, 4096, s1, 100), -ENOSPC);
	CU_ASSERT_EQUAL(tq_users_make_secret_salt("p", 1, 1, salt, 0, s1, sizeof(s1)), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_make_secret_salt("p", 1, 1, salt, TQ_USERS_SALT_MAX + 1, s1,
						  sizeof(s1)), -EINVAL);

	/* malformed secrets */
	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$4096",
		"SCRAM-SHA-256$4096:" RFC_SALT,
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
		"SCRAM-SHA-256$0:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$99999999999:" RFC_SALT
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$-1:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ="
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q==:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=x",
		"SCRAM-SHA-1$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"rabbit_password_hashing_md5$",
		"rabbit_password_hashing_md5$kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
		"rabbit_password_hashing_sha1$ytUIm8s3AnKsXQjptplKFytfVxI=",
		"ytUIm8s3AnKsXQjptplKFytfVxI=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(tq_users_secret_check(bad[i], "pencil", 6), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_secret_check(NULL, "pencil", 6), -EINVAL);
}

/* ---- the store ---------------------------------------------------------------------- */

static void
test_names(void)
{
	struct tq_users *u = store(1);
	char name[300], pw[1100];

	memset(name, 'n', sizeof(name));
	memset(pw, 'p', sizeof(pw));
	CU_ASSERT_EQUAL(add(u, "", "pw", NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_add(u, NULL, "pw", 2, NULL), -EINVAL);
	name[TQ_USER_NAME_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(add(u, name, "pw", NULL), -EINVAL);
	name[TQ_USER_NAME_MAX] = '\0';
	CU_ASSERT_EQUAL(add(u, name, "pw", NULL), 0);
	CU_ASSERT_PTR_NOT_NULL(tq_users_get(u, name, TQ_USER_NAME_MAX));
	CU_ASSERT_PTR_NULL(tq_users_get(u, name, TQ_USER_NAME_MAX - 1));
	CU_ASSERT_EQUAL(tq_users_add(u, "a", pw, 0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_add(u, "a", NULL, 3, NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_add(u, "a", pw, TQ_USER_PASSWORD_MAX + 1, NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_add(u, "a", pw, TQ_USER_PASSWORD_MAX, NULL), 0);
	CU_ASSERT_EQUAL(tq_users_login(u, "a", 1, pw, TQ_USER_PASSWORD_MAX, "", 0, NULL), 1);
	CU_ASSERT_EQUAL(tq_users_login(u, "a", 1, pw, TQ_USER_PASSWORD_MAX + 1, "", 0, NULL), 0);
	CU_ASSERT_EQUAL(add(u, "a", "other", NULL), -EEXIST);
	/* tags */
	CU_ASSERT_STRING_EQUAL(tq_users_get(u, "a", 1)->tags, "");
	memset(pw, 't', sizeof(pw));
	pw[TQ_USER_TAGS_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(add(u, "b", "pw", pw), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_set_tags(u, "a", pw), -EINVAL);
	pw[TQ_USER_TAGS_MAX] = '\0';
	CU_ASSERT_EQUAL(add(u, "b", "pw", pw), 0);
	CU_ASSERT_EQUAL(strlen(tq_users_get(u, "b", 1)->tags), TQ_USER_TAGS_MAX);
	/* bytes, not characters: "é" in two encodings are two users */
	CU_ASSERT_EQUAL(add(u, "\xc3\xa9", "pw", NULL), 0);
	CU_ASSERT_EQUAL(add(u, "e\xcc\x81", "pw", NULL), 0);
	CU_ASSERT_EQUAL(add(u, "A", "pw", NULL), 0); /* not "a" */
	CU_ASSERT_EQUAL(tq_users_count(u), 6);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "", RFC_SECRET, NULL, NULL), -EINVAL);
	tq_users_free(u);
}

static void
test_changes(void)
{
	static const char *const order[] = {"B", "a", "ab", "abc", "b", "\xc3\xa9"};
	struct tq_users *u = store(1);
	const struct tq_user *x;
	uint64_t g = tq_users_gen(u);
	char old_secret[200];

	CU_ASSERT_EQUAL(tq_users_count(u), 0);
	CU_ASSERT_PTR_NULL(tq_users_at(u, 0));
	CU_ASSERT_EQUAL(add(u, "b", "pb", "monitoring"), 0);
	CU_ASSERT_EQUAL(tq_users_gen(u), ++g);
	CU_ASSERT_EQUAL(add(u, "\xc3\xa9", "pe", NULL), 0);
	CU_ASSERT_EQUAL(add(u, "ab", "pab", NULL), 0);
	CU_ASSERT_EQUAL(add(u, "a", "pa", "administrator"), 0);
	CU_ASSERT_EQUAL(add(u, "abc", "pabc", NULL), 0);
	CU_ASSERT_EQUAL(add(u, "B", "pB", NULL), 0);
	g += 5;
	CU_ASSERT_EQUAL(tq_users_gen(u), g);
	CU_ASSERT_EQUAL(add(u, "ab", "x", NULL), -EEXIST);
	CU_ASSERT_EQUAL(tq_users_gen(u), g); /* a refused change changes nothing */
	CU_ASSERT_EQUAL_FATAL(tq_users_count(u), 6);
	for (size_t i = 0; i < 6; i++)
		CU_ASSERT_STRING_EQUAL(tq_users_at(u, i)->name, order[i]);
	CU_ASSERT_PTR_NULL(tq_users_at(u, 6));

	/* lookups by length, not NUL */
	x = tq_users_get(u, "abcdef", 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	CU_ASSERT_STRING_EQUAL(x->name, "ab");
	CU_ASSERT_PTR_NULL(tq_users_get(u, "abx", 3));
	CU_ASSERT_PTR_NULL(tq_users_get(u, "a", 0));
	CU_ASSERT_PTR_NULL(tq_users_get(u, "a\0", 2));
	CU_ASSERT_STRING_EQUAL(tq_users_get(u, "a", 1)->tags, "administrator");
	CU_ASSERT_EQUAL(strncmp(tq_users_get(u, "a", 1)->secret, "SCRAM-SHA-256$1:", 16), 0);

	/* tags */
	CU_ASSERT_EQUAL(tq_users_set_tags(u, "a", "monitoring,management"), 0);
	CU_ASSERT_EQUAL(tq_users_gen(u), ++g);
	CU_ASSERT_STRING_EQUAL(tq_users_get(u, "a", 1)->tags, "monitoring,management");
	CU_ASSERT_EQUAL(tq_users_set_tags(u, "a", NULL), 0);
	CU_ASSERT_EQUAL(tq_users_gen(u), ++g);
	CU_ASSERT_STRING_EQUAL(tq_users_get(u, "a", 1)->tags, "");
	CU_ASSERT_EQUAL(tq_users_set_tags(u, "zz", "x"), -ENOENT);

	/* password */
	snprintf(old_secret, sizeof(old_secret), "%s", tq_users_get(u, "ab", 2)->secret);
	CU_ASSERT_EQUAL(login(u, "ab", "pab", "", 0, NULL), 1);
	CU_ASSERT_EQUAL(tq_users_set_password(u, "ab", "new", 3), 0);
	CU_ASSERT_EQUAL(tq_users_gen(u), ++g);
	CU_ASSERT_STRING_NOT_EQUAL(tq_users_get(u, "ab", 2)->secret, old_secret);
	CU_ASSERT_EQUAL(login(u, "ab", "pab", "", 0, NULL), 0);
	CU_ASSERT_EQUAL(login(u, "ab", "new", "", 0, NULL), 1);
	CU_ASSERT_EQUAL(tq_users_set_password(u, "ab", "", 0), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_set_password(u, "zz", "x", 1), -ENOENT);
	CU_ASSERT_EQUAL(tq_users_gen(u), g);

	/* delete */
	CU_ASSERT_EQUAL(tq_users_delete(u, "ab"), 0);
	CU_ASSERT_EQUAL(tq_users_gen(u), ++g);
	CU_ASSERT_EQUAL(tq_users_delete(u, "ab"), -ENOENT);
	CU_ASSERT_EQUAL(tq_users_delete(u, ""), -ENOENT);
	CU_ASSERT_EQUAL(tq_users_gen(u), g);
	CU_ASSERT_EQUAL(login(u, "ab", "new", "", 0, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(tq_users_count(u), 5);
	CU_ASSERT_STRING_EQUAL(tq_users_at(u, 1)->name, "a");
	CU_ASSERT_STRING_EQUAL(tq_users_at(u, 2)->name, "abc");
	CU_ASSERT_EQUAL(tq_users_delete(u, "B"), 0);
	CU_ASSERT_EQUAL(tq_users_delete(u, "\xc3\xa9"), 0);
	CU_ASSERT_EQUAL(tq_users_count(u), 3);
	CU_ASSERT_STRING_EQUAL(tq_users_at(u, 0)->name, "a");
	CU_ASSERT_STRING_EQUAL(tq_users_at(u, 2)->name, "b");
	CU_ASSERT_EQUAL(add(u, "ab", "again", NULL), 0);
	CU_ASSERT_STRING_EQUAL(tq_users_at(u, 1)->name, "ab");

	/* many, in a scrambled order, come out sorted */
	for (unsigned int i = 0; i < 300; i++) {
		char n[16];

		snprintf(n, sizeof(n), "u%03u", (i * 7919) % 300);
		CU_ASSERT_EQUAL(add(u, n, "p", NULL), 0);
	}
	CU_ASSERT_EQUAL(tq_users_count(u), 304);
	for (size_t i = 1; i < tq_users_count(u); i++)
		CU_ASSERT(strcmp(tq_users_at(u, i - 1)->name, tq_users_at(u, i)->name) < 0);
	tq_users_free(u);
}

static void
test_put_hashed(void)
{
	struct tq_users *u = store(1);
	uint64_t g = tq_users_gen(u);
	uint8_t buf[4 + 64];
	char b64[200], secret[200];
	unsigned int n;

	/* our form, with and without the algorithm name */
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "user", RFC_SECRET, NULL, "t1"), 0);
	CU_ASSERT_EQUAL(tq_users_gen(u), ++g);
	CU_ASSERT_STRING_EQUAL(tq_users_get(u, "user", 4)->secret, RFC_SECRET);
	CU_ASSERT_EQUAL(login(u, "user", "pencil", "", 0, NULL), 1);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "user2", RFC_SECRET, "tachyon_scram_sha256", NULL),
			0);
	CU_ASSERT_EQUAL(login(u, "user2", "pencil", "", 0, NULL), 1);
	CU_ASSERT_EQUAL(login(u, "user2", "pencil2", "", 0, NULL), 0);

	/* RabbitMQ: published vectors (salt CA D5 08 9B / 90 8D C6 0A) */
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "md5", "ytUIm8s3AnKsXQjptplKFytfVxI=",
					    "rabbit_password_hashing_md5", "administrator"), 0);
	CU_ASSERT_STRING_EQUAL(tq_users_get(u, "md5", 3)->secret,
			       "rabbit_password_hashing_md5$ytUIm8s3AnKsXQjptplKFytfVxI=");
	CU_ASSERT_STRING_EQUAL(tq_users_get(u, "md5", 3)->tags, "administrator");
	CU_ASSERT_EQUAL(login(u, "md5", "simon", "", 0, NULL), 1);
	CU_ASSERT_EQUAL(login(u, "md5", "simoN", "", 0, NULL), 0);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "s256",
					    "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
					    "rabbit_password_hashing_sha256", NULL), 0);
	CU_ASSERT_EQUAL(login(u, "s256", "test12", "", 0, NULL), 1);
	CU_ASSERT_EQUAL(login(u, "s256", "test13", "", 0, NULL), 0);
	/* sha512 of CA D5 08 9B "simon": derived once with openssl dgst and Python's hashlib */
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "s512",
					    "ytUIm/Xb3yB16kTpWLMGsdQshDQIRgWveYehTItx"
					    "pYNIE5CNeIRuSaf9d0+A5sBl6Sdr9wjM9UD7oD17"
					    "+iNKfcYnX6U=",
					    "rabbit_password_hashing_sha512", NULL), 0);
	CU_ASSERT_EQUAL(login(u, "s512", "simon", "", 0, NULL), 1);
	CU_ASSERT_EQUAL(login(u, "s512", "simon ", "", 0, NULL), 0);

	/* hashes made here with OpenSSL, random salts, a UTF-8 password */
	static const struct {
		const char *alg;
		const EVP_MD *(*md)(void);
	} algs[] = {
		{"rabbit_password_hashing_sha256", EVP_sha256},
		{"rabbit_password_hashing_sha512", EVP_sha512},
		{"rabbit_password_hashing_md5", EVP_md5},
	};
	for (size_t i = 0; i < 3; i++) {
		const char *pw = "gr\xc3\xbc\xc3\x9f" "e";
		uint8_t in[64];

		RAND_bytes(buf, 4);
		memcpy(in, buf, 4);
		memcpy(in + 4, pw, strlen(pw));
		CU_ASSERT_EQUAL_FATAL(EVP_Digest(in, 4 + strlen(pw), buf + 4, &n, algs[i].md(),
						 NULL), 1);
		b64_ossl(buf, 4 + n, b64);
		CU_ASSERT_EQUAL(tq_users_put_hashed(u, "r", b64, algs[i].alg, NULL), 0);
		CU_ASSERT_EQUAL(login(u, "r", pw, "", 0, NULL), 1);
		CU_ASSERT_EQUAL(login(u, "r", "grusse", "", 0, NULL), 0);
		/* the stored form round-trips through our own import */
		snprintf(secret, sizeof(secret), "%s", tq_users_get(u, "r", 1)->secret);
		CU_ASSERT_EQUAL(tq_users_put_hashed(u, "r2", secret, NULL, NULL), 0);
		CU_ASSERT_EQUAL(login(u, "r2", pw, "", 0, NULL), 1);
	}

	/* rejects, and nothing changes */
	g = tq_users_gen(u);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "x", "ytUIm8s3AnKsXQjptplKFytfVxI=",
					    "rabbit_password_hashing_sha1", NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "x", "ytUIm8s3AnKsXQjptplKFytfVxI=",
					    "rabbit_password_hashing_sha256", NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "x", "ytUIm8s3AnKsXQjptplKFytfVxI",
					    "rabbit_password_hashing_md5", NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "x", "ytUIm8s3AnKs*QjptplKFytfVxI=",
					    "rabbit_password_hashing_md5", NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "x", "", "rabbit_password_hashing_md5", NULL),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "x", "ytUIm8s3AnKsXQjptplKFytfVxI=", NULL, NULL),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "x", "SCRAM-SHA-256$4096:junk", NULL, NULL),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "x", NULL, NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "md5", "", "rabbit_password_hashing_md5", NULL),
			-EINVAL);
	CU_ASSERT_EQUAL(tq_users_gen(u), g);
	CU_ASSERT_PTR_NULL(tq_users_get(u, "x", 1));
	CU_ASSERT_EQUAL(login(u, "md5", "simon", "", 0, NULL), 1);

	/* replacing: secret and tags */
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "md5", RFC_SECRET, NULL, "monitoring"), 0);
	CU_ASSERT_EQUAL(tq_users_gen(u), ++g);
	CU_ASSERT_STRING_EQUAL(tq_users_get(u, "md5", 3)->tags, "monitoring");
	CU_ASSERT_EQUAL(login(u, "md5", "simon", "", 0, NULL), 0);
	CU_ASSERT_EQUAL(login(u, "md5", "pencil", "", 0, NULL), 1);
	tq_users_free(u);
}

/* ---- login cache and rate limit ----------------------------------------------------- */

static void
test_cache(void)
{
	struct tq_users *u = store(4096);
	struct tq_users_stats st0, st;
	uint64_t t = 1000000;

	CU_ASSERT_EQUAL(add(u, "alice", "secret", NULL), 0);
	CU_ASSERT_EQUAL(add(u, "bob", "secret", NULL), 0);
	st0 = stats(u);
	CU_ASSERT_EQUAL(st0.hashes, 2); /* one per add */

	CU_ASSERT_EQUAL(login(u, "alice", "secret", "", t, NULL), 1);
	st = stats(u);
	CU_ASSERT_EQUAL(st.hashes, st0.hashes + 1);
	CU_ASSERT_EQUAL(st.cache_hits, 0);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(login(u, "alice", "secret", "", t + 1000 * (uint64_t)i, NULL), 1);
	st = stats(u);
	CU_ASSERT_EQUAL(st.hashes, st0.hashes + 1); /* no more hashing */
	CU_ASSERT_EQUAL(st.cache_hits, 10);
	CU_ASSERT_EQUAL(st.logins_ok, 11);

	/* the cache is per user and per password */
	CU_ASSERT_EQUAL(login(u, "bob", "secret", "", t, NULL), 1);
	CU_ASSERT_EQUAL(login(u, "alice", "secreT", "", t, NULL), 0);
	CU_ASSERT_EQUAL(login(u, "alice", "secre", "", t, NULL), 0);
	st = stats(u);
	CU_ASSERT_EQUAL(st.hashes, st0.hashes + 4);
	CU_ASSERT_EQUAL(st.logins_refused, 2);
	CU_ASSERT_EQUAL(login(u, "alice", "secret", "", t, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, st0.hashes + 4);

	/* expiry */
	CU_ASSERT_EQUAL(login(u, "alice", "secret", "", t + 300000 - 1, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, st0.hashes + 4);
	CU_ASSERT_EQUAL(login(u, "alice", "secret", "", t + 300000, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, st0.hashes + 5);
	t += 300000;
	CU_ASSERT_EQUAL(login(u, "alice", "secret", "", t + 1, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, st0.hashes + 5);

	/* any change to the user forgets it; others keep theirs */
	CU_ASSERT_EQUAL(tq_users_set_tags(u, "alice", "x"), 0);
	CU_ASSERT_EQUAL(login(u, "alice", "secret", "", t + 2, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, st0.hashes + 6);
	CU_ASSERT_EQUAL(tq_users_set_password(u, "alice", "secret2", 7), 0); /* hashes once */
	CU_ASSERT_EQUAL(login(u, "alice", "secret", "", t + 3, NULL), 0);
	CU_ASSERT_EQUAL(login(u, "alice", "secret2", "", t + 3, NULL), 1);
	CU_ASSERT_EQUAL(login(u, "alice", "secret2", "", t + 4, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, st0.hashes + 9);
	CU_ASSERT_EQUAL(tq_users_delete(u, "alice"), 0);
	CU_ASSERT_EQUAL(login(u, "alice", "secret2", "", t + 5, NULL), 0);
	CU_ASSERT_EQUAL(add(u, "alice", "secret3", NULL), 0);
	CU_ASSERT_EQUAL(login(u, "alice", "secret2", "", t + 6, NULL), 0);
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "bob", RFC_SECRET, NULL, NULL), 0);
	CU_ASSERT_EQUAL(login(u, "bob", "secret", "", t + 7, NULL), 0);

	/* unknown users and empty passwords are refused; an unknown user costs a hash */
	st0 = stats(u);
	CU_ASSERT_EQUAL(login(u, "nobody", "secret", "", t, NULL), 0);
	CU_ASSERT_EQUAL(stats(u).hashes, st0.hashes + 1);
	CU_ASSERT_EQUAL(login(u, "bob", "", "", t, NULL), 0);
	CU_ASSERT_EQUAL(tq_users_login(u, "", 0, "x", 1, "", t, NULL), 0);
	CU_ASSERT_EQUAL(stats(u).hashes, st0.hashes + 2);
	tq_users_free(u);

	/* cache_ms 0: no cache */
	struct tq_users_conf c;

	tq_users_conf_defaults(&c);
	c.iterations = 1;
	c.cache_ms = 0;
	u = tq_users_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_EQUAL(add(u, "a", "p", NULL), 0);
	CU_ASSERT_EQUAL(login(u, "a", "p", "", 1, NULL), 1);
	CU_ASSERT_EQUAL(login(u, "a", "p", "", 2, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, 3);
	CU_ASSERT_EQUAL(stats(u).cache_hits, 0);
	tq_users_free(u);
}

/* The cache holds TQ_USERS_CACHE_MAX logins; the oldest gives way. */
static void
test_cache_bound(void)
{
	struct tq_users *u = store(1);
	const unsigned int n = TQ_USERS_CACHE_MAX + 1;
	char name[16];
	uint64_t h;

	for (unsigned int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "u%u", i);
		CU_ASSERT_EQUAL(add(u, name, "p", NULL), 0);
		CU_ASSERT_EQUAL(login(u, name, "p", "", 10 + i, NULL), 1);
	}
	h = stats(u).hashes;
	/* u1 .. u4096 are cached (a hit does not make an entry younger) */
	CU_ASSERT_EQUAL(login(u, "u1", "p", "", 10 + n, NULL), 1);
	CU_ASSERT_EQUAL(login(u, "u2", "p", "", 10 + n, NULL), 1);
	snprintf(name, sizeof(name), "u%u", n - 1);
	CU_ASSERT_EQUAL(login(u, name, "p", "", 10 + n, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, h);
	CU_ASSERT_EQUAL(stats(u).cache_hits, 3);
	/* u0, the oldest, is gone; caching it again pushes out u1, then u1 pushes out u2 */
	CU_ASSERT_EQUAL(login(u, "u0", "p", "", 10 + n, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, h + 1);
	CU_ASSERT_EQUAL(login(u, "u1", "p", "", 10 + n, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, h + 2);
	CU_ASSERT_EQUAL(login(u, "u3", "p", "", 10 + n, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, h + 2);
	CU_ASSERT_EQUAL(login(u, "u2", "p", "", 10 + n, NULL), 1);
	CU_ASSERT_EQUAL(stats(u).hashes, h + 3);
	tq_users_free(u);
}

static void
test_rate_user(void)
{
	struct tq_users *u = store(1);
	uint64_t t = 5000;
	uint32_t d = 77;

	CU_ASSERT_EQUAL(add(u, "alice", "right", NULL), 0);
	CU_ASSERT_EQUAL(add(u, "bob", "right", NULL), 0);
	/* fail_limit 5: five failures answer at once */
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(login(u, "alice", "wrong", "", t + (uint64_t)i, &d), 0);
		CU_ASSERT_EQUAL(d, 0);
	}
	/* past it, every answer waits, the right one too, and it is still right */
	CU_ASSERT_EQUAL(login(u, "alice", "wrong", "", t + 10, &d), 0);
	CU_ASSERT_EQUAL(d, 1000);
	CU_ASSERT_EQUAL(login(u, "alice", "right", "", t + 11, &d), 1);
	CU_ASSERT_EQUAL(d, 1000);
	CU_ASSERT_EQUAL(stats(u).throttled, 2);
	/* another user is not slowed */
	CU_ASSERT_EQUAL(login(u, "bob", "right", "", t + 12, &d), 1);
	CU_ASSERT_EQUAL(d, 0);
	/* the window runs from the latest failure (t + 10) */
	CU_ASSERT_EQUAL(login(u, "alice", "right", "", t + 10 + 60000 - 1, &d), 1);
	CU_ASSERT_EQUAL(d, 1000);
	CU_ASSERT_EQUAL(login(u, "alice", "right", "", t + 10 + 60000, &d), 1);
	CU_ASSERT_EQUAL(d, 0);
	/* counting starts again from zero */
	t += 100000;
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(login(u, "alice", "wrong", "", t + (uint64_t)i, &d), 0);
		CU_ASSERT_EQUAL(d, 0);
	}
	CU_ASSERT_EQUAL(login(u, "alice", "right", "", t + 5, &d), 1);
	CU_ASSERT_EQUAL(d, 1000);
	/* unknown names are counted too: guessing names is slowed the same way */
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(login(u, "mallory", "x", "", t, NULL), 0);
	CU_ASSERT_EQUAL(login(u, "mallory", "x", "", t, &d), 0);
	CU_ASSERT_EQUAL(d, 1000);
	tq_users_free(u);

	/* fail_limit 0: no rate limit */
	struct tq_users_conf c;

	tq_users_conf_defaults(&c);
	c.iterations = 1;
	c.fail_limit = 0;
	u = tq_users_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	for (int i = 0; i < 20; i++) {
		CU_ASSERT_EQUAL(login(u, "x", "y", "10.0.0.1", 1, &d), 0);
		CU_ASSERT_EQUAL(d, 0);
	}
	tq_users_free(u);
}

static void
test_rate_addr(void)
{
	struct tq_users *u = store(1);
	uint64_t t = 1000;
	uint32_t d = 77;
	char name[32], addr[32];

	CU_ASSERT_EQUAL(add(u, "alice", "right", NULL), 0);
	/* five failures from one address, each for another name */
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "guess%d", i);
		CU_ASSERT_EQUAL(login(u, name, "x", "10.0.0.1", t, &d), 0);
		CU_ASSERT_EQUAL(d, 0);
	}
	CU_ASSERT_EQUAL(login(u, "alice", "right", "10.0.0.1", t + 1, &d), 1);
	CU_ASSERT_EQUAL(d, 1000);
	CU_ASSERT_EQUAL(login(u, "alice", "right", "10.0.0.2", t + 1, &d), 1);
	CU_ASSERT_EQUAL(d, 0);
	CU_ASSERT_EQUAL(login(u, "alice", "right", "", t + 1, &d), 1);
	CU_ASSERT_EQUAL(d, 0);
	CU_ASSERT_EQUAL(login(u, "alice", "right", "10.0.0.1", t + 60000, &d), 1);
	CU_ASSERT_EQUAL(d, 0);

	/* the same through tq_users_throttle (SCRAM's bookkeeping) */
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(tq_users_throttle(u, "carol", 5, "10.0.0.3", t, true), 0);
	CU_ASSERT_EQUAL(tq_users_throttle(u, "carol", 5, "10.0.0.4", t, false), 1000);
	CU_ASSERT_EQUAL(tq_users_throttle(u, "dave", 4, "10.0.0.3", t, false), 1000);
	CU_ASSERT_EQUAL(tq_users_throttle(u, "dave", 4, "10.0.0.4", t, false), 0);

	/* a flood of addresses: the table stays the same size, the oldest counters go */
	t += 200000;
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(login(u, "victim", "x", "192.168.0.1", t, NULL), 0);
	CU_ASSERT_EQUAL(tq_users_throttle(u, "z", 1, "192.168.0.1", t, false), 1000);
	for (unsigned int i = 0; i < 8 * TQ_USERS_FAIL_SLOTS; i++) {
		snprintf(addr, sizeof(addr), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		tq_users_throttle(u, "flood", 5, addr, t + 1, true);
	}
	CU_ASSERT_EQUAL(tq_users_throttle(u, "z", 1, "192.168.0.1", t + 2, false), 0);
	/* the latest is still there: its one failure and four more reach the limit */
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(tq_users_throttle(u, "z", 1, addr, t + 3, true), 0);
	CU_ASSERT_EQUAL(tq_users_throttle(u, "y", 1, addr, t + 3, false), 1000);
	tq_users_free(u);
}

/* ---- SCRAM -------------------------------------------------------------------------- */

/* Step 1 from a buffer that ends at a guard page. */
static int
first(struct tq_scram *s, const struct tq_users *u, const char *msg, size_t len, char *out,
      size_t cap)
{
	uint8_t *g = tq_test_guarded(msg, len);
	size_t olen = 999;
	int rc;

	rc = tq_scram_server_first(s, u, g, len, out, cap, &olen);
	tq_test_guard_free(g, len);
	CU_ASSERT_EQUAL(olen, rc == 0 ? strlen(out) : 0);
	return rc;
}

static int
final(struct tq_scram *s, const char *msg, size_t len, char *out, size_t cap)
{
	uint8_t *g = tq_test_guarded(msg, len);
	size_t olen = 999;
	int rc;

	rc = tq_scram_server_final(s, g, len, out, cap, &olen);
	tq_test_guard_free(g, len);
	CU_ASSERT_EQUAL(olen, rc == 1 ? strlen(out) : 0);
	if (rc != 1 && cap)
		CU_ASSERT_STRING_EQUAL(out, "");
	return rc;
}

static struct tq_users *
rfc_store(void)
{
	struct tq_users *u = store(4096);

	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "user", RFC_SECRET, NULL, NULL), 0);
	return u;
}

static void
test_scram_rfc7677(void)
{
	struct tq_users *u = rfc_store();
	struct tq_scram s;
	char out[TQ_SCRAM_MSG_MAX];

	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(tq_scram_test_server_nonce(RFC_SNONCE), 0);
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, RFC_SFIRST);
	CU_ASSERT_STRING_EQUAL(s.user, "user");
	CU_ASSERT_EQUAL(s.step, 1);
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, RFC_SFINAL);
	CU_ASSERT_EQUAL(s.step, 2);
	CU_ASSERT_STRING_EQUAL(s.user, "user");

	/* the same with the proof's last byte changed */
	tq_scram_clear(&s);
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	static const char bad[] =
		"c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=";
	CU_ASSERT_EQUAL(final(&s, bad, strlen(bad), out, sizeof(out)), 0);

	/* the user's password changed: the old proof is refused */
	CU_ASSERT_EQUAL(tq_users_set_password(u, "user", "pencil2", 7), 0);
	tq_scram_clear(&s);
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	CU_ASSERT_STRING_NOT_EQUAL(out, RFC_SFIRST); /* a new salt */
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(tq_scram_test_server_nonce(NULL), 0);
	tq_users_free(u);
}

/* A SCRAM client written here with OpenSSL. */
struct client {
	const char *gs2;        /* "n,," ... */
	const char *user_esc;   /* the name as sent (escaped) */
	const char *password;
	const char *ext;        /* extension before the proof, or NULL */
	const char *final_gs2;  /* what c= carries (signed), when not gs2 */
	const char *final_nonce; /* what r= carries (signed), when not the server's */
	char bare[600];
	char final[1000];
	char server_sig[64];    /* "v=..." we expect */
};

static void
client_first(struct client *c, char *msg, size_t cap)
{
	uint8_t rnd[24];
	char nonce[64];

	RAND_bytes(rnd, sizeof(rnd));
	b64_ossl(rnd, sizeof(rnd), nonce);
	snprintf(c->bare, sizeof(c->bare), "n=%s,r=%s", c->user_esc, nonce);
	snprintf(msg, cap, "%s%s", c->gs2, c->bare);
}

/* Build client-final from server-first @sf; false if @sf does not parse. */
static bool
client_final(struct client *c, const char *sf)
{
	char nonce[600], salt64[200], cb[200], wp[900], auth[2600], proof64[64];
	uint8_t salt[128], salted[32], ck[32], sk[32], sig[32], sv[32];
	unsigned int iter, n = 32;
	int slen;

	if (sscanf(sf, "r=%599[^,],s=%199[^,],i=%u", nonce, salt64, &iter) != 3)
		return false;
	slen = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
	if (slen < 0)
		return false;
	slen -= (int)(strchr(salt64, '=') ? strlen(strchr(salt64, '=')) : 0);
	PKCS5_PBKDF2_HMAC(c->password, (int)strlen(c->password), salt, slen, (int)iter,
			  EVP_sha256(), 32, salted);
	HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, ck, &n);
	EVP_Digest(ck, 32, sk, NULL, EVP_sha256(), NULL);
	HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Server Key", 10, sv, &n);
	b64_ossl((const uint8_t *)(c->final_gs2 ? c->final_gs2 : c->gs2),
		 strlen(c->final_gs2 ? c->final_gs2 : c->gs2), cb);
	snprintf(wp, sizeof(wp), "c=%s,r=%s%s%s", cb, c->final_nonce ? c->final_nonce : nonce,
		 c->ext ? "," : "",
		 c->ext ? c->ext : "");
	snprintf(auth, sizeof(auth), "%s,%s,%s", c->bare, sf, wp);
	HMAC(EVP_sha256(), sk, 32, (const uint8_t *)auth, strlen(auth), sig, &n);
	for (int i = 0; i < 32; i++)
		ck[i] ^= sig[i];
	b64_ossl(ck, 32, proof64);
	snprintf(c->final, sizeof(c->final), "%s,p=%s", wp, proof64);
	HMAC(EVP_sha256(), sv, 32, (const uint8_t *)auth, strlen(auth), sig, &n);
	strcpy(c->server_sig, "v=");
	b64_ossl(sig, 32, c->server_sig + 2);
	return true;
}

/* One whole exchange; returns step 2's result. */
static int
exchange(struct tq_users *u, struct client *c, char *sfirst)
{
	char msg[1024], out[TQ_SCRAM_MSG_MAX];
	struct tq_scram s;
	int rc;

	memset(&s, 0, sizeof(s));
	client_first(c, msg, sizeof(msg));
	rc = first(&s, u, msg, strlen(msg), out, sizeof(out));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	if (sfirst)
		strcpy(sfirst, out);
	CU_ASSERT_FATAL(client_final(c, out));
	rc = final(&s, c->final, strlen(c->final), out, sizeof(out));
	if (rc == 1)
		CU_ASSERT_STRING_EQUAL(out, c->server_sig);
	tq_scram_clear(&s);
	return rc;
}

static void
test_scram_client(void)
{
	struct tq_users *u = store(4096);
	struct client c = {.gs2 = "n,,", .user_esc = "alice", .password = "s3cret"};

	CU_ASSERT_EQUAL(add(u, "alice", "s3cret", NULL), 0);
	CU_ASSERT_EQUAL(add(u, "a,b=c", "odd", NULL), 0);
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 1);
	c.gs2 = "y,,";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 1);
	c.gs2 = "n,a=alice,";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 1);
	c.gs2 = "n,,";
	c.ext = "x=ignored";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 1);
	c.ext = NULL;
	/* a properly signed c= that is not the GS2 header sent in step 1 */
	c.final_gs2 = "y,,";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 0);
	c.gs2 = "y,,";
	c.final_gs2 = "n,,";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 0);
	c.gs2 = "n,a=alice,";
	c.final_gs2 = "n,,";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 0);
	c.gs2 = "n,,";
	c.final_gs2 = NULL;
	/* a properly signed r= that is not this exchange's nonce */
	c.final_nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 0);
	c.final_nonce = NULL;
	c.password = "s3creT";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 0);
	/* escaped names */
	c.user_esc = "a=2Cb=3Dc";
	c.password = "odd";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 1);
	c.gs2 = "n,a=a=2Cb=3Dc,";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 1);
	/* a user imported from RabbitMQ cannot use SCRAM, even with the right password */
	CU_ASSERT_EQUAL(tq_users_put_hashed(u, "md5", "ytUIm8s3AnKsXQjptplKFytfVxI=",
					    "rabbit_password_hashing_md5", NULL), 0);
	c.gs2 = "n,,";
	c.user_esc = "md5";
	c.password = "simon";
	CU_ASSERT_EQUAL(exchange(u, &c, NULL), 0);
	tq_users_free(u);
}

static void
test_scram_unknown(void)
{
	struct tq_users *u = store(4096);
	struct client c = {.gs2 = "n,,", .user_esc = "alice", .password = "s3cret"};
	char known[TQ_SCRAM_MSG_MAX], ghost1[TQ_SCRAM_MSG_MAX], ghost2[TQ_SCRAM_MSG_MAX];
	char other[TQ_SCRAM_MSG_MAX], salt64[100];
	unsigned int iter;
	uint8_t salt[64];

	CU_ASSERT_EQUAL(add(u, "alice", "s3cret", NULL), 0);
	CU_ASSERT_EQUAL(exchange(u, &c, known), 1);
	c.user_esc = "ghost";
	CU_ASSERT_EQUAL(exchange(u, &c, ghost1), 0);
	CU_ASSERT_EQUAL(exchange(u, &c, ghost2), 0);
	c.user_esc = "ghost2";
	CU_ASSERT_EQUAL(exchange(u, &c, other), 0);

	/* a well-formed server-first: same shape as a real user's */
	CU_ASSERT_EQUAL(strlen(ghost1), strlen(known));
	CU_ASSERT_EQUAL(sscanf(ghost1, "r=%*[^,],s=%99[^,],i=%u", salt64, &iter), 2);
	CU_ASSERT_EQUAL(iter, 4096);
	CU_ASSERT_EQUAL(tq_users_b64_decode(salt64, strlen(salt64), salt, sizeof(salt)), 16);
	/* the same made-up salt every time for one name, another for another name */
	CU_ASSERT_PTR_NOT_NULL(strstr(ghost2, salt64));
	CU_ASSERT_PTR_NULL(strstr(other, salt64));
	/* the server nonce is fresh every time: 24 characters after the client's 32 */
	CU_ASSERT(memcmp(ghost1 + 2 + 32, ghost2 + 2 + 32, 24) != 0);
	CU_ASSERT_EQUAL(ghost1[2 + 32 + 24], ',');
	tq_users_free(u);
}

static void
test_scram_malformed(void)
{
	static const struct {
		const char *msg;
		int rc;
	} firsts[] = {
		{"", -EINVAL},
		{"n", -EINVAL},
		{"n,", -EINVAL},
		{"n,,", -EINVAL},
		{"n,,n=user", -EINVAL},
		{"n,,n=user,", -EINVAL},
		{"n,,n=user,r=", -EINVAL},
		{"n,,n=user,r", -EINVAL},
		{"n,,n=,r=abc", -EINVAL},
		{"n,,r=abc,n=user", -EINVAL},
		{"n,,n=user,x=1,r=abc", -EINVAL},
		{"x,,n=user,r=abc", -EINVAL},
		{"nn,,n=user,r=abc", -EINVAL},
		{",,n=user,r=abc", -EINVAL},
		{"n,b=user,n=user,r=abc", -EINVAL},
		{"n,a=,n=user,r=abc", -EINVAL},
		{"n,,n=us=2Xer,r=abc", -EINVAL},
		{"n,,n=us=2cer,r=abc", -EINVAL},
		{"n,,n=user=,r=abc", -EINVAL},
		{"n,,n=user=2,r=abc", -EINVAL},
		{"n,,n=user,r=abc,", -EINVAL},
		{"n,,n=user,r=abc,x", -EINVAL},
		{"n,,n=user,r=abc,1=x", -EINVAL},
		{"n,,n=user,r=ab c", -EINVAL},
		{"n,,n=user,r=ab\x7f", -EINVAL},
		{"N,,n=user,r=abc", -EINVAL},
		{"p=tls-unique,,n=user,r=abc", -ENOTSUP},
		{"p=tls-server-end-point,,n=user,r=abc", -ENOTSUP},
		{"n,,m=ext,n=user,r=abc", -ENOTSUP},
		{"n,a=admin,n=user,r=abc", -ENOTSUP},
		{"n,,n=user,r=abc,x=1", 0},
		{"y,,n=user,r=abc", 0},
		{"n,a=user,n=user,r=abc", 0},
	};
	struct tq_users *u = rfc_store();
	char out[TQ_SCRAM_MSG_MAX], big[TQ_SCRAM_MSG_MAX + 300];
	struct tq_scram s;
	size_t len, olen;

	for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		memset(&s, 0, sizeof(s));
		CU_ASSERT_EQUAL(first(&s, u, firsts[i].msg, strlen(firsts[i].msg), out,
				      sizeof(out)), firsts[i].rc);
		CU_ASSERT_EQUAL(s.step, firsts[i].rc == 0 ? 1 : 0);
	}
	/* a NUL inside */
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(first(&s, u, "n,,n=us\0er,r=abc", 16, out, sizeof(out)), -EINVAL);
	/* every prefix of a valid message: malformed until the nonce has a byte */
	for (len = 0; len <= strlen(RFC_CFIRST); len++) {
		memset(&s, 0, sizeof(s));
		CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, len, out, sizeof(out)),
				len < strlen("n,,n=user,r=r") ? -EINVAL : 0);
	}
	/* too long: the message, a name, a nonce the answer could not carry */
	memset(big, 'a', sizeof(big));
	memcpy(big, "n,,n=user,r=", 12);
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(first(&s, u, big, TQ_SCRAM_MSG_MAX, out, sizeof(out)), -EINVAL);
	/* the client-final "c=biws,r=<432 + 24>,p=<44>" would be 512 bytes */
	CU_ASSERT_EQUAL(first(&s, u, big, 12 + 432, out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(first(&s, u, big, 12 + 431, out, sizeof(out)), 0);
	memset(big, 'n', sizeof(big));
	memcpy(big, "n,,n=", 5);
	memcpy(big + 5 + TQ_USER_NAME_MAX + 1, ",r=abc", 6);
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(first(&s, u, big, 5 + TQ_USER_NAME_MAX + 1 + 6, out, sizeof(out)),
			-EINVAL);
	memcpy(big + 5 + TQ_USER_NAME_MAX, ",r=abc", 6);
	CU_ASSERT_EQUAL(first(&s, u, big, 5 + TQ_USER_NAME_MAX + 6, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(strlen(s.user), TQ_USER_NAME_MAX);
	/* a name is counted after unescaping */
	memcpy(big, "n,,n=", 5);
	for (int i = 0; i < 100; i++)
		memcpy(big + 5 + 3 * i, "=3D", 3);
	memcpy(big + 305, ",r=abc", 6);
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(first(&s, u, big, 311, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(strlen(s.user), 100);
	CU_ASSERT_EQUAL(strspn(s.user, "="), 100);
	/* room for the answer */
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, 20), -ENOSPC);
	CU_ASSERT_EQUAL(s.step, 0);

	/* step 2 */
	static const char *const finals[] = {
		"",
		"c=biws",
		"c=biws,",
		"c=biws,r=" RFC_NONCE,
		"c=biws,r=" RFC_NONCE ",",
		"c=biws,r=" RFC_NONCE ",p=",
		"c=biws,r=" RFC_NONCE ",p=AAAA",
		"c=bi!s,r=" RFC_NONCE ",p=" RFC_PROOF,
		"c=biw,r=" RFC_NONCE ",p=" RFC_PROOF,
		"c=biws,r=" RFC_NONCE ",p=" RFC_PROOF "x",
		"c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
		"c=biws,r=" RFC_NONCE ",p=" RFC_PROOF ",x=1",
		"c=biws,r=" RFC_NONCE ",p=" RFC_PROOF ",",
		"r=" RFC_NONCE ",c=biws,p=" RFC_PROOF,
		"c=biws,p=" RFC_PROOF ",r=" RFC_NONCE,
		"c=biws,r=" RFC_NONCE ",1=x,p=" RFC_PROOF,
		"c=biws,p=" RFC_PROOF,
	};
	CU_ASSERT_EQUAL(tq_scram_test_server_nonce(RFC_SNONCE), 0);
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		memset(&s, 0, sizeof(s));
		CU_ASSERT_EQUAL_FATAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out,
					    sizeof(out)), 0);
		CU_ASSERT_EQUAL(final(&s, finals[i], strlen(finals[i]), out, sizeof(out)), -EINVAL);
		CU_ASSERT_EQUAL(s.step, 2);
	}
	/* every strict prefix of the right answer */
	for (len = 0; len < strlen(RFC_CFINAL); len++) {
		memset(&s, 0, sizeof(s));
		CU_ASSERT_EQUAL_FATAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out,
					    sizeof(out)), 0);
		CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, len, out, sizeof(out)), -EINVAL);
	}
	/* well-formed but not this exchange's: refused */
	static const char *const refused[] = {
		"c=eSws,r=" RFC_NONCE ",p=" RFC_PROOF,                       /* "y,," */
		"c=cD10bHMtdW5pcXVlLCw=,r=" RFC_NONCE ",p=" RFC_PROOF,       /* "p=tls-unique,," */
		"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=" RFC_PROOF,                /* client nonce only */
		"c=biws,r=" RFC_NONCE "x,p=" RFC_PROOF,
		"c=biws,r=" RFC_NONCE ",x=1,p=" RFC_PROOF, /* not what was signed */
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		memset(&s, 0, sizeof(s));
		CU_ASSERT_EQUAL_FATAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out,
					    sizeof(out)), 0);
		CU_ASSERT_EQUAL(final(&s, refused[i], strlen(refused[i]), out, sizeof(out)), 0);
	}
	/* a NUL inside; room for the answer */
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(final(&s, "c=biws\0", 7, out, sizeof(out)), -EINVAL);
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(tq_scram_server_final(&s, (const uint8_t *)RFC_CFINAL, strlen(RFC_CFINAL),
					      out, 40, &olen), -ENOSPC);
	CU_ASSERT_EQUAL(s.step, 1);
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), 1);
	CU_ASSERT_EQUAL(tq_scram_test_server_nonce(NULL), 0);
	tq_users_free(u);
}

static void
test_scram_order(void)
{
	struct tq_users *u = rfc_store();
	char out[TQ_SCRAM_MSG_MAX];
	struct tq_scram s;

	CU_ASSERT_EQUAL(tq_scram_test_server_nonce(RFC_SNONCE), 0);
	memset(&s, 0, sizeof(s));
	/* step 2 first */
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(s.step, 0);
	/* step 1 twice */
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), -EINVAL);
	/* step 2 twice: the second is out of order even after a success */
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), 1);
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), -EINVAL);
	/* a malformed step 2 ends the exchange too: no second try */
	tq_scram_clear(&s);
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(final(&s, "c=biws", 6, out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), -EINVAL);
	/* and a refused one */
	tq_scram_clear(&s);
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(final(&s, "c=biws,r=x,p=" RFC_PROOF, 13 + 44, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), -EINVAL);
	/* a failed step 1 leaves the struct new */
	tq_scram_clear(&s);
	CU_ASSERT_EQUAL(first(&s, u, "n,,n=user", 9, out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(first(&s, u, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out)), 1);
	/* the test hook takes only what a nonce may hold */
	CU_ASSERT_EQUAL(tq_scram_test_server_nonce("a,b"), -EINVAL);
	CU_ASSERT_EQUAL(tq_scram_test_server_nonce("a b"), -EINVAL);
	CU_ASSERT_EQUAL(tq_scram_test_server_nonce(NULL), 0);
	tq_users_free(u);
}

int
main(void)
{
	static const struct tq_test_case tests[] = {
		TQ_TEST(test_pbkdf2),
		TQ_TEST(test_base64),
		TQ_TEST(test_secret),
		TQ_TEST(test_names),
		TQ_TEST(test_changes),
		TQ_TEST(test_put_hashed),
		TQ_TEST(test_cache),
		TQ_TEST(test_cache_bound),
		TQ_TEST(test_rate_user),
		TQ_TEST(test_rate_addr),
		TQ_TEST(test_scram_rfc7677),
		TQ_TEST(test_scram_client),
		TQ_TEST(test_scram_unknown),
		TQ_TEST(test_scram_malformed),
		TQ_TEST(test_scram_order),
	};

	if (CU_initialize_registry() != CUE_SUCCESS || TQ_SUITE("users", tests) != CUE_SUCCESS)
		return EXIT_FAILURE;
	return tq_test_run();
}
