"""Typed errors of the Luma client: each says whether a retry can help (`retryable`) and reads as a sentence.

No error text ever carries the API key: the client builds every message and scrubs Luma's own text first.
"""

from __future__ import annotations

import email.utils
import http.client
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import requests
import urllib3.exceptions

MAX_DETAIL = 500
DEFAULT_RETRY_AFTER = 10.0  # seconds, when a 429 does not say

# Everything requests (or urllib3 beneath it) raises when an exchange fails without an HTTP answer.
TRANSPORT_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException)
# Raised before anything goes on the wire because the URL is malformed.
MALFORMED_URL_ERRORS = (requests.exceptions.URLRequired, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL)
# Found inside a transport error when no connection was ever made: the request cannot have reached Luma.
_NEVER_CONNECTED = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                    urllib3.exceptions.SSLError, requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)


class LumaError(Exception):
    """Something went wrong talking to Luma. `status` is the HTTP status (None without an answer),
    `detail` Luma's own explanation when it gave one, `retryable` whether the same call may succeed later."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, detail: str = "", retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class LumaNotConfigured(LumaError):
    """No API key (or base URL) in the settings: nothing can be asked of Luma."""


class LumaAuthError(LumaError):
    """401: Luma rejected the API key."""


class LumaPaymentError(LumaError):
    """402 or 403: out of credit, or the key may not do this."""


class LumaNotFound(LumaError):
    """404: no such generation (or path)."""


class LumaFeatureUnavailable(LumaNotFound):
    """404 from an endpoint this Luma server no longer offers (the legacy camera-motion list)."""


class LumaRejected(LumaError):
    """400 or 422: Luma refused the request as written; `detail` says why. Nothing was created or billed."""


class LumaRateLimited(LumaError):
    """429: too many requests or too many generations in flight. Nothing was created; try after `retry_after` s."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class LumaServerError(LumaError):
    """5xx on a read: Luma had trouble; reads are retried, and it may pass."""

    retryable = True


class LumaConnectionError(LumaError):
    """No answer: could not connect (for a create, the request was never sent), or a read's connection broke."""

    retryable = True


class LumaTimeout(LumaError):
    """A read got no answer within the read timeout."""

    retryable = True


class LumaOutcomeUnknown(LumaError):
    """A create reached Luma (or may have) but its answer was lost: a read timeout, a dropped connection or a 5xx.

    It is not retryable: resending could create, and bill, a second generation. The caller reconciles by
    listing Luma's recent generations (e.g. by the callback URL it sent) before deciding to send again.
    """

    maybe_created = True


class LumaAssetHostNotAllowed(LumaError):
    """An asset URL was refused before anything was sent: not a plain http(s) URL (user:pass@, a backslash,
    control characters), a host outside `allowed_asset_hosts`, or a name that resolves to a loopback, private or
    link-local address without being trusted. Nothing was fetched; the URL itself will not start working."""


class LumaAssetExpired(LumaError):
    """The asset host answered 401/403/404/410: the link has expired or is gone. Fetch the generation again for a
    fresh URL; retrying the same URL will not help."""


def detail_of(body: Any, fallback: str = "") -> str:
    """A readable explanation from an error body: FastAPI's {"detail": "..."} or its list of field errors
    ("keyframes.frame0.url: Field required"), another JSON shape, or raw text; truncated."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            text = " ".join(body.split())
            return _truncate(text or fallback)
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if key in body and body[key] not in (None, "", []):
                return detail_of_value(body[key], fallback)
    return detail_of_value(body, fallback)


def detail_of_value(value: Any, fallback: str = "") -> str:
    if isinstance(value, str):
        return _truncate(value.strip() or fallback)
    if isinstance(value, list):
        parts = [_field_error(item) for item in value]
        return _truncate("; ".join(part for part in parts if part) or fallback)
    if value is None:
        return _truncate(fallback)
    return _truncate(json.dumps(value, default=str, ensure_ascii=False))


def _field_error(item: Any) -> str:
    """One FastAPI/pydantic error: {"loc": ["body", "keyframes", "frame0", "url"], "msg": "Field required"}."""
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    parts = [str(p) for p in loc] if isinstance(loc, (list, tuple)) else []
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    message = str(item.get("msg") or item.get("message") or item.get("type") or "invalid")
    return f"{'.'.join(parts)}: {message}" if parts else message


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def error_for_status(status: int, headers, detail: str, what: str) -> LumaError:
    """The typed error for a non-2xx answer to `what` ("GET /generations/..."); detail already scrubbed."""
    said = f": {detail}" if detail else ""
    if status == 401:
        return LumaAuthError(f"Luma rejected the API key (401){said}", status=status, detail=detail)
    if status in (402, 403):
        why = "out of credit" if status == 402 else "not allowed"
        return LumaPaymentError(f"Luma refused {what}, {why} ({status}){said}", status=status, detail=detail)
    if status == 404:
        return LumaNotFound(f"Luma has nothing at {what} (404){said}", status=status, detail=detail)
    if status in (400, 413, 422):
        return LumaRejected(f"Luma rejected the request ({status}){said}", status=status, detail=detail)
    if status == 429:
        wait = retry_after_seconds(headers)
        return LumaRateLimited(f"Luma is rate limiting us (429); try again in {wait:.0f} s{said}", status=status,
                               detail=detail, retry_after=wait)
    if status >= 500:
        return LumaServerError(f"Luma had a server error ({status}) on {what}{said}", status=status, detail=detail)
    return LumaError(f"Luma answered {status} to {what}{said}", status=status, detail=detail,
                     retryable=status in (408, 409))


def asset_error_for_status(status: int, headers, describe: str) -> LumaError:
    """The typed error for a non-2xx answer from an asset host. The message holds the status and a fixed phrase,
    never the host's own text: an asset URL can come from outside, and whatever it answered must not reach a page."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "an unexpected answer"
    detail = f"{status} {phrase}"
    if status in (401, 403, 404, 410):
        return LumaAssetExpired(f"The asset link {describe} no longer works ({detail}).", status=status,
                                detail=phrase)
    if status == 429:
        wait = retry_after_seconds(headers)
        return LumaRateLimited(f"The asset host is rate limiting us ({detail}) on {describe}; try again in "
                               f"{wait:.0f} s.", status=status, detail=phrase, retry_after=wait)
    if status >= 500:
        return LumaServerError(f"The asset host had a server error ({detail}) on {describe}.", status=status,
                               detail=phrase)
    return LumaError(f"The asset host answered {detail} to {describe}.", status=status, detail=phrase,
                     retryable=status in (408, 409))


def retry_after_seconds(headers, default: float = DEFAULT_RETRY_AFTER, now: datetime | None = None) -> float:
    """Seconds to wait from retry-after-ms, or Retry-After as seconds or as an HTTP date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (args, .reason) and what caused it, a few levels deep."""
    seen, todo = set(), [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        nested = [a for a in getattr(item, "args", ()) if isinstance(a, BaseException)]
        nested += [x for x in (getattr(item, "reason", None), item.__cause__, item.__context__)
                   if isinstance(x, BaseException)]
        todo.extend(nested)


def never_sent(exc: BaseException) -> bool:
    """True when a transport error shows that no connection was made (refused, DNS, connect timeout, TLS)."""
    return any(isinstance(item, _NEVER_CONNECTED) for item in _chain(exc))


def short_reason(exc: BaseException) -> str:
    """The innermost useful words of a transport error ("Connection refused", "Read timed out")."""
    deepest = exc
    for item in _chain(exc):
        deepest = item
    text = str(deepest) or type(deepest).__name__
    return " ".join(text.split())[:200]
