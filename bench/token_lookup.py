"""The partner behind a request's token: what every OCPI request does first
(``api/auth.py``), before and after docs/adr/0024.

In-process, against the real MongoDB-wire server and Redis (not the running
platform). ``--partners`` registered partners are put in place twice: as
documents of the MongoDB partners view (with the token-hash indexes that
view had), and as states of the decision store with their token names (as
a rebuild leaves them). Then, one lookup at a time, then ``-c`` in flight:

* ``view_in_thread``: the lookup as it was before: the synchronous
  dependency ran in FastAPI's thread pool, and queried the view by token
  hash (``find_one`` on ``their_token_hash`` and ``status``) and validated
  the document into a ``PartnerState``;
* ``store``: ``WritePath.find`` on the Redis decision store (one script
  round trip; the decoded state is reused when unchanged): a cache miss now;
* ``cache``: ``LookupCache.find`` of a process whose cache has heard from
  Redis (its feed followed in the background): a cache hit now.

Each figure has the wall latency and this process's CPU time per lookup
(``time.process_time``; the servers' own CPU is not in it). Its data lives
in a fresh MongoDB database and Redis keys under its own prefix, removed at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import redis.asyncio as aioredis
import structlog
from pymongo import ASCENDING, MongoClient
from rich.console import Console
from rich.table import Table

from bench.harness import git_commit, run_and_write, summarize, utc_iso
from ocpi_hub.secrets import hash_token, new_token
from ocpi_hub.settings import get_settings
from producers.decision_store import RedisDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.lookups import LookupCache
from producers.partners import SLICE, PartnerState
from producers.write_path import WritePath
from projections.mongo.folding import Doc

REPO = Path(__file__).resolve().parents[1]
console = Console(highlight=False)


def partner(i: int, token_hash: str) -> PartnerState:
    return PartnerState(
        partner_id=f"bench-{i}",
        status="registered",
        direction="inbound",
        version="2.2.1",
        versions_url=f"https://partner-{i}.example/ocpi/versions",
        their_token_hash=token_hash,
        our_token_encrypted="sealed",
    )


async def measure(
    n: int,
    concurrency: int,
    lookup: Callable[[str], Awaitable[PartnerState | None]],
    hashes: list[str],
) -> dict[str, Any]:
    """``n`` lookups one at a time, then ``n`` with ``concurrency`` in flight;
    every one must find its partner."""
    missing = 0
    seconds: list[float] = []
    cpu = time.process_time()
    for i in range(n):
        started = time.perf_counter()
        missing += await lookup(hashes[i % len(hashes)]) is None
        seconds.append(time.perf_counter() - started)
    sequential_cpu = time.process_time() - cpu

    queue = list(range(n))

    async def worker() -> None:
        nonlocal missing
        while queue:
            i = queue.pop()
            missing += await lookup(hashes[i % len(hashes)]) is None

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    concurrent_cpu = time.process_time() - cpu
    return {
        "sequential_us": summarize(seconds, 1e6),
        "sequential_cpu_us_per_lookup": round(sequential_cpu / n * 1e6, 1),
        "concurrent_per_s": round(n / wall, 1),
        "concurrent_cpu_us_per_lookup": round(concurrent_cpu / n * 1e6, 1),
        "not_found": missing,
    }


async def run(args: argparse.Namespace, started_wall: float) -> tuple[dict[str, Any], int]:
    settings = get_settings()
    run_id = uuid.uuid4().hex[:8]
    mongo: MongoClient[Doc] = MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000)
    db = mongo[f"bench_tokens_{run_id}"]
    redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=3)
    prefix = f"bench-{run_id}-"
    store = RedisDecisionStore(redis, prefix)
    log = InMemoryEventLog()  # nothing is written: lookups only
    path = WritePath(log, store, InMemoryLogHistory(log))
    lease = settings.partner_cache_lease_s
    cache = LookupCache(
        path,
        SLICE,
        lambda: store.changes(SLICE.name, ping_s=lease / 4),
        lease_s=lease,
        size=settings.partner_cache_size,
    )
    following = asyncio.create_task(cache.follow())
    try:
        states = [partner(i, hash_token(new_token())) for i in range(args.partners)]
        hashes = [s.their_token_hash or "" for s in states]
        random.Random(1).shuffle(hashes)
        # The view as it was: one document per partner, indexed by token hash.
        coll = db["partners"]
        coll.create_index([("their_token_hash", ASCENDING)])
        coll.create_index([("token_a_hash", ASCENDING)])
        coll.insert_many(
            [{"_id": s.partner_id, **s.model_dump(mode="json"), "_positions": {}} for s in states]
        )
        await store.rebuilt(
            SLICE.name,
            {s.partner_id: (SLICE.dump(s), 0, i) for i, s in enumerate(states)},
            {s.partner_id: [s.their_token_hash or ""] for s in states},
        )

        def by_token_hash(token_hash: str) -> PartnerState | None:
            doc = coll.find_one({"their_token_hash": token_hash, "status": "registered"})
            if doc is None:
                return None
            return PartnerState.model_validate({k: v for k, v in doc.items() if k[0] != "_"})

        async def view_in_thread(token_hash: str) -> PartnerState | None:
            return await anyio.to_thread.run_sync(by_token_hash, token_hash)

        async def from_store(token_hash: str) -> PartnerState | None:
            return await path.find(SLICE, token_hash)

        for _ in range(500):
            if cache.fresh():
                break
            await asyncio.sleep(0.01)
        if not cache.fresh():
            raise RuntimeError("the cache never heard from Redis")
        for h in hashes:  # warm: every partner found once
            await cache.find(h)

        figures: dict[str, Any] = {}
        for name, lookup in (
            ("view_in_thread", view_in_thread),
            ("store", from_store),
            ("cache", cache.find),
        ):
            await measure(min(args.warmup, args.n), args.concurrency, lookup, hashes)
            figures[name] = await measure(args.n, args.concurrency, lookup, hashes)
    finally:
        following.cancel()
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        mongo.drop_database(db.name)
        mongo.close()
    report = {
        "benchmark": "token_lookup",
        "run_id": run_id,
        "started_at": utc_iso(started_wall),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_end": os.getloadavg(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "partners": args.partners,
            "n": args.n,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "mongo": settings.mongo_url,
            "redis": settings.redis_url,
        },
        "lookups": figures,
    }
    failed = sum(f["not_found"] for f in figures.values())
    return report, 1 if failed else 0


def render(report: dict[str, Any]) -> None:
    m = report["machine"]
    console.print(
        f"[bold]Token lookup benchmark[/]  run {report['run_id']}  commit "
        f"{report['git_commit']}  {m['cpu_count']} cores  load {m['load_average_at_end']}"
    )
    p = report["parameters"]
    table = Table(
        title=f"{p['partners']} partners, {p['n']} lookups each way "
        f"(one at a time; {p['concurrency']} in flight)"
    )
    for column in ("lookup", "p50 µs", "p99 µs", "CPU µs", "/s in flight", "CPU µs"):
        table.add_column(column, justify="right" if column != "lookup" else "left")
    for name, f in report["lookups"].items():
        s = f["sequential_us"]
        table.add_row(
            name,
            str(s["p50"]),
            str(s["p99"]),
            str(f["sequential_cpu_us_per_lookup"]),
            str(f["concurrent_per_s"]),
            str(f["concurrent_cpu_us_per_lookup"]),
        )
    console.print(table)


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return REPO / "data" / "bench" / f"token_lookup-{stamp}.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.token_lookup", description=__doc__)
    parser.add_argument("-n", type=int, default=5000, help="lookups per variant and mode")
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--partners", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="JSON report path")
    args = parser.parse_args(argv)
    if min(args.n, args.concurrency, args.partners) < 1:
        parser.error("-n, -c and --partners must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    out: Path = args.out or default_out()
    _, code = run_and_write(run, args, out, render)
    return code


if __name__ == "__main__":
    sys.exit(main())
