"""Email over SMTP (runbook section 4: the containment notice to Executives and Compliance).

One connection per message with an explicit timeout; STARTTLS and login when configured. A 4xx SMTP reply
or no answer is worth retrying (``retry``); a 5xx reply (unknown recipient, relay refused) is not.
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

from tradepulse_assets.incidents.communications import Message
from tradepulse_assets.incidents.notifications.transport import (
    DELIVERED,
    FAILED,
    RETRY,
    Attempt,
    NotifierConfigError,
    Redactor,
)


def email_message(message: Message, sender: str, recipients: Sequence[str]) -> EmailMessage:
    mail = EmailMessage()
    prefix = "[DRILL] " if message.drill and not message.text.startswith("[DRILL]") else ""
    mail["Subject"] = f"{prefix}[{message.severity}] incident {message.incident_id}: {message.stage.value}"
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Message-ID"] = f"<{message.dedup_key.replace(':', '.').replace('#', '')}@tradepulse-assets>"
    mail["X-TradePulse-Incident"] = message.incident_id
    if message.drill:
        mail["X-TradePulse-Drill"] = "true"
    lines = [message.text, "", f"Audience: {', '.join(message.audience)}", f"Stage: {message.stage.value}"]
    for key, value in message.details.items():
        lines.append(f"{key}: {value}")
    mail.set_content("\n".join(lines) + "\n")
    return mail


class SmtpEmail:
    """Sends the ``email`` channel to fixed recipients through one SMTP server."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if not host or not sender or not recipients:
            raise NotifierConfigError(
                "email needs TRADEPULSE_SMTP_HOST, TRADEPULSE_EMAIL_FROM and TRADEPULSE_EMAIL_TO"
            )
        self._host, self._port, self._sender, self._recipients = host, int(port), sender, tuple(recipients)
        self._username, self._password, self._starttls, self._timeout = username, password, starttls, timeout
        self.redactor = Redactor([password] if password else [])

    def __repr__(self) -> str:
        return f"SmtpEmail({self._host}:{self._port}, to={len(self._recipients)} recipient(s))"

    def handles(self, channel: str) -> bool:
        return channel == "email"

    def send(self, message: Message) -> Attempt:
        label = f"email via {self._host}:{self._port}"
        mail = email_message(message, self._sender, self._recipients)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls()
                if self._username:
                    smtp.login(self._username, self._password or "")
                refused = smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            outcome = RETRY if 400 <= exc.smtp_code < 500 else FAILED
            return Attempt(
                outcome, exc.smtp_code, self.redactor(f"{label}: SMTP {exc.smtp_code} {exc.smtp_error!r}")
            )
        except smtplib.SMTPRecipientsRefused as exc:
            return Attempt(
                FAILED, None, self.redactor(f"{label}: every recipient refused: {list(exc.recipients)}")
            )
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            return Attempt(RETRY, None, self.redactor(f"{label}: {type(exc).__name__}: {exc}"))
        if refused:
            return Attempt(DELIVERED, 250, None, reference=f"refused: {sorted(refused)}")
        return Attempt(DELIVERED, 250, None, reference=mail["Message-ID"])
