/*
 * auth.h - API tokens.  A token is an environment prefix ("lp_live_",
 * "lp_test_", "lp_anl_") and 40 random base62 characters; only its SHA-256
 * is stored.  A request's bearer token is hashed, looked up, compared in
 * constant time, and resolves to a workspace, an environment and scopes.
 */
#ifndef LP_AUTH_H
#define LP_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

enum token_env {
	TOKEN_ENV_DEVELOPMENT,
	TOKEN_ENV_PRODUCTION,
	TOKEN_ENV_ANALYTICS
};

#define TOKEN_RANDOM_LEN 40
#define TOKEN_DISPLAY_PREFIX_LEN                                               \
	12 /* what is stored in clear to tell tokens apart */

const char *token_env_name(enum token_env);
int token_env_parse(const char *); /* -1 if unknown */
const char *token_env_prefix(enum token_env);

/* A new random token for env; the caller frees it.  hash gets its digest. */
char *token_generate(enum token_env, char hash[SHA256_HEX_LEN + 1]);
/* Checks the shape of a presented token: a known prefix and base62 tail. */
bool token_well_formed(const char *);
void token_hash(const char *token, char hash[SHA256_HEX_LEN + 1]);

/*
 * Scopes: "analytics:read", "events:read", "events:write", "webhooks:read",
 * "webhooks:write", "alerts:read", "alerts:write", "admin".  "admin"
 * grants every scope; "X:write" grants "X:read".
 */
extern const char *const token_scopes[];
bool scope_known(const char *);
bool scope_granted(char *const *granted, int ngranted, const char *required);

/* What an authenticated request carries. */
struct auth_ctx {
	char *token_id;
	char *workspace_id;
	char *workspace_slug;
	enum token_env env;
	char **scopes;
	int nscopes;
};
void auth_ctx_free(struct auth_ctx *);

#endif
