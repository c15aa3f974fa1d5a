/*
 * alerts.c - the rules consumer (alerts.h).  Each batch (and each tick,
 * an empty batch run about once a second while rules are loaded) goes:
 *
 *   restore  after a start, a rollback or a change of leader: the
 *            pending and firing alerts are read back from alert_instances
 *            into the engine (alerts of rules no longer loaded resolve);
 *   links    every minute, when flatline rules watch active links: the
 *            workspaces' links, for the engine's keys;
 *   warm     when rules are new: the events already consumed (visible in
 *            the cursor's snapshot, or before the batch's position in it)
 *            within the rules' reach, read through a cursor in chunks and
 *            fed without alerting;
 *   feed     the batch's events, with every field filters read (links,
 *            visitors and tags joined in PostgreSQL);
 *   tick     the engine evaluates at the wall clock;
 *   apply    the changes go to lp_alerts_apply (instances, history,
 *            notifications through the webhook tables), then
 *            lp_alerts_flush sends the grouped notifications that are due.
 *
 * All of it in the batch's transaction: the alerts' state moves with the
 * cursor.  A rollback (pipeline's aborted hook) resets the engine, which
 * restores and warms again at the next batch, so memory never runs ahead
 * of the database.  Calls eval.c, db.c, metrics.c; called by pipeline.c,
 * main.c (alerts_set_rules) and api_alerts.c.
 */
#include "lpconf.h" /* HAVE_MALLOC_TRIM */

#include <stdio.h>
#include <stdlib.h>
#ifdef HAVE_MALLOC_TRIM
#include <malloc.h>
#endif
#include <string.h>

#include <jansson.h>

#include "alerts.h"
#include "config.h"
#include "eval.h"
#include "filter.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "rules.h"

/* Rows read per FETCH while warming. */
#define WARM_CHUNK 1000
/*
 * A batch's rows are fed, and the rules evaluated, in slices of about
 * this many milliseconds, with a turn of the event loop between slices.
 */
#define SLICE_MS 10
/* Group slots an evaluation slice walks (about half a microsecond each). */
#define TICK_SLICE 20000
/* How often the links flatline rules watch are read again. */
#define LINKS_EVERY_MS 60000
/* How often old history is pruned, and how much at a time. */
#define PRUNE_EVERY_MS 60000
#define PRUNE_LIMIT    1000
/* How often the memory gauges are computed. */
#define STATS_EVERY_MS 5000
/* Ticks this far apart mean another instance led meanwhile. */
#define GAP_MS	5000
#define TICK_MS 1000
/* At most this long without evaluating while the pipeline is behind. */
#define BEHIND_MAX_MS 30000

/* The columns before the fields in a row query. */
enum { COL_WS, COL_T, COL_TAGS, COL_PROPS, COL_FIELDS };

static struct eval *engine;
static bool restored;
static int64_t links_at;
static int64_t last_run;
static int64_t pruned_at;
static int64_t stats_at;
static int64_t ticked_at;
static bool behind;
static int64_t behind_since;
static int64_t retention_ms = 30LL * 86400000;
static long queued;
static char *sql_rows, *sql_warm;
static bool (*reload_fn)(void *, struct strlist *);
static struct {
	int64_t at;
	bool ok;
	struct strlist errs;
} last_reload;
static void *reload_arg;

/* The batch being worked on: one at a time. */
static struct {
	struct pipeline_batch *batch;
	struct db_conn *conn;
	pipeline_done_fn done;
	int64_t now;
	int64_t warm_events;
	PGresult *rows; /* the batch's rows, fed in slices */
	int next_row;
	int next_rule;	   /* of an evaluation in slices */
	double tick_spent; /* seconds, over its slices */
} run;

static const char sql_restore[] =
    "SELECT w.slug, i.rule, i.labels::text, i.state,"
    " (extract(epoch FROM i.active_at) * 1000)::bigint,"
    " (extract(epoch FROM i.fired_at) * 1000)::bigint,"
    " (extract(epoch FROM i.notified_at) * 1000)::bigint,"
    " i.notifications, i.fingerprint, i.annotations::text, i.value,"
    " i.threshold"
    " FROM alert_instances i JOIN workspaces w ON w.id = i.workspace_id"
    " WHERE i.state IN ('pending', 'firing')";
static const char sql_links[] =
    "SELECT w.slug, coalesce(array_to_json(array_agg(l.id::text)"
    " FILTER (WHERE l.id IS NOT NULL))::text, '[]')"
    " FROM workspaces w LEFT JOIN links l ON l.workspace_id = w.id"
    " GROUP BY w.slug";
static const char sql_apply[] = "SELECT lp_alerts_apply($1::jsonb)";
static const char sql_flush[] = "SELECT lp_alerts_flush()";
static const char sql_prune[] = "SELECT lp_alerts_prune($1::bigint, $2::int)";

/* ---- the row queries ---- */

/* Whether some rule's filters read the link's tags, or properties. */
static void
rules_read(bool *tags, bool *props)
{
	const struct rule_set *set = eval_rules(engine);

	*tags = *props = false;
	for (int i = 0; set != NULL && i < rules_count(set); i++) {
		const struct rule *r = rules_get(set, i);
		const struct filter *f[2] = {r->match, NULL};

		for (int j = 0; j < r->ngroup_by; j++)
			*tags |= strcmp(r->group_by[j], RULE_TAG_FIELD) == 0;
		/* {{ event.link.tag }}, {{ event.properties.KEY }} */
		for (int j = 0; j < r->nannotations; j++)
			for (int k = 0; k < r->annotations[j].nparts; k++) {
				const struct rule_tmpl_part *p =
				    &r->annotations[j].parts[k];

				if (p->ref != RULE_REF_EVENT)
					continue;
				*tags |= strcmp(p->text, RULE_TAG_FIELD) == 0;
				*props |=
				    strncmp(p->text, "properties.", 11) == 0;
			}

		if (r->kind->eval == &eval_ratio)
			f[1] =
			    ((const struct rule_ratio *)r->params)->numerator;
		for (int j = 0; j < 2; j++) {
			if (f[j] == NULL)
				continue;
			*tags |= filter_uses_tags(f[j]);
			*props |= filter_uses_properties(f[j]);
		}
	}
}

/* A link's tag names, as the rows carry them (a JSON array, or NULL). */
#define TAG_NAMES "json_agg(ft.name)::text"
#define TAG_FROM                                                               \
	" FROM link_tags flt JOIN tags ft ON ft.workspace_id = "               \
	"flt.workspace_id"                                                     \
	" AND ft.id = flt.tag_id"

/*
 * SELECT list and joins shared by the batch and the warm-up queries; the
 * tags and properties only when some rule reads them.  A batch (batch
 * set: from is a set of events with no WHERE) reads the tags of its
 * distinct links once each, not once per event: seven times cheaper at
 * 14,000 events over 10,000 links.  The warm-up, a cursor over up to
 * millions of events, reads them per event.
 */
static char *
rows_query(const char *from, const char *where, bool batch)
{
	char *cols = xstrdup(""), *next, *sql;
	bool tags, props;

	for (int i = 0; i < filter_nfields(); i++) {
		const char *f = filter_field_sql_at(i);

		next = f != NULL ? xprintf("%s, (%s)::text", cols, f)
				 : xprintf("%s, NULL", cols);
		free(cols);
		cols = next;
	}
	rules_read(&tags, &props);
	batch = batch && tags;
	sql = xprintf(
	    "%s%s%s"
	    "SELECT w.slug, (extract(epoch FROM e.occurred_at) * 1000)::bigint,"
	    " %s, %s%s"
	    " FROM %s"
	    " JOIN workspaces w ON w.id = e.workspace_id"
	    " LEFT JOIN links l ON l.workspace_id = e.workspace_id"
	    " AND l.id = e.link_id"
	    " LEFT JOIN visitors v ON v.workspace_id = e.workspace_id"
	    " AND v.id = e.visitor_id"
	    "%s"
	    "%s",
	    batch ? "WITH e AS MATERIALIZED (SELECT * FROM " : "",
	    batch ? from : "",
	    batch ? "), lt AS (SELECT flt.workspace_id, flt.link_id, " TAG_NAMES
		    " AS names" TAG_FROM
		    " WHERE (flt.workspace_id, flt.link_id) IN"
		    " (SELECT DISTINCT e.workspace_id, e.link_id FROM e)"
		    " GROUP BY 1, 2) "
		  : "",
	    !tags   ? "NULL"
	    : batch ? "lt.names"
		    : "(SELECT " TAG_NAMES TAG_FROM " WHERE flt.workspace_id = "
		      "e.workspace_id AND flt.link_id = e.link_id)",
	    props ? "CASE WHEN e.properties <> '{}' THEN e.properties::text END"
		  : "NULL",
	    cols, batch ? "e" : from,
	    batch ? " LEFT JOIN lt ON lt.workspace_id = e.workspace_id"
		    " AND lt.link_id = e.link_id"
		  : "",
	    where);
	free(cols);
	return sql;
}

static void
queries_build(void)
{
	if (sql_rows != NULL)
		return;
	sql_rows = rows_query(
	    "lp_batch_events($1::pg_snapshot, $2::pg_snapshot, $3::xid8,"
	    " $4::bigint, $5::xid8, $6::bigint) e",
	    " ORDER BY e.xid, e.id", true);
	/*
	 * Consumed before this batch: visible in the previous snapshot, or
	 * in the current one at or before the batch's start position.
	 */
	sql_warm = rows_query(
	    "events e",
	    " WHERE e.occurred_at > to_timestamp($7::bigint / 1000.0)"
	    " AND (pg_visible_in_snapshot(e.xid, $1::pg_snapshot)"
	    " OR (pg_visible_in_snapshot(e.xid, $2::pg_snapshot)"
	    " AND (e.xid, e.id) <= ($3::xid8, $4::bigint)))"
	    " AND $5::text IS NOT NULL AND $6::text IS NOT NULL",
	    false);
}

/* ---- feeding rows ---- */

struct rowctx {
	struct filter_row row;
	const char *props_text;
	json_t *props;
	bool parsed;
	char *last; /* the text property returned last */
};

static const char *
row_property(const struct filter_row *row, const char *key)
{
	struct rowctx *x = row->arg;
	json_t *v;

	if (!x->parsed) {
		x->parsed = true;
		if (x->props_text != NULL)
			x->props = json_loads(x->props_text, 0, NULL);
	}
	if (x->props == NULL || (v = json_object_get(x->props, key)) == NULL ||
	    json_is_null(v))
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	/* ->> gives other values as their JSON text. */
	free(x->last);
	x->last = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	return x->last;
}

/*
 * Feeds rows from..PQntuples(res) until deadline (mono_ms, 0: none) has
 * passed; returns the first row not fed.
 */
static int
feed(PGresult *res, int from, bool warming, int64_t deadline)
{
	int nf = filter_nfields(), nrows = PQntuples(res), r;
	const char **values = xcalloc((size_t)nf + 1, sizeof(char *));
	const char **tags = NULL;
	size_t ntags_cap = 0;

	for (r = from; r < nrows; r++) {
		struct rowctx x;
		struct eval_event ev;
		json_t *tj = NULL;
		size_t nt = 0;

		memset(&x, 0, sizeof x);
		for (int i = 0; i < nf; i++)
			values[i] = PQgetisnull(res, r, COL_FIELDS + i)
					? NULL
					: PQgetvalue(res, r, COL_FIELDS + i);
		if (!PQgetisnull(res, r, COL_TAGS) &&
		    (tj = json_loads(PQgetvalue(res, r, COL_TAGS), 0, NULL)) !=
			NULL &&
		    json_is_array(tj)) {
			nt = json_array_size(tj);
			if (nt > ntags_cap) {
				ntags_cap = nt;
				tags = xrealloc(tags, sizeof(char *) * nt);
			}
			for (size_t i = 0; i < nt; i++)
				tags[i] =
				    json_string_value(json_array_get(tj, i));
		}
		x.props_text = PQgetisnull(res, r, COL_PROPS)
				   ? NULL
				   : PQgetvalue(res, r, COL_PROPS);
		x.row.values = values;
		x.row.tags = tags;
		x.row.ntags = nt;
		x.row.property = row_property;
		x.row.arg = &x;
		ev.t_ms = strtoll(PQgetvalue(res, r, COL_T), NULL, 10);
		ev.workspace = PQgetvalue(res, r, COL_WS);
		ev.row = x.row;
		eval_event(engine, &ev, warming);
		json_decref(tj);
		json_decref(x.props);
		free(x.last);
		if (deadline != 0 && (r - from) % 256 == 255 &&
		    mono_ms() >= deadline) {
			r++;
			break;
		}
	}
	free(values);
	free(tags);
	return r;
}

/* ---- the steps ---- */

static void step_links(void);
static void step_warm(void);
static void step_feed(void);
static void step_tick(void);

static void
fail(const char *what, const char *error)
{
	char *msg = xprintf("%s: %s", what, error);

	run.done(run.batch, msg);
	free(msg);
}

static bool
json_labels(const char *text, char ***names, char ***values, int *n)
{
	json_t *o = json_loads(text, 0, NULL);
	const char *k;
	json_t *v;
	int i = 0;

	*n = 0;
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return false;
	}
	*names = xcalloc(json_object_size(o) + 1, sizeof(char *));
	*values = xcalloc(json_object_size(o) + 1, sizeof(char *));
	json_object_foreach(o, k, v)
	{
		(*names)[i] = xstrdup(k);
		(*values)[i] =
		    xstrdup(json_is_string(v) ? json_string_value(v) : "");
		i++;
	}
	*n = i;
	json_decref(o);
	return true;
}

static int64_t
ms_col(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c)
		   ? 0
		   : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static json_t *
ms_json(int64_t ms)
{
	char buf[40];

	if (ms == 0)
		return json_null();
	rfc3339_ms(ms, buf, sizeof buf);
	return json_string(buf);
}

static json_t *
text_or_null(PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? json_null()
				      : json_string(PQgetvalue(res, r, c));
}

/* A stored alert whose rule is gone: resolved without a notification. */
static json_t *
orphan_resolved(PGresult *res, int r)
{
	json_t *labels = json_loads(PQgetvalue(res, r, 2), 0, NULL);
	json_t *ann = json_loads(PQgetvalue(res, r, 9), 0, NULL);

	return json_pack(
	    "{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o, s:n, s:o, s:o, s:o,"
	    " s:o, s:b, s:b, s:i, s:o, s:[]}",
	    "workspace", PQgetvalue(res, r, 0), "rule", PQgetvalue(res, r, 1),
	    "fingerprint", PQgetvalue(res, r, 8), "labels",
	    labels != NULL ? labels : json_object(), "annotations",
	    ann != NULL ? ann : json_object(), "from", PQgetvalue(res, r, 3),
	    "state", "resolved", "value", text_or_null(res, r, 10), "threshold",
	    text_or_null(res, r, 11), "window", "activeAt",
	    ms_json(ms_col(res, r, 4)), "firedAt", ms_json(ms_col(res, r, 5)),
	    "resolvedAt", ms_json(run.now), "at", ms_json(run.now), "notify", 0,
	    "repeat", 0, "notifications", atoi(PQgetvalue(res, r, 7)),
	    "notifiedAt", ms_json(ms_col(res, r, 6)), "endpoints");
}

static json_t *orphans;

static void
restored_cb(PGresult *res, const char *error, void *arg)
{
	int n = 0, gone = 0;

	(void)arg;
	if (error != NULL) {
		fail("restoring alerts", error);
		return;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		char **names = NULL, **values = NULL;
		int nl = 0, st = alert_state_parse(PQgetvalue(res, r, 3));

		if (st < 0 ||
		    !json_labels(PQgetvalue(res, r, 2), &names, &values, &nl))
			continue;
		if (eval_restore(engine, PQgetvalue(res, r, 1),
				 PQgetvalue(res, r, 0), names, values, nl,
				 (enum alert_state)st, ms_col(res, r, 4),
				 ms_col(res, r, 5), ms_col(res, r, 6),
				 atoi(PQgetvalue(res, r, 7)))) {
			n++;
		} else {
			if (orphans == NULL)
				orphans = json_array();
			json_array_append_new(orphans, orphan_resolved(res, r));
			gone++;
		}
		for (int i = 0; i < nl; i++) {
			free(names[i]);
			free(values[i]);
		}
		free(names);
		free(values);
	}
	restored = true;
	if (n > 0 || gone > 0)
		log_info("alerts: %d alerts restored, %d of rules no longer "
			 "loaded resolve",
			 n, gone);
	step_links();
}

static bool
has_flatline(void)
{
	const struct rule_set *set = eval_rules(engine);

	for (int i = 0; set != NULL && i < rules_count(set); i++)
		if (rules_get(set, i)->kind->eval == &eval_flatline)
			return true;
	return false;
}

static void
links_cb(PGresult *res, const char *error, void *arg)
{
	(void)arg;
	if (error != NULL) {
		fail("reading links", error);
		return;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		json_t *a = json_loads(PQgetvalue(res, r, 1), 0, NULL);
		size_t n = json_is_array(a) ? json_array_size(a) : 0;
		char **ids = xcalloc(n + 1, sizeof(char *));

		for (size_t i = 0; i < n; i++)
			ids[i] =
			    (char *)json_string_value(json_array_get(a, i));
		eval_set_links(engine, PQgetvalue(res, r, 0), ids, (int)n,
			       run.now);
		free(ids);
		json_decref(a);
	}
	links_at = run.now;
	step_warm();
}

static void
step_links(void)
{
	if (!has_flatline() ||
	    (links_at != 0 && run.now - links_at < LINKS_EVERY_MS)) {
		step_warm();
		return;
	}
	db_conn_query(run.conn, 0, sql_links, 0, NULL, links_cb, NULL);
}

static void warm_fetch(void);

static void
warm_closed(PGresult *res, const char *error, void *arg)
{
	(void)res;
	(void)arg;
	if (error != NULL) {
		fail("warming", error);
		return;
	}
	eval_warmed(engine);
	log_info("alerts: windows warmed from %lld events",
		 (long long)run.warm_events);
	step_feed();
}

static void
warm_fetched(PGresult *res, const char *error, void *arg)
{
	(void)arg;
	if (error != NULL) {
		fail("warming", error);
		return;
	}
	feed(res, 0, true, 0);
	run.warm_events += PQntuples(res);
	if (PQntuples(res) < WARM_CHUNK) {
		db_conn_query(run.conn, 0, "CLOSE lp_alerts_warm", 0, NULL,
			      warm_closed, NULL);
		return;
	}
	warm_fetch();
}

static void
warm_fetch(void)
{
	static char sql[64];

	snprintf(sql, sizeof sql, "FETCH %d FROM lp_alerts_warm", WARM_CHUNK);
	db_conn_query(run.conn, 0, sql, 0, NULL, warm_fetched, NULL);
}

static void
warm_declared(PGresult *res, const char *error, void *arg)
{
	(void)res;
	(void)arg;
	if (error != NULL) {
		fail("warming", error);
		return;
	}
	warm_fetch();
}

static void
step_warm(void)
{
	int64_t back;
	char since[32];
	const char *params[7];
	char *sql;

	if (!eval_needs_warm(engine)) {
		step_feed();
		return;
	}
	back = eval_lookback_ms(engine);
	if (back <= 0) {
		eval_warmed(engine);
		step_feed();
		return;
	}
	snprintf(since, sizeof since, "%lld", (long long)(run.now - back));
	memcpy(params, run.batch->bounds, sizeof run.batch->bounds);
	params[6] = since;
	run.warm_events = 0;
	queries_build();
	sql =
	    xprintf("DECLARE lp_alerts_warm NO SCROLL CURSOR FOR %s", sql_warm);
	db_conn_query(run.conn, 0, sql, 7, params, warm_declared, NULL);
	free(sql);
}

static void
feed_slice(void *arg)
{
	(void)arg;
	run.next_row =
	    feed(run.rows, run.next_row, false, mono_ms() + SLICE_MS);
	if (run.next_row < PQntuples(run.rows)) {
		pipeline_later(run.batch, feed_slice, NULL);
		return;
	}
	PQclear(run.rows);
	run.rows = NULL;
	step_tick();
}

static void
rows_cb(PGresult *res, const char *error, void *arg)
{
	(void)arg;
	if (error != NULL) {
		fail("reading the batch", error);
		return;
	}
	run.rows = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	if (run.rows == NULL) {
		fail("reading the batch", "out of memory");
		return;
	}
	run.next_row = 0;
	feed_slice(NULL);
}

static void
step_feed(void)
{
	if (run.batch->nevents == 0) {
		step_tick();
		return;
	}
	queries_build(); /* a reload may have changed them meanwhile */
	db_conn_query(run.conn, 0, sql_rows, 6, run.batch->bounds, rows_cb,
		      NULL);
}

static json_t *
kv_object(const char *const *names, const char *const *values, int n)
{
	json_t *o = json_object();

	for (int i = 0; i < n; i++)
		json_object_set_new(o, names[i], json_string(values[i]));
	return o;
}

static json_t *
change_json(const struct eval_alert *a)
{
	const struct rule *r = a->rule;
	json_t *eps = json_array();
	char window[64];

	for (int i = 0; i < r->nnotify; i++)
		json_array_append_new(eps, json_string(r->notify[i]));
	format_duration(a->window_ms, window, sizeof window);
	return json_pack(
	    "{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o,"
	    " s:o, s:o, s:b, s:b, s:i, s:o, s:o}",
	    "workspace", a->workspace, "rule", r->name, "fingerprint",
	    a->fingerprint, "labels",
	    kv_object(a->label_names, a->label_values, a->nlabels),
	    "annotations",
	    kv_object(a->annotation_names, a->annotation_values,
		      a->nannotations),
	    "severity", rule_severity_name(r->severity), "from",
	    alert_state_name(a->from), "state", alert_state_name(a->state),
	    "value", a->value != NULL ? json_string(a->value) : json_null(),
	    "threshold",
	    a->threshold != NULL ? json_string(a->threshold) : json_null(),
	    "window", window, "activeAt", ms_json(a->active_at_ms), "firedAt",
	    ms_json(a->fired_at_ms), "resolvedAt", ms_json(a->resolved_at_ms),
	    "at", ms_json(a->at_ms), "notify", a->notify, "repeat", a->repeat,
	    "notifications", a->notifications, "notifiedAt",
	    ms_json(a->notified_at_ms), "endpoints", eps);
}

static void
pruned(PGresult *res, const char *error, void *arg)
{
	long n;

	(void)arg;
	if (error != NULL) {
		fail("pruning alert history", error);
		return;
	}
	pruned_at = run.now;
	n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	if (n > 0)
		log_info("alerts: retention removed %ld history rows and "
			 "resolved alerts",
			 n);
	run.done(run.batch, NULL);
}

static void
flushed(PGresult *res, const char *error, void *arg)
{
	char age[32], limit[16];
	const char *params[2] = {age, limit};

	(void)arg;
	if (error != NULL) {
		fail("sending grouped notifications", error);
		return;
	}
	queued += strtol(PQgetvalue(res, 0, 0), NULL, 10);
	if (run.now - pruned_at < PRUNE_EVERY_MS) {
		run.done(run.batch, NULL);
		return;
	}
	snprintf(age, sizeof age, "%lld", (long long)retention_ms);
	snprintf(limit, sizeof limit, "%d", PRUNE_LIMIT);
	db_conn_query(run.conn, 0, sql_prune, 2, params, pruned, NULL);
}

static void
applied(PGresult *res, const char *error, void *arg)
{
	(void)arg;
	if (error != NULL) {
		fail("applying alert changes", error);
		return;
	}
	queued += strtol(PQgetvalue(res, 0, 0), NULL, 10);
	db_conn_query(run.conn, 0, sql_flush, 0, NULL, flushed, NULL);
}

static void
count_change(const struct eval_alert *a)
{
	char labels[64];

	snprintf(labels, sizeof labels, "state=\"%s\"",
		 alert_state_name(a->state));
	metrics_counter_add("linkpulse_alerts_changes_total",
			    "Alert state changes, by the state entered.",
			    labels, 1);
	if (a->notify)
		metrics_counter_add("linkpulse_alerts_notifications_total",
				    "Alert notifications queued (before "
				    "silences).",
				    "", 1);
	if (a->state != a->from || a->repeat)
		log_info("alerts: %s %s -> %s (value %s)%s", a->rule->name,
			 alert_state_name(a->from), alert_state_name(a->state),
			 a->value != NULL ? a->value : "-",
			 a->notify ? ", notifying" : "");
}

static void step_changes(void);

static void
tick_slice(void *arg)
{
	double started = mono_sec();
	bool done = eval_tick_part(engine, run.now, &run.next_rule, TICK_SLICE);

	(void)arg;
	run.tick_spent += mono_sec() - started;
	if (!done) {
		pipeline_later(run.batch, tick_slice, NULL);
		return;
	}
	metrics_histogram_observe("linkpulse_rules_tick_duration_seconds",
				  "Time to evaluate every rule once.", "",
				  run.tick_spent);
	step_changes();
}

static void
step_tick(void)
{

	/*
	 * Condition rules are evaluated about once a second, not at every
	 * batch: a busy stream has several batches a second, and a tick
	 * walks every group.  Event kinds fired as the batch was fed.
	 */
	/*
	 * While the pipeline is behind, the windows lack the events still
	 * waiting: a flatline would fire on a busy link.  Evaluation waits
	 * for the pipeline to catch up, for up to BEHIND_MAX_MS.
	 */
	if (run.batch->more && !behind) {
		log_info("alerts: the pipeline is behind; rules are "
			 "evaluated once it has caught up");
		behind = true;
		behind_since = run.now;
	}
	if (run.batch->more &&
	    run.now - (ticked_at > behind_since ? ticked_at : behind_since) <
		BEHIND_MAX_MS) {
		/* Waits (a start or a gap too: ticked_at is 0 then). */
	} else if (run.now - ticked_at >= TICK_MS - 50) {
		behind = false;
		ticked_at = run.now;
		run.next_rule = 0;
		run.tick_spent = 0;
		tick_slice(NULL);
		return;
	}
	step_changes();
}

static void
step_changes(void)
{
	struct eval_alert *ch;
	json_t *arr;
	char *text;
	int n;

	if (run.now - stats_at >= STATS_EVERY_MS) {
		/* A walk over every group: not at every tick. */
		stats_at = run.now;
		metrics_gauge_set(
		    "linkpulse_rules_groups",
		    "Groups (rule and key) held by the rules engine.", "",
		    (double)eval_groups(engine));
		metrics_gauge_set(
		    "linkpulse_rules_state_bytes",
		    "Memory held by the rules' windows and alerts.", "",
		    (double)eval_bytes(engine));
#ifdef HAVE_MALLOC_TRIM
		/*
		 * Windows grow and shrink with the traffic, and batches
		 * come and go: hand the pages they freed back to the
		 * system, or the daemon's RSS keeps every peak.
		 */
		malloc_trim(0);
#endif
	}
	ch = eval_take(engine, &n);
	arr = orphans != NULL ? orphans : json_array();
	orphans = NULL;
	for (int i = 0; i < n; i++) {
		count_change(&ch[i]);
		json_array_append_new(arr, change_json(&ch[i]));
	}
	eval_alerts_free(ch, n);
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		db_conn_query(run.conn, 0, sql_flush, 0, NULL, flushed, NULL);
		return;
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	db_conn_query(run.conn, 0, sql_apply, 1, (const char *const *)&text,
		      applied, NULL);
	free(text);
}

/* ---- the consumer ---- */

static void
alerts_process(struct pipeline_batch *batch, struct db_conn *conn,
	       pipeline_done_fn done)
{
	int64_t now = wall_ms();

	if (engine == NULL ||
	    (restored && orphans == NULL && eval_pending(engine) == 0 &&
	     rules_count(eval_rules(engine)) == 0)) {
		done(batch, NULL);
		return;
	}
	/* A gap: another instance led, or the database was away. */
	if (last_run != 0 && now - last_run > GAP_MS && restored) {
		log_info("alerts: %lld s since the last evaluation here; "
			 "reading the alerts' state again",
			 (long long)(now - last_run) / 1000);
		eval_reset(engine);
		restored = false;
		links_at = 0;
		ticked_at = 0;
	}
	last_run = now;
	queries_build();
	run.batch = batch;
	run.conn = conn;
	run.done = done;
	run.now = now;
	queued = 0;
	if (!restored) {
		json_decref(orphans);
		orphans = NULL;
		db_conn_query(conn, 0, sql_restore, 0, NULL, restored_cb, NULL);
		return;
	}
	step_links();
}

static bool
alerts_wants_tick(void)
{
	if (engine == NULL)
		return false;
	if (rules_count(eval_rules(engine)) == 0)
		return !restored || eval_pending(engine) > 0;
	return wall_ms() - ticked_at >= TICK_MS - 50 || !restored ||
	       eval_needs_warm(engine);
}

static void
alerts_committed(const struct pipeline_batch *batch)
{
	(void)batch;
	/* From the end of a long run (a warm-up), not its start. */
	if (last_run != 0)
		last_run = wall_ms();
	if (queued > 0) {
		log_debug("alerts: %ld notifications queued", queued);
		outbox_wake();
	}
	queued = 0;
}

static void
alerts_aborted(void)
{
	if (engine == NULL || run.batch == NULL)
		return;
	/* Memory may be ahead of the database now: start over from it. */
	eval_reset(engine);
	restored = false;
	links_at = 0;
	json_decref(orphans);
	orphans = NULL;
	run.batch = NULL;
}

const struct pipeline_consumer alerts_consumer = {
    .name = "alerts",
    .wants_rows = false,
    .process = alerts_process,
    .committed = alerts_committed,
    .wants_tick = alerts_wants_tick,
    .aborted = alerts_aborted,
};

/* ---- rules and the API ---- */

void
alerts_configure(const struct lp_config *cfg)
{
	retention_ms = cfg->retention.alerts_ms;
}

void
alerts_set_rules(struct rule_set *set)
{
	if (engine == NULL)
		engine = eval_new();
	eval_set_rules(engine, set, wall_ms());
	/* The row queries read what the new rules need. */
	free(sql_rows);
	free(sql_warm);
	sql_rows = sql_warm = NULL;
}

const struct rule_set *
alerts_rules(void)
{
	return engine != NULL ? eval_rules(engine) : NULL;
}

json_t *
alerts_rules_json(const char *ws)
{
	const struct rule_set *set = alerts_rules();
	json_t *a = json_array();

	for (int i = 0; set != NULL && i < rules_count(set); i++) {
		const struct rule *r = rules_get(set, i);
		struct eval_rule_stats st;
		json_t *labels = json_object(), *ann = json_object();
		json_t *notify = json_array(), *group = json_array();
		char f[64], k[64];

		if (strcmp(r->workspace, "*") != 0 &&
		    strcmp(r->workspace, ws) != 0)
			continue;
		eval_rule_stats(engine, r, &st);
		for (int j = 0; j < r->nlabels; j++)
			json_object_set_new(labels, r->label_names[j],
					    json_string(r->label_values[j]));
		for (int j = 0; j < r->nannotations; j++)
			json_object_set_new(
			    ann, r->annotations[j].name,
			    json_string(r->annotations[j].source));
		for (int j = 0; j < r->nnotify; j++)
			json_array_append_new(notify,
					      json_string(r->notify[j]));
		for (int j = 0; j < r->ngroup_by; j++)
			json_array_append_new(group,
					      json_string(r->group_by[j]));
		format_duration(r->for_ms, f, sizeof f);
		format_duration(r->keep_firing_for_ms, k, sizeof k);
		json_array_append_new(
		    a,
		    json_pack(
			"{s:s, s:s, s:s, s:s, s:i, s:s, s:o, s:o, s:o, "
			"s:o, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, "
			"s:o, s:s}",
			"name", r->name, "workspace", r->workspace, "kind",
			r->kind->name, "file", r->file, "line", r->line,
			"severity", rule_severity_name(r->severity), "labels",
			labels, "annotations", ann, "notify", notify, "groupBy",
			group, "for", f, "keepFiringFor", k, "sendResolved",
			r->send_resolved, "groups", (json_int_t)st.groups,
			"pending", (json_int_t)st.pending, "firing",
			(json_int_t)st.firing, "events", (json_int_t)st.events,
			"stateBytes", (json_int_t)st.bytes, "lastEvaluation",
			ms_json(st.last_eval_ms), "health",
			eval_needs_warm(engine) || !restored ? "warming"
							     : "ok"));
	}
	return a;
}

void
alerts_set_reloader(bool (*fn)(void *, struct strlist *), void *arg)
{
	reload_fn = fn;
	reload_arg = arg;
}

bool
alerts_reload(struct strlist *errs)
{
	if (reload_fn == NULL) {
		strlist_add(errs, "reloading is not available");
		return false;
	}
	return reload_fn(reload_arg, errs);
}

void
alerts_note_reload(bool ok, const struct strlist *errs)
{
	strlist_free(&last_reload.errs);
	last_reload.at = wall_ms();
	last_reload.ok = ok;
	for (size_t i = 0; errs != NULL && i < errs->n; i++)
		strlist_add(&last_reload.errs, errs->v[i]);
}

json_t *
alerts_reload_json(void)
{
	json_t *errs = json_array();

	for (size_t i = 0; i < last_reload.errs.n; i++)
		json_array_append_new(errs, json_string(last_reload.errs.v[i]));
	return json_pack("{s:o, s:b, s:o}", "at", ms_json(last_reload.at),
			 "successful", last_reload.ok, "errors", errs);
}

void
alerts_shutdown(void)
{
	strlist_free(&last_reload.errs);
	eval_free(engine);
	engine = NULL;
	free(sql_rows);
	free(sql_warm);
	sql_rows = sql_warm = NULL;
	json_decref(orphans);
	orphans = NULL;
	if (run.rows != NULL)
		PQclear(run.rows);
	run.rows = NULL;
}
