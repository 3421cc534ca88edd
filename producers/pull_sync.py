"""Pull sync: crawl a partner's Sender list of one module and record every
object as the same event a push would have produced: a partner CPO's
Locations (``LocationObjectPut`` at the Location level), Tariffs
(``TariffPut``), Sessions (``SessionPut``) and CDRs (``CdrReceived`` with
our ``CdrReconciled``), a partner eMSP's Tokens (``TokenPut``), a Payment
Terminal Provider's terminals (``TerminalPulled``) and financial advice
confirmations (``FinancialAdviceConfirmationPosted``; OCPI 2.3.0 Payments,
docs/adr/0047). ``ocpi-hub partners sync-<module>`` runs it.

Payments objects name no party: the PTP owns them (mod_payments, data
owner PTP), so every object its Sender lists is its own and is keyed under
the partner (``sender_owned``), and the module is read from a partner
registered for 2.3.0 only (it exists there alone and converts nothing).

Sessions and CDRs are judged as their receivers judge a PUT or POST
(producers/receipts.py: the token must be one we issued, a CDR is priced
against the tariffs we hold), and are asked for within a date range
(``date_from`` is required for sessions, mod_sessions). An object we hold
already, unchanged (a session equal to the one held, any CDR held: CDRs are
immutable), is counted as ``unchanged`` and records nothing, so a second
sync of the same range records nothing new (docs/adr/0042).

The crawl follows the ``Link: <...>; rel="next"`` header until there is none
(transport_and_format, "Pagination"), so it works with any conforming
Sender whatever its page size or cursor scheme. A copy older than what we
hold is recorded and then ignored by the views (docs/adr/0004), so a sync
running beside pushes cannot take an object back in time. Objects outside
the partner's own parties, or that are not valid objects of the module, are
counted and skipped: the rest of the crawl goes on. Each object goes through
the one write path with the decision its receiver uses for a PUT.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import httpx
import structlog
from pydantic import ValidationError

from producers import cdrs, locations, payments, sessions, tariffs, tokens
from producers.edge_context import TokenDirectory, context_in
from producers.locations import PutObject
from producers.partner_client import PartnerCallError, authorization
from producers.partners import PartnerState
from producers.receipts import cdr_receipt, session_billing
from producers.tariffs import PutTariff
from producers.tokens import PutToken
from producers.url_policy import partner_http
from producers.write_path import Decision, Origin, RefusedError, Slice, WritePath
from schemas.events import Party
from schemas.events.cdrs import cdr_key
from schemas.events.locations import LocationObjectRef
from schemas.events.payments import advice_key, terminal_key
from schemas.events.sessions import SessionRef
from schemas.events.tariffs import TariffRef
from schemas.events.tokens import TokenRef
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.cdrs import Cdr
from schemas.ocpi.common import fold, format_ocpi_datetime
from schemas.ocpi.sessions import to_json as to_session_json
from schemas.ocpi.tariffs import loads_exact
from schemas.ocpi.wire import CORE_VERSION, EdgeContext, Kind, WireVersion

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int | None


@dataclass
class SyncReport:
    pages: int = 0
    recorded: int = 0
    unchanged: int = 0  # held already as sent: nothing recorded
    skipped: list[str] = field(default_factory=list)


# The answer of a decision that records nothing: we hold the object as sent.
UNCHANGED = "unchanged"

Judge = Callable[[Any, datetime], Decision[Any]]


@dataclass(frozen=True)
class Consulted:
    """What a decision may read besides its own aggregate (a session's token,
    a CDR's tariffs): the write path's states, as the receiver reads them."""

    write_path: WritePath
    us: Party
    partner: PartnerState
    cdr_tolerance: Decimal


@dataclass(frozen=True)
class Pulled:
    """One object of a page to record: its aggregate key, how (the decision
    its receiver uses for a PUT), and its name in reports. ``consult``, when
    the decision needs other states, reads them and returns the decision;
    it may raise what the decision raises."""

    key: str
    decide: Judge
    named: str
    consult: Callable[[Consulted], Awaitable[Judge]] | None = None


# The writes of one page's objects, and a reason for each object skipped.
PageCommands = Callable[
    [PartnerState, "PullModule", Sequence[Any], str], tuple[list[Pulled], list[str]]
]


def commands_of_page(
    partner: PartnerState, module: PullModule, items: Sequence[Any], correlation_id: str
) -> tuple[list[Pulled], list[str]]:
    """The write of each object of the page the partner may send us, and a
    reason for each object skipped (not one of its parties, not an object of
    the module)."""
    commands: list[Pulled] = []
    skipped: list[str] = []
    for item in items:
        ids = item if isinstance(item, dict) else {}
        cc, pid, oid = (str(ids.get(k)) for k in ("country_code", "party_id", module.id_field))
        if not partner.owns(cc, pid):
            skipped.append(f"{cc}/{pid}/{oid}: not a party of {partner.partner_id}")
            continue
        origin = Origin(Party(country_code=fold(cc), party_id=fold(pid)), correlation_id)
        try:
            commands.append(module.pulled(ids, origin))
        except ValidationError:
            skipped.append(f"{cc}/{pid}/{oid}: not a {module.name} reference")
    return commands, skipped


@dataclass(frozen=True)
class PullModule:
    """What one module's pull needs: the partner's Sender endpoint, the role
    of the partner it addresses, how an item is identified and decoded, and
    the write that records it (``None`` for an item that is no such object)."""

    name: str
    identifier: str
    partner_role: str  # the partner's role that sends this module
    id_field: str
    pulled_slice: Slice[Any]  # where its objects are recorded
    pulled: Callable[[dict[str, Any], Origin], Pulled]
    # Tariffs keep every digit a partner sent (schemas.ocpi.tariffs.loads_exact).
    decode: Callable[[bytes], Any] = json.loads
    # The list below the module's Sender URL (Payments: "/terminals").
    path: str = ""
    # How a page becomes writes: by the parties the objects name, by default.
    of_page: PageCommands = commands_of_page
    # The one OCPI version the module exists in, read as is (Payments: 2.3.0).
    only_version: str | None = None


def sender_url(partner: PartnerState, module: PullModule) -> str:
    """The partner's Sender list of ``module`` (``module.path`` below its URL)."""
    for endpoint in partner.endpoints:
        if endpoint.identifier == module.identifier and endpoint.role == "SENDER":
            url = str(endpoint.url)
            return url.rstrip("/") + module.path if module.path else url
    raise LookupError(
        f"partner {partner.partner_id} offers no {module.identifier} Sender interface"
    )


def _location(item: dict[str, Any], origin: Origin) -> Pulled:
    ref = LocationObjectRef(
        country_code=str(item.get("country_code")),
        party_id=str(item.get("party_id")),
        location_id=str(item.get("id")),
    )
    command = PutObject(ref, item, origin)
    return Pulled(
        ref.location_key,
        lambda state, now: locations.decide(state, command, now),
        f"{ref.country_code}/{ref.party_id}/{ref.location_id}",
    )


def _tariff(item: dict[str, Any], origin: Origin) -> Pulled:
    ref = TariffRef(
        country_code=str(item.get("country_code")),
        party_id=str(item.get("party_id")),
        tariff_id=str(item.get("id")),
    )
    command = PutTariff(ref, item, origin)
    return Pulled(
        ref.tariff_key,
        lambda state, now: tariffs.decide(state, command, now),
        f"{ref.country_code}/{ref.party_id}/{ref.tariff_id}",
    )


def _token(item: dict[str, Any], origin: Origin) -> Pulled:
    ref = TokenRef(
        country_code=str(item.get("country_code")),
        party_id=str(item.get("party_id")),
        uid=str(item.get("uid")),
        type=item.get("type", "RFID"),
    )
    command = PutToken(ref, item, origin)
    return Pulled(
        ref.key,
        lambda state, now: tokens.decide(state, command, now),
        f"{ref.country_code}/{ref.party_id}/{ref.uid} ({ref.type.value})",
    )


def _not_before_consulted(state: Any, now: datetime) -> Decision[Any]:
    raise AssertionError("decided before its states were consulted")


def _session(item: dict[str, Any], origin: Origin) -> Pulled:
    ref = SessionRef(
        country_code=str(item.get("country_code")),
        party_id=str(item.get("party_id")),
        session_id=str(item.get("id")),
    )

    async def consult(c: Consulted) -> Judge:
        command = sessions.put_session(ref, item, origin)  # ValidationError: 2001
        billing = await session_billing(c.write_path, command, c.us)
        as_held = to_session_json(command.session)

        def judge(state: Any, now: datetime) -> Decision[Any]:
            if state == as_held:
                return Decision([], UNCHANGED)
            return sessions.decide(state, command, now, billing)

        return judge

    return Pulled(
        ref.session_key,
        _not_before_consulted,
        f"{ref.country_code}/{ref.party_id}/{ref.session_id}",
        consult,
    )


def _cdr(item: dict[str, Any], origin: Origin) -> Pulled:
    key = cdr_key(str(item.get("country_code")), str(item.get("party_id")), str(item.get("id")))

    async def consult(c: Consulted) -> Judge:
        cdr = Cdr.model_validate(item)  # ValidationError: 2001
        command = await cdr_receipt(
            c.write_path,
            cdr,
            poster_owns=c.partner.owns,
            us=c.us,
            tolerance=c.cdr_tolerance,
            correlation_id=origin.correlation_id,
        )

        def judge(state: Any, now: datetime) -> Decision[Any]:
            # CDRs are immutable (mod_cdrs): one held under this key is the
            # one the partner sent before; the receiver would refuse it.
            if state is not None:
                return Decision([], UNCHANGED)
            return cdrs.decide_receive(state, command, now)

        return judge

    return Pulled(
        key,
        _not_before_consulted,
        f"{item.get('country_code')}/{item.get('party_id')}/{item.get('id')}",
        consult,
    )


def _no_party(item: dict[str, Any], origin: Origin) -> Pulled:
    raise AssertionError("a module whose objects name no party is read by sender_owned")


class OwnedJudge(Protocol):
    """The decision on one object a partner listed, from its held state
    (``payments.decide_pulled_terminal`` and ``_advice``)."""

    def __call__(
        self, state: Any, /, *, ptp: PartnerState, item: Any, now: datetime, origin: Origin
    ) -> Decision[Any]: ...


def sender_owned(key: Callable[[str, str], str], judge: OwnedJudge) -> PageCommands:
    """Writes for a module whose objects name no party (Payments: the PTP
    owns them): each object the partner lists is its own, keyed under the
    partner by its id; one without an id is named and skipped."""

    def of_page(
        partner: PartnerState, module: PullModule, items: Sequence[Any], correlation_id: str
    ) -> tuple[list[Pulled], list[str]]:
        role = partner.roles[0]
        origin = Origin(
            Party(country_code=fold(role.country_code), party_id=fold(role.party_id)),
            correlation_id,
        )
        commands: list[Pulled] = []
        skipped: list[str] = []
        for item in items:
            oid = item.get(module.id_field) if isinstance(item, dict) else None
            if not isinstance(oid, str) or not oid:
                skipped.append(f"{partner.partner_id}/{oid}: invalid {module.id_field}")
                continue

            def decide(state: Any, now: datetime, item: Any = item) -> Decision[Any]:
                return judge(state, ptp=partner, item=item, now=now, origin=origin)

            commands.append(
                Pulled(key(partner.partner_id, oid), decide, f"{partner.partner_id}/{oid}")
            )
        return commands, skipped

    return of_page


LOCATIONS_PULL = PullModule("locations", "locations", "CPO", "id", locations.SLICE, _location)
TARIFFS_PULL = PullModule("tariffs", "tariffs", "CPO", "id", tariffs.SLICE, _tariff, loads_exact)
TOKENS_PULL = PullModule("tokens", "tokens", "EMSP", "uid", tokens.SLICE, _token)
SESSIONS_PULL = PullModule("sessions", "sessions", "CPO", "id", sessions.SLICE, _session)
# Exact numbers, as the CDRs receiver reads its body (prices are reconciled).
CDRS_PULL = PullModule("cdrs", "cdrs", "CPO", "id", cdrs.SLICE, _cdr, loads_exact)
# A PTP's Payments Sender (mod_payments): there is no PTP role in OCPI's
# Role enum, so the partner's first role is addressed.
PAYMENT_TERMINALS_PULL = PullModule(
    "payment-terminals",
    "payments",
    "PTP",
    "terminal_id",
    payments.TERMINALS,
    _no_party,
    path="/terminals",
    of_page=sender_owned(terminal_key, payments.decide_pulled_terminal),
    only_version="2.3.0",
)
# Exact numbers: total_costs is money.
PAYMENT_ADVICES_PULL = PullModule(
    "payment-advices",
    "payments",
    "PTP",
    "id",
    payments.ADVICES,
    _no_party,
    loads_exact,
    path="/financial-advice-confirmations",
    of_page=sender_owned(advice_key, payments.decide_pulled_advice),
    only_version="2.3.0",
)
PULLS = {
    m.name: m
    for m in (
        LOCATIONS_PULL,
        TARIFFS_PULL,
        TOKENS_PULL,
        SESSIONS_PULL,
        CDRS_PULL,
        PAYMENT_TERMINALS_PULL,
        PAYMENT_ADVICES_PULL,
    )
}
# Modules whose Sender list is asked for a date range by default (their
# lists grow without end; mod_sessions requires date_from).
DATED = frozenset({"sessions", "cdrs", "payment-advices"})


async def crawl(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    decode: Callable[[bytes], Any] = json.loads,
) -> AsyncIterator[Page]:
    """Yield the pages of a Sender list, following ``Link`` headers;
    ``since``/``until`` are ``date_from`` (inclusive) and ``date_to``
    (exclusive) of the first request."""
    first: dict[str, str] = {}
    if since is not None:
        first["date_from"] = format_ocpi_datetime(since)
    if until is not None:
        first["date_to"] = format_ocpi_datetime(until)
    params: dict[str, str] | None = first or None
    next_url: str | None = url
    while next_url is not None:
        request_headers = {**headers, "X-Request-ID": str(uuid.uuid4())}
        try:
            resp = await client.get(next_url, headers=request_headers, params=params)
        except httpx.HTTPError as exc:
            raise PartnerCallError(f"GET {next_url}: {type(exc).__name__}") from exc
        params = None  # the next link carries the filters itself
        try:
            body = decode(resp.content)
        except ValueError as exc:
            raise PartnerCallError(f"GET {next_url}: HTTP {resp.status_code}, not JSON") from exc
        if resp.status_code != 200 or not isinstance(body, dict) or body.get("status_code") != 1000:
            code = body.get("status_code") if isinstance(body, dict) else None
            raise PartnerCallError(f"GET {next_url}: HTTP {resp.status_code}, OCPI {code}")
        items = body.get("data") or []
        if not isinstance(items, list):
            raise PartnerCallError(f"GET {next_url}: data is not a list")
        total = resp.headers.get("X-Total-Count")
        yield Page(items=items, total=int(total) if total and total.isdigit() else None)
        link = resp.links.get("next")
        next_url = link.get("url") if link else None


def _fields(exc: ValidationError, shown: int = 5) -> str:
    """The fields a refused object got wrong, by path, for the summary an
    operator reads: which fields to ask the partner about, not a count."""
    paths = [".".join(str(p) for p in e["loc"]) or "(object)" for e in exc.errors()]
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(dict.fromkeys(paths[:shown])) + more


async def _record(
    consulted: Consulted,
    slice_: Slice[Any],
    pulled: Pulled,
    now: datetime,
    limit: asyncio.Semaphore,
) -> str | None:
    """Record one PUT; ``UNCHANGED`` when nothing needed recording, else
    the reason it was skipped, if it was."""
    async with limit:
        try:
            judge = pulled.decide if pulled.consult is None else await pulled.consult(consulted)
            answer = await consulted.write_path.write(slice_, pulled.key, lambda s: judge(s, now))
        except ValidationError as exc:
            return f"{pulled.named}: invalid {_fields(exc)}"
        except RefusedError as exc:
            return f"{pulled.named}: {exc.message}"
    return UNCHANGED if answer == UNCHANGED else None


def in_our_model(
    edge: WireVersion,
    module: PullModule,
    items: Sequence[Any],
    owner: tuple[str, str],
    now: datetime,
    contexts: Sequence[EdgeContext | str | None] = (),
) -> tuple[list[Any], list[str]]:
    """A page of a partner of ``edge``'s version in our model (docs/adr/0045;
    2.1.1 objects name no party: ``owner``, the partner's), and a reason for
    each object its version refuses. ``contexts``: per item, what its
    version needs beside it (producers/edge_context.py), or the reason it
    could not be found."""
    if edge.version == CORE_VERSION:
        return list(items), []
    kinds = {
        "tokens": Kind.TOKEN,
        "tariffs": Kind.TARIFF,
        "sessions": Kind.SESSION,
        "cdrs": Kind.CDR,
    }
    kind = kinds.get(module.identifier, Kind.LOCATION)
    ours: list[Any] = []
    refused: list[str] = []
    for i, item in enumerate(items):
        context = contexts[i] if i < len(contexts) else None
        named = item.get(module.id_field) if isinstance(item, dict) else None
        if isinstance(context, str):
            refused.append(f"{named}: {context}")
            continue
        try:
            ours.append(
                edge.object_in(kind, item, owner=owner, patch=False, now=now, context=context)
            )
        except ValidationError as exc:
            named = item.get(module.id_field) if isinstance(item, dict) else None
            refused.append(f"{named}: invalid in OCPI {edge.version}: {_fields(exc)}")
    return ours, refused


# The modules whose objects a version may name a token in by auth_id (2.1.1).
_EMBEDDING = frozenset({"sessions", "cdrs"})


async def _contexts_in(
    edge: WireVersion, items: Sequence[Any], tokens: TokenDirectory | None, us: Party
) -> list[EdgeContext | str | None]:
    """Per item, what its version needs beside it, or why it is missing."""
    if not edge.embeds_location or tokens is None:
        return []
    found: list[EdgeContext | str | None] = []
    for item in items:
        try:
            found.append(await context_in(edge, item, tokens, us))
        except RefusedError as exc:
            found.append(exc.message)
    return found


async def sync(
    module: PullModule,
    partner: PartnerState,
    token: str,
    write_path: WritePath,
    *,
    us: Party,
    clock: Callable[[], datetime],
    since: datetime | None = None,
    until: datetime | None = None,
    timeout_s: float = 30.0,
    on_page: Callable[[int, int | None], None] = lambda done, total: None,
    in_flight: int = 16,
    cdr_tolerance: Decimal = Decimal("0.01"),
    allow_private_urls: bool = False,
    token_directory: TokenDirectory | None = None,
) -> SyncReport:
    """Crawl the partner's objects of ``module`` into our log through the write path
    (``in_flight`` objects at a time; every one acknowledged before the
    next page); ``on_page(objects seen, total)`` after each page. The token
    is only ever put in the header. ``token_directory``: our tokens by contract id,
    for a version that names a session's token by ``auth_id`` (2.1.1)."""
    url = sender_url(partner, module)
    to = next((r for r in partner.roles if r.role == module.partner_role), None)
    to = to or partner.roles[0]
    edge = WIRES[partner.version or CORE_VERSION]
    if module.only_version is not None and edge.version != module.only_version:
        raise LookupError(
            f"{module.identifier} is an OCPI {module.only_version} module; "
            f"{partner.partner_id} registered for OCPI {edge.version}"
        )
    if edge.version != CORE_VERSION and module.identifier not in edge.modules:
        raise LookupError(f"we do not read the {module.identifier} module in OCPI {edge.version}")
    headers = {
        "Authorization": authorization(token, raw=edge.raw_token),
        "X-Correlation-ID": str(uuid.uuid4()),
    }
    if edge.routing_headers:
        headers |= {
            "OCPI-from-country-code": us.country_code,
            "OCPI-from-party-id": us.party_id,
            "OCPI-to-country-code": to.country_code,
            "OCPI-to-party-id": to.party_id,
        }
    report = SyncReport()
    limit = asyncio.Semaphore(in_flight)
    consulted = Consulted(write_path, us, partner, cdr_tolerance)
    seen = 0
    # The Sender's URL and every ``Link`` after it: checked and pinned.
    async with partner_http(timeout_s, allow_private=allow_private_urls) as client:
        pages = crawl(client, url, headers, since=since, until=until, decode=module.decode)
        async for page in pages:
            now = clock()
            contexts = (
                await _contexts_in(edge, page.items, token_directory, us)
                if module.identifier in _EMBEDDING
                else []
            )
            if module.only_version is None:
                owner = (to.country_code, to.party_id)
                items, unreadable = in_our_model(edge, module, page.items, owner, now, contexts)
            else:
                items, unreadable = list(page.items), []
            commands, skipped = module.of_page(partner, module, items, headers["X-Correlation-ID"])
            skipped += unreadable
            outcomes = await asyncio.gather(
                *(_record(consulted, module.pulled_slice, c, now, limit) for c in commands)
            )
            refused = [reason for reason in outcomes if reason not in (None, UNCHANGED)]
            unchanged = sum(1 for reason in outcomes if reason == UNCHANGED)
            report.pages += 1
            report.recorded += len(commands) - len(refused) - unchanged
            report.unchanged += unchanged
            report.skipped += [r for r in refused if r is not None] + skipped
            seen += len(page.items)
            on_page(seen, page.total)
    log.info(
        "partner_synced",
        module=module.name,
        partner_id=partner.partner_id,
        pages=report.pages,
        recorded=report.recorded,
        unchanged=report.unchanged,
        skipped=len(report.skipped),
    )
    return report
