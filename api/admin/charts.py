"""The dashboard's charts (docs/adr/0034): a sample of the platform every
``admin_chart_sample_s`` seconds, kept in Redis for a day, drawn as small
SVG of our own.

One sample per interval for the whole deployment, whichever API process
takes it: each process tries to claim the interval's slot (``SET NX``) and
only the one that wins reads the numbers, so N API processes cost what one
does. A sample holds the EVSE status counts (MySQL), the records in the
log (the sum of the write topics' end offsets, so two samples give the
events accepted between them) and the projections' lag per topic (the
consumer groups' report). Push failures per partner are read when the page
is (producers/partner_stats.py): they are counts already.

The drawing is pure: numbers in, SVG text out, every label escaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from html import escape
from typing import Any

import redis.asyncio as aioredis
import structlog
from markupsafe import Markup

log = structlog.get_logger(__name__)

Sample = dict[str, Any]
_KEEP = 1440  # a day of samples at one a minute


def samples_key(prefix: str) -> str:
    return f"{prefix}ocpi-hub:admin-charts:samples"


class ChartSamples:
    """Where the samples live (a capped Redis list, newest first)."""

    def __init__(self, redis: aioredis.Redis, prefix: str, interval_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._interval_s = interval_s

    async def claim(self, now: float) -> bool:
        """True for the one process that takes this interval's sample."""
        slot = int(now // self._interval_s)
        key = f"{samples_key(self._prefix)}:slot:{slot}"
        ttl = max(int(self._interval_s * 2), 1)
        return bool(await self._redis.set(key, b"1", nx=True, ex=ttl))

    async def add(self, sample: Sample) -> None:
        key = samples_key(self._prefix)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, json.dumps(sample, separators=(",", ":")))
            pipe.ltrim(key, 0, _KEEP - 1)
            await pipe.execute()

    async def recent(self, limit: int = _KEEP) -> list[Sample]:
        """Oldest first."""
        raw = await self._redis.lrange(samples_key(self._prefix), 0, limit - 1)
        return [json.loads(r) for r in reversed(raw)]


async def sample_forever(
    samples: ChartSamples,
    take: Callable[[], Awaitable[Sample]],
    interval_s: float,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
) -> None:
    """Take a sample at the start of each interval this process claims; a
    failure is logged and the next interval tried (the charts show a gap)."""
    while not stop.is_set():
        now = clock()
        try:
            if await samples.claim(now):
                await samples.add({"at": now, **await take()})
        except Exception as exc:
            log.warning("chart_sample_failed", error=type(exc).__name__)
        wait = interval_s - (clock() % interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


def projection_lag(groups: dict[str, Any]) -> dict[str, int]:
    """The projections' lag per topic, summed over their groups."""
    lag: dict[str, int] = {}
    for group in groups.values():
        if group.get("role") != "projections":
            continue
        for topic, n in (group.get("lag_per_topic") or {}).items():
            lag[topic] = lag.get(topic, 0) + int(n)
    return lag


# --- the series the page draws --------------------------------------------------------

Series = dict[str, list[tuple[float, float]]]


def status_series(samples: Sequence[Sample]) -> Series:
    out: Series = {}
    for s in samples:
        for status, n in (s.get("statuses") or {}).items():
            out.setdefault(status, []).append((s["at"], float(n)))
    return out


def accepted_per_minute(samples: Sequence[Sample]) -> Series:
    """Events accepted per minute between consecutive samples (none before
    the second, and none across a sample without the number)."""
    points: list[tuple[float, float]] = []
    for before, after in itertools.pairwise(samples):
        a, b = before.get("accepted"), after.get("accepted")
        minutes = (after["at"] - before["at"]) / 60
        if a is None or b is None or minutes <= 0 or b < a:
            continue
        points.append((after["at"], (b - a) / minutes))
    return {"events/min": points} if points else {}


def lag_series(samples: Sequence[Sample]) -> Series:
    out: Series = {}
    for s in samples:
        for topic, n in (s.get("lag") or {}).items():
            out.setdefault(topic, []).append((s["at"], float(n)))
    return out


# --- drawing ------------------------------------------------------------------------------

PALETTE = ["#1f5fbf", "#067647", "#b42318", "#b54708", "#6941c6", "#0e7090", "#c11574", "#475467"]
_W, _H, _PAD_L, _PAD_B, _PAD_T = 640, 220, 48, 24, 10


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _clock(at: float) -> str:
    return time.strftime("%H:%M", time.gmtime(at))


def line_chart(series: Series, title: str) -> Markup:
    """One line per series over a shared time axis; a lone point is a dot.
    The legend names each series in its colour; no data, no chart."""
    points = [p for values in series.values() for p in values]
    if not points:
        return Markup("")
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    top = _nice_max(max(p[1] for p in points))
    span = (t1 - t0) or 1.0
    plot_w, plot_h = _W - _PAD_L - 8, _H - _PAD_B - _PAD_T

    def xy(t: float, v: float) -> tuple[float, float]:
        x = _PAD_L + (plot_w * (t - t0) / span if t1 > t0 else plot_w / 2)
        return round(x, 1), round(_PAD_T + plot_h * (1 - v / top), 1)

    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}">',
        f'<line class="axis" x1="{_PAD_L}" y1="{_PAD_T + plot_h}" x2="{_W - 8}" '
        f'y2="{_PAD_T + plot_h}"/>',
        f'<text class="tick" x="{_PAD_L - 6}" y="{_PAD_T + 8}" text-anchor="end">{top:g}</text>',
        f'<text class="tick" x="{_PAD_L - 6}" y="{_PAD_T + plot_h}" text-anchor="end">0</text>',
        f'<text class="tick" x="{_PAD_L}" y="{_H - 6}">{_clock(t0)} UTC</text>',
        f'<text class="tick" x="{_W - 8}" y="{_H - 6}" text-anchor="end">{_clock(t1)} UTC</text>',
    ]
    legend = []
    for n, (name, values) in enumerate(sorted(series.items())):
        colour = PALETTE[n % len(PALETTE)]
        coords = [xy(t, v) for t, v in values]
        if len(coords) == 1:
            x, y = coords[0]
            parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>')
        else:
            path = " ".join(f"{x},{y}" for x, y in coords)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        last = values[-1][1]
        legend.append(
            f'<li><span class="swatch" data-colour="{n % len(PALETTE)}"></span>'
            f"{escape(name)} <small>{last:g}</small></li>"
        )
    parts.append("</svg>")
    # Every text in it was escaped above; the rest is numbers we computed.
    return Markup("".join(parts) + f'<ul class="legend">{"".join(legend)}</ul>')  # noqa: S704


def bar_chart(bars: Sequence[tuple[str, float]], title: str) -> Markup:
    """Horizontal bars, largest first; no bars, no chart."""
    if not bars:
        return Markup("")
    ordered = sorted(bars, key=lambda b: (-b[1], b[0]))
    top = _nice_max(max(v for _, v in ordered))
    row, label_w = 26, 160
    height = row * len(ordered) + 8
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {height}" role="img" aria-label="{escape(title)}">'
    ]
    for n, (label, value) in enumerate(ordered):
        y = 4 + n * row
        width = round((_W - label_w - 60) * value / top, 1)
        parts.append(
            f'<text class="tick" x="{label_w - 8}" y="{y + 16}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{width}" height="{row - 8}" '
            f'fill="{PALETTE[2] if value else PALETTE[1]}"/>'
            f'<text class="tick" x="{label_w + width + 6}" y="{y + 16}">{value:g}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (labels escaped above)
