"""The mailer's promise against a real SMTP server (aiosmtpd over TCP), the
real Redis (its claims) and Kafka (the write path): an e-mail the server
refused for now is tried again until it is taken, once; an e-mail whose
fate is unknown (the connection lost after the message went out) is never
sent again; two mailers handed the same invitation send it once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.fernet import Fernet

from ocpi_hub.bootstrap import BillingWorker, billing_worker_process
from ocpi_hub.settings import Settings
from producers.billing.aggregate import SLICE
from producers.billing.corporations import NewCorporation, decide_register, new_id
from producers.billing.members import NewMember, decide_invite, new_invitation_id
from producers.log import ensure_topics
from producers.write_path import Origin
from schemas.events import MemberInvited, Party
from tests.conftest import fresh_namespace
from tests.integration.test_billing import Inbox, corporation_body, smtp_server
from tests.services import env_of

ORIGIN = Origin(Party(country_code="ZZ", party_id="HUB"), "test")


class Moody(Inbox):
    """Answers 451 (try later) to the first ``refusals`` messages, and
    hangs up without an answer on the ``drop``-th one."""

    def __init__(self, refusals: int = 0, drop: int | None = None) -> None:
        super().__init__()
        self.refusals = refusals
        self.drop = drop
        self.seen = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.seen += 1
        if self.drop == self.seen:
            assert server.transport is not None
            server.transport.close()
            return "250 OK"  # never reaches the client
        if self.seen <= self.refusals:
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


@asynccontextmanager
async def worker(s: Settings, port: int) -> AsyncIterator[BillingWorker]:
    settings = s.model_copy(
        update={"smtp_port": port, "mail_retry_initial_s": 0.05, "mail_retry_max_s": 0.2}
    )
    async with billing_worker_process(settings) as w:
        yield w


async def _invited(w: BillingWorker, email: str) -> MemberInvited:
    """A corporation with one invited member, through the write path; the
    invitation event as the mailer reads it."""
    path = w.mailer.write_path
    cid, mid = new_id(), new_id()
    now = datetime.now(UTC)
    body = NewCorporation.model_validate(corporation_body())
    await path.write(
        SLICE,
        cid,
        lambda s: decide_register(s, corporation_id=cid, body=body, origin=ORIGIN, now=now),
    )
    member = NewMember(name="Ada", email=email)
    state = await path.write(
        SLICE,
        cid,
        lambda s: decide_invite(
            s,
            corporation_id=cid,
            member_id=mid,
            body=member,
            invitation_id=new_invitation_id(),
            valid_for=timedelta(hours=1),
            origin=ORIGIN,
            now=now,
        ),
    )
    held = state.members[mid]
    return MemberInvited(
        event_id=uuid.uuid4(),
        aggregate_key=cid,
        occurred_at=now,
        recorded_at=now,
        source=ORIGIN.source,
        correlation_id="test",
        payload={
            "corporation_id": cid,
            "member_id": mid,
            "name": held.name,
            "email": held.email,
            "invitation_id": held.invitation_id,
            "expires_at": held.expires_at,
            "at": now,
        },
    )


def _settings(namespace_settings: Settings) -> Settings:
    return namespace_settings.model_copy(update={"secret_key": Fernet.generate_key().decode()})


def test_refused_for_now_is_tried_again_and_taken_once(services: Settings) -> None:
    with fresh_namespace(services) as namespace, smtp_server(Moody(refusals=2)) as (inbox, port):
        s = _settings(namespace.settings)

        async def story() -> None:
            await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
            async with worker(s, port) as w:
                invitation = await _invited(w, "ada@acme.example")
                assert await w.mailer.handle(invitation) == "mailed"
                assert await w.mailer.handle(invitation) == "done"
            assert inbox.seen == 3 and len(inbox.messages) == 1

        asyncio.run(story())


def test_a_message_of_unknown_fate_is_never_sent_again(services: Settings) -> None:
    with fresh_namespace(services) as namespace, smtp_server(Moody(drop=1)) as (inbox, port):
        s = _settings(namespace.settings)

        async def story() -> None:
            await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
            async with worker(s, port) as w:
                invitation = await _invited(w, "ada@acme.example")
                assert await w.mailer.handle(invitation) == "unknown"
                # Read again (a restart): claimed, not sent.
                assert await w.mailer.handle(invitation) == "claimed"
                state = await w.mailer.write_path.state(SLICE, invitation.payload.corporation_id)
                assert state is not None
                member = state.members[invitation.payload.member_id]
                assert member.mailed_invitation_id is None  # ops see it was not mailed
            assert inbox.seen == 1 and inbox.messages == []

        asyncio.run(story())


def test_two_mailers_send_one_invitation_once(services: Settings) -> None:
    with fresh_namespace(services) as namespace, smtp_server(Moody()) as (inbox, port):
        s = _settings(namespace.settings)

        async def story() -> None:
            await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
            async with worker(s, port) as first, worker(s, port) as second:
                invitation = await _invited(first, "ada@acme.example")
                outcomes = await asyncio.gather(
                    first.mailer.handle(invitation), second.mailer.handle(invitation)
                )
            assert sorted(outcomes) in (["claimed", "mailed"], ["done", "mailed"])
            assert len(inbox.messages) == 1

        asyncio.run(story())


def test_the_billing_worker_command_mails_an_invitation(services: Settings) -> None:
    """`ocpi-hub billing-worker`, the process `make up` keeps running, as a
    child process on the namespace: it mails a new invitation, records it,
    and stops on SIGTERM."""
    with fresh_namespace(services) as namespace, smtp_server(Moody()) as (inbox, port):
        s = _settings(namespace.settings).model_copy(update={"smtp_port": port})

        async def story() -> None:
            await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
            # The test's own worker only writes (its mailer loop never runs):
            # the child process is the one that mails.
            async with worker(s, port) as w:
                invitation = await _invited(w, "ada@acme.example")
                await inbox.wait(1, timeout_s=60)
                for _ in range(100):
                    state = await w.mailer.write_path.state(
                        SLICE, invitation.payload.corporation_id
                    )
                    member = state.members[invitation.payload.member_id] if state else None
                    if member is not None and member.mailed_invitation_id:
                        break
                    await asyncio.sleep(0.1)
            assert member is not None
            assert member.mailed_invitation_id == invitation.payload.invitation_id
            assert inbox.envelopes[0][1] == ["ada@acme.example"]

        child = subprocess.Popen(
            [str(Path(sys.executable).with_name("ocpi-hub")), "billing-worker"],
            env={**os.environ, **env_of(s)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(story())
        finally:
            child.send_signal(signal.SIGTERM)
            assert child.wait(30) == 0
