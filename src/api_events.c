/*
 * api_events.c - POST /v1/events, the ingestion API.  Producers send up to
 * 1,000 events as a JSON array or as NDJSON.  Every event is validated
 * here first, strictly (an unknown member is an error, so that a typo is
 * not silently dropped), then its references are checked against the
 * database, and the batch is written all-or-nothing in one transaction on
 * one held connection:
 *
 *   check       retention and references (links, QR codes, visitors, devices)
 *   partitions  lp_ensure_event_partitions over the batch's time range
 *   BEGIN
 *   refs        links by short code and visitors by external id, created
 *   insert      event_keys claimed and events inserted, in ONE statement
 *   duplicates  the stored ids of events whose client id was already taken
 *   COMMIT
 *
 * One INSERT per request means one NOTIFY per request (the events table's
 * trigger is per statement).  A client-supplied "id" makes an event
 * idempotent: its key is claimed in event_keys in the same statement that
 * inserts the event, so a concurrent request with the same key waits for
 * ours and then finds it taken.  So a producer may retry a request
 * whose reply it never got (a lost connection, a 503): events with ids
 * are stored once, and the reply gives the ids they were stored under.
 *
 * Called through the route table; calls db.c and metrics.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "metrics.h"

#define MAX_EVENTS	     1000
#define MAX_PROPERTIES_BYTES 16384 /* properties, serialized compactly */
#define MAX_FUTURE_US	     (5 * 60 * 1000000LL)
#define US_PER_SEC	     1000000LL

/* ---- SQL ---- */

/*
 * The events a later statement reads, one JSON object each, in the
 * columns below.  The C code writes these keys and nothing else.
 */
#define SQL_ROWS                                                               \
	"jsonb_to_recordset($2::jsonb) AS r(idx int, key text,"                \
	" occurred_at timestamptz, link_id uuid, shortlink text,"              \
	" qr_code_id uuid, visitor_id uuid, external_visitor_id text,"         \
	" device_id uuid, action text, status text, error_code text,"          \
	" redirect_latency_ms int, country text, region text, city text,"      \
	" timezone text, isp text, asn bigint, device_type text,"              \
	" platform text, browser text, language text, is_bot boolean,"         \
	" referrer text, utm_source text, utm_medium text,"                    \
	" utm_campaign text, utm_term text, utm_content text,"                 \
	" workflow_step text, visit_type text, destination text,"              \
	" destination_action text, entrypoint text, http_method text,"         \
	" triggered_by text, properties jsonb)"

/*
 * Problems only the database can see, as (index, member, description),
 * first ones first.  Runs before the transaction: nothing here locks.
 */
static const char sql_check[] =
    "WITH r AS ("
    " SELECT * FROM jsonb_to_recordset($2::jsonb) AS r(idx int,"
    " occurred_at timestamptz, link_id uuid, shortlink text,"
    " qr_code_id uuid, visitor_id uuid, device_id uuid)"
    "), e AS ("
    " SELECT r.idx, 1 AS ord, 'occurredAt' AS field,"
    " format('is older than the workspace''s retention of %s days"
    " (the earliest accepted time is %s)', w.retention_days,"
    " to_char((now() - w.retention_days * interval '1 day')"
    " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) AS message"
    " FROM r JOIN workspaces w ON w.id = $1"
    " WHERE r.occurred_at < now() - w.retention_days * interval '1 day'"
    " UNION ALL"
    " SELECT r.idx, 2, 'linkId', 'no link with this id in the workspace'"
    " FROM r WHERE r.link_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM links l"
    " WHERE l.workspace_id = $1 AND l.id = r.link_id)"
    " UNION ALL"
    " SELECT r.idx, 3, 'qrCodeId', CASE WHEN q.id IS NULL"
    " THEN 'no QR code with this id in the workspace'"
    " ELSE format('the QR code belongs to another link (%s)', l.shortlink)"
    " END"
    " FROM r LEFT JOIN qr_codes q ON q.workspace_id = $1"
    " AND q.id = r.qr_code_id"
    " LEFT JOIN links l ON l.workspace_id = $1 AND l.id = q.link_id"
    " WHERE r.qr_code_id IS NOT NULL AND (q.id IS NULL"
    " OR (q.link_id IS DISTINCT FROM r.link_id"
    " AND l.shortlink IS DISTINCT FROM r.shortlink))"
    " UNION ALL"
    " SELECT r.idx, 4, 'visitorId', 'no visitor with this id in the workspace'"
    " FROM r WHERE r.visitor_id IS NOT NULL AND NOT EXISTS (SELECT 1"
    " FROM visitors v WHERE v.workspace_id = $1 AND v.id = r.visitor_id)"
    " UNION ALL"
    " SELECT r.idx, 5, 'deviceId', 'no device with this id in the workspace'"
    " FROM r WHERE r.device_id IS NOT NULL AND NOT EXISTS (SELECT 1"
    " FROM devices d WHERE d.workspace_id = $1 AND d.id = r.device_id)"
    ") SELECT idx, field, message FROM e ORDER BY idx, ord LIMIT 21";

/*
 * Months with no partition would make the INSERT fail.  Its own short
 * transaction: the function serialises callers on an advisory lock that
 * must not be held for the whole ingestion.  Events without a time get
 * the transaction's now(), a little later than this statement's: the hour
 * of margin covers a month ending meanwhile.
 */
static const char sql_partitions[] =
    "SELECT lp_ensure_event_partitions("
    " least($1::timestamptz, CASE WHEN $3::boolean THEN now() END),"
    " greatest($2::timestamptz,"
    " CASE WHEN $3::boolean THEN now() + interval '1 hour' END))";

/*
 * Links and visitors named by key.  In their own statement so that the
 * INSERT below, with a newer snapshot, sees rows a concurrent request
 * committed while this one waited on them.  Sorted, so that two requests
 * naming the same keys lock them in the same order and never deadlock.
 */
static const char sql_refs[] =
    "WITH sl AS ("
    " INSERT INTO links (workspace_id, shortlink)"
    " SELECT $1, s FROM jsonb_array_elements_text($2::jsonb) AS s ORDER BY s"
    " ON CONFLICT (workspace_id, shortlink) DO NOTHING RETURNING 1"
    "), vx AS ("
    " INSERT INTO visitors (workspace_id, external_id)"
    " SELECT $1, x FROM jsonb_array_elements_text($3::jsonb) AS x ORDER BY x"
    " ON CONFLICT (workspace_id, external_id) DO NOTHING RETURNING 1"
    ") SELECT (SELECT count(*) FROM sl), (SELECT count(*) FROM vx)";

/*
 * The batch, in one statement: takes ids in request order, claims the
 * client ids (a key another transaction holds makes this wait for it,
 * then skip the event), then inserts every event whose key was claimed or
 * that has none.  Columns the event leaves out come from its device when
 * it names one.  Returns (index, id) of each inserted event.
 */
static const char sql_insert[] =
    "WITH r AS MATERIALIZED ("
    " SELECT r.*, nextval('events_id_seq') AS new_id"
    " FROM (SELECT * FROM " SQL_ROWS " ORDER BY idx) r"
    "), claimed AS ("
    " INSERT INTO event_keys (workspace_id, key, event_id, occurred_at)"
    " SELECT $1, r.key, r.new_id, coalesce(r.occurred_at, now())"
    " FROM r WHERE r.key IS NOT NULL ORDER BY r.key"
    " ON CONFLICT (workspace_id, key) DO NOTHING RETURNING key"
    "), src AS MATERIALIZED ("
    " SELECT r.*, coalesce(r.occurred_at, now()) AS at_time"
    " FROM r LEFT JOIN claimed c ON c.key = r.key"
    " WHERE r.key IS NULL OR c.key IS NOT NULL"
    "), ins AS ("
    " INSERT INTO events (workspace_id, id, occurred_at, link_id, qr_code_id,"
    " device_id, visitor_id, action, status, error_code,"
    " redirect_latency_ms, country, region, city, timezone, isp, asn,"
    " device_type, platform, browser, language, is_bot, referrer,"
    " utm_source, utm_medium, utm_campaign, utm_term, utm_content,"
    " workflow_step, visit_type, destination, destination_action,"
    " entrypoint, http_method, triggered_by, properties)"
    " SELECT $1, s.new_id, s.at_time, coalesce(s.link_id, l.id), s.qr_code_id,"
    " s.device_id, coalesce(s.visitor_id, v.id, d.visitor_id), s.action,"
    " s.status, s.error_code, s.redirect_latency_ms,"
    " coalesce(s.country, d.country), coalesce(s.region, d.region),"
    " coalesce(s.city, d.city), coalesce(s.timezone, d.timezone),"
    " coalesce(s.isp, d.isp), coalesce(s.asn, d.asn),"
    " coalesce(s.device_type, d.device_type),"
    " coalesce(s.platform, d.platform_name),"
    " coalesce(s.browser, d.browser_name),"
    " coalesce(s.language, d.browser_language),"
    " coalesce(s.is_bot, d.device_actor IN ('DEVICE_ACTOR_BOT',"
    " 'DEVICE_ACTOR_AGENT'), false),"
    " s.referrer, s.utm_source, s.utm_medium, s.utm_campaign, s.utm_term,"
    " s.utm_content, s.workflow_step, s.visit_type, s.destination,"
    " s.destination_action, s.entrypoint, s.http_method, s.triggered_by,"
    " coalesce(s.properties, '{}')"
    " FROM src s"
    " LEFT JOIN links l ON s.shortlink IS NOT NULL AND l.workspace_id = $1"
    " AND l.shortlink = s.shortlink"
    " LEFT JOIN visitors v ON s.external_visitor_id IS NOT NULL"
    " AND v.workspace_id = $1 AND v.external_id = s.external_visitor_id"
    " LEFT JOIN devices d ON s.device_id IS NOT NULL AND d.workspace_id = $1"
    " AND d.id = s.device_id"
    ") SELECT idx, new_id FROM src";

/* The events already stored under keys this request could not claim. */
static const char sql_duplicates[] =
    "SELECT key, event_id FROM event_keys WHERE workspace_id = $1"
    " AND key IN (SELECT jsonb_array_elements_text($2::jsonb))";

/* ---- members of an event ---- */

static const char *const actions[] = {"ACTION_SCAN",
				      "ACTION_CLICK",
				      "ACTION_RESCAN",
				      "ACTION_WORKFLOW_INTERACTION",
				      "ACTION_FORM_SUBMISSION",
				      "ACTION_CONVERSION",
				      NULL};
static const char *const statuses[] = {"ok", "error", "blocked", NULL};
static const char *const visit_types[] = {
    "VISIT_TYPE_UNSPECIFIED", "VISIT_TYPE_FIRST", "VISIT_TYPE_RETURNING", NULL};
static const char *const device_types[] = {"DEVICE_TYPE_UNSPECIFIED",
					   "DEVICE_TYPE_NATIVE",
					   "DEVICE_TYPE_MOBILE",
					   "DEVICE_TYPE_TABLET",
					   "DEVICE_TYPE_DESKTOP",
					   "DEVICE_TYPE_UNKNOWN",
					   NULL};
static const char *const device_actors[] = {
    "DEVICE_ACTOR_UNSPECIFIED", "DEVICE_ACTOR_HUMAN",	"DEVICE_ACTOR_BOT",
    "DEVICE_ACTOR_AGENT",	"DEVICE_ACTOR_UNKNOWN", NULL};
static const char *const http_methods[] = {
    "HTTP_METHOD_UNSPECIFIED", "HTTP_METHOD_GET",    "HTTP_METHOD_POST",
    "HTTP_METHOD_PUT",	       "HTTP_METHOD_DELETE", "HTTP_METHOD_PATCH",
    "HTTP_METHOD_OPTIONS",     "HTTP_METHOD_HEAD",   NULL};
static const char *const triggered_by[] = {"TRIGGERED_BY_UNSPECIFIED",
					   "TRIGGERED_BY_VISITOR", NULL};
static const char *const destination_actions[] = {
    "EVENT_ACTION_UNSPECIFIED",
    "EVENT_ACTION_CLIENT_REDIRECT",
    "EVENT_ACTION_LINK_VISIT",
    "EVENT_ACTION_PASSWORD_VERIFY",
    "EVENT_ACTION_FORM_SUBMIT",
    "EVENT_ACTION_CONTACT_CARD",
    "EVENT_ACTION_MULTI_LINK",
    "EVENT_ACTION_VISIT_TYPE_CONDITION",
    "EVENT_ACTION_COUNTRY_CONDITION",
    "EVENT_ACTION_DAY_OF_WEEK_CONDITION",
    "EVENT_ACTION_TIME_OF_DAY_CONDITION",
    "EVENT_ACTION_DAY_OF_MONTH_CONDITION",
    "EVENT_ACTION_SPECIFIC_DATE_CONDITION",
    "EVENT_ACTION_SOCIAL_LINKS_PAGE",
    "EVENT_ACTION_DEVICE_TYPE_CONDITION",
    "EVENT_ACTION_DEVICE_PLATFORM_CONDITION",
    "EVENT_ACTION_DEVICE_BROWSER_CONDITION",
    "EVENT_ACTION_DEVICE_BRAND_CONDITION",
    "EVENT_ACTION_DEVICE_ACTOR_CONDITION",
    "EVENT_ACTION_VISITOR_DATA_CONDITION",
    "EVENT_ACTION_THANK_YOU_PAGE",
    "EVENT_ACTION_MESSAGE_PAGE",
    NULL};

enum kind {
	K_TEXT,	      /* a string of at most max characters; "" is absent */
	K_ID,	      /* a string of 1 to max characters */
	K_UUID,	      /* a UUID */
	K_TIME,	      /* an RFC 3339 date-time */
	K_ENUM,	      /* one of choices */
	K_ACTOR,      /* one of choices, and decides is_bot */
	K_INT,	      /* an integer from 0 to max */
	K_COUNTRY,    /* ISO 3166-1 alpha-2, upper case */
	K_SHORTLINK,  /* a link's short code */
	K_PROPERTIES, /* an object of at most MAX_PROPERTIES_BYTES */
	K_OBJECT,     /* an object holding the members in sub */
};

struct member {
	const char *name;   /* as the client spells it */
	const char *column; /* key of the value in the rows SQL reads */
	enum kind kind;
	long long max;
	const char *const *choices;
	const struct member *sub;
	size_t nsub;
};

/*
 * Where a member has a Linkbreakers name (Device.platformName, ...) and a
 * shorter one, both are accepted: they write the same column, and giving
 * both is an error.
 */
static const struct member device_members[] = {
    {"country", "country", K_COUNTRY, 2, NULL, NULL, 0},
    {"region", "region", K_TEXT, 256, NULL, NULL, 0},
    {"city", "city", K_TEXT, 256, NULL, NULL, 0},
    {"timezone", "timezone", K_TEXT, 64, NULL, NULL, 0},
    {"isp", "isp", K_TEXT, 256, NULL, NULL, 0},
    {"asn", "asn", K_INT, 4294967295LL, NULL, NULL, 0},
    {"deviceType", "device_type", K_ENUM, 0, device_types, NULL, 0},
    {"platform", "platform", K_TEXT, 128, NULL, NULL, 0},
    {"platformName", "platform", K_TEXT, 128, NULL, NULL, 0},
    {"browser", "browser", K_TEXT, 128, NULL, NULL, 0},
    {"browserName", "browser", K_TEXT, 128, NULL, NULL, 0},
    {"language", "language", K_TEXT, 128, NULL, NULL, 0},
    {"browserLanguage", "language", K_TEXT, 128, NULL, NULL, 0},
    {"actor", "is_bot", K_ACTOR, 0, device_actors, NULL, 0},
    {"deviceActor", "is_bot", K_ACTOR, 0, device_actors, NULL, 0},
};

static const struct member utm_members[] = {
    {"source", "utm_source", K_TEXT, 512, NULL, NULL, 0},
    {"medium", "utm_medium", K_TEXT, 512, NULL, NULL, 0},
    {"campaign", "utm_campaign", K_TEXT, 512, NULL, NULL, 0},
    {"term", "utm_term", K_TEXT, 512, NULL, NULL, 0},
    {"content", "utm_content", K_TEXT, 512, NULL, NULL, 0},
};

static const struct member event_members[] = {
    {"id", "key", K_ID, 128, NULL, NULL, 0},
    {"occurredAt", "occurred_at", K_TIME, 0, NULL, NULL, 0},
    {"scannedAt", "occurred_at", K_TIME, 0, NULL, NULL, 0},
    {"linkId", "link_id", K_UUID, 0, NULL, NULL, 0},
    {"shortlink", "shortlink", K_SHORTLINK, 64, NULL, NULL, 0},
    {"qrCodeId", "qr_code_id", K_UUID, 0, NULL, NULL, 0},
    {"visitorId", "visitor_id", K_UUID, 0, NULL, NULL, 0},
    {"externalVisitorId", "external_visitor_id", K_ID, 256, NULL, NULL, 0},
    {"deviceId", "device_id", K_UUID, 0, NULL, NULL, 0},
    {"action", "action", K_ENUM, 0, actions, NULL, 0},
    {"status", "status", K_ENUM, 0, statuses, NULL, 0},
    {"errorCode", "error_code", K_TEXT, 128, NULL, NULL, 0},
    {"redirectLatencyMs", "redirect_latency_ms", K_INT, INT_MAX, NULL, NULL, 0},
    {"device", NULL, K_OBJECT, 0, NULL, device_members, nitems(device_members)},
    {"referrer", "referrer", K_TEXT, 4096, NULL, NULL, 0},
    {"utm", NULL, K_OBJECT, 0, NULL, utm_members, nitems(utm_members)},
    {"utmSource", "utm_source", K_TEXT, 512, NULL, NULL, 0},
    {"utmMedium", "utm_medium", K_TEXT, 512, NULL, NULL, 0},
    {"utmCampaign", "utm_campaign", K_TEXT, 512, NULL, NULL, 0},
    {"utmTerm", "utm_term", K_TEXT, 512, NULL, NULL, 0},
    {"utmContent", "utm_content", K_TEXT, 512, NULL, NULL, 0},
    {"workflowStep", "workflow_step", K_TEXT, 256, NULL, NULL, 0},
    {"visitType", "visit_type", K_ENUM, 0, visit_types, NULL, 0},
    {"destination", "destination", K_TEXT, 4096, NULL, NULL, 0},
    {"destinationAction", "destination_action", K_ENUM, 0, destination_actions,
     NULL, 0},
    {"entrypoint", "entrypoint", K_TEXT, 4096, NULL, NULL, 0},
    {"httpMethod", "http_method", K_ENUM, 0, http_methods, NULL, 0},
    {"triggeredBy", "triggered_by", K_ENUM, 0, triggered_by, NULL, 0},
    {"properties", "properties", K_PROPERTIES, 0, NULL, NULL, 0},
};

/* What an event gets for the members it leaves out (the column defaults). */
static const struct {
	const char *column;
	const char *value;
} defaults[] = {
    {"action", "ACTION_SCAN"},
    {"status", "ok"},
    {"visit_type", "VISIT_TYPE_UNSPECIFIED"},
    {"http_method", "HTTP_METHOD_GET"},
    {"triggered_by", "TRIGGERED_BY_VISITOR"},
};

/* ---- problems ---- */

static void
count_events(const char *result, int n)
{
	char labels[32];

	snprintf(labels, sizeof labels, "result=\"%s\"", result);
	metrics_counter_add("linkpulse_ingest_events_total",
			    "Events sent to POST /v1/events, by outcome: "
			    "accepted (stored), duplicate (an id already "
			    "stored), rejected (in a refused batch).",
			    labels, n);
}

/* ---- values ---- */

/* At most max bytes of s, cut on a character boundary, into buf. */
static const char *
clip(const char *s, char *buf, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return s;
	while (n > 0 && (n > max || ((unsigned char)s[n] & 0xc0) == 0x80))
		n--;
	snprintf(buf, max + 4, "%.*s...", (int)n, s);
	return buf;
}

static bool
read_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (H. Hinnant). */
static long long
days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/*
 * RFC 3339 date-time: 2026-01-02T03:04:05[.fraction](Z|+hh:mm|-hh:mm),
 * "t", "z" and a space accepted as the RFC allows.  Microseconds since
 * the epoch; fraction digits past the sixth are dropped (PostgreSQL keeps
 * no more).
 */
static bool
parse_rfc3339(const char *s, long long *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, frac = 0, sign = 0;
	const char *p = s;

	if (!read_digits(&p, 4, &y) || *p++ != '-' ||
	    !read_digits(&p, 2, &mo) || *p++ != '-' || !read_digits(&p, 2, &d))
		return false;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!read_digits(&p, 2, &h) || *p++ != ':' ||
	    !read_digits(&p, 2, &mi) || *p++ != ':' ||
	    !read_digits(&p, 2, &sec))
		return false;
	if (*p == '.') {
		int ndigits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, ndigits++) {
			if (ndigits < 6)
				frac = frac * 10 + (*p - '0');
		}
		if (ndigits == 0)
			return false;
		for (; ndigits < 6; ndigits++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!read_digits(&p, 2, &oh) || *p++ != ':' ||
		    !read_digits(&p, 2, &om) || oh > 23 || om > 59)
			return false;
	} else {
		return false;
	}
	if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
		return false;
	/* A leap second (:60) reads as the next second, as in PostgreSQL. */
	*out = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
		sign * (oh * 3600 + om * 60)) *
		   US_PER_SEC +
	       frac;
	return true;
}

/* "2026-01-02T03:04:05.678901Z"; buf holds at least 40 bytes. */
static void
format_us(long long us, char *buf, size_t len)
{
	long long secs = us / US_PER_SEC, rest = us % US_PER_SEC;
	time_t t;
	struct tm tm;

	if (rest < 0) {
		rest += US_PER_SEC;
		secs--;
	}
	t = (time_t)secs;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, rest);
}

/* ---- validation ---- */

struct validation {
	struct http_problems errs;
	long long now_us;
	long long tmin, tmax; /* over the events that carry a time */
	bool have_time;
};

static const struct member *
find_member(const struct member *tab, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tab[i].name, name) == 0)
			return &tab[i];
	}
	return NULL;
}

static void
unknown_member(struct validation *vs, const struct member *tab, size_t n,
	       const char *path, const char *name)
{
	char buf[80], *field;
	const char *shown = clip(name, buf, 64);
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	field = xprintf("%s.%s", path, shown);
	/* A misplaced device member is a likelier mistake than a typo. */
	if (tab == event_members &&
	    find_member(device_members, nitems(device_members), name)) {
		http_problems_add(
		    &vs->errs, field,
		    "unknown member '%s': it belongs in the device object",
		    shown);
		free(field);
		return;
	}
	if (strlen(name) <= 64) {
		for (size_t i = 0; i < n; i++) {
			size_t d = levenshtein(name, tab[i].name);

			if (d < best_d) {
				best_d = d;
				best = tab[i].name;
			}
		}
	}
	if (best != NULL && best_d <= 2)
		http_problems_add(&vs->errs, field,
				  "unknown member '%s'; did you mean '%s'?",
				  shown, best);
	else
		http_problems_add(&vs->errs, field, "unknown member '%s'",
				  shown);
	free(field);
}

static void
choices_error(struct validation *vs, const char *field,
	      const char *const *choices)
{
	char list[1024] = "";
	size_t off = 0;

	for (int i = 0; choices[i] != NULL && off < sizeof list; i++)
		off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
					i ? ", " : "", choices[i]);
	http_problems_add(&vs->errs, field, "expected one of %s", list);
}

/*
 * Sets column to v (stolen) in out, unless another member already did:
 * setby remembers which member set each column.
 */
static void
set_column(struct validation *vs, json_t *out, json_t *setby,
	   const char *column, const char *field, json_t *v)
{
	json_t *other = json_object_get(setby, column);

	if (other != NULL) {
		http_problems_add(&vs->errs, field,
				  "is also given as %s: send only one of them",
				  json_string_value(other));
		json_decref(v);
		return;
	}
	json_object_set_new(setby, column, json_string(field));
	json_object_set_new(out, column, v);
}

static void parse_members(struct validation *, json_t *obj,
			  const struct member *tab, size_t n, const char *path,
			  json_t *out, json_t *setby);

static void
parse_value(struct validation *vs, const struct member *m, json_t *v,
	    const char *field, json_t *out, json_t *setby)
{
	const char *s = json_string_value(v);
	long long us, i;
	char *text;

	switch (m->kind) {
	case K_TEXT:
	case K_ID:
		if (s == NULL) {
			http_problems_add(&vs->errs, field,
					  "expected a string");
		} else if (*s == '\0' && m->kind == K_ID) {
			http_problems_add(&vs->errs, field,
					  "must not be empty");
		} else if (utf8_length(s) > (size_t)m->max) {
			http_problems_add(&vs->errs, field,
					  "is longer than %lld characters",
					  m->max);
		} else if (*s != '\0') {
			set_column(vs, out, setby, m->column, field,
				   json_string(s));
		}
		break;
	case K_UUID:
		if (s == NULL || !uuid_valid(s))
			http_problems_add(
			    &vs->errs, field,
			    "expected a UUID like "
			    "\"123e4567-e89b-12d3-a456-426614174000\"");
		else
			set_column(vs, out, setby, m->column, field,
				   json_string(s));
		break;
	case K_TIME:
		if (s == NULL || !parse_rfc3339(s, &us)) {
			http_problems_add(&vs->errs, field,
					  "expected an RFC 3339 date-time like "
					  "\"2026-01-02T03:04:05.678Z\"");
		} else if (us < 0) {
			http_problems_add(&vs->errs, field, "is before 1970");
		} else if (us > vs->now_us + MAX_FUTURE_US) {
			http_problems_add(
			    &vs->errs, field,
			    "is more than 5 minutes in the future");
		} else {
			char buf[48];

			format_us(us, buf, sizeof buf);
			set_column(vs, out, setby, m->column, field,
				   json_string(buf));
			if (!vs->have_time || us < vs->tmin)
				vs->tmin = us;
			if (!vs->have_time || us > vs->tmax)
				vs->tmax = us;
			vs->have_time = true;
		}
		break;
	case K_ENUM:
	case K_ACTOR: {
		int k = -1;

		for (int j = 0; s != NULL && m->choices[j] != NULL; j++) {
			if (strcmp(s, m->choices[j]) == 0)
				k = j;
		}
		if (k < 0)
			choices_error(vs, field, m->choices);
		else if (m->kind == K_ENUM)
			set_column(vs, out, setby, m->column, field,
				   json_string(s));
		else if (strcmp(s, "DEVICE_ACTOR_HUMAN") == 0)
			set_column(vs, out, setby, m->column, field,
				   json_false());
		else if (strcmp(s, "DEVICE_ACTOR_BOT") == 0 ||
			 strcmp(s, "DEVICE_ACTOR_AGENT") == 0)
			set_column(vs, out, setby, m->column, field,
				   json_true());
		/* Unspecified and unknown actors leave is_bot to the device. */
		break;
	}
	case K_INT:
		i = json_integer_value(v);
		if (!json_is_integer(v) || i < 0 || i > m->max)
			http_problems_add(&vs->errs, field,
					  "expected an integer from 0 to %lld",
					  m->max);
		else
			set_column(vs, out, setby, m->column, field,
				   json_integer(i));
		break;
	case K_COUNTRY:
		if (s == NULL || strlen(s) != 2 || s[0] < 'A' || s[0] > 'Z' ||
		    s[1] < 'A' || s[1] > 'Z')
			http_problems_add(
			    &vs->errs, field,
			    "expected an ISO 3166-1 alpha-2 country code "
			    "in upper case, like \"US\"");
		else
			set_column(vs, out, setby, m->column, field,
				   json_string(s));
		break;
	case K_SHORTLINK:
		if (s == NULL || *s == '\0' ||
		    strlen(s) != strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "abcdefghijklmnopqrstuvwxyz"
					   "0123456789_-") ||
		    strlen(s) > (size_t)m->max)
			http_problems_add(
			    &vs->errs, field,
			    "expected a short code of 1 to %lld letters, "
			    "digits, '_' or '-'",
			    m->max);
		else
			set_column(vs, out, setby, m->column, field,
				   json_string(s));
		break;
	case K_PROPERTIES:
		if (!json_is_object(v)) {
			http_problems_add(&vs->errs, field,
					  "expected an object");
			break;
		}
		text = json_dumps(v, JSON_COMPACT);
		if (text == NULL || strlen(text) > MAX_PROPERTIES_BYTES)
			http_problems_add(
			    &vs->errs, field,
			    "is %zu bytes serialized; at most %d are "
			    "accepted",
			    text ? strlen(text) : 0, MAX_PROPERTIES_BYTES);
		else
			set_column(vs, out, setby, m->column, field,
				   json_incref(v));
		free(text);
		break;
	case K_OBJECT:
		if (!json_is_object(v))
			http_problems_add(&vs->errs, field,
					  "expected an object");
		else
			parse_members(vs, v, m->sub, m->nsub, field, out,
				      setby);
		break;
	}
}

/* JSON null is taken as an absent member: many encoders write them. */
static void
parse_members(struct validation *vs, json_t *obj, const struct member *tab,
	      size_t n, const char *path, json_t *out, json_t *setby)
{
	const char *name;
	json_t *v;

	json_object_foreach(obj, name, v)
	{
		const struct member *m = find_member(tab, n, name);
		char *field;

		if (m == NULL) {
			unknown_member(vs, tab, n, path, name);
			continue;
		}
		if (json_is_null(v))
			continue;
		field = xprintf("%s.%s", path, name);
		parse_value(vs, m, v, field, out, setby);
		free(field);
	}
}

static bool
present(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	return v != NULL && !json_is_null(v);
}

/*
 * Validates event number idx; returns its row for SQL (the columns of
 * SQL_ROWS), or NULL after adding its problems to vs.
 */
static json_t *
validate_event(struct validation *vs, json_t *ev, int idx)
{
	char path[32];
	json_t *out, *setby;
	int before = vs->errs.n;
	const char *status;

	snprintf(path, sizeof path, "events[%d]", idx);
	if (!json_is_object(ev)) {
		http_problems_add(&vs->errs, path, "expected an event object");
		return NULL;
	}
	out = json_object();
	setby = json_object();
	parse_members(vs, ev, event_members, nitems(event_members), path, out,
		      setby);
	json_decref(setby);

	/* An invalid linkId or shortlink was reported already. */
	if (!present(ev, "linkId") && !present(ev, "shortlink"))
		http_problems_add(
		    &vs->errs, path,
		    "an event needs linkId or shortlink (the link's "
		    "short code)");
	else if (json_object_get(out, "link_id") != NULL &&
		 json_object_get(out, "shortlink") != NULL)
		http_problems_add(&vs->errs, path,
				  "give linkId or shortlink, not both");
	if (json_object_get(out, "visitor_id") != NULL &&
	    json_object_get(out, "external_visitor_id") != NULL)
		http_problems_add(
		    &vs->errs, path,
		    "give visitorId or externalVisitorId, not both");
	status = json_string_value(json_object_get(out, "status"));
	if (json_object_get(out, "error_code") != NULL &&
	    (status == NULL || strcmp(status, "ok") == 0)) {
		char *field = xprintf("%s.errorCode", path);

		http_problems_add(&vs->errs, field,
				  "needs status \"error\" or \"blocked\"");
		free(field);
	}
	if (vs->errs.n > before) {
		json_decref(out);
		return NULL;
	}
	for (size_t i = 0; i < nitems(defaults); i++) {
		if (json_object_get(out, defaults[i].column) == NULL)
			json_object_set_new(out, defaults[i].column,
					    json_string(defaults[i].value));
	}
	json_object_set_new(out, "idx", json_integer(idx));
	return out;
}

/* ---- reading the body ---- */

static bool
blank(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	}
	return true;
}

/*
 * NDJSON: one event a line, blank lines ignored.  A line that is not JSON
 * is recorded as a problem and as NULL in bad, and the rest still read.
 * Returns the events, or NULL when there are more than MAX_EVENTS.
 */
static json_t *
read_ndjson(struct http_ctx *ctx, struct http_problems *errs, bool *bad)
{
	struct evbuffer *buf = http_body(ctx);
	size_t len = evbuffer_get_length(buf);
	const char *p = len ? (const char *)evbuffer_pullup(buf, -1) : "";
	const char *end = p + len;
	json_t *events = json_array();
	int line = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;
		size_t idx = json_array_size(events);
		json_error_t err;
		json_t *j;

		line++;
		if (!blank(p, eol)) {
			if (idx == MAX_EVENTS) {
				json_decref(events);
				return NULL;
			}
			j = json_loadb(p, (size_t)(eol - p),
				       JSON_REJECT_DUPLICATES, &err);
			if (j == NULL) {
				char field[32];

				snprintf(field, sizeof field, "events[%zu]",
					 idx);
				http_problems_add(
				    errs, field,
				    "line %d is not valid JSON: %s at "
				    "column %d",
				    line, err.text, err.column);
				bad[idx] = true;
				j = json_null();
			}
			json_array_append_new(events, j);
		}
		p = nl != NULL ? nl + 1 : end;
	}
	return events;
}

enum body_type { BODY_JSON, BODY_NDJSON, BODY_OTHER };

static enum body_type
body_type(struct http_ctx *ctx)
{
	const char *ct = http_header(ctx, "Content-Type");
	size_t n;

	if (ct == NULL)
		return BODY_JSON;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, "; ");
	if (n == 16 && strncasecmp(ct, "application/json", n) == 0)
		return BODY_JSON;
	if ((n == 20 && strncasecmp(ct, "application/x-ndjson", n) == 0) ||
	    (n == 18 && strncasecmp(ct, "application/ndjson", n) == 0))
		return BODY_NDJSON;
	return BODY_OTHER;
}

/* ---- the transaction ---- */

struct item {
	const char *key; /* the client's id (owned by ingest.batch), or NULL */
	int first;	 /* the earlier event with the same key, or -1 */
	char id[24];	 /* the stored event's id; "" until known */
};

struct ingest {
	struct http_ctx *ctx;
	struct db_conn *conn;
	json_t *batch; /* the request's events, as sent */
	int n;
	struct item *items;
	char *rows;	  /* events to insert (SQL_ROWS), JSON */
	char *check;	  /* what sql_check reads; NULL if nothing to check */
	char *shortlinks; /* distinct short codes, JSON array; or NULL */
	char *externals;  /* distinct external visitor ids; or NULL */
	char tmin[48], tmax[48];
	bool have_time, default_time;
	int accepted;
	json_t *pending; /* key -> index, for keys found already taken */
};

static void
ingest_free(struct ingest *ing)
{
	json_decref(ing->batch);
	free(ing->items);
	free(ing->rows);
	free(ing->check);
	free(ing->shortlinks);
	free(ing->externals);
	json_decref(ing->pending);
	free(ing);
}

/* Ends the request after a database error; the rollback is implicit. */
static void
ingest_fail(struct ingest *ing, PGresult *res, const char *error)
{
	if (ing->conn != NULL)
		db_release(ing->conn);
	http_problem_db(ing->ctx, res, error);
	ingest_free(ing);
}

static void
committed(PGresult *res, const char *error, void *arg)
{
	struct ingest *ing = arg;
	json_t *ids;
	int dups;

	if (error != NULL) {
		ingest_fail(ing, res, error);
		return;
	}
	db_release(ing->conn);
	ids = json_array();
	for (int i = 0; i < ing->n; i++) {
		const struct item *it =
		    &ing->items[ing->items[i].first >= 0 ? ing->items[i].first
							 : i];

		json_array_append_new(ids, it->id[0] ? json_string(it->id)
						     : json_null());
	}
	dups = ing->n - ing->accepted;
	count_events("accepted", ing->accepted);
	count_events("duplicate", dups);
	log_debug("ingest: workspace %s: %d events stored, %d duplicates",
		  http_auth(ing->ctx)->workspace_slug, ing->accepted, dups);
	http_reply_json(ing->ctx, 202,
			json_pack("{s:i, s:i, s:o}", "accepted", ing->accepted,
				  "duplicates", dups, "ids", ids));
	ingest_free(ing);
}

static void
commit(struct ingest *ing)
{
	db_conn_query(ing->conn, 0, "COMMIT", 0, NULL, committed, ing);
}

static void
duplicates_found(PGresult *res, const char *error, void *arg)
{
	struct ingest *ing = arg;

	if (error != NULL) {
		ingest_fail(ing, res, error);
		return;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		json_t *idx =
		    json_object_get(ing->pending, PQgetvalue(res, r, 0));
		struct item *it;

		if (idx == NULL)
			continue;
		it = &ing->items[json_integer_value(idx)];
		snprintf(it->id, sizeof it->id, "%s", PQgetvalue(res, r, 1));
	}
	commit(ing);
}

static void
inserted(PGresult *res, const char *error, void *arg)
{
	struct ingest *ing = arg;
	json_t *keys;

	if (error != NULL) {
		ingest_fail(ing, res, error);
		return;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		int idx = atoi(PQgetvalue(res, r, 0));

		if (idx >= 0 && idx < ing->n)
			snprintf(ing->items[idx].id, sizeof ing->items[idx].id,
				 "%s", PQgetvalue(res, r, 1));
	}
	ing->accepted = PQntuples(res);

	/* Keys taken before: by an earlier request, or a concurrent one. */
	keys = json_array();
	ing->pending = json_object();
	for (int i = 0; i < ing->n; i++) {
		const struct item *it = &ing->items[i];

		if (it->first < 0 && it->key != NULL && it->id[0] == '\0') {
			json_array_append_new(keys, json_string(it->key));
			json_object_set_new(ing->pending, it->key,
					    json_integer(i));
		}
	}
	if (json_array_size(keys) > 0) {
		char *text = json_dumps(keys, JSON_COMPACT);
		const char *params[] = {http_auth(ing->ctx)->workspace_id,
					text};

		db_conn_query(ing->conn, 0, sql_duplicates, 2, params,
			      duplicates_found, ing);
		free(text);
	} else {
		commit(ing);
	}
	json_decref(keys);
}

static void
insert(struct ingest *ing)
{
	const char *params[] = {http_auth(ing->ctx)->workspace_id, ing->rows};

	db_conn_query(ing->conn, 0, sql_insert, 2, params, inserted, ing);
}

static void
refs_done(PGresult *res, const char *error, void *arg)
{
	struct ingest *ing = arg;

	if (error != NULL) {
		ingest_fail(ing, res, error);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0 ||
	    strcmp(PQgetvalue(res, 0, 1), "0") != 0)
		log_info("ingest: workspace %s: created %s link(s) and %s "
			 "visitor(s) named by events",
			 http_auth(ing->ctx)->workspace_slug,
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	insert(ing);
}

static void
begun(PGresult *res, const char *error, void *arg)
{
	struct ingest *ing = arg;
	const char *params[3];

	if (error != NULL) {
		ingest_fail(ing, res, error);
		return;
	}
	if (ing->shortlinks == NULL && ing->externals == NULL) {
		insert(ing);
		return;
	}
	params[0] = http_auth(ing->ctx)->workspace_id;
	params[1] = ing->shortlinks ? ing->shortlinks : "[]";
	params[2] = ing->externals ? ing->externals : "[]";
	db_conn_query(ing->conn, 0, sql_refs, 3, params, refs_done, ing);
}

static void
partitions_ready(PGresult *res, const char *error, void *arg)
{
	struct ingest *ing = arg;

	if (error != NULL) {
		ingest_fail(ing, res, error);
		return;
	}
	if (!PQgetisnull(res, 0, 0) && atoi(PQgetvalue(res, 0, 0)) > 0)
		log_info("ingest: created %s event partition(s) for %s to %s",
			 PQgetvalue(res, 0, 0),
			 ing->have_time ? ing->tmin : "now",
			 ing->have_time ? ing->tmax : "now");
	db_conn_query(ing->conn, 0, "BEGIN", 0, NULL, begun, ing);
}

static void
ensure_partitions(struct ingest *ing)
{
	const char *params[] = {ing->have_time ? ing->tmin : NULL,
				ing->have_time ? ing->tmax : NULL,
				ing->default_time ? "true" : "false"};

	db_conn_query(ing->conn, 0, sql_partitions, 3, params, partitions_ready,
		      ing);
}

static void
checked(PGresult *res, const char *error, void *arg)
{
	struct ingest *ing = arg;
	struct http_problems errs = {json_array(), 0};

	if (error != NULL) {
		json_decref(errs.details);
		ingest_fail(ing, res, error);
		return;
	}
	if (PQntuples(res) == 0) {
		json_decref(errs.details);
		ensure_partitions(ing);
		return;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		char *field = xprintf("events[%s].%s", PQgetvalue(res, r, 0),
				      PQgetvalue(res, r, 1));

		http_problems_add(&errs, field, "%s", PQgetvalue(res, r, 2));
		free(field);
	}
	db_release(ing->conn);
	count_events("rejected", ing->n);
	http_problems_reply(ing->ctx, &errs);
	json_decref(errs.details);
	ingest_free(ing);
}

static void
conn_ready(struct db_conn *conn, void *arg)
{
	struct ingest *ing = arg;

	if (conn == NULL) {
		http_problem(ing->ctx, 503, NULL,
			     "the server is shutting down");
		ingest_free(ing);
		return;
	}
	ing->conn = conn;
	if (ing->check != NULL) {
		const char *params[] = {http_auth(ing->ctx)->workspace_id,
					ing->check};

		db_conn_query(conn, 0, sql_check, 2, params, checked, ing);
	} else {
		ensure_partitions(ing);
	}
}

/* ---- the handler ---- */

/* Members sql_check reads; an event with none of them needs no check. */
static const char *const check_columns[] = {"occurred_at", "link_id",
					    "shortlink",   "qr_code_id",
					    "visitor_id",  "device_id"};

static char *
dump_set(json_t *set)
{
	json_t *arr;
	const char *k;
	json_t *v;
	char *text;

	if (json_object_size(set) == 0)
		return NULL;
	arr = json_array();
	json_object_foreach(set, k, v)
	{
		json_array_append_new(arr, json_string(k));
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

/*
 * Validates every event and prepares what the statements read.  Returns
 * false after adding to errs.
 */
static bool
ingest_prepare(struct ingest *ing, struct http_problems *errs, const bool *bad)
{
	struct validation vs = {.errs = *errs, .now_us = wall_ms() * 1000};
	json_t *rows = json_array(), *check = json_array();
	json_t *keys = json_object(), *shortlinks = json_object(),
	       *externals = json_object();
	bool ok;

	for (int i = 0; i < ing->n; i++) {
		struct item *it = &ing->items[i];
		json_t *row, *first, *sub;
		const char *v;

		it->first = -1;
		if (bad[i])
			continue;
		row = validate_event(&vs, json_array_get(ing->batch, i), i);
		if (row == NULL)
			continue;
		it->key = json_string_value(
		    json_object_get(json_array_get(ing->batch, i), "id"));
		if (it->key != NULL && *it->key == '\0')
			it->key = NULL;
		/* A repeat within the request is stored once, as the first. */
		if (it->key != NULL &&
		    (first = json_object_get(keys, it->key)) != NULL) {
			it->first = (int)json_integer_value(first);
			json_decref(row);
			continue;
		}
		if (it->key != NULL)
			json_object_set_new(keys, it->key, json_integer(i));
		if (json_object_get(row, "occurred_at") == NULL)
			ing->default_time = true;
		if ((v = json_string_value(json_object_get(row, "shortlink"))))
			json_object_set_new(shortlinks, v, json_true());
		if ((v = json_string_value(
			 json_object_get(row, "external_visitor_id"))))
			json_object_set_new(externals, v, json_true());
		sub = NULL;
		for (size_t c = 0; c < nitems(check_columns); c++) {
			json_t *cv = json_object_get(row, check_columns[c]);

			/* A short code alone is created if unknown. */
			if (cv == NULL ||
			    strcmp(check_columns[c], "shortlink") == 0)
				continue;
			if (sub == NULL)
				sub = json_pack("{s:i}", "idx", i);
			json_object_set(sub, check_columns[c], cv);
		}
		if (sub != NULL) {
			json_t *sl = json_object_get(row, "shortlink");

			if (sl != NULL)
				json_object_set(sub, "shortlink", sl);
			json_array_append_new(check, sub);
		}
		json_array_append_new(rows, row);
	}
	*errs = vs.errs;
	ok = errs->n == 0;
	if (ok) {
		ing->rows = json_dumps(rows, JSON_COMPACT);
		if (json_array_size(check) > 0)
			ing->check = json_dumps(check, JSON_COMPACT);
		ing->shortlinks = dump_set(shortlinks);
		ing->externals = dump_set(externals);
		ing->have_time = vs.have_time;
		if (vs.have_time) {
			format_us(vs.tmin, ing->tmin, sizeof ing->tmin);
			format_us(vs.tmax, ing->tmax, sizeof ing->tmax);
		}
	}
	json_decref(rows);
	json_decref(check);
	json_decref(keys);
	json_decref(shortlinks);
	json_decref(externals);
	return ok;
}

static void
events_post(struct http_ctx *ctx)
{
	struct http_problems errs = {json_array(), 0};
	bool bad[MAX_EVENTS] = {false};
	struct ingest *ing;
	json_t *batch = NULL;
	size_t n;

	switch (body_type(ctx)) {
	case BODY_JSON:
		if ((batch = http_body_json(ctx)) == NULL)
			goto out; /* it replied */
		if (!json_is_array(batch)) {
			http_problem(ctx, 400, "body",
				     "expected a JSON array of events (or "
				     "NDJSON with Content-Type: "
				     "application/x-ndjson)");
			goto out;
		}
		break;
	case BODY_NDJSON:
		if ((batch = read_ndjson(ctx, &errs, bad)) == NULL) {
			http_problem(ctx, 413, "events",
				     "a request holds at most %d events; this "
				     "one has more",
				     MAX_EVENTS);
			goto out;
		}
		break;
	case BODY_OTHER:
		http_problem(ctx, 415, "Content-Type",
			     "send application/json (an array of events) or "
			     "application/x-ndjson (one event a line)");
		goto out;
	}

	n = json_array_size(batch);
	if (n == 0) {
		http_problem(ctx, 400, "events",
			     "the batch is empty: send 1 to %d events",
			     MAX_EVENTS);
		goto out;
	}
	if (n > MAX_EVENTS) {
		count_events("rejected", (int)n);
		http_problem(ctx, 413, "events",
			     "a request holds at most %d events; this one has "
			     "%zu",
			     MAX_EVENTS, n);
		goto out;
	}

	ing = xcalloc(1, sizeof *ing);
	ing->ctx = ctx;
	ing->batch = batch;
	ing->n = (int)n;
	ing->items = xcalloc(n, sizeof *ing->items);
	batch = NULL;
	if (!ingest_prepare(ing, &errs, bad)) {
		count_events("rejected", ing->n);
		http_problems_reply(ctx, &errs);
		ingest_free(ing);
		goto out;
	}
	db_acquire(http_db(ctx), conn_ready, ing);
out:
	json_decref(batch);
	json_decref(errs.details);
}

static const struct route routes[] = {
    {"POST", "/v1/events", "events:write", events_post},
};

void
api_events_init(struct http_server *srv)
{
	/* Every outcome shows on /metrics from the start, at zero. */
	count_events("accepted", 0);
	count_events("duplicate", 0);
	count_events("rejected", 0);
	http_add_routes(srv, routes, nitems(routes));
}
