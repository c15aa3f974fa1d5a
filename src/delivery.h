/*
 * delivery.h - the webhook delivery engine.  Claims due deliveries in
 * batches (lp_delivery_claim: FOR UPDATE SKIP LOCKED, a lease longer than
 * the request timeout), sends them through libcurl's multi_socket
 * interface on the daemon's event loop (keep-alive, HTTP/2 when offered,
 * no redirects, the network guard on every connect), signs each attempt
 * (Standard Webhooks), and writes outcomes back in batches
 * (lp_delivery_results) with the next attempt's time from the retry
 * schedule.  Per endpoint: a concurrency cap, a token-bucket rate limit
 * and a circuit breaker; one slow endpoint never holds up the others.
 */
#ifndef LP_DELIVERY_H
#define LP_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "db.h"
#include "netguard.h"

struct delivery;

struct delivery_options {
	int64_t timeout_ms;	    /* one request, default 15 s */
	const int64_t *schedule_ms; /* delay before attempt i+1 (i from 0) */
	int nschedule;		    /* attempts = nschedule */
	int jitter_percent;	    /* +-, default 20 */
	int64_t lease_ms;	    /* claim lease, > timeout_ms */
	int batch_size;		    /* deliveries per claim */
	int max_connections;	    /* total open connections */
	bool require_https;
	int circuit_failures;	      /* consecutive failures that open it */
	int64_t circuit_cooldown_ms;  /* open time before a probe */
	int64_t disable_after_ms;     /* failing this long disables */
	int64_t retention_ms;	      /* finished work older is pruned */
	const struct netguard *guard; /* borrowed; outlives the options */
	const char *instance;	      /* lease owner name */
};

struct delivery *delivery_new(struct event_base *, struct db_pool *,
			      const struct delivery_options *);
/* Applies reloaded options (the schedule, limits, the guard). */
void delivery_set_options(struct delivery *, const struct delivery_options *);
/* New work may be due now: claim at once. */
void delivery_wake(struct delivery *);

/*
 * The outbox hands the deliveries it writes straight to the engine,
 * already leased (lp_outbox_apply's p_owner, p_take, p_lease_ms and
 * p_skip): delivery_handoff_prepare says how many the engine takes now
 * and which endpoints it leaves out (skip: a uuid[] literal for the
 * caller to free); delivery_take adopts the rows returned, from column
 * col on, once their transaction has committed.
 */
struct delivery_handoff {
	char owner[128];
	char room[16];
	char lease_ms[24];
	char *skip;
};
void delivery_handoff_prepare(struct delivery *, struct delivery_handoff *);
void delivery_take(struct delivery *, const PGresult *res, int col);
/*
 * Stops claiming; requests in flight finish (or time out) and their
 * outcomes are written, deliveries claimed but not started are released;
 * then done runs.
 */
void delivery_stop(struct delivery *, void (*done)(void *), void *arg);
void delivery_free(struct delivery *);

#endif
