"""Request validation for the simulator's create endpoints: FastAPI-style 422 schema errors, Luma's 400 rules.

Schemas follow the official SDK's request types (lumaai 1.21.0); the 400 texts are listed in engine.py's docstring.
"""

from dataclasses import dataclass, field

VIDEO_MODELS = ("ray-2", "ray-flash-2")
IMAGE_MODELS = ("photon-1", "photon-flash-1")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
DURATIONS = ("5s", "9s")
FORMATS = ("jpg", "png")
MODIFY_MODES = tuple(f"{kind}_{n}" for kind in ("adhere", "flex", "reimagine") for n in (1, 2, 3))
CONCEPTS = (
    "truck_left", "pan_right", "pedestal_down", "low_angle", "pedestal_up", "selfie", "pan_left", "roll_right",
    "zoom_in", "over_the_shoulder", "orbit_right", "orbit_left", "static", "tiny_planet", "high_angle", "bolt_cam",
    "dolly_zoom", "overhead", "zoom_out", "handheld", "roll_left", "pov", "aerial_drone", "push_in", "crane_down",
    "truck_right", "tilt_down", "elevator_doors", "tilt_up", "ground_level", "pull_out", "aerial", "crane_up",
    "eye_level",
)
PROMPT_MIN, PROMPT_MAX = 3, 5000
MAX_REFS = 4


class ApiError(Exception):
    """An answer other than success: status, a FastAPI-style `detail` (string or error list), extra headers."""

    def __init__(self, status: int, detail, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


# Schema specs: "str" | "bool" | "int" | "num" | "weight" | ("lit", values) | ("list", item)
# | ("obj", {name: spec}, required_names) | ("union", {tag: obj_spec}) discriminated on "type".
URL_OBJ = ("obj", {"url": "str"}, {"url"})
REF_OBJ = ("obj", {"url": "str", "weight": "weight"}, set())
FRAME = ("union", {
    "generation": ("obj", {"type": ("lit", ("generation",)), "id": "str"}, {"type", "id"}),
    "image": ("obj", {"type": ("lit", ("image",)), "url": "str"}, {"type", "url"}),
})
CROP = {name: "int" for name in ("grid_position_x", "grid_position_y", "resized_height", "resized_width",
                                  "x_end", "x_start", "y_end", "y_start")}

SCHEMAS = {
    "video": ("obj", {
        "generation_type": "str", "model": ("lit", VIDEO_MODELS), "prompt": "str", "aspect_ratio": ("lit", ASPECT_RATIOS),
        "loop": "bool", "keyframes": ("obj", {"frame0": FRAME, "frame1": FRAME}, set()),
        "duration": ("lit", DURATIONS), "resolution": ("lit", RESOLUTIONS),
        "concepts": ("list", ("obj", {"key": "str"}, {"key"})), "callback_url": "str",
    }, {"model"}),
    "image": ("obj", {
        "generation_type": "str", "model": ("lit", IMAGE_MODELS), "prompt": "str", "aspect_ratio": ("lit", ASPECT_RATIOS),
        "callback_url": "str", "character_ref": ("obj", {"identity0": ("obj", {"images": ("list", "str")}, set())}, set()),
        "format": ("lit", FORMATS), "image_ref": ("list", REF_OBJ), "modify_image_ref": REF_OBJ,
        "style_ref": ("list", REF_OBJ), "sync": "bool", "sync_timeout": "num",
    }, {"model"}),
    "upscale_video": ("obj", {"generation_type": "str", "resolution": ("lit", RESOLUTIONS), "callback_url": "str"},
                      set()),
    "add_audio": ("obj", {"generation_type": "str", "prompt": "str", "negative_prompt": "str", "callback_url": "str"},
                  set()),
    "modify_video": ("obj", {
        "generation_type": "str", "media": URL_OBJ, "mode": ("lit", MODIFY_MODES), "model": ("lit", VIDEO_MODELS),
        "callback_url": "str", "first_frame": URL_OBJ, "prompt": "str",
    }, {"generation_type", "media", "mode", "model"}),
    "reframe_video": ("obj", {
        "generation_type": "str", "media": URL_OBJ, "model": ("lit", VIDEO_MODELS), "aspect_ratio": ("lit", ASPECT_RATIOS),
        "callback_url": "str", "first_frame": URL_OBJ, "prompt": "str", **CROP,
    }, {"generation_type", "media", "model", "aspect_ratio"}),
    "reframe_image": ("obj", {
        "generation_type": "str", "media": URL_OBJ, "model": ("lit", IMAGE_MODELS), "aspect_ratio": ("lit", ASPECT_RATIOS),
        "callback_url": "str", "format": ("lit", FORMATS), "prompt": "str", **CROP,
    }, {"generation_type", "media", "model", "aspect_ratio"}),
}
OUTPUT = {"video": "video", "image": "image", "upscale_video": "video", "add_audio": "video",
          "modify_video": "video", "reframe_video": "video", "reframe_image": "image"}

TYPE_ERRORS = {
    "str": ("string_type", "Input should be a valid string"),
    "bool": ("bool_type", "Input should be a valid boolean"),
    "int": ("int_type", "Input should be a valid integer"),
    "num": ("float_type", "Input should be a valid number"),
    "list": ("list_type", "Input should be a valid list"),
    "obj": ("model_attributes_type", "Input should be a valid dictionary or object to extract fields from"),
}


def _quoted(values) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _err(errors, kind, loc, value, msg=None, ctx=None):
    entry = {"type": kind, "loc": list(loc), "msg": msg or TYPE_ERRORS.get(kind, (kind, kind))[1], "input": value}
    if ctx:
        entry["ctx"] = ctx
    errors.append(entry)


def _check(value, spec, loc, errors, top=False):
    """Validate value against spec, appending pydantic-v2-style errors; return the echo of what is known."""
    if isinstance(spec, str):
        ok = {
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "num": isinstance(value, (int, float)) and not isinstance(value, bool),
            "weight": isinstance(value, (int, float)) and not isinstance(value, bool),
        }[spec]
        if not ok:
            kind, msg = TYPE_ERRORS["num" if spec == "weight" else spec]
            _err(errors, kind, loc, value, msg)
            return None
        if spec == "weight" and not 0 <= value <= 1:
            bound = "less_than_equal" if value > 1 else "greater_than_equal"
            limit = 1 if value > 1 else 0
            word = "less" if value > 1 else "greater"
            _err(errors, bound, loc, value, f"Input should be {word} than or equal to {limit}", {bound[:2]: limit})
        return value
    tag = spec[0]
    if tag == "lit":
        if value not in spec[1] or not isinstance(value, str):
            _err(errors, "literal_error", loc, value, f"Input should be {_quoted(spec[1])}",
                 {"expected": _quoted(spec[1])})
            return None
        return value
    if tag == "list":
        if not isinstance(value, list):
            _err(errors, "list_type", loc, value)
            return None
        return [_check(item, spec[1], (*loc, i), errors) for i, item in enumerate(value)]
    if tag == "union":
        if not isinstance(value, dict):
            _err(errors, "model_attributes_type", loc, value)
            return None
        if "type" not in value:
            _err(errors, "union_tag_not_found", loc, value, "Unable to extract tag using discriminator 'type'",
                 {"discriminator": "'type'"})
            return None
        choices = spec[1]
        if value["type"] not in choices:
            expected = ", ".join(f"'{t}'" for t in choices)
            _err(errors, "union_tag_invalid", loc, value,
                 f"Input tag '{value['type']}' found using 'type' does not match any of the expected tags: {expected}",
                 {"discriminator": "'type'", "tag": str(value["type"]), "expected_tags": expected})
            return None
        return _check(value, choices[value["type"]], (*loc, value["type"]), errors)
    # "obj"
    fields, required = spec[1], spec[2]
    if not isinstance(value, dict):
        _err(errors, "model_attributes_type", loc, value)
        return None
    echo = {}
    for name, sub in fields.items():
        if name not in value:
            if name in required:
                _err(errors, "missing", (*loc, name), value, "Field required")
            elif top or sub == FRAME:
                echo[name] = None  # top-level fields and keyframe slots are echoed with null when unset
            continue
        item = value[name]
        if item is None and name not in required:
            echo[name] = None
            continue
        echo[name] = _check(item, sub, (*loc, name), errors)
    return echo


@dataclass
class Parsed:
    """A validated create request: the echo Luma returns in `request`, plus what the engine needs from it."""

    kind: str
    echo: dict
    model: str | None = None
    aspect_ratio: str = "16:9"
    duration: str = "5s"
    resolution: str = "720p"
    prompt: str = ""
    callback_url: str | None = None
    image_urls: list = field(default_factory=list)  # must fetch as an image
    media_urls: list = field(default_factory=list)  # must fetch (a video or an image)
    references: list = field(default_factory=list)  # (slot, generation id)


def parse(kind: str, body) -> Parsed:
    """Check the body of a create of this kind; raise ApiError(422) for schema errors and (400) for Luma's rules."""
    errors: list = []
    if body is None:
        raise ApiError(422, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
    echo = _check(body, SCHEMAS[kind], ("body",), errors, top=True)
    if errors:
        raise ApiError(422, errors)
    declared = echo.get("generation_type")
    if declared is not None and declared != kind:
        raise ApiError(400, "Unknown request type")
    echo["generation_type"] = kind
    parsed = Parsed(kind=kind, echo=echo, model=echo.get("model"), callback_url=echo.get("callback_url"),
                    prompt=echo.get("prompt") or "")
    parsed.aspect_ratio = echo.get("aspect_ratio") or "16:9"
    parsed.duration = echo.get("duration") or "5s"
    parsed.resolution = echo.get("resolution") or "720p"
    if kind == "video":
        _video_rules(parsed)
    elif kind == "image":
        _image_rules(parsed)
    else:
        _prompt_rules(parsed.prompt, required=False, short=False)
        for slot in ("media", "first_frame"):
            if echo.get(slot):
                (parsed.media_urls if slot == "media" and kind != "reframe_image" else parsed.image_urls).append(
                    echo[slot]["url"])
    return parsed


def _prompt_rules(prompt: str, required: bool, short: bool = True) -> None:
    text = prompt.strip()
    if not text:
        if required:
            raise ApiError(400, "Prompt is required")
        return
    if short and len(text) < PROMPT_MIN:
        raise ApiError(400, f"Prompt is too short, minimum length is {PROMPT_MIN} characters")
    if len(text) > PROMPT_MAX:
        raise ApiError(400, f"Prompt is too long, maximum length is {PROMPT_MAX} characters")


def _video_rules(parsed: Parsed) -> None:
    echo = parsed.echo
    frames = echo.get("keyframes")
    f0 = frames.get("frame0") if frames else None
    f1 = frames.get("frame1") if frames else None
    if frames is not None and f0 is None and f1 is None:
        raise ApiError(400, "No keyframes provided")
    t0, t1 = (f0 or {}).get("type"), (f1 or {}).get("type")
    _prompt_rules(parsed.prompt, required="image" not in (t0, t1))
    if echo.get("loop"):
        loop_rule = {
            (None, "image"): "end frame",
            ("image", "image"): "keyframes",
            (None, "generation"): "extend reverse",
            ("generation", "image"): "interpolate video to image",
            ("image", "generation"): "interpolate image to video",
            ("generation", "generation"): "interpolate between two videos",
        }.get((t0, t1))
        if loop_rule:
            raise ApiError(400, f"Loop is not supported for {loop_rule}")
    concepts = echo.get("concepts") or []
    if concepts and parsed.model == "ray-flash-2":
        raise ApiError(400, "concepts are not supported for this model")
    for concept in concepts:
        if concept["key"] not in CONCEPTS:
            raise ApiError(400, f"Unknown concept: {concept['key']}")
    for slot, frame in (("frame0", f0), ("frame1", f1)):
        if frame and frame["type"] == "image":
            parsed.image_urls.append(frame["url"])
        elif frame:
            parsed.references.append((slot, frame["id"]))


def _image_rules(parsed: Parsed) -> None:
    echo = parsed.echo
    refs = [r for key in ("image_ref", "style_ref") for r in (echo.get(key) or [])]
    modify = echo.get("modify_image_ref")
    identity = ((echo.get("character_ref") or {}).get("identity0") or {}).get("images") or []
    _prompt_rules(parsed.prompt, required=not (refs or modify or identity))
    for key in ("image_ref", "style_ref"):
        if len(echo.get(key) or []) > MAX_REFS:
            raise ApiError(400, f"{key} supports at most {MAX_REFS} images")
    if len(identity) > MAX_REFS:
        raise ApiError(400, f"character_ref supports at most {MAX_REFS} images per identity")
    parsed.image_urls.extend(r["url"] for r in [*refs, *([modify] if modify else [])] if r.get("url"))
    parsed.image_urls.extend(identity)
