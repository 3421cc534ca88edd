"""Two of each process, and one of each killed mid-load, losing nothing.

A platform runs with two API workers behind one port, two processors workers
and two projections consumers (docs/scale-out.md). While EVSE status PATCHes
stream in through the ops API, one API worker, one processors worker and one
projections consumer are killed with SIGKILL, one after the other. Then:

* every update the API acknowledged (HTTP 200, OCPI 1000) is in the log
  exactly once, and no unacknowledged one more than once;
* the MongoDB view and the MySQL EVSE rows end at the latest update the
  log holds for every EVSE: the surviving instances took over the partitions
  of the killed ones, and the API worker was replaced.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import LocationObjectPatched
from schemas.ocpi.common import format_ocpi_datetime, parse_ocpi_datetime
from schemas.topics import LOCATIONS
from tests.conftest import fresh_namespace
from tests.e2e.conftest import Platform, ops_auth, running_platform
from tests.ledger import Shown, evses_shown, read_topic
from tests.ocpi_objects import connector, evse, location

LOCATIONS_N = 12
EVSES = 3
WORKERS = 8
LOAD_S = 30.0
# Who is killed, and when (seconds into the load).
KILLS = ((6.0, "api worker"), (12.0, "processors-2"), (18.0, "projections-2"))
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

Update = tuple[str, str, str]  # location id, EVSE uid, last_updated


@pytest.fixture(scope="module")
def scaled(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with (
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            tmp_path_factory.mktemp("scaled-logs"),
            scale=2,
            # A holder that dies is recovered sooner than in production.
            produce_timeout_s=3.0,
            write_hold_ttl_s=6.0,
            write_fate_window_s=4.0,
        ) as p,
    ):
        yield p


def api_workers(platform: Platform) -> list[int]:
    """The pids of the uvicorn workers under the API supervisor."""
    parent = platform.processes["api"].pid
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces, so split after ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
            continue
        # Spawned workers run multiprocessing's spawn_main; the resource
        # tracker beside them does not serve.
        cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline:
            children.append(int(entry.name))
    return children


def wait_for_log_line(path: Path, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise AssertionError(f"no {needle!r} in {path}")


def ids(i: int) -> tuple[str, str]:
    location_id = f"SCALE-{i % LOCATIONS_N:02d}"
    return location_id, f"{location_id}-E{(i // LOCATIONS_N) % EVSES}"


async def load(platform: Platform) -> tuple[list[Update], list[Update], Counter[str]]:
    """PATCHes for LOAD_S seconds from WORKERS clients (each owns some EVSEs,
    so per EVSE the stamps go out in order) while the kills happen."""
    acknowledged: list[Update] = []
    unanswered: list[Update] = []
    outcomes: Counter[str] = Counter()
    stop_at = time.monotonic() + LOAD_S
    counter = 0

    async def worker(w: int) -> None:
        nonlocal counter
        async with httpx.AsyncClient(
            base_url=platform.base_url, timeout=15, headers=ops_auth(platform.base_url)
        ) as client:
            slot = w
            while time.monotonic() < stop_at:
                location_id, evse_uid = ids(slot)
                slot += WORKERS
                counter += 1
                stamp = format_ocpi_datetime(T0 + timedelta(milliseconds=counter))
                body = {"status": ("CHARGING", "AVAILABLE")[counter % 2], "last_updated": stamp}
                update = (location_id, evse_uid, stamp)
                try:
                    resp = await client.patch(f"/ops/locations/{location_id}/{evse_uid}", json=body)
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
                    unanswered.append(update)
                    await asyncio.sleep(0.05)
                    continue
                code = resp.json().get("status_code") if resp.status_code == 200 else None
                outcomes[f"{resp.status_code}/{code}"] += 1
                if code == 1000:
                    acknowledged.append(update)
                else:
                    unanswered.append(update)
                    await asyncio.sleep(0.05)

    async def killer() -> None:
        started = time.monotonic()
        for at, who in KILLS:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            if who == "api worker":
                os.kill(api_workers(platform)[0], signal.SIGKILL)
            else:
                platform.kill(who)

    await asyncio.gather(killer(), *(worker(w) for w in range(WORKERS)))
    return acknowledged, unanswered, outcomes


async def logged_patches(platform: Platform) -> Counter[Update]:
    """Every EVSE PATCH of our SCALE- locations the log holds, counted."""
    settings = platform.namespace.settings
    events = await read_topic(settings.kafka_bootstrap, settings.topic(LOCATIONS.name), LOCATIONS)
    return Counter(
        (e.payload.location_id, e.payload.evse_uid, format_ocpi_datetime(e.payload.last_updated))
        for e in events
        if isinstance(e, LocationObjectPatched) and e.payload.evse_uid
    )


def shown(platform: Platform) -> tuple[dict[str, str], dict[str, str]]:
    """EVSE uid (upper) -> last_updated, in the MongoDB view and the MySQL rows."""
    settings = platform.namespace.settings
    views = evses_shown(
        settings.mongo_url,
        settings.mongo_db,
        settings.mysql_url,
        [f"ZZ/HUB/SCALE-{n:02d}" for n in range(LOCATIONS_N)],
    )

    def by_uid(shown: dict[str, Shown]) -> dict[str, str]:
        return {key.rsplit("/", 1)[1]: s.last_updated for key, s in shown.items()}

    return by_uid(views.mongo), by_uid(views.mysql)


def test_killing_one_of_each_loses_no_acknowledged_update(scaled: Platform) -> None:
    platform = scaled
    wait_for_log_line(platform.logs / "processors-2.log", "Worker ready", 90)
    assert len(api_workers(platform)) == 2
    with httpx.Client(
        base_url=platform.base_url, timeout=15, headers=ops_auth(platform.base_url)
    ) as client:
        for n in range(LOCATIONS_N):
            location_id = f"SCALE-{n:02d}"
            body = location(
                location_id,
                country_code="ZZ",
                party_id="HUB",
                evses=[
                    evse(f"{location_id}-E{e}", connectors=[connector("1")]) for e in range(EVSES)
                ],
            )
            resp = client.put(f"/ops/locations/{location_id}", json=body)
            assert resp.json()["status_code"] == 1000, resp.text

    acknowledged, unanswered, outcomes = asyncio.run(load(platform))
    assert len(acknowledged) > 200, outcomes  # the load really ran

    logged = asyncio.run(logged_patches(platform))
    lost = [u for u in acknowledged if logged[u] == 0]
    doubled = [u for u in acknowledged + unanswered if logged[u] > 1]
    assert lost == [], f"acknowledged but not in the log: {lost[:5]} ({outcomes})"
    assert doubled == [], f"in the log more than once: {doubled[:5]}"

    # Every EVSE's latest stamp in the log, as the views must end up showing it.
    latest: dict[str, str] = {}
    for _, evse_uid, stamp in logged:
        key = evse_uid.upper()
        if key not in latest or parse_ocpi_datetime(stamp) > parse_ocpi_datetime(latest[key]):
            latest[key] = stamp
    deadline = time.monotonic() + 120
    while True:
        in_view, in_rows = shown(platform)
        behind_view = {k: (in_view.get(k), v) for k, v in latest.items() if in_view.get(k) != v}
        behind_rows = {k: (in_rows.get(k), v) for k, v in latest.items() if in_rows.get(k) != v}
        if not behind_view and not behind_rows:
            break
        assert time.monotonic() < deadline, (
            f"views never caught up: view {list(behind_view.items())[:3]}, "
            f"rows {list(behind_rows.items())[:3]}"
        )
        time.sleep(1)
    # The supervisor replaced the killed API worker; the survivors live on.
    assert len(api_workers(platform)) == 2
    assert platform.dead() == {}
