"""How many OCPP 1.6J chargers one gateway process holds, and what each costs.

    python -m bench.chargers [--max 500] [--steps 100,250,500,1000,2000,4000,8000]
                             [--heartbeat-s 10] [--hold-s 20] [--p99-bound-ms 1000]
                             [--procs 2] [--run-dir data/run] [--out FILE]

1. Setup (not measured as a step): one location of ours ``BENCH-CP-<run id>``
   (ops PUT) and ``--max`` charge points ``BENCH-<run id>-<n>`` registered
   through ops (``PUT /ops/charge-points/{id}``), then waiting until the
   ``charge_points`` view shows them all (the gateway checks it before each
   WebSocket upgrade).
2. Ramps: for each step (``--steps`` up to ``--max``) the chargers missing to
   reach it connect (``--procs`` client processes, each an asyncio loop of
   simulated chargers: WebSocket with Basic credentials, BootNotification,
   then a Heartbeat every ``--heartbeat-s`` from a random phase). After the
   connects the step holds for ``--hold-s`` and measures heartbeat round
   trips, failures, the gateway's RSS and CPU, and the client processes' CPU.
3. It stops at the first step with a failed connect, a failed heartbeat, a
   dropped connection, a charger without its Redis presence key (the
   gateway's "connected here") or a heartbeat p99 above ``--p99-bound-ms``; the
   largest clean step is the answer. Every charger disconnects and every
   charge point is deregistered (ops DELETE) at the end.

Every Heartbeat is an event appended to Kafka (acks=all) before the gateway
answers (docs/adr/0018), so the heartbeat rate is a Kafka write rate too.
This is a measurement, not a test: nothing here judges the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import random
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import redis
from ocpp.v16 import call
from pymongo import MongoClient
from rich.table import Table

from bench.harness import (
    REPO,
    CpuMeter,
    PlatformUnavailableError,
    api_base_url,
    console,
    git_commit,
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
    deregister,
    fd_limit,
    gateway_url,
    open_fds,
    put_bench_location,
    quiet_ocpp_logs,
    raise_fd_limit,
    read_pid,
    register,
    rss_kib,
    wait_registered,
)
from bench.partner import ops_key
from ocpi_hub.settings import Settings, get_settings

DEFAULT_STEPS = (100, 250, 500, 1000, 2000, 4000, 8000)
EVSES = 10  # charge point n is connector 1 of EVSE E<n mod 10 + 1>
OPS_CONCURRENCY = 8
CONNECT_TIMEOUT_S = 30.0
REGISTER_VIEW_TIMEOUT_S = 120.0
Doc = dict[str, Any]


# --------------------------------------------------------------------------- #
# Client processes: each holds its share of simulated chargers
# --------------------------------------------------------------------------- #


class StepDeadlineError(Exception):
    """Not tried: the step's --connect-deadline-s had passed."""


class Stats:
    def __init__(self) -> None:
        self.reset()
        self.dropped = 0

    def reset(self) -> None:
        self.rtts: list[float] = []
        self.hb_ok = 0
        self.hb_failed: Counter[str] = Counter()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _heartbeats(c: Connected, every_s: float, stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(random.uniform(0, every_s))
    due = loop.time()
    while True:
        started = time.perf_counter()
        try:
            await c.charger.call(call.Heartbeat(), suppress=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stats.hb_failed[type(exc).__name__] += 1
        else:
            stats.rtts.append(time.perf_counter() - started)
            stats.hb_ok += 1
        due += every_s
        await asyncio.sleep(max(0.0, due - loop.time()))


async def _worker(conn: Connection, url: str, password: str, every_s: float, gate: int) -> None:
    quiet_ocpp_logs()
    raise_fd_limit()
    stats = Stats()
    held: dict[str, Connected] = {}
    loop = asyncio.get_running_loop()

    def dropped(_: asyncio.Task[None]) -> None:
        stats.dropped += 1

    step_ends = 0.0

    async def one(cp_id: str) -> float:
        started = time.perf_counter()
        if started > step_ends:
            # A stalled gateway would otherwise take up to a minute per
            # connect in flight to end the step.
            raise StepDeadlineError(cp_id)
        c = await connect_charger(url, cp_id, password, timeout_s=CONNECT_TIMEOUT_S)
        took = time.perf_counter() - started
        held[cp_id] = c
        c.reader.add_done_callback(dropped)
        c.tasks.append(asyncio.ensure_future(_heartbeats(c, every_s, stats)))
        return took

    while True:
        order, arg = await loop.run_in_executor(None, conn.recv)
        if order == "connect":
            ids, deadline_s = arg
            step_ends = time.perf_counter() + deadline_s
            results = await bounded(ids, gate, one)
            failed = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
            examples = [repr(r)[:200] for r in results if isinstance(r, BaseException)][:3]
            conn.send(
                {
                    "connect_s": [r for r in results if isinstance(r, float)],
                    "failed": dict(failed),
                    "failed_examples": examples,
                }
            )
        elif order == "window":
            stats.reset()
            conn.send({"cpu_s": _cpu_s()})
        elif order == "collect":
            conn.send(
                {
                    "rtts": stats.rtts,
                    "hb_ok": stats.hb_ok,
                    "hb_failed": dict(stats.hb_failed),
                    "dropped": stats.dropped,
                    "held": len(held),
                    "cpu_s": _cpu_s(),
                    "rss_kib": rss_kib(os.getpid()),
                }
            )
        else:  # stop
            for c in held.values():
                c.reader.remove_done_callback(dropped)
            await asyncio.gather(*(c.close() for c in held.values()), return_exceptions=True)
            conn.send({"closed": len(held), "cpu_s": _cpu_s()})
            return


def worker_main(conn: Connection, url: str, password: str, every_s: float, gate: int) -> None:
    asyncio.run(_worker(conn, url, password, every_s, gate))


class Clients:
    """The client processes, driven over one pipe each."""

    def __init__(self, procs: int, url: str, password: str, every_s: float, gate: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for _ in range(procs):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main, args=(theirs, url, password, every_s, gate), daemon=True
            )
            proc.start()
            self.pipes.append(ours)
            self.processes.append(proc)

    async def ask(self, orders: Sequence[tuple[str, Any]]) -> list[dict[str, Any]]:
        for pipe, order in zip(self.pipes, orders, strict=True):
            pipe.send(order)
        return list(await asyncio.gather(*(asyncio.to_thread(p.recv) for p in self.pipes)))

    async def all(self, order: str) -> list[dict[str, Any]]:
        return await self.ask([(order, None)] * len(self.pipes))

    def cpu_s(self) -> dict[int, float]:
        """CPU seconds of each client process so far, from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        out: dict[int, float] = {}
        for proc in self.processes:
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{proc.pid}/stat", "rb") as fh:
                    raw = fh.read()
                fields = raw[raw.rindex(b")") + 2 :].split()
                out[proc.pid] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def join(self) -> None:
        for proc in self.processes:
            proc.join(timeout=15)
            if proc.is_alive():
                proc.kill()


# --------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------- #


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chargers",
        description="Simulated OCPP 1.6J chargers held by one running gateway process: "
        "memory per connection, CPU, heartbeat round trips, in ramps.",
    )
    parser.add_argument("--max", type=int, default=500, help="charge points at most")
    parser.add_argument(
        "--steps",
        default=",".join(str(s) for s in DEFAULT_STEPS),
        help="connected chargers at each step (those above --max are dropped; --max is the last)",
    )
    parser.add_argument("--heartbeat-s", type=float, default=10.0, help="Heartbeat period")
    parser.add_argument(
        "--hold-s", type=float, default=None, help="measuring window per step (2 heartbeats)"
    )
    parser.add_argument(
        "--p99-bound-ms", type=float, default=1000.0, help="a step above it is not clean"
    )
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument(
        "--connect-concurrency", type=int, default=25, help="connects in flight per process"
    )
    parser.add_argument(
        "--connect-deadline-s",
        type=float,
        default=600.0,
        help="connects not started this long after a step began fail as StepDeadlineError",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=REPO / "data" / "run",
        help="the running platform's run directory (gateway.pid and the other pidfiles)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    args = parser.parse_args(argv)
    try:
        steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    except ValueError:
        parser.error("--steps must be comma-separated integers")
    if args.max < 1 or args.procs < 1 or args.heartbeat_s <= 0:
        parser.error("--max, --procs and --heartbeat-s must be positive")
    args.step_list = [s for s in steps if 0 < s < args.max] + [args.max]
    args.hold_s = args.hold_s if args.hold_s is not None else 2 * args.heartbeat_s
    return args


class Presence:
    """The gateway's Redis presence keys of the connected chargers: one the
    gateway failed to set means the platform takes that charger for offline
    (the Commands receiver rejects its commands)."""

    def __init__(self, settings: Settings, ids: Sequence[str]) -> None:
        self._redis = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
        self._keys = [f"{settings.topic_prefix}ocpi-hub:ocpp:presence:{cp}" for cp in ids]

    def missing(self, connected: int) -> int:
        """How many of the first ``connected`` chargers have no presence key."""
        absent = 0
        for start in range(0, connected, 1000):
            keys = self._keys[start : min(start + 1000, connected)]
            absent += sum(1 for v in self._redis.mget(keys) if v is None)
        return absent

    def close(self) -> None:
        self._redis.close()


def _split(ids: Sequence[str], parts: int) -> list[list[str]]:
    return [list(ids[k::parts]) for k in range(parts)]


def _kib_per(delta_kib: int | None, n: int) -> float | None:
    return round(delta_kib / n, 1) if delta_kib is not None and n else None


async def _setup(
    args: argparse.Namespace,
    settings: Settings,
    run_id: str,
    password: str,
    ops_headers: dict[str, str],
) -> tuple[str, list[str], dict[str, Any]]:
    base_url = api_base_url(settings)
    location_id = f"BENCH-CP-{run_id}"
    ids = [f"BENCH-{run_id}-{n:05d}" for n in range(args.max)]
    async with httpx.AsyncClient(
        base_url=base_url, timeout=60, trust_env=False, headers=ops_headers
    ) as client:
        try:
            (await client.get("/healthz")).raise_for_status()
        except httpx.HTTPError as exc:
            raise PlatformUnavailableError(f"API at {base_url}: {exc}") from exc
        try:
            await put_bench_location(client, settings, location_id, EVSES)
        except OpsError as exc:
            raise PlatformUnavailableError(str(exc)) from exc
        console.print(f"registering {len(ids)} charge points through ops ...")
        started = time.perf_counter()

        async def reg(cp_id: str) -> float:
            evse_uid = f"E{int(cp_id.rsplit('-', 1)[1]) % EVSES + 1}"
            # The registry checks the location on its write-path state: a
            # location PUT a moment ago is known at once.
            return await register(client, cp_id, location_id, evse_uid, password)

        results = await bounded(ids, OPS_CONCURRENCY, reg)
        took = time.perf_counter() - started
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise PlatformUnavailableError(f"{len(failed)} registrations refused, e.g. {failed[0]}")
    mongo: MongoClient[Doc] = MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000)
    try:
        view_s = await wait_registered(mongo, settings, ids, REGISTER_VIEW_TIMEOUT_S)
    except OpsError as exc:
        raise PlatformUnavailableError(str(exc)) from exc
    finally:
        mongo.close()
    setup = {
        "location_id": location_id,
        "registrations": len(ids),
        "registrations_per_s": round(len(ids) / took, 1),
        "register_latency_ms": summarize_ms([r for r in results if isinstance(r, float)]),
        "view_shows_all_after_s": round(view_s, 2),
    }
    return location_id, ids, setup


async def _deregister(
    settings: Settings, ids: Sequence[str], ops_headers: dict[str, str]
) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=api_base_url(settings), timeout=60, trust_env=False, headers=ops_headers
    ) as client:
        started = time.perf_counter()
        done = await bounded(ids, OPS_CONCURRENCY, lambda cp: deregister(client, cp))
    return {
        "deregistered": sum(1 for d in done if d is True),
        "failed": sum(1 for d in done if d is not True),
        "seconds": round(time.perf_counter() - started, 1),
    }


async def _step(
    args: argparse.Namespace,
    clients: Clients,
    meter: CpuMeter,
    gw_pid: int | None,
    new_ids: Sequence[str],
    target: int,
    presence: Presence,
) -> dict[str, Any]:
    procs = len(clients.pipes)
    rss_before = rss_kib(gw_pid) if gw_pid else None
    cpu0, cl0 = meter.snapshot(), clients.cpu_s()
    started = time.perf_counter()
    replies = await clients.ask(
        [("connect", (part, args.connect_deadline_s)) for part in _split(new_ids, procs)]
    )
    connect_wall = time.perf_counter() - started
    cpu1, cl1 = meter.snapshot(), clients.cpu_s()
    failed: Counter[str] = Counter()
    for r in replies:
        failed.update(r["failed"])
    connect_s = [t for r in replies for t in r["connect_s"]]
    connected = len(connect_s)

    await clients.all("window")
    cpu2, cl2 = meter.snapshot(), clients.cpu_s()
    await asyncio.sleep(args.hold_s)
    got = await clients.all("collect")
    cpu3, cl3 = meter.snapshot(), clients.cpu_s()
    rss_after = rss_kib(gw_pid) if gw_pid else None
    missing = await asyncio.to_thread(presence.missing, target)
    hold = CpuMeter.between(cpu2, cpu3)
    hb_failed: Counter[str] = Counter()
    for r in got:
        hb_failed.update(r["hb_failed"])
    rtts = [t for r in got for t in r["rtts"]]
    hb_ok = sum(r["hb_ok"] for r in got)
    dropped = sum(r["dropped"] for r in got)
    held = sum(r["held"] for r in got)
    client_cores_hold = sum(cl3.values()) - sum(cl2.values())
    client_cores_connect = sum(cl1.values()) - sum(cl0.values())
    hb = summarize_ms(rtts)
    clean = (
        not failed
        and not hb_failed
        and dropped == 0
        and held == target
        and missing == 0
        and float(hb.get("p99", 0.0)) <= args.p99_bound_ms
    )
    return {
        "chargers": target,
        "held": held,
        "presence_missing": missing,
        "clean": clean,
        "connect": {
            "new": len(new_ids),
            "connected": connected,
            "failed": dict(failed),
            "failed_examples": [e for r in replies for e in r["failed_examples"]][:3],
            "wall_s": round(connect_wall, 2),
            "per_s": round(connected / connect_wall, 1) if connect_wall > 0 else None,
            "latency_ms": summarize_ms(connect_s),
            "gateway_cpu_ms_per_connect": round(
                CpuMeter.between(cpu0, cpu1)["cpu_s"].get("gateway", 0.0) / connected * 1000, 1
            )
            if connected
            else None,
            "client_cpu_s": round(client_cores_connect, 2),
        },
        "heartbeats": {
            "hold_s": hold["wall_s"],
            "ok": hb_ok,
            "failed": dict(hb_failed),
            "dropped_connections": dropped,
            "per_s": round(hb_ok / hold["wall_s"], 1),
            "kafka_events_per_s": round(hb_ok / hold["wall_s"], 1),
            "rtt_ms": hb,
        },
        "gateway": {
            "rss_kib": rss_after,
            "rss_delta_kib": (rss_after - rss_before)
            if rss_after is not None and rss_before is not None
            else None,
            "cpu_pct_hold": round(hold["cores"].get("gateway", 0.0) * 100, 1),
            "open_fds": open_fds(gw_pid) if gw_pid else None,
        },
        "clients": {
            "cpu_pct_hold": round(client_cores_hold / hold["wall_s"] * 100, 1),
            "rss_kib": [r["rss_kib"] for r in got],
        },
        "cpu_hold": hold,
    }


async def run(args: argparse.Namespace, started_wall: float) -> tuple[dict[str, Any], int]:
    settings = get_settings()
    run_id = uuid.uuid4().hex[:8]
    gw_pid = read_pid(args.run_dir, "gateway")
    if gw_pid is None or rss_kib(gw_pid) is None:
        console.print(
            f"[yellow]no running gateway pid under {args.run_dir}[/]: RSS and CPU of the "
            "gateway will be missing (pass --run-dir of the platform `make up` started)"
        )
        gw_pid = None
    url = gateway_url(settings)
    report: dict[str, Any] = {
        "benchmark": "chargers",
        "run_id": run_id,
        "started_at": utc_iso(started_wall),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "max": args.max,
            "steps": args.step_list,
            "heartbeat_s": args.heartbeat_s,
            "hold_s": args.hold_s,
            "p99_bound_ms": args.p99_bound_ms,
            "client_processes": args.procs,
            "connect_concurrency_per_process": args.connect_concurrency,
            "connect_deadline_s": args.connect_deadline_s,
            "gateway": url,
            "gateway_pid": gw_pid,
            "gateway_fd_limit": fd_limit(gw_pid) if gw_pid else None,
            "client_fd_limit": raise_fd_limit(),
            "run_dir": str(args.run_dir),
        },
    }
    meter = CpuMeter(args.run_dir)
    report["parameters"]["cpu_accounted_processes"] = meter.names
    password = bench_password()
    # /ops needs an operator's key (docs/adr/0031), revoked when the run ends.
    keys = contextlib.ExitStack()
    ops_headers = await asyncio.to_thread(ops_key, run_id, keys)
    location_id, ids, setup = await _setup(args, settings, run_id, password, ops_headers)
    report["setup"] = setup
    console.print(
        f"{len(ids)} charge points registered ({setup['registrations_per_s']}/s); "
        f"location {location_id}"
    )
    rss_base = rss_kib(gw_pid) if gw_pid else None
    report["gateway_rss_kib_before"] = rss_base
    presence = Presence(settings, ids)
    clients = Clients(args.procs, url, password, args.heartbeat_s, args.connect_concurrency)
    steps: list[dict[str, Any]] = []
    report["steps"] = steps
    try:
        done = 0
        prev_rss = rss_base
        for target in args.step_list:
            console.print(f"step {target}: connecting {target - done} more ...")
            step = await _step(args, clients, meter, gw_pid, ids[done:target], target, presence)
            rss = step["gateway"]["rss_kib"]
            delta = rss - prev_rss if rss is not None and prev_rss is not None else None
            step["gateway"]["rss_delta_since_previous_step_kib"] = delta
            step["gateway"]["kib_per_connection_step"] = _kib_per(delta, target - done)
            step["gateway"]["kib_per_connection_total"] = _kib_per(
                rss - rss_base if rss is not None and rss_base is not None else None, target
            )
            steps.append(step)
            hb = step["heartbeats"]
            console.print(
                f"  held {step['held']}, presence missing {step['presence_missing']}, "
                f"connects failed {step['connect']['failed'] or 0}, "
                f"heartbeats {hb['per_s']}/s p99 {hb['rtt_ms'].get('p99')} ms, "
                f"gateway {step['gateway']['cpu_pct_hold']}% CPU, "
                f"RSS {rss} KiB, clean={step['clean']}"
            )
            done, prev_rss = target, rss
            if not step["clean"]:
                break
    finally:
        with contextlib.suppress(Exception):
            closed = await clients.all("stop")
            report["disconnected"] = sum(c["closed"] for c in closed)
        clients.join()
        presence.close()
        console.print(f"deregistering {len(ids)} charge points ...")
        report["teardown"] = await _deregister(settings, ids, ops_headers)
        keys.close()
    clean = [s["chargers"] for s in steps if s["clean"]]
    report["largest_clean_step"] = max(clean) if clean else None
    report["first_unclean_step"] = next((s["chargers"] for s in steps if not s["clean"]), None)
    finished = time.time()
    report["finished_at"] = utc_iso(finished)
    report["duration_s"] = round(finished - started_wall, 1)
    return report, 0 if clean else 1


def render(report: dict[str, Any]) -> None:
    m, p = report["machine"], report["parameters"]
    console.print(
        f"\n[bold]chargers[/] run {report['run_id']}, commit {report['git_commit']}, "
        f"{m['cpu_count']} cores, heartbeat every {p['heartbeat_s']} s, "
        f"{p['client_processes']} client processes"
    )
    table = Table("chargers", "connects/s", "gw ms CPU /connect", "hb/s (=events/s)",
                  "hb p50 / p99 ms", "failed", "no presence", "gw RSS MiB", "KiB/conn", "gw CPU %",
                  "clients CPU %", "clean")  # fmt: skip
    for s in report["steps"]:
        hb, gw, cn = s["heartbeats"], s["gateway"], s["connect"]
        failed = sum(cn["failed"].values()) + sum(hb["failed"].values())
        failed += hb["dropped_connections"]
        table.add_row(
            str(s["chargers"]),
            str(cn["per_s"]),
            str(cn["gateway_cpu_ms_per_connect"]),
            str(hb["per_s"]),
            f"{hb['rtt_ms'].get('p50')} / {hb['rtt_ms'].get('p99')}",
            str(failed),
            str(s.get("presence_missing", "?")),
            f"{gw['rss_kib'] / 1024:.1f}" if gw["rss_kib"] else "?",
            str(gw["kib_per_connection_step"]),
            str(gw["cpu_pct_hold"]),
            str(s["clients"]["cpu_pct_hold"]),
            "yes" if s["clean"] else "[red]no[/]",
        )
    console.print(table)
    console.print(f"largest clean step: {report['largest_clean_step']}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_ocpp_logs()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or REPO / "data" / "bench" / f"chargers-{stamp}.json"
    report, code = run_and_write(run, args, out, render)
    if report is None:
        return code
    return code


if __name__ == "__main__":
    sys.exit(main())
