"""The daemon's life: start, probes, metrics, reload, shutdown, schema checks."""
import re
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (LINKPULSED, Metrics, MetricsFormatError, assert_problem, check_ok,
                      create_token, create_workspace, ctl, run, wait_until)

METRICS = {
    "linkpulse_build_info": "gauge",
    "linkpulse_uptime_seconds": "gauge",
    "linkpulse_http_requests_total": "counter",
    "linkpulse_http_request_duration_seconds": "histogram",
    "linkpulse_db_pool_size": "gauge",
    "linkpulse_db_pool_connections": "gauge",
    "linkpulse_db_pool_waiting": "gauge",
    "linkpulse_db_reconnects_total": "counter",
    "linkpulse_db_listen_connected": "gauge",
    "linkpulse_db_listen_reconnects_total": "counter",
    "linkpulse_db_notifications_total": "counter",
    "linkpulse_config_last_reload_successful": "gauge",
    "linkpulse_config_last_reload_success_timestamp_seconds": "gauge",
}


def test_version():
    r = run([LINKPULSED, "--version"], timeout=10)
    assert r.returncode == 0, r.stderr
    assert re.search(r"linkpulse\S* \d+\.\d+\.\d+", r.stdout), r.stdout


def test_help():
    r = run([LINKPULSED, "--help"], timeout=10)
    assert r.returncode == 0, r.stderr
    assert "-c" in r.stdout and "-t" in r.stdout, r.stdout


def test_probes(db, daemon):
    d = daemon(db)
    r = d.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["Content-Type"].startswith("application/json")
    d.wait_ready()
    body = d.get("/readyz").json()
    assert body["status"] == "ok", body
    for check in ("database", "schema", "listener"):
        assert check_ok(body["checks"][check]), body


def test_metrics_exposition(db, daemon):
    d = daemon(db)
    d.wait_ready()
    m = d.metrics()
    for name, kind in METRICS.items():
        assert m.types.get(name) == kind, f"{name}: TYPE {m.types.get(name)!r}, want {kind}"
        assert name in m.help, f"{name} has no HELP"
    assert [v for _, v in m.find("linkpulse_build_info")] == [1]
    assert m.get("linkpulse_db_pool_size") == 2
    assert m.get("linkpulse_db_listen_connected") == 1
    assert m.get("linkpulse_uptime_seconds") >= 0
    assert m.get("linkpulse_config_last_reload_successful") == 1
    ts = m.get("linkpulse_config_last_reload_success_timestamp_seconds")
    assert abs(ts - time.time()) < 5, f"reload timestamp {ts} is not now: printed without enough digits?"


def test_metrics_parser_is_strict():
    good = "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\"} 2\n"
    assert Metrics(good).get("x_total", a="1") == 2
    for bad in ("x_total 1\n", good + "x_total{a=\"1\"} 3\n", good.rstrip("\n"),
                "# TYPE x gauge\nx{a=1} 1\n", "# TYPE x gauge\nx one\n",
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"):
        with pytest.raises(MetricsFormatError):
            Metrics(bad)


def healthz_count(m):
    found = [v for l, v in m.find("linkpulse_http_requests_total", method="GET", code="200")
             if "healthz" in l.get("route", "")]
    return sum(found)


def test_request_counter_increments(db, daemon):
    d = daemon(db)
    before = d.metrics()
    for _ in range(3):
        assert d.get("/healthz").status_code == 200
    after = d.metrics()
    assert healthz_count(after) - healthz_count(before) == 3
    durations = lambda m: sum(v for _, v in m.find("linkpulse_http_request_duration_seconds_count"))
    assert durations(after) - durations(before) >= 3


def test_unknown_path_and_wrong_method(db, daemon):
    d = daemon(db)
    assert_problem(d.get("/no/such/path"), 404, "NOT_FOUND")
    assert_problem(d.request("DELETE", "/healthz"), 405)


def test_reload_is_all_or_nothing(db, daemon):
    d = daemon(db)
    # A file with one error changes nothing, not even its valid lines.
    since = d.log_size()
    bad = d.config_text({"log.level": "debug", "http.max_body_sise": "1KiB"})
    d.reload(text=bad, expect_success=False)
    line = d.wait_log(r"max_body_sise", since=since)
    assert f"{d.config_path}:" in line, line
    assert d.get("/healthz").status_code == 200
    quiet = f"/quiet-{uuid.uuid4().hex[:8]}"
    assert d.get(quiet).status_code == 404

    d.reload(settings={"log.level": "debug"})
    assert d.metric("linkpulse_config_last_reload_successful") == 1
    loud = f"/loud-{uuid.uuid4().hex[:8]}"
    assert d.get(loud).status_code == 404
    debug_line = r"(?i)(?=.*\bdebug\b)(?=.*\bGET\b)(?=.*{})"
    d.wait_log(debug_line.format(re.escape(loud)), since=since)
    assert not re.search(debug_line.format(re.escape(quiet)), d.log_text()[since:], re.M), \
        "a request was logged at debug level before the good reload"


def test_reload_max_body_size(db, daemon):
    d = daemon(db)
    body = b"x" * 4096
    assert d.post("/healthz", data=body).status_code != 413
    d.reload(settings={"http.max_body_size": "1KiB"})
    assert d.post("/healthz", data=body).status_code == 413
    assert d.post("/no/such/path", data=body).status_code == 413
    assert d.post("/healthz", data=b"x" * 100).status_code != 413


def test_sigterm_exits_zero(db, daemon):
    d = daemon(db, settings={"shutdown.grace": "2s"})
    d.wait_ready()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(7) == 0


class BlockedRequest:
    """A GET /v1/workspace held in flight by locking every table of the schema."""

    def __init__(self, db, d, token):
        self.d, self.token = d, token
        tables = [t for (t,) in db.sql("SELECT format('%I', tablename) FROM pg_tables "
                                       "WHERE schemaname = current_schema()")]
        self.conn = db.pg.connect(db.name)
        self.conn.autocommit = False
        self.conn.cursor().execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        self.pool = ThreadPoolExecutor(1)
        self.future = self.pool.submit(d.get, "/v1/workspace", token=token, timeout=30)

        def waiting():
            if self.future.done():
                return "done"
            rows = db.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND application_name LIKE %s AND wait_event_type = 'Lock'", ("linkpulsed%",))
            return "blocked" if rows[0][0] > 0 else None
        if wait_until(waiting, 10, "the request to wait on a lock") == "done":
            self.release()
            pytest.skip("no route stays in flight while the database is locked")

    def release(self):
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def close(self):
        self.release()
        self.pool.shutdown(wait=True)


@pytest.fixture
def blocked(db, daemon):
    create_workspace(db, "acme")
    token = create_token(db, "acme", scopes="analytics:read")
    d = daemon(db, settings={"shutdown.grace": "10s"})
    d.wait_ready()
    assert d.get("/v1/workspace", token=token).status_code == 200
    b = BlockedRequest(db, d, token)
    yield b
    b.close()


def test_sigterm_finishes_in_flight_request(blocked):
    d = blocked.d
    d.signal(signal.SIGTERM)
    time.sleep(0.5)  # long enough for a daemon that does not drain to be gone
    assert d.running(), "linkpulsed exited with a request in flight"
    try:
        assert d.get("/healthz", timeout=2).status_code == 503
    except requests.ConnectionError:
        pass  # stopped accepting: as good
    blocked.release()
    r = blocked.future.result(timeout=15)
    assert r.status_code == 200, r.text
    assert d.wait_exit(10) == 0


def test_second_sigterm_exits_at_once(blocked):
    d = blocked.d
    d.signal(signal.SIGTERM)
    time.sleep(0.2)
    assert d.running()
    d.signal(signal.SIGTERM)
    d.wait_exit(3)


def test_schema_behind_refuses_to_start(empty_db, daemon):
    d = daemon(empty_db, start=False)
    d.start(wait=False)
    assert d.wait_exit(20) != 0
    assert "linkpulsectl migrate" in d.log_text()


def test_auto_migrate(empty_db, daemon):
    d = daemon(empty_db, settings={"database.auto_migrate": True})
    d.wait_ready()
    assert d.get("/readyz").json()["status"] == "ok"
    r = ctl(empty_db, "migrate", "--status")
    assert r.returncode == 0, r.stderr


def test_environment_overrides_database_url(db, daemon):
    wrong = db.pg.url("no_such_database")
    d = daemon(db, settings={"database.url": wrong}, env={"LINKPULSE_DATABASE_URL": db.url})
    d.wait_ready()
