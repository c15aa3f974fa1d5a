/*
 * sign.c - Standard Webhooks secrets and signatures: making a secret,
 * checking one, signing a message under every active secret and verifying
 * a webhook-signature header.  Pure code over OpenSSL's HMAC; delivery.c
 * signs each attempt, api_webhooks.c makes and checks secrets, and
 * linkpulsectl and the unit tests verify.  Nothing here logs: the inputs
 * are secrets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "sign.h"
#include "util.h"

#define V1_PREFIX     "v1,"
#define V1_PREFIX_LEN (sizeof V1_PREFIX - 1)

/* Base64 of the longest key a secret may carry, and its NUL. */
#define KEY_B64_MAX (4 * ((SIGN_KEY_MAX + 2) / 3) + 1)

static int
b64_value(unsigned char c)
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

/*
 * Decodes standard, padded base64 into out (room for max bytes); returns
 * the length, or -1 on anything else: a length that is not a multiple of
 * 4, a character outside the alphabet, '=' other than as the last one or
 * two, or too long a result.  EVP_DecodeBlock is not used because it
 * skips whitespace and counts padding as zero bytes.
 */
static int
b64_decode(const char *s, unsigned char *out, size_t max)
{
	size_t len = strlen(s), pad = 0, n = 0;

	if (len == 0 || len % 4 != 0)
		return -1;
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	if ((len / 4) * 3 - pad > max)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		unsigned int v = 0;

		for (size_t j = 0; j < 4; j++) {
			int d;

			/* Padding only in the last quantum's tail. */
			if (last && j >= 4 - pad)
				d = 0;
			else
				d = b64_value((unsigned char)s[i + j]);
			if (d < 0)
				return -1;
			v = v << 6 | (unsigned int)d;
		}
		out[n++] = (unsigned char)(v >> 16);
		if (!last || pad < 2)
			out[n++] = (unsigned char)(v >> 8);
		if (!last || pad < 1)
			out[n++] = (unsigned char)v;
	}
	return (int)n;
}

/* The key of a secret into key; its length, or -1 if the secret is bad. */
static int
secret_key(const char *secret, unsigned char key[SIGN_KEY_MAX])
{
	size_t plen = strlen(SIGN_SECRET_PREFIX);
	int n;

	if (secret == NULL || strncmp(secret, SIGN_SECRET_PREFIX, plen) != 0)
		return -1;
	n = b64_decode(secret + plen, key, SIGN_KEY_MAX);
	if (n < SIGN_KEY_MIN) {
		OPENSSL_cleanse(key, SIGN_KEY_MAX);
		return -1;
	}
	return n;
}

char *
sign_secret_generate(void)
{
	unsigned char key[SIGN_KEY_BYTES];
	char b64[4 * ((SIGN_KEY_BYTES + 2) / 3) + 1];
	char *secret;

	random_bytes(key, sizeof key);
	EVP_EncodeBlock((unsigned char *)b64, key, (int)sizeof key);
	secret = xprintf("%s%s", SIGN_SECRET_PREFIX, b64);
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(b64, sizeof b64);
	return secret;
}

bool
sign_secret_valid(const char *s)
{
	unsigned char key[SIGN_KEY_MAX];
	int n = secret_key(s, key);

	OPENSSL_cleanse(key, sizeof key);
	return n >= 0;
}

/* "{msg_id}.{timestamp}.{body}", the bytes every signature covers. */
static unsigned char *
signed_content(const char *msg_id, int64_t timestamp, const char *body,
	       size_t len, size_t *outlen)
{
	char head[32];
	size_t idlen = strlen(msg_id);
	int hlen = snprintf(head, sizeof head, ".%lld.", (long long)timestamp);
	unsigned char *p = xmalloc(idlen + (size_t)hlen + len);

	memcpy(p, msg_id, idlen);
	memcpy(p + idlen, head, (size_t)hlen);
	if (len > 0)
		memcpy(p + idlen + (size_t)hlen, body, len);
	*outlen = idlen + (size_t)hlen + len;
	return p;
}

static int
sign_content(const char *secret, const unsigned char *content, size_t clen,
	     char out[SIGN_V1_LEN])
{
	unsigned char key[SIGN_KEY_MAX], md[SHA256_DIGEST_LENGTH];
	unsigned int mdlen = 0;
	int klen = secret_key(secret, key);
	bool ok;

	if (klen < 0)
		return -1;
	ok = HMAC(EVP_sha256(), key, klen, content, clen, md, &mdlen) != NULL &&
	     mdlen == sizeof md;
	OPENSSL_cleanse(key, sizeof key);
	if (!ok)
		return -1;
	memcpy(out, V1_PREFIX, V1_PREFIX_LEN);
	EVP_EncodeBlock((unsigned char *)out + V1_PREFIX_LEN, md, (int)mdlen);
	return 0;
}

int
sign_v1(const char *secret, const char *msg_id, int64_t timestamp,
	const char *body, size_t len, char out[SIGN_V1_LEN])
{
	size_t clen;
	unsigned char *content =
	    signed_content(msg_id, timestamp, body, len, &clen);
	int rc = sign_content(secret, content, clen, out);

	free(content);
	return rc;
}

char *
sign_header(char *const *secrets, int nsecrets, const char *msg_id,
	    int64_t timestamp, const char *body, size_t len)
{
	size_t clen, hlen = 0;
	unsigned char *content =
	    signed_content(msg_id, timestamp, body, len, &clen);
	char *header =
	    xmalloc((size_t)(nsecrets > 0 ? nsecrets : 1) * SIGN_V1_LEN);

	for (int i = 0; i < nsecrets; i++) {
		char sig[SIGN_V1_LEN];

		if (sign_content(secrets[i], content, clen, sig) != 0)
			continue;
		if (hlen > 0)
			header[hlen++] = ' ';
		memcpy(header + hlen, sig, strlen(sig));
		hlen += strlen(sig);
	}
	free(content);
	if (hlen == 0) {
		free(header);
		return NULL;
	}
	header[hlen] = '\0';
	return header;
}

bool
sign_verify(const char *secret, const char *msg_id, int64_t timestamp,
	    const char *body, size_t len, const char *header)
{
	char want[SIGN_V1_LEN];
	size_t wlen;
	bool found = false;

	if (header == NULL ||
	    sign_v1(secret, msg_id, timestamp, body, len, want) != 0)
		return false;
	wlen = strlen(want);
	while (*header != '\0') {
		size_t n = strcspn(header, " ");

		/*
		 * Every entry of the right shape is compared, and the loop
		 * does not stop at a match, so that the time taken says
		 * nothing about which entry (if any) was right.
		 */
		if (n == wlen && strncmp(header, V1_PREFIX, V1_PREFIX_LEN) == 0)
			found |= ct_memeq(header, want, wlen);
		header += n;
		header += strspn(header, " ");
	}
	OPENSSL_cleanse(want, sizeof want);
	return found;
}
