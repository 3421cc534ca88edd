"""``ocpi-hub``: the platform's one command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer

from ocpi_hub import collector
from ocpi_hub.logging import configure_logging
from ocpi_hub.settings import Settings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _settings() -> Settings:
    """The settings, once every command has imported what it runs: logging
    configured and the garbage collector tuned (ocpi_hub/collector.py)."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    collector.tune(settings.gc_young_threshold)
    return settings


@app.command()
def api(
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="API processes sharing the port (default: OCPI_HUB_API_WORKERS, 1)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OCPI, ops, health)."""
    import uvicorn

    settings = _settings()
    uvicorn.run(
        # A factory by import string: with several workers each process
        # builds its own app, so the lifespan opens one set of clients per
        # process (none is shared across a fork).
        f"{__name__}:api_app",
        factory=True,
        workers=workers or settings.api_workers,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
    )


def api_app() -> FastAPI:
    """The API of one ``ocpi-hub api`` process (uvicorn calls it in each worker)."""
    from api.app import create_app

    return create_app(_settings())


@app.command()
def processors() -> None:
    """Run the Faust processors (EVSE status, sessions, CDRs, command results, expiries)."""
    from faust import Worker

    from ocpi_hub.bootstrap import processors_process

    settings = _settings()
    with processors_process(settings) as faust_app:
        Worker(faust_app, loglevel=settings.log_level, quiet=True).execute_from_commandline()


def _kept_running(name: str, once: Callable[[Settings, asyncio.Event], Awaitable[None]]) -> None:
    """Run ``once`` until SIGINT or SIGTERM; when it fails it is started
    again, with backoff, by ``keep_running`` (its clients opened anew, so a
    store or broker lost at start-up is retried too)."""
    from ocpi_hub.bootstrap import until_signalled
    from ocpi_hub.retrying import keep_running

    settings = _settings()

    async def main() -> None:
        stop = until_signalled()
        await keep_running(
            lambda: once(settings, stop),
            stop,
            name=name,
            initial_s=settings.restart_initial_s,
            max_s=settings.restart_max_s,
        )

    asyncio.run(main())


@app.command()
def projections() -> None:
    """Keep the MongoDB and MySQL views up to date from the event topics."""

    async def once(settings: Settings, stop: asyncio.Event) -> None:
        from ocpi_hub.bootstrap import projections_process
        from projections.runner import run_live

        async with projections_process(settings) as p:
            await run_live(
                settings.kafka_bootstrap,
                settings.topic_prefix,
                p.live.writers,
                batch_size=settings.projection_batch_size,
                poll_ms=settings.projection_poll_ms,
                stop=stop,
                dead_letters=p.dead_letters,
                retry_initial_s=settings.projection_retry_initial_s,
                retry_max_s=settings.projection_retry_max_s,
                settle=p.live.settle,
                linger_ms=settings.projection_linger_ms,
            )

    _kept_running("projections", once)


@app.command("billing-worker")
def billing_worker() -> None:
    """Corporate billing's background work (docs/adr/0035): send the
    activation e-mails of invited members, once per invitation, to the SMTP
    server of the settings; turn members' CDRs into charges."""

    async def once(settings: Settings, stop: asyncio.Event) -> None:
        from ocpi_hub.bootstrap import billing_worker_process

        async with billing_worker_process(settings) as worker:
            await worker.run(stop)

    _kept_running("billing-worker", once)


billing_app = typer.Typer(no_args_is_help=True, help="Corporate billing: close a month.")
app.add_typer(billing_app, name="billing")


@billing_app.command("close-month")
def billing_close_month(
    month: Annotated[str, typer.Option(help="The month to invoice, YYYY-MM (UTC).")],
) -> None:
    """Invoice a month (docs/adr/0036): one invoice per corporation with
    something to bill, numbered without gaps. A run that stopped half-way is
    completed by the next; a month closed already is refused (exit 1)."""
    import getpass
    import uuid
    from datetime import UTC, datetime

    from ocpi_hub.bootstrap import opened, our_party
    from producers import invoice_numbers
    from producers.billing.aggregate import SLICE as BILLING_SLICE
    from producers.invoicing import close_month
    from producers.write_path import Origin, acting_as
    from schemas.events import Actor

    settings = _settings()
    origin = Origin(our_party(settings), str(uuid.uuid4()))

    async def work() -> Any:
        async with opened(settings, [BILLING_SLICE, invoice_numbers.SLICE]) as c:
            with acting_as(Actor(kind="cli", id=getpass.getuser()[:100] or "unknown")):
                return await close_month(
                    c.write_path, month=month, origin=origin, now=datetime.now(UTC)
                )

    report = _refused(lambda: asyncio.run(work()))
    typer.echo(json.dumps(report.shown()))


@app.command()
def push() -> None:
    """Push our changes to partners' Receivers (locations and EVSE statuses to
    every partner, sessions and CDRs to each token's eMSP) and command
    results to their response_url."""

    async def once(settings: Settings, stop: asyncio.Event) -> None:
        from ocpi_hub.bootstrap import push_process

        async with push_process(settings) as pushers:
            await pushers.run(stop)

    _kept_running("push", once)


@app.command()
def gateway() -> None:
    """Serve OCPP 1.6J chargers over WebSocket and run their commands (ADR 0018)."""
    from gateway.charging_profiles import ProfileRunner
    from gateway.commands import CommandRunner
    from gateway.server import run
    from ocpi_hub.bootstrap import gateway_process, until_signalled

    settings = _settings()

    async def main() -> None:
        async with gateway_process(settings) as gw:

            async def consume() -> None:
                # Commands and charging profiles side by side; one failing
                # ends both, and ``run`` starts them again with backoff.
                async with asyncio.TaskGroup() as group:
                    group.create_task(CommandRunner(gw).consume())
                    group.create_task(ProfileRunner(gw).consume())

            await run(gw, until_signalled(), consume)

    asyncio.run(main())


@app.command()
def replay(
    into: Annotated[
        str | None,
        typer.Option(
            help="Rebuild into this MongoDB database and MySQL database (created "
            "fresh) instead of wiping and rebuilding the live views."
        ),
    ] = None,
    compare: Annotated[
        bool, typer.Option(help="With --into: compare the rebuilt views with the live ones.")
    ] = False,
) -> None:
    """Rebuild every view from offset zero of the event topics."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ocpi_hub.bootstrap import dead_letter_log, replay_views
    from ocpi_hub.compare import compare_views
    from projections.dead_letters import StoreInterruptedError
    from projections.runner import replay as run_replay

    settings = _settings()
    log = structlog.get_logger("ocpi_hub.replay")
    if into is None and compare:
        raise typer.BadParameter("--compare needs --into")
    with replay_views(settings, into) as (target, live):
        log.info("replay_start", target=into or "live")
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
            console=None,
        ) as progress:
            task = progress.add_task("replaying events", total=None)

            async def rebuild() -> tuple[int, int]:
                # In place, what cannot be applied is quarantined on the
                # dead-letter topic; into a scratch namespace, only logged.
                async with dead_letter_log(settings, publish=into is None) as dead_letters:
                    count = await run_replay(
                        settings.kafka_bootstrap,
                        settings.topic_prefix,
                        target.writers,
                        batch_size=settings.projection_replay_batch_size,
                        on_progress=lambda done, total: progress.update(
                            task, completed=done, total=total
                        ),
                        dead_letters=dead_letters,
                        retry_initial_s=settings.projection_retry_initial_s,
                        retry_max_s=settings.projection_retry_max_s,
                        settle=target.settle,
                    )
                    return count, dead_letters.count

            try:
                count, quarantined = asyncio.run(rebuild())
            except StoreInterruptedError as exc:
                log.error("replay_interrupted", error=str(exc))
                typer.echo(
                    "replay: a view store went away during the rebuild and may have lost "
                    "what it acknowledged; nothing is reported complete: run the replay again",
                    err=True,
                )
                raise typer.Exit(1) from exc
        result: dict[str, object] = {
            "events": count,
            "target": into or "live",
            "quarantined": quarantined,
        }
        if into is not None and compare:
            details: list[str] = []
            differences = compare_views(live, target, details=details)
            result["differences"] = differences
            if details:
                result["first_differing_fields"] = details
            typer.echo(json.dumps(result, default=str))
            if differences:
                raise typer.Exit(1)
            return
        typer.echo(json.dumps(result))


@app.command()
def topics() -> None:
    """Create the catalogued topics that are missing, and list the catalogue."""
    from producers.log import ensure_topics
    from schemas.topics import CATALOGUE

    settings = _settings()
    created = asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap, settings.topic_prefix, settings.topic_replication_factor
        )
    )
    for spec in CATALOGUE:
        name = settings.topic(spec.name)
        mark = "created" if name in created else "exists"
        typer.echo(f"{name}\t{spec.partitions} partitions\t{mark}\tkey: {spec.key}")


@app.command()
def migrate() -> None:
    """Bring the MySQL operational schema to the newest migration."""
    from ocpi_hub.bootstrap import mysql_engine
    from projections.mysql.migrate import migrate as run

    # A migration may alter a large table: the view writers' longer timeout.
    run(mysql_engine(_settings(), view_writer=True))
    typer.echo("mysql schema is at head")


partners_app = typer.Typer(
    no_args_is_help=True, help="Roaming partners: invite, register, update, unregister, list, sync."
)
app.add_typer(partners_app, name="partners")


async def _with_service(settings: Settings, work: Any) -> Any:
    """Run ``work(service)`` with the credentials service on the write path."""
    from ocpi_hub.bootstrap import credentials_service, opened
    from producers.partners import SLICE as PARTNERS_SLICE

    async with opened(settings, [PARTNERS_SLICE]) as c:
        return await work(credentials_service(c, c.write_path))


@partners_app.command("invite")
def partners_invite(
    country_code: Annotated[str, typer.Option(help="The partner's ISO 3166 alpha-2 code.")],
    party_id: Annotated[str, typer.Option(help="The partner's 3-character party id.")],
    role: Annotated[str, typer.Option(help="CPO, EMSP, HUB, NAP, NSP, OTHER or SCSP.")],
    partner_id: Annotated[str | None, typer.Option(help="Defaults to CC-PID.")] = None,
    legacy_token: Annotated[
        bool, typer.Option(help="Accept the partner's token un-encoded (OCPI 2.1 peers).")
    ] = False,
) -> None:
    """Issue a TOKEN_A for a new partner; prints {partner_id, token_a, versions_url}."""
    import uuid

    from ocpi_hub.secrets import hash_token, new_token
    from producers.partners import NotAllowedError
    from schemas.ocpi.credentials import Role

    settings = _settings()
    pid = partner_id or f"{country_code}-{party_id}".upper()
    token_a = new_token()

    async def work(service: Any) -> None:
        await service.invite(
            partner_id=pid,
            country_code=country_code,
            party_id=party_id,
            role=Role(role.upper()),
            token_a_hash=hash_token(token_a),
            legacy_token=legacy_token,
            correlation_id=str(uuid.uuid4()),
        )

    try:
        asyncio.run(_with_service(settings, work))
    except NotAllowedError as exc:
        raise typer.BadParameter(str(exc)) from exc
    # The token is printed once, to the operator, and stored only as a hash.
    typer.echo(
        json.dumps(
            {
                "partner_id": pid,
                "token_a": token_a,
                "versions_url": f"{settings.base_url}/ocpi/versions",
            }
        )
    )


@partners_app.command("register")
def partners_register(
    versions_url: Annotated[str, typer.Option(help="The partner's versions endpoint.")],
    token_a: Annotated[str, typer.Option(help="The TOKEN_A the partner gave us.")],
    partner_id: Annotated[str | None, typer.Option(help="Our name for the partner.")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="The partner's role (CPO or EMSP): needed when it speaks OCPI 2.1.1 only, "
            "which names no roles; else checked against its credentials."
        ),
    ] = None,
) -> None:
    """Register with a partner (we POST our credentials to them), in the
    highest OCPI version both sides speak."""
    from ocpi_hub.secrets import hash_token, new_token
    from producers.partner_client import PartnerCallError
    from producers.write_path import RefusedError, UnavailableError
    from schemas.ocpi.credentials import Role

    settings = _settings()
    our_token = new_token()
    partner_role = Role(role.upper()) if role else None

    async def work(service: Any) -> Any:
        return await service.register_with(
            versions_url=versions_url,
            token_a=token_a,
            our_token=our_token,
            our_token_hash=hash_token(our_token),
            partner_id=partner_id,
            role=partner_role,
        )

    try:
        state = asyncio.run(_with_service(settings, work))
    except (PartnerCallError, LookupError, RefusedError, UnavailableError) as exc:
        typer.echo(f"registration failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        json.dumps(
            {
                "partner_id": state.partner_id,
                "version": state.version,
                "roles": [r.model_dump(mode="json") for r in state.roles],
                "endpoints": len(state.endpoints),
            }
        )
    )


@partners_app.command("update")
def partners_update(
    partner_id: Annotated[str, typer.Argument(help="The partner, as `partners list` names it.")],
) -> None:
    """Give a registered partner a new token to call us with (credentials
    PUT towards it); its answer refreshes its token, version and endpoints."""
    from ocpi_hub.secrets import hash_token, new_token
    from producers.partner_client import PartnerCallError
    from producers.write_path import RefusedError, UnavailableError

    settings = _settings()
    token = new_token()

    async def work(service: Any) -> Any:
        return await service.update_with(
            partner_id, new_token=token, new_token_hash=hash_token(token)
        )

    try:
        state = asyncio.run(_with_service(settings, work))
    except (PartnerCallError, LookupError, RefusedError, UnavailableError) as exc:
        typer.echo(f"update failed (the old tokens stay in use): {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        json.dumps(
            {
                "partner_id": state.partner_id,
                "version": state.version,
                "endpoints": len(state.endpoints),
            }
        )
    )


@partners_app.command("unregister")
def partners_unregister(
    partner_id: Annotated[str, typer.Argument(help="The partner, as `partners list` names it.")],
    local_only: Annotated[
        bool,
        typer.Option("--local-only", help="Do not call the partner (it is gone for good)."),
    ] = False,
) -> None:
    """End a registration: credentials DELETE towards the partner, then ours."""
    from producers.partner_client import PartnerCallError
    from producers.write_path import RefusedError, UnavailableError

    settings = _settings()

    async def work(service: Any) -> None:
        await service.unregister_with(partner_id, tell_partner=not local_only)

    try:
        asyncio.run(_with_service(settings, work))
    except (PartnerCallError, LookupError, RefusedError, UnavailableError) as exc:
        typer.echo(f"unregister failed (still registered): {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"partner_id": partner_id, "status": "unregistered"}))


@partners_app.command("list")
def partners_list() -> None:
    """Every partner with its status, direction, OCPI version and roles
    (never its tokens)."""
    from producers.credentials import partners_in_log
    from producers.log import KafkaLogHistory

    settings = _settings()
    # From the log, not the view: a partner registered a moment ago is listed.
    history = KafkaLogHistory(settings.kafka_bootstrap, settings.topic_prefix)
    for p in asyncio.run(partners_in_log(history)):
        roles = ",".join(f"{r.role}:{r.country_code}-{r.party_id}" for r in p.roles)
        line = [p.partner_id, p.status, p.direction or "-", p.version or "-", roles or "-"]
        typer.echo("\t".join(line))


_PARTNER_ID = Annotated[str, typer.Argument(help="The partner, as `partners list` names it.")]
_SINCE = Annotated[
    str | None, typer.Option(help="Only objects changed since (OCPI DateTime, UTC).")
]
_SINCE_DATED = Annotated[
    str | None,
    typer.Option(
        "--since",
        "--date-from",
        help="date_from: only objects changed since (OCPI DateTime, UTC); "
        "default OCPI_HUB_PULL_SYNC_DEFAULT_DAYS (31) days ago.",
    ),
]
_UNTIL = Annotated[
    str | None,
    typer.Option(
        "--until",
        "--date-to",
        help="date_to: only objects changed before (OCPI DateTime, UTC); default: no end.",
    ),
]


@partners_app.command("sync-locations")
def partners_sync_locations(partner_id: _PARTNER_ID, since: _SINCE = None) -> None:
    """Pull a partner CPO's locations (all, or changed --since) into our log."""
    _pull("locations", partner_id, since)


@partners_app.command("sync-tariffs")
def partners_sync_tariffs(partner_id: _PARTNER_ID, since: _SINCE = None) -> None:
    """Pull a partner CPO's tariffs (all, or changed --since) into our log."""
    _pull("tariffs", partner_id, since)


@partners_app.command("sync-tokens")
def partners_sync_tokens(partner_id: _PARTNER_ID, since: _SINCE = None) -> None:
    """Pull a partner eMSP's tokens (all, or changed --since) into our log."""
    _pull("tokens", partner_id, since)


@partners_app.command("sync-sessions")
def partners_sync_sessions(
    partner_id: _PARTNER_ID, since: _SINCE_DATED = None, until: _UNTIL = None
) -> None:
    """Pull a partner CPO's sessions of our tokens changed in a date range into our log."""
    _pull("sessions", partner_id, since, until)


@partners_app.command("sync-cdrs")
def partners_sync_cdrs(
    partner_id: _PARTNER_ID, since: _SINCE_DATED = None, until: _UNTIL = None
) -> None:
    """Pull a partner CPO's CDRs of our tokens from a date range into our log (reconciled)."""
    _pull("cdrs", partner_id, since, until)


@partners_app.command("sync-payment-terminals")
def partners_sync_payment_terminals(
    partner_id: _PARTNER_ID, since: _SINCE = None, until: _UNTIL = None
) -> None:
    """Pull a Payment Terminal Provider's terminals (OCPI 2.3.0; all, or changed
    --since) into our log: new or changed ones recorded, unchanged ones not."""
    _pull("payment-terminals", partner_id, since, until)


@partners_app.command("sync-payment-advices")
def partners_sync_payment_advices(
    partner_id: _PARTNER_ID, since: _SINCE_DATED = None, until: _UNTIL = None
) -> None:
    """Pull a Payment Terminal Provider's financial advice confirmations (OCPI
    2.3.0) changed in a date range into our log."""
    _pull("payment-advices", partner_id, since, until)


def _pull(module_name: str, partner_id: str, since: str | None, until: str | None = None) -> None:
    """Crawl one module of a partner's Sender interface, following its
    ``Link`` pages with progress, through the write path (producers/pull_sync.py)."""
    from datetime import UTC, datetime, timedelta

    from rich.progress import Progress

    from ocpi_hub.bootstrap import opened
    from producers.partner_client import PartnerCallError
    from producers.partners import SLICE as PARTNERS_SLICE
    from producers.pull_sync import DATED, PULLS, sync
    from schemas.events import Party
    from schemas.ocpi.common import parse_ocpi_datetime

    module = PULLS[module_name]
    settings = _settings()
    try:
        since_at = parse_ocpi_datetime(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(f"--since: {exc}") from exc
    try:
        until_at = parse_ocpi_datetime(until) if until else None
    except ValueError as exc:
        raise typer.BadParameter(f"--until: {exc}") from exc
    if since_at is None and module.name in DATED:
        since_at = datetime.now(UTC) - timedelta(days=settings.pull_sync_default_days)

    async def work() -> Any:
        async with opened(settings, [module.pulled_slice, PARTNERS_SLICE]) as c:
            partner = await c.write_path.state(PARTNERS_SLICE, partner_id)
            registered = partner is not None and partner.status == "registered"
            if not registered or partner is None or not partner.our_token_encrypted:
                raise LookupError(f"{partner_id} is not a registered partner")
            with Progress(transient=False) as progress:
                task = progress.add_task(f"{module.name} of {partner_id}", total=None)

                def on_page(done: int, total: int | None) -> None:
                    progress.update(task, completed=done, total=total)

                return await sync(
                    module,
                    partner,
                    c.vault.decrypt(partner.our_token_encrypted),
                    c.write_path,
                    us=Party(country_code=settings.party_country_code, party_id=settings.party_id),
                    clock=lambda: datetime.now(UTC),
                    since=since_at,
                    until=until_at,
                    timeout_s=settings.outbound_timeout_s,
                    on_page=on_page,
                    cdr_tolerance=settings.cdr_reconciliation_tolerance,
                    allow_private_urls=settings.url_policy_allow_private,
                    token_directory=c.tokens,
                )

    try:
        report = asyncio.run(work())
    except (PartnerCallError, LookupError) as exc:
        typer.echo(f"sync failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    for reason in report.skipped[:20]:
        typer.echo(f"skipped {reason}", err=True)
    typer.echo(
        json.dumps(
            {
                "partner_id": partner_id,
                "module": module.name,
                "pages": report.pages,
                "recorded": report.recorded,
                "unchanged": report.unchanged,
                "skipped": len(report.skipped),
            }
        )
    )


cdrs_app = typer.Typer(no_args_is_help=True, help="CDRs: reconciliation of partners' CDRs.")
app.add_typer(cdrs_app, name="cdrs")


@cdrs_app.command("reconcile-report")
def cdrs_reconcile_report(
    only_discrepancies: Annotated[
        bool, typer.Option(help="Only CDRs whose cost differs from ours beyond the tolerance.")
    ] = False,
) -> None:
    """The CDRs partners sent us, each with our recomputed price, one JSON
    object per line, then a summary line."""
    from ocpi_hub.bootstrap import view_database
    from projections.mongo.cdrs import CdrViewQuery

    async def report() -> list[dict[str, Any]]:
        async with view_database(_settings()) as db:
            return await CdrViewQuery(db).reconciliation(only_discrepancies=only_discrepancies)

    rows = asyncio.run(report())
    for row in rows:
        typer.echo(json.dumps(row))
    flagged = sum(1 for r in rows if (r.get("reconciliation") or {}).get("discrepancy"))
    typer.echo(json.dumps({"cdrs": len(rows), "discrepancies": flagged}))


dead_letters_app = typer.Typer(
    no_args_is_help=True,
    help="Events a view could not apply, set aside (docs/adr/0028): list and retry.",
)
app.add_typer(dead_letters_app, name="dead-letters")


@dead_letters_app.command("list")
def dead_letters_list(
    view: Annotated[
        str | None, typer.Option(help="Only this view's (e.g. mongo.locations).")
    ] = None,
    resolved: Annotated[
        bool, typer.Option("--all", help="Resolved ones too, not only the quarantined.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The quarantined events (id, view, source position, error), oldest id
    first, then one line of unresolved counts per view."""
    from ocpi_hub.bootstrap import sync_view_database
    from projections.mongo.dead_letters import QUARANTINED, DeadLetterQuery

    settings = _settings()
    with sync_view_database(settings) as db:
        query = DeadLetterQuery(db)
        letters = query.list(view=view, status=None if resolved else QUARANTINED)
        counts = query.unresolved_per_view()
    for d in letters:
        if as_json:
            typer.echo(json.dumps(d, default=str))
            continue
        s = d["source"]
        typer.echo(
            f"{d['_id']}  {d['status']}  {s['topic']}[{s['partition']}]@{s['offset']}"
            f"  attempts={d.get('attempts')}  {d.get('error_type')}: {d.get('error_message')}"
            + (f"  outcome={d['outcome']}" if d.get("outcome") else "")
        )
    typer.echo(json.dumps({"listed": len(letters), "unresolved_per_view": counts}))


@dead_letters_app.command("retry")
def dead_letters_retry(
    dead_letter_id: Annotated[
        str | None, typer.Argument(help="The dead letter's id, as `list` prints it.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every quarantined one.")] = False,
) -> None:
    """Apply quarantined events again (after a fix): APPLIED or SUPERSEDED
    resolves one; one that fails again stays quarantined with the new error."""
    from ocpi_hub.bootstrap import dead_letter_tools
    from projections.mongo.dead_letters import QUARANTINED
    from projections.retry import retry

    if (dead_letter_id is None) == (not every):
        raise typer.BadParameter("give one dead letter id or --all")
    settings = _settings()

    async def work() -> list[Any]:
        async with dead_letter_tools(settings) as tools:
            if every:
                letters = tools.query.list(status=QUARANTINED, limit=100_000)
            else:
                found = tools.query.get(dead_letter_id or "")
                if found is None or found.get("status") != QUARANTINED:
                    raise typer.BadParameter(f"no quarantined dead letter {dead_letter_id!r}")
                letters = [found]
            return await retry(
                settings.kafka_bootstrap,
                settings.topic_prefix,
                letters,
                tools.live.writers,
                tools.event_log,
                tools.us,
            )

    results = asyncio.run(work())
    for r in results:
        typer.echo(json.dumps({k: v for k, v in vars(r).items() if v is not None}))
        if r.outcome == "SUPERSEDED":
            typer.echo(
                "  the view had applied later events of that key; `ocpi-hub replay` "
                "folds the event in its place",
                err=True,
            )
    if any(r.outcome not in ("APPLIED", "SUPERSEDED") for r in results):
        raise typer.Exit(1)


# --- who may use the ops API (docs/adr/0031) ---------------------------------------

users_app = typer.Typer(
    no_args_is_help=True, help="Operator accounts: add, list, disable, set-role."
)
app.add_typer(users_app, name="users")
keys_app = typer.Typer(no_args_is_help=True, help="API keys for machines: create, list, revoke.")
app.add_typer(keys_app, name="api-keys")

_ROLES = "viewer, operator, billing or admin"


def _role(value: str) -> Any:
    from schemas.events.operators import OperatorRole

    try:
        return OperatorRole(value.lower())
    except ValueError as exc:
        raise typer.BadParameter(f"the role is one of {_ROLES}") from exc


async def _operators_write(settings: Settings, slice_: Any, key: str, decide: Any) -> Any:
    """One decision on an operators aggregate, through the one write path,
    recorded as the command line's (the OS user that runs it)."""
    import getpass
    import uuid
    from datetime import UTC, datetime

    from ocpi_hub.bootstrap import opened, our_party
    from producers.write_path import Origin, acting_as
    from schemas.events import Actor

    origin = Origin(our_party(settings), str(uuid.uuid4()))
    async with opened(settings, [slice_]) as c:
        with acting_as(Actor(kind="cli", id=getpass.getuser()[:100] or "unknown")):
            now = datetime.now(UTC)
            return await c.write_path.write(slice_, key, lambda s: decide(s, origin, now))


def _refused(work: Any) -> Any:
    from producers.write_path import RefusedError

    try:
        return work()
    except RefusedError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from exc


def _read_password(password_stdin: bool) -> str:
    from producers.operators import check_password

    if password_stdin:
        # One line: a password manager or a secret store pipes it in; never argv.
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password(password)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return password


@users_app.command("add")
def users_add(
    login: Annotated[str, typer.Argument(help="Lower-case letters, digits and . _ @ -.")],
    role: Annotated[str, typer.Option(help=f"One of {_ROLES}.")],
    display_name: Annotated[str | None, typer.Option(help="Defaults to the login.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")
    ] = False,
) -> None:
    """Add an operator account (the password is prompted for, or read from stdin)."""
    import re

    from producers.operators import ACCOUNTS, decide_add_account, hash_password
    from schemas.events.operators import LOGIN_PATTERN

    if not re.fullmatch(LOGIN_PATTERN, login):
        raise typer.BadParameter("a login is 1-64 lower-case letters, digits and . _ @ -")
    chosen = _role(role)
    settings = _settings()
    password_hash = hash_password(_read_password(password_stdin))

    def decide(state: Any, origin: Any, now: Any) -> Any:
        return decide_add_account(
            state,
            login=login,
            display_name=display_name or login,
            role=chosen,
            password_hash=password_hash,
            origin=origin,
            now=now,
        )

    added = _refused(lambda: asyncio.run(_operators_write(settings, ACCOUNTS, login, decide)))
    typer.echo(json.dumps({"login": added.login, "role": added.role.value}))


@users_app.command("set-role")
def users_set_role(
    login: Annotated[str, typer.Argument(help="The account's login.")],
    role: Annotated[str, typer.Argument(help=f"One of {_ROLES}.")],
) -> None:
    """Change an account's role."""
    from producers.operators import ACCOUNTS, decide_set_role

    chosen = _role(role)
    settings = _settings()

    def decide(state: Any, origin: Any, now: Any) -> Any:
        return decide_set_role(state, login=login, role=chosen, origin=origin, now=now)

    done = _refused(lambda: asyncio.run(_operators_write(settings, ACCOUNTS, login, decide)))
    typer.echo(json.dumps({"login": done.login, "role": done.role.value}))


@users_app.command("disable")
def users_disable(login: Annotated[str, typer.Argument(help="The account's login.")]) -> None:
    """Disable an account for good (its login stays taken: the audit names it)."""
    from producers.operators import ACCOUNTS, decide_disable

    settings = _settings()

    def decide(state: Any, origin: Any, now: Any) -> Any:
        return decide_disable(state, login=login, origin=origin, now=now)

    done = _refused(lambda: asyncio.run(_operators_write(settings, ACCOUNTS, login, decide)))
    typer.echo(json.dumps({"login": done.login, "disabled": done.disabled}))


def _folded(settings: Settings, slice_: Any) -> list[Any]:
    """Every aggregate of the slice as the log holds it (a few events each):
    what was added a moment ago is listed, whether or not the view caught up."""
    from producers.log import KafkaLogHistory

    history = KafkaLogHistory(settings.kafka_bootstrap, settings.topic_prefix)

    async def fold() -> list[Any]:
        states: dict[str, Any] = {}
        async for _, _, event in history.scan(slice_.topic):
            states[event.aggregate_key] = slice_.evolve(states.get(event.aggregate_key), event)
        return [state for _, state in sorted(states.items()) if state is not None]

    return asyncio.run(fold())


@users_app.command("list")
def users_list() -> None:
    """Every account, one JSON line each (never a password hash)."""
    from producers.operators import ACCOUNTS, shown_account

    for state in _folded(_settings(), ACCOUNTS):
        typer.echo(json.dumps(shown_account(state)))


@keys_app.command("create")
def api_keys_create(
    name: Annotated[str, typer.Option(help="What the key is for (shown in lists).")],
    role: Annotated[str, typer.Option(help=f"One of {_ROLES}.")],
) -> None:
    """Issue an API key; prints {key_id, key, name, role}. The key is shown
    this once and stored only as a hash."""
    from producers.operators import API_KEYS_SLICE, decide_create_key, hash_api_key, new_api_key

    chosen = _role(role)
    if not 1 <= len(name) <= 100:
        raise typer.BadParameter("a name has 1 to 100 characters")
    settings = _settings()
    key_id, key = new_api_key()

    def decide(state: Any, origin: Any, now: Any) -> Any:
        return decide_create_key(
            state,
            key_id=key_id,
            name=name,
            role=chosen,
            key_hash=hash_api_key(key),
            origin=origin,
            now=now,
        )

    _refused(lambda: asyncio.run(_operators_write(settings, API_KEYS_SLICE, key_id, decide)))
    typer.echo(json.dumps({"key_id": key_id, "key": key, "name": name, "role": chosen.value}))


@keys_app.command("revoke")
def api_keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke an API key: refused by every API process once this answers."""
    from producers.operators import API_KEYS_SLICE, decide_revoke_key

    settings = _settings()

    def decide(state: Any, origin: Any, now: Any) -> Any:
        return decide_revoke_key(state, key_id=key_id, origin=origin, now=now)

    done = _refused(lambda: asyncio.run(_operators_write(settings, API_KEYS_SLICE, key_id, decide)))
    typer.echo(json.dumps({"key_id": done.key_id, "revoked": done.revoked}))


@keys_app.command("list")
def api_keys_list() -> None:
    """Every API key, one JSON line each (never the key or its hash)."""
    from producers.operators import API_KEYS_SLICE, shown_api_key

    for state in _folded(_settings(), API_KEYS_SLICE):
        typer.echo(json.dumps(shown_api_key(state)))


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
