/*
 * db.h - asynchronous PostgreSQL on the event loop.  A pool of libpq
 * connections in non-blocking mode (PQconnectStart/PQconnectPoll,
 * PQsendQueryParams, PQconsumeInput/PQisBusy/PQgetResult), with a queue
 * for queries waiting for a free connection, a per-query statement
 * timeout, and reconnection with capped exponential backoff and jitter.
 * A separate listening connection re-issues its LISTENs after every
 * reconnect and hands notifications to a callback.
 *
 * Nothing here blocks: every call returns at once and results arrive in
 * callbacks run from the loop.  Callbacks are never run from inside the
 * call that queued them.
 */
#ifndef LP_DB_H
#define LP_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <libpq-fe.h>

struct db_pool;
struct db_conn;
struct db_listen;

struct db_options {
	const char *conninfo;	      /* URL or key=value string */
	int pool_size;		      /* connections, >= 1 */
	int64_t statement_timeout_ms; /* default per query; 0 = none */
	int64_t connect_timeout_ms;   /* one connection attempt */
	int64_t reconnect_min_ms;     /* first backoff */
	int64_t reconnect_max_ms;     /* backoff cap */
	const char *application_name; /* shown in pg_stat_activity */
};

/*
 * A query's outcome.  res is the query's result when the server answered
 * (its status may still be an error: use db_ok); it is NULL when the query
 * never completed (connection lost, client-side timeout, pool closed).
 * error is NULL on success, else a one-line message.  res is cleared after
 * the callback returns: copy what you keep.
 */
typedef void (*db_result_fn)(PGresult *res, const char *error, void *arg);

struct db_pool *db_pool_new(struct event_base *, const struct db_options *);
/* Fails every waiting and running query with "pool closed", then frees. */
void db_pool_free(struct db_pool *);

/*
 * Runs one parameterised statement on any free connection.  params are
 * text values, NULL for SQL NULL.  timeout_ms: 0 for the pool's default,
 * -1 for none.  The strings are copied: the caller may free them at once.
 */
void db_query(struct db_pool *, const char *sql, int nparams,
	      const char *const *params, db_result_fn, void *arg);
void db_query_timeout(struct db_pool *, int64_t timeout_ms, const char *sql,
		      int nparams, const char *const *params, db_result_fn,
		      void *arg);

/*
 * A connection held for several statements (a transaction).  fn gets the
 * connection, or NULL if the pool is closing.  Queries on a held connection
 * run in order.  db_release gives it back; a connection released inside a
 * transaction, or broken, is rolled back or reset before reuse.
 */
typedef void (*db_conn_fn)(struct db_conn *, void *arg);
void db_acquire(struct db_pool *, db_conn_fn, void *arg);
void db_conn_query(struct db_conn *, int64_t timeout_ms, const char *sql,
		   int nparams, const char *const *params, db_result_fn,
		   void *arg);
void db_release(struct db_conn *);

/* True when res is a successful command or tuples result. */
bool db_ok(const PGresult *);

struct db_pool_stats {
	int size;	     /* configured connections */
	int connected;	     /* open and usable */
	int busy;	     /* running a query or held */
	int waiting;	     /* queries queued for a connection */
	uint64_t queries;    /* completed queries */
	uint64_t errors;     /* failed queries */
	uint64_t reconnects; /* connection (re)establishments after a loss */
};
void db_pool_stats(const struct db_pool *, struct db_pool_stats *);

/*
 * The listening connection.  notify is called once per notification;
 * state is called with true after every (re)connect once all LISTENs have
 * been issued, and with false when the connection is lost, so a consumer
 * can catch up on what it missed meanwhile.
 */
typedef void (*db_notify_fn)(const char *channel, const char *payload,
			     void *arg);
typedef void (*db_state_fn)(bool connected, void *arg);

struct db_listen *db_listen_new(struct event_base *, const struct db_options *,
				db_notify_fn, db_state_fn, void *arg);
/* Adds a channel: LISTEN now if connected, and after every reconnect. */
void db_listen_add(struct db_listen *, const char *channel);
bool db_listen_connected(const struct db_listen *);
uint64_t db_listen_reconnects(const struct db_listen *);
void db_listen_free(struct db_listen *);

/* Capped exponential backoff with full jitter, for attempt n (0-based). */
int64_t db_backoff_ms(int attempt, int64_t min_ms, int64_t max_ms);

#endif
