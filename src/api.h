/*
 * api.h - the route tables of the REST API, one per resource family
 * (api_*.c).  main.c registers each with the HTTP server.
 */
#ifndef LP_API_H
#define LP_API_H

#include "db.h"
#include "http.h"

/* /healthz, /readyz, /metrics, /v1/workspace, /v1/workspace-tokens */
void api_system_init(struct http_server *, struct db_listen *);
/* POST /v1/events */
void api_events_init(struct http_server *);

#endif
