/*
 * filter.h - the one filter language of linkpulse: alert rules' "match"
 * (and, later, the API's filters) say which events count.  A filter is a
 * YAML mapping whose keys are fields and whose values are conditions; every
 * entry must hold:
 *
 *     match:
 *       country: FR                      # equal
 *       device_type: [DEVICE_TYPE_MOBILE, DEVICE_TYPE_TABLET]   # any of
 *       status: {not: ok}                # not equal (or not any of a list)
 *       visitor.lead_score: {">=": 80}   # comparisons: = != > >= < <=
 *       utm_campaign: {prefix: spring}   # also: contains, exists: true|false
 *       link.tag: pricing                # the event's link has this tag
 *       any:                             # at least one of the filters
 *         - {country: FR}
 *         - {city: Berlin}
 *       not: {is_bot: true}              # the filter does not hold
 *
 * Fields come from a table (filter.c): the event's own columns, its link,
 * tags and QR code, and its visitor's profile, lead score and components.
 * An unknown field, an operator its type does not take, or a value of the
 * wrong type is an error naming FILE:LINE:COLUMN.
 *
 * A filter compiles to a SQL boolean expression over the aliases e
 * (events), and l (links) and v (visitors) joined on the event's link and
 * visitor (NULL when it has none).  Values become parameters: no text of
 * the rule ever becomes SQL.
 */
#ifndef LP_FILTER_H
#define LP_FILTER_H

#include <stdbool.h>

#include <yaml.h>

#include "util.h"

struct filter;

/*
 * Parses the mapping at node of doc.  file names the file in errors
 * ("FILE:LINE:COL: match: ..."); what is the path of the node for
 * messages, such as "rules[2].match".  Returns NULL, with every error
 * appended to errs, if anything is wrong.
 */
struct filter *filter_parse(yaml_document_t *doc, yaml_node_t *node,
			    const char *file, const char *what,
			    struct strlist *errs);
void filter_free(struct filter *);

/*
 * The SQL expression of f.  Its values are appended to params, the first
 * one being $first_param (params->n on entry is ignored: numbering starts
 * at first_param and goes up by one per value appended).  The caller
 * frees the string.
 */
char *filter_sql(const struct filter *, int first_param,
		 struct strlist *params);

/* Whether the filter reads the event's link or visitor (joins needed). */
bool filter_uses_link(const struct filter *);
bool filter_uses_visitor(const struct filter *);
/* Whether it reads link.tag, or properties.KEY (filter_row's tags, property).
 */
bool filter_uses_tags(const struct filter *);
bool filter_uses_properties(const struct filter *);

/*
 * Field names, for other parts of a rule that name fields (group_by,
 * cardinality, new_value): the SQL expression of a known field, or NULL.
 */
const char *filter_field_sql(const char *name);
/* The known field names, comma-separated (static), for messages. */
const char *filter_field_list(void);

/* What a name is to the parts of a rule that name one event field. */
enum filter_field_kind {
	FILTER_FIELD_UNKNOWN,
	FILTER_FIELD_VALUE,  /* one value per event */
	FILTER_FIELD_NUMBER, /* one integer per event */
	FILTER_FIELD_MANY,   /* link.tag, properties.KEY: no single value */
};
enum filter_field_kind filter_field_kind(const char *name);
/* The known field nearest to name, when close enough to be a typo. */
const char *filter_field_suggest(const char *name);

/*
 * Evaluation in C, for the rules engine (eval.c) and `linkpulsectl rules
 * test`, with exactly the semantics of filter_sql (NULL rules included).
 *
 * The table of fields, by position: filter_field_name_at(i) and, for the
 * row query that feeds filter_match, filter_field_sql_at(i) (NULL for
 * link.tag, whose values come in filter_row.tags).
 */
int filter_nfields(void);
const char *filter_field_name_at(int i);
const char *filter_field_sql_at(int i);
/* The position of a field of the table, or -1 (properties.KEY, unknown). */
int filter_field_index(const char *name);

/*
 * One event as filter_match reads it.  values has filter_nfields()
 * entries, each the field's text as PostgreSQL prints it (booleans "t" or
 * "f", integers in decimal, UUIDs in canonical lower case) or NULL for SQL
 * NULL; the entry of link.tag is ignored.  tags are the names of the
 * event's link's tags.  property returns the text of properties->>key
 * (NULL when absent), called only by filters that read properties.KEY.
 */
struct filter_row {
	const char *const *values;
	const char *const *tags;
	size_t ntags;
	const char *(*property)(const struct filter_row *, const char *key);
	void *arg; /* the property function's */
};

bool filter_match(const struct filter *, const struct filter_row *);
/*
 * For indexing many filters: a field that every match needs, with the
 * values it may hold.  The filter matches a row only if the row's field
 * (for link.tag, one of the link's tags) equals one of values, compared
 * as ASCII without case.  False when there is no such field (the filter
 * must be tried on every row).  values belong to the filter.
 */
bool filter_required(const struct filter *, int *field,
		     const char *const **values, size_t *nvalues);
/*
 * The text of one named field of a row (properties.KEY through the
 * property function), or NULL; NULL too for link.tag and unknown names.
 */
const char *filter_row_value(const struct filter_row *, const char *name);

#endif
