"""Types shared by every OCPI 2.2.1 module (spec: ``types.asciidoc``,
``transport_and_format.asciidoc`` section "Response format")."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

_PRINTABLE_ASCII = r"^[\x20-\x7E]*$"
_DATETIME_MAX_LEN = 25  # types.asciidoc, DateTime: string(25)
_DATETIME_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,4})?Z?$")


def parse_ocpi_datetime(value: Any) -> datetime:
    """RFC 3339, UTC only; a missing designator means UTC (types.asciidoc,
    DateTime: "other formats/patterns are not allowed", "+00:00 is not the
    same as UTC", so an offset, even a zero one, is refused).

    Precision is kept to the millisecond so that what we store, compare and
    send back is the same instant.
    """
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, datetime):
        parsed = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        raise ValueError("must be a string")
    parsed = parsed.astimezone(UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


@lru_cache(maxsize=1 << 16)
def _parse_text(value: str) -> datetime:
    """The same stamps are parsed again and again (a stored object's every
    write compares them; every validation of it parses them): keep the
    results, they are immutable."""
    if len(value) > _DATETIME_MAX_LEN or not _DATETIME_SHAPE.match(value):
        raise ValueError("must be an RFC 3339 UTC date-time of at most 25 characters")
    parsed = datetime.fromisoformat(value.removesuffix("Z")).replace(tzinfo=UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def format_ocpi_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


DateTime = Annotated[
    datetime,
    BeforeValidator(parse_ocpi_datetime),
    PlainSerializer(format_ocpi_datetime, return_type=str),
]


def sort_stamp(value: str | datetime) -> str:
    """A fixed-width UTC text of an OCPI DateTime that sorts in time order
    (the OCPI form drops zero milliseconds, so it does not): the sort and
    filter key of the views' paginated lists."""
    instant = parse_ocpi_datetime(value) if isinstance(value, str) else value
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ci_string(max_length: int) -> Any:
    """CiString(n): printable ASCII, compared case-insensitively, stored as received."""
    return Annotated[
        str, StringConstraints(min_length=1, max_length=max_length, pattern=_PRINTABLE_ASCII)
    ]


CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
PartyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{3}$")]


def fold(value: str) -> str:
    """The comparison form of a CiString."""
    return value.upper()


def _plain_json(value: Any) -> Any:
    """A kept unknown value in its JSON form: Decimals become the numbers
    they print as, containers are walked."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    return value


class OcpiModel(BaseModel):
    """Base of every OCPI object.

    Unknown fields are accepted and kept, at every level, with the JSON value
    they arrived with: a dump (``types.to_json``) gives them back, so what a
    partner sent is what we record, serve and push on (docs/adr/0039; OCPI
    2.3.0 makes this a rule, and partners send custom fields under 2.2.1
    too). Known fields stay strict: a wrong type or a missing required field
    is still refused. Objects we build ourselves take only declared fields:
    the pydantic mypy plugin refuses other keyword arguments
    (``init_forbid_extra`` in pyproject.toml)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    # Unknown fields are kept as decoded; an exactly decoded body (Decimals,
    # api/writes.py exact_body) gives them back as JSON numbers, not strings.
    __pydantic_extra__: dict[str, Annotated[Any, PlainSerializer(_plain_json, when_used="json")]]


def unknown_fields(model: BaseModel, prefix: str = "") -> list[str]:
    """The dotted paths of the fields of ``model`` (nested models and lists of
    them included) that no OCPI class declares: what tests and callers use to
    tell a partner's additions from the spec's fields."""
    found = [f"{prefix}{name}" for name in sorted(model.model_extra or {})]
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, BaseModel):
                where = f"{prefix}{name}" + (f"[{index}]" if isinstance(value, list) else "")
                found.extend(unknown_fields(item, where + "."))
    return found


T = TypeVar("T")


class OcpiResponse(BaseModel, Generic[T]):
    """The envelope of every OCPI response (transport_and_format, Response format)."""

    data: T | None = None
    status_code: int = Field(ge=1000, le=4999)
    status_message: str | None = None
    timestamp: DateTime
