"""The only module that speaks HTTP to Luma's Agents API (Ray 3.2, Uni-1): `../shared/luma-agents-api.md`.

It shares the Dream Machine client's transport, retry rules and typed errors (`luma.LumaClient`): reads retried,
a create sent once. What differs is the API's shape: one `POST /generations` with a `type`, answers with `output[]`
of presigned URLs and a `failure_code`, a Files API for uploads, and no callbacks, list, delete or credits. Answers
are read into the same `Generation` the rest of the app knows, with Agents' "processing" as "dreaming".
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from .luma import LumaClient
from .luma_assets import put_upload
from .luma_errors import (
    TRANSPORT_ERRORS,
    LumaConnectionError,
    LumaError,
    LumaFeatureUnavailable,
    LumaNotConfigured,
    LumaNotFound,
    LumaRateLimited,
    LumaRejected,
    error_for_status,
    short_reason,
)
from .luma_types import Generation, parse_datetime
from .urlsafety import simulator_hosts

log = logging.getLogger("lumaweb.luma")

# Agents' states, in the words the app uses (Dream Machine's).
STATES = {"queued": "queued", "processing": "dreaming", "completed": "completed", "failed": "failed"}
# How long an upload may take to become usable (ingest and moderation) before the submit gives up for now.
FILE_READY_SECONDS = 60.0
NO_DELETE = "Luma's Agents API has no delete: the generation stays on Luma's side; only our copy was removed."
# Uploads Luma was still reading when a submit stopped waiting, by client namespace and file: the next submit of
# the row waits for that same file instead of uploading it again (a slow ingest would otherwise start over each
# time). Kept per process, and small.
_PENDING_UPLOADS: dict[tuple, str] = {}
PENDING_UPLOADS_KEPT = 256


class LumaUploadUnfinished(LumaConnectionError):
    """An upload through the Files API did not finish: Luma was still reading the file, or answered a 5xx, or the
    connection or the PUT broke. No generation was created, so, as for a connection that was never made, the
    submit puts the row back in the queue and sends it later; it is never refused for this."""


def generation_from_agents(data: Any) -> Generation:
    """An Agents generation object as the app's Generation: state mapped, the first video and image outputs as
    its assets, failure_code before the reason. Every output (layers too) stays in `raw["output"]`."""
    if not isinstance(data, dict):
        return Generation()
    outputs = [item for item in data.get("output") or [] if isinstance(item, dict)]
    first = {}
    for item in outputs:
        first.setdefault(item.get("type"), item.get("url"))
    state = STATES.get(str(data.get("state") or "").strip().lower(), data.get("state"))
    code, reason = data.get("failure_code"), data.get("failure_reason")
    return Generation(
        id=data.get("id") if isinstance(data.get("id"), str) else None,
        state=state,
        failure_reason=f"{reason or 'Luma did not say why.'} ({code})" if code else reason,
        created_at=parse_datetime(data.get("created_at")),
        kind=data.get("type"),
        model=data.get("model"),
        video_url=first.get("video"),
        image_url=first.get("image"),
        raw=data,
    )


class AgentsClient(LumaClient):
    """A client for Luma's Agents API at base_url (e.g. https://agents.lumalabs.ai/v1).

    Same retry rules as LumaClient: reads retried, a create sent exactly once (Luma takes no idempotency key and
    has no list to find a lost one, so an unknown outcome raises LumaOutcomeUnknown and a person decides).
    """

    provider = "agents"

    def __init__(self, api_key: str, base_url: str, **kwargs):
        super().__init__(api_key, base_url, **kwargs)
        # Files belong to the key that uploaded them; pending uploads are remembered per key (a digest of it).
        self._namespace = hashlib.sha256(f"{self.base_url}|{api_key.strip()}".encode()).hexdigest()[:24]

    def __repr__(self) -> str:
        return f"<AgentsClient {self.base_url} (API key hidden)>"

    def create(self, body: dict) -> Generation:
        """Submit one generation; `body` as section 4 of the contract describes it."""
        return self._create("/generations", body)

    def get(self, generation_id: str) -> Generation:
        return generation_from_agents(self._json("GET", self._generation_path(generation_id)))

    def _generation_from(self, data: Any) -> Generation:
        return generation_from_agents(data)

    def list(self, *args, **kwargs):
        raise LumaFeatureUnavailable("Luma's Agents API has no list of generations.")

    def delete(self, generation_id: str) -> None:
        raise LumaFeatureUnavailable(NO_DELETE)

    def credits(self) -> float:
        raise LumaFeatureUnavailable("Luma's Agents API has no credit balance endpoint.")

    # --- files -----------------------------------------------------------------------------------------------

    def upload_file(self, path: Path, mime_type: str, *, purpose: str = "input", filename: str = "",
                    user_id: str | None = None) -> str:
        """Upload a file through the Files API (presigned PUT, then complete, then wait until ready); returns
        its file_id. Raises LumaRejected when Luma refuses the file (its failure_reason); LumaUploadUnfinished
        (retryable: nothing was created) when Luma is still reading it after FILE_READY_SECONDS or the upload
        broke off or met a 5xx; other LumaErrors (a bad key, a 429) as they come.

        A file Luma was still reading is remembered: the next call for the same file waits for it again rather
        than uploading it a second time."""
        stat = path.stat()
        name = filename or path.name
        memo = (self._namespace, str(path), stat.st_size, stat.st_mtime_ns, mime_type, purpose, user_id)
        try:
            file_id = self._resumable(memo)
            if file_id is None:
                file_id = self._start_upload(path, stat.st_size, mime_type, purpose, name, user_id)
                _remember(memo, file_id)
            self._wait_until_ready(file_id, name)
        except LumaRejected:
            _PENDING_UPLOADS.pop(memo, None)
            raise
        except (LumaRateLimited, LumaConnectionError):
            raise
        except LumaError as exc:
            if not exc.retryable:
                raise
            raise LumaUploadUnfinished(f"the upload of {name} to Luma's Files API did not finish: {exc}",
                                       status=exc.status, detail=exc.detail) from None
        _PENDING_UPLOADS.pop(memo, None)
        return file_id

    def _resumable(self, memo: tuple) -> str | None:
        """The file an earlier upload of this file left pending on Luma, if Luma still has it."""
        file_id = _PENDING_UPLOADS.get(memo)
        if file_id is None:
            return None
        try:
            file = self._json("GET", f"/files/{file_id}")
        except LumaNotFound:
            file = None
        if isinstance(file, dict) and file.get("state") in ("pending", "ready"):
            return file_id
        if isinstance(file, dict) and file.get("state") == "failed":
            return file_id  # the wait below says why Luma refused it; the same bytes would be refused again
        _PENDING_UPLOADS.pop(memo, None)
        return None

    def _start_upload(self, path: Path, size: int, mime_type: str, purpose: str, filename: str,
                      user_id: str | None) -> str:
        """POST /files, the presigned PUT and complete: Luma starts reading the file. Returns its id."""
        body = {"mime_type": mime_type, "size_bytes": size, "filename": filename, "purpose": purpose,
                "user_id": user_id}
        created = self._post_json("/files", {key: value for key, value in body.items() if value is not None})
        file_id, upload = created.get("id"), created.get("upload") or {}
        if not isinstance(file_id, str) or not upload.get("url"):
            raise LumaError("Luma's answer to POST /files has no file id or upload address.")
        self._put(upload["url"], path, upload.get("headers") or {})
        self._post_json(f"/files/{file_id}/complete", None)
        return file_id

    def _wait_until_ready(self, file_id: str, name: str) -> None:
        deadline = time.monotonic() + FILE_READY_SECONDS
        while True:
            file = self._json("GET", f"/files/{file_id}")
            state = file.get("state") if isinstance(file, dict) else None
            if state == "ready":
                return
            if state in ("failed", "deleted"):
                reason = file.get("failure_reason") or f"the file is {state}"
                raise LumaRejected(f"Luma refused the uploaded file: {reason}", detail=reason)
            if time.monotonic() > deadline:
                raise LumaUploadUnfinished(f"Luma was still reading the uploaded file {name} after "
                                           f"{FILE_READY_SECONDS:.0f} s; the request waits for it")
            self._sleep(0.5)

    def _post_json(self, path: str, body: dict | None) -> dict:
        """A POST that creates nothing billable (files): retried like a read would be only if it never left."""
        try:
            response = self._send("POST", path, body=body)
        except TRANSPORT_ERRORS as exc:
            raise LumaConnectionError(f"Could not reach Luma for POST {path} ({short_reason(exc)}).") from None
        if not response.ok:
            raise error_for_status(response.status_code, response.headers, self._detail(response), f"POST {path}")
        try:
            data = response.json()
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def _put(self, url: str, path: Path, headers: dict) -> None:
        """The presigned PUT to Luma's storage: checked and sent as downloads are (luma_assets.put_upload: the
        asset host allow-list, no proxy, no Authorization header)."""
        try:
            with open(path, "rb") as handle:
                response = put_upload(self.session, url, handle, {str(k): str(v) for k, v in headers.items()},
                                      timeout=(self.timeout[0], max(self.timeout[1], 120.0)),
                                      allowed=self.allowed_asset_hosts, trusted=simulator_hosts(self.base_url))
                response.close()
        except LumaConnectionError as exc:
            raise LumaConnectionError(f"The upload to Luma's storage broke off ({exc}).") from None
        if not response.ok:
            raise LumaError(f"Luma's storage refused the upload ({response.status_code}).",
                            status=response.status_code, retryable=response.status_code >= 500)


def _remember(memo: tuple, file_id: str) -> None:
    while len(_PENDING_UPLOADS) >= PENDING_UPLOADS_KEPT:
        _PENDING_UPLOADS.pop(next(iter(_PENDING_UPLOADS)))
    _PENDING_UPLOADS[memo] = file_id


def agents_client_from_settings() -> AgentsClient:
    """A client configured from Django settings: LUMA_AGENTS_API_KEY, LUMA_AGENTS_BASE_URL, the asset hosts
    and the LUMA_CONNECT_TIMEOUT / LUMA_READ_TIMEOUT seconds."""
    from django.conf import settings

    key = (getattr(settings, "LUMA_AGENTS_API_KEY", "") or "").strip()
    if not key:
        raise LumaNotConfigured("Luma's Agents API is not configured: LUMA_AGENTS_API_KEY is empty.")
    base_url = (getattr(settings, "LUMA_AGENTS_BASE_URL", "") or "").strip()
    if not base_url:
        raise LumaNotConfigured("Luma's Agents API is not configured: LUMA_AGENTS_BASE_URL is empty.")
    connect = float(getattr(settings, "LUMA_CONNECT_TIMEOUT", 5.0))
    read = float(getattr(settings, "LUMA_AGENTS_READ_TIMEOUT", 60.0))
    hosts = getattr(settings, "LUMA_AGENTS_ASSET_HOSTS", ()) or ()
    return AgentsClient(key, base_url, timeout=(connect, read), allowed_asset_hosts=hosts)
