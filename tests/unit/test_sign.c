/*
 * Unit tests for sign.c: the Standard Webhooks test vectors, rotation
 * headers, secret generation and validation.
 */
#include <stdlib.h>
#include <string.h>

#include "sign.h"
#include "util.h"
#include "ut.h"

static const char vector_secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char vector1_id[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const char vector1_body[] = "{\"test\": 2432232314}";
#define VECTOR1_TS 1614265330
static const char vector2_id[] = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
static const char vector2_body[] =
    "{\"type\":\"contact.created\",\"timestamp\":\"2022-11-03T20:26:10."
    "344522Z\",\"data\":{\"id\":\"1f81eb52-5198-4599-803e-771906343485\"}}";
#define VECTOR2_TS 1674087231

static bool
verify1(const char *secret, const char *header)
{
	return sign_verify(secret, vector1_id, VECTOR1_TS, vector1_body,
			   strlen(vector1_body), header);
}

static void
test_vector1(void)
{
	char sig[SIGN_V1_LEN];

	CHECK(sign_v1(vector_secret, vector1_id, VECTOR1_TS, vector1_body,
		      strlen(vector1_body), sig) == 0);
	CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	CHECK(verify1(vector_secret,
		      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
	/* One character off in the last place must not verify. */
	CHECK(!verify1(vector_secret,
		       "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="));
}

static void
test_vector2(void)
{
	char sig[SIGN_V1_LEN];

	CHECK(sign_v1(vector_secret, vector2_id, VECTOR2_TS, vector2_body,
		      strlen(vector2_body), sig) == 0);
	CHECK_STR(sig, "v1,ARw42xaAApl/nxRo+iPGYwSaMQaOwMo2eyH5JBRA+bQ=");
	CHECK(sign_verify(vector_secret, vector2_id, VECTOR2_TS, vector2_body,
			  strlen(vector2_body),
			  "v1,ARw42xaAApl/nxRo+iPGYwSaMQaOwMo2eyH5JBRA+bQ="));
}

static void
test_vector3_mixed_header(void)
{
	const char *good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
	char *header = xprintf(
	    "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
	    "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
	    "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= garbage v1, v1 "
	    " %s v1,not-base64",
	    good);

	CHECK(verify1(vector_secret, header));
	free(header);
	/* Right signature under a version other than v1: skipped. */
	CHECK(!verify1(vector_secret,
		       "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
	CHECK(!verify1(vector_secret, ""));
	CHECK(!verify1(vector_secret, "   "));
	CHECK(!verify1(vector_secret, NULL));
	/* The wrong message, timestamp or secret must not verify. */
	CHECK(!sign_verify(vector_secret, vector1_id, VECTOR1_TS + 1,
			   vector1_body, strlen(vector1_body), good));
	CHECK(!sign_verify(vector_secret, vector2_id, VECTOR1_TS, vector1_body,
			   strlen(vector1_body), good));
	CHECK(!sign_verify(vector_secret, vector1_id, VECTOR1_TS, vector1_body,
			   strlen(vector1_body) - 1, good));
}

static void
test_rotation_header(void)
{
	char *other = sign_secret_generate();
	char *secrets[] = {(char *)vector_secret, other};
	char *header = sign_header(secrets, 2, vector1_id, VECTOR1_TS,
				   vector1_body, strlen(vector1_body));
	char *third = sign_secret_generate();

	CHECK(header != NULL);
	CHECK(header != NULL && strchr(header, ' ') != NULL);
	CHECK(header != NULL &&
	      strncmp(header,
		      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,",
		      51) == 0);
	CHECK(verify1(vector_secret, header));
	CHECK(verify1(other, header));
	CHECK(!verify1(third, header));
	free(header);
	free(other);
	free(third);
}

static void
test_generate(void)
{
	char *a = sign_secret_generate(), *b = sign_secret_generate();
	char sig[SIGN_V1_LEN];

	CHECK(strncmp(a, "whsec_", 6) == 0);
	/* 32 bytes are 44 base64 characters, one of them padding. */
	CHECK(strlen(a) == 6 + 44);
	CHECK(a[strlen(a) - 1] == '=');
	CHECK(sign_secret_valid(a));
	CHECK(sign_secret_valid(b));
	CHECK(strcmp(a, b) != 0);
	CHECK(sign_v1(a, "msg_x", 1700000000, "{}", 2, sig) == 0);
	CHECK(strlen(sig) == SIGN_V1_LEN - 1);
	CHECK(sign_verify(a, "msg_x", 1700000000, "{}", 2, sig));
	CHECK(!sign_verify(b, "msg_x", 1700000000, "{}", 2, sig));
	free(a);
	free(b);
}

static void
test_invalid_secrets(void)
{
	char sig[SIGN_V1_LEN];

	CHECK(sign_secret_valid(vector_secret));
	/* 24 bytes is the minimum, 64 the maximum. */
	CHECK(sign_secret_valid("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	CHECK(!sign_secret_valid("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));
	CHECK(
	    sign_secret_valid("whsec_"
			      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));
	CHECK(!sign_secret_valid("whsec_"
				 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
				 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
				 "AAAA"));
	/* No prefix, or another one. */
	CHECK(!sign_secret_valid("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
	CHECK(!sign_secret_valid("whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
	CHECK(!sign_secret_valid("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
	/* Bad base64: alphabet, length, padding, whitespace, URL-safe. */
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!"));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwA"));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La=aSw"));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa=w"));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw===="));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw"));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw"));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_"));
	/* Too short a key: 18 and 23 bytes. */
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZI"));
	CHECK(!sign_secret_valid("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS="));
	CHECK(!sign_secret_valid("whsec_"));
	CHECK(!sign_secret_valid(""));
	CHECK(!sign_secret_valid(NULL));
	CHECK(sign_v1("whsec_nope", "msg_x", 1, "{}", 2, sig) == -1);
	CHECK(!sign_verify("whsec_nope", "msg_x", 1, "{}", 2, "v1,AAAA"));
}

static void
test_header_skips_invalid(void)
{
	char *secrets[] = {"whsec_bad", (char *)vector_secret, "nope"};
	char *bad[] = {"whsec_bad", "nope"};
	char *header = sign_header(secrets, 3, vector1_id, VECTOR1_TS,
				   vector1_body, strlen(vector1_body));

	CHECK_STR(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	free(header);
	CHECK(sign_header(bad, 2, vector1_id, VECTOR1_TS, vector1_body,
			  strlen(vector1_body)) == NULL);
	CHECK(sign_header(NULL, 0, vector1_id, VECTOR1_TS, vector1_body,
			  strlen(vector1_body)) == NULL);
}

static void
test_empty_body(void)
{
	char sig[SIGN_V1_LEN];

	/* An empty body still signs "{id}.{ts}." */
	CHECK(sign_v1(vector_secret, "msg_x", 0, "", 0, sig) == 0);
	CHECK(sign_verify(vector_secret, "msg_x", 0, "", 0, sig));
	CHECK(!sign_verify(vector_secret, "msg_x", 0, "x", 1, sig));
}

UT_MAIN("sign", UT(test_vector1), UT(test_vector2),
	UT(test_vector3_mixed_header), UT(test_rotation_header),
	UT(test_generate), UT(test_invalid_secrets),
	UT(test_header_skips_invalid), UT(test_empty_body))
