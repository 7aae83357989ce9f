"""The create form's Agents API part (Ray 3.2, Uni-1, Uni-1 Max): its fields, Luma's rules for them (luma-agents-api.md
sections 3-4, with the documented messages of section 9.3 word for word and the simulator's wording elsewhere), and
the row each type becomes. create_form.CreateForm mixes it in; a person reaches it by choosing an Agents model.
"""

from __future__ import annotations

from django import forms

from . import providers
from .models import Generation, Kind, Provider
from .sources import seconds_of
from .uploads import UploadCheck, check_upload

RAY32 = "ray-3.2"
UNI_MODELS = ("uni-1", "uni-1-max")
AGENTS_MODELS = (RAY32, *UNI_MODELS)
AGENTS_VIDEO_MODELS = [(RAY32, "Ray 3.2 (HDR, 1080p, 10 s)")]
AGENTS_IMAGE_MODELS = [("uni-1", "Uni-1"), ("uni-1-max", "Uni-1 Max (finer, dearer)")]
# The form's "what" and the Agents type each model takes it as (section 3: model <-> type).
AGENTS_WHAT = [("image_edit", "Edit image"), ("layering", "Layers")]
TYPES_OF = {RAY32: {"video": "video", "modify": "video_edit", "reframe_video": "video_reframe"},
            "uni-1": {"image": "image", "image_edit": "image_edit", "layering": "layering"},
            "uni-1-max": {"image": "image", "image_edit": "image_edit"}}
KIND_OF_TYPE = {"video_edit": Kind.MODIFY_VIDEO, "video_reframe": Kind.REFRAME_VIDEO, "image": Kind.IMAGE,
                "image_edit": Kind.IMAGE_EDIT, "layering": Kind.LAYERING}
# Section 3: what each model takes, beside Dream Machine's own lists.
VIDEO_RATIOS = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
IMAGE_RATIOS = ("3:1", "2:1", "16:9", "3:2", "1:1", "2:3", "9:16", "1:2", "1:3")
EXTRA_RATIOS = [("3:2", "3:2"), ("2:3", "2:3"), ("2:1", "2:1"), ("1:2", "1:2"), ("3:1", "3:1 panorama"),
                ("1:3", "1:3")]
RAY32_RESOLUTIONS = ("360p", "540p", "720p", "1080p")
RAY32_DURATIONS = ("5s", "10s")
VERTICAL = ("9:16", "3:4")
FPS = 24
PROMPT_MAX, LAYERING_PROMPT_MAX = 6000, 500
KEYFRAME_SLOTS = 4
UNI_REF_SLOTS = 9  # image: up to 9; image_edit: up to 8 (the source takes a slot)
SOURCE_MAX_SECONDS = {"video_edit": 18, "video_reframe": 30}  # SDK 0.4.0 docstring; SUM/GMI for reframe
CONTROLS = ("depth", "face", "normals", "pose", "trajectory")
# A control's own setting: (field, Luma's name, label, help).
CONTROL_SETTINGS = {
    "depth": ("depth_blur", "blur", "Blur", "0 keeps the source's shapes; higher allows more geometric freedom."),
    "normals": ("normals_augmentation", "augmentation", "Augmentation", "0 follows the surfaces closely; higher "
                                                                         "lets them change."),
    "trajectory": ("trajectory_sparsity", "sparsity", "Sparsity", "Higher uses fewer motion anchors."),
}
CONTROL_HELP = {"depth": "keeps the scene's depth (what is near and far).",
                "face": "keeps faces and expressions.",
                "normals": "keeps surface shapes and lighting directions.",
                "pose": "keeps people's body poses.",
                "trajectory": "keeps the motion paths."}
POSE_STRENGTHS = [("precise", "Precise"), ("coarse", "Coarse")]
AUTO = "auto"  # the edit's "strength" radio that asks for auto_controls


def agents_models(kind: str) -> list[tuple[str, str]]:
    """The Agents models the model select offers, when that provider is configured."""
    if not any(adapter.name == Provider.AGENTS for adapter in providers.configured()):
        return []
    return AGENTS_VIDEO_MODELS if kind == "video" else AGENTS_IMAGE_MODELS


def dream_machine_offered() -> bool:
    """Dream Machine's models are offered when it is configured, or when nothing is (dev: the simulator)."""
    names = {adapter.name for adapter in providers.configured()}
    return Provider.DREAM_MACHINE in names or not names


def luma_list(values) -> str:
    """Luma's order in "Valid: ..." lists: sorted as strings, side by side (1:1, 1:2, 1:3, 16:9, 2:1, ...)."""
    return ", ".join(sorted(values, key=lambda v: tuple(v.split(":"))))


def unit_field(label: str, initial: float) -> forms.FloatField:
    message = f"{label} is a number from 0 to 1."
    return forms.FloatField(label=label, required=False, initial=initial, min_value=0, max_value=1,
                            widget=forms.NumberInput(attrs={"step": "0.05", "min": 0, "max": 1}),
                            error_messages={"invalid": message, "min_value": message, "max_value": message})


def image_upload(label: str) -> forms.FileField:
    return forms.FileField(label=label, required=False,
                           widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}))


class AgentsFields(forms.Form):
    """Ray 3.2's and Uni-1's own fields. Dream Machine requests ignore them."""

    hdr = forms.BooleanField(label="HDR (720p or 1080p)", required=False)
    exr_export = forms.BooleanField(label="Also export EXR (16-bit ACES; needs HDR)", required=False)
    control_depth = forms.BooleanField(label="Depth", required=False)
    depth_blur = unit_field("Blur", 0.0)
    control_face = forms.BooleanField(label="Face", required=False)
    control_normals = forms.BooleanField(label="Normals", required=False)
    normals_augmentation = unit_field("Augmentation", 0.0)
    control_pose = forms.BooleanField(label="Pose", required=False)
    pose_strength = forms.ChoiceField(label="Pose strength", choices=POSE_STRENGTHS, initial="precise",
                                      required=False)
    control_trajectory = forms.BooleanField(label="Trajectory", required=False)
    trajectory_sparsity = unit_field("Sparsity", 0.5)
    style = forms.ChoiceField(label="Style", choices=[("auto", "Auto"), ("manga", "Manga")], initial="auto",
                              required=False)
    output_format = forms.ChoiceField(label="Format", choices=[("", "Model chooses"), ("png", "PNG"),
                                                              ("jpeg", "JPEG")], required=False)
    layering_resolution = forms.ChoiceField(
        label="Layer resolution", choices=[("1k", "1k (faster, cheaper)"), ("2k", "2k (finer, dearer per layer)")],
        initial="1k", required=False, widget=forms.RadioSelect)
    # How many reference files are chosen now (create.js keeps it), so the price estimate can count them.
    uni_ref_files = forms.CharField(required=False, max_length=2, widget=forms.HiddenInput)

    def add_agents_fields(self) -> None:
        from .create_form import PickField  # the library picker's field lives with the form that shows it

        for n in range(1, KEYFRAME_SLOTS + 1):
            self.fields[f"keyframe_{n}"] = PickField("image", label=f"Keyframe {n} from the library")
            self.fields[f"keyframe_{n}_file"] = image_upload(f"Keyframe {n}, or upload it")
            self.fields[f"keyframe_{n}_index"] = forms.IntegerField(
                label="At frame", required=False, min_value=0, initial=0 if n == 1 else None,
                widget=forms.NumberInput(attrs={"min": 0, "max": 240, "step": 1}),
                error_messages={"invalid": "A frame is a whole number: 0 is the first, 24 is one second in.",
                                "min_value": "Frames count from 0."})
        for n in range(1, UNI_REF_SLOTS + 1):
            self.fields[f"uni_ref_{n}"] = PickField("image", label=f"Reference image {n} from the library")
            self.fields[f"uni_ref_{n}_file"] = image_upload(f"Reference image {n}, or upload it")
        self.agent_uploads: dict[str, UploadCheck] = {}
        self.keyframes: list[tuple[str, object, int]] = []
        self.uni_refs: list[tuple[str, object]] = []

    # --- what the template shows ------------------------------------------------------------------------------

    @property
    def keyframe_slots(self) -> dict:
        """The first two keyframes, and the rest folded away until used (or holding a mistake to show)."""
        slots = [{"n": n, "pick": self.pick[f"keyframe_{n}"], "file": self[f"keyframe_{n}_file"],
                  "index": self[f"keyframe_{n}_index"]} for n in range(1, KEYFRAME_SLOTS + 1)]

        def used(slot: dict) -> bool:
            name = f"keyframe_{slot['n']}"
            return bool(self[name].value() or self[name].errors or self[f"{name}_file"].errors
                        or self[f"{name}_index"].errors)

        return {"first": slots[:2], "more": slots[2:], "count": KEYFRAME_SLOTS,
                "more_open": any(used(slot) for slot in slots[2:]), "open": any(used(slot) for slot in slots)}

    @property
    def uni_ref_slots(self) -> dict:
        slots = [{"n": n, "pick": self.pick[f"uni_ref_{n}"], "file": self[f"uni_ref_{n}_file"]}
                 for n in range(1, UNI_REF_SLOTS + 1)]
        more_open = any(self[f"uni_ref_{n}"].value() or self[f"uni_ref_{n}"].errors or self[f"uni_ref_{n}_file"].errors
                        for n in range(2, UNI_REF_SLOTS + 1))
        return {"first": slots[0], "more": slots[1:], "more_open": more_open}

    @property
    def edit_controls(self) -> list[dict]:
        rows = []
        for name in CONTROLS:
            setting = CONTROL_SETTINGS.get(name)
            rows.append({"name": name, "box": self[f"control_{name}"], "help": CONTROL_HELP[name],
                         "setting": self[setting[0]] if setting else self["pose_strength"] if name == "pose" else None,
                         "setting_help": setting[3] if setting else ""})
        return rows

    @property
    def offers_agents(self) -> bool:
        return AUTO in dict(self.fields["mode"].choices)

    @property
    def auto_radio(self):
        return next((radio for radio in self["mode"] if radio.data["value"] == AUTO), None)

    # --- validation -------------------------------------------------------------------------------------------

    def agents_model(self, data: dict) -> str:
        """The Agents model this post asks for, or "" (a Dream Machine request)."""
        what = data.get("what")
        images = what in ("image", "reframe_image", "image_edit", "layering")
        model = data.get("image_model") if images else data.get("model")
        return model if model in AGENTS_MODELS else ""

    def clean_agents(self, data: dict, model: str) -> None:
        what = data.get("what")
        agents_type = TYPES_OF[model].get(what)
        if agents_type is None:
            field = "image_model" if model in UNI_MODELS else "model"
            if what == "reframe_image":
                message = "Uni-1 does not reframe images: choose Photon 1 or Photon Flash 1, or Edit image."
            else:
                message = f"Type '{_luma_type(what)}' is not supported for model '{model}'"
            self.add_error(field, message)
            return
        self._clean_agents_prompt(data, agents_type)
        ratios = IMAGE_RATIOS if model in UNI_MODELS else VIDEO_RATIOS
        ratio = data.get("aspect_ratio")
        if agents_type in ("image", "video", "video_reframe") and ratio and ratio not in ratios:
            self.add_error("aspect_ratio", f"Invalid aspect_ratio '{ratio}'. Valid: {luma_list(ratios)}")
        if model == RAY32:
            self._clean_ray(data, agents_type)
        else:
            self._clean_uni(data, agents_type)

    def _clean_agents_prompt(self, data: dict, agents_type: str) -> None:
        prompt = " ".join((data.get("prompt") or "").split())
        if agents_type == "layering":
            if len(prompt) > LAYERING_PROMPT_MAX:
                self.add_error("prompt", f"Prompt must be at most {LAYERING_PROMPT_MAX} characters for type "
                                         f"'layering'")
        elif not 1 <= len(prompt) <= PROMPT_MAX:
            self.add_error("prompt", f"Prompt must be between 1 and {PROMPT_MAX} characters")

    def _clean_ray(self, data: dict, agents_type: str) -> None:
        """Section 4.5's constraint matrix, and 4.6-4.7's rules for edit and reframe."""
        resolution, duration = data.get("resolution"), data.get("duration")
        hdr, exr = bool(data.get("hdr")), bool(data.get("exr_export"))
        if resolution not in RAY32_RESOLUTIONS:
            self.add_error("resolution", f"Invalid video.resolution '{resolution}'. Valid: "
                                         f"{', '.join(RAY32_RESOLUTIONS)}")
        if agents_type == "video" and duration not in RAY32_DURATIONS:
            self.add_error("duration", f"Invalid video.duration '{duration}'. Valid: {', '.join(RAY32_DURATIONS)}")
        if agents_type == "video_reframe":
            if hdr or exr:
                self.add_error("hdr" if hdr else "exr_export",
                               f"video.{'hdr' if hdr else 'exr_export'} is not supported for type 'video_reframe'")
            if resolution == "1080p" and data.get("aspect_ratio") in VERTICAL:
                self.add_error("resolution", "video_reframe at 1080p to a vertical aspect ratio (9:16, 3:4) is coming "
                                             "soon; use 720p")
        elif hdr and resolution in ("360p", "540p"):
            self.add_error("hdr", "video.hdr requires video.resolution '720p' or '1080p'")
        if exr and not hdr and agents_type != "video_reframe":
            self.add_error("exr_export", "video.exr_export requires video.hdr")
        if agents_type == "video":
            self._clean_ray_video(data, hdr)
        elif agents_type == "video_edit":
            self._clean_edit(data)
        if agents_type in ("video_edit", "video_reframe"):
            self._clean_source_length(data, agents_type)

    def _clean_ray_video(self, data: dict, hdr: bool) -> None:
        frames = {slot: frame for slot, frame in self.frames.items() if frame}
        start, end = frames.get("frame0"), frames.get("frame1")
        ten, loop = data.get("duration") == "10s", bool(data.get("loop"))
        self._clean_keyframes(data)
        if self.keyframes:
            clash = [name for name, given in (("video.start_frame", start), ("video.end_frame", end),
                                              ("video.loop", loop)) if given]
            if clash:
                self.add_error("keyframe_1", f"video.keyframes cannot be combined with {', '.join(clash)}")
        elif ten and (start or end):
            self.add_error("duration", "video.duration '10s' is not supported with video.start_frame or "
                                       "video.end_frame")
        elif ten and hdr:
            self.add_error("hdr", "video.hdr is not supported with video.duration '10s' (except with video.keyframes)")
        if loop and not self.keyframes:
            for clash, given in (("video.duration '10s'", ten), ("video.hdr", hdr), ("video.end_frame", end)):
                if given:
                    self.add_error("loop", f"video.loop is not supported with {clash}")
                    break
        videos = [(slot, frame[1]) for slot, frame in frames.items() if frame[0] == "generation"]
        if videos:
            if len(frames) > 1:
                self.add_error("frame1", "extending a video takes exactly one anchor frame (video.start_frame or "
                                         "video.end_frame)")
            if hdr:
                self.add_error("hdr", "video.hdr is not supported when extending a video (extend is SDR only)")
            for slot, video in videos:
                if isinstance(video, Generation) and video.provider != Provider.AGENTS:
                    self.add_error(f"{slot}_generation", f"Ray 3.2 extends only videos it made: #{video.pk} is "
                                                         f"{video.model or 'a Dream Machine video'}.")

    def _clean_keyframes(self, data: dict) -> None:
        """Guide images pinned at output frames (5 s: frames 0-120, 10 s: 0-240), each frame used once."""
        last = (10 if data.get("duration") == "10s" else 5) * FPS
        seen: dict[int, int] = {}
        for n in range(1, KEYFRAME_SLOTS + 1):
            name = f"keyframe_{n}"
            image = self._agents_image(name, data)
            if image is None:
                continue
            index = data.get(f"{name}_index")
            if index is None:
                if f"{name}_index" not in self.errors:
                    self.add_error(f"{name}_index", f"Give the frame this image is pinned to, 0 to {last}.")
                continue
            if index > last:
                self.add_error(f"{name}_index", f"video.keyframes_indexes[{len(self.keyframes)}] must be between 0 "
                                                f"and {last}")
                continue
            if index in seen:
                self.add_error(f"{name}_index", f"video.keyframes_indexes must be unique: keyframe {seen[index]} is "
                                                f"at frame {index} already")
                continue
            seen[index] = n
            self.keyframes.append((name, image, index))

    def _agents_image(self, name: str, data: dict):
        """A slot's image: a checked upload (kept in agent_uploads), a library image, or None."""
        picked, file = data.get(name), data.get(f"{name}_file")
        if picked and file:
            self.add_error(f"{name}_file", "Pick a library image or upload one, not both.")
            return None
        if file:
            try:
                self.agent_uploads[name] = check_upload(file)
            except forms.ValidationError as error:
                self.add_error(f"{name}_file", error)
                return None
            return file
        if picked and not picked.image_url:
            self.add_error(name, f"Luma gave no address for #{picked.pk}'s image; choose another.")
            return None
        return picked or None

    def _clean_edit(self, data: dict) -> None:
        """Automatic (auto_controls) or a strength; the controls need a strength (section 4.6)."""
        chosen = [name for name in CONTROLS if data.get(f"control_{name}")]
        if data.get("mode") == AUTO and chosen:
            self.add_error("mode", "video.edit.auto_controls cannot be combined with strength or controls: choose a "
                                   "strength to set the controls yourself.")
        for name, (field, _, label, _) in CONTROL_SETTINGS.items():
            if data.get(field) is not None and name not in chosen and data.get(field) != self.fields[field].initial:
                self.add_error(f"control_{name}", f"Tick {name.title()} to use its {label.lower()}.")

    def _clean_source_length(self, data: dict, agents_type: str) -> None:
        limit = SOURCE_MAX_SECONDS[agents_type]
        upload = data.get("media_from") == "upload"
        if upload:
            seconds, field = getattr(self.video, "duration", None), "video_file"
        else:
            source = data.get("video_source")
            seconds, field = (seconds_of(source) if source else None), "video_source"
        if seconds is not None and seconds > limit + 0.05 and field not in self.errors:
            self.add_error(field, f"source: video is longer than {limit} s")

    def _clean_uni(self, data: dict, agents_type: str) -> None:
        if agents_type == "layering":
            return
        for n in range(1, UNI_REF_SLOTS + 1):
            image = self._agents_image(f"uni_ref_{n}", data)
            if image is not None:
                self.uni_refs.append((f"uni_ref_{n}", image))
        if agents_type == "image_edit" and len(self.uni_refs) > UNI_REF_SLOTS - 1:
            self.add_error(self.uni_refs[-1][0], "image_edit supports up to 8 reference images (source occupies "
                                                 "one slot)")

    # --- saving -----------------------------------------------------------------------------------------------

    def _agents_ref(self, name: str, value, owner) -> dict:
        """An image option as the row keeps it: an upload's address, or a library image's with its number (a
        generation the Agents API made is best named by its id: its output URL expires within the hour)."""
        if name in self.agent_uploads:
            return {"url": self.agent_uploads[name].store(owner).public_url()}
        return {"url": value.image_url, "generation": value.pk}

    def agents_row(self, owner, model: str) -> tuple[Kind, dict]:
        """The kind and fields of the row an Agents request becomes (providers.agents_request sends it)."""
        data = self.cleaned_data
        agents_type = TYPES_OF[model][data["what"]]
        prompt = " ".join((data.get("prompt") or "").split())
        fields = {"provider": Provider.AGENTS, "model": model, "prompt": prompt}
        options: dict = {}
        if model in UNI_MODELS:
            if agents_type == "layering":
                options["layering_resolution"] = data.get("layering_resolution") or "1k"
            else:
                refs = [self._agents_ref(name, image, owner) for name, image in self.uni_refs]
                options.update(image_ref=refs, style=data.get("style") or "auto")
                if data.get("output_format"):
                    options["format"] = data["output_format"]
            if agents_type == "image":
                fields["aspect_ratio"] = data.get("aspect_ratio") or ""
            else:
                fields.update(self._image_source(owner))
            return KIND_OF_TYPE[agents_type], {**fields, "options": {k: v for k, v in options.items() if v}}
        fields["resolution"] = data.get("resolution") or "720p"
        if agents_type != "video_reframe":
            options.update(hdr=bool(data.get("hdr")), exr_export=bool(data.get("exr_export")))
        if agents_type == "video":
            return self._ray_video(owner, fields, options)
        fields.update(self._video_source(owner))
        if agents_type == "video_edit":
            mode = data.get("mode")
            fields["mode"] = "" if mode == AUTO else mode
            controls = self._controls()
            if controls:
                options["controls"] = controls
            frame = self.frames.get("first_frame")
            if frame and frame[1] is not None:
                fields["first_frame_url"] = self._image_url("first_frame", frame[1], owner)
        else:
            fields["aspect_ratio"] = data["aspect_ratio"]
            if position := self._source_position():
                options["source_position"] = position
        return KIND_OF_TYPE[agents_type], {**fields, "options": {k: v for k, v in options.items() if v}}

    def _ray_video(self, owner, fields: dict, options: dict) -> tuple[Kind, dict]:
        from .models import kind_for_keyframes

        data = self.cleaned_data
        fields.update(duration=data.get("duration") or "5s", aspect_ratio=data.get("aspect_ratio") or "16:9",
                      loop=bool(data.get("loop")))
        if self.keyframes:
            options["keyframes"] = [{**self._agents_ref(name, image, owner), "index": index}
                                    for name, image, index in sorted(self.keyframes, key=lambda k: k[2])]
            return Kind.IMAGE_TO_VIDEO, {**fields, "options": {k: v for k, v in options.items() if v}}
        fields.update(self._frame_fields(owner))
        kind = kind_for_keyframes({slot: {"type": frame[0]} for slot, frame in self.frames.items() if frame})
        return kind, {**fields, "options": {k: v for k, v in options.items() if v}}

    def _image_source(self, owner) -> dict:
        if self.cleaned_data.get("media_from") == "upload":
            return {"media_url": self.uploads["media"].store(owner).public_url()}
        return {"source": self.cleaned_data["image_source"]}

    def _video_source(self, owner) -> dict:
        from .uploads import VideoCheck

        if self.cleaned_data.get("media_from") == "upload":
            stored = self.video.store(owner) if isinstance(self.video, VideoCheck) else self.video
            return {"media_url": stored.public_url(), "duration": f"{round(stored.duration or 5)}s"}
        source = self.cleaned_data["video_source"]
        return {"source": source, "duration": source.duration}

    def _controls(self) -> dict:
        data, controls = self.cleaned_data, {}
        for name in CONTROLS:
            if not data.get(f"control_{name}"):
                continue
            control = {"enabled": True}
            if name in CONTROL_SETTINGS:
                field, luma_name, _, _ = CONTROL_SETTINGS[name]
                value = data.get(field)
                control[luma_name] = round(value if value is not None else self.fields[field].initial, 3)
            elif name == "pose":
                control["strength"] = data.get("pose_strength") or "precise"
            controls[name] = control
        return controls

    def _source_position(self) -> dict | None:
        """The drag box's pixels as fractions of the canvas (Ray 3.2's source_position); None for a centred fit."""
        from .create_form import BOX_FIELDS, REFRAME_CANVAS

        data = self.cleaned_data
        box = [data.get(name) for name in BOX_FIELDS]
        if any(value is None for value in box):
            return None
        width, height = REFRAME_CANVAS[data["aspect_ratio"]]
        x, y, w, h = box
        return {"x_norm": round(x / width, 4), "y_norm": round(y / height, 4), "w_norm": round(w / width, 4),
                "h_norm": round(h / height, 4)}


def _luma_type(what: str) -> str:
    return {"modify": "video_edit", "reframe_video": "video_reframe"}.get(what, what)


def initial_for_again(generation: Generation) -> dict:
    """An Agents row's own settings, for "Try again"."""
    options = generation.options or {}
    initial = {"hdr": bool(options.get("hdr")), "exr_export": bool(options.get("exr_export")),
               "style": options.get("style") or "auto", "output_format": options.get("format") or "",
               "layering_resolution": options.get("layering_resolution") or "1k"}
    if generation.kind == Kind.MODIFY_VIDEO:
        initial["mode"] = generation.mode or AUTO
        for name, control in (options.get("controls") or {}).items():
            initial[f"control_{name}"] = bool(control.get("enabled", True))
            if name in CONTROL_SETTINGS:
                field, luma_name, _, _ = CONTROL_SETTINGS[name]
                initial[field] = control.get(luma_name)
            elif name == "pose":
                initial["pose_strength"] = control.get("strength") or "precise"
    return initial
