"""Pushing our tokens to CPOs (processors/token_push.py), on the lanes of
processors/push.py: what is planned, for which partner, addressed to which
of its roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from processors.push import LOCATIONS_PUSH, push_targets
from processors.token_push import TOKENS_PUSH, plan_token
from producers.partners import PartnerState
from schemas.events import (
    Party,
    TokenPatched,
    TokenPolicySet,
    TokenPut,
)
from schemas.events.tokens import TokenPatchedPayload, TokenPolicySetPayload, TokenPutPayload
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.versions import Endpoint, InterfaceRole, ModuleId
from tests.token_objects import token

US = Party(country_code="ZZ", party_id="HUB")
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _meta(key: str, source: Party = US) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "aggregate_key": key,
        "occurred_at": T0,
        "recorded_at": T0,
        "source": source,
        "correlation_id": "corr-1",
    }


def _token_put(cc: str = "ZZ", pid: str = "HUB", uid: str = "CARD 1") -> TokenPut:
    body = token(uid, country_code=cc, party_id=pid)
    return TokenPut(
        **_meta(f"{cc}/{pid}/{uid}/RFID"),
        payload=TokenPutPayload(
            country_code=cc, party_id=pid, uid=uid, type="RFID", token=body, last_updated=T0
        ),
    )


def test_our_token_is_put_and_patched_with_its_type() -> None:
    put = plan_token(_token_put(), US)
    assert put is not None
    assert (put.method, put.path) == ("PUT", "/ZZ/HUB/CARD%201?type=RFID")
    assert put.body == token("CARD 1", country_code="ZZ", party_id="HUB")
    patched = TokenPatched(
        **_meta("ZZ/HUB/CARD 1/APP_USER"),
        payload=TokenPatchedPayload(
            country_code="ZZ",
            party_id="HUB",
            uid="CARD 1",
            type="APP_USER",
            patch={"valid": False, "last_updated": "2026-06-01T12:00:00Z"},
            last_updated=T0,
        ),
    )
    patch = plan_token(patched, US)
    assert patch is not None
    assert (patch.method, patch.path) == ("PATCH", "/ZZ/HUB/CARD%201?type=APP_USER")
    assert patch.body == {"valid": False, "last_updated": "2026-06-01T12:00:00Z"}
    # Two tokens of one uid are two objects (their staleness is apart).
    assert put.object_key != patch.object_key


def test_partners_tokens_and_our_policies_are_not_pushed() -> None:
    assert plan_token(_token_put("NL", "PEE"), US) is None
    policy = TokenPolicySet(
        **_meta("ZZ/HUB/CARD 1/RFID"),
        payload=TokenPolicySetPayload.model_validate(
            {
                "country_code": "ZZ",
                "party_id": "HUB",
                "uid": "CARD 1",
                "type": "RFID",
                "policy": {"state": "BLOCKED"},
            }
        ),
    )
    assert plan_token(policy, US) is None


def _partner(roles: tuple[Role, ...], module: ModuleId) -> PartnerState:
    return PartnerState(
        partner_id="NL-PEE",
        status="registered",
        roles=tuple(
            CredentialsRole(
                role=role,
                business_details=BusinessDetails(name="Peer"),
                country_code="NL",
                party_id="PEE" if role is Role.CPO else "PEM",
            )
            for role in roles
        ),
        endpoints=(
            Endpoint(
                identifier=module,
                role=InterfaceRole.RECEIVER,
                url=f"https://peer.example/{module.value}",  # type: ignore[arg-type]
            ),
        ),
        our_token_encrypted="sealed",
    )


def test_tokens_go_to_the_partners_cpo_role_and_locations_to_its_emsp_role() -> None:
    both = (Role.EMSP, Role.CPO)
    [token_target] = push_targets(
        [_partner(both, ModuleId.TOKENS)], TOKENS_PUSH.module_id, TOKENS_PUSH.to_role
    ).values()
    assert token_target.to == Party(country_code="NL", party_id="PEE")  # its CPO role
    [location_target] = push_targets(
        [_partner(both, ModuleId.LOCATIONS)], LOCATIONS_PUSH.module_id, LOCATIONS_PUSH.to_role
    ).values()
    assert location_target.to == Party(country_code="NL", party_id="PEM")  # its eMSP role
    # A partner without the module's receiver gets no lane.
    assert push_targets([_partner(both, ModuleId.LOCATIONS)], TOKENS_PUSH.module_id) == {}
