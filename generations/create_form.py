"""The create form: every mode (video from text, keyframes or a library video; Photon image with references;
modify video; reframe video and image), the library pickers' field, and the form filled in from a card.

It applies the rules Luma applies (luma-api.md sections 4-7), with Luma's own messages where it has them, so
nothing is sent that Luma would refuse; uploads are checked and re-encoded (uploads.py) before anything is stored.
"""

from __future__ import annotations

import uuid

from django import forms
from django.conf import settings
from django.core.validators import URLValidator
from django.db import IntegrityError

from . import agents_form, catalog, pricing, variations
from .agents_form import (AGENTS_MODELS, AGENTS_WHAT, AUTO, EXTRA_RATIOS, RAY32, UNI_MODELS, AgentsFields,
                          agents_models, dream_machine_offered)
from .files import keyframe_still_needed
from .models import IMAGE_KINDS, REFRAME_FIELDS, Generation, KeyframeImage, Kind, LumaAccount, kind_for_keyframes
from .sources import finished, seconds_of
from .uploads import (REFRAME_IMAGE_MAX_BYTES, UploadCheck, VideoCheck, check_upload, check_video_upload, megabytes,
                      video_limit_error)
from .urlsafety import UnsafeURL, check_public, parse, real_luma_configured
from .words import friendly

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

# What the form makes, and the kind each choice (other than a video, which its keyframes decide) requests.
WHAT = [("video", "Video"), ("image", "Image"), ("modify", "Modify video"), ("reframe_video", "Reframe video"),
        ("reframe_image", "Reframe image")]
KIND_OF_WHAT = {"image": Kind.IMAGE, "modify": Kind.MODIFY_VIDEO, "reframe_video": Kind.REFRAME_VIDEO,
                "reframe_image": Kind.REFRAME_IMAGE, "image_edit": Kind.IMAGE_EDIT, "layering": Kind.LAYERING}
WHAT_OF_KIND = {kind: what for what, kind in KIND_OF_WHAT.items()}

# Modify video's nine modes (luma-api.md section 3): how far the result may stray from the source, 1 to 3.
MODIFY_STYLES = [
    ("adhere", "Adhere", "stays closest to your video: the same scene and movement, restyled (textures, colours, light)."),
    ("flex", "Flex", "in between: keeps the movement and layout, lets shapes and details change more."),
    ("reimagine", "Reimagine", "the loosest: follows your prompt freely; people, places and style can all change."),
]
MODIFY_MODES = [(f"{style}_{n}", f"{title} {n}") for style, title, _ in MODIFY_STYLES for n in (1, 2, 3)]

# The canvas Luma reframes into, per target aspect ratio, in pixels (luma-api.md section 6).
REFRAME_CANVAS = {"1:1": (1536, 1536), "4:3": (1792, 1344), "3:4": (1344, 1792), "16:9": (2048, 1152),
                  "9:16": (1152, 2048), "21:9": (2432, 1024), "9:21": (1024, 2432)}
BOX_FIELDS = ("grid_position_x", "grid_position_y", "resized_width", "resized_height")
CROP_FIELDS = ("x_start", "x_end", "y_start", "y_end")

# Photon's references (luma-api.md section 5): (option name, slots, default weight or None for no weight, title).
REFERENCE_GROUPS = (
    ("image_ref", 4, 0.85, "Image references"),
    ("style_ref", 1, 0.8, "Style reference"),
    ("character_ref", 4, None, "Character reference"),
    ("modify_image_ref", 1, 0.85, "Modify an image"),
)
# What one image of each group is called next to its field.
REFERENCE_ITEM = {"image_ref": "Reference", "style_ref": "Style image", "character_ref": "Character image",
                  "modify_image_ref": "Image to modify"}
REFERENCE_HELP = {
    "image_ref": "Up to 4 images whose content guides the picture. A higher weight follows an image more closely.",
    "style_ref": "An image whose look (palette, medium, texture) the picture takes on.",
    "character_ref": "Up to 4 images of the same person: Photon keeps their identity.",
    "modify_image_ref": "Edit this image with the prompt. A higher weight stays closer to it; for colour changes "
                        "Luma advises a small weight, 0.0 to 0.1.",
}

# Luma's messages for loop with an end frame, by (start frame type, end frame type); the form shows them in plain
# words (words.friendly), as failed cards do.
LOOP_MESSAGES = {
    (None, "image"): "Loop is not supported for end frame",
    ("image", "image"): "Loop is not supported for keyframes",
    (None, "generation"): "Loop is not supported for extend reverse",
    ("generation", "image"): "Loop is not supported for interpolate video to image",
    ("image", "generation"): "Loop is not supported for interpolate image to video",
    ("generation", "generation"): "Loop is not supported for interpolate between two videos",
}
IMAGE_ACCEPT = "image/jpeg,image/png,image/webp"
VIDEO_ACCEPT = "video/mp4,video/quicktime,.mp4,.mov"


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


def closest_ratio(width: int, height: int) -> str:
    return min(REFRAME_CANVAS, key=lambda ratio: abs(REFRAME_CANVAS[ratio][0] / REFRAME_CANVAS[ratio][1] - width / height))


class PickField(forms.ModelChoiceField):
    """A finished library video or image, by its number. The picker (a searchable thumbnail grid, picker.html)
    fills it in; without JavaScript a person types the number shown on the card."""

    def __init__(self, accept: str, invalid: str = "", **kwargs):
        self.accept = accept
        widget = forms.NumberInput(attrs={"min": 1, "class": "pick-input", "placeholder": "#"})
        super().__init__(queryset=finished(accept), required=False, widget=widget, **kwargs)
        self.error_messages["invalid_choice"] = invalid or (
            f"Choose a finished {accept} from the library: Luma can only use a completed {accept} it still has."
        )


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


def image_file(label: str) -> forms.FileField:
    return forms.FileField(label=label, required=False, widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}))


def pixels(label: str) -> forms.IntegerField:
    return forms.IntegerField(label=label, required=False, min_value=0, max_value=100_000, error_messages={
        "invalid": "Use whole pixels, like 640.", "min_value": "Pixels count from 0: use 0 or more.",
        "max_value": "That is far outside any canvas.",
    })


def weight_field(initial: float) -> forms.FloatField:
    message = "A weight is a number from 0 to 1."
    return forms.FloatField(label="Weight", required=False, initial=initial, min_value=0, max_value=1,
                            widget=forms.NumberInput(attrs={"step": "0.05", "min": 0, "max": 1}),
                            error_messages={"invalid": message, "min_value": message, "max_value": message})


def frame_choices(end: bool) -> list[tuple[str, str]]:
    video = (
        "Lead into a finished video (reverse extend)" if end else "Continue a finished video (extend)"
    )
    return [("", "Nothing"), ("url", "Image from a web address"), ("upload", "Upload an image"),
            ("image", "Image from the library"), ("generation", video)]


FIRST_FRAME_CHOICES = [("", "None"), ("url", "Image from a web address"), ("upload", "Upload an image"),
                       ("image", "Image from the library")]
SOURCE_CHOICES = [("library", "From the library"), ("upload", "Upload a file")]
FINISHED_VIDEO = "Choose a finished video: Luma extends and interpolates only completed generations."


class Pickers:
    """form.pick.<field>: what a picker shows (its field, what it accepts, the generation chosen now)."""

    def __init__(self, form: CreateForm):
        self.form, self.cache = form, {}

    def __getitem__(self, name: str) -> dict:
        if name not in self.cache:
            field = self.form[name]
            value = str(field.value() or "")
            chosen = None
            if value.isdigit():
                chosen = Generation.objects.visible().filter(pk=int(value)).first()
            self.cache[name] = {"field": field, "accept": field.field.accept, "chosen": chosen}
        return self.cache[name]


class CreateForm(AgentsFields):
    """One form for every mode: text or image to video (start and/or end frame by URL, upload or library image),
    loop, extend, reverse extend, interpolate, camera motions and concepts; Photon images with references;
    modify video; reframe video and image. With an Agents model (agents_form.py) the same modes become Ray 3.2's
    video, video_edit and video_reframe, or Uni-1's image, and Edit image and Layers appear."""

    client_token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    # "Make N": takes of the same settings from one submission, shown as a set (variations.py).
    count = forms.TypedChoiceField(label="How many", choices=[(n, str(n)) for n in range(1, 5)], coerce=int,
                                   initial=1, required=False, help_text="Takes with the same settings (1 to 4).")
    what = forms.ChoiceField(label="Make", choices=WHAT, initial="video", widget=forms.RadioSelect)
    prompt = forms.CharField(
        label="Prompt",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "A tiger walking through fresh snow at dawn"}),
    )
    camera_motion = forms.ChoiceField(label="Camera motion", required=False)
    frame0 = forms.ChoiceField(label="Start frame", choices=frame_choices(end=False), required=False,
                               widget=forms.RadioSelect)
    frame0_url = HttpUrlField(label="Start image address")
    frame0_file = image_file("Start image file")
    frame0_image = PickField("image", label="Start image from the library")
    frame0_generation = PickField("video", FINISHED_VIDEO, label="Video to continue")
    frame1 = forms.ChoiceField(label="End frame", choices=frame_choices(end=True), required=False,
                               widget=forms.RadioSelect)
    frame1_url = HttpUrlField(label="End image address")
    frame1_file = image_file("End image file")
    frame1_image = PickField("image", label="End image from the library")
    frame1_generation = PickField("video", FINISHED_VIDEO, label="Video to lead into")
    loop = forms.BooleanField(label="Loop (the clip ends where it starts)", required=False)

    # Modify and reframe: the source, from the library or uploaded.
    media_from = forms.ChoiceField(label="Source", choices=SOURCE_CHOICES, initial="library", required=False,
                                   widget=forms.RadioSelect)
    video_source = PickField("video", label="Video from the library")
    video_file = forms.FileField(label="Video file", required=False,
                                 widget=forms.ClearableFileInput(attrs={"accept": VIDEO_ACCEPT}))
    # A video sent ahead by the picker's upload (htmx), so the form post itself stays small: the upload's token.
    video_upload = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    image_source = PickField("image", label="Image from the library")
    image_source_file = image_file("Image file")
    mode = forms.ChoiceField(label="How far to go", choices=MODIFY_MODES, initial="flex_1", required=False,
                             widget=forms.RadioSelect)
    first_frame = forms.ChoiceField(label="First frame (optional)", choices=FIRST_FRAME_CHOICES, required=False,
                                    widget=forms.RadioSelect)
    first_frame_url = HttpUrlField(label="First frame address")
    first_frame_file = image_file("First frame file")
    first_frame_image = PickField("image", label="First frame from the library")
    grid_position_x = pixels("x")
    grid_position_y = pixels("y")
    resized_width = pixels("Width")
    resized_height = pixels("Height")
    x_start = pixels("x start")
    x_end = pixels("x end")
    y_start = pixels("y start")
    y_end = pixels("y end")

    # Not required: each has Luma's default, and the image fields do not apply to a video (nor the other way).
    model = forms.ChoiceField(label="Model", choices=VIDEO_MODELS, initial="ray-2", required=False)
    image_model = forms.ChoiceField(label="Image model", choices=IMAGE_MODELS, initial="photon-1", required=False)
    resolution = forms.ChoiceField(label="Resolution", choices=RESOLUTIONS, initial="720p", required=False)
    duration = forms.ChoiceField(label="Duration", choices=DURATIONS, initial="5s", required=False)
    aspect_ratio = forms.ChoiceField(label="Aspect ratio", choices=ASPECT_RATIOS, initial="16:9", required=False)
    concepts = forms.MultipleChoiceField(label="Concepts", required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, account: LumaAccount, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.account, self.user = catalog.ensure(account), user  # lists on the first page after a fresh start
        self._offer_models()
        self.add_agents_fields()
        self.fields["camera_motion"].choices = [("", "None")] + [(m, m) for m in account.camera_motions]
        self.fields["concepts"].choices = [(c, c.replace("_", " ")) for c in account.concepts]
        for prefix, slots, weight, title in REFERENCE_GROUPS:
            for n in range(1, slots + 1):
                name = f"{prefix}_{n}" if slots > 1 else prefix
                item = f"{REFERENCE_ITEM[prefix]} {n}" if slots > 1 else REFERENCE_ITEM[prefix]
                self.fields[name] = PickField("image", label=f"{item} from the library")
                self.fields[f"{name}_file"] = image_file(f"{item}, or upload it")
                if weight is not None:
                    self.fields[f"{name}_weight"] = weight_field(weight)
        for field in self.fields.values():
            if isinstance(field, forms.FileField):  # create.js checks the files' total before sending them
                field.widget.attrs["data-request-max"] = settings.REQUEST_MAX_BYTES
        if not self.is_bound and not self.initial.get("client_token"):
            self.initial["client_token"] = new_client_token()
        self.frames: dict[str, tuple[str, object] | None] = {}
        self.uploads: dict[str, UploadCheck] = {}
        self.video: VideoCheck | KeyframeImage | None = None
        self.references: dict[str, list[tuple[str, Generation | None]]] = {}
        self.pick = Pickers(self)

    def _offer_models(self) -> None:
        """Each provider's models when it is configured; an Agents model brings its own modes and settings."""
        dream = dream_machine_offered()
        video, image = agents_models("video"), agents_models("image")
        self.fields["model"].choices = (VIDEO_MODELS if dream else []) + video
        self.fields["image_model"].choices = (IMAGE_MODELS if dream else []) + image
        if not dream:
            self.fields["model"].initial, self.fields["image_model"].initial = RAY32, "uni-1"
            self.fields["what"].choices = [c for c in WHAT if c[0] != "reframe_image"]
            for name in ("model", "image_model"):  # a card's settings from Dream Machine: the Agents model instead
                if self.initial.get(name) and self.initial[name] not in dict(self.fields[name].choices):
                    self.initial[name] = self.fields[name].initial
        if video or image:
            self.fields["what"].choices = list(self.fields["what"].choices) + AGENTS_WHAT
            self.fields["resolution"].choices = [("360p", "360p draft")] + RESOLUTIONS
            self.fields["duration"].choices = DURATIONS + [("10s", "10 seconds")]
            self.fields["aspect_ratio"].choices = ASPECT_RATIOS + EXTRA_RATIOS
            self.fields["mode"].choices = [(AUTO, "Automatic")] + MODIFY_MODES

    @property
    def allowed(self) -> dict:
        """What each model takes (create.js hides the rest of the selects' options; clean() refuses them)."""
        dream_video = {"resolution": [r for r, _ in RESOLUTIONS], "duration": [d for d, _ in DURATIONS],
                       "aspect_ratio": [r for r, _ in ASPECT_RATIOS]}
        allowed = {model: dream_video for model, _ in VIDEO_MODELS}
        allowed.update({model: {"aspect_ratio": [r for r, _ in ASPECT_RATIOS]} for model, _ in IMAGE_MODELS})
        allowed[RAY32] = {"resolution": list(agents_form.RAY32_RESOLUTIONS), "duration": ["5s", "10s"],
                          "aspect_ratio": list(agents_form.VIDEO_RATIOS)}
        allowed.update({model: {"aspect_ratio": list(agents_form.IMAGE_RATIOS)} for model in UNI_MODELS})
        return allowed

    # --- what the template shows -------------------------------------------------------------------

    @property
    def frame_slots(self) -> list[dict]:
        return [
            {"choice": self[slot], "url": self[f"{slot}_url"], "file": self[f"{slot}_file"],
             "image": self.pick[f"{slot}_image"], "generation": self.pick[f"{slot}_generation"]}
            for slot in ("frame0", "frame1")
        ]

    @property
    def first_frame_slot(self) -> dict:
        return {"choice": self["first_frame"], "url": self["first_frame_url"], "file": self["first_frame_file"],
                "image": self.pick["first_frame_image"]}

    @property
    def reference_groups(self) -> list[dict]:
        groups = []
        for prefix, slots, weight, title in REFERENCE_GROUPS:
            names = [f"{prefix}_{n}" for n in range(1, slots + 1)] if slots > 1 else [prefix]
            slots_shown = [
                {"n": n, "pick": self.pick[name], "file": self[f"{name}_file"],
                 "weight": self[f"{name}_weight"] if weight is not None else None}
                for n, name in enumerate(names, 1)
            ]
            # Slots after the first fold away until one is used (or has a mistake to show).
            more_open = any(self[name].value() or self[name].errors or self[f"{name}_file"].errors
                            for name in names[1:])
            groups.append({"prefix": prefix, "title": title, "help": REFERENCE_HELP[prefix], "first": slots_shown[0],
                           "more": slots_shown[1:], "more_open": more_open})
        return groups

    @property
    def has_references(self) -> bool:
        """Whether any reference is filled in (a card's "reference" or an image's "modify"): show them open."""
        return any(str(self[f"{prefix}_{n}" if slots > 1 else prefix].value() or "")
                   for prefix, slots, _, _ in REFERENCE_GROUPS for n in range(1, slots + 1))

    @property
    def modify_styles(self) -> list[dict]:
        radios = {radio.data["value"]: radio for radio in self["mode"]}
        return [{"title": title, "help": help_text, "radios": [radios[f"{style}_{n}"] for n in (1, 2, 3)]}
                for style, title, help_text in MODIFY_STYLES]

    @property
    def reframe_box(self) -> dict:
        return {"box": [self[name] for name in BOX_FIELDS], "crop": [self[name] for name in CROP_FIELDS],
                "canvas": REFRAME_CANVAS}

    @property
    def uploaded_video(self) -> KeyframeImage | None:
        token = str(self["video_upload"].value() or "")
        if not token or not self.user:
            return None
        return KeyframeImage.objects.filter(token=token, uploaded_by=self.user,
                                            media_type=KeyframeImage.MediaType.VIDEO).first()

    @property
    def shows_concepts(self) -> bool:
        return bool(self.account.concepts)

    # --- validation -------------------------------------------------------------------------------

    def full_clean(self):
        super().full_clean()
        if self.errors and isinstance(self.video, VideoCheck):
            self.video.discard()  # a remuxed copy waiting in a temporary file: nothing will store it now

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
        if source == "image":
            image = data.get(f"{slot}_image")
            if not image and f"{slot}_image" not in self.errors:
                self.add_error(f"{slot}_image", "Choose a finished image from the library.")
            return "image", image
        if source == "generation":
            generation = data.get(f"{slot}_generation")
            if not generation and f"{slot}_generation" not in self.errors:
                self.add_error(f"{slot}_generation", "Choose a finished video.")
            return "generation", generation
        return None

    def full_prompt(self) -> str:
        prompt = " ".join((self.cleaned_data.get("prompt") or "").split())
        motion = self.cleaned_data.get("camera_motion")
        if self.cleaned_data.get("what") == "video" and motion and motion.lower() not in prompt.lower():
            prompt = f"{prompt}, {motion}" if prompt else motion
        return prompt

    def clean(self):
        data = super().clean()
        for name in ("model", "image_model", "resolution", "duration", "aspect_ratio", "mode"):
            if name not in self.errors and not data.get(name):
                data[name] = self.fields[name].initial
        what = data.get("what")
        if model := self.agents_model(data):
            self._clean_for_agents(data, model)
            return data
        self._refuse_agents_settings(data)
        if what == "image":
            self._clean_references(data)
            has_reference = any(self.references.values())
            if message := prompt_error(self.full_prompt(), required=not has_reference):
                self.add_error("prompt", message)
            return data
        if what in ("modify", "reframe_video", "reframe_image"):
            if message := prompt_error(self.full_prompt(), required=False):
                self.add_error("prompt", message)
            self._clean_source(data, "image" if what == "reframe_image" else "video",
                               "modify" if what == "modify" else "reframe")
            if what != "reframe_image":
                self.frames = {"first_frame": self._frame("first_frame", data)}
            if what != "modify":
                self._clean_geometry(data)
            return data
        self.frames = {slot: self._frame(slot, data) for slot in ("frame0", "frame1")}
        start, end = (frame[0] if frame else None for frame in self.frames.values())
        has_image = "image" in (start, end)
        if message := prompt_error(self.full_prompt(), required=not has_image):
            self.add_error("prompt", message)
        if data.get("loop") and end:
            self.add_error("loop", friendly(LOOP_MESSAGES[(start, end)]))
        if data.get("concepts") and data.get("model") in MODELS_WITHOUT_CONCEPTS:
            self.add_error("concepts", friendly("Concepts are not supported for this model"))
        return data

    def _clean_for_agents(self, data: dict, model: str) -> None:
        """The sources and frames an Agents type takes, then Luma's rules for it (agents_form.py)."""
        what = data.get("what")
        if what == "video":
            self.frames = {slot: self._frame(slot, data) for slot in ("frame0", "frame1")}
        elif what in ("modify", "reframe_video"):
            self._clean_source(data, "video", "modify" if what == "modify" else "reframe")
            self.frames = {"first_frame": self._frame("first_frame", data)}
            if what == "reframe_video":
                if self.frames["first_frame"]:
                    self.add_error("first_frame", "video.start_frame is not supported for type 'video_reframe'")
                self._clean_geometry(data)
                if any(data.get(name) is not None for name in CROP_FIELDS):
                    self.add_error("x_start", "Ray 3.2 places the source but does not crop it: leave the crop "
                                              "bounds empty.")
        elif what in ("image_edit", "layering"):
            self._clean_agents_image_source(data)
        self.clean_agents(data, model)

    def _clean_agents_image_source(self, data: dict) -> None:
        """The image to edit or split into layers: a finished library image or an upload (up to 50 MB)."""
        if data.get("media_from") != "upload":
            if not data.get("image_source") and "image_source" not in self.errors:
                self.add_error("image_source", "Choose a finished image from the library.")
            return
        file = data.get("image_source_file")
        if not file:
            self.add_error("image_source_file", "Choose an image file to upload.")
            return
        try:
            self.uploads["media"] = check_upload(file)
        except forms.ValidationError as error:
            self.add_error("image_source_file", error)

    def _refuse_agents_settings(self, data: dict) -> None:
        """Settings only an Agents model takes, asked of a Dream Machine model."""
        what = data.get("what")
        if what in ("image_edit", "layering"):
            self.add_error("image_model", f"{dict(self.fields['what'].choices)[what]} is Uni-1's: choose Uni-1 as "
                                          f"the image model.")
            return
        video = what in ("video", "modify", "reframe_video")
        model = data.get("model") if video else data.get("image_model")
        name = dict(VIDEO_MODELS + IMAGE_MODELS).get(model, model)
        if what == "video" and data.get("resolution") not in dict(RESOLUTIONS):
            self.add_error("resolution", f"360p is Ray 3.2's draft tier; {name} makes 540p to 4K.")
        if what == "video" and data.get("duration") not in dict(DURATIONS):
            self.add_error("duration", f"{name} makes 5 or 9 second clips; 10 seconds is Ray 3.2's.")
        if what != "modify" and data.get("aspect_ratio") not in dict(ASPECT_RATIOS):
            self.add_error("aspect_ratio", f"{name} does not make {data.get('aspect_ratio')}: choose one of "
                                           f"{', '.join(dict(ASPECT_RATIOS))}.")
        if what == "modify" and data.get("mode") == AUTO:
            self.add_error("mode", f"Automatic is Ray 3.2's; choose how far {name} may go from the source.")

    def _clean_source(self, data: dict, accept: str, use: str) -> None:
        """The video or image to modify or reframe, within the model's input limits (luma-api.md 6 and 7)."""
        upload = data.get("media_from") == "upload"
        if accept == "image":
            if not upload:
                source = data.get("image_source")
                if not source:
                    if "image_source" not in self.errors:
                        self.add_error("image_source", "Choose a finished image from the library.")
                elif not source.image_url:
                    self.add_error("image_source", f"Luma gave no address for #{source.pk}'s image; choose another.")
                elif (source.archive_size or 0) > REFRAME_IMAGE_MAX_BYTES:
                    self.add_error("image_source", f"#{source.pk} is {megabytes(source.archive_size)}; Photon "
                                                   f"reframes images of at most {megabytes(REFRAME_IMAGE_MAX_BYTES)}.")
                return
            file = data.get("image_source_file")
            if not file:
                self.add_error("image_source_file", "Choose an image file to upload.")
            elif file.size > REFRAME_IMAGE_MAX_BYTES:
                self.add_error("image_source_file", f"This image is {megabytes(file.size)}; Photon reframes images "
                                                    f"of at most {megabytes(REFRAME_IMAGE_MAX_BYTES)}.")
            else:
                try:
                    self.uploads["media"] = check_upload(file)
                except forms.ValidationError as error:
                    self.add_error("image_source_file", error)
                    return
                # What Luma fetches is our re-encoded copy, which can be larger than the file sent (a JPEG saved
                # again at our quality, a tightly compressed PNG written plainly).
                if (stored := len(self.uploads["media"].data)) > REFRAME_IMAGE_MAX_BYTES:
                    del self.uploads["media"]
                    self.add_error("image_source_file", (
                        f"Saved again without its metadata, this image is {megabytes(stored)}; Photon reframes "
                        f"images of at most {megabytes(REFRAME_IMAGE_MAX_BYTES)}. Use one with fewer pixels, or a "
                        "JPEG instead of a PNG."))
            return
        model = data.get("model") or "ray-2"
        if not upload:
            source = data.get("video_source")
            if not source:
                if "video_source" not in self.errors:
                    self.add_error("video_source", "Choose a finished video from the library.")
            elif not source.video_url:
                self.add_error("video_source", f"Luma gave no address for #{source.pk}'s video; choose another.")
            elif message := video_limit_error(seconds_of(source), source.archive_size, use, model):
                self.add_error("video_source", message.replace("This video", f"#{source.pk}"))
            return
        file, token = data.get("video_file"), data.get("video_upload")
        if file:
            try:
                self.video = check_video_upload(file)
            except forms.ValidationError as error:
                self.add_error("video_file", error)
                return
            duration, size = self.video.duration, file.size
        elif token:
            stored = self.uploaded_video
            if not stored or not keyframe_still_needed(stored):
                self.add_error("video_file", "That upload has expired; choose the file again.")
                return
            self.video, duration, size = stored, stored.duration, stored.size
        else:
            self.add_error("video_file", "Choose a video file to upload.")
            return
        if message := video_limit_error(duration, size, use, model):
            self.add_error("video_file", message)

    def _clean_geometry(self, data: dict) -> None:
        """Where the source sits in the new canvas: whole pixels, a positive size, inside the canvas."""
        ratio = data.get("aspect_ratio") or "16:9"
        width, height = REFRAME_CANVAS[ratio]
        canvas = f"the {width}×{height} canvas of {ratio}"
        box = {name: data.get(name) for name in BOX_FIELDS}
        if any(value is not None for value in box.values()):
            missing = [name for name, value in box.items() if value is None and name not in self.errors]
            for name in missing:
                self.add_error(name, "Give the position and the size together: x, y, width and height.")
            if not missing and not any(name in self.errors for name in BOX_FIELDS):
                x, y, w, h = (box[name] for name in BOX_FIELDS)
                if w < 1:
                    self.add_error("resized_width", "The width must be at least 1 pixel.")
                elif x + w > width:
                    self.add_error("resized_width", f"The source must stay inside {canvas}: x + width is {x + w}.")
                if h < 1:
                    self.add_error("resized_height", "The height must be at least 1 pixel.")
                elif y + h > height:
                    self.add_error("resized_height", f"The source must stay inside {canvas}: y + height is {y + h}.")
                if not any(name in self.errors for name in BOX_FIELDS):
                    self._check_shape(x, y, w, h, width, height)
        crop = {name: data.get(name) for name in CROP_FIELDS}
        if any(value is not None for value in crop.values()):
            missing = [name for name, value in crop.items() if value is None and name not in self.errors]
            for name in missing:
                self.add_error(name, "Give all four crop bounds, or none.")
            if not missing and not any(name in self.errors for name in CROP_FIELDS):
                for start, end, size in (("x_start", "x_end", width), ("y_start", "y_end", height)):
                    if crop[start] >= crop[end]:
                        self.add_error(end, f"{end} must be larger than {start}.")
                    elif crop[end] > size:
                        self.add_error(end, f"The crop must stay inside {canvas}: {end} is at most {size}.")

    def _source_size(self) -> tuple[str, int, int] | None:
        """What the uploaded source is and its size as we measured it (Pillow, after turning it upright; PyAV), or
        None for a library source: the library keeps only its nominal aspect ratio."""
        if self.cleaned_data.get("media_from") != "upload":
            return None
        if self.cleaned_data.get("what") == "reframe_image":
            upload = self.uploads.get("media")
            return ("uploaded image", upload.width, upload.height) if upload else None
        if self.video is not None:
            return "uploaded video", self.video.width, self.video.height
        return None

    def _check_shape(self, x: int, y: int, w: int, h: int, canvas_width: int, canvas_height: int) -> None:
        """The box must keep the source's shape (to a pixel of rounding): Luma resizes the source to exactly
        resized_width × resized_height, so a 600×800 portrait in a 2048×1152 box would come back stretched."""
        known = self._source_size()
        if not known:
            return
        what, width, height = known
        ratio = width / height
        if (w - 1) / (h + 1) <= ratio <= (w + 1) / max(h - 1, 1e-9):
            return
        ways = []
        if y + (fitting := round(w / ratio)) <= canvas_height:
            ways.append(f"a height of {fitting} for a width of {w}")
        if x + (fitting := round(h * ratio)) <= canvas_width:
            ways.append(f"a width of {fitting} for a height of {h}")
        advice = " or ".join(ways) if ways else "make the box smaller"
        self.add_error("resized_width", f"The box is {w}×{h}, but the {what} is {width}×{height}, so Luma would "
                                        f"stretch it. Keep its shape: {advice}.")

    def _clean_references(self, data: dict) -> None:
        """Photon's references: each slot takes a library image or an upload, not both."""
        for prefix, slots, _, _ in REFERENCE_GROUPS:
            chosen = []
            for name in ([f"{prefix}_{n}" for n in range(1, slots + 1)] if slots > 1 else [prefix]):
                picked, file = data.get(name), data.get(f"{name}_file")
                if picked and file:
                    self.add_error(f"{name}_file", "Pick a library image or upload one, not both.")
                elif file:
                    try:
                        self.uploads[name] = check_upload(file)
                        chosen.append((name, None))
                    except forms.ValidationError as error:
                        self.add_error(f"{name}_file", error)
                elif picked:
                    if picked.image_url:
                        chosen.append((name, picked))
                    else:
                        self.add_error(name, f"Luma gave no address for #{picked.pk}'s image; choose another.")
            self.references[prefix] = chosen

    # --- saving -----------------------------------------------------------------------------------

    @property
    def kind(self) -> Kind:
        what = self.cleaned_data.get("what")
        if model := self.agents_model(self.cleaned_data):
            if what != "video":
                return agents_form.KIND_OF_TYPE[agents_form.TYPES_OF[model][what]]
            if self.keyframes:
                return Kind.IMAGE_TO_VIDEO
        if what in KIND_OF_WHAT:
            return KIND_OF_WHAT[what]
        return kind_for_keyframes({slot: {"type": frame[0]} for slot, frame in self.frames.items() if frame})

    def _frame_fields(self, owner) -> dict:
        """The row's start and end frames as chosen: a library generation (frame0_generation) or an address
        (frame0_url: an upload's, a library image's or as typed)."""
        fields = {}
        for slot, frame in self.frames.items():
            if frame:
                frame_type, value = frame
                if frame_type == "generation":
                    fields[f"{slot}_generation"] = value
                else:
                    fields[f"{slot}_url"] = self._image_url(slot, value, owner)
        return fields

    def _image_url(self, slot: str, value, owner) -> str:
        """The address Luma fetches for an image slot: our upload's public URL, a library image's, or as typed."""
        if slot in self.uploads:
            return self.uploads[slot].store(owner).public_url()
        if isinstance(value, Generation):
            return value.image_url
        return value

    def _references(self, owner) -> dict:
        options = {}
        for prefix, _, default, _ in REFERENCE_GROUPS:
            chosen = [(name, self._image_url(name, picked, owner)) for name, picked in self.references.get(prefix, [])]
            if not chosen:
                continue
            if default is None:  # a character reference: images of one identity, no weight
                options[prefix] = {"identity0": {"images": [url for _, url in chosen]}}
                continue
            weighted = [{"url": url, "weight": self._weight(name, default)} for name, url in chosen]
            options[prefix] = weighted[0] if prefix == "modify_image_ref" else weighted
        return options

    def _weight(self, name: str, default: float) -> float:
        value = self.cleaned_data.get(f"{name}_weight")
        return round(value if value is not None else default, 3)

    def _media_fields(self, owner) -> dict:
        """Modify and reframe: the source, first frame and geometry as the row keeps them."""
        data, kind = self.cleaned_data, self.kind
        fields = {"prompt": self.full_prompt()}
        upload = data.get("media_from") == "upload"
        if kind == Kind.REFRAME_IMAGE:
            fields["model"] = data["image_model"]
            if upload:
                fields["media_url"] = self.uploads["media"].store(owner).public_url()
            else:
                fields["source"] = data["image_source"]
        else:
            fields["model"] = data["model"]
            if upload:
                stored = self.video.store(owner) if isinstance(self.video, VideoCheck) else self.video
                fields["media_url"] = stored.public_url()
                fields["aspect_ratio"] = closest_ratio(stored.width, stored.height)
                # What it is priced by, as for a library source: its measured size and length (Luma charges the
                # source's pixels and seconds).
                fields["resolution"] = pricing.resolution_of(stored.width, stored.height)
                if stored.duration:
                    fields["duration"] = f"{stored.duration:.2f}s"
            else:
                source = data["video_source"]
                fields.update(source=source, aspect_ratio=source.aspect_ratio, duration=source.duration,
                              resolution=source.resolution)
            frame = self.frames.get("first_frame")
            if frame and frame[1] is not None:
                fields["first_frame_url"] = self._image_url("first_frame", frame[1], owner)
        if kind == Kind.MODIFY_VIDEO:
            fields["mode"] = data["mode"]
        else:
            fields["aspect_ratio"] = data["aspect_ratio"]
            fields["options"] = {name: data[name] for name in REFRAME_FIELDS if data.get(name) is not None}
        return fields

    def save(self, owner) -> tuple[Generation, bool]:
        """Request the generation; the same form post (client_token) twice gives the first row back."""
        data = self.cleaned_data
        token = data.get("client_token") or ""
        if token and (existing := Generation.objects.filter(owner=owner, client_token=token).first()):
            if isinstance(self.video, VideoCheck):
                self.video.discard()
            return existing, False  # before storing any upload again
        if model := self.agents_model(data):
            kind, fields = self.agents_row(owner, model)
            return self._request(owner, kind, token, fields)
        kind = self.kind
        if kind == Kind.IMAGE:
            fields = {"prompt": self.full_prompt(), "model": data["image_model"], "aspect_ratio": data["aspect_ratio"],
                      "options": self._references(owner)}
        elif kind in (Kind.MODIFY_VIDEO, Kind.REFRAME_VIDEO, Kind.REFRAME_IMAGE):
            fields = self._media_fields(owner)
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
            fields.update(self._frame_fields(owner))
        return self._request(owner, kind, token, fields)

    def _request(self, owner, kind: Kind, token: str, fields: dict) -> tuple[Generation, bool]:
        """One generation, or a set of `count` sharing a batch (all or nothing over a budget); returns the first."""
        count = self.cleaned_data.get("count") or 1
        if count > 1:
            rows, created = variations.request_set(owner, count, kind, client_token=token, **fields)
            return rows[0], created
        return request_once(owner, kind, token, fields)


def request_once(owner, kind: Kind, token: str, fields: dict) -> tuple[Generation, bool]:
    try:
        return Generation.request(owner, kind=kind, client_token=token, **fields)
    except IntegrityError:
        # Two posts of the same form raced past the lookup; the first one's row is the answer.
        return Generation.objects.get(owner=owner, client_token=token), False


def initial_for(generation: Generation, how: str, usable: bool = True) -> dict:
    """The create form filled in from `generation`: try it again, or make something from it (`how`, see
    access.uses); with usable=False only its settings, not the generation itself."""
    is_image = generation.kind in IMAGE_KINDS
    initial = {
        "client_token": new_client_token(),
        "what": WHAT_OF_KIND.get(generation.kind, "video"),
        "prompt": generation.prompt,
        "aspect_ratio": generation.aspect_ratio or "16:9",
    }
    if is_image:
        known = [*dict(IMAGE_MODELS), *UNI_MODELS]
        initial["image_model"] = generation.model if generation.model in known else "photon-1"
    else:
        initial.update(
            model=generation.model if generation.model in [*dict(VIDEO_MODELS), RAY32] else "ray-2",
            resolution=generation.resolution or "720p",
            duration=generation.duration or "5s",
        )
    if generation.kind in (Kind.UPSCALE, Kind.ADD_AUDIO):
        initial["what"] = "video"
    agents = generation.model in AGENTS_MODELS
    if how == "again":
        initial.update(loop=generation.loop, concepts=list(generation.concepts or []))
        if agents:
            initial.update(agents_form.initial_for_again(generation))
        for slot in ("frame0", "frame1"):
            source_id = getattr(generation, f"{slot}_generation_id")
            url = getattr(generation, f"{slot}_url")
            if source_id:
                initial.update({slot: "generation", f"{slot}_generation": source_id})
            elif url:
                initial.update({slot: "url", f"{slot}_url": url})
        if generation.kind in (Kind.MODIFY_VIDEO, Kind.REFRAME_VIDEO, Kind.REFRAME_IMAGE):
            if generation.source_id:
                initial[("image_source" if is_image else "video_source")] = generation.source_id
            initial.update(mode=generation.mode or (AUTO if agents else "flex_1"), **{
                name: value for name, value in (generation.options or {}).items() if name in REFRAME_FIELDS})
            if generation.first_frame_url:
                initial.update(first_frame="url", first_frame_url=generation.first_frame_url)
        return initial
    if not usable:
        return initial
    initial["prompt"] = "" if how in ("reference", "modify", "reframe", "start-frame", "end-frame") else initial["prompt"]
    pk = generation.pk
    if how == "extend":
        initial.update(frame0="generation", frame0_generation=pk)
    elif how == "reverse-extend":
        initial.update(frame1="generation", frame1_generation=pk)
    elif how in ("start-frame", "end-frame"):
        slot = "frame0" if how == "start-frame" else "frame1"
        initial.update({"what": "video", slot: "image", f"{slot}_image": pk, "model": "ray-2",
                        "resolution": "720p", "duration": "5s"})
    elif how == "interpolate":
        initial.update(frame0="generation", frame0_generation=pk, frame1="generation")
    elif how == "loop":
        # A loop remix continues the clip and comes back to where it started (Luma allows loop with a start video).
        initial.update(frame0="generation", frame0_generation=pk, loop=True)
    elif how == "reference" and agents:
        initial.update(what="image", uni_ref_1=pk)
    elif how == "reference":
        initial.update(what="image", image_ref_1=pk)
    elif how == "modify" and is_image and agents:
        initial.update(what="image_edit", media_from="library", image_source=pk)
    elif how == "modify" and is_image:
        initial.update(what="image", modify_image_ref=pk)  # Photon's modify image: the image's own kind of modify
    elif how == "modify":
        initial.update(what="modify", media_from="library", video_source=pk)
    elif how == "reframe":
        initial.update(what="reframe_image" if is_image else "reframe_video", media_from="library",
                       **{"image_source" if is_image else "video_source": pk})
    return initial


