/*
 * test_eval.c - unit tests of eval.c, the rules engine: every kind of
 * rule on a virtual clock (windows and their edges, for, keep_firing_for,
 * hysteresis, repeats, spikes against the previous window and an offset,
 * flatline keys and active links, triggers, new values, cardinality,
 * ratios), labels, annotations and fingerprints, reloads, restores, time
 * intervals across a DST change, and the statistics.  Rules are YAML text
 * parsed by rules_parse, as the daemon loads them.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

#include "eval.h"
#include "filter.h"
#include "rules.h"
#include "util.h"
#include "ut.h"
#include "ut_row.h"

/* Monday 2026-01-05 00:00:00 UTC: every window below divides it. */
#define T0   1767571200000LL
#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

/* Every rule in these tests starts so. */
#define HEAD "rules:\n  - name: r\n    workspace: acme\n"

#define L1 "00000000-0000-4000-8000-000000000001"
#define L2 "00000000-0000-4000-8000-000000000002"
#define L3 "00000000-0000-4000-8000-000000000003"

/* ---- rules */

static struct rule_set *
parse_ok(const char *text)
{
	struct strlist errs = {0};
	struct rule_set *set =
	    rules_parse("t.yaml", text, strlen(text), NULL, 0, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  unexpected error: %s\n", errs.v[i]);
	CHECK(set != NULL);
	CHECK(errs.n == 0);
	strlist_free(&errs);
	return set;
}

/* An engine running the rules of text, installed at now. */
static struct eval *
engine(const char *text, int64_t now)
{
	struct eval *e = eval_new();
	struct rule_set *set = parse_ok(text);

	if (set != NULL)
		eval_set_rules(e, set, now);
	return e;
}

static void
reload(struct eval *e, const char *text, int64_t now)
{
	struct rule_set *set = parse_ok(text);

	if (set != NULL)
		eval_set_rules(e, set, now);
}

/* ---- events */

/*
 * Feeds one event at t in workspace ws; its fields are "name=value"
 * strings, NULL-terminated (ut_row.h).
 */
static void
feed(struct eval *e, bool warming, int64_t t, const char *ws, ...)
{
	struct eval_event ev;
	struct ut_row x;
	va_list ap;

	va_start(ap, ws);
	ut_row_vset(&x, ap);
	va_end(ap);
	ev.t_ms = t;
	ev.workspace = ws;
	ev.row = x.row;
	eval_event(e, &ev, warming);
}

/* n events at t, each with the one field f ("name=value", or NULL). */
static void
feed_n(struct eval *e, int n, int64_t t, const char *f)
{
	for (int i = 0; i < n; i++)
		feed(e, false, t, "acme", f, NULL);
}

/* ---- changes */

/* The changes of the last take (freed by the next one and by done). */
static struct eval_alert *ch;
static int nch;

static int
take(struct eval *e)
{
	eval_alerts_free(ch, nch);
	ch = eval_take(e, &nch);
	return nch;
}

static void
done(struct eval *e)
{
	eval_alerts_free(ch, nch);
	ch = NULL;
	nch = 0;
	eval_free(e);
}

/* Ticks at now and takes the changes: their number. */
static int
tick(struct eval *e, int64_t now)
{
	eval_tick(e, now);
	return take(e);
}

static const char *
label(const struct eval_alert *a, const char *name)
{
	for (int i = 0; i < a->nlabels; i++)
		if (strcmp(a->label_names[i], name) == 0)
			return a->label_values[i];
	return NULL;
}

static const char *
annotation(const struct eval_alert *a, const char *name)
{
	for (int i = 0; i < a->nannotations; i++)
		if (strcmp(a->annotation_names[i], name) == 0)
			return a->annotation_values[i];
	return NULL;
}

/* Whether change i of the last take went from -> to and notified so. */
static bool
is_change(int i, enum alert_state from, enum alert_state to, bool notify)
{
	if (i >= nch) {
		fprintf(stderr, "  no change %d (%d taken)\n", i, nch);
		return false;
	}
	if (ch[i].from == from && ch[i].state == to && ch[i].notify == notify)
		return true;
	fprintf(stderr, "  change %d: %s -> %s notify %d\n", i,
		alert_state_name(ch[i].from), alert_state_name(ch[i].state),
		ch[i].notify);
	return false;
}

#define CHANGE(i, from, to, notify)                                            \
	CHECK(is_change(i, ALERT_##from, ALERT_##to, notify))

/* The alerts eval_foreach lists (pending or firing). */
#define LIST_MAX 16
struct list {
	int n, firing, pending;
	const char *by; /* a label whose value is kept */
	char state[LIST_MAX][16], value[LIST_MAX][32], fp[LIST_MAX][17];
	char key[LIST_MAX][64];
};

static void
list_add(const struct eval_alert *a, void *arg)
{
	struct list *l = arg;
	const char *k = l->by != NULL ? label(a, l->by) : NULL;

	CHECK(a->state == ALERT_PENDING || a->state == ALERT_FIRING);
	CHECK(!a->notify);
	l->firing += a->state == ALERT_FIRING;
	l->pending += a->state == ALERT_PENDING;
	if (l->n >= LIST_MAX)
		return;
	snprintf(l->state[l->n], sizeof l->state[0], "%s",
		 alert_state_name(a->state));
	snprintf(l->value[l->n], sizeof l->value[0], "%s", a->value);
	snprintf(l->fp[l->n], sizeof l->fp[0], "%s", a->fingerprint);
	snprintf(l->key[l->n], sizeof l->key[0], "%s", k != NULL ? k : "");
	l->n++;
}

static struct list
list(struct eval *e, const char *by)
{
	struct list l;

	memset(&l, 0, sizeof l);
	l.by = by;
	eval_foreach(e, list_add, &l);
	return l;
}

/* The index in l of the alert whose label l.by is key, or -1. */
static int
list_find(const struct list *l, const char *key)
{
	for (int i = 0; i < l->n && i < LIST_MAX; i++)
		if (strcmp(l->key[i], key) == 0)
			return i;
	return -1;
}

/* The index of the change whose label name is value, or -1. */
static int
change_find(const char *name, const char *value)
{
	for (int i = 0; i < nch; i++) {
		const char *v = label(&ch[i], name);

		if (v != NULL && strcmp(v, value) == 0)
			return i;
	}
	return -1;
}

static const struct rule *
first_rule(struct eval *e)
{
	const struct rule_set *set = eval_rules(e);

	return set != NULL && rules_count(set) > 0 ? rules_get(set, 0) : NULL;
}

/* ---- states */

static void
test_state_names(void)
{
	CHECK_STR(alert_state_name(ALERT_INACTIVE), "inactive");
	CHECK_STR(alert_state_name(ALERT_PENDING), "pending");
	CHECK_STR(alert_state_name(ALERT_FIRING), "firing");
	CHECK_STR(alert_state_name(ALERT_RESOLVED), "resolved");
	CHECK(alert_state_parse("pending") == ALERT_PENDING);
	CHECK(alert_state_parse("firing") == ALERT_FIRING);
	CHECK(alert_state_parse("resolved") == ALERT_RESOLVED);
	CHECK(alert_state_parse("inactive") == ALERT_INACTIVE);
	CHECK(alert_state_parse("Firing") == -1);
	CHECK(alert_state_parse("") == -1);
}

/* ---- threshold */

/* A rule that fires on any event: its value is the window's measure. */
#define ANY_COUNT(window)                                                      \
	HEAD "    kind: threshold\n"                                           \
	     "    op: \">\"\n"                                                 \
	     "    value: 0\n"                                                  \
	     "    window: " window "\n"

/* The window at T is (T-W, T]: an event at T-W is out, one at T is in. */
static void
test_threshold_window_edges(void)
{
	int64_t t = T0 + HOUR;
	struct eval *e = engine(ANY_COUNT("10m"), T0);
	struct list l;

	feed(e, false, t - 10 * MIN, "acme", NULL);
	feed(e, false, t - 10 * MIN + 1, "acme", NULL);
	feed(e, false, t, "acme", NULL);
	CHECK(take(e) == 0); /* condition kinds change at ticks only */
	CHECK(tick(e, t) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1) {
		CHECK_STR(ch[0].value, "2");
		CHECK_STR(ch[0].threshold, "0");
		CHECK(ch[0].at_ms == t && ch[0].active_at_ms == t);
		CHECK(ch[0].fired_at_ms == t && ch[0].resolved_at_ms == 0);
		CHECK(ch[0].notifications == 1 && ch[0].notified_at_ms == t);
		CHECK(!ch[0].repeat);
		CHECK_STR(ch[0].workspace, "acme");
		CHECK_STR(ch[0].rule->name, "r");
	}
	/* The window slides: 10 s later the event at T-W+1 is out. */
	CHECK(tick(e, t + 10 * SEC) == 0);
	l = list(e, NULL);
	CHECK(l.n == 1 && l.firing == 1);
	CHECK_STR(l.value[0], "1");
	/* The event at T leaves exactly at T+W. */
	CHECK(tick(e, t + 10 * MIN - 10 * SEC) == 0);
	CHECK(tick(e, t + 10 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1) {
		CHECK_STR(ch[0].value, "0");
		CHECK(ch[0].resolved_at_ms == t + 10 * MIN);
		CHECK(ch[0].fired_at_ms == t);
	}
	CHECK(list(e, NULL).n == 0);
	done(e);
}

/*
 * Buckets are numbered from the oldest one kept: an event older than
 * every bucket renumbers them; one years away from them all is left out
 * (no window near now counts it).
 */
static void
test_bucket_numbers(void)
{
	int64_t t = T0 + HOUR;
	struct eval *e = engine(ANY_COUNT("10m"), T0);
	struct list l;

	feed(e, false, t, "acme", NULL);
	feed(e, false, t - 9 * MIN, "acme", NULL); /* before the first */
	feed(e, false, t - 5 * MIN, "acme", NULL); /* in between */
	feed(e, false, t - 300 * 365 * DAY, "acme", NULL); /* far past */
	feed(e, false, t + 300 * 365 * DAY, "acme", NULL); /* far future */
	CHECK(tick(e, t) == 1);
	l = list(e, NULL);
	CHECK(l.n == 1);
	if (l.n == 1)
		CHECK_STR(l.value[0], "3");
	/* Expiry moves the numbering on: the next events still count. */
	CHECK(tick(e, t + 6 * MIN) == 0);
	CHECK_STR(list(e, NULL).value[0], "1");
	feed(e, false, t + 7 * MIN, "acme", NULL);
	feed(e, false, t + 2 * MIN, "acme", NULL);
	CHECK(tick(e, t + 8 * MIN) == 0);
	CHECK_STR(list(e, NULL).value[0], "3");
	CHECK(tick(e, t + 10 * MIN) == 0);
	CHECK_STR(list(e, NULL).value[0], "2");
	CHECK(tick(e, t + 17 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	done(e);

	/*
	 * A steady stream: buckets expire at every tick and new ones reuse
	 * their room; a one-minute window always holds 60 of them.
	 */
	e = engine(ANY_COUNT("1m"), T0);
	for (int s = 1; s <= 600; s++) {
		feed(e, false, t + s * SEC, "acme", NULL);
		take(e);
		eval_tick(e, t + s * SEC);
		take(e);
		l = list(e, NULL);
		CHECK(l.n == 1);
		if (s >= 60 && l.n == 1)
			CHECK_STR(l.value[0], "60");
	}
	done(e);
}

/*
 * A window with a total per bucket (avg, ratio) keeps it beside its
 * bucket through growth, the reuse of expired room and buckets made out
 * of order: checked against the mean of the events in the window.
 */
static void
test_wide_buckets(void)
{
	int64_t t = T0 + HOUR, at[400];
	double v[400];
	int n = 0;
	char f[64];
	struct eval *e = engine(HEAD "    kind: threshold\n"
				     "    measure: avg\n"
				     "    field: redirect_latency_ms\n"
				     "    op: \">\"\n"
				     "    value: -1\n"
				     "    window: 1m\n",
				T0);

	for (int s = 2; s <= 400; s += 2) {
		bool late = s % 10 == 0 && s > 40;
		double sum = 0;
		int in = 0, first = n;
		struct list l;

		at[n] = t + s * SEC;
		v[n++] = s;
		/* Every tenth second, a late event in a bucket not yet made. */
		if (late) {
			at[n] = t + (s - 31) * SEC;
			v[n++] = 1000 + s;
		}
		for (int i = first; i < n; i++) {
			snprintf(f, sizeof f, "redirect_latency_ms=%g", v[i]);
			feed(e, false, at[i], "acme", f, NULL);
		}
		take(e);
		eval_tick(e, t + s * SEC);
		take(e);
		for (int i = 0; i < n; i++) {
			if (at[i] > t + (s - 60) * SEC &&
			    at[i] <= t + s * SEC) {
				sum += v[i];
				in++;
			}
		}
		l = list(e, NULL);
		CHECK(l.n == 1);
		if (l.n == 1 &&
		    fabs(strtod(l.value[0], NULL) - sum / in) > 0.006) {
			fprintf(stderr, "  at %d s: %s, want %.2f\n", s,
				l.value[0], sum / in);
			CHECK(false);
			break;
		}
	}
	done(e);
}

/* Every op against 3 events in the window. */
static void
test_threshold_ops(void)
{
	static const struct {
		const char *op, *value;
		bool fires;
	} cases[] = {
	    {">", "3", false},	  {">", "2", true},   {">", "2.5", true},
	    {">=", "3", true},	  {">=", "4", false}, {"<", "3", false},
	    {"<", "4", true},	  {"<=", "3", true},  {"<=", "2", false},
	    {"<=", "2.9", false},
	};

	for (size_t i = 0; i < nitems(cases); i++) {
		char *text = xprintf(HEAD "    kind: threshold\n"
					  "    op: \"%s\"\n"
					  "    value: %s\n"
					  "    window: 5m\n",
				     cases[i].op, cases[i].value);
		struct eval *e = engine(text, T0);
		int n;

		feed_n(e, 3, T0 + MIN, NULL);
		n = tick(e, T0 + 2 * MIN);
		if (n != (cases[i].fires ? 1 : 0))
			fprintf(stderr, "  op %s %s: %d changes\n", cases[i].op,
				cases[i].value, n);
		CHECK(n == (cases[i].fires ? 1 : 0));
		if (cases[i].fires)
			CHANGE(0, INACTIVE, FIRING, true);
		done(e);
		free(text);
	}
}

/* The value of the one alert listed after feeding and a tick. */
static void
check_measure(const char *rule, const char *want, int64_t now)
{
	struct eval *e = engine(rule, T0);
	struct list l;

	feed(e, false, T0 + MIN, "acme", "redirect_latency_ms=100", "visitor=a",
	     NULL);
	feed(e, false, T0 + MIN, "acme", "redirect_latency_ms=200", "visitor=b",
	     NULL);
	feed(e, false, T0 + 2 * MIN, "acme", "redirect_latency_ms=301",
	     "visitor=a", NULL);
	/* No latency: not part of sum or avg; a third visitor. */
	feed(e, false, T0 + 2 * MIN, "acme", "visitor=c", NULL);
	/* At the window's start: out. */
	feed(e, false, now - 5 * MIN, "acme", "redirect_latency_ms=1000",
	     "visitor=d", NULL);
	CHECK(tick(e, now) == 1);
	l = list(e, NULL);
	CHECK(l.n == 1);
	if (l.n == 1 && strcmp(l.value[0], want) != 0)
		fprintf(stderr, "  %s: got %s\n", want, l.value[0]);
	CHECK(l.n == 1 && strcmp(l.value[0], want) == 0);
	done(e);
}

static void
test_threshold_measures(void)
{
	int64_t now = T0 + 5 * MIN;

	check_measure(ANY_COUNT("5m"), "4", now);
	check_measure(HEAD "    kind: threshold\n"
			   "    measure: sum\n"
			   "    field: redirect_latency_ms\n"
			   "    op: \">\"\n"
			   "    value: 0\n"
			   "    window: 5m\n",
		      "601", now);
	check_measure(HEAD "    kind: threshold\n"
			   "    measure: avg\n"
			   "    field: redirect_latency_ms\n"
			   "    op: \">\"\n"
			   "    value: 0\n"
			   "    window: 5m\n",
		      "200.33", now);
	check_measure(HEAD "    kind: threshold\n"
			   "    measure: unique_visitors\n"
			   "    op: \">\"\n"
			   "    value: 0\n"
			   "    window: 5m\n",
		      "3", now);
}

/* avg of no event is no value: it neither fires (for <) nor holds. */
static void
test_threshold_avg_empty(void)
{
	struct eval *e = engine(HEAD "    kind: threshold\n"
				     "    measure: avg\n"
				     "    field: redirect_latency_ms\n"
				     "    op: <\n"
				     "    value: 50\n"
				     "    window: 1m\n",
				T0);

	feed(e, false, T0 + 10 * SEC, "acme", "redirect_latency_ms=10", NULL);
	CHECK(tick(e, T0 + MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	CHECK(tick(e, T0 + 2 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	done(e);
}

static void
test_threshold_for(void)
{
	struct eval *e = engine(HEAD "    kind: threshold\n"
				     "    op: \">\"\n"
				     "    value: 2\n"
				     "    window: 10m\n"
				     "    for: 5m\n",
				T0);

	feed_n(e, 3, T0 + MIN, NULL);
	CHECK(tick(e, T0 + MIN) == 1);
	CHANGE(0, INACTIVE, PENDING, false);
	if (nch == 1) {
		CHECK(ch[0].active_at_ms == T0 + MIN);
		CHECK(ch[0].fired_at_ms == 0 && ch[0].notifications == 0);
	}
	CHECK(list(e, NULL).pending == 1);
	CHECK(tick(e, T0 + 5 * MIN) == 0);
	CHECK(tick(e, T0 + 6 * MIN - SEC) == 0);
	CHECK(tick(e, T0 + 6 * MIN) == 1);
	CHANGE(0, PENDING, FIRING, true);
	if (nch == 1) {
		CHECK(ch[0].active_at_ms == T0 + MIN);
		CHECK(ch[0].fired_at_ms == T0 + 6 * MIN);
	}
	CHECK(list(e, NULL).firing == 1);
	done(e);

	/* Pending, then the condition goes: back to inactive, no notice. */
	e = engine(HEAD "    kind: threshold\n"
			"    op: \">\"\n"
			"    value: 2\n"
			"    window: 10m\n"
			"    for: 15m\n",
		   T0);
	feed_n(e, 3, T0 + MIN, NULL);
	CHECK(tick(e, T0 + MIN) == 1);
	CHANGE(0, INACTIVE, PENDING, false);
	CHECK(tick(e, T0 + 11 * MIN - SEC) == 0);
	CHECK(tick(e, T0 + 11 * MIN) == 1);
	CHANGE(0, PENDING, INACTIVE, false);
	CHECK(list(e, NULL).n == 0);
	/* Pending again restarts the wait. */
	feed_n(e, 3, T0 + 12 * MIN, NULL);
	CHECK(tick(e, T0 + 12 * MIN) == 1);
	CHANGE(0, INACTIVE, PENDING, false);
	if (nch == 1)
		CHECK(ch[0].active_at_ms == T0 + 12 * MIN);
	done(e);
}

static void
test_threshold_keep_firing_for(void)
{
	struct eval *e = engine(HEAD "    kind: threshold\n"
				     "    op: \">\"\n"
				     "    value: 0\n"
				     "    window: 1m\n"
				     "    keep_firing_for: 5m\n",
				T0);

	feed(e, false, T0 + 30 * SEC, "acme", NULL);
	CHECK(tick(e, T0 + MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	CHECK(tick(e, T0 + 2 * MIN) == 0); /* clear since 2m */
	CHECK(tick(e, T0 + 4 * MIN) == 0);
	/* Back before keep_firing_for is over: the wait starts again. */
	feed(e, false, T0 + 4 * MIN + 30 * SEC, "acme", NULL);
	CHECK(tick(e, T0 + 5 * MIN) == 0);
	CHECK(tick(e, T0 + 6 * MIN) == 0); /* clear since 6m */
	CHECK(tick(e, T0 + 10 * MIN) == 0);
	CHECK(tick(e, T0 + 11 * MIN - SEC) == 0);
	CHECK(list(e, NULL).firing == 1);
	CHECK(tick(e, T0 + 11 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1)
		CHECK(ch[0].resolved_at_ms == T0 + 11 * MIN);
	done(e);
}

/*
 * A value oscillating around the threshold fires once, and resolves once
 * it is back at recover.
 */
static void
test_threshold_hysteresis(void)
{
	static const int counts[] = {11, 9, 11, 10, 12, 6, 11, 5, 4, 9, 11};
	struct eval *e = engine(HEAD "    kind: threshold\n"
				     "    op: \">\"\n"
				     "    value: 10\n"
				     "    recover: 5\n"
				     "    window: 1m\n",
				T0);
	int firing = 0, resolved = 0, changes = 0;
	int64_t resolved_at = 0, fired_at[2] = {0, 0};

	for (size_t i = 0; i < nitems(counts); i++) {
		int64_t now = T0 + (int64_t)(i + 1) * MIN;

		feed_n(e, counts[i], now - 30 * SEC, NULL);
		changes += tick(e, now);
		for (int j = 0; j < nch; j++) {
			CHECK(ch[j].notify);
			if (ch[j].state == ALERT_FIRING && firing < 2)
				fired_at[firing++] = now;
			if (ch[j].state == ALERT_RESOLVED) {
				resolved++;
				resolved_at = now;
				CHECK_STR(ch[j].value, "5");
			}
		}
	}
	/* Fired at 11, held through 9..6, resolved at 5, fired again at 11. */
	CHECK(changes == 3);
	CHECK(firing == 2 && resolved == 1);
	CHECK(fired_at[0] == T0 + MIN);
	CHECK(resolved_at == T0 + 8 * MIN);
	CHECK(fired_at[1] == T0 + 11 * MIN);
	done(e);

	/* Below: fires under 3, resolves at 6 or more. */
	e = engine(HEAD "    kind: threshold\n"
			"    op: <\n"
			"    value: 3\n"
			"    recover: 6\n"
			"    window: 1m\n",
		   T0);
	feed_n(e, 2, T0 + 30 * SEC, NULL);
	CHECK(tick(e, T0 + MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1)
		CHECK_STR(ch[0].threshold, "3");
	feed_n(e, 5, T0 + 90 * SEC, NULL);
	CHECK(tick(e, T0 + 2 * MIN) == 0);
	feed_n(e, 6, T0 + 150 * SEC, NULL);
	CHECK(tick(e, T0 + 3 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	done(e);
}

/* Notifications while firing: at 0, +10m, then 20m, 30m, 30m apart. */
static void
test_threshold_repeat(void)
{
	static const int64_t want[] = {0, 10, 30, 60, 90, 120};
	struct eval *e = engine(HEAD "    kind: threshold\n"
				     "    op: \">\"\n"
				     "    value: 0\n"
				     "    window: 1h\n"
				     "    repeat: {interval: 10m, factor: 2, "
				     "max_interval: 30m}\n",
				T0);
	int64_t got[16];
	int n = 0;

	for (int m = 0; m <= 125; m++) {
		feed(e, false, T0 + m * MIN, "acme", NULL);
		tick(e, T0 + m * MIN);
		for (int j = 0; j < nch; j++) {
			CHECK(ch[j].notify);
			CHECK(ch[j].state == ALERT_FIRING);
			CHECK(ch[j].repeat == (n > 0));
			CHECK(ch[j].from ==
			      (n > 0 ? ALERT_FIRING : ALERT_INACTIVE));
			CHECK(ch[j].notifications == n + 1);
			CHECK(ch[j].notified_at_ms == T0 + m * MIN);
			CHECK(ch[j].fired_at_ms == T0);
			if (n < 16)
				got[n++] = m;
		}
	}
	CHECK(n == (int)nitems(want));
	for (int i = 0; i < n && i < (int)nitems(want); i++) {
		if (got[i] != want[i])
			fprintf(stderr, "  notification %d at %lldm\n", i,
				(long long)got[i]);
		CHECK(got[i] == want[i]);
	}
	done(e);

	/* A plain interval: steady. */
	e = engine(HEAD "    kind: threshold\n"
			"    op: \">\"\n"
			"    value: 0\n"
			"    window: 1h\n"
			"    repeat: 15m\n",
		   T0);
	n = 0;
	for (int m = 0; m <= 50; m++) {
		feed(e, false, T0 + m * MIN, "acme", NULL);
		tick(e, T0 + m * MIN);
		for (int j = 0; j < nch; j++) {
			CHECK(ch[j].notify);
			if (n < 16)
				got[n++] = m;
		}
	}
	CHECK(n == 4);
	if (n == 4)
		CHECK(got[0] == 0 && got[1] == 15 && got[2] == 30 &&
		      got[3] == 45);
	done(e);

	/* No repeat: one notification however long it fires. */
	e = engine(ANY_COUNT("1h"), T0);
	n = 0;
	for (int m = 0; m <= 300; m += 5) {
		feed(e, false, T0 + m * MIN, "acme", NULL);
		n += tick(e, T0 + m * MIN);
	}
	CHECK(n == 1);
	done(e);
}

static void
test_threshold_send_resolved(void)
{
	struct eval *e =
	    engine(ANY_COUNT("1m") "    send_resolved: false\n", T0);

	feed(e, false, T0 + SEC, "acme", NULL);
	CHECK(tick(e, T0 + MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	CHECK(tick(e, T0 + 2 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	done(e);
}

/* ---- spike */

static void
test_spike_previous(void)
{
	struct eval *e = engine(HEAD "    kind: spike\n"
				     "    window: 10m\n"
				     "    ratio: 3\n",
				T0);
	int64_t t = T0 + HOUR;

	feed_n(e, 2, t - 15 * MIN, NULL); /* the previous window */
	feed_n(e, 5, t - 5 * MIN, NULL);  /* the current one */
	CHECK(tick(e, t) == 0);		  /* 2.5 times */
	feed_n(e, 1, t - MIN, NULL);
	CHECK(tick(e, t) == 1); /* 3 times */
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1) {
		CHECK_STR(ch[0].value, "3");
		CHECK_STR(ch[0].threshold, "3");
	}
	/*
	 * 10 minutes on, the 6 are the baseline and nothing is current:
	 * resolved.
	 */
	CHECK(tick(e, t + 10 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1)
		CHECK_STR(ch[0].value, "0");
	done(e);
}

/* 1h against the same hour a day before; the hour before is no baseline. */
static void
test_spike_offset(void)
{
	struct eval *e = engine(HEAD "    kind: spike\n"
				     "    window: 1h\n"
				     "    baseline: 1d\n"
				     "    ratio: 2\n",
				T0);
	int64_t t = T0 + 2 * DAY;

	/* Ticks on the way, as the daemon does: windows are kept a span. */
	feed_n(e, 10, t - DAY - 30 * MIN, NULL);
	CHECK(tick(e, t - DAY) == 1); /* 10 from nothing: a spike itself */
	CHANGE(0, INACTIVE, FIRING, true);
	CHECK(tick(e, t - DAY + HOUR) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	feed_n(e, 100, t - 90 * MIN, NULL); /* not the baseline */
	CHECK(tick(e, t - HOUR) == 1);	    /* but 100 from 0 a day before */
	CHECK(tick(e, t - 59 * MIN) == 0);
	CHECK(tick(e, t - 1) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	feed_n(e, 19, t - 30 * MIN, NULL);
	CHECK(tick(e, t) == 0); /* 1.9 times */
	feed_n(e, 1, t - 29 * MIN, NULL);
	CHECK(tick(e, t) == 1);
	CHANGE(0, RESOLVED, FIRING, true);
	if (nch == 1)
		CHECK_STR(ch[0].value, "2");
	done(e);
}

/* Which of up, down, both fire for a baseline and a current count. */
static void
check_direction(int base, int cur, const char *extra, bool up, bool down,
		bool both)
{
	static const char *const dirs[] = {"up", "down", "both"};
	bool want[] = {up, down, both};

	for (int d = 0; d < 3; d++) {
		char *text = xprintf(HEAD "    kind: spike\n"
					  "    window: 10m\n"
					  "    ratio: 2\n"
					  "    direction: %s\n%s",
				     dirs[d], extra);
		struct eval *e = engine(text, T0);
		int n;

		feed_n(e, base, T0 + 5 * MIN, NULL);
		feed_n(e, cur, T0 + 15 * MIN, NULL);
		n = tick(e, T0 + 20 * MIN);
		if (n != (want[d] ? 1 : 0))
			fprintf(stderr, "  %s %d -> %d: %d changes\n", dirs[d],
				base, cur, n);
		CHECK(n == (want[d] ? 1 : 0));
		done(e);
		free(text);
	}
}

static void
test_spike_directions(void)
{
	check_direction(10, 20, "", true, false, true);
	check_direction(10, 19, "", false, false, false);
	check_direction(10, 5, "", false, true, true);
	check_direction(10, 6, "", false, false, false);
	check_direction(10, 0, "", false, true, true);
	/* Minimum counts. */
	check_direction(2, 8, "    min_current: 9\n", false, false, false);
	check_direction(2, 8, "    min_current: 8\n", true, false, true);
	check_direction(2, 8, "    min_baseline: 3\n", false, false, false);
	check_direction(20, 8, "    min_baseline: 20\n", false, true, true);
	check_direction(20, 8, "    min_baseline: 21\n", false, false, false);
	/* From nothing: up, unless a baseline is required. */
	check_direction(0, 3, "", true, false, true);
	check_direction(0, 3, "    min_baseline: 1\n", false, false, false);
	check_direction(0, 3, "    min_current: 4\n", false, false, false);
}

static void
test_spike_baseline_zero(void)
{
	struct eval *e = engine(HEAD "    kind: spike\n"
				     "    window: 10m\n"
				     "    ratio: 2\n"
				     "    annotations: {s: \"{{ value }}x\"}\n",
				T0);

	feed_n(e, 3, T0 + 15 * MIN, NULL);
	CHECK(tick(e, T0 + 20 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1) {
		CHECK_STR(ch[0].value, "+Inf");
		CHECK_STR(annotation(&ch[0], "s"), "+Infx");
	}
	done(e);
}

/* ---- flatline */

static void
test_flatline_keys(void)
{
	struct eval *e = engine(HEAD "    kind: flatline\n"
				     "    window: 30m\n"
				     "    below: 1\n"
				     "    group_by: [country]\n"
				     "    keys: [FR, DE]\n",
				T0);

	/* Events before the first tick count. */
	feed(e, false, T0 + 10 * MIN, "acme", "country=FR", NULL);
	feed(e, false, T0 + 10 * MIN, "acme", "country=IT", NULL);
	feed(e, false, T0 + 10 * MIN, "beta", "country=DE", NULL);
	CHECK(tick(e, T0 + 30 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1) {
		CHECK_STR(label(&ch[0], "country"), "DE");
		CHECK_STR(ch[0].value, "0");
		CHECK_STR(ch[0].threshold, "1");
		CHECK_STR(ch[0].workspace, "acme");
	}
	/* Not a key: never a group that fires. */
	CHECK(list(e, "country").n == 1);
	/* FR's event leaves the window. */
	CHECK(tick(e, T0 + 40 * MIN - SEC) == 0);
	CHECK(tick(e, T0 + 40 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1)
		CHECK_STR(label(&ch[0], "country"), "FR");
	/* DE comes back. */
	feed(e, false, T0 + 41 * MIN, "acme", "country=DE", NULL);
	CHECK(tick(e, T0 + 41 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1)
		CHECK_STR(label(&ch[0], "country"), "DE");
	done(e);
}

/* A rule for every workspace seeds keys in the workspaces of the links. */
static void
test_flatline_keys_all_workspaces(void)
{
	struct eval *e = engine("rules:\n  - name: r\n    workspace: \"*\"\n"
				"    kind: flatline\n"
				"    window: 30m\n"
				"    below: 2\n"
				"    group_by: [country]\n"
				"    keys: [FR]\n",
				T0);
	char *ids[] = {L1};

	CHECK(tick(e, T0 + HOUR) == 0); /* no workspace known */
	eval_set_links(e, "acme", ids, 1, T0 + HOUR);
	eval_set_links(e, "beta", ids, 1, T0 + HOUR);
	feed(e, false, T0 + HOUR, "beta", "country=FR", NULL);
	feed(e, false, T0 + HOUR, "beta", "country=FR", NULL);
	feed(e, false, T0 + HOUR, "acme", "country=FR", NULL);
	CHECK(tick(e, T0 + HOUR) == 1); /* acme had 1, fewer than 2 */
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1) {
		CHECK_STR(ch[0].workspace, "acme");
		CHECK_STR(ch[0].value, "1");
	}
	done(e);
}

static void
test_flatline_links(void)
{
	struct eval *e = engine(HEAD "    kind: flatline\n"
				     "    window: 30m\n"
				     "    below: 1\n"
				     "    annotations: {s: \"{{ group }}\"}\n",
				T0);
	char *first[] = {L1, L2}, *second[] = {L1, L2, L3}, *third[] = {L1, L3};
	struct eval_rule_stats st;

	eval_set_links(e, "acme", first, 2, T0);
	/* Another workspace's links are not this rule's. */
	eval_set_links(e, "beta", first, 2, T0);
	/* Warm-up and events before the first tick count. */
	feed(e, true, T0 - 10 * MIN, "acme", "link=" L2, NULL);
	eval_warmed(e);
	feed(e, false, T0 + 5 * MIN, "acme", "link=" L2, NULL);
	/* The first list is watched for ever: quiet L1 fires at once. */
	CHECK(tick(e, T0 + 10 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1) {
		CHECK_STR(label(&ch[0], "link"), L1);
		CHECK_STR(annotation(&ch[0], "s"), L1);
		CHECK_STR(ch[0].value, "0");
	}
	CHECK(tick(e, T0 + 30 * MIN) == 0);
	/* L3 is new: watched from now, quiet for a window before firing. */
	eval_set_links(e, "acme", second, 3, T0 + 30 * MIN);
	feed(e, false, T0 + 31 * MIN, "acme", "link=" L1, NULL);
	feed(e, false, T0 + 31 * MIN, "acme", "link=" L2, NULL);
	CHECK(tick(e, T0 + 31 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1)
		CHECK_STR(label(&ch[0], "link"), L1);
	feed(e, false, T0 + 45 * MIN, "acme", "link=" L1, NULL);
	CHECK(tick(e, T0 + 60 * MIN - SEC) == 0);
	CHECK(tick(e, T0 + 60 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1)
		CHECK_STR(label(&ch[0], "link"), L3);
	/* L2 quiet too. */
	CHECK(tick(e, T0 + 61 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1)
		CHECK_STR(label(&ch[0], "link"), L2);
	CHECK(list(e, "link").firing == 2);
	/* L2 goes away (deleted or paused): its alert resolves. */
	eval_set_links(e, "acme", third, 2, T0 + 62 * MIN);
	CHECK(tick(e, T0 + 62 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1)
		CHECK_STR(label(&ch[0], "link"), L2);
	/* Events of a link not watched are ignored. */
	feed(e, false, T0 + 63 * MIN, "acme", "link=" L2, NULL);
	CHECK(tick(e, T0 + 63 * MIN) == 0);
	eval_rule_stats(e, first_rule(e), &st);
	CHECK(st.groups == 2 && st.firing == 1);
	done(e);
}

/* ---- trigger */

static void
test_trigger_every_event(void)
{
	struct eval *e = engine(HEAD "    kind: trigger\n"
				     "    match: {status: error}\n",
				T0);

	feed(e, false, T0 + SEC, "acme", "status=ok", NULL);
	CHECK(take(e) == 0);
	feed(e, false, T0 + 2 * SEC, "acme", "status=error", NULL);
	CHECK(take(e) == 2);
	CHANGE(0, INACTIVE, FIRING, true);
	CHANGE(1, FIRING, RESOLVED, false);
	if (nch == 2) {
		CHECK(ch[0].at_ms == T0 + 2 * SEC);
		CHECK(ch[1].resolved_at_ms == T0 + 2 * SEC);
		CHECK_STR(ch[0].value, "1");
		CHECK(ch[0].threshold == NULL);
		CHECK_STR(ch[0].fingerprint, ch[1].fingerprint);
	}
	feed(e, false, T0 + 2 * SEC, "acme", "status=error", NULL);
	CHECK(take(e) == 2);
	CHECK(nch == 2 && ch[0].state == ALERT_FIRING && ch[0].notify);
	CHECK(tick(e, T0 + MIN) == 0);
	CHECK(list(e, NULL).n == 0);
	done(e);
}

/* {{ event.FIELD }}: the firing event's fields, kept until it resolves. */
static void
test_trigger_event_fields(void)
{
	struct eval *e =
	    engine(HEAD "    kind: trigger\n"
			"    dedup: 1h\n"
			"    group_by: [visitor]\n"
			"    annotations:\n"
			"      summary: '{{ event.visitor.email }} scored {{ "
			"event.visitor.lead_score }} on {{ event.link.tag }} "
			"[{{ event.properties.plan }}] {{ event.city }}.'\n",
		   T0);
	struct list l;

	feed(e, false, T0, "acme", "visitor=" L1,
	     "visitor.email=ana@example.com", "visitor.lead_score=91",
	     "link.tag=pricing", "link.tag=demo", "properties.plan=pro", NULL);
	CHECK(take(e) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1)
		CHECK_STR(annotation(&ch[0], "summary"),
			  "ana@example.com scored 91 on pricing, demo [pro] .");
	/* Deduplicated: a later event changes nothing it says. */
	feed(e, false, T0 + MIN, "acme", "visitor=" L1,
	     "visitor.email=other@example.com", NULL);
	CHECK(take(e) == 0);
	l = list(e, NULL);
	CHECK(l.n == 1);
	CHECK(tick(e, T0 + HOUR) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	if (nch == 1)
		CHECK_STR(annotation(&ch[0], "summary"),
			  "ana@example.com scored 91 on pricing, demo [pro] .");
	done(e);
}

static void
test_trigger_dedup(void)
{
	struct eval *e = engine(HEAD "    kind: trigger\n"
				     "    dedup: 1h\n",
				T0);

	feed(e, false, T0, "acme", NULL);
	CHECK(take(e) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	feed(e, false, T0 + 10 * MIN, "acme", NULL);
	feed(e, false, T0 + 59 * MIN, "acme", NULL);
	CHECK(take(e) == 0);
	CHECK(tick(e, T0 + 30 * MIN) == 0);
	CHECK(list(e, NULL).firing == 1);
	CHECK(tick(e, T0 + HOUR - 1) == 0);
	CHECK(tick(e, T0 + HOUR) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	if (nch == 1)
		CHECK_STR(ch[0].value, "3"); /* events in the period */
	feed(e, false, T0 + HOUR + 1, "acme", NULL);
	CHECK(take(e) == 1);
	CHECK(nch == 1 && ch[0].state == ALERT_FIRING && ch[0].notify &&
	      ch[0].notifications == 1);
	done(e);
}

static void
test_trigger_per_key(void)
{
	struct eval *e = engine(HEAD "    kind: trigger\n"
				     "    dedup: 1h\n"
				     "    group_by: [visitor]\n",
				T0);
	struct list l;

	feed(e, false, T0, "acme", "visitor=a", NULL);
	feed(e, false, T0 + MIN, "acme", "visitor=b", NULL);
	feed(e, false, T0 + 2 * MIN, "acme", "visitor=a", NULL);
	feed(e, false, T0 + 3 * MIN, "acme", NULL); /* no visitor: "" */
	CHECK(take(e) == 3);
	CHECK(change_find("visitor", "a") == 0);
	CHECK(change_find("visitor", "b") == 1);
	CHECK(change_find("visitor", "") == 2);
	if (nch == 3) {
		CHECK(strcmp(ch[0].fingerprint, ch[1].fingerprint) != 0);
		CHECK(strcmp(ch[1].fingerprint, ch[2].fingerprint) != 0);
	}
	l = list(e, "visitor");
	CHECK(l.firing == 3);
	/* Each key resolves an hour after it fired. */
	CHECK(tick(e, T0 + HOUR) == 1);
	CHECK(change_find("visitor", "a") == 0);
	CHECK(tick(e, T0 + HOUR + MIN) == 1);
	CHECK(change_find("visitor", "b") == 0);
	done(e);
}

/* ---- new_value */

static void
test_new_value(void)
{
	struct eval *e = engine(HEAD "    kind: new_value\n"
				     "    field: country\n"
				     "    lookback: 1d\n"
				     "    labels: {team: growth}\n",
				T0);
	char fp[17] = "";

	feed(e, false, T0, "acme", "country=FR", NULL);
	CHECK(take(e) == 2);
	CHANGE(0, INACTIVE, FIRING, true);
	CHANGE(1, FIRING, RESOLVED, false);
	if (nch == 2) {
		CHECK_STR(label(&ch[0], "country"), "FR");
		CHECK_STR(label(&ch[0], "team"), "growth");
		CHECK_STR(ch[0].value, "FR");
		CHECK_STR(ch[1].value, "FR");
		CHECK(ch[0].nlabels == 4);
		if (ch[0].nlabels == 4)
			CHECK_STR(ch[0].label_names[3], "country");
		memcpy(fp, ch[0].fingerprint, sizeof fp);
	}
	/* Seen within the lookback: nothing, however often. */
	feed(e, false, T0 + HOUR, "acme", "country=FR", NULL);
	CHECK(tick(e, T0 + 2 * HOUR) == 0);
	feed(e, false, T0 + 3 * HOUR, "acme", "country=FR", NULL);
	feed(e, false, T0 + 3 * HOUR, "acme", NULL); /* no value */
	CHECK(take(e) == 0);
	feed(e, false, T0 + 3 * HOUR, "acme", "country=DE", NULL);
	CHECK(take(e) == 2);
	if (nch == 2) {
		CHECK_STR(label(&ch[0], "country"), "DE");
		CHECK(strcmp(ch[0].fingerprint, fp) != 0);
	}
	/* New again a full lookback after it was last seen. */
	CHECK(tick(e, T0 + DAY) == 0);
	feed(e, false, T0 + 3 * HOUR + DAY - SEC, "acme", "country=FR", NULL);
	CHECK(take(e) == 0);
	feed(e, false, T0 + 3 * HOUR + 2 * DAY, "acme", "country=FR", NULL);
	CHECK(take(e) == 2);
	if (nch == 2) {
		CHECK_STR(label(&ch[0], "country"), "FR");
		CHECK_STR(ch[0].fingerprint, fp);
	}
	/* Ticks expire the values seen; they still are not new. */
	CHECK(tick(e, T0 + 3 * HOUR + 2 * DAY + HOUR) == 0);
	feed(e, false, T0 + 3 * HOUR + 2 * DAY + HOUR, "acme", "country=FR",
	     NULL);
	CHECK(take(e) == 0);
	CHECK(list(e, NULL).n == 0);
	done(e);
}

static void
test_new_value_warming(void)
{
	struct eval *e = engine(HEAD "    kind: new_value\n"
				     "    field: city\n"
				     "    lookback: 7d\n"
				     "    group_by: [link]\n",
				T0 + DAY);
	struct eval_rule_stats st;

	CHECK(eval_needs_warm(e));
	CHECK(eval_lookback_ms(e) == 7 * DAY);
	feed(e, true, T0, "acme", "city=Paris", "link=" L1, NULL);
	feed(e, true, T0 + HOUR, "acme", "city=Lyon", "link=" L1, NULL);
	CHECK(take(e) == 0);
	eval_warmed(e);
	CHECK(!eval_needs_warm(e));
	CHECK(eval_lookback_ms(e) == 0);
	/* Warming after warmed is ignored. */
	feed(e, true, T0 + 2 * HOUR, "acme", "city=Nice", "link=" L1, NULL);
	feed(e, false, T0 + DAY, "acme", "city=Paris", "link=" L1, NULL);
	feed(e, false, T0 + DAY, "acme", "city=Lyon", "link=" L1, NULL);
	CHECK(take(e) == 0);
	feed(e, false, T0 + DAY, "acme", "city=Nice", "link=" L1, NULL);
	CHECK(take(e) == 2);
	if (nch == 2) {
		CHECK_STR(label(&ch[0], "city"), "Nice");
		CHECK_STR(label(&ch[0], "link"), L1);
	}
	/* Per group: Paris is new for another link. */
	feed(e, false, T0 + DAY, "acme", "city=Paris", "link=" L2, NULL);
	CHECK(take(e) == 2);
	eval_rule_stats(e, rules_get(eval_rules(e), 0), &st);
	CHECK(st.groups == 2);
	CHECK(st.events == 6);
	done(e);
}

/* ---- cardinality and ratio */

static void
test_cardinality(void)
{
	struct eval *e = engine(HEAD "    kind: cardinality\n"
				     "    field: city\n"
				     "    window: 1h\n"
				     "    above: 2\n"
				     "    group_by: [link]\n"
				     "  - name: few\n"
				     "    workspace: acme\n"
				     "    kind: cardinality\n"
				     "    field: city\n"
				     "    window: 1h\n"
				     "    below: 2\n",
				T0);
	int i;

	feed(e, false, T0 - HOUR, "acme", "city=Old", "link=" L1, NULL);
	feed(e, false, T0 + MIN, "acme", "city=Paris", "link=" L1, NULL);
	feed(e, false, T0 + MIN, "acme", "city=Lyon", "link=" L1, NULL);
	feed(e, false, T0 + 2 * MIN, "acme", "city=Paris", "link=" L1, NULL);
	feed(e, false, T0 + 2 * MIN, "acme", "link=" L1, NULL);
	feed(e, false, T0 + 2 * MIN, "acme", "city=Nice", "link=" L2, NULL);
	/* Old left at T0: 2 cities for L1, not above 2; 3 in all. */
	CHECK(tick(e, T0 + 5 * MIN) == 0);
	feed(e, false, T0 + 6 * MIN, "acme", "city=Nice", "link=" L1, NULL);
	CHECK(tick(e, T0 + 6 * MIN) == 1);
	i = change_find("link", L1);
	CHECK(i == 0);
	if (i == 0) {
		CHECK_STR(ch[0].rule->name, "r");
		CHECK_STR(ch[0].value, "3");
		CHECK_STR(ch[0].threshold, "2");
	}
	/* Paris leaves the window: 2 cities, resolved. */
	feed(e, false, T0 + 50 * MIN, "acme", "city=Lyon", "link=" L1, NULL);
	CHECK(tick(e, T0 + 62 * MIN - SEC) == 0);
	CHECK(tick(e, T0 + 62 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	CHECK(nch == 1 && strcmp(ch[0].rule->name, "r") == 0);
	/* Then Nice: one city in all, below 2. */
	CHECK(tick(e, T0 + 66 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1) {
		CHECK_STR(ch[0].rule->name, "few");
		CHECK_STR(ch[0].value, "1");
		CHECK_STR(ch[0].threshold, "2");
	}
	done(e);
}

static void
test_ratio(void)
{
	struct eval *e = engine(HEAD "    kind: ratio\n"
				     "    numerator: {status: error}\n"
				     "    window: 15m\n"
				     "    above: 5\n"
				     "    min_denominator: 10\n"
				     "  - name: low\n"
				     "    workspace: acme\n"
				     "    kind: ratio\n"
				     "    numerator: {device_type: "
				     "DEVICE_TYPE_MOBILE}\n"
				     "    window: 15m\n"
				     "    below: 40\n",
				T0);

	/* 9 events, all errors: too few to judge; 0% mobile. */
	feed_n(e, 9, T0 + MIN, "status=error");
	CHECK(tick(e, T0 + 2 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	CHECK(nch == 1 && strcmp(ch[0].rule->name, "low") == 0);
	if (nch == 1) {
		CHECK_STR(ch[0].value, "0");
		CHECK_STR(ch[0].threshold, "40");
	}
	/* 10 events: 90% errors; 10% mobile. */
	feed(e, false, T0 + 3 * MIN, "acme", "status=ok",
	     "device_type=DEVICE_TYPE_MOBILE", NULL);
	CHECK(tick(e, T0 + 3 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	CHECK(nch == 1 && strcmp(ch[0].rule->name, "r") == 0);
	if (nch == 1) {
		CHECK_STR(ch[0].value, "90");
		CHECK_STR(ch[0].threshold, "5");
	}
	/* The errors leave: 1 event, under the minimum; 100% mobile. */
	CHECK(tick(e, T0 + 16 * MIN - SEC) == 0);
	CHECK(tick(e, T0 + 16 * MIN) == 2);
	CHANGE(0, FIRING, RESOLVED, true);
	CHANGE(1, FIRING, RESOLVED, true);
	/* 1 mobile in 3: 33.33%; errors: too few. */
	feed(e, false, T0 + 17 * MIN, "acme", "status=error", NULL);
	feed(e, false, T0 + 17 * MIN, "acme", "status=ok", NULL);
	feed(e, false, T0 + 17 * MIN, "acme", "status=ok",
	     "device_type=DEVICE_TYPE_MOBILE", NULL);
	CHECK(tick(e, T0 + 18 * MIN) == 1);
	CHECK(nch == 1 && strcmp(ch[0].rule->name, "low") == 0);
	if (nch == 1)
		CHECK_STR(ch[0].value, "33.33");
	/* 1 error in 10: 10%, above 5. */
	feed_n(e, 7, T0 + 19 * MIN, "status=ok");
	CHECK(tick(e, T0 + 19 * MIN) == 1);
	CHECK(nch == 1 && strcmp(ch[0].rule->name, "r") == 0);
	if (nch == 1)
		CHECK_STR(ch[0].value, "10");
	done(e);
}

/* ---- labels, annotations, fingerprints */

#define LABELLED                                                               \
	"rules:\n"                                                             \
	"  - name: hot\n"                                                      \
	"    workspace: \"*\"\n"                                               \
	"    kind: threshold\n"                                                \
	"    group_by: [link, country]\n"                                      \
	"    op: \">=\"\n"                                                     \
	"    value: 2\n"                                                       \
	"    window: 10m\n"                                                    \
	"    severity: critical\n"                                             \
	"    labels: {team: growth, tier: \"1\"}\n"                            \
	"    annotations:\n"                                                   \
	"      summary: \"{{ labels.link }} had {{ value }} scans in "         \
	"{{ window }} (over {{ threshold }})\"\n"                              \
	"      who: \"{{labels.team}}/{{ labels.tier }}/{{ labels.country "    \
	"}}\"\n"                                                               \
	"      what: \"{{ rule }} {{ kind }} {{ severity }} in {{ workspace "  \
	"}}\"\n"                                                               \
	"      group: \"[{{ group }}]\"\n"                                     \
	"      plain: no reference\n"

static void
test_labels_annotations(void)
{
	struct eval *e = engine(LABELLED, T0);
	static const char *const names[] = {"alertname", "severity", "team",
					    "tier",	 "link",     "country"};
	static const char *const values[] = {"hot", "critical", "growth",
					     "1",   L1,		"FR"};

	feed(e, false, T0 + MIN, "acme", "link=" L1, "country=FR", NULL);
	feed(e, false, T0 + MIN, "acme", "link=" L1, "country=FR", NULL);
	feed(e, false, T0 + MIN, "acme", "link=" L1, NULL);
	feed(e, false, T0 + MIN, "acme", "link=" L1, NULL);
	CHECK(tick(e, T0 + 2 * MIN) == 2);
	for (int i = 0; i < nch && i < 2; i++) {
		const struct eval_alert *a = &ch[i];
		bool fr = strcmp(label(a, "country"), "FR") == 0;

		CHECK(a->nlabels == 6);
		for (int j = 0; j < a->nlabels && j < 6; j++) {
			CHECK_STR(a->label_names[j], names[j]);
			if (j < 5)
				CHECK_STR(a->label_values[j], values[j]);
		}
		CHECK_STR(label(a, "country"), fr ? "FR" : "");
		CHECK(a->nannotations == 5);
		CHECK_STR(a->annotation_names[0], "summary");
		CHECK_STR(annotation(a, "summary"),
			  L1 " had 2 scans in 10m (over 2)");
		CHECK_STR(annotation(a, "who"),
			  fr ? "growth/1/FR" : "growth/1/");
		CHECK_STR(annotation(a, "what"),
			  "hot threshold critical in acme");
		CHECK_STR(annotation(a, "group"),
			  fr ? "[" L1 ", FR]" : "[" L1 ", ]");
		CHECK_STR(annotation(a, "plain"), "no reference");
		CHECK(strlen(a->fingerprint) == 16);
		CHECK(strspn(a->fingerprint, "0123456789abcdef") == 16);
	}
	if (nch == 2)
		CHECK(strcmp(ch[0].fingerprint, ch[1].fingerprint) != 0);
	done(e);
}

/* FNV-1a 64 over "ws\0name\0value\0..." with the labels sorted by name. */
static uint64_t
fnv_str(uint64_t h, const char *s)
{
	for (size_t i = 0; i <= strlen(s); i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void
test_fingerprint(void)
{
	struct eval *a = engine(LABELLED, T0), *b = engine(LABELLED, T0 + DAY);
	char fa[4][17], fb[4][17], want[17];
	uint64_t h;
	int na, nb;

	/* The same alerts, in another order and at other times. */
	feed(a, false, T0 + MIN, "acme", "link=" L1, "country=FR", NULL);
	feed(a, false, T0 + MIN, "acme", "link=" L1, "country=FR", NULL);
	feed(a, false, T0 + MIN, "beta", "link=" L1, "country=FR", NULL);
	feed(a, false, T0 + MIN, "beta", "link=" L1, "country=FR", NULL);
	feed(b, false, T0 + DAY, "beta", "link=" L1, "country=FR", NULL);
	feed(b, false, T0 + DAY, "acme", "link=" L1, "country=FR", NULL);
	feed(b, false, T0 + DAY, "beta", "link=" L1, "country=FR", NULL);
	feed(b, false, T0 + DAY, "acme", "link=" L1, "country=FR", NULL);
	feed(b, false, T0 + DAY, "acme", "link=" L2, "country=FR", NULL);
	feed(b, false, T0 + DAY, "acme", "link=" L2, "country=FR", NULL);
	na = tick(a, T0 + MIN);
	CHECK(na == 2);
	for (int i = 0; i < na && i < 4; i++) {
		bool acme = strcmp(ch[i].workspace, "acme") == 0;

		memcpy(fa[acme ? 0 : 1], ch[i].fingerprint, 17);
	}
	nb = tick(b, T0 + DAY);
	CHECK(nb == 3);
	for (int i = 0; i < nb && i < 4; i++) {
		bool acme = strcmp(ch[i].workspace, "acme") == 0;
		bool l2 = strcmp(label(&ch[i], "link"), L2) == 0;

		memcpy(fb[l2 ? 2 : acme ? 0 : 1], ch[i].fingerprint, 17);
	}
	if (na == 2 && nb == 3) {
		CHECK_STR(fa[0], fb[0]);
		CHECK_STR(fa[1], fb[1]);
		CHECK(strcmp(fa[0], fa[1]) != 0); /* other workspace */
		CHECK(strcmp(fb[0], fb[2]) != 0); /* other group */
		/* The format, which the database keeps across versions. */
		h = fnv_str(14695981039346656037ULL, "acme");
		h = fnv_str(fnv_str(h, "alertname"), "hot");
		h = fnv_str(fnv_str(h, "country"), "FR");
		h = fnv_str(fnv_str(h, "link"), L1);
		h = fnv_str(fnv_str(h, "severity"), "critical");
		h = fnv_str(fnv_str(h, "team"), "growth");
		h = fnv_str(fnv_str(h, "tier"), "1");
		snprintf(want, sizeof want, "%016llx", (unsigned long long)h);
		CHECK_STR(fa[0], want);
	}
	done(a);
	done(b);
}

/* ---- workspaces and match */

static void
test_workspace_match(void)
{
	struct eval *e =
	    engine(ANY_COUNT("10m") "    match:\n"
				    "      country: FR\n"
				    "      link.tag: spring\n"
				    "      properties.plan: {not: free}\n"
				    "  - name: all\n"
				    "    workspace: \"*\"\n"
				    "    kind: threshold\n"
				    "    op: \">\"\n"
				    "    value: 1\n"
				    "    window: 10m\n",
		   T0);
	struct eval_rule_stats st;
	const struct rule *r;

	feed(e, false, T0 + MIN, "beta", "country=FR", "link.tag=spring", NULL);
	feed(e, false, T0 + MIN, "acme", "country=DE", "link.tag=spring", NULL);
	feed(e, false, T0 + MIN, "acme", "country=FR", "link.tag=autumn", NULL);
	feed(e, false, T0 + MIN, "acme", "country=FR", "link.tag=spring",
	     "properties.plan=free", NULL);
	CHECK(tick(e, T0 + MIN) == 1); /* "all" in acme: 3 events */
	CHECK(nch == 1 && strcmp(ch[0].rule->name, "all") == 0);
	CHECK(nch == 1 && strcmp(ch[0].workspace, "acme") == 0);
	r = rules_find(eval_rules(e), "r");
	CHECK(r != NULL);
	if (r != NULL) {
		eval_rule_stats(e, r, &st);
		CHECK(st.events == 0 && st.groups == 0);
	}
	feed(e, false, T0 + 2 * MIN, "acme", "country=FR", "link.tag=autumn",
	     "link.tag=spring", "properties.plan=pro", NULL);
	feed(e, false, T0 + 2 * MIN, "beta", NULL);
	CHECK(tick(e, T0 + 2 * MIN) == 2);
	CHECK(change_find("alertname", "r") >= 0);
	CHECK(nch == 2 && strcmp(ch[1].rule->name, "all") == 0 &&
	      strcmp(ch[1].workspace, "beta") == 0);
	if (r != NULL) {
		eval_rule_stats(e, r, &st);
		CHECK(st.events == 1 && st.groups == 1 && st.firing == 1);
	}
	done(e);
}

/* ---- reloads */

static void
test_set_rules(void)
{
	const char *two = ANY_COUNT("10m") "  - name: other\n"
					   "    workspace: acme\n"
					   "    kind: threshold\n"
					   "    op: \">\"\n"
					   "    value: 1\n"
					   "    window: 10m\n"
					   "    for: 1h\n";
	struct eval *e = engine(two, T0);
	const struct rule *r;
	struct list l;

	eval_warmed(e);
	feed_n(e, 2, T0 + MIN, NULL);
	CHECK(tick(e, T0 + MIN) == 2); /* r firing, other pending */
	/* The same text: windows and alerts kept, nothing said. */
	reload(e, two, T0 + 2 * MIN);
	CHECK(take(e) == 0);
	CHECK(!eval_needs_warm(e));
	CHECK(tick(e, T0 + 3 * MIN) == 0);
	l = list(e, NULL);
	CHECK(l.firing == 1 && l.pending == 1);
	CHECK(l.n == 2 && strcmp(l.value[0], "2") == 0);
	r = rules_find(eval_rules(e), "r");
	CHECK(r != NULL);
	if (r != NULL) {
		struct eval_rule_stats st;

		eval_rule_stats(e, r, &st);
		CHECK(st.events == 2 && st.firing == 1 && st.groups == 1);
		CHECK(st.last_eval_ms == T0 + 3 * MIN);
	}
	/* r changes; other goes: both alerts end, r's with a notice. */
	reload(e,
	       HEAD "    kind: threshold\n"
		    "    op: \">\"\n"
		    "    value: 5\n"
		    "    window: 10m\n",
	       T0 + 4 * MIN);
	CHECK(take(e) == 2);
	for (int i = 0; i < nch; i++) {
		if (strcmp(ch[i].rule->name, "r") == 0) {
			CHANGE(i, FIRING, RESOLVED, true);
			CHECK(ch[i].resolved_at_ms == T0 + 4 * MIN);
			CHECK(ch[i].at_ms == T0 + 4 * MIN);
		} else {
			CHANGE(i, PENDING, INACTIVE, false);
		}
	}
	CHECK(eval_needs_warm(e));
	/* The changed rule starts empty. */
	CHECK(tick(e, T0 + 5 * MIN) == 0);
	r = rules_get(eval_rules(e), 0);
	if (r != NULL) {
		struct eval_rule_stats st;

		eval_rule_stats(e, r, &st);
		CHECK(st.events == 0 && st.groups == 0);
	}
	feed_n(e, 6, T0 + 6 * MIN, NULL);
	CHECK(tick(e, T0 + 6 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	/* Removed while firing: resolved, with a notice. */
	reload(e,
	       "rules:\n  - name: x\n    workspace: acme\n"
	       "    kind: trigger\n",
	       T0 + 7 * MIN);
	CHECK(take(e) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1)
		CHECK_STR(ch[0].rule->name, "r");
	CHECK(list(e, NULL).n == 0);
	CHECK(rules_count(eval_rules(e)) == 1);
	done(e);

	/* Removed while firing but never notified (muted): no notice. */
	e = engine(ANY_COUNT("10m") "    mute_intervals: [{}]\n", T0);
	feed_n(e, 1, T0 + MIN, NULL);
	CHECK(tick(e, T0 + MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, false);
	reload(e, "rules: []\n", T0 + 2 * MIN);
	CHECK(take(e) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	done(e);

	/* A trigger removed while firing resolves without a notice. */
	e = engine(HEAD "    kind: trigger\n    dedup: 1h\n", T0);
	feed(e, false, T0, "acme", NULL);
	CHECK(take(e) == 1);
	reload(e, "rules: []\n", T0 + MIN);
	CHECK(take(e) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	done(e);
}

/* ---- restore */

static void
test_restore(void)
{
	const char *text = ANY_COUNT("10m") "    group_by: [country]\n"
					    "    repeat: 1h\n";
	struct eval *e = engine(text, T0), *fresh = engine(text, T0);
	char *names[] = {"alertname", "severity", "country"};
	char *values[] = {"r", "warning", "FR"};
	char fp[17] = "";
	struct list l;

	CHECK(!eval_restore(e, "nope", "acme", names, values, 3, ALERT_FIRING,
			    T0 - MIN, T0 - MIN, T0 - MIN, 1));
	CHECK(!eval_restore(e, "r", "acme", names, values, 3, ALERT_RESOLVED,
			    T0 - MIN, T0 - MIN, T0 - MIN, 1));
	CHECK(eval_restore(e, "r", "acme", names, values, 3, ALERT_FIRING,
			   T0 - 5 * MIN, T0 - 5 * MIN, T0 - 5 * MIN, 1));
	CHECK(take(e) == 0);
	feed(e, true, T0 - 5 * MIN, "acme", "country=FR", NULL);
	eval_warmed(e);
	l = list(e, "country");
	CHECK(l.firing == 1 && list_find(&l, "FR") == 0);
	/* Still firing: nothing to say. */
	CHECK(tick(e, T0) == 0);
	/* The same alert as an engine that saw it fire. */
	feed(fresh, false, T0, "acme", "country=FR", NULL);
	CHECK(tick(fresh, T0) == 1);
	if (nch == 1)
		memcpy(fp, ch[0].fingerprint, sizeof fp);
	l = list(e, "country");
	CHECK(l.n == 1 && strcmp(l.fp[0], fp) == 0);
	CHECK(l.n == 1 && strcmp(l.value[0], "1") == 0);
	/* Cleared: resolved, with a notice since it had notified. */
	CHECK(tick(e, T0 + 5 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1) {
		CHECK_STR(ch[0].fingerprint, fp);
		CHECK(ch[0].fired_at_ms == T0 - 5 * MIN);
		CHECK(ch[0].notifications == 1);
	}
	done(e);
	done(fresh);

	/* The repeat goes on from the restored notification. */
	e = engine(text, T0);
	CHECK(eval_restore(e, "r", "acme", names, values, 3, ALERT_FIRING,
			   T0 - 2 * HOUR, T0 - 2 * HOUR, T0 - 30 * MIN, 2));
	feed(e, false, T0, "acme", "country=FR", NULL);
	CHECK(tick(e, T0) == 0);
	feed(e, false, T0 + 25 * MIN, "acme", "country=FR", NULL);
	CHECK(tick(e, T0 + 30 * MIN - SEC) == 0);
	CHECK(tick(e, T0 + 30 * MIN) == 1);
	CHANGE(0, FIRING, FIRING, true);
	CHECK(nch == 1 && ch[0].repeat && ch[0].notifications == 3);
	done(e);

	/* A restored pending alert fires once its for is over. */
	e = engine(ANY_COUNT("1h") "    for: 10m\n", T0);
	CHECK(eval_restore(e, "r", "acme", names, values, 2, ALERT_PENDING,
			   T0 - 5 * MIN, 0, 0, 0));
	feed(e, true, T0 - 5 * MIN, "acme", NULL);
	CHECK(tick(e, T0) == 0);
	CHECK(list(e, NULL).pending == 1);
	CHECK(tick(e, T0 + 5 * MIN) == 1);
	CHANGE(0, PENDING, FIRING, true);
	if (nch == 1)
		CHECK(ch[0].active_at_ms == T0 - 5 * MIN);
	done(e);

	/* new_value keeps no alert to restore. */
	e = engine(HEAD "    kind: new_value\n"
			"    field: city\n"
			"    lookback: 1d\n",
		   T0);
	CHECK(!eval_restore(e, "r", "acme", names, values, 2, ALERT_FIRING, T0,
			    T0, T0, 1));
	done(e);
}

/*
 * After a rollback: every group, alert and change forgotten, then the
 * windows warmed again (flatline keys included).
 */
static void
test_reset(void)
{
	struct eval *e = engine(ANY_COUNT("10m") "  - name: f\n"
						 "    workspace: acme\n"
						 "    kind: flatline\n"
						 "    window: 30m\n"
						 "    below: 1\n"
						 "    group_by: [country]\n"
						 "    keys: [FR]\n"
						 "  - name: t\n"
						 "    workspace: acme\n"
						 "    kind: trigger\n"
						 "  - name: idle\n"
						 "    workspace: nobody\n"
						 "    kind: threshold\n"
						 "    op: \">\"\n"
						 "    value: 0\n"
						 "    window: 1m\n",
				T0);

	eval_warmed(e);
	feed(e, false, T0 + MIN, "acme", "country=FR", NULL);
	CHECK(eval_pending(e) == 2); /* t */
	CHECK(tick(e, T0 + MIN) == 3);
	CHECK(eval_pending(e) == 0);
	feed(e, false, T0 + 2 * MIN, "acme", "country=FR", NULL);
	CHECK(eval_pending(e) == 2);
	eval_reset(e);
	CHECK(eval_pending(e) == 0);
	CHECK(take(e) == 0);
	CHECK(list(e, NULL).n == 0);
	CHECK(eval_needs_warm(e));
	/* Warmed again: FR had events, r fires anew. */
	feed(e, true, T0 + MIN, "acme", "country=FR", NULL);
	feed(e, true, T0 + 2 * MIN, "acme", "country=FR", NULL);
	CHECK(take(e) == 0);
	eval_warmed(e);
	CHECK(tick(e, T0 + 3 * MIN) == 1);
	CHECK(nch == 1 && strcmp(ch[0].rule->name, "r") == 0);
	CHANGE(0, INACTIVE, FIRING, true);
	if (nch == 1)
		CHECK_STR(ch[0].value, "2");
	/* An engine without groups resets too. */
	eval_reset(e);
	eval_reset(e);
	CHECK(eval_groups(e) <= 1); /* f's seeded key */
	done(e);
}

/* A reload's changes wait for eval_take; eval_pending counts them. */
static void
test_pending(void)
{
	struct eval *e = engine(ANY_COUNT("10m"), T0);

	CHECK(eval_pending(e) == 0);
	feed(e, false, T0, "acme", NULL);
	eval_tick(e, T0);
	CHECK(eval_pending(e) == 1);
	reload(e, "rules: []\n", T0 + MIN);
	CHECK(eval_pending(e) == 2);
	reload(e, "rules: []\n", T0 + 2 * MIN);
	/* The rules of both sets stay readable until taken. */
	CHECK(take(e) == 2);
	if (nch == 2) {
		CHECK_STR(ch[0].rule->name, "r");
		CHECK_STR(ch[1].rule->name, "r");
		CHANGE(1, FIRING, RESOLVED, true);
	}
	CHECK(eval_pending(e) == 0);
	done(e);
}

/* Alerts resolved by a reload or a key going away respect mutes too. */
static void
test_mute_forced_resolution(void)
{
	const char *text =
	    HEAD "    kind: flatline\n"
		 "    window: 10m\n"
		 "    below: 1\n"
		 "    mute_intervals: [{times: [\"01:00-02:00\"]}]\n";
	char *ids[] = {L1}, *none[] = {NULL};
	struct eval *e = engine(text, T0);

	eval_set_links(e, "acme", ids, 1, T0);
	CHECK(tick(e, T0 + 10 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	/* The link goes during the mute: resolved, silently. */
	eval_set_links(e, "acme", none, 0, T0 + 70 * MIN);
	CHECK(tick(e, T0 + 70 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	done(e);

	/* The rule goes during the mute: resolved, silently. */
	e = engine(text, T0);
	eval_set_links(e, "acme", ids, 1, T0);
	CHECK(tick(e, T0 + 10 * MIN) == 1);
	reload(e, "rules: []\n", T0 + 70 * MIN);
	CHECK(take(e) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	done(e);

	/* Outside the mute, both say so. */
	e = engine(text, T0);
	eval_set_links(e, "acme", ids, 1, T0);
	CHECK(tick(e, T0 + 10 * MIN) == 1);
	eval_set_links(e, "acme", none, 0, T0 + 20 * MIN);
	CHECK(tick(e, T0 + 20 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	done(e);
}

/* A flatline alert restored after a restart, its link still active. */
static void
test_restore_flatline(void)
{
	struct eval *e = engine(HEAD "    kind: flatline\n"
				     "    window: 30m\n"
				     "    below: 1\n",
				T0);
	char *ids[] = {L1, L2};
	char *names[] = {"alertname", "severity", "link"};
	char *values[] = {"r", "warning", L1};
	struct list l;

	CHECK(eval_restore(e, "r", "acme", names, values, 3, ALERT_FIRING,
			   T0 - HOUR, T0 - HOUR, T0 - HOUR, 1));
	eval_set_links(e, "acme", ids, 2, T0);
	feed(e, true, T0 - MIN, "acme", "link=" L2, NULL);
	eval_warmed(e);
	CHECK(tick(e, T0) == 0); /* L1 still quiet, L2 not */
	l = list(e, "link");
	CHECK(l.firing == 1 && list_find(&l, L1) == 0);
	feed(e, false, T0 + MIN, "acme", "link=" L1, NULL);
	CHECK(tick(e, T0 + MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, true);
	if (nch == 1)
		CHECK_STR(label(&ch[0], "link"), L1);
	done(e);
}

/* A trigger's event after its dedup period fires again, tick or not. */
static void
test_trigger_refire(void)
{
	struct eval *e = engine(HEAD "    kind: trigger\n"
				     "    dedup: 10m\n"
				     "    repeat: 1m\n",
				T0);

	feed(e, false, T0, "acme", NULL);
	CHECK(take(e) == 1);
	/* No repeats for event kinds. */
	CHECK(tick(e, T0 + 5 * MIN) == 0);
	feed(e, false, T0 + 10 * MIN, "acme", NULL);
	CHECK(take(e) == 1);
	CHECK(nch == 1 && ch[0].state == ALERT_FIRING && ch[0].notify &&
	      ch[0].fired_at_ms == T0 + 10 * MIN);
	CHECK(tick(e, T0 + 20 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	done(e);
}

/* ---- time intervals */

/* 2026-03-29, 00:00 UTC: Paris goes from UTC+1 to UTC+2 at 01:00 UTC. */
#define DST 1774742400000LL

static void
test_mute_dst(void)
{
	struct eval *e =
	    engine(ANY_COUNT("1m") "    mute_intervals:\n"
				   "      - timezone: Europe/Paris\n"
				   "        times: [\"02:00-04:00\"]\n",
		   T0);
	const struct rule *r = first_rule(e);
	static const struct {
		int64_t t;
		bool may;
	} cases[] = {
	    /* The day before: UTC+1, muted 01:00-03:00 UTC. */
	    {DST - DAY + 59 * MIN, true},
	    {DST - DAY + HOUR, false},
	    {DST - DAY + 3 * HOUR - 1, false},
	    {DST - DAY + 3 * HOUR, true},
	    /* The day of: 02:00-03:00 does not exist; 03:00 CEST is 01:00. */
	    {DST + 30 * MIN, true},
	    {DST + HOUR - 1, true},
	    {DST + HOUR, false},
	    {DST + 2 * HOUR - 1, false},
	    {DST + 2 * HOUR, true},
	    /* The day after: UTC+2, muted 00:00-02:00 UTC. */
	    {DST + DAY - 1, true},
	    {DST + DAY, false},
	    {DST + DAY + 2 * HOUR - 1, false},
	    {DST + DAY + 2 * HOUR, true},
	};

	CHECK(r != NULL);
	for (size_t i = 0; r != NULL && i < nitems(cases); i++) {
		if (eval_may_notify(r, cases[i].t) != cases[i].may)
			fprintf(stderr, "  case %zu\n", i);
		CHECK(eval_may_notify(r, cases[i].t) == cases[i].may);
	}
	done(e);
}

static void
test_active_weekdays(void)
{
	struct eval *e =
	    engine(ANY_COUNT("1m") "    active_intervals:\n"
				   "      - timezone: Europe/Paris\n"
				   "        weekdays: [monday:friday]\n"
				   "        times: [\"09:00-12:00\", "
				   "\"14:00-18:00\"]\n"
				   "      - weekdays: [sunday]\n"
				   "        times: [\"22:00-24:00\"]\n"
				   "    mute_intervals:\n"
				   "      - timezone: Europe/Paris\n"
				   "        weekdays: [wednesday]\n",
		   T0);
	const struct rule *r = first_rule(e);
	static const struct {
		int64_t t;
		bool may;
	} cases[] = {
	    /* Friday 27 March, UTC+1. */
	    {DST - 2 * DAY + 8 * HOUR - 1, false},
	    {DST - 2 * DAY + 8 * HOUR, true},
	    {DST - 2 * DAY + 11 * HOUR - 1, true},
	    {DST - 2 * DAY + 11 * HOUR, false},
	    {DST - 2 * DAY + 13 * HOUR, true},
	    {DST - 2 * DAY + 17 * HOUR - 1, true},
	    {DST - 2 * DAY + 17 * HOUR, false},
	    /* Saturday. */
	    {DST - DAY + 10 * HOUR, false},
	    /* Sunday 29: UTC, 22:00-24:00. */
	    {DST + 10 * HOUR, false},
	    {DST + 22 * HOUR - 1, false},
	    {DST + 22 * HOUR, true},
	    {DST + DAY - 1, true},
	    /* Monday 30, UTC+2: 09:00 is 07:00 UTC. */
	    {DST + DAY + 7 * HOUR - 1, false},
	    {DST + DAY + 7 * HOUR, true},
	    {DST + DAY + 16 * HOUR - 1, true},
	    {DST + DAY + 16 * HOUR, false},
	    /* Tuesday 31 active, Wednesday 1 April muted all day. */
	    {DST + 2 * DAY + 8 * HOUR, true},
	    {DST + 3 * DAY + 8 * HOUR, false},
	};

	CHECK(r != NULL);
	for (size_t i = 0; r != NULL && i < nitems(cases); i++) {
		if (eval_may_notify(r, cases[i].t) != cases[i].may)
			fprintf(stderr, "  case %zu\n", i);
		CHECK(eval_may_notify(r, cases[i].t) == cases[i].may);
	}
	done(e);
}

/* A local weekday, not the UTC one: Sunday 23:30 UTC is Monday in Paris. */
static void
test_weekday_local(void)
{
	struct eval *e =
	    engine(ANY_COUNT("1m") "    active_intervals:\n"
				   "      - timezone: Europe/Paris\n"
				   "        weekdays: [monday]\n",
		   T0);
	const struct rule *r = first_rule(e);
	const char *tz = getenv("TZ");
	char *saved = tz != NULL ? xstrdup(tz) : NULL;

	CHECK(r != NULL);
	if (r != NULL) {
		CHECK(eval_may_notify(r, DST + DAY - 30 * MIN));
		CHECK(!eval_may_notify(r, DST + DAY - 2 * HOUR - 1));
		CHECK(eval_may_notify(r, DST + 2 * DAY - 2 * HOUR - 1));
		CHECK(!eval_may_notify(r, DST + 2 * DAY - 2 * HOUR));
	}
	/* The process' TZ is left as it was. */
	setenv("TZ", "America/New_York", 1);
	if (r != NULL)
		CHECK(eval_may_notify(r, DST + DAY - 30 * MIN));
	CHECK_STR(getenv("TZ"), "America/New_York");
	if (saved != NULL)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	free(saved);
	done(e);
}

/*
 * In the state machine: an alert firing while muted says so once it may,
 * repeats wait for the mute to end, a resolution while muted is silent.
 */
static void
test_mute_state_machine(void)
{
	struct eval *e =
	    engine(ANY_COUNT("1h") "    repeat: 30m\n"
				   "    mute_intervals:\n"
				   "      - times: [\"01:00-02:00\"]\n",
		   T0);

	CHECK(tick(e, T0 + 70 * MIN) == 0);
	feed(e, false, T0 + 70 * MIN, "acme", NULL);
	CHECK(tick(e, T0 + 70 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, false);
	if (nch == 1)
		CHECK(ch[0].notifications == 0 && ch[0].notified_at_ms == 0);
	CHECK(tick(e, T0 + 119 * MIN) == 0);
	CHECK(tick(e, T0 + 120 * MIN) == 1);
	CHANGE(0, FIRING, FIRING, true);
	if (nch == 1) {
		CHECK(!ch[0].repeat);
		CHECK(ch[0].notifications == 1);
		CHECK(ch[0].fired_at_ms == T0 + 70 * MIN);
	}
	CHECK(tick(e, T0 + 121 * MIN) == 0);
	done(e);

	e = engine(ANY_COUNT("1h") "    mute_intervals:\n"
				   "      - times: [\"01:00-02:00\"]\n",
		   T0);
	feed(e, false, T0 + 10 * MIN, "acme", NULL);
	CHECK(tick(e, T0 + 10 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	CHECK(tick(e, T0 + 70 * MIN) == 1);
	CHANGE(0, FIRING, RESOLVED, false);
	done(e);

	/* Repeats wait for the end of a mute. */
	e = engine(ANY_COUNT("1d") "    repeat: 30m\n"
				   "    mute_intervals:\n"
				   "      - times: [\"01:00-02:00\"]\n",
		   T0);
	feed(e, false, T0 + 50 * MIN, "acme", NULL);
	CHECK(tick(e, T0 + 50 * MIN) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	CHECK(tick(e, T0 + 80 * MIN) == 0);
	CHECK(tick(e, T0 + 119 * MIN) == 0);
	CHECK(tick(e, T0 + 120 * MIN) == 1);
	CHANGE(0, FIRING, FIRING, true);
	CHECK(nch == 1 && ch[0].repeat && ch[0].notifications == 2);
	done(e);
}

/* Events kinds notify only when they may too. */
static void
test_mute_event_kinds(void)
{
	struct eval *e =
	    engine(HEAD "    kind: trigger\n"
			"    mute_intervals: [{times: [\"00:00-01:00\"]}]\n",
		   T0);

	feed(e, false, T0 + MIN, "acme", NULL);
	CHECK(take(e) == 2);
	CHANGE(0, INACTIVE, FIRING, false);
	feed(e, false, T0 + HOUR, "acme", NULL);
	CHECK(take(e) == 2);
	CHECK(nch == 2 && ch[0].notify);
	done(e);
}

/* ---- warming, stats */

static void
test_warming_and_stats(void)
{
	struct eval *e = engine(ANY_COUNT("10m") "    group_by: [country]\n"
						 "  - name: s\n"
						 "    workspace: acme\n"
						 "    kind: spike\n"
						 "    window: 1h\n"
						 "    baseline: 1d\n"
						 "    ratio: 2\n"
						 "  - name: t\n"
						 "    workspace: acme\n"
						 "    kind: trigger\n",
				T0);
	const struct rule *r = first_rule(e);
	struct eval_rule_stats st;
	int64_t bytes, before;
	char c[32];

	CHECK(eval_needs_warm(e));
	CHECK(eval_lookback_ms(e) == 25 * HOUR);
	CHECK(eval_groups(e) == 0);
	before = eval_bytes(e);
	CHECK(before > 0);
	/* Warming fills windows without changes, triggers included. */
	feed(e, true, T0 - MIN, "acme", "country=FR", NULL);
	CHECK(take(e) == 0);
	eval_warmed(e);
	CHECK(!eval_needs_warm(e) && eval_lookback_ms(e) == 0);
	CHECK(tick(e, T0) == 2); /* r for FR; s: 1 from nothing */
	eval_rule_stats(e, r, &st);
	CHECK(st.groups == 1 && st.firing == 1 && st.pending == 0);
	CHECK(st.events == 1 && st.last_eval_ms == T0 && st.bytes > 0);
	/* A thousand groups take memory; it is given back when they go. */
	for (int i = 0; i < 1000; i++) {
		snprintf(c, sizeof c, "country=c%d", i);
		feed(e, false, T0 + MIN, "acme", c, NULL);
	}
	CHECK(take(e) == 2000); /* t: fired and resolved, each */
	bytes = eval_bytes(e);
	CHECK(bytes > before + 1000 * 64);
	eval_rule_stats(e, r, &st);
	CHECK(st.groups == 1001 && st.events == 1001);
	CHECK(eval_groups(e) >= 1002);
	/* Everything expires and resolves: groups are dropped. */
	CHECK(tick(e, T0 + 2 * DAY) == 2);
	CHECK(eval_groups(e) == 0);
	eval_rule_stats(e, r, &st);
	CHECK(st.groups == 0 && st.firing == 0);
	CHECK(st.last_eval_ms == T0 + 2 * DAY);
	CHECK(eval_bytes(e) < bytes / 2);
	/* Clearing windows wants warming again. */
	feed(e, false, T0 + 2 * DAY, "acme", "country=FR", NULL);
	CHECK(take(e) == 2);
	eval_clear_windows(e);
	CHECK(eval_needs_warm(e));
	CHECK(eval_lookback_ms(e) == 25 * HOUR);
	CHECK(tick(e, T0 + 2 * DAY) == 0);
	CHECK(eval_groups(e) == 0);
	done(e);

	/* No windows, no look-back. */
	e = engine(HEAD "    kind: trigger\n", T0);
	CHECK(eval_lookback_ms(e) == 0);
	CHECK(eval_needs_warm(e));
	done(e);
}

/* Many groups and values: the hash tables grow and shrink. */
static void
test_many_groups(void)
{
	struct eval *e = engine(HEAD "    kind: cardinality\n"
				     "    field: visitor\n"
				     "    window: 10m\n"
				     "    above: 499\n"
				     "    group_by: [country]\n",
				T0);
	char c[16], v[32];
	struct list l;

	for (int i = 0; i < 2000; i++) {
		snprintf(c, sizeof c, "country=%d", i % 4);
		snprintf(v, sizeof v, "visitor=v%d", i);
		feed(e, false, T0 + 1 + i, "acme", c, v, NULL);
	}
	CHECK(tick(e, T0 + 5 * MIN) == 4);
	l = list(e, "country");
	CHECK(l.firing == 4);
	CHECK(l.n == 4 && strcmp(l.value[0], "500") == 0);
	CHECK(tick(e, T0 + 10 * MIN) == 0);
	CHECK(tick(e, T0 + 10 * MIN + 1 + 1000) == 4); /* 250 left each */
	CHECK(eval_groups(e) == 4);
	CHECK(tick(e, T0 + 20 * MIN) == 0);
	CHECK(eval_groups(e) == 0);
	done(e);
}

/* Rules of different kinds and filters, for the index and the parts. */
#define MIXED                                                                  \
	"rules:\n"                                                             \
	"  - {name: a, workspace: acme, kind: threshold, op: '>', value: 1,"   \
	"     window: 5m, group_by: [link], match: {country: FR}}\n"           \
	"  - {name: b, workspace: acme, kind: threshold, op: '>', value: 0,"   \
	"     window: 5m, group_by: [link], match: {link.tag: pricing}}\n"     \
	"  - {name: c, workspace: '*', kind: threshold, op: '>', value: 2,"    \
	"     window: 5m, group_by: [country]}\n"                              \
	"  - {name: d, workspace: acme, kind: threshold, op: '>', value: 0,"   \
	"     window: 5m, match: {any: [{country: DE}, {city: Paris}]}}\n"     \
	"  - {name: e, workspace: acme, kind: threshold, op: '>', value: 0,"   \
	"     window: 5m, group_by: [link], match: {link: " L2 "}}\n"

static void
feed_mixed(struct eval *e, int64_t t)
{
	feed(e, false, t, "acme", "country=FR", "link=" L1, NULL);
	feed(e, false, t, "acme", "country=FR", "link=" L1, NULL);
	feed(e, false, t, "acme", "country=FR", "link=" L2, "link.tag=pricing",
	     NULL);
	feed(e, false, t, "acme", "country=DE", "link=" L3, NULL);
	feed(e, false, t, "other", "country=DE", "link=" L3, NULL);
	feed(e, false, t, "other", "country=DE", "link=" L3, NULL);
	feed(e, false, t, "acme", "city=Paris", "link.tag=demo", NULL);
}

/*
 * The rules an event may match come from an index of their filters: every
 * rule sees exactly the events it matches.  Evaluating in parts gives the
 * changes of one evaluation, in the same order.
 */
static void
test_index_and_parts(void)
{
	int64_t t = T0 + HOUR;
	struct eval *e1 = engine(MIXED, T0), *e2 = engine(MIXED, T0);
	struct eval_alert *c1, *c2;
	int n1, n2, next = 0, parts = 0;

	feed_mixed(e1, t);
	feed_mixed(e2, t);
	eval_tick(e1, t);
	while (!eval_tick_part(e2, t, &next, 1))
		parts++;
	CHECK(parts >= 4);
	c1 = eval_take(e1, &n1);
	c2 = eval_take(e2, &n2);
	/*
	 * a: L1 (2 > 1); b: L2; c: FR in acme (3 > 2; DE is 1 in acme, 2 in
	 * other); d: DE and Paris; e: L2.
	 */
	CHECK(n1 == 5 && n2 == n1);
	for (int i = 0; i < n1 && i < n2; i++) {
		CHECK_STR(c1[i].rule->name, c2[i].rule->name);
		CHECK_STR(c1[i].value, c2[i].value);
		CHECK_STR(c1[i].fingerprint, c2[i].fingerprint);
		CHECK(c1[i].state == ALERT_FIRING &&
		      c2[i].state == c1[i].state);
	}
	if (n1 == 5) {
		CHECK_STR(c1[0].rule->name, "a");
		CHECK_STR(c1[0].value, "2");
		CHECK_STR(c1[1].rule->name, "b");
		CHECK_STR(c1[1].value, "1");
		CHECK_STR(c1[2].rule->name, "c");
		CHECK_STR(c1[2].value, "3");
		CHECK_STR(c1[3].rule->name, "d");
		CHECK_STR(c1[3].value, "2");
		CHECK_STR(c1[4].rule->name, "e");
	}
	eval_alerts_free(c1, n1);
	eval_alerts_free(c2, n2);
	eval_free(e1);
	eval_free(e2);
}

/* group_by link.tag: an event counts in the group of each of its tags. */
static void
test_group_by_tag(void)
{
	int64_t t = T0 + HOUR;
	struct eval *e =
	    engine(HEAD "    kind: threshold\n"
			"    op: \">\"\n"
			"    value: 1\n"
			"    window: 5m\n"
			"    group_by: [link.tag]\n"
			"    annotations: {summary: '{{ labels.link.tag }}'}\n",
		   T0);
	struct list l;

	feed(e, false, t, "acme", "link.tag=pricing", "link.tag=demo", NULL);
	feed(e, false, t, "acme", "link.tag=pricing", NULL);
	feed(e, false, t, "acme", "link.tag=spring", NULL);
	feed(e, false, t, "acme", NULL); /* no tag: in no group */
	CHECK(tick(e, t) == 1);
	CHANGE(0, INACTIVE, FIRING, true);
	l = list(e, "link.tag");
	CHECK(l.n == 1);
	CHECK(list_find(&l, "pricing") == 0);
	if (l.n == 1)
		CHECK_STR(l.value[0], "2");
	if (nch == 1)
		CHECK_STR(annotation(&ch[0], "summary"), "pricing");
	feed(e, false, t + SEC, "acme", "link.tag=demo", NULL);
	CHECK(tick(e, t + SEC) == 1);
	l = list(e, "link.tag");
	CHECK(l.n == 2 && list_find(&l, "demo") >= 0);
	CHECK(eval_groups(e) == 3);
	done(e);
}

UT_MAIN("eval", UT(test_state_names), UT(test_threshold_window_edges),
	UT(test_threshold_ops), UT(test_threshold_measures),
	UT(test_threshold_avg_empty), UT(test_threshold_for),
	UT(test_threshold_keep_firing_for), UT(test_threshold_hysteresis),
	UT(test_threshold_repeat), UT(test_threshold_send_resolved),
	UT(test_spike_previous), UT(test_spike_offset),
	UT(test_spike_directions), UT(test_spike_baseline_zero),
	UT(test_flatline_keys), UT(test_flatline_keys_all_workspaces),
	UT(test_flatline_links), UT(test_trigger_every_event),
	UT(test_trigger_dedup), UT(test_trigger_per_key), UT(test_new_value),
	UT(test_new_value_warming), UT(test_cardinality), UT(test_ratio),
	UT(test_labels_annotations), UT(test_fingerprint),
	UT(test_workspace_match), UT(test_set_rules), UT(test_restore),
	UT(test_mute_dst), UT(test_active_weekdays), UT(test_weekday_local),
	UT(test_mute_state_machine), UT(test_mute_event_kinds),
	UT(test_warming_and_stats), UT(test_many_groups), UT(test_reset),
	UT(test_pending), UT(test_mute_forced_resolution),
	UT(test_restore_flatline), UT(test_trigger_refire),
	UT(test_index_and_parts), UT(test_group_by_tag),
	UT(test_trigger_event_fields), UT(test_bucket_numbers),
	UT(test_wide_buckets))
