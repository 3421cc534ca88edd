"""PUT and PATCH merge rules of the Locations module, as pure functions on the
JSON-able dicts a view stores (``types.to_json`` of the models).

No I/O, no clock: the caller validates the body (``locations.Location`` /
``Evse`` / ``Connector`` for a PUT, ``locations.validate_patch`` for a PATCH),
checks staleness with ``is_stale``, calls one of these and writes the result.
Inputs are never mutated. A result is a new object along the path it changes
(the Location, its ``evses`` list, the EVSE, ...) and shares every other
part with its input: treat stored objects as immutable. (A deep copy per
write was a quarter of the write path's CPU.)

How a PATCH merges (transport_and_format, "PATCH"; mod_locations, "PATCH
Method"):

* A field absent from the body is unchanged ("Any fields ... that are left out
  remain unchanged").
* A field set to ``null`` is removed from the object. The spec does not define
  ``null`` in a PATCH (mod_locations only says that PATCH, by leaving fields
  out, "is not suitable to remove information"); we read an explicit ``null``
  as "clear it", and ``validate_patch`` allows it only on optional fields.
* The merge is shallow: every present field replaces the stored value whole.
  For arrays that is the maintainers' reading in ocpi/ocpi#172 (a PATCH of
  ``elements`` "should completely replace" them: "a shallow merge, not a deep
  merge"). We apply the same to nested objects (``coordinates``, ``operator``,
  ``energy_mix``, ``opening_times`` ...): the spec describes a PATCH in terms
  of the object's own "fields/objects that have to be updated", never of parts
  of a nested object; ``validate_patch`` checks a nested object as the full
  type (a GeoLocation needs both latitude and longitude), so what arrives is
  always a complete value; and a deep merge would leave no way to drop an
  optional sub-field such as ``operator.logo``. A PATCH of a Location that
  carries ``evses`` therefore replaces the whole list (ocpi/ocpi#540 asks
  about exactly this and is still open).

Parent timestamps (mod_locations, "PUT Method" and "PATCH Method"): "When the
PUT/PATCH is on a Connector Object, the Receiver SHALL also set the new
``last_updated`` value on the parent EVSE and Location Objects"; on an EVSE,
on the parent Location. We set it only when the child's is newer, so a parent
never goes back in time (GET List filters on ``last_updated``, "GET List:
Request Parameters").

Identifiers are CiStrings: EVSE ``uid`` and Connector ``id`` are looked up
case-insensitively (``common.fold``) and stored as last received.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.ocpi.common import fold, parse_ocpi_datetime
from schemas.ocpi.locations import ValidatedPatch

Json = dict[str, Any]
Patch = Mapping[str, Any] | ValidatedPatch


class MergeError(Exception):
    """A PUT or PATCH that cannot be applied to the stored object."""


class UnknownObjectError(MergeError):
    """The EVSE or Connector a PATCH (or a Connector PUT) targets is not in the
    stored Location. The caller answers as for an unknown object; the Sender is
    expected to PUT it (transport_and_format, "PATCH": "If the object doesn't
    exist, the client should do a PUT")."""

    def __init__(self, kind: str, *path: str) -> None:
        self.kind = kind
        self.path = path
        super().__init__(f"unknown {kind}: {'/'.join(path)}")


class IdentifierMismatchError(MergeError):
    """A PATCH body names another object than the one it is applied to (an
    identifier "can never be changed, modified or renamed"); OCPI 2001."""

    def __init__(self, field: str, expected: str, received: str) -> None:
        self.field = field
        self.expected = expected
        self.received = received
        super().__init__(f"{field} in the body is {received!r}, expected {expected!r}")


# ---------------------------------------------------------------- generic


def apply_patch(current: Mapping[str, Any], patch: Patch) -> Json:
    """``current`` with ``patch`` merged in: absent fields unchanged, ``None``
    removes the field, anything else replaces the stored value whole."""
    result = dict(current)
    for name, value in _body(patch).items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def is_stale(
    current_last_updated: datetime | str | None, incoming_last_updated: datetime | str
) -> bool:
    """True when the incoming write is older than what is stored: record the
    event, do not apply it (never replay a stale PATCH over newer state).
    Equal timestamps are not stale (a replayed PUT is harmless)."""
    if current_last_updated is None:
        return False
    return _instant(incoming_last_updated) < _instant(current_last_updated)


# ---------------------------------------------------------------- Location


def put_location(location: Mapping[str, Any]) -> Json:
    """A PUT of a Location replaces it whole, EVSEs and Connectors included."""
    return dict(location)


def patch_location(location: Mapping[str, Any], patch: Patch) -> Json:
    """PATCH on the Location itself (``.../{location_id}``)."""
    body = _body(patch)
    for name in ("country_code", "party_id", "id"):
        _same_identifier(name, location.get(name), body.get(name))
    return apply_patch(location, body)


# ---------------------------------------------------------------- EVSE


def find_evse(location: Mapping[str, Any], evse_uid: str) -> Json | None:
    """The stored EVSE whose ``uid`` equals ``evse_uid`` as a CiString (the
    stored object itself: read it, do not change it)."""
    index = _index(location.get("evses"), "uid", evse_uid)
    return None if index is None else location["evses"][index]


def put_evse(location: Mapping[str, Any], evse: Mapping[str, Any]) -> Json:
    """PUT of an EVSE: replaces the EVSE with the same ``uid`` (in place) or
    adds it at the end, and bumps the Location's ``last_updated``."""
    result = dict(location)
    evses: list[Json] = list(result.get("evses") or ())
    new = dict(evse)
    index = _index(evses, "uid", new["uid"])
    if index is None:
        evses.append(new)
    else:
        evses[index] = new
    result["evses"] = evses
    _bump(result, new.get("last_updated"))
    return result


def patch_evse(location: Mapping[str, Any], evse_uid: str, patch: Patch) -> Json:
    """PATCH on an EVSE; raises ``UnknownObjectError`` if the Location has none with
    that ``uid``. Bumps the Location's ``last_updated``."""
    body = _body(patch)
    _same_identifier("uid", evse_uid, body.get("uid"))
    result = dict(location)
    evses: list[Json] = list(result.get("evses") or ())
    index = _index(evses, "uid", evse_uid)
    if index is None:
        raise UnknownObjectError("EVSE", str(location.get("id")), evse_uid)
    evses[index] = apply_patch(evses[index], body)
    result["evses"] = evses
    _bump(result, evses[index].get("last_updated"))
    return result


# ---------------------------------------------------------------- Connector


def find_connector(location: Mapping[str, Any], evse_uid: str, connector_id: str) -> Json | None:
    """The stored Connector ``connector_id`` of EVSE ``evse_uid`` (read only)."""
    evse = find_evse(location, evse_uid)
    if evse is None:
        return None
    index = _index(evse.get("connectors"), "id", connector_id)
    return None if index is None else evse["connectors"][index]


def put_connector(location: Mapping[str, Any], evse_uid: str, connector: Mapping[str, Any]) -> Json:
    """PUT of a Connector: replaces the one with the same ``id`` or adds it to
    the EVSE; bumps the EVSE's and the Location's ``last_updated``. Raises
    ``UnknownObjectError`` if the EVSE is not stored (a Connector alone cannot
    create an EVSE: ``status`` would be missing)."""
    result = dict(location)
    evse = _evse_for_write(result, evse_uid)
    connectors: list[Json] = list(evse.get("connectors") or ())
    new = dict(connector)
    index = _index(connectors, "id", new["id"])
    if index is None:
        connectors.append(new)
    else:
        connectors[index] = new
    evse["connectors"] = connectors
    _bump(evse, new.get("last_updated"))
    _bump(result, new.get("last_updated"))
    return result


def patch_connector(
    location: Mapping[str, Any], evse_uid: str, connector_id: str, patch: Patch
) -> Json:
    """PATCH on a Connector; raises ``UnknownObjectError`` if the EVSE or the
    Connector is not stored. Bumps the EVSE's and the Location's
    ``last_updated``."""
    body = _body(patch)
    _same_identifier("id", connector_id, body.get("id"))
    result = dict(location)
    evse = _evse_for_write(result, evse_uid)
    connectors: list[Json] = list(evse.get("connectors") or ())
    index = _index(connectors, "id", connector_id)
    if index is None:
        raise UnknownObjectError("Connector", str(location.get("id")), evse_uid, connector_id)
    connectors[index] = apply_patch(connectors[index], body)
    evse["connectors"] = connectors
    _bump(evse, connectors[index].get("last_updated"))
    _bump(result, connectors[index].get("last_updated"))
    return result


# ---------------------------------------------------------------- helpers


def _body(patch: Patch) -> Mapping[str, Any]:
    return patch.to_json() if isinstance(patch, ValidatedPatch) else patch


def _instant(value: datetime | str) -> datetime:
    return parse_ocpi_datetime(value)


def _index(items: Any, key: str, wanted: str) -> int | None:
    for i, item in enumerate(items or ()):
        if fold(str(item.get(key, ""))) == fold(wanted):
            return i
    return None


def _evse_for_write(location: Json, evse_uid: str) -> Json:
    """A new copy of the EVSE ``evse_uid`` of ``location`` (itself a new
    copy), put in place of the stored one, for the caller to change."""
    evses: list[Json] = list(location.get("evses") or ())
    index = _index(evses, "uid", evse_uid)
    if index is None:
        raise UnknownObjectError("EVSE", str(location.get("id")), evse_uid)
    evses[index] = dict(evses[index])
    location["evses"] = evses
    return evses[index]


def _bump(parent: Json, stamp: str | None) -> None:
    """Set the parent's ``last_updated`` to the child's when that is newer."""
    if stamp is None:
        return
    current = parent.get("last_updated")
    if current is None or _instant(stamp) > _instant(current):
        parent["last_updated"] = stamp


def _same_identifier(name: str, expected: Any, received: Any) -> None:
    if received is None or expected is None:
        return
    if fold(str(received)) != fold(str(expected)):
        raise IdentifierMismatchError(name, str(expected), str(received))
