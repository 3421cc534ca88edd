"""Replay of a large location history into fresh views, beside the document
store's own bulk-write ceiling.

    python -m bench.replay [--events 1000000] [--locations 10000]
                           [--evses-per-location 4] [--location-patch-share 0.02]
                           [--batch N] [--run-dir data/run] [--keep]
                           [--out data/bench/replay-<UTC>.json]

What it does, in order:

1. Namespace: a fresh topic prefix ``brp<run id>.``, MongoDB database and
   MySQL database ``brp<run id>``, all beside the platform's own (the live
   views are never touched); the catalogued topics are created there.
2. Seed: ``--events`` events of one partner CPO (``ZZ``/``RPL``) straight into
   those topics with an idempotent aiokafka producer (acks=all), keyed and
   headed as ``producers/log.py`` writes them: every location PUT whole with
   its EVSEs (one connector each), then status changes of random EVSEs, each
   a ``LocationObjectPatched`` of the EVSE's ``status`` followed by the
   ``EvseStatusResolved`` the status processor would derive from it; a share
   of the steps are location PATCHes (``name``) instead. Stamps increase by
   1 ms per step, so every write is applied (none is stale).
3. Replay (timed): **in-process**, the very writers ``ocpi-hub replay`` uses
   (``ocpi_hub.bootstrap.views``: every MongoDB view and MySQL table) fed by
   ``projections.runner.replay`` from offset zero, with
   ``projection_replay_batch_size`` events per batch (``--batch`` overrides
   it). Reported: events/s, per view the entries written and the time its
   ``apply`` took, CPU of this process (the replay) and of every process
   ``make up`` started (the document server's among them).
4. Check: every EVSE shows its last status in the MongoDB view and in the
   MySQL ``evses`` table, every location its last name; the history view's
   chunks hold one entry per ``ocpi.locations.v1`` event. Exit status 1 otherwise.
5. Ceiling: documents of the very size the replay wrote (a location view
   document and a history chunk, docs/adr/0049, copied from the replayed
   views with new ids) upserted with ``bulk_write([ReplaceOne(..., upsert=True)],
   ordered=False)`` in batches of 1,000 into a throwaway collection with the
   view's indexes: what the store takes with no pipeline in front of it.
6. Clean-up: the namespace's topics and databases are dropped (``--keep``
   keeps them, e.g. to run ``ocpi-hub replay`` on them by hand).

This is a measurement, not a test: nothing here judges the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import random
import resource
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient, ReplaceOne
from pymongo.collection import Collection
from rich.table import Table
from sqlalchemy import func, select

from bench.harness import (
    REPO,
    CpuMeter,
    Doc,
    PlatformUnavailableError,
    console,
    format_stamp,
    git_commit,
    location_body,
    rate,
    run_and_write,
    summarize_ms,
    utc_iso,
)
from ocpi_hub import collector
from ocpi_hub.bootstrap import (
    Views,
    create_mysql_database,
    drop_mysql_database,
    mongo_client,
    mysql_engine,
    views,
)
from ocpi_hub.settings import Settings, get_settings
from producers.locations import plan_patch, plan_put
from producers.log import ensure_topics
from producers.write_path import Origin
from projections.mongo.evse_status_history import COLLECTION as STATUS_HISTORY
from projections.mongo.evse_status_history import KEPT_PER_LOCATION
from projections.mongo.history import LOCATION_HISTORY
from projections.mongo.locations import COLLECTION as LOCATIONS_VIEW
from projections.mysql.models import evses
from projections.position import Record, Writer, read_types
from projections.runner import replay
from schemas.events import (
    EventMeta,
    EvseStatusResolved,
    LocationObjectPatched,
    Party,
    serialize_event,
)
from schemas.events.locations import (
    EvseStatusResolvedPayload,
    LocationObjectPatchedPayload,
    LocationObjectRef,
)
from schemas.ocpi.locations import EvseStatus
from schemas.topics import topic_for

COUNTRY_CODE = "ZZ"  # ISO 3166 leaves ZZ unassigned: never a real party
PARTY_ID = "RPL"
STATUSES = (EvseStatus.AVAILABLE, EvseStatus.CHARGING, EvseStatus.RESERVED, EvseStatus.BLOCKED)
SEED_CHUNK = 5000  # events serialized and sent before waiting for their acks
CEILING_DOCS = 5000
CEILING_BATCH = 1000


# --------------------------------------------------------------------------- #
# The events
# --------------------------------------------------------------------------- #


@dataclass
class Expected:
    """What the views must show once every event is applied."""

    statuses: dict[tuple[str, str], str] = field(default_factory=dict)  # (key, EVSE uid)
    names: dict[str, str] = field(default_factory=dict)  # key -> last location name
    by_type: dict[str, int] = field(default_factory=dict)
    # Resolutions per location: what the EVSE status history holds (pruned
    # to its newest KEPT_PER_LOCATION, at least).
    resolutions: Counter[str] = field(default_factory=Counter)


def location_id_of(run_id: str, i: int) -> str:
    return f"BENCH-RPL-{run_id}-{i:06d}"


def _patched(ref: LocationObjectRef, patch: Doc, at: datetime, origin: Origin) -> EventMeta:
    return LocationObjectPatched(
        event_id=uuid.uuid4(),
        aggregate_key=ref.location_key,
        occurred_at=at,
        recorded_at=at,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=LocationObjectPatchedPayload(**ref.model_dump(), patch=patch, last_updated=at),
    )


def _resolved(ref: LocationObjectRef, status: EvseStatus, at: datetime, cause: EventMeta) -> Any:
    assert ref.evse_uid is not None
    return EvseStatusResolved(
        event_id=uuid.uuid4(),
        aggregate_key=ref.location_key,
        occurred_at=at,
        recorded_at=at,
        source=Party(country_code=COUNTRY_CODE, party_id="HUB"),
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
        payload=EvseStatusResolvedPayload(
            country_code=ref.country_code,
            party_id=ref.party_id,
            location_id=ref.location_id,
            evse_uid=ref.evse_uid,
            status=status,
            last_updated=at,
            reported_status=status,
        ),
    )


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def generate(
    run_id: str,
    n: int,
    locations: int,
    evses_per_location: int,
    location_patch_share: float,
    expected: Expected,
    seed: int = 11,
) -> Iterator[EventMeta]:
    """``n`` events: every location PUT whole first, then status changes
    (a PATCH and its resolution) and, for ``location_patch_share`` of the
    steps, a location PATCH. Stamps increase by 1 ms per event."""
    rng = random.Random(seed)
    origin = Origin(Party(country_code=COUNTRY_CODE, party_id=PARTY_ID), f"bench-replay-{run_id}")
    base_ms = (int(time.time()) - 40 * 24 * 3600) * 1000 + 1  # never on a whole second
    refs = [
        LocationObjectRef(
            country_code=COUNTRY_CODE, party_id=PARTY_ID, location_id=location_id_of(run_id, i)
        )
        for i in range(locations)
    ]
    made = 0
    stamp = base_ms
    for ref in refs[: min(locations, n)]:
        body = location_body(ref.location_id, PARTY_ID, evses_per_location, stamp)
        body["name"] = "Station 0"
        event = plan_put(ref, body, None, origin, _at(stamp)).event
        for k in range(1, evses_per_location + 1):
            expected.statuses[(ref.location_key, f"{ref.location_id}-{k}")] = "AVAILABLE"
        expected.names[ref.location_key] = "Station 0"
        made += 1
        stamp += 1
        yield event
    step = 0
    while made < n:
        step += 1
        ref = refs[rng.randrange(locations)]
        at = _at(stamp)
        stamp += 1
        if rng.random() < location_patch_share:
            name = f"Station {step}"
            expected.names[ref.location_key] = name
            made += 1
            yield _patched(ref, {"name": name, "last_updated": format_stamp(stamp - 1)}, at, origin)
            continue
        uid = f"{ref.location_id}-{rng.randrange(evses_per_location) + 1}"
        status = STATUSES[rng.randrange(len(STATUSES))]
        evse_ref = ref.model_copy(update={"evse_uid": uid})
        patched = _patched(
            evse_ref, {"status": status.value, "last_updated": format_stamp(stamp - 1)}, at, origin
        )
        expected.statuses[(ref.location_key, uid)] = status.value
        made += 1
        yield patched
        if made < n:
            made += 1
            expected.resolutions[ref.location_key] += 1
            yield _resolved(evse_ref, status, at, patched)


def check_patch_shape(run_id: str) -> None:
    """The generator's PATCH payloads are what the API's own decision
    (``plan_patch``) writes for the same bodies."""
    origin = Origin(Party(country_code=COUNTRY_CODE, party_id=PARTY_ID), "check")
    ref = LocationObjectRef(
        country_code=COUNTRY_CODE, party_id=PARTY_ID, location_id=location_id_of(run_id, 0)
    )
    held = location_body(ref.location_id, PARTY_ID, 1, 1_000)
    at = _at(2_001)
    for target, patch in (
        (ref.model_copy(update={"evse_uid": f"{ref.location_id}-1"}), {"status": "CHARGING"}),
        (ref, {"name": "Station 1"}),
    ):
        body = {**patch, "last_updated": format_stamp(2_001)}
        decided = plan_patch(target, body, held, origin, at).event
        ours = _patched(target, body, at, origin)
        assert isinstance(decided, LocationObjectPatched)
        assert isinstance(ours, LocationObjectPatched)
        if decided.payload.patch != ours.payload.patch:
            raise AssertionError(f"generator PATCH {ours.payload.patch} != {decided.payload.patch}")


async def seed(
    settings: Settings, prefix: str, events: Iterator[EventMeta], expected: Expected
) -> dict[str, Any]:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
        request_timeout_ms=60_000,
    )
    await producer.start()
    sent = 0
    payload_bytes = 0
    build_s = 0.0
    try:
        while True:
            t = time.perf_counter()
            chunk: list[tuple[str, bytes, bytes, str]] = []
            for event in events:
                event_type: str = getattr(event, "event_type")  # noqa: B009
                chunk.append(
                    (
                        prefix + topic_for(event_type).name,
                        event.aggregate_key.encode(),
                        serialize_event(event),
                        event_type,
                    )
                )
                if len(chunk) >= SEED_CHUNK:
                    break
            build_s += time.perf_counter() - t
            if not chunk:
                break
            futures = []
            for topic, key, value, event_type in chunk:
                expected.by_type[event_type] = expected.by_type.get(event_type, 0) + 1
                payload_bytes += len(value)
                futures.append(
                    await producer.send(
                        topic,
                        value=value,
                        key=key,
                        headers=[("event_type", event_type.encode()), ("schema_version", b"1")],
                    )
                )
            await asyncio.gather(*futures)
            sent += len(chunk)
            if sent % 100_000 < SEED_CHUNK:
                console.print(f"  seeded {sent}", style="dim")
    finally:
        await producer.stop()
    return {"events": sent, "bytes": payload_bytes, "build_s": round(build_s, 3)}


# --------------------------------------------------------------------------- #
# The replay
# --------------------------------------------------------------------------- #


class Metered:
    """A Writer that counts what the one it wraps writes, its time and the
    CPU of the thread that applies it (the writers share one interpreter:
    their CPU, not their wall time, says which one holds the replay)."""

    def __init__(self, inner: Writer) -> None:
        self.inner = inner
        self.name = inner.name
        self.event_types = read_types(inner)
        self.written = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.batches = 0
        self._lock = threading.Lock()

    def prepare(self) -> None:
        self.inner.prepare()

    def wipe(self) -> None:
        self.inner.wipe()

    def apply(self, records: Sequence[Record[object]]) -> int:
        t = time.perf_counter()
        cpu = time.thread_time()
        n = self.inner.apply(records)
        with self._lock:
            self.seconds += time.perf_counter() - t
            self.cpu_seconds += time.thread_time() - cpu
            self.written += n
            self.batches += 1
        return n


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def check_views(target: Views, expected: Expected) -> dict[str, Any]:
    """Compare the rebuilt views with what the generated events say."""
    wrong_mongo = 0
    wrong_names = 0
    seen = 0
    for doc in target.mongo[LOCATIONS_VIEW].find({}, {"location": 1}):
        location = doc.get("location")
        if location is None:
            continue
        seen += 1
        if location.get("name") != expected.names.get(doc["_id"]):
            wrong_names += 1
        for evse in location.get("evses") or ():
            if expected.statuses.get((doc["_id"], evse["uid"])) != evse["status"]:
                wrong_mongo += 1
    wrong_mysql = 0
    rows = 0
    with target.mysql.connect() as conn:
        columns = (evses.c.location_key, evses.c.evse_uid, evses.c.status)
        found = conn.execute(select(*columns))
        for row in found:
            rows += 1
            if expected.statuses.get((row.location_key, row.evse_uid)) != row.status:
                wrong_mysql += 1
    history = held_entries(target.mongo[LOCATION_HISTORY])
    location_events = expected.by_type.get("LocationObjectPut", 0) + expected.by_type.get(
        "LocationObjectPatched", 0
    )
    # Every resolution has its entry, but for what pruning may have taken
    # from a location that got more than KEPT_PER_LOCATION.
    status_history = held_entries(target.mongo[STATUS_HISTORY])
    status_history_least = sum(min(n, KEPT_PER_LOCATION) for n in expected.resolutions.values())
    status_history_most = sum(expected.resolutions.values())
    return {
        "locations_served": seen,
        "locations_expected": len(expected.names),
        "evses_wrong_in_mongo": wrong_mongo,
        "location_names_wrong": wrong_names,
        "evse_rows": rows,
        "evse_rows_expected": len(expected.statuses),
        "evses_wrong_in_mysql": wrong_mysql,
        "history_entries": history,
        "history_expected": location_events,
        "status_history_entries": status_history,
        "status_history_expected": [status_history_least, status_history_most],
        "ok": (
            seen == len(expected.names)
            and not wrong_mongo
            and not wrong_names
            and rows == len(expected.statuses)
            and not wrong_mysql
            and history == location_events
            and status_history_least <= status_history <= status_history_most
        ),
    }


def held_entries(coll: Collection[Doc]) -> int:
    """The entries a history view holds, over its chunks (docs/adr/0049)."""
    return sum(chunk["n"] for chunk in coll.find({}, {"n": 1}))


def mysql_rows(target: Views) -> int:
    with target.mysql.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(evses)).scalar_one())


# --------------------------------------------------------------------------- #
# The ceiling
# --------------------------------------------------------------------------- #


def store_ceiling(client: MongoClient[Doc], target: Views, db_name: str) -> dict[str, Any]:
    """Unordered bulk upserts of documents the size of the ones the replay
    wrote, into a throwaway database with the views' indexes."""
    results: dict[str, Any] = {
        "database": db_name,
        "documents": CEILING_DOCS,
        "batch": CEILING_BATCH,
    }
    shapes = {
        "location_view": (target.mongo[LOCATIONS_VIEW], LOCATIONS_VIEW),
        "location_history": (target.mongo[LOCATION_HISTORY], LOCATION_HISTORY),
    }
    try:
        for label, (source, name) in shapes.items():
            sample = source.find_one({}, sort=[("_id", -1)])
            if sample is None:
                continue
            coll: Collection[Doc] = client[db_name][name]
            for index in source.list_indexes():
                if index["name"] != "_id_":
                    coll.create_index(list(index["key"].items()))

            def docs(generation: int, sample: Doc = sample) -> list[Doc]:
                return [
                    {**sample, "_id": f"ceiling-{i:06d}", "_generation": generation}
                    for i in range(CEILING_DOCS)
                ]

            def upserts(batch: list[Doc], coll: Collection[Doc] = coll) -> dict[str, Any]:
                times = []
                started = time.perf_counter()
                for start in range(0, len(batch), CEILING_BATCH):
                    ops = [
                        ReplaceOne({"_id": d["_id"]}, d, upsert=True)
                        for d in batch[start : start + CEILING_BATCH]
                    ]
                    t = time.perf_counter()
                    coll.bulk_write(ops, ordered=False)
                    times.append(time.perf_counter() - t)
                wall = time.perf_counter() - started
                return {"docs_per_s": rate(len(batch), wall), "batch_ms": summarize_ms(times)}

            results[label] = {
                "doc_bytes": len(orjson.dumps(sample, default=str)),
                # A history view's document is a chunk of entries (docs/adr/0049).
                "entries_per_doc": sample.get("n", 1),
                "bulk_upsert_insert": upserts(docs(1)),
                "bulk_upsert_replace": upserts(docs(2)),
            }
    finally:
        client.drop_database(db_name)
    return results


# --------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------- #


async def delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def run(args: argparse.Namespace, started_wall: float) -> tuple[dict[str, Any], int]:
    base = get_settings()
    run_id = uuid.uuid4().hex[:8]
    name = f"brp{run_id}"
    prefix = f"{name}."
    batch = args.batch or base.projection_replay_batch_size
    report: dict[str, Any] = {
        "benchmark": "replay",
        "run_id": run_id,
        "started_at": utc_iso(started_wall),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "gc_thresholds": list(gc.get_threshold()),
            "platform": platform.platform(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "events": args.events,
            "locations": args.locations,
            "evses_per_location": args.evses_per_location,
            "location_patch_share": args.location_patch_share,
            "replay_batch": batch,
            "replay": "in-process: projections.runner.replay into ocpi_hub.bootstrap.views",
            "topic_prefix": prefix,
            "mongo_db": name,
            "mysql_db": name,
            "kafka": base.kafka_bootstrap,
            "mongo": base.mongo_url,
        },
    }
    meter = CpuMeter(args.run_dir)
    report["parameters"]["cpu_accounted_processes"] = meter.names
    client = mongo_client(base)
    try:
        await asyncio.to_thread(client.admin.command, "ping")
    except Exception as exc:
        raise PlatformUnavailableError(f"MongoDB does not answer at {base.mongo_url}") from exc
    exit_code = 0
    created_mysql = False
    try:
        try:
            await ensure_topics(base.kafka_bootstrap, prefix, base.topic_replication_factor)
        except Exception as exc:
            raise PlatformUnavailableError(f"Kafka at {base.kafka_bootstrap}: {exc!r}") from exc
        check_patch_shape(run_id)
        expected = Expected()
        console.print(
            f"[bold]Replay benchmark[/] run {run_id}: seeding {args.events} events of "
            f"{args.locations} locations x {args.evses_per_location} EVSEs into {prefix}*"
        )
        cpu0 = meter.snapshot()
        t0 = time.perf_counter()
        seeded = await seed(
            base,
            prefix,
            generate(
                run_id,
                args.events,
                args.locations,
                args.evses_per_location,
                args.location_patch_share,
                expected,
            ),
            expected,
        )
        seeded_s = time.perf_counter() - t0
        cpu1 = meter.snapshot()
        report["seed"] = {
            **seeded,
            "by_type": expected.by_type,
            "wall_s": round(seeded_s, 3),
            "events_per_s": rate(seeded["events"], seeded_s),
            "cpu": CpuMeter.between(cpu0, cpu1),
        }

        await asyncio.to_thread(create_mysql_database, base, name)
        created_mysql = True
        target = views(
            client, name, mysql_engine(base, name), document_cache=base.projection_document_cache
        )
        await asyncio.to_thread(target.prepare)
        metered = [Metered(w) for w in target.writers]
        console.print(f"replay: {seeded['events']} events, batches of {batch}, into {name}")
        progress = {"next": 0.0}

        def on_progress(done: int, total: int) -> None:
            now = time.perf_counter()
            if now >= progress["next"]:
                console.print(f"  replayed {done}/{total}", style="dim")
                progress["next"] = now + 15

        own0 = process_cpu()
        cpu2 = meter.snapshot()
        t1 = time.perf_counter()
        count = await replay(
            base.kafka_bootstrap,
            prefix,
            list(metered),
            batch_size=batch,
            on_progress=on_progress,
        )
        replay_s = time.perf_counter() - t1
        cpu3 = meter.snapshot()
        own = process_cpu() - own0
        report["replay"] = {
            "events": count,
            "wall_s": round(replay_s, 3),
            "events_per_s": rate(count, replay_s),
            "batches": max((m.batches for m in metered), default=0),
            "replay_process_cpu_s": round(own, 2),
            "replay_process_cpu_us_per_event": round(own / count * 1e6) if count else None,
            "replay_process_cores": round(own / replay_s, 2) if replay_s else None,
            # The process's peak, the seed before the replay included.
            "replay_process_peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ),
            "views": {
                m.name: {
                    "written": m.written,
                    "batches": m.batches,
                    "apply_s": round(m.seconds, 2),
                    "apply_cpu_s": round(m.cpu_seconds, 2),
                    "written_per_s_of_apply": rate(m.written, m.seconds),
                }
                for m in metered
            },
            "documents_written": sum(m.written for m in metered if m.name.startswith("mongo.")),
            "rows_written": sum(m.written for m in metered if m.name.startswith("mysql.")),
            "cpu": CpuMeter.between(cpu2, cpu3),
        }
        report["replay"]["documents_written_per_s"] = rate(
            report["replay"]["documents_written"], replay_s
        )
        console.print("checking the rebuilt views against the generated events")
        report["check"] = await asyncio.to_thread(check_views, target, expected)
        if not report["check"]["ok"]:
            exit_code = 1
        if not args.skip_ceiling:
            console.print("ceiling: raw bulk upserts of same-sized documents")
            report["ceiling"] = await asyncio.to_thread(
                store_ceiling, client, target, f"{name}_ceiling"
            )
        target.mysql.dispose()
    finally:
        if not args.keep:
            with contextlib.suppress(Exception):
                client.drop_database(name)
            if created_mysql:
                with contextlib.suppress(Exception):
                    drop_mysql_database(base, name)
            with contextlib.suppress(Exception):
                await delete_topics(base.kafka_bootstrap, prefix)
        client.close()
    finished = time.time()
    report["finished_at"] = utc_iso(finished)
    report["duration_s"] = round(finished - started_wall, 1)
    return report, exit_code


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def render(report: dict[str, Any]) -> None:
    p = report["parameters"]
    m = report["machine"]
    console.print(
        f"\n[bold]Replay benchmark[/]  run {report['run_id']}  commit {report['git_commit']}  "
        f"{m['cpu_count']} cores  Python {m['python']}  "
        f"gc thresholds {m.get('gc_thresholds')}\n"
        f"{p['events']} events, {p['locations']} locations x {p['evses_per_location']} EVSEs, "
        f"replay batches of {p['replay_batch']}; took {report.get('duration_s')} s"
    )
    table = Table(title="Seed -> replay into every view -> store ceiling")
    table.add_column("measure")
    table.add_column("value", justify="right")
    s = report.get("seed")
    if s:
        table.add_row("seed: events appended (acks=all)", f"{s['events']} in {s['wall_s']} s")
    r = report.get("replay")
    if r:
        table.add_row("replay: events / s", f"{r['events_per_s']} ({r['wall_s']} s)")
        table.add_row(
            "replay: documents / rows written",
            f"{r['documents_written']} ({r['documents_written_per_s']}/s) / {r['rows_written']}",
        )
        table.add_row(
            "replay process CPU: cores / µs per event",
            f"{r['replay_process_cores']} / {r['replay_process_cpu_us_per_event']}",
        )
        table.add_row("replay: batches", f"{r['batches']}")
        table.add_row("replay process peak RSS (MiB)", f"{r.get('replay_process_peak_rss_mib')}")
        for view, v in r["views"].items():
            if v["written"] or v.get("apply_cpu_s", 0) >= 0.1:
                table.add_row(
                    f"  {view}: written (apply s / CPU s)",
                    f"{v['written']} ({v['apply_s']} / {v.get('apply_cpu_s', '-')})",
                )
    c = report.get("check")
    if c:
        table.add_row("check: views match the events", "yes" if c["ok"] else f"[bold red]NO[/] {c}")
    ceiling = report.get("ceiling") or {}
    for label in ("location_view", "location_history"):
        if label in ceiling:
            e = ceiling[label]
            inserted = e["bulk_upsert_insert"]["docs_per_s"]
            replaced = e["bulk_upsert_replace"]["docs_per_s"]
            entries = e.get("entries_per_doc", 1)
            table.add_row(
                f"ceiling: bulk upsert {label} ({e['doc_bytes']} B, {entries} entries)"
                " insert / replace docs/s",
                f"{inserted} / {replaced}",
            )
    console.print(table)
    for phase in ("seed", "replay"):
        cpu = (report.get(phase) or {}).get("cpu")
        if cpu:
            cores = ", ".join(f"{k} {v:.2f}" for k, v in cpu["cores"].items() if v >= 0.01)
            console.print(f"CPU cores during {phase} ({cpu['wall_s']} s): {cores}")


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return REPO / "data" / "bench" / f"replay-{stamp}.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay",
        description="Seed N location events into a fresh namespace and time their replay "
        "into every view, beside the document store's bulk-write ceiling.",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events to seed")
    parser.add_argument("--locations", type=int, default=10_000, help="locations they are about")
    parser.add_argument("--evses-per-location", type=int, default=4)
    parser.add_argument(
        "--location-patch-share",
        type=float,
        default=0.02,
        help="share of the steps that PATCH the location (its name) instead of an EVSE status",
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="events per replay batch (default: the setting)"
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=REPO / "data" / "run",
        help="where `make up` keeps its pidfiles (for the CPU of each process)",
    )
    parser.add_argument("--skip-ceiling", action="store_true", help="no ceiling measurement")
    parser.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    parser.add_argument("--out", type=Path, default=None, help="JSON report path")
    args = parser.parse_args(argv)
    for name in ("events", "locations", "evses_per_location"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch is not None and args.batch < 1:
        parser.error("--batch must be at least 1")
    if not 0 <= args.location_patch_share <= 1:
        parser.error("--location-patch-share must be within [0, 1]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # The collector as ``ocpi-hub replay`` has it (ocpi_hub/collector.py).
    collector.tune(get_settings().gc_young_threshold)
    out: Path = args.out or default_out()
    report, code = run_and_write(run, args, out, render)
    if report is None:
        return code
    if code:
        console.print("[bold red]the rebuilt views do not show what the events say[/]")
    return code


if __name__ == "__main__":
    sys.exit(main())
