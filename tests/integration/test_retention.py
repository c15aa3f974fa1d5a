"""Retention of raw events: each workspace keeps retention_days of them.

The daemon's retention job (the pipeline's leader, a few seconds after its
start) removes expired events with their idempotency keys and traces, and
drops a monthly partition once every workspace is done with it; rollups
and links.event_count keep counting what was removed.
"""
import uuid

from conftest import create_workspace, wait_until

FAST = {"pipeline.poll_interval": "200ms"}


def workspace(db, days):
    slug = "ws-" + uuid.uuid4().hex[:8]
    wid = create_workspace(db, slug, None, "--retention-days", str(days))
    link = db.sql("INSERT INTO links (workspace_id, shortlink) VALUES (%s, %s) RETURNING id",
                  (wid, "l" + uuid.uuid4().hex[:10]))[0][0]
    return wid, link


def insert(db, wid, link, days_ago, n, key_prefix):
    """n events days_ago days back, each with an idempotency key and a trace."""
    rows = db.sql(
        "INSERT INTO events (workspace_id, occurred_at, link_id)"
        " SELECT %s, now() - %s * interval '1 day', %s FROM generate_series(1, %s)"
        " RETURNING id, occurred_at", (wid, days_ago, link, n))
    for i, (eid, at) in enumerate(rows):
        db.sql("INSERT INTO event_keys (workspace_id, key, event_id, occurred_at)"
               " VALUES (%s, %s, %s, %s)", (wid, f"{key_prefix}-{i}", eid, at))
        db.sql("INSERT INTO event_traces (workspace_id, event_id, event_occurred_at,"
               " step_kind, step_action) VALUES (%s, %s, %s, 'ENTRY', 'redirect')",
               (wid, eid, at))


def counts(db, wid):
    return tuple(db.sql(f"SELECT count(*) FROM {t} WHERE workspace_id = %s", (wid,))[0][0]
                 for t in ("events", "event_keys", "event_traces"))


def test_expired_events_keys_and_traces_go(db, daemon):
    short, short_link = workspace(db, 2)
    long_, long_link = workspace(db, 30)
    insert(db, short, short_link, 5, 7, "old")
    insert(db, short, short_link, 1, 3, "new")
    insert(db, long_, long_link, 5, 4, "old")
    # A month three years back, past every workspace's retention.
    db.sql("SELECT lp_ensure_event_partitions(now() - interval '3 years',"
           " now() - interval '3 years')")
    ancient = db.sql("SELECT 'events_y' || to_char(now() - interval '3 years', 'YYYY')"
                     " || 'm' || to_char(now() - interval '3 years', 'MM')")[0][0]
    insert(db, long_, long_link, 3 * 365, 2, "ancient")
    assert counts(db, short) == (10, 10, 10)
    assert counts(db, long_) == (6, 6, 6)

    d = daemon(db, FAST)
    wait_until(lambda: counts(db, short) == (3, 3, 3), 20, "expired rows removed")
    # The 30-day workspace keeps its 5-day-old events; its 3-year-old ones
    # went with their partition.
    wait_until(lambda: db.sql("SELECT to_regclass(%s)", (ancient,))[0][0] is None, 10,
               "the ancient partition dropped")
    assert counts(db, long_) == (4, 4, 4)
    keys = {k for (k,) in db.sql("SELECT key FROM event_keys WHERE workspace_id = %s", (short,))}
    assert keys == {"new-0", "new-1", "new-2"}
    # The pipeline counted every event before or after: counts stay.
    wait_until(lambda: db.sql("SELECT event_count FROM links WHERE id = %s",
                              (short_link,))[0][0] == 10, 10, "events counted")
    m = d.metrics()
    assert m.get("linkpulse_retention_rows_deleted_total") >= 21
    d.wait_log("retention: removed", timeout=5)
    d.wait_log("retention: dropped 1 monthly event partition", timeout=5)
