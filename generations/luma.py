"""The only module that speaks HTTP to Luma's Dream Machine API: one requests.Session per client, explicit
timeouts, typed errors that say whether a retry can help. Reads are retried; a create is sent once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .luma_assets import AssetResponse, check_asset_url, normalise_hosts
from .luma_assets import open_asset as _open_asset
from .luma_errors import (
    MALFORMED_URL_ERRORS,
    TRANSPORT_ERRORS,
    LumaAssetExpired,
    LumaAssetHostNotAllowed,
    LumaAuthError,
    LumaConnectionError,
    LumaError,
    LumaFeatureUnavailable,
    LumaNotConfigured,
    LumaNotFound,
    LumaOutcomeUnknown,
    LumaPaymentError,
    LumaRateLimited,
    LumaRejected,
    LumaServerError,
    LumaTimeout,
    detail_of,
    error_for_status,
    never_sent,
    retry_after_seconds,
    short_reason,
)
from .luma_types import Generation, GenerationPage, parse_datetime
from .urlsafety import simulator_hosts

__all__ = [
    "AssetResponse", "Generation", "GenerationPage", "LumaAssetExpired", "LumaAssetHostNotAllowed", "LumaAuthError",
    "LumaClient", "LumaConnectionError", "LumaError", "LumaFeatureUnavailable", "LumaNotConfigured", "LumaNotFound",
    "LumaOutcomeUnknown", "LumaPaymentError", "LumaRateLimited", "LumaRejected", "LumaServerError", "LumaTimeout",
    "check_asset_url", "client_from_settings", "parse_datetime", "retry_after_seconds",
]

log = logging.getLogger("lumaweb.luma")

MAX_RETRY_SLEEP = 30.0  # a read never waits longer than this between attempts, whatever Retry-After says
MAX_BACKOFF = 8.0
CAMERA_MOTIONS_GONE = "This Luma server no longer offers the camera-motion list; use concepts instead"


class _BearerAuth(requests.auth.AuthBase):
    """Puts the key on API requests; its repr hides the key, so no log line or traceback shows it."""

    __slots__ = ("_token",)

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<bearer token hidden>"

    def scrub(self, text: str) -> str:
        return text.replace(self._token, "[api key]") if text else text


class LumaClient:
    """A client for Luma's Dream Machine API at base_url (e.g. https://api.lumalabs.ai/dream-machine/v1).

    Retry rules, because a create bills:
    - Reads (get, list, concepts, camera_motions, credits, ping) make up to `get_retries` attempts in all,
      with exponential backoff and jitter, on connection errors, timeouts, 429 (waiting Retry-After, capped)
      and 5xx; then the typed error is raised.
    - delete is idempotent and retried the same way; a 404 after an attempt whose answer was lost counts as
      deleted.
    - A create (any POST) is sent exactly once. If it surely never left (connection refused, DNS, connect
      timeout) it raises LumaConnectionError (retryable: nothing reached Luma). If it may have reached Luma
      and the answer was lost (read timeout, dropped connection, 5xx, a 2xx without a generation id) it
      raises LumaOutcomeUnknown (not retryable, maybe_created): the caller reconciles by listing. 429 raises
      LumaRateLimited (nothing was created), 400/422 LumaRejected.
    """

    provider = "dream_machine"  # which Generation.provider rows this client speaks for

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        get_retries: int = 3,
        backoff: float = 0.5,
        allowed_asset_hosts: Iterable[str] = (),
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        api_key = (api_key or "").strip()
        if not api_key:
            raise LumaNotConfigured("No Luma API key was given.")
        if any(not 33 <= ord(char) <= 126 for char in api_key):
            # Said without the key itself: requests would quote the whole header in its own error.
            raise LumaNotConfigured("The Luma API key contains spaces or characters an HTTP header cannot carry.")
        if not (base_url or "").strip():
            raise LumaNotConfigured("No Luma base URL was given.")
        self.base_url = base_url.strip().rstrip("/")
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.get_retries = max(1, int(get_retries))
        self.backoff = float(backoff)
        self.allowed_asset_hosts = normalise_hosts(allowed_asset_hosts)
        self.session = session if session is not None else requests.Session()
        self._own_session = session is None
        self._auth = _BearerAuth(api_key)
        self._sleep = sleep
        self._random = random.Random()

    def __repr__(self) -> str:
        return f"<LumaClient {self.base_url} (API key hidden)>"

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> LumaClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- creates: sent once ---------------------------------------------------------------------------------

    def create_video(self, *, prompt: str | None = None, model: str = "ray-2", aspect_ratio: str | None = None,
                     loop: bool | None = None, keyframes: dict | None = None, resolution: str | None = None,
                     duration: str | None = None, concepts: Iterable[str] | None = None,
                     callback_url: str | None = None) -> Generation:
        """Text-to-video, start and/or end frame, extend, reverse extend, interpolate. keyframes is
        {"frame0": {"type": "image", "url": ...} | {"type": "generation", "id": ...}, "frame1": ...};
        concepts is a list of keys from concepts()."""
        if keyframes is not None:
            keyframes = {slot: frame for slot, frame in keyframes.items() if frame is not None} or None
        if concepts is not None:
            concepts = [c if isinstance(c, dict) else {"key": c} for c in concepts] or None
        body = {"prompt": prompt, "model": model, "aspect_ratio": aspect_ratio, "loop": loop, "keyframes": keyframes,
                "resolution": resolution, "duration": duration, "concepts": concepts, "callback_url": callback_url}
        return self._create("/generations/video", body)

    def create_image(self, *, prompt: str | None, model: str = "photon-1", aspect_ratio: str | None = None,
                     format: str | None = None, image_ref: list[dict] | None = None,
                     style_ref: list[dict] | None = None, character_ref: dict | None = None,
                     modify_image_ref: dict | None = None, callback_url: str | None = None) -> Generation:
        """A Photon image. image_ref and style_ref are [{"url", "weight"}], modify_image_ref {"url", "weight"},
        character_ref {"identity0": {"images": [url, ...]}}."""
        body = {"prompt": prompt, "model": model, "aspect_ratio": aspect_ratio, "format": format,
                "image_ref": image_ref, "style_ref": style_ref, "character_ref": character_ref,
                "modify_image_ref": modify_image_ref, "callback_url": callback_url}
        return self._create("/generations/image", body)

    def upscale(self, generation_id: str, *, resolution: str | None = None,
                callback_url: str | None = None) -> Generation:
        """A new generation: the completed video generation_id at a higher resolution."""
        path = f"{self._generation_path(generation_id)}/upscale"
        return self._create(path, {"resolution": resolution, "callback_url": callback_url})

    def add_audio(self, generation_id: str, *, prompt: str | None = None, negative_prompt: str | None = None,
                  callback_url: str | None = None) -> Generation:
        """A new generation: the completed video generation_id with a soundtrack."""
        path = f"{self._generation_path(generation_id)}/audio"
        body = {"prompt": prompt, "negative_prompt": negative_prompt, "callback_url": callback_url}
        return self._create(path, body)

    def modify_video(self, *, media: str | dict, mode: str, model: str = "ray-2", prompt: str | None = None,
                     first_frame: str | dict | None = None, callback_url: str | None = None) -> Generation:
        """Restyle a video (media: its URL); mode is adhere_1..3, flex_1..3 or reimagine_1..3."""
        body = {"generation_type": "modify_video", "media": _url_object(media), "mode": mode, "model": model,
                "prompt": prompt, "first_frame": _url_object(first_frame), "callback_url": callback_url}
        return self._create("/generations/video/modify", body)

    def reframe_video(self, *, media: str | dict, aspect_ratio: str, model: str = "ray-2", prompt: str | None = None,
                      first_frame: str | dict | None = None, grid_position_x: int | None = None,
                      grid_position_y: int | None = None, x_start: int | None = None, x_end: int | None = None,
                      y_start: int | None = None, y_end: int | None = None, resized_width: int | None = None,
                      resized_height: int | None = None, callback_url: str | None = None) -> Generation:
        """Extend a video (media: its URL) to another aspect ratio; positions and crop bounds are in pixels."""
        body = {"generation_type": "reframe_video", "media": _url_object(media), "model": model,
                "aspect_ratio": aspect_ratio, "prompt": prompt, "first_frame": _url_object(first_frame),
                "grid_position_x": grid_position_x, "grid_position_y": grid_position_y, "x_start": x_start,
                "x_end": x_end, "y_start": y_start, "y_end": y_end, "resized_width": resized_width,
                "resized_height": resized_height, "callback_url": callback_url}
        return self._create("/generations/video/reframe", body)

    def reframe_image(self, *, media: str | dict, aspect_ratio: str, model: str = "photon-1",
                      prompt: str | None = None, format: str | None = None, grid_position_x: int | None = None,
                      grid_position_y: int | None = None, x_start: int | None = None, x_end: int | None = None,
                      y_start: int | None = None, y_end: int | None = None, resized_width: int | None = None,
                      resized_height: int | None = None, callback_url: str | None = None) -> Generation:
        """Extend an image (media: its URL) to another aspect ratio; positions and crop bounds are in pixels."""
        body = {"generation_type": "reframe_image", "media": _url_object(media), "model": model,
                "aspect_ratio": aspect_ratio, "prompt": prompt, "format": format,
                "grid_position_x": grid_position_x, "grid_position_y": grid_position_y, "x_start": x_start,
                "x_end": x_end, "y_start": y_start, "y_end": y_end, "resized_width": resized_width,
                "resized_height": resized_height, "callback_url": callback_url}
        return self._create("/generations/image/reframe", body)

    # --- reads: retried --------------------------------------------------------------------------------------

    def get(self, generation_id: str) -> Generation:
        return Generation.from_json(self._json("GET", self._generation_path(generation_id)))

    def list(self, limit: int = 10, offset: int = 0) -> GenerationPage:
        """One page of generations, newest first as far as Luma says."""
        data = self._json("GET", "/generations", params={"limit": limit, "offset": offset})
        return GenerationPage.from_json(data, limit=limit, offset=offset)

    def delete(self, generation_id: str) -> None:
        """Delete on Luma (any 2xx). An unknown id raises LumaNotFound, unless an earlier attempt's answer was
        lost: then the 404 means that attempt did delete it."""
        self._read("DELETE", self._generation_path(generation_id), delete=True)

    def concepts(self) -> list[str]:
        """Concept keys for create_video(concepts=[...]), such as "dolly_zoom"."""
        return _strings(self._json("GET", "/generations/concepts/list"))

    def camera_motions(self) -> list[str]:
        """Legacy camera-motion phrases to type into prompts; a newer server answers 404, raised as
        LumaFeatureUnavailable."""
        try:
            return _strings(self._json("GET", "/generations/camera_motion/list"))
        except LumaNotFound as exc:
            raise LumaFeatureUnavailable(CAMERA_MOTIONS_GONE, status=404, detail=exc.detail) from None

    def credits(self) -> float:
        """The account's credit balance in USD cents."""
        data = self._json("GET", "/credits")
        try:
            return float(data["credit_balance"])
        except (KeyError, TypeError, ValueError):
            raise LumaError("Luma's answer to GET /credits has no readable credit_balance.", status=200) from None

    def ping(self) -> str:
        """Luma's health check; returns its message (the simulator says "pong")."""
        data = self._json("GET", "/ping")
        message = data.get("message") if isinstance(data, dict) else data
        return message if isinstance(message, str) else ""

    # --- assets ----------------------------------------------------------------------------------------------

    def open_asset(self, url: str, *, start: int = 0) -> AssetResponse:
        """Start downloading an asset (use it as a context manager), from byte `start` with a Range request.

        The host is checked against allowed_asset_hosts before any request is made, and again on every
        redirect; the connection refuses loopback, private and link-local peers unless trusted (this client's
        own simulator, LUMA_TRUSTED_PRIVATE_HOSTS); the API key is never sent. 401/403/404/410 raise
        LumaAssetExpired (ask Luma for a fresh URL). If the server ignores the Range the body starts at byte 0
        and `.resumed` is False.
        """
        return _open_asset(self.session, url, start=max(0, int(start)), timeout=self.timeout,
                           allowed=self.allowed_asset_hosts, trusted=simulator_hosts(self.base_url))

    # --- plumbing --------------------------------------------------------------------------------------------

    def _generation_path(self, generation_id: str) -> str:
        generation_id = str(generation_id or "").strip()
        if not generation_id:
            raise LumaRejected("No Luma generation id was given, so nothing was asked of Luma.",
                               detail="A generation id is required")
        return f"/generations/{quote(generation_id, safe='')}"

    def _send(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None,
              attempt: int = 1) -> requests.Response:
        """One HTTP exchange, logged in one line (never headers); transport errors propagate as raised."""
        started = time.monotonic()
        try:
            response = self.session.request(
                method, self.base_url + path, params=params, json=body, auth=self._auth, timeout=self.timeout,
                headers={"Accept": "*/*" if method == "DELETE" else "application/json"},
                # A redirected POST may turn into a GET: a create lands where it was sent, or nowhere.
                allow_redirects=method != "POST",
            )
        except TRANSPORT_ERRORS as exc:
            self._log(method, path, type(exc).__name__, started, attempt)
            raise
        self._log(method, path, response.status_code, started, attempt)
        return response

    @staticmethod
    def _log(method: str, path: str, status, started: float, attempt: int) -> None:
        retry = f" (attempt {attempt})" if attempt > 1 else ""
        log.debug("%s %s -> %s in %.0f ms%s", method, path, status, (time.monotonic() - started) * 1000, retry)

    def _create(self, path: str, body: dict) -> Generation:
        """POST a create once, and say what each failure means for billing."""
        body = {key: value for key, value in body.items() if value is not None}  # as the SDK: absent, not null
        try:
            response = self._send("POST", path, body=body)
        except MALFORMED_URL_ERRORS as exc:
            raise LumaNotConfigured(f"The Luma base URL is malformed ({self._reason(exc)}).") from None
        except TRANSPORT_ERRORS as exc:
            # Never retried here, however tempting: once the request may have reached Luma, a second POST
            # can create and bill a second generation (Luma takes no idempotency key). Only a connection
            # that was never made proves nothing was sent, and only then may the caller send it again.
            if never_sent(exc):
                raise LumaConnectionError(f"Could not connect to Luma at {self._host} ({self._reason(exc)}); "
                                          f"nothing was sent.") from None
            if isinstance(exc, requests.exceptions.Timeout):
                raise self._outcome_unknown(path, f"no answer within {self.timeout[1]:g} s") from None
            raise self._outcome_unknown(path, f"the connection broke ({self._reason(exc)})") from None
        status = response.status_code
        if status >= 500:  # Luma may have stored (and billed) the job before failing to answer
            detail = self._detail(response)
            raise self._outcome_unknown(path, f"Luma answered {status} ({detail})", status=status, detail=detail)
        if 300 <= status < 400:
            raise LumaError(f"Luma redirected POST {path} to {response.headers.get('Location', '?')}; nothing "
                            f"was created. Check LUMA_BASE_URL.", status=status)
        if status >= 400:
            raise error_for_status(status, response.headers, self._detail(response), f"POST {path}")
        try:
            generation = self._generation_from(response.json())
        except ValueError:
            generation = Generation()
        if not generation.id:
            raise self._outcome_unknown(path, f"Luma answered {status} without a generation id", status=status)
        return generation

    def _generation_from(self, data: Any) -> Generation:
        """A create's answer as a Generation (the Agents client reads its own shape)."""
        return Generation.from_json(data)

    def _outcome_unknown(self, path: str, why: str, *, status: int | None = None,
                         detail: str = "") -> LumaOutcomeUnknown:
        return LumaOutcomeUnknown(
            f"POST {path} may or may not have created a generation on Luma: {why}. It was not sent again, since "
            f"that could bill twice.",
            status=status, detail=detail)

    def _json(self, method: str, path: str, *, params: dict | None = None) -> Any:
        response = self._read(method, path, params=params)
        try:
            return response.json()
        except ValueError:
            raise LumaError(f"Luma answered {method} {path} with something that is not JSON.",
                            status=response.status_code) from None

    def _read(self, method: str, path: str, *, params: dict | None = None, delete: bool = False) -> requests.Response:
        """GET (or DELETE) with retries on what may pass: connection errors, timeouts, 429 and 5xx."""
        maybe_done = False  # an earlier DELETE may have reached Luma before its answer was lost
        for attempt in range(1, self.get_retries + 1):
            try:
                response = self._send(method, path, params=params, attempt=attempt)
            except MALFORMED_URL_ERRORS as exc:
                raise LumaNotConfigured(f"The Luma base URL is malformed ({self._reason(exc)}).") from None
            except TRANSPORT_ERRORS as exc:
                error = self._transport_error(exc, method, path)
                maybe_done = maybe_done or not never_sent(exc)
            else:
                if response.ok:
                    return response
                if delete and response.status_code == 404 and maybe_done:
                    return response
                error = error_for_status(response.status_code, response.headers, self._detail(response),
                                         f"{method} {path}")
                maybe_done = maybe_done or response.status_code >= 500
            if not error.retryable or attempt == self.get_retries:
                raise error
            self._sleep(self._delay(attempt, error))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, error: LumaError) -> float:
        if isinstance(error, LumaRateLimited):
            return min(error.retry_after, MAX_RETRY_SLEEP)
        return min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF) * self._random.uniform(0.75, 1.0)

    def _transport_error(self, exc: BaseException, method: str, path: str) -> LumaError:
        if never_sent(exc):
            return LumaConnectionError(f"Could not connect to Luma at {self._host} ({self._reason(exc)}).")
        if isinstance(exc, requests.exceptions.Timeout):
            return LumaTimeout(f"Luma did not answer {method} {path} within {self.timeout[1]:g} s.")
        return LumaConnectionError(f"The connection to Luma broke during {method} {path} ({self._reason(exc)}).")

    def _detail(self, response: requests.Response) -> str:
        """Luma's explanation from an error body, with the key scrubbed out should a server ever echo it."""
        try:
            text = response.text[:4000]
        except TRANSPORT_ERRORS:
            text = ""
        return self._auth.scrub(detail_of(text, response.reason or ""))

    def _reason(self, exc: BaseException) -> str:
        return self._auth.scrub(short_reason(exc))

    @property
    def _host(self) -> str:
        return urlsplit(self.base_url).netloc


def _url_object(value: str | dict | None) -> dict | None:
    """media / first_frame as Luma wants them, {"url": ...}, from a URL or an object already in that shape."""
    return value if value is None or isinstance(value, dict) else {"url": value}


def _strings(data: Any) -> list[str]:
    """A list of strings from ["a", ...], [{"key": "a"}, ...] or {"<anything>": [...]}."""
    if isinstance(data, dict):
        data = next((value for value in data.values() if isinstance(value, list)), [])
    if not isinstance(data, list):
        return []
    items = [item.get("key") or item.get("name") if isinstance(item, dict) else item for item in data]
    return [item for item in items if isinstance(item, str) and item]


def client_from_settings() -> LumaClient:
    """A client configured from Django settings: LUMAAI_API_KEY, LUMA_BASE_URL, LUMA_ASSET_HOSTS and the
    LUMA_CONNECT_TIMEOUT / LUMA_READ_TIMEOUT seconds."""
    from django.conf import settings

    key = (getattr(settings, "LUMAAI_API_KEY", "") or "").strip()
    if not key:
        raise LumaNotConfigured("Luma is not configured: LUMAAI_API_KEY is empty (set it, or run the simulator).")
    base_url = (getattr(settings, "LUMA_BASE_URL", "") or "").strip()
    if not base_url:
        raise LumaNotConfigured("Luma is not configured: LUMA_BASE_URL is empty.")
    connect = float(getattr(settings, "LUMA_CONNECT_TIMEOUT", 5.0))
    read = float(getattr(settings, "LUMA_READ_TIMEOUT", 30.0))
    hosts = getattr(settings, "LUMA_ASSET_HOSTS", ()) or ()
    return LumaClient(key, base_url, timeout=(connect, read), allowed_asset_hosts=hosts)
