/*
 * api_alerts.c - /v1/alerts: the workspace's alerts as the rules consumer
 * (alerts.c) left them in alert_instances, their history, the loaded rules,
 * silences (Alertmanager's shape: matchers, startsAt, endsAt, createdBy,
 * comment) and a reload of the rules.
 *
 * Every route reads or writes the token's workspace only.  The JSON of a
 * row is built by PostgreSQL (SQL_ALERT, SQL_HISTORY, SQL_SILENCE), so
 * every route shows the same members in the same order.  Lists are pages
 * of a keyset: each row comes with its own page token, the page asks for
 * one row more than it shows, and the last shown row's token is the
 * nextPageToken when that row exists.
 *
 * Creating a silence takes one query per regular expression among its
 * matchers (PostgreSQL, which matches them later, is the judge of their
 * syntax and says whether they match the empty string), then the insert,
 * which checks the times against the database's clock.
 *
 * Called through the route table; calls db.c, and alerts.c for the rules
 * and the reload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "api.h"
#include "log.h"
#include "rules.h"

#define DEFAULT_PAGE_SIZE 50
#define MAX_PAGE_SIZE	  1000
#define MAX_TOKEN	  1024 /* an alert's page token: two hex strings */
#define MAX_MATCHERS	  64
#define MAX_LABEL_NAME	  128
#define MAX_MATCHER_VALUE 1024
#define MAX_CREATED_BY	  200
#define MAX_COMMENT	  2000
#define MAX_REPEATS	  16 /* a query parameter given several times */

/* ---- SQL ---- */

/* clang-format off */
#define SQL_TS(x)                                                              \
	"to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* A history or silence page token: the row's time in microseconds. */
#define SQL_US(x) "(extract(epoch FROM " x ") * 1000000)::bigint::text"
#define SQL_FROM_US(p)                                                         \
	"('epoch'::timestamptz + (" p "::bigint / 1000000) * interval '1 s'"   \
	" + (" p "::bigint % 1000000) * interval '1 microsecond')"

/* An alert (alias i). */
#define SQL_ALERT                                                              \
	"json_build_object('rule', i.rule, 'fingerprint', i.fingerprint,"      \
	" 'state', i.state, 'labels', i.labels, 'annotations', i.annotations," \
	" 'value', i.value, 'threshold', i.threshold, 'window', i.\"window\","  \
	" 'severity', i.severity, 'activeAt', " SQL_TS("i.active_at") ","     \
	" 'firedAt', " SQL_TS("i.fired_at") ","                                \
	" 'resolvedAt', " SQL_TS("i.resolved_at") ","                          \
	" 'notifiedAt', " SQL_TS("i.notified_at") ","                          \
	" 'notifications', i.notifications,"                                   \
	" 'since', " SQL_TS("i.active_at") ")"

/* An alert's page token: its rule and fingerprint, each in hex. */
#define SQL_ALERT_KEY                                                          \
	"convert_to(i.rule, 'UTF8'), convert_to(i.fingerprint, 'UTF8')"

/* A state change (alias h). */
#define SQL_HISTORY                                                            \
	"json_build_object('id', h.id::text, 'rule', h.rule,"                  \
	" 'fingerprint', h.fingerprint, 'labels', h.labels,"                   \
	" 'annotations', h.annotations, 'from', h.from_state,"                 \
	" 'state', h.state, 'value', h.value, 'threshold', h.threshold,"       \
	" 'at', " SQL_TS("h.at") ", 'notified', h.notified,"                   \
	" 'repeat', h.repeat, 'silencedBy', h.silenced_by)"

/* A silence's state now, as Alertmanager shows it (alias s). */
#define SQL_SILENCE_STATE                                                      \
	"CASE WHEN s.ends_at <= now() THEN 'expired'"                          \
	" WHEN s.starts_at > now() THEN 'pending' ELSE 'active' END"

/* A silence (alias s). */
#define SQL_SILENCE                                                            \
	"json_build_object('id', s.id, 'matchers', s.matchers,"                \
	" 'startsAt', " SQL_TS("s.starts_at") ","                              \
	" 'endsAt', " SQL_TS("s.ends_at") ","                                  \
	" 'createdBy', s.created_by, 'comment', s.comment,"                    \
	" 'status', json_build_object('state', " SQL_SILENCE_STATE "),"        \
	" 'createdAt', " SQL_TS("s.created_at") ","                            \
	" 'updatedAt', " SQL_TS("s.updated_at") ")"

/*
 * $2 the states (a text[] made of known names only), $3 a rule or NULL,
 * $4 and $5 the page token's halves in hex, $6 the page size + 1.
 */
static const char sql_alerts[] =
    "SELECT encode(convert_to(i.rule, 'UTF8'), 'hex') || '.'"
    " || encode(convert_to(i.fingerprint, 'UTF8'), 'hex'), " SQL_ALERT "::text"
    " FROM alert_instances i WHERE i.workspace_id = $1"
    " AND i.state = ANY ($2::text[]) AND ($3::text IS NULL OR i.rule = $3)"
    " AND ($4::text IS NULL OR (" SQL_ALERT_KEY ")"
    " > (decode($4, 'hex'), decode($5, 'hex')))"
    " ORDER BY " SQL_ALERT_KEY " LIMIT $6::int";

/*
 * Newest first.  $2 rule, $3 fingerprint, $4 since, $5 until (each NULL
 * for any), $6 and $7 the page token (microseconds, id), $8 the limit.
 */
static const char sql_history[] =
    "SELECT " SQL_US("h.at") " || '.' || h.id, " SQL_HISTORY "::text"
    " FROM alert_history h WHERE h.workspace_id = $1"
    " AND ($2::text IS NULL OR h.rule = $2)"
    " AND ($3::text IS NULL OR h.fingerprint = $3)"
    " AND ($4::timestamptz IS NULL OR h.at >= $4::timestamptz)"
    " AND ($5::timestamptz IS NULL OR h.at < $5::timestamptz)"
    " AND ($6::bigint IS NULL OR (h.at, h.id) < (" SQL_FROM_US("$6") ","
    " $7::bigint))"
    " ORDER BY h.at DESC, h.id DESC LIMIT $8::int";

/* Newest first.  $2 the states or NULL, $3 and $4 the page token. */
static const char sql_silences[] =
    "SELECT " SQL_US("s.created_at") " || '.' || s.id, " SQL_SILENCE "::text"
    " FROM alert_silences s WHERE s.workspace_id = $1"
    " AND ($2::text[] IS NULL OR " SQL_SILENCE_STATE " = ANY ($2::text[]))"
    " AND ($3::bigint IS NULL OR (s.created_at, s.id) < (" SQL_FROM_US("$3")
    ", $4::uuid))"
    " ORDER BY s.created_at DESC, s.id DESC LIMIT $5::int";

static const char sql_silence_get[] =
    "SELECT " SQL_SILENCE "::text FROM alert_silences s"
    " WHERE s.workspace_id = $1 AND s.id = $2";

/*
 * Whether the anchored expression $1 matches "".  An error if it is bad,
 * alone or anchored: "a)|(b" only compiles once wrapped, "(?i)a" alone.
 */
static const char sql_regex[] =
    "SELECT '' ~ ('^(?:' || $1 || ')$'), '' ~ $1";

/*
 * $2 the matchers, $3 startsAt (NULL: now; one in the past becomes now, as
 * in Alertmanager), $4 endsAt, $5 createdBy, $6 comment.  Returns (what is
 * wrong with endsAt, the silence): nothing is written when endsAt is wrong.
 */
static const char sql_silence_create[] =
    "WITH v AS (SELECT greatest(coalesce($3::timestamptz, now()), now())"
    " AS starts, $4::timestamptz AS ends"
    "), bad AS ("
    " SELECT CASE WHEN v.ends <= now() THEN 'must be in the future'"
    " ELSE 'must be after startsAt' END AS message"
    " FROM v WHERE v.ends <= v.starts"
    "), ins AS ("
    " INSERT INTO alert_silences (workspace_id, matchers, starts_at, ends_at,"
    " created_by, comment)"
    " SELECT $1, $2::jsonb, v.starts, v.ends, $5, $6 FROM v"
    " WHERE NOT EXISTS (SELECT 1 FROM bad)"
    " RETURNING *"
    ") SELECT (SELECT b.message FROM bad b),"
    " (SELECT " SQL_SILENCE "::text FROM ins s)";

/*
 * Expires a silence: it ends now (and starts now if it had not started).
 * One that has already ended is shown as it is.
 */
static const char sql_silence_expire[] =
    "WITH upd AS ("
    " UPDATE alert_silences s SET ends_at = now(),"
    " starts_at = least(s.starts_at, now()), updated_at = now()"
    " WHERE s.workspace_id = $1 AND s.id = $2 AND s.ends_at > now()"
    " RETURNING s.*"
    ") SELECT " SQL_SILENCE "::text FROM upd s"
    " UNION ALL SELECT " SQL_SILENCE "::text FROM alert_silences s"
    " WHERE s.workspace_id = $1 AND s.id = $2"
    " AND NOT EXISTS (SELECT 1 FROM upd)";
/* clang-format on */

/* ---- helpers ---- */

#define RFC3339_HINT                                                           \
	"expected an RFC 3339 date-time like \"2026-01-02T03:04:05Z\""

/*
 * Adds the comma-separated names of s to the set seen (bit i: choices[i]);
 * empty items are skipped.  Replies 400 naming the parameter and returns
 * false on an unknown name.
 */
static bool
choices_add(struct http_ctx *ctx, const char *name, const char *s,
	    const char *const *choices, unsigned *seen)
{
	char list[256] = "";

	for (const char *p = s; *p != '\0';) {
		size_t w = strcspn(p, ",");
		int k = -1;

		for (int i = 0; w > 0 && choices[i] != NULL; i++) {
			if (strlen(choices[i]) == w &&
			    strncmp(p, choices[i], w) == 0)
				k = i;
		}
		if (w > 0 && k < 0) {
			for (int i = 0; choices[i] != NULL; i++)
				snprintf(list + strlen(list),
					 sizeof list - strlen(list), "%s%s",
					 i ? ", " : "", choices[i]);
			http_problem(ctx, 400, name,
				     "unknown %s '%.*s': expected one of %s "
				     "(several may be given, comma-separated)",
				     name, (int)(w > 64 ? 64 : w), p, list);
			return false;
		}
		if (k >= 0)
			*seen |= 1u << k;
		p += w;
		if (*p == ',')
			p++;
	}
	return true;
}

/*
 * The names a query parameter gives, repeated or comma-separated, each one
 * of choices, as a PostgreSQL array literal in out ("{pending,firing}"):
 * only names from choices go into the SQL.  out is "" when the parameter
 * is absent or empty.  Replies 400 naming the parameter and returns false
 * on an unknown name.
 */
static bool
query_choices(struct http_ctx *ctx, const char *name,
	      const char *const *choices, char *out, size_t len)
{
	const char *v[MAX_REPEATS];
	int n = http_query_all(ctx, name, v, MAX_REPEATS);
	unsigned seen = 0;
	size_t off = 0;

	out[0] = '\0';
	if (n > MAX_REPEATS) {
		http_problem(ctx, 400, name, "given more than %d times",
			     MAX_REPEATS);
		return false;
	}
	for (int i = 0; i < n; i++) {
		if (!choices_add(ctx, name, v[i], choices, &seen))
			return false;
	}
	for (int i = 0; choices[i] != NULL && off < len; i++) {
		if (seen & (1u << i))
			off += (size_t)snprintf(out + off, len - off, "%s%s",
						off ? "," : "{", choices[i]);
	}
	if (seen != 0 && off < len)
		snprintf(out + off, len - off, "}");
	return true;
}

/*
 * pageSize and pageToken.  The token is two parts separated by a dot,
 * copied to a and b; valid says whether a part has the right shape.
 * Replies 400 naming the parameter and returns false if either is wrong.
 */
static bool
page_params(struct http_ctx *ctx, int *size, char *a, char *b, size_t len,
	    bool (*valid)(const char *part, int which))
{
	const char *size_s = http_query(ctx, "pageSize");
	const char *token = http_query(ctx, "pageToken");
	const char *dot;

	*size = DEFAULT_PAGE_SIZE;
	a[0] = b[0] = '\0';
	if (size_s != NULL) {
		size_t n = strspn(size_s, "0123456789");

		*size =
		    n > 0 && n <= 4 && size_s[n] == '\0' ? atoi(size_s) : -1;
		if (*size < 1 || *size > MAX_PAGE_SIZE) {
			http_problem(ctx, 400, "pageSize",
				     "expected an integer from 1 to %d",
				     MAX_PAGE_SIZE);
			return false;
		}
	}
	if (token == NULL || *token == '\0')
		return true;
	dot = strchr(token, '.');
	if (dot == NULL || (size_t)(dot - token) >= len ||
	    strlen(dot + 1) >= len)
		goto bad;
	snprintf(a, len, "%.*s", (int)(dot - token), token);
	snprintf(b, len, "%s", dot + 1);
	if (!valid(a, 0) || !valid(b, 1))
		goto bad;
	return true;
bad:
	a[0] = b[0] = '\0';
	http_problem(ctx, 400, "pageToken",
		     "not a page token: pass the nextPageToken of the previous "
		     "page");
	return false;
}

/*
 * The rule and fingerprint filters: rules.c's rule names (letters, digits
 * and _ . : -, at most 128) and 16 hex digits.  NULL when absent; replies
 * 400 naming the parameter and returns false when malformed.
 */
static bool
alert_filters(struct http_ctx *ctx, const char **rule, const char **fp)
{
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz"
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					 "0123456789_.:-";

	*rule = http_query(ctx, "rule");
	if (*rule != NULL && **rule == '\0')
		*rule = NULL;
	if (*rule != NULL && (strlen(*rule) > 128 ||
			      (*rule)[strspn(*rule, name_chars)] != '\0')) {
		http_problem(ctx, 400, "rule",
			     "expected a rule name: letters, digits and "
			     "_ . : - (at most 128)");
		return false;
	}
	if (fp == NULL)
		return true;
	*fp = http_query(ctx, "fingerprint");
	if (*fp != NULL && **fp == '\0')
		*fp = NULL;
	if (*fp != NULL &&
	    (strlen(*fp) != 16 || strspn(*fp, "0123456789abcdef") != 16)) {
		http_problem(ctx, 400, "fingerprint",
			     "expected an alert's fingerprint: 16 hexadecimal "
			     "digits, lower case");
		return false;
	}
	return true;
}

/* Digits, without a leading zero, that fit a bigint. */
static bool
bigint_valid(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n > 0 && n <= 18 && s[n] == '\0' && (s[0] != '0' || n == 1);
}

/* An alert's token: rule and fingerprint, each in lower-case hex. */
static bool
alert_token_valid(const char *s, int which)
{
	size_t n = strspn(s, "0123456789abcdef");

	(void)which;
	return n > 0 && n % 2 == 0 && s[n] == '\0';
}

/* A history token: microseconds and the row's id. */
static bool
history_token_valid(const char *s, int which)
{
	(void)which;
	return bigint_valid(s);
}

/* A silence token: microseconds and the silence's id. */
static bool
silence_token_valid(const char *s, int which)
{
	return which == 0 ? bigint_valid(s) : uuid_valid(s);
}

/* A page of rows (page token, JSON) as {key: [...], nextPageToken}. */
struct page {
	struct http_ctx *ctx;
	const char *key;
	int size;
};

static void
page_done(PGresult *res, const char *error, void *arg)
{
	struct page *pg = arg;
	struct http_ctx *ctx = pg->ctx;
	const char *key = pg->key, *next = "";
	int size = pg->size, n;
	json_t *list;

	free(pg);
	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	list = json_array();
	n = PQntuples(res);
	for (int i = 0; i < n && i < size; i++) {
		json_t *row = http_sql_json(res, i, 1);

		if (row == NULL) {
			json_decref(list);
			http_problem(ctx, 500, NULL, "internal error");
			return;
		}
		json_array_append_new(list, row);
	}
	/* One row more than the page: there is a next page. */
	if (n > size)
		next = PQgetvalue(res, size - 1, 0);
	http_reply_json(
	    ctx, 200,
	    json_pack("{s:o, s:s}", key, list, "nextPageToken", next));
}

static void
page_query(struct http_ctx *ctx, const char *key, int size, const char *sql,
	   int nparams, const char *const *params)
{
	struct page *pg = xcalloc(1, sizeof *pg);

	pg->ctx = ctx;
	pg->key = key;
	pg->size = size;
	db_query(http_db(ctx), sql, nparams, params, page_done, pg);
}

/* ---- GET /v1/alerts ---- */

static const char *const alert_states[] = {"pending", "firing", "resolved",
					   NULL};

static void
alerts_list(struct http_ctx *ctx)
{
	char states[64], a[MAX_TOKEN], b[MAX_TOKEN], limit[16];
	const char *params[6], *rule;
	int size;

	if (!query_choices(ctx, "state", alert_states, states, sizeof states) ||
	    !alert_filters(ctx, &rule, NULL) ||
	    !page_params(ctx, &size, a, b, sizeof a, alert_token_valid))
		return;
	snprintf(limit, sizeof limit, "%d", size + 1);
	params[0] = http_auth(ctx)->workspace_id;
	params[1] = states[0] != '\0' ? states : "{pending,firing}";
	params[2] = rule;
	params[3] = a[0] != '\0' ? a : NULL;
	params[4] = b[0] != '\0' ? b : NULL;
	params[5] = limit;
	page_query(ctx, "alerts", size, sql_alerts, 6, params);
}

/* ---- GET /v1/alerts/rules ---- */

static void
alerts_rules_list(struct http_ctx *ctx)
{
	json_t *rules = alerts_rules_json(http_auth(ctx)->workspace_slug);

	http_reply_json(ctx, 200,
			json_pack("{s:o, s:o}", "rules",
				  rules != NULL ? rules : json_array(),
				  "lastReload", alerts_reload_json()));
}

/* ---- GET /v1/alerts/history ---- */

static void
alerts_history(struct http_ctx *ctx)
{
	static const char *const times[] = {"since", "until"};
	char a[32], b[32], limit[16], t[2][64];
	const char *params[8], *rule, *fp;
	int size;

	for (size_t i = 0; i < nitems(times); i++) {
		const char *s = http_query(ctx, times[i]);

		t[i][0] = '\0';
		if (s != NULL && *s != '\0' &&
		    !rfc3339_valid(s, t[i], sizeof t[i])) {
			http_problem(ctx, 400, times[i], RFC3339_HINT);
			return;
		}
	}
	if (!alert_filters(ctx, &rule, &fp) ||
	    !page_params(ctx, &size, a, b, sizeof a, history_token_valid))
		return;
	snprintf(limit, sizeof limit, "%d", size + 1);
	params[0] = http_auth(ctx)->workspace_id;
	params[1] = rule;
	params[2] = fp;
	params[3] = t[0][0] != '\0' ? t[0] : NULL;
	params[4] = t[1][0] != '\0' ? t[1] : NULL;
	params[5] = a[0] != '\0' ? a : NULL;
	params[6] = b[0] != '\0' ? b : NULL;
	params[7] = limit;
	page_query(ctx, "history", size, sql_history, 8, params);
}

/* ---- silences ---- */

static const char *const silence_states[] = {"pending", "active", "expired",
					     NULL};

/* The silence id of the path; replies 400 and returns NULL if malformed. */
static const char *
path_id(struct http_ctx *ctx)
{
	const char *id = http_param(ctx, "id");

	if (id == NULL || !uuid_valid(id)) {
		http_problem(ctx, 400, "id",
			     "'%.64s' is not a silence id (a UUID)",
			     id ? id : "");
		return NULL;
	}
	return id;
}

/*
 * Replies with the one silence of res, or 404.  done ("created",
 * "expired") is logged with the silence's id; NULL for a read.
 */
static void
silence_reply(struct http_ctx *ctx, int status, PGresult *res, int col,
	      const char *done)
{
	json_t *silence;
	const char *id;

	if (PQntuples(res) != 1 || PQgetisnull(res, 0, col)) {
		http_problem(ctx, 404, "id", "no silence %s in this workspace",
			     http_param(ctx, "id"));
		return;
	}
	if ((silence = http_sql_json(res, 0, col)) == NULL) {
		http_problem(ctx, 500, NULL, "internal error");
		return;
	}
	id = json_string_value(json_object_get(silence, "id"));
	if (done != NULL)
		log_info("alerts: workspace %s: silence %s %s, ends at %s",
			 http_auth(ctx)->workspace_slug, id, done,
			 json_string_value(json_object_get(silence, "endsAt")));
	if (status == 201) {
		char *where = xprintf("/v1/alerts/silences/%s", id);

		http_add_header(ctx, "Location", where);
		free(where);
	}
	http_reply_json(ctx, status, json_pack("{s:o}", "silence", silence));
}

static void
silence_read(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	silence_reply(ctx, 200, res, 0, NULL);
}

/* GET /v1/alerts/silences */
static void
silences_list(struct http_ctx *ctx)
{
	char states[64], a[40], b[40], limit[16];
	const char *params[5];
	int size;

	if (!query_choices(ctx, "state", silence_states, states,
			   sizeof states) ||
	    !page_params(ctx, &size, a, b, sizeof b, silence_token_valid))
		return;
	snprintf(limit, sizeof limit, "%d", size + 1);
	params[0] = http_auth(ctx)->workspace_id;
	params[1] = states[0] != '\0' ? states : NULL;
	params[2] = a[0] != '\0' ? a : NULL;
	params[3] = b[0] != '\0' ? b : NULL;
	params[4] = limit;
	page_query(ctx, "silences", size, sql_silences, 5, params);
}

/* GET /v1/alerts/silences/{id} */
static void
silence_get(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id, path_id(ctx)};

	if (params[1] == NULL)
		return;
	db_query(http_db(ctx), sql_silence_get, 2, params, silence_read, ctx);
}

/* DELETE /v1/alerts/silences/{id} */
static void
expired(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	silence_reply(ctx, 200, res, 0, "expired");
}

static void
silence_expire(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id, path_id(ctx)};

	if (params[1] == NULL)
		return;
	db_query(http_db(ctx), sql_silence_expire, 2, params, expired, ctx);
}

/* ---- POST /v1/alerts/silences ---- */

struct silence_req {
	struct http_ctx *ctx;
	json_t *matchers; /* validated, with isRegex and isEqual filled in */
	char starts[64];  /* "" for now */
	char ends[64];
	char *created_by;
	char *comment;
	size_t next;	/* the next matcher whose regex to check */
	bool selective; /* some matcher does not match the empty string */
	struct http_problems errs;
};

static void
silence_req_free(struct silence_req *sr)
{
	json_decref(sr->matchers);
	free(sr->created_by);
	free(sr->comment);
	json_decref(sr->errs.details);
	free(sr);
}

/* Alertmanager's label names, plus the dots of linkpulse's event fields. */
static bool
label_name_valid(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
	      *s == '_'))
		return false;
	for (s++; *s != '\0'; s++) {
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'))
			return false;
	}
	return true;
}

/* One matcher, normalised (new reference), or NULL after adding to errs. */
static json_t *
check_matcher(struct http_problems *errs, size_t i, json_t *m)
{
	static const char *const members[] = {"name", "value", "isRegex",
					      "isEqual"};
	int before = errs->n;
	char field[96];
	const char *key, *name, *value;
	json_t *v;

	if (!json_is_object(m)) {
		snprintf(field, sizeof field, "matchers[%zu]", i);
		http_problems_add(errs, field,
				  "expected an object {\"name\", \"value\", "
				  "\"isRegex\", \"isEqual\"}");
		return NULL;
	}
	json_object_foreach(m, key, v)
	{
		bool known = false;

		for (size_t k = 0; k < nitems(members); k++)
			known = known || strcmp(key, members[k]) == 0;
		snprintf(field, sizeof field, "matchers[%zu].%.64s", i, key);
		if (!known)
			http_problems_add(errs, field,
					  "unknown member (a matcher has "
					  "name, value, isRegex and isEqual)");
		else if ((strcmp(key, "isRegex") == 0 ||
			  strcmp(key, "isEqual") == 0) &&
			 !json_is_boolean(v))
			http_problems_add(errs, field,
					  "expected true or false");
	}
	name = http_json_plain_string(json_object_get(m, "name"));
	snprintf(field, sizeof field, "matchers[%zu].name", i);
	if (json_object_get(m, "name") == NULL)
		http_problems_add(errs, field, "is required");
	else if (name == NULL || strlen(name) > MAX_LABEL_NAME ||
		 !label_name_valid(name))
		http_problems_add(errs, field,
				  "expected a label name: a letter or '_', "
				  "then letters, digits, '_' or '.' (at most "
				  "%d)",
				  MAX_LABEL_NAME);
	value = http_json_plain_string(json_object_get(m, "value"));
	snprintf(field, sizeof field, "matchers[%zu].value", i);
	if (json_object_get(m, "value") == NULL)
		http_problems_add(errs, field, "is required");
	else if (value == NULL)
		http_problems_add(errs, field, "expected a string");
	else if (utf8_length(value) > MAX_MATCHER_VALUE)
		http_problems_add(errs, field, "is longer than %d characters",
				  MAX_MATCHER_VALUE);
	if (errs->n > before)
		return NULL;
	v = json_object_get(m, "isEqual");
	return json_pack("{s:s, s:s, s:b, s:b}", "name", name, "value", value,
			 "isRegex", json_is_true(json_object_get(m, "isRegex")),
			 "isEqual", v == NULL || json_is_true(v));
}

/* A text member of at most max characters; NULL after adding to errs. */
static const char *
check_text(struct http_problems *errs, const char *field, json_t *v, size_t max,
	   bool required)
{
	const char *s = http_json_plain_string(v);

	if (v == NULL || (json_is_null(v) && !required)) {
		if (required)
			http_problems_add(errs, field, "is required");
		return NULL;
	}
	if (s == NULL)
		http_problems_add(errs, field, "expected a string");
	else if (required && s[strspn(s, " \t\r\n")] == '\0')
		http_problems_add(errs, field, "must not be empty");
	else if (utf8_length(s) > max)
		http_problems_add(errs, field, "is longer than %zu characters",
				  max);
	else
		return s;
	return NULL;
}

static void
check_time(struct http_problems *errs, const char *field, json_t *v, char *out,
	   size_t len, bool required)
{
	const char *s = http_json_plain_string(v);

	if (v == NULL || (json_is_null(v) && !required)) {
		if (required)
			http_problems_add(errs, field, "is required");
		return;
	}
	if (s == NULL || !rfc3339_valid(s, out, len))
		http_problems_add(errs, field, RFC3339_HINT);
}

/* The body's members into sr; problems go to sr->errs. */
static void
check_silence(struct silence_req *sr, json_t *body)
{
	static const char *const members[] = {"matchers", "startsAt", "endsAt",
					      "createdBy", "comment"};
	struct http_problems *errs = &sr->errs;
	json_t *matchers = json_object_get(body, "matchers"), *v, *m;
	const char *key, *s;
	size_t i;

	json_object_foreach(body, key, v)
	{
		bool known = false;
		char field[80];

		for (size_t k = 0; k < nitems(members); k++)
			known = known || strcmp(key, members[k]) == 0;
		if (!known) {
			snprintf(field, sizeof field, "%.64s", key);
			http_problems_add(errs, field,
					  "unknown member '%s' (a silence has "
					  "matchers, startsAt, endsAt, "
					  "createdBy and comment)",
					  field);
		}
	}
	sr->matchers = json_array();
	if (matchers == NULL) {
		http_problems_add(errs, "matchers", "is required");
	} else if (!json_is_array(matchers) || json_array_size(matchers) == 0 ||
		   json_array_size(matchers) > MAX_MATCHERS) {
		http_problems_add(errs, "matchers",
				  "expected an array of 1 to %d matchers "
				  "{\"name\", \"value\", \"isRegex\", "
				  "\"isEqual\"}",
				  MAX_MATCHERS);
	} else {
		/* A bad one is a null: indexes stay those of the body. */
		json_array_foreach(matchers, i, v)
		{
			m = check_matcher(errs, i, v);
			json_array_append_new(sr->matchers,
					      m != NULL ? m : json_null());
		}
	}
	check_time(errs, "startsAt", json_object_get(body, "startsAt"),
		   sr->starts, sizeof sr->starts, false);
	check_time(errs, "endsAt", json_object_get(body, "endsAt"), sr->ends,
		   sizeof sr->ends, true);
	if ((s = check_text(errs, "createdBy",
			    json_object_get(body, "createdBy"), MAX_CREATED_BY,
			    true)) != NULL)
		sr->created_by = xstrdup(s);
	s = check_text(errs, "comment", json_object_get(body, "comment"),
		       MAX_COMMENT, false);
	sr->comment = xstrdup(s != NULL ? s : "");
}

static void
silence_created(PGresult *res, const char *error, void *arg)
{
	struct silence_req *sr = arg;

	if (error != NULL) {
		http_problem_db(sr->ctx, res, error);
	} else if (!PQgetisnull(res, 0, 0)) {
		http_problem(sr->ctx, 400, "endsAt", "%s",
			     PQgetvalue(res, 0, 0));
	} else {
		silence_reply(sr->ctx, 201, res, 1, "created");
	}
	silence_req_free(sr);
}

static void
silence_insert(struct silence_req *sr)
{
	char *matchers = json_dumps(sr->matchers, JSON_COMPACT);
	const char *params[] = {http_auth(sr->ctx)->workspace_id,
				matchers,
				sr->starts[0] != '\0' ? sr->starts : NULL,
				sr->ends,
				sr->created_by,
				sr->comment};

	db_query(http_db(sr->ctx), sql_silence_create, 6, params,
		 silence_created, sr);
	free(matchers);
}

static void check_regexes(struct silence_req *);

static void
regex_checked(PGresult *res, const char *error, void *arg)
{
	struct silence_req *sr = arg;
	json_t *m = json_array_get(sr->matchers, sr->next);
	const char *state =
	    res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char field[48];

	if (error != NULL && (state == NULL || strcmp(state, "2201B") != 0)) {
		http_problem_db(sr->ctx, res, error);
		silence_req_free(sr);
		return;
	}
	if (error != NULL) {
		const char *why =
		    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		snprintf(field, sizeof field, "matchers[%zu].value", sr->next);
		http_problems_add(&sr->errs, field, "%s",
				  why != NULL ? why
					      : "invalid regular expression");
	} else if ((strcmp(PQgetvalue(res, 0, 0), "t") == 0) !=
		   json_is_true(json_object_get(m, "isEqual"))) {
		sr->selective = true;
	}
	sr->next++;
	check_regexes(sr);
}

/*
 * Asks PostgreSQL about the next regular expression, one at a time; after
 * the last, replies with the problems or inserts the silence.
 */
static void
check_regexes(struct silence_req *sr)
{
	json_t *m;

	for (; sr->next < json_array_size(sr->matchers); sr->next++) {
		const char *value;

		m = json_array_get(sr->matchers, sr->next);
		if ((value = json_string_value(json_object_get(m, "value"))) ==
		    NULL)
			continue;
		if (json_is_true(json_object_get(m, "isRegex"))) {
			db_query(http_db(sr->ctx), sql_regex, 1, &value,
				 regex_checked, sr);
			return;
		}
		/* "" equals "", and differs from anything else. */
		if ((*value == '\0') !=
		    json_is_true(json_object_get(m, "isEqual")))
			sr->selective = true;
	}
	if (sr->errs.n == 0 && !sr->selective)
		http_problems_add(&sr->errs, "matchers",
				  "every matcher matches the empty string, so "
				  "the silence would match every alert: give "
				  "at least one that needs a label's value");
	if (sr->errs.n > 0) {
		http_problems_reply(sr->ctx, &sr->errs);
		silence_req_free(sr);
		return;
	}
	silence_insert(sr);
}

static void
silence_create(struct http_ctx *ctx)
{
	json_t *body = http_body_json(ctx);
	struct silence_req *sr;

	if (body == NULL)
		return;
	if (!json_is_object(body)) {
		http_problem(ctx, 400, "body", "expected a JSON object");
		json_decref(body);
		return;
	}
	sr = xcalloc(1, sizeof *sr);
	sr->ctx = ctx;
	sr->errs.details = json_array();
	check_silence(sr, body);
	json_decref(body);
	/* Regexes are checked even when other members are wrong: one 400. */
	check_regexes(sr);
}

/* ---- POST /v1/alerts/reload ---- */

static void
alerts_reload_route(struct http_ctx *ctx)
{
	struct strlist errs = {0};
	const struct rule_set *set;
	json_t *details;

	if (alerts_reload(&errs)) {
		set = alerts_rules();
		log_info("alerts: workspace %s reloaded the configuration and "
			 "rules through the API",
			 http_auth(ctx)->workspace_slug);
		http_reply_json(ctx, 200,
				json_pack("{s:s, s:i}", "status", "ok", "rules",
					  set != NULL ? rules_count(set) : 0));
		strlist_free(&errs);
		return;
	}
	if (errs.n == 0)
		strlist_add(&errs, "the reload failed (no reason given)");
	details = json_array();
	for (size_t i = 0; i < errs.n; i++)
		json_array_append_new(
		    details, json_pack("{s:n, s:o}", "field", "description",
				       http_json_text(errs.v[i])));
	log_warn("alerts: workspace %s: reload through the API failed with "
		 "%zu error%s; the running configuration and rules stay",
		 http_auth(ctx)->workspace_slug, errs.n, errs.n > 1 ? "s" : "");
	if (errs.n > 1)
		http_problem_details(ctx, 422, details,
				     "the reload failed, nothing changed: %s "
				     "(and %zu more, see details)",
				     errs.v[0], errs.n - 1);
	else
		http_problem_details(ctx, 422, details,
				     "the reload failed, nothing changed: %s",
				     errs.v[0]);
	strlist_free(&errs);
}

static const struct route routes[] = {
    {"GET", "/v1/alerts", "alerts:read", alerts_list},
    {"GET", "/v1/alerts/rules", "alerts:read", alerts_rules_list},
    {"GET", "/v1/alerts/history", "alerts:read", alerts_history},
    {"GET", "/v1/alerts/silences", "alerts:read", silences_list},
    {"POST", "/v1/alerts/silences", "alerts:write", silence_create},
    {"GET", "/v1/alerts/silences/{id}", "alerts:read", silence_get},
    {"DELETE", "/v1/alerts/silences/{id}", "alerts:write", silence_expire},
    {"POST", "/v1/alerts/reload", "admin", alerts_reload_route},
};

void
api_alerts_register(struct http_server *srv)
{
	http_add_routes(srv, routes, nitems(routes));
}
