"""Rule unit tests: linkpulsectl rules test, through the real binary."""
import re
import xml.etree.ElementTree as ET

from conftest import LINKPULSECTL, SRCDIR, run

EXAMPLES = sorted((SRCDIR / "conf/rules.d").glob("*.yaml"))
TESTS = sorted((SRCDIR / "conf/rules.d/tests").glob("*.test.yaml"))

RULES = """\
rules:
  - name: too-many-scans
    workspace: acme
    kind: threshold
    match: {status: ok}
    group_by: [link]
    op: ">"
    value: 50
    window: 10m
    annotations:
      summary: "{{ labels.link }} had {{ value }} scans in {{ window }}"
"""

PASSING = """\
rule_files: [rules.yaml]
event_defaults: {status: ok}
tests:
  - name: spike on L1
    events:
      - {at: 5m, count: 100, link: L1, country: FR}
      - {at: 0m, count: 60, spread: 1h, link: L2}
    expect:
      - at: 10m
        rule: too-many-scans
        alerts:
          - labels: {link: L1}
            annotations: {summary: "L1 had 100 scans in 10m"}
            value: "100"
        notifications: [{status: firing, at: 5m, labels: {link: L1}}]
      # Notifications since the rule's previous check, at 10m.
      - at: 30m
        rule: too-many-scans
        alerts: []
        notifications: [{status: resolved, at: 15m, labels: {link: L1}}]
"""

# Line 10: a near miss (state and annotation), a missing alert and, at 20m,
# an unexpected one.
FAILING = """\
rule_files: [rules.yaml]
event_defaults: {status: ok}
tests:
  - name: <wrong & "odd">
    events:
      - {at: 5m, count: 100, link: L1}
      - {at: 15m, count: 60, link: L3}
    expect:
      - at: 10m
        rule: too-many-scans
        alerts:
          - labels: {link: L1}
            annotations: {summary: "L1 had 99 scans in 10m"}
            state: pending
          - labels: {link: L2}
      - at: 20m
        rule: too-many-scans
        alerts: []
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def rules_test(*args, cwd=None):
    return run([LINKPULSECTL, "rules", "test", *map(str, args)], timeout=60, cwd=cwd)


def test_shipped_tests_pass():
    # One test file per example, in a folder rules.d/*.yaml does not reach.
    assert [p.name.replace(".test", "") for p in TESTS] == [p.name for p in EXAMPLES]
    r = rules_test(*TESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    n = len(lines) - 1
    assert n >= 2 * len(TESTS)
    assert all(line.startswith("ok ") for line in lines[:-1]), r.stdout
    assert lines[-1] == f"{n} tests, {n} passed, 0 failed"
    # Still plain rule files for rules check.
    r = run([LINKPULSECTL, "--database-url", "postgresql:///none", "rules", "check",
             *map(str, EXAMPLES)], timeout=30)
    assert r.returncode == 0, r.stderr


def test_passing_file_from_another_folder(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    t = write(tmp_path / "t" / "ok.test.yaml",
              PASSING.replace("[rules.yaml]", "[../rule*.yaml]"))
    # rule_files are taken from the test file's folder, whatever the cwd.
    r = rules_test(t, cwd="/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "ok spike on L1\n1 test, 1 passed, 0 failed\n"


def test_failure_prints_a_diff(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    ok = write(tmp_path / "ok.test.yaml", PASSING)
    bad = write(tmp_path / "bad.test.yaml", FAILING)
    r = rules_test(ok, bad)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines() == [
        "ok spike on L1",
        'FAIL <wrong & "odd">',
        f"  {bad}:9:9: rule too-many-scans at 10m (2026-01-05T00:10:00Z): alerts differ",
        '  - pending {link="L1"} annotations {summary="L1 had 99 scans in 10m"}',
        '  + firing {alertname="too-many-scans", severity="warning", link="L1"} '
        'value "100" annotations {summary="L1 had 100 scans in 10m"}',
        "      state: expected pending, got firing",
        '      annotations.summary: expected "L1 had 99 scans in 10m", '
        'got "L1 had 100 scans in 10m"',
        '  - firing {link="L2"}',
        f"  {bad}:16:9: rule too-many-scans at 20m (2026-01-05T00:20:00Z): alerts differ",
        '  + firing {alertname="too-many-scans", severity="warning", link="L3"} '
        'value "60" annotations {summary="L3 had 60 scans in 10m"}',
        "2 tests, 1 passed, 1 failed",
    ]


def test_matched_items_show_as_context(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    t = write(tmp_path / "t.test.yaml", """\
rule_files: [rules.yaml]
tests:
  - name: one of two
    events:
      - {at: 1m, count: 60, link: L1, status: ok}
      - {at: 1m, count: 70, link: L2, status: ok}
    expect:
      - at: 2m
        alerts:
          - {labels: {link: L1}, value: 60.0}
          - {labels: {link: L2}, value: 71}
""")
    r = rules_test(t)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[1].endswith("every rule at 2m (2026-01-05T00:02:00Z): alerts differ")
    # 60.0 is 60: matched, unmarked; 71 is a near miss.
    assert lines[2].startswith('    firing {alertname="too-many-scans"') and 'link="L1"' in lines[2]
    assert lines[3] == '  - firing {link="L2"} value "71"'
    assert lines[4].startswith("  + firing ") and 'link="L2"' in lines[4]
    assert lines[5] == '      value: expected "71", got "70"'


def test_junit_xml(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    ok = write(tmp_path / "ok.test.yaml", PASSING)
    bad = write(tmp_path / "bad.test.yaml", FAILING)
    out = tmp_path / "junit.xml"
    r = rules_test("--junit", out, ok, bad)
    assert r.returncode == 1
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(ok), str(bad)]
    assert [s.get("failures") for s in suites] == ["0", "1"]
    good, = suites[0].findall("testcase")
    assert good.get("name") == "spike on L1" and good.find("failure") is None
    case, = suites[1].findall("testcase")
    assert case.get("name") == '<wrong & "odd">'
    assert case.get("classname") == str(bad)
    failure = case.find("failure")
    assert failure.get("message") == "2 of 2 expectations failed"
    assert '  - pending {link="L1"} annotations {summary="L1 had 99 scans in 10m"}' \
        in failure.text.splitlines()
    assert "      state: expected pending, got firing" in failure.text.splitlines()

    # A file with errors is an error element; the others still run.
    broken = write(tmp_path / "broken.test.yaml", "rule_files: [rules.yaml]\ntests: 3\n")
    r = rules_test("--junit", out, ok, broken)
    assert r.returncode == 2
    root = ET.parse(out).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "0", "1")
    error = root.find("testsuite[@name='%s']/testcase/error" % broken)
    assert f"{broken}:2:8: tests: expected a list, got '3'" in error.text


def test_malformed_test_files(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    bad = write(tmp_path / "bad.test.yaml", """\
rule_files: [rules.yaml]
evaluation_interval: soon
tets: []
tests:
  - name: bad
    start: yesterday
    events:
      - {at: 5m, count: 0, link: L1, contry: FR}
      - {at: later, link: L1, asn: x12, visitor.lead_score: 85.5}
      - {count: 3, properties: {plan: pro}}
    expect:
      - at: 10m
        rule: too-many-scan
        alerts: []
      - at: 10m
        rule: too-many-scans
        alerts:
          - labels: {lnk: L1}
            annotations: {sumary: x}
            state: resolved
            valu: 3
      - at: 20m
      - at: 30m
        notifications: [{status: pending, repeat: maybe}]
""")
    r = rules_test(bad)
    assert r.returncode == 2, r.stdout
    assert r.stdout == "0 tests, 0 passed, 0 failed\n"
    assert r.stderr.splitlines() == [
        f"{bad}:2:22: evaluation_interval: expected a duration such as 5m, got 'soon'",
        f"{bad}:3:1: unknown key 'tets' (did you mean 'tests'?)",
        f"{bad}:6:12: tests[0].start: expected a time such as 2026-03-28T00:00:00Z, "
        "got 'yesterday'",
        f"{bad}:8:25: tests[0].events[0].count: expected a number of events from 1 to "
        "1000000, got '0'",
        f"{bad}:8:38: tests[0].events[0]: unknown field 'contry' (did you mean 'country'?)",
        f"{bad}:9:14: tests[0].events[1].at: expected a duration such as 5m (or -5m: "
        "before start), got 'later'",
        f"{bad}:9:36: tests[0].events[1].asn: expected an integer, got 'x12'",
        f"{bad}:9:61: tests[0].events[1].visitor.lead_score: expected an integer, "
        "got '85.5'",
        f"{bad}:10:9: tests[0].events[2]: missing at: the time of the event from start, "
        "such as 5m",
        f"{bad}:13:15: tests[0].expect[0].rule: no rule named 'too-many-scan' in "
        "rule_files (did you mean 'too-many-scans'?)",
        f"{bad}:18:22: tests[0].expect[1].alerts[0].labels: the rule has no label 'lnk' "
        "(did you mean 'link'?)",
        f"{bad}:19:27: tests[0].expect[1].alerts[0].annotations: the rule has no "
        "annotation 'sumary' (did you mean 'summary'?)",
        f"{bad}:20:20: tests[0].expect[1].alerts[0].state: expected pending or firing, "
        "got 'resolved'",
        f"{bad}:21:13: tests[0].expect[1].alerts[0]: unknown key 'valu' "
        "(did you mean 'value'?)",
        f"{bad}:22:9: tests[0].expect[2]: nothing to check: give alerts, notifications "
        "or both",
        f"{bad}:24:34: tests[0].expect[3].notifications[0].status: expected firing or "
        "resolved, got 'pending'",
        f"{bad}:24:51: tests[0].expect[3].notifications[0].repeat: expected true or "
        "false, got 'maybe'",
    ]


def test_file_level_errors(tmp_path):
    write(tmp_path / "rules.yaml", RULES)
    cases = {
        "syntax.test.yaml": ("rule_files: [rules.yaml]\ntests:\n  - {expect: [}\n",
                             r":3:\d+: did not find expected node content"),
        "nofiles.test.yaml": ("rule_files: [nope.yaml, 'x*.yaml']\ntests: []\n",
                              r":1:14: rule_files\[0\]: cannot read .*nope\.yaml: "
                              r"No such file or directory"),
        "noglob.test.yaml": ("rule_files: ['x*.yaml']\ntests: []\n",
                             r":1:14: rule_files\[0\]: .*x\*\.yaml matches no file"),
        "nows.test.yaml": ("rule_files: [rules.yaml]\ntests:\n  - expect: [{at: 1m, "
                           "alerts: []}]\n",
                           None),
        "noexpect.test.yaml": ("rule_files: [rules.yaml]\ntests:\n  - {name: x}\n",
                               r":3:5: tests\[0\]: missing expect"),
    }
    for name, (text, pattern) in cases.items():
        path = write(tmp_path / name, text)
        r = rules_test(path)
        if pattern is None:
            # acme is the one workspace the rules name: the default.
            assert r.returncode == 0, r.stderr
            continue
        assert r.returncode == 2, (name, r.stdout)
        assert re.search(re.escape(str(path)) + pattern, r.stderr), (name, r.stderr)

    # Rule files with errors: their own positions.
    write(tmp_path / "broken.yaml", "rules:\n  - name: x\n    kind: threshhold\n")
    t = write(tmp_path / "t.test.yaml", "rule_files: [broken.yaml]\ntests: []\n")
    r = rules_test(t)
    assert r.returncode == 2
    assert f"{tmp_path / 'broken.yaml'}:3:11: rules[0].kind: " in r.stderr

    # Only "*" rules: each test names its workspace.
    write(tmp_path / "any.yaml", RULES.replace("workspace: acme", 'workspace: "*"'))
    t = write(tmp_path / "any.test.yaml",
              "rule_files: [any.yaml]\ntests:\n  - expect: [{at: 1m, alerts: []}]\n")
    r = rules_test(t)
    assert r.returncode == 2
    assert r.stderr == (f"{t}:3:5: tests[0]: missing workspace: the rules name no "
                        "workspace but \"*\", so say which one the events are of\n")


def test_usage_errors(tmp_path):
    r = rules_test()
    assert r.returncode == 2 and "missing FILE" in r.stderr
    r = rules_test(tmp_path / "missing.test.yaml")
    assert r.returncode == 2
    assert r.stderr == f"{tmp_path / 'missing.test.yaml'}: cannot read: No such file or directory\n"
    write(tmp_path / "rules.yaml", RULES)
    ok = write(tmp_path / "ok.test.yaml", PASSING)
    r = rules_test("--junit", tmp_path / "no" / "such" / "dir.xml", ok)
    assert r.returncode == 2 and "cannot write" in r.stderr
    r = run([LINKPULSECTL, "rules", "test", "--help"], timeout=30)
    assert r.returncode == 0 and "--junit FILE" in r.stdout


MUTED = """\
rules:
  - name: busy
    workspace: acme
    kind: threshold
    op: ">"
    value: 0
    window: 1d
    # Nights in New York.
    mute_intervals:
      - timezone: America/New_York
        times: ["00:00-07:00"]
"""

# Firing from midnight in New York; the notification waits for 07:00 there.
DST_TEST = """\
rule_files: [muted.yaml]
tests:
  - name: {name}
    start: {start}
    events: [{{at: 0m}}]
    expect:
      - at: 1m
        alerts: [{{state: firing}}]
        notifications: []
      - at: 12h
        notifications: [{{status: firing, at: {at}}}]
"""


def test_mute_interval_across_dst(tmp_path):
    write(tmp_path / "muted.yaml", MUTED)
    # 2026-03-08: 02:00 EST becomes 03:00 EDT, so 07:00 in New York is
    # 11:00 UTC that day and 12:00 UTC the week before.
    after = write(tmp_path / "after.test.yaml", DST_TEST.format(
        name="after the change", start="2026-03-08T05:00:00Z", at="6h"))
    before = write(tmp_path / "before.test.yaml", DST_TEST.format(
        name="the week before", start="2026-03-01T05:00:00Z", at="7h"))
    r = rules_test(after, before)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "ok after the change\nok the week before\n2 tests, 2 passed, 0 failed\n"

    # Expecting the winter time after the change fails, saying when it came.
    wrong = write(tmp_path / "wrong.test.yaml", DST_TEST.format(
        name="wrong", start="2026-03-08T05:00:00Z", at="7h"))
    r = rules_test(wrong)
    assert r.returncode == 1
    assert "      at: expected 7h, got 6h" in r.stdout.splitlines()
    assert f"  {wrong}:10:9: every rule at 12h (2026-03-08T17:00:00Z): notifications " \
        "since 1m differ" in r.stdout.splitlines()
