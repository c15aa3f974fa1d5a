/*
 * api_webhooks.c - /v1/webhooks: the Linkbreakers webhook operations (list,
 * create, get, update, delete) and linkpulse's own sub-resources: secret
 * rotation, a test message, the attempt log, replay and re-enabling.
 *
 * Bodies are validated here first, strictly (an unknown member is an
 * error), and every problem is reported at once.  What only the database
 * can tell (the link and tags exist in the workspace, the name is free) is
 * checked by the statement that writes, so most requests are one
 * statement.  POST .../enable is two (lp_webhook_enable, then the read for
 * the reply).  PATCH's status change goes through lp_webhook_hold or
 * lp_webhook_enable, so PATCH is a transaction on one held connection:
 *
 *   BEGIN
 *   update      the members given, unless the endpoint is managed or a
 *               reference is unknown
 *   status      lp_webhook_hold / lp_webhook_enable, if the status changed
 *   read        the endpoint as the reply shows it
 *   COMMIT
 *
 * The endpoint's JSON is built by PostgreSQL (SQL_WEBHOOK), so every route
 * shows the same members in the same order.  Signing secrets are shown
 * once, in the reply that creates them, and never logged.
 *
 * Called through the route table; api_webhooks_configure is called by
 * main.c.  Calls db.c, netguard.c, sign.c and outbox.c's type table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "log.h"
#include "netguard.h"
#include "outbox.h"
#include "sign.h"

#define MAX_HEADERS	  WEBHOOK_MAX_HEADERS
#define MAX_HEADER_NAME	  WEBHOOK_HEADER_NAME_MAX
#define MAX_LIST	  100 /* entries of triggers, eventTypes, tagIds */
#define MAX_RATE	  1000000
#define MAX_OVERLAP_MS	  (365LL * 86400000)
#define MAX_GROUP_MS	  (7LL * 86400000) /* the columns are int ms */
#define DEFAULT_PAGE_SIZE 50
#define MAX_PAGE_SIZE	  500

#define STATUS_ACTIVE	"WEBHOOK_STATUS_ACTIVE"
#define STATUS_DISABLED "WEBHOOK_STATUS_DISABLED"
#define STATUS_PAUSED	"WEBHOOK_STATUS_PAUSED"

/* ---- policy (api_webhooks_configure) ---- */

static const struct netguard *guard;   /* borrowed from main.c */
static struct netguard *default_guard; /* until configured: no exception */
static bool require_https;
static int64_t secret_overlap_ms = 24 * 3600 * 1000LL;

void
api_webhooks_configure(const struct netguard *g, bool https, int64_t overlap)
{
	guard = g;
	require_https = https;
	secret_overlap_ms = overlap;
}

static const struct netguard *
current_guard(void)
{
	struct strlist errs = {0};

	if (guard != NULL)
		return guard;
	if (default_guard == NULL &&
	    (default_guard = netguard_new(NULL, 0, &errs)) == NULL)
		fatal("api_webhooks: cannot make the default network guard");
	strlist_free(&errs);
	return default_guard;
}

/* ---- SQL ---- */

#define SQL_TS(x)                                                              \
	"to_char(" x " AT TIME ZONE 'UTC', "                                   \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* An endpoint (alias e) as the API shows it: Linkbreakers names first. */
#define SQL_WEBHOOK                                                                                    \
	"json_build_object('id', e.id, 'workspaceId', e.workspace_id,"                                 \
	" 'name', e.name, 'description', e.description,"                                               \
	" 'endpointUrl', e.endpoint_url, 'linkId', e.link_id,"                                         \
	" 'triggers', e.triggers, 'source', e.source, 'status', e.status,"                             \
	" 'disabledReason', e.disabled_reason, 'eventTypes', e.event_types,"                           \
	" 'tagIds', e.tag_ids, 'headers', e.headers,"                                                  \
	" 'rateLimitPerSecond', e.rate_limit_per_second,"                                              \
	" 'maxInFlight', e.max_in_flight, 'payload', e.payload,"                                       \
	" 'format', e.format, 'groupWait', e.group_wait_ms,"                                           \
	" 'groupInterval', e.group_interval_ms,"                                                       \
	" 'operational', e.operational,"                                                               \
	" 'managed', e.managed, 'createdBy', e.created_by,"                                            \
	" 'successCount', e.success_count::text,"                                                      \
	" 'failureCount', e.failure_count::text,"                                                      \
	" 'consecutiveFailures', e.consecutive_failures,"                                              \
	" 'failingSince', " SQL_TS(                                                                    \
	    "e.failing_since") ","                                                                     \
			       " 'lastDeliveredAt', " SQL_TS(                                          \
				   "e.last_delivered_at") ","                                          \
							  " 'lastSentAt',"                             \
							  " " SQL_TS(                                  \
							      "e.last_sent_"                           \
							      "at") ","                                \
								    " '"                               \
								    "createdA"                         \
								    "t',"                              \
								    " " SQL_TS(                        \
									"e."                           \
									"crea"                         \
									"ted_"                         \
									"at") ","                      \
									      " 'updatedAt', " SQL_TS( \
										  "e.updated_at") ")::text"

/*
 * References of the validated members (v.j, keyed by column) that are
 * not in workspace $1, as (field, message); at most HTTP_MAX_PROBLEMS.
 */
#define SQL_BAD_REFS                                                           \
	"bad AS ("                                                             \
	" SELECT 'linkId' AS field,"                                           \
	" 'no link with this id in the workspace' AS message FROM v"           \
	" WHERE v.j->>'link_id' IS NOT NULL AND NOT EXISTS (SELECT 1"          \
	" FROM links l WHERE l.workspace_id = $1"                              \
	" AND l.id = (v.j->>'link_id')::uuid)"                                 \
	" UNION ALL"                                                           \
	" SELECT 'tagIds[' || (t.ord - 1) || ']',"                             \
	" 'no tag with this id in the workspace'"                              \
	" FROM v, jsonb_array_elements_text(coalesce(v.j->'tag_ids', '[]'))"   \
	" WITH ORDINALITY AS t(id, ord)"                                       \
	" WHERE NOT EXISTS (SELECT 1 FROM tags g WHERE g.workspace_id = $1"    \
	" AND g.id = t.id::uuid)"                                              \
	" LIMIT 20)"

#define SQL_BAD_JSON                                                           \
	"(SELECT json_agg(json_build_object('field', b.field,"                 \
	" 'description', b.message)) FROM bad b)::text"

static const char sql_list[] =
    "SELECT coalesce(json_agg(w.j ORDER BY w.created_at, w.id), '[]')::text"
    " FROM (SELECT e.created_at, e.id, " SQL_WEBHOOK "::json AS j"
    " FROM webhook_endpoints e WHERE e.workspace_id = $1"
    " AND ($2::text IS NULL OR e.status = $2)) w";

static const char sql_get[] = "SELECT " SQL_WEBHOOK " FROM webhook_endpoints e"
			      " WHERE e.workspace_id = $1 AND e.id = $2";

/*
 * $2: every member, keyed by column; $3 the first secret; $4 the token,
 * whose creator becomes the endpoint's.  Returns (problems, endpoint):
 * nothing is written when there are problems.
 */
static const char sql_create[] =
    "WITH v AS (SELECT $2::jsonb AS j), " SQL_BAD_REFS ", ins AS ("
    " INSERT INTO webhook_endpoints (workspace_id, name, description,"
    " endpoint_url, link_id, triggers, source, status, event_types, tag_ids,"
    " headers, rate_limit_per_second, max_in_flight, payload, format,"
    " group_wait_ms, group_interval_ms, operational, created_by)"
    " SELECT $1, v.j->>'name', v.j->>'description', v.j->>'endpoint_url',"
    " (v.j->>'link_id')::uuid,"
    " array(SELECT jsonb_array_elements_text(v.j->'triggers')),"
    " v.j->>'source', v.j->>'status',"
    " array(SELECT jsonb_array_elements_text(v.j->'event_types')),"
    " array(SELECT jsonb_array_elements_text(v.j->'tag_ids'))::uuid[],"
    " v.j->'headers', (v.j->>'rate_limit_per_second')::int,"
    " (v.j->>'max_in_flight')::int, v.j->>'payload', v.j->>'format',"
    " (v.j->>'group_wait_ms')::int, (v.j->>'group_interval_ms')::int,"
    " (v.j->>'operational')::boolean,"
    " (SELECT t.created_by FROM api_tokens t WHERE t.workspace_id = $1"
    " AND t.id = $4::uuid)"
    " FROM v WHERE NOT EXISTS (SELECT 1 FROM bad)"
    " RETURNING *"
    "), sec AS ("
    " INSERT INTO webhook_secrets (workspace_id, endpoint_id, secret)"
    " SELECT workspace_id, id, $3 FROM ins"
    ") SELECT " SQL_BAD_JSON ", (SELECT " SQL_WEBHOOK " FROM ins e)";

/*
 * $3: the members given, keyed by column: each column takes the member's
 * value if given, else keeps its own.  Returns (managed, status before,
 * problems) for an endpoint of the workspace, no row for another; writes
 * only when it is not managed and there are no problems.  The status
 * itself is left to lp_webhook_hold and lp_webhook_enable.
 */
static const char sql_patch[] =
    "WITH v AS (SELECT $3::jsonb AS j), cur AS ("
    " SELECT e.managed, e.status FROM webhook_endpoints e"
    " WHERE e.workspace_id = $1 AND e.id = $2"
    "), " SQL_BAD_REFS ", upd AS ("
    " UPDATE webhook_endpoints e SET"
    " name = CASE WHEN v.j ? 'name'"
    " THEN v.j->>'name' ELSE e.name END,"
    " description = CASE WHEN v.j ? 'description'"
    " THEN v.j->>'description' ELSE e.description END,"
    " endpoint_url = CASE WHEN v.j ? 'endpoint_url'"
    " THEN v.j->>'endpoint_url' ELSE e.endpoint_url END,"
    " link_id = CASE WHEN v.j ? 'link_id'"
    " THEN (v.j->>'link_id')::uuid ELSE e.link_id END,"
    " triggers = CASE WHEN v.j ? 'triggers'"
    " THEN array(SELECT jsonb_array_elements_text(v.j->'triggers'))"
    " ELSE e.triggers END,"
    " source = CASE WHEN v.j ? 'source'"
    " THEN v.j->>'source' ELSE e.source END,"
    " event_types = CASE WHEN v.j ? 'event_types'"
    " THEN array(SELECT jsonb_array_elements_text(v.j->'event_types'))"
    " ELSE e.event_types END,"
    " tag_ids = CASE WHEN v.j ? 'tag_ids'"
    " THEN array(SELECT jsonb_array_elements_text(v.j->'tag_ids'))::uuid[]"
    " ELSE e.tag_ids END,"
    " headers = CASE WHEN v.j ? 'headers'"
    " THEN v.j->'headers' ELSE e.headers END,"
    " rate_limit_per_second = CASE WHEN v.j ? 'rate_limit_per_second'"
    " THEN (v.j->>'rate_limit_per_second')::int"
    " ELSE e.rate_limit_per_second END,"
    " max_in_flight = CASE WHEN v.j ? 'max_in_flight'"
    " THEN (v.j->>'max_in_flight')::int ELSE e.max_in_flight END,"
    " payload = CASE WHEN v.j ? 'payload'"
    " THEN v.j->>'payload' ELSE e.payload END,"
    " format = CASE WHEN v.j ? 'format'"
    " THEN v.j->>'format' ELSE e.format END,"
    " group_wait_ms = CASE WHEN v.j ? 'group_wait_ms'"
    " THEN (v.j->>'group_wait_ms')::int ELSE e.group_wait_ms END,"
    " group_interval_ms = CASE WHEN v.j ? 'group_interval_ms'"
    " THEN (v.j->>'group_interval_ms')::int ELSE e.group_interval_ms END,"
    " operational = CASE WHEN v.j ? 'operational'"
    " THEN (v.j->>'operational')::boolean ELSE e.operational END,"
    " disabled_reason = CASE"
    " WHEN v.j->>'status' = e.status THEN e.disabled_reason"
    " WHEN v.j->>'status' = 'WEBHOOK_STATUS_DISABLED'"
    " THEN 'disabled through the API'"
    " WHEN v.j->>'status' = 'WEBHOOK_STATUS_PAUSED' THEN NULL"
    " ELSE e.disabled_reason END,"
    " updated_at = CASE WHEN v.j = '{}' THEN e.updated_at ELSE now() END"
    " FROM v WHERE e.workspace_id = $1 AND e.id = $2 AND NOT e.managed"
    " AND NOT EXISTS (SELECT 1 FROM bad)"
    " RETURNING 1"
    ") SELECT cur.managed, cur.status, " SQL_BAD_JSON " FROM cur";

static const char sql_hold[] = "SELECT lp_webhook_hold($1, $2, $3)";
static const char sql_enable[] = "SELECT lp_webhook_enable($1, $2)";

/* Returns (managed, deleted) for an endpoint of the workspace. */
static const char sql_delete[] =
    "WITH del AS ("
    " DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2"
    " AND NOT managed RETURNING 1"
    ") SELECT e.managed, (SELECT count(*) FROM del)"
    " FROM webhook_endpoints e WHERE e.workspace_id = $1 AND e.id = $2";

/*
 * Ends the endpoint's current secrets $4 ms from now (those ending sooner
 * keep their end) and adds $3.  Returns (managed, when they end).
 */
static const char sql_rotate[] =
    "WITH e AS ("
    " SELECT e.id, e.managed FROM webhook_endpoints e"
    " WHERE e.workspace_id = $1 AND e.id = $2 FOR UPDATE"
    "), t AS (SELECT now() + $4::bigint * interval '1 ms' AS until"
    "), aged AS ("
    " UPDATE webhook_secrets s SET expires_at = t.until FROM e, t"
    " WHERE s.workspace_id = $1 AND s.endpoint_id = e.id AND NOT e.managed"
    " AND (s.expires_at IS NULL OR s.expires_at > t.until)"
    "), fresh AS ("
    " INSERT INTO webhook_secrets (workspace_id, endpoint_id, secret)"
    " SELECT $1, e.id, $3 FROM e WHERE NOT e.managed"
    ") SELECT e.managed, " SQL_TS("t.until") " FROM e, t";

/* Returns (status, message id): a message only if the endpoint is active. */
static const char sql_test[] =
    "SELECT e.status, CASE WHEN e.status = '" STATUS_ACTIVE "'"
    " THEN lp_webhook_enqueue($1, array[e.id]::uuid[], 'webhook.test', now(),"
    " jsonb_build_object('endpointId', e.id, 'name', e.name,"
    " 'message', 'This is a test message from linkpulse.')) END"
    " FROM webhook_endpoints e WHERE e.workspace_id = $1 AND e.id = $2";

static const char sql_replay[] =
    "SELECT lp_webhook_replay($1, $2, $3::timestamptz, $4::boolean)";

/*
 * The attempt log, newest first, after the page token $3, at most $4 rows;
 * $5 keeps only succeeded (2xx) or failed attempts.  One row with a NULL
 * id when the endpoint has none, no row when it is not in the workspace.
 */
static const char sql_attempts[] =
    "SELECT a.id, CASE WHEN a.id IS NOT NULL THEN json_build_object("
    " 'id', a.id::text, 'deliveryId', a.delivery_id::text,"
    " 'msgId', a.message_id, 'eventType', a.event_type,"
    " 'attempt', a.attempt, 'attemptedAt', " SQL_TS(
	"a.attempted_at") ","
			  " 'statusCode', a.status_code, 'latencyMs', "
			  "a.latency_ms,"
			  " 'error', a.error, 'responseSnippet', "
			  "a.response_snippet)::text END"
			  " FROM webhook_endpoints e LEFT JOIN LATERAL ("
			  " SELECT a.*, m.event_type FROM webhook_attempts a"
			  " LEFT JOIN webhook_messages m ON m.workspace_id = "
			  "a.workspace_id"
			  " AND m.id = a.message_id"
			  " WHERE a.workspace_id = e.workspace_id AND "
			  "a.endpoint_id = e.id"
			  " AND ($3::bigint IS NULL OR a.id < $3::bigint)"
			  " AND CASE $5::text"
			  " WHEN 'succeeded' THEN coalesce(a.status_code "
			  "BETWEEN 200 AND 299, false)"
			  " WHEN 'failed' THEN NOT coalesce(a.status_code "
			  "BETWEEN 200 AND 299,"
			  " false) ELSE true END"
			  " ORDER BY a.id DESC LIMIT $4::int"
			  ") a ON true"
			  " WHERE e.workspace_id = $1 AND e.id = $2 ORDER BY "
			  "a.id DESC";

/* ---- problems ---- */

static void
not_found(struct http_ctx *ctx)
{
	http_problem(ctx, 404, "id", "no webhook %s in this workspace",
		     http_param(ctx, "id"));
}

static void
managed_conflict(struct http_ctx *ctx)
{
	http_problem(ctx, 409, "id",
		     "webhook %s is declared in the configuration file; "
		     "change it there",
		     http_param(ctx, "id"));
}

/* The endpoint id of the path; replies 400 and returns NULL if malformed. */
static const char *
path_id(struct http_ctx *ctx)
{
	const char *id = http_param(ctx, "id");

	if (id == NULL || !uuid_valid(id)) {
		http_problem(ctx, 400, "id",
			     "'%.64s' is not a webhook id (a UUID)",
			     id ? id : "");
		return NULL;
	}
	return id;
}

/*
 * An endpoint as SQL_WEBHOOK makes it, with the grouping durations shown
 * the way they are written ("30s", "0s"): the columns hold milliseconds.
 */
static json_t *
webhook_json(json_t *w)
{
	static const char *const durations[] = {"groupWait", "groupInterval"};
	char buf[64];

	for (size_t i = 0; w != NULL && i < nitems(durations); i++) {
		json_t *v = json_object_get(w, durations[i]);

		if (!json_is_integer(v))
			continue;
		if (json_integer_value(v) == 0)
			snprintf(buf, sizeof buf, "0s");
		else
			format_duration(json_integer_value(v), buf, sizeof buf);
		json_object_set_new(w, durations[i], json_string(buf));
	}
	return w;
}

/* ---- validation ---- */

static const char *const trigger_kinds[] = {
    "KIND_UNSPECIFIED", "KIND_ENTRY",	  "KIND_EXIT",
    "KIND_INTERACTION", "KIND_CONDITION", NULL};
static const char *const sources[] = {
    "WEBHOOK_SOURCE_UNSPECIFIED", "WEBHOOK_SOURCE_LINKBREAKERS",
    "WEBHOOK_SOURCE_MAKE", "WEBHOOK_SOURCE_ZAPIER", NULL};
static const char *const statuses[] = {STATUS_ACTIVE, STATUS_DISABLED,
				       STATUS_PAUSED, NULL};
static const char *const payloads[] = {"full", "thin", NULL};
static const char *const formats[] = {"standard", "alertmanager", NULL};
static const char *const attempt_states[] = {"succeeded", "failed", NULL};

enum member_kind {
	M_TEXT,	       /* string of min..max characters */
	M_URL,	       /* the endpoint URL, through the network guard */
	M_UUID,	       /* a UUID, or "" for none */
	M_ENUM,	       /* one of choices */
	M_ENUM_ARRAY,  /* an array of choices */
	M_EVENT_TYPES, /* a non-empty array of type patterns */
	M_UUID_ARRAY,  /* an array of UUIDs */
	M_HEADERS,     /* an object of static request headers */
	M_INT,	       /* an integer in min..max */
	M_BOOL,
	M_SECRET,   /* a signing secret */
	M_DURATION, /* "30s", "5m": milliseconds from min to max */
};

#define ON_CREATE 0x1
#define ON_PATCH  0x2
#define REQUIRED  0x4 /* on create */
#define NULLABLE  0x8

struct member {
	const char *name;   /* in the body */
	const char *column; /* in the validated object the SQL reads */
	enum member_kind kind;
	int flags;
	long long min, max;
	const char *const *choices;
};

static const struct member members[] = {
    {"name", "name", M_TEXT, ON_CREATE | ON_PATCH | REQUIRED, 1, 200, NULL},
    {"description", "description", M_TEXT, ON_CREATE | ON_PATCH | NULLABLE, 0,
     2000, NULL},
    {"endpointUrl", "endpoint_url", M_URL, ON_CREATE | ON_PATCH | REQUIRED, 1,
     2048, NULL},
    {"linkId", "link_id", M_UUID, ON_CREATE | ON_PATCH | NULLABLE, 0, 0, NULL},
    {"triggers", "triggers", M_ENUM_ARRAY, ON_CREATE | ON_PATCH, 0, 0,
     trigger_kinds},
    {"source", "source", M_ENUM, ON_CREATE | ON_PATCH, 0, 0, sources},
    {"status", "status", M_ENUM, ON_CREATE | ON_PATCH, 0, 0, statuses},
    {"eventTypes", "event_types", M_EVENT_TYPES, ON_CREATE | ON_PATCH, 0, 0,
     NULL},
    {"tagIds", "tag_ids", M_UUID_ARRAY, ON_CREATE | ON_PATCH, 0, 0, NULL},
    {"headers", "headers", M_HEADERS, ON_CREATE | ON_PATCH, 0, 0, NULL},
    {"rateLimitPerSecond", "rate_limit_per_second", M_INT,
     ON_CREATE | ON_PATCH | NULLABLE, 1, MAX_RATE, NULL},
    {"maxInFlight", "max_in_flight", M_INT, ON_CREATE | ON_PATCH, 1, 1000,
     NULL},
    {"payload", "payload", M_ENUM, ON_CREATE | ON_PATCH, 0, 0, payloads},
    {"format", "format", M_ENUM, ON_CREATE | ON_PATCH, 0, 0, formats},
    {"groupWait", "group_wait_ms", M_DURATION, ON_CREATE | ON_PATCH, 0,
     MAX_GROUP_MS, NULL},
    {"groupInterval", "group_interval_ms", M_DURATION, ON_CREATE | ON_PATCH, 0,
     MAX_GROUP_MS, NULL},
    {"operational", "operational", M_BOOL, ON_CREATE | ON_PATCH, 0, 0, NULL},
    {"secret", "secret", M_SECRET, ON_CREATE, 0, 0, NULL},
};

/* What create stores for the members the body leaves out (JSON). */
static const struct {
	const char *column;
	const char *value;
} create_defaults[] = {
    {"description", "null"},
    {"link_id", "null"},
    {"triggers", "[]"},
    {"source", "\"WEBHOOK_SOURCE_LINKBREAKERS\""},
    {"status", "\"" STATUS_ACTIVE "\""},
    {"event_types", "[\"scan.created\"]"},
    {"tag_ids", "[]"},
    {"headers", "{}"},
    {"rate_limit_per_second", "null"},
    {"max_in_flight", "10"},
    {"payload", "\"full\""},
    {"format", "\"standard\""},
    {"group_wait_ms", "0"},
    {"group_interval_ms", "0"},
    {"operational", "false"},
};

static int
choice_index(const char *const *choices, const char *s)
{
	for (int i = 0; s != NULL && choices[i] != NULL; i++) {
		if (strcmp(s, choices[i]) == 0)
			return i;
	}
	return -1;
}

static void
choices_error(struct http_problems *errs, const char *field,
	      const char *const *choices)
{
	char list[512] = "";
	size_t off = 0;

	for (int i = 0; choices[i] != NULL && off < sizeof list; i++)
		off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
					i ? ", " : "", choices[i]);
	http_problems_add(errs, field, "expected one of %s", list);
}

static void
unknown_member(struct http_problems *errs, const char *name, int where)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	char field[80];

	snprintf(field, sizeof field, "%.64s", name);
	if (strlen(name) <= 64) {
		for (size_t i = 0; i < nitems(members); i++) {
			size_t d;

			if (!(members[i].flags & where))
				continue;
			d = levenshtein(name, members[i].name);
			if (d < best_d) {
				best_d = d;
				best = members[i].name;
			}
		}
	}
	if (best != NULL && best_d <= 2)
		http_problems_add(errs, field,
				  "unknown member '%s'; did you mean '%s'?",
				  field, best);
	else
		http_problems_add(errs, field, "unknown member '%s'", field);
}

static json_t *
check_headers(struct http_problems *errs, json_t *v)
{
	const char *name;
	json_t *value;
	int before = errs->n;

	if (!json_is_object(v)) {
		http_problems_add(
		    errs, "headers",
		    "expected an object of header names and string "
		    "values");
		return NULL;
	}
	if (json_object_size(v) > MAX_HEADERS) {
		http_problems_add(errs, "headers",
				  "at most %d headers, not %zu", MAX_HEADERS,
				  json_object_size(v));
		return NULL;
	}
	json_object_foreach(v, name, value)
	{
		char field[160];
		const char *s = http_json_plain_string(value);
		const char *other, *why;
		json_t *o;

		snprintf(field, sizeof field, "headers.%.*s", MAX_HEADER_NAME,
			 name);
		if ((why = webhook_header_check(name, NULL)) != NULL) {
			http_problems_add(errs, field, "%s", why);
			continue;
		}
		json_object_foreach(v, other, o)
		{
			if (other == name)
				break;
			if (strcasecmp(other, name) == 0) {
				http_problems_add(
				    errs, field,
				    "repeats header '%.*s' (names are "
				    "case-insensitive)",
				    MAX_HEADER_NAME, other);
				break;
			}
		}
		if (s == NULL)
			http_problems_add(errs, field,
					  "expected a string value");
		else if ((why = webhook_header_check(name, s)) != NULL)
			http_problems_add(errs, field, "%s", why);
	}
	return errs->n > before ? NULL : json_incref(v);
}

/* An array member: each entry through check, errors naming "name[i]". */
static json_t *
check_array(struct http_problems *errs, const struct member *m, json_t *v)
{
	json_t *out, *item;
	int before = errs->n;
	size_t i;

	if (!json_is_array(v)) {
		http_problems_add(errs, m->name, "expected an array");
		return NULL;
	}
	if (json_array_size(v) > MAX_LIST) {
		http_problems_add(errs, m->name, "at most %d entries, not %zu",
				  MAX_LIST, json_array_size(v));
		return NULL;
	}
	if (m->kind == M_EVENT_TYPES && json_array_size(v) == 0) {
		http_problems_add(
		    errs, m->name,
		    "must name at least one event type (\"*\" for all)");
		return NULL;
	}
	out = json_array();
	json_array_foreach(v, i, item)
	{
		const char *s = http_json_plain_string(item);
		char field[48];

		snprintf(field, sizeof field, "%s[%zu]", m->name, i);
		switch (m->kind) {
		case M_ENUM_ARRAY:
			if (choice_index(m->choices, s) < 0)
				choices_error(errs, field, m->choices);
			break;
		case M_EVENT_TYPES:
			if (s == NULL) {
				http_problems_add(errs, field,
						  "expected a string");
			} else if (!webhook_type_pattern_valid(s)) {
				http_problems_add(
				    errs, field,
				    "unknown event type '%.64s'; known "
				    "types: %s (or \"*\", or a prefix "
				    "such as \"scan.*\")",
				    s, webhook_type_list());
			}
			break;
		default: /* M_UUID_ARRAY */
			if (s == NULL || !uuid_valid(s))
				http_problems_add(errs, field,
						  "expected a UUID");
			break;
		}
		json_array_append(out, item);
	}
	if (errs->n > before) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* The validated value of one member (new reference), or NULL on error. */
static json_t *
check_member(struct http_problems *errs, const struct member *m, json_t *v)
{
	const char *s = http_json_plain_string(v);
	char buf[256];
	const char *why;
	int64_t ms;

	if (json_is_null(v)) {
		if (m->flags & NULLABLE)
			return json_null();
		http_problems_add(errs, m->name, "must not be null");
		return NULL;
	}
	switch (m->kind) {
	case M_TEXT:
	case M_URL:
		if (s == NULL) {
			http_problems_add(errs, m->name, "expected a string");
		} else if (utf8_length(s) < (size_t)m->min) {
			http_problems_add(errs, m->name, "must not be empty");
		} else if (utf8_length(s) > (size_t)m->max) {
			http_problems_add(errs, m->name,
					  "is longer than %lld characters",
					  m->max);
		} else if (m->kind == M_URL &&
			   (why = netguard_check_url(current_guard(), s,
						     require_https, buf,
						     sizeof buf)) != NULL) {
			http_problems_add(errs, m->name, "%s", why);
		} else {
			return json_string(s);
		}
		return NULL;
	case M_UUID:
		if (s != NULL && *s == '\0')
			return json_null();
		if (s == NULL || !uuid_valid(s)) {
			http_problems_add(
			    errs, m->name,
			    "expected a UUID like "
			    "\"123e4567-e89b-12d3-a456-426614174000\"");
			return NULL;
		}
		return json_string(s);
	case M_ENUM:
		if (choice_index(m->choices, s) < 0) {
			choices_error(errs, m->name, m->choices);
			return NULL;
		}
		/* "Not specified" is the Linkbreakers default. */
		if (strcmp(s, "WEBHOOK_SOURCE_UNSPECIFIED") == 0)
			return json_string("WEBHOOK_SOURCE_LINKBREAKERS");
		return json_string(s);
	case M_ENUM_ARRAY:
	case M_EVENT_TYPES:
	case M_UUID_ARRAY:
		return check_array(errs, m, v);
	case M_HEADERS:
		return check_headers(errs, v);
	case M_INT:
		if (!json_is_integer(v) || json_integer_value(v) < m->min ||
		    json_integer_value(v) > m->max) {
			http_problems_add(errs, m->name,
					  "expected an integer from %lld "
					  "to %lld%s",
					  m->min, m->max,
					  (m->flags & NULLABLE) ? ", or null"
								: "");
			return NULL;
		}
		return json_integer(json_integer_value(v));
	case M_BOOL:
		if (!json_is_boolean(v)) {
			http_problems_add(errs, m->name,
					  "expected true or false");
			return NULL;
		}
		return json_boolean(json_is_true(v));
	case M_SECRET:
		if (s == NULL || !sign_secret_valid(s)) {
			http_problems_add(
			    errs, m->name,
			    "expected \"whsec_\" followed by the base64 "
			    "of %d to %d random bytes",
			    SIGN_KEY_MIN, SIGN_KEY_MAX);
			return NULL;
		}
		return json_string(s);
	case M_DURATION:
		if (s == NULL || parse_duration_ms(s, &ms) != 0 ||
		    ms < m->min || ms > m->max) {
			format_duration(m->max, buf, sizeof buf);
			http_problems_add(errs, m->name,
					  "expected a duration from \"0s\" to "
					  "\"%s\" such as \"30s\" or \"5m\"",
					  buf);
			return NULL;
		}
		return json_integer(ms);
	}
	return NULL;
}

/*
 * The body's members as an object keyed by column (create: with the
 * defaults of the members left out).  NULL after adding to errs.
 */
static json_t *
validate_body(struct http_problems *errs, json_t *body, int where)
{
	json_t *out = json_object(), *v;
	const char *name;

	json_object_foreach(body, name, v)
	{
		const struct member *m = NULL;
		json_t *value;

		for (size_t i = 0; i < nitems(members); i++) {
			if (strcmp(members[i].name, name) == 0)
				m = &members[i];
		}
		if (m != NULL && m->kind == M_SECRET && where == ON_PATCH) {
			http_problems_add(errs, name,
					  "cannot be changed here: use POST "
					  "/v1/webhooks/{id}/rotate-secret");
			continue;
		}
		if (m == NULL || !(m->flags & where)) {
			unknown_member(errs, name, where);
			continue;
		}
		if ((value = check_member(errs, m, v)) != NULL)
			json_object_set_new(out, m->column, value);
	}
	if (where == ON_CREATE) {
		for (size_t i = 0; i < nitems(members); i++) {
			if ((members[i].flags & REQUIRED) &&
			    json_object_get(body, members[i].name) == NULL)
				http_problems_add(errs, members[i].name,
						  "is required");
		}
		for (size_t i = 0; i < nitems(create_defaults); i++) {
			if (json_object_get(out, create_defaults[i].column) ==
			    NULL)
				json_object_set_new(
				    out, create_defaults[i].column,
				    json_loads(create_defaults[i].value,
					       JSON_DECODE_ANY, NULL));
		}
	}
	if (errs->n > 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* The body as a JSON object; replies 400 itself and returns NULL. */
static json_t *
body_object(struct http_ctx *ctx)
{
	json_t *body = http_body_json(ctx);

	if (body != NULL && !json_is_object(body)) {
		http_problem(ctx, 400, "body", "expected a JSON object");
		json_decref(body);
		return NULL;
	}
	return body;
}

/* ---- a request that needs more than one query ---- */

struct wreq {
	struct http_ctx *ctx;
	struct db_conn *conn; /* PATCH: held for the transaction */
	json_t *values;	      /* validated members, keyed by column */
	char *text;	      /* values as the statement reads them */
	char *secret;	      /* create: the first signing secret */
	json_t *webhook;      /* the reply's endpoint, once read */
	long long requeued;   /* enable: deliveries due again; -1: none */
};

static struct wreq *
wreq_new(struct http_ctx *ctx, json_t *values /* stolen */)
{
	struct wreq *w = xcalloc(1, sizeof *w);

	w->ctx = ctx;
	w->values = values;
	if (values != NULL)
		w->text = json_dumps(values, JSON_COMPACT);
	w->requeued = -1;
	return w;
}

static void
wreq_free(struct wreq *w)
{
	json_decref(w->values);
	free(w->text);
	if (w->secret != NULL) {
		explicit_bzero(w->secret, strlen(w->secret));
		free(w->secret);
	}
	json_decref(w->webhook);
	free(w);
}

/*
 * Ends the request after a failed query (a held connection is released,
 * its transaction rolled back).  A name taken is a 409.
 */
static void
wreq_fail(struct wreq *w, PGresult *res, const char *error)
{
	const char *state =
	    res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (w->conn != NULL)
		db_release(w->conn);
	if (state != NULL && strcmp(state, "23505") == 0)
		http_problem(
		    w->ctx, 409, "name",
		    "a webhook named '%s' already exists in this "
		    "workspace",
		    json_string_value(json_object_get(w->values, "name")));
	else
		http_problem_db(w->ctx, res, error);
	wreq_free(w);
}

/* The problems a statement found, as a 400; false if there were none. */
static bool
reply_bad_refs(struct http_ctx *ctx, PGresult *res, int col)
{
	struct http_problems errs = {NULL, 0};

	errs.details = http_sql_json(res, 0, col);
	if (errs.details == NULL || json_array_size(errs.details) == 0) {
		json_decref(errs.details);
		return false;
	}
	errs.n = (int)json_array_size(errs.details);
	http_problems_reply(ctx, &errs);
	json_decref(errs.details);
	return true;
}

static void
wreq_reply(struct wreq *w)
{
	json_t *body = json_pack("{s:O}", "webhook", w->webhook);

	if (w->requeued >= 0)
		json_object_set_new(body, "requeued",
				    json_integer(w->requeued));
	http_reply_json(w->ctx, 200, body);
	wreq_free(w);
}

static void
committed(PGresult *res, const char *error, void *arg)
{
	struct wreq *w = arg;

	if (error != NULL) {
		wreq_fail(w, res, error);
		return;
	}
	db_release(w->conn);
	w->conn = NULL;
	wreq_reply(w);
}

static void
webhook_read(PGresult *res, const char *error, void *arg)
{
	struct wreq *w = arg;

	if (error != NULL) {
		wreq_fail(w, res, error);
		return;
	}
	if (PQntuples(res) != 1) {
		if (w->conn != NULL)
			db_release(w->conn);
		not_found(w->ctx);
		wreq_free(w);
		return;
	}
	if ((w->webhook = webhook_json(http_sql_json(res, 0, 0))) == NULL) {
		wreq_fail(w, res, "the endpoint's JSON does not parse");
		return;
	}
	if (w->conn != NULL)
		db_conn_query(w->conn, 0, "COMMIT", 0, NULL, committed, w);
	else
		wreq_reply(w);
}

/* Reads the endpoint for the reply: in the transaction, if one is open. */
static void
read_webhook(struct wreq *w)
{
	const char *params[] = {http_auth(w->ctx)->workspace_id,
				http_param(w->ctx, "id")};

	if (w->conn != NULL)
		db_conn_query(w->conn, 0, sql_get, 2, params, webhook_read, w);
	else
		db_query(http_db(w->ctx), sql_get, 2, params, webhook_read, w);
}

/* ---- GET /v1/webhooks ---- */

static void
list_done(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;
	json_t *list, *w;
	size_t i;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if ((list = http_sql_json(res, 0, 0)) == NULL) {
		http_problem(ctx, 500, NULL, "internal error");
		return;
	}
	json_array_foreach(list, i, w)
	{
		webhook_json(w);
	}
	http_reply_json(ctx, 200, json_pack("{s:o}", "webhooks", list));
}

static void
webhooks_list(struct http_ctx *ctx)
{
	const char *status = http_query(ctx, "status");
	const char *params[2];

	if (status != NULL && strcmp(status, "WEBHOOK_STATUS_UNSPECIFIED") == 0)
		status = NULL;
	if (status != NULL && choice_index(statuses, status) < 0) {
		http_problem(ctx, 400, "status",
			     "unknown status '%.64s': expected one of "
			     "%s, %s, %s",
			     status, STATUS_ACTIVE, STATUS_DISABLED,
			     STATUS_PAUSED);
		return;
	}
	params[0] = http_auth(ctx)->workspace_id;
	params[1] = status;
	db_query(http_db(ctx), sql_list, 2, params, list_done, ctx);
}

/* ---- POST /v1/webhooks ---- */

static void
created(PGresult *res, const char *error, void *arg)
{
	struct wreq *w = arg;
	json_t *webhook;

	if (error != NULL) {
		wreq_fail(w, res, error);
		return;
	}
	if (reply_bad_refs(w->ctx, res, 0)) {
		wreq_free(w);
		return;
	}
	if ((webhook = webhook_json(http_sql_json(res, 0, 1))) == NULL) {
		wreq_fail(w, res, "the new endpoint's JSON does not parse");
		return;
	}
	/* The only reply that ever shows the secret. */
	json_object_set_new(webhook, "secret", json_string(w->secret));
	log_info("webhooks: workspace %s: webhook %s created",
		 http_auth(w->ctx)->workspace_slug,
		 json_string_value(json_object_get(webhook, "id")));
	http_reply_json(w->ctx, 200, json_pack("{s:o}", "webhook", webhook));
	wreq_free(w);
}

static void
webhooks_create(struct http_ctx *ctx)
{
	struct http_problems errs = {json_array(), 0};
	json_t *body, *values, *secret;
	const char *params[4];
	struct wreq *w;

	if ((body = body_object(ctx)) == NULL)
		goto out;
	if ((values = validate_body(&errs, body, ON_CREATE)) == NULL) {
		http_problems_reply(ctx, &errs);
		goto out;
	}
	w = wreq_new(ctx, NULL);
	/* The secret never goes into the statement's JSON (or a log). */
	secret = json_object_get(values, "secret");
	w->secret = secret != NULL ? xstrdup(json_string_value(secret))
				   : sign_secret_generate();
	json_object_del(values, "secret");
	w->values = values;
	w->text = json_dumps(values, JSON_COMPACT);
	params[0] = http_auth(ctx)->workspace_id;
	params[1] = w->text;
	params[2] = w->secret;
	params[3] = http_auth(ctx)->token_id;
	db_query(http_db(ctx), sql_create, 4, params, created, w);
out:
	json_decref(body);
	json_decref(errs.details);
}

/* ---- GET /v1/webhooks/{id} ---- */

static void
webhook_get(struct http_ctx *ctx)
{
	if (path_id(ctx) == NULL)
		return;
	read_webhook(wreq_new(ctx, NULL));
}

/* ---- PATCH /v1/webhooks/{id} ---- */

static void
status_changed(PGresult *res, const char *error, void *arg)
{
	struct wreq *w = arg;

	if (error != NULL) {
		wreq_fail(w, res, error);
		return;
	}
	read_webhook(w);
}

static void
patched(PGresult *res, const char *error, void *arg)
{
	struct wreq *w = arg;
	const char *status, *before;

	if (error != NULL) {
		wreq_fail(w, res, error);
		return;
	}
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		db_release(w->conn);
		if (PQntuples(res) != 1)
			not_found(w->ctx);
		else
			managed_conflict(w->ctx);
		wreq_free(w);
		return;
	}
	if (reply_bad_refs(w->ctx, res, 2)) {
		db_release(w->conn);
		wreq_free(w);
		return;
	}
	status = json_string_value(json_object_get(w->values, "status"));
	before = PQgetvalue(res, 0, 1);
	if (status != NULL && strcmp(status, before) != 0) {
		const char *params[] = {http_auth(w->ctx)->workspace_id,
					http_param(w->ctx, "id"), status};
		bool enable = strcmp(status, STATUS_ACTIVE) == 0;

		log_info("webhooks: workspace %s: webhook %s: %s -> %s "
			 "through the API",
			 http_auth(w->ctx)->workspace_slug, params[1], before,
			 status);
		db_conn_query(w->conn, 0, enable ? sql_enable : sql_hold,
			      enable ? 2 : 3, params, status_changed, w);
		return;
	}
	read_webhook(w);
}

static void
patch_begun(PGresult *res, const char *error, void *arg)
{
	struct wreq *w = arg;
	const char *params[] = {http_auth(w->ctx)->workspace_id,
				http_param(w->ctx, "id"), w->text};

	if (error != NULL) {
		wreq_fail(w, res, error);
		return;
	}
	db_conn_query(w->conn, 0, sql_patch, 3, params, patched, w);
}

static void
patch_conn(struct db_conn *conn, void *arg)
{
	struct wreq *w = arg;

	if (conn == NULL) {
		http_problem(w->ctx, 503, NULL, "the server is shutting down");
		wreq_free(w);
		return;
	}
	w->conn = conn;
	db_conn_query(conn, 0, "BEGIN", 0, NULL, patch_begun, w);
}

static void
webhook_patch(struct http_ctx *ctx)
{
	struct http_problems errs = {json_array(), 0};
	json_t *body = NULL, *values;

	if (path_id(ctx) == NULL || (body = body_object(ctx)) == NULL)
		goto out;
	if ((values = validate_body(&errs, body, ON_PATCH)) == NULL) {
		http_problems_reply(ctx, &errs);
		goto out;
	}
	db_acquire(http_db(ctx), patch_conn, wreq_new(ctx, values));
out:
	json_decref(body);
	json_decref(errs.details);
}

/* ---- DELETE /v1/webhooks/{id} ---- */

static void
deleted(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		managed_conflict(ctx);
		return;
	}
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 1), "1") != 0) {
		not_found(ctx);
		return;
	}
	log_info("webhooks: workspace %s: webhook %s deleted",
		 http_auth(ctx)->workspace_slug, http_param(ctx, "id"));
	http_reply_json(ctx, 200, json_object());
}

static void
webhook_delete(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id, path_id(ctx)};

	if (params[1] == NULL)
		return;
	db_query(http_db(ctx), sql_delete, 2, params, deleted, ctx);
}

/* ---- POST /v1/webhooks/{id}/rotate-secret ---- */

static void
rotated(PGresult *res, const char *error, void *arg)
{
	struct wreq *w = arg;

	if (error != NULL) {
		wreq_fail(w, res, error);
		return;
	}
	if (PQntuples(res) != 1) {
		not_found(w->ctx);
	} else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		managed_conflict(w->ctx);
	} else {
		log_info("webhooks: workspace %s: webhook %s: secret rotated, "
			 "the previous ones end at %s",
			 http_auth(w->ctx)->workspace_slug,
			 http_param(w->ctx, "id"), PQgetvalue(res, 0, 1));
		http_reply_json(w->ctx, 200,
				json_pack("{s:s, s:s}", "secret", w->secret,
					  "previousSecretsExpireAt",
					  PQgetvalue(res, 0, 1)));
	}
	wreq_free(w);
}

static void
webhook_rotate(struct http_ctx *ctx)
{
	int64_t overlap = secret_overlap_ms;
	json_t *body = NULL, *v;
	const char *name, *s;
	char ms[32];
	const char *params[4];
	struct wreq *w;

	if (path_id(ctx) == NULL)
		return;
	if (evbuffer_get_length(http_body(ctx)) > 0) {
		if ((body = body_object(ctx)) == NULL)
			return;
		json_object_foreach(body, name, v)
		{
			if (strcmp(name, "overlap") != 0) {
				http_problem(ctx, 400, name,
					     "unknown member '%.64s' (the "
					     "body may give \"overlap\")",
					     name);
				goto out;
			}
			if ((s = http_json_plain_string(v)) == NULL ||
			    parse_duration_ms(s, &overlap) != 0) {
				http_problem(ctx, 400, "overlap",
					     "expected a duration such as "
					     "\"24h\", \"30m\" or \"0s\"");
				goto out;
			}
			if (overlap > MAX_OVERLAP_MS) {
				http_problem(ctx, 400, "overlap",
					     "at most 365d");
				goto out;
			}
		}
	}
	w = wreq_new(ctx, NULL);
	w->secret = sign_secret_generate();
	snprintf(ms, sizeof ms, "%lld", (long long)overlap);
	params[0] = http_auth(ctx)->workspace_id;
	params[1] = http_param(ctx, "id");
	params[2] = w->secret;
	params[3] = ms;
	db_query(http_db(ctx), sql_rotate, 4, params, rotated, w);
out:
	json_decref(body);
}

/* ---- POST /v1/webhooks/{id}/test ---- */

static void
tested(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if (PQntuples(res) != 1) {
		not_found(ctx);
		return;
	}
	if (PQgetisnull(res, 0, 1)) {
		http_problem(ctx, 409, "status",
			     "webhook %s is %s: only an active webhook can be "
			     "tested (enable it first)",
			     http_param(ctx, "id"), PQgetvalue(res, 0, 0));
		return;
	}
	http_reply_json(ctx, 202,
			json_pack("{s:s, s:s}", "msgId", PQgetvalue(res, 0, 1),
				  "eventType", "webhook.test"));
}

static void
webhook_test(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id, path_id(ctx)};

	if (params[1] == NULL)
		return;
	db_query(http_db(ctx), sql_test, 2, params, tested, ctx);
}

/* ---- GET /v1/webhooks/{id}/deliveries ---- */

struct page {
	struct http_ctx *ctx;
	int size;
};

static void
attempts_done(PGresult *res, const char *error, void *arg)
{
	struct page *pg = arg;
	struct http_ctx *ctx = pg->ctx;
	int size = pg->size, n;
	json_t *list;
	const char *next = "";

	free(pg);
	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if (PQntuples(res) == 0) {
		not_found(ctx);
		return;
	}
	list = json_array();
	n = PQgetisnull(res, 0, 0) ? 0 : PQntuples(res);
	for (int i = 0; i < n && i < size; i++) {
		json_t *a = http_sql_json(res, i, 1);

		if (a == NULL) {
			json_decref(list);
			http_problem(ctx, 500, NULL, "internal error");
			return;
		}
		json_array_append_new(list, a);
	}
	/* One row more than the page: there is a next page. */
	if (n > size)
		next = PQgetvalue(res, size - 1, 0);
	http_reply_json(
	    ctx, 200,
	    json_pack("{s:o, s:s}", "attempts", list, "nextPageToken", next));
}

/* A page token: the id of the last attempt shown, in plain digits. */
static bool
page_token_valid(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n > 0 && n <= 18 && s[n] == '\0' && s[0] != '0';
}

static void
webhook_deliveries(struct http_ctx *ctx)
{
	const char *size_s = http_query(ctx, "pageSize");
	const char *token = http_query(ctx, "pageToken");
	const char *state = http_query(ctx, "state");
	const char *params[5];
	char limit[16];
	struct page *pg;
	int size = DEFAULT_PAGE_SIZE;

	if (path_id(ctx) == NULL)
		return;
	if (size_s != NULL) {
		size_t n = strspn(size_s, "0123456789");

		size = n > 0 && n <= 4 && size_s[n] == '\0' ? atoi(size_s) : -1;
		if (size < 1 || size > MAX_PAGE_SIZE) {
			http_problem(ctx, 400, "pageSize",
				     "expected an integer from 1 to %d",
				     MAX_PAGE_SIZE);
			return;
		}
	}
	if (token != NULL && *token == '\0')
		token = NULL;
	if (token != NULL && !page_token_valid(token)) {
		http_problem(ctx, 400, "pageToken",
			     "not a page token: pass the nextPageToken of the "
			     "previous page");
		return;
	}
	if (state != NULL && choice_index(attempt_states, state) < 0) {
		http_problem(ctx, 400, "state",
			     "expected one of succeeded, failed");
		return;
	}
	snprintf(limit, sizeof limit, "%d", size + 1);
	params[0] = http_auth(ctx)->workspace_id;
	params[1] = http_param(ctx, "id");
	params[2] = token;
	params[3] = limit;
	params[4] = state;
	pg = xcalloc(1, sizeof *pg);
	pg->ctx = ctx;
	pg->size = size;
	db_query(http_db(ctx), sql_attempts, 5, params, attempts_done, pg);
}

/* ---- POST /v1/webhooks/{id}/replay ---- */

static void
replayed(PGresult *res, const char *error, void *arg)
{
	struct http_ctx *ctx = arg;

	if (error != NULL) {
		http_problem_db(ctx, res, error);
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		not_found(ctx);
		return;
	}
	log_info("webhooks: workspace %s: webhook %s: %s deliveries replayed",
		 http_auth(ctx)->workspace_slug, http_param(ctx, "id"),
		 PQgetvalue(res, 0, 0));
	http_reply_json(ctx, 202,
			json_pack("{s:I}", "queued",
				  (json_int_t)atoll(PQgetvalue(res, 0, 0))));
}

static void
webhook_replay(struct http_ctx *ctx)
{
	struct http_problems errs = {json_array(), 0};
	json_t *body = NULL, *v;
	const char *name, *s;
	char since[64] = "";
	bool failed_only = false;
	const char *params[4];

	if (path_id(ctx) == NULL || (body = body_object(ctx)) == NULL)
		goto out;
	json_object_foreach(body, name, v)
	{
		if (strcmp(name, "since") == 0) {
			if ((s = http_json_plain_string(v)) == NULL ||
			    !rfc3339_valid(s, since, sizeof since))
				http_problems_add(
				    &errs, "since",
				    "expected an RFC 3339 date-time like "
				    "\"2026-01-02T03:04:05Z\"");
		} else if (strcmp(name, "failedOnly") == 0) {
			if (!json_is_boolean(v))
				http_problems_add(&errs, "failedOnly",
						  "expected true or false");
			failed_only = json_is_true(v);
		} else {
			char field[80];

			snprintf(field, sizeof field, "%.64s", name);
			http_problems_add(
			    &errs, field,
			    "unknown member '%s' (the body may give "
			    "\"since\" and \"failedOnly\")",
			    field);
		}
	}
	if (errs.n == 0 && since[0] == '\0' && !failed_only)
		http_problems_add(
		    &errs, "since",
		    "give \"since\" (replay what was sent since then), "
		    "\"failedOnly\": true (replay what failed), or both");
	if (errs.n > 0) {
		http_problems_reply(ctx, &errs);
		goto out;
	}
	params[0] = http_auth(ctx)->workspace_id;
	params[1] = http_param(ctx, "id");
	params[2] = since[0] ? since : NULL;
	params[3] = failed_only ? "true" : "false";
	db_query(http_db(ctx), sql_replay, 4, params, replayed, ctx);
out:
	json_decref(body);
	json_decref(errs.details);
}

/* ---- POST /v1/webhooks/{id}/enable ---- */

static void
enabled(PGresult *res, const char *error, void *arg)
{
	struct wreq *w = arg;

	if (error != NULL) {
		wreq_fail(w, res, error);
		return;
	}
	if (PQgetisnull(res, 0, 0)) {
		not_found(w->ctx);
		wreq_free(w);
		return;
	}
	w->requeued = atoll(PQgetvalue(res, 0, 0));
	log_info("webhooks: workspace %s: webhook %s enabled, %lld deliveries "
		 "due again",
		 http_auth(w->ctx)->workspace_slug, http_param(w->ctx, "id"),
		 w->requeued);
	read_webhook(w);
}

static void
webhook_enable(struct http_ctx *ctx)
{
	const char *params[] = {http_auth(ctx)->workspace_id, path_id(ctx)};

	if (params[1] == NULL)
		return;
	db_query(http_db(ctx), sql_enable, 2, params, enabled,
		 wreq_new(ctx, NULL));
}

static const struct route routes[] = {
    {"GET", "/v1/webhooks", "webhooks:read", webhooks_list},
    {"POST", "/v1/webhooks", "webhooks:write", webhooks_create},
    {"GET", "/v1/webhooks/{id}", "webhooks:read", webhook_get},
    {"PATCH", "/v1/webhooks/{id}", "webhooks:write", webhook_patch},
    {"DELETE", "/v1/webhooks/{id}", "webhooks:write", webhook_delete},
    {"POST", "/v1/webhooks/{id}/rotate-secret", "webhooks:write",
     webhook_rotate},
    {"POST", "/v1/webhooks/{id}/test", "webhooks:write", webhook_test},
    {"GET", "/v1/webhooks/{id}/deliveries", "webhooks:read",
     webhook_deliveries},
    {"POST", "/v1/webhooks/{id}/replay", "webhooks:write", webhook_replay},
    {"POST", "/v1/webhooks/{id}/enable", "webhooks:write", webhook_enable},
};

void
api_webhooks_init(struct http_server *srv)
{
	http_add_routes(srv, routes, nitems(routes));
}
