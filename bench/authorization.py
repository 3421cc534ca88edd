"""Real-time token authorization latency, we as CPO (``producers/authorization.py``).

In-process, against real services, not the running platform: the
benchmark builds the ``AuthorizationService`` with its production adapters
(the tokens' states in the Redis decision store of the write path, the
MongoDB tokens view as the directory of who holds a uid, the Redis decision
cache, the pooled HTTP real-time client) and starts, in a subprocess, a
local HTTP peer that runs this platform's own eMSP route ``POST
/ocpi/emsp/2.2.1/tokens/{uid}/authorize`` under uvicorn (on the in-memory
write path: the peer's Kafka write is not part of what is measured). It
then measures, one request at a time:

* whitelist: a partner's token with whitelist ALWAYS (our key peeked, the
  directory asked, the holder's state peeked; no call, no cache);
* whitelist_named: the same token with its owner named by the caller (one
  peek of its state, no directory);
* cache miss: a NEVER token at a new location each time (the same lookups,
  cache miss, HTTP call to the peer, cache write);
* cache hit: the same NEVER token at the same location (cache hit only).

Its data lives in a fresh MongoDB database (dropped at the end) and Redis
keys under its own prefix (deleted at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
import structlog
from cryptography.fernet import Fernet
from pymongo import MongoClient
from rich.console import Console

from bench.harness import cheap_async_library_detection, git_commit, summarize_ms, utc_iso
from ocpi_hub.bootstrap import async_mongo_client
from ocpi_hub.secrets import TokenVault
from ocpi_hub.settings import Settings, get_settings
from producers import tokens
from producers.authorization import (
    AuthorizationService,
    AuthorizeRequest,
    DecisionSource,
    HttpRealTimeAuthorizer,
    RedisDecisionCache,
)
from producers.decision_store import InMemoryDecisionStore, RedisDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.tokens import Origin, TokenState, plan_put
from producers.write_path import WritePath
from projections.mongo.folding import Doc
from projections.mongo.tokens import TokenViewQuery, TokenViewWriter
from projections.position import Record
from schemas.events import Party
from schemas.events.tokens import TokenRef
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.tokens import LocationReferences
from schemas.ocpi.types import TokenType
from schemas.ocpi.versions import Endpoint, InterfaceRole

REPO = Path(__file__).resolve().parents[1]
console = Console()

US = Party(country_code="ZZ", party_id="HUB")
PEER = Party(country_code="ZZ", party_id="BPE")  # ZZ: never a real party
STAMP = "2026-01-01T00:00:00Z"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# The bench's tokens are written here (the decision store is rebuilt from
# it); decisions on our own tokens would go here too (the bench has none).
LOG = InMemoryEventLog()
PEER_TOKEN = "bench-peer-token"


def token_body(uid: str, whitelist: str) -> dict[str, Any]:
    return {
        "country_code": PEER.country_code,
        "party_id": PEER.party_id,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"ZZ-BPE-{uid[-8:]}",
        "issuer": "Bench Mobility",
        "valid": True,
        "whitelist": whitelist,
        "last_updated": STAMP,
    }


# --- the local eMSP peer (a subprocess) -------------------------------------------


def serve_peer(port: int, uids: Sequence[str]) -> None:
    """Our own eMSP authorize route, with the peer's tokens in memory."""
    import uvicorn

    from api.app import create_app
    from api.auth import Caller, registered_caller

    store = InMemoryDecisionStore()
    for u in uids:
        key = TokenRef(
            country_code=PEER.country_code, party_id=PEER.party_id, uid=u, type=TokenType.RFID
        ).key
        store.seed(tokens.SLICE, key, TokenState(token=token_body(u, "NEVER")))
    log = InMemoryEventLog()

    caller = Caller(
        PartnerState(
            partner_id="bench-cpo",
            status="registered",
            roles=(
                CredentialsRole(
                    role=Role.CPO,
                    business_details=BusinessDetails(name="bench CPO"),
                    country_code=US.country_code,
                    party_id=US.party_id,
                ),
            ),
        ),
        PEER_TOKEN,
        False,
    )
    settings = Settings(
        party_country_code=PEER.country_code,
        party_id=PEER.party_id,
        log_level="WARNING",
        api_port=port,
    )
    write_path = WritePath(log, store, InMemoryLogHistory(log))
    app = create_app(settings, event_log=log, write_path=write_path)
    app.dependency_overrides[registered_caller] = lambda: caller
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_for_peer(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the local peer did not start")


# --- the measurement ---------------------------------------------------------------


async def timed(
    n: int, call: Callable[[int], Awaitable[DecisionSource]], expect: DecisionSource
) -> tuple[list[float], int]:
    """``n`` sequential calls; their latencies, and how many did not come
    from where they should (a wrong measurement, reported)."""
    seconds: list[float] = []
    wrong = 0
    for i in range(n):
        started = time.perf_counter()
        source = await call(i)
        seconds.append(time.perf_counter() - started)
        wrong += source is not expect
    return seconds, wrong


def start_peer(port: int, uid: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.authorization", "--serve-peer", str(port), uid],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def run(args: argparse.Namespace, run_id: str, peer_url: str) -> dict[str, Any]:
    settings = get_settings()
    never, always = f"BN{run_id}".upper(), f"BA{run_id}".upper()
    mongo: MongoClient[Doc] = MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000)
    db = mongo[f"bench_authz_{run_id}"]
    # The service reads the directory as the API does: on the async client.
    reads = async_mongo_client(settings)
    redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=3)
    prefix = f"bench-{run_id}-"
    # The bench's eMSP peer listens on loopback (url_policy's address rule off).
    realtime = HttpRealTimeAuthorizer(settings.authorization_timeout_s, allow_private_urls=True)
    try:
        await wait_for_peer(peer_url)
        writer = TokenViewWriter(db)
        writer.prepare()
        origin = Origin(PEER, "bench")
        now = datetime.now(UTC)
        records: list[Record[object]] = []
        for uid, wl in ((never, "NEVER"), (always, "ALWAYS")):
            ref = TokenRef(
                country_code=PEER.country_code, party_id=PEER.party_id, uid=uid, type=TokenType.RFID
            )
            event = plan_put(ref, token_body(uid, wl), None, origin, now).event
            [position] = await LOG.append([event])
            records.append(Record("ocpi.tokens.v1", 0, position.offset, event))
        writer.apply(records)
        # The decision store under the bench's prefix is empty: the write
        # path rebuilds the tokens' states from the (in-memory) log.
        write_path = WritePath(LOG, RedisDecisionStore(redis, prefix), InMemoryLogHistory(LOG))
        await write_path.ensure_ready([tokens.SLICE])
        vault = TokenVault(Fernet.generate_key())
        partner = PartnerState(
            partner_id="bench-peer",
            status="registered",
            our_token_encrypted=vault.encrypt(PEER_TOKEN),
            roles=(
                CredentialsRole(
                    role=Role.EMSP,
                    business_details=BusinessDetails(name="bench peer"),
                    country_code=PEER.country_code,
                    party_id=PEER.party_id,
                ),
            ),
            endpoints=(
                Endpoint.model_validate(
                    {
                        "identifier": "tokens",
                        "role": InterfaceRole.SENDER,
                        "url": f"{peer_url}/ocpi/emsp/2.2.1/tokens",
                    }
                ),
            ),
        )

        class Partners:
            async def all(self) -> list[PartnerState]:
                return [partner]

        service = AuthorizationService(
            write_path=write_path,
            directory=TokenViewQuery(reads[db.name]),
            partners=Partners(),
            realtime=realtime,
            cache=RedisDecisionCache(redis),
            vault=vault,
            us=US,
            cache_ttl_s=max(settings.authorization_cache_ttl_s, 600),
            key_prefix=prefix,
        )

        def request(uid: str, location: str, owner: Party | None) -> AuthorizeRequest:
            return AuthorizeRequest(
                uid=uid,
                type=TokenType.RFID,
                location=LocationReferences(location_id=location, evse_uids=["E1"]),
                country_code=owner.country_code if owner else None,
                party_id=owner.party_id if owner else None,
            )

        async def ask(
            uid: str, location: str, correlation_id: str, owner: Party | None = None
        ) -> DecisionSource:
            asked = request(uid, location, owner)
            decided = await service.authorize(asked, correlation_id, now=NOW)
            return decided.source

        async def whitelist(i: int) -> DecisionSource:
            return await ask(always, "L", f"w{i}")

        async def whitelist_named(i: int) -> DecisionSource:
            return await ask(always, "L", f"o{i}", PEER)

        async def miss(i: int) -> DecisionSource:
            return await ask(never, f"MISS-{i}", f"m{i}")

        async def hit(i: int) -> DecisionSource:
            return await ask(never, "HIT", f"h{i}")

        # Warm-up (connections, first imports), not measured.
        await timed(args.warmup, lambda i: miss(10**6 + i), DecisionSource.REAL_TIME)
        await ask(never, "HIT", "prime")
        figures = {}
        for name, call, expect, n in (
            ("whitelist", whitelist, DecisionSource.WHITELIST, args.n),
            ("whitelist_named", whitelist_named, DecisionSource.WHITELIST, args.n),
            ("cache_miss", miss, DecisionSource.REAL_TIME, args.misses),
            ("cache_hit", hit, DecisionSource.CACHE, args.n),
        ):
            seconds, wrong = await timed(n, call, expect)
            figures[name] = {**summarize_ms(seconds), "wrong_source": wrong}
    finally:
        await realtime.aclose()
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        mongo.drop_database(db.name)
        mongo.close()
        await reads.close()
    return {
        "benchmark": "authorization",
        "run_id": run_id,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "mode": "in-process: AuthorizationService with the tokens' states in the Redis "
            "decision store, the MongoDB tokens view as directory, the Redis cache and HTTP "
            "client; a local uvicorn peer (subprocess) running our eMSP authorize route on "
            "the in-memory write path",
            "n": args.n,
            "misses": args.misses,
            "warmup": args.warmup,
            "mongo": settings.mongo_url,
            "redis": settings.redis_url,
            "sequential": True,
        },
        "latency_ms": figures,
    }


def render(report: dict[str, Any]) -> None:
    m = report["machine"]
    console.print(
        f"[bold]Authorization benchmark[/]  run {report['run_id']}  commit "
        f"{report['git_commit']}  {m['cpu_count']} cores  Python {m['python']}"
    )
    for name, s in report["latency_ms"].items():
        console.print(
            f"  {name:<15} n={s['count']:<6} p50 {s['p50']:>7} ms  p95 {s['p95']:>7} ms  "
            f"p99 {s['p99']:>7} ms  max {s['max']:>7} ms  wrong source {s['wrong_source']}"
        )


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return REPO / "data" / "bench" / f"authorization-{stamp}.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.authorization", description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="whitelist and cache-hit requests")
    parser.add_argument("--misses", type=int, default=1000, help="cache-miss requests")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None, help="JSON report path")
    parser.add_argument("--serve-peer", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("uids", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("n", "misses"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_peer is not None:
        serve_peer(args.serve_peer, args.uids)
        return 0
    cheap_async_library_detection()
    # One info line per real-time call would measure the terminal too.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started = time.time()
    run_id = uuid.uuid4().hex[:8]
    port = free_port()
    peer = start_peer(port, f"BN{run_id}".upper())
    try:
        report = asyncio.run(run(args, run_id, f"http://127.0.0.1:{port}"))
    except KeyboardInterrupt:
        return 130
    finally:
        peer.terminate()
        peer.wait(timeout=10)
    report["started_at"] = utc_iso(started)
    render(report)
    out: Path = args.out or default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(f"report written to {out}")
    wrong = sum(s["wrong_source"] for s in report["latency_ms"].values())
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
