"""Downloading Luma's assets (videos, images) from allowed hosts only, streamed, resumable with Range.

The API key never goes to an asset host: these requests carry no Authorization header at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from urllib.parse import urljoin, urlsplit

import requests

from .luma_errors import (
    TRANSPORT_ERRORS,
    LumaAssetExpired,
    LumaAssetHostNotAllowed,
    LumaConnectionError,
    LumaError,
    LumaTimeout,
    detail_of,
    error_for_status,
    short_reason,
)

log = logging.getLogger("lumaweb.luma")

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
# A signed CDN link that has expired answers 403 (S3, CloudFront) or 401/404/410 elsewhere.
_EXPIRED = (401, 403, 404, 410)


class _NoAuth(requests.auth.AuthBase):
    """No Authorization header at all (also keeps requests from reaching for ~/.netrc or the URL's user:pass)."""

    def __call__(self, request):
        request.headers.pop("Authorization", None)
        return request


class AssetResponse:
    """An asset download in progress (a context manager): status, sizes, whether a Range was honoured, chunks.

    content_length is what this answer carries (the remaining bytes when resumed); total_size is the whole file.
    """

    def __init__(self, response: requests.Response, start: int, total_size: int | None, resumed: bool,
                 describe: str):
        self._response = response
        self._describe = describe
        self.status = response.status_code
        self.resumed = resumed
        self.start = start if resumed else 0
        self.total_size = total_size
        self.content_length = _int_header(response.headers.get("Content-Length"))
        self.content_type = response.headers.get("Content-Type", "")

    def iter_chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The body in chunks of at most chunk_size; a broken line raises LumaConnectionError or LumaTimeout."""
        try:
            for chunk in self._response.iter_content(chunk_size):
                if chunk:
                    yield chunk
        except requests.exceptions.Timeout as exc:
            raise LumaTimeout(f"The download from {self._describe} stalled: {short_reason(exc)}") from None
        except TRANSPORT_ERRORS as exc:
            raise LumaConnectionError(f"The download from {self._describe} broke off: {short_reason(exc)}") from None

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> AssetResponse:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AssetResponse {self.status} {self._describe} {self.content_length}/{self.total_size} bytes>"


def normalise_hosts(entries: Iterable[str]) -> frozenset[str]:
    """Allow-list entries as host or host:port, lowercased; a whole URL is cut down to its host[:port]."""
    hosts = set()
    for entry in entries:
        entry = (entry or "").strip().lower()
        if "//" in entry:
            entry = urlsplit(entry).netloc
        if entry.rstrip("/"):
            hosts.add(entry.rstrip("/"))
    return frozenset(hosts)


def check_asset_url(url: str, allowed: frozenset[str]) -> str:
    """Raise LumaAssetHostNotAllowed unless url is http(s) on an allowed host; return it without its query
    (which may hold a signature) for messages and logs.

    "host" allows that host on the scheme's default port, "host:port" exactly that, "*.example.com" any
    subdomain on the default port.
    """
    parts = urlsplit(url if isinstance(url, str) else "")
    netloc = parts.netloc.rpartition("@")[2]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = repr(url.split("?")[0][:100]) if isinstance(url, str) and url else "an empty URL"
        raise LumaAssetHostNotAllowed(f"Refusing to download {shown}: only http and https URLs are fetched.")
    try:
        port = parts.port
    except ValueError:
        raise LumaAssetHostNotAllowed(f"Refusing to download from {netloc}: the port is not a number.") from None
    host = parts.hostname.lower()
    default = 443 if parts.scheme == "https" else 80
    names = {f"{host}:{port or default}"}
    if port in (None, default):
        names.add(host)
        names.update(f"*.{host.split('.', i)[-1]}" for i in range(1, host.count(".") + 1))
    if not names & allowed:
        raise LumaAssetHostNotAllowed(
            f"Refusing to download from {netloc}: it is not one of the allowed asset hosts (LUMA_ASSET_HOSTS).",
            detail=netloc)
    return f"{parts.scheme}://{netloc}{parts.path}"


def open_asset(session: requests.Session, url: str, *, start: int, timeout: tuple[float, float],
               allowed: frozenset[str]) -> AssetResponse:
    """See LumaClient.open_asset."""
    headers = {"Accept": "*/*", "Accept-Encoding": "identity"}  # byte offsets must count the file's own bytes
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    for _hop in range(MAX_REDIRECTS + 1):
        describe = check_asset_url(url, allowed)  # every hop: a redirect must not lead off the allow-list
        response = _send(session, url, headers, timeout, describe)
        status = response.status_code
        if status in _REDIRECTS and response.headers.get("Location"):
            response.close()
            url = urljoin(url, response.headers["Location"])
            continue
        if status == 416 and "Range" in headers:
            response.close()
            total = _content_range(response.headers.get("Content-Range", ""))[1]
            if total == start:  # the caller already holds every byte
                return AssetResponse(_empty_206(response), start, total, True, describe)
            del headers["Range"]  # an offset past the end: start over from byte 0
            continue
        return _answer(response, start if "Range" in headers else 0, describe)
    raise LumaError(f"The asset at {describe} redirected more than {MAX_REDIRECTS} times.")


def _send(session: requests.Session, url: str, headers: dict, timeout: tuple[float, float],
          describe: str) -> requests.Response:
    started = time.monotonic()
    try:
        response = session.get(url, headers=headers, auth=_NoAuth(), timeout=timeout, stream=True,
                               allow_redirects=False)
    except requests.exceptions.ReadTimeout as exc:
        _log(describe, type(exc).__name__, started)
        raise LumaTimeout(f"The asset host {describe} did not answer within {timeout[1]:g} s.") from None
    except TRANSPORT_ERRORS as exc:
        _log(describe, type(exc).__name__, started)
        raise LumaConnectionError(f"Could not download {describe}: {short_reason(exc)}") from None
    _log(describe, status=response.status_code, started=started)
    return response


def _log(describe: str, status, started: float) -> None:
    log.debug("GET %s -> %s in %.0f ms", describe, status, (time.monotonic() - started) * 1000)


def _answer(response: requests.Response, start: int, describe: str) -> AssetResponse:
    status = response.status_code
    if not 200 <= status < 300:
        detail = detail_of(_text(response), response.reason or "")
        response.close()
        if status in _EXPIRED:
            raise LumaAssetExpired(f"The asset link {describe} no longer works ({status}): {detail}",
                                   status=status, detail=detail)
        raise error_for_status(status, response.headers, detail, f"GET {describe}")
    if status == 206:
        first, total = _content_range(response.headers.get("Content-Range", ""))
        if first is not None and first != start:
            response.close()
            raise LumaError(f"The asset host sent {describe} from byte {first}, not {start}.", status=206,
                            retryable=True)
        return AssetResponse(response, start, total, True, describe)
    return AssetResponse(response, start, _int_header(response.headers.get("Content-Length")), False, describe)


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(first byte, total size) from "bytes 100-999/1000" or "bytes */1000"; None where unknown."""
    unit, _, rest = value.strip().partition(" ")
    if unit.lower() != "bytes":
        return None, None
    span, _, total = rest.partition("/")
    first = span.partition("-")[0].strip()
    return _int_header(first), _int_header(total)


def _int_header(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def _text(response: requests.Response) -> str:
    """The start of an error page; never the whole of it, however big a CDN's error page is."""
    try:
        return next(response.iter_content(4000), b"").decode("utf-8", "replace")
    except TRANSPORT_ERRORS:
        return ""


def _empty_206(response: requests.Response) -> requests.Response:
    empty = requests.Response()
    empty.status_code = 206
    empty.headers = requests.structures.CaseInsensitiveDict({"Content-Length": "0"})
    empty._content = b""
    empty._content_consumed = True
    empty.url = response.url
    return empty
