"""Each charger's recent OCPP messages, both directions, for the dashboard
(docs/adr/0038): operational telemetry kept in Redis, not a record.

The gateway hands each frame it reads or sends to ``MessageLog.record``,
which only queues it; one task per gateway writes the queue to Redis in
pipelined batches. A slow or absent Redis therefore never delays an answer
to a charger: the queue is bounded, and what does not fit is dropped and
counted.

Keys, under the gateway's prefix ``{topic_prefix}ocpi-hub:ocpp:``
(gateway/state.py):

* ``messages:{cp}``: a stream, trimmed to about ``ocpp_message_log_length``
  entries (``MAXLEN ~``: Redis drops whole nodes, so a stream may hold up
  to one node, 100 entries by default, more), each ``{"m": JSON}`` with
  ``at`` (epoch seconds), ``dir`` (``in``: from the charger; ``out``: to
  it), ``type`` (CALL, CALLRESULT, CALLERROR, or MALFORMED), ``action``,
  ``id`` (the OCPP unique id) and ``summary``;
* ``heartbeat:{cp}``: when the charger's last Heartbeat arrived.

Both expire 30 days after the last write, as ``seen:{cp}`` does.

Nothing secret is stored: an ``idTag`` (an RFID uid, i.e. a token) is
masked to its last characters; a configuration value under a key that
names a secret (AuthorizationKey, passwords) and any field named like one
is replaced; free-form data is summarised by its length. The HTTP Basic
credentials of the WebSocket upgrade are never part of a frame.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict, deque
from typing import Any, Literal

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger(__name__)

Direction = Literal["in", "out"]

# How long the stream and the heartbeat outlive a charger that went away
# (as gateway/state.py's SEEN_TTL_S; not imported, to keep this module
# free of the gateway's other state).
KEPT_S = 30 * 24 * 3600
# Entries written in one pipeline.
_BATCH = 500
# Unanswered calls remembered per connection, to name the action of a result.
_PENDING = 64
# A summary is one line of the page.
SUMMARY_MAX = 160
_VALUE_MAX = 40

_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}
# OCPP 1.6 fields holding a token uid.
_ID_TAGS = frozenset({"idtag", "parentidtag"})
# Field names and configuration keys whose values are never shown.
_SECRETS = ("password", "authorizationkey", "authorization", "secret", "privatekey")
# Free-form or bulky fields: only their size is shown.
_OPAQUE = frozenset({"data", "csr", "certificate", "certificatechain"})


def messages_key(prefix: str, charge_point_id: str) -> str:
    return f"{prefix}ocpi-hub:ocpp:messages:{charge_point_id}"


def heartbeat_key(prefix: str, charge_point_id: str) -> str:
    return f"{prefix}ocpi-hub:ocpp:heartbeat:{charge_point_id}"


def mask_id_tag(value: str) -> str:
    """All but the last four characters hidden; of a short tag, at least
    half of it hidden."""
    shown = min(4, len(value) // 2)
    return "*" * (len(value) - shown) + (value[-shown:] if shown else "")


def _secret(name: str) -> bool:
    folded = name.lower()
    return any(s in folded for s in _SECRETS)


def scrubbed(value: Any) -> Any:
    """A copy of an OCPP payload safe to keep and show."""
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    if not isinstance(value, dict):
        return value
    # ChangeConfiguration and GetConfiguration's answer: {key, value} pairs.
    named_secret = isinstance(value.get("key"), str) and _secret(value["key"])
    out: dict[str, Any] = {}
    for name, item in value.items():
        folded = str(name).lower()
        if folded in _ID_TAGS and isinstance(item, str):
            out[name] = mask_id_tag(item)
        elif _secret(folded) or (named_secret and folded == "value"):
            out[name] = "(hidden)"
        elif folded in _OPAQUE and item is not None:
            out[name] = f"({len(json.dumps(item))} chars)"
        else:
            out[name] = scrubbed(item)
    return out


def _flat(payload: dict[str, Any], into: list[str], path: str = "") -> None:
    for name, item in payload.items():
        label = f"{path}{name}"
        if isinstance(item, dict):
            _flat(item, into, f"{label}.")
        elif isinstance(item, list):
            into.append(f"{label}=[{len(item)}]")
        else:
            text = str(item)
            into.append(f"{label}={text[:_VALUE_MAX]}{'…' if len(text) > _VALUE_MAX else ''}")


def summary(payload: Any) -> str:
    """One line of a (scrubbed) payload: its scalar fields as ``name=value``,
    nested objects by path, lists by their length."""
    parts: list[str] = []
    if isinstance(payload, dict):
        _flat(payload, parts)
    elif payload is not None:
        parts.append(str(payload))
    text = " ".join(parts)
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


class CallTracker:
    """The action of each call still unanswered on one connection, so that
    a result (which does not name its action) can be labelled."""

    def __init__(self) -> None:
        self._theirs: OrderedDict[str, str] = OrderedDict()
        self._ours: OrderedDict[str, str] = OrderedDict()

    def action(self, direction: Direction, type_: str, unique_id: str, named: str) -> str:
        asked = self._theirs if direction == "in" else self._ours
        answered = self._ours if direction == "in" else self._theirs
        if type_ == "CALL":
            asked[unique_id] = named
            if len(asked) > _PENDING:
                asked.popitem(last=False)
            return named
        return answered.pop(unique_id, "")


def entry(raw: str | bytes, direction: Direction, calls: CallTracker, at: float) -> dict[str, Any]:
    """What is kept of one frame."""
    try:
        frame = json.loads(raw)
        type_ = _TYPES[frame[0]]
        unique_id = str(frame[1])[:36]
    except (ValueError, TypeError, KeyError, IndexError):
        size = len(raw)
        return {"at": at, "dir": direction, "type": "MALFORMED", "action": "", "id": "",
                "summary": f"not an OCPP frame ({size} bytes)"}  # fmt: skip
    action, text = "", ""
    try:
        if type_ == "CALL":
            action = calls.action(direction, type_, unique_id, str(frame[2])[:50])
            text = summary(scrubbed(frame[3]))
        elif type_ == "CALLRESULT":
            action = calls.action(direction, type_, unique_id, "")
            text = summary(scrubbed(frame[2]))
        else:
            action = calls.action(direction, type_, unique_id, "")
            details = summary(scrubbed(frame[4])) if len(frame) > 4 and frame[4] else ""
            text = summary(f"{frame[2]}: {frame[3]}" + (f" ({details})" if details else ""))
    except (IndexError, TypeError):
        text = "incomplete frame"
    return {"at": at, "dir": direction, "type": type_, "action": action, "id": unique_id,
            "summary": text}  # fmt: skip


class MessageLog:
    """Queues entries without waiting and writes them from ``run``."""

    def __init__(
        self, redis: aioredis.Redis, topic_prefix: str, *, length: int, queue_max: int
    ) -> None:
        self._redis = redis
        self._prefix = topic_prefix
        self._length = length
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._queue_max = queue_max
        self._wake = asyncio.Event()
        self.dropped = 0

    def record(self, charge_point_id: str, item: dict[str, Any]) -> None:
        if len(self._queue) >= self._queue_max:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("ocpp_message_log_dropped", dropped=self.dropped)
            return
        self._queue.append((charge_point_id, item))
        self._wake.set()

    def frame(
        self, charge_point_id: str, raw: str | bytes, direction: Direction, calls: CallTracker
    ) -> None:
        """Record one frame; never raises into the charger's path."""
        try:
            self.record(charge_point_id, entry(raw, direction, calls, time.time()))
        except Exception:
            log.warning("ocpp_message_log_failed", charge_point=charge_point_id, exc_info=True)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def write_waiting(self) -> int:
        """Write what is queued now, in batches; the number written."""
        written = 0
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
            pipe = self._redis.pipeline(transaction=False)
            for cp, item in batch:
                key = messages_key(self._prefix, cp)
                pipe.xadd(key, {"m": json.dumps(item)}, maxlen=self._length, approximate=True)
                pipe.expire(key, KEPT_S)
                if item["dir"] == "in" and item["type"] == "CALL" and item["action"] == "Heartbeat":
                    pipe.set(heartbeat_key(self._prefix, cp), repr(item["at"]), ex=KEPT_S)
            try:
                await pipe.execute()
            except Exception:
                # Telemetry: the batch is lost, the gateway goes on.
                self.dropped += len(batch)
                log.warning("ocpp_message_log_write_failed", lost=len(batch), exc_info=True)
                raise
            written += len(batch)
        return written

    async def run(self) -> None:
        """Write until cancelled; a failed write waits a second and goes on."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.write_waiting()
            except Exception:
                await asyncio.sleep(1.0)
                self._wake.set()


async def recent_messages(
    redis: aioredis.Redis, prefix: str, charge_point_id: str, count: int
) -> list[dict[str, Any]]:
    """A charger's newest ``count`` entries, newest first."""
    found = await redis.xrevrange(messages_key(prefix, charge_point_id), count=count)
    out: list[dict[str, Any]] = []
    for _id, fields in found or []:
        raw = (fields or {}).get(b"m")
        if raw is None:
            continue
        try:
            out.append(dict(json.loads(raw)))
        except ValueError:
            continue
    return out
