"""POST the result of each charging profile request we accepted as CPO to
the Sender's ``response_url`` (mod_charging_profiles, docs/adr/0043): a
ChargingProfileResult for a set, an ActiveChargingProfileResult (with the
profile when ACCEPTED) for a get, a ClearProfileResult for a clear. The
delivery rules are those of every decided result
(processors/result_callbacks.py).
"""

from __future__ import annotations

from typing import Any

from processors.result_callbacks import CallbackKind
from schemas.events import ChargingProfileResultDecided
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
    request_id=lambda event: event.payload.request_id,
    partner_id=lambda event: event.payload.partner_id,
    response_url=lambda event: event.payload.response_url,
    body=callback_body,
    fields=lambda event: {
        "action": event.payload.action.value,
        "result": event.payload.result.value,
    },
)
