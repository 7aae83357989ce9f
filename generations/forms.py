"""Forms of the dashboard: the create form (every seed mode), upscale, add audio and the library filters.

They apply the rules Luma applies (luma-api.md section 4), with Luma's own messages, so nothing is sent that
Luma would refuse; uploads are checked and re-encoded with Pillow (uploads.py) before anything is stored.
"""

from __future__ import annotations

import uuid

from django import forms
from django.core.validators import URLValidator
from django.db import IntegrityError
from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import Favourite, Generation, Kind, LumaAccount, State, kind_for_keyframes
from .search import matching
from .uploads import UploadCheck, check_upload
from .urlsafety import UnsafeURL, check_public, parse, real_luma_configured

VIDEO_MODELS = [("ray-2", "Ray 2"), ("ray-flash-2", "Ray Flash 2 (faster, cheaper)")]
IMAGE_MODELS = [("photon-1", "Photon 1"), ("photon-flash-1", "Photon Flash 1 (faster, cheaper)")]
RESOLUTIONS = [("540p", "540p"), ("720p", "720p"), ("1080p", "1080p"), ("4k", "4K")]
DURATIONS = [("5s", "5 seconds"), ("9s", "9 seconds")]
ASPECT_RATIOS = [
    ("16:9", "16:9 wide"),
    ("9:16", "9:16 tall"),
    ("1:1", "1:1 square"),
    ("4:3", "4:3"),
    ("3:4", "3:4"),
    ("21:9", "21:9 cinema"),
    ("9:21", "9:21"),
]
# Luma refuses concepts for some models ("concepts are not supported for this model"); we take it to be ray-flash-2.
MODELS_WITHOUT_CONCEPTS = {"ray-flash-2"}

PROMPT_MIN, PROMPT_MAX = 3, 5000
# How many finished videos the extend/interpolate pickers list (the newest); a card can start older ones.
SOURCE_CHOICES = 50

# Luma's messages for loop with an end frame, by (start frame type, end frame type).
LOOP_MESSAGES = {
    (None, "image"): "Loop is not supported for end frame",
    ("image", "image"): "Loop is not supported for keyframes",
    (None, "generation"): "Loop is not supported for extend reverse",
    ("generation", "image"): "Loop is not supported for interpolate video to image",
    ("image", "generation"): "Loop is not supported for interpolate image to video",
    ("generation", "generation"): "Loop is not supported for interpolate between two videos",
}


def new_client_token() -> str:
    return uuid.uuid4().hex


def prompt_error(prompt: str, required: bool) -> str:
    """Luma's message for a prompt it would refuse, or ""."""
    if not prompt:
        return "Prompt is required" if required else ""
    if len(prompt) < PROMPT_MIN:
        return f"Prompt is too short, minimum length is {PROMPT_MIN} characters"
    if len(prompt) > PROMPT_MAX:
        return f"Prompt is too long, maximum length is {PROMPT_MAX} characters"
    return ""


def continuable() -> QuerySet[Generation]:
    """Generations Luma can extend, interpolate, upscale or add audio to: finished videos it still has."""
    return (
        Generation.objects.visible()
        .filter(state=State.COMPLETED)
        .exclude(kind=Kind.IMAGE)
        .exclude(luma_id__isnull=True)
        .exclude(luma_id="")
    )


def newest_continuable() -> list[Generation]:
    """The newest SOURCE_CHOICES finished videos, for the pickers, at a cost that does not grow with the library.

    Reads the newest rows along the library's index and keeps those that can continue: asked in SQL, the state
    filter makes SQLite (which keeps no statistics) use the state index and sort every finished video.
    """
    window = SOURCE_CHOICES * 4
    newest = list(Generation.objects.visible().select_related("owner")
                  .only("kind", "state", "luma_id", "deleted_at", "prompt", "owner__username")[:window])
    rows = [row for row in newest if row.can_continue][:SOURCE_CHOICES]
    if len(rows) < SOURCE_CHOICES and len(newest) == window:  # mostly images or failures lately: ask in full
        rows = list(continuable().select_related("owner")[:SOURCE_CHOICES])
    return rows


def source_label(generation: Generation) -> str:
    prompt = generation.prompt if len(generation.prompt) <= 60 else generation.prompt[:59] + "…"
    owner = generation.owner.get_username() if generation.owner else "nobody"
    return f"#{generation.pk} · {prompt or generation.get_kind_display()} · {owner}"


class SourceField(forms.ModelChoiceField):
    """A finished video, checked against all of them; the widget lists only the newest (see CreateForm)."""

    default_error_messages = {
        "invalid_choice": "Choose a finished video: Luma extends and interpolates only completed generations.",
    }

    def __init__(self, **kwargs):
        super().__init__(queryset=continuable(), required=False, **kwargs)

    def label_from_instance(self, obj: Generation) -> str:
        return source_label(obj)


class HttpUrlField(forms.URLField):
    default_validators = [URLValidator(schemes=["http", "https"])]
    default_error_messages = {"invalid": "Enter a web address starting with https:// that Luma can fetch."}

    def __init__(self, **kwargs):
        super().__init__(assume_scheme="https", required=False, max_length=2000, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value:
            try:
                parse(value)  # the parser our own downloads use: user:pass@, backslashes, control characters
            except UnsafeURL as error:
                raise forms.ValidationError(str(error), code="unsafe") from None
        return value


def frame_choices(end: bool) -> list[tuple[str, str]]:
    video = (
        "Lead into a finished video (reverse extend)" if end else "Continue a finished video (extend)"
    )
    return [("", "Nothing"), ("url", "Image from a web address"), ("upload", "Upload an image"), ("generation", video)]


class CreateForm(forms.Form):
    """One form for every seed mode: text or image to video (start and/or end frame, by URL or upload), loop,
    extend, reverse extend, interpolate, camera motions and concepts, and Photon images."""

    client_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    what = forms.ChoiceField(
        label="Make", choices=[("video", "Video"), ("image", "Image")], initial="video", widget=forms.RadioSelect
    )
    prompt = forms.CharField(
        label="Prompt",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "A tiger walking through fresh snow at dawn"}),
    )
    camera_motion = forms.ChoiceField(label="Camera motion", required=False)
    frame0 = forms.ChoiceField(label="Start frame", choices=frame_choices(end=False), required=False,
                               widget=forms.RadioSelect)
    frame0_url = HttpUrlField(label="Start image address")
    frame0_file = forms.FileField(label="Start image file", required=False,
                                  widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}))
    frame0_generation = SourceField(label="Video to continue")
    frame1 = forms.ChoiceField(label="End frame", choices=frame_choices(end=True), required=False,
                               widget=forms.RadioSelect)
    frame1_url = HttpUrlField(label="End image address")
    frame1_file = forms.FileField(label="End image file", required=False,
                                  widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}))
    frame1_generation = SourceField(label="Video to lead into")
    loop = forms.BooleanField(label="Loop (the clip ends where it starts)", required=False)
    # Not required: each has Luma's default, and the image fields do not apply to a video (nor the other way).
    model = forms.ChoiceField(label="Model", choices=VIDEO_MODELS, initial="ray-2", required=False)
    image_model = forms.ChoiceField(label="Image model", choices=IMAGE_MODELS, initial="photon-1", required=False)
    resolution = forms.ChoiceField(label="Resolution", choices=RESOLUTIONS, initial="720p", required=False)
    duration = forms.ChoiceField(label="Duration", choices=DURATIONS, initial="5s", required=False)
    aspect_ratio = forms.ChoiceField(label="Aspect ratio", choices=ASPECT_RATIOS, initial="16:9", required=False)
    concepts = forms.MultipleChoiceField(label="Concepts", required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, account: LumaAccount, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account
        self._sources: list[tuple] | None = None
        self.fields["camera_motion"].choices = [("", "None")] + [(m, m) for m in account.camera_motions]
        self.fields["concepts"].choices = [(c, c.replace("_", " ")) for c in account.concepts]
        # Listed lazily: only a page that shows the form pays for the query.
        for name in ("frame0_generation", "frame1_generation"):
            self.fields[name].widget.choices = self._source_choices
        if not self.is_bound and not self.initial.get("client_token"):
            self.initial["client_token"] = new_client_token()
        self.frames: dict[str, tuple[str, object] | None] = {}
        self.uploads: dict[str, UploadCheck] = {}

    def _source_choices(self) -> list[tuple]:
        if self._sources is not None:
            return self._sources
        chosen = {self[name].value() for name in ("frame0_generation", "frame1_generation")} - {None, ""}
        rows = newest_continuable()
        missing = {str(pk) for pk in chosen} - {str(row.pk) for row in rows}
        if missing:
            rows += list(continuable().select_related("owner").filter(pk__in=[p for p in missing if str(p).isdigit()]))
        self._sources = [("", "Choose a finished video")] + [(row.pk, source_label(row)) for row in rows]
        return self._sources

    @property
    def frame_slots(self) -> list[dict]:
        return [
            {"choice": self[slot], "url": self[f"{slot}_url"], "file": self[f"{slot}_file"],
             "generation": self[f"{slot}_generation"]}
            for slot in ("frame0", "frame1")
        ]

    @property
    def shows_concepts(self) -> bool:
        return bool(self.account.concepts)

    # --- validation -------------------------------------------------------------------------------

    def _frame(self, slot: str, data: dict) -> tuple[str, object] | None:
        """The keyframe a slot asks for, as (type, value); the value is None when the input is missing."""
        source = data.get(slot)
        if source == "url":
            url = data.get(f"{slot}_url")
            if not url and f"{slot}_url" not in self.errors:
                self.add_error(f"{slot}_url", "Enter the image's web address.")
            elif url and real_luma_configured():
                try:
                    check_public(url)  # Luma's servers fetch it: not into their network, nor anyone's
                except UnsafeURL as error:
                    self.add_error(f"{slot}_url", str(error))
            return "image", url
        if source == "upload":
            upload = data.get(f"{slot}_file")
            if not upload:
                self.add_error(f"{slot}_file", "Choose an image file to upload.")
                return "image", None
            try:
                self.uploads[slot] = check_upload(upload)
            except forms.ValidationError as error:
                self.add_error(f"{slot}_file", error)
            return "image", upload
        if source == "generation":
            generation = data.get(f"{slot}_generation")
            if not generation and f"{slot}_generation" not in self.errors:
                self.add_error(f"{slot}_generation", "Choose a finished video.")
            return "generation", generation
        return None

    def full_prompt(self) -> str:
        prompt = " ".join((self.cleaned_data.get("prompt") or "").split())
        motion = self.cleaned_data.get("camera_motion")
        if motion and motion.lower() not in prompt.lower():
            prompt = f"{prompt}, {motion}" if prompt else motion
        return prompt

    def clean(self):
        data = super().clean()
        for name in ("model", "image_model", "resolution", "duration", "aspect_ratio"):
            if name not in self.errors and not data.get(name):
                data[name] = self.fields[name].initial
        if data.get("what") == "image":
            if message := prompt_error(self.full_prompt(), required=True):
                self.add_error("prompt", message)
            return data
        self.frames = {slot: self._frame(slot, data) for slot in ("frame0", "frame1")}
        start, end = (frame[0] if frame else None for frame in self.frames.values())
        has_image = "image" in (start, end)
        if message := prompt_error(self.full_prompt(), required=not has_image):
            self.add_error("prompt", message)
        if data.get("loop") and end:
            self.add_error("loop", LOOP_MESSAGES[(start, end)])
        if data.get("concepts") and data.get("model") in MODELS_WITHOUT_CONCEPTS:
            self.add_error("concepts", f"Concepts are not supported for this model ({data['model']}); use Ray 2.")
        return data

    # --- saving -----------------------------------------------------------------------------------

    @property
    def kind(self) -> Kind:
        if self.cleaned_data.get("what") == "image":
            return Kind.IMAGE
        return kind_for_keyframes({slot: {"type": frame[0]} for slot, frame in self.frames.items() if frame})

    def save(self, owner) -> tuple[Generation, bool]:
        """Request the generation; the same form post (client_token) twice gives the first row back."""
        data = self.cleaned_data
        token = data.get("client_token") or ""
        if token and (existing := Generation.objects.filter(owner=owner, client_token=token).first()):
            return existing, False  # before storing any upload again
        if self.kind == Kind.IMAGE:
            fields = {"prompt": self.full_prompt(), "model": data["image_model"], "aspect_ratio": data["aspect_ratio"]}
        else:
            fields = {
                "prompt": self.full_prompt(),
                "model": data["model"],
                "resolution": data["resolution"],
                "duration": data["duration"],
                "aspect_ratio": data["aspect_ratio"],
                "loop": bool(data.get("loop")),
                "concepts": list(data.get("concepts") or []),
            }
            for slot, frame in self.frames.items():
                if not frame:
                    continue
                kind, value = frame
                if kind == "generation":
                    fields[f"{slot}_generation"] = value
                elif slot in self.uploads:
                    fields[f"{slot}_url"] = self.uploads[slot].store(owner).public_url()
                else:
                    fields[f"{slot}_url"] = value
        return request_once(owner, self.kind, token, fields)


def request_once(owner, kind: Kind, token: str, fields: dict) -> tuple[Generation, bool]:
    try:
        return Generation.request(owner, kind=kind, client_token=token, **fields)
    except IntegrityError:
        # Two posts of the same form raced past the lookup; the first one's row is the answer.
        return Generation.objects.get(owner=owner, client_token=token), False


def initial_for(generation: Generation, how: str) -> dict:
    """The create form filled in to try `generation` again or to continue it (extend, interpolate, loop)."""
    initial = {
        "client_token": new_client_token(),
        "what": "image" if generation.kind == Kind.IMAGE else "video",
        "prompt": generation.prompt,
        "aspect_ratio": generation.aspect_ratio or "16:9",
    }
    if generation.kind == Kind.IMAGE:
        initial["image_model"] = generation.model or "photon-1"
    else:
        initial.update(
            model=generation.model if generation.model in dict(VIDEO_MODELS) else "ray-2",
            resolution=generation.resolution or "720p",
            duration=generation.duration or "5s",
        )
    if how == "again":
        initial.update(loop=generation.loop, concepts=list(generation.concepts or []))
        for slot in ("frame0", "frame1"):
            source_id = getattr(generation, f"{slot}_generation_id")
            url = getattr(generation, f"{slot}_url")
            if source_id:
                initial.update({slot: "generation", f"{slot}_generation": source_id})
            elif url:
                initial.update({slot: "url", f"{slot}_url": url})
    elif how == "extend":
        initial.update(frame0="generation", frame0_generation=generation.pk)
    elif how == "reverse-extend":
        initial.update(frame1="generation", frame1_generation=generation.pk)
    elif how == "interpolate":
        initial.update(frame0="generation", frame0_generation=generation.pk, frame1="generation")
    elif how == "loop":
        # A loop remix continues the clip and comes back to where it started (Luma allows loop with a start video).
        initial.update(frame0="generation", frame0_generation=generation.pk, loop=True)
    return initial


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


class LibraryFilters(forms.Form):
    """The library's filters; anything invalid is ignored rather than shown as an error."""

    FILTER_FIELDS = ("q", "state", "kind", "model", "owner", "favourites")

    q = forms.CharField(label="Search prompts", required=False, max_length=200,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search prompts"}))
    state = forms.ChoiceField(
        label="State",
        required=False,
        choices=[("", "Any state"), ("live", "In progress"), ("completed", "Done"), ("failed", "Failed or rejected")],
    )
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "Any kind"), *Kind.choices])
    model = forms.ChoiceField(label="Model", required=False, choices=[("", "Any model"), *VIDEO_MODELS, *IMAGE_MODELS])
    owner = forms.ChoiceField(label="Made by", required=False, choices=[("", "Everyone"), ("mine", "Me")])
    favourites = forms.BooleanField(label="Favourites only", required=False)
    before = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, **kwargs):
        # Its own ids: the create form on the same page has a "model" field too, and a label must find its field.
        super().__init__(*args, label_suffix="", auto_id="filter_%s", **kwargs)

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
            rows = rows.live()
        elif state == "completed":
            rows = rows.filter(state=State.COMPLETED)
        elif state == "failed":
            rows = rows.filter(state__in=[State.FAILED, State.REJECTED])
        if kind := self.value("kind"):
            rows = rows.filter(kind=kind)
        if model := self.value("model"):
            rows = rows.filter(model=model)
        if self.value("owner") == "mine":
            rows = rows.filter(owner=user)
        if self.value("favourites"):
            rows = rows.filter(Exists(Favourite.objects.filter(user=user, generation=OuterRef("pk"))))
        if before := self.value("before"):
            older = Generation.objects.filter(pk=before).values("created_at")[:1]
            rows = rows.filter(Q(created_at__lt=older) | Q(created_at=older, pk__lt=before))
        return rows
