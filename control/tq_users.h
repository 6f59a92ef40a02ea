/*
 * Users, their password secrets and the login check. The control thread's alone: it
 * allocates, calls OpenSSL and hashes slowly. Workers never hash; they ask the control
 * thread over the control ring (dataplane/tq_ctl.h) and wait for the answer.
 *
 * A password is never stored, only a SCRAM-SHA-256 secret (RFC 5802, RFC 7677), in the
 * text form PostgreSQL uses:
 *
 *     SCRAM-SHA-256$<iterations>:<salt, base64>$<StoredKey, base64>:<ServerKey, base64>
 *
 * SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations) (16-byte random salt),
 * ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = SHA-256(ClientKey),
 * ServerKey = HMAC(SaltedPassword, "Server Key"). A plain password (AMQP PLAIN/AMQPLAIN,
 * MQTT username/password) is checked by recomputing StoredKey (constant-time compare); MQTT 5
 * enhanced authentication runs SCRAM-SHA-256 against the same secret (tq_scram.h).
 *
 * Hashes exported by RabbitMQ are accepted on import (tq_users_put_hashed with algorithm
 * "rabbit_password_hashing_sha256", "_sha512" or "_md5": base64 of a 4-byte salt followed by
 * H(salt || password)) and checked as such; such a user cannot use SCRAM until its password
 * is set again.
 *
 * Login cache: a successful check is remembered (keyed by user and a keyed hash of the
 * password, never the password) for conf.cache_ms so that reconnect storms do not hash;
 * any change to the user forgets it. Rate limit: failures are counted per user name and per
 * source address over conf.fail_window_ms; past conf.fail_limit, every further answer for
 * that user or address (right or wrong) is held back conf.fail_delay_ms (the caller delays
 * it), which slows guessing without locking out the real user for long.
 *
 * Every function: control thread only; strings are NUL-terminated unless a length is given.
 * Returns 0 or -errno unless said otherwise.
 */
#ifndef TQ_USERS_H
#define TQ_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_USER_NAME_MAX 255     /* bytes, without the NUL */
#define TQ_USER_PASSWORD_MAX 1024

struct tq_users_conf {
	uint32_t iterations;     /* PBKDF2 cost for new secrets (default 4096, RFC 7677's) */
	uint32_t cache_ms;       /* login cache lifetime (default 300000; 0 = no cache) */
	uint32_t fail_limit;     /* failures per user or address before answers slow down (5) */
	uint32_t fail_window_ms; /* the window they are counted over (60000) */
	uint32_t fail_delay_ms;  /* how long a throttled answer is held (1000) */
};

/* A user as stored. Owned by the store; valid until the next change to the store. */
struct tq_user {
	char *name;
	char *secret;    /* SCRAM-SHA-256$... or rabbit_password_hashing_*$<base64> */
	char *tags;      /* comma-separated ("administrator", "monitoring", ...), may be "" */
};

struct tq_users;

/* Defaults for every field of @conf. */
void tq_users_conf_defaults(struct tq_users_conf *conf);

/* An empty store. NULL with errno ENOMEM. */
struct tq_users *tq_users_new(const struct tq_users_conf *conf);
void tq_users_free(struct tq_users *u);

/*
 * Make a SCRAM-SHA-256 secret for @password (@len bytes) with a fresh random salt and
 * @iterations, into @out (NUL-terminated). -ENOSPC when @cap is too small (200 is enough),
 * -EINVAL for iterations 0.
 */
int tq_users_make_secret(const char *password, size_t len, uint32_t iterations, char *out,
			 size_t cap);

/* Does @password match @secret (either form above)? 1 yes, 0 no, -EINVAL bad secret. */
int tq_users_secret_check(const char *secret, const char *password, size_t len);

/*
 * Add user @name with @password (hashed here) and @tags (NULL = ""). -EEXIST if it exists,
 * -EINVAL for an empty or too long name or password.
 */
int tq_users_add(struct tq_users *u, const char *name, const char *password, size_t len,
		 const char *tags);

/*
 * Add or replace user @name from a stored secret (definitions import). @algorithm NULL or
 * "tachyon_scram_sha256": @secret is our form; RabbitMQ's algorithm names as above: @secret
 * is RabbitMQ's password_hash (base64). -EINVAL for an unknown algorithm or a bad secret.
 */
int tq_users_put_hashed(struct tq_users *u, const char *name, const char *secret,
			const char *algorithm, const char *tags);

int tq_users_delete(struct tq_users *u, const char *name);            /* -ENOENT */
int tq_users_set_password(struct tq_users *u, const char *name, const char *password,
			  size_t len);                                    /* -ENOENT */
int tq_users_set_tags(struct tq_users *u, const char *name, const char *tags); /* -ENOENT */

/* The user called @name (@len bytes), or NULL. */
const struct tq_user *tq_users_get(const struct tq_users *u, const char *name, size_t len);

/* How many users; the @i-th in name order (NULL past the end). */
size_t tq_users_count(const struct tq_users *u);
const struct tq_user *tq_users_at(const struct tq_users *u, size_t i);

/* Bumped by every change (add, delete, password, tags, import). */
uint64_t tq_users_gen(const struct tq_users *u);

/*
 * The login check: is (@name, @password) right? @src names the source (an IPv4 address as
 * text, or "" when unknown); @now_ms is the caller's monotonic clock. Returns 1 accepted,
 * 0 refused (unknown user or wrong password: the same answer). *@delay_ms is set to how long
 * the caller must hold the answer back (0 unless throttled). Counts failures, fills the cache.
 */
int tq_users_login(struct tq_users *u, const char *name, size_t name_len, const char *password,
		   size_t len, const char *src, uint64_t now_ms, uint32_t *delay_ms);

/* The store's settings now; change them (live: tachyonctl set auth.*). -EINVAL. */
void tq_users_conf_get(const struct tq_users *u, struct tq_users_conf *out);
int tq_users_conf_set(struct tq_users *u, const struct tq_users_conf *conf);

/* Statistics for tachyonctl and the metrics endpoint. */
struct tq_users_stats {
	uint64_t logins_ok, logins_refused, cache_hits, throttled, hashes;
};
void tq_users_stats(const struct tq_users *u, struct tq_users_stats *out);

/* ---- added for tq_scram, tachyonctl and the tests ------------------------------------ */

#define TQ_USER_TAGS_MAX 1024            /* bytes of tags, without the NUL (-EINVAL past it) */
#define TQ_USERS_ITERATIONS_MAX 10000000 /* PBKDF2 cost accepted in a secret or conf */
#define TQ_USERS_SALT_MAX 64             /* salt bytes accepted in an imported secret */
#define TQ_USERS_CACHE_MAX 4096          /* login cache entries; the oldest gives way */
#define TQ_USERS_FAIL_SLOTS 4096         /* failure counters per table (names, addresses) */

/*
 * PBKDF2-HMAC-SHA256 of @password (@len bytes) with @salt, @iterations (1 to
 * TQ_USERS_ITERATIONS_MAX), @out_len bytes into @out. -EINVAL for bad arguments, -EIO if
 * OpenSSL fails.
 */
int tq_users_pbkdf2(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
		    uint32_t iterations, uint8_t *out, size_t out_len);

/*
 * tq_users_make_secret with a given salt (1 to TQ_USERS_SALT_MAX bytes) instead of a random
 * one: for tests and reproducible secrets. Same returns.
 */
int tq_users_make_secret_salt(const char *password, size_t len, uint32_t iterations,
			      const uint8_t *salt, size_t salt_len, char *out, size_t cap);

/*
 * Base64 (RFC 4648, standard alphabet, padded). Encode: @len bytes into @out, NUL-terminated;
 * returns the text length or -ENOSPC. Decode: strict (no whitespace, padding only at the
 * end, unused bits zero); returns the byte count, -EINVAL for bad text, -ENOSPC when it
 * needs more than @cap bytes.
 */
int tq_users_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap);
int tq_users_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/*
 * What tq_scram needs to run an exchange for user @name (@len bytes): its SCRAM secret
 * (known = 1), or, for an unknown user or one whose secret is a RabbitMQ hash, a salt
 * derived from the name and a per-process key with conf.iterations (known = 0), so that the
 * exchange looks the same. Returns 0, -EINVAL for an empty or too long name, -EIO.
 */
struct tq_users_scram {
	uint32_t iterations;
	size_t salt_len;
	uint8_t salt[TQ_USERS_SALT_MAX];
	uint8_t stored_key[32], server_key[32];
	int known;
};
int tq_users_scram_params(const struct tq_users *u, const char *name, size_t len,
			  struct tq_users_scram *out);

/*
 * The rate limit alone, for a login checked elsewhere: returns how long the answer for
 * (@name, @src) must be held at @now_ms (failures so far), then counts one failure when
 * @failed. tq_users_login does the same around its own check.
 */
uint32_t tq_users_throttle(struct tq_users *u, const char *name, size_t name_len,
			   const char *src, uint64_t now_ms, bool failed);

#endif
