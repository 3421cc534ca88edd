"""The pieces /readyz is built from (docs/adr/0030): a probe runs one check
at a time and reuses its answer; the write path's failed appends are
remembered per partition until one succeeds there; the log's lag sums."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import TopicPartition
from pymongo.errors import AutoReconnect

from api.health import Probe, ping_mongo
from producers.log import Fault, InMemoryEventLog
from producers.log_status import WatchedEventLog, lag_of, role_of
from schemas.ocpi.locations import EvseStatus
from tests.unit.factories import resolved


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_hung_check_is_joined_not_started_again() -> None:
    release = asyncio.Event()
    runs = 0

    async def hung() -> None:
        nonlocal runs
        runs += 1
        await release.wait()

    probe = Probe(hung, fresh_s=1.0, timeout_s=0.05)
    started = time.perf_counter()
    answers = await asyncio.gather(*(probe.result() for _ in range(30)))
    overdue = time.perf_counter()
    answers += [await probe.result() for _ in range(5)]
    assert time.perf_counter() - overdue < 0.02  # an overdue run is not waited on again
    elapsed = time.perf_counter() - started

    assert runs == 1 and probe.started == 1
    assert all(not a["ok"] and "no answer within 0.05 s" in a["error"] for a in answers)
    assert elapsed < 1.0  # 35 polls, each bounded by the timeout, 30 of them together
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert (await probe.result())["ok"] is True
    assert probe.started == 1  # the answer of the run that was pending


async def test_an_answer_is_reused_while_fresh_then_asked_again() -> None:
    clock = Clock()
    calls = 0

    async def check() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"n": calls}

    probe = Probe(check, fresh_s=1.0, timeout_s=1.0, clock=clock)
    assert (await probe.result())["n"] == 1
    clock.now += 0.5
    assert (await probe.result())["n"] == 1
    clock.now += 0.6
    assert (await probe.result())["n"] == 2


async def test_a_failing_check_reports_its_error() -> None:
    async def broken() -> None:
        raise ConnectionError("refused")

    answer = await Probe(broken, fresh_s=0, timeout_s=1).result()
    assert answer == {"ok": False, "error": "ConnectionError: refused"}


async def test_failed_appends_are_remembered_per_partition_until_one_succeeds() -> None:
    clock = Clock()
    inner = InMemoryEventLog()
    watched = WatchedEventLog(inner, clock=clock)
    event = resolved(EvseStatus.AVAILABLE).event

    inner.faults = [Fault.NOT_SENT, Fault.LOST_IN_FLIGHT]
    for partition in (2, 3):
        try:
            await watched.append([event], partition=partition)
        except Exception as exc:
            assert type(exc).__name__ in ("NotSentError", "UnconfirmedError")
        else:
            raise AssertionError("the fault was not raised")
        clock.now += 1
    failing = watched.failing(within_s=60)
    assert [(f["topic"], f["partition"]) for f in failing] == [
        ("ocpi.evse-status.v1", 3),
        ("ocpi.evse-status.v1", 2),
    ]
    assert "UnconfirmedError" in failing[0]["error"] and failing[0]["age_s"] == 1.0

    await watched.append([event], partition=2)  # the fake answers partition 2
    assert [f["partition"] for f in watched.failing(within_s=60)] == [3]
    clock.now += 60
    assert watched.failing(within_s=60) == []  # old failures no longer count


def test_lag_is_end_minus_committed_per_topic() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    committed = {a0: 3, a1: 10, b0: -1}
    end = {a0: 5, a1: 10, b0: 7}
    assert lag_of(committed, end) == {"a": 2}


def test_only_our_groups_of_our_deployment_have_a_role() -> None:
    assert role_of("ocpi-hub-projections", "") == "projections"
    assert role_of("t1.ocpi-hub-push-locations-P1", "t1.") == "push"
    assert role_of("t1.ocpi-hub-command-callbacks", "t1.") == "push"
    assert role_of("t1.ocpi-hub-gateway-gateway-1", "t1.") == "gateway"
    assert role_of("t1.ocpi-hub-processors", "t1.") == "processors"
    assert role_of("t2.ocpi-hub-processors", "t1.") is None
    assert role_of("someone-else", "") is None


class _Admin:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.pings = 0

    async def command(self, name: str) -> dict[str, float]:
        assert name == "ping"
        self.pings += 1
        if self.pings <= self.failures:
            raise AutoReconnect("connection is already closed")
        return {"ok": 1.0}


class _Client:
    def __init__(self, failures: int) -> None:
        self.admin = _Admin(failures)


async def test_a_stale_pooled_connection_does_not_make_the_api_unready() -> None:
    stale = _Client(failures=1)
    await ping_mongo(stale)  # the closed connection fails once; the second ping answers
    assert stale.admin.pings == 2
    away = _Client(failures=2)
    with pytest.raises(AutoReconnect):
        await ping_mongo(away)  # a store that is away fails both
    assert away.admin.pings == 2
