"""Pushing our tokens to CPOs (processors/token_push.py) and our tariffs to
eMSPs (processors/tariff_push.py), on the lanes of processors/push.py: what
is planned, for which partner, addressed to which of its roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from processors.push import push_targets
from processors.tariff_push import TARIFFS_PUSH, plan_tariff
from processors.token_push import TOKENS_PUSH, plan_token
from producers.partners import PartnerState
from schemas.events import (
    Party,
    TariffDeleted,
    TariffPut,
    TokenPatched,
    TokenPolicySet,
    TokenPut,
)
from schemas.events.tariffs import TariffDeletedPayload, TariffPutPayload
from schemas.events.tokens import TokenPatchedPayload, TokenPolicySetPayload, TokenPutPayload
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.versions import Endpoint, InterfaceRole, ModuleId
from tests.tariff_objects import tariff
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


def test_our_tariff_is_put_and_its_withdrawal_deleted() -> None:
    body = tariff("T1", country_code="ZZ", party_id="HUB")
    put = plan_tariff(
        TariffPut(
            **_meta("ZZ/HUB/T1"),
            payload=TariffPutPayload(
                country_code="ZZ", party_id="HUB", tariff_id="T1", object=body, last_updated=T0
            ),
        ),
        US,
    )
    assert put is not None and (put.method, put.path, put.body) == ("PUT", "/ZZ/HUB/T1", body)
    deleted = TariffDeleted(
        **_meta("ZZ/HUB/T1"),
        payload=TariffDeletedPayload(
            country_code="ZZ", party_id="HUB", tariff_id="T1", last_updated=T0
        ),
    )
    gone = plan_tariff(deleted, US)
    assert gone is not None and (gone.method, gone.path, gone.body) == (
        "DELETE",
        "/ZZ/HUB/T1",
        None,
    )
    theirs = deleted.model_copy(
        update={"payload": deleted.payload.model_copy(update={"party_id": "PEE"})}
    )
    assert plan_tariff(theirs, US) is None


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


def test_tokens_go_to_the_partners_cpo_role_and_tariffs_to_its_emsp_role() -> None:
    both = (Role.EMSP, Role.CPO)
    [token_target] = push_targets(
        [_partner(both, ModuleId.TOKENS)], TOKENS_PUSH.module_id, TOKENS_PUSH.to_role
    ).values()
    assert token_target.to == Party(country_code="NL", party_id="PEE")  # its CPO role
    [tariff_target] = push_targets(
        [_partner(both, ModuleId.TARIFFS)], TARIFFS_PUSH.module_id, TARIFFS_PUSH.to_role
    ).values()
    assert tariff_target.to == Party(country_code="NL", party_id="PEM")  # its eMSP role
    # A partner without the module's receiver gets no lane.
    assert push_targets([_partner(both, ModuleId.TARIFFS)], TOKENS_PUSH.module_id) == {}
