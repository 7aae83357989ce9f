"""The dashboard and everything that asks for a generation: create, try again, continue (and every other use
of a library generation), upscale, add audio; the create form's library pickers and video upload.

Nothing here calls Luma: a request becomes a pending row (`Generation.request`) and the jobs take it from there.
"""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from . import budgets, presets
from .access import generation_for, refusal
from .boards import land
from .roles import can_make, make_required
from .forms import AddAudioForm, CreateForm, LibraryFilters, UpscaleForm, initial_for
from .models import Generation, Kind, LumaAccount
from .sources import ACCEPTS, pick
from .uploads import VIDEO_MAX_SECONDS, check_video_upload
from .views_library import build_cards, card_rows, library_context, page_context, public_url_warning

CONTINUE_HOW = {
    "again": "Try again",
    "extend": "Extend",
    "reverse-extend": "Reverse extend",
    "interpolate": "Interpolate",
    "loop": "Loop remix",
    "start-frame": "Start frame",
    "end-frame": "End frame",
    "reference": "Image reference",
    "modify": "Modify",
    "reframe": "Reframe",
}
# The create form keeps these after a successful submit, so a second take needs only a new prompt.
KEPT_SETTINGS = ("what", "count", "model", "image_model", "resolution", "duration", "aspect_ratio", "mode", "media_from", "hdr",
                 "exr_export", "style", "output_format", "layering_resolution")
PICK_FIELD = re.compile(r"^[a-z0-9_]{1,40}$")


def create_context(request: HttpRequest, form: CreateForm, **extra) -> dict:
    return {
        **page_context(request, form.account),
        "can_make": can_make(request.user),
        "presets": presets.presets_for(request.user),
        "recent_prompts": presets.recent_prompts(request.user),
        "form": form,
        "warning": public_url_warning(),
        "upload_limit": f"{settings.UPLOAD_MAX_BYTES / 1_048_576:.0f} MB",
        "video_seconds": VIDEO_MAX_SECONDS,
        **extra,
    }


def dashboard_context(request: HttpRequest, form: CreateForm | None = None, **extra) -> dict:
    account = form.account if form else LumaAccount.get()
    # A preset just applied fills the form once (presets.py).
    form = form or CreateForm(account=account, user=request.user, initial=presets.initial_for(request))
    return {**create_context(request, form, **extra), **library_context(request, LibraryFilters(request.GET))}


# Gzipped here, not by a middleware: gunicorn sends pages as they are, and archived videos must not be compressed.
@gzip_page
@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The create panel beside the shared library."""
    return render(request, "generations/dashboard.html", dashboard_context(request))


def _card_anchor(generation: Generation) -> str:
    return f"{reverse('generations:dashboard')}#card-{generation.pk}"


@login_required
@make_required
@require_POST
def create(request: HttpRequest) -> HttpResponse:
    """Ask for a generation from the create form; with htmx the new card appears at the top at once."""
    account = LumaAccount.get()
    form = CreateForm(request.POST, request.FILES, account=account, user=request.user)
    if not form.is_valid():
        if request.htmx:
            return render(request, "generations/dashboard.html#create-panel", create_context(request, form))
        return render(request, "generations/dashboard.html", dashboard_context(request, form))
    try:
        generation, created = form.save(request.user)
    except budgets.OverBudget as refusal:
        # Nothing was made and nothing reached Luma: say why next to the form, keeping what was typed.
        form.add_error(None, str(refusal))
        if request.htmx:
            return render(request, "generations/dashboard.html#create-panel", create_context(request, form))
        return render(request, "generations/dashboard.html", dashboard_context(request, form))
    if created:
        land(generation, request)  # onto the board the dashboard is switched to, if any
    if not request.htmx:
        if created:
            messages.success(request, f"Requested #{generation.pk}: it is at the top of the library.")
        return redirect(_card_anchor(generation))
    fresh = CreateForm(account=account, user=request.user,
                       initial={name: form.cleaned_data.get(name) for name in KEPT_SETTINGS})
    # A set ("Make N") shows all its takes at once, first take on top.
    made = card_rows(request.user).filter(batch=generation.batch) if generation.batch else card_rows(
        request.user).filter(pk=generation.pk)
    new_cards = build_cards(made.order_by("-pk"), request.user) if created else []
    context = create_context(request, fresh, requested=generation, new_cards=new_cards)
    response = render(request, "generations/dashboard.html#create-response", context)
    return trigger_client_event(response, "generation-created", {"id": generation.pk})


@login_required
@make_required
@require_GET
def continue_generation(request: HttpRequest, pk: int, how: str) -> HttpResponse:
    """The create form filled in from a card: try again, extend, reverse extend, interpolate, loop remix, use as
    a start or end frame, as a Photon reference, modify or reframe. A use the generation does not allow (an
    image cannot be extended, a video cannot be an image reference) says why and fills in only its settings."""
    generation = generation_for(request.user, pk)
    if how not in CONTINUE_HOW:
        raise Http404("No such action")
    if how == "again" and generation.kind in (Kind.UPSCALE, Kind.ADD_AUDIO) and generation.source_id:
        action = "upscale" if generation.kind == Kind.UPSCALE else "add_audio"
        return redirect(f"generations:{action}", generation.source_id)
    account = LumaAccount.get()
    why_not = refusal(generation, how)
    form = CreateForm(account=account, user=request.user, initial=initial_for(generation, how, usable=not why_not))
    note = why_not or f"{CONTINUE_HOW[how]} from #{generation.pk}."
    if request.htmx:
        response = render(request, "generations/dashboard.html#create-panel", create_context(request, form, note=note))
        return trigger_client_event(response, "create-prefilled", {"id": generation.pk})
    return render(request, "generations/dashboard.html", dashboard_context(request, form, note=note))


@login_required
@make_required
@require_GET
def picker(request: HttpRequest) -> HttpResponse:
    """A picker's thumbnail grid: the newest finished videos or images, or those whose prompt matches `q`.
    `field` names the create form field the grid fills in (JavaScript copies the chosen number there)."""
    accept, field = request.GET.get("accept", ""), request.GET.get("field", "")
    if accept not in ACCEPTS or not PICK_FIELD.match(field):
        raise Http404("No such picker")
    query = " ".join(request.GET.get("q", "").split())[:200]
    context = {"rows": pick(accept, query), "accept": accept, "field": field, "q": query}
    return render(request, "generations/picker.html#picker-results", context)


class VideoUploadForm(forms.Form):
    video_file = forms.FileField(label="Video file")


@login_required
@make_required
@require_POST
def upload_video(request: HttpRequest) -> HttpResponse:
    """A source video sent ahead of the create form (htmx, on choosing the file), so the form post stays small
    and a video up to Luma's 100 MB fits: checked with PyAV, stored, and answered with its token for the form.
    The model's duration limit is checked when the form is sent, since the model may still change."""
    form = VideoUploadForm(request.POST, request.FILES)
    stored, error = None, ""
    if form.is_valid():
        try:
            stored = check_video_upload(form.cleaned_data["video_file"]).store(request.user)
        except forms.ValidationError as invalid:
            error = invalid.messages[0]
    else:
        error = "Choose a video file to upload."
    context = {"uploaded": stored, "upload_error": error, "form": CreateForm(account=LumaAccount.get(), user=request.user)}
    # htmx swaps only a 2xx answer, and the message belongs where the file was chosen.
    return render(request, "generations/picker.html#video-upload", context, status=200 if stored or request.htmx else 400)


def _source_action(request: HttpRequest, pk: int, form_class, title: str, template_name: str) -> HttpResponse:
    source = generation_for(request.user, pk)
    form = None
    if source.can_upscale:
        form = form_class(request.POST if request.method == "POST" else None, source=source)
        if request.method == "POST" and form.is_valid():
            try:
                generation, created = form.save(request.user)
            except budgets.OverBudget as refusal:
                form.add_error(None, str(refusal))
            else:
                if created:
                    land(generation, request)
                    messages.success(request, f"Requested #{generation.pk}: {title.lower()} of #{source.pk}.")
                return redirect(_card_anchor(generation))
    status = 400 if request.method == "POST" else 200
    context = {**page_context(request), "source": source, "form": form, "title": title}
    if form is not None:  # what it will cost, for the resolution chosen (an upscale's select asks again on change)
        from . import pricing

        resolution = str(form["resolution"].value() or "") if "resolution" in form.fields else ""
        kind = Kind.UPSCALE if isinstance(form, UpscaleForm) else Kind.ADD_AUDIO
        context["estimate"] = pricing.action_estimate(kind, source, resolution)
    return render(request, template_name, context, status=status)


@login_required
@make_required
@require_http_methods(["GET", "POST"])
def upscale(request: HttpRequest, pk: int) -> HttpResponse:
    """Upscale a finished video to a higher resolution (a new generation)."""
    return _source_action(request, pk, UpscaleForm, "Upscale", "generations/source_action.html")


@login_required
@make_required
@require_http_methods(["GET", "POST"])
def add_audio(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a soundtrack to a finished video (a new generation)."""
    return _source_action(request, pk, AddAudioForm, "Add audio", "generations/source_action.html")
