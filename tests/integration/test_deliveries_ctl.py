"""linkpulsectl deliveries list and deliveries replay, against real rows.

No daemon runs here, so nothing is sent and the rows stay exactly as the
commands leave them.
"""
import json
import uuid

from conftest import create_workspace, ctl


def make_deliveries(db):
    slug = "ws-" + uuid.uuid4().hex[:8]
    ws = create_workspace(db, slug)
    ep = db.sql("INSERT INTO webhook_endpoints (workspace_id, name, endpoint_url) "
                "VALUES (%s, 'crm', 'https://crm.example.com/hook') RETURNING id", (ws,))[0][0]
    msgs = [db.sql("SELECT lp_webhook_enqueue(%s, ARRAY[%s]::uuid[], 'webhook.test', now(), "
                   "jsonb_build_object('n', %s))", (ws, ep, i))[0][0] for i in range(5)]
    # Two dead, one delivered a day ago, two pending.
    db.sql("UPDATE webhook_deliveries SET state = 'dead', attempts = 10, last_status = 500, "
           "last_error = 'HTTP 500' WHERE message_id = ANY(%s)", (msgs[:2],))
    db.sql("UPDATE webhook_deliveries SET state = 'delivered', attempts = 1, "
           "created_at = now() - interval '1 day' WHERE message_id = %s", (msgs[2],))
    return slug, ws, ep, msgs


def test_list_by_state(db):
    slug, ws, ep, msgs = make_deliveries(db)
    r = ctl(db, "deliveries", "list", "--state", "dead", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert sorted(x["msgId"] for x in rows) == sorted(msgs[:2])
    assert all(x["state"] == "dead" and x["attempts"] == 10 and x["lastStatus"] == 500
               and x["endpointName"] == "crm" and x["workspace"] == slug for x in rows)
    r = ctl(db, "deliveries", "list", "--workspace", slug, "--endpoint", str(ep))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "WORKSPACE", "ENDPOINT"]
    assert len(lines) == 6
    r = ctl(db, "deliveries", "list", "--limit", "2", "--json")
    assert len(json.loads(r.stdout)) == 2


def test_list_bad_arguments(db):
    r = ctl(db, "deliveries", "list", "--state", "lost")
    assert r.returncode == 2
    assert "--state: expected pending, delivering, held, delivered or dead, got 'lost'" in r.stderr
    r = ctl(db, "deliveries", "list", "--limit", "0")
    assert r.returncode == 2 and "--limit" in r.stderr
    r = ctl(db, "deliveries", "list", "--endpoint", "nope")
    assert r.returncode == 2 and "not an id" in r.stderr


def test_replay_failed_and_since(db):
    slug, ws, ep, msgs = make_deliveries(db)
    r = ctl(db, "deliveries", "replay", "--endpoint", str(ep), "--failed")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "queued 2 deliveries to crm"
    states = dict(db.sql("SELECT message_id, state || ':' || attempts FROM webhook_deliveries"))
    assert states[msgs[0]] == states[msgs[1]] == "pending:0"
    assert states[msgs[2]] == "delivered:1"

    # Since two hours ago: the four recent ones (dead ones already pending
    # again count too), not the day-old delivered one.
    r = ctl(db, "deliveries", "replay", "--endpoint", str(ep), "--since", "2h")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "queued 4 deliveries to crm"
    r = ctl(db, "deliveries", "replay", "--endpoint", str(ep), "--since", "2020-01-01T00:00:00Z")
    assert r.stdout.strip() == "queued 5 deliveries to crm"
    assert db.sql("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'")[0][0] == 5


def test_replay_bad_arguments(db):
    r = ctl(db, "deliveries", "replay", "--endpoint", str(uuid.uuid4()))
    assert r.returncode == 2 and "give --since TIME, --failed, or both" in r.stderr
    r = ctl(db, "deliveries", "replay", "--endpoint", str(uuid.uuid4()), "--failed")
    assert r.returncode == 1
    assert "no webhook endpoint has the id" in r.stderr
    r = ctl(db, "deliveries", "replay", "--endpoint", str(uuid.uuid4()), "--since", "yesterdayish")
    assert r.returncode == 1 and "replaying" in r.stderr
