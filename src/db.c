/*
 * db.c - asynchronous PostgreSQL on the event loop, behind db.h.  Owns the
 * pool's libpq connections, the queue of requests waiting for one, held
 * connections (transactions) and the listening connection.  Calls libpq in
 * non-blocking mode only, libevent, util.c and log.c; called by main.c and
 * by every module that reads or writes the database.
 *
 * Every connection, pooled or listening, is a struct db_link: a PGconn, one
 * one-shot event on its socket that is re-armed after every wake-up (libpq
 * may swap the socket while connecting), and one timer whose meaning follows
 * the state: the backoff before a retry, the connect timeout, or the
 * client-side limit on the command in flight.  The link code only reports
 * what happened (connected, failed, done, lost); the pool and the listener
 * decide what that means and run the callbacks.
 *
 * Callbacks may free the pool or the listener.  Every entry from the loop
 * counts itself in depth; a free inside a callback only closes, and the
 * memory goes when the outermost entry returns.  Code that ran a callback
 * checks closed before it touches anything else.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "db.h"
#include "log.h"
#include "util.h"

/* The server gets this long past its statement_timeout before we give up. */
#define DB_SAFETY_MS 5000
/* Client-side limit on our own commands: set_config, ROLLBACK, LISTEN. */
#define DB_INTERNAL_LIMIT_MS	30000
#define DB_DEFAULT_RECONNECT_MS 250
#define DB_WARN_EVERY		10

static const char SQL_SET_TIMEOUT[] =
    "SELECT pg_catalog.set_config('statement_timeout', $1, false)";

struct db_cfg {
	char *conninfo;
	char *appname;
	bool has_password; /* libpq's parse errors may quote conninfo */
	int pool_size;
	int64_t statement_timeout_ms;
	int64_t connect_timeout_ms;
	int64_t reconnect_min_ms;
	int64_t reconnect_max_ms;
};

/* ---- one libpq connection on the loop ---- */

enum link_state {
	LINK_DOWN,	 /* no PGconn; the timer is the backoff */
	LINK_CONNECTING, /* PQconnectPoll running; the timer is the limit */
	LINK_IDLE,	 /* no command; reading only to notice a close */
	LINK_BUSY,	 /* a command in flight; the timer is its limit */
};

enum link_event {
	LINK_WAIT,	/* nothing new: wait for the next wake-up */
	LINK_CONNECTED, /* now LINK_IDLE */
	LINK_FAILED,	/* a connection attempt failed; why says why */
	LINK_DONE,	/* the command ended; result in res (NULL: why) */
	LINK_LOST,	/* a working connection broke; why says why */
};

struct db_link {
	struct event_base *base;
	const struct db_cfg *cfg;
	char name[32]; /* "connection 3", for log lines */
	enum link_state state;
	PGconn *pg;
	struct event *ev; /* one-shot, on PQsocket */
	int ev_fd;
	short ev_what;
	struct event *timer;
	event_callback_fn io_cb;
	void *cb_arg;
	bool flushing;
	PGresult *res;	 /* last result of the command in flight */
	int attempt;	 /* failed attempts since the last connect */
	bool ever_up;	 /* connected once: the next connect is a reconnect */
	char why[256];	 /* one line: why the last attempt failed or broke */
	char fatal[256]; /* a FATAL the server sent while we were idle */
};

/* Copies a libpq message onto one line: line breaks become one space. */
static void
one_line(char *dst, size_t len, const char *src)
{
	size_t n = 0;
	bool gap = false;

	for (; *src != '\0' && n + 1 < len; src++) {
		if (*src == '\n' || *src == '\r' || *src == '\t') {
			gap = n > 0;
			continue;
		}
		if (gap) {
			dst[n++] = ' ';
			gap = false;
			if (n + 1 >= len)
				break;
		}
		dst[n++] = *src;
	}
	dst[n] = '\0';
}

/* The primary message of an error result, or its status name. */
static const char *
result_error(const PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	return msg != NULL ? msg : PQresStatus(PQresultStatus(res));
}

/* True for an error that ends the session, not just the statement. */
static bool
result_is_fatal(const PGresult *res)
{
	const char *sev =
	    PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	return sev != NULL &&
	       (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

static void
link_why_from_pg(struct db_link *l)
{
	if (l->fatal[0] != '\0')
		snprintf(l->why, sizeof l->why, "%s", l->fatal);
	else if (l->pg != NULL && *PQerrorMessage(l->pg) != '\0')
		one_line(l->why, sizeof l->why, PQerrorMessage(l->pg));
	else
		snprintf(l->why, sizeof l->why, "connection failed");
}

/*
 * Server messages outside a result.  A FATAL while idle (an administrator
 * terminating the backend, a shutdown) comes this way just before the
 * close; keep it so the loss is logged with its real reason.
 */
static void
link_notice(void *arg, const PGresult *res)
{
	struct db_link *l = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (msg == NULL)
		return;
	if (result_is_fatal(res)) {
		one_line(l->fatal, sizeof l->fatal, msg);
		return;
	}
	log_debug("database: %s: %s: %s", l->name, sev != NULL ? sev : "NOTICE",
		  msg);
}

static void
link_init(struct db_link *l, struct event_base *base, const struct db_cfg *cfg,
	  const char *name, event_callback_fn io_cb, event_callback_fn timer_cb,
	  void *arg)
{
	memset(l, 0, sizeof *l);
	l->base = base;
	l->cfg = cfg;
	snprintf(l->name, sizeof l->name, "%s", name);
	l->state = LINK_DOWN;
	l->ev_fd = -1;
	l->io_cb = io_cb;
	l->cb_arg = arg;
	l->timer = evtimer_new(base, timer_cb, arg);
	if (l->timer == NULL)
		fatal("database: cannot create a timer");
}

static void
link_timer(struct db_link *l, int64_t ms)
{
	timer_after(l->timer, ms);
}

/*
 * Waits for what on the connection's socket.  The event is one-shot and
 * made anew whenever the socket or the interest changes: PQconnectPoll may
 * close a socket and open another, possibly under the same number, and a
 * stale registration would never fire.
 */
static int
link_arm(struct db_link *l, short what)
{
	int fd = PQsocket(l->pg);

	if (fd < 0)
		return -1;
	if (l->ev != NULL && (l->ev_fd != fd || l->ev_what != what)) {
		event_free(l->ev);
		l->ev = NULL;
	}
	if (l->ev == NULL) {
		l->ev = event_new(l->base, fd, what, l->io_cb, l->cb_arg);
		if (l->ev == NULL)
			return -1;
		l->ev_fd = fd;
		l->ev_what = what;
	}
	return event_add(l->ev, NULL);
}

/* Closes the connection, if any; runs no callback. */
static void
link_drop(struct db_link *l)
{
	/* Before PQfinish closes the socket the event is registered on. */
	if (l->ev != NULL)
		event_del(l->ev);
	evtimer_del(l->timer);
	if (l->res != NULL) {
		PQclear(l->res);
		l->res = NULL;
	}
	if (l->pg != NULL) {
		PQfinish(l->pg);
		l->pg = NULL;
	}
	l->state = LINK_DOWN;
	l->flushing = false;
}

/* Frees everything; the link is unusable afterwards. */
static void
link_free(struct db_link *l)
{
	link_drop(l);
	if (l->ev != NULL)
		event_free(l->ev);
	if (l->timer != NULL)
		event_free(l->timer);
	l->ev = l->timer = NULL;
}

/* Arms the backoff before the next attempt; returns its length. */
static int64_t
link_retry(struct db_link *l)
{
	int64_t ms = db_backoff_ms(l->attempt, l->cfg->reconnect_min_ms,
				   l->cfg->reconnect_max_ms);

	if (l->attempt < 62)
		l->attempt++;
	link_timer(l, ms);
	return ms;
}

/* Starts a connection attempt; -1 (why set) if it failed at once. */
static int
link_start(struct db_link *l)
{
	const char *keys[7], *vals[7];
	int n = 0;

	/*
	 * Ours come before dbname, which expands the configured string, so
	 * that anything it says wins.  Keepalives notice a server that
	 * vanished without closing the connection, on TCP only.
	 */
	keys[n] = "application_name";
	vals[n++] = l->cfg->appname;
	keys[n] = "keepalives_idle";
	vals[n++] = "30";
	keys[n] = "keepalives_interval";
	vals[n++] = "10";
	keys[n] = "keepalives_count";
	vals[n++] = "3";
	keys[n] = "dbname";
	vals[n++] = l->cfg->conninfo;
	keys[n] = NULL;
	vals[n] = NULL;

	l->why[0] = l->fatal[0] = '\0';
	l->pg = PQconnectStartParams(keys, vals, 1);
	if (l->pg == NULL) {
		snprintf(l->why, sizeof l->why, "out of memory");
		return -1;
	}
	if (PQstatus(l->pg) == CONNECTION_BAD) {
		/* A parse error, which may quote part of the password. */
		if (l->cfg->has_password)
			snprintf(l->why, sizeof l->why,
				 "invalid connection string (details withheld: "
				 "it holds a password)");
		else
			link_why_from_pg(l);
		return -1;
	}
	PQsetNoticeReceiver(l->pg, link_notice, l);
	l->state = LINK_CONNECTING;
	/* libpq's own connect_timeout only works for blocking connects. */
	if (l->cfg->connect_timeout_ms > 0)
		link_timer(l, l->cfg->connect_timeout_ms);
	/* As libpq's documentation says: start as if polling for write. */
	if (link_arm(l, EV_WRITE) != 0) {
		link_why_from_pg(l);
		return -1;
	}
	return 0;
}

static enum link_event
link_lost(struct db_link *l)
{
	link_why_from_pg(l);
	return LINK_LOST;
}

/* Flushes what is still to send, then reads results until none is left. */
static enum link_event
link_busy_io(struct db_link *l, short what)
{
	if ((what & EV_READ) && !PQconsumeInput(l->pg))
		return link_lost(l);
	if (l->flushing) {
		int rc = PQflush(l->pg);

		if (rc < 0)
			return link_lost(l);
		if (rc > 0) {
			/* Reading too: the server may wait for us to read. */
			if (link_arm(l, EV_READ | EV_WRITE) != 0)
				return link_lost(l);
			return LINK_WAIT;
		}
		l->flushing = false;
	}
	while (!PQisBusy(l->pg)) {
		PGresult *res = PQgetResult(l->pg);
		ExecStatusType st;

		if (res == NULL) {
			evtimer_del(l->timer);
			l->state = LINK_IDLE;
			if (PQstatus(l->pg) == CONNECTION_BAD ||
			    link_arm(l, EV_READ) != 0)
				return link_lost(l);
			return LINK_DONE;
		}
		st = PQresultStatus(res);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
		    st == PGRES_COPY_BOTH) {
			/* Nothing here speaks COPY: it would never end. */
			PQclear(res);
			snprintf(l->why, sizeof l->why,
				 "COPY is not supported");
			return LINK_LOST;
		}
		if (l->res != NULL)
			PQclear(l->res);
		l->res = res;
	}
	if (PQstatus(l->pg) == CONNECTION_BAD || link_arm(l, EV_READ) != 0)
		return link_lost(l);
	return LINK_WAIT;
}

/*
 * Reads what an idle connection has pending.  A FATAL while idle means the
 * server is about to close it (shutdown, terminated backend), even though
 * the close itself may not have arrived yet.
 */
static enum link_event
link_check(struct db_link *l)
{
	if (!PQconsumeInput(l->pg))
		return link_lost(l);
	/* PQconsumeInput only reads; parsing, which finds a FATAL, is here. */
	(void)PQisBusy(l->pg);
	if (PQstatus(l->pg) == CONNECTION_BAD || l->fatal[0] != '\0')
		return link_lost(l);
	return LINK_WAIT;
}

/* Reacts to a wake-up of the socket. */
static enum link_event
link_io(struct db_link *l, short what)
{
	switch (l->state) {
	case LINK_CONNECTING:
		switch (PQconnectPoll(l->pg)) {
		case PGRES_POLLING_READING:
			if (link_arm(l, EV_READ) != 0)
				break;
			return LINK_WAIT;
		case PGRES_POLLING_WRITING:
			if (link_arm(l, EV_WRITE) != 0)
				break;
			return LINK_WAIT;
		case PGRES_POLLING_OK:
			evtimer_del(l->timer);
			if (PQsetnonblocking(l->pg, 1) != 0)
				break;
			l->state = LINK_IDLE;
			if (link_arm(l, EV_READ) != 0)
				break;
			l->attempt = 0;
			l->fatal[0] = '\0';
			return LINK_CONNECTED;
		default:
			break;
		}
		link_why_from_pg(l);
		return LINK_FAILED;
	case LINK_IDLE:
		if (link_check(l) != LINK_WAIT || link_arm(l, EV_READ) != 0)
			return link_lost(l);
		return LINK_WAIT;
	case LINK_BUSY:
		return link_busy_io(l, what);
	case LINK_DOWN:
		break;
	}
	return LINK_WAIT;
}

/*
 * Sends one command.  simple uses the simple protocol, for our own
 * parameterless commands.  limit_ms > 0 arms the client-side limit.
 * LINK_DONE with no result means libpq refused the command but the
 * connection is fine (why says why).
 */
static enum link_event
link_send(struct db_link *l, bool simple, const char *sql, int nparams,
	  const char *const *params, int64_t limit_ms)
{
	int ok;

	l->why[0] = '\0';
	if (simple)
		ok = PQsendQuery(l->pg, sql);
	else
		ok = PQsendQueryParams(l->pg, sql, nparams, NULL, params, NULL,
				       NULL, 0);
	if (!ok) {
		if (PQstatus(l->pg) == CONNECTION_BAD)
			return link_lost(l);
		one_line(l->why, sizeof l->why, PQerrorMessage(l->pg));
		return LINK_DONE;
	}
	l->state = LINK_BUSY;
	l->flushing = true;
	if (limit_ms > 0)
		link_timer(l, limit_ms);
	return link_busy_io(l, 0);
}

/* ---- configuration ---- */

/*
 * True when the connection string may hold a password: a password
 * keyword or parameter, or user:password@ in a URL.
 */
static bool
conninfo_has_password(const char *s)
{
	const char *auth, *at, *end;

	if (strstr(s, "password") != NULL)
		return true;
	if (strncmp(s, "postgres://", 11) == 0)
		auth = s + 11;
	else if (strncmp(s, "postgresql://", 13) == 0)
		auth = s + 13;
	else
		return false;
	end = auth + strcspn(auth, "/?");
	at = memchr(auth, '@', (size_t)(end - auth));
	return at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL;
}

static void
cfg_init(struct db_cfg *c, const struct db_options *o)
{
	const char *app = o->application_name;

	c->conninfo = xstrdup(o->conninfo != NULL ? o->conninfo : "");
	c->appname = xstrdup(app != NULL && *app != '\0' ? app : "linkpulsed");
	c->has_password = conninfo_has_password(c->conninfo);
	c->pool_size = o->pool_size > 0 ? o->pool_size : 1;
	c->statement_timeout_ms =
	    o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 0;
	c->connect_timeout_ms = o->connect_timeout_ms;
	c->reconnect_min_ms = o->reconnect_min_ms > 0 ? o->reconnect_min_ms
						      : DB_DEFAULT_RECONNECT_MS;
	c->reconnect_max_ms = o->reconnect_max_ms > c->reconnect_min_ms
				  ? o->reconnect_max_ms
				  : c->reconnect_min_ms;
}

static void
cfg_free(struct db_cfg *c)
{
	free(c->conninfo);
	free(c->appname);
}

/* Failed attempts in a row warn at first, then only now and then. */
static enum log_level
conn_failure_level(int attempt)
{
	if (attempt <= 1 || attempt % DB_WARN_EVERY == 0)
		return LP_LOG_WARN;
	return LP_LOG_DEBUG;
}

int64_t
db_backoff_ms(int attempt, int64_t min_ms, int64_t max_ms)
{
	int64_t hi;
	uint64_t r;

	if (min_ms < 0)
		min_ms = 0;
	if (max_ms < min_ms)
		max_ms = min_ms;
	hi = min_ms;
	for (int i = 0; i < attempt && hi < max_ms; i++)
		hi = hi > max_ms / 2 ? max_ms : hi * 2;
	if (hi <= min_ms)
		return min_ms;
	random_bytes(&r, sizeof r);
	return min_ms + (int64_t)(r % (uint64_t)(hi - min_ms + 1));
}

bool
db_ok(const PGresult *res)
{
	ExecStatusType st;

	if (res == NULL)
		return false;
	st = PQresultStatus(res);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* ---- the pool ---- */

enum req_kind { REQ_QUERY, REQ_ACQUIRE };

/* A query, or a db_acquire waiting for a connection. */
struct db_req {
	TAILQ_ENTRY(db_req) entry;
	struct db_pool *pool;
	enum req_kind kind;
	char *sql;
	int nparams;
	char **params;
	int64_t timeout_ms; /* resolved: 0 for none */
	db_result_fn fn;
	db_conn_fn acquire_fn;
	void *arg;
	struct event *wait_timer; /* while in the pool's queue */
};
TAILQ_HEAD(db_reqq, db_req);

enum conn_op {
	OP_NONE,
	OP_TIMEOUT,  /* set_config before the query in req */
	OP_QUERY,    /* the query in req */
	OP_ROLLBACK, /* before reuse, after a transaction was left open */
};

struct db_conn {
	struct db_link link;
	struct db_pool *pool;
	enum conn_op op;
	struct db_req *req;	/* the query being run */
	int64_t server_timeout; /* statement_timeout in effect; -1: unknown */
	int64_t pending_timeout;
	bool set_in_xact;     /* the set_config in flight is in a transaction */
	bool timeout_in_xact; /* and a rollback would undo it */
	bool held;	      /* given out by db_acquire */
	bool poisoned;	      /* lost while held: fail its queries */
	bool releasing;	      /* db_release called */
	struct db_reqq queue; /* queries for the holder, in order */
};

struct db_pool {
	struct event_base *base;
	struct db_cfg cfg;
	struct db_conn *conns;
	int nconns;
	struct db_reqq queue; /* waiting for a connection, oldest first */
	int nwaiting;
	struct event *kick; /* runs conn_next everywhere, from the loop */
	int depth;	    /* entries from the loop on the stack */
	bool closed;	    /* db_pool_free was called */
	bool announced;	    /* "pool ready" was logged */
	/* queries counts every finished query; errors, the failed ones. */
	uint64_t queries, errors, reconnects;
};

static void conn_next(struct db_conn *);
static void conn_event(struct db_conn *, enum link_event);

static struct db_req *
req_new(struct db_pool *p, enum req_kind kind, int64_t timeout_ms,
	const char *sql, int nparams, const char *const *params)
{
	struct db_req *r = xcalloc(1, sizeof *r);

	r->pool = p;
	r->kind = kind;
	if (timeout_ms == 0)
		timeout_ms = p->cfg.statement_timeout_ms;
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
	if (sql != NULL)
		r->sql = xstrdup(sql);
	if (nparams > 0) {
		r->nparams = nparams;
		r->params = xcalloc((size_t)nparams, sizeof *r->params);
		for (int i = 0; i < nparams; i++) {
			if (params != NULL && params[i] != NULL)
				r->params[i] = xstrdup(params[i]);
		}
	}
	return r;
}

static void
req_free(struct db_req *r)
{
	if (r->wait_timer != NULL)
		event_free(r->wait_timer);
	for (int i = 0; i < r->nparams; i++)
		free(r->params[i]);
	free(r->params);
	free(r->sql);
	free(r);
}

/*
 * Hands a request its outcome and frees it (and res).  Returns false when
 * the callback closed the pool: the caller must touch nothing then.
 */
static bool
req_finish(struct db_req *r, PGresult *res, const char *err)
{
	struct db_pool *p = r->pool;

	if (r->kind == REQ_ACQUIRE) {
		/* Only the pool's closing fails a db_acquire. */
		if (r->acquire_fn != NULL)
			r->acquire_fn(NULL, r->arg);
	} else {
		p->queries++;
		if (err != NULL)
			p->errors++;
		if (r->fn != NULL)
			r->fn(res, err, r->arg);
	}
	if (res != NULL)
		PQclear(res);
	req_free(r);
	return !p->closed;
}

/* Same, judging res: why explains a missing result. */
static bool
req_finish_result(struct db_req *r, PGresult *res, const char *why)
{
	const char *err = NULL;

	if (res == NULL)
		err = why != NULL && *why != '\0' ? why : "no result";
	else if (!db_ok(res))
		err = result_error(res);
	return req_finish(r, res, err);
}

static void
pool_unqueue(struct db_pool *p, struct db_req *r)
{
	TAILQ_REMOVE(&p->queue, r, entry);
	p->nwaiting--;
	if (r->wait_timer != NULL) {
		event_free(r->wait_timer);
		r->wait_timer = NULL;
	}
}

/* Runs conn_next on every connection from the loop, never from a caller. */
static void
pool_kick(struct db_pool *p)
{
	if (!p->closed)
		event_active(p->kick, EV_TIMEOUT, 1);
}

/*
 * Fails every request the pool still has, including those added by the
 * callbacks it runs.  Connections must be dropped already.
 */
static void
pool_drain(struct db_pool *p)
{
	static const char closed[] = "pool closed";
	struct db_req *r;
	bool again;

	do {
		again = false;
		while ((r = TAILQ_FIRST(&p->queue)) != NULL) {
			pool_unqueue(p, r);
			req_finish(r, NULL, closed);
			again = true;
		}
		for (int i = 0; i < p->nconns; i++) {
			struct db_conn *c = &p->conns[i];

			if ((r = c->req) != NULL) {
				c->req = NULL;
				req_finish(r, NULL, closed);
				again = true;
			}
			while ((r = TAILQ_FIRST(&c->queue)) != NULL) {
				TAILQ_REMOVE(&c->queue, r, entry);
				req_finish(r, NULL, closed);
				again = true;
			}
		}
	} while (again);
}

static void
pool_destroy(struct db_pool *p)
{
	/* A caller may have queued more after db_pool_free: fail those too. */
	p->depth++;
	pool_drain(p);
	for (int i = 0; i < p->nconns; i++)
		link_free(&p->conns[i].link);
	event_free(p->kick);
	cfg_free(&p->cfg);
	free(p->conns);
	free(p);
}

/* Every entry from the loop ends here. */
static void
pool_leave(struct db_pool *p)
{
	if (--p->depth == 0 && p->closed)
		pool_destroy(p);
}

static int
pool_connected(const struct db_pool *p)
{
	int n = 0;

	for (int i = 0; i < p->nconns; i++) {
		enum link_state st = p->conns[i].link.state;

		if (st == LINK_IDLE || st == LINK_BUSY)
			n++;
	}
	return n;
}

static void
conn_connect(struct db_conn *c)
{
	if (link_start(&c->link) == 0)
		return;
	conn_event(c, LINK_FAILED);
}

static void
conn_connect_failed(struct db_conn *c)
{
	struct db_link *l = &c->link;
	int attempt = l->attempt;
	int64_t ms;

	link_drop(l);
	ms = link_retry(l);
	log_msg(conn_failure_level(attempt),
		"database: %s: cannot connect: %s; retry in %" PRId64 " ms",
		l->name, l->why, ms);
}

static void
conn_connected(struct db_conn *c)
{
	struct db_pool *p = c->pool;

	c->server_timeout = -1;
	c->timeout_in_xact = false;
	if (c->link.ever_up) {
		p->reconnects++;
		log_info("database: %s re-established", c->link.name);
	}
	c->link.ever_up = true;
	if (!p->announced && pool_connected(p) == p->nconns) {
		p->announced = true;
		log_info("database: pool of %d connection%s ready", p->nconns,
			 p->nconns == 1 ? "" : "s");
	}
	conn_next(c);
}

/*
 * The connection broke: fail what ran on it, and reconnect after a
 * backoff.  user_err replaces the generic message for the failed query.
 */
static void
conn_lost(struct db_conn *c, const char *user_err)
{
	struct db_link *l = &c->link;
	struct db_req *r = c->req;
	char err[320];
	int64_t ms;

	/* A FATAL result (a terminated backend) says more than EOF does. */
	if (l->res != NULL && result_is_fatal(l->res))
		one_line(l->why, sizeof l->why, result_error(l->res));
	if (user_err != NULL)
		snprintf(err, sizeof err, "%s", user_err);
	else
		snprintf(err, sizeof err, "database connection lost: %s",
			 l->why);
	link_drop(l);
	ms = link_retry(l);
	log_warn("database: %s lost: %s; reconnecting in %" PRId64 " ms",
		 l->name, l->why, ms);
	c->req = NULL;
	c->op = OP_NONE;
	c->server_timeout = -1;
	c->timeout_in_xact = false;
	if (c->held)
		c->poisoned = true;
	if (r != NULL && !req_finish(r, NULL, err))
		return;
	conn_next(c);
}

/* A transaction ended: a set_config made inside it may be undone. */
static void
conn_track_xact(struct db_conn *c)
{
	if (c->timeout_in_xact &&
	    PQtransactionStatus(c->link.pg) == PQTRANS_IDLE) {
		c->server_timeout = -1;
		c->timeout_in_xact = false;
	}
}

static void
conn_send_query(struct db_conn *c)
{
	struct db_req *r = c->req;
	int64_t limit = r->timeout_ms > 0 ? r->timeout_ms + DB_SAFETY_MS : 0;

	c->op = OP_QUERY;
	conn_event(c, link_send(&c->link, false, r->sql, r->nparams,
				(const char *const *)r->params, limit));
}

/* Runs r, first setting the statement timeout it needs. */
static void
conn_start(struct db_conn *c, struct db_req *r)
{
	PGTransactionStatusType ts = PQtransactionStatus(c->link.pg);
	char val[32];
	const char *params[1] = {val};

	c->req = r;
	/* In a failed transaction set_config fails too: let ROLLBACK pass. */
	if (r->timeout_ms == c->server_timeout || ts == PQTRANS_INERROR) {
		conn_send_query(c);
		return;
	}
	if (r->timeout_ms > 0)
		snprintf(val, sizeof val, "%" PRId64 "ms", r->timeout_ms);
	else
		snprintf(val, sizeof val, "0");
	c->pending_timeout = r->timeout_ms;
	c->set_in_xact = ts == PQTRANS_INTRANS;
	c->op = OP_TIMEOUT;
	conn_event(c, link_send(&c->link, false, SQL_SET_TIMEOUT, 1, params,
				r->timeout_ms > 0 ? r->timeout_ms + DB_SAFETY_MS
						  : DB_INTERNAL_LIMIT_MS));
}

/* The command in flight ended (link is idle). */
static void
conn_done(struct db_conn *c)
{
	struct db_link *l = &c->link;
	PGresult *res = l->res;
	struct db_req *r = c->req;
	enum conn_op op = c->op;

	l->res = NULL;
	c->op = OP_NONE;
	switch (op) {
	case OP_TIMEOUT:
		if (db_ok(res)) {
			c->server_timeout = c->pending_timeout;
			if (c->set_in_xact)
				c->timeout_in_xact = true;
			PQclear(res);
			conn_send_query(c);
			return;
		}
		/* The query gets set_config's error as its own. */
		c->server_timeout = -1;
		break;
	case OP_ROLLBACK:
		if (res != NULL)
			PQclear(res);
		res = NULL;
		if (PQtransactionStatus(l->pg) != PQTRANS_IDLE) {
			snprintf(l->why, sizeof l->why,
				 "ROLLBACK did not end the transaction");
			conn_lost(c, NULL);
			return;
		}
		break;
	case OP_QUERY:
	case OP_NONE:
		break;
	}
	conn_track_xact(c);
	c->req = NULL;
	if (r != NULL) {
		if (!req_finish_result(r, res, l->why))
			return;
	} else if (res != NULL) {
		PQclear(res);
	}
	conn_next(c);
}

static void
conn_event(struct db_conn *c, enum link_event e)
{
	switch (e) {
	case LINK_WAIT:
		break;
	case LINK_CONNECTED:
		conn_connected(c);
		break;
	case LINK_FAILED:
		conn_connect_failed(c);
		break;
	case LINK_DONE:
		conn_done(c);
		break;
	case LINK_LOST:
		conn_lost(c, NULL);
		break;
	}
}

/*
 * Gives an idle connection its next work: the holder's queries, the end
 * of a hold, a ROLLBACK of a transaction left open, or the oldest waiting
 * request.  Runs callbacks; stops when the pool closes.
 */
static void
conn_next(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	struct db_req *r;

	while (!p->closed) {
		if (c->held) {
			if (c->poisoned) {
				/* Its session is gone: nothing runs on it. */
				if ((r = TAILQ_FIRST(&c->queue)) != NULL) {
					TAILQ_REMOVE(&c->queue, r, entry);
					req_finish(r, NULL,
						   "database connection lost "
						   "during the transaction");
					continue;
				}
				if (!c->releasing)
					return;
				c->held = c->poisoned = c->releasing = false;
				continue;
			}
			if (c->link.state != LINK_IDLE)
				return;
			if ((r = TAILQ_FIRST(&c->queue)) != NULL) {
				TAILQ_REMOVE(&c->queue, r, entry);
				conn_start(c, r);
				return;
			}
			if (!c->releasing)
				return;
			c->held = c->releasing = false;
			continue;
		}
		if ((r = TAILQ_FIRST(&c->queue)) != NULL) {
			TAILQ_REMOVE(&c->queue, r, entry);
			req_finish(r, NULL, "connection already released");
			continue;
		}
		if (c->link.state != LINK_IDLE)
			return;
		if (PQtransactionStatus(c->link.pg) != PQTRANS_IDLE) {
			c->op = OP_ROLLBACK;
			conn_event(c, link_send(&c->link, true, "ROLLBACK", 0,
						NULL, DB_INTERNAL_LIMIT_MS));
			return;
		}
		if ((r = TAILQ_FIRST(&p->queue)) == NULL)
			return;
		/*
		 * A connection that died while idle is found now, before r
		 * is sent on it, so that r waits for another instead of
		 * failing.
		 */
		if (link_check(&c->link) != LINK_WAIT) {
			conn_lost(c, NULL);
			return;
		}
		pool_unqueue(p, r);
		if (r->kind == REQ_ACQUIRE) {
			c->held = true;
			c->poisoned = c->releasing = false;
			if (r->acquire_fn != NULL)
				r->acquire_fn(c, r->arg);
			req_free(r);
			continue;
		}
		conn_start(c, r);
		return;
	}
}

static void
conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;
	struct db_pool *p = c->pool;
	enum link_event e;
	PGnotify *n;

	p->depth++;
	e = link_io(&c->link, what);
	/* Nobody listens on pool connections: do not let these pile up. */
	while (c->link.pg != NULL && (n = PQnotifies(c->link.pg)) != NULL)
		PQfreemem(n);
	conn_event(c, e);
	pool_leave(p);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;
	struct db_pool *p = c->pool;
	struct db_link *l = &c->link;

	p->depth++;
	switch (l->state) {
	case LINK_DOWN:
		conn_connect(c);
		break;
	case LINK_CONNECTING:
		snprintf(l->why, sizeof l->why,
			 "timed out after %" PRId64 " ms",
			 l->cfg->connect_timeout_ms);
		conn_event(c, LINK_FAILED);
		break;
	case LINK_BUSY:
		/* The server should have answered or cancelled by now. */
		snprintf(l->why, sizeof l->why,
			 "no answer in time, the server may be gone");
		conn_lost(c, c->req != NULL ? "query timed out" : NULL);
		break;
	case LINK_IDLE:
		break;
	}
	pool_leave(p);
}

static void
pool_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *p = arg;

	p->depth++;
	for (int i = 0; i < p->nconns && !p->closed; i++)
		conn_next(&p->conns[i]);
	pool_leave(p);
}

static void
req_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_req *r = arg;
	struct db_pool *p = r->pool;

	p->depth++;
	pool_unqueue(p, r);
	req_finish(r, NULL, "timed out waiting for a database connection");
	pool_leave(p);
}

struct db_pool *
db_pool_new(struct event_base *base, const struct db_options *o)
{
	struct db_pool *p = xcalloc(1, sizeof *p);

	p->base = base;
	cfg_init(&p->cfg, o);
	TAILQ_INIT(&p->queue);
	p->kick = event_new(base, -1, 0, pool_kick_cb, p);
	if (p->kick == NULL)
		fatal("database: cannot create an event");
	p->nconns = p->cfg.pool_size;
	p->conns = xcalloc((size_t)p->nconns, sizeof *p->conns);
	for (int i = 0; i < p->nconns; i++) {
		struct db_conn *c = &p->conns[i];
		char name[32];

		snprintf(name, sizeof name, "connection %d", i);
		link_init(&c->link, base, &p->cfg, name, conn_io_cb,
			  conn_timer_cb, c);
		c->pool = p;
		c->server_timeout = -1;
		TAILQ_INIT(&c->queue);
	}
	/* Failures only arm a retry timer here: no callback can run. */
	for (int i = 0; i < p->nconns; i++)
		conn_connect(&p->conns[i]);
	return p;
}

/*
 * Callbacks of the requests it fails run before it returns, and may call
 * into the pool again: what they queue is failed the same way.
 */
void
db_pool_free(struct db_pool *p)
{
	if (p == NULL || p->closed)
		return;
	p->closed = true;
	p->depth++;
	event_del(p->kick);
	for (int i = 0; i < p->nconns; i++)
		link_drop(&p->conns[i].link);
	pool_drain(p);
	pool_leave(p);
}

void
db_query_timeout(struct db_pool *p, int64_t timeout_ms, const char *sql,
		 int nparams, const char *const *params, db_result_fn fn,
		 void *arg)
{
	struct db_req *r =
	    req_new(p, REQ_QUERY, timeout_ms, sql, nparams, params);

	r->fn = fn;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&p->queue, r, entry);
	p->nwaiting++;
	if (p->closed)
		return;
	if (r->timeout_ms > 0) {
		r->wait_timer = evtimer_new(p->base, req_wait_cb, r);
		if (r->wait_timer == NULL)
			fatal("database: cannot create a timer");
		timer_after(r->wait_timer, r->timeout_ms);
	}
	pool_kick(p);
}

void
db_query(struct db_pool *p, const char *sql, int nparams,
	 const char *const *params, db_result_fn fn, void *arg)
{
	db_query_timeout(p, 0, sql, nparams, params, fn, arg);
}

void
db_acquire(struct db_pool *p, db_conn_fn fn, void *arg)
{
	struct db_req *r = req_new(p, REQ_ACQUIRE, 0, NULL, 0, NULL);

	r->acquire_fn = fn;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&p->queue, r, entry);
	p->nwaiting++;
	pool_kick(p);
}

void
db_conn_query(struct db_conn *c, int64_t timeout_ms, const char *sql,
	      int nparams, const char *const *params, db_result_fn fn,
	      void *arg)
{
	struct db_req *r =
	    req_new(c->pool, REQ_QUERY, timeout_ms, sql, nparams, params);

	r->fn = fn;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&c->queue, r, entry);
	pool_kick(c->pool);
}

void
db_release(struct db_conn *c)
{
	c->releasing = true;
	pool_kick(c->pool);
}

void
db_pool_stats(const struct db_pool *p, struct db_pool_stats *st)
{
	memset(st, 0, sizeof *st);
	st->size = p->nconns;
	st->connected = pool_connected(p);
	for (int i = 0; i < p->nconns; i++) {
		const struct db_conn *c = &p->conns[i];

		if (c->held || c->link.state == LINK_BUSY)
			st->busy++;
	}
	st->waiting = p->nwaiting;
	st->queries = p->queries;
	st->errors = p->errors;
	st->reconnects = p->reconnects;
}

/* ---- the listening connection ---- */

struct db_listen {
	struct db_link link;
	struct db_cfg cfg;
	db_notify_fn notify;
	db_state_fn state;
	void *arg;
	struct strlist channels;
	size_t nlistening; /* channels LISTENed on this connection */
	bool ready;	   /* state(true) was reported for it */
	uint64_t reconnects;
	struct event *kick;
	int depth;
	bool closed;
};

static void listen_event(struct db_listen *, enum link_event);

static void
listen_leave(struct db_listen *l)
{
	if (--l->depth > 0 || !l->closed)
		return;
	link_free(&l->link);
	event_free(l->kick);
	strlist_free(&l->channels);
	cfg_free(&l->cfg);
	free(l);
}

/* LISTEN "name", the identifier quoted and any quote in it doubled. */
static char *
listen_sql(const char *channel)
{
	size_t len = strlen(channel);
	char *sql = xmalloc(sizeof "LISTEN \"\"" + 2 * len);
	char *p = sql;

	p += sprintf(p, "LISTEN \"");
	for (const char *s = channel; *s != '\0'; s++) {
		if (*s == '"')
			*p++ = '"';
		*p++ = *s;
	}
	*p++ = '"';
	*p = '\0';
	return sql;
}

/* Sends the next missing LISTEN, or reports the connection ready. */
static void
listen_next(struct db_listen *l)
{
	char *sql;
	enum link_event e;

	if (l->closed || l->link.state != LINK_IDLE)
		return;
	if (l->nlistening < l->channels.n) {
		sql = listen_sql(l->channels.v[l->nlistening]);
		e = link_send(&l->link, true, sql, 0, NULL,
			      DB_INTERNAL_LIMIT_MS);
		free(sql);
		listen_event(l, e);
		return;
	}
	if (!l->ready) {
		l->ready = true;
		if (l->state != NULL)
			l->state(true, l->arg);
	}
}

static void
listen_connect_failed(struct db_listen *l)
{
	int attempt = l->link.attempt;
	int64_t ms;

	link_drop(&l->link);
	ms = link_retry(&l->link);
	log_msg(conn_failure_level(attempt),
		"database: listening connection: cannot connect: %s; retry in "
		"%" PRId64 " ms",
		l->link.why, ms);
}

static void
listen_lost(struct db_listen *l)
{
	bool was_ready = l->ready;
	int64_t ms;

	link_drop(&l->link);
	ms = link_retry(&l->link);
	log_warn("database: listening connection lost: %s; reconnecting in "
		 "%" PRId64 " ms",
		 l->link.why, ms);
	l->ready = false;
	l->nlistening = 0;
	if (was_ready && l->state != NULL)
		l->state(false, l->arg);
}

static void
listen_event(struct db_listen *l, enum link_event e)
{
	PGresult *res;

	switch (e) {
	case LINK_WAIT:
		break;
	case LINK_CONNECTED:
		if (l->link.ever_up) {
			l->reconnects++;
			log_info(
			    "database: listening connection re-established");
		}
		l->link.ever_up = true;
		l->nlistening = 0;
		listen_next(l);
		break;
	case LINK_FAILED:
		listen_connect_failed(l);
		break;
	case LINK_DONE:
		res = l->link.res;
		l->link.res = NULL;
		if (!db_ok(res))
			log_warn("database: LISTEN %s failed: %s",
				 l->channels.v[l->nlistening],
				 res != NULL ? result_error(res) : l->link.why);
		if (res != NULL)
			PQclear(res);
		l->nlistening++;
		listen_next(l);
		break;
	case LINK_LOST:
		listen_lost(l);
		break;
	}
}

static void
listen_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_listen *l = arg;
	enum link_event e;
	PGnotify *n;

	l->depth++;
	e = link_io(&l->link, what);
	/* Deliver what arrived even if the connection broke right after. */
	while (!l->closed && l->link.pg != NULL &&
	       (n = PQnotifies(l->link.pg)) != NULL) {
		if (l->notify != NULL)
			l->notify(n->relname, n->extra, l->arg);
		PQfreemem(n);
	}
	if (!l->closed)
		listen_event(l, e);
	listen_leave(l);
}

static void
listen_connect(struct db_listen *l)
{
	if (link_start(&l->link) != 0)
		listen_connect_failed(l);
}

static void
listen_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_listen *l = arg;

	l->depth++;
	switch (l->link.state) {
	case LINK_DOWN:
		listen_connect(l);
		break;
	case LINK_CONNECTING:
		snprintf(l->link.why, sizeof l->link.why,
			 "timed out after %" PRId64 " ms",
			 l->cfg.connect_timeout_ms);
		listen_connect_failed(l);
		break;
	case LINK_BUSY:
		snprintf(l->link.why, sizeof l->link.why,
			 "no answer to LISTEN in time, the server may be gone");
		listen_lost(l);
		break;
	case LINK_IDLE:
		break;
	}
	listen_leave(l);
}

static void
listen_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_listen *l = arg;

	l->depth++;
	listen_next(l);
	listen_leave(l);
}

struct db_listen *
db_listen_new(struct event_base *base, const struct db_options *o,
	      db_notify_fn notify, db_state_fn state, void *arg)
{
	struct db_listen *l = xcalloc(1, sizeof *l);

	cfg_init(&l->cfg, o);
	l->notify = notify;
	l->state = state;
	l->arg = arg;
	link_init(&l->link, base, &l->cfg, "listening connection", listen_io_cb,
		  listen_timer_cb, l);
	l->kick = event_new(base, -1, 0, listen_kick_cb, l);
	if (l->kick == NULL)
		fatal("database: cannot create an event");
	listen_connect(l);
	return l;
}

void
db_listen_add(struct db_listen *l, const char *channel)
{
	for (size_t i = 0; i < l->channels.n; i++) {
		if (strcmp(l->channels.v[i], channel) == 0)
			return;
	}
	strlist_add(&l->channels, channel);
	/* From the loop, so a failure cannot run state() inside this call. */
	if (!l->closed)
		event_active(l->kick, EV_TIMEOUT, 1);
}

bool
db_listen_connected(const struct db_listen *l)
{
	return l->ready;
}

uint64_t
db_listen_reconnects(const struct db_listen *l)
{
	return l->reconnects;
}

void
db_listen_free(struct db_listen *l)
{
	if (l == NULL || l->closed)
		return;
	l->closed = true;
	link_drop(&l->link);
	event_del(l->kick);
	l->depth++;
	listen_leave(l);
}
