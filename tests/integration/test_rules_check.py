"""Alert rule files: linkpulsectl rules check, linkpulsed -t and reload."""
import re

from conftest import LINKPULSECTL, LINKPULSED, SRCDIR, run

EXAMPLES = sorted((SRCDIR / "conf/rules.d").glob("*.yaml"))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# The endpoints the shipped examples notify.
EXAMPLE_ENDPOINTS = ["growth-alerts", "ops-pager", "ops-alerts", "sales"]

GOOD = """\
rules:
  - name: hot-lead
    workspace: acme
    kind: trigger
    match:
      link.tag: pricing
      visitor.lead_score: {">=": 80}
    group_by: [visitor]
    dedup: 1d
    notify: [sales]
"""

BAD = """\
rules:
  - name: slow
    workspace: acme
    kind: threshold
    op: ">"
    value: 100
    recover: 120
    window: soon
  - name: quiet
    workspace: acme
    kind: flatline
    windw: 1h
    below: 1
    annotations:
      summary: "{{ labels.link }} is quiet"
"""


def config_text(endpoints=(), rules_paths=None):
    text = 'delivery:\n  allow_networks: ["127.0.0.1/32"]\n'
    if endpoints:
        text += "webhooks:\n"
        for name in endpoints:
            text += (f"  - workspace: acme\n    name: {name}\n"
                     f"    url: http://127.0.0.1:9/{name}\n    secret: {SECRET}\n")
    if rules_paths is not None:
        text += "rules:\n  paths: [" + ", ".join(f'"{p}"' for p in rules_paths) + "]\n"
    return text


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def check(*args):
    return run([LINKPULSECTL, "rules", "check", *map(str, args)], timeout=30)


def test_shipped_examples_pass(tmp_path):
    assert len(EXAMPLES) == 7, EXAMPLES
    cfg = write(tmp_path / "linkpulse.yaml", config_text(EXAMPLE_ENDPOINTS))
    r = check("-c", cfg, *EXAMPLES)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 7, r.stdout
    for path, line in zip(EXAMPLES, lines):
        assert re.fullmatch(rf"{re.escape(str(path))}: \d+ rules? OK", line), line


def test_good_file_and_summary_line(tmp_path):
    cfg = write(tmp_path / "linkpulse.yaml", config_text(["sales"]))
    good = write(tmp_path / "good.yaml", GOOD)
    r = check("--config", cfg, good)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{good}: 1 rule OK\n"
    assert r.stderr == ""


def test_every_error_with_its_position(tmp_path):
    good = write(tmp_path / "good.yaml", GOOD)
    bad = write(tmp_path / "bad.yaml", BAD)
    cfg = write(tmp_path / "linkpulse.yaml", config_text(["sales"]))
    r = check("-c", cfg, good, bad)
    assert r.returncode == 1, r.stdout
    assert r.stdout == f"{good}: 1 rule OK\n"
    assert r.stderr.splitlines() == [
        f"{bad}:7:14: rules[0].threshold.recover: expected a number below value (100) "
        "for op >, so that the alert resolves only once clearly back, got '120'",
        f"{bad}:8:13: rules[0].threshold.window: expected a duration such as 5m, got 'soon'",
        f"{bad}:9:5: rules[1].flatline.window: missing: flatline rules need a duration "
        "such as 5m",
        f"{bad}:12:5: rules[1]: unknown field 'windw' (did you mean 'window'?)",
        f"{bad}:15:17: rules[1].annotations.summary: unknown label 'link' in "
        "{{ labels.link }} (the rule has no labels and no group_by)",
    ]


def test_endpoints_checked_against_the_configuration(tmp_path):
    good = write(tmp_path / "good.yaml", GOOD)
    cfg = write(tmp_path / "linkpulse.yaml", config_text(["sale", "ops"]))
    r = check("-c", cfg, good)
    assert r.returncode == 1, r.stdout
    assert r.stderr == (f"{good}:10:14: rules[0].notify: unknown endpoint 'sales' "
                        "(did you mean 'sale'?)\n")
    # Without a configuration (--database-url reads none), names are not checked.
    r = run([LINKPULSECTL, "--database-url", "postgresql:///none", "rules", "check",
             str(good)], timeout=30)
    assert r.returncode == 0, r.stderr
    # An endpoint id is always accepted.
    ids = write(tmp_path / "ids.yaml",
                GOOD.replace("[sales]", "[3f2c1d4e-8a7b-4c6d-9e0f-112233445566]"))
    r = check("-c", cfg, ids)
    assert r.returncode == 0, r.stderr


def test_names_unique_across_files(tmp_path):
    a = write(tmp_path / "a.yaml", GOOD)
    b = write(tmp_path / "b.yaml", GOOD)
    cfg = write(tmp_path / "linkpulse.yaml", config_text(["sales"]))
    r = check("-c", cfg, a, b)
    assert r.returncode == 1
    assert r.stdout == f"{a}: 1 rule OK\n"
    assert r.stderr == (f"{b}:2:11: rules[0].name: a second rule named 'hot-lead' "
                        f"(first at {a}:2)\n")


def test_unreadable_and_bad_configuration(tmp_path):
    cfg = write(tmp_path / "linkpulse.yaml", config_text())
    r = check("-c", cfg, tmp_path / "missing.yaml")
    assert r.returncode == 1
    assert r.stderr == f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory\n"
    bad_cfg = write(tmp_path / "bad.yaml", "rules:\n  pahts: []\n")
    r = check("-c", bad_cfg, write(tmp_path / "good.yaml", GOOD))
    assert r.returncode == 1
    assert f"{bad_cfg}:2:3: unknown key 'rules.pahts' (did you mean 'rules.paths'?)" in r.stderr


def test_usage_errors():
    r = check()
    assert r.returncode == 2
    assert "missing FILE" in r.stderr
    r = check("--frobnicate", EXAMPLES[0])
    assert r.returncode == 2
    r = run([LINKPULSECTL, "rules", "check", "--help"], timeout=30)
    assert r.returncode == 0 and "FILE..." in r.stdout


def test_linkpulsed_t_reports_rule_errors(tmp_path):
    write(tmp_path / "rules.d" / "good.yaml", GOOD)
    bad = write(tmp_path / "rules.d" / "bad.yaml", BAD)
    # Relative patterns are taken from the configuration's folder.
    cfg = write(tmp_path / "linkpulse.yaml",
                config_text(["sales"], rules_paths=["rules.d/*.yaml"]))
    r = run([LINKPULSED, "-t", "-c", str(cfg)], timeout=30, cwd="/")
    assert r.returncode == 1, r.stderr
    assert f"{bad}:8:13: rules[0].threshold.window: expected a duration such as 5m, " \
           "got 'soon'" in r.stderr.splitlines()
    assert f"{bad}:12:5: rules[1]: unknown field 'windw' (did you mean 'window'?)" \
        in r.stderr.splitlines()
    assert f"the alert rules of {cfg} are not valid" in r.stderr

    bad.unlink()
    r = run([LINKPULSED, "-t", "-c", str(cfg)], timeout=30, cwd="/")
    assert r.returncode == 0, r.stderr
    assert "(1 alert rules)" in r.stderr


def test_linkpulsed_t_plain_name_must_exist(tmp_path):
    cfg = write(tmp_path / "linkpulse.yaml",
                config_text(rules_paths=["none/*.yaml", "missing.yaml"]))
    r = run([LINKPULSED, "-t", "-c", str(cfg)], timeout=30)
    assert r.returncode == 1
    assert f"{tmp_path}/missing.yaml: cannot read: No such file or directory" \
        in r.stderr.splitlines()
    assert "none/" not in r.stderr


def test_reload_is_all_or_nothing(db, daemon, tmp_path):
    rules = write(tmp_path / "rules" / "a.yaml", GOOD.replace("[sales]", "[]"))
    d = daemon(db, settings={"rules.paths": [str(tmp_path / "rules" / "*.yaml")]})
    d.wait_log(r"rules: 1 rules loaded from 1 files")
    assert d.metric("linkpulse_rules_last_reload_successful") == 1

    write(rules, BAD)
    since = d.log_size()
    d.reload(settings={"log.level": "debug"}, expect_success=False)
    d.wait_log(r"rules: .*a\.yaml:8:13: rules\[0\]\.threshold\.window", since=since)
    assert d.metric("linkpulse_rules_last_reload_successful") == 0
    assert d.get("/healthz").status_code == 200

    write(rules, GOOD.replace("[sales]", "[]") + GOOD.replace("hot-lead", "hot-lead-2")
          .replace("[sales]", "[]").replace("rules:\n", ""))
    since = d.log_size()
    d.reload()
    d.wait_log(r"rules: 2 rules loaded", since=since)
    assert d.metric("linkpulse_rules_last_reload_successful") == 1
