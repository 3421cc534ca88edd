"""Tariffs between two platforms over HTTP, with the tokens the registration
handed out: the peer (NL-PEE) publishes a tariff at our Receiver, reads it
back with every number as it sent it, and withdraws it; tariffs our
operators publish through the ops API are served in our paginated Sender
list."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pymongo import MongoClient

from ocpi_hub.bootstrap import drop_mysql_database
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.tariffs import loads_exact
from tests.e2e.conftest import Linked, auth, ops_auth, sealed_token
from tests.e2e.test_walking_skeleton import wait_for
from tests.tariff_objects import tariff_json

RECEIVER = "/ocpi/emsp/2.2.1/tariffs/NL/PEE"
SENDER = "/ocpi/cpo/2.2.1/tariffs"
JSON = {"Content-Type": "application/json"}


def test_the_peer_puts_reads_and_deletes_its_tariff_at_our_receiver(linked: Linked) -> None:
    tariff_id = f"PT-{uuid.uuid4().hex[:6]}"
    url = f"{linked.us.base_url}{RECEIVER}/{tariff_id}"
    body = tariff_json(tariff_id, country_code="NL", party_id="PEE")
    headers = {**linked.peer_token, **JSON}
    with httpx.Client(headers=headers, timeout=10) as peer:
        created = peer.put(url, content=body)
        assert (created.status_code, created.json()["status_code"]) == (201, 1000), created.text

        # Read-your-writes: the GET right after the PUT sees it.
        got = peer.get(url)
        assert got.status_code == 200, got.text
        served = loads_exact(got.content)["data"]
        assert served == loads_exact(body)  # every number, numerically the same Decimal
        for text in ("0.3175", "0.123456789012345", "1.815", "22.5"):
            assert re.search(rf"[:\s]{re.escape(text)}[,}}\]]", got.text), text

        patched = peer.patch(url, json={"currency": "USD"})
        assert (patched.status_code, patched.json()["status_code"]) == (405, 2000)

        not_theirs = peer.put(
            f"{linked.us.base_url}/ocpi/emsp/2.2.1/tariffs/ZZ/HUB/{tariff_id}",
            content=tariff_json(tariff_id, country_code="ZZ", party_id="HUB"),
        )
        assert not_theirs.json()["status_code"] == 2001

        deleted = peer.delete(url)
        assert (deleted.status_code, deleted.json()["status_code"]) == (200, 1000)
        gone = peer.get(url)
        assert (gone.status_code, gone.json()["status_code"]) == (404, 2000)
        # A DELETE is no GET: the OCPI error at HTTP 200 (docs/adr/0039 §2).
        again = peer.delete(url)
        assert (again.status_code, again.json()["status_code"]) == (200, 2000)

    # Without a token nothing is served.
    assert httpx.get(url, timeout=10).status_code == 401


def _crawl(linked: Linked, first: str) -> tuple[list[dict[str, Any]], int]:
    """Follow the Sender list's Link headers; the items and the page count."""
    items: list[dict[str, Any]] = []
    pages = 0
    url: str | None = first
    while url:
        resp = httpx.get(url, headers=linked.peer_token, timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status_code"] == 1000
        pages += 1
        items += loads_exact(resp.content)["data"]
        match = re.match(r'<([^>]+)>; rel="next"', resp.headers.get("Link", ""))
        url = match.group(1) if match else None
    return items, pages


def test_our_ops_tariffs_are_served_in_our_sender_list(linked: Linked) -> None:
    run = uuid.uuid4().hex[:6]
    ids = [f"OPS-{run}-{i}" for i in range(5)]
    # Dated a little ahead of the clock (within OCPI_HUB_MAX_CLOCK_SKEW_S: a
    # date further ahead is refused, docs/adr/0027): a date_from window then
    # isolates them from other tests' tariffs.
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=120)
    stamps = [format_ocpi_datetime(base + timedelta(seconds=i)) for i in range(5)]
    for tariff_id, at in zip(ids, stamps, strict=True):
        body = tariff_json(tariff_id, country_code="ZZ", party_id="HUB", at=at)
        resp = httpx.put(
            f"{linked.us.base_url}/ops/tariffs/{tariff_id}",
            content=body,
            headers=ops_auth(linked.us.base_url, JSON),
            timeout=10,
        )
        assert resp.json()["status_code"] == 1000, resp.text
    first = f"{linked.us.base_url}{SENDER}?date_from={stamps[0]}&limit=2"

    def all_listed() -> tuple[list[dict[str, Any]], int] | None:
        items, pages = _crawl(linked, first)
        return (items, pages) if [t["id"] for t in items] == ids else None

    items, pages = wait_for(all_listed, "our five tariffs in the Sender list")
    assert pages == 3  # 2 + 2 + 1, following Link
    assert all(t["country_code"] == "ZZ" and t["party_id"] == "HUB" for t in items)
    assert items[0] == loads_exact(
        tariff_json(ids[0], country_code="ZZ", party_id="HUB", at=stamps[0])
    )
    head = httpx.get(first, headers=linked.peer_token, timeout=10)
    assert head.headers["X-Total-Count"] == "5"
    assert "X-Limit" in head.headers
    # Our ops read and a withdrawal, which leaves the list.
    ops = httpx.get(
        f"{linked.us.base_url}/ops/tariffs/{ids[0]}",
        timeout=10,
        headers=ops_auth(linked.us.base_url),
    )
    assert ops.json()["data"]["id"] == ids[0]
    assert (
        httpx.delete(
            f"{linked.us.base_url}/ops/tariffs/{ids[0]}",
            timeout=10,
            headers=ops_auth(linked.us.base_url),
        ).json()["status_code"]
        == 1000
    )
    wait_for(
        lambda: [t["id"] for t in _crawl(linked, first)[0]] == ids[1:], "the withdrawal listed"
    )


def test_replay_rebuilds_the_tariff_view(linked: Linked) -> None:
    """Replaced, stale, deleted: a replay from offset zero into fresh views
    ends with the same tariff documents as the live view."""
    run = uuid.uuid4().hex[:6]
    kept, gone = f"RP-{run}-KEPT", f"RP-{run}-GONE"
    headers = {**linked.peer_token, **JSON}
    base = f"{linked.us.base_url}{RECEIVER}"
    with httpx.Client(headers=headers, timeout=10) as peer:
        writes = [
            (kept, tariff_json(kept, country_code="NL", party_id="PEE", at="2026-03-01T10:00:00Z")),
            (kept, tariff_json(kept, country_code="NL", party_id="PEE", at="2026-03-01T11:00:00Z")),
            # an older copy arriving late: recorded, not applied
            (kept, tariff_json(kept, country_code="NL", party_id="PEE", at="2026-03-01T09:00:00Z")),
            (gone, tariff_json(gone, country_code="NL", party_id="PEE")),
        ]
        for tariff_id, body in writes:
            assert peer.put(f"{base}/{tariff_id}", content=body).json()["status_code"] == 1000
        assert peer.delete(f"{base}/{gone}").json()["status_code"] == 1000
        served = peer.get(f"{base}/{kept}")
        assert loads_exact(served.content)["data"]["last_updated"] == "2026-03-01T11:00:00Z"

    platform = linked.us
    into = f"{platform.namespace.name}_tariff_replay"
    # Wait for the projections to apply the last write (the DELETE) before comparing.
    with MongoClient(platform.env["OCPI_HUB_MONGO_URL"]) as client:
        live = client[platform.namespace.name]["tariffs"]

        def deleted() -> bool:
            doc = live.find_one({"_id": f"NL/PEE/{gone}".upper()})
            return doc is not None and doc["tariff"] is None

        wait_for(deleted, "the deletion in the live view")
        result = platform.run("replay", "--into", into, "--compare")
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            report = json.loads(result.stdout.strip().splitlines()[-1])
            assert report["differences"] == []
            rebuilt = client[into]["tariffs"]
            doc = rebuilt.find_one({"_id": f"NL/PEE/{kept}".upper()})
            assert doc is not None and doc["tariff"]["last_updated"] == "2026-03-01T11:00:00Z"
            tomb = rebuilt.find_one({"_id": f"NL/PEE/{gone}".upper()})
            assert tomb is not None and tomb["tariff"] is None
        finally:
            client.drop_database(into)
            drop_mysql_database(platform.namespace.settings, into)


def test_our_tariffs_are_pushed_to_the_peer_and_their_withdrawal_too(linked: Linked) -> None:
    """mod_tariffs, push model: a tariff our operators publish reaches the
    peer's Tariffs receiver by PUT, and its withdrawal by DELETE, through our
    push process (nobody in this test calls the peer)."""
    tariff_id = f"OT-{uuid.uuid4().hex[:6]}"
    ops = {**ops_auth(linked.us.base_url), **JSON}
    body = tariff_json(tariff_id, country_code="ZZ", party_id="HUB")
    made = httpx.put(f"{linked.us.base_url}/ops/tariffs/{tariff_id}", content=body, headers=ops)
    assert made.json()["status_code"] == 1000, made.text
    at_peer = f"{linked.peer.base_url}/ocpi/emsp/2.2.1/tariffs/ZZ/HUB/{tariff_id}"
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))

    def held() -> dict[str, Any] | None:
        resp = httpx.get(at_peer, headers=ours_at_peer, timeout=10)
        return loads_exact(resp.content)["data"] if resp.status_code == 200 else None

    pushed = wait_for(held, "our tariff at the peer's receiver")
    assert pushed == loads_exact(body)  # as we published it, every number exact

    gone = httpx.delete(f"{linked.us.base_url}/ops/tariffs/{tariff_id}", headers=ops)
    assert gone.json()["status_code"] == 1000, gone.text
    wait_for(
        lambda: httpx.get(at_peer, headers=ours_at_peer, timeout=10).status_code == 404,
        "the withdrawal at the peer",
    )


def test_a_pull_sync_of_the_peers_tariffs_crawls_every_page(linked: Linked) -> None:
    """``ocpi-hub partners sync-tariffs``: the peer's Tariffs Sender list,
    every page by its ``Link`` (page size 4 at the peer), through our write
    path; with ``--since`` only what changed."""
    tag = uuid.uuid4().hex[:4].upper()
    ids = [f"SYNCT-{tag}-{i}" for i in range(6)]
    ops = {**ops_auth(linked.peer.base_url), **JSON}
    for i, tariff_id in enumerate(ids):
        body = tariff_json(
            tariff_id, country_code="NL", party_id="PEE", at=f"2026-04-01T10:0{i}:00Z"
        )
        made = httpx.put(
            f"{linked.peer.base_url}/ops/tariffs/{tariff_id}", content=body, headers=ops
        )
        assert made.json()["status_code"] == 1000, made.text
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))
    peer_list = f"{linked.peer.base_url}{SENDER}"
    wait_for(
        lambda: (
            httpx.get(
                peer_list, params={"date_from": "2026-04-01T10:00:00Z"}, headers=ours_at_peer
            ).headers.get("X-Total-Count")
            == str(len(ids))
        ),
        "the peer's own view to hold the new tariffs",
    )

    full = linked.us.run("partners", "sync-tariffs", linked.peer_id)
    assert full.returncode == 0, full.stdout + full.stderr
    report = json.loads(full.stdout.strip().splitlines()[-1])
    assert (report["module"], report["skipped"]) == ("tariffs", 0)
    assert report["recorded"] >= len(ids)
    assert report["pages"] >= 2

    delta = linked.us.run(
        "partners", "sync-tariffs", linked.peer_id, "--since", "2026-04-01T10:03:00Z"
    )
    assert delta.returncode == 0, delta.stdout + delta.stderr
    assert json.loads(delta.stdout.strip().splitlines()[-1])["recorded"] == 3  # 10:03..10:05
