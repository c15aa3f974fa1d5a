/*
 * ctl_rules_test.h - linkpulsectl rules test, between its two files: the
 * test files as ctl_rules_file.c reads them (struct tfile: rule files,
 * tests with their events and expectations), and the helpers both use.
 * ctl_rules_test.c runs the tests and reports.
 */
#ifndef LP_CTL_RULES_TEST_H
#define LP_CTL_RULES_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "eval.h"
#include "rules.h"
#include "util.h"

/* 2026-01-05T00:00:00Z, a Monday. */
#define DEFAULT_START_MS 1767571200000LL

/* Names and values: labels, annotations, properties. */
struct kv {
	char **names, **values;
	int n;
};

/* An event's fields as filter_match reads them, and its workspace. */
struct tfields {
	char *workspace; /* NULL: the test's */
	char **values;	 /* filter_nfields(); NULL is SQL NULL */
	char **tags;
	size_t ntags;
	struct kv props;
};

struct tevent {
	int64_t t; /* from the start */
	size_t seq;
	const struct tfields *f;
};

/* An expected alert or notification. */
struct xitem {
	yaml_mark_t mark;
	char *workspace; /* NULL: any */
	struct kv labels, annotations;
	enum alert_state state;
	char *value; /* NULL: any */
	bool has_at;
	int64_t at;
	int repeat; /* notifications: 0 or 1; -1 either */
};

struct texpect {
	yaml_mark_t mark;
	int64_t at;
	char *rule; /* NULL: every rule */
	bool alerts_given, notes_given;
	struct xitem *alerts, *notes;
	int nalerts, nnotes;
	int64_t since; /* notifications after this time count */
};

struct rtest {
	char *name;
	int64_t start; /* Unix ms */
	char *workspace;
	char **links;
	int nlinks;
	bool links_given;
	struct tfields **fields; /* owned, shared by its events */
	int nfields;
	struct tevent *events;
	size_t nevents, capevents;
	struct texpect *expects; /* in time order */
	int nexpects;
};

struct tfile {
	const char *path;
	yaml_document_t *doc;
	struct strlist errs;
	char **rule_paths; /* resolved, each file once */
	int nrule_paths;
	const struct rule_set *set; /* while parsing: names, labels */
	char *only_ws;		    /* the one workspace the rules name */
	char *workspaces;	    /* those named, for messages */
	int64_t interval;
	struct tfields *defaults;
	struct rtest *tests;
	int ntests;
};

/*
 * Reads and checks the test file at path into tf (zeroed first); false,
 * with every error in tf->errs (FILE:LINE:COL, in file order), if it is
 * not valid.  tfile_free frees what it made either way.
 */
bool tfile_load(struct tfile *, const char *path);
void tfile_free(struct tfile *);

void kv_add(struct kv *, const char *name, const char *value);
const char *kv_get(const struct kv *, const char *name);
void kv_free(struct kv *);
/* Unix ms as "2026-01-05T00:10:00Z"; an offset from start as "10m". */
void format_time(int64_t ms, char *buf, size_t len);
void format_offset(int64_t ms, char *buf, size_t len);

#endif
