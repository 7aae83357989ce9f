"""Keyframe uploads: the cap on a request's size, and the check and re-encoding of an uploaded image.

An upload is never stored as sent: Pillow decodes it and writes fresh pixels, so location data and bytes
hidden after the picture never reach the public keyframe URL.
"""

from __future__ import annotations

import io
import secrets
import warnings

from django import forms
from django.conf import settings
from django.core.files.base import ContentFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import format_html
from django_htmx.http import reswap, retarget
from PIL import Image, ImageOps, UnidentifiedImageError

from .models import KeyframeImage

# What we accept (MPO is how phones save a JPEG with a depth map or a second view) and what we store.
ACCEPTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}
STORED_FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png")}
UPLOAD_MIN_SIDE, UPLOAD_MAX_SIDE = 64, 4096
JPEG_QUALITY = 92


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


class RequestSizeLimitMiddleware:
    """Refuse a request whose body is larger than REQUEST_MAX_BYTES before anything reads it.

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
        limit = settings.REQUEST_MAX_BYTES
        if declared > limit:
            return too_large(request, declared, limit)
        return self.get_response(request)


def too_large(request: HttpRequest, declared: int, limit: int) -> HttpResponse:
    message = (
        f"This upload is {megabytes(declared)}, more than the {megabytes(limit)} a request may carry "
        f"(each image at most {megabytes(settings.UPLOAD_MAX_BYTES)}). Nothing was sent to Luma: "
        "choose a smaller image and try again."
    )
    if getattr(request, "htmx", False) and not request.htmx.history_restore_request:
        # htmx swaps only 2xx answers: put the message above the create form and leave what was typed.
        response = HttpResponse(format_html('<p class="error" role="alert">{}</p>', message))
        return reswap(retarget(response, "#create-panel"), "afterbegin")
    return render(request, "413.html", {"message": message}, status=413)
