"""A normal shutdown after serving requests frees everything (valgrind)."""
import re
import shutil
import signal
import subprocess

import pytest

from conftest import LINKPULSED, create_token, create_workspace, wait_until


def sanitized():
    with open(LINKPULSED, "rb") as f:
        return b"__asan_init" in f.read()


pytestmark = [
    pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed"),
    pytest.mark.skipif(sanitized(), reason="an ASan build cannot run under valgrind; "
                                           "LeakSanitizer checks its leaks in every test"),
]


def test_no_leak_after_serving(db, daemon, tmp_path):
    create_workspace(db, "acme")
    token = create_token(db, "acme", scopes="admin")
    db.sql("INSERT INTO links (workspace_id, shortlink) SELECT id, 'vg' FROM workspaces")
    # Alert rules of several kinds, one of them firing on the event below.
    rules = tmp_path / "rules.yaml"
    rules.write_text("""
rules:
  - {name: busy, workspace: acme, kind: threshold, op: ">", value: 0,
     window: 1h, group_by: [link], notify: [ops],
     annotations: {summary: "{{ labels.link }}: {{ value }}"}}
  - {name: hot, workspace: acme, kind: trigger, dedup: 1h, notify: [ops]}
  - {name: new, workspace: acme, kind: new_value, field: link, lookback: 1d}
  - {name: quiet, workspace: "*", kind: flatline, window: 1h, below: 1}
  - {name: errors, workspace: acme, kind: ratio, numerator: {status: error},
     window: 5m, above: 5}
""")
    d = daemon(db, {"rules.paths": [str(rules)],
                    "webhooks": [{"workspace": "acme", "name": "ops",
                                  "url": "http://127.0.0.1:9/hook",
                                  "secret": "whsec_" + "A" * 40}]}, start=False)
    vlog = tmp_path / "valgrind.log"
    d.proc = subprocess.Popen(
        ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
         "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
         f"--log-file={vlog}", LINKPULSED, "-c", str(d.config_path)],
        stdout=open(d.log, "ab"), stderr=subprocess.STDOUT, env=d.env)
    d._logf = open(d.log, "ab")
    d.wait_healthy(timeout=60)
    d.wait_ready(timeout=60)
    for _ in range(3):
        assert d.get("/v1/workspace", token=token).status_code == 200
        assert d.get("/v1/workspace-tokens", token=token).status_code == 200
        assert d.get("/metrics").status_code == 200
        assert d.get("/nope").status_code == 404
        assert d.get("/v1/workspace", token="lp_live_" + "x" * 40).status_code == 401
    db.sql("INSERT INTO events (workspace_id, occurred_at, link_id) "
           "SELECT workspace_id, now(), id FROM links")
    wait_until(lambda: db.sql("SELECT events FROM pipeline_cursor WHERE name = 'main'")[0][0] == 1, 20,
               "the event consumed under valgrind")
    wait_until(lambda: db.sql("SELECT count(*) FROM alert_instances WHERE rule = 'busy'"
                              " AND state = 'firing'")[0][0] == 1, 30, "an alert firing")
    # A reload that changes one rule and removes another.
    rules.write_text(rules.read_text().replace("value: 0", "value: 5")
                     .replace("  - {name: hot", "  - {name: hot2"))
    d.signal(signal.SIGHUP)
    wait_until(lambda: db.sql("SELECT count(*) FROM alert_instances WHERE rule = 'busy'"
                              " AND state = 'resolved'")[0][0] == 1, 30, "the alert resolved")
    d.signal(signal.SIGTERM)
    rc = d.proc.wait(60)
    report = vlog.read_text()
    assert rc == 0, report[-3000:]
    assert re.search(r"ERROR SUMMARY: 0 errors", report), report[-3000:]
    assert "All heap blocks were freed" in report or "definitely lost: 0 bytes" in report, report[-3000:]
