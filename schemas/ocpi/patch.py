"""PATCH bodies of any OCPI object (transport_and_format, "PATCH").

A PATCH carries only the fields to change. A field absent means "unchanged",
an explicit ``null`` clears an optional field (it is refused on a required
one), and ``last_updated`` is required ("Any request to the PATCH method
SHALL contain the last_updated field"). Each present field is checked with
its type in the full model: nested objects are validated whole, lists with
their own limits. Unknown fields are kept as sent, like known ones: a
value replaces the stored one, ``null`` removes it (docs/adr/0039).

Locations, Tokens and Sessions validate their PATCH bodies here; each module
adds only what is particular to it (e.g. Session periods are appended).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BeforeValidator, create_model
from pydantic_core import PydanticCustomError

from schemas.ocpi.common import OcpiModel


@dataclass(frozen=True)
class ValidatedPatch:
    """A PATCH body that passed validation.

    ``values`` holds the fields to set, as JSON-able values (the form we store:
    nested optional fields that were absent stay absent, timestamps in the
    canonical ``...Z`` form). ``cleared`` names the optional fields the sender
    set to an explicit ``null``. ``last_updated`` is always present in
    ``values`` too.
    """

    target: str  # the model's name: "Location", "Evse", "Token", "Session" ...
    values: Mapping[str, Any]
    cleared: frozenset[str]
    last_updated: datetime

    def to_json(self) -> dict[str, Any]:
        """The body to merge: values, plus ``None`` for each cleared field."""
        body: dict[str, Any] = copy.deepcopy(dict(self.values))
        body.update(dict.fromkeys(self.cleared))
        return body


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError(
            "null_on_required", "a required field cannot be cleared with null"
        )
    return value


@cache
def patch_model(target: type[OcpiModel]) -> type[OcpiModel]:
    """The model of a PATCH body on ``target``: every field optional and of
    the same type as in the full model (nested objects whole, list checks
    included), ``null`` refused on required fields, ``last_updated`` required."""
    fields: dict[str, Any] = {}
    for name, info in target.model_fields.items():
        metadata = list(info.metadata)
        if name == "last_updated":
            fields[name] = (Annotated[(info.annotation, *metadata)], ...)
            continue
        if info.is_required():
            metadata.append(BeforeValidator(_refuse_null))  # outermost: runs first
        annotated = Annotated[(info.annotation, *metadata)] if metadata else info.annotation
        fields[name] = (annotated, None)
    model: type[OcpiModel] = create_model(
        f"{target.__name__}Patch",
        __base__=OcpiModel,
        __doc__=f"A PATCH body on a {target.__name__}.",
        **fields,
    )
    return model


def validate_patch_body(
    target: type[OcpiModel], body: Any, *, null_means_absent: frozenset[str] = frozenset()
) -> ValidatedPatch:
    """Validate a PATCH body on ``target``. Fields named in
    ``null_means_absent`` read ``null`` as "nothing to change" rather than
    "clear it". Raises ``pydantic.ValidationError`` listing every offending
    field; the HTTP layer answers it with OCPI 2001."""
    parsed = patch_model(target).model_validate(body)
    present = {
        name
        for name in parsed.model_fields_set
        if not (name in null_means_absent and getattr(parsed, name) is None)
    }
    cleared = frozenset(name for name in present if getattr(parsed, name) is None)
    values = parsed.model_dump(mode="json", include=present - cleared, exclude_none=True)
    last_updated: datetime = getattr(parsed, "last_updated")  # noqa: B009 (dynamic model)
    return ValidatedPatch(
        target=target.__name__,
        values=MappingProxyType(values),
        cleared=cleared,
        last_updated=last_updated,
    )
