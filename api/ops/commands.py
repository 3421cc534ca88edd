"""Ops API for commands partners sent us as CPO.

* ``GET /ops/commands/received/{command_id}``: the command as the
  ``cpo_commands`` view holds it: request, target, our response, deadline,
  the charger's answer and the one result (docs/adr/0017).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import ContainerDep
from api.errors import OcpiError, envelope
from schemas.ocpi.status_codes import OcpiStatus

router = APIRouter(prefix="/ops/commands", tags=["ops: commands"])


@router.get("/received/{command_id}")
async def get_received_command(
    command_id: Annotated[str, Path(min_length=1, max_length=64)], c: ContainerDep
) -> dict[str, Any]:
    assert c.received_commands is not None
    doc = await asyncio.to_thread(c.received_commands.get, command_id)
    if doc is None:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"no received command {command_id!r}", 404)
    return envelope(doc)
