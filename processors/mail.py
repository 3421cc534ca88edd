"""E-mail handed to an SMTP server at most once per purpose (docs/adr/0035).

The billing worker mails activation links (processors/invitation_mailer.py)
and will mail invoices. Both must never send one message twice: a second
activation link, or a second copy of an invoice, is worse than a missing
one, which is visible and cheap to send again under a new id.

``MailDelivery.deliver`` claims the message's purpose in Redis (``SET NX``,
never expiring) before the first attempt; a second worker, or this one
after a restart, finds the claim and sends nothing. It tries again, with a
delay doubling from ``retry_initial_s``, only when the server certainly did
not take the message (no connection, a refused MAIL, RCPT or DATA, an error
reply to the message). When the connection is lost after the message went
out and before the server's answer, it may have been delivered: it is not
sent again.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Literal

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger(__name__)

Delivered = Literal["sent", "claimed", "failed", "unknown"]


class MailNotSentError(Exception):
    """The server certainly did not take the message: it may be tried again."""


class MailFateUnknownError(Exception):
    """The message went out but the server's answer did not come back: it
    may have been delivered, so it is never sent again."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    timeout_s: float
    starttls: bool = False
    username: str = ""
    password: str = ""


def send_smtp(smtp: SmtpSettings, message: EmailMessage) -> None:
    """Hand ``message`` to the server (blocking: run it in a thread).
    Raises ``MailNotSentError`` or ``MailFateUnknownError``."""
    sender = parseaddr(str(message["From"]))[1]
    recipient = parseaddr(str(message["To"]))[1]
    try:
        conn = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailNotSentError(f"no connection: {exc}") from exc
    try:
        try:
            conn.ehlo()
            if smtp.starttls:
                conn.starttls()
                conn.ehlo()
            if smtp.username:
                conn.login(smtp.username, smtp.password)
            code, reply = conn.mail(sender)
            if code != 250:
                raise MailNotSentError(f"MAIL FROM refused: {code} {reply!r}")
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                raise MailNotSentError(f"RCPT TO refused: {code} {reply!r}")
        except (OSError, smtplib.SMTPException) as exc:
            raise MailNotSentError(str(exc)) from exc
        try:
            # smtplib raises when DATA itself is refused, but returns the
            # server's answer to the message: anything but 250 is a refusal.
            # SMTP lines end in CRLF (RFC 5321 2.3.8), and smtplib sends bytes
            # as they are: a bare-LF message is one over-long line to a strict
            # server (aiosmtpd refuses a line over 1,000 bytes).
            wire = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
            code, reply = conn.data(wire)
        except smtplib.SMTPDataError as exc:
            raise MailNotSentError(f"DATA refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise MailFateUnknownError(str(exc)) from exc
        if code != 250:
            raise MailNotSentError(f"message refused: {code} {reply!r}")
    finally:
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            conn.close()


@dataclass
class MailDelivery:
    """Sends each claimed message at most once (see the module's doc)."""

    redis: aioredis.Redis
    send: Callable[[EmailMessage], None]
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    max_attempts: int = 8
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def deliver(self, claim_key: str, message: EmailMessage, *, what: str) -> Delivered:
        """Send ``message`` unless ``claim_key`` was claimed before: "sent"
        once the server accepted it, "claimed" when it was (or is being)
        sent already, "failed" after the last refused attempt, "unknown"
        when it may have been delivered. Only "sent" may be recorded as
        mailed; the others leave the claim, so nothing sends it again."""
        if not await self.redis.set(claim_key, self.clock().isoformat(), nx=True):
            return "claimed"
        delay = self.retry_initial_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                await asyncio.to_thread(self.send, message)
                return "sent"
            except MailNotSentError as exc:
                log.warning("mail_not_sent", what=what, attempt=attempt, error=str(exc)[:300])
                if attempt == self.max_attempts:
                    log.error("mail_given_up", what=what)
                    return "failed"
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
            except MailFateUnknownError as exc:
                log.error("mail_fate_unknown", what=what, error=str(exc)[:300])
                return "unknown"
        return "failed"
