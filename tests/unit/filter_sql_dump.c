/*
 * filter_sql_dump.c - not a test: reads a filter (a YAML mapping) on
 * standard input and prints its SQL on the first line, then one parameter
 * per line, numbered from $1.  Errors go to standard error, with exit
 * status 1.  tests/integration/test_filter_sql.py runs the SQL against a
 * real database.  Parameters holding a newline cannot be told apart, so
 * the test's filters have none.
 */
#include <stdio.h>
#include <stdlib.h>

#include <yaml.h>

#include "filter.h"

int
main(void)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct strlist errs = {0}, params = {0};
	struct filter *f;
	char *sql;
	int rc = 1;

	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, stdin);
	if (!yaml_parser_load(&parser, &doc)) {
		fprintf(stderr, "stdin: %s\n",
			parser.problem ? parser.problem : "cannot parse");
		yaml_parser_delete(&parser);
		return 1;
	}
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		fprintf(stderr, "stdin: empty document\n");
		goto out;
	}
	if ((f = filter_parse(&doc, root, "stdin", "match", &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		goto out;
	}
	sql = filter_sql(f, 1, &params);
	printf("%s\n", sql);
	for (size_t i = 0; i < params.n; i++)
		printf("%s\n", params.v[i]);
	free(sql);
	filter_free(f);
	rc = 0;
out:
	strlist_free(&errs);
	strlist_free(&params);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}
