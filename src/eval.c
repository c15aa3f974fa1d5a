/*
 * eval.c - the rules engine (eval.h).  Owns the compiled rules (struct
 * crule: what each rule observes, its bucket width and span, its groups
 * in a hash table), the groups' windows (sparse buckets and sets of
 * distinct values), the alert state machine, the rendering of labels,
 * annotations and fingerprints, the time intervals, and the kinds'
 * evaluation (struct eval_kind, referenced from the table of kinds in
 * rules.c).  Calls filter.c (filter_match) and util; called by alerts.c
 * (the daemon) and ctl_rules_test.c (rule tests).
 *
 * A bucket k of width w holds the events of (k*w, (k+1)*w], so the
 * window of length W at time T, (T-W, T], is exactly buckets T/w-W/w ..
 * T/w-1 when w divides T and W.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval.h"
#include "filter_index.h"
#include "rules.h"
#include "util.h"

/* Buckets per window, and at most per span (spike's offset baselines). */
#define WINDOW_BUCKETS 60
#define SPAN_BUCKETS   720
/* Joins a group key's parts: a byte no field value holds in practice. */
#define SEP '\x1f'

/*
 * 8 bytes: the bucket's number (its start over its width) less the
 * buckets' base, and its events.
 */
struct bucket {
	uint32_t dk;
	uint32_t n;
};

/*
 * What a bucket of a wide window adds: a rule counts a numerator (ratio)
 * or sums a field (sum, avg), never both.
 */
union bucket_x {
	uint32_t num;
	float sum;
};

/*
 * Buckets in time order, sparse: only those that had events:
 * mem[off .. off+n), in an allocation of cap (expired ones leave room
 * before off, reused when the end is reached).  A wide window (ratio,
 * sum, avg) has cap union bucket_x after its cap buckets, one per bucket
 * (bucket_xs); the others, most windows, only the 8 bytes.  base numbers
 * them: the live ones, a span apart at most, fit 32 bits from it.
 */
struct buckets {
	struct bucket *mem;
	int64_t base;
	uint32_t off, n, cap;
	bool wide;
};

/* Distinct values by hash (never 0), with the time each was last seen. */
struct vent {
	uint64_t h;
	int64_t t;
};

struct vset {
	struct vent *v;
	uint32_t cap, n;
	int64_t oldest; /* no entry was last seen before this */
};

/*
 * One allocation: the fields, then the key (workspace SEP value SEP value
 * ..., one value per group field, "" for none).  A rule keeps either
 * coarse buckets or distinct values besides its window, never both
 * (crule_keeps_hist, crule_keeps_seen).
 */
struct group {
	uint64_t hash;
	struct buckets bk; /* the window (spike: both windows) */
	union {
		struct buckets hist; /* spike with an offset: the span */
		struct vset seen;    /* distinct values (cardinality, ...) */
	} u;
	int64_t created_at; /* flatline: observed since */
	/* the alert */
	int64_t active_at, fired_at, resolved_at, notified_at, clear_since;
	double value;
	char *text_value; /* new_value's value */
	/* The crule's event_refs as the event that fired it had them. */
	char **event_values;
	enum alert_state state;
	int notifications;
	bool seeded; /* flatline: a key of the seeds */
	bool owed;   /* resolved while muted: announce it when allowed */
	char key[];
};

/* What a kind's evaluation says about a group at a time. */
struct eval_cond {
	double value;
	double threshold;
	bool fires;  /* the condition holds */
	bool clears; /* a firing alert's value is back on the resolving side */
};

struct crule;

struct eval_kind {
	/* Fires as events come instead of at ticks (trigger, new_value). */
	bool per_event;
	/* Fills c's window geometry and what it observes. */
	void (*prepare)(struct crule *c);
	/* Condition kinds: evaluates group g at now. */
	void (*evaluate)(const struct crule *c, struct group *g, int64_t now,
			 struct eval_cond *);
	/* Event kinds: an event matched (not warming). */
	void (*on_event)(struct eval *, struct crule *c, struct group *g,
			 const struct eval_event *);
};

/* A rule as the engine runs it. */
struct crule {
	const struct rule *r;
	const struct eval_kind *k;
	int64_t window; /* {{ window }} and the current window */
	int64_t width;	/* of a bucket */
	int64_t span;	/* how far back buckets and values are kept */
	int64_t offset; /* spike: baseline offset; 0 for the previous window */
	int64_t fine_span;    /* how far back the window's buckets are kept */
	int64_t hist_width;   /* spike with an offset: the baseline's buckets */
	int sum_field;	      /* sum, avg: its index in the row; else -1 */
	const char *distinct; /* field whose distinct values count */
	const struct filter *numerator; /* ratio */
	bool keys_from_links; /* flatline: seeded from the active links */
	/* Group fields: names and row indexes (-1: properties.KEY). */
	char **gnames;
	int *gidx;
	int ngroup;
	int tag_group; /* the group field that is link.tag, or -1 */
	/* Event fields the annotations name ({{ event.FIELD }}), once each. */
	const char **event_refs;
	int nevent_refs;
	/* groups */
	struct group **slots;
	uint32_t cap, n;
	bool warm;	   /* wants warming */
	uint64_t seed_gen; /* flatline: links_gen when last seeded */
	int64_t last_eval, events;
};

struct wslinks {
	char *ws;
	char **ids;
	int n;
	int64_t since; /* ids new in a later call are observed from then */
	char **fresh;  /* those ids */
	int64_t *fresh_at;
	int nfresh;
};

struct eval {
	struct rule_set *set;
	/*
	 * Sets replaced since the last eval_take (changes may point at
	 * their rules) and those of the take before (freed at the next).
	 */
	struct rule_set **retired, **graveyard;
	int nretired, ngraveyard;
	struct crule *rules;
	int nrules;
	/* The rules an event may match (their filters, indexed). */
	struct filter_index *index;
	int *cand;
	int candcap;
	/* The event a kind's on_event is looking at, for its annotations. */
	const struct eval_event *event;
	struct eval_alert *changes;
	int nchanges, capchanges;
	struct wslinks *links;
	int nlinks;
	uint64_t links_gen; /* moves at every eval_set_links */
	bool cleared;
};

/* ---- small helpers ---- */

static const char *const state_names[] = {"inactive", "pending", "firing",
					  "resolved"};

const char *
alert_state_name(enum alert_state s)
{
	return state_names[s];
}

int
alert_state_parse(const char *s)
{
	for (size_t i = 0; i < nitems(state_names); i++)
		if (strcmp(state_names[i], s) == 0)
			return (int)i;
	return -1;
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

#define FNV_INIT 14695981039346656037ULL

static uint64_t
str_hash(const char *s)
{
	uint64_t h = fnv(FNV_INIT, s, strlen(s));

	return h != 0 ? h : 1;
}

static int64_t
floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The bucket holding time t: (k*w, (k+1)*w]. */
static int64_t
bucket_of(int64_t t, int64_t w)
{
	return floordiv(t - 1, w);
}

/* A value as alerts show it: integers plainly, others to 2 decimals. */
static char *
number_text(double v)
{
	char buf[64];
	size_t n;

	if (isnan(v) || isinf(v))
		return xstrdup(isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
	if (fabs(v) < 1e15 && v == floor(v))
		return xprintf("%.0f", v);
	snprintf(buf, sizeof buf, "%.2f", v);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	return xstrdup(buf);
}

/* The largest round width <= target that divides every non-zero of a, b. */
static int64_t
width_for(int64_t target, int64_t a, int64_t b)
{
	static const int64_t round[] = {
	    86400000, 43200000, 21600000, 10800000, 7200000, 3600000,
	    1800000,  1200000,	900000,	  600000,   300000,  120000,
	    60000,    30000,	20000,	  15000,    10000,   5000,
	    2000,     1000,	500,	  100,	    10,	     1};

	for (size_t i = 0; i < nitems(round); i++) {
		if (round[i] > target && round[i] > 1)
			continue;
		if ((a == 0 || a % round[i] == 0) &&
		    (b == 0 || b % round[i] == 0))
			return round[i];
	}
	return 1;
}

/* ---- sets of distinct values ---- */

static struct vent *
vset_slot(struct vset *s, uint64_t h)
{
	uint32_t i = (uint32_t)(h & (s->cap - 1));

	while (s->v[i].h != 0 && s->v[i].h != h)
		i = (i + 1) & (s->cap - 1);
	return &s->v[i];
}

static void vset_put(struct vset *, uint64_t h, int64_t t);

static void
vset_rebuild(struct vset *s, uint32_t cap, int64_t keep_after)
{
	struct vset old = *s;

	s->cap = cap;
	s->n = 0;
	s->oldest = INT64_MAX;
	s->v = cap > 0 ? xcalloc(cap, sizeof(*s->v)) : NULL;
	for (uint32_t i = 0; i < old.cap; i++)
		if (old.v[i].h != 0 && old.v[i].t > keep_after)
			vset_put(s, old.v[i].h, old.v[i].t);
	free(old.v);
}

/* The time h was last seen, or INT64_MIN. */
static int64_t
vset_get(struct vset *s, uint64_t h)
{
	struct vent *v;

	if (s->cap == 0)
		return INT64_MIN;
	v = vset_slot(s, h);
	return v->h == h ? v->t : INT64_MIN;
}

static void
vset_put(struct vset *s, uint64_t h, int64_t t)
{
	struct vent *v;

	if ((s->n + 1) * 4 > s->cap * 3)
		vset_rebuild(s, s->cap == 0 ? 8 : s->cap * 2, INT64_MIN);
	v = vset_slot(s, h);
	if (s->n == 0 || t < s->oldest)
		s->oldest = t;
	if (v->h == 0) {
		v->h = h;
		v->t = t;
		s->n++;
	} else if (t > v->t) {
		v->t = t;
	}
}

/* Forgets what was last seen at or before t; shrinks when mostly empty. */
static void
vset_expire(struct vset *s, int64_t t)
{
	uint32_t live = 0, cap;
	int64_t oldest = INT64_MAX;

	/* Nothing that old: no need to look (the usual case at a tick). */
	if (s->n == 0 || s->oldest > t)
		return;
	for (uint32_t i = 0; i < s->cap; i++) {
		if (s->v[i].h != 0 && s->v[i].t > t) {
			live++;
			if (s->v[i].t < oldest)
				oldest = s->v[i].t;
		}
	}
	if (live == s->n) {
		s->oldest = oldest;
		return;
	}
	for (cap = 8; cap * 3 < live * 4 + 4; cap *= 2)
		;
	vset_rebuild(s, live == 0 ? 0 : cap, t);
}

/* Values seen in (from, to]. */
static int64_t
vset_count(const struct vset *s, int64_t from, int64_t to)
{
	int64_t n = 0;

	for (uint32_t i = 0; i < s->cap; i++)
		if (s->v[i].h != 0 && s->v[i].t > from && s->v[i].t <= to)
			n++;
	return n;
}

/* ---- buckets ---- */

/* The numerators or totals of a wide window, parallel to mem. */
static union bucket_x *
bucket_xs(const struct buckets *b)
{
	return (union bucket_x *)(void *)(b->mem + b->cap);
}

/*
 * The index in mem of bucket number k, made if missing (wide: with a
 * numerator or total); -1 when it is 2^32 buckets or more from the others
 * (years away: an event no window will count, and the buckets near now
 * stay).
 */
static int64_t
bucket_at(struct buckets *b, int64_t k, bool wide)
{
	struct bucket *v = b->mem + b->off;
	union bucket_x *x;
	uint32_t i = b->n, first, cap;
	int64_t shift;

	if (b->n > 0 && k - b->base > (int64_t)UINT32_MAX &&
	    (first = v[0].dk) > 0) {
		/* Renumber from the first live bucket. */
		b->base += first;
		for (uint32_t j = 0; j < b->n; j++)
			v[j].dk -= first;
	}
	if (b->n == 0) {
		b->base = k;
	} else if (k < b->base) {
		shift = b->base - k;
		if (shift > (int64_t)(UINT32_MAX - v[b->n - 1].dk))
			return -1;
		for (uint32_t j = 0; j < b->n; j++)
			v[j].dk += (uint32_t)shift;
		b->base = k;
	} else if (k - b->base > (int64_t)UINT32_MAX) {
		return -1;
	}
	/* Events come mostly in time order: look from the newest. */
	while (i > 0 && b->base + v[i - 1].dk > k)
		i--;
	if (i > 0 && b->base + v[i - 1].dk == k)
		return b->off + i - 1;
	if (b->cap == 0)
		b->wide = wide;
	if (b->off + b->n == b->cap) {
		if (b->off > 0) {
			memmove(b->mem, v, sizeof(*v) * b->n);
			if (b->wide)
				memmove(bucket_xs(b), bucket_xs(b) + b->off,
					sizeof(*x) * b->n);
			b->off = 0;
		} else {
			size_t unit = sizeof(*v) + (b->wide ? sizeof(*x) : 0);

			cap = b->cap == 0 ? 2 : b->cap * 2;
			b->mem = xrealloc(b->mem, unit * cap);
			/* The totals move up behind the larger array. */
			if (b->wide)
				memmove(b->mem + cap, b->mem + b->cap,
					sizeof(*x) * b->n);
			b->cap = cap;
		}
		v = b->mem;
	}
	memmove(&v[i + 1], &v[i], sizeof(*v) * (b->n - i));
	memset(&v[i], 0, sizeof(*v));
	v[i].dk = (uint32_t)(k - b->base);
	if (b->wide) {
		x = bucket_xs(b) + b->off;
		memmove(&x[i + 1], &x[i], sizeof(*x) * (b->n - i));
		memset(&x[i], 0, sizeof(*x));
	}
	b->n++;
	return b->off + i;
}

static void
buckets_free(struct buckets *b)
{
	free(b->mem);
	memset(b, 0, sizeof(*b));
}

/* Bytes held by b's allocation. */
static size_t
buckets_bytes(const struct buckets *b)
{
	return (sizeof(struct bucket) +
		(b->wide ? sizeof(union bucket_x) : 0)) *
	       b->cap;
}

/* Drops the buckets wholly at or before t. */
static void
buckets_expire(struct buckets *b, int64_t t, int64_t w)
{
	const struct bucket *v = b->mem + b->off;
	uint32_t drop = 0;

	while (drop < b->n && (b->base + v[drop].dk + 1) * w <= t)
		drop++;
	if (drop == 0)
		return;
	/* No copy: the room is reused when the end is reached. */
	b->off += drop;
	b->n -= drop;
	if (b->n == 0)
		buckets_free(b);
}

struct sums {
	int64_t n, num;
	double sum;
};

/* Totals of the window (to - len, to] (whole buckets of width w). */
static struct sums
window_sums(const struct buckets *b, int64_t w, int64_t to, int64_t len)
{
	struct sums s = {0, 0, 0};
	int64_t lo = floordiv(to - len, w), hi = bucket_of(to, w);
	const struct bucket *v = b->mem + b->off;
	const union bucket_x *x = b->wide ? bucket_xs(b) + b->off : NULL;

	for (uint32_t i = 0; i < b->n; i++) {
		int64_t k = b->base + v[i].dk;

		if (k < lo || k > hi)
			continue;
		s.n += v[i].n;
		if (x != NULL) {
			s.num += x[i].num;
			s.sum += x[i].sum;
		}
	}
	return s;
}

/* ---- groups ---- */

static bool
crule_keeps_hist(const struct crule *c)
{
	return c->hist_width > 0;
}

static bool
crule_keeps_seen(const struct crule *c)
{
	return c->distinct != NULL;
}

/* Empties g's window and what the rule keeps besides. */
static void
group_clear(const struct crule *c, struct group *g)
{
	buckets_free(&g->bk);
	if (crule_keeps_hist(c))
		buckets_free(&g->u.hist);
	else if (crule_keeps_seen(c))
		free(g->u.seen.v);
	memset(&g->u, 0, sizeof g->u);
}

/* Whether g keeps any data (its window, coarse buckets, values). */
static bool
group_has_data(const struct crule *c, const struct group *g)
{
	return g->bk.n > 0 || (crule_keeps_hist(c) && g->u.hist.n > 0) ||
	       (crule_keeps_seen(c) && g->u.seen.n > 0);
}

/*
 * The workspace and the group values of g: parts[0], then parts[1 ..
 * ngroup], in one allocation to free.
 */
static char **
group_parts(const struct crule *c, const struct group *g)
{
	size_t len = strlen(g->key) + 1;
	char **parts = xmalloc(sizeof(char *) * (size_t)(c->ngroup + 1) + len);
	char *p = (char *)(parts + c->ngroup + 1);

	memcpy(p, g->key, len);
	parts[0] = p;
	for (int i = 1; i <= c->ngroup; i++) {
		if ((p = strchr(p, SEP)) != NULL)
			*p++ = '\0';
		parts[i] = p != NULL ? p : parts[0] + strlen(parts[0]);
	}
	return parts;
}

static void
group_free(const struct crule *c, struct group *g)
{
	group_clear(c, g);
	free(g->text_value);
	if (g->event_values != NULL)
		for (char **v = g->event_values; *v != NULL; v++)
			free(*v);
	free(g->event_values);
	free(g);
}

static int64_t
group_bytes(const struct crule *c, const struct group *g)
{
	int64_t n = (int64_t)(sizeof(*g) + strlen(g->key) + 1 +
			      buckets_bytes(&g->bk) + sizeof(void *) * 2);

	if (crule_keeps_hist(c))
		n += (int64_t)buckets_bytes(&g->u.hist);
	else if (crule_keeps_seen(c))
		n += (int64_t)(sizeof(*g->u.seen.v) * g->u.seen.cap);
	return n;
}

static struct group **
group_slot(struct crule *c, const char *key, uint64_t h)
{
	uint32_t i = (uint32_t)(h & (c->cap - 1));

	while (c->slots[i] != NULL &&
	       (c->slots[i]->hash != h || strcmp(c->slots[i]->key, key) != 0))
		i = (i + 1) & (c->cap - 1);
	return &c->slots[i];
}

static void
groups_rehash(struct crule *c, uint32_t cap)
{
	struct group **old = c->slots;
	uint32_t oldcap = c->cap;

	c->slots = xcalloc(cap, sizeof(*c->slots));
	c->cap = cap;
	for (uint32_t i = 0; i < oldcap; i++)
		if (old[i] != NULL)
			*group_slot(c, old[i]->key, old[i]->hash) = old[i];
	free(old);
}

static struct group *
group_find(struct crule *c, const char *key)
{
	if (c->cap == 0)
		return NULL;
	return *group_slot(c, key, str_hash(key));
}

/* The group of key, made if missing. */
static struct group *
group_get(struct crule *c, const char *key)
{
	uint64_t h = str_hash(key);
	struct group **slot, *g;
	size_t len = strlen(key) + 1;

	if ((c->n + 1) * 4 > c->cap * 3)
		groups_rehash(c, c->cap == 0 ? 16 : c->cap * 2);
	slot = group_slot(c, key, h);
	if (*slot != NULL)
		return *slot;
	g = xcalloc(1, sizeof(*g) + len);
	memcpy(g->key, key, len);
	g->hash = h;
	g->state = ALERT_INACTIVE;
	*slot = g;
	c->n++;
	return g;
}

/* Removes the groups that hold nothing: no data, no alert, no seed. */
static void
groups_sweep(struct crule *c)
{
	uint32_t kept = 0;
	struct group **live;

	if (c->n == 0)
		return;
	live = xcalloc(c->n, sizeof(*live));
	for (uint32_t i = 0; i < c->cap; i++) {
		struct group *g = c->slots[i];

		if (g == NULL)
			continue;
		if (!group_has_data(c, g) && !g->seeded && !g->owed &&
		    (g->state == ALERT_INACTIVE ||
		     g->state == ALERT_RESOLVED)) {
			group_free(c, g);
			continue;
		}
		live[kept++] = g;
	}
	if (kept != c->n) {
		memset(c->slots, 0, sizeof(*c->slots) * c->cap);
		c->n = kept;
		for (uint32_t i = 0; i < kept; i++)
			*group_slot(c, live[i]->key, live[i]->hash) = live[i];
	}
	free(live);
}

/* The key of an event's group for c, in buf (false when it does not fit). */
static bool
event_key(const struct crule *c, const struct eval_event *ev, const char *tag,
	  char *buf, size_t len)
{
	size_t at = 0, n;

	for (int i = -1; i < c->ngroup; i++) {
		const char *v;

		if (i < 0)
			v = ev->workspace;
		else if (i == c->tag_group)
			v = tag;
		else if (c->gidx[i] >= 0)
			v = ev->row.values[c->gidx[i]];
		else
			v = filter_row_value(&ev->row, c->gnames[i]);
		if (v == NULL)
			v = "";
		n = strlen(v);
		if (at + n + 2 > len)
			return false;
		if (i >= 0)
			buf[at++] = SEP;
		memcpy(buf + at, v, n);
		at += n;
	}
	buf[at] = '\0';
	return true;
}

/* ---- labels, annotations, changes ---- */

struct built {
	char **lnames, **lvalues;
	int nlabels;
	char **anames, **avalues;
	int nann;
	char fingerprint[17];
	char *value, *threshold;
	const struct eval_event *ev; /* the firing event, if at hand */
	char **parts; /* group_parts: the workspace and group values */
};

static void
built_label(struct built *b, const char *name, const char *value)
{
	/* A later label of the same name wins (group values over labels). */
	for (int i = 0; i < b->nlabels; i++) {
		if (strcmp(b->lnames[i], name) == 0) {
			free(b->lvalues[i]);
			b->lvalues[i] = xstrdup(value);
			return;
		}
	}
	b->lnames =
	    xrealloc(b->lnames, sizeof(char *) * (size_t)(b->nlabels + 1));
	b->lvalues =
	    xrealloc(b->lvalues, sizeof(char *) * (size_t)(b->nlabels + 1));
	b->lnames[b->nlabels] = xstrdup(name);
	b->lvalues[b->nlabels] = xstrdup(value);
	b->nlabels++;
}

static int
cmp_index_by_name(const void *a, const void *b, void *arg)
{
	char **names = arg;

	return strcmp(names[*(const int *)a], names[*(const int *)b]);
}

static void
fingerprint(struct built *b, const char *workspace)
{
	int *order = xcalloc((size_t)b->nlabels + 1, sizeof(int));
	uint64_t h = fnv(FNV_INIT, workspace, strlen(workspace) + 1);

	for (int i = 0; i < b->nlabels; i++)
		order[i] = i;
	qsort_r(order, (size_t)b->nlabels, sizeof(int), cmp_index_by_name,
		b->lnames);
	for (int i = 0; i < b->nlabels; i++) {
		h = fnv(h, b->lnames[order[i]],
			strlen(b->lnames[order[i]]) + 1);
		h = fnv(h, b->lvalues[order[i]],
			strlen(b->lvalues[order[i]]) + 1);
	}
	free(order);
	snprintf(b->fingerprint, sizeof b->fingerprint, "%016llx",
		 (unsigned long long)h);
}

static const char *
built_label_value(const struct built *b, const char *name)
{
	for (int i = 0; i < b->nlabels; i++)
		if (strcmp(b->lnames[i], name) == 0)
			return b->lvalues[i];
	return "";
}

/* An event's field as a template shows it: a link's tags joined. */
static char *
event_value(const struct eval_event *ev, const char *name)
{
	const char *v;
	char *s, *next;

	if (strcmp(name, RULE_TAG_FIELD) != 0) {
		v = filter_row_value(&ev->row, name);
		return xstrdup(v != NULL ? v : "");
	}
	s = xstrdup("");
	for (size_t i = 0; i < ev->row.ntags; i++) {
		next = xprintf("%s%s%s", s, i > 0 ? ", " : "", ev->row.tags[i]);
		free(s);
		s = next;
	}
	return s;
}

/* {{ event.NAME }}: from the event at hand, else as the group kept it. */
static char *
event_ref_text(const struct crule *c, const struct group *g,
	       const struct built *b, const char *name)
{
	if (b->ev != NULL)
		return event_value(b->ev, name);
	for (int i = 0; i < c->nevent_refs && g->event_values != NULL; i++)
		if (strcmp(c->event_refs[i], name) == 0)
			return xstrdup(g->event_values[i]);
	return xstrdup("");
}

/* Keeps the event's values of c's event_refs in g, for later renders. */
static void
event_keep(const struct crule *c, struct group *g, const struct eval_event *ev)
{
	if (g->event_values != NULL)
		for (char **v = g->event_values; *v != NULL; v++)
			free(*v);
	free(g->event_values);
	g->event_values = xcalloc((size_t)c->nevent_refs + 1, sizeof(char *));
	for (int i = 0; i < c->nevent_refs; i++)
		g->event_values[i] = event_value(ev, c->event_refs[i]);
}

static char *
render(const struct crule *c, const struct group *g, const struct built *b,
       const struct rule_annotation *a)
{
	size_t len = 0, cap = 64;
	char *out = xmalloc(cap), wbuf[64];
	const char *part;
	char *tmp = NULL;

	for (int i = 0; i < a->nparts; i++) {
		const struct rule_tmpl_part *p = &a->parts[i];

		part = "";
		switch (p->ref) {
		case RULE_REF_TEXT:
			part = p->text;
			break;
		case RULE_REF_LABEL:
			part = built_label_value(b, p->text);
			break;
		case RULE_REF_VALUE:
			part = b->value != NULL ? b->value : "";
			break;
		case RULE_REF_THRESHOLD:
			part = b->threshold != NULL ? b->threshold : "";
			break;
		case RULE_REF_WINDOW:
			format_duration(c->window, wbuf, sizeof wbuf);
			part = wbuf;
			break;
		case RULE_REF_RULE:
			part = c->r->name;
			break;
		case RULE_REF_WORKSPACE:
			part = b->parts[0];
			break;
		case RULE_REF_KIND:
			part = c->r->kind->name;
			break;
		case RULE_REF_SEVERITY:
			part = rule_severity_name(c->r->severity);
			break;
		case RULE_REF_EVENT:
			free(tmp);
			tmp = event_ref_text(c, g, b, p->text);
			part = tmp;
			break;
		case RULE_REF_GROUP:
			free(tmp);
			tmp = xstrdup("");
			for (int j = 0; j < c->ngroup; j++) {
				char *next =
				    xprintf("%s%s%s", tmp, j > 0 ? ", " : "",
					    b->parts[1 + j]);
				free(tmp);
				tmp = next;
			}
			part = tmp;
			break;
		}
		while (len + strlen(part) + 1 > cap)
			cap *= 2;
		out = xrealloc(out, cap);
		memcpy(out + len, part, strlen(part));
		len += strlen(part);
	}
	out[len] = '\0';
	free(tmp);
	return out;
}

static double kind_threshold(const struct crule *c);

/*
 * Labels, fingerprint, value, threshold and annotations of group g of c;
 * extra_name/extra_value: new_value's field and value.
 */
static void
build(const struct crule *c, const struct group *g, const char *extra_name,
      const char *extra_value, const struct eval_event *ev, struct built *b)
{
	const struct rule *r = c->r;

	memset(b, 0, sizeof(*b));
	b->ev = ev;
	b->parts = group_parts(c, g);
	built_label(b, "alertname", r->name);
	built_label(b, "severity", rule_severity_name(r->severity));
	for (int i = 0; i < r->nlabels; i++)
		built_label(b, r->label_names[i], r->label_values[i]);
	for (int i = 0; i < c->ngroup; i++)
		built_label(b, c->gnames[i], b->parts[1 + i]);
	if (extra_name != NULL)
		built_label(b, extra_name, extra_value);
	fingerprint(b, b->parts[0]);
	if (g->text_value != NULL)
		b->value = xstrdup(g->text_value);
	else if (extra_value != NULL)
		b->value = xstrdup(extra_value);
	else
		b->value = number_text(g->value);
	if (c->k->per_event)
		b->threshold = NULL;
	else
		b->threshold = number_text(kind_threshold(c));
	b->nann = r->nannotations;
	b->anames = xcalloc((size_t)b->nann + 1, sizeof(char *));
	b->avalues = xcalloc((size_t)b->nann + 1, sizeof(char *));
	for (int i = 0; i < b->nann; i++) {
		b->anames[i] = xstrdup(r->annotations[i].name);
		b->avalues[i] = render(c, g, b, &r->annotations[i]);
	}
}

static void
built_free(struct built *b)
{
	for (int i = 0; i < b->nlabels; i++) {
		free(b->lnames[i]);
		free(b->lvalues[i]);
	}
	for (int i = 0; i < b->nann; i++) {
		free(b->anames[i]);
		free(b->avalues[i]);
	}
	free(b->lnames);
	free(b->lvalues);
	free(b->anames);
	free(b->avalues);
	free(b->value);
	free(b->threshold);
	free(b->parts);
}

/* Fills an alert from g; the alert takes b's strings. */
static void
alert_fill(struct eval_alert *a, const struct crule *c, const struct group *g,
	   struct built *b)
{
	memset(a, 0, sizeof(*a));
	a->rule = c->r;
	a->window_ms = c->window;
	a->workspace = xstrdup(b->parts[0]);
	free(b->parts);
	b->parts = NULL;
	memcpy(a->fingerprint, b->fingerprint, sizeof a->fingerprint);
	a->label_names = (const char *const *)b->lnames;
	a->label_values = (const char *const *)b->lvalues;
	a->nlabels = b->nlabels;
	a->annotation_names = (const char *const *)b->anames;
	a->annotation_values = (const char *const *)b->avalues;
	a->nannotations = b->nann;
	a->value = b->value;
	a->threshold = b->threshold;
	a->state = g->state;
	a->active_at_ms = g->active_at;
	a->fired_at_ms = g->fired_at;
	a->resolved_at_ms = g->resolved_at;
	a->notifications = g->notifications;
	a->notified_at_ms = g->notified_at;
}

static void
alert_release(struct eval_alert *a)
{
	struct built b = {
	    .lnames = (char **)a->label_names,
	    .lvalues = (char **)a->label_values,
	    .nlabels = a->nlabels,
	    .anames = (char **)a->annotation_names,
	    .avalues = (char **)a->annotation_values,
	    .nann = a->nannotations,
	    .value = (char *)a->value,
	    .threshold = (char *)a->threshold,
	};

	built_free(&b);
	free((char *)a->workspace);
}

void
eval_alerts_free(struct eval_alert *v, int n)
{
	for (int i = 0; i < n; i++)
		alert_release(&v[i]);
	free(v);
}

/* Records a change of g (its fields already updated) from state from. */
static void
change(struct eval *e, const struct crule *c, const struct group *g,
       enum alert_state from, int64_t at, bool notify, bool repeat,
       const char *extra_name, const char *extra_value)
{
	struct eval_alert *a;
	struct built b;

	if (e->nchanges == e->capchanges) {
		e->capchanges = e->capchanges == 0 ? 16 : e->capchanges * 2;
		e->changes = xrealloc(e->changes, sizeof(*e->changes) *
						      (size_t)e->capchanges);
	}
	a = &e->changes[e->nchanges++];
	build(c, g, extra_name, extra_value, e->event, &b);
	alert_fill(a, c, g, &b);
	a->from = from;
	a->at_ms = at;
	a->notify = notify;
	a->repeat = repeat;
}

static void
sets_free(struct rule_set **v, int n)
{
	for (int i = 0; i < n; i++)
		rules_set_free(v[i]);
	free(v);
}

int
eval_pending(const struct eval *e)
{
	return e->nchanges;
}

struct eval_alert *
eval_take(struct eval *e, int *n)
{
	struct eval_alert *v = e->changes;

	sets_free(e->graveyard, e->ngraveyard);
	e->graveyard = e->retired;
	e->ngraveyard = e->nretired;
	e->retired = NULL;
	e->nretired = 0;

	*n = e->nchanges;
	e->changes = NULL;
	e->nchanges = e->capchanges = 0;
	return v;
}

/* ---- time intervals ---- */

/* t_ms as local time in zone tz. */
static void
local_time(const char *tz, int64_t t_ms, struct tm *out)
{
	const char *old = getenv("TZ");
	char *saved = old != NULL ? xstrdup(old) : NULL;
	time_t t = (time_t)floordiv(t_ms, 1000);

	setenv("TZ", tz, 1);
	tzset();
	localtime_r(&t, out);
	if (saved != NULL) {
		setenv("TZ", saved, 1);
		free(saved);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

static bool
in_interval(const struct rule_interval *iv, int64_t t_ms)
{
	struct tm tm;
	int min;

	local_time(iv->timezone != NULL ? iv->timezone : "UTC", t_ms, &tm);
	if ((iv->weekdays & (1u << ((tm.tm_wday + 6) % 7))) == 0)
		return false;
	if (iv->ntimes == 0)
		return true;
	min = tm.tm_hour * 60 + tm.tm_min;
	for (int i = 0; i < iv->ntimes; i++)
		if (min >= iv->times[i].start_min && min < iv->times[i].end_min)
			return true;
	return false;
}

bool
eval_kind_per_event(const struct eval_kind *k)
{
	return k != NULL && k->per_event;
}

bool
eval_may_notify(const struct rule *r, int64_t t_ms)
{
	bool active = r->nactive == 0;

	for (int i = 0; i < r->nactive && !active; i++)
		active = in_interval(&r->active[i], t_ms);
	if (!active)
		return false;
	for (int i = 0; i < r->nmute; i++)
		if (in_interval(&r->mute[i], t_ms))
			return false;
	return true;
}

/* ---- the state machine ---- */

/* When the next repeat of a firing alert is due; INT64_MAX if never. */
static int64_t
repeat_due(const struct rule *r, const struct group *g)
{
	double iv = (double)r->repeat.interval_ms;

	if (r->repeat.interval_ms <= 0 || g->notified_at == 0)
		return INT64_MAX;
	for (int i = 1; i < g->notifications; i++) {
		iv *= r->repeat.factor;
		if (r->repeat.max_interval_ms > 0 &&
		    iv >= (double)r->repeat.max_interval_ms) {
			iv = (double)r->repeat.max_interval_ms;
			break;
		}
		if (iv > 1e15)
			break;
	}
	return g->notified_at + (int64_t)iv;
}

static void
notified(struct group *g, int64_t now)
{
	g->notified_at = now;
	g->notifications++;
}

/* Moves g along the state machine at now, given the kind's verdict. */
static void
step(struct eval *e, const struct crule *c, struct group *g, int64_t now,
     const struct eval_cond *cond)
{
	const struct rule *r = c->r;
	enum alert_state from = g->state;
	bool may;

	g->value = cond->value;
	switch (g->state) {
	case ALERT_INACTIVE:
	case ALERT_RESOLVED:
		if (g->owed && !cond->fires && eval_may_notify(r, now)) {
			/* Resolved while muted: now it may be said. */
			g->owed = false;
			change(e, c, g, from, now, true, false, NULL, NULL);
			return;
		}
		if (!cond->fires)
			return;
		g->owed = false;
		g->active_at = now;
		g->fired_at = g->resolved_at = g->notified_at = 0;
		g->clear_since = 0;
		g->notifications = 0;
		if (r->for_ms > 0) {
			g->state = ALERT_PENDING;
			change(e, c, g, from, now, false, false, NULL, NULL);
			return;
		}
		/* FALLTHROUGH */
	case ALERT_PENDING:
		if (!cond->fires) {
			g->state = ALERT_INACTIVE;
			change(e, c, g, from, now, false, false, NULL, NULL);
			return;
		}
		if (now - g->active_at < r->for_ms)
			return;
		g->state = ALERT_FIRING;
		g->fired_at = now;
		may = eval_may_notify(r, now);
		if (may)
			notified(g, now);
		change(e, c, g, from, now, may, false, NULL, NULL);
		return;
	case ALERT_FIRING:
		if (!cond->clears) {
			g->clear_since = 0;
		} else {
			if (g->clear_since == 0)
				g->clear_since = now;
			if (now - g->clear_since >= r->keep_firing_for_ms) {
				g->state = ALERT_RESOLVED;
				g->resolved_at = now;
				may = r->send_resolved && g->notifications > 0;
				if (may && !eval_may_notify(r, now)) {
					g->owed = true;
					may = false;
				}
				change(e, c, g, from, now, may, false, NULL,
				       NULL);
				return;
			}
		}
		/* Muted when it fired: announce it once it may be. */
		if (g->notifications == 0) {
			if (eval_may_notify(r, now)) {
				notified(g, now);
				change(e, c, g, from, now, true, false, NULL,
				       NULL);
			}
		} else if (now >= repeat_due(r, g) && eval_may_notify(r, now)) {
			notified(g, now);
			change(e, c, g, from, now, true, true, NULL, NULL);
		}
		return;
	}
}

/* Resolves g now (a rule removed, a key gone), notifying if it fired. */
static void
resolve_now(struct eval *e, const struct crule *c, struct group *g, int64_t now)
{
	enum alert_state from = g->state;
	bool notify;

	if (g->state == ALERT_PENDING) {
		g->state = ALERT_INACTIVE;
		change(e, c, g, from, now, false, false, NULL, NULL);
	} else if (g->state == ALERT_FIRING) {
		g->state = ALERT_RESOLVED;
		g->resolved_at = now;
		notify = !c->k->per_event && c->r->send_resolved &&
			 g->notifications > 0 && eval_may_notify(c->r, now);
		change(e, c, g, from, now, notify, false, NULL, NULL);
	}
}

/* ---- the kinds ---- */

/*
 * A window of length window whose events are kept for span (spike: two
 * windows, or a window and its offset baseline).  The buckets of the
 * window are 1/60 of it; a baseline an offset away is kept in coarser
 * buckets (at most SPAN_BUCKETS over the span), so the current window
 * stays exact and a week of history stays small.
 */
static void
geometry(struct crule *c, int64_t window, int64_t span, int64_t offset)
{
	int64_t target = window / WINDOW_BUCKETS;

	c->window = window;
	c->span = span;
	c->fine_span = offset > 0 ? window : span;
	c->offset = offset;
	c->width = width_for(target > 0 ? target : 1, window, 0);
	if (offset > 0) {
		target = span / SPAN_BUCKETS;
		if (target < c->width)
			target = c->width;
		c->hist_width = width_for(target, window, offset);
	}
}

static bool
compare(enum rule_op op, double v, double bound)
{
	switch (op) {
	case RULE_GT:
		return v > bound;
	case RULE_GE:
		return v >= bound;
	case RULE_LT:
		return v < bound;
	case RULE_LE:
		return v <= bound;
	}
	return false;
}

static void
threshold_prepare(struct crule *c)
{
	const struct rule_threshold *p = c->r->params;

	geometry(c, p->window_ms, p->window_ms, 0);
	if (p->measure == RULE_SUM || p->measure == RULE_AVG)
		c->sum_field = filter_field_index(p->field);
	if (p->measure == RULE_UNIQUE_VISITORS)
		c->distinct = "visitor";
}

static void
threshold_evaluate(const struct crule *c, struct group *g, int64_t now,
		   struct eval_cond *out)
{
	const struct rule_threshold *p = c->r->params;
	struct sums s;
	double v;

	if (p->measure == RULE_UNIQUE_VISITORS) {
		v = (double)vset_count(&g->u.seen, now - p->window_ms, now);
	} else {
		s = window_sums(&g->bk, c->width, now, p->window_ms);
		if (p->measure == RULE_COUNT)
			v = (double)s.n;
		else if (p->measure == RULE_SUM)
			v = s.sum;
		else
			v = s.n > 0 ? s.sum / (double)s.n : NAN;
	}
	out->value = v;
	out->threshold = p->value;
	if (isnan(v)) {
		out->fires = false;
		out->clears = true;
		return;
	}
	out->fires = compare(p->op, v, p->value);
	if (p->recover == p->value)
		out->clears = !out->fires;
	else if (p->op == RULE_GT || p->op == RULE_GE)
		out->clears = v <= p->recover;
	else
		out->clears = v >= p->recover;
}

static void
spike_prepare(struct crule *c)
{
	const struct rule_spike *p = c->r->params;
	int64_t off = p->baseline_offset_ms;

	geometry(c, p->window_ms, (off > 0 ? off : p->window_ms) + p->window_ms,
		 off);
}

static void
spike_evaluate(const struct crule *c, struct group *g, int64_t now,
	       struct eval_cond *out)
{
	const struct rule_spike *p = c->r->params;
	int64_t off =
	    p->baseline_offset_ms > 0 ? p->baseline_offset_ms : p->window_ms;
	double cur = (double)window_sums(&g->bk, c->width, now, p->window_ms).n;
	double base =
	    c->hist_width > 0
		? (double)window_sums(&g->u.hist, c->hist_width, now - off,
				      p->window_ms)
		      .n
		: (double)window_sums(&g->bk, c->width, now - off, p->window_ms)
		      .n;
	bool up, down;

	out->threshold = p->ratio;
	out->value = base > 0 ? cur / base : (cur > 0 ? INFINITY : 0);
	up = base > 0 ? cur >= p->ratio * base : cur > 0;
	down = base > 0 && cur * p->ratio <= base;
	out->fires = cur >= (double)p->min_current &&
		     base >= (double)p->min_baseline &&
		     ((p->direction != RULE_DOWN && up) ||
		      (p->direction != RULE_UP && down));
	out->clears = !out->fires;
}

static void
flatline_prepare(struct crule *c)
{
	const struct rule_flatline *p = c->r->params;

	geometry(c, p->window_ms, p->window_ms, 0);
	c->keys_from_links = p->active_links;
}

static void
flatline_evaluate(const struct crule *c, struct group *g, int64_t now,
		  struct eval_cond *out)
{
	const struct rule_flatline *p = c->r->params;
	double n = (double)window_sums(&g->bk, c->width, now, p->window_ms).n;

	out->value = n;
	out->threshold = (double)p->below;
	/* A key watched for less than a window has not been quiet long. */
	out->fires = g->seeded && n < (double)p->below &&
		     now - g->created_at >= p->window_ms;
	out->clears = !out->fires;
}

static void
cardinality_prepare(struct crule *c)
{
	const struct rule_cardinality *p = c->r->params;

	geometry(c, p->window_ms, p->window_ms, 0);
	c->distinct = p->field;
}

static void
cardinality_evaluate(const struct crule *c, struct group *g, int64_t now,
		     struct eval_cond *out)
{
	const struct rule_cardinality *p = c->r->params;
	double n = (double)vset_count(&g->u.seen, now - p->window_ms, now);

	out->value = n;
	out->threshold = (double)p->bound;
	out->fires = p->above ? n > (double)p->bound : n < (double)p->bound;
	out->clears = !out->fires;
}

static void
ratio_prepare(struct crule *c)
{
	const struct rule_ratio *p = c->r->params;

	geometry(c, p->window_ms, p->window_ms, 0);
	c->numerator = p->numerator;
}

static void
ratio_evaluate(const struct crule *c, struct group *g, int64_t now,
	       struct eval_cond *out)
{
	const struct rule_ratio *p = c->r->params;
	struct sums s = window_sums(&g->bk, c->width, now, p->window_ms);
	double pct = s.n > 0 ? 100.0 * (double)s.num / (double)s.n : 0;

	out->value = pct;
	out->threshold = p->percent;
	out->fires = s.n >= p->min_denominator &&
		     (p->above ? pct > p->percent : pct < p->percent);
	out->clears = !out->fires;
}

static void
trigger_prepare(struct crule *c)
{
	const struct rule_trigger *p = c->r->params;

	c->window = p->dedup_ms;
	c->width = 1000;
}

/* Trigger alerts resolve once their dedup period is over. */
static void
trigger_evaluate(const struct crule *c, struct group *g, int64_t now,
		 struct eval_cond *out)
{
	const struct rule_trigger *p = c->r->params;

	out->value = g->value;
	out->threshold = 0;
	out->fires = g->state == ALERT_FIRING;
	out->clears = now >= g->fired_at + p->dedup_ms;
}

static void
trigger_event(struct eval *e, struct crule *c, struct group *g,
	      const struct eval_event *ev)
{
	const struct rule_trigger *p = c->r->params;
	enum alert_state from = g->state;
	bool may;

	if (g->state == ALERT_FIRING && ev->t_ms < g->fired_at + p->dedup_ms) {
		g->value++;
		return;
	}
	g->state = ALERT_FIRING;
	g->active_at = g->fired_at = ev->t_ms;
	g->resolved_at = g->notified_at = g->clear_since = 0;
	g->notifications = 0;
	g->value = 1;
	may = eval_may_notify(c->r, ev->t_ms);
	if (may)
		notified(g, ev->t_ms);
	change(e, c, g, from, ev->t_ms, may, false, NULL, NULL);
	if (p->dedup_ms == 0) {
		g->state = ALERT_RESOLVED;
		g->resolved_at = ev->t_ms;
		change(e, c, g, ALERT_FIRING, ev->t_ms, false, false, NULL,
		       NULL);
	}
}

static void
new_value_prepare(struct crule *c)
{
	const struct rule_new_value *p = c->r->params;

	c->window = p->lookback_ms;
	c->span = p->lookback_ms;
	c->width = 1000;
	c->distinct = p->field;
}

/* Called before the value is recorded as seen: is it new? */
static void
new_value_event(struct eval *e, struct crule *c, struct group *g,
		const struct eval_event *ev)
{
	const struct rule_new_value *p = c->r->params;
	const char *v = filter_row_value(&ev->row, p->field);
	int64_t last;
	bool may;

	if (v == NULL)
		return;
	last = vset_get(&g->u.seen, str_hash(v));
	if (last != INT64_MIN && last > ev->t_ms - p->lookback_ms)
		return;
	g->state = ALERT_FIRING;
	g->active_at = g->fired_at = ev->t_ms;
	g->notified_at = g->resolved_at = 0;
	g->notifications = 0;
	free(g->text_value);
	g->text_value = xstrdup(v);
	may = eval_may_notify(c->r, ev->t_ms);
	if (may)
		notified(g, ev->t_ms);
	change(e, c, g, ALERT_INACTIVE, ev->t_ms, may, false, p->field, v);
	g->state = ALERT_RESOLVED;
	g->resolved_at = ev->t_ms;
	change(e, c, g, ALERT_FIRING, ev->t_ms, false, false, p->field, v);
	free(g->text_value);
	g->text_value = NULL;
	g->state = ALERT_INACTIVE;
}

const struct eval_kind eval_threshold = {false, threshold_prepare,
					 threshold_evaluate, NULL};
const struct eval_kind eval_spike = {false, spike_prepare, spike_evaluate,
				     NULL};
const struct eval_kind eval_flatline = {false, flatline_prepare,
					flatline_evaluate, NULL};
const struct eval_kind eval_cardinality = {false, cardinality_prepare,
					   cardinality_evaluate, NULL};
const struct eval_kind eval_ratio = {false, ratio_prepare, ratio_evaluate,
				     NULL};
const struct eval_kind eval_trigger = {true, trigger_prepare, trigger_evaluate,
				       trigger_event};
const struct eval_kind eval_new_value = {true, new_value_prepare, NULL,
					 new_value_event};

static double
kind_threshold(const struct crule *c)
{
	struct group g;
	struct eval_cond cond = {0, 0, false, false};

	if (c->k->evaluate == NULL)
		return 0;
	memset(&g, 0, sizeof g);
	c->k->evaluate(c, &g, 0, &cond);
	return cond.threshold;
}

/* ---- rules ---- */

static void
crule_init(struct crule *c, const struct rule *r)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->k = r->kind->eval;
	c->sum_field = -1;
	c->warm = true;
	if (r->ngroup_by == 0 && r->kind->eval == &eval_flatline &&
	    ((const struct rule_flatline *)r->params)->active_links) {
		/* Keyed by link even when group_by does not say so. */
		c->ngroup = 1;
		c->gnames = xcalloc(2, sizeof(char *));
		c->gnames[0] = xstrdup("link");
	} else {
		c->ngroup = r->ngroup_by;
		c->gnames = xcalloc((size_t)c->ngroup + 1, sizeof(char *));
		for (int i = 0; i < c->ngroup; i++)
			c->gnames[i] = xstrdup(r->group_by[i]);
	}
	for (int i = 0; i < r->nannotations; i++)
		for (int j = 0; j < r->annotations[i].nparts; j++) {
			const struct rule_tmpl_part *p =
			    &r->annotations[i].parts[j];
			int k;

			if (p->ref != RULE_REF_EVENT)
				continue;
			for (k = 0; k < c->nevent_refs; k++)
				if (strcmp(c->event_refs[k], p->text) == 0)
					break;
			if (k < c->nevent_refs)
				continue;
			c->event_refs = xrealloc(
			    c->event_refs,
			    sizeof(char *) * (size_t)(c->nevent_refs + 1));
			c->event_refs[c->nevent_refs++] = p->text;
		}
	c->gidx = xcalloc((size_t)c->ngroup + 1, sizeof(int));
	c->tag_group = -1;
	for (int i = 0; i < c->ngroup; i++) {
		c->gidx[i] = filter_field_index(c->gnames[i]);
		if (strcmp(c->gnames[i], RULE_TAG_FIELD) == 0)
			c->tag_group = i;
	}
	c->k->prepare(c);
}

static void
crule_clear(struct crule *c)
{
	for (uint32_t i = 0; i < c->cap; i++)
		if (c->slots[i] != NULL)
			group_free(c, c->slots[i]);
	free(c->slots);
	for (int i = 0; i < c->ngroup; i++)
		free(c->gnames[i]);
	free(c->gnames);
	free(c->gidx);
	free(c->event_refs);
	c->event_refs = NULL;
	c->nevent_refs = 0;
	c->slots = NULL;
	c->cap = c->n = 0;
}

struct eval *
eval_new(void)
{
	return xcalloc(1, sizeof(struct eval));
}

void
eval_free(struct eval *e)
{
	if (e == NULL)
		return;
	for (int i = 0; i < e->nrules; i++)
		crule_clear(&e->rules[i]);
	free(e->rules);
	filter_index_free(e->index);
	free(e->cand);
	eval_alerts_free(e->changes, e->nchanges);
	for (int i = 0; i < e->nlinks; i++) {
		struct wslinks *w = &e->links[i];

		free(w->ws);
		for (int j = 0; j < w->n; j++)
			free(w->ids[j]);
		free(w->ids);
		for (int j = 0; j < w->nfresh; j++)
			free(w->fresh[j]);
		free(w->fresh);
		free(w->fresh_at);
	}
	free(e->links);
	rules_set_free(e->set);
	sets_free(e->retired, e->nretired);
	sets_free(e->graveyard, e->ngraveyard);
	free(e);
}

const struct rule_set *
eval_rules(const struct eval *e)
{
	return e->set;
}

static struct crule *
crule_by_name(struct eval *e, const char *name)
{
	for (int i = 0; i < e->nrules; i++)
		if (strcmp(e->rules[i].r->name, name) == 0)
			return &e->rules[i];
	return NULL;
}

static void seed(struct eval *, struct crule *);

/* Flatline rules watch their keys from the moment they are known. */
static void
seed_all(struct eval *e)
{
	for (int i = 0; i < e->nrules; i++)
		if (e->rules[i].k == &eval_flatline)
			seed(e, &e->rules[i]);
}

static void
index_rules(struct eval *e)
{
	const struct filter **f = xcalloc((size_t)e->nrules + 1, sizeof(*f));

	for (int i = 0; i < e->nrules; i++)
		f[i] = e->rules[i].r->match;
	filter_index_free(e->index);
	e->index = filter_index_new(f, e->nrules);
	free(f);
}

void
eval_set_rules(struct eval *e, struct rule_set *set, int64_t now)
{
	int n = rules_count(set);
	struct crule *next = xcalloc((size_t)n + 1, sizeof(*next));

	for (int i = 0; i < n; i++) {
		const struct rule *r = rules_get(set, i);
		struct crule *old = crule_by_name(e, r->name);

		crule_init(&next[i], r);
		if (old != NULL && strcmp(old->r->digest, r->digest) == 0 &&
		    old->r->kind == r->kind) {
			/* The same rule: it keeps everything. */
			next[i].slots = old->slots;
			next[i].cap = old->cap;
			next[i].n = old->n;
			next[i].warm = old->warm;
			next[i].last_eval = old->last_eval;
			next[i].events = old->events;
			old->slots = NULL;
			old->cap = old->n = 0;
		}
	}
	/* Whatever is left belongs to removed or changed rules. */
	for (int i = 0; i < e->nrules; i++) {
		struct crule *c = &e->rules[i];

		for (uint32_t j = 0; j < c->cap; j++)
			if (c->slots[j] != NULL)
				resolve_now(e, c, c->slots[j], now);
		crule_clear(c);
	}
	free(e->rules);
	e->rules = next;
	e->nrules = n;
	index_rules(e);
	/* Changes not yet taken may point at the old rules. */
	if (e->set != NULL) {
		e->retired =
		    xrealloc(e->retired,
			     sizeof(*e->retired) * (size_t)(e->nretired + 1));
		e->retired[e->nretired++] = e->set;
	}
	e->set = set;
	seed_all(e);
}

/* ---- events ---- */

static void
observe(struct crule *c, struct group *g, const struct eval_event *ev)
{
	bool wide = c->numerator != NULL || c->sum_field >= 0;
	const char *v;
	double x = 0;
	int64_t i;

	if (c->sum_field >= 0) {
		v = ev->row.values[c->sum_field];
		if (v == NULL)
			return;
		x = strtod(v, NULL);
	}
	if (c->distinct != NULL) {
		v = filter_row_value(&ev->row, c->distinct);
		if (v != NULL)
			vset_put(&g->u.seen, str_hash(v), ev->t_ms);
	}
	if (c->k->per_event)
		return;
	if (crule_keeps_hist(c) &&
	    (i = bucket_at(&g->u.hist, bucket_of(ev->t_ms, c->hist_width),
			   false)) >= 0)
		g->u.hist.mem[i].n++;
	if ((i = bucket_at(&g->bk, bucket_of(ev->t_ms, c->width), wide)) < 0)
		return;
	g->bk.mem[i].n++;
	if (c->numerator != NULL)
		bucket_xs(&g->bk)[i].num +=
		    filter_match(c->numerator, &ev->row);
	else if (wide)
		bucket_xs(&g->bk)[i].sum += (float)x;
}

/* An event c matched, in its group (tag: the value of link.tag). */
static void
group_event(struct eval *e, struct crule *c, const struct eval_event *ev,
	    const char *tag, bool warming)
{
	char key[2048];
	struct group *g;

	if (!event_key(c, ev, tag, key, sizeof key))
		return;
	if (c->k == &eval_flatline) {
		/* Only the seeded keys are watched. */
		if ((g = group_find(c, key)) == NULL || !g->seeded)
			return;
	} else {
		g = group_get(c, key);
	}
	c->events++;
	if (!warming && c->k->on_event != NULL) {
		int before = e->nchanges;

		e->event = ev;
		c->k->on_event(e, c, g, ev);
		e->event = NULL;
		if (c->nevent_refs > 0 && e->nchanges > before)
			event_keep(c, g, ev);
	}
	observe(c, g, ev);
}

void
eval_event(struct eval *e, const struct eval_event *ev, bool warming)
{
	int n = e->index != NULL
		    ? filter_index_candidates(e->index, &ev->row, &e->cand,
					      &e->candcap)
		    : 0;

	for (int k = 0; k < n; k++) {
		struct crule *c = &e->rules[e->cand[k]];
		const struct rule *r = c->r;

		if (warming && !c->warm)
			continue;
		if (r->workspace[0] != '*' &&
		    strcmp(r->workspace, ev->workspace) != 0)
			continue;
		if (r->match != NULL && !filter_match(r->match, &ev->row))
			continue;
		if (c->tag_group < 0) {
			group_event(e, c, ev, NULL, warming);
			continue;
		}
		/* Grouped by tag: the event counts in each of its link's. */
		for (size_t t = 0; t < ev->row.ntags; t++)
			if (ev->row.tags[t] != NULL)
				group_event(e, c, ev, ev->row.tags[t], warming);
	}
}

/* ---- ticks ---- */

static struct wslinks *
links_of(struct eval *e, const char *ws)
{
	for (int i = 0; i < e->nlinks; i++)
		if (strcmp(e->links[i].ws, ws) == 0)
			return &e->links[i];
	return NULL;
}

/* Observed since when a key seeded now: fresh links from their arrival. */
static int64_t
seed_since(const struct wslinks *w, const char *id)
{
	for (int i = 0; w != NULL && i < w->nfresh; i++)
		if (strcmp(w->fresh[i], id) == 0)
			return w->fresh_at[i];
	return INT64_MIN / 2;
}

static void
seed_key(struct crule *c, const char *ws, const char *value, int64_t since)
{
	char *key = xprintf("%s%c%s", ws, SEP, value);
	struct group *g = group_get(c, key);

	if (!g->seeded) {
		g->seeded = true;
		g->created_at = since;
	}
	free(key);
}

/* Flatline: marks the groups of the keys the rule watches now. */
static void
seed(struct eval *e, struct crule *c)
{
	const struct rule_flatline *p = c->r->params;

	c->seed_gen = e->links_gen;
	for (uint32_t i = 0; i < c->cap; i++)
		if (c->slots[i] != NULL)
			c->slots[i]->seeded = false;
	for (int i = 0; i < e->nlinks; i++) {
		struct wslinks *w = &e->links[i];

		if (c->r->workspace[0] != '*' &&
		    strcmp(c->r->workspace, w->ws) != 0)
			continue;
		if (c->keys_from_links) {
			for (int j = 0; j < w->n; j++)
				seed_key(c, w->ws, w->ids[j],
					 seed_since(w, w->ids[j]));
		} else {
			for (int j = 0; j < p->nkeys; j++)
				seed_key(c, w->ws, p->keys[j], w->since);
		}
	}
	/* A named workspace is watched even before links are known. */
	if (!c->keys_from_links && c->r->workspace[0] != '*' &&
	    links_of(e, c->r->workspace) == NULL)
		for (int j = 0; j < p->nkeys; j++)
			seed_key(c, c->r->workspace, p->keys[j], INT64_MIN / 2);
}

void
eval_tick(struct eval *e, int64_t now)
{
	int next = 0;

	while (!eval_tick_part(e, now, &next, INT64_MAX))
		;
}

bool
eval_tick_part(struct eval *e, int64_t now, int *next, int64_t budget)
{
	struct eval_cond cond;
	int64_t walked = 0;

	for (int i = *next; i < e->nrules; i++) {
		struct crule *c = &e->rules[i];

		if (walked >= budget) {
			*next = i;
			return false;
		}
		walked += c->cap;

		c->last_eval = now;
		/* Keys change with the links (eval_set_links seeds then). */
		if (c->k == &eval_flatline && c->seed_gen != e->links_gen)
			seed(e, c);
		for (uint32_t j = 0; j < c->cap; j++) {
			struct group *g = c->slots[j];

			if (g == NULL)
				continue;
			if (c->span > 0) {
				buckets_expire(&g->bk, now - c->fine_span,
					       c->width);
				if (crule_keeps_hist(c))
					buckets_expire(&g->u.hist,
						       now - c->span,
						       c->hist_width);
				else if (crule_keeps_seen(c))
					vset_expire(&g->u.seen, now - c->span);
			}
			if (c->k == &eval_flatline && !g->seeded) {
				resolve_now(e, c, g, now);
				continue;
			}
			if (c->k->evaluate == NULL)
				continue;
			if (c->k->per_event) {
				if (g->state != ALERT_FIRING)
					continue;
				/* Fired while muted: announced once allowed. */
				if (g->notifications == 0 &&
				    eval_may_notify(c->r, now)) {
					notified(g, now);
					change(e, c, g, ALERT_FIRING, now, true,
					       false, NULL, NULL);
				}
				c->k->evaluate(c, g, now, &cond);
				if (cond.clears) {
					g->state = ALERT_RESOLVED;
					g->resolved_at = now;
					change(e, c, g, ALERT_FIRING, now,
					       false, false, NULL, NULL);
				}
				continue;
			}
			memset(&cond, 0, sizeof cond);
			c->k->evaluate(c, g, now, &cond);
			step(e, c, g, now, &cond);
		}
		groups_sweep(c);
	}
	*next = e->nrules;
	return true;
}

/* ---- listing and restoring ---- */

void
eval_foreach(struct eval *e, void (*fn)(const struct eval_alert *, void *),
	     void *arg)
{
	for (int i = 0; i < e->nrules; i++) {
		struct crule *c = &e->rules[i];

		for (uint32_t j = 0; j < c->cap; j++) {
			struct group *g = c->slots[j];
			struct eval_alert a;
			struct built b;

			if (g == NULL || (g->state != ALERT_PENDING &&
					  g->state != ALERT_FIRING))
				continue;
			build(c, g, NULL, NULL, NULL, &b);
			alert_fill(&a, c, g, &b);
			a.from = g->state;
			a.at_ms = c->last_eval;
			fn(&a, arg);
			alert_release(&a);
		}
	}
}

bool
eval_restore(struct eval *e, const char *rule, const char *workspace,
	     char *const *names, char *const *values, int nlabels,
	     enum alert_state state, int64_t active_at, int64_t fired_at,
	     int64_t notified_at, int notifications)
{
	struct crule *c = crule_by_name(e, rule);
	size_t len, at;
	struct group *g;
	char *key;

	if (c == NULL || c->k == &eval_new_value)
		return false;
	if (state != ALERT_PENDING && state != ALERT_FIRING)
		return false;
	len = strlen(workspace) + 1;
	for (int i = 0; i < nlabels; i++)
		len += strlen(values[i]) + 1;
	key = xmalloc(len + 1);
	at = (size_t)snprintf(key, len + 1, "%s", workspace);
	for (int i = 0; i < c->ngroup; i++) {
		const char *v = "";

		for (int j = 0; j < nlabels; j++)
			if (strcmp(names[j], c->gnames[i]) == 0)
				v = values[j];
		at += (size_t)snprintf(key + at, len + 1 - at, "%c%s", SEP, v);
	}
	g = group_get(c, key);
	free(key);
	if (c->k == &eval_flatline)
		c->seed_gen = UINT64_MAX; /* seeded again at the next tick */
	g->state = state;
	g->active_at = active_at;
	g->fired_at = fired_at;
	g->notified_at = notified_at;
	g->notifications = notifications;
	g->clear_since = 0;
	return true;
}

void
eval_set_links(struct eval *e, const char *ws, char *const *ids, int n,
	       int64_t now)
{
	struct wslinks *w = links_of(e, ws);
	bool first = w == NULL;

	if (w == NULL) {
		e->links = xrealloc(e->links, sizeof(*e->links) *
						  (size_t)(e->nlinks + 1));
		w = &e->links[e->nlinks++];
		memset(w, 0, sizeof(*w));
		w->ws = xstrdup(ws);
		w->since = now;
	}
	/* Links not in the last list are fresh: watched from now on. */
	for (int i = 0; i < n && !first; i++) {
		bool known = false;

		for (int j = 0; j < w->n && !known; j++)
			known = strcmp(w->ids[j], ids[i]) == 0;
		for (int j = 0; j < w->nfresh && !known; j++)
			known = strcmp(w->fresh[j], ids[i]) == 0;
		if (known)
			continue;
		w->fresh = xrealloc(w->fresh,
				    sizeof(char *) * (size_t)(w->nfresh + 1));
		w->fresh_at = xrealloc(
		    w->fresh_at, sizeof(int64_t) * (size_t)(w->nfresh + 1));
		w->fresh[w->nfresh] = xstrdup(ids[i]);
		w->fresh_at[w->nfresh++] = now;
	}
	for (int j = 0; j < w->n; j++)
		free(w->ids[j]);
	free(w->ids);
	w->ids = xcalloc((size_t)n + 1, sizeof(char *));
	for (int i = 0; i < n; i++)
		w->ids[i] = xstrdup(ids[i]);
	w->n = n;
	e->links_gen++;
	if (first)
		w->since = INT64_MIN / 2;
	seed_all(e);
}

/* ---- warming and stats ---- */

int64_t
eval_lookback_ms(const struct eval *e)
{
	int64_t max = 0;

	for (int i = 0; i < e->nrules; i++)
		if (e->rules[i].warm && e->rules[i].span > max)
			max = e->rules[i].span;
	return max;
}

bool
eval_needs_warm(const struct eval *e)
{
	for (int i = 0; i < e->nrules; i++)
		if (e->rules[i].warm)
			return true;
	return false;
}

void
eval_warmed(struct eval *e)
{
	for (int i = 0; i < e->nrules; i++)
		e->rules[i].warm = false;
}

void
eval_reset(struct eval *e)
{
	for (int i = 0; i < e->nrules; i++) {
		struct crule *c = &e->rules[i];

		for (uint32_t j = 0; j < c->cap; j++) {
			if (c->slots[j] != NULL)
				group_free(c, c->slots[j]);
			c->slots[j] = NULL;
		}
		c->n = 0;
		c->warm = true;
	}
	eval_alerts_free(e->changes, e->nchanges);
	e->changes = NULL;
	e->nchanges = e->capchanges = 0;
	/* Flatline keys are watched again before warming refills them. */
	seed_all(e);
}

void
eval_clear_windows(struct eval *e)
{
	for (int i = 0; i < e->nrules; i++) {
		struct crule *c = &e->rules[i];

		for (uint32_t j = 0; j < c->cap; j++) {
			struct group *g = c->slots[j];

			if (g == NULL)
				continue;
			group_clear(c, g);
		}
		c->warm = true;
	}
}

void
eval_rule_stats(const struct eval *e, const struct rule *r,
		struct eval_rule_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (int i = 0; i < e->nrules; i++) {
		const struct crule *c = &e->rules[i];

		if (c->r != r)
			continue;
		st->groups = c->n;
		st->last_eval_ms = c->last_eval;
		st->events = c->events;
		st->bytes = (int64_t)(sizeof(*c) + sizeof(void *) * c->cap);
		for (uint32_t j = 0; j < c->cap; j++) {
			const struct group *g = c->slots[j];

			if (g == NULL)
				continue;
			st->bytes += group_bytes(c, g);
			st->pending += g->state == ALERT_PENDING;
			st->firing += g->state == ALERT_FIRING;
		}
	}
}

int64_t
eval_bytes(const struct eval *e)
{
	struct eval_rule_stats st;
	int64_t n = 0;

	for (int i = 0; i < e->nrules; i++) {
		eval_rule_stats(e, e->rules[i].r, &st);
		n += st.bytes;
	}
	return n;
}

int64_t
eval_groups(const struct eval *e)
{
	int64_t n = 0;

	for (int i = 0; i < e->nrules; i++)
		n += e->rules[i].n;
	return n;
}
