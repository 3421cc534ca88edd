"""Tokens between two platforms over HTTP: the peer (NL-PEE, as eMSP) issues
a token through its ops API and its push process PUTs it to our Tokens
receiver with the token the registration gave it; it invalidates it with a
PATCH. Ours reach the peer the same way. A driver then
presents one of its tokens at one of our chargers: ``POST /ops/authorize``
finds whitelist NEVER and asks the peer's real-time authorize endpoint,
which answers from its own tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx

from tests.e2e.conftest import Linked, auth, ops_auth, sealed_token
from tests.e2e.test_charger_path import _events
from tests.e2e.test_walking_skeleton import wait_for
from tests.token_objects import token

RECEIVER = "/ocpi/cpo/2.2.1/tokens/NL/PEE"


def peer_token(uid: str, **kw: Any) -> dict[str, Any]:
    return token(uid, country_code="NL", party_id="PEE", **kw)


def _ok(resp: httpx.Response, http: int = 200) -> dict[str, Any]:
    assert resp.status_code == http, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status_code"] == 1000, body
    return body


def authorize_at_us(linked: Linked, uid: str, location_id: str) -> dict[str, Any]:
    resp = httpx.post(
        f"{linked.us.base_url}/ops/authorize",
        json={"uid": uid, "location_id": location_id, "evse_uids": ["E1"]},
        headers=ops_auth(
            f"{linked.us.base_url}/ops/authorize", {"X-Correlation-ID": f"charger-{uid}"}
        ),
        timeout=20,
    )
    data: dict[str, Any] = _ok(resp)["data"]
    return data


def test_the_peer_pushes_a_token_we_read_it_and_it_is_invalidated(linked: Linked) -> None:
    uid = f"C{uuid.uuid4().hex[:8].upper()}"
    _ok(
        httpx.put(
            f"{linked.peer.base_url}/ops/tokens/{uid}",
            json=peer_token(uid),
            headers=ops_auth(linked.peer.base_url),
        ),
        201,
    )
    # The peer's push process PUTs it to our receiver (mod_tokens push model).
    url = f"{linked.us.base_url}{RECEIVER}/{uid}"

    def held() -> dict[str, Any] | None:
        resp = httpx.get(url, headers=linked.peer_token, timeout=10)
        return resp.json().get("data") if resp.status_code == 200 else None

    assert wait_for(held, "the peer's token pushed to us") == peer_token(uid)
    # A PUT of the same token by the peer itself replaces it (200, not 201).
    _ok(httpx.put(url, json=peer_token(uid), headers=linked.peer_token), 200)

    patch = {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}
    _ok(httpx.patch(url, json=patch, headers=linked.peer_token))
    assert _ok(httpx.get(url, headers=linked.peer_token))["data"]["valid"] is False

    # Another party's tokens are not the peer's to write.
    resp = httpx.put(
        f"{linked.us.base_url}/ocpi/cpo/2.2.1/tokens/ZZ/HUB/{uid}",
        json=token(uid, country_code="ZZ", party_id="HUB"),
        headers=linked.peer_token,
    )
    assert resp.json()["status_code"] == 2001
    missing = httpx.get(f"{linked.us.base_url}{RECEIVER}/NOPE{uid}", headers=linked.peer_token)
    assert (missing.status_code, missing.json()["status_code"]) == (404, 2004)

    # The peer lists its tokens on its Sender interface for us.
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))
    listed = _ok(httpx.get(f"{linked.peer.base_url}/ocpi/emsp/2.2.1/tokens", headers=ours_at_peer))
    assert uid in [t["uid"] for t in listed["data"]]


def test_a_never_token_is_authorized_in_real_time_by_the_peer(linked: Linked) -> None:
    uid = f"N{uuid.uuid4().hex[:8].upper()}"
    issued = peer_token(uid, whitelist="NEVER")
    _ok(
        httpx.put(
            f"{linked.peer.base_url}/ops/tokens/{uid}",
            json=issued,
            headers=ops_auth(linked.peer.base_url),
        ),
        201,
    )
    wait_for(
        lambda: (
            httpx.get(
                f"{linked.us.base_url}{RECEIVER}/{uid}", headers=linked.peer_token, timeout=10
            ).status_code
            == 200
        ),
        "the peer's token pushed to us",
    )

    decided = authorize_at_us(linked, uid, "LOC1")
    assert decided["source"] == "real_time"
    assert (decided["authorized"], decided["allowed"]) == (True, "ALLOWED")
    assert decided["partner_id"] == linked.peer_id
    assert decided["location"] == {"location_id": "LOC1", "evse_uids": ["E1"]}
    reference = decided["authorization_reference"]
    assert 0 < len(reference) <= 36

    again = authorize_at_us(linked, uid, "LOC1")
    assert (again["source"], again["authorization_reference"]) == ("cache", reference)

    # The peer blocks its token; at another location (not cached) we hear it.
    blocked = {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}
    _ok(
        httpx.patch(
            f"{linked.peer.base_url}/ops/tokens/{uid}",
            json=blocked,
            headers=ops_auth(linked.peer.base_url),
        )
    )
    decided = authorize_at_us(linked, uid, "LOC2")
    assert (decided["source"], decided["authorized"], decided["allowed"]) == (
        "real_time",
        False,
        "BLOCKED",
    )
    assert decided["authorization_reference"] != reference

    # The peer recorded each real-time call it answered (before answering),
    # under our correlation id: the two we did not answer from the cache.
    def ours(event: dict[str, Any]) -> bool:
        return bool(
            event.get("event_type") == "TokenAuthorizationDecided"
            and event.get("payload", {}).get("uid") == uid
            and event.get("correlation_id") == f"charger-{uid}"
        )

    calls = asyncio.run(_events(linked.peer, "ocpi.tokens.v1", ours))
    assert [c["payload"]["authorization_reference"] for c in calls] == [
        reference,
        decided["authorization_reference"],
    ]


def test_an_unknown_token_is_404_2004_at_the_peer_and_unknown_at_us(linked: Linked) -> None:
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))
    resp = httpx.post(
        f"{linked.peer.base_url}/ocpi/emsp/2.2.1/tokens/NOPE-{uuid.uuid4().hex[:6]}/authorize",
        json={"location_id": "LOC1"},
        headers=ours_at_peer,
    )
    assert resp.status_code == 404
    assert resp.json()["status_code"] == 2004 and "data" not in resp.json()

    decided = authorize_at_us(linked, f"NOPE-{uuid.uuid4().hex[:6]}", "LOC1")
    assert (decided["authorized"], decided["source"]) == (False, "unknown_token")


def test_our_own_token_at_our_charger_is_decided_by_us(linked: Linked) -> None:
    uid = f"O{uuid.uuid4().hex[:8].upper()}"
    ours = token(uid, country_code="ZZ", party_id="HUB", whitelist="NEVER")
    _ok(
        httpx.put(
            f"{linked.us.base_url}/ops/tokens/{uid}",
            json=ours,
            headers=ops_auth(linked.us.base_url),
        ),
        201,
    )
    # A GET waits for our own write to reach the view (the authorization
    # reads the view as it is: a charger sees a token long after it is issued).
    assert (
        _ok(
            httpx.get(
                f"{linked.us.base_url}/ops/tokens/{uid}",
                timeout=20,
                headers=ops_auth(linked.us.base_url),
            )
        )["data"]
        == ours
    )
    decided = authorize_at_us(linked, uid, "LOC1")
    assert (decided["source"], decided["allowed"]) == ("own_token", "ALLOWED")
    assert decided["authorization_reference"]


def test_partner_tokens_never_reach_the_logs(linked: Linked) -> None:
    raw = {sealed_token(linked.peer, linked.us_id), sealed_token(linked.us, linked.peer_id)}
    secrets = raw | {base64.b64encode(s.encode()).decode() for s in raw}
    for platform in (linked.us, linked.peer):
        for name in ("api.log", "projections.log"):
            text = (platform.logs / name).read_text(errors="replace")
            assert not any(s in text for s in secrets), f"a token in {platform.base_url} {name}"


def test_our_tokens_are_pushed_to_the_peer_and_their_changes_too(linked: Linked) -> None:
    """mod_tokens, push model: a token our operators issue reaches the peer's
    Tokens receiver (its CPO role) by PUT, and a change by PATCH, through our
    push process; the peer can then decide it from its own copy."""
    uid = f"P{uuid.uuid4().hex[:8].upper()}"
    ours = token(uid, country_code="ZZ", party_id="HUB", whitelist="ALLOWED")
    ops = ops_auth(linked.us.base_url)
    _ok(httpx.put(f"{linked.us.base_url}/ops/tokens/{uid}", json=ours, headers=ops), 201)
    at_peer = f"{linked.peer.base_url}/ocpi/cpo/2.2.1/tokens/ZZ/HUB/{uid}"
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))

    def held(valid: bool) -> dict[str, Any] | None:
        resp = httpx.get(at_peer, headers=ours_at_peer, timeout=10)
        data = resp.json().get("data") if resp.status_code == 200 else None
        return data if data and data["valid"] is valid else None

    assert wait_for(lambda: held(True), "our token at the peer's receiver") == ours
    patch = {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}
    _ok(httpx.patch(f"{linked.us.base_url}/ops/tokens/{uid}", json=patch, headers=ops))
    assert wait_for(lambda: held(False), "the change at the peer")["last_updated"] == (
        "2026-03-02T00:00:00Z"
    )


def test_a_pull_sync_of_the_peers_tokens_crawls_every_page(linked: Linked) -> None:
    """``ocpi-hub partners sync-tokens``: the peer's Tokens Sender list (its
    eMSP role), every page by its ``Link``, through our write path."""
    tag = uuid.uuid4().hex[:4].upper()
    uids = [f"SY{tag}{i}" for i in range(5)]
    for uid in uids:
        _ok(
            httpx.put(
                f"{linked.peer.base_url}/ops/tokens/{uid}",
                json=peer_token(uid, at="2026-05-01T10:00:00Z"),
                headers=ops_auth(linked.peer.base_url),
            ),
            201,
        )
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))
    peer_list = f"{linked.peer.base_url}/ocpi/emsp/2.2.1/tokens"
    wait_for(
        lambda: (
            httpx.get(
                peer_list, params={"date_from": "2026-05-01T10:00:00Z"}, headers=ours_at_peer
            ).headers.get("X-Total-Count")
            == str(len(uids))
        ),
        "the peer's own view to hold the new tokens",
    )
    pulled = linked.us.run(
        "partners", "sync-tokens", linked.peer_id, "--since", "2026-05-01T10:00:00Z"
    )
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    report = json.loads(pulled.stdout.strip().splitlines()[-1])
    assert (report["module"], report["recorded"], report["skipped"]) == ("tokens", 5, 0)
    assert report["pages"] >= 2  # page size 4 at the peer
