"""What the views can hold: the checks every request body passes at the edge
(docs/adr/0027).

Kafka keeps any bytes, but the readers of a topic cannot take every value:
MongoDB (BSON) holds integers of at most 64 bits and finite doubles, MySQL
holds the connector ratings as INT and money and energy as DECIMAL(20, 6),
and a ``last_updated`` far ahead of our clock makes every later real update
of an object "stale" (mod_locations, the stale rule), freezing it. An event
we accept is replayed forever, so such values are refused before anything
is recorded, naming the field, instead of breaking a reader later.

``check_body`` walks a decoded JSON body whole, unknown fields included
(they are passed on, so they reach the views too). The narrower limits of
the spec's typed fields (``number``, ``int``) are on those types
(``schemas.ocpi.types``, ``schemas.ocpi.tariffs``) and use the bounds below.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.ocpi.common import format_ocpi_datetime, parse_ocpi_datetime

# BSON's int64 (and MySQL's BIGINT): the widest integer any view stores.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# OCPI ``int`` fields: MySQL INT (32 bits) holds the connector ratings.
INT_FIELD_MAX = 2**31 - 1
# OCPI ``number`` fields: MySQL keeps kWh, times and money as DECIMAL(20, 6),
# i.e. at most 14 integer digits; a magnitude strictly below this bound.
NUMBER_FIELD_BOUND = 10**14

_FLOAT_BOUND = 2.0**63

# Timestamps that order an object's updates (the stale rule): a value this far
# ahead of our clock would freeze the object. Checked wherever they appear.
ORDERING_STAMPS = frozenset({"last_updated"})
# A charger's report: its ``at`` becomes our session's ``last_updated``.
CHARGER_STAMPS = ORDERING_STAMPS | {"at"}


class BeyondLimitsError(ValueError):
    """A value of the body the views cannot hold; ``path`` names it
    (dot-separated keys and list indexes, as our 2001 messages do)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


def number_problem(value: object) -> str | None:
    """Why a JSON number cannot be held by every view, or None. Integers
    beyond 64 bits (or, decoded as floats, at or beyond 2**63 in magnitude),
    NaN and infinities are refused."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return "an integer beyond signed 64 bits; no view can hold it"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "must be a finite number"
        if -(2.0**63) <= value < 2.0**63:
            return None
        return "a number of 2^63 or more in magnitude; no view can hold it"
    if isinstance(value, Decimal):
        if not value.is_finite():
            return "must be a finite number"
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return "a number of 2^63 or more in magnitude; no view can hold it"
    return None


def stamp_problem(value: object, *, now: datetime, max_ahead: timedelta) -> str | None:
    """Why an ordering timestamp is refused (too far ahead of ``now``), or
    None; a value that is not a valid DateTime is left to the object's model."""
    if not isinstance(value, str):
        return None
    try:
        instant = parse_ocpi_datetime(value)
    except ValueError:
        return None
    if instant - now <= max_ahead:
        return None
    return (
        f"{value} is more than {int(max_ahead.total_seconds())} s ahead of our clock "
        f"({format_ocpi_datetime(now)}); send the time of the change"
    )


def check_body(
    data: Any,
    *,
    now: datetime | None,
    max_ahead: timedelta | None,
    stamps: frozenset[str] = ORDERING_STAMPS,
) -> None:
    """Raise ``BeyondLimitsError`` for a value of the decoded JSON ``data``
    that no view can hold: an integer beyond 64
    bits, a non-finite or too large number, an ordering timestamp more than
    ``max_ahead`` after ``now`` (not checked when either is None); the
    ordering timestamps are the members named in ``stamps``."""
    # Iterative, so that a deeply nested body cannot exhaust the stack; the
    # path is built for containers only, and the common leaves (text, 64-bit
    # ints, finite doubles) are passed by their exact type first: a body's
    # walk is on the hot path of every write.
    timed = now is not None and max_ahead is not None
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        pairs: Any
        if isinstance(value, dict):
            pairs = value.items()
        elif isinstance(value, list):
            pairs = enumerate(value)
        else:
            problem = number_problem(value)
            if problem is not None:
                raise BeyondLimitsError(_dotted(path), problem)
            continue
        nested = []
        for key, item in pairs:
            kind = type(item)
            if kind is str:
                if timed and key in stamps:
                    assert now is not None and max_ahead is not None
                    problem = stamp_problem(item, now=now, max_ahead=max_ahead)
                    if problem is not None:
                        raise BeyondLimitsError(_dotted((*path, key)), problem)
            elif kind is int:
                if not INT64_MIN <= item <= INT64_MAX:
                    raise BeyondLimitsError(_dotted((*path, key)), str(number_problem(item)))
            elif kind is float:
                # NaN fails both comparisons.
                if not -_FLOAT_BOUND <= item < _FLOAT_BOUND:
                    raise BeyondLimitsError(_dotted((*path, key)), str(number_problem(item)))
            elif kind is dict or kind is list:
                nested.append(((*path, key), item))
            elif item is None or kind is bool:
                continue
            elif isinstance(item, dict | list):
                nested.append(((*path, key), item))
            else:
                problem = number_problem(item)
                if problem is not None:
                    raise BeyondLimitsError(_dotted((*path, key)), problem)
        stack.extend(reversed(nested))


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)
