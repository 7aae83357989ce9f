"""What a generation was made from and what was made from it: the detail page's lineage trees and its inputs
(keyframes, references, the source), shown from our own copies where we have them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from .models import Generation, Kind

LINEAGE_DEPTH = 6
LINEAGE_NODES = 60


def made_from(generation: Generation) -> list[dict]:
    """What a generation was made from, as a tree that grows upward: one query per level, bounded in depth."""
    roles = (("start frame", "frame0_generation_id"), ("end frame", "frame1_generation_id"), ("source", "source_id"))
    root = {"g": generation, "children": []}
    level = [root]
    for _ in range(LINEAGE_DEPTH):
        wanted = {getattr(node["g"], field) for node in level for _, field in roles} - {None}
        if not wanted:
            break
        rows = {row.pk: row for row in Generation.objects.select_related("owner").filter(pk__in=wanted)}
        next_level = []
        for node in level:
            for role, field in roles:
                parent = rows.get(getattr(node["g"], field))
                if parent is not None:
                    child = {"g": parent, "role": role, "children": []}
                    node["children"].append(child)
                    next_level.append(child)
        level = next_level
    return root["children"]


def made_into(generation: Generation) -> list[dict]:
    """What was made from a generation, level by level, bounded so a long chain cannot run away."""
    root = {"g": generation, "children": []}
    level, count = [root], 0
    for _ in range(LINEAGE_DEPTH):
        by_pk = {node["g"].pk: node for node in level}
        children = Generation.objects.visible().select_related("owner").filter(
            Q(frame0_generation__in=by_pk) | Q(frame1_generation__in=by_pk) | Q(source__in=by_pk)
        ).order_by("created_at", "pk")[: LINEAGE_NODES - count]
        level = []
        for child in children:
            parent_pks = [child.frame0_generation_id, child.frame1_generation_id, child.source_id]
            for parent_pk in dict.fromkeys(parent_pks):
                if parent_pk in by_pk:
                    node = {"g": child, "children": []}
                    by_pk[parent_pk]["children"].append(node)
                    level.append(node)
                    count += 1
        if not level or count >= LINEAGE_NODES:
            break
    return root["children"]


@dataclass
class Input:
    """Something a generation was made from, as the detail page shows it: a picture or player when it can be
    shown from this site, else a link."""

    role: str
    media: str  # "image", "video" or "link"
    src: str = ""  # an address on this site (the CSP allows only those)
    href: str = ""
    generation: Generation | None = None
    weight: float | None = None
    poster: str = ""

    @property
    def host(self) -> str:
        return urlsplit(self.href).hostname or ""


def _reference_urls(options: dict) -> list[tuple[str, str, float | None]]:
    """(role, url, weight) of Photon's references as Luma takes them (models.PHOTON_REFERENCES)."""
    found = []
    for name, role in (("image_ref", "Image reference"), ("style_ref", "Style reference")):
        for item in options.get(name) or []:
            if isinstance(item, dict) and item.get("url"):
                found.append((role, item["url"], item.get("weight")))
    for identity in (options.get("character_ref") or {}).values():
        for url in (identity or {}).get("images") or []:
            found.append(("Character reference", url, None))
    modify = options.get("modify_image_ref") or {}
    if isinstance(modify, dict) and modify.get("url"):
        found.append(("Image to modify", modify["url"], modify.get("weight")))
    return found


def inputs(generation: Generation) -> list[Input]:
    """The keyframes, references and source a generation was made from, shown from our own copies where we
    have them: a library generation's archive or poster, an upload on this site. Anything else (an address on
    another site) is a link: the page's CSP loads media from this site only, and a picture elsewhere would tell
    that site who looks. One query for references that are library generations' images."""
    wanted = [("Start frame", generation.frame0_generation, generation.frame0_url, "image"),
              ("End frame", generation.frame1_generation, generation.frame1_url, "image")]
    source_media = "video" if generation.kind in (Kind.MODIFY_VIDEO, Kind.REFRAME_VIDEO, Kind.UPSCALE,
                                                 Kind.ADD_AUDIO) else "image"
    wanted.append(("Source", generation.source, generation.media_url, source_media))
    wanted.append(("First frame", None, generation.first_frame_url, "image"))
    references = _reference_urls(generation.options or {})
    by_url = {}
    if references:
        urls = [url for _, url, _ in references]
        for row in Generation.objects.visible().filter(Q(image_url__in=urls) | Q(video_url__in=urls)):
            by_url[row.image_url or row.video_url] = row
    found = []
    for role, source, url, media in wanted:
        if source is not None or url:
            found.append(_input(role, source, url, media))
    for role, url, weight in references:
        item = _input(role, by_url.get(url), url, "image")
        item.weight = weight
        found.append(item)
    return found


def _input(role: str, source: Generation | None, url: str, media: str) -> Input:
    if source is not None:
        if source.deleted_at is None and source.is_archived:
            own = reverse("generations:video", args=[source.pk])
            poster = reverse("generations:poster", args=[source.pk]) if source.poster else ""
            return Input(role, "video" if source.is_video else "image", own, source.get_absolute_url(), source,
                         poster=poster)
        return Input(role, "link", "", source.get_absolute_url(), source)
    site = settings.PUBLIC_BASE_URL.rstrip("/") + "/"
    if url.startswith(site):
        path = "/" + url[len(site):]
        keyframe = reverse("generations:keyframe", args=["TOKEN"]).split("TOKEN")[0]
        if path.startswith(keyframe):  # Luma's address for an upload stops answering; the team's does not
            path = reverse("generations:upload", args=[path[len(keyframe):].strip("/")])
        return Input(role, media, path, path)
    return Input(role, "link", "", url)
