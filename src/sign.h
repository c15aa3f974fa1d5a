/*
 * sign.h - Standard Webhooks signatures.  A secret is "whsec_" followed by
 * the base64 of its key (at least 24 bytes; linkpulse makes 32).  What is
 * signed is "{msg_id}.{timestamp}.{body}" with HMAC-SHA256; a signature is
 * "v1," and the base64 of the digest; the webhook-signature header holds
 * one per active secret, separated by spaces.
 */
#ifndef LP_SIGN_H
#define LP_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIGN_SECRET_PREFIX "whsec_"
#define SIGN_KEY_MIN	   24 /* bytes of key a secret must carry */
#define SIGN_KEY_BYTES	   32 /* what sign_secret_generate makes */
#define SIGN_KEY_MAX	   64
/* "v1," + base64 of 32 bytes (44) + NUL */
#define SIGN_V1_LEN 48

/* A new random secret; the caller frees it. */
char *sign_secret_generate(void);
/* Whether s is "whsec_" + base64 decoding to SIGN_KEY_MIN..SIGN_KEY_MAX
 * bytes. */
bool sign_secret_valid(const char *s);

/*
 * Writes "v1,<base64>" for one secret into out.  Returns 0, or -1 if the
 * secret is not valid.
 */
int sign_v1(const char *secret, const char *msg_id, int64_t timestamp,
	    const char *body, size_t len, char out[SIGN_V1_LEN]);
/*
 * The webhook-signature header for every valid secret of the list
 * (invalid ones are skipped), space-separated; NULL if none is valid.
 * The caller frees it.
 */
char *sign_header(char *const *secrets, int nsecrets, const char *msg_id,
		  int64_t timestamp, const char *body, size_t len);
/*
 * Whether header holds a "v1," entry that is the signature of the message
 * under secret (entries of other versions, or malformed, are skipped).
 * Compares in constant time.  For tests and linkpulsectl.
 */
bool sign_verify(const char *secret, const char *msg_id, int64_t timestamp,
		 const char *body, size_t len, const char *header);

#endif
