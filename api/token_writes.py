"""The one way an HTTP shell records a token write or answers a token read:
read what we hold (after our own acknowledged writes, docs/adr/0009), let
``producers.tokens`` judge, append the event, answer.

Shared by the OCPI receiver (partners' tokens, our whitelist as CPO) and the
ops API (our own tokens, which our Sender interface serves and authorizes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Response

from api.consistency import read_after
from api.deps import ContainerDep, TokenViewDep, WriteMarksDep
from api.errors import OcpiError, envelope
from producers.log import EventLog
from producers.tokens import Origin, Planned, TokenState, find
from producers.write_path import RefusedError
from projections.mongo.tokens import TokenViewQuery
from projections.write_marks import WriteMarks
from schemas.events import EventMeta
from schemas.events.tokens import TokenRef
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import TOKENS

Plan = Callable[[TokenRef, Any, TokenState | None, Origin, datetime], Planned]


def refused(exc: RefusedError) -> OcpiError:
    return OcpiError(exc.status, exc.message, exc.http_status)


def _mark_key(ref: TokenRef) -> str:
    # Beside the location marks in the same Redis namespace: a prefix keeps
    # a token key from ever meeting a location key.
    return f"token:{ref.key}"


@dataclass(frozen=True)
class TokenStore:
    view: TokenViewQuery
    marks: WriteMarks
    timeout_s: float

    async def current(self, ref: TokenRef) -> TokenState | None:
        """The token once the view holds every write this platform
        acknowledged for it; OCPI 3000 (retry) if it does not catch up."""
        return await read_after(
            lambda: asyncio.to_thread(self.view.read, ref.key),
            lambda: asyncio.to_thread(self.view.positions, ref.key),
            TOKENS.name,
            await self.marks.marks(_mark_key(ref)),
            timeout_s=self.timeout_s,
            what="token",
        )

    async def acknowledged(
        self, ref: TokenRef, event: EventMeta, event_log: EventLog, *, mark: bool = True
    ) -> None:
        """Append one event and, with ``mark``, leave the mark the next read
        waits for (only for events the view folds: it never shows the
        position of others). Not
        acknowledged by Kafka: OCPI 3000, so the sender retries (PUT and
        PATCH are idempotent) rather than believing it was recorded."""
        try:
            [position] = await event_log.append([event])
        except Exception as exc:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR, "the update could not be recorded; retry"
            ) from exc
        if not mark:
            return
        try:
            await self.marks.mark(_mark_key(ref), position.partition, position.offset)
        except Exception as exc:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR, "the update was recorded; retry to confirm"
            ) from exc


def _store(c: ContainerDep, view: TokenViewDep, marks: WriteMarksDep) -> TokenStore:
    return TokenStore(view, marks, c.settings.read_own_writes_timeout_s)


TokenStoreDep = Annotated[TokenStore, Depends(_store)]


async def get_token(store: TokenStore, ref: TokenRef) -> dict[str, Any]:
    try:
        return envelope(find(await store.current(ref), ref))
    except RefusedError as exc:
        raise refused(exc) from exc


async def write_token(
    plan: Plan,
    ref: TokenRef,
    body: Any,
    *,
    store: TokenStore,
    event_log: EventLog,
    origin: Origin,
    now: datetime,
    response: Response,
) -> dict[str, Any]:
    """PUT, PATCH (or an ops policy). A PUT that creates the token answers
    HTTP 201, any other success 200; both OCPI 1000 and no data."""
    current = await store.current(ref)
    try:
        planned = plan(ref, body, current, origin, now)
    except RefusedError as exc:
        raise refused(exc) from exc
    await store.acknowledged(ref, planned.event, event_log)
    response.status_code = 201 if planned.created else 200
    return envelope()
