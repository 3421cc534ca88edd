"""The OCPI 2.3.0 edge adapter for Commands (schemas/ocpi/v230/commands.py,
docs/ocpi-versions.md "2.3.0", Commands).

Properties (hypothesis): each 2.3.0 command request, with any TokenType
(an OpenEnum in 2.3.0) and unknown fields, read into ours is a valid
request of our model and written back is what was sent; CommandResponse
and CommandResult pass both ways unchanged. Then: a request missing a
required field is refused (2001), an EMAID token is OTHER in our model,
an eMSP's AuthorizationInfo naming a 2.3.0 token reads, and CommandType's
open values are told apart from ours."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.ocpi.commands import (
    REQUEST_MODEL,
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    CommandType,
)
from schemas.ocpi.tokens import AuthorizationInfo
from schemas.ocpi.types import TokenType
from schemas.ocpi.v230.commands import is_listed_command
from schemas.ocpi.v230.mapping import KEPT
from schemas.ocpi.wire import Kind
from tests.token_objects import token
from tests.unit.test_v230_adapter import NOW, OWNER, V230
from tests.unit.test_v230_mapping import FAST, IDS, STAMPS, open_enum

Json = dict[str, Any]

URLS = IDS.map(lambda i: f"https://emsp.example.com/ocpi/emsp/2.3.0/commands/{i}")
TOKENS = st.builds(
    lambda kind, at: token("04ABCDEF", type=kind, at=at), open_enum(TokenType, True), STAMPS
)
EXTRA = st.dictionaries(st.sampled_from(["x_note", "x_priority"]), st.text(max_size=5), max_size=1)


def _request(required: Json, optional: Json, extra: Json) -> Json:
    return {**required, **{k: v for k, v in optional.items() if v is not None}, **extra}


def _maybe(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), s)


requests_230 = st.one_of(
    st.builds(
        lambda url, tok, loc, evse, conn, ref, extra: (
            CommandType.START_SESSION,
            _request(
                {"response_url": url, "token": tok, "location_id": loc},
                {"evse_uid": evse, "connector_id": conn, "authorization_reference": ref},
                extra,
            ),
        ),
        URLS, TOKENS, IDS, _maybe(IDS), _maybe(IDS), _maybe(IDS), EXTRA,
    ),
    st.builds(
        lambda url, tok, until, rid, loc, evse, extra: (
            CommandType.RESERVE_NOW,
            _request(
                {
                    "response_url": url,
                    "token": tok,
                    "expiry_date": until,
                    "reservation_id": rid,
                    "location_id": loc,
                },
                {"evse_uid": evse},
                extra,
            ),
        ),
        URLS, TOKENS, STAMPS, IDS, IDS, _maybe(IDS), EXTRA,
    ),
    st.builds(
        lambda url, rid, extra: (
            CommandType.CANCEL_RESERVATION,
            {"response_url": url, "reservation_id": rid, **extra},
        ),
        URLS, IDS, EXTRA,
    ),
    st.builds(
        lambda url, sid, extra: (
            CommandType.STOP_SESSION, {"response_url": url, "session_id": sid, **extra}
        ),
        URLS, IDS, EXTRA,
    ),
    st.builds(
        lambda url, loc, evse, conn, extra: (
            CommandType.UNLOCK_CONNECTOR,
            {
                "response_url": url,
                "location_id": loc,
                "evse_uid": evse,
                "connector_id": conn,
                **extra,
            },
        ),
        URLS, IDS, IDS, IDS, EXTRA,
    ),
)  # fmt: skip


@FAST
@given(requests_230)
def test_a_2_3_0_command_comes_back_as_it_was_sent(case: tuple[CommandType, Json]) -> None:
    command, body = case
    kind = Kind(command.value.lower())
    ours = V230.object_in(kind, body, owner=OWNER, patch=False, now=NOW)
    REQUEST_MODEL[command].model_validate(ours)  # what the route does next
    assert V230.object_out(kind, ours, patch=False) == body


@FAST
@given(
    st.sampled_from(list(CommandResponseType)),
    st.integers(0, 3600),
    st.lists(st.sampled_from(["en", "nl"]), max_size=2, unique=True),
)
def test_a_command_response_passes_unchanged_both_ways(
    result: CommandResponseType, timeout: int, languages: list[str]
) -> None:
    body: Json = {"result": result.value, "timeout": timeout}
    if languages:
        body["message"] = [{"language": lang, "text": "why"} for lang in languages]
    ours = V230.object_in(Kind.COMMAND_RESPONSE, body, owner=None, patch=False, now=NOW)
    assert CommandResponse.model_validate(ours).result is result
    assert V230.object_out(Kind.COMMAND_RESPONSE, ours, patch=False) == body


@FAST
@given(st.sampled_from(list(CommandResultType)), st.booleans())
def test_a_command_result_passes_unchanged_both_ways(
    result: CommandResultType, extra: bool
) -> None:
    body: Json = {"result": result.value, **({"x_charger_code": 7} if extra else {})}
    ours = V230.object_in(Kind.COMMAND_RESULT, body, owner=None, patch=False, now=NOW)
    assert CommandResult.model_validate(ours).result is result
    assert V230.object_out(Kind.COMMAND_RESULT, ours, patch=False) == body


def test_an_emaid_token_in_a_start_session_is_other_in_our_model() -> None:
    body = {
        "response_url": "https://emsp.example.com/r/1",
        "token": token("EMA123", type="EMAID"),
        "location_id": "LOC-1",
    }
    ours = V230.object_in(Kind.START_SESSION, body, owner=OWNER, patch=False, now=NOW)
    request = REQUEST_MODEL[CommandType.START_SESSION].model_validate(ours)
    assert request.token.type is TokenType.OTHER  # type: ignore[attr-defined]
    assert ours["token"][KEPT] == {"type": "EMAID"}
    assert body["token"]["type"] == "EMAID"  # the partner's body is not changed


R = "https://e.example.com/r"


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        (Kind.START_SESSION, {"response_url": R, "location_id": "L"}, "token"),
        (Kind.STOP_SESSION, {"response_url": R}, "session_id"),
        (Kind.UNLOCK_CONNECTOR, {"response_url": R, "evse_uid": "E"}, "connector_id"),
        (Kind.CANCEL_RESERVATION, {"reservation_id": "R1"}, "response_url"),
        (Kind.COMMAND_RESPONSE, {"result": "ACCEPTED"}, "timeout"),
        (Kind.COMMAND_RESULT, {"result": "MAYBE"}, "result"),
    ],
)  # fmt: skip
def test_a_2_3_0_command_object_missing_a_required_field_is_refused(
    kind: Kind, body: Json, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        V230.object_in(kind, body, owner=OWNER, patch=False, now=NOW)
    assert field in str(refused.value)


def test_an_emsps_2_3_0_authorization_answer_reads_into_ours() -> None:
    body = {"allowed": "ALLOWED", "token": token("EMA123", type="EMAID"), "x_extra": 1}
    ours = V230.object_in(Kind.AUTHORIZATION, body, owner=None, patch=False, now=NOW)
    info = AuthorizationInfo.model_validate(ours)
    assert info.token.type is TokenType.OTHER
    assert V230.object_out(Kind.AUTHORIZATION, ours, patch=False) == body


def test_command_type_is_open_in_2_3_0() -> None:
    assert all(is_listed_command(c.value) for c in CommandType)
    assert not is_listed_command("X_UPDATE_FIRMWARE")
