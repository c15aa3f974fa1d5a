"""Monthly event partitions exist ahead of time and are recreated by the daemon."""
from conftest import wait_until


def partitions(db):
    return {name for (name,) in db.sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass")}


def month_name(db, offset):
    return db.sql("SELECT 'events_y' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') "
                  "+ %s * interval '1 month', 'YYYY\"m\"MM')", (offset,))[0][0]


def test_migration_prepares_months_ahead(db):
    have = partitions(db)
    for offset in (-1, 0, 1, 2, 3):
        assert month_name(db, offset) in have, (offset, sorted(have))


def test_daemon_recreates_missing_future_partitions(db, daemon):
    ahead = month_name(db, 3)
    db.sql(f'DROP TABLE "{ahead}"')
    assert ahead not in partitions(db)
    daemon(db)
    wait_until(lambda: ahead in partitions(db), 10, f"{ahead} recreated by the daemon")


def test_event_outside_prepared_months_fails_loudly(db):
    import psycopg2
    import pytest
    ws = db.sql("INSERT INTO workspaces (slug, name) VALUES ('parts', 'P') RETURNING id")[0][0]
    with pytest.raises(psycopg2.Error, match="no partition"):
        db.sql("INSERT INTO events (workspace_id, occurred_at) VALUES (%s, '1990-01-01')", (ws,))
    assert db.sql("SELECT lp_ensure_event_partitions('1990-01-01', '1990-02-15')")[0][0] == 2
    db.sql("INSERT INTO events (workspace_id, occurred_at) VALUES (%s, '1990-01-01')", (ws,))
