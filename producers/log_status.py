"""What the log looks like from here, for ``/readyz``: does every partition
we write have a leader, and how far behind is each of our consumer groups.

Read-only, cheap for the broker (one metadata request, one group listing,
one describe and one offset fetch per group, one end-offset request), and
bounded: the caller caches the answer for a few seconds (api/health.py), so
a load balancer polling every second costs the broker one round per cache
period whatever the number of pollers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from producers.log import EventLog, NotSentError, Position, UnconfirmedError
from schemas.events import EventMeta
from schemas.topics import CATALOGUE, topic_for

# Every topic of the catalogue is written by the platform (the API writes
# most; processors and projections the others, on the same brokers).
WRITE_TOPICS: tuple[str, ...] = tuple(spec.name for spec in CATALOGUE)

# Our consumer groups, by role, as each process names them (after the
# deployment prefix): an exact name, or a stem that per-partner or
# per-gateway groups extend.
GROUP_ROLES: tuple[tuple[str, str, bool], ...] = (
    ("processors", "ocpi-hub-processors", False),
    ("projections", "ocpi-hub-projections", False),
    ("push", "ocpi-hub-push-", True),
    ("push", "ocpi-hub-command-callbacks", False),
    ("gateway", "ocpi-hub-gateway-", True),
)


def role_of(group: str, prefix: str) -> str | None:
    """The role of one of our groups; None for a group that is not ours
    (another deployment's prefix, another application)."""
    if not group.startswith(prefix):
        return None
    name = group[len(prefix) :]
    for role, stem, is_stem in GROUP_ROLES:
        if name == stem or (is_stem and name.startswith(stem)):
            return role
    return None


def assigned_partitions(assignment: bytes) -> int | None:
    """How many partitions a member holds; None when its assignment is not
    in the standard consumer format."""
    if not assignment:
        return 0
    try:
        decoded = ConsumerProtocolMemberAssignment.decode(assignment)
    except Exception:
        return None
    return sum(len(partitions) for _topic, partitions in decoded.assignment)


def lag_of(committed: dict[TopicPartition, int], end: dict[TopicPartition, int]) -> dict[str, int]:
    """Records not yet consumed per topic: end offset minus committed offset,
    over the partitions the group has committed on (a partition without a
    committed offset has nothing to compare against, and is left out)."""
    per_topic: dict[str, int] = {}
    for tp, offset in committed.items():
        if offset < 0 or tp not in end:
            continue
        per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(end[tp] - offset, 0)
    return per_topic


class WatchedEventLog:
    """An event log that remembers, per topic and partition, the last append
    that failed and has not been followed by a success there: a partition we
    cannot append to shows in ``/readyz`` although the broker answers
    metadata requests (the producer's own state can be what is broken)."""

    def __init__(self, inner: EventLog, clock: Any = time.time) -> None:
        self._inner = inner
        self._clock = clock
        self._failures: dict[tuple[str, int | None], tuple[float, str]] = {}

    async def append(
        self, events: Sequence[EventMeta], *, partition: int | None = None
    ) -> list[Position]:
        try:
            positions = await self._inner.append(events, partition=partition)
        except (NotSentError, UnconfirmedError) as exc:
            at = self._clock()
            for topic in {topic_for(getattr(e, "event_type")).name for e in events}:  # noqa: B009
                self._failures[(topic, partition)] = (at, f"{type(exc).__name__}: {exc}"[:300])
            raise
        for position in positions:
            self._failures.pop((position.topic, position.partition), None)
            self._failures.pop((position.topic, None), None)
        return positions

    def failing(self, within_s: float) -> list[dict[str, Any]]:
        """The partitions whose last append failed less than ``within_s``
        seconds ago, newest first."""
        now = self._clock()
        return [
            {
                "topic": topic,
                "partition": partition,
                "age_s": round(now - at, 1),
                "error": error,
            }
            for (topic, partition), (at, error) in sorted(
                self._failures.items(), key=lambda item: -item[1][0]
            )
            if now - at < within_s
        ]


class KafkaLogStatus:
    """One admin client and one group-less consumer (for end offsets),
    opened by the API's composition root and kept for the process's life."""

    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str = "",
        *,
        write_topics: Sequence[str] = WRITE_TOPICS,
        request_timeout_s: float = 3.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._prefix = topic_prefix
        self._write_topics = [topic_prefix + name for name in write_topics]
        self._timeout_ms = int(request_timeout_s * 1000)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, request_timeout_ms=self._timeout_ms
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=self._timeout_ms,
        )
        await self._admin.start()
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    def _started(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            raise RuntimeError("log status not started")
        return self._admin, self._consumer

    async def partitions(self) -> dict[str, Any]:
        """Per write topic: its partition count and those without a leader
        (a topic missing from the metadata is reported as such)."""
        _, consumer = self._started()
        # aiokafka keeps a consumer's metadata to its subscriptions; ask for all.
        cluster = await consumer._client.fetch_all_metadata()
        report: dict[str, Any] = {}
        for topic in self._write_topics:
            numbers = cluster.partitions_for_topic(topic)
            if not numbers:
                report[topic] = {"partitions": 0, "missing": True}
                continue
            available = cluster.available_partitions_for_topic(topic) or set()
            report[topic] = {
                "partitions": len(numbers),
                "without_leader": sorted(numbers - available),
            }
        return report

    async def accepted_total(self) -> int:
        """Every record the log holds in our write topics (the sum of their
        partitions' end offsets): sampled twice, the events accepted between."""
        _, consumer = self._started()
        cluster = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(topic, p)
            for topic in self._write_topics
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        end: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
        return sum(end.values())

    async def groups(self) -> dict[str, Any]:
        """Each of our consumer groups: its role, state, members, how many
        partitions are assigned, and its lag (total and per topic)."""
        admin, consumer = self._started()
        listed = await admin.list_consumer_groups()
        ours = sorted({str(g[0]) for g in listed if role_of(str(g[0]), self._prefix) is not None})
        if not ours:
            return {}
        described: dict[str, tuple[str, list[Any]]] = {}
        # One group per request: aiokafka 0.14 reads a v3 DescribeGroups
        # answer with the v2 layout (no authorized_operations), which
        # misreads every group after the first and drops the connection.
        answers = await asyncio.gather(*(admin.describe_consumer_groups([g]) for g in ours))
        for response in (r for responses in answers for r in responses):
            for group in response.groups:
                # (error_code, group, state, protocol_type, protocol, members, ...)
                described[str(group[1])] = (str(group[2]), list(group[5]))
        committed_per_group = dict(
            zip(
                ours,
                await asyncio.gather(*(admin.list_consumer_group_offsets(g) for g in ours)),
                strict=True,
            )
        )
        all_tps = {tp for offsets in committed_per_group.values() for tp in offsets}
        end: dict[TopicPartition, int] = (
            await consumer.end_offsets(sorted(all_tps)) if all_tps else {}
        )
        report: dict[str, Any] = {}
        for group in ours:
            state, members = described.get(group, ("Unknown", []))
            held = [assigned_partitions(bytes(m[4] or b"")) for m in members]
            committed = {tp: meta.offset for tp, meta in committed_per_group[group].items()}
            per_topic = lag_of(committed, end)
            report[group] = {
                "role": role_of(group, self._prefix),
                "state": state,
                "members": len(members),
                # None when a member's assignment is in a format we do not read.
                "assigned_partitions": None if None in held else sum(h or 0 for h in held),
                "assigned": state == "Stable" and bool(members),
                "lag": sum(per_topic.values()),
                "lag_per_topic": per_topic,
            }
        return report
