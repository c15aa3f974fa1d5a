/*
 * auth.c - API token format, hashing and scopes: the pure half of
 * authentication.  http.c resolves a request's token against api_tokens
 * with these helpers; linkpulsectl creates tokens with them.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static const struct {
	const char *name;
	const char *prefix;
} envs[] = {
    [TOKEN_ENV_DEVELOPMENT] = {"development", "lp_test_"},
    [TOKEN_ENV_PRODUCTION] = {"production", "lp_live_"},
    [TOKEN_ENV_ANALYTICS] = {"analytics", "lp_anl_"},
};

const char *const token_scopes[] = {
    "analytics:read", "events:read",	"events:write",
    "webhooks:read",  "webhooks:write", "alerts:read",
    "alerts:write",   "admin",		NULL,
};

const char *
token_env_name(enum token_env env)
{
	return envs[env].name;
}

const char *
token_env_prefix(enum token_env env)
{
	return envs[env].prefix;
}

int
token_env_parse(const char *s)
{
	for (size_t i = 0; i < nitems(envs); i++) {
		if (strcmp(s, envs[i].name) == 0)
			return (int)i;
	}
	return -1;
}

void
token_hash(const char *token, char hash[SHA256_HEX_LEN + 1])
{
	sha256_hex(token, strlen(token), hash);
}

char *
token_generate(enum token_env env, char hash[SHA256_HEX_LEN + 1])
{
	char *tail = random_base62(TOKEN_RANDOM_LEN);
	char *token = xprintf("%s%s", envs[env].prefix, tail);

	free(tail);
	token_hash(token, hash);
	return token;
}

bool
token_well_formed(const char *token)
{
	for (size_t i = 0; i < nitems(envs); i++) {
		size_t plen = strlen(envs[i].prefix);
		const char *tail = token + plen;

		if (strncmp(token, envs[i].prefix, plen) != 0)
			continue;
		if (strlen(tail) != TOKEN_RANDOM_LEN)
			return false;
		for (; *tail != '\0'; tail++) {
			char c = *tail;

			if (!((c >= '0' && c <= '9') ||
			      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
				return false;
		}
		return true;
	}
	return false;
}

bool
scope_known(const char *s)
{
	for (size_t i = 0; token_scopes[i] != NULL; i++) {
		if (strcmp(s, token_scopes[i]) == 0)
			return true;
	}
	return false;
}

bool
scope_granted(char *const *granted, int ngranted, const char *required)
{
	size_t rlen;
	const char *colon;

	if (required == NULL || *required == '\0')
		return true;
	colon = strchr(required, ':');
	rlen = colon ? (size_t)(colon - required) : strlen(required);
	for (int i = 0; i < ngranted; i++) {
		const char *g = granted[i];

		if (strcmp(g, "admin") == 0 || strcmp(g, required) == 0)
			return true;
		/* "X:write" also grants "X:read". */
		if (colon != NULL && strcmp(colon, ":read") == 0 &&
		    strncmp(g, required, rlen + 1) == 0 &&
		    strcmp(g + rlen, ":write") == 0)
			return true;
	}
	return false;
}

void
auth_ctx_free(struct auth_ctx *a)
{
	if (a == NULL)
		return;
	free(a->token_id);
	free(a->workspace_id);
	free(a->workspace_slug);
	for (int i = 0; i < a->nscopes; i++)
		free(a->scopes[i]);
	free(a->scopes);
	memset(a, 0, sizeof *a);
}
