"""Luma's two APIs behind one small interface the jobs call: create, read, list (where there is one), delete (where
there is one) and download.

- Dream Machine v1 (`luma.py`): callbacks, a list to find lost creates, delete.
- Agents API (`luma_agents.py`: Ray 3.2, Uni-1): no callbacks, no list, no delete, a Files API for uploads.

A row knows its provider (`Generation.provider`); `for_row(row)` gives its adapter. Views and templates never branch on
the provider beyond showing its name.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from . import luma
from .luma_agents import AgentsClient, agents_client_from_settings
from .models import ArchiveState, Generation, KeyframeImage, Kind, Provider, State


def user_token(user) -> str | None:
    """A stable, opaque id for a team member (Agents' user_id): Luma's usage reports attribute work per person
    without learning who they are."""
    if user is None:
        return None
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"lumaweb-user:{user.pk}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Adapter:
    """What a provider can do, and how to reach it."""

    name: str
    label: str
    callbacks: bool  # Luma calls us back when a generation moves
    can_list: bool  # a list endpoint lost creates can be found in
    can_delete: bool  # Luma deletes a generation on request
    can_upscale: bool  # upscale and add audio to a finished video (Dream Machine's alone)

    def client(self) -> luma.LumaClient:
        return agents_client_from_settings() if self.name == Provider.AGENTS else luma.client_from_settings()

    def configured(self) -> bool:
        if self.name == Provider.AGENTS:
            return bool(settings.LUMA_AGENTS_API_KEY and settings.LUMA_AGENTS_BASE_URL)
        return bool(settings.LUMAAI_API_KEY and settings.LUMA_BASE_URL)

    def create(self, row: Generation, before_send=lambda: True) -> luma.Generation:
        """Send the row's create, exactly once (the caller has claimed the row). Inputs that go through a Files
        API are uploaded first; `before_send()` is asked right before the create, and NotSent is raised (nothing
        sent) when it says no."""
        client = self.client()
        body = agents_request(row, client) if self.name == Provider.AGENTS else None  # uploads go first
        if not before_send():
            raise NotSent
        return client.create(body) if body is not None else _send_v1(client, row)


class NotSent(Exception):
    """The create was not sent: the row is no longer this job's to send (the sweep gave it back to the queue)."""


DREAM_MACHINE = Adapter(Provider.DREAM_MACHINE, "Dream Machine", callbacks=True, can_list=True, can_delete=True,
                        can_upscale=True)
AGENTS = Adapter(Provider.AGENTS, "Agents API", callbacks=False, can_list=False, can_delete=False, can_upscale=False)
ADAPTERS = {DREAM_MACHINE.name: DREAM_MACHINE, AGENTS.name: AGENTS}


def for_row(row: Generation) -> Adapter:
    return ADAPTERS.get(row.provider, DREAM_MACHINE)


def configured() -> list[Adapter]:
    return [adapter for adapter in ADAPTERS.values() if adapter.configured()]


# --- Dream Machine v1 --------------------------------------------------------------------------------------------


def _send_v1(client: luma.LumaClient, row: Generation) -> luma.Generation:
    body = row.luma_request()
    if row.kind == Kind.IMAGE:
        return client.create_image(**body)
    if row.kind == Kind.UPSCALE:
        return client.upscale(row.source.luma_id, **body)
    if row.kind == Kind.ADD_AUDIO:
        return client.add_audio(row.source.luma_id, **body)
    if row.kind == Kind.MODIFY_VIDEO:
        return client.modify_video(**body)
    if row.kind == Kind.REFRAME_VIDEO:
        return client.reframe_video(**body)
    if row.kind == Kind.REFRAME_IMAGE:
        return client.reframe_image(**body)
    return client.create_video(**body)


# --- Agents API --------------------------------------------------------------------------------------------------

AGENTS_TYPES = {
    Kind.TEXT_TO_VIDEO: "video", Kind.IMAGE_TO_VIDEO: "video", Kind.EXTEND: "video", Kind.REVERSE_EXTEND: "video",
    Kind.INTERPOLATE: "video", Kind.MODIFY_VIDEO: "video_edit", Kind.REFRAME_VIDEO: "video_reframe",
    Kind.IMAGE: "image", Kind.IMAGE_EDIT: "image_edit", Kind.LAYERING: "layering",
}
# Agents options kept in Generation.options, sent as they are (see luma-agents-api.md section 4).
VIDEO_FLAGS = ("hdr", "exr_export")


def agents_request(row: Generation, client: AgentsClient | None = None) -> dict:
    """The body of an Agents create, rebuilt from the row. Our own uploads go through the Files API (file_id,
    uploaded once per file and client); a generation made by the Agents API is named by its id where Luma takes
    one (sources; start/end frames that are videos); our other generations, also when named by their Luma
    address, go as our archived copy through the Files API; anything else by its URL."""
    refs = _Refs(row, client)
    options = row.options or {}
    kind = AGENTS_TYPES.get(Kind(row.kind))
    # The prompt is always sent, also empty: layering takes none, and for the other types Luma's own length
    # message is the clearest answer.
    body = {"model": row.model, "type": kind, "prompt": row.prompt, "user_id": user_token(row.owner)}
    if kind in ("image", "image_edit", "layering"):
        body["aspect_ratio"] = row.aspect_ratio or None if kind == "image" else None
        body["output_format"] = options.get("format")
        body["style"] = options.get("style")
        images = [refs.item(item) for item in options.get("image_ref") or [] if item.get("url") or item.get("generation")]
        body["image_ref"] = images or None
        if kind != "image":
            body["source"] = refs.source()
        if kind == "layering":
            body["layering"] = {"resolution": options.get("layering_resolution") or "1k"}
        return _compact(body)
    video = {"resolution": row.resolution or None}
    video.update({flag: True for flag in VIDEO_FLAGS if options.get(flag)})
    if kind == "video":
        body["aspect_ratio"] = row.aspect_ratio or None
        video["duration"] = row.duration or None
        video["loop"] = row.loop or None
        video["start_frame"] = refs.frame(row.frame0_generation, row.frame0_url)
        video["end_frame"] = refs.frame(row.frame1_generation, row.frame1_url)
        keyframes = options.get("keyframes") or []
        if keyframes:
            video["keyframes"] = [refs.item(item) for item in keyframes]
            video["keyframe_indexes"] = [int(item["index"]) for item in keyframes]
    elif kind == "video_edit":
        body["source"] = refs.source()
        video["start_frame"] = refs.frame(None, row.first_frame_url)
        edit = {"strength": row.mode} if row.mode else {"auto_controls": True}
        if options.get("controls"):
            edit.pop("auto_controls", None)
            edit["controls"] = options["controls"]
        video["edit"] = edit
    elif kind == "video_reframe":
        body["aspect_ratio"] = row.aspect_ratio or None
        body["source"] = refs.source()
        if options.get("source_position"):
            video["source_position"] = options["source_position"]
    body["video"] = _compact(video)
    return _compact(body)


def _compact(body: dict) -> dict:
    return {key: value for key, value in body.items() if value is not None}


def library_generation(url: str) -> Generation | None:
    """The completed, archived generation of ours whose Luma output `url` is, or None.

    A presigned URL is matched without its query (the signature and expiry): a refresh gives the row a freshly
    signed address of the same object, while the request kept the one it was made with."""
    url = (url or "").strip()
    if not url.startswith(("http://", "https://")):
        return None
    bare = url.split("?", 1)[0]
    same = (Q(image_url=url) | Q(video_url=url) | Q(image_url=bare) | Q(video_url=bare)
            | Q(image_url__startswith=f"{bare}?") | Q(video_url__startswith=f"{bare}?"))
    rows = Generation.objects.filter(same, state=State.COMPLETED, archive_state=ArchiveState.DONE,
                                     deleted_at__isnull=True).exclude(archive_file="").order_by("-pk")
    return rows.first()


class _Refs:
    """ImageRef objects for one Agents create (exactly one of generation_id, file_id or url each)."""

    def __init__(self, row: Generation, client: AgentsClient | None):
        self.row, self.client = row, client

    def frame(self, generation: Generation | None, url: str) -> dict | None:
        """A start or end frame (or video_edit's first frame). Only a video goes by its id (that extends it); an
        image generation goes as our archived copy, since Luma refuses an image's generation_id there."""
        if generation is not None:
            return self.generation(generation, still=True, by_id=generation.is_video)
        return self.image(url) if url else None

    def source(self) -> dict | None:
        row = self.row
        if row.source is not None:
            return self.generation(row.source, still=False)
        library = library_generation(row.media_url) if row.media_url and self.client is not None else None
        if library is not None:  # one of ours by its (expiring) address: by its id, or our archived copy
            return self.generation(library, still=False)
        if row.media_url:
            return self.upload_or_url(row.media_url, video=row.kind in (Kind.MODIFY_VIDEO, Kind.REFRAME_VIDEO))
        return None

    def image(self, url: str) -> dict:
        """An image slot given by its address. The address of one of our own generations (a library image chosen
        as a frame, or "Try again" with its stored address) is Luma's output URL, which the Agents API signs for
        an hour only: our archived copy is uploaded instead, so the request works after the hour too."""
        library = library_generation(url) if self.client is not None else None
        if library is not None:
            return self.generation(library, still=True, by_id=False)
        return self.upload_or_url(url, video=False)

    def item(self, item: dict) -> dict:
        """A reference or keyframe from the options: a library generation (by our archived copy: Agents output
        URLs expire within the hour, and Luma takes generation ids only for sources and start/end frames) or an
        address."""
        generation = Generation.objects.filter(pk=item.get("generation")).first() if item.get("generation") else None
        if generation is not None:
            return self.generation(generation, still=True, by_id=False)
        return self.image(item["url"])

    def generation(self, generation: Generation, still: bool, by_id: bool = True) -> dict:
        """An Agents generation by its id (where Luma takes one); otherwise our archived copy (uploaded) or Luma's
        URL."""
        if by_id and generation.provider == Provider.AGENTS and generation.luma_id:
            return {"generation_id": generation.luma_id}
        if still and generation.is_video and generation.poster and self.client is not None:
            # A Dream Machine video where a still is wanted: its first frame (our poster) stands in.
            path = Path(generation.poster.path)
            return {"file_id": self.client.upload_file(path, "image/jpeg", purpose="input",
                                                       user_id=user_token(self.row.owner))}
        if generation.is_archived and self.client is not None:
            path = Path(generation.archive_file.path)
            mime = "video/mp4" if generation.is_video else ("image/png" if path.suffix == ".png" else "image/jpeg")
            return {"file_id": self.client.upload_file(path, mime, purpose="input", user_id=user_token(self.row.owner))}
        url = generation.video_url if generation.is_video else generation.image_url
        return {"url": url, "media_type": "video/mp4"} if generation.is_video else {"url": url}

    def upload_or_url(self, url: str, video: bool) -> dict:
        upload = KeyframeImage.from_public_url(url)
        if upload is not None and self.client is not None:
            if not upload.agents_file_id:
                purpose = "input" if video or url in (self.row.media_url, self.row.frame0_url) else "reference"
                file_id = self.client.upload_file(Path(upload.file.path), upload.content_type, purpose=purpose,
                                                  user_id=user_token(self.row.owner))
                KeyframeImage.objects.filter(pk=upload.pk).update(agents_file_id=file_id)
                upload.agents_file_id = file_id
            return {"file_id": upload.agents_file_id}
        return {"url": url, "media_type": "video/mp4"} if video else {"url": url}

