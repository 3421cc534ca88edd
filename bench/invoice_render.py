"""Rendering an invoice's files, with and without the per-process font
cache (producers/pdf_fonts.py, docs/adr/0040). Needs no platform.

    .venv/bin/python -m bench.invoice_render --rounds 30

Each round renders the same invoice (the unit tests' document: five
lines) as the Factur-X PDF, the plain PDF and the CSV, once with fpdf2's
own ``add_font`` (the font files parsed per document) and once with the
cache, alternating, so both see the same machine load. Reports the median
and 90th percentile of wall and CPU time per variant, the core count and
the load average before and after, and writes the report under
``data/bench/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

from ocpi_hub.settings import Settings
from producers import invoice_documents
from producers.invoice_documents import FontFiles, facturx_pdf, invoice_csv, invoice_pdf

ROOT = Path(__file__).parents[1]


def _plain_add_font(pdf: FPDF, family: str, style: str, path: str) -> None:
    pdf.add_font(family, style, path)


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    from tests.unit.test_invoice_documents import invoice

    s = Settings()
    fonts = FontFiles(regular=Path(s.billing_pdf_font_regular), bold=Path(s.billing_pdf_font_bold))
    doc = invoice()
    cached = invoice_documents.add_font
    variants: dict[str, Callable[[FPDF, str, str, str], None]] = {
        "parsed_per_document": _plain_add_font,
        "cached": cached,
    }
    works: dict[str, Callable[[], object]] = {
        "facturx_pdf": lambda: facturx_pdf(doc, fonts),
        "invoice_pdf": lambda: invoice_pdf(doc, fonts),
        "csv": lambda: invoice_csv(doc),
    }
    # Warm up both (imports, the cache's templates) and check the bytes agree.
    outputs: dict[str, bytes] = {}
    for name, add in variants.items():
        invoice_documents.add_font = add  # type: ignore[assignment]
        outputs[name] = facturx_pdf(doc, fonts)
    assert outputs["cached"] == outputs["parsed_per_document"], "the cache changed the bytes"
    load_before = os.getloadavg()
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        v: {w: [] for w in works} for v in variants
    }
    for _ in range(args.rounds):
        for name, add in variants.items():
            invoice_documents.add_font = add  # type: ignore[assignment]
            for work_name, work in works.items():
                samples[name][work_name].append(_timed(work))
    invoice_documents.add_font = cached  # type: ignore[assignment]
    load_after = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "invoice_render",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "results": {
            variant: {
                work: {
                    "wall": _summary([w for w, _ in runs]),
                    "cpu": _summary([c for _, c in runs]),
                }
                for work, runs in by_work.items()
            }
            for variant, by_work in samples.items()
        },
    }
    out = ROOT / "data" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"invoice_render-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
