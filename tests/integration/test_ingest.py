"""POST /v1/events: JSON arrays and NDJSON, batch limits, strict validation
that names the event and member at fault and writes nothing of a refused
batch, idempotency on the client's id (also under concurrency), scopes,
links and visitors created by key, partitions for old months, and one
NOTIFY per request.
"""
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conftest import assert_problem, create_token, create_workspace, http_session, wait_until

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def api(db, daemon):
    """A running daemon, workspace 'acme', a link 'spring' and an events:write token."""
    class Api:
        pass
    a = Api()
    a.db = db
    a.workspace_id = create_workspace(db, "acme", "Acme Inc")
    a.token = create_token(db, "acme", scopes="events:write")
    a.link_id = str(db.sql("INSERT INTO links (workspace_id, shortlink) VALUES (%s, 'spring') "
                           "RETURNING id", (a.workspace_id,))[0][0])
    a.d = daemon(db)

    def post(events, token=a.token, **kw):
        if "data" not in kw:
            kw["json"] = events
        return a.d.post("/v1/events", token=token, **kw)
    a.post = post
    return a


def iso(dt):
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def now():
    return datetime.now(timezone.utc)


def count(db, table="events"):
    return db.sql(f"SELECT count(*) FROM {table}")[0][0]


def accepted(r, n, duplicates=0):
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == n and body["duplicates"] == duplicates, body
    assert len(body["ids"]) == n + duplicates
    assert all(isinstance(i, str) and i.isdigit() for i in body["ids"]), body
    return body


def invalid(r, field):
    """A 400 whose field is field, listed in details too; returns the body."""
    body = assert_problem(r, 400, "INVALID_ARGUMENT")
    assert body.get("field") == field, body
    assert any(d["field"] == field for d in body["details"]), body
    return body


def nothing_written(db):
    for table in ("events", "event_keys", "visitors"):
        assert count(db, table) == 0, f"{table} has rows after a refused batch"
    assert count(db, "links") == 1, "a link was created by a refused batch"


# ---------------------------------------------------------------- accepted


def test_ingest_array_stores_every_field(api):
    at = now() - timedelta(minutes=3)
    device = api.db.sql(
        "INSERT INTO devices (workspace_id, country, city, platform_name, device_actor, isp) "
        "VALUES (%s, 'FR', 'Lyon', 'Android', 'DEVICE_ACTOR_BOT', 'Orange') RETURNING id",
        (api.workspace_id,))[0][0]
    qr = api.db.sql("INSERT INTO qr_codes (workspace_id, link_id) VALUES (%s, %s) RETURNING id",
                    (api.workspace_id, api.link_id))[0][0]
    events = [
        {"linkId": api.link_id, "occurredAt": iso(at), "qrCodeId": str(qr),
         "action": "ACTION_CONVERSION", "status": "error", "errorCode": "DESTINATION_DOWN",
         "redirectLatencyMs": 42, "referrer": "https://news.example/",
         "device": {"country": "US", "region": "NY", "city": "New York",
                    "timezone": "America/New_York", "isp": "Comcast", "asn": 7922,
                    "deviceType": "DEVICE_TYPE_MOBILE", "platform": "iOS", "browser": "Safari",
                    "language": "en-US", "actor": "DEVICE_ACTOR_HUMAN"},
         "utm": {"source": "newsletter", "medium": "email", "campaign": "spring",
                 "term": "qr", "content": "hero"},
         "workflowStep": "contact_form", "visitType": "VISIT_TYPE_FIRST",
         "destination": "https://shop.example/", "properties": {"plan": "pro", "n": [1, 2]}},
        # Linkbreakers member names, flat UTM members, a device found by id.
        {"shortlink": "spring", "scannedAt": iso(at), "utmSource": "flyer",
         "deviceId": str(device), "device": {"browserName": "Chrome", "deviceActor": "DEVICE_ACTOR_BOT"}},
        # Everything defaulted.
        {"linkId": api.link_id},
    ]
    body = accepted(api.post(events), 3)
    ids = [int(i) for i in body["ids"]]
    assert len(set(ids)) == 3

    cols = ("link_id, qr_code_id, device_id, action, status, error_code, redirect_latency_ms, "
            "country, region, city, timezone, isp, asn, device_type, platform, browser, language, "
            "is_bot, referrer, utm_source, utm_medium, utm_campaign, utm_term, utm_content, "
            "workflow_step, visit_type, destination, properties, occurred_at")
    rows = {r[0]: r[1:] for r in api.db.sql(f"SELECT id, {cols} FROM events WHERE workspace_id = %s",
                                            (api.workspace_id,))}
    first = dict(zip([c.strip() for c in cols.split(",")], rows[ids[0]]))
    assert str(first["link_id"]) == api.link_id and str(first["qr_code_id"]) == str(qr)
    assert (first["action"], first["status"], first["error_code"]) == \
        ("ACTION_CONVERSION", "error", "DESTINATION_DOWN")
    assert first["redirect_latency_ms"] == 42
    assert (first["country"], first["region"], first["city"], first["timezone"]) == \
        ("US", "NY", "New York", "America/New_York")
    assert (first["isp"], first["asn"], first["device_type"]) == ("Comcast", 7922, "DEVICE_TYPE_MOBILE")
    assert (first["platform"], first["browser"], first["language"], first["is_bot"]) == \
        ("iOS", "Safari", "en-US", False)
    assert [first[f"utm_{k}"] for k in ("source", "medium", "campaign", "term", "content")] == \
        ["newsletter", "email", "spring", "qr", "hero"]
    assert (first["workflow_step"], first["visit_type"], first["destination"]) == \
        ("contact_form", "VISIT_TYPE_FIRST", "https://shop.example/")
    assert first["properties"] == {"plan": "pro", "n": [1, 2]}
    assert abs((first["occurred_at"] - at).total_seconds()) < 0.001

    second = dict(zip([c.strip() for c in cols.split(",")], rows[ids[1]]))
    assert str(second["link_id"]) == api.link_id and str(second["device_id"]) == str(device)
    assert second["utm_source"] == "flyer"
    # What the event leaves out comes from its device.
    assert (second["country"], second["city"], second["platform"], second["isp"]) == \
        ("FR", "Lyon", "Android", "Orange")
    assert (second["browser"], second["is_bot"]) == ("Chrome", True)

    third = dict(zip([c.strip() for c in cols.split(",")], rows[ids[2]]))
    assert (third["action"], third["status"], third["is_bot"], third["properties"]) == \
        ("ACTION_SCAN", "ok", False, {})
    assert abs((third["occurred_at"] - now()).total_seconds()) < 60


def test_ingest_ndjson(api):
    lines = [json.dumps({"shortlink": "spring", "action": a})
             for a in ("ACTION_SCAN", "ACTION_CLICK", "ACTION_RESCAN")]
    data = "\n".join(lines[:2]) + "\n\n  \r\n" + lines[2] + "\r\n"
    body = accepted(api.post(None, data=data, headers=NDJSON), 3)
    rows = api.db.sql("SELECT id, action FROM events ORDER BY id")
    assert sorted(r[1] for r in rows) == ["ACTION_CLICK", "ACTION_RESCAN", "ACTION_SCAN"]
    assert sorted(str(r[0]) for r in rows) == sorted(body["ids"])


def test_ingest_ndjson_bad_line(api):
    data = json.dumps({"shortlink": "spring"}) + "\n{not json\n" + json.dumps({"shortlink": "x"})
    invalid(api.post(None, data=data, headers=NDJSON), "events[1]")
    nothing_written(api.db)


def test_ingest_other_content_type(api):
    r = api.post(None, data=json.dumps([{"shortlink": "spring"}]), headers={"Content-Type": "text/plain"})
    assert_problem(r, 415)
    nothing_written(api.db)


# ---------------------------------------------------------------- limits


def test_ingest_batch_limits(api):
    accepted(api.post([{"linkId": api.link_id}] * 1000), 1000)
    assert count(api.db) == 1000

    body = assert_problem(api.post([{"linkId": api.link_id}] * 1001), 413)
    assert "1000" in body["detail"], body
    data = "\n".join([json.dumps({"linkId": api.link_id})] * 1001)
    body = assert_problem(api.post(None, data=data, headers=NDJSON), 413)
    assert "1000" in body["detail"], body
    assert count(api.db) == 1000


@pytest.mark.parametrize("kw", [{"json": []}, {"data": ""}, {"data": "\n\n", "headers": NDJSON},
                                {"json": {"linkId": "x"}}])
def test_ingest_empty_or_not_a_batch(api, kw):
    assert_problem(api.d.post("/v1/events", token=api.token, **kw), 400)
    nothing_written(api.db)


# ---------------------------------------------------------------- validation


def test_ingest_validation_names_index_and_field(api):
    events = [
        {"shortlink": "brand-new", "externalVisitorId": "crm-1", "id": "k1"},
        {"linkId": api.link_id, "occurredAt": "yesterday"},
        {"linkId": api.link_id},
        {"linkId": api.link_id, "device": {"country": "us"}},
    ]
    body = invalid(api.post(events), "events[1].occurredAt")
    assert "RFC 3339" in body["details"][0]["description"]
    fields = [d["field"] for d in body["details"]]
    assert fields == ["events[1].occurredAt", "events[3].device.country"], body
    assert "events[1].occurredAt" in body["detail"] and "1 more" in body["detail"]
    # All or nothing: the valid events' link and visitor are not created either.
    nothing_written(api.db)


FUTURE = iso(now() + timedelta(minutes=30))


@pytest.mark.parametrize("event, field, words", [
    ({"linkId": "not-a-uuid"}, "events[0].linkId", "UUID"),
    ({}, "events[0]", "linkId or shortlink"),
    ({"linkId": "LINK", "shortlink": "spring"}, "events[0]", "not both"),
    ({"shortlink": "has space"}, "events[0].shortlink", "short code"),
    ({"shortlink": "spring", "occurredAt": FUTURE}, "events[0].occurredAt", "future"),
    ({"shortlink": "spring", "occurredAt": "2026-02-30T00:00:00Z"}, "events[0].occurredAt", "RFC 3339"),
    ({"shortlink": "spring", "occurredAt": "2026-01-02 03:04:05"}, "events[0].occurredAt", "RFC 3339"),
    ({"shortlink": "spring", "action": "ACTION_LIKE"}, "events[0].action", "ACTION_SCAN"),
    ({"shortlink": "spring", "status": "failed"}, "events[0].status", "blocked"),
    ({"shortlink": "spring", "errorCode": "E1"}, "events[0].errorCode", "status"),
    ({"shortlink": "spring", "redirectLatencyMs": -1}, "events[0].redirectLatencyMs", "integer"),
    ({"shortlink": "spring", "redirectLatencyMs": 1.5}, "events[0].redirectLatencyMs", "integer"),
    ({"shortlink": "spring", "id": ""}, "events[0].id", "empty"),
    ({"shortlink": "spring", "id": "x" * 129}, "events[0].id", "128"),
    ({"shortlink": "spring", "visitorId": str(uuid.uuid4()), "externalVisitorId": "a"},
     "events[0]", "not both"),
    ({"shortlink": "spring", "device": {"deviceType": "PHONE"}}, "events[0].device.deviceType",
     "DEVICE_TYPE_MOBILE"),
    ({"shortlink": "spring", "device": {"actor": "ROBOT"}}, "events[0].device.actor", "DEVICE_ACTOR_BOT"),
    ({"shortlink": "spring", "device": {"asn": "7922"}}, "events[0].device.asn", "integer"),
    ({"shortlink": "spring", "device": "mobile"}, "events[0].device", "object"),
    ({"shortlink": "spring", "utm": {"source": "a"}, "utmSource": "b"}, "events[0].utmSource",
     "events[0].utm.source"),
    ({"shortlink": "spring", "properties": [1]}, "events[0].properties", "object"),
    ({"shortlink": "spring", "visitType": "VISIT_TYPE_SECOND"}, "events[0].visitType", "VISIT_TYPE_FIRST"),
    ("scan", "events[0]", "object"),
])
def test_ingest_invalid_event(api, event, field, words):
    if isinstance(event, dict) and event.get("linkId") == "LINK":
        event = dict(event, linkId=api.link_id)
    body = invalid(api.post([event]), field)
    assert words in body["details"][0]["description"], body
    nothing_written(api.db)


def test_ingest_unknown_members(api):
    events = [{"shortlink": "spring", "ocurredAt": iso(now())},
              {"shortlink": "spring", "device": {"countryCode": "US"}},
              {"shortlink": "spring", "country": "US"}]
    body = invalid(api.post(events), "events[0].ocurredAt")
    details = {d["field"]: d["description"] for d in body["details"]}
    assert "did you mean 'occurredAt'" in details["events[0].ocurredAt"], details
    assert "unknown member 'countryCode'" in details["events[1].device.countryCode"], details
    assert "device object" in details["events[2].country"], details
    nothing_written(api.db)


def test_ingest_lists_up_to_twenty_problems(api):
    body = invalid(api.post([{"linkId": "bad"}] * 25), "events[0].linkId")
    assert len(body["details"]) == 20
    assert "24 more" in body["detail"], body
    nothing_written(api.db)


def test_ingest_properties_limit(api):
    ok = {"shortlink": "spring", "properties": {"blob": "x" * 16000}}
    accepted(api.post([ok]), 1)
    big = {"shortlink": "spring", "properties": {"blob": "x" * 16400}}
    body = invalid(api.post([big]), "events[0].properties")
    assert "16384" in body["details"][0]["description"]
    assert count(api.db) == 1


def test_ingest_references_are_checked(api):
    other = str(api.db.sql("INSERT INTO links (workspace_id, shortlink) VALUES (%s, 'autumn') "
                           "RETURNING id", (api.workspace_id,))[0][0])
    qr = str(api.db.sql("INSERT INTO qr_codes (workspace_id, link_id) VALUES (%s, %s) RETURNING id",
                        (api.workspace_id, other))[0][0])
    # A link of another workspace is unknown here.
    globex = create_workspace(api.db, "globex")
    theirs = str(api.db.sql("INSERT INTO links (workspace_id, shortlink) VALUES (%s, 'spring') "
                            "RETURNING id", (globex,))[0][0])
    events = [
        {"shortlink": "spring", "qrCodeId": qr},
        {"linkId": api.link_id, "qrCodeId": str(uuid.uuid4())},
        {"linkId": theirs},
        {"linkId": api.link_id, "visitorId": str(uuid.uuid4())},
        {"linkId": api.link_id, "deviceId": str(uuid.uuid4())},
        {"shortlink": "created-if-valid"},
    ]
    body = invalid(api.post(events), "events[0].qrCodeId")
    details = [(d["field"], d["description"]) for d in body["details"]]
    assert [f for f, _ in details] == ["events[0].qrCodeId", "events[1].qrCodeId", "events[2].linkId",
                                       "events[3].visitorId", "events[4].deviceId"], details
    assert "another link (autumn)" in details[0][1]
    assert count(api.db) == 0 and count(api.db, "visitors") == 0
    assert api.db.sql("SELECT count(*) FROM links WHERE shortlink = 'created-if-valid'")[0][0] == 0

    # The QR code's own link is fine.
    accepted(api.post([{"linkId": other, "qrCodeId": qr}, {"shortlink": "autumn", "qrCodeId": qr}]), 2)


def test_ingest_retention_and_old_partitions(api):
    # 250 days back is inside the default retention (395 days) and its month
    # has no partition yet: the migration prepares only the last month on.
    old = now() - timedelta(days=250)
    part = f"events_y{old:%Y}m{old:%m}"
    assert api.db.sql("SELECT to_regclass(%s)", (part,))[0][0] is None
    body = accepted(api.post([{"shortlink": "spring", "occurredAt": iso(old)}]), 1)
    assert api.db.sql("SELECT to_regclass(%s)::text", (part,))[0][0] == part
    assert api.db.sql(f"SELECT id FROM {part}")[0][0] == int(body["ids"][0])

    api.db.sql("UPDATE workspaces SET retention_days = 30 WHERE id = %s", (api.workspace_id,))
    body = invalid(api.post([{"shortlink": "spring"},
                             {"shortlink": "spring", "occurredAt": iso(now() - timedelta(days=40))}]),
                   "events[1].occurredAt")
    assert "retention of 30 days" in body["details"][0]["description"], body
    assert count(api.db) == 1


def test_ingest_failure_rolls_back_everything(api):
    # A statement failing after the link and visitor were created in the
    # transaction: none of the batch may remain.
    api.db.sql("CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               "IF new.key = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN new; END $$")
    api.db.sql("CREATE TRIGGER boom BEFORE INSERT ON event_keys FOR EACH ROW EXECUTE FUNCTION boom()")
    r = api.post([{"shortlink": "fresh", "externalVisitorId": "crm-7"},
                  {"shortlink": "spring", "id": "boom"}])
    assert_problem(r, 500)
    nothing_written(api.db)
    accepted(api.post([{"shortlink": "fresh", "externalVisitorId": "crm-7", "id": "fine"}]), 1)


# ---------------------------------------------------------------- idempotency


def test_ingest_idempotent_on_id(api):
    ev = {"id": "scan-1", "shortlink": "spring"}
    first = accepted(api.post([ev, {"shortlink": "spring"}, dict(ev, action="ACTION_CLICK")]), 2, 1)
    assert first["ids"][0] == first["ids"][2] != first["ids"][1]
    again = accepted(api.post([{"shortlink": "spring", "id": "scan-2"}, ev]), 1, 1)
    assert again["ids"][1] == first["ids"][0]
    assert count(api.db) == 3
    assert api.db.sql("SELECT action FROM events WHERE id = %s", (int(first["ids"][0]),))[0][0] == \
        "ACTION_SCAN"
    # Keys are per workspace.
    create_workspace(api.db, "globex")
    api.db.sql("INSERT INTO links (workspace_id, shortlink) "
               "SELECT id, 'spring' FROM workspaces WHERE slug = 'globex'")
    other = create_token(api.db, "globex", scopes="events:write")
    accepted(api.post([ev], token=other), 1)
    assert count(api.db) == 4


def test_ingest_concurrent_same_id(api):
    """Concurrent requests with one id store it once; keys they share are created once."""
    n = 8
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        s = http_session()
        barrier.wait()
        results[i] = s.post(api.d.url + "/v1/events", timeout=30,
                            headers={"Authorization": f"Bearer {api.token}"},
                            json=[{"id": "race", "shortlink": "spring"},
                                  {"id": f"own-{i}", "shortlink": "race-link",
                                   "externalVisitorId": "race-visitor"}])
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bodies = [r.json() for r in results]
    assert all(r.status_code == 202 for r in results), [r.text for r in results]
    assert sum(b["accepted"] for b in bodies) == n + 1
    assert sorted(b["duplicates"] for b in bodies) == [0] + [1] * (n - 1)
    assert len({b["ids"][0] for b in bodies}) == 1
    assert api.db.sql("SELECT count(*) FROM events e JOIN event_keys k ON k.event_id = e.id "
                      "WHERE k.key = 'race'")[0][0] == 1
    assert count(api.db) == n + 1
    # The link and visitor every request named by key were created once.
    assert api.db.sql("SELECT count(*) FROM links WHERE shortlink = 'race-link'")[0][0] == 1
    assert count(api.db, "visitors") == 1
    assert api.db.sql("SELECT count(DISTINCT link_id), count(DISTINCT visitor_id) FROM events "
                      "WHERE visitor_id IS NOT NULL") == [(1, 1)]


# ---------------------------------------------------------------- auth


def test_ingest_scopes(api):
    ev = [{"shortlink": "spring"}]
    assert_problem(api.d.post("/v1/events", json=ev), 401, "UNAUTHENTICATED")
    reader = create_token(api.db, "acme", scopes="events:read,analytics:read")
    assert_problem(api.post(ev, token=reader), 403, "PERMISSION_DENIED")
    assert count(api.db) == 0
    admin = create_token(api.db, "acme", scopes="admin")
    accepted(api.post(ev, token=admin), 1)


# ---------------------------------------------------------------- references by key


def test_ingest_shortlink_creates_the_link(api):
    body = accepted(api.post([{"shortlink": "summer-24"}, {"shortlink": "summer-24"}]), 2)
    links = api.db.sql("SELECT id FROM links WHERE workspace_id = %s AND shortlink = 'summer-24'",
                       (api.workspace_id,))
    assert len(links) == 1
    accepted(api.post([{"shortlink": "summer-24"}]), 1)
    rows = api.db.sql("SELECT DISTINCT link_id FROM events")
    assert rows == [(links[0][0],)]
    assert len(body["ids"]) == 2


def test_ingest_external_visitor_created_then_resolved(api):
    accepted(api.post([{"shortlink": "spring", "externalVisitorId": "crm-42"}]), 1)
    visitors = api.db.sql("SELECT id FROM visitors WHERE external_id = 'crm-42'")
    assert len(visitors) == 1
    accepted(api.post([{"shortlink": "spring", "externalVisitorId": "crm-42"},
                       {"shortlink": "spring", "visitorId": str(visitors[0][0])}]), 2)
    assert count(api.db, "visitors") == 1
    assert api.db.sql("SELECT DISTINCT visitor_id FROM events") == [(visitors[0][0],)]


# ---------------------------------------------------------------- NOTIFY and metrics


def test_ingest_one_notify_per_request(api):
    # One NOTIFY per statement, not per row: the trigger is a statement
    # trigger (PostgreSQL would fold a per-row trigger's identical
    # notifications within a transaction, so the count alone cannot tell).
    level = api.db.sql("SELECT tgtype & 1 FROM pg_trigger WHERE tgname = 'events_notify'")
    assert level == [(0,)], "events_notify is not a statement trigger"

    def notes():
        return api.d.metric("linkpulse_db_notifications_total", channel="linkpulse_events") or 0
    wait_until(lambda: api.d.get("/readyz").status_code == 200, 20, "/readyz")
    before = notes()
    for i in range(1, 4):
        accepted(api.post([{"shortlink": "spring"}] * 50), 50)
        wait_until(lambda: notes() == before + i, 5, f"notification {i}")
    # Nothing more arrives late.
    time.sleep(0.5)
    assert notes() == before + 3


def test_ingest_metrics(api):
    def m(result):
        return api.d.metric("linkpulse_ingest_events_total", result=result)
    assert (m("accepted"), m("duplicate"), m("rejected")) == (0, 0, 0)
    accepted(api.post([{"shortlink": "spring", "id": "a"}, {"shortlink": "spring", "id": "a"},
                       {"shortlink": "spring"}]), 2, 1)
    invalid(api.post([{"shortlink": "spring"}, {"linkId": "x"}]), "events[1].linkId")
    assert (m("accepted"), m("duplicate"), m("rejected")) == (2, 1, 2)
