"""linkpulsed -t and start-up refusals: errors name FILE:LINE:COL."""
import re

from conftest import LINKPULSED, SRCDIR, run

EXAMPLE = SRCDIR / "conf/linkpulse.yaml"


def positions(stderr, path):
    """{(line, col): message} of the errors in stderr that name path."""
    rx = re.compile(rf"(?:^|\s){re.escape(str(path))}:(\d+):(\d+): (.*)$")
    return {(int(m[1]), int(m[2])): m[3] for m in map(rx.search, stderr.splitlines()) if m}


def check(path):
    return run([LINKPULSED, "-t", "-c", str(path)], timeout=30)


def write(tmp_path, text, name="linkpulse.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_config_is_valid():
    r = check(EXAMPLE)
    assert r.returncode == 0, r.stderr


def test_valid_minimal_config(tmp_path):
    path = write(tmp_path, 'http:\n  listen: ["127.0.0.1:8080"]\n'
                           'database:\n  url: "postgresql:///linkpulse"\n')
    r = check(path)
    assert r.returncode == 0, r.stderr


def test_unknown_key_has_position_and_suggestion(tmp_path):
    path = write(tmp_path, 'http:\n'
                           '  listen: ["127.0.0.1:8080"]\n'
                           '  max_body_sise: 10MiB\n')
    r = check(path)
    assert r.returncode == 1
    msg = positions(r.stderr, path).get((3, 3))
    assert msg and "max_body_sise" in msg, r.stderr
    assert "did you mean" in msg and "max_body_size" in msg, msg


def test_every_error_is_reported_at_once(tmp_path):
    path = write(tmp_path, 'http:\n'
                           '  listen: ["127.0.0.1:8080"]\n'
                           '  request_timeout: soon\n'
                           'database:\n'
                           '  pool_size: many\n'
                           'log:\n'
                           '  level: loud\n'
                           'shutdwn:\n'
                           '  grace: 10s\n')
    r = check(path)
    assert r.returncode == 1
    errors = positions(r.stderr, path)
    assert {3, 5, 7, 8} <= {line for line, _ in errors}, r.stderr
    assert any("did you mean" in m and "shutdown" in m for m in errors.values()), r.stderr


def test_syntax_error_has_position(tmp_path):
    path = write(tmp_path, 'http:\n  listen: ["127.0.0.1:8080"\nlog:\n  level: info\n')
    r = check(path)
    assert r.returncode == 1
    assert positions(r.stderr, path), r.stderr


def test_missing_file(tmp_path):
    r = check(tmp_path / "nope.yaml")
    assert r.returncode == 1
    assert "nope.yaml" in r.stderr


def test_daemon_refuses_bad_config(tmp_path):
    path = write(tmp_path, 'http:\n  listen: ["127.0.0.1:8080"]\nlog:\n  levle: debug\n')
    r = run([LINKPULSED, "-c", str(path)], timeout=30)
    assert r.returncode == 1
    assert "did you mean" in positions(r.stderr, path).get((4, 3), ""), r.stderr
