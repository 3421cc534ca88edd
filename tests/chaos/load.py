"""The steady load the faults happen under, and its ledger.

Two kinds of writer run side by side, in a thread of their own, until
stopped:

* a partner CPO (registered over OCPI) PATCHes the status of its EVSEs
  through our Locations receiver, each PATCH with a fresh ``last_updated``;
* OCPP 1.6J chargers of ours send StatusNotifications (Available and
  Faulted in turn, each with a fresh timestamp) and, like real chargers,
  connect again whenever their connection drops.

Every attempt is written down with its outcome: acknowledged (OCPI 1000, an
OCPP CALLRESULT) or not. What was acknowledged is what the platform promised
to keep; the fault tests hold it to that.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from ocpp.exceptions import OCPPError
from ocpp.v16 import call

from bench.ocpp_sim import Connected, connect_charger, quiet_ocpp_logs
from schemas.ocpi.common import format_ocpi_datetime

PATCH = "patch"
NOTIFY = "notify"
# OCPP connector status sent -> the EVSE status partners and views see
# (processors/evse_status.py: a fault outranks the owner's AVAILABLE).
SHOWN_AS = {"Available": "AVAILABLE", "Faulted": "OUTOFORDER"}


@dataclass(frozen=True)
class Attempt:
    kind: str  # PATCH or NOTIFY
    key: str  # EVSE key (PATCH: CC/PID/LOC/EVSE) or charge point id (NOTIFY)
    seq: int  # the order stamps were handed out in (their time order)
    stamp: str  # the last_updated / timestamp it carried
    status: str  # as sent
    started: float  # time.monotonic()
    finished: float
    acked: bool
    outcome: str  # "1000", "HTTP 503/3000", "ConnectError", ...


@dataclass
class Ledger:
    attempts: list[Attempt] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)

    def snapshot(self) -> list[Attempt]:
        with self._lock:
            return list(self.attempts)


class Stamps:
    """Strictly increasing stamps, one millisecond apart, starting an hour
    back (well within the accepted clock skew, ahead of any setup write)."""

    def __init__(self) -> None:
        self._t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self._n = 0

    def next(self) -> tuple[int, str]:
        self._n += 1
        return self._n, format_ocpi_datetime(self._t0 + timedelta(milliseconds=self._n))


@dataclass(frozen=True)
class Target:
    """What the load writes to."""

    base_url: str
    partner_auth: str  # the partner's Authorization header value
    partner_party: tuple[str, str]
    partner_evses: list[tuple[str, str]]  # (location id, EVSE uid)
    gateway_url: str
    chargers: list[str]  # charge point ids
    charger_password: str


class Load:
    """Runs the writers in a thread until ``stop``; ``ledger`` fills as it goes."""

    PATCH_WORKERS = 4
    PATCH_PERIOD_S = 0.2  # per worker: about 20 PATCHes a second in all
    NOTIFY_PERIOD_S = 0.5  # per charger
    TIMEOUT_S = 10.0

    def __init__(self, target: Target) -> None:
        self.target = target
        self.ledger = Ledger()
        self._stamps = Stamps()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the load did not stop"
        if self.error is not None:
            raise AssertionError(f"the load itself failed: {self.error!r}") from self.error

    def _run(self) -> None:
        quiet_ocpp_logs()
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    async def _main(self) -> None:
        workers = [self._patcher(w) for w in range(self.PATCH_WORKERS)]
        chargers = [self._charger(cp) for cp in self.target.chargers]
        await asyncio.gather(*workers, *chargers)

    async def _pause(self, seconds: float) -> None:
        await asyncio.to_thread(self._stop.wait, seconds)

    async def _patcher(self, w: int) -> None:
        """PATCHes the EVSEs numbered w, w + WORKERS, ... in turn: each EVSE
        has one writer, so its stamps go out in order."""
        t = self.target
        mine = t.partner_evses[w :: self.PATCH_WORKERS]
        cc, pid = t.partner_party
        headers = {"Authorization": t.partner_auth}
        async with httpx.AsyncClient(base_url=t.base_url, timeout=self.TIMEOUT_S) as client:
            n = 0
            while not self._stop.is_set():
                location_id, evse_uid = mine[n % len(mine)]
                n += 1
                seq, stamp = self._stamps.next()
                status = ("AVAILABLE", "CHARGING")[n % 2]
                started = time.monotonic()
                try:
                    resp = await client.patch(
                        f"/ocpi/emsp/2.2.1/locations/{cc}/{pid}/{location_id}/{evse_uid}",
                        json={"status": status, "last_updated": stamp},
                        headers=headers,
                    )
                    code = resp.json().get("status_code") if resp.status_code == 200 else None
                    outcome = "1000" if code == 1000 else f"HTTP {resp.status_code}/{code}"
                except (httpx.HTTPError, ValueError) as exc:
                    outcome = type(exc).__name__
                self.ledger.add(
                    Attempt(
                        PATCH,
                        f"{cc}/{pid}/{location_id}/{evse_uid}".upper(),
                        seq,
                        stamp,
                        status,
                        started,
                        time.monotonic(),
                        outcome == "1000",
                        outcome,
                    )
                )
                await self._pause(self.PATCH_PERIOD_S)

    async def _charger(self, cp_id: str) -> None:
        t = self.target
        n = 0
        while not self._stop.is_set():
            try:
                link: Connected = await connect_charger(
                    t.gateway_url, cp_id, t.charger_password, timeout_s=self.TIMEOUT_S
                )
            except Exception:
                await self._pause(1.0)  # a charger tries again, as real ones do
                continue
            try:
                while not self._stop.is_set():
                    n += 1
                    status = ("Available", "Faulted")[n % 2]
                    seq, stamp = self._stamps.next()
                    started = time.monotonic()
                    acked, outcome = await self._notify(link, status, stamp)
                    self.ledger.add(
                        Attempt(
                            NOTIFY,
                            cp_id,
                            seq,
                            stamp,
                            status,
                            started,
                            time.monotonic(),
                            acked,
                            outcome,
                        )
                    )
                    if not acked and outcome != "CallError":
                        break  # the connection is gone or hangs: connect again
                    await self._pause(self.NOTIFY_PERIOD_S)
            finally:
                await link.close()

    async def _notify(self, link: Connected, status: str, stamp: str) -> tuple[bool, str]:
        request = call.StatusNotification(
            connector_id=1, error_code="NoError", status=status, timestamp=stamp
        )
        try:
            await link.charger.call(request, suppress=False)
        except TimeoutError:
            return False, "Timeout"
        except Exception as exc:
            name = type(exc).__name__
            # The ocpp library raises an OCPPError subclass for a CallError.
            return False, "CallError" if isinstance(exc, OCPPError) else name
        return True, "1000"


def latest_acked(attempts: list[Attempt], kind: str) -> dict[str, Attempt]:
    """Per key, the acknowledged attempt with the newest stamp."""
    found: dict[str, Attempt] = {}
    for a in attempts:
        if a.kind == kind and a.acked and (a.key not in found or a.seq > found[a.key].seq):
            found[a.key] = a
    return found


def describe(attempts: list[Attempt]) -> dict[str, Any]:
    """Outcome counts per kind (for reports and failure messages)."""
    counts: dict[str, dict[str, int]] = {}
    for a in attempts:
        per = counts.setdefault(a.kind, {})
        per[a.outcome] = per.get(a.outcome, 0) + 1
    return counts
