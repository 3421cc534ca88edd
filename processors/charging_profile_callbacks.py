"""Tell the Sender what became of its charging profile requests, we as CPO
(mod_charging_profiles, docs/adr/0043), with the delivery rules of every
decided result (processors/result_callbacks.py):

- ``PROFILE_CALLBACKS``: POST the one result of each request to its
  ``response_url``: a ChargingProfileResult for a set, an
  ActiveChargingProfileResult (with the profile when ACCEPTED) for a get, a
  ClearProfileResult for a clear;
- ``ACTIVE_PROFILE_PUSHES``: PUT each ``ActiveChargingProfileChanged`` to
  the Sender's ChargingProfiles endpoint, ``{url}/{session_id}``.

Not a push lane (processors/push.py): a lane sends every change of a
module's objects to every partner from its registration on; an active
profile goes to the one Sender that set a profile on the session, named in
the event, exactly as a result goes to the one response_url.
"""

from __future__ import annotations

from typing import Any

from processors.result_callbacks import CallbackKind
from producers.partners import PartnerState
from schemas.events import ActiveChargingProfileChanged, ChargingProfileResultDecided
from schemas.ocpi.charging_profiles import (
    ActiveChargingProfile,
    ActiveChargingProfileResult,
    ChargingProfileResult,
    ClearProfileResult,
    ProfileAction,
)
from schemas.ocpi.types import to_json
from schemas.topics import CHARGING_PROFILES


def callback_body(event: ChargingProfileResultDecided) -> dict[str, Any]:
    p = event.payload
    if p.action is ProfileAction.GET:
        profile = (
            ActiveChargingProfile.model_validate(p.active_profile)
            if p.active_profile is not None
            else None
        )
        return to_json(ActiveChargingProfileResult(result=p.result, profile=profile))
    if p.action is ProfileAction.CLEAR:
        return to_json(ClearProfileResult(result=p.result))
    return to_json(ChargingProfileResult(result=p.result))


PROFILE_CALLBACKS = CallbackKind(
    name="charging_profile",
    topic=CHARGING_PROFILES,
    event_type=ChargingProfileResultDecided,
    group="ocpi-hub-charging-profile-callbacks",
    marker="charging-profiles:callback",
    key=lambda event: event.payload.request_id,
    partner_id=lambda event: event.payload.partner_id,
    url=lambda event, partner: event.payload.response_url,
    body=callback_body,
    fields=lambda event: {
        "action": event.payload.action.value,
        "result": event.payload.result.value,
    },
)


def active_profile_url(event: ActiveChargingProfileChanged, partner: PartnerState) -> str | None:
    """The Sender's ChargingProfiles endpoint for the session (the Sender
    interface: where a CPO PUTs ActiveChargingProfile updates)."""
    base = partner.endpoint("chargingprofiles", "SENDER")
    if base is None:
        return None
    return f"{base.rstrip('/')}/{event.payload.session_id}"


ACTIVE_PROFILE_PUSHES = CallbackKind(
    name="active_charging_profile",
    topic=CHARGING_PROFILES,
    event_type=ActiveChargingProfileChanged,
    group="ocpi-hub-active-charging-profile-pushes",
    marker="charging-profiles:active",
    # Each change once (a later change is a new event).
    key=lambda event: str(event.event_id),
    partner_id=lambda event: event.payload.partner_id,
    url=active_profile_url,
    body=lambda event: to_json(ActiveChargingProfile.model_validate(event.payload.active_profile)),
    method="PUT",
    fields=lambda event: {"session_id": event.payload.session_id},
)
