"""The event pipeline: commit-ordered cursor, exactly-once effects, one leader.

Each test watches effects through links.event_count, which the rollup
consumer bumps in the batch's transaction, and pipeline_cursor.events, the
number of events the cursor has moved past: both must equal the raw count.
"""
import signal
import threading
import time
import uuid

import pytest

from conftest import create_workspace, wait_until

FAST = {"pipeline.lease": "1s", "pipeline.poll_interval": "200ms"}


class Workspace:
    def __init__(self, db, nlinks):
        self.db = db
        slug = "ws-" + uuid.uuid4().hex[:8]
        self.id = create_workspace(db, slug)
        self.links = [self.new_link() for _ in range(nlinks)]

    def new_link(self):
        return self.db.sql("INSERT INTO links (workspace_id, shortlink) VALUES (%s, %s) RETURNING id",
                           (self.id, "l" + uuid.uuid4().hex[:10]))[0][0]

    def insert(self, link, n=1, conn=None):
        sql = ("INSERT INTO events (workspace_id, occurred_at, link_id) "
               "SELECT %s, now(), %s FROM generate_series(1, %s)")
        if conn is not None:
            with conn.cursor() as c:
                c.execute(sql, (self.id, link, n))
        else:
            self.db.sql(sql, (self.id, link, n))

    def counted(self, link):
        return self.db.sql("SELECT event_count FROM links WHERE id = %s", (link,))[0][0]


def raw_total(db):
    return db.sql("SELECT count(*) FROM events")[0][0]


def cursor_events(db):
    return db.sql("SELECT events FROM pipeline_cursor WHERE name = 'main'")[0][0]


def assert_exactly_once(db):
    """Every event counted once: per link and in the cursor's total."""
    rows = db.sql("SELECT l.id, l.event_count, count(e.id) FROM links l "
                  "LEFT JOIN events e ON e.link_id = l.id GROUP BY l.id, l.event_count")
    wrong = [(str(link), counted, raw) for link, counted, raw in rows if counted != raw]
    assert not wrong, f"links counted differently from their events: {wrong[:5]}"
    assert cursor_events(db) == raw_total(db)


def caught_up(db):
    total = raw_total(db)
    return total > 0 and cursor_events(db) == total


def test_late_commit_with_lower_id_is_consumed_once(db, daemon):
    ws = Workspace(db, 2)
    d = daemon(db, settings=FAST)
    d.wait_ready()
    a, b = db.pg.connect(db.name), db.pg.connect(db.name)
    a.autocommit = b.autocommit = False
    try:
        ws.insert(ws.links[0], conn=a)  # takes the lower id, commits last
        ws.insert(ws.links[1], conn=b)
        b.commit()
        wait_until(lambda: ws.counted(ws.links[1]) == 1, 5, "the early commit consumed")
        ids = db.sql("SELECT id FROM events ORDER BY id")
        assert len(ids) == 1  # a's event is not visible yet
        time.sleep(0.5)  # more batches run while a is open
        a.commit()
        wait_until(lambda: ws.counted(ws.links[0]) == 1, 5, "the late commit consumed")
        assert db.sql("SELECT min(id) < max(id) FROM events")[0][0]
    finally:
        a.close()
        b.close()
    time.sleep(0.5)
    assert_exactly_once(db)
    assert cursor_events(db) == 2


def read_backlog(db, daemon, per_link, batch_size, batch_max):
    """Three links with per_link, +1, +2 events, read by a new daemon with
    these batch sizes; -> (workspace, daemon, metrics once caught up)."""
    ws = Workspace(db, 3)
    for i, link in enumerate(ws.links):
        ws.insert(link, per_link + i)
    d = daemon(db, settings=dict(FAST, **{"pipeline.batch_size": batch_size,
                                          "pipeline.batch_max": batch_max}))
    wait_until(lambda: caught_up(db), 15, "the backlog consumed")
    assert_exactly_once(db)
    m = d.metrics()
    assert m.get("linkpulse_pipeline_events_total") == 3 * per_link + 3
    return ws, d, m


def test_batches_are_bounded(db, daemon):
    _, _, m = read_backlog(db, daemon, 40, 10, 10)
    assert m.get("linkpulse_pipeline_batches_total") >= 13
    assert m.get("linkpulse_pipeline_batch_size_bucket", le="10") == m.get(
        "linkpulse_pipeline_batch_size_count")


def test_a_backlog_is_read_in_growing_batches(db, daemon):
    # 10, 20, 40, then 40s: full batches double up to batch_max.
    ws, d, m = read_backlog(db, daemon, 100, 10, 40)
    batches = m.get("linkpulse_pipeline_batch_size_count")
    assert m.get("linkpulse_pipeline_batch_size_bucket", le="50") == batches
    assert m.get("linkpulse_pipeline_batch_size_bucket", le="10") < batches
    assert 8 <= batches <= 12, batches
    # Once it keeps up, one event is a batch of one again.
    ws.insert(ws.links[0], 1)
    wait_until(lambda: raw_total(db) == 304 and caught_up(db), 10, "a late event consumed")
    m2 = d.metrics()
    assert m2.get("linkpulse_pipeline_batch_size_bucket", le="1") == \
        m.get("linkpulse_pipeline_batch_size_bucket", le="1") + 1


def test_events_written_while_stopped_and_while_cut_off(db, daemon):
    ws = Workspace(db, 4)
    d = daemon(db, settings=FAST)
    d.wait_ready()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 0
    for link in ws.links:
        ws.insert(link, 25)
    d2 = daemon(db, settings=FAST)
    wait_until(lambda: caught_up(db), 15, "events written while stopped consumed")
    # Cut every connection while events keep coming.
    for round_ in range(3):
        for link in ws.links:
            ws.insert(link, 5)
        db.pg.terminate(db.name)
    wait_until(lambda: caught_up(db) and raw_total(db) == 160, 20,
               "events written while cut off consumed")
    assert_exactly_once(db)
    assert d2.metric("linkpulse_pipeline_leader") == 1


def produce(ws, stop, links, per_tick=10, tick=0.01):
    while not stop.is_set():
        for link in links:
            ws.insert(link, per_tick)
        time.sleep(tick)


def test_kill_9_during_a_stream_loses_and_repeats_nothing(db, daemon):
    ws = Workspace(db, 5)
    d = daemon(db, settings=FAST)
    d.wait_ready()
    stop = threading.Event()
    t = threading.Thread(target=produce, args=(ws, stop, ws.links))
    t.start()
    try:
        wait_until(lambda: cursor_events(db) > 500, 15, "the stream flowing")
        d.proc.kill()  # SIGKILL: no drain, no lease hand-over
        d.proc.wait(5)
        time.sleep(0.3)
        d2 = daemon(db, settings=FAST)
        time.sleep(1.5)
    finally:
        stop.set()
        t.join()
    total = raw_total(db)
    wait_until(lambda: cursor_events(db) == total, 20, "the stream consumed after the restart")
    assert_exactly_once(db)
    assert d2.metric("linkpulse_pipeline_leader") == 1


def test_long_open_transaction_holds_only_its_own_events(db, daemon):
    ws = Workspace(db, 1)
    d = daemon(db, settings=FAST)
    d.wait_ready()
    held = db.pg.connect(db.name)
    held.autocommit = False
    try:
        ws.insert(ws.links[0], 3, conn=held)  # open for 30 s
        start = time.monotonic()
        delays = []
        while time.monotonic() - start < 30:
            link = ws.new_link()
            ws.insert(link)
            t0 = time.monotonic()
            wait_until(lambda: ws.counted(link) == 1, 5, "an event written meanwhile consumed")
            delays.append(time.monotonic() - t0)
            time.sleep(1.5)
        assert ws.counted(ws.links[0]) == 0
        assert max(delays) < 1.0, f"events behind an open transaction waited {max(delays):.2f}s"
        d.wait_log(r"backend pid \d+ has held a transaction open", timeout=1)
        assert d.metric("linkpulse_pipeline_snapshot_waiting") == 1
        held.commit()
    finally:
        held.close()
    wait_until(lambda: ws.counted(ws.links[0]) == 3, 5, "the held transaction's events consumed")
    time.sleep(0.5)
    assert_exactly_once(db)


def leader_of(daemons):
    return [d for d in daemons if d.running() and d.metric("linkpulse_pipeline_leader") == 1]


def test_two_daemons_one_leader_and_fast_takeover(db, daemon):
    ws = Workspace(db, 4)
    d1 = daemon(db, settings=FAST)
    d2 = daemon(db, settings=FAST)
    wait_until(lambda: len(leader_of([d1, d2])) == 1, 10, "exactly one leader")
    stop = threading.Event()
    t = threading.Thread(target=produce, args=(ws, stop, ws.links, 5, 0.02))
    t.start()
    try:
        for _ in range(10):  # never two leaders at once
            assert len(leader_of([d1, d2])) <= 1
            time.sleep(0.1)
        leader = leader_of([d1, d2])[0]
        other = d2 if leader is d1 else d1
        consumed_by_other = other.metric("linkpulse_pipeline_events_total")
        assert consumed_by_other == 0, "the follower consumed events"
        leader.proc.kill()
        leader.proc.wait(5)
        killed_at = time.monotonic()
        before = cursor_events(db)
        wait_until(lambda: cursor_events(db) > before and other.metric("linkpulse_pipeline_leader") == 1,
                   5, "the other daemon taking over within 5 s")
        handover = time.monotonic() - killed_at
        assert handover < 5, handover
    finally:
        stop.set()
        t.join()
    total = raw_total(db)
    wait_until(lambda: cursor_events(db) == total, 15, "everything consumed after the take-over")
    assert_exactly_once(db)
    assert other.metric("linkpulse_pipeline_ownership_changes_total") == 1


def test_graceful_stop_hands_over_at_once(db, daemon):
    ws = Workspace(db, 1)
    d1 = daemon(db, settings={"pipeline.lease": "30s", "pipeline.poll_interval": "200ms"})
    wait_until(lambda: d1.metric("linkpulse_pipeline_leader") == 1, 10, "d1 leading")
    d2 = daemon(db, settings={"pipeline.lease": "30s", "pipeline.poll_interval": "200ms"})
    time.sleep(0.5)
    assert d2.metric("linkpulse_pipeline_leader") == 0
    d1.signal(signal.SIGTERM)
    assert d1.wait_exit(10) == 0
    # The 30 s lease was given back, so d2 leads within one renewal (10 s).
    wait_until(lambda: d2.metric("linkpulse_pipeline_leader") == 1, 12, "d2 leading")
    ws.insert(ws.links[0], 7)
    wait_until(lambda: ws.counted(ws.links[0]) == 7, 5, "d2 consuming")


def test_pipeline_metrics(db, daemon):
    ws = Workspace(db, 1)
    d = daemon(db, settings=FAST)
    d.wait_ready()
    ws.insert(ws.links[0], 50)
    wait_until(lambda: caught_up(db), 10, "events consumed")
    m = d.metrics()
    assert m.get("linkpulse_pipeline_events_total") == 50
    assert m.get("linkpulse_pipeline_leader") == 1
    lag = m.get("linkpulse_pipeline_lag_seconds")
    assert lag is not None and 0 <= lag < 5
    assert m.get("linkpulse_pipeline_lag_distribution_seconds_count") >= 1
