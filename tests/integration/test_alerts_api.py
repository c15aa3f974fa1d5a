"""/v1/alerts: the workspace's alerts and their history (rows written here
with SQL, the way the rules consumer writes them), silences (create with
strict validation naming every field at fault, the regular expressions
judged by PostgreSQL, list with a state filter, get, expire), keyset
pagination, scopes, another workspace's rows invisible; and the grouping
settings of webhook endpoints (groupWait, groupInterval) through the API
and the configuration file, and the alert.* event types.

/v1/alerts/rules and /v1/alerts/reload need the rules engine; their tests
live with it.
"""
import base64
import json
import os
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conftest import LINKPULSED, assert_problem, create_token, create_workspace, free_port, run, \
    wait_until

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ALERT_MEMBERS = {"rule", "fingerprint", "state", "labels", "annotations", "value", "threshold",
                 "window", "severity", "activeAt", "firedAt", "resolvedAt", "notifiedAt",
                 "notifications", "since"}
HISTORY_MEMBERS = {"id", "rule", "fingerprint", "labels", "annotations", "from", "state", "value",
                   "threshold", "at", "notified", "repeat", "silencedBy"}
SILENCE_MEMBERS = {"id", "matchers", "startsAt", "endsAt", "createdBy", "comment", "status",
                   "createdAt", "updatedAt"}


def ts(s):
    assert RFC3339.match(s), s
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now():
    return datetime.now(timezone.utc)


def fp(n):
    return f"{n:016x}"


def invalid(r, field):
    """A 400 naming field in details; returns the body."""
    body = assert_problem(r, 400, "INVALID_ARGUMENT")
    fields = [d["field"] for d in body["details"]]
    assert field in fields, body
    return body


class Api:
    """A daemon and workspace 'acme' with a write, a read and an admin token."""

    def __init__(self, db, d):
        self.db, self.d = db, d
        self.ws = create_workspace(db, "acme", "Acme Inc")
        self.token = create_token(db, "acme", scopes="alerts:write")
        self.read_token = create_token(db, "acme", scopes="alerts:read")

    def req(self, method, path, token=None, **kw):
        return self.d.request(method, path, token=token or self.token, **kw)

    def silence(self, expect=201, **members):
        body = {"matchers": [{"name": "link", "value": "spring"}],
                "endsAt": iso(now() + timedelta(hours=1)), "createdBy": "ops@example.com",
                **members}
        r = self.req("POST", "/v1/alerts/silences", json=body)
        assert r.status_code == expect, r.text
        return r.json()["silence"] if expect == 201 else r

    def instance(self, rule, n, state="firing", ws=None, **cols):
        """An alert_instances row, as the rules consumer writes it."""
        row = {"workspace_id": ws or self.ws, "rule": rule, "fingerprint": fp(n),
               "labels": json.dumps({"alertname": rule, "link": f"l{n}"}),
               "annotations": json.dumps({"summary": f"link l{n} is hot"}),
               "state": state, "value": "12", "threshold": "10", "window": "10m",
               "severity": "critical", "active_at": "2026-03-01T10:00:00Z",
               "fired_at": "2026-03-01T10:05:00Z" if state != "pending" else None,
               "resolved_at": "2026-03-01T10:30:00Z" if state == "resolved" else None,
               "notified_at": "2026-03-01T10:05:00Z" if state != "pending" else None,
               "notifications": 1 if state != "pending" else 0}
        row.update(cols)
        names = ", ".join(f'"{k}"' for k in row)
        self.db.sql(f"INSERT INTO alert_instances ({names}) VALUES "
                    f"({', '.join(['%s'] * len(row))})", list(row.values()))

    def history(self, rule, n, at, state="firing", from_state="pending", ws=None, **cols):
        """An alert_history row; returns its id."""
        row = {"workspace_id": ws or self.ws, "rule": rule, "fingerprint": fp(n),
               "labels": json.dumps({"alertname": rule}), "annotations": "{}",
               "from_state": from_state, "state": state, "value": "3", "threshold": "2",
               "at": at, "notified": True, "repeat": False, "silenced_by": None}
        row.update(cols)
        return self.db.sql(f"INSERT INTO alert_history ({', '.join(row)}) VALUES "
                           f"({', '.join(['%s'] * len(row))}) RETURNING id",
                           list(row.values()))[0][0]

    def pages(self, path, key, size=None, **params):
        """Every page of a list; returns (items, page sizes)."""
        items, sizes, token = [], [], None
        while True:
            p = dict(params)
            if size:
                p["pageSize"] = size
            if token:
                p["pageToken"] = token
            r = self.req("GET", path, params=p, token=self.read_token)
            assert r.status_code == 200, r.text
            body = r.json()
            assert set(body) == {key, "nextPageToken"}, body
            items += body[key]
            sizes.append(len(body[key]))
            token = body["nextPageToken"]
            if not token:
                return items, sizes
            assert len(sizes) < 50, sizes


@pytest.fixture
def api(db, daemon):
    return Api(db, daemon(db))


# ------------------------------------------------------------------ silences


def test_silence_create_get_list_expire(api):
    before = now()
    ends = iso(before + timedelta(hours=2))
    r = api.req("POST", "/v1/alerts/silences", json={
        "matchers": [{"name": "link", "value": "spring"},
                     {"name": "country", "value": "FR|DE", "isRegex": True},
                     {"name": "link.tag", "value": "internal", "isEqual": False}],
        "endsAt": ends, "createdBy": "ops@example.com", "comment": "maintenance"})
    assert r.status_code == 201, r.text
    silence = r.json()["silence"]
    assert set(silence) == SILENCE_MEMBERS, set(silence) ^ SILENCE_MEMBERS
    sid = silence["id"]
    assert r.headers["Location"] == f"/v1/alerts/silences/{sid}"
    assert silence["matchers"] == [
        {"name": "link", "value": "spring", "isRegex": False, "isEqual": True},
        {"name": "country", "value": "FR|DE", "isRegex": True, "isEqual": True},
        {"name": "link.tag", "value": "internal", "isRegex": False, "isEqual": False}]
    assert silence["status"] == {"state": "active"}
    assert silence["createdBy"] == "ops@example.com" and silence["comment"] == "maintenance"
    assert abs(ts(silence["endsAt"]) - (before + timedelta(hours=2))) < timedelta(milliseconds=1)
    # startsAt defaults to now.
    assert before - timedelta(seconds=5) < ts(silence["startsAt"]) < now() + timedelta(seconds=5)
    assert silence["createdAt"] == silence["updatedAt"]
    row = api.db.sql("SELECT workspace_id::text, matchers, created_by, comment FROM alert_silences")
    assert row == [(api.ws, silence["matchers"], "ops@example.com", "maintenance")]

    path = f"/v1/alerts/silences/{sid}"
    r = api.req("GET", path, token=api.read_token)
    assert r.status_code == 200 and r.json() == {"silence": silence}, r.text
    r = api.req("GET", "/v1/alerts/silences", token=api.read_token)
    assert r.status_code == 200, r.text
    assert r.json() == {"silences": [silence], "nextPageToken": ""}
    for state, want in (("active", [sid]), ("pending", []), ("expired", []),
                        ("pending,active", [sid]), ("expired,pending", [])):
        r = api.req("GET", "/v1/alerts/silences", params={"state": state})
        assert [s["id"] for s in r.json()["silences"]] == want, state

    r = api.req("DELETE", path)
    assert r.status_code == 200, r.text
    gone = r.json()["silence"]
    assert gone["status"] == {"state": "expired"}
    assert ts(gone["endsAt"]) <= now() + timedelta(seconds=1)
    assert gone["startsAt"] == silence["startsAt"]
    assert ts(gone["updatedAt"]) >= ts(silence["updatedAt"])
    assert api.req("GET", path).json() == {"silence": gone}
    # Expiring an expired silence changes nothing.
    r = api.req("DELETE", path)
    assert r.status_code == 200 and r.json() == {"silence": gone}, r.text
    r = api.req("GET", "/v1/alerts/silences", params={"state": "expired"})
    assert [s["id"] for s in r.json()["silences"]] == [sid]
    assert api.req("GET", "/v1/alerts/silences", params={"state": "active"}).json()[
        "silences"] == []


def test_pending_silence_and_start_times(api):
    starts = now() + timedelta(hours=1)
    pending = api.silence(startsAt=iso(starts), endsAt=iso(starts + timedelta(hours=1)))
    assert pending["status"] == {"state": "pending"}
    assert abs(ts(pending["startsAt"]) - starts) < timedelta(milliseconds=1)
    r = api.req("GET", "/v1/alerts/silences", params={"state": "pending"})
    assert [s["id"] for s in r.json()["silences"]] == [pending["id"]]

    # A start in the past becomes now, as in Alertmanager.
    before = now()
    past = api.silence(startsAt=iso(before - timedelta(days=1)), comment=None)
    assert ts(past["startsAt"]) >= before - timedelta(seconds=5)
    assert past["status"] == {"state": "active"} and past["comment"] == ""
    # Offsets and lower-case letters are RFC 3339 too.
    later = (now() + timedelta(hours=3)).astimezone(timezone(timedelta(hours=2)))
    s = api.silence(endsAt=later.strftime("%Y-%m-%dt%H:%M:%S+02:00"))
    assert abs(ts(s["endsAt"]) - later) < timedelta(seconds=1)

    # Expiring a silence that has not started ends it before it starts.
    r = api.req("DELETE", f"/v1/alerts/silences/{pending['id']}")
    assert r.status_code == 200, r.text
    gone = r.json()["silence"]
    assert gone["status"] == {"state": "expired"}
    assert ts(gone["startsAt"]) <= ts(gone["endsAt"]) <= now() + timedelta(seconds=1)


def test_silences_newest_first_in_pages(api):
    made = [api.silence(createdBy=f"user{i}")["id"] for i in range(5)]
    # Rows made in one statement share created_at: the id breaks the tie.
    api.db.sql("INSERT INTO alert_silences (workspace_id, matchers, starts_at, ends_at, created_by,"
               " created_at) SELECT %s, '[{\"name\": \"a\", \"value\": \"b\"}]', now(),"
               " now() + interval '1 hour', 'bulk' || g, now() - interval '1 day'"
               " FROM generate_series(1, 6) g", (api.ws,))
    bulk = [str(r[0]) for r in api.db.sql("SELECT id FROM alert_silences WHERE created_by "
                                          "LIKE 'bulk%%' ORDER BY id DESC")]
    items, sizes = api.pages("/v1/alerts/silences", "silences", size=4)
    assert sizes == [4, 4, 3]
    assert [s["id"] for s in items] == made[::-1] + bulk
    items, sizes = api.pages("/v1/alerts/silences", "silences", size=2, state="active")
    assert len(items) == 11 and sizes == [2] * 5 + [1]
    items, sizes = api.pages("/v1/alerts/silences", "silences")
    assert sizes == [11]
    for params, field in (({"pageSize": 0}, "pageSize"), ({"pageSize": 1001}, "pageSize"),
                          ({"pageSize": "x"}, "pageSize"), ({"pageToken": "abc"}, "pageToken"),
                          ({"pageToken": "123.not-a-uuid"}, "pageToken"),
                          ({"pageToken": f"-1.{uuid.uuid4()}"}, "pageToken"),
                          ({"state": "asleep"}, "state"), ({"state": "active,firing"}, "state")):
        invalid(api.req("GET", "/v1/alerts/silences", params=params), field)


def ok_matchers():
    return [{"name": "link", "value": "spring"}]


BAD_SILENCES = [
    ({"matchers": None}, "matchers"),
    ({"matchers": []}, "matchers"),
    ({"matchers": "link=spring"}, "matchers"),
    ({"matchers": [{"name": f"l{i}", "value": "x"} for i in range(65)]}, "matchers"),
    ({"matchers": [5]}, "matchers[0]"),
    ({"matchers": [{"value": "x"}]}, "matchers[0].name"),
    ({"matchers": [{"name": "1st", "value": "x"}]}, "matchers[0].name"),
    ({"matchers": [{"name": "a-b", "value": "x"}]}, "matchers[0].name"),
    ({"matchers": [{"name": "", "value": "x"}]}, "matchers[0].name"),
    ({"matchers": [{"name": 7, "value": "x"}]}, "matchers[0].name"),
    ({"matchers": [{"name": "n" * 129, "value": "x"}]}, "matchers[0].name"),
    ({"matchers": [{"name": "link"}]}, "matchers[0].value"),
    ({"matchers": [{"name": "link", "value": 5}]}, "matchers[0].value"),
    ({"matchers": [{"name": "link", "value": None}]}, "matchers[0].value"),
    ({"matchers": [{"name": "link", "value": "v" * 1025}]}, "matchers[0].value"),
    ({"matchers": [{"name": "link", "value": "x", "isRegex": "yes"}]}, "matchers[0].isRegex"),
    ({"matchers": [{"name": "link", "value": "x", "isEqual": 0}]}, "matchers[0].isEqual"),
    ({"matchers": [{"name": "link", "value": "x", "colour": "red"}]}, "matchers[0].colour"),
    ({"matchers": [{"name": "link", "value": "x"},
                   {"name": "country", "value": "(FR", "isRegex": True}]}, "matchers[1].value"),
    ({"matchers": [{"name": "country", "value": "a{2,1}", "isRegex": True}]},
     "matchers[0].value"),
    # Closing the anchoring group early is no way around it.
    ({"matchers": [{"name": "country", "value": "FR)|(.*", "isRegex": True}]},
     "matchers[0].value"),
    # Silences that would match every alert.
    ({"matchers": [{"name": "link", "value": ""}]}, "matchers"),
    ({"matchers": [{"name": "link", "value": ".*", "isRegex": True}]}, "matchers"),
    ({"matchers": [{"name": "link", "value": "x", "isEqual": False}]}, "matchers"),
    ({"matchers": [{"name": "link", "value": "x+", "isRegex": True, "isEqual": False}]},
     "matchers"),
    ({"endsAt": None}, "endsAt"),
    ({"endsAt": "tomorrow"}, "endsAt"),
    ({"endsAt": "2030-02-30T00:00:00Z"}, "endsAt"),
    ({"endsAt": "2030-01-01T00:00:00"}, "endsAt"),
    ({"endsAt": 1893456000}, "endsAt"),
    ({"endsAt": "2020-01-01T00:00:00Z"}, "endsAt"),
    ({"startsAt": "soon"}, "startsAt"),
    ({"startsAt": iso(now() + timedelta(days=400)),
      "endsAt": iso(now() + timedelta(days=399))}, "endsAt"),
    ({"createdBy": None}, "createdBy"),
    ({"createdBy": ""}, "createdBy"),
    ({"createdBy": "   "}, "createdBy"),
    ({"createdBy": "c" * 201}, "createdBy"),
    ({"createdBy": 5}, "createdBy"),
    ({"comment": "c" * 2001}, "comment"),
    ({"comment": ["x"]}, "comment"),
    ({"id": str(uuid.uuid4())}, "id"),
    ({"status": {"state": "active"}}, "status"),
]


def test_silence_validation_names_each_field(api):
    for members, field in BAD_SILENCES:
        body = {"matchers": ok_matchers(), "endsAt": iso(now() + timedelta(hours=1)),
                "createdBy": "ops", **members}
        body = {k: v for k, v in body.items() if v is not None or k in ("comment",)}
        problem = invalid(api.req("POST", "/v1/alerts/silences", json=body), field)
        assert len(problem["details"]) == 1, (members, problem)
        assert problem["field"] == field, (members, problem)
    # The longest values allowed are fine.
    api.silence(createdBy="c" * 200, comment="c" * 2000,
                matchers=[{"name": "n" * 128, "value": "v" * 1024}])
    assert api.db.sql("SELECT count(*) FROM alert_silences")[0][0] == 1


def test_silence_validation_reports_every_problem(api):
    r = api.req("POST", "/v1/alerts/silences", json={
        "matchers": [{"name": "9", "value": "x"}, {"name": "ok", "value": "[", "isRegex": True},
                     {"name": "ok2", "value": "(", "isRegex": True}],
        "startsAt": "later", "colour": "blue"})
    body = invalid(r, "matchers[0].name")
    fields = {d["field"] for d in body["details"]}
    assert fields == {"matchers[0].name", "matchers[1].value", "matchers[2].value", "startsAt",
                      "endsAt", "createdBy", "colour"}, body
    regex = [d for d in body["details"] if d["field"] == "matchers[1].value"][0]
    assert "regular expression" in regex["description"], regex
    for not_object in ([], "x", 3):
        invalid(api.req("POST", "/v1/alerts/silences", json=not_object), "body")
    r = api.req("POST", "/v1/alerts/silences", data="{not json",
                headers={"Content-Type": "application/json"})
    invalid(r, "body")
    assert api.db.sql("SELECT count(*) FROM alert_silences")[0][0] == 0


def test_silence_ids(api):
    invalid(api.req("GET", "/v1/alerts/silences/not-a-uuid"), "id")
    invalid(api.req("DELETE", "/v1/alerts/silences/12345"), "id")
    for method in ("GET", "DELETE"):
        r = api.req(method, f"/v1/alerts/silences/{uuid.uuid4()}")
        assert assert_problem(r, 404)["field"] == "id"


# ------------------------------------------------------- scopes, workspaces


def test_scopes(api):
    s = api.silence()
    path = f"/v1/alerts/silences/{s['id']}"
    for p in ("/v1/alerts", "/v1/alerts/history", "/v1/alerts/silences", path):
        assert api.req("GET", p, token=api.read_token).status_code == 200, p
        assert api.req("GET", p).status_code == 200, p  # write grants read
    body = {"matchers": ok_matchers(), "endsAt": iso(now() + timedelta(hours=1)),
            "createdBy": "x"}
    assert_problem(api.req("POST", "/v1/alerts/silences", token=api.read_token, json=body), 403)
    assert_problem(api.req("DELETE", path, token=api.read_token), 403)
    # Reloading is for admin tokens only.
    assert_problem(api.req("POST", "/v1/alerts/reload"), 403)
    assert_problem(api.req("POST", "/v1/alerts/reload", token=api.read_token), 403)
    hooks = create_token(api.db, "acme", scopes="webhooks:write")
    for method, p in (("GET", "/v1/alerts"), ("GET", "/v1/alerts/rules"),
                      ("GET", "/v1/alerts/history"), ("GET", "/v1/alerts/silences"),
                      ("GET", path), ("DELETE", path), ("POST", "/v1/alerts/silences")):
        assert_problem(api.req(method, p, token=hooks, json=body), 403)
        assert_problem(api.d.request(method, p, json=body), 401)
    admin = create_token(api.db, "acme", scopes="admin")
    assert api.req("POST", "/v1/alerts/silences", token=admin, json=body).status_code == 201
    assert api.req("DELETE", path, token=admin).status_code == 200
    assert api.db.sql("SELECT count(*) FROM alert_silences")[0][0] == 2


def test_another_workspace_sees_nothing(api):
    s = api.silence()
    api.instance("hot-link", 1)
    api.history("hot-link", 1, "2026-03-01T10:05:00Z")
    other_ws = create_workspace(api.db, "globex", "Globex")
    other = create_token(api.db, "globex", scopes="alerts:write")
    path = f"/v1/alerts/silences/{s['id']}"
    for method in ("GET", "DELETE"):
        assert assert_problem(api.req(method, path, token=other), 404)["field"] == "id"
    for p, key in (("/v1/alerts", "alerts"), ("/v1/alerts/history", "history"),
                   ("/v1/alerts/silences", "silences")):
        r = api.req("GET", p, token=other)
        assert r.status_code == 200 and r.json() == {key: [], "nextPageToken": ""}, r.text
    assert api.req("GET", path).json()["silence"]["status"] == {"state": "active"}
    # And globex's own rows stay its own.
    api.instance("hot-link", 2, ws=other_ws)
    r = api.req("GET", "/v1/alerts", token=other)
    assert [a["fingerprint"] for a in r.json()["alerts"]] == [fp(2)]
    r = api.req("GET", "/v1/alerts")
    assert [a["fingerprint"] for a in r.json()["alerts"]] == [fp(1)]


# -------------------------------------------------------------- alerts


def test_alerts_list_and_filters(api):
    api.instance("b-rule", 2, "firing")
    api.instance("b-rule", 1, "pending")
    api.instance("a-rule", 3, "resolved")
    api.instance("a-rule", 4, "firing", labels=json.dumps({"alertname": "a-rule", "team": "x"}),
                 value=None, threshold=None, window=None, severity="info",
                 notifications=3)
    r = api.req("GET", "/v1/alerts", token=api.read_token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["nextPageToken"] == ""
    alerts = body["alerts"]
    # pending and firing by default, by rule then fingerprint
    assert [(a["rule"], a["fingerprint"]) for a in alerts] == [
        ("a-rule", fp(4)), ("b-rule", fp(1)), ("b-rule", fp(2))]
    first = alerts[0]
    assert set(first) == ALERT_MEMBERS, set(first) ^ ALERT_MEMBERS
    assert first == {
        "rule": "a-rule", "fingerprint": fp(4), "state": "firing",
        "labels": {"alertname": "a-rule", "team": "x"},
        "annotations": {"summary": "link l4 is hot"}, "value": None, "threshold": None,
        "window": None, "severity": "info", "activeAt": "2026-03-01T10:00:00.000Z",
        "firedAt": "2026-03-01T10:05:00.000Z", "resolvedAt": None,
        "notifiedAt": "2026-03-01T10:05:00.000Z", "notifications": 3,
        "since": "2026-03-01T10:00:00.000Z"}
    pending = alerts[1]
    assert pending["state"] == "pending" and pending["firedAt"] is None
    assert pending["value"] == "12" and pending["threshold"] == "10"
    assert pending["window"] == "10m" and pending["severity"] == "critical"

    def fps(**params):
        r = api.req("GET", "/v1/alerts", params=params)
        assert r.status_code == 200, r.text
        return [a["fingerprint"] for a in r.json()["alerts"]]
    assert fps(state="resolved") == [fp(3)]
    assert fps(state="firing") == [fp(4), fp(2)]
    assert fps(state="firing,resolved") == [fp(3), fp(4), fp(2)]
    assert fps(state="resolved,pending,firing,resolved") == [fp(3), fp(4), fp(1), fp(2)]
    assert fps(state=["pending", "resolved"]) == [fp(3), fp(1)]
    assert fps(state=["resolved", "firing,pending"]) == [fp(3), fp(4), fp(1), fp(2)]
    invalid(api.req("GET", "/v1/alerts", params={"state": ["firing", "nope"]}), "state")
    invalid(api.req("GET", "/v1/alerts", params={"state": ["firing"] * 17}), "state")
    assert fps(rule="b-rule") == [fp(1), fp(2)]
    assert fps(rule="b-rule", state="firing") == [fp(2)]
    assert fps(rule="no-such-rule") == []
    for rule in ("a-rule' OR '1'='1", "r" * 129, "caf\u00e9"):
        invalid(api.req("GET", "/v1/alerts", params={"rule": rule}), "rule")
    invalid(api.req("GET", "/v1/alerts?rule=%FF"), "rule")
    resolved = api.req("GET", "/v1/alerts", params={"state": "resolved"}).json()["alerts"][0]
    assert resolved["resolvedAt"] == "2026-03-01T10:30:00.000Z"
    for state in ("inactive", "FIRING", "firing,nope", "active"):
        body = invalid(api.req("GET", "/v1/alerts", params={"state": state}), "state")
        assert "pending, firing, resolved" in body["detail"], body


def test_alerts_pages(api):
    api.db.sql("INSERT INTO alert_instances (workspace_id, rule, fingerprint, state, active_at,"
               " fired_at) SELECT %s, 'rule-' || (g %% 3), lpad(to_hex(g), 16, '0'), 'firing',"
               " now(), now() FROM generate_series(1, 120) g", (api.ws,))
    items, sizes = api.pages("/v1/alerts", "alerts", size=50)
    assert sizes == [50, 50, 20]
    keys = [(a["rule"], a["fingerprint"]) for a in items]
    assert keys == sorted(keys) and len(set(keys)) == 120
    items, sizes = api.pages("/v1/alerts", "alerts")
    assert sizes == [50, 50, 20]
    items, sizes = api.pages("/v1/alerts", "alerts", size=1000, rule="rule-1")
    assert sizes == [40]
    items, sizes = api.pages("/v1/alerts", "alerts", size=7, rule="rule-2")
    assert len(items) == 40 and sizes == [7] * 5 + [5]
    for params, field in (({"pageSize": 0}, "pageSize"), ({"pageSize": 1001}, "pageSize"),
                          ({"pageSize": "ten"}, "pageSize"), ({"pageSize": "-5"}, "pageSize"),
                          ({"pageToken": "abc"}, "pageToken"),
                          ({"pageToken": "zz.00"}, "pageToken"),
                          ({"pageToken": "abc.00"}, "pageToken"),
                          ({"pageToken": "00"}, "pageToken"),
                          ({"pageToken": "AB.00"}, "pageToken")):
        invalid(api.req("GET", "/v1/alerts", params=params), field)


# ------------------------------------------------------------- history


def test_history_newest_first_in_pages(api):
    base = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    # 130 changes; every fifth shares its time with the one before it.
    for i in range(130):
        at = base + timedelta(seconds=i - (1 if i % 5 == 4 else 0))
        api.history(f"rule-{i % 2}", i % 7, iso(at), state="firing" if i % 2 else "resolved",
                    from_state="pending" if i % 2 else "firing")
    want = [str(r[0]) for r in api.db.sql("SELECT id FROM alert_history "
                                          "ORDER BY at DESC, id DESC")]
    items, sizes = api.pages("/v1/alerts/history", "history")
    assert sizes == [50, 50, 30]
    assert [h["id"] for h in items] == want
    items, sizes = api.pages("/v1/alerts/history", "history", size=1000)
    assert sizes == [130]
    items, sizes = api.pages("/v1/alerts/history", "history", size=9, rule="rule-1")
    assert len(items) == 65 and all(h["rule"] == "rule-1" for h in items)
    assert [h["id"] for h in items] == [i for i in want if i in {h["id"] for h in items}]
    items, _ = api.pages("/v1/alerts/history", "history", fingerprint=fp(3))
    assert len(items) == len([i for i in range(130) if i % 7 == 3])
    assert all(h["fingerprint"] == fp(3) for h in items)

    # since is inclusive, until exclusive.
    since, until = iso(base + timedelta(seconds=10)), iso(base + timedelta(seconds=20))
    items, _ = api.pages("/v1/alerts/history", "history", since=since, until=until)
    assert all(since[:19] <= h["at"][:19] < until[:19] for h in items)
    assert len(items) == api.db.sql("SELECT count(*) FROM alert_history WHERE at >= %s "
                                    "AND at < %s", (since, until))[0][0] == 10
    items, _ = api.pages("/v1/alerts/history", "history", since="2026-03-01T12:01:00+02:00")
    assert len(items) == 130 - 60  # at 10:01:00Z and later
    items, _ = api.pages("/v1/alerts/history", "history", until="2026-03-01T10:00:00Z")
    assert items == []

    first = api.req("GET", "/v1/alerts/history", params={"pageSize": 1}).json()["history"][0]
    assert set(first) == HISTORY_MEMBERS, set(first) ^ HISTORY_MEMBERS
    assert first["id"] == want[0] and first["rule"] == "rule-1"
    assert first["from"] == "pending" and first["state"] == "firing"
    assert first["at"] == "2026-03-01T10:02:08.000Z"
    assert first["labels"] == {"alertname": "rule-1"} and first["annotations"] == {}
    assert first["value"] == "3" and first["threshold"] == "2"
    assert first["notified"] is True and first["repeat"] is False
    assert first["silencedBy"] is None

    for params, field in (({"since": "yesterday"}, "since"),
                          ({"since": "2026-03-01"}, "since"),
                          ({"until": "2026-13-01T00:00:00Z"}, "until"),
                          ({"until": "2026-03-01T10:00:00+25:00"}, "until"),
                          ({"pageSize": 0}, "pageSize"), ({"pageSize": 1001}, "pageSize"),
                          ({"pageToken": "12"}, "pageToken"), ({"pageToken": "a.b"}, "pageToken"),
                          ({"pageToken": "1.-2"}, "pageToken"),
                          ({"rule": "a rule"}, "rule"), ({"fingerprint": "0123"}, "fingerprint"),
                          ({"fingerprint": "0123456789ABCDEF"}, "fingerprint")):
        invalid(api.req("GET", "/v1/alerts/history", params=params), field)


def test_history_shows_the_silence(api):
    s = api.silence()
    api.history("hot", 1, "2026-03-01T10:00:00Z", notified=False, repeat=True,
                silenced_by=s["id"], value=None, threshold=None)
    got = api.req("GET", "/v1/alerts/history").json()["history"]
    assert len(got) == 1
    assert got[0]["silencedBy"] == s["id"] and got[0]["notified"] is False
    assert got[0]["repeat"] is True and got[0]["value"] is None


# ------------------------------------------------- endpoints: grouping, types


def dead_url():
    return f"http://127.0.0.1:{free_port()}/hook"


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def test_endpoint_grouping_through_the_api(db, daemon):
    d = daemon(db)
    create_workspace(db, "acme")
    token = create_token(db, "acme", scopes="webhooks:write")

    def req(method, path, **kw):
        return d.request(method, path, token=token, **kw)
    r = req("POST", "/v1/webhooks", json={"name": "plain", "endpointUrl": dead_url()})
    assert r.status_code == 200, r.text
    plain = r.json()["webhook"]
    assert plain["groupWait"] == "0s" and plain["groupInterval"] == "0s"
    r = req("POST", "/v1/webhooks", json={"name": "grouped", "endpointUrl": dead_url(),
                                          "eventTypes": ["alert.*"], "groupWait": "30s",
                                          "groupInterval": "5m"})
    assert r.status_code == 200, r.text
    hook = r.json()["webhook"]
    assert hook["groupWait"] == "30s" and hook["groupInterval"] == "5m"
    assert hook["eventTypes"] == ["alert.*"]
    assert db.sql("SELECT group_wait_ms, group_interval_ms FROM webhook_endpoints "
                  "WHERE id = %s", (hook["id"],)) == [(30000, 300000)]
    path = f"/v1/webhooks/{hook['id']}"
    assert req("GET", path).json()["webhook"]["groupInterval"] == "5m"
    listed = {w["name"]: w for w in req("GET", "/v1/webhooks").json()["webhooks"]}
    assert (listed["grouped"]["groupWait"], listed["grouped"]["groupInterval"]) == ("30s", "5m")
    assert listed["plain"]["groupWait"] == "0s"

    r = req("PATCH", path, json={"groupWait": "1h30m"})
    assert r.status_code == 200, r.text
    got = r.json()["webhook"]
    assert got["groupWait"] == "1h30m" and got["groupInterval"] == "5m"
    r = req("PATCH", path, json={"groupInterval": "0", "groupWait": "7d"})
    got = r.json()["webhook"]
    assert got["groupWait"] == "7d" and got["groupInterval"] == "0s", got
    assert db.sql("SELECT group_wait_ms, group_interval_ms FROM webhook_endpoints "
                  "WHERE id = %s", (hook["id"],)) == [(7 * 86400000, 0)]

    for value in ("-5s", "soon", "5", 30, None, "", "8d", "30 s", ["30s"]):
        for member in ("groupWait", "groupInterval"):
            r = req("POST", "/v1/webhooks", json={"name": "bad", "endpointUrl": dead_url(),
                                                  member: value})
            body = invalid(r, member)
            assert len(body["details"]) == 1, body
            invalid(req("PATCH", path, json={member: value}), member)
    assert req("GET", path).json()["webhook"]["groupWait"] == "7d"


def test_alert_event_types(db, daemon):
    d = daemon(db)
    create_workspace(db, "acme")
    token = create_token(db, "acme", scopes="webhooks:write")
    for types in (["alert.firing"], ["alert.resolved", "scan.created"], ["alert.*"]):
        r = d.post("/v1/webhooks", token=token,
                   json={"name": "t" + uuid.uuid4().hex[:6], "endpointUrl": dead_url(),
                         "eventTypes": types})
        assert r.status_code == 200 and r.json()["webhook"]["eventTypes"] == types, r.text
    r = d.post("/v1/webhooks", token=token, json={"name": "x", "endpointUrl": dead_url(),
                                                  "eventTypes": ["alert.silenced"]})
    assert "alert.firing, alert.resolved" in invalid(r, "eventTypes[0]")["detail"]


def declared(ws, name, **extra):
    return dict({"workspace": ws, "name": name, "url": dead_url(), "secret": new_secret(),
                 "event_types": ["alert.*"]}, **extra)


def test_endpoint_grouping_in_the_configuration(db, daemon):
    create_workspace(db, "acme")
    d = daemon(db, {"webhooks": [declared("acme", "oncall", group_wait="45s",
                                          group_interval="10m"),
                                 declared("acme", "chat")]})
    token = create_token(db, "acme", scopes="webhooks:read")

    def settings():
        return {r[0]: (r[1], r[2]) for r in db.sql(
            "SELECT name, group_wait_ms, group_interval_ms FROM webhook_endpoints WHERE managed")}
    wait_until(lambda: len(settings()) == 2, 10, "the declared endpoints")
    assert settings() == {"oncall": (45000, 600000), "chat": (0, 0)}
    listed = {w["name"]: w for w in d.get("/v1/webhooks", token=token).json()["webhooks"]}
    assert (listed["oncall"]["groupWait"], listed["oncall"]["groupInterval"]) == ("45s", "10m")
    assert (listed["chat"]["groupWait"], listed["chat"]["groupInterval"]) == ("0s", "0s")

    d.reload({"webhooks": [declared("acme", "oncall", group_wait="1m"),
                           declared("acme", "chat", group_interval="2h")]})
    wait_until(lambda: settings() == {"oncall": (60000, 0), "chat": (0, 7200000)}, 10,
               "the new grouping settings")


@pytest.mark.parametrize("line, value, want", [
    ("group_wait", "soon", "webhooks: group_wait: expected a duration from 0s to 7d such as 30s "
                           "or 5m, got 'soon'"),
    ("group_interval", "-5m", "webhooks: group_interval: expected a duration from 0s to 7d such "
                              "as 30s or 5m, got '-5m'"),
    ("group_wait", "8d", "webhooks: group_wait: expected a duration from 0s to 7d such as 30s "
                         "or 5m, got '8d'"),
    ("group_wiat", "30s", "webhooks: unknown field 'group_wiat' (did you mean 'group_wait'?)"),
])
def test_grouping_errors_in_the_configuration(tmp_path, line, value, want):
    bad = tmp_path / "bad.yaml"
    bad.write_text("webhooks:\n"
                   "  - workspace: demo\n"
                   "    name: oncall\n"
                   "    url: https://hooks.example.com/in\n"
                   "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
                   f"    {line}: {value}\n")
    r = run([str(LINKPULSED), "-t", "-c", str(bad)])
    assert r.returncode == 1, r.stderr
    column = 5 if line == "group_wiat" else 7 + len(line)
    assert f"{bad}:6:{column}: {want}" in r.stderr, r.stderr
