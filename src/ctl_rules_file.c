/*
 * ctl_rules_file.c - linkpulsectl rules test, its test files: unit tests of
 * alert rules, promtool's "test rules" for event streams.  A test feeds events
 * to the rules engine (eval.h, the very code the daemon runs) on a virtual
 * clock and compares the alerts and notifications it gets with the expected
 * ones.  A test file:
 *
 *   rule_files: [../threshold.yaml]   # from this file's folder; globs too
 *   evaluation_interval: 1m           # default 1m
 *   event_defaults: {status: ok}      # fields of every event of the file
 *   tests:
 *     - name: surge on L1             # default: tests[I]
 *       start: 2026-03-28T00:00:00Z   # default 2026-01-05T00:00:00Z, a
 *                                     # Monday (time intervals read it)
 *       workspace: acme               # default: the one workspace the
 *                                     # rules name (else required)
 *       links: [L1, L2]               # the active links (flatline)
 *       event_defaults: {is_bot: false}   # over the file's
 *       events:
 *         - {at: 5m, count: 100, link: L1, country: FR}
 *         - {at: 0m, count: 60, spread: 1h, link: L2}
 *         - {at: -7d, count: 20, link: L1}    # history: warms windows
 *         - {at: 2m, link: L1, tags: [pricing], visitor: V1,
 *            visitor.lead_score: 85, properties: {plan: pro}}
 *       expect:
 *         - at: 10m
 *           rule: campaign-scan-surge  # default: every rule
 *           alerts:                    # all pending or firing ones
 *             - labels: {link: L1}     # a subset of the alert's
 *               annotations: {summary: "L1 had 100 scans in 10m"}
 *               state: firing          # or pending; default firing
 *               value: "100"           # optional; 100.0 is 100 too
 *               workspace: acme        # optional
 *         - at: 40m
 *           rule: campaign-scan-surge
 *           notifications:             # all sent since the previous
 *             - status: resolved       # expectation of the same rule
 *               labels: {link: L1}     # (firing by default); at, value,
 *               at: 31m                # annotations, workspace and
 *                                      # repeat: true|false optional
 *
 * Event keys: at (a duration from start, "-" before it), count (default
 * 1), spread (count events evenly over [at, at+spread)), workspace, tags
 * (or link.tag: the link's tags), properties (a mapping, or
 * properties.KEY keys), and any field of filter.h's table.  Values are
 * text as PostgreSQL prints them: true/false become "t"/"f", numeric
 * fields take integers, null is SQL NULL; "{{ i }}" in a value is the
 * event's number within its line (city: "c{{ i }}": a city each).
 * Expected and actual lists match one to one, an expected item matching
 * an actual one with at least its labels and annotations.
 *
 * The clock: events before start are fed first, warming (they fill
 * windows, alert nothing).  Then at every evaluation_interval from start,
 * and at every expectation's time, the events up to that time are fed in
 * time order and the rules are evaluated (eval_tick); the expectations of
 * that time are checked after it.  The test ends at its last
 * expectation.
 *
 * Every error in a test file names FILE:LINE:COLUMN; a file with errors
 * runs no test and makes the exit status 2.  A failing test prints a diff
 * of each expectation that failed: "-" expected and missing, "+" got and
 * unexpected, with the differing fields of a near miss.  This file reads
 * and checks test files (tfile_load); ctl_rules_test.c runs them.  Uses
 * rules.c, filter.c and ynode.c.
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

static const char *const top_keys[] = {"rule_files", "evaluation_interval",
				       "event_defaults", "tests", NULL};
static const char *const test_keys[] = {
    "name",	      "start",	"workspace", "links",
    "event_defaults", "events", "expect",    NULL};
/* An event's keys that are not fields of the filter table. */
static const char *const event_keys[] = {"at",	       "count", "spread",
					 "workspace",  "tags",	"link.tag",
					 "properties", NULL};
static const char *const expect_keys[] = {"at", "rule", "alerts",
					  "notifications", NULL};
static const char *const alert_keys[] = {"labels", "annotations", "state",
					 "value",  "workspace",	  NULL};
static const char *const note_keys[] = {"status",      "at",	"labels",
					"annotations", "value", "workspace",
					"repeat",      NULL};

/* ---- small helpers ---- */

void
kv_add(struct kv *kv, const char *name, const char *value)
{
	kv->names = xrealloc(kv->names, sizeof(char *) * (size_t)(kv->n + 1));
	kv->values = xrealloc(kv->values, sizeof(char *) * (size_t)(kv->n + 1));
	kv->names[kv->n] = xstrdup(name);
	kv->values[kv->n] = value != NULL ? xstrdup(value) : NULL;
	kv->n++;
}

/* Sets name, replacing its value if it is there. */
static void
kv_set(struct kv *kv, const char *name, const char *value)
{
	for (int i = 0; i < kv->n; i++) {
		if (strcmp(kv->names[i], name) == 0) {
			free(kv->values[i]);
			kv->values[i] = value != NULL ? xstrdup(value) : NULL;
			return;
		}
	}
	kv_add(kv, name, value);
}

const char *
kv_get(const struct kv *kv, const char *name)
{
	for (int i = 0; i < kv->n; i++)
		if (strcmp(kv->names[i], name) == 0)
			return kv->values[i] != NULL ? kv->values[i] : "";
	return NULL;
}

void
kv_free(struct kv *kv)
{
	for (int i = 0; i < kv->n; i++) {
		free(kv->names[i]);
		free(kv->values[i]);
	}
	free(kv->names);
	free(kv->values);
	memset(kv, 0, sizeof(*kv));
}

static void
strv_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The nearest of the candidates, if near enough to be a typo. */
static const char *
suggest(const char *s, const char *const *names)
{
	size_t best = SIZE_MAX, d, len = strlen(s);
	const char *found = NULL;

	for (; names != NULL && *names != NULL; names++) {
		d = levenshtein(s, *names);
		if (d < best && (d <= 2 || d * 3 <= len)) {
			best = d;
			found = *names;
		}
	}
	return found;
}

static bool
in_list(const char *const *names, const char *s)
{
	for (; names != NULL && *names != NULL; names++)
		if (strcmp(*names, s) == 0)
			return true;
	return false;
}

/* "2026-01-05T00:10:00Z", with milliseconds only when there are some. */
void
format_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)t * 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac != 0)
		snprintf(buf + n, len - n, ".%03dZ", frac);
	else
		snprintf(buf + n, len - n, "Z");
}

/* "10m", "-7d", "0". */
void
format_offset(int64_t ms, char *buf, size_t len)
{
	if (ms < 0) {
		buf[0] = '-';
		format_duration(-ms, buf + 1, len - 1);
	} else {
		format_duration(ms, buf, len);
	}
}

/* RFC 3339: 2026-03-28T00:00:00Z, 2026-03-28T01:00:00.5+01:00. */
static bool
parse_time(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec, n = 0, ms = 0, off = 0;
	struct tm tm;
	const char *p;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
		return false;
	p = s + 11;
	n = 0;
	if (sscanf(p, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8)
		return false;
	p += 8;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		if (digits == 0)
			return false;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int oh, om;

		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 ||
		    om > 59)
			return false;
		off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
	} else {
		return false;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60 || y < 1970)
		return false;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + ms;
	/* timegm normalises 02-30 to 03-02: refuse what it moved. */
	return tm.tm_mday == d && tm.tm_mon == mo - 1;
}

/* ---- errors ---- */

static void terr(struct tfile *, const yaml_node_t *, const char *,
		 const char *, ...) __attribute__((format(printf, 4, 5)));

/* "FILE:LINE:COL: WHAT: MSG" about node n. */
static void
terr(struct tfile *tf, const yaml_node_t *n, const char *what, const char *fmt,
     ...)
{
	va_list ap;

	va_start(ap, fmt);
	ynode_verror(&tf->errs, tf->path, n != NULL ? &n->start_mark : NULL,
		     what, fmt, ap);
	va_end(ap);
}

/* "expected EXPECT, got GOT" about n. */
static void
terr_expect(struct tfile *tf, const yaml_node_t *n, const char *what,
	    const char *expect)
{
	char *got = ynode_describe(n);

	terr(tf, n, what, "expected %s, got %s", expect, got);
	free(got);
}

/* "LINE:COL: ..." after the file's name: the position, or 0:0. */
static void
err_position(const char *e, const char *path, unsigned long *line,
	     unsigned long *col)
{
	size_t len = strlen(path);
	char *end;

	*line = *col = 0;
	if (strncmp(e, path, len) != 0 || e[len] != ':')
		return;
	*line = strtoul(e + len + 1, &end, 10);
	if (*end == ':')
		*col = strtoul(end + 1, NULL, 10);
}

/* The errors in the order of the file (stable). */
static void
errs_sort(struct tfile *tf)
{
	unsigned long li, ci, lj, cj;

	for (size_t i = 1; i < tf->errs.n; i++) {
		char *e = tf->errs.v[i];
		size_t j = i;

		err_position(e, tf->path, &li, &ci);
		while (j > 0) {
			err_position(tf->errs.v[j - 1], tf->path, &lj, &cj);
			if (lj < li || (lj == li && cj <= ci))
				break;
			tf->errs.v[j] = tf->errs.v[j - 1];
			j--;
		}
		tf->errs.v[j] = e;
	}
}

/* ---- nodes ---- */

static yaml_node_t *
node(struct tfile *tf, yaml_node_item_t i)
{
	return yaml_document_get_node(tf->doc, i);
}

static bool
is_map(struct tfile *tf, const yaml_node_t *n, const char *what)
{
	if (n->type == YAML_MAPPING_NODE)
		return true;
	terr_expect(tf, n, what, "a mapping");
	return false;
}

static bool
is_list(struct tfile *tf, const yaml_node_t *n, const char *what)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return true;
	terr_expect(tf, n, what, "a list");
	return false;
}

/*
 * The values of a mapping's keys, out[i] for names[i] (NULL when
 * absent).  Unknown and repeated keys are errors.
 */
static void
map_keys(struct tfile *tf, yaml_node_t *map, const char *what,
	 const char *const *names, yaml_node_t **out)
{
	size_t count = 0;

	while (names[count] != NULL)
		count++;
	memset(out, 0, sizeof(*out) * count);
	for (yaml_node_pair_t *q = map->data.mapping.pairs.start;
	     q < map->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = node(tf, q->key);
		const char *k = ynode_scalar(kn), *hint;
		size_t i;

		for (i = 0; k != NULL && i < count; i++)
			if (strcmp(names[i], k) == 0)
				break;
		if (k != NULL && i < count && out[i] == NULL) {
			out[i] = node(tf, q->value);
		} else if (k != NULL && i < count) {
			terr(tf, kn, what, "'%s' given twice", k);
		} else if (k != NULL && (hint = suggest(k, names)) != NULL) {
			terr(tf, kn, what,
			     "unknown key '%s' (did you mean '%s'?)", k, hint);
		} else {
			char *list = xstrdup("");

			for (i = 0; i < count; i++) {
				char *next =
				    xprintf("%s%s%s", list, i > 0 ? ", " : "",
					    names[i]);
				free(list);
				list = next;
			}
			terr(tf, kn, what, "unknown key '%s' (expected: %s)",
			     k != NULL ? k : "?", list);
			free(list);
		}
	}
}

/* A duration; with sign, "-7d" too. */
static bool
duration(struct tfile *tf, const yaml_node_t *n, const char *what, bool sign,
	 int64_t *out)
{
	const char *s = ynode_scalar(n);
	bool neg = sign && s != NULL && s[0] == '-';

	if (s == NULL || parse_duration_ms(s + neg, out) != 0) {
		terr_expect(tf, n, what,
			    sign ? "a duration such as 5m (or -5m: before "
				   "start)"
				 : "a duration such as 5m");
		return false;
	}
	if (neg)
		*out = -*out;
	return true;
}

/* A scalar's text as a label value: null is "". */
static bool
text(struct tfile *tf, const yaml_node_t *n, const char *what, const char **out)
{
	if (ynode_is_null(n)) {
		*out = "";
		return true;
	}
	if ((*out = ynode_text(n)) == NULL) {
		terr_expect(tf, n, what, "a text");
		return false;
	}
	return true;
}

/* A list of texts (or one text). */
static bool
texts(struct tfile *tf, const yaml_node_t *n, const char *what, char ***out,
      int *nout)
{
	const char *s;
	bool ok = true;

	*out = NULL;
	*nout = 0;
	if (n->type == YAML_SCALAR_NODE && !ynode_is_null(n)) {
		if (!text(tf, n, what, &s))
			return false;
		*out = xcalloc(2, sizeof(char *));
		(*out)[(*nout)++] = xstrdup(s);
		return true;
	}
	if (ynode_is_null(n))
		return true;
	if (!is_list(tf, n, what))
		return false;
	*out = xcalloc(ynode_seq_len(n) + 1, sizeof(char *));
	for (size_t i = 0; i < ynode_seq_len(n); i++) {
		yaml_node_t *e = ynode_seq_item(tf->doc, n, i);

		if ((s = ynode_scalar(e)) == NULL) {
			char *w = xprintf("%s[%zu]", what, i);

			terr_expect(tf, e, w, "a text");
			free(w);
			ok = false;
			continue;
		}
		(*out)[(*nout)++] = xstrdup(s);
	}
	return ok;
}

/* A mapping of names to texts. */
static bool
kv_parse(struct tfile *tf, yaml_node_t *n, const char *what, struct kv *out,
	 const char *const *known, const char *known_what)
{
	bool ok = true;

	if (ynode_is_null(n))
		return true;
	if (!is_map(tf, n, what))
		return false;
	for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
	     q < n->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = node(tf, q->key), *vn = node(tf, q->value);
		const char *k = ynode_scalar(kn), *v, *hint;
		char *w;

		if (k == NULL) {
			terr_expect(tf, kn, what, "a name");
			ok = false;
			continue;
		}
		w = xprintf("%s.%s", what, k);
		if (kv_get(out, k) != NULL) {
			terr(tf, kn, what, "'%s' given twice", k);
			ok = false;
		} else if (known != NULL && !in_list(known, k)) {
			hint = suggest(k, known);
			if (hint != NULL)
				terr(tf, kn, what,
				     "the rule has no %s '%s' (did you mean "
				     "'%s'?)",
				     known_what, k, hint);
			else
				terr(tf, kn, what, "the rule has no %s '%s'",
				     known_what, k);
			ok = false;
		} else if (text(tf, vn, w, &v)) {
			kv_add(out, k, v);
		} else {
			ok = false;
		}
		free(w);
	}
	return ok;
}

/* ---- event fields ---- */

static struct tfields *
tfields_new(const struct tfields *base)
{
	struct tfields *f = xcalloc(1, sizeof(*f));
	int n = filter_nfields();

	f->values = xcalloc((size_t)n + 1, sizeof(char *));
	if (base == NULL)
		return f;
	if (base->workspace != NULL)
		f->workspace = xstrdup(base->workspace);
	for (int i = 0; i < n; i++)
		if (base->values[i] != NULL)
			f->values[i] = xstrdup(base->values[i]);
	if (base->ntags > 0) {
		f->tags = xcalloc(base->ntags + 1, sizeof(char *));
		for (size_t i = 0; i < base->ntags; i++)
			f->tags[i] = xstrdup(base->tags[i]);
		f->ntags = base->ntags;
	}
	for (int i = 0; i < base->props.n; i++)
		kv_add(&f->props, base->props.names[i], base->props.values[i]);
	return f;
}

static void
tfields_free(struct tfields *f)
{
	if (f == NULL)
		return;
	free(f->workspace);
	strv_free(f->values, filter_nfields());
	strv_free(f->tags, (int)f->ntags);
	kv_free(&f->props);
	free(f);
}

/*
 * A field's value as PostgreSQL prints it: a YAML boolean is "t" or "f",
 * a numeric field takes a decimal integer, null is SQL NULL.
 */
static bool
field_value(struct tfile *tf, const yaml_node_t *n, const char *what,
	    bool number, char **out)
{
	const char *s;
	long long v;
	int b;

	*out = NULL;
	if (ynode_is_null(n))
		return true;
	if ((s = ynode_text(n)) == NULL) {
		terr_expect(tf, n, what,
			    "a value (a text, a number, true or "
			    "false)");
		return false;
	}
	if (number) {
		if (!ynode_int(s, &v)) {
			terr_expect(tf, n, what, "an integer");
			return false;
		}
		*out = xstrdup(s);
		return true;
	}
	b = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? ynode_bool(s)
							    : -1;
	*out = xstrdup(b == 1 ? "t" : b == 0 ? "f" : s);
	return true;
}

/* One key of an event (or of event_defaults) into f. */
static bool
field_set(struct tfile *tf, struct tfields *f, yaml_node_t *kn, yaml_node_t *vn,
	  const char *what)
{
	const char *k = ynode_scalar(kn), *hint;
	char *w, *v, **list;
	bool ok = true;
	int idx, n;

	if (k == NULL) {
		terr_expect(tf, kn, what, "a field name");
		return false;
	}
	w = xprintf("%s.%s", what, k);
	if (strcmp(k, "workspace") == 0) {
		const char *s = ynode_scalar(vn);

		if (s == NULL || !slug_valid(s)) {
			terr_expect(tf, vn, w, "a workspace slug");
			ok = false;
		} else {
			free(f->workspace);
			f->workspace = xstrdup(s);
		}
	} else if (strcmp(k, "tags") == 0 || strcmp(k, "link.tag") == 0) {
		if ((ok = texts(tf, vn, w, &list, &n))) {
			strv_free(f->tags, (int)f->ntags);
			f->tags = list;
			f->ntags = (size_t)n;
		} else {
			strv_free(list, n);
		}
	} else if (strcmp(k, "properties") == 0) {
		struct kv props = {0};

		if (!ynode_is_null(vn) && vn->type != YAML_MAPPING_NODE) {
			terr_expect(tf, vn, w, "a mapping");
			ok = false;
		}
		for (yaml_node_pair_t *q = vn->data.mapping.pairs.start;
		     ok && vn->type == YAML_MAPPING_NODE &&
		     q < vn->data.mapping.pairs.top;
		     q++) {
			const char *pk = ynode_scalar(node(tf, q->key));
			char *name =
			    xprintf("properties.%s", pk != NULL ? pk : "");
			char *pw = xprintf("%s.%s", w, pk != NULL ? pk : "");

			if (pk == NULL ||
			    filter_field_kind(name) != FILTER_FIELD_MANY) {
				terr_expect(tf, node(tf, q->key), w,
					    "a property name");
				ok = false;
			} else if (field_value(tf, node(tf, q->value), pw,
					       false, &v)) {
				kv_set(&props, pk, v);
				free(v);
			} else {
				ok = false;
			}
			free(name);
			free(pw);
		}
		for (int i = 0; ok && i < props.n; i++)
			kv_set(&f->props, props.names[i], props.values[i]);
		kv_free(&props);
	} else if (strncmp(k, "properties.", 11) == 0 &&
		   filter_field_kind(k) == FILTER_FIELD_MANY) {
		if ((ok = field_value(tf, vn, w, false, &v))) {
			kv_set(&f->props, k + 11, v);
			free(v);
		}
	} else if ((idx = filter_field_index(k)) >= 0) {
		if ((ok = field_value(
			 tf, vn, w, filter_field_kind(k) == FILTER_FIELD_NUMBER,
			 &v))) {
			free(f->values[idx]);
			f->values[idx] = v;
		}
	} else {
		if ((hint = suggest(k, event_keys)) == NULL)
			hint = filter_field_suggest(k);
		if (hint != NULL)
			terr(tf, kn, what,
			     "unknown field '%s' (did you mean '%s'?)", k,
			     hint);
		else
			terr(tf, kn, what,
			     "unknown field '%s' (an event has at, count, "
			     "spread, workspace, tags, properties and the "
			     "fields %s)",
			     k, filter_field_list());
		ok = false;
	}
	free(w);
	return ok;
}

#define INDEX_REF "{{ i }}"

/* Whether a text of f holds {{ i }}. */
static bool
tfields_numbered(const struct tfields *f)
{
	for (int i = 0; i < filter_nfields(); i++)
		if (f->values[i] != NULL && strstr(f->values[i], INDEX_REF))
			return true;
	for (size_t i = 0; i < f->ntags; i++)
		if (strstr(f->tags[i], INDEX_REF) != NULL)
			return true;
	for (int i = 0; i < f->props.n; i++)
		if (f->props.values[i] != NULL &&
		    strstr(f->props.values[i], INDEX_REF) != NULL)
			return true;
	return false;
}

/* *s with every {{ i }} replaced by i. */
static void
number_text(char **s, long long i)
{
	char *at, *out;

	while (*s != NULL && (at = strstr(*s, INDEX_REF)) != NULL) {
		out = xprintf("%.*s%lld%s", (int)(at - *s), *s, i,
			      at + strlen(INDEX_REF));
		free(*s);
		*s = out;
	}
}

/* The fields of the i-th event of a line whose texts hold {{ i }}. */
static struct tfields *
tfields_number(const struct tfields *f, long long i)
{
	struct tfields *c = tfields_new(f);

	for (int j = 0; j < filter_nfields(); j++)
		number_text(&c->values[j], i);
	for (size_t j = 0; j < c->ntags; j++)
		number_text(&c->tags[j], i);
	for (int j = 0; j < c->props.n; j++)
		number_text(&c->props.values[j], i);
	return c;
}

/* event_defaults: fields over base's. */
static struct tfields *
defaults_parse(struct tfile *tf, yaml_node_t *n, const char *what,
	       const struct tfields *base)
{
	struct tfields *f = tfields_new(base);
	bool ok = true;

	if (n == NULL || ynode_is_null(n))
		return f;
	if (!is_map(tf, n, what)) {
		tfields_free(f);
		return NULL;
	}
	for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
	     q < n->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = node(tf, q->key);
		const char *k = ynode_scalar(kn);

		if (k != NULL &&
		    (strcmp(k, "at") == 0 || strcmp(k, "count") == 0 ||
		     strcmp(k, "spread") == 0)) {
			terr(tf, kn, what,
			     "'%s' is an event's own, not a default", k);
			ok = false;
			continue;
		}
		ok &= field_set(tf, f, kn, node(tf, q->value), what);
	}
	if (!ok) {
		tfields_free(f);
		return NULL;
	}
	return f;
}

/* One line of events: count of them from at, spread over spread. */
static bool
event_parse(struct tfile *tf, struct rtest *t, const struct tfields *base,
	    yaml_node_t *n, const char *what, size_t *seq)
{
	yaml_node_t *at = NULL, *count = NULL, *spread = NULL;
	struct strlist seen = {0};
	int64_t t0 = 0, sp = 0;
	long long cnt = 1;
	struct tfields *f;
	bool ok = true, numbered;

	if (!is_map(tf, n, what))
		return false;
	f = tfields_new(base);
	for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
	     q < n->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = node(tf, q->key), *vn = node(tf, q->value);
		const char *k = ynode_scalar(kn);
		bool dup = false;

		for (size_t i = 0; k != NULL && i < seen.n && !dup; i++)
			dup = strcmp(seen.v[i], k) == 0;
		if (dup) {
			terr(tf, kn, what, "'%s' given twice", k);
			ok = false;
			continue;
		}
		if (k != NULL)
			strlist_add(&seen, k);
		if (k != NULL && strcmp(k, "at") == 0)
			at = vn;
		else if (k != NULL && strcmp(k, "count") == 0)
			count = vn;
		else if (k != NULL && strcmp(k, "spread") == 0)
			spread = vn;
		else
			ok &= field_set(tf, f, kn, vn, what);
	}
	strlist_free(&seen);
	if (at == NULL) {
		terr(tf, n, what,
		     "missing at: the time of the event from start, such as "
		     "5m");
		ok = false;
	} else {
		char *w = xprintf("%s.at", what);

		ok &= duration(tf, at, w, true, &t0);
		free(w);
	}
	if (count != NULL) {
		const char *s = ynode_scalar(count);

		if (s == NULL || !ynode_int(s, &cnt) || cnt < 1 ||
		    cnt > MAX_COUNT) {
			char *w = xprintf("%s.count", what);

			terr_expect(tf, count, w,
				    "a number of events from 1 to 1000000");
			free(w);
			ok = false;
		}
	}
	if (spread != NULL) {
		char *w = xprintf("%s.spread", what);

		ok &= duration(tf, spread, w, false, &sp);
		free(w);
	}
	if (ok && t->nevents + (size_t)cnt > MAX_EVENTS) {
		terr(tf, n, what, "more than %d events in one test",
		     MAX_EVENTS);
		ok = false;
	}
	if (!ok) {
		tfields_free(f);
		return false;
	}
	/* With {{ i }}, each event has fields of its own. */
	numbered = tfields_numbered(f);
	t->fields = xrealloc(
	    t->fields, sizeof(*t->fields) *
			   (size_t)(t->nfields + 1 + (numbered ? cnt : 0)));
	t->fields[t->nfields++] = f;
	if (t->nevents + (size_t)cnt > t->capevents) {
		t->capevents = (t->nevents + (size_t)cnt) * 2;
		t->events =
		    xrealloc(t->events, sizeof(*t->events) * t->capevents);
	}
	/* Evenly: the i-th of cnt at t0 + i * sp / cnt, without overflow. */
	for (long long i = 0; i < cnt; i++) {
		struct tevent *ev = &t->events[t->nevents++];

		ev->t = t0 + i * (sp / cnt) + i * (sp % cnt) / cnt;
		ev->seq = (*seq)++;
		ev->f = f;
		if (numbered) {
			t->fields[t->nfields] = tfields_number(f, i);
			ev->f = t->fields[t->nfields++];
		}
	}
	return true;
}

/* The labels an alert of r has (NULL-terminated, the caller frees). */
static const char **
rule_label_names(const struct rule *r)
{
	const char **v =
	    xcalloc((size_t)(r->nlabels + r->ngroup_by) + 5, sizeof(char *));
	int n = 0;

	v[n++] = "alertname";
	v[n++] = "severity";
	for (int i = 0; i < r->nlabels; i++)
		v[n++] = r->label_names[i];
	for (int i = 0; i < r->ngroup_by; i++)
		v[n++] = r->group_by[i];
	/* flatline on active links is keyed by link whatever group_by. */
	if (strcmp(r->kind->name, "flatline") == 0 && r->ngroup_by == 0)
		v[n++] = "link";
	if (strcmp(r->kind->name, "new_value") == 0)
		v[n++] = ((const struct rule_new_value *)r->params)->field;
	return v;
}

static const char **
rule_annotation_names(const struct rule *r)
{
	const char **v = xcalloc((size_t)r->nannotations + 1, sizeof(char *));

	for (int i = 0; i < r->nannotations; i++)
		v[i] = r->annotations[i].name;
	return v;
}

static void
xitem_free(struct xitem *x)
{
	free(x->workspace);
	kv_free(&x->labels);
	kv_free(&x->annotations);
	free(x->value);
}

/* An expected alert (note false) or notification, of rule r if known. */
static bool
xitem_parse(struct tfile *tf, yaml_node_t *n, const char *what, bool note,
	    const struct rule *r, struct xitem *x)
{
	enum { K_LABELS, K_ANN, K_STATE, K_VALUE, K_WS, K_AT, K_REPEAT };
	yaml_node_t *k[8];
	const char **lnames = NULL, **anames = NULL;
	bool ok = true;
	char *w;

	memset(x, 0, sizeof(*x));
	x->mark = n->start_mark;
	x->state = ALERT_FIRING;
	x->repeat = -1;
	if (!is_map(tf, n, what))
		return false;
	if (note) {
		yaml_node_t *nk[7];

		map_keys(tf, n, what, note_keys, nk);
		/* note_keys: status at labels annotations value ws repeat */
		k[K_STATE] = nk[0];
		k[K_AT] = nk[1];
		k[K_LABELS] = nk[2];
		k[K_ANN] = nk[3];
		k[K_VALUE] = nk[4];
		k[K_WS] = nk[5];
		k[K_REPEAT] = nk[6];
	} else {
		map_keys(tf, n, what, alert_keys, k);
		k[K_AT] = k[K_REPEAT] = NULL;
	}
	if (r != NULL) {
		lnames = rule_label_names(r);
		anames = rule_annotation_names(r);
	}
	if (k[K_LABELS] != NULL) {
		w = xprintf("%s.labels", what);
		ok &= kv_parse(tf, k[K_LABELS], w, &x->labels, lnames, "label");
		free(w);
	}
	if (k[K_ANN] != NULL) {
		w = xprintf("%s.annotations", what);
		ok &= kv_parse(tf, k[K_ANN], w, &x->annotations, anames,
			       "annotation");
		free(w);
	}
	free(lnames);
	free(anames);
	if (k[K_STATE] != NULL) {
		const char *s = ynode_scalar(k[K_STATE]);
		int st = s != NULL ? alert_state_parse(s) : -1;

		w = xprintf("%s.%s", what, note ? "status" : "state");
		if (note && (st == ALERT_FIRING || st == ALERT_RESOLVED)) {
			x->state = (enum alert_state)st;
		} else if (!note &&
			   (st == ALERT_FIRING || st == ALERT_PENDING)) {
			x->state = (enum alert_state)st;
		} else {
			terr_expect(tf, k[K_STATE], w,
				    note ? "firing or resolved"
					 : "pending or firing");
			ok = false;
		}
		free(w);
	}
	if (k[K_VALUE] != NULL) {
		const char *s = ynode_scalar(k[K_VALUE]);

		if (s == NULL) {
			w = xprintf("%s.value", what);
			terr_expect(tf, k[K_VALUE], w,
				    "a value such as \"100\"");
			free(w);
			ok = false;
		} else {
			x->value = xstrdup(s);
		}
	}
	if (k[K_WS] != NULL) {
		const char *s = ynode_scalar(k[K_WS]);

		if (s == NULL || !slug_valid(s)) {
			w = xprintf("%s.workspace", what);
			terr_expect(tf, k[K_WS], w, "a workspace slug");
			free(w);
			ok = false;
		} else {
			x->workspace = xstrdup(s);
		}
	}
	if (k[K_AT] != NULL) {
		w = xprintf("%s.at", what);
		x->has_at = duration(tf, k[K_AT], w, false, &x->at);
		ok &= x->has_at;
		free(w);
	}
	if (k[K_REPEAT] != NULL) {
		const char *s = ynode_scalar(k[K_REPEAT]);

		if (s == NULL || (x->repeat = ynode_bool(s)) < 0) {
			w = xprintf("%s.repeat", what);
			terr_expect(tf, k[K_REPEAT], w, "true or false");
			free(w);
			ok = false;
		}
	}
	return ok;
}

static void
expect_free(struct texpect *x)
{
	for (int i = 0; i < x->nalerts; i++)
		xitem_free(&x->alerts[i]);
	for (int i = 0; i < x->nnotes; i++)
		xitem_free(&x->notes[i]);
	free(x->alerts);
	free(x->notes);
	free(x->rule);
}

/* A list of expected alerts or notifications. */
static bool
xitems_parse(struct tfile *tf, yaml_node_t *n, const char *what, bool note,
	     const struct rule *r, struct xitem **out, int *nout)
{
	bool ok = true;

	*out = NULL;
	*nout = 0;
	if (ynode_is_null(n))
		return true;
	if (!is_list(tf, n, what))
		return false;
	*out = xcalloc(ynode_seq_len(n) + 1, sizeof(**out));
	for (size_t i = 0; i < ynode_seq_len(n); i++) {
		char *w = xprintf("%s[%zu]", what, i);

		if (xitem_parse(tf, ynode_seq_item(tf->doc, n, i), w, note, r,
				&(*out)[*nout]))
			(*nout)++;
		else {
			xitem_free(&(*out)[*nout]);
			ok = false;
		}
		free(w);
	}
	return ok;
}

static bool
expect_parse(struct tfile *tf, yaml_node_t *n, const char *what,
	     struct texpect *x)
{
	yaml_node_t *k[4];
	const struct rule *r = NULL;
	bool ok = true;
	char *w;

	memset(x, 0, sizeof(*x));
	if (!is_map(tf, n, what))
		return false;
	x->mark = n->start_mark;
	map_keys(tf, n, what, expect_keys, k);
	if (k[0] == NULL) {
		terr(tf, n, what,
		     "missing at: when to check, from start, such as 10m");
		ok = false;
	} else {
		w = xprintf("%s.at", what);
		ok &= duration(tf, k[0], w, false, &x->at);
		free(w);
	}
	if (k[1] != NULL) {
		const char *s = ynode_scalar(k[1]);

		w = xprintf("%s.rule", what);
		if (s == NULL) {
			terr_expect(tf, k[1], w, "a rule's name");
			ok = false;
		} else if ((r = rules_find(tf->set, s)) == NULL) {
			const char **names = xcalloc(
			    (size_t)rules_count(tf->set) + 1, sizeof(char *));
			const char *hint;

			for (int i = 0; i < rules_count(tf->set); i++)
				names[i] = rules_get(tf->set, i)->name;
			if ((hint = suggest(s, names)) != NULL)
				terr(tf, k[1], w,
				     "no rule named '%s' in rule_files (did "
				     "you mean '%s'?)",
				     s, hint);
			else
				terr(tf, k[1], w,
				     "no rule named '%s' in rule_files", s);
			free(names);
			ok = false;
		} else {
			x->rule = xstrdup(s);
		}
		free(w);
	}
	if (k[2] != NULL) {
		w = xprintf("%s.alerts", what);
		x->alerts_given = true;
		ok &= xitems_parse(tf, k[2], w, false, r, &x->alerts,
				   &x->nalerts);
		free(w);
	}
	if (k[3] != NULL) {
		w = xprintf("%s.notifications", what);
		x->notes_given = true;
		ok &= xitems_parse(tf, k[3], w, true, r, &x->notes, &x->nnotes);
		free(w);
	}
	if (k[2] == NULL && k[3] == NULL) {
		terr(tf, n, what,
		     "nothing to check: give alerts, notifications or both");
		ok = false;
	}
	return ok;
}

static void
test_free(struct rtest *t)
{
	free(t->name);
	free(t->workspace);
	strv_free(t->links, t->nlinks);
	for (int i = 0; i < t->nfields; i++)
		tfields_free(t->fields[i]);
	free(t->fields);
	free(t->events);
	for (int i = 0; i < t->nexpects; i++)
		expect_free(&t->expects[i]);
	free(t->expects);
}

static int
event_cmp(const void *a, const void *b)
{
	const struct tevent *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Stable by time: insertion sort (a test has few expectations). */
static void
expects_sort(struct texpect *v, int n)
{
	for (int i = 1; i < n; i++) {
		struct texpect x = v[i];
		int j = i;

		while (j > 0 && v[j - 1].at > x.at) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
	/* Notifications count from the previous check of the same rule. */
	for (int i = 0; i < n; i++) {
		v[i].since = INT64_MIN;
		for (int j = 0; j < i; j++) {
			bool same = v[i].rule == NULL
					? v[j].rule == NULL
					: v[j].rule != NULL &&
					      strcmp(v[i].rule, v[j].rule) == 0;

			if (same && v[j].at < v[i].at)
				v[i].since = v[j].at;
		}
	}
}

static bool
test_parse(struct tfile *tf, yaml_node_t *n, int index, struct rtest *t)
{
	enum { K_NAME, K_START, K_WS, K_LINKS, K_DEFAULTS, K_EVENTS, K_EXPECT };
	char *what = xprintf("tests[%d]", index), *w;
	struct tfields *defaults = NULL;
	yaml_node_t *k[7];
	bool ok = true;
	size_t seq = 0;

	memset(t, 0, sizeof(*t));
	t->start = DEFAULT_START_MS;
	if (!is_map(tf, n, what)) {
		free(what);
		return false;
	}
	map_keys(tf, n, what, test_keys, k);
	if (k[K_NAME] != NULL && ynode_scalar(k[K_NAME]) != NULL) {
		t->name = xstrdup(ynode_scalar(k[K_NAME]));
	} else {
		if (k[K_NAME] != NULL) {
			w = xprintf("%s.name", what);
			terr_expect(tf, k[K_NAME], w, "a text");
			free(w);
			ok = false;
		}
		t->name = xstrdup(what);
	}
	if (k[K_START] != NULL) {
		const char *s = ynode_scalar(k[K_START]);

		if (s == NULL || !parse_time(s, &t->start)) {
			w = xprintf("%s.start", what);
			terr_expect(tf, k[K_START], w,
				    "a time such as 2026-03-28T00:00:00Z");
			free(w);
			ok = false;
		}
	}
	if (k[K_WS] != NULL) {
		const char *s = ynode_scalar(k[K_WS]);

		if (s == NULL || !slug_valid(s)) {
			w = xprintf("%s.workspace", what);
			terr_expect(tf, k[K_WS], w, "a workspace slug");
			free(w);
			ok = false;
		} else {
			t->workspace = xstrdup(s);
		}
	} else if (tf->only_ws != NULL) {
		t->workspace = xstrdup(tf->only_ws);
	} else {
		terr(tf, n, what,
		     "missing workspace: the rules name %s, so say which "
		     "one the events are of",
		     tf->workspaces[0] != '\0' ? tf->workspaces
					       : "no workspace but \"*\"");
		ok = false;
	}
	if (k[K_LINKS] != NULL) {
		w = xprintf("%s.links", what);
		t->links_given = true;
		ok &= texts(tf, k[K_LINKS], w, &t->links, &t->nlinks);
		free(w);
	}
	w = xprintf("%s.event_defaults", what);
	defaults = defaults_parse(tf, k[K_DEFAULTS], w, tf->defaults);
	ok &= defaults != NULL;
	free(w);
	if (defaults != NULL && k[K_EVENTS] != NULL &&
	    !ynode_is_null(k[K_EVENTS])) {
		w = xprintf("%s.events", what);
		if (is_list(tf, k[K_EVENTS], w)) {
			for (size_t i = 0; i < ynode_seq_len(k[K_EVENTS]);
			     i++) {
				char *wi = xprintf("%s[%zu]", w, i);

				ok &= event_parse(
				    tf, t, defaults,
				    ynode_seq_item(tf->doc, k[K_EVENTS], i), wi,
				    &seq);
				free(wi);
			}
		} else {
			ok = false;
		}
		free(w);
	}
	tfields_free(defaults);
	w = xprintf("%s.expect", what);
	if (k[K_EXPECT] == NULL || ynode_is_null(k[K_EXPECT]) ||
	    (k[K_EXPECT]->type == YAML_SEQUENCE_NODE &&
	     ynode_seq_len(k[K_EXPECT]) == 0)) {
		terr(tf, k[K_EXPECT] != NULL ? k[K_EXPECT] : n, what,
		     "missing expect: a test checks alerts or notifications "
		     "at one time or more");
		ok = false;
	} else if (is_list(tf, k[K_EXPECT], w)) {
		t->expects = xcalloc(ynode_seq_len(k[K_EXPECT]) + 1,
				     sizeof(*t->expects));
		for (size_t i = 0; i < ynode_seq_len(k[K_EXPECT]); i++) {
			char *wi = xprintf("%s[%zu]", w, i);

			if (expect_parse(
				tf, ynode_seq_item(tf->doc, k[K_EXPECT], i), wi,
				&t->expects[t->nexpects]))
				t->nexpects++;
			else {
				expect_free(&t->expects[t->nexpects]);
				ok = false;
			}
			free(wi);
		}
	} else {
		ok = false;
	}
	free(w);
	if (ok) {
		if (t->nevents > 1)
			qsort(t->events, t->nevents, sizeof(*t->events),
			      event_cmp);
		expects_sort(t->expects, t->nexpects);
		if (t->expects[t->nexpects - 1].at / tf->interval > MAX_TICKS) {
			terr(tf, n, what,
			     "more than %d evaluations: a longer "
			     "evaluation_interval, or an earlier last "
			     "expectation",
			     MAX_TICKS);
			ok = false;
		}
	}
	free(what);
	return ok;
}

/* The workspaces the rules name, for a test's default. */
static void
workspaces_of(struct tfile *tf)
{
	struct strlist seen = {0};
	char *list = xstrdup(""), *next;

	for (int i = 0; i < rules_count(tf->set); i++) {
		const char *ws = rules_get(tf->set, i)->workspace;
		bool dup = strcmp(ws, "*") == 0;

		for (size_t j = 0; j < seen.n && !dup; j++)
			dup = strcmp(seen.v[j], ws) == 0;
		if (dup)
			continue;
		strlist_add(&seen, ws);
		next = xprintf("%s%s%s", list, seen.n > 1 ? ", " : "", ws);
		free(list);
		list = next;
	}
	tf->workspaces = list;
	if (seen.n == 1)
		tf->only_ws = xstrdup(seen.v[0]);
	strlist_free(&seen);
}

/* rule_files: every pattern from the test file's folder. */
static bool
rule_files_parse(struct tfile *tf, yaml_node_t *n)
{
	char **pats;
	int npats;
	bool ok;

	if (n == NULL) {
		terr(tf, NULL, NULL,
		     "missing rule_files: the rule files under test");
		return false;
	}
	if (!(ok = texts(tf, n, "rule_files", &pats, &npats))) {
		strv_free(pats, npats);
		return false;
	}
	if (npats == 0) {
		terr(tf, n, "rule_files", "expected one rule file or more");
		ok = false;
	}
	tf->rule_paths = xcalloc(1, sizeof(char *));
	for (int i = 0; i < npats; i++) {
		char *path = rules_path_resolve(tf->path, pats[i]);
		yaml_node_t *at = n->type == YAML_SEQUENCE_NODE
				      ? ynode_seq_item(tf->doc, n, (size_t)i)
				      : n;
		char *w = xprintf("rule_files[%d]", i);
		struct stat st;
		glob_t g;
		int rc;

		if (strpbrk(pats[i], "*?[") == NULL) {
			if (stat(path, &st) != 0) {
				terr(tf, at, w, "cannot read %s: %s", path,
				     strerror(errno));
				ok = false;
			} else {
				tf->rule_paths =
				    xrealloc(tf->rule_paths,
					     sizeof(char *) *
						 (size_t)(tf->nrule_paths + 2));
				tf->rule_paths[tf->nrule_paths++] = path;
				path = NULL;
			}
		} else if ((rc = glob(path, 0, NULL, &g)) != 0) {
			if (rc == GLOB_NOSPACE)
				fatal("rules test: out of memory");
			terr(tf, at, w, "%s matches no file", path);
			ok = false;
		} else {
			for (size_t j = 0; j < g.gl_pathc; j++) {
				tf->rule_paths =
				    xrealloc(tf->rule_paths,
					     sizeof(char *) *
						 (size_t)(tf->nrule_paths + 2));
				tf->rule_paths[tf->nrule_paths++] =
				    xstrdup(g.gl_pathv[j]);
			}
			globfree(&g);
		}
		free(path);
		free(w);
	}
	strv_free(pats, npats);
	return ok;
}

void
tfile_free(struct tfile *tf)
{
	strlist_free(&tf->errs);
	strv_free(tf->rule_paths, tf->nrule_paths);
	free(tf->only_ws);
	free(tf->workspaces);
	tfields_free(tf->defaults);
	for (int i = 0; i < tf->ntests; i++)
		test_free(&tf->tests[i]);
	free(tf->tests);
}

/* The document's top level; false with errors in tf->errs. */
static bool
tfile_walk(struct tfile *tf, yaml_node_t *root)
{
	enum { K_RULES, K_INTERVAL, K_DEFAULTS, K_TESTS };
	struct strlist rerrs = {0};
	struct rule_set *set;
	yaml_node_t *k[4];
	bool ok = true;

	if (root->type != YAML_MAPPING_NODE) {
		terr_expect(tf, root, NULL,
			    "a mapping with rule_files: and tests: at the "
			    "top level");
		return false;
	}
	map_keys(tf, root, NULL, top_keys, k);
	if (!rule_files_parse(tf, k[K_RULES]))
		return false;
	set = rules_load(tf->rule_paths, tf->nrule_paths, NULL, 0, &rerrs);
	if (set == NULL) {
		/* Their own positions, in the rule files. */
		for (size_t i = 0; i < rerrs.n; i++)
			strlist_add(&tf->errs, rerrs.v[i]);
		strlist_free(&rerrs);
		return false;
	}
	strlist_free(&rerrs);
	tf->set = set;
	workspaces_of(tf);
	tf->interval = DEFAULT_INTERVAL;
	if (k[K_INTERVAL] != NULL &&
	    (!duration(tf, k[K_INTERVAL], "evaluation_interval", false,
		       &tf->interval) ||
	     tf->interval <= 0)) {
		if (tf->interval <= 0)
			terr(tf, k[K_INTERVAL], "evaluation_interval",
			     "must be more than 0");
		tf->interval = DEFAULT_INTERVAL;
		ok = false;
	}
	tf->defaults =
	    defaults_parse(tf, k[K_DEFAULTS], "event_defaults", NULL);
	if (tf->defaults == NULL) {
		tf->defaults = tfields_new(NULL);
		ok = false;
	}
	if (k[K_TESTS] == NULL || ynode_is_null(k[K_TESTS])) {
		terr(tf, k[K_TESTS] != NULL ? k[K_TESTS] : root, NULL,
		     "missing tests: a list of tests");
		ok = false;
	} else if (is_list(tf, k[K_TESTS], "tests")) {
		tf->tests =
		    xcalloc(ynode_seq_len(k[K_TESTS]) + 1, sizeof(*tf->tests));
		for (size_t i = 0; i < ynode_seq_len(k[K_TESTS]); i++) {
			if (test_parse(tf,
				       ynode_seq_item(tf->doc, k[K_TESTS], i),
				       (int)i, &tf->tests[tf->ntests]))
				tf->ntests++;
			else {
				test_free(&tf->tests[tf->ntests]);
				ok = false;
			}
		}
	} else {
		ok = false;
	}
	tf->set = NULL;
	rules_set_free(set);
	return ok && tf->errs.n == 0;
}

/* Reads and checks a test file; false with every error in tf->errs. */
bool
tfile_load(struct tfile *tf, const char *path)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root, *more;
	bool ok = false;
	char *text;
	size_t len;

	memset(tf, 0, sizeof(*tf));
	tf->path = path;
	if (read_file_max(path, TEST_MAX_BYTES, &text, &len) != 0) {
		strlist_addf(&tf->errs, "%s: cannot read: %s", path,
			     strerror(errno));
		return false;
	}
	if (!yaml_parser_initialize(&parser))
		fatal("rules test: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		ynode_syntax_error(&tf->errs, tf->path, &parser, text, len);
		goto out;
	}
	tf->doc = &doc;
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		terr(tf, NULL, NULL, "empty: expected rule_files: and tests:");
	} else {
		ok = tfile_walk(tf, root);
		if (!yaml_parser_load(&parser, &extra)) {
			ynode_syntax_error(&tf->errs, tf->path, &parser, text,
					   len);
			ok = false;
		} else {
			if ((more = yaml_document_get_root_node(&extra)) !=
			    NULL) {
				terr(tf, more, NULL,
				     "a second YAML document: the file must "
				     "hold one");
				ok = false;
			}
			yaml_document_delete(&extra);
		}
	}
	yaml_document_delete(&doc);
	tf->doc = NULL;
out:
	yaml_parser_delete(&parser);
	free(text);
	errs_sort(tf);
	return ok;
}
