"""Every OCPI version we can speak, by number: its edge adapter
(schemas/ocpi/wire.py, docs/adr/0045). Which of them a deployment offers is
a setting (``OCPI_HUB_OCPI_VERSIONS``)."""

from __future__ import annotations

from schemas.ocpi.v211.adapter import V211
from schemas.ocpi.v230.adapter import V230
from schemas.ocpi.wire import Core, WireVersion

WIRES: dict[str, WireVersion] = {"2.1.1": V211(), "2.2.1": Core(), "2.3.0": V230()}


def wire(version: str) -> WireVersion:
    """The adapter of a version we can speak, else KeyError."""
    return WIRES[version]
