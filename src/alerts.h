/*
 * alerts.h - alert rules in the daemon: the pipeline consumer that feeds
 * each batch's events to the rules engine (eval.h) and writes the alerts'
 * changes, their history and their notifications in the batch's
 * transaction (lp_alerts_apply), so state and cursor move together.  It
 * also ticks on empty batches, warms windows from the events table at
 * start and after a reload, and restores the alerts' state from
 * PostgreSQL after a restart.  The API's view of the loaded rules
 * (api_alerts.c) comes from here too.
 */
#ifndef LP_ALERTS_H
#define LP_ALERTS_H

#include <stdbool.h>

#include <jansson.h>

#include "pipeline.h"
#include "util.h"

struct rule_set;

extern const struct pipeline_consumer alerts_consumer;

/*
 * Installs a rule set (taking it over) at start and after a successful
 * reload: unchanged rules keep their windows and alerts.
 */
void alerts_set_rules(struct rule_set *);
/* Applies the configuration's settings (retention.alerts). */
struct lp_config;
void alerts_configure(const struct lp_config *);
/* The loaded rule set, or NULL before the first alerts_set_rules. */
const struct rule_set *alerts_rules(void);

/*
 * The loaded rules that apply to the workspace slug ws (its own and "*"),
 * as the API shows them: a JSON array of objects {name, workspace, kind,
 * file, line, severity, labels, annotations, notify, groupBy, for,
 * keepFiringFor, sendResolved, groups, pending, firing, lastEvaluation
 * (RFC 3339 or null), health ("ok" | "warming")}.  New reference.
 */
json_t *alerts_rules_json(const char *ws);

/*
 * How POST /v1/alerts/reload reloads: main.c sets a function that reloads
 * the configuration and the rules all-or-nothing (as SIGHUP does) and
 * appends every error to errs.  alerts_reload calls it; false on failure
 * (or when no function is set, with an error saying so).
 */
void alerts_set_reloader(bool (*fn)(void *arg, struct strlist *errs),
			 void *arg);
bool alerts_reload(struct strlist *errs);
/*
 * main.c records each load of the rules (start, SIGHUP, API): whether it
 * succeeded and its errors.  alerts_reload_json says so, for
 * GET /v1/alerts/rules: {at, successful, errors: [...]} (new reference).
 */
void alerts_note_reload(bool ok, const struct strlist *errs);
json_t *alerts_reload_json(void);

/* Frees the engine and its rules (at exit). */
void alerts_shutdown(void);

#endif
