/*
 * outbox.h - the outbox consumer (event types are in webhook.h).  It
 * turns each pipeline batch into webhook messages and deliveries inside
 * the batch's transaction (lp_outbox_apply), so a scan is queued for its
 * endpoints exactly once, even across crashes; once the batch commits it
 * hands the delivery engine the deliveries it took over, leased, and
 * wakes it for the others.
 */
#ifndef LP_OUTBOX_H
#define LP_OUTBOX_H

#include "delivery.h"
#include "pipeline.h"
#include "webhook.h"

extern const struct pipeline_consumer outbox_consumer;
/* The engine the outbox hands deliveries to and wakes for the rest. */
void outbox_set_delivery(struct delivery *);
/* Wakes the delivery engine now (another consumer queued messages). */
void outbox_wake(void);

#endif
