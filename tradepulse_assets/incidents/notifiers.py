"""Delivering incident messages: a file outbox by default, Slack webhooks and PagerDuty when configured.

Why it is built this way:

* **Notifications must never stop the incident engine.** A Slack outage during a market-data
  incident is common (the same cloud region is often the cause), so ``Dispatcher.dispatch`` never
  raises: every failure becomes a ``Delivery(ok=False)`` and an ``on_failure`` call, which the
  engine records on the incident timeline.
* **At least once, not exactly once.** Transient answers (429, 5xx, timeouts, refused connections)
  are retried with bounded exponential backoff; a message may therefore arrive twice. Each message
  carries a ``dedup_key`` (PagerDuty deduplicates on it; the outbox keeps it for readers).
  Permanent answers (Slack 400/403/404/410, PagerDuty 400) are not retried: retrying a deleted
  channel only delays the failure report.
* **Secrets stay secret.** A Slack webhook URL *is* a credential and so is a PagerDuty routing key.
  They live only inside the notifier objects; every error text, log line, ``repr`` and outbox line
  goes through ``Redactor`` first.
* **The standard library only** (``urllib.request``, explicit timeouts, no redirects followed), so
  the production profile needs no extra dependency and tests run against a loopback server.
* **The outbox is multi-process safe**: the Dagster daemon, run workers and the CLI all notify, so
  each record is one whole JSON line appended under an exclusive ``flock`` (``core.io.append_jsonl``).
"""

from __future__ import annotations

import datetime as dt
import enum
import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tradepulse_assets.core.clock import Now
from tradepulse_assets.core.io import append_jsonl
from tradepulse_assets.incidents.communications import (
    MAX_DEDUP_KEY,
    SEVERITIES,
    Channel,
    EventAction,
    Message,
    format_instant,
)

logger = logging.getLogger(__name__)

SLACK_WEBHOOK_ENV_PREFIX = "TRADEPULSE_SLACK_WEBHOOK_"
PAGERDUTY_EVENTS_URL_ENV = "TRADEPULSE_PAGERDUTY_EVENTS_URL"
PAGERDUTY_ROUTING_KEY_ENV = "TRADEPULSE_PAGERDUTY_ROUTING_KEY"
DEFAULT_PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY = 1024
REDACTED = "[REDACTED]"
USER_AGENT = "tradepulse-assets-notifier/1"

Sleep = Callable[[float], None]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------------------------------
# Results and the notifier protocol


@dataclass(frozen=True)
class Delivery:
    """The outcome of delivering one message through one notifier.

    ``error`` is redacted text for people; ``reference`` is what the far side returned to identify
    the delivery (PagerDuty's dedup key, Slack's ``ok``, the outbox path).
    """

    ok: bool
    attempts: int
    status_code: int | None
    error: str | None
    notifier: str
    channel: str = ""
    dedup_key: str = ""
    reference: str | None = None


@runtime_checkable
class Notifier(Protocol):
    name: str

    def deliver(self, message: Message) -> Delivery: ...


class NotifierConfigError(ValueError):
    """Notification configuration is unusable; the message names the variable, never its value."""


# --------------------------------------------------------------------------------------------------
# Redaction


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


def redact_value(value: Any, redact: Redactor) -> Any:
    """Redact every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, redact) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# Outbox


class OutboxNotifier:
    """Appends each message as one JSON line to ``path`` and logs it: the default transport.

    Lines go through the platform's locked JSONL append (:func:`tradepulse_assets.core.io.append_jsonl`), so
    concurrent processes never interleave lines and a line torn by a crashed writer stays on its own.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Now = utc_now,
        redactor: Redactor | None = None,
        fsync: bool = True,
        name: str = "outbox",
    ) -> None:
        self.path = Path(path)
        self.name = name
        self._clock = clock
        self._redact = redactor or Redactor()
        self._fsync = fsync

    def __repr__(self) -> str:
        return f"OutboxNotifier({str(self.path)!r})"

    def record(self, message: Message, *, note: str | None = None) -> dict[str, Any]:
        """The outbox line for a message (redacted); ``note`` says why it is here (e.g. a failed send)."""
        record = {"recorded_at": format_instant(self._clock()), **message.to_record()}
        if note:
            record["note"] = note
        return redact_value(record, self._redact)

    def deliver(self, message: Message, *, note: str | None = None) -> Delivery:
        record = self.record(message, note=note)
        try:
            append_jsonl(self.path, record, fsync=self._fsync)
        except OSError as exc:
            error = self._redact(f"outbox {self.path}: cannot append: {exc}")
            logger.error("notification not recorded: %s", error)
            return Delivery(False, 1, None, error, self.name, message.channel, message.dedup_key)
        logger.info(
            "notification [%s] incident %s %s: %s",
            record["channel"],
            record["incident_id"],
            record["stage"],
            record["text"],
        )
        return Delivery(True, 1, None, None, self.name, message.channel, message.dedup_key, str(self.path))


# --------------------------------------------------------------------------------------------------
# HTTP with retries


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: attempt n waits ``min(max_delay, base_delay * 2**(n-1))``.

    A ``Retry-After`` header replaces the computed delay (capped at ``max_retry_after`` so a
    misbehaving server cannot park the incident engine). ``timeout`` bounds each HTTP request.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise NotifierConfigError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.timeout <= 0:
            raise NotifierConfigError(f"RetryPolicy.timeout must be > 0, got {self.timeout}")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: str
    retry_after: float | None


class TransportError(Exception):
    """No HTTP answer (timeout, refused connection, DNS). Always retryable."""


class Verdict(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    PERMANENT = "permanent"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answering with a redirect is misconfigured; following it would resend the payload."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib signature
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); ``None`` if absent/garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - utc_now()).total_seconds())


def post_json(url: str, body: Mapping[str, Any], *, timeout: float) -> HttpAnswer:
    """POST ``body`` as JSON; any HTTP status is an answer, no answer is a ``TransportError``."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            text = response.read(65536).decode("utf-8", "replace")
            return HttpAnswer(response.status, text, parse_retry_after(response.headers.get("Retry-After")))
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(65536).decode("utf-8", "replace")
        except OSError:
            text = ""
        finally:
            exc.close()
        return HttpAnswer(
            exc.code, text, parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        )
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad status lines
        reason = getattr(exc, "reason", exc)
        raise TransportError(f"{type(reason).__name__}: {reason}") from None


def send_with_retry(
    send: Callable[[], HttpAnswer],
    judge: Callable[[HttpAnswer], Verdict],
    *,
    policy: RetryPolicy,
    sleep: Sleep,
    label: str,
    redact: Redactor,
) -> tuple[bool, int, HttpAnswer | None, str | None]:
    """Run ``send`` until ``judge`` says OK or PERMANENT, or attempts run out.

    Returns ``(ok, attempts, last_answer, error)``; ``error`` is redacted and names ``label``.
    """
    answer: HttpAnswer | None = None
    error: str | None = None
    for attempt in range(1, policy.max_attempts + 1):
        retry_after: float | None = None
        try:
            answer = send()
        except TransportError as exc:
            answer = None
            error = redact(f"{label}: no answer on attempt {attempt}: {exc}")
        else:
            verdict = judge(answer)
            if verdict is Verdict.OK:
                return True, attempt, answer, None
            error = redact(f"{label}: HTTP {answer.status} {_snippet(answer.body)} on attempt {attempt}")
            if verdict is Verdict.PERMANENT:
                logger.warning("%s (permanent, not retried)", error)
                return False, attempt, answer, error
            retry_after = answer.retry_after
        if attempt < policy.max_attempts:
            delay = policy.delay(attempt, retry_after)
            logger.info("%s; retrying in %.2f s", error, delay)
            sleep(delay)
    logger.warning("%s; gave up after %d attempts", error, policy.max_attempts)
    return False, policy.max_attempts, answer, f"{error}; gave up after {policy.max_attempts} attempts"


def _snippet(body: str, limit: int = 200) -> str:
    body = " ".join(body.split())
    return body if len(body) <= limit else body[: limit - 3] + "..."


def _require_http_url(url: str, what: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        # Never echo the value: it is a credential.
        raise NotifierConfigError(f"{what} is not an http(s) URL")


# --------------------------------------------------------------------------------------------------
# Slack


def slack_payload(message: Message) -> dict[str, Any]:
    """Incoming-webhook body: ``text`` (notifications, fallback) and ``blocks`` (what people see)."""
    text = slack_escape(message.text)
    context = (
        f"Incident *{slack_escape(message.incident_id)}* | stage {message.stage.value} | "
        f"severity {message.severity} | for {slack_escape(', '.join(message.audience))}"
    )
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def slack_escape(text: str) -> str:
    """Slack's three control characters (``&``, ``<``, ``>``) as entities, per Slack's formatting rules."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def judge_slack(answer: HttpAnswer) -> Verdict:
    if answer.status == 200:
        return Verdict.OK if answer.body.strip() == "ok" else Verdict.PERMANENT
    if answer.status == 429 or answer.status >= 500:
        return Verdict.RETRY
    return Verdict.PERMANENT  # 400 invalid_payload, 403, 404 channel_not_found, 410 channel_is_archived, ...


class SlackWebhookNotifier:
    """Posts to Slack incoming webhooks, one webhook URL per channel (``{"#incidents": url}``)."""

    name = "slack"

    def __init__(
        self,
        webhooks: Mapping[str, str],
        *,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Sleep = time.sleep,
    ) -> None:
        for channel, url in webhooks.items():
            _require_http_url(url, f"Slack webhook for {channel}")
        self._webhooks = dict(webhooks)
        self._policy = policy
        self._sleep = sleep
        self.redactor = Redactor(self._webhooks.values())

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._webhooks)

    def __repr__(self) -> str:
        return f"SlackWebhookNotifier(channels={list(self._webhooks)})"

    def deliver(self, message: Message) -> Delivery:
        label = f"slack {message.channel}"
        url = self._webhooks.get(message.channel)
        if url is None:
            error = f"{label}: no webhook configured for this channel"
            return Delivery(False, 0, None, error, self.name, message.channel, message.dedup_key)
        body = slack_payload(message)
        ok, attempts, answer, error = send_with_retry(
            lambda: post_json(url, body, timeout=self._policy.timeout),
            judge_slack,
            policy=self._policy,
            sleep=self._sleep,
            label=label,
            redact=self.redactor,
        )
        status = answer.status if answer else None
        reference = "ok" if ok else None
        return Delivery(ok, attempts, status, error, self.name, message.channel, message.dedup_key, reference)


# --------------------------------------------------------------------------------------------------
# PagerDuty


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def pagerduty_event(
    message: Message,
    routing_key: str,
    *,
    source: str,
    group: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """The Events API v2 body for a message: a trigger with the full payload, or a bare resolve."""
    action = message.event_action or EventAction.TRIGGER
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action.value,
        "dedup_key": message.dedup_key,
    }
    if action is EventAction.RESOLVE:
        return event
    details = dict(message.details)
    markets = details.get("markets") or []
    event["payload"] = {
        "summary": truncate(message.text, MAX_SUMMARY),
        "source": source,
        "severity": message.severity if message.severity in SEVERITIES else "error",
        "timestamp": format_instant(message.timestamp or now),
        "component": ",".join(markets) or "market-data",
        "group": group,
        "class": details.get("cause") or message.stage.value,
        "custom_details": {
            "incident_id": message.incident_id,
            "stage": message.stage.value,
            "audience": list(message.audience),
            **details,
        },
    }
    return event


def judge_pagerduty(answer: HttpAnswer) -> Verdict:
    if answer.status == 202:
        return Verdict.OK
    if answer.status == 429 or answer.status >= 500:
        return Verdict.RETRY
    return Verdict.PERMANENT  # 400 invalid event: retrying the same bytes cannot succeed


class PagerDutyNotifier:
    """Sends Events API v2 ``trigger``/``resolve`` events; the dedup key is the incident id."""

    name = "pagerduty"

    def __init__(
        self,
        events_url: str,
        routing_key: str,
        *,
        source: str = "tradepulse-assets",
        group: str = "market-data",
        policy: RetryPolicy = RetryPolicy(),
        sleep: Sleep = time.sleep,
        clock: Now = utc_now,
    ) -> None:
        _require_http_url(events_url, f"{PAGERDUTY_EVENTS_URL_ENV}")
        if not routing_key or not routing_key.strip():
            raise NotifierConfigError(f"PagerDuty routing key ({PAGERDUTY_ROUTING_KEY_ENV}) is empty")
        self._url = events_url
        self._routing_key = routing_key
        self._source = source
        self._group = group
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        self.redactor = Redactor([routing_key, events_url] if "?" in events_url else [routing_key])

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(source={self._source!r})"

    def deliver(self, message: Message) -> Delivery:
        label = f"pagerduty {(message.event_action or EventAction.TRIGGER).value} {message.incident_id}"
        if not message.dedup_key or len(message.dedup_key) > MAX_DEDUP_KEY:
            error = f"{label}: dedup_key must be 1..{MAX_DEDUP_KEY} characters, got {len(message.dedup_key)}"
            return Delivery(False, 0, None, error, self.name, message.channel, message.dedup_key)
        body = pagerduty_event(
            message, self._routing_key, source=self._source, group=self._group, now=self._clock()
        )
        ok, attempts, answer, error = send_with_retry(
            lambda: post_json(self._url, body, timeout=self._policy.timeout),
            judge_pagerduty,
            policy=self._policy,
            sleep=self._sleep,
            label=label,
            redact=self.redactor,
        )
        reference = _json_field(answer.body, "dedup_key") if ok and answer else None
        status = answer.status if answer else None
        return Delivery(ok, attempts, status, error, self.name, message.channel, message.dedup_key, reference)


def _json_field(body: str, key: str) -> str | None:
    try:
        value = json.loads(body).get(key)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------------
# Dispatch

FailureHandler = Callable[[Message, Delivery], None]


def _log_failure(message: Message, delivery: Delivery) -> None:
    logger.error(
        "notification failed: incident %s %s via %s: %s",
        message.incident_id,
        message.stage.value,
        delivery.notifier,
        delivery.error,
    )


class Dispatcher:
    """Sends each message through every notifier of its channel and never raises.

    ``fallback`` takes messages for channels without notifiers (email, status page, Confluence in
    this project: the outbox). ``dead_letter`` (an outbox) keeps a copy of every message whose
    delivery failed after retries, with the redacted error, so an operator can resend it; together
    with the retries this makes delivery at-least-once. ``on_failure`` is called once per failed
    delivery (the incident engine writes it on the timeline); if it raises, that is logged, not
    propagated.
    """

    def __init__(
        self,
        notifiers_by_channel: Mapping[str, Sequence[Notifier]],
        on_failure: FailureHandler = _log_failure,
        *,
        fallback: Notifier | None = None,
        dead_letter: OutboxNotifier | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self._routes = {str(channel): tuple(ns) for channel, ns in notifiers_by_channel.items()}
        self._on_failure = on_failure
        self._fallback = fallback
        self._dead_letter = dead_letter
        self._redact = redactor or Redactor()

    def __repr__(self) -> str:
        routes = {channel: [n.name for n in ns] for channel, ns in self._routes.items()}
        return f"Dispatcher(routes={routes}, fallback={getattr(self._fallback, 'name', None)})"

    def routes(self) -> dict[str, list[str]]:
        """Channel -> notifier names (for ``--json`` output and docs); no secrets."""
        return {channel: [n.name for n in ns] for channel, ns in self._routes.items()}

    def notifiers_for(self, channel: str) -> tuple[Notifier, ...]:
        notifiers = self._routes.get(channel, ())
        if not notifiers and self._fallback is not None:
            return (self._fallback,)
        return notifiers

    def dispatch(self, messages: Iterable[Message]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        for message in messages:
            notifiers = self.notifiers_for(message.channel)
            if not notifiers:
                delivery = Delivery(
                    False,
                    0,
                    None,
                    f"no notifier for channel {message.channel}",
                    "none",
                    message.channel,
                    message.dedup_key,
                )
                deliveries.append(delivery)
                self._failed(message, delivery)
                continue
            for notifier in notifiers:
                delivery = self._deliver_one(notifier, message)
                deliveries.append(delivery)
                if not delivery.ok:
                    self._failed(message, delivery)
        return deliveries

    def _deliver_one(self, notifier: Notifier, message: Message) -> Delivery:
        name = getattr(notifier, "name", type(notifier).__name__)
        try:
            return notifier.deliver(message)
        except Exception as exc:  # a notifier bug must not stop the incident engine
            error = self._redact(f"{name} raised {type(exc).__name__}: {exc}")
            logger.error("notifier %s raised while delivering %s: %s", name, message.dedup_key, error)
            return Delivery(False, 0, None, error, name, message.channel, message.dedup_key)

    def _failed(self, message: Message, delivery: Delivery) -> None:
        if self._dead_letter is not None and delivery.notifier != self._dead_letter.name:
            self._dead_letter.deliver(message, note=f"undelivered: {delivery.error}")
        try:
            self._on_failure(message, delivery)
        except Exception as exc:
            logger.error(
                "on_failure handler raised for %s: %s",
                message.dedup_key,
                self._redact(f"{type(exc).__name__}: {exc}"),
            )


# --------------------------------------------------------------------------------------------------
# Configuration from the environment


def slack_channel_from_env_suffix(suffix: str) -> str:
    """``LEADERSHIP_TECH`` -> ``#leadership-tech``."""
    return "#" + suffix.strip().lower().replace("_", "-")


def slack_env_var(channel: str) -> str:
    """``#leadership-tech`` -> ``TRADEPULSE_SLACK_WEBHOOK_LEADERSHIP_TECH``."""
    return SLACK_WEBHOOK_ENV_PREFIX + channel.lstrip("#").upper().replace("-", "_")


def slack_webhooks_from_env(env: Mapping[str, str]) -> dict[str, str]:
    return {
        slack_channel_from_env_suffix(key[len(SLACK_WEBHOOK_ENV_PREFIX) :]): value.strip()
        for key, value in env.items()
        if key.startswith(SLACK_WEBHOOK_ENV_PREFIX)
        and len(key) > len(SLACK_WEBHOOK_ENV_PREFIX)
        and value.strip()
    }


def default_outbox_path(env: Mapping[str, str] | None = None) -> Path:
    """``$TRADEPULSE_HOME/observability/notifications/outbox.jsonl`` (``./var`` when unset)."""
    env = os.environ if env is None else env
    return Path(env.get("TRADEPULSE_HOME") or "var") / "observability" / "notifications" / "outbox.jsonl"


def dispatcher_from_env(
    env: Mapping[str, str] | None = None,
    outbox_path: str | os.PathLike[str] | None = None,
    *,
    on_failure: FailureHandler = _log_failure,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep = time.sleep,
    clock: Now = utc_now,
) -> Dispatcher:
    """Slack for channels with a ``TRADEPULSE_SLACK_WEBHOOK_<CHANNEL>``, PagerDuty when a routing
    key is set, the outbox for everything else (and as the dead letter for failed sends)."""
    env = os.environ if env is None else env
    webhooks = slack_webhooks_from_env(env)
    for channel in webhooks:
        _require_http_url(webhooks[channel], slack_env_var(channel))
    routing_key = (env.get(PAGERDUTY_ROUTING_KEY_ENV) or "").strip()
    events_url = (env.get(PAGERDUTY_EVENTS_URL_ENV) or "").strip() or DEFAULT_PAGERDUTY_EVENTS_URL

    routes: dict[str, list[Notifier]] = {}
    redactor = Redactor(list(webhooks.values()) + ([routing_key] if routing_key else []))
    if webhooks:
        slack = SlackWebhookNotifier(webhooks, policy=policy, sleep=sleep)
        for channel in webhooks:
            routes[channel] = [slack]
    if routing_key:
        pagerduty = PagerDutyNotifier(events_url, routing_key, policy=policy, sleep=sleep, clock=clock)
        redactor = redactor.merged(pagerduty.redactor)
        routes[Channel.PAGERDUTY.value] = [pagerduty]
    outbox = OutboxNotifier(outbox_path or default_outbox_path(env), clock=clock, redactor=redactor)
    return Dispatcher(routes, on_failure, fallback=outbox, dead_letter=outbox, redactor=redactor)
