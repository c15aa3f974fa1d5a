/*
 * ctl_rules_test.c - linkpulsectl rules test: runs the tests of the files
 * ctl_rules_file.c reads (the format is described there) on the rules
 * engine (eval.h, the very code the daemon runs) on a virtual clock,
 * compares the alerts and notifications with the expected ones, prints a
 * diff of each failure and, if asked, JUnit XML.  Called from ctl.c's
 * command table; no database.
 */
#include "lpconf.h" /* what configure found */

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <yaml.h>

#include "ctl.h"
#include "ctl_rules_test.h"
#include "eval.h"
#include "filter.h"
#include "rules.h"
#include "util.h"
#include "ynode.h"

#define TEST_MAX_BYTES	 (4 * 1024 * 1024)
#define DEFAULT_INTERVAL 60000
#define MAX_COUNT	 1000000  /* events of one line */
#define MAX_EVENTS	 10000000 /* of one test */
#define MAX_TICKS	 10000000 /* evaluations of one test */

/* An alert or notification the engine gave, copied. */
struct got {
	char *rule, *workspace;
	struct kv labels, annotations;
	enum alert_state state;
	char *value;
	int64_t at; /* notifications: when, from the start */
	bool repeat;
};

struct gotlist {
	struct got *v;
	int n, cap;
};

struct tresult {
	char *name;
	bool ok;
	char *diff;	    /* the failure's text */
	char *diff_summary; /* "1 of 3 expectations failed" */
	double secs;
};

struct fresult {
	char *path;
	char *errors; /* the file's errors, one a line; NULL if none */
	struct tresult *v;
	int n;
};

/* ---- running ---- */

static const char *
row_property(const struct filter_row *row, const char *key)
{
	const struct tfields *f = row->arg;

	for (int i = 0; i < f->props.n; i++)
		if (strcmp(f->props.names[i], key) == 0)
			return f->props.values[i];
	return NULL;
}

static void
feed(struct eval *e, const struct rtest *t, const struct tevent *ev,
     bool warming)
{
	struct eval_event x;

	memset(&x, 0, sizeof x);
	x.t_ms = t->start + ev->t;
	x.workspace =
	    ev->f->workspace != NULL ? ev->f->workspace : t->workspace;
	x.row.values = (const char *const *)ev->f->values;
	x.row.tags = (const char *const *)ev->f->tags;
	x.row.ntags = ev->f->ntags;
	x.row.property = row_property;
	x.row.arg = (void *)ev->f;
	eval_event(e, &x, warming);
}

static void
got_free(struct got *g)
{
	free(g->rule);
	free(g->workspace);
	kv_free(&g->labels);
	kv_free(&g->annotations);
	free(g->value);
}

static void
gots_clear(struct gotlist *l)
{
	for (int i = 0; i < l->n; i++)
		got_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* A copy of an engine's alert, times from start. */
static void
gots_add(struct gotlist *l, const struct eval_alert *a, int64_t start)
{
	struct got *g;

	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		l->v = xrealloc(l->v, sizeof(*l->v) * (size_t)l->cap);
	}
	g = &l->v[l->n++];
	memset(g, 0, sizeof(*g));
	g->rule = xstrdup(a->rule->name);
	g->workspace = xstrdup(a->workspace);
	for (int i = 0; i < a->nlabels; i++)
		kv_add(&g->labels, a->label_names[i], a->label_values[i]);
	for (int i = 0; i < a->nannotations; i++)
		kv_add(&g->annotations, a->annotation_names[i],
		       a->annotation_values[i]);
	g->state = a->state;
	g->value = xstrdup(a->value != NULL ? a->value : "");
	g->at = a->at_ms - start;
	g->repeat = a->repeat;
}

/* The notifications among the engine's changes since the last call. */
static void
take_notes(struct eval *e, int64_t start, struct gotlist *notes)
{
	struct eval_alert *v;
	int n;

	v = eval_take(e, &n);
	for (int i = 0; i < n; i++)
		if (v[i].notify)
			gots_add(notes, &v[i], start);
	eval_alerts_free(v, n);
}

struct collect {
	const char *rule; /* NULL: every rule */
	int64_t start;
	struct gotlist *out;
};

static void
collect_alert(const struct eval_alert *a, void *arg)
{
	struct collect *c = arg;

	if (c->rule == NULL || strcmp(c->rule, a->rule->name) == 0)
		gots_add(c->out, a, c->start);
}

/* Labels as text, for a stable order of what the engine lists. */
static int
got_cmp(const void *a, const void *b)
{
	const struct got *x = a, *y = b;
	int c;

	if ((c = strcmp(x->rule, y->rule)) != 0)
		return c;
	if ((c = strcmp(x->workspace, y->workspace)) != 0)
		return c;
	for (int i = 0; i < x->labels.n && i < y->labels.n; i++)
		if ((c = strcmp(x->labels.values[i], y->labels.values[i])) != 0)
			return c;
	return x->labels.n - y->labels.n;
}

static bool
kv_subset(const struct kv *want, const struct kv *have)
{
	for (int i = 0; i < want->n; i++) {
		const char *v = kv_get(have, want->names[i]);

		if (v == NULL ? want->values[i][0] != '\0'
			      : strcmp(v, want->values[i]) != 0)
			return false;
	}
	return true;
}

/* The same text, or the same number written another way (100.0, 1e2). */
static bool
value_eq(const char *want, const char *got)
{
	char *e1, *e2;
	double a, b;

	if (strcmp(want, got) == 0)
		return true;
	errno = 0;
	a = strtod(want, &e1);
	b = strtod(got, &e2);
	return errno == 0 && *want != '\0' && *got != '\0' && *e1 == '\0' &&
	       *e2 == '\0' && a == b && !isnan(a);
}

static bool
item_matches(const struct xitem *x, const struct got *g)
{
	return x->state == g->state &&
	       (x->workspace == NULL ||
		strcmp(x->workspace, g->workspace) == 0) &&
	       kv_subset(&x->labels, &g->labels) &&
	       kv_subset(&x->annotations, &g->annotations) &&
	       (x->value == NULL || value_eq(x->value, g->value)) &&
	       (!x->has_at || x->at == g->at) &&
	       (x->repeat < 0 || x->repeat == (int)g->repeat);
}

/* Kuhn's augmenting paths: expected i takes a got, maybe another's. */
static bool
augment(const bool *adj, int ngot, int i, bool *used, int *owner)
{
	for (int j = 0; j < ngot; j++) {
		if (!adj[i * ngot + j] || used[j])
			continue;
		used[j] = true;
		if (owner[j] < 0 || augment(adj, ngot, owner[j], used, owner)) {
			owner[j] = i;
			return true;
		}
	}
	return false;
}

/* s quoted, with quotes, backslashes and control characters escaped. */
static void
put_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p < 0x20)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void
put_kv(FILE *out, const char *prefix, const struct kv *kv)
{
	fputs(prefix, out);
	fputc('{', out);
	for (int i = 0; i < kv->n; i++) {
		fprintf(out, "%s%s=", i > 0 ? ", " : "", kv->names[i]);
		put_quoted(out, kv->values[i] != NULL ? kv->values[i] : "");
	}
	fputc('}', out);
}

/* An expected item, as it was written. */
static void
put_want(FILE *out, const struct xitem *x)
{
	char buf[64];

	fputs(alert_state_name(x->state), out);
	if (x->has_at) {
		format_offset(x->at, buf, sizeof buf);
		fprintf(out, " at %s", buf);
	}
	if (x->repeat >= 0)
		fputs(x->repeat ? " (a repeat)" : " (not a repeat)", out);
	if (x->workspace != NULL)
		fprintf(out, " in %s", x->workspace);
	put_kv(out, " ", &x->labels);
	if (x->value != NULL) {
		fputs(" value ", out);
		put_quoted(out, x->value);
	}
	if (x->annotations.n > 0)
		put_kv(out, " annotations ", &x->annotations);
}

/* What the engine gave, all of it. */
static void
put_got(FILE *out, const struct got *g, bool note, const char *ws)
{
	char buf[64];

	fputs(alert_state_name(g->state), out);
	if (note) {
		format_offset(g->at, buf, sizeof buf);
		fprintf(out, " at %s", buf);
		if (g->repeat)
			fputs(" (a repeat)", out);
	}
	if (strcmp(g->workspace, ws) != 0)
		fprintf(out, " in %s", g->workspace);
	put_kv(out, " ", &g->labels);
	fputs(" value ", out);
	put_quoted(out, g->value);
	if (g->annotations.n > 0)
		put_kv(out, " annotations ", &g->annotations);
}

/* How a near miss (the labels agree) differs, one line a field. */
static void
put_differences(FILE *out, const struct xitem *x, const struct got *g)
{
	char a[64], b[64];

	if (x->state != g->state)
		fprintf(out, "      state: expected %s, got %s\n",
			alert_state_name(x->state), alert_state_name(g->state));
	if (x->workspace != NULL && strcmp(x->workspace, g->workspace) != 0)
		fprintf(out, "      workspace: expected %s, got %s\n",
			x->workspace, g->workspace);
	if (x->value != NULL && !value_eq(x->value, g->value)) {
		fputs("      value: expected ", out);
		put_quoted(out, x->value);
		fputs(", got ", out);
		put_quoted(out, g->value);
		fputc('\n', out);
	}
	for (int i = 0; i < x->annotations.n; i++) {
		const char *v =
		    kv_get(&g->annotations, x->annotations.names[i]);

		if (v != NULL && strcmp(v, x->annotations.values[i]) == 0)
			continue;
		fprintf(out, "      annotations.%s: expected ",
			x->annotations.names[i]);
		put_quoted(out, x->annotations.values[i]);
		if (v != NULL) {
			fputs(", got ", out);
			put_quoted(out, v);
			fputc('\n', out);
		} else {
			fputs(", got none\n", out);
		}
	}
	if (x->has_at && x->at != g->at) {
		format_offset(x->at, a, sizeof a);
		format_offset(g->at, b, sizeof b);
		fprintf(out, "      at: expected %s, got %s\n", a, b);
	}
	if (x->repeat >= 0 && x->repeat != (int)g->repeat)
		fprintf(out, "      repeat: expected %s, got %s\n",
			x->repeat ? "true" : "false",
			g->repeat ? "true" : "false");
}

/* How many fields of x g gets wrong, its labels aside. */
static int
item_distance(const struct xitem *x, const struct got *g)
{
	int d = 0;

	d += x->state != g->state;
	d += x->workspace != NULL && strcmp(x->workspace, g->workspace) != 0;
	d += x->value != NULL && !value_eq(x->value, g->value);
	d += x->has_at && x->at != g->at;
	d += x->repeat >= 0 && x->repeat != (int)g->repeat;
	for (int i = 0; i < x->annotations.n; i++) {
		const char *v =
		    kv_get(&g->annotations, x->annotations.names[i]);

		d += v == NULL || strcmp(v, x->annotations.values[i]) != 0;
	}
	return d;
}

/*
 * Compares what an expectation lists with what the engine gave: every
 * expected item matched by a different one, and nothing left over.
 * Prints the diff on a mismatch.
 */
static bool
compare(const struct tfile *tf, const struct rtest *t, const struct texpect *x,
	bool note, const struct xitem *want, int nwant,
	const struct got *const *got, int ngot, FILE *out)
{
	bool *adj = xcalloc((size_t)(nwant * ngot) + 1, sizeof(bool));
	bool *used = xcalloc((size_t)ngot + 1, sizeof(bool));
	int *owner = xcalloc((size_t)ngot + 1, sizeof(int));
	int *match = xcalloc((size_t)nwant + 1, sizeof(int));
	int *near = xcalloc((size_t)nwant + 1, sizeof(int));
	int *taken = xcalloc((size_t)ngot + 1, sizeof(int));
	char when[64], ts[64];
	int matched = 0;
	bool ok;

	for (int i = 0; i < nwant; i++)
		for (int j = 0; j < ngot; j++)
			adj[i * ngot + j] = item_matches(&want[i], got[j]);
	for (int j = 0; j < ngot; j++)
		owner[j] = -1;
	for (int i = 0; i < nwant; i++) {
		memset(used, 0, sizeof(bool) * (size_t)ngot);
		matched += augment(adj, ngot, i, used, owner);
	}
	ok = matched == nwant && matched == ngot;
	if (ok)
		goto out;

	for (int i = 0; i < nwant; i++)
		match[i] = near[i] = -1;
	for (int j = 0; j < ngot; j++)
		if ((taken[j] = owner[j] >= 0))
			match[owner[j]] = j;
	/* A near miss: the labels agree, and the fewest fields differ. */
	for (int i = 0; i < nwant; i++) {
		int best = INT32_MAX, d;

		for (int j = 0; j < ngot && match[i] < 0; j++) {
			if (taken[j] ||
			    !kv_subset(&want[i].labels, &got[j]->labels))
				continue;
			if ((d = item_distance(&want[i], got[j])) < best) {
				best = d;
				near[i] = j;
			}
		}
		if (near[i] >= 0)
			taken[near[i]] = 1;
	}

	format_offset(x->at, when, sizeof when);
	format_time(t->start + x->at, ts, sizeof ts);
	fprintf(out, "  %s:%zu:%zu: ", tf->path, x->mark.line + 1,
		x->mark.column + 1);
	if (x->rule != NULL)
		fprintf(out, "rule %s", x->rule);
	else
		fputs("every rule", out);
	fprintf(out, " at %s (%s): ", when, ts);
	if (!note) {
		fputs("alerts differ\n", out);
	} else if (x->since == INT64_MIN) {
		fputs("notifications since the start differ\n", out);
	} else {
		format_offset(x->since, when, sizeof when);
		fprintf(out, "notifications since %s differ\n", when);
	}
	for (int i = 0; i < nwant; i++) {
		if (match[i] >= 0) {
			fputs("    ", out);
			put_got(out, got[match[i]], note, t->workspace);
			fputc('\n', out);
			continue;
		}
		fputs("  - ", out);
		put_want(out, &want[i]);
		fputc('\n', out);
		if (near[i] >= 0) {
			fputs("  + ", out);
			put_got(out, got[near[i]], note, t->workspace);
			fputc('\n', out);
			put_differences(out, &want[i], got[near[i]]);
		}
	}
	for (int j = 0; j < ngot; j++) {
		if (taken[j])
			continue;
		fputs("  + ", out);
		put_got(out, got[j], note, t->workspace);
		fputc('\n', out);
	}
	if (ngot == 0)
		fprintf(out, "    (got no %s)\n",
			note ? "notifications" : "alerts");
out:
	free(adj);
	free(used);
	free(owner);
	free(match);
	free(near);
	free(taken);
	return ok;
}

/* One expectation, checked after the evaluation at its time. */
static bool
expect_check(const struct tfile *tf, const struct rtest *t, struct eval *e,
	     const struct texpect *x, const struct gotlist *notes, FILE *out)
{
	const struct got **v;
	struct gotlist alerts = {0};
	struct collect c = {x->rule, t->start, &alerts};
	bool ok = true;
	int n = 0;

	if (x->alerts_given) {
		eval_foreach(e, collect_alert, &c);
		if (alerts.n > 1)
			qsort(alerts.v, (size_t)alerts.n, sizeof(*alerts.v),
			      got_cmp);
		v = xcalloc((size_t)alerts.n + 1, sizeof(*v));
		for (int i = 0; i < alerts.n; i++)
			v[i] = &alerts.v[i];
		ok &= compare(tf, t, x, false, x->alerts, x->nalerts, v,
			      alerts.n, out);
		free(v);
		gots_clear(&alerts);
	}
	if (x->notes_given) {
		v = xcalloc((size_t)notes->n + 1, sizeof(*v));
		for (int i = 0; i < notes->n; i++) {
			const struct got *g = &notes->v[i];

			if ((x->rule == NULL ||
			     strcmp(x->rule, g->rule) == 0) &&
			    g->at > x->since && g->at <= x->at)
				v[n++] = g;
		}
		ok &= compare(tf, t, x, true, x->notes, x->nnotes, v, n, out);
		free(v);
	}
	return ok;
}

/*
 * Runs one test on its own engine; the diff of each failed expectation
 * goes to out.  Returns how many expectations failed.
 */
static int
test_run(const struct tfile *tf, const struct rtest *t, FILE *out)
{
	struct strlist errs = {0};
	struct gotlist notes = {0};
	struct rule_set *set;
	struct eval *e;
	int64_t grid = 0, now;
	size_t next = 0;
	int xi = 0, failed = 0;

	/* The engine takes the set over: each test loads its own. */
	set = rules_load(tf->rule_paths, tf->nrule_paths, NULL, 0, &errs);
	if (set == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(out, "  %s\n", errs.v[i]);
		strlist_free(&errs);
		return t->nexpects;
	}
	strlist_free(&errs);
	e = eval_new();
	eval_set_rules(e, set, t->start);
	if (t->links_given)
		eval_set_links(e, t->workspace, t->links, t->nlinks, t->start);
	/* Events before start are history: they warm the windows. */
	for (; next < t->nevents && t->events[next].t < 0; next++)
		feed(e, t, &t->events[next], true);
	eval_warmed(e);
	take_notes(e, t->start, &notes);
	for (;;) {
		now = grid;
		if (t->expects[xi].at < now)
			now = t->expects[xi].at;
		if (now == grid)
			grid += tf->interval;
		for (; next < t->nevents && t->events[next].t <= now; next++)
			feed(e, t, &t->events[next], false);
		eval_tick(e, t->start + now);
		take_notes(e, t->start, &notes);
		for (; xi < t->nexpects && t->expects[xi].at == now; xi++)
			failed += !expect_check(tf, t, e, &t->expects[xi],
						&notes, out);
		if (xi == t->nexpects)
			break;
	}
	gots_clear(&notes);
	eval_free(e);
	return failed;
}

/* ---- JUnit XML ---- */

/*
 * Text or an attribute's value, escaped.  What XML 1.0 cannot hold
 * (control characters, invalid UTF-8) becomes U+FFFD.
 */
static void
xml_put(FILE *f, const char *s, bool attr)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		size_t len = *p < 0x80	       ? 1
			     : (*p >> 5) == 6  ? 2
			     : (*p >> 4) == 14 ? 3
			     : (*p >> 3) == 30 ? 4
					       : 0;
		size_t i;

		for (i = 1; i < len && (p[i] & 0xc0) == 0x80; i++)
			;
		if (len == 0 || i < len) {
			fputs("\xef\xbf\xbd", f);
			p += len == 0 ? 1 : i;
			continue;
		}
		if (len > 1) {
			fwrite(p, 1, len, f);
			p += len;
			continue;
		}
		switch (*p) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs(attr ? "&quot;" : "\"", f);
			break;
		case '\n':
			fputs(attr ? "&#10;" : "\n", f);
			break;
		case '\t':
			fputs(attr ? "&#9;" : "\t", f);
			break;
		case '\r':
			fputs("&#13;", f);
			break;
		default:
			if (*p < 0x20)
				fputs("\xef\xbf\xbd", f);
			else
				fputc(*p, f);
		}
		p++;
	}
}

static bool
junit_write(const char *path, const struct fresult *v, int n, double secs)
{
	int tests = 0, failures = 0, errors = 0;
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		return false;
	for (int i = 0; i < n; i++) {
		tests += v[i].n + (v[i].errors != NULL);
		errors += v[i].errors != NULL;
		for (int j = 0; j < v[i].n; j++)
			failures += !v[i].v[j].ok;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<testsuites name=\"" PROG " rules test\" tests=\"%d\" "
		"failures=\"%d\" errors=\"%d\" time=\"%.3f\">\n",
		tests, failures, errors, secs);
	for (int i = 0; i < n; i++) {
		const struct fresult *r = &v[i];
		double fsecs = 0;
		int ff = 0;

		for (int j = 0; j < r->n; j++) {
			fsecs += r->v[j].secs;
			ff += !r->v[j].ok;
		}
		fputs("  <testsuite name=\"", f);
		xml_put(f, r->path, true);
		fprintf(f,
			"\" tests=\"%d\" failures=\"%d\" errors=\"%d\" "
			"time=\"%.3f\">\n",
			r->n + (r->errors != NULL), ff, r->errors != NULL,
			fsecs);
		if (r->errors != NULL) {
			fputs("    <testcase name=\"", f);
			xml_put(f, r->path, true);
			fputs("\" classname=\"", f);
			xml_put(f, r->path, true);
			fputs("\">\n      <error type=\"error\" message=\"the "
			      "test file has errors\">",
			      f);
			xml_put(f, r->errors, false);
			fputs("</error>\n    </testcase>\n", f);
		}
		for (int j = 0; j < r->n; j++) {
			const struct tresult *tr = &r->v[j];

			fputs("    <testcase name=\"", f);
			xml_put(f, tr->name, true);
			fputs("\" classname=\"", f);
			xml_put(f, r->path, true);
			fprintf(f, "\" time=\"%.3f\"", tr->secs);
			if (tr->ok) {
				fputs("/>\n", f);
				continue;
			}
			fputs(">\n      <failure type=\"failure\" message=\"",
			      f);
			xml_put(f, tr->diff_summary, true);
			fputs("\">", f);
			xml_put(f, tr->diff, false);
			fputs("</failure>\n    </testcase>\n", f);
		}
		fputs("  </testsuite>\n", f);
	}
	fputs("</testsuites>\n", f);
	return fclose(f) == 0;
}

/* ---- the command ---- */

int
cmd_rules_test(struct ctl *ctl, const struct ctl_cmd *cmd,
	       const struct ctl_args *a)
{
	const char *junit = arg_get(cmd, a, "junit");
	struct fresult *res = xcalloc((size_t)a->npos + 1, sizeof(*res));
	int ntests = 0, nfailed = 0, rc;
	double t0 = mono_sec();
	bool file_error = false;

	(void)ctl;
	if (junit != NULL && junit[0] == '\0')
		return usage_error(cmd, "--junit: expected a file name");
	for (int i = 0; i < a->npos; i++) {
		struct fresult *r = &res[i];
		struct tfile tf;

		r->path = xstrdup(a->pos[i]);
		if (!tfile_load(&tf, a->pos[i])) {
			char *all = xstrdup("");

			for (size_t j = 0; j < tf.errs.n; j++) {
				char *next =
				    xprintf("%s%s\n", all, tf.errs.v[j]);

				fprintf(stderr, "%s\n", tf.errs.v[j]);
				free(all);
				all = next;
			}
			r->errors = all;
			file_error = true;
			tfile_free(&tf);
			continue;
		}
		r->v = xcalloc((size_t)tf.ntests + 1, sizeof(*r->v));
		for (int j = 0; j < tf.ntests; j++) {
			struct tresult *tr = &r->v[r->n++];
			double start = mono_sec();
			size_t len = 0;
			FILE *out;
			int failed;

			tr->name = xstrdup(tf.tests[j].name);
			if ((out = open_memstream(&tr->diff, &len)) == NULL)
				fatal("rules test: open_memstream: %s",
				      strerror(errno));
			failed = test_run(&tf, &tf.tests[j], out);
			fclose(out);
			tr->secs = mono_sec() - start;
			tr->ok = failed == 0;
			tr->diff_summary =
			    xprintf("%d of %d expectation%s failed", failed,
				    tf.tests[j].nexpects,
				    tf.tests[j].nexpects == 1 ? "" : "s");
			ntests++;
			nfailed += !tr->ok;
			printf("%s %s\n", tr->ok ? "ok" : "FAIL", tr->name);
			if (!tr->ok)
				fputs(tr->diff, stdout);
		}
		tfile_free(&tf);
	}
	printf("%d test%s, %d passed, %d failed\n", ntests,
	       ntests == 1 ? "" : "s", ntests - nfailed, nfailed);
	fflush(stdout);
	rc = file_error ? EXIT_USAGE : nfailed > 0 ? EXIT_ERR : EXIT_OK;
	if (junit != NULL &&
	    !junit_write(junit, res, a->npos, mono_sec() - t0)) {
		ctl_error("%s: cannot write: %s", junit, strerror(errno));
		rc = EXIT_USAGE;
	}
	for (int i = 0; i < a->npos; i++) {
		for (int j = 0; j < res[i].n; j++) {
			free(res[i].v[j].name);
			free(res[i].v[j].diff);
			free(res[i].v[j].diff_summary);
		}
		free(res[i].v);
		free(res[i].path);
		free(res[i].errors);
	}
	free(res);
	return rc;
}
