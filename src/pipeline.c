/*
 * pipeline.c - the scan event pipeline behind pipeline.h: leadership by
 * lease, batches read from the snapshot cursor, consumers run in order on
 * one held connection inside the batch's transaction, and the cursor
 * advanced in that same transaction.  Woken by NOTIFY (main.c calls
 * pipeline_wake), by a fallback poll, and at once again while a snapshot
 * pair still has events left.  Calls db.c and metrics.c; the consumers
 * are the rows of the table below.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "outbox.h"
#include "alerts.h"
#include "rollup.h"
#include "scoring.h"
#include "util.h"

/* The consumers, in the order they see each batch. */
static const struct pipeline_consumer *const consumers[] = {
    &rollup_consumer,
    &scoring_consumer,
    &alerts_consumer,
    &outbox_consumer,
};

#define RETRY_MS	 1000
#define WATCH_INTERVAL_S 5

/* Fine around the one-second target, so a p99 can be read off. */
static const double lag_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.2,
				     0.3,   0.5,  0.75,	 1,    1.5, 2,
				     3,	    5,	  10,	 30};
static const double batch_size_buckets[] = {1,	 10,   50,   100,  250,
					    500, 1000, 2500, 5000, 10000};

enum step { STEP_IDLE, STEP_RUNNING };

struct pipeline {
	struct event_base *base;
	struct db_pool *db;
	struct pipeline_options opts;
	char owner[128];
	bool leader;
	bool running;
	bool wake_pending;
	bool stopping;
	void (*stop_done)(void *);
	void *stop_arg;

	struct event *wake_ev;
	struct event *poll_ev;
	struct event *lease_ev;
	struct event *retry_ev;
	struct event *watch_ev;
	struct event *later_ev; /* pipeline_later */
	void (*later_fn)(void *);
	void *later_arg;

	/* The batch in progress. */
	struct db_conn *conn;
	struct pipeline_batch batch;
	char *bounds[6];
	bool complete;
	bool need_rows;
	double newest_received; /* Unix seconds, 0 if unknown */
	size_t next_consumer;
	bool ticking; /* an empty batch run for the consumers' timers */
	int last_waiting_pid;
	int limit; /* the next batch's most events */
};

static const char sql_lease[] =
    "SELECT leader, became FROM lp_pipeline_lease($1, $2::int, $3::boolean)";
static const char sql_batch[] =
    "SELECT prev, cur, from_xid, from_id, to_xid, to_id, n, complete,"
    " extract(epoch FROM newest_received) FROM lp_pipeline_batch($1, $2::int)";
static const char sql_rows[] =
    "SELECT * FROM lp_batch_events($1::pg_snapshot, $2::pg_snapshot,"
    " $3::xid8, $4::bigint, $5::xid8, $6::bigint) ORDER BY xid, id";
static const char sql_advance[] =
    "SELECT lp_pipeline_advance($1, $2::pg_snapshot, $3::xid8, $4::bigint,"
    " $5::boolean, $6::int, $7::int)";
/* An open transaction older than the watch interval holds the cursor's
 * snapshot back: its events, and every later one, wait for it. */
static const char sql_waiting[] =
    "SELECT pid, extract(epoch FROM now() - xact_start)::int"
    " FROM pg_stat_activity"
    " WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
    " AND xact_start < now() - interval '5 seconds'"
    " ORDER BY xact_start LIMIT 1";

static void start_batch(struct pipeline *);

static struct pipeline *
from_batch(struct pipeline_batch *b)
{
	return (struct pipeline *)((char *)b -
				   offsetof(struct pipeline, batch));
}

static void
set_leader_metric(struct pipeline *p)
{
	metrics_gauge_set("linkpulse_pipeline_leader",
			  "1 while this instance reads the event stream.", "",
			  p->leader);
}

/* ---- the end of a batch ---- */

static void
batch_reset(struct pipeline *p)
{
	for (size_t i = 0; i < nitems(p->bounds); i++) {
		free(p->bounds[i]);
		p->bounds[i] = NULL;
		p->batch.bounds[i] = NULL;
	}
	if (p->batch.rows != NULL)
		PQclear(p->batch.rows);
	p->batch.rows = NULL;
	p->batch.nevents = 0;
	p->batch.consumer_state = NULL;
}

static void
lease_released(PGresult *res, const char *error, void *arg)
{
	struct pipeline *p = arg;
	void (*done)(void *) = p->stop_done;

	if (error != NULL)
		log_warn("pipeline: could not give up the lease: %s", error);
	p->stop_done = NULL;
	if (done != NULL)
		done(p->stop_arg);
}

/* Called once the running batch is over, whatever its outcome. */
static void
batch_over(struct pipeline *p, bool again)
{
	const char *params[3];
	char ttl[32];

	if (p->conn != NULL) {
		db_release(p->conn);
		p->conn = NULL;
	}
	batch_reset(p);
	p->running = false;
	if (p->stopping) {
		if (!p->leader) {
			lease_released(NULL, NULL, p);
			return;
		}
		/* Hand over at once instead of letting the lease run out. */
		p->leader = false;
		set_leader_metric(p);
		snprintf(ttl, sizeof ttl, "%lld", (long long)p->opts.lease_ms);
		params[0] = p->owner;
		params[1] = ttl;
		params[2] = "true";
		db_query(p->db, sql_lease, 3, params, lease_released, p);
		return;
	}
	if (again || p->wake_pending)
		pipeline_wake(p);
}

/*
 * The next batch may take twice what this one took, between batch_size and
 * batch_max: a pipeline that fell behind catches up in a few large batches
 * (each batch's fixed costs, and each hot rollup row's rewrite, are paid
 * once for many events), and one that keeps up returns to small ones.
 */
static void
next_limit(struct pipeline *p, int n)
{
	int64_t want = 2 * (int64_t)n;

	if (want > p->opts.batch_max)
		want = p->opts.batch_max;
	if (want < p->opts.batch_size)
		want = p->opts.batch_size;
	p->limit = (int)want;
}

static void
batch_failed(struct pipeline *p, const char *what, const char *error)
{
	log_warn("pipeline: batch failed at %s: %s; retrying in %d ms", what,
		 error, RETRY_MS);
	for (size_t i = 0; i < nitems(consumers); i++)
		if (consumers[i]->aborted != NULL)
			consumers[i]->aborted();
	metrics_counter_add("linkpulse_pipeline_batch_failures_total",
			    "Batches rolled back after an error.", "", 1);
	/* Perhaps it was too large for the statement timeout. */
	next_limit(p, 0);
	/* Releasing a connection inside a transaction rolls it back. */
	batch_over(p, false);
	if (!p->stopping)
		timer_after(p->retry_ev, RETRY_MS);
}

static void
committed(PGresult *res, const char *error, void *arg)
{
	struct pipeline *p = arg;
	int n = p->batch.nevents;
	char labels[8] = "";

	if (error != NULL) {
		batch_failed(p, "commit", error);
		return;
	}
	if (n > 0) {
		metrics_counter_add("linkpulse_pipeline_events_total",
				    "Events consumed by the pipeline.", labels,
				    n);
		metrics_counter_add("linkpulse_pipeline_batches_total",
				    "Batches committed with events.", labels,
				    1);
		metrics_histogram_observe_buckets(
		    "linkpulse_pipeline_batch_size", "Events per batch.",
		    labels, n, batch_size_buckets, nitems(batch_size_buckets));
		if (p->newest_received > 0) {
			double lag =
			    (double)wall_ms() / 1000 - p->newest_received;

			if (lag < 0)
				lag = 0;
			metrics_gauge_set("linkpulse_pipeline_lag_seconds",
					  "Now minus the insert time of the "
					  "newest event of the last batch.",
					  labels, lag);
			metrics_histogram_observe_buckets(
			    "linkpulse_pipeline_lag_distribution_seconds",
			    "Insert-to-consumed delay of each batch's newest "
			    "event.",
			    labels, lag, lag_buckets, nitems(lag_buckets));
		}
		log_debug("pipeline: batch of %d events committed%s", n,
			  p->complete ? "" : " (more in this snapshot)");
	}
	for (size_t i = 0; i < nitems(consumers); i++) {
		if (consumers[i]->committed != NULL && (n > 0 || p->ticking))
			consumers[i]->committed(&p->batch);
	}
	next_limit(p, n);
	/* A snapshot pair with events left is walked on at once. */
	batch_over(p, !p->complete);
}

static void
advanced(PGresult *res, const char *error, void *arg)
{
	struct pipeline *p = arg;

	if (error != NULL || PQntuples(res) != 1) {
		batch_failed(p, "cursor advance",
			     error ? error : "the cursor is no longer ours");
		return;
	}
	db_conn_query(p->conn, -1, "COMMIT", 0, NULL, committed, p);
}

static void
advance(struct pipeline *p)
{
	char n[16], ttl[32];
	const char *params[7] = {p->owner,
				 p->bounds[1],
				 p->bounds[4],
				 p->bounds[5],
				 p->complete ? "true" : "false",
				 n,
				 ttl};

	snprintf(n, sizeof n, "%d", p->batch.nevents);
	snprintf(ttl, sizeof ttl, "%lld", (long long)p->opts.lease_ms);
	db_conn_query(p->conn, 0, sql_advance, 7, params, advanced, p);
}

/* ---- consumers ---- */

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;
	void (*fn)(void *) = p->later_fn;

	(void)fd;
	(void)what;
	p->later_fn = NULL;
	if (fn != NULL)
		fn(p->later_arg);
}

void
pipeline_later(struct pipeline_batch *b, void (*fn)(void *), void *arg)
{
	struct pipeline *p = from_batch(b);
	struct timeval now = {0, 0};

	p->later_fn = fn;
	p->later_arg = arg;
	/*
	 * A timer, not event_active: an event made active from a callback
	 * runs in the same turn of the loop, before it polls sockets again.
	 */
	evtimer_add(p->later_ev, &now);
}

static void run_next_consumer(struct pipeline *);

static void
consumer_done(struct pipeline_batch *b, const char *error)
{
	struct pipeline *p = from_batch(b);

	if (error != NULL) {
		char *what = xprintf("consumer %s",
				     consumers[p->next_consumer - 1]->name);

		batch_failed(p, what, error);
		free(what);
		return;
	}
	run_next_consumer(p);
}

static void
run_next_consumer(struct pipeline *p)
{
	const struct pipeline_consumer *c;

	/* An empty batch runs only the consumers that tick. */
	while (p->next_consumer < nitems(consumers) && p->batch.nevents == 0 &&
	       consumers[p->next_consumer]->wants_tick == NULL)
		p->next_consumer++;
	if (p->next_consumer == nitems(consumers)) {
		advance(p);
		return;
	}
	p->batch.consumer_state = NULL;
	c = consumers[p->next_consumer++];
	c->process(&p->batch, p->conn, consumer_done);
}

static void
rows_read(PGresult *res, const char *error, void *arg)
{
	struct pipeline *p = arg;

	if (error != NULL) {
		batch_failed(p, "reading events", error);
		return;
	}
	/* The result is cleared after this callback: keep a copy. */
	p->batch.rows = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	if (p->batch.rows == NULL)
		fatal("pipeline: out of memory copying a batch");
	run_next_consumer(p);
}

/* ---- the start of a batch ---- */

static bool
tick_wanted(void)
{
	bool want = false;

	for (size_t i = 0; i < nitems(consumers); i++)
		if (consumers[i]->wants_tick != NULL &&
		    consumers[i]->wants_tick())
			want = true;
	return want;
}

static void
batch_opened(PGresult *res, const char *error, void *arg)
{
	struct pipeline *p = arg;

	if (error != NULL) {
		batch_failed(p, "opening a batch", error);
		return;
	}
	if (PQntuples(res) == 0) {
		/* The lease is gone: another instance leads now. */
		if (p->leader)
			log_warn("pipeline: lost the lease; no longer the "
				 "leader");
		p->leader = false;
		set_leader_metric(p);
		batch_over(p, false);
		return;
	}
	for (int i = 0; i < 6; i++) {
		p->bounds[i] = xstrdup(PQgetvalue(res, 0, i));
		p->batch.bounds[i] = p->bounds[i];
	}
	p->batch.nevents = atoi(PQgetvalue(res, 0, 6));
	p->complete = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
	p->batch.more = !p->complete;
	p->newest_received =
	    PQgetisnull(res, 0, 8) ? 0 : strtod(PQgetvalue(res, 0, 8), NULL);

	p->ticking = p->batch.nevents == 0 && tick_wanted();
	if (p->batch.nevents == 0 && !p->ticking &&
	    strcmp(p->bounds[0], p->bounds[1]) == 0) {
		/* Nothing committed since the last look: no write needed. */
		batch_over(p, false);
		return;
	}
	p->next_consumer = 0;
	if (p->batch.nevents == 0) {
		/* Only the snapshot moves (and the timers run, if asked). */
		run_next_consumer(p);
	} else if (p->need_rows) {
		db_conn_query(p->conn, 0, sql_rows, 6,
			      (const char *const *)p->bounds, rows_read, p);
	} else {
		run_next_consumer(p);
	}
}

static void
begun(PGresult *res, const char *error, void *arg)
{
	struct pipeline *p = arg;
	char limit[16];
	const char *params[2] = {p->owner, limit};

	if (error != NULL) {
		batch_failed(p, "BEGIN", error);
		return;
	}
	snprintf(limit, sizeof limit, "%d", p->limit);
	db_conn_query(p->conn, 0, sql_batch, 2, params, batch_opened, p);
}

static void
conn_acquired(struct db_conn *conn, void *arg)
{
	struct pipeline *p = arg;

	if (conn == NULL) {
		p->running = false;
		return;
	}
	p->conn = conn;
	db_conn_query(conn, -1, "BEGIN", 0, NULL, begun, p);
}

static void
start_batch(struct pipeline *p)
{
	p->running = true;
	p->wake_pending = false;
	db_acquire(p->db, conn_acquired, p);
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;

	if (p->stopping || !p->leader)
		return;
	if (p->running) {
		p->wake_pending = true;
		return;
	}
	start_batch(p);
}

void
pipeline_wake(struct pipeline *p)
{
	/* Deferred to the loop: a NOTIFY storm becomes one wake-up. */
	event_active(p->wake_ev, EV_TIMEOUT, 0);
}

/* ---- leadership ---- */

static void
lease_done(PGresult *res, const char *error, void *arg)
{
	struct pipeline *p = arg;
	bool leader, became;

	if (p->stopping)
		return;
	if (error != NULL) {
		log_warn("pipeline: lease renewal failed: %s", error);
		return;
	}
	leader = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	became = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	if (leader && became) {
		log_info("pipeline: this instance (%s) is now the leader",
			 p->owner);
		metrics_counter_add(
		    "linkpulse_pipeline_ownership_changes_total",
		    "Times this instance became the leader.", "", 1);
	} else if (!leader && p->leader) {
		log_warn("pipeline: another instance holds the lease now");
	}
	p->leader = leader;
	set_leader_metric(p);
	if (leader)
		pipeline_wake(p);
}

static void
lease_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;
	char ttl[32];
	const char *params[3] = {p->owner, ttl, "false"};

	if (p->stopping)
		return;
	snprintf(ttl, sizeof ttl, "%lld", (long long)p->opts.lease_ms);
	/* Short timeout: a renewal that is late is as bad as a lost one. */
	db_query_timeout(p->db, p->opts.lease_ms / 2, sql_lease, 3, params,
			 lease_done, p);
}

/* ---- upkeep ---- */

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	pipeline_wake(arg);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	pipeline_wake(arg);
}

static void
waiting_done(PGresult *res, const char *error, void *arg)
{
	struct pipeline *p = arg;
	int pid;

	if (error != NULL)
		return;
	if (PQntuples(res) == 0) {
		metrics_gauge_set("linkpulse_pipeline_snapshot_waiting",
				  "1 while an open transaction holds the "
				  "cursor's snapshot back.",
				  "", 0);
		p->last_waiting_pid = 0;
		return;
	}
	pid = atoi(PQgetvalue(res, 0, 0));
	metrics_gauge_set("linkpulse_pipeline_snapshot_waiting",
			  "1 while an open transaction holds the cursor's "
			  "snapshot back.",
			  "", 1);
	if (pid != p->last_waiting_pid)
		log_warn("pipeline: backend pid %d has held a transaction open "
			 "for %s s; events written after it started are read "
			 "as they commit, its own once it ends",
			 pid, PQgetvalue(res, 0, 1));
	p->last_waiting_pid = pid;
}

static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;

	if (p->leader && !p->stopping)
		db_query(p->db, sql_waiting, 0, NULL, waiting_done, p);
}

/* ---- life cycle ---- */

struct pipeline *
pipeline_new(struct event_base *base, struct db_pool *db,
	     const struct pipeline_options *opts)
{
	struct pipeline *p = xcalloc(1, sizeof *p);
	char host[64] = "host";
	char *tail = random_base62(6);

	p->base = base;
	p->db = db;
	p->opts = *opts;
	if (p->opts.batch_size <= 0)
		p->opts.batch_size = 1000;
	if (p->opts.batch_max < p->opts.batch_size)
		p->opts.batch_max = p->opts.batch_size;
	p->limit = p->opts.batch_size;
	if (p->opts.poll_interval_ms <= 0)
		p->opts.poll_interval_ms = 1000;
	if (p->opts.lease_ms <= 0)
		p->opts.lease_ms = 3000;
	gethostname(host, sizeof host - 1);
	snprintf(p->owner, sizeof p->owner, "%s:%d:%s", host, (int)getpid(),
		 tail);
	free(tail);
	for (size_t i = 0; i < nitems(consumers); i++)
		p->need_rows |= consumers[i]->wants_rows;

	p->wake_ev = event_new(base, -1, 0, wake_cb, p);
	p->retry_ev = evtimer_new(base, retry_cb, p);
	p->poll_ev = event_new(base, -1, EV_PERSIST, poll_cb, p);
	p->lease_ev = event_new(base, -1, EV_PERSIST, lease_cb, p);
	p->watch_ev = event_new(base, -1, EV_PERSIST, watch_cb, p);
	p->later_ev = evtimer_new(base, later_cb, p);
	timer_after(p->poll_ev, p->opts.poll_interval_ms);
	/* Renewing three times a lease keeps it through one lost renewal. */
	timer_after(p->lease_ev, p->opts.lease_ms / 3);
	timer_after(p->watch_ev, WATCH_INTERVAL_S * 1000);
	/* Not event_active: that would shift the persistent timer's phase. */
	lease_cb(-1, EV_TIMEOUT, p);
	set_leader_metric(p);
	metrics_counter_add("linkpulse_pipeline_events_total",
			    "Events consumed by the pipeline.", "", 0);
	log_info("pipeline: instance %s, batches of %d up to %d events",
		 p->owner, p->opts.batch_size, p->opts.batch_max);
	return p;
}

void
pipeline_set_options(struct pipeline *p, const struct pipeline_options *opts)
{
	p->opts.batch_size = opts->batch_size;
	p->opts.batch_max = opts->batch_max < opts->batch_size
				? opts->batch_size
				: opts->batch_max;
	next_limit(p, 0);
	if (opts->poll_interval_ms != p->opts.poll_interval_ms) {
		p->opts.poll_interval_ms = opts->poll_interval_ms;
		timer_after(p->poll_ev, p->opts.poll_interval_ms);
	}
}

bool
pipeline_is_leader(const struct pipeline *p)
{
	return p->leader;
}

void
pipeline_stop(struct pipeline *p, void (*done)(void *), void *arg)
{
	p->stopping = true;
	p->stop_done = done;
	p->stop_arg = arg;
	event_del(p->poll_ev);
	event_del(p->lease_ev);
	event_del(p->watch_ev);
	event_del(p->retry_ev);
	if (!p->running)
		batch_over(p, false);
}

void
pipeline_free(struct pipeline *p)
{
	if (p == NULL)
		return;
	batch_reset(p);
	event_free(p->wake_ev);
	event_free(p->retry_ev);
	event_free(p->poll_ev);
	event_free(p->lease_ev);
	event_free(p->watch_ev);
	event_free(p->later_ev);
	free(p);
}

/* ---- consumers that are one statement ---- */

/* One statement in flight: made by pipeline_run_sql, freed by sql_done. */
struct sql_call {
	struct pipeline_batch *batch;
	pipeline_done_fn done;
	const struct pipeline_sql_step *step;
	double started;
};

static void
sql_done(PGresult *res, const char *error, void *arg)
{
	struct sql_call *call = arg;
	struct pipeline_batch *batch = call->batch;
	pipeline_done_fn done = call->done;
	const struct pipeline_sql_step *step = call->step;
	double elapsed = mono_sec() - call->started;
	long value = 0;

	free(call);
	if (error != NULL) {
		done(batch, error);
		return;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	metrics_histogram_observe(step->metric, step->metric_help, "", elapsed);
	if (step->result != NULL)
		step->result(batch, value);
	done(batch, NULL);
}

void
pipeline_run_sql(struct pipeline_batch *batch, struct db_conn *conn,
		 pipeline_done_fn done, const struct pipeline_sql_step *step,
		 const char *extra)
{
	struct sql_call *call = xmalloc(sizeof *call);
	const char *params[7];

	call->batch = batch;
	call->done = done;
	call->step = step;
	call->started = mono_sec();
	memcpy(params, batch->bounds, sizeof batch->bounds);
	params[6] = extra;
	db_conn_query(conn, 0, step->sql, extra != NULL ? 7 : 6, params,
		      sql_done, call);
}
