"""The one HTTP transport: a ``requests`` session with an ``urllib3.Retry`` policy, for every outbound call.

Why one transport: the vendor connector and every notification channel face the same failures (a 429 with
``Retry-After``, a 502 from a load balancer, a read that never completes) and the same risk (a redirect
carrying a bearer token to another host). Handled once, here, they are handled the same way everywhere:

* **Retries only where a retry can help.** Connection errors, timeouts, 429 and 5xx are retried with
  exponential backoff (``urllib3.Retry``); other 4xx are returned at once (a rejected token or a deleted
  channel does not heal). Retries apply to every method: callers that POST make their payloads idempotent
  (a dedup key), so delivery is at least once.
* **Retry-After is honoured, within reason.** A 429/503 asking to wait up to ``max_retry_after`` seconds is
  waited for; a longer wait is not done in-process (a sensor tick has a budget): the answer is returned with
  ``retry_after`` set, so a caller such as the notification outbox schedules the next attempt itself.
* **Credentials stay with their origin.** Redirects are followed here, not by ``requests``: at most
  ``max_redirects`` hops; a hop to another origin (scheme, host or port) drops ``Authorization``,
  ``Proxy-Authorization``, ``Cookie`` and any header the caller names as a credential, and URL user-info is
  never sent. ``max_redirects=0`` returns the 3xx answer itself (a webhook that redirects is misconfigured).
* **Errors never echo secrets.** ``HttpUnavailable`` names the method and the *origin* of the URL only
  (paths and query strings can hold webhook tokens and keys), never a header.

Usage::

    client = HttpClient(HttpPolicy(attempts=3, read_timeout=5))
    answer = client.request("GET", url, headers={"Authorization": f"Bearer {token}"})
    if answer.status == 404: ...
    body = answer.json()
"""

from __future__ import annotations

import json as jsonlib
import os
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.adapters
import requests.utils
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

USER_AGENT = "tradepulse-assets/1"
RETRY_STATUSES = frozenset({429, *range(500, 600)})
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class HttpError(Exception):
    """Base of transport errors; the text names method and origin, never a path, query or header."""


class HttpUnavailable(HttpError):
    """No HTTP answer after every attempt (refused, reset, DNS, connect or read timeout)."""


class HttpRedirectError(HttpError):
    """More redirects than the policy allows, or a redirect without a usable ``Location``."""


@dataclass(frozen=True)
class HttpPolicy:
    """How hard to try one request.

    ``attempts`` counts tries (1 = no retry). Between tries urllib3 waits ``backoff * 2**(n-1)`` seconds
    (capped at ``max_backoff``; urllib3 does not wait before the first retry), or what ``Retry-After`` asks
    when that is at most ``max_retry_after``. ``connect_timeout``/``read_timeout`` bound each socket wait.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"HttpPolicy.attempts must be >= 1, got {self.attempts}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("HttpPolicy timeouts must be > 0")
        if self.max_redirects < 0:
            raise ValueError(f"HttpPolicy.max_redirects must be >= 0, got {self.max_redirects}")

    def retry(self) -> Retry:
        retries = self.attempts - 1
        return _BoundedRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=False,  # redirects are ours (credential stripping), not urllib3's
            allowed_methods=None,  # every method: callers make POSTs idempotent with a dedup key
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff,
            backoff_max=self.max_backoff,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer is returned, not an exception
            max_retry_after=self.max_retry_after,
        )


class _BoundedRetry(Retry):
    """``Retry`` that returns a 429/503 at once when its ``Retry-After`` exceeds ``max_retry_after``
    (urllib3's own ``retry_after_max`` would sleep *less* than asked, and retry too early)."""

    def __init__(self, *args: Any, max_retry_after: float = 120.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after

    def new(self, **kw: Any) -> _BoundedRetry:
        retry = super().new(**kw)
        retry.max_retry_after = self.max_retry_after
        return retry

    def increment(
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ):
        if response is not None and error is None:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is not None and wait > self.max_retry_after:
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {wait:.0f}s exceeds the policy"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


@dataclass(frozen=True)
class HttpResponse:
    """An HTTP answer (any status). ``attempts`` counts tries of the last hop; ``retry_after`` is the
    server's ``Retry-After`` in seconds (``None`` when absent or unreadable)."""

    status: int
    body: bytes
    url: str
    attempts: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def snippet(self, limit: int = 200) -> str:
        """The body on one line, shortened: for error messages."""
        text = " ".join(self.text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); ``None`` if absent or garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    import datetime as dt
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, without user-info: safe to print."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _origin_key(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _without_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class HttpClient:
    """Sends requests under one ``HttpPolicy``; safe to share between threads and across ``fork``.

    ``credential_headers`` names extra headers (besides Authorization, Proxy-Authorization, Cookie) that
    must not follow a redirect to another origin, e.g. an API-key header.
    """

    def __init__(
        self,
        policy: HttpPolicy | None = None,
        *,
        user_agent: str = USER_AGENT,
        credential_headers: Iterable[str] = (),
    ) -> None:
        self.policy = policy or HttpPolicy()
        self._user_agent = user_agent
        self._credentials = CREDENTIAL_HEADERS | {h.lower() for h in credential_headers}
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HttpClient({self.policy})"

    def _session(self) -> requests.Session:
        # One session (connection pool) per thread and process: pools must not cross a fork.
        session = getattr(self._local, "session", None)
        if session is None or self._local.pid != os.getpid():
            session = requests.Session()
            session.trust_env = False  # no .netrc credentials; proxies are applied per request below
            adapter = requests.adapters.HTTPAdapter(max_retries=self.policy.retry())
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session, self._local.pid = session, os.getpid()
        return session

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
    ) -> HttpResponse:
        """Send one request, following redirects by this module's rules; any HTTP status is an answer.

        Raises ``HttpUnavailable`` when no answer came after every attempt, ``HttpRedirectError`` when the
        redirect budget is spent.
        """
        method = method.upper()
        sent_headers = {"User-Agent": self._user_agent, **(headers or {})}
        if json is not None:
            data = jsonlib.dumps(json, separators=(",", ":")).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        url = _without_userinfo(url)
        first = _origin_key(url)
        for hop in range(self.policy.max_redirects + 1):
            answer = self._send(method, url, sent_headers, data)
            location = answer.headers.get("Location")
            if answer.status not in REDIRECT_STATUSES or self.policy.max_redirects == 0:
                return answer
            if not location:
                raise HttpRedirectError(f"{method} {origin(url)}: HTTP {answer.status} without Location")
            if hop == self.policy.max_redirects:
                break
            url = _without_userinfo(urllib.parse.urljoin(url, location))
            if _origin_key(url) != first:
                sent_headers = {k: v for k, v in sent_headers.items() if k.lower() not in self._credentials}
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method, data = "GET", None  # what browsers and requests do
                sent_headers = {k: v for k, v in sent_headers.items() if k.lower() != "content-type"}
        raise HttpRedirectError(f"{method} {origin(url)}: more than {self.policy.max_redirects} redirect(s)")

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], data: bytes | str | None
    ) -> HttpResponse:
        proxies = requests.utils.get_environ_proxies(url)
        try:
            response = self._session().request(
                method,
                url,
                headers=dict(headers),
                data=data,
                timeout=(self.policy.connect_timeout, self.policy.read_timeout),
                allow_redirects=False,
                proxies=proxies,
            )
        except requests.RequestException as exc:
            reason = _reason(exc)
            raise HttpUnavailable(
                f"{method} {origin(url)}: no answer after {self.policy.attempts} attempt(s): {reason}"
            ) from None
        retries = getattr(response.raw, "retries", None)
        attempts = 1 + len(retries.history) if retries is not None else 1
        return HttpResponse(
            status=response.status_code,
            body=response.content,
            url=url,
            attempts=attempts,
            headers=response.headers,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def get(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> HttpResponse:
        return self.request("POST", url, **kwargs)


def _reason(exc: BaseException) -> str:
    """The innermost cause's class name: ``ReadTimeoutError``, ``ConnectionRefusedError``... (no URLs)."""
    seen = exc
    for _ in range(6):
        inner = getattr(seen, "reason", None) or (seen.args[0] if seen.args else None) or seen.__cause__
        if not isinstance(inner, BaseException):
            inner = seen.__cause__
        if not isinstance(inner, BaseException):
            break
        seen = inner
    name = type(seen).__name__
    if isinstance(seen, OSError) and seen.errno is not None:
        return f"{name} (errno {seen.errno})"
    if isinstance(exc, requests.Timeout) and "Timeout" not in name:
        return f"timeout ({name})"
    return name
