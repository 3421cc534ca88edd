"""Locations between two platforms, both roles at once: the peer (NL-PEE)
runs its own locations through its ops API; they reach us by push, and by a
pull sync that crawls its paginated Sender list; our ops view shows them.
Every request between the two goes over HTTP with the tokens the
registration handed out."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import Linked, auth, ops_auth, sealed_token
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import connector, evse, location

T1 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
OURS_AT_PEER = "/ocpi/emsp/2.2.1/locations/NL/PEE"


def stamp(seconds: float) -> str:
    return (T1 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def peer_site(loc: str, at: float, uids: tuple[str, ...] = ("E1",)) -> dict[str, Any]:
    return location(
        loc,
        country_code="NL",
        party_id="PEE",
        at=stamp(at),
        evses=[evse(uid, at=stamp(at)) for uid in uids],
    )


def ops_put(linked: Linked, loc: str, body: dict[str, Any]) -> None:
    resp = httpx.put(
        f"{linked.peer.base_url}/ops/locations/{loc}",
        json=body,
        timeout=10,
        headers=ops_auth(linked.peer.base_url),
    )
    assert resp.json()["status_code"] == 1000, resp.text


def at_us(linked: Linked, path: str) -> dict[str, Any] | None:
    resp = httpx.get(f"{linked.us.base_url}{OURS_AT_PEER}/{path}", headers=linked.peer_token)
    return resp.json().get("data") if resp.status_code == 200 else None


def test_the_peer_pushes_its_locations_and_status_changes_to_us(linked: Linked) -> None:
    loc = f"PUSH-{uuid.uuid4().hex[:6]}"
    ops_put(linked, loc, peer_site(loc, 0, ("E1", "E2")))
    pushed = wait_for(lambda: at_us(linked, loc), "the pushed location at our receiver")
    assert [e["uid"] for e in pushed["evses"]] == ["E1", "E2"]

    peer = linked.peer.base_url
    changes = [
        ("PATCH", f"{loc}/E1", {"status": "CHARGING", "last_updated": stamp(10)}),
        ("PUT", f"{loc}/E2/2", connector("2", at=stamp(11))),
        ("PATCH", f"{loc}/E1", {"status": "AVAILABLE", "last_updated": stamp(12)}),
        ("PATCH", f"{loc}/E1", {"status": "OUTOFORDER", "last_updated": stamp(13)}),
        ("PATCH", loc, {"name": "Peer depot", "last_updated": stamp(14)}),
    ]
    for method, path, body in changes:
        resp = httpx.request(
            method,
            f"{peer}/ops/locations/{path}",
            json=body,
            timeout=10,
            headers=ops_auth(peer),
        )
        assert resp.json()["status_code"] == 1000, resp.text

    def arrived() -> dict[str, Any] | None:
        got = at_us(linked, loc)
        return got if got and got.get("name") == "Peer depot" else None

    final = wait_for(arrived, "every change pushed, in order")
    e1, e2 = final["evses"]
    assert e1["status"] == "OUTOFORDER"  # the last of three status changes, not an earlier one
    assert [c["id"] for c in e2["connectors"]] == ["1", "2"]
    assert final["last_updated"] == stamp(14)
    # Our ops view (MySQL) shows the peer's EVSE with its status.
    rows = wait_for(
        lambda: [
            r
            for r in httpx.get(
                f"{linked.us.base_url}/ops/evses",
                params={"location_id": loc},
                headers=ops_auth(linked.us.base_url),
            ).json()["data"]
            if r["evse_uid"] == "E1" and r["status"] == "OUTOFORDER"
        ],
        "the peer's EVSE in our ops view",
    )
    assert rows[0]["party_id"] == "PEE"


def test_the_peers_sender_list_is_paginated(linked: Linked) -> None:
    locs = [f"PAGE-{i:02}-{uuid.uuid4().hex[:4]}" for i in range(6)]
    for i, loc in enumerate(locs):
        ops_put(linked, loc, peer_site(loc, 100 + i))
    our_token = sealed_token(linked.us, linked.peer_id)  # what we present to the peer
    url = f"{linked.peer.base_url}/ocpi/cpo/2.2.1/locations"
    window = {"date_from": stamp(100), "date_to": stamp(106)}

    def listed() -> list[str] | None:
        ids: list[str] = []
        next_url: str | None = url
        params: dict[str, str] | None = window
        pages = 0
        while next_url:
            resp = httpx.get(next_url, params=params, headers=auth(our_token), timeout=10)
            assert resp.status_code == 200 and resp.json()["status_code"] == 1000, resp.text
            assert resp.headers["X-Limit"] == "4"
            total = int(resp.headers["X-Total-Count"])
            ids += [item["id"] for item in resp.json()["data"]]
            assert resp.headers["OCPI-from-party-id"] == "PEE"  # routing headers, swapped
            assert resp.headers["OCPI-to-party-id"] == "HUB"
            link = resp.links.get("next")
            next_url, params = (link["url"] if link else None), None
            pages += 1
        return ids if total == len(locs) and pages == 2 else None

    assert wait_for(listed, "six locations in two pages") == locs  # oldest first
    one = httpx.get(f"{url}/{locs[0]}/E1/1", headers=auth(our_token)).json()
    assert one["data"]["id"] == "1"
    assert httpx.get(url).status_code == 401  # no token, nothing listed


def test_a_pull_sync_crawls_every_page_and_a_delta_sync_only_the_changes(linked: Linked) -> None:
    tag = uuid.uuid4().hex[:4]
    locs = [f"SYNC-{tag}-{i:02}" for i in range(9)]
    for i, loc in enumerate(locs):
        ops_put(linked, loc, peer_site(loc, 1000 + i))
    peer_list = f"{linked.peer.base_url}/ocpi/cpo/2.2.1/locations"
    our_token = auth(sealed_token(linked.us, linked.peer_id))
    wait_for(
        lambda: (
            httpx.get(peer_list, params={"date_from": stamp(1000)}, headers=our_token).headers[
                "X-Total-Count"
            ]
            == str(len(locs))
        ),
        "the peer's own view to hold the new locations",
    )

    full = linked.us.run("partners", "sync-locations", linked.peer_id)
    assert full.returncode == 0, full.stdout + full.stderr
    report = json.loads(full.stdout.strip().splitlines()[-1])
    assert report["skipped"] == 0
    assert report["recorded"] >= len(locs)
    assert report["pages"] >= 3  # page size 4 at the peer
    for loc in locs:
        wait_for(lambda loc=loc: at_us(linked, loc), f"{loc} at our receiver")  # type: ignore[misc]

    since = stamp(1005)
    delta = linked.us.run("partners", "sync-locations", linked.peer_id, "--since", since)
    assert delta.returncode == 0, delta.stdout + delta.stderr
    report = json.loads(delta.stdout.strip().splitlines()[-1])
    assert report["recorded"] == 4  # 1005..1008: date_from is inclusive
    assert report["pages"] == 1

    unknown = linked.us.run("partners", "sync-locations", "NOBODY")
    assert unknown.returncode == 1
    assert "not a registered partner" in unknown.stderr
