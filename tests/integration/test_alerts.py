"""Alert rules end to end: events inserted into PostgreSQL, rules evaluated by
the real daemon, alert.firing / alert.resolved received by a webhook
receiver, state read back through the API.

Windows are seconds long so that alerts fire and resolve while the test
waits; the engine evaluates about once a second (pipeline.poll_interval).
"""
import json
import os
import signal
import time
import uuid

import pytest

from conftest import assert_problem, create_link, create_token, create_workspace, wait_until
from receiver import verify

FAST = {"pipeline.poll_interval": "200ms", "delivery.schedule": ["0s", "200ms"],
        "delivery.jitter": 0}


class Workspace:
    def __init__(self, db):
        self.db = db
        self.slug = "ws-" + uuid.uuid4().hex[:8]
        self.id = create_workspace(db, self.slug)

    def link(self, tags=()):
        return str(create_link(self.db, self.id, tags))

    def events(self, n=1, **fields):
        """Inserts n events now (one statement), with these column values."""
        cols = ["workspace_id", "occurred_at"] + list(fields)
        row = "(%s, clock_timestamp()" + ", %s" * len(fields) + ")"
        self.db.sql(f"INSERT INTO events ({', '.join(cols)}) VALUES "
                    + ", ".join([row] * n),
                    [v for _ in range(n) for v in [self.id] + list(fields.values())])

    def endpoint(self, name, url, fmt="standard", group_wait=None):
        """An endpoint declared in the configuration (rules name those)."""
        ep = {"workspace": self.slug, "name": name, "url": url, "secret": SECRET,
              "event_types": ["alert.*"], "format": fmt}
        if group_wait:
            ep["group_wait"] = group_wait
        return ep


SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo3ODkwMTI="


def write_rules(tmp_path, text, name="rules.yaml"):
    p = tmp_path / "rules" / name
    p.parent.mkdir(exist_ok=True)
    p.write_text(text)
    return str(tmp_path / "rules" / "*.yaml")


def bodies(rx, path="/hook"):
    return [json.loads(r.body) for r in rx.requests(path)]


def alerts_of(rx, path="/hook"):
    """(type, status, labels, annotations, value) of every alert received."""
    out = []
    for b in bodies(rx, path):
        for a in b["data"]["alerts"]:
            out.append((b["type"], a["status"], a["labels"], a["annotations"], a["value"]))
    return out


def api(d, token, path, method="GET", **kw):
    return d.request(method, path, token=token, **kw)


@pytest.fixture
def setup(db, daemon, receiver, tmp_path):
    """-> start(rules_text, settings, endpoints) -> (ws, daemon, receiver, token).
    An endpoint "ops" posts to the receiver's /hook; endpoints adds more:
    [(name, path, format, group_wait)]."""
    ws = Workspace(db)
    rx = receiver()

    def start(text, settings=None, endpoints=()):
        text = text.replace("WS", ws.slug)
        paths = write_rules(tmp_path, text)
        eps = [ws.endpoint("ops", rx.url("/hook"))]
        eps += [ws.endpoint(n, rx.url(p), f, g) for n, p, f, g in endpoints]
        d = daemon(db, dict(FAST, **{"rules.paths": [paths], "webhooks": eps},
                            **(settings or {})))
        wait_until(lambda: db.sql("SELECT count(*) FROM webhook_endpoints WHERE managed"
                                  " AND workspace_id = %s", (ws.id,))[0][0] == len(eps),
                   10, "endpoints synced")
        token = create_token(db, ws.slug, scopes="admin")
        return ws, d, rx, token
    yield start


THRESHOLD = """
rules:
  - name: busy-link
    workspace: WS
    kind: threshold
    group_by: [link]
    op: ">"
    value: 5
    window: 3s
    labels: {team: growth}
    annotations:
      summary: "{{ labels.link }} had {{ value }} scans in {{ window }} (over {{ threshold }})"
    notify: [ops]
"""


def test_threshold_fires_and_resolves(setup):
    ws, d, rx, token = setup(THRESHOLD)
    link, quiet = ws.link(), ws.link()
    ws.events(6, link_id=link)
    ws.events(2, link_id=quiet)
    msgs = rx.wait_for(1, "/hook", timeout=10)
    body = json.loads(msgs[0].body)
    assert body["type"] == "alert.firing"
    assert verify(msgs[0], SECRET)
    data = body["data"]
    assert data["rule"] == "busy-link" and data["status"] == "firing"
    (a,) = data["alerts"]
    assert a["labels"] == {"alertname": "busy-link", "severity": "warning",
                           "team": "growth", "link": link}
    assert a["annotations"]["summary"] == f"{link} had 6 scans in 3s (over 5)"
    assert a["value"] == "6" and a["threshold"] == "5" and a["window"] == "3s"
    assert len(a["fingerprint"]) == 16 and a["endsAt"] is None

    # The API shows it firing meanwhile.
    r = api(d, token, "/v1/alerts")
    assert r.status_code == 200, r.text
    (inst,) = r.json()["alerts"]
    assert inst["state"] == "firing" and inst["labels"]["link"] == link
    assert inst["fingerprint"] == a["fingerprint"] and inst["value"] == "6"

    # Three seconds later the window is empty: resolved, once.
    msgs = rx.wait_for(2, "/hook", timeout=10)
    body = json.loads(msgs[1].body)
    assert body["type"] == "alert.resolved"
    (r_,) = body["data"]["alerts"]
    assert r_["status"] == "resolved" and r_["fingerprint"] == a["fingerprint"]
    assert r_["endsAt"] is not None
    time.sleep(1.5)
    assert len(rx.requests("/hook")) == 2
    hist = api(d, token, "/v1/alerts/history").json()
    states = [h["state"] for h in hist["history"]]
    assert states[:2] == ["resolved", "firing"], hist
    rules = api(d, token, "/v1/alerts/rules").json()["rules"]
    (rule,) = rules
    assert rule["name"] == "busy-link" and rule["kind"] == "threshold"
    assert rule["lastEvaluation"] is not None and rule["health"] == "ok"
    # The groups held in memory (the two links, until swept once idle)
    # and what they take with the rule's table of groups.
    assert rule["events"] == 8 and rule["groups"] in (0, 1, 2), rule
    assert 200 * rule["groups"] < rule["stateBytes"] < 4096 * (rule["groups"] + 1), rule


BY_TAG = """
rules:
  - name: busy-tag
    workspace: WS
    kind: threshold
    match: {action: ACTION_SCAN}
    group_by: [link.tag]
    op: ">"
    value: 4
    window: 1h
    annotations:
      summary: "links tagged {{ labels.link.tag }}: {{ value }} scans"
    notify: [ops]
"""


def test_group_by_tag_counts_each_tag_of_the_link(setup):
    ws, d, rx, token = setup(BY_TAG)
    both = ws.link(tags=["pricing", "demo"])
    pricing = ws.link(tags=["pricing"])
    untagged = ws.link()
    ws.events(3, link_id=both, action="ACTION_SCAN")
    ws.events(2, link_id=pricing, action="ACTION_SCAN")
    ws.events(9, link_id=untagged, action="ACTION_SCAN")
    ws.events(9, link_id=both, action="ACTION_CLICK")
    rx.wait_for(1, "/hook", timeout=10)
    time.sleep(1.5)  # another evaluation: nothing else fires
    got = [(t, st, lab["link.tag"], ann["summary"], v)
           for t, st, lab, ann, v in alerts_of(rx)]
    assert got == [("alert.firing", "firing", "pricing", "links tagged pricing: 5 scans", "5")]
    # Two more scans of the link tagged both: demo reaches 5 too.
    ws.events(2, link_id=both, action="ACTION_SCAN")
    rx.wait_for(2, "/hook", timeout=10)
    got = sorted((lab["link.tag"], v) for _, _, lab, _, v in alerts_of(rx))
    assert got == [("demo", "5"), ("pricing", "5")]
    insts = api(d, token, "/v1/alerts").json()["alerts"]
    assert sorted((i["labels"]["link.tag"], i["state"]) for i in insts) == \
        [("demo", "firing"), ("pricing", "firing")]


HYSTERESIS = """
rules:
  - name: slow-redirects
    workspace: WS
    kind: threshold
    measure: avg
    field: redirect_latency_ms
    op: ">"
    value: 100
    recover: 80
    window: 1h
    notify: [ops]
"""


def test_hysteresis_one_firing_one_resolved(setup):
    ws, d, rx, token = setup(HYSTERESIS)
    link = ws.link()
    # The average over the hour goes 120, 95, 105, 90, 101, 70, 85, 99:
    # above 100 fires, it stays firing until 80 or less, then stays
    # resolved below 100.
    ws.events(1, link_id=link, redirect_latency_ms=120)
    rx.wait_for(1, "/hook", timeout=10)
    total, n = 120, 1
    for target in (95, 105, 90, 101, 70, 85, 99):
        # one event that moves the mean to target, after zeros if it must
        # come down further than one event can take it
        while target * (n + 1) - total < 0:
            ws.events(1, link_id=link, redirect_latency_ms=0)
            n += 1
        x = target * (n + 1) - total
        ws.events(1, link_id=link, redirect_latency_ms=x)
        total, n = total + x, n + 1
        time.sleep(1.3)
    got = [(t, s) for t, s, *_ in alerts_of(rx)]
    assert got == [("alert.firing", "firing"), ("alert.resolved", "resolved")], got


@pytest.mark.parametrize("how", ["SIGTERM", "kill -9"])
def test_restart_keeps_firing_alert_and_resolves_it(setup, daemon, db, how):
    ws, d, rx, token = setup(THRESHOLD.replace("window: 3s", "window: 8s"))
    link = ws.link()
    ws.events(7, link_id=link)
    rx.wait_for(1, "/hook", timeout=10)
    if how == "SIGTERM":
        d.signal(signal.SIGTERM)
        d.wait_exit(10)
    else:
        d.kill()
    state = db.sql("SELECT state FROM alert_instances WHERE rule = 'busy-link'")
    assert state == [("firing",)]
    d.start()
    # Still firing after the restart, with no second notification, and
    # resolved once the window is empty.
    msgs = rx.wait_for(2, "/hook", timeout=15)
    types = [json.loads(m.body)["type"] for m in msgs]
    assert types == ["alert.firing", "alert.resolved"], types
    time.sleep(1.5)
    assert len(rx.requests("/hook")) == 2


def test_silence_keeps_state_but_does_not_notify(setup):
    ws, d, rx, token = setup(THRESHOLD)
    r = api(d, token, "/v1/alerts/silences", "POST", json={
        "matchers": [{"name": "alertname", "value": "busy-link"}],
        "endsAt": "2099-01-01T00:00:00Z", "createdBy": "ops@example.com",
        "comment": "maintenance"})
    assert r.status_code == 201, r.text
    sid = r.json()["silence"]["id"] if "silence" in r.json() else r.json()["id"]
    link = ws.link()
    ws.events(6, link_id=link)
    wait_until(lambda: [a["state"] for a in api(d, token, "/v1/alerts").json()["alerts"]]
               == ["firing"], 10, "firing")
    time.sleep(1)
    assert rx.requests("/hook") == []
    hist = api(d, token, "/v1/alerts/history").json()["history"]
    firing = [h for h in hist if h["state"] == "firing"]
    assert firing and firing[0].get("silencedBy") == sid, hist


def test_reload_broken_file_keeps_old_rules(setup, tmp_path):
    ws, d, rx, token = setup(THRESHOLD)
    (tmp_path / "rules" / "bad.yaml").write_text(
        "rules:\n  - name: x\n    workspace: " + ws.slug + "\n    kind: threshold\n"
        "    op: '>'\n    value: 1\n    window: soon\n")
    r = api(d, token, "/v1/alerts/reload", "POST")
    assert r.status_code == 422, r.text
    assert "bad.yaml:7" in r.text and "window" in r.text
    assert d.metric("linkpulse_rules_last_reload_successful") == 0
    last = api(d, token, "/v1/alerts/rules").json()["lastReload"]
    assert last["successful"] is False and any("bad.yaml:7" in e for e in last["errors"])
    # The old rule still runs.
    link = ws.link()
    ws.events(6, link_id=link)
    rx.wait_for(1, "/hook", timeout=10)
    # Fixed: the reload goes through; an unchanged rule keeps its alert.
    (tmp_path / "rules" / "bad.yaml").write_text("rules: []\n")
    r = api(d, token, "/v1/alerts/reload", "POST")
    assert r.status_code == 200, r.text
    assert d.metric("linkpulse_rules_last_reload_successful") == 1
    assert [a["state"] for a in api(d, token, "/v1/alerts").json()["alerts"]] == ["firing"]
    # A token without the admin scope may not reload.
    weak = create_token(ws.db, ws.slug, scopes="alerts:read")
    assert_problem(api(d, weak, "/v1/alerts/reload", "POST"), 403)


def test_removed_rule_resolves_its_alerts(setup, tmp_path):
    ws, d, rx, token = setup(THRESHOLD.replace("window: 3s", "window: 1h"))
    link = ws.link()
    ws.events(6, link_id=link)
    rx.wait_for(1, "/hook", timeout=10)
    (tmp_path / "rules" / "rules.yaml").write_text("rules: []\n")
    r = api(d, token, "/v1/alerts/reload", "POST")
    assert r.status_code == 200, r.text
    msgs = rx.wait_for(2, "/hook", timeout=10)
    assert json.loads(msgs[1].body)["type"] == "alert.resolved"
    assert api(d, token, "/v1/alerts").json()["alerts"] == []


def test_alertmanager_format(setup):
    ws, d, rx, token = setup(THRESHOLD.replace("notify: [ops]", "notify: [am]"),
                             endpoints=[("am", "/am", "alertmanager", None)])
    link = ws.link()
    ws.events(6, link_id=link)
    (m,) = rx.wait_for(1, "/am", timeout=10)
    body = json.loads(m.body)
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["receiver"] == "am" and body["groupLabels"] == {"alertname": "busy-link"}
    assert body["commonLabels"]["team"] == "growth"
    (a,) = body["alerts"]
    assert a["status"] == "firing" and a["labels"]["link"] == link
    assert a["endsAt"] == "0001-01-01T00:00:00Z" and len(a["fingerprint"]) == 16
    for k in ("groupKey", "truncatedAlerts", "externalURL", "commonAnnotations"):
        assert k in body


def test_grouping_batches_alerts_of_a_rule(setup):
    ws, d, rx, token = setup(THRESHOLD.replace("notify: [ops]", "notify: [grouped]"),
                             endpoints=[("grouped", "/g", "standard", "2s")])
    a, b = ws.link(), ws.link()
    ws.events(6, link_id=a)
    time.sleep(0.5)
    ws.events(6, link_id=b)
    (m,) = rx.wait_for(1, "/g", timeout=10)
    got = sorted(x["labels"]["link"] for x in json.loads(m.body)["data"]["alerts"])
    assert got == sorted([a, b])


# ---- every kind, end to end ----

KINDS = {
    "spike": ("""
rules:
  - name: k
    workspace: WS
    kind: spike
    group_by: [link]
    window: 2s
    ratio: 3
    min_current: 6
    notify: [ops]
""", lambda ws, link: (ws.events(1, link_id=link), time.sleep(2.2),
                       ws.events(6, link_id=link))),
    "cardinality": ("""
rules:
  - name: k
    workspace: WS
    kind: cardinality
    group_by: [link]
    field: city
    window: 1h
    above: 2
    notify: [ops]
""", lambda ws, link: [ws.events(1, link_id=link, city=c) for c in ("Paris", "Lyon", "Nice")]),
    "ratio": ("""
rules:
  - name: k
    workspace: WS
    kind: ratio
    group_by: [link]
    numerator: {status: error}
    window: 1h
    above: 50
    min_denominator: 4
    notify: [ops]
""", lambda ws, link: (ws.events(1, link_id=link), ws.events(3, link_id=link, status="error"))),
    "new_value": ("""
rules:
  - name: k
    workspace: WS
    kind: new_value
    group_by: [link]
    field: country
    lookback: 1d
    annotations: {summary: "new country {{ value }}"}
    notify: [ops]
""", lambda ws, link: ws.events(1, link_id=link, country="FR")),
    "trigger": ("""
rules:
  - name: k
    workspace: WS
    kind: trigger
    match: {link.tag: pricing}
    group_by: [link]
    dedup: 1h
    notify: [ops]
""", lambda ws, link: (ws.events(1, link_id=ws.link()), ws.events(3, link_id=link))),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_end_to_end(setup, kind):
    text, produce = KINDS[kind]
    ws, d, rx, token = setup(text)
    link = ws.link(tags=["pricing"])
    produce(ws, link)
    msgs = rx.wait_for(1, "/hook", timeout=10)
    body = json.loads(msgs[0].body)
    assert body["type"] == "alert.firing", body
    (a,) = body["data"]["alerts"]
    assert a["labels"]["link"] == link and a["labels"]["alertname"] == "k"
    if kind == "new_value":
        assert a["labels"]["country"] == "FR"
        assert a["annotations"]["summary"] == "new country FR"
    time.sleep(1.5)
    if kind in ("trigger", "new_value"):
        # One notification: the dedup period / a value seen.
        assert len(rx.requests("/hook")) == 1
        if kind == "new_value":
            ws.events(1, link_id=link, country="FR")
            ws.events(1, link_id=link, country="DE")
            msgs = rx.wait_for(2, "/hook", timeout=10)
            a = json.loads(msgs[1].body)["data"]["alerts"][0]
            assert a["labels"]["country"] == "DE"
            time.sleep(1)
            assert len(rx.requests("/hook")) == 2
    else:
        r = api(d, token, "/v1/alerts")
        assert [x["state"] for x in r.json()["alerts"]] == ["firing"], r.text


def test_flatline_fires_for_a_quiet_link(db, daemon, receiver, tmp_path):
    ws = Workspace(db)
    rx = receiver()
    busy, quiet = ws.link(), ws.link()
    ws.events(1, link_id=busy)
    paths = write_rules(tmp_path, f"""
rules:
  - name: quiet
    workspace: {ws.slug}
    kind: flatline
    keys: active_links
    group_by: [link]
    window: 2s
    below: 1
    notify: [ops]
""")
    # The links exist before the start: watched at once, their windows
    # warmed from the events table.
    daemon(db, dict(FAST, **{"rules.paths": [paths],
                             "webhooks": [ws.endpoint("ops", rx.url("/hook"))]}))
    for _ in range(8):
        ws.events(1, link_id=busy)
        time.sleep(0.5)
    msgs = rx.wait_for(1, "/hook", timeout=10)
    (a,) = json.loads(msgs[0].body)["data"]["alerts"]
    assert a["labels"]["link"] == quiet
    firing = {x["labels"]["link"] for x in alerts_of_raw(rx)}
    assert firing == {quiet}
    # Scans come back: resolved.
    ws.events(1, link_id=quiet)
    msgs = rx.wait_for(2, "/hook", timeout=10)
    assert json.loads(msgs[1].body)["type"] == "alert.resolved"


def test_flatline_waits_for_the_pipeline_to_catch_up(db, daemon, receiver, tmp_path):
    """A backlog read in several batches: the busy link's event comes in the
    last one, so evaluating at the first batch would find it silent."""
    ws = Workspace(db)
    rx = receiver()
    busy, quiet, other = ws.link(), ws.link(), ws.link()
    ws.events(60, link_id=other)
    ws.events(1, link_id=busy)
    paths = write_rules(tmp_path, f"""
rules:
  - name: quiet
    workspace: {ws.slug}
    kind: flatline
    keys: active_links
    group_by: [link]
    window: 30s
    below: 1
    notify: [ops]
""")
    d = daemon(db, dict(FAST, **{"rules.paths": [paths], "pipeline.batch_size": 10,
                                 "pipeline.batch_max": 10,
                                 "webhooks": [ws.endpoint("ops", rx.url("/hook"))]}))
    rx.wait_for(1, "/hook", timeout=10)
    time.sleep(1.5)
    assert {x["labels"]["link"] for x in alerts_of_raw(rx)} == {quiet}
    assert "rules are evaluated once it has caught up" in d.log_text()


def alerts_of_raw(rx):
    return [a for b in bodies(rx) for a in b["data"]["alerts"] if a["status"] == "firing"]


def test_lead_score_trigger_notifies_sales(db, daemon, receiver, tmp_path):
    ws = Workspace(db)
    rx = receiver()
    paths = write_rules(tmp_path, f"""
rules:
  - name: hot-lead
    workspace: {ws.slug}
    kind: trigger
    match:
      link.tag: pricing
      visitor.lead_score: {{">=": 40}}
    group_by: [visitor]
    dedup: 1d
    annotations:
      summary: "{{{{ labels.visitor }}}} is a hot lead"
      who: "{{{{ event.visitor.email }}}} of {{{{ event.visitor.company }}}}, {{{{ event.link.tag }}}}"
    notify: [sales]
""")
    sales = dict(ws.endpoint("sales", rx.url("/sales")),
                 event_types=["alert.*", "visitor.qualified"])
    daemon(db, dict(FAST, **{"rules.paths": [paths], "webhooks": [sales],
                             "lead_scoring.qualify_threshold": 40}))
    pricing = ws.link(tags=["pricing"])
    vid = str(db.sql("INSERT INTO visitors (workspace_id, email, company, job_title, phone,"
                     " first_name) VALUES (%s, 'a@example.com', 'Acme', 'CTO', '+1555', 'Ada')"
                     " RETURNING id", (ws.id,))[0][0])
    cold = str(db.sql("INSERT INTO visitors (workspace_id) VALUES (%s) RETURNING id",
                      (ws.id,))[0][0])
    ws.events(1, link_id=pricing, visitor_id=cold)
    for action in ("ACTION_SCAN", "ACTION_FORM_SUBMISSION", "ACTION_CONVERSION",
                   "ACTION_SCAN", "ACTION_CONVERSION"):
        ws.events(1, link_id=pricing, visitor_id=vid, action=action,
                  device_type="DEVICE_TYPE_DESKTOP")
        time.sleep(0.3)
    score = lambda: db.sql("SELECT lead_score FROM visitors WHERE id = %s", (vid,))[0][0]
    wait_until(lambda: (score() or 0) >= 40, 10, "a score of 40")
    ws.events(1, link_id=pricing, visitor_id=vid)
    msgs = rx.wait_for(2, "/sales", timeout=10)
    by_type = {}
    for m in msgs:
        by_type.setdefault(json.loads(m.body)["type"], []).append(json.loads(m.body))
    assert sorted(by_type) == ["alert.firing", "visitor.qualified"], by_type
    (a,) = by_type["alert.firing"][0]["data"]["alerts"]
    assert a["labels"]["visitor"] == vid
    assert a["annotations"]["summary"] == f"{vid} is a hot lead"
    assert a["annotations"]["who"] == "a@example.com of Acme, pricing"
    time.sleep(1.5)
    assert len(rx.requests("/sales")) == 2
