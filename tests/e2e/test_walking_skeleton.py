"""A partner's EVSE status update, end to end on the real services:
HTTP → Kafka → Faust → MongoDB view and MySQL row → API reads; then a replay
from offset zero rebuilds views equal to the live ones."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import Platform

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


def patch(client: httpx.Client, loc: str, evse: str, status: str, at: int) -> httpx.Response:
    return client.patch(
        f"/ocpi/emsp/2.2.1/locations/NL/ABC/{loc}/{evse}",
        json={"status": status, "last_updated": stamp(at)},
        headers={"X-Request-ID": str(uuid.uuid4()), "X-Correlation-ID": f"corr-{loc}-{at}"},
    )


def location(client: httpx.Client, loc: str) -> dict[str, Any] | None:
    resp = client.get(f"/ocpi/emsp/2.2.1/locations/NL/ABC/{loc}")
    if resp.status_code == 404:
        assert resp.json()["status_code"] == 2003
        return None
    assert resp.status_code == 200
    data: dict[str, Any] = resp.json()["data"]
    return data


def statuses(doc: dict[str, Any] | None) -> dict[str, str]:
    return {e["uid"]: e["status"] for e in (doc or {}).get("evses", [])}


def test_status_update_flows_to_both_views(platform: Platform) -> None:
    loc = f"LOC-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=platform.base_url, timeout=10) as client:
        assert location(client, loc) is None
        resp = patch(client, loc, "EVSE-1", "CHARGING", 0)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status_code"] == 1000
        doc = wait_for(lambda: location(client, loc), "the location view")
        assert statuses(doc) == {"EVSE-1": "CHARGING"}
        assert doc["last_updated"] == stamp(0)

        evse = client.get(f"/ocpi/emsp/2.2.1/locations/NL/ABC/{loc}/EVSE-1").json()["data"]
        assert evse == {"uid": "EVSE-1", "status": "CHARGING", "last_updated": stamp(0)}

        def charger_row() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = client.get(
                "/ops/chargers", params={"location_id": loc}
            ).json()["data"]
            return rows

        [row] = wait_for(charger_row, "the MySQL charger row")
        assert (row["evse_uid"], row["status"]) == ("EVSE-1", "CHARGING")


def test_a_stale_report_is_recorded_but_does_not_win(platform: Platform) -> None:
    loc = f"LOC-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=platform.base_url, timeout=10) as client:
        assert patch(client, loc, "E1", "AVAILABLE", 100).status_code == 200
        assert patch(client, loc, "E1", "OUTOFORDER", 50).status_code == 200  # older
        assert patch(client, loc, "E2", "BLOCKED", 60).status_code == 200  # marker after it
        doc = wait_for(
            lambda: (d := location(client, loc)) and len(d["evses"]) == 2 and d,
            "both EVSEs in the view",
        )
        assert statuses(doc) == {"E1": "AVAILABLE", "E2": "BLOCKED"}


def test_readiness_reports_every_dependency(platform: Platform) -> None:
    body = httpx.get(f"{platform.base_url}/readyz", timeout=10).json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"kafka", "mongodb", "mysql", "redis"}
    assert all(check["ok"] for check in body["checks"].values())


def test_replay_rebuilds_views_equal_to_the_live_ones(platform: Platform) -> None:
    locs = [f"LOC-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    sequence = ["AVAILABLE", "CHARGING", "BLOCKED", "OUTOFORDER", "AVAILABLE", "RESERVED"]
    with httpx.Client(base_url=platform.base_url, timeout=10) as client:
        for i, status in enumerate(sequence):
            for j, loc in enumerate(locs):
                assert patch(client, loc, f"E{j % 3}", status, 1000 + i).status_code == 200
                # the same PATCH delivered twice by a retrying partner
                assert patch(client, loc, f"E{j % 3}", status, 1000 + i).status_code == 200
        expected = {loc: sequence[-1] for loc in locs}
        wait_for(
            lambda: all(
                statuses(location(client, loc)).get(f"E{j % 3}") == expected[loc]
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
    with httpx.Client(base_url=platform.base_url, timeout=10) as client:
        before = {loc: location(client, loc) for loc in locs}
    result = platform.run("replay", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    with httpx.Client(base_url=platform.base_url, timeout=10) as client:
        assert {loc: location(client, loc) for loc in locs} == before


def test_the_api_refuses_bad_input_with_an_ocpi_error(platform: Platform) -> None:
    loc = f"LOC-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=platform.base_url, timeout=10) as client:
        resp = client.patch(
            f"/ocpi/emsp/2.2.1/locations/NL/ABC/{loc}/E1", json={"status": "CHARGING"}
        )
        assert resp.status_code == 200  # valid JSON: an OCPI error, not an HTTP one
        assert resp.json()["status_code"] == 2001
        time.sleep(1)
        assert location(client, loc) is None
