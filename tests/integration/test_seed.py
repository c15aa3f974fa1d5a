"""linkpulsectl seed and simulate: demo data loaded into a real PostgreSQL.

seed: the catalogue and N events are there, consistent with each other and
shaped like real traffic (popular links, day and week rhythm, bots, errors,
conversions); the same seed loads the same data; bad arguments are refused.
simulate: a steady rate in many statements (so many NOTIFYs), bursts on a
link, a clean stop on SIGINT/SIGTERM, and a helpful error on an empty
workspace.
"""
import datetime
import re
import select
import signal
import subprocess
import time
import uuid

import pytest

from conftest import (CLEAN_ENV, LINKPULSECTL, SANITIZER_REPORT, create_workspace, ctl, run,
                      wait_until)

EVENTS = 20000
DAYS = 14
SEEDED = re.compile(r"^seeded (\d+) events in [0-9.]+ s \((\d+) events/s\)$", re.M)


def until_text(days_ago=1):
    """A fixed end of range (midnight UTC), the same for every run today."""
    day = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=days_ago)
    return f"{day.isoformat()} 00:00:00+00"


def seed(db, slug, *extra, events=EVENTS, timeout=120):
    r = ctl(db, "seed", "--workspace", slug, "--events", str(events), *extra, timeout=timeout)
    assert r.returncode == 0, f"seed failed:\n{r.stderr}"
    m = SEEDED.search(r.stderr)
    assert m, f"no throughput line in:\n{r.stderr}"
    assert int(m.group(1)) == events
    return r


def one(db, query, params=None):
    return db.sql(query, params)[0][0]


def workspace(db, slug):
    return one(db, "SELECT id FROM workspaces WHERE slug = %s", (slug,))


# ------------------------------------------------------------------ seed


@pytest.fixture
def seeded(db):
    """db with workspace 'demo' seeded once: (db, workspace id, until)."""
    until = until_text()
    seed(db, "demo", "--days", str(DAYS), "--until", until, "--seed", "7")
    return db, workspace(db, "demo"), until


def test_seed_counts_and_time_range(seeded):
    db, ws, until = seeded
    n, first, last, inside = db.sql(
        "SELECT count(*), min(occurred_at), max(occurred_at), "
        "count(*) FILTER (WHERE occurred_at >= %s::timestamptz - %s * interval '1 day' "
        "AND occurred_at < %s::timestamptz) FROM events WHERE workspace_id = %s",
        (until, DAYS, until, ws))[0]
    assert n == EVENTS
    assert inside == EVENTS, f"events outside the {DAYS} days before {until}: {first} .. {last}"
    # spread over the whole range, not bunched at one end
    assert (last - first) > datetime.timedelta(days=DAYS - 1)
    assert one(db, "SELECT count(DISTINCT occurred_at::date) FROM events") >= DAYS


def test_seed_catalogue(seeded):
    db, ws, _ = seeded
    links = db.sql("SELECT shortlink, name, destination, entrypoint FROM links WHERE workspace_id = %s", (ws,))
    assert len(links) == 40
    assert all(name and dest.startswith("https://") and entry.endswith("/" + short)
               for short, name, dest, entry in links)
    tags = {t for (t,) in db.sql("SELECT name FROM tags WHERE workspace_id = %s", (ws,))}
    assert {"pricing", "event", "print", "social", "product"} <= tags
    assert one(db, "SELECT count(DISTINCT link_id) FROM link_tags WHERE workspace_id = %s", (ws,)) == 40
    assert one(db, "SELECT count(DISTINCT link_id) FROM qr_codes WHERE workspace_id = %s", (ws,)) == 40

    nvisitors, profiles, companies, titles = db.sql(
        "SELECT count(*), count(email), count(company), count(job_title) FROM visitors "
        "WHERE workspace_id = %s", (ws,))[0]
    assert nvisitors >= 100
    assert 0.2 < profiles / nvisitors < 0.8, "visitors with a profile"
    assert companies > 0 and titles > 0
    assert one(db, "SELECT count(*) FROM visitors WHERE email IS NOT NULL "
                   "AND (first_name IS NULL OR last_name IS NULL)") == 0
    # attributes: key -> {"type": "VISITOR_ATTRIBUTE_TYPE_...", "value": "..."}
    bad = one(db, "SELECT count(*) FROM visitors v, jsonb_each(v.attributes) a "
                  "WHERE jsonb_typeof(a.value) <> 'object' "
                  "OR a.value->>'type' NOT LIKE 'VISITOR_ATTRIBUTE_TYPE_%%' "
                  "OR jsonb_typeof(a.value->'value') <> 'string'")
    assert bad == 0
    assert one(db, "SELECT count(*) FROM visitors WHERE attributes ? 'plan'") > 0

    countries, unknown_zones, bad_geo = db.sql(
        "SELECT count(DISTINCT country), "
        "count(*) FILTER (WHERE timezone NOT IN (SELECT name FROM pg_timezone_names)), "
        "count(*) FILTER (WHERE country !~ '^[A-Z]{2}$' OR city IS NULL OR region IS NULL "
        "OR isp IS NULL OR asn IS NULL) "
        "FROM devices WHERE workspace_id = %s", (ws,))[0]
    assert countries >= 20 and unknown_zones == 0 and bad_geo == 0
    kinds = {k for (k,) in db.sql("SELECT DISTINCT device_type FROM devices")}
    assert {"DEVICE_TYPE_MOBILE", "DEVICE_TYPE_DESKTOP", "DEVICE_TYPE_TABLET"} <= kinds
    assert one(db, "SELECT count(*) FROM devices WHERE device_actor = 'DEVICE_ACTOR_BOT' "
                   "AND visitor_id IS NULL") > 0


def test_seed_events_reference_their_workspace(seeded):
    db, ws, _ = seeded
    seed(db, "other", "--seed", "7", events=2000)  # the same seed in another workspace
    other = workspace(db, "other")
    missing = db.sql(
        "SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM links l "
        "  WHERE l.workspace_id = e.workspace_id AND l.id = e.link_id)), "
        "count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM devices d "
        "  WHERE d.workspace_id = e.workspace_id AND d.id = e.device_id)), "
        "count(*) FILTER (WHERE e.visitor_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM visitors v "
        "  WHERE v.workspace_id = e.workspace_id AND v.id = e.visitor_id)), "
        "count(*) FILTER (WHERE e.qr_code_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM qr_codes q "
        "  WHERE q.workspace_id = e.workspace_id AND q.id = e.qr_code_id AND q.link_id = e.link_id)) "
        "FROM events e")[0]
    assert missing == (0, 0, 0, 0), "events whose link, device, visitor or QR code is not theirs"
    assert one(db, "SELECT count(*) FROM events WHERE workspace_id = %s", (other,)) == 2000
    shared = one(db, "SELECT count(*) FROM links a JOIN links b ON a.id = b.id "
                     "WHERE a.workspace_id = %s AND b.workspace_id = %s", (ws, other))
    assert shared == 0, "two workspaces seeded alike share ids"
    # an event's visitor owns its device, and its geo and device columns are the device's
    mismatched = one(db, """
        SELECT count(*) FROM events e JOIN devices d
          ON d.workspace_id = e.workspace_id AND d.id = e.device_id
        WHERE e.visitor_id IS DISTINCT FROM d.visitor_id
           OR (e.country, e.region, e.city, e.timezone, e.isp, e.asn)
              IS DISTINCT FROM (d.country, d.region, d.city, d.timezone, d.isp, d.asn)
           OR (e.device_type, e.platform, e.browser, e.language)
              IS DISTINCT FROM (d.device_type, d.platform_name, d.browser_name, d.browser_language)
           OR e.is_bot <> (d.device_actor = 'DEVICE_ACTOR_BOT')""")
    assert mismatched == 0


def test_seed_traffic_shape(seeded):
    db, ws, _ = seeded
    per_link = [n for (n,) in db.sql(
        "SELECT count(e.link_id) FROM links l LEFT JOIN events e "
        "ON e.workspace_id = l.workspace_id AND e.link_id = l.id "
        "WHERE l.workspace_id = %s GROUP BY l.id ORDER BY 1 DESC", (ws,))]
    median = per_link[len(per_link) // 2]
    assert per_link[0] >= 5 * max(median, 1), f"link popularity not skewed: {per_link}"

    shares = {
        "bots": "is_bot",
        "errors": "status = 'error'",
        "conversions": "action = 'ACTION_CONVERSION'",
        "forms": "action = 'ACTION_FORM_SUBMISSION'",
        "rescans": "action = 'ACTION_RESCAN'",
        "returning": "visit_type = 'VISIT_TYPE_RETURNING'",
        "scans": "action IN ('ACTION_SCAN', 'ACTION_RESCAN')",
        "campaigns": "utm_campaign IS NOT NULL",
        "referred": "referrer IS NOT NULL",
    }
    row = db.sql("SELECT " + ", ".join(f"avg(({cond})::int)::float8" for cond in shares.values())
                 + " FROM events WHERE workspace_id = %s", (ws,))[0]
    f = dict(zip(shares, row))
    assert 0.015 <= f["bots"] <= 0.05, f
    assert 0.004 <= f["errors"] <= 0.02, f
    assert 0.002 <= f["conversions"] <= 0.04, f
    assert 0.002 <= f["forms"] <= 0.05, f
    assert f["rescans"] > 0.02 and 0.1 < f["returning"] < 0.9, f
    assert f["scans"] > 0.2 and f["campaigns"] > 0.3 and f["referred"] > 0.05, f

    # errors say why; bots are the crawler devices
    assert one(db, "SELECT count(*) FROM events WHERE status = 'error' AND error_code IS NULL") == 0
    assert one(db, "SELECT count(*) FROM events WHERE status = 'ok' AND error_code IS NOT NULL") == 0
    p50, p99 = db.sql("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY redirect_latency_ms), "
                      "percentile_cont(0.99) WITHIN GROUP (ORDER BY redirect_latency_ms) "
                      "FROM events WHERE status = 'ok' AND redirect_latency_ms IS NOT NULL")[0]
    assert 10 <= p50 <= 200 and p50 < p99 <= 5000, (p50, p99)


def test_seed_daily_and_weekly_rhythm(seeded):
    db, ws, _ = seeded
    # hours in each event's own (the city's) time zone
    night, day = db.sql(
        "SELECT count(*) FILTER (WHERE h BETWEEN 1 AND 5), count(*) FILTER (WHERE h BETWEEN 10 AND 14) "
        "FROM (SELECT extract(hour FROM occurred_at AT TIME ZONE timezone) h FROM events "
        "WHERE workspace_id = %s AND NOT is_bot) s", (ws,))[0]
    assert night * 3 < day, (night, day)
    weekday, weekend = db.sql(
        "SELECT avg(n) FILTER (WHERE dow BETWEEN 1 AND 5), avg(n) FILTER (WHERE dow IN (0, 6)) "
        "FROM (SELECT (occurred_at AT TIME ZONE timezone)::date d, "
        "extract(dow FROM occurred_at AT TIME ZONE timezone) dow, count(*) n "
        "FROM events WHERE workspace_id = %s AND NOT is_bot GROUP BY 1, 2) s", (ws,))[0]
    assert float(weekend) < 0.85 * float(weekday), (weekday, weekend)


def fingerprint(db):
    return (db.sql("SELECT l.shortlink, count(*) FROM events e JOIN links l ON l.id = e.link_id "
                   "GROUP BY 1 ORDER BY 1"),
            db.sql("SELECT action, country, count(*), sum(redirect_latency_ms) FROM events "
                   "GROUP BY 1, 2 ORDER BY 1, 2"),
            one(db, "SELECT md5(string_agg(id::text || coalesce(email, ''), ',' ORDER BY id)) FROM visitors"),
            one(db, "SELECT md5(string_agg(occurred_at::text || device_id::text, ',' "
                    "ORDER BY occurred_at, device_id)) FROM events"))


def test_seed_is_deterministic(db, empty_db):
    assert ctl(empty_db, "migrate").returncode == 0
    until = until_text(2)
    args = ("--days", "10", "--until", until, "--seed", "12345", "--links", "25")
    seed(db, "same", *args, "--jobs", "1")
    seed(empty_db, "same", *args, "--jobs", "3")  # the data does not depend on the jobs
    a, b = fingerprint(db), fingerprint(empty_db)
    assert a[0] == b[0], "per-link counts differ"
    assert a == b
    assert len(a[0]) == 25

    # another seed, another workspace's data
    seed(db, "different", "--days", "10", "--until", until, "--seed", "54321", "--links", "25")
    ws = workspace(db, "different")
    other = db.sql("SELECT l.shortlink, count(*) FROM events e JOIN links l ON l.id = e.link_id "
                   "WHERE e.workspace_id = %s GROUP BY 1 ORDER BY 1", (ws,))
    assert other != a[0]


@pytest.mark.parametrize("args, option", [
    (["--events", "-5"], "--events"),
    (["--events", "lots"], "--events"),
    (["--events", "100", "--bogus", "1"], "--bogus"),
    (["--events", "100", "--days", "0"], "--days"),
    (["--events", "100", "--jobs", "0"], "--jobs"),
    (["--events", "100", "--links", "-1"], "--links"),
    (["--events", "100", "--seed", "-1"], "--seed"),
    (["--events", "100", "--until", "not a time"], "--until"),
    ([], "--events"),
])
def test_seed_bad_arguments(db, args, option):
    r = ctl(db, "seed", "--workspace", "demo", *args)
    assert r.returncode != 0
    assert option in r.stderr, r.stderr
    assert one(db, "SELECT count(*) FROM events") == 0
    assert one(db, "SELECT count(*) FROM links") == 0


def test_seed_refuses_a_workspace_with_links(db):
    seed(db, "demo", events=500)
    r = ctl(db, "seed", "--workspace", "demo", "--events", "500")
    assert r.returncode != 0
    assert "demo" in r.stderr and "links" in r.stderr, r.stderr
    assert one(db, "SELECT count(*) FROM events") == 500


def listen(db):
    conn = db.pg.connect(db.name)
    with conn.cursor() as cur:
        cur.execute("LISTEN linkpulse_events")
    return conn


def notifications(conn, seconds=2.0):
    """How many linkpulse_events notifications arrive within seconds."""
    n, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        select.select([conn], [], [], 0.1)
        conn.poll()
        n += len(conn.notifies)
        conn.notifies.clear()
    return n


def test_seed_wakes_listeners(db):
    listener = listen(db)
    try:
        seed(db, "demo", "--jobs", "2", events=3000)
        assert notifications(listener) >= 1, "seed sent no NOTIFY linkpulse_events"
    finally:
        listener.close()


def test_seed_as_an_ordinary_role(db):
    """A role that may not turn row triggers off: every row's foreign keys
    are checked, and the catalogue's checks stay fast when the statistics
    say the tables are empty (the role owns them, so seed analyzes them)."""
    role = "lp_seed_" + uuid.uuid4().hex[:8]
    db.sql(f"CREATE ROLE {role} LOGIN")
    try:
        db.sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        db.sql(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        for table in ("tags", "links", "visitors"):
            db.sql(f"ALTER TABLE {table} OWNER TO {role}")
        url = db.url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
        assert url != db.url
        # days inside the months that migrate prepared: creating one needs the owner
        argv = [LINKPULSECTL, "--database-url", url, "seed", "--events", "3000", "--days", "7"]
        r = run(argv + ["--workspace", "first", "--visitors", "20000"], timeout=120)
        assert r.returncode == 0, r.stderr
        assert "checked on every row" in r.stderr, r.stderr
        assert one(db, "SELECT count(*) FROM events") == 3000

        db.sql("DELETE FROM workspaces")
        db.sql("ANALYZE visitors, devices, links, tags")
        started = time.monotonic()
        r = run(argv + ["--workspace", "second", "--visitors", "50000"], timeout=120)
        elapsed = time.monotonic() - started
        assert r.returncode == 0, r.stderr
        assert elapsed < 20, f"seed took {elapsed:.1f} s"
        ws = workspace(db, "second")
        assert one(db, "SELECT count(*) FROM events WHERE workspace_id = %s", (ws,)) == 3000
    finally:
        db.sql(f"REASSIGN OWNED BY {role} TO postgres")
        db.sql(f"DROP OWNED BY {role}")
        db.pg.sql(f"DROP ROLE {role}")


def test_seed_after_a_deleted_workspace(db):
    """Statistics that say the catalogue is empty must not make each
    foreign-key check read the whole workspace (that took minutes)."""
    seed(db, "first", "--visitors", "50000", events=500)
    db.sql("DELETE FROM workspaces")
    db.sql("ANALYZE visitors, devices, links, tags")  # now "empty", with many pages
    started = time.monotonic()
    seed(db, "second", "--visitors", "50000", events=500, timeout=120)
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"seed took {elapsed:.1f} s"
    assert one(db, "SELECT count(*) FROM visitors") == 50000


def test_seed_fills_an_existing_workspace(db):
    ws = create_workspace(db, "mine", "Mine", "--timezone", "Europe/Paris")
    seed(db, "mine", events=1000)
    assert one(db, "SELECT count(*) FROM events WHERE workspace_id = %s", (ws,)) == 1000
    assert one(db, "SELECT timezone FROM workspaces WHERE id = %s", (ws,)) == "Europe/Paris"


# -------------------------------------------------------------- simulate


def simulate(db, *args, timeout=60):
    return ctl(db, "simulate", "--workspace", "demo", *args, timeout=timeout)


def new_events(db, after_id):
    return db.sql("SELECT count(*), count(DISTINCT xid) FROM events WHERE id > %s", (after_id,))[0]


def last_id(db):
    return one(db, "SELECT coalesce(max(id), 0) FROM events")


@pytest.fixture
def small(db):
    """db with workspace 'demo' seeded with a few events."""
    seed(db, "demo", "--seed", "3", events=2000)
    return db


def test_simulate_rate_and_notify(small):
    db = small
    listener = listen(db)
    before = last_id(db)
    r = simulate(db, "--rate", "200", "--duration", "3s", "--seed", "1")
    assert r.returncode == 0, r.stderr
    n, statements = new_events(db, before)
    assert 510 <= n <= 690, f"{n} events at 200/s for 3 s"
    assert statements >= 10, f"{n} events in only {statements} statements"

    notified = notifications(listener)
    listener.close()
    assert notified >= 10, f"{notified} notifications for {statements} statements"

    bad = one(db, "SELECT count(*) FROM events e WHERE e.id > %s AND (NOT EXISTS (SELECT 1 FROM links l "
                  "WHERE l.workspace_id = e.workspace_id AND l.id = e.link_id) OR NOT EXISTS "
                  "(SELECT 1 FROM devices d WHERE d.workspace_id = e.workspace_id AND d.id = e.device_id "
                  "AND d.country IS NOT DISTINCT FROM e.country))", (before,))
    assert bad == 0
    recent = one(db, "SELECT count(*) FROM events WHERE id > %s AND occurred_at > now() - interval '1 minute'",
                 (before,))
    assert recent == n, "simulated events happen now"


def test_simulate_burst_raises_the_links_share(small):
    db = small
    # a link simulate ranks low (it ranks by event_count, then age)
    link = one(db, "SELECT shortlink FROM links ORDER BY event_count DESC, created_at, shortlink "
                   "LIMIT 1 OFFSET 20")

    def share(*burst):
        before = last_id(db)
        r = simulate(db, "--rate", "300", "--duration", "2s", "--seed", "5", *burst)
        assert r.returncode == 0, r.stderr
        total, on_link = db.sql(
            "SELECT count(*), count(*) FILTER (WHERE l.shortlink = %s) FROM events e "
            "JOIN links l ON l.id = e.link_id WHERE e.id > %s", (link, before))[0]
        return on_link / total, r.stderr

    plain, _ = share()
    bursty, log = share("--burst", f"{link}:20x:0s:1m")
    assert bursty > 0.08 and bursty > 4 * plain, (plain, bursty)
    assert f"burst on {link}" in log


def test_simulate_bad_burst(small):
    r = simulate(small, "--rate", "10", "--burst", "nope")
    assert r.returncode != 0 and "--burst" in r.stderr
    r = simulate(small, "--rate", "10", "--duration", "1s", "--burst", "no-such-link:5x:0:1s")
    assert r.returncode != 0 and "no-such-link" in r.stderr
    r = simulate(small, "--rate", "-3")
    assert r.returncode != 0 and "--rate" in r.stderr


def test_simulate_needs_a_seeded_workspace(db):
    create_workspace(db, "demo")
    r = simulate(db, "--rate", "10", "--duration", "1s")
    assert r.returncode != 0
    assert "seed" in r.stderr and "demo" in r.stderr, r.stderr
    assert one(db, "SELECT count(*) FROM events") == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_simulate_stops_cleanly(small, sig):
    db = small
    before = last_id(db)
    p = subprocess.Popen([LINKPULSECTL, "--database-url", db.url, "simulate", "--workspace", "demo",
                          "--rate", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=CLEAN_ENV)
    try:
        wait_until(lambda: new_events(db, before)[0] > 0 or p.poll() is not None, 15,
                   "the first simulated events")
        assert p.poll() is None, p.communicate()[1]
        time.sleep(1)
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not SANITIZER_REPORT.search(err), err
    assert p.returncode == 0, err
    m = re.search(r"^simulated (\d+) events", err, re.M)
    assert m, err
    n, _ = new_events(db, before)
    assert n == int(m.group(1)) and n >= 50, (n, err)
