/*
 * main.c - linkpulsed: options, configuration, the start-up schema check,
 * then every subsystem in order on one libevent loop, signals as events,
 * reload and drain.  Everything else is reached from here.
 */
#include "lpconf.h" /* what configure found */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "alerts.h"
#include "api.h"
#include "config.h"
#include "db.h"
#include "delivery.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "netguard.h"
#include "outbox.h"
#include "pipeline.h"
#include "retention.h"
#include "rules.h"
#include "schema.h"
#include "scoring.h"
#include "sdnotify.h"

#define DEFAULT_CONFIG	   SYSCONFDIR "/linkpulse/linkpulse.yaml"
#define EVENTS_CHANNEL	   "linkpulse_events"
#define DELIVERIES_CHANNEL "linkpulse_deliveries"

struct daemon {
	struct event_base *base;
	struct lp_config *cfg;
	struct db_pool *db;
	struct db_listen *listen;
	struct http_server *http;
	struct pipeline *pipeline;
	struct delivery *delivery;
	struct netguard *guard; /* the delivery.allow_networks in force */
	struct rule_set *rules; /* loaded and checked, until alerts.c has it */
	char instance[128];	/* lease owner name for deliveries */
	int draining;		/* subsystems still finishing their work */
	struct event *sig_hup, *sig_term, *sig_int;
	struct event *grace_timer;
	struct retention *retention;
	double started;
	bool stopping;
	int exit_code;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: linkpulsed [-t] [-c FILE]\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"  -t, --test         check the configuration, then exit\n"
		"  -V, --version      print the version\n"
		"  -h, --help         print this help\n",
		DEFAULT_CONFIG);
}

/* Errors go to the log, or bare to stderr for -t, one per line. */
static struct lp_config *
load_config(const char *path, bool bare, struct strlist *out)
{
	struct strlist errs = {0};
	struct lp_config *cfg = config_load(path, &errs);

	for (size_t i = 0; i < errs.n; i++) {
		if (bare)
			fprintf(stderr, "%s\n", errs.v[i]);
		else
			log_error("%s", errs.v[i]);
		if (out != NULL)
			strlist_add(out, errs.v[i]);
	}
	strlist_free(&errs);
	return cfg;
}

/*
 * The alert rules cfg's rules.paths name, errors reported like
 * load_config's.  NULL if any file is wrong.
 */
static struct rule_set *
load_rules(const struct lp_config *cfg, bool bare, struct strlist *out)
{
	struct strlist errs = {0};
	struct rule_set *set = rules_load_config(cfg, &errs);

	for (size_t i = 0; i < errs.n; i++) {
		if (bare)
			fprintf(stderr, "%s\n", errs.v[i]);
		else
			log_error("rules: %s", errs.v[i]);
		if (out != NULL)
			strlist_add(out, errs.v[i]);
	}
	strlist_free(&errs);
	return set;
}

static void
rules_metric(bool ok)
{
	metrics_gauge_set("linkpulse_rules_last_reload_successful",
			  "1 if the alert rules loaded at the last (re)load.",
			  "", ok);
}

/* ---- start-up schema check (blocking: the loop is not running yet) ---- */

static PGconn *
connect_blocking(const struct lp_config *cfg)
{
	int64_t deadline = mono_ms() + cfg->database.startup_timeout_ms;
	char timeout[32];
	const char *keys[] = {"dbname", "connect_timeout", "application_name",
			      NULL};
	const char *vals[] = {cfg->database.url, timeout, "linkpulsed", NULL};

	snprintf(timeout, sizeof timeout, "%lld",
		 (long long)(cfg->database.connect_timeout_ms + 999) / 1000);
	for (int attempt = 0;; attempt++) {
		PGconn *c = PQconnectdbParams(keys, vals, 1);
		char *msg;
		int64_t wait;

		if (PQstatus(c) == CONNECTION_OK)
			return c;
		msg = xstrdup(PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		PQfinish(c);
		wait = db_backoff_ms(attempt, 250, 5000);
		if (mono_ms() + wait > deadline) {
			log_error("database: cannot connect: %s (gave up after "
				  "database.startup_timeout)",
				  msg);
			free(msg);
			return NULL;
		}
		log_warn("database: cannot connect: %s; retrying", msg);
		free(msg);
		usleep((useconds_t)wait * 1000);
	}
}

static void
migration_applied(const struct migration *m)
{
	log_info("schema: applied %s", m->name);
}

static int
check_schema(const struct lp_config *cfg)
{
	char err[512];
	PGconn *c = connect_blocking(cfg);
	int current, latest = schema_latest_version(), rc = -1;

	if (c == NULL)
		return -1;
	current = schema_current_version(c, err, sizeof err);
	if (current < 0) {
		log_error("schema: %s", err);
	} else if (current < latest && cfg->database.auto_migrate) {
		log_info("schema: at version %d, migrating to %d", current,
			 latest);
		if (schema_migrate(c, migration_applied, err, sizeof err) != 0)
			log_error("schema: %s", err);
		else
			rc = 0;
	} else if (current < latest) {
		log_error("schema: the database is at version %d, this "
			  "linkpulsed needs %d: run 'linkpulsectl migrate' "
			  "(or set database.auto_migrate: true)",
			  current, latest);
	} else {
		if (current > latest)
			log_warn("schema: the database is at version %d, newer "
				 "than this linkpulsed knows (%d)",
				 current, latest);
		rc = 0;
	}
	PQfinish(c);
	return rc;
}

/* ---- metrics that are read rather than counted ---- */

static void
collect(void *arg)
{
	struct daemon *d = arg;
	struct db_pool_stats st;

	db_pool_stats(d->db, &st);
	metrics_gauge_set("linkpulse_uptime_seconds",
			  "Seconds since linkpulsed started.", "",
			  mono_sec() - d->started);
	metrics_gauge_set("linkpulse_db_pool_size",
			  "Configured database connections.", "", st.size);
	metrics_gauge_set("linkpulse_db_pool_connections",
			  "Database connections by state.", "state=\"busy\"",
			  st.busy);
	metrics_gauge_set("linkpulse_db_pool_connections",
			  "Database connections by state.", "state=\"idle\"",
			  st.connected - st.busy);
	metrics_gauge_set("linkpulse_db_pool_connections",
			  "Database connections by state.",
			  "state=\"disconnected\"", st.size - st.connected);
	metrics_gauge_set("linkpulse_db_pool_waiting",
			  "Queries waiting for a database connection.", "",
			  st.waiting);
	metrics_counter_set("linkpulse_db_queries_total", "Queries completed.",
			    "", (double)st.queries);
	metrics_counter_set("linkpulse_db_query_errors_total",
			    "Queries failed.", "", (double)st.errors);
	metrics_counter_set("linkpulse_db_reconnects_total",
			    "Pool connections re-established after a loss.", "",
			    (double)st.reconnects);
	metrics_gauge_set("linkpulse_db_listen_connected",
			  "1 when the LISTEN connection is up.", "",
			  db_listen_connected(d->listen));
	metrics_counter_set("linkpulse_db_listen_reconnects_total",
			    "LISTEN connection re-establishments.", "",
			    (double)db_listen_reconnects(d->listen));
	metrics_gauge_set("linkpulse_http_requests_in_flight",
			  "HTTP requests being served.", "",
			  http_inflight(d->http));
}

static void
reload_metric(bool ok)
{
	metrics_gauge_set("linkpulse_config_last_reload_successful",
			  "1 if the last configuration reload succeeded.", "",
			  ok);
	if (ok)
		metrics_gauge_set(
		    "linkpulse_config_last_reload_success_timestamp_seconds",
		    "When the configuration was last loaded successfully.", "",
		    (double)wall_ms() / 1000);
}

/* ---- the listening connection ---- */

static void
on_notify(const char *channel, const char *payload, void *arg)
{
	struct daemon *d = arg;
	char *ch = metrics_label_escape(channel);
	char labels[256];

	snprintf(labels, sizeof labels, "channel=\"%s\"", ch);
	free(ch);
	metrics_counter_add("linkpulse_db_notifications_total",
			    "Notifications received, by channel.", labels, 1);
	log_debug("listen: notification on %s", channel);
	if (strcmp(channel, EVENTS_CHANNEL) == 0)
		pipeline_wake(d->pipeline);
	else if (strcmp(channel, DELIVERIES_CHANNEL) == 0 &&
		 d->delivery != NULL)
		delivery_wake(d->delivery);
}

static void
on_listen_state(bool connected, void *arg)
{
	struct daemon *d = arg;

	log_info("listen: %s",
		 connected ? "connected, listening" : "connection lost");
	/* Notifications sent while it was down are lost: look now. */
	if (connected) {
		pipeline_wake(d->pipeline);
		if (d->delivery != NULL)
			delivery_wake(d->delivery);
	}
}

/* ---- webhook endpoints declared in the configuration ---- */

static void
webhooks_synced(PGresult *res, const char *error, void *arg)
{
	(void)arg;
	if (error != NULL) {
		log_error("webhooks: could not apply the configured endpoints: "
			  "%s",
			  error);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *ws = PQgetvalue(res, i, 0);
		const char *name = PQgetvalue(res, i, 1);
		const char *outcome = PQgetvalue(res, i, 2);

		if (strcmp(outcome, "unknown workspace") == 0)
			log_error("webhooks: endpoint '%s': no workspace '%s'; "
				  "not applied",
				  name, ws);
		else if (strcmp(outcome, "disabled") == 0)
			log_warn("webhooks: endpoint '%s' of %s is no longer "
				 "configured: disabled",
				 name, ws);
		else if (strcmp(outcome, "unchanged") != 0)
			log_info("webhooks: endpoint '%s' of %s %s", name, ws,
				 outcome);
	}
}

/* Creates, updates or disables the endpoints of cfg's webhooks section. */
static void
sync_webhooks(struct daemon *d, const struct lp_config *cfg)
{
	json_t *defs = json_array();
	char overlap[32], *text;
	const char *params[2];

	for (int i = 0; i < cfg->nwebhooks; i++) {
		const struct lp_webhook_cfg *w = &cfg->webhooks[i];
		json_t *o = json_pack(
		    "{s:s, s:s, s:s, s:s, s:b, s:I, s:I}", "workspace",
		    w->workspace, "name", w->name, "url", w->url, "secret",
		    w->secret, "operational", w->operational, "groupWaitMs",
		    (json_int_t)w->group_wait_ms, "groupIntervalMs",
		    (json_int_t)w->group_interval_ms);
		json_t *types = json_array(), *headers = json_object();

		for (int j = 0; j < w->nevent_types; j++)
			json_array_append_new(types,
					      json_string(w->event_types[j]));
		for (int j = 0; j < w->nheaders; j++)
			json_object_set_new(headers, w->header_names[j],
					    json_string(w->header_values[j]));
		if (w->nevent_types > 0)
			json_object_set(o, "eventTypes", types);
		json_object_set_new(o, "headers", headers);
		json_decref(types);
		if (w->description != NULL)
			json_object_set_new(o, "description",
					    json_string(w->description));
		if (w->max_in_flight > 0)
			json_object_set_new(o, "maxInFlight",
					    json_integer(w->max_in_flight));
		if (w->rate_limit_per_second > 0)
			json_object_set_new(
			    o, "rateLimitPerSecond",
			    json_integer(w->rate_limit_per_second));
		if (w->payload != NULL)
			json_object_set_new(o, "payload",
					    json_string(w->payload));
		if (w->format != NULL)
			json_object_set_new(o, "format",
					    json_string(w->format));
		json_array_append_new(defs, o);
	}
	text = json_dumps(defs, JSON_COMPACT);
	json_decref(defs);
	snprintf(overlap, sizeof overlap, "%lld",
		 (long long)cfg->delivery.secret_overlap_ms);
	params[0] = text;
	params[1] = overlap;
	db_query(d->db, "SELECT * FROM lp_webhook_sync($1::jsonb, $2::bigint)",
		 2, params, webhooks_synced, NULL);
	free(text);
}

/* ---- reload and shutdown ---- */

static struct delivery_options
delivery_options(const struct daemon *d, const struct lp_config *cfg,
		 const struct netguard *guard)
{
	return (struct delivery_options){
	    .timeout_ms = cfg->delivery.timeout_ms,
	    .schedule_ms = cfg->delivery.schedule_ms,
	    .nschedule = cfg->delivery.nschedule,
	    .jitter_percent = cfg->delivery.jitter_percent,
	    .lease_ms = cfg->delivery.lease_ms,
	    .batch_size = cfg->delivery.batch_size,
	    .max_connections = cfg->delivery.max_connections,
	    .require_https = cfg->delivery.require_https,
	    .circuit_failures = cfg->delivery.circuit_failures,
	    .circuit_cooldown_ms = cfg->delivery.circuit_cooldown_ms,
	    .disable_after_ms = cfg->delivery.disable_after_ms,
	    .retention_ms = cfg->retention.deliveries_ms,
	    .guard = guard,
	    .instance = d->instance,
	};
}

static int
apply_config(struct daemon *d, struct lp_config *cfg, struct strlist *errs)
{
	struct netguard *guard;
	struct http_limits limits = {
	    .max_header_size = cfg->http.max_header_size,
	    .max_body_size = cfg->http.max_body_size,
	    .request_timeout_ms = cfg->http.request_timeout_ms,
	};

	/* TLS first: the only step that can fail leaves nothing half-done. */
	if (cfg->http.ntls_listen > 0 &&
	    http_set_tls(d->http, cfg->http.tls_cert_file,
			 cfg->http.tls_key_file, errs) != 0)
		return -1;
	/* The guard: made before anything changes, swapped in below. */
	guard = netguard_new(cfg->delivery.allow_networks,
			     cfg->delivery.nallow_networks, errs);
	if (guard == NULL)
		return -1;
	http_set_limits(d->http, &limits);
	log_configure(cfg->log.level, cfg->log.format);
	api_webhooks_configure(guard, cfg->delivery.require_https,
			       cfg->delivery.secret_overlap_ms);
	if (d->delivery != NULL) {
		struct delivery_options o = delivery_options(d, cfg, guard);

		delivery_set_options(d->delivery, &o);
	}
	netguard_free(d->guard);
	d->guard = guard;
	scoring_configure(cfg);
	if (d->pipeline != NULL)
		pipeline_set_options(
		    d->pipeline,
		    &(struct pipeline_options){
			.batch_size = cfg->pipeline.batch_size,
			.batch_max = cfg->pipeline.batch_max,
			.poll_interval_ms = cfg->pipeline.poll_interval_ms,
			.lease_ms = cfg->pipeline.lease_ms,
		    });
	return 0;
}

/*
 * Reloads the configuration and the rules, all or nothing; every error is
 * logged and, when errs is not NULL, appended to it.
 */
static bool
reload(struct daemon *d, struct strlist *errs)
{
	struct strlist notes = {0}, all = {0};
	struct lp_config *cfg;
	struct rule_set *rules = NULL;

	sd_notify_reloading();
	log_info("reload: reading %s", d->cfg->path);
	cfg = load_config(d->cfg->path, false, &all);
	/* Rules and configuration change together or not at all. */
	if (cfg != NULL && (rules = load_rules(cfg, false, &all)) == NULL) {
		log_error("reload: the alert rules are not valid");
		config_free(cfg);
		cfg = NULL;
	}
	rules_metric(cfg != NULL);
	if (cfg != NULL) {
		config_keep_restart_only(d->cfg, cfg, &notes);
		for (size_t i = 0; i < notes.n; i++)
			log_warn("reload: %s", notes.v[i]);
		strlist_free(&notes);
		if (apply_config(d, cfg, &notes) != 0) {
			for (size_t i = 0; i < notes.n; i++) {
				log_error("reload: %s", notes.v[i]);
				strlist_add(&all, notes.v[i]);
			}
			strlist_free(&notes);
			config_free(cfg);
			cfg = NULL;
			rules_set_free(rules);
		}
	}
	if (cfg == NULL) {
		log_error("reload: failed; keeping the running configuration");
		reload_metric(false);
	} else {
		config_free(d->cfg);
		d->cfg = cfg;
		log_info("rules: %d rules loaded", rules_count(rules));
		alerts_configure(cfg);
		alerts_set_rules(rules);
		sync_webhooks(d, cfg);
		reload_metric(true);
		log_info("reload: configuration applied");
	}
	alerts_note_reload(cfg != NULL, &all);
	for (size_t i = 0; errs != NULL && i < all.n; i++)
		strlist_add(errs, all.v[i]);
	strlist_free(&all);
	sd_notify_ready("running");
	return cfg != NULL;
}

/* POST /v1/alerts/reload. */
static bool
reload_for_api(void *arg, struct strlist *errs)
{
	return reload(arg, errs);
}

/* HTTP, the pipeline and delivery each call this once they are done. */
static void
drained(void *arg)
{
	struct daemon *d = arg;

	if (--d->draining > 0)
		return;
	log_info("shutdown: requests and batches finished; exiting");
	event_base_loopexit(d->base, NULL);
}

/* The delivery engine stops after the pipeline: its last batch may have
 * handed the engine deliveries to send. */
static void
pipeline_drained(void *arg)
{
	struct daemon *d = arg;

	delivery_stop(d->delivery, drained, d);
	drained(d);
}

static void
grace_expired(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	log_warn("shutdown: grace period over with %d request(s) in flight; "
		 "exiting",
		 http_inflight(d->http));
	event_base_loopexit(d->base, NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (sig == SIGHUP) {
		if (!d->stopping)
			reload(d, NULL);
		return;
	}
	if (d->stopping) {
		log_warn("shutdown: second signal; exiting at once");
		event_base_loopbreak(d->base);
		return;
	}
	d->stopping = true;
	sd_notify_stopping();
	log_info("shutdown: %s received; draining for up to %lld ms",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT",
		 (long long)d->cfg->shutdown.grace_ms);
	d->grace_timer = evtimer_new(d->base, grace_expired, d);
	timer_after(d->grace_timer, d->cfg->shutdown.grace_ms);
	retention_stop(d->retention);
	d->draining = 3;
	/* The pipeline's last batch may hand deliveries to the engine. */
	pipeline_stop(d->pipeline, pipeline_drained, d);
	http_drain(d->http, drained, d);
}

/* ---- start and stop, in order ---- */

static int
start(struct daemon *d)
{
	struct db_options dbo = {
	    .conninfo = d->cfg->database.url,
	    .pool_size = d->cfg->database.pool_size,
	    .statement_timeout_ms = d->cfg->database.statement_timeout_ms,
	    .connect_timeout_ms = d->cfg->database.connect_timeout_ms,
	    .reconnect_min_ms = d->cfg->database.reconnect_min_ms,
	    .reconnect_max_ms = d->cfg->database.reconnect_max_ms,
	    .application_name = "linkpulsed",
	};
	struct strlist errs = {0};
	char labels[128];

	/* 1. The loop, and signals as events on it. */
	d->base = event_base_new();
	if (d->base == NULL)
		fatal("event_base_new failed");
	signal(SIGPIPE, SIG_IGN);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
	d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
	event_add(d->sig_hup, NULL);
	event_add(d->sig_term, NULL);
	event_add(d->sig_int, NULL);

	/* 2. Metrics first, so every later module may count. */
	d->started = mono_sec();
	snprintf(labels, sizeof labels, "version=\"%s\"", PACKAGE_VERSION);
	metrics_gauge_set("linkpulse_build_info",
			  "linkpulsed build information.", labels, 1);
	reload_metric(true);
	rules_metric(true);
	metrics_counter_add("linkpulse_db_notifications_total",
			    "Notifications received, by channel.",
			    "channel=\"" EVENTS_CHANNEL "\"", 0);

	/* 3. The database: a query pool and the LISTEN connection. */
	d->db = db_pool_new(d->base, &dbo);
	dbo.pool_size = 1;
	d->listen = db_listen_new(d->base, &dbo, on_notify, on_listen_state, d);
	db_listen_add(d->listen, EVENTS_CHANNEL);
	db_listen_add(d->listen, DELIVERIES_CHANNEL);

	/* 4. The event pipeline, woken by the listener from now on; the
	 * alert rules are one of its consumers. */
	alerts_configure(d->cfg);
	alerts_note_reload(true, NULL);
	alerts_set_rules(d->rules);
	d->rules = NULL;
	alerts_set_reloader(reload_for_api, d);
	d->pipeline = pipeline_new(
	    d->base, d->db,
	    &(struct pipeline_options){
		.batch_size = d->cfg->pipeline.batch_size,
		.batch_max = d->cfg->pipeline.batch_max,
		.poll_interval_ms = d->cfg->pipeline.poll_interval_ms,
		.lease_ms = d->cfg->pipeline.lease_ms,
	    });

	/* 5. HTTP: routes, limits and TLS, then the listeners. */
	d->http = http_server_new(d->base, d->db);
	api_system_init(d->http, d->listen);
	api_events_init(d->http);
	api_webhooks_init(d->http);
	api_alerts_register(d->http);
	metrics_add_collector(collect, d);
	if (apply_config(d, d->cfg, &errs) != 0 ||
	    http_listen(d->http, d->cfg->http.listen, d->cfg->http.nlisten,
			false, &errs) != 0 ||
	    http_listen(d->http, d->cfg->http.tls_listen,
			d->cfg->http.ntls_listen, true, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("http: %s", errs.v[i]);
		strlist_free(&errs);
		return -1;
	}

	/* 6. Webhook delivery, woken by the outbox and by NOTIFY. */
	{
		struct delivery_options o =
		    delivery_options(d, d->cfg, d->guard);
		char host[64] = "localhost";

		gethostname(host, sizeof host - 1);
		snprintf(d->instance, sizeof d->instance, "%s:%d", host,
			 (int)getpid());
		d->delivery = delivery_new(d->base, d->db, &o);
		outbox_set_delivery(d->delivery);
		sync_webhooks(d, d->cfg);
	}

	/* 7. Background upkeep: event partitions and retention. */
	d->retention = retention_new(d->base, d->db, d->pipeline);

	/* 8. Tell systemd. */
	sd_watchdog_start(d->base);
	sd_notify_ready("running");
	log_info("linkpulsed %s started", PACKAGE_VERSION);
	return 0;
}

static void
stop(struct daemon *d)
{
	/* Reverse order; the pool goes before HTTP so that queries failing
	 * as it closes can still answer their requests. */
	sd_watchdog_stop();
	if (d->grace_timer != NULL)
		event_free(d->grace_timer);
	if (d->db != NULL)
		db_pool_free(d->db);
	/* After the pool: queries failing as it closed still reached it. */
	retention_free(d->retention);
	pipeline_free(d->pipeline);
	alerts_shutdown();
	if (d->delivery != NULL)
		delivery_free(d->delivery);
	netguard_free(d->guard);
	http_server_free(d->http);
	if (d->listen != NULL)
		db_listen_free(d->listen);
	metrics_free_all();
	if (d->sig_hup != NULL) {
		event_free(d->sig_hup);
		event_free(d->sig_term);
		event_free(d->sig_int);
	}
	if (d->base != NULL)
		event_base_free(d->base);
	libevent_global_shutdown();
	curl_global_cleanup();
	rules_set_free(d->rules);
	config_free(d->cfg);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"test", no_argument, NULL, 't'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_CONFIG;
	struct daemon d = {0};
	bool test_only = false;
	int ch;

	log_init("linkpulsed");
	while ((ch = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'V':
			printf("linkpulsed %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "linkpulsed: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}

	d.cfg = load_config(path, test_only, NULL);
	if (d.cfg == NULL) {
		if (test_only)
			fprintf(stderr,
				"linkpulsed: configuration %s is not "
				"valid\n",
				path);
		else
			log_error("configuration %s is not valid", path);
		return 1;
	}
	d.rules = load_rules(d.cfg, test_only, NULL);
	if (d.rules == NULL) {
		if (test_only)
			fprintf(stderr,
				"linkpulsed: the alert rules of %s are not "
				"valid\n",
				path);
		else
			log_error("the alert rules of %s are not valid", path);
		config_free(d.cfg);
		return 1;
	}
	if (test_only) {
		fprintf(stderr,
			"linkpulsed: configuration %s is valid (%d alert "
			"rules)\n",
			path, rules_count(d.rules));
		rules_set_free(d.rules);
		config_free(d.cfg);
		return 0;
	}
	log_configure(d.cfg->log.level, d.cfg->log.format);
	log_info("rules: %d rules loaded from %d files", rules_count(d.rules),
		 rules_nfiles(d.rules));

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		rules_set_free(d.rules);
		config_free(d.cfg);
		return 1;
	}
	if (check_schema(d.cfg) != 0 || start(&d) != 0) {
		stop(&d);
		return 1;
	}
	event_base_dispatch(d.base);
	log_info("linkpulsed stopped");
	stop(&d);
	return d.exit_code;
}
