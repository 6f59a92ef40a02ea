/*
 * SCRAM-SHA-256 server side (RFC 5802, RFC 7677), for MQTT 5 enhanced authentication
 * (Authentication Method "SCRAM-SHA-256"): CONNECT carries client-first-message, the server
 * answers AUTH (0x18, continue) with server-first-message, the client's AUTH carries
 * client-final-message, the CONNACK carries server-final-message ("v=...").
 *
 * No channel binding ("n,," and "y,," GS2 headers are accepted, "p=" is refused), no
 * authzid other than empty or the user name. An unknown user gets a made-up salt and
 * iteration count derived from the name and a per-process key, so the exchange does not tell
 * whether the user exists; it then fails at the proof like a wrong password.
 *
 * One struct tq_scram per exchange in progress, owned by the caller (the control thread
 * keeps them by request id). Control thread only (it reads the user store).
 */
#ifndef TQ_SCRAM_H
#define TQ_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#include "tq_users.h"

#define TQ_SCRAM_MSG_MAX 512 /* longest message we accept or build */

struct tq_scram {
	int step;                        /* 0: new, 1: server-first sent, 2: done */
	char user[TQ_USER_NAME_MAX + 1]; /* SASLprep is not applied: names are compared as bytes */
	char client_first_bare[TQ_SCRAM_MSG_MAX];
	char server_first[TQ_SCRAM_MSG_MAX];
	char nonce[TQ_SCRAM_MSG_MAX];    /* client nonce + server nonce */
	uint8_t stored_key[32], server_key[32];
	int known;                       /* the user exists and has a SCRAM secret */
	char gs2_header[TQ_SCRAM_MSG_MAX]; /* "n,," etc.: what c= must carry in step 2 */
};

/*
 * Step 1: read client-first-message (@msg, @len bytes; not NUL-terminated), look the user up
 * in @u, write server-first-message into @out (NUL-terminated; *@out_len its length).
 * Returns 0, or -EINVAL for a malformed message, -ENOTSUP for channel binding.
 */
int tq_scram_server_first(struct tq_scram *s, const struct tq_users *u, const uint8_t *msg,
			  size_t len, char *out, size_t cap, size_t *out_len);

/*
 * Step 2: read client-final-message, check the nonce and the proof. Returns 1 authenticated
 * (@out: server-final-message "v=<ServerSignature>"), 0 refused (@out empty), -EINVAL for a
 * malformed message or a call out of order.
 */
int tq_scram_server_final(struct tq_scram *s, const uint8_t *msg, size_t len, char *out,
			  size_t cap, size_t *out_len);

/* ---- added -------------------------------------------------------------------------- */

/*
 * Notes on the returns above. Step 1: -ENOTSUP also for a mandatory extension ("m=") and for
 * an authzid other than the user; -ENOSPC when @cap is too small. Step 2: a c= or r= that
 * does not match step 1 is refused (0), not malformed; -ENOSPC when @cap is under 48. Step 2
 * ends the exchange whatever it returns (a second call is out of order); it wipes the keys
 * but keeps @user for the caller.
 */

/* Wipe @s (keys included) so it can start a new exchange. */
void tq_scram_clear(struct tq_scram *s);

/*
 * Tests only: every later exchange uses @server_nonce (printable, no ',', at most 64 bytes)
 * instead of 18 random bytes in base64, so RFC 7677's example can be replayed. NULL goes
 * back to random. Returns 0 or -EINVAL.
 */
int tq_scram_test_server_nonce(const char *server_nonce);

#endif
