"""The billing slice without services: registration numbers and VAT ids
per country (python-stdnum), the decisions on corporations and members,
the fold, the activation link and the activation e-mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from processors.invitation_mailer import activation_url, compose
from producers.billing.aggregate import evolve
from producers.billing.charges import decide_charge, price_charge
from producers.billing.corporations import (
    NewCorporation,
    StatusChange,
    checked_identifiers,
    decide_register,
    decide_status,
)
from producers.billing.members import (
    LinkRefusedError,
    NewMember,
    active_member_tokens,
    decide_activate,
    decide_invite,
    decide_mailed,
    link_key,
    link_matches,
    link_secret,
    member_token,
)
from producers.billing.state import CorporationState
from producers.write_path import Origin, RefusedError
from schemas.events import Party, parse_event, serialize_event
from schemas.events.billing import CorporationStatus, MemberStatus
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tokens import Token
from schemas.topics import BILLING_CORPORATIONS, CATALOGUE

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
ORIGIN = Origin(Party(country_code="ZZ", party_id="HUB"), "corr")
CORP = "acme00000001"
MEMBER = "mem000000001"
INVITATION = "a" * 32
WEEK = timedelta(days=7)


def corporation_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "legal_name": "Acme Fleet B.V.",
        "country": "NL",
        "registration_number": "12345678",
        "vat_id": "NL004495445B01",
        "billing_address": {
            "street": "Stationsplein 1",
            "postal_code": "1012 AB",
            "city": "Amsterdam",
            "country": "NL",
        },
        "billing_email": "invoices@acme.example",
        "currency": "EUR",
        "payment_method": "MONTHLY_INVOICE",
        "contract": {
            "price_per_kwh": Decimal("0.3500"),
            "monthly_fee_per_member": Decimal("2.50"),
            "vat_rate": Decimal("0.21"),
            "payment_term_days": 30,
        },
    }
    return body | changes


def registered(**changes: Any) -> CorporationState:
    body = NewCorporation.model_validate(corporation_body(**changes))
    return decide_register(None, corporation_id=CORP, body=body, origin=ORIGIN, now=NOW).answer


def invited(state: CorporationState | None = None, **member: Any) -> CorporationState:
    body = NewMember.model_validate({"name": "Ada Lovelace", "email": "ada@acme.example"} | member)
    return decide_invite(
        state or registered(),
        corporation_id=CORP,
        member_id=MEMBER,
        body=body,
        invitation_id=INVITATION,
        valid_for=WEEK,
        origin=ORIGIN,
        now=NOW,
    ).answer


def activate(state: CorporationState, *, now: datetime = NOW, invitation: str = INVITATION) -> Any:
    return decide_activate(
        state,
        corporation_id=CORP,
        member_id=MEMBER,
        invitation_id=invitation,
        origin=ORIGIN,
        now=now,
    )


# --- registration numbers and VAT ids ------------------------------------------------


@pytest.mark.parametrize(
    ("country", "registration", "vat", "expected"),
    [
        ("NL", "1234 5678", "nl 0044.95.445.B01", ("12345678", "NL004495445B01")),
        ("BE", "0403.170.701", "BE 0403.170.701", ("0403170701", "BE0403170701")),
        ("FR", "732 829 320", "FR40303265045", ("732829320", "FR40303265045")),
        ("DE", "Aachen HRA 11223", "DE136695976", ("Aachen HRA 11223", "DE136695976")),
        ("DK", "13585628", "DK13585628", ("13585628", "DK13585628")),
    ],
)
def test_valid_numbers_are_kept_compact(
    country: str, registration: str, vat: str, expected: tuple[str, str]
) -> None:
    assert checked_identifiers(country, registration, vat) == expected


@pytest.mark.parametrize(
    ("country", "registration", "vat", "field", "rule"),
    [
        ("NL", "1234567", "NL004495445B01", "registration_number", "KvK number: 8 digits"),
        ("BE", "0403.170.702", "BE0403170701", "registration_number", "checksum does not match"),
        ("FR", "73282932", "FR40303265045", "registration_number", "wrong length"),
        ("NL", "12345678", "NL004495446B01", "vat_id", "checksum does not match"),
        ("NL", "12345678", "DE136695976", "vat_id", "a NL VAT id starts with NL"),
        ("DE", "Aachen HRA 11223", "DE13669597", "vat_id", "wrong length"),
        ("XX", "1", "XX1", "registration_number", "no rule for country XX"),
    ],
)
def test_an_invalid_number_names_the_field_and_the_rule(
    country: str, registration: str, vat: str, field: str, rule: str
) -> None:
    with pytest.raises(RefusedError) as refused:
        checked_identifiers(country, registration, vat)
    assert refused.value.status is OcpiStatus.INVALID_PARAMETERS
    assert f": {field}: " in refused.value.message
    assert rule in refused.value.message


def test_an_invalid_vat_id_records_nothing() -> None:
    body = NewCorporation.model_validate(corporation_body(vat_id="NL004495446B01"))
    with pytest.raises(RefusedError, match="vat_id"):
        decide_register(None, corporation_id=CORP, body=body, origin=ORIGIN, now=NOW)


@pytest.mark.parametrize(
    "contract",
    [
        {"price_per_kwh": "-0.01", "vat_rate": "0.21", "payment_term_days": 30},
        {"price_per_kwh": "0.35", "vat_rate": "1.5", "payment_term_days": 30},
        {"price_per_kwh": "0.35", "vat_rate": "0.21", "payment_term_days": -1},
        {"price_per_kwh": "NaN", "vat_rate": "0.21", "payment_term_days": 30},
    ],
)
def test_a_contract_out_of_bounds_is_refused(contract: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NewCorporation.model_validate(corporation_body(contract=contract))


def test_only_monthly_invoices_so_far() -> None:
    with pytest.raises(ValidationError, match="payment_method"):
        NewCorporation.model_validate(corporation_body(payment_method="CARD"))


# --- decisions and the fold ------------------------------------------------------------


def test_registration_records_one_event_whose_fold_is_the_answer() -> None:
    body = NewCorporation.model_validate(corporation_body(vat_id="NL 0044 95445 B01"))
    decision = decide_register(None, corporation_id=CORP, body=body, origin=ORIGIN, now=NOW)
    [event] = decision.events
    assert event.aggregate_key == CORP
    # Through the log and back: the same state, the price digit for digit.
    back = parse_event(serialize_event(event))
    state = evolve(None, back)  # type: ignore[arg-type]
    assert state == decision.answer
    assert state is not None and state.vat_id == "NL004495445B01"
    assert str(state.contract.price_per_kwh) == "0.3500"
    assert b'"price_per_kwh":"0.3500"' in serialize_event(event)


def test_a_second_registration_of_an_id_is_refused() -> None:
    body = NewCorporation.model_validate(corporation_body())
    with pytest.raises(RefusedError) as refused:
        decide_register(registered(), corporation_id=CORP, body=body, origin=ORIGIN, now=NOW)
    assert refused.value.http_status == 409


@pytest.mark.parametrize(
    ("path", "refused_at"),
    [
        ([CorporationStatus.SUSPENDED, CorporationStatus.ACTIVE, CorporationStatus.CLOSED], None),
        ([CorporationStatus.CLOSED, CorporationStatus.ACTIVE], 1),
        ([CorporationStatus.CLOSED, CorporationStatus.SUSPENDED], 1),
    ],
)
def test_status_changes(path: list[CorporationStatus], refused_at: int | None) -> None:
    state = registered()
    for i, status in enumerate(path):
        change = StatusChange(status=status)
        if i == refused_at:
            with pytest.raises(RefusedError):
                decide_status(state, corporation_id=CORP, change=change, origin=ORIGIN, now=NOW)
            return
        decision = decide_status(state, corporation_id=CORP, change=change, origin=ORIGIN, now=NOW)
        assert len(decision.events) == 1
        state = decision.answer
        assert state.status is status
    assert refused_at is None


def test_the_same_status_again_records_nothing() -> None:
    change = StatusChange(status=CorporationStatus.ACTIVE)
    decision = decide_status(
        registered(), corporation_id=CORP, change=change, origin=ORIGIN, now=NOW
    )
    assert decision.events == []


def test_an_unknown_corporation_is_404() -> None:
    with pytest.raises(RefusedError) as refused:
        decide_status(
            None,
            corporation_id=CORP,
            change=StatusChange(status=CorporationStatus.CLOSED),
            origin=ORIGIN,
            now=NOW,
        )
    assert refused.value.http_status == 404


def test_an_invitation_expires_and_activates_once() -> None:
    state = invited()
    member = state.members[MEMBER]
    assert member.status is MemberStatus.INVITED
    assert member.expires_at == NOW + WEEK
    # Expired: refused, nothing recorded.
    with pytest.raises(LinkRefusedError, match="expired"):
        activate(state, now=NOW + WEEK)
    decision = activate(state, now=NOW + WEEK - timedelta(seconds=1))
    assert len(decision.events) == 1
    after = decision.answer
    assert after.members[MEMBER].status is MemberStatus.ACTIVE
    assert (after.members[MEMBER].token_uid, after.members[MEMBER].token_type) == (
        f"CB{MEMBER.upper()}",
        "APP_USER",
    )
    # The same link again: nothing new, the same member (the token is written again).
    again = activate(after, now=NOW + WEEK + timedelta(days=1))
    assert again.events == [] and again.answer == after


def test_a_new_invitation_makes_the_older_link_useless() -> None:
    state = invited()
    newer = decide_invite(
        state,
        corporation_id=CORP,
        member_id=MEMBER,
        body=None,
        invitation_id="b" * 32,
        valid_for=WEEK,
        origin=ORIGIN,
        now=NOW + timedelta(days=1),
    ).answer
    assert newer.members[MEMBER].invited_at == NOW
    with pytest.raises(LinkRefusedError, match="replaced"):
        activate(newer)
    assert activate(newer, invitation="b" * 32).answer.members[MEMBER].status is MemberStatus.ACTIVE


def test_no_activation_while_suspended_and_no_invitation_either() -> None:
    state = invited()
    suspended = decide_status(
        state,
        corporation_id=CORP,
        change=StatusChange(status=CorporationStatus.SUSPENDED),
        origin=ORIGIN,
        now=NOW,
    ).answer
    with pytest.raises(LinkRefusedError, match="suspended"):
        activate(suspended)
    with pytest.raises(RefusedError, match="SUSPENDED"):
        invited(suspended)


def test_an_e_mail_address_is_one_member() -> None:
    state = invited()
    with pytest.raises(RefusedError, match="e-mail"):
        decide_invite(
            state,
            corporation_id=CORP,
            member_id="mem000000002",
            body=NewMember(name="Ada again", email="ADA@acme.example"),
            invitation_id="c" * 32,
            valid_for=WEEK,
            origin=ORIGIN,
            now=NOW,
        )


def test_an_invitation_is_recorded_as_mailed_once() -> None:
    state = invited()
    first = decide_mailed(
        state,
        corporation_id=CORP,
        member_id=MEMBER,
        invitation_id=INVITATION,
        message_id="<x>",
        origin=ORIGIN,
        now=NOW,
    )
    assert len(first.events) == 1
    assert first.answer.members[MEMBER].mailed_invitation_id == INVITATION
    second = decide_mailed(
        first.answer,
        corporation_id=CORP,
        member_id=MEMBER,
        invitation_id=INVITATION,
        message_id="<x>",
        origin=ORIGIN,
        now=NOW,
    )
    assert second.events == []


def test_the_member_token_is_an_ocpi_token_of_ours() -> None:
    state = activate(invited(rfid_uid="04a1b2c3d4")).answer
    member = state.members[MEMBER]
    token = member_token(state, member, country_code="ZZ", party_id="HUB", now=NOW)
    parsed = Token.model_validate(token)
    assert (parsed.uid, parsed.type.value, parsed.group_id) == ("04A1B2C3D4", "RFID", CORP.upper())
    assert parsed.valid and parsed.whitelist.value == "ALLOWED"
    assert active_member_tokens(state) == [("04A1B2C3D4", "RFID")]


# --- the link and the e-mail ----------------------------------------------------------------


def test_the_link_secret_depends_on_every_part_and_the_key() -> None:
    key = link_key(b"k" * 32)
    secret = link_secret(key, CORP, MEMBER, INVITATION)
    assert link_matches(key, CORP, MEMBER, INVITATION, secret)
    assert not link_matches(key, CORP, MEMBER, "b" * 32, secret)
    assert not link_matches(key, CORP, "mem000000002", INVITATION, secret)
    assert not link_matches(link_key(b"j" * 32), CORP, MEMBER, INVITATION, secret)


def test_the_activation_e_mail_carries_the_link() -> None:
    state = invited()
    member = state.members[MEMBER]
    key = link_key(b"k" * 32)
    url = activation_url("https://hub.example/", key, CORP, member)
    secret = link_secret(key, CORP, MEMBER, INVITATION)
    assert url == f"https://hub.example/billing/activation/{CORP}/{MEMBER}/{INVITATION}/{secret}"
    message = compose(
        mail_from="billing@hub.example", corporation=state, member=member, url=url, now=NOW
    )
    assert message["To"] == "Ada Lovelace <ada@acme.example>"
    assert message["Message-ID"] == f"<{INVITATION}@billing.ocpi-hub>"
    assert "Acme Fleet B.V." in message["Subject"]
    assert url in message.get_content()


def test_the_billing_topic_is_in_the_catalogue_and_documented() -> None:
    from pathlib import Path

    assert BILLING_CORPORATIONS in CATALOGUE
    doc = (Path(__file__).parents[2] / "docs" / "topics.md").read_text()
    assert f"## `{BILLING_CORPORATIONS.name}`" in doc
    for event_type in BILLING_CORPORATIONS.event_types:
        assert f"`{event_type}`" in doc


# --- charges ----------------------------------------------------------------------------

CARD = "04A1B2C3D4"


def member_cdr(cdr_id: str = "CDR-1", **changes: Any) -> dict[str, Any]:
    """A partner CPO's CDR (8.25 kWh) of the member's RFID card."""
    from tests.unit.test_cdr_api import partner_cdr

    token = {
        "country_code": "ZZ",
        "party_id": "HUB",
        "uid": CARD,
        "type": "RFID",
        "contract_id": "C",
    }
    return partner_cdr(**({"id": cdr_id, "cdr_token": token} | changes))


def _key(cdr_id: str) -> str:
    return f"NL/CPO/{cdr_id}"


def charge(state: CorporationState, cdr: dict[str, Any]) -> Any:
    return decide_charge(
        state,
        corporation_id=CORP,
        cdr_key_of=_key,
        key=_key(cdr["id"]),
        cdr=cdr,
        role="received",
        origin=ORIGIN,
        now=NOW,
    )


@pytest.mark.parametrize(
    ("energy", "price", "amount"),
    [
        ("8.25", "0.35", "2.89"),  # 2.8875: half up
        ("10", "0.3", "3.00"),
        ("1.234", "0.5", "0.62"),  # 0.617
        ("0.01", "0.5", "0.01"),  # 0.005: half up, never to zero
        ("0.009", "0.5", "0.00"),  # 0.0045
        ("0", "0.35", "0.00"),
    ],
)
def test_a_charge_is_kwh_times_price_rounded_half_up_to_the_cent(
    energy: str, price: str, amount: str
) -> None:
    priced = price_charge(Decimal(energy), Decimal(price))
    assert str(priced) == amount


def test_a_member_cdr_is_charged_once_by_the_contract() -> None:
    state = activate(invited(rfid_uid=CARD.lower(), cost_centre="R&D")).answer
    decision = charge(state, member_cdr())
    [event] = decision.events
    p = event.payload
    assert (p.member_id, p.cost_centre, p.token_uid, p.role) == (MEMBER, "R&D", CARD, "received")
    assert (p.energy_kwh, p.price_per_kwh, p.amount) == (
        Decimal("8.25"),
        Decimal("0.3500"),
        Decimal("2.89"),
    )
    assert p.cdr_cost_excl_vat == Decimal("3.575")  # the CDR's own, for reference
    # Through the log and back, and the same CDR again: nothing more.
    after = evolve(state, parse_event(serialize_event(event)))  # type: ignore[arg-type]
    assert after == decision.answer
    assert charge(decision.answer, member_cdr()).events == []


def test_a_credit_cdr_reverses_its_charge_once() -> None:
    state = charge(activate(invited(rfid_uid=CARD)).answer, member_cdr()).answer
    credit = member_cdr("CDR-1-C", credit=True, credit_reference_id="CDR-1")
    decision = charge(state, credit)
    [event] = decision.events
    assert (event.payload.cdr_key, event.payload.amount) == (_key("CDR-1"), Decimal("-2.89"))
    assert decision.answer.charges[_key("CDR-1")].reversed_by == _key("CDR-1-C")
    assert charge(decision.answer, credit).events == []


def test_a_credit_cdr_before_its_cdr_leaves_nothing_to_charge() -> None:
    state = activate(invited(rfid_uid=CARD)).answer
    credit = member_cdr("CDR-1-C", credit=True, credit_reference_id="CDR-1")
    decision = charge(state, credit)
    [event] = decision.events
    assert event.payload.amount == Decimal(0)
    assert charge(decision.answer, member_cdr()).events == []


def test_a_cdr_of_no_member_is_not_charged() -> None:
    state = activate(invited(rfid_uid=CARD)).answer
    stranger = member_cdr(
        cdr_token={
            "country_code": "ZZ",
            "party_id": "HUB",
            "uid": "OTHER",
            "type": "RFID",
            "contract_id": "C",
        }
    )
    assert charge(state, stranger).events == []
    invited_only = invited(rfid_uid=CARD)  # not activated: no token yet
    assert charge(invited_only, member_cdr()).events == []
