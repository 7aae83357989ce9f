"""Uploads Luma fetches from us: the cap on a request's size, the check and re-encoding of an image, and the
check (PyAV) and remuxing of a source video.

An upload is never stored as sent: Pillow decodes an image and writes fresh pixels, and a video's picture track
is copied into a fresh MP4 without its metadata or other tracks, so location data and bytes hidden in the file
never reach the public URL.
"""

from __future__ import annotations

import io
import os
import secrets
import tempfile
import warnings
from fractions import Fraction

from django import forms
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import format_html
from django_htmx.http import reswap, retarget
from django.urls import reverse
from PIL import Image, ImageOps, UnidentifiedImageError

from .models import KeyframeImage

# What we accept (MPO is how phones save a JPEG with a depth map or a second view) and what we store.
ACCEPTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}
STORED_FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png")}
UPLOAD_MIN_SIDE, UPLOAD_MAX_SIDE = 64, 4096
JPEG_QUALITY = 92

# Source videos (modify, reframe): Luma's limits (luma-api.md sections 6 and 7): 100 MB, and per model and mode
# a longest duration. Luma documents no formats; we take the MP4/MOV H.264 or H.265 files phones and editors make.
VIDEO_MAX_BYTES = 100 * 1024 * 1024
VIDEO_MAX_SECONDS = {("modify", "ray-2"): 10, ("modify", "ray-flash-2"): 15,
                     ("reframe", "ray-2"): 10, ("reframe", "ray-flash-2"): 30}
VIDEO_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2"}
VIDEO_CODECS = {"h264": "H.264", "hevc": "H.265 (HEVC)"}
VIDEO_MIN_SIDE, VIDEO_MAX_SIDE = 64, 4096
# Photon's limit on a reframed image (luma-api.md section 6).
REFRAME_IMAGE_MAX_BYTES = 10 * 1024 * 1024


def megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB" if size % 1_048_576 else f"{size // 1_048_576} MB"


class UploadCheck:
    """An accepted upload, re-encoded: `data` holds the bytes we store, in `format` (JPEG or PNG)."""

    def __init__(self, data: bytes, image_format: str, width: int, height: int):
        self.data, self.format, self.width, self.height = data, image_format, width, height

    @property
    def content_type(self) -> str:
        return STORED_FORMATS[self.format][0]

    def store(self, user) -> KeyframeImage:
        name = secrets.token_hex(12) + STORED_FORMATS[self.format][1]
        return KeyframeImage.objects.create(
            file=ContentFile(self.data, name=name),
            content_type=self.content_type,
            width=self.width,
            height=self.height,
            size=len(self.data),
            uploaded_by=user,
        )


def _reencode(image: Image.Image, source_format: str) -> tuple[bytes, str, Image.Image]:
    """Fresh pixels, turned the way the camera meant, with no metadata but the colour profile."""
    image.seek(0)  # an MPO's first frame is the photo; the others are depth maps or a second view
    upright = ImageOps.exif_transpose(image)
    has_alpha = upright.has_transparency_data
    # A CMYK or grey profile would misdescribe the RGB pixels written below.
    icc_profile = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA") else None
    clean = upright.convert("RGBA" if has_alpha else "RGB")
    clean.info = {}
    # A PNG stays lossless; a photo (or a WebP without transparency) becomes a JPEG.
    stored_format = "PNG" if has_alpha or source_format == "PNG" else "JPEG"
    buffer = io.BytesIO()
    options = {"icc_profile": icc_profile} if icc_profile else {}
    if stored_format == "JPEG":
        clean.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, **options)
    else:
        clean.save(buffer, "PNG", **options)
    return buffer.getvalue(), stored_format, clean


def check_upload(upload) -> UploadCheck:
    """Accept a JPEG (also a phone's MPO), PNG or WebP within the size and pixel limits and re-encode it,
    or raise ValidationError saying why."""
    limit = settings.UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise forms.ValidationError(
            f"This file is {upload.size / 1_048_576:.1f} MB; images can be at most {limit / 1_048_576:.0f} MB."
        )
    data = upload.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format, (width, height) = image.format, image.size
                if image_format not in ACCEPTED_FORMATS:
                    raise forms.ValidationError(
                        f"{image_format} images are not accepted. Use a JPEG, PNG or WebP file."
                    )
                if width > UPLOAD_MAX_SIDE or height > UPLOAD_MAX_SIDE:
                    raise forms.ValidationError(
                        f"This image is {width}×{height} pixels; the limit is {UPLOAD_MAX_SIDE}×{UPLOAD_MAX_SIDE}."
                    )
                if width < UPLOAD_MIN_SIDE or height < UPLOAD_MIN_SIDE:
                    raise forms.ValidationError(
                        f"This image is {width}×{height} pixels; it must be at least "
                        f"{UPLOAD_MIN_SIDE}×{UPLOAD_MIN_SIDE}."
                    )
                stored, stored_format, clean = _reencode(image, image_format)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise forms.ValidationError(
            f"This image has far too many pixels; the limit is {UPLOAD_MAX_SIDE}×{UPLOAD_MAX_SIDE}."
        ) from None
    except UnidentifiedImageError:
        raise forms.ValidationError("This is not an image we can read. Use a JPEG, PNG or WebP file.") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise forms.ValidationError("This image file is damaged or cut short. Try saving it again.") from None
    return UploadCheck(stored, stored_format, *clean.size)


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value % 1 else f"{value:.0f} s"


def video_limit_error(duration: float | None, size: int | None, use: str, model: str) -> str:
    """Why a video of this length and size is too much for `use` ("modify" or "reframe") with `model`, or ""."""
    limit = VIDEO_MAX_SECONDS.get((use, model))
    if size is not None and size > VIDEO_MAX_BYTES:
        return f"This video is {megabytes(size)}; Luma takes at most {megabytes(VIDEO_MAX_BYTES)}."
    if limit and duration is not None and duration > limit + 0.05:
        longer = max(seconds for (u, _), seconds in VIDEO_MAX_SECONDS.items() if u == use)
        advice = " Choose Ray Flash 2, or trim it." if limit < longer and model == "ray-2" else " Trim it first."
        return f"This video is {seconds(duration)} long; {model} can {use} at most {limit} s.{advice}"
    return ""


class VideoCheck:
    """An accepted source video: `path` is a fresh MP4 holding only its picture track."""

    def __init__(self, path: str, width: int, height: int, duration: float, codec: str):
        self.path, self.width, self.height, self.duration, self.codec = path, width, height, duration, codec

    def store(self, user) -> KeyframeImage:
        try:
            with open(self.path, "rb") as handle:
                return KeyframeImage.objects.create(
                    file=File(handle, name=secrets.token_hex(12) + ".mp4"),
                    content_type="video/mp4",
                    media_type=KeyframeImage.MediaType.VIDEO,
                    width=self.width,
                    height=self.height,
                    duration=self.duration,
                    codec=self.codec,
                    size=os.path.getsize(self.path),
                    uploaded_by=user,
                )
        finally:
            self.discard()

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _remux(source, target: str) -> None:
    """Copy the picture track, unchanged, into a fresh MP4: no audio, subtitles, data tracks or metadata."""
    import av

    with av.open(source) as container, av.open(target, "w", format="mp4") as out:
        stream = container.streams.video[0]
        copy = out.add_stream_from_template(stream)
        copy.metadata.clear()
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            out.mux(packet)


def check_video_upload(upload) -> VideoCheck:
    """Accept an MP4 or MOV video, H.264 or H.265, that PyAV can read and decode, at most VIDEO_MAX_BYTES, and
    remux it; or raise ValidationError saying why. Per-model duration limits are checked by the form
    (video_limit_error), which knows the model."""
    import av

    if upload.size > VIDEO_MAX_BYTES:
        raise forms.ValidationError(video_limit_error(None, upload.size, "modify", ""))
    source = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else upload
    if not isinstance(source, str):
        source.seek(0)
    unreadable = "This is not a video we can read. Use an MP4 or MOV file (H.264 or H.265)."
    try:
        with av.open(source) as container:
            if container.format.name not in VIDEO_CONTAINERS:
                raise forms.ValidationError(f"{container.format.long_name or container.format.name} files are not "
                                            "accepted. Use an MP4 or MOV file (H.264 or H.265).")
            if not container.streams.video:
                raise forms.ValidationError("This file has no picture track. Use an MP4 or MOV video.")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if codec not in VIDEO_CODECS:
                raise forms.ValidationError(f"This video is encoded as {codec}; Luma needs H.264 or H.265 (HEVC). "
                                            "Export it again as an MP4.")
            width, height = stream.codec_context.width, stream.codec_context.height
            if max(width, height) > VIDEO_MAX_SIDE or min(width, height) < VIDEO_MIN_SIDE:
                raise forms.ValidationError(f"This video is {width}×{height} pixels; it must be {VIDEO_MIN_SIDE} to "
                                            f"{VIDEO_MAX_SIDE} pixels a side.")
            if stream.duration is not None and stream.time_base:
                duration = float(stream.duration * Fraction(stream.time_base))
            elif container.duration:
                duration = container.duration / av.time_base
            else:
                raise forms.ValidationError("This video does not say how long it is. Export it again as an MP4.")
            next(container.decode(stream))  # a first picture that decodes: the file is not just a header
    except forms.ValidationError:
        raise
    except StopIteration:
        raise forms.ValidationError("This video has no pictures we can decode. Export it again as an MP4.") from None
    except (av.FFmpegError, OSError, ValueError, IndexError):
        raise forms.ValidationError(unreadable) from None
    if not isinstance(source, str):
        source.seek(0)
    handle, target = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        _remux(source, target)
    except (av.FFmpegError, OSError, ValueError):
        os.unlink(target)
        raise forms.ValidationError("This video is damaged or cut short. Export it again as an MP4.") from None
    return VideoCheck(target, width, height, round(duration, 3), codec)


# A refused body a signed-in person sent is read to its end (and thrown away, a piece at a time) before the answer, up
# to this much: a server that answers mid-upload and closes the connection leaves the browser with a reset
# (net::ERR_CONNECTION_RESET) instead of the message. Larger bodies, and anyone's signed out, are refused unread.
DRAIN_MAX_BYTES = 256 * 1024 * 1024
DRAIN_CHUNK = 64 * 1024


class RequestSizeLimitMiddleware:
    """Refuse a request whose body is larger than REQUEST_MAX_BYTES before anything parses it.

    Django's own limits count form fields, not files, and CsrfViewMiddleware parses a POST's whole body
    (files included) before any view runs, so the cap has to act here, on the declared Content-Length.
    A body sent without one is read as empty by Django's WSGI handler.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if not declared:
            return self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = bool(user and user.is_authenticated)
        limit = settings.REQUEST_MAX_BYTES if signed_in else settings.SIGNED_OUT_REQUEST_MAX_BYTES
        video = request.path == reverse("generations:upload_video")
        if video:
            limit = VIDEO_MAX_BYTES + 1024 * 1024  # one video and its form field, nothing else
        if declared > limit:
            if signed_in and declared <= DRAIN_MAX_BYTES:
                drain(request)
            return too_large(request, declared, limit, video)
        return self.get_response(request)


def drain(request: HttpRequest) -> None:
    """Read the body to its end and keep none of it, so the browser gets to read the answer."""
    try:
        while request.read(DRAIN_CHUNK):
            pass
    except Exception:  # noqa: BLE001 - the browser gave up or sent less than it said: answer all the same
        pass


def too_large(request: HttpRequest, declared: int, limit: int, video: bool = False) -> HttpResponse:
    message = (
        f"This upload is {megabytes(declared)}, more than the {megabytes(limit)} a request may carry "
        f"(each image at most {megabytes(settings.UPLOAD_MAX_BYTES)}). Nothing was sent to Luma and nothing was "
        "kept: choose fewer or smaller images and try again."
    )
    if video:
        message = (f"This video is {megabytes(declared)}; Luma takes at most {megabytes(VIDEO_MAX_BYTES)}. "
                   "Nothing was sent to Luma: choose a shorter or smaller video.")
    if getattr(request, "htmx", False) and not request.htmx.history_restore_request:
        # htmx swaps only 2xx answers: put the message above the create form and leave what was typed.
        response = HttpResponse(format_html('<p class="error" role="alert" data-too-large>{}</p>', message))
        return reswap(retarget(response, "#create-panel"), "afterbegin")
    return render(request, "413.html", {"message": message}, status=413)
