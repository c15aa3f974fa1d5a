/*
 * rules_parse.h - inside the rules parser: what rules.c gives the kinds'
 * parse functions (rules_kinds.c), and what they give back.  Not for
 * other modules: they read rules through rules.h.
 */
#ifndef LP_RULES_PARSE_H
#define LP_RULES_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include <yaml.h>

#include "rules.h"

struct rules_file;

/* One rule being parsed: what kind parsers get. */
struct rule_parse {
	struct rules_file *f;
	int index;
	yaml_node_t *map;
	struct rule *rule;
	const struct rule_kind *kind;
};

/* The table of kinds (rules_kinds.c). */
extern const struct rule_kind rule_kinds[];
extern const size_t nrule_kinds;

/*
 * An error about field of the rule (NULL: the rule itself), at node n
 * (NULL: the rule's mapping); rerr_expect says "expected EXPECT, got ...".
 */
void rerr(struct rule_parse *, const yaml_node_t *n, const char *field,
	  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void rerr_expect(struct rule_parse *, const yaml_node_t *n, const char *field,
		 const char *expect);

/* The rule's field name (NULL when absent); item i of a sequence. */
yaml_node_t *rp_get(struct rule_parse *, const char *name);
yaml_node_t *rp_item(struct rule_parse *, const yaml_node_t *seq, size_t i);
/*
 * The field's node, or NULL: absent (an error when required, *ok then
 * false) or null.
 */
yaml_node_t *rp_need(struct rule_parse *, const char *name, bool required,
		     const char *expect, bool *ok);

/*
 * Typed fields: each reads name into *out when present, reports what is
 * wrong (or missing, when required) and returns false then.
 */
bool rp_duration(struct rule_parse *, const char *name, bool required,
		 int64_t min, int64_t *out);
bool rp_int(struct rule_parse *, const char *name, bool required, int64_t min,
	    int64_t max, int64_t *out);
bool rp_number(struct rule_parse *, const char *name, bool required, double min,
	       bool min_open, double max, const char *expect, double *out);
bool number_node(struct rule_parse *, const yaml_node_t *n, const char *field,
		 double min, bool min_open, double max, const char *expect,
		 double *out);
bool rp_enum(struct rule_parse *, const char *name, bool required,
	     const char *const *choices, int *out);
/* An event field's name (numeric: one with numbers, to sum). */
bool rp_event_field(struct rule_parse *, const char *name, bool required,
		    bool numeric, char **out);
/* A filter (filter.h) at n. */
bool filter_node(struct rule_parse *, yaml_node_t *n, const char *field,
		 struct filter **out);

#endif
