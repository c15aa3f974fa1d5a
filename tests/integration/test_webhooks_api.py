"""/v1/webhooks: create (the secret shown once), list with a status filter,
get, patch (status changes hold and release deliveries), delete, another
workspace's endpoints invisible, scopes, strict validation that names every
field at fault (the network guard's URL policy included), require_https,
secret rotation with an overlap, test messages, replay, enable, the attempt
log's keyset pagination, and endpoints declared in the configuration file
refusing changes.

The daemon's delivery engine runs meanwhile: endpoints point at a loopback
port nothing listens on, and tests that need deliveries to stay where they
put them use paused endpoints or deliveries due later.
"""
import base64
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conftest import assert_problem, create_token, create_workspace, free_port

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]+=*$")
WEBHOOK_MEMBERS = {
    "id", "workspaceId", "name", "description", "endpointUrl", "linkId", "triggers", "source",
    "status", "disabledReason", "eventTypes", "tagIds", "headers", "rateLimitPerSecond",
    "maxInFlight", "payload", "format", "groupWait", "groupInterval", "operational", "managed",
    "createdBy", "successCount", "failureCount", "consecutiveFailures", "failingSince",
    "lastDeliveredAt", "lastSentAt", "createdAt", "updatedAt"}


def dead_url(path="/hook"):
    """A loopback URL nothing listens on (the tests' config allows 127.0.0.1)."""
    return f"http://127.0.0.1:{free_port()}{path}"


def ts(s):
    assert RFC3339.match(s), s
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


class Api:
    """A daemon, workspace 'acme' with a write and a read token."""

    def __init__(self, db, d):
        self.db, self.d = db, d
        self.ws = create_workspace(db, "acme", "Acme Inc")
        self.token = create_token(db, "acme", scopes="webhooks:write")
        self.read_token = create_token(db, "acme", scopes="webhooks:read")

    def req(self, method, path, token=None, **kw):
        return self.d.request(method, path, token=token or self.token, **kw)

    def create(self, name="hook", status=None, **members):
        body = {"name": name, "endpointUrl": dead_url(), **members}
        r = self.req("POST", "/v1/webhooks", json=body)
        assert r.status_code == 200, r.text
        hook = r.json()["webhook"]
        if status is not None:
            r = self.req("PATCH", f"/v1/webhooks/{hook['id']}", json={"status": status})
            assert r.status_code == 200, r.text
            assert r.json()["webhook"]["status"] == status
        return hook

    def add_delivery(self, ep, state="pending", attempts=0, due_in="1 hour", created_ago="0"):
        """A message and its delivery to ep, by SQL; returns the delivery id."""
        mid = "msg_" + uuid.uuid4().hex
        self.db.sql("INSERT INTO webhook_messages (workspace_id, id, event_type, payload) "
                    "VALUES (%s, %s, 'scan.created', '{}')", (self.ws, mid))
        return self.db.sql(
            "INSERT INTO webhook_deliveries (workspace_id, endpoint_id, message_id, state,"
            " attempts, next_attempt_at, created_at) VALUES (%s, %s, %s, %s, %s,"
            " now() + %s::interval, now() - %s::interval) RETURNING id",
            (self.ws, ep, mid, state, attempts, due_in, created_ago))[0][0]

    def states(self, ids):
        rows = self.db.sql("SELECT id, state, attempts FROM webhook_deliveries WHERE id = ANY(%s)",
                           (list(ids),))
        return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture
def api(db, daemon):
    return Api(db, daemon(db))


def invalid(r, field):
    """A 400 naming field in details; returns the body."""
    body = assert_problem(r, 400, "INVALID_ARGUMENT")
    fields = [d["field"] for d in body["details"]]
    assert field in fields, body
    return body


# ------------------------------------------------------------ create, read


def test_create_returns_the_secret_once(api):
    r = api.req("POST", "/v1/webhooks", json={"name": "CRM", "endpointUrl": dead_url()})
    assert r.status_code == 200, r.text
    hook = r.json()["webhook"]
    secret = hook.pop("secret")
    assert SECRET.match(secret), secret
    assert len(base64.b64decode(secret[len("whsec_"):])) == 32
    assert set(hook) == WEBHOOK_MEMBERS, set(hook) ^ WEBHOOK_MEMBERS
    assert hook["name"] == "CRM" and hook["workspaceId"] == api.ws
    assert hook["status"] == "WEBHOOK_STATUS_ACTIVE"
    assert hook["source"] == "WEBHOOK_SOURCE_LINKBREAKERS"
    assert hook["eventTypes"] == ["scan.created"]
    assert hook["triggers"] == [] and hook["tagIds"] == [] and hook["headers"] == {}
    assert hook["successCount"] == "0" and hook["failureCount"] == "0"
    assert hook["maxInFlight"] == 10 and hook["rateLimitPerSecond"] is None
    assert hook["payload"] == "full" and hook["format"] == "standard"
    assert hook["operational"] is False and hook["managed"] is False
    assert ts(hook["createdAt"]) == ts(hook["updatedAt"])
    assert api.db.sql("SELECT secret, expires_at FROM webhook_secrets WHERE endpoint_id = %s",
                      (hook["id"],)) == [(secret, None)]

    for path in (f"/v1/webhooks/{hook['id']}", "/v1/webhooks"):
        r = api.req("GET", path)
        assert r.status_code == 200, r.text
        assert "secret" not in r.text and "whsec_" not in r.text, r.text
    got = api.req("GET", f"/v1/webhooks/{hook['id']}").json()["webhook"]
    assert got == hook


def test_create_with_every_member(api):
    link = str(api.db.sql("INSERT INTO links (workspace_id, shortlink) VALUES (%s, 'spring') "
                          "RETURNING id", (api.ws,))[0][0])
    tag = str(api.db.sql("INSERT INTO tags (workspace_id, name) VALUES (%s, 'vip') RETURNING id",
                         (api.ws,))[0][0])
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    body = {"name": "Everything", "description": "all of it", "endpointUrl": dead_url("/all"),
            "linkId": link, "triggers": ["KIND_ENTRY", "KIND_EXIT"],
            "source": "WEBHOOK_SOURCE_ZAPIER", "eventTypes": ["scan.*", "visitor.identified"],
            "tagIds": [tag], "headers": {"Authorization": "Bearer abc", "X-Team": "growth"},
            "rateLimitPerSecond": 5, "maxInFlight": 3, "payload": "thin",
            "format": "standard", "operational": True, "secret": secret}
    r = api.req("POST", "/v1/webhooks", json=body)
    assert r.status_code == 200, r.text
    hook = r.json()["webhook"]
    assert hook.pop("secret") == secret
    for k, v in body.items():
        if k != "secret":
            assert hook[k] == v, (k, hook[k])
    assert api.db.sql("SELECT secret FROM webhook_secrets WHERE endpoint_id = %s",
                      (hook["id"],)) == [(secret,)]


def test_list_filters_by_status(api):
    a = api.create("a")
    b = api.create("b", status="WEBHOOK_STATUS_PAUSED")
    c = api.create("c", status="WEBHOOK_STATUS_DISABLED")
    r = api.req("GET", "/v1/webhooks", token=api.read_token)
    assert r.status_code == 200, r.text
    assert [w["id"] for w in r.json()["webhooks"]] == [a["id"], b["id"], c["id"]]
    for status, want in (("WEBHOOK_STATUS_ACTIVE", a), ("WEBHOOK_STATUS_PAUSED", b),
                         ("WEBHOOK_STATUS_DISABLED", c)):
        r = api.req("GET", "/v1/webhooks", params={"status": status})
        assert r.status_code == 200, r.text
        assert [w["id"] for w in r.json()["webhooks"]] == [want["id"]], status
    r = api.req("GET", "/v1/webhooks", params={"status": "WEBHOOK_STATUS_SLEEPY"})
    assert invalid(r, "status")["field"] == "status"


def test_get_patch_delete(api):
    hook = api.create("first", description="old")
    path = f"/v1/webhooks/{hook['id']}"
    r = api.req("PATCH", path, json={"name": "renamed", "description": None, "maxInFlight": 50,
                                     "rateLimitPerSecond": 20, "eventTypes": ["*"],
                                     "headers": {"X-A": "1"}})
    assert r.status_code == 200, r.text
    got = r.json()["webhook"]
    assert "secret" not in got
    assert got["name"] == "renamed" and got["description"] is None
    assert got["maxInFlight"] == 50 and got["rateLimitPerSecond"] == 20
    assert got["eventTypes"] == ["*"] and got["headers"] == {"X-A": "1"}
    assert got["endpointUrl"] == hook["endpointUrl"]  # untouched
    assert ts(got["updatedAt"]) >= ts(hook["updatedAt"])

    r = api.req("PATCH", path, json={"rateLimitPerSecond": None})
    assert r.status_code == 200 and r.json()["webhook"]["rateLimitPerSecond"] is None, r.text
    assert api.req("GET", path).json()["webhook"]["name"] == "renamed"

    r = api.req("DELETE", path)
    assert r.status_code == 200 and r.json() == {}, r.text
    assert api.db.sql("SELECT count(*) FROM webhook_secrets")[0][0] == 0
    assert_problem(api.req("GET", path), 404)
    assert_problem(api.req("DELETE", path), 404)
    assert_problem(api.req("PATCH", path, json={"name": "x"}), 404)
    assert invalid(api.req("GET", "/v1/webhooks/not-a-uuid"), "id")
    assert invalid(api.req("DELETE", "/v1/webhooks/12345"), "id")


def test_duplicate_name_is_a_conflict(api):
    api.create("same")
    other = api.create("other")
    r = api.req("POST", "/v1/webhooks", json={"name": "same", "endpointUrl": dead_url()})
    assert assert_problem(r, 409)["field"] == "name"
    r = api.req("PATCH", f"/v1/webhooks/{other['id']}", json={"name": "same"})
    assert assert_problem(r, 409)["field"] == "name"
    assert api.db.sql("SELECT count(*) FROM webhook_endpoints")[0][0] == 2


def test_patch_status_holds_and_releases_deliveries(api):
    hook = api.create("flow")
    ids = [api.add_delivery(hook["id"]) for _ in range(2)]
    path = f"/v1/webhooks/{hook['id']}"
    r = api.req("PATCH", path, json={"status": "WEBHOOK_STATUS_PAUSED"})
    assert r.status_code == 200 and r.json()["webhook"]["status"] == "WEBHOOK_STATUS_PAUSED"
    assert {s for s, _ in api.states(ids).values()} == {"held"}

    r = api.req("PATCH", path, json={"status": "WEBHOOK_STATUS_DISABLED"})
    got = r.json()["webhook"]
    assert got["status"] == "WEBHOOK_STATUS_DISABLED" and got["disabledReason"], got

    r = api.req("PATCH", path, json={"status": "WEBHOOK_STATUS_ACTIVE"})
    got = r.json()["webhook"]
    assert got["status"] == "WEBHOOK_STATUS_ACTIVE" and got["disabledReason"] is None, got
    # Due now: the engine may already be trying them, never left held.
    assert all(s in ("pending", "delivering") for s, _ in api.states(ids).values())


def test_another_workspace_sees_nothing(api):
    hook = api.create("mine")
    create_workspace(api.db, "globex", "Globex")
    other = create_token(api.db, "globex", scopes="webhooks:write")
    path = f"/v1/webhooks/{hook['id']}"
    r = api.req("GET", "/v1/webhooks", token=other)
    assert r.status_code == 200 and r.json() == {"webhooks": []}, r.text
    for method, sub, body in (("GET", "", None), ("PATCH", "", {"name": "x"}),
                              ("DELETE", "", None), ("POST", "/rotate-secret", None),
                              ("POST", "/test", None), ("GET", "/deliveries", None),
                              ("POST", "/replay", {"failedOnly": True}),
                              ("POST", "/enable", None)):
        r = api.req(method, path + sub, token=other, json=body)
        assert assert_problem(r, 404)["field"] == "id", (method, sub)
    got = api.req("GET", path).json()["webhook"]
    assert got["name"] == "mine" and got["status"] == "WEBHOOK_STATUS_ACTIVE"
    assert api.db.sql("SELECT count(*) FROM webhook_secrets")[0][0] == 1


def test_scopes(api):
    hook = api.create("scoped")
    path = f"/v1/webhooks/{hook['id']}"
    assert api.req("GET", path, token=api.read_token).status_code == 200
    assert api.req("GET", path + "/deliveries", token=api.read_token).status_code == 200
    for method, p, body in (("POST", "/v1/webhooks", {"name": "x", "endpointUrl": dead_url()}),
                            ("PATCH", path, {"name": "x"}), ("DELETE", path, None),
                            ("POST", path + "/rotate-secret", None), ("POST", path + "/test", None),
                            ("POST", path + "/enable", None)):
        assert_problem(api.req(method, p, token=api.read_token, json=body), 403)
    events_only = create_token(api.db, "acme", scopes="events:write")
    assert_problem(api.req("GET", "/v1/webhooks", token=events_only), 403)
    assert_problem(api.d.get("/v1/webhooks"), 401)
    assert_problem(api.d.post("/v1/webhooks", json={"name": "x", "endpointUrl": dead_url()}), 401)
    assert api.db.sql("SELECT count(*) FROM webhook_endpoints")[0][0] == 1


# ------------------------------------------------------------- validation


BAD_CREATE = [
    ({"endpointUrl": "ftp://example.com/hook"}, "endpointUrl"),
    ({"endpointUrl": "http://"}, "endpointUrl"),
    ({"endpointUrl": "https://:8443/hook"}, "endpointUrl"),
    ({"endpointUrl": "http://localhost:8080/hook"}, "endpointUrl"),
    ({"endpointUrl": "https://user:pass@example.com/hook"}, "endpointUrl"),
    ({"endpointUrl": "http://10.0.0.1/hook"}, "endpointUrl"),
    ({"endpointUrl": "http://169.254.169.254/latest/meta-data/"}, "endpointUrl"),
    ({"endpointUrl": "http://[::1]/hook"}, "endpointUrl"),
    ({"endpointUrl": "http://2130706433/hook"}, "endpointUrl"),
    ({"endpointUrl": "http://192.168.1.20:8080/hook"}, "endpointUrl"),
    ({"endpointUrl": "not a url"}, "endpointUrl"),
    ({"endpointUrl": "https://example.com/" + "a" * 2048}, "endpointUrl"),
    ({"endpointUrl": 42}, "endpointUrl"),
    ({"name": ""}, "name"),
    ({"name": "n" * 201}, "name"),
    ({"name": None}, "name"),
    ({"description": "d" * 2001}, "description"),
    ({"eventTypes": ["scan.created", "scan.nope"]}, "eventTypes[1]"),
    ({"eventTypes": []}, "eventTypes"),
    ({"eventTypes": "scan.created"}, "eventTypes"),
    ({"rateLimitPerSecond": -1}, "rateLimitPerSecond"),
    ({"rateLimitPerSecond": 0}, "rateLimitPerSecond"),
    ({"rateLimitPerSecond": 1.5}, "rateLimitPerSecond"),
    ({"maxInFlight": 0}, "maxInFlight"),
    ({"maxInFlight": 1001}, "maxInFlight"),
    ({"headers": {"Bad Name": "x"}}, "headers.Bad Name"),
    ({"headers": {"X:Colon": "x"}}, "headers.X:Colon"),
    ({"headers": {"Host": "evil.example"}}, "headers.Host"),
    ({"headers": {"content-type": "text/plain"}}, "headers.content-type"),
    ({"headers": {"Webhook-Signature": "v1,forged"}}, "headers.Webhook-Signature"),
    ({"headers": {"X-Split": "a\r\nInjected: yes"}}, "headers.X-Split"),
    ({"headers": {"X-Long": "v" * 1025}}, "headers.X-Long"),
    ({"headers": {"X-Num": 5}}, "headers.X-Num"),
    ({"headers": {f"X-H{i}": "v" for i in range(21)}}, "headers"),
    ({"headers": ["X-A"]}, "headers"),
    ({"linkId": "not-a-uuid"}, "linkId"),
    ({"linkId": str(uuid.uuid4())}, "linkId"),
    ({"tagIds": [str(uuid.uuid4())]}, "tagIds[0]"),
    ({"tagIds": ["nope"]}, "tagIds[0]"),
    ({"triggers": ["KIND_ENTRY", "KIND_NOPE"]}, "triggers[1]"),
    ({"source": "WEBHOOK_SOURCE_IFTTT"}, "source"),
    ({"status": "WEBHOOK_STATUS_UNSPECIFIED"}, "status"),
    ({"payload": "huge"}, "payload"),
    ({"format": "xml"}, "format"),
    ({"operational": "yes"}, "operational"),
    ({"secret": "whsec_short"}, "secret"),
    ({"secret": "not-a-secret-at-all-but-long-enough-000000000"}, "secret"),
    ({"colour": "blue"}, "colour"),
    ({"id": str(uuid.uuid4())}, "id"),
]


@pytest.fixture
def strict_api(db, daemon):
    """No network allowed: loopback is refused like every private range."""
    return Api(db, daemon(db, settings={"delivery.allow_networks": None}))


def test_validation_names_each_field(strict_api):
    api = strict_api
    for members, field in BAD_CREATE:
        body = {"name": "v", "endpointUrl": "https://hooks.example.com/in", **members}
        r = api.req("POST", "/v1/webhooks", json=body)
        problem = invalid(r, field)
        assert len(problem["details"]) == 1, (members, problem)
    assert api.db.sql("SELECT count(*) FROM webhook_endpoints")[0][0] == 0


def test_validation_messages(strict_api):
    api = strict_api
    for url, word in (("ftp://example.com/", "http"), ("http://10.0.0.1/", "private"),
                      ("http://[::1]/", "loopback"), ("http://2130706433/", "loopback"),
                      ("http://169.254.169.254/", "link-local")):
        r = api.req("POST", "/v1/webhooks", json={"name": "v", "endpointUrl": url})
        desc = invalid(r, "endpointUrl")["details"][0]["description"]
        assert word in desc.lower(), (url, desc)
    r = api.req("POST", "/v1/webhooks", json={"name": "v", "endpointUrl": "https://a.example/",
                                              "eventTypes": ["scan.nope"]})
    assert "scan.created" in invalid(r, "eventTypes[0]")["detail"]
    r = api.req("POST", "/v1/webhooks", json={"name": "v", "endpointUrl": "https://a.example/",
                                              "maxInflight": 3})
    assert "maxInFlight" in invalid(r, "maxInflight")["detail"]  # did you mean


def test_validation_reports_every_problem(strict_api):
    api = strict_api
    r = api.req("POST", "/v1/webhooks", json={"colour": "blue", "maxInFlight": 0,
                                              "headers": {"Host": "x"}})
    body = invalid(r, "colour")
    fields = {d["field"] for d in body["details"]}
    assert fields == {"colour", "maxInFlight", "headers.Host", "name", "endpointUrl"}, body
    for not_object in ([], "x", 3):
        assert invalid(api.req("POST", "/v1/webhooks", json=not_object), "body")
    r = api.req("POST", "/v1/webhooks", data="{not json",
                headers={"Content-Type": "application/json"})
    assert invalid(r, "body")


def test_patch_validation(strict_api):
    api = strict_api
    r = api.req("POST", "/v1/webhooks", json={"name": "p", "endpointUrl": "https://a.example/"})
    assert r.status_code == 200, r.text
    hook = r.json()["webhook"]
    path = f"/v1/webhooks/{hook['id']}"
    # Paused: the engine leaves an endpoint on the public internet alone.
    assert api.req("PATCH", path, json={"status": "WEBHOOK_STATUS_PAUSED"}).status_code == 200
    for members, field in (({"secret": "whsec_" + "A" * 44}, "secret"),
                           ({"status": "WEBHOOK_STATUS_UNSPECIFIED"}, "status"),
                           ({"name": None}, "name"), ({"endpointUrl": "http://10.1.2.3/"},
                                                      "endpointUrl"),
                           ({"maxInFlight": None}, "maxInFlight"),
                           ({"linkId": str(uuid.uuid4())}, "linkId"),
                           ({"createdAt": "2026-01-01T00:00:00Z"}, "createdAt")):
        invalid(api.req("PATCH", path, json=members), field)
    got = api.req("GET", path).json()["webhook"]
    assert got["name"] == "p" and got["endpointUrl"] == "https://a.example/"


def test_require_https(db, daemon):
    api = Api(db, daemon(db, settings={"delivery.require_https": True}))
    r = api.req("POST", "/v1/webhooks", json={"name": "plain", "endpointUrl": dead_url()})
    assert "https" in invalid(r, "endpointUrl")["detail"]
    url = f"https://127.0.0.1:{free_port()}/hook"
    r = api.req("POST", "/v1/webhooks", json={"name": "tls", "endpointUrl": url,
                                              "status": "WEBHOOK_STATUS_PAUSED"})
    assert r.status_code == 200, r.text
    r = api.req("PATCH", f"/v1/webhooks/{r.json()['webhook']['id']}",
                json={"endpointUrl": dead_url()})
    invalid(r, "endpointUrl")


# ------------------------------------------------------------ sub-resources


def test_rotate_secret(api):
    r = api.req("POST", "/v1/webhooks", json={"name": "rot", "endpointUrl": dead_url()})
    hook = r.json()["webhook"]
    first = hook["secret"]
    path = f"/v1/webhooks/{hook['id']}/rotate-secret"

    r = api.req("POST", path, json={"overlap": "1h"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"secret", "previousSecretsExpireAt"}
    second = body["secret"]
    assert SECRET.match(second) and second != first
    ends = ts(body["previousSecretsExpireAt"])
    rows = api.db.sql("SELECT secret, expires_at, now() FROM webhook_secrets "
                      "WHERE endpoint_id = %s ORDER BY id", (hook["id"],))
    assert [r[0] for r in rows] == [first, second]
    db_now = rows[0][2]
    assert abs(rows[0][1] - (db_now + timedelta(hours=1))) < timedelta(seconds=30), rows
    assert abs(rows[0][1] - ends) < timedelta(milliseconds=2)
    assert rows[1][1] is None
    assert "whsec_" not in api.req("GET", f"/v1/webhooks/{hook['id']}").text

    # "0s" ends every older secret now: only the newest signs.
    r = api.req("POST", path, json={"overlap": "0s"})
    assert r.status_code == 200, r.text
    third = r.json()["secret"]
    live = api.db.sql("SELECT secret FROM webhook_secrets WHERE endpoint_id = %s "
                      "AND (expires_at IS NULL OR expires_at > now())", (hook["id"],))
    assert live == [(third,)]
    assert api.db.sql("SELECT count(*) FROM webhook_secrets WHERE endpoint_id = %s",
                      (hook["id"],))[0][0] == 3

    # No body: the configured overlap (delivery.secret_overlap), in the future.
    r = api.req("POST", path)
    assert r.status_code == 200, r.text
    assert ts(r.json()["previousSecretsExpireAt"]) > datetime.now(timezone.utc)

    invalid(api.req("POST", path, json={"overlap": "soon"}), "overlap")
    invalid(api.req("POST", path, json={"overlap": "1h", "keep": True}), "keep")
    assert_problem(api.req("POST", f"/v1/webhooks/{uuid.uuid4()}/rotate-secret"), 404)


def test_test_message(api):
    hook = api.create("tested")
    r = api.req("POST", f"/v1/webhooks/{hook['id']}/test")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["eventType"] == "webhook.test" and body["msgId"].startswith("msg_"), body
    rows = api.db.sql("SELECT event_type, payload::jsonb FROM webhook_messages "
                      "WHERE workspace_id = %s AND id = %s", (api.ws, body["msgId"]))
    assert len(rows) == 1 and rows[0][0] == "webhook.test"
    payload = rows[0][1]
    assert payload["type"] == "webhook.test"
    assert payload["data"] == {"endpointId": hook["id"], "name": "tested",
                               "message": "This is a test message from linkpulse."}
    deliveries = api.db.sql("SELECT endpoint_id::text, state FROM webhook_deliveries "
                            "WHERE message_id = %s", (body["msgId"],))
    assert len(deliveries) == 1 and deliveries[0][0] == hook["id"]
    assert deliveries[0][1] in ("pending", "delivering"), deliveries  # the engine may be on it

    paused = api.create("paused", status="WEBHOOK_STATUS_PAUSED")
    assert_problem(api.req("POST", f"/v1/webhooks/{paused['id']}/test"), 409)
    assert api.db.sql("SELECT count(*) FROM webhook_messages")[0][0] == 1


def test_replay(api):
    hook = api.create("replayed", status="WEBHOOK_STATUS_PAUSED")
    ep = hook["id"]
    dead = [api.add_delivery(ep, "dead", attempts=8, created_ago="2 hours") for _ in range(3)]
    done = [api.add_delivery(ep, "delivered", attempts=1, created_ago="2 hours")
            for _ in range(2)]
    fresh = api.add_delivery(ep, "held", attempts=0)
    path = f"/v1/webhooks/{ep}/replay"

    r = api.req("POST", path, json={"failedOnly": True})
    assert r.status_code == 202 and r.json() == {"queued": 3}, r.text
    st = api.states(dead + done + [fresh])
    # The endpoint is paused: requeued deliveries wait, held, from attempt 0.
    assert all(st[i] == ("held", 0) for i in dead), st
    assert all(st[i] == ("delivered", 1) for i in done), st

    since = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    r = api.req("POST", path, json={"since": since})
    assert r.status_code == 202 and r.json() == {"queued": 1}, r.text

    for body, field in (({}, "since"), ({"failedOnly": False}, "since"),
                        ({"failedOnly": "yes"}, "failedOnly"), ({"since": "yesterday"}, "since"),
                        ({"since": "2026-02-30T00:00:00Z"}, "since"),
                        ({"failedOnly": True, "everything": True}, "everything")):
        invalid(api.req("POST", path, json=body), field)
    assert_problem(api.req("POST", path), 400)


def test_enable(api):
    hook = api.create("revived")
    ep = hook["id"]
    api.db.sql("UPDATE webhook_endpoints SET status = 'WEBHOOK_STATUS_DISABLED',"
               " disabled_reason = 'the endpoint answered 410 Gone', consecutive_failures = 9,"
               " failing_since = now() - interval '6 days' WHERE id = %s", (ep,))
    held = [api.add_delivery(ep, "held", attempts=3, due_in="0") for _ in range(2)]
    r = api.req("POST", f"/v1/webhooks/{ep}/enable")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["requeued"] == 2, body
    got = body["webhook"]
    assert got["status"] == "WEBHOOK_STATUS_ACTIVE" and got["disabledReason"] is None, got
    assert got["consecutiveFailures"] == 0 and got["failingSince"] is None, got
    assert all(s in ("pending", "delivering") for s, _ in api.states(held).values())
    assert_problem(api.req("POST", f"/v1/webhooks/{uuid.uuid4()}/enable"), 404)


def test_deliveries_pages_newest_first(api):
    hook = api.create("logged", status="WEBHOOK_STATUS_PAUSED")
    ep = hook["id"]
    path = f"/v1/webhooks/{ep}/deliveries"
    r = api.req("GET", path, token=api.read_token)
    assert r.status_code == 200 and r.json() == {"attempts": [], "nextPageToken": ""}, r.text

    did = api.add_delivery(ep, "dead", attempts=120)
    msg = api.db.sql("SELECT message_id FROM webhook_deliveries WHERE id = %s", (did,))[0][0]
    api.db.sql("INSERT INTO webhook_attempts (workspace_id, endpoint_id, delivery_id, message_id,"
               " attempt, attempted_at, status_code, latency_ms, error, response_snippet)"
               " SELECT %s, %s, %s, %s, g, now() - (120 - g) * interval '1 second',"
               " CASE WHEN g %% 3 = 0 THEN NULL ELSE 500 + g END, g,"
               " CASE WHEN g %% 3 = 0 THEN 'connection refused' END, 'snippet ' || g"
               " FROM generate_series(1, 120) g", (api.ws, ep, did, msg))
    seen, sizes, token = [], [], None
    while True:
        params = {"pageSize": 50}
        if token:
            params["pageToken"] = token
        r = api.req("GET", path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        sizes.append(len(body["attempts"]))
        seen += body["attempts"]
        token = body["nextPageToken"]
        if not token:
            break
        assert len(sizes) < 5, sizes
    assert sizes == [50, 50, 20]
    numbers = [a["attempt"] for a in seen]
    assert numbers == list(range(120, 0, -1))  # newest first, no duplicates
    assert len({a["id"] for a in seen}) == 120
    first = seen[0]  # attempt 120: no response
    assert set(first) == {"id", "deliveryId", "msgId", "eventType", "attempt", "attemptedAt",
                          "statusCode", "latencyMs", "error", "responseSnippet"}
    assert first["statusCode"] is None and first["error"] == "connection refused"
    assert first["msgId"] == msg and first["eventType"] == "scan.created"
    assert first["deliveryId"] == str(did) and first["latencyMs"] == 120
    assert seen[1]["statusCode"] == 619 and seen[1]["responseSnippet"] == "snippet 119"
    ts(first["attemptedAt"])

    r = api.req("GET", path, params={"state": "failed", "pageSize": 500})
    assert len(r.json()["attempts"]) == 120
    r = api.req("GET", path, params={"state": "succeeded"})
    assert r.json() == {"attempts": [], "nextPageToken": ""}

    for params, field in (({"pageSize": 0}, "pageSize"), ({"pageSize": 501}, "pageSize"),
                          ({"pageSize": "ten"}, "pageSize"), ({"pageToken": "abc"}, "pageToken"),
                          ({"pageToken": "-5"}, "pageToken"), ({"state": "sideways"}, "state")):
        invalid(api.req("GET", path, params=params), field)
    assert_problem(api.req("GET", f"/v1/webhooks/{uuid.uuid4()}/deliveries"), 404)


def test_managed_endpoint_refuses_changes(api):
    hook = api.create("declared")
    path = f"/v1/webhooks/{hook['id']}"
    api.db.sql("UPDATE webhook_endpoints SET managed = true WHERE id = %s", (hook["id"],))
    for method, sub, body in (("PATCH", "", {"name": "changed"}),
                              ("PATCH", "", {"status": "WEBHOOK_STATUS_PAUSED"}),
                              ("DELETE", "", None), ("POST", "/rotate-secret", None)):
        r = api.req(method, path + sub, json=body)
        assert "configuration file" in assert_problem(r, 409)["detail"], (method, sub)
    got = api.req("GET", path).json()["webhook"]
    assert got["managed"] is True and got["name"] == "declared"
    assert got["status"] == "WEBHOOK_STATUS_ACTIVE"
    assert api.db.sql("SELECT count(*) FROM webhook_secrets")[0][0] == 1
