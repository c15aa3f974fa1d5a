/*
 * eval.h - the rules engine: evaluates a rule set (rules.h) over a stream
 * of events and says which alerts change state.  Pure code on a virtual
 * clock: every call takes the time it happens at, so the daemon (alerts.c,
 * wall clock, events from the pipeline) and `linkpulsectl rules test`
 * (times from a test file) run the very same evaluation.  No I/O.
 *
 * Each rule keeps, per group (its workspace and the values of its
 * group_by fields), a window of the events it matched: sparse time
 * buckets of a width fitted to the window (1/60 of it, rounded down to a
 * round number that divides it: a second for a 1m window, 10 s for 10m, a
 * minute for 1h), so a window is exact at multiples of its bucket width;
 * a spike's baseline an offset away (7d) in coarser buckets, at most 720
 * over the offset; and, for the kinds that count distinct values, the
 * values' last seen times.  A notification held back by a mute interval
 * goes out when the interval ends, if the alert is still in the same
 * state (a resolved one is announced then too).  The kinds'
 * evaluation is in the table of kinds (rules.c), one struct eval_kind
 * each.
 *
 * Alerts follow inactive -> pending (for) -> firing -> resolved.  A rule
 * of a condition kind (threshold, spike, flatline, cardinality, ratio) is
 * evaluated at each eval_tick; the event kinds (trigger, new_value) fire
 * as an event is fed.  Firing stays firing while the value has not
 * crossed the recovery bound (hysteresis) and for keep_firing_for after
 * it did.  Notifications (struct eval_alert.notify) go out on firing, on
 * each repeat while firing, and on resolving (send_resolved), and only
 * inside the rule's active intervals and outside its mute intervals.
 * Alerts of the event kinds fire once per event (trigger: once per group
 * per dedup period) and resolve without a notification.
 */
#ifndef LP_EVAL_H
#define LP_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"

struct rule;
struct rule_set;
struct eval;
struct eval_group;

enum alert_state {
	ALERT_INACTIVE,
	ALERT_PENDING,
	ALERT_FIRING,
	ALERT_RESOLVED,
};
const char *alert_state_name(enum alert_state);
/* "pending", "firing", "resolved", "inactive"; -1 if none of them. */
int alert_state_parse(const char *);

/* One event as the engine reads it. */
struct eval_event {
	int64_t t_ms;	       /* when it happened */
	const char *workspace; /* slug */
	struct filter_row row;
};

/*
 * An alert: a rule and one of its groups.  Labels are, in this order,
 * alertname (the rule's name), severity, the rule's labels, the group_by
 * fields' values (a field the event had no value for is an empty string)
 * and, for new_value, the field and its new value.  The fingerprint is
 * 16 hexadecimal digits of FNV-1a 64 over the workspace and the labels
 * sorted by name: the same alert has the same fingerprint across
 * restarts and reloads.
 */
struct eval_alert {
	const struct rule *rule;
	const char *workspace;
	char fingerprint[17];
	const char *const *label_names, *const *label_values;
	int nlabels;
	/* The rule's annotations, rendered with this alert's values. */
	const char *const *annotation_names, *const *annotation_values;
	int nannotations;
	enum alert_state from, state;
	const char *value;	/* "12", "0.25", "FR" */
	const char *threshold;	/* the bound the value is held against */
	int64_t window_ms;	/* the rule's window (trigger: dedup) */
	int64_t active_at_ms;	/* pending or firing since */
	int64_t fired_at_ms;	/* 0 if it never fired */
	int64_t resolved_at_ms; /* 0 unless resolved */
	int64_t at_ms;		/* when the change happened */
	/* Changes only: a notification goes out (firing, a repeat, resolved) */
	bool notify;
	bool repeat;	   /* the notification repeats a firing one */
	int notifications; /* sent so far in this firing, this one included */
	int64_t notified_at_ms; /* the last one; 0 if none */
};

struct eval *eval_new(void);
void eval_free(struct eval *);

/*
 * Installs a rule set, taking it over.  A rule whose definition is the
 * same as before (same name and same text, see rule_digest) keeps its
 * windows and alerts; a rule that changed starts with empty windows (warm
 * it with eval_warm); the alerts of a rule that is gone (or changed) and
 * were firing resolve at now_ms (changes for eval_take).
 */
void eval_set_rules(struct eval *, struct rule_set *, int64_t now_ms);
const struct rule_set *eval_rules(const struct eval *);

/*
 * Feeds one event.  With warming set it only fills windows (the event
 * was seen before a restart or a reload): no alert changes.
 */
void eval_event(struct eval *, const struct eval_event *, bool warming);
/* Evaluates every condition rule at now_ms. */
void eval_tick(struct eval *, int64_t now_ms);
/*
 * The same in parts, so that a caller can let other work run between
 * them: evaluates the rules from *next on, stopping before a rule once
 * about budget group slots were walked; true when the last rule is done
 * (*next is then past it).  A reload between two parts is harmless: the
 * rest of the walk evaluates the new rules from *next on.
 */
bool eval_tick_part(struct eval *, int64_t now_ms, int *next, int64_t budget);

/*
 * The changes since the last call, oldest first; the caller frees them
 * with eval_alerts_free.
 */
struct eval_alert *eval_take(struct eval *, int *n);
/* Changes waiting for eval_take (a reload resolved a removed rule's). */
int eval_pending(const struct eval *);
void eval_alerts_free(struct eval_alert *, int n);

/*
 * Every alert that is pending or firing now (views, valid until the next
 * call into the engine), for the API and for rule tests.
 */
void eval_foreach(struct eval *, void (*fn)(const struct eval_alert *, void *),
		  void *arg);

/*
 * Puts back an alert read from the database after a restart: the rule
 * (by name; false if it is not loaded), the workspace, the labels as
 * stored (the group is found from the group_by labels), its state
 * (pending or firing), times and notifications.  Windows are not touched:
 * warm them with eval_event(..., true).
 */
bool eval_restore(struct eval *, const char *rule, const char *workspace,
		  char *const *label_names, char *const *label_values,
		  int nlabels, enum alert_state, int64_t active_at_ms,
		  int64_t fired_at_ms, int64_t notified_at_ms,
		  int notifications);

/*
 * Flatline keys seeded from the active links: the workspace's active
 * link ids, replacing the previous list for that workspace.  Workspaces
 * named here are also the ones a rule for "*" seeds keys in.  The links
 * of a workspace's first list count as watched for ever (warming covers
 * their windows); a link new in a later list is watched from now_ms, so
 * a link created a minute ago is not "quiet for an hour".
 */
void eval_set_links(struct eval *, const char *workspace, char *const *link_ids,
		    int n, int64_t now_ms);

/*
 * How far back windows reach at most: events since now minus this fill
 * them (warm-up).  For a rule set without windows, 0.
 */
int64_t eval_lookback_ms(const struct eval *);
/* Rules that changed since eval_set_rules and want warming, and clear. */
bool eval_needs_warm(const struct eval *);
void eval_warmed(struct eval *);
/* Empties every window (before warming again after a rollback). */
void eval_clear_windows(struct eval *);
/*
 * Forgets every group and alert and every change not taken: after a
 * transaction that carried changes rolled back, the daemon restores the
 * alerts from the database again and warms the windows.
 */
void eval_reset(struct eval *);

struct eval_rule_stats {
	int64_t groups; /* groups held */
	int64_t pending, firing;
	int64_t last_eval_ms; /* 0: not evaluated yet */
	int64_t events;	      /* matched since loaded */
	int64_t bytes;	      /* memory of its groups, about */
};
void eval_rule_stats(const struct eval *, const struct rule *,
		     struct eval_rule_stats *);
/* Memory held by all groups, about, in bytes. */
int64_t eval_bytes(const struct eval *);
int64_t eval_groups(const struct eval *);

/*
 * Whether notifications may go out at t_ms for rule r: inside an active
 * interval (if it has any) and outside every mute interval, each in its
 * own time zone.
 */
bool eval_may_notify(const struct rule *r, int64_t t_ms);

/* The kinds' evaluation, for the table of kinds in rules.c. */
struct eval_kind;
/* Whether the kind fires on an event as it comes (trigger, new_value). */
bool eval_kind_per_event(const struct eval_kind *);
extern const struct eval_kind eval_threshold, eval_spike, eval_flatline,
    eval_trigger, eval_new_value, eval_cardinality, eval_ratio;

#endif
