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

/* Messages the batch in flight queued; read once it has committed. */
static long queued;

void
outbox_set_wake(void (*wake)(void *), void *arg)
{
	wake_fn = wake;
	wake_arg = arg;
}

void
outbox_wake(void)
{
	if (wake_fn != NULL)
		wake_fn(wake_arg);
}

static void
applied(struct pipeline_batch *batch, long n)
{
	(void)batch;
	queued = n;
}

static const struct pipeline_sql_step apply_step = {
    .sql = sql_apply,
    .metric = "linkpulse_outbox_duration_seconds",
    .metric_help = "Time to turn one batch into webhook messages.",
    .result = applied,
};

static void
outbox_process(struct pipeline_batch *batch, struct db_conn *conn,
	       pipeline_done_fn done)
{
	queued = 0;
	pipeline_run_sql(batch, conn, done, &apply_step, NULL);
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
	outbox_wake();
}

const struct pipeline_consumer outbox_consumer = {
    .name = "outbox",
    .wants_rows = false,
    .process = outbox_process,
    .committed = outbox_committed,
};
