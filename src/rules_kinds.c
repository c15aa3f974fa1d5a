/*
 * rules_kinds.c - the table of rule kinds (rules.h): for each kind its
 * name, its own fields, the function that reads them into the kind's
 * struct (through the field helpers of rules.c, rules_parse.h) and how
 * eval.c evaluates it.  Adding a kind is adding a row here, its parse
 * and free functions, and its evaluation in eval.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "filter.h"
#include "rules.h"
#include "rules_parse.h"
#include "util.h"
#include "ynode.h"

/* The group_by field whose values are links (flatline's active_links). */
#define LINK_FIELD "link"

static void *threshold_parse(struct rule_parse *);
static void threshold_free(void *);
static void *spike_parse(struct rule_parse *);
static void *flatline_parse(struct rule_parse *);
static void flatline_free(void *);
static void *trigger_parse(struct rule_parse *);
static void *new_value_parse(struct rule_parse *);
static void new_value_free(void *);
static void *cardinality_parse(struct rule_parse *);
static void cardinality_free(void *);
static void *ratio_parse(struct rule_parse *);
static void ratio_free(void *);

static const char *const threshold_fields[] = {
    "measure", "field", "op", "value", "recover", "window", NULL};
static const char *const spike_fields[] = {
    "window",	   "baseline",	   "direction", "ratio",
    "min_current", "min_baseline", NULL};
static const char *const flatline_fields[] = {"window", "below", "keys", NULL};
static const char *const trigger_fields[] = {"dedup", NULL};
static const char *const new_value_fields[] = {"field", "lookback", NULL};
static const char *const cardinality_fields[] = {"field", "window", "above",
						 "below", NULL};
static const char *const ratio_fields[] = {
    "numerator", "window", "above", "below", "min_denominator", NULL};

/* The kinds.  Adding a kind is adding a row. */
const struct rule_kind rule_kinds[] = {
    {"threshold", threshold_parse, threshold_free, threshold_fields,
     &eval_threshold},
    {"spike", spike_parse, free, spike_fields, &eval_spike},
    {"flatline", flatline_parse, flatline_free, flatline_fields,
     &eval_flatline},
    {"trigger", trigger_parse, free, trigger_fields, &eval_trigger},
    {"new_value", new_value_parse, new_value_free, new_value_fields,
     &eval_new_value},
    {"cardinality", cardinality_parse, cardinality_free, cardinality_fields,
     &eval_cardinality},
    {"ratio", ratio_parse, ratio_free, ratio_fields, &eval_ratio},
};

const size_t nrule_kinds = nitems(rule_kinds);

const struct rule_kind *
rule_kind_find(const char *name)
{
	for (size_t i = 0; i < nitems(rule_kinds); i++)
		if (strcmp(rule_kinds[i].name, name) == 0)
			return &rule_kinds[i];
	return NULL;
}

const char *
rule_kind_list(void)
{
	static char buf[256];

	if (buf[0] == '\0')
		for (size_t i = 0; i < nitems(rule_kinds); i++)
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf),
				 "%s%s", i > 0 ? ", " : "", rule_kinds[i].name);
	return buf;
}

/* above: X or below: X, exactly one. */
static bool
rp_bound(struct rule_parse *rp, bool *above, yaml_node_t **node)
{
	yaml_node_t *a = rp_get(rp, "above"), *b = rp_get(rp, "below");

	if (a != NULL && ynode_is_null(a))
		a = NULL;
	if (b != NULL && ynode_is_null(b))
		b = NULL;
	if (a != NULL && b != NULL) {
		rerr(rp, b, "below", "give above or below, not both");
		return false;
	}
	if (a == NULL && b == NULL) {
		rerr(rp, NULL, NULL, "%s rules need above or below",
		     rp->kind->name);
		return false;
	}
	*above = a != NULL;
	*node = a != NULL ? a : b;
	return true;
}

/* ---- the kinds ---- */

static const char *const measure_names[] = {"count", "unique_visitors", "sum",
					    "avg", NULL};
static const char *const op_names[] = {">", ">=", "<", "<=", NULL};

static void
threshold_free(void *p)
{
	struct rule_threshold *t = p;

	if (t != NULL)
		free(t->field);
	free(t);
}

static void *
threshold_parse(struct rule_parse *rp)
{
	struct rule_threshold *t = xcalloc(1, sizeof(*t));
	yaml_node_t *n, *opn = rp_get(rp, "op");
	int measure = RULE_COUNT, op = RULE_GT;
	bool ok = true, counts;
	const char *side;
	double rec;

	ok &= rp_enum(rp, "measure", false, measure_names, &measure);
	t->measure = (enum rule_measure)measure;
	counts = t->measure == RULE_COUNT || t->measure == RULE_UNIQUE_VISITORS;
	if (!counts) {
		ok &= rp_event_field(rp, "field", true, true, &t->field);
	} else if ((n = rp_get(rp, "field")) != NULL) {
		rerr(rp, n, "field", "only for measure sum or avg");
		ok = false;
	}
	/* "op: >" is a YAML folded text, which comes out empty. */
	if (opn != NULL && opn->type == YAML_SCALAR_NODE &&
	    (opn->data.scalar.style == YAML_FOLDED_SCALAR_STYLE ||
	     opn->data.scalar.style == YAML_LITERAL_SCALAR_STYLE)) {
		rerr(rp, opn, "op",
		     "expected \">\", \">=\", \"<\" or \"<=\" in quotes (a "
		     "bare > or | starts a YAML text block)");
		ok = false;
	} else if (!rp_enum(rp, "op", true, op_names, &op)) {
		ok = false;
	}
	t->op = (enum rule_op)op;
	if (counts)
		ok &= rp_number(rp, "value", true, 0, false, INFINITY,
				"a number of at least 0", &t->value);
	else
		ok &= rp_number(rp, "value", true, -INFINITY, false, INFINITY,
				"a number", &t->value);
	t->recover = t->value;
	if ((n = rp_get(rp, "recover")) != NULL && ok) {
		if (!number_node(rp, n, "recover", -INFINITY, false, INFINITY,
				 "a number", &rec)) {
			ok = false;
		} else {
			side = t->op == RULE_GT || t->op == RULE_GE ? "below"
								    : "above";
			if ((t->op == RULE_GT || t->op == RULE_GE)
				? rec >= t->value
				: rec <= t->value) {
				char *got = ynode_describe(n);

				rerr(rp, n, "recover",
				     "expected a number %s value (%g) for "
				     "op %s, so that the alert resolves "
				     "only once clearly back, got %s",
				     side, t->value, op_names[t->op], got);
				free(got);
				ok = false;
			}
			t->recover = rec;
		}
	}
	ok &= rp_duration(rp, "window", true, 1, &t->window_ms);
	if (!ok) {
		threshold_free(t);
		return NULL;
	}
	return t;
}

static const char *const direction_names[] = {"up", "down", "both", NULL};

static void *
spike_parse(struct rule_parse *rp)
{
	struct rule_spike *s = xcalloc(1, sizeof(*s));
	yaml_node_t *n;
	const char *text;
	int dir = RULE_UP;
	bool ok = true;
	char buf[32], *got;

	ok &= rp_duration(rp, "window", true, 1, &s->window_ms);
	if ((n = rp_get(rp, "baseline")) != NULL && !ynode_is_null(n)) {
		text = ynode_scalar(n);
		if (text != NULL && strcmp(text, "previous") == 0) {
			s->baseline_offset_ms = 0;
		} else if (text == NULL ||
			   parse_duration_ms(text, &s->baseline_offset_ms) !=
			       0) {
			rerr_expect(rp, n, "baseline",
				    "previous or an offset such as 7d");
			ok = false;
		} else if (s->window_ms > 0 &&
			   s->baseline_offset_ms < s->window_ms) {
			format_duration(s->window_ms, buf, sizeof buf);
			got = ynode_describe(n);
			rerr(rp, n, "baseline",
			     "expected an offset of at least the window (%s), "
			     "so that the windows do not overlap, got %s",
			     buf, got);
			free(got);
			ok = false;
		}
	}
	ok &= rp_enum(rp, "direction", false, direction_names, &dir);
	s->direction = (enum rule_direction)dir;
	ok &= rp_number(rp, "ratio", true, 1, true, INFINITY,
			"a number greater than 1 such as 3 or 1.5", &s->ratio);
	ok &= rp_int(rp, "min_current", false, 0, INT64_MAX, &s->min_current);
	ok &= rp_int(rp, "min_baseline", false, 0, INT64_MAX, &s->min_baseline);
	if (!ok) {
		free(s);
		return NULL;
	}
	return s;
}

static void
flatline_free(void *p)
{
	struct rule_flatline *fl = p;

	if (fl == NULL)
		return;
	for (int i = 0; i < fl->nkeys; i++)
		free(fl->keys[i]);
	free(fl->keys);
	free(fl);
}

static void *
flatline_parse(struct rule_parse *rp)
{
	struct rule_flatline *fl = xcalloc(1, sizeof(*fl));
	const struct rule *r = rp->rule;
	yaml_node_t *n;
	const char *s;
	bool ok = true;

	ok &= rp_duration(rp, "window", true, 1, &fl->window_ms);
	ok &= rp_int(rp, "below", true, 1, INT64_MAX, &fl->below);
	n = rp_get(rp, "keys");
	if (n == NULL || ynode_is_null(n) ||
	    ((s = ynode_scalar(n)) != NULL && strcmp(s, "active_links") == 0)) {
		fl->active_links = true;
		if (r->ngroup_by > 1 ||
		    (r->ngroup_by == 1 &&
		     strcmp(r->group_by[0], LINK_FIELD) != 0)) {
			rerr(rp, n, "keys",
			     "active_links needs group_by [" LINK_FIELD
			     "] (or none); give a list of keys to watch "
			     "other values");
			ok = false;
		}
	} else if (n->type != YAML_SEQUENCE_NODE || ynode_seq_len(n) == 0) {
		rerr_expect(rp, n, "keys",
			    "active_links or a list of values of the "
			    "group_by field");
		ok = false;
	} else if (r->ngroup_by != 1) {
		rerr(rp, n, "keys",
		     "a list of keys needs exactly one group_by field, whose "
		     "values they are (group_by has %d)",
		     r->ngroup_by);
		ok = false;
	} else {
		fl->keys = xcalloc(ynode_seq_len(n), sizeof(char *));
		for (size_t i = 0; i < ynode_seq_len(n); i++) {
			yaml_node_t *e = rp_item(rp, n, i);

			if ((s = ynode_scalar(e)) == NULL) {
				rerr_expect(rp, e, "keys", "a value");
				ok = false;
				continue;
			}
			for (int j = 0; j < fl->nkeys; j++)
				if (strcmp(fl->keys[j], s) == 0) {
					rerr(rp, e, "keys",
					     "'%s' is listed twice", s);
					ok = false;
				}
			fl->keys[fl->nkeys++] = xstrdup(s);
		}
	}
	if (!ok) {
		flatline_free(fl);
		return NULL;
	}
	return fl;
}

static void *
trigger_parse(struct rule_parse *rp)
{
	struct rule_trigger *t = xcalloc(1, sizeof(*t));

	if (!rp_duration(rp, "dedup", false, 0, &t->dedup_ms)) {
		free(t);
		return NULL;
	}
	return t;
}

static void
new_value_free(void *p)
{
	struct rule_new_value *nv = p;

	if (nv != NULL)
		free(nv->field);
	free(nv);
}

static void *
new_value_parse(struct rule_parse *rp)
{
	struct rule_new_value *nv = xcalloc(1, sizeof(*nv));
	bool ok = true;

	ok &= rp_event_field(rp, "field", true, false, &nv->field);
	ok &= rp_duration(rp, "lookback", true, 1, &nv->lookback_ms);
	if (!ok) {
		new_value_free(nv);
		return NULL;
	}
	return nv;
}

static void
cardinality_free(void *p)
{
	struct rule_cardinality *c = p;

	if (c != NULL)
		free(c->field);
	free(c);
}

static void *
cardinality_parse(struct rule_parse *rp)
{
	struct rule_cardinality *c = xcalloc(1, sizeof(*c));
	yaml_node_t *n;
	bool ok = true;
	const char *s;
	long long bound = -1;

	ok &= rp_event_field(rp, "field", true, false, &c->field);
	ok &= rp_duration(rp, "window", true, 1, &c->window_ms);
	if (!rp_bound(rp, &c->above, &n)) {
		ok = false;
	} else if ((s = ynode_scalar(n)) == NULL || !ynode_int(s, &bound) ||
		   (c->bound = bound) < 0) {
		rerr_expect(rp, n, c->above ? "above" : "below",
			    "a number of distinct values (an integer of at "
			    "least 0)");
		ok = false;
	}
	if (!ok) {
		cardinality_free(c);
		return NULL;
	}
	return c;
}

static void
ratio_free(void *p)
{
	struct rule_ratio *r = p;

	if (r != NULL)
		filter_free(r->numerator);
	free(r);
}

static void *
ratio_parse(struct rule_parse *rp)
{
	struct rule_ratio *r = xcalloc(1, sizeof(*r));
	bool ok = true;
	yaml_node_t *n;

	n = rp_need(rp, "numerator", true,
		    "a filter saying which of the matching events count, such "
		    "as {status: error}",
		    &ok);
	if (n != NULL)
		ok &= filter_node(rp, n, "numerator", &r->numerator);
	ok &= rp_duration(rp, "window", true, 1, &r->window_ms);
	if (!rp_bound(rp, &r->above, &n))
		ok = false;
	else
		ok &=
		    number_node(rp, n, r->above ? "above" : "below", 0, false,
				100, "a percentage from 0 to 100", &r->percent);
	r->min_denominator = 1;
	ok &= rp_int(rp, "min_denominator", false, 1, INT64_MAX,
		     &r->min_denominator);
	if (!ok) {
		ratio_free(r);
		return NULL;
	}
	return r;
}
