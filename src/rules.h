/*
 * rules.h - alert rules: the YAML files ops people write, loaded and
 * checked into struct rule (evaluation is eval.c's, later).  Every kind of
 * rule is a row of a table (struct rule_kind): adding a kind is adding a
 * row, its parse and free functions and the names of its fields.
 *
 * A rule file is a mapping with one key, rules, a list of rules:
 *
 *   rules:
 *     - name: spring-sale-hot          # [A-Za-z0-9_.:-], unique across files
 *       workspace: acme                # a workspace slug, or "*" for all
 *       kind: threshold                # a row of the kinds table
 *       match: {link.tag: spring}      # filter.h's language; default: all
 *       group_by: [link, country]      # event fields (filter.h); default: []
 *                                      # link.tag: a group per tag of the
 *                                      # event's link
 *       # The kind's own fields, at the same level (see the kinds below).
 *       measure: count
 *       op: ">"                        # quoted: a bare > starts YAML text
 *       value: 500
 *       recover: 400                   # hysteresis: resolves at <= 400
 *       window: 10m
 *       for: 5m                        # pending this long before firing
 *       keep_firing_for: 10m           # firing this long after it clears
 *       severity: warning              # info, warning (default), critical
 *       labels: {team: growth}         # identity; names [A-Za-z_][A-Za-z0-9_]*
 *       annotations:                   # templates, see below
 *         summary: "{{ labels.link }} had {{ value }} scans in {{ window }}"
 *       notify: [growth-slack, 3f2c...]  # endpoint names or ids
 *       send_resolved: true            # default true
 *       repeat: 1h                     # or {interval: 1h, factor: 2,
 *                                      #     max_interval: 1d}; default none
 *       active_intervals:              # notify only inside one of these
 *         - timezone: Europe/Paris     # IANA name (default UTC)
 *           weekdays: [monday:friday]  # default every day
 *           times: ["09:00-18:00"]     # default all day; end may be 24:00
 *       mute_intervals: []             # notify never inside one of these
 *
 * Kinds and their fields (window, lookback, dedup: durations > 0 unless
 * said otherwise; a field of an event is a name filter_field_sql knows):
 *
 *   threshold    measure: count | unique_visitors | sum | avg (count);
 *                field (sum, avg only: a numeric field); op: > >= < <=;
 *                value; recover (optional; strictly on the resolving side
 *                of value: below it for > and >=, above it for < and <=);
 *                window.
 *                  {kind: threshold, op: ">", value: 100, window: 5m}
 *   spike        window; baseline: previous (default) or an offset such
 *                as 7d, at least the window; direction: up (default) |
 *                down | both; ratio (> 1); min_current, min_baseline
 *                (counts, default 0).
 *                  {kind: spike, window: 1h, baseline: 7d, ratio: 3}
 *   flatline     window; below (N >= 1: fewer than N events per key);
 *                keys: active_links (default: every active link, group_by
 *                empty or [link]) or a list of values of the one group_by
 *                field.
 *                  {kind: flatline, window: 30m, below: 1,
 *                   keys: [FR, DE], group_by: [country]}
 *   trigger      dedup: a duration, default 0 (every event notifies).
 *                  {kind: trigger, dedup: 1h, group_by: [visitor]}
 *   new_value    field; lookback.
 *                  {kind: new_value, field: country, lookback: 30d}
 *   cardinality  field; window; above or below (one of them, a count).
 *                  {kind: cardinality, field: city, window: 1h, above: 50}
 *   ratio        numerator (a filter, like match); window; above or below
 *                (one of them, a percentage 0-100); min_denominator
 *                (default 1).
 *                  {kind: ratio, numerator: {status: error}, window: 15m,
 *                   above: 5, min_denominator: 100}
 *
 * Templates are text with references {{ PATH }}: labels.NAME (a label of
 * the rule or a group_by field), value, threshold, window, rule,
 * workspace, kind, severity, group.  An unknown reference, an unclosed
 * {{ or an empty {{ }} is an error.
 *
 * Errors are one line each, "FILE:LINE:COL: rules[I].FIELD: ...", with I
 * counted from 0 and a kind's own fields written KIND.FIELD
 * ("rules[3].threshold.window: expected a duration such as 5m, got
 * 'soon'"); every error is reported, not only the first.  Unknown fields
 * get a "did you mean" suggestion.
 */
#ifndef LP_RULES_H
#define LP_RULES_H

/* The group_by field with a value per tag of the event's link. */
#define RULE_TAG_FIELD "link.tag"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct eval_kind;
struct filter;
struct lp_config;
struct rule_parse;

enum rule_severity { RULE_INFO, RULE_WARNING, RULE_CRITICAL };
enum rule_op { RULE_GT, RULE_GE, RULE_LT, RULE_LE };
enum rule_measure {
	RULE_COUNT,
	RULE_UNIQUE_VISITORS,
	RULE_SUM,
	RULE_AVG,
};
enum rule_direction { RULE_UP, RULE_DOWN, RULE_BOTH };

/* Each kind's own fields, in rule->params. */
struct rule_threshold {
	enum rule_measure measure;
	char *field; /* sum, avg; else NULL */
	enum rule_op op;
	double value;
	double recover; /* equal to value when the file gives none */
	int64_t window_ms;
};

struct rule_spike {
	int64_t window_ms;
	int64_t baseline_offset_ms; /* 0: the window just before */
	enum rule_direction direction;
	double ratio;
	int64_t min_current, min_baseline;
};

struct rule_flatline {
	int64_t window_ms;
	int64_t below;
	bool active_links; /* keys: the workspace's active links */
	char **keys;	   /* otherwise: these values of the group_by field */
	int nkeys;
};

struct rule_trigger {
	int64_t dedup_ms; /* 0: every matching event */
};

struct rule_new_value {
	char *field;
	int64_t lookback_ms;
};

struct rule_cardinality {
	char *field;
	int64_t window_ms;
	bool above; /* else below */
	int64_t bound;
};

struct rule_ratio {
	struct filter *numerator;
	int64_t window_ms;
	bool above;	/* else below */
	double percent; /* 0-100 */
	int64_t min_denominator;
};

/* A row of the table of kinds. */
struct rule_kind {
	const char *name;
	/*
	 * Reads the kind's fields of the rule being parsed (through the
	 * helpers of rules.c) into a new kind-specific struct; NULL after
	 * reporting errors.
	 */
	void *(*parse)(struct rule_parse *);
	void (*free)(void *);
	const char *const *fields;    /* NULL-terminated */
	const struct eval_kind *eval; /* how eval.c evaluates it */
};

const struct rule_kind *rule_kind_find(const char *name);
/* The kinds' names, comma-separated (static), for messages. */
const char *rule_kind_list(void);

/* A template: literal text and references, in order. */
enum rule_ref {
	RULE_REF_TEXT,	/* text is literal */
	RULE_REF_LABEL, /* text is the label's name */
	RULE_REF_VALUE,
	RULE_REF_THRESHOLD,
	RULE_REF_WINDOW,
	RULE_REF_RULE,
	RULE_REF_WORKSPACE,
	RULE_REF_KIND,
	RULE_REF_SEVERITY,
	RULE_REF_GROUP,
	RULE_REF_EVENT, /* text is the event field's name (trigger, new_value)
			 */
};

struct rule_tmpl_part {
	enum rule_ref ref;
	char *text; /* literal text or label name; NULL otherwise */
};

struct rule_annotation {
	char *name;
	char *source; /* as written */
	struct rule_tmpl_part *parts;
	int nparts;
};

/* When notifications go out: minutes since midnight, end excluded. */
struct rule_time_range {
	int start_min, end_min; /* 0 <= start < end <= 1440 */
};

struct rule_interval {
	char *timezone;		       /* IANA name */
	unsigned weekdays;	       /* bit 0 Monday ... bit 6 Sunday */
	struct rule_time_range *times; /* none: all day */
	int ntimes;
};

struct rule {
	char *name;
	char *workspace; /* slug, or "*" */
	const struct rule_kind *kind;
	void *params;	      /* struct rule_<kind> */
	struct filter *match; /* NULL: every event */
	char **group_by;
	int ngroup_by;
	int64_t for_ms, keep_firing_for_ms;
	enum rule_severity severity;
	char **label_names, **label_values;
	int nlabels;
	struct rule_annotation *annotations;
	int nannotations;
	char **notify; /* endpoint names or ids */
	int nnotify;
	bool send_resolved;
	struct {
		int64_t interval_ms;	 /* 0: notify once per firing */
		int64_t max_interval_ms; /* 0: no cap */
		double factor;		 /* 1: a steady interval */
	} repeat;
	struct rule_interval *active, *mute;
	int nactive, nmute;
	char digest[17]; /* of its text: equal digests, same rule */
	char *file;	 /* where it is written; line and column from 1 */
	int line, column;
};

struct rule_set;

/*
 * An empty set; endpoints (nendpoints names, copied) are the endpoint
 * names notify may use, or NULL for any (UUIDs are always accepted).
 */
struct rule_set *rules_set_new(char *const *endpoints, int nendpoints);
/*
 * Parses one file's text into set.  Returns false, with every error
 * appended to errs, if anything in it is wrong (its rules are not added
 * then); names must be unique across every text added to the set.
 * *nadded, when not NULL, is set to the number of rules of this text.
 */
bool rules_set_add(struct rule_set *, const char *file, const char *text,
		   size_t len, int *nadded, struct strlist *errs);
/* Reads path and adds it; an unreadable file is an error. */
bool rules_set_add_file(struct rule_set *, const char *path, int *nadded,
			struct strlist *errs);
void rules_set_free(struct rule_set *);

/* One text on its own: NULL on any error. */
struct rule_set *rules_parse(const char *file, const char *text, size_t len,
			     char *const *endpoints, int nendpoints,
			     struct strlist *errs);
/*
 * Every file the patterns (glob(3), sorted; a file named twice is read
 * once) match.  A pattern with wildcards that matches nothing adds no
 * file and is no error (an empty rules.d is normal); a name without
 * wildcards must exist.  NULL if any file has an error.
 */
struct rule_set *rules_load(char *const *patterns, int npatterns,
			    char *const *endpoints, int nendpoints,
			    struct strlist *errs);
/*
 * The configuration's rules.paths, relative ones taken from the
 * configuration file's folder, with its webhooks' names as the endpoints.
 */
struct rule_set *rules_load_config(const struct lp_config *,
				   struct strlist *errs);
/*
 * A pattern of rules.paths as rules_load_config reads it: relative ones
 * joined to config_path's folder.  Caller frees.
 */
char *rules_path_resolve(const char *config_path, const char *pattern);

int rules_count(const struct rule_set *);
const struct rule *rules_get(const struct rule_set *, int i);
const struct rule *rules_find(const struct rule_set *, const char *name);
int rules_nfiles(const struct rule_set *);

const char *rule_severity_name(enum rule_severity);

#endif
