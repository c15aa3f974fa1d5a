/*
 * filter_index.c - which of many filters may match a row (filter_index.h).
 * One hash table per field in use, from a value (folded to lower case) to
 * the filters filed under it; the filters with no required field in a
 * list of their own.  Calls filter.c for each filter's required field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter_index.h"
#include "util.h"

struct entry {
	char *key; /* lower case; NULL: a free slot */
	uint64_t hash;
	int *ids;
	int n, cap;
};

struct table {
	int field;
	struct entry *slots;
	uint32_t cap; /* a power of two, or 0 */
	uint32_t n;
};

struct filter_index {
	struct table *tables; /* the fields in use */
	int ntables;
	int *always; /* filters with no required field */
	int nalways;
	int tag_field;
	int filed;
};

static uint64_t
fold_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		h = (h ^ c) * 1099511628211ULL;
	}
	return h;
}

static void
ids_add(int **ids, int *n, int *cap, int id)
{
	/* Filed in order: a repeat can only be the last one. */
	if (*n > 0 && (*ids)[*n - 1] == id)
		return;
	if (*n == *cap) {
		*cap = *cap == 0 ? 4 : *cap * 2;
		*ids = xrealloc(*ids, sizeof(**ids) * (size_t)*cap);
	}
	(*ids)[(*n)++] = id;
}

static struct entry *
slot(const struct table *t, const char *key, uint64_t h)
{
	uint32_t i = (uint32_t)h & (t->cap - 1);

	while (t->slots[i].key != NULL &&
	       (t->slots[i].hash != h || strcasecmp(t->slots[i].key, key) != 0))
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static const struct entry *
lookup(const struct table *t, const char *key)
{
	const struct entry *e;

	if (t->cap == 0)
		return NULL;
	e = slot(t, key, fold_hash(key));
	return e->key != NULL ? e : NULL;
}

static void
grow(struct table *t)
{
	struct entry *old = t->slots;
	uint32_t oldcap = t->cap;

	t->cap = oldcap == 0 ? 16 : oldcap * 2;
	t->slots = xcalloc(t->cap, sizeof(*t->slots));
	for (uint32_t i = 0; i < oldcap; i++)
		if (old[i].key != NULL)
			*slot(t, old[i].key, old[i].hash) = old[i];
	free(old);
}

static void
file(struct table *t, const char *value, int id)
{
	uint64_t h = fold_hash(value);
	struct entry *e;

	if ((t->n + 1) * 4 > t->cap * 3)
		grow(t);
	e = slot(t, value, h);
	if (e->key == NULL) {
		e->key = xstrdup(value);
		e->hash = h;
		t->n++;
	}
	ids_add(&e->ids, &e->n, &e->cap, id);
}

static struct table *
table_for(struct filter_index *x, int field)
{
	for (int i = 0; i < x->ntables; i++)
		if (x->tables[i].field == field)
			return &x->tables[i];
	x->tables =
	    xrealloc(x->tables, sizeof(*x->tables) * (size_t)(x->ntables + 1));
	memset(&x->tables[x->ntables], 0, sizeof(*x->tables));
	x->tables[x->ntables].field = field;
	return &x->tables[x->ntables++];
}

struct filter_index *
filter_index_new(const struct filter *const *filters, int n)
{
	struct filter_index *x = xcalloc(1, sizeof(*x));
	int acap = 0;

	x->tag_field = filter_field_index("link.tag");
	for (int i = 0; i < n; i++) {
		const char *const *values;
		size_t nvalues;
		int field;
		struct table *t;

		if (filters[i] == NULL ||
		    !filter_required(filters[i], &field, &values, &nvalues)) {
			ids_add(&x->always, &x->nalways, &acap, i);
			continue;
		}
		t = table_for(x, field);
		for (size_t j = 0; j < nvalues; j++)
			file(t, values[j], i);
		x->filed++;
	}
	return x;
}

void
filter_index_free(struct filter_index *x)
{
	if (x == NULL)
		return;
	for (int i = 0; i < x->ntables; i++) {
		struct table *t = &x->tables[i];

		for (uint32_t j = 0; j < t->cap; j++) {
			free(t->slots[j].key);
			free(t->slots[j].ids);
		}
		free(t->slots);
	}
	free(x->tables);
	free(x->always);
	free(x);
}

int
filter_index_filed(const struct filter_index *x)
{
	return x->filed;
}

static void
out_add(int **out, int *cap, int *n, const int *ids, int k)
{
	if (*n + k > *cap) {
		while (*n + k > *cap)
			*cap = *cap == 0 ? 64 : *cap * 2;
		*out = xrealloc(*out, sizeof(**out) * (size_t)*cap);
	}
	memcpy(*out + *n, ids, sizeof(*ids) * (size_t)k);
	*n += k;
}

static int
int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

int
filter_index_candidates(const struct filter_index *x,
			const struct filter_row *row, int **out, int *cap)
{
	int n = 0, sources = 0, k = 0;

	for (int i = 0; i < x->ntables; i++) {
		const struct table *t = &x->tables[i];
		const struct entry *e;

		if (t->field == x->tag_field) {
			for (size_t j = 0; j < row->ntags; j++) {
				if (row->tags[j] == NULL ||
				    (e = lookup(t, row->tags[j])) == NULL)
					continue;
				out_add(out, cap, &n, e->ids, e->n);
				sources++;
			}
		} else if (row->values[t->field] != NULL &&
			   (e = lookup(t, row->values[t->field])) != NULL) {
			out_add(out, cap, &n, e->ids, e->n);
			sources++;
		}
	}
	if (x->nalways > 0) {
		out_add(out, cap, &n, x->always, x->nalways);
		sources++;
	}
	if (sources <= 1)
		return n; /* one list: ascending already */
	qsort(*out, (size_t)n, sizeof(**out), int_cmp);
	for (int i = 0; i < n; i++)
		if (k == 0 || (*out)[k - 1] != (*out)[i])
			(*out)[k++] = (*out)[i];
	return k;
}
