"""Rollups: every answer they give equals the same answer computed from the
raw events, in several zones (whole-hour, half-hour, 45-minute and
negative offsets, daylight saving) and along every dimension they keep.

Two kinds of test: lp_rollup_apply() called directly with batch bounds
(the SQL alone), and the real daemon folding events through its pipeline,
including after a kill -9 (each event counted exactly once).  Visitor sets
here are small, so HLL's explicit representation makes them exact; one
test checks a larger set against the promised error.
"""
import datetime as dt
import random
import signal
import threading
import time
import uuid
from zoneinfo import ZoneInfo

from psycopg2.extras import execute_values

from conftest import create_workspace, wait_until

ZONES = ["UTC", "Europe/Paris", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"]
FAST = {"pipeline.lease": "1s", "pipeline.poll_interval": "200ms"}
MAX_XID = "18446744073709551615"
MAX_ID = 9223372036854775807

GEO = {
    "FR": [("IDF", "Paris", "Europe/Paris"), ("ARA", "Lyon", "Europe/Paris")],
    "IN": [("MH", "Mumbai", "Asia/Kolkata"), ("KA", "Bengaluru", "Asia/Kolkata")],
    "NP": [("BA", "Kathmandu", "Asia/Kathmandu")],
    "CA": [("NL", "St. John's", "America/St_Johns"), ("ON", "Toronto", "America/Toronto")],
    "US": [("NY", "New York", "America/New_York")],
    None: [(None, None, None)],
}
DEVICES = ["DEVICE_TYPE_MOBILE", "DEVICE_TYPE_DESKTOP", "DEVICE_TYPE_TABLET", None]
PLATFORMS = ["iOS", "Android", "Windows", None]
BROWSERS = ["Safari", "Chrome", "Firefox", None]
LANGUAGES = ["en", "fr", "hi", None]
ACTIONS = ["ACTION_SCAN"] * 6 + ["ACTION_RESCAN", "ACTION_CLICK", "ACTION_FORM_SUBMISSION",
                                 "ACTION_CONVERSION"]
STATUSES = ["ok"] * 8 + ["error", "blocked"]
VISIT_TYPES = ["VISIT_TYPE_FIRST", "VISIT_TYPE_RETURNING"]

COLUMNS = ("workspace_id, occurred_at, link_id, qr_code_id, visitor_id, device_id, action, "
           "status, visit_type, is_bot, redirect_latency_ms, country, region, city, timezone, "
           "device_type, platform, browser, language")


# ------------------------------------------------------------ the data


class Workspace:
    """A workspace with links, QR codes and tags, and a deterministic event source."""

    def __init__(self, db, tz="Europe/Paris", nlinks=4, seed=1):
        self.db = db
        self.tz = tz
        self.id = create_workspace(db, "rw-" + uuid.uuid4().hex[:8], None, "--timezone", tz)
        self.rng = random.Random(seed)
        self.links, self.qrs = [], {}
        for i in range(nlinks):
            link = db.sql("INSERT INTO links (workspace_id, shortlink) VALUES (%s, %s) RETURNING id",
                          (self.id, f"l{i}-{uuid.uuid4().hex[:6]}"))[0][0]
            self.links.append(link)
            self.qrs[link] = [db.sql("INSERT INTO qr_codes (workspace_id, link_id) VALUES (%s, %s)"
                                     " RETURNING id", (self.id, link))[0][0] for _ in range(2)]
        tags = [db.sql("INSERT INTO tags (workspace_id, name) VALUES (%s, %s) RETURNING id",
                       (self.id, name))[0][0] for name in ("spring", "print")]
        # The first link has both tags, the next one each, the others none:
        # a tag's visitors are a union over its links.
        for link, its_tags in zip(self.links, [tags, tags[:1], tags[1:]]):
            for tag in its_tags:
                db.sql("INSERT INTO link_tags (workspace_id, link_id, tag_id) VALUES (%s, %s, %s)",
                       (self.id, link, tag))
        # Visitors and anonymous devices: few enough for exact HLL sets.
        self.visitors = [str(uuid.UUID(int=self.rng.getrandbits(128))) for _ in range(40)]
        self.devices = [str(uuid.UUID(int=self.rng.getrandbits(128))) for _ in range(30)]

    def instants(self, days=6, spread=60):
        """Instants over the last days: just around midnight in every zone, and at random."""
        today = dt.datetime.now(dt.timezone.utc).date()
        out = []
        for back in range(1, days + 1):
            day = today - dt.timedelta(days=back)
            for zone in ZONES:
                midnight = dt.datetime.combine(day, dt.time(0), ZoneInfo(zone))
                for minutes in (-46, -31, -16, -15, -1, 0, 1, 14, 15, 29, 30, 44, 45, 46):
                    out.append(midnight + dt.timedelta(minutes=minutes, seconds=self.rng.randint(0, 59)))
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
        out += [start + dt.timedelta(seconds=self.rng.uniform(0, days * 86400)) for _ in range(spread)]
        return out

    def event(self, at):
        r = self.rng
        link = r.choice(self.links + self.links[:1] * 2)  # the first link is the busiest
        country = r.choice(list(GEO))
        region, city, tz = r.choice(GEO[country])
        who = r.random()
        visitor = r.choice(self.visitors) if who < 0.7 else None
        device = r.choice(self.devices) if who < 0.95 else None
        return (self.id, at, link, r.choice(self.qrs[link] + [None]), visitor, device,
                r.choice(ACTIONS), r.choice(STATUSES), r.choice(VISIT_TYPES), r.random() < 0.1,
                r.choice([None, r.randint(3, 400)]), country, region, city, tz,
                r.choice(DEVICES), r.choice(PLATFORMS), r.choice(BROWSERS), r.choice(LANGUAGES))

    def insert(self, instants, conn=None):
        """Inserts one event per instant in one transaction."""
        rows = [self.event(at) for at in instants]
        own = conn is None
        conn = conn or self.db.pg.connect(self.db.name)
        try:
            with conn.cursor() as cur:
                execute_values(cur, f"INSERT INTO events ({COLUMNS}) VALUES %s", rows)
        finally:
            if own:
                conn.close()
        return len(rows)


def apply(db, prev="1:1:", cur=None, frm=("0", 0), to=(MAX_XID, MAX_ID)):
    """lp_rollup_apply over one batch, in its own transaction; returns its count."""
    conn = db.pg.connect(db.name)
    try:
        with conn.cursor() as c:
            if cur is None:
                c.execute("SELECT pg_current_snapshot()::text")
                cur = c.fetchone()[0]
            c.execute("SELECT lp_rollup_apply(%s::pg_snapshot, %s::pg_snapshot, %s::xid8, %s,"
                      " %s::xid8, %s)", (prev, cur, frm[0], frm[1], to[0], to[1]))
            return c.fetchone()[0]
    finally:
        conn.close()


def snapshot(db):
    return db.sql("SELECT pg_current_snapshot()::text")[0][0]


# ------------------------------------------------------ the questions

VISITOR = "coalesce(e.visitor_id, e.device_id)"
CARD = "round(hll_cardinality(hll_union_agg(r.visitors)))::bigint"


def rows(db, sql, params):
    """{key tuple: (events, visitors)} from rows (key..., events, visitors)."""
    return {tuple(r[:-2]): (int(r[-2]), int(r[-1])) for r in db.sql(sql, params)}


def same(db, what, rollup_sql, raw_sql, params):
    got, want = rows(db, rollup_sql, params), rows(db, raw_sql, params)
    assert want, f"{what}: no raw events to compare with"
    diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
    assert not diff, f"{what}: rollups differ from raw events (rollup, raw): " \
                     f"{dict(list(sorted(diff.items(), key=str))[:6])}"


def assert_rollups_match(db, ws):
    p = {"ws": ws.id}
    # Per day and per hour, in zones with every kind of offset.
    for tz in ZONES:
        q = dict(p, tz=tz)
        same(db, f"per day in {tz}",
             f"SELECT (r.bucket AT TIME ZONE %(tz)s)::date, sum(r.events), {CARD}"
             " FROM rollup_links r WHERE r.workspace_id = %(ws)s GROUP BY 1",
             f"SELECT (e.occurred_at AT TIME ZONE %(tz)s)::date, count(*), count(DISTINCT {VISITOR})"
             " FROM events e WHERE e.workspace_id = %(ws)s GROUP BY 1", q)
        same(db, f"per hour in {tz}",
             f"SELECT date_trunc('hour', r.bucket AT TIME ZONE %(tz)s), sum(r.events), {CARD}"
             " FROM rollup_links r WHERE r.workspace_id = %(ws)s GROUP BY 1",
             "SELECT date_trunc('hour', e.occurred_at AT TIME ZONE %(tz)s), count(*),"
             f" count(DISTINCT {VISITOR}) FROM events e WHERE e.workspace_id = %(ws)s GROUP BY 1", q)
        same(db, f"per link, day and country in {tz}",
             f"SELECT r.link_id, (r.bucket AT TIME ZONE %(tz)s)::date, r.country, sum(r.events), {CARD}"
             " FROM rollup_geo r WHERE r.workspace_id = %(ws)s GROUP BY 1, 2, 3",
             "SELECT e.link_id, (e.occurred_at AT TIME ZONE %(tz)s)::date, e.country, count(*),"
             f" count(DISTINCT {VISITOR}) FROM events e WHERE e.workspace_id = %(ws)s"
             " GROUP BY 1, 2, 3", q)
    # Every dimension, per link, from the table that keeps it.
    for table, columns in (("rollup_links", ["qr_code_id", "action", "status", "visit_type", "is_bot"]),
                           ("rollup_geo", ["country", "region", "city", "timezone", "is_bot"]),
                           ("rollup_devices", ["device_type", "platform", "browser", "language",
                                               "is_bot"])):
        for col in columns:
            same(db, f"{table} by link and {col}",
                 f"SELECT r.link_id, r.{col}, sum(r.events), {CARD} FROM {table} r"
                 " WHERE r.workspace_id = %(ws)s GROUP BY 1, 2",
                 f"SELECT e.link_id, e.{col}, count(*), count(DISTINCT {VISITOR}) FROM events e"
                 " WHERE e.workspace_id = %(ws)s GROUP BY 1, 2", p)
    same(db, "country, device type and bot over the whole workspace, in two tables",
         f"SELECT r.is_bot, sum(r.events), {CARD} FROM rollup_devices r"
         " WHERE r.workspace_id = %(ws)s GROUP BY 1",
         f"SELECT e.is_bot, count(*), count(DISTINCT {VISITOR}) FROM events e"
         " WHERE e.workspace_id = %(ws)s GROUP BY 1", p)
    # Tags are joined at query time; a tag's visitors are a union over links.
    same(db, "per tag",
         f"SELECT t.tag_id, sum(r.events), {CARD} FROM rollup_links r"
         " JOIN link_tags t ON t.workspace_id = r.workspace_id AND t.link_id = r.link_id"
         " WHERE r.workspace_id = %(ws)s GROUP BY 1",
         f"SELECT t.tag_id, count(*), count(DISTINCT {VISITOR}) FROM events e"
         " JOIN link_tags t ON t.workspace_id = e.workspace_id AND t.link_id = e.link_id"
         " WHERE e.workspace_id = %(ws)s GROUP BY 1", p)
    same(db, "redirect latency per link",
         "SELECT r.link_id, sum(r.latency_sum), sum(r.latency_count) FROM rollup_links r"
         " WHERE r.workspace_id = %(ws)s GROUP BY 1",
         "SELECT e.link_id, coalesce(sum(e.redirect_latency_ms), 0), count(e.redirect_latency_ms)"
         " FROM events e WHERE e.workspace_id = %(ws)s GROUP BY 1", p)
    same(db, "links.event_count",
         "SELECT l.id, l.event_count, 0 FROM links l WHERE l.workspace_id = %(ws)s",
         "SELECT l.id, count(e.id), 0 FROM links l LEFT JOIN events e"
         " ON e.workspace_id = l.workspace_id AND e.link_id = l.id"
         " WHERE l.workspace_id = %(ws)s GROUP BY 1", p)
    # The function the API calls: the daily table in the workspace's zone,
    # the 15-minute buckets in any other.
    first, last = db.sql("SELECT min(occurred_at), max(occurred_at) FROM events"
                         " WHERE workspace_id = %s", (ws.id,))[0]
    for tz in [None] + ZONES:
        zone = tz or ws.tz
        q = dict(p, tz=tz, zone=zone, link=ws.links[0], from_day=first.date() - dt.timedelta(days=1),
                 to_day=last.date() + dt.timedelta(days=1))
        same(db, f"lp_link_daily_by_country in {tz or 'the workspace zone'}",
             "SELECT day, country, events, visitors FROM lp_link_daily_by_country("
             "%(ws)s, %(link)s, %(from_day)s, %(to_day)s, %(tz)s)",
             "SELECT (e.occurred_at AT TIME ZONE %(zone)s)::date, e.country, count(*),"
             f" count(DISTINCT {VISITOR}) FROM events e WHERE e.workspace_id = %(ws)s"
             " AND e.link_id = %(link)s GROUP BY 1, 2", q)


def daily_row_count(db, ws):
    return db.sql("SELECT count(*) FROM rollup_geo_daily WHERE workspace_id = %s", (ws.id,))[0][0]


# ------------------------------------------------- the SQL, called directly


def test_apply_matches_raw_events(db):
    ws = Workspace(db, tz="Asia/Kathmandu")
    other = Workspace(db, tz="America/St_Johns", seed=2)  # must not leak into ws
    n = ws.insert(ws.instants()) + other.insert(other.instants(days=2))
    assert apply(db) == n
    assert_rollups_match(db, ws)
    assert_rollups_match(db, other)


def test_batches_fold_to_the_same_answers(db):
    """Snapshot pairs and (xid, id) positions within one: each event once."""
    ws = Workspace(db, tz="Asia/Kolkata")
    s0 = snapshot(db)
    ws.insert(ws.instants(days=3))
    s1 = snapshot(db)
    ws.insert(ws.instants(days=3))
    ws.insert(ws.instants(days=3))
    s2 = snapshot(db)
    total = apply(db, "1:1:", s0)  # nothing yet
    assert total == 0
    total += apply(db, s0, s1)
    # The second pair in two batches, split at a middle (xid, id) position.
    positions = db.sql("SELECT xid::text, id FROM lp_batch_events(%s, %s, '0', 0, %s, %s)"
                       " ORDER BY xid, id", (s1, s2, MAX_XID, MAX_ID))
    middle = positions[len(positions) // 2]
    total += apply(db, s1, s2, to=middle)
    total += apply(db, s1, s2, frm=middle)
    assert total == db.sql("SELECT count(*) FROM events")[0][0]
    assert_rollups_match(db, ws)


def test_empty_batch_changes_nothing(db):
    ws = Workspace(db)
    ws.insert(ws.instants(days=1))
    s = snapshot(db)
    assert apply(db, "1:1:", s) > 0
    before = db.sql("SELECT sum(events) FROM rollup_geo")[0][0]
    assert apply(db, s, snapshot(db)) == 0
    assert db.sql("SELECT sum(events) FROM rollup_geo")[0][0] == before


def test_unique_visitors_of_a_larger_set_within_two_percent(db):
    ws = Workspace(db, tz="UTC")
    link = ws.links[0]
    day = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) \
        - dt.timedelta(days=2)
    # About 6,000 visitors, each on both days.
    db.sql("INSERT INTO events (workspace_id, occurred_at, link_id, visitor_id, country)"
           " SELECT %s, %s + (i %% 2) * interval '1 day' + (i %% 86000) * interval '1 s', %s,"
           "        md5('visitor-' || (i %% 5999))::uuid, 'FR'"
           " FROM generate_series(1, 20000) i", (ws.id, day, link))
    apply(db)
    want = db.sql("SELECT count(DISTINCT visitor_id) FROM events WHERE link_id = %s", (link,))[0][0]
    per_day = db.sql("SELECT (occurred_at AT TIME ZONE 'UTC')::date, count(DISTINCT visitor_id)"
                     " FROM events WHERE link_id = %s GROUP BY 1", (link,))
    got = db.sql(f"SELECT {CARD} FROM rollup_geo r WHERE r.link_id = %s", (link,))[0][0]
    assert abs(got - want) <= 0.02 * want, (got, want)
    daily = {r[0]: r[3] for r in db.sql("SELECT * FROM lp_link_daily_by_country(%s, %s, %s, %s)",
                                        (ws.id, link, day.date(), day.date() + dt.timedelta(days=1)))}
    for d, exact in per_day:
        assert abs(daily[d] - exact) <= 0.02 * exact, (d, daily[d], exact)
    # The sketches stay exact while small: 320 visitors per sketch.
    assert db.sql("SELECT hll_expthresh(visitors) FROM rollup_geo_daily LIMIT 1")[0][0] == "(-1,320)"


def test_zone_change_rebuilds_the_daily_rows(db):
    ws = Workspace(db, tz="Europe/Paris")
    ws.insert(ws.instants())
    apply(db)
    for tz in ("Asia/Kathmandu", "America/St_Johns"):
        db.sql("UPDATE workspaces SET timezone = %s WHERE id = %s", (tz, ws.id))
        ws.tz = tz
        assert_rollups_match(db, ws)
    # Events folded after the change land on the new zone's days.
    s = snapshot(db)
    ws.insert(ws.instants(days=2))
    apply(db, s)
    assert_rollups_match(db, ws)


def test_unknown_zone_falls_back_to_utc_and_keeps_folding(db):
    ws = Workspace(db, tz="UTC")
    db.sql("UPDATE workspaces SET timezone = 'Mars/Olympus_Mons' WHERE id = %s", (ws.id,))
    n = ws.insert(ws.instants(days=2))
    assert apply(db) == n
    ws.tz = "UTC"
    assert_rollups_match(db, ws)


def test_deleting_a_workspace_deletes_its_rollups(db):
    ws = Workspace(db)
    other = Workspace(db, seed=3)
    ws.insert(ws.instants(days=1))
    other.insert(other.instants(days=1))
    apply(db)
    db.sql("DELETE FROM workspaces WHERE id = %s", (ws.id,))
    for table in ("rollup_links", "rollup_geo", "rollup_devices", "rollup_geo_daily"):
        left = db.sql(f"SELECT count(*) FILTER (WHERE workspace_id = %s), count(*) FROM {table}",
                      (ws.id,))[0]
        assert left[0] == 0 and left[1] > 0, (table, left)


def test_keys_lead_with_workspace_id(db):
    keys = db.sql("SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
                  " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
                  " WHERE c.conrelid::regclass::text LIKE 'rollup%' AND c.contype = 'u'")
    assert len(keys) == 4 and all(col == "workspace_id" for _, col in keys), keys


# --------------------------------------------------- through the daemon


def cursor_events(db):
    return db.sql("SELECT events FROM pipeline_cursor WHERE name = 'main'")[0][0]


def raw_total(db):
    return db.sql("SELECT count(*) FROM events")[0][0]


def caught_up(db):
    total = raw_total(db)
    return total > 0 and cursor_events(db) == total


def test_daemon_folds_events_into_rollups(db, daemon):
    ws = Workspace(db, tz="Asia/Kolkata")
    ws.insert(ws.instants(days=3))  # before the daemon starts
    d = daemon(db, settings=FAST)
    d.wait_ready()
    for _ in range(3):  # while it runs, in several transactions
        ws.insert(ws.instants(days=2, spread=20))
    wait_until(lambda: caught_up(db), 20, "the pipeline to consume every event")
    assert_rollups_match(db, ws)
    m = d.metrics()
    assert m.get("linkpulse_rollup_events_total") == raw_total(db)
    assert m.get("linkpulse_rollup_duration_seconds_count") >= 1


def produce(ws, stop, done):
    conn = ws.db.pg.connect(ws.db.name)
    try:
        while not stop.is_set():
            now = dt.datetime.now(dt.timezone.utc)
            at = [now - dt.timedelta(seconds=ws.rng.uniform(0, 3 * 86400)) for _ in range(20)]
            done.append(ws.insert(at, conn))
            time.sleep(0.01)
    finally:
        conn.close()


def test_rollups_exact_after_kill_9(db, daemon):
    ws = Workspace(db, tz="America/St_Johns")
    d = daemon(db, settings=FAST)
    d.wait_ready()
    stop, done = threading.Event(), []
    t = threading.Thread(target=produce, args=(ws, stop, done))
    t.start()
    try:
        wait_until(lambda: cursor_events(db) > 300, 15, "the stream flowing")
        d.signal(signal.SIGKILL)  # no drain, no lease hand-over
        d.proc.wait(5)
        before = cursor_events(db)
        time.sleep(0.5)  # events written while it is down
        d2 = daemon(db, settings=FAST)
        wait_until(lambda: cursor_events(db) > before, 15, "the new daemon consuming")
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    assert sum(done) == raw_total(db)
    wait_until(lambda: caught_up(db), 30, "the stream consumed after the restart")
    assert_rollups_match(db, ws)
    assert d2.metric("linkpulse_pipeline_leader") == 1
