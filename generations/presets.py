"""Presets (every setting of the create form under a name, personal or for the team) and each person's recent
prompts: saving, applying (the form's initial values, through the session) and deleting."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from .models import Generation, Preset
from .roles import make_required
from .views_library import page_context

SESSION_KEY = "create_initial"
NAME_MAX = Preset._meta.get_field("name").max_length
# Not settings: the post's own token, the prompt (reused from the prompt history instead), files and upload tokens
# (they belong to one request), and the preset form's own fields.
NOT_SETTINGS = {"csrfmiddlewaretoken", "client_token", "prompt", "negative_prompt", "video_file", "video_upload",
                "preset_name", "preset_shared", "next"}
MAX_SETTINGS, MAX_VALUE = 80, 2000


def presets_for(user) -> QuerySet[Preset]:
    """The presets `user` may apply: their own and the team's, by name."""
    return Preset.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner").order_by("name", "pk")


def settings_from(post) -> dict:
    """The create form's settings as posted (a QueryDict), without the prompt, tokens and files; a field posted
    more than once (concepts) is kept as a list."""
    found = {}
    for name, values in post.lists():
        if name in NOT_SETTINGS or name.endswith(("_file", "_upload")) or len(found) >= MAX_SETTINGS:
            continue
        values = [value[:MAX_VALUE] for value in values]
        found[name[:60]] = values if len(values) > 1 else values[0]
    return found


def name_taken(user, name: str, shared: bool) -> str:
    """Why `name` cannot be used for a new preset ("" when it can)."""
    if Preset.objects.filter(owner=user, name__iexact=name).exists():
        return f"You already have a preset called “{name}”: choose another name or delete that one first."
    if shared and Preset.objects.filter(shared=True, name__iexact=name).exists():
        return f"The team already has a preset called “{name}”: choose another name."
    return ""


def recent_prompts(user, n: int = 10) -> list[str]:
    """`user`'s last `n` different prompts, newest first (deleted generations left out)."""
    found: list[str] = []
    rows = Generation.objects.visible().filter(owner=user).exclude(prompt="").order_by("-created_at", "-pk")
    # Read in pages: a person who repeats one prompt a hundred times still gets ten different ones.
    offset, page = 0, max(n * 5, 50)
    while len(found) < n:
        prompts = list(rows.values_list("prompt", flat=True)[offset:offset + page])
        for prompt in prompts:
            if prompt not in found:
                found.append(prompt)
                if len(found) == n:
                    break
        if len(prompts) < page:
            break
        offset += page
    return found


def initial_for(request: HttpRequest) -> dict:
    """The create form's initial values a preset or a reused prompt left for this person's next dashboard (read
    once); {} when there are none. The dashboard passes them as CreateForm(initial=...)."""
    return request.session.pop(SESSION_KEY, None) or {}


def _redirect_back(request: HttpRequest) -> HttpResponse:
    if request.htmx:  # the create form's "Save as preset" button: reload the page, which shows the message
        return HttpResponseClientRefresh()
    return redirect("generations:dashboard" if request.POST.get("next") == "dashboard" else "generations:presets")


@login_required
@make_required
@require_GET
def presets(request: HttpRequest) -> HttpResponse:
    """My presets and the team's, and my recent prompts, each with a button to use it."""
    context = {**page_context(request), "presets": presets_for(request.user),
               "prompts": recent_prompts(request.user)}
    return render(request, "generations/presets.html", context)


@login_required
@make_required
@require_POST
def save(request: HttpRequest) -> HttpResponse:
    """Save the create form's settings as posted under `preset_name` (team-wide with `preset_shared`)."""
    name = " ".join(request.POST.get("preset_name", "").split())
    shared = request.POST.get("preset_shared") in ("on", "1", "true")
    problem = ""
    if not name:
        problem = "Give the preset a name; nothing was saved."
    elif len(name) > NAME_MAX:
        problem = f"Keep the preset's name under {NAME_MAX} characters; nothing was saved."
    else:
        problem = name_taken(request.user, name, shared)
    settings = settings_from(request.POST)
    if not problem and not settings:
        problem = "There are no settings to save: save a preset from the create form."
    if not problem:
        try:
            with transaction.atomic():
                Preset.objects.create(name=name, owner=request.user, shared=shared, settings=settings)
        except IntegrityError:  # the same name saved a moment ago (a double click)
            problem = f"You already have a preset called “{name}”: choose another name or delete that one first."
    if problem:
        messages.error(request, problem)
    else:
        messages.success(request, f"Saved the preset “{name}”{' for the team' if shared else ''}.")
    return _redirect_back(request)


@login_required
@make_required
@require_POST
def apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Fill the create form with a preset's settings (the prompt already there stays)."""
    preset = get_object_or_404(presets_for(request.user), pk=pk)
    request.session[SESSION_KEY] = {**request.session.get(SESSION_KEY, {}), **preset.settings}
    messages.success(request, f"Applied the preset “{preset.name}”.")
    return redirect("generations:dashboard")


@login_required
@make_required
@require_POST
def reuse_prompt(request: HttpRequest) -> HttpResponse:
    """Put one of my recent prompts back into the create form."""
    prompt = request.POST.get("prompt", "")
    if prompt not in recent_prompts(request.user, 50):
        messages.error(request, "That prompt is not among your recent ones; nothing was filled in.")
        return redirect("generations:presets")
    request.session[SESSION_KEY] = {**request.session.get(SESSION_KEY, {}), "prompt": prompt}
    return redirect("generations:dashboard")


@login_required
@make_required
@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a preset: its owner may, and staff may delete a team preset."""
    preset = get_object_or_404(presets_for(request.user), pk=pk)
    if preset.owner_id != request.user.pk and not request.user.is_staff:
        raise PermissionDenied(f"“{preset.name}” is {preset.owner.get_username()}'s preset: only they or staff may "
                               "delete it.")
    preset.delete()
    messages.success(request, f"Deleted the preset “{preset.name}”.")
    return _redirect_back(request)
