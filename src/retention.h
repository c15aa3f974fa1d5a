/*
 * retention.h - upkeep of the events table: its monthly partitions made
 * ahead of time (every instance, every hour), and raw events past their
 * workspace's retention_days removed with their idempotency keys and
 * traces (the pipeline's leader, every ten minutes; whole months at once
 * when every workspace is done with them).  Rollups keep counting them.
 */
#ifndef LINKPULSE_RETENTION_H
#define LINKPULSE_RETENTION_H

#include <event2/event.h>

#include "db.h"
#include "pipeline.h"

struct retention;

struct retention *retention_new(struct event_base *, struct db_pool *,
				struct pipeline *);
/* No new work from now on (shutdown has begun). */
void retention_stop(struct retention *);
void retention_free(struct retention *);

#endif
