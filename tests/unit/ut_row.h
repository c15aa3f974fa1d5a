/*
 * ut_row.h - an event row for filter_match and the rules engine, built in
 * unit tests from "name=value" strings: a field of the filter table,
 * "link.tag=T" (one tag each time) or "properties.KEY=V".  Fields and
 * properties not named are NULL; the strings must outlive the row.
 */
#ifndef LP_UT_ROW_H
#define LP_UT_ROW_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "ut.h"

#define UT_ROW_MAX 16

struct ut_row {
	const char *values[64];
	const char *tags[UT_ROW_MAX];
	char pkeys[UT_ROW_MAX][32];
	const char *pvals[UT_ROW_MAX];
	size_t nprops;
	int calls; /* of the property function */
	struct filter_row row;
};

static const char *
ut_row_property(const struct filter_row *row, const char *key)
{
	struct ut_row *x = row->arg;

	x->calls++;
	for (size_t i = 0; i < x->nprops; i++)
		if (strcmp(x->pkeys[i], key) == 0)
			return x->pvals[i];
	return NULL;
}

/* Sets x from the NULL-terminated strings of ap. */
static void
ut_row_vset(struct ut_row *x, va_list ap)
{
	const char *s, *eq;
	char name[64];
	size_t len;
	int i;

	memset(x, 0, sizeof(*x));
	CHECK((size_t)filter_nfields() <=
	      sizeof(x->values) / sizeof(*x->values));
	x->row.values = x->values;
	x->row.tags = x->tags;
	x->row.property = ut_row_property;
	x->row.arg = x;
	while ((s = va_arg(ap, const char *)) != NULL) {
		eq = strchr(s, '=');
		CHECK(eq != NULL);
		if (eq == NULL)
			continue;
		len = (size_t)(eq - s);
		if (len == 8 && strncmp(s, "link.tag", 8) == 0) {
			CHECK(x->row.ntags < UT_ROW_MAX);
			if (x->row.ntags < UT_ROW_MAX)
				x->tags[x->row.ntags++] = eq + 1;
		} else if (len > 11 && strncmp(s, "properties.", 11) == 0) {
			CHECK(x->nprops < UT_ROW_MAX && len - 11 < 32);
			if (x->nprops >= UT_ROW_MAX || len - 11 >= 32)
				continue;
			snprintf(x->pkeys[x->nprops], sizeof x->pkeys[0],
				 "%.*s", (int)(len - 11), s + 11);
			x->pvals[x->nprops++] = eq + 1;
		} else {
			CHECK(len < sizeof(name));
			snprintf(name, sizeof name, "%.*s", (int)len, s);
			i = filter_field_index(name);
			CHECK(i >= 0);
			if (i >= 0)
				x->values[i] = eq + 1;
		}
	}
}

#endif
