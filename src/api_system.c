/*
 * api_system.c - routes about the daemon and the caller's workspace:
 * liveness, readiness, metrics, the token's workspace and its tokens.
 * Called through the route table; calls db.c and metrics.c.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "schema.h"

static struct db_listen *listener;

static void
healthz(struct http_ctx *ctx)
{
	http_reply_json(ctx, 200, json_pack("{s:s}", "status", "ok"));
}

static void
readyz_done(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;
	const char *db = "ok", *schema = "ok";
	const char *lst = db_listen_connected(listener) ? "ok" : "disconnected";
	bool ready;

	if (error != NULL) {
		db = "unreachable";
		schema = "unknown";
	} else if (atoi(PQgetvalue(res, 0, 0)) < schema_latest_version()) {
		schema = "behind: run 'linkpulsectl migrate'";
	}
	ready = strcmp(db, "ok") == 0 && strcmp(schema, "ok") == 0 &&
		strcmp(lst, "ok") == 0;
	http_reply_json(ctx, ready ? 200 : 503,
			json_pack("{s:s, s:{s:s, s:s, s:s}}", "status",
				  ready ? "ok" : "unavailable", "checks",
				  "database", db, "schema", schema, "listener",
				  lst));
}

static void
readyz(struct http_ctx *ctx)
{
	/* A short timeout: a readiness probe must answer quickly. */
	db_query_timeout(
	    http_db(ctx), 2000,
	    "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL,
	    readyz_done, ctx);
}

static void
metrics(struct http_ctx *ctx)
{
	struct evbuffer *buf = evbuffer_new();

	metrics_render(buf);
	http_reply_buf(ctx, 200, "text/plain; version=0.0.4; charset=utf-8",
		       buf);
	evbuffer_free(buf);
}

static void
workspace_done(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if (PQntuples(res) != 1) {
		http_problem(ctx, 404, NULL, "the workspace no longer exists");
		return;
	}
	http_reply_json(
	    ctx, 200,
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "id",
		      PQgetvalue(res, 0, 0), "slug", PQgetvalue(res, 0, 1),
		      "name", PQgetvalue(res, 0, 2), "plan",
		      PQgetvalue(res, 0, 3), "timezone", PQgetvalue(res, 0, 4),
		      "retentionDays", atoi(PQgetvalue(res, 0, 5)), "createdAt",
		      PQgetvalue(res, 0, 6)));
}

static void
workspace(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id};

	db_query(http_db(ctx),
		 "SELECT id, slug, name, plan, timezone, retention_days,"
		 " to_char(created_at AT TIME ZONE 'UTC',"
		 " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
		 " FROM workspaces WHERE id = $1",
		 1, params, workspace_done, ctx);
}

/* Token metadata as the Linkbreakers WorkspaceToken, plus our fields. */
#define SQL_TOKEN_COLUMNS                                                      \
	"SELECT id, workspace_id, name, environment,"                          \
	" array_to_json(scopes)::text, prefix, created_by,"                    \
	" to_char(created_at AT TIME ZONE 'UTC',"                              \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"                               \
	" to_char(expires_at AT TIME ZONE 'UTC',"                              \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"                               \
	" to_char(revoked_at AT TIME ZONE 'UTC',"                              \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"                               \
	" to_char(last_used_at AT TIME ZONE 'UTC',"                            \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"                                \
	" FROM api_tokens WHERE workspace_id = $1"

static json_t *
nullable(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	return json_string(PQgetvalue(res, row, col));
}

static json_t *
token_json(PGresult *res, int i)
{
	json_t *scopes = json_loads(PQgetvalue(res, i, 4), 0, NULL);

	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:o,"
	    " s:o, s:o}",
	    "id", PQgetvalue(res, i, 0), "workspaceId", PQgetvalue(res, i, 1),
	    "name", PQgetvalue(res, i, 2), "keyType",
	    "WORKSPACE_TOKEN_KEY_TYPE_SECRET", "environment",
	    PQgetvalue(res, i, 3), "scopes", scopes ? scopes : json_array(),
	    "prefix", PQgetvalue(res, i, 5), "createdBy", nullable(res, i, 6),
	    "createdAt", PQgetvalue(res, i, 7), "expiresAt",
	    nullable(res, i, 8), "revokedAt", nullable(res, i, 9), "lastUsedAt",
	    nullable(res, i, 10));
}

static void
tokens_done(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;
	json_t *list;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	list = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, token_json(res, i));
	http_reply_json(ctx, 200, json_pack("{s:o}", "tokens", list));
}

static void
tokens_list(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id};

	db_query(http_db(ctx),
		 SQL_TOKEN_COLUMNS
		 " AND revoked_at IS NULL ORDER BY created_at",
		 1, params, tokens_done, ctx);
}

static void
token_get_done(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if (PQntuples(res) != 1) {
		http_problem(ctx, 404, "id", "no token %s in this workspace",
			     http_param(ctx, "id"));
		return;
	}
	http_reply_json(ctx, 200,
			json_pack("{s:o}", "token", token_json(res, 0)));
}

static void
token_get(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id,
				http_param(ctx, "id")};

	if (!uuid_valid(params[1])) {
		http_problem(ctx, 400, "id", "'%s' is not a token id (a UUID)",
			     params[1]);
		return;
	}
	db_query(http_db(ctx), SQL_TOKEN_COLUMNS " AND id = $2", 2, params,
		 token_get_done, ctx);
}

static void
token_delete_done(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if (PQntuples(res) != 1) {
		http_problem(ctx, 404, "id",
			     "no active token %s in this "
			     "workspace",
			     http_param(ctx, "id"));
		return;
	}
	log_info("auth: token %s of workspace %s revoked through the API",
		 http_param(ctx, "id"), http_auth(ctx)->workspace_slug);
	http_reply_json(ctx, 200, json_object());
}

static void
token_delete(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id,
				http_param(ctx, "id")};

	if (!uuid_valid(params[1])) {
		http_problem(ctx, 400, "id", "'%s' is not a token id (a UUID)",
			     params[1]);
		return;
	}
	db_query(http_db(ctx),
		 "UPDATE api_tokens SET revoked_at = now()"
		 " WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL"
		 " RETURNING id",
		 2, params, token_delete_done, ctx);
}

static const struct route routes[] = {
    {"GET", "/healthz", ROUTE_PUBLIC, healthz},
    {"GET", "/readyz", ROUTE_PUBLIC, readyz},
    {"GET", "/metrics", ROUTE_PUBLIC, metrics},
    {"GET", "/v1/workspace", ROUTE_ANY_TOKEN, workspace},
    {"GET", "/v1/workspace-tokens", "admin", tokens_list},
    {"GET", "/v1/workspace-tokens/{id}", "admin", token_get},
    {"DELETE", "/v1/workspace-tokens/{id}", "admin", token_delete},
};

void
api_system_init(struct http_server *srv, struct db_listen *l)
{
	listener = l;
	http_add_routes(srv, routes, nitems(routes));
}
