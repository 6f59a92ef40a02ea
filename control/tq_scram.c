/*
 * SCRAM-SHA-256 server side (see tq_scram.h). Message syntax from RFC 5802 section 7:
 *
 *   client-first-message = gs2-header client-first-message-bare
 *   gs2-header = ("n" / "y" / "p=" cb-name) "," ["a=" saslname] ","
 *   client-first-message-bare = ["m=" ... ","] "n=" saslname "," "r=" c-nonce ["," ext]
 *   server-first-message = "r=" c-nonce s-nonce ",s=" salt ",i=" iteration-count
 *   client-final-message = "c=" base64(gs2-header) ",r=" nonce ["," ext] ",p=" proof
 *   server-final-message = "v=" base64(ServerSignature)
 *
 * AuthMessage = client-first-message-bare "," server-first-message ","
 *               client-final-message-without-proof
 * ClientSignature = HMAC(StoredKey, AuthMessage), ClientKey = ClientProof ^ ClientSignature,
 * accepted when SHA-256(ClientKey) == StoredKey; ServerSignature = HMAC(ServerKey, AuthMessage).
 *
 * The parsers read (msg, len) with bounds checked before every byte and keep nothing but
 * what step 2 needs; an unknown user runs every step the same way and fails at the proof.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "tq_scram.h"

#define KEY_LEN 32
#define NONCE_RANDOM 18        /* bytes of server nonce: 24 characters of base64 */
#define TEST_NONCE_MAX 64
#define B64_LEN(n) (((n) + 2) / 3 * 4)

static char test_nonce[TEST_NONCE_MAX + 1]; /* tests only; "" = random */

/* Bytes of the field at @p: up to the next ',' or @end. */
static size_t
field_len(const char *p, const char *end)
{
	const char *c = memchr(p, ',', (size_t)(end - p));

	return c ? (size_t)(c - p) : (size_t)(end - p);
}

/* Does the field start with attribute @a ("n=", "r=", ...)? */
static bool
is_attr(const char *p, size_t len, char a)
{
	return len >= 2 && p[0] == a && p[1] == '=';
}

/* attr-val = ALPHA "=" 1*value-char (an extension we ignore) */
static bool
attr_val(const char *p, size_t len)
{
	return len >= 3 && ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')) &&
	       p[1] == '=';
}

/* printable = %x21-2B / %x2D-7E (no ',', which the field split already removed) */
static bool
printable(const char *p, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return false;
	return true;
}

/* saslname: "=2C" is ',', "=3D" is '=', any other '=' is malformed. Into @out, NUL-ended. */
static int
saslname(const char *p, size_t len, char *out, size_t *out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '=') {
			if (i + 2 >= len)
				return -EINVAL;
			if (p[i + 1] == '2' && p[i + 2] == 'C')
				c = ',';
			else if (p[i + 1] == '3' && p[i + 2] == 'D')
				c = '=';
			else
				return -EINVAL;
			i += 2;
		}
		if (o == TQ_USER_NAME_MAX)
			return -EINVAL;
		out[o++] = c;
	}
	if (!o)
		return -EINVAL;
	out[o] = '\0';
	*out_len = o;
	return 0;
}

int
tq_scram_test_server_nonce(const char *server_nonce)
{
	if (!server_nonce) {
		test_nonce[0] = '\0';
		return 0;
	}
	if (strlen(server_nonce) > TEST_NONCE_MAX ||
	    !printable(server_nonce, strlen(server_nonce)) || strchr(server_nonce, ','))
		return -EINVAL;
	strcpy(test_nonce, server_nonce);
	return 0;
}

void
tq_scram_clear(struct tq_scram *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

static void
out_empty(char *out, size_t cap, size_t *out_len)
{
	if (out_len)
		*out_len = 0;
	if (out && cap)
		out[0] = '\0';
}

int
tq_scram_server_first(struct tq_scram *s, const struct tq_users *u, const uint8_t *msg,
		      size_t len, char *out, size_t cap, size_t *out_len)
{
	char user[TQ_USER_NAME_MAX + 1], authz[TQ_USER_NAME_MAX + 1];
	char snonce[TEST_NONCE_MAX + 1], salt64[B64_LEN(TQ_USERS_SALT_MAX) + 1];
	char first[TQ_SCRAM_MSG_MAX];
	const char *m = (const char *)msg, *end, *p, *bare, *cnonce;
	size_t flen, ulen = 0, alen = 0, gs2_len, cnonce_len, final_len;
	struct tq_users_scram prm;
	uint8_t rnd[NONCE_RANDOM];
	bool has_authz = false;
	int rc, n;

	out_empty(out, cap, out_len);
	if (!s || !u || s->step != 0)
		return -EINVAL;
	if (!msg || !len || len >= TQ_SCRAM_MSG_MAX || memchr(msg, '\0', len))
		return -EINVAL;
	end = m + len;
	p = m;

	/* gs2-cbind-flag "," */
	flen = field_len(p, end);
	if (is_attr(p, flen, 'p'))
		return -ENOTSUP;
	if (flen != 1 || (p[0] != 'n' && p[0] != 'y') || p + flen == end)
		return -EINVAL;
	p += flen + 1;
	/* [authzid] "," */
	flen = field_len(p, end);
	if (p + flen == end)
		return -EINVAL;
	if (flen) {
		if (!is_attr(p, flen, 'a'))
			return -EINVAL;
		rc = saslname(p + 2, flen - 2, authz, &alen);
		if (rc)
			return rc;
		has_authz = true;
	}
	p += flen + 1;
	gs2_len = (size_t)(p - m);
	bare = p;

	/* [reserved-mext ","] username "," */
	flen = field_len(p, end);
	if (is_attr(p, flen, 'm'))
		return -ENOTSUP; /* RFC 5802: a mandatory extension we do not know */
	if (!is_attr(p, flen, 'n') || p + flen == end)
		return -EINVAL;
	rc = saslname(p + 2, flen - 2, user, &ulen);
	if (rc)
		return rc;
	p += flen + 1;
	/* nonce */
	flen = field_len(p, end);
	if (!is_attr(p, flen, 'r') || !printable(p + 2, flen - 2))
		return -EINVAL;
	cnonce = p + 2;
	cnonce_len = flen - 2;
	p += flen;
	/* ["," extensions] */
	while (p < end) {
		p++; /* the ',' */
		flen = field_len(p, end);
		if (!attr_val(p, flen))
			return -EINVAL;
		p += flen;
	}
	if (has_authz && (alen != ulen || memcmp(authz, user, ulen)))
		return -ENOTSUP; /* acting as someone else */

	rc = tq_users_scram_params(u, user, ulen, &prm);
	if (rc)
		return rc;
	if (test_nonce[0]) {
		strcpy(snonce, test_nonce);
	} else {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return -EIO;
		tq_users_b64_encode(rnd, sizeof(rnd), snonce, sizeof(snonce));
	}
	tq_users_b64_encode(prm.salt, prm.salt_len, salt64, sizeof(salt64));
	n = snprintf(first, sizeof(first), "r=%.*s%s,s=%s,i=%u", (int)cnonce_len, cnonce, snonce,
		     salt64, prm.iterations);
	/* the client's answer must fit too: "c=" gs2 ",r=" nonce ",p=" proof */
	final_len = 2 + B64_LEN(gs2_len) + 3 + cnonce_len + strlen(snonce) + 3 + B64_LEN(KEY_LEN);
	if (n < 0 || (size_t)n >= sizeof(first) || final_len >= TQ_SCRAM_MSG_MAX) {
		rc = -EINVAL; /* a client nonce that long is not an honest one */
		goto out;
	}
	if (!out || (size_t)n >= cap) {
		rc = -ENOSPC;
		goto out;
	}

	memcpy(s->user, user, ulen + 1);
	memcpy(s->client_first_bare, bare, (size_t)(end - bare));
	s->client_first_bare[end - bare] = '\0';
	memcpy(s->server_first, first, (size_t)n + 1);
	snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)cnonce_len, cnonce, snonce);
	memcpy(s->gs2_header, m, gs2_len);
	s->gs2_header[gs2_len] = '\0';
	memcpy(s->stored_key, prm.stored_key, KEY_LEN);
	memcpy(s->server_key, prm.server_key, KEY_LEN);
	s->known = prm.known;
	s->step = 1;
	memcpy(out, first, (size_t)n + 1);
	if (out_len)
		*out_len = (size_t)n;
	rc = 0;
out:
	OPENSSL_cleanse(&prm, sizeof(prm));
	return rc;
}

/* Step 2 proper, once the exchange is marked done. */
static int
final_check(struct tq_scram *s, const char *m, size_t len, char *out, size_t cap,
	    size_t *out_len)
{
	uint8_t cbind[TQ_SCRAM_MSG_MAX], proof[KEY_LEN], sig[KEY_LEN], key[KEY_LEN];
	char auth[3 * TQ_SCRAM_MSG_MAX];
	const char *end = m + len, *p = m;
	bool cb_ok, nonce_ok;
	unsigned int olen = KEY_LEN;
	size_t flen, auth_len;
	int n, ok = 0;

	if (!m || !len || len >= TQ_SCRAM_MSG_MAX || memchr(m, '\0', len))
		return -EINVAL;
	/* channel-binding "," */
	flen = field_len(p, end);
	if (!is_attr(p, flen, 'c') || p + flen == end)
		return -EINVAL;
	n = tq_users_b64_decode(p + 2, flen - 2, cbind, sizeof(cbind));
	if (n < 0)
		return -EINVAL;
	cb_ok = (size_t)n == strlen(s->gs2_header) && !memcmp(cbind, s->gs2_header, (size_t)n);
	p += flen + 1;
	/* nonce */
	flen = field_len(p, end);
	if (!is_attr(p, flen, 'r') || p + flen == end)
		return -EINVAL;
	nonce_ok = flen - 2 == strlen(s->nonce) && !memcmp(p + 2, s->nonce, flen - 2);
	p += flen;
	/* ["," extensions] "," proof: the proof is the last attribute */
	for (;;) {
		p++; /* the ',' */
		flen = field_len(p, end);
		if (p + flen == end)
			break;
		if (!attr_val(p, flen))
			return -EINVAL;
		p += flen;
	}
	if (!is_attr(p, flen, 'p') ||
	    tq_users_b64_decode(p + 2, flen - 2, proof, sizeof(proof)) != KEY_LEN)
		return -EINVAL;

	auth_len = (size_t)snprintf(auth, sizeof(auth), "%s,%s,%.*s", s->client_first_bare,
				    s->server_first, (int)(p - 1 - m), m);
	if (auth_len >= sizeof(auth))
		return -EINVAL; /* cannot happen: each part is under TQ_SCRAM_MSG_MAX */
	if (!HMAC(EVP_sha256(), s->stored_key, KEY_LEN, (const uint8_t *)auth, auth_len, sig,
		  &olen))
		return -EIO;
	for (size_t i = 0; i < KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	if (!EVP_Digest(key, KEY_LEN, sig, NULL, EVP_sha256(), NULL))
		return -EIO;
	/* the same work for every outcome; unknown users carry made-up keys */
	ok = !CRYPTO_memcmp(sig, s->stored_key, KEY_LEN) && s->known && cb_ok && nonce_ok;
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok)
		return 0;
	if (!HMAC(EVP_sha256(), s->server_key, KEY_LEN, (const uint8_t *)auth, auth_len, sig,
		  &olen))
		return -EIO;
	memcpy(out, "v=", 2);
	n = tq_users_b64_encode(sig, KEY_LEN, out + 2, cap - 2);
	if (n < 0)
		return n;
	if (out_len)
		*out_len = 2 + (size_t)n;
	return 1;
}

int
tq_scram_server_final(struct tq_scram *s, const uint8_t *msg, size_t len, char *out,
		      size_t cap, size_t *out_len)
{
	int rc;

	out_empty(out, cap, out_len);
	if (!s || s->step != 1)
		return -EINVAL;
	if (!out || cap < 3 + B64_LEN(KEY_LEN))
		return -ENOSPC;
	s->step = 2; /* one answer per exchange, whatever it is */
	rc = final_check(s, (const char *)msg, len, out, cap, out_len);
	if (rc != 1)
		out_empty(out, cap, out_len);
	OPENSSL_cleanse(s->stored_key, sizeof(s->stored_key));
	OPENSSL_cleanse(s->server_key, sizeof(s->server_key));
	return rc;
}
