"""One delivery attempt of one message through one channel, and the redaction every channel shares.

Why single attempts: retrying belongs to the durable outbox (``outbox.py``), which spaces attempts out over
minutes and survives restarts; a channel makes exactly one bounded try (``NOTIFY_POLICY``: one HTTP attempt,
short timeouts, no redirects) and says what happened:

* ``delivered``: the far side accepted it;
* ``retry``: worth trying again later (no answer, 429, 5xx), with the server's ``Retry-After`` if it sent one;
* ``failed``: trying again cannot help (400, 403, 404, 410: a bad payload, a revoked key, a deleted channel).

Secrets stay secret: a webhook URL *is* a credential and so is a routing key or an SMTP password. They live
only inside the channel objects; every error text goes through a ``Redactor`` before it is stored or logged.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tradepulse_assets.core.http import HttpClient, HttpError, HttpPolicy, HttpResponse
from tradepulse_assets.incidents.communications import Message

DELIVERED, RETRY, FAILED = "delivered", "retry", "failed"
REDACTED = "[REDACTED]"
USER_AGENT = "tradepulse-assets-notifier/2"
# One bounded try: a delivery worker must never sit on a dead endpoint (8 s worst case per message).
NOTIFY_POLICY = HttpPolicy(attempts=1, connect_timeout=3.0, read_timeout=5.0, max_redirects=0)


class NotifierConfigError(ValueError):
    """Notification configuration is unusable; the message names the variable, never its value."""


@dataclass(frozen=True)
class Attempt:
    """The outcome of one try. ``error`` is redacted text for people; ``reference`` is what the far side
    returned to identify the delivery (PagerDuty's dedup key, an SMTP queue id, a page id)."""

    outcome: str
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    reference: str | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome == DELIVERED


@runtime_checkable
class Channel(Protocol):
    """Sends messages of some channels (``#incidents``, ``pagerduty``, ``email``...)."""

    name: str

    def handles(self, channel: str) -> bool: ...

    def send(self, message: Message) -> Attempt: ...


class Redactor:
    """Replaces secrets in text: each secret whole and, for a URL, its path and last path segment
    (where webhook tokens live), so a server echoing only part of the URL is scrubbed too."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(s for s in secrets if s)
        needles: set[str] = set()
        for secret in self._secrets:
            needles.add(secret)
            parsed = urllib.parse.urlsplit(secret)
            if parsed.scheme and parsed.netloc:
                needles.add(secret[len(f"{parsed.scheme}://{parsed.netloc}") :])
                segments = [seg for seg in parsed.path.split("/") if seg]
                if len(segments) >= 2 and len(segments[-1]) >= 8:
                    needles.add(segments[-1])
        # Longest first, so a URL is replaced whole before its path is.
        self._needles = tuple(sorted((n for n in needles if len(n) >= 4), key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            text = text.replace(needle, REDACTED)
        return text

    def merged(self, other: Redactor) -> Redactor:
        return Redactor(self._secrets + other._secrets)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


def require_http_url(url: str, what: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise NotifierConfigError(f"{what} is not an http(s) URL")  # never echo the value: a credential


def judge(answer: HttpResponse, accepted: Callable[[HttpResponse], bool]) -> str:
    """``delivered`` if ``accepted``; ``retry`` on 429 and 5xx; ``failed`` on anything else."""
    if accepted(answer):
        return DELIVERED
    if answer.status == 429 or answer.status >= 500:
        return RETRY
    return FAILED


def post_once(
    client: HttpClient,
    url: str,
    body: Mapping[str, Any],
    *,
    label: str,
    redact: Redactor,
    accepted: Callable[[HttpResponse], bool] = lambda answer: answer.ok,
    headers: Mapping[str, str] | None = None,
    reference: Callable[[HttpResponse], str | None] = lambda answer: None,
) -> Attempt:
    """POST ``body`` as JSON once through the shared transport and judge the answer."""
    try:
        answer = client.post(url, json=body, headers=headers)
    except HttpError as exc:
        return Attempt(RETRY, None, redact(f"{label}: {exc}"))
    outcome = judge(answer, accepted)
    if outcome == DELIVERED:
        return Attempt(DELIVERED, answer.status, None, reference=reference(answer))
    error = redact(f"{label}: HTTP {answer.status} {answer.snippet()}")
    return Attempt(outcome, answer.status, error, retry_after=answer.retry_after)


def notify_client() -> HttpClient:
    return HttpClient(NOTIFY_POLICY, user_agent=USER_AGENT)
