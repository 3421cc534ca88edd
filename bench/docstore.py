"""The project's own document-store operations against several MongoDB
wire-protocol servers, side by side in one run (issue 11, docs/adr/0023).

    python -m bench.docstore [--url NAME=mongodb://...]... [--documents 50000]
                             [--writes 10000] [--reads 2000] [--repeat 5]
                             [--budget 120] [--skip-tests] [--out FILE]

Without ``--url`` it takes every store ``deploy/local/docstores.py up``
started (data/run/docstores/stores.json). Each store gets a fresh database
``bench_docstore_<run id>``, dropped at the end. Phases run one after the
other and, inside each phase, store after store, so every store sees the
machine in about the same state. What is measured is the project's code:

0. The views' integration tests (``TESTS``) with the store as
   ``OCPI_HUB_MONGO_URL`` (the other services from data/run/services.env);
   first, while every server is fresh.
1. Unordered bulk with a conflict: five guarded replaces, the middle one
   filtered on a stale ``_version`` (what ``FoldingWriter`` sends when a
   concurrent writer won). MongoDB's contract: a ``BulkWriteError`` naming
   index 2 (E11000), the four others applied. A correctness check.
2. Writer, insert: ``LocationViewWriter.apply`` (projections/mongo/) on
   ``LocationObjectPut`` records built by ``producers.locations.plan_put``,
   ``--batch`` records a call (the projection runner's batch size): one
   ``find({_id: {$in}})`` and one unordered bulk of ``_version``-guarded
   replaces each. ``--documents`` locations of the bench party plus a tenth
   as many of a second party, interleaved, each with its own ``last_updated``.
   What the budget leaves unwritten is inserted as the writer would have
   written it (not measured), so the reads see the same collection everywhere.
3. Point reads: ``LocationViewQuery.get`` of random locations, one at a time.
4. Sender list: ``LocationViewQuery.page`` of the bench party, ``--page-size``
   (500), as the API calls it (``count_documents`` for X-Total-Count, then the
   keyset find): the first page, a page deep in the list by its keyset
   ``after``, the same page by a plain ``skip``; the count alone; and the
   server's ``explain`` of the keyset find.
5. QR lookup: ``LocationViewQuery.by_evse_id`` (multikey index).
6. Writer, update: ``--writes`` ``EvseStatusResolved`` records (the EVSE
   status the processors publish) on distinct existing locations.
7. Raw bulk (the store alone): the writer's guarded ``ReplaceOne`` upserts of
   documents folded beforehand, into another collection: insert, then replace.
   6 and 7 come last: bulks that replace existing documents hang some servers.

Every phase has a ``--budget`` per store: batched phases start with a batch
of ``PROBE_BATCH`` and stop when the next batch would not fit; repeated reads
stop after the budget (at least one each). A server that stops answering
(the socket timeout, twice the budget, at least 300 s) is skipped for the
rest of the run and left undropped: restart it before measuring it again.

CPU: when stores.json names a store's process groups, their CPU seconds per
phase are reported beside the benchmark's own (the writer folds in this
process). This is a measurement, not a test: nothing judges the figures.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import random
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pymongo import AsyncMongoClient, MongoClient, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from pymongo.errors import AutoReconnect, BulkWriteError, NetworkTimeout, PyMongoError
from rich.table import Table

from bench.harness import (
    REPO,
    CpuMeter,
    CpuSnapshot,
    Doc,
    PlatformUnavailableError,
    console,
    format_stamp,
    git_commit,
    rate,
    run_and_write,
    summarize_ms,
    utc_iso,
)
from ocpi_hub.settings import get_settings
from producers.locations import plan_put
from producers.write_path import Origin
from projections.mongo.folding import guard, versioned
from projections.mongo.locations import COLLECTION, LocationViewQuery, LocationViewWriter
from projections.mongo.locations import apply as fold_location
from projections.position import Record
from schemas.events import EvseStatusResolved, Party
from schemas.events.locations import EvseStatusResolvedPayload, LocationObjectRef, location_key
from schemas.ocpi.locations import EvseStatus
from schemas.topics import EVSE_STATUS, LOCATIONS
from tests.ocpi_objects import connector, evse, location

STORES_FILE = REPO / "data" / "run" / "docstores" / "stores.json"
COUNTRY = "ZZ"  # ISO 3166 leaves ZZ unassigned: never a real party
PARTY = "BDS"  # the party whose Sender list is paged
OTHER_PARTY = "BDX"  # a tenth as many locations, interleaved: the index must select
OTHER_EVERY = 10
STAMP0_MS = 1_009_843_200_000  # 2002-01-01T00:00:00Z; one location per ms after it
TESTS = (
    "tests/integration/test_views.py",
    "tests/integration/test_location_view.py",
    "tests/integration/test_tariff_view.py",
    "tests/integration/test_session_views.py",
    "tests/integration/test_cdr_views.py",
    "tests/integration/test_replay.py",
    "tests/integration/test_tokens.py",
    "tests/integration/test_sent_commands.py",
    "tests/integration/test_received_commands.py",
)
TEST_TIMEOUT_S = 1200


@dataclass
class Store:
    name: str
    url: str
    groups: list[str] = field(default_factory=list)
    client: MongoClient[Doc] | None = None
    db: Database[Doc] | None = None
    # The reads go through the API's query classes, on an async client as in
    # the API (ocpi_hub/bootstrap.py: async_mongo_client).
    aclient: AsyncMongoClient[Doc] | None = None
    result: dict[str, Any] = field(default_factory=dict)
    dead: str | None = None  # why its later phases are skipped

    @property
    def database(self) -> Database[Doc]:
        assert self.db is not None
        return self.db

    @property
    def reads(self) -> AsyncDatabase[Doc]:
        assert self.aclient is not None and self.db is not None
        return self.aclient[self.db.name]


# --------------------------------------------------------------------------- #
# Data: the project's own events, folded by the project's own writer
# --------------------------------------------------------------------------- #


def layout(n: int) -> list[tuple[str, str]]:
    """(party, location id) of each seeded location, in stamp order: ``n`` of
    the paged party, and after every ``OTHER_EVERY`` of them one of the other."""
    out = []
    for i in range(n):
        out.append((PARTY, f"BENCH-DS-{i:07d}"))
        if i % OTHER_EVERY == OTHER_EVERY - 1:
            out.append((OTHER_PARTY, f"BENCH-DS-{i // OTHER_EVERY:07d}"))
    return out


def evse_id_of(party: str, location_id: str) -> str:
    return f"{COUNTRY}*{party}*E{location_id.rsplit('-', 1)[1]}*1"


def put_records(spots: Sequence[tuple[str, str]]) -> list[Record[Any]]:
    """A ``LocationObjectPut`` per location, as the ops API decides it."""
    now = datetime.now(UTC)
    records: list[Record[Any]] = []
    for offset, (party, location_id) in enumerate(spots):
        at = format_stamp(STAMP0_MS + offset)
        body = location(
            location_id,
            country_code=COUNTRY,
            party_id=party,
            at=at,
            evses=[
                evse(
                    f"{location_id}-1",
                    at=at,
                    evse_id=evse_id_of(party, location_id),
                    connectors=[connector(at=at)],
                )
            ],
        )
        ref = LocationObjectRef(country_code=COUNTRY, party_id=party, location_id=location_id)
        origin = Origin(Party(country_code=COUNTRY, party_id=party), "bench-docstore")
        event = plan_put(ref, body, None, origin, now).event
        records.append(Record(LOCATIONS.name, 0, offset, event))
    return records


def status_records(spots: Sequence[tuple[str, str]], n: int, seed: int) -> list[Record[Any]]:
    """``n`` EVSE status resolutions on distinct random locations."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(spots)), min(n, len(spots)))
    at = datetime.fromtimestamp((STAMP0_MS + len(spots) + 1000) / 1000, UTC)
    statuses = [EvseStatus.CHARGING, EvseStatus.BLOCKED, EvseStatus.RESERVED]
    records: list[Record[Any]] = []
    for offset, i in enumerate(chosen):
        party, location_id = spots[i]
        status = statuses[offset % len(statuses)]
        event = EvseStatusResolved(
            event_id=uuid.uuid4(),
            aggregate_key=location_key(COUNTRY, party, location_id),
            occurred_at=at,
            recorded_at=at,
            source=Party(country_code=COUNTRY, party_id=party),
            correlation_id="bench-docstore",
            payload=EvseStatusResolvedPayload(
                country_code=COUNTRY,
                party_id=party,
                location_id=location_id,
                evse_uid=f"{location_id}-1",
                status=status,
                last_updated=at,
                reported_status=status,
            ),
        )
        records.append(Record(EVSE_STATUS.name, 0, offset, event))
    return records


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- #
# Phases (each returns its figures for one store)
# --------------------------------------------------------------------------- #


def conflict_probe(db: Database[Doc]) -> dict[str, Any]:
    coll = db["conflict_probe"]
    coll.insert_many([{"_id": f"k{i}", "_version": 1, "v": 0} for i in range(5)])
    ops = [
        ReplaceOne(
            {"_id": f"k{i}", "_version": 99 if i == 2 else 1},
            {"_id": f"k{i}", "_version": 2, "v": 1},
            upsert=True,
        )
        for i in range(5)
    ]
    outcome: str
    reported: list[Any] = []
    try:
        coll.bulk_write(ops, ordered=False)
        outcome = "no error"
    except BulkWriteError as exc:
        outcome = "BulkWriteError"
        reported = [[e.get("index"), e.get("code")] for e in exc.details.get("writeErrors", [])]
    except (PyMongoError, KeyError, TypeError, ValueError) as exc:
        # pymongo assembles the bulk result from the server's replies: a reply
        # without MongoDB's fields breaks it with a plain KeyError.
        outcome = f"{type(exc).__name__}: {exc}"
    applied = sorted(d["_id"] for d in coll.find({"v": 1}))
    ok = outcome == "BulkWriteError" and reported == [[2, 11000]]
    ok = ok and applied == ["k0", "k1", "k3", "k4"]
    return {"as_mongodb": ok, "outcome": outcome, "write_errors": reported, "applied": applied}


@dataclass(frozen=True)
class Budget:
    """Seconds one store may spend in one phase. A store that answers an
    operation with a scan of the collection would take hours at 50,000
    documents; past its budget a phase stops and reports what it did."""

    seconds: float

    def deadline(self) -> float:
        return time.perf_counter() + self.seconds


PROBE_BATCH = 100  # the first batch of a phase: sizes the next ones against the budget


def timed_batches(
    apply: Callable[[Sequence[Any]], object], items: Sequence[Any], size: int, budget: Budget
) -> dict[str, Any]:
    """``apply`` on batches of ``size`` items, while the next batch fits in the
    budget (judged from the last batch's time per item; the first is small)."""
    took: list[float] = []
    done = 0
    deadline = budget.deadline()
    t0 = time.perf_counter()
    last_n = 0
    while done < len(items):
        n = min(PROBE_BATCH if not took else size, len(items) - done)
        # From the last batch, not the mean: on a server that scans the
        # collection for every operation, each batch costs more than the last.
        if took and time.perf_counter() + took[-1] / last_n * n > deadline:
            break
        t = time.perf_counter()
        apply(items[done : done + n])
        took.append(time.perf_counter() - t)
        done += n
        last_n = n
    wall = time.perf_counter() - t0
    return {
        "docs": done,
        "complete": done == len(items),
        "wall_s": round(wall, 3),
        "docs_per_s": rate(done, wall),
        "batch_ms": summarize_ms(took[1:] or took),  # full batches, when there were any
    }


def writer_phase(
    db: Database[Doc], records: Sequence[Record[Any]], size: int, budget: Budget
) -> dict[str, Any]:
    writer = LocationViewWriter(db)
    return timed_batches(writer.apply, records, size, budget)


def fill(db: Database[Doc], records: Sequence[Record[Any]]) -> dict[str, Any]:
    """The documents the writer did not get to within its budget, inserted
    as the writer would have written them (folded here), so that the reads
    that follow see the same collection on every store. Not a measurement."""
    coll = db[COLLECTION]
    t0 = time.perf_counter()
    docs = [versioned(None, d) for d in (fold_location(None, r) for r in records) if d]
    for chunk in batches(docs, 1000):
        coll.insert_many(list(chunk), ordered=False)
    return {"filled": len(docs), "fill_s": round(time.perf_counter() - t0, 1)}


def raw_phase(db: Database[Doc], docs: Sequence[Doc], size: int, budget: Budget) -> dict[str, Any]:
    """The writer's bulk alone: guarded upserts of folded documents, then a
    guarded replace of each (``_version`` 1 -> 2)."""
    coll = db["raw_bulk"]

    def insert(chunk: Sequence[Doc]) -> None:
        coll.bulk_write(
            [ReplaceOne(guard(None, d), versioned(None, d), upsert=True) for d in chunk],
            ordered=False,
        )

    def replace(chunk: Sequence[Doc]) -> None:
        ops = []
        for d in chunk:
            before = versioned(None, d)
            ops.append(ReplaceOne(guard(before, d), versioned(before, d), upsert=True))
        coll.bulk_write(ops, ordered=False)

    first = timed_batches(insert, docs, size, budget)
    second = timed_batches(replace, docs[: first["docs"]], size, budget)
    replaced = coll.count_documents({"_version": 2})
    return {"insert": first, "replace": second, "replaced_ok": replaced == second["docs"]}


async def timed(
    fn: Callable[[], Awaitable[Any]], repeat: int, deadline: float
) -> tuple[list[float], Any]:
    """``fn`` ``repeat`` times, or fewer (at least once) past the deadline."""
    took: list[float] = []
    out: Any = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = await fn()
        took.append(time.perf_counter() - t)
        if time.perf_counter() > deadline:
            break
    return took, out


async def reads_phase(
    db: AsyncDatabase[Doc], spots: Sequence[tuple[str, str]], n: int, seed: int, budget: Budget
) -> dict[str, Any]:
    """``LocationViewQuery.get`` of random locations, one at a time."""
    query = LocationViewQuery(db)
    rng = random.Random(seed)
    took: list[float] = []
    missing = 0
    deadline = budget.deadline()
    t0 = time.perf_counter()
    for _ in range(n):
        party, location_id = spots[rng.randrange(len(spots))]
        t = time.perf_counter()
        if await query.get(COUNTRY, party, location_id) is None:
            missing += 1
        took.append(time.perf_counter() - t)
        if t > deadline:
            break
    wall = time.perf_counter() - t0
    return {
        "reads": len(took),
        "per_s": rate(len(took), wall),
        "ms": summarize_ms(took),
        "missing": missing,
    }


async def evse_lookup_phase(
    db: AsyncDatabase[Doc], spots: Sequence[tuple[str, str]], n: int, seed: int, budget: Budget
) -> dict[str, Any]:
    """The public QR lookup: ``LocationViewQuery.by_evse_id`` (multikey index)."""
    query = LocationViewQuery(db)
    rng = random.Random(seed)
    took: list[float] = []
    wrong = 0
    deadline = budget.deadline()
    for _ in range(n):
        party, location_id = spots[rng.randrange(len(spots))]
        t = time.perf_counter()
        found = await query.by_evse_id(evse_id_of(party, location_id).lower())
        took.append(time.perf_counter() - t)
        wrong += [x["id"] for x in found] != [location_id]
        if t > deadline:
            break
    return {"lookups": len(took), "ms": summarize_ms(took), "wrong": wrong}


def plan_summary(explained: Doc) -> dict[str, Any]:
    """What a server says of its plan, in a few fields: MongoDB-style stage
    names (winning plan, outermost first) and FerretDB's pushdown flags."""
    stages: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("stage"), str):
                stages.append(node["stage"])
            for key in ("winningPlan", "queryPlan", "inputStage", "inputStages", "shards"):
                if key in node:
                    walk(node[key])
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(explained.get("queryPlanner", {}))
    flags = {k: v for k, v in explained.items() if "ushdown" in k}
    return {"stages": stages, **flags}


async def paging_phase(
    db: Database[Doc],
    reads: AsyncDatabase[Doc],
    ours: int,
    page_size: int,
    repeat: int,
    budget: Budget,
) -> dict[str, Any]:
    """The Sender list of the bench party, as ``api/`` asks for it (on the
    async client); the count and the plan on the sync one."""
    query = LocationViewQuery(reads)
    coll = db[COLLECTION]
    deep = max(0, ours - 2 * page_size)  # a full page, deep in the list
    # The keyset cursor the previous page's Link carries: (_ts, _id) of the
    # item just before the deep page (read outside the clock).
    before = list(
        coll.find({"country_code": COUNTRY, "party_id": PARTY, "_ts": {"$ne": None}}, {"_ts": 1})
        .sort([("_ts", 1), ("_id", 1)])
        .skip(deep - 1)
        .limit(1)
    )
    after = (before[0]["_ts"], before[0]["_id"]) if deep and before else None

    def page(**kw: Any) -> Awaitable[Any]:
        return query.page(country_code=COUNTRY, party_id=PARTY, limit=page_size, **kw)

    # A quarter of the budget each, at least one call each.
    quarter = Budget(budget.seconds / 4)
    first_ms, first = await timed(lambda: page(), repeat, quarter.deadline())
    keyset_ms, by_keyset = await timed(lambda: page(after=after), repeat, quarter.deadline())
    skip_ms, by_skip = await timed(lambda: page(skip=deep), repeat, quarter.deadline())
    filt = {"country_code": COUNTRY, "party_id": PARTY, "_ts": {"$ne": None}}
    count = reads[COLLECTION]
    count_ms, counted = await timed(lambda: count.count_documents(filt), repeat, quarter.deadline())
    keyset_filter = {**filt, "_ts": {"$gt": after[0]}} if after else filt
    try:
        explained = db.command(
            "explain",
            {
                "find": COLLECTION,
                "filter": keyset_filter,
                "sort": {"_ts": 1, "_id": 1},
                "limit": page_size,
                "projection": {"location": 1, "_ts": 1},
            },
            verbosity="queryPlanner",
        )
        plan: dict[str, Any] = plan_summary(explained)
    except PyMongoError as exc:
        plan = {"error": str(exc)[:200]}
    first_ids = [x["id"] for x in first.items]
    expected_first = [f"BENCH-DS-{i:07d}" for i in range(min(page_size, ours))]
    expected_deep = [f"BENCH-DS-{i:07d}" for i in range(deep, min(deep + page_size, ours))]
    return {
        "documents_of_party": ours,
        "page_size": page_size,
        "deep_position": deep,
        "first_page_ms": summarize_ms(first_ms),
        "deep_page_keyset_ms": summarize_ms(keyset_ms),
        "deep_page_skip_ms": summarize_ms(skip_ms),
        "count_ms": summarize_ms(count_ms),
        "count": counted,
        "x_total_count": first.total,
        "pages_right": (
            first_ids == expected_first
            and [x["id"] for x in by_keyset.items] == expected_deep
            and [x["id"] for x in by_skip.items] == expected_deep
            and counted == first.total == ours
        ),
        "explain_keyset_find": plan,
    }


def run_tests(store: Store, tests: Sequence[str], run_id: str) -> dict[str, Any]:
    """The views' integration tests with this store as the document store."""
    report_file = REPO / "data" / "bench" / f"docstore-{run_id}-{store.name}-junit.xml"
    report_file.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OCPI_HUB_MONGO_URL=store.url, OCPI_HUB_TEST_SERVICES="local")
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *tests,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report_file}",
    ]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            argv,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=TEST_TIMEOUT_S,
            check=False,
        )
        code: int | str = proc.returncode
        tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout else []
    except subprocess.TimeoutExpired:
        code, tail = "timeout", []
    wall = time.perf_counter() - t0
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failed: list[str] = []
    try:
        root = ET.parse(report_file).getroot()
        for case in root.iter("testcase"):
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            kinds = {child.tag for child in case}
            if "failure" in kinds:
                counts["failed"] += 1
                failed.append(name)
            elif "error" in kinds:
                counts["errors"] += 1
                failed.append(name)
            elif "skipped" in kinds:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
    except (OSError, ET.ParseError):
        pass
    return {
        "exit_code": code,
        "wall_s": round(wall, 1),
        **counts,
        "not_passed": failed,
        "summary": tail[0] if tail else None,
        "junit": str(report_file.relative_to(REPO)),
    }


# --------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------- #


def cpu_of(store: Store, a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    server = sum(b.processes.get(g, 0.0) - a.processes.get(g, 0.0) for g in store.groups)
    return {"server_cpu_s": round(server, 2), "bench_cpu_s": round(b.own - a.own, 2)}


def parse_urls(raw: Sequence[str]) -> list[Store]:
    known: dict[str, Any] = {}
    if STORES_FILE.exists():
        known = orjson.loads(STORES_FILE.read_bytes())
    stores = []
    if raw:
        for item in raw:
            name, sep, url = item.partition("=")
            if not sep or not url.startswith("mongodb://"):
                raise SystemExit(f"--url {item!r}: expected NAME=mongodb://...")
            stores.append(Store(name, url, list(known.get(name, {}).get("groups", []))))
    else:
        for name, entry in known.items():
            if entry.get("url"):
                stores.append(Store(name, entry["url"], list(entry.get("groups", []))))
    if not stores:
        raise SystemExit(
            "no store: pass --url NAME=mongodb://... or run "
            "`python3 deploy/local/docstores.py up` first"
        )
    return stores


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


async def run(args: argparse.Namespace, started_wall: float) -> tuple[dict[str, Any], int]:
    run_id = uuid.uuid4().hex[:8]
    stores = parse_urls(args.url)
    dbname = f"bench_docstore_{run_id}"
    meter = CpuMeter(STORES_FILE.parent)
    report: dict[str, Any] = {
        "benchmark": "docstore",
        "run_id": run_id,
        "started_at": utc_iso(started_wall),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": loadavg(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "documents": args.documents,
            "other_party_documents": args.documents // OTHER_EVERY,
            "writes": args.writes,
            "batch": args.batch,
            "reads": args.reads,
            "page_size": args.page_size,
            "repeat": args.repeat,
            "budget_s_per_phase": args.budget,
            "database": dbname,
            "stores": {s.name: s.url for s in stores},
            "cpu_groups": {s.name: s.groups for s in stores},
        },
        "stores": {},
    }
    for store in stores:
        # A server that stops answering (seen: FerretDB on PostgreSQL waiting
        # for a pooled connection) fails the phase instead of hanging the run.
        timeout_ms = int(max(300.0, 2 * args.budget) * 1000)
        store.client = MongoClient(
            store.url, serverSelectionTimeoutMS=5000, socketTimeoutMS=timeout_ms, tz_aware=True
        )
        try:
            info = store.client.server_info()
        except PyMongoError as exc:
            raise PlatformUnavailableError(f"{store.name} at {store.url}: {exc}") from exc
        store.db = store.client[dbname]
        store.aclient = AsyncMongoClient(
            store.url, serverSelectionTimeoutMS=5000, socketTimeoutMS=timeout_ms, tz_aware=True
        )
        LocationViewWriter(store.db).prepare()
        store.result["server"] = {
            "version": info.get("version"),
            "ferretdb": info.get("ferretdbVersion"),
        }
        report["stores"][store.name] = store.result

    spots = layout(args.documents)
    console.print(
        f"[bold]Document store benchmark[/] run {run_id}: "
        f"{', '.join(s.name for s in stores)}; building {len(spots)} put records"
    )
    puts = put_records(spots)
    updates = status_records(spots, args.writes, seed=1)
    raw_docs = [d for d in (fold_location(None, r) for r in puts[: args.writes]) if d]

    async def phase(name: str, fn: Callable[[Store], Any]) -> None:
        for store in stores:
            if store.dead:
                store.result[name] = {"skipped": store.dead}
                continue
            a = meter.snapshot()
            try:
                out = fn(store)
                if inspect.isawaitable(out):
                    out = await out
            except (PyMongoError, KeyError, RuntimeError) as exc:
                out = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                if isinstance(exc, NetworkTimeout | AutoReconnect):
                    store.dead = f"stopped answering during {name}"
            b = meter.snapshot()
            out.update(cpu_of(store, a, b))
            store.result[name] = out
            console.print(f"  {name}: {store.name} {b.at - a.at:.1f} s", style="dim")

    if not args.skip_tests:  # first: a server that hangs later cannot fail them
        for store in stores:
            store.result["tests"] = run_tests(store, args.tests or TESTS, run_id)
            console.print(f"  integration tests: {store.name} {_tests(store.result['tests'])}")
    budget = Budget(args.budget)
    try:
        await phase("conflict", lambda s: conflict_probe(s.database))
        await phase("writer_insert", lambda s: writer_phase(s.database, puts, args.batch, budget))
        for store in stores:  # the reads see the whole collection on every store
            done = _get(store.result, "writer_insert", "docs")
            if not store.dead and isinstance(done, int) and done < len(puts):
                store.result["writer_insert"].update(fill(store.database, puts[done:]))
            if not store.dead:
                coll = store.database[COLLECTION]
                store.result["writer_insert"]["documents_in_view"] = coll.count_documents({})
        await phase("point_reads", lambda s: reads_phase(s.reads, spots, args.reads, 2, budget))
        await phase(
            "sender_list",
            lambda s: paging_phase(
                s.database, s.reads, args.documents, args.page_size, args.repeat, budget
            ),
        )
        await phase(
            "evse_lookup",
            lambda s: evse_lookup_phase(s.reads, spots, args.reads // 4, 3, budget),
        )
        # Replaces of existing documents last: they hang some servers for good.
        await phase(
            "writer_update", lambda s: writer_phase(s.database, updates, args.batch, budget)
        )
        await phase("raw_bulk", lambda s: raw_phase(s.database, raw_docs, args.batch, budget))
    finally:
        for store in stores:
            if store.client is None:
                continue
            if store.dead:
                console.print(
                    f"[red]{store.name} {store.dead}: restart it "
                    f"(deploy/local/docstores.py down/up) before measuring it again[/]"
                )
            else:
                try:
                    store.client.drop_database(dbname)
                except PyMongoError as exc:
                    console.print(f"[red]{store.name}: could not drop {dbname}: {exc}[/]")
            store.client.close()
            if store.aclient is not None:
                await store.aclient.close()
    report["machine"]["loadavg_at_end"] = loadavg()
    finished = time.time()
    report["finished_at"] = utc_iso(finished)
    report["duration_s"] = round(finished - started_wall, 1)
    return report, 0


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def _get(d: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _p50(d: dict[str, Any], *path: str) -> str:
    s = _get(d, *path)
    if not isinstance(s, dict) or not s.get("count"):
        return "-"
    return f"{s['p50']:,.1f} ({s['min']:,.1f}-{s['max']:,.1f})"


def _rate(d: dict[str, Any], *path: str) -> str:
    """A rate, marked with the documents done when the budget cut it short."""
    v = _get(d, *path)
    if not isinstance(v, int | float):
        return "error" if _get(d, path[0], "error") else "-"
    part = _get(d, *path[:-1])
    cut = part.get("complete") is False if isinstance(part, dict) else False
    return f"{v:,.0f}" + (f" ({part['docs']:,} docs, budget)" if cut else "")


def _cpu_per_doc(d: dict[str, Any], phase: str, docs_path: tuple[str, ...]) -> str:
    docs = _get(d, phase, *docs_path)
    server, own = _get(d, phase, "server_cpu_s"), _get(d, phase, "bench_cpu_s")
    if not docs or server is None:
        return "-"
    return f"{server / docs * 1000:.2f} / {own / docs * 1000:.2f}"


def render(report: dict[str, Any]) -> None:
    p, m = report["parameters"], report["machine"]
    console.width = max(console.width, 60 + 26 * len(report["stores"]))  # a column per store
    console.print(
        f"\n[bold]Document store benchmark[/]  run {report['run_id']}  commit "
        f"{report['git_commit']}  {m['cpu_count']} cores  load {m.get('loadavg_at_start')} -> "
        f"{m.get('loadavg_at_end')}\n{p['documents']:,} + {p['other_party_documents']:,} "
        f"locations, writes {p['writes']:,}, batches of {p['batch']}, page {p['page_size']}, "
        f"repeat {p['repeat']}; took {report.get('duration_s')} s"
    )
    names = list(report["stores"])
    table = Table(title="Same operations, same run (ms: p50 (min-max))")
    table.add_column("operation")
    for name in names:
        table.add_column(name, justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (
            "server version",
            lambda r: str(_get(r, "server", "ferretdb") or _get(r, "server", "version")),
        ),
        (
            "unordered bulk with a conflict as MongoDB",
            lambda r: str(_get(r, "conflict", "as_mongodb")),
        ),
        ("  outcome", lambda r: str(_get(r, "conflict", "outcome"))[:40]),
        ("writer insert docs/s", lambda r: _rate(r, "writer_insert", "docs_per_s")),
        ("  server / bench CPU ms per doc", lambda r: _cpu_per_doc(r, "writer_insert", ("docs",))),
        ("  documents in the view", lambda r: str(_get(r, "writer_insert", "documents_in_view"))),
        ("writer update docs/s", lambda r: _rate(r, "writer_update", "docs_per_s")),
        ("  server / bench CPU ms per doc", lambda r: _cpu_per_doc(r, "writer_update", ("docs",))),
        ("raw bulk insert docs/s", lambda r: _rate(r, "raw_bulk", "insert", "docs_per_s")),
        ("raw bulk replace docs/s", lambda r: _rate(r, "raw_bulk", "replace", "docs_per_s")),
        ("point read by _id ms", lambda r: _p50(r, "point_reads", "ms")),
        ("Sender list first page ms", lambda r: _p50(r, "sender_list", "first_page_ms")),
        ("  deep page by keyset ms", lambda r: _p50(r, "sender_list", "deep_page_keyset_ms")),
        ("  deep page by skip ms", lambda r: _p50(r, "sender_list", "deep_page_skip_ms")),
        ("  X-Total-Count (count) ms", lambda r: _p50(r, "sender_list", "count_ms")),
        ("  pages and count right", lambda r: str(_get(r, "sender_list", "pages_right"))),
        (
            "  explain of the keyset find",
            lambda r: _plan(_get(r, "sender_list", "explain_keyset_find")),
        ),
        ("QR lookup by EVSE id ms", lambda r: _p50(r, "evse_lookup", "ms")),
        ("integration tests passed / run", lambda r: _tests(_get(r, "tests"))),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(report["stores"][n]) for n in names))
    console.print(table)
    for name in names:
        tests = _get(report["stores"][name], "tests") or {}
        for failed in tests.get("not_passed", []):
            console.print(f"  {name}: not passed: {failed}")
        for phase, out in report["stores"][name].items():
            if phase != "tests" and isinstance(out, dict) and ("error" in out or "skipped" in out):
                console.print(f"  {name}: {phase}: {out.get('error') or out.get('skipped')}")


def _plan(plan: Any) -> str:
    if not isinstance(plan, dict):
        return "-"
    if "error" in plan:
        return "error"
    parts = [" > ".join(plan.get("stages") or [])]
    parts += [f"{k}={v}" for k, v in plan.items() if k != "stages"]
    return "; ".join(x for x in parts if x)[:60] or "-"


def _tests(tests: Any) -> str:
    if not isinstance(tests, dict):
        return "-"
    run = tests["passed"] + tests["failed"] + tests["errors"]
    return f"{tests['passed']} / {run}"


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return REPO / "data" / "bench" / f"docstore-{stamp}.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.docstore",
        description="The project's document-store operations on several MongoDB wire-protocol "
        "servers, side by side (see bench/README.md).",
    )
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a store to measure (repeat); default: data/run/docstores/stores.json",
    )
    parser.add_argument(
        "--documents",
        type=int,
        default=50_000,
        help="locations of the paged party (plus a tenth of another party)",
    )
    parser.add_argument(
        "--writes", type=int, default=10_000, help="status updates and raw bulk documents"
    )
    parser.add_argument("--batch", type=int, default=get_settings().projection_batch_size)
    parser.add_argument("--reads", type=int, default=2000, help="point reads")
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="fetches of each page and count")
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="seconds a store may spend in one phase (then it stops and says so)",
    )
    parser.add_argument("--skip-tests", action="store_true", help="no integration tests")
    parser.add_argument(
        "--tests",
        action="append",
        default=[],
        metavar="PATH",
        help="test files to run instead of the views' integration tests",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON report (default data/bench/docstore-<UTC>.json)",
    )
    args = parser.parse_args(argv)
    for name in ("documents", "writes", "batch", "reads", "page_size", "repeat", "budget"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.documents < 2 * args.page_size:
        parser.error("--documents must be at least twice --page-size (a deep page)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out or default_out()
    _report, code = run_and_write(run, args, out, render)
    return code


if __name__ == "__main__":
    sys.exit(main())
