"""Compiled filters are valid PostgreSQL and match what they say.

tests/unit/filter_sql_dump (built next to the binaries under test) compiles
a filter read on stdin; each filter here then runs against a few events,
links, tags and visitors, and the number of events it matches is checked.
The unit tests check the SQL text; these check its meaning, NULLs
included: an absent value never matches a positive condition and always
matches a negative one.
"""
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import LINKPULSECTL, create_workspace

DUMP = Path(LINKPULSECTL).resolve().parent.parent / "tests/unit/filter_sql_dump"

JOINS = ("SELECT count(*) FROM events e "
         "LEFT JOIN links l ON l.workspace_id = e.workspace_id AND l.id = e.link_id "
         "LEFT JOIN visitors v ON v.workspace_id = e.workspace_id AND v.id = e.visitor_id "
         "WHERE ")


def compile_filter(text):
    """The SQL of a filter and its parameters, from $1."""
    r = subprocess.run([str(DUMP)], input=text, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"filter_sql_dump failed:\n{r.stderr}"
    lines = r.stdout.split("\n")
    assert lines[-1] == ""
    sql, params = lines[0], lines[1:-1]
    return sql, params


def count(db, text):
    sql, params = compile_filter(text)
    # psycopg2 takes %s in order; the filter numbers its parameters in order.
    numbers = [int(n) for n in re.findall(r"\$(\d+)", sql)]
    assert numbers == list(range(1, len(params) + 1)), sql
    assert "%" not in sql
    return db.sql(JOINS + re.sub(r"\$\d+", "%s", sql), params)[0][0]


@pytest.fixture
def events(db):
    """Four events: two from FR, one from DE, one without a country."""
    ws = create_workspace(db, "filters")

    def one(query, params):
        return db.sql(query, params)[0][0]

    tags = {name: one("INSERT INTO tags (workspace_id, name) VALUES (%s, %s) RETURNING id",
                      (ws, name)) for name in ("pricing", "promo")}
    l1 = one("INSERT INTO links (workspace_id, shortlink, name) "
             "VALUES (%s, 'spring', 'Spring sale') RETURNING id", (ws,))
    l2 = one("INSERT INTO links (workspace_id, shortlink) VALUES (%s, 'other') RETURNING id",
             (ws,))
    for link, tag in ((l1, "pricing"), (l2, "promo")):
        db.sql("INSERT INTO link_tags (workspace_id, link_id, tag_id) VALUES (%s, %s, %s)",
               (ws, link, tags[tag]))
    v1 = one("INSERT INTO visitors (workspace_id, email, lead_score, lead_score_components) "
             "VALUES (%s, 'ada@example.com', 90, %s) RETURNING id",
             (ws, json.dumps({"engagementLevel": 70, "profileFit": 25})))
    v2 = one("INSERT INTO visitors (workspace_id, lead_score) VALUES (%s, 50) RETURNING id",
             (ws,))

    def event(**cols):
        cols = {"workspace_id": ws, **cols}
        if "properties" in cols:
            cols["properties"] = json.dumps(cols["properties"])
        db.sql(f"INSERT INTO events (occurred_at, {', '.join(cols)}) "
               f"VALUES (now(), {', '.join(['%s'] * len(cols))})", list(cols.values()))

    event(country="FR", link_id=l1, visitor_id=v1, device_type="DEVICE_TYPE_MOBILE",
          status="ok", properties={"plan": "pro"}, utm_campaign="spring-sale", asn=3215)
    event(country="FR", link_id=l2, visitor_id=v2, device_type="DEVICE_TYPE_DESKTOP",
          status="error", properties={"plan": "free"}, is_bot=True)
    event(country="DE", city="Berlin", status="blocked")
    event(link_id=l2, visitor_id=v2, status="ok", referrer="https://news.example/a?b=%_")
    return {"l1": str(l1), "v1": str(v1)}


CASES = [
    ("{}", 4),
    ("country: FR", 2),
    ("not: {country: FR}", 2),
    ("country: {'!=': FR}", 2),
    ("country: [FR, DE]", 3),
    ("country: {not: [FR, DE]}", 1),
    ("country: {exists: false}", 1),
    ("city: {'=': Berlin}", 1),
    ("link.tag: pricing", 1),
    ("link.tag: [pricing, promo]", 3),
    ("link.tag: {not: pricing}", 3),
    ("not: {link.tag: promo}", 2),
    ("link.tag: {exists: false}", 1),
    ("link.tag: {prefix: pro}", 2),
    ("link.tag: Pricing", 0),
    ("link.shortlink: spring", 1),
    ("link.name: {exists: false}", 3),
    ("visitor.lead_score: {'>=': 80}", 1),
    ("visitor.lead_score: {'>': 10, '<': 60}", 2),
    ("not: {visitor.lead_score: {'>=': 80}}", 3),
    ("visitor.engagement_level: {'>': 50}", 1),
    ("visitor.profile_fit: {not: 25}", 3),
    ("visitor.email: ada@example.com", 1),
    ("visitor: {exists: true}", 3),
    ("properties.plan: pro", 1),
    ("properties.plan: {'!=': pro}", 3),
    ("properties.plan: {exists: false}", 2),
    ("is_bot: true", 1),
    ("is_bot: {not: yes}", 3),
    ("status: {not: ok}", 2),
    ("status: [error, blocked]", 2),
    ("device_type: [DEVICE_TYPE_MOBILE, DEVICE_TYPE_TABLET]", 1),
    ("device_type: {not: DEVICE_TYPE_MOBILE}", 3),
    ("asn: {'>': 3000, '<=': 4000}", 1),
    ("not: {asn: {'>': 3000}}", 3),
    ("utm_campaign: {prefix: spring}", 1),
    ("utm_campaign: {prefix: '%'}", 0),
    ("referrer: {contains: '%_'}", 1),
    ("referrer: {contains: 'a_b'}", 0),
    ("not: {referrer: {contains: news}}", 3),
    ("any: [{country: DE}, {link.tag: pricing}]", 2),
    ("not: {any: [{country: FR}, {city: Berlin}]}", 1),
    ("all: [{country: FR}, {not: {is_bot: true}}]", 1),
    ("""
any:
  - all: [{country: FR}, {not: {is_bot: true}}]
  - {link.tag: promo, visitor.lead_score: {'<': 60}, status: ok}
not: {properties.plan: free}
""", 2),
]


@pytest.mark.parametrize("text,want", CASES, ids=[c[0].strip() for c in CASES])
def test_filter_sql_matches(db, events, text, want):
    assert count(db, text + "\n") == want


def test_filter_sql_uuids_and_quoting(db, events):
    assert count(db, f"link: {events['l1']}\n") == 1
    assert count(db, f"visitor: {{not: [{events['v1']}]}}\n") == 3
    assert count(db, f"qr_code: [{events['l1']}]\n") == 0
    # Array literal quoting: quotes, backslashes, commas, braces, NULL.
    assert count(db, "city: ['a\"b', 'c\\d', 'x,y', '{z}', 'NULL', Berlin]\n") == 1
    assert count(db, "properties.plan: \"pro'; SELECT 1; --\"\n") == 0


def test_filter_sql_reports_errors():
    r = subprocess.run([str(DUMP)], input="contry: FR\nstatus: failed\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "stdin:1:1: match: unknown field 'contry' (did you mean 'country'?)",
        "stdin:2:9: match.status: expected one of ok, error, blocked, got 'failed'",
    ]
