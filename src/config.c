/*
 * config.c - the configuration file.  Owns the table of every setting
 * (name, type, target field in struct lp_config, default, whether a reload
 * may change it), the walk over the document libyaml loads, the checks that
 * span several keys, and the copy of restart-only values on a reload.
 * Calls util (allocation, string lists, durations, sizes, levenshtein) and
 * log_level_parse; called by main at start-up and on SIGHUP, and by the
 * unit tests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "ynode.h"
#include "netguard.h"
#include "sign.h"
#include "webhook.h"

/* A config file larger than this is a mistake, not a configuration. */
#define CONFIG_MAX_BYTES (4 * 1024 * 1024)

enum cfg_type {
	CFG_STRING,   /* char *; NULL when unset */
	CFG_INT,      /* int within [min, max] */
	CFG_NUMBER,   /* double within [min, max] */
	CFG_BOOL,     /* bool */
	CFG_DURATION, /* int64_t milliseconds, at least min */
	CFG_SIZE,     /* uint64_t bytes, at least min */
	CFG_ENUM,     /* an enum stored as an int, read by parse_enum */
	CFG_LISTEN,   /* struct lp_listen * at off, its count (int) at off_n */
	CFG_STRLIST,  /* char ** at off, its count (int) at off_n */
	CFG_DURLIST, /* int64_t * (ms, each at least min) at off, count at off_n
		      */
	CFG_WEBHOOKS, /* struct lp_webhook_cfg * at off, count at off_n */
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;
	size_t off_n;
	/*
	 * Read by the same code as a value from the file, so a bad default
	 * is caught the first time a configuration is built.  NULL: unset
	 * (strings) or empty (listen lists).
	 */
	const char *def;
	bool restart_only;
	int64_t min, max; /* int, number: both; duration, size: min only */
	int (*parse_enum)(const char *);
	const char *choices; /* enum: the accepted words, for messages */
	/* String lists: which items are acceptable, and how to say so. */
	bool (*item_ok)(const char *);
	const char *item_expect;
};

/* Enums are written through an int pointer. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum log_level size");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum log_format size");
_Static_assert(sizeof(enum lp_lead_output) == sizeof(int),
	       "enum lp_lead_output size");

/* A rules.paths item: any file name or pattern, but not an empty one. */
static bool
rules_path_valid(const char *s)
{
	return *s != '\0';
}

static int
log_format_parse(const char *s)
{
	if (strcmp(s, "text") == 0)
		return LP_LOG_TEXT;
	if (strcmp(s, "json") == 0)
		return LP_LOG_JSON;
	return -1;
}

static int
lead_output_parse(const char *s)
{
	if (strcmp(s, "weighted_sum") == 0)
		return LP_LEAD_WEIGHTED_SUM;
	if (strcmp(s, "logistic") == 0)
		return LP_LEAD_LOGISTIC;
	return -1;
}

#define RESTART_ONLY true
#define RELOADABLE   false
#define OFF(field)   offsetof(struct lp_config, field)
#define KEY(n, t, f, d, r)                                                     \
	.name = (n), .type = (t), .off = OFF(f), .def = (d), .restart_only = (r)

static const struct cfg_key cfg_keys[] = {
    {KEY("http.listen", CFG_LISTEN, http.listen, "127.0.0.1:8080",
	 RESTART_ONLY),
     .off_n = OFF(http.nlisten)},
    {KEY("http.tls.listen", CFG_LISTEN, http.tls_listen, NULL, RESTART_ONLY),
     .off_n = OFF(http.ntls_listen)},
    {KEY("http.tls.cert_file", CFG_STRING, http.tls_cert_file, NULL,
	 RELOADABLE)},
    {KEY("http.tls.key_file", CFG_STRING, http.tls_key_file, NULL, RELOADABLE)},
    {KEY("http.max_header_size", CFG_SIZE, http.max_header_size, "16KiB",
	 RELOADABLE),
     .min = 1024},
    {KEY("http.max_body_size", CFG_SIZE, http.max_body_size, "10MiB",
	 RELOADABLE)},
    {KEY("http.request_timeout", CFG_DURATION, http.request_timeout_ms, "30s",
	 RELOADABLE),
     .min = 1},

    {KEY("database.url", CFG_STRING, database.url, "postgresql:///linkpulse",
	 RESTART_ONLY)},
    {KEY("database.pool_size", CFG_INT, database.pool_size, "8", RESTART_ONLY),
     .min = 1, .max = 256},
    {KEY("database.statement_timeout", CFG_DURATION,
	 database.statement_timeout_ms, "30s", RESTART_ONLY)},
    {KEY("database.connect_timeout", CFG_DURATION, database.connect_timeout_ms,
	 "10s", RESTART_ONLY)},
    /* Zero would retry a dead server in a tight loop. */
    {KEY("database.reconnect_min", CFG_DURATION, database.reconnect_min_ms,
	 "250ms", RESTART_ONLY),
     .min = 1},
    {KEY("database.reconnect_max", CFG_DURATION, database.reconnect_max_ms,
	 "30s", RESTART_ONLY),
     .min = 1},
    {KEY("database.startup_timeout", CFG_DURATION, database.startup_timeout_ms,
	 "60s", RESTART_ONLY)},
    {KEY("database.auto_migrate", CFG_BOOL, database.auto_migrate, "false",
	 RESTART_ONLY)},

    {KEY("log.level", CFG_ENUM, log.level, "info", RELOADABLE),
     .parse_enum = log_level_parse, .choices = "error, warn, info, debug"},
    {KEY("log.format", CFG_ENUM, log.format, "text", RELOADABLE),
     .parse_enum = log_format_parse, .choices = "text, json"},

    {KEY("shutdown.grace", CFG_DURATION, shutdown.grace_ms, "10s", RELOADABLE)},

    {KEY("pipeline.batch_size", CFG_INT, pipeline.batch_size, "1000",
	 RELOADABLE),
     .min = 1, .max = 100000},
    /* A pipeline that fell behind doubles its batches up to this. */
    {KEY("pipeline.batch_max", CFG_INT, pipeline.batch_max, "20000",
	 RELOADABLE),
     .min = 1, .max = 1000000},
    {KEY("pipeline.poll_interval", CFG_DURATION, pipeline.poll_interval_ms,
	 "1s", RELOADABLE),
     .min = 10},
    /* Another instance takes over this long after the leader vanished. */
    {KEY("pipeline.lease", CFG_DURATION, pipeline.lease_ms, "3s", RESTART_ONLY),
     .min = 500},

    {KEY("delivery.timeout", CFG_DURATION, delivery.timeout_ms, "15s",
	 RELOADABLE),
     .min = 100},
    {KEY("delivery.schedule", CFG_DURLIST, delivery.schedule_ms,
	 "0s, 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h", RELOADABLE),
     .off_n = OFF(delivery.nschedule)},
    {KEY("delivery.jitter", CFG_INT, delivery.jitter_percent, "20", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("delivery.lease", CFG_DURATION, delivery.lease_ms, "60s", RELOADABLE),
     .min = 1000},
    {KEY("delivery.batch_size", CFG_INT, delivery.batch_size, "500",
	 RELOADABLE),
     .min = 1, .max = 10000},
    {KEY("delivery.max_connections", CFG_INT, delivery.max_connections, "512",
	 RESTART_ONLY),
     .min = 1, .max = 65536},
    {KEY("delivery.allow_networks", CFG_STRLIST, delivery.allow_networks, NULL,
	 RELOADABLE),
     .off_n = OFF(delivery.nallow_networks), .item_ok = netguard_cidr_valid,
     .item_expect = "a network such as 127.0.0.1/32, 10.1.0.0/16 or ::1/128"},
    {KEY("delivery.require_https", CFG_BOOL, delivery.require_https, "false",
	 RELOADABLE)},
    {KEY("delivery.circuit_failures", CFG_INT, delivery.circuit_failures, "5",
	 RELOADABLE),
     .min = 1, .max = 1000000},
    {KEY("delivery.circuit_cooldown", CFG_DURATION,
	 delivery.circuit_cooldown_ms, "30s", RELOADABLE),
     .min = 1},
    {KEY("delivery.disable_after", CFG_DURATION, delivery.disable_after_ms,
	 "5d", RELOADABLE),
     .min = 1000},
    {KEY("delivery.secret_overlap", CFG_DURATION, delivery.secret_overlap_ms,
	 "24h", RELOADABLE)},

    {KEY("retention.deliveries", CFG_DURATION, retention.deliveries_ms, "30d",
	 RELOADABLE),
     .min = 60000},
    {KEY("retention.alerts", CFG_DURATION, retention.alerts_ms, "30d",
	 RELOADABLE),
     .min = 60000},

    {KEY("webhooks", CFG_WEBHOOKS, webhooks, NULL, RELOADABLE),
     .off_n = OFF(nwebhooks)},

    {KEY("rules.paths", CFG_STRLIST, rules.paths, NULL, RELOADABLE),
     .off_n = OFF(rules.npaths), .item_ok = rules_path_valid,
     .item_expect = "a file name or a glob pattern such as rules.d/*.yaml"},

    {KEY("lead_scoring.enabled", CFG_BOOL, lead_scoring.enabled, "true",
	 RELOADABLE)},
    {KEY("lead_scoring.output", CFG_ENUM, lead_scoring.output, "weighted_sum",
	 RELOADABLE),
     .parse_enum = lead_output_parse, .choices = "weighted_sum, logistic"},
    {KEY("lead_scoring.qualify_threshold", CFG_INT,
	 lead_scoring.qualify_threshold, "80", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.weights.engagement_level", CFG_INT,
	 lead_scoring.weights.engagement_level, "30", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.weights.recurring_interest", CFG_INT,
	 lead_scoring.weights.recurring_interest, "20", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.weights.recurring_scans", CFG_INT,
	 lead_scoring.weights.recurring_scans, "15", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.weights.profile_fit", CFG_INT,
	 lead_scoring.weights.profile_fit, "20", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.weights.brand_supportiveness", CFG_INT,
	 lead_scoring.weights.brand_supportiveness, "10", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.weights.technological_aptitude", CFG_INT,
	 lead_scoring.weights.technological_aptitude, "5", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.points.interaction", CFG_INT,
	 lead_scoring.points.interaction, "10", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.points.form_submission", CFG_INT,
	 lead_scoring.points.form_submission, "30", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.points.conversion", CFG_INT,
	 lead_scoring.points.conversion, "50", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.recency_half_life", CFG_DURATION,
	 lead_scoring.recency_half_life_ms, "14d", RELOADABLE),
     .min = 1},
    {KEY("lead_scoring.tag_points", CFG_STRLIST, lead_scoring.tag_points, NULL,
	 RELOADABLE),
     .off_n = OFF(lead_scoring.ntag_points), .item_ok = config_tag_points_valid,
     .item_expect = "a tag and its points such as pricing=40 (points from 0 "
		    "to 100)"},
    {KEY("lead_scoring.logistic.midpoint", CFG_INT,
	 lead_scoring.logistic.midpoint, "50", RELOADABLE),
     .min = 0, .max = 100},
    {KEY("lead_scoring.logistic.steepness", CFG_NUMBER,
	 lead_scoring.logistic.steepness, "0.1", RELOADABLE),
     .min = 0, .max = 10},
};

#define NKEYS nitems(cfg_keys)

/* State of one parse: where errors go and which node set each key. */
struct cfg_parse {
	const char *name;
	struct lp_config *cfg;
	struct strlist *errs;
	int nerrs;
	yaml_document_t *doc;
	yaml_node_t *where[NKEYS]; /* the value node, once a key is set */
	bool bad[NKEYS];	   /* the file's value was rejected */
	/* Endpoints rejected for other reasons: their URLs are still checked.
	 */
	struct lp_webhook_cfg *rejected;
	int nrejected;
};

static void perr(struct cfg_parse *, const yaml_mark_t *, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void *
field(const struct lp_config *cfg, size_t off)
{
	return (char *)cfg + off;
}

static size_t
key_index(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(cfg_keys[i].name, name) == 0)
			return i;
	fatal("config: no key %s in the table", name);
}

static const struct cfg_key *
key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(cfg_keys[i].name, name) == 0)
			return &cfg_keys[i];
	return NULL;
}

/* A section is known when some key lives under it. */
static bool
section_known(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < NKEYS; i++)
		if (strncmp(cfg_keys[i].name, name, len) == 0 &&
		    cfg_keys[i].name[len] == '.')
			return true;
	return false;
}

/* Errors: one line each, "FILE:LINE:COL: ..." (ynode_error). */
static void
perr(struct cfg_parse *p, const yaml_mark_t *mark, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvprintf(fmt, ap);
	va_end(ap);
	ynode_error(p->errs, p->name, mark, msg);
	free(msg);
	p->nerrs++;
}

/* A size the way people write it: "1KiB" rather than "1024". */
static void
format_size(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;

	while (u + 1 < nitems(units) && n >= 1024 && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu%s", (unsigned long long)n, units[u]);
}

#define LISTEN_EXPECT "an address such as 127.0.0.1:8080, [::1]:8080 or :8080"
#define PORT_EXPECT   "a port from 0 to 65535"

/* What a key accepts, for "expected ..." in messages.  Caller frees. */
static char *
key_expect(const struct cfg_key *k)
{
	char buf[32];

	switch (k->type) {
	case CFG_STRING:
		return xstrdup("a string");
	case CFG_INT:
		return xprintf("an integer from %lld to %lld",
			       (long long)k->min, (long long)k->max);
	case CFG_NUMBER:
		return xprintf("a number from %lld to %lld, such as 0.25",
			       (long long)k->min, (long long)k->max);
	case CFG_BOOL:
		return xstrdup("true, false, yes, no, on or off");
	case CFG_DURATION:
		if (k->min == 0)
			return xstrdup(
			    "a duration such as 250ms, 30s or 1h30m");
		if (k->min == 1)
			return xstrdup(
			    "a duration greater than 0 such as 250ms, "
			    "30s or 1h30m");
		format_duration(k->min, buf, sizeof(buf));
		return xprintf("a duration of at least %s such as 250ms, 30s "
			       "or 1h30m",
			       buf);
	case CFG_SIZE:
		if (k->min == 0)
			return xstrdup("a size such as 64KiB or 1MiB");
		format_size((uint64_t)k->min, buf, sizeof(buf));
		return xprintf("a size of at least %s such as 64KiB or 1MiB",
			       buf);
	case CFG_ENUM:
		return xprintf("one of %s", k->choices);
	case CFG_LISTEN:
		return xstrdup(LISTEN_EXPECT ", or a list of them");
	case CFG_STRLIST:
		return xprintf("%s, or a list of them", k->item_expect);
	case CFG_DURLIST:
		return xstrdup("a list of durations such as [0s, 5s, 5m]");
	case CFG_WEBHOOKS:
		return xstrdup("a list of endpoints, each a mapping with "
			       "workspace, name, url and secret");
	}
	fatal("config: key %s has no type", k->name);
}

static bool
host_name_ok(const char *h)
{
	struct in_addr a4;
	bool numeric = true;

	if (strlen(h) > 253)
		return false;
	for (const char *c = h; *c != '\0'; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    *c == '-' || *c == '_')
			numeric = false;
		else if (!((*c >= '0' && *c <= '9') || *c == '.'))
			return false;
	}
	/* Digits and dots are an IPv4 address, so it must be a valid one. */
	if (numeric && *h != '\0')
		return inet_pton(AF_INET, h, &a4) == 1;
	return true;
}

static bool
host_ipv6_ok(const char *h)
{
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN + 1];
	size_t len = strcspn(h, "%"); /* a zone follows: "fe80::1%eth0" */

	if (len == 0 || len >= sizeof(buf))
		return false;
	if (h[len] == '%' && h[len + 1] == '\0')
		return false;
	memcpy(buf, h, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, &a6) == 1;
}

static int
port_parse(const char *s)
{
	int port = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		port = port * 10 + (*s - '0');
	}
	return port <= 65535 ? port : -1;
}

/*
 * "host:port", "[v6]:port" or ":port" (every address).  Returns NULL or
 * what was expected instead.
 */
static const char *
listen_parse(const char *s, struct lp_listen *out)
{
	const char *colon;
	char *host;
	int port;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || end[1] != ':')
			return LISTEN_EXPECT;
		host = xstrndup(s + 1, (size_t)(end - s - 1));
		if (!host_ipv6_ok(host)) {
			free(host);
			return LISTEN_EXPECT;
		}
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return LISTEN_EXPECT;
		host = xstrndup(s, (size_t)(colon - s));
		/* An IPv6 address needs brackets to set its port apart. */
		if (!host_name_ok(host)) {
			free(host);
			return LISTEN_EXPECT;
		}
	}
	if ((port = port_parse(colon + 1)) < 0) {
		free(host);
		return PORT_EXPECT;
	}
	out->host = host;
	out->port = port;
	return NULL;
}

static void
listen_free(struct lp_listen *v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i].host);
	free(v);
}

/* Puts list v of n addresses in the key's field; the config owns it now. */
static void
listen_replace(const struct cfg_key *k, struct lp_config *cfg,
	       struct lp_listen *v, int n)
{
	struct lp_listen **lp = field(cfg, k->off);
	int *np = field(cfg, k->off_n);

	listen_free(*lp, *np);
	*lp = v;
	*np = n;
}

/* A plain decimal number ("0.1", "2", "1e-2"): not inf, nan or hex. */
static bool
number_parse(const char *s, double *out)
{
	char *end;

	if (*s == '\0' || s[strspn(s, "0123456789.+-eE")] != '\0')
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return end != s && *end == '\0' && errno == 0 && isfinite(*out);
}

bool
config_tag_points_parse(const char *item, size_t *namelen, int *points)
{
	const char *eq = strrchr(item, '=');
	long long n;

	if (eq == NULL || strspn(item, " \t") >= (size_t)(eq - item) ||
	    !ynode_int(eq + 1, &n) || n < 0 || n > 100)
		return false;
	*namelen = (size_t)(eq - item);
	*points = (int)n;
	return true;
}

bool
config_tag_points_valid(const char *item)
{
	size_t len;
	int points;

	return config_tag_points_parse(item, &len, &points);
}

static void webhooks_free(struct lp_webhook_cfg *, int);

/* ---- lists of strings or durations: an array at off, its count at off_n */

static size_t
list_elem_size(const struct cfg_key *k)
{
	return k->type == CFG_STRLIST ? sizeof(char *) : sizeof(int64_t);
}

/* Parses one item into slot; returns NULL or what was expected (freed). */
static char *
list_item_parse(const struct cfg_key *k, const char *s, void *slot)
{
	char buf[32];
	int64_t ms;

	if (k->type == CFG_STRLIST) {
		if (!k->item_ok(s))
			return xstrdup(k->item_expect);
		*(char **)slot = xstrdup(s);
		return NULL;
	}
	if (parse_duration_ms(s, &ms) != 0 || ms < k->min) {
		if (k->min <= 0)
			return xstrdup("a duration such as 0s, 5s or 30m");
		format_duration(k->min, buf, sizeof(buf));
		return xprintf("a duration of at least %s", buf);
	}
	*(int64_t *)slot = ms;
	return NULL;
}

static void
list_free_items(const struct cfg_key *k, void *v, int n)
{
	if (k->type == CFG_STRLIST)
		for (int i = 0; i < n; i++)
			free(((char **)v)[i]);
	free(v);
}

/* Puts list v of n items in the key's field; the config owns it now. */
static void
list_replace(const struct cfg_key *k, struct lp_config *cfg, void *v, int n)
{
	void **lp = field(cfg, k->off);
	int *np = field(cfg, k->off_n);

	list_free_items(k, *lp, *np);
	*lp = v;
	*np = n;
}

/* A scalar: items separated by commas ("0s, 5s, 5m"); "" is empty. */
static char *
list_set_text(const struct cfg_key *k, struct lp_config *cfg, const char *s)
{
	size_t cap = 1, es = list_elem_size(k);
	char *copy, *item, *save = NULL, *why = NULL;
	void *v;
	int n = 0;

	for (const char *c = s; *c != '\0'; c++)
		cap += *c == ',';
	v = xcalloc(cap, es);
	copy = xstrdup(s);
	for (item = strtok_r(copy, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *end = item + strlen(item);

		while (*item == ' ')
			item++;
		while (end > item && end[-1] == ' ')
			*--end = '\0';
		if ((why = list_item_parse(k, item, (char *)v + es * n)) !=
		    NULL)
			break;
		n++;
	}
	free(copy);
	if (why != NULL) {
		list_free_items(k, v, n);
		return why;
	}
	list_replace(k, cfg, v, n);
	return NULL;
}

/*
 * Sets key k in cfg from text s: the one parser for defaults and for the
 * file.  Returns NULL, or what was expected (caller frees); cfg keeps its
 * previous value then.
 */
static char *
value_set(const struct cfg_key *k, struct lp_config *cfg, const char *s)
{
	void *f = field(cfg, k->off);
	struct lp_listen one, *v;
	const char *why;
	long long i;
	double d;
	int64_t ms;
	uint64_t size;
	int e;

	switch (k->type) {
	case CFG_STRING:
		free(*(char **)f);
		*(char **)f = xstrdup(s);
		return NULL;
	case CFG_INT:
		if (!ynode_int(s, &i) || i < k->min || i > k->max)
			break;
		*(int *)f = (int)i;
		return NULL;
	case CFG_NUMBER:
		if (!number_parse(s, &d) || d < (double)k->min ||
		    d > (double)k->max)
			break;
		*(double *)f = d;
		return NULL;
	case CFG_BOOL:
		if ((e = ynode_bool(s)) < 0)
			break;
		*(bool *)f = e;
		return NULL;
	case CFG_DURATION:
		if (parse_duration_ms(s, &ms) != 0 || ms < k->min)
			break;
		*(int64_t *)f = ms;
		return NULL;
	case CFG_SIZE:
		if (parse_size(s, &size) != 0 || size < (uint64_t)k->min)
			break;
		*(uint64_t *)f = size;
		return NULL;
	case CFG_ENUM:
		if ((e = k->parse_enum(s)) < 0)
			break;
		*(int *)f = e;
		return NULL;
	case CFG_LISTEN:
		if ((why = listen_parse(s, &one)) != NULL)
			return xstrdup(why);
		v = xmalloc(sizeof(*v));
		*v = one;
		listen_replace(k, cfg, v, 1);
		return NULL;
	case CFG_STRLIST:
	case CFG_DURLIST:
		return list_set_text(k, cfg, s);
	case CFG_WEBHOOKS:
		break;
	}
	return key_expect(k);
}

static void
value_free(const struct cfg_key *k, struct lp_config *cfg)
{
	void *f = field(cfg, k->off);

	if (k->type == CFG_STRING) {
		free(*(char **)f);
		*(char **)f = NULL;
	} else if (k->type == CFG_LISTEN) {
		listen_replace(k, cfg, NULL, 0);
	} else if (k->type == CFG_STRLIST || k->type == CFG_DURLIST) {
		list_replace(k, cfg, NULL, 0);
	} else if (k->type == CFG_WEBHOOKS) {
		webhooks_free(cfg->webhooks, cfg->nwebhooks);
		cfg->webhooks = NULL;
		cfg->nwebhooks = 0;
	}
}

/* Back to the default; used for an empty value in the file. */
static void
value_reset(const struct cfg_key *k, struct lp_config *cfg)
{
	char *why;

	value_free(k, cfg);
	if (k->def != NULL && (why = value_set(k, cfg, k->def)) != NULL)
		fatal("config: the default of %s is not %s", k->name, why);
}

static bool
value_equal(const struct cfg_key *k, const struct lp_config *a,
	    const struct lp_config *b)
{
	const void *fa = field(a, k->off), *fb = field(b, k->off);
	const struct lp_listen *la, *lb;
	const char *sa, *sb;
	int n;

	switch (k->type) {
	case CFG_STRING:
		sa = *(char *const *)fa;
		sb = *(char *const *)fb;
		if (sa == NULL || sb == NULL)
			return sa == sb;
		return strcmp(sa, sb) == 0;
	case CFG_INT:
	case CFG_ENUM:
		return *(const int *)fa == *(const int *)fb;
	case CFG_NUMBER:
		return *(const double *)fa == *(const double *)fb;
	case CFG_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case CFG_DURATION:
		return *(const int64_t *)fa == *(const int64_t *)fb;
	case CFG_SIZE:
		return *(const uint64_t *)fa == *(const uint64_t *)fb;
	case CFG_LISTEN:
		n = *(const int *)field(a, k->off_n);
		if (n != *(const int *)field(b, k->off_n))
			return false;
		la = *(struct lp_listen *const *)fa;
		lb = *(struct lp_listen *const *)fb;
		for (int i = 0; i < n; i++)
			if (la[i].port != lb[i].port ||
			    strcmp(la[i].host, lb[i].host) != 0)
				return false;
		return true;
	case CFG_STRLIST:
		n = *(const int *)field(a, k->off_n);
		if (n != *(const int *)field(b, k->off_n))
			return false;
		for (int i = 0; i < n; i++)
			if (strcmp((*(char **const *)fa)[i],
				   (*(char **const *)fb)[i]) != 0)
				return false;
		return true;
	case CFG_DURLIST:
		n = *(const int *)field(a, k->off_n);
		return n == *(const int *)field(b, k->off_n) &&
		       (n == 0 ||
			memcmp(*(int64_t *const *)fa, *(int64_t *const *)fb,
			       sizeof(int64_t) * (size_t)n) == 0);
	case CFG_WEBHOOKS:
		break; /* reloadable: never compared */
	}
	fatal("config: %s cannot be compared", k->name);
}

/* Deep copy of key k from src into dst, freeing what dst held. */
static void
value_copy(const struct cfg_key *k, struct lp_config *dst,
	   const struct lp_config *src)
{
	const void *fs = field(src, k->off);
	void *fd = field(dst, k->off);
	const struct lp_listen *ls;
	struct lp_listen *v;
	const char *s;
	int n;

	switch (k->type) {
	case CFG_STRING:
		s = *(char *const *)fs;
		free(*(char **)fd);
		*(char **)fd = s != NULL ? xstrdup(s) : NULL;
		break;
	case CFG_INT:
	case CFG_ENUM:
		*(int *)fd = *(const int *)fs;
		break;
	case CFG_NUMBER:
		*(double *)fd = *(const double *)fs;
		break;
	case CFG_BOOL:
		*(bool *)fd = *(const bool *)fs;
		break;
	case CFG_DURATION:
		*(int64_t *)fd = *(const int64_t *)fs;
		break;
	case CFG_SIZE:
		*(uint64_t *)fd = *(const uint64_t *)fs;
		break;
	case CFG_LISTEN:
		n = *(const int *)field(src, k->off_n);
		ls = *(struct lp_listen *const *)fs;
		v = n > 0 ? xcalloc((size_t)n, sizeof(*v)) : NULL;
		for (int i = 0; i < n; i++) {
			v[i].host = xstrdup(ls[i].host);
			v[i].port = ls[i].port;
		}
		listen_replace(k, dst, v, n);
		break;
	case CFG_STRLIST:
	case CFG_DURLIST: {
		size_t es = list_elem_size(k);
		void *lv;

		n = *(const int *)field(src, k->off_n);
		lv = n > 0 ? xcalloc((size_t)n, es) : NULL;
		if (n > 0)
			memcpy(lv, *(void *const *)fs, es * (size_t)n);
		if (k->type == CFG_STRLIST)
			for (int i = 0; i < n; i++)
				((char **)lv)[i] = xstrdup(((char **)lv)[i]);
		list_replace(k, dst, lv, n);
		break;
	}
	case CFG_WEBHOOKS:
		fatal("config: %s cannot be copied", k->name);
	}
}

static struct lp_config *
config_new(const char *path)
{
	struct lp_config *cfg = xcalloc(1, sizeof(*cfg));

	cfg->path = xstrdup(path);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (k->def == NULL && k->type != CFG_STRING &&
		    k->type != CFG_LISTEN && k->type != CFG_STRLIST &&
		    k->type != CFG_WEBHOOKS)
			fatal("config: key %s has no default", k->name);
		value_reset(k, cfg);
	}
	return cfg;
}

void
config_free(struct lp_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		value_free(&cfg_keys[i], cfg);
	free(cfg->path);
	free(cfg);
}

static void
key_error(struct cfg_parse *p, const struct cfg_key *k, const yaml_node_t *n,
	  const char *expect)
{
	char *got = ynode_describe(n);
	char *own = expect == NULL ? key_expect(k) : NULL;

	perr(p, &n->start_mark, "%s: expected %s, got %s", k->name,
	     expect != NULL ? expect : own, got);
	free(own);
	free(got);
}

/* One element of a listen list, or the single address written alone. */
static bool
listen_node(struct cfg_parse *p, const struct cfg_key *k, const yaml_node_t *n,
	    struct lp_listen *out)
{
	const char *s, *why;

	if (n->type != YAML_SCALAR_NODE || (s = ynode_text(n)) == NULL) {
		key_error(p, k, n, LISTEN_EXPECT);
		return false;
	}
	if ((why = listen_parse(s, out)) != NULL) {
		key_error(p, k, n, why);
		return false;
	}
	return true;
}

static bool
listen_set(struct cfg_parse *p, const struct cfg_key *k, const yaml_node_t *n)
{
	yaml_node_item_t *it;
	struct lp_listen *v;
	size_t count;
	int nv = 0;
	bool ok = true;

	if (n->type == YAML_MAPPING_NODE) {
		key_error(p, k, n, NULL);
		return false;
	}
	if (n->type == YAML_SCALAR_NODE) {
		v = xcalloc(1, sizeof(*v));
		if (listen_node(p, k, n, &v[0]))
			nv = 1;
		else
			ok = false;
	} else {
		count = (size_t)(n->data.sequence.items.top -
				 n->data.sequence.items.start);
		v = xcalloc(count > 0 ? count : 1, sizeof(*v));
		for (it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			const yaml_node_t *e =
			    yaml_document_get_node(p->doc, *it);

			if (listen_node(p, k, e, &v[nv]))
				nv++;
			else
				ok = false;
		}
	}
	if (!ok || nv == 0) {
		listen_free(v, nv);
		v = NULL;
	}
	if (!ok)
		return false;
	listen_replace(k, p->cfg, v, nv);
	return true;
}

/* A YAML sequence for a list key: each item judged where it stands. */
static bool
list_set(struct cfg_parse *p, const struct cfg_key *k, const yaml_node_t *n)
{
	size_t count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	size_t es = list_elem_size(k);
	void *v = xcalloc(count > 0 ? count : 1, es);
	bool ok = true;
	char *why, *got;
	int nv = 0;

	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		const yaml_node_t *e = yaml_document_get_node(p->doc, *it);
		const char *s;

		if (e->type != YAML_SCALAR_NODE || ynode_is_null(e) ||
		    (s = ynode_text(e)) == NULL) {
			why = k->type == CFG_STRLIST
				  ? xstrdup(k->item_expect)
				  : xstrdup("a duration such as 5s");
		} else {
			why = list_item_parse(k, s, (char *)v + es * nv);
		}
		if (why != NULL) {
			got = ynode_describe(e);
			perr(p, &e->start_mark, "%s: expected %s, got %s",
			     k->name, why, got);
			free(got);
			free(why);
			ok = false;
			continue;
		}
		nv++;
	}
	if (!ok) {
		list_free_items(k, v, nv);
		return false;
	}
	list_replace(k, p->cfg, v, nv);
	return true;
}

/* ---- webhooks: endpoints declared in the file, one mapping each */

enum wf_type { WF_STRING, WF_INT, WF_BOOL, WF_TYPES, WF_HEADERS, WF_DURATION };

/* The most group_wait and group_interval may be (the columns are int ms). */
#define WF_DURATION_MAX (7 * 86400 * 1000LL)

static const struct webhook_field {
	const char *name;
	enum wf_type type;
	bool required;
	size_t off; /* in struct lp_webhook_cfg */
	int min, max;
} webhook_fields[] = {
#define WF(n, t, r, f)                                                         \
	.name = (n), .type = (t), .required = (r),                             \
	.off = offsetof(struct lp_webhook_cfg, f)
    {WF("workspace", WF_STRING, true, workspace)},
    {WF("name", WF_STRING, true, name)},
    {WF("url", WF_STRING, true, url)},
    {WF("secret", WF_STRING, true, secret)},
    {WF("description", WF_STRING, false, description)},
    {WF("event_types", WF_TYPES, false, event_types)},
    {WF("headers", WF_HEADERS, false, header_names)},
    {WF("max_in_flight", WF_INT, false, max_in_flight), .min = 1, .max = 1000},
    {WF("rate_limit_per_second", WF_INT, false, rate_limit_per_second),
     .min = 1, .max = 1000000},
    {WF("payload", WF_STRING, false, payload)},
    {WF("format", WF_STRING, false, format)},
    {WF("group_wait", WF_DURATION, false, group_wait_ms)},
    {WF("group_interval", WF_DURATION, false, group_interval_ms)},
    {WF("operational", WF_BOOL, false, operational)},
#undef WF
};

static void
webhook_free_one(struct lp_webhook_cfg *w)
{
	free(w->workspace);
	free(w->name);
	free(w->url);
	free(w->secret);
	free(w->description);
	free(w->payload);
	free(w->format);
	for (int i = 0; i < w->nevent_types; i++)
		free(w->event_types[i]);
	free(w->event_types);
	for (int i = 0; i < w->nheaders; i++) {
		free(w->header_names[i]);
		free(w->header_values[i]);
	}
	free(w->header_names);
	free(w->header_values);
}

static void
webhooks_free(struct lp_webhook_cfg *v, int n)
{
	for (int i = 0; i < n; i++)
		webhook_free_one(&v[i]);
	free(v);
}

/* A scalar string of an endpoint's field, or NULL after an error. */
static const char *
webhook_scalar(struct cfg_parse *p, const char *what, const yaml_node_t *n)
{
	const char *s;
	char *got;

	if (n->type == YAML_SCALAR_NODE && !ynode_is_null(n) &&
	    (s = ynode_text(n)) != NULL && *s != '\0')
		return s;
	got = ynode_describe(n);
	perr(p, &n->start_mark, "webhooks: %s: expected a string, got %s", what,
	     got);
	free(got);
	return NULL;
}

static bool
webhook_field_set(struct cfg_parse *p, const struct webhook_field *f,
		  struct lp_webhook_cfg *w, const yaml_node_t *n)
{
	void *dst = (char *)w + f->off;
	const char *s, *why;
	long long i;
	int64_t ms;
	char *got;
	int b;

	switch (f->type) {
	case WF_STRING:
		if ((s = webhook_scalar(p, f->name, n)) == NULL)
			return false;
		free(*(char **)dst);
		*(char **)dst = xstrdup(s);
		return true;
	case WF_INT:
		if ((s = webhook_scalar(p, f->name, n)) == NULL)
			return false;
		if (!ynode_int(s, &i) || i < f->min || i > f->max) {
			perr(p, &n->start_mark,
			     "webhooks: %s: expected an integer from %d to %d, "
			     "got '%s'",
			     f->name, f->min, f->max, s);
			return false;
		}
		*(int *)dst = (int)i;
		return true;
	case WF_DURATION:
		if ((s = webhook_scalar(p, f->name, n)) == NULL)
			return false;
		if (parse_duration_ms(s, &ms) != 0 || ms > WF_DURATION_MAX) {
			perr(p, &n->start_mark,
			     "webhooks: %s: expected a duration from 0s to 7d "
			     "such as 30s or 5m, got '%s'",
			     f->name, s);
			return false;
		}
		*(int64_t *)dst = ms;
		return true;
	case WF_BOOL:
		if ((s = webhook_scalar(p, f->name, n)) == NULL)
			return false;
		if ((b = ynode_bool(s)) < 0) {
			perr(p, &n->start_mark,
			     "webhooks: %s: expected true or false, got '%s'",
			     f->name, s);
			return false;
		}
		*(bool *)dst = b;
		return true;
	case WF_TYPES:
		if (n->type != YAML_SEQUENCE_NODE) {
			got = ynode_describe(n);
			perr(p, &n->start_mark,
			     "webhooks: event_types: expected a list such as "
			     "[scan.created, \"alert.*\"], got %s",
			     got);
			free(got);
			return false;
		}
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			const yaml_node_t *e =
			    yaml_document_get_node(p->doc, *it);

			if ((s = webhook_scalar(p, "event_types", e)) == NULL)
				return false;
			if (!webhook_type_pattern_valid(s)) {
				perr(p, &e->start_mark,
				     "webhooks: event_types: unknown event "
				     "type '%s' (known: %s, or a prefix "
				     "such as \"scan.*\", or \"*\")",
				     s, webhook_type_list());
				return false;
			}
			w->event_types = xrealloc(
			    w->event_types,
			    sizeof(char *) * (size_t)(w->nevent_types + 1));
			w->event_types[w->nevent_types++] = xstrdup(s);
		}
		return true;
	case WF_HEADERS:
		if (n->type != YAML_MAPPING_NODE) {
			got = ynode_describe(n);
			perr(p, &n->start_mark,
			     "webhooks: headers: expected a mapping of header "
			     "names to values, got %s",
			     got);
			free(got);
			return false;
		}
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
		     q < n->data.mapping.pairs.top; q++) {
			const yaml_node_t *kn =
			    yaml_document_get_node(p->doc, q->key);
			const yaml_node_t *vn =
			    yaml_document_get_node(p->doc, q->value);
			const char *name, *value;

			if ((name = webhook_scalar(p, "headers", kn)) == NULL ||
			    (value = webhook_scalar(p, name, vn)) == NULL)
				return false;
			if ((why = webhook_header_check(name, value)) != NULL) {
				perr(p, &kn->start_mark,
				     "webhooks: headers: %s: %s", name, why);
				return false;
			}
			if (w->nheaders >= WEBHOOK_MAX_HEADERS) {
				perr(p, &kn->start_mark,
				     "webhooks: headers: at most %d headers",
				     WEBHOOK_MAX_HEADERS);
				return false;
			}
			w->header_names = xrealloc(
			    w->header_names,
			    sizeof(char *) * (size_t)(w->nheaders + 1));
			w->header_values = xrealloc(
			    w->header_values,
			    sizeof(char *) * (size_t)(w->nheaders + 1));
			w->header_names[w->nheaders] = xstrdup(name);
			w->header_values[w->nheaders++] = xstrdup(value);
		}
		return true;
	}
	return false;
}

/* One endpoint's mapping; false (errors reported) if anything is wrong. */
static bool
webhook_parse(struct cfg_parse *p, const yaml_node_t *n,
	      struct lp_webhook_cfg *w)
{
	bool seen[nitems(webhook_fields)] = {false};
	bool ok = true;
	char *got, *hint;

	if (n->type != YAML_MAPPING_NODE) {
		got = ynode_describe(n);
		perr(p, &n->start_mark,
		     "webhooks: expected an endpoint (a mapping with "
		     "workspace, name, url and secret), got %s",
		     got);
		free(got);
		return false;
	}
	w->line = n->start_mark.line;
	w->column = n->start_mark.column;
	for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
	     q < n->data.mapping.pairs.top; q++) {
		const yaml_node_t *kn = yaml_document_get_node(p->doc, q->key);
		const yaml_node_t *vn =
		    yaml_document_get_node(p->doc, q->value);
		const char *key =
		    kn->type == YAML_SCALAR_NODE ? ynode_text(kn) : NULL;
		size_t i, best = SIZE_MAX, d;

		for (i = 0; key != NULL && i < nitems(webhook_fields); i++)
			if (strcmp(webhook_fields[i].name, key) == 0)
				break;
		if (key == NULL || i == nitems(webhook_fields)) {
			hint = NULL;
			for (size_t j = 0;
			     key != NULL && j < nitems(webhook_fields); j++) {
				d = levenshtein(key, webhook_fields[j].name);
				if (d < best && d <= 2) {
					best = d;
					hint = (char *)webhook_fields[j].name;
				}
			}
			if (hint != NULL)
				perr(p, &kn->start_mark,
				     "webhooks: unknown field '%s' (did you "
				     "mean '%s'?)",
				     key, hint);
			else
				perr(p, &kn->start_mark,
				     "webhooks: unknown field '%s' (expected "
				     "workspace, name, url, secret, "
				     "description, event_types, headers, "
				     "max_in_flight, rate_limit_per_second, "
				     "payload, format, group_wait, "
				     "group_interval or operational)",
				     key != NULL ? key : "?");
			ok = false;
			continue;
		}
		if (seen[i]) {
			perr(p, &kn->start_mark,
			     "webhooks: duplicate field '%s'", key);
			ok = false;
			continue;
		}
		seen[i] = true;
		if (!webhook_field_set(p, &webhook_fields[i], w, vn)) {
			ok = false;
			continue;
		}
		if (strcmp(key, "url") == 0) {
			w->url_line = vn->start_mark.line;
			w->url_column = vn->start_mark.column;
		} else if (strcmp(key, "workspace") == 0 &&
			   !slug_valid(w->workspace)) {
			perr(p, &vn->start_mark,
			     "webhooks: workspace: expected a workspace slug "
			     "(a-z, 0-9 and '-'), got '%s'",
			     w->workspace);
			ok = false;
		} else if (strcmp(key, "secret") == 0 &&
			   !sign_secret_valid(w->secret)) {
			perr(p, &vn->start_mark,
			     "webhooks: secret: expected whsec_ followed by "
			     "the base64 of 24 to 64 random bytes");
			ok = false;
		} else if (strcmp(key, "payload") == 0 &&
			   strcmp(w->payload, "full") != 0 &&
			   strcmp(w->payload, "thin") != 0) {
			perr(p, &vn->start_mark,
			     "webhooks: payload: expected full or thin, got "
			     "'%s'",
			     w->payload);
			ok = false;
		} else if (strcmp(key, "format") == 0 &&
			   strcmp(w->format, "standard") != 0 &&
			   strcmp(w->format, "alertmanager") != 0) {
			perr(p, &vn->start_mark,
			     "webhooks: format: expected standard or "
			     "alertmanager, got '%s'",
			     w->format);
			ok = false;
		}
	}
	for (size_t i = 0; i < nitems(webhook_fields); i++) {
		if (webhook_fields[i].required && !seen[i]) {
			perr(p, &n->start_mark,
			     "webhooks: endpoint without %s (each needs "
			     "workspace, name, url and secret)",
			     webhook_fields[i].name);
			ok = false;
		}
	}
	return ok;
}

static bool
webhooks_set(struct cfg_parse *p, const struct cfg_key *k, const yaml_node_t *n)
{
	size_t count =
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	struct lp_webhook_cfg *v = xcalloc(count > 0 ? count : 1, sizeof(*v));
	bool ok = true;
	int nv = 0;

	(void)k;
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		const yaml_node_t *e = yaml_document_get_node(p->doc, *it);
		struct lp_webhook_cfg *w = &v[nv++];

		if (!webhook_parse(p, e, w))
			ok = false;
		for (struct lp_webhook_cfg *o = v; ok && o < w; o++) {
			if (strcmp(o->workspace, w->workspace) == 0 &&
			    strcmp(o->name, w->name) == 0) {
				perr(
				    p, &e->start_mark,
				    "webhooks: a second endpoint named '%s' in "
				    "workspace %s (first at line %d)",
				    w->name, w->workspace, o->line + 1);
				ok = false;
			}
		}
	}
	if (!ok) {
		webhooks_free(p->rejected, p->nrejected);
		p->rejected = v;
		p->nrejected = nv;
		return false;
	}
	webhooks_free(p->cfg->webhooks, p->cfg->nwebhooks);
	p->cfg->webhooks = v;
	p->cfg->nwebhooks = nv;
	return true;
}

/* The URLs, once the network allow list and require_https are known. */
static void
webhooks_check_urls(struct cfg_parse *p)
{
	const struct lp_config *c = p->cfg;
	struct strlist errs = {0};
	struct netguard *guard;
	char buf[256];

	int n = c->nwebhooks + p->nrejected;

	if (n == 0 || (guard = netguard_new(c->delivery.allow_networks,
					    c->delivery.nallow_networks,
					    &errs)) == NULL) {
		strlist_free(&errs);
		return;
	}
	for (int i = 0; i < n; i++) {
		const struct lp_webhook_cfg *w =
		    i < c->nwebhooks ? &c->webhooks[i]
				     : &p->rejected[i - c->nwebhooks];
		const char *why;
		yaml_mark_t m;

		if (w->url == NULL)
			continue;
		why = netguard_check_url(
		    guard, w->url, c->delivery.require_https, buf, sizeof buf);
		m = (yaml_mark_t){.line = (size_t)w->url_line,
				  .column = (size_t)w->url_column};
		if (why != NULL)
			perr(p, &m, "webhooks: url: '%s' %s", w->url, why);
	}
	netguard_free(guard);
}

/* The file sets key k to node n. */
static void
key_set(struct cfg_parse *p, const struct cfg_key *k, yaml_node_t *n)
{
	size_t i = (size_t)(k - cfg_keys);
	const char *s;
	char *expect;
	bool ok;

	/*
	 * An empty value puts text and lists back to their default: that is
	 * how a file leaves cert_file unset.  Other types need a value.
	 */
	if (ynode_is_null(n) &&
	    (k->type == CFG_STRING || k->type == CFG_LISTEN ||
	     k->type == CFG_STRLIST || k->type == CFG_DURLIST ||
	     k->type == CFG_WEBHOOKS)) {
		value_reset(k, p->cfg);
		p->where[i] = n;
		return;
	}
	if (k->type == CFG_LISTEN) {
		ok = listen_set(p, k, n);
	} else if (k->type == CFG_WEBHOOKS && n->type == YAML_SEQUENCE_NODE) {
		ok = webhooks_set(p, k, n);
	} else if ((k->type == CFG_STRLIST || k->type == CFG_DURLIST) &&
		   n->type == YAML_SEQUENCE_NODE) {
		ok = list_set(p, k, n);
	} else if (n->type != YAML_SCALAR_NODE || ynode_is_null(n) ||
		   (s = ynode_text(n)) == NULL) {
		key_error(p, k, n, NULL);
		ok = false;
	} else if ((expect = value_set(k, p->cfg, s)) != NULL) {
		key_error(p, k, n, expect);
		free(expect);
		ok = false;
	} else {
		ok = true;
	}
	if (ok)
		p->where[i] = n;
	else
		p->bad[i] = true;
}

/*
 * The nearest key or section at the same level as an unknown key, if it is
 * near enough to be a typo.  Caller frees.
 */
static char *
key_suggest(const char *prefix, const char *key)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	size_t klen = strlen(key), best = SIZE_MAX, d;
	char *found = NULL, *cand;

	for (size_t i = 0; i < NKEYS; i++) {
		const char *name = cfg_keys[i].name, *c = name;

		if (prefix != NULL) {
			if (strncmp(name, prefix, plen) != 0 ||
			    name[plen] != '.')
				continue;
			c = name + plen + 1;
		}
		cand = xstrndup(name, (size_t)(c - name) + strcspn(c, "."));
		d = levenshtein(key, cand + (c - name));
		if (d < best && (d <= 2 || d * 3 <= klen)) {
			free(found);
			found = cand;
			best = d;
		} else {
			free(cand);
		}
	}
	return found;
}

static void walk_mapping(struct cfg_parse *p, const yaml_node_t *map,
			 const char *prefix);

static void
walk_pair(struct cfg_parse *p, const yaml_node_pair_t *pair,
	  const yaml_node_t *map, const char *prefix)
{
	yaml_node_t *kn = yaml_document_get_node(p->doc, pair->key);
	yaml_node_t *vn = yaml_document_get_node(p->doc, pair->value);
	const struct cfg_key *k;
	const char *key;
	char *name, *got, *hint;

	if (kn->type != YAML_SCALAR_NODE || (key = ynode_text(kn)) == NULL) {
		got = ynode_describe(kn);
		perr(p, &kn->start_mark, "expected a key name, got %s", got);
		free(got);
		return;
	}
	name = prefix != NULL ? xprintf("%s.%s", prefix, key) : xstrdup(key);

	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start;
	     q < pair; q++) {
		const yaml_node_t *prev =
		    yaml_document_get_node(p->doc, q->key);

		if (prev->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)prev->data.scalar.value, key) == 0) {
			perr(p, &kn->start_mark,
			     "duplicate key '%s' (first at line %zu)", name,
			     prev->start_mark.line + 1);
			goto out;
		}
	}

	/* "http.listen:" at the top would dodge the duplicate check. */
	if (strchr(key, '.') != NULL &&
	    (key_find(name) != NULL || section_known(name))) {
		perr(p, &kn->start_mark,
		     "unknown key '%s' (write sections as nested mappings, "
		     "not dotted names)",
		     name);
	} else if ((k = key_find(name)) != NULL) {
		key_set(p, k, vn);
	} else if (section_known(name)) {
		if (vn->type == YAML_MAPPING_NODE) {
			walk_mapping(p, vn, name);
		} else if (!ynode_is_null(vn)) {
			got = ynode_describe(vn);
			perr(p, &vn->start_mark,
			     "%s: expected a mapping of settings, got %s", name,
			     got);
			free(got);
		}
	} else if ((hint = key_suggest(prefix, key)) != NULL) {
		perr(p, &kn->start_mark,
		     "unknown key '%s' (did you mean '%s'?)", name, hint);
		free(hint);
	} else {
		perr(p, &kn->start_mark, "unknown key '%s'", name);
	}
out:
	free(name);
}

static void
walk_mapping(struct cfg_parse *p, const yaml_node_t *map, const char *prefix)
{
	for (const yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++)
		walk_pair(p, pair, map, prefix);
}

/* A lead score needs something to weigh. */
static void
lead_weights_check(struct cfg_parse *p)
{
	static const char *const names[] = {
	    "lead_scoring.weights.engagement_level",
	    "lead_scoring.weights.recurring_interest",
	    "lead_scoring.weights.recurring_scans",
	    "lead_scoring.weights.profile_fit",
	    "lead_scoring.weights.brand_supportiveness",
	    "lead_scoring.weights.technological_aptitude",
	};
	const yaml_node_t *n = NULL;

	for (size_t i = 0; i < nitems(names); i++) {
		size_t k = key_index(names[i]);

		if (p->bad[k] ||
		    *(const int *)field(p->cfg, cfg_keys[k].off) > 0)
			return;
		if (p->where[k] != NULL)
			n = p->where[k];
	}
	perr(p, n != NULL ? &n->start_mark : NULL,
	     "lead_scoring.weights: expected at least one weight above 0");
}

/* Each tag once in lead_scoring.tag_points, whatever its case. */
static void
lead_tags_check(struct cfg_parse *p)
{
	const struct lp_config *c = p->cfg;
	const yaml_node_t *list =
	    p->where[key_index("lead_scoring.tag_points")];
	size_t li, lj;
	int pi, pj;

	for (int j = 1; j < c->lead_scoring.ntag_points; j++) {
		const char *b = c->lead_scoring.tag_points[j];

		if (!config_tag_points_parse(b, &lj, &pj))
			continue;
		for (int i = 0; i < j; i++) {
			const char *a = c->lead_scoring.tag_points[i];
			const yaml_node_t *n = list;

			if (!config_tag_points_parse(a, &li, &pi) || li != lj ||
			    strncasecmp(a, b, li) != 0)
				continue;
			/* The repeat itself, when the file wrote a list. */
			if (n != NULL && n->type == YAML_SEQUENCE_NODE)
				n = yaml_document_get_node(
				    p->doc, n->data.sequence.items.start[j]);
			perr(p, n != NULL ? &n->start_mark : NULL,
			     "lead_scoring.tag_points: '%s' gives points to "
			     "the tag of '%s' again (tags match whatever "
			     "their case)",
			     b, a);
			break;
		}
	}
}

/* The rules that tie several keys together. */
static void
config_check(struct cfg_parse *p)
{
	const struct lp_config *c = p->cfg;
	size_t tls = key_index("http.tls.listen");
	size_t plain = key_index("http.listen");
	size_t rmin = key_index("database.reconnect_min");
	size_t rmax = key_index("database.reconnect_max");
	size_t lease = key_index("delivery.lease");
	size_t sched = key_index("delivery.schedule");
	const yaml_node_t *n;
	char buf[32], *got;

	webhooks_check_urls(p);
	lead_weights_check(p);
	lead_tags_check(p);
	if (c->delivery.lease_ms <= c->delivery.timeout_ms && !p->bad[lease]) {
		n = p->where[lease] != NULL
			? p->where[lease]
			: p->where[key_index("delivery.timeout")];
		format_duration(c->delivery.timeout_ms, buf, sizeof(buf));
		perr(p, n != NULL ? &n->start_mark : NULL,
		     "delivery.lease: expected a duration longer than "
		     "delivery.timeout (%s): a claimed delivery must outlive "
		     "its request",
		     buf);
	}
	if (c->delivery.nschedule == 0 && !p->bad[sched]) {
		n = p->where[sched];
		perr(p, n != NULL ? &n->start_mark : NULL,
		     "delivery.schedule: expected at least one attempt, such "
		     "as [0s, 5s, 5m]");
	}

	if (c->http.ntls_listen > 0) {
		const yaml_mark_t *m =
		    p->where[tls] != NULL ? &p->where[tls]->start_mark : NULL;

		if (c->http.tls_cert_file == NULL || !*c->http.tls_cert_file)
			perr(p, m,
			     "http.tls.listen: HTTPS listeners need "
			     "http.tls.cert_file to be set");
		if (c->http.tls_key_file == NULL || !*c->http.tls_key_file)
			perr(p, m,
			     "http.tls.listen: HTTPS listeners need "
			     "http.tls.key_file to be set");
	}

	if (c->http.nlisten == 0 && c->http.ntls_listen == 0 && !p->bad[tls] &&
	    (n = p->where[plain]) != NULL) {
		got = ynode_describe(n);
		perr(p, &n->start_mark,
		     "http.listen: expected at least one address when "
		     "http.tls.listen is empty, got %s",
		     got);
		free(got);
	}

	if (c->database.reconnect_max_ms < c->database.reconnect_min_ms &&
	    !p->bad[rmin] && !p->bad[rmax]) {
		if ((n = p->where[rmax]) != NULL) {
			format_duration(c->database.reconnect_min_ms, buf,
					sizeof(buf));
			got = ynode_describe(n);
			perr(p, &n->start_mark,
			     "database.reconnect_max: expected a duration no "
			     "shorter than database.reconnect_min (%s), got %s",
			     buf, got);
		} else {
			n = p->where[rmin];
			format_duration(c->database.reconnect_max_ms, buf,
					sizeof(buf));
			got = n != NULL ? ynode_describe(n) : xstrdup("?");
			perr(p, n != NULL ? &n->start_mark : NULL,
			     "database.reconnect_min: expected a duration no "
			     "longer than database.reconnect_max (%s), got %s",
			     buf, got);
		}
		free(got);
	}
}

static void
syntax_error(struct cfg_parse *p, const yaml_parser_t *parser, const char *text,
	     size_t len)
{
	ynode_syntax_error(p->errs, p->name, parser, text, len);
	p->nerrs++;
}

struct lp_config *
config_parse(const char *name, const char *text, size_t len,
	     struct strlist *errs)
{
	struct cfg_parse p = {.name = name, .errs = errs};
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root, *more;
	char *got;

	p.cfg = config_new(name);
	if (!yaml_parser_initialize(&parser))
		fatal("config: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		syntax_error(&p, &parser, text, len);
		goto out;
	}
	p.doc = &doc;
	/* No root: an empty file, or only comments.  All defaults. */
	if ((root = yaml_document_get_root_node(&doc)) != NULL) {
		if (root->type == YAML_MAPPING_NODE) {
			walk_mapping(&p, root, NULL);
		} else if (!ynode_is_null(root)) {
			got = ynode_describe(root);
			perr(&p, &root->start_mark,
			     "expected a mapping of settings at the top "
			     "level, got %s",
			     got);
			free(got);
		}
		if (!yaml_parser_load(&parser, &extra)) {
			syntax_error(&p, &parser, text, len);
		} else {
			if ((more = yaml_document_get_root_node(&extra)) !=
			    NULL)
				perr(&p, &more->start_mark,
				     "a second YAML document: the file must "
				     "hold one");
			yaml_document_delete(&extra);
		}
	}
	config_check(&p);
	webhooks_free(p.rejected, p.nrejected);
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&parser);
	if (p.nerrs > 0) {
		config_free(p.cfg);
		return NULL;
	}
	return p.cfg;
}

struct lp_config *
config_load(const char *path, struct strlist *errs)
{
	struct lp_config *cfg;
	const char *url;
	char *text;
	size_t len;

	if (read_file_max(path, CONFIG_MAX_BYTES, &text, &len) != 0) {
		strlist_addf(errs, "%s: cannot read: %s", path,
			     strerror(errno));
		return NULL;
	}
	cfg = config_parse(path, text, len, errs);
	free(text);
	if (cfg == NULL)
		return NULL;

	/* Keeps the password out of a file others may read. */
	if ((url = getenv("LINKPULSE_DATABASE_URL")) != NULL && *url != '\0') {
		free(cfg->database.url);
		cfg->database.url = xstrdup(url);
	}
	return cfg;
}

void
config_keep_restart_only(const struct lp_config *old, struct lp_config *new,
			 struct strlist *notes)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (!k->restart_only || value_equal(k, old, new))
			continue;
		strlist_addf(notes,
			     "%s changed; a restart is needed to apply it",
			     k->name);
		value_copy(k, new, old);
	}
}
