"""Webhook delivery under faults: kill -9 mid-stream, a PostgreSQL restart,
two instances sharing one queue, a crashed instance's leases taken over,
and disable / enable / replay end to end.

Endpoints, secrets and messages are made with SQL (lp_webhook_enqueue), so
these tests depend on the delivery engine and the schema only, not on the
/v1/webhooks API.  The receiver is tests/integration/receiver.py.
"""
import base64
import collections
import os
import threading
import time
import uuid

import pytest

from conftest import create_token, create_workspace, wait_until
from receiver import verify

# Short timings: a crashed claim is retried after 3 s, failures quickly.
FAST = {"delivery.lease": "3s", "delivery.timeout": "2s",
        "delivery.schedule": ["0s", "200ms", "500ms", "1s", "1s", "1s", "1s", "1s"],
        "delivery.jitter": 0}


def settings(**over):
    """FAST with keys given as delivery_lease="30s" -> "delivery.lease"."""
    s = dict(FAST)
    for k, v in over.items():
        s[k.replace("_", ".", 1)] = v
    return s


@pytest.fixture
def pg_restored(pg):
    """Whatever the test does to the cluster, it is running afterwards."""
    yield pg
    pg.ensure_running()


# ------------------------------------------------------------------ helpers


class Endpoint:
    """A workspace with one webhook endpoint (made with SQL) and its secret."""

    def __init__(self, db, url, max_in_flight=10, event_types=("webhook.test",)):
        self.db = db
        self.url = url
        self.slug = "ws-" + uuid.uuid4().hex[:8]
        self.ws = create_workspace(db, self.slug)
        self.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.id = db.sql(
            "INSERT INTO webhook_endpoints (workspace_id, name, endpoint_url, event_types, "
            "max_in_flight) VALUES (%s, %s, %s, %s::text[], %s) RETURNING id",
            (self.ws, "ep-" + uuid.uuid4().hex[:6], url, list(event_types), max_in_flight))[0][0]
        db.sql("INSERT INTO webhook_secrets (workspace_id, endpoint_id, secret) "
               "VALUES (%s, %s, %s)", (self.ws, self.id, self.secret))

    def enqueue(self, n):
        """Queues n messages in one statement; returns their ids."""
        rows = self.db.sql(
            "SELECT lp_webhook_enqueue(%s::uuid, array[%s]::uuid[], 'webhook.test', now(), "
            "jsonb_build_object('n', g)) FROM generate_series(1, %s) g",
            (self.ws, self.id, n))
        ids = [r[0] for r in rows]
        assert len(ids) == n and all(ids), "lp_webhook_enqueue returned no message id"
        return ids

    def messages(self):
        """{webhook-id: payload} of every message of the workspace."""
        return dict(self.db.sql("SELECT id, payload FROM webhook_messages WHERE workspace_id = %s",
                                (self.ws,)))

    def states(self):
        """{state: count} of the endpoint's deliveries."""
        return dict(self.db.sql("SELECT state, count(*) FROM webhook_deliveries "
                                "WHERE workspace_id = %s AND endpoint_id = %s GROUP BY state",
                                (self.ws, self.id)))

    def all_delivered(self, n):
        s = self.states()
        return s if s == {"delivered": n} else None

    def sql(self, query, params=()):
        return self.db.sql(query, params)


def counts(reqs):
    return collections.Counter(r.msg_id for r in reqs)


def duplicates(reqs):
    """{webhook-id: extra copies} of the ids received more than once."""
    return {k: v - 1 for k, v in counts(reqs).items() if v > 1}


def check_requests(reqs, ep, messages=None):
    """Every request is a POST of one of ep's messages, its exact bytes, signed."""
    messages = messages if messages is not None else ep.messages()
    bad_sig = [r for r in reqs if not verify(r, ep.secret)]
    assert not bad_sig, f"{len(bad_sig)} of {len(reqs)} requests do not verify, e.g. {bad_sig[:3]}"
    unknown = [r for r in reqs if r.msg_id not in messages]
    assert not unknown, f"requests with unknown webhook-ids: {unknown[:3]}"
    wrong = [r for r in reqs if r.method != "POST" or r.body != messages[r.msg_id].encode()]
    assert not wrong, f"requests that are not POSTs of the message's payload: {wrong[:3]}"


def daemon_backends(db):
    return db.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                  "AND application_name LIKE 'linkpulsed%%'", (db.name,))[0][0]


def kill_9(d, db):
    """SIGKILL, then waits until PostgreSQL has let go of the daemon's backends,
    so that nothing it sent before dying can still commit."""
    d.proc.kill()
    d.proc.wait(5)
    killed_at = time.time()
    wait_until(lambda: daemon_backends(db) == 0, 10, "the killed daemon's backends gone")
    return killed_at


def delivered_metric(d):
    """The daemon's count of delivered webhooks, from whichever counter has
    an outcome="delivered" series (name with webhook and deliver), or None."""
    m = d.metrics()
    total, found = 0.0, False
    for name, labels, value in m.samples:
        if ("webhook" in name and "deliver" in name and name.endswith("_total")
                and labels.get("outcome") == "delivered"):
            total += value
            found = True
    return total if found else None


# -------------------------------------------------------------------- tests


def test_kill_9_mid_stream_loses_nothing_and_repeats_only_the_claimed(db, receiver, daemon):
    N = 10000
    rx = receiver()
    rx.default("/hook", status=204, delay=0.005)
    ep = Endpoint(db, rx.url("/hook"), max_in_flight=50)
    cfg = settings(delivery_batch_size=200)
    d1 = daemon(db, settings=cfg)
    d1.wait_ready()
    ep.enqueue(N)
    messages = ep.messages()
    assert len(messages) == N

    rx.wait_for(N // 4, "/hook", timeout=40)
    kill_9(d1, db)
    at_kill = dict(db.sql("SELECT message_id, attempts FROM webhook_deliveries "
                          "WHERE endpoint_id = %s AND state = 'delivering'", (ep.id,)))
    states_at_kill = ep.states()
    received_at_kill = len(rx.requests("/hook"))
    assert received_at_kill < N, "every message arrived before the kill: nothing was tested"
    assert states_at_kill.get("delivered", 0) < N

    t0 = time.monotonic()
    d2 = daemon(db, settings=cfg)
    wait_until(lambda: ep.all_delivered(N), 45, f"all {N} deliveries delivered after the restart",
               interval=0.25)
    elapsed = time.monotonic() - t0
    time.sleep(0.5)  # anything sent late would show up now

    reqs = rx.requests("/hook")
    got = counts(reqs)
    missing = set(messages) - set(got)
    assert not missing, f"{len(missing)} messages never arrived, e.g. {sorted(missing)[:3]}"
    dups = duplicates(reqs)
    extra = sum(dups.values())
    assert extra <= len(at_kill), (
        f"{extra} duplicate requests, but only {len(at_kill)} deliveries were 'delivering' at "
        f"the kill (states then: {states_at_kill})")
    outside = set(dups) - set(at_kill)
    assert not outside, (f"{len(outside)} webhook-ids received twice that were not in flight at "
                         f"the kill, e.g. {sorted(outside)[:3]}")
    assert all(v == 1 for v in dups.values()), f"ids received 3+ times: {dups}"
    check_requests(reqs, ep, messages)
    assert d2.running()
    print(f"\n{N} messages; kill after {received_at_kill} received, {len(at_kill)} delivering "
          f"({states_at_kill}); {extra} duplicates; restart to all delivered {elapsed:.1f}s")


def test_postgres_restart_during_deliveries_loses_nothing(db, receiver, daemon, pg_restored):
    N = 3000
    rx = receiver()
    rx.default("/hook", status=204, delay=0.02)
    ep = Endpoint(db, rx.url("/hook"), max_in_flight=10)
    d = daemon(db, settings=settings(delivery_batch_size=100))
    d.wait_ready()
    ep.enqueue(N)
    messages = ep.messages()

    rx.wait_for(N // 4, "/hook", timeout=30)
    db.pg.restart()
    received_at_restart = len(rx.requests("/hook"))
    assert received_at_restart < N, "every message arrived before the restart: nothing was tested"

    t0 = time.monotonic()
    wait_until(lambda: ep.all_delivered(N), 45,
               f"all {N} deliveries recorded delivered after the restart", interval=0.25)
    elapsed = time.monotonic() - t0
    reqs = rx.requests("/hook")
    missing = set(messages) - set(counts(reqs))
    assert not missing, f"{len(missing)} messages never arrived, e.g. {sorted(missing)[:3]}"
    check_requests(reqs, ep, messages)
    assert d.running(), f"linkpulsed exited ({d.proc.returncode}) after the PostgreSQL restart"
    assert d.get("/healthz").status_code == 200
    print(f"\n{N} messages; restart after {received_at_restart} received; "
          f"{sum(duplicates(reqs).values())} duplicates; all delivered {elapsed:.1f}s later")


def test_two_daemons_share_the_work_without_duplicates(db, receiver, daemon):
    N = 3000
    rx = receiver()
    rx.default("/hook", status=204, delay=0.01)
    ep = Endpoint(db, rx.url("/hook"), max_in_flight=10)
    cfg = settings(delivery_lease="30s", delivery_timeout="2s", delivery_batch_size=50)
    d1 = daemon(db, settings=cfg)
    d2 = daemon(db, settings=cfg)
    d1.wait_ready()
    d2.wait_ready()

    # Who holds leases, sampled while the work runs (attempts do not name the instance;
    # the lease owner is "host:pid").
    owners = collections.Counter()
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for owner, n in db.sql("SELECT leased_by, count(*) FROM webhook_deliveries "
                                   "WHERE state = 'delivering' GROUP BY 1"):
                owners[owner] += n
            time.sleep(0.02)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        ep.enqueue(N)
        messages = ep.messages()
        wait_until(lambda: ep.all_delivered(N), 45, f"all {N} deliveries delivered", interval=0.25)
    finally:
        stop.set()
        t.join(5)
    time.sleep(0.5)

    reqs = rx.requests("/hook")
    dups = duplicates(reqs)
    assert not dups, f"{len(dups)} webhook-ids received more than once, e.g. {list(dups)[:3]}"
    assert set(counts(reqs)) == set(messages)
    check_requests(reqs, ep, messages)
    attempts = db.sql("SELECT count(*), count(DISTINCT delivery_id), max(attempt) "
                      "FROM webhook_attempts WHERE endpoint_id = %s", (ep.id,))[0]
    assert attempts == (N, N, 1), f"(attempts, deliveries attempted, max attempt) = {attempts}"

    by_pid = {d.proc.pid: 0 for d in (d1, d2)}
    for owner, n in owners.items():
        pid = int(str(owner).rsplit(":", 1)[-1])
        assert pid in by_pid, f"lease owner {owner!r} is neither daemon ({list(by_pid)})"
        by_pid[pid] += n
    assert all(by_pid.values()), f"lease samples per daemon pid: {by_pid}: one did no work"
    m1, m2 = delivered_metric(d1), delivered_metric(d2)
    if m1 is not None and m2 is not None:
        assert m1 > 0 and m2 > 0, f"delivered per daemon (metrics): {m1}, {m2}"
        assert m1 + m2 == N, f"delivered per daemon (metrics): {m1} + {m2} != {N}"
    print(f"\nlease samples per pid {by_pid}; delivered per daemon (metrics) {m1}, {m2}")


def test_crashed_instances_claims_are_taken_over_after_the_lease(db, receiver, daemon):
    N = 5
    LEASE = 6.0
    rx = receiver()
    # A's requests hang (one scripted response each); afterwards: 204 at once.
    rx.behave("/hook", *[{"hang": True}] * N)
    rx.default("/hook", status=204)
    ep = Endpoint(db, rx.url("/hook"), max_in_flight=10)
    cfg = settings(delivery_lease=f"{LEASE:g}s", delivery_timeout="5s")
    a = daemon(db, settings=cfg)
    a.wait_ready()
    ids = set(ep.enqueue(N))
    rx.wait_for(N, "/hook", timeout=10)
    killed_at = kill_9(a, db)
    assert rx.pending("/hook") == 0
    leases = db.sql("SELECT state, leased_by, extract(epoch FROM next_attempt_at)::float8 "
                    "FROM webhook_deliveries WHERE endpoint_id = %s", (ep.id,))
    assert all(s == "delivering" for s, _, _ in leases), f"not all claimed by A: {leases}"
    lease_end = min(x for _, _, x in leases)

    b = daemon(db, settings=cfg)
    wait_until(lambda: ep.all_delivered(N), LEASE + 15, "B delivering A's claims", interval=0.1)
    by_b = [r for r in rx.requests("/hook") if r.at > killed_at]
    assert {r.msg_id for r in by_b} == ids
    assert len(by_b) == N, f"B sent {len(by_b)} requests for {N} messages"
    first = min(r.at for r in by_b) - killed_at
    assert first >= LEASE - 1, f"B delivered {first:.2f}s after the kill, before the {LEASE}s lease ran out"
    assert min(r.at for r in by_b) >= lease_end - 0.05, "B delivered before A's lease ended"
    assert first <= LEASE + 5, f"B took {first:.2f}s after the kill to take over a {LEASE}s lease"
    check_requests(by_b, ep)
    # The crashed attempt counts: B's was the second.
    rows = db.sql("SELECT attempt, status_code FROM webhook_attempts WHERE endpoint_id = %s",
                  (ep.id,))
    assert sorted(rows) == [(2, 204)] * N, rows
    assert b.running()
    print(f"\nB's first delivery {first:.2f}s after the kill (lease {LEASE}s)")


@pytest.mark.parametrize("via", ["sql", "api"])
def test_disable_holds_enable_delivers_replay_resends(db, receiver, daemon, via):
    """Disable with SQL; enable and replay with SQL, or with POST
    /v1/webhooks/{id}/enable and /replay (a webhooks:write token)."""
    N = 20
    rx = receiver()
    ep = Endpoint(db, rx.url("/hook"), max_in_flight=10)
    d = daemon(db, settings=FAST)
    d.wait_ready()
    token = create_token(db, ep.slug, scopes="webhooks:write") if via == "api" else None

    assert db.sql("SELECT lp_webhook_disable(%s, %s, 'test')", (ep.ws, ep.id))[0][0] is True
    ids = set(ep.enqueue(N))
    time.sleep(2)
    assert rx.requests("/hook") == [], "a disabled endpoint received messages"
    assert ep.states() == {"held": N}

    if via == "api":
        r = d.post(f"/v1/webhooks/{ep.id}/enable", token=token)
        assert r.status_code == 200, f"{r.status_code} {r.text}"
        body = r.json()
        assert body.get("requeued") == N, body
        assert body["webhook"]["status"] == "WEBHOOK_STATUS_ACTIVE", body
    else:
        assert db.sql("SELECT lp_webhook_enable(%s, %s)", (ep.ws, ep.id))[0][0] == N
    rx.wait_for(N, "/hook", timeout=10)
    wait_until(lambda: ep.all_delivered(N), 10, "the held messages delivered after enable")
    time.sleep(0.3)
    first = rx.requests("/hook")
    assert len(first) == N and set(counts(first)) == ids, counts(first)

    if via == "api":
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        r = d.post(f"/v1/webhooks/{ep.id}/replay", token=token, json={"since": since})
        assert r.status_code == 202, f"{r.status_code} {r.text}"
        replayed = r.json().get("queued")
    else:
        replayed = db.sql("SELECT lp_webhook_replay(%s, %s, now() - interval '1 hour', false)",
                          (ep.ws, ep.id))[0][0]
    assert replayed == N
    rx.wait_for(2 * N, "/hook", timeout=10)
    wait_until(lambda: ep.all_delivered(N), 10, "the replayed messages delivered")
    time.sleep(0.3)
    reqs = rx.requests("/hook")
    again = reqs[N:]
    assert len(again) == N, f"{len(again)} requests after the replay of {N}"
    assert set(counts(again)) == ids and max(counts(again).values()) == 1, \
        "the replay did not re-send each message once with its webhook-id"
    check_requests(reqs, ep)
    rows = db.sql("SELECT attempt, count(*) FROM webhook_attempts WHERE endpoint_id = %s "
                  "GROUP BY 1 ORDER BY 1", (ep.id,))
    assert rows == [(1, 2 * N)], f"attempts by number: {rows}"
