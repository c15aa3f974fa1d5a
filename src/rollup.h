/*
 * rollup.h - the rollup consumer of the event pipeline: folds each batch
 * into the aggregate tables of src/sql/0003_rollups.sql (15-minute buckets
 * by link, QR code, geography and device, with HLL unique visitors, and
 * daily rows in the workspace's zone), in the batch's transaction.
 */
#ifndef LP_ROLLUP_H
#define LP_ROLLUP_H

#include "pipeline.h"

extern const struct pipeline_consumer rollup_consumer;

#endif
