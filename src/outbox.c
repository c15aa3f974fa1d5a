/*
 * outbox.c - webhook event types and the outbox consumer (outbox.h).  One
 * statement per batch: lp_outbox_apply() reads the batch's events inside
 * PostgreSQL and writes the messages and deliveries set-wise, in the
 * batch's transaction.  Called by pipeline.c; calls db.c and metrics.c;
 * wakes delivery.c (through the hook main.c sets) once a batch that queued
 * work has committed.
 */
#include <stdlib.h>

#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "util.h"

static const char sql_apply[] =
    "SELECT lp_outbox_apply($1::pg_snapshot, $2::pg_snapshot, $3::xid8,"
    " $4::bigint, $5::xid8, $6::bigint)";

static void (*wake_fn)(void *);
static void *wake_arg;

/* One batch in flight: made by outbox_process, freed by applied(). */
struct outbox_call {
	struct pipeline_batch *batch;
	pipeline_done_fn done;
	double started;
};

/* Messages the batch in flight queued; read once it has committed. */
static long queued;

void
outbox_set_wake(void (*wake)(void *), void *arg)
{
	wake_fn = wake;
	wake_arg = arg;
}

static void
applied(PGresult *res, const char *error, void *arg)
{
	struct outbox_call *call = arg;
	struct pipeline_batch *batch = call->batch;
	pipeline_done_fn done = call->done;
	double elapsed = mono_sec() - call->started;

	free(call);
	if (error != NULL) {
		done(batch, error);
		return;
	}
	queued = 0;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		queued = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	metrics_histogram_observe(
	    "linkpulse_outbox_duration_seconds",
	    "Time to turn one batch into webhook messages.", "", elapsed);
	done(batch, NULL);
}

static void
outbox_process(struct pipeline_batch *batch, struct db_conn *conn,
	       pipeline_done_fn done)
{
	struct outbox_call *call = xmalloc(sizeof *call);

	call->batch = batch;
	call->done = done;
	call->started = mono_sec();
	queued = 0;
	db_conn_query(conn, 0, sql_apply, 6, batch->bounds, applied, call);
}

static void
outbox_committed(const struct pipeline_batch *batch)
{
	(void)batch;
	if (queued <= 0)
		return;
	metrics_counter_add("linkpulse_outbox_messages_total",
			    "Webhook deliveries queued by the outbox.", "",
			    (double)queued);
	log_debug("outbox: %ld deliveries queued", queued);
	queued = 0;
	if (wake_fn != NULL)
		wake_fn(wake_arg);
}

const struct pipeline_consumer outbox_consumer = {
    .name = "outbox",
    .wants_rows = false,
    .process = outbox_process,
    .committed = outbox_committed,
};
