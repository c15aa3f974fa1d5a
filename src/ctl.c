/*
 * ctl.c - linkpulsectl, the administration command line: schema
 * migrations, workspaces, API tokens, (in ctl_seed.c) demo data and (in
 * ctl_rules_test.c) rule unit tests.
 *
 * Commands are rows of ctl_cmds (name, usage, options, function), and each
 * row's option table drives both parsing and --help, so adding a command
 * is adding a row and its function; what command files share is in
 * ctl.h.  Uses config.c for the database URL, schema.c for migrations,
 * auth.c for tokens and scopes and rules.c to check rule files; talks to
 * PostgreSQL with blocking libpq, every statement parameterised.
 *
 * A new token is printed once, on stdout, and nowhere else.
 */
#include "lpconf.h" /* what configure found */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "auth.h"
#include "config.h"
#include "ctl.h"
#include "log.h"
#include "rules.h"
#include "schema.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define DEFAULT_CONFIG_PATH SYSCONFDIR "/linkpulse/linkpulse.yaml"

/*
 * Every statement, in one place; user text only ever arrives as a
 * parameter.  Timestamps are shown in UTC, RFC 3339, to the second.
 */
#define SQL_TS(col)                                                            \
	"to_char(" col " AT TIME ZONE 'UTC', "                                 \
	"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* clang-format off */
static const char sql_workspace_id[] =
    "SELECT id FROM workspaces WHERE slug = $1";
/* The canonical spelling of a time zone name, whatever its case. */
static const char sql_timezone[] =
    "SELECT name FROM pg_timezone_names WHERE lower(name) = lower($1) "
    "ORDER BY name = $1 DESC, name LIMIT 1";
static const char sql_timezones[] =
    "SELECT name FROM pg_timezone_names";
static const char sql_workspace_create[] =
    "INSERT INTO workspaces (slug, name, plan, timezone, retention_days) "
    "VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (slug) DO NOTHING RETURNING id";
static const char sql_workspace_list[] =
    "SELECT id, slug, name, plan, timezone, retention_days, "
    SQL_TS("created_at") " "
    "FROM workspaces ORDER BY slug";
/* $7: lifetime in ms, NULL for none (then expires_at is NULL too). */
static const char sql_token_create[] =
    "INSERT INTO api_tokens (workspace_id, name, environment, scopes, "
    "token_hash, prefix, expires_at) "
    "VALUES ($1, $2, $3, string_to_array($4, ','), $5, $6, "
    "now() + $7::bigint * interval '1 millisecond') "
    "RETURNING id";
/* Never the hash. */
static const char sql_token_list[] =
    "SELECT id, name, environment, key_type, prefix, "
    "array_to_string(scopes, ','), to_json(scopes), "
    SQL_TS("created_at") ", " SQL_TS("expires_at") ", "
    SQL_TS("revoked_at") ", " SQL_TS("last_used_at") " "
    "FROM api_tokens WHERE workspace_id = $1 ORDER BY created_at, id";
/* $2: the workspace's id, NULL for any. */
static const char sql_token_revoke[] =
    "UPDATE api_tokens SET revoked_at = now() "
    "WHERE id = $1 AND revoked_at IS NULL "
    "AND ($2::uuid IS NULL OR workspace_id = $2) "
    "RETURNING id";
static const char sql_token_revoked_at[] =
    "SELECT " SQL_TS("revoked_at") " FROM api_tokens "
    "WHERE id = $1 AND ($2::uuid IS NULL OR workspace_id = $2)";
/* clang-format on */

static int cmd_migrate(struct ctl *, const struct ctl_cmd *,
		       const struct ctl_args *);
static int cmd_workspace_create(struct ctl *, const struct ctl_cmd *,
				const struct ctl_args *);
static int cmd_workspace_list(struct ctl *, const struct ctl_cmd *,
			      const struct ctl_args *);
static int cmd_token_create(struct ctl *, const struct ctl_cmd *,
			    const struct ctl_args *);
static int cmd_token_list(struct ctl *, const struct ctl_cmd *,
			  const struct ctl_args *);
static int cmd_token_revoke(struct ctl *, const struct ctl_cmd *,
			    const struct ctl_args *);
static int cmd_deliveries_list(struct ctl *, const struct ctl_cmd *,
			       const struct ctl_args *);
static int cmd_deliveries_replay(struct ctl *, const struct ctl_cmd *,
				 const struct ctl_args *);
static int cmd_rules_check(struct ctl *, const struct ctl_cmd *,
			   const struct ctl_args *);

static const struct ctl_opt migrate_opts[] = {
    {"status", NULL, false,
     "print the current and latest versions and what is pending"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt workspace_create_opts[] = {
    {"slug", "SLUG", true,
     "2-63 characters: a-z, 0-9 and '-', not starting with '-'"},
    {"name", "NAME", true, "display name"},
    {"plan", "PLAN", false, "free, pro or enterprise (default: free)"},
    {"timezone", "TZ", false,
     "IANA time zone for analytics buckets (default: UTC)"},
    {"retention-days", "N", false, "days of events to keep (default: 395)"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt json_opts[] = {
    {"json", NULL, false, "print a JSON array instead of a table"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt token_create_opts[] = {
    {"workspace", "SLUG", true, "workspace the token acts for"},
    {"name", "NAME", true, "what the token is for"},
    {"environment", "ENV", true, "development, production or analytics"},
    {"scopes", "LIST", true,
     "comma-separated: analytics:read, events:read, events:write,\n"
     "webhooks:read, webhooks:write, alerts:read, alerts:write, admin"},
    {"expires-in", "DURATION", false,
     "lifetime such as 90d or 12h (default: no expiry)"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt token_list_opts[] = {
    {"workspace", "SLUG", true, "workspace whose tokens to list"},
    {"json", NULL, false, "print a JSON array instead of a table"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt token_revoke_opts[] = {
    {"workspace", "SLUG", false, "only revoke the token in this workspace"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt deliveries_list_opts[] = {
    {"state", "STATE", false,
     "pending, delivering, held, delivered or dead (default: all)"},
    {"workspace", "SLUG", false, "only this workspace's deliveries"},
    {"endpoint", "ID", false, "only this endpoint's deliveries"},
    {"limit", "N", false, "at most N, newest first (default: 50)"},
    {"json", NULL, false, "print a JSON array instead of a table"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt deliveries_replay_opts[] = {
    {"endpoint", "ID", true, "the endpoint whose messages to send again"},
    {"since", "TIME", false,
     "messages created since TIME (a PostgreSQL timestamp, or a\n"
     "duration such as 2h meaning that long ago)"},
    {"failed", NULL, false, "only messages that are dead or still failing"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt no_opts[] = {
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt rules_test_opts[] = {
    {"junit", "FILE", false, "also write the results as JUnit XML to FILE"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt seed_opts[] = {
    {"workspace", "SLUG", true,
     "workspace to fill; created (plan pro, UTC) when missing;\n"
     "it must not have links yet"},
    {"events", "N", true, "number of events to load"},
    {"days", "D", false, "spread them over the last D days (default: 30)"},
    {"until", "TIME", false,
     "end of that range, a PostgreSQL timestamp (default: now)"},
    {"links", "L", false, "links in the catalogue (default: 40)"},
    {"visitors", "V", false,
     "visitors (default: N/15, at least 100, at most 100000)"},
    {"seed", "S", false,
     "pseudo-random seed: the same seed, options and --until\n"
     "load the same data (default: random, printed)"},
    {"jobs", "J", false, "COPY over J connections at once (default: 2)"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_opt simulate_opts[] = {
    {"workspace", "SLUG", true,
     "workspace whose links, visitors and devices to use\n"
     "(fill it with '" PROG " seed' first)"},
    {"rate", "R", true, "events per second"},
    {"duration", "D", false,
     "stop after D, such as 30s or 2h (default: until\n"
     "SIGINT or SIGTERM)"},
    {"burst", "SPEC", false,
     "LINK:FACTOR:AT:LEN[:EVERY], repeatable: multiply the\n"
     "rate of the link with shortlink LINK by FACTOR from AT\n"
     "after the start for LEN, again every EVERY; for\n"
     "example spring-sale:10x:30s:20s"},
    {"seed", "S", false, "pseudo-random seed (default: random)"},
    {NULL, NULL, false, NULL},
};

static const struct ctl_cmd ctl_cmds[] = {
    {"migrate", "[--status]", "Apply pending schema migrations.", NULL, 0, 0,
     migrate_opts, cmd_migrate},
    {"workspace create",
     "--slug SLUG --name NAME [--plan free|pro|enterprise] [--timezone TZ] "
     "[--retention-days N]",
     "Create a workspace and print its id.", NULL, 0, 0, workspace_create_opts,
     cmd_workspace_create},
    {"workspace list", "[--json]", "List workspaces.", NULL, 0, 0, json_opts,
     cmd_workspace_list},
    {"token create",
     "--workspace SLUG --name NAME "
     "--environment development|production|analytics --scopes LIST "
     "[--expires-in DURATION]",
     "Create an API token and print it once on stdout.", NULL, 0, 0,
     token_create_opts, cmd_token_create},
    {"token list", "--workspace SLUG [--json]",
     "List a workspace's API tokens (never their secret).", NULL, 0, 0,
     token_list_opts, cmd_token_list},
    {"token revoke", "ID [--workspace SLUG]",
     "Revoke an API token: requests with it fail from now on.", "ID", 1, 1,
     token_revoke_opts, cmd_token_revoke},
    {"deliveries list",
     "[--state STATE] [--workspace SLUG] [--endpoint ID] [--limit N] [--json]",
     "List webhook deliveries, newest first.", NULL, 0, 0, deliveries_list_opts,
     cmd_deliveries_list},
    {"deliveries replay", "--endpoint ID [--since TIME] [--failed]",
     "Send an endpoint's messages again (since TIME, or the failed ones).",
     NULL, 0, 0, deliveries_replay_opts, cmd_deliveries_replay},
    {"rules check", "FILE...",
     "Check alert rule files; notify names against the configuration's "
     "webhooks.",
     "FILE", 1, CTL_MAXPOS, no_opts, cmd_rules_check},
    {"rules test", "[--junit FILE] FILE...",
     "Run rule unit tests: events in, expected alerts and notifications "
     "out.",
     "FILE", 1, CTL_MAXPOS, rules_test_opts, cmd_rules_test},
    {"seed",
     "--workspace SLUG --events N [--days D] [--until TIME] [--links L] "
     "[--visitors V] [--seed S] [--jobs J]",
     "Fill a workspace with a believable catalogue and N past events.", NULL, 0,
     0, seed_opts, cmd_seed},
    {"simulate",
     "--workspace SLUG --rate R [--duration D] [--burst SPEC]... [--seed S]",
     "Insert live events at a steady rate until stopped.", NULL, 0, 0,
     simulate_opts, cmd_simulate},
};

/* Messages */

int
ctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERR;
}

int
usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd != NULL)
		fprintf(stderr, "Try '" PROG " %s --help'.\n", cmd->name);
	else
		fputs("Try '" PROG " --help'.\n", stderr);
	return EXIT_USAGE;
}

/* libpq messages end with a newline and may span lines: trim the end. */
const char *
pq_message(PGconn *conn, const PGresult *res)
{
	static char buf[1024];
	const char *msg = NULL;
	size_t n;

	if (res != NULL)
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(conn);
	snprintf(buf, sizeof buf, "%s", msg);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

int
query_error(struct ctl *ctl, const char *what, const PGresult *res)
{
	return ctl_error("%s: %s", what, pq_message(ctl->conn, res));
}

static void
print_help(void)
{
	printf("usage: " PROG " [-c FILE] [--database-url URL] COMMAND "
	       "[ARGS...]\n"
	       "       " PROG " --help | --version\n"
	       "\n"
	       "Administers a linkpulse database: schema migrations, "
	       "workspaces, API tokens\nand demo data.\n"
	       "\n"
	       "Options (also accepted after the command):\n"
	       "  -c, --config FILE       configuration file (default: %s)\n"
	       "      --database-url URL  connect to URL instead; no "
	       "configuration file is read\n"
	       "  -h, --help              show this help; COMMAND --help "
	       "shows a command's\n"
	       "  -V, --version           show the version\n"
	       "\n"
	       "Commands:\n",
	       DEFAULT_CONFIG_PATH);
	for (size_t i = 0; i < nitems(ctl_cmds); i++)
		printf("  %-17s %s\n", ctl_cmds[i].name, ctl_cmds[i].about);
	printf("\n"
	       "When the configuration file does not exist and "
	       "LINKPULSE_DATABASE_URL is set,\n"
	       "that URL is used; when both exist, the variable overrides "
	       "database.url.\n"
	       "Exit status: 0 success, 1 error, 2 usage error.\n");
}

static void
print_cmd_help(const struct ctl_cmd *cmd)
{
	printf("usage: " PROG " %s %s\n\n%s\n\nOptions:\n", cmd->name,
	       cmd->usage, cmd->about);
	for (const struct ctl_opt *o = cmd->opts; o->name != NULL; o++) {
		char left[64];
		const char *h = o->help;
		const char *nl;

		snprintf(left, sizeof left, "--%s%s%s", o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		/* Continuation lines of a help text line up under it. */
		while ((nl = strchr(h, '\n')) != NULL) {
			printf("  %-24s %.*s\n", left, (int)(nl - h), h);
			left[0] = '\0';
			h = nl + 1;
		}
		printf("  %-24s %s\n", left, h);
	}
	printf("  %-24s %s\n", "-c, --config FILE", "configuration file");
	printf("  %-24s %s\n", "--database-url URL", "database to use instead");
	printf("  %-24s %s\n", "-h, --help", "show this help");
}

/* Arguments */

static int
opt_index(const struct ctl_cmd *cmd, const char *name)
{
	for (int i = 0; cmd->opts[i].name != NULL; i++) {
		if (strcmp(cmd->opts[i].name, name) == 0)
			return i;
	}
	fatal("%s: no option --%s for '%s'", __func__, name, cmd->name);
}

const char *
arg_get(const struct ctl_cmd *cmd, const struct ctl_args *a, const char *name)
{
	return a->opt[opt_index(cmd, name)];
}

size_t
arg_all(const struct ctl_cmd *cmd, const struct ctl_args *a, const char *name,
	const char **out, size_t max)
{
	int idx = opt_index(cmd, name);
	size_t n = 0;

	for (int i = 0; i < a->ngiven && n < max; i++) {
		if (a->given_idx[i] == idx)
			out[n++] = a->given_val[i];
	}
	return n;
}

/* Sets one of the options every command accepts too. */
static void
common_opt(struct ctl *ctl, const char *name, const char *val)
{
	if (strcmp(name, "config") == 0) {
		ctl->config_path = val;
		ctl->config_given = true;
	} else if (strcmp(name, "database-url") == 0) {
		ctl->database_url = val;
	}
}

static bool
common_takes_arg(const char *name)
{
	return strcmp(name, "config") == 0 || strcmp(name, "database-url") == 0;
}

/*
 * Parses a command's arguments into a.  Returns -1 to go on, or the exit
 * status to end with (help printed, or a usage error reported).
 */
static int
parse_args(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv,
	   struct ctl_args *a)
{
	bool only_pos = false;

	memset(a, 0, sizeof *a);
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const char *eq, *val = NULL;
		char name[64];
		int idx = -1;
		bool takes;

		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			if (a->npos == cmd->maxpos)
				return usage_error(
				    cmd, "unexpected argument '%s'", arg);
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			print_cmd_help(cmd);
			return EXIT_OK;
		}
		if (strncmp(arg, "-c", 2) == 0) {
			/* -c FILE or -cFILE */
			if (arg[2] != '\0')
				common_opt(ctl, "config", arg + 2);
			else if (i + 1 < argc)
				common_opt(ctl, "config", argv[++i]);
			else
				return usage_error(cmd,
						   "option '-c' needs a value");
			continue;
		}
		if (arg[1] != '-')
			return usage_error(cmd, "unknown option '%s'", arg);

		eq = strchr(arg + 2, '=');
		snprintf(name, sizeof name, "%.*s",
			 (int)(eq ? (size_t)(eq - arg - 2) : strlen(arg + 2)),
			 arg + 2);
		for (int j = 0; cmd->opts[j].name != NULL; j++) {
			if (strcmp(cmd->opts[j].name, name) == 0)
				idx = j;
		}
		if (idx >= 0)
			takes = cmd->opts[idx].arg != NULL;
		else if (common_takes_arg(name))
			takes = true;
		else
			return usage_error(cmd, "unknown option '--%s'", name);

		if (takes) {
			if (eq != NULL)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return usage_error(
				    cmd, "option '--%s' needs a value", name);
		} else if (eq != NULL) {
			return usage_error(cmd, "option '--%s' takes no value",
					   name);
		}
		if (idx >= 0) {
			if (a->ngiven == CTL_MAXGIVEN)
				return usage_error(cmd, "too many options");
			a->opt[idx] = takes ? val : "";
			a->given_idx[a->ngiven] = idx;
			a->given_val[a->ngiven++] = a->opt[idx];
		} else {
			common_opt(ctl, name, val);
		}
	}

	for (int j = 0; cmd->opts[j].name != NULL; j++) {
		if (cmd->opts[j].required && a->opt[j] == NULL)
			return usage_error(cmd, "missing --%s %s",
					   cmd->opts[j].name, cmd->opts[j].arg);
	}
	if (a->npos < cmd->minpos)
		return usage_error(cmd, "missing %s", cmd->posname);
	return -1;
}

/* Database */

/*
 * Finds the database URL (--database-url; else LINKPULSE_DATABASE_URL when
 * the default configuration file does not exist; else the configuration)
 * and connects.  With check_schema, refuses a database whose schema is
 * older than this program.  Returns -1 when connected, else the exit
 * status.
 */
int
ctl_connect(struct ctl *ctl, bool check_schema)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {NULL, PROG, NULL};
	struct lp_config *cfg = NULL;
	char *url = NULL;
	const char *env = getenv("LINKPULSE_DATABASE_URL");
	struct stat st;
	char err[512];
	int current, latest;

	if (ctl->database_url != NULL) {
		url = xstrdup(ctl->database_url);
	} else if (!ctl->config_given && env != NULL && *env != '\0' &&
		   stat(ctl->config_path, &st) != 0 && errno == ENOENT) {
		url = xstrdup(env);
	} else {
		struct strlist errs = {0};

		cfg = config_load(ctl->config_path, &errs);
		if (cfg == NULL) {
			for (size_t i = 0; i < errs.n; i++)
				ctl_error("%s", errs.v[i]);
			if (errs.n == 0)
				ctl_error("%s: cannot load the configuration",
					  ctl->config_path);
			if (!ctl->config_given)
				ctl_error("give -c FILE or --database-url URL, "
					  "or set LINKPULSE_DATABASE_URL");
			strlist_free(&errs);
			return EXIT_ERR;
		}
		strlist_free(&errs);
		if (cfg->database.url == NULL || *cfg->database.url == '\0') {
			ctl_error("%s: no database.url", ctl->config_path);
			config_free(cfg);
			return EXIT_ERR;
		}
		url = xstrdup(cfg->database.url);
		config_free(cfg);
	}

	/* The URL may hold a password: it is never printed. */
	vals[0] = url;
	ctl->conn = PQconnectdbParams(keys, vals, 1);
	free(url);
	if (PQstatus(ctl->conn) != CONNECTION_OK)
		return ctl_error("cannot connect to the database: %s",
				 pq_message(ctl->conn, NULL));

	if (!check_schema)
		return -1;
	if ((current = schema_current_version(ctl->conn, err, sizeof err)) < 0)
		return ctl_error("%s", err);
	latest = schema_latest_version();
	if (current < latest)
		return ctl_error(
		    "the database schema is at version %d, this " PROG
		    " needs %d: run '" PROG " migrate'",
		    current, latest);
	return -1;
}

/* Text parameters in, text results out. */
PGresult *
exec_params(struct ctl *ctl, const char *sql, int n, const char *const *p)
{
	return PQexecParams(ctl->conn, sql, n, NULL, p, NULL, NULL, 0);
}

/*
 * The id of the workspace with this slug, in a new string.  NULL with the
 * message printed when there is none or the query fails.
 */
char *
workspace_id(struct ctl *ctl, const char *slug)
{
	const char *p[1] = {slug};
	PGresult *res;
	char *id = NULL;

	res = exec_params(ctl, sql_workspace_id, 1, p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		query_error(ctl, "looking up the workspace", res);
	else if (PQntuples(res) == 0)
		ctl_error("no workspace with slug '%s'", slug);
	else
		id = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return id;
}

/* Output */

enum col_type { COL_TEXT, COL_INT, COL_JSON };

/* One column of a listing query, in the query's order. */
struct col {
	const char *head; /* table heading, NULL: JSON only */
	const char *key;  /* JSON member, NULL: table only */
	enum col_type type;
};

/* Prints a value; control characters would break the table's lines. */
static void
put_cell(const char *s, size_t pad)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		putchar(c < 0x20 || c == 0x7f ? '?' : c);
	}
	while (pad-- > 0)
		putchar(' ');
}

static void
print_table(const PGresult *res, const struct col *cols, int ncols)
{
	size_t width[16] = {0};
	int nrows = PQntuples(res), last = -1;

	for (int c = 0; c < ncols && c < (int)nitems(width); c++) {
		if (cols[c].head == NULL)
			continue;
		last = c;
		width[c] = utf8_length(cols[c].head);
		for (int r = 0; r < nrows; r++) {
			size_t w = PQgetisnull(res, r, c)
				       ? 1
				       : utf8_length(PQgetvalue(res, r, c));

			if (w > width[c])
				width[c] = w;
		}
	}
	for (int r = -1; r < nrows; r++) {
		for (int c = 0; c <= last; c++) {
			const char *v;

			if (cols[c].head == NULL)
				continue;
			if (r < 0)
				v = cols[c].head;
			else if (PQgetisnull(res, r, c))
				v = "-";
			else
				v = PQgetvalue(res, r, c);
			put_cell(v,
				 c == last ? 0 : width[c] - utf8_length(v) + 2);
		}
		putchar('\n');
	}
}

static int
print_json(const PGresult *res, const struct col *cols, int ncols)
{
	json_t *arr = json_array();
	int rc = 0;

	for (int r = 0; r < PQntuples(res); r++) {
		json_t *obj = json_object();

		for (int c = 0; c < ncols; c++) {
			const char *v = PQgetvalue(res, r, c);
			json_t *j;

			if (cols[c].key == NULL)
				continue;
			if (PQgetisnull(res, r, c))
				j = json_null();
			else if (cols[c].type == COL_INT)
				j = json_integer(strtoll(v, NULL, 10));
			else if (cols[c].type == COL_JSON)
				j = json_loads(v, JSON_DECODE_ANY, NULL);
			else
				j = json_string(v);
			/* Invalid UTF-8 or JSON from the server: show null. */
			json_object_set_new(obj, cols[c].key,
					    j != NULL ? j : json_null());
		}
		json_array_append_new(arr, obj);
	}
	if (json_dumpf(arr, stdout, JSON_INDENT(2)) != 0)
		rc = -1;
	putchar('\n');
	json_decref(arr);
	return rc;
}

static int
print_listing(const PGresult *res, const struct col *cols, int ncols, bool json)
{
	if (json) {
		if (print_json(res, cols, ncols) < 0)
			return ctl_error("cannot write the JSON output");
	} else {
		print_table(res, cols, ncols);
	}
	if (fflush(stdout) != 0)
		return ctl_error("writing the output: %s", strerror(errno));
	return EXIT_OK;
}

/* migrate */

static int migrate_applied;

static void
migrate_progress(const struct migration *m)
{
	printf("applied %s\n", m->name);
	fflush(stdout);
	migrate_applied++;
}

static int
cmd_migrate(struct ctl *ctl, const struct ctl_cmd *cmd,
	    const struct ctl_args *a)
{
	char err[1024];
	int current, latest = schema_latest_version(), rc;

	if ((rc = ctl_connect(ctl, false)) >= 0)
		return rc;
	if ((current = schema_current_version(ctl->conn, err, sizeof err)) < 0)
		return ctl_error("%s", err);

	if (arg_get(cmd, a, "status") != NULL) {
		int pending = 0;

		for (int i = 0; i < nmigrations; i++)
			pending += migrations[i].version > current;
		printf("current version: %d\nlatest version: %d\npending: %d\n",
		       current, latest, pending);
		for (int i = 0; i < nmigrations; i++) {
			if (migrations[i].version > current)
				printf("  %s\n", migrations[i].name);
		}
		return EXIT_OK;
	}

	if (schema_migrate(ctl->conn, migrate_progress, err, sizeof err) < 0)
		return ctl_error("%s", err);
	if (migrate_applied > 0)
		return EXIT_OK;
	/* Another run may have migrated while this one waited: re-read. */
	if ((current = schema_current_version(ctl->conn, err, sizeof err)) < 0)
		return ctl_error("%s", err);
	if (current > latest)
		printf("the database schema is at version %d, newer than this "
		       "linkpulsectl (%d)\n",
		       current, latest);
	else
		printf("schema is current (version %d)\n", current);
	return EXIT_OK;
}

/* workspace */

/*
 * Resolves a time zone against the server's IANA database.  Returns its
 * canonical spelling in a new string, or NULL with the message printed
 * (rc says which status).
 */
static char *
timezone_resolve(struct ctl *ctl, const struct ctl_cmd *cmd, const char *tz,
		 int *rc)
{
	const char *p[1] = {tz};
	const char *best = NULL;
	size_t bestd = SIZE_MAX;
	PGresult *res;
	char *name = NULL;

	res = exec_params(ctl, sql_timezone, 1, p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		*rc = query_error(ctl, "checking the time zone", res);
		PQclear(res);
		return NULL;
	}
	if (PQntuples(res) == 1) {
		name = xstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
		return name;
	}
	PQclear(res);

	/* Unknown: suggest the nearest name, if one is close. */
	res = exec_params(ctl, sql_timezones, 0, NULL);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		for (int r = 0; r < PQntuples(res); r++) {
			size_t d = levenshtein(tz, PQgetvalue(res, r, 0));

			if (d < bestd) {
				bestd = d;
				best = PQgetvalue(res, r, 0);
			}
		}
	}
	if (best != NULL && bestd <= 3)
		*rc = usage_error(cmd,
				  "unknown time zone '%s' (did you mean '%s'?)",
				  tz, best);
	else
		*rc = usage_error(cmd,
				  "unknown time zone '%s' (an IANA name such "
				  "as Europe/Paris or UTC)",
				  tz);
	PQclear(res);
	return NULL;
}

static int
cmd_workspace_create(struct ctl *ctl, const struct ctl_cmd *cmd,
		     const struct ctl_args *a)
{
	static const char *const plans[] = {"free", "pro", "enterprise"};
	const char *slug = arg_get(cmd, a, "slug");
	const char *name = arg_get(cmd, a, "name");
	const char *plan = arg_get(cmd, a, "plan");
	const char *tz = arg_get(cmd, a, "timezone");
	const char *days = arg_get(cmd, a, "retention-days");
	char daysbuf[16], *canon_tz = NULL, *end;
	const char *p[5];
	PGresult *res;
	bool plan_ok = false;
	long n;
	int rc;

	if (!slug_valid(slug))
		return usage_error(cmd,
				   "invalid slug '%s': 2 to 63 characters, "
				   "a-z, 0-9 and '-', not starting with '-'",
				   slug);
	if (*name == '\0')
		return usage_error(cmd, "the name must not be empty");
	if (plan == NULL)
		plan = "free";
	for (size_t i = 0; i < nitems(plans); i++)
		plan_ok = plan_ok || strcmp(plan, plans[i]) == 0;
	if (!plan_ok)
		return usage_error(
		    cmd, "unknown plan '%s' (free, pro or enterprise)", plan);
	if (days == NULL)
		days = "395";
	errno = 0;
	n = strtol(days, &end, 10);
	if (errno != 0 || end == days || *end != '\0' || n <= 0 || n > INT_MAX)
		return usage_error(cmd,
				   "invalid --retention-days '%s' (a number of "
				   "days, at least 1)",
				   days);
	snprintf(daysbuf, sizeof daysbuf, "%ld", n);

	if ((rc = ctl_connect(ctl, true)) >= 0)
		return rc;
	if ((canon_tz = timezone_resolve(ctl, cmd, tz ? tz : "UTC", &rc)) ==
	    NULL)
		return rc;

	p[0] = slug;
	p[1] = name;
	p[2] = plan;
	p[3] = canon_tz;
	p[4] = daysbuf;
	res = exec_params(ctl, sql_workspace_create, 5, p);
	free(canon_tz);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = query_error(ctl, "creating the workspace", res);
	else if (PQntuples(res) == 0)
		rc = ctl_error("a workspace with slug '%s' already exists",
			       slug);
	else {
		printf("%s\n", PQgetvalue(res, 0, 0));
		rc = EXIT_OK;
	}
	PQclear(res);
	return rc;
}

static int
cmd_workspace_list(struct ctl *ctl, const struct ctl_cmd *cmd,
		   const struct ctl_args *a)
{
	static const struct col cols[] = {
	    {NULL, "id", COL_TEXT},
	    {"SLUG", "slug", COL_TEXT},
	    {"NAME", "name", COL_TEXT},
	    {"PLAN", "plan", COL_TEXT},
	    {"TIMEZONE", "timezone", COL_TEXT},
	    {"RETENTION", "retentionDays", COL_INT},
	    {"CREATED", "createdAt", COL_TEXT},
	};
	PGresult *res;
	int rc;

	if ((rc = ctl_connect(ctl, true)) >= 0)
		return rc;
	res = exec_params(ctl, sql_workspace_list, 0, NULL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = query_error(ctl, "listing workspaces", res);
	else
		rc = print_listing(res, cols, (int)nitems(cols),
				   arg_get(cmd, a, "json") != NULL);
	PQclear(res);
	return rc;
}

/* token */

/*
 * Checks a comma-separated scope list and returns it without blanks or
 * repeats, in a new string; NULL after reporting the bad scope.
 */
static char *
scopes_canonical(const struct ctl_cmd *cmd, const char *list)
{
	struct strlist seen = {0};
	char *copy = xstrdup(list), *save = NULL, *tok, *out = NULL;
	size_t len = 0;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char *end = tok + strlen(tok);
		bool dup = false;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if (!scope_known(tok)) {
			char valid[256] = "";

			for (size_t i = 0; token_scopes[i] != NULL; i++) {
				if (i > 0)
					strncat(valid, ", ",
						sizeof valid - strlen(valid) -
						    1);
				strncat(valid, token_scopes[i],
					sizeof valid - strlen(valid) - 1);
			}
			usage_error(cmd,
				    "unknown scope '%s' (valid scopes: %s)",
				    tok, valid);
			goto out;
		}
		for (size_t i = 0; i < seen.n; i++)
			dup = dup || strcmp(seen.v[i], tok) == 0;
		if (!dup)
			strlist_add(&seen, tok);
	}
	if (seen.n == 0) {
		usage_error(cmd, "--scopes names no scope");
		goto out;
	}
	for (size_t i = 0; i < seen.n; i++)
		len += strlen(seen.v[i]) + 1;
	out = xcalloc(1, len);
	for (size_t i = 0; i < seen.n; i++) {
		if (i > 0)
			strcat(out, ",");
		strcat(out, seen.v[i]);
	}
out:
	strlist_free(&seen);
	free(copy);
	return out;
}

static int
cmd_token_create(struct ctl *ctl, const struct ctl_cmd *cmd,
		 const struct ctl_args *a)
{
	const char *slug = arg_get(cmd, a, "workspace");
	const char *name = arg_get(cmd, a, "name");
	const char *envname = arg_get(cmd, a, "environment");
	const char *expires = arg_get(cmd, a, "expires-in");
	char hash[SHA256_HEX_LEN + 1], msbuf[24];
	char *scopes = NULL, *wsid = NULL, *token = NULL, *prefix = NULL;
	const char *p[7];
	PGresult *res = NULL;
	int64_t ms = 0;
	int env, rc;

	if (*name == '\0')
		return usage_error(cmd, "the name must not be empty");
	if ((env = token_env_parse(envname)) < 0)
		return usage_error(cmd,
				   "unknown environment '%s' (development, "
				   "production or analytics)",
				   envname);
	if (expires != NULL && (parse_duration_ms(expires, &ms) < 0 || ms <= 0))
		return usage_error(cmd,
				   "invalid --expires-in '%s' (a duration "
				   "such as 90d, 12h or 1h30m)",
				   expires);
	if ((scopes = scopes_canonical(cmd, arg_get(cmd, a, "scopes"))) == NULL)
		return EXIT_USAGE;

	if ((rc = ctl_connect(ctl, true)) >= 0)
		goto out;
	rc = EXIT_ERR;
	if ((wsid = workspace_id(ctl, slug)) == NULL)
		goto out;

	token = token_generate((enum token_env)env, hash);
	prefix = xstrndup(token, TOKEN_DISPLAY_PREFIX_LEN);
	snprintf(msbuf, sizeof msbuf, "%lld", (long long)ms);
	p[0] = wsid;
	p[1] = name;
	p[2] = token_env_name((enum token_env)env);
	p[3] = scopes;
	p[4] = hash;
	p[5] = prefix;
	p[6] = expires != NULL ? msbuf : NULL;
	res = exec_params(ctl, sql_token_create, 7, p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = query_error(ctl, "creating the token", res);
		goto out;
	}
	/* The only place the token is ever shown. */
	printf("%s\n", token);
	if (fflush(stdout) != 0) {
		rc = ctl_error("writing the token: %s", strerror(errno));
		goto out;
	}
	fprintf(stderr,
		"token %s for workspace %s (shown once; store it now)\n",
		PQgetvalue(res, 0, 0), slug);
	rc = EXIT_OK;
out:
	PQclear(res);
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	free(prefix);
	free(wsid);
	free(scopes);
	return rc;
}

static int
cmd_token_list(struct ctl *ctl, const struct ctl_cmd *cmd,
	       const struct ctl_args *a)
{
	static const struct col cols[] = {
	    {"ID", "id", COL_TEXT},
	    {"NAME", "name", COL_TEXT},
	    {"ENVIRONMENT", "environment", COL_TEXT},
	    {NULL, "keyType", COL_TEXT},
	    {"PREFIX", "prefix", COL_TEXT},
	    {"SCOPES", NULL, COL_TEXT},
	    {NULL, "scopes", COL_JSON},
	    {"CREATED", "createdAt", COL_TEXT},
	    {"EXPIRES", "expiresAt", COL_TEXT},
	    {"REVOKED", "revokedAt", COL_TEXT},
	    {"LAST USED", "lastUsedAt", COL_TEXT},
	};
	const char *p[1];
	PGresult *res;
	char *wsid;
	int rc;

	if ((rc = ctl_connect(ctl, true)) >= 0)
		return rc;
	if ((wsid = workspace_id(ctl, arg_get(cmd, a, "workspace"))) == NULL)
		return EXIT_ERR;
	p[0] = wsid;
	res = exec_params(ctl, sql_token_list, 1, p);
	free(wsid);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = query_error(ctl, "listing tokens", res);
	else
		rc = print_listing(res, cols, (int)nitems(cols),
				   arg_get(cmd, a, "json") != NULL);
	PQclear(res);
	return rc;
}

static int
cmd_token_revoke(struct ctl *ctl, const struct ctl_cmd *cmd,
		 const struct ctl_args *a)
{
	const char *id = a->pos[0];
	const char *slug = arg_get(cmd, a, "workspace");
	char *wsid = NULL;
	const char *p[2];
	PGresult *res;
	int rc;

	if (!uuid_valid(id))
		return usage_error(cmd,
				   "'%s' is not a token id (a UUID, as '" PROG
				   " token list' shows)",
				   id);
	if ((rc = ctl_connect(ctl, true)) >= 0)
		return rc;
	if (slug != NULL && (wsid = workspace_id(ctl, slug)) == NULL)
		return EXIT_ERR;
	p[0] = id;
	p[1] = wsid;

	res = exec_params(ctl, sql_token_revoke, 2, p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = query_error(ctl, "revoking the token", res);
		goto out;
	}
	if (PQntuples(res) > 0) {
		printf("revoked %s\n", PQgetvalue(res, 0, 0));
		rc = EXIT_OK;
		goto out;
	}

	/* Nothing changed: unknown, or revoked already (not an error). */
	PQclear(res);
	res = exec_params(ctl, sql_token_revoked_at, 2, p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = query_error(ctl, "looking up the token", res);
	else if (PQntuples(res) == 0 && slug != NULL)
		rc = ctl_error("no token %s in workspace %s", id, slug);
	else if (PQntuples(res) == 0)
		rc = ctl_error("no token %s", id);
	else {
		fprintf(stderr, PROG ": token %s was already revoked at %s\n",
			id, PQgetvalue(res, 0, 0));
		rc = EXIT_OK;
	}
out:
	PQclear(res);
	free(wsid);
	return rc;
}

/* main */

/* Whether word is the first word of some command's name. */
static bool
is_group(const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i < nitems(ctl_cmds); i++) {
		if (strncmp(ctl_cmds[i].name, word, n) == 0 &&
		    ctl_cmds[i].name[n] == ' ')
			return true;
	}
	return false;
}

/* "create, list" for group "workspace". */
static void
subcommands(const char *group, char *buf, size_t len)
{
	size_t n = strlen(group), used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < nitems(ctl_cmds) && used < len; i++) {
		if (strncmp(ctl_cmds[i].name, group, n) == 0 &&
		    ctl_cmds[i].name[n] == ' ')
			used += (size_t)snprintf(buf + used, len - used, "%s%s",
						 used > 0 ? ", " : "",
						 ctl_cmds[i].name + n + 1);
	}
}

/*
 * Finds the command named by argv[0] (and argv[1] for two-word names).
 * Sets *used to the words it took.  NULL after reporting an unknown one.
 */
static const struct ctl_cmd *
find_cmd(int argc, char **argv, int *used)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX;

	for (size_t i = 0; i < nitems(ctl_cmds); i++) {
		const char *name = ctl_cmds[i].name;
		const char *sp = strchr(name, ' ');

		if (sp == NULL && strcmp(argv[0], name) == 0) {
			*used = 1;
			return &ctl_cmds[i];
		}
		if (sp != NULL && argc > 1 &&
		    strlen(argv[0]) == (size_t)(sp - name) &&
		    strncmp(argv[0], name, (size_t)(sp - name)) == 0 &&
		    strcmp(argv[1], sp + 1) == 0) {
			*used = 2;
			return &ctl_cmds[i];
		}
	}

	if (is_group(argv[0])) {
		char subs[128];

		subcommands(argv[0], subs, sizeof subs);
		if (argc > 1 && argv[1][0] != '-')
			usage_error(NULL,
				    "unknown command '%s %s' (%s commands: "
				    "%s)",
				    argv[0], argv[1], argv[0], subs);
		else
			usage_error(NULL, "'%s' needs a command: %s", argv[0],
				    subs);
		return NULL;
	}
	for (size_t i = 0; i < nitems(ctl_cmds); i++) {
		char word[32];
		size_t d;

		snprintf(word, sizeof word, "%.*s",
			 (int)strcspn(ctl_cmds[i].name, " "), ctl_cmds[i].name);
		d = levenshtein(argv[0], word);
		if (d < bestd) {
			bestd = d;
			best = ctl_cmds[i].name;
		}
	}
	if (best != NULL && bestd <= 2)
		usage_error(NULL, "unknown command '%s' (did you mean '%.*s'?)",
			    argv[0], (int)strcspn(best, " "), best);
	else
		usage_error(NULL, "unknown command '%s'", argv[0]);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct ctl ctl = {.config_path = DEFAULT_CONFIG_PATH};
	const struct ctl_cmd *cmd;
	struct ctl_args args;
	int i, used = 0, rc;

	log_init(PROG);

	/* Global options, up to the command. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			print_help();
			return EXIT_OK;
		}
		if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
			printf(PROG " " PACKAGE_VERSION "\n");
			return EXIT_OK;
		}
		if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0 ||
		    strcmp(arg, "--database-url") == 0) {
			if (i + 1 >= argc)
				return usage_error(
				    NULL, "option '%s' needs a value", arg);
			common_opt(&ctl,
				   strcmp(arg, "--database-url") == 0
				       ? "database-url"
				       : "config",
				   argv[++i]);
			continue;
		}
		if (strncmp(arg, "-c", 2) == 0) {
			common_opt(&ctl, "config", arg + 2);
			continue;
		}
		if (strncmp(arg, "--config=", 9) == 0) {
			common_opt(&ctl, "config", arg + 9);
			continue;
		}
		if (strncmp(arg, "--database-url=", 15) == 0) {
			common_opt(&ctl, "database-url", arg + 15);
			continue;
		}
		return usage_error(NULL, "unknown option '%s'", arg);
	}
	if (i == argc)
		return usage_error(NULL, "no command given");

	if ((cmd = find_cmd(argc - i, argv + i, &used)) == NULL)
		return EXIT_USAGE;
	i += used;
	if ((rc = parse_args(&ctl, cmd, argc - i, argv + i, &args)) >= 0)
		return rc;

	rc = cmd->fn(&ctl, cmd, &args);
	if (ctl.conn != NULL)
		PQfinish(ctl.conn);
	return rc;
}

/* Webhook deliveries */

static const char *const delivery_states[] = {"pending", "delivering", "held",
					      "delivered", "dead"};

static const char sql_deliveries_list[] =
    "SELECT d.id, w.slug, d.endpoint_id, e.name, d.message_id, m.event_type,"
    " d.state, d.attempts,"
    " to_char(d.next_attempt_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " d.last_status, d.last_error,"
    " to_char(d.created_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM webhook_deliveries d"
    " JOIN workspaces w ON w.id = d.workspace_id"
    " JOIN webhook_endpoints e ON e.workspace_id = d.workspace_id"
    "  AND e.id = d.endpoint_id"
    " JOIN webhook_messages m ON m.workspace_id = d.workspace_id"
    "  AND m.id = d.message_id"
    " WHERE ($1::text IS NULL OR d.state = $1)"
    "  AND ($2::uuid IS NULL OR d.workspace_id = $2)"
    "  AND ($3::uuid IS NULL OR d.endpoint_id = $3)"
    " ORDER BY d.id DESC LIMIT $4::int";

static int
cmd_deliveries_list(struct ctl *ctl, const struct ctl_cmd *cmd,
		    const struct ctl_args *a)
{
	static const struct col cols[] = {
	    {"ID", "id", COL_INT},
	    {"WORKSPACE", "workspace", COL_TEXT},
	    {NULL, "endpointId", COL_TEXT},
	    {"ENDPOINT", "endpointName", COL_TEXT},
	    {"MESSAGE", "msgId", COL_TEXT},
	    {"TYPE", "eventType", COL_TEXT},
	    {"STATE", "state", COL_TEXT},
	    {"ATTEMPTS", "attempts", COL_INT},
	    {"NEXT", "nextAttemptAt", COL_TEXT},
	    {"STATUS", "lastStatus", COL_INT},
	    {"ERROR", "lastError", COL_TEXT},
	    {NULL, "createdAt", COL_TEXT},
	};
	const char *state = arg_get(cmd, a, "state");
	const char *slug = arg_get(cmd, a, "workspace");
	const char *endpoint = arg_get(cmd, a, "endpoint");
	const char *limit = arg_get(cmd, a, "limit");
	const char *p[4];
	char *wsid = NULL, *end;
	PGresult *res;
	bool known = state == NULL;
	long n = 50;
	int rc;

	for (size_t i = 0; i < nitems(delivery_states) && !known; i++)
		known = strcmp(state, delivery_states[i]) == 0;
	if (!known)
		return usage_error(cmd,
				   "--state: expected pending, delivering, "
				   "held, delivered or dead, got '%s'",
				   state);
	if (endpoint != NULL && !uuid_valid(endpoint))
		return usage_error(
		    cmd, "--endpoint: '%s' is not an id (a UUID)", endpoint);
	if (limit != NULL) {
		errno = 0;
		n = strtol(limit, &end, 10);
		if (errno != 0 || *end != '\0' || end == limit || n < 1 ||
		    n > 100000)
			return usage_error(cmd,
					   "--limit: expected a number from 1 "
					   "to 100000, got '%s'",
					   limit);
	}
	if ((rc = ctl_connect(ctl, true)) >= 0)
		return rc;
	if (slug != NULL && (wsid = workspace_id(ctl, slug)) == NULL)
		return EXIT_ERR;
	p[0] = state;
	p[1] = wsid;
	p[2] = endpoint;
	p[3] = limit != NULL ? limit : "50";
	res = exec_params(ctl, sql_deliveries_list, 4, p);
	free(wsid);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = query_error(ctl, "listing deliveries", res);
	else
		rc = print_listing(res, cols, (int)nitems(cols),
				   arg_get(cmd, a, "json") != NULL);
	PQclear(res);
	return rc;
}

static const char sql_deliveries_replay[] =
    "SELECT e.name, lp_webhook_replay(e.workspace_id, e.id, $2::timestamptz,"
    " $3::boolean)"
    " FROM webhook_endpoints e WHERE e.id = $1::uuid";

static int
cmd_deliveries_replay(struct ctl *ctl, const struct ctl_cmd *cmd,
		      const struct ctl_args *a)
{
	const char *endpoint = arg_get(cmd, a, "endpoint");
	const char *since = arg_get(cmd, a, "since");
	bool failed = arg_get(cmd, a, "failed") != NULL;
	char *since_ts = NULL;
	const char *p[3];
	PGresult *res;
	int64_t ms;
	int rc;

	if (!uuid_valid(endpoint))
		return usage_error(
		    cmd, "--endpoint: '%s' is not an id (a UUID)", endpoint);
	if (since == NULL && !failed)
		return usage_error(cmd, "give --since TIME, --failed, or both");
	/* "2h": that long ago; anything else is PostgreSQL's to read. */
	if (since != NULL && parse_duration_ms(since, &ms) == 0) {
		time_t t = (time_t)((wall_ms() - ms) / 1000);
		struct tm tm;
		char buf[32];

		gmtime_r(&t, &tm);
		strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
		since_ts = xstrdup(buf);
	}
	if ((rc = ctl_connect(ctl, true)) >= 0) {
		free(since_ts);
		return rc;
	}
	p[0] = endpoint;
	p[1] = since_ts != NULL ? since_ts : since;
	p[2] = failed ? "true" : "false";
	res = exec_params(ctl, sql_deliveries_replay, 3, p);
	free(since_ts);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = query_error(ctl, "replaying", res);
	} else if (PQntuples(res) == 0) {
		rc = ctl_error("no webhook endpoint has the id %s", endpoint);
	} else {
		printf("queued %s deliveries to %s\n", PQgetvalue(res, 0, 1),
		       PQgetvalue(res, 0, 0));
		rc = EXIT_OK;
	}
	PQclear(res);
	return rc;
}

/* Alert rules */

/*
 * The configuration whose webhooks name the endpoints rules may notify:
 * the one given with -c, or the default one if it exists.  *cfg stays
 * NULL when there is none (or with --database-url alone): names are then
 * not checked.  Returns -1 to go on, else the exit status.
 */
static int
rules_config(struct ctl *ctl, struct lp_config **cfg)
{
	struct strlist errs = {0};
	struct stat st;

	*cfg = NULL;
	if (!ctl->config_given &&
	    (ctl->database_url != NULL || stat(ctl->config_path, &st) != 0))
		return -1;
	if ((*cfg = config_load(ctl->config_path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			ctl_error("%s", errs.v[i]);
		if (errs.n == 0)
			ctl_error("%s: cannot load the configuration",
				  ctl->config_path);
		strlist_free(&errs);
		return EXIT_ERR;
	}
	strlist_free(&errs);
	return -1;
}

static int
cmd_rules_check(struct ctl *ctl, const struct ctl_cmd *cmd,
		const struct ctl_args *a)
{
	struct strlist errs = {0};
	struct lp_config *cfg;
	struct rule_set *set;
	char **names = NULL;
	bool ok = true;
	int rc, n;

	(void)cmd;
	if ((rc = rules_config(ctl, &cfg)) >= 0)
		return rc;
	if (cfg != NULL) {
		names = xcalloc((size_t)cfg->nwebhooks + 1, sizeof(char *));
		for (int i = 0; i < cfg->nwebhooks; i++)
			names[i] = cfg->webhooks[i].name;
		set = rules_set_new(names, cfg->nwebhooks);
	} else {
		set = rules_set_new(NULL, 0);
	}
	/* Each file on its own line; names are unique across them all. */
	for (int i = 0; i < a->npos; i++) {
		size_t before = errs.n;

		if (rules_set_add_file(set, a->pos[i], &n, &errs)) {
			printf("%s: %d rule%s OK\n", a->pos[i], n,
			       n == 1 ? "" : "s");
		} else {
			ok = false;
			for (size_t j = before; j < errs.n; j++)
				fprintf(stderr, "%s\n", errs.v[j]);
		}
	}
	fflush(stdout);
	rules_set_free(set);
	strlist_free(&errs);
	free(names);
	config_free(cfg);
	return ok ? EXIT_OK : EXIT_ERR;
}
