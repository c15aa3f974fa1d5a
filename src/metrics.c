/*
 * metrics.c - the metric registry behind metrics.h.  Series live in a hash
 * table keyed by name and labels, and in a list kept in first-use order so
 * that a family's series render together under one HELP/TYPE header.
 * Called from every module on the loop; single-threaded, no locking.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = {"counter", "gauge", "histogram"};

static const double default_buckets[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define MAX_BUCKETS 16

struct series {
	char *name;
	char *labels;
	char *help;
	enum metric_type type;
	double value; /* counter, gauge; histogram sum */
	uint64_t count;
	const double *bounds; /* histogram bucket bounds */
	size_t nbounds;
	uint64_t bucket_counts[MAX_BUCKETS];
	struct series *hash_next;
	struct series *order_next;
};

#define NHASH 512
static struct series *table[NHASH];
static struct series *order_head, *order_tail;

struct collector {
	metrics_collector_fn fn;
	void *arg;
	struct collector *next;
};
static struct collector *collectors;

static unsigned
hash2(const char *a, const char *b)
{
	unsigned h = 2166136261u;

	for (; *a != '\0'; a++)
		h = (h ^ (unsigned char)*a) * 16777619u;
	h = (h ^ '{') * 16777619u;
	for (; *b != '\0'; b++)
		h = (h ^ (unsigned char)*b) * 16777619u;
	return h % NHASH;
}

static struct series *
lookup(const char *name, const char *help, const char *labels,
       enum metric_type type)
{
	unsigned h = hash2(name, labels);
	struct series *s;

	for (s = table[h]; s != NULL; s = s->hash_next) {
		if (strcmp(s->name, name) == 0 &&
		    strcmp(s->labels, labels) == 0)
			return s;
	}
	s = xcalloc(1, sizeof *s);
	s->name = xstrdup(name);
	s->labels = xstrdup(labels);
	s->help = xstrdup(help);
	s->type = type;
	s->hash_next = table[h];
	table[h] = s;

	/* Insert after the family's last series so families stay together. */
	struct series *after = NULL;
	for (struct series *o = order_head; o != NULL; o = o->order_next) {
		if (strcmp(o->name, name) == 0)
			after = o;
	}
	if (after != NULL) {
		s->order_next = after->order_next;
		after->order_next = s;
		if (order_tail == after)
			order_tail = s;
	} else if (order_tail != NULL) {
		order_tail->order_next = s;
		order_tail = s;
	} else {
		order_head = order_tail = s;
	}
	return s;
}

void
metrics_counter_add(const char *name, const char *help, const char *labels,
		    double v)
{
	lookup(name, help, labels, METRIC_COUNTER)->value += v;
}

void
metrics_counter_set(const char *name, const char *help, const char *labels,
		    double v)
{
	lookup(name, help, labels, METRIC_COUNTER)->value = v;
}

void
metrics_gauge_set(const char *name, const char *help, const char *labels,
		  double v)
{
	lookup(name, help, labels, METRIC_GAUGE)->value = v;
}

void
metrics_histogram_observe_buckets(const char *name, const char *help,
				  const char *labels, double v,
				  const double *bounds, size_t nbounds)
{
	struct series *s = lookup(name, help, labels, METRIC_HISTOGRAM);

	if (s->bounds == NULL) {
		if (nbounds > MAX_BUCKETS)
			fatal("metrics: %s has more than %d buckets", name,
			      MAX_BUCKETS);
		s->bounds = bounds;
		s->nbounds = nbounds;
	}
	s->value += v;
	s->count++;
	for (size_t i = 0; i < s->nbounds; i++) {
		if (v <= s->bounds[i])
			s->bucket_counts[i]++;
	}
}

void
metrics_histogram_observe(const char *name, const char *help,
			  const char *labels, double v)
{
	metrics_histogram_observe_buckets(
	    name, help, labels, v, default_buckets, nitems(default_buckets));
}

char *
metrics_label_escape(const char *v)
{
	char *out = xmalloc(strlen(v) * 2 + 1), *p = out;

	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"') {
			*p++ = '\\';
			*p++ = *v;
		} else if (*v == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else {
			*p++ = *v;
		}
	}
	*p = '\0';
	return out;
}

void
metrics_add_collector(metrics_collector_fn fn, void *arg)
{
	struct collector *c = xmalloc(sizeof *c);

	c->fn = fn;
	c->arg = arg;
	c->next = collectors;
	collectors = c;
}

void
metrics_remove_collector(metrics_collector_fn fn, void *arg)
{
	for (struct collector **cp = &collectors; *cp != NULL;
	     cp = &(*cp)->next) {
		if ((*cp)->fn == fn && (*cp)->arg == arg) {
			struct collector *c = *cp;

			*cp = c->next;
			free(c);
			return;
		}
	}
}

static void
render_value(struct evbuffer *out, double v)
{
	if (isinf(v))
		evbuffer_add_printf(out, v > 0 ? "+Inf\n" : "-Inf\n");
	else if (isnan(v))
		evbuffer_add_printf(out, "NaN\n");
	else if (v == floor(v) && fabs(v) < 1e15)
		evbuffer_add_printf(out, "%.0f\n", v);
	else
		evbuffer_add_printf(out, "%.15g\n", v);
}

static void
render_histogram(struct evbuffer *out, const struct series *s)
{
	const char *sep = s->labels[0] != '\0' ? "," : "";

	for (size_t i = 0; i < s->nbounds; i++)
		evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n",
				    s->name, s->labels, sep, s->bounds[i],
				    (unsigned long long)s->bucket_counts[i]);
	evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name,
			    s->labels, sep, (unsigned long long)s->count);
	const char *open = s->labels[0] != '\0' ? "{" : "";
	const char *close = s->labels[0] != '\0' ? "}" : "";

	evbuffer_add_printf(out, "%s_sum%s%s%s ", s->name, open, s->labels,
			    close);
	render_value(out, s->value);
	evbuffer_add_printf(out, "%s_count%s%s%s %llu\n", s->name, open,
			    s->labels, close, (unsigned long long)s->count);
}

void
metrics_render(struct evbuffer *out)
{
	const char *family = NULL;

	for (struct collector *c = collectors; c != NULL; c = c->next)
		c->fn(c->arg);
	for (struct series *s = order_head; s != NULL; s = s->order_next) {
		if (family == NULL || strcmp(family, s->name) != 0) {
			family = s->name;
			evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
					    s->name, s->help, s->name,
					    type_names[s->type]);
		}
		if (s->type == METRIC_HISTOGRAM) {
			render_histogram(out, s);
			continue;
		}
		if (s->labels[0] != '\0')
			evbuffer_add_printf(out, "%s{%s} ", s->name, s->labels);
		else
			evbuffer_add_printf(out, "%s ", s->name);
		render_value(out, s->value);
	}
}

void
metrics_free_all(void)
{
	struct series *s = order_head;

	while (s != NULL) {
		struct series *next = s->order_next;

		free(s->name);
		free(s->labels);
		free(s->help);
		free(s);
		s = next;
	}
	memset(table, 0, sizeof table);
	order_head = order_tail = NULL;
	while (collectors != NULL) {
		struct collector *c = collectors;

		collectors = c->next;
		free(c);
	}
}
