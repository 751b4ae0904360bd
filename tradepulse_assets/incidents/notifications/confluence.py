"""Confluence over its REST API: the post-mortem page (``POST /rest/api/content``, storage format).

The page title is unique per incident, so a retry after a lost answer meets "title already exists" (HTTP
400): that is the page we created, and counts as delivered rather than as a failure.
"""

from __future__ import annotations

import html
from typing import Any

from tradepulse_assets.core.http import HttpClient
from tradepulse_assets.incidents.communications import Message
from tradepulse_assets.incidents.notifications.transport import (
    DELIVERED,
    Attempt,
    NotifierConfigError,
    Redactor,
    notify_client,
    post_once,
    require_http_url,
)


def page_title(message: Message) -> str:
    return f"{'[DRILL] ' if message.drill else ''}Incident {message.incident_id} retrospective"


def confluence_payload(message: Message, space: str, parent_id: str | None = None) -> dict[str, Any]:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in message.details.items()
    )
    body = f"<p>{html.escape(message.text)}</p><table><tbody>{rows}</tbody></table>"
    page: dict[str, Any] = {
        "type": "page",
        "title": page_title(message),
        "space": {"key": space},
        "body": {"storage": {"value": body, "representation": "storage"}},
    }
    if parent_id:
        page["ancestors"] = [{"id": parent_id}]
    return page


class ConfluencePages:
    name = "confluence"

    def __init__(
        self,
        base_url: str,
        space: str,
        token: str,
        *,
        parent_id: str | None = None,
        client: HttpClient | None = None,
    ) -> None:
        require_http_url(base_url, "TRADEPULSE_CONFLUENCE_URL")
        if not space or not token:
            raise NotifierConfigError(
                "Confluence needs TRADEPULSE_CONFLUENCE_SPACE and TRADEPULSE_CONFLUENCE_TOKEN"
            )
        self._url = base_url.rstrip("/") + "/rest/api/content"
        self._space, self._token, self._parent = space, token, parent_id
        self._client = client or notify_client()
        self.redactor = Redactor([token])

    def __repr__(self) -> str:
        return f"ConfluencePages(space={self._space!r})"

    def handles(self, channel: str) -> bool:
        return channel == "confluence"

    def send(self, message: Message) -> Attempt:
        attempt = post_once(
            self._client,
            self._url,
            confluence_payload(message, self._space, self._parent),
            label=f"confluence {message.incident_id}",
            redact=self.redactor,
            headers={"Authorization": f"Bearer {self._token}"},
            reference=lambda answer: str(answer.json().get("id")) if answer.body.startswith(b"{") else None,
        )
        if attempt.status == 400 and "already exists" in (attempt.error or ""):
            return Attempt(DELIVERED, 400, None, reference="exists")
        return attempt
