/*
 * metrics.h - a small registry of counters, gauges and histograms, keyed by
 * name and label set, rendered in the Prometheus text format for
 * GET /metrics.  Modules update series as things happen; values that are
 * cheaper to read than to track (pool state, uptime) come from collectors
 * called just before rendering.
 */
#ifndef LP_METRICS_H
#define LP_METRICS_H

#include <event2/buffer.h>

/*
 * labels is the inside of the braces, already escaped, e.g.
 * "route=\"/healthz\",code=\"200\"", or "" for none.  help is kept from
 * the first call for a name.
 */
void metrics_counter_add(const char *name, const char *help, const char *labels,
			 double v);
/* For counters kept elsewhere (read by a collector): sets the total. */
void metrics_counter_set(const char *name, const char *help, const char *labels,
			 double v);
void metrics_gauge_set(const char *name, const char *help, const char *labels,
		       double v);
/* Seconds-scaled default buckets, from 1 ms to 10 s. */
void metrics_histogram_observe(const char *name, const char *help,
			       const char *labels, double v);

/* Same with the caller's bucket bounds (static storage, ascending). */
void metrics_histogram_observe_buckets(const char *name, const char *help,
				       const char *labels, double v,
				       const double *bounds, size_t nbounds);

/* Escapes a label value (backslash, quote, newline) into a new string. */
char *metrics_label_escape(const char *);

typedef void (*metrics_collector_fn)(void *arg);
void metrics_add_collector(metrics_collector_fn, void *arg);
void metrics_remove_collector(metrics_collector_fn, void *arg);

void metrics_render(struct evbuffer *);
void metrics_free_all(void);

#endif
