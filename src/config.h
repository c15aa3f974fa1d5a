/*
 * config.h - the daemon's configuration: one YAML file parsed by libyaml
 * into struct lp_config.  Every key is a row of a table in config.c (name,
 * type, target field, default, whether a reload may change it), so adding a
 * setting is adding a row.  Errors name file:line:column, the key and what
 * was expected; unknown keys are errors with a "did you mean" suggestion.
 */
#ifndef LP_CONFIG_H
#define LP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "util.h"

struct lp_listen {
	char *host; /* numeric address or name; "" for every address */
	int port;
};

/* A webhook endpoint declared in the file (section webhooks). */
struct lp_webhook_cfg {
	char *workspace; /* slug */
	char *name;
	char *url;
	char *secret; /* whsec_... */
	char *description;
	char **event_types; /* NULL: ["scan.created"] */
	int nevent_types;
	char **header_names, **header_values;
	int nheaders;
	int max_in_flight;	   /* 0: the default (10) */
	int rate_limit_per_second; /* 0: unlimited */
	char *payload;		   /* "full", "thin"; NULL: full */
	char *format; /* "standard", "alertmanager"; NULL: standard */
	/* Alert grouping (group_wait, group_interval); 0: none. */
	int64_t group_wait_ms;
	int64_t group_interval_ms;
	bool operational;
	int line, column;	  /* where it is written, 0-based */
	int url_line, url_column; /* where its url is */
};

/* How lead scoring turns components into a score (lead_scoring.output). */
enum lp_lead_output {
	LP_LEAD_WEIGHTED_SUM,
	LP_LEAD_LOGISTIC,
};

struct lp_config {
	char *path;

	struct {
		struct lp_listen *listen; /* plain HTTP listeners */
		int nlisten;
		struct lp_listen *tls_listen; /* HTTPS listeners */
		int ntls_listen;
		char *tls_cert_file;
		char *tls_key_file;
		uint64_t max_header_size;
		uint64_t max_body_size;
		int64_t request_timeout_ms;
	} http;

	struct {
		char *url;
		int pool_size;
		int64_t statement_timeout_ms;
		int64_t connect_timeout_ms;
		int64_t reconnect_min_ms;
		int64_t reconnect_max_ms;
		int64_t startup_timeout_ms;
		bool auto_migrate;
	} database;

	struct {
		enum log_level level;
		enum log_format format;
	} log;

	struct {
		int64_t grace_ms;
	} shutdown;

	struct {
		int batch_size;
		int batch_max;
		int64_t poll_interval_ms;
		int64_t lease_ms;
	} pipeline;

	struct {
		int64_t timeout_ms;
		int64_t *schedule_ms; /* delay before attempt i + 1 */
		int nschedule;
		int jitter_percent;
		int64_t lease_ms;
		int batch_size;
		int max_connections;
		char **allow_networks; /* CIDRs the network guard allows */
		int nallow_networks;
		bool require_https;
		int circuit_failures;
		int64_t circuit_cooldown_ms;
		int64_t disable_after_ms;
		int64_t secret_overlap_ms;
	} delivery;

	struct {
		int64_t deliveries_ms;
		int64_t alerts_ms; /* alert history and resolved alerts */
	} retention;

	struct lp_webhook_cfg *webhooks;
	int nwebhooks;

	/* Alert rule files (rules.h): glob patterns, relative ones to the
	 * configuration file's folder. */
	struct {
		char **paths;
		int npaths;
	} rules;

	/* The lead score model (README, "Lead scores"). */
	struct {
		bool enabled;
		enum lp_lead_output output;
		int qualify_threshold; /* 0-100 */
		struct {
			int engagement_level;
			int recurring_interest;
			int recurring_scans;
			int profile_fit;
			int brand_supportiveness;
			int technological_aptitude;
		} weights;
		struct {
			int interaction;
			int form_submission;
			int conversion;
		} points;
		int64_t recency_half_life_ms;
		char **tag_points; /* "tag=points", checked */
		int ntag_points;
		struct {
			int midpoint;
			double steepness;
		} logistic;
	} lead_scoring;
};

/*
 * Reads and validates path.  On success returns a new configuration; on
 * failure returns NULL and appends every error found to errs, each one
 * line "FILE:LINE:COL: ...".  LINKPULSE_DATABASE_URL, when set and not
 * empty, overrides database.url.
 */
struct lp_config *config_load(const char *path, struct strlist *errs);
/* Same, from a string; name stands in for the file name in errors. */
struct lp_config *config_parse(const char *name, const char *text, size_t len,
			       struct strlist *errs);
void config_free(struct lp_config *);

/*
 * For a reload: appends to notes one line per key whose new value differs
 * from the old one but that only a restart can apply (those keep their old
 * value: the function copies them from old into new).
 */
void config_keep_restart_only(const struct lp_config *old,
			      struct lp_config *new, struct strlist *notes);

/*
 * One item of lead_scoring.tag_points, "tag=points": a tag name that is
 * not blank (it may hold '='; the last one splits), and points from 0 to
 * 100.  On success sets *namelen to the length of the name at the start
 * of item, and *points.
 */
bool config_tag_points_parse(const char *item, size_t *namelen, int *points);
/* Whether item is such an item (the configuration's item check). */
bool config_tag_points_valid(const char *item);

#endif
