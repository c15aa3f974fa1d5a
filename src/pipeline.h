/*
 * pipeline.h - the scan event pipeline.  One leader at a time (a lease in
 * pipeline_cursor) reads new events in batches from a durable,
 * commit-ordered cursor (two transaction snapshots, PgQ's design), hands
 * each batch to the registered consumers, and commits everything the
 * consumers wrote together with the cursor advance: each event's effects
 * happen exactly once, even across crashes.
 *
 * A batch is the events visible in snapshot `cur` and not in `prev`,
 * ordered by (xid, id), after position `from` and up to position `to`
 * inclusive.  In SQL, lp_batch_events(prev, cur, from_xid, from_id,
 * to_xid, to_id) returns exactly those rows; the six values are in
 * struct pipeline_batch as text, ready to pass as query parameters.
 */
#ifndef LP_PIPELINE_H
#define LP_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

struct pipeline;

struct pipeline_batch {
	/* The six parameters of lp_batch_events, in order. */
	const char *bounds[6];
	int nevents;
	/* More events are waiting after this batch: the pipeline is behind. */
	bool more;
	/*
	 * The batch's events (every column of events, ordered by xid, id)
	 * when a consumer asked for rows; NULL otherwise.
	 */
	PGresult *rows;
	void *consumer_state; /* the running consumer's own */
};

/* A consumer calls this exactly once when its work for a batch is done. */
typedef void (*pipeline_done_fn)(struct pipeline_batch *, const char *error);

struct pipeline_consumer {
	const char *name;
	bool wants_rows;
	/*
	 * Issues the consumer's statements on conn, inside the batch's
	 * transaction, then calls done (from a query callback: never from
	 * inside process itself is fine too).  An error rolls the whole
	 * batch back; it is retried later.
	 */
	void (*process)(struct pipeline_batch *, struct db_conn *,
			pipeline_done_fn done);
	/*
	 * Optional: after the batch committed (wake-ups, fan-out); also
	 * after a tick's empty batch when the consumer has wants_tick.
	 */
	void (*committed)(const struct pipeline_batch *);
	/*
	 * Optional: whether the consumer wants to run although no event
	 * came (timers: alert rules evaluate as time passes).  Asked at
	 * every look at the stream (each wake-up and poll); when it says
	 * yes, the consumers with wants_tick run on an empty batch, in a
	 * transaction with the cursor like any batch.
	 */
	bool (*wants_tick)(void);
	/* Optional: the batch it ran in rolled back (its effects are gone). */
	void (*aborted)(void);
};

/*
 * Runs fn(arg) at the loop's next turn, after it has polled its sockets:
 * a consumer with a long piece of work (the rules engine) does it in
 * slices, so that requests are served in between.  One at a time per
 * pipeline; the batch waits for the consumer's done as always.
 */
void pipeline_later(struct pipeline_batch *, void (*fn)(void *), void *arg);

/*
 * Most consumers are one statement per batch that reads the batch's events
 * inside PostgreSQL: sql takes the six bounds as $1..$6, and extra as $7
 * when it is not NULL.  pipeline_run_sql runs it on conn, observes its
 * duration in the histogram named metric, hands the first column of its
 * result (0 when NULL) to result (if set), then calls done.
 */
struct pipeline_sql_step {
	const char *sql;
	const char *metric;
	const char *metric_help;
	void (*result)(struct pipeline_batch *, long value);
};
void pipeline_run_sql(struct pipeline_batch *, struct db_conn *,
		      pipeline_done_fn, const struct pipeline_sql_step *,
		      const char *extra);

struct pipeline_options {
	int batch_size;		  /* events per batch, default 1000 */
	int batch_max;		  /* when behind, up to this; default 20000 */
	int64_t poll_interval_ms; /* fallback poll, default 1 s */
	int64_t lease_ms;	  /* leadership lease, default 3 s */
};

struct pipeline *pipeline_new(struct event_base *, struct db_pool *,
			      const struct pipeline_options *);
/* Applies reloadable options (batch size, poll interval). */
void pipeline_set_options(struct pipeline *, const struct pipeline_options *);
/* Wakes the pipeline at once (a NOTIFY arrived, or the listener came back). */
void pipeline_wake(struct pipeline *);
bool pipeline_is_leader(const struct pipeline *);
/* Stops taking new batches; done runs once the running one has finished. */
void pipeline_stop(struct pipeline *, void (*done)(void *), void *arg);
void pipeline_free(struct pipeline *);

#endif
