/*
 * delivery.c - the webhook delivery engine behind delivery.h.  Owns the
 * curl multi handle on the daemon's loop (curl's hiperfifo pattern: one
 * libevent event per socket curl names, one timer, and every wake-up ends
 * in curl_check_done, the one place a finished attempt is judged), the
 * deliveries claimed by this instance (per endpoint: a FIFO, a concurrency
 * cap, a token bucket and a circuit breaker), and the results waiting to
 * be written.  Calls db.c (lp_delivery_* in sql/0005_webhooks.sql),
 * sign.c, netguard.c, metrics.c and libcurl; called by main.c (new, wake,
 * stop, free) and, through main.c, by the outbox and NOTIFY.
 *
 * A delivery's life here: claimed (lp_delivery_claim, leased to us) →
 * queued on its endpoint → started when the endpoint's limits allow →
 * judged → its result queued → written with others (lp_delivery_results).
 * Leases of everything claimed and not yet written are renewed; what we
 * cannot send (shutdown, an open circuit) is given back (lp_delivery_release).
 */
#include "lpconf.h" /* PACKAGE_VERSION */

#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "delivery.h"
#include "log.h"
#include "metrics.h"
#include "sign.h"
#include "util.h"

#define POLL_MS		    1000   /* retries becoming due, lost NOTIFYs */
#define DUE_TRACK_MS	    600000 /* retries timed here, not by the poll */
#define DUE_MAX		    4096
#define DUE_SLACK_MS	    15 /* libevent's coarse clock may fire a tick early */
#define FLUSH_DELAY_MS	    5	/* a result waits this long for others */
#define FLUSH_MAX	    256 /* results per lp_delivery_results call */
#define FLUSH_RETRY_MIN_MS  100 /* backoff of a failed flush */
#define FLUSH_RETRY_MAX_MS  5000
#define STATS_INTERVAL_MS   5000  /* queue gauges from the database */
#define PRUNE_FIRST_MS	    10000 /* retention: first run after start */
#define PRUNE_INTERVAL_MS   60000 /* then every minute */
#define PRUNE_BATCH	    1000
#define ENDPOINT_IDLE_MS    300000 /* forget an endpoint idle this long */
#define ENDPOINT_QUEUE_MIN  32	   /* queued jobs that make it "full" */
#define CONNECT_TIMEOUT_MAX 10000
#define SNIPPET_MAX	    1024
#define RETRY_AFTER_MAX_MS  (24 * 3600 * 1000LL)
#define CLAIM_WARN_EVERY    60 /* a failing claim is logged this often */
#define DEFAULT_TIMEOUT_MS  15000
#define DEFAULT_BATCH	    100
#define DEFAULT_CONNECTIONS 512
#define UUID_TEXT_LEN	    36

static const char *const outcome_names[] = {"delivered", "retry", "dead",
					    "gone"};
enum outcome { OUT_DELIVERED, OUT_RETRY, OUT_DEAD, OUT_GONE };

/* What Standard Webhooks suggests, for options without a schedule. */
static const int64_t default_schedule[] = {
    0,	      5000,	300000,	  1800000,  7200000,
    18000000, 36000000, 50400000, 72000000, 86400000};

/* Attempt latencies: fine below a second, up to the longest timeouts. */
static const double duration_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60};

static const char sql_claim[] =
    "SELECT id, endpoint_id, message_id, attempt, payload, endpoint_url,"
    " headers, max_in_flight, rate_limit_per_second,"
    " array_to_json(secrets)::text"
    " FROM lp_delivery_claim($1, $2::int, $3::int, $4::uuid[])";
static const char sql_renew[] =
    "SELECT lp_delivery_renew($1, $2::bigint[], $3::int)";
static const char sql_release[] =
    "SELECT lp_delivery_release($1, $2::bigint[], $3::bigint)";
static const char sql_results[] =
    "SELECT endpoint_id, workspace_id, reason"
    " FROM lp_delivery_results($1, $2::bigint[], $3::text[], $4::bigint[],"
    " $5::int[], $6::int[], $7::text[], $8::text[], $9::bigint)";
static const char sql_prune[] = "SELECT lp_delivery_prune($1::bigint, $2::int)";
/*
 * Delivered rows are history (kept for retention.deliveries) and may be
 * many: only the others are counted, each kind through its partial index.
 */
static const char sql_stats[] =
    "SELECT 'queue', state, count(*)::float8 FROM webhook_deliveries"
    " WHERE state IN ('pending', 'delivering') GROUP BY state"
    " UNION ALL"
    " SELECT 'queue', state, count(*)::float8 FROM webhook_deliveries"
    " WHERE state IN ('held', 'dead') GROUP BY state"
    " UNION ALL"
    " SELECT 'oldest', NULL, coalesce(extract(epoch FROM"
    " now() - min(next_attempt_at)), 0)::float8 FROM webhook_deliveries"
    " WHERE state = 'pending' AND next_attempt_at <= now()"
    " UNION ALL"
    " SELECT 'endpoints', status, count(*)::float8 FROM webhook_endpoints"
    " GROUP BY status";

static const char *const queue_states[] = {"pending", "delivering", "held",
					   "dead"};
static const char *const endpoint_statuses[] = {"active", "paused", "disabled"};

enum circuit { CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN };

struct delivery;
struct endpoint;

/* A growable string, for array literals and headers. */
struct sbuf {
	char *p;
	size_t len, cap;
};

/* One claimed delivery, from its claim to its judgement. */
struct job {
	TAILQ_ENTRY(job) queue; /* the endpoint's FIFO, while waiting */
	LIST_ENTRY(job) all;	/* every job held here */
	struct delivery *d;
	struct endpoint *ep;
	int64_t id;
	int attempt; /* 1-based, counted by the claim */
	char *message_id;
	char *payload; /* the exact bytes signed and sent */
	size_t payload_len;
	char *url;
	char *headers; /* the endpoint's static headers, a JSON object */
	char **secrets;
	int nsecrets;

	CURL *easy; /* while in flight */
	struct curl_slist *hdrs;
	double started;
	int64_t retry_after_ms; /* -1: no Retry-After */
	char snippet[SNIPPET_MAX];
	size_t snippet_len;
	const char *refused; /* the network guard's reason, static */
	char refused_addr[INET6_ADDRSTRLEN];
	char errbuf[CURL_ERROR_SIZE];
};
TAILQ_HEAD(job_queue, job);

struct endpoint {
	char id[UUID_TEXT_LEN + 1];
	struct endpoint *hnext;
	TAILQ_ENTRY(endpoint) all;
	struct delivery *d;
	struct job_queue queue;
	int nqueued;
	int in_flight;
	int max_in_flight;
	int rate; /* per second; 0: unlimited */
	double tokens;
	int64_t tokens_at;   /* mono ms of the last refill; 0: never */
	struct event *timer; /* next token, or the end of the cooldown */
	enum circuit circuit;
	int failures;	    /* consecutive */
	int64_t open_until; /* mono ms */
	bool skipped;	    /* left out of a claim because full */
	bool gone;	    /* answered 410: wait for the write, then release */
	int gone_unwritten; /* its 410 results not yet written */
	bool pumping;
	int64_t last_used; /* mono ms */
};

/* One attempt's outcome, waiting to be written. */
struct result {
	int64_t id;
	enum outcome outcome;
	int64_t delay_ms;
	long status; /* 0: no response */
	int latency_ms;
	char *error;   /* valid UTF-8 or NULL */
	char *snippet; /* valid UTF-8 or NULL */
	struct endpoint *gone_ep;
};

struct result_vec {
	struct result *v;
	size_t n, cap;
};

struct sock {
	LIST_ENTRY(sock) entry;
	struct event *ev;
};

struct delivery {
	struct event_base *base;
	struct db_pool *db;
	struct delivery_options opts; /* schedule_ms and instance: ours */
	int64_t *schedule;
	struct netguard *own_guard; /* when the options bring none */
	char *owner;
	uint64_t rng;

	CURLM *multi;
	struct event *curl_timer;
	LIST_HEAD(, sock) socks;

	struct endpoint **buckets;
	size_t nbuckets, nendpoints;
	TAILQ_HEAD(endpoint_list, endpoint) endpoints;
	LIST_HEAD(, job) jobs;
	int nqueued;   /* jobs waiting at their endpoints */
	int in_flight; /* never above max_connections */
	bool starved;  /* an endpoint waits for a free connection */
	bool pumping_starved;
	int circuits_open;

	struct event *wake_ev;
	struct event *poll_ev;
	/* When the retries we wrote become due (mono ms, a min-heap), so
	 * they are claimed on time rather than at the next poll. */
	struct event *due_ev;
	int64_t *due;
	size_t ndue;
	int64_t due_at; /* what due_ev is armed for, 0: not armed */
	bool claiming;
	bool wake_pending;
	bool more_due; /* a full claim could not be followed for lack of room */
	int claim_limit;
	int claim_failures;

	struct result_vec pending;  /* waiting to be written */
	struct result_vec flushing; /* being written */
	bool flush_running;
	int flush_failures;
	struct event *flush_ev;

	struct event *renew_ev;
	bool renewing;
	struct event *prune_ev;
	bool pruning;
	int64_t pruned;
	struct event *stats_ev;
	bool stats_running;
	int releases; /* release queries in flight */

	bool stopping;
	void (*stop_done)(void *);
	void *stop_arg;
	struct event *done_ev;
};

static void claim_maybe(struct delivery *);
static void ep_pump(struct endpoint *);
static void job_done(struct job *, long status, const char *error);
static void flush_start(struct delivery *);
static void maybe_done(struct delivery *);

/* ---- small helpers ---- */

static void
sbuf_grow(struct sbuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	while (b->len + more + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 256;
	b->p = xrealloc(b->p, b->cap);
}

static void
sbuf_addn(struct sbuf *b, const char *s, size_t n)
{
	sbuf_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sbuf_add(struct sbuf *b, const char *s)
{
	sbuf_addn(b, s, strlen(s));
}

static void
sbuf_addc(struct sbuf *b, char c)
{
	sbuf_addn(b, &c, 1);
}

static void
sbuf_addi(struct sbuf *b, int64_t v)
{
	char tmp[24];

	snprintf(tmp, sizeof tmp, "%" PRId64, v);
	sbuf_add(b, tmp);
}

/* A PostgreSQL array element: NULL bare, text double-quoted. */
static void
sbuf_add_elem(struct sbuf *b, const char *s)
{
	if (s == NULL) {
		sbuf_add(b, "NULL");
		return;
	}
	sbuf_addc(b, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			sbuf_addc(b, '\\');
		sbuf_addc(b, *s);
	}
	sbuf_addc(b, '"');
}

static char *
sbuf_take(struct sbuf *b)
{
	char *p = b->p;

	if (p == NULL)
		p = xstrdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

/*
 * s as valid UTF-8 without NUL bytes (PostgreSQL refuses both): every
 * byte that does not start a well-formed sequence becomes U+FFFD.
 */
static char *
utf8_clean(const char *s, size_t len)
{
	static const char repl[] = "\xEF\xBF\xBD";
	struct sbuf b = {0};
	size_t i = 0;

	sbuf_grow(&b, len);
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n, k;
		uint32_t cp;

		if (c >= 0x01 && c < 0x80) {
			sbuf_addc(&b, (char)c);
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
		} else {
			goto bad;
		}
		if (len - i <= n)
			goto bad;
		for (k = 1; k <= n; k++) {
			unsigned char cc = (unsigned char)s[i + k];

			if ((cc & 0xC0) != 0x80)
				goto bad;
			cp = (cp << 6) | (cc & 0x3F);
		}
		if ((n == 2 &&
		     (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
			goto bad;
		sbuf_addn(&b, s + i, n + 1);
		i += n + 1;
		continue;
	bad:
		sbuf_add(&b, repl);
		i++;
	}
	return sbuf_take(&b);
}

static uint64_t
rng_next(struct delivery *d)
{
	/* xorshift64*: jitter needs spread, not secrecy. */
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return d->rng * 2685821657736338717ULL;
}

/* Uniform in [0, 1). */
static double
rng_unit(struct delivery *d)
{
	return (double)(rng_next(d) >> 11) * (1.0 / 9007199254740992.0);
}

static void
set_in_flight_metric(struct delivery *d)
{
	metrics_gauge_set("linkpulse_webhook_in_flight",
			  "Webhook requests in flight from this instance.", "",
			  d->in_flight);
}

static void
set_circuit_metric(struct delivery *d)
{
	metrics_gauge_set("linkpulse_webhook_circuit_open",
			  "Endpoints whose circuit breaker is open or "
			  "half-open in this instance.",
			  "", d->circuits_open);
}

static void
count_outcome(enum outcome o, double n)
{
	char labels[32];

	snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome_names[o]);
	metrics_counter_add("linkpulse_webhook_deliveries_total",
			    "Webhook delivery attempts, by outcome.", labels,
			    n);
}

/* ---- endpoints ---- */

static unsigned
ep_hash(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

static void
ep_rehash(struct delivery *d, size_t nbuckets)
{
	struct endpoint **nb = xcalloc(nbuckets, sizeof *nb);
	struct endpoint *ep;

	TAILQ_FOREACH(ep, &d->endpoints, all)
	{
		unsigned h = ep_hash(ep->id) & (nbuckets - 1);

		ep->hnext = nb[h];
		nb[h] = ep;
	}
	free(d->buckets);
	d->buckets = nb;
	d->nbuckets = nbuckets;
}

static struct endpoint *
ep_find(struct delivery *d, const char *id)
{
	struct endpoint *ep;

	for (ep = d->buckets[ep_hash(id) & (d->nbuckets - 1)]; ep != NULL;
	     ep = ep->hnext) {
		if (strcmp(ep->id, id) == 0)
			return ep;
	}
	return NULL;
}

static void ep_timer_cb(evutil_socket_t, short, void *);

static struct endpoint *
ep_get(struct delivery *d, const char *id)
{
	struct endpoint *ep = ep_find(d, id);
	unsigned h;

	if (ep != NULL)
		return ep;
	ep = xcalloc(1, sizeof *ep);
	snprintf(ep->id, sizeof ep->id, "%s", id);
	ep->d = d;
	TAILQ_INIT(&ep->queue);
	ep->max_in_flight = 1;
	ep->timer = evtimer_new(d->base, ep_timer_cb, ep);
	if (ep->timer == NULL)
		fatal("delivery: cannot create a timer");
	ep->last_used = mono_ms();
	TAILQ_INSERT_TAIL(&d->endpoints, ep, all);
	if (++d->nendpoints > d->nbuckets)
		ep_rehash(d, d->nbuckets * 2);
	else {
		h = ep_hash(ep->id) & (d->nbuckets - 1);
		ep->hnext = d->buckets[h];
		d->buckets[h] = ep;
	}
	return ep;
}

static void
ep_free(struct delivery *d, struct endpoint *ep)
{
	struct endpoint **pp;

	for (pp = &d->buckets[ep_hash(ep->id) & (d->nbuckets - 1)]; *pp != ep;
	     pp = &(*pp)->hnext)
		;
	*pp = ep->hnext;
	TAILQ_REMOVE(&d->endpoints, ep, all);
	d->nendpoints--;
	if (ep->circuit != CIRCUIT_CLOSED)
		d->circuits_open--;
	event_free(ep->timer);
	free(ep);
}

static int
claim_cap(const struct delivery *d)
{
	return 2 * d->opts.batch_size;
}

/*
 * Queued jobs above which an endpoint is left out of claims: a few times
 * what it may have in flight, and never more than a quarter of what the
 * engine queues, so that one slow endpoint cannot fill it.
 */
static int
ep_queue_cap(const struct endpoint *ep)
{
	int cap = 4 * ep->max_in_flight, share = claim_cap(ep->d) / 4;

	if (cap < ENDPOINT_QUEUE_MIN)
		cap = ENDPOINT_QUEUE_MIN;
	if (share < 1)
		share = 1;
	return cap < share ? cap : share;
}

static bool
ep_skip(const struct endpoint *ep)
{
	return ep->gone || ep->circuit == CIRCUIT_OPEN ||
	       ep->nqueued >= ep_queue_cap(ep);
}

/* ---- jobs ---- */

static void
job_free(struct job *j)
{
	struct delivery *d = j->d;

	if (j->easy != NULL) {
		curl_multi_remove_handle(d->multi, j->easy);
		curl_easy_cleanup(j->easy);
	}
	curl_slist_free_all(j->hdrs);
	LIST_REMOVE(j, all);
	free(j->message_id);
	free(j->payload);
	free(j->url);
	free(j->headers);
	for (int i = 0; i < j->nsecrets; i++)
		free(j->secrets[i]);
	free(j->secrets);
	free(j);
}

static bool
job_held(struct delivery *d, int64_t id)
{
	struct job *j;

	LIST_FOREACH(j, &d->jobs, all)
	{
		if (j->id == id)
			return true;
	}
	return false;
}

/* ---- giving deliveries back ---- */

static void
released(PGresult *res, const char *error, void *arg)
{
	struct delivery *d = arg;

	d->releases--;
	if (error != NULL)
		log_warn("delivery: could not give deliveries back (their "
			 "leases will expire instead): %s",
			 error);
	maybe_done(d);
}

/* Gives ids (an array literal) back, due after delay_ms. */
static void
release_ids(struct delivery *d, const char *ids, int64_t delay_ms)
{
	char lease[24];
	const char *params[3] = {d->owner, ids, lease};

	snprintf(lease, sizeof lease, "%" PRId64, delay_ms > 0 ? delay_ms : 0);
	d->releases++;
	db_query(d->db, sql_release, 3, params, released, d);
}

/* Frees the endpoint's queued jobs and gives them back. */
static void
ep_release_queue(struct endpoint *ep, int64_t delay_ms)
{
	struct delivery *d = ep->d;
	struct sbuf ids = {0};
	struct job *j;
	char *lit;

	if (TAILQ_EMPTY(&ep->queue))
		return;
	sbuf_addc(&ids, '{');
	while ((j = TAILQ_FIRST(&ep->queue)) != NULL) {
		TAILQ_REMOVE(&ep->queue, j, queue);
		ep->nqueued--;
		d->nqueued--;
		if (ids.len > 1)
			sbuf_addc(&ids, ',');
		sbuf_addi(&ids, j->id);
		job_free(j);
	}
	sbuf_addc(&ids, '}');
	lit = sbuf_take(&ids);
	release_ids(d, lit, delay_ms);
	free(lit);
}

/*
 * One of the endpoint's 410 results is written (or turned out stale).
 * Once all are, the endpoint is disabled in the database and what waited
 * here goes back, to be held there.
 */
static void
ep_gone_written(struct endpoint *ep)
{
	if (--ep->gone_unwritten > 0 || !ep->gone)
		return;
	ep->gone = false;
	ep_release_queue(ep, 0);
}

/* ---- the circuit breaker and the token bucket ---- */

static void
circuit_set(struct endpoint *ep, enum circuit c)
{
	struct delivery *d = ep->d;

	if ((ep->circuit == CIRCUIT_CLOSED) != (c == CIRCUIT_CLOSED)) {
		d->circuits_open += c == CIRCUIT_CLOSED ? -1 : 1;
		set_circuit_metric(d);
	}
	ep->circuit = c;
}

static void
circuit_open(struct endpoint *ep, bool probe)
{
	struct delivery *d = ep->d;
	char cool[32];

	circuit_set(ep, CIRCUIT_OPEN);
	ep->open_until = mono_ms() + d->opts.circuit_cooldown_ms;
	format_duration(d->opts.circuit_cooldown_ms, cool, sizeof cool);
	if (probe)
		log_warn("delivery endpoint %s: probe failed; circuit open "
			 "again for %s",
			 ep->id, cool);
	else
		log_warn("delivery endpoint %s: %d consecutive failures; "
			 "circuit open for %s",
			 ep->id, ep->failures, cool);
	ep_release_queue(ep, d->opts.circuit_cooldown_ms);
	timer_after(ep->timer, d->opts.circuit_cooldown_ms);
}

/* Takes a token if the rate limit allows; else arms the timer for one. */
static bool
ep_take_token(struct endpoint *ep)
{
	int64_t now = mono_ms();
	double burst = ep->rate, wait;

	if (ep->rate <= 0)
		return true;
	if (ep->tokens_at == 0) {
		ep->tokens = burst;
	} else {
		ep->tokens += (double)(now - ep->tokens_at) * ep->rate / 1000;
		if (ep->tokens > burst)
			ep->tokens = burst;
	}
	ep->tokens_at = now;
	if (ep->tokens >= 1) {
		ep->tokens -= 1;
		return true;
	}
	wait = ceil((1 - ep->tokens) * 1000 / ep->rate);
	timer_after(ep->timer, wait < 1 ? 1 : (int64_t)wait);
	return false;
}

static void
ep_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct endpoint *ep = arg;
	struct delivery *d = ep->d;
	int64_t now = mono_ms();

	if (ep->circuit == CIRCUIT_OPEN) {
		if (now < ep->open_until) {
			timer_after(ep->timer, ep->open_until - now);
			return;
		}
		circuit_set(ep, CIRCUIT_HALF_OPEN);
		log_info("delivery endpoint %s: cooldown over; circuit "
			 "half-open, probing",
			 ep->id);
		/* Its deliveries were given back due now: fetch them. */
		delivery_wake(d);
	}
	ep_pump(ep);
}

/* ---- sending ---- */

static size_t
curl_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct job *j = arg;
	size_t n = size * nmemb, room = SNIPPET_MAX - j->snippet_len;

	if (room > 0) {
		if (room > n)
			room = n;
		memcpy(j->snippet + j->snippet_len, ptr, room);
		j->snippet_len += room;
	}
	return n;
}

/* Retry-After: delay-seconds or an HTTP date; -1 if unreadable. */
static int64_t
parse_retry_after(const char *v)
{
	const char *p;
	time_t t;
	int64_t ms;

	for (p = v; *p >= '0' && *p <= '9'; p++)
		;
	if (p != v && *p == '\0') {
		if (p - v > 9)
			return RETRY_AFTER_MAX_MS;
		ms = strtoll(v, NULL, 10) * 1000;
	} else {
		t = curl_getdate(v, NULL);
		if (t == -1)
			return -1;
		ms = ((int64_t)t - (int64_t)time(NULL)) * 1000;
	}
	if (ms < 0)
		ms = 0;
	return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : ms;
}

static size_t
curl_header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	static const char name[] = "retry-after:";
	struct job *j = arg;
	size_t len = size * nitems, n;
	char value[128];
	const char *p, *end;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx): forget the last one's. */
		j->retry_after_ms = -1;
		return len;
	}
	if (len <= sizeof name - 1 ||
	    strncasecmp(buf, name, sizeof name - 1) != 0)
		return len;
	p = buf + sizeof name - 1;
	end = buf + len;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == '\r' || end[-1] == '\n' ||
			   end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(end - p);
	if (n == 0 || n >= sizeof value)
		return len;
	memcpy(value, p, n);
	value[n] = '\0';
	j->retry_after_ms = parse_retry_after(value);
	return len;
}

/* Records why the guard refused addr (static reason) on the job. */
static void
job_refuse(struct job *j, const char *why, const struct sockaddr *sa)
{
	j->refused = why;
	j->refused_addr[0] = '\0';
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  j->refused_addr, sizeof j->refused_addr);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr,
			  j->refused_addr, sizeof j->refused_addr);
}

#if LIBCURL_VERSION_NUM >= 0x075000
/*
 * Before every request, on a new or a reused connection: a keep-alive
 * connection opened while a reloaded delivery.allow_networks still allowed
 * its address must not carry requests once it no longer does.
 */
static int
curl_prereq_cb(void *arg, char *peer_ip, char *local_ip, int peer_port,
	       int local_port)
{
	struct job *j = arg;
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	const char *why;

	(void)local_ip;
	(void)peer_port;
	(void)local_port;
	if (inet_pton(AF_INET, peer_ip, &a4->sin_addr) == 1)
		a4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, peer_ip, &a6->sin6_addr) == 1)
		a6->sin6_family = AF_INET6;
	why = netguard_check(j->d->opts.guard, (struct sockaddr *)&ss);
	if (why == NULL)
		return CURL_PREREQFUNC_OK;
	job_refuse(j, why, (struct sockaddr *)&ss);
	return CURL_PREREQFUNC_ABORT;
}
#endif

/* Every connect goes through the network guard first. */
static curl_socket_t
curl_open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct job *j = arg;
	const struct sockaddr *sa = &addr->addr;
	const char *why;

	if (purpose == CURLSOCKTYPE_IPCXN &&
	    (why = netguard_check(j->d->opts.guard, sa)) != NULL) {
		job_refuse(j, why, sa);
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype | SOCK_CLOEXEC,
		      addr->protocol);
}

static struct curl_slist *
slist_add(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = curl_slist_append(l, s);

	if (n == NULL)
		fatal("delivery: out of memory building headers");
	return n;
}

/* Names the endpoint's static headers may not set. */
static bool
header_reserved(const char *name)
{
	static const char *const reserved[] = {"webhook-id",
					       "webhook-timestamp",
					       "webhook-signature",
					       "content-type",
					       "content-length",
					       "transfer-encoding",
					       "host",
					       "connection",
					       "expect",
					       "keep-alive",
					       "upgrade",
					       "te",
					       "proxy-connection"};

	for (size_t i = 0; i < nitems(reserved); i++) {
		if (strcasecmp(name, reserved[i]) == 0)
			return true;
	}
	return false;
}

static bool
header_name_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	}
	return true;
}

static bool
header_value_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n')
			return false;
	}
	return true;
}

static struct curl_slist *
add_static_headers(struct job *j, struct curl_slist *l)
{
	json_error_t err;
	json_t *obj, *v;
	const char *name;
	char *line;

	if (j->headers == NULL || j->headers[0] == '\0')
		return l;
	obj = json_loads(j->headers, 0, &err);
	if (!json_is_object(obj)) {
		log_debug("delivery %s endpoint %s: static headers are not a "
			  "JSON object; ignored",
			  j->message_id, j->ep->id);
		json_decref(obj);
		return l;
	}
	json_object_foreach(obj, name, v)
	{
		if (!json_is_string(v) || !header_name_ok(name) ||
		    header_reserved(name) ||
		    !header_value_ok(json_string_value(v))) {
			log_debug("delivery endpoint %s: static header \"%s\" "
				  "skipped",
				  j->ep->id, header_name_ok(name) ? name : "?");
			continue;
		}
		line = xprintf("%s: %s", name, json_string_value(v));
		l = slist_add(l, line);
		free(line);
	}
	json_decref(obj);
	return l;
}

/*
 * Starts one attempt.  A failure before any request (https required,
 * no secret, curl refusing the handle) is judged at once.
 */
static void
job_start(struct job *j)
{
	struct delivery *d = j->d;
	struct endpoint *ep = j->ep;
	int64_t ts = wall_ms() / 1000;
	int64_t connect_ms;
	char *sig, *line;
	CURL *e;

	ep->in_flight++;
	d->in_flight++;
	set_in_flight_metric(d);
	ep->last_used = mono_ms();
	j->started = mono_sec();
	j->retry_after_ms = -1;

	if (d->opts.require_https && strncasecmp(j->url, "https://", 8) != 0) {
		job_done(j, 0,
			 "not sent: delivery.require_https is set and the URL "
			 "is not https");
		return;
	}
	sig = sign_header(j->secrets, j->nsecrets, j->message_id, ts,
			  j->payload, j->payload_len);
	if (sig == NULL) {
		job_done(j, 0, "not sent: the endpoint has no valid secret");
		return;
	}
	j->hdrs = slist_add(NULL, "Content-Type: application/json");
	/* curl would wait for a 100 Continue before larger bodies. */
	j->hdrs = slist_add(j->hdrs, "Expect:");
	line = xprintf("webhook-id: %s", j->message_id);
	j->hdrs = slist_add(j->hdrs, line);
	free(line);
	line = xprintf("webhook-timestamp: %" PRId64, ts);
	j->hdrs = slist_add(j->hdrs, line);
	free(line);
	line = xprintf("webhook-signature: %s", sig);
	j->hdrs = slist_add(j->hdrs, line);
	free(line);
	free(sig);
	j->hdrs = add_static_headers(j, j->hdrs);

	e = curl_easy_init();
	if (e == NULL) {
		job_done(j, 0, "not sent: curl_easy_init failed");
		return;
	}
	connect_ms = d->opts.timeout_ms < CONNECT_TIMEOUT_MAX
			 ? d->opts.timeout_ms
			 : CONNECT_TIMEOUT_MAX;
	curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	curl_easy_setopt(e, CURLOPT_URL, j->url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)j->payload_len);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->payload);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "linkpulse/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* No proxy from the environment: the guard checks the real peer. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->opts.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, curl_open_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j);
#if LIBCURL_VERSION_NUM >= 0x075000
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, curl_prereq_cb);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, j);
#endif
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, curl_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
	j->errbuf[0] = '\0';
	j->easy = e;
	if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		j->easy = NULL;
		job_done(j, 0, "not sent: curl_multi_add_handle failed");
	}
}

/* Starts the endpoint's queued jobs as far as its limits allow. */
static void
ep_pump(struct endpoint *ep)
{
	struct delivery *d = ep->d;
	struct job *j;

	/* A job judged at once inside job_start comes back here. */
	if (ep->pumping)
		return;
	ep->pumping = true;
	while (!d->stopping && !ep->gone &&
	       (j = TAILQ_FIRST(&ep->queue)) != NULL) {
		if (ep->circuit == CIRCUIT_OPEN)
			break;
		if (ep->circuit == CIRCUIT_HALF_OPEN && ep->in_flight > 0)
			break; /* one probe at a time */
		if (ep->in_flight >= ep->max_in_flight)
			break;
		if (d->in_flight >= d->opts.max_connections) {
			d->starved = true;
			break;
		}
		if (!ep_take_token(ep))
			break;
		TAILQ_REMOVE(&ep->queue, j, queue);
		ep->nqueued--;
		d->nqueued--;
		job_start(j);
	}
	ep->pumping = false;
	/* Left out of a claim for a full queue, and drained: claim again. */
	if (ep->skipped && ep->nqueued < ep_queue_cap(ep) / 2) {
		ep->skipped = false;
		delivery_wake(d);
	}
	/* A full claim was not followed for lack of room: room again. */
	if (d->more_due && claim_cap(d) - d->nqueued >= d->opts.batch_size) {
		d->more_due = false;
		delivery_wake(d);
	}
}

/*
 * A connection is free again: endpoints that waited for one take turns
 * (each goes to the back of the list once it had its turn).
 */
static void
pump_starved(struct delivery *d)
{
	struct endpoint *ep, *last;

	if (d->pumping_starved || !d->starved)
		return;
	d->pumping_starved = true;
	d->starved = false;
	last = TAILQ_LAST(&d->endpoints, endpoint_list);
	while (!d->starved && (ep = TAILQ_FIRST(&d->endpoints)) != NULL) {
		TAILQ_REMOVE(&d->endpoints, ep, all);
		TAILQ_INSERT_TAIL(&d->endpoints, ep, all);
		if (!TAILQ_EMPTY(&ep->queue))
			ep_pump(ep);
		if (ep == last)
			break;
	}
	d->pumping_starved = false;
}

/* ---- judging ---- */

static int64_t
retry_delay(struct delivery *d, int attempt)
{
	int64_t base = d->opts.schedule_ms[attempt];
	double f;

	if (d->opts.jitter_percent <= 0 || base <= 0)
		return base;
	f = (rng_unit(d) * 2 - 1) * d->opts.jitter_percent / 100.0;
	return (int64_t)llround((double)base * (1 + f));
}

static void
results_push(struct result_vec *rv, const struct result *r)
{
	if (rv->n == rv->cap) {
		rv->cap = rv->cap ? rv->cap * 2 : 64;
		rv->v = xrealloc(rv->v, rv->cap * sizeof *rv->v);
	}
	rv->v[rv->n++] = *r;
}

static void
result_clear(struct result *r)
{
	free(r->error);
	free(r->snippet);
}

static void
flush_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	flush_start(arg);
}

static void
result_add(struct delivery *d, const struct result *r)
{
	results_push(&d->pending, r);
	if (d->flush_running || d->flush_failures > 0)
		return; /* written after the flush in flight, or the backoff */
	if (d->pending.n >= FLUSH_MAX || d->stopping)
		flush_start(d);
	else if (!evtimer_pending(d->flush_ev, NULL))
		timer_after(d->flush_ev, FLUSH_DELAY_MS);
}

static void
describe(char *buf, size_t len, long status, const char *error)
{
	if (error != NULL && status > 0)
		snprintf(buf, len, "%ld (%s)", status, error);
	else if (error != NULL)
		snprintf(buf, len, "%s", error);
	else
		snprintf(buf, len, "%ld", status);
}

/*
 * The one place an attempt's outcome is decided: status is the HTTP
 * status (0 if none came), error why there is no usable answer.
 */
static void
job_done(struct job *j, long status, const char *error)
{
	struct delivery *d = j->d;
	struct endpoint *ep = j->ep;
	struct result r = {0};
	double secs = mono_sec() - j->started;
	int n = d->opts.nschedule;
	char what[CURL_ERROR_SIZE + 64], in[32];

	if (secs < 0)
		secs = 0;
	r.id = j->id;
	r.status = status;
	r.latency_ms = secs * 1000 < INT32_MAX ? (int)(secs * 1000) : INT32_MAX;
	if (error == NULL && status >= 200 && status < 300)
		r.outcome = OUT_DELIVERED;
	else if (error == NULL && status == 410)
		r.outcome = OUT_GONE;
	else if (j->attempt >= n)
		r.outcome = OUT_DEAD;
	else
		r.outcome = OUT_RETRY;
	if (r.outcome == OUT_RETRY) {
		if ((status == 429 || status == 503) && j->retry_after_ms >= 0)
			r.delay_ms = j->retry_after_ms;
		else
			r.delay_ms =
			    retry_delay(d, j->attempt > 0 ? j->attempt : 0);
	}
	if (error == NULL && status >= 300 && status < 400)
		error = "redirect not followed";
	if (error != NULL)
		r.error = utf8_clean(error, strlen(error));
	if (j->snippet_len > 0)
		r.snippet = utf8_clean(j->snippet, j->snippet_len);

	metrics_histogram_observe_buckets(
	    "linkpulse_webhook_attempt_duration_seconds",
	    "Duration of webhook delivery attempts.", "", secs,
	    duration_buckets, nitems(duration_buckets));
	count_outcome(r.outcome, 1);
	describe(what, sizeof what, status, error);
	switch (r.outcome) {
	case OUT_DELIVERED:
		log_debug("delivery %s endpoint %s: %s after %d ms, delivered "
			  "(attempt %d/%d)",
			  j->message_id, ep->id, what, r.latency_ms, j->attempt,
			  n);
		break;
	case OUT_RETRY:
		format_duration(r.delay_ms, in, sizeof in);
		log_info("delivery %s endpoint %s: %s after %d ms, retry "
			 "%d/%d in %s",
			 j->message_id, ep->id, what, r.latency_ms,
			 j->attempt + 1, n, in);
		break;
	case OUT_DEAD:
		log_warn("delivery %s endpoint %s: %s after %d ms; attempt "
			 "%d/%d failed, giving up",
			 j->message_id, ep->id, what, r.latency_ms, j->attempt,
			 n);
		break;
	case OUT_GONE:
		log_warn("delivery %s endpoint %s: 410 Gone after %d ms; the "
			 "endpoint is being disabled",
			 j->message_id, ep->id, r.latency_ms);
		break;
	}

	/* The endpoint's health. */
	if (r.outcome == OUT_DELIVERED) {
		ep->failures = 0;
		if (ep->circuit == CIRCUIT_HALF_OPEN) {
			circuit_set(ep, CIRCUIT_CLOSED);
			log_info("delivery endpoint %s: probe succeeded; "
				 "circuit closed",
				 ep->id);
		}
	} else if (r.outcome == OUT_GONE) {
		ep->gone = true;
		ep->gone_unwritten++;
		r.gone_ep = ep;
	} else {
		ep->failures++;
		if (d->opts.circuit_failures > 0 && !d->stopping) {
			if (ep->circuit == CIRCUIT_HALF_OPEN)
				circuit_open(ep, true);
			else if (ep->circuit == CIRCUIT_CLOSED &&
				 ep->failures >= d->opts.circuit_failures)
				circuit_open(ep, false);
		}
	}

	ep->in_flight--;
	d->in_flight--;
	set_in_flight_metric(d);
	ep->last_used = mono_ms();
	job_free(j);
	result_add(d, &r);

	ep_pump(ep);
	pump_starved(d);
	maybe_done(d);
}

/* Called after a transfer ended: status and curl's verdict. */
static void
job_transfer_done(struct job *j, CURLcode rc, long code)
{
	char *msg;

	/* The receiver accepted it, even if the rest of its answer broke. */
	if (code >= 200 && code < 300) {
		job_done(j, code, NULL);
		return;
	}
	if (rc == CURLE_OK && code > 0) {
		job_done(j, code, NULL);
		return;
	}
	if (j->refused != NULL && code == 0) {
		msg = xprintf("refused by the network guard: %s (%s)",
			      j->refused, j->refused_addr);
		job_done(j, 0, msg);
		free(msg);
		return;
	}
	job_done(j, code,
		 j->errbuf[0] != '\0' ? j->errbuf : curl_easy_strerror(rc));
}

/* Every finished transfer, after every wake-up. */
static void
curl_check_done(struct delivery *d)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
		CURL *e = msg->easy_handle;
		CURLcode rc = msg->data.result;
		char *priv = NULL;
		struct job *j;
		long code = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		j = (struct job *)priv;
		curl_multi_remove_handle(d->multi, e);
		curl_easy_cleanup(e);
		j->easy = NULL;
		curl_slist_free_all(j->hdrs);
		j->hdrs = NULL;
		job_transfer_done(j, rc, code);
	}
}

/* ---- curl on the loop ---- */

static void
sock_free(struct sock *s)
{
	LIST_REMOVE(s, entry);
	event_free(s->ev);
	free(s);
}

static void
sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	int action = 0, running = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(d->multi, fd, action, &running);
	/* Not "no transfer left: stop the timer": transfers started while
	 * judging have just armed it. curl disarms it itself (-1). */
	curl_check_done(d);
}

static int
curl_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct delivery *d = userp;
	struct sock *s = sockp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			sock_free(s);
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->ev = event_new(d->base, fd, kind, sock_event_cb, d);
		if (s->ev == NULL)
			fatal("delivery: cannot create a socket event");
		LIST_INSERT_HEAD(&d->socks, s, entry);
		curl_multi_assign(d->multi, fd, s);
	} else {
		event_del(s->ev);
		event_assign(s->ev, d->base, fd, kind, sock_event_cb, d);
	}
	if (kind & (EV_READ | EV_WRITE))
		event_add(s->ev, NULL);
	return 0;
}

static void
curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	int running = 0;

	curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_check_done(d);
}

static int
curl_timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	struct delivery *d = userp;

	/* Never act from inside curl: even 0 ms goes through the loop. */
	if (timeout_ms < 0)
		evtimer_del(d->curl_timer);
	else
		timer_after(d->curl_timer, timeout_ms);
	return 0;
}

/* ---- writing results ---- */

static void
due_push(struct delivery *d, int64_t at)
{
	size_t i = d->ndue++;

	while (i > 0 && d->due[(i - 1) / 2] > at) {
		d->due[i] = d->due[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	d->due[i] = at;
}

static void
due_pop(struct delivery *d)
{
	int64_t last = d->due[--d->ndue];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < d->ndue) {
		if (c + 1 < d->ndue && d->due[c + 1] < d->due[c])
			c++;
		if (d->due[c] >= last)
			break;
		d->due[i] = d->due[c];
		i = c;
	}
	d->due[i] = last;
}

static void
due_rearm(struct delivery *d)
{
	if (d->ndue == 0 || d->stopping)
		return;
	if (d->due_at == 0 || d->due[0] < d->due_at) {
		d->due_at = d->due[0];
		timer_after(d->due_ev, d->due_at - mono_ms());
	}
}

/* Notes when the retries just written become due. */
static void
due_add(struct delivery *d, const struct result_vec *rv)
{
	int64_t now = mono_ms();

	for (size_t i = 0; i < rv->n; i++) {
		/* Later ones: the poll's second is close enough. */
		if (rv->v[i].outcome != OUT_RETRY ||
		    rv->v[i].delay_ms > DUE_TRACK_MS || d->ndue == DUE_MAX)
			continue;
		due_push(d, now + rv->v[i].delay_ms + DUE_SLACK_MS);
	}
	due_rearm(d);
}

static void
due_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	int64_t now = mono_ms();

	while (d->ndue > 0 && d->due[0] <= now)
		due_pop(d);
	d->due_at = 0;
	delivery_wake(d);
	due_rearm(d);
}

static void
flushed(PGresult *res, const char *error, void *arg)
{
	struct delivery *d = arg;
	struct result_vec *fv = &d->flushing;
	int64_t backoff;

	d->flush_running = false;
	if (error != NULL) {
		/* Keep them, in front of the newer ones: never dropped.  One
		 * whose delivery we hold again was written after all (or
		 * its lease ran out): that one is stale. */
		struct result_vec keep = {0};

		for (size_t i = 0; i < fv->n; i++) {
			if (job_held(d, fv->v[i].id)) {
				if (fv->v[i].gone_ep != NULL)
					ep_gone_written(fv->v[i].gone_ep);
				result_clear(&fv->v[i]);
			} else {
				results_push(&keep, &fv->v[i]);
			}
		}
		for (size_t i = 0; i < d->pending.n; i++)
			results_push(&keep, &d->pending.v[i]);
		free(d->pending.v);
		d->pending = keep;
		fv->n = 0;
		backoff = db_backoff_ms(d->flush_failures, FLUSH_RETRY_MIN_MS,
					FLUSH_RETRY_MAX_MS);
		if (d->flush_failures++ % 10 == 0)
			log_warn("delivery: could not write %zu result(s), "
				 "retrying in %" PRId64 " ms: %s",
				 d->pending.n, backoff, error);
		timer_after(d->flush_ev, backoff);
		return;
	}
	if (d->flush_failures > 0)
		log_info("delivery: results written again after %d failed "
			 "attempt(s)",
			 d->flush_failures);
	d->flush_failures = 0;
	due_add(d, fv);
	for (int i = 0; i < PQntuples(res); i++)
		log_warn("delivery endpoint %s (workspace %s): disabled: %s",
			 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			 PQgetvalue(res, i, 2));
	for (size_t i = 0; i < fv->n; i++) {
		if (fv->v[i].gone_ep != NULL)
			ep_gone_written(fv->v[i].gone_ep);
		result_clear(&fv->v[i]);
	}
	fv->n = 0;
	if (d->pending.n > 0)
		flush_start(d);
	maybe_done(d);
}

static void
flush_start(struct delivery *d)
{
	struct sbuf ids = {0}, outs = {0}, delays = {0}, statuses = {0},
		    lats = {0}, errs = {0}, snips = {0};
	char *p[9], disable[24];
	size_t n;

	if (d->flush_running || d->pending.n == 0)
		return;
	evtimer_del(d->flush_ev);
	n = d->pending.n < FLUSH_MAX ? d->pending.n : FLUSH_MAX;
	for (size_t i = 0; i < n; i++)
		results_push(&d->flushing, &d->pending.v[i]);
	memmove(d->pending.v, d->pending.v + n,
		(d->pending.n - n) * sizeof *d->pending.v);
	d->pending.n -= n;

	for (size_t i = 0; i < n; i++) {
		const struct result *r = &d->flushing.v[i];
		const char *sep = i == 0 ? "{" : ",";

		sbuf_add(&ids, sep);
		sbuf_addi(&ids, r->id);
		sbuf_add(&outs, sep);
		sbuf_add_elem(&outs, outcome_names[r->outcome]);
		sbuf_add(&delays, sep);
		sbuf_addi(&delays, r->delay_ms);
		sbuf_add(&statuses, sep);
		if (r->status > 0)
			sbuf_addi(&statuses, r->status);
		else
			sbuf_add(&statuses, "NULL");
		sbuf_add(&lats, sep);
		sbuf_addi(&lats, r->latency_ms);
		sbuf_add(&errs, sep);
		sbuf_add_elem(&errs, r->error);
		sbuf_add(&snips, sep);
		sbuf_add_elem(&snips, r->snippet);
	}
	sbuf_addc(&ids, '}');
	sbuf_addc(&outs, '}');
	sbuf_addc(&delays, '}');
	sbuf_addc(&statuses, '}');
	sbuf_addc(&lats, '}');
	sbuf_addc(&errs, '}');
	sbuf_addc(&snips, '}');
	snprintf(disable, sizeof disable, "%" PRId64, d->opts.disable_after_ms);
	p[0] = d->owner;
	p[1] = sbuf_take(&ids);
	p[2] = sbuf_take(&outs);
	p[3] = sbuf_take(&delays);
	p[4] = sbuf_take(&statuses);
	p[5] = sbuf_take(&lats);
	p[6] = sbuf_take(&errs);
	p[7] = sbuf_take(&snips);
	/* No time limit on failing: never disable. */
	p[8] = d->opts.disable_after_ms > 0 ? disable : NULL;
	d->flush_running = true;
	db_query(d->db, sql_results, 9, (const char *const *)p, flushed, d);
	for (int i = 1; i < 8; i++)
		free(p[i]);
}

/* ---- claiming ---- */

static char **
parse_secrets(const char *text, int *n)
{
	json_error_t err;
	json_t *a = json_loads(text, 0, &err), *v;
	char **out;
	size_t i;

	*n = 0;
	if (!json_is_array(a)) {
		json_decref(a);
		return NULL;
	}
	out = xcalloc(json_array_size(a) + 1, sizeof *out);
	json_array_foreach(a, i, v)
	{
		if (json_is_string(v))
			out[(*n)++] = xstrdup(json_string_value(v));
	}
	json_decref(a);
	return out;
}

/*
 * Adopts the claimed or handed-over rows of res, from column col on: id,
 * endpoint_id, message_id, attempt, payload, endpoint_url, headers,
 * max_in_flight, rate_limit_per_second, secrets (a JSON array); rows with
 * a null id are skipped.  Returns the jobs made.
 */
static int
adopt_rows(struct delivery *d, const PGresult *res, int col)
{
	struct endpoint *ep;
	int n = PQntuples(res), taken = 0;

	for (int i = 0; i < n; i++) {
		int64_t id;
		struct job *j;

		if (PQgetisnull(res, i, col))
			continue;
		id = strtoll(PQgetvalue(res, i, col), NULL, 10);
		/* A lease of ours that expired and came back: the job we
		 * hold stands, and a result for it not yet written is
		 * stale. */
		if (job_held(d, id))
			continue;
		for (size_t k = 0; k < d->pending.n; k++) {
			struct result *r = &d->pending.v[k];

			if (r->id != id)
				continue;
			if (r->gone_ep != NULL)
				ep_gone_written(r->gone_ep);
			result_clear(r);
			memmove(r, r + 1, (d->pending.n - k - 1) * sizeof *r);
			d->pending.n--;
			break;
		}
		ep = ep_get(d, PQgetvalue(res, i, col + 1));
		ep->max_in_flight = atoi(PQgetvalue(res, i, col + 7));
		if (ep->max_in_flight < 1)
			ep->max_in_flight = 1;
		ep->rate = PQgetisnull(res, i, col + 8)
			       ? 0
			       : atoi(PQgetvalue(res, i, col + 8));
		ep->last_used = mono_ms();

		j = xcalloc(1, sizeof *j);
		j->d = d;
		j->ep = ep;
		j->id = id;
		j->message_id = xstrdup(PQgetvalue(res, i, col + 2));
		j->attempt = atoi(PQgetvalue(res, i, col + 3));
		j->payload_len = (size_t)PQgetlength(res, i, col + 4);
		j->payload =
		    xstrndup(PQgetvalue(res, i, col + 4), j->payload_len);
		j->url = xstrdup(PQgetvalue(res, i, col + 5));
		j->headers = xstrdup(PQgetvalue(res, i, col + 6));
		j->secrets =
		    parse_secrets(PQgetvalue(res, i, col + 9), &j->nsecrets);
		LIST_INSERT_HEAD(&d->jobs, j, all);
		TAILQ_INSERT_TAIL(&ep->queue, j, queue);
		ep->nqueued++;
		d->nqueued++;
		taken++;
	}
	return taken;
}

/* Starts what the endpoints' queues allow (releases it when stopping). */
static void
pump_queues(struct delivery *d)
{
	struct endpoint *ep;
	bool was;

	/* pump_starved reorders the list: not while it is walked here. */
	was = d->pumping_starved;
	d->pumping_starved = true;
	TAILQ_FOREACH(ep, &d->endpoints, all)
	{
		if (TAILQ_EMPTY(&ep->queue))
			continue;
		if (d->stopping)
			ep_release_queue(ep, 0);
		else if (ep->circuit == CIRCUIT_OPEN)
			/* Opened while the claim ran. */
			ep_release_queue(ep, ep->open_until - mono_ms());
		else
			ep_pump(ep);
	}
	d->pumping_starved = was;
}

static void
claimed(PGresult *res, const char *error, void *arg)
{
	struct delivery *d = arg;
	int n, taken;

	d->claiming = false;
	if (error != NULL) {
		if (d->claim_failures++ % CLAIM_WARN_EVERY == 0)
			log_warn("delivery: claiming deliveries failed: %s",
				 error);
		maybe_done(d);
		return;
	}
	if (d->claim_failures > 0)
		log_info("delivery: claiming works again");
	d->claim_failures = 0;
	n = PQntuples(res);
	taken = adopt_rows(d, res, 0);
	if (n > 0)
		log_debug("delivery: claimed %d deliveries (%d new)", n, taken);
	pump_queues(d);
	if (d->stopping) {
		maybe_done(d);
		return;
	}
	if (n >= d->claim_limit || d->wake_pending) {
		d->wake_pending = false;
		if (claim_cap(d) - d->nqueued > 0)
			claim_maybe(d);
		else
			d->more_due = true;
	}
}

/*
 * The endpoints a claim leaves out, as a uuid[] literal: full here, or
 * their circuit open.
 */
static char *
skip_literal(struct delivery *d)
{
	struct sbuf skip = {0};
	struct endpoint *ep;

	sbuf_addc(&skip, '{');
	TAILQ_FOREACH(ep, &d->endpoints, all)
	{
		if (!ep_skip(ep))
			continue;
		if (skip.len > 1)
			sbuf_addc(&skip, ',');
		sbuf_add(&skip, ep->id);
		if (!ep->gone && ep->circuit != CIRCUIT_OPEN)
			ep->skipped = true;
	}
	sbuf_addc(&skip, '}');
	return sbuf_take(&skip);
}

static void
claim_maybe(struct delivery *d)
{
	char limit[16], lease[24], *skipv;
	const char *params[4];
	int room;

	if (d->stopping || d->claiming)
		return;
	room = claim_cap(d) - d->nqueued;
	if (room <= 0) {
		d->more_due = true;
		return;
	}
	d->claim_limit = room < d->opts.batch_size ? room : d->opts.batch_size;
	skipv = skip_literal(d);
	snprintf(limit, sizeof limit, "%d", d->claim_limit);
	snprintf(lease, sizeof lease, "%" PRId64, d->opts.lease_ms);
	params[0] = d->owner;
	params[1] = limit;
	params[2] = lease;
	params[3] = skipv;
	d->claiming = true;
	db_query(d->db, sql_claim, 4, params, claimed, d);
	free(skipv);
}

void
delivery_handoff_prepare(struct delivery *d, struct delivery_handoff *h)
{
	int room = claim_cap(d) - d->nqueued;

	/* A claim in flight may fill its limit. */
	if (d->claiming)
		room -= d->claim_limit;
	if (d->stopping || room < 0)
		room = 0;
	snprintf(h->owner, sizeof h->owner, "%s", d->owner);
	snprintf(h->room, sizeof h->room, "%d", room);
	snprintf(h->lease_ms, sizeof h->lease_ms, "%" PRId64, d->opts.lease_ms);
	h->skip = skip_literal(d);
}

void
delivery_take(struct delivery *d, const PGresult *res, int col)
{
	int taken = adopt_rows(d, res, col);

	if (taken == 0)
		return;
	metrics_counter_add("linkpulse_delivery_handed_over_total",
			    "Deliveries the outbox handed to this engine "
			    "without a claim.",
			    "", taken);
	log_debug("delivery: %d deliveries handed over", taken);
	pump_queues(d);
	if (d->stopping)
		maybe_done(d);
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;

	if (d->stopping)
		return;
	if (d->claiming) {
		d->wake_pending = true;
		return;
	}
	claim_maybe(d);
}

void
delivery_wake(struct delivery *d)
{
	/* Deferred to the loop: a burst of wake-ups is one claim. */
	event_active(d->wake_ev, EV_TIMEOUT, 0);
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	wake_cb(fd, what, arg);
}

/* ---- upkeep: leases, retention, queue gauges ---- */

static void
renewed(PGresult *res, const char *error, void *arg)
{
	struct delivery *d = arg;

	d->renewing = false;
	if (error != NULL)
		log_warn("delivery: could not renew leases: %s", error);
}

static void
renew_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	struct sbuf ids = {0};
	struct job *j;
	char lease[24], *lit;
	const char *params[3];

	if (d->renewing)
		return;
	sbuf_addc(&ids, '{');
	LIST_FOREACH(j, &d->jobs, all)
	{
		if (ids.len > 1)
			sbuf_addc(&ids, ',');
		sbuf_addi(&ids, j->id);
	}
	for (int k = 0; k < 2; k++) {
		const struct result_vec *rv = k ? &d->flushing : &d->pending;

		for (size_t i = 0; i < rv->n; i++) {
			if (ids.len > 1)
				sbuf_addc(&ids, ',');
			sbuf_addi(&ids, rv->v[i].id);
		}
	}
	sbuf_addc(&ids, '}');
	lit = sbuf_take(&ids);
	if (strcmp(lit, "{}") != 0) {
		snprintf(lease, sizeof lease, "%" PRId64, d->opts.lease_ms);
		params[0] = d->owner;
		params[1] = lit;
		params[2] = lease;
		d->renewing = true;
		db_query_timeout(d->db, d->opts.lease_ms / 3, sql_renew, 3,
				 params, renewed, d);
	}
	free(lit);
}

static void prune_next(struct delivery *);

static void
pruned(PGresult *res, const char *error, void *arg)
{
	struct delivery *d = arg;
	int n;

	if (error != NULL) {
		log_warn("delivery: retention failed: %s", error);
		d->pruning = false;
		return;
	}
	n = atoi(PQgetvalue(res, 0, 0));
	d->pruned += n;
	if (n >= PRUNE_BATCH && !d->stopping) {
		prune_next(d);
		return;
	}
	if (d->pruned > 0)
		log_info("delivery: retention removed %" PRId64
			 " finished deliveries, attempts and messages",
			 d->pruned);
	d->pruning = false;
}

static void
prune_next(struct delivery *d)
{
	char age[24], limit[16];
	const char *params[2] = {age, limit};

	snprintf(age, sizeof age, "%" PRId64, d->opts.retention_ms);
	snprintf(limit, sizeof limit, "%d", PRUNE_BATCH);
	db_query(d->db, sql_prune, 2, params, pruned, d);
}

/* Every minute: retention, and forgetting idle endpoints. */
static void
prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	struct endpoint *ep, *next;
	int64_t now = mono_ms();

	timer_after(d->prune_ev, PRUNE_INTERVAL_MS);
	for (ep = TAILQ_FIRST(&d->endpoints); ep != NULL; ep = next) {
		next = TAILQ_NEXT(ep, all);
		if (ep->nqueued == 0 && ep->in_flight == 0 &&
		    ep->circuit == CIRCUIT_CLOSED && !ep->gone &&
		    ep->gone_unwritten == 0 &&
		    now - ep->last_used > ENDPOINT_IDLE_MS)
			ep_free(d, ep);
	}
	if (d->pruning || d->stopping || d->opts.retention_ms <= 0)
		return;
	d->pruning = true;
	d->pruned = 0;
	prune_next(d);
}

static void
stats_done(PGresult *res, const char *error, void *arg)
{
	struct delivery *d = arg;
	double queue[nitems(queue_states)] = {0};
	double eps[nitems(endpoint_statuses)] = {0};
	double oldest = 0;
	char labels[64];

	d->stats_running = false;
	if (error != NULL)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *kind = PQgetvalue(res, i, 0);
		const char *key = PQgetvalue(res, i, 1);
		double v = strtod(PQgetvalue(res, i, 2), NULL);

		if (strcmp(kind, "oldest") == 0) {
			oldest = v > 0 ? v : 0;
		} else if (strcmp(kind, "queue") == 0) {
			for (size_t k = 0; k < nitems(queue_states); k++) {
				if (strcmp(key, queue_states[k]) == 0)
					queue[k] = v;
			}
		} else {
			for (size_t k = 0; k < nitems(endpoint_statuses); k++) {
				/* WEBHOOK_STATUS_ACTIVE -> active */
				if (strlen(key) > 15 &&
				    strcasecmp(key + 15,
					       endpoint_statuses[k]) == 0)
					eps[k] = v;
			}
		}
	}
	for (size_t k = 0; k < nitems(queue_states); k++) {
		snprintf(labels, sizeof labels, "state=\"%s\"",
			 queue_states[k]);
		metrics_gauge_set("linkpulse_webhook_queue",
				  "Webhook deliveries in the database, by "
				  "state.",
				  labels, queue[k]);
	}
	metrics_gauge_set("linkpulse_webhook_oldest_due_seconds",
			  "How long the oldest due pending delivery has "
			  "waited.",
			  "", oldest);
	for (size_t k = 0; k < nitems(endpoint_statuses); k++) {
		snprintf(labels, sizeof labels, "status=\"%s\"",
			 endpoint_statuses[k]);
		metrics_gauge_set("linkpulse_webhook_endpoints",
				  "Webhook endpoints, by status.", labels,
				  eps[k]);
	}
}

static void
stats_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;

	if (d->stats_running || d->stopping)
		return;
	d->stats_running = true;
	db_query(d->db, sql_stats, 0, NULL, stats_done, d);
}

/* ---- life cycle ---- */

static void
apply_options(struct delivery *d, const struct delivery_options *o)
{
	const int64_t *sched = o->schedule_ms;
	int n = o->nschedule;

	d->opts = *o;
	if (sched == NULL || n <= 0) {
		sched = default_schedule;
		n = (int)nitems(default_schedule);
	}
	free(d->schedule);
	d->schedule = xcalloc((size_t)n, sizeof *d->schedule);
	memcpy(d->schedule, sched, (size_t)n * sizeof *d->schedule);
	d->opts.schedule_ms = d->schedule;
	d->opts.nschedule = n;
	if (d->opts.timeout_ms <= 0)
		d->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (d->opts.lease_ms <= d->opts.timeout_ms)
		d->opts.lease_ms = d->opts.timeout_ms + 30000;
	if (d->opts.batch_size <= 0)
		d->opts.batch_size = DEFAULT_BATCH;
	if (d->opts.max_connections <= 0)
		d->opts.max_connections = DEFAULT_CONNECTIONS;
	if (d->opts.jitter_percent < 0)
		d->opts.jitter_percent = 0;
	if (d->opts.jitter_percent > 100)
		d->opts.jitter_percent = 100;
	if (d->opts.circuit_cooldown_ms < 0)
		d->opts.circuit_cooldown_ms = 0;
	if (d->opts.guard == NULL) {
		if (d->own_guard == NULL)
			d->own_guard = netguard_new(NULL, 0, NULL);
		d->opts.guard = d->own_guard;
	}
	d->opts.instance = d->owner;
	curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
			  (long)d->opts.max_connections);
	/*
	 * Keep idle connections for reuse up to the same number: curl's
	 * default cache (four times the transfers running) shrinks whenever
	 * fewer requests are in flight and closes keep-alive connections
	 * that the next burst would have reused.
	 */
	curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS,
			  (long)d->opts.max_connections);
}

static void done_cb(evutil_socket_t, short, void *);

struct delivery *
delivery_new(struct event_base *base, struct db_pool *db,
	     const struct delivery_options *opts)
{
	struct delivery *d = xcalloc(1, sizeof *d);
	struct timeval poll_tv = {POLL_MS / 1000, (POLL_MS % 1000) * 1000};
	struct timeval stats = {STATS_INTERVAL_MS / 1000, 0};
	char host[64] = "localhost";
	char *tail;

	d->base = base;
	d->db = db;
	if (opts->instance != NULL && opts->instance[0] != '\0') {
		d->owner = xstrdup(opts->instance);
	} else {
		gethostname(host, sizeof host - 1);
		tail = random_base62(6);
		d->owner = xprintf("%s:%d:%s", host, (int)getpid(), tail);
		free(tail);
	}
	random_bytes(&d->rng, sizeof d->rng);
	d->rng |= 1;
	TAILQ_INIT(&d->endpoints);
	LIST_INIT(&d->jobs);
	LIST_INIT(&d->socks);
	d->nbuckets = 64;
	d->buckets = xcalloc(d->nbuckets, sizeof *d->buckets);

	d->multi = curl_multi_init();
	if (d->multi == NULL)
		fatal("delivery: curl_multi_init failed");
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, curl_timer_fn);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_PIPELINING,
			  (long)CURLPIPE_MULTIPLEX);
	apply_options(d, opts);

	d->curl_timer = evtimer_new(base, curl_timer_cb, d);
	d->wake_ev = event_new(base, -1, 0, wake_cb, d);
	d->poll_ev = event_new(base, -1, EV_PERSIST, poll_cb, d);
	d->due_ev = evtimer_new(base, due_cb, d);
	d->due = xcalloc(DUE_MAX, sizeof *d->due);
	d->flush_ev = evtimer_new(base, flush_timer_cb, d);
	d->renew_ev = event_new(base, -1, EV_PERSIST, renew_cb, d);
	d->prune_ev = evtimer_new(base, prune_cb, d);
	d->stats_ev = event_new(base, -1, EV_PERSIST, stats_cb, d);
	d->done_ev = event_new(base, -1, 0, done_cb, d);
	if (d->curl_timer == NULL || d->wake_ev == NULL || d->poll_ev == NULL ||
	    d->due_ev == NULL || d->flush_ev == NULL || d->renew_ev == NULL ||
	    d->prune_ev == NULL || d->stats_ev == NULL || d->done_ev == NULL)
		fatal("delivery: cannot create events");
	event_add(d->poll_ev, &poll_tv);
	timer_after(d->renew_ev, d->opts.lease_ms / 3);
	timer_after(d->prune_ev, PRUNE_FIRST_MS);
	event_add(d->stats_ev, &stats);
	event_active(d->stats_ev, EV_TIMEOUT, 0);
	delivery_wake(d);

	for (int o = 0; o < (int)nitems(outcome_names); o++)
		count_outcome((enum outcome)o, 0);
	set_in_flight_metric(d);
	set_circuit_metric(d);
	log_info("delivery: instance %s, claims of up to %d, %d attempt(s), "
		 "up to %d connections",
		 d->owner, d->opts.batch_size, d->opts.nschedule,
		 d->opts.max_connections);
	return d;
}

void
delivery_set_options(struct delivery *d, const struct delivery_options *o)
{
	int64_t lease = d->opts.lease_ms;

	apply_options(d, o);
	if (d->opts.lease_ms != lease)
		timer_after(d->renew_ev, d->opts.lease_ms / 3);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	void (*done)(void *) = d->stop_done;

	d->stop_done = NULL;
	event_del(d->renew_ev);
	log_info("delivery: stopped");
	if (done != NULL)
		done(d->stop_arg);
}

/* While stopping: done once nothing is left to finish or write. */
static void
maybe_done(struct delivery *d)
{
	if (!d->stopping || d->stop_done == NULL)
		return;
	if (d->claiming || d->in_flight > 0 || d->pending.n > 0 ||
	    d->flush_running || d->releases > 0)
		return;
	/* From the loop, never inside the caller's own call. */
	event_active(d->done_ev, EV_TIMEOUT, 0);
}

void
delivery_stop(struct delivery *d, void (*done)(void *), void *arg)
{
	struct endpoint *ep;

	d->stopping = true;
	d->stop_done = done;
	d->stop_arg = arg;
	event_del(d->poll_ev);
	event_del(d->due_ev);
	event_del(d->prune_ev);
	event_del(d->stats_ev);
	TAILQ_FOREACH(ep, &d->endpoints, all)
	{
		evtimer_del(ep->timer);
		ep_release_queue(ep, 0);
	}
	if (d->in_flight > 0)
		log_info("delivery: stopping; waiting for %d request(s) in "
			 "flight",
			 d->in_flight);
	flush_start(d);
	maybe_done(d);
}

void
delivery_free(struct delivery *d)
{
	struct endpoint *ep;
	struct job *j;
	struct sock *s;

	if (d == NULL)
		return;
	while ((j = LIST_FIRST(&d->jobs)) != NULL)
		job_free(j);
	curl_multi_cleanup(d->multi);
	while ((s = LIST_FIRST(&d->socks)) != NULL)
		sock_free(s);
	while ((ep = TAILQ_FIRST(&d->endpoints)) != NULL)
		ep_free(d, ep);
	for (size_t i = 0; i < d->pending.n; i++)
		result_clear(&d->pending.v[i]);
	for (size_t i = 0; i < d->flushing.n; i++)
		result_clear(&d->flushing.v[i]);
	free(d->pending.v);
	free(d->flushing.v);
	event_free(d->curl_timer);
	event_free(d->wake_ev);
	event_free(d->poll_ev);
	event_free(d->due_ev);
	free(d->due);
	event_free(d->flush_ev);
	event_free(d->renew_ev);
	event_free(d->prune_ev);
	event_free(d->stats_ev);
	event_free(d->done_ev);
	free(d->buckets);
	free(d->schedule);
	netguard_free(d->own_guard);
	free(d->owner);
	free(d);
}
