/*
 * schema.h - versioned migrations compiled into both binaries (the SQL
 * files under src/sql/, embedded at build time as sql_migrations.c).
 * These functions use blocking libpq: they run from linkpulsectl, and from
 * linkpulsed only at start-up, before the event loop runs.
 */
#ifndef LP_SCHEMA_H
#define LP_SCHEMA_H

#include <libpq-fe.h>

#include "util.h"

struct migration {
	int version;
	const char *name; /* file name, "0001_init.sql" */
	const char *sql;
};
extern const struct migration migrations[];
extern const int nmigrations;

/* The highest version the binaries know. */
int schema_latest_version(void);
/* The database's version: 0 for an empty database, -1 on error (in err). */
int schema_current_version(PGconn *, char *err, size_t errlen);
/*
 * Applies pending migrations, each in its own transaction, under an
 * advisory lock so concurrent runs wait for each other.  Reports each
 * applied migration through progress (may be NULL).  0 or -1 (err set).
 */
int schema_migrate(PGconn *, void (*progress)(const struct migration *),
		   char *err, size_t errlen);

#endif
