"""The shipped unit file: systemd-analyze accepts it with the built binary."""
import re
import shutil

import pytest

from pathlib import Path

from conftest import LINKPULSED, run

# The unit as the build made it from systemd/linkpulsed.service.in.
UNIT = Path(LINKPULSED).parents[1] / "systemd/linkpulsed.service"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed")


@pytest.fixture
def unit_copy(tmp_path):
    text = UNIT.read_text()
    assert re.search(r"^ExecStart=/\S+/sbin/linkpulsed -c /\S+/linkpulse/linkpulse.yaml$", text, re.M)
    assert not re.search(r"@\w+@", text), "a template variable was left unsubstituted"
    path = tmp_path / "linkpulsed.service"
    path.write_text(re.sub(r"^ExecStart=\S+/linkpulsed", f"ExecStart={LINKPULSED}", text, flags=re.M))
    return path


def test_unit_verifies(unit_copy):
    r = run(["systemd-analyze", "verify", str(unit_copy)])
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_unit_settings():
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=30s",
                 "Restart=on-failure", "User=linkpulse", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "CapabilityBoundingSet=", "KillMode=mixed"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line


def test_unit_exposure_is_low(unit_copy):
    r = run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit_copy)])
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m[1]) <= 2.5, f"exposure {m[1]}: a hardening setting was lost"
