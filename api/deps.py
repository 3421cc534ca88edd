"""FastAPI dependencies: the container's parts as ``Annotated`` aliases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from api.rate_limit import RateLimiter
from ocpi_hub.bootstrap import Container
from ocpi_hub.settings import Settings
from producers.authorization import AuthorizationService
from producers.log import EventLog
from producers.lookups import LookupCache
from producers.partners import PartnerState
from producers.sent_commands import CommandChannel, CommandIds
from projections.mongo.audit import AuditQuery
from projections.mongo.cdrs import CdrViewQuery
from projections.mongo.charge_points import ChargePointViewQuery
from projections.mongo.locations import LocationViewQuery
from projections.mongo.sent_commands import SentCommandViewQuery
from projections.mongo.sessions import SessionViewQuery
from projections.mongo.tariffs import TariffViewQuery
from projections.mongo.tokens import TokenViewQuery
from projections.mysql.sites import OpsQuery


async def container(request: Request) -> Container:
    built: Container = request.app.state.container
    return built


async def _event_log(request: Request) -> EventLog:
    log: EventLog = request.app.state.event_log
    return log


async def _locations(c: Annotated[Container, Depends(container)]) -> LocationViewQuery:
    return c.locations


async def _tariffs(c: Annotated[Container, Depends(container)]) -> TariffViewQuery:
    return c.tariffs


async def _ops(c: Annotated[Container, Depends(container)]) -> OpsQuery:
    return c.ops


async def _rate_limiter(c: Annotated[Container, Depends(container)]) -> RateLimiter:
    return c.rate_limiter


async def _settings(c: Annotated[Container, Depends(container)]) -> Settings:
    return c.settings


async def _tokens(c: Annotated[Container, Depends(container)]) -> TokenViewQuery:
    return c.tokens


async def _authorization(c: Annotated[Container, Depends(container)]) -> AuthorizationService:
    return c.authorization


async def _sessions(c: Annotated[Container, Depends(container)]) -> SessionViewQuery:
    return c.sessions


async def _cdrs(c: Annotated[Container, Depends(container)]) -> CdrViewQuery:
    return c.cdrs


async def _sent_commands(c: Annotated[Container, Depends(container)]) -> SentCommandViewQuery:
    return c.sent_commands


async def _command_channel(c: Annotated[Container, Depends(container)]) -> CommandChannel:
    return c.command_channel


async def _command_ids(c: Annotated[Container, Depends(container)]) -> CommandIds:
    return c.command_ids


async def _charge_points(c: Annotated[Container, Depends(container)]) -> ChargePointViewQuery:
    return c.charge_points


async def _audit(c: Annotated[Container, Depends(container)]) -> AuditQuery:
    return c.audit


async def _partner_tokens(request: Request) -> LookupCache[PartnerState]:
    tokens: LookupCache[PartnerState] = request.app.state.partner_tokens
    return tokens


async def _now() -> datetime:
    return datetime.now(UTC)


async def _correlation_id(request: Request) -> str:
    value: str = request.state.correlation_id
    return value


ContainerDep = Annotated[Container, Depends(container)]
EventLogDep = Annotated[EventLog, Depends(_event_log)]
LocationViewDep = Annotated[LocationViewQuery, Depends(_locations)]
OpsQueryDep = Annotated[OpsQuery, Depends(_ops)]
NowDep = Annotated[datetime, Depends(_now)]
CorrelationIdDep = Annotated[str, Depends(_correlation_id)]
TariffViewDep = Annotated[TariffViewQuery, Depends(_tariffs)]
TokenViewDep = Annotated[TokenViewQuery, Depends(_tokens)]
AuthorizationDep = Annotated[AuthorizationService, Depends(_authorization)]
SessionViewDep = Annotated[SessionViewQuery, Depends(_sessions)]
CdrViewDep = Annotated[CdrViewQuery, Depends(_cdrs)]
RateLimiterDep = Annotated[RateLimiter, Depends(_rate_limiter)]
SettingsDep = Annotated[Settings, Depends(_settings)]
SentCommandViewDep = Annotated[SentCommandViewQuery, Depends(_sent_commands)]
CommandChannelDep = Annotated[CommandChannel, Depends(_command_channel)]
CommandIdsDep = Annotated[CommandIds, Depends(_command_ids)]
AuditDep = Annotated[AuditQuery, Depends(_audit)]
ChargePointViewDep = Annotated[ChargePointViewQuery, Depends(_charge_points)]
# Partners by the hash of the token they present (api/auth.py).
PartnerTokensDep = Annotated[LookupCache[PartnerState], Depends(_partner_tokens)]
