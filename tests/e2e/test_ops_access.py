"""The ops plane's access over HTTP against the running platform
(docs/adr/0031): accounts and API keys made with the CLI, keys checked by
role, a revoked key refused at once, every ops write in the audit trail
under who made it, and the views rebuilt by a replay."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from pymongo import MongoClient

from ocpi_hub.bootstrap import drop_mysql_database
from tests.e2e.conftest import Platform, cli_json, ops_auth
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import location


def _key(platform: Platform, role: str) -> dict[str, Any]:
    return cli_json(platform, "api-keys", "create", "--name", f"{role} e2e", "--role", role)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _lines(platform: Platform, *args: str) -> list[dict[str, Any]]:
    result = platform.run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_accounts_are_added_listed_and_changed_without_their_password(platform: Platform) -> None:
    login = f"ada{uuid.uuid4().hex[:6]}"
    password = "a long enough passphrase"
    added = platform.run(
        "users", "add", login, "--role", "viewer", "--display-name", "Ada L",
        "--password-stdin", stdin=password + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert password not in added.stdout + added.stderr
    again = platform.run(
        "users", "add", login, "--role", "admin", "--password-stdin", stdin="x" * 20
    )
    assert again.returncode == 1 and "exists" in again.stderr
    short = platform.run(
        "users", "add", f"{login}x", "--role", "admin", "--password-stdin", stdin="short"
    )
    assert short.returncode != 0
    cli_json(platform, "users", "set-role", login, "billing")
    cli_json(platform, "users", "disable", login)
    [shown] = [a for a in _lines(platform, "users", "list") if a["login"] == login]
    assert (shown["role"], shown["disabled"], shown["display_name"]) == ("billing", True, "Ada L")
    assert "password_hash" not in shown


def test_keys_are_checked_by_role_and_a_revoked_key_is_refused_at_once(platform: Platform) -> None:
    viewer = _key(platform, "viewer")
    operator = _key(platform, "operator")
    base = platform.base_url
    with httpx.Client(base_url=base, timeout=20) as http:
        assert http.get("/ops/evses").status_code == 401
        assert http.get("/ops/evses", headers=_bearer(viewer["key"])).status_code == 200
        loc = f"AUTH-{uuid.uuid4().hex[:6].upper()}"
        body = location(loc, country_code="ZZ", party_id="HUB")
        weak = http.put(f"/ops/locations/{loc}", json=body, headers=_bearer(viewer["key"]))
        assert (weak.status_code, weak.json()["status_code"]) == (403, 2000)
        made = http.put(f"/ops/locations/{loc}", json=body, headers=_bearer(operator["key"]))
        assert made.status_code == 201, made.text
        # The audit trail is the admin's.
        assert http.get("/ops/audit", headers=_bearer(operator["key"])).status_code == 403
        revoked = cli_json(platform, "api-keys", "revoke", operator["key_id"])
        assert revoked == {"key_id": operator["key_id"], "revoked": True}
        # Refused the moment the revocation was answered, by every API process.
        gone = http.get("/ops/evses", headers=_bearer(operator["key"]))
        assert (gone.status_code, gone.json()["status_message"]) == (
            401,
            "missing or invalid credentials",
        )
    listed = {k["key_id"]: k for k in _lines(platform, "api-keys", "list")}
    assert listed[operator["key_id"]]["revoked"] is True
    assert listed[viewer["key_id"]] == {
        **listed[viewer["key_id"]], "role": "viewer", "revoked": False,
    }  # fmt: skip
    assert all("key" not in k and "key_hash" not in k for k in listed.values())


def test_every_ops_write_is_in_the_audit_under_its_key(platform: Platform) -> None:
    operator = _key(platform, "operator")
    actor = f"api_key:{operator['key_id']}"
    locs = [f"AUD-{uuid.uuid4().hex[:6].upper()}" for _ in range(3)]
    with httpx.Client(base_url=platform.base_url, timeout=20) as http:
        for loc in locs:
            body = location(loc, country_code="ZZ", party_id="HUB")
            resp = http.put(f"/ops/locations/{loc}", json=body, headers=_bearer(operator["key"]))
            assert resp.status_code == 201, resp.text
        admin = ops_auth(platform.base_url)

        def audited() -> list[dict[str, Any]] | None:
            got = http.get("/ops/audit", params={"actor": actor}, headers=admin)
            assert got.status_code == 200, got.text
            entries: list[dict[str, Any]] = got.json()["data"]
            return entries if len(entries) == len(locs) else None

        entries = wait_for(audited, "the operator's writes in the audit view")
        assert [e["aggregate_key"] for e in entries] == [f"ZZ/HUB/{loc}" for loc in reversed(locs)]
        assert {(e["topic"], e["event_type"], e["actor_kind"]) for e in entries} == {
            ("ocpi.locations.v1", "LocationObjectPut", "api_key")
        }
        # Filters and keyset pages: two pages of two and one.
        params: dict[str, Any] = {
            "actor": actor, "topic": "ocpi.locations.v1", "event_type": "LocationObjectPut",
            "limit": 2,
        }  # fmt: skip
        first = http.get("/ops/audit", params=params, headers=admin)
        after = first.headers["X-Next-After"]
        second = http.get("/ops/audit", params={**params, "after": after}, headers=admin)
        assert "X-Next-After" not in second.headers
        paged = first.json()["data"] + second.json()["data"]
        assert [e["event_id"] for e in paged] == [e["event_id"] for e in entries]
        since = entries[-1]["recorded_at"]
        until = entries[0]["recorded_at"]
        window = http.get(
            "/ops/audit", params={"actor": actor, "since": since, "until": until}, headers=admin
        ).json()["data"]
        assert [e["event_id"] for e in window] == [e["event_id"] for e in entries[1:]]
        other = http.get(
            "/ops/audit", params={"event_type": "TariffPut", "actor": actor}, headers=admin
        )
        assert other.json()["data"] == []
    # The CLI's own writes are audited too, under the OS user.
    cli = http_audit(platform, {"topic": "ocpi-hub.api-keys.v1", "event_type": "ApiKeyCreated"})
    assert any(e["aggregate_key"] == operator["key_id"] and e["actor_kind"] == "cli" for e in cli)


def http_audit(platform: Platform, params: dict[str, Any]) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        got = httpx.get(
            f"{platform.base_url}/ops/audit",
            params=params,
            headers=ops_auth(platform.base_url),
            timeout=20,
        )
        entries: list[dict[str, Any]] = got.json()["data"]
        return entries or None

    return wait_for(found, f"audit entries {params}")


def test_a_replay_rebuilds_the_operator_and_audit_views(platform: Platform) -> None:
    billing = _key(platform, "billing")
    http_audit(platform, {"event_type": "ApiKeyCreated", "topic": "ocpi-hub.api-keys.v1"})
    into = f"r{uuid.uuid4().hex[:8]}"
    settings = platform.namespace.settings
    with MongoClient(settings.mongo_url) as client:
        live = client[platform.namespace.name]
        wait_for(lambda: live["api_keys"].find_one({"_id": billing["key_id"]}), "the key's view")
        try:
            result = platform.run("replay", "--into", into, "--compare")
            assert result.returncode == 0, result.stdout + result.stderr[-3000:]
            assert json.loads(result.stdout.strip().splitlines()[-1])["differences"] == []
            rebuilt = client[into]
            key = rebuilt["api_keys"].find_one({"_id": billing["key_id"]})
            assert key is not None and key["role"] == "billing" and "key_hash" not in key
            assert rebuilt["audit"].count_documents({"aggregate_key": billing["key_id"]}) == 1
        finally:
            client.drop_database(into)
            drop_mysql_database(settings, into)
