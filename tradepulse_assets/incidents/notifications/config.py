"""Which channels are configured, from the environment (the README's notification table), and drill mode.

Endpoints and secrets are read from the environment when notifications are built, never stored in run config,
so they do not show up in the Dagster UI. A channel with no configuration has no transport: its messages are
recorded in the JSONL outbox file, as before transports existed.

Drill mode is a property of the *state DB*, not of the process: a drill's sandbox state DB carries the
``drill_mode`` watermark (``quiet`` or ``notify``), so every sensor, run worker and CLI command that opens it
marks messages as drills, and in ``quiet`` mode sends nothing anywhere: a replay cannot page anyone by accident.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tradepulse_assets.core.environment import read, read_prefixed
from tradepulse_assets.incidents.notifications.confluence import ConfluencePages
from tradepulse_assets.incidents.notifications.email import SmtpEmail
from tradepulse_assets.incidents.notifications.pagerduty import DEFAULT_EVENTS_URL, PagerDutyEvents
from tradepulse_assets.incidents.notifications.slack import SlackWebhooks
from tradepulse_assets.incidents.notifications.statuspage import StatusPage
from tradepulse_assets.incidents.notifications.transport import Channel, NotifierConfigError, Redactor
from tradepulse_assets.storage.state import StateDB

SLACK_WEBHOOK_ENV_PREFIX = "TRADEPULSE_SLACK_WEBHOOK_"
DRILL_MODE_WATERMARK = "drill_mode"
QUIET, NOTIFY = "quiet", "notify"


@dataclass(frozen=True)
class ChannelConfig:
    """The configured channels, the links put into messages, and whether this is a drill."""

    channels: tuple[Channel, ...] = ()
    drill: bool = False
    dagster_url: str | None = None
    reports_url: str | None = None
    redactor: Redactor = field(default_factory=Redactor)

    def channel_for(self, channel: str) -> Channel | None:
        return next((c for c in self.channels if c.handles(channel)), None)

    def by_name(self, name: str) -> Channel | None:
        return next((c for c in self.channels if c.name == name), None)

    def links(self, incident_dir: str, run_id: str | None = None) -> dict[str, str]:
        """``timeline`` (the incident's timeline.md) and, with a Dagster URL, the run (or the runs page)."""
        links = {}
        if self.reports_url:
            links["timeline"] = f"{self.reports_url.rstrip('/')}/{incident_dir}/timeline.md"
        if self.dagster_url:
            base = self.dagster_url.rstrip("/")
            links["Dagster run"] = f"{base}/runs/{run_id}" if run_id else f"{base}/runs"
        return links


def slack_channel_from_env_suffix(suffix: str) -> str:
    """``LEADERSHIP_TECH`` -> ``#leadership-tech``."""
    return "#" + suffix.strip().lower().replace("_", "-")


def slack_env_var(channel: str) -> str:
    """``#leadership-tech`` -> ``TRADEPULSE_SLACK_WEBHOOK_LEADERSHIP_TECH``."""
    return SLACK_WEBHOOK_ENV_PREFIX + channel.lstrip("#").upper().replace("-", "_")


def slack_webhooks_from_env(env: Mapping[str, str] | None) -> dict[str, str]:
    return {
        slack_channel_from_env_suffix(suffix): url
        for suffix, url in read_prefixed(SLACK_WEBHOOK_ENV_PREFIX, env).items()
        if suffix
    }


def _get(env: Mapping[str, str] | None, name: str) -> str:
    return read(name, env) or ""


def drill_mode(db: StateDB) -> str | None:
    """``None`` (live), ``quiet`` (a drill that sends nothing) or ``notify`` (a drill sent with its marker)."""
    return db.get_watermark(DRILL_MODE_WATERMARK)


def channels_from_env(
    env: Mapping[str, str] | None,
    *,
    drill: bool = False,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> ChannelConfig:
    """Every channel with configuration. In a drill, PagerDuty uses ``TRADEPULSE_PAGERDUTY_DRILL_ROUTING_KEY``
    when set (a separate service nobody is on call for)."""
    channels: list[Channel] = []
    webhooks = slack_webhooks_from_env(env)
    if webhooks:
        channels.append(SlackWebhooks(webhooks))
    dagster_url = _get(env, "TRADEPULSE_DAGSTER_URL") or None
    routing_key = (drill and _get(env, "TRADEPULSE_PAGERDUTY_DRILL_ROUTING_KEY")) or _get(
        env, "TRADEPULSE_PAGERDUTY_ROUTING_KEY"
    )
    if routing_key:
        events_url = _get(env, "TRADEPULSE_PAGERDUTY_EVENTS_URL") or DEFAULT_EVENTS_URL
        channels.append(PagerDutyEvents(events_url, routing_key, client_url=dagster_url, clock=clock))
    if _get(env, "TRADEPULSE_SMTP_HOST"):
        port = _get(env, "TRADEPULSE_SMTP_PORT") or "25"
        if not port.isdigit():
            raise NotifierConfigError("TRADEPULSE_SMTP_PORT is not a port number")
        channels.append(
            SmtpEmail(
                _get(env, "TRADEPULSE_SMTP_HOST"),
                int(port),
                _get(env, "TRADEPULSE_EMAIL_FROM"),
                [a.strip() for a in _get(env, "TRADEPULSE_EMAIL_TO").split(",") if a.strip()],
                username=_get(env, "TRADEPULSE_SMTP_USER") or None,
                password=_get(env, "TRADEPULSE_SMTP_PASSWORD") or None,
                starttls=_get(env, "TRADEPULSE_SMTP_STARTTLS").lower() in ("1", "true", "yes"),
            )
        )
    if _get(env, "TRADEPULSE_STATUSPAGE_URL"):
        channels.append(
            StatusPage(_get(env, "TRADEPULSE_STATUSPAGE_URL"), _get(env, "TRADEPULSE_STATUSPAGE_TOKEN"))
        )
    if _get(env, "TRADEPULSE_CONFLUENCE_URL"):
        channels.append(
            ConfluencePages(
                _get(env, "TRADEPULSE_CONFLUENCE_URL"),
                _get(env, "TRADEPULSE_CONFLUENCE_SPACE"),
                _get(env, "TRADEPULSE_CONFLUENCE_TOKEN"),
                parent_id=_get(env, "TRADEPULSE_CONFLUENCE_PARENT_ID") or None,
            )
        )
    redactor = Redactor()
    for channel in channels:
        redactor = redactor.merged(getattr(channel, "redactor", Redactor()))
    return ChannelConfig(
        tuple(channels),
        drill=drill,
        dagster_url=dagster_url,
        reports_url=_get(env, "TRADEPULSE_REPORTS_URL") or None,
        redactor=redactor,
    )


def config_for(db: StateDB, env: Mapping[str, str] | None, **kwargs) -> ChannelConfig:
    """The channels for messages about incidents of ``db``: none in a quiet drill, drill-marked in a drill."""
    mode = drill_mode(db)
    if mode == QUIET:
        return ChannelConfig(drill=True)
    return channels_from_env(env, drill=mode == NOTIFY, **kwargs)
