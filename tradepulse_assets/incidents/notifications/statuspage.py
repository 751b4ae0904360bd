"""The status page over its REST API (Atlassian Statuspage's ``POST /v1/pages/{page}/incidents`` shape).

The validation-pass message becomes a status-page incident in state ``resolved`` whose body is the runbook
text; ``Authorization: OAuth <key>`` as Statuspage expects. Any service accepting that JSON works.
"""

from __future__ import annotations

from typing import Any

from tradepulse_assets.core.http import HttpClient
from tradepulse_assets.incidents.communications import Message
from tradepulse_assets.incidents.notifications.transport import (
    Attempt,
    NotifierConfigError,
    Redactor,
    notify_client,
    post_once,
    require_http_url,
)


def statuspage_payload(message: Message) -> dict[str, Any]:
    markets = ", ".join(message.details.get("markets") or [])
    return {
        "incident": {
            "name": f"{'[DRILL] ' if message.drill else ''}Market data incident {message.incident_id}"
            + (f" ({markets})" if markets else ""),
            "status": "resolved",
            "body": message.text,
            "deliver_notifications": not message.drill,
            "metadata": {"tradepulse": {"incident_id": message.incident_id, "dedup_key": message.dedup_key}},
        }
    }


class StatusPage:
    name = "status-page"

    def __init__(self, incidents_url: str, token: str, *, client: HttpClient | None = None) -> None:
        require_http_url(incidents_url, "TRADEPULSE_STATUSPAGE_URL")
        if not token:
            raise NotifierConfigError("TRADEPULSE_STATUSPAGE_TOKEN is empty")
        self._url, self._token = incidents_url, token
        self._client = client or notify_client()
        self.redactor = Redactor([token])

    def __repr__(self) -> str:
        return "StatusPage()"

    def handles(self, channel: str) -> bool:
        return channel == "status-page"

    def send(self, message: Message) -> Attempt:
        return post_once(
            self._client,
            self._url,
            statuspage_payload(message),
            label=f"status page {message.incident_id}",
            redact=self.redactor,
            headers={"Authorization": f"OAuth {self._token}"},
            reference=lambda answer: str(answer.json().get("id")) if answer.body.startswith(b"{") else None,
        )
