/*
 * test_config.c - unit tests of config.c: defaults, every value type,
 * error messages and their file:line:column, the checks across keys, the
 * environment override, the shipped example and what a reload keeps.
 */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "ut.h"

static struct lp_config *
parse(const char *text, struct strlist *errs)
{
	return config_parse("t.yaml", text, strlen(text), errs);
}

/* Parses text that must fail with exactly one error, and returns it. */
static char *
one_error(const char *text)
{
	struct strlist errs = {0};
	struct lp_config *cfg = parse(text, &errs);
	char *e = NULL;

	CHECK(cfg == NULL);
	CHECK(errs.n == 1);
	for (size_t i = 0; errs.n != 1 && i < errs.n; i++)
		fprintf(stderr, "  error: %s\n", errs.v[i]);
	if (errs.n > 0)
		e = xstrdup(errs.v[0]);
	config_free(cfg);
	strlist_free(&errs);
	return e != NULL ? e : xstrdup("(no error)");
}

static void
check_error(const char *text, const char *want)
{
	char *e = one_error(text);

	CHECK_STR(e, want);
	free(e);
}

/* A file that must load; errors are printed to explain a failure. */
static struct lp_config *
parse_ok(const char *text)
{
	struct strlist errs = {0};
	struct lp_config *cfg = parse(text, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  unexpected error: %s\n", errs.v[i]);
	CHECK(cfg != NULL);
	CHECK(errs.n == 0);
	strlist_free(&errs);
	return cfg;
}

static void
check_defaults(const struct lp_config *c)
{
	CHECK(c->http.nlisten == 1);
	if (c->http.nlisten == 1) {
		CHECK_STR(c->http.listen[0].host, "127.0.0.1");
		CHECK(c->http.listen[0].port == 8080);
	}
	CHECK(c->http.ntls_listen == 0);
	CHECK(c->http.tls_listen == NULL);
	CHECK(c->http.tls_cert_file == NULL);
	CHECK(c->http.tls_key_file == NULL);
	CHECK(c->http.max_header_size == 16 * 1024);
	CHECK(c->http.max_body_size == 10 * 1024 * 1024);
	CHECK(c->http.request_timeout_ms == 30000);
	CHECK_STR(c->database.url, "postgresql:///linkpulse");
	CHECK(c->database.pool_size == 8);
	CHECK(c->database.statement_timeout_ms == 30000);
	CHECK(c->database.connect_timeout_ms == 10000);
	CHECK(c->database.reconnect_min_ms == 250);
	CHECK(c->database.reconnect_max_ms == 30000);
	CHECK(c->database.startup_timeout_ms == 60000);
	CHECK(c->database.auto_migrate == false);
	CHECK(c->log.level == LP_LOG_INFO);
	CHECK(c->log.format == LP_LOG_TEXT);
	CHECK(c->shutdown.grace_ms == 10000);
	CHECK(c->delivery.timeout_ms == 15000);
	CHECK(c->delivery.nschedule == 10);
	if (c->delivery.nschedule == 10) {
		CHECK(c->delivery.schedule_ms[0] == 0);
		CHECK(c->delivery.schedule_ms[1] == 5000);
		CHECK(c->delivery.schedule_ms[9] == 24 * 3600 * 1000LL);
	}
	CHECK(c->delivery.jitter_percent == 20);
	CHECK(c->delivery.lease_ms == 60000);
	CHECK(c->delivery.nallow_networks == 0);
	CHECK(c->delivery.require_https == false);
	CHECK(c->delivery.disable_after_ms == 5 * 86400 * 1000LL);
	CHECK(c->delivery.secret_overlap_ms == 86400 * 1000LL);
	CHECK(c->retention.deliveries_ms == 30 * 86400 * 1000LL);
	CHECK(c->lead_scoring.enabled == true);
	CHECK(c->lead_scoring.output == LP_LEAD_WEIGHTED_SUM);
	CHECK(c->lead_scoring.qualify_threshold == 80);
	CHECK(c->lead_scoring.weights.engagement_level == 30);
	CHECK(c->lead_scoring.weights.recurring_interest == 20);
	CHECK(c->lead_scoring.weights.recurring_scans == 15);
	CHECK(c->lead_scoring.weights.profile_fit == 20);
	CHECK(c->lead_scoring.weights.brand_supportiveness == 10);
	CHECK(c->lead_scoring.weights.technological_aptitude == 5);
	CHECK(c->lead_scoring.points.interaction == 10);
	CHECK(c->lead_scoring.points.form_submission == 30);
	CHECK(c->lead_scoring.points.conversion == 50);
	CHECK(c->lead_scoring.recency_half_life_ms == 14 * 86400 * 1000LL);
	CHECK(c->lead_scoring.ntag_points == 0);
	CHECK(c->lead_scoring.logistic.midpoint == 50);
	CHECK(c->lead_scoring.logistic.steepness == 0.1);
	CHECK(c->rules.npaths == 0);
}

static void
test_defaults_empty_file(void)
{
	struct lp_config *cfg = parse_ok("");

	if (cfg != NULL) {
		check_defaults(cfg);
		CHECK_STR(cfg->path, "t.yaml");
	}
	config_free(cfg);
}

static void
test_defaults_comments_only(void)
{
	struct lp_config *cfg = parse_ok("# nothing here\n\n   # at all\n");

	if (cfg != NULL)
		check_defaults(cfg);
	config_free(cfg);

	cfg = parse_ok("---\n");
	if (cfg != NULL)
		check_defaults(cfg);
	config_free(cfg);

	/* An empty section is no change either. */
	cfg = parse_ok("http:\ndatabase: ~\n");
	if (cfg != NULL)
		check_defaults(cfg);
	config_free(cfg);
}

static void
test_every_key_set(void)
{
	struct lp_config *c = parse_ok("http:\n"
				       "  listen: ['10.0.0.1:80', ':81']\n"
				       "  tls:\n"
				       "    listen: '[::]:443'\n"
				       "    cert_file: /etc/lp/cert.pem\n"
				       "    key_file: /etc/lp/key.pem\n"
				       "  max_header_size: 32KiB\n"
				       "  max_body_size: 1MB\n"
				       "  request_timeout: 1m30s\n"
				       "database:\n"
				       "  url: \"postgresql://u@db/lp\"\n"
				       "  pool_size: 256\n"
				       "  statement_timeout: 0\n"
				       "  connect_timeout: 5s\n"
				       "  reconnect_min: 100ms\n"
				       "  reconnect_max: 2m\n"
				       "  startup_timeout: 2h\n"
				       "  auto_migrate: yes\n"
				       "log:\n"
				       "  level: debug\n"
				       "  format: json\n"
				       "shutdown:\n"
				       "  grace: 0\n");

	if (c == NULL)
		return;
	CHECK(c->http.nlisten == 2);
	CHECK(c->http.ntls_listen == 1);
	if (c->http.nlisten == 2 && c->http.ntls_listen == 1) {
		CHECK_STR(c->http.listen[0].host, "10.0.0.1");
		CHECK(c->http.listen[0].port == 80);
		CHECK_STR(c->http.listen[1].host, "");
		CHECK(c->http.listen[1].port == 81);
		CHECK_STR(c->http.tls_listen[0].host, "::");
		CHECK(c->http.tls_listen[0].port == 443);
	}
	CHECK_STR(c->http.tls_cert_file, "/etc/lp/cert.pem");
	CHECK_STR(c->http.tls_key_file, "/etc/lp/key.pem");
	CHECK(c->http.max_header_size == 32 * 1024);
	CHECK(c->http.max_body_size == 1000000);
	CHECK(c->http.request_timeout_ms == 90000);
	CHECK_STR(c->database.url, "postgresql://u@db/lp");
	CHECK(c->database.pool_size == 256);
	CHECK(c->database.statement_timeout_ms == 0);
	CHECK(c->database.connect_timeout_ms == 5000);
	CHECK(c->database.reconnect_min_ms == 100);
	CHECK(c->database.reconnect_max_ms == 120000);
	CHECK(c->database.startup_timeout_ms == 7200000);
	CHECK(c->database.auto_migrate == true);
	CHECK(c->log.level == LP_LOG_DEBUG);
	CHECK(c->log.format == LP_LOG_JSON);
	CHECK(c->shutdown.grace_ms == 0);
	config_free(c);
}

static void
test_durations(void)
{
	struct lp_config *c = parse_ok("database:\n"
				       "  connect_timeout: 1h30m\n"
				       "  startup_timeout: 7d\n"
				       "  statement_timeout: 250ms\n");

	if (c != NULL) {
		CHECK(c->database.connect_timeout_ms == 5400000);
		CHECK(c->database.startup_timeout_ms == 7LL * 86400 * 1000);
		CHECK(c->database.statement_timeout_ms == 250);
	}
	config_free(c);

	check_error("shutdown:\n  grace: 10 seconds\n",
		    "t.yaml:2:10: shutdown.grace: expected a duration such as "
		    "250ms, 30s or 1h30m, got '10 seconds'");
	check_error("shutdown:\n  grace: -1s\n",
		    "t.yaml:2:10: shutdown.grace: expected a duration such as "
		    "250ms, 30s or 1h30m, got '-1s'");
	/* request_timeout must be above zero. */
	check_error("http:\n  request_timeout: 0\n",
		    "t.yaml:2:20: http.request_timeout: expected a duration "
		    "greater than 0 such as 250ms, 30s or 1h30m, got '0'");
}

static void
test_sizes(void)
{
	struct lp_config *c = parse_ok("http:\n"
				       "  max_header_size: 1024\n"
				       "  max_body_size: 2GiB\n");

	if (c != NULL) {
		CHECK(c->http.max_header_size == 1024);
		CHECK(c->http.max_body_size == 2ULL << 30);
	}
	config_free(c);

	check_error("http:\n  max_header_size: 1023B\n",
		    "t.yaml:2:20: http.max_header_size: expected a size of at "
		    "least 1KiB such as 64KiB or 1MiB, got '1023B'");
}

static void
test_error_position(void)
{
	/* The value's own line and column, counted from 1. */
	check_error("# linkpulse\n"
		    "\n"
		    "http:\n"
		    "  listen: 127.0.0.1:8080\n"
		    "\n"
		    "\n"
		    "  max_body_size: 10 potatoes\n",
		    "t.yaml:7:18: http.max_body_size: expected a size such as "
		    "64KiB or 1MiB, got '10 potatoes'");
	check_error("http: {max_body_size: lots}\n",
		    "t.yaml:1:23: http.max_body_size: expected a size such as "
		    "64KiB or 1MiB, got 'lots'");
}

static void
test_int_range(void)
{
	struct lp_config *c = parse_ok("database:\n  pool_size: 1\n");

	if (c != NULL)
		CHECK(c->database.pool_size == 1);
	config_free(c);

	check_error("database:\n  pool_size: 0\n",
		    "t.yaml:2:14: database.pool_size: expected an integer from "
		    "1 to 256, got '0'");
	check_error("database:\n  pool_size: 257\n",
		    "t.yaml:2:14: database.pool_size: expected an integer from "
		    "1 to 256, got '257'");
	check_error("database:\n  pool_size: 8x\n",
		    "t.yaml:2:14: database.pool_size: expected an integer from "
		    "1 to 256, got '8x'");
	check_error("database:\n  pool_size: 99999999999999999999\n",
		    "t.yaml:2:14: database.pool_size: expected an integer from "
		    "1 to 256, got '99999999999999999999'");
}

static void
test_bool_spellings(void)
{
	static const struct {
		const char *text;
		bool want;
	} cases[] = {
	    {"true", true},   {"yes", true}, {"on", true},
	    {"false", false}, {"no", false}, {"off", false},
	};

	for (size_t i = 0; i < nitems(cases); i++) {
		char *text =
		    xprintf("database:\n  auto_migrate: %s\n", cases[i].text);
		struct lp_config *c = parse_ok(text);

		if (c != NULL)
			CHECK(c->database.auto_migrate == cases[i].want);
		config_free(c);
		free(text);
	}
	check_error("database:\n  auto_migrate: maybe\n",
		    "t.yaml:2:17: database.auto_migrate: expected true, false, "
		    "yes, no, on or off, got 'maybe'");
}

static void
test_enums(void)
{
	struct lp_config *c = parse_ok("log: {level: error, format: text}\n");

	if (c != NULL) {
		CHECK(c->log.level == LP_LOG_ERROR);
		CHECK(c->log.format == LP_LOG_TEXT);
	}
	config_free(c);

	check_error(
	    "log:\n  level: verbose\n",
	    "t.yaml:2:10: log.level: expected one of error, warn, info, "
	    "debug, got 'verbose'");
	check_error("log:\n  format: xml\n",
		    "t.yaml:2:11: log.format: expected one of text, json, got "
		    "'xml'");
}

static void
test_unknown_key_suggestion(void)
{
	check_error("http:\n  max_bodysize: 1MiB\n",
		    "t.yaml:2:3: unknown key 'http.max_bodysize' (did you mean "
		    "'http.max_body_size'?)");
	/* A misspelt section is reported once, not for each key inside. */
	check_error("databse:\n  url: x\n  pool: 3\n",
		    "t.yaml:1:1: unknown key 'databse' (did you mean "
		    "'database'?)");
	/* Two edits away from a short name, three from a long one. */
	check_error("log:\n  lvl: info\n",
		    "t.yaml:2:3: unknown key 'log.lvl' (did you mean "
		    "'log.level'?)");
	check_error("database:\n  reconectmn: 1s\n",
		    "t.yaml:2:3: unknown key 'database.reconectmn' (did you "
		    "mean 'database.reconnect_min'?)");
	check_error("http:\n  tls:\n    certfile: a.pem\n",
		    "t.yaml:3:5: unknown key 'http.tls.certfile' (did you mean "
		    "'http.tls.cert_file'?)");
}

static void
test_unknown_key_no_suggestion(void)
{
	check_error("http:\n  frobnicate: 1\n",
		    "t.yaml:2:3: unknown key 'http.frobnicate'");
	check_error("metrics: true\n", "t.yaml:1:1: unknown key 'metrics'");
	/* Three edits from "level" is too many for a four-letter name. */
	check_error("log:\n  lvlx: info\n",
		    "t.yaml:2:3: unknown key 'log.lvlx'");
	/* Only siblings are candidates: "url" lives in database, not http. */
	check_error("http:\n  url: x\n", "t.yaml:2:3: unknown key 'http.url'");
}

static void
test_dotted_key_rejected(void)
{
	check_error("http.listen: ':80'\n",
		    "t.yaml:1:1: unknown key 'http.listen' (write sections as "
		    "nested mappings, not dotted names)");
}

static void
test_multiple_errors(void)
{
	struct strlist errs = {0};
	struct lp_config *c = parse("http:\n"
				    "  max_body_size: big\n"
				    "  listn: ':80'\n"
				    "database:\n"
				    "  pool_size: none\n"
				    "log:\n"
				    "  level: loud\n",
				    &errs);

	CHECK(c == NULL);
	CHECK(errs.n == 4);
	if (errs.n == 4) {
		CHECK(strncmp(errs.v[0],
			      "t.yaml:2:18: http.max_body_size:", 32) == 0);
		CHECK_STR(errs.v[1], "t.yaml:3:3: unknown key 'http.listn' "
				     "(did you mean 'http.listen'?)");
		CHECK(strncmp(errs.v[2],
			      "t.yaml:5:14: database.pool_size:", 32) == 0);
		CHECK(strncmp(errs.v[3], "t.yaml:7:10: log.level:", 23) == 0);
	}
	config_free(c);
	strlist_free(&errs);
}

static void
test_syntax_errors(void)
{
	check_error(
	    "http:\n  listen: [a\n",
	    "t.yaml:3:1: did not find expected ',' or ']' (while "
	    "parsing a flow sequence that starts at line 2, column 11)");
	check_error("http:\n  listen: x\n bad: 1\n",
		    "t.yaml:3:2: did not find expected key (while parsing a "
		    "block mapping that starts at line 1, column 1)");
	check_error("http:\n\tlisten: ':80'\n",
		    "t.yaml:2:1: found character that cannot start any token "
		    "(indent with spaces, not tabs)");
	check_error("log:\n  level: \xff\n",
		    "t.yaml:2:10: invalid leading UTF-8 octet (byte 0xff)");
	check_error("---\nlog: {}\n---\nlog: {}\n",
		    "t.yaml:4:1: a second YAML document: the file must hold "
		    "one");
}

static void
test_wrong_kinds(void)
{
	check_error("http:\n  max_body_size:\n    a: 1\n",
		    "t.yaml:3:5: http.max_body_size: expected a size such as "
		    "64KiB or 1MiB, got a mapping");
	check_error("database:\n  auto_migrate: [yes]\n",
		    "t.yaml:2:17: database.auto_migrate: expected true, false, "
		    "yes, no, on or off, got a list");
	check_error("http: 8080\n",
		    "t.yaml:1:7: http: expected a mapping of settings, got "
		    "'8080'");
	check_error("log:\n  level:\n",
		    "t.yaml:2:9: log.level: expected one of error, warn, info, "
		    "debug, got an empty value");
	check_error("http:\n  listen: {a: 1}\n",
		    "t.yaml:2:11: http.listen: expected an address such as "
		    "127.0.0.1:8080, [::1]:8080 or :8080, or a list of them, "
		    "got a mapping");
	check_error("http:\n  listen: [[':80']]\n",
		    "t.yaml:2:12: http.listen: expected an address such as "
		    "127.0.0.1:8080, [::1]:8080 or :8080, got a list");
	check_error("? [a]\n: 1\n", "t.yaml:1:3: expected a key name, got a "
				    "list");
}

static void
test_top_level_not_mapping(void)
{
	check_error("- http\n- log\n",
		    "t.yaml:1:1: expected a mapping of settings at the top "
		    "level, got a list");
	check_error("just words\n",
		    "t.yaml:1:1: expected a mapping of settings at the top "
		    "level, got 'just words'");
}

static void
test_duplicate_keys(void)
{
	check_error("log:\n  level: info\n  level: debug\n",
		    "t.yaml:3:3: duplicate key 'log.level' (first at line 2)");
	check_error("log: {}\nhttp: {}\nlog: {}\n",
		    "t.yaml:3:1: duplicate key 'log' (first at line 1)");
}

static void
test_tls_needs_files(void)
{
	struct strlist errs = {0};
	struct lp_config *c = parse("http:\n"
				    "  tls:\n"
				    "    listen: ':8443'\n",
				    &errs);

	CHECK(c == NULL);
	CHECK(errs.n == 2);
	if (errs.n == 2) {
		CHECK_STR(errs.v[0], "t.yaml:3:13: http.tls.listen: HTTPS "
				     "listeners need http.tls.cert_file to be "
				     "set");
		CHECK_STR(errs.v[1], "t.yaml:3:13: http.tls.listen: HTTPS "
				     "listeners need http.tls.key_file to be "
				     "set");
	}
	strlist_free(&errs);

	check_error("http:\n"
		    "  tls:\n"
		    "    listen: [':8443']\n"
		    "    cert_file: c.pem\n",
		    "t.yaml:3:13: http.tls.listen: HTTPS listeners need "
		    "http.tls.key_file to be set");

	/* Files without listeners are harmless; both make a valid setup. */
	c = parse_ok("http:\n  tls:\n    cert_file: c.pem\n");
	config_free(c);
	c = parse_ok("http:\n"
		     "  listen: []\n"
		     "  tls:\n"
		     "    listen: ':8443'\n"
		     "    cert_file: c.pem\n"
		     "    key_file: k.pem\n");
	if (c != NULL) {
		CHECK(c->http.nlisten == 0);
		CHECK(c->http.ntls_listen == 1);
	}
	config_free(c);
}

static void
test_reconnect_order(void)
{
	check_error("database:\n  reconnect_min: 5s\n  reconnect_max: 1s\n",
		    "t.yaml:3:18: database.reconnect_max: expected a duration "
		    "no shorter than database.reconnect_min (5s), got '1s'");
	/* Against the default maximum, the minimum is the one to blame. */
	check_error("database:\n  reconnect_min: 1m\n",
		    "t.yaml:2:18: database.reconnect_min: expected a duration "
		    "no longer than database.reconnect_max (30s), got '1m'");

	struct lp_config *c =
	    parse_ok("database:\n  reconnect_min: 2s\n  reconnect_max: 2s\n");

	if (c != NULL)
		CHECK(c->database.reconnect_max_ms == 2000);
	config_free(c);
}

static void
test_listen_forms(void)
{
	struct lp_config *c = parse_ok("http:\n"
				       "  listen:\n"
				       "    - '[::1]:8080'\n"
				       "    - ':8081'\n"
				       "    - 0.0.0.0:0\n"
				       "    - localhost:65535\n"
				       "    - '[fe80::1%eth0]:80'\n");

	CHECK(c != NULL && c->http.nlisten == 5);
	if (c != NULL && c->http.nlisten == 5) {
		CHECK_STR(c->http.listen[0].host, "::1");
		CHECK(c->http.listen[0].port == 8080);
		CHECK_STR(c->http.listen[1].host, "");
		CHECK(c->http.listen[1].port == 8081);
		CHECK_STR(c->http.listen[2].host, "0.0.0.0");
		CHECK(c->http.listen[2].port == 0);
		CHECK_STR(c->http.listen[3].host, "localhost");
		CHECK(c->http.listen[3].port == 65535);
		CHECK_STR(c->http.listen[4].host, "fe80::1%eth0");
	}
	config_free(c);

	/* A single string stands for a list of one. */
	c = parse_ok("http:\n  listen: '[::]:9000'\n");
	CHECK(c != NULL && c->http.nlisten == 1);
	if (c != NULL && c->http.nlisten == 1) {
		CHECK_STR(c->http.listen[0].host, "::");
		CHECK(c->http.listen[0].port == 9000);
	}
	config_free(c);
}

static void
test_listen_bad(void)
{
	static const struct {
		const char *addr;
		const char *want;
	} cases[] = {
	    {"':65536'", "a port from 0 to 65535, got ':65536'"},
	    {"'1.2.3.4:'", "a port from 0 to 65535, got '1.2.3.4:'"},
	    {"'host:http'", "a port from 0 to 65535, got 'host:http'"},
	    {"'8080'", "an address such as 127.0.0.1:8080, [::1]:8080 or "
		       ":8080, got '8080'"},
	    {"'::1:8080'", "an address such as 127.0.0.1:8080, [::1]:8080 or "
			   ":8080, got '::1:8080'"},
	    {"'[::1]8080'", "an address such as 127.0.0.1:8080, [::1]:8080 "
			    "or :8080, got '[::1]8080'"},
	    {"'[zz]:80'", "an address such as 127.0.0.1:8080, [::1]:8080 or "
			  ":8080, got '[zz]:80'"},
	    {"'300.1.1.1:80'", "an address such as 127.0.0.1:8080, "
			       "[::1]:8080 or :8080, got '300.1.1.1:80'"},
	    {"'a b:80'", "an address such as 127.0.0.1:8080, [::1]:8080 or "
			 ":8080, got 'a b:80'"},
	};

	for (size_t i = 0; i < nitems(cases); i++) {
		char *text =
		    xprintf("http:\n  listen: [':80', %s]\n", cases[i].addr);
		char *want = xprintf("t.yaml:2:19: http.listen: expected %s",
				     cases[i].want);

		check_error(text, want);
		free(want);
		free(text);
	}
}

static void
test_listen_none_at_all(void)
{
	check_error("http:\n  listen: []\n",
		    "t.yaml:2:11: http.listen: expected at least one address "
		    "when http.tls.listen is empty, got an empty list");
}

static void
test_empty_value_means_default(void)
{
	struct lp_config *c = parse_ok("http:\n"
				       "  listen:\n"
				       "  tls:\n"
				       "    cert_file: ~\n"
				       "database:\n"
				       "  url:\n");

	if (c != NULL)
		check_defaults(c);
	config_free(c);

	/* Quoted, it is a value: an empty URL means libpq's defaults. */
	c = parse_ok("database:\n  url: ''\n");
	if (c != NULL)
		CHECK_STR(c->database.url, "");
	config_free(c);
}

static void
test_long_value_quoted_on_one_line(void)
{
	char *e = one_error("log:\n  level: \"de\\nbug\"\n");

	CHECK_STR(e, "t.yaml:2:10: log.level: expected one of error, warn, "
		     "info, debug, got 'de\\nbug'");
	free(e);

	e = one_error(
	    "log:\n  level: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaa\n");
	CHECK(strstr(e, "got 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			"aaaaaaaaaaaa'...") != NULL);
	CHECK(strchr(e, '\n') == NULL);
	free(e);
}

/* Writes text to a new temporary file and returns its name. */
static char *
temp_file(const char *text)
{
	const char *dir = getenv("TMPDIR");
	char *path = xprintf("%s/test_config.XXXXXX",
			     dir != NULL && *dir != '\0' ? dir : "/tmp");
	int fd = mkstemp(path);
	size_t len = strlen(text);

	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write(fd, text, len) == (ssize_t)len);
		close(fd);
	}
	return path;
}

static void
test_load_env_override(void)
{
	char *path = temp_file("database:\n  url: postgresql://file/db\n");
	struct strlist errs = {0};
	struct lp_config *c;

	setenv("LINKPULSE_DATABASE_URL", "postgresql://env/db", 1);
	c = config_load(path, &errs);
	CHECK(c != NULL && errs.n == 0);
	if (c != NULL) {
		CHECK_STR(c->database.url, "postgresql://env/db");
		CHECK_STR(c->path, path);
	}
	config_free(c);

	/* Set but empty: the file wins. */
	setenv("LINKPULSE_DATABASE_URL", "", 1);
	c = config_load(path, &errs);
	if (c != NULL)
		CHECK_STR(c->database.url, "postgresql://file/db");
	config_free(c);

	unsetenv("LINKPULSE_DATABASE_URL");
	c = config_load(path, &errs);
	CHECK(c != NULL && errs.n == 0);
	if (c != NULL)
		CHECK_STR(c->database.url, "postgresql://file/db");
	config_free(c);

	/* The variable does not hide errors in the file. */
	setenv("LINKPULSE_DATABASE_URL", "postgresql://env/db", 1);
	unlink(path);
	free(path);
	path = temp_file("database:\n  pool_size: lots\n");
	c = config_load(path, &errs);
	CHECK(c == NULL && errs.n == 1);
	unsetenv("LINKPULSE_DATABASE_URL");

	unlink(path);
	free(path);
	strlist_free(&errs);
}

static void
test_load_unreadable(void)
{
	struct strlist errs = {0};
	struct lp_config *c = config_load("/nonexistent/linkpulse.yaml", &errs);

	CHECK(c == NULL);
	CHECK(errs.n == 1);
	if (errs.n == 1)
		CHECK_STR(errs.v[0], "/nonexistent/linkpulse.yaml: cannot "
				     "read: No such file or directory");
	strlist_free(&errs);

	c = config_load("/", &errs);
	CHECK(c == NULL);
	CHECK(errs.n == 1);
	if (errs.n == 1)
		CHECK_STR(errs.v[0], "/: cannot read: Is a directory");
	strlist_free(&errs);
}

/* The shipped example must load as is and hold the defaults. */
static void
test_delivery_lists(void)
{
	struct lp_config *c = parse_ok("delivery:\n"
				       "  schedule: [0s, 200ms, 1s]\n"
				       "  allow_networks:\n"
				       "    - 127.0.0.1/32\n"
				       "    - '::1/128'\n");

	if (c != NULL) {
		CHECK(c->delivery.nschedule == 3);
		if (c->delivery.nschedule == 3)
			CHECK(c->delivery.schedule_ms[1] == 200);
		CHECK(c->delivery.nallow_networks == 2);
		if (c->delivery.nallow_networks == 2)
			CHECK_STR(c->delivery.allow_networks[1], "::1/128");
	}
	config_free(c);

	/* A scalar is a comma-separated list. */
	c = parse_ok("delivery:\n  schedule: 0s, 1s\n"
		     "  allow_networks: 10.0.0.0/8\n");
	if (c != NULL) {
		CHECK(c->delivery.nschedule == 2);
		CHECK(c->delivery.nallow_networks == 1);
	}
	config_free(c);

	/* Each bad item is named where it stands. */
	check_error(
	    "delivery:\n  allow_networks: [127.0.0.1/32, 10.0.0.0/33]\n",
	    "t.yaml:2:34: delivery.allow_networks: expected a network "
	    "such as 127.0.0.1/32, 10.1.0.0/16 or ::1/128, got "
	    "'10.0.0.0/33'");
	check_error("delivery:\n  schedule:\n    - 0s\n    - soon\n",
		    "t.yaml:4:7: delivery.schedule: expected a duration such "
		    "as 0s, 5s or 30m, got 'soon'");
	check_error("delivery:\n  schedule: []\n",
		    "t.yaml:2:13: delivery.schedule: expected at least one "
		    "attempt, such as [0s, 5s, 5m]");
	check_error("delivery:\n  timeout: 30s\n  lease: 20s\n",
		    "t.yaml:3:10: delivery.lease: expected a duration longer "
		    "than delivery.timeout (30s): a claimed delivery must "
		    "outlive its request");
}

/* rules.paths: patterns kept as written, reloadable. */
static void
test_rules_paths(void)
{
	struct lp_config *c = parse_ok("rules:\n"
				       "  paths: [rules.d/*.yaml, "
				       "/etc/lp/extra.yaml]\n");
	struct lp_config *d;
	struct strlist notes = {0};

	if (c != NULL) {
		CHECK(c->rules.npaths == 2);
		if (c->rules.npaths == 2) {
			CHECK_STR(c->rules.paths[0], "rules.d/*.yaml");
			CHECK_STR(c->rules.paths[1], "/etc/lp/extra.yaml");
		}
	}
	d = parse_ok("rules: {paths: a.yaml}\n");
	if (c != NULL && d != NULL) {
		config_keep_restart_only(c, d, &notes);
		CHECK(notes.n == 0);
		CHECK(d->rules.npaths == 1);
	}
	strlist_free(&notes);
	config_free(c);
	config_free(d);
	check_error("rules:\n  paths: ['']\n",
		    "t.yaml:2:11: rules.paths: expected a file name or a "
		    "glob pattern such as rules.d/*.yaml, got ''");
	check_error("rules:\n  path: x\n",
		    "t.yaml:2:3: unknown key 'rules.path' (did you mean "
		    "'rules.paths'?)");
}

static void
test_delivery_lists_reload(void)
{
	struct lp_config *old = parse_ok("delivery:\n  schedule: [0s, 1s]\n");
	struct lp_config *new = parse_ok("delivery:\n  schedule: [0s, 2s]\n"
					 "  max_connections: 10\n");
	struct strlist notes = {0};

	if (old != NULL && new != NULL) {
		config_keep_restart_only(old, new, &notes);
		/* The schedule reloads; max_connections waits for a restart. */
		CHECK(notes.n == 1);
		CHECK(new->delivery.schedule_ms[1] == 2000);
		CHECK(new->delivery.max_connections == 512);
	}
	strlist_free(&notes);
	config_free(old);
	config_free(new);
}

static void
test_webhooks(void)
{
	struct lp_config *c =
	    parse_ok("delivery:\n"
		     "  allow_networks: [127.0.0.1/32]\n"
		     "webhooks:\n"
		     "  - workspace: demo\n"
		     "    name: sales-crm\n"
		     "    url: http://127.0.0.1:9000/hook\n"
		     "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
		     "    event_types: [\"visitor.*\", scan.created]\n"
		     "    headers: {X-Team: sales}\n"
		     "    max_in_flight: 4\n"
		     "    operational: yes\n");

	if (c != NULL) {
		CHECK(c->nwebhooks == 1);
		if (c->nwebhooks == 1) {
			CHECK_STR(c->webhooks[0].name, "sales-crm");
			CHECK(c->webhooks[0].nevent_types == 2);
			CHECK(c->webhooks[0].nheaders == 1);
			CHECK(c->webhooks[0].max_in_flight == 4);
			CHECK(c->webhooks[0].operational);
		}
	}
	config_free(c);

	check_error("webhooks:\n"
		    "  - workspace: demo\n"
		    "    name: a\n"
		    "    url: https://example.com/\n"
		    "    secrte: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
		    "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
		    "t.yaml:5:5: webhooks: unknown field 'secrte' (did you "
		    "mean 'secret'?)");
	check_error("webhooks:\n"
		    "  - workspace: demo\n"
		    "    name: a\n"
		    "    url: https://example.com/\n"
		    "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
		    "    event_types: [scan.deleted]\n",
		    "t.yaml:6:19: webhooks: event_types: unknown event type "
		    "'scan.deleted' (known: scan.created, visitor.identified, "
		    "visitor.qualified, alert.firing, alert.resolved, "
		    "webhook.test, endpoint.disabled, "
		    "message.attempt.exhausted, "
		    "or a prefix such as \"scan.*\", or \"*\")");
	/* Loopback is refused unless delivery.allow_networks opens it. */
	check_error("webhooks:\n"
		    "  - workspace: demo\n"
		    "    name: a\n"
		    "    url: http://127.0.0.1:9000/\n"
		    "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
		    "t.yaml:4:10: webhooks: url: 'http://127.0.0.1:9000/' "
		    "points at 127.0.0.1 (loopback), which "
		    "delivery.allow_networks does not allow");
	check_error("webhooks:\n"
		    "  - workspace: demo\n"
		    "    name: a\n"
		    "    url: https://example.com/\n",
		    "t.yaml:2:5: webhooks: endpoint without secret (each needs "
		    "workspace, name, url and secret)");
	check_error(
	    "webhooks:\n"
	    "  - workspace: demo\n"
	    "    name: a\n"
	    "    url: https://example.com/\n"
	    "    secret: whsec_short\n",
	    "t.yaml:5:13: webhooks: secret: expected whsec_ followed by "
	    "the base64 of 24 to 64 random bytes");
	check_error(
	    "webhooks:\n"
	    "  - workspace: demo\n"
	    "    name: a\n"
	    "    url: https://example.com/\n"
	    "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
	    "    headers: {Content-Type: text/plain}\n",
	    "t.yaml:6:15: webhooks: headers: Content-Type: is set by "
	    "linkpulse itself and cannot be replaced (reserved: "
	    "Content-Type, Content-Length, Host, User-Agent, Connection, "
	    "Transfer-Encoding, webhook-*)");
	check_error(
	    "webhooks: yes\n",
	    "t.yaml:1:11: webhooks: expected a list of endpoints, each "
	    "a mapping with workspace, name, url and secret, got 'yes'");
}

static void
test_lead_scoring(void)
{
	struct lp_config *c = parse_ok("lead_scoring:\n"
				       "  enabled: no\n"
				       "  output: logistic\n"
				       "  qualify_threshold: 0\n"
				       "  weights:\n"
				       "    engagement_level: 0\n"
				       "    recurring_interest: 1\n"
				       "    recurring_scans: 2\n"
				       "    profile_fit: 3\n"
				       "    brand_supportiveness: 4\n"
				       "    technological_aptitude: 100\n"
				       "  points:\n"
				       "    interaction: 0\n"
				       "    form_submission: 100\n"
				       "    conversion: 7\n"
				       "  recency_half_life: 36h\n"
				       "  tag_points: [pricing=40, 'a=b=0', "
				       "'Demo Day=100']\n"
				       "  logistic:\n"
				       "    midpoint: 65\n"
				       "    steepness: 2.5e-1\n");
	size_t len;
	int points;

	if (c != NULL) {
		CHECK(c->lead_scoring.enabled == false);
		CHECK(c->lead_scoring.output == LP_LEAD_LOGISTIC);
		CHECK(c->lead_scoring.qualify_threshold == 0);
		CHECK(c->lead_scoring.weights.engagement_level == 0);
		CHECK(c->lead_scoring.weights.recurring_interest == 1);
		CHECK(c->lead_scoring.weights.recurring_scans == 2);
		CHECK(c->lead_scoring.weights.profile_fit == 3);
		CHECK(c->lead_scoring.weights.brand_supportiveness == 4);
		CHECK(c->lead_scoring.weights.technological_aptitude == 100);
		CHECK(c->lead_scoring.points.interaction == 0);
		CHECK(c->lead_scoring.points.form_submission == 100);
		CHECK(c->lead_scoring.points.conversion == 7);
		CHECK(c->lead_scoring.recency_half_life_ms == 36 * 3600000LL);
		CHECK(c->lead_scoring.ntag_points == 3);
		if (c->lead_scoring.ntag_points == 3)
			CHECK_STR(c->lead_scoring.tag_points[2],
				  "Demo Day=100");
		CHECK(c->lead_scoring.logistic.midpoint == 65);
		CHECK(c->lead_scoring.logistic.steepness == 0.25);
	}
	config_free(c);

	/* The name is everything before the last '='. */
	CHECK(config_tag_points_parse("a=b=7", &len, &points));
	CHECK(len == 3 && points == 7);
	CHECK(!config_tag_points_valid("=5"));
	CHECK(!config_tag_points_valid("  =5"));
	CHECK(!config_tag_points_valid("pricing"));
	CHECK(!config_tag_points_valid("pricing="));
	CHECK(!config_tag_points_valid("pricing=-1"));
	CHECK(!config_tag_points_valid("pricing=4x"));

	/* A comma-separated scalar works too; each bad item is named. */
	c = parse_ok("lead_scoring:\n  tag_points: pricing=40, demo=30\n");
	if (c != NULL)
		CHECK(c->lead_scoring.ntag_points == 2);
	config_free(c);
	check_error("lead_scoring:\n"
		    "  tag_points:\n"
		    "    - pricing=40\n"
		    "    - demo=101\n",
		    "t.yaml:4:7: lead_scoring.tag_points: expected a tag and "
		    "its points such as pricing=40 (points from 0 to 100), got "
		    "'demo=101'");
	check_error("lead_scoring:\n  tag_points: [pricing=40, =3]\n",
		    "t.yaml:2:28: lead_scoring.tag_points: expected a tag and "
		    "its points such as pricing=40 (points from 0 to 100), got "
		    "'=3'");
	check_error("lead_scoring:\n  tag_points: [demo=1, pricing=4, "
		    "Demo=2]\n",
		    "t.yaml:2:35: lead_scoring.tag_points: 'Demo=2' gives "
		    "points to the tag of 'demo=1' again (tags match whatever "
		    "their case)");

	check_error("lead_scoring:\n  output: linear\n",
		    "t.yaml:2:11: lead_scoring.output: expected one of "
		    "weighted_sum, logistic, got 'linear'");
	check_error("lead_scoring:\n  qualify_threshold: 101\n",
		    "t.yaml:2:22: lead_scoring.qualify_threshold: expected an "
		    "integer from 0 to 100, got '101'");
	check_error("lead_scoring:\n  recency_half_life: 0\n",
		    "t.yaml:2:22: lead_scoring.recency_half_life: expected a "
		    "duration greater than 0 such as 250ms, 30s or 1h30m, got "
		    "'0'");
	check_error("lead_scoring:\n  points:\n    conversion: 200\n",
		    "t.yaml:3:17: lead_scoring.points.conversion: expected an "
		    "integer from 0 to 100, got '200'");
	check_error("lead_scoring:\n  weights:\n    profile_fitt: 3\n",
		    "t.yaml:3:5: unknown key 'lead_scoring.weights."
		    "profile_fitt' (did you mean "
		    "'lead_scoring.weights.profile_fit'?)");
	static const char *const steep[] = {"11",     "-0.1",  "inf", "nan",
					    "0x1p-3", "0.1.2", "1e",  ""};
	for (size_t i = 0; i < nitems(steep); i++) {
		char *text = xprintf("lead_scoring:\n  logistic:\n"
				     "    steepness: '%s'\n",
				     steep[i]);
		char *want = xprintf(
		    "t.yaml:3:16: lead_scoring.logistic.steepness: expected a "
		    "number from 0 to 10, such as 0.25, got '%s'",
		    steep[i]);

		check_error(text, want);
		free(want);
		free(text);
	}

	/* Every weight at 0 leaves nothing to weigh. */
	check_error("lead_scoring:\n"
		    "  weights:\n"
		    "    engagement_level: 0\n"
		    "    recurring_interest: 0\n"
		    "    recurring_scans: 0\n"
		    "    profile_fit: 0\n"
		    "    brand_supportiveness: 0\n"
		    "    technological_aptitude: 0\n",
		    "t.yaml:8:29: lead_scoring.weights: expected at least one "
		    "weight above 0");
}

static void
test_lead_scoring_reload(void)
{
	struct lp_config *old = parse_ok("");
	struct lp_config *new =
	    parse_ok("lead_scoring:\n  weights: {profile_fit: 90}\n"
		     "  tag_points: [demo=5]\n"
		     "  logistic: {steepness: 0.5}\n");
	struct strlist notes = {0};

	if (old != NULL && new != NULL) {
		/* Every lead_scoring key reloads. */
		config_keep_restart_only(old, new, &notes);
		CHECK(notes.n == 0);
		CHECK(new->lead_scoring.weights.profile_fit == 90);
		CHECK(new->lead_scoring.ntag_points == 1);
		CHECK(new->lead_scoring.logistic.steepness == 0.5);
	}
	strlist_free(&notes);
	config_free(old);
	config_free(new);
}

static void
test_example_file(void)
{
	const char *srcdir = getenv("srcdir");
	char *path =
	    xprintf("%s/conf/linkpulse.yaml", srcdir != NULL ? srcdir : ".");
	struct strlist errs = {0};
	struct lp_config *c;

	unsetenv("LINKPULSE_DATABASE_URL");
	c = config_load(path, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  error: %s\n", errs.v[i]);
	CHECK(c != NULL);
	CHECK(errs.n == 0);
	if (c != NULL)
		check_defaults(c);
	config_free(c);
	strlist_free(&errs);
	free(path);
}

static void
test_keep_restart_only(void)
{
	struct lp_config *old = parse_ok("http:\n"
					 "  listen: [':80', ':81']\n"
					 "database:\n"
					 "  pool_size: 4\n");
	struct lp_config *new = parse_ok("http:\n"
					 "  listen: [':80', ':82']\n"
					 "  max_body_size: 1KiB\n"
					 "database:\n"
					 "  pool_size: 16\n"
					 "  url: postgresql://other/db\n"
					 "log:\n"
					 "  level: debug\n");
	struct strlist notes = {0};

	if (old == NULL || new == NULL)
		goto out;
	config_keep_restart_only(old, new, &notes);
	CHECK(notes.n == 3);
	if (notes.n == 3) {
		CHECK_STR(
		    notes.v[0],
		    "http.listen changed; a restart is needed to apply it");
		CHECK_STR(notes.v[1], "database.url changed; a restart is "
				      "needed to apply it");
		CHECK_STR(notes.v[2], "database.pool_size changed; a restart "
				      "is needed to apply it");
	}
	/* Restart-only keys keep their old values ... */
	CHECK(new->http.nlisten == 2);
	if (new->http.nlisten == 2)
		CHECK(new->http.listen[1].port == 81);
	CHECK(new->database.pool_size == 4);
	CHECK_STR(new->database.url, "postgresql:///linkpulse");
	/* ... and the others take the new ones. */
	CHECK(new->http.max_body_size == 1024);
	CHECK(new->log.level == LP_LOG_DEBUG);
	/* The copy is deep: the old configuration can go first. */
	config_free(old);
	old = NULL;
	if (new->http.nlisten == 2)
		CHECK_STR(new->http.listen[0].host, "");
out:
	config_free(old);
	config_free(new);
	strlist_free(&notes);
}

static void
test_keep_restart_only_unchanged(void)
{
	const char *text = "http:\n"
			   "  listen: ['[::1]:80']\n"
			   "  tls:\n"
			   "    listen: ':443'\n"
			   "    cert_file: c.pem\n"
			   "    key_file: k.pem\n";
	struct lp_config *a = parse_ok(text), *b = parse_ok(text);
	struct lp_config *c = parse_ok("http:\n"
				       "  listen: ['[::1]:80']\n"
				       "  tls:\n"
				       "    listen: ':443'\n"
				       "    cert_file: other.pem\n"
				       "    key_file: k.pem\n");
	struct strlist notes = {0};

	if (a != NULL && b != NULL && c != NULL) {
		config_keep_restart_only(a, b, &notes);
		CHECK(notes.n == 0);
		/* Certificates are reloadable: no note, new value stays. */
		config_keep_restart_only(a, c, &notes);
		CHECK(notes.n == 0);
		CHECK_STR(c->http.tls_cert_file, "other.pem");
	}
	config_free(a);
	config_free(b);
	config_free(c);
	strlist_free(&notes);
}

UT_MAIN("config", UT(test_defaults_empty_file), UT(test_defaults_comments_only),
	UT(test_every_key_set), UT(test_durations), UT(test_sizes),
	UT(test_error_position), UT(test_int_range), UT(test_bool_spellings),
	UT(test_enums), UT(test_unknown_key_suggestion),
	UT(test_unknown_key_no_suggestion), UT(test_dotted_key_rejected),
	UT(test_multiple_errors), UT(test_syntax_errors), UT(test_wrong_kinds),
	UT(test_top_level_not_mapping), UT(test_duplicate_keys),
	UT(test_tls_needs_files), UT(test_reconnect_order),
	UT(test_listen_forms), UT(test_listen_bad), UT(test_listen_none_at_all),
	UT(test_empty_value_means_default),
	UT(test_long_value_quoted_on_one_line), UT(test_load_env_override),
	UT(test_load_unreadable), UT(test_example_file),
	UT(test_keep_restart_only), UT(test_keep_restart_only_unchanged),
	UT(test_delivery_lists), UT(test_delivery_lists_reload),
	UT(test_webhooks), UT(test_lead_scoring), UT(test_lead_scoring_reload),
	UT(test_rules_paths))
