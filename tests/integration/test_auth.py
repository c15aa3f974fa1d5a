"""Bearer tokens on the API: 401 and 403 problems, scopes, workspace isolation."""
import json
import re
import secrets
import string
import time

import pytest

from conftest import assert_problem, create_token, create_workspace, ctl, wait_until

HASH = re.compile(r"\b[0-9a-f]{64}\b")


@pytest.fixture
def api(db, daemon):
    """A running daemon and a workspace 'acme' with an admin token."""
    class Api:
        pass
    a = Api()
    a.db = db
    a.workspace_id = create_workspace(db, "acme", "Acme Inc")
    a.admin = create_token(db, "acme", scopes="admin", environment="production")
    a.d = daemon(db)
    return a


def assert_unauthenticated(r):
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers


def token_ids(db, workspace):
    r = ctl(db, "token", "list", "--workspace", workspace, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    items = data if isinstance(data, list) else data.get("tokens", data.get("items"))
    return {t["name"]: t for t in items}


def test_missing_header(api):
    assert_unauthenticated(api.d.get("/v1/workspace"))


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "lp_live_x",
                                    "Bearer not-a-token", "Bearer lp_live_short"])
def test_malformed_header(api, header):
    assert_unauthenticated(api.d.get("/v1/workspace", headers={"Authorization": header}))


def test_unknown_token(api):
    tail = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    assert_unauthenticated(api.d.get("/v1/workspace", token="lp_live_" + tail))


def test_valid_token_sees_its_workspace(api):
    r = api.d.get("/v1/workspace", token=api.admin)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert {"id", "slug", "name", "plan", "timezone", "retentionDays"} <= set(body), body
    assert (body["id"], body["slug"], body["name"]) == (api.workspace_id, "acme", "Acme Inc")


def test_revoked_token(api):
    token = create_token(api.db, "acme", scopes="analytics:read", name="to-revoke")
    assert api.d.get("/v1/workspace", token=token).status_code == 200
    r = ctl(api.db, "token", "revoke", token_ids(api.db, "acme")["to-revoke"]["id"])
    assert r.returncode == 0, r.stderr
    assert token_ids(api.db, "acme")["to-revoke"]["revokedAt"]
    assert_unauthenticated(api.d.get("/v1/workspace", token=token))


def test_expired_token(api):
    created = time.monotonic()
    token = create_token(api.db, "acme", scopes="analytics:read", expires_in="1s")
    first = api.d.get("/v1/workspace", token=token)
    if time.monotonic() - created < 0.8:
        assert first.status_code == 200, "rejected before it expired"

    def rejected():
        r = api.d.get("/v1/workspace", token=token)
        return [r] if r.status_code != 200 else None  # a Response of 401 is false
    assert_unauthenticated(wait_until(rejected, 5, "the token to expire")[0])


def test_insufficient_scope(api):
    token = create_token(api.db, "acme", scopes="analytics:read")
    assert api.d.get("/v1/workspace", token=token).status_code == 200
    assert_problem(api.d.get("/v1/workspace-tokens", token=token), 403, "PERMISSION_DENIED")


def test_token_list_never_shows_secrets(api):
    other = create_token(api.db, "acme", scopes="events:write", name="writer")
    r = api.d.get("/v1/workspace-tokens", token=api.admin)
    assert r.status_code == 200, r.text
    text = r.text
    assert "writer" in text
    for secret in (api.admin, other, api.admin[8:], other[8:]):
        assert secret not in text
    assert not HASH.search(text), "a SHA-256 digest in the token list"
    assert not re.search(r'"[^"]*hash[^"]*"\s*:', text, re.I), "a hash member in the token list"

    listed = ctl(api.db, "token", "list", "--workspace", "acme", "--json").stdout
    assert other not in listed and other[8:] not in listed and not HASH.search(listed)


def test_workspaces_are_isolated(api):
    b_id = create_workspace(api.db, "globex", "Globex")
    b_admin = create_token(api.db, "globex", scopes="admin", name="globex-admin")
    ra = api.d.get("/v1/workspace", token=api.admin).json()
    rb = api.d.get("/v1/workspace", token=b_admin).json()
    assert (ra["id"], rb["id"]) == (api.workspace_id, b_id)
    a_tokens = api.d.get("/v1/workspace-tokens", token=api.admin).text
    assert "globex-admin" not in a_tokens
    b_tokens = api.d.get("/v1/workspace-tokens", token=b_admin).text
    assert "globex-admin" in b_tokens and api.workspace_id not in b_tokens


def test_token_get_and_revoke_through_the_api(api):
    victim = create_token(api.db, "acme", scopes="analytics:read", name="victim")
    tid = token_ids(api.db, "acme")["victim"]["id"]
    r = api.d.get(f"/v1/workspace-tokens/{tid}", token=api.admin)
    assert r.status_code == 200, r.text
    t = r.json()["token"]
    assert t["id"] == tid and t["name"] == "victim" and t["scopes"] == ["analytics:read"]
    assert not HASH.search(r.text)
    assert api.d.get("/v1/workspace", token=victim).status_code == 200
    r = api.d.request("DELETE", f"/v1/workspace-tokens/{tid}", token=api.admin)
    assert r.status_code == 200, r.text
    assert_unauthenticated(api.d.get("/v1/workspace", token=victim))
    # Revoked tokens leave the list, and a second revoke is a 404.
    names = [t["name"] for t in api.d.get("/v1/workspace-tokens", token=api.admin).json()["tokens"]]
    assert "victim" not in names
    assert_problem(api.d.request("DELETE", f"/v1/workspace-tokens/{tid}", token=api.admin), 404)


def test_token_routes_check_their_input(api):
    body = assert_problem(api.d.get("/v1/workspace-tokens/not-a-uuid", token=api.admin), 400,
                          "INVALID_ARGUMENT")
    assert body["details"][0]["field"] == "id"
    assert_problem(api.d.get("/v1/workspace-tokens/00000000-0000-0000-0000-000000000000",
                             token=api.admin), 404, "NOT_FOUND")


def test_token_of_another_workspace_is_not_found(api):
    create_workspace(api.db, "other")
    create_token(api.db, "other", scopes="admin", name="theirs")
    tid = token_ids(api.db, "other")["theirs"]["id"]
    assert_problem(api.d.get(f"/v1/workspace-tokens/{tid}", token=api.admin), 404)
    assert_problem(api.d.request("DELETE", f"/v1/workspace-tokens/{tid}", token=api.admin), 404)
