/*
 * filter_index.h - which of many filters may match a row, without trying
 * them all.  Each filter is filed under a field it needs (filter_required:
 * link.tag = pricing, country in [FR, DE], ...) and its values; a row
 * looks its own values up, and only the filters found there, with those
 * that need no particular field, are candidates.  The rules engine tries
 * a thousand rules' filters on every event: most rules watch one tag or
 * link, and an event has one link and a few tags.
 */
#ifndef LINKPULSE_FILTER_INDEX_H
#define LINKPULSE_FILTER_INDEX_H

#include "filter.h"

struct filter_index;

/* filters[i] NULL: matches every row (always a candidate). */
struct filter_index *filter_index_new(const struct filter *const *filters,
				      int n);
void filter_index_free(struct filter_index *);

/*
 * The positions of the filters that may match row, ascending and each
 * once, in *out (grown as needed, *cap its size); returns how many.  Every
 * filter that matches row is among them: the caller still calls
 * filter_match on each.
 */
int filter_index_candidates(const struct filter_index *,
			    const struct filter_row *, int **out, int *cap);

/* Filters filed under a field (the others are candidates for every row). */
int filter_index_filed(const struct filter_index *);

#endif
