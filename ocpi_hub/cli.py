"""``ocpi-hub``: the platform's one command line."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer

from ocpi_hub.logging import configure_logging
from ocpi_hub.settings import Settings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
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


@app.command()
def projections() -> None:
    """Keep the MongoDB and MySQL views up to date from the event topics."""
    from ocpi_hub.bootstrap import projections_process, until_signalled
    from ocpi_hub.retrying import keep_running
    from projections.runner import run_live

    settings = _settings()

    async def main() -> None:
        stop = until_signalled()

        async def once() -> None:
            # Opened anew at each start: a store or broker lost at start-up
            # (migrations, indexes, the dead-letter producer) is retried too.
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
                )

        await keep_running(
            once,
            stop,
            name="projections",
            initial_s=settings.restart_initial_s,
            max_s=settings.restart_max_s,
        )

    asyncio.run(main())


@app.command()
def push() -> None:
    """Push our changes to partners' Receivers (locations and EVSE statuses to
    every partner, sessions and CDRs to each token's eMSP) and command
    results to their response_url."""
    from ocpi_hub.bootstrap import push_process, until_signalled
    from ocpi_hub.retrying import keep_running

    settings = _settings()

    async def main() -> None:
        stop = until_signalled()

        async def once() -> None:
            async with push_process(settings) as pushers:
                await pushers.run(stop)

        await keep_running(
            once,
            stop,
            name="push",
            initial_s=settings.restart_initial_s,
            max_s=settings.restart_max_s,
        )

    asyncio.run(main())


@app.command()
def gateway() -> None:
    """Serve OCPP 1.6J chargers over WebSocket and run their commands (ADR 0018)."""
    from gateway.commands import CommandRunner
    from gateway.server import run
    from ocpi_hub.bootstrap import gateway_process, until_signalled

    settings = _settings()

    async def main() -> None:
        async with gateway_process(settings) as gw:
            await run(gw, until_signalled(), CommandRunner(gw).consume)

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
                    )
                    return count, dead_letters.count

            count, quarantined = asyncio.run(rebuild())
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
) -> None:
    """Register with a partner (we POST our credentials to them)."""
    from ocpi_hub.secrets import hash_token, new_token
    from producers.partner_client import PartnerCallError
    from producers.write_path import RefusedError, UnavailableError

    settings = _settings()
    our_token = new_token()

    async def work(service: Any) -> Any:
        return await service.register_with(
            versions_url=versions_url,
            token_a=token_a,
            our_token=our_token,
            our_token_hash=hash_token(our_token),
            partner_id=partner_id,
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
    """Every partner with its status and roles (never its tokens)."""
    from producers.credentials import partners_in_log
    from producers.log import KafkaLogHistory

    settings = _settings()
    # From the log, not the view: a partner registered a moment ago is listed.
    history = KafkaLogHistory(settings.kafka_bootstrap, settings.topic_prefix)
    for p in asyncio.run(partners_in_log(history)):
        roles = ",".join(f"{r.role}:{r.country_code}-{r.party_id}" for r in p.roles)
        typer.echo(f"{p.partner_id}\t{p.status}\t{p.direction or '-'}\t{roles or '-'}")


@partners_app.command("sync-locations")
def partners_sync_locations(
    partner_id: Annotated[str, typer.Argument(help="The partner, as `partners list` names it.")],
    since: Annotated[
        str | None, typer.Option(help="Only locations changed since (OCPI DateTime, UTC).")
    ] = None,
) -> None:
    """Pull a partner CPO's locations (all, or changed --since) into our log."""
    from datetime import UTC, datetime

    from rich.progress import Progress

    from ocpi_hub.bootstrap import opened
    from producers.locations import SLICE as LOCATIONS_SLICE
    from producers.partner_client import PartnerCallError
    from producers.partners import SLICE as PARTNERS_SLICE
    from producers.sync_locations import sync_locations
    from schemas.events import Party
    from schemas.ocpi.common import parse_ocpi_datetime

    settings = _settings()
    try:
        since_at = parse_ocpi_datetime(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(f"--since: {exc}") from exc

    async def work() -> Any:
        async with opened(settings, [LOCATIONS_SLICE, PARTNERS_SLICE]) as c:
            partner = await c.write_path.state(PARTNERS_SLICE, partner_id)
            registered = partner is not None and partner.status == "registered"
            if not registered or partner is None or not partner.our_token_encrypted:
                raise LookupError(f"{partner_id} is not a registered partner")
            with Progress(transient=False) as progress:
                task = progress.add_task(f"locations of {partner_id}", total=None)

                def on_page(done: int, total: int | None) -> None:
                    progress.update(task, completed=done, total=total)

                return await sync_locations(
                    partner,
                    c.vault.decrypt(partner.our_token_encrypted),
                    c.write_path,
                    us=Party(country_code=settings.party_country_code, party_id=settings.party_id),
                    clock=lambda: datetime.now(UTC),
                    since=since_at,
                    timeout_s=settings.outbound_timeout_s,
                    on_page=on_page,
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
                "pages": report.pages,
                "recorded": report.recorded,
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


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
