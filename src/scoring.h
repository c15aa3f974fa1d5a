/*
 * scoring.h - the lead scoring consumer of the event pipeline: keeps each
 * visitor's features (src/sql/0006_scoring.sql), lead score and its six
 * components, and queues visitor.qualified when a score reaches the
 * workspace's threshold, in the batch's transaction.  Runs after the
 * rollups and before the outbox.
 */
#ifndef LP_SCORING_H
#define LP_SCORING_H

#include "config.h"
#include "pipeline.h"

extern const struct pipeline_consumer scoring_consumer;
/*
 * Takes the model of cfg's lead_scoring section, for the batches that
 * start from now on (at start-up and on each reload).
 */
void scoring_configure(const struct lp_config *cfg);

#endif
