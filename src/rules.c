/*
 * rules.c - alert rule files: the table of rule kinds, the walk over the
 * YAML document libyaml loads, every check of a rule's fields, templates
 * and time intervals, and the glob expansion of rules.paths.  The format
 * is described in rules.h.
 *
 * Calls filter.c (match, ratio numerators, field names), util (durations,
 * levenshtein, UUIDs) and reads the configuration's webhooks for endpoint
 * names; called by main (linkpulsed -t, start-up, reload), ctl.c (rules
 * check) and the unit tests.  Does no evaluation.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "filter.h"
#include "eval.h"
#include "rules.h"
#include "rules_parse.h"
#include "ynode.h"

/* A rule file larger than this is a mistake. */
#define RULES_MAX_BYTES (4 * 1024 * 1024)
/* Values quoted in error messages are cut to this many bytes. */
#define NAME_MAX_LEN 128

struct rule_set {
	char **endpoints; /* NULL: names are not checked */
	int nendpoints;
	bool check_endpoints;
	struct rule **v;
	int n, cap;
	int nfiles;
};

/* One text being parsed. */
struct rules_file {
	struct rule_set *set;
	const char *file;
	const char *text; /* all of it, for the rules' digests */
	size_t len;
	yaml_document_t *doc;
	struct strlist *errs;
	int nerrs;
	struct rule **v; /* its rules, added to the set if all is well */
	int n;
	/* Every name given so far, even by a rule with other errors. */
	char **names;
	int *name_lines;
	int nnames;
};

static const char *const common_fields[] = {
    "name",
    "workspace",
    "kind",
    "match",
    "group_by",
    "for",
    "keep_firing_for",
    "severity",
    "labels",
    "annotations",
    "notify",
    "send_resolved",
    "repeat",
    "active_intervals",
    "mute_intervals",
    NULL,
};

static const char *const severity_names[] = {"info", "warning", "critical",
					     NULL};

const char *
rule_severity_name(enum rule_severity s)
{
	return severity_names[s];
}

static bool
in_list(const char *const *list, const char *s)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

/* The nearest of the candidates, if near enough to be a typo. */
static const char *
suggest(const char *s, const char *const *lists[], size_t nlists)
{
	size_t best = SIZE_MAX, d, len = strlen(s);
	const char *found = NULL;

	for (size_t i = 0; i < nlists; i++)
		for (const char *const *c = lists[i]; c != NULL && *c != NULL;
		     c++) {
			d = levenshtein(s, *c);
			if (d < best && (d <= 2 || d * 3 <= len)) {
				best = d;
				found = *c;
			}
		}
	return found;
}

static const char *
kind_suggest(const char *s)
{
	const char **names = xcalloc(nrule_kinds + 1, sizeof(char *));
	const char *const *lists[1] = {names};
	const char *hint;

	for (size_t i = 0; i < nrule_kinds; i++)
		names[i] = rule_kinds[i].name;
	hint = suggest(s, lists, 1);
	free(names);
	return hint;
}

/* ---- nodes ---- */

static bool
bool_parse(const char *s, bool *out)
{
	int b = ynode_bool(s);

	if (b < 0)
		return false;
	*out = b;
	return true;
}

static bool
int_parse(const char *s, int64_t *out)
{
	long long v;

	if (!ynode_int(s, &v))
		return false;
	*out = v;
	return true;
}

/* A plain decimal number ("0.1", "2", "1e3"): not inf, nan or hex. */
static bool
number_parse(const char *s, double *out)
{
	char *end;

	if (*s == '\0' || s[strspn(s, "0123456789.+-eE")] != '\0')
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return end != s && *end == '\0' && errno == 0 && isfinite(*out);
}

/* Label and annotation names, as Prometheus has them. */
static bool
ident_ok(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (s++; *s != '\0'; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

static bool
rule_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	return s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
			   "YZ0123456789_.:-")] == '\0';
}

/* ---- errors ---- */

static void ferr(struct rules_file *, const yaml_mark_t *, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* One error of the file, at m (NULL: the file as a whole). */
static void
ferr(struct rules_file *f, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ynode_verror(f->errs, f->file, m, NULL, fmt, ap);
	va_end(ap);
	f->nerrs++;
}

/*
 * An error about field of the rule (NULL: the rule itself), at node n
 * (NULL: the rule's mapping).  A kind's own field is written KIND.FIELD.
 */
void
rerr(struct rule_parse *rp, const yaml_node_t *n, const char *field,
     const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvprintf(fmt, ap);
	va_end(ap);
	if (n == NULL)
		n = rp->map;
	if (field == NULL)
		ferr(rp->f, &n->start_mark, "rules[%d]: %s", rp->index, msg);
	else if (rp->kind != NULL && in_list(rp->kind->fields, field) &&
		 !in_list(common_fields, field))
		ferr(rp->f, &n->start_mark, "rules[%d].%s.%s: %s", rp->index,
		     rp->kind->name, field, msg);
	else
		ferr(rp->f, &n->start_mark, "rules[%d].%s: %s", rp->index,
		     field, msg);
	free(msg);
}

/* "expected EXPECT, got GOT" about n. */
void
rerr_expect(struct rule_parse *rp, const yaml_node_t *n, const char *field,
	    const char *expect)
{
	char *got = ynode_describe(n);

	rerr(rp, n, field, "expected %s, got %s", expect, got);
	free(got);
}

/* ---- the rule's fields, for the common parsers and the kinds ---- */

yaml_node_t *
rp_get(struct rule_parse *rp, const char *name)
{
	for (yaml_node_pair_t *q = rp->map->data.mapping.pairs.start;
	     q < rp->map->data.mapping.pairs.top; q++) {
		yaml_node_t *k = yaml_document_get_node(rp->f->doc, q->key);
		const char *s = ynode_scalar(k);

		if (s != NULL && strcmp(s, name) == 0)
			return yaml_document_get_node(rp->f->doc, q->value);
	}
	return NULL;
}

yaml_node_t *
rp_item(struct rule_parse *rp, const yaml_node_t *seq, size_t i)
{
	return ynode_seq_item(rp->f->doc, seq, i);
}

/*
 * The node of a field, NULL when absent (or written empty).  A required
 * field that is absent is reported, with what it expects.
 */
yaml_node_t *
rp_need(struct rule_parse *rp, const char *name, bool required,
	const char *expect, bool *ok)
{
	yaml_node_t *n = rp_get(rp, name);

	if (n != NULL && ynode_is_null(n))
		n = NULL;
	if (n == NULL && required) {
		if (rp->kind != NULL && in_list(rp->kind->fields, name) &&
		    !in_list(common_fields, name))
			rerr(rp, NULL, name, "missing: %s rules need %s",
			     rp->kind->name, expect);
		else
			rerr(rp, NULL, name, "missing: expected %s", expect);
		*ok = false;
	}
	return n;
}

#define DURATION_EXPECT "a duration such as 5m"

static bool
duration_node(struct rule_parse *rp, const yaml_node_t *n, const char *field,
	      int64_t min, int64_t *out)
{
	const char *s = ynode_scalar(n);
	char buf[32], *got;
	int64_t ms;

	if (s == NULL || parse_duration_ms(s, &ms) != 0) {
		rerr_expect(rp, n, field, DURATION_EXPECT);
		return false;
	}
	if (ms < min) {
		got = ynode_describe(n);
		if (min == 1) {
			rerr(rp, n, field,
			     "expected a duration greater than 0, got %s", got);
		} else {
			format_duration(min, buf, sizeof buf);
			rerr(rp, n, field,
			     "expected a duration of at least %s, got %s", buf,
			     got);
		}
		free(got);
		return false;
	}
	*out = ms;
	return true;
}

/* A duration field of at least min ms; absent leaves *out alone. */
bool
rp_duration(struct rule_parse *rp, const char *name, bool required, int64_t min,
	    int64_t *out)
{
	bool ok = true;
	yaml_node_t *n = rp_need(rp, name, required, DURATION_EXPECT, &ok);

	if (n != NULL)
		ok = duration_node(rp, n, name, min, out);
	return ok;
}

bool
rp_int(struct rule_parse *rp, const char *name, bool required, int64_t min,
       int64_t max, int64_t *out)
{
	char *expect =
	    max == INT64_MAX
		? xprintf("an integer of at least %lld", (long long)min)
		: xprintf("an integer from %lld to %lld", (long long)min,
			  (long long)max);
	bool ok = true;
	yaml_node_t *n = rp_need(rp, name, required, expect, &ok);
	const char *s;
	int64_t v;

	if (n != NULL) {
		if ((s = ynode_scalar(n)) == NULL || !int_parse(s, &v) ||
		    v < min || v > max) {
			rerr_expect(rp, n, name, expect);
			ok = false;
		} else {
			*out = v;
		}
	}
	free(expect);
	return ok;
}

/* A number within [min, max], or (min, max] when min_open. */
bool
number_node(struct rule_parse *rp, const yaml_node_t *n, const char *field,
	    double min, bool min_open, double max, const char *expect,
	    double *out)
{
	const char *s = ynode_scalar(n);
	double v;

	if (s == NULL || !number_parse(s, &v) || v < min ||
	    (min_open && v == min) || v > max) {
		rerr_expect(rp, n, field, expect);
		return false;
	}
	*out = v;
	return true;
}

bool
rp_number(struct rule_parse *rp, const char *name, bool required, double min,
	  bool min_open, double max, const char *expect, double *out)
{
	bool ok = true;
	yaml_node_t *n = rp_need(rp, name, required, expect, &ok);

	if (n != NULL)
		ok = number_node(rp, n, name, min, min_open, max, expect, out);
	return ok;
}

/* "a, b or c", for messages.  Caller frees. */
static char *
choices_text(const char *const *choices)
{
	char *out = xstrdup(""), *next;
	int n = 0;

	while (choices[n] != NULL)
		n++;
	for (int i = 0; i < n; i++) {
		next = xprintf("%s%s%s", out,
			       i == 0	    ? ""
			       : i == n - 1 ? " or "
					    : ", ",
			       choices[i]);
		free(out);
		out = next;
	}
	return out;
}

/* One of choices (NULL-terminated): its index in *out. */
bool
rp_enum(struct rule_parse *rp, const char *name, bool required,
	const char *const *choices, int *out)
{
	char *expect = choices_text(choices);
	bool ok = true;
	yaml_node_t *n = rp_need(rp, name, required, expect, &ok);
	const char *s;
	int i;

	if (n != NULL) {
		s = ynode_scalar(n);
		for (i = 0; s != NULL && choices[i] != NULL; i++)
			if (strcmp(choices[i], s) == 0)
				break;
		if (s == NULL || choices[i] == NULL) {
			rerr_expect(rp, n, name, expect);
			ok = false;
		} else {
			*out = i;
		}
	}
	free(expect);
	return ok;
}

/*
 * n names a field of events that has one value per event (and a number,
 * when numeric): not link.tag (a link has several) nor properties.KEY.
 */
static bool
event_field_ok(struct rule_parse *rp, const yaml_node_t *n, const char *field,
	       bool numeric)
{
	const char *s = ynode_scalar(n), *hint;
	enum filter_field_kind kind;
	bool ok = false;
	char *got;

	if (s == NULL) {
		rerr_expect(rp, n, field, "the name of an event field");
		return false;
	}
	got = ynode_describe(n);
	kind = filter_field_kind(s);
	if (kind == FILTER_FIELD_MANY)
		rerr(rp, n, field,
		     "event field %s has no single value per event: it cannot "
		     "be used here",
		     got);
	else if (kind == FILTER_FIELD_UNKNOWN &&
		 (hint = filter_field_suggest(s)) != NULL)
		rerr(rp, n, field,
		     "unknown event field %s (did you mean '%s'?)", got, hint);
	else if (kind == FILTER_FIELD_UNKNOWN)
		rerr(rp, n, field, "unknown event field %s (known: %s)", got,
		     filter_field_list());
	else if (numeric && kind != FILTER_FIELD_NUMBER)
		rerr(rp, n, field,
		     "expected a numeric event field (such as "
		     "redirect_latency_ms or visitor.lead_score), got %s",
		     got);
	else
		ok = true;
	free(got);
	return ok;
}

static bool
event_field_node(struct rule_parse *rp, const yaml_node_t *n, const char *field,
		 bool numeric, char **out)
{
	if (!event_field_ok(rp, n, field, numeric))
		return false;
	*out = xstrdup(ynode_scalar(n));
	return true;
}

bool
rp_event_field(struct rule_parse *rp, const char *name, bool required,
	       bool numeric, char **out)
{
	bool ok = true;
	yaml_node_t *n =
	    rp_need(rp, name, required, "the name of an event field", &ok);

	if (n != NULL)
		ok = event_field_node(rp, n, name, numeric, out);
	return ok;
}

/* A filter (filter.h) at node n; errors are counted as ours. */
bool
filter_node(struct rule_parse *rp, yaml_node_t *n, const char *field,
	    struct filter **out)
{
	size_t before = rp->f->errs->n;
	char *what;

	if (n->type != YAML_MAPPING_NODE) {
		rerr_expect(rp, n, field,
			    "a filter (a mapping of fields to conditions)");
		return false;
	}
	if (rp->kind != NULL && in_list(rp->kind->fields, field) &&
	    !in_list(common_fields, field))
		what = xprintf("rules[%d].%s.%s", rp->index, rp->kind->name,
			       field);
	else
		what = xprintf("rules[%d].%s", rp->index, field);
	*out = filter_parse(rp->f->doc, n, rp->f->file, what, rp->f->errs);
	free(what);
	if (*out == NULL) {
		/* It said why; if it did not, say something. */
		if (rp->f->errs->n == before)
			rerr(rp, n, field, "not a valid filter");
		rp->f->nerrs++;
		return false;
	}
	return true;
}

/* ---- templates ---- */

static const struct {
	const char *name;
	enum rule_ref ref;
} template_refs[] = {
    {"value", RULE_REF_VALUE},	       {"threshold", RULE_REF_THRESHOLD},
    {"window", RULE_REF_WINDOW},       {"rule", RULE_REF_RULE},
    {"workspace", RULE_REF_WORKSPACE}, {"kind", RULE_REF_KIND},
    {"severity", RULE_REF_SEVERITY},   {"group", RULE_REF_GROUP},
};

/*
 * Where byte off of scalar n's value is written: exact for text on one
 * line, plain or quoted without escapes before it; else where n starts.
 */
static yaml_mark_t
scalar_mark(const yaml_node_t *n, size_t off)
{
	const char *s = (const char *)n->data.scalar.value;
	yaml_mark_t m = n->start_mark;
	size_t quote = 0;

	switch (n->data.scalar.style) {
	case YAML_PLAIN_SCALAR_STYLE:
		break;
	case YAML_SINGLE_QUOTED_SCALAR_STYLE:
		if (memchr(s, '\'', off) != NULL)
			return m;
		quote = 1;
		break;
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
		if (memchr(s, '\\', off) != NULL || memchr(s, '"', off) != NULL)
			return m;
		quote = 1;
		break;
	default:
		return m;
	}
	if (memchr(s, '\n', off) != NULL ||
	    n->start_mark.line != n->end_mark.line)
		return m;
	m.column += quote + off;
	return m;
}

static void
tmpl_add(struct rule_annotation *a, enum rule_ref ref, const char *text,
	 size_t len)
{
	a->parts =
	    xrealloc(a->parts, sizeof(*a->parts) * (size_t)(a->nparts + 1));
	a->parts[a->nparts].ref = ref;
	a->parts[a->nparts].text = text != NULL ? xstrndup(text, len) : NULL;
	a->nparts++;
}

/* Whether name is a label of rule r: its own or a group_by field. */
static bool
label_known(const struct rule *r, const char *name)
{
	for (int i = 0; i < r->nlabels; i++)
		if (strcmp(r->label_names[i], name) == 0)
			return true;
	for (int i = 0; i < r->ngroup_by; i++)
		if (strcmp(r->group_by[i], name) == 0)
			return true;
	return false;
}

static char *
labels_text(const struct rule *r)
{
	char *out = xstrdup(""), *next;
	int n = 0;

	for (int i = 0; i < r->nlabels + r->ngroup_by; i++, n++) {
		next = xprintf("%s%s%s", out, n > 0 ? ", " : "",
			       i < r->nlabels ? r->label_names[i]
					      : r->group_by[i - r->nlabels]);
		free(out);
		out = next;
	}
	return out;
}

/*
 * {{ event.FIELD }}: a field of the event that fired the alert, for the
 * kinds that fire on an event.
 */
static bool
event_ref(struct rule_parse *rp, const yaml_mark_t *m, const char *path,
	  struct rule_annotation *a, const char *ref)
{
	const char *name = ref + 6, *hint;
	const struct rule_kind *k = rp->kind;

	if (filter_field_kind(name) == FILTER_FIELD_UNKNOWN) {
		hint = filter_field_suggest(name);
		ferr(rp->f, m,
		     "rules[%d].%s: unknown event field '%s' in {{ %s }}%s%s%s",
		     rp->index, path, name, ref, hint ? " (did you mean '" : "",
		     hint ? hint : "", hint ? "'?)" : "");
		return false;
	}
	if (k != NULL && !eval_kind_per_event(k->eval)) {
		ferr(rp->f, m,
		     "rules[%d].%s: {{ %s }}: a %s alert stands for many "
		     "events; event fields are known to the kinds that fire "
		     "on an event (trigger, new_value)",
		     rp->index, path, ref, k->name);
		return false;
	}
	tmpl_add(a, RULE_REF_EVENT, name, strlen(name));
	return true;
}

/* Parses annotation a's source (scalar n) into its parts. */
static bool
template_parse(struct rule_parse *rp, const yaml_node_t *n,
	       struct rule_annotation *a)
{
	const char *s = a->source, *open, *close, *b, *e;
	char *path = xprintf("annotations.%s", a->name), *ref, *known;
	bool ok = true;
	yaml_mark_t m;
	size_t i;

	while (*s != '\0') {
		if ((open = strstr(s, "{{")) == NULL) {
			tmpl_add(a, RULE_REF_TEXT, s, strlen(s));
			break;
		}
		if (open > s)
			tmpl_add(a, RULE_REF_TEXT, s, (size_t)(open - s));
		m = scalar_mark(n, (size_t)(open - a->source));
		if ((close = strstr(open + 2, "}}")) == NULL) {
			ferr(rp->f, &m,
			     "rules[%d].%s: '{{' without its '}}' (write "
			     "references as {{ value }})",
			     rp->index, path);
			ok = false;
			break;
		}
		for (b = open + 2; b < close && isspace((unsigned char)*b); b++)
			;
		for (e = close; e > b && isspace((unsigned char)e[-1]); e--)
			;
		ref = xstrndup(b, (size_t)(e - b));
		s = close + 2;
		if (*ref == '\0') {
			ferr(rp->f, &m,
			     "rules[%d].%s: an empty reference {{ }}",
			     rp->index, path);
			ok = false;
		} else if (strncmp(ref, "labels.", 7) == 0) {
			if (label_known(rp->rule, ref + 7)) {
				tmpl_add(a, RULE_REF_LABEL, ref + 7,
					 strlen(ref + 7));
			} else {
				known = labels_text(rp->rule);
				ferr(rp->f, &m,
				     "rules[%d].%s: unknown label '%s' in {{ "
				     "%s }} (%s%s)",
				     rp->index, path, ref + 7, ref,
				     *known != '\0'
					 ? "the rule's labels and group_by "
					   "fields: "
					 : "the rule has no labels and no "
					   "group_by",
				     known);
				free(known);
				ok = false;
			}
		} else if (strncmp(ref, "event.", 6) == 0) {
			ok &= event_ref(rp, &m, path, a, ref);
		} else {
			for (i = 0; i < nitems(template_refs); i++)
				if (strcmp(template_refs[i].name, ref) == 0)
					break;
			if (i < nitems(template_refs)) {
				tmpl_add(a, template_refs[i].ref, NULL, 0);
			} else {
				ferr(rp->f, &m,
				     "rules[%d].%s: unknown reference {{ %s "
				     "}} (expected labels.NAME, value, "
				     "threshold, window, rule, workspace, "
				     "kind, severity, group or event.FIELD)",
				     rp->index, path, ref);
				ok = false;
			}
		}
		free(ref);
	}
	free(path);
	return ok;
}

/* ---- the common fields ---- */

static void
strv_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
intervals_free(struct rule_interval *v, int n)
{
	for (int i = 0; i < n; i++) {
		free(v[i].timezone);
		free(v[i].times);
	}
	free(v);
}

static void
rule_free(struct rule *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->workspace);
	if (r->kind != NULL && r->params != NULL)
		r->kind->free(r->params);
	filter_free(r->match);
	strv_free(r->group_by, r->ngroup_by);
	strv_free(r->label_names, r->nlabels);
	strv_free(r->label_values, r->nlabels);
	for (int i = 0; i < r->nannotations; i++) {
		struct rule_annotation *a = &r->annotations[i];

		free(a->name);
		free(a->source);
		for (int j = 0; j < a->nparts; j++)
			free(a->parts[j].text);
		free(a->parts);
	}
	free(r->annotations);
	strv_free(r->notify, r->nnotify);
	intervals_free(r->active, r->nactive);
	intervals_free(r->mute, r->nmute);
	free(r->file);
	free(r);
}

/*
 * A list of strings, or one string standing for a list of one: each item
 * checked by item (which reports its own errors).  Duplicates are errors.
 */
static bool
string_list(struct rule_parse *rp, yaml_node_t *n, const char *field,
	    const char *expect,
	    bool (*item)(struct rule_parse *, const yaml_node_t *,
			 const char *),
	    char ***out, int *nout)
{
	size_t count = n->type == YAML_SEQUENCE_NODE ? ynode_seq_len(n) : 1;
	bool ok = true;
	const char *s;

	if (n->type == YAML_MAPPING_NODE) {
		rerr_expect(rp, n, field, expect);
		return false;
	}
	*out = xcalloc(count, sizeof(char *));
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *e = n->type == YAML_SEQUENCE_NODE
				     ? ynode_seq_item(rp->f->doc, n, i)
				     : n;

		if ((s = ynode_scalar(e)) == NULL || *s == '\0') {
			rerr_expect(rp, e, field, expect);
			ok = false;
			continue;
		}
		if (!item(rp, e, s)) {
			ok = false;
			continue;
		}
		for (int j = 0; j < *nout; j++)
			if (strcmp((*out)[j], s) == 0) {
				rerr(rp, e, field, "'%s' is listed twice", s);
				ok = false;
			}
		(*out)[(*nout)++] = xstrdup(s);
	}
	return ok;
}

static bool
group_by_item(struct rule_parse *rp, const yaml_node_t *e, const char *s)
{
	/* A link's tags: an event counts in the group of each (listing
	 * it twice is an error, as for any field). */
	if (strcmp(s, RULE_TAG_FIELD) == 0)
		return true;
	return event_field_ok(rp, e, "group_by", false);
}

static bool
notify_item(struct rule_parse *rp, const yaml_node_t *e, const char *s)
{
	const struct rule_set *set = rp->f->set;
	const char *hint;
	size_t best = SIZE_MAX, d;

	if (uuid_valid(s) || !set->check_endpoints)
		return true;
	hint = NULL;
	for (int i = 0; i < set->nendpoints; i++) {
		if (strcmp(set->endpoints[i], s) == 0)
			return true;
		d = levenshtein(s, set->endpoints[i]);
		if (d < best && (d <= 2 || d * 3 <= strlen(s))) {
			best = d;
			hint = set->endpoints[i];
		}
	}
	if (hint != NULL)
		rerr(rp, e, "notify",
		     "unknown endpoint '%s' (did you mean '%s'?)", s, hint);
	else if (set->nendpoints == 0)
		rerr(rp, e, "notify",
		     "unknown endpoint '%s' (the configuration declares no "
		     "webhooks; name one of them, or give an endpoint's id)",
		     s);
	else
		rerr(rp, e, "notify",
		     "unknown endpoint '%s' (not in the configuration's "
		     "webhooks; give its name there, or an endpoint's id)",
		     s);
	return false;
}

/* A mapping of names to scalars: labels, annotations. */
static bool
string_map(struct rule_parse *rp, yaml_node_t *n, const char *field,
	   char ***names, char ***values, int *count)
{
	size_t cap;
	bool ok = true;
	const char *k, *v;
	char *got;

	if (n->type != YAML_MAPPING_NODE) {
		rerr_expect(rp, n, field, "a mapping of names to text");
		return false;
	}
	cap = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	*names = xcalloc(cap + 1, sizeof(char *));
	*values = xcalloc(cap + 1, sizeof(char *));
	for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
	     q < n->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = yaml_document_get_node(rp->f->doc, q->key);
		yaml_node_t *vn = yaml_document_get_node(rp->f->doc, q->value);

		if ((k = ynode_scalar(kn)) == NULL || !ident_ok(k)) {
			got = ynode_describe(kn);
			rerr(rp, kn, field,
			     "expected a name of letters, digits and _ not "
			     "starting with a digit, got %s",
			     got);
			free(got);
			ok = false;
			continue;
		}
		for (int j = 0; j < *count; j++)
			if (strcmp((*names)[j], k) == 0) {
				rerr(rp, kn, field, "'%s' is given twice", k);
				ok = false;
			}
		if ((v = ynode_scalar(vn)) == NULL) {
			char *path = xprintf("%s.%s", field, k);

			rerr_expect(rp, vn, path, "text");
			free(path);
			ok = false;
			continue;
		}
		(*names)[*count] = xstrdup(k);
		(*values)[(*count)++] = xstrdup(v);
	}
	return ok;
}

static bool
labels_parse(struct rule_parse *rp, yaml_node_t *n)
{
	struct rule *r = rp->rule;
	bool ok = string_map(rp, n, "labels", &r->label_names, &r->label_values,
			     &r->nlabels);

	for (int i = 0; i < r->nlabels; i++)
		for (int j = 0; j < r->ngroup_by; j++)
			if (strcmp(r->label_names[i], r->group_by[j]) == 0) {
				rerr(rp, n, "labels",
				     "'%s' is a group_by field: its value "
				     "comes from the events",
				     r->label_names[i]);
				ok = false;
			}
	return ok;
}

static bool
annotations_parse(struct rule_parse *rp, yaml_node_t *n)
{
	struct rule *r = rp->rule;
	char **names = NULL, **values = NULL;
	int count = 0, k = 0;
	bool ok = string_map(rp, n, "annotations", &names, &values, &count);

	r->annotations = xcalloc((size_t)count + 1, sizeof(*r->annotations));
	for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
	     n->type == YAML_MAPPING_NODE && q < n->data.mapping.pairs.top &&
	     k < count;
	     q++) {
		yaml_node_t *kn = yaml_document_get_node(rp->f->doc, q->key);
		yaml_node_t *vn = yaml_document_get_node(rp->f->doc, q->value);
		struct rule_annotation *a;

		/* string_map kept the good pairs, in order. */
		if (ynode_scalar(kn) == NULL ||
		    strcmp(ynode_scalar(kn), names[k]) != 0 ||
		    ynode_scalar(vn) == NULL)
			continue;
		a = &r->annotations[r->nannotations++];
		a->name = names[k];
		a->source = values[k];
		names[k] = values[k] = NULL;
		k++;
		ok &= template_parse(rp, vn, a);
	}
	strv_free(names, count);
	strv_free(values, count);
	return ok;
}

static bool
repeat_parse(struct rule_parse *rp, yaml_node_t *n)
{
	static const char *const fields[] = {"interval", "max_interval",
					     "factor", NULL};
	const char *const *lists[] = {fields};
	struct rule *r = rp->rule;
	yaml_node_t *iv = NULL, *mx = NULL, *fa = NULL;
	const char *hint, *k;
	bool ok = true;

	r->repeat.factor = 1;
	if (n->type == YAML_SCALAR_NODE)
		return duration_node(rp, n, "repeat", 0,
				     &r->repeat.interval_ms);
	if (n->type != YAML_MAPPING_NODE) {
		rerr_expect(rp, n, "repeat",
			    "a duration such as 4h, or a mapping with "
			    "interval, max_interval and factor");
		return false;
	}
	for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
	     q < n->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = yaml_document_get_node(rp->f->doc, q->key);
		yaml_node_t *vn = yaml_document_get_node(rp->f->doc, q->value);
		yaml_node_t **slot = NULL;

		if ((k = ynode_scalar(kn)) != NULL) {
			if (strcmp(k, "interval") == 0)
				slot = &iv;
			else if (strcmp(k, "max_interval") == 0)
				slot = &mx;
			else if (strcmp(k, "factor") == 0)
				slot = &fa;
		}
		if (slot == NULL) {
			hint = k != NULL ? suggest(k, lists, 1) : NULL;
			if (hint != NULL)
				rerr(rp, kn, "repeat",
				     "unknown field '%s' (did you mean "
				     "'%s'?)",
				     k, hint);
			else
				rerr(rp, kn, "repeat",
				     "unknown field '%s' (expected interval, "
				     "max_interval or factor)",
				     k != NULL ? k : "?");
			ok = false;
		} else if (*slot != NULL) {
			rerr(rp, kn, "repeat", "duplicate field '%s'", k);
			ok = false;
		} else {
			*slot = vn;
		}
	}
	if (iv == NULL) {
		rerr(rp, n, "repeat.interval", "missing: expected %s",
		     DURATION_EXPECT);
		ok = false;
	} else {
		ok &= duration_node(rp, iv, "repeat.interval", 1,
				    &r->repeat.interval_ms);
	}
	if (fa != NULL)
		ok &= number_node(rp, fa, "repeat.factor", 1, false, 100,
				  "a number from 1 to 100 such as 2 or 1.5",
				  &r->repeat.factor);
	if (mx != NULL && duration_node(rp, mx, "repeat.max_interval", 1,
					&r->repeat.max_interval_ms)) {
		if (ok && r->repeat.max_interval_ms < r->repeat.interval_ms) {
			rerr(rp, mx, "repeat.max_interval",
			     "expected a duration no shorter than interval");
			ok = false;
		} else if (ok && r->repeat.factor == 1) {
			rerr(rp, mx, "repeat.max_interval",
			     "only meaningful with a factor above 1");
			ok = false;
		}
	} else if (mx != NULL) {
		ok = false;
	}
	return ok;
}

static const char *const weekday_names[] = {"monday",	"tuesday", "wednesday",
					    "thursday", "friday",  "saturday",
					    "sunday",	NULL};

static int
weekday_index(const char *s, size_t len)
{
	for (int i = 0; weekday_names[i] != NULL; i++)
		if (strlen(weekday_names[i]) == len &&
		    strncasecmp(weekday_names[i], s, len) == 0)
			return i;
	return -1;
}

/* "monday" or "monday:friday"; a bit per day in *days. */
static bool
weekdays_item(const char *s, unsigned *days)
{
	const char *colon = strchr(s, ':');
	int a, b;

	if (colon == NULL) {
		if ((a = weekday_index(s, strlen(s))) < 0)
			return false;
		*days |= 1u << a;
		return true;
	}
	a = weekday_index(s, (size_t)(colon - s));
	b = weekday_index(colon + 1, strlen(colon + 1));
	if (a < 0 || b < 0 || b < a)
		return false;
	for (int i = a; i <= b; i++)
		*days |= 1u << i;
	return true;
}

/* "HH:MM" into minutes; 24:00 only when end. */
static bool
clock_parse(const char *s, size_t len, bool end, int *out)
{
	int h, m;

	if (len != 5 || !isdigit((unsigned char)s[0]) ||
	    !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return false;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
		return false;
	*out = h * 60 + m;
	return true;
}

static bool
times_item(const char *s, struct rule_time_range *t)
{
	const char *dash = strchr(s, '-');

	if (dash == NULL ||
	    !clock_parse(s, (size_t)(dash - s), false, &t->start_min) ||
	    !clock_parse(dash + 1, strlen(dash + 1), true, &t->end_min))
		return false;
	return t->start_min < t->end_min;
}

/*
 * An IANA name, as glibc and PostgreSQL read them: a file under TZDIR or
 * /usr/share/zoneinfo.  Names that could leave that folder are refused.
 */
static bool
timezone_ok(const char *tz)
{
	const char *dir = getenv("TZDIR");
	struct stat st;
	char *path;
	bool ok;

	if (*tz == '\0' || *tz == '/' || strstr(tz, "..") != NULL ||
	    tz[strspn(tz, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789/_+-")] != '\0')
		return false;
	path = xprintf(
	    "%s/%s", dir != NULL && *dir != '\0' ? dir : "/usr/share/zoneinfo",
	    tz);
	ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	free(path);
	return ok;
}

static bool
interval_parse(struct rule_parse *rp, yaml_node_t *n, const char *path,
	       struct rule_interval *iv)
{
	static const char *const fields[] = {"timezone", "weekdays", "times",
					     NULL};
	const char *const *lists[] = {fields};
	yaml_node_t *tz = NULL, *wd = NULL, *tm = NULL;
	const char *k, *s, *hint;
	bool ok = true;
	char *sub;

	iv->weekdays = 0x7f;
	if (n->type != YAML_MAPPING_NODE) {
		rerr_expect(rp, n, path,
			    "a mapping with timezone, weekdays and times");
		return false;
	}
	for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
	     q < n->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = yaml_document_get_node(rp->f->doc, q->key);
		yaml_node_t *vn = yaml_document_get_node(rp->f->doc, q->value);
		yaml_node_t **slot = NULL;

		if ((k = ynode_scalar(kn)) != NULL) {
			if (strcmp(k, "timezone") == 0)
				slot = &tz;
			else if (strcmp(k, "weekdays") == 0)
				slot = &wd;
			else if (strcmp(k, "times") == 0)
				slot = &tm;
		}
		if (slot == NULL) {
			hint = k != NULL ? suggest(k, lists, 1) : NULL;
			if (hint != NULL)
				rerr(rp, kn, path,
				     "unknown field '%s' (did you mean "
				     "'%s'?)",
				     k, hint);
			else
				rerr(rp, kn, path,
				     "unknown field '%s' (expected timezone, "
				     "weekdays or times)",
				     k != NULL ? k : "?");
			ok = false;
		} else if (*slot != NULL) {
			rerr(rp, kn, path, "duplicate field '%s'", k);
			ok = false;
		} else {
			*slot = vn;
		}
	}
	if (tz != NULL && !ynode_is_null(tz)) {
		sub = xprintf("%s.timezone", path);
		if ((s = ynode_scalar(tz)) == NULL || !timezone_ok(s)) {
			rerr_expect(rp, tz, sub,
				    "an IANA time zone such as Europe/Paris "
				    "or UTC");
			ok = false;
		} else {
			iv->timezone = xstrdup(s);
		}
		free(sub);
	}
	if (iv->timezone == NULL)
		iv->timezone = xstrdup("UTC");
	if (wd != NULL && !ynode_is_null(wd)) {
		size_t cnt =
		    wd->type == YAML_SEQUENCE_NODE ? ynode_seq_len(wd) : 1;

		sub = xprintf("%s.weekdays", path);
		iv->weekdays = 0;
		if (wd->type == YAML_MAPPING_NODE || cnt == 0) {
			rerr_expect(rp, wd, sub,
				    "a list of days or ranges such as "
				    "[monday:friday, sunday]");
			ok = false;
			cnt = 0;
		}
		for (size_t i = 0; i < cnt; i++) {
			yaml_node_t *e = wd->type == YAML_SEQUENCE_NODE
					     ? ynode_seq_item(rp->f->doc, wd, i)
					     : wd;

			if ((s = ynode_scalar(e)) == NULL ||
			    !weekdays_item(s, &iv->weekdays)) {
				rerr_expect(rp, e, sub,
					    "a day (monday to sunday) or a "
					    "range such as monday:friday");
				ok = false;
			}
		}
		free(sub);
	}
	if (tm != NULL && !ynode_is_null(tm)) {
		size_t cnt =
		    tm->type == YAML_SEQUENCE_NODE ? ynode_seq_len(tm) : 1;

		sub = xprintf("%s.times", path);
		if (tm->type == YAML_MAPPING_NODE) {
			rerr_expect(rp, tm, sub,
				    "a list of ranges such as "
				    "[\"09:00-17:30\"]");
			ok = false;
			cnt = 0;
		}
		iv->times = xcalloc(cnt + 1, sizeof(*iv->times));
		for (size_t i = 0; i < cnt; i++) {
			yaml_node_t *e = tm->type == YAML_SEQUENCE_NODE
					     ? ynode_seq_item(rp->f->doc, tm, i)
					     : tm;

			if ((s = ynode_scalar(e)) == NULL ||
			    !times_item(s, &iv->times[iv->ntimes])) {
				rerr_expect(rp, e, sub,
					    "a range of the day such as "
					    "09:00-17:30 (start before end, "
					    "end at most 24:00)");
				ok = false;
				continue;
			}
			iv->ntimes++;
		}
		free(sub);
	}
	return ok;
}

static bool
intervals_parse(struct rule_parse *rp, yaml_node_t *n, const char *field,
		struct rule_interval **out, int *nout)
{
	bool ok = true;
	char *path;

	if (n->type != YAML_SEQUENCE_NODE) {
		rerr_expect(rp, n, field,
			    "a list of intervals, each a mapping with "
			    "timezone, weekdays and times");
		return false;
	}
	*out = xcalloc(ynode_seq_len(n) + 1, sizeof(**out));
	for (size_t i = 0; i < ynode_seq_len(n); i++) {
		path = xprintf("%s[%zu]", field, i);
		ok &= interval_parse(rp, ynode_seq_item(rp->f->doc, n, i), path,
				     &(*out)[(*nout)++]);
		free(path);
	}
	return ok;
}

/*
 * Whether a rule of the set or earlier in this file is named name; if so,
 * where ("FILE:LINE", a new string in *where).
 */
static bool
name_taken(const struct rules_file *f, const char *name, char **where)
{
	for (int i = 0; i < f->set->n; i++)
		if (strcmp(f->set->v[i]->name, name) == 0) {
			*where = xprintf("%s:%d", f->set->v[i]->file,
					 f->set->v[i]->line);
			return true;
		}
	for (int i = 0; i < f->nnames; i++)
		if (strcmp(f->names[i], name) == 0) {
			*where = xprintf("%s:%d", f->file, f->name_lines[i]);
			return true;
		}
	return false;
}

static void
name_remember(struct rules_file *f, const char *name, int line)
{
	f->names = xrealloc(f->names, sizeof(char *) * (size_t)(f->nnames + 1));
	f->name_lines =
	    xrealloc(f->name_lines, sizeof(int) * (size_t)(f->nnames + 1));
	f->names[f->nnames] = xstrdup(name);
	f->name_lines[f->nnames++] = line;
}

/* Unknown and repeated fields of the rule's mapping. */
static bool
rule_fields_check(struct rule_parse *rp)
{
	const char *const *lists[2] = {common_fields,
				       rp->kind ? rp->kind->fields : NULL};
	bool ok = true;

	for (yaml_node_pair_t *q = rp->map->data.mapping.pairs.start;
	     q < rp->map->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = yaml_document_get_node(rp->f->doc, q->key);
		const char *k = ynode_scalar(kn), *hint, *owner = NULL;
		char *got;

		if (k == NULL) {
			got = ynode_describe(kn);
			rerr(rp, kn, NULL, "expected a field name, got %s",
			     got);
			free(got);
			ok = false;
			continue;
		}
		for (yaml_node_pair_t *p = rp->map->data.mapping.pairs.start;
		     p < q; p++) {
			yaml_node_t *pk =
			    yaml_document_get_node(rp->f->doc, p->key);

			if (ynode_scalar(pk) != NULL &&
			    strcmp(ynode_scalar(pk), k) == 0) {
				rerr(rp, kn, NULL,
				     "duplicate field '%s' (first at line "
				     "%zu)",
				     k, pk->start_mark.line + 1);
				ok = false;
				break;
			}
		}
		if (in_list(common_fields, k) ||
		    (rp->kind != NULL && in_list(rp->kind->fields, k)))
			continue;
		for (size_t i = 0; i < nrule_kinds; i++)
			if (in_list(rule_kinds[i].fields, k))
				owner = rule_kinds[i].name;
		/* Without a kind, its fields cannot be told from typos. */
		if (rp->kind == NULL && owner != NULL)
			continue;
		if (owner != NULL) {
			rerr(rp, kn, NULL,
			     "unknown field '%s' for a %s rule (%s is a field "
			     "of other kinds, such as %s)",
			     k, rp->kind->name, k, owner);
		} else if ((hint = suggest(k, lists, 2)) != NULL) {
			rerr(rp, kn, NULL,
			     "unknown field '%s' (did you mean '%s'?)", k,
			     hint);
		} else {
			rerr(rp, kn, NULL, "unknown field '%s'", k);
		}
		ok = false;
	}
	return ok;
}

/* One rule: its mapping n, the index-th of the file's list. */
/*
 * What a rule is, to tell a changed rule from an unchanged one across a
 * reload: a hash of its text (of the whole file when it uses an alias,
 * whose anchor may be anywhere).
 */
static void
rule_digest(const struct rules_file *f, const yaml_node_t *n, char out[17])
{
	size_t b = n->start_mark.index, e = n->end_mark.index;
	char hex[SHA256_HEX_LEN + 1];

	if (e > f->len || b > e)
		b = e = 0;
	if (memchr(f->text + b, '*', e - b) != NULL) {
		b = 0;
		e = f->len;
	}
	sha256_hex(f->text + b, e - b, hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

static struct rule *
rule_parse(struct rules_file *f, yaml_node_t *n, int index)
{
	struct rule *r = xcalloc(1, sizeof(*r));
	struct rule_parse rp = {.f = f, .index = index, .map = n, .rule = r};
	char *where;
	yaml_node_t *v;
	const char *s, *hint;
	int sev = RULE_WARNING;
	bool ok = true;
	char *got;

	r->file = xstrdup(f->file);
	rule_digest(f, n, r->digest);
	r->line = (int)n->start_mark.line + 1;
	r->column = (int)n->start_mark.column + 1;
	r->send_resolved = true;
	r->severity = RULE_WARNING;
	r->repeat.factor = 1;
	if (n->type != YAML_MAPPING_NODE) {
		got = ynode_describe(n);
		ferr(f, &n->start_mark,
		     "rules[%d]: expected a rule (a mapping with name, "
		     "workspace, kind, ...), got %s",
		     index, got);
		free(got);
		rule_free(r);
		return NULL;
	}

	/* The kind first: it says which other fields there may be. */
	if ((v = rp_need(&rp, "kind", true, rule_kind_list(), &ok)) != NULL) {
		if ((s = ynode_scalar(v)) == NULL) {
			rerr_expect(&rp, v, "kind", rule_kind_list());
			ok = false;
		} else if ((r->kind = rule_kind_find(s)) == NULL) {
			if ((hint = kind_suggest(s)) != NULL)
				rerr(&rp, v, "kind",
				     "unknown kind '%s' (did you mean '%s'?)",
				     s, hint);
			else
				rerr(&rp, v, "kind",
				     "unknown kind '%s' (expected %s)", s,
				     rule_kind_list());
			ok = false;
		}
	}
	rp.kind = r->kind;
	ok &= rule_fields_check(&rp);

	if ((v = rp_need(&rp, "name", true, "a name such as checkout-errors",
			 &ok)) != NULL) {
		if ((s = ynode_scalar(v)) == NULL || !rule_name_ok(s)) {
			rerr_expect(&rp, v, "name",
				    "a name of letters, digits and _ . : - "
				    "(at most 128)");
			ok = false;
		} else if (name_taken(f, s, &where)) {
			rerr(&rp, v, "name",
			     "a second rule named '%s' (first at %s)", s,
			     where);
			free(where);
			ok = false;
		} else {
			r->name = xstrdup(s);
			name_remember(f, s, r->line);
		}
	}
	if ((v = rp_need(&rp, "workspace", true,
			 "a workspace slug, or \"*\" for every workspace",
			 &ok)) != NULL) {
		if ((s = ynode_scalar(v)) == NULL ||
		    (strcmp(s, "*") != 0 && !slug_valid(s))) {
			rerr_expect(&rp, v, "workspace",
				    "a workspace slug (a-z, 0-9 and '-'), or "
				    "\"*\" for every workspace");
			ok = false;
		} else {
			r->workspace = xstrdup(s);
		}
	}
	if ((v = rp_get(&rp, "match")) != NULL && !ynode_is_null(v))
		ok &= filter_node(&rp, v, "match", &r->match);
	if ((v = rp_get(&rp, "group_by")) != NULL && !ynode_is_null(v))
		ok &= string_list(&rp, v, "group_by",
				  "an event field or a list of them",
				  group_by_item, &r->group_by, &r->ngroup_by);
	ok &= rp_duration(&rp, "for", false, 0, &r->for_ms);
	ok &= rp_duration(&rp, "keep_firing_for", false, 0,
			  &r->keep_firing_for_ms);
	ok &= rp_enum(&rp, "severity", false, severity_names, &sev);
	r->severity = (enum rule_severity)sev;
	if ((v = rp_get(&rp, "labels")) != NULL && !ynode_is_null(v))
		ok &= labels_parse(&rp, v);
	if ((v = rp_get(&rp, "notify")) != NULL && !ynode_is_null(v))
		ok &= string_list(&rp, v, "notify",
				  "an endpoint's name or id, or a list of them",
				  notify_item, &r->notify, &r->nnotify);
	if ((v = rp_get(&rp, "send_resolved")) != NULL && !ynode_is_null(v) &&
	    ((s = ynode_scalar(v)) == NULL ||
	     !bool_parse(s, &r->send_resolved))) {
		rerr_expect(&rp, v, "send_resolved", "true or false");
		ok = false;
	}
	if ((v = rp_get(&rp, "repeat")) != NULL && !ynode_is_null(v))
		ok &= repeat_parse(&rp, v);
	if ((v = rp_get(&rp, "active_intervals")) != NULL && !ynode_is_null(v))
		ok &= intervals_parse(&rp, v, "active_intervals", &r->active,
				      &r->nactive);
	if ((v = rp_get(&rp, "mute_intervals")) != NULL && !ynode_is_null(v))
		ok &= intervals_parse(&rp, v, "mute_intervals", &r->mute,
				      &r->nmute);
	if (r->kind != NULL && (r->params = r->kind->parse(&rp)) == NULL)
		ok = false;
	/* Last: templates name the labels and group_by fields. */
	if ((v = rp_get(&rp, "annotations")) != NULL && !ynode_is_null(v))
		ok &= annotations_parse(&rp, v);

	if (!ok) {
		rule_free(r);
		return NULL;
	}
	return r;
}

/* ---- files ---- */

/* libyaml's complaint, where it happened. */
static void
syntax_error(struct rules_file *f, const yaml_parser_t *parser,
	     const char *text, size_t len)
{
	ynode_syntax_error(f->errs, f->file, parser, text, len);
	f->nerrs++;
}

static void
file_walk(struct rules_file *f, yaml_node_t *root)
{
	static const char *const top[] = {"rules", NULL};
	const char *const *lists[] = {top};
	yaml_node_t *list = NULL;
	const char *k, *hint;
	struct rule *r;
	char *got;

	if (root->type != YAML_MAPPING_NODE) {
		if (!ynode_is_null(root)) {
			got = ynode_describe(root);
			ferr(f, &root->start_mark,
			     "expected a mapping with rules: (a list of "
			     "rules) at the top level, got %s",
			     got);
			free(got);
		}
		return;
	}
	for (yaml_node_pair_t *q = root->data.mapping.pairs.start;
	     q < root->data.mapping.pairs.top; q++) {
		yaml_node_t *kn = yaml_document_get_node(f->doc, q->key);

		k = ynode_scalar(kn);
		if (k != NULL && strcmp(k, "rules") == 0 && list == NULL) {
			list = yaml_document_get_node(f->doc, q->value);
		} else if (k != NULL && strcmp(k, "rules") == 0) {
			ferr(f, &kn->start_mark, "duplicate key 'rules'");
		} else if (k != NULL && (hint = suggest(k, lists, 1)) != NULL) {
			ferr(f, &kn->start_mark,
			     "unknown key '%s' (did you mean '%s'?)", k, hint);
		} else {
			ferr(f, &kn->start_mark,
			     "unknown key '%s' (a rule file holds rules: and "
			     "nothing else)",
			     k != NULL ? k : "?");
		}
	}
	if (list == NULL || ynode_is_null(list))
		return;
	if (list->type != YAML_SEQUENCE_NODE) {
		got = ynode_describe(list);
		ferr(f, &list->start_mark,
		     "rules: expected a list of rules, got %s", got);
		free(got);
		return;
	}
	f->v = xcalloc(ynode_seq_len(list) + 1, sizeof(*f->v));
	for (size_t i = 0; i < ynode_seq_len(list); i++)
		if ((r = rule_parse(f, ynode_seq_item(f->doc, list, i),
				    (int)i)) != NULL)
			f->v[f->n++] = r;
}

/* "LINE:COL: ..." after a file name of len bytes: the position. */
static void
err_position(const char *e, size_t len, unsigned long *line, unsigned long *col)
{
	char *end;

	*line = *col = 0;
	if (strlen(e) <= len || e[len] != ':')
		return;
	*line = strtoul(e + len + 1, &end, 10);
	if (*end == ':')
		*col = strtoul(end + 1, NULL, 10);
}

/*
 * A file's errors, from errs->v[from] on, in the order of the file
 * (stable: errors at one place keep their order).
 */
static void
errs_sort(struct strlist *errs, size_t from, size_t len)
{
	unsigned long li, ci, lj, cj;

	for (size_t i = from + 1; i < errs->n; i++) {
		char *e = errs->v[i];
		size_t j = i;

		err_position(e, len, &li, &ci);
		while (j > from) {
			err_position(errs->v[j - 1], len, &lj, &cj);
			if (lj < li || (lj == li && cj <= ci))
				break;
			errs->v[j] = errs->v[j - 1];
			j--;
		}
		errs->v[j] = e;
	}
}

struct rule_set *
rules_set_new(char *const *endpoints, int nendpoints)
{
	struct rule_set *set = xcalloc(1, sizeof(*set));

	set->check_endpoints = endpoints != NULL;
	if (nendpoints > 0) {
		set->endpoints = xcalloc((size_t)nendpoints, sizeof(char *));
		for (int i = 0; i < nendpoints; i++)
			set->endpoints[i] = xstrdup(endpoints[i]);
		set->nendpoints = nendpoints;
	}
	return set;
}

void
rules_set_free(struct rule_set *set)
{
	if (set == NULL)
		return;
	for (int i = 0; i < set->n; i++)
		rule_free(set->v[i]);
	free(set->v);
	strv_free(set->endpoints, set->nendpoints);
	free(set);
}

bool
rules_set_add(struct rule_set *set, const char *file, const char *text,
	      size_t len, int *nadded, struct strlist *errs)
{
	struct rules_file f = {
	    .set = set, .file = file, .errs = errs, .text = text, .len = len};
	size_t before = errs->n;
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root, *more;

	if (nadded != NULL)
		*nadded = 0;
	if (!yaml_parser_initialize(&parser))
		fatal("rules: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		syntax_error(&f, &parser, text, len);
		goto out;
	}
	f.doc = &doc;
	if ((root = yaml_document_get_root_node(&doc)) != NULL) {
		file_walk(&f, root);
		if (!yaml_parser_load(&parser, &extra)) {
			syntax_error(&f, &parser, text, len);
		} else {
			if ((more = yaml_document_get_root_node(&extra)) !=
			    NULL)
				ferr(&f, &more->start_mark,
				     "a second YAML document: the file must "
				     "hold one");
			yaml_document_delete(&extra);
		}
	}
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&parser);
	strv_free(f.names, f.nnames);
	free(f.name_lines);
	errs_sort(errs, before, strlen(file));
	set->nfiles++;
	if (f.nerrs > 0) {
		for (int i = 0; i < f.n; i++)
			rule_free(f.v[i]);
		free(f.v);
		return false;
	}
	if (set->n + f.n > set->cap) {
		set->cap = (set->n + f.n) * 2 + 8;
		set->v = xrealloc(set->v, sizeof(*set->v) * (size_t)set->cap);
	}
	for (int i = 0; i < f.n; i++)
		set->v[set->n++] = f.v[i];
	free(f.v);
	if (nadded != NULL)
		*nadded = f.n;
	return true;
}

bool
rules_set_add_file(struct rule_set *set, const char *path, int *nadded,
		   struct strlist *errs)
{
	char *text;
	size_t len;
	bool ok;

	if (nadded != NULL)
		*nadded = 0;
	if (read_file_max(path, RULES_MAX_BYTES, &text, &len) != 0) {
		strlist_addf(errs, "%s: cannot read: %s", path,
			     strerror(errno));
		return false;
	}
	ok = rules_set_add(set, path, text, len, nadded, errs);
	free(text);
	return ok;
}

struct rule_set *
rules_parse(const char *file, const char *text, size_t len,
	    char *const *endpoints, int nendpoints, struct strlist *errs)
{
	struct rule_set *set = rules_set_new(endpoints, nendpoints);

	if (!rules_set_add(set, file, text, len, NULL, errs)) {
		rules_set_free(set);
		return NULL;
	}
	return set;
}

struct rule_set *
rules_load(char *const *patterns, int npatterns, char *const *endpoints,
	   int nendpoints, struct strlist *errs)
{
	struct rule_set *set = rules_set_new(endpoints, nendpoints);
	struct strlist seen = {0};
	bool ok = true;
	glob_t g;
	int rc;

	for (int i = 0; i < npatterns; i++) {
		const char *pat = patterns[i];

		rc = glob(pat, 0, NULL, &g);
		if (rc == GLOB_NOSPACE)
			fatal("rules: out of memory");
		if (rc == GLOB_ABORTED) {
			strlist_addf(errs, "%s: cannot read: %s", pat,
				     strerror(errno));
			ok = false;
		} else if (rc == GLOB_NOMATCH && strpbrk(pat, "*?[") == NULL) {
			/* A plain name must exist: read it, to say why. */
			ok &= rules_set_add_file(set, pat, NULL, errs);
		}
		for (size_t j = 0; rc == 0 && j < g.gl_pathc; j++) {
			const char *path = g.gl_pathv[j];
			bool dup = false;

			for (size_t k = 0; k < seen.n && !dup; k++)
				dup = strcmp(seen.v[k], path) == 0;
			if (dup)
				continue;
			strlist_add(&seen, path);
			ok &= rules_set_add_file(set, path, NULL, errs);
		}
		if (rc == 0 || rc == GLOB_NOMATCH)
			globfree(&g);
	}
	strlist_free(&seen);
	if (!ok) {
		rules_set_free(set);
		return NULL;
	}
	return set;
}

char *
rules_path_resolve(const char *config_path, const char *pattern)
{
	const char *slash = strrchr(config_path, '/');

	if (pattern[0] == '/' || slash == NULL)
		return xstrdup(pattern);
	return xprintf("%.*s/%s", (int)(slash - config_path), config_path,
		       pattern);
}

struct rule_set *
rules_load_config(const struct lp_config *cfg, struct strlist *errs)
{
	int n = cfg->rules.npaths;
	char **pats = xcalloc((size_t)n + 1, sizeof(char *));
	char **names = xcalloc((size_t)cfg->nwebhooks + 1, sizeof(char *));
	struct rule_set *set;

	for (int i = 0; i < n; i++)
		pats[i] = rules_path_resolve(cfg->path, cfg->rules.paths[i]);
	for (int i = 0; i < cfg->nwebhooks; i++)
		names[i] = cfg->webhooks[i].name;
	set = rules_load(pats, n, names, cfg->nwebhooks, errs);
	strv_free(pats, n);
	free(names);
	return set;
}

int
rules_count(const struct rule_set *set)
{
	return set->n;
}

int
rules_nfiles(const struct rule_set *set)
{
	return set->nfiles;
}

const struct rule *
rules_get(const struct rule_set *set, int i)
{
	return i >= 0 && i < set->n ? set->v[i] : NULL;
}

const struct rule *
rules_find(const struct rule_set *set, const char *name)
{
	for (int i = 0; i < set->n; i++)
		if (strcmp(set->v[i]->name, name) == 0)
			return set->v[i];
	return NULL;
}
