"""AFIR feed latency: an EVSE status change -> visible in the pull feed and
received at the access point's push endpoint (docs/afir.md).

    python -m bench.afir_latency [-n 40] [--poll-ms 25] [--timeout-s 60] [--out FILE]

AFIR (Regulation 2023/1804 with Implementing Regulation 2025/655) allows a
minute from a change of dynamic data to its publication; our target is a
p99 below 10 s. Two sources of a change are measured, one change at a time:

- ``ops``: we, as the location's owner, state the status with a PATCH of the
  EVSE (``PATCH /ops/locations/{id}/{evse}``, the OCPI Receiver's write
  path), alternating OUTOFORDER and AVAILABLE;
- ``ocpp``: our simulated OCPP 1.6J charger reports StatusNotification
  Faulted and Available for its connector (gateway -> charger facts ->
  the EVSE status processor).

For each change, from just before the request is sent: **pull** is the
first poll of ``GET /afir/v3/dynamic?since=...`` (every ``--poll-ms``) that
shows the point in the new status; **push** is the arrival, at a local
receiver standing in for the access point, of the first status
publication showing it. The path: API -> Kafka -> processors (status
resolution) -> projections (the AFIR view) -> API (pull) / push process ->
receiver.

The feed's credential and push endpoint are settings of the processes, so
this benchmark starts a platform of its own from this checkout (API,
processors, projections, push, gateway) on free ports, in a fresh
namespace (topic prefix, databases) of the services ``make up`` started,
and removes it afterwards; the platform ``make up`` runs is not touched.
This is a measurement, not a test; the report records the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from ocpp.v16 import call
from pydantic import SecretStr

from bench.harness import REPO, console, git_commit, summarize_ms, utc_iso
from bench.ocpp_sim import bench_password, connect_charger, quiet_ocpp_logs, register
from ocpi_hub.settings import Settings
from tests.afir_receiver import AfirReceiver, afir_receiver
from tests.conftest import fresh_namespace
from tests.e2e.conftest import Platform, ops_auth, running_platform
from tests.ocpi_objects import connector, evse, location

PULL = "bench-afir-pull"
PUSH = "bench-afir-push"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.afir_latency", description=__doc__)
    p.add_argument("-n", type=int, default=40, help="changes per source (default 40)")
    p.add_argument("--poll-ms", type=int, default=25, help="pull poll interval (default 25)")
    p.add_argument("--timeout-s", type=float, default=60.0, help="per change (default 60)")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def _stamp(wall: float) -> str:
    return utc_iso(wall)


def pulled_status(body: dict[str, Any], point_id: str) -> str | None:
    pub = body["payload"].get("aegiEnergyInfrastructureStatusPublication") or {}
    for site in pub.get("energyInfrastructureSiteStatus") or ():
        for station in site["energyInfrastructureStationStatus"]:
            for p in station["refillPointStatus"]:
                point = p["aegiElectricChargingPointStatus"]
                if point["reference"]["idG"] == point_id:
                    value: str = point["status"]["value"]
                    return value
    return None


def pushed_at(receiver: AfirReceiver, point_id: str, status: str, since: float) -> float | None:
    with receiver.lock:
        received = list(receiver.received)
    for at, _, body in received:
        if at >= since and pulled_status(body, point_id) == status:
            return at
    return None


async def one_change(
    http: httpx.AsyncClient,
    receiver: AfirReceiver,
    point_id: str,
    expected: str,
    send: Any,
    args: argparse.Namespace,
) -> tuple[float | None, float | None]:
    """Seconds from sending the change to pull and to push (None: not within the timeout)."""
    started = time.time()
    since = _stamp(started - 5)
    await send()
    pull: float | None = None
    push: float | None = None
    deadline = started + args.timeout_s
    while (pull is None or push is None) and time.time() < deadline:
        if pull is None:
            resp = await http.get(
                "/afir/v3/dynamic",
                params={"since": since},
                headers={"Authorization": f"Bearer {PULL}"},
            )
            if resp.status_code == 200 and pulled_status(resp.json(), point_id) == expected:
                pull = time.time() - started
        if push is None and (at := pushed_at(receiver, point_id, expected, started)) is not None:
            push = at - started
        await asyncio.sleep(args.poll_ms / 1000)
    return pull, push


async def measure(p: Platform, receiver: AfirReceiver, args: argparse.Namespace) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6].upper()
    loc = f"AFIR-BENCH-{run}"
    body = location(
        loc,
        country_code="ZZ",
        party_id="HUB",
        evses=[
            evse("E1", evse_id=f"ZZ*HUB*E{run}1", connectors=[connector("1")]),
            evse("E2", evse_id=f"ZZ*HUB*E{run}2", connectors=[connector("1")]),
        ],
    )
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=p.base_url, timeout=30) as http:
        ops = ops_auth(p.base_url)
        made = await http.put(f"/ops/locations/{loc}", json=body, headers=ops)
        if made.json().get("status_code") != 1000:
            raise RuntimeError(f"bench location refused: {made.text[:300]}")
        cp_id, password = f"AFIR-BENCH-CP-{run}", bench_password()
        async with httpx.AsyncClient(base_url=p.base_url, headers=ops, timeout=30) as ops_http:
            await register(ops_http, cp_id, loc, "E1", password)
        connected = None
        for _ in range(120):
            try:
                connected = await connect_charger(p.gateway_url, cp_id, password)
                break
            except Exception:
                await asyncio.sleep(0.5)
        if connected is None:
            raise RuntimeError("the bench charger could not connect")
        try:
            await connected.charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            # Warm-up: the feed shows both points before anything is timed.
            for _ in range(600):
                resp = await http.get(
                    "/afir/v3/dynamic", headers={"Authorization": f"Bearer {PULL}"}
                )
                if pulled_status(resp.json(), f"ZZ*HUB*E{run}2") == "available":
                    break
                await asyncio.sleep(0.1)

            async def ops_change(i: int) -> tuple[str, Any]:
                status = "OUTOFORDER" if i % 2 == 0 else "AVAILABLE"

                async def send() -> None:
                    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                    r = await http.patch(
                        f"/ops/locations/{loc}/E2",
                        json={"status": status, "last_updated": now},
                        headers=ops,
                    )
                    if r.json().get("status_code") != 1000:
                        raise RuntimeError(f"PATCH refused: {r.text[:200]}")

                return ("outOfOrder" if status == "OUTOFORDER" else "available"), send

            async def ocpp_change(i: int) -> tuple[str, Any]:
                faulted = i % 2 == 0

                async def send() -> None:
                    await connected.charger.call(
                        call.StatusNotification(
                            connector_id=1,
                            error_code="GroundFailure" if faulted else "NoError",
                            status="Faulted" if faulted else "Available",
                        )
                    )

                return ("outOfOrder" if faulted else "available"), send

            for name, point, change in (
                ("ops", f"ZZ*HUB*E{run}2", ops_change),
                ("ocpp", f"ZZ*HUB*E{run}1", ocpp_change),
            ):
                pulls: list[float] = []
                pushes: list[float] = []
                missed = 0
                for i in range(args.n):
                    expected, send = await change(i)
                    pull, push = await one_change(http, receiver, point, expected, send, args)
                    if pull is None or push is None:
                        missed += 1
                    if pull is not None:
                        pulls.append(pull)
                    if push is not None:
                        pushes.append(push)
                    await asyncio.sleep(0.2)
                out[name] = {
                    "changes": args.n,
                    "missed": missed,
                    "to_pull_ms": summarize_ms(pulls),
                    "to_push_ms": summarize_ms(pushes),
                }
        finally:
            await connected.close()
    return out


def render(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]AFIR feed latency[/] ({report['cores']} cores, load average "
        f"{report['load_before']} before, {report['load_after']} after)"
    )
    for name, figures in report["sources"].items():
        for kind in ("to_pull_ms", "to_push_ms"):
            f = figures[kind]
            console.print(
                f"  {name:5} {kind:11} n={f.get('count', 0):3}  p50 {f.get('p50')} ms  "
                f"p99 {f.get('p99')} ms  max {f.get('max')} ms"
            )
        if figures["missed"]:
            console.print(f"  [red]{figures['missed']} change(s) not seen within the timeout[/]")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_ocpp_logs()
    started = time.time()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or REPO / "data" / "bench" / f"afir_latency-{stamp}.json"
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="afir-bench-logs-"))
    with (
        fresh_namespace(Settings()) as ns,
        afir_receiver() as receiver,
        running_platform(
            ns,
            logs,
            afir_pull_token=SecretStr(PULL),
            afir_push_url=receiver.url,
            afir_push_token=SecretStr(PUSH),
            afir_push_retry_initial_s=0.2,
        ) as p,
    ):
        sources = asyncio.run(measure(p, receiver, args))
    report = {
        "benchmark": "afir_latency",
        "started": utc_iso(started),
        "git_commit": git_commit(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "params": {"n": args.n, "poll_ms": args.poll_ms, "timeout_s": args.timeout_s},
        "platform_logs": str(logs),
        "sources": sources,
    }
    render(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(f"report written to {out}")
    missed = sum(s["missed"] for s in sources.values())
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
