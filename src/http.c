/*
 * http.c - the HTTP server behind http.h.  Owns the evhttp instances (one
 * for plain listeners, one for TLS ones, sharing the same routes), the TLS
 * context, request contexts, routing, authentication of bearer tokens and
 * the reply helpers.  Calls db.c for token look-ups and metrics.c for
 * request counts; called by main.c and by the api_*.c handlers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http.h"
#include "log.h"
#include "metrics.h"

#define MAX_PARAMS 8
#define MAX_BOUND  16

struct http_server {
	struct event_base *base;
	struct db_pool *db;
	struct evhttp *plain;
	struct evhttp *tls;
	SSL_CTX *ssl_ctx;
	struct evhttp_bound_socket *bound[MAX_BOUND];
	struct evhttp *bound_owner[MAX_BOUND];
	int nbound;
	struct route *routes;
	size_t nroutes;
	struct http_limits limits;
	int inflight;
	bool draining;
	void (*drain_done)(void *);
	void *drain_arg;
	struct event *drain_ev;
};

struct http_ctx {
	struct http_server *srv;
	struct evhttp_request *req;
	const struct route *route;
	char *path;
	char *pnames[MAX_PARAMS];
	char *pvalues[MAX_PARAMS];
	int nparams;
	struct evkeyvalq query;
	bool query_parsed;
	struct auth_ctx auth;
	char token_hash[SHA256_HEX_LEN + 1];
	double start;
};

static const struct {
	int status;
	const char *code_type;
} code_types[] = {
    {400, "INVALID_ARGUMENT"},
    {401, "UNAUTHENTICATED"},
    {403, "PERMISSION_DENIED"},
    {404, "NOT_FOUND"},
    {405, "METHOD_NOT_ALLOWED"},
    {409, "ALREADY_EXISTS"},
    {413, "PAYLOAD_TOO_LARGE"},
    {415, "UNSUPPORTED_MEDIA_TYPE"},
    {422, "FAILED_PRECONDITION"},
    {429, "RESOURCE_EXHAUSTED"},
    {500, "INTERNAL"},
    {501, "UNIMPLEMENTED"},
    {503, "UNAVAILABLE"},
    {504, "DEADLINE_EXCEEDED"},
};

static const char *
code_type(int status)
{
	for (size_t i = 0; i < nitems(code_types); i++) {
		if (code_types[i].status == status)
			return code_types[i].code_type;
	}
	return "UNKNOWN";
}

static const char *
status_title(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

/* ---- request contexts ---- */

static void
ctx_free(struct http_ctx *ctx)
{
	for (int i = 0; i < ctx->nparams; i++) {
		free(ctx->pnames[i]);
		free(ctx->pvalues[i]);
	}
	if (ctx->query_parsed)
		evhttp_clear_headers(&ctx->query);
	auth_ctx_free(&ctx->auth);
	free(ctx->path);
	free(ctx);
}

static void
drain_check(struct http_server *srv)
{
	if (srv->draining && srv->inflight == 0 && srv->drain_done != NULL) {
		void (*done)(void *) = srv->drain_done;

		srv->drain_done = NULL;
		done(srv->drain_arg);
	}
}

/* Ends a request: records it and frees the context. */
static void
ctx_finish(struct http_ctx *ctx, int status)
{
	double elapsed = mono_sec() - ctx->start;
	const char *route = ctx->route ? ctx->route->pattern : "unmatched";
	const char *method = http_method(ctx);
	char *eroute = metrics_label_escape(route);
	char labels[512];

	snprintf(labels, sizeof labels,
		 "route=\"%s\",method=\"%s\",code=\"%d\"", eroute, method,
		 status);
	metrics_counter_add("linkpulse_http_requests_total",
			    "HTTP requests by route, method and status code.",
			    labels, 1);
	snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\"", eroute,
		 method);
	metrics_histogram_observe("linkpulse_http_request_duration_seconds",
				  "HTTP request duration by route.", labels,
				  elapsed);
	free(eroute);
	log_debug("http %s %s %d %.1f ms", method, ctx->path, status,
		  elapsed * 1000);
	ctx_free(ctx);
}

/*
 * A request stops counting as in flight once its reply has been written
 * out, not when a handler produced it, so that a drain never cuts a reply.
 */
static void
reply_written(struct evhttp_request *req, void *arg)
{
	struct http_server *srv = arg;

	srv->inflight--;
	drain_check(srv);
}

static void
send_reply(struct http_ctx *ctx, int status, const char *content_type,
	   struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(ctx->req);
	struct http_server *srv = ctx->srv;
	bool gone = false;

	if (content_type != NULL)
		evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (srv->draining)
		evhttp_add_header(h, "Connection", "close");
	/* With the client gone evhttp frees the request without writing. */
	if (evhttp_request_get_connection(ctx->req) != NULL)
		evhttp_request_set_on_complete_cb(ctx->req, reply_written, srv);
	else
		gone = true;
	evhttp_send_reply(ctx->req, status, status_title(status), body);
	ctx_finish(ctx, status);
	if (gone)
		reply_written(NULL, srv);
}

void
http_add_header(struct http_ctx *ctx, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(ctx->req), name,
			  value);
}

void
http_reply_json(struct http_ctx *ctx, int status, json_t *body)
{
	struct evbuffer *buf = evbuffer_new();
	char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);

	json_decref(body);
	if (text == NULL) {
		evbuffer_free(buf);
		http_problem(ctx, 500, NULL, "could not encode the reply");
		return;
	}
	evbuffer_add(buf, text, strlen(text));
	evbuffer_add(buf, "\n", 1);
	free(text);
	send_reply(ctx, status, "application/json", buf);
	evbuffer_free(buf);
}

void
http_reply_buf(struct http_ctx *ctx, int status, const char *content_type,
	       struct evbuffer *body)
{
	send_reply(ctx, status, content_type, body);
}

json_t *
http_json_text(char *s)
{
	json_t *j = json_string(s);

	if (j != NULL)
		return j;
	for (char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	}
	return json_string(s);
}

void
http_problems_add(struct http_problems *e, const char *field, const char *fmt,
		  ...)
{
	va_list ap;
	char *desc, *name;

	if (e->n++ >= HTTP_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	desc = xvprintf(fmt, ap);
	va_end(ap);
	/* A member name clipped by the caller may end inside a character. */
	name = xstrdup(field);
	json_array_append_new(
	    e->details, json_pack("{s:o, s:o}", "field", http_json_text(name),
				  "description", http_json_text(desc)));
	free(name);
	free(desc);
}

void
http_problems_reply(struct http_ctx *ctx, struct http_problems *e)
{
	json_t *first = json_array_get(e->details, 0);
	const char *field = json_string_value(json_object_get(first, "field"));
	const char *desc =
	    json_string_value(json_object_get(first, "description"));

	if (e->n > 1)
		http_problem_details(ctx, 400, json_incref(e->details),
				     "%s: %s (and %d more problem%s, see "
				     "details)",
				     field, desc, e->n - 1,
				     e->n > 2 ? "s" : "");
	else
		http_problem_details(ctx, 400, json_incref(e->details),
				     "%s: %s", field, desc);
}

static void
send_problem(struct http_ctx *ctx, int status, json_t *details, char *detail)
{
	const char *field = json_string_value(
	    json_object_get(json_array_get(details, 0), "field"));
	struct evbuffer *buf = evbuffer_new();
	json_t *body;
	char *type, *text;

	type = xprintf("urn:linkpulse:problem:%s", code_type(status));
	for (char *p = type; *p != '\0'; p++) {
		if (*p == '_')
			*p = '-';
		else if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	body = json_pack("{s:s, s:s, s:i, s:o, s:i, s:s, s:o, s:o}", "type",
			 type, "title", status_title(status), "status", status,
			 "detail", http_json_text(detail), "code", status,
			 "codeType", code_type(status), "message",
			 http_json_text(detail), "details", details);
	if (field != NULL)
		json_object_set_new(body, "field", json_string(field));
	free(type);
	free(detail);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	evbuffer_add(buf, text, strlen(text));
	evbuffer_add(buf, "\n", 1);
	free(text);
	send_reply(ctx, status, "application/problem+json", buf);
	evbuffer_free(buf);
}

void
http_problem_details(struct http_ctx *ctx, int status, json_t *details,
		     const char *fmt, ...)
{
	va_list ap;
	char *detail;

	va_start(ap, fmt);
	detail = xvprintf(fmt, ap);
	va_end(ap);
	send_problem(ctx, status, details, detail);
}

void
http_problem(struct http_ctx *ctx, int status, const char *field,
	     const char *fmt, ...)
{
	json_t *details = json_array();
	va_list ap;
	char *detail;

	va_start(ap, fmt);
	detail = xvprintf(fmt, ap);
	va_end(ap);
	if (field != NULL)
		json_array_append_new(
		    details, json_pack("{s:s, s:o}", "field", field,
				       "description", http_json_text(detail)));
	send_problem(ctx, status, details, detail);
}

void
http_problem_db(struct http_ctx *ctx, PGresult *res, const char *error)
{
	if (res == NULL) {
		log_warn("http %s %s: database unavailable: %s",
			 http_method(ctx), ctx->path, error);
		http_problem(ctx, 503, NULL, "the database is unavailable");
		return;
	}
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state != NULL && strcmp(state, "57014") == 0) {
		http_problem(ctx, 504, NULL, "the query took too long");
		return;
	}
	log_error("http %s %s: query failed: %s", http_method(ctx), ctx->path,
		  error);
	http_problem(ctx, 500, NULL, "internal error");
}

/* ---- accessors ---- */

const char *
http_method(struct http_ctx *ctx)
{
	switch (evhttp_request_get_command(ctx->req)) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "OTHER";
}

const char *
http_path(struct http_ctx *ctx)
{
	return ctx->path;
}

const char *
http_param(struct http_ctx *ctx, const char *name)
{
	for (int i = 0; i < ctx->nparams; i++) {
		if (strcmp(ctx->pnames[i], name) == 0)
			return ctx->pvalues[i];
	}
	return NULL;
}

const char *
http_query(struct http_ctx *ctx, const char *name)
{
	if (!ctx->query_parsed) {
		const struct evhttp_uri *uri =
		    evhttp_request_get_evhttp_uri(ctx->req);
		const char *q = uri ? evhttp_uri_get_query(uri) : NULL;

		/* Initialises the list even for an empty query. */
		evhttp_parse_query_str(q != NULL ? q : "", &ctx->query);
		ctx->query_parsed = true;
	}
	return evhttp_find_header(&ctx->query, name);
}

int
http_query_all(struct http_ctx *ctx, const char *name, const char **v, int max)
{
	struct evkeyval *kv;
	int n = 0;

	http_query(ctx, name); /* parses the query once */
	for (kv = ctx->query.tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		if (strcmp(kv->key, name) != 0)
			continue;
		if (n < max)
			v[n] = kv->value;
		n++;
	}
	return n;
}

const char *
http_header(struct http_ctx *ctx, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(ctx->req),
				  name);
}

struct evbuffer *
http_body(struct http_ctx *ctx)
{
	return evhttp_request_get_input_buffer(ctx->req);
}

json_t *
http_body_json(struct http_ctx *ctx)
{
	struct evbuffer *buf = http_body(ctx);
	size_t len = evbuffer_get_length(buf);
	json_error_t err;
	json_t *j;

	if (len == 0) {
		http_problem(ctx, 400, "body", "the request needs a JSON body");
		return NULL;
	}
	j = json_loadb((const char *)evbuffer_pullup(buf, -1), len,
		       JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		http_problem(ctx, 400, "body",
			     "the body is not valid JSON: %s at line %d, "
			     "column %d",
			     err.text, err.line, err.column);
	return j;
}

const struct auth_ctx *
http_auth(struct http_ctx *ctx)
{
	return &ctx->auth;
}

struct db_pool *
http_db(struct http_ctx *ctx)
{
	return ctx->srv->db;
}

struct event_base *
http_base(struct http_ctx *ctx)
{
	return ctx->srv->base;
}

/* ---- routing ---- */

/*
 * Matches path against pattern segment by segment; "{name}" takes one
 * non-empty segment, which is percent-decoded into ctx's parameters.
 */
static bool
route_match(const char *pattern, const char *path, struct http_ctx *ctx)
{
	const char *p = pattern, *s = path;
	int n = 0;

	while (*p != '\0' && *s != '\0') {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			size_t slen = strcspn(s, "/");

			if (pe == NULL || slen == 0 || n == MAX_PARAMS)
				return false;
			if (ctx != NULL) {
				char *raw = xstrndup(s, slen);

				ctx->pnames[n] =
				    xstrndup(p + 1, (size_t)(pe - p - 1));
				ctx->pvalues[n] =
				    evhttp_uridecode(raw, 0, NULL);
				free(raw);
				ctx->nparams = n + 1;
			}
			n++;
			p = pe + 1;
			s += slen;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return *p == '\0' && *s == '\0';
}

static bool
method_is(const char *route_method, const char *method)
{
	/* HEAD is served by GET routes; evhttp drops the body. */
	return strcmp(route_method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 &&
		strcmp(route_method, "GET") == 0);
}

/* ---- authentication ---- */

#define SQL_TOKEN                                                              \
	"SELECT t.id, t.workspace_id, w.slug, t.environment,"                  \
	" array_to_string(t.scopes, ','), t.token_hash,"                       \
	" t.revoked_at IS NOT NULL,"                                           \
	" t.expires_at IS NOT NULL AND t.expires_at <= now()"                  \
	" FROM api_tokens t JOIN workspaces w ON w.id = t.workspace_id"        \
	" WHERE t.token_hash = $1"

#define SQL_TOKEN_USED                                                         \
	"UPDATE api_tokens SET last_used_at = now()"                           \
	" WHERE workspace_id = $1 AND id = $2 AND (last_used_at IS NULL"       \
	" OR last_used_at < now() - interval '60 seconds')"

static void
unauthorized(struct http_ctx *ctx, const char *why)
{
	http_add_header(ctx, "WWW-Authenticate",
			"Bearer realm=\"linkpulse\", error=\"invalid_token\"");
	http_problem(ctx, 401, "Authorization", "%s", why);
}

static void
token_used_done(PGresult *res, const char *error, void *arg)
{
	if (error != NULL)
		log_debug("auth: could not record token use: %s", error);
}

static void
auth_done(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;
	const char *params[2];

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if (PQntuples(res) != 1 ||
	    !ct_memeq(PQgetvalue(res, 0, 5), ctx->token_hash,
		      SHA256_HEX_LEN + 1)) {
		unauthorized(ctx, "the token is not known");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 6), "t") == 0) {
		unauthorized(ctx, "the token has been revoked");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 7), "t") == 0) {
		unauthorized(ctx, "the token has expired");
		return;
	}
	ctx->auth.token_id = xstrdup(PQgetvalue(res, 0, 0));
	ctx->auth.workspace_id = xstrdup(PQgetvalue(res, 0, 1));
	ctx->auth.workspace_slug = xstrdup(PQgetvalue(res, 0, 2));
	ctx->auth.env = (enum token_env)token_env_parse(PQgetvalue(res, 0, 3));
	for (char *save = NULL, *list = xstrdup(PQgetvalue(res, 0, 4)),
		  *tok = strtok_r(list, ",", &save), *keep = list;
	     ; tok = strtok_r(NULL, ",", &save)) {
		if (tok == NULL) {
			free(keep);
			break;
		}
		ctx->auth.scopes =
		    xrealloc(ctx->auth.scopes,
			     (size_t)(ctx->auth.nscopes + 1) * sizeof(char *));
		ctx->auth.scopes[ctx->auth.nscopes++] = xstrdup(tok);
	}

	params[0] = ctx->auth.workspace_id;
	params[1] = ctx->auth.token_id;
	db_query(ctx->srv->db, SQL_TOKEN_USED, 2, params, token_used_done,
		 NULL);

	if (!scope_granted(ctx->auth.scopes, ctx->auth.nscopes,
			   ctx->route->scope)) {
		http_problem(ctx, 403, "Authorization",
			     "this token lacks the scope '%s'",
			     ctx->route->scope);
		return;
	}
	ctx->route->handler(ctx);
}

static void
authenticate(struct http_ctx *ctx)
{
	const char *h = http_header(ctx, "Authorization");
	const char *token;
	const char *params[1];

	if (h == NULL) {
		unauthorized(ctx, "this route needs an Authorization: Bearer "
				  "token");
		return;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		unauthorized(ctx, "the Authorization header must be "
				  "'Bearer <token>'");
		return;
	}
	token = h + 7;
	while (*token == ' ')
		token++;
	if (!token_well_formed(token)) {
		unauthorized(ctx, "the token is malformed");
		return;
	}
	token_hash(token, ctx->token_hash);
	params[0] = ctx->token_hash;
	db_query(ctx->srv->db, SQL_TOKEN, 1, params, auth_done, ctx);
}

/* ---- dispatch ---- */

static void
dispatch(struct evhttp_request *req, void *arg)
{
	struct http_server *srv = arg;
	struct http_ctx *ctx = xcalloc(1, sizeof *ctx);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *method;
	char allow[128] = "";
	bool path_known = false;

	ctx->srv = srv;
	ctx->req = req;
	ctx->start = mono_sec();
	ctx->path = xstrdup(raw != NULL && *raw != '\0' ? raw : "/");
	srv->inflight++;
	method = http_method(ctx);

	/*
	 * evhttp gives a connection the body limit in force when it was
	 * accepted; checking here applies a reloaded limit to kept-alive
	 * connections too, and answers in problem+json.
	 */
	if (srv->limits.max_body_size > 0 &&
	    evbuffer_get_length(http_body(ctx)) > srv->limits.max_body_size) {
		http_problem(ctx, 413, "body",
			     "the body is larger than http.max_body_size "
			     "(%llu bytes)",
			     (unsigned long long)srv->limits.max_body_size);
		return;
	}

	for (size_t i = 0; i < srv->nroutes; i++) {
		const struct route *r = &srv->routes[i];

		if (!route_match(r->pattern, ctx->path, NULL))
			continue;
		path_known = true;
		if (!method_is(r->method, method)) {
			size_t off = strlen(allow);

			snprintf(allow + off, sizeof allow - off, "%s%s",
				 off ? ", " : "", r->method);
			continue;
		}
		ctx->route = r;
		route_match(r->pattern, ctx->path, ctx);
		break;
	}
	if (ctx->route == NULL) {
		if (path_known) {
			http_add_header(ctx, "Allow", allow);
			http_problem(ctx, 405, NULL,
				     "%s is not allowed on %s (allowed: %s)",
				     method, ctx->path, allow);
		} else {
			http_problem(ctx, 404, NULL, "no route for %s",
				     ctx->path);
		}
		return;
	}
	if (ctx->route->scope == ROUTE_PUBLIC)
		ctx->route->handler(ctx);
	else
		authenticate(ctx);
}

/* ---- server ---- */

static struct bufferevent *
tls_bevcb(struct event_base *base, void *arg)
{
	struct http_server *srv = arg;
	SSL *ssl = SSL_new(srv->ssl_ctx);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static struct evhttp *
new_evhttp(struct http_server *srv)
{
	struct evhttp *h = evhttp_new(srv->base);

	if (h == NULL)
		fatal("evhttp_new failed");
	evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
					  EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
					  EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
					  EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(h, dispatch, srv);
	return h;
}

struct http_server *
http_server_new(struct event_base *base, struct db_pool *db)
{
	struct http_server *srv = xcalloc(1, sizeof *srv);

	srv->base = base;
	srv->db = db;
	srv->plain = new_evhttp(srv);
	return srv;
}

static void
apply_limits(struct evhttp *h, const struct http_limits *l)
{
	struct timeval tv;

	if (h == NULL)
		return;
	evhttp_set_max_headers_size(h, (ev_ssize_t)l->max_header_size);
	evhttp_set_max_body_size(h, (ev_ssize_t)l->max_body_size);
	tv.tv_sec = (time_t)(l->request_timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)((l->request_timeout_ms % 1000) * 1000);
	evhttp_set_timeout_tv(h, &tv);
}

void
http_set_limits(struct http_server *srv, const struct http_limits *l)
{
	srv->limits = *l;
	apply_limits(srv->plain, l);
	apply_limits(srv->tls, l);
}

static void
ssl_errors(struct strlist *errs, const char *what, const char *file)
{
	unsigned long e;
	char buf[256];

	e = ERR_get_error();
	ERR_error_string_n(e, buf, sizeof buf);
	strlist_addf(errs, "%s: %s: %s", file, what, e ? buf : "unknown error");
	ERR_clear_error();
}

int
http_set_tls(struct http_server *srv, const char *cert_file,
	     const char *key_file, struct strlist *errs)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		ssl_errors(errs, "cannot create a TLS context", "http.tls");
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ssl_errors(errs, "cannot load the certificate", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_errors(errs, "cannot load the private key", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_errors(errs, "the key does not match the certificate",
			   key_file);
		goto fail;
	}
	/* Connections already open keep their reference to the old one. */
	if (srv->ssl_ctx != NULL)
		SSL_CTX_free(srv->ssl_ctx);
	srv->ssl_ctx = ctx;
	if (srv->tls == NULL) {
		srv->tls = new_evhttp(srv);
		evhttp_set_bevcb(srv->tls, tls_bevcb, srv);
	}
	return 0;
fail:
	SSL_CTX_free(ctx);
	return -1;
}

int
http_listen(struct http_server *srv, const struct lp_listen *l, int n, bool tls,
	    struct strlist *errs)
{
	struct evhttp *h = tls ? srv->tls : srv->plain;
	int rc = 0;

	for (int i = 0; i < n; i++) {
		const char *host = l[i].host[0] != '\0' ? l[i].host : "::";
		struct evhttp_bound_socket *b;

		if (h == NULL) {
			strlist_add(errs, "http.tls.listen: TLS is not "
					  "configured");
			return -1;
		}
		if (srv->nbound == MAX_BOUND) {
			strlist_addf(errs, "too many listeners (at most %d)",
				     MAX_BOUND);
			return -1;
		}
		b = evhttp_bind_socket_with_handle(h, host,
						   (ev_uint16_t)l[i].port);
		/* "::" may be refused where IPv6 is off: fall back to IPv4. */
		if (b == NULL && l[i].host[0] == '\0')
			b = evhttp_bind_socket_with_handle(
			    h, "0.0.0.0", (ev_uint16_t)l[i].port);
		if (b == NULL) {
			strlist_addf(errs, "cannot listen on %s:%d%s: %s", host,
				     l[i].port, tls ? " (TLS)" : "",
				     strerror(errno));
			rc = -1;
			continue;
		}
		srv->bound_owner[srv->nbound] = h;
		srv->bound[srv->nbound++] = b;
		log_info("http: listening on %s%s%s:%d%s",
			 strchr(host, ':') ? "[" : "", host,
			 strchr(host, ':') ? "]" : "",
			 http_bound_port(srv, srv->nbound - 1),
			 tls ? " (TLS)" : "");
	}
	return rc;
}

int
http_bound_port(struct http_server *srv, int index)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	evutil_socket_t fd;

	if (index < 0 || index >= srv->nbound)
		return -1;
	fd = evhttp_bound_socket_get_fd(srv->bound[index]);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void
http_add_routes(struct http_server *srv, const struct route *r, size_t n)
{
	srv->routes =
	    xrealloc(srv->routes, (srv->nroutes + n) * sizeof *srv->routes);
	memcpy(srv->routes + srv->nroutes, r, n * sizeof *r);
	srv->nroutes += n;
}

static void
drain_deferred(evutil_socket_t fd, short what, void *arg)
{
	drain_check(arg);
}

void
http_drain(struct http_server *srv, void (*done)(void *), void *arg)
{
	struct timeval now = {0, 0};

	for (int i = 0; i < srv->nbound; i++)
		evhttp_del_accept_socket(srv->bound_owner[i], srv->bound[i]);
	srv->nbound = 0;
	srv->draining = true;
	srv->drain_done = done;
	srv->drain_arg = arg;
	log_info("http: no longer accepting; %d request%s in flight",
		 srv->inflight, srv->inflight == 1 ? "" : "s");
	/* Report from the loop, never from inside the caller. */
	srv->drain_ev = event_new(srv->base, -1, 0, drain_deferred, srv);
	event_add(srv->drain_ev, &now);
}

int
http_inflight(const struct http_server *srv)
{
	return srv->inflight;
}

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->drain_ev != NULL)
		event_free(srv->drain_ev);
	if (srv->plain != NULL)
		evhttp_free(srv->plain);
	if (srv->tls != NULL)
		evhttp_free(srv->tls);
	if (srv->ssl_ctx != NULL)
		SSL_CTX_free(srv->ssl_ctx);
	free(srv->routes);
	free(srv);
}

const char *
http_json_plain_string(json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != json_string_length(v))
		return NULL;
	return s;
}

json_t *
http_sql_json(PGresult *res, int row, int col)
{
	json_error_t err;
	json_t *j;

	if (PQgetisnull(res, row, col))
		return NULL;
	j = json_loads(PQgetvalue(res, row, col), JSON_DECODE_ANY, &err);
	if (j == NULL)
		log_error(
		    "http: the database sent JSON that does not parse: %s",
		    err.text);
	return j;
}
