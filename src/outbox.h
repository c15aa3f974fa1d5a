/*
 * outbox.h - the outbox consumer (event types are in webhook.h).  It
 * turns each pipeline batch into webhook messages and deliveries inside
 * the batch's transaction (lp_outbox_apply), so a scan is queued for its
 * endpoints exactly once, even across crashes; once the batch commits it
 * wakes the delivery engine.
 */
#ifndef LP_OUTBOX_H
#define LP_OUTBOX_H

#include "pipeline.h"
#include "webhook.h"

extern const struct pipeline_consumer outbox_consumer;
/* Called after a batch that queued messages committed. */
void outbox_set_wake(void (*wake)(void *), void *arg);
/* Wakes the delivery engine now (another consumer queued messages). */
void outbox_wake(void);

#endif
