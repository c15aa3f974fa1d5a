/*
 * api.h - the route tables of the REST API, one per resource family
 * (api_*.c).  main.c registers each with the HTTP server.
 */
#ifndef LP_API_H
#define LP_API_H

#include "db.h"
#include "http.h"
#include "netguard.h"

/* /healthz, /readyz, /metrics, /v1/workspace, /v1/workspace-tokens */
void api_system_init(struct http_server *, struct db_listen *);
/* POST /v1/events */
void api_events_init(struct http_server *);

/*
 * /v1/webhooks and its sub-resources.  api_webhooks_configure applies the
 * configuration's URL policy (the network guard, borrowed until the next
 * call) and the secret rotation overlap; main.c calls it at start and on
 * every reload.
 */
void api_webhooks_init(struct http_server *);
void api_webhooks_configure(const struct netguard *, bool require_https,
			    int64_t secret_overlap_ms);

/*
 * /v1/alerts: alerts, their history, the loaded rules, silences and
 * POST /v1/alerts/reload (api_alerts.c).
 */
void api_alerts_register(struct http_server *);

#endif
