"""
Integration fixtures: a throwaway PostgreSQL cluster for the whole session,
a fresh migrated database for each test, and a factory that starts the
real linkpulsed on a free port.  A failing test's report carries the
daemon's log and the tail of the PostgreSQL log.

Environment (tests/run sets it):
  LINKPULSED, LINKPULSECTL  the binaries under test
  LINKPULSE_TEST_RESULTS    where this run's pass/fail counts are written
  LINKPULSE_TEST_TMPDIR     where the cluster's folder is made (default: $TMPDIR)
  PGBIN                     PostgreSQL's programs (default: version 15's)
"""
import copy
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
import requests

SRCDIR = Path(__file__).resolve().parents[2]
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
LINKPULSED = os.environ.get("LINKPULSED", str(SRCDIR / "build/src/linkpulsed"))
LINKPULSECTL = os.environ.get("LINKPULSECTL", str(SRCDIR / "build/src/linkpulsectl"))
HTTP_TIMEOUT = 10
# The binaries under test get the database each test names, never the caller's.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "LINKPULSE_DATABASE_URL"}


# ---------------------------------------------------------------- helpers


def wait_until(fn, timeout, what, interval=0.05):
    """Polls fn until it returns something true; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    # A child must not outlive a killed test run (it would hold its port).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# What the sanitizer build's runtime prints when it finds a bug.
SANITIZER_REPORT = re.compile(r"ERROR: (?:AddressSanitizer|LeakSanitizer)|runtime error: "
                              r"|SUMMARY: UndefinedBehaviorSanitizer")


def run(argv, timeout=60, **kw):
    if "/" in argv[0] and not os.access(argv[0], os.X_OK):
        pytest.fail(f"{argv[0]} is missing: build it first (tests/run does)", pytrace=False)
    kw.setdefault("env", CLEAN_ENV)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if SANITIZER_REPORT.search(r.stderr):
        pytest.fail(f"sanitizer report from {' '.join(argv)}:\n{r.stderr}", pytrace=False)
    return r


def ctl(db, *args, timeout=60, url=True):
    """Runs linkpulsectl against db; returns the CompletedProcess."""
    argv = [LINKPULSECTL] + (["--database-url", db.url] if url else []) + list(args)
    return run(argv, timeout=timeout, preexec_fn=_die_with_parent)


def create_workspace(db, slug, name=None, *extra):
    """linkpulsectl workspace create; returns the printed id."""
    r = ctl(db, "workspace", "create", "--slug", slug, "--name", name or slug.title(), *extra)
    assert r.returncode == 0, f"workspace create failed:\n{r.stderr}"
    return r.stdout.strip()


def create_link(db, workspace_id, tags=()):
    """A link of the workspace with these tags (made if missing); its id."""
    link = db.sql("INSERT INTO links (workspace_id, shortlink) VALUES (%s, %s) "
                  "RETURNING id", (workspace_id, "l" + uuid.uuid4().hex[:10]))[0][0]
    for name in tags:
        rows = db.sql("SELECT id FROM tags WHERE workspace_id = %s AND name = %s",
                      (workspace_id, name))
        tag = rows[0][0] if rows else db.sql(
            "INSERT INTO tags (workspace_id, name) VALUES (%s, %s) RETURNING id",
            (workspace_id, name))[0][0]
        db.sql("INSERT INTO link_tags (workspace_id, link_id, tag_id) "
               "VALUES (%s, %s, %s)", (workspace_id, link, tag))
    return link


def create_token(db, workspace, scopes="admin", environment="development", name=None,
                 expires_in=None):
    """linkpulsectl token create; returns the token."""
    args = ["token", "create", "--workspace", workspace, "--name", name or f"t-{uuid.uuid4().hex[:6]}",
            "--environment", environment, "--scopes", scopes]
    if expires_in:
        args += ["--expires-in", expires_in]
    r = ctl(db, *args)
    assert r.returncode == 0, f"token create failed:\n{r.stderr}"
    return r.stdout.strip()


def assert_problem(r, status, code_type=None):
    """r is an application/problem+json error with every member we promise."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/problem+json", ctype
    body = r.json()
    for member in ("type", "title", "detail", "message"):
        assert isinstance(body.get(member), str), f"{member} missing in {body}"
    assert body.get("status") == status and body.get("code") == status, body
    assert isinstance(body.get("codeType"), str) and body["codeType"], body
    assert isinstance(body.get("details"), list), body
    if code_type:
        assert body["codeType"] == code_type, body
    return body


def check_ok(value):
    """A /readyz check: "ok", or an object whose status is "ok"."""
    return value == "ok" or (isinstance(value, dict) and value.get("status") == "ok")


def http_session():
    s = requests.Session()
    s.trust_env = False  # never send test traffic through a proxy
    return s


# ----------------------------------------------------- Prometheus text format

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_VALUE = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|Inf|NaN)"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})?[ \t]+({_VALUE})(?:[ \t]+(-?\d+))?$")
_HELP = re.compile(rf"^# HELP ({_NAME}) (.+)$")
_TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")


class MetricsFormatError(AssertionError):
    pass


class Metrics:
    """A strictly parsed /metrics page."""

    def __init__(self, text):
        self.types, self.help, self.samples = {}, {}, []
        self._parse(text)

    def _fail(self, n, line, why):
        raise MetricsFormatError(f"/metrics line {n}: {why}: {line!r}")

    def _family(self, name):
        if name in self.types:
            return name
        for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                              ("_count", ("histogram", "summary"))):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and self.types.get(base) in kinds:
                return base
        return None

    def _parse(self, text):
        if text and not text.endswith("\n"):
            raise MetricsFormatError("/metrics does not end with a newline")
        seen, sampled = set(), set()
        for n, line in enumerate(text.split("\n")[:-1], 1):
            if line == "":
                continue
            if line.startswith("# HELP"):
                m = _HELP.match(line) or self._fail(n, line, "malformed HELP")
                if m[1] in self.help:
                    self._fail(n, line, "second HELP for the same metric")
                self.help[m[1]] = m[2]
            elif line.startswith("# TYPE"):
                m = _TYPE.match(line) or self._fail(n, line, "malformed TYPE")
                if m[1] in self.types or m[1] in sampled:
                    self._fail(n, line, "TYPE repeated or after the metric's samples")
                self.types[m[1]] = m[2]
            elif line.startswith("#"):
                continue
            else:
                m = _SAMPLE.match(line) or self._fail(n, line, "malformed sample")
                name, labels = m[1], self._labels(n, line, m[2] or "")
                family = self._family(name) or self._fail(n, line, "sample without a TYPE")
                key = (name, tuple(sorted(labels.items())))
                if key in seen:
                    self._fail(n, line, "duplicate series")
                seen.add(key)
                sampled.add(family)
                self.samples.append((name, labels, float(m[3])))
        self._check_histograms()

    def _labels(self, n, line, body):
        labels, pos = {}, 0
        while pos < len(body):
            m = _LABEL.match(body, pos) or self._fail(n, line, "malformed labels")
            if m[1] in labels:
                self._fail(n, line, "label repeated")
            labels[m[1]] = re.sub(r"\\(.)", lambda e: "\n" if e[1] == "n" else e[1], m[2])
            pos = m.end()
        return labels

    def _check_histograms(self):
        for family, kind in self.types.items():
            if kind != "histogram":
                continue
            series = {}
            for name, labels, value in self.samples:
                if name == family:
                    raise MetricsFormatError(f"histogram {family} has a bare sample")
                part = name[len(family) + 1:] if name.startswith(family + "_") else None
                if part not in ("bucket", "sum", "count"):
                    continue
                rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                entry = series.setdefault(rest, {"bucket": [], "sum": None, "count": None})
                if part == "bucket":
                    if "le" not in labels:
                        raise MetricsFormatError(f"{name} without an le label")
                    entry["bucket"].append((float(labels["le"]), value))
                else:
                    entry[part] = value
            for rest, e in series.items():
                where = f"histogram {family}{dict(rest)}"
                buckets = sorted(e["bucket"])
                counts = [c for _, c in buckets]
                if not buckets or buckets[-1][0] != float("inf"):
                    raise MetricsFormatError(f"{where}: no +Inf bucket")
                if counts != sorted(counts):
                    raise MetricsFormatError(f"{where}: buckets are not cumulative")
                if e["count"] != counts[-1] or e["sum"] is None:
                    raise MetricsFormatError(f"{where}: _count/_sum missing or not matching +Inf")

    def get(self, name, **labels):
        """The value of the series with exactly these labels, or None."""
        for n, l, v in self.samples:
            if n == name and l == labels:
                return v
        return None

    def find(self, name, **labels):
        """[(labels, value)] of every series of name whose labels include these."""
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == v2 for k, v2 in labels.items())]


# ------------------------------------------------------------- PostgreSQL


class Postgres:
    """A private cluster: data, Unix socket and log in one temporary folder."""

    def __init__(self, base):
        self.base = Path(base)
        self.data = self.base / "data"
        self.sockdir = self.base / "sock"
        self.logfile = self.base / "postgres.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    def _run(self, *argv, timeout=60):
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        r = run(prefix + [str(PGBIN / argv[0])] + list(argv[1:]), timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({r.returncode}):\n{r.stdout}{r.stderr}\n{self.log_tail()}")
        return r

    def init(self):
        self.sockdir.mkdir(mode=0o777)
        self.sockdir.chmod(0o777)  # root's clients connect to a postgres-owned socket
        os.chmod(self.base, 0o755)
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockdir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"""
listen_addresses = ''
port = {self.port}
unix_socket_directories = '{self.sockdir}'
unix_socket_permissions = 0777
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
shared_buffers = 32MB
log_checkpoints = off
""")

    def start(self):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "30", "start")

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-m", "fast",
                  "-w", "-t", "30", "restart")

    def running(self):
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return run(prefix + [str(PGBIN / "pg_ctl"), "-D", str(self.data), "status"]).returncode == 0

    def ensure_running(self):
        if not self.running():
            self.start()

    def connect(self, dbname="postgres"):
        conn = psycopg2.connect(host=str(self.sockdir), port=self.port, user="postgres",
                                dbname=dbname, connect_timeout=5)
        conn.autocommit = True
        return conn

    def sql(self, query, params=None, dbname="postgres"):
        """Runs one statement; returns its rows (or [] for a command)."""
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def url(self, dbname):
        return f"postgresql://postgres@{quote(str(self.sockdir), safe='')}:{self.port}/{dbname}"

    def terminate(self, dbname, application_name="linkpulsed%"):
        """Ends the daemon's backends in dbname; returns how many."""
        rows = self.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = %s AND application_name LIKE %s",
                        (dbname, application_name))
        return rows[0][0]

    def log_tail(self, lines=40):
        try:
            return "".join(self.logfile.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""


class Database:
    def __init__(self, pg, name):
        self.pg, self.name, self.url = pg, name, pg.url(name)

    def sql(self, query, params=None):
        return self.pg.sql(query, params, dbname=self.name)

    def migrate(self):
        r = ctl(self, "migrate")
        assert r.returncode == 0, f"linkpulsectl migrate failed:\n{r.stdout}{r.stderr}"


@pytest.fixture(scope="session")
def pg():
    base = tempfile.mkdtemp(prefix="lp-pg-", dir=os.environ.get("LINKPULSE_TEST_TMPDIR"))
    cluster = Postgres(base)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.data.exists() and cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def _new_database(pg, request, migrate):
    pg.ensure_running()  # a fault test before may have left it down
    name = "lp_" + uuid.uuid4().hex[:12]
    pg.sql(f'CREATE DATABASE "{name}"')
    request.node._lp_pg = pg
    db = Database(pg, name)
    if migrate:
        db.migrate()
    return db


def _drop_database(pg, db):
    pg.ensure_running()
    pg.sql(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


@pytest.fixture
def db(pg, request):
    """A fresh database, migrated with linkpulsectl migrate."""
    d = _new_database(pg, request, migrate=True)
    yield d
    _drop_database(pg, d)


@pytest.fixture
def empty_db(pg, request):
    """A fresh database with no schema at all."""
    d = _new_database(pg, request, migrate=False)
    yield d
    _drop_database(pg, d)


# ------------------------------------------------------------- the daemon


def base_config(port, db_url):
    return {
        "http": {"listen": [f"127.0.0.1:{port}"], "max_body_size": "10MiB",
                 "request_timeout": "30s"},
        "database": {"url": db_url, "pool_size": 2, "connect_timeout": "5s",
                     "statement_timeout": "10s", "reconnect_min": "100ms",
                     "reconnect_max": "1s", "startup_timeout": "10s"},
        "log": {"level": "info", "format": "text"},
        "shutdown": {"grace": "5s"},
        # The tests' webhook receivers listen on loopback.
        "delivery": {"allow_networks": ["127.0.0.1/32"]},
    }


def apply_settings(config, settings):
    """settings: {"log.level": "debug", ...}; a None value removes the key."""
    for dotted, value in (settings or {}).items():
        *parents, leaf = dotted.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return config


def _yaml_scalar(v):
    if isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:/@%+-]*", v) \
            and v not in ("true", "false", "null", "yes", "no", "on", "off"):
        return v
    return json.dumps(v)  # JSON scalars and flow lists are valid YAML


def to_yaml(d, indent=0):
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.append(" " * indent + f"{k}:\n" + to_yaml(v, indent + 2))
        elif isinstance(v, list):
            out.append(" " * indent + f"{k}: [{', '.join(_yaml_scalar(x) for x in v)}]\n")
        else:
            out.append(" " * indent + f"{k}: {_yaml_scalar(v)}\n")
    return "".join(out)


class Daemon:
    def __init__(self, workdir, name, db_url, settings=None, env=None):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / f"{name}.yaml"
        self.log = workdir / f"{name}.log"
        self.config = apply_settings(base_config(self.port, db_url), settings)
        self.env = dict(CLEAN_ENV, **(env or {}))
        self.proc = None
        self.http = http_session()
        self.write_config()

    # config
    def write_config(self, settings=None, text=None):
        """Rewrites the file: from settings applied to the current config, or raw text."""
        if text is None:
            self.config = apply_settings(self.config, settings)
            text = to_yaml(self.config)
        self.config_path.write_text(text)

    def config_text(self, settings):
        """The YAML of the current config with settings applied; changes nothing."""
        return to_yaml(apply_settings(copy.deepcopy(self.config), settings))

    # process
    def start(self, wait=True):
        if not os.access(LINKPULSED, os.X_OK):
            pytest.fail(f"{LINKPULSED} is missing: build it first (tests/run does)", pytrace=False)
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen([LINKPULSED, "-c", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     preexec_fn=_die_with_parent)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=20):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"linkpulsed exited with {self.proc.returncode} while starting")
            try:
                return self.http.get(self.url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_until(up, timeout, "linkpulsed /healthz")

    def wait_ready(self, timeout=20):
        wait_until(lambda: self.get("/readyz").status_code == 200, timeout, "/readyz 200")

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"linkpulsed still running after {timeout}s")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(10)

    def close(self):
        """Stops the daemon; returns what went wrong at exit, or None."""
        if self.proc is None:
            return None
        problem = None
        if self.running():
            self.signal(signal.SIGTERM)  # a clean exit is when leaks are reported
            try:
                if self.proc.wait(15) != 0:
                    problem = f"exited with {self.proc.returncode} on SIGTERM"
            except subprocess.TimeoutExpired:
                problem = "still running 15 s after SIGTERM"
        self.kill()
        self._logf.close()
        if SANITIZER_REPORT.search(self.log_text()):
            problem = "the sanitizer reported a bug (see its log)"
        return problem and f"{self.name}: {problem}"

    # HTTP
    def request(self, method, path, token=None, **kw):
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url + path, headers=headers,
                                 timeout=kw.pop("timeout", HTTP_TIMEOUT), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def metrics(self):
        r = self.get("/metrics")
        assert r.status_code == 200, f"/metrics answered {r.status_code}"
        assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
        return Metrics(r.text)

    def metric(self, name, **labels):
        return self.metrics().get(name, **labels)

    # reload
    def reload(self, settings=None, text=None, expect_success=True, timeout=10):
        """Rewrites the config, sends SIGHUP and waits until the reload is judged."""
        before = self.metrics()
        ok_before = before.get("linkpulse_config_last_reload_successful")
        ts_before = before.get("linkpulse_config_last_reload_success_timestamp_seconds")
        if expect_success and ok_before == 1 and ts_before is not None:
            # the timestamp may have a resolution of one second
            time.sleep(max(0.0, ts_before + 1.05 - time.time()))
        self.write_config(settings, text)
        self.signal(signal.SIGHUP)

        def judged():
            m = self.metrics()
            ok = m.get("linkpulse_config_last_reload_successful")
            ts = m.get("linkpulse_config_last_reload_success_timestamp_seconds")
            if expect_success:
                return ok == 1 and (ok_before != 1 or ts != ts_before)
            return ok == 0
        wait_until(judged, timeout, f"reload judged {'good' if expect_success else 'bad'}")

    # log
    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_size(self):
        return self.log.stat().st_size if self.log.exists() else 0

    def wait_log(self, pattern, timeout=5, since=0):
        """Waits for a log line matching pattern after byte offset since; returns it."""
        rx = re.compile(pattern)

        def found():
            with open(self.log, "rb") as f:
                f.seek(since)
                for line in f.read().decode(errors="replace").splitlines():
                    if rx.search(line):
                        return line
            return None
        return wait_until(found, timeout, f"log line matching {pattern!r}")

    def log_tail(self, lines=200):
        return "".join(self.log_text().splitlines(True)[-lines:])


@pytest.fixture
def daemon(request, tmp_path):
    """Factory: daemon(db, settings={...}, env={...}, start=True) -> Daemon."""
    started = []
    request.node._lp_daemons = started

    def make(db, settings=None, env=None, start=True):
        d = Daemon(tmp_path, f"linkpulsed{len(started) + 1}", db.url, settings, env)
        started.append(d)
        return d.start() if start else d
    yield make
    problems = [p for p in (d.close() for d in started) if p]
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


# ----------------------------------------------------------- reporting


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = (yield).get_result()
    if not rep.failed:
        return
    for d in getattr(item, "_lp_daemons", []):
        rep.sections.append((f"{d.name} log", d.log_tail() or "(empty)"))
    pg = getattr(item, "_lp_pg", None)
    if pg is not None:
        rep.sections.append(("postgres log (tail)", pg.log_tail()))


# Counts for tests/run: one outcome per test, a failure in any phase wins.
_outcomes = {}


def pytest_runtest_logreport(report):
    prev = _outcomes.get(report.nodeid)
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and prev is None:
        _outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and report.passed and prev is None:
        _outcomes[report.nodeid] = "passed"


def pytest_collectreport(report):
    if report.failed:
        _outcomes[report.nodeid or "<collection>"] = "failed"


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("LINKPULSE_TEST_RESULTS")
    if not path:
        return
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in _outcomes.values():
        counts[outcome] += 1
    counts["exitstatus"] = int(exitstatus)
    Path(path).write_text(json.dumps(counts) + "\n")


# ------------------------------------------------------- webhook receivers


@pytest.fixture
def receiver():
    """Factory: receiver() -> a new receiver.Receiver (tests/integration/receiver.py)
    on 127.0.0.1 and a free port; every one made is closed at teardown."""
    from receiver import Receiver
    made = []

    def make():
        r = Receiver()
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()
