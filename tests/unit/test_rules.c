/*
 * test_rules.c - unit tests of rules.c: every kind and common field
 * parsed, every class of error with its exact FILE:LINE:COL message,
 * names unique across files, templates, time intervals, and the glob
 * expansion of rules_load (the shipped conf/rules.d included).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules.h"
#include "ut.h"

/* Every rule in these tests starts so: kind on line 4, column 5. */
#define HEAD "rules:\n  - name: r\n    workspace: acme\n"

static char *const endpoints[] = {"sales", "ops-pager"};

static struct rule_set *
parse(const char *text, struct strlist *errs)
{
	return rules_parse("t.yaml", text, strlen(text), endpoints, 2, errs);
}

/* A text that must load; errors are printed to explain a failure. */
static struct rule_set *
parse_ok(const char *text)
{
	struct strlist errs = {0};
	struct rule_set *set = parse(text, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  unexpected error: %s\n", errs.v[i]);
	CHECK(set != NULL);
	CHECK(errs.n == 0);
	strlist_free(&errs);
	return set;
}

/* A text that must fail with exactly the error want. */
static void
check_error(const char *text, const char *want)
{
	struct strlist errs = {0};
	struct rule_set *set = parse(text, &errs);

	CHECK(set == NULL);
	CHECK(errs.n == 1);
	for (size_t i = 0; errs.n != 1 && i < errs.n; i++)
		fprintf(stderr, "  error: %s\n", errs.v[i]);
	CHECK_STR(errs.n > 0 ? errs.v[0] : NULL, want);
	rules_set_free(set);
	strlist_free(&errs);
}

static const struct rule *
only_rule(const struct rule_set *set)
{
	if (set == NULL)
		return NULL;
	CHECK(rules_count(set) == 1);
	return rules_get(set, 0);
}

static void
test_threshold(void)
{
	struct rule_set *set = parse_ok(
	    HEAD "    kind: threshold\n"
		 "    match: {status: ok, link.tag: spring}\n"
		 "    group_by: [link, country]\n"
		 "    measure: avg\n"
		 "    field: redirect_latency_ms\n"
		 "    op: \">=\"\n"
		 "    value: 250.5\n"
		 "    recover: 100\n"
		 "    window: 10m\n"
		 "    for: 5m\n"
		 "    keep_firing_for: 1h\n"
		 "    severity: critical\n"
		 "    labels: {team: growth, tier: 1}\n"
		 "    notify: sales\n"
		 "    send_resolved: no\n"
		 "    repeat: {interval: 30m, factor: 2, max_interval: 4h}\n");
	const struct rule *r = only_rule(set);
	const struct rule_threshold *t;

	if (r == NULL)
		goto out;
	t = r->params;
	CHECK_STR(r->name, "r");
	CHECK_STR(r->workspace, "acme");
	CHECK_STR(r->kind->name, "threshold");
	CHECK(r->match != NULL);
	CHECK(r->ngroup_by == 2);
	if (r->ngroup_by == 2)
		CHECK_STR(r->group_by[1], "country");
	CHECK(t->measure == RULE_AVG);
	CHECK_STR(t->field, "redirect_latency_ms");
	CHECK(t->op == RULE_GE);
	CHECK(t->value == 250.5);
	CHECK(t->recover == 100);
	CHECK(t->window_ms == 600000);
	CHECK(r->for_ms == 300000);
	CHECK(r->keep_firing_for_ms == 3600000);
	CHECK(r->severity == RULE_CRITICAL);
	CHECK(r->nlabels == 2);
	if (r->nlabels == 2) {
		CHECK_STR(r->label_names[1], "tier");
		CHECK_STR(r->label_values[1], "1");
	}
	CHECK(r->nnotify == 1);
	if (r->nnotify == 1)
		CHECK_STR(r->notify[0], "sales");
	CHECK(r->send_resolved == false);
	CHECK(r->repeat.interval_ms == 1800000);
	CHECK(r->repeat.factor == 2);
	CHECK(r->repeat.max_interval_ms == 4 * 3600000);
	CHECK_STR(r->file, "t.yaml");
	CHECK(r->line == 2 && r->column == 5);
out:
	rules_set_free(set);
}

/* What a rule gets when the file says nothing. */
static void
test_defaults(void)
{
	struct rule_set *set = parse_ok(HEAD "    kind: threshold\n"
					     "    op: <\n"
					     "    value: 1\n"
					     "    window: 1h\n");
	const struct rule *r = only_rule(set);
	const struct rule_threshold *t;

	if (r == NULL)
		goto out;
	t = r->params;
	CHECK(t->measure == RULE_COUNT);
	CHECK(t->field == NULL);
	CHECK(t->op == RULE_LT);
	CHECK(t->recover == 1);
	CHECK(r->match == NULL);
	CHECK(r->ngroup_by == 0);
	CHECK(r->for_ms == 0 && r->keep_firing_for_ms == 0);
	CHECK(r->severity == RULE_WARNING);
	CHECK(r->send_resolved == true);
	CHECK(r->repeat.interval_ms == 0);
	CHECK(r->repeat.factor == 1);
	CHECK(r->nnotify == 0 && r->nannotations == 0 && r->nlabels == 0);
	CHECK(r->nactive == 0 && r->nmute == 0);
out:
	rules_set_free(set);
}

static void
test_spike(void)
{
	struct rule_set *set = parse_ok(HEAD "    kind: spike\n"
					     "    window: 1h\n"
					     "    baseline: 7d\n"
					     "    direction: both\n"
					     "    ratio: 2.5\n"
					     "    min_current: 50\n"
					     "    min_baseline: 20\n");
	const struct rule *r = only_rule(set);
	const struct rule_spike *s;

	if (r != NULL) {
		s = r->params;
		CHECK(s->window_ms == 3600000);
		CHECK(s->baseline_offset_ms == 7 * 86400000LL);
		CHECK(s->direction == RULE_BOTH);
		CHECK(s->ratio == 2.5);
		CHECK(s->min_current == 50 && s->min_baseline == 20);
	}
	rules_set_free(set);

	set = parse_ok(HEAD "    kind: spike\n"
			    "    window: 5m\n"
			    "    baseline: previous\n"
			    "    ratio: 3\n");
	if ((r = only_rule(set)) != NULL) {
		s = r->params;
		CHECK(s->baseline_offset_ms == 0);
		CHECK(s->direction == RULE_UP);
		CHECK(s->min_current == 0);
	}
	rules_set_free(set);

	check_error(HEAD "    kind: spike\n"
			 "    window: 1h\n"
			 "    ratio: 1\n",
		    "t.yaml:6:12: rules[0].spike.ratio: expected a number "
		    "greater than 1 such as 3 or 1.5, got '1'");
	check_error(HEAD "    kind: spike\n"
			 "    window: 1h\n"
			 "    baseline: 30m\n"
			 "    ratio: 2\n",
		    "t.yaml:6:15: rules[0].spike.baseline: expected an offset "
		    "of at least the window (1h), so that the windows do not "
		    "overlap, got '30m'");
	check_error(HEAD "    kind: spike\n"
			 "    window: 1h\n"
			 "    baseline: last\n"
			 "    ratio: 2\n",
		    "t.yaml:6:15: rules[0].spike.baseline: expected previous "
		    "or an offset such as 7d, got 'last'");
}

static void
test_flatline(void)
{
	struct rule_set *set = parse_ok(HEAD "    kind: flatline\n"
					     "    group_by: link\n"
					     "    window: 2h\n"
					     "    below: 1\n");
	const struct rule *r = only_rule(set);
	const struct rule_flatline *fl;

	if (r != NULL) {
		fl = r->params;
		CHECK(fl->active_links);
		CHECK(fl->nkeys == 0);
		CHECK(fl->below == 1);
		CHECK(fl->window_ms == 7200000);
	}
	rules_set_free(set);

	set = parse_ok(HEAD "    kind: flatline\n"
			    "    group_by: [country]\n"
			    "    keys: [FR, DE]\n"
			    "    window: 2h\n"
			    "    below: 10\n");
	if ((r = only_rule(set)) != NULL) {
		fl = r->params;
		CHECK(!fl->active_links);
		CHECK(fl->nkeys == 2);
		if (fl->nkeys == 2)
			CHECK_STR(fl->keys[1], "DE");
	}
	rules_set_free(set);

	check_error(HEAD "    kind: flatline\n"
			 "    group_by: [country]\n"
			 "    keys: active_links\n"
			 "    window: 2h\n"
			 "    below: 1\n",
		    "t.yaml:6:11: rules[0].flatline.keys: active_links needs "
		    "group_by [link] (or none); give a list of keys to watch "
		    "other values");
	check_error(HEAD "    kind: flatline\n"
			 "    window: 2h\n",
		    "t.yaml:2:5: rules[0].flatline.below: missing: flatline "
		    "rules need an integer of at least 1");
}

static void
test_trigger(void)
{
	struct rule_set *set =
	    parse_ok(HEAD "    kind: trigger\n"
			  "    match:\n"
			  "      link.tag: pricing\n"
			  "      visitor.lead_score: {\">=\": 80}\n"
			  "    group_by: [visitor]\n"
			  "    dedup: 24h\n"
			  "    notify: [sales, "
			  "3f2c1d4e-8a7b-4c6d-9e0f-112233445566]\n");
	const struct rule *r = only_rule(set);

	if (r != NULL) {
		CHECK(((const struct rule_trigger *)r->params)->dedup_ms ==
		      86400000);
		CHECK(r->nnotify == 2);
	}
	rules_set_free(set);

	set = parse_ok(HEAD "    kind: trigger\n");
	if ((r = only_rule(set)) != NULL)
		CHECK(((const struct rule_trigger *)r->params)->dedup_ms == 0);
	rules_set_free(set);
}

static void
test_new_value(void)
{
	struct rule_set *set = parse_ok(HEAD "    kind: new_value\n"
					     "    group_by: [link]\n"
					     "    field: country\n"
					     "    lookback: 30d\n");
	const struct rule *r = only_rule(set);
	const struct rule_new_value *nv;

	if (r != NULL) {
		nv = r->params;
		CHECK_STR(nv->field, "country");
		CHECK(nv->lookback_ms == 30 * 86400000LL);
	}
	rules_set_free(set);

	check_error(HEAD "    kind: new_value\n"
			 "    field: link.tag\n"
			 "    lookback: 30d\n",
		    "t.yaml:5:12: rules[0].new_value.field: event field "
		    "'link.tag' has no single value per event: it cannot be "
		    "used here");
}

static void
test_cardinality(void)
{
	struct rule_set *set = parse_ok(HEAD "    kind: cardinality\n"
					     "    field: city\n"
					     "    window: 1h\n"
					     "    below: 3\n");
	const struct rule *r = only_rule(set);
	const struct rule_cardinality *c;

	if (r != NULL) {
		c = r->params;
		CHECK_STR(c->field, "city");
		CHECK(!c->above);
		CHECK(c->bound == 3);
	}
	rules_set_free(set);

	check_error(HEAD "    kind: cardinality\n"
			 "    field: city\n"
			 "    window: 1h\n"
			 "    above: 3\n"
			 "    below: 1\n",
		    "t.yaml:8:12: rules[0].cardinality.below: give above or "
		    "below, not both");
	check_error(HEAD "    kind: cardinality\n"
			 "    field: city\n"
			 "    window: 1h\n",
		    "t.yaml:2:5: rules[0]: cardinality rules need above or "
		    "below");
}

static void
test_ratio(void)
{
	struct rule_set *set =
	    parse_ok(HEAD "    kind: ratio\n"
			  "    match: {action: ACTION_SCAN}\n"
			  "    numerator: {status: error}\n"
			  "    window: 15m\n"
			  "    above: 2.5\n");
	const struct rule *r = only_rule(set);
	const struct rule_ratio *q;

	if (r != NULL) {
		q = r->params;
		CHECK(q->numerator != NULL);
		CHECK(q->above);
		CHECK(q->percent == 2.5);
		CHECK(q->min_denominator == 1);
	}
	rules_set_free(set);

	check_error(HEAD "    kind: ratio\n"
			 "    numerator: {status: error}\n"
			 "    window: 15m\n"
			 "    above: 120\n",
		    "t.yaml:7:12: rules[0].ratio.above: expected a percentage "
		    "from 0 to 100, got '120'");
	/* The numerator is a filter: its errors are filter.c's. */
	check_error(HEAD "    kind: ratio\n"
			 "    numerator: {stauts: error}\n"
			 "    window: 15m\n"
			 "    above: 5\n",
		    "t.yaml:5:17: rules[0].ratio.numerator: unknown field "
		    "'stauts' (did you mean 'status'?)");
}

static void
test_unknown_field(void)
{
	check_error(HEAD "    kind: trigger\n"
			 "    dedupe: 1h\n",
		    "t.yaml:5:5: rules[0]: unknown field 'dedupe' (did you "
		    "mean 'dedup'?)");
	check_error(HEAD "    kind: trigger\n"
			 "    sevrity: info\n",
		    "t.yaml:5:5: rules[0]: unknown field 'sevrity' (did you "
		    "mean 'severity'?)");
	check_error(HEAD "    kind: trigger\n"
			 "    xyzzy_plugh: 1\n",
		    "t.yaml:5:5: rules[0]: unknown field 'xyzzy_plugh'");
	/* Another kind's field is named as such. */
	check_error(HEAD "    kind: trigger\n"
			 "    window: 1h\n",
		    "t.yaml:5:5: rules[0]: unknown field 'window' for a "
		    "trigger rule (window is a field of other kinds, such as "
		    "ratio)");
	check_error(HEAD "    kind: trigger\n"
			 "    dedup: 1h\n"
			 "    dedup: 2h\n",
		    "t.yaml:6:5: rules[0]: duplicate field 'dedup' (first at "
		    "line 5)");
	check_error("rule:\n  - name: r\n",
		    "t.yaml:1:1: unknown key 'rule' (did you mean 'rules'?)");
}

static void
test_bad_duration(void)
{
	check_error(HEAD "    kind: threshold\n"
			 "    op: \">\"\n"
			 "    value: 1\n"
			 "    window: soon\n",
		    "t.yaml:7:13: rules[0].threshold.window: expected a "
		    "duration such as 5m, got 'soon'");
	check_error(HEAD "    kind: threshold\n"
			 "    op: \">\"\n"
			 "    value: 1\n"
			 "    window: 0s\n",
		    "t.yaml:7:13: rules[0].threshold.window: expected a "
		    "duration greater than 0, got '0s'");
	check_error(HEAD "    kind: trigger\n"
			 "    for: 5 minutes\n",
		    "t.yaml:5:10: rules[0].for: expected a duration such as "
		    "5m, got '5 minutes'");
	check_error(HEAD "    kind: trigger\n"
			 "    repeat: {interval: 1h, max_interval: 10m, "
			 "factor: 2}\n",
		    "t.yaml:5:42: rules[0].repeat.max_interval: expected a "
		    "duration no shorter than interval");
}

static void
test_unknown_kind(void)
{
	check_error(HEAD "    kind: treshold\n",
		    "t.yaml:4:11: rules[0].kind: unknown kind 'treshold' (did "
		    "you mean 'threshold'?)");
	check_error(HEAD "    kind: percentile\n",
		    "t.yaml:4:11: rules[0].kind: unknown kind 'percentile' "
		    "(expected threshold, spike, flatline, trigger, "
		    "new_value, cardinality, ratio)");
	check_error(HEAD,
		    "t.yaml:2:5: rules[0].kind: missing: expected threshold, "
		    "spike, flatline, trigger, new_value, cardinality, ratio");
}

/* Names are unique in the whole set, whichever file they come from. */
static void
test_duplicate_name(void)
{
	const char *a = HEAD "    kind: trigger\n";
	const char *b = "rules:\n"
			"  - name: other\n"
			"    workspace: acme\n"
			"    kind: trigger\n"
			"  - name: r\n"
			"    workspace: '*'\n"
			"    kind: trigger\n";
	struct rule_set *set = rules_set_new(NULL, 0);
	struct strlist errs = {0};
	int n = -1;

	CHECK(rules_set_add(set, "a.yaml", a, strlen(a), &n, &errs));
	CHECK(n == 1);
	CHECK(!rules_set_add(set, "b.yaml", b, strlen(b), &n, &errs));
	CHECK(n == 0);
	CHECK(errs.n == 1);
	if (errs.n == 1)
		CHECK_STR(errs.v[0], "b.yaml:5:11: rules[1].name: a second "
				     "rule named 'r' (first at a.yaml:2)");
	/* The file is all or nothing: "other" was not added. */
	CHECK(rules_count(set) == 1);
	CHECK(rules_find(set, "other") == NULL);
	CHECK(rules_find(set, "r") != NULL);
	rules_set_free(set);
	strlist_free(&errs);

	check_error(HEAD "    kind: trigger\n"
			 "  - name: r\n"
			 "    workspace: acme\n"
			 "    kind: trigger\n",
		    "t.yaml:5:11: rules[1].name: a second rule named 'r' "
		    "(first at t.yaml:2)");
}

static void
test_endpoints(void)
{
	struct rule_set *set;
	struct strlist errs = {0};
	const char *any = HEAD "    kind: trigger\n    notify: [anyone]\n";

	check_error(HEAD "    kind: trigger\n"
			 "    notify: [sales, sale]\n",
		    "t.yaml:5:21: rules[0].notify: unknown endpoint 'sale' "
		    "(did you mean 'sales'?)");
	check_error(HEAD "    kind: trigger\n"
			 "    notify: [marketing]\n",
		    "t.yaml:5:14: rules[0].notify: unknown endpoint "
		    "'marketing' (not in the configuration's webhooks; give "
		    "its name there, or an endpoint's id)");
	check_error(HEAD "    kind: trigger\n"
			 "    notify: [sales, sales]\n",
		    "t.yaml:5:21: rules[0].notify: 'sales' is listed twice");

	/* NULL: names are not checked. */
	set = rules_parse("t.yaml", any, strlen(any), NULL, 0, &errs);
	CHECK(set != NULL);
	rules_set_free(set);
	/* An empty list: no name is known. */
	set = rules_parse("t.yaml", any, strlen(any), endpoints, 0, &errs);
	CHECK(set == NULL);
	CHECK(errs.n == 1);
	if (errs.n == 1)
		CHECK_STR(errs.v[0],
			  "t.yaml:5:14: rules[0].notify: unknown endpoint "
			  "'anyone' (the configuration declares no webhooks; "
			  "name one of them, or give an endpoint's id)");
	strlist_free(&errs);
}

static void
test_templates(void)
{
	struct rule_set *set = parse_ok(
	    HEAD "    kind: threshold\n"
		 "    op: \">\"\n"
		 "    value: 1\n"
		 "    window: 5m\n"
		 "    group_by: [link]\n"
		 "    labels: {team: growth}\n"
		 "    annotations:\n"
		 "      summary: \"{{ labels.link }} had {{value}} scans in "
		 "{{ window }}\"\n"
		 "      plain: no references\n"
		 "      team: '{{ labels.team }}/{{ rule }}'\n");
	const struct rule *r = only_rule(set);
	const struct rule_annotation *a;

	if (r == NULL)
		goto out;
	CHECK(r->nannotations == 3);
	if (r->nannotations != 3)
		goto out;
	a = &r->annotations[0];
	CHECK_STR(a->name, "summary");
	CHECK(a->nparts == 5);
	if (a->nparts == 5) {
		CHECK(a->parts[0].ref == RULE_REF_LABEL);
		CHECK_STR(a->parts[0].text, "link");
		CHECK(a->parts[1].ref == RULE_REF_TEXT);
		CHECK_STR(a->parts[1].text, " had ");
		CHECK(a->parts[2].ref == RULE_REF_VALUE);
		CHECK_STR(a->parts[3].text, " scans in ");
		CHECK(a->parts[4].ref == RULE_REF_WINDOW);
	}
	a = &r->annotations[1];
	CHECK(a->nparts == 1 && a->parts[0].ref == RULE_REF_TEXT);
	a = &r->annotations[2];
	CHECK(a->nparts == 3);
	if (a->nparts == 3) {
		CHECK_STR(a->parts[0].text, "team");
		CHECK(a->parts[2].ref == RULE_REF_RULE);
	}
out:
	rules_set_free(set);

	/* Columns point at the reference, inside quotes too. */
	check_error(HEAD "    kind: trigger\n"
			 "    annotations:\n"
			 "      summary: \"{{ labels.link }} scanned\"\n",
		    "t.yaml:6:17: rules[0].annotations.summary: unknown label "
		    "'link' in {{ labels.link }} (the rule has no labels and "
		    "no group_by)");
	check_error(HEAD "    kind: trigger\n"
			 "    group_by: [country]\n"
			 "    annotations:\n"
			 "      summary: Seen {{ vaule }}\n",
		    "t.yaml:7:21: rules[0].annotations.summary: unknown "
		    "reference {{ vaule }} (expected labels.NAME, value, "
		    "threshold, window, rule, workspace, kind, severity, "
		    "group or event.FIELD)");
	check_error(HEAD "    kind: trigger\n"
			 "    annotations:\n"
			 "      summary: 'by {{ event.visitor.emial }}'\n",
		    "t.yaml:6:20: rules[0].annotations.summary: unknown event "
		    "field 'visitor.emial' in {{ event.visitor.emial }} (did "
		    "you mean 'visitor.email'?)");
	check_error(HEAD "    kind: threshold\n"
			 "    op: \">\"\n"
			 "    value: 1\n"
			 "    window: 5m\n"
			 "    annotations:\n"
			 "      summary: '{{ event.country }}'\n",
		    "t.yaml:9:17: rules[0].annotations.summary: {{ "
		    "event.country }}: a threshold alert stands for many "
		    "events; event fields are known to the kinds that fire on "
		    "an event (trigger, new_value)");
	set =
	    parse_ok(HEAD "    kind: trigger\n"
			  "    annotations:\n"
			  "      summary: '{{ event.visitor.email }} on {{ "
			  "event.link.tag }} ({{ event.properties.plan }})'\n");
	r = only_rule(set);
	if (r != NULL && r->nannotations == 1) {
		a = &r->annotations[0];
		CHECK(a->nparts == 6);
		if (a->nparts == 6) {
			CHECK(a->parts[0].ref == RULE_REF_EVENT);
			CHECK_STR(a->parts[0].text, "visitor.email");
			CHECK(a->parts[2].ref == RULE_REF_EVENT);
			CHECK_STR(a->parts[2].text, "link.tag");
			CHECK_STR(a->parts[4].text, "properties.plan");
		}
	}
	rules_set_free(set);
	check_error(HEAD "    kind: trigger\n"
			 "    group_by: [country]\n"
			 "    annotations:\n"
			 "      summary: '{{ labels.city }}'\n",
		    "t.yaml:7:17: rules[0].annotations.summary: unknown label "
		    "'city' in {{ labels.city }} (the rule's labels and "
		    "group_by fields: country)");
	check_error(HEAD "    kind: trigger\n"
			 "    annotations:\n"
			 "      summary: 'x {{ value'\n",
		    "t.yaml:6:19: rules[0].annotations.summary: '{{' without "
		    "its '}}' (write references as {{ value }})");
	check_error(HEAD "    kind: trigger\n"
			 "    annotations:\n"
			 "      summary: 'x {{ }}'\n",
		    "t.yaml:6:19: rules[0].annotations.summary: an empty "
		    "reference {{ }}");
}

static void
test_intervals(void)
{
	struct rule_set *set =
	    parse_ok(HEAD "    kind: trigger\n"
			  "    active_intervals:\n"
			  "      - timezone: Europe/Paris\n"
			  "        weekdays: [monday:wednesday, "
			  "Friday]\n"
			  "        times: [\"09:00-12:30\", "
			  "\"14:00-24:00\"]\n"
			  "    mute_intervals:\n"
			  "      - weekdays: sunday\n");
	const struct rule *r = only_rule(set);

	if (r != NULL && r->nactive == 1 && r->nmute == 1) {
		CHECK_STR(r->active[0].timezone, "Europe/Paris");
		CHECK(r->active[0].weekdays == (1u | 2u | 4u | 16u));
		CHECK(r->active[0].ntimes == 2);
		if (r->active[0].ntimes == 2) {
			CHECK(r->active[0].times[0].start_min == 540);
			CHECK(r->active[0].times[0].end_min == 750);
			CHECK(r->active[0].times[1].end_min == 1440);
		}
		CHECK_STR(r->mute[0].timezone, "UTC");
		CHECK(r->mute[0].weekdays == 64u);
		CHECK(r->mute[0].ntimes == 0);
	} else {
		CHECK(r != NULL && r->nactive == 1 && r->nmute == 1);
	}
	rules_set_free(set);

	check_error(HEAD "    kind: trigger\n"
			 "    active_intervals:\n"
			 "      - timezone: Europe/Pariss\n",
		    "t.yaml:6:19: rules[0].active_intervals[0].timezone: "
		    "expected an IANA time zone such as Europe/Paris or UTC, "
		    "got 'Europe/Pariss'");
	check_error(HEAD "    kind: trigger\n"
			 "    mute_intervals:\n"
			 "      - timezone: ../../etc/passwd\n",
		    "t.yaml:6:19: rules[0].mute_intervals[0].timezone: "
		    "expected an IANA time zone such as Europe/Paris or UTC, "
		    "got '../../etc/passwd'");
	check_error(HEAD "    kind: trigger\n"
			 "    mute_intervals:\n"
			 "      - times: [\"22:00-06:00\"]\n",
		    "t.yaml:6:17: rules[0].mute_intervals[0].times: expected "
		    "a range of the day such as 09:00-17:30 (start before "
		    "end, end at most 24:00), got '22:00-06:00'");
	check_error(HEAD "    kind: trigger\n"
			 "    mute_intervals:\n"
			 "      - weekday: [monday]\n",
		    "t.yaml:6:9: rules[0].mute_intervals[0]: unknown field "
		    "'weekday' (did you mean 'weekdays'?)");
}

static void
test_recover_side(void)
{
	check_error(HEAD "    kind: threshold\n"
			 "    op: \">\"\n"
			 "    value: 100\n"
			 "    recover: 120\n"
			 "    window: 5m\n",
		    "t.yaml:7:14: rules[0].threshold.recover: expected a "
		    "number below value (100) for op >, so that the alert "
		    "resolves only once clearly back, got '120'");
	check_error(HEAD "    kind: threshold\n"
			 "    op: <=\n"
			 "    value: 10\n"
			 "    recover: 10\n"
			 "    window: 5m\n",
		    "t.yaml:7:14: rules[0].threshold.recover: expected a "
		    "number above value (10) for op <=, so that the alert "
		    "resolves only once clearly back, got '10'");
}

static void
test_group_by(void)
{
	check_error(HEAD "    kind: trigger\n"
			 "    group_by: [link, contry]\n",
		    "t.yaml:5:22: rules[0].group_by: unknown event field "
		    "'contry' (did you mean 'country'?)");
	check_error(HEAD "    kind: trigger\n"
			 "    group_by: [link, link]\n",
		    "t.yaml:5:22: rules[0].group_by: 'link' is listed twice");
	check_error(HEAD "    kind: trigger\n"
			 "    group_by: [link.tag, country, link.tag]\n",
		    "t.yaml:5:35: rules[0].group_by: 'link.tag' is listed "
		    "twice");
	check_error(HEAD "    kind: trigger\n"
			 "    group_by: [properties.plan]\n",
		    "t.yaml:5:16: rules[0].group_by: event field "
		    "'properties.plan' has no single value per event: it "
		    "cannot be used here");
	/* A link's tags: a group per tag. */
	rules_set_free(parse_ok(HEAD "    kind: trigger\n"
				     "    group_by: [link.tag, country]\n"));
}

static void
test_match(void)
{
	check_error(HEAD "    kind: trigger\n"
			 "    match:\n"
			 "      visitor.lead_scor: {\">=\": 80}\n",
		    "t.yaml:6:7: rules[0].match: unknown field "
		    "'visitor.lead_scor' (did you mean 'visitor.lead_score'?)");
	check_error(HEAD "    kind: trigger\n"
			 "    match: [country]\n",
		    "t.yaml:5:12: rules[0].match: expected a filter (a mapping "
		    "of fields to conditions), got a list");
}

static void
test_threshold_checks(void)
{
	check_error(HEAD "    kind: threshold\n"
			 "    measure: sum\n"
			 "    field: country\n"
			 "    op: \">\"\n"
			 "    value: 1\n"
			 "    window: 5m\n",
		    "t.yaml:6:12: rules[0].threshold.field: expected a numeric "
		    "event field (such as redirect_latency_ms or "
		    "visitor.lead_score), got 'country'");
	check_error(HEAD "    kind: threshold\n"
			 "    measure: sum\n"
			 "    op: \">\"\n"
			 "    value: 1\n"
			 "    window: 5m\n",
		    "t.yaml:2:5: rules[0].threshold.field: missing: threshold "
		    "rules need the name of an event field");
	check_error(HEAD "    kind: threshold\n"
			 "    field: asn\n"
			 "    op: \">\"\n"
			 "    value: 1\n"
			 "    window: 5m\n",
		    "t.yaml:5:12: rules[0].threshold.field: only for measure "
		    "sum or avg");
	/* A bare ">" is a YAML folded text, not an operator. */
	check_error(HEAD "    kind: threshold\n"
			 "    op: >\n"
			 "    value: 1\n"
			 "    window: 5m\n",
		    "t.yaml:5:9: rules[0].threshold.op: expected \">\", "
		    "\">=\", \"<\" or \"<=\" in quotes (a bare > or | starts "
		    "a YAML text block)");
	check_error(HEAD "    kind: threshold\n"
			 "    op: =\n"
			 "    value: 1\n"
			 "    window: 5m\n",
		    "t.yaml:5:9: rules[0].threshold.op: expected >, >=, < or "
		    "<=, got '='");
	check_error(HEAD "    kind: threshold\n"
			 "    op: \">\"\n"
			 "    value: -1\n"
			 "    window: 5m\n",
		    "t.yaml:6:12: rules[0].threshold.value: expected a number "
		    "of at least 0, got '-1'");
}

static void
test_common_checks(void)
{
	check_error("rules:\n  - name: 'two words'\n"
		    "    workspace: acme\n    kind: trigger\n",
		    "t.yaml:2:11: rules[0].name: expected a name of letters, "
		    "digits and _ . : - (at most 128), got 'two words'");
	check_error("rules:\n  - name: r\n"
		    "    workspace: '*x'\n    kind: trigger\n",
		    "t.yaml:3:16: rules[0].workspace: expected a workspace "
		    "slug (a-z, 0-9 and '-'), or \"*\" for every workspace, "
		    "got '*x'");
	check_error(HEAD "    kind: trigger\n    severity: high\n",
		    "t.yaml:5:15: rules[0].severity: expected info, warning or "
		    "critical, got 'high'");
	check_error(HEAD "    kind: trigger\n    send_resolved: maybe\n",
		    "t.yaml:5:20: rules[0].send_resolved: expected true or "
		    "false, got 'maybe'");
	check_error(HEAD "    kind: trigger\n    labels: {team-name: x}\n",
		    "t.yaml:5:14: rules[0].labels: expected a name of letters, "
		    "digits and _ not starting with a digit, got 'team-name'");
	check_error(HEAD "    kind: trigger\n    group_by: [country]\n"
			 "    labels: {country: FR}\n",
		    "t.yaml:6:13: rules[0].labels: 'country' is a group_by "
		    "field: its value comes from the events");
	check_error(HEAD
		    "    kind: trigger\n    repeat: {interval: 1h, factr: 2}\n",
		    "t.yaml:5:28: rules[0].repeat: unknown field 'factr' (did "
		    "you mean 'factor'?)");
	check_error("rules:\n  - just a string\n",
		    "t.yaml:2:5: rules[0]: expected a rule (a mapping with "
		    "name, workspace, kind, ...), got 'just a string'");
	check_error("rules: {name: r}\n",
		    "t.yaml:1:8: rules: expected a list of rules, got a "
		    "mapping");
	check_error("rules:\n  - name: [\n",
		    "t.yaml:3:1: did not find expected node content (while "
		    "parsing a flow node)");
	/* A tab used to indent, and a byte that is not UTF-8, as the
	 * configuration reports them (ynode_syntax_error). */
	check_error("rules:\n\t- name: r\n",
		    "t.yaml:2:1: found character that cannot start any token "
		    "(indent with spaces, not tabs)");
	check_error("rules: \"\xff\"\n",
		    "t.yaml:1:9: invalid leading UTF-8 octet (byte 0xff)");
}

/* Every error is reported, in the order of the file. */
static void
test_many_errors(void)
{
	struct strlist errs = {0};
	struct rule_set *set = parse(HEAD "    kind: threshold\n"
					  "    windw: 5m\n"
					  "    op: \">\"\n"
					  "    value: x\n"
					  "  - name: s\n"
					  "    workspace: acme\n"
					  "    kind: trigger\n"
					  "    dedup: later\n",
				     &errs);

	CHECK(set == NULL);
	CHECK(errs.n == 4);
	if (errs.n == 4) {
		CHECK_STR(errs.v[0], "t.yaml:2:5: rules[0].threshold.window: "
				     "missing: threshold rules need a "
				     "duration such as 5m");
		CHECK_STR(errs.v[1], "t.yaml:5:5: rules[0]: unknown field "
				     "'windw' (did you mean 'window'?)");
		CHECK_STR(errs.v[2], "t.yaml:7:12: rules[0].threshold.value: "
				     "expected a number of at least 0, got "
				     "'x'");
		CHECK_STR(errs.v[3], "t.yaml:11:12: rules[1].trigger.dedup: "
				     "expected a duration such as 5m, got "
				     "'later'");
	}
	strlist_free(&errs);
}

static void
test_empty_files(void)
{
	struct rule_set *set = parse_ok("");

	if (set != NULL)
		CHECK(rules_count(set) == 0);
	rules_set_free(set);
	set = parse_ok("# only comments\nrules: []\n");
	if (set != NULL)
		CHECK(rules_count(set) == 0);
	rules_set_free(set);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/* Globs, plain names, files named twice, and the configuration's paths. */
static void
test_load(void)
{
	char dir[] = "/tmp/test_rules.XXXXXX";
	char *a, *b, *bad, *pat, *missing, *none;
	struct strlist errs = {0};
	struct rule_set *set;

	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	a = xprintf("%s/a.yaml", dir);
	b = xprintf("%s/b.yaml", dir);
	bad = xprintf("%s/bad.yml", dir);
	pat = xprintf("%s/*.yaml", dir);
	missing = xprintf("%s/missing.yaml", dir);
	none = xprintf("%s/*.none", dir);
	write_file(a, HEAD "    kind: trigger\n");
	write_file(b, "rules:\n  - name: s\n    workspace: '*'\n"
		      "    kind: trigger\n    notify: sales\n");
	write_file(bad, "rules:\n  - name: t\n    workspace: acme\n"
			"    kind: trigger\n    dedup: x\n");

	{
		char *pats[] = {pat, a, none};

		set = rules_load(pats, 3, endpoints, 2, &errs);
		CHECK(set != NULL);
		CHECK(errs.n == 0);
		if (set != NULL) {
			CHECK(rules_count(set) == 2);
			CHECK(rules_nfiles(set) == 2);
			CHECK_STR(rules_get(set, 0)->file, a);
		}
		rules_set_free(set);
	}
	{
		char *pats[] = {pat, missing, bad};
		char *want1 = xprintf("%s: cannot read: No such file or "
				      "directory",
				      missing);
		char *want2 = xprintf("%s:5:12: rules[0].trigger.dedup: "
				      "expected a duration such as 5m, got "
				      "'x'",
				      bad);

		set = rules_load(pats, 3, endpoints, 2, &errs);
		CHECK(set == NULL);
		CHECK(errs.n == 2);
		for (size_t i = 0; errs.n != 2 && i < errs.n; i++)
			fprintf(stderr, "  error: %s\n", errs.v[i]);
		if (errs.n == 2) {
			CHECK_STR(errs.v[0], want1);
			CHECK_STR(errs.v[1], want2);
		}
		free(want1);
		free(want2);
		strlist_free(&errs);
	}

	{
		char *p1 = rules_path_resolve("/etc/lp/lp.yaml", "rules.d/*");
		char *p2 = rules_path_resolve("/etc/lp/lp.yaml", "/r/*.yaml");
		char *p3 = rules_path_resolve("lp.yaml", "r.yaml");

		CHECK_STR(p1, "/etc/lp/rules.d/*");
		CHECK_STR(p2, "/r/*.yaml");
		CHECK_STR(p3, "r.yaml");
		free(p1);
		free(p2);
		free(p3);
	}

	unlink(a);
	unlink(b);
	unlink(bad);
	rmdir(dir);
	free(a);
	free(b);
	free(bad);
	free(pat);
	free(missing);
	free(none);
}

/* The examples shipped in conf/rules.d: one or more of every kind. */
static void
test_shipped_examples(void)
{
	const char *srcdir = getenv("srcdir");
	char *pat =
	    xprintf("%s/conf/rules.d/*.yaml", srcdir != NULL ? srcdir : ".");
	struct strlist errs = {0};
	struct rule_set *set = rules_load(&pat, 1, NULL, 0, &errs);
	bool seen[7] = {false};
	static const char *const kinds[] = {
	    "threshold", "spike",	"flatline", "trigger",
	    "new_value", "cardinality", "ratio"};

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  error: %s\n", errs.v[i]);
	CHECK(set != NULL);
	for (int i = 0; set != NULL && i < rules_count(set); i++)
		for (size_t k = 0; k < nitems(kinds); k++)
			if (strcmp(rules_get(set, i)->kind->name, kinds[k]) ==
			    0)
				seen[k] = true;
	for (size_t k = 0; k < nitems(kinds); k++)
		if (!seen[k])
			fprintf(stderr, "  no example of %s\n", kinds[k]);
	for (size_t k = 0; k < nitems(kinds); k++)
		CHECK(seen[k]);
	rules_set_free(set);
	strlist_free(&errs);
	free(pat);
}

UT_MAIN("rules", UT(test_threshold), UT(test_defaults), UT(test_spike),
	UT(test_flatline), UT(test_trigger), UT(test_new_value),
	UT(test_cardinality), UT(test_ratio), UT(test_unknown_field),
	UT(test_bad_duration), UT(test_unknown_kind), UT(test_duplicate_name),
	UT(test_endpoints), UT(test_templates), UT(test_intervals),
	UT(test_recover_side), UT(test_group_by), UT(test_match),
	UT(test_threshold_checks), UT(test_common_checks), UT(test_many_errors),
	UT(test_empty_files), UT(test_load), UT(test_shipped_examples))
