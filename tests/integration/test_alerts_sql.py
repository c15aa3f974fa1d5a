"""Alerts in SQL (0007_alerts.sql): lp_alerts_apply, lp_alerts_flush,
lp_alerts_prune and lp_webhook_sync's grouping settings.

The functions are called directly with the JSON the daemon sends (one
change per alert state change, oldest first); what they write is read back
from alert_instances, alert_history, alert_groups / alert_notifications and
the webhook outbox (webhook_messages, webhook_deliveries).  Grouping is
driven with lp_alerts_flush's explicit clock (p_now).
"""
import json
import re
import uuid
from datetime import timedelta

import pytest

from conftest import create_workspace

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
T_ACTIVE = "2024-05-01T10:00:00Z"
T_FIRED = "2024-05-01T10:05:00Z"
T_RESOLVED = "2024-05-01T10:20:00Z"


class Workspace:
    def __init__(self, db, slug=None):
        self.db = db
        self.slug = slug or "ws-" + uuid.uuid4().hex[:8]
        self.id = create_workspace(db, self.slug)

    def endpoint(self, name=None, fmt="standard", wait_ms=0, interval_ms=0,
                 status="WEBHOOK_STATUS_ACTIVE"):
        name = name or "ep-" + uuid.uuid4().hex[:6]
        ep = self.db.sql("INSERT INTO webhook_endpoints (workspace_id, name, endpoint_url, "
                         "event_types, format, group_wait_ms, group_interval_ms, status) "
                         "VALUES (%s, %s, 'http://127.0.0.1:9/hook', '{alert.*}', %s, %s, %s, %s) "
                         "RETURNING id", (self.id, name, fmt, wait_ms, interval_ms, status))[0][0]
        return ep

    def silence(self, matchers, starts="now() - interval '1 hour'",
                ends="now() + interval '1 hour'"):
        return self.db.sql("INSERT INTO alert_silences (workspace_id, matchers, starts_at, "
                           f"ends_at, created_by) VALUES (%s, %s, {starts}, {ends}, 'tester') "
                           "RETURNING id", (self.id, json.dumps(matchers)))[0][0]


def fp(n):
    return f"{n:016x}"


def change(ws, rule="high-errors", fingerprint=fp(1), state="firing", from_state=None,
           labels=None, annotations=None, notify=True, endpoints=(), at=None, **extra):
    """One change as the daemon sends it."""
    from_state = from_state or {"pending": "inactive", "firing": "pending",
                                "resolved": "firing", "inactive": "pending"}[state]
    labels = labels if labels is not None else {"alertname": rule, "severity": "critical",
                                                "link": "spring"}
    c = {
        "workspace": ws.slug if isinstance(ws, Workspace) else ws,
        "rule": rule, "fingerprint": fingerprint,
        "labels": labels,
        "annotations": annotations if annotations is not None else {"summary": "too many errors"},
        "severity": "critical", "from": from_state, "state": state,
        "value": "12", "threshold": "10", "window": "10m",
        "activeAt": T_ACTIVE,
        "firedAt": T_FIRED if state in ("firing", "resolved") else None,
        "resolvedAt": T_RESOLVED if state == "resolved" else None,
        "at": at or {"pending": T_ACTIVE, "firing": T_FIRED, "resolved": T_RESOLVED,
                     "inactive": T_FIRED}[state],
        "notify": notify, "repeat": False, "notifications": 1 if notify else 0,
        "notifiedAt": T_FIRED if notify else None,
        "endpoints": [str(e) for e in endpoints],
    }
    c.update(extra)
    return c


def apply(db, changes):
    """lp_alerts_apply; returns (deliveries queued, the transaction's now())."""
    row = db.sql("SELECT lp_alerts_apply(%s::jsonb), now()", (json.dumps(changes),))[0]
    return row[0], row[1]


def flush(db, at):
    return db.sql("SELECT lp_alerts_flush(%s)", (at,))[0][0]


def messages(db, ep):
    """[(event_type, parsed payload, delivery state, raw payload)] of one endpoint, oldest
    first."""
    rows = db.sql("SELECT m.event_type, m.payload, d.state FROM webhook_deliveries d "
                  "JOIN webhook_messages m "
                  "ON m.workspace_id = d.workspace_id AND m.id = d.message_id "
                  "WHERE d.endpoint_id = %s ORDER BY d.id", (ep,))
    return [(t, json.loads(p), s, p) for t, p, s in rows]


def history(db, ws):
    return db.sql("SELECT rule, fingerprint, from_state, state, value, threshold, notified, "
                  "repeat, silenced_by, at FROM alert_history WHERE workspace_id = %s "
                  "ORDER BY id", (ws.id,))


def instances(db, ws):
    return db.sql("SELECT rule, fingerprint, state, value, threshold, \"window\", severity, "
                  "active_at, fired_at, resolved_at, notified_at, notifications, labels "
                  "FROM alert_instances WHERE workspace_id = %s ORDER BY rule, fingerprint",
                  (ws.id,))


def ts(text):
    """An RFC 3339 text as the payloads format it."""
    return text.replace("Z", ".000000Z")


# ------------------------------------------------------------ apply


def test_empty_batch_returns_zero(db):
    assert apply(db, [])[0] == 0
    assert db.sql("SELECT count(*) FROM alert_history")[0][0] == 0


def test_firing_then_resolved_standard(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    assert apply(db, [change(ws, endpoints=["ops"])])[0] == 1

    [inst] = instances(db, ws)
    assert inst[:7] == ("high-errors", fp(1), "firing", "12", "10", "10m", "critical")
    assert inst[8] is not None and inst[9] is None and inst[11] == 1
    assert inst[12] == {"alertname": "high-errors", "severity": "critical", "link": "spring"}
    [h] = history(db, ws)
    assert h[:9] == ("high-errors", fp(1), "pending", "firing", "12", "10", True, False, None)

    [(etype, body, state, raw)] = messages(db, ep)
    assert etype == "alert.firing" and state == "pending"
    assert list(body) == ["type", "timestamp", "data"]
    assert body["type"] == "alert.firing" and RFC3339.match(body["timestamp"])
    data = body["data"]
    assert set(data) == {"rule", "workspace", "status", "severity", "alerts"}
    assert data["rule"] == "high-errors" and data["workspace"] == ws.slug
    assert data["status"] == "firing" and data["severity"] == "critical"
    assert data["alerts"] == [{
        "status": "firing", "fingerprint": fp(1),
        "labels": {"alertname": "high-errors", "severity": "critical", "link": "spring"},
        "annotations": {"summary": "too many errors"},
        "value": "12", "threshold": "10", "window": "10m",
        "startsAt": ts(T_FIRED), "endsAt": None, "repeat": False}]

    assert apply(db, [change(ws, state="resolved", endpoints=["ops"])])[0] == 1
    [inst] = instances(db, ws)
    assert inst[2] == "resolved" and inst[9] is not None
    hist = history(db, ws)
    assert [(h[2], h[3], h[6]) for h in hist] == [("pending", "firing", True),
                                                  ("firing", "resolved", True)]
    etype, body, state, _ = messages(db, ep)[1]
    assert etype == "alert.resolved" and body["type"] == "alert.resolved"
    assert body["data"]["status"] == "resolved"
    [alert] = body["data"]["alerts"]
    assert alert["status"] == "resolved"
    assert alert["startsAt"] == ts(T_FIRED) and alert["endsAt"] == ts(T_RESOLVED)


def test_alertmanager_format(db):
    ws = Workspace(db)
    ep = ws.endpoint("am", fmt="alertmanager")
    a = change(ws, fingerprint=fp(1), endpoints=["am"],
               labels={"alertname": "high-errors", "severity": "critical", "link": "a"},
               annotations={"summary": "errors", "runbook": "r1"})
    b = change(ws, fingerprint=fp(2), endpoints=["am"],
               labels={"alertname": "high-errors", "severity": "critical", "link": "b"},
               annotations={"summary": "errors", "runbook": "r2"})
    assert apply(db, [a, b])[0] == 1  # one rule, one endpoint, one call: one message
    [(etype, body, state, raw)] = messages(db, ep)
    assert etype == "alert.firing"
    assert list(body) == ["version", "groupKey", "truncatedAlerts", "status", "receiver",
                          "groupLabels", "commonLabels", "commonAnnotations", "externalURL",
                          "alerts"]
    assert body["version"] == "4"
    assert body["groupKey"] == '{}:{alertname="high-errors"}'
    assert body["truncatedAlerts"] == 0 and body["status"] == "firing"
    assert body["receiver"] == "am" and body["externalURL"] == ""
    assert body["groupLabels"] == {"alertname": "high-errors"}
    assert body["commonLabels"] == {"alertname": "high-errors", "severity": "critical"}
    assert body["commonAnnotations"] == {"summary": "errors"}
    assert len(body["alerts"]) == 2
    for alert, f, link in zip(body["alerts"], (fp(1), fp(2)), ("a", "b")):
        assert list(alert) == ["status", "labels", "annotations", "startsAt", "endsAt",
                               "generatorURL", "fingerprint"]
        assert alert["status"] == "firing" and alert["fingerprint"] == f
        assert alert["labels"]["link"] == link
        assert alert["startsAt"] == ts(T_FIRED)
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
        assert alert["generatorURL"] == ""
    # Labels keyed by name, as Alertmanager's Go maps marshal.
    assert list(body["alerts"][0]["labels"]) == ["alertname", "link", "severity"]

    apply(db, [change(ws, fingerprint=fp(1), state="resolved", endpoints=["am"])])
    etype, body, _, _ = messages(db, ep)[1]
    assert etype == "alert.resolved" and body["status"] == "resolved"
    [alert] = body["alerts"]
    assert alert["status"] == "resolved" and alert["endsAt"] == ts(T_RESOLVED)


def test_pending_then_inactive_deletes_the_instance(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    assert apply(db, [change(ws, state="pending", notify=False, endpoints=["ops"])])[0] == 0
    [inst] = instances(db, ws)
    assert inst[2] == "pending" and inst[8] is None
    assert apply(db, [change(ws, state="inactive", notify=False, endpoints=["ops"])])[0] == 0
    assert instances(db, ws) == []
    assert [(h[2], h[3], h[6]) for h in history(db, ws)] == [("inactive", "pending", False),
                                                             ("pending", "inactive", False)]
    assert messages(db, ep) == []


def test_several_changes_of_one_alert_in_a_batch(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    n, _ = apply(db, [change(ws, state="pending", notify=False),
                      change(ws, state="firing", endpoints=["ops"]),
                      change(ws, state="resolved", endpoints=["ops"])])
    assert n == 1
    [inst] = instances(db, ws)
    assert inst[2] == "resolved"
    assert [h[3] for h in history(db, ws)] == ["pending", "firing", "resolved"]
    # One message: the latest state of the alert.
    [(etype, body, _, _)] = messages(db, ep)
    assert etype == "alert.resolved"
    assert [a["status"] for a in body["data"]["alerts"]] == ["resolved"]


def test_change_without_severity_keeps_the_stored_one(db):
    ws = Workspace(db)
    apply(db, [change(ws, notify=False)])
    c = change(ws, state="resolved", notify=False)
    del c["severity"]
    apply(db, [c])
    assert instances(db, ws)[0][2:7:4] == ("resolved", "critical")
    c = change(ws, fingerprint=fp(2), notify=False)
    del c["severity"]
    apply(db, [c])
    assert instances(db, ws)[1][6] == "warning"


def test_notify_false_sends_nothing(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    assert apply(db, [change(ws, notify=False, endpoints=["ops"])])[0] == 0
    assert messages(db, ep) == []
    [h] = history(db, ws)
    assert h[6] is False and h[8] is None
    assert instances(db, ws)[0][2] == "firing"


def test_endpoints_by_name_or_id_unknown_ignored(db):
    ws = Workspace(db)
    other = Workspace(db)
    by_name = ws.endpoint("ops")
    by_id = ws.endpoint("pager")
    unnamed = ws.endpoint("quiet")
    foreign = other.endpoint("ops2")
    n, _ = apply(db, [change(ws, endpoints=["ops", str(by_id).upper(), "nope",
                                            str(uuid.uuid4()), str(foreign), "ops2"])])
    assert n == 2
    assert len(messages(db, by_name)) == 1 and len(messages(db, by_id)) == 1
    assert messages(db, unnamed) == [] and messages(db, foreign) == []
    # Named twice (name and id): still one delivery.
    apply(db, [change(ws, fingerprint=fp(2), endpoints=["ops", str(by_name)])])
    assert len(messages(db, by_name)) == 2
    # Nobody known: nothing queued, and the history says so.
    assert apply(db, [change(ws, fingerprint=fp(3), endpoints=["nope"])])[0] == 0
    assert history(db, ws)[-1][6] is False


def test_unknown_workspace_ignored(db):
    ws = Workspace(db)
    ws.endpoint("ops")
    assert apply(db, [change("no-such-ws", endpoints=["ops"])])[0] == 0
    assert db.sql("SELECT count(*) FROM alert_instances")[0][0] == 0
    assert db.sql("SELECT count(*) FROM alert_history")[0][0] == 0


def test_paused_endpoint_gets_held_delivery(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops", status="WEBHOOK_STATUS_PAUSED")
    assert apply(db, [change(ws, endpoints=["ops"])])[0] == 1
    [(_, _, state, _)] = messages(db, ep)
    assert state == "held"


def test_two_rules_two_messages(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    n, _ = apply(db, [change(ws, rule="r1", fingerprint=fp(1), endpoints=["ops"]),
                      change(ws, rule="r2", fingerprint=fp(2), endpoints=["ops"]),
                      change(ws, rule="r1", fingerprint=fp(3), endpoints=["ops"])])
    assert n == 2
    got = {b["data"]["rule"]: sorted(a["fingerprint"] for a in b["data"]["alerts"])
           for _, b, _, _ in messages(db, ep)}
    assert got == {"r1": [fp(1), fp(3)], "r2": [fp(2)]}


def test_large_group_is_split_under_the_payload_limit(db):
    ws = Workspace(db)
    ep = ws.endpoint("am", fmt="alertmanager")
    changes = [change(ws, fingerprint=fp(i), endpoints=["am"],
                      labels={"alertname": "high-errors", "link": f"l{i}"},
                      annotations={"summary": "x" * 1000})
               for i in range(100)]
    n, _ = apply(db, changes)
    msgs = messages(db, ep)
    assert n == len(msgs) > 1
    assert all(len(raw.encode()) <= 65536 for _, _, _, raw in msgs)
    assert sorted(a["fingerprint"] for _, b, _, _ in msgs for a in b["alerts"]) == \
        [fp(i) for i in range(100)]


def test_alert_too_large_for_a_message_is_dropped(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    n, _ = apply(db, [change(ws, endpoints=["ops"], annotations={"summary": "x" * 70000})])
    assert n == 0 and messages(db, ep) == []
    assert instances(db, ws)[0][2] == "firing"  # the batch itself went through


# ------------------------------------------------------------ silences


@pytest.mark.parametrize("matcher, silenced", [
    ({"name": "link", "value": "spring", "isRegex": False, "isEqual": True}, True),
    ({"name": "link", "value": "autumn", "isRegex": False, "isEqual": True}, False),
    ({"name": "link", "value": "autumn", "isRegex": False, "isEqual": False}, True),
    ({"name": "link", "value": "spring", "isRegex": False, "isEqual": False}, False),
    ({"name": "link", "value": "spr.*", "isRegex": True, "isEqual": True}, True),
    ({"name": "link", "value": "spr", "isRegex": True, "isEqual": True}, False),  # anchored
    ({"name": "link", "value": "a|spring", "isRegex": True, "isEqual": True}, True),
    ({"name": "link", "value": "a|sp", "isRegex": True, "isEqual": True}, False),
    ({"name": "link", "value": "aut.*", "isRegex": True, "isEqual": False}, True),
    ({"name": "link", "value": "spr.*", "isRegex": True, "isEqual": False}, False),
    ({"name": "team", "value": "", "isRegex": False, "isEqual": True}, True),  # missing: ""
    ({"name": "link", "value": "(", "isRegex": True, "isEqual": True}, False),  # invalid
    ({"name": "link", "value": "(", "isRegex": True, "isEqual": False}, False),
])
def test_silence_matchers(db, matcher, silenced):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    sid = ws.silence([matcher])
    n, _ = apply(db, [change(ws, endpoints=["ops"])])
    [h] = history(db, ws)
    if silenced:
        assert n == 0 and messages(db, ep) == []
        assert h[8] == sid and h[6] is False
    else:
        assert n == 1 and len(messages(db, ep)) == 1
        assert h[8] is None and h[6] is True
    # The state is kept either way.
    assert instances(db, ws)[0][2] == "firing"


def test_silence_needs_every_matcher(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    ws.silence([{"name": "link", "value": "spring", "isRegex": False, "isEqual": True},
                {"name": "severity", "value": "warning", "isRegex": False, "isEqual": True}])
    assert apply(db, [change(ws, endpoints=["ops"])])[0] == 1
    sid = ws.silence([{"name": "link", "value": "spring", "isRegex": False, "isEqual": True},
                      {"name": "severity", "value": "crit.*", "isRegex": True, "isEqual": True}])
    assert apply(db, [change(ws, fingerprint=fp(2), endpoints=["ops"])])[0] == 0
    assert history(db, ws)[-1][8] == sid
    assert len(messages(db, ep)) == 1


def test_pending_and_expired_silences_do_not_apply(db):
    ws = Workspace(db)
    other = Workspace(db)
    ep = ws.endpoint("ops")
    m = [{"name": "link", "value": "spring", "isRegex": False, "isEqual": True}]
    ws.silence(m, starts="now() + interval '1 minute'", ends="now() + interval '1 hour'")
    ws.silence(m, starts="now() - interval '1 hour'", ends="now() - interval '1 minute'")
    ws.silence(m, starts="now() - interval '1 hour'", ends="now()")  # expired just now
    other.silence(m)  # another workspace's
    assert apply(db, [change(ws, endpoints=["ops"])])[0] == 1
    assert history(db, ws)[0][8] is None


def test_expiring_a_pending_silence(db):
    # As the API expires one that has not started: both ends become now.
    ws = Workspace(db)
    ws.endpoint("ops")
    sid = ws.silence([{"name": "link", "value": "spring", "isRegex": False, "isEqual": True}],
                     starts="now() + interval '1 hour'", ends="now() + interval '2 hours'")
    db.sql("UPDATE alert_silences SET ends_at = now(), starts_at = least(starts_at, now()) "
           "WHERE id = %s", (sid,))
    assert apply(db, [change(ws, endpoints=["ops"])])[0] == 1


def test_invalid_regex_does_not_fail_the_batch(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops")
    ws.silence([{"name": "link", "value": "[", "isRegex": True, "isEqual": True}])
    good = ws.silence([{"name": "link", "value": "spr.*", "isRegex": True, "isEqual": True}])
    n, _ = apply(db, [change(ws, endpoints=["ops"]),
                      change(ws, fingerprint=fp(2), endpoints=["ops"],
                             labels={"alertname": "high-errors", "link": "autumn"})])
    assert n == 1
    hist = history(db, ws)
    assert [h[8] for h in hist] == [good, None]
    [(_, body, _, _)] = messages(db, ep)
    assert [a["fingerprint"] for a in body["data"]["alerts"]] == [fp(2)]


# ------------------------------------------------------------ grouping


def groups(db, ep):
    return db.sql("SELECT rule, due_at, last_sent_at FROM alert_groups WHERE endpoint_id = %s "
                  "ORDER BY rule", (ep,))


def queued(db, ep):
    return db.sql("SELECT count(*) FROM alert_notifications WHERE endpoint_id = %s", (ep,))[0][0]


def test_group_wait_sends_one_message_at_due_time(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops", wait_ms=30000, interval_ms=300000)
    n, t0 = apply(db, [change(ws, fingerprint=fp(1), endpoints=["ops"]),
                       change(ws, fingerprint=fp(2), endpoints=["ops"])])
    assert n == 0
    [(rule, due, last)] = groups(db, ep)
    assert due == t0 + timedelta(seconds=30) and last is None
    # Queued later, before the group is due: rides along; a resolved alert
    # replaces its queued firing state.
    assert apply(db, [change(ws, fingerprint=fp(3), endpoints=["ops"])])[0] == 0
    assert apply(db, [change(ws, fingerprint=fp(1), state="resolved", endpoints=["ops"])])[0] == 0
    assert groups(db, ep)[0][1] == due
    assert queued(db, ep) == 3
    assert messages(db, ep) == []
    assert [h[6] for h in history(db, ws)] == [True] * 4

    assert flush(db, due - timedelta(milliseconds=1)) == 0
    assert messages(db, ep) == []
    assert flush(db, due) == 1
    [(etype, body, state, _)] = messages(db, ep)
    assert etype == "alert.firing" and state == "pending"
    got = {a["fingerprint"]: a["status"] for a in body["data"]["alerts"]}
    assert got == {fp(1): "resolved", fp(2): "firing", fp(3): "firing"}
    assert queued(db, ep) == 0
    assert groups(db, ep) == [("high-errors", None, due)]
    assert flush(db, due + timedelta(hours=1)) == 0


def test_group_interval(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops", wait_ms=10000, interval_ms=60000)
    _, t0 = apply(db, [change(ws, fingerprint=fp(1), endpoints=["ops"])])
    first = t0 + timedelta(seconds=10)
    assert flush(db, first) == 1
    # Later notifications: at most once per group_interval after the last.
    assert apply(db, [change(ws, fingerprint=fp(2), endpoints=["ops"])])[0] == 0
    second = first + timedelta(seconds=60)
    assert groups(db, ep)[0][1] == second
    assert flush(db, second - timedelta(milliseconds=1)) == 0
    assert flush(db, second) == 1
    body = messages(db, ep)[1][1]
    assert [a["fingerprint"] for a in body["data"]["alerts"]] == [fp(2)]

    # Both resolve: sent a group_interval after the last message; the group
    # then ends (no firing alert left).
    assert apply(db, [change(ws, fingerprint=fp(1), state="resolved", endpoints=["ops"]),
                      change(ws, fingerprint=fp(2), state="resolved", endpoints=["ops"])])[0] == 0
    third = second + timedelta(seconds=60)
    assert groups(db, ep)[0][1] == third
    assert flush(db, third) == 1
    etype, body, _, _ = messages(db, ep)[2]
    assert etype == "alert.resolved" and len(body["data"]["alerts"]) == 2
    assert groups(db, ep) == []
    # A new firing alert starts a new group: group_wait again.
    _, t1 = apply(db, [change(ws, fingerprint=fp(3), endpoints=["ops"])])
    assert groups(db, ep)[0][1] == t1 + timedelta(seconds=10)


def test_group_resolved_without_notification_ends_the_group(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops", wait_ms=10000, interval_ms=60000)
    _, t0 = apply(db, [change(ws, endpoints=["ops"])])
    assert flush(db, t0 + timedelta(seconds=10)) == 1
    assert len(groups(db, ep)) == 1
    apply(db, [change(ws, state="resolved", notify=False, endpoints=["ops"])])
    assert groups(db, ep) == []


def test_group_wait_zero_sends_first_at_once(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops", wait_ms=0, interval_ms=60000)
    n, t0 = apply(db, [change(ws, fingerprint=fp(1), endpoints=["ops"])])
    assert n == 1 and len(messages(db, ep)) == 1
    assert apply(db, [change(ws, fingerprint=fp(2), endpoints=["ops"])])[0] == 0
    [(_, due, last)] = groups(db, ep)
    assert last == t0 and due == t0 + timedelta(seconds=60)
    assert flush(db, due) == 1
    assert len(messages(db, ep)) == 2


def test_grouping_two_rules_two_messages(db):
    ws = Workspace(db)
    ep = ws.endpoint("am", fmt="alertmanager", wait_ms=5000, interval_ms=60000)
    plain = ws.endpoint("plain")
    _, t0 = apply(db, [change(ws, rule="r1", fingerprint=fp(1), endpoints=["am", "plain"]),
                       change(ws, rule="r2", fingerprint=fp(2), endpoints=["am", "plain"]),
                       change(ws, rule="r1", fingerprint=fp(3), endpoints=["am", "plain"])])
    # The ungrouped endpoint got its two messages at once.
    assert len(messages(db, plain)) == 2
    assert [g[0] for g in groups(db, ep)] == ["r1", "r2"]
    assert flush(db, t0 + timedelta(seconds=5)) == 2
    got = {b["groupLabels"]["alertname"]: sorted(a["fingerprint"] for a in b["alerts"])
           for _, b, _, _ in messages(db, ep)}
    assert got == {"r1": [fp(1), fp(3)], "r2": [fp(2)]}


def test_silenced_alert_is_not_queued(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops", wait_ms=5000)
    ws.silence([{"name": "link", "value": "spring", "isRegex": False, "isEqual": True}])
    apply(db, [change(ws, endpoints=["ops"])])
    assert groups(db, ep) == [] and queued(db, ep) == 0


def test_deleting_an_endpoint_drops_its_queue(db):
    ws = Workspace(db)
    ep = ws.endpoint("ops", wait_ms=5000)
    _, t0 = apply(db, [change(ws, endpoints=["ops"])])
    db.sql("DELETE FROM webhook_endpoints WHERE id = %s", (ep,))
    assert db.sql("SELECT count(*) FROM alert_groups")[0][0] == 0
    assert flush(db, t0 + timedelta(seconds=5)) == 0


# ------------------------------------------------------------ prune


def test_prune(db):
    ws = Workspace(db)
    old = "2020-01-01T00:00:00Z"
    apply(db, [change(ws, fingerprint=fp(1), state="resolved", notify=False, at=old,
                      resolvedAt=old),
               change(ws, fingerprint=fp(2), state="resolved", notify=False, at=old,
                      resolvedAt=old),
               change(ws, fingerprint=fp(3), state="firing", notify=False, at=old)])
    recent = db.sql("SELECT to_char(now() at time zone 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")[0][0]
    apply(db, [change(ws, fingerprint=fp(4), state="resolved", notify=False, at=recent,
                      resolvedAt=recent)])
    day = 86400 * 1000
    # Limited: one history row and one resolved alert.
    assert db.sql("SELECT lp_alerts_prune(%s, 1)", (day,))[0][0] == 2
    assert db.sql("SELECT lp_alerts_prune(%s, 100)", (day,))[0][0] == 3
    assert db.sql("SELECT lp_alerts_prune(%s, 100)", (day,))[0][0] == 0
    assert [h[1] for h in history(db, ws)] == [fp(4)]
    # Firing alerts stay whatever their age; recent resolved ones too.
    assert sorted((i[1], i[2]) for i in instances(db, ws)) == [(fp(3), "firing"),
                                                               (fp(4), "resolved")]


# ------------------------------------------------------------ configuration


def test_webhook_sync_group_settings(db):
    ws = Workspace(db)
    secret = "whsec_" + "A" * 40
    base = {"workspace": ws.slug, "name": "pager", "url": "https://example.com/hook",
            "secret": secret, "eventTypes": ["alert.*"], "format": "alertmanager"}

    def sync(d):
        return db.sql("SELECT name, outcome FROM lp_webhook_sync(%s::jsonb, 0)",
                      (json.dumps([d]),))

    def settings():
        return db.sql("SELECT group_wait_ms, group_interval_ms FROM webhook_endpoints "
                      "WHERE workspace_id = %s AND name = 'pager'", (ws.id,))[0]

    assert sync(dict(base, groupWaitMs=30000, groupIntervalMs=300000)) == [("pager", "created")]
    assert settings() == (30000, 300000)
    assert sync(dict(base, groupWaitMs=30000, groupIntervalMs=300000)) == [("pager", "unchanged")]
    assert sync(dict(base, groupWaitMs=30000, groupIntervalMs=60000)) == [("pager", "updated")]
    assert settings() == (30000, 60000)
    assert sync(base) == [("pager", "updated")]
    assert settings() == (0, 0)
