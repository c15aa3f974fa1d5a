/*
 * rollup.c - the rollup consumer (rollup.h).  One statement per batch:
 * lp_rollup_apply() reads the batch's events inside PostgreSQL and upserts
 * every rollup table set-wise, so no event crosses the wire (wants_rows is
 * false).  Called by pipeline.c on its held connection, inside the batch's
 * transaction; calls db.c and metrics.c.
 */
#include <stdlib.h>

#include "log.h"
#include "metrics.h"
#include "rollup.h"
#include "util.h"

static const char sql_apply[] =
    "SELECT lp_rollup_apply($1::pg_snapshot, $2::pg_snapshot, $3::xid8,"
    " $4::bigint, $5::xid8, $6::bigint)";

/* One batch in flight: made by rollup_process, freed by applied(). */
struct rollup_call {
	struct pipeline_batch *batch;
	pipeline_done_fn done;
	double started;
};

static void
applied(PGresult *res, const char *error, void *arg)
{
	struct rollup_call *call = arg;
	struct pipeline_batch *batch = call->batch;
	pipeline_done_fn done = call->done;
	double elapsed = mono_sec() - call->started;

	free(call);
	if (error != NULL) {
		done(batch, error);
		return;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);

		metrics_counter_add("linkpulse_rollup_events_total",
				    "Events folded into the rollups.", "",
				    (double)n);
		if (n != batch->nevents)
			log_warn("rollup: folded %ld events, the batch has %d",
				 n, batch->nevents);
	}
	metrics_histogram_observe("linkpulse_rollup_duration_seconds",
				  "Time to fold one batch into the rollups.",
				  "", elapsed);
	done(batch, NULL);
}

static void
rollup_process(struct pipeline_batch *batch, struct db_conn *conn,
	       pipeline_done_fn done)
{
	struct rollup_call *call = xmalloc(sizeof *call);

	call->batch = batch;
	call->done = done;
	call->started = mono_sec();
	db_conn_query(conn, 0, sql_apply, 6, batch->bounds, applied, call);
}

const struct pipeline_consumer rollup_consumer = {
    .name = "rollup",
    .wants_rows = false,
    .process = rollup_process,
    .committed = NULL,
};
