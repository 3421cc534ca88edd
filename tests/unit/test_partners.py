"""The partners slice: its decisions, its fold (the write path's state and
the partners view alike) and the names a partner is found by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ocpi_hub.secrets import TokenVault, hash_token, new_token
from producers.partners import (
    SLICE,
    NotAllowedError,
    PartnerState,
    connection_of,
    decide_connection,
    decide_invite,
    decide_unregister,
    tokens,
)
from producers.write_path import RefusedError
from projections.mongo.partners import apply
from projections.position import Record
from schemas.events import EventMeta, Party
from schemas.events.partners import PartnerConnectionPayload
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.versions import Endpoint, InterfaceRole

NOW = datetime(2026, 6, 1, tzinfo=UTC)
US = Party(country_code="ZZ", party_id="HUB")


def connection(token_hash: str = "h-c") -> PartnerConnectionPayload:
    return PartnerConnectionPayload(
        partner_id="NL-ABC",
        direction="inbound",
        version="2.2.1",
        versions_url="https://partner.example/ocpi/versions",
        endpoints=(
            Endpoint(
                identifier="locations",
                role=InterfaceRole.SENDER,
                url="https://partner.example/ocpi/cpo/2.2.1/locations",  # type: ignore[arg-type]
            ),
        ),
        roles=(
            CredentialsRole(
                role=Role.CPO,
                business_details=BusinessDetails(name="Partner"),
                party_id="ABC",
                country_code="NL",
            ),
        ),
        their_token_hash=token_hash,
        our_token_encrypted="sealed",
    )


def fold(events: list[EventMeta]) -> PartnerState | None:
    """The partners view after these events: the slice's fold, plus positions."""
    doc = None
    for offset, event in enumerate(events):
        doc = apply(doc, Record("ocpi.partners.v1", 0, offset, event))  # type: ignore[arg-type]
    return (
        PartnerState.model_validate({k: v for k, v in doc.items() if k[0] != "_"}) if doc else None
    )


def invited() -> list[EventMeta]:
    return list(
        decide_invite(
            None,
            partner_id="NL-ABC",
            country_code="nl",
            party_id="abc",
            role=Role.CPO,
            token_a_hash=hash_token("token-a"),
            now=NOW,
            us=US,
            correlation_id="c",
        ).events
    )


def register(events: list[EventMeta], token_hash: str = "h-c") -> list[EventMeta]:
    decision = decide_connection(
        fold(events),
        method="POST",
        connection=connection(token_hash),
        now=NOW,
        source=US,
        correlation_id="c",
    )
    return events + list(decision.events)


def test_invite_then_register_then_token_a_is_gone() -> None:
    events = invited()
    state = fold(events)
    assert state is not None and state.status == "invited"
    assert state.token_a_hash == hash_token("token-a")
    assert tokens(state) == (hash_token("token-a"),)
    events = register(events)
    state = fold(events)
    assert state is not None and state.status == "registered"
    assert state.token_a_hash is None
    assert state.their_token_hash == "h-c"
    assert tokens(state) == ("h-c",)  # TOKEN_A no longer finds it
    assert state.registered_at == NOW  # where its push lanes start
    assert state.endpoint("locations", "SENDER") == (
        "https://partner.example/ocpi/cpo/2.2.1/locations"
    )
    assert state.owns("nl", "ABC") and not state.owns("DE", "ABC")


def test_a_decision_answers_the_partner_as_its_events_leave_it() -> None:
    decision = decide_invite(
        None,
        partner_id="NL-ABC",
        country_code="NL",
        party_id="ABC",
        role=Role.CPO,
        token_a_hash="h-a",
        now=NOW,
        us=US,
        correlation_id="c",
    )
    assert decision.answer == fold(list(decision.events))
    registered = decide_connection(
        decision.answer,
        method="POST",
        connection=connection(),
        now=NOW,
        source=US,
        correlation_id="c",
        presented="h-a",
    )
    assert registered.answer == fold(list(decision.events) + list(registered.events))


def test_post_twice_put_before_post_and_delete_unregistered_are_not_allowed() -> None:
    state = fold(invited())
    with pytest.raises(NotAllowedError):
        decide_connection(
            state, method="PUT", connection=connection(), now=NOW, source=US, correlation_id="c"
        )
    with pytest.raises(NotAllowedError):
        decide_unregister(state, now=NOW, source=US, correlation_id="c")
    registered = fold(register(invited()))
    with pytest.raises(NotAllowedError) as refused:
        decide_connection(
            registered,
            method="POST",
            connection=connection(),
            now=NOW,
            source=US,
            correlation_id="c",
        )
    # credentials.asciidoc: the wrong method for the state is HTTP 405.
    assert refused.value.http_status == 405
    with pytest.raises(NotAllowedError):
        decide_invite(
            registered,
            partner_id="NL-ABC",
            country_code="NL",
            party_id="ABC",
            role=Role.CPO,
            token_a_hash="x",
            now=NOW,
            us=US,
            correlation_id="c",
        )


def test_a_request_whose_token_was_replaced_meanwhile_is_refused() -> None:
    """Decided on the log's state: the token the partner was let in with must
    still be the one it may use (a rotation or a new invitation in between)."""
    state = fold(register(invited(), "h1"))
    with pytest.raises(RefusedError) as refused:
        decide_connection(
            state,
            method="PUT",
            connection=connection("h2"),
            now=NOW,
            source=US,
            correlation_id="c",
            presented="h-old",
        )
    assert refused.value.http_status == 401
    with pytest.raises(RefusedError):
        decide_unregister(state, now=NOW, source=US, correlation_id="c", presented="h-old")
    assert decide_unregister(state, now=NOW, source=US, correlation_id="c", presented="h1").events
    # A POST with a TOKEN_A that a new invitation replaced.
    with pytest.raises(RefusedError):
        decide_connection(
            fold(invited()),
            method="POST",
            connection=connection(),
            now=NOW,
            source=US,
            correlation_id="c",
            presented=hash_token("an-older-token-a"),
        )


def test_put_rotates_and_delete_forgets_the_tokens() -> None:
    events = register(invited(), "h1")
    events += decide_connection(
        fold(events),
        method="PUT",
        connection=connection("h2"),
        now=NOW + timedelta(hours=1),
        source=US,
        correlation_id="c",
    ).events
    rotated = fold(events)
    assert rotated is not None and rotated.their_token_hash == "h2"
    assert rotated.registered_at == NOW  # a rotation is not a new registration
    events += decide_unregister(fold(events), now=NOW, source=US, correlation_id="c").events
    gone = fold(events)
    assert gone is not None and gone.status == "unregistered"
    assert gone.their_token_hash is None and gone.our_token_encrypted is None
    assert tokens(gone) == ()


def test_our_side_of_a_rotation_records_the_connection_again_with_the_change() -> None:
    state = fold(register(invited(), "h1"))
    assert state is not None
    again = connection_of(state).model_copy(update={"their_token_hash": "h2"})
    decision = decide_connection(
        state, method="PUT", connection=again, now=NOW, source=US, correlation_id="c"
    )
    assert decision.answer == state.model_copy(update={"their_token_hash": "h2"})
    with pytest.raises(NotAllowedError):
        connection_of(fold(invited()))


def test_the_slice_stores_the_state_as_it_is() -> None:
    state = fold(register(invited()))
    assert state is not None
    assert SLICE.load(SLICE.dump(state)) == state
    assert SLICE.fold(None, register(invited())) == state
    assert SLICE.lookups is not None and list(SLICE.lookups(state)) == ["h-c"]


def test_redelivered_partner_events_change_nothing() -> None:
    events = invited()
    once = apply(None, Record("ocpi.partners.v1", 0, 0, events[0]))  # type: ignore[arg-type]
    assert apply(once, Record("ocpi.partners.v1", 0, 0, events[0])) is once  # type: ignore[arg-type]


def test_tokens_are_random_hashed_and_sealed() -> None:
    from cryptography.fernet import Fernet

    a, b = new_token(), new_token()
    assert a != b and 32 <= len(a) <= 64
    assert hash_token(a) != a and hash_token(a) == hash_token(a)
    vault = TokenVault(Fernet.generate_key())
    sealed = vault.encrypt(a)
    assert a not in sealed and vault.decrypt(sealed) == a


def test_partner_ids_of_our_operators_commands_cannot_be_invited() -> None:
    # "ops:<actor>" is the caller of our operator's own commands
    # (producers/received_commands.py); no partner may take that name.
    with pytest.raises(NotAllowedError, match="reserved"):
        decide_invite(
            None,
            partner_id="ops:account:ada",
            country_code="nl",
            party_id="abc",
            role=Role.EMSP,
            token_a_hash=hash_token("token-a"),
            now=NOW,
            us=US,
            correlation_id="c",
        )
