"""Ops API of the received commands: those partner eMSPs sent us as CPO.

* ``GET /ops/commands/received/{command_id}``: the command as the
  ``received_commands`` view holds it: request, target, our response,
  deadline, the charger's answer and the one result (docs/adr/0017). The view is read
  once it holds our own record of the command (docs/adr/0022); what the
  gateway and the processors add later shows when the view has it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.consistency import read_written
from api.deps import ContainerDep
from api.errors import OcpiError, envelope
from api.ops.access import OPS_ACCESS
from api.writes import WritePathDep
from producers.received_commands import SLICE
from schemas.ocpi.status_codes import OcpiStatus

router = APIRouter(
    prefix="/ops/commands/received",
    tags=["ops: received commands (as CPO)"],
    dependencies=[OPS_ACCESS],
)


@router.get("/{command_id}")
async def get_received_command(
    command_id: Annotated[str, Path(min_length=1, max_length=64)],
    c: ContainerDep,
    write_path: WritePathDep,
) -> dict[str, Any]:
    view = c.received_commands
    assert view is not None
    wait_s = c.settings.read_own_writes_timeout_s
    doc = await read_written(view, write_path, SLICE, command_id, timeout_s=wait_s, what="command")
    if doc is None:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"no received command {command_id!r}", 404)
    return envelope(doc)
