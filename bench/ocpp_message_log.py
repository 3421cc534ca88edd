"""What the gateway's log of recent OCPP messages costs (docs/adr/0038):

* ``entry``: CPU per frame on the gateway's side (parse, scrub, summarise,
  queue), for the frames a charger sends most (Heartbeat and its answer,
  StatusNotification, MeterValues with one sample of four values,
  StartTransaction with an idTag); one thread, one core;
* ``redis``: entries written per second by ``MessageLog.write_waiting``
  (pipelined XADD ~ + EXPIRE per entry) into the Redis of the settings
  (``data/run/services.env``), spread over ``--chargers`` streams (200 entries
  each by default, so Redis trims as it writes).

    python -m bench.ocpp_message_log [--frames 200000] [--chargers 1000]
        [--out data/bench/ocpp-message-log-<UTC>.json]

It needs Redis only (not the platform), and writes under its own key
prefix, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import git_commit, utc_iso
from gateway.message_log import CallTracker, MessageLog, messages_key
from ocpi_hub.bootstrap import redis_client
from ocpi_hub.settings import Settings

REPO = Path(__file__).resolve().parent.parent

_METER = {
    "connectorId": 1,
    "transactionId": 42,
    "meterValue": [
        {
            "timestamp": "2026-12-06T12:00:00Z",
            "sampledValue": [
                {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "16.0", "measurand": "Current.Import", "unit": "A"},
                {"value": "11.0", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "230", "measurand": "Voltage", "unit": "V"},
            ],
        }
    ],
}
FRAMES: dict[str, list[tuple[str, str]]] = {
    "heartbeat": [
        (json.dumps([2, "1", "Heartbeat", {}]), "in"),
        (json.dumps([3, "1", {"currentTime": "2026-12-06T12:00:00.000Z"}]), "out"),
    ],
    "status_notification": [
        (
            json.dumps(
                [
                    2,
                    "2",
                    "StatusNotification",
                    {
                        "connectorId": 1,
                        "errorCode": "NoError",
                        "status": "Charging",
                        "timestamp": "2026-12-06T12:00:00Z",
                    },
                ]
            ),
            "in",
        ),
        (json.dumps([3, "2", {}]), "out"),
    ],
    "meter_values": [
        (json.dumps([2, "3", "MeterValues", _METER]), "in"),
        (json.dumps([3, "3", {}]), "out"),
    ],
    "start_transaction": [
        (
            json.dumps(
                [
                    2,
                    "4",
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": "04A2B3C4D5E6",
                        "meterStart": 0,
                        "timestamp": "2026-12-06T12:00:00Z",
                    },
                ]
            ),
            "in",
        ),
        (json.dumps([3, "4", {"transactionId": 42, "idTagInfo": {"status": "Accepted"}}]), "out"),
    ],
}


def measure_entries(frames: int) -> list[dict[str, Any]]:
    """Frames per second through ``MessageLog.frame`` (queue only)."""
    results = []
    for name, pair in FRAMES.items():
        # Unbounded for the count: nothing is written here.
        log = MessageLog(None, "bench-", length=50, queue_max=frames + 1)  # type: ignore[arg-type]
        calls = CallTracker()
        start = time.perf_counter()
        for n in range(frames // 2):
            for raw, direction in pair:
                log.frame(f"CP-{n % 4000}", raw, direction, calls)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        done = (frames // 2) * 2
        results.append(
            {
                "name": name,
                "frames": done,
                "frames_per_s": round(done / elapsed),
                "us_per_frame": round(elapsed / done * 1e6, 2),
            }
        )
    return results


async def measure_redis(settings: Settings, entries: int, chargers: int) -> dict[str, Any]:
    redis = redis_client(settings)
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    log = MessageLog(redis, prefix, length=50, queue_max=entries + 1)
    calls = CallTracker()
    raw, direction = FRAMES["status_notification"][0]
    try:
        for n in range(entries):
            log.frame(f"CP-{n % chargers}", raw, direction, calls)  # type: ignore[arg-type]
        start = time.perf_counter()
        written = await log.write_waiting()
        elapsed = time.perf_counter() - start
        sizes = [await redis.xlen(messages_key(prefix, f"CP-{n}")) for n in range(0, chargers, 97)]
        return {
            "entries": written,
            "chargers": chargers,
            "entries_per_s": round(written / elapsed),
            "seconds": round(elapsed, 3),
            "stream_length_sampled_max": max(sizes) if sizes else 0,
            "dropped": log.dropped,
        }
    finally:
        keys = [messages_key(prefix, f"CP-{n}") for n in range(chargers)]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
        await redis.aclose()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    load = os.getloadavg()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or REPO / "data" / "bench" / f"ocpp-message-log-{stamp}.json"
    entries = measure_entries(args.frames)
    print(f"ocpp message log: {os.cpu_count()} cores; entry() on one thread")
    for e in entries:
        print(f"  {e['name']:<22}{e['frames_per_s']:>10,} frames/s{e['us_per_frame']:>8} us/frame")
    written = asyncio.run(measure_redis(Settings(), args.frames, args.chargers))
    print(
        f"  redis: {written['entries']:,} entries over {written['chargers']:,} streams, "
        f"{written['entries_per_s']:,}/s, "
        f"longest sampled stream {written['stream_length_sampled_max']}"
    )
    report = {
        "benchmark": "ocpp_message_log",
        "started_at": utc_iso(started),
        "finished_at": utc_iso(time.time()),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": load,
        },
        "git_commit": git_commit(),
        "parameters": {"frames": args.frames, "chargers": args.chargers, "length": 50},
        "entry": entries,
        "redis": written,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
