"""Serving stored files: archived videos and posters to the team, uploaded keyframes, references and source
videos to Luma.

Videos are answered with HTTP Range support so a browser can seek, also without a proxy in front.
"""

import mimetypes
import os
import re
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Q, TextField
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
