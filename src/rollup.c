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

static void
folded(struct pipeline_batch *batch, long n)
{
	metrics_counter_add("linkpulse_rollup_events_total",
			    "Events folded into the rollups.", "", (double)n);
	if (n != batch->nevents)
		log_warn("rollup: folded %ld events, the batch has %d", n,
			 batch->nevents);
}

static const struct pipeline_sql_step apply_step = {
    .sql = sql_apply,
    .metric = "linkpulse_rollup_duration_seconds",
    .metric_help = "Time to fold one batch into the rollups.",
    .result = folded,
};

static void
rollup_process(struct pipeline_batch *batch, struct db_conn *conn,
	       pipeline_done_fn done)
{
	pipeline_run_sql(batch, conn, done, &apply_step, NULL);
}

const struct pipeline_consumer rollup_consumer = {
    .name = "rollup",
    .wants_rows = false,
    .process = rollup_process,
    .committed = NULL,
};
