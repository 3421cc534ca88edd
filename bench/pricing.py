"""Throughput of the pricing engine: how many sessions (CDRs) per second
``producers.pricing.price_session`` prices, per tariff and session shape.

A pure CPU benchmark: no services, no platform (it does not need ``make
up``). One process, one thread, so it uses one core whatever the machine
has; the report records the core count beside the figures, like the other
benchmarks (bench/README.md).

    python -m bench.pricing [--seconds 1.0] [--out data/bench/pricing-<UTC>.json]

Tariffs (built here, realistic shapes):

* ``simple_energy``: one ENERGY price with VAT.
* ``time_of_day_parking``: a start fee, day and night energy prices by time
  of day, parking billed per 15 min during the day, a maximum price.
* ``complex``: six elements, every restriction kind the engine evaluates
  (current, power, kWh, duration, day of week, time of day), TIME, ENERGY,
  PARKING_TIME and FLAT, min and max prices.

Sessions of 1, 10 and 100 charging periods, 6 min each, each with ENERGY,
TIME (or PARKING_TIME for the last tenth) and MAX_CURRENT / MAX_POWER
readings, starting on a weekday at 07:30 local time (Europe/Amsterdam), so a
long session crosses the day/night boundaries.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.harness import REPO, git_commit, utc_iso
from producers.pricing import price_session
from schemas.ocpi.cdrs import CdrDimension, CdrDimensionType, ChargingPeriod
from schemas.ocpi.tariffs import (
    DayOfWeek,
    Price,
    PriceComponent,
    Tariff,
    TariffElement,
)
from tests.tariff_objects import element, price_component

D = Decimal
ZONE = "Europe/Amsterdam"
SHAPES = (1, 10, 100)
PERIOD_MINUTES = 6


def _pc(kind: str, price: str, step: int = 1, vat: str | None = "21") -> PriceComponent:
    """Prices with 21 % VAT unless told otherwise."""
    return price_component(kind, price, step, vat)


_el = element


def _tariff(name: str, *elements: TariffElement, **limits: Price) -> Tariff:
    return Tariff(
        country_code="ZZ",
        party_id="BCH",
        id=f"BENCH-{name}",
        currency="EUR",
        elements=list(elements),
        last_updated=datetime(2026, 1, 1, tzinfo=UTC),
        **limits,
    )


WEEKDAYS = [DayOfWeek(d) for d in ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY")]

TARIFFS: dict[str, Tariff] = {
    "simple_energy": _tariff("SIMPLE", _el(_pc("ENERGY", "0.39"))),
    "time_of_day_parking": _tariff(
        "TOD",
        _el(_pc("FLAT", "0.50")),
        _el(
            _pc("ENERGY", "0.45"),
            _pc("PARKING_TIME", "2.00", 900),
            start_time="08:00",
            end_time="20:00",
        ),
        _el(_pc("ENERGY", "0.29"), start_time="20:00", end_time="08:00"),
        max_price=Price(excl_vat=D("50"), incl_vat=D("60.50")),
    ),
    "complex": _tariff(
        "COMPLEX",
        _el(_pc("FLAT", "2.50", vat="15")),
        _el(_pc("TIME", "1.00", 900, "20"), _pc("ENERGY", "0.30", 100), max_current=D("32")),
        _el(
            _pc("TIME", "2.00", 600, "20"),
            _pc("ENERGY", "0.40", 100),
            min_current=D("32"),
            day_of_week=WEEKDAYS,
            max_power=D("50"),
        ),
        _el(_pc("ENERGY", "0.55", 100), min_power=D("50"), min_kwh=D("5"), max_duration=14400),
        _el(
            _pc("PARKING_TIME", "5.00", 300, "10"),
            start_time="09:00",
            end_time="18:00",
            day_of_week=WEEKDAYS,
        ),
        _el(
            _pc("PARKING_TIME", "6.00", 300, "10"),
            start_time="10:00",
            end_time="17:00",
            day_of_week=[DayOfWeek.SATURDAY],
        ),
        min_price=Price(excl_vat=D("1.00"), incl_vat=D("1.20")),
        max_price=Price(excl_vat=D("80"), incl_vat=D("95")),
    ),
}


def session(periods: int) -> tuple[list[ChargingPeriod], datetime, datetime]:
    """``periods`` charging periods of 6 min from a Tuesday 07:30 local."""
    start = datetime(2026, 3, 3, 7, 30, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
    out = []
    parking_from = periods - max(1, periods // 10) if periods > 1 else periods
    for i in range(periods):
        hours = D(PERIOD_MINUTES) / 60
        parked = i >= parking_from
        dims = [
            CdrDimension(
                type=CdrDimensionType.PARKING_TIME if parked else CdrDimensionType.TIME,
                volume=hours,
            )
        ]
        if not parked:
            current = D(16 + (i % 4) * 8)  # 16, 24, 32, 40 A
            power = D(11 + (i % 5) * 15)  # 11 .. 71 kW
            dims += [
                CdrDimension(
                    type=CdrDimensionType.ENERGY, volume=(power * hours).quantize(D("0.001"))
                ),
                CdrDimension(type=CdrDimensionType.MAX_CURRENT, volume=current),
                CdrDimension(type=CdrDimensionType.MAX_POWER, volume=power),
            ]
        out.append(
            ChargingPeriod(
                start_date_time=start + timedelta(minutes=PERIOD_MINUTES * i), dimensions=dims
            )
        )
    return out, start, start + timedelta(minutes=PERIOD_MINUTES * periods)


def measure(tariff: Tariff, periods: int, seconds: float) -> dict[str, Any]:
    charging, start, end = session(periods)
    zone = ZoneInfo(ZONE)
    sample = price_session(tariff, charging, start=start, end=end, time_zone=zone)
    for _ in range(20):  # warm-up
        price_session(tariff, charging, start=start, end=end, time_zone=zone)
    rounds: list[float] = []  # CDRs/s of each 0.1 s round
    count = 0
    began = time.perf_counter()
    while (now := time.perf_counter()) - began < seconds:
        n = 0
        round_start = now
        while time.perf_counter() - round_start < 0.1:
            price_session(tariff, charging, start=start, end=end, time_zone=zone)
            n += 1
        rounds.append(n / (time.perf_counter() - round_start))
        count += n
    elapsed = time.perf_counter() - began
    rate = count / elapsed
    return {
        "tariff": tariff.id,
        "elements": len(tariff.elements),
        "periods": periods,
        "cdrs": count,
        "seconds": round(elapsed, 3),
        "cdrs_per_s": round(rate, 1),
        "cdrs_per_s_median_round": round(statistics.median(rounds), 1),
        "periods_per_s": round(rate * periods, 1),
        "us_per_cdr": round(1e6 / rate, 1),
        "total_cost": {
            "excl_vat": str(sample.total_cost.excl_vat),
            "incl_vat": None
            if sample.total_cost.incl_vat is None
            else str(sample.total_cost.incl_vat),
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pricing", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per case")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON report (default data/bench/pricing-<UTC>.json)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or REPO / "data" / "bench" / f"pricing-{stamp}.json"
    report: dict[str, Any] = {
        "benchmark": "pricing",
        "started_at": utc_iso(started),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
        "git_commit": git_commit(),
        "parameters": {
            "seconds_per_case": args.seconds,
            "period_minutes": PERIOD_MINUTES,
            "time_zone": ZONE,
            "threads": 1,
            "note": "one process, one thread: uses one core; other load on the machine counts",
        },
        "results": [],
    }
    print(f"pricing benchmark: {os.cpu_count()} cores, one used")
    print(f"{'tariff':<22}{'periods':>8}{'CDRs/s':>12}{'periods/s':>12}{'us/CDR':>10}")
    for name, tariff in TARIFFS.items():
        for periods in SHAPES:
            result = {"name": name, **measure(tariff, periods, args.seconds)}
            report["results"].append(result)
            print(
                f"{name:<22}{periods:>8}{result['cdrs_per_s']:>12,.0f}"
                f"{result['periods_per_s']:>12,.0f}{result['us_per_cdr']:>10,.0f}"
            )
    finished = time.time()
    report["finished_at"] = utc_iso(finished)
    report["duration_s"] = round(finished - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
