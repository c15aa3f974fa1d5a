/*
 * scoring.c - the lead scoring consumer (scoring.h).  One statement per
 * batch: lp_scoring_apply() reads the batch's events inside PostgreSQL,
 * folds them into the features of their visitors, scores those visitors
 * with the model and queues visitor.qualified, set-wise, so no event
 * crosses the wire (wants_rows is false).  The model is the JSON that
 * scoring_configure builds once per configuration; the README's "Lead
 * scores" section documents what lp_scoring_apply does with it.  Called
 * by pipeline.c on its held connection, inside the batch's transaction,
 * and by main.c (scoring_configure); calls db.c and metrics.c.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "metrics.h"
#include "scoring.h"
#include "util.h"

static const char sql_apply[] =
    "SELECT lp_scoring_apply($1::pg_snapshot, $2::pg_snapshot, $3::xid8,"
    " $4::bigint, $5::xid8, $6::bigint, $7::jsonb)";

/*
 * The model in force, as lp_scoring_apply reads it; NULL while scoring is
 * disabled.  Replaced by scoring_configure; a batch in flight keeps the
 * copy db.c made of its parameters.
 */
static char *model;

/* The tag points as a JSON object {"tag": points}; config.c checked them. */
static json_t *
tag_points(const struct lp_config *cfg)
{
	json_t *o = json_object();

	for (int i = 0; i < cfg->lead_scoring.ntag_points; i++) {
		const char *item = cfg->lead_scoring.tag_points[i];
		size_t len;
		int points;
		char *name;

		if (!config_tag_points_parse(item, &len, &points))
			fatal("scoring: tag_points item '%s' slipped through",
			      item);
		name = xstrndup(item, len);
		json_object_set_new(o, name, json_integer(points));
		free(name);
	}
	return o;
}

void
scoring_configure(const struct lp_config *cfg)
{
	json_t *m;

	free(model);
	model = NULL;
	if (!cfg->lead_scoring.enabled) {
		log_debug("scoring: lead scoring is disabled");
		return;
	}
	/* Components by their LeadScore names, as the SQL reads them. */
	m = json_pack(
	    "{s:s, s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:{s:i, s:i, s:i},"
	    " s:I, s:o, s:{s:i, s:f}}",
	    "output",
	    cfg->lead_scoring.output == LP_LEAD_LOGISTIC ? "logistic"
							 : "weighted_sum",
	    "threshold", cfg->lead_scoring.qualify_threshold, "weights",
	    "engagementLevel", cfg->lead_scoring.weights.engagement_level,
	    "recurringInterest", cfg->lead_scoring.weights.recurring_interest,
	    "recurringScans", cfg->lead_scoring.weights.recurring_scans,
	    "profileFit", cfg->lead_scoring.weights.profile_fit,
	    "brandSupportiveness",
	    cfg->lead_scoring.weights.brand_supportiveness,
	    "technologicalAptitude",
	    cfg->lead_scoring.weights.technological_aptitude, "points",
	    "interaction", cfg->lead_scoring.points.interaction,
	    "formSubmission", cfg->lead_scoring.points.form_submission,
	    "conversion", cfg->lead_scoring.points.conversion,
	    "recencyHalfLifeMs",
	    (json_int_t)cfg->lead_scoring.recency_half_life_ms, "tagPoints",
	    tag_points(cfg), "logistic", "midpoint",
	    cfg->lead_scoring.logistic.midpoint, "steepness",
	    cfg->lead_scoring.logistic.steepness);
	if (m == NULL)
		fatal("scoring: cannot build the model");
	model = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (model == NULL)
		fatal("scoring: out of memory");
	log_debug("scoring: model %s", model);
}

static void
scored(struct pipeline_batch *batch, long n)
{
	(void)batch;
	metrics_counter_add(
	    "linkpulse_scoring_visitors_total",
	    "Visitors scored (once per batch they have events in).", "",
	    (double)n);
}

static const struct pipeline_sql_step apply_step = {
    .sql = sql_apply,
    .metric = "linkpulse_scoring_duration_seconds",
    .metric_help = "Time to score the visitors of one batch.",
    .result = scored,
};

static void
scoring_process(struct pipeline_batch *batch, struct db_conn *conn,
		pipeline_done_fn done)
{
	if (model == NULL) {
		done(batch, NULL);
		return;
	}
	pipeline_run_sql(batch, conn, done, &apply_step, model);
}

const struct pipeline_consumer scoring_consumer = {
    .name = "scoring",
    .wants_rows = false,
    .process = scoring_process,
    .committed = NULL,
};
