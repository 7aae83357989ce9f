"""Request validation for the simulator's Agents API (POST /agents/generations): schema errors as FastAPI's 422
lists, then Luma's rules in the order of luma-agents-api.md section 17, with the documented `detail` strings.

What needs the references themselves (a generation's kind, a file's state, a source video's length) is checked by
the engine after parse() has accepted the request's shape. Texts Luma does not document are chosen here and listed
in AGENTS_ERRORS (section 17: cross-field rules answer 422, single-field rules 400).
"""

import math
from dataclasses import dataclass, field

from .validation import ApiError

MODELS = ("uni-1", "uni-1-max", "ray-3.2")
TYPES = ("image", "image_edit", "video", "video_edit", "video_reframe", "layering")
TYPES_OF = {"uni-1": ("image", "image_edit", "layering"), "uni-1-max": ("image", "image_edit"),
            "ray-3.2": ("video", "video_edit", "video_reframe")}
IMAGE_TYPES = ("image", "image_edit", "layering")
VIDEO_TYPES = ("video", "video_edit", "video_reframe")
IMAGE_RATIOS = ("3:1", "2:1", "16:9", "3:2", "1:1", "2:3", "9:16", "1:2", "1:3")
VIDEO_RATIOS = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
STYLES = ("auto", "manga")
OUTPUT_FORMATS = ("png", "jpeg")
RESOLUTIONS = ("360p", "540p", "720p", "1080p")
DURATIONS = ("5s", "10s")
EDIT_STRENGTHS = tuple(f"{kind}_{n}" for kind in ("adhere", "flex", "reimagine") for n in (1, 2, 3))
POSE_STRENGTHS = ("precise", "coarse")
LAYERING_RESOLUTIONS = ("1k", "2k")
FPS = 24
PROMPT_MAX, LAYERING_PROMPT_MAX, USER_ID_MAX = 6000, 500, 256
MAX_IMAGE_REFS = {"image": 9, "image_edit": 8}
MAX_KEYFRAMES = 64
VERTICAL = ("9:16", "3:4")

# Error texts chosen here where Luma documents none (section 9.3 lists the documented ones, used verbatim).
AGENTS_ERRORS = """
400 Unknown type: <t> | Invalid style/output_format/video.resolution/... '<v>'. Valid: <sorted list>
400 image supports up to 9 reference images | user_id must be at most 256 characters
400 Prompt must be at most 500 characters for type 'layering' (an empty layering prompt is accepted)
400 source is required for type '<t>' | aspect_ratio is required for type 'video_reframe'
400 <path>: provide exactly one of 'url', 'data', 'generation_id' or 'file_id'
400 <path>: 'media_type' is required with 'url' for a video source
400 video.edit.controls.depth.blur must be between 0 and 1 (also normals.augmentation, trajectory.sparsity)
400 video.source_position.w_norm must be greater than 0 and at most 2 (also h_norm; x/y between -2 and 2)
422 every cross-field rule of sections 4.5-4.7, e.g. "video.loop is not supported with video.duration '10s'"
422 <path>: generation not found | generation is not completed | generation output is not an image/a video
422 <path>: file not found | file is not ready | file has been deleted | file is not an image/a video
422 <path>: video is longer than 18 s (video_edit) / 30 s (video_reframe)
422 video.edit.keyframe_indexes[<i>] must be between 0 and <frames> (the source's frame grid)
413 Image exceeds 50 MB size limit / source: image exceeds 50 MB limit / <path>: video exceeds 200 MB limit
"""


@dataclass
class Ref:
    """One media reference of a request: where it sits, what it must be ("image" or "video") and its fields."""

    path: str  # e.g. "source", "image_ref[2]", "video.keyframes[0]"
    want: str  # "image" | "video"
    ref: dict


@dataclass
class CreateRequest:
    model: str
    type: str
    prompt: str
    aspect_ratio: str | None
    output_format: str
    style: str
    user_id: str | None
    video: dict  # the "video" object with resolution and duration filled in ({} for image types)
    layering_resolution: str
    refs: list[Ref] = field(default_factory=list)
    body: dict = field(default_factory=dict)  # what the caller sent, for /_sim

    def ref(self, path: str) -> Ref | None:
        return next((r for r in self.refs if r.path == path), None)


# -- schema (FastAPI 422 lists) ---------------------------------------------------------------------------------

_PYDANTIC = {
    "str": ("string_type", "Input should be a valid string"),
    "bool": ("bool_type", "Input should be a valid boolean"),
    "int": ("int_type", "Input should be a valid integer"),
    "num": ("float_type", "Input should be a valid number"),
    "obj": ("dict_type", "Input should be a valid dictionary"),
    "list": ("list_type", "Input should be a valid list"),
}
REF = ("obj", {"url": "str", "data": "str", "generation_id": "str", "file_id": "str", "media_type": "str"}, ())
CONTROL = {
    "pose": ("obj", {"enabled": "bool", "strength": "str"}, ()),
    "depth": ("obj", {"enabled": "bool", "blur": "num"}, ()),
    "normals": ("obj", {"enabled": "bool", "augmentation": "num"}, ()),
    "trajectory": ("obj", {"enabled": "bool", "sparsity": "num"}, ()),
    "face": ("obj", {"enabled": "bool"}, ()),
}
EDIT = ("obj", {"auto_controls": "bool", "strength": "str", "controls": ("obj", CONTROL, ()),
                "keyframes": ("list", REF), "keyframe_indexes": ("list", "int")}, ())
VIDEO = ("obj", {
    "resolution": "str", "duration": "str", "loop": "bool", "hdr": "bool", "exr_export": "bool",
    "start_frame": REF, "end_frame": REF, "keyframes": ("list", REF), "keyframe_indexes": ("list", "int"),
    "edit": EDIT,
    "source_position": ("obj", {"x_norm": "num", "y_norm": "num", "w_norm": "num", "h_norm": "num"},
                        ("x_norm", "y_norm", "w_norm", "h_norm")),
}, ())
BODY = ("obj", {
    "prompt": "str", "model": "str", "type": "str", "aspect_ratio": "str", "image_ref": ("list", REF),
    "source": REF, "style": "str", "output_format": "str", "web_search": "bool", "video": VIDEO,
    "layering": ("obj", {"resolution": "str"}, ()), "user_id": "str",
}, ("prompt",))
NOT_NULL = {("body", "prompt"), ("body", "web_search"), ("body", "style"), ("body", "model"), ("body", "type"),
            ("body", "image_ref")}


def _kind(spec) -> str:
    return spec if isinstance(spec, str) else spec[0]


def _schema(value, spec, loc: tuple, errors: list) -> None:
    """Collect pydantic-v2-style errors for value against spec (None is allowed unless loc is in NOT_NULL)."""
    kind = _kind(spec)
    if value is None:
        if loc in NOT_NULL:
            errors.append({"type": _PYDANTIC[kind][0], "loc": list(loc), "msg": _PYDANTIC[kind][1], "input": None})
        return
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "num": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "obj": isinstance(value, dict),
        "list": isinstance(value, list),
    }[kind]
    if not ok:
        errors.append({"type": _PYDANTIC[kind][0], "loc": list(loc), "msg": _PYDANTIC[kind][1], "input": value})
        return
    if kind == "obj":
        _name, members, required = spec
        for name in required:
            if name not in value:
                errors.append({"type": "missing", "loc": [*loc, name], "msg": "Field required", "input": value})
        for name, member in members.items():
            if name in value:
                _schema(value[name], member, (*loc, name), errors)
    elif kind == "list":
        for i, item in enumerate(value):
            _schema(item, spec[1], (*loc, i), errors)


def check_schema(body, spec=BODY) -> dict:
    if not isinstance(body, dict):
        raise ApiError(422, [{"type": "model_attributes_type", "loc": ["body"], "input": body,
                              "msg": "Input should be a valid dictionary or object to extract fields from"}])
    errors: list = []
    _schema(body, spec, ("body",), errors)
    if errors:
        raise ApiError(422, errors)
    return body


# -- Luma's rules -----------------------------------------------------------------------------------------------

def _enum(name: str, value, valid) -> None:
    if value is not None and value not in valid:
        # Luma's documented order for ratios, "1:1, 1:2, 1:3, 16:9, 2:1, ...": by each side as a string
        order = sorted(valid, key=lambda v: tuple(v.split(":")))
        raise ApiError(400, f"Invalid {name} '{value}'. Valid: {', '.join(order)}")


def _unit(name: str, value) -> None:
    if value is not None and not 0 <= value <= 1:
        raise ApiError(400, f"{name} must be between 0 and 1")


def _indexes(name: str, refs: list, indexes: list | None, frames: int | None) -> None:
    """keyframes + keyframe_indexes: 1-64 anchors, equal length, unique, non-negative, inside the frame grid."""
    if refs is None:
        if indexes is not None:
            raise ApiError(422, f"{name}_indexes requires {name}")
        return
    if not 1 <= len(refs) <= MAX_KEYFRAMES:
        raise ApiError(422, f"{name} supports 1 to {MAX_KEYFRAMES} anchors")
    if indexes is None or len(indexes) != len(refs):
        raise ApiError(422, f"{name}_indexes must have the same length as {name}")
    if len(set(indexes)) != len(indexes):
        raise ApiError(422, f"{name}_indexes must be unique")
    for i, index in enumerate(indexes):
        if index < 0 or (frames is not None and index > frames):
            grid = f"between 0 and {frames}" if frames is not None else "non-negative"
            raise ApiError(422, f"{name}_indexes[{i}] must be {grid}")


def parse(body) -> CreateRequest:
    """Check a create body; returns the request with defaults resolved, or raises ApiError (400/422)."""
    check_schema(body)
    model = body.get("model") or "uni-1"
    if model not in MODELS:
        raise ApiError(400, f"Unknown model: {model}")
    kind = body.get("type") or "image"
    if kind not in TYPES:
        raise ApiError(400, f"Unknown type: {kind}")
    if kind not in TYPES_OF[model]:
        raise ApiError(400, f"Type '{kind}' is not supported for model '{model}'")
    prompt = body["prompt"]
    if kind == "layering":
        if len(prompt) > LAYERING_PROMPT_MAX:
            raise ApiError(400, f"Prompt must be at most {LAYERING_PROMPT_MAX} characters for type 'layering'")
    elif not 1 <= len(prompt) <= PROMPT_MAX:
        raise ApiError(400, f"Prompt must be between 1 and {PROMPT_MAX} characters")

    video = dict(body.get("video") or {})
    edit = dict(video.get("edit") or {})
    controls = edit.get("controls") or {}
    aspect = body.get("aspect_ratio")
    _enum("style", body.get("style"), STYLES)
    _enum("output_format", body.get("output_format"), OUTPUT_FORMATS)
    if kind != "video_edit":  # video_edit keeps its source's ratio and ignores the field
        _enum("aspect_ratio", aspect, VIDEO_RATIOS if kind in VIDEO_TYPES else IMAGE_RATIOS)
    _enum("video.resolution", video.get("resolution"), RESOLUTIONS)
    _enum("video.duration", video.get("duration"), DURATIONS)
    _enum("video.edit.strength", edit.get("strength"), EDIT_STRENGTHS)
    _enum("video.edit.controls.pose.strength", (controls.get("pose") or {}).get("strength"), POSE_STRENGTHS)
    _enum("layering.resolution", (body.get("layering") or {}).get("resolution"), LAYERING_RESOLUTIONS)
    _unit("video.edit.controls.depth.blur", (controls.get("depth") or {}).get("blur"))
    _unit("video.edit.controls.normals.augmentation", (controls.get("normals") or {}).get("augmentation"))
    _unit("video.edit.controls.trajectory.sparsity", (controls.get("trajectory") or {}).get("sparsity"))
    if (position := video.get("source_position")) is not None:
        for name in ("w_norm", "h_norm"):
            if not 0 < position[name] <= 2:
                raise ApiError(400, f"video.source_position.{name} must be greater than 0 and at most 2")
        for name in ("x_norm", "y_norm"):
            if not -2 <= position[name] <= 2:
                raise ApiError(400, f"video.source_position.{name} must be between -2 and 2")
    if body.get("user_id") is not None and len(body["user_id"]) > USER_ID_MAX:
        raise ApiError(400, f"user_id must be at most {USER_ID_MAX} characters")

    image_refs = body.get("image_ref") or []
    if kind == "image_edit" and len(image_refs) > MAX_IMAGE_REFS["image_edit"]:
        raise ApiError(400, "image_edit supports up to 8 reference images (source occupies one slot)")
    if kind == "image" and len(image_refs) > MAX_IMAGE_REFS["image"]:
        raise ApiError(400, "image supports up to 9 reference images")

    source = body.get("source")
    if kind == "image" and source is not None:
        raise ApiError(400, "source is only valid for type 'image_edit'")
    if kind in ("image_edit", "layering", "video_edit", "video_reframe") and source is None:
        raise ApiError(400, f"source is required for type '{kind}'")
    if kind == "video_reframe" and aspect is None:
        raise ApiError(400, "aspect_ratio is required for type 'video_reframe'")

    _cross_field(kind, body, video, edit)
    video.setdefault("resolution", None)
    video.setdefault("duration", None)
    if kind in VIDEO_TYPES:
        video["resolution"] = video["resolution"] or "720p"
        video["duration"] = video["duration"] or "5s"

    refs = [Ref(f"image_ref[{i}]", "image", r) for i, r in enumerate(image_refs)]
    if source is not None:
        refs.insert(0, Ref("source", "video" if kind in ("video_edit", "video_reframe") else "image", source))
    for slot in ("start_frame", "end_frame"):
        if video.get(slot) is not None:
            refs.append(Ref(f"video.{slot}", "image", video[slot]))
    refs += [Ref(f"video.keyframes[{i}]", "image", r) for i, r in enumerate(video.get("keyframes") or [])]
    refs += [Ref(f"video.edit.keyframes[{i}]", "image", r) for i, r in enumerate(edit.get("keyframes") or [])]
    for ref in refs:
        _ref_shape(ref)
    return CreateRequest(
        model=model, type=kind, prompt=prompt, aspect_ratio=aspect,
        output_format=body.get("output_format") or "png", style=body.get("style") or "auto",
        user_id=body.get("user_id"), video=video if kind in VIDEO_TYPES else {},
        layering_resolution=(body.get("layering") or {}).get("resolution") or "2k", refs=refs, body=body,
    )


def _cross_field(kind: str, body: dict, video: dict, edit: dict) -> None:
    """Section 4.5-4.7's constraint matrix; every refusal is a 422 (section 17)."""
    given = {name for name, value in video.items() if value not in (None, False)}
    if body.get("image_ref") and kind not in MAX_IMAGE_REFS:
        raise ApiError(422, "image_ref is only valid for types 'image' and 'image_edit'")
    if body.get("layering") is not None and kind != "layering":
        raise ApiError(422, "layering is only valid for type 'layering'")
    if given and kind not in VIDEO_TYPES:
        raise ApiError(422, "video is only valid for types 'video', 'video_edit' and 'video_reframe'")
    if "edit" in given and kind != "video_edit":
        raise ApiError(422, "video.edit is only valid for type 'video_edit'")
    if "source_position" in given and kind != "video_reframe":
        raise ApiError(422, "video.source_position is only valid for type 'video_reframe'")
    if "keyframes" in given and kind != "video":
        raise ApiError(422, "video.keyframes is only valid for type 'video' (use video.edit.keyframes for video_edit)")
    if "loop" in given and kind != "video":
        raise ApiError(422, "video.loop is only valid for type 'video'")
    if "duration" in given and kind != "video":
        raise ApiError(422, f"video.duration is not valid for type '{kind}': the output keeps the source's duration")
    if kind == "video_reframe":
        for name in ("hdr", "exr_export", "start_frame", "end_frame"):
            if name in given:
                raise ApiError(422, f"video.{name} is not supported for type 'video_reframe'")
        if video.get("resolution") == "1080p" and body.get("aspect_ratio") in VERTICAL:
            raise ApiError(422, "video_reframe at 1080p to a vertical aspect ratio (9:16, 3:4) is coming soon; "
                                "use 720p")
    if kind == "video_edit":
        if "end_frame" in given:
            raise ApiError(422, "video.end_frame is not supported for type 'video_edit'")
        if edit.get("keyframes") is not None and "start_frame" in given:
            raise ApiError(422, "video.edit.keyframes cannot be combined with video.start_frame")
        if edit.get("auto_controls") and (edit.get("strength") is not None or edit.get("controls") is not None):
            raise ApiError(422, "video.edit.auto_controls cannot be combined with strength or controls")
        _indexes("video.edit.keyframes", edit.get("keyframes"), edit.get("keyframe_indexes"), None)
    if "hdr" in given and video.get("resolution") in ("360p", "540p"):
        raise ApiError(422, "video.hdr requires video.resolution '720p' or '1080p'")
    if "exr_export" in given and "hdr" not in given:
        raise ApiError(422, "video.exr_export requires video.hdr")
    if kind != "video":
        return
    ten = video.get("duration") == "10s"
    if "loop" in given:
        for name, clash in (("10s", ten), ("hdr", "hdr" in given), ("end_frame", "end_frame" in given)):
            if clash:
                what = "video.duration '10s'" if name == "10s" else f"video.{name}"
                raise ApiError(422, f"video.loop is not supported with {what}")
    if "keyframes" in given or "keyframe_indexes" in given:
        clash = [f"video.{n}" for n in ("start_frame", "end_frame", "loop") if n in given]
        if clash:
            raise ApiError(422, f"video.keyframes cannot be combined with {', '.join(clash)}")
        _indexes("video.keyframes", video.get("keyframes"), video.get("keyframe_indexes"), (10 if ten else 5) * FPS)
    elif ten:
        if "start_frame" in given or "end_frame" in given:
            raise ApiError(422, "video.duration '10s' is not supported with video.start_frame or video.end_frame")
        if "hdr" in given:
            raise ApiError(422, "video.hdr is not supported with video.duration '10s' (except with video.keyframes)")


def _ref_shape(ref: Ref) -> None:
    given = [name for name in ("url", "data", "generation_id", "file_id") if ref.ref.get(name) is not None]
    if "url" in given and "data" in given:
        raise ApiError(400, f"{ref.path}: provide either 'url' or 'data', not both")
    if len(given) != 1:
        raise ApiError(400, f"{ref.path}: provide exactly one of 'url', 'data', 'generation_id' or 'file_id'")
    media_type = ref.ref.get("media_type")
    if given == ["data"] and not media_type:
        raise ApiError(400, f"{ref.path}: 'media_type' is required with 'data'")
    if given == ["url"] and ref.want == "video" and not media_type:
        raise ApiError(400, f"{ref.path}: 'media_type' is required with 'url' for a video source")
