"""The webhook delivery engine (src/delivery.c) against a real daemon, a
real PostgreSQL and the scriptable receiver (tests/integration/receiver.py):
signatures, the retry schedule, Retry-After, 410, the circuit breaker,
per-endpoint concurrency and rate limits, isolation of a hanging endpoint,
the network guard at connect time, and the metrics.

Endpoints, secrets and messages are made with SQL (lp_webhook_enqueue), so
these tests need the engine and the schema only, not the /v1/webhooks API.
The schedules are compressed (hundreds of milliseconds) and jitter is off,
so the gaps between attempts can be asserted.
"""
import base64
import email.utils
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import LINKPULSED, create_workspace, wait_until
from receiver import verify

SCHEDULE = ["0s", "300ms", "600ms"]  # three attempts
FAST = {"delivery.timeout": "2s", "delivery.lease": "10s",
        "delivery.schedule": SCHEDULE, "delivery.jitter": 0}
# How late an attempt may be against its schedule: the result is written
# (within ~5 ms), then the retry is claimed and sent.
LATE = 0.35


def settings(**over):
    s = dict(FAST)
    for k, v in over.items():
        s[k.replace("__", ".")] = v
    return s


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Workspace:
    def __init__(self, db):
        self.db = db
        self.id = create_workspace(db, "ws-" + uuid.uuid4().hex[:8])

    def endpoint(self, url, **kw):
        return Endpoint(self, url, **kw)


class Endpoint:
    """One webhook endpoint made with SQL, and its secret."""

    def __init__(self, ws, url, max_in_flight=10, rate=None, operational=False,
                 headers="{}", event_types=("webhook.test",)):
        self.ws, self.db, self.url = ws, ws.db, url
        self.secret = new_secret()
        self.id = self.db.sql(
            "INSERT INTO webhook_endpoints (workspace_id, name, endpoint_url, event_types, "
            "max_in_flight, rate_limit_per_second, operational, headers) "
            "VALUES (%s, %s, %s, %s::text[], %s, %s, %s, %s::jsonb) RETURNING id",
            (ws.id, "ep-" + uuid.uuid4().hex[:8], url, list(event_types), max_in_flight,
             rate, operational, headers))[0][0]
        self.add_secret(self.secret)

    def add_secret(self, secret, expires_in=None):
        self.db.sql("INSERT INTO webhook_secrets (workspace_id, endpoint_id, secret, expires_at) "
                    "VALUES (%s, %s, %s, now() + %s::interval)",
                    (self.ws.id, self.id, secret, expires_in))

    def enqueue(self, n=1, event_type="webhook.test"):
        """Queues n messages in one statement; returns their ids in order."""
        rows = self.db.sql(
            "SELECT lp_webhook_enqueue(%s::uuid, array[%s]::uuid[], %s, now(), "
            "jsonb_build_object('n', g)) FROM generate_series(1, %s) g ORDER BY g",
            (self.ws.id, self.id, event_type, n))
        return [r[0] for r in rows]

    def states(self):
        return dict(self.db.sql(
            "SELECT state, count(*) FROM webhook_deliveries WHERE endpoint_id = %s "
            "GROUP BY state", (self.id,)))

    def wait_states(self, want, timeout=10):
        return wait_until(lambda: self.states() == want and want, timeout,
                          f"deliveries of {self.id} {want} (now {self.states()})")

    def attempts(self):
        """[(message_id, attempt, status, error, snippet)] in order."""
        return self.db.sql(
            "SELECT message_id, attempt, status_code, error, response_snippet "
            "FROM webhook_attempts WHERE endpoint_id = %s ORDER BY id", (self.id,))

    def status(self):
        return self.db.sql("SELECT status, disabled_reason FROM webhook_endpoints "
                           "WHERE id = %s", (self.id,))[0]


def payload(db, msg_id):
    return db.sql("SELECT payload FROM webhook_messages WHERE id = %s", (msg_id,))[0][0]


def gaps(reqs):
    return [b.at - a.at for a, b in zip(reqs, reqs[1:])]


def assert_gap(gap, expected, what):
    assert expected - 0.05 <= gap <= expected + LATE, \
        f"{what}: {gap:.3f} s between attempts, expected {expected:.3f} s"


# ---------------------------------------------------------------- signing


def test_signed_retried_and_recorded(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/hook"), headers='{"X-Tenant": "acme", "webhook-id": "forged"}')
    old = new_secret()
    ep.add_secret(old, "1 hour")  # a rotated-out secret still signs
    # First answer: a 500 whose body is invalid UTF-8 with a NUL, quotes and
    # a backslash, longer than the 1 KiB kept.
    junk = b'\xff\xfe"q"\\ \x00' + b"x" * 3000
    rx.behave("/hook", {"status": 500, "body": junk}, {"status": 502})
    daemon(db, settings=settings())
    [mid] = ep.enqueue(1)

    reqs = rx.wait_for(3, "/hook")
    ep.wait_states({"delivered": 1})
    body = payload(db, mid).encode()
    for r in reqs:
        assert r.method == "POST" and r.body == body
        assert r.msg_id == mid, "webhook-id must be the message id on every attempt"
        assert verify(r, ep.secret) and verify(r, old), r.signatures
        assert len(r.signatures) == 2
        assert abs(int(r.timestamp) - r.at) <= 1.5, "webhook-timestamp is the attempt's time"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"].startswith("linkpulse/")
        assert r.headers["x-tenant"] == "acme"
        assert "expect" not in r.headers
    g = gaps(reqs)
    assert_gap(g[0], 0.3, "attempt 1 -> 2")
    assert_gap(g[1], 0.6, "attempt 2 -> 3")
    assert len(rx.requests("/hook")) == 3

    att = ep.attempts()
    assert [(a[1], a[2]) for a in att] == [(1, 500), (2, 502), (3, 204)]
    snippet = att[0][4]
    assert snippet.startswith('\ufffd\ufffd"q"\\ \ufffdxxx'), repr(snippet[:20])
    assert len(snippet.encode()) <= 1024 + 2 * 3  # two bytes grew to U+FFFD
    row = db.sql("SELECT attempts, last_status, delivered_at IS NOT NULL FROM webhook_deliveries "
                 "WHERE message_id = %s", (mid,))[0]
    assert row == (3, 204, True)


# ---------------------------------------------------------------- retries


def test_retries_on_timeout_and_reset_follow_the_schedule(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    hang = ws.endpoint(rx.url("/hang"))
    reset = ws.endpoint(rx.url("/reset"))
    rx.behave("/hang", {"hang": True}, {"hang": True})
    rx.behave("/reset", {"reset": True}, {"reset": True})
    daemon(db, settings=settings(delivery__timeout="400ms", delivery__lease="5s"))
    hang.enqueue(1)
    reset.enqueue(1)

    r = rx.wait_for(3, "/reset")
    g = gaps(r)
    assert_gap(g[0], 0.3, "reset: attempt 1 -> 2")
    assert_gap(g[1], 0.6, "reset: attempt 2 -> 3")
    h = rx.wait_for(3, "/hang")
    g = gaps(h)
    # A hanging attempt ends at the timeout, then the schedule's delay.
    assert_gap(g[0], 0.4 + 0.3, "hang: attempt 1 -> 2")
    assert_gap(g[1], 0.4 + 0.6, "hang: attempt 2 -> 3")
    assert len({x.msg_id for x in h}) == 1 and len({x.msg_id for x in r}) == 1
    hang.wait_states({"delivered": 1})
    reset.wait_states({"delivered": 1})
    errors = [a[3] for a in hang.attempts()]
    assert all(e and "timed out" in e.lower() for e in errors[:2]), errors
    assert [a[2] for a in hang.attempts()] == [None, None, 204]
    errors = [a[3] for a in reset.attempts()]
    assert all(errors[:2]) and errors[2] is None, errors


def test_reload_applies_a_new_schedule_and_allow_list(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/reload"))
    rx.behave("/reload", {"status": 500}, {"status": 500}, {"status": 500})
    d = daemon(db, settings=settings(delivery__schedule=["0s", "30s"]))
    ep.enqueue(1)
    rx.wait_for(1, "/reload")
    # The first message's retry stays due in 30 s (its time was set when it
    # failed); a failure after the reload is retried on the new schedule.
    d.reload(settings(delivery__schedule=["0s", "200ms", "400ms"]))
    second = ep.enqueue(1)[0]

    def attempts_of(msg, n):
        got = [r for r in rx.requests("/reload") if r.msg_id == msg]
        return got if len(got) >= n else None
    # The script's two remaining 500s fail its first two attempts.
    g = gaps(wait_until(lambda: attempts_of(second, 3), 10, "three attempts"))
    assert_gap(g[0], 0.2, "after reload: attempt 1 -> 2")
    assert_gap(g[1], 0.4, "after reload: attempt 2 -> 3")
    # A reloaded allow list closes loopback at once: the next attempt is
    # refused at connect time and recorded as such.
    d.reload(settings(delivery__schedule=["0s", "200ms", "400ms"],
                      delivery__allow_networks=None))
    third = ep.enqueue(1)[0]

    def refused():
        rows = db.sql("SELECT a.error FROM webhook_attempts a "
                      "WHERE a.message_id = %s ORDER BY a.id", (third,))
        return rows if rows and rows[0][0] else None
    rows = wait_until(refused, 10, "an attempt refused by the network guard")
    assert "refused by the network guard" in rows[0][0], rows
    assert not [r for r in rx.requests("/reload") if r.msg_id == third]


def test_exhausted_message_is_dead_and_reported(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/fail"))
    ops = ws.endpoint(rx.url("/ops"), operational=True, event_types=())
    rx.default("/fail", status=500)
    daemon(db, settings=settings())
    [mid] = ep.enqueue(1)

    reqs = rx.wait_for(3, "/fail")
    ep.wait_states({"dead": 1})
    time.sleep(0.3)
    assert len(rx.requests("/fail")) == 3, "no attempt after the schedule's last"
    [note] = rx.wait_for(1, "/ops")
    assert verify(note, ops.secret)
    body = note.json()
    assert body["type"] == "message.attempt.exhausted"
    assert body["data"]["msgId"] == mid and body["data"]["attempts"] == 3
    assert body["data"]["lastStatus"] == 500
    assert {r.msg_id for r in reqs} == {mid}


def test_retry_after_on_429_and_503(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    a = ws.endpoint(rx.url("/429"))
    b = ws.endpoint(rx.url("/503"))
    rx.behave("/429", {"status": 429, "headers": {"Retry-After": "1"}})
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    rx.behave("/503", {"status": 503, "headers": {"Retry-After": when}})
    daemon(db, settings=settings())
    a.enqueue(1)
    b.enqueue(1)

    r = rx.wait_for(2, "/429", timeout=5)
    assert 0.95 <= r[1].at - r[0].at <= 1 + LATE, gaps(r)
    assert int(r[1].timestamp) > int(r[0].timestamp), "a new timestamp per attempt"
    r = rx.wait_for(2, "/503", timeout=6)
    # An HTTP date has whole seconds: between 2 and 3 s from the answer.
    assert 1.9 <= r[1].at - r[0].at <= 3 + LATE, gaps(r)
    a.wait_states({"delivered": 1})
    b.wait_states({"delivered": 1})


# ------------------------------------------------------------- endpoints


def test_410_disables_the_endpoint(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/gone"), max_in_flight=2)
    ops = ws.endpoint(rx.url("/ops"), operational=True, event_types=())
    rx.default("/gone", status=410, delay=0.1)
    daemon(db, settings=settings())
    ep.enqueue(8)

    [note] = rx.wait_for(1, "/ops")
    body = note.json()
    assert body["type"] == "endpoint.disabled" and body["data"]["endpointId"] == str(ep.id)
    assert "410" in body["data"]["reason"]
    status, reason = ep.status()
    assert status == "WEBHOOK_STATUS_DISABLED" and "410" in reason
    ep.wait_states({"held": 8})
    got = len(rx.requests("/gone"))
    assert 1 <= got <= 2, f"{got} requests: nothing may start after the 410"
    ep.enqueue(2)
    ep.wait_states({"held": 10})
    time.sleep(0.5)
    assert len(rx.requests("/gone")) == got
    assert verify(note, ops.secret)


def test_circuit_breaker_holds_then_probes_one_at_a_time(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/flaky"), max_in_flight=5)
    rx.default("/flaky", status=500, delay=0.05)
    d = daemon(db, settings=settings(
        delivery__schedule=["0s"] + ["100ms"] * 20, delivery__circuit_failures=3,
        delivery__circuit_cooldown="1s"))
    ep.enqueue(10)

    rx.wait_for(3, "/flaky")
    time.sleep(0.2)  # the burst in flight when it opened ends
    assert d.metric("linkpulse_webhook_circuit_open") == 1
    opened = len(rx.requests("/flaky"))
    # 5 in flight, and one started after each of the first two failures.
    assert opened <= 7, f"{opened} requests: the circuit should have opened after 3 failures"
    rx.reset_counts()
    time.sleep(0.6)
    assert len(rx.requests("/flaky")) == opened, "requests while the circuit is open"
    # Half-open: one probe per cooldown, each failing.
    rx.wait_for(opened + 2, "/flaky", timeout=4)
    assert rx.max_concurrent("/flaky") == 1, "more than one probe at a time"
    probes = rx.requests("/flaky")[opened:]
    assert 0.9 <= probes[1].at - probes[0].at <= 1.5, gaps(probes)
    # The endpoint recovers: the next probe succeeds and closes the circuit.
    rx.default("/flaky", status=204, delay=0.05)
    ep.wait_states({"delivered": 10}, timeout=6)
    assert d.metric("linkpulse_webhook_circuit_open") == 0
    assert rx.max_concurrent("/flaky") > 1, "closed again: concurrency comes back"


def test_max_in_flight_is_never_exceeded(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/slow"), max_in_flight=3)
    rx.default("/slow", status=204, delay=0.1)
    daemon(db, settings=settings())
    ep.enqueue(50)
    rx.wait_for(50, "/slow", timeout=15)
    ep.wait_states({"delivered": 50})
    assert rx.max_concurrent("/slow") == 3


def test_hanging_endpoint_does_not_slow_a_healthy_one(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    stuck = ws.endpoint(rx.url("/stuck"))
    healthy = ws.endpoint(rx.url("/ok"))
    rx.behave("/stuck", *[{"hang": True}] * 200)
    # Small claims, so the stuck endpoint's backlog must be skipped.
    daemon(db, settings=settings(delivery__batch_size=10, delivery__timeout="5s",
                                 delivery__circuit_failures=1000))
    stuck.enqueue(100)
    rx.wait_for(10, "/stuck")
    start = time.time()
    healthy.enqueue(30)
    reqs = rx.wait_for(30, "/ok", timeout=5)
    took = reqs[-1].at - start
    assert took < 1.2, f"the healthy endpoint's 30 messages took {took:.2f} s"
    assert rx.max_concurrent("/stuck") == 10
    healthy.wait_states({"delivered": 30})


def test_rate_limit_and_metrics(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/rated"), rate=5)
    d = daemon(db, settings=settings())
    ep.enqueue(20)
    reqs = rx.wait_for(20, "/rated", timeout=10)
    took = reqs[-1].at - reqs[0].at
    # A burst of 5, then 15 more at 5 per second.
    assert 2.8 <= took <= 4.5, f"20 messages at 5/s took {took:.2f} s"
    ep.wait_states({"delivered": 20})

    # The queue gauges count what is not delivered yet, from the database.
    def drained_gauges():
        m = d.metrics()
        return m if (m.get("linkpulse_webhook_queue", state="pending") == 0
                     and m.get("linkpulse_webhook_queue", state="delivering") == 0
                     and m.get("linkpulse_webhook_deliveries_total", outcome="delivered") == 20) \
            else None
    m = wait_until(drained_gauges, 7, "linkpulse_webhook_queue{state=pending|delivering} = 0")
    assert m.get("linkpulse_webhook_queue", state="delivered") is None
    assert m.get("linkpulse_webhook_deliveries_total", outcome="delivered") == 20
    assert m.get("linkpulse_webhook_deliveries_total", outcome="dead") == 0
    assert m.get("linkpulse_webhook_attempt_duration_seconds_count") == 20
    assert m.get("linkpulse_webhook_in_flight") == 0
    assert m.get("linkpulse_webhook_circuit_open") == 0
    assert m.get("linkpulse_webhook_oldest_due_seconds") == 0
    assert m.get("linkpulse_webhook_queue", state="pending") == 0
    assert m.get("linkpulse_webhook_endpoints", status="active") == 1
    assert m.types["linkpulse_webhook_attempt_duration_seconds"] == "histogram"


# --------------------------------------------------------- network guard

REFUSED = ["http://10.0.0.1:9/", "http://172.16.0.1:9/", "http://192.168.0.1:9/",
           "http://169.254.169.254/", "http://100.64.0.1:9/", "http://0.0.0.0:9/",
           "http://224.0.0.1:9/", "http://[::1]:9/", "http://[fe80::1]:9/",
           "http://[fc00::1]:9/"]
# Loopback in other spellings, pointed at a live receiver.
LOOPBACK = ["http://[::ffff:127.0.0.1]:{port}/a", "http://2130706433:{port}/b",
            "http://0x7f.1:{port}/c", "http://localhost:{port}/d",
            "http://127.0.0.1:{port}/e"]


def test_network_guard_refuses_at_connect_time(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    urls = REFUSED + [u.format(port=rx.port) for u in LOOPBACK]
    eps = [ws.endpoint(u) for u in urls]
    daemon(db, settings=settings(delivery__allow_networks=[], delivery__schedule=["0s"],
                                 delivery__circuit_failures=1000))
    for ep in eps:
        ep.enqueue(1)
    for ep in eps:
        ep.wait_states({"dead": 1})
    time.sleep(0.2)
    assert rx.requests() == [], "the receiver must get nothing"
    for ep in eps:
        [(_, attempt, status, error, _)] = ep.attempts()
        assert status is None, (ep.url, status)
        if "fe80" in ep.url and "network guard" not in (error or ""):
            continue  # no scope id: may fail before any connect
        assert error.startswith("refused by the network guard: "), (ep.url, error)
    errors = {ep.url: ep.attempts()[0][3] for ep in eps}
    assert "loopback" in errors[LOOPBACK[-1].format(port=rx.port)]
    assert "(127.0.0.1)" in errors[LOOPBACK[1].format(port=rx.port)]
    assert "169.254.169.254" in errors["http://169.254.169.254/"]


def test_network_guard_allow_list(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ok = ws.endpoint(rx.url("/allowed"))
    other = ws.endpoint(f"http://[::1]:{rx.port}/v6")
    daemon(db, settings=settings(delivery__schedule=["0s"]))  # allows 127.0.0.1/32
    ok.enqueue(1)
    other.enqueue(1)
    ok.wait_states({"delivered": 1})
    other.wait_states({"dead": 1})
    assert len(rx.requests("/allowed")) == 1 and rx.requests("/v6") == []
    assert "network guard" in other.attempts()[0][3]


def test_require_https_sends_nothing_over_http(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/plain"))  # inserted by SQL: the API would refuse it
    daemon(db, settings=settings(delivery__require_https=True, delivery__schedule=["0s"]))
    ep.enqueue(1)
    ep.wait_states({"dead": 1})
    [(_, _, status, error, _)] = ep.attempts()
    assert status is None and "require_https" in error, error
    assert rx.requests() == []


# ------------------------------------------------------------ life cycle


def test_leases_are_renewed_while_waiting(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/paced"), rate=4)
    daemon(db, settings=settings(delivery__timeout="300ms", delivery__lease="1s"))
    ep.enqueue(12)  # 4 at once, then 8 at 4/s: two seconds, two leases
    reqs = rx.wait_for(12, "/paced", timeout=8)
    ep.wait_states({"delivered": 12})
    time.sleep(0.3)
    assert len(rx.requests("/paced")) == 12 and len({r.msg_id for r in reqs}) == 12
    attempts = [r[0] for r in db.sql("SELECT attempts FROM webhook_deliveries "
                                     "WHERE endpoint_id = %s", (ep.id,))]
    assert attempts == [1] * 12, "a lease ran out while its delivery waited here"


def test_stop_finishes_requests_in_flight_and_gives_back_the_rest(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/slow"), max_in_flight=2)
    rx.default("/slow", status=204, delay=1.0)
    d = daemon(db, settings=settings())
    ep.enqueue(6)
    rx.wait_for(2, "/slow")
    d.signal(signal.SIGTERM)
    assert d.wait_exit(6) == 0
    assert len(rx.requests("/slow")) == 2
    rows = db.sql("SELECT state, attempts, leased_by FROM webhook_deliveries "
                  "WHERE endpoint_id = %s ORDER BY state", (ep.id,))
    assert rows == [("delivered", 1, None)] * 2 + [("pending", 0, None)] * 4, rows
    assert "delivery: stopped" in d.log_text()


def test_retention_prunes_finished_work_in_rounds(db, daemon, receiver):
    rx = receiver()
    ws = Workspace(db)
    ep = ws.endpoint(rx.url("/kept"))
    old = ws.endpoint(rx.url("/old"))
    db.sql("UPDATE webhook_endpoints SET status = 'WEBHOOK_STATUS_PAUSED' WHERE id = %s",
           (old.id,))
    old.enqueue(1500)  # held: the endpoint is paused
    db.sql("INSERT INTO webhook_attempts (workspace_id, endpoint_id, delivery_id, message_id, "
           "attempt, attempted_at, status_code, latency_ms) SELECT workspace_id, endpoint_id, "
           "id, message_id, 1, now() - interval '2 hours', 200, 5 FROM webhook_deliveries")
    db.sql("UPDATE webhook_deliveries SET state = 'delivered', "
           "updated_at = now() - interval '2 hours'")
    db.sql("UPDATE webhook_messages SET created_at = now() - interval '2 hours'")
    d = daemon(db, settings=settings(retention__deliveries="1h"))
    ep.enqueue(1)
    ep.wait_states({"delivered": 1})
    # The first round runs 10 s after the start; 1500 rows take two calls.
    wait_until(lambda: old.states() == {}, 15, "old deliveries pruned")
    wait_until(lambda: db.sql("SELECT count(*) FROM webhook_messages")[0][0] == 1, 5,
               "old messages pruned")
    assert db.sql("SELECT count(*) FROM webhook_attempts")[0][0] == 1
    assert ep.states() == {"delivered": 1}
    assert "retention removed" in d.log_text()


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_no_leak_after_deliveries_valgrind(db, daemon, receiver, tmp_path):
    with open(LINKPULSED, "rb") as f:
        if b"__asan_init" in f.read():
            pytest.skip("an ASan build cannot run under valgrind")
    rx = receiver()
    ws = Workspace(db)
    ok = ws.endpoint(rx.url("/ok"))
    slow = ws.endpoint(rx.url("/slow"), max_in_flight=1)
    rx.behave("/ok", {"status": 500})
    rx.default("/slow", status=204, delay=1.0)
    d = daemon(db, settings=settings(delivery__timeout="10s", delivery__lease="30s"),
               start=False)
    vlog = tmp_path / "valgrind.log"
    d._logf = open(d.log, "ab")
    d.proc = subprocess.Popen(
        ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
         "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
         f"--log-file={vlog}", LINKPULSED, "-c", str(d.config_path)],
        stdout=d._logf, stderr=subprocess.STDOUT, env=d.env)
    d.wait_healthy(timeout=60)
    ok.enqueue(3)
    slow.enqueue(3)
    ok.wait_states({"delivered": 3}, timeout=30)
    rx.wait_for(1, "/slow", timeout=30)
    assert d.get("/metrics").status_code == 200
    d.signal(signal.SIGTERM)  # one request in flight, two queued
    rc = d.proc.wait(60)
    report = vlog.read_text()
    assert rc == 0, report[-3000:]
    assert re.search(r"ERROR SUMMARY: 0 errors", report), report[-3000:]
    assert "All heap blocks were freed" in report or "definitely lost: 0 bytes" in report, \
        report[-3000:]
    assert slow.states() == {"delivered": 1, "pending": 2}
