/* Unit tests for auth.c: token shape, hashing, environments and scopes. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "ut.h"

static void
test_generate_shape(void)
{
	char hash[SHA256_HEX_LEN + 1], again[SHA256_HEX_LEN + 1];
	char *t = token_generate(TOKEN_ENV_PRODUCTION, hash);

	CHECK(strncmp(t, "lp_live_", 8) == 0);
	CHECK(strlen(t) == 8 + TOKEN_RANDOM_LEN);
	CHECK(token_well_formed(t));
	token_hash(t, again);
	CHECK_STR(hash, again);
	CHECK(strlen(hash) == SHA256_HEX_LEN);
	free(t);
}

static void
test_prefixes(void)
{
	char hash[SHA256_HEX_LEN + 1];
	char *dev = token_generate(TOKEN_ENV_DEVELOPMENT, hash);
	char *anl = token_generate(TOKEN_ENV_ANALYTICS, hash);

	CHECK(strncmp(dev, "lp_test_", 8) == 0);
	CHECK(strncmp(anl, "lp_anl_", 7) == 0);
	CHECK(token_well_formed(dev) && token_well_formed(anl));
	free(dev);
	free(anl);
}

static void
test_unique(void)
{
	char h1[SHA256_HEX_LEN + 1], h2[SHA256_HEX_LEN + 1];
	char *a = token_generate(TOKEN_ENV_PRODUCTION, h1);
	char *b = token_generate(TOKEN_ENV_PRODUCTION, h2);

	CHECK(strcmp(a, b) != 0);
	CHECK(strcmp(h1, h2) != 0);
	free(a);
	free(b);
}

static void
test_malformed(void)
{
	CHECK(!token_well_formed(""));
	CHECK(!token_well_formed("lp_live_"));
	CHECK(!token_well_formed("lp_live_short"));
	CHECK(!token_well_formed(
	    "xx_live_0123456789012345678901234567890123456789"));
	CHECK(!token_well_formed(
	    "lp_live_012345678901234567890123456789012345678!"));
	CHECK(!token_well_formed(
	    "lp_live_01234567890123456789012345678901234567890"));
	CHECK(token_well_formed(
	    "lp_live_0123456789012345678901234567890123456789"));
}

static void
test_known_hash(void)
{
	char hash[SHA256_HEX_LEN + 1];

	/* The stored digest is the SHA-256 of the whole token, prefix included.
	 */
	token_hash("abc", hash);
	CHECK_STR(
	    hash,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_envs(void)
{
	CHECK(token_env_parse("production") == TOKEN_ENV_PRODUCTION);
	CHECK(token_env_parse("development") == TOKEN_ENV_DEVELOPMENT);
	CHECK(token_env_parse("analytics") == TOKEN_ENV_ANALYTICS);
	CHECK(token_env_parse("staging") == -1);
	CHECK_STR(token_env_name(TOKEN_ENV_ANALYTICS), "analytics");
}

static void
test_scopes(void)
{
	char *admin[] = {"admin"};
	char *rw[] = {"events:write", "analytics:read"};

	CHECK(scope_known("events:write"));
	CHECK(!scope_known("events:delete"));
	CHECK(scope_granted(admin, 1, "webhooks:write"));
	CHECK(scope_granted(rw, 2, "events:write"));
	CHECK(scope_granted(rw, 2, "events:read"));
	CHECK(scope_granted(rw, 2, "analytics:read"));
	CHECK(!scope_granted(rw, 2, "analytics:write"));
	CHECK(!scope_granted(rw, 2, "webhooks:read"));
	CHECK(!scope_granted(rw, 2, "admin"));
	CHECK(scope_granted(rw, 2, ""));
	CHECK(scope_granted(NULL, 0, ""));
	CHECK(!scope_granted(NULL, 0, "events:read"));
}

static void
test_scope_prefix_confusion(void)
{
	char *g[] = {"event:write"};
	char *h[] = {"events:writer"};

	/* "event:write" must not grant "events:read", nor the reverse. */
	CHECK(!scope_granted(g, 1, "events:read"));
	CHECK(!scope_granted(h, 1, "events:read"));
}

UT_MAIN("auth", UT(test_generate_shape), UT(test_prefixes), UT(test_unique),
	UT(test_malformed), UT(test_known_hash), UT(test_envs), UT(test_scopes),
	UT(test_scope_prefix_confusion))
