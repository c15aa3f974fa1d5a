"""The outbox: scan events become signed webhook messages, exactly once.

Endpoints are made with SQL here (the API has its own tests), events are
inserted the way producers do, and what arrives at a local receiver is
checked: the type, the payload, the signature, and the filters that decide
who gets what.  The last tests declare endpoints in the configuration file.
"""
import base64
import json
import os
import uuid

from conftest import create_workspace, wait_until
from receiver import verify

FAST = {"pipeline.poll_interval": "200ms", "delivery.schedule": ["0s", "200ms"],
        "delivery.jitter": 0}


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Workspace:
    def __init__(self, db):
        self.db = db
        self.slug = "ws-" + uuid.uuid4().hex[:8]
        self.id = create_workspace(db, self.slug)

    def link(self, shortlink=None, tags=()):
        link = self.db.sql("INSERT INTO links (workspace_id, shortlink, name, destination) "
                           "VALUES (%s, %s, 'Spring sale', 'https://example.com/sale') "
                           "RETURNING id",
                           (self.id, shortlink or "l" + uuid.uuid4().hex[:10]))[0][0]
        for tag in tags:
            tag_id = self.tag(tag)
            self.db.sql("INSERT INTO link_tags (workspace_id, link_id, tag_id) VALUES (%s, %s, %s)",
                        (self.id, link, tag_id))
        return link

    def tag(self, name):
        rows = self.db.sql("SELECT id FROM tags WHERE workspace_id = %s AND name = %s",
                           (self.id, name))
        if rows:
            return rows[0][0]
        return self.db.sql("INSERT INTO tags (workspace_id, name) VALUES (%s, %s) RETURNING id",
                           (self.id, name))[0][0]

    def endpoint(self, url, event_types=("scan.created",), **cols):
        secret = new_secret()
        names = ["workspace_id", "name", "endpoint_url", "event_types"] + list(cols)
        values = [self.id, "ep-" + uuid.uuid4().hex[:6], url, list(event_types)] + list(cols.values())
        ep = self.db.sql(f"INSERT INTO webhook_endpoints ({', '.join(names)}) "
                         f"VALUES ({', '.join(['%s'] * len(values))}) RETURNING id", values)[0][0]
        self.db.sql("INSERT INTO webhook_secrets (workspace_id, endpoint_id, secret) "
                    "VALUES (%s, %s, %s)", (self.id, ep, secret))
        return ep, secret

    def event(self, link, **cols):
        names = ["workspace_id", "occurred_at", "link_id"] + list(cols)
        values = [self.id, "now()", link] + list(cols.values())
        marks = ["%s", "now()", "%s"] + ["%s"] * len(cols)
        del values[1]
        return self.db.sql(f"INSERT INTO events ({', '.join(names)}) VALUES ({', '.join(marks)}) "
                           "RETURNING id", values)[0][0]


def test_scan_created_full_payload_signed(db, daemon, receiver):
    ws = Workspace(db)
    rx = receiver()
    link = ws.link("spring", tags=["pricing"])
    ep, secret = ws.endpoint(rx.url("/full"))
    daemon(db, FAST)
    visitor = db.sql("INSERT INTO visitors (workspace_id, email, first_name) "
                     "VALUES (%s, 'ada@example.com', 'Ada') RETURNING id", (ws.id,))[0][0]
    event = ws.event(link, visitor_id=visitor, country="FR", city="Paris",
                     device_type="DEVICE_TYPE_MOBILE", utm_campaign="spring")
    req = rx.wait_for(1, "/full")[0]
    assert verify(req, secret), req.headers
    assert req.headers["content-type"] == "application/json"
    body = json.loads(req.body)
    assert list(body) == ["type", "timestamp", "data"]
    assert body["type"] == "scan.created"
    data = body["data"]
    assert data["id"] == str(event)
    assert data["workspaceId"] == str(ws.id)
    assert data["link"]["shortlink"] == "spring"
    assert [t["name"] for t in data["link"]["tags"]] == ["pricing"]
    assert data["device"]["country"] == "FR" and data["device"]["city"] == "Paris"
    assert data["device"]["deviceType"] == "DEVICE_TYPE_MOBILE"
    assert data["utm"] == {"campaign": "spring"}
    assert data["visitor"]["email"] == "ada@example.com"
    # The message stores exactly the bytes that were signed and sent.
    stored = db.sql("SELECT payload FROM webhook_messages WHERE id = %s", (req.msg_id,))[0][0]
    assert stored.encode() == req.body
    wait_until(lambda: db.sql("SELECT state FROM webhook_deliveries WHERE message_id = %s",
                              (req.msg_id,))[0][0] == "delivered", 5, "delivery recorded")


def test_thin_payload_carries_ids(db, daemon, receiver):
    ws = Workspace(db)
    rx = receiver()
    link = ws.link()
    ep, secret = ws.endpoint(rx.url("/thin"), payload="thin")
    daemon(db, FAST)
    event = ws.event(link, country="DE")
    body = rx.wait_for(1, "/thin")[0].json()
    assert body["data"]["id"] == str(event)
    assert body["data"]["linkId"] == str(link)
    assert "device" not in body["data"] and "link" not in body["data"]


def test_filters_decide_who_gets_what(db, daemon, receiver):
    ws = Workspace(db)
    rx = receiver()
    tagged = ws.link(tags=["vip"])
    plain = ws.link()
    ws.endpoint(rx.url("/all"), event_types=["*"])
    ws.endpoint(rx.url("/scans"), event_types=["scan.*"])
    ws.endpoint(rx.url("/link"), link_id=plain)
    ws.endpoint(rx.url("/tag"), tag_ids="{%s}" % ws.tag("vip"))
    ws.endpoint(rx.url("/step"), triggers=["KIND_EXIT"])
    ws.endpoint(rx.url("/tests-only"), event_types=["webhook.test"])
    ws.endpoint(rx.url("/paused"), status="WEBHOOK_STATUS_PAUSED")
    other = Workspace(db)
    other.endpoint(rx.url("/other"))
    daemon(db, FAST)
    ws.event(tagged)
    ws.event(plain, workflow_step="KIND_EXIT")
    ws.event(plain)
    rx.wait_for(3, "/all")
    rx.wait_for(3, "/scans")
    rx.wait_for(2, "/link")
    rx.wait_for(1, "/tag")
    rx.wait_for(1, "/step")
    # Give stragglers a chance to show up before counting.
    wait_until(lambda: db.sql("SELECT count(*) FROM webhook_deliveries "
                              "WHERE state <> 'delivered'")[0][0] == 0, 5, "all delivered")
    counts = {p: len(rx.requests(p)) for p in
              ("/all", "/scans", "/link", "/tag", "/step", "/tests-only", "/paused", "/other")}
    assert counts == {"/all": 3, "/scans": 3, "/link": 2, "/tag": 1, "/step": 1,
                      "/tests-only": 0, "/paused": 0, "/other": 0}
    assert rx.requests("/tag")[0].json()["data"]["linkId"] == str(tagged)


def test_each_event_queued_exactly_once(db, daemon, receiver):
    ws = Workspace(db)
    rx = receiver()
    link = ws.link()
    full, _ = ws.endpoint(rx.url("/a"))
    thin, _ = ws.endpoint(rx.url("/b"), payload="thin")
    d = daemon(db, dict(FAST, **{"pipeline.batch_size": 50}))
    for _ in range(10):
        db.sql("INSERT INTO events (workspace_id, occurred_at, link_id) "
               "SELECT %s, now(), %s FROM generate_series(1, 30)", (ws.id, link))
    rx.wait_for(300, "/a", timeout=20)
    rx.wait_for(300, "/b", timeout=20)
    # One message per event and payload shape, one delivery per endpoint.
    rows = db.sql("SELECT kind, count(*), count(DISTINCT event_id) FROM webhook_messages "
                  "GROUP BY kind ORDER BY kind")
    assert rows == [("full", 300, 300), ("thin", 300, 300)]
    assert db.sql("SELECT count(*) FROM webhook_deliveries")[0][0] == 600
    ids = [r.msg_id for r in rx.requests("/a")]
    assert len(set(ids)) == 300
    assert d.metric("linkpulse_outbox_messages_total") == 600


def test_visitor_identified_on_form_submission(db, daemon, receiver):
    ws = Workspace(db)
    rx = receiver()
    link = ws.link()
    ws.endpoint(rx.url("/id"), event_types=["visitor.identified"])
    daemon(db, FAST)
    known = db.sql("INSERT INTO visitors (workspace_id, email, company) "
                   "VALUES (%s, 'grace@example.com', 'Navy') RETURNING id", (ws.id,))[0][0]
    anonymous = db.sql("INSERT INTO visitors (workspace_id) VALUES (%s) RETURNING id",
                       (ws.id,))[0][0]
    ws.event(link, visitor_id=anonymous, action="ACTION_FORM_SUBMISSION")
    ws.event(link, visitor_id=known, action="ACTION_SCAN")
    ws.event(link, visitor_id=known, action="ACTION_FORM_SUBMISSION")
    body = rx.wait_for(1, "/id")[0].json()
    assert body["type"] == "visitor.identified"
    assert body["data"]["visitor"]["email"] == "grace@example.com"
    assert body["data"]["visitor"]["company"] == "Navy"
    wait_until(lambda: db.sql("SELECT count(*) FROM webhook_deliveries "
                              "WHERE state <> 'delivered'")[0][0] == 0, 5, "all delivered")
    assert len(rx.requests("/id")) == 1


def configured(ws, rx, path, secret, **extra):
    return dict({"workspace": ws.slug, "name": "crm", "url": rx.url(path), "secret": secret,
                 "event_types": ["scan.created"]}, **extra)


def test_endpoints_declared_in_the_configuration(db, daemon, receiver):
    ws = Workspace(db)
    rx = receiver()
    link = ws.link()
    secret = new_secret()
    d = daemon(db, dict(FAST, webhooks=[
        configured(ws, rx, "/one", secret, headers={"X-Team": "sales"}),
        {"workspace": "no-such-ws", "name": "lost", "url": rx.url("/lost"), "secret": secret},
    ]))
    d.wait_log(r"endpoint 'lost': no workspace 'no-such-ws'")
    wait_until(lambda: db.sql("SELECT count(*) FROM webhook_endpoints WHERE managed")[0][0] == 1,
               5, "the configured endpoint created")
    ws.event(link)
    req = rx.wait_for(1, "/one")[0]
    assert verify(req, secret)
    assert req.headers["x-team"] == "sales"

    # A new URL and a new secret: the old secret keeps signing meanwhile.
    secret2 = new_secret()
    d.reload({"webhooks": [configured(ws, rx, "/two", secret2)]})
    wait_until(lambda: db.sql("SELECT endpoint_url FROM webhook_endpoints WHERE managed")[0][0]
               == rx.url("/two"), 5, "the endpoint updated")
    ws.event(link)
    req = rx.wait_for(1, "/two")[0]
    assert verify(req, secret2) and verify(req, secret)
    assert len(req.signatures) == 2

    # Gone from the file: disabled, not deleted, and its history kept.
    d.reload({"webhooks": None})
    wait_until(lambda: db.sql("SELECT status, disabled_reason FROM webhook_endpoints "
                              "WHERE managed")[0] ==
               ("WEBHOOK_STATUS_DISABLED", "removed from the configuration"), 5, "disabled")
    # Back in the file: active again.
    d.reload({"webhooks": [configured(ws, rx, "/three", secret2)]})
    wait_until(lambda: db.sql("SELECT status FROM webhook_endpoints WHERE managed")[0][0]
               == "WEBHOOK_STATUS_ACTIVE", 5, "enabled again")
    ws.event(link)
    rx.wait_for(1, "/three")


def test_configured_endpoint_errors_name_the_line(db, daemon, tmp_path):
    from conftest import LINKPULSED, run
    bad = tmp_path / "bad.yaml"
    bad.write_text("webhooks:\n"
                   "  - workspace: demo\n"
                   "    name: crm\n"
                   "    url: http://169.254.169.254/latest/meta-data\n"
                   "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
                   "    evnt_types: [scan.created]\n")
    r = run([str(LINKPULSED), "-t", "-c", str(bad)])
    assert r.returncode == 1
    assert f"{bad}:6:5: webhooks: unknown field 'evnt_types' (did you mean " \
           "'event_types'?)" in r.stderr
    assert f"{bad}:4:10: webhooks: url: 'http://169.254.169.254/latest/meta-data' points " \
           "at 169.254.169.254" in r.stderr


def test_new_deliveries_handed_to_the_engine_without_a_claim(db, daemon, receiver):
    """The outbox writes the deliveries it can hand over already leased to
    this instance (first attempt counted) and the engine sends them once the
    batch commits; those of an endpoint already full here wait for a claim."""
    ws = Workspace(db)
    rx = receiver()
    rx.default("/slow", delay=0.2)
    link = ws.link()
    fast, _ = ws.endpoint(rx.url("/fast"))
    slow, _ = ws.endpoint(rx.url("/slow"), max_in_flight=1)
    d = daemon(db, dict(FAST, **{"pipeline.batch_size": 10}))
    for _ in range(8):
        db.sql("INSERT INTO events (workspace_id, occurred_at, link_id) "
               "SELECT %s, now(), %s FROM generate_series(1, 10)", (ws.id, link))
    rx.wait_for(80, "/fast", timeout=20)
    rx.wait_for(80, "/slow", timeout=40)
    wait_until(lambda: db.sql("SELECT count(*) FROM webhook_deliveries "
                              "WHERE state = 'delivered'")[0][0] == 160, 20,
               "every delivery written as delivered")
    # Each delivered once, in one attempt, and logged once.
    assert len({r.msg_id for r in rx.requests("/fast")}) == 80
    assert len({r.msg_id for r in rx.requests("/slow")}) == 80
    assert db.sql("SELECT count(*), max(attempts) FROM webhook_deliveries") == [(160, 1)]
    assert db.sql("SELECT count(*) FROM webhook_attempts")[0][0] == 160
    assert rx.max_concurrent("/slow") == 1
    handed = d.metric("linkpulse_delivery_handed_over_total")
    # Every fast one was handed over; the slow endpoint filled its queue
    # here (32 jobs) and the rest of its deliveries were claimed.
    assert handed >= 80 + 32, handed
    assert handed < 160, handed
