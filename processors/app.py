"""The Faust application: settings and the agents of every slice.

Design for at-least-once (INFRA_NOTES: Faust's exactly-once is not to be
relied on): Faust flushes its producer before it commits source offsets, so a
derived event is on Kafka before its cause counts as processed; a crash in
between re-runs the rule, which emits the same event id again
(``derived_event_id``) and downstream writers are idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust

from ocpi_hub.settings import Settings
from processors import (
    cdr_builder,
    charging_profile_results,
    command_results,
    evse_status,
    reservation_expiry,
    session_lifecycle,
)
from schemas.events import EventMeta, Party, serialize_event
from schemas.topics import (
    CDRS,
    CHARGER_TRANSACTIONS,
    CHARGING_PROFILES,
    COMMANDS,
    EVSE_STATUS,
    LOCATIONS,
    SESSIONS,
)


def create_app(settings: Settings, cdr_inputs: cdr_builder.CdrInputs) -> Any:
    """The Faust app with every agent; ``cdr_inputs`` is where the CDR builder
    reads the tariffs and locations recorded at session start (the
    composition root, ocpi_hub/bootstrap.py, opens it)."""
    # Faust makes its own folder under the data dir, but not the parents.
    Path(settings.faust_datadir).parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.topic("ocpi-hub-processors"),
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.faust_store,
        datadir=settings.faust_datadir,
        topic_replication_factor=settings.topic_replication_factor,
        topic_partitions=LOCATIONS.partitions,
        topic_allow_declare=True,
        topic_disable_leader=True,
        broker_session_timeout=settings.faust_session_timeout_s,
        broker_heartbeat_interval=settings.faust_heartbeat_interval_s,
        producer_acks=-1,
        web_enabled=False,
        web_port=settings.faust_web_port,
        consumer_auto_offset_reset="earliest",
        # A table checks its changelog's partitions in the consumer's
        # metadata; one read while the topic had none (just created, or a
        # broker restarting) would otherwise stay for aiokafka's 5 minutes,
        # every table write refused meanwhile. 30 s bounds that.
        consumer_metadata_max_age_ms=30_000,
        autodiscover=False,
    )
    # The status of an EVSE: what its owner says, and what our chargers do.
    evse_signals = _raw_topic(
        app, settings.topic(LOCATIONS.name), settings.topic(CHARGER_TRANSACTIONS.name)
    )
    evse_status.register(
        app,
        evse_signals,
        emitter(_raw_topic(app, settings.topic(EVSE_STATUS.name))),
        LOCATIONS.partitions,
    )
    session_lifecycle.register(
        app,
        _raw_topic(app, settings.topic(CHARGER_TRANSACTIONS.name)),
        emitter(_raw_topic(app, settings.topic(SESSIONS.name))),
        CHARGER_TRANSACTIONS.partitions,
        session_lifecycle.MeterConfig(
            settings.session_meter_rollover_wh, settings.session_currency
        ),
    )
    # Reservations of our chargers end when they expire unused (docs/adr/0021).
    charger_facts = _raw_topic(app, settings.topic(CHARGER_TRANSACTIONS.name))
    reservation_expiry.register(
        app,
        charger_facts,
        emitter(charger_facts),
        CHARGER_TRANSACTIONS.partitions,
        settings.reservation_expiry_scan_s,
        settings.reservation_expiry_grace_s,
    )
    # Our CDRs from our completed sessions (docs/adr/0016).
    cdr_builder.register(
        app,
        _raw_topic(app, settings.topic(SESSIONS.name)),
        emitter(_raw_topic(app, settings.topic(CDRS.name))),
        SESSIONS.partitions,
        Party(country_code=settings.party_country_code, party_id=settings.party_id),
        cdr_inputs,
        settings.cdr_location_wait_s,
    )
    # The one result of each command we accepted as CPO (docs/adr/0017).
    commands = _raw_topic(app, settings.topic(COMMANDS.name))
    command_results.register(
        app, commands, emitter(commands), COMMANDS.partitions, settings.command_deadline_scan_s
    )
    # The one result of each charging profile request we accepted (docs/adr/0043).
    profiles = _raw_topic(app, settings.topic(CHARGING_PROFILES.name))
    charging_profile_results.register(
        app,
        profiles,
        emitter(profiles),
        CHARGING_PROFILES.partitions,
        settings.command_deadline_scan_s,
    )
    return app


async def ensure_changelogs(app: Any, settings: Settings) -> list[str]:
    """Create the tables' changelog topics before the worker starts (compacted,
    partitioned like their source). Faust creates them itself at start, but a
    topic created a moment before the first table write may be missing from
    the consumer's metadata, and Faust then refuses the write (partitions
    mismatch) and loses the event being processed."""
    import contextlib

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    from producers.log import wait_until_led

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {
            table.changelog_topic.get_topic_name(): table.partitions or LOCATIONS.partitions
            for table in app.tables.values()
        }
        new = [
            NewTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs={"cleanup.policy": "compact"},
            )
            for name, partitions in sorted(wanted.items())
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        await wait_until_led(admin, wanted)
        return [t.name for t in new]
    finally:
        await admin.close()


def emitter(topic: Any) -> Callable[[EventMeta], Awaitable[None]]:
    """Write events to a Faust topic, keyed and with the contract's headers.

    Faust buffers the send and flushes its producer before it commits the
    offset of the event being processed.
    """

    async def emit(event: EventMeta) -> None:
        await topic.send(
            key=event.aggregate_key.encode(),
            value=serialize_event(event),
            headers=[
                ("event_type", getattr(event, "event_type").encode()),  # noqa: B009
                ("schema_version", str(getattr(event, "schema_version")).encode()),  # noqa: B009
            ],
        )

    return emit


def _raw_topic(app: Any, *names: str) -> Any:
    """Our topics carry JSON events; they are parsed by ``parse_event``.
    Several names make one channel (topics of the same partitioning)."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )
