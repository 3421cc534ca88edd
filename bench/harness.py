"""What every benchmark shares: the shell that runs one, shows its report
and writes it as JSON (``run_and_write``), figures (percentiles, rates,
stamps, the commit measured), CPU accounting of the processes ``make up``
started (``CpuMeter``), HTTP clients for the running API, and the pre-flight
and setup steps against it. Measurements, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import os
import resource
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from pymongo import MongoClient
from pymongo.errors import PyMongoError
from rich.console import Console

from bench.partner import COUNTRY_CODE, BenchPartner, PartnerSetupError, bench_partner
from ocpi_hub.settings import Settings
from schemas.topics import EVSE_STATUS
from tests.ocpi_objects import connector, evse, location

REPO = Path(__file__).resolve().parent.parent
HTTP_TIMEOUT_S = 30.0
Doc = dict[str, Any]
console = Console(highlight=False)


# --------------------------------------------------------------------------- #
# The shell: run, show, write
# --------------------------------------------------------------------------- #


class PlatformUnavailableError(Exception):
    """Something the benchmark needs is not running or not answering."""


RunBench = Callable[[argparse.Namespace, float], Coroutine[Any, Any, tuple[dict[str, Any], int]]]


def run_and_write(
    run: RunBench, args: argparse.Namespace, out: Path, render: Callable[[dict[str, Any]], None]
) -> tuple[dict[str, Any] | None, int]:
    """Run one benchmark, show its report and write it as JSON to ``out``.
    Exit code 2 (no report) when the platform is not ready, 130 on Ctrl-C."""
    started = time.time()
    try:
        report, code = asyncio.run(run(args, started))
    except PlatformUnavailableError as exc:
        console.print(f"[bold red]The platform is not ready:[/] {exc}")
        console.print("Start it with `make up` (see `make status`), then run the benchmark again.")
        return None, 2
    except KeyboardInterrupt:
        return None, 130
    render(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(f"report written to {out}")
    return report, code


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #


def summarize(values: Sequence[float], scale: float = 1.0) -> dict[str, float | int]:
    """count, mean and nearest-rank percentiles of ``values * scale``."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {
        "count": len(ordered),
        "mean": round(sum(ordered) / len(ordered) * scale, 2),
        "min": round(ordered[0] * scale, 2),
        "p50": round(rank(50) * scale, 2),
        "p95": round(rank(95) * scale, 2),
        "p99": round(rank(99) * scale, 2),
        "max": round(ordered[-1] * scale, 2),
    }


def summarize_ms(seconds: Sequence[float]) -> dict[str, float | int]:
    return summarize(seconds, 1000.0)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def format_stamp(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def utc_iso(wall: float) -> str:
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


# --------------------------------------------------------------------------- #
# CPU accounting: who kept the cores busy during a phase
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    processes: dict[str, float]  # name -> CPU seconds of its process group
    own: float  # this benchmark (every thread)
    busy_ticks: int
    total_ticks: int


class CpuMeter:
    """CPU seconds of the processes ``make up`` started (pidfiles under
    data/run; each runs in its own process group, children included) and
    of ``processes`` (name: pid) a benchmark started itself, which share its
    process group (each with its children)."""

    def __init__(self, run_dir: Path, processes: Mapping[str, int] | None = None) -> None:
        self._groups: dict[int, str] = {}
        for pidfile in sorted(run_dir.glob("*.pid")):
            with contextlib.suppress(OSError, ValueError, IndexError):
                self._groups[int(pidfile.read_text().split()[0])] = pidfile.stem
        self._pids = {pid: name for name, pid in (processes or {}).items()}
        self._tick = os.sysconf("SC_CLK_TCK")

    @property
    def names(self) -> list[str]:
        return sorted([*self._groups.values(), *self._pids.values()])

    def snapshot(self) -> CpuSnapshot:
        per: dict[str, float] = dict.fromkeys([*self._groups.values(), *self._pids.values()], 0.0)
        if self._groups or self._pids:
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/stat", "rb") as fh:
                        raw = fh.read()
                except OSError:
                    continue
                fields = raw[raw.rindex(b")") + 2 :].split()
                name = (
                    self._groups.get(int(fields[2]))  # pgrp
                    or self._pids.get(int(entry.name))
                    or self._pids.get(int(fields[1]))  # ppid
                )
                if name is not None:
                    per[name] += (int(fields[11]) + int(fields[12])) / self._tick
        usage = resource.getrusage(resource.RUSAGE_SELF)
        busy = total = 0
        with contextlib.suppress(OSError, ValueError):
            with open("/proc/stat") as fh:
                ticks = [int(x) for x in fh.readline().split()[1:]]
            total = sum(ticks[:8])  # user..steal; guest time is inside user
            busy = total - ticks[3] - ticks[4]  # minus idle and iowait
        return CpuSnapshot(
            at=time.perf_counter(),
            processes=per,
            own=usage.ru_utime + usage.ru_stime,
            busy_ticks=busy,
            total_ticks=total,
        )

    @staticmethod
    def between(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, Any]:
        """CPU used between two snapshots, in seconds and in cores (1.0 = one
        core busy all the time). "other" is what the machine as a whole was
        busy with beyond the processes we know: the kernel, and anything
        else running on the machine (which makes the figures noisy)."""
        wall = max(b.at - a.at, 1e-9)
        used = {name: b.processes.get(name, 0.0) - a.processes[name] for name in a.processes}
        used["bench"] = b.own - a.own
        total = b.total_ticks - a.total_ticks
        busy = (b.busy_ticks - a.busy_ticks) / total if total > 0 else None
        if busy is not None:
            used["other"] = max(0.0, busy * (os.cpu_count() or 1) * wall - sum(used.values()))
        ranked = sorted(used.items(), key=lambda kv: -kv[1])
        return {
            "wall_s": round(wall, 3),
            "cpu_s": {k: round(v, 2) for k, v in ranked},
            "cores": {k: round(v / wall, 2) for k, v in ranked},
            "machine_busy": round(busy, 3) if busy is not None else None,
        }


# --------------------------------------------------------------------------- #
# HTTP against the running platform
# --------------------------------------------------------------------------- #


def api_base_url(settings: Settings) -> str:
    host = settings.api_host if settings.api_host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.api_port}"


def new_http_clients(base_url: str, concurrency: int) -> list[httpx.AsyncClient]:
    """One client per worker, each with a pool of one keep-alive HTTP/1.1
    connection: ``concurrency`` connections in all, none ever waits for
    another. Not one client with a pool of ``concurrency``: httpcore scans
    every pooled connection (a readability syscall each) twice per request,
    which on this 2-core machine cost ~3.2 ms CPU per request at a pool of 32
    against ~1 ms with pools of one, and made the client, not the API, the
    bottleneck (see bench/README.md)."""
    # Never used for http://, but each client would otherwise load the CA
    # bundle itself (~25 ms of CPU apiece).
    tls = ssl.create_default_context()
    return [
        httpx.AsyncClient(
            base_url=base_url,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=httpx.Timeout(HTTP_TIMEOUT_S),
            trust_env=False,  # never through a proxy from the environment
            verify=tls,
        )
        for _ in range(concurrency)
    ]


def cheap_async_library_detection() -> None:
    """httpcore calls ``import sniffio`` on every lock it creates (several per
    request) to tell asyncio from trio. anyio 4 no longer installs sniffio,
    so each of those imports fails after a full search of sys.path (~15% of
    the client's CPU here). A ``None`` in sys.modules makes the import fail
    at once; httpcore then assumes asyncio, which is what runs."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def ocpi_status_code(response: httpx.Response) -> int | None:
    try:
        code = orjson.loads(response.content).get("status_code")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return code if isinstance(code, int) else None


async def run_concurrently(
    n: int, concurrency: int, op: Callable[[int, int], Awaitable[None]]
) -> tuple[list[float], float, Counter[str]]:
    """Run ``op(i, worker)`` for i in 0..n-1 on ``concurrency`` workers;
    return each call's latency, the wall time, and failures by type."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    cursor = 0

    async def worker(w: int) -> None:
        nonlocal cursor
        while cursor < n:
            i = cursor
            cursor += 1
            started = time.perf_counter()
            try:
                await op(i, w)
            except Exception as exc:
                failures[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return latencies, time.perf_counter() - started, failures


# --------------------------------------------------------------------------- #
# Pre-flight and setup
# --------------------------------------------------------------------------- #


async def preflight(client: httpx.AsyncClient, mongo: MongoClient[Doc], settings: Settings) -> None:
    try:
        response = await client.get("/healthz", timeout=3.0)
    except httpx.HTTPError as exc:
        raise PlatformUnavailableError(
            f"the API does not answer at {client.base_url} ({type(exc).__name__})"
        ) from exc
    if response.status_code != 200:
        raise PlatformUnavailableError(
            f"GET {client.base_url}healthz answered {response.status_code}"
        )
    try:
        await asyncio.to_thread(mongo.admin.command, "ping")
    except PyMongoError as exc:
        raise PlatformUnavailableError(
            f"MongoDB does not answer at {settings.mongo_url} ({type(exc).__name__})"
        ) from exc
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), timeout=10)
        topics = set(await asyncio.wait_for(admin.list_topics(), timeout=10))
    except Exception as exc:
        raise PlatformUnavailableError(
            f"Kafka does not answer at {settings.kafka_bootstrap} ({type(exc).__name__})"
        ) from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    wanted = settings.topic(EVSE_STATUS.name)
    if wanted not in topics:
        raise PlatformUnavailableError(f"Kafka has no topic {wanted!r}: the platform never started")


async def register_partner(
    stack: contextlib.ExitStack, run_id: str, env: Mapping[str, str] | None = None
) -> BenchPartner:
    """Invite and register a fresh bench partner (bench/partner.py) with the
    platform ``env`` names (default: the running one); it unregisters when
    ``stack`` closes. PlatformUnavailableError if refused."""
    console.print("registering a fresh bench partner (ocpi-hub partners invite + handshake)")
    try:
        return await asyncio.to_thread(stack.enter_context, bench_partner(run_id, env=env))
    except PartnerSetupError as exc:
        raise PlatformUnavailableError(str(exc)) from exc


def location_body(location_id: str, party_id: str, evse_count: int, stamp_ms: int) -> Doc:
    """A valid OCPI Location of the bench party with ``evse_count`` EVSEs
    ``<location id>-<k>``, one connector each, all stamped ``stamp_ms``."""
    at = format_stamp(stamp_ms)
    return location(
        location_id,
        country_code=COUNTRY_CODE,
        party_id=party_id,
        at=at,
        evses=[
            evse(f"{location_id}-{k}", at=at, connectors=[connector(at=at)])
            for k in range(1, evse_count + 1)
        ],
    )
