"""FastAPI dependencies: the container's parts as ``Annotated`` aliases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from ocpi_hub.bootstrap import Container
from producers.log import EventLog
from projections.mongo.locations import LocationViewQuery
from projections.mysql.chargers import ChargerQuery


def container(request: Request) -> Container:
    built: Container = request.app.state.container
    return built


def _event_log(request: Request) -> EventLog:
    log: EventLog = request.app.state.event_log
    return log


def _locations(c: Annotated[Container, Depends(container)]) -> LocationViewQuery:
    return c.locations


def _chargers(c: Annotated[Container, Depends(container)]) -> ChargerQuery:
    return c.chargers


def _now() -> datetime:
    return datetime.now(UTC)


def _correlation_id(request: Request) -> str:
    value: str = request.state.correlation_id
    return value


ContainerDep = Annotated[Container, Depends(container)]
EventLogDep = Annotated[EventLog, Depends(_event_log)]
LocationViewDep = Annotated[LocationViewQuery, Depends(_locations)]
ChargerQueryDep = Annotated[ChargerQuery, Depends(_chargers)]
NowDep = Annotated[datetime, Depends(_now)]
CorrelationIdDep = Annotated[str, Depends(_correlation_id)]
