"""Received commands (we as CPO) on the running platform: CommandResponse latency at the
receiver, and command -> CommandResult at the eMSP's response_url.

    python -m bench.commands [-n 300] [-c 8] [--chargers 8]
                             [--result-wait-s 90] [--run-dir data/run] [--out FILE]

1. Setup (not measured): a fresh bench partner registers with role EMSP
   (bench/partner.py: party ZZ/C<2 hex>; its stub OCPI party in this process
   serves the response_urls); one location of ours ``BENCH-CMD-<run id>``
   with ``--chargers`` EVSEs; as many charge points registered through ops,
   one per EVSE, and connected as simulated OCPP 1.6J chargers
   (bench/ocpp_sim.py) that answer UnlockConnector with Unlocked.
2. Pre-flight: one UNLOCK_CONNECTOR must be ACCEPTED and its CommandResult
   arrive, within 30 s and 60 s (exit status 2 otherwise).
3. Load: ``-n`` ``POST /ocpi/cpo/2.2.1/commands/UNLOCK_CONNECTOR``, ``-c`` in
   flight over ``-c`` keep-alive connections, round robin over the EVSEs,
   each with its own response_url at the stub.
4. Results: the stub stamps every CommandResult POSTed to a response_url;
   the benchmark waits at most ``--result-wait-s`` after the last response
   for one per accepted command. Lost results (accepted, none arrived) and
   duplicates are counted; exit status 1 when any was lost.

The full path of a result: API (CommandAccepted on ``ocpi.commands.v1``,
acks=all) -> gateway (consumes it, calls the charger, records
ChargerCommandAnswered) -> processors (CommandResultDecided) -> push
(POST to response_url). This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from ocpp.v16 import call
from pymongo import MongoClient
from rich.table import Table

from bench.harness import (
    REPO,
    CpuMeter,
    PlatformUnavailableError,
    api_base_url,
    cheap_async_library_detection,
    console,
    git_commit,
    new_http_clients,
    ocpi_status_code,
    run_and_write,
    summarize_ms,
    utc_iso,
)
from bench.ocpp_sim import (
    Connected,
    OpsError,
    bench_password,
    bounded,
    connect_charger,
    gateway_url,
    put_bench_location,
    quiet_ocpp_logs,
    register,
    wait_registered,
)
from bench.partner import BenchPartner, PartnerSetupError, bench_partner, ops_key
from ocpi_hub.settings import Settings, get_settings

RECEIVER = "/ocpi/cpo/2.2.1/commands/UNLOCK_CONNECTOR"
PREFLIGHT_ACCEPT_S = 30.0
PREFLIGHT_RESULT_S = 60.0
Doc = dict[str, Any]


@dataclass
class Callbacks:
    """CommandResults that reached the stub, by response_url path."""

    arrived: dict[str, list[tuple[float, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, partner: BenchPartner) -> None:
        stub = partner.stub
        answer = stub.answer

        def stamped(method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
            at = time.perf_counter()
            status, data = answer(method, path, auth, body)
            if method == "POST" and path.startswith("/commands/") and status == 200:
                with self.lock:
                    self.arrived.setdefault(path, []).append((at, body))
            return status, data

        stub.answer = stamped

    def of(self, path: str) -> list[tuple[float, Any]]:
        with self.lock:
            return list(self.arrived.get(path, ()))


@dataclass
class Sent:
    path: str  # of the response_url
    evse_uid: str
    sent: float = 0.0
    answered: float | None = None
    http_status: int | None = None
    ocpi_status: int | None = None
    response: str | None = None  # CommandResponse.result
    error: str | None = None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.commands",
        description="UNLOCK_CONNECTOR commands at the running platform's CPO receiver: "
        "CommandResponse latency and command -> CommandResult at the response_url.",
    )
    parser.add_argument("-n", "--commands", type=int, default=300, help="commands to send")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="commands in flight")
    parser.add_argument(
        "--chargers", type=int, default=8, help="connected simulated chargers (one EVSE each)"
    )
    parser.add_argument(
        "--result-wait-s",
        type=float,
        default=90.0,
        help="how long after the last response to wait for the CommandResults",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=REPO / "data" / "run",
        help="the running platform's run directory (pidfiles, for CPU accounting)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    args = parser.parse_args(argv)
    if min(args.commands, args.concurrency, args.chargers) < 1:
        parser.error("-n, -c and --chargers must be at least 1")
    return args


def _body(stub_url: str, sent: Sent, location_id: str) -> dict[str, Any]:
    return {
        "response_url": f"{stub_url}{sent.path}",
        "location_id": location_id,
        "evse_uid": sent.evse_uid,
        "connector_id": "1",
    }


async def _send(client: httpx.AsyncClient, body: dict[str, Any], sent: Sent) -> None:
    sent.sent = time.perf_counter()
    try:
        resp = await client.post(RECEIVER, json=body)
    except httpx.HTTPError as exc:
        sent.answered = time.perf_counter()
        sent.error = type(exc).__name__
        return
    sent.answered = time.perf_counter()
    sent.http_status = resp.status_code
    sent.ocpi_status = ocpi_status_code(resp)
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        sent.response = resp.json()["data"]["result"]


async def _setup(
    settings: Settings, run_id: str, k: int, client: httpx.AsyncClient
) -> tuple[str, list[str], str]:
    location_id = f"BENCH-CMD-{run_id}"
    ids = [f"BENCH-{run_id}-C{n}" for n in range(1, k + 1)]
    password = bench_password()
    try:
        await put_bench_location(client, settings, location_id, k)

        async def reg(cp_id: str) -> float:
            evse_uid = "E" + cp_id.rsplit("-C", 1)[1]
            for _ in range(20):  # the location was just written (2003 until read)
                try:
                    return await register(client, cp_id, location_id, evse_uid, password)
                except OpsError as exc:
                    if "2003" not in str(exc):
                        raise
                    await asyncio.sleep(0.5)
            return await register(client, cp_id, location_id, evse_uid, password)

        failed = [r for r in await bounded(ids, 4, reg) if isinstance(r, BaseException)]
        if failed:
            raise OpsError(f"{len(failed)} registrations refused, e.g. {failed[0]}")
        mongo: MongoClient[Doc] = MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000)
        try:
            await wait_registered(mongo, settings, ids, 60)
        finally:
            mongo.close()
    except OpsError as exc:
        raise PlatformUnavailableError(str(exc)) from exc
    return location_id, ids, password


async def _keep_present(c: Connected) -> None:
    """Heartbeats at the interval the gateway gave: they keep the charger's
    presence (3 intervals) alive through a long run."""
    while True:
        await asyncio.sleep(c.heartbeat_interval_s)
        with contextlib.suppress(Exception):
            await c.charger.call(call.Heartbeat(), suppress=False)


async def _preflight(
    client: httpx.AsyncClient, stub_url: str, location_id: str, callbacks: Callbacks, run_id: str
) -> dict[str, Any]:
    """One command until ACCEPTED, then its CommandResult."""
    started = time.perf_counter()
    attempt = 0
    while True:
        attempt += 1
        probe = Sent(f"/commands/UNLOCK_CONNECTOR/{run_id}-probe-{attempt}", "E1")
        await _send(client, _body(stub_url, probe, location_id), probe)
        if probe.response == "ACCEPTED":
            break
        if time.perf_counter() - started > PREFLIGHT_ACCEPT_S:
            raise PlatformUnavailableError(
                f"the probe command was not accepted within {PREFLIGHT_ACCEPT_S:.0f} s "
                f"(HTTP {probe.http_status}, OCPI {probe.ocpi_status}, {probe.response}, "
                f"{probe.error})"
            )
        await asyncio.sleep(0.5)
    while not callbacks.of(probe.path):
        if time.perf_counter() - probe.sent > PREFLIGHT_RESULT_S:
            raise PlatformUnavailableError(
                f"no CommandResult for the probe within {PREFLIGHT_RESULT_S:.0f} s: are the "
                "gateway, processors and push running (`make status`)?"
            )
        await asyncio.sleep(0.1)
    [(at, body)] = callbacks.of(probe.path)[:1]
    return {
        "attempts": attempt,
        "result": body.get("result") if isinstance(body, dict) else None,
        "command_to_result_ms": round((at - probe.sent) * 1000, 1),
    }


async def run(args: argparse.Namespace, started_wall: float) -> tuple[dict[str, Any], int]:
    settings = get_settings()
    run_id = uuid.uuid4().hex[:8]
    base_url = api_base_url(settings)
    report: dict[str, Any] = {
        "benchmark": "commands",
        "run_id": run_id,
        "started_at": utc_iso(started_wall),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "commands": args.commands,
            "concurrency": args.concurrency,
            "chargers": args.chargers,
            "result_wait_s": args.result_wait_s,
            "command": "UNLOCK_CONNECTOR",
            "api": base_url,
            "gateway": gateway_url(settings),
            "command_timeout_s (this process's settings)": settings.command_timeout_s,
            "run_dir": str(args.run_dir),
        },
    }
    meter = CpuMeter(args.run_dir)
    report["parameters"]["cpu_accounted_processes"] = meter.names
    stack = contextlib.ExitStack()
    chargers: list[Connected] = []
    keepers: list[asyncio.Task[Any]] = []
    callbacks = Callbacks()
    clients: list[httpx.AsyncClient] = []
    # /ops needs an operator's key (docs/adr/0031), revoked when the run ends.
    try:
        ops_headers = await asyncio.to_thread(ops_key, run_id, stack)
    except PartnerSetupError as exc:
        raise PlatformUnavailableError(str(exc)) from exc
    setup_client = httpx.AsyncClient(
        base_url=base_url, timeout=60, trust_env=False, headers=ops_headers
    )
    try:
        try:
            (await setup_client.get("/healthz")).raise_for_status()
        except httpx.HTTPError as exc:
            raise PlatformUnavailableError(f"API at {base_url}: {exc}") from exc
        console.print("registering a fresh bench partner with role EMSP ...")
        try:
            partner = await asyncio.to_thread(
                stack.enter_context, bench_partner(run_id, party_prefix="C", role="EMSP")
            )
        except PartnerSetupError as exc:
            raise PlatformUnavailableError(str(exc)) from exc
        callbacks.watch(partner)
        stub_url = partner.stub.base_url
        report["parameters"]["partner"] = partner.partner_id
        location_id, ids, password = await _setup(settings, run_id, args.chargers, setup_client)
        report["parameters"]["location_id"] = location_id
        url = gateway_url(settings)
        for cp_id in ids:
            try:
                c = await connect_charger(url, cp_id, password)
            except Exception as exc:
                raise PlatformUnavailableError(
                    f"charger {cp_id} could not connect: {exc!r}"
                ) from exc
            chargers.append(c)
            keepers.append(asyncio.ensure_future(_keep_present(c)))
        headers = {"Authorization": partner.authorization}
        setup_client.headers.update(headers)
        console.print(f"{len(chargers)} chargers connected; pre-flight command ...")
        report["preflight"] = await _preflight(
            setup_client, stub_url, location_id, callbacks, run_id
        )

        clients = new_http_clients(base_url, args.concurrency)
        for cl in clients:
            cl.headers.update(headers)
            await cl.get("/healthz")  # opens its connection before the clock starts
        plan = [
            Sent(f"/commands/UNLOCK_CONNECTOR/{run_id}-{i}", f"E{i % args.chargers + 1}")
            for i in range(args.commands)
        ]
        queue: asyncio.Queue[Sent] = asyncio.Queue()
        for s in plan:
            queue.put_nowait(s)

        async def worker(cl: httpx.AsyncClient) -> None:
            while not queue.empty():
                s = queue.get_nowait()
                await _send(cl, _body(stub_url, s, location_id), s)

        unlocks0 = sum(len(c.charger.unlocks) for c in chargers)
        console.print(f"sending {args.commands} commands, {args.concurrency} in flight ...")
        cpu0 = meter.snapshot()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(cl) for cl in clients))
        t_last = time.perf_counter()
        cpu_load = meter.snapshot()
        accepted = [s for s in plan if s.response == "ACCEPTED"]
        for _ in range(max(1, round(args.result_wait_s / 0.1))):
            if all(callbacks.of(s.path) for s in accepted):
                break
            await asyncio.sleep(0.1)
        t_drained = time.perf_counter()
        cpu1 = meter.snapshot()
        # A moment for duplicates that would follow the first result.
        await asyncio.sleep(2.0)
        report["load"] = figures(plan, callbacks, t0, t_last, t_drained)
        report["load"]["charger_unlocks_received"] = (
            sum(len(c.charger.unlocks) for c in chargers) - unlocks0
        )
        report["cpu"] = {
            "load": CpuMeter.between(cpu0, cpu_load),
            "load_and_results": CpuMeter.between(cpu0, cpu1),
        }
        lost = report["load"]["results_lost"]
        code = 1 if lost or not accepted else 0
    finally:
        for t in keepers:
            t.cancel()
        await asyncio.gather(*(c.close() for c in chargers), return_exceptions=True)
        if chargers:
            # The bench charge points and location stay registered only as long
            # as the run: deregister (the location stays, like evse_status').
            await bounded(
                [c.charger.id for c in chargers],
                4,
                lambda cp: setup_client.delete(f"/ops/charge-points/{cp}"),
            )
        for cl in clients:
            await cl.aclose()
        await setup_client.aclose()
        await asyncio.to_thread(stack.close)
    finished = time.time()
    report["finished_at"] = utc_iso(finished)
    report["duration_s"] = round(finished - started_wall, 1)
    return report, code


def figures(
    plan: Sequence[Sent], callbacks: Callbacks, t0: float, t_last: float, t_drained: float
) -> dict[str, Any]:
    accepted = [s for s in plan if s.response == "ACCEPTED"]
    http = [s.answered - s.sent for s in plan if s.answered is not None and s.error is None]
    to_result: list[float] = []
    after_response: list[float] = []
    results: Counter[str] = Counter()
    duplicates = 0
    lost = []
    for s in accepted:
        got = callbacks.of(s.path)
        if not got:
            lost.append(s.path)
            continue
        duplicates += len(got) - 1
        at, body = got[0]
        results[str(body.get("result")) if isinstance(body, dict) else "?"] += 1
        to_result.append(at - s.sent)
        if s.answered is not None:
            after_response.append(at - s.answered)
    responses = Counter(
        s.response or f"HTTP {s.http_status} / OCPI {s.ocpi_status} / {s.error}" for s in plan
    )
    return {
        "sent": len(plan),
        "responses": dict(responses),
        "accepted": len(accepted),
        "load_s": round(t_last - t0, 2),
        "commands_per_s": round(len(plan) / (t_last - t0), 1) if t_last > t0 else None,
        "http_latency_ms": summarize_ms(http),
        "command_to_result_ms": summarize_ms(to_result),
        "response_to_result_ms": summarize_ms(after_response),
        "results": dict(results),
        "results_lost": len(lost),
        "results_lost_examples": lost[:5],
        "duplicate_results": duplicates,
        "timeouts": results.get("TIMEOUT", 0),
        "last_result_after_last_response_s": round(t_drained - t_last, 2),
    }


def render(report: dict[str, Any]) -> None:
    m, load = report["machine"], report["load"]
    console.print(
        f"\n[bold]commands[/] run {report['run_id']}, commit {report['git_commit']}, "
        f"{m['cpu_count']} cores, {load['sent']} UNLOCK_CONNECTOR, "
        f"{report['parameters']['concurrency']} in flight, "
        f"{report['parameters']['chargers']} chargers"
    )

    def lat(s: dict[str, Any]) -> str:
        if not s.get("count"):
            return "-"
        return f"{s['p50']} / {s['p95']} / {s['p99']} / {s['max']}"

    table = Table("figure", "value")
    table.add_row("responses", str(load["responses"]))
    table.add_row("commands per s (sent)", str(load["commands_per_s"]))
    table.add_row("HTTP send -> CommandResponse p50/p95/p99/max ms", lat(load["http_latency_ms"]))
    table.add_row("send -> CommandResult p50/p95/p99/max ms", lat(load["command_to_result_ms"]))
    table.add_row("results", str(load["results"]))
    table.add_row(
        "results lost / duplicates", f"{load['results_lost']} / {load['duplicate_results']}"
    )
    table.add_row("TIMEOUT results", str(load["timeouts"]))
    table.add_row("unlocks at the chargers", str(load["charger_unlocks_received"]))
    cpu = report["cpu"]["load_and_results"]
    n = max(load["accepted"], 1)
    per = ", ".join(
        f"{k} {v / n * 1000:.1f}" for k, v in cpu["cpu_s"].items() if v / n * 1000 >= 0.1
    )
    table.add_row("CPU ms per command", per)
    table.add_row("machine busy", str(cpu["machine_busy"]))
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cheap_async_library_detection()
    quiet_ocpp_logs()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or REPO / "data" / "bench" / f"commands-{stamp}.json"
    report, code = run_and_write(run, args, out, render)
    if report is None:
        return code
    if report["load"]["results_lost"]:
        console.print(f"[bold red]{report['load']['results_lost']} CommandResult(s) never arrived")
    return code


if __name__ == "__main__":
    sys.exit(main())
