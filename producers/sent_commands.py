"""Sent commands: the Commands slice as eMSP (mod_commands, our Sender
interface): we command a partner CPO's charger and receive the outcome at
our ``response_url``. Pure core, plus the port (and httpx adapter) that
carries a request to the CPO.

- ``CommandIds``: command ids that carry a MAC binding them to the partner
  and the command, keyed with the platform's secret key. The callback handler
  tells a genuine id for the calling partner without reading anything, so a
  fast CPO whose result arrives before ``CommandSent`` is recorded is served
  all the same (docs/adr/0019).
- ``build_request``: the ops body checked as the OCPI request object, with
  our ``response_url`` added; a token in it must be one of ours.
- ``command_target``: where a partner receives commands, and as whom.
- ``read_response``: the CPO's answer as a CommandResponse, or why not.
- ``plan_sent`` / ``plan_result``: the two events of this role.
- ``SentCommandState`` / ``evolve``: one command we sent, as the write path
  holds it (``SLICE``) and the ``sent_commands`` view shows it; the first
  result stands.
- ``decide_sent`` / ``decide_result``: what the write path records of a send
  and of a result, judged on that state (docs/adr/0022): a send always; a
  result unless one is already recorded.
- ``status_of``: the status an operator sees, judged at read time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from producers.partner_client import ModuleAnswer, send_module_request
from producers.partners import PartnerState
from producers.url_policy import partner_http
from producers.write_path import Decision, RefusedError, Slice
from schemas.events import Party
from schemas.events.commands import (
    CommandResultReceived,
    CommandResultReceivedPayload,
    CommandSent,
    CommandSentPayload,
)
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.commands import (
    REQUEST_MODEL,
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    CommandType,
)
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import DisplayText, to_json
from schemas.ocpi.versions import InterfaceRole, ModuleId
from schemas.ocpi.wire import CORE_VERSION
from schemas.topics import COMMANDS

SentCommandEvent = CommandSent | CommandResultReceived

# --------------------------------------------------------------------------- #
# Command ids
# --------------------------------------------------------------------------- #

_ID_PURPOSE = b"ocpi-hub:emsp-command-id:v1"
_NONCE_BYTES = 10  # 80 random bits, 20 hex characters
_MAC_CHARS = 24  # 96 bits of HMAC-SHA256


class CommandIds:
    """``<nonce>-<mac>``: 45 characters of ``[0-9a-f-]``, safe in a URL path.

    The MAC key is derived from the platform's secret key for this one
    purpose, so the Fernet key itself never signs anything."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = hmac.new(secret_key, _ID_PURPOSE, hashlib.sha256).digest()

    def _mac(self, partner_id: str, command: CommandType | str, nonce: str) -> str:
        # ``command``: a CommandType, or another kind of request we send and
        # whose result comes back to us (a charging profile request).
        message = f"{partner_id}\x00{command}\x00{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:_MAC_CHARS]

    def new(self, partner_id: str, command: CommandType | str, nonce: str | None = None) -> str:
        nonce = nonce or secrets.token_hex(_NONCE_BYTES)
        return f"{nonce}-{self._mac(partner_id, command, nonce)}"

    def genuine(self, command_id: str, partner_id: str, command: CommandType | str) -> bool:
        """Did we make this id for a command of this type to this partner?"""
        nonce, sep, mac = command_id.partition("-")
        if not sep or len(nonce) != 2 * _NONCE_BYTES or len(mac) != _MAC_CHARS:
            return False
        return hmac.compare_digest(mac, self._mac(partner_id, command, nonce))


def response_url(
    base_url: str, command: CommandType, command_id: str, version: str = CORE_VERSION
) -> str:
    """Our Commands Sender interface for this one command (mod_commands: a
    unique id as a URL segment tells simultaneous commands apart), in the
    OCPI version of the partner it goes to."""
    base = base_url.rstrip("/")
    return f"{base}/ocpi/emsp/{version}/commands/{command.value}/{command_id}"


# --------------------------------------------------------------------------- #
# The request
# --------------------------------------------------------------------------- #

_TOKEN_COMMANDS = (CommandType.START_SESSION, CommandType.RESERVE_NOW)


def build_request(command: CommandType, body: Any, url: str, us: Party) -> dict[str, Any]:
    """The OCPI request object to send: the ops body, checked by the model of
    ``command``, with our ``response_url``. The platform sets the URL, so a
    body that brings its own is refused; an eMSP only uses its own tokens
    (START_SESSION, RESERVE_NOW), so a token of another party is refused.
    Raises ``RefusedError`` (2001) or pydantic's ``ValidationError``."""
    if not isinstance(body, dict):
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, f"a {command.value} object is expected")
    if "response_url" in body:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            "response_url is set by the platform; leave it out of the body",
        )
    request = REQUEST_MODEL[command].model_validate({**body, "response_url": url})
    if command in _TOKEN_COMMANDS:
        token = request.token  # type: ignore[attr-defined]  # StartSession, ReserveNow
        if (fold(token.country_code), fold(token.party_id)) != (
            fold(us.country_code),
            fold(us.party_id),
        ):
            raise RefusedError(
                OcpiStatus.INVALID_PARAMETERS,
                f"token {token.country_code}/{token.party_id}/{token.uid} is not one of ours "
                f"({us.country_code}/{us.party_id}); an eMSP commands with its own tokens only",
            )
    return to_json(request)


@dataclass(frozen=True)
class CommandTarget:
    """A partner's Commands Receiver, and the party of it we address."""

    partner_id: str
    url: str
    sealed_token: str
    to: Party

    def command_url(self, command: CommandType) -> str:
        # mod_commands, Receiver endpoint structure: {commands_endpoint_url}{command}
        return f"{self.url.rstrip('/')}/{command.value}"


def command_target(partner_id: str, partner: PartnerState | None) -> CommandTarget:
    """Refuses (nothing sent) a partner we do not know (404), one that is not
    registered or did not publish a Commands RECEIVER endpoint (409)."""
    return receiver_target(partner_id, partner, ModuleId.COMMANDS)


def receiver_target(
    partner_id: str, partner: PartnerState | None, module: ModuleId
) -> CommandTarget:
    """A registered partner's RECEIVER endpoint of ``module`` (Commands,
    ChargingProfiles: requests to a CPO's chargers), addressed to its CPO
    role; ``RefusedError`` (nothing sent) as ``command_target`` says."""
    if partner is None:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, f"unknown partner {partner_id!r}", 404)
    if partner.status != "registered" or not partner.our_token_encrypted:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS, f"partner {partner_id!r} is not registered", 409
        )
    version = partner.version or CORE_VERSION
    edge = WIRES.get(version)
    if version != CORE_VERSION and (edge is None or module.value not in edge.modules):
        # Its result would come to our route of its version, which does not
        # serve the module (3002): do not ask (docs/ocpi-versions.md).
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"partner {partner_id!r} is registered for OCPI {version}, in which we do not "
            f"speak {module.value}",
            409,
        )
    url = partner.endpoint(module.value, InterfaceRole.RECEIVER.value)
    if url is None:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"partner {partner_id!r} has no {module.value} receiver in its version details",
            409,
        )
    # Commands go to the partner's CPO role (the role that runs chargers).
    role = next((r for r in partner.roles if r.role == Role.CPO), None) or (
        partner.roles[0] if partner.roles else None
    )
    if role is None:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS, f"partner {partner_id!r} has no role to address", 409
        )
    return CommandTarget(
        partner_id=partner_id,
        url=url,
        sealed_token=partner.our_token_encrypted,
        to=Party(country_code=fold(role.country_code), party_id=fold(role.party_id)),
    )


def outbound_headers(
    *, us: Party, to: Party, request_id: str, correlation_id: str
) -> dict[str, str]:
    """Every header of the request to the CPO except Authorization (added by
    the partner client from our token for that partner). Nothing of the ops
    request is forwarded but its correlation id, which the CommandSent event
    carries too (transport_and_format, "Message Routing")."""
    return {
        "Content-Type": "application/json",
        "X-Request-ID": request_id,
        "X-Correlation-ID": correlation_id,
        "OCPI-from-country-code": us.country_code,
        "OCPI-from-party-id": us.party_id,
        "OCPI-to-country-code": to.country_code,
        "OCPI-to-party-id": to.party_id,
    }


class SendFailedError(Exception):
    """The CPO could not be used: no answer, not OCPI, or an OCPI error."""


def read_response(answer: CpoAnswer) -> CommandResponse:
    """The CommandResponse in the CPO's answer; ``SendFailedError`` when there
    is none (the message names what came back, never a header)."""
    return read_answer(answer, CommandResponse)


M = TypeVar("M", bound=BaseModel)


def read_answer(answer: CpoAnswer, model: type[M]) -> M:
    """The ``model`` object in the CPO's answer (its immediate response to
    a request); ``SendFailedError`` when there is none."""
    if answer.http_status is None:
        raise SendFailedError(f"the partner could not be reached ({answer.error})")
    if answer.ocpi_status is None:
        raise SendFailedError(f"the partner answered HTTP {answer.http_status}, not OCPI")
    if answer.ocpi_status != OcpiStatus.SUCCESS or answer.http_status >= 300:
        said = f": {answer.status_message}" if answer.status_message else ""
        raise SendFailedError(
            f"the partner refused the request: HTTP {answer.http_status}, "
            f"OCPI {answer.ocpi_status}{said}"
        )
    try:
        return model.model_validate(answer.data)
    except ValidationError as exc:
        raise SendFailedError(f"the partner's answer is not a {model.__name__}") from exc


# --------------------------------------------------------------------------- #
# Events
# --------------------------------------------------------------------------- #

_RESULT_NS = uuid.UUID("0b8f7a2e-3c55-4d0e-9a61-52e1d4c7b9f3")


def result_event_id(command_id: str) -> uuid.UUID:
    """One id for the result of a command, however often it is delivered:
    a duplicate that slips into the log is recognisable by subscribers."""
    return uuid.uuid5(_RESULT_NS, command_id)


def plan_sent(
    *,
    command_id: str,
    command: CommandType,
    target: CommandTarget,
    request: dict[str, Any],
    response: CommandResponse,
    us: Party,
    now: datetime,
    correlation_id: str,
) -> CommandSent:
    return CommandSent(
        event_id=uuid.uuid4(),
        aggregate_key=command_id,
        occurred_at=now,
        recorded_at=now,
        source=us,
        correlation_id=correlation_id,
        payload=CommandSentPayload(
            command_id=command_id,
            command=command,
            partner_id=target.partner_id,
            receiver=target.to,
            request=request,
            response=response.result,
            timeout_s=response.timeout,
            message=response.message,
            at=now,
        ),
    )


def plan_result(
    *,
    command_id: str,
    partner_id: str,
    sender: Party,
    result: CommandResult,
    now: datetime,
    correlation_id: str,
) -> CommandResultReceived:
    """``sender``: the CPO party that POSTed the result."""
    return CommandResultReceived(
        event_id=result_event_id(command_id),
        aggregate_key=command_id,
        occurred_at=now,
        recorded_at=now,
        source=sender,
        correlation_id=correlation_id,
        payload=CommandResultReceivedPayload(
            command_id=command_id,
            partner_id=partner_id,
            result=result.result,
            message=result.message,
            at=now,
        ),
    )


# --------------------------------------------------------------------------- #
# The fold and the status
# --------------------------------------------------------------------------- #


class SentCommandState(BaseModel):
    """One command we sent, as the events say. A result may come before the
    record of the send (a fast CPO): then only the result fields are set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    partner_id: str
    command: CommandType | None = None
    receiver: Party | None = None
    request: dict[str, Any] | None = None
    response: CommandResponseType | None = None
    response_message: list[DisplayText] | None = None
    timeout_s: int | None = None
    sent_at: datetime | None = None
    result: CommandResultType | None = None
    result_message: list[DisplayText] | None = None
    result_at: datetime | None = None


def evolve(state: SentCommandState | None, event: SentCommandEvent) -> SentCommandState:
    if isinstance(event, CommandSent):
        p = event.payload
        base = state or SentCommandState(command_id=p.command_id, partner_id=p.partner_id)
        return base.model_copy(
            update={
                "partner_id": p.partner_id,
                "command": p.command,
                "receiver": p.receiver,
                "request": p.request,
                "response": p.response,
                "response_message": p.message,
                "timeout_s": p.timeout_s,
                "sent_at": p.at,
            }
        )
    r = event.payload
    if state is not None and state.result is not None:
        return state  # the first result stands
    base = state or SentCommandState(command_id=r.command_id, partner_id=r.partner_id)
    return base.model_copy(
        update={"result": r.result, "result_message": r.message, "result_at": r.at}
    )


def _evolve_held(state: SentCommandState | None, event: object) -> SentCommandState | None:
    # The topic also carries the received commands: not this slice's.
    if isinstance(event, CommandSent | CommandResultReceived):
        return evolve(state, event)
    return state


# The commands we send, as the write path holds them (docs/adr/0022).
SLICE: Slice[SentCommandState] = Slice(
    "sent_commands",
    COMMANDS,
    _evolve_held,
    lambda state: state.model_dump_json().encode(),
    SentCommandState.model_validate_json,
)


def decide_sent(state: SentCommandState | None, sent: CommandSent) -> Decision[None]:
    """Our record of a send is always kept: the id is new, and a result the
    CPO posted before we got here (``state``) stays as it is."""
    return Decision([sent], None)


def decide_result(
    state: SentCommandState | None, received: CommandResultReceived
) -> Decision[CommandResultType | None]:
    """The first result stands: a repeat records nothing. The answer is the
    result already recorded (None when this one is)."""
    if state is not None and state.result is not None:
        return Decision([], state.result)
    return Decision([received], None)


PENDING = "PENDING"
NO_RESULT_IN_TIME = "NO_RESULT_IN_TIME"


def status_of(state: SentCommandState, now: datetime) -> str:
    """What became of a command, judged now:

    - the CPO's response when it was not ACCEPTED (REJECTED, NOT_SUPPORTED,
      UNKNOWN_SESSION): no result is to be expected;
    - the result, once received (ACCEPTED, EVSE_OCCUPIED, TIMEOUT, ...);
    - PENDING while the timeout the CPO announced has not passed;
    - NO_RESULT_IN_TIME after it. Nothing is recorded for that: the command
      stays open and a late result is still taken (mod_commands: the eMSP
      "can assume" the result may never come, nothing more)."""
    if state.response is not None and state.response is not CommandResponseType.ACCEPTED:
        return state.response.value
    if state.result is not None:
        return state.result.value
    if state.sent_at is None or state.timeout_s is None:
        return PENDING  # cannot happen from the events: a state has one or the other
    if now < state.sent_at + timedelta(seconds=state.timeout_s):
        return PENDING
    return NO_RESULT_IN_TIME


# --------------------------------------------------------------------------- #
# The channel to the CPO (port and httpx adapter)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class CpoAnswer:
    """What the CPO answered: ``ModuleAnswer`` plus the envelope's data and
    status message (a CommandResponse on success)."""

    http_status: int | None
    ocpi_status: int | None
    data: Any = None
    status_message: str | None = None
    error: str | None = None


class CommandChannel(Protocol):
    async def post(
        self, url: str, *, token: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> CpoAnswer: ...

    async def send(
        self,
        method: str,
        url: str,
        *,
        token: str,
        headers: Mapping[str, str],
        body: dict[str, Any] | None = None,
        raw_token: bool = False,
    ) -> CpoAnswer:
        """Any request to a partner's receiver (a charging profile's PUT,
        GET or DELETE; the body None for the last two). ``raw_token``: the
        partner's version takes the token as is (2.1.1)."""
        ...


class HttpCommandChannel:
    """POSTs a command with ``send_module_request`` (our token for the
    partner, the given headers and nothing else)."""

    def __init__(self, timeout_s: float, *, allow_private_urls: bool = False) -> None:
        self._timeout_s = timeout_s
        self._allow_private = allow_private_urls

    async def post(
        self, url: str, *, token: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> CpoAnswer:
        return await self.send("POST", url, token=token, headers=headers, body=body)

    async def send(
        self,
        method: str,
        url: str,
        *,
        token: str,
        headers: Mapping[str, str],
        body: dict[str, Any] | None = None,
        raw_token: bool = False,
    ) -> CpoAnswer:
        # The partner's receiver (commands, charging profiles): checked and
        # pinned (url_policy).
        async with partner_http(self._timeout_s, allow_private=self._allow_private) as client:
            answer: ModuleAnswer = await send_module_request(
                client, method, url, token=token, headers=headers, json=body, raw_token=raw_token
            )
        envelope = answer.body if isinstance(answer.body, dict) else {}
        message = envelope.get("status_message")
        return CpoAnswer(
            http_status=answer.http_status,
            ocpi_status=answer.ocpi_status,
            data=envelope.get("data"),
            status_message=message[:200] if isinstance(message, str) else None,
            error=answer.error,
        )
