"""``ocpi-hub``: the platform's one command line."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Annotated

import typer

from ocpi_hub.logging import configure_logging
from ocpi_hub.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return settings


@app.command()
def api() -> None:
    """Serve the HTTP API (OCPI, ops, health)."""
    import uvicorn

    from api.app import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def processors() -> None:
    """Run the Faust processors (EVSE status, ...)."""
    from faust import Worker

    from processors.app import create_app
    from producers.log import ensure_topics

    settings = _settings()
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap, settings.topic_prefix, settings.topic_replication_factor
        )
    )
    faust_app = create_app(settings)
    worker = Worker(faust_app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()


@app.command()
def projections() -> None:
    """Keep the MongoDB and MySQL views up to date from the event topics."""
    from ocpi_hub.bootstrap import mongo_client, mysql_engine, views
    from producers.log import ensure_topics
    from projections.runner import run_live

    settings = _settings()

    async def main() -> None:
        await ensure_topics(
            settings.kafka_bootstrap, settings.topic_prefix, settings.topic_replication_factor
        )
        live = views(mongo_client(settings), settings.mongo_db, mysql_engine(settings))
        await asyncio.to_thread(live.prepare)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_live(
            settings.kafka_bootstrap,
            settings.topic_prefix,
            live.writers,
            batch_size=settings.projection_batch_size,
            poll_ms=settings.projection_poll_ms,
            stop=stop,
        )

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

    from ocpi_hub.bootstrap import (
        create_mysql_database,
        drop_mysql_database,
        mongo_client,
        mysql_engine,
        views,
    )
    from ocpi_hub.compare import compare_views
    from projections.runner import replay as run_replay

    settings = _settings()
    client = mongo_client(settings)
    if into is None:
        if compare:
            raise typer.BadParameter("--compare needs --into")
        target = views(client, settings.mongo_db, mysql_engine(settings))
        target.prepare()
        target.wipe()
    else:
        client.drop_database(into)
        drop_mysql_database(settings, into)
        create_mysql_database(settings, into)
        target = views(client, into, mysql_engine(settings, into))
        target.prepare()

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
        console=None,
    ) as progress:
        task = progress.add_task("replaying events", total=None)
        count = asyncio.run(
            run_replay(
                settings.kafka_bootstrap,
                settings.topic_prefix,
                target.writers,
                batch_size=settings.projection_batch_size,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        )
    result: dict[str, object] = {"events": count, "target": into or "live"}
    if into is not None and compare:
        live = views(client, settings.mongo_db, mysql_engine(settings))
        differences = compare_views(live, target)
        result["differences"] = differences
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

    run(mysql_engine(_settings()))
    typer.echo("mysql schema is at head")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
