"""A partner's full pull of the platform's own locations through the paginated
Sender list, and what it costs to get them there.

    python -m bench.locations_pull [--locations 50000] [--page-size 500]
                                   [--evses-per-location 1] [--crawl all|window]
                                   [--run-dir data/run] [--out FILE]

What it does, in order:

0. Platform: the platform's processes of this checkout (API, processors,
   projections, push, gateway: tests/e2e/conftest.py ``running_platform``)
   start on free ports in a fresh namespace (topic prefix, MongoDB and
   MySQL databases) of the services ``make up`` started; the namespace is
   dropped when the run ends, so nothing it seeded stays.
1. Pre-flight (as bench/evse_status.py): API, MongoDB and Kafka answer.
   A fresh bench partner is invited and registers (bench/partner.py); the
   Sender list needs its token.
2. Window: the run's locations get ``last_updated`` stamps inside one hour of
   the year 2001 derived from the run id, 1 ms apart, so the crawl can filter
   them with ``date_from``/``date_to`` and must count exactly N. The window
   is checked to be empty first (another run id is drawn if not).
3. Seed: N ``LocationObjectPut`` events of the platform's own party
   (settings ``party_country_code``/``party_id``), ids
   ``BENCH-PULL-<run id>-<n>``, built with ``producers.locations.plan_put``
   (the decision the ops API takes) and appended through ``KafkaEventLog``
   (acks=all, idempotent) in batches: no HTTP on this path.
4. Projection: ``X-Total-Count`` of the list crawled next is polled until it
   has grown by N (timeout ``--projection-timeout``), and for the whole list
   then that of the run's window until it is N (the whole list's total is
   the projection's kept count, which runs a batch ahead of the documents);
   the time from the first append to then is the projection's catch-up time.
5. Crawl: one keep-alive connection, ``GET /ocpi/cpo/2.2.1/locations?limit=``
   (``--crawl all``, the default: the whole list, as a partner's first sync
   asks for it; ``X-Total-Count`` then comes from the counts the projection
   keeps) or with ``date_from=&date_to=`` of the run's hour (``--crawl
   window``: only this run's locations; the total is counted in the index),
   then every ``Link: <...>; rel="next"`` until there is none, one page at a
   time as a partner would. Every page must answer HTTP 200 / OCPI 1000; the
   crawl must see every location of this run exactly once, and no id twice:
   in the window nothing else, in the whole list as many objects as the first
   page's ``X-Total-Count`` (exit status 1 otherwise).
6. Keyset against offset: the last page again, ``--repeat`` times each, by
   the ``Link`` URL (keyset cursor) and by a plain ``offset`` (no cursor, as a
   client that computes offsets itself); both must return the same ids.

The seeded locations are events in a log kept forever, so they are seeded
into the run's own namespace rather than the dev store's: there the next
run's whole list would hold them too, and every run would add N more. CPU
is counted per process of the run's platform (``api@ns``, ...) beside the
processes ``make up`` started (``--run-dir``: the services', the document
store's among them). This is a measurement, not a test: nothing judges the
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from pymongo import MongoClient
from rich.table import Table

from bench.harness import (
    HTTP_TIMEOUT_S,
    REPO,
    CpuMeter,
    Doc,
    PlatformUnavailableError,
    cheap_async_library_detection,
    console,
    format_stamp,
    git_commit,
    ocpi_status_code,
    preflight,
    rate,
    register_partner,
    run_and_write,
    summarize_ms,
    utc_iso,
)
from ocpi_hub.settings import Settings, get_settings
from producers.locations import plan_put
from producers.log import KafkaEventLog
from producers.write_path import Origin
from schemas.events import EventMeta, Party
from schemas.events.locations import LocationObjectRef
from schemas.ocpi.common import fold
from tests.conftest import fresh_namespace
from tests.e2e.conftest import Platform, running_platform
from tests.ocpi_objects import connector, evse, location

LIST_PATH = "/ocpi/cpo/2.2.1/locations"
WINDOW = timedelta(hours=1)  # one run's stamps, 1 ms apart: at most 3.6 M locations
YEAR_2001_MS = 978_307_200_000  # 2001-01-01T00:00:00Z
WINDOWS_IN_2001 = 365 * 24
SEED_BATCH = 1000
WINDOW_ATTEMPTS = 5


def window_of(run_id: str) -> tuple[int, int]:
    """[start, end) in epoch ms: an hour of 2001 derived from the run id."""
    start = YEAR_2001_MS + (int(run_id, 16) % WINDOWS_IN_2001) * int(WINDOW.total_seconds()) * 1000
    return start, start + int(WINDOW.total_seconds()) * 1000


def stamp_of(start_ms: int, i: int) -> str:
    return format_stamp(start_ms + i)


def location_id_of(run_id: str, i: int) -> str:
    return f"BENCH-PULL-{run_id}-{i:07d}"


def seed_events(
    settings: Settings, run_id: str, start_ms: int, n: int, evses_per_location: int
) -> list[EventMeta]:
    """N LocationObjectPut events of our own party, as ``plan_put`` decides
    them for a location we do not hold yet."""
    us = Party(country_code=fold(settings.party_country_code), party_id=fold(settings.party_id))
    origin = Origin(us, f"bench-pull-{run_id}")
    now = datetime.now(UTC)
    events: list[EventMeta] = []
    for i in range(n):
        location_id = location_id_of(run_id, i)
        at = stamp_of(start_ms, i)
        body = location(
            location_id,
            country_code=settings.party_country_code,
            party_id=settings.party_id,
            at=at,
            evses=[
                evse(f"{location_id}-{k}", at=at, connectors=[connector(at=at)])
                for k in range(1, evses_per_location + 1)
            ],
        )
        ref = LocationObjectRef(
            country_code=settings.party_country_code,
            party_id=settings.party_id,
            location_id=location_id,
        )
        events.append(plan_put(ref, body, None, origin, now).event)
    return events


# --------------------------------------------------------------------------- #
# HTTP
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Fetched:
    seconds: float
    status: int
    ocpi_status: int | None
    ids: list[str]
    total: int | None
    limit: int | None
    next_url: str | None
    body_bytes: int


Scope = tuple[int, int] | None  # a [start, end) window in epoch ms, or the whole list


def list_url(scope: Scope, **extra: int | str) -> str:
    query: dict[str, int | str] = {}
    if scope is not None:
        query.update(date_from=format_stamp(scope[0]), date_to=format_stamp(scope[1]))
    query.update(extra)
    return f"{LIST_PATH}?{urlencode(query)}"


def _int_header(response: httpx.Response, name: str) -> int | None:
    with contextlib.suppress(TypeError, ValueError):
        return int(response.headers.get(name))
    return None


async def fetch(client: httpx.AsyncClient, url: str) -> Fetched:
    """One page: the time from send to the whole body read, then what it holds."""
    started = time.perf_counter()
    response = await client.get(url)
    took = time.perf_counter() - started
    ids: list[str] = []
    ocpi: int | None = None
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        answer = orjson.loads(response.content)
        ocpi = answer.get("status_code")
        ids = [str(item["id"]) for item in answer.get("data") or ()]
    return Fetched(
        seconds=took,
        status=response.status_code,
        ocpi_status=ocpi if isinstance(ocpi, int) else ocpi_status_code(response),
        ids=ids,
        total=_int_header(response, "X-Total-Count"),
        limit=_int_header(response, "X-Limit"),
        next_url=response.links.get("next", {}).get("url"),
        body_bytes=len(response.content),
    )


def ok(page: Fetched) -> bool:
    return page.status == 200 and page.ocpi_status == 1000


async def total_in(client: httpx.AsyncClient, scope: Scope) -> int:
    page = await fetch(client, list_url(scope, limit=1))
    if not ok(page) or page.total is None:
        raise PlatformUnavailableError(
            f"GET {LIST_PATH} answered HTTP {page.status} / OCPI {page.ocpi_status} "
            "(without X-Total-Count)"
        )
    return page.total


# --------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------- #


# The pause after a projection poll, in multiples of the poll's own time.
POLL_SHARE = 4.0


async def wait_for_projection(
    client: httpx.AsyncClient, scope: Scope, n: int, timeout_s: float
) -> tuple[float | None, int, list[tuple[float, int]]]:
    """Poll X-Total-Count of ``scope`` until it is ``n``; return when (perf
    counter) it was, the last count seen, and the (time, count) samples.

    A poll is a first page, which on the local document store costs a scan
    of the list (seconds at 50,000): polled back to back, it took most of
    the store's core from the projection it waits for (2026-12-07: 281
    polls of ~3 s in 900 s). So the pause after a poll is at least
    ``POLL_SHARE`` times what the poll took: polling takes at most about a
    fifth of the store, and "all visible" is known to within a poll or two."""
    deadline = time.perf_counter() + timeout_s
    samples: list[tuple[float, int]] = []
    next_note = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        asked = time.perf_counter()
        count = await total_in(client, scope)
        now = time.perf_counter()
        samples.append((now, count))
        if count >= n:
            return now, count, samples
        if now >= next_note:
            console.print(f"  visible in the list: {count}/{n}", style="dim")
            next_note += 10
        await asyncio.sleep(max(0.5, POLL_SHARE * (now - asked)))
    return None, samples[-1][1] if samples else 0, samples


async def crawl(
    client: httpx.AsyncClient, first_url: str, max_pages: int
) -> tuple[list[Fetched], list[str], float, str | None]:
    """Follow ``Link: rel="next"`` from ``first_url``. Returns the pages, the
    URLs fetched, the wall time, and an error (a page not HTTP 200 / OCPI
    1000, or more pages than there can be) or None."""
    pages: list[Fetched] = []
    urls: list[str] = []
    url: str | None = first_url
    started = time.perf_counter()
    error = None
    while url is not None:
        if len(pages) >= max_pages:
            error = f"more than {max_pages} pages: the Link chain does not end"
            break
        page = await fetch(client, url)
        pages.append(page)
        urls.append(url)
        if not ok(page):
            error = f"page {len(pages)} answered HTTP {page.status} / OCPI {page.ocpi_status}"
            break
        url = page.next_url
    return pages, urls, time.perf_counter() - started, error


async def run(
    args: argparse.Namespace, started_wall: float, measured: Platform
) -> tuple[dict[str, Any], int]:
    settings = measured.namespace.settings
    run_id = uuid.uuid4().hex[:8]
    base_url = measured.base_url
    n = args.locations
    report: dict[str, Any] = {
        "benchmark": "locations_pull",
        "run_id": run_id,
        "started_at": utc_iso(started_wall),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "locations": n,
            "page_size": args.page_size,
            "evses_per_location": args.evses_per_location,
            "crawl": args.crawl,
            "repeat": args.repeat,
            "projection_timeout_s": args.projection_timeout,
            "seed_batch": SEED_BATCH,
            "api": base_url,
            "kafka": settings.kafka_bootstrap,
            "namespace": measured.namespace.name,
            "platform_logs": str(measured.logs),
            "mongo_db": settings.mongo_db,
            "topic_prefix": settings.topic_prefix,
            "our_party": f"{settings.party_country_code}/{settings.party_id}",
            "http_client": "one httpx.AsyncClient, one keep-alive HTTP/1.1 connection",
        },
    }
    mongo: MongoClient[Doc] = MongoClient(
        settings.mongo_url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000
    )
    client = httpx.AsyncClient(
        base_url=base_url,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=httpx.Timeout(HTTP_TIMEOUT_S),
        trust_env=False,
        verify=ssl.create_default_context(),
    )
    meter = CpuMeter(args.run_dir, {f"{name}@ns": p.pid for name, p in measured.processes.items()})
    report["parameters"]["cpu_accounted_processes"] = meter.names
    partnership = contextlib.ExitStack()
    exit_code = 0
    try:
        console.print(
            f"[bold]Locations pull benchmark[/] run {run_id}: pre-flight against {base_url}"
        )
        await preflight(client, mongo, settings)
        partner = await register_partner(partnership, run_id, measured.env)
        client.headers["Authorization"] = partner.authorization
        report["parameters"]["partner"] = f"{partner.country_code}/{partner.party_id}"
        report["parameters"]["partner_id"] = partner.partner_id

        for _ in range(WINDOW_ATTEMPTS):
            start_ms, end_ms = window_of(run_id)
            if await total_in(client, (start_ms, end_ms)) == 0:
                break
            run_id = uuid.uuid4().hex[:8]  # that hour of 2001 is taken: draw again
        else:
            raise PlatformUnavailableError("no empty hour of 2001 found for this run's stamps")
        report["run_id"] = run_id
        report["parameters"]["location_ids"] = f"BENCH-PULL-{run_id}-<n>"
        report["parameters"]["window"] = [format_stamp(start_ms), format_stamp(end_ms)]
        # The whole list (a partner's first sync), or only this run's window.
        scope: Scope = (start_ms, end_ms) if args.crawl == "window" else None
        baseline = 0 if scope is not None else await total_in(client, None)
        report["parameters"]["list_before_seed"] = baseline

        console.print(
            f"seed: building {n} LocationObjectPut events of "
            f"{settings.party_country_code}/{settings.party_id}, stamps in "
            f"[{format_stamp(start_ms)}, {format_stamp(end_ms)})"
        )
        cpu0 = meter.snapshot()
        t0 = time.perf_counter()
        events = await asyncio.to_thread(
            seed_events, settings, run_id, start_ms, n, args.evses_per_location
        )
        built = time.perf_counter()
        event_log = KafkaEventLog(settings.kafka_bootstrap, settings.topic_prefix, timeout_s=60)
        await event_log.start()
        try:
            batch_times = []
            for first in range(0, len(events), SEED_BATCH):
                t = time.perf_counter()
                await event_log.append(events[first : first + SEED_BATCH])
                batch_times.append(time.perf_counter() - t)
        finally:
            await event_log.stop()
        appended = time.perf_counter()
        cpu_seeded = meter.snapshot()
        console.print(f"seeded in {appended - built:.1f} s; waiting for the projection")
        visible_at, seen, samples = await wait_for_projection(
            client, scope, baseline + n, args.projection_timeout
        )
        if visible_at is not None and scope is None:
            # The whole list's X-Total-Count is the count the projection
            # keeps, written before a batch's documents: it can reach N a
            # batch early. The run's window is counted from the documents
            # themselves; "all visible" is when that count is N too.
            left = args.projection_timeout - (time.perf_counter() - built)
            visible_at, in_window, more = await wait_for_projection(
                client, (start_ms, end_ms), n, max(left, 1.0)
            )
            samples += more
            seen = baseline + in_window
        cpu_projected = meter.snapshot()
        report["seed"] = {
            "events": len(events),
            "build_s": round(built - t0, 3),
            "append_s": round(appended - built, 3),
            "appended_per_s": rate(len(events), appended - built),
            "batch_ms": summarize_ms(batch_times),
            "cpu": CpuMeter.between(cpu0, cpu_seeded),
        }
        report["projection"] = {
            "all_visible": visible_at is not None,
            "visible_count": seen,
            "first_append_to_all_visible_s": (
                round(visible_at - built, 3) if visible_at is not None else None
            ),
            "last_ack_to_all_visible_s": (
                round(visible_at - appended, 3) if visible_at is not None else None
            ),
            "visible_per_s_from_first_append": (
                rate(n, visible_at - built) if visible_at is not None else None
            ),
            "polls": len(samples),
            "cpu": CpuMeter.between(cpu_seeded, cpu_projected),
        }
        if visible_at is None:
            console.print(
                f"[bold red]only {seen}/{n} seeded locations in the list after "
                f"{args.projection_timeout:.0f} s[/]: is `ocpi-hub projections` running?"
            )
            return report, 1

        console.print(
            f"crawl ({args.crawl}): {baseline + n} locations, page size {args.page_size}, "
            "following Link headers"
        )
        first_url = list_url(scope, limit=args.page_size)
        max_pages = baseline + n + 2  # a page holds at least one object
        cpu_crawl0 = meter.snapshot()
        pages, urls, wall, error = await crawl(client, first_url, max_pages)
        cpu_crawl1 = meter.snapshot()
        ids = [i for p in pages for i in p.ids]
        distinct = set(ids)
        foreign = [i for i in distinct if not i.startswith(f"BENCH-PULL-{run_id}-")]
        expected = {location_id_of(run_id, i) for i in range(n)}
        missing = expected - distinct
        latencies = [p.seconds for p in pages]
        x_limit = pages[0].limit if pages else None
        report["crawl"] = {
            "pages": len(pages),
            "objects": len(ids),
            "distinct_ids": len(distinct),
            "duplicates": len(ids) - len(distinct),
            "missing": len(missing),
            "missing_examples": sorted(missing)[:5],
            "foreign_ids": len(foreign),
            "x_total_count_first_page": pages[0].total if pages else None,
            "x_limit": x_limit,
            "effective_page_size": min(args.page_size, x_limit) if x_limit else args.page_size,
            "wall_s": round(wall, 3),
            "objects_per_s": rate(len(ids), wall),
            "page_latency_ms": summarize_ms(latencies),
            "first_page_ms": round(latencies[0] * 1000, 2) if latencies else None,
            "last_page_ms": round(latencies[-1] * 1000, 2) if latencies else None,
            "page_bytes_mean": round(sum(p.body_bytes for p in pages) / len(pages)) if pages else 0,
            "error": error,
            "cpu": CpuMeter.between(cpu_crawl0, cpu_crawl1),
        }
        report["crawl"]["ids_of_this_run"] = len(distinct) - len(foreign)
        complete = error is None and not missing and len(ids) == len(distinct)
        if scope is not None:
            complete = complete and len(distinct) == n and not foreign
        else:
            # Others' locations are in the whole list too; nothing may be
            # missing from what the first page said there was.
            complete = complete and len(ids) == (pages[0].total if pages else -1)
        if not complete:
            exit_code = 1
        if pages and len(pages) > 1 and error is None:
            report["last_page"] = await last_page_comparison(
                client, urls[-1], pages[-1], scope, args, len(ids)
            )
    finally:
        await client.aclose()
        await asyncio.to_thread(partnership.close)
        mongo.close()
    finished = time.time()
    report["finished_at"] = utc_iso(finished)
    report["duration_s"] = round(finished - started_wall, 1)
    return report, exit_code


async def last_page_comparison(
    client: httpx.AsyncClient,
    keyset_url: str,
    crawled: Fetched,
    scope: Scope,
    args: argparse.Namespace,
    n: int,
) -> dict[str, Any]:
    """The last page again, by the keyset ``Link`` URL and by a plain offset,
    alternately ``--repeat`` times each (so both see the same machine)."""
    size = min(args.page_size, crawled.limit or args.page_size)
    offset = (n - 1) // size * size
    offset_url = list_url(scope, offset=offset, limit=size)
    keyset: list[float] = []
    by_offset: list[float] = []
    same = True
    for _ in range(args.repeat):
        k = await fetch(client, keyset_url)
        o = await fetch(client, offset_url)
        keyset.append(k.seconds)
        by_offset.append(o.seconds)
        same = same and ok(k) and ok(o) and k.ids == o.ids == crawled.ids
    k50 = summarize_ms(keyset).get("p50")
    o50 = summarize_ms(by_offset).get("p50")
    return {
        "offset": offset,
        "limit": size,
        "objects": len(crawled.ids),
        "keyset_ms": summarize_ms(keyset),
        "offset_ms": summarize_ms(by_offset),
        "offset_over_keyset_p50": round(o50 / k50, 2) if k50 and o50 else None,
        "same_objects": same,
    }


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def _lat(s: dict[str, Any]) -> str:
    if not s.get("count"):
        return "-"
    return f"{s['p50']:.1f} / {s['p99']:.1f} / {s['max']:.1f}"


def render(report: dict[str, Any]) -> None:
    p = report["parameters"]
    m = report["machine"]
    console.print(
        f"\n[bold]Locations pull benchmark[/]  run {report['run_id']}  "
        f"commit {report['git_commit']}  {m['cpu_count']} cores  Python {m['python']}\n"
        f"{p['locations']} locations x {p['evses_per_location']} EVSEs of {p['our_party']}, "
        f"page size {p['page_size']}; took {report.get('duration_s')} s"
    )
    table = Table(title="Seed -> projection -> paginated crawl (GET Sender list)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    seed = report.get("seed")
    if seed:
        table.add_row("seed: build events (plan_put) s", f"{seed['build_s']}")
        table.add_row(
            f"seed: append to Kafka s (batches of {p['seed_batch']})",
            f"{seed['append_s']} ({seed['appended_per_s']}/s)",
        )
    proj = report.get("projection")
    if proj:
        if proj["all_visible"]:
            table.add_row(
                "projection: first append -> all in the list s",
                f"{proj['first_append_to_all_visible_s']} "
                f"({proj['visible_per_s_from_first_append']}/s)",
            )
            table.add_row(
                "projection: last ack -> all in the list s", f"{proj['last_ack_to_all_visible_s']}"
            )
        else:
            table.add_row("projection", f"[bold red]{proj['visible_count']} visible only[/]")
    c = report.get("crawl")
    if c:
        table.add_row("crawl: pages (X-Limit)", f"{c['pages']} ({c['x_limit']})")
        table.add_row("crawl: wall s", f"{c['wall_s']}")
        table.add_row("crawl: objects per s", f"{c['objects_per_s']}")
        table.add_row("crawl: page latency ms p50/p99/max", _lat(c["page_latency_ms"]))
        table.add_row(
            "crawl: first page / last page ms", f"{c['first_page_ms']} / {c['last_page_ms']}"
        )
        table.add_row("crawl: page bytes (mean)", f"{c['page_bytes_mean']}")
        window = p.get("crawl") == "window"
        bad = c["missing"] or c["duplicates"] or c["error"] or (window and c["foreign_ids"])
        table.add_row(
            "crawl: ids of this run / seeded (others in the list)",
            ("[bold red]" if bad else "") + f"{c['ids_of_this_run']} / {p['locations']}"
            + f" ({c['foreign_ids']})"
            + (f" (missing {c['missing']}, duplicates {c['duplicates']}, "
               f"error {c['error']})[/]" if bad else ""),
        )  # fmt: skip
    last = report.get("last_page")
    if last:
        table.add_row(
            f"last page by keyset Link ms p50/p99/max ({last['objects']} objects)",
            _lat(last["keyset_ms"]),
        )
        table.add_row(
            f"last page by offset={last['offset']} ms p50/p99/max", _lat(last["offset_ms"])
        )
        table.add_row("offset / keyset (p50)", f"{last['offset_over_keyset_p50']}")
        table.add_row("same objects", f"{last['same_objects']}")
    console.print(table)
    for phase in ("seed", "projection", "crawl"):
        cpu = (report.get(phase) or {}).get("cpu")
        if cpu:
            cores = ", ".join(f"{k} {v:.2f}" for k, v in cpu["cores"].items() if v >= 0.01)
            console.print(f"CPU cores during {phase} ({cpu['wall_s']} s): {cores}")


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return REPO / "data" / "bench" / f"locations_pull-{stamp}.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.locations_pull",
        description="A partner's full crawl of the platform's own locations through the "
        "paginated OCPI Sender list, after seeding them through Kafka.",
    )
    parser.add_argument("--locations", type=int, default=50_000, help="locations to seed")
    parser.add_argument("--page-size", type=int, default=500, help="limit asked per page")
    parser.add_argument(
        "--evses-per-location", type=int, default=1, help="EVSEs of each seeded location"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="fetches of the last page per method (keyset/offset)"
    )
    parser.add_argument(
        "--crawl",
        choices=("all", "window"),
        default="all",
        help="all: the whole Sender list, as a partner's first sync (X-Total-Count from the "
        "projection's counts); window: only this run's locations, by date_from/date_to "
        "(X-Total-Count counted in the index)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=REPO / "data" / "run",
        help="where `make up` keeps its pidfiles (for the CPU of the services and its processes)",
    )
    parser.add_argument(
        "--projection-timeout",
        type=float,
        default=900.0,
        help="seconds to wait for the seeded locations to be in the list",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON report (default data/bench/locations_pull-<UTC>.json)",
    )
    args = parser.parse_args(argv)
    for name in ("locations", "page_size", "evses_per_location", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.locations > int(WINDOW.total_seconds() * 1000):
        parser.error("--locations: at most 3,600,000 (one stamp per ms in an hour)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cheap_async_library_detection()
    out: Path = args.out or default_out()
    logs = Path(tempfile.mkdtemp(prefix="locations-pull-logs-"))
    console.print(f"starting the platform in a fresh namespace (logs in {logs})")
    with (
        fresh_namespace(get_settings()) as ns,
        running_platform(ns, logs) as measured,
    ):
        report, code = run_and_write(
            lambda a, started: run(a, started, measured), args, out, render
        )
    console.print(f"namespace {ns.name} dropped")
    if report is None:
        return code
    if code:
        console.print("[bold red]the crawl did not see exactly the seeded locations[/]")
    return code


if __name__ == "__main__":
    sys.exit(main())
