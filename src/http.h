/*
 * http.h - the HTTP server: evhttp listeners (plain and TLS), limits, a
 * routing table, bearer-token authentication against api_tokens, and the
 * reply helpers every handler ends with.  Routes are data: a module adds
 * a table of {method, pattern, scope, handler} rows, patterns may hold
 * "{name}" segments, and the router checks the token and its scope before
 * a handler runs.
 *
 * A handler must end its request exactly once, now or later from a
 * callback, with http_reply_json, http_reply_buf or http_problem; the
 * request context is freed by that call.
 */
#ifndef LP_HTTP_H
#define LP_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "auth.h"
#include "config.h"
#include "db.h"

struct http_server;
struct http_ctx;

typedef void (*http_handler_fn)(struct http_ctx *);

/* Who may call a route. */
#define ROUTE_PUBLIC	NULL /* no token needed */
#define ROUTE_ANY_TOKEN ""   /* any valid token */

struct route {
	const char *method;  /* "GET", "POST", ... */
	const char *pattern; /* "/v1/webhooks/{id}" */
	const char *scope;   /* ROUTE_PUBLIC, ROUTE_ANY_TOKEN or a scope */
	http_handler_fn handler;
};

struct http_limits {
	uint64_t max_header_size;
	uint64_t max_body_size;
	int64_t request_timeout_ms;
};

struct http_server *http_server_new(struct event_base *, struct db_pool *);
void http_server_free(struct http_server *);
void http_add_routes(struct http_server *, const struct route *, size_t n);
void http_set_limits(struct http_server *, const struct http_limits *);
/* Loads (or, on reload, replaces) the certificate and key; -1 on error. */
int http_set_tls(struct http_server *, const char *cert_file,
		 const char *key_file, struct strlist *errs);
/* Binds every address; -1 (errors appended) if any fails. */
int http_listen(struct http_server *, const struct lp_listen *, int n, bool tls,
		struct strlist *errs);
/* The port a listener got (for port 0); -1 if there is no such listener. */
int http_bound_port(struct http_server *, int index);
/* Stops accepting; done runs once no request is in flight. */
void http_drain(struct http_server *, void (*done)(void *), void *arg);
int http_inflight(const struct http_server *);

/* Request accessors. */
const char *http_method(struct http_ctx *);
const char *http_path(struct http_ctx *);
const char *http_param(struct http_ctx *, const char *name);
const char *http_query(struct http_ctx *, const char *name);
/*
 * Every value of a query parameter given several times (?state=a&state=b),
 * in order: the first max into v.  Returns how many there are.
 */
int http_query_all(struct http_ctx *, const char *name, const char **v,
		   int max);
const char *http_header(struct http_ctx *, const char *name);
struct evbuffer *http_body(struct http_ctx *);
/* The body as JSON; on failure replies 400 itself and returns NULL. */
json_t *http_body_json(struct http_ctx *);
const struct auth_ctx *http_auth(struct http_ctx *);
struct db_pool *http_db(struct http_ctx *);
struct event_base *http_base(struct http_ctx *);

/* Replies.  Each ends the request and frees the context. */
void http_reply_json(struct http_ctx *, int status, json_t *body /* stolen */);
void http_reply_buf(struct http_ctx *, int status, const char *content_type,
		    struct evbuffer *body /* contents moved */);
void http_add_header(struct http_ctx *, const char *name, const char *value);
/*
 * An application/problem+json error.  field names the member or
 * parameter at fault (NULL if none); it goes into details.
 */
void http_problem(struct http_ctx *, int status, const char *field,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * The same with several problems: details is an array of {"field",
 * "description"} objects (stolen); the first one's field is the "field".
 */
void http_problem_details(struct http_ctx *, int status, json_t *details,
			  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * The problems found in a request, for one 400 that names each: the first
 * HTTP_MAX_PROBLEMS are listed, n counts them all.  details starts as
 * json_array() and is the caller's to json_decref.
 */
#define HTTP_MAX_PROBLEMS 20
struct http_problems {
	json_t *details; /* [{"field", "description"}] */
	int n;
};
void http_problems_add(struct http_problems *, const char *field,
		       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The 400: its field and detail name the first problem. */
void http_problems_reply(struct http_ctx *, struct http_problems *);

/* A JSON string's text, or NULL if it is no string or holds a NUL byte
 * (jansson lets "\u0000" through). */
const char *http_json_plain_string(json_t *);
/* A JSON value PostgreSQL made; NULL if NULL or (logged) unparsable. */
json_t *http_sql_json(PGresult *, int row, int col);

/* A JSON string of any text: bytes that are not UTF-8 become '?'. */
json_t *http_json_text(char *s);
/* The reply for a failed query: 503 if the database is unreachable. */
void http_problem_db(struct http_ctx *, PGresult *res, const char *error);

#endif
