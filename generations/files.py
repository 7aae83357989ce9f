"""Serving stored files: archived videos, posters and further outputs (layers, EXR exports) to the team, uploaded
keyframes, references and source videos to Luma.

Videos are answered with HTTP Range support so a browser can seek, also without a proxy in front.
"""

import mimetypes
import os
import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q, TextField
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Cast
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from .models import TERMINAL_STATES, Generation, KeyframeImage

# One range of at most 18 digits a side: int() refuses numbers over 4,300 digits, and no file reaches 10**18
# bytes. Anything else (several ranges, other units, garbage) is ignored and the whole file is sent, as
# RFC 9110 section 14.2 allows.
RANGE_RE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")
CHUNK = 256 * 1024
# An upload no generation uses yet answers this long, so the form post that brought it can still use it.
UNUSED_KEYFRAME_LIFETIME = timedelta(hours=1)
# What a browser shows in an <img>; any other further output (an HDR clip's EXR export) is only downloaded.
BROWSER_IMAGES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})


def _read_range(path: str, start: int, length: int):
    with open(path, "rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def ranged_file_response(request: HttpRequest, stored: FieldFile | Path, content_type: str,
                         download_name: str = "") -> HttpResponse:
    """The file (a stored field's, or a path already checked), or the one byte range the request asks for (206),
    or 416 when the range is outside it."""
    try:
        path = stored if isinstance(stored, Path) else stored.path
        size = os.path.getsize(path)
    except (ValueError, OSError):
        raise Http404("The file is not stored") from None
    match = RANGE_RE.match(request.headers.get("Range", "").strip())
    if match and (match[1] or match[2]):
        if match[1]:
            start = int(match[1])
            end = min(int(match[2]), size - 1) if match[2] else size - 1
        else:
            start, end = max(size - int(match[2]), 0), size - 1
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        response = StreamingHttpResponse(_read_range(path, start, end - start + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(open(path, "rb"), content_type=content_type)
        response["Content-Length"] = str(size)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=86400"
    if download_name:
        response["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return response


def _archived(pk: int) -> Generation:
    generation = get_object_or_404(Generation.objects.visible(), pk=pk)
    if not generation.is_archived:
        raise Http404("This generation has no archived file yet")
    return generation


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


@login_required
@require_GET
def archived_video(request: HttpRequest, pk: int) -> HttpResponse:
    generation = _archived(pk)
    return ranged_file_response(request, generation.archive_file, _content_type(generation.archive_file.name))


@login_required
@require_GET
def poster(request: HttpRequest, pk: int) -> HttpResponse:
    generation = get_object_or_404(Generation.objects.visible(), pk=pk)
    if not generation.poster:
        raise Http404("No poster yet")
    return ranged_file_response(request, generation.poster, "image/jpeg")


def _stem(generation: Generation) -> str:
    return slugify(generation.prompt)[:60].strip("-") or f"generation-{generation.pk}"


@login_required
@require_GET
def download(request: HttpRequest, pk: int) -> HttpResponse:
    generation = _archived(pk)
    extension = os.path.splitext(generation.archive_file.name)[1] or ".mp4"
    name = _stem(generation) + extension
    return ranged_file_response(request, generation.archive_file, _content_type(name), download_name=name)


def extra_path(generation: Generation, index: int) -> Path | None:
    """Where entry `index` of the row's extra_files is on disk, or None. The list is data, so its name counts only
    when it points at a file inside the archive folder (no `..`, absolute path or symlink out of it)."""
    entries = generation.extra_files if isinstance(generation.extra_files, list) else []
    entry = entries[index] if 0 <= index < len(entries) else None
    name = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name:
        return None
    folder = (Path(settings.MEDIA_ROOT) / "archive").resolve()
    try:
        path = (Path(settings.MEDIA_ROOT) / name).resolve()
        return path if path.is_relative_to(folder) and path.is_file() else None
    except (ValueError, OSError):  # a NUL byte, a loop of links
        return None


def _extra_download_name(generation: Generation, entry: dict, path: Path) -> str:
    extension = re.sub(r"[^a-z0-9.]", "", path.suffix.lower())[:8]
    if "index" in entry:
        label = slugify(str(entry.get("label") or ""))[:30].strip("-") or "layer"
        return f"{_stem(generation)}-layer-{slugify(str(entry['index']))[:8]}-{label}{extension}"
    return f"{_stem(generation)}-{slugify(str(entry.get('type') or '')) or 'extra'}{extension}"


def extra_files(generation: Generation) -> dict[str, list[dict]]:
    """What the generation's page shows of its further outputs, in Luma's order: "layers", the layers a browser can
    show as images, and "files", to download (an HDR clip's EXR export, a layer in a format or state a browser
    cannot show; the main file itself is left out), each with its link, a file `kind` ("PNG"), `size` and
    `download` name; a layer also with its `number` of `of`, counting all layers."""
    entries = generation.extra_files if generation.is_archived and isinstance(generation.extra_files, list) else []
    layer_count = sum(1 for entry in entries if isinstance(entry, dict) and "index" in entry)
    shown, number = {"layers": [], "files": []}, 0
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or ("index" not in entry and entry.get("file") == generation.archive_file.name):
            continue
        path = extra_path(generation, index)
        name = path.name if path else str(entry.get("file") or "")
        item = {
            "url": reverse("generations:extra_file", args=[generation.pk, index]),
            "stored": path is not None,
            "image": path is not None and _content_type(name) in BROWSER_IMAGES,
            "kind": re.sub(r"[^A-Z0-9]", "", Path(name).suffix.upper())[:8] or "file",
            "size": entry.get("size") if isinstance(entry.get("size"), int) else None,
            "download": _extra_download_name(generation, entry, path) if path else "",
            "label": str(entry.get("label") or ""),
            "description": str(entry.get("description") or ""),
            "alpha_hint": str(entry.get("alpha_hint") or ""),
        }
        if "index" in entry:
            number += 1
            item.update(number=number, of=layer_count)
        else:
            item["type"] = str(entry.get("type") or "file")
        shown["layers" if item["image"] and "index" in entry else "files"].append(item)
    return shown


@login_required
@require_GET
def extra_file(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """One further output of an archived generation (a layer, an EXR export), entry `index` of its extra_files,
    to the team like the main file. What a browser cannot show is sent as an attachment."""
    generation = _archived(pk)
    path = extra_path(generation, index)
    if path is None:
        raise Http404("This generation has no such file")
    content_type = _content_type(path.name)
    download_name = "" if content_type in BROWSER_IMAGES else _extra_download_name(
        generation, generation.extra_files[index], path)
    return ranged_file_response(request, path, content_type, download_name=download_name)


def _users(image: KeyframeImage):
    """The generations made from this upload."""
    # Matched on the path: the token is unique and unguessable, and the public base URL may change. References
    # sit in the options JSON; a token has only URL-safe characters, so its path reads the same inside JSON text.
    path = reverse("generations:keyframe", args=[image.token])
    return Generation.objects.annotate(options_text=Cast("options", TextField())).filter(
        Q(frame0_url__endswith=path) | Q(frame1_url__endswith=path) | Q(media_url__endswith=path)
        | Q(first_frame_url__endswith=path) | Q(options_text__contains=path)
    )


def keyframe_still_needed(image: KeyframeImage) -> bool:
    """Whether Luma may still fetch this upload (a keyframe, a first frame, a source video or image, a Photon
    reference): a generation that uses it is not deleted and not finished, or no generation uses it yet and it
    was uploaded within the hour."""
    uses = list(_users(image).values_list("state", "deleted_at"))
    if not uses:
        return image.created_at > timezone.now() - UNUSED_KEYFRAME_LIFETIME
    return any(deleted_at is None and state not in TERMINAL_STATES for state, deleted_at in uses)


def forget_unneeded_uploads(older_than: timedelta = timedelta(days=1)) -> int:
    """Delete uploads (files and rows) that no generation in the library uses, uploaded more than `older_than`
    ago; a source video may take 100 MB. An upload a kept generation was made from stays: its page shows it to
    the team (`upload`), though Luma can no longer fetch it. Returns how many went. Run hourly (tasks)."""
    gone = 0
    for upload in KeyframeImage.objects.filter(created_at__lt=timezone.now() - older_than).iterator():
        if not _users(upload).filter(deleted_at__isnull=True).exists():
            upload.file.delete(save=False)
            upload.delete()
            gone += 1
    return gone


@login_required
@require_GET
def upload(request: HttpRequest, token: str) -> HttpResponse:
    """An upload as the team sees it on a generation's page, for as long as we keep it (login required)."""
    image = get_object_or_404(KeyframeImage, token=token)
    return ranged_file_response(request, image.file, image.content_type)


@require_GET
def keyframe(request: HttpRequest, token: str) -> HttpResponse:
    """Public on purpose: Luma fetches uploaded images and videos without our login. The token is the secret,
    and it stops answering once no live generation needs the file."""
    image = get_object_or_404(KeyframeImage, token=token)
    if not keyframe_still_needed(image):
        raise Http404("This keyframe is no longer served")
    return ranged_file_response(request, image.file, image.content_type)
