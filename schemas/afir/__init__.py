"""Our own JSON Schema (draft 2020-12) of the AFIR feed we publish: the
DATEX II v3 energy infrastructure publications, exactly the subset
``producers/afir.py`` writes (docs/adr/0048). The official DATEX II JSON
schemas are neither fetched nor copied; this one is written from the
model's facts (element names, enumerations, cardinalities)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "energy_infrastructure.schema.json"


@cache
def feed_schema() -> dict[str, Any]:
    """The schema of a whole publication (``{"payload": ...}``), static or dynamic."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
