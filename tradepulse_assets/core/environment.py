"""Every environment variable the platform reads, declared once, and the one function that reads them.

Why: configuration used to be read by whichever module needed it (17 of them), so no page could say what an
operator may set, and a misspelt name was silently ignored. Here each variable is declared with its default
and whether it is a secret; every layer reads through :func:`read`, which refuses an undeclared name, and
``docs/configuration.md`` is checked against this table by a test. Secrets never enter resource config:
Dagster resources receive them as ``EnvVar`` (``pipeline/settings.py``).

``environ`` arguments exist for tests and for child processes whose environment is being built; the default
is this process's environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "VARIABLES",
    "PREFIXES",
    "UndeclaredVariable",
    "Variable",
    "is_set",
    "read",
    "read_named",
    "read_prefixed",
]


class UndeclaredVariable(KeyError):
    """A variable the table below does not declare: a typo in code, or a variable missing from the docs."""


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    default: str | None = None  # what an unset (or empty) variable reads as
    secret: bool = False


def _table(*variables: Variable) -> dict[str, Variable]:
    return {v.name: v for v in variables}


VARIABLES: dict[str, Variable] = _table(
    # -- where things live (the two profiles: docs/production.md)
    Variable("TRADEPULSE_HOME", "root of the embedded profile: store, state DB, reports, logs", "./var"),
    Variable(
        "TRADEPULSE_OBJECT_STORE_URL", "lake, landing and quarantine: a directory or s3://bucket/prefix"
    ),
    Variable(
        "TRADEPULSE_S3_ENDPOINT_URL", "S3 endpoint of the object store and an S3 vendor drop (unset: AWS)"
    ),
    Variable(
        "TRADEPULSE_STATE_DB_URL",
        "state DB: sqlite:///... or postgresql://user:password@host/db",
        secret=True,
    ),
    Variable("TRADEPULSE_MARKETS_FILE", "a market registry TOML replacing the packaged one"),
    Variable("TRADEPULSE_REPORTS_URL", "base URL of the reports folder, linked from notifications"),
    Variable("TRADEPULSE_DAGSTER_URL", "base URL of the Dagster UI, linked from notifications"),
    Variable("AWS_REGION", "AWS region of S3 clients"),
    Variable(
        "AWS_ACCESS_KEY_ID", "S3 credentials, read by boto3 itself (or a profile, or a role)", secret=True
    ),
    Variable(
        "AWS_SECRET_ACCESS_KEY", "S3 credentials, read by boto3 itself (or a profile, or a role)", secret=True
    ),
    Variable("AWS_ENDPOINT_URL", "default S3 endpoint of `tradepulse-cli vendor publish --dest s3://...`"),
    Variable("DAGSTER_HOME", "Dagster's instance folder (`make run` and the CLI: $TRADEPULSE_HOME/dagster)"),
    # -- the vendor
    Variable("TRADEPULSE_VENDOR_SOURCE", "vendor drop: a directory, s3://... or https://..."),
    Variable(
        "TRADEPULSE_VENDOR_TOKEN", "bearer token of the HTTP vendor API (and of `vendor serve`)", secret=True
    ),
    # -- how the platform runs
    Variable(
        "TRADEPULSE_CLOCK",
        "system, fixed:<iso>, simulated:<iso start>:<speed> (replays) or file:<path> (a stepped drill)",
        "system",
    ),
    Variable(
        "TRADEPULSE_EXECUTOR", "in_process, multiprocess or celery (steps on Celery workers)", "in_process"
    ),
    Variable(
        "TRADEPULSE_CELERY_BROKER_URL",
        "broker and result backend of the celery executor and its workers: redis://host:6379/0",
        secret=True,
    ),
    Variable("TRADEPULSE_LAG_LOOKBACK_SESSIONS", "how many closed sessions the lag sensors watch", "3"),
    Variable(
        "TRADEPULSE_SENSOR_INTERVAL_SECONDS", "minimum seconds between two ticks of every sensor (unset: 15-30 s)"
    ),
    Variable(
        "TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS",
        "seconds between two looks of the `make run` daemon at its run queue (Dagster's default)",
        "5",
    ),
    Variable("TRADEPULSE_UI_PORT", "port of the Dagster UI started by `make run`", "3000"),
    # -- notification channels (docs/notifications.md)
    Variable("TRADEPULSE_PAGERDUTY_ROUTING_KEY", "PagerDuty Events v2 routing key", secret=True),
    Variable(
        "TRADEPULSE_PAGERDUTY_DRILL_ROUTING_KEY", "routing key used by drills with --notify", secret=True
    ),
    Variable("TRADEPULSE_PAGERDUTY_EVENTS_URL", "PagerDuty Events API URL (default: PagerDuty's)"),
    Variable("TRADEPULSE_SMTP_HOST", "SMTP server of the email channel"),
    Variable("TRADEPULSE_SMTP_PORT", "SMTP port", "25"),
    Variable("TRADEPULSE_SMTP_USER", "SMTP user"),
    Variable("TRADEPULSE_SMTP_PASSWORD", "SMTP password", secret=True),
    Variable("TRADEPULSE_SMTP_STARTTLS", "1/true/yes to upgrade the SMTP connection with STARTTLS"),
    Variable("TRADEPULSE_EMAIL_FROM", "sender of incident emails"),
    Variable("TRADEPULSE_EMAIL_TO", "comma-separated recipients of incident emails"),
    Variable("TRADEPULSE_STATUSPAGE_URL", "status page API endpoint of incidents"),
    Variable("TRADEPULSE_STATUSPAGE_TOKEN", "status page API token", secret=True),
    Variable("TRADEPULSE_CONFLUENCE_URL", "Confluence base URL for post-mortems"),
    Variable("TRADEPULSE_CONFLUENCE_SPACE", "Confluence space key"),
    Variable("TRADEPULSE_CONFLUENCE_TOKEN", "Confluence API token", secret=True),
    Variable("TRADEPULSE_CONFLUENCE_PARENT_ID", "Confluence page the post-mortems go under"),
)

#: Families of variables named by a suffix (``TRADEPULSE_SLACK_WEBHOOK_INCIDENTS`` for ``#incidents``).
PREFIXES: dict[str, Variable] = _table(
    Variable("TRADEPULSE_SLACK_WEBHOOK_", "Slack incoming webhook of channel <CHANNEL>", secret=True),
)


def _declared(name: str) -> Variable:
    try:
        return VARIABLES[name]
    except KeyError:
        raise UndeclaredVariable(f"{name} is not declared in tradepulse_assets/core/environment.py") from None


def read(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of declared variable ``name`` (stripped), or its default when unset or empty."""
    variable = _declared(name)
    return read_named(name, environ) or variable.default


def read_named(name: str, environ: Mapping[str, str] | None = None) -> str:
    """A variable the firm names in its configuration (a vendor's ``token_env`` in the market registry), so
    not declared here: its value stripped, or ``""``. The declared readers above share it."""
    return (os.environ if environ is None else environ).get(name, "").strip()


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether declared variable ``name`` has a non-empty value (not just its default)."""
    _declared(name)
    return bool(read_named(name, environ))


def read_prefixed(prefix: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{suffix: value}`` of the set, non-empty variables of a declared family."""
    if prefix not in PREFIXES:
        raise UndeclaredVariable(f"{prefix}* is not declared in tradepulse_assets/core/environment.py")
    env = os.environ if environ is None else environ
    return {k[len(prefix) :]: v.strip() for k, v in env.items() if k.startswith(prefix) and v.strip()}
