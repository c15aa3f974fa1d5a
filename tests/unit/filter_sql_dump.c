/*
 * filter_sql_dump.c - not a test: what tests/integration/test_filter_sql.py
 * checks against a real database.  Three modes:
 *
 *   filter_sql_dump
 *	reads a filter (a YAML mapping) on standard input and prints its SQL
 *	on the first line, then one parameter per line, numbered from $1.
 *	Parameters holding a newline cannot be told apart, so the test's
 *	filters have none.
 *   filter_sql_dump --fields
 *	prints the table of fields by position, one "NAME<TAB>SQL" line each
 *	(SQL empty for link.tag).
 *   filter_sql_dump --match FILTER...
 *	reads events on standard input, one JSON object a line:
 *	{"values": [one string or null per field], "tags": [names],
 *	"properties": {key: string or null}} (the text of ->> for each key);
 *	then prints, for each FILTER (YAML text), one line with the numbers
 *	(from 0) of the events filter_match accepts, separated by spaces.
 *
 * Errors go to standard error, with exit status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "filter.h"

/* The filter in text, or on stdin if text is NULL; NULL after errors. */
static struct filter *
load(const char *text)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct strlist errs = {0};
	struct filter *f = NULL;

	yaml_parser_initialize(&parser);
	if (text != NULL)
		yaml_parser_set_input_string(
		    &parser, (const unsigned char *)text, strlen(text));
	else
		yaml_parser_set_input_file(&parser, stdin);
	if (!yaml_parser_load(&parser, &doc)) {
		fprintf(stderr, "%s: %s\n", text != NULL ? text : "stdin",
			parser.problem ? parser.problem : "cannot parse");
		yaml_parser_delete(&parser);
		return NULL;
	}
	if ((root = yaml_document_get_root_node(&doc)) == NULL)
		fprintf(stderr, "stdin: empty document\n");
	else if ((f = filter_parse(&doc, root, "stdin", "match", &errs)) ==
		 NULL)
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
	strlist_free(&errs);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return f;
}

static int
dump_sql(void)
{
	struct strlist params = {0};
	struct filter *f;
	char *sql;

	if ((f = load(NULL)) == NULL)
		return 1;
	sql = filter_sql(f, 1, &params);
	printf("%s\n", sql);
	for (size_t i = 0; i < params.n; i++)
		printf("%s\n", params.v[i]);
	free(sql);
	strlist_free(&params);
	filter_free(f);
	return 0;
}

static int
dump_fields(void)
{
	for (int i = 0; i < filter_nfields(); i++) {
		const char *sql = filter_field_sql_at(i);

		printf("%s\t%s\n", filter_field_name_at(i),
		       sql != NULL ? sql : "");
	}
	return 0;
}

/* One event of --match; the strings are its JSON's. */
struct event {
	json_t *json;
	const char **values;
	const char **tags;
	struct filter_row row;
};

static const char *
event_property(const struct filter_row *row, const char *key)
{
	const struct event *e = row->arg;

	return json_string_value(
	    json_object_get(json_object_get(e->json, "properties"), key));
}

/* Reads one event from a line of JSON; false after an error. */
static bool
event_read(struct event *e, const char *line, size_t n)
{
	json_error_t err;
	json_t *values, *tags, *v;
	size_t i, nfields = (size_t)filter_nfields();

	memset(e, 0, sizeof(*e));
	if ((e->json = json_loads(line, 0, &err)) == NULL) {
		fprintf(stderr, "event %zu: %s\n", n, err.text);
		return false;
	}
	values = json_object_get(e->json, "values");
	tags = json_object_get(e->json, "tags");
	if (!json_is_array(values) || json_array_size(values) != nfields ||
	    (tags != NULL && !json_is_array(tags))) {
		fprintf(stderr, "event %zu: expected %zu values and tags\n", n,
			nfields);
		return false;
	}
	e->values = xcalloc(nfields, sizeof(*e->values));
	for (i = 0; i < nfields; i++) {
		v = json_array_get(values, i);
		if (!json_is_null(v) && !json_is_string(v)) {
			fprintf(stderr, "event %zu: value %zu is no string\n",
				n, i);
			return false;
		}
		e->values[i] = json_string_value(v);
	}
	e->tags = xcalloc(json_array_size(tags) + 1, sizeof(*e->tags));
	for (i = 0; i < json_array_size(tags); i++)
		e->tags[i] = json_string_value(json_array_get(tags, i));
	e->row.values = e->values;
	e->row.tags = e->tags;
	e->row.ntags = json_array_size(tags);
	e->row.property = event_property;
	e->row.arg = e;
	return true;
}

static int
match(int nfilters, char **filters)
{
	struct event *events = NULL;
	size_t nevents = 0, cap = 0;
	char *line = NULL;
	size_t len = 0;
	struct filter *f;
	int rc = 1;

	while (getline(&line, &len, stdin) != -1) {
		if (nevents == cap) {
			cap = cap * 2 + 16;
			events = xrealloc(events, cap * sizeof(*events));
		}
		if (!event_read(&events[nevents], line, nevents)) {
			nevents++;
			goto out;
		}
		nevents++;
	}
	for (int i = 0; i < nfilters; i++) {
		if ((f = load(filters[i])) == NULL)
			goto out;
		for (size_t j = 0, n = 0; j < nevents; j++)
			if (filter_match(f, &events[j].row))
				printf("%s%zu", n++ > 0 ? " " : "", j);
		printf("\n");
		filter_free(f);
	}
	rc = 0;
out:
	for (size_t j = 0; j < nevents; j++) {
		json_decref(events[j].json);
		free(events[j].values);
		free(events[j].tags);
	}
	free(events);
	free(line);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc == 1)
		return dump_sql();
	if (argc == 2 && strcmp(argv[1], "--fields") == 0)
		return dump_fields();
	if (argc >= 2 && strcmp(argv[1], "--match") == 0)
		return match(argc - 2, argv + 2);
	fprintf(stderr,
		"usage: filter_sql_dump [--fields | --match FILTER...]\n");
	return 1;
}
