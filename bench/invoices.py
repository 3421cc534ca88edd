"""Closing a month of corporate billing (issue 14, docs/adr/0036).

    python -m bench.invoices [--corporations 1000] [--members 50] [--sessions 20]
                             [--run-dir /work/main/data/run] [--keep]
                             [--out data/bench/invoices-<UTC>.json]

What it does, in order:

1. Namespace: a fresh topic prefix ``binv<run id>.`` (topics and decision
   store keys), beside the platform's own; nothing live is touched.
2. Seed (not timed as the close): per corporation a ``CorporationRegistered``,
   ``--members`` members invited and activated, and ``--sessions`` charges per
   member (``ChargeRecorded``, sessions ending in November 2026) appended
   straight to the billing topic with an idempotent producer (acks=all),
   keyed as the write path keys them. Default: 1,000 x 50 x 20 = 1,000,000
   charges.
3. Decision store (not timed as the close, reported): the slice's states are
   rebuilt from the topic as any process does on an empty store
   (``WritePath.ensure_ready``).
4. Close (timed): ``ocpi-hub billing close-month --month 2026-11`` run as
   its own process, as an operator runs it: wall time, its CPU time and its
   peak resident memory (VmHWM, sampled), the CPU of the
   processes ``make up`` started (Kafka, Redis, ...) over the same span.
5. Check: the month is recorded closed with one invoice per corporation and
   the numbers run from 1 to N without a gap. Exit status 1 otherwise.
6. Clean-up: the namespace's topics and decision store keys are removed
   (``--keep`` keeps them).

This is a measurement, not a test: nothing here judges the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from rich.table import Table

from bench.harness import REPO, CpuMeter, console, git_commit, rate, run_and_write, utc_iso
from ocpi_hub.bootstrap import opened, redis_client
from ocpi_hub.settings import Settings, get_settings
from producers import invoice_numbers
from producers.billing.aggregate import SLICE as BILLING_SLICE
from producers.billing.charges import price_charge
from producers.log import ensure_topics
from schemas.events import EventMeta, Party, serialize_event
from schemas.events.billing import (
    Address,
    ChargeRecorded,
    ChargeRecordedPayload,
    Contract,
    CorporationRegistered,
    CorporationRegisteredPayload,
    MemberActivated,
    MemberActivatedPayload,
    MemberInvited,
    MemberInvitedPayload,
    PaymentMethod,
)
from schemas.topics import BILLING_CORPORATIONS

US = Party(country_code="ZZ", party_id="HUB")
SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
SEED_CHUNK = 20_000
OCPI_HUB = str(Path(sys.executable).parent / "ocpi-hub")


def _meta(key: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "aggregate_key": key,
        "occurred_at": at,
        "recorded_at": at,
        "source": US,
        "correlation_id": "bench-invoices",
    }


def generate(run_id: str, corporations: int, members: int, sessions: int) -> Iterator[EventMeta]:
    """Every corporation's events in its aggregate's order."""
    contract = Contract(
        price_per_kwh=Decimal("0.35"),
        monthly_fee_per_member=Decimal("2.50"),
        vat_rate=Decimal("0.21"),
        payment_term_days=30,
    )
    address = Address(street="Benchstraat 1", postal_code="1000 AA", city="Bench", country="NL")
    for c in range(corporations):
        cid = f"c{run_id[:3]}{c:08d}"
        yield CorporationRegistered(
            **_meta(cid, SEPTEMBER),
            payload=CorporationRegisteredPayload(
                corporation_id=cid,
                legal_name=f"Bench Fleet {c}",
                country="NL",
                registration_number="12345678",
                vat_id="NL004495445B01",
                billing_address=address,
                billing_email=f"billing{c}@bench.example",
                currency="EUR",
                payment_method=PaymentMethod.MONTHLY_INVOICE,
                contract=contract,
                at=SEPTEMBER,
            ),
        )
        for m in range(members):
            mid = f"m{c:05d}{m:06d}"
            invitation = uuid.uuid4().hex
            yield MemberInvited(
                **_meta(cid, SEPTEMBER),
                payload=MemberInvitedPayload(
                    corporation_id=cid,
                    member_id=mid,
                    name=f"Driver {m}",
                    email=f"d{m}@c{c}.bench.example",
                    cost_centre=f"CC{m % 5}",
                    invitation_id=invitation,
                    expires_at=SEPTEMBER + timedelta(days=3),
                    at=SEPTEMBER,
                ),
            )
            yield MemberActivated(
                **_meta(cid, SEPTEMBER),
                payload=MemberActivatedPayload(
                    corporation_id=cid,
                    member_id=mid,
                    invitation_id=invitation,
                    token_uid=f"CB{mid.upper()}",
                    token_type="APP_USER",
                    at=SEPTEMBER,
                ),
            )
        for s in range(sessions):
            for m in range(members):
                mid = f"m{c:05d}{m:06d}"
                end = NOVEMBER + timedelta(hours=s * 30 + 1, minutes=m)
                energy = Decimal(5 + (s * members + m) % 40) + Decimal("0.125")
                yield ChargeRecorded(
                    **_meta(cid, end),
                    payload=ChargeRecordedPayload(
                        corporation_id=cid,
                        member_id=mid,
                        cost_centre=f"CC{m % 5}",
                        cdr_key=f"ZZ/BIN/{cid}-{m}-{s}",
                        role="issued",
                        token_uid=f"CB{mid.upper()}",
                        token_type="APP_USER",
                        start_date_time=end - timedelta(hours=1),
                        end_date_time=end,
                        energy_kwh=energy,
                        price_per_kwh=contract.price_per_kwh,
                        amount=price_charge(energy, contract.price_per_kwh),
                        currency="EUR",
                        at=end,
                    ),
                )


async def seed(settings: Settings, prefix: str, events: Iterator[EventMeta]) -> dict[str, Any]:
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
    topic = prefix + BILLING_CORPORATIONS.name
    try:
        done = False
        while not done:
            futures = []
            for _ in range(SEED_CHUNK):
                event = next(events, None)
                if event is None:
                    done = True
                    break
                value = serialize_event(event)
                payload_bytes += len(value)
                event_type: str = getattr(event, "event_type")  # noqa: B009
                futures.append(
                    await producer.send(
                        topic,
                        value=value,
                        key=event.aggregate_key.encode(),
                        headers=[("event_type", event_type.encode()), ("schema_version", b"1")],
                    )
                )
            await asyncio.gather(*futures)
            sent += len(futures)
            if sent % 200_000 < SEED_CHUNK:
                console.print(f"  seeded {sent}", style="dim")
    finally:
        await producer.stop()
    return {"events": sent, "bytes": payload_bytes}


def env_of(settings: Settings) -> dict[str, str]:
    return {f"OCPI_HUB_{k.upper()}": str(v) for k, v in settings.model_dump().items()}


def _peak_kib(pid: int) -> int | None:
    """The process's peak resident memory so far (VmHWM), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def close_as_a_process(settings: Settings) -> dict[str, Any]:
    """``ocpi-hub billing close-month`` in its own process: wall, CPU, peak RSS.

    The peak is the child's VmHWM, sampled every 50 ms until it exits: the
    ``ru_maxrss`` that ``getrusage`` reports for a child is not its own, it
    starts from this process's resident size when it forked (Linux keeps the
    high-water mark across exec), and this process holds the rebuilt states."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [OCPI_HUB, "billing", "close-month", "--month", "2026-11"],
        env={**os.environ, **env_of(settings), "OCPI_HUB_LOG_LEVEL": "warning"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    while child.poll() is None:
        peak = max(peak, _peak_kib(child.pid) or 0)
        time.sleep(0.05)
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "exit_status": child.returncode,
        "wall_s": round(wall, 3),
        "cpu_user_s": round(after.ru_utime - before.ru_utime, 3),
        "cpu_system_s": round(after.ru_stime - before.ru_stime, 3),
        "peak_rss_mib": round(peak / 1024, 1),
        "report": json.loads(stdout.strip().splitlines()[-1]) if child.returncode == 0 else None,
        "stderr_tail": stderr[-2000:] if child.returncode else "",
    }


async def _drop(settings: Settings, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
    redis = redis_client(settings)
    try:
        async for key in redis.scan_iter(match=f"{prefix}ocpi-hub:*", count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()


async def run(args: argparse.Namespace, started_wall: float) -> tuple[dict[str, Any], int]:
    base = get_settings()
    run_id = uuid.uuid4().hex[:8]
    prefix = f"binv{run_id}."
    settings = base.model_copy(update={"topic_prefix": prefix})
    charges = args.corporations * args.members * args.sessions
    report: dict[str, Any] = {
        "benchmark": "invoices",
        "run_id": run_id,
        "started_at": utc_iso(started_wall),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "corporations": args.corporations,
            "members": args.members,
            "sessions": args.sessions,
            "charges": charges,
            "topic_prefix": prefix,
        },
    }
    meter = CpuMeter(Path(args.run_dir))
    code = 0
    try:
        await ensure_topics(base.kafka_bootstrap, prefix, base.topic_replication_factor)
        console.print(
            f"[bold]Invoices benchmark[/] run {run_id}: {args.corporations} corporations x "
            f"{args.members} members x {args.sessions} sessions = {charges} charges"
        )
        t0 = time.perf_counter()
        seeded = await seed(
            settings, prefix, generate(run_id, args.corporations, args.members, args.sessions)
        )
        seed_s = time.perf_counter() - t0
        report["seed"] = {
            **seeded,
            "wall_s": round(seed_s, 3),
            "per_s": rate(seeded["events"], seed_s),
        }
        console.print("  rebuilding the decision store from the topic", style="dim")
        t0 = time.perf_counter()
        async with opened(settings, [BILLING_SLICE, invoice_numbers.SLICE]):
            pass
        report["decision_store_rebuild_s"] = round(time.perf_counter() - t0, 3)
        # This process's peak: the seed and the rebuild (every state at once).
        report["seed_and_rebuild_peak_rss_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )

        console.print("  closing November (ocpi-hub billing close-month)", style="dim")
        cpu0 = meter.snapshot()
        load0 = os.getloadavg()
        closed = await asyncio.to_thread(close_as_a_process, settings)
        cpu1 = meter.snapshot()
        report["close"] = {
            **closed,
            "invoices_per_s": rate(args.corporations, closed["wall_s"]),
            "charges_per_s": rate(charges, closed["wall_s"]),
            "platform_cpu": CpuMeter.between(cpu0, cpu1),
            "load_average_before": load0,
            "load_average_after": os.getloadavg(),
        }

        async with opened(settings, [invoice_numbers.SLICE]) as c:
            numbering = await c.write_path.state(invoice_numbers.SLICE, invoice_numbers.KEY)
        closed_months = numbering.closed_months if numbering is not None else {}
        ok = (
            closed["exit_status"] == 0
            and closed_months.get("2026-11") == args.corporations
            and numbering is not None
            and numbering.last == args.corporations
        )
        report["check"] = {
            "month_closed_with": closed_months.get("2026-11"),
            "last_number": numbering.last if numbering else None,
            "ok": ok,
        }
        code = 0 if ok else 1
    finally:
        if not args.keep:
            await _drop(settings, prefix)
    return report, code


def render(report: dict[str, Any]) -> None:
    close = report.get("close", {})
    table = Table(title=f"close-month, {report['parameters']['charges']} charges")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in (
        ("seed (events, s)", f"{report['seed']['events']}, {report['seed']['wall_s']}"),
        ("decision store rebuild s", report.get("decision_store_rebuild_s")),
        ("seed + rebuild peak RSS MiB", report.get("seed_and_rebuild_peak_rss_mib")),
        ("close wall s", close.get("wall_s")),
        ("close CPU user+sys s", f"{close.get('cpu_user_s')}+{close.get('cpu_system_s')}"),
        ("close peak RSS MiB", close.get("peak_rss_mib")),
        ("invoices per s", close.get("invoices_per_s")),
        ("check", report.get("check")),
    ):
        table.add_row(name, str(value))
    console.print(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.invoices", description=__doc__)
    parser.add_argument("--corporations", type=int, default=1000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=20, help="per member")
    parser.add_argument("--run-dir", default=str(REPO / "data" / "run"))
    parser.add_argument("--keep", action="store_true")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    parser.add_argument(
        "--out", type=Path, default=REPO / "data" / "bench" / f"invoices-{stamp}.json"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _, code = run_and_write(run, args, args.out, render)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
