"""Compiled filters are valid PostgreSQL and match what they say.

tests/unit/filter_sql_dump (built next to the binaries under test) compiles
a filter read on stdin; each filter here then runs against a few events,
links, tags and visitors, and the number of events it matches is checked.
The unit tests check the SQL text; these check its meaning, NULLs
included: an absent value never matches a positive condition and always
matches a negative one.

filter_match, the same filters evaluated in C, is checked against it:
the events' fields are read as the rules engine reads them (each field's
SQL expression as text, the link's tags, the properties' ->> texts),
filter_sql_dump --match evaluates every filter over them, and each filter
must accept exactly the events its SQL accepts.
"""
import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import LINKPULSECTL, create_workspace

DUMP = Path(LINKPULSECTL).resolve().parent.parent / "tests/unit/filter_sql_dump"

JOINS = ("SELECT count(*) FROM events e "
         "LEFT JOIN links l ON l.workspace_id = e.workspace_id AND l.id = e.link_id "
         "LEFT JOIN visitors v ON v.workspace_id = e.workspace_id AND v.id = e.visitor_id "
         "WHERE ")


def dump(*args, stdin=""):
    """filter_sql_dump's output; it must succeed."""
    r = subprocess.run([str(DUMP), *args], input=stdin, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"filter_sql_dump {' '.join(args[:1])} failed:\n{r.stderr}"
    return r.stdout


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


def one(db, query, params):
    return db.sql(query, params)[0][0]


def insert_event(db, ws, **cols):
    cols = {"workspace_id": ws, **cols}
    if "properties" in cols:
        cols["properties"] = json.dumps(cols["properties"])
    db.sql(f"INSERT INTO events (occurred_at, {', '.join(cols)}) "
           f"VALUES (now(), {', '.join(['%s'] * len(cols))})", list(cols.values()))


@pytest.fixture
def events(db):
    """Four events: two from FR, one from DE, one without a country."""
    ws = create_workspace(db, "filters")

    tags = {name: one(db, "INSERT INTO tags (workspace_id, name) VALUES (%s, %s) RETURNING id",
                      (ws, name)) for name in ("pricing", "promo")}
    l1 = one(db, "INSERT INTO links (workspace_id, shortlink, name) "
             "VALUES (%s, 'spring', 'Spring sale') RETURNING id", (ws,))
    l2 = one(db, "INSERT INTO links (workspace_id, shortlink) VALUES (%s, 'other') RETURNING id",
             (ws,))
    for link, tag in ((l1, "pricing"), (l2, "promo")):
        db.sql("INSERT INTO link_tags (workspace_id, link_id, tag_id) VALUES (%s, %s, %s)",
               (ws, link, tags[tag]))
    v1 = one(db, "INSERT INTO visitors (workspace_id, email, lead_score, lead_score_components) "
             "VALUES (%s, 'ada@example.com', 90, %s) RETURNING id",
             (ws, json.dumps({"engagementLevel": 70, "profileFit": 25})))
    v2 = one(db, "INSERT INTO visitors (workspace_id, lead_score) VALUES (%s, 50) RETURNING id",
             (ws,))

    def event(**cols):
        insert_event(db, ws, **cols)

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


# ------------------------------------------------- filter_match against SQL


@pytest.fixture
def more_events(db, events):
    """A second workspace whose events vary every field, NULLs included."""
    ws = create_workspace(db, "filters-more")
    tags = {name: one(db, "INSERT INTO tags (workspace_id, name) VALUES (%s, %s) RETURNING id",
                      (ws, name)) for name in ("pricing", "Pricing", "promo-spring", "a%b")}

    def link(shortlink, name, *tag_names):
        lid = one(db, "INSERT INTO links (workspace_id, shortlink, name) VALUES (%s, %s, %s) "
                  "RETURNING id", (ws, shortlink, name))
        for t in tag_names:
            db.sql("INSERT INTO link_tags (workspace_id, link_id, tag_id) VALUES (%s, %s, %s)",
                   (ws, lid, tags[t]))
        return str(lid)

    def visitor(email=None, company=None, score=None, visits=0, components=None):
        return str(one(db, "INSERT INTO visitors (workspace_id, email, company, lead_score, "
                       "visit_count, lead_score_components) VALUES (%s, %s, %s, %s, %s, %s) "
                       "RETURNING id",
                       (ws, email, company, score, visits, json.dumps(components or {}))))

    l3 = link("spring-2", "Spring", "pricing", "promo-spring")
    l4 = link("summer", None, "Pricing")
    l5 = link("bare", "")
    l6 = link("odd", "Odd", "a%b")
    v3 = visitor("bob@example.com", "Acme", 9, 10, {"engagementLevel": 10, "recurringScans": 100})
    v4 = visitor("eve@example.org", "acme", 100, 9, {"engagementLevel": 9, "profileFit": 0})
    v5 = visitor(None, None, None, 0, {})
    q1 = str(uuid.uuid4())
    gone = str(uuid.uuid4())  # a link and a visitor that no longer exist

    def event(**cols):
        insert_event(db, ws, **cols)

    event(link_id=l3, visitor_id=v3, qr_code_id=q1, country="FR", city="Zürich", asn=9,
          redirect_latency_ms=99, is_bot=False, status="ok", action="ACTION_CLICK",
          device_type="DEVICE_TYPE_TABLET", visit_type="VISIT_TYPE_RETURNING",
          utm_campaign="spring", referrer="https://a.example/x_y",
          properties={"plan": "PRO", "n": 10})
    event(link_id=l4, visitor_id=v4, country="fr", city="Berlin ", asn=10,
          redirect_latency_ms=100, is_bot=True, status="error", error_code="E_TIMEOUT",
          action="ACTION_CONVERSION", utm_campaign="", referrer="http://b.example/%",
          properties={"plan": None, "n": 9})
    event(link_id=l5, visitor_id=v5, country="DE", city="Zurich", asn=100,
          redirect_latency_ms=0, status="blocked", error_code="E_DENIED",
          utm_campaign="Spring", properties={"plan": ""})
    event(link_id=l6, visitor_id=gone, asn=3215, redirect_latency_ms=1000, is_bot=True,
          status="error", utm_campaign="%spring", device_type="DEVICE_TYPE_MOBILE",
          visit_type="VISIT_TYPE_FIRST", properties={"plan": 3, "x": {"y": 1}})
    event(link_id=gone, visitor_id=v3, qr_code_id=q1, country="IT", asn=0,
          utm_campaign="spring-sale", action="ACTION_SCAN", properties={"plan": "pro"})
    event(country="", city="", referrer="", properties={"plan": "free", "n": "1"})
    event(action="ACTION_UNSPECIFIED", status="ok")
    return {"l3": l3, "l4": l4, "v3": v3, "v4": v4, "q1": q1, "gone": gone}


# Every operator on every type, NULLs (fields, links, visitors, tags,
# properties), case, empty strings, LIKE's wildcards, numbers as text.
MATCH_CASES = [
    "asn: {'>': 9}",
    "asn: {'<': 100}",
    "asn: {'>=': 10, '<=': 100}",
    "asn: [9, 100, 3215]",
    "asn: {not: [9, 100]}",
    "asn: {'!=': 10}",
    "asn: 0",
    "asn: {exists: false}",
    "not: {asn: {'<=': 10}}",
    "redirect_latency_ms: {'<=': 99}",
    "not: {redirect_latency_ms: {'<': 100}}",
    "visitor.visit_count: {'>': 9}",
    "visitor.visit_count: 0",
    "visitor.lead_score: {'<': 10}",
    "visitor.lead_score: {exists: false}",
    "visitor.recurring_scans: 100",
    "visitor.engagement_level: {'>=': 10}",
    "not: {visitor.engagement_level: {'>=': 10}}",
    "visitor.profile_fit: {'<': 1}",
    "visitor.brand_supportiveness: {exists: false}",
    "country: fr",
    "country: {not: FR}",
    "country: {prefix: F}",
    "country: {contains: R}",
    "country: ''",
    "country: {exists: true}",
    "city: Zürich",
    "city: {contains: ü}",
    "city: Berlin",
    "city: 'Berlin '",
    "city: {prefix: 'Berlin '}",
    "city: {not: [Berlin, Zurich]}",
    "utm_campaign: ''",
    "utm_campaign: {prefix: ''}",
    "utm_campaign: {contains: ''}",
    "utm_campaign: {prefix: '%'}",
    "utm_campaign: {contains: '%spr'}",
    "utm_campaign: {contains: 'spr_ng'}",
    "utm_campaign: {prefix: spring}",
    "utm_campaign: {exists: true}",
    "not: {utm_campaign: {prefix: spring}}",
    "utm_campaign: {not: [spring, '']}",
    "referrer: {contains: '_'}",
    "referrer: {contains: '%'}",
    "referrer: {prefix: 'https://'}",
    "referrer: ''",
    "is_bot: false",
    "is_bot: {not: false}",
    "is_bot: [true]",
    "is_bot: {not: [true, false]}",
    "status: {not: [ok]}",
    "status: blocked",
    "action: [ACTION_CLICK, ACTION_CONVERSION]",
    "action: {not: ACTION_SCAN}",
    "device_type: {exists: false}",
    "device_type: {not: DEVICE_TYPE_TABLET}",
    "visit_type: VISIT_TYPE_RETURNING",
    "visit_type: {'!=': VISIT_TYPE_UNSPECIFIED}",
    "error_code: {exists: true}",
    "error_code: {'!=': E_TIMEOUT}",
    "error_code: [E_DENIED, E_OTHER]",
    "link.tag: {contains: '-'}",
    "link.tag: {contains: '%'}",
    "link.tag: {prefix: 'a%'}",
    "link.tag: {not: [pricing, Pricing]}",
    "link.tag: {'!=': Pricing}",
    "link.tag: {exists: true}",
    "link.tag: {prefix: ''}",
    "not: {link.tag: {prefix: pro}}",
    "link.tag: {prefix: pri, contains: spring}",
    "all: [{link.tag: pricing}, {link.tag: promo-spring}]",
    "any: [{link.tag: Pricing}, {link.tag: {exists: false}}]",
    "link.name: {exists: true}",
    "link.name: ''",
    "link.name: {not: Spring}",
    "link.shortlink: {prefix: s}",
    "not: {link.shortlink: spring}",
    "visitor.email: {contains: '@example.'}",
    "visitor.email: {exists: false}",
    "visitor.company: {not: Acme}",
    "visitor.company: [Acme, acme]",
    "visitor: {exists: false}",
    "link: {exists: true}",
    "qr_code: {exists: true}",
    "properties.plan: PRO",
    "properties.plan: pro",
    "properties.plan: {'!=': pro}",
    "properties.plan: {exists: true}",
    "properties.plan: {exists: false}",
    "properties.plan: ''",
    "properties.plan: '3'",
    "properties.plan: [pro, free, '3']",
    "properties.plan: {prefix: p}",
    "not: {properties.plan: [pro]}",
    "properties.n: {prefix: '1'}",
    "properties.n: '9'",
    "properties.x: {contains: '\"y\"'}",
    "properties.missing: {exists: false}",
    "not: {}",
    "any: [{country: fr}, {city: {contains: rich}}, {is_bot: true}]",
    "not: {all: [{status: ok}, {is_bot: false}]}",
    "not: {any: [{asn: {'>': 50}}, {link.tag: pricing}, {properties.plan: {exists: false}}]}",
    """
all:
  - any: [{utm_campaign: {prefix: spring}}, {not: {utm_campaign: {exists: true}}}]
  - not: {any: [{country: IT}, {visitor.lead_score: {'>=': 50}}]}
is_bot: {not: true}
""",
    """
not:
  not:
    any:
      - {link.tag: {not: pricing}, visitor.engagement_level: {'<': 10}}
      - all: [{status: {not: [ok, blocked]}}, {not: {error_code: E_TIMEOUT}}]
""",
]


def field_table():
    """[(name, SQL expression or None)] from filter_field_name_at/_sql_at."""
    return [(name, sql or None) for name, sql in
            (line.split("\t") for line in dump("--fields").splitlines())]


def read_events(db, fields):
    """Every event as filter_match sees it: [(id, {values, tags, properties})]."""
    values = ", ".join(f"({sql})::text" if sql else "NULL::text" for _, sql in fields)
    rows = db.sql(
        f"SELECT e.id, ARRAY[{values}], "
        "ARRAY(SELECT ft.name FROM link_tags flt JOIN tags ft ON "
        "ft.workspace_id = flt.workspace_id AND ft.id = flt.tag_id "
        "WHERE flt.workspace_id = e.workspace_id AND flt.link_id = e.link_id), "
        "(SELECT jsonb_object_agg(key, value) FROM jsonb_each_text(e.properties)) "
        "FROM events e "
        "LEFT JOIN links l ON l.workspace_id = e.workspace_id AND l.id = e.link_id "
        "LEFT JOIN visitors v ON v.workspace_id = e.workspace_id AND v.id = e.visitor_id "
        "ORDER BY e.id")
    return [(r[0], {"values": r[1], "tags": r[2], "properties": r[3] or {}}) for r in rows]


def sql_ids(db, text):
    sql, params = compile_filter(text)
    return {r[0] for r in db.sql(
        JOINS.replace("count(*)", "e.id") + re.sub(r"\$\d+", "%s", sql), params)}


def test_filter_match_agrees_with_sql(db, events, more_events):
    ids = more_events
    filters = [c[0] + "\n" for c in CASES] + MATCH_CASES + [
        f"link: {ids['l3'].upper()}\n",
        f"link: {{not: [{ids['l4']}, {ids['gone']}]}}\n",
        f"visitor: {{not: [{ids['v3']}, {ids['v4']}]}}\n",
        f"visitor: {ids['gone']}\n",
        f"qr_code: [{ids['q1']}, {uuid.uuid4()}]\n",
        f"any: [{{qr_code: {ids['q1']}}}, {{link: {{'!=': {ids['l3']}}}}}]\n",
    ]
    fields = field_table()
    assert len(fields) > 30 and ("link.tag", None) in fields
    evs = read_events(db, fields)
    assert len(evs) == 11
    stdin = "".join(json.dumps(e) + "\n" for _, e in evs)
    lines = dump("--match", *filters, stdin=stdin).split("\n")
    assert lines[-1] == "" and len(lines) == len(filters) + 1

    wrong, trivial = [], 0
    for text, line in zip(filters, lines):
        in_c = {evs[int(i)][0] for i in line.split()}
        in_sql = sql_ids(db, text)
        if in_c != in_sql:
            wrong.append(f"{text.strip()!r}: C only {sorted(in_c - in_sql)}, "
                         f"SQL only {sorted(in_sql - in_c)}")
        trivial += len(in_sql) in (0, len(evs))
    assert not wrong, "filter_match and SQL disagree:\n" + "\n".join(wrong)
    # The events tell the filters apart: few match all of them or none.
    assert trivial <= len(filters) // 10, f"{trivial} of {len(filters)} filters are trivial"
