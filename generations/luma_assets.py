"""Downloading Luma's assets (videos, images) from allowed hosts only, streamed, resumable with Range.

The API key never goes to an asset host: these requests carry no Authorization header at all. Every hop is read
with one parser and sent through a guarded connection that refuses non-public peers (see urlsafety).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from urllib.parse import urljoin, urlsplit

import requests

from .luma_errors import (
    TRANSPORT_ERRORS,
    LumaAssetHostNotAllowed,
    LumaConnectionError,
    LumaError,
    LumaTimeout,
    asset_error_for_status,
    short_reason,
)
from .urlsafety import Policy, Target, UnsafeURL, adapter_for, host_allowed, literal_hosts, parse, target_of
from .urlsafety import trusted_from_settings

log = logging.getLogger("lumaweb.luma")

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


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
    """Raise LumaAssetHostNotAllowed unless url is a plain http(s) URL on an allowed host; return it without its
    query (which may hold a signature) for messages and logs.

    "host" allows that host on the scheme's default port, "host:port" exactly that, "*.example.com" any
    subdomain on the default port. Addresses are checked when connecting (open_asset).
    """
    return _allowed(_read(parse, url), allowed).describe


def _read(reader, value, verb: str = "download") -> Target:
    try:
        return reader(value)
    except UnsafeURL as exc:
        raise LumaAssetHostNotAllowed(f"Refusing to {verb}: {exc}") from None


def _allowed(target: Target, allowed: frozenset[str], verb: str = "download from") -> Target:
    if not host_allowed(target.scheme, target.host, target.port, allowed):
        raise LumaAssetHostNotAllowed(
            f"Refusing to {verb} {target.netloc}: it is not one of the allowed asset hosts "
            "(LUMA_ASSET_HOSTS).", detail=target.netloc)
    return target


def open_asset(session: requests.Session, url: str, *, start: int, timeout: tuple[float, float],
               allowed: frozenset[str], trusted: frozenset[str] = frozenset()) -> AssetResponse:
    """See LumaClient.open_asset. `trusted` host:port keys may resolve to non-public addresses, on top of
    LUMA_TRUSTED_PRIVATE_HOSTS, the simulator's own host and IP addresses named in `allowed`."""
    policy = Policy(allowed, frozenset(trusted) | trusted_from_settings() | literal_hosts(allowed))
    headers = {"Accept": "*/*", "Accept-Encoding": "identity"}  # byte offsets must count the file's own bytes
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    for _hop in range(MAX_REDIRECTS + 1):
        # Every hop, both the URL as given (backslashes, user:pass@) and the very request that is sent (after the
        # session's defaults), so neither a redirect nor a parser's quirk leads off the allow-list.
        _allowed(_read(parse, url), allowed)
        prepared = session.prepare_request(requests.Request("GET", url, headers=headers, auth=_NoAuth()))
        target = _allowed(_read(target_of, prepared), allowed)
        describe = target.describe
        response = _send(session, policy, prepared, timeout, describe)
        status = response.status_code
        if status in _REDIRECTS and response.headers.get("Location"):
            response.close()
            url = urljoin(target.url, response.headers["Location"])
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


def put_upload(session: requests.Session, url: str, data, headers: dict, *, timeout: tuple[float, float],
               allowed: frozenset[str], trusted: frozenset[str] = frozenset()) -> requests.Response:
    """The presigned PUT of a Files API upload to Luma's storage, under the rules of open_asset: the URL Luma
    gave is checked against `allowed` as given and as sent, the connection against the address rules, no proxy,
    no API key; a redirect is not followed (a PUT body cannot be sent twice). The caller reads the status."""
    policy = Policy(allowed, frozenset(trusted) | trusted_from_settings() | literal_hosts(allowed))
    _allowed(_read(parse, url, "upload"), allowed, "upload to")
    prepared = session.prepare_request(requests.Request("PUT", url, data=data, headers=headers, auth=_NoAuth()))
    target = _allowed(_read(target_of, prepared, "upload"), allowed, "upload to")
    return _send(session, policy, prepared, timeout, target.describe, verb="upload to")


def _send(session: requests.Session, policy: Policy, prepared: requests.PreparedRequest,
          timeout: tuple[float, float], describe: str, verb: str = "download") -> requests.Response:
    # Straight through the guarded adapter: never a proxy (it would connect for us, unchecked), never the
    # session's own adapters; the session only lends its defaults (headers, TLS verification, client cert).
    verify = session.merge_environment_settings(prepared.url, {}, True, None, None)["verify"]
    started = time.monotonic()
    try:
        response = adapter_for(policy).send(prepared, stream=True, timeout=timeout, verify=verify,
                                            cert=session.cert, proxies=None)
    except UnsafeURL as exc:
        _log(describe, "refused", started, prepared.method)
        raise LumaAssetHostNotAllowed(f"Refusing to {verb} {describe}: {exc}") from None
    except requests.exceptions.ReadTimeout as exc:
        _log(describe, type(exc).__name__, started, prepared.method)
        raise LumaTimeout(f"The asset host {describe} did not answer within {timeout[1]:g} s.") from None
    except TRANSPORT_ERRORS as exc:
        _log(describe, type(exc).__name__, started, prepared.method)
        raise LumaConnectionError(f"Could not {verb} {describe}: {short_reason(exc)}") from None
    _log(describe, status=response.status_code, started=started, method=prepared.method)
    return response


def _log(describe: str, status, started: float, method: str = "GET") -> None:
    log.debug("%s %s -> %s in %.0f ms", method, describe, status, (time.monotonic() - started) * 1000)


def _answer(response: requests.Response, start: int, describe: str) -> AssetResponse:
    status = response.status_code
    if not 200 <= status < 300:
        response.close()  # unread: what an asset host says is never shown (it may not be an asset host at all)
        raise asset_error_for_status(status, response.headers, describe)
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


def _empty_206(response: requests.Response) -> requests.Response:
    empty = requests.Response()
    empty.status_code = 206
    empty.headers = requests.structures.CaseInsensitiveDict({"Content-Length": "0"})
    empty._content = b""
    empty._content_consumed = True
    empty.url = response.url
    return empty
