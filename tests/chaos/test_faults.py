"""One fault at a time under a steady load, then the ledger (issue 12).

A platform of its own (tests/chaos/stack.py: the services and the processes
as ``make up`` runs them, each process under its keeper) takes a partner's
EVSE status PATCHes and our chargers' StatusNotifications without pause
(tests/chaos/load.py) while, one after the other, a process is killed with
SIGKILL, the broker is restarted, and MongoDB and MariaDB are stalled
(SIGSTOP) and killed. Nobody steps in: the keepers restart processes, and a
killed service is started again as its own supervisor would.

After each fault, within 30 s of the dependency's return, every partner EVSE
and every charger has a write acknowledged again, and the views catch up
with everything acknowledged. At the end, with the load stopped: every
acknowledged write is in the log exactly once (and no unacknowledged one
twice), both views show each EVSE's latest logged write and no EVSE twice,
the partner was pushed the latest status of our EVSEs, and a replay of the
log rebuilds views equal to the live ones. The recovery times go to
``data/chaos/report.json``; docs/faults.md records a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pytest

from ocpi_hub.settings import Settings
from schemas.events import ConnectorStatusReported, LocationObjectPatched
from schemas.ocpi.common import format_ocpi_datetime, parse_ocpi_datetime
from schemas.topics import CHARGER_TRANSACTIONS, LOCATIONS
from tests.chaos.conftest import (
    PARTNER,
    PARTNER_EVSES,
    PARTNER_LOCATIONS,
    charger_evses,
    report_path,
)
from tests.chaos.load import NOTIFY, PATCH, SHOWN_AS, Attempt, Load, describe, latest_acked
from tests.chaos.stack import Stack, tail
from tests.ledger import Shown, Views, evses_shown, read_topic
from tests.peer_stub import PeerStub

pytestmark = [pytest.mark.chaos, pytest.mark.alone]

WRITES_BACK_WITHIN_S = 30.0
# An API killed while it held objects (a write between its claim and its
# commit) leaves them held until the hold expires (write_hold_ttl_s, 30 s
# from the claim, docs/adr/0022): the next writer then recovers them. So
# after that fault every object is writable again within the hold's
# lifetime, plus the bound above for everything else.
API_HOLDS_EXPIRE_S = float(Settings.model_fields["write_hold_ttl_s"].default)
VIEWS_CATCH_UP_WITHIN_S = 120.0
READY_WITHIN_S = 60.0
STALL_S = 10.0  # how long a stalled service stays stopped
DOWN_S = 5.0  # how long a killed service stays down before it is started again

# (fault_at, back_at): when the fault began, when its dependency was back.
Injected = tuple[float, float]


def kill_process(name: str) -> Callable[[Stack], Injected]:
    def inject(stack: Stack) -> Injected:
        fault_at = time.monotonic()
        old = stack.signal(name, signal.SIGKILL)
        stack.wait_replaced(name, old)  # by its keeper; nobody else
        return fault_at, time.monotonic()

    return inject


def stall_service(name: str) -> Callable[[Stack], Injected]:
    def inject(stack: Stack) -> Injected:
        fault_at = time.monotonic()
        stack.signal(name, signal.SIGSTOP)
        try:
            time.sleep(STALL_S)
        finally:
            stack.signal(name, signal.SIGCONT)
        return fault_at, time.monotonic()

    return inject


def kill_service(name: str) -> Callable[[Stack], Injected]:
    def inject(stack: Stack) -> Injected:
        fault_at = time.monotonic()
        stack.signal(name, signal.SIGKILL)
        time.sleep(DOWN_S)
        stack.infra("up", "--only", name)  # returns once it is healthy
        return fault_at, time.monotonic()

    return inject


def restart_broker(stack: Stack) -> Injected:
    fault_at = time.monotonic()
    stack.infra("down", "--only", "kafka")
    stack.infra("up", "--only", "kafka")
    return fault_at, time.monotonic()


FAULTS: dict[str, Callable[[Stack], Injected]] = {
    "kill -9 api": kill_process("api"),
    "kill -9 processors": kill_process("processors"),
    "kill -9 projections": kill_process("projections"),
    "kill -9 push": kill_process("push"),
    "kill -9 gateway": kill_process("gateway"),
    "broker restart": restart_broker,
    "MongoDB stalled": stall_service("mongo"),
    "MongoDB killed": kill_service("mongo"),
    "MariaDB stalled": stall_service("mariadb"),
    "MariaDB killed": kill_service("mariadb"),
}


@dataclass
class Recovery:
    fault: str
    down_for_s: float  # fault to the dependency's return
    writes_back_s: float  # return to the first acknowledged PATCH sent after it
    every_evse_back_s: float  # ... until every partner EVSE had one
    every_charger_back_s: float  # ... until every charger had a StatusNotification acknowledged
    views_caught_up_s: float  # return until both views showed all acknowledged by then
    ready_again_s: float  # return until /readyz answered 200 again
    refused: dict[str, dict[str, int]]  # outcomes not acknowledged, fault to caught up


RESULTS: list[Recovery] = []


def first_acks_after(attempts: list[Attempt], kind: str, since: float) -> dict[str, float]:
    """Per key, when the first attempt started after ``since`` was acknowledged."""
    found: dict[str, float] = {}
    for a in attempts:
        if a.kind == kind and a.acked and a.started >= since and a.key not in found:
            found[a.key] = a.finished
    return found


def wait_writes_back(
    load: Load, back_at: float, evses: int, chargers: int, within_s: float = WRITES_BACK_WITHIN_S
) -> list[Attempt]:
    deadline = back_at + within_s
    while True:
        attempts = load.ledger.snapshot()
        patched = first_acks_after(attempts, PATCH, back_at)
        notified = first_acks_after(attempts, NOTIFY, back_at)
        if len(patched) >= evses and len(notified) >= chargers:
            return attempts
        if time.monotonic() > deadline:
            recent = describe([a for a in attempts if a.started >= back_at])
            raise AssertionError(
                f"{within_s:.0f}s after the return, {len(patched)} of {evses} "
                f"EVSEs and {len(notified)} of {chargers} chargers had a write acknowledged "
                f"again; outcomes since: {recent}"
            )
        time.sleep(0.2)


def _at(stamp: str) -> datetime:
    return parse_ocpi_datetime(stamp)


def behind(views: Views, attempts: list[Attempt]) -> list[str]:
    """What the views do not show yet of the acknowledged ``attempts``."""
    missing = []
    for key, a in latest_acked(attempts, PATCH).items():
        for name, shown in (("mongo", views.mongo), ("mysql", views.mysql)):
            seen = shown.get(key)
            if seen is None or _at(seen.last_updated) < _at(a.stamp):
                missing.append(f"{name} {key}: {seen} < {a.stamp}")
    # A charger's report resolves to a status event only when it changes
    # the status shown, stamped with the first report of the change. So the
    # view is caught up when it shows the latest acknowledged status stamped
    # after the last acknowledged report of the other status (or anything
    # later than the latest one).
    evse_of = charger_evses()
    for cp, latest in latest_acked(attempts, NOTIFY).items():
        other = [
            a
            for a in attempts
            if a.kind == NOTIFY and a.key == cp and a.acked
            and a.seq < latest.seq and a.status != latest.status
        ]  # fmt: skip
        floor = _at(other[-1].stamp) if other else None
        for name, shown in (("mongo", views.mongo), ("mysql", views.mysql)):
            seen = shown.get(evse_of[cp])
            ok = seen is not None and (
                _at(seen.last_updated) > _at(latest.stamp)
                or (
                    seen.status == SHOWN_AS[latest.status]
                    and (floor is None or _at(seen.last_updated) > floor)
                )
            )
            if not ok:
                missing.append(f"{name} {cp}: {seen} for {latest.status} at {latest.stamp}")
    return missing


def shown_now(stack: Stack) -> Views:
    settings = stack.settings()
    cc, pid = PARTNER
    locations = {k.rsplit("/", 1)[0] for k in charger_evses().values()}
    locations |= {f"{cc}/{pid}/CHAOS-{n}" for n in range(1, PARTNER_LOCATIONS + 1)}
    return evses_shown(settings.mongo_url, settings.mongo_db, settings.mysql_url, locations)


def wait_views(stack: Stack, attempts: list[Attempt], since: float) -> float:
    """Seconds from ``since`` until both views show all of ``attempts``' acknowledged writes."""
    deadline = time.monotonic() + VIEWS_CATCH_UP_WITHIN_S
    while True:
        try:
            missing = behind(shown_now(stack), attempts)
        except Exception as exc:  # a view still coming back
            missing = [f"{type(exc).__name__}: {exc}"]
        if not missing:
            return time.monotonic() - since
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the views did not catch up within {VIEWS_CATCH_UP_WITHIN_S:.0f}s: {missing[:4]}"
            )
        time.sleep(0.5)


def wait_ready(stack: Stack, since: float) -> float:
    """Seconds from ``since`` until /readyz says ready again (it may never
    have said otherwise)."""
    deadline = since + READY_WITHIN_S
    while not stack.api_ready():
        assert time.monotonic() < deadline, f"/readyz not ready {READY_WITHIN_S:.0f}s after"
        time.sleep(0.2)
    return time.monotonic() - since


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_platform_recovers_by_itself(fault: str, stack: Stack, load: Load) -> None:
    wait_views(stack, load.ledger.snapshot(), time.monotonic())  # the previous fault is over
    fault_at, back_at = FAULTS[fault](stack)
    ready_again = wait_ready(stack, back_at)
    within_s = WRITES_BACK_WITHIN_S + (API_HOLDS_EXPIRE_S if fault == "kill -9 api" else 0.0)
    attempts = wait_writes_back(
        load,
        back_at,
        evses=PARTNER_LOCATIONS * PARTNER_EVSES,
        chargers=len(charger_evses()),
        within_s=within_s,
    )
    caught_up = wait_views(stack, attempts, back_at)
    everything = load.ledger.snapshot()
    patched = first_acks_after(attempts, PATCH, back_at)
    notified = first_acks_after(attempts, NOTIFY, back_at)
    recovery = Recovery(
        fault=fault,
        down_for_s=round(back_at - fault_at, 2),
        writes_back_s=round(min(patched.values()) - back_at, 2),
        every_evse_back_s=round(max(patched.values()) - back_at, 2),
        every_charger_back_s=round(max(notified.values()) - back_at, 2),
        views_caught_up_s=round(caught_up, 2),
        ready_again_s=round(ready_again, 2),
        refused=describe(
            [a for a in everything if not a.acked and fault_at <= a.started <= back_at + caught_up]
        ),
    )
    RESULTS.append(recovery)
    write_report(everything)
    for name in ("api", "processors", "projections", "push", "gateway"):
        assert stack.pid(name) is not None, f"{name} is not running:\n{tail(stack.log(name))}"


def logged(stack: Stack) -> tuple[Counter[tuple[str, str]], dict[str, tuple[str, str]]]:
    """(key, stamp) of every partner PATCH and charger report in the log,
    counted; and per EVSE the status and stamp the views must end at."""
    settings = stack.settings()

    async def read() -> tuple[list[Any], list[Any]]:
        return (
            await read_topic(settings.kafka_bootstrap, settings.topic(LOCATIONS.name), LOCATIONS),
            await read_topic(
                settings.kafka_bootstrap,
                settings.topic(CHARGER_TRANSACTIONS.name),
                CHARGER_TRANSACTIONS,
            ),
        )

    locations, charger_events = asyncio.run(read())
    counted: Counter[tuple[str, str]] = Counter()
    final: dict[str, tuple[datetime, str]] = {}
    cc, pid = PARTNER
    for event in locations:
        if isinstance(event, LocationObjectPatched) and event.payload.evse_uid:
            p = event.payload
            if (p.country_code, p.party_id) != (cc, pid):
                continue
            key = f"{p.country_code}/{p.party_id}/{p.location_id}/{p.evse_uid}".upper()
            counted[(key, format_ocpi_datetime(p.last_updated))] += 1
            if key not in final or p.last_updated > final[key][0]:
                final[key] = (p.last_updated, str(p.patch.get("status")))
    evse_of = charger_evses()
    reports = sorted(
        (e.payload for e in charger_events if isinstance(e, ConnectorStatusReported)),
        key=lambda r: r.at,
    )
    for report in reports:
        if report.charge_point_id not in evse_of:
            continue
        counted[(report.charge_point_id, format_ocpi_datetime(report.at))] += 1
        # Stamped with the first report of a change: a repeat of the status
        # shown (one between them was never recorded) changes nothing.
        key, status = evse_of[report.charge_point_id], SHOWN_AS[report.status]
        if key not in final or final[key][1] != status:
            final[key] = (report.at, status)
    return counted, {k: (status, format_ocpi_datetime(at)) for k, (at, status) in final.items()}


def test_every_acknowledged_write_is_kept_once_and_shown(
    stack: Stack, load: Load, partner_stub: PeerStub
) -> None:
    load.stop()
    attempts = load.ledger.snapshot()
    acked = [a for a in attempts if a.acked]
    assert len({a.kind for a in acked}) == 2 and len(acked) > 1000, describe(attempts)

    counted, final = logged(stack)
    lost = [a for a in acked if counted[(a.key, a.stamp)] == 0]
    doubled = [a for a in attempts if counted[(a.key, a.stamp)] > 1]
    assert lost == [], f"{len(lost)} acknowledged but not in the log: {lost[:3]}"
    assert doubled == [], f"{len(doubled)} in the log more than once: {doubled[:3]}"

    # The views end at what the log says last, for every EVSE.
    deadline = time.monotonic() + VIEWS_CATCH_UP_WITHIN_S
    while True:
        views = shown_now(stack)
        wrong = {
            f"{name} {key}": (shown.get(key), want)
            for key, want in final.items()
            for name, shown in (("mongo", views.mongo), ("mysql", views.mysql))
            if shown.get(key) != Shown(*want)
        }
        if not wrong:
            break
        assert time.monotonic() < deadline, (
            f"views never ended at the log: {list(wrong.items())[:4]}"
        )
        time.sleep(1)
    assert views.doubled == []
    assert (
        len(views.mongo)
        == len(views.mysql)
        == PARTNER_LOCATIONS * PARTNER_EVSES + len(charger_evses())
    )

    # The partner was pushed our EVSEs' latest status (the push process was
    # killed once, and the broker restarted under it).
    ours = {k: v for k, v in final.items() if k in set(charger_evses().values())}
    deadline = time.monotonic() + VIEWS_CATCH_UP_WITHIN_S
    while (pushed := last_pushed(partner_stub)) != ours:
        assert time.monotonic() < deadline, f"pushed {pushed}, views {ours}"
        time.sleep(1)

    write_report(attempts)
    # Nothing quarantined on the way: a view that gave up on an event would
    # differ from the replay below, and this says why.
    listed = stack.cli("dead-letters", "list", "--all")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert json.loads(listed.stdout.strip().splitlines()[-1])["listed"] == 0, listed.stdout[-3000:]

    into = f"chaos_replay_{os.getpid()}"
    done = stack.cli("replay", "--into", into, "--compare", timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    compared = json.loads(done.stdout.strip().splitlines()[-1])
    assert compared["differences"] == [] and compared["quarantined"] == 0, compared


def last_pushed(stub: PeerStub) -> dict[str, tuple[str, str]]:
    """EVSE key -> (status, last_updated) of the newest push the partner received."""
    found: dict[str, tuple[str, str]] = {}
    for method, path, body in list(stub.received):
        parts = path.strip("/").split("/")  # locations/CC/PID/LOC[/EVSE]
        if parts[0] != "locations" or not isinstance(body, dict):
            continue
        if len(parts) == 5 and method == "PATCH" and "status" in body:
            key = "/".join(parts[1:]).upper()
            item = (str(body["status"]), str(body["last_updated"]))
            if key not in found or _at(item[1]) > _at(found[key][1]):
                found[key] = item
    return {k: v for k, v in found.items() if k in set(charger_evses().values())}


def write_report(attempts: list[Attempt]) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    report = {
        "commit": commit or None,
        "cores": os.cpu_count(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "stall_s": STALL_S,
        "down_s": DOWN_S,
        "attempts": describe(attempts),
        "faults": [asdict(r) for r in RESULTS],
    }
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
