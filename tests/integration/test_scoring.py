"""Lead scores: the scoring consumer keeps each visitor's score and its six
components, visit_count and first/last seen, and sends visitor.qualified
when a score reaches the workspace's threshold.

Expected values come from Score below, a separate implementation of the
formulas of the README's "Lead scores" section that works from the events
the test inserted (not from linkpulse's feature tables).
"""
import base64
import math
import os
import uuid
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest

from conftest import create_link, create_workspace, wait_until
from receiver import verify

FAST = {"pipeline.poll_interval": "200ms", "delivery.schedule": ["0s", "200ms"],
        "delivery.jitter": 0}
COMPONENTS = ("engagementLevel", "recurringInterest", "recurringScans", "profileFit",
              "brandSupportiveness", "technologicalAptitude")
WEIGHT_KEYS = dict(zip(COMPONENTS, ("engagement_level", "recurring_interest", "recurring_scans",
                                    "profile_fit", "brand_supportiveness",
                                    "technological_aptitude")))
VISITS = ("ACTION_SCAN", "ACTION_RESCAN", "ACTION_CLICK")
DAY_MS = 86400000


def round_half_up(x):
    return math.floor(x + Fraction(1, 2)) if isinstance(x, Fraction) else math.floor(x + 0.5)


def duration_ms(s):
    units = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": DAY_MS}
    for u in ("ms", "s", "m", "h", "d"):
        if s.endswith(u) and s[:-len(u)].isdigit():
            return int(s[:-len(u)]) * units[u]
    raise ValueError(s)


class Model:
    """The lead_scoring settings, and the README's formulas over them."""

    DEFAULTS = {"output": "weighted_sum", "qualify_threshold": 80,
                "weights": {"engagement_level": 30, "recurring_interest": 20,
                            "recurring_scans": 15, "profile_fit": 20,
                            "brand_supportiveness": 10, "technological_aptitude": 5},
                "points": {"interaction": 10, "form_submission": 30, "conversion": 50},
                "recency_half_life": "14d", "tag_points": [],
                "logistic": {"midpoint": 50, "steepness": 0.1}}

    def __init__(self, **changes):
        self.m = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.DEFAULTS.items()}
        for k, v in changes.items():
            if isinstance(v, dict):
                self.m[k].update(v)
            else:
                self.m[k] = v

    def settings(self):
        out = {}
        for k, v in self.m.items():
            if isinstance(v, dict):
                out.update({f"lead_scoring.{k}.{kk}": vv for kk, vv in v.items()})
            else:
                out[f"lead_scoring.{k}"] = v
        return out

    def tag_points(self):
        pts = {}
        for item in self.m["tag_points"]:
            name, _, p = item.rpartition("=")
            pts[name.lower()] = int(p)
        return pts

    def components(self, profile, events, link_tags):
        """profile: {email, company, job_title, phone}; events: dicts with at, link,
        action, device_type, platform, browser; link_tags: {link: [tag names]}."""
        pts = self.m["points"]
        visits = sum(1 for e in events if e["action"] in VISITS)
        count = lambda a: sum(1 for e in events if e["action"] == a)
        engagement = min(100, count("ACTION_WORKFLOW_INTERACTION") * pts["interaction"]
                         + count("ACTION_FORM_SUBMISSION") * pts["form_submission"]
                         + count("ACTION_CONVERSION") * pts["conversion"])

        days = sorted({e["at"].astimezone(timezone.utc).date() for e in events})
        idle = (days[-1] - days[-2]).days - 1 if len(days) > 1 else 0
        decay = 2 ** (-(idle * DAY_MS) / duration_ms(self.m["recency_half_life"]))
        interest = round_half_up(min(100, 40 * math.log2(len(days))) * decay)

        scans = min(100, round_half_up(25 * math.log2(1 + visits)))
        fit = 25 * sum(1 for f in ("email", "company", "job_title", "phone")
                       if (profile.get(f) or "").strip())

        tp = self.tag_points()
        brand = None
        if tp:
            links = {e["link"] for e in events if e["link"] is not None}
            brand = min(100, sum(tp.get(t.lower(), 0) for l in links
                                 for t in link_tags.get(l, ())))

        tech = None
        named = [e for e in events if e.get("platform") or e.get("browser")]
        if named:
            d = max(named, key=lambda e: e["at"])
            plat, brow = (d.get("platform") or ""), (d.get("browser") or "")
            tech = 0
            if plat:
                tech += 30 if plat.lower() in ("windows", "macos", "mac os x", "ios", "ipados",
                                               "android", "linux", "chromeos", "chrome os") else 10
            if brow:
                tech += 50 if brow.lower() in ("chrome", "firefox", "safari", "edge", "opera",
                                               "brave", "vivaldi", "arc",
                                               "samsung internet") else 20
            tech += {"DEVICE_TYPE_DESKTOP": 20, "DEVICE_TYPE_MOBILE": 10,
                     "DEVICE_TYPE_TABLET": 10}.get(d.get("device_type"), 0)
        return dict(zip(COMPONENTS, (engagement, interest, scans, fit, brand, tech)))

    def score(self, comps):
        w = self.m["weights"]
        pairs = [(w[WEIGHT_KEYS[k]], v) for k, v in comps.items()
                 if v is not None and w[WEIGHT_KEYS[k]] > 0]
        den = sum(wi for wi, _ in pairs)
        mean = round_half_up(Fraction(sum(wi * c for wi, c in pairs), den)) if den else 0
        if self.m["output"] != "logistic":
            return mean
        lg = self.m["logistic"]
        return round_half_up(100 / (1 + math.exp(-lg["steepness"] * (mean - lg["midpoint"]))))


class Workspace:
    def __init__(self, db, threshold=None):
        self.db = db
        self.slug = "ws-" + uuid.uuid4().hex[:8]
        self.id = create_workspace(db, self.slug)
        self.link_tags = {}
        self.log = {}  # visitor -> events inserted
        self.profiles = {}
        if threshold is not None:
            db.sql("UPDATE workspaces SET lead_qualify_threshold = %s WHERE id = %s",
                   (threshold, self.id))

    def link(self, tags=()):
        link = create_link(self.db, self.id, tags)
        self.link_tags[link] = list(tags)
        return link

    def visitor(self, **profile):
        cols = ["workspace_id"] + list(profile)
        vid = self.db.sql(f"INSERT INTO visitors ({', '.join(cols)}) "
                          f"VALUES ({', '.join(['%s'] * len(cols))}) RETURNING id",
                          [self.id] + list(profile.values()))[0][0]
        self.profiles[vid] = profile
        self.log[vid] = []
        return vid

    def events(self, *evs):
        """Inserts evs in one statement.  Each: visitor, link, action, at, and
        optionally device_type, platform, browser."""
        cols = ("visitor", "link", "action", "at", "device_type", "platform", "browser")
        rows = [[e.get(c) for c in cols] for e in evs]
        self.db.sql("INSERT INTO events (workspace_id, visitor_id, link_id, action, occurred_at,"
                    " device_type, platform, browser) VALUES "
                    + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows)),
                    [v for r in rows for v in [self.id] + r])
        for e in evs:
            if e.get("visitor") in self.log:
                self.log[e["visitor"]].append(dict(e))

    def expected(self, model, vid):
        comps = model.components(self.profiles[vid], self.log[vid], self.link_tags)
        return model.score(comps), comps

    def scored(self, vid):
        return self.db.sql("SELECT lead_score, lead_score_components, visit_count, first_seen_at,"
                           " last_seen_at, lead_scored_at FROM visitors WHERE id = %s", (vid,))[0]


def consumed(db):
    """Waits until the pipeline has consumed every event in the table."""
    wait_until(lambda: db.sql("SELECT (SELECT count(*) FROM events) = events "
                              "FROM pipeline_cursor WHERE name = 'main'")[0][0],
               10, "every event consumed")


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def endpoint(ws, url, event_types=("visitor.qualified",)):
    secret = new_secret()
    ep = ws.db.sql("INSERT INTO webhook_endpoints (workspace_id, name, endpoint_url, event_types) "
                   "VALUES (%s, %s, %s, %s) RETURNING id",
                   (ws.id, "ep-" + uuid.uuid4().hex[:6], url, list(event_types)))[0][0]
    ws.db.sql("INSERT INTO webhook_secrets (workspace_id, endpoint_id, secret) "
              "VALUES (%s, %s, %s)", (ws.id, ep, secret))
    return ep, secret


def qualified_messages(db, ws):
    return db.sql("SELECT count(*) FROM webhook_messages WHERE workspace_id = %s "
                  "AND event_type = 'visitor.qualified'", (ws.id,))[0][0]


def all_delivered(db):
    wait_until(lambda: db.sql("SELECT count(*) FROM webhook_deliveries "
                              "WHERE state <> 'delivered'")[0][0] == 0, 5, "all delivered")


# Noon UTC, today or yesterday, whichever is past: the few seconds the
# tests add to it never cross midnight (days count in the scores).
NOW = (datetime.now(timezone.utc) - timedelta(hours=12)).replace(
    hour=12, minute=0, second=0, microsecond=0)
DESKTOP = {"device_type": "DEVICE_TYPE_DESKTOP", "platform": "Windows", "browser": "Chrome"}


@pytest.mark.parametrize("batch_size", [1000, 1])
def test_scores_match_the_model(db, daemon, batch_size):
    # Not the defaults: every part of the model is set.
    model = Model(output="logistic", qualify_threshold=90,
                  weights={"engagement_level": 25, "recurring_interest": 15,
                           "recurring_scans": 20, "profile_fit": 20,
                           "brand_supportiveness": 15, "technological_aptitude": 5},
                  points={"interaction": 5, "form_submission": 35, "conversion": 60},
                  recency_half_life="7d", tag_points=["pricing=40", "Demo=30"],
                  logistic={"midpoint": 45, "steepness": 0.15})
    # batch_size 1: every event is a batch of its own, even those one
    # statement inserted together; the scores are the same.
    daemon(db, dict(FAST, **model.settings(), **{"pipeline.batch_size": batch_size,
                                                 "pipeline.batch_max": batch_size}))
    ws = Workspace(db)
    pricing = ws.link(tags=["pricing"])
    plans = ws.link(tags=["pricing", "demo"])
    plain = ws.link()

    ada = ws.visitor(email="ada@example.com", company="Analytical Engines", first_name="Ada")
    bob = ws.visitor(job_title="CTO", phone="+15551234567")
    nobody = ws.visitor()
    # Ada: 3 scans of 2 links tagged pricing, one form submission, on a
    # Windows desktop with Chrome; her events of today in one statement.
    ws.events(dict(visitor=ada, link=pricing, action="ACTION_SCAN",
                   at=NOW - timedelta(days=10), **DESKTOP))
    ws.events(dict(visitor=ada, link=plans, action="ACTION_SCAN",
                   at=NOW - timedelta(days=3), **DESKTOP))
    ws.events(dict(visitor=ada, link=pricing, action="ACTION_SCAN", at=NOW, **DESKTOP),
              dict(visitor=ada, link=plans, action="ACTION_FORM_SUBMISSION",
                   at=NOW + timedelta(seconds=1), **DESKTOP),
              # Bob on a phone, then later with nothing known of his device;
              # an event of no visitor, and one of a visitor that does not
              # exist (it must not stop the pipeline).
              dict(visitor=bob, link=plain, action="ACTION_CLICK", at=NOW - timedelta(days=20),
                   device_type="DEVICE_TYPE_MOBILE", platform="iOS", browser="Safari"),
              dict(visitor=bob, link=plain, action="ACTION_SCAN", at=NOW - timedelta(days=2)),
              dict(visitor=bob, link=plans, action="ACTION_WORKFLOW_INTERACTION",
                   at=NOW - timedelta(days=2)),
              dict(visitor=bob, link=None, action="ACTION_CONVERSION", at=NOW),
              dict(visitor=None, link=pricing, action="ACTION_SCAN", at=NOW),
              dict(visitor=str(uuid.uuid4()), link=pricing, action="ACTION_SCAN", at=NOW))
    ws.events(dict(visitor=nobody, link=plain, action="ACTION_SCAN", at=NOW,
                   device_type="DEVICE_TYPE_UNKNOWN", browser="Netscape"))
    consumed(db)

    for vid, visits in ((ada, 4), (bob, 4), (nobody, 1)):
        score, comps, visit_count, first, last, scored_at = ws.scored(vid)
        want_score, want = ws.expected(model, vid)
        assert comps == want, f"visitor {vid}"
        assert score == want_score
        assert scored_at is not None
        assert visit_count == visits
        assert first == min(e["at"] for e in ws.log[vid])
        assert last == max(e["at"] for e in ws.log[vid])

    # Hand-checked, so that the model above is not only agreeing with itself.
    ada_comps = ws.scored(ada)[1]
    assert ada_comps == {"engagementLevel": 35, "recurringInterest": 52, "recurringScans": 50,
                         "profileFit": 50, "brandSupportiveness": 100,
                         "technologicalAptitude": 100}
    # mean (25*35 + 15*52 + 20*50 + 20*50 + 15*100 + 5*100) / 100 = 56.55 -> 57;
    # 100 / (1 + e^(-0.15 * (57 - 45))) = 85.8
    assert ws.scored(ada)[0] == 86
    assert ws.scored(nobody)[1]["brandSupportiveness"] == 0
    assert ws.scored(nobody)[1]["technologicalAptitude"] == 20
    features = db.sql("SELECT scans, interactions, form_submissions, conversions, distinct_links,"
                      " active_days FROM visitor_features WHERE visitor_id = %s", (ada,))
    assert features == [(3, 0, 1, 0, 2, 3)]


def test_unmeasurable_components_are_null(db, daemon):
    model = Model()  # the defaults: no tag points
    daemon(db, FAST)
    ws = Workspace(db)
    link = ws.link(tags=["pricing"])
    vid = ws.visitor(email="grace@example.com")
    ws.events(dict(visitor=vid, link=link, action="ACTION_SCAN", at=NOW))
    consumed(db)
    score, comps = ws.scored(vid)[:2]
    assert set(comps) == set(COMPONENTS)
    assert comps["brandSupportiveness"] is None and comps["technologicalAptitude"] is None
    assert (score, comps) == ws.expected(model, vid)
    # (30*0 + 20*0 + 15*25 + 20*25) / 85 = 10.3
    assert score == 10


def test_crossing_the_threshold_sends_one_visitor_qualified(db, daemon, receiver):
    model = Model(qualify_threshold=60)
    rx = receiver()
    daemon(db, dict(FAST, **model.settings()))
    ws = Workspace(db)
    link = ws.link()
    ep, secret = endpoint(ws, rx.url("/q"))
    scans_only, _ = endpoint(ws, rx.url("/scans"), ["scan.created"])
    vid = ws.visitor(email="lin@example.com", company="Acme", job_title="Buyer",
                     phone="+33123456789")
    ws.events(dict(visitor=vid, link=link, action="ACTION_SCAN", at=NOW - timedelta(days=1),
                   **DESKTOP))
    consumed(db)
    before = ws.scored(vid)[0]
    assert before == ws.expected(model, vid)[0] and before < 60
    assert qualified_messages(db, ws) == 0

    # Two events in one statement take the visitor over the threshold.
    ws.events(dict(visitor=vid, link=link, action="ACTION_SCAN", at=NOW, **DESKTOP),
              dict(visitor=vid, link=link, action="ACTION_CONVERSION",
                   at=NOW + timedelta(seconds=5), **DESKTOP))
    req = rx.wait_for(1, "/q")[0]
    assert verify(req, secret)
    body = req.json()
    assert body["type"] == "visitor.qualified"
    data = body["data"]
    score, comps = ws.expected(model, vid)
    assert score >= 60
    assert data["leadScore"] == score and data["components"] == comps
    assert data["threshold"] == 60
    assert data["linkId"] == str(link)
    assert data["visitor"]["id"] == str(vid)
    assert data["visitor"]["email"] == "lin@example.com"
    assert data["visitor"]["leadScore"] == score
    assert data["visitor"]["visitCount"] == 3
    event_id = db.sql("SELECT max(id) FROM events WHERE visitor_id = %s", (vid,))[0][0]
    assert data["eventId"] == str(event_id)

    # Still above it: no second message.
    ws.events(dict(visitor=vid, link=link, action="ACTION_FORM_SUBMISSION",
                   at=NOW + timedelta(seconds=10), **DESKTOP))
    ws.events(dict(visitor=vid, link=link, action="ACTION_SCAN",
                   at=NOW + timedelta(seconds=20), **DESKTOP))
    consumed(db)
    assert ws.scored(vid)[0] == ws.expected(model, vid)[0] >= 60
    rx.wait_for(5, "/scans")
    all_delivered(db)
    assert len(rx.requests("/q")) == 1
    assert qualified_messages(db, ws) == 1


def test_workspace_threshold_overrides_the_configuration(db, daemon, receiver):
    model = Model(qualify_threshold=95)
    rx = receiver()
    daemon(db, dict(FAST, **model.settings()))
    own = Workspace(db, threshold=20)
    default = Workspace(db)
    for ws, path in ((own, "/own"), (default, "/default")):
        endpoint(ws, rx.url(path))
        vid = ws.visitor(email="a@example.com", company="Acme")
        ws.events(dict(visitor=vid, link=ws.link(), action="ACTION_FORM_SUBMISSION", at=NOW))
    consumed(db)
    body = rx.wait_for(1, "/own")[0].json()
    assert body["type"] == "visitor.qualified"
    assert body["data"]["threshold"] == 20
    all_delivered(db)
    assert rx.requests("/default") == []
    assert qualified_messages(db, default) == 0
    # Scored all the same, below the configuration's 95.
    vid = next(iter(default.log))
    assert default.scored(vid)[0] == default.expected(model, vid)[0] < 95


def test_disabled_leaves_scores_null(db, daemon):
    daemon(db, dict(FAST, **{"lead_scoring.enabled": False}))
    ws = Workspace(db)
    vid = ws.visitor(email="x@example.com")
    ws.events(dict(visitor=vid, link=ws.link(), action="ACTION_SCAN", at=NOW, **DESKTOP))
    consumed(db)
    score, comps, visits = ws.scored(vid)[:3]
    assert score is None and comps == {} and visits == 0
    assert db.sql("SELECT count(*) FROM visitor_features")[0][0] == 0


def test_reload_changes_later_scores(db, daemon):
    first = Model()
    d = daemon(db, dict(FAST, **first.settings()))
    ws = Workspace(db)
    link = ws.link(tags=["demo"])
    vid = ws.visitor(email="m@example.com", company="Acme", job_title="VP")
    ws.events(dict(visitor=vid, link=link, action="ACTION_SCAN", at=NOW, **DESKTOP))
    consumed(db)
    assert ws.scored(vid)[:2] == ws.expected(first, vid)

    second = Model(weights={"engagement_level": 0, "recurring_interest": 0, "recurring_scans": 0,
                            "profile_fit": 100, "brand_supportiveness": 50,
                            "technological_aptitude": 0},
                   tag_points=["demo=70"])
    d.reload(second.settings())
    ws.events(dict(visitor=vid, link=link, action="ACTION_SCAN", at=NOW + timedelta(seconds=1),
                   **DESKTOP))
    consumed(db)
    score, comps = ws.scored(vid)[:2]
    assert (score, comps) == ws.expected(second, vid)
    # The demo tag was on the link before the reload gave it points.
    assert comps["brandSupportiveness"] == 70
    # (100*75 + 50*70) / 150 = 73.3
    assert score == 73


def test_deleting_a_visitor_deletes_its_features(db, daemon):
    daemon(db, FAST)
    ws = Workspace(db)
    vid = ws.visitor()
    ws.events(dict(visitor=vid, link=ws.link(tags=["t"]), action="ACTION_SCAN", at=NOW))
    consumed(db)
    tables = ("visitor_features", "visitor_links", "visitor_tags", "visitor_days")
    assert all(db.sql(f"SELECT count(*) FROM {t}")[0][0] == 1 for t in tables)
    db.sql("DELETE FROM visitors WHERE id = %s", (vid,))
    assert all(db.sql(f"SELECT count(*) FROM {t}")[0][0] == 0 for t in tables)
