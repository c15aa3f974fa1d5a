/*
 * test_filter.c - unit tests of filter.c: the SQL and parameters of each
 * kind of condition, any/all/not and how negation reaches the conditions
 * (the NULL semantics), the joins a filter needs, and every error message
 * with its line:column.
 */
#include <stdarg.h>
#include <stdlib.h>

#include <yaml.h>

#include "filter.h"
#include "filter_index.h"
#include "ut.h"
#include "ut_row.h"

/* The filter at the root of text, or NULL with errors in errs. */
static struct filter *
parse(const char *text, struct strlist *errs)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct filter *f = NULL;

	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
				     strlen(text));
	if (!yaml_parser_load(&parser, &doc)) {
		strlist_addf(errs, "YAML: %s", parser.problem);
		yaml_parser_delete(&parser);
		return NULL;
	}
	f = filter_parse(&doc, yaml_document_get_root_node(&doc), "t.yaml",
			 "match", errs);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return f;
}

/* A filter that must load; errors are printed to explain a failure. */
static struct filter *
parse_ok(const char *text)
{
	struct strlist errs = {0};
	struct filter *f = parse(text, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  unexpected error: %s\n", errs.v[i]);
	CHECK(f != NULL);
	CHECK(errs.n == 0);
	strlist_free(&errs);
	return f;
}

/*
 * Compiles text from $first and checks its SQL and its parameters (the
 * NULL-terminated arguments after want).
 */
static void
check_sql_from(const char *text, int first, const char *want, ...)
{
	struct filter *f = parse_ok(text);
	struct strlist params = {0};
	const char *p;
	size_t i = 0;
	va_list ap;
	char *sql;

	if (f == NULL)
		return;
	sql = filter_sql(f, first, &params);
	CHECK_STR(sql, want);
	va_start(ap, want);
	while ((p = va_arg(ap, const char *)) != NULL) {
		CHECK(i < params.n);
		if (i < params.n)
			CHECK_STR(params.v[i], p);
		i++;
	}
	va_end(ap);
	CHECK(params.n == i);
	free(sql);
	strlist_free(&params);
	filter_free(f);
}

#define check_sql(text, ...) check_sql_from(text, 1, __VA_ARGS__)

static void
check_errors(const char *text, size_t n, const char *const *want)
{
	struct strlist errs = {0};
	struct filter *f = parse(text, &errs);

	CHECK(f == NULL);
	CHECK(errs.n == n);
	for (size_t i = 0; i < errs.n; i++) {
		if (i < n)
			CHECK_STR(errs.v[i], want[i]);
		else
			fprintf(stderr, "  extra error: %s\n", errs.v[i]);
	}
	filter_free(f);
	strlist_free(&errs);
}

static void
check_error(const char *text, const char *want)
{
	check_errors(text, 1, &want);
}

static void
test_equal(void)
{
	check_sql("country: FR\n", "(e.country = $1::text)", "FR", NULL);
	check_sql_from("country: FR\n", 3, "(e.country = $3::text)", "FR",
		       NULL);
	check_sql("{country: FR, city: Paris}\n",
		  "(e.country = $1::text AND e.city = $2::text)", "FR", "Paris",
		  NULL);
	check_sql("status: {'=': blocked}\n", "(e.status = $1::text)",
		  "blocked", NULL);
	check_sql("action: ACTION_FORM_SUBMISSION\n", "(e.action = $1::text)",
		  "ACTION_FORM_SUBMISSION", NULL);
}

static void
test_any_of(void)
{
	check_sql("device_type: [DEVICE_TYPE_MOBILE, DEVICE_TYPE_TABLET]\n",
		  "(e.device_type = ANY($1::text[]))",
		  "{\"DEVICE_TYPE_MOBILE\",\"DEVICE_TYPE_TABLET\"}", NULL);
	check_sql("asn: [3215, '0042']\n", "(e.asn = ANY($1::bigint[]))",
		  "{\"3215\",\"42\"}", NULL);
	check_sql("city: {'=': [Lyon]}\n", "(e.city = ANY($1::text[]))",
		  "{\"Lyon\"}", NULL);
}

/* Array literals quote every element: NULL, commas, braces stay text. */
static void
test_array_quoting(void)
{
	check_sql(
	    "city: ['a\"b', 'c\\d', 'x,y', '{z}', 'NULL', '', ' s ']\n",
	    "(e.city = ANY($1::text[]))",
	    "{\"a\\\"b\",\"c\\\\d\",\"x,y\",\"{z}\",\"NULL\",\"\",\" s \"}",
	    NULL);
}

static void
test_not_equal(void)
{
	check_sql("status: {not: ok}\n", "(e.status IS DISTINCT FROM $1::text)",
		  "ok", NULL);
	check_sql("status: {'!=': ok}\n",
		  "(e.status IS DISTINCT FROM $1::text)", "ok", NULL);
	check_sql("status: {not: [ok, blocked]}\n",
		  "((e.status = ANY($1::text[])) IS NOT TRUE)",
		  "{\"ok\",\"blocked\"}", NULL);
}

static void
test_integers(void)
{
	check_sql("visitor.lead_score: {'>=': 80}\n",
		  "(v.lead_score >= $1::bigint)", "80", NULL);
	check_sql("redirect_latency_ms: {'>': 100, '<=': 2000}\n",
		  "(e.redirect_latency_ms > $1::bigint AND "
		  "e.redirect_latency_ms <= $2::bigint)",
		  "100", "2000", NULL);
	check_sql("visitor.visit_count: {'<': -1}\n",
		  "(v.visit_count < $1::bigint)", "-1", NULL);
	check_sql("visitor.engagement_level: {'>': 50}\n",
		  "((v.lead_score_components->>'engagementLevel')::int > "
		  "$1::bigint)",
		  "50", NULL);
	check_sql("visitor.technological_aptitude: 30\n",
		  "((v.lead_score_components->>'technologicalAptitude')::int = "
		  "$1::bigint)",
		  "30", NULL);
}

static void
test_text_operators(void)
{
	check_sql("utm_campaign: {prefix: spring}\n",
		  "(starts_with(e.utm_campaign, $1::text))", "spring", NULL);
	check_sql("referrer: {contains: '%_'}\n",
		  "(strpos(e.referrer, $1::text) > 0)", "%_", NULL);
	check_sql("not: {referrer: {contains: x}}\n",
		  "((strpos(e.referrer, $1::text) > 0) IS NOT TRUE)", "x",
		  NULL);
	check_sql("not: {utm_campaign: {prefix: x}}\n",
		  "(starts_with(e.utm_campaign, $1::text) IS NOT TRUE)", "x",
		  NULL);
}

static void
test_exists(void)
{
	check_sql("error_code: {exists: true}\n", "(e.error_code IS NOT NULL)",
		  NULL);
	check_sql("visitor: {exists: no}\n", "(e.visitor_id IS NULL)", NULL);
	check_sql("not: {visitor: {exists: off}}\n",
		  "(e.visitor_id IS NOT NULL)", NULL);
}

static void
test_bool_and_uuid(void)
{
	check_sql("is_bot: yes\n", "(e.is_bot = $1::boolean)", "true", NULL);
	check_sql("is_bot: {not: off}\n",
		  "(e.is_bot IS DISTINCT FROM $1::boolean)", "false", NULL);
	check_sql("link: 0b6f0a4e-3b1c-4d7e-9a2b-1c2d3e4f5a6b\n",
		  "(e.link_id = $1::uuid)",
		  "0b6f0a4e-3b1c-4d7e-9a2b-1c2d3e4f5a6b", NULL);
	check_sql("qr_code: [0b6f0a4e-3b1c-4d7e-9a2b-1c2d3e4f5a6b]\n",
		  "(e.qr_code_id = ANY($1::uuid[]))",
		  "{\"0b6f0a4e-3b1c-4d7e-9a2b-1c2d3e4f5a6b\"}", NULL);
}

#define TAG_EXISTS                                                             \
	"EXISTS (SELECT 1 FROM link_tags flt JOIN tags ft ON "                 \
	"ft.workspace_id = flt.workspace_id AND ft.id = flt.tag_id WHERE "     \
	"flt.workspace_id = e.workspace_id AND flt.link_id = e.link_id"

static void
test_link_tag(void)
{
	check_sql("link.tag: pricing\n",
		  "(" TAG_EXISTS " AND ft.name = $1::text))", "pricing", NULL);
	check_sql("link.tag: [a, b]\n",
		  "(" TAG_EXISTS " AND ft.name = ANY($1::text[])))",
		  "{\"a\",\"b\"}", NULL);
	check_sql("link.tag: {not: pricing}\n",
		  "(NOT " TAG_EXISTS " AND ft.name = $1::text))", "pricing",
		  NULL);
	check_sql("not: {link.tag: [a, b]}\n",
		  "(NOT " TAG_EXISTS " AND ft.name = ANY($1::text[])))",
		  "{\"a\",\"b\"}", NULL);
	check_sql("link.tag: {exists: false}\n", "(NOT " TAG_EXISTS "))", NULL);
	check_sql("link.tag: {prefix: camp-}\n",
		  "(" TAG_EXISTS " AND starts_with(ft.name, $1::text)))",
		  "camp-", NULL);
}

static void
test_properties(void)
{
	check_sql("properties.plan: pro\n",
		  "((e.properties->>$1::text) = $2::text)", "plan", "pro",
		  NULL);
	check_sql_from("properties.a.b-c_9: {exists: true}\n", 7,
		       "((e.properties->>$7::text) IS NOT NULL)", "a.b-c_9",
		       NULL);
}

static void
test_any_all_not(void)
{
	check_sql("any: [{country: FR}, {city: Berlin}]\n",
		  "(e.country = $1::text OR e.city = $2::text)", "FR", "Berlin",
		  NULL);
	check_sql("all: [{country: FR}, {city: Paris}]\nis_bot: false\n",
		  "((e.country = $1::text AND e.city = $2::text) AND "
		  "e.is_bot = $3::boolean)",
		  "FR", "Paris", "false", NULL);
	/* De Morgan: negation reaches the conditions, with NULL-safe forms. */
	check_sql("not: {country: FR, visitor.lead_score: {'>=': 80}}\n",
		  "(e.country IS DISTINCT FROM $1::text OR "
		  "(v.lead_score >= $2::bigint) IS NOT TRUE)",
		  "FR", "80", NULL);
	check_sql("not: {any: [{country: FR}, {status: {not: ok}}]}\n",
		  "(e.country IS DISTINCT FROM $1::text AND e.status = "
		  "$2::text)",
		  "FR", "ok", NULL);
	check_sql("not: {not: {country: FR}}\n", "(e.country = $1::text)", "FR",
		  NULL);
	check_sql("any:\n  - {country: FR, any: [{city: A}, {city: B}]}\n"
		  "  - not: {is_bot: true}\n",
		  "((e.country = $1::text AND (e.city = $2::text OR e.city = "
		  "$3::text)) OR e.is_bot IS DISTINCT FROM $4::boolean)",
		  "FR", "A", "B", "true", NULL);
}

static void
test_empty(void)
{
	check_sql("{}\n", "true", NULL);
	check_sql("not: {}\n", "false", NULL);
	check_sql("any: [{}, {country: FR}]\n",
		  "(true OR e.country = $1::text)", "FR", NULL);
}

/* A negative condition compiles to a form that is true on NULL. */
static void
test_null_semantics(void)
{
	/* Positive: plain comparisons, NULL (false) on a NULL column. */
	check_sql("country: FR\n", "(e.country = $1::text)", "FR", NULL);
	/* Negative: IS DISTINCT FROM, IS NOT TRUE, IS NULL, NOT EXISTS. */
	check_sql("not: {country: FR}\n",
		  "(e.country IS DISTINCT FROM $1::text)", "FR", NULL);
	check_sql("not: {country: [FR, DE]}\n",
		  "((e.country = ANY($1::text[])) IS NOT TRUE)",
		  "{\"FR\",\"DE\"}", NULL);
	check_sql("not: {asn: {'<': 10}}\n",
		  "((e.asn < $1::bigint) IS NOT TRUE)", "10", NULL);
	check_sql("not: {region: {exists: true}}\n", "(e.region IS NULL)",
		  NULL);
	/* != under not is equality again, NULL not matching. */
	check_sql("not: {region: {'!=': X}}\n", "(e.region = $1::text)", "X",
		  NULL);
}

/* No value of a filter reaches the SQL text. */
static void
test_values_are_parameters(void)
{
	struct filter *f =
	    parse_ok("country: \"'; DROP TABLE events; --\"\n"
		     "properties.plan: {contains: \"x') OR true --\"}\n"
		     "link.tag: [\"$1\", \"a'b\"]\n"
		     "utm_source: {prefix: \"%\"}\n");
	struct strlist params = {0};
	char *sql;

	if (f == NULL)
		return;
	sql = filter_sql(f, 1, &params);
	CHECK(strstr(sql, "DROP") == NULL);
	CHECK(strstr(sql, "OR true") == NULL);
	CHECK(strstr(sql, "a'b") == NULL);
	CHECK(strstr(sql, "'") == NULL);
	CHECK(strstr(sql, "%") == NULL);
	CHECK(strstr(sql, "LIKE") == NULL);
	CHECK(params.n == 5);
	if (params.n == 5) {
		CHECK_STR(params.v[0], "'; DROP TABLE events; --");
		CHECK_STR(params.v[1], "plan");
		CHECK_STR(params.v[3], "{\"$1\",\"a'b\"}");
	}
	free(sql);
	strlist_free(&params);
	filter_free(f);
}

static void
test_joins(void)
{
	struct filter *f;

	f = parse_ok("country: FR\nlink.tag: x\nlink: "
		     "0b6f0a4e-3b1c-4d7e-9a2b-1c2d3e4f5a6b\nvisitor: "
		     "0b6f0a4e-3b1c-4d7e-9a2b-1c2d3e4f5a6b\n");
	CHECK(f != NULL && !filter_uses_link(f) && !filter_uses_visitor(f));
	filter_free(f);
	f = parse_ok("link.shortlink: abc\n");
	CHECK(f != NULL && filter_uses_link(f) && !filter_uses_visitor(f));
	filter_free(f);
	f = parse_ok("not: {any: [{visitor.profile_fit: 25}]}\n");
	CHECK(f != NULL && !filter_uses_link(f) && filter_uses_visitor(f));
	filter_free(f);
}

static void
test_field_table(void)
{
	const char *list = filter_field_list();

	CHECK_STR(filter_field_sql("country"), "e.country");
	CHECK_STR(filter_field_sql("link"), "e.link_id");
	CHECK_STR(filter_field_sql("visitor.recurring_scans"),
		  "(v.lead_score_components->>'recurringScans')::int");
	CHECK(filter_field_sql("link.tag") == NULL);
	CHECK(filter_field_sql("properties.plan") == NULL);
	CHECK(filter_field_sql("contry") == NULL);
	CHECK(strncmp(list, "action, status, ", 16) == 0);
	CHECK(strstr(list, ", visitor.brand_supportiveness, ") != NULL);
	CHECK(strstr(list, ", properties.<key>") != NULL);
	CHECK(list == filter_field_list());
}

static void
test_error_fields(void)
{
	check_error("country: FR\ncontry: FR\n",
		    "t.yaml:2:1: match: unknown field 'contry' (did you mean "
		    "'country'?)");
	check_error("any:\n  - {city: A}\n  - {ctiy: B}\n",
		    "t.yaml:3:6: match.any[1]: unknown field 'ctiy' (did you "
		    "mean 'city'?)");
	check_error(
	    "visitor.engagementLevel: 3\n",
	    "t.yaml:1:1: match: unknown field 'visitor.engagementLevel' "
	    "(did you mean 'visitor.engagement_level'?)");
	check_error("properties.x y: 1\n",
		    "t.yaml:1:1: match: bad property key 'x y' (expected 1 to "
		    "64 letters, digits, '_', '.' or '-')");
	check_error("country: FR\ncountry: DE\n",
		    "t.yaml:2:1: match: duplicate key 'country' (first at line "
		    "1)");
}

static void
test_error_unknown_field_lists_fields(void)
{
	struct strlist errs = {0};
	struct filter *f = parse("zzzzzzzzzzzzzzzzz: 1\n", &errs);

	CHECK(f == NULL);
	CHECK(errs.n == 1);
	if (errs.n == 1) {
		CHECK(strncmp(errs.v[0],
			      "t.yaml:1:1: match: unknown field "
			      "'zzzzzzzzzzzzzzzzz' (expected one of action, ",
			      76) == 0);
	}
	strlist_free(&errs);
}

static void
test_error_values(void)
{
	check_error("visitor.lead_score: {'>=': high}\n",
		    "t.yaml:1:28: match.visitor.lead_score: '>=' expects an "
		    "integer, got 'high'");
	check_error("status: failed\n",
		    "t.yaml:1:9: match.status: expected one of ok, error, "
		    "blocked, got 'failed'");
	check_error(
	    "device_type: [DEVICE_TYPE_MOBILE, mobile]\n",
	    "t.yaml:1:35: match.device_type[1]: expected one of "
	    "DEVICE_TYPE_UNSPECIFIED, DEVICE_TYPE_NATIVE, "
	    "DEVICE_TYPE_MOBILE, DEVICE_TYPE_TABLET, DEVICE_TYPE_DESKTOP, "
	    "DEVICE_TYPE_UNKNOWN, got 'mobile'");
	check_error("is_bot: maybe\n",
		    "t.yaml:1:9: match.is_bot: expected true or false, got "
		    "'maybe'");
	check_error(
	    "link: not-a-uuid\n",
	    "t.yaml:1:7: match.link: expected a UUID, got 'not-a-uuid'");
	check_error("asn: 99999999999999999999\n",
		    "t.yaml:1:6: match.asn: expected an integer, got "
		    "'99999999999999999999'");
	check_error(
	    "country:\n",
	    "t.yaml:1:9: match.country: expected a string, got an empty "
	    "value (use exists: false for no value)");
	check_error("country: []\n",
		    "t.yaml:1:10: match.country: expected a list of 1 to "
		    "1000 values, got 0 values");
	check_error("status: {not: [ok, {a: b}]}\n",
		    "t.yaml:1:20: match.status[1]: 'not' expects one of ok, "
		    "error, blocked, got a mapping");
	check_error("error_code: {exists: maybe}\n",
		    "t.yaml:1:22: match.error_code: 'exists' expects true or "
		    "false, got 'maybe'");
	check_error("country: {'!=': [FR]}\n",
		    "t.yaml:1:17: match.country: '!=' expects a single value, "
		    "got a list");
}

static void
test_error_operators(void)
{
	check_error("asn: {gt: 5}\n",
		    "t.yaml:1:7: match.asn: unknown operator 'gt' (expected =, "
		    "!=, >, >=, <, <=, not, prefix, contains, exists)");
	check_error("country: {'>': FR}\n",
		    "t.yaml:1:11: match.country: '>' does not apply to text "
		    "fields (expected =, !=, not, prefix, contains, exists)");
	check_error("asn: {prefix: '12'}\n",
		    "t.yaml:1:7: match.asn: 'prefix' does not apply to integer "
		    "fields (expected =, !=, >, >=, <, <=, not, exists)");
	check_error("status: {contains: o}\n",
		    "t.yaml:1:10: match.status: 'contains' does not apply to "
		    "enumerated fields (expected =, !=, not, exists)");
	check_error("country: {}\n",
		    "t.yaml:1:10: match.country: expected a value, a list "
		    "of values or a mapping of operators (=, !=, >, >=, <, <=, "
		    "not, prefix, contains, exists), got an empty mapping");
	check_error("asn: {'>': 1, '>': 2}\n",
		    "t.yaml:1:15: match.asn: duplicate operator '>'");
}

static void
test_error_structure(void)
{
	check_error("- country: FR\n",
		    "t.yaml:1:1: match: expected a mapping of fields to "
		    "conditions, got a list");
	check_error("any: {country: FR}\n",
		    "t.yaml:1:6: match.any: 'any' expects a non-empty list "
		    "of filters, got a mapping");
	check_error("all: []\n",
		    "t.yaml:1:6: match.all: 'all' expects a non-empty list "
		    "of filters, got an empty list");
	check_error("not: [country: FR]\n",
		    "t.yaml:1:6: match.not: expected a mapping of fields to "
		    "conditions, got a list");
	check_error(
	    "any: [{country: FR}, FR]\n",
	    "t.yaml:1:22: match.any[1]: expected a mapping of fields to "
	    "conditions, got 'FR'");
}

/* Every error is reported, not only the first. */
static void
test_error_all_collected(void)
{
	static const char *const want[] = {
	    "t.yaml:1:1: match: unknown field 'contry' (did you mean "
	    "'country'?)",
	    "t.yaml:2:9: match.status: expected one of ok, error, blocked, "
	    "got 'failed'",
	    "t.yaml:4:18: match.any[0].asn: '>=' expects an integer, got "
	    "'x'",
	    "t.yaml:5:16: match.not: unknown field 'citty' (did you mean "
	    "'city'?)",
	};

	check_errors("contry: FR\nstatus: failed\nany:\n  - {asn: {'>=': x}}\n"
		     "not: {city: A, citty: 1}\n",
		     nitems(want), want);
}

/* Aliases cannot make a filter grow without bound. */
static void
test_limits(void)
{
	struct strlist errs = {0};
	struct filter *f;
	char *text, *list;
	size_t n = 0;

	/* 1001 values in one list. */
	list = xmalloc(1001 * 3 + 16);
	n = (size_t)sprintf(list, "asn: [");
	for (int i = 0; i < 1001; i++)
		n += (size_t)sprintf(list + n, "%s1", i > 0 ? "," : "");
	strcpy(list + n, "]\n");
	check_error(list, "t.yaml:1:6: match.asn: expected a list of 1 to "
			  "1000 values, got 1001 values");
	free(list);

	/* 10^5 conditions by aliases. */
	text = xstrdup("a: &a {any: [{country: FR}, {country: DE}, {city: X}, "
		       "{city: Y}, {city: Z}, {city: W}, {city: V}, {city: U}, "
		       "{city: T}, {city: S}]}\n"
		       "b: &b {any: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]}\n"
		       "c: &c {any: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]}\n"
		       "d: &d {any: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]}\n"
		       "f: {any: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}\n");
	{
		yaml_parser_t parser;
		yaml_document_t doc;
		yaml_node_t *root, *fn = NULL;

		yaml_parser_initialize(&parser);
		yaml_parser_set_input_string(
		    &parser, (const unsigned char *)text, strlen(text));
		CHECK(yaml_parser_load(&parser, &doc));
		root = yaml_document_get_root_node(&doc);
		for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
		     p < root->data.mapping.pairs.top; p++)
			if (strcmp((char *)yaml_document_get_node(&doc, p->key)
				       ->data.scalar.value,
				   "f") == 0)
				fn = yaml_document_get_node(&doc, p->value);
		f = filter_parse(&doc, fn, "t.yaml", "match", &errs);
		CHECK(f == NULL);
		CHECK(errs.n == 1);
		if (errs.n == 1)
			CHECK(strstr(errs.v[0], "too many conditions (at most "
						"10000)") != NULL);
		yaml_document_delete(&doc);
		yaml_parser_delete(&parser);
	}
	free(text);
	strlist_free(&errs);
}

static void
test_field_kinds(void)
{
	CHECK(filter_field_kind("country") == FILTER_FIELD_VALUE);
	CHECK(filter_field_kind("visitor.lead_score") == FILTER_FIELD_NUMBER);
	CHECK(filter_field_kind("asn") == FILTER_FIELD_NUMBER);
	CHECK(filter_field_kind("link.tag") == FILTER_FIELD_MANY);
	CHECK(filter_field_kind("properties.plan") == FILTER_FIELD_MANY);
	CHECK(filter_field_kind("properties.") == FILTER_FIELD_UNKNOWN);
	CHECK(filter_field_kind("contry") == FILTER_FIELD_UNKNOWN);
	CHECK_STR(filter_field_suggest("contry"), "country");
	/* any/all/not are a filter's words, not fields. */
	CHECK(filter_field_suggest("anyy") == NULL ||
	      strcmp(filter_field_suggest("anyy"), "any") != 0);
}

/* ---- filter_match */

/* An event for filter_match, from "name=value" strings (ut_row.h). */
static void
ev_set(struct ut_row *e, ...)
{
	va_list ap;

	va_start(ap, e);
	ut_row_vset(e, ap);
	va_end(ap);
}

/* Whether the filter text matches e; -1 if it does not load. */
static int
match(const char *text, const struct ut_row *e)
{
	struct filter *f = parse_ok(text);
	bool m;

	if (f == NULL)
		return -1;
	m = filter_match(f, &e->row);
	filter_free(f);
	return m;
}

/* Checks text against events that must match (yes) and must not (no). */
#define MATCHES(text, e)     CHECK(match(text "\n", e) == 1)
#define NOT_MATCHES(text, e) CHECK(match(text "\n", e) == 0)

static void
test_match_text(void)
{
	struct ut_row fr, de, none;

	ev_set(&fr, "country=FR", "city=Paris",
	       "referrer=https://news.example/a?b=%_",
	       "utm_campaign=spring-sale", NULL);
	ev_set(&de, "country=DE", "city=Berlin", "utm_campaign=", NULL);
	ev_set(&none, NULL);

	MATCHES("country: FR", &fr);
	NOT_MATCHES("country: FR", &de);
	NOT_MATCHES("country: FR", &none);
	NOT_MATCHES("country: fr", &fr); /* case-sensitive */
	NOT_MATCHES("country: 'FR '", &fr);
	MATCHES("country: {'=': FR}", &fr);
	MATCHES("{country: FR, city: Paris}", &fr);
	NOT_MATCHES("{country: FR, city: Berlin}", &fr);

	MATCHES("country: [DE, FR]", &fr);
	MATCHES("country: [DE, FR]", &de);
	NOT_MATCHES("country: [DE, FR]", &none);
	NOT_MATCHES("country: [IT, ES, fr]", &fr);

	NOT_MATCHES("country: {'!=': FR}", &fr);
	MATCHES("country: {'!=': FR}", &de);
	MATCHES("country: {'!=': FR}", &none);
	MATCHES("country: {not: FR}", &none);
	NOT_MATCHES("country: {not: [FR, DE]}", &fr);
	MATCHES("country: {not: [IT, ES]}", &fr);
	MATCHES("country: {not: [FR, DE]}", &none);

	MATCHES("utm_campaign: {prefix: spring}", &fr);
	MATCHES("utm_campaign: {prefix: spring-sale}", &fr);
	NOT_MATCHES("utm_campaign: {prefix: spring-sale-}", &fr);
	NOT_MATCHES("utm_campaign: {prefix: Spring}", &fr);
	NOT_MATCHES("utm_campaign: {prefix: sale}", &fr);
	NOT_MATCHES("utm_campaign: {prefix: spring}", &none);
	MATCHES("utm_campaign: {prefix: ''}", &fr);
	MATCHES("utm_campaign: {prefix: ''}", &de); /* '' is not NULL */
	NOT_MATCHES("utm_campaign: {prefix: ''}", &none);
	/* Literal text: no LIKE wildcards. */
	NOT_MATCHES("utm_campaign: {prefix: '%'}", &fr);
	NOT_MATCHES("utm_campaign: {prefix: 'sprin_'}", &fr);

	MATCHES("referrer: {contains: '%_'}", &fr);
	MATCHES("referrer: {contains: news}", &fr);
	MATCHES("referrer: {contains: 'https://news.example/a?b=%_'}", &fr);
	NOT_MATCHES("referrer: {contains: 'a_b'}", &fr);
	NOT_MATCHES("referrer: {contains: NEWS}", &fr);
	NOT_MATCHES("referrer: {contains: news}", &none);
	MATCHES("referrer: {contains: ''}", &fr);
	NOT_MATCHES("referrer: {contains: ''}", &none);
	MATCHES("not: {referrer: {contains: news}}", &none);
	NOT_MATCHES("not: {referrer: {contains: news}}", &fr);
	MATCHES("not: {utm_campaign: {prefix: x}}", &none);

	MATCHES("city: {exists: true}", &fr);
	NOT_MATCHES("city: {exists: true}", &none);
	MATCHES("city: {exists: false}", &none);
	NOT_MATCHES("city: {exists: false}", &fr);
	MATCHES("utm_campaign: {exists: true}", &de);
	MATCHES("not: {city: {exists: true}}", &none);

	/* Several operators on one field are ANDed. */
	MATCHES("utm_campaign: {prefix: spring, contains: sale}", &fr);
	NOT_MATCHES("utm_campaign: {prefix: spring, '!=': spring-sale}", &fr);
}

static void
test_match_enum(void)
{
	struct ut_row ok, err, mobile;

	ev_set(&ok, "status=ok", "action=ACTION_SCAN", NULL);
	ev_set(&err, "status=error", "action=ACTION_CLICK",
	       "error_code=E_TIMEOUT", NULL);
	ev_set(&mobile, "status=ok", "device_type=DEVICE_TYPE_MOBILE",
	       "visit_type=VISIT_TYPE_FIRST", NULL);

	MATCHES("status: ok", &ok);
	NOT_MATCHES("status: ok", &err);
	MATCHES("status: {not: ok}", &err);
	MATCHES("status: [error, blocked]", &err);
	NOT_MATCHES("status: [error, blocked]", &ok);
	MATCHES("action: ACTION_CLICK", &err);
	MATCHES("error_code: E_TIMEOUT", &err);
	MATCHES("device_type: [DEVICE_TYPE_MOBILE, DEVICE_TYPE_TABLET]",
		&mobile);
	NOT_MATCHES("device_type: [DEVICE_TYPE_MOBILE, DEVICE_TYPE_TABLET]",
		    &ok);
	MATCHES("device_type: {not: DEVICE_TYPE_MOBILE}", &ok);
	NOT_MATCHES("device_type: {not: DEVICE_TYPE_MOBILE}", &mobile);
	MATCHES("device_type: {exists: false}", &ok);
	MATCHES("visit_type: {'=': VISIT_TYPE_FIRST}", &mobile);
	NOT_MATCHES("visit_type: VISIT_TYPE_RETURNING", &mobile);
}

/* Integers compare as numbers, never as text. */
static void
test_match_integers(void)
{
	struct ut_row nine, ten, neg, none, bad;

	ev_set(&nine, "asn=9", "visitor.lead_score=9",
	       "visitor.engagement_level=70", NULL);
	ev_set(&ten, "asn=10", "visitor.lead_score=100",
	       "redirect_latency_ms=2000", NULL);
	ev_set(&neg, "visitor.visit_count=-3", "asn=9223372036854775807", NULL);
	ev_set(&none, NULL);
	ev_set(&bad, "asn=12x", "visitor.lead_score=", NULL);

	MATCHES("asn: {'>': 9}", &ten);
	NOT_MATCHES("asn: {'>': 9}", &nine);
	MATCHES("asn: {'<': 10}", &nine);
	NOT_MATCHES("asn: {'<': 10}", &ten);
	MATCHES("asn: {'>=': 10, '<=': 10}", &ten);
	MATCHES("asn: {'<=': 9}", &nine);
	NOT_MATCHES("asn: {'>=': 10}", &nine);
	MATCHES("asn: 10", &ten);
	MATCHES("asn: '0010'", &ten);
	NOT_MATCHES("asn: 1", &ten);
	MATCHES("asn: [1, 10, 100]", &ten);
	NOT_MATCHES("asn: [1, 100, 1000]", &ten);
	MATCHES("asn: {not: [1, 100]}", &ten);
	MATCHES("asn: {'!=': 9}", &ten);
	NOT_MATCHES("asn: {'!=': 10}", &ten);
	MATCHES("asn: 9223372036854775807", &neg);
	MATCHES("asn: {'>': -9223372036854775808}", &neg);

	MATCHES("visitor.lead_score: {'>=': 80}", &ten);
	NOT_MATCHES("visitor.lead_score: {'>=': 80}", &nine);
	MATCHES("visitor.lead_score: {'>': 8, '<': 10}", &nine);
	MATCHES("visitor.visit_count: {'<': -1}", &neg);
	MATCHES("visitor.visit_count: -3", &neg);
	NOT_MATCHES("visitor.visit_count: {'>': -1}", &neg);
	MATCHES("visitor.engagement_level: {'>': 50}", &nine);
	NOT_MATCHES("visitor.engagement_level: {'>': 70}", &nine);
	MATCHES("redirect_latency_ms: {'>': 100, '<=': 2000}", &ten);

	/* NULL: no comparison holds, every negated one does. */
	NOT_MATCHES("asn: {'>': -1}", &none);
	NOT_MATCHES("asn: {'<': 1}", &none);
	NOT_MATCHES("asn: {'<=': 0}", &none);
	NOT_MATCHES("asn: {'>=': 0}", &none);
	NOT_MATCHES("asn: 0", &none);
	NOT_MATCHES("asn: [0, 1]", &none);
	MATCHES("not: {asn: {'>': -1}}", &none);
	MATCHES("not: {asn: {'<': 1}}", &none);
	MATCHES("asn: {'!=': 0}", &none);
	MATCHES("asn: {not: [0, 1]}", &none);
	NOT_MATCHES("not: {asn: {'>': 3}}", &ten);

	/* Text that is no integer counts as NULL. */
	NOT_MATCHES("asn: {'>': 0}", &bad);
	NOT_MATCHES("asn: 12", &bad);
	MATCHES("asn: {'!=': 12}", &bad);
	NOT_MATCHES("visitor.lead_score: {'<': 1000}", &bad);
}

/* Many values: the sorted lists are searched right. */
static void
test_match_long_lists(void)
{
	static const char *const ints[] = {"asn=-7", "asn=0",	"asn=1",
					   "asn=13", "asn=40",	"asn=41",
					   "asn=99", "asn=100", "asn=12345"};
	char text[4096];
	struct ut_row e;
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "asn: [");
	for (int i = 300; i > -300; i -= 3)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%d, ", i);
	snprintf(text + n, sizeof(text) - n, "12345]\n");
	for (size_t i = 0; i < nitems(ints); i++) {
		long long v = strtoll(ints[i] + 4, NULL, 10);
		bool want = v == 12345 || (v > -300 && v <= 300 && v % 3 == 0);

		ev_set(&e, ints[i], NULL);
		CHECK(match(text, &e) == want);
	}

	n = (size_t)snprintf(text, sizeof(text), "city: [");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%sc%d",
				      i > 0 ? ", " : "", i * 7);
	snprintf(text + n, sizeof(text) - n, "]\n");
	for (int i = 0; i < 700; i++) {
		char city[32];

		snprintf(city, sizeof(city), "city=c%d", i);
		ev_set(&e, city, NULL);
		CHECK(match(text, &e) == (i % 7 == 0));
	}
	ev_set(&e, "city=c", NULL);
	CHECK(match(text, &e) == 0);
	ev_set(&e, "city=", NULL);
	CHECK(match(text, &e) == 0);
}

static void
test_match_bool(void)
{
	struct ut_row t, f, tt, ff, none;

	ev_set(&t, "is_bot=t", NULL);
	ev_set(&f, "is_bot=f", NULL);
	ev_set(&tt, "is_bot=true", NULL);
	ev_set(&ff, "is_bot=false", NULL);
	ev_set(&none, NULL);

	MATCHES("is_bot: true", &t);
	MATCHES("is_bot: yes", &tt);
	NOT_MATCHES("is_bot: true", &f);
	NOT_MATCHES("is_bot: on", &ff);
	MATCHES("is_bot: false", &f);
	MATCHES("is_bot: no", &ff);
	NOT_MATCHES("is_bot: false", &none);
	NOT_MATCHES("is_bot: true", &none);
	MATCHES("is_bot: {not: true}", &f);
	MATCHES("is_bot: {not: yes}", &none);
	NOT_MATCHES("is_bot: {not: yes}", &tt);
	MATCHES("is_bot: {'!=': off}", &t);
	MATCHES("is_bot: [true, false]", &f);
	NOT_MATCHES("is_bot: [true, false]", &none);
	MATCHES("is_bot: {not: [false]}", &t);
	MATCHES("not: {is_bot: true}", &none);
	MATCHES("is_bot: {exists: true}", &ff);
	MATCHES("is_bot: {exists: false}", &none);
}

#define UUID_LOWER "0b6f0a4e-3b1c-4d7e-9a2b-1c2d3e4f5a6b"
#define UUID_UPPER "0B6F0A4E-3B1C-4D7E-9A2B-1C2D3E4F5A6B"
#define UUID_OTHER "ffffffff-3b1c-4d7e-9a2b-1c2d3e4f5a6b"

static void
test_match_uuid(void)
{
	struct ut_row link, other, none;

	ev_set(&link, "link=" UUID_LOWER, "visitor=" UUID_OTHER, NULL);
	ev_set(&other, "link=" UUID_OTHER, NULL);
	ev_set(&none, NULL);

	MATCHES("link: " UUID_LOWER, &link);
	/* The rule's UUIDs are lower-cased at load, for the SQL too. */
	MATCHES("link: " UUID_UPPER, &link);
	MATCHES("link: [" UUID_OTHER ", " UUID_UPPER "]", &link);
	check_sql("link: " UUID_UPPER "\n", "(e.link_id = $1::uuid)",
		  UUID_LOWER, NULL);
	check_sql("qr_code: [" UUID_UPPER "]\n",
		  "(e.qr_code_id = ANY($1::uuid[]))", "{\"" UUID_LOWER "\"}",
		  NULL);
	NOT_MATCHES("link: " UUID_LOWER, &other);
	NOT_MATCHES("link: " UUID_LOWER, &none);
	MATCHES("link: {not: " UUID_LOWER "}", &none);
	MATCHES("link: {not: [" UUID_LOWER "]}", &other);
	NOT_MATCHES("visitor: {not: [" UUID_UPPER ", " UUID_OTHER "]}", &link);
	MATCHES("visitor: {exists: true}", &link);
	MATCHES("qr_code: {exists: false}", &link);
}

static void
test_match_link_tag(void)
{
	struct ut_row two, one, none;

	ev_set(&two, "link.tag=pricing", "link.tag=promo-spring", NULL);
	ev_set(&one, "link.tag=promo", NULL);
	ev_set(&none, NULL);

	MATCHES("link.tag: pricing", &two);
	NOT_MATCHES("link.tag: pricing", &one);
	NOT_MATCHES("link.tag: pricing", &none);
	NOT_MATCHES("link.tag: Pricing", &two);
	MATCHES("link.tag: promo-spring", &two);
	MATCHES("link.tag: [promo, x]", &one);
	MATCHES("link.tag: [x, pricing, y]", &two);
	NOT_MATCHES("link.tag: [x, y]", &two);
	NOT_MATCHES("link.tag: [promo]", &none);

	/* Negative: the link has no such tag (none at all included). */
	NOT_MATCHES("link.tag: {not: pricing}", &two);
	MATCHES("link.tag: {not: pricing}", &one);
	MATCHES("link.tag: {not: pricing}", &none);
	MATCHES("link.tag: {'!=': pricing}", &one);
	NOT_MATCHES("link.tag: {not: [promo, pricing]}", &two);
	MATCHES("link.tag: {not: [x, y]}", &two);
	MATCHES("not: {link.tag: promo}", &two);
	NOT_MATCHES("not: {link.tag: promo}", &one);

	MATCHES("link.tag: {prefix: pro}", &two);
	MATCHES("link.tag: {prefix: pro}", &one);
	NOT_MATCHES("link.tag: {prefix: spring}", &two);
	MATCHES("link.tag: {contains: spring}", &two);
	NOT_MATCHES("link.tag: {contains: spring}", &one);
	NOT_MATCHES("link.tag: {contains: ''}", &none);
	MATCHES("not: {link.tag: {contains: spring}}", &none);

	MATCHES("link.tag: {exists: true}", &one);
	NOT_MATCHES("link.tag: {exists: true}", &none);
	MATCHES("link.tag: {exists: false}", &none);
	NOT_MATCHES("link.tag: {exists: false}", &two);

	/* Two conditions on tags may hold on different tags. */
	MATCHES("all: [{link.tag: pricing}, {link.tag: {prefix: promo}}]",
		&two);
	MATCHES("link.tag: {prefix: pri, contains: spring}", &two);
}

static void
test_match_properties(void)
{
	struct ut_row pro, free_plan, none;
	struct filter *f;

	ev_set(&pro, "properties.plan=pro", "properties.a.b-c_9=x",
	       "properties.n=3", NULL);
	ev_set(&free_plan, "properties.plan=free", "properties.plan2=pro",
	       NULL);
	ev_set(&none, NULL);

	MATCHES("properties.plan: pro", &pro);
	NOT_MATCHES("properties.plan: pro", &free_plan);
	NOT_MATCHES("properties.plan: pro", &none);
	NOT_MATCHES("properties.plan: PRO", &pro);
	MATCHES("properties.plan: {'!=': pro}", &free_plan);
	MATCHES("properties.plan: {'!=': pro}", &none);
	MATCHES("properties.plan: [free, pro]", &free_plan);
	MATCHES("properties.plan: {prefix: fr}", &free_plan);
	MATCHES("properties.plan: {contains: r}", &pro);
	MATCHES("properties.a.b-c_9: x", &pro);
	/* Property values are text, even numbers. */
	MATCHES("properties.n: '3'", &pro);
	MATCHES("properties.plan: {exists: true}", &free_plan);
	MATCHES("properties.plan: {exists: false}", &none);
	NOT_MATCHES("properties.pla: {exists: true}", &pro);
	MATCHES("not: {properties.plan: free}", &none);

	/* The property function is asked for the key only. */
	pro.calls = 0;
	MATCHES("country: {exists: false}", &pro);
	CHECK(pro.calls == 0);
	MATCHES("properties.plan: pro", &pro);
	CHECK(pro.calls == 1);

	/* Without a property function, every property is NULL. */
	pro.row.property = NULL;
	NOT_MATCHES("properties.plan: pro", &pro);
	MATCHES("properties.plan: {not: pro}", &pro);
	f = parse_ok("properties.plan: {exists: false}\n");
	CHECK(f != NULL && filter_match(f, &pro.row));
	filter_free(f);
}

static void
test_match_any_all_not(void)
{
	struct ut_row fr, de, bot, none;

	ev_set(&fr, "country=FR", "is_bot=f", "status=ok", NULL);
	ev_set(&de, "country=DE", "city=Berlin", "status=blocked", NULL);
	ev_set(&bot, "country=FR", "is_bot=t", "status=error", NULL);
	ev_set(&none, NULL);

	MATCHES("any: [{country: DE}, {is_bot: true}]", &de);
	MATCHES("any: [{country: DE}, {is_bot: true}]", &bot);
	NOT_MATCHES("any: [{country: DE}, {is_bot: true}]", &fr);
	MATCHES("all: [{country: FR}, {not: {is_bot: true}}]", &fr);
	NOT_MATCHES("all: [{country: FR}, {not: {is_bot: true}}]", &bot);
	NOT_MATCHES("all: [{country: FR}, {not: {is_bot: true}}]", &none);

	/* not is plain negation: NULLs included. */
	MATCHES("not: {country: FR}", &none);
	MATCHES("not: {country: FR}", &de);
	NOT_MATCHES("not: {country: FR}", &fr);
	MATCHES("not: {not: {country: FR}}", &fr);
	NOT_MATCHES("not: {not: {country: FR}}", &none);
	NOT_MATCHES("not: {region: {'!=': X}}", &none);
	/* De Morgan. */
	MATCHES("not: {country: FR, city: Berlin}", &fr);
	MATCHES("not: {country: FR, city: Berlin}", &none);
	NOT_MATCHES("not: {country: DE, city: Berlin}", &de);
	MATCHES("not: {any: [{country: FR}, {city: Berlin}]}", &none);
	NOT_MATCHES("not: {any: [{country: FR}, {city: Berlin}]}", &de);
	NOT_MATCHES("not: {any: [{country: FR}, {status: {not: ok}}]}", &none);

	/* Empty filters. */
	MATCHES("{}", &none);
	NOT_MATCHES("not: {}", &none);
	MATCHES("any: [{}, {country: FR}]", &none);
	MATCHES("all: [{}]", &de);

	/* Deeper. */
	MATCHES("any:\n  - all: [{country: FR}, {not: {is_bot: true}}]\n"
		"  - {city: Berlin, status: {not: [ok, error]}}\n"
		"not: {country: IT}",
		&de);
	NOT_MATCHES("any:\n  - all: [{country: FR}, {not: {is_bot: true}}]\n"
		    "  - {city: Berlin, status: {not: [ok, blocked]}}\n"
		    "not: {country: IT}",
		    &de);
	NOT_MATCHES("not:\n  any:\n    - not: {all: [{status: ok}, {not: "
		    "{country: FR}}]}\n    - {is_bot: true}\n",
		    &de);
	NOT_MATCHES("not:\n  any:\n    - not: {all: [{status: ok}, {not: "
		    "{country: FR}}]}\n    - {is_bot: true}\n",
		    &fr);
	ev_set(&de, "country=IT", "status=ok", "is_bot=f", NULL);
	MATCHES("not:\n  any:\n    - not: {all: [{status: ok}, {not: "
		"{country: FR}}]}\n    - {is_bot: true}\n",
		&de);
}

/* Every positive condition fails on NULL, every negative one holds. */
static void
test_match_null_semantics(void)
{
	static const char *const positive[] = {
	    "country: FR",
	    "country: [FR]",
	    "country: {prefix: F}",
	    "country: {contains: R}",
	    "country: {exists: true}",
	    "asn: 1",
	    "asn: [1, 2]",
	    "asn: {'>': 0}",
	    "asn: {'>=': 0}",
	    "asn: {'<': 0}",
	    "asn: {'<=': 0}",
	    "asn: {exists: true}",
	    "is_bot: true",
	    "is_bot: false",
	    "status: ok",
	    "link: " UUID_LOWER,
	    "visitor.profile_fit: 25",
	    "link.shortlink: spring",
	    "link.tag: x",
	    "link.tag: {exists: true}",
	    "properties.plan: pro",
	};
	struct ut_row none;
	char text[256];

	ev_set(&none, NULL);
	for (size_t i = 0; i < nitems(positive); i++) {
		CHECK(match(positive[i], &none) == 0);
		snprintf(text, sizeof(text), "not: {%s}\n", positive[i]);
		CHECK(match(text, &none) == 1);
		snprintf(text, sizeof(text), "not: {not: {%s}}\n", positive[i]);
		CHECK(match(text, &none) == 0);
	}
	MATCHES("country: {'!=': FR}", &none);
	MATCHES("country: {not: [FR]}", &none);
	MATCHES("asn: {'!=': 1}", &none);
	MATCHES("is_bot: {not: false}", &none);
	MATCHES("country: {exists: false}", &none);
	MATCHES("link.tag: {exists: false}", &none);
	MATCHES("link.tag: {not: x}", &none);
}

static void
test_field_positions(void)
{
	struct ut_row e;
	int n = filter_nfields(), i;

	CHECK(n == 41);
	CHECK_STR(filter_field_name_at(0), "action");
	CHECK_STR(filter_field_sql_at(0), "e.action");
	CHECK(filter_field_name_at(-1) == NULL);
	CHECK(filter_field_name_at(n) == NULL);
	CHECK(filter_field_sql_at(n) == NULL);
	for (i = 0; i < n; i++) {
		const char *name = filter_field_name_at(i);
		const char *sql = filter_field_sql_at(i);

		CHECK(name != NULL);
		CHECK(filter_field_index(name) == i);
		if (strcmp(name, "link.tag") == 0)
			CHECK(sql == NULL);
		else
			CHECK(sql != NULL && filter_field_sql(name) != NULL &&
			      strcmp(sql, filter_field_sql(name)) == 0);
	}
	CHECK_STR(
	    filter_field_sql_at(filter_field_index("visitor.profile_fit")),
	    "(v.lead_score_components->>'profileFit')::int");
	CHECK(filter_field_index("properties.plan") == -1);
	CHECK(filter_field_index("contry") == -1);
	CHECK(filter_field_index("link.tag") >= 0);

	ev_set(&e, "country=FR", "link.tag=t", "properties.plan=pro",
	       "visitor.lead_score=7", NULL);
	CHECK_STR(filter_row_value(&e.row, "country"), "FR");
	CHECK_STR(filter_row_value(&e.row, "visitor.lead_score"), "7");
	CHECK(filter_row_value(&e.row, "city") == NULL);
	CHECK_STR(filter_row_value(&e.row, "properties.plan"), "pro");
	CHECK(filter_row_value(&e.row, "properties.other") == NULL);
	CHECK(filter_row_value(&e.row, "properties.") == NULL);
	CHECK(filter_row_value(&e.row, "link.tag") == NULL);
	CHECK(filter_row_value(&e.row, "contry") == NULL);
	e.row.property = NULL;
	CHECK(filter_row_value(&e.row, "properties.plan") == NULL);
}

/* ---- filter_required and filter_index */

/* The field and values text's filter requires, as "field=v1|v2", or "-". */
static char *
required(const char *text)
{
	struct filter *f = parse_ok(text);
	const char *const *values;
	size_t n;
	int field;
	char *s;

	if (f == NULL)
		return xstrdup("?");
	if (!filter_required(f, &field, &values, &n)) {
		filter_free(f);
		return xstrdup("-");
	}
	s = xstrdup(filter_field_name_at(field));
	for (size_t i = 0; i < n; i++) {
		char *next =
		    xprintf("%s%c%s", s, i == 0 ? '=' : '|', values[i]);

		free(s);
		s = next;
	}
	filter_free(f);
	return s;
}

#define REQUIRED(text, want)                                                   \
	do {                                                                   \
		char *got_ = required(text "\n");                              \
		CHECK_STR(got_, want);                                         \
		free(got_);                                                    \
	} while (0)

static void
test_required_field(void)
{
	REQUIRED("country: FR", "country=FR");
	REQUIRED("country: [FR, DE]", "country=DE|FR");
	/* A link beats a tag, a tag any text, text an enumeration. */
	REQUIRED("{action: ACTION_SCAN, country: FR, link.tag: pricing,"
		 " link: 0b7c1a52-6f1e-4c59-9d7e-2b1f0c3d4e5a}",
		 "link=0b7c1a52-6f1e-4c59-9d7e-2b1f0c3d4e5a");
	REQUIRED("{action: ACTION_SCAN, country: FR, link.tag: pricing}",
		 "link.tag=pricing");
	REQUIRED("{action: ACTION_SCAN, country: FR}", "country=FR");
	REQUIRED("action: ACTION_SCAN", "action=ACTION_SCAN");
	/* Of two of a kind, the shorter list. */
	REQUIRED("{country: [FR, DE, IT], city: Paris}", "city=Paris");
	/* Inside all: still required; inside any, not, !=: not. */
	REQUIRED("all: [{status: error}, {all: [{country: FR}]}]",
		 "country=FR");
	REQUIRED("any: [{country: FR}, {country: DE}]", "-");
	REQUIRED("not: {country: FR}", "-");
	REQUIRED("country: {'!=': FR}", "-");
	REQUIRED("country: {not: [FR]}", "-");
	REQUIRED("{country: {not: [FR]}, link.tag: {'!=': x}}", "-");
	REQUIRED("{country: {not: [FR]}, city: Lyon}", "city=Lyon");
	/* Prefixes, numbers, booleans, properties, exists: not. */
	REQUIRED("utm_campaign: {prefix: spring}", "-");
	REQUIRED("asn: 3215", "-");
	REQUIRED("is_bot: false", "-");
	REQUIRED("visitor.lead_score: {'>=': 80}", "-");
	REQUIRED("properties.plan: pro", "-");
	REQUIRED("city: {exists: true}", "-");
	REQUIRED("{}", "-");
}

/* The candidates of row among the index's filters, as "0 3 4". */
static char *
candidates(const struct filter_index *x, const struct ut_row *e)
{
	int *out = NULL, cap = 0, n;
	char *s = xstrdup("");

	n = filter_index_candidates(x, &e->row, &out, &cap);
	for (int i = 0; i < n; i++) {
		char *next = xprintf("%s%s%d", s, i ? " " : "", out[i]);

		free(s);
		s = next;
	}
	free(out);
	return s;
}

#define CANDIDATES(x, e, want)                                                 \
	do {                                                                   \
		char *got_ = candidates(x, e);                                 \
		CHECK_STR(got_, want);                                         \
		free(got_);                                                    \
	} while (0)

static void
test_index_candidates(void)
{
	static const char *const texts[] = {
	    "link.tag: pricing",			  /* 0 */
	    "{link.tag: [pricing, demo], country: FR}",	  /* 1 */
	    "country: [FR, fr]",			  /* 2 */
	    NULL,					  /* 3: no filter */
	    "any: [{country: FR}, {city: Berlin}]",	  /* 4 */
	    "link: 0B7C1A52-6F1E-4C59-9D7E-2B1F0C3D4E5A", /* 5 */
	    "{city: Paris, action: ACTION_SCAN}",	  /* 6 */
	    "link.tag: Demo",				  /* 7 */
	};
	const struct filter *f[8];
	struct filter_index *x;
	struct ut_row e;

	for (int i = 0; i < 8; i++)
		f[i] = texts[i] != NULL ? parse_ok(texts[i]) : NULL;
	x = filter_index_new(f, 8);
	CHECK(filter_index_filed(x) == 6);

	ev_set(&e, NULL);
	CANDIDATES(x, &e, "3 4");
	ev_set(&e, "country=FR", "city=Paris", NULL);
	CANDIDATES(x, &e, "2 3 4 6");
	/* Tags: each once, in order, though two tags find filter 1. */
	ev_set(&e, "link.tag=pricing", "link.tag=demo", NULL);
	CANDIDATES(x, &e, "0 1 3 4 7");
	/* Case folded: a candidate, then filter_match decides. */
	ev_set(&e, "link=0b7c1a52-6f1e-4c59-9d7e-2b1f0c3d4e5a", NULL);
	CANDIDATES(x, &e, "3 4 5");
	CHECK(filter_match(f[5], &e.row));
	ev_set(&e, "link.tag=DEMO", NULL);
	CANDIDATES(x, &e, "1 3 4 7");
	CHECK(!filter_match(f[7], &e.row));

	filter_index_free(x);
	for (int i = 0; i < 8; i++)
		if (f[i] != NULL)
			filter_free((struct filter *)f[i]);
}

/* Every filter that matches a row is among its candidates. */
static void
test_index_misses_nothing(void)
{
	static const char *const texts[] = {
	    "link.tag: a",
	    "{link.tag: [a, b], country: FR}",
	    "{country: [FR, DE], city: {not: [Paris]}}",
	    "any: [{country: FR}, {link.tag: c}]",
	    "{action: [ACTION_SCAN, ACTION_CLICK], status: error}",
	    "not: {link.tag: a}",
	    "all: [{city: [Paris, Lyon]}, {country: FR}]",
	    "{device_type: DEVICE_TYPE_MOBILE, link.tag: {'!=': b}}",
	    "utm_source: {prefix: ne}",
	};
	static const char *const countries[] = {"FR", "DE", "IT", NULL};
	static const char *const cities[] = {"Paris", "Lyon", "Berlin", NULL};
	static const char *const tags[] = {"a", "b", "c", "A"};
	static const char *const actions[] = {"ACTION_SCAN", "ACTION_CLICK",
					      "ACTION_RESCAN"};
	enum { N = sizeof texts / sizeof *texts };
	const struct filter *f[N];
	struct filter_index *x;
	int *out = NULL, cap = 0, matched = 0;
	unsigned seed = 7;

	for (int i = 0; i < N; i++)
		f[i] = parse_ok(texts[i]);
	x = filter_index_new(f, N);
	for (int round = 0; round < 2000; round++) {
		struct ut_row e;
		int n, k = 0;

		ev_set(&e, NULL);
		seed = seed * 1103515245 + 12345;
		e.values[filter_field_index("country")] = countries[seed % 4];
		e.values[filter_field_index("city")] = cities[(seed >> 4) % 4];
		e.values[filter_field_index("action")] =
		    actions[(seed >> 8) % 3];
		e.values[filter_field_index("status")] =
		    (seed >> 10) % 2 ? "error" : "ok";
		e.values[filter_field_index("device_type")] =
		    (seed >> 11) % 2 ? "DEVICE_TYPE_MOBILE" : NULL;
		e.values[filter_field_index("utm_source")] =
		    (seed >> 12) % 2 ? "news" : NULL;
		for (int t = 0; t < 4; t++)
			if ((seed >> (16 + t)) % 2)
				e.tags[e.row.ntags++] = tags[t];
		n = filter_index_candidates(x, &e.row, &out, &cap);
		for (int i = 0; i < n; i++)
			CHECK(i == 0 || out[i - 1] < out[i]);
		for (int i = 0; i < N; i++) {
			if (!filter_match(f[i], &e.row))
				continue;
			matched++;
			while (k < n && out[k] < i)
				k++;
			CHECK(k < n && out[k] == i);
		}
	}
	CHECK(matched > 2000);
	free(out);
	filter_index_free(x);
	for (int i = 0; i < N; i++)
		filter_free((struct filter *)f[i]);
}

UT_MAIN("filter", UT(test_equal), UT(test_any_of), UT(test_array_quoting),
	UT(test_not_equal), UT(test_integers), UT(test_text_operators),
	UT(test_exists), UT(test_bool_and_uuid), UT(test_link_tag),
	UT(test_properties), UT(test_any_all_not), UT(test_empty),
	UT(test_null_semantics), UT(test_values_are_parameters), UT(test_joins),
	UT(test_field_table), UT(test_error_fields),
	UT(test_error_unknown_field_lists_fields), UT(test_error_values),
	UT(test_error_operators), UT(test_error_structure),
	UT(test_error_all_collected), UT(test_limits), UT(test_field_kinds),
	UT(test_match_text), UT(test_match_enum), UT(test_match_integers),
	UT(test_match_long_lists), UT(test_match_bool), UT(test_match_uuid),
	UT(test_match_link_tag), UT(test_match_properties),
	UT(test_match_any_all_not), UT(test_match_null_semantics),
	UT(test_field_positions), UT(test_required_field),
	UT(test_index_candidates), UT(test_index_misses_nothing))
