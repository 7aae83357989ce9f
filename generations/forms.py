"""Forms of the dashboard: upscale, add audio and the library filters. The create form is in create_form.py
(imported here too, where the views and tests look for it).
"""

from __future__ import annotations

from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet

from .agents_form import AGENTS_IMAGE_MODELS, AGENTS_VIDEO_MODELS
from .create_form import (IMAGE_MODELS, PROMPT_MAX, RESOLUTIONS, VIDEO_MODELS, CreateForm, initial_for,
                          new_client_token, request_once)
from .models import Favourite, Generation, Kind, State
from .search import matching
from .uploads import check_upload

__all__ = ["AddAudioForm", "CreateForm", "LibraryFilters", "UpscaleForm", "check_upload", "initial_for"]


class UpscaleForm(forms.Form):
    client_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    resolution = forms.ChoiceField(label="Upscale to")

    def __init__(self, *args, source: Generation, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source
        names = [value for value, _ in RESOLUTIONS]
        above = names[names.index(source.resolution) + 1 :] if source.resolution in names else names[2:]
        self.fields["resolution"].choices = [(r, dict(RESOLUTIONS)[r]) for r in above]
        self.fields["resolution"].initial = above[0] if above else None
        if not self.is_bound:
            self.initial.setdefault("client_token", new_client_token())

    def clean_resolution(self):
        return self.cleaned_data["resolution"]

    def save(self, owner) -> tuple[Generation, bool]:
        token = self.cleaned_data.get("client_token") or ""  # a resent form gets its first row back
        source = self.source
        fields = {
            "source": source,
            "prompt": source.prompt,
            "model": source.model,
            "resolution": self.cleaned_data["resolution"],
            "duration": source.duration,
            "aspect_ratio": source.aspect_ratio,
        }
        return request_once(owner, Kind.UPSCALE, token, fields)


class AddAudioForm(forms.Form):
    client_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    prompt = forms.CharField(
        label="What it should sound like",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Wind in the trees, distant birds"}),
    )
    negative_prompt = forms.CharField(
        label="Sounds to avoid", required=False, widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Music"})
    )

    def __init__(self, *args, source: Generation, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source
        if not self.is_bound:
            self.initial.setdefault("client_token", new_client_token())

    def clean_prompt(self):
        # Luma checks only the upper limit on an audio prompt.
        prompt = " ".join(self.cleaned_data["prompt"].split())
        if len(prompt) > PROMPT_MAX:
            raise forms.ValidationError(f"Prompt is too long, maximum length is {PROMPT_MAX} characters")
        return prompt

    def clean_negative_prompt(self):
        prompt = " ".join(self.cleaned_data["negative_prompt"].split())
        if len(prompt) > PROMPT_MAX:
            raise forms.ValidationError(f"Negative prompt is too long, maximum length is {PROMPT_MAX} characters")
        return prompt

    def save(self, owner) -> tuple[Generation, bool]:
        token = self.cleaned_data.get("client_token") or ""  # a resent form gets its first row back
        source = self.source
        fields = {
            "source": source,
            "prompt": self.cleaned_data["prompt"],
            "negative_prompt": self.cleaned_data["negative_prompt"],
            "model": source.model,
            "resolution": source.resolution,
            "duration": source.duration,
            "aspect_ratio": source.aspect_ratio,
        }
        return request_once(owner, Kind.ADD_AUDIO, token, fields)


def makers() -> list[tuple[str, str]]:
    """The "Made by" choices: everyone, me, and each teammate who has made something (one query, only when the
    select is shown or a teammate is asked for: the choices are a callable, read lazily)."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(Exists(Generation.objects.filter(owner=OuterRef("pk"))))
    return [("", "Everyone"), ("mine", "Me"),
            *((str(pk), name) for pk, name in users.order_by("username").values_list("pk", "username"))]


LOOP_REMIX = "loop"


def kind_choices() -> list[tuple[str, str]]:
    """The "Kind" choices: each kind, and "Loop remix" after "Extend", as the cards name them (Luma files a loop made
    from a video as an extend, and views_library.Card.kind_label calls it a loop remix)."""
    choices = [("", "Any kind")]
    for value, label in Kind.choices:
        choices.append((value, label))
        if value == Kind.EXTEND:
            choices.append((LOOP_REMIX, "Loop remix"))
    return choices


def model_choices() -> list[tuple[str, str]]:
    """The "Model" choices: every model the create form may offer, by name only ("Photon Flash 1", not "… (faster,
    cheaper)"), so that a chosen one shows in full in a narrow select."""
    models = [*VIDEO_MODELS, *AGENTS_VIDEO_MODELS, *IMAGE_MODELS, *AGENTS_IMAGE_MODELS]
    return [("", "Any model"), *((value, label.split(" (")[0]) for value, label in models)]


class LibraryFilters(forms.Form):
    """The library's filters; anything invalid is ignored rather than shown as an error."""

    FILTER_FIELDS = ("q", "state", "kind", "model", "owner", "favourites", "review")

    q = forms.CharField(label="Search prompts", required=False, max_length=200,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search prompts"}))
    state = forms.ChoiceField(
        label="State",
        required=False,
        choices=[("", "Any state"), ("live", "In progress"), ("completed", "Done"), ("failed", "Failed or rejected")],
    )
    kind = forms.ChoiceField(label="Kind", required=False, choices=kind_choices())
    model = forms.ChoiceField(label="Model", required=False, choices=model_choices())
    owner = forms.ChoiceField(label="Made by", required=False, choices=lambda: makers())
    favourites = forms.BooleanField(label="Favourites only", required=False)
    review = forms.ChoiceField(label="Review", required=False, choices=[
        ("", "Any review"), ("picked", "Picked"), ("rejected", "Rejected"), ("none", "Not reviewed")])
    before = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, **kwargs):
        # Its own ids: the create form on the same page has a "model" field too, and a label must find its field.
        super().__init__(*args, label_suffix="", auto_id="filter_%s", **kwargs)
        # The teammates are read when the select is first shown or checked, once per form, not at each use.
        found: list = []
        self.fields["owner"].choices = lambda: found or found.extend(makers()) or found

    def value(self, name: str):
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) if name not in self.errors else None

    @property
    def active(self) -> bool:
        return any(self.value(name) for name in self.FILTER_FIELDS)

    def querystring(self, **extra) -> str:
        from django.http import QueryDict

        query = QueryDict(mutable=True)
        for name in self.FILTER_FIELDS:
            value = self.value(name)
            if value:
                query[name] = "1" if value is True else value
        for name, value in extra.items():
            if value:
                query[name] = value
        return query.urlencode()

    def apply(self, rows: QuerySet[Generation], user) -> QuerySet[Generation]:
        if q := (self.value("q") or "").strip():
            rows = matching(rows, q)  # icontains' results, cheap at any library size (search.py)
        state = self.value("state")
        if state == "live":
            # Few rows are live at any time: find them through the state and archive-state indexes first, so
            # the page does not walk the whole library past finished ones (an OR across two columns would).
            live = Generation.objects.order_by().live().values("created_at")
            rows = rows.filter(created_at__in=live).live()
        elif state == "completed":
            rows = rows.filter(state=State.COMPLETED)
        elif state == "failed":
            rows = rows.filter(state__in=[State.FAILED, State.REJECTED])
        kind = self.value("kind")
        if kind == LOOP_REMIX:
            rows = rows.filter(kind=Kind.EXTEND, loop=True)
        elif kind == Kind.EXTEND:
            rows = rows.filter(kind=Kind.EXTEND, loop=False)  # a loop remix has a choice of its own
        elif kind:
            rows = rows.filter(kind=kind)
        if model := self.value("model"):
            rows = rows.filter(model=model)
        owner = self.value("owner")
        if owner == "mine":
            rows = rows.filter(owner=user)
        elif owner and owner.isdigit():
            rows = rows.filter(owner_id=int(owner))
        if self.value("favourites"):
            rows = rows.filter(Exists(Favourite.objects.filter(user=user, generation=OuterRef("pk"))))
        if review := self.value("review"):
            rows = rows.filter(review_mark="" if review == "none" else review)
        if before := self.value("before"):
            older = Generation.objects.filter(pk=before).values("created_at")[:1]
            rows = rows.filter(Q(created_at__lt=older) | Q(created_at=older, pk__lt=before))
        return rows
