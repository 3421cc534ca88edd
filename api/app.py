"""The HTTP API: OCPI for partners, ops reads, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import afir as afir_feed
from api import health
from api.admin import billing as admin_billing
from api.admin.charts import ChartSamples, projection_lag, sample_forever
from api.admin.live import EvseStatusHub, OnDemandFeed, follow_evse_status
from api.admin.pages import install_admin
from api.admin.sessions import InMemorySessionStore, RedisSessionStore, SessionPolicy, SessionStore
from api.errors import install_error_handlers
from api.middleware import install_body_limit, install_request_ids
from api.ocpi import cdrs as ocpi_cdrs
from api.ocpi import charging_profiles as ocpi_charging_profiles
from api.ocpi import credentials, locations, versions
from api.ocpi import hub_client_info as ocpi_hub_client_info
from api.ocpi import payments as ocpi_payments
from api.ocpi import received_commands as ocpi_received_commands
from api.ocpi import sent_charging_profiles as ocpi_sent_charging_profiles
from api.ocpi import sent_commands as ocpi_sent_commands
from api.ocpi import sessions as ocpi_sessions
from api.ocpi import tariffs as ocpi_tariffs
from api.ocpi import tokens as ocpi_tokens
from api.ops import audit as ops_audit
from api.ops import billing as ops_billing
from api.ops import cdrs as ops_cdrs
from api.ops import charge_points as ops_charge_points
from api.ops import charging_profiles as ops_charging_profiles
from api.ops import credit_notes as ops_credit_notes
from api.ops import evses, sites
from api.ops import invoice_files as ops_invoice_files
from api.ops import locations as ops_locations
from api.ops import partners as ops_partners
from api.ops import payments as ops_payments
from api.ops import received_commands as ops_received_commands
from api.ops import sent_commands as ops_sent_commands
from api.ops import tariffs as ops_tariffs
from api.ops import tokens as ops_tokens
from api.ops import transactions as ops_transactions
from api.public import activation, discovery
from api.rate_limit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter
from api.writes import with_body_schemas
from ocpi_hub.bootstrap import (
    Container,
    api_keys,
    api_process,
    build_container,
    partner_tokens,
)
from ocpi_hub.settings import Settings, get_settings
from producers.decision_store import InMemoryDecisionStore
from producers.log import EventLog, InMemoryEventLog, InMemoryLogHistory
from producers.partner_stats import PullStamps, RedisPushStats
from producers.write_path import WritePath
from schemas.ocpi.locations import EvseStatus


def create_app(
    settings: Settings | None = None,
    *,
    container: Container | None = None,
    event_log: EventLog | None = None,
    write_path: WritePath | None = None,
    sessions: SessionStore | None = None,
    login_limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the app. Tests may hand in a container, a fake event log (then
    the write path runs on it and an in-memory decision store unless one is
    given; the dashboard's sessions and sign-in throttle in memory unless
    given); the defaults are the real adapters built from settings."""
    settings = settings or get_settings()
    policy = SessionPolicy(settings.admin_session_idle_s, settings.admin_session_absolute_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if event_log is not None:
            # Tests without services: the write path on the fake log and an
            # in-memory decision store unless one is given.
            app.state.container = container or build_container(settings)
            app.state.event_log = event_log
            history = InMemoryLogHistory(
                event_log if isinstance(event_log, InMemoryEventLog) else InMemoryEventLog()
            )
            app.state.write_path = write_path or WritePath(
                event_log, InMemoryDecisionStore(), history
            )
            app.state.partner_tokens = partner_tokens(settings, app.state.write_path)
            app.state.api_keys = api_keys(settings, app.state.write_path)
            app.state.sessions = sessions or InMemorySessionStore(policy)
            app.state.login_limiter = login_limiter or InMemoryRateLimiter()
            app.state.evse_hub = EvseStatusHub(settings.admin_live_buffer)
            app.state.evse_feed = OnDemandFeed(app.state.evse_hub, None, idle_s=0)
            yield
            return
        async with api_process(settings) as built:
            app.state.container = built
            app.state.event_log = built.event_log
            app.state.write_path = built.write_path
            app.state.partner_tokens = built.partner_tokens
            app.state.api_keys = built.api_keys
            prefix = settings.topic_prefix
            app.state.sessions = sessions or RedisSessionStore(built.redis, prefix, policy)
            app.state.login_limiter = login_limiter or RedisRateLimiter(
                built.redis, prefix, name="admin-login"
            )
            app.state.partner_stats = RedisPushStats(built.redis, prefix)
            app.state.pull_stamps = PullStamps(app.state.partner_stats)
            hub = app.state.evse_hub = EvseStatusHub(settings.admin_live_buffer)
            app.state.chart_samples = ChartSamples(
                built.redis, prefix, settings.admin_chart_sample_s
            )
            async with (
                _following(hub, settings) as app.state.evse_feed,
                _sampling(app.state.chart_samples, built),
            ):
                yield

    app = FastAPI(title="ocpi-hub", version="0.1.0", lifespan=lifespan)
    app.openapi = with_body_schemas(app.openapi)  # type: ignore[method-assign]
    install_error_handlers(app)
    install_body_limit(app, settings.max_message_bytes)
    install_request_ids(app)
    # Routes are matched in order: partners' Location updates, by far the
    # most frequent request, are tried first.
    app.include_router(locations.receiver)
    app.include_router(health.router)
    app.include_router(credentials.router)
    app.include_router(ocpi_hub_client_info.router)
    app.include_router(versions.router)
    app.include_router(locations.sender)
    app.include_router(evses.router)
    app.include_router(sites.router)
    app.include_router(ops_locations.router)
    app.include_router(ocpi_tariffs.receiver)
    app.include_router(ocpi_tariffs.sender)
    app.include_router(ops_tariffs.router)
    app.include_router(ocpi_tokens.receiver)
    app.include_router(ocpi_tokens.sender)
    app.include_router(ops_tokens.router)
    app.include_router(ocpi_sessions.receiver)
    app.include_router(ocpi_sessions.sender)
    app.include_router(ops_transactions.router)
    app.include_router(ocpi_cdrs.receiver)
    app.include_router(ocpi_cdrs.sender)
    app.include_router(ops_cdrs.router)
    app.include_router(discovery.router)
    app.include_router(afir_feed.router)
    app.include_router(ops_billing.router)
    app.include_router(ops_billing.invoices_router)
    app.include_router(ops_invoice_files.router)
    app.include_router(ops_credit_notes.router)
    app.include_router(activation.router)
    app.include_router(ocpi_sent_commands.sender)
    app.include_router(ops_sent_commands.router)
    app.include_router(ocpi_received_commands.receiver)
    app.include_router(ocpi_charging_profiles.receiver)
    app.include_router(ocpi_sent_charging_profiles.sender)
    app.include_router(ops_charging_profiles.router)
    app.include_router(ops_received_commands.router)
    app.include_router(ops_received_commands.given)
    app.include_router(ops_charge_points.router)
    app.include_router(ops_audit.router)
    app.include_router(ops_partners.router)
    app.include_router(ocpi_payments.router)
    app.include_router(ops_payments.router)
    app.include_router(admin_billing.router)
    install_admin(app)
    return app


@asynccontextmanager
async def _sampling(samples: ChartSamples, c: Container) -> AsyncIterator[None]:
    """The dashboard charts' sample, taken by whichever API process claims
    each interval (api/admin/charts.py)."""

    async def take() -> dict[str, Any]:
        counts = await run_in_threadpool(c.ops.status_counts)
        # Every status, zero included: a line drops to zero rather than ending.
        sample: dict[str, Any] = {"statuses": {s.value: 0 for s in EvseStatus} | counts}
        if c.log_status is not None:
            sample["accepted"] = await c.log_status.accepted_total()
            sample["lag"] = projection_lag(await c.log_status.groups())
        return sample

    stop = asyncio.Event()
    task = asyncio.create_task(sample_forever(samples, take, c.settings.admin_chart_sample_s, stop))
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def _following(hub: EvseStatusHub, settings: Settings) -> AsyncIterator[OnDemandFeed]:
    """The status board's feed of this process, run while boards watch."""

    async def follow(positioned: asyncio.Event) -> None:
        await follow_evse_status(
            hub, settings.kafka_bootstrap, settings.topic_prefix, started=positioned
        )

    feed = OnDemandFeed(
        hub,
        follow,
        idle_s=settings.admin_live_idle_s,
        restart_s=settings.restart_initial_s,
        restart_max_s=settings.restart_max_s,
    )
    try:
        yield feed
    finally:
        await feed.close()
