/*
 * outbox.c - webhook event types and the outbox consumer (outbox.h).  One
 * statement per batch: lp_outbox_apply() reads the batch's events inside
 * PostgreSQL and writes the messages and deliveries set-wise, in the
 * batch's transaction, handing as many deliveries as the delivery engine
 * takes now straight to it, already leased: once the batch has committed
 * they are sent without a claim, and the engine is woken for the rest.
 * Called by pipeline.c; calls db.c, delivery.c and metrics.c.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "util.h"

static const char sql_apply[] =
    "SELECT queued, id, endpoint_id, message_id, attempt, payload,"
    " endpoint_url, headers, max_in_flight, rate_limit_per_second,"
    " array_to_json(secrets)::text"
    " FROM lp_outbox_apply($1::pg_snapshot, $2::pg_snapshot, $3::xid8,"
    " $4::bigint, $5::xid8, $6::bigint, $7, $8::int, $9::int, $10::uuid[])";

static struct delivery *engine;

/* The batch in flight: what it queued and handed over, read once it has
 * committed. */
static long queued;
static PGresult *handed;

struct apply_call {
	struct pipeline_batch *batch;
	pipeline_done_fn done;
	double started;
};

void
outbox_set_delivery(struct delivery *d)
{
	engine = d;
}

void
outbox_wake(void)
{
	if (engine != NULL)
		delivery_wake(engine);
}

static void
forget(void)
{
	if (handed != NULL)
		PQclear(handed);
	handed = NULL;
	queued = 0;
}

static void
applied(PGresult *res, const char *error, void *arg)
{
	struct apply_call *call = arg;
	struct pipeline_batch *batch = call->batch;
	pipeline_done_fn done = call->done;

	metrics_histogram_observe("linkpulse_outbox_duration_seconds",
				  "Time to turn one batch into webhook "
				  "messages.",
				  "", mono_sec() - call->started);
	free(call);
	if (error != NULL) {
		done(batch, error);
		return;
	}
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		queued = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 1)) {
		/* The result is cleared after this callback: keep a copy. */
		handed =
		    PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
		if (handed == NULL)
			fatal("outbox: out of memory copying deliveries");
	}
	done(batch, NULL);
}

static void
outbox_process(struct pipeline_batch *batch, struct db_conn *conn,
	       pipeline_done_fn done)
{
	struct apply_call *call = xmalloc(sizeof *call);
	struct delivery_handoff h = {"", "0", "0", NULL};
	const char *params[10];

	forget();
	if (engine != NULL)
		delivery_handoff_prepare(engine, &h);
	call->batch = batch;
	call->done = done;
	call->started = mono_sec();
	memcpy(params, batch->bounds, sizeof batch->bounds);
	params[6] = h.owner;
	params[7] = h.room;
	params[8] = h.lease_ms;
	params[9] = h.skip != NULL ? h.skip : "{}";
	db_conn_query(conn, 0, sql_apply, 10, params, applied, call);
	free(h.skip);
}

static void
outbox_committed(const struct pipeline_batch *batch)
{
	int n = handed != NULL ? PQntuples(handed) : 0;

	(void)batch;
	if (queued > 0) {
		metrics_counter_add("linkpulse_outbox_messages_total",
				    "Webhook deliveries queued by the outbox.",
				    "", (double)queued);
		log_debug("outbox: %ld deliveries queued, %d handed over",
			  queued, n);
	}
	if (handed != NULL && engine != NULL)
		delivery_take(engine, handed, 1);
	/* The rest wait for a claim. */
	if (queued > n)
		outbox_wake();
	forget();
}

static void
outbox_aborted(void)
{
	/* Rolled back: the deliveries handed over were never written. */
	forget();
}

const struct pipeline_consumer outbox_consumer = {
    .name = "outbox",
    .wants_rows = false,
    .process = outbox_process,
    .committed = outbox_committed,
    .aborted = outbox_aborted,
};
