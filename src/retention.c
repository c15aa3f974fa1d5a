/*
 * retention.c - upkeep of the events table (retention.h).  Two timers:
 * lp_ensure_event_partitions for the months around now, at the start and
 * every hour; lp_events_prune while this instance leads the pipeline, a
 * few seconds after the start and every ten minutes, one short
 * transaction per call until a call removes less than its limit.  Calls
 * db.c and metrics.c.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "log.h"
#include "metrics.h"
#include "retention.h"
#include "util.h"

#define PARTITIONS_EVERY_MS (3600 * 1000)
#define PRUNE_FIRST_MS	    5000
#define PRUNE_EVERY_MS	    (600 * 1000)
/* Rows a call removes at most (of events, and of keys and traces). */
#define PRUNE_LIMIT 5000

struct retention {
	struct db_pool *db;
	struct pipeline *pipeline;
	struct event *partitions_ev;
	struct event *prune_ev;
	bool stopping;
	bool pruning;
	int64_t pruned; /* rows removed by this run */
	int64_t partitions_before;
};

static const char sql_partitions[] =
    "SELECT lp_ensure_event_partitions(now() - interval '1 month',"
    " now() + interval '3 months')";
static const char sql_prune[] = "SELECT lp_events_prune($1::int)";
static const char sql_count_partitions[] =
    "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass";

/* ---- partitions ahead of time ---- */

static void
partitions_done(PGresult *res, const char *error, void *arg)
{
	(void)arg;
	if (error != NULL && !*(bool *)arg)
		log_warn("partitions: could not create event partitions: %s",
			 error);
	else if (atoi(PQgetvalue(res, 0, 0)) > 0)
		log_info("partitions: created %s event partition(s)",
			 PQgetvalue(res, 0, 0));
}

static void
partitions_cb(evutil_socket_t fd, short what, void *arg)
{
	struct retention *r = arg;

	(void)fd;
	(void)what;
	if (r->stopping)
		return;
	timer_after(r->partitions_ev, PARTITIONS_EVERY_MS);
	db_query(r->db, sql_partitions, 0, NULL, partitions_done, &r->stopping);
}

/* ---- expired events ---- */

static void prune_next(struct retention *);

static void
prune_over(struct retention *r)
{
	r->pruning = false;
	if (r->pruned > 0)
		log_info("retention: removed %" PRId64
			 " expired events, keys and traces",
			 r->pruned);
}

static void
counted_after(PGresult *res, const char *error, void *arg)
{
	struct retention *r = arg;
	int64_t after;

	if (error == NULL) {
		after = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		if (after < r->partitions_before)
			log_info("retention: dropped %" PRId64
				 " monthly event partition(s) past every "
				 "workspace's retention",
				 r->partitions_before - after);
	}
	prune_over(r);
}

static void
pruned(PGresult *res, const char *error, void *arg)
{
	struct retention *r = arg;
	int64_t n;

	if (error != NULL && r->stopping) {
		r->pruning = false;
		return;
	}
	if (error != NULL) {
		log_warn("retention: could not remove expired events: %s",
			 error);
		r->pruning = false;
		return;
	}
	n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	r->pruned += n;
	metrics_counter_add("linkpulse_retention_rows_deleted_total",
			    "Expired events, idempotency keys and traces "
			    "removed.",
			    "", (double)n);
	if (n >= PRUNE_LIMIT && !r->stopping) {
		prune_next(r);
		return;
	}
	if (r->stopping) {
		prune_over(r);
		return;
	}
	db_query(r->db, sql_count_partitions, 0, NULL, counted_after, r);
}

static void
prune_next(struct retention *r)
{
	char limit[16];
	const char *params[1] = {limit};

	snprintf(limit, sizeof limit, "%d", PRUNE_LIMIT);
	db_query(r->db, sql_prune, 1, params, pruned, r);
}

static void
counted_before(PGresult *res, const char *error, void *arg)
{
	struct retention *r = arg;

	if (error != NULL || r->stopping) {
		if (!r->stopping)
			log_warn("retention: %s", error);
		r->pruning = false;
		return;
	}
	r->partitions_before = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	prune_next(r);
}

static void
prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct retention *r = arg;

	(void)fd;
	(void)what;
	if (r->stopping)
		return;
	timer_after(r->prune_ev, PRUNE_EVERY_MS);
	/* One instance at a time: the one reading the event stream. */
	if (r->pruning || !pipeline_is_leader(r->pipeline))
		return;
	r->pruning = true;
	r->pruned = 0;
	db_query(r->db, sql_count_partitions, 0, NULL, counted_before, r);
}

/* ---- life ---- */

struct retention *
retention_new(struct event_base *base, struct db_pool *db,
	      struct pipeline *pipeline)
{
	struct retention *r = xcalloc(1, sizeof(*r));

	r->db = db;
	r->pipeline = pipeline;
	r->partitions_ev = evtimer_new(base, partitions_cb, r);
	r->prune_ev = evtimer_new(base, prune_cb, r);
	timer_after(r->partitions_ev, 0);
	timer_after(r->prune_ev, PRUNE_FIRST_MS);
	return r;
}

void
retention_stop(struct retention *r)
{
	if (r == NULL)
		return;
	r->stopping = true;
	event_del(r->partitions_ev);
	event_del(r->prune_ev);
}

void
retention_free(struct retention *r)
{
	if (r == NULL)
		return;
	event_free(r->partitions_ev);
	event_free(r->prune_ev);
	free(r);
}
