/*
 * ctl.h - what linkpulsectl's command files share: the command table's
 * types, argument accessors, messages and the database connection.
 *
 * Defined in ctl.c, which owns the command table and main(); ctl_seed.c
 * (seed, simulate) and ctl_rules_test.c (rules test) use them.  Every
 * function here uses blocking libpq on ctl->conn.
 */
#ifndef LP_CTL_H
#define LP_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#define PROG "linkpulsectl"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

struct ctl {
	const char *config_path;
	bool config_given;
	const char *database_url; /* --database-url: no file is read */
	PGconn *conn;
};

struct ctl_opt {
	const char *name; /* long option, without "--" */
	const char *arg;  /* its value in help, NULL for a flag */
	bool required;
	const char *help;
};

#define CTL_MAXOPTS  10
#define CTL_MAXPOS   256 /* rules check FILE... */
#define CTL_MAXGIVEN 32

/* A command's parsed arguments. */
struct ctl_args {
	const char *opt[CTL_MAXOPTS]; /* by index in opts; "" for a flag */
	const char *pos[CTL_MAXPOS];
	int npos;
	/* Every option given, in order, so an option may be repeated. */
	int given_idx[CTL_MAXGIVEN];
	const char *given_val[CTL_MAXGIVEN];
	int ngiven;
};

struct ctl_cmd {
	const char *name;  /* one or two words: "migrate", "token create" */
	const char *usage; /* what follows the name */
	const char *about;
	const char *posname; /* positional argument, NULL if none */
	int minpos, maxpos;
	const struct ctl_opt *opts; /* ends with a NULL name */
	int (*fn)(struct ctl *, const struct ctl_cmd *,
		  const struct ctl_args *);
};

/* Prints "linkpulsectl: ..." on stderr; returns the runtime error status. */
int ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with where to find help; returns the usage error status. */
int usage_error(const struct ctl_cmd *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The server's or libpq's message, trimmed, in a static buffer. */
const char *pq_message(PGconn *, const PGresult *);
/* Reports "what: message"; returns the runtime error status. */
int query_error(struct ctl *, const char *what, const PGresult *);

/* The value of option name, NULL when absent ("" for a flag given). */
const char *arg_get(const struct ctl_cmd *, const struct ctl_args *,
		    const char *name);
/* Every value given to option name, in order; returns how many. */
size_t arg_all(const struct ctl_cmd *, const struct ctl_args *,
	       const char *name, const char **out, size_t max);

/*
 * Connects ctl->conn; with check_schema, refuses a database whose schema
 * is older than this program.  Returns -1 when connected, else the exit
 * status after reporting why.
 */
int ctl_connect(struct ctl *, bool check_schema);
/* Text parameters in, text results out. */
PGresult *exec_params(struct ctl *, const char *sql, int n,
		      const char *const *p);
/* The id of the workspace with this slug in a new string; NULL, reported. */
char *workspace_id(struct ctl *, const char *slug);

/* ctl_seed.c */
int cmd_seed(struct ctl *, const struct ctl_cmd *, const struct ctl_args *);
int cmd_simulate(struct ctl *, const struct ctl_cmd *, const struct ctl_args *);

/* ctl_rules_test.c */
int cmd_rules_test(struct ctl *, const struct ctl_cmd *,
		   const struct ctl_args *);

#endif
