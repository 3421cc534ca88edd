"""What a view read costs the API process: GET of one location and a page of
the Locations Sender list, many in flight, for the checkout given.

    python -m bench.view_reads [--checkout DIR] [--locations 2000]
                               [--requests 2000] [--concurrency 32]
                               [--page-size 500] [--port 8191] [--out FILE]

``--checkout`` is the source tree whose API is measured (default: this
one); its own virtual environment runs it (``DIR/.venv/bin/ocpi-hub api``),
so two commits can be compared on the same machine, e.g. ``--checkout
/work/main`` against this tree. What it does, in order:

1. A fresh namespace on the running services (``data/run/services.env``):
   a topic prefix and a MongoDB database of its own, removed afterwards.
2. Seed: ``--locations`` of our own locations (settings ``party_*``), one
   EVSE each, written into the locations view by the projection's own
   writer (no Kafka, no projections process: the reads are what is measured).
3. The API of the checkout starts on ``--port`` (one worker) in that
   namespace; a fresh bench partner registers with it (bench/partner.py).
4. Two phases, each ``--requests`` requests on ``--concurrency`` keep-alive
   connections, after a warm-up: ``GET /ocpi/cpo/2.2.1/locations/{id}`` of
   random seeded locations, and ``GET /ocpi/cpo/2.2.1/locations?limit=N``
   (the first page; ``X-Total-Count`` from the maintained counts). Every
   answer must be HTTP 200 / OCPI 1000 with the right object or page size.
   Reported: latency p50/p99, requests per second, and CPU milliseconds per
   request of the API process (its process group) and of the document store
   (its pidfile under ``--services-run-dir``, when there).

A measurement, not a test: nothing judges the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from pymongo import MongoClient
from rich.table import Table

from bench.harness import (
    REPO,
    CpuMeter,
    PlatformUnavailableError,
    cheap_async_library_detection,
    console,
    format_stamp,
    git_commit,
    new_http_clients,
    ocpi_status_code,
    rate,
    register_partner,
    run_and_write,
    run_concurrently,
    summarize_ms,
    utc_iso,
)
from ocpi_hub.settings import Settings
from producers.locations import plan_put
from producers.write_path import Origin
from projections.mongo.locations import LocationViewWriter
from projections.position import Record
from schemas.events import Party
from schemas.events.locations import LocationObjectRef
from schemas.topics import LOCATIONS
from tests.ocpi_objects import connector, evse, location
from tests.services import delete_topics

Doc = dict[str, Any]
STAMP0_MS = 978_307_200_000  # 2001-01-01: the seeded objects sort before real ones
START_TIMEOUT_S = 60.0
SENDER = "/ocpi/cpo/2.2.1/locations"


def seed(settings: Settings, db_name: str, n: int) -> list[str]:
    """``n`` of our own locations in the view, by the projection's writer."""
    cc, pid = settings.party_country_code, settings.party_id
    origin = Origin(Party(country_code=cc, party_id=pid), "bench-view-reads")
    now = datetime.now(UTC)
    ids = [f"BENCH-READ-{i:06d}" for i in range(n)]
    records: list[Record[object]] = []
    for offset, location_id in enumerate(ids):
        at = format_stamp(STAMP0_MS + offset)
        body = location(
            location_id,
            country_code=cc,
            party_id=pid,
            at=at,
            evses=[evse(f"{location_id}-1", at=at, connectors=[connector(at=at)])],
        )
        ref = LocationObjectRef(country_code=cc, party_id=pid, location_id=location_id)
        event = plan_put(ref, body, None, origin, now).event
        records.append(Record(LOCATIONS.name, 0, offset, event))
    client: MongoClient[Doc]
    with MongoClient(settings.mongo_url, tz_aware=True) as client:
        writer = LocationViewWriter(client[db_name], cache_size=0)
        writer.prepare()
        for start in range(0, len(records), 1000):
            writer.apply(records[start : start + 1000])
    return ids


def namespace_env(run_id: str, port: int) -> dict[str, str]:
    return {
        "OCPI_HUB_TOPIC_PREFIX": f"bench-reads-{run_id}-",
        "OCPI_HUB_MONGO_DB": f"bench_reads_{run_id}",
        "OCPI_HUB_API_PORT": str(port),
        "OCPI_HUB_API_HOST": "127.0.0.1",
        "OCPI_HUB_API_WORKERS": "1",
        "OCPI_HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # One key for the API and the CLI that invites the partner.
        "OCPI_HUB_SECRET_KEY": Fernet.generate_key().decode(),
        "OCPI_HUB_LOG_LEVEL": "WARNING",
    }


async def wait_ready(base_url: str, api: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base_url, trust_env=False) as client:
        while time.monotonic() < deadline:
            if api.poll() is not None:
                raise PlatformUnavailableError(f"the API exited with {api.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz", timeout=3)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise PlatformUnavailableError(f"the API at {base_url} was not ready in {START_TIMEOUT_S} s")


async def phase(
    name: str,
    clients: list[httpx.AsyncClient],
    authorization: str,
    path_of: Any,
    check: Any,
    n: int,
    meter: CpuMeter,
) -> dict[str, Any]:
    headers = {"Authorization": authorization}
    wrong = 0

    async def one(i: int, worker: int) -> None:
        nonlocal wrong
        response = await clients[worker].get(path_of(i), headers=headers)
        if response.status_code != 200 or ocpi_status_code(response) != 1000:
            raise RuntimeError(f"HTTP {response.status_code}")
        if not check(i, response):
            wrong += 1

    concurrency = len(clients)
    await run_concurrently(min(n, 4 * concurrency), concurrency, one)  # warm-up
    before = meter.snapshot()
    latencies, wall, failures = await run_concurrently(n, concurrency, one)
    after = meter.snapshot()
    cpu = CpuMeter.between(before, after)
    api_cpu = cpu["cpu_s"].get("api", 0.0)
    done = len(latencies)
    report: dict[str, Any] = {
        "requests": done,
        "failures": dict(failures),
        "wrong_answers": wrong,
        "per_s": rate(done, wall),
        "ms": summarize_ms(latencies),
        "api_cpu_ms_per_request": round(1000 * api_cpu / done, 3) if done else None,
        "docstore_cpu_ms_per_request": (
            round(1000 * cpu["cpu_s"]["docstore"] / done, 3)
            if done and "docstore" in cpu["cpu_s"]
            else None
        ),
        "cpu": cpu,
    }
    console.print(
        f"  {name}: {report['per_s']} /s, p50 {report['ms'].get('p50')} ms, "
        f"p99 {report['ms'].get('p99')} ms, API CPU {report['api_cpu_ms_per_request']} ms/request"
    )
    return report


@dataclass
class Started:
    checkout: Path
    settings: Settings
    run_id: str
    ids: list[str]
    run_dir: Path
    api: subprocess.Popen[bytes]
    log_file: BinaryIO


def start(args: argparse.Namespace) -> Started:
    """The namespace, its seeded view and the checkout's API (blocking: run
    in a thread)."""
    checkout = Path(args.checkout).resolve()
    command = checkout / ".venv" / "bin" / "ocpi-hub"
    if not command.exists():
        raise PlatformUnavailableError(f"no `ocpi-hub` in a virtual environment at {command}")
    run_id = uuid.uuid4().hex[:8]
    env = namespace_env(run_id, args.port)
    os.environ.update(env)  # the partner invite (a CLI subprocess) uses the namespace too
    settings = Settings()
    console.print(f"[bold]View reads[/] run {run_id}: {checkout} ({git_commit_of(checkout)})")
    ids = seed(settings, settings.mongo_db, args.locations)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    log_file = (run_dir / "api.log").open("wb")
    api = subprocess.Popen(
        [str(command), "api"],
        cwd=checkout,
        env=dict(os.environ),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the meter counts it alone
    )
    (run_dir / "api.pid").write_text(str(api.pid))
    # The document store's CPU beside the API's, when its pidfile is known.
    store_pid = Path(args.services_run_dir) / "mongo.pid"
    if store_pid.exists():
        (run_dir / "docstore.pid").write_text(store_pid.read_text())
    return Started(checkout, settings, run_id, ids, run_dir, api, log_file)


def stop(started: Started) -> None:
    started.api.terminate()
    try:
        started.api.wait(timeout=15)
    except subprocess.TimeoutExpired:
        started.api.kill()
    started.log_file.close()


async def run(args: argparse.Namespace, started_wall: float) -> tuple[dict[str, Any], int]:
    cheap_async_library_detection()
    s = await asyncio.to_thread(start, args)
    checkout, settings, run_id, ids, run_dir, api = (
        s.checkout, s.settings, s.run_id, s.ids, s.run_dir, s.api
    )  # fmt: skip
    load_at_start = os.getloadavg()
    base_url = f"http://127.0.0.1:{args.port}"
    clients = new_http_clients(base_url, args.concurrency)
    report: dict[str, Any] = {}
    try:
        await wait_ready(base_url, api)
        with contextlib.ExitStack() as stack:
            partner = await register_partner(stack, run_id)
            meter = CpuMeter(run_dir)
            rng = random.Random(7)
            picks = [rng.randrange(len(ids)) for _ in range(args.requests + 4 * args.concurrency)]

            def one_path(i: int) -> str:
                return f"{SENDER}/{ids[picks[i]]}"

            def one_right(i: int, response: httpx.Response) -> bool:
                return bool(response.json()["data"]["id"] == ids[picks[i]])

            def page_path(i: int) -> str:
                return f"{SENDER}?limit={args.page_size}"

            want = min(args.page_size, len(ids))

            def page_right(i: int, response: httpx.Response) -> bool:
                return bool(len(response.json()["data"]) == want)

            one = await phase(
                "one location", clients, partner.authorization, one_path, one_right,
                args.requests, meter,
            )  # fmt: skip
            page = await phase(
                f"list page of {args.page_size}", clients, partner.authorization, page_path,
                page_right, max(1, args.requests // 10), meter,
            )  # fmt: skip
        report = {
            "bench": "view_reads",
            "run_id": run_id,
            "checkout": str(checkout),
            "commit": git_commit_of(checkout),
            "bench_commit": git_commit(),
            "started_at": utc_iso(started_wall),
            "machine": {"cpus": os.cpu_count(), "loadavg_at_start": load_at_start},
            "parameters": {
                "locations": args.locations,
                "requests": args.requests,
                "concurrency": args.concurrency,
                "page_size": args.page_size,
                "api_workers": 1,
            },
            "one_location": one,
            "list_page": page,
        }
        report["machine"]["loadavg_at_end"] = os.getloadavg()
    finally:
        for client in clients:
            await client.aclose()
        await asyncio.to_thread(stop, s)
        await cleanup(settings)
    bad = any(
        p["failures"] or p["wrong_answers"]
        for p in (report.get("one_location"), report.get("list_page"))
        if p
    )
    return report, 1 if bad else 0


def git_commit_of(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip()


async def cleanup(settings: Settings) -> None:
    """The namespace's database, topics and Redis keys."""

    def drop() -> None:
        with MongoClient[Doc](settings.mongo_url) as client:
            client.drop_database(settings.mongo_db)

    await asyncio.to_thread(drop)
    with contextlib.suppress(Exception):
        await delete_topics(settings.kafka_bootstrap, settings.topic_prefix)
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        async for key in redis.scan_iter(match=f"{settings.topic_prefix}*", count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()


def render(report: dict[str, Any]) -> None:
    table = Table(title=f"view reads: {report['checkout']} @ {report['commit']}")
    columns = ("phase", "req/s", "p50 ms", "p99 ms", "API CPU ms/req", "store CPU ms/req", "failed")
    for column in columns:
        table.add_column(column)
    for name in ("one_location", "list_page"):
        p = report[name]
        table.add_row(
            name, str(p["per_s"]), str(p["ms"].get("p50")), str(p["ms"].get("p99")),
            str(p["api_cpu_ms_per_request"]), str(p["docstore_cpu_ms_per_request"]),
            str(sum(p["failures"].values()) + p["wrong_answers"]),
        )  # fmt: skip
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.view_reads", description=__doc__)
    parser.add_argument("--checkout", default=str(REPO), help="source tree whose API runs")
    parser.add_argument("--locations", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--port", type=int, default=8191)
    parser.add_argument(
        "--services-run-dir",
        default=str(REPO / "data" / "run"),
        help="where `make up` keeps the services' pidfiles (the store's CPU is reported too)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or REPO / "data" / "bench" / f"view-reads-{stamp}.json"
    _, code = run_and_write(run, args, out, render)
    return code


if __name__ == "__main__":
    sys.exit(main())
