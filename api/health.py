"""Liveness and readiness. Readiness asks every dependency and reports each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ContainerDep
from ocpi_hub.bootstrap import Container
from projections.mongo import dead_letters
from projections.mongo.counts import CountsQuery

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_S = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _checks(c: Container) -> dict[str, Callable[[], Awaitable[Any]]]:
    def mysql() -> None:
        with c.mysql.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await c.redis.ping()

    return {
        "kafka": c.event_log.ping,
        # On the async client: awaited, bounded by _CHECK_TIMEOUT_S, no thread.
        "mongodb": lambda: c.mongo.admin.command("ping"),
        "mysql": lambda: asyncio.to_thread(mysql),
        "redis": redis,
    }


async def _run(check: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=_CHECK_TIMEOUT_S)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


async def _dead_letters(c: Container) -> dict[str, Any]:
    """Events a view set aside (docs/adr/0028), unresolved, per view. Shown,
    not a reason to be unready: the platform still serves everything else."""
    try:
        per_view = await asyncio.wait_for(
            CountsQuery(c.mongo[c.settings.mongo_db], dead_letters.COLLECTION).per_key(),
            timeout=_CHECK_TIMEOUT_S,
        )
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"unresolved": sum(per_view.values()), "per_view": per_view}


@router.get("/readyz")
async def readyz(c: ContainerDep) -> JSONResponse:
    checks = _checks(c)
    results, quarantined = await asyncio.gather(
        asyncio.gather(*(_run(check) for check in checks.values())), _dead_letters(c)
    )
    report = dict(zip(checks, results, strict=True))
    ready = all(r["ok"] for r in report.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": report,
            "dead_letters": quarantined,
        },
        status_code=200 if ready else 503,
    )
