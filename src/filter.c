/*
 * filter.c - the filter language (see filter.h).  Owns the table of fields
 * (name, SQL expression, type, join), the walk over a filter's YAML nodes
 * into a tree of conditions, and the compilation of that tree into a SQL
 * boolean expression whose values are all parameters, or its evaluation
 * in C over one event's text (filter_match).  Calls util (allocation,
 * string lists, levenshtein, uuid_valid) and libyaml's document API;
 * called by the rules (and later the API) and by the unit tests.
 *
 * NULL semantics.  Every condition is two-valued: a NULL column (an event
 * without a country, without a visitor, a visitor without a score) never
 * matches a positive condition (=, any of, >, >=, <, <=, prefix, contains,
 * exists: true) and always matches the negative ones (!=, not, exists:
 * false), and "not" is the plain negation of its filter, so
 * "not: {country: FR}" matches an event with no country, as
 * "country: {not: FR}" and "country: {'!=': FR}" do.  To get this from
 * SQL's three-valued logic, negations are pushed down to the conditions
 * (De Morgan) when compiling: a positive condition compiles to its plain
 * comparison ("e.country = $1", NULL counting as false, which is right
 * under AND and OR alone), a negative one to a form that is true on NULL
 * ("IS DISTINCT FROM", "IS NOT TRUE", "IS NULL", "NOT EXISTS").  Text
 * comparisons are exact and case-sensitive (tags included).
 *
 * filter_match evaluates the tree itself, two-valued from the start: a
 * condition is its positive form with NULL as false, negated when it is
 * negative, and "not" negates.  That is what the SQL computes, because
 * after the push-down only AND and OR sit above the conditions.  Each
 * condition's values are parsed once, at load (integers and booleans as
 * numbers, lists sorted for a binary search), so matching an event
 * allocates nothing.  The event's integers are parsed per call; one that
 * does not parse (the SQL would have failed on it) counts as NULL.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "filter.h"
#include "ynode.h"

/* Values quoted in error messages are cut to this many bytes. */
/* Values of one list ("any of"). */
#define LIST_MAX 1000
/* any/all/not nesting, which also ends alias cycles. */
#define DEPTH_MAX 32
/* Conditions and list values in a filter, aliases counted each time. */
#define CONDS_MAX 10000

enum ftype {
	FT_TEXT,
	FT_INT,
	FT_BOOL,
	FT_ENUM,
	FT_UUID,
	FT_TAG, /* link.tag: an EXISTS over the link's tags */
};

enum fjoin {
	FJ_NONE,
	FJ_LINK,
	FJ_VISITOR,
};

struct field {
	const char *name;
	const char *sql; /* NULL: link.tag and properties.<key> */
	enum ftype type;
	enum fjoin join;
	const char *const *choices; /* FT_ENUM, NULL-terminated */
};

static const char *const actions[] = {"ACTION_UNSPECIFIED",
				      "ACTION_SCAN",
				      "ACTION_CLICK",
				      "ACTION_RESCAN",
				      "ACTION_WORKFLOW_INTERACTION",
				      "ACTION_FORM_SUBMISSION",
				      "ACTION_CONVERSION",
				      NULL};
static const char *const statuses[] = {"ok", "error", "blocked", NULL};
static const char *const device_types[] = {"DEVICE_TYPE_UNSPECIFIED",
					   "DEVICE_TYPE_NATIVE",
					   "DEVICE_TYPE_MOBILE",
					   "DEVICE_TYPE_TABLET",
					   "DEVICE_TYPE_DESKTOP",
					   "DEVICE_TYPE_UNKNOWN",
					   NULL};
static const char *const visit_types[] = {
    "VISIT_TYPE_UNSPECIFIED", "VISIT_TYPE_FIRST", "VISIT_TYPE_RETURNING", NULL};

#define COMPONENT(n, k)                                                        \
	{                                                                      \
		"visitor." n, "(v.lead_score_components->>'" k "')::int",      \
		    FT_INT, FJ_VISITOR, NULL                                   \
	}

static const struct field fields[] = {
    {"action", "e.action", FT_ENUM, FJ_NONE, actions},
    {"status", "e.status", FT_ENUM, FJ_NONE, statuses},
    {"error_code", "e.error_code", FT_TEXT, FJ_NONE, NULL},
    {"country", "e.country", FT_TEXT, FJ_NONE, NULL},
    {"region", "e.region", FT_TEXT, FJ_NONE, NULL},
    {"city", "e.city", FT_TEXT, FJ_NONE, NULL},
    {"timezone", "e.timezone", FT_TEXT, FJ_NONE, NULL},
    {"isp", "e.isp", FT_TEXT, FJ_NONE, NULL},
    {"asn", "e.asn", FT_INT, FJ_NONE, NULL},
    {"device_type", "e.device_type", FT_ENUM, FJ_NONE, device_types},
    {"platform", "e.platform", FT_TEXT, FJ_NONE, NULL},
    {"browser", "e.browser", FT_TEXT, FJ_NONE, NULL},
    {"language", "e.language", FT_TEXT, FJ_NONE, NULL},
    {"is_bot", "e.is_bot", FT_BOOL, FJ_NONE, NULL},
    {"referrer", "e.referrer", FT_TEXT, FJ_NONE, NULL},
    {"utm_source", "e.utm_source", FT_TEXT, FJ_NONE, NULL},
    {"utm_medium", "e.utm_medium", FT_TEXT, FJ_NONE, NULL},
    {"utm_campaign", "e.utm_campaign", FT_TEXT, FJ_NONE, NULL},
    {"utm_term", "e.utm_term", FT_TEXT, FJ_NONE, NULL},
    {"utm_content", "e.utm_content", FT_TEXT, FJ_NONE, NULL},
    {"workflow_step", "e.workflow_step", FT_TEXT, FJ_NONE, NULL},
    {"visit_type", "e.visit_type", FT_ENUM, FJ_NONE, visit_types},
    {"redirect_latency_ms", "e.redirect_latency_ms", FT_INT, FJ_NONE, NULL},
    {"link", "e.link_id", FT_UUID, FJ_NONE, NULL},
    {"link.shortlink", "l.shortlink", FT_TEXT, FJ_LINK, NULL},
    {"link.name", "l.name", FT_TEXT, FJ_LINK, NULL},
    /* Reads link_tags by e.link_id: needs no join. */
    {"link.tag", NULL, FT_TAG, FJ_NONE, NULL},
    {"qr_code", "e.qr_code_id", FT_UUID, FJ_NONE, NULL},
    {"visitor", "e.visitor_id", FT_UUID, FJ_NONE, NULL},
    {"visitor.external_id", "v.external_id", FT_TEXT, FJ_VISITOR, NULL},
    {"visitor.email", "v.email", FT_TEXT, FJ_VISITOR, NULL},
    {"visitor.company", "v.company", FT_TEXT, FJ_VISITOR, NULL},
    {"visitor.job_title", "v.job_title", FT_TEXT, FJ_VISITOR, NULL},
    {"visitor.visit_count", "v.visit_count", FT_INT, FJ_VISITOR, NULL},
    {"visitor.lead_score", "v.lead_score", FT_INT, FJ_VISITOR, NULL},
    COMPONENT("engagement_level", "engagementLevel"),
    COMPONENT("recurring_interest", "recurringInterest"),
    COMPONENT("recurring_scans", "recurringScans"),
    COMPONENT("profile_fit", "profileFit"),
    COMPONENT("brand_supportiveness", "brandSupportiveness"),
    COMPONENT("technological_aptitude", "technologicalAptitude"),
};

/* properties.<key>: e.properties->>key, the key being a parameter. */
#define PROPERTIES "properties."
static const struct field property_field = {"properties.<key>", NULL, FT_TEXT,
					    FJ_NONE, NULL};

/* A list value is one parameter, an array literal cast to the type. */
enum fop {
	OP_EQ,
	OP_IN,
	OP_GT,
	OP_GE,
	OP_LT,
	OP_LE,
	OP_PREFIX,
	OP_CONTAINS,
	OP_EXISTS,
};

static const char *const op_sql[] = {
    [OP_GT] = ">", [OP_GE] = ">=", [OP_LT] = "<", [OP_LE] = "<="};

#define OPS_EXPECT "=, !=, >, >=, <, <=, not, prefix, contains, exists"

enum fkind {
	FN_AND,
	FN_OR,
	FN_NOT,
	FN_COND,
};

struct fnode {
	enum fkind kind;
	struct fnode **kids; /* FN_AND, FN_OR; FN_NOT has one */
	size_t nkids;
	/* FN_COND */
	const struct field *field;
	char *key; /* properties.<key> */
	enum fop op;
	bool neg;    /* !=, not, exists: false */
	char *value; /* parameter text: a value or an array literal */
	/*
	 * For filter_match (empty for exists): the values, one or a list's
	 * sorted, and for integers and booleans the same as numbers, sorted.
	 */
	int index; /* in fields[]; -1 for properties.<key> */
	struct strlist vals;
	long long *nums;
};

struct filter {
	struct fnode *root;
	bool uses_link;
	bool uses_visitor;
	bool uses_tags;
	bool uses_properties;
};

struct fparse {
	const char *file;
	struct strlist *errs;
	int nerrs;
	yaml_document_t *doc;
	int nconds;
	bool too_many;
	bool uses_link;
	bool uses_visitor;
	bool uses_tags;
	bool uses_properties;
};

static void perr(struct fparse *, const yaml_node_t *, const char *path,
		 const char *, ...) __attribute__((format(printf, 4, 5)));

/* One error at node n, under path ("match.any[1].asn"). */
static void
perr(struct fparse *p, const yaml_node_t *n, const char *path, const char *fmt,
     ...)
{
	va_list ap;

	va_start(ap, fmt);
	ynode_verror(p->errs, p->file, &n->start_mark, path, fmt, ap);
	va_end(ap);
	p->nerrs++;
}

/* ---- nodes and values */

static struct fnode *
fnode_new(enum fkind kind)
{
	struct fnode *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	return n;
}

static void
fnode_add(struct fnode *parent, struct fnode *kid)
{
	parent->kids =
	    xrealloc(parent->kids, (parent->nkids + 1) * sizeof(*parent->kids));
	parent->kids[parent->nkids++] = kid;
}

static void
fnode_free(struct fnode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		fnode_free(n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n->value);
	strlist_free(&n->vals);
	free(n->nums);
	free(n);
}

static bool
choice_valid(const char *const *choices, const char *s)
{
	for (; *choices != NULL; choices++)
		if (strcmp(*choices, s) == 0)
			return true;
	return false;
}

/* What a value of the field must be, for messages.  Caller frees. */
static char *
type_expect(const struct field *f)
{
	size_t len = sizeof("one of ");
	char *s;

	switch (f->type) {
	case FT_TEXT:
	case FT_TAG:
		return xstrdup("a string");
	case FT_INT:
		return xstrdup("an integer");
	case FT_BOOL:
		return xstrdup("true or false");
	case FT_UUID:
		return xstrdup("a UUID");
	case FT_ENUM:
		break;
	}
	for (const char *const *c = f->choices; *c != NULL; c++)
		len += strlen(*c) + 2;
	s = xmalloc(len);
	strcpy(s, "one of ");
	for (const char *const *c = f->choices; *c != NULL; c++) {
		if (c != f->choices)
			strcat(s, ", ");
		strcat(s, *c);
	}
	return s;
}

/*
 * The parameter text of one value of the field, or NULL after an error.
 * op names the operator in messages ("'>=' expects ..."), or is NULL for
 * a bare value ("expected ...").
 */
static char *
value_parse(struct fparse *p, const struct field *f, const char *op,
	    const yaml_node_t *vn, const char *path)
{
	const char *s = NULL;
	long long n;
	int b;
	char *expect, *got;

	if (vn->type == YAML_SCALAR_NODE && !ynode_is_null(vn))
		s = ynode_text(vn);
	if (s != NULL) {
		switch (f->type) {
		case FT_TEXT:
		case FT_TAG:
			return xstrdup(s);
		case FT_INT:
			if (ynode_int(s, &n))
				return xprintf("%lld", n);
			break;
		case FT_BOOL:
			if ((b = ynode_bool(s)) >= 0)
				return xstrdup(b ? "true" : "false");
			break;
		case FT_UUID:
			/* Lower case, as PostgreSQL prints them. */
			if (uuid_valid(s)) {
				char *u = xstrdup(s);

				for (char *c = u; *c != '\0'; c++)
					*c = (char)tolower((unsigned char)*c);
				return u;
			}
			break;
		case FT_ENUM:
			if (choice_valid(f->choices, s))
				return xstrdup(s);
			break;
		}
	}
	expect = type_expect(f);
	got = ynode_describe(vn);
	if (op != NULL)
		perr(p, vn, path, "'%s' expects %s, got %s%s", op, expect, got,
		     ynode_is_null(vn) ? " (use exists: false for no value)"
				       : "");
	else
		perr(p, vn, path, "expected %s, got %s%s", expect, got,
		     ynode_is_null(vn) ? " (use exists: false for no value)"
				       : "");
	free(expect);
	free(got);
	return NULL;
}

/* Appends s to a PostgreSQL array literal, quoted. */
static void
array_add(char **lit, size_t *len, const char *s)
{
	size_t need = *len + 2 * strlen(s) + 4;
	char *o;

	*lit = xrealloc(*lit, need);
	o = *lit + *len;
	if (*len > 1)
		*o++ = ',';
	*o++ = '"';
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '"';
	*o = '\0';
	*len = (size_t)(o - *lit);
}

/*
 * A sequence of values, as one array literal ("{\"a\",\"b\"}") with the
 * values themselves appended to vals, or NULL after an error (vals then
 * empty).
 */
static char *
list_parse(struct fparse *p, const struct field *f, const char *op,
	   const yaml_node_t *vn, const char *path, struct strlist *vals)
{
	yaml_node_item_t *start = vn->data.sequence.items.start;
	size_t n = (size_t)(vn->data.sequence.items.top - start), len = 1;
	char *lit, *v, *ipath;
	bool ok = true;

	if (n == 0 || n > LIST_MAX) {
		if (op != NULL)
			perr(p, vn, path,
			     "'%s' expects a value or a list of 1 to %d "
			     "values, got %zu values",
			     op, LIST_MAX, n);
		else
			perr(p, vn, path,
			     "expected a list of 1 to %d values, got %zu "
			     "values",
			     LIST_MAX, n);
		return NULL;
	}
	p->nconds += (int)n;
	lit = xstrdup("{");
	for (size_t i = 0; i < n; i++) {
		ipath = xprintf("%s[%zu]", path, i);
		v = value_parse(
		    p, f, op, yaml_document_get_node(p->doc, start[i]), ipath);
		free(ipath);
		if (v == NULL) {
			ok = false;
			continue;
		}
		if (ok) {
			array_add(&lit, &len, v);
			strlist_add(vals, v);
		}
		free(v);
	}
	if (!ok) {
		free(lit);
		strlist_free(vals);
		return NULL;
	}
	lit = xrealloc(lit, len + 2);
	strcpy(lit + len, "}");
	return lit;
}

/* ---- fields and operators */

static const struct field *
field_find(const char *name)
{
	for (size_t i = 0; i < nitems(fields); i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

static bool
property_key_valid(const char *k)
{
	size_t len = strlen(k);

	return len >= 1 && len <= 64 &&
	       strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == len;
}

/*
 * The closest known field (and, inside a filter, any/all/not), when close
 * enough to be a typo.
 */
static const char *
field_suggest(const char *key, bool words_too)
{
	static const char *const words[] = {"any", "all", "not"};
	size_t klen = strlen(key), best = SIZE_MAX, d;
	size_t n = nitems(fields) + (words_too ? nitems(words) : 0);
	const char *found = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *name = i < nitems(fields)
				       ? fields[i].name
				       : words[i - nitems(fields)];

		d = levenshtein(key, name);
		if (d < best && (d <= 2 || d * 3 <= klen)) {
			best = d;
			found = name;
		}
	}
	if (found == NULL && strncmp(key, "propert", 7) == 0)
		found = "properties.<key>";
	return found;
}

/* The operators a type takes, for messages. */
static const char *
type_ops(enum ftype t)
{
	switch (t) {
	case FT_TEXT:
	case FT_TAG:
		return "=, !=, not, prefix, contains, exists";
	case FT_INT:
		return "=, !=, >, >=, <, <=, not, exists";
	default:
		return "=, !=, not, exists";
	}
}

static const char *
type_name(enum ftype t)
{
	switch (t) {
	case FT_TEXT:
		return "text";
	case FT_TAG:
		return "tag";
	case FT_INT:
		return "integer";
	case FT_BOOL:
		return "true/false";
	case FT_ENUM:
		return "enumerated";
	case FT_UUID:
		return "UUID";
	}
	return "?";
}

static int
vals_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
nums_cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/*
 * Adds a condition.  It takes over value (the parameter text) and the
 * values in vals, leaving vals empty; both are NULL for exists.
 */
static void
cond_add(struct fparse *p, struct fnode *parent, const struct field *f,
	 const char *key, enum fop op, bool neg, char *value,
	 struct strlist *vals)
{
	struct fnode *n = fnode_new(FN_COND);

	n->field = f;
	n->index = f == &property_field ? -1 : (int)(f - fields);
	n->key = key != NULL ? xstrdup(key) : NULL;
	n->op = op;
	n->neg = neg;
	n->value = value;
	if (vals != NULL) {
		n->vals = *vals;
		*vals = (struct strlist){0};
	}
	if (n->vals.n > 1)
		qsort(n->vals.v, n->vals.n, sizeof(*n->vals.v), vals_cmp);
	if (n->vals.n > 0 && (f->type == FT_INT || f->type == FT_BOOL)) {
		/* value_parse wrote them: "%lld", "true" or "false". */
		n->nums = xcalloc(n->vals.n, sizeof(*n->nums));
		for (size_t i = 0; i < n->vals.n; i++)
			n->nums[i] = f->type == FT_INT
					 ? strtoll(n->vals.v[i], NULL, 10)
					 : strcmp(n->vals.v[i], "true") == 0;
		if (n->vals.n > 1)
			qsort(n->nums, n->vals.n, sizeof(*n->nums), nums_cmp);
	}
	fnode_add(parent, n);
	p->nconds++;
	if (f->join == FJ_LINK)
		p->uses_link = true;
	if (f->join == FJ_VISITOR)
		p->uses_visitor = true;
	if (f->type == FT_TAG)
		p->uses_tags = true;
	if (f == &property_field)
		p->uses_properties = true;
}

/* A condition on one value, v, which it takes over. */
static void
cond_add_value(struct fparse *p, struct fnode *parent, const struct field *f,
	       const char *key, enum fop op, bool neg, char *v)
{
	struct strlist vals = {0};

	strlist_add(&vals, v);
	cond_add(p, parent, f, key, op, neg, v, &vals);
}

/* One "operator: value" pair of a field's mapping of conditions. */
static void
op_parse(struct fparse *p, const struct field *f, const char *key,
	 const yaml_node_t *kn, const yaml_node_t *vn, const char *path,
	 struct fnode *parent)
{
	static const struct {
		const char *name;
		enum fop op;
		bool neg;
	} ops[] = {
	    {"=", OP_EQ, false},
	    {"!=", OP_EQ, true},
	    {">", OP_GT, false},
	    {">=", OP_GE, false},
	    {"<", OP_LT, false},
	    {"<=", OP_LE, false},
	    {"not", OP_EQ, true},
	    {"prefix", OP_PREFIX, false},
	    {"contains", OP_CONTAINS, false},
	    {"exists", OP_EXISTS, false},
	};
	const char *name = ynode_text(kn);
	struct strlist vals = {0};
	size_t i;
	bool ok;
	char *v, *got;
	int b;

	for (i = 0; name != NULL && i < nitems(ops); i++)
		if (strcmp(ops[i].name, name) == 0)
			break;
	if (name == NULL || i == nitems(ops)) {
		got = ynode_describe(kn);
		perr(p, kn, path,
		     "unknown operator %s (expected " OPS_EXPECT ")", got);
		free(got);
		return;
	}
	switch (ops[i].op) {
	case OP_GT:
	case OP_GE:
	case OP_LT:
	case OP_LE:
		ok = f->type == FT_INT;
		break;
	case OP_PREFIX:
	case OP_CONTAINS:
		ok = f->type == FT_TEXT || f->type == FT_TAG;
		break;
	default:
		ok = true;
	}
	if (!ok) {
		perr(p, kn, path,
		     "'%s' does not apply to %s fields (expected %s)", name,
		     type_name(f->type), type_ops(f->type));
		return;
	}

	if (ops[i].op == OP_EXISTS) {
		const char *s =
		    vn->type == YAML_SCALAR_NODE ? ynode_text(vn) : NULL;

		if (s == NULL || ynode_is_null(vn) || (b = ynode_bool(s)) < 0) {
			got = ynode_describe(vn);
			perr(p, vn, path,
			     "'exists' expects true or false, got %s", got);
			free(got);
			return;
		}
		cond_add(p, parent, f, key, OP_EXISTS, b == 0, NULL, NULL);
		return;
	}
	/* "not" alone takes a list: none of the values. */
	if (strcmp(name, "not") == 0 && vn->type == YAML_SEQUENCE_NODE) {
		if ((v = list_parse(p, f, name, vn, path, &vals)) != NULL)
			cond_add(p, parent, f, key, OP_IN, true, v, &vals);
		return;
	}
	if (vn->type == YAML_SEQUENCE_NODE && strcmp(name, "=") != 0) {
		got = ynode_describe(vn);
		perr(p, vn, path, "'%s' expects a single value, got %s", name,
		     got);
		free(got);
		return;
	}
	if (vn->type == YAML_SEQUENCE_NODE) {
		if ((v = list_parse(p, f, name, vn, path, &vals)) != NULL)
			cond_add(p, parent, f, key, OP_IN, false, v, &vals);
		return;
	}
	if ((v = value_parse(p, f, name, vn, path)) != NULL)
		cond_add_value(p, parent, f, key, ops[i].op, ops[i].neg, v);
}

/* A field's condition: a value, a list of values, or operators. */
static void
cond_parse(struct fparse *p, const struct field *f, const char *key,
	   const yaml_node_t *vn, const char *path, struct fnode *parent)
{
	struct strlist vals = {0};
	char *v;

	if (vn->type == YAML_SEQUENCE_NODE) {
		if ((v = list_parse(p, f, NULL, vn, path, &vals)) != NULL)
			cond_add(p, parent, f, key, OP_IN, false, v, &vals);
		return;
	}
	if (vn->type != YAML_MAPPING_NODE) {
		if ((v = value_parse(p, f, NULL, vn, path)) != NULL)
			cond_add_value(p, parent, f, key, OP_EQ, false, v);
		return;
	}
	if (vn->data.mapping.pairs.start == vn->data.mapping.pairs.top) {
		perr(p, vn, path,
		     "expected a value, a list of values or a mapping of "
		     "operators (" OPS_EXPECT "), got an empty mapping");
		return;
	}
	for (yaml_node_pair_t *q = vn->data.mapping.pairs.start;
	     q < vn->data.mapping.pairs.top; q++) {
		const yaml_node_t *kn = yaml_document_get_node(p->doc, q->key);
		const char *op = ynode_text(kn);
		bool dup = false;

		for (yaml_node_pair_t *r = vn->data.mapping.pairs.start;
		     op != NULL && r < q && !dup; r++) {
			const char *prev =
			    ynode_text(yaml_document_get_node(p->doc, r->key));

			dup = prev != NULL && strcmp(prev, op) == 0;
		}
		if (dup) {
			perr(p, kn, path, "duplicate operator '%s'", op);
			continue;
		}
		op_parse(p, f, key, kn,
			 yaml_document_get_node(p->doc, q->value), path,
			 parent);
	}
}

static struct fnode *mapping_parse(struct fparse *, const yaml_node_t *,
				   const char *path, int depth);

/* any or all: a non-empty list of filters. */
static struct fnode *
group_parse(struct fparse *p, const char *word, const yaml_node_t *vn,
	    const char *path, int depth)
{
	struct fnode *g, *kid;
	yaml_node_item_t *it;
	char *ipath, *got;

	if (vn->type != YAML_SEQUENCE_NODE ||
	    vn->data.sequence.items.start == vn->data.sequence.items.top) {
		got = ynode_describe(vn);
		perr(p, vn, path,
		     "'%s' expects a non-empty list of filters, got %s", word,
		     got);
		free(got);
		return NULL;
	}
	g = fnode_new(strcmp(word, "any") == 0 ? FN_OR : FN_AND);
	for (it = vn->data.sequence.items.start;
	     it < vn->data.sequence.items.top; it++) {
		ipath = xprintf("%s[%td]", path,
				it - vn->data.sequence.items.start);
		kid = mapping_parse(p, yaml_document_get_node(p->doc, *it),
				    ipath, depth + 1);
		free(ipath);
		if (kid != NULL)
			fnode_add(g, kid);
	}
	return g;
}

/* One "field: condition" (or any/all/not) pair of a filter. */
static void
pair_parse(struct fparse *p, const yaml_node_t *map,
	   const yaml_node_pair_t *pair, const char *path, int depth,
	   struct fnode *and)
{
	const yaml_node_t *kn = yaml_document_get_node(p->doc, pair->key);
	const yaml_node_t *vn = yaml_document_get_node(p->doc, pair->value);
	const struct field *f;
	const char *name = ynode_text(kn), *key = NULL, *hint;
	struct fnode *kid;
	char *fpath, *got;

	if (name == NULL || ynode_is_null(kn)) {
		got = ynode_describe(kn);
		perr(p, kn, path, "expected a field name, got %s", got);
		free(got);
		return;
	}
	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start;
	     q < pair; q++) {
		const yaml_node_t *prev =
		    yaml_document_get_node(p->doc, q->key);
		const char *ptext = ynode_text(prev);

		if (ptext != NULL && strcmp(ptext, name) == 0) {
			perr(p, kn, path,
			     "duplicate key '%s' (first at line %zu)", name,
			     prev->start_mark.line + 1);
			return;
		}
	}

	fpath = xprintf("%s.%s", path, name);
	if (strcmp(name, "any") == 0 || strcmp(name, "all") == 0) {
		if ((kid = group_parse(p, name, vn, fpath, depth)) != NULL)
			fnode_add(and, kid);
	} else if (strcmp(name, "not") == 0) {
		if ((kid = mapping_parse(p, vn, fpath, depth + 1)) != NULL) {
			struct fnode *not = fnode_new(FN_NOT);

			fnode_add(not, kid);
			fnode_add(and, not );
		}
	} else if ((f = field_find(name)) != NULL) {
		cond_parse(p, f, NULL, vn, fpath, and);
	} else if (strncmp(name, PROPERTIES, strlen(PROPERTIES)) == 0) {
		key = name + strlen(PROPERTIES);
		if (property_key_valid(key))
			cond_parse(p, &property_field, key, vn, fpath, and);
		else
			perr(p, kn, path,
			     "bad property key '%s' (expected 1 to 64 letters, "
			     "digits, '_', '.' or '-')",
			     key);
	} else if ((hint = field_suggest(name, true)) != NULL) {
		perr(p, kn, path, "unknown field '%s' (did you mean '%s'?)",
		     name, hint);
	} else {
		perr(p, kn, path, "unknown field '%s' (expected one of %s)",
		     name, filter_field_list());
	}
	free(fpath);
}

/* A filter: a mapping of fields to conditions, ANDed. */
static struct fnode *
mapping_parse(struct fparse *p, const yaml_node_t *n, const char *path,
	      int depth)
{
	struct fnode *and;
	char *got;

	if (n->type != YAML_MAPPING_NODE) {
		got = ynode_describe(n);
		perr(p, n, path,
		     "expected a mapping of fields to conditions, got %s", got);
		free(got);
		return NULL;
	}
	if (depth > DEPTH_MAX) {
		perr(p, n, path,
		     "filters nested too deeply (at most %d levels)",
		     DEPTH_MAX);
		return NULL;
	}
	if (p->nconds > CONDS_MAX) {
		if (!p->too_many)
			perr(p, n, path, "too many conditions (at most %d)",
			     CONDS_MAX);
		p->too_many = true;
		return NULL;
	}
	and = fnode_new(FN_AND);
	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start;
	     pair < n->data.mapping.pairs.top; pair++)
		pair_parse(p, n, pair, path, depth, and);
	return and;
}

struct filter *
filter_parse(yaml_document_t *doc, yaml_node_t *node, const char *file,
	     const char *what, struct strlist *errs)
{
	struct fparse p = {.file = file, .errs = errs, .doc = doc};
	struct fnode *root;
	struct filter *f;

	root = mapping_parse(&p, node, what, 0);
	if (p.nconds > CONDS_MAX && !p.too_many)
		perr(&p, node, what, "too many conditions (at most %d)",
		     CONDS_MAX);
	if (p.nerrs > 0) {
		fnode_free(root);
		return NULL;
	}
	f = xcalloc(1, sizeof(*f));
	f->root = root;
	f->uses_link = p.uses_link;
	f->uses_visitor = p.uses_visitor;
	f->uses_tags = p.uses_tags;
	f->uses_properties = p.uses_properties;
	return f;
}

void
filter_free(struct filter *f)
{
	if (f == NULL)
		return;
	fnode_free(f->root);
	free(f);
}

bool
filter_uses_link(const struct filter *f)
{
	return f->uses_link;
}

bool
filter_uses_visitor(const struct filter *f)
{
	return f->uses_visitor;
}

bool
filter_uses_tags(const struct filter *f)
{
	return f->uses_tags;
}

bool
filter_uses_properties(const struct filter *f)
{
	return f->uses_properties;
}

const char *
filter_field_sql(const char *name)
{
	const struct field *f = field_find(name);

	return f != NULL ? f->sql : NULL;
}

enum filter_field_kind
filter_field_kind(const char *name)
{
	const struct field *f = field_find(name);

	if (f == NULL)
		return strncmp(name, "properties.", 11) == 0 &&
			       property_key_valid(name + 11)
			   ? FILTER_FIELD_MANY
			   : FILTER_FIELD_UNKNOWN;
	if (f->type == FT_TAG)
		return FILTER_FIELD_MANY;
	return f->type == FT_INT ? FILTER_FIELD_NUMBER : FILTER_FIELD_VALUE;
}

const char *
filter_field_suggest(const char *name)
{
	return field_suggest(name, false);
}

const char *
filter_field_list(void)
{
	static char list[2048];
	size_t len = 0;

	if (list[0] != '\0')
		return list;
	for (size_t i = 0; i <= nitems(fields); i++) {
		const char *name =
		    i < nitems(fields) ? fields[i].name : property_field.name;
		size_t n = strlen(name);

		if (len + n + 3 > sizeof(list))
			fatal("filter: field list longer than %zu bytes",
			      sizeof(list));
		if (len > 0) {
			memcpy(list + len, ", ", 2);
			len += 2;
		}
		memcpy(list + len, name, n + 1);
		len += n;
	}
	return list;
}

int
filter_nfields(void)
{
	return (int)nitems(fields);
}

const char *
filter_field_name_at(int i)
{
	return i >= 0 && i < (int)nitems(fields) ? fields[i].name : NULL;
}

const char *
filter_field_sql_at(int i)
{
	return i >= 0 && i < (int)nitems(fields) ? fields[i].sql : NULL;
}

int
filter_field_index(const char *name)
{
	const struct field *f = field_find(name);

	return f != NULL ? (int)(f - fields) : -1;
}

/* ---- compilation */

struct emit {
	char *buf;
	size_t len;
	size_t cap;
	int next; /* number of the next parameter */
	struct strlist *params;
};

static void emit_add(struct emit *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
emit_add(struct emit *em, const char *fmt, ...)
{
	va_list ap;
	char *s;
	size_t n;

	va_start(ap, fmt);
	s = xvprintf(fmt, ap);
	va_end(ap);
	n = strlen(s);
	if (em->len + n + 1 > em->cap) {
		em->cap = (em->len + n + 1) * 2;
		em->buf = xrealloc(em->buf, em->cap);
	}
	memcpy(em->buf + em->len, s, n + 1);
	em->len += n;
	free(s);
}

static int
emit_param(struct emit *em, const char *value)
{
	strlist_add(em->params, value);
	return em->next++;
}

static const char *
type_cast(enum ftype t)
{
	switch (t) {
	case FT_INT:
		return "::bigint";
	case FT_BOOL:
		return "::boolean";
	case FT_UUID:
		return "::uuid";
	default:
		return "::text";
	}
}

/* link.tag: whether the event's link has a tag whose name matches. */
static void
emit_tag(struct emit *em, const struct fnode *n, bool neg)
{
	int v = 0;

	emit_add(em,
		 "%sEXISTS (SELECT 1 FROM link_tags flt JOIN tags ft ON "
		 "ft.workspace_id = flt.workspace_id AND ft.id = flt.tag_id "
		 "WHERE flt.workspace_id = e.workspace_id AND flt.link_id = "
		 "e.link_id",
		 neg ? "NOT " : "");
	if (n->op != OP_EXISTS)
		v = emit_param(em, n->value);
	switch (n->op) {
	case OP_EQ:
		emit_add(em, " AND ft.name = $%d::text", v);
		break;
	case OP_IN:
		emit_add(em, " AND ft.name = ANY($%d::text[])", v);
		break;
	case OP_PREFIX:
		emit_add(em, " AND starts_with(ft.name, $%d::text)", v);
		break;
	case OP_CONTAINS:
		emit_add(em, " AND strpos(ft.name, $%d::text) > 0", v);
		break;
	case OP_EXISTS:
		break;
	default:
		fatal("filter: operator %d on link.tag", n->op);
	}
	emit_add(em, ")");
}

/*
 * One condition; neg when under an odd number of "not".  A positive form
 * may be NULL on a NULL column, a negative one must be true there.
 */
static void
emit_cond(struct emit *em, const struct fnode *n, bool neg)
{
	const char *cast = type_cast(n->field->type);
	char *x;
	int v;

	neg = neg != n->neg;
	if (n->field->type == FT_TAG) {
		/* The condition is on the tag's name; negation is NOT EXISTS.
		 */
		emit_tag(em, n, neg);
		return;
	}
	if (n->key != NULL)
		x = xprintf("(e.properties->>$%d::text)",
			    emit_param(em, n->key));
	else
		x = xstrdup(n->field->sql);
	v = n->op == OP_EXISTS ? 0 : emit_param(em, n->value);

	switch (n->op) {
	case OP_EQ:
		if (neg)
			emit_add(em, "%s IS DISTINCT FROM $%d%s", x, v, cast);
		else
			emit_add(em, "%s = $%d%s", x, v, cast);
		break;
	case OP_IN:
		if (neg)
			emit_add(em, "(%s = ANY($%d%s[])) IS NOT TRUE", x, v,
				 cast);
		else
			emit_add(em, "%s = ANY($%d%s[])", x, v, cast);
		break;
	case OP_GT:
	case OP_GE:
	case OP_LT:
	case OP_LE:
		if (neg)
			emit_add(em, "(%s %s $%d%s) IS NOT TRUE", x,
				 op_sql[n->op], v, cast);
		else
			emit_add(em, "%s %s $%d%s", x, op_sql[n->op], v, cast);
		break;
	case OP_PREFIX:
		emit_add(em, "starts_with(%s, $%d::text)%s", x, v,
			 neg ? " IS NOT TRUE" : "");
		break;
	case OP_CONTAINS:
		if (neg)
			emit_add(em, "(strpos(%s, $%d::text) > 0) IS NOT TRUE",
				 x, v);
		else
			emit_add(em, "strpos(%s, $%d::text) > 0", x, v);
		break;
	case OP_EXISTS:
		emit_add(em, "%s IS %sNULL", x, neg ? "" : "NOT ");
		break;
	}
	free(x);
}

/*
 * Negations go down to the conditions: see the comment at the top.
 * Returns whether what it wrote is one term (parenthesised, or a
 * constant) rather than a bare condition.
 */
static bool
emit_node(struct emit *em, const struct fnode *n, bool neg)
{
	bool and;

	switch (n->kind) {
	case FN_COND:
		emit_cond(em, n, neg);
		return false;
	case FN_NOT:
		return emit_node(em, n->kids[0], !neg);
	case FN_AND:
	case FN_OR:
		break;
	}
	and = (n->kind == FN_AND) != neg;
	if (n->nkids == 0) {
		emit_add(em, "%s", and? "true" : "false");
		return true;
	}
	if (n->nkids == 1)
		return emit_node(em, n->kids[0], neg);
	emit_add(em, "(");
	for (size_t i = 0; i < n->nkids; i++) {
		if (i > 0)
			emit_add(em, and? " AND " : " OR ");
		emit_node(em, n->kids[i], neg);
	}
	emit_add(em, ")");
	return true;
}

char *
filter_sql(const struct filter *f, int first_param, struct strlist *params)
{
	struct emit em = {.next = first_param, .params = params};

	/* A lone condition is parenthesised too, to embed it anywhere. */
	if (!emit_node(&em, f->root, false)) {
		char *s = xprintf("(%s)", em.buf);

		free(em.buf);
		return s;
	}
	return em.buf;
}

/* ---- evaluation */

/* Lists this short are searched from the start, longer ones halved. */
#define LIST_SHORT 8

/* An integer as PostgreSQL prints one: an optional '-', then digits. */
static bool
int_parse(const char *s, long long *out)
{
	unsigned long long n = 0, max = LLONG_MAX;
	bool minus = *s == '-';

	if (minus) {
		s++;
		max++;
	}
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (d > 9 || n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = minus && n > 0 ? -(long long)(n - 1) - 1 : (long long)n;
	return true;
}

/* A boolean as PostgreSQL prints one ("t") or casts it to text ("true"). */
static int
bool_parse(const char *s)
{
	if (s[0] == 't' && (s[1] == '\0' || strcmp(s, "true") == 0))
		return 1;
	if (s[0] == 'f' && (s[1] == '\0' || strcmp(s, "false") == 0))
		return 0;
	return -1;
}

static bool
starts_with(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++)
		if (*s != *prefix)
			return false;
	return true;
}

/*
 * A value compared to one of the rule's, as strcmp (UUIDs ignoring case);
 * the first bytes, compared here, mostly decide.
 */
static int
text_cmp(const struct fnode *n, const char *x, const char *v)
{
	if (n->field->type == FT_UUID)
		return strcasecmp(x, v);
	if (*x != *v)
		return (unsigned char)*x - (unsigned char)*v;
	return strcmp(x, v);
}

/* Whether x is one of the (sorted) values. */
static bool
vals_have(const struct fnode *n, const char *x)
{
	size_t lo = 0, hi = n->vals.n, mid;
	int c;

	if (hi <= LIST_SHORT) {
		for (mid = 0; mid < hi; mid++)
			if (text_cmp(n, x, n->vals.v[mid]) == 0)
				return true;
		return false;
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = text_cmp(n, x, n->vals.v[mid])) == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

static bool
nums_have(const struct fnode *n, long long x)
{
	size_t lo = 0, hi = n->vals.n, mid;

	if (hi <= LIST_SHORT) {
		for (mid = 0; mid < hi; mid++)
			if (x == n->nums[mid])
				return true;
		return false;
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (x == n->nums[mid])
			return true;
		if (x < n->nums[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/* The positive form of a condition on text (a tag's name included). */
static bool
text_match(const struct fnode *n, const char *x)
{
	switch (n->op) {
	case OP_EQ:
		return text_cmp(n, x, n->vals.v[0]) == 0;
	case OP_IN:
		return vals_have(n, x);
	case OP_PREFIX:
		return starts_with(x, n->vals.v[0]);
	case OP_CONTAINS:
		return strstr(x, n->vals.v[0]) != NULL;
	default:
		return false;
	}
}

static bool
num_match(const struct fnode *n, long long x)
{
	switch (n->op) {
	case OP_EQ:
		return x == n->nums[0];
	case OP_IN:
		return nums_have(n, x);
	case OP_GT:
		return x > n->nums[0];
	case OP_GE:
		return x >= n->nums[0];
	case OP_LT:
		return x < n->nums[0];
	case OP_LE:
		return x <= n->nums[0];
	default:
		return false;
	}
}

/* The positive form of a condition: NULL matches nothing but "exists". */
static bool
cond_match(const struct fnode *n, const struct filter_row *row)
{
	const char *x;
	long long i;
	int b;

	if (n->field->type == FT_TAG) {
		/* EXISTS over the link's tags. */
		if (n->op == OP_EXISTS)
			return row->ntags > 0;
		for (size_t t = 0; t < row->ntags; t++)
			if (row->tags[t] != NULL && text_match(n, row->tags[t]))
				return true;
		return false;
	}
	if (n->key != NULL)
		x = row->property != NULL ? row->property(row, n->key) : NULL;
	else
		x = row->values[n->index];
	if (x == NULL || n->op == OP_EXISTS)
		return x != NULL;
	switch (n->field->type) {
	case FT_INT:
		return int_parse(x, &i) && num_match(n, i);
	case FT_BOOL:
		return (b = bool_parse(x)) >= 0 && num_match(n, b);
	default:
		return text_match(n, x);
	}
}

static bool
node_match(const struct fnode *n, const struct filter_row *row)
{
	switch (n->kind) {
	case FN_COND:
		return cond_match(n, row) != n->neg;
	case FN_NOT:
		return !node_match(n->kids[0], row);
	case FN_AND:
		for (size_t i = 0; i < n->nkids; i++)
			if (!node_match(n->kids[i], row))
				return false;
		return true;
	case FN_OR:
		for (size_t i = 0; i < n->nkids; i++)
			if (node_match(n->kids[i], row))
				return true;
		return false;
	}
	return false;
}

bool
filter_match(const struct filter *f, const struct filter_row *row)
{
	return node_match(f->root, row);
}

/*
 * How well a condition narrows the rows down, for filter_required: 0 when
 * it cannot serve (not a plain = or list on a field of text), else higher
 * for the fields with more distinct values.
 */
static int
required_rank(const struct fnode *n)
{
	if (n->kind != FN_COND || n->neg || n->key != NULL ||
	    (n->op != OP_EQ && n->op != OP_IN))
		return 0;
	switch (n->field->type) {
	case FT_UUID:
		return 4;
	case FT_TAG:
		return 3;
	case FT_TEXT:
		return 2;
	case FT_ENUM:
		return 1;
	default:
		return 0; /* numbers compare as numbers, not as text */
	}
}

/* The best condition every match of n needs (its ANDs walked), into *best. */
static void
required_walk(const struct fnode *n, const struct fnode **best)
{
	int r;

	if (n->kind == FN_AND) {
		for (size_t i = 0; i < n->nkids; i++)
			required_walk(n->kids[i], best);
		return;
	}
	if ((r = required_rank(n)) == 0)
		return;
	if (*best == NULL || r > required_rank(*best) ||
	    (r == required_rank(*best) && n->vals.n < (*best)->vals.n))
		*best = n;
}

bool
filter_required(const struct filter *f, int *field, const char *const **values,
		size_t *nvalues)
{
	const struct fnode *best = NULL;

	required_walk(f->root, &best);
	if (best == NULL)
		return false;
	*field = (int)(best->field - fields);
	*values = (const char *const *)best->vals.v;
	*nvalues = best->vals.n;
	return true;
}

const char *
filter_row_value(const struct filter_row *row, const char *name)
{
	const struct field *f = field_find(name);
	const char *key;

	if (f != NULL)
		return f->type == FT_TAG ? NULL : row->values[f - fields];
	if (strncmp(name, PROPERTIES, strlen(PROPERTIES)) != 0)
		return NULL;
	key = name + strlen(PROPERTIES);
	if (!property_key_valid(key) || row->property == NULL)
		return NULL;
	return row->property(row, key);
}
