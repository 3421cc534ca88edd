"""A partner's location and EVSE status updates, end to end on the real
services: HTTP → Kafka → Faust → MongoDB view and MySQL rows → API reads;
then a replay from offset zero rebuilds views equal to the live ones.

The partner is the peer platform (NL-PEE), registered with us; its requests
here are made directly with its token, as any OCPI client would."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pymongo import MongoClient

from schemas.events.locations import location_key
from tests.e2e.conftest import Linked, ops_auth
from tests.ocpi_objects import evse, location

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def stamp(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


RECEIVER = "/ocpi/emsp/2.2.1/locations/NL/PEE"


def client_of(linked: Linked) -> httpx.Client:
    """An HTTP client of our platform with the peer's token."""
    return httpx.Client(base_url=linked.us.base_url, timeout=10, headers=linked.peer_token)


def put_site(client: httpx.Client, loc: str, uids: list[str], at: int) -> None:
    body = location(
        loc,
        country_code="NL",
        party_id="PEE",
        at=stamp(at),
        evses=[evse(uid, at=stamp(at)) for uid in uids],
    )
    resp = client.put(f"{RECEIVER}/{loc}", json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status_code"] == 1000


def patch(client: httpx.Client, loc: str, evse_uid: str, status: str, at: int) -> httpx.Response:
    return client.patch(
        f"{RECEIVER}/{loc}/{evse_uid}",
        json={"status": status, "last_updated": stamp(at)},
        headers={"X-Request-ID": str(uuid.uuid4()), "X-Correlation-ID": f"corr-{loc}-{at}"},
    )


def visible(client: httpx.Client, loc: str) -> dict[str, Any] | None:
    resp = client.get(f"{RECEIVER}/{loc}")
    if resp.status_code == 404:
        assert resp.json()["status_code"] == 2003
        return None
    assert resp.status_code == 200
    data: dict[str, Any] = resp.json()["data"]
    return data


def statuses(doc: dict[str, Any] | None) -> dict[str, str]:
    return {e["uid"]: e["status"] for e in (doc or {}).get("evses", [])}


def wait_visible(client: httpx.Client, loc: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(lambda: visible(client, loc), f"location {loc} in the view")
    return found


def test_status_update_flows_to_both_views(linked: Linked) -> None:
    loc = f"LOC-{uuid.uuid4().hex[:8]}"
    with client_of(linked) as client:
        assert visible(client, loc) is None
        put_site(client, loc, ["EVSE-1"], 0)
        wait_visible(client, loc)
        resp = patch(client, loc, "EVSE-1", "CHARGING", 1)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status_code"] == 1000
        doc = wait_for(
            lambda: (
                statuses(visible(client, loc)) == {"EVSE-1": "CHARGING"} and visible(client, loc)
            ),
            "the status in the location view",
        )
        assert doc["last_updated"] == stamp(1)  # an EVSE write bumps its location

        # The shown status went through the processor: its resolution is in
        # the view's state (a PATCH alone would show the same status).
        def resolved() -> Any:
            with MongoClient(linked.us.env["OCPI_HUB_MONGO_URL"]) as mongo:
                doc = mongo[linked.us.namespace.name]["locations"].find_one(
                    {"_id": location_key("NL", "PEE", loc)}
                )
            return doc and doc["state"]["statuses"].get("EVSE-1", {}).get("status") == "CHARGING"

        wait_for(resolved, "the processor's resolved status in the view")

        one = client.get(f"{RECEIVER}/{loc}/EVSE-1").json()["data"]
        assert (one["uid"], one["status"], one["last_updated"]) == ("EVSE-1", "CHARGING", stamp(1))

        def evse_rows() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = client.get(
                "/ops/evses",
                params={"location_id": loc},
                headers=ops_auth(linked.us.base_url),
            ).json()["data"]
            return rows

        [row] = wait_for(
            lambda: [r for r in evse_rows() if r["status"] == "CHARGING"], "the MySQL EVSE row"
        )
        assert (row["evse_uid"], row["country_code"], row["party_id"]) == ("EVSE-1", "NL", "PEE")


def test_a_stale_report_is_recorded_but_does_not_win(linked: Linked) -> None:
    loc = f"LOC-{uuid.uuid4().hex[:8]}"
    with client_of(linked) as client:
        put_site(client, loc, ["E1", "E2"], 100)
        wait_visible(client, loc)
        assert patch(client, loc, "E1", "OUTOFORDER", 50).json()["status_code"] == 1000  # older
        assert patch(client, loc, "E2", "BLOCKED", 160).json()["status_code"] == 1000  # marker
        doc = wait_for(
            lambda: (d := visible(client, loc)) and statuses(d)["E2"] == "BLOCKED" and d,
            "the marker in the view",
        )
        assert statuses(doc) == {"E1": "AVAILABLE", "E2": "BLOCKED"}


def test_readiness_reports_every_dependency(linked: Linked) -> None:
    body = httpx.get(f"{linked.us.base_url}/readyz", timeout=10).json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"kafka", "mongodb", "mysql", "redis"}
    assert all(check["ok"] for check in body["checks"].values())


def test_replay_rebuilds_views_equal_to_the_live_ones(linked: Linked) -> None:
    platform = linked.us
    locs = [f"LOC-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    sequence = ["AVAILABLE", "CHARGING", "BLOCKED", "OUTOFORDER", "AVAILABLE", "RESERVED"]
    with client_of(linked) as client:
        for loc in locs:
            put_site(client, loc, ["E0", "E1", "E2"], 900)
        for loc in locs:
            wait_visible(client, loc)
        for i, status in enumerate(sequence):
            for j, loc in enumerate(locs):
                assert patch(client, loc, f"E{j % 3}", status, 1000 + i).status_code == 200
                # the same PATCH delivered twice by a retrying partner
                assert patch(client, loc, f"E{j % 3}", status, 1000 + i).status_code == 200
        expected = {loc: sequence[-1] for loc in locs}
        wait_for(
            lambda: all(
                statuses(visible(client, loc)).get(f"E{j % 3}") == expected[loc]
                for j, loc in enumerate(locs)
            ),
            "the live views to catch up",
        )
    into = f"{platform.namespace.name}_replay"
    result = platform.run("replay", "--into", into, "--compare")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["differences"] == []
    assert report["events"] >= len(sequence) * len(locs)

    # An in-place rebuild (wipe, then replay) ends where the live views were.
    with client_of(linked) as client:
        before = {loc: visible(client, loc) for loc in locs}
    result = platform.run("replay", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    with client_of(linked) as client:
        assert {loc: visible(client, loc) for loc in locs} == before


def test_the_api_refuses_bad_input_with_an_ocpi_error(linked: Linked) -> None:
    loc = f"LOC-{uuid.uuid4().hex[:8]}"
    with client_of(linked) as client:
        put_site(client, loc, ["E1"], 200)
        wait_visible(client, loc)
        refused = [
            client.patch(f"{RECEIVER}/{loc}/E1", json={"status": "CHARGING"}),  # no last_updated
            client.put(
                f"{RECEIVER}/{loc}", json=location("OTHER", country_code="NL", party_id="PEE")
            ),
            client.put(
                f"/ocpi/emsp/2.2.1/locations/DE/XYZ/{loc}",  # another party's ids
                json=location(loc, country_code="DE", party_id="XYZ"),
            ),
        ]
        for resp in refused:
            assert resp.status_code == 200  # valid JSON: an OCPI error, not an HTTP one
            assert resp.json()["status_code"] == 2001, resp.text
        without_token = httpx.patch(
            f"{linked.us.base_url}{RECEIVER}/{loc}/E1",
            json={"status": "CHARGING", "last_updated": stamp(300)},
        )
        assert without_token.status_code == 401
        time.sleep(1)
        assert statuses(visible(client, loc)) == {"E1": "AVAILABLE"}
        assert client.get(f"/ocpi/emsp/2.2.1/locations/DE/XYZ/{loc}").json()["status_code"] == 2001
