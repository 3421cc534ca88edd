"""Liveness and readiness (docs/adr/0030).

``/healthz`` answers as long as the process serves HTTP. ``/readyz`` says
whether the dependencies a write needs answer (Kafka, with every partition
we write led and appendable; MongoDB; MariaDB; Redis) and, as detail that
does not make the API unready, each consumer group's assignment and lag and
the quarantined events.

Every check is cheap and bounded: at most one of each kind is in flight per
process (a poll that finds one running waits on that one, so a stalled
dependency holds at most one thread or task, never one per poll), an answer
is reused for a short while, and a poll waits at most the check timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pymongo.errors import AutoReconnect
from sqlalchemy import text

from api.deps import ContainerDep
from ocpi_hub.bootstrap import Container
from projections.mongo import dead_letters
from projections.mongo.counts import CountsQuery

router = APIRouter(tags=["health"])


async def ping_mongo(client: Any) -> None:
    """One ping on the async client (awaited, bounded by its operation
    timeout, no thread). A pooled connection the server had closed (an idle
    one, or one from before a restart) fails once and is dropped with its
    pool, so that failure is asked again once; a store that is away fails
    the second ping too."""
    try:
        await client.admin.command("ping")
    except AutoReconnect:
        await client.admin.command("ping")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


class _UnappendableError(Exception):
    """Kafka answers, but a partition we write cannot be appended to."""

    def __init__(self, detail: dict[str, Any]) -> None:
        super().__init__("a partition we write cannot be appended to")
        self.detail = detail


class Probe:
    """One check, run at most once at a time, its answer kept ``fresh_s``.

    The check itself is not cancelled when a poll stops waiting for it: a
    blocking call in a thread cannot be, and starting another beside it is
    what starved the thread pool. The next poll joins the pending run."""

    def __init__(
        self,
        check: Callable[[], Awaitable[Any]],
        *,
        fresh_s: float,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._fresh_s = fresh_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._pending: asyncio.Task[dict[str, Any]] | None = None
        self._answer: dict[str, Any] | None = None
        self._answered_at = 0.0
        self._pending_since = 0.0
        self.started = 0  # how many checks were started (for tests and metrics)

    async def _run(self) -> dict[str, Any]:
        started = time.perf_counter()
        answer: dict[str, Any]
        try:
            value = await self._check()
        except _UnappendableError as exc:
            answer = {"ok": False, "error": str(exc), **exc.detail}
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            answer = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
            if isinstance(value, dict):
                answer.update(value)
        self._answer, self._answered_at = answer, self._clock()
        return answer

    async def result(self) -> dict[str, Any]:
        if self._answer is not None and self._clock() - self._answered_at < self._fresh_s:
            return self._answer
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._run())
            self._pending_since = self._clock()
            self.started += 1
        # A run that is already overdue is not waited on again: the poll
        # answers at once, so a stalled dependency costs no poll 3 s each.
        left = self._timeout_s - (self._clock() - self._pending_since)
        try:
            return await asyncio.wait_for(asyncio.shield(self._pending), max(left, 0))
        except TimeoutError:
            waited = self._clock() - self._pending_since
            return {
                "ok": False,
                "error": f"no answer within {self._timeout_s:g} s (waiting for {waited:.0f} s)",
            }


class Readiness:
    """The probes of one API process."""

    def __init__(self, c: Container) -> None:
        s = c.settings
        timeout, fresh = s.readyz_check_timeout_s, s.readyz_cache_s

        def mysql() -> None:
            with c.mysql.connect() as conn:
                conn.execute(text("SELECT 1"))

        async def kafka() -> dict[str, Any]:
            await c.event_log.ping()
            detail: dict[str, Any] = {}
            failing = c.appends.failing(s.readyz_append_failure_window_s) if c.appends else []
            if failing:
                detail["failing_appends"] = failing
            if c.log_status is not None:
                partitions = await c.log_status.partitions()
                unled = {
                    topic: p.get("without_leader") or "missing"
                    for topic, p in partitions.items()
                    if p.get("missing") or p.get("without_leader")
                }
                if unled:
                    detail["partitions_without_leader"] = unled
                detail["topics"] = len(partitions)
            if failing or detail.get("partitions_without_leader"):
                raise _UnappendableError(detail)
            return detail

        async def redis() -> None:
            await c.redis.ping()

        async def mongodb() -> None:
            await ping_mongo(c.mongo)

        async def groups() -> dict[str, Any]:
            if c.log_status is None:
                return {}
            return {"groups": await c.log_status.groups()}

        async def quarantined() -> dict[str, Any]:
            # Events a view set aside (docs/adr/0028), unresolved, per view.
            per_view = await CountsQuery(c.mongo[s.mongo_db], dead_letters.COLLECTION).per_key()
            return {"unresolved": sum(per_view.values()), "per_view": per_view}

        def probe(check: Callable[[], Awaitable[Any]], fresh_s: float = fresh) -> Probe:
            return Probe(check, fresh_s=fresh_s, timeout_s=timeout)

        self.checks: dict[str, Probe] = {
            "kafka": probe(kafka),
            "mongodb": probe(mongodb),
            # A thread per run, and one run at a time: a stalled server holds one.
            "mysql": probe(lambda: asyncio.to_thread(mysql)),
            "redis": probe(redis),
        }
        self.consumers = probe(groups, s.readyz_kafka_cache_s)
        self.dead_letters = probe(quarantined, s.readyz_kafka_cache_s)


def readiness(request: Request, c: Container) -> Readiness:
    """The process's probes, made on the first poll (one container per app)."""
    found: Readiness | None = getattr(request.app.state, "readiness", None)
    if found is None:
        found = request.app.state.readiness = Readiness(c)
    return found


def _detail(answer: dict[str, Any]) -> dict[str, Any]:
    """A detail's own fields, or its error (the answers are shared: copied)."""
    return {k: v for k, v in answer.items() if k not in ("ok", "ms")}


@router.get("/readyz")
async def readyz(request: Request, c: ContainerDep) -> JSONResponse:
    r = readiness(request, c)
    names = list(r.checks)
    *results, consumers, quarantined = await asyncio.gather(
        *(r.checks[name].result() for name in names), r.consumers.result(), r.dead_letters.result()
    )
    report = dict(zip(names, results, strict=True))
    ready = all(answer["ok"] for answer in report.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": report,
            # Detail, not a reason to be unready: lag is work in progress, and
            # a quarantined event stops nothing else.
            "consumer_groups": _detail(consumers),
            "dead_letters": _detail(quarantined),
        },
        status_code=200 if ready else 503,
    )
