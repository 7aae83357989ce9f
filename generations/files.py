"""Serving stored files: archived videos and posters to the team, uploaded keyframes to Luma.

Videos are answered with HTTP Range support so a browser can seek, also without a proxy in front.
"""

import mimetypes
import os
import re

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from .models import Generation, KeyframeImage

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def _read_range(path: str, start: int, length: int):
    with open(path, "rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def ranged_file_response(request: HttpRequest, field_file, content_type: str, download_name: str = "") -> HttpResponse:
    """The file, or the one byte range the request asks for (206), or 416 when the range is outside it."""
    try:
        path = field_file.path
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


@login_required
@require_GET
def download(request: HttpRequest, pk: int) -> HttpResponse:
    generation = _archived(pk)
    extension = os.path.splitext(generation.archive_file.name)[1] or ".mp4"
    name = (slugify(generation.prompt)[:60].strip("-") or f"generation-{generation.pk}") + extension
    return ranged_file_response(request, generation.archive_file, _content_type(name), download_name=name)


@require_GET
def keyframe(request: HttpRequest, token: str) -> HttpResponse:
    """Public on purpose: Luma fetches keyframe images without our login. The token is the secret."""
    image = get_object_or_404(KeyframeImage, token=token)
    return ranged_file_response(request, image.file, image.content_type)
