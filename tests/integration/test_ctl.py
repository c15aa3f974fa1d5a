"""linkpulsectl: migrations, workspaces and tokens."""
import json
import re

import pytest

from conftest import LINKPULSECTL, create_token, create_workspace, ctl, run

TOKEN = re.compile(r"^lp_(live|test|anl)_[0-9A-Za-z]{40}$")


def items(stdout, key):
    data = json.loads(stdout)
    return data if isinstance(data, list) else data.get(key, data.get("items"))


def tables(db):
    return db.sql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")


def test_migrate_is_idempotent(empty_db):
    pending = ctl(empty_db, "migrate", "--status")
    first = ctl(empty_db, "migrate")
    assert first.returncode == 0, first.stderr
    schema = tables(empty_db)
    assert schema, "migrate created no table"
    again = ctl(empty_db, "migrate")
    assert again.returncode == 0, again.stderr
    assert tables(empty_db) == schema
    current = ctl(empty_db, "migrate", "--status")
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip()
    assert (pending.returncode, pending.stdout) != (current.returncode, current.stdout), \
        "--status says the same before and after migrating"


def test_workspace_create_and_list(db):
    ws_id = create_workspace(db, "acme", "Acme Inc", "--plan", "pro", "--timezone", "Europe/Paris")
    assert ws_id and "\n" not in ws_id
    r = ctl(db, "workspace", "list", "--json")
    assert r.returncode == 0, r.stderr
    ws = {w["slug"]: w for w in items(r.stdout, "workspaces")}
    assert ws["acme"]["id"] == ws_id
    assert (ws["acme"]["name"], ws["acme"]["plan"], ws["acme"]["timezone"]) == \
        ("Acme Inc", "pro", "Europe/Paris")
    text = ctl(db, "workspace", "list")
    assert text.returncode == 0 and "acme" in text.stdout


def test_workspace_duplicate_slug(db):
    create_workspace(db, "acme")
    r = ctl(db, "workspace", "create", "--slug", "acme", "--name", "Again")
    assert r.returncode != 0
    assert "acme" in r.stderr


def test_workspace_bad_plan(db):
    r = ctl(db, "workspace", "create", "--slug", "acme", "--name", "Acme", "--plan", "platinum")
    assert r.returncode != 0
    assert "platinum" in r.stderr


@pytest.mark.parametrize("environment,prefix", [("production", "lp_live_"),
                                                ("development", "lp_test_"),
                                                ("analytics", "lp_anl_")])
def test_token_format(db, environment, prefix):
    create_workspace(db, "acme")
    r = ctl(db, "token", "create", "--workspace", "acme", "--name", "t",
            "--environment", environment, "--scopes", "analytics:read,events:write")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1 and TOKEN.match(r.stdout.strip()), repr(r.stdout)
    assert r.stdout.startswith(prefix)


def test_token_is_shown_once(db):
    create_workspace(db, "acme")
    token = create_token(db, "acme", scopes="analytics:read,webhooks:write", name="shown-once")
    for args in (["--json"], []):
        r = ctl(db, "token", "list", "--workspace", "acme", *args)
        assert r.returncode == 0, r.stderr
        assert token not in r.stdout and token[-20:] not in r.stdout
    t = {t["name"]: t for t in items(ctl(db, "token", "list", "--workspace", "acme", "--json").stdout,
                                     "tokens")}["shown-once"]
    assert token.startswith(t["prefix"]) and len(t["prefix"]) < len(token)
    assert sorted(t["scopes"]) == ["analytics:read", "webhooks:write"]
    assert t["revokedAt"] is None


def test_token_bad_scope(db):
    create_workspace(db, "acme")
    r = ctl(db, "token", "create", "--workspace", "acme", "--name", "t",
            "--environment", "production", "--scopes", "analytics:read,bogus:scope")
    assert r.returncode != 0 and r.stdout == ""
    assert "bogus:scope" in r.stderr


def test_token_bad_environment(db):
    create_workspace(db, "acme")
    r = ctl(db, "token", "create", "--workspace", "acme", "--name", "t",
            "--environment", "staging", "--scopes", "admin")
    assert r.returncode != 0 and r.stdout == ""
    assert "staging" in r.stderr


def test_token_unknown_workspace(db):
    r = ctl(db, "token", "create", "--workspace", "nowhere", "--name", "t",
            "--environment", "production", "--scopes", "admin")
    assert r.returncode != 0 and r.stdout == ""
    assert "nowhere" in r.stderr


def test_token_revoke_unknown_id(db):
    create_workspace(db, "acme")
    r = ctl(db, "token", "revoke", "00000000-0000-0000-0000-000000000000")
    assert r.returncode != 0


def test_unknown_command():
    r = run([LINKPULSECTL, "frobnicate"], timeout=30)
    assert r.returncode == 2
    assert "frobnicate" in r.stderr
