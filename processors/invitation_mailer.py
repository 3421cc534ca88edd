"""The activation e-mails of invited members (issue 14, docs/adr/0035).

``ocpi-hub billing-worker`` reads ``MemberInvited`` from the billing topic (its own
consumer group) and hands one e-mail per invitation to an SMTP server, the
local one `make up` starts or any other by settings.

**At most once per invitation** (processors/mail.py): the invitation is
claimed in Redis before the first attempt, and refused attempts are
repeated only when the server certainly did not take the message. A
message that may have been delivered is not sent again; the member's row
shows it as not mailed, and ops invite again (a new invitation, a new
link). Once the server accepted, ``InvitationMailed`` is recorded through
the write path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import structlog

from processors.consuming import consume, state_caught_up
from processors.mail import MailDelivery
from producers.billing.aggregate import SLICE
from producers.billing.members import decide_mailed, link_secret
from producers.billing.state import CorporationState, MemberState
from producers.write_path import Origin, WritePath
from schemas.events import Party
from schemas.events.billing import MemberInvited, MemberStatus
from schemas.topics import BILLING_CORPORATIONS

log = structlog.get_logger(__name__)


def activation_url(base_url: str, key: bytes, corporation_id: str, member: MemberState) -> str:
    secret = link_secret(key, corporation_id, member.member_id, member.invitation_id)
    return (
        f"{base_url.rstrip('/')}/billing/activation/{corporation_id}/{member.member_id}/"
        f"{member.invitation_id}/{secret}"
    )


def compose(
    *,
    mail_from: str,
    corporation: CorporationState,
    member: MemberState,
    url: str,
    now: datetime,
) -> EmailMessage:
    """The activation e-mail of the member's current invitation. Its
    Message-ID is the invitation's, so a receiver can tell it is one."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = formataddr((member.name, member.email))
    message["Subject"] = f"Activate your charging account with {corporation.legal_name}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{member.invitation_id}@billing.ocpi-hub>"
    expires = member.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    message.set_content(
        f"Hello {member.name},\n\n"
        f"{corporation.legal_name} invited you to charge on its account.\n"
        f"Open this link to activate it (once; it works until {expires}):\n\n"
        f"{url}\n\n"
        "If you did not expect this e-mail, ignore it.\n"
    )
    return message


@dataclass
class InvitationMailer:
    """Mails each current invitation at most once (see the module's doc)."""

    write_path: WritePath
    key_prefix: str
    link_key: bytes
    base_url: str
    mail_from: str
    delivery: MailDelivery
    us: Party
    catch_up_s: float = 30.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _claim_key(self, invitation_id: str) -> str:
        return f"{self.key_prefix}billing:mailed:{invitation_id}"

    async def _caught_up(self, key: str, offset: int | None) -> None:
        if not await state_caught_up(
            self.write_path, SLICE, key, offset, timeout_s=self.catch_up_s
        ):
            log.warning("mailer_state_behind", key=key, offset=offset)

    async def handle(self, event: MemberInvited, offset: int | None = None) -> str:
        """Mail one invitation (read at ``offset`` of its partition) if it is
        still the member's current one and not claimed; what happened, in a
        word."""
        p = event.payload
        await self._caught_up(p.corporation_id, offset)
        state = await self.write_path.state(SLICE, p.corporation_id)
        member = state.members.get(p.member_id) if state is not None else None
        now = self.clock()
        if state is None or member is None or member.invitation_id != p.invitation_id:
            return "replaced"
        if member.status is MemberStatus.ACTIVE or member.mailed_invitation_id == p.invitation_id:
            return "done"
        if now >= member.expires_at:
            return "expired"
        url = activation_url(self.base_url, self.link_key, p.corporation_id, member)
        message = compose(
            mail_from=self.mail_from, corporation=state, member=member, url=url, now=now
        )
        outcome = await self.delivery.deliver(
            self._claim_key(p.invitation_id), message, what=f"invitation {p.invitation_id}"
        )
        if outcome != "sent":
            return outcome
        message_id = str(message["Message-ID"])
        origin = Origin(self.us, f"mail-{p.invitation_id}")
        await self.write_path.write(
            SLICE,
            p.corporation_id,
            lambda s: decide_mailed(
                s,
                corporation_id=p.corporation_id,
                member_id=p.member_id,
                invitation_id=p.invitation_id,
                message_id=message_id,
                origin=origin,
                now=self.clock(),
            ),
        )
        log.info("invitation_mailed", invitation_id=p.invitation_id, member_id=p.member_id)
        return "mailed"


async def run_mailer(
    mailer: InvitationMailer, bootstrap: str, prefix: str, stop: asyncio.Event
) -> None:
    """Consume the billing topic in the mailer's group until ``stop``; the
    offsets are committed after each batch is handled (a batch handled
    again finds its claims and sends nothing)."""

    async def handle(event: object, offset: int) -> None:
        if isinstance(event, MemberInvited):
            await mailer.handle(event, offset)

    await consume(
        bootstrap,
        prefix + BILLING_CORPORATIONS.name,
        f"{prefix}ocpi-hub-mailer",
        handle,
        stop,
        name="mailer",
    )
