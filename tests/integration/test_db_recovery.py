"""PostgreSQL faults: terminated backends, a restart, an outage."""
import pytest

from conftest import check_ok, wait_until


def ready(d):
    return d.get("/readyz", timeout=5).status_code == 200


@pytest.fixture
def pg_restored(pg):
    """Whatever the test does to the cluster, it is running afterwards."""
    yield pg
    pg.ensure_running()


def test_terminated_backends_reconnect(db, daemon):
    d = daemon(db)
    d.wait_ready()
    before = d.metrics()
    assert db.pg.terminate(db.name) >= 1, "no backend named linkpulsed* in pg_stat_activity"

    def recovered():
        m = d.metrics()
        return (ready(d)
                and m.get("linkpulse_db_listen_connected") == 1
                and m.get("linkpulse_db_listen_reconnects_total")
                > before.get("linkpulse_db_listen_reconnects_total")
                and m.get("linkpulse_db_reconnects_total") > before.get("linkpulse_db_reconnects_total"))
    wait_until(recovered, 10, "readyz 200 and reconnects counted after pg_terminate_backend")


def notifications(d):
    return d.metric("linkpulse_db_notifications_total", channel="linkpulse_events") or 0


def test_restart_then_notify(db, daemon, pg_restored):
    d = daemon(db)
    d.wait_ready()
    db.pg.restart()
    wait_until(lambda: ready(d) and d.metric("linkpulse_db_listen_connected") == 1, 20,
               "readyz 200 after a PostgreSQL restart")
    before = notifications(d)
    db.sql("NOTIFY linkpulse_events")
    wait_until(lambda: notifications(d) == before + 1, 5,
               "linkpulse_db_notifications_total to count the NOTIFY")


def test_outage(db, daemon, pg_restored):
    d = daemon(db)
    d.wait_ready()
    db.pg.stop()

    def down():
        r = d.get("/readyz", timeout=5)
        if r.status_code != 503:
            return None
        body = r.json()
        checks = body["checks"]
        if check_ok(checks["database"]) or check_ok(checks["listener"]):
            return None
        return body
    body = wait_until(down, 10, "readyz 503 with database and listener down")
    assert body["status"] == "unavailable", body
    assert d.get("/healthz").status_code == 200
    assert d.metric("linkpulse_db_listen_connected") == 0
    db.pg.start()
    wait_until(lambda: ready(d), 20, "readyz 200 once PostgreSQL is back")
