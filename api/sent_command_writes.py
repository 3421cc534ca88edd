"""Reading and recording the commands we sent as eMSP, shared by the ops API
(sending, reading) and our Commands Sender interface (the results CPOs POST
to our ``response_url``).

A write leaves a mark (Redis, like the location and token marks of
docs/adr/0009) and a read waits until the ``emsp_commands`` view holds the
marks it asks for: the ops caller reads the command it just sent (every
mark), and a CPO that repeats its result finds the first one recorded (the
marks of results only: a result is never held up by the projection of the
send, which a fast CPO may overtake).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends

from api.consistency import read_after
from api.deps import ContainerDep, SentCommandViewDep, WriteMarksDep
from api.errors import OcpiError
from producers.log import EventLog
from producers.sent_commands import SentCommandEvent, SentCommandState
from projections.mongo.sent_commands import SentCommandViewQuery
from projections.write_marks import WriteMarks
from schemas.events import CommandSent
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import COMMANDS

_SENT, _RESULT = "sent", "result"


def _mark_key(command_id: str, kind: str) -> str:
    return f"emsp-command:{kind}:{command_id}"


class NotRecordedError(Exception):
    """Kafka did not acknowledge the event."""


@dataclass(frozen=True)
class SentCommandStore:
    view: SentCommandViewQuery
    marks: WriteMarks
    timeout_s: float

    async def current(
        self, command_id: str, *, results_only: bool = False
    ) -> SentCommandState | None:
        """The command once the view holds every write (or, with
        ``results_only``, every result) this platform acknowledged for it;
        OCPI 3000 (retry) if it does not catch up."""
        wanted: dict[int, int] = {}
        for kind in (_RESULT,) if results_only else (_SENT, _RESULT):
            for partition, offset in (await self.marks.marks(_mark_key(command_id, kind))).items():
                wanted[partition] = max(offset, wanted.get(partition, -1))
        return await read_after(
            lambda: asyncio.to_thread(self.view.read, command_id),
            lambda: _positions(self.view, command_id),
            COMMANDS.name,
            wanted,
            timeout_s=self.timeout_s,
            what="command",
        )

    async def record(self, event: SentCommandEvent, event_log: EventLog) -> None:
        """Append one event, return once Kafka acknowledged it, and leave the
        mark the next read waits for. ``NotRecordedError`` when Kafka did not
        acknowledge; OCPI 3000 when the event is recorded but the mark could
        not be left (a repeat is then harmless: the first result stands)."""
        try:
            [position] = await event_log.append([event])
        except Exception as exc:
            raise NotRecordedError(type(exc).__name__) from exc
        try:
            kind = _SENT if isinstance(event, CommandSent) else _RESULT
            await self.marks.mark(
                _mark_key(event.payload.command_id, kind), position.partition, position.offset
            )
        except Exception as exc:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR, "recorded, but not confirmed; read it again"
            ) from exc


def _store(c: ContainerDep, view: SentCommandViewDep, marks: WriteMarksDep) -> SentCommandStore:
    return SentCommandStore(view, marks, c.settings.read_own_writes_timeout_s)


SentCommandStoreDep = Annotated[SentCommandStore, Depends(_store)]


async def _positions(view: Any, key: str) -> dict[str, int]:
    """The positions a view has applied to one document (its read's second half)."""
    _, positions = await asyncio.to_thread(view.read, key)
    held: dict[str, int] = positions
    return held
